/* cortex/netdef.h -- networks described in a text file, and model summaries.
 * See cortex.h.
 *
 * The format (".net" files; examples in models/): one layer per line, '#'
 * starts a comment, blank lines are ignored. The first line declares the
 * input shape without the batch dimension; every other line is a layer whose
 * input is the previous line's output unless `from=` names other layers.
 *
 *   input 1 28 28                  # C H W (images); C L (1-D); C D H W (3-D); F (vectors)
 *   conv2d out=6 k=5 p=2           # name defaults to conv1, conv2, ...
 *   relu
 *   maxpool2d k=2
 *   ...
 *   linear out=10
 *
 * Layers and their keys (k: kernel, s: stride (pooling: default k), p: padding,
 * d: dilation, g: groups, op: output padding, bias=0 drops the bias):
 *   conv1d conv2d conv3d  out= k= [s=1] [p=0] [d=1] [g=1] [bias=1]
 *   convt2d               out= k= [s=1] [p=0] [op=0] [d=1] [g=1] [bias=1]
 *   maxpool2d avgpool2d maxpool3d avgpool3d  k= [s=k] [p=0]
 *   adaptiveavgpool2d     h= w=
 *   globalavgpool         (mean over H, W -> [N, C, 1, 1])
 *   batchnorm             [eps=1e-5] [momentum=0.1]   (1-D or 2-D from the input rank)
 *   layernorm             [dims=1]                    (normalise the last `dims` dims)
 *   upsample              scale= [mode=nearest|bilinear] [align=0]
 *   flatten               ([N, ...] -> [N, prod])
 *   linear                out= [bias=1]               (over the last dimension)
 *   dropout               [p=0.5]
 *   relu tanh sigmoid gelu elu softplus identity  leaky_relu [slope=0.01]
 *   add                   from=a,b[,c...]   elementwise sum (residual connection)
 *   concat                from=a,b[,c...]   concatenation along channels (dim 1)
 * Every line may carry name=NAME (letters, digits, '_'; unique) and from=NAME[,NAME].
 * `input` is the name of the network input. Parameters are named
 * "<layer name>.weight" etc., as in a PyTorch module with those attribute
 * names, so state_dicts move between the two through safetensors.
 *
 * Errors name the file, the line and the problem ("lenet.net:4: conv2d needs
 * out="); shape errors found while building (a kernel larger than its input,
 * mismatched shapes at an add) are reported the same way. */
#ifndef CORTEX_NETDEF_H
#define CORTEX_NETDEF_H
#include <stdio.h>
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Build a network from the text of a .net file (`source` names it in error
 * messages). *out is a cx_module of kind "Net" owned by the caller. */
cx_status cx_net_parse(const char *text, const char *source, cx_module **out);
/* cx_net_parse for a network whose weights will be loaded from `weights` (a
 * safetensors file, cx_st_load; NULL: as cx_net_parse): each linear and
 * convolution layer's weight shape is compared with the file's tensor
 * "<layer>.weight" BEFORE that layer is built, so a model whose metadata
 * describes a huge network fails at once (CX_ERR_FORMAT naming the tensor,
 * both shapes and the line) instead of allocating and initialising it. The
 * values are loaded afterwards, by cx_module_load_state. */
cx_status cx_net_parse_for(const char *text, const char *source, const struct cx_st_file *weights,
                           cx_module **out);
/* Read and build a .net file. */
cx_status cx_net_load(const char *path, cx_module **out);

/* The input shape declared by the file (without the batch dimension);
 * returns its rank. */
int cx_net_input_shape(const cx_module *net, int *shape);

/* One row of a model summary. rf/jump: receptive field (in input pixels) and
 * the distance between adjacent outputs, per spatial dimension (0 when the
 * layer has no spatial layout; rf_all set once a layer sees the whole input). */
/* Channels-last trunks. A network whose layers up to its first
 * globalavgpool are conv2d, batchnorm, activations and add (a ResNet), and
 * whose later layers read nothing from before that pool, keeps its maps in
 * [N, H, W, C] through that trunk in its forward pass (cx_module_forward,
 * the trainer): each conv2d followed by a batchnorm that alone reads it runs
 * with it as one op (cx_conv2d_bn_nhwc, with the relu and residual add
 * after it when the block end has them), other convolutions on
 * cx_conv2d_nhwc and batch norms on cx_batch_norm_nhwc. The results equal
 * the channels-first run's to float rounding, not bit for bit; the layer
 * outputs of cx_net_forward_all stay channels first. On by default in
 * builds with AVX-512, where the small ResNet's training step measured
 * 5-10% faster than channels first (BENCHMARKS.md), off in others; the
 * environment variable CX_NET_NHWC=1 / 0 at the first use, or
 * cx_net_set_channels_last, overrides it. Process-wide. */
void cx_net_set_channels_last(bool on);
bool cx_net_channels_last(void);

typedef struct cx_layer_info {
    char name[48];
    char desc[96];
    int out_shape[CX_MAX_DIMS]; /* without the batch dimension */
    int out_ndim;
    int64_t params;
    int spatial;                /* number of spatial dims of the output (0..3) */
    double rf[3], jump[3];
    bool rf_all;
} cx_layer_info;
int cx_net_num_layers(const cx_module *net);
const cx_layer_info *cx_net_layer(const cx_module *net, int i);
/* Forward pass that keeps every layer's output (e.g. to look at feature
 * maps): returns an array of cx_net_num_layers(net) tensors in the current
 * arena (valid until its next reset); out[i] is the output of layer i with
 * the batch dimension, out[0] is x itself (the input layer) and out[n - 1]
 * is what cx_module_forward returns. Grad mode and training mode apply as
 * for cx_module_forward. Same input checks (a wrong shape is fatal). */
cx_tensor **cx_net_forward_all(cx_module *net, cx_tensor *x);
/* Print a table: layer, output shape, parameters, receptive field; totals. */
void cx_net_summary(const cx_module *net, FILE *f);

/* Parse-only check of a .net text (shape inference): the parser and checks of
 * cx_net_parse, but each layer's output shape and parameter count are
 * computed from the sizes -- no weight is allocated or initialised and no
 * probe forward pass runs, so a hostile or huge network is judged in
 * microseconds (fuzz/fuzz_netdef.c uses it). For any text it gives what
 * cx_net_parse gives: on failure CX_ERR_FORMAT and the same message
 * ("t.net:3: conv2d: kernel size 5 (dilated 5) is larger than ..."); on
 * success the same rows as cx_net_layer (name, out_shape, params, spatial,
 * receptive field), except that `desc` holds the line's keyword ("conv2d").
 * The one difference: cx_net_parse also fails when the weights or the probe
 * tensors do not fit in memory, which cx_net_check never allocates.
 * *out (NULL on error) is freed with cx_net_shapes_free. */
typedef struct cx_net_shapes {
    int in_shape[CX_MAX_DIMS], in_ndim;  /* as cx_net_input_shape */
    int n;                               /* rows, the input's included (cx_net_num_layers) */
    cx_layer_info *layers;               /* [n] */
    int64_t params;                      /* total parameter count */
} cx_net_shapes;
cx_status cx_net_check(const char *text, const char *source, cx_net_shapes **out);
void cx_net_shapes_free(cx_net_shapes *s);  /* NULL is fine */

#ifdef __cplusplus
}
#endif
#endif
