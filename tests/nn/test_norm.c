/* Batch norm and layer norm: PyTorch fixtures (forward, gradients, running
 * statistics), finite-difference gradient checks, the BatchNorm / LayerNorm
 * modules (names, state, buffers, two training steps then eval) and errors.
 *
 * The fixtures come from tools/gen_pool_norm_fixtures.py (run with
 * /usr/bin/python3), file tests/fixtures/pool_norm/norm.safetensors
 * (override with CX_NORM_FIXTURE). Each case C holds the inputs C.in<k>, the
 * output C.out, an upstream gradient C.gout, the gradients C.grad<k> of
 * sum(out * gout) for the inputs that require grad, and C.after<k> for the
 * inputs updated in place (running_mean / running_var). Batch norm cases:
 * inputs x, running_mean, running_var[, weight, bias], momentum 0.1, eps 1e-5.
 * Layer norm: x[, weight, bias] over the last k dims, eps 1e-5. */
#include "nn/layout.h" /* the channels-last row kernels */
#include "test.h"
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#define RTOL 1e-4
#define ATOL 1e-5
#define MAX_IN 6

static cx_st_file *FX;
static int n_cases_run;

#define BN_T(aff) cx_batch_norm(x[0], x[1], x[2], aff ? x[3] : NULL, aff ? x[4] : NULL, true, 0.1f, 1e-5f)
#define BN_E(aff) cx_batch_norm(x[0], x[1], x[2], aff ? x[3] : NULL, aff ? x[4] : NULL, false, 0.1f, 1e-5f)

#define CASES(X) \
    X(bn_train_nc, BN_T(1)) X(bn_train_ncl, BN_T(1)) X(bn_train_nchw, BN_T(1)) \
    X(bn_train_nc_noaffine, BN_T(0)) X(bn_train_ncl_noaffine, BN_T(0)) \
    X(bn_train_nchw_noaffine, BN_T(0)) X(bn_train_n2_nc, BN_T(1)) \
    X(bn_eval_nc, BN_E(1)) X(bn_eval_nchw, BN_E(1)) X(bn_eval_ncl_noaffine, BN_E(0)) \
    X(ln_k1, cx_layer_norm(x[0], 1, x[1], x[2], 1e-5f)) \
    X(ln_k2, cx_layer_norm(x[0], 2, x[1], x[2], 1e-5f)) \
    X(ln_k3, cx_layer_norm(x[0], 3, x[1], x[2], 1e-5f)) \
    X(ln_k1_noaffine, cx_layer_norm(x[0], 1, NULL, NULL, 1e-5f)) \
    X(ln_k2_noaffine, cx_layer_norm(x[0], 2, NULL, NULL, 1e-5f)) \
    X(ln_k1_2d, cx_layer_norm(x[0], 1, x[1], x[2], 1e-5f)) \
    X(bnrelu_train_nchw, cx_batch_norm_relu(x[0], NULL, x[1], x[2], x[3], x[4], true, 0.1f, 1e-5f)) \
    X(bnrelu_train_res_nchw, cx_batch_norm_relu(x[0], x[5], x[1], x[2], x[3], x[4], true, 0.1f, 1e-5f)) \
    X(bnrelu_train_res_nc, cx_batch_norm_relu(x[0], x[5], x[1], x[2], x[3], x[4], true, 0.1f, 1e-5f)) \
    X(bnrelu_eval_res_nchw, cx_batch_norm_relu(x[0], x[5], x[1], x[2], x[3], x[4], false, 0.1f, 1e-5f))

#define DEF_OP(name, expr) static cx_tensor *op_##name(cx_tensor **x) { return expr; }
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

static void check_case(const char *c, cx_tensor *(*fn)(cx_tensor **)) {
    n_cases_run++;
    cx_tensor *x[MAX_IN] = {0};
    const cx_tensor *want_grad[MAX_IN] = {0};
    int n_in = 0;
    char what[160], s1[96], s2[96];
    for (; n_in < MAX_IN; n_in++) {
        snprintf(what, sizeof what, "in%d", n_in);
        cx_tensor *src = fx_get(c, what);
        if (!src) break;
        x[n_in] = cx_from_data(CX_F(src), src->shape, src->ndim);
        snprintf(what, sizeof what, "grad%d", n_in);
        want_grad[n_in] = fx_get(c, what);
        x[n_in]->requires_grad = want_grad[n_in] != NULL;
    }
    cx_tensor *want = fx_get(c, "out"), *gout = fx_get(c, "gout");
    CHECK_MSG(n_in > 0 && want && gout, "case %s missing from the fixture (regenerate with "
              "/usr/bin/python3 tools/gen_pool_norm_fixtures.py)", c);
    if (!(n_in > 0 && want && gout)) return;
    cx_tensor *out = fn(x);
    CHECK_MSG(same_shape_as(out, want), "case %s: output shape %s, PyTorch %s", c,
              cx_shape_str(out, s1, sizeof s1), cx_shape_str(want, s2, sizeof s2));
    if (!same_shape_as(out, want)) return;
    snprintf(what, sizeof what, "%s forward", c);
    cxt_allclose(CX_F(out), CX_F(want), (long)out->numel, RTOL, ATOL, what);
    for (int k = 0; k < n_in; k++) {
        snprintf(what, sizeof what, "after%d", k);
        cx_tensor *after = fx_get(c, what);
        if (!after) continue;
        snprintf(what, sizeof what, "%s input %d after the call (running stats)", c, k);
        CHECK(after->numel == x[k]->numel);
        if (after->numel == x[k]->numel) cxt_allclose(CX_F(x[k]), CX_F(after), (long)after->numel, RTOL, ATOL, what);
    }
    CHECK_MSG(out->requires_grad, "case %s: output does not require grad", c);
    if (!out->requires_grad) return;
    cx_backward_with(out, CX_F(gout));
    for (int k = 0; k < n_in; k++) {
        if (!want_grad[k]) continue;
        CHECK_MSG(x[k]->grad != NULL, "case %s: input %d got no gradient", c, k);
        if (!x[k]->grad) continue;
        snprintf(what, sizeof what, "%s gradient of input %d", c, k);
        cxt_allclose(x[k]->grad, CX_F(want_grad[k]), (long)x[k]->numel, RTOL, ATOL, what);
    }
    cx_step_reset();
}

#define DEF_TEST(name, expr) static void case_##name(void) { check_case(#name, op_##name); }
CASES(DEF_TEST)

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the norm fixtures (%s); generate them with "
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

