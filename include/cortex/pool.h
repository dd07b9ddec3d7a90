/* cortex/pool.h -- pooling (max, average, adaptive, global) and up-sampling
 * for convolutional networks, with PyTorch's semantics. See cortex.h.
 *
 * Layout: channels first. 2-D ops take x [N, C, H, W] (or an unbatched
 * [C, H, W]); 3-D ops take x [N, C, D, H, W] (or [C, D, H, W]). Every leading
 * dimension is a batch of independent planes; the result keeps them and
 * replaces the spatial sizes. All ops are differentiable (forward + backward),
 * allocate their result in the current arena and run over the N*C planes in
 * parallel (OpenMP) once the work is large enough.
 *
 * Output size of a pooling window (per spatial dim, size L, kernel k, stride
 * s, padding p), exactly as PyTorch:
 *     floor mode: out = floor((L + 2p - k) / s) + 1
 *     ceil mode:  out = ceil((L + 2p - k) / s) + 1, minus one when the last
 *                 window would start inside the right padding
 * Padding may be at most k/2 (PyTorch's rule) and out must be >= 1; both are
 * fatal errors naming the op and the shapes otherwise.
 *
 *   cx_tensor *y = cx_max_pool2d(x, 2, 2, 0, 0, 0, 0);  // 2x2, stride 2
 *   cx_pool_opts o = cx_pool2d_defaults(3, 3);              // 3x3 kernel ...
 *   o.stride[0] = o.stride[1] = 2; o.padding[0] = o.padding[1] = 1;
 *   o.ceil_mode = true;                                  // ... PyTorch ceil_mode
 *   cx_tensor *z = cx_avg_pool2d_ex(x, &o);
 */
#ifndef CORTEX_POOL_H
#define CORTEX_POOL_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- options */
/* Window options. Arrays are indexed by spatial dimension in PyTorch's tuple
 * order: 2-D {h, w} (index 2 unused), 3-D {d, h, w}. */
typedef struct cx_pool_opts {
    int kernel[3];     /* window size, >= 1 */
    int stride[3];     /* 0 -> equal to the kernel (PyTorch's default) */
    int padding[3];    /* implicit padding on both sides, 0 <= p <= kernel / 2 */
    bool ceil_mode;    /* PyTorch ceil_mode (default false: floor) */
    /* Average pooling only: divide by the number of real (non-padding)
     * elements of the window, i.e. PyTorch count_include_pad=False. The
     * default (false) counts the padding zeros, like PyTorch. */
    bool exclude_pad;
} cx_pool_opts;
/* The defaults for a kh x kw (2-D) or kd x kh x kw (3-D) window (the window
 * has no default): stride = kernel, no padding, floor mode. */
cx_pool_opts cx_pool2d_defaults(int kh, int kw);
cx_pool_opts cx_pool3d_defaults(int kd, int kh, int kw);

/* ---------------------------------------------------------------- max pooling */
/* 2-D max pooling, floor mode. Stride 0 means "equal to the kernel". The
 * padding is -inf (it never wins). Gradient: each output's gradient goes to
 * the first maximum of its window in row-major order (PyTorch's argmax; a NaN
 * in the window wins, so NaN propagates). */
cx_tensor *cx_max_pool2d(cx_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);
/* Same with every option (ceil_mode; exclude_pad is ignored). */
cx_tensor *cx_max_pool2d_ex(cx_tensor *x, const cx_pool_opts *o);
/* 3-D max pooling over (D, H, W) of x [N, C, D, H, W]. */
cx_tensor *cx_max_pool3d(cx_tensor *x, int kd, int kh, int kw, int sd, int sh, int sw,
                         int pd, int ph, int pw);
cx_tensor *cx_max_pool3d_ex(cx_tensor *x, const cx_pool_opts *o);

/* ---------------------------------------------------------------- average pooling */
/* 2-D average pooling, floor mode, count_include_pad=True (PyTorch's
 * defaults): the divisor is the window size clipped to the padded input. */
cx_tensor *cx_avg_pool2d(cx_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);
/* Same with every option (ceil_mode, exclude_pad = count_include_pad=False). */
cx_tensor *cx_avg_pool2d_ex(cx_tensor *x, const cx_pool_opts *o);
cx_tensor *cx_avg_pool3d(cx_tensor *x, int kd, int kh, int kw, int sd, int sh, int sw,
                         int pd, int ph, int pw);
cx_tensor *cx_avg_pool3d_ex(cx_tensor *x, const cx_pool_opts *o);

