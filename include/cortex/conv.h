/* cortex/conv.h -- convolutions (1-D, 2-D, 3-D, transposed 2-D) and their
 * modules, with PyTorch's semantics and layouts. See cortex.h.
 *
 * Layout: channels first. A convolution over `nd` spatial dims (1, 2 or 3)
 * takes x [N, C, *spatial] and a weight [O, C/groups, *kernel]; the result is
 * [N, O, *out]. Per spatial dim (input size L, kernel k, stride s, padding p,
 * dilation d), exactly as PyTorch:
 *     out = floor((L + 2p - d*(k-1) - 1) / s) + 1
 * A transposed convolution takes x [N, C, *spatial] and PyTorch's transposed
 * weight layout [C, O/groups, *kernel]; its result is [N, O, *out] with
 *     out = (L - 1)*s - 2p + d*(k-1) + output_padding + 1
 * (the gradient of a convolution with respect to its input).
 *
 * Padding is zero padding on both sides. Groups split the input and output
 * channels into `groups` independent convolutions (groups == C with O a
 * multiple of C is a depthwise convolution). Bias [O] may be NULL.
 *
 * Errors (fatal, naming the op and the shapes): wrong number of dims, input
 * channels not matching weight dim 1 * groups, groups not dividing the
 * channels, bias of the wrong size, a kernel larger than the padded input,
 * stride / dilation / groups < 1, padding < 0, output_padding < 0 or not
 * smaller than either the stride or the dilation (transposed).
 *
 * Implementation: im2col + cx_sgemm per image (1x1 stride-1 unpadded kernels
 * use the input directly), col2im for the input gradient; the column buffers
 * are bounded (tiled over output rows, a few MB per thread) and released when
 * the op returns. Images run in parallel (OpenMP) when there are at least as
 * many as threads, otherwise the GEMMs use the threads. With the built-in
 * GEMM (cx_gemm_backend_in_use) every result and every gradient is bitwise
 * identical for any thread count (the weight gradient is summed over fixed
 * image ranges, reduced in a fixed order); with OpenBLAS, which splits its
 * own work by thread count, the same thread count gives the same bits and
 * other counts agree to rounding.
 *
 *   cx_tensor *y = cx_conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1);   // 3x3 "same"
 *   cx_conv_opts o = cx_conv_defaults();
 *   o.stride[0] = o.stride[1] = 2; o.output_padding[0] = o.output_padding[1] = 1;
 *   cx_tensor *up = cx_conv_transpose2d(y, wt, NULL, &o);
 */
#ifndef CORTEX_CONV_H
#define CORTEX_CONV_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- options */
/* Arrays are indexed by spatial dim in PyTorch's tuple order: 1-D {l},
 * 2-D {h, w}, 3-D {d, h, w}; unused entries are ignored. A zero stride,
 * dilation or groups means 1, so a zero-initialised struct is the default
 * (stride 1, padding 0, dilation 1, groups 1, output_padding 0). */
typedef struct cx_conv_opts {
    int stride[3];
    int padding[3];
    int dilation[3];
    int output_padding[3]; /* transposed convolutions only */
    int groups;
} cx_conv_opts;
/* stride 1, padding 0, dilation 1, output_padding 0, groups 1 (PyTorch's defaults). */
cx_conv_opts cx_conv_defaults(void);

/* ---------------------------------------------------------------- ops
 * All differentiable in x, w and b. `o` may be NULL (defaults). */
/* x [N, C, H, W], w [O, C/groups, kh, kw], b [O] or NULL. */
cx_tensor *cx_conv2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, int stride_h, int stride_w,
                     int pad_h, int pad_w, int dil_h, int dil_w, int groups);
/* Same with an options struct (output_padding is ignored). */
cx_tensor *cx_conv2d_ex(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);
/* x [N, C, L], w [O, C/groups, k]. */
cx_tensor *cx_conv1d(cx_tensor *x, cx_tensor *w, cx_tensor *b, int stride, int pad, int dil,
                     int groups);
/* x [N, C, D, H, W], w [O, C/groups, kd, kh, kw]. */
cx_tensor *cx_conv3d(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);
/* Any of the above: the number of spatial dims is x->ndim - 2 (1..3). */
cx_tensor *cx_conv(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);