/* ------------------------------------------------------------ BatchNorm2d module vs PyTorch */
static void copy_into(cx_tensor *dst, const cx_tensor *src) {
    CHECK(src && dst->numel == src->numel);
    if (src && dst->numel == src->numel) memcpy(dst->data, src->data, (size_t)dst->numel * 4);
}
static void expect_fx(const float *got, long n, const char *key) {
    cx_tensor *w = cx_st_get(FX, key);
    CHECK_MSG(w && w->numel == n, "fixture %s missing or of the wrong size", key);
    if (w && w->numel == n) cxt_allclose(got, CX_F(w), n, RTOL, ATOL, key);
}
static cx_tensor *fx_step(const char *key) {
    cx_tensor *s = cx_st_get(FX, key);
    CHECK_MSG(s != NULL, "fixture %s missing", key);
    return s ? cx_from_data(CX_F(s), s->shape, s->ndim) : cx_zeros(CX_SHAPE(1, 3, 1, 2));
}

static void batchnorm2d_module_two_steps_then_eval(void) {
    cx_module *bn = cx_batchnorm2d_new(3);
    copy_into(cx_batchnorm_weight(bn), cx_st_get(FX, "bnmod.weight"));
    copy_into(cx_batchnorm_bias(bn), cx_st_get(FX, "bnmod.bias"));
    cx_set_training(true);
    for (int step = 1; step <= 2; step++) {
        char key[32];
        snprintf(key, sizeof key, "bnmod.x%d", step);
        cx_tensor *y = cx_module_forward(bn, fx_step(key));
        snprintf(key, sizeof key, "bnmod.out%d", step);
        expect_fx(CX_F(y), (long)y->numel, key);
        snprintf(key, sizeof key, "bnmod.rm%d", step);
        expect_fx(CX_F(cx_batchnorm_running_mean(bn)), 3, key);
        snprintf(key, sizeof key, "bnmod.rv%d", step);
        expect_fx(CX_F(cx_batchnorm_running_var(bn)), 3, key);
        cx_step_reset();
    }
    cx_tensor *nbt = cx_batchnorm_num_batches_tracked(bn);
    CHECK(nbt->dtype == CX_I64 && nbt->ndim == 0 && nbt->numel == 1 && CX_I64P(nbt)[0] == 2);
    /* eval: running stats, gradients to x, weight and bias */
    cx_set_training(false);
    cx_tensor *x3 = fx_step("bnmod.x3");
    x3->requires_grad = true;
    cx_tensor *w = cx_batchnorm_weight(bn), *b = cx_batchnorm_bias(bn);
    cx_zero_grad(w);
    cx_zero_grad(b);
    cx_tensor *y3 = cx_module_forward(bn, x3);
    expect_fx(CX_F(y3), (long)y3->numel, "bnmod.out3");
    cx_tensor *g3 = cx_st_get(FX, "bnmod.gout3");
    CHECK(g3 && g3->numel == y3->numel);
    if (g3 && g3->numel == y3->numel) {
        cx_backward_with(y3, CX_F(g3));
        expect_fx(x3->grad, (long)x3->numel, "bnmod.gx3");
        expect_fx(w->grad, 3, "bnmod.gw3");
        expect_fx(b->grad, 3, "bnmod.gb3");
    }
    CHECK(CX_I64P(nbt)[0] == 2); /* eval does not count batches */
    expect_fx(CX_F(cx_batchnorm_running_mean(bn)), 3, "bnmod.rm2"); /* nor update stats */
    cx_set_training(true);
    cx_module_free(bn);
}

