/* Every op case of tests/autograd/op_cases.h, checked twice on the same
 * inputs: forward and backward against PyTorch 1.13, and the analytic
 * gradient against central finite differences.
 *
 * The reference values come from tools/gen_op_fixtures.py, which writes
 * tests/fixtures/ops/ops.safetensors (override the path with the environment
 * variable CX_OPS_FIXTURE). For each case C the file holds the inputs C.in<k>
 * (F32, or I64 class targets / indices), the output C.out, an upstream gradient
 * C.gout and the gradients C.grad<k> of sum(out * gout) with respect to every
 * float input that requires grad. The scalar parameters of each case below
 * must match the table at the top of the script.
 *
 * Each case: rebuild the inputs as step tensors (requires_grad iff the file
 * has C.grad<k>), run the Cortex op, compare with C.out (rtol 1e-4, atol 1e-5),
 * run cx_backward_with(out, C.gout) and compare every gradient; then (rows
 * marked GC / GCT) cx_gradcheck of sum(op(x) * C.gout) with respect to the
 * same inputs; a float input without C.grad<k> must get no gradient. The file
 * missing is a failure, not a skip.
 *
 * What cannot be a fixture row is checked here in plain C: the checker itself
 * (cx_gradcheck rejects a wrong gradient and restores the caller's gradients)
 * and dropout (random): finite differences with a fixed seed in train mode,
 * identity in eval mode and for p = 0, inverted scaling 1/(1-p) in train mode. */
#include "test.h"
#include <stdlib.h>

#define RTOL 1e-4
#define ATOL 1e-5
#define MAX_IN 8

typedef cx_tensor *(*op_fn)(cx_tensor **x, const cx_tensor **ix);

/* finite-difference settings of a row, and its forward tolerance */
typedef struct { float eps, atol, rtol; bool on; double frtol, fatol; } gc_opts;
#define GC ((gc_opts){1e-2f, 2e-3f, 1e-2f, true, RTOL, ATOL})
#define GCT(e, a, r) ((gc_opts){e, a, r, true, RTOL, ATOL})
#define NOGC ((gc_opts){0, 0, 0, false, RTOL, ATOL})
#define FWD_TOL(g, r, a) ((gc_opts){(g).eps, (g).atol, (g).rtol, (g).on, r, a})

static cx_st_file *FX;
static int n_cases_run;

#include "op_cases.h"

#define DEF_OP(name, gc, expr) \
    static cx_tensor *op_##name(cx_tensor **x, const cx_tensor **ix) { \
        (void)x; (void)ix; return expr; }
CASES(DEF_OP)

/* ------------------------------------------------------------ driver */
static cx_tensor *fx_get(const char *c, const char *what) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c, what);
    return cx_st_get(FX, key);
}

