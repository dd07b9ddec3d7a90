/* Initialisers: fans, gains, Xavier / Kaiming bounds and statistics,
 * orthogonal matrices, determinism under cx_seed. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"


static void stats(const cx_tensor *t, double *mean, double *std, double *maxabs) {
    double s = 0, s2 = 0, m = 0;
    const float *d = CX_F(t);
    for (int64_t i = 0; i < t->numel; i++) {
        s += d[i];
        s2 += (double)d[i] * d[i];
        if (fabs(d[i]) > m) m = fabs(d[i]);
    }
    *mean = s / (double)t->numel;
    *std = sqrt(s2 / (double)t->numel - *mean * *mean);
    *maxabs = m;
}

/* ---------------------------------------------------------------- fans and gains */
static void test_fans(void) {
    int fi = -1, fo = -1;
    cx_tensor *w2 = cx_tensor_new(CX_F32, CX_SHAPE(5, 3));
    cx_init_fans(w2, &fi, &fo);
    CHECK(fi == 3 && fo == 5);
    cx_tensor *w4 = cx_tensor_new(CX_F32, CX_SHAPE(8, 4, 3, 2));
    cx_init_fans(w4, &fi, &fo);
    CHECK_MSG(fi == 4 * 3 * 2 && fo == 8 * 3 * 2, "fans %d %d", fi, fo);
    cx_tensor *w3 = cx_tensor_new(CX_F32, CX_SHAPE(6, 2, 5));
    cx_init_fans(w3, &fi, &fo);
    CHECK(fi == 10 && fo == 30);
    cx_tensor *v = cx_tensor_new(CX_F32, CX_SHAPE(7));
    EXPECT_FATAL(cx_init_fans(v, &fi, &fo), "at least 2 dimensions");
    EXPECT_FATAL(cx_init_xavier_uniform(v, 1.0f), "2 dimensions");
    EXPECT_FATAL(cx_init_kaiming_normal(v, 0, CX_FAN_IN, "relu"), "2 dimensions");
    EXPECT_FATAL(cx_init_orthogonal(v, 1.0f), "2 dimensions");
    cx_tensor_free(w2);
    cx_tensor_free(w4);
    cx_tensor_free(w3);
    cx_tensor_free(v);
}

static void test_gains(void) {
    CHECK_NEAR(cx_init_gain("linear", 0), 1.0, 1e-7);
    CHECK_NEAR(cx_init_gain("sigmoid", 0), 1.0, 1e-7);
    CHECK_NEAR(cx_init_gain("conv2d", 0), 1.0, 1e-7);
    CHECK_NEAR(cx_init_gain("tanh", 0), 5.0 / 3.0, 1e-6);
    CHECK_NEAR(cx_init_gain("relu", 0), sqrt(2.0), 1e-6);
    CHECK_NEAR(cx_init_gain("leaky_relu", 0.2f), sqrt(2.0 / (1.0 + 0.04)), 1e-6);
    CHECK_NEAR(cx_init_gain("leaky_relu", 0.01f), sqrt(2.0 / (1.0 + 1e-4)), 1e-6);
    CHECK_NEAR(cx_init_gain("leaky_relu", 0), sqrt(2.0), 1e-6);
    CHECK_NEAR(cx_init_gain("selu", 0), 0.75, 1e-7);
    EXPECT_FATAL(cx_init_gain("swish", 0), "swish");
}