/* ------------------------------------------------------------ gradcheck */
typedef struct {
    int kind;       /* 0 batch norm, 1 layer norm */
    bool training;
    int k;          /* layer norm: normalized dims */
    int n;          /* number of inputs used: x[, w, b] */
    cx_tensor *rm, *rv;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *gc_scalar(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    cx_tensor *w = c->n > 1 ? in[1] : NULL, *b = c->n > 2 ? in[2] : NULL, *y;
    if (c->kind == 0) y = cx_batch_norm(in[0], c->rm, c->rv, w, b, c->training, 0.1f, 1e-5f);
    else y = cx_layer_norm(in[0], c->k, w, b, 1e-5f);
    return cx_sum(cx_mul(y, c->R));
}

static cx_tensor *leaf(const int *shape, int ndim, float mean, float std) {
    cx_tensor *t = cx_randn(shape, ndim, mean, std);
    t->requires_grad = true;
    return t;
}

static void run_gc(gc_ctx *c, cx_tensor *x, bool affine, const int *pshape, int pnd, const char *what) {
    cx_tensor *in[3] = {x, NULL, NULL};
    c->n = 1;
    if (affine) {
        in[1] = leaf(pshape, pnd, 1.0f, 0.5f);
        in[2] = leaf(pshape, pnd, 0.0f, 0.5f);
        c->n = 3;
    }
    c->R = cx_randn(x->shape, x->ndim, 0.0f, 1.0f);
    double worst = cx_gradcheck(gc_scalar, in, c->n, c, 1e-2f, 3e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
}

static void gradcheck_batch_norm(void) {
    cx_seed(21);
    const int shapes[3][4] = {{6, 3, 0, 0}, {3, 4, 5, 0}, {2, 3, 3, 5}};
    const int nds[3] = {2, 3, 4};
    for (int s = 0; s < 3; s++)
        for (int mode = 0; mode < 2; mode++)
            for (int affine = 0; affine < 2; affine++) {
                int C = shapes[s][1];
                gc_ctx c = {0, mode == 0, 0, 0, NULL, NULL, NULL};
                if (mode == 1) {
                    c.rm = cx_randn(&C, 1, 0.0f, 0.5f);
                    c.rv = cx_rand_uniform_t(&C, 1, 0.5f, 1.5f);
                }
                char what[96];
                snprintf(what, sizeof what, "batch_norm %dd %s%s", nds[s], mode == 0 ? "training" : "eval",
                         affine ? " affine" : "");
                run_gc(&c, leaf(shapes[s], nds[s], 0.2f, 1.3f), affine, &C, 1, what);
            }
}

/* relu(bn(x) + r): x, weight, bias and the residual. The inputs keep the
 * sums away from relu's kink by more than the step (the check is of the
 * smooth pieces). */
typedef struct { bool training, res; cx_tensor *rm, *rv, *R; } gcr_ctx;
static cx_tensor *gcr_scalar(cx_tensor **in, int n, void *user) {
    (void)n;
    gcr_ctx *c = user;
    cx_tensor *y = cx_batch_norm_relu(in[0], c->res ? in[3] : NULL, c->rm, c->rv, in[1], in[2], c->training,
                                      0.1f, 1e-5f);
    return cx_sum(cx_mul(y, c->R));
}
static void gradcheck_batch_norm_relu(void) {
    cx_seed(24);
    for (int mode = 0; mode < 2; mode++)
        for (int res = 0; res < 2; res++) {
            const int C = 3;
            gcr_ctx c = {mode == 0, res == 1, NULL, NULL, NULL};
            if (mode == 1) {
                c.rm = cx_randn(&C, 1, 0.0f, 0.5f);
                c.rv = cx_rand_uniform_t(&C, 1, 0.5f, 1.5f);
            }
            /* inputs whose pre-activations are all at least 0.05 from 0
             * (redrawn until they are) */
            cx_tensor *in[4];
            float gap = 0;
            for (int tries = 0; tries < 100 && gap < 0.05f; tries++) {
                in[0] = leaf(CX_SHAPE(2, 3, 3, 4), 0.2f, 1.3f);
                in[1] = leaf(CX_SHAPE(3), 1.0f, 0.5f);
                in[2] = leaf(CX_SHAPE(3), 0.0f, 0.5f);
                in[3] = leaf(CX_SHAPE(2, 3, 3, 4), 0.0f, 1.0f);
                cx_no_grad_begin();
                cx_tensor *z = cx_batch_norm(in[0], NULL, NULL, in[1], in[2], true, 0.1f, 1e-5f);
                if (mode == 1) z = cx_batch_norm(in[0], c.rm, c.rv, in[1], in[2], false, 0.1f, 1e-5f);
                if (res) z = cx_add(z, in[3]);
                cx_no_grad_end();
                gap = INFINITY;
                for (int64_t i = 0; i < z->numel; i++) gap = fminf(gap, fabsf(CX_F(z)[i]));
            }
            CHECK_MSG(gap >= 0.05f, "no inputs away from the kink (gap %g)", (double)gap);
            c.R = cx_randn(in[0]->shape, 4, 0.0f, 1.0f);
            char what[96];
            snprintf(what, sizeof what, "batch_norm_relu %s%s", mode == 0 ? "training" : "eval",
                     res ? " residual" : "");
            double worst = cx_gradcheck(gcr_scalar, in, res ? 4 : 3, &c, 1e-3f, 3e-3f, 1e-2f, true);
            CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
        }
}

static void gradcheck_layer_norm(void) {
    cx_seed(22);
    for (int k = 1; k <= 2; k++)
        for (int affine = 0; affine < 2; affine++) {
            gc_ctx c = {1, true, k, 0, NULL, NULL, NULL};
            cx_tensor *x = leaf(CX_SHAPE(3, 4, 5), 0.3f, 1.5f);
            char what[64];
            snprintf(what, sizeof what, "layer_norm k=%d%s", k, affine ? " affine" : "");
            run_gc(&c, x, affine, x->shape + 3 - k, k, what);
        }
}

/* ------------------------------------------------------------ semantics in pure C */
static void batch_norm_training_stats(void) {
    /* channel 0: {1, 3, 5, 7}: mean 4, biased var 5, unbiased 20/3 */
    float v[8] = {1, 10, 3, 10, 5, 10, 7, 10};
    cx_tensor *x = cx_from_data(v, CX_SHAPE(4, 2));
    cx_tensor *rm = cx_zeros(CX_SHAPE(2)), *rv = cx_ones(CX_SHAPE(2));
    cx_tensor *y = cx_batch_norm(x, rm, rv, NULL, NULL, true, 0.1f, 1e-5f);
    CHECK_NEAR(CX_F(y)[0], -3.0 / sqrt(5.0 + 1e-5), 1e-5);
    CHECK_NEAR(CX_F(y)[1], 0.0, 1e-6); /* constant channel */
    CHECK_NEAR(CX_F(rm)[0], 0.4, 1e-6);
    CHECK_NEAR(CX_F(rv)[0], 0.9 + 0.1 * 20.0 / 3.0, 1e-6);
    CHECK_NEAR(CX_F(rm)[1], 1.0, 1e-6);
    CHECK_NEAR(CX_F(rv)[1], 0.9, 1e-6);
    CHECK(strcmp(cx_op_name(y), "leaf") == 0); /* nothing requires grad: no node */
    x->requires_grad = true;
    cx_tensor *y2 = cx_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f);
    CHECK(strcmp(cx_op_name(y2), "batch_norm") == 0);
    cx_tensor *z = cx_layer_norm(x, 1, NULL, NULL, 1e-5f);
    CHECK(strcmp(cx_op_name(z), "layer_norm") == 0);
    /* running stats updated under no-grad too (PyTorch does) */
    cx_no_grad_begin();
    cx_batch_norm(x, rm, rv, NULL, NULL, true, 0.1f, 1e-5f);
    cx_no_grad_end();
    CHECK_NEAR(CX_F(rm)[0], 0.9 * 0.4 + 0.4, 1e-6);
}

static void batch_norm_large_parallel(void) {
    /* large enough for the OpenMP path: per-channel results match a one-channel run */
    cx_seed(23);
    cx_tensor *x = cx_randn(CX_SHAPE(8, 6, 30, 31), 0.5f, 2.0f);
    x->requires_grad = true;
    cx_tensor *w = leaf(CX_SHAPE(6), 1.0f, 0.3f), *b = leaf(CX_SHAPE(6), 0.0f, 0.3f);
    cx_tensor *y = cx_batch_norm(x, NULL, NULL, w, b, true, 0.1f, 1e-5f);
    cx_tensor *R = cx_randn(y->shape, y->ndim, 0, 1);
    cx_backward(cx_sum(cx_mul(y, R)));
    /* channel 4 alone: slice it out */
    cx_tensor *xc = cx_detach(cx_slice(x, 1, 4, 5, 1));
    xc->requires_grad = true;
    cx_tensor *wc = cx_from_data(CX_F(w) + 4, CX_SHAPE(1)), *bc = cx_from_data(CX_F(b) + 4, CX_SHAPE(1));
    cx_tensor *yc = cx_batch_norm(xc, NULL, NULL, wc, bc, true, 0.1f, 1e-5f);
    cx_tensor *Rc = cx_slice(R, 1, 4, 5, 1);
    cx_backward(cx_sum(cx_mul(yc, Rc)));
    cx_tensor *ys = cx_slice(cx_detach(y), 1, 4, 5, 1);
    cxt_allclose(CX_F(yc), CX_F(ys), (long)yc->numel, 1e-6, 1e-6, "channel forward");
    cx_tensor *gx = cx_from_data(x->grad, x->shape, x->ndim);
    cx_tensor *gs = cx_slice(gx, 1, 4, 5, 1);
    cxt_allclose(xc->grad, CX_F(gs), (long)xc->numel, 1e-5, 1e-6, "channel gradient");
}

/* Batch norm against a double-precision transcription of the definition,
 * for rows shorter than, equal to and longer than the kernels' 16 lanes
 * (with a tail), [N, C] input (rows of 1), and a channel with a large mean
 * and a small spread (the variance is taken around the mean rounded to
 * float; the kernel corrects for that rounding). */
static void batch_norm_matches_double_reference(void) {
    static const int shapes[][4] = {{5, 3, 7, 9}, {7, 4, 1, 1}, {3, 2, 4, 4}, {4, 3, 5, 1}, {2, 2, 33, 35}};
    cx_seed(41);
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int N = shapes[t][0], C = shapes[t][1], inner = shapes[t][2] * shapes[t][3];
        cx_tensor *x = cx_randn(CX_SHAPE(N, C, shapes[t][2], shapes[t][3]), 0.3f, 1.5f);
        float *xd = CX_F(x);
        for (int o = 0; o < N; o++) /* channel 1: mean ~100, spread ~0.05 */
            for (int j = 0; j < inner; j++) {
                float *v = &xd[((int64_t)o * C + 1) * inner + j];
                *v = 100.0f + 0.05f * *v;
            }
        x->requires_grad = true;
        cx_tensor *w = leaf(CX_SHAPE(C), 1.0f, 0.3f), *b = leaf(CX_SHAPE(C), 0.0f, 0.3f);
        cx_tensor *rm = cx_zeros(CX_SHAPE(C)), *rv = cx_ones(CX_SHAPE(C));
        cx_tensor *y = cx_batch_norm(x, rm, rv, w, b, true, 0.1f, 1e-5f);
        cx_tensor *R = cx_randn(y->shape, y->ndim, 0, 1);
        cx_backward(cx_sum(cx_mul(y, R)));
        const double n = (double)N * inner;
        int bad = 0;
        for (int c = 0; c < C; c++) {
            double sum = 0, sq = 0, sg = 0, sgx = 0;
            for (int o = 0; o < N; o++)
                for (int j = 0; j < inner; j++) sum += xd[((int64_t)o * C + c) * inner + j];
            double mean = sum / n;
            for (int o = 0; o < N; o++)
                for (int j = 0; j < inner; j++) {
                    double d = xd[((int64_t)o * C + c) * inner + j] - mean;
                    sq += d * d;
                }
            double var = sq / n, invstd = 1.0 / sqrt(var + 1e-5), wc = CX_F(w)[c];
            bad += fabs(CX_F(rm)[c] - 0.1 * mean) > 1e-6 * (1 + fabs(mean));
            bad += fabs(CX_F(rv)[c] - (0.9 + 0.1 * sq / (n - 1))) > 1e-5 * (0.9 + 0.1 * sq / (n - 1));
            for (int o = 0; o < N; o++)
                for (int j = 0; j < inner; j++) {
                    int64_t i = ((int64_t)o * C + c) * inner + j;
                    double xh = (xd[i] - mean) * invstd;
                    bad += fabs(CX_F(y)[i] - (xh * wc + CX_F(b)[c])) > 1e-4;
                    sg += CX_F(R)[i];
                    sgx += CX_F(R)[i] * xh;
                }
            bad += fabs(w->grad[c] - sgx) > 1e-4 * (1 + fabs(sgx));
            bad += fabs(b->grad[c] - sg) > 1e-4 * (1 + fabs(sg));
            for (int o = 0; o < N; o++)
                for (int j = 0; j < inner; j++) {
                    int64_t i = ((int64_t)o * C + c) * inner + j;
                    double xh = (xd[i] - mean) * invstd;
                    double want = wc * invstd * (CX_F(R)[i] - sg / n - xh * sgx / n);
                    bad += fabs(x->grad[i] - want) > 2e-3 * (1 + fabs(want)) * (c == 1 ? 1 : 0.05);
                }
        }
        CHECK_MSG(bad == 0, "shape %zu: %d mismatches", t, bad);
        cx_step_reset();
    }
}

