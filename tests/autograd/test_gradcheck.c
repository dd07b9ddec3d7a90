/* Finite-difference gradient checks (cx_gradcheck, central differences) for
 * every differentiable op and loss of core.h.
 *
 * For an op with a non-scalar result the scalar checked is sum(out * R) with a
 * fixed random R of the result's shape (made once, before the check, so every
 * evaluation sees the same R). Inputs are kept well away from kinks (relu/abs
 * at 0, clamp bounds, hinge margins, ties of max/maximum/maxout) so that the
 * central difference with step eps never straddles one. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define EPS 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f

/* ---------------------------------------------------------------- helpers */
typedef cx_tensor *(*op_fn)(cx_tensor **in, int n, void *user);

typedef struct {
    op_fn op;
    void *user;
    cx_tensor *R; /* weights of the scalar; NULL: the op's result is already scalar */
} wsum_ctx;

static cx_tensor *wsum_fn(cx_tensor **in, int n, void *user) {
    wsum_ctx *c = user;
    cx_tensor *out = c->op(in, n, c->user);
    if (!c->R) return out;
    return cx_sum(cx_mul(out, c->R));
}

/* Gradient-check op(in) through sum(op(in) * R); R ~ N(0,1) of the op's shape. */
static void check_op_eps(op_fn op, cx_tensor **in, int n, void *user, float eps, float atol,
                         float rtol, const char *what) {
    cx_no_grad_begin();
    cx_tensor *probe = op(in, n, user);
    cx_no_grad_end();
    CHECK_MSG(probe != NULL, "%s: op returned NULL", what);
    if (!probe) return;
    wsum_ctx c = {op, user, cx_randn(probe->shape, probe->ndim, 0.0f, 1.0f)};
    /* make sure the analytic side actually records a graph */
    cx_tensor *rec = wsum_fn(in, n, &c);
    CHECK_MSG(rec->requires_grad && rec->numel == 1, "%s: scalar is not differentiable", what);
    double worst = cx_gradcheck(wsum_fn, in, n, &c, eps, atol, rtol, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
}

static void check_op(op_fn op, cx_tensor **in, int n, void *user, const char *what) {
    check_op_eps(op, in, n, user, EPS, ATOL, RTOL, what);
}

/* Leaf (arena) tensor that requires grad, uniform in [lo, hi). */
static cx_tensor *leaf_u(const int *shape, int ndim, float lo, float hi) {
    cx_tensor *t = cx_rand_uniform_t(shape, ndim, lo, hi);
    t->requires_grad = true;
    return t;
}

/* Leaf with values pushed at least `margin` away from `point`. */
static cx_tensor *leaf_away(const int *shape, int ndim, float lo, float hi, float point, float margin) {
    cx_tensor *t = leaf_u(shape, ndim, lo, hi);
    float *d = CX_F(t);
    for (int64_t i = 0; i < t->numel; i++)
        if (fabsf(d[i] - point) < margin) d[i] = d[i] >= point ? point + margin : point - margin;
    return t;
}

/* Leaf holding distinct values spacing*(k - n/2) in random order (no ties). */
static cx_tensor *leaf_distinct(const int *shape, int ndim, float spacing) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    float *d = CX_F(t);
    int64_t n = t->numel;
    for (int64_t i = 0; i < n; i++) d[i] = spacing * (float)(i - n / 2);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = cx_rand_below((uint32_t)(i + 1));
        float tmp = d[i]; d[i] = d[j]; d[j] = tmp;
    }
    t->requires_grad = true;
    return t;
}

static cx_tensor *targets_i32(const int32_t *v, int n) { return cx_from_i32(v, &n, 1); }

static cx_tensor *targets_i64(const int64_t *v, int n) {
    cx_tensor *t = cx_empty(CX_I64, &n, 1);
    memcpy(t->data, v, (size_t)n * sizeof(int64_t));
    return t;
}

static const cx_reduction REDS[3] = {CX_REDUCE_MEAN, CX_REDUCE_SUM, CX_REDUCE_NONE};
static const char *const RED_NAMES[3] = {"mean", "sum", "none"};

/* ---------------------------------------------------------------- sanity of the checker */
static cx_tensor *bad_grad_fn(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    /* x * detach(x): analytic gradient x, true derivative 2x */
    return cx_sum(cx_mul(in[0], cx_detach(in[0])));
}

static void test_gradcheck_detects_wrong_gradient(void) {
    cx_tensor *x = leaf_away(CX_SHAPE(5), 0.5f, 2.0f, 0.0f, 0.5f);
    cx_tensor *in[1] = {x};
    double worst = cx_gradcheck(bad_grad_fn, in, 1, NULL, EPS, ATOL, RTOL, false);
    CHECK_MSG(worst > 1.0, "gradcheck accepted a wrong gradient (ratio %g)", worst);
    CHECK(x->grad == NULL); /* gradcheck restores the caller's grads */
}

