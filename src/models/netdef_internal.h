/* Internal to the library: the layers of a Net (netdef.c) as parsed, for
 * writers that translate a network into another format (src/io/onnx_export.c).
 * Not part of the public API (not exported by libcortex.so). */
#ifndef CX_NETDEF_INTERNAL_H
#define CX_NETDEF_INTERNAL_H
#include "cortex/core.h"
#include "cortex/nn.h"
#include "cortex/netdef.h"

/* One line of the .net file with its keys resolved (defaults filled in);
 * the fields a layer kind does not use are 0. */
typedef struct cx_net_layer_def {
    int out;          /* conv*, convt2d, linear: out= */
    int k, s, p, d, g, op; /* conv / pool: kernel, stride, padding, dilation, groups, output padding */
    bool bias;        /* conv*, convt2d, linear */
    int h, w;         /* adaptiveavgpool2d */
    int dims;         /* layernorm */
    double f;         /* batchnorm / layernorm eps, dropout p, upsample scale, leaky_relu slope, elu alpha */
    bool bilinear, align; /* upsample */
    cx_act act;       /* activation layers */
} cx_net_layer_def;

/* Layer i (0 is the input line) of a Net built by cx_net_parse: its keyword
 * ("input", "conv2d", "relu", ...), the layers it reads (from, nfrom), its
 * module (NULL for input, globalavgpool, add, concat: the tensors are
 * cx_module_tensor(net, "<name>.weight") etc.) and its resolved keys. The
 * name and the output shape are cx_net_layer(net, i). Fatal if net is not a
 * Net or i is out of range. */
const cx_net_layer_def *cx_net_layer_get(const cx_module *net, int i, const char **kw, const int **from,
                                         int *nfrom, cx_module **mod);
#endif
