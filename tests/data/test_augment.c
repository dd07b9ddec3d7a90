/* Image augmentation: every output image is the input shifted by at most
 * `shift` pixels with zeros shifted in, mirrored or not; the draws come from
 * the Cortex PRNG (same seed, same batch); bad input is a fatal error. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

enum { B = 24, C = 2, H = 7, W = 9 };

static float src_at(const float *img, int c, int i, int j) {
    if (i < 0 || i >= H || j < 0 || j >= W) return 0.0f;
    return img[(c * H + i) * W + j];
}

/* Does out equal in shifted by (dy, dx), optionally mirrored? */
static int matches(const float *in, const float *out, int dy, int dx, int flip) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                int jj = flip ? W - 1 - j : j;
                if (out[(c * H + i) * W + j] != src_at(in, c, i - dy, jj - dx)) return 0;
            }
    return 1;
}

static void fill(cx_tensor *x) {
    for (int64_t k = 0; k < x->numel; k++) CX_F(x)[k] = 1.0f + (float)(k % 97); /* no zeros */
}

static void test_shift_and_flip(void) {
    cx_tensor *x = cx_empty(CX_F32, CX_SHAPE(B, C, H, W));
    fill(x);
    float *orig = malloc((size_t)x->numel * sizeof(float));
    memcpy(orig, x->data, (size_t)x->numel * sizeof(float));
    cx_seed(11);
    cx_augment_opts o = {2, true};
    cx_augment_images(x, &o);
    int flips = 0, moved = 0;
    for (int b = 0; b < B; b++) {
        const float *in = orig + (size_t)b * C * H * W, *out = CX_F(x) + (size_t)b * C * H * W;
        int found = 0;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++)
                for (int f = 0; f < 2 && !found; f++)
                    if (matches(in, out, dy, dx, f)) {
                        found = 1;
                        flips += f;
                        moved += dy || dx;
                    }
        CHECK_MSG(found, "image %d is not a shifted/mirrored copy", b);
    }
    CHECK(flips > 0 && flips < B); /* both outcomes occur */
    CHECK(moved > B / 2);
    /* same seed, same result */
    cx_tensor *y = cx_empty(CX_F32, CX_SHAPE(B, C, H, W));
    memcpy(y->data, orig, (size_t)y->numel * sizeof(float));
    cx_seed(11);
    cx_augment_images(y, &o);
    CHECK(memcmp(x->data, y->data, (size_t)x->numel * sizeof(float)) == 0);
    /* nothing requested: identity */
    memcpy(y->data, orig, (size_t)y->numel * sizeof(float));
    cx_augment_opts none = {0, false};
    cx_augment_images(y, &none);
    CHECK(memcmp(y->data, orig, (size_t)y->numel * sizeof(float)) == 0);
    free(orig);
}

static void test_errors(void) {
    cx_tensor *flat = cx_zeros(CX_SHAPE(4, 49));
    cx_augment_opts o = {1, false};
    EXPECT_FATAL(cx_augment_images(flat, &o), "augment_images", "[B, C, H, W]");
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 1, 3, 3));
    cx_augment_opts bad = {-1, false};
    EXPECT_FATAL(cx_augment_images(x, &bad), "shift must be >= 0");
}

/* the defaults augment nothing */
static void test_defaults_are_identity(void) {
    cx_augment_opts o = cx_augment_defaults();
    CHECK(o.shift == 0 && !o.hflip);
    cx_seed(3);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 4, 4), 0, 1);
    float before[32];
    memcpy(before, x->data, sizeof before);
    cx_augment_images(x, &o);
    CHECK(memcmp(before, x->data, sizeof before) == 0);
}

int main(void) {
    RUN(test_defaults_are_identity);
    RUN(test_shift_and_flip);
    RUN(test_errors);
    TEST_END();
}