/* ---------------------------------------------------------------- binary */
typedef struct { int kind; } bin_u;
static cx_tensor *bin_op(cx_tensor **in, int n, void *user) {
    (void)n;
    switch (((bin_u *)user)->kind) {
    case 0: return cx_add(in[0], in[1]);
    case 1: return cx_sub(in[0], in[1]);
    case 2: return cx_mul(in[0], in[1]);
    case 3: return cx_div(in[0], in[1]);
    default: return cx_maximum(in[0], in[1]);
    }
}

/* Shapes: same, [4,1,3] op [5,1], [3] op [2,3], [2,3] op [1] (scalar-like). */
static void bin_cases(int kind, const char *name) {
    static const int sa[4][3] = {{2, 3, 0}, {4, 1, 3}, {3, 0, 0}, {2, 3, 0}};
    static const int na[4] = {2, 3, 1, 2};
    static const int sb[4][3] = {{2, 3, 0}, {5, 1, 0}, {2, 3, 0}, {1, 0, 0}};
    static const int nb[4] = {2, 2, 2, 1};
    bin_u u = {kind};
    for (int c = 0; c < 4; c++) {
        cx_tensor *a, *b;
        if (kind == 4) {
            /* maximum: a on a grid of 0.3, b offset by 0.15 -> |a-b| >= 0.15 */
            a = cx_empty(CX_F32, sa[c], na[c]);
            b = cx_empty(CX_F32, sb[c], nb[c]);
            for (int64_t i = 0; i < a->numel; i++) CX_F(a)[i] = 0.3f * (float)((int)cx_rand_below(13) - 6);
            for (int64_t i = 0; i < b->numel; i++) CX_F(b)[i] = 0.3f * (float)((int)cx_rand_below(13) - 6) + 0.15f;
            a->requires_grad = b->requires_grad = true;
        } else {
            a = leaf_u(sa[c], na[c], -2.0f, 2.0f);
            b = kind == 3 ? leaf_away(sb[c], nb[c], -2.0f, 2.0f, 0.0f, 0.5f) : leaf_u(sb[c], nb[c], -2.0f, 2.0f);
        }
        char what[64];
        snprintf(what, sizeof what, "%s case %d", name, c);
        cx_tensor *in[2] = {a, b};
        check_op(bin_op, in, 2, &u, what);
        /* and with only one side requiring grad */
        b->requires_grad = false;
        check_op(bin_op, in, 2, &u, what);
        b->requires_grad = true;
        a->requires_grad = false;
        check_op(bin_op, in, 2, &u, what);
    }
}

static void test_add(void) { bin_cases(0, "add"); }
static void test_sub(void) { bin_cases(1, "sub"); }
static void test_mul(void) { bin_cases(2, "mul"); }
static void test_div(void) { bin_cases(3, "div"); }
static void test_maximum(void) { bin_cases(4, "maximum"); }

static cx_tensor *self_op(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    /* the same tensor on both sides of binary ops: x*x + x/x... + maximum(x, x) (tie split) */
    return cx_add(cx_mul(in[0], in[0]), cx_maximum(in[0], in[0]));
}
static void test_binary_same_input(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(3, 4), -2.0f, 2.0f);
    check_op(self_op, &x, 1, NULL, "x*x + maximum(x,x)");
}

/* ---------------------------------------------------------------- scalar / unary */
typedef struct { int kind; float p0, p1; } un_u;
static cx_tensor *un_op(cx_tensor **in, int n, void *user) {
    (void)n;
    un_u *u = user;
    cx_tensor *x = in[0];
    switch (u->kind) {
    case 0: return cx_add_scalar(x, u->p0);
    case 1: return cx_mul_scalar(x, u->p0);
    case 2: return cx_neg(x);
    case 3: return cx_exp(x);
    case 4: return cx_log(x);
    case 5: return cx_sqrt(x);
    case 6: return cx_pow(x, u->p0);
    case 7: return cx_abs(x);
    case 8: return cx_clamp(x, u->p0, u->p1);
    case 9: return cx_sigmoid(x);
    case 10: return cx_tanh(x);
    case 11: return cx_relu(x);
    case 12: return cx_leaky_relu(x, u->p0);
    case 13: return cx_elu(x, u->p0);
    case 14: return cx_gelu(x);
    case 15: return cx_softplus(x, u->p0, u->p1);
    case 16: return cx_maxout(x, (int)u->p0);
    default: cx_seed(1234); return cx_dropout(x, u->p0);
    }
}

static void un_check(int kind, float p0, float p1, cx_tensor *x, const char *what) {
    un_u u = {kind, p0, p1};
    check_op(un_op, &x, 1, &u, what);
}