static bool same_shape_as(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

/* Forward comparison: floats within the row's tolerance, an infinity equal to
 * the same infinity (masked_fill with -inf), integers (indices) exactly. */
static void compare_out(const char *c, const cx_tensor *out, const cx_tensor *want, gc_opts gc) {
    char what[96];
    snprintf(what, sizeof what, "%s forward", c);
    if (want->dtype != CX_F32 || out->dtype != CX_F32) {
        CHECK_MSG(out->dtype == want->dtype, "case %s: output dtype %s, PyTorch %s", c,
                  cx_dtype_name(out->dtype), cx_dtype_name(want->dtype));
        if (out->dtype != want->dtype) return;
        int64_t bad = -1;
        for (int64_t i = 0; i < out->numel && bad < 0; i++) {
            int64_t u = out->dtype == CX_I64 ? CX_I64P(out)[i] : CX_I32P(out)[i];
            int64_t v = want->dtype == CX_I64 ? CX_I64P(want)[i] : CX_I32P(want)[i];
            if (u != v) bad = i;
        }
        CHECK_MSG(bad < 0, "%s: element %lld got %lld expected %lld", what, (long long)bad,
                  bad < 0 ? 0LL : (long long)(out->dtype == CX_I64 ? CX_I64P(out)[bad] : CX_I32P(out)[bad]),
                  bad < 0 ? 0LL : (long long)(want->dtype == CX_I64 ? CX_I64P(want)[bad] : CX_I32P(want)[bad]));
        return;
    }
    const float *a = CX_F(out), *b = CX_F(want);
    float *a2 = malloc((size_t)(out->numel ? out->numel : 1) * sizeof *a2);
    float *b2 = malloc((size_t)(out->numel ? out->numel : 1) * sizeof *b2);
    if (!a2 || !b2) { free(a2); free(b2); CHECK(0); return; }
    for (int64_t i = 0; i < out->numel; i++) {
        bool same_inf = isinf(b[i]) && a[i] == b[i];
        a2[i] = same_inf ? 0.0f : a[i];
        b2[i] = same_inf ? 0.0f : b[i];
    }
    cxt_allclose(a2, b2, (long)out->numel, gc.frtol, gc.fatol, what);
    free(a2);
    free(b2);
}

/* sum(op(x) * gout): the scalar whose gradient both checks compare */
typedef struct { op_fn fn; cx_tensor **x; const cx_tensor **ix; const cx_tensor *gout; } gc_ctx;
static cx_tensor *weighted_sum(cx_tensor **inputs, int n, void *user) {
    (void)inputs; (void)n; /* the same tensors as c->x, perturbed in place */
    gc_ctx *c = user;
    cx_tensor *out = c->fn(c->x, c->ix);
    cx_tensor *g = cx_from_data(CX_F(c->gout), out->shape, out->ndim);
    return cx_sum(cx_mul(out, g));
}

static void check_case(const char *c, op_fn fn, gc_opts gc) {
    n_cases_run++;
    cx_tensor *x[MAX_IN] = {0};
    const cx_tensor *ix[MAX_IN] = {0};
    const cx_tensor *want_grad[MAX_IN] = {0};
    int n_in = 0;
    for (; n_in < MAX_IN; n_in++) {
        char what[16];
        snprintf(what, sizeof what, "in%d", n_in);
        cx_tensor *src = fx_get(c, what);
        if (!src) break;
        if (src->dtype == CX_F32) {
            x[n_in] = cx_from_data(CX_F(src), src->shape, src->ndim);
            snprintf(what, sizeof what, "grad%d", n_in);
            want_grad[n_in] = fx_get(c, what);
            x[n_in]->requires_grad = want_grad[n_in] != NULL;
        } else {
            ix[n_in] = src;
        }
    }
    cx_tensor *want_out = fx_get(c, "out"), *gout = fx_get(c, "gout");
    CHECK_MSG(n_in > 0 && want_out && gout, "case %s: fixture has no inputs/out/gout "
              "(regenerate with /usr/bin/python3 tools/gen_op_fixtures.py)", c);
    if (!(n_in > 0 && want_out && gout)) return;

    cx_tensor *out = fn(x, ix);
    char s1[96], s2[96], what[96];
    CHECK_MSG(same_shape_as(out, want_out), "case %s: output shape %s, PyTorch %s", c,
              cx_shape_str(out, s1, sizeof s1), cx_shape_str(want_out, s2, sizeof s2));
    if (out->numel != want_out->numel) return;
    compare_out(c, out, want_out, gc);

    bool any_grad = false;
    for (int k = 0; k < n_in; k++) any_grad |= want_grad[k] != NULL;
    if (any_grad) {
        CHECK_MSG(out->requires_grad, "case %s: output does not require grad", c);
        CHECK_MSG(gout->numel == out->numel, "case %s: gout has %lld elements, out %lld", c,
                  (long long)gout->numel, (long long)out->numel);
        if (out->requires_grad && gout->numel == out->numel) {
            cx_backward_with(out, CX_F(gout));
            for (int k = 0; k < n_in; k++)
                CHECK_MSG(!x[k] || want_grad[k] || x[k]->grad == NULL,
                          "case %s: input %d does not require grad but got a gradient", c, k);
            for (int k = 0; k < n_in; k++) {
                if (!want_grad[k]) continue;
                CHECK_MSG(x[k]->grad != NULL, "case %s: input %d got no gradient", c, k);
                CHECK_MSG(want_grad[k]->numel == x[k]->numel, "case %s: grad%d size mismatch", c, k);
                if (!x[k]->grad || want_grad[k]->numel != x[k]->numel) continue;
                snprintf(what, sizeof what, "%s grad of input %d", c, k);
                cxt_allclose(x[k]->grad, CX_F(want_grad[k]), (long)x[k]->numel, RTOL, ATOL, what);
            }
        }
        if (gc.on && out->requires_grad && gout->numel == out->numel) {
            /* finite differences on the same inputs (the float ones that
             * require grad are perturbed; gradcheck keeps their grads) */
            gc_ctx ctx = {fn, x, ix, gout};
            cx_tensor *fl[MAX_IN];
            int nf = 0;
            for (int k = 0; k < n_in; k++)
                if (x[k]) fl[nf++] = x[k];
            double worst = cx_gradcheck(weighted_sum, fl, nf, &ctx, gc.eps, gc.atol, gc.rtol, true);
            CHECK_MSG(worst <= 1.0, "case %s: finite-difference check, worst violation ratio %g", c, worst);
        }
    }
    cx_step_reset();
}

#define DEF_TEST(name, gc, expr) static void case_##name(void) { check_case(#name, op_##name, gc); }
CASES(DEF_TEST)

/* Every case of the fixture file has an entry in CASES (and vice versa: a
 * table entry missing from the file fails in check_case). */
static void fixture_cases_all_covered(void) {
    int n_out = 0;
    for (int i = 0; i < FX->n; i++) {
        const char *nm = FX->entries[i].name;
        size_t len = strlen(nm);
        if (len > 4 && strcmp(nm + len - 4, ".out") == 0) n_out++;
    }
    CHECK_MSG(n_out == n_cases_run, "fixture has %d cases, the C table ran %d", n_out, n_cases_run);
    const char *meta = cx_st_meta(FX, "cases");
    CHECK_MSG(meta && atoi(meta) == n_out, "metadata 'cases' = %s, counted %d", meta ? meta : "(none)",
              n_out);
}

/* ------------------------------------------------------------ the checker itself */
/* x * detach(x): analytic gradient x, true derivative 2x */
static cx_tensor *bad_grad_fn(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    return cx_sum(cx_mul(in[0], cx_detach(in[0])));
}
static cx_tensor *good_grad_fn(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    return cx_sum(cx_mul(in[0], in[0]));
}

static void gradcheck_detects_wrong_gradient(void) {
    cx_seed(20240601);
    cx_tensor *x = cx_rand_uniform_t(CX_SHAPE(5), 0.5f, 2.0f);
    x->requires_grad = true;
    double worst = cx_gradcheck(bad_grad_fn, &x, 1, NULL, GC.eps, GC.atol, GC.rtol, false);
    CHECK_MSG(worst > 1.0, "gradcheck accepted a wrong gradient (ratio %g)", worst);
    CHECK(x->grad == NULL); /* gradcheck restores the caller's grads */
    /* the same with a persistent parameter (its grad is heap memory) */
    cx_tensor *p = cx_param_new("p", CX_SHAPE(5));
    cx_fill_uniform(p, 0.5f, 2.0f);
    worst = cx_gradcheck(bad_grad_fn, &p, 1, NULL, GC.eps, GC.atol, GC.rtol, false);
    CHECK_MSG(worst > 1.0, "gradcheck accepted a wrong gradient of a parameter (ratio %g)", worst);
    CHECK(p->grad == NULL);
    worst = cx_gradcheck(good_grad_fn, &p, 1, NULL, GC.eps, GC.atol, GC.rtol, true);
    CHECK_MSG(worst <= 1.0, "gradcheck rejected a right gradient (ratio %g)", worst);
    CHECK(p->grad == NULL);
    cx_tensor_free(p);
}

/* ------------------------------------------------------------ dropout (pure C) */
/* sum(dropout(x, p) * R), the same mask at every evaluation (seed 1234) */
typedef struct { float p; cx_tensor *R; } drop_ctx;
static cx_tensor *dropout_wsum(cx_tensor **in, int n, void *user) {
    (void)n;
    drop_ctx *c = user;
    cx_seed(1234);
    return cx_sum(cx_mul(cx_dropout(in[0], c->p), c->R));
}

static void dropout_check(float p, const int *shape, int ndim, const char *what) {
    cx_tensor *x = cx_rand_uniform_t(shape, ndim, -2.0f, 2.0f);
    x->requires_grad = true;
    drop_ctx c = {p, cx_randn(shape, ndim, 0.0f, 1.0f)};
    cx_tensor *rec = dropout_wsum(&x, 1, &c);
    CHECK_MSG(rec->requires_grad && rec->numel == 1, "%s: scalar is not differentiable", what);
    double worst = cx_gradcheck(dropout_wsum, &x, 1, &c, GC.eps, GC.atol, GC.rtol, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
}

/* finite differences through the fixed mask (train), p = 0 and eval mode */
static void dropout_gradcheck(void) {
    bool tr = cx_is_training();
    cx_seed(20240601);
    cx_set_training(true);
    dropout_check(0.3f, CX_SHAPE(4, 5), "dropout 0.3");
    dropout_check(0.5f, CX_SHAPE(50), "dropout 0.5");
    dropout_check(0.0f, CX_SHAPE(6), "dropout 0");
    cx_set_training(false);
    dropout_check(0.5f, CX_SHAPE(6), "dropout eval");
    cx_set_training(tr);
}

static void dropout_eval_is_identity(void) {
    cx_seed(7);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 7), 0.0f, 1.0f);
    x->requires_grad = true;
    cx_set_training(false);
    cx_tensor *y = cx_dropout(x, 0.4f);
    cx_set_training(true);
    CHECK(same_shape_as(x, y));
    CHECK(memcmp(CX_F(x), CX_F(y), (size_t)x->numel * sizeof(float)) == 0);
    float g[35];
    for (int i = 0; i < 35; i++) g[i] = (float)i * 0.25f - 3.0f;
    cx_tensor *z = cx_mul_scalar(y, 1.0f); /* graph on top of the (identity) dropout */
    cx_backward_with(z, g);
    CHECK(x->grad != NULL);
    if (x->grad) cxt_allclose(x->grad, g, 35, 0, 0, "eval dropout gradient");
}

