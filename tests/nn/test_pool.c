/* Pooling (max / average 2-D and 3-D, adaptive, global) and up-sampling
 * (nearest, bilinear): PyTorch fixtures for forward and gradients,
 * finite-difference gradient checks, modules and error messages.
 *
 * The fixtures come from tools/gen_pool_norm_fixtures.py (run with
 * /usr/bin/python3), file tests/fixtures/pool_norm/pool.safetensors
 * (override with CX_POOL_FIXTURE). Each case C holds C.in0, C.out, C.gout and
 * C.grad0 = d sum(out * gout) / d in0; the parameters of each case are in its
 * name and in the table below (keep both in sync). Missing file = failure. */
#include "test.h"
#include <stdlib.h>

#define RTOL 1e-4
#define ATOL 1e-5
#define EPS 1e-2f
#define GC_ATOL 2e-3f
#define GC_RTOL 1e-2f

static cx_st_file *FX;
static int n_cases_run;

/* ------------------------------------------------------------ fixture cases */
static cx_pool_opts po2(int kh, int kw, int sh, int sw, int ph, int pw, bool ceil, bool excl) {
    cx_pool_opts o = {{kh, kw, 1}, {sh, sw, 0}, {ph, pw, 0}, ceil, excl};
    return o;
}
static cx_pool_opts po3(int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph, int pw, bool ceil,
                        bool excl) {
    cx_pool_opts o = {{kd, kh, kw}, {sd, sh, sw}, {pd, ph, pw}, ceil, excl};
    return o;
}
#define P2(...) (&(cx_pool_opts[]){po2(__VA_ARGS__)}[0])
#define P3(...) (&(cx_pool_opts[]){po3(__VA_ARGS__)}[0])