static void test_add_scalar(void) { un_check(0, 1.5f, 0, leaf_u(CX_SHAPE(3, 4), -2, 2), "add_scalar"); }
static void test_mul_scalar(void) {
    un_check(1, -2.5f, 0, leaf_u(CX_SHAPE(3, 4), -2, 2), "mul_scalar");
    un_check(1, 0.0f, 0, leaf_u(CX_SHAPE(5), -2, 2), "mul_scalar 0");
}
static void test_neg(void) { un_check(2, 0, 0, leaf_u(CX_SHAPE(2, 3, 2), -2, 2), "neg"); }
static void test_exp(void) { un_check(3, 0, 0, leaf_u(CX_SHAPE(3, 4), -2, 2), "exp"); }
static void test_log(void) { un_check(4, 0, 0, leaf_u(CX_SHAPE(3, 4), 0.5f, 3.0f), "log"); }
static void test_sqrt(void) { un_check(5, 0, 0, leaf_u(CX_SHAPE(3, 4), 0.5f, 3.0f), "sqrt"); }
static void test_pow(void) {
    un_check(6, 3.0f, 0, leaf_u(CX_SHAPE(3, 4), -1.5f, 1.5f), "pow 3");
    un_check(6, 2.5f, 0, leaf_u(CX_SHAPE(3, 4), 0.5f, 2.0f), "pow 2.5");
    un_check(6, -1.0f, 0, leaf_u(CX_SHAPE(3, 4), 0.5f, 2.0f), "pow -1");
    un_check(6, 0.5f, 0, leaf_u(CX_SHAPE(3, 4), 0.5f, 2.0f), "pow 0.5");
    un_check(6, 0.0f, 0, leaf_u(CX_SHAPE(4), 0.5f, 2.0f), "pow 0");
}
static void test_abs(void) { un_check(7, 0, 0, leaf_away(CX_SHAPE(3, 4), -2, 2, 0.0f, 0.1f), "abs"); }
static void test_clamp(void) {
    cx_tensor *x = leaf_away(CX_SHAPE(4, 5), -1.5f, 1.5f, -0.5f, 0.1f);
    float *d = CX_F(x);
    for (int64_t i = 0; i < x->numel; i++)
        if (fabsf(d[i] - 0.7f) < 0.1f) d[i] = d[i] >= 0.7f ? 0.8f : 0.6f;
    un_check(8, -0.5f, 0.7f, x, "clamp");
}
static void test_sigmoid(void) { un_check(9, 0, 0, leaf_u(CX_SHAPE(3, 4), -4, 4), "sigmoid"); }
static void test_tanh(void) { un_check(10, 0, 0, leaf_u(CX_SHAPE(3, 4), -2, 2), "tanh"); }
static void test_relu(void) { un_check(11, 0, 0, leaf_away(CX_SHAPE(3, 4), -2, 2, 0.0f, 0.1f), "relu"); }
static void test_leaky_relu(void) {
    un_check(12, 0.1f, 0, leaf_away(CX_SHAPE(3, 4), -2, 2, 0.0f, 0.1f), "leaky_relu 0.1");
    un_check(12, 0.01f, 0, leaf_away(CX_SHAPE(3, 4), -2, 2, 0.0f, 0.1f), "leaky_relu 0.01");
}
static void test_elu(void) {
    un_check(13, 1.0f, 0, leaf_away(CX_SHAPE(3, 4), -3, 2, 0.0f, 0.1f), "elu 1");
    un_check(13, 0.5f, 0, leaf_away(CX_SHAPE(3, 4), -3, 2, 0.0f, 0.1f), "elu 0.5");
}
static void test_gelu(void) { un_check(14, 0, 0, leaf_u(CX_SHAPE(3, 4), -3, 3), "gelu"); }
static void test_softplus(void) {
    /* PyTorch defaults (1, 20): below the threshold, and above it (linear branch) */
    un_check(15, 1.0f, 20.0f, leaf_u(CX_SHAPE(3, 4), -3, 3), "softplus below threshold");
    un_check(15, 1.0f, 20.0f, leaf_u(CX_SHAPE(2, 3), 21, 24), "softplus above threshold");
    /* beta 2, threshold 1: both sides in one tensor (the switch is at x = 0.5) */
    un_check(15, 2.0f, 1.0f, leaf_away(CX_SHAPE(3, 4), -2, 2, 0.5f, 0.1f), "softplus beta 2 mixed");
}
static void test_maxout(void) {
    un_check(16, 2, 0, leaf_distinct(CX_SHAPE(3, 6), 0.1f), "maxout k=2");
    un_check(16, 3, 0, leaf_distinct(CX_SHAPE(2, 2, 6), 0.1f), "maxout k=3 3-d");
    un_check(16, 1, 0, leaf_u(CX_SHAPE(2, 3), -1, 1), "maxout k=1");
}
static void test_dropout(void) {
    bool tr = cx_is_training();
    cx_set_training(true);
    un_check(17, 0.3f, 0, leaf_u(CX_SHAPE(4, 5), -2, 2), "dropout 0.3");
    un_check(17, 0.5f, 0, leaf_u(CX_SHAPE(50), -2, 2), "dropout 0.5");
    /* p = 0 and eval mode are identities */
    un_check(17, 0.0f, 0, leaf_u(CX_SHAPE(6), -2, 2), "dropout 0");
    cx_set_training(false);
    un_check(17, 0.5f, 0, leaf_u(CX_SHAPE(6), -2, 2), "dropout eval");
    cx_set_training(tr);
}