static void dropout_train_scaling(void) {
    const float p = 0.25f, scale = 1.0f / (1.0f - p);
    enum { N = 20000 };
    cx_seed(11);
    cx_set_training(true);
    cx_tensor *x = cx_rand_uniform_t(CX_SHAPE(N), 0.5f, 1.5f); /* no zeros: mask is visible */
    x->requires_grad = true;
    cx_tensor *y = cx_dropout(x, p);
    CHECK(same_shape_as(x, y));
    int dropped = 0, bad = 0;
    double sx = 0, sy = 0;
    for (int i = 0; i < N; i++) {
        float xi = CX_F(x)[i], yi = CX_F(y)[i];
        if (yi == 0.0f) dropped++;
        else if (fabsf(yi - xi * scale) > 1e-6f * fabsf(xi * scale)) bad++;
        sx += xi;
        sy += yi;
    }
    CHECK_MSG(bad == 0, "%d kept elements are not x / (1 - p)", bad);
    double frac = (double)dropped / N; /* binomial sd ~ 0.003 */
    CHECK_MSG(fabs(frac - p) < 0.02, "dropped fraction %g, expected %g", frac, (double)p);
    CHECK_MSG(fabs(sy / sx - 1.0) < 0.03, "E[y]/E[x] = %g, expected 1 (inverted dropout)", sy / sx);
    /* gradient: g * mask (0 or 1/(1-p)) */
    float *g = malloc(N * sizeof *g);
    CHECK(g != NULL);
    if (!g) return;
    for (int i = 0; i < N; i++) g[i] = (float)((i % 13) - 6) * 0.5f;
    cx_backward_with(y, g);
    CHECK(x->grad != NULL);
    int gbad = 0;
    for (int i = 0; x->grad && i < N; i++) {
        float want = CX_F(y)[i] == 0.0f ? 0.0f : g[i] * scale;
        if (fabsf(x->grad[i] - want) > 1e-6f * (1.0f + fabsf(want))) gbad++;
    }
    CHECK_MSG(gbad == 0, "%d dropout gradients differ from g * mask", gbad);
    free(g);
}