/* X(identifier, "fixture name", expression of x) */
#define CASES(X) \
    X(max2d_k2, "max2d_k2", cx_max_pool2d(x, 2, 2, 0, 0, 0, 0)) \
    X(max2d_k3_s2_p1, "max2d_k3_s2_p1", cx_max_pool2d(x, 3, 3, 2, 2, 1, 1)) \
    X(max2d_k3x2_s1x2_p1x0, "max2d_k3x2_s1x2_p1x0", cx_max_pool2d(x, 3, 2, 1, 2, 1, 0)) \
    X(max2d_ceil, "max2d_k3_s2_p1_ceil", cx_max_pool2d_ex(x, P2(3, 3, 2, 2, 1, 1, true, false))) \
    X(max2d_k2_s3_ceil, "max2d_k2_s3_ceil", cx_max_pool2d_ex(x, P2(2, 2, 3, 3, 0, 0, true, false))) \
    X(max2d_ties1, "max2d_ties_k3_s2_p1", cx_max_pool2d(x, 3, 3, 2, 2, 1, 1)) \
    X(max2d_ties2, "max2d_ties_k2_s1", cx_max_pool2d(x, 2, 2, 1, 1, 0, 0)) \
    X(max2d_unbatched, "max2d_unbatched_k2", cx_max_pool2d(x, 2, 2, 0, 0, 0, 0)) \
    X(avg2d_k2, "avg2d_k2", cx_avg_pool2d(x, 2, 2, 0, 0, 0, 0)) \
    X(avg2d_k3_s2_p1, "avg2d_k3_s2_p1", cx_avg_pool2d(x, 3, 3, 2, 2, 1, 1)) \
    X(avg2d_excl, "avg2d_k3_s2_p1_excl", cx_avg_pool2d_ex(x, P2(3, 3, 2, 2, 1, 1, false, true))) \
    X(avg2d_ceil, "avg2d_k3_s2_p1_ceil", cx_avg_pool2d_ex(x, P2(3, 3, 2, 2, 1, 1, true, false))) \
    X(avg2d_ceil_excl, "avg2d_k3_s2_p1_ceil_excl", cx_avg_pool2d_ex(x, P2(3, 3, 2, 2, 1, 1, true, true))) \
    X(avg2d_k3x2, "avg2d_k3x2_s2x1_p1x1", cx_avg_pool2d(x, 3, 2, 2, 1, 1, 1)) \
    X(avg2d_k2_s3_ceil, "avg2d_k2_s3_ceil", cx_avg_pool2d_ex(x, P2(2, 2, 3, 3, 0, 0, true, false))) \
    X(max3d_k2, "max3d_k2", cx_max_pool3d(x, 2, 2, 2, 0, 0, 0, 0, 0, 0)) \
    X(max3d_k3_s2_p1, "max3d_k3_s2_p1", cx_max_pool3d(x, 3, 3, 3, 2, 2, 2, 1, 1, 1)) \
    X(max3d_k2x3x1, "max3d_k2x3x1_s1x2x1_p1x1x0", cx_max_pool3d(x, 2, 3, 1, 1, 2, 1, 1, 1, 0)) \
    X(max3d_ceil, "max3d_k3_s2_p1_ceil", cx_max_pool3d_ex(x, P3(3, 3, 3, 2, 2, 2, 1, 1, 1, true, false))) \
    X(avg3d_k2, "avg3d_k2", cx_avg_pool3d(x, 2, 2, 2, 0, 0, 0, 0, 0, 0)) \
    X(avg3d_k3_s2_p1, "avg3d_k3_s2_p1", cx_avg_pool3d(x, 3, 3, 3, 2, 2, 2, 1, 1, 1)) \
    X(avg3d_excl, "avg3d_k3_s2_p1_excl", cx_avg_pool3d_ex(x, P3(3, 3, 3, 2, 2, 2, 1, 1, 1, false, true))) \
    X(avg3d_ceil, "avg3d_k3_s2_p1_ceil", cx_avg_pool3d_ex(x, P3(3, 3, 3, 2, 2, 2, 1, 1, 1, true, false))) \
    X(adaptive_3x4, "adaptive_3x4", cx_adaptive_avg_pool2d(x, 3, 4)) \
    X(adaptive_5x2, "adaptive_5x2", cx_adaptive_avg_pool2d(x, 5, 2)) \
    X(adaptive_1x1, "adaptive_1x1", cx_adaptive_avg_pool2d(x, 1, 1)) \
    X(adaptive_9x11, "adaptive_9x11", cx_adaptive_avg_pool2d(x, 9, 11)) \
    X(adaptive_unbatched, "adaptive_unbatched_4x3", cx_adaptive_avg_pool2d(x, 4, 3)) \
    X(global_avg, "global_avg", cx_global_avg_pool2d(x)) \
    X(nearest_13x10, "nearest_size_13x10", cx_upsample_nearest2d(x, 13, 10)) \
    X(nearest_7x9, "nearest_size_7x9", cx_upsample_nearest2d(x, 7, 9)) \
    X(nearest_3x3, "nearest_size_3x3", cx_upsample_nearest2d(x, 3, 3)) \
    X(nearest_10x4, "nearest_size_10x4", cx_upsample_nearest2d(x, 10, 4)) \
    X(nearest_s17x25, "nearest_scale_1.7x2.5", cx_upsample_nearest2d_scale(x, 1.7, 2.5)) \
    X(nearest_s2, "nearest_scale_2x2", cx_upsample_nearest2d_scale(x, 2.0, 2.0)) \
    X(nearest_s13, "nearest_scale_1.3x1.3", cx_upsample_nearest2d_scale(x, 1.3, 1.3)) \
    X(nearest_s06x05, "nearest_scale_0.6x0.5", cx_upsample_nearest2d_scale(x, 0.6, 0.5)) \
    X(bil_9x11_noac, "bilinear_size_9x11_noac", cx_upsample_bilinear2d(x, 9, 11, false)) \
    X(bil_3x2_noac, "bilinear_size_3x2_noac", cx_upsample_bilinear2d(x, 3, 2, false)) \
    X(bil_1x1_noac, "bilinear_size_1x1_noac", cx_upsample_bilinear2d(x, 1, 1, false)) \
    X(bil_5x7_noac, "bilinear_size_5x7_noac", cx_upsample_bilinear2d(x, 5, 7, false)) \
    X(bil_s17x25_noac, "bilinear_scale_1.7x2.5_noac", cx_upsample_bilinear2d_scale(x, 1.7, 2.5, false)) \
    X(bil_s2_noac, "bilinear_scale_2x2_noac", cx_upsample_bilinear2d_scale(x, 2.0, 2.0, false)) \
    X(bil_9x11_ac, "bilinear_size_9x11_ac", cx_upsample_bilinear2d(x, 9, 11, true)) \
    X(bil_3x2_ac, "bilinear_size_3x2_ac", cx_upsample_bilinear2d(x, 3, 2, true)) \
    X(bil_1x1_ac, "bilinear_size_1x1_ac", cx_upsample_bilinear2d(x, 1, 1, true)) \
    X(bil_5x7_ac, "bilinear_size_5x7_ac", cx_upsample_bilinear2d(x, 5, 7, true)) \
    X(bil_s17x25_ac, "bilinear_scale_1.7x2.5_ac", cx_upsample_bilinear2d_scale(x, 1.7, 2.5, true)) \
    X(bil_s2_ac, "bilinear_scale_2x2_ac", cx_upsample_bilinear2d_scale(x, 2.0, 2.0, true)) \
    X(bil_s13_noac, "bilinear_scale_1.3x1.3_noac", cx_upsample_bilinear2d_scale(x, 1.3, 1.3, false))

#define DEF_OP(id, name, expr) static cx_tensor *op_##id(cx_tensor *x) { return expr; }
CASES(DEF_OP)

static cx_tensor *fx_get(const char *c, const char *what) {
    char key[400];
    snprintf(key, sizeof key, "%s.%s", c, what);
    return cx_st_get(FX, key);
}