/* Channels-last 2-D convolution: x [N, H, W, C] (PyTorch's channels_last
 * memory order), w [O, C/groups, kh, kw] (PyTorch's weight layout, as
 * cx_conv2d_ex: the same parameters serve both), b [O] or NULL; the result
 * is [N, OH, OW, O] with the same values as cx_conv2d_ex on the permuted
 * input, permuted back. Differentiable in x, w and b. Stride and padding of
 * any size with one group and no dilation run on kernels made for this
 * layout: vectors over output channels, so every lane holds a real output
 * whatever the image's width, and no padded copy of the image (a ResNet's
 * convolutions at 16-64 channels); other options permute around
 * cx_conv2d_ex. Errors as cx_conv2d_ex, naming the shapes. */
cx_tensor *cx_conv2d_nhwc(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);
/* cx_batch_norm_nhwc(cx_conv2d_nhwc(x, w, b, o), residual, relu, ...) as one
 * op, to float rounding: a ResNet's conv - BN [- add] - ReLU (relu true,
 * residual NULL or the result's shape) or conv - BN (relu false, residual
 * NULL). The convolution's output is not a tensor of the graph: the
 * statistics are summed while each output row is in cache, and the backward
 * pass makes the gradient of the convolution's output image by image and
 * feeds it straight to the convolution's weight and input gradients,
 * without writing it whole and reading it back. Batch-norm arguments as
 * cx_batch_norm (their shapes are [O]); with synchronised batch norm
 * (cx_dist_sync_batchnorm), groups or dilation it is the two ops. */
cx_tensor *cx_conv2d_bn_nhwc(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o, cx_tensor *residual,
                             bool relu, cx_tensor *running_mean, cx_tensor *running_var, cx_tensor *bn_weight,
                             cx_tensor *bn_bias, bool training, float momentum, float eps);

/* Transposed 2-D convolution (ConvTranspose2d): x [N, C, H, W],
 * w [C, O/groups, kh, kw], b [O] or NULL; stride, padding, output_padding,
 * dilation and groups from `o`. */
cx_tensor *cx_conv_transpose2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);
/* Transposed convolution over x->ndim - 2 (1..3) spatial dims. */
cx_tensor *cx_conv_transpose(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o);

/* How convolutions are computed. Every algorithm gives the same result up to
 * float rounding (each is tested against a double-precision reference), and
 * each is deterministic: the same inputs and thread count give the same bits.
 *   CX_CONV_AUTO    (default) Winograd F(2x2, 3x3) for the forward pass and
 *                   the input gradient of 3x3 stride-1 2-D convolutions with
 *                   at least 64 input and output channels per group (8 in
 *                   builds without AVX-512; the forward pass: also at least
 *                   512 output tiles of 2x2; images of at most 64 output
 *                   positions: the input gradient only), and for their
 *                   weight gradient from 16 input channels; direct
 *                   register-tiled kernels for other stride-1 convolutions
 *                   and weight gradients where the channels fill the
 *                   vectors; 1x1 convolutions with a stride and no padding
 *                   (ResNet projections): GEMMs on the subsampled input,
 *                   the input gradient scattered straight into place;
 *                   im2col + GEMM otherwise.
 *   CX_CONV_DIRECT  as AUTO without Winograd.
 *   CX_CONV_GEMM    im2col + GEMM (column buffers tiled to 4 MiB) only.
 *   CX_CONV_WINOGRAD as AUTO, with Winograd wherever it applies (also on
 *                   small images, few tiles and from 8 channels).
 * Small 1-D / 2-D images (at most 256 output positions) take im2col + GEMM
 * over a batch of images at once (one GEMM for up to 1 MiB of columns).
 * The channels-last convolution (cx_conv2d_nhwc, cx_conv2d_bn_nhwc) takes
 * Winograd F(4x4, 3x3) (or F(2x2, 3x3): cx_conv_set_winograd_tile) under
 * AUTO and WINOGRAD for 3x3, stride 1, padding 1 layers whose channel
 * counts are multiples of 16 on AVX-512 builds (all three passes, any image
 * size), its direct kernels under DIRECT and GEMM.
 * The environment variable CX_CONV_ALGO=auto|direct|gemm|winograd sets the
 * initial choice; cx_conv_set_algo overrides it (not thread-safe: call it
 * between steps). */