/* ---------------------------------------------------------------- xavier */
static void test_xavier_uniform(void) {
    cx_seed(1);
    const int fo = 300, fi = 200;
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(fo, fi));
    const float gains[2] = {1.0f, 5.0f / 3.0f};
    for (int g = 0; g < 2; g++) {
        cx_init_xavier_uniform(w, gains[g]);
        double bound = gains[g] * sqrt(6.0 / (fi + fo)), mean, std, maxabs;
        stats(w, &mean, &std, &maxabs);
        CHECK_MSG(maxabs <= bound * (1 + 1e-6), "max |w| %g > bound %g", maxabs, bound);
        CHECK_MSG(maxabs > 0.99 * bound, "max |w| %g far below bound %g", maxabs, bound);
        double var_theory = gains[g] * gains[g] * 2.0 / (fi + fo); /* bound^2 / 3 */
        CHECK_MSG(fabs(std * std / var_theory - 1) < 0.03, "var %g vs %g", std * std, var_theory);
        CHECK_MSG(fabs(mean) < 0.01 * bound, "mean %g", mean);
    }
    /* 4-D: fans include the receptive field */
    cx_tensor *c = cx_tensor_new(CX_F32, CX_SHAPE(64, 32, 3, 3));
    cx_init_xavier_uniform(c, 1.0f);
    double bound = sqrt(6.0 / (32 * 9 + 64 * 9)), mean, std, maxabs;
    stats(c, &mean, &std, &maxabs);
    CHECK(maxabs <= bound * (1 + 1e-6) && maxabs > 0.99 * bound);
    CHECK_NEAR(std, bound / sqrt(3.0), 0.03 * bound / sqrt(3.0));
    cx_tensor_free(c);
    cx_tensor_free(w);
}

static void test_xavier_normal(void) {
    cx_seed(2);
    const int fo = 250, fi = 400;
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(fo, fi));
    for (int g = 1; g <= 2; g++) {
        cx_init_xavier_normal(w, (float)g);
        double want = g * sqrt(2.0 / (fi + fo)), mean, std, maxabs;
        stats(w, &mean, &std, &maxabs);
        CHECK_MSG(fabs(std / want - 1) < 0.02, "std %g vs %g", std, want);
        CHECK_MSG(fabs(mean) < 0.02 * want, "mean %g", mean);
        CHECK(maxabs > 3 * want); /* a normal, not a narrow uniform */
    }
    cx_tensor_free(w);
}

/* ---------------------------------------------------------------- kaiming */
static void test_kaiming(void) {
    cx_seed(3);
    const int rows = 200, cols = 400; /* fan_in 400, fan_out 200 */
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(rows, cols));
    struct { const char *nl; float a; double gain; } cases[3] = {
        {"relu", 0.0f, sqrt(2.0)},
        {"leaky_relu", 0.2f, sqrt(2.0 / 1.04)},
        {NULL, 0.2f, sqrt(2.0 / 1.04)}, /* default nonlinearity: leaky_relu with a */
    };
    for (int c = 0; c < 3; c++)
        for (int mode = 0; mode < 2; mode++) {
            int fan = mode == CX_FAN_IN ? cols : rows;
            double want = cases[c].gain / sqrt((double)fan), mean, std, maxabs;
            const char *label = cases[c].nl ? cases[c].nl : "(default)";

            cx_init_kaiming_uniform(w, cases[c].a, (cx_fan_mode)mode, cases[c].nl);
            stats(w, &mean, &std, &maxabs);
            double bound = sqrt(3.0) * want;
            CHECK_MSG(maxabs <= bound * (1 + 1e-6) && maxabs > 0.99 * bound,
                      "%s uniform mode %d: max %g bound %g", label, mode, maxabs, bound);
            CHECK_MSG(fabs(std / want - 1) < 0.02, "%s uniform mode %d: std %g vs %g", label, mode, std, want);

            cx_init_kaiming_normal(w, cases[c].a, (cx_fan_mode)mode, cases[c].nl);
            stats(w, &mean, &std, &maxabs);
            CHECK_MSG(fabs(std / want - 1) < 0.02, "%s normal mode %d: std %g vs %g", label, mode, std, want);
            CHECK_MSG(fabs(mean) < 0.02 * want, "%s normal mode %d: mean %g", label, mode, mean);
        }
    /* fan_in vs fan_out really differ by sqrt(2) here */
    double s_in, s_out, m, mx;
    cx_init_kaiming_normal(w, 0, CX_FAN_IN, "relu");
    stats(w, &m, &s_in, &mx);
    cx_init_kaiming_normal(w, 0, CX_FAN_OUT, "relu");
    stats(w, &m, &s_out, &mx);
    CHECK_NEAR(s_out / s_in, sqrt(2.0), 0.04);
    /* tanh gain through kaiming too */
    cx_init_kaiming_normal(w, 0, CX_FAN_IN, "tanh");
    stats(w, &m, &s_in, &mx);
    CHECK_NEAR(s_in, (5.0 / 3.0) / sqrt((double)cols), 0.02 * (5.0 / 3.0) / sqrt((double)cols));
    EXPECT_FATAL(cx_init_kaiming_uniform(w, 0, CX_FAN_IN, "nope"), "nope");
    cx_tensor_free(w);
}