static bool same_shape_as(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* Cases whose PyTorch gradient is not the derivative of PyTorch's own forward:
 * forward compared, gradient only finite-difference checked (gradcheck_upsample).
 * nearest_scale_1.3x1.3 (3x3 -> 3x3 with scale 1.3): PyTorch 1.13's NCHW
 * forward kernel maps dst -> floor(dst / 1.3) = {0, 0, 1}, but its backward
 * kernel (nearest_idx) treats out == in as a copy and returns gout unchanged. */
static const char *const FWD_ONLY[] = {"nearest_scale_1.3x1.3"};

static bool fwd_only(const char *c) {
    for (size_t i = 0; i < sizeof FWD_ONLY / sizeof *FWD_ONLY; i++)
        if (!strcmp(c, FWD_ONLY[i])) return true;
    return false;
}

static void check_case(const char *c, cx_tensor *(*fn)(cx_tensor *)) {
    n_cases_run++;
    cx_tensor *src = fx_get(c, "in0"), *want = fx_get(c, "out"), *gout = fx_get(c, "gout"),
              *wgrad = fx_get(c, "grad0");
    CHECK_MSG(src && want && gout && wgrad, "case %s missing from the fixture (regenerate with "
              "/usr/bin/python3 tools/gen_pool_norm_fixtures.py)", c);
    if (!(src && want && gout && wgrad)) return;
    cx_tensor *x = cx_from_data(CX_F(src), src->shape, src->ndim);
    x->requires_grad = true;
    cx_tensor *out = fn(x);
    char s1[96], s2[96], what[200];
    CHECK_MSG(same_shape_as(out, want), "case %s: output shape %s, PyTorch %s", c,
              cx_shape_str(out, s1, sizeof s1), cx_shape_str(want, s2, sizeof s2));
    if (!same_shape_as(out, want)) return;
    snprintf(what, sizeof what, "%s forward", c);
    cxt_allclose(CX_F(out), CX_F(want), (long)out->numel, RTOL, ATOL, what);
    CHECK_MSG(out->requires_grad, "case %s: output does not require grad", c);
    if (!out->requires_grad || fwd_only(c)) return;
    cx_backward_with(out, CX_F(gout));
    CHECK_MSG(x->grad != NULL, "case %s: no input gradient", c);
    if (!x->grad) return;
    snprintf(what, sizeof what, "%s gradient", c);
    cxt_allclose(x->grad, CX_F(wgrad), (long)x->numel, RTOL, ATOL, what);
    cx_step_reset();
}

#define DEF_TEST(id, name, expr) static void case_##id(void) { check_case(name, op_##id); }
CASES(DEF_TEST)

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the pool fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_pool_norm_fixtures.py", cx_last_error());
}

static void fixture_cases_all_covered(void) {
    int n_out = 0;
    for (int i = 0; i < FX->n; i++) {
        const char *nm = FX->entries[i].name;
        size_t len = strlen(nm);
        if (len > 4 && strcmp(nm + len - 4, ".out") == 0) n_out++;
    }
    CHECK_MSG(n_out == n_cases_run, "fixture has %d cases, the C table ran %d", n_out, n_cases_run);
    const char *meta = cx_st_meta(FX, "cases");
    CHECK_MSG(meta && atoi(meta) == n_out, "metadata 'cases' = %s, counted %d", meta ? meta : "(none)", n_out);
}

/* ------------------------------------------------------------ gradcheck */
typedef cx_tensor *(*unary_fn)(cx_tensor *x, const void *arg);
typedef struct {
    unary_fn f;
    const void *arg;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *gc_scalar(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(c->f(in[0], c->arg), c->R));
}

/* Gradient-check f(x) through sum(f(x) * R), R ~ N(0, 1). */
static void gradcheck1(unary_fn f, const void *arg, cx_tensor *x, const char *what) {
    cx_no_grad_begin();
    cx_tensor *probe = f(x, arg);
    cx_no_grad_end();
    gc_ctx c = {f, arg, cx_randn(probe->shape, probe->ndim, 0.0f, 1.0f)};
    cx_tensor *in[1] = {x};
    double worst = cx_gradcheck(gc_scalar, in, 1, &c, EPS, GC_ATOL, GC_RTOL, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
}

/* Leaf with distinct values spacing * (k - n/2) in random order: no ties, and
 * no two values closer than `spacing` (so max pooling has no kink within eps). */
static cx_tensor *leaf_distinct(const int *shape, int ndim, float spacing) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    float *d = CX_F(t);
    int64_t n = t->numel;
    for (int64_t i = 0; i < n; i++) d[i] = spacing * (float)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cx_rand_below((uint32_t)(i + 1));
        float tmp = d[i];
        d[i] = d[j];
        d[j] = tmp;
    }
    t->requires_grad = true;
    return t;
}
static cx_tensor *leaf_randn(const int *shape, int ndim) {
    cx_tensor *t = cx_randn(shape, ndim, 0.0f, 1.0f);
    t->requires_grad = true;
    return t;
}