/* cx_batch_norm_relu against cx_relu(cx_add(cx_batch_norm(...), r)) and
 * cx_relu(cx_batch_norm(...)): the same output, running statistics and
 * gradients bit for bit (x, weight, bias, residual), in training and eval
 * mode, with the residual's gradient created by the op or accumulated onto
 * one from another use, on small tensors and on ones large enough for the
 * threaded path. */
static void batch_norm_relu_equals_the_three_ops(void) {
    static const int shapes[][4] = {{3, 4, 5, 3}, {64, 16, 14, 14}, {7, 5, 1, 1}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int mode = 0; mode < 2; mode++)
            for (int res = 0; res < 4; res++) { /* none, fresh gradient, accumulated, x itself */
                const int *sh = shapes[t], C = sh[1];
                cx_seed(50 + (uint64_t)t);
                cx_tensor *xv = cx_randn(sh, 4, 0.3f, 1.5f), *rv = cx_randn(sh, 4, 0.0f, 1.0f);
                cx_tensor *wv = cx_randn(&C, 1, 1.0f, 0.5f), *bv = cx_randn(&C, 1, 0.0f, 0.5f);
                cx_tensor *R = cx_randn(sh, 4, 0.0f, 1.0f), *R2 = cx_randn(sh, 4, 0.0f, 1.0f);
                cx_tensor *rm0 = cx_randn(&C, 1, 0.0f, 0.5f), *rv0 = cx_rand_uniform_t(&C, 1, 0.5f, 1.5f);
                cx_tensor *out[2], *g[2][4], *stats[2][2];
                for (int fused = 0; fused < 2; fused++) {
                    cx_tensor *x = cx_detach(cx_mul_scalar(xv, 1.0f)), *r = cx_detach(cx_mul_scalar(rv, 1.0f));
                    cx_tensor *w = cx_detach(cx_mul_scalar(wv, 1.0f)), *b = cx_detach(cx_mul_scalar(bv, 1.0f));
                    cx_tensor *rm = cx_detach(cx_mul_scalar(rm0, 1.0f)), *rvar = cx_detach(cx_mul_scalar(rv0, 1.0f));
                    x->requires_grad = w->requires_grad = b->requires_grad = r->requires_grad = true;
                    cx_tensor *y;
                    if (res == 3) r = x; /* relu(bn(x) + x) */
                    if (fused) y = cx_batch_norm_relu(x, res ? r : NULL, rm, rvar, w, b, mode == 0, 0.1f, 1e-5f);
                    else {
                        y = cx_batch_norm(x, rm, rvar, w, b, mode == 0, 0.1f, 1e-5f);
                        y = cx_relu(res ? cx_add(y, r) : y);
                    }
                    CHECK(strcmp(cx_op_name(y), fused ? "batch_norm_relu" : "relu") == 0);
                    cx_tensor *loss = cx_sum(cx_mul(y, R));
                    if (res == 2) loss = cx_add(loss, cx_sum(cx_mul(cx_tanh(r), R2)));
                    cx_backward(loss);
                    out[fused] = y;
                    g[fused][0] = cx_from_data(x->grad, x->shape, 4);
                    g[fused][1] = cx_from_data(w->grad, w->shape, 1);
                    g[fused][2] = cx_from_data(b->grad, b->shape, 1);
                    g[fused][3] = res ? cx_from_data(r->grad, r->shape, 4) : NULL;
                    stats[fused][0] = rm;
                    stats[fused][1] = rvar;
                }
                char what[128];
                snprintf(what, sizeof what, "shape %zu %s residual %d", t, mode == 0 ? "training" : "eval", res);
                CHECK_MSG(!memcmp(CX_F(out[0]), CX_F(out[1]), (size_t)out[0]->numel * 4), "%s: output", what);
                for (int k = 0; k < 2; k++)
                    CHECK_MSG(!memcmp(CX_F(stats[0][k]), CX_F(stats[1][k]), (size_t)C * 4), "%s: running stat %d",
                              what, k);
                for (int k = 0; k < 4; k++)
                    if (g[0][k])
                        CHECK_MSG(!memcmp(CX_F(g[0][k]), CX_F(g[1][k]), (size_t)g[0][k]->numel * 4),
                                  "%s: gradient of input %d", what, k);
                cx_step_reset();
            }
    cx_tensor *x = cx_zeros(CX_SHAPE(4, 3, 5));
    EXPECT_FATAL(cx_batch_norm_relu(x, cx_zeros(CX_SHAPE(4, 3, 4)), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f),
                 "batch_norm_relu", "residual", "[4, 3, 4]", "[4, 3, 5]");
    EXPECT_FATAL(cx_batch_norm_relu(x, NULL, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f), "batch_norm_relu",
                 "eval");
    cx_module *ln = cx_layernorm_new(CX_SHAPE(5));
    EXPECT_FATAL(cx_batchnorm_forward_relu(ln, x, NULL), "BatchNorm", "LayerNorm");
    cx_module_free(ln);
}