static void test_simple_inits(void) {
    cx_seed(4);
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(100, 100));
    cx_init_constant(w, 0.25f);
    int ok = 1;
    for (int64_t i = 0; i < w->numel; i++) ok &= CX_F(w)[i] == 0.25f;
    CHECK(ok);
    cx_init_uniform(w, -0.5f, 1.5f);
    double mean, std, maxabs, lo = 1e9, hi = -1e9;
    for (int64_t i = 0; i < w->numel; i++) {
        lo = fmin(lo, CX_F(w)[i]);
        hi = fmax(hi, CX_F(w)[i]);
    }
    CHECK(lo >= -0.5 && hi < 1.5 && lo < -0.49 && hi > 1.49);
    stats(w, &mean, &std, &maxabs);
    CHECK_NEAR(mean, 0.5, 0.02);
    cx_init_normal(w, 3.0f, 0.5f);
    stats(w, &mean, &std, &maxabs);
    CHECK_NEAR(mean, 3.0, 0.02);
    CHECK_NEAR(std, 0.5, 0.015);
    cx_tensor_free(w);
}

/* ---------------------------------------------------------------- orthogonal */
/* max |G - gain^2 I| where G = W W^T (rows) or W^T W (cols) of W [r, c] */
static double ortho_error(const float *w, int r, int c, bool by_rows, double gain) {
    int n = by_rows ? r : c;
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            if (by_rows)
                for (int k = 0; k < c; k++) s += (double)w[i * c + k] * w[j * c + k];
            else
                for (int k = 0; k < r; k++) s += (double)w[k * c + i] * w[k * c + j];
            double e = fabs(s - (i == j ? gain * gain : 0.0));
            if (e > worst) worst = e;
        }
    return worst;
}

static void test_orthogonal(void) {
    cx_seed(5);
    struct { int r, c; float gain; } cases[5] = {
        {4, 10, 1.0f}, {10, 4, 1.0f}, {16, 16, 1.0f}, {32, 20, 2.0f}, {3, 50, 0.5f}};
    for (int k = 0; k < 5; k++) {
        int r = cases[k].r, c = cases[k].c;
        cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(r, c));
        cx_init_orthogonal(w, cases[k].gain);
        bool by_rows = r <= c;
        double e = ortho_error(CX_F(w), r, c, by_rows, cases[k].gain);
        CHECK_MSG(e < 1e-4, "[%d, %d] gain %g: max deviation from gain^2 I is %g", r, c,
                  (double)cases[k].gain, e);
        if (r == c) {
            double e2 = ortho_error(CX_F(w), r, c, false, cases[k].gain);
            CHECK_MSG(e2 < 1e-4, "square: W^T W deviation %g", e2);
        }
        /* the entries are not a trivial (permuted identity) matrix */
        int nonzero = 0;
        for (int64_t i = 0; i < w->numel; i++) nonzero += fabsf(CX_F(w)[i]) > 1e-3f;
        CHECK(nonzero > w->numel / 2);
        cx_tensor_free(w);
    }
    /* 4-D: viewed as [size(0), rest] = [6, 18] */
    cx_tensor *c4 = cx_tensor_new(CX_F32, CX_SHAPE(6, 2, 3, 3));
    cx_init_orthogonal(c4, 1.0f);
    CHECK(ortho_error(CX_F(c4), 6, 18, true, 1.0) < 1e-4);
    cx_tensor_free(c4);
    cx_tensor *c4t = cx_tensor_new(CX_F32, CX_SHAPE(40, 2, 2, 2));
    cx_init_orthogonal(c4t, 1.0f);
    CHECK(ortho_error(CX_F(c4t), 40, 8, false, 1.0) < 1e-4);
    cx_tensor_free(c4t);
    /* zero-element tensors are left alone (PyTorch: a no-op), not a crash */
    cx_tensor *z0 = cx_tensor_new(CX_F32, CX_SHAPE(0, 5));
    cx_tensor *z1 = cx_tensor_new(CX_F32, CX_SHAPE(5, 0));
    cx_init_orthogonal(z0, 1.0f);
    cx_init_orthogonal(z1, 1.0f);
    cx_init_xavier_uniform(z1, 1.0f);
    cx_init_kaiming_uniform(z0, 0, CX_FAN_IN, "relu");
    CHECK(z0->numel == 0 && z1->numel == 0);
    cx_tensor_free(z0);
    cx_tensor_free(z1);
}