static cx_tensor *f_max2d(cx_tensor *x, const void *a) { return cx_max_pool2d_ex(x, a); }
static cx_tensor *f_avg2d(cx_tensor *x, const void *a) { return cx_avg_pool2d_ex(x, a); }
static cx_tensor *f_max3d(cx_tensor *x, const void *a) { return cx_max_pool3d_ex(x, a); }
static cx_tensor *f_avg3d(cx_tensor *x, const void *a) { return cx_avg_pool3d_ex(x, a); }
static cx_tensor *f_adapt(cx_tensor *x, const void *a) {
    const int *s = a;
    return cx_adaptive_avg_pool2d(x, s[0], s[1]);
}
static cx_tensor *f_global(cx_tensor *x, const void *a) {
    (void)a;
    return cx_global_avg_pool2d(x);
}
typedef struct {
    int oh, ow;
    double sh, sw;
    bool bilinear, ac;
} up_arg;
static cx_tensor *f_up(cx_tensor *x, const void *a) {
    const up_arg *u = a;
    if (u->bilinear)
        return u->sh > 0 ? cx_upsample_bilinear2d_scale(x, u->sh, u->sw, u->ac)
                         : cx_upsample_bilinear2d(x, u->oh, u->ow, u->ac);
    return u->sh > 0 ? cx_upsample_nearest2d_scale(x, u->sh, u->sw) : cx_upsample_nearest2d(x, u->oh, u->ow);
}

static void gradcheck_max_pool2d(void) {
    cx_seed(1);
    cx_pool_opts o[] = {po2(2, 2, 0, 0, 0, 0, false, false), po2(3, 3, 2, 2, 1, 1, false, false),
                        po2(3, 2, 1, 2, 1, 0, false, false), po2(3, 3, 2, 2, 1, 1, true, false),
                        po2(2, 3, 3, 1, 1, 1, true, false)};
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) {
        char w[64];
        snprintf(w, sizeof w, "max_pool2d option set %zu", i);
        gradcheck1(f_max2d, &o[i], leaf_distinct(CX_SHAPE(2, 2, 7, 5), 0.05f), w);
    }
    gradcheck1(f_max2d, &o[1], leaf_distinct(CX_SHAPE(3, 6, 5), 0.05f), "max_pool2d unbatched");
}

static void gradcheck_avg_pool2d(void) {
    cx_seed(2);
    cx_pool_opts o[] = {po2(2, 2, 0, 0, 0, 0, false, false), po2(3, 3, 2, 2, 1, 1, false, false),
                        po2(3, 3, 2, 2, 1, 1, false, true), po2(3, 3, 2, 2, 1, 1, true, false),
                        po2(3, 3, 2, 2, 1, 1, true, true), po2(3, 2, 2, 1, 1, 1, false, false)};
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) {
        char w[64];
        snprintf(w, sizeof w, "avg_pool2d option set %zu", i);
        gradcheck1(f_avg2d, &o[i], leaf_randn(CX_SHAPE(2, 2, 7, 6)), w);
    }
}

static void gradcheck_pool3d(void) {
    cx_seed(3);
    cx_pool_opts o[] = {po3(2, 2, 2, 0, 0, 0, 0, 0, 0, false, false),
                        po3(3, 3, 3, 2, 2, 2, 1, 1, 1, false, false),
                        po3(2, 3, 1, 1, 2, 1, 1, 1, 0, false, false),
                        po3(3, 3, 3, 2, 2, 2, 1, 1, 1, true, false),
                        po3(3, 3, 3, 2, 2, 2, 1, 1, 1, true, true)};
    for (size_t i = 0; i < sizeof o / sizeof *o; i++) {
        char w[64];
        snprintf(w, sizeof w, "max_pool3d option set %zu", i);
        gradcheck1(f_max3d, &o[i], leaf_distinct(CX_SHAPE(1, 2, 5, 4, 5), 0.05f), w);
        snprintf(w, sizeof w, "avg_pool3d option set %zu", i);
        gradcheck1(f_avg3d, &o[i], leaf_randn(CX_SHAPE(1, 2, 5, 4, 5)), w);
    }
}

static void gradcheck_adaptive_global(void) {
    cx_seed(4);
    int sizes[][2] = {{3, 4}, {5, 2}, {1, 1}, {9, 11}, {7, 3}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char w[64];
        snprintf(w, sizeof w, "adaptive_avg_pool2d %dx%d", sizes[i][0], sizes[i][1]);
        gradcheck1(f_adapt, sizes[i], leaf_randn(CX_SHAPE(2, 2, 7, 9)), w);
    }
    gradcheck1(f_global, NULL, leaf_randn(CX_SHAPE(2, 3, 5, 7)), "global_avg_pool2d");
}