/* ---------------------------------------------------------------- adaptive / global */
/* PyTorch adaptive_avg_pool2d: output cell (i, j) averages input rows
 * [floor(i*H/out_h), ceil((i+1)*H/out_h)) and the columns likewise, so
 * windows may overlap or differ in size when H is not a multiple of out_h.
 * out_h, out_w >= 1 (they may exceed H, W). Result [N, C, out_h, out_w]. */
cx_tensor *cx_adaptive_avg_pool2d(cx_tensor *x, int out_h, int out_w);
/* Mean over H and W of x [N, C, H, W]: result [N, C, 1, 1] (keeps the
 * spatial dims, like AdaptiveAvgPool2d(1); cx_flatten gives [N, C]). */
cx_tensor *cx_global_avg_pool2d(cx_tensor *x);

/* ---------------------------------------------------------------- up-sampling */
/* F.interpolate(mode='nearest', size=(out_h, out_w)) of x [N, C, H, W]:
 * src = min(floor(dst * (in / out)), in - 1) per dim, in float like PyTorch.
 * The gradient of an input pixel is the sum over the outputs copying it. */
cx_tensor *cx_upsample_nearest2d(cx_tensor *x, int out_h, int out_w);
/* F.interpolate(mode='nearest', scale_factor=(scale_h, scale_w)): out =
 * floor(in * scale) and src = min(floor(dst * (float)(1 / scale)), in - 1)
 * -- for a non-integer scale this can differ from the size form above
 * (PyTorch maps with the given scale, not in / out). scale > 0. This is
 * PyTorch's NCHW kernel; PyTorch 1.13 runs a channels-last kernel when C == 1
 * which copies straight through when out == in even for scale != 1 (e.g.
 * 1.3 on a size-3 dim); Cortex always follows the NCHW kernel. */
cx_tensor *cx_upsample_nearest2d_scale(cx_tensor *x, double scale_h, double scale_w);
/* F.interpolate(mode='bilinear', size=(out_h, out_w), align_corners=...).
 * align_corners=true: src = dst * (in - 1) / (out - 1) (0 when out == 1).
 * align_corners=false: src = max((dst + 0.5) * in / out - 0.5, 0) (PyTorch
 * clamps negative source coordinates to 0); the right neighbour is clamped
 * to in - 1. */
cx_tensor *cx_upsample_bilinear2d(cx_tensor *x, int out_h, int out_w, bool align_corners);
/* Bilinear with scale_factor: out = floor(in * scale); with
 * align_corners=false the coordinate map uses 1 / scale like PyTorch. */
cx_tensor *cx_upsample_bilinear2d_scale(cx_tensor *x, double scale_h, double scale_w,
                                        bool align_corners);

/* ---------------------------------------------------------------- modules
 * Parameter-free modules wrapping the ops above. describe() gives e.g.
 * "MaxPool2d(k=2, s=2)", "AvgPool2d(k=3, s=2, p=1, ceil)",
 * "AdaptiveAvgPool2d(3x4)", "Upsample(bilinear, scale=2, align_corners)". */
/* Square (cubic) windows: kernel, stride (0 -> kernel), padding. */
cx_module *cx_maxpool2d_new(int kernel, int stride, int padding);
cx_module *cx_avgpool2d_new(int kernel, int stride, int padding);
cx_module *cx_maxpool3d_new(int kernel, int stride, int padding);
cx_module *cx_avgpool3d_new(int kernel, int stride, int padding);
/* Any window / option: kind is one of the four pooling kinds below. */
typedef enum { CX_POOL_MAX2D, CX_POOL_AVG2D, CX_POOL_MAX3D, CX_POOL_AVG3D } cx_pool_kind;
cx_module *cx_pool_new(cx_pool_kind kind, const cx_pool_opts *o);
cx_module *cx_adaptive_avgpool2d_new(int out_h, int out_w);

typedef enum { CX_UPSAMPLE_NEAREST = 0, CX_UPSAMPLE_BILINEAR = 1 } cx_upsample_mode;
/* nn.Upsample(scale_factor=scale, mode, align_corners): the same scale for H
 * and W (align_corners is ignored by nearest). */
cx_module *cx_upsample_new(cx_upsample_mode mode, double scale, bool align_corners);
/* nn.Upsample(size=(out_h, out_w), mode, align_corners). */
cx_module *cx_upsample_size_new(cx_upsample_mode mode, int out_h, int out_w, bool align_corners);

#ifdef __cplusplus
}
#endif
#endif
