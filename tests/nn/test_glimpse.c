/* The glimpse sensor of hard attention (cx_glimpse): hand-worked patches in
 * the middle, at a corner (zero padding) and wholly outside, the pooling of
 * the coarse scales, channel / batch order, no gradient, errors. */
#include <math.h>
#include <string.h>

#include "test.h"

/* 4x4 image holding 1..16 row by row */
static cx_tensor *ramp4(void) {
    cx_tensor *x = cx_empty(CX_F32, CX_SHAPE(1, 1, 4, 4));
    for (int i = 0; i < 16; i++) CX_F(x)[i] = (float)(i + 1);
    return x;
}

static cx_tensor *at(float x, float y) {
    cx_tensor *l = cx_empty(CX_F32, CX_SHAPE(1, 2));
    CX_F(l)[0] = x;
    CX_F(l)[1] = y;
    return l;
}

static bool same(const cx_tensor *t, const float *want, int n) {
    for (int i = 0; i < n; i++)
        if (fabsf(CX_F(t)[i] - want[i]) > 1e-6f) return false;
    return true;
}

static void test_hand(void) {
    cx_tensor *x = ramp4();
    /* centre (2, 2) px: the 2x2 patch rows/cols 1..2; the 4x4 patch is the
     * whole image pooled 2x2 */
    cx_tensor *g = cx_glimpse(x, at(0, 0), 2, 2, 2);
    CHECK(g->ndim == 4 && g->shape[0] == 1 && g->shape[1] == 2 && g->shape[2] == 2 && g->shape[3] == 2);
    const float w0[8] = {6, 7, 10, 11, (1 + 2 + 5 + 6) / 4.f, (3 + 4 + 7 + 8) / 4.f, (9 + 10 + 13 + 14) / 4.f,
                         (11 + 12 + 15 + 16) / 4.f};
    CHECK(same(g, w0, 8));
    /* top-left corner: centre (0, 0) px, half the 2x2 patch outside = 0 */
    g = cx_glimpse(x, at(-1, -1), 2, 2, 2);
    const float w1[8] = {0, 0, 0, 1, 0, 0, 0, (1 + 2 + 5 + 6) / 4.f};
    CHECK(same(g, w1, 8));
    /* bottom-right corner */
    g = cx_glimpse(x, at(1, 1), 2, 1, 2);
    const float w2[4] = {16, 0, 0, 0};
    CHECK(same(g, w2, 4));
    /* wholly outside: zeros */
    g = cx_glimpse(x, at(5, -7), 2, 3, 2);
    for (int i = 0; i < 12; i++) CHECK(CX_F(g)[i] == 0);
    /* size 1, scale 3: a pixel, then a 3x3 mean */
    g = cx_glimpse(x, at(-0.25f, -0.25f), 1, 2, 3); /* centre (1.5, 1.5) px -> pixel (1, 1) */
    const float w3[2] = {6, (1 + 2 + 3 + 5 + 6 + 7 + 9 + 10 + 11) / 9.f};
    CHECK(same(g, w3, 2));
    /* scale 1: every scale is the same patch */
    g = cx_glimpse(x, at(0, 0), 3, 3, 1);
    for (int i = 0; i < 9; i++) CHECK(CX_F(g)[i] == CX_F(g)[9 + i] && CX_F(g)[i] == CX_F(g)[18 + i]);
}

/* On a random image the mean of each pooled patch lying inside the image
 * equals the mean of its pixels; channels and batch items keep their order. */
static void test_pooling_and_order(void) {
    const int B = 3, C = 2, H = 20, W = 24, S = 3, K = 3;
    cx_tensor *x = cx_randn(CX_SHAPE(B, C, H, W), 0, 1);
    cx_tensor *loc = cx_empty(CX_F32, CX_SHAPE(B, 2));
    for (int b = 0; b < B; b++) {
        CX_F(loc)[2 * b] = -0.1f + 0.05f * b;
        CX_F(loc)[2 * b + 1] = 0.1f - 0.05f * b;
    }
    cx_tensor *g = cx_glimpse(x, loc, S, K, 2);
    CHECK(g->shape[0] == B && g->shape[1] == K * C && g->shape[2] == S && g->shape[3] == S);
    for (int b = 0; b < B; b++)
        for (int j = 0, f = 1; j < K; j++, f *= 2)
            for (int c = 0; c < C; c++) {
                double cx = (CX_F(loc)[2 * b] + 1.0) * W / 2, cy = (CX_F(loc)[2 * b + 1] + 1.0) * H / 2;
                int side = S * f, x0 = (int)floor(cx - side / 2.0 + 0.5), y0 = (int)floor(cy - side / 2.0 + 0.5);
                CHECK(x0 >= 0 && y0 >= 0 && x0 + side <= W && y0 + side <= H);
                double raw = 0, pooled = 0;
                for (int y = 0; y < side; y++)
                    for (int xx = 0; xx < side; xx++)
                        raw += CX_F(x)[(((size_t)b * C + c) * H + y0 + y) * W + x0 + xx];
                const float *p = CX_F(g) + (((size_t)b * K + j) * C + c) * S * S;
                for (int i = 0; i < S * S; i++) pooled += p[i];
                CHECK_NEAR(pooled / (S * S), raw / (side * side), 1e-5);
                /* the top-left cell is the mean of its f x f pixels */
                double cell = 0;
                for (int y = 0; y < f; y++)
                    for (int xx = 0; xx < f; xx++) cell += CX_F(x)[(((size_t)b * C + c) * H + y0 + y) * W + x0 + xx];
                CHECK_NEAR(p[0], cell / (f * f), 1e-5);
            }
}

static void test_no_grad_and_errors(void) {
    cx_tensor *x = cx_param_new("img", CX_SHAPE(2, 1, 8, 8));
    cx_tensor *g = cx_glimpse(x, cx_zeros(CX_SHAPE(2, 2)), 2, 2, 2);
    CHECK(!g->requires_grad);
    EXPECT_FATAL(cx_glimpse(cx_zeros(CX_SHAPE(2, 8, 8)), cx_zeros(CX_SHAPE(2, 2)), 2, 1, 2), "glimpse",
                 "x has shape [2, 8, 8]");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(3, 2)), 2, 1, 2), "glimpse", "loc has shape [3, 2]", "[2, 2]");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(2, 3)), 2, 1, 2), "glimpse", "loc has shape [2, 3]");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(2, 2)), 0, 1, 2), "glimpse", "size 0");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(2, 2)), 2, 9, 2), "glimpse", "n_scales 9");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(2, 2)), 2, 2, 0), "glimpse", "scale 0");
    EXPECT_FATAL(cx_glimpse(x, cx_zeros(CX_SHAPE(2, 2)), 1000, 8, 8), "glimpse", "largest patch");
    cx_tensor *bad = cx_zeros(CX_SHAPE(2, 2));
    CX_F(bad)[3] = NAN;
    EXPECT_FATAL(cx_glimpse(x, bad, 2, 1, 2), "glimpse", "loc[1]", "not finite");
    cx_tensor_free(x);
}

int main(void) {
    RUN(test_hand);
    RUN(test_pooling_and_order);
    RUN(test_no_grad_and_errors);
    TEST_END();
}