static void gradcheck_upsample(void) {
    cx_seed(5);
    up_arg a[] = {
        {13, 10, 0, 0, false, false}, {7, 9, 0, 0, false, false}, {3, 3, 0, 0, false, false},
        {0, 0, 1.7, 2.5, false, false}, {0, 0, 2.0, 2.0, false, false},
        {9, 11, 0, 0, true, false}, {3, 2, 0, 0, true, false}, {1, 1, 0, 0, true, false},
        {0, 0, 1.7, 2.5, true, false}, {9, 11, 0, 0, true, true}, {3, 2, 0, 0, true, true},
        {1, 1, 0, 0, true, true}, {0, 0, 2.0, 2.0, true, true},
    };
    for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
        char w[96];
        snprintf(w, sizeof w, "upsample %s %dx%d scale %gx%g%s", a[i].bilinear ? "bilinear" : "nearest", a[i].oh,
                 a[i].ow, a[i].sh, a[i].sw, a[i].ac ? " align_corners" : "");
        gradcheck1(f_up, &a[i], leaf_randn(CX_SHAPE(2, 2, 5, 4)), w);
    }
    /* out == in with a non-unit scale (see FWD_ONLY) */
    up_arg s13 = {0, 0, 1.3, 1.3, false, false};
    gradcheck1(f_up, &s13, leaf_randn(CX_SHAPE(1, 2, 3, 3)), "upsample nearest 3x3 scale 1.3");
    up_arg b13 = {0, 0, 1.3, 1.3, true, false};
    gradcheck1(f_up, &b13, leaf_randn(CX_SHAPE(1, 2, 3, 3)), "upsample bilinear 3x3 scale 1.3");
}

/* ------------------------------------------------------------ semantics in pure C */
static void max_pool_tie_goes_to_first(void) {
    /* one 2x2 window of equal values: PyTorch sends the gradient to the first */
    float v[4] = {1, 1, 1, 1};
    cx_tensor *x = cx_from_data(v, CX_SHAPE(1, 1, 2, 2));
    x->requires_grad = true;
    cx_tensor *y = cx_max_pool2d(x, 2, 2, 0, 0, 0, 0);
    CHECK(y->numel == 1 && CX_F(y)[0] == 1.0f);
    cx_backward(y);
    float want[4] = {1, 0, 0, 0};
    cxt_allclose(x->grad, want, 4, 0, 0, "tie gradient");
    CHECK(strcmp(cx_op_name(y), "max_pool2d") == 0);
}

static void max_pool_all_neg_inf_padding(void) {
    /* padding is -inf, so a window of negative values never takes the pad */
    float v[9] = {-5, -4, -3, -2, -1, -6, -7, -8, -9};
    cx_tensor *x = cx_from_data(v, CX_SHAPE(1, 1, 3, 3));
    cx_tensor *y = cx_max_pool2d(x, 3, 3, 1, 1, 1, 1);
    CHECK(y->shape[2] == 3 && y->shape[3] == 3);
    CHECK(CX_F(y)[0] == -1.0f); /* window rows 0..1, cols 0..1 */
    CHECK(CX_F(y)[8] == -1.0f);
}

static void global_pool_shape_and_values(void) {
    cx_tensor *x = cx_arange(2 * 3 * 4 * 5);
    x = cx_reshape(x, CX_SHAPE(2, 3, 4, 5));
    cx_tensor *y = cx_global_avg_pool2d(x);
    CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 1 && y->shape[3] == 1);
    CHECK_NEAR(CX_F(y)[0], 9.5, 1e-5);
    CHECK_NEAR(CX_F(y)[5], 5 * 20 + 9.5, 1e-4);
}

static void pool_large_parallel_matches_small(void) {
    /* big enough to take the OpenMP path: compare with per-plane runs */
    cx_seed(9);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 8, 33, 31), 0, 1);
    x->requires_grad = true;
    cx_tensor *y = cx_max_pool2d(x, 3, 3, 2, 2, 1, 1);
    cx_tensor *z = cx_avg_pool2d(x, 3, 3, 2, 2, 1, 1);
    cx_tensor *u = cx_upsample_bilinear2d(x, 50, 47, false);
    cx_backward(cx_add(cx_add(cx_sum(y), cx_sum(z)), cx_mean(u)));
    int bad = 0;
    for (int p = 0; p < 32; p += 7) {
        cx_tensor *xp = cx_from_data(CX_F(x) + (int64_t)p * 33 * 31, CX_SHAPE(1, 1, 33, 31));
        xp->requires_grad = true;
        cx_tensor *yp = cx_max_pool2d(xp, 3, 3, 2, 2, 1, 1);
        cx_tensor *zp = cx_avg_pool2d(xp, 3, 3, 2, 2, 1, 1);
        cx_tensor *up = cx_upsample_bilinear2d(xp, 50, 47, false);
        cx_backward(cx_add(cx_add(cx_sum(yp), cx_sum(zp)), cx_mul_scalar(cx_sum(up), 1.0f / (float)u->numel)));
        bad += memcmp(CX_F(yp), CX_F(y) + (int64_t)p * yp->numel, (size_t)yp->numel * 4) != 0;
        bad += memcmp(CX_F(zp), CX_F(z) + (int64_t)p * zp->numel, (size_t)zp->numel * 4) != 0;
        bad += !cxt_allclose(xp->grad, x->grad + (int64_t)p * 33 * 31, 33 * 31, 1e-5, 1e-6, "plane grad");
    }
    CHECK(bad == 0);
}