typedef enum {
    CX_CONV_AUTO = 0,
    CX_CONV_DIRECT = 1,
    CX_CONV_GEMM = 2,
    CX_CONV_WINOGRAD = 3
} cx_conv_algo;
void cx_conv_set_algo(cx_conv_algo a);
cx_conv_algo cx_conv_get_algo(void);
/* The tile of the channels-last Winograd convolution: 4 (F(4x4, 3x3): 2.25
 * multiply-adds per output and channel pair where the direct sum takes 9;
 * rounding error at most 2e-6 of the sum of the absolute values of an
 * output's products, about 10x the direct sum's), 2 (F(2x2, 3x3): 4
 * multiply-adds, error as the direct sum's), or 0 (automatic, the default:
 * 4). The environment variable CX_WINOGRAD_TILE=2|4 sets the initial
 * choice; other values are an error here (not thread-safe: call between
 * steps). */
void cx_conv_set_winograd_tile(int m);
int cx_conv_get_winograd_tile(void);

/* Output size of a convolution / transposed convolution along one dim
 * (may be <= 0 for impossible geometries; the ops reject those). */
int cx_conv_out_size(int in, int kernel, int stride, int pad, int dil);
int cx_conv_transpose_out_size(int in, int kernel, int stride, int pad, int dil, int out_pad);

/* ---------------------------------------------------------------- modules
 * Parameters "weight" and "bias" (renamed "<prefix>.weight" inside a
 * Sequential), PyTorch's default init: weight and bias ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)), fan_in = weight dim 1 *
 * prod(kernel): C/groups * prod(kernel) for a convolution, O/groups *
 * prod(kernel) for a transposed one (PyTorch's rule). `o` may be NULL.
 * describe() gives e.g. "Conv2d(1 -> 6, k=5x5, s=1, p=0)", with ", d=2",
 * ", g=2", ", op=1" and ", no bias" when they apply. */
cx_module *cx_conv1d_new(int in_channels, int out_channels, int kernel, const cx_conv_opts *o,
                         bool bias);
cx_module *cx_conv2d_new(int in_channels, int out_channels, int kh, int kw,
                         const cx_conv_opts *o, bool bias);
cx_module *cx_conv3d_new(int in_channels, int out_channels, int kd, int kh, int kw,
                         const cx_conv_opts *o, bool bias);
cx_module *cx_conv_transpose2d_new(int in_channels, int out_channels, int kh, int kw,
                                   const cx_conv_opts *o, bool bias);
/* Weight / bias of any convolution module above (bias NULL without bias). */
cx_tensor *cx_conv_weight(cx_module *m);
cx_tensor *cx_conv_bias(cx_module *m);

/* ---------------------------------------------------------------- masked convolutions
 * PixelRNN / PixelCNN (van den Oord et al. 2016): a 2-D convolution whose
 * kernel is multiplied by a fixed 0/1 mask so that the output at pixel (r, c)
 * sees only pixels before it in raster order (row by row, left to right).
 * For an odd kh x kw kernel with centre (kh/2, kw/2) the mask is 1 on every
 * kernel row above the centre and left of the centre on its row, 0 below and
 * to the right; the centre itself is 0 for mask A (the first layer: a pixel
 * must not see itself) and 1 for mask B (later layers, whose features at
 * (r, c) already exclude pixel (r, c)). The mask is spatial only: channels
 * are not split into colour groups (binary / single-channel images).
 * Stride 1, zero padding (kh/2, kw/2): the output has the input's size.
 * Differentiable in x, w and b (the masked weights get zero gradient). */
typedef enum { CX_MASK_A = 0, CX_MASK_B = 1 } cx_conv_mask;
/* The mask as an F32 step tensor [kh, kw]. Errors: even or non-positive sides. */
cx_tensor *cx_conv_mask_new(int kh, int kw, cx_conv_mask type);
/* conv2d(x, w * mask, b): x [N, C, H, W], w [O, C, kh, kw] (odd kh, kw),
 * b [O] or NULL; result [N, O, H, W]. */
cx_tensor *cx_masked_conv2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, cx_conv_mask type);
/* Module: parameters "weight" [out, in, kh, kw] and "bias" [out], PyTorch's
 * Conv2d default init; describe() gives "MaskedConv2d(1 -> 16, k=7x7, mask A)". */
cx_module *cx_masked_conv2d_new(int in_channels, int out_channels, int kh, int kw, cx_conv_mask type,
                                bool bias);

/* Flatten: [N, ...] -> [N, prod(...)] (cx_flatten); no parameters. */
cx_module *cx_flatten_new(void);

#ifdef __cplusplus
}
#endif
#endif