/* ---------------------------------------------------------------- matrix */
static cx_tensor *matmul_op(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    return cx_matmul(in[0], in[1]);
}
static void test_matmul(void) {
    cx_tensor *a = leaf_u(CX_SHAPE(3, 4), -1, 1), *b = leaf_u(CX_SHAPE(4, 5), -1, 1);
    cx_tensor *in[2] = {a, b};
    check_op(matmul_op, in, 2, NULL, "matmul 2-d");
    cx_tensor *a3 = leaf_u(CX_SHAPE(2, 3, 4), -1, 1), *b3 = leaf_u(CX_SHAPE(2, 4, 5), -1, 1);
    cx_tensor *in3[2] = {a3, b3};
    check_op(matmul_op, in3, 2, NULL, "matmul batched");
    cx_tensor *in32[2] = {a3, b};
    check_op(matmul_op, in32, 2, NULL, "matmul [B,M,K]x[K,N]");
    cx_tensor *v = leaf_u(CX_SHAPE(1, 7), -1, 1), *w = leaf_u(CX_SHAPE(7, 1), -1, 1);
    cx_tensor *inv[2] = {v, w};
    check_op(matmul_op, inv, 2, NULL, "matmul [1,7]x[7,1]");
}

static cx_tensor *linear_op(cx_tensor **in, int n, void *user) {
    (void)user;
    return cx_linear(in[0], in[1], n > 2 ? in[2] : NULL);
}
static void test_linear(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(3, 4), -1, 1), *w = leaf_u(CX_SHAPE(5, 4), -1, 1);
    cx_tensor *b = leaf_u(CX_SHAPE(5), -1, 1);
    cx_tensor *in[3] = {x, w, b};
    check_op(linear_op, in, 3, NULL, "linear with bias");
    check_op(linear_op, in, 2, NULL, "linear without bias");
    cx_tensor *x3 = leaf_u(CX_SHAPE(2, 3, 4), -1, 1);
    cx_tensor *in3[3] = {x3, w, b};
    check_op(linear_op, in3, 3, NULL, "linear 3-d input");
    check_op(linear_op, in3, 2, NULL, "linear 3-d input without bias");
    cx_tensor *x1 = leaf_u(CX_SHAPE(4), -1, 1);
    cx_tensor *in1[3] = {x1, w, b};
    check_op(linear_op, in1, 3, NULL, "linear 1-d input");
}

/* ---------------------------------------------------------------- reductions */
typedef struct { int kind, axis; bool keepdim; } red_u;
static cx_tensor *red_op(cx_tensor **in, int n, void *user) {
    (void)n;
    red_u *u = user;
    switch (u->kind) {
    case 0: return cx_sum(in[0]);
    case 1: return cx_mean(in[0]);
    case 2: return cx_sum_axis(in[0], u->axis, u->keepdim);
    case 3: return cx_mean_axis(in[0], u->axis, u->keepdim);
    case 4: return cx_max_axis(in[0], u->axis, u->keepdim);
    case 5: return cx_softmax(in[0], u->axis);
    default: return cx_log_softmax(in[0], u->axis);
    }
}

static void test_sum_mean(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(3, 4, 2), -2, 2);
    red_u s = {0, 0, false}, m = {1, 0, false};
    check_op(red_op, &x, 1, &s, "sum");
    check_op(red_op, &x, 1, &m, "mean");
    /* sum/mean are scalar already: check them directly too (no R) */
    double w1 = cx_gradcheck(red_op, &x, 1, &s, EPS, ATOL, RTOL, true);
    double w2 = cx_gradcheck(red_op, &x, 1, &m, EPS, ATOL, RTOL, true);
    CHECK(w1 <= 1.0);
    CHECK(w2 <= 1.0);
}

static void axis_cases(int kind, const char *name) {
    static const int axes[] = {0, 1, 2, -1, -3};
    for (int ai = 0; ai < 5; ai++)
        for (int kd = 0; kd < 2; kd++) {
            cx_tensor *x = kind == 4 ? leaf_distinct(CX_SHAPE(3, 4, 2), 0.1f) : leaf_u(CX_SHAPE(3, 4, 2), -2, 2);
            red_u u = {kind, axes[ai], kd != 0};
            char what[64];
            snprintf(what, sizeof what, "%s axis %d keepdim %d", name, axes[ai], kd);
            check_op(red_op, &x, 1, &u, what);
        }
}
static void test_sum_axis(void) { axis_cases(2, "sum_axis"); }
static void test_mean_axis(void) { axis_cases(3, "mean_axis"); }
static void test_max_axis(void) { axis_cases(4, "max_axis"); }