/* ------------------------------------------------------------ fast paths vs a plain reference
 * The 2x2 stride-2 kernels (packed tiles for short rows, per-row runs for
 * long ones, the compact argmax) and the vectorised interior runs of the
 * generic max pooling must give bit-identical values and the same argmax as
 * this direct transcription of PyTorch's rule: the window starts at its
 * first in-bounds element with -inf, a strictly larger value or a NaN takes
 * over (ties: first max; NaN: the last NaN). Inputs mix ties, -inf and NaN. */
static void ref_pool2d(const float *x, int planes, int H, int W, int k, int s, int p, bool avg, float *y,
                       int32_t *arg, int OH, int OW) {
    for (int pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int h0 = oh * s - p, w0 = ow * s - p, h1 = h0 + k < H ? h0 + k : H, w1 = w0 + k < W ? w0 + k : W;
                h0 = h0 > 0 ? h0 : 0;
                w0 = w0 > 0 ? w0 : 0;
                const float *xp = x + (int64_t)pl * H * W;
                int64_t o = ((int64_t)pl * OH + oh) * OW + ow;
                if (avg) {
                    float sum = 0.0f;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) sum += xp[ih * W + iw];
                    y[o] = sum / (float)(k * k);
                    continue;
                }
                float bv = -INFINITY;
                int32_t bi = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = xp[ih * W + iw];
                        if (v > bv || isnan(v)) {
                            bv = v;
                            bi = ih * W + iw;
                        }
                    }
                y[o] = bv;
                arg[o] = pl * H * W + bi;
            }
}

static int same_bits(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

static void pool_fast_paths_match_reference(void) {
    static const struct { int N, C, H, W, k, s, p; bool ceil; } cs[] = {
        {2, 3, 28, 28, 2, 2, 0, false}, {1, 2, 10, 10, 2, 2, 0, false}, {2, 2, 9, 11, 2, 2, 0, false},
        {1, 1, 6, 300, 2, 2, 0, false}, {1, 2, 8, 6, 2, 2, 0, true},   {2, 2, 17, 19, 3, 2, 1, false},
        {1, 2, 16, 150, 3, 2, 1, false}, {1, 2, 13, 12, 3, 1, 1, false}, {1, 2, 12, 13, 2, 1, 0, false},
        {1, 1, 9, 140, 5, 3, 2, false}};
    cx_seed(31);
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        const int N = cs[c].N, C = cs[c].C, H = cs[c].H, W = cs[c].W, k = cs[c].k, s = cs[c].s, p = cs[c].p;
        cx_tensor *x = cx_randn(CX_SHAPE(N, C, H, W), 0, 1);
        float *xd = CX_F(x);
        for (int64_t i = 0; i < x->numel; i++) { /* ties, -inf and a few NaNs */
            uint32_t r = cx_rand_u32() % 100;
            if (r < 30) xd[i] = (float)(int)(xd[i] * 2.0f);
            else if (r < 33) xd[i] = -INFINITY;
            else if (r < 35) xd[i] = NAN;
        }
        x->requires_grad = true;
        cx_pool_opts o = po2(k, k, s, s, p, p, cs[c].ceil, false);
        cx_tensor *ym = cx_max_pool2d_ex(x, &o), *ya = cx_avg_pool2d_ex(x, &o);
        const int OH = ym->shape[2], OW = ym->shape[3];
        float *ry = malloc((size_t)ym->numel * 4), *ra = malloc((size_t)ym->numel * 4);
        int32_t *rarg = malloc((size_t)ym->numel * 4);
        ref_pool2d(xd, N * C, H, W, k, s, p, false, ry, rarg, OH, OW);
        ref_pool2d(xd, N * C, H, W, k, s, p, true, ra, NULL, OH, OW);
        char w[96];
        snprintf(w, sizeof w, "case %zu (%dx%d k%d s%d p%d)", c, H, W, k, s, p);
        CHECK_MSG(same_bits(CX_F(ym), ry, ym->numel), "max values differ: %s", w);
        if (p == 0 && !cs[c].ceil) /* avg with padding divides differently: covered by the fixtures */
            CHECK_MSG(same_bits(CX_F(ya), ra, ya->numel), "avg values differ: %s", w);
        /* backward: upstream gradient 1 + output index, scattered to the argmax */
        cx_tensor *gm = cx_empty(CX_F32, ym->shape, ym->ndim);
        for (int64_t i = 0; i < gm->numel; i++) CX_F(gm)[i] = 1.0f + (float)(i % 7);
        cx_backward(cx_sum(cx_mul(ym, gm)));
        float *rg = calloc((size_t)x->numel, 4);
        for (int64_t i = 0; i < ym->numel; i++) rg[rarg[i]] += CX_F(gm)[i];
        CHECK_MSG(same_bits(x->grad, rg, x->numel), "max grad differs: %s", w);
        if (p == 0 && !cs[c].ceil) {
            cx_zero_grad(x);
            cx_backward(cx_sum(ya));
            memset(rg, 0, (size_t)x->numel * 4);
            for (int pl = 0; pl < N * C; pl++)
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++)
                        for (int ih = oh * s; ih < oh * s + k; ih++)
                            for (int iw = ow * s; iw < ow * s + k; iw++)
                                rg[(int64_t)pl * H * W + ih * W + iw] += 1.0f / (float)(k * k);
            CHECK_MSG(cxt_allclose(x->grad, rg, x->numel, 1e-6, 1e-7, w), "avg grad differs: %s", w);
        }
        free(ry);
        free(ra);
        free(rarg);
        free(rg);
        cx_step_reset();
    }
    /* 3-D pooling with a depth-1 kernel takes the 2x2 path plane by plane */
    cx_tensor *v = cx_randn(CX_SHAPE(2, 3, 4, 6, 7), 0, 1);
    cx_tensor *y3 = cx_max_pool3d(v, 1, 2, 2, 1, 2, 2, 0, 0, 0);
    cx_tensor *y2 = cx_max_pool2d(cx_reshape(v, CX_SHAPE(2, 12, 6, 7)), 2, 2, 0, 0, 0, 0);
    CHECK(y3->numel == y2->numel && same_bits(CX_F(y3), CX_F(y2), y2->numel));
}

