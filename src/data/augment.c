/* Image augmentation on a batch in place: random shift (crop with padding) and
 * horizontal flip. */
#include "../tensor/internal.h"

cx_augment_opts cx_augment_defaults(void) { return (cx_augment_opts){0, false}; }

void cx_augment_images(cx_tensor *x, const cx_augment_opts *o) {
    if (x->dtype != CX_F32 || x->ndim != 4) {
        char b[96];
        cx_fatal("augment_images: expected an F32 batch [B, C, H, W], got %s %s", cx_dtype_name(x->dtype),
                 cx_shape_str(x, b, sizeof b));
    }
    if (o->shift < 0) cx_fatal("augment_images: shift must be >= 0, got %d", o->shift);
    int B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    size_t plane = (size_t)H * W;
    float *tmp = cx_xmalloc(plane * sizeof(float));
    for (int b = 0; b < B; b++) {
        /* draw in a fixed order per image: dy, dx, flip */
        int dy = 0, dx = 0;
        if (o->shift > 0) {
            dy = (int)cx_rand_below((uint32_t)(2 * o->shift + 1)) - o->shift;
            dx = (int)cx_rand_below((uint32_t)(2 * o->shift + 1)) - o->shift;
        }
        bool flip = o->hflip && (cx_rand_u32() & 1u);
        if (!dy && !dx && !flip) continue;
        for (int c = 0; c < C; c++) {
            float *p = CX_F(x) + ((size_t)b * C + c) * plane;
            memcpy(tmp, p, plane * sizeof(float));
            for (int i = 0; i < H; i++) {
                int si = i - dy;
                for (int j = 0; j < W; j++) {
                    int jj = flip ? W - 1 - j : j; /* flip the output column */
                    int sj = jj - dx;
                    p[(size_t)i * W + j] = (si >= 0 && si < H && sj >= 0 && sj < W) ? tmp[(size_t)si * W + sj] : 0.0f;
                }
            }
        }
    }
    free(tmp);
}