static void dropout_edge_p(void) {
    cx_seed(3);
    cx_set_training(true);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 6), 0.0f, 1.0f);
    cx_tensor *y0 = cx_dropout(x, 0.0f);
    CHECK(memcmp(CX_F(x), CX_F(y0), (size_t)x->numel * sizeof(float)) == 0);
    cx_tensor *y1 = cx_dropout(x, 1.0f);
    CHECK(same_shape_as(x, y1));
    int nz = 0;
    for (int64_t i = 0; i < y1->numel; i++) nz += CX_F(y1)[i] != 0.0f;
    CHECK_MSG(nz == 0, "p = 1 left %d non-zero elements", nz);
}

/* ------------------------------------------------------------ sort / topk: one node, two outputs */
static void sort_two_outputs_one_node(void) {
    float v[6] = {0.5f, NAN, -1.0f, 2.0f, 0.5f, -3.0f};
    cx_tensor *x = cx_from_data(v, CX_SHAPE(6));
    x->requires_grad = true;
    cx_tensor *idx = NULL;
    cx_tensor *s = cx_sort(x, 0, false, &idx);
    CHECK(idx != NULL && idx->dtype == CX_I64 && s->dtype == CX_F32);
    if (!idx) return;
    CHECK(s->node != NULL && idx->node == s->node);
    CHECK(cx_op_of(idx) == cx_op_find("sort") && cx_op_outputs(cx_op_of(idx)) == 2);
    CHECK(s->requires_grad && !idx->requires_grad);
    /* ascending, stable, NaN last: -3, -1, 0.5 (0), 0.5 (4), 2, NaN */
    const int64_t want[6] = {5, 2, 0, 4, 3, 1};
    for (int i = 0; i < 6; i++) CHECK_MSG(CX_I64P(idx)[i] == want[i], "index %d: %lld", i, (long long)CX_I64P(idx)[i]);
    CHECK(isnan(CX_F(s)[5]) && CX_F(s)[0] == -3.0f);
    cx_tensor *d = NULL;
    cx_sort(x, 0, true, &d); /* descending: NaN first, ties still in index order */
    const int64_t wantd[6] = {1, 3, 0, 4, 2, 5};
    for (int i = 0; i < 6; i++) CHECK(CX_I64P(d)[i] == wantd[i]);
    /* gradient of the values only (the indices carry none): g scattered back */
    float g[6] = {1, 2, 3, 4, 5, 6};
    cx_backward_with(s, g);
    const float gx[6] = {3, 6, 2, 5, 4, 1};
    CHECK(x->grad != NULL);
    if (x->grad) cxt_allclose(x->grad, gx, 6, 0, 0, "sort gradient");
    /* topk's indices feed gather: the same values again */
    cx_tensor *m = cx_from_data((const float[]){0.1f, 0.7f, 0.3f, 0.9f, 0.2f, 0.8f}, CX_SHAPE(2, 3));
    cx_tensor *ti = NULL;
    cx_tensor *tv = cx_topk(m, 2, 1, true, &ti);
    cx_tensor *gv = cx_gather(m, 1, ti);
    CHECK(memcmp(CX_F(tv), CX_F(gv), 4 * sizeof(float)) == 0);
    CHECK(CX_I64P(ti)[0] == 1 && CX_I64P(ti)[1] == 2 && CX_I64P(ti)[2] == 0 && CX_I64P(ti)[3] == 2);
}