/* ------------------------------------------------------------ modules */
static void describe_is(cx_module *m, const char *want) {
    char buf[128];
    cx_module_describe(m, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, want) == 0, "describe '%s', expected '%s'", buf, want);
}

static void pool_modules(void) {
    cx_seed(6);
    cx_module *net = cx_sequential_new();
    cx_sequential_add(net, "pool1", cx_maxpool2d_new(2, 0, 0));
    cx_sequential_add(net, "pool2", cx_avgpool2d_new(3, 2, 1));
    cx_pool_opts o = po2(3, 2, 2, 1, 1, 0, true, true);
    cx_sequential_add(net, "pool3", cx_pool_new(CX_POOL_AVG2D, &o));
    cx_sequential_add(net, "ad", cx_adaptive_avgpool2d_new(3, 4));
    cx_sequential_add(net, "up", cx_upsample_new(CX_UPSAMPLE_BILINEAR, 2.0, true));
    cx_sequential_add(net, "up2", cx_upsample_size_new(CX_UPSAMPLE_NEAREST, 5, 7, false));
    describe_is(cx_sequential_get(net, 0), "MaxPool2d(k=2, s=2)");
    describe_is(cx_sequential_get(net, 1), "AvgPool2d(k=3, s=2, p=1)");
    describe_is(cx_sequential_get(net, 2), "AvgPool2d(k=(3,2), s=(2,1), p=(1,0), ceil, exclude_pad)");
    describe_is(cx_sequential_get(net, 3), "AdaptiveAvgPool2d(3x4)");
    describe_is(cx_sequential_get(net, 4), "Upsample(bilinear, scale=2, align_corners)");
    describe_is(cx_sequential_get(net, 5), "Upsample(nearest, size=5x7)");
    CHECK(strcmp(cx_module_kind(cx_sequential_get(net, 0)), "MaxPool2d") == 0);
    cx_params st;
    cx_params_init(&st);
    cx_module_state(net, &st);
    CHECK(st.n == 0); /* no parameters, no buffers */
    cx_params_free(&st);

    cx_tensor *x = cx_randn(CX_SHAPE(2, 3, 16, 17), 0, 1);
    x->requires_grad = true;
    cx_tensor *y = cx_module_forward(net, x);
    cx_tensor *r = cx_max_pool2d(x, 2, 2, 0, 0, 0, 0);
    r = cx_avg_pool2d(r, 3, 3, 2, 2, 1, 1);
    r = cx_avg_pool2d_ex(r, &o);
    r = cx_adaptive_avg_pool2d(r, 3, 4);
    r = cx_upsample_bilinear2d_scale(r, 2.0, 2.0, true);
    r = cx_upsample_nearest2d(r, 5, 7);
    CHECK(same_shape_as(y, r) && y->shape[2] == 5 && y->shape[3] == 7);
    CHECK(memcmp(CX_F(y), CX_F(r), (size_t)y->numel * 4) == 0);
    cx_backward(cx_sum(y));
    CHECK(x->grad != NULL);
    cx_module_free(net);

    cx_module *m3 = cx_maxpool3d_new(3, 2, 1), *a3 = cx_avgpool3d_new(2, 0, 0);
    describe_is(m3, "MaxPool3d(k=3, s=2, p=1)");
    describe_is(a3, "AvgPool3d(k=2, s=2)");
    cx_tensor *v = cx_randn(CX_SHAPE(1, 2, 5, 6, 7), 0, 1);
    cx_tensor *v1 = cx_module_forward(m3, v), *v2 = cx_max_pool3d(v, 3, 3, 3, 2, 2, 2, 1, 1, 1);
    CHECK(same_shape_as(v1, v2) && memcmp(CX_F(v1), CX_F(v2), (size_t)v1->numel * 4) == 0);
    cx_tensor *w1 = cx_module_forward(a3, v), *w2 = cx_avg_pool3d(v, 2, 2, 2, 0, 0, 0, 0, 0, 0);
    CHECK(same_shape_as(w1, w2) && memcmp(CX_F(w1), CX_F(w2), (size_t)w1->numel * 4) == 0);
    cx_module_free(m3);
    cx_module_free(a3);
}