static void softmax_cases(int kind, const char *name) {
    static const int axes[] = {0, 1, 2, -1, -2};
    for (int ai = 0; ai < 5; ai++) {
        cx_tensor *x = leaf_u(CX_SHAPE(3, 4, 5), -3, 3);
        red_u u = {kind, axes[ai], false};
        char what[64];
        snprintf(what, sizeof what, "%s axis %d", name, axes[ai]);
        check_op(red_op, &x, 1, &u, what);
    }
    cx_tensor *x2 = leaf_u(CX_SHAPE(4, 6), -3, 3);
    red_u u = {kind, 1, false};
    check_op(red_op, &x2, 1, &u, name);
}
static void test_softmax(void) { softmax_cases(5, "softmax"); }
static void test_log_softmax(void) { softmax_cases(6, "log_softmax"); }

/* ---------------------------------------------------------------- shape */
typedef struct { int kind; int a, b, c, d; const cx_tensor *index; } sh_u;
static cx_tensor *shape_op(cx_tensor **in, int n, void *user) {
    sh_u *u = user;
    switch (u->kind) {
    case 0: return cx_reshape(in[0], (const int[]){u->a, u->b}, 2);
    case 1: return cx_flatten(in[0]);
    case 2: return cx_transpose(in[0], u->a, u->b);
    case 3: return cx_permute(in[0], (const int[]){u->a, u->b, u->c});
    case 4: return cx_slice(in[0], u->a, u->b, u->c, u->d);
    case 5: return cx_concat(in, n, u->a);
    case 6: return cx_stack(in, n, u->a);
    case 7: return cx_index_select(in[0], u->a, u->index);
    default: return cx_gather(in[0], u->a, u->index);
    }
}

static void test_reshape(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(2, 3, 4), -2, 2);
    sh_u u = {0, 4, -1, 0, 0, NULL};
    check_op(shape_op, &x, 1, &u, "reshape [4,-1]");
    sh_u u2 = {0, -1, 2, 0, 0, NULL};
    check_op(shape_op, &x, 1, &u2, "reshape [-1,2]");
}
static void test_flatten(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(2, 3, 4), -2, 2);
    sh_u u = {1, 0, 0, 0, 0, NULL};
    check_op(shape_op, &x, 1, &u, "flatten");
}
static void test_transpose(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(2, 3, 4), -2, 2);
    sh_u u = {2, 0, 2, 0, 0, NULL}, u2 = {2, -1, -2, 0, 0, NULL}, u3 = {2, 1, 1, 0, 0, NULL};
    check_op(shape_op, &x, 1, &u, "transpose 0,2");
    check_op(shape_op, &x, 1, &u2, "transpose -1,-2");
    check_op(shape_op, &x, 1, &u3, "transpose 1,1");
}
static void test_permute(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(2, 3, 4), -2, 2);
    sh_u u = {3, 2, 0, 1, 0, NULL}, u2 = {3, 1, 2, 0, 0, NULL}, u3 = {3, -1, 0, 1, 0, NULL};
    check_op(shape_op, &x, 1, &u, "permute 2,0,1");
    check_op(shape_op, &x, 1, &u2, "permute 1,2,0");
    check_op(shape_op, &x, 1, &u3, "permute -1,0,1");
}
static void test_slice(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(3, 8, 2), -2, 2);
    sh_u a = {4, 1, 1, 7, 2, NULL};  /* [:, 1:7:2, :] */
    sh_u b = {4, 1, -5, 8, 3, NULL}; /* negative start */
    sh_u c = {4, 0, 0, 2, 1, NULL};  /* first axis */
    sh_u d = {4, -1, 1, 2, 1, NULL}; /* last axis, negative axis */
    sh_u e = {4, 1, 0, 100, 1, NULL}; /* stop clamped: the whole axis */
    check_op(shape_op, &x, 1, &a, "slice 1:7:2");
    check_op(shape_op, &x, 1, &b, "slice -5:8:3");
    check_op(shape_op, &x, 1, &c, "slice axis 0");
    check_op(shape_op, &x, 1, &d, "slice axis -1");
    check_op(shape_op, &x, 1, &e, "slice clamped stop");
}
static void test_concat(void) {
    cx_tensor *in[3] = {leaf_u(CX_SHAPE(2, 3, 2), -2, 2), leaf_u(CX_SHAPE(2, 1, 2), -2, 2),
                        leaf_u(CX_SHAPE(2, 4, 2), -2, 2)};
    sh_u u = {5, 1, 0, 0, 0, NULL};
    check_op(shape_op, in, 3, &u, "concat axis 1");
    cx_tensor *in0[3] = {leaf_u(CX_SHAPE(1, 3), -2, 2), leaf_u(CX_SHAPE(3, 3), -2, 2),
                         leaf_u(CX_SHAPE(2, 3), -2, 2)};
    sh_u u0 = {5, 0, 0, 0, 0, NULL}, um = {5, -1, 0, 0, 0, NULL};
    check_op(shape_op, in0, 3, &u0, "concat axis 0");
    cx_tensor *inm[2] = {leaf_u(CX_SHAPE(2, 2), -2, 2), leaf_u(CX_SHAPE(2, 3), -2, 2)};
    check_op(shape_op, inm, 2, &um, "concat axis -1");
    /* one input without grad */
    in[1]->requires_grad = false;
    check_op(shape_op, in, 3, &u, "concat, middle input constant");
}
static void test_stack(void) {
    cx_tensor *in[3] = {leaf_u(CX_SHAPE(2, 3), -2, 2), leaf_u(CX_SHAPE(2, 3), -2, 2), leaf_u(CX_SHAPE(2, 3), -2, 2)};
    static const int axes[] = {0, 1, 2, -1};
    for (int i = 0; i < 4; i++) {
        sh_u u = {6, axes[i], 0, 0, 0, NULL};
        char what[32];
        snprintf(what, sizeof what, "stack axis %d", axes[i]);
        check_op(shape_op, in, 3, &u, what);
    }
}
static void test_index_select(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(4, 3, 2), -2, 2);
    cx_tensor *idx = targets_i32((const int32_t[]){2, 0, 2, 2, 3}, 5);
    sh_u u = {7, 0, 0, 0, 0, idx};
    check_op(shape_op, &x, 1, &u, "index_select axis 0 repeated");
    cx_tensor *idx1 = targets_i64((const int64_t[]){1, 1, 0}, 3);
    sh_u u1 = {7, 1, 0, 0, 0, idx1}, um = {7, -1, 0, 0, 0, idx1};
    check_op(shape_op, &x, 1, &u1, "index_select axis 1 (I64)");
    check_op(shape_op, &x, 1, &um, "index_select axis -1");
}
static void test_gather(void) {
    cx_tensor *x = leaf_u(CX_SHAPE(3, 4), -2, 2);
    cx_tensor *idx = cx_from_i32((const int32_t[]){0, 3, 3, 1, 1, 1}, CX_SHAPE(3, 2));
    sh_u u = {8, 1, 0, 0, 0, idx};
    check_op(shape_op, &x, 1, &u, "gather axis 1");
    cx_tensor *idx0 = cx_from_i32((const int32_t[]){2, 0, 1, 2, 2, 2, 0, 0}, CX_SHAPE(2, 4));
    sh_u u0 = {8, 0, 0, 0, 0, idx0};
    check_op(shape_op, &x, 1, &u0, "gather axis 0");
    cx_tensor *x3 = leaf_u(CX_SHAPE(2, 3, 4), -2, 2);
    cx_tensor *idx3 = cx_from_i32((const int32_t[]){0, 3, 1, 1, 2, 0, 3, 3, 0, 1, 2, 3}, CX_SHAPE(2, 3, 2));
    sh_u u3 = {8, -1, 0, 0, 0, idx3};
    check_op(shape_op, &x3, 1, &u3, "gather 3-d axis -1");
}