/* ------------------------------------------------------------ modules */
static void describe_is(cx_module *m, const char *want) {
    char buf[128];
    cx_module_describe(m, buf, sizeof buf);
    CHECK_MSG(strcmp(buf, want) == 0, "describe '%s', expected '%s'", buf, want);
}

static void module_names_and_state(void) {
    cx_module *net = cx_sequential_new();
    cx_sequential_add(net, "fc", cx_linear_new(4, 6, true));
    cx_sequential_add(net, "bn1", cx_batchnorm1d_new(6));
    cx_sequential_add(net, "ln", cx_layernorm_new(CX_SHAPE(6)));
    cx_params st;
    cx_params_init(&st);
    cx_module_state(net, &st);
    const char *want[] = {"fc.weight", "fc.bias", "bn1.weight", "bn1.bias", "ln.weight", "ln.bias",
                          "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked"};
    CHECK(st.n == 9);
    for (int i = 0; i < st.n && i < 9; i++)
        CHECK_MSG(strcmp(st.t[i]->name, want[i]) == 0, "state[%d] = %s, expected %s", i, st.t[i]->name, want[i]);
    cx_params_free(&st);
    cx_module *bn = cx_sequential_get(net, 1);
    cx_params_init(&st);
    cx_module_state(bn, &st); /* one module: params then buffers, PyTorch's state_dict order */
    CHECK(st.n == 5 && !strcmp(st.t[0]->name, "bn1.weight") && !strcmp(st.t[2]->name, "bn1.running_mean") &&
          !strcmp(st.t[4]->name, "bn1.num_batches_tracked"));
    cx_params_free(&st);
    cx_params_init(&st);
    cx_module_params(bn, &st);
    CHECK(st.n == 2 && st.t[0]->requires_grad && st.t[1]->requires_grad);
    cx_params_free(&st);
    cx_params_init(&st);
    cx_module_buffers(bn, &st);
    CHECK(st.n == 3 && !st.t[0]->requires_grad && st.t[2]->dtype == CX_I64 && st.t[2]->ndim == 0);
    CHECK(CX_F(st.t[0])[0] == 0.0f && CX_F(st.t[1])[5] == 1.0f);
    cx_params_free(&st);
    CHECK(CX_F(cx_batchnorm_weight(bn))[3] == 1.0f && CX_F(cx_batchnorm_bias(bn))[3] == 0.0f);
    describe_is(bn, "BatchNorm1d(6, eps=1e-05, momentum=0.1)");
    describe_is(cx_sequential_get(net, 2), "LayerNorm([6], eps=1e-05)");
    CHECK(!strcmp(cx_module_kind(bn), "BatchNorm1d"));

    /* training forward through the whole net: stats move, grads reach every param */
    cx_seed(31);
    cx_set_training(true);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 4), 0, 1);
    cx_tensor *y = cx_module_forward(net, x);
    cx_backward(cx_sum(cx_mul(y, cx_randn(y->shape, y->ndim, 0, 1))));
    CHECK(cx_batchnorm_weight(bn)->grad && cx_layernorm_weight(cx_sequential_get(net, 2))->grad);
    CHECK(CX_F(cx_batchnorm_running_mean(bn))[0] != 0.0f);
    CHECK(CX_I64P(cx_batchnorm_num_batches_tracked(bn))[0] == 1);
    /* BatchNorm1d takes [N, C, L] too */
    cx_tensor *y3 = cx_module_forward(bn, cx_randn(CX_SHAPE(2, 6, 3), 0, 1));
    CHECK(y3->ndim == 3);
    cx_module_free(net);

    cx_module *bn2 = cx_batchnorm_new_ex(2, 4, 1e-3f, 0.2f, false);
    describe_is(bn2, "BatchNorm2d(4, eps=0.001, momentum=0.2, affine=False)");
    cx_params_init(&st);
    cx_module_state(bn2, &st);
    CHECK(st.n == 3 && !strcmp(st.t[0]->name, "running_mean"));
    cx_params_free(&st);
    CHECK(cx_batchnorm_weight(bn2) == NULL);
    cx_module_free(bn2);

    cx_module *ln = cx_layernorm_new_ex(CX_SHAPE(3, 5), 1e-6f, false);
    describe_is(ln, "LayerNorm([3, 5], eps=1e-06, no affine)");
    cx_tensor *z = cx_module_forward(ln, cx_randn(CX_SHAPE(2, 3, 5), 0, 1));
    double s = 0;
    for (int i = 0; i < 15; i++) s += CX_F(z)[i];
    CHECK_NEAR(s, 0.0, 1e-5);
    cx_module_free(ln);
}