/* ------------------------------------------------------------ errors */
static void pool_errors(void) {
    cx_tensor *x2 = cx_zeros(CX_SHAPE(2, 3));
    cx_tensor *x4 = cx_zeros(CX_SHAPE(1, 2, 3, 3));
    EXPECT_FATAL(cx_max_pool2d(x2, 2, 2, 0, 0, 0, 0), "max_pool2d", "[2, 3]");
    EXPECT_FATAL(cx_avg_pool3d(cx_zeros(CX_SHAPE(2, 3, 3)), 2, 2, 2, 0, 0, 0, 0, 0, 0), "avg_pool3d", "[2, 3, 3]");
    EXPECT_FATAL(cx_max_pool2d(x4, 4, 4, 0, 0, 0, 0), "max_pool2d", "[1, 2, 3, 3]", "too small");
    EXPECT_FATAL(cx_avg_pool2d(x4, 3, 3, 1, 1, 2, 2), "avg_pool2d", "padding 2", "half");
    EXPECT_FATAL(cx_max_pool2d(x4, 0, 2, 0, 0, 0, 0), "max_pool2d", "kernel");
    EXPECT_FATAL(cx_adaptive_avg_pool2d(x2, 2, 2), "adaptive_avg_pool2d", "[2, 3]");
    EXPECT_FATAL(cx_adaptive_avg_pool2d(x4, 0, 2), "adaptive_avg_pool2d", "0x2");
    EXPECT_FATAL(cx_global_avg_pool2d(cx_zeros(CX_SHAPE(2, 3, 4))), "global_avg_pool2d", "[2, 3, 4]");
    EXPECT_FATAL(cx_upsample_bilinear2d(x2, 4, 4, false), "upsample_bilinear2d", "[2, 3]");
    EXPECT_FATAL(cx_upsample_nearest2d(x4, 0, 4), "upsample_nearest2d", "0x4");
    EXPECT_FATAL(cx_upsample_nearest2d_scale(x4, 0.1, 1.0), "upsample_nearest2d", "[1, 2, 3, 3]");
    EXPECT_FATAL(cx_maxpool2d_new(2, 0, 3), "MaxPool2d", "padding");
    EXPECT_FATAL(cx_upsample_new(CX_UPSAMPLE_NEAREST, -1.0, false), "Upsample", "scale");
}

/* the options' defaults: stride = kernel, no padding, floor mode */
static void pool_defaults(void) {
    cx_pool_opts a = cx_pool2d_defaults(3, 2), b = cx_pool3d_defaults(2, 3, 4);
    CHECK(a.kernel[0] == 3 && a.kernel[1] == 2 && a.stride[0] == 0 && a.padding[1] == 0 && !a.ceil_mode &&
          !a.exclude_pad);
    CHECK(b.kernel[0] == 2 && b.kernel[1] == 3 && b.kernel[2] == 4 && b.stride[2] == 0 && b.padding[0] == 0);
    cx_tensor *x = cx_randn(CX_SHAPE(1, 1, 4, 6, 8), 0, 1);
    CHECK(cx_max_pool3d_ex(x, &b)->shape[2] == 2 && cx_max_pool3d_ex(x, &b)->shape[4] == 2);
}

int main(void) {
    RUN(pool_defaults);
    const char *path = getenv("CX_POOL_FIXTURE");
    if (!path || !*path) path = "tests/fixtures/pool_norm/pool.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) {
#define RUN_CASE(id, name, expr) RUN(case_##id);
        CASES(RUN_CASE)
        RUN(fixture_cases_all_covered);
    }
    RUN(gradcheck_max_pool2d);
    RUN(gradcheck_avg_pool2d);
    RUN(gradcheck_pool3d);
    RUN(gradcheck_adaptive_global);
    RUN(gradcheck_upsample);
    RUN(max_pool_tie_goes_to_first);
    RUN(max_pool_all_neg_inf_padding);
    RUN(global_pool_shape_and_values);
    RUN(pool_large_parallel_matches_small);
    RUN(pool_fast_paths_match_reference);
    RUN(pool_modules);
    RUN(pool_errors);
    cx_st_free(FX);
    TEST_END();
}