/* ---------------------------------------------------------------- losses */
typedef struct { int kind; cx_reduction r; float p; const cx_tensor *target; } loss_u;
static cx_tensor *loss_op(cx_tensor **in, int n, void *user) {
    (void)n;
    loss_u *u = user;
    switch (u->kind) {
    case 0: return cx_cross_entropy(in[0], u->target, u->r);
    case 1: return cx_nll_loss(in[0], u->target, u->r);
    case 2: return cx_multi_margin_loss(in[0], u->target, u->p, u->r);
    case 3: return cx_mse_loss(in[0], in[1], u->r);
    case 4: return cx_bce_with_logits(in[0], in[1], u->r);
    case 5: return cx_hinge_loss(in[0], in[1], u->p, u->r);
    case 6: return cx_perceptron_loss(in[0], in[1], u->r);
    case 7: return cx_logistic_loss(in[0], in[1], u->r);
    default: return cx_smooth_l1_loss(in[0], in[1], u->p, u->r);
    }
}

static void class_loss_cases(int kind, const char *name) {
    const cx_tensor *tg[3] = {
        targets_i32((const int32_t[]){0, 2, 1, 3, 2}, 5),
        targets_i32((const int32_t[]){1, -100, 3, -100, 0}, 5), /* ignore_index */
        targets_i64((const int64_t[]){3, 3, 0, 1, -100}, 5),
    };
    const char *tgn[3] = {"I32", "I32 ignore -100", "I64"};
    for (int t = 0; t < 3; t++)
        for (int r = 0; r < 3; r++) {
            cx_tensor *x = kind == 1 ? cx_log_softmax(leaf_u(CX_SHAPE(5, 4), -2, 2), 1) : leaf_u(CX_SHAPE(5, 4), -3, 3);
            x = cx_detach(x);
            x->requires_grad = true;
            loss_u u = {kind, REDS[r], 0, tg[t]};
            char what[96];
            snprintf(what, sizeof what, "%s %s reduction %s", name, tgn[t], RED_NAMES[r]);
            check_op(loss_op, &x, 1, &u, what);
        }
}
static void test_cross_entropy(void) { class_loss_cases(0, "cross_entropy"); }
static void test_nll_loss(void) { class_loss_cases(1, "nll_loss"); }