static void batchnorm_save_load_roundtrip(void) {
    /* the state (params + buffers, I64 0-d included) saves and loads by name */
    cx_module *a = cx_batchnorm2d_new(3), *b = cx_batchnorm2d_new(3);
    cx_set_training(true);
    cx_module_forward(a, cx_randn(CX_SHAPE(2, 3, 4, 5), 1.0f, 2.0f));
    cx_params pa, pb;
    cx_params_init(&pa);
    cx_params_init(&pb);
    cx_module_state(a, &pa);
    cx_module_state(b, &pb);
    char path[96];
    snprintf(path, sizeof path, "/tmp/cortex_test_norm_state_%ld.safetensors", (long)getpid());
    CHECK(cx_params_save(path, &pa) == CX_OK);
    CHECK_MSG(cx_params_load(path, &pb, true) == CX_OK, "%s", cx_last_error());
    cxt_allclose(CX_F(cx_batchnorm_running_var(b)), CX_F(cx_batchnorm_running_var(a)), 3, 0, 0, "running_var");
    CHECK(CX_I64P(cx_batchnorm_num_batches_tracked(b))[0] == 1);
    remove(path);
    cx_params_free(&pa);
    cx_params_free(&pb);
    cx_module_free(a);
    cx_module_free(b);
}

/* ------------------------------------------------------------ errors */
static void norm_errors(void) {
    cx_tensor *x = cx_zeros(CX_SHAPE(4, 3, 5));
    cx_tensor *v3 = cx_ones(CX_SHAPE(3)), *v4 = cx_ones(CX_SHAPE(4));
    EXPECT_FATAL(cx_batch_norm(cx_zeros(CX_SHAPE(5)), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), "batch_norm", "[5]");
    EXPECT_FATAL(cx_batch_norm(x, NULL, NULL, v4, NULL, true, 0.1f, 1e-5f), "batch_norm", "weight", "[4]", "[3]",
                 "[4, 3, 5]");
    EXPECT_FATAL(cx_batch_norm(x, v4, v3, NULL, NULL, true, 0.1f, 1e-5f), "batch_norm", "running_mean", "[4]");
    EXPECT_FATAL(cx_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f), "batch_norm", "eval", "running");
    EXPECT_FATAL(cx_batch_norm(cx_zeros(CX_SHAPE(1, 3)), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f), "batch_norm",
                 "more than 1 value", "[1, 3]");
    EXPECT_FATAL(cx_layer_norm(x, 4, NULL, NULL, 1e-5f), "layer_norm", "[4, 3, 5]");
    EXPECT_FATAL(cx_layer_norm(x, 2, v3, NULL, 1e-5f), "layer_norm", "weight", "[3]", "[3, 5]");
    cx_module *bn = cx_batchnorm2d_new(3), *bn1 = cx_batchnorm1d_new(3), *ln = cx_layernorm_new(CX_SHAPE(4));
    EXPECT_FATAL(cx_module_forward(bn, x), "BatchNorm2d", "4-D", "[4, 3, 5]");
    EXPECT_FATAL(cx_module_forward(bn1, cx_zeros(CX_SHAPE(2, 3, 4, 5))), "BatchNorm1d", "[2, 3, 4, 5]");
    EXPECT_FATAL(cx_module_forward(bn1, cx_zeros(CX_SHAPE(2, 5))), "BatchNorm1d", "[2, 5]", "channels");
    EXPECT_FATAL(cx_module_forward(ln, x), "LayerNorm", "[4, 3, 5]", "[4]");
    EXPECT_FATAL(cx_batchnorm_new_ex(3, 4, 1e-5f, 0.1f, true), "BatchNorm", "spatial_dims");
    EXPECT_FATAL(cx_batchnorm_weight(ln), "BatchNorm", "LayerNorm");
    cx_module_free(bn);
    cx_module_free(bn1);
    cx_module_free(ln);
}

/* Layer-norm module accessors: weight ones, bias zeros, NULL without affine. */
static void layernorm_accessors(void) {
    cx_module *ln = cx_layernorm_new(CX_SHAPE(3, 4));
    cx_tensor *w = cx_layernorm_weight(ln), *b = cx_layernorm_bias(ln);
    CHECK(w && b && w->numel == 12 && b->numel == 12);
    if (w && b)
        for (int i = 0; i < 12; i++) CHECK(CX_F(w)[i] == 1.0f && CX_F(b)[i] == 0.0f);
    cx_module_free(ln);
    cx_module *ln2 = cx_layernorm_new_ex(CX_SHAPE(5), 1e-5f, false);
    CHECK(cx_layernorm_weight(ln2) == NULL && cx_layernorm_bias(ln2) == NULL);
    cx_module_free(ln2);
}


/* ---------------------------------------------------------------- channels last */
static cx_tensor *floats_copy(const cx_tensor *t, const float *src) {
    cx_tensor *c = cx_zeros(t->shape, t->ndim);
    memcpy(CX_F(c), src, (size_t)t->numel * sizeof(float));
    return c;
}

/* cx_batch_norm_nhwc against the channels-first ops on permuted tensors:
 * outputs, every gradient and the running statistics, training and eval,
 * plain, with relu and with relu and a residual. */
