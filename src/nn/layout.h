/* Private to src: channels-last forward passes of nn modules, for runners
 * that keep a network's maps in [N, H, W, C] between layers (netdef.c). */
#ifndef CX_NN_LAYOUT_H
#define CX_NN_LAYOUT_H
#include <cortex.h>

/* True when the channels-last kernels are the faster ones on this build
 * (AVX-512): the default of cx_net_set_channels_last. */
bool cx_conv_nhwc_preferred(void);
/* True when m is a 2-D (not transposed) convolution module (Conv2d). */
bool cx_conv_module_is_conv2d(const cx_module *m);
/* Conv2d's forward on x [N, H, W, C] -> [N, OH, OW, O] (cx_conv2d_nhwc with
 * the module's weight, bias and options). */
cx_tensor *cx_conv_module_forward_nhwc(cx_module *m, cx_tensor *x);

/* Batch norm over rows [M, C] (channels last, norm.c), for ops that fuse it:
 * per channel sum (x - k) and sum (x - k)^2 with k the first row; the
 * backward's sums (g' = g, or g masked by the relu: from x with alpha and
 * beta, or from y > 0; stored into / added to gr when given); the input
 * gradient rows [q0, q1) on the calling thread; the forward's output rows
 * [q0, q1) on the calling thread. */
void cx_bn_rows_stat(const float *xd, int64_t M, int C, double *s1, double *s2);
void cx_bn_rows_gsums(const float *xd, const float *go, const float *yd, const float *alpha, const float *beta,
                      bool relu, float *gr, bool rfresh, int64_t M, int C, const float *m, double *sg, double *sgx);
void cx_bn_rows_dx(const float *xd, const float *go, const float *yd, const float *mg, const float *alpha,
                   const float *beta, bool relu, float *gx, bool fresh, int64_t q0, int64_t q1, int C, const float *m,
                   const float *fa, const float *fb, const float *fk);
void cx_bn_rows_apply(const float *xd, const float *rd, bool relu, float *yd, int64_t q0, int64_t q1, int C,
                      const float *fm, const float *fa, const float *fb);
/* The batch-norm module's tensors and settings (NULL / 0 if m is not one). */
typedef struct {
    cx_tensor *w, *b, *rm, *rv, *nbt;
    float eps, momentum;
    int C;
} cx_bn_parts;
bool cx_batchnorm_parts(cx_module *m, cx_bn_parts *p);
/* Conv2d's weight, bias and options. */
void cx_conv_module_parts(cx_module *m, cx_tensor **w, cx_tensor **b, cx_conv_opts *o);

#endif