static void test_multi_margin_loss(void) {
    const cx_tensor *tg = targets_i32((const int32_t[]){0, 2, 1, 3, 2, 1}, 6);
    for (int r = 0; r < 3; r++) {
        /* distinct values on a 0.3 grid: margin 1 - k*0.3 is at least 0.1 away from 0 */
        cx_tensor *x = leaf_distinct(CX_SHAPE(6, 4), 0.3f);
        loss_u u = {2, REDS[r], 1.0f, tg};
        char what[64];
        snprintf(what, sizeof what, "multi_margin reduction %s", RED_NAMES[r]);
        check_op(loss_op, &x, 1, &u, what);
        loss_u u2 = {2, REDS[r], 0.45f, tg}; /* other margin: 0.45 - k*0.3 >= 0.15 away */
        check_op(loss_op, &x, 1, &u2, what);
    }
}

/* Pointwise losses: gradients w.r.t. both the prediction and the float target. */
static void pointwise_cases(int kind, const char *name, float p) {
    for (int r = 0; r < 3; r++) {
        int shape[2] = {3, 4};
        cx_tensor *x, *t;
        switch (kind) {
        case 4: /* bce: target probabilities in (0, 1) */
            x = leaf_u(shape, 2, -3, 3);
            t = leaf_u(shape, 2, 0.05f, 0.95f);
            break;
        case 5: { /* hinge: t = +-1, |margin - t f| >= 0.2 */
            x = leaf_u(shape, 2, -2.5f, 2.5f);
            t = cx_empty(CX_F32, shape, 2);
            for (int i = 0; i < 12; i++) {
                float tv = (i % 3) ? 1.0f : -1.0f, m = p - tv * CX_F(x)[i];
                if (fabsf(m) < 0.2f) CX_F(x)[i] = tv * (p + (m >= 0 ? -0.2f : 0.2f));
                CX_F(t)[i] = tv;
            }
            t->requires_grad = true;
            break;
        }
        case 6: /* perceptron: t = +-1, |f| >= 0.2 */
        case 7: /* logistic */
            x = kind == 6 ? leaf_away(shape, 2, -2.5f, 2.5f, 0.0f, 0.2f) : leaf_u(shape, 2, -3, 3);
            t = cx_empty(CX_F32, shape, 2);
            for (int i = 0; i < 12; i++) CX_F(t)[i] = (i % 3) ? 1.0f : -1.0f;
            t->requires_grad = true;
            break;
        case 8: { /* smooth l1: |x - t| on both sides of beta, >= 0.15 from it */
            t = leaf_u(shape, 2, -2, 2);
            x = cx_empty(CX_F32, shape, 2);
            static const float dv[12] = {0.3f, -0.4f, 1.6f, -2.0f, 0.05f, 0.7f,
                                         -0.7f, 2.5f, -1.3f, 0.0f, 1.2f, -0.2f};
            for (int i = 0; i < 12; i++) CX_F(x)[i] = CX_F(t)[i] + dv[i] * p;
            x->requires_grad = true;
            break;
        }
        default: /* mse */
            x = leaf_u(shape, 2, -2, 2);
            t = leaf_u(shape, 2, -2, 2);
        }
        cx_tensor *in[2] = {x, t};
        loss_u u = {kind, REDS[r], p, NULL};
        char what[64];
        snprintf(what, sizeof what, "%s reduction %s", name, RED_NAMES[r]);
        check_op(loss_op, in, 2, &u, what);
        /* w.r.t. the prediction only */
        t->requires_grad = false;
        check_op(loss_op, in, 2, &u, what);
    }
}
static void test_mse_loss(void) { pointwise_cases(3, "mse", 0); }
static void test_bce_with_logits(void) { pointwise_cases(4, "bce_with_logits", 0); }
static void test_hinge_loss(void) {
    pointwise_cases(5, "hinge margin 1", 1.0f);
    pointwise_cases(5, "hinge margin 0.5", 0.5f);
}
static void test_perceptron_loss(void) { pointwise_cases(6, "perceptron", 0); }
static void test_logistic_loss(void) { pointwise_cases(7, "logistic", 0); }
static void test_smooth_l1_loss(void) {
    pointwise_cases(8, "smooth_l1 beta 1", 1.0f);
    pointwise_cases(8, "smooth_l1 beta 0.5", 0.5f);
}

/* ---------------------------------------------------------------- composites */
static cx_tensor *mlp_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    const cx_tensor *target = user;
    cx_tensor *h = cx_tanh(cx_linear(in[0], in[1], in[2]));
    return cx_cross_entropy(cx_linear(h, in[3], in[4]), target, CX_REDUCE_MEAN);
}