static void batch_norm_nhwc_matches_channels_first(void) {
    static const int TO_NCHW[4] = {0, 3, 1, 2}, TO_NHWC[4] = {0, 2, 3, 1};
    cx_seed(21);
    for (int variant = 0; variant < 3; variant++) {
        for (int training = 1; training >= 0; training--) {
            const bool relu = variant > 0, res = variant == 2;
            const int C = 16 + 3 * variant; /* 16, 19, 22: whole and partial vectors */
            cx_tensor *x = leaf((int[]){3, 5, 7, C}, 4, 2.5f, 1.5f);
            cx_tensor *r = res ? leaf((int[]){3, 5, 7, C}, 4, 0.0f, 1.0f) : NULL;
            cx_tensor *w = leaf((int[]){C}, 1, 1.0f, 0.3f), *b = leaf((int[]){C}, 1, 0.0f, 0.3f);
            cx_tensor *rm[2], *rv[2];
            for (int k = 0; k < 2; k++) {
                rm[k] = cx_full((int[]){C}, 1, 0.2f);
                rv[k] = cx_full((int[]){C}, 1, 1.5f);
            }
            cx_tensor *R = cx_randn(x->shape, 4, 0.0f, 1.0f);
            cx_tensor *y = cx_batch_norm_nhwc(x, r, relu, rm[0], rv[0], w, b, training, 0.1f, 1e-5f);
            cx_backward(cx_sum(cx_mul(y, R)));
            cx_tensor *g[4] = {floats_copy(x, x->grad), floats_copy(w, w->grad), floats_copy(b, b->grad),
                               r ? floats_copy(r, r->grad) : NULL};
            cx_zero_grad(x), cx_zero_grad(w), cx_zero_grad(b);
            if (r) cx_zero_grad(r);
            cx_tensor *xc = cx_permute(x, TO_NCHW), *rc = r ? cx_permute(r, TO_NCHW) : NULL;
            cx_tensor *yc = relu ? cx_batch_norm_relu(xc, rc, rm[1], rv[1], w, b, training, 0.1f, 1e-5f)
                                 : cx_batch_norm(xc, rm[1], rv[1], w, b, training, 0.1f, 1e-5f);
            cx_tensor *yr = cx_permute(yc, TO_NHWC);
            cx_backward(cx_sum(cx_mul(yr, R)));
            char what[96];
            snprintf(what, sizeof what, "variant %d training %d: y", variant, training);
            cxt_allclose(CX_F(y), CX_F(yr), (long)y->numel, 1e-4, 1e-4, what);
            snprintf(what, sizeof what, "variant %d training %d: dx", variant, training);
            cxt_allclose(CX_F(g[0]), x->grad, (long)x->numel, 1e-3, 1e-4, what);
            snprintf(what, sizeof what, "variant %d training %d: dw", variant, training);
            cxt_allclose(CX_F(g[1]), w->grad, C, 1e-3, 1e-4, what);
            snprintf(what, sizeof what, "variant %d training %d: db", variant, training);
            cxt_allclose(CX_F(g[2]), b->grad, C, 1e-3, 1e-4, what);
            if (r) cxt_allclose(CX_F(g[3]), r->grad, (long)r->numel, 1e-5, 1e-6, "residual gradient");
            cxt_allclose(CX_F(rm[0]), CX_F(rm[1]), C, 1e-5, 1e-6, "running_mean");
            cxt_allclose(CX_F(rv[0]), CX_F(rv[1]), C, 1e-5, 1e-6, "running_var");
            cx_step_reset();
        }
    }
}

/* The fused channels-last op is the three ops bit for bit, and the rows'
 * fixed ranges give the same bits at 1 and 2 threads. */
static void batch_norm_nhwc_fused_and_threads(void) {
    float *keep[2][3] = {{NULL}};
    for (int pass = 0; pass < 2; pass++) {
        cx_set_threads(pass + 1);
        cx_seed(8);
        const int shp[4] = {8, 20, 20, 32}; /* enough values for the parallel passes */
        cx_tensor *x = leaf(shp, 4, 1.0f, 2.0f), *r = leaf(shp, 4, 0.0f, 1.0f);
        cx_tensor *w = leaf((int[]){32}, 1, 1.0f, 0.3f), *b = leaf((int[]){32}, 1, 0.0f, 0.3f);
        cx_tensor *R = cx_randn(shp, 4, 0.0f, 1.0f);
        cx_tensor *y = cx_batch_norm_nhwc(x, r, true, NULL, NULL, w, b, true, 0.1f, 1e-5f);
        cx_backward(cx_sum(cx_mul(y, R)));
        cx_tensor *gx = floats_copy(x, x->grad), *gr = floats_copy(r, r->grad), *gw = floats_copy(w, w->grad);
        cx_zero_grad(x), cx_zero_grad(r), cx_zero_grad(w), cx_zero_grad(b);
        cx_tensor *y3 = cx_relu(cx_add(cx_batch_norm_nhwc(x, NULL, false, NULL, NULL, w, b, true, 0.1f, 1e-5f), r));
        cx_backward(cx_sum(cx_mul(y3, R)));
        CHECK(!memcmp(CX_F(y), CX_F(y3), (size_t)y->numel * sizeof(float)));
        CHECK(!memcmp(CX_F(gx), x->grad, (size_t)x->numel * sizeof(float)));
        /* equal values; a sign of zero may differ: the first run stores g * 0 into a
         * fresh buffer, the second adds it to the zeroed one */
        long gdiff = 0;
        for (long i = 0; i < (long)r->numel; i++) gdiff += CX_F(gr)[i] != r->grad[i];
        CHECK_MSG(gdiff == 0, "%ld residual gradients differ", gdiff);
        CHECK(!memcmp(CX_F(gw), w->grad, 32 * sizeof(float)));
        const float *src[3] = {CX_F(y), CX_F(gx), CX_F(gw)};
        const size_t nb[3] = {(size_t)y->numel * sizeof(float), (size_t)x->numel * sizeof(float), 32 * sizeof(float)};
        for (int k = 0; k < 3; k++) {
            keep[pass][k] = malloc(nb[k]);
            memcpy(keep[pass][k], src[k], nb[k]);
            if (pass) CHECK_MSG(!memcmp(keep[0][k], keep[1][k], nb[k]), "result %d differs between 1 and 2 threads", k);
        }
        cx_step_reset();
    }
    cx_set_threads(1);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < 3; k++) free(keep[p][k]);
}

/* The row kernels of the channels-last batch norm (vector code when C is a
 * multiple of the vector width) against the formulas written out here, one
 * element at a time: the same bits, for 16, 32, 48 and 64 channels and for
 * 12 (the scalar loop), with NaN, infinities and signed zeros among the
 * inputs, every relu / residual / mask variant, storing and accumulating;
 * the backward's per-channel sums too. */
static bool same_bits(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }
static float bn_ref_affine(float x, float m, float a, float b) { return (x - m) * a + b; }