/* ------------------------------------------------------------ circular convolution: the shift direction */
static void circular_conv_shift_direction(void) {
    /* N = 5 slots, K = 3 offsets -1, 0, +1 (s index 0, 1, 2); batch of 3:
     * row 0: one-hot at slot 2 shifted by +1 -> slot 3
     * row 1: one-hot at slot 4 shifted by +1 -> slot 0 (wraps at the end)
     * row 2: one-hot at slot 0 shifted by -1 -> slot 4 (wraps at the start) */
    const float w[15] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0};
    const float s[9] = {0, 0, 1, 0, 0, 1, 1, 0, 0};
    const float want[15] = {0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    cx_tensor *out = cx_circular_conv(cx_from_data(w, CX_SHAPE(3, 5)), cx_from_data(s, CX_SHAPE(3, 3)), -1);
    CHECK(out->ndim == 2 && out->shape[0] == 3 && out->shape[1] == 5);
    cxt_allclose(CX_F(out), want, 15, 0, 0, "one-hot shifts");
    /* a spread: w = [1, 2, 3, 4], s over -1, 0, +1 = [0.25, 0.5, 0.25]:
     * out[i] = 0.25 w[i+1] + 0.5 w[i] + 0.25 w[i-1] (indices mod 4) */
    cx_tensor *o2 = cx_circular_conv(cx_from_data((const float[]){1, 2, 3, 4}, CX_SHAPE(1, 4)),
                                     cx_from_data((const float[]){0.25f, 0.5f, 0.25f}, CX_SHAPE(1, 3)), 1);
    const float want2[4] = {0.25f * 2 + 0.5f * 1 + 0.25f * 4, 0.25f * 3 + 0.5f * 2 + 0.25f * 1,
                            0.25f * 4 + 0.5f * 3 + 0.25f * 2, 0.25f * 1 + 0.5f * 4 + 0.25f * 3};
    cxt_allclose(CX_F(o2), want2, 4, 1e-7, 0, "spread shift");
}