static void test_mlp_composite(void) {
    cx_tensor *w1 = cx_param_new("fc1.weight", CX_SHAPE(8, 4));
    cx_tensor *b1 = cx_param_new("fc1.bias", CX_SHAPE(8));
    cx_tensor *w2 = cx_param_new("fc2.weight", CX_SHAPE(3, 8));
    cx_tensor *b2 = cx_param_new("fc2.bias", CX_SHAPE(3));
    cx_fill_uniform(w1, -0.8f, 0.8f);
    cx_fill_uniform(b1, -0.3f, 0.3f);
    cx_fill_uniform(w2, -0.8f, 0.8f);
    cx_fill_uniform(b2, -0.3f, 0.3f);
    cx_tensor *x = leaf_u(CX_SHAPE(6, 4), -1.5f, 1.5f);
    cx_tensor *y = targets_i32((const int32_t[]){0, 1, 2, 2, 1, 0}, 6);
    cx_tensor *in[5] = {x, w1, b1, w2, b2};
    double worst = cx_gradcheck(mlp_fn, in, 5, y, EPS, 1e-3f, RTOL, true);
    CHECK_MSG(worst <= 1.0, "MLP gradcheck ratio %g", worst);
    /* parameters' grads are left as they were (NULL) */
    CHECK(w1->grad == NULL && b2->grad == NULL);
    /* and the analytic grads themselves are non-trivial */
    cx_backward(mlp_fn(in, 5, y));
    double gn = 0;
    for (int i = 0; i < w1->numel; i++) gn += fabs(w1->grad[i]);
    CHECK(gn > 1e-3);
    cx_tensor_free(w1);
    cx_tensor_free(b1);
    cx_tensor_free(w2);
    cx_tensor_free(b2);
}

/* attention-like: softmax(q k^T / 2) v, then weighted sum */
static cx_tensor *attn_op(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    cx_tensor *s = cx_mul_scalar(cx_matmul(in[0], cx_transpose(in[1], -1, -2)), 0.5f);
    return cx_matmul(cx_softmax(s, -1), in[2]);
}
static void test_attention_composite(void) {
    cx_tensor *in[3] = {leaf_u(CX_SHAPE(2, 3, 4), -1, 1), leaf_u(CX_SHAPE(2, 5, 4), -1, 1),
                        leaf_u(CX_SHAPE(2, 5, 3), -1, 1)};
    check_op(attn_op, in, 3, NULL, "attention");
}

/* everything in one chain: broadcasting, reductions, shape ops, a loss */
static cx_tensor *chain_op(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    cx_tensor *x = in[0], *b = in[1];
    cx_tensor *h = cx_gelu(cx_add(x, b));                          /* [4,6] + [6] */
    cx_tensor *m = cx_mean_axis(h, 0, true);                       /* [1,6] */
    cx_tensor *z = cx_sub(h, m);                                   /* [4,6] */
    cx_tensor *r = cx_reshape(z, CX_SHAPE(4, 2, 3));
    cx_tensor *p = cx_permute(r, (const int[]){1, 0, 2});           /* [2,4,3] */
    cx_tensor *s = cx_sum_axis(cx_exp(cx_mul_scalar(p, 0.3f)), 0, false); /* [4,3] */
    return cx_logistic_loss(cx_log(s), cx_tanh(cx_slice(z, 1, 0, 6, 2)), CX_REDUCE_MEAN);
}
static void test_chain_composite(void) {
    cx_tensor *in[2] = {leaf_u(CX_SHAPE(4, 6), -1, 1), leaf_u(CX_SHAPE(6), -1, 1)};
    check_op(chain_op, in, 2, NULL, "chain");
}

int main(void) {
    cx_seed(20240601);
    cx_set_threads(1);
    RUN(test_gradcheck_detects_wrong_gradient);
    RUN(test_add);
    RUN(test_sub);
    RUN(test_mul);
    RUN(test_div);
    RUN(test_maximum);
    RUN(test_binary_same_input);
    RUN(test_add_scalar);
    RUN(test_mul_scalar);
    RUN(test_neg);
    RUN(test_exp);
    RUN(test_log);
    RUN(test_sqrt);
    RUN(test_pow);
    RUN(test_abs);
    RUN(test_clamp);
    RUN(test_sigmoid);
    RUN(test_tanh);
    RUN(test_relu);
    RUN(test_leaky_relu);
    RUN(test_elu);
    RUN(test_gelu);
    RUN(test_softplus);
    RUN(test_maxout);
    RUN(test_dropout);
    RUN(test_matmul);
    RUN(test_linear);
    RUN(test_sum_mean);
    RUN(test_sum_axis);
    RUN(test_mean_axis);
    RUN(test_max_axis);
    RUN(test_softmax);
    RUN(test_log_softmax);
    RUN(test_reshape);
    RUN(test_flatten);
    RUN(test_transpose);
    RUN(test_permute);
    RUN(test_slice);
    RUN(test_concat);
    RUN(test_stack);
    RUN(test_index_select);
    RUN(test_gather);
    RUN(test_cross_entropy);
    RUN(test_nll_loss);
    RUN(test_multi_margin_loss);
    RUN(test_mse_loss);
    RUN(test_bce_with_logits);
    RUN(test_hinge_loss);
    RUN(test_perceptron_loss);
    RUN(test_logistic_loss);
    RUN(test_smooth_l1_loss);
    RUN(test_mlp_composite);
    RUN(test_attention_composite);
    RUN(test_chain_composite);
    TEST_END();
}
