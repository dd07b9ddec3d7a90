/* The glimpse sensor of hard attention (cortex/attention.h): a retina of
 * square patches of growing size around a location, each average-pooled to
 * the same small resolution (Mnih et al. 2014, "Recurrent Models of Visual
 * Attention", section 3.1). */
#include <math.h>
#include <string.h>

#include "cortex/attention.h"
#include "cortex/core.h"

cx_tensor *cx_glimpse(const cx_tensor *x, const cx_tensor *loc, int size, int n_scales, int scale) {
    const char *op = "glimpse";
    char s1[96], s2[96];
    if (!x || !loc) cx_fatal("%s: x and loc must not be NULL", op);
    if (x->dtype != CX_F32 || x->ndim != 4)
        cx_fatal("%s: x has shape %s (%s), expected F32 [B, C, H, W]", op, cx_shape_str(x, s1, sizeof s1),
                 cx_dtype_name(x->dtype));
    const int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    if (loc->dtype != CX_F32 || loc->ndim != 2 || loc->shape[0] != B || loc->shape[1] != 2)
        cx_fatal("%s: loc has shape %s, expected F32 [B, 2] = [%d, 2] for x %s", op,
                 cx_shape_str(loc, s1, sizeof s1), B, cx_shape_str(x, s2, sizeof s2));
    if (size < 1 || size > 1024) cx_fatal("%s: size %d (expected 1..1024 pixels)", op, size);
    if (n_scales < 1 || n_scales > 8) cx_fatal("%s: n_scales %d (expected 1..8)", op, n_scales);
    if (scale < 1 || scale > 8) cx_fatal("%s: scale %d (expected 1..8)", op, scale);
    long big = size;
    for (int j = 1; j < n_scales; j++) big *= scale;
    if (big > 65536) cx_fatal("%s: the largest patch would be %ld pixels wide (size * scale^(n_scales-1))", op, big);
    cx_tensor *out = cx_empty(CX_F32, (const int[]){B, n_scales * C, size, size}, 4);
    float *o = CX_F(out);
    const float *px = CX_F(x), *pl = CX_F(loc);
    for (int b = 0; b < B; b++) {
        float lx = pl[2 * b], ly = pl[2 * b + 1];
        if (!isfinite(lx) || !isfinite(ly))
            cx_fatal("%s: loc[%d] = (%g, %g) is not finite", op, b, (double)lx, (double)ly);
        /* the centre in pixel coordinates: -1 = the left/top edge, +1 = the
         * right/bottom edge of the image (align_corners=False convention) */
        double cx = ((double)lx + 1.0) * W / 2.0, cy = ((double)ly + 1.0) * H / 2.0;
        int f = 1; /* pooling factor of scale j: scale^j */
        for (int j = 0; j < n_scales; j++, f *= scale) {
            int side = size * f;
            int x0 = (int)floor(cx - side / 2.0 + 0.5), y0 = (int)floor(cy - side / 2.0 + 0.5);
            float inv = 1.0f / (float)(f * f);
            for (int c = 0; c < C; c++) {
                const float *img = px + (((size_t)b * C + c) * H) * W;
                float *dst = o + (((size_t)b * n_scales + j) * C + c) * (size_t)size * size;
                for (int gy = 0; gy < size; gy++)
                    for (int gx = 0; gx < size; gx++) {
                        double acc = 0;
                        for (int dy = 0; dy < f; dy++) {
                            int yy = y0 + gy * f + dy;
                            if (yy < 0 || yy >= H) continue;
                            for (int dx = 0; dx < f; dx++) {
                                int xx = x0 + gx * f + dx;
                                if (xx >= 0 && xx < W) acc += img[(size_t)yy * W + xx];
                            }
                        }
                        dst[gy * size + gx] = (float)acc * inv;
                    }
            }
        }
    }
    return out;
}