/* ------------------------------------------------------------ bad input: the new ops name themselves and the shapes */
static void new_ops_fail_cleanly(void) {
    cx_tensor *a23 = cx_ones(CX_SHAPE(2, 3)), *a43 = cx_ones(CX_SHAPE(4, 3)), *v3 = cx_ones(CX_SHAPE(3));
    cx_tensor *v4 = cx_ones(CX_SHAPE(4)), *i23 = cx_empty(CX_I64, CX_SHAPE(2, 3));
    memset(i23->data, 0, 6 * sizeof(int64_t));
    /* matmul / matmul_t / bmm */
    EXPECT_FATAL(cx_matmul_t(a23, a43, true, true), "matmul", "[2, 3]^T", "[4, 3]^T", "inner dimensions 2 and 3");
    EXPECT_FATAL(cx_matmul_t(a23, a23, false, false), "matmul", "[2, 3]", "inner dimensions 3 and 2");
    EXPECT_FATAL(cx_matmul(v3, a23), "matmul", "[3]", "[2, 3]", "at least 2 dimensions");
    EXPECT_FATAL(cx_matmul(cx_ones(CX_SHAPE(2, 2, 3, 4)), cx_ones(CX_SHAPE(3, 4, 5))), "matmul", "[2, 2, 3, 4]",
                 "[3, 4, 5]", "batch dimensions cannot be broadcast: 2 vs 3");
    EXPECT_FATAL(cx_matmul_t(i23, a23, true, false), "matmul", "a must be F32", "I64 [2, 3]");
    EXPECT_FATAL(cx_bmm(cx_ones(CX_SHAPE(2, 3, 4)), cx_ones(CX_SHAPE(3, 4, 5))), "bmm", "[2, 3, 4]", "[3, 4, 5]");
    EXPECT_FATAL(cx_bmm(cx_ones(CX_SHAPE(1, 2, 3, 4)), cx_ones(CX_SHAPE(1, 2, 4, 5))), "bmm", "[1, 2, 3, 4]");
    /* masked_fill / where / pow_t */
    EXPECT_FATAL(cx_masked_fill(a23, v4, 0.0f), "masked_fill", "[2, 3]", "[4]", "cannot be broadcast");
    EXPECT_FATAL(cx_masked_fill(i23, a23, 0.0f), "masked_fill", "a must be F32", "I64 [2, 3]");
    EXPECT_FATAL(cx_where(v4, a23, v3), "where", "[4], [2, 3] and [3]", "cannot be broadcast");
    EXPECT_FATAL(cx_where(i23, a23, i23), "where", "b must be F32", "I64 [2, 3]");
    EXPECT_FATAL(cx_pow_t(a23, v4), "pow_t", "[2, 3]", "[4]", "cannot be broadcast");
    EXPECT_FATAL(cx_pow_t(a23, i23), "pow_t", "F32");
    /* cumsum / cumprod / sort / argsort / topk */
    EXPECT_FATAL(cx_cumsum(a23, 2), "cumsum", "axis 2", "[2, 3]");
    EXPECT_FATAL(cx_cumprod(a23, -3), "cumprod", "axis -3", "[2, 3]");
    EXPECT_FATAL(cx_cumsum(i23, 0), "cumsum", "input must be F32", "I64 [2, 3]");
    EXPECT_FATAL(cx_sort(a23, 5, false, NULL), "sort", "axis 5", "[2, 3]");
    EXPECT_FATAL(cx_argsort(a23, -4, true), "argsort", "axis -4", "[2, 3]");
    EXPECT_FATAL(cx_sort(i23, 0, false, NULL), "sort", "I64 [2, 3]");
    EXPECT_FATAL(cx_topk(a23, 4, 1, true, NULL), "topk", "k = 4", "[2, 3]", "size 3");
    EXPECT_FATAL(cx_topk(a23, -1, 0, true, NULL), "topk", "k = -1", "[2, 3]");
    EXPECT_FATAL(cx_topk(a23, 1, 2, true, NULL), "topk", "axis 2", "[2, 3]");
    /* cosine_similarity / circular_conv / outer */
    EXPECT_FATAL(cx_cosine_similarity(a23, a43, 1, 1e-8f), "cosine_similarity", "[2, 3]", "[4, 3]",
                 "cannot be broadcast");
    EXPECT_FATAL(cx_cosine_similarity(a23, v3, 2, 1e-8f), "cosine_similarity", "axis 2", "[2, 3]", "[3]");
    EXPECT_FATAL(cx_cosine_similarity(a23, a23, 1, -1.0f), "cosine_similarity", "eps");
    EXPECT_FATAL(cx_cosine_similarity(a23, i23, 1, 1e-8f), "cosine_similarity", "b must be F32", "I64 [2, 3]");
    cx_tensor *w5 = cx_ones(CX_SHAPE(2, 5));
    EXPECT_FATAL(cx_circular_conv(w5, cx_ones(CX_SHAPE(2, 2)), 1), "circular_conv", "[2, 5]", "[2, 2]", "odd");
    EXPECT_FATAL(cx_circular_conv(w5, cx_ones(CX_SHAPE(2, 7)), 1), "circular_conv", "[2, 7]", "K = 7", "N = 5");
    EXPECT_FATAL(cx_circular_conv(w5, cx_ones(CX_SHAPE(3, 3)), 1), "circular_conv", "[2, 5]", "[3, 3]",
                 "same shape except along axis 1");
    EXPECT_FATAL(cx_circular_conv(w5, cx_ones(CX_SHAPE(2, 3)), 2), "circular_conv", "axis 2", "[2, 5]");
    EXPECT_FATAL(cx_circular_conv(w5, cx_empty(CX_I32, CX_SHAPE(2, 3)), 1), "circular_conv", "s must be F32",
                 "I32 [2, 3]");
    EXPECT_FATAL(cx_outer(a23, v3), "outer", "[2, 3]", "[3]");
    EXPECT_FATAL(cx_outer(a23, a43), "outer", "[2, 3]", "[4, 3]");
    EXPECT_FATAL(cx_outer(cx_ones(CX_SHAPE(2, 2, 2)), cx_ones(CX_SHAPE(2, 2, 2))), "outer", "[2, 2, 2]");
    /* gelu_tanh / multi_margin_loss_p */
    EXPECT_FATAL(cx_gelu_tanh(i23), "gelu_tanh", "F32");
    cx_tensor *t = cx_from_i32((const int32_t[]){0, 2}, CX_SHAPE(2));
    EXPECT_FATAL(cx_multi_margin_loss_p(a23, t, 3, 1.0f, NULL, CX_REDUCE_MEAN), "multi_margin_loss", "p must be 1 or 2");
    EXPECT_FATAL(cx_multi_margin_loss_p(a23, t, 2, 1.0f, v4, CX_REDUCE_MEAN), "multi_margin_loss", "weight [4]",
                 "[2, 3]");
}

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the op fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_op_fixtures.py", cx_last_error());
}

int main(void) {
    const char *path = getenv("CX_OPS_FIXTURE");
    if (!path || !*path) path = "tests/fixtures/ops/ops.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) {
#define RUN_CASE(name, gc, expr) RUN(case_##name);
        CASES(RUN_CASE)
        RUN(fixture_cases_all_covered);
    }
    RUN(gradcheck_detects_wrong_gradient);
    RUN(dropout_gradcheck);
    RUN(dropout_eval_is_identity);
    RUN(dropout_train_scaling);
    RUN(dropout_edge_p);
    RUN(sort_two_outputs_one_node);
    RUN(circular_conv_shift_direction);
    RUN(new_ops_fail_cleanly);
    cx_st_free(FX);
    TEST_END();
}