static void batch_norm_row_kernels_exact(void) {
    const int Cs[] = {12, 16, 32, 48, 64};
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
    for (size_t ci = 0; ci < sizeof Cs / sizeof Cs[0]; ci++) {
        const int C = Cs[ci], R = 7;
        const size_t n = (size_t)R * C;
        float *x = malloc(n * 4), *g = malloc(n * 4), *r = malloc(n * 4), *y = malloc(n * 4), *mg = malloc(n * 4);
        float *out = malloc(n * 4), *ref = malloc(n * 4);
        float pm[64], pa[64], pb[64], fa[64], fb[64], fk[64];
        uint32_t st = 12345u + (uint32_t)C;
        for (size_t i = 0; i < n; i++) {
            float v[5];
            for (int k = 0; k < 5; k++) {
                st = st * 1664525u + 1013904223u;
                v[k] = (float)((int)(st >> 9) % 2001 - 1000) / 300.0f;
            }
            x[i] = i % 37 == 5 ? special[i % 5] : v[0];
            g[i] = i % 41 == 7 ? special[(i / 41) % 5] : v[1];
            r[i] = v[2];
            y[i] = i % 29 == 3 ? -0.0f : v[3];
            mg[i] = v[4];
        }
        for (int c = 0; c < C; c++) {
            pm[c] = 0.1f * (float)(c % 7) - 0.3f;
            pa[c] = 0.5f + 0.07f * (float)c;
            pb[c] = c % 3 == 0 ? -0.25f : 0.125f * (float)(c % 5);
            fa[c] = 0.9f - 0.01f * (float)c;
            fb[c] = -0.02f * (float)(c % 9);
            fk[c] = 0.003f * (float)(c % 4) - 0.004f;
            if (c % 4 == 1) { /* (x - m) a + b = -0 where x == m: the relu must give +0 */
                pa[c] = -0.5f;
                pb[c] = -0.0f;
            }
        }
        for (size_t i = 0; i < n; i += 13) x[i] = pm[i % (size_t)C];
        int bad = 0;
        /* apply: plain, relu, relu + residual */
        for (int v = 0; v < 3; v++) {
            const bool relu = v > 0;
            const float *rd = v == 2 ? r : NULL;
            cx_bn_rows_apply(x, rd, relu, out, 0, R, C, pm, pa, pb);
            for (size_t i = 0; i < n; i++) {
                const int c = (int)(i % (size_t)C);
                float t = bn_ref_affine(x[i], pm[c], pa[c], pb[c]);
                if (!relu) t = (x[i] - pm[c]) * pa[c] + pb[c];
                else if (rd) {
                    t = (x[i] - pm[c]) * pa[c] + pb[c] + r[i];
                    t = t > 0 ? t : 0.0f;
                } else
                    t = t > 0 ? t : 0.0f;
                bad += !same_bits(out[i], t);
            }
        }
        /* dx: no relu, relu with the stored mask, from x (alpha, beta), from y; store and accumulate */
        for (int v = 0; v < 4; v++)
            for (int fresh = 0; fresh < 2; fresh++) {
                const bool relu = v > 0;
                for (size_t i = 0; i < n; i++) out[i] = ref[i] = 0.25f * (float)(i % 5);
                cx_bn_rows_dx(x, g, v == 3 ? y : NULL, v == 1 ? mg : NULL, v == 2 ? pa : NULL, v == 2 ? pb : NULL,
                              relu, out, fresh, 0, R, C, pm, fa, fb, fk);
                for (size_t i = 0; i < n; i++) {
                    const int c = (int)(i % (size_t)C);
                    float gm = g[i];
                    if (v == 1) gm = mg[i];
                    else if (v == 2) gm = g[i] * (bn_ref_affine(x[i], pm[c], pa[c], pb[c]) > 0 ? 1.0f : 0.0f);
                    else if (v == 3) gm = g[i] * (y[i] > 0 ? 1.0f : 0.0f);
                    const float d = fa[c] * gm + fb[c] * (x[i] - pm[c]) + fk[c];
                    ref[i] = fresh ? d : ref[i] + d;
                    bad += !same_bits(out[i], ref[i]);
                }
            }
        /* the backward's sums (7 rows: one row per slot, so each channel's
         * sums are its rows' terms added in order in double) and the masked
         * gradient stored into or added to the residual's */
        for (int special_rows = 0; special_rows < 2; special_rows++) {
            if (special_rows == 1) /* finite sums too: no NaN or infinity in x and g */
                for (size_t i = 0; i < n; i++) {
                    if (!isfinite(x[i])) x[i] = 0.5f;
                    if (!isfinite(g[i])) g[i] = -0.75f;
                }
            for (int v = 0; v < 3; v++)
                for (int gv = 0; gv < 3; gv++) {
                    const bool relu = v > 0;
                    float *gr = gv ? out : NULL;
                    for (size_t i = 0; i < n; i++) out[i] = ref[i] = 0.25f * (float)(i % 5);
                    double sg[64], sgx[64];
                    cx_bn_rows_gsums(x, g, v == 2 ? y : NULL, v == 1 ? pa : NULL, v == 1 ? pb : NULL, relu, gr, gv == 1,
                                     R, C, pm, sg, sgx);
                    for (int c = 0; c < C; c++) {
                        double a = 0, b = 0;
                        for (int q = 0; q < R; q++) {
                            const size_t i = (size_t)q * C + c;
                            float gm = g[i];
                            if (v == 1) gm = g[i] * (bn_ref_affine(x[i], pm[c], pa[c], pb[c]) > 0 ? 1.0f : 0.0f);
                            else if (v == 2) gm = g[i] * (y[i] > 0 ? 1.0f : 0.0f);
                            if (relu && gv == 1) ref[i] = gm;
                            else if (relu && gv == 2) ref[i] += gm;
                            a += (double)gm;
                            b += (double)(gm * (x[i] - pm[c]));
                        }
                        bad += !((isnan(a) && isnan(sg[c])) || a == sg[c]) + !((isnan(b) && isnan(sgx[c])) || b == sgx[c]);
                    }
                    for (size_t i = 0; i < n; i++) bad += !same_bits(out[i], ref[i]);
                    cx_step_reset();
                }
        }
        CHECK(bad == 0);
        free(x), free(g), free(r), free(y), free(mg), free(out), free(ref);
    }
}

int main(void) {
    const char *path = getenv("CX_NORM_FIXTURE");
    if (!path || !*path) path = "tests/fixtures/pool_norm/norm.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) {
#define RUN_CASE(name, expr) RUN(case_##name);
        CASES(RUN_CASE)
        RUN(fixture_cases_all_covered);
        RUN(batchnorm2d_module_two_steps_then_eval);
    }
    RUN(gradcheck_batch_norm);
    RUN(gradcheck_layer_norm);
    RUN(batch_norm_training_stats);
    RUN(batch_norm_large_parallel);
    RUN(batch_norm_matches_double_reference);
    RUN(gradcheck_batch_norm_relu);
    RUN(batch_norm_relu_equals_the_three_ops);
    RUN(batch_norm_nhwc_matches_channels_first);
    RUN(batch_norm_nhwc_fused_and_threads);
    RUN(batch_norm_row_kernels_exact);
    RUN(module_names_and_state);
    RUN(batchnorm_save_load_roundtrip);
    RUN(norm_errors);
    RUN(layernorm_accessors);
    cx_st_free(FX);
    TEST_END();
}
