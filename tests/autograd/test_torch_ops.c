/* Forward and backward of Cortex's ops against PyTorch 1.13.
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
 * run cx_backward_with(out, C.gout) and compare every gradient.
 * The file missing is a failure, not a skip. Dropout (random) is checked here
 * in pure C: identity in eval mode, inverted scaling 1/(1-p) in train mode. */
#include "test.h"
#include <stdlib.h>

#define RTOL 1e-4
#define ATOL 1e-5
#define MAX_IN 8

typedef cx_tensor *(*op_fn)(cx_tensor **x, const cx_tensor **ix);

static cx_st_file *FX;
static int n_cases_run;

/* ------------------------------------------------------------ case table
 * X(name, expression of x[k] (float inputs) and ix[k] (index inputs)) */
#define CX_RED(X, base, EXPR_R) \
    X(base##_mean, EXPR_R(CX_REDUCE_MEAN)) X(base##_sum, EXPR_R(CX_REDUCE_SUM)) \
    X(base##_none, EXPR_R(CX_REDUCE_NONE))

#define CE(r) cx_cross_entropy(x[0], ix[1], r)
#define NLL(r) cx_nll_loss(cx_log_softmax(x[0], 1), ix[1], r)
#define MSE(r) cx_mse_loss(x[0], x[1], r)
#define BCE(r) cx_bce_with_logits(x[0], x[1], r)
#define MM1(r) cx_multi_margin_loss(x[0], ix[1], 1.0f, r)
#define MM05(r) cx_multi_margin_loss(x[0], ix[1], 0.5f, r)
#define SL1_1(r) cx_smooth_l1_loss(x[0], x[1], 1.0f, r)
#define SL1_05(r) cx_smooth_l1_loss(x[0], x[1], 0.5f, r)
#define HINGE1(r) cx_hinge_loss(x[0], x[1], 1.0f, r)
#define PERC(r) cx_perceptron_loss(x[0], x[1], r)
#define LOGI(r) cx_logistic_loss(x[0], x[1], r)

#define CASES(X) \
    /* elementwise binary */ \
    X(add_same, cx_add(x[0], x[1])) X(add_bc, cx_add(x[0], x[1])) X(add_bc2, cx_add(x[0], x[1])) \
    X(sub_same, cx_sub(x[0], x[1])) X(sub_bc, cx_sub(x[0], x[1])) X(sub_bc2, cx_sub(x[0], x[1])) \
    X(mul_same, cx_mul(x[0], x[1])) X(mul_bc, cx_mul(x[0], x[1])) X(mul_bc2, cx_mul(x[0], x[1])) \
    X(div_same, cx_div(x[0], x[1])) X(div_bc, cx_div(x[0], x[1])) X(div_bc2, cx_div(x[0], x[1])) \
    X(maximum_same, cx_maximum(x[0], x[1])) X(maximum_bc, cx_maximum(x[0], x[1])) \
    X(add_scalar, cx_add_scalar(x[0], 0.75f)) X(mul_scalar, cx_mul_scalar(x[0], -1.5f)) \
    /* elementwise unary */ \
    X(neg, cx_neg(x[0])) X(exp, cx_exp(x[0])) X(log, cx_log(x[0])) X(sqrt, cx_sqrt(x[0])) \
    X(pow_2_5, cx_pow(x[0], 2.5f)) X(pow_3, cx_pow(x[0], 3.0f)) X(abs, cx_abs(x[0])) \
    X(clamp, cx_clamp(x[0], -0.5f, 0.7f)) X(sigmoid, cx_sigmoid(x[0])) X(tanh, cx_tanh(x[0])) \
    X(relu, cx_relu(x[0])) X(leaky_relu, cx_leaky_relu(x[0], 0.1f)) \
    X(elu_1, cx_elu(x[0], 1.0f)) X(elu_0_5, cx_elu(x[0], 0.5f)) X(gelu, cx_gelu(x[0])) \
    X(softplus_b1_t20, cx_softplus(x[0], 1.0f, 20.0f)) \
    X(softplus_b2_t5, cx_softplus(x[0], 2.0f, 5.0f)) \
    /* matrix */ \
    X(mm_2d, cx_matmul(x[0], x[1])) X(mm_batched, cx_matmul(x[0], x[1])) \
    X(mm_bshared, cx_matmul(x[0], x[1])) X(linear, cx_linear(x[0], x[1], x[2])) \
    X(linear_3d, cx_linear(x[0], x[1], x[2])) X(linear_nobias, cx_linear(x[0], x[1], NULL)) \
    /* reductions */ \
    X(sum, cx_sum(x[0])) X(mean, cx_mean(x[0])) \
    X(sum_ax1_keep, cx_sum_axis(x[0], 1, true)) X(sum_ax1, cx_sum_axis(x[0], 1, false)) \
    X(mean_ax0, cx_mean_axis(x[0], 0, false)) X(mean_axm1, cx_mean_axis(x[0], -1, false)) \
    X(max_ax1, cx_max_axis(x[0], 1, false)) X(max_axm1_keep, cx_max_axis(x[0], -1, true)) \
    X(softmax_axm1, cx_softmax(x[0], -1)) X(softmax_ax0, cx_softmax(x[0], 0)) \
    X(log_softmax_axm1, cx_log_softmax(x[0], -1)) X(log_softmax_ax0, cx_log_softmax(x[0], 0)) \
    /* shape */ \
    X(reshape, cx_reshape(x[0], CX_SHAPE(4, -1))) X(transpose01, cx_transpose(x[0], 0, 1)) \
    X(permute201, cx_permute(x[0], (const int[]){2, 0, 1})) X(slice, cx_slice(x[0], 1, 1, 5, 2)) \
    X(concat, cx_concat((cx_tensor *[]){x[0], x[1], x[2]}, 3, 1)) \
    X(stack_ax0, cx_stack((cx_tensor *[]){x[0], x[1], x[2]}, 3, 0)) \
    X(stack_ax2, cx_stack((cx_tensor *[]){x[0], x[1], x[2]}, 3, 2)) \
    X(index_select_ax0, cx_index_select(x[0], 0, ix[1])) \
    X(index_select_ax1, cx_index_select(x[0], 1, ix[1])) X(gather, cx_gather(x[0], 1, ix[1])) \
    /* losses */ \
    CX_RED(X, ce, CE) CX_RED(X, ce_ign, CE) CX_RED(X, nll, NLL) CX_RED(X, mse, MSE) \
    CX_RED(X, bce_logits, BCE) CX_RED(X, mmargin_m1, MM1) CX_RED(X, mmargin_m0_5, MM05) \
    CX_RED(X, sl1_b1, SL1_1) CX_RED(X, sl1_b0_5, SL1_05) CX_RED(X, hinge_m1, HINGE1) \
    X(hinge_m0_5_mean, cx_hinge_loss(x[0], x[1], 0.5f, CX_REDUCE_MEAN)) \
    CX_RED(X, perceptron, PERC) CX_RED(X, logistic, LOGI) \
    /* extras */ \
    X(mul_self, cx_mul(x[0], x[0])) X(reuse, reuse_fn(x[0])) \
    X(chain_mlp, cx_cross_entropy(cx_linear(cx_tanh(cx_linear(x[0], x[1], x[2])), x[3], x[4]), \
                                  ix[5], CX_REDUCE_MEAN)) \
    X(slice_neg, cx_slice(x[0], -1, -4, -1, 1)) X(slice_clip, cx_slice(x[0], 1, 0, 100, 3)) \
    X(stack_axm1, cx_stack((cx_tensor *[]){x[0], x[1]}, 2, -1)) \
    X(transpose_neg, cx_transpose(x[0], -1, 0)) X(sum_ax_size1, cx_sum_axis(x[0], 1, false)) \
    X(pow_m1, cx_pow(x[0], -1.0f)) X(pow_0_5, cx_pow(x[0], 0.5f)) \
    X(sigmoid_big, cx_sigmoid(x[0])) X(tanh_big, cx_tanh(x[0])) \
    X(softplus_big, cx_softplus(x[0], 1.0f, 20.0f)) X(elu_big, cx_elu(x[0], 1.0f)) \
    X(gelu_big, cx_gelu(x[0])) X(softmax_big, cx_softmax(x[0], -1)) \
    X(log_softmax_big, cx_log_softmax(x[0], 0)) \
    X(ce_big_mean, cx_cross_entropy(x[0], ix[1], CX_REDUCE_MEAN)) \
    X(bce_logits_big_mean, cx_bce_with_logits(x[0], x[1], CX_REDUCE_MEAN))

/* y = exp(x); y*y + y (one node feeding three uses) */
static cx_tensor *reuse_fn(cx_tensor *x) {
    cx_tensor *y = cx_exp(x);
    return cx_add(cx_mul(y, y), y);
}

#define DEF_OP(name, expr) \
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

static void check_case(const char *c, op_fn fn) {
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
    snprintf(what, sizeof what, "%s forward", c);
    cxt_allclose(CX_F(out), CX_F(want_out), (long)out->numel, RTOL, ATOL, what);

    bool any_grad = false;
    for (int k = 0; k < n_in; k++) any_grad |= want_grad[k] != NULL;
    if (any_grad) {
        CHECK_MSG(out->requires_grad, "case %s: output does not require grad", c);
        CHECK_MSG(gout->numel == out->numel, "case %s: gout has %lld elements, out %lld", c,
                  (long long)gout->numel, (long long)out->numel);
        if (out->requires_grad && gout->numel == out->numel) {
            cx_backward_with(out, CX_F(gout));
            for (int k = 0; k < n_in; k++) {
                if (!want_grad[k]) continue;
                CHECK_MSG(x[k]->grad != NULL, "case %s: input %d got no gradient", c, k);
                CHECK_MSG(want_grad[k]->numel == x[k]->numel, "case %s: grad%d size mismatch", c, k);
                if (!x[k]->grad || want_grad[k]->numel != x[k]->numel) continue;
                snprintf(what, sizeof what, "%s grad of input %d", c, k);
                cxt_allclose(x[k]->grad, CX_F(want_grad[k]), (long)x[k]->numel, RTOL, ATOL, what);
            }
        }
    }
    cx_step_reset();
}

#define DEF_TEST(name, expr) static void case_##name(void) { check_case(#name, op_##name); }
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

/* ------------------------------------------------------------ dropout (pure C) */
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
#define RUN_CASE(name, expr) RUN(case_##name);
        CASES(RUN_CASE)
        RUN(fixture_cases_all_covered);
    }
    RUN(dropout_eval_is_identity);
    RUN(dropout_train_scaling);
    RUN(dropout_edge_p);
    cx_st_free(FX);
    TEST_END();
}