/* ---------------------------------------------------------------- determinism */
typedef void (*init_fn)(cx_tensor *t);
static void i_xu(cx_tensor *t) { cx_init_xavier_uniform(t, 1.0f); }
static void i_xn(cx_tensor *t) { cx_init_xavier_normal(t, 1.0f); }
static void i_ku(cx_tensor *t) { cx_init_kaiming_uniform(t, 0, CX_FAN_IN, "relu"); }
static void i_kn(cx_tensor *t) { cx_init_kaiming_normal(t, 0, CX_FAN_OUT, "relu"); }
static void i_or(cx_tensor *t) { cx_init_orthogonal(t, 1.0f); }
static void i_un(cx_tensor *t) { cx_init_uniform(t, -1, 1); }
static void i_no(cx_tensor *t) { cx_init_normal(t, 0, 1); }

static void test_determinism(void) {
    init_fn fns[7] = {i_xu, i_xn, i_ku, i_kn, i_or, i_un, i_no};
    const char *names[7] = {"xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
                            "orthogonal", "uniform", "normal"};
    for (int k = 0; k < 7; k++) {
        cx_tensor *a = cx_tensor_new(CX_F32, CX_SHAPE(12, 9));
        cx_tensor *b = cx_tensor_new(CX_F32, CX_SHAPE(12, 9));
        cx_tensor *c = cx_tensor_new(CX_F32, CX_SHAPE(12, 9));
        cx_seed(77);
        fns[k](a);
        cx_seed(77);
        fns[k](b);
        cx_seed(78);
        fns[k](c);
        CHECK_MSG(memcmp(a->data, b->data, 12 * 9 * sizeof(float)) == 0, "%s: same seed differs", names[k]);
        CHECK_MSG(memcmp(a->data, c->data, 12 * 9 * sizeof(float)) != 0, "%s: other seed equal", names[k]);
        /* a second draw without reseeding gives new values */
        fns[k](b);
        CHECK_MSG(memcmp(a->data, b->data, 12 * 9 * sizeof(float)) != 0, "%s: repeated draw equal", names[k]);
        cx_tensor_free(a);
        cx_tensor_free(b);
        cx_tensor_free(c);
    }
    /* Linear's default init follows the seed as well */
    cx_seed(5);
    cx_module *l1 = cx_linear_new(8, 4, true);
    cx_seed(5);
    cx_module *l2 = cx_linear_new(8, 4, true);
    CHECK(memcmp(cx_linear_weight(l1)->data, cx_linear_weight(l2)->data, 32 * sizeof(float)) == 0);
    CHECK(memcmp(cx_linear_bias(l1)->data, cx_linear_bias(l2)->data, 4 * sizeof(float)) == 0);
    cx_module_free(l1);
    cx_module_free(l2);
}

int main(void) {
    RUN(test_fans);
    RUN(test_gains);
    RUN(test_xavier_uniform);
    RUN(test_xavier_normal);
    RUN(test_kaiming);
    RUN(test_simple_inits);
    RUN(test_orthogonal);
    RUN(test_determinism);
    TEST_END();
}
