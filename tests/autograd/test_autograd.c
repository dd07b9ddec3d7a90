/* Autograd semantics: accumulation, no-grad, detach, check-numerics mode,
 * error reporting through the handler, arenas, deep graphs. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"


static cx_tensor *leaf(const float *v, const int *shape, int nd) {
    cx_tensor *t = cx_from_data(v, shape, nd);
    t->requires_grad = true;
    return t;
}

/* ---------------------------------------------------------------- accumulation */
static void test_value_used_twice(void) {
    const float xv[4] = {-1.5f, 0.0f, 0.5f, 2.0f};
    cx_tensor *x = leaf(xv, CX_SHAPE(4));
    cx_tensor *y = cx_add(cx_mul(x, x), x); /* y = x^2 + x */
    cx_backward_with(y, (const float[]){1, 1, 1, 1});
    CHECK(x->grad != NULL);
    for (int i = 0; i < 4; i++) CHECK_NEAR(x->grad[i], 2 * xv[i] + 1, 1e-6);
    /* through a scalar loss, and a diamond: z = exp(x) * exp(x) */
    cx_tensor *x2 = leaf(xv, CX_SHAPE(4));
    cx_tensor *e = cx_exp(x2);
    cx_backward(cx_sum(cx_mul(e, e)));
    for (int i = 0; i < 4; i++) CHECK_NEAR(x2->grad[i], 2 * expf(2 * xv[i]), 1e-4 * expf(2 * xv[i]));
    /* y = x*x*x via one intermediate used in two places */
    cx_tensor *x3 = leaf(xv, CX_SHAPE(4));
    cx_tensor *sq = cx_mul(x3, x3);
    cx_backward(cx_add(cx_sum(cx_mul(sq, x3)), cx_sum(sq)));
    for (int i = 0; i < 4; i++) CHECK_NEAR(x3->grad[i], 3 * xv[i] * xv[i] + 2 * xv[i], 1e-5);
}

static void test_backward_with_upstream(void) {
    const float xv[3] = {1, 2, 3};
    cx_tensor *x = leaf(xv, CX_SHAPE(3));
    cx_tensor *y = cx_mul_scalar(x, 3.0f);
    cx_backward_with(y, (const float[]){1, 10, 100});
    CHECK_NEAR(x->grad[0], 3, 1e-6);
    CHECK_NEAR(x->grad[1], 30, 1e-5);
    CHECK_NEAR(x->grad[2], 300, 1e-4);
    /* the root itself receives the upstream gradient */
    CHECK_NEAR(y->grad[2], 100, 0);
}

static void test_param_grad_accumulates(void) {
    cx_tensor *w = cx_param_new("w", CX_SHAPE(3));
    const float wv[3] = {0.5f, -1.0f, 2.0f}, xv[3] = {1.0f, 2.0f, -3.0f};
    memcpy(w->data, wv, sizeof wv);
    CHECK(w->grad == NULL);
    for (int step = 1; step <= 2; step++) {
        cx_tensor *x = cx_from_data(xv, CX_SHAPE(3));
        cx_backward(cx_sum(cx_mul(w, x))); /* d/dw = x */
        cx_step_reset();                     /* the graph goes; w->grad stays */
        for (int i = 0; i < 3; i++) CHECK_NEAR(w->grad[i], step * xv[i], 1e-6);
    }
    cx_zero_grad(w);
    for (int i = 0; i < 3; i++) CHECK(w->grad[i] == 0.0f);
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(3));
    cx_backward(cx_sum(cx_mul(w, cx_mul(w, x)))); /* d/dw = 2 w x */
    for (int i = 0; i < 3; i++) CHECK_NEAR(w->grad[i], 2 * wv[i] * xv[i], 1e-6);
    /* via a parameter list */
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, w);
    cx_params_zero_grad(&ps);
    for (int i = 0; i < 3; i++) CHECK(w->grad[i] == 0.0f);
    cx_params_free(&ps);
    cx_tensor_free(w);
}

/* Two losses sharing a subgraph, backpropagated one after the other: the leaf
 * gets the sum of both gradients, each counted once (intermediate gradients of
 * the first pass must not leak into the second). */
static void test_two_backward_passes_shared_graph(void) {
    const float xv[3] = {-0.5f, 0.25f, 1.0f};
    cx_tensor *x = leaf(xv, CX_SHAPE(3));
    cx_tensor *h = cx_exp(x);
    cx_tensor *l1 = cx_sum(h);
    cx_tensor *l2 = cx_sum(cx_mul(h, h));
    cx_backward(l1);
    for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], expf(xv[i]), 1e-5);
    cx_backward(l2);
    for (int i = 0; i < 3; i++) {
        double e = exp((double)xv[i]);
        CHECK_NEAR(x->grad[i], e + 2 * e * e, 1e-4 * (e + 2 * e * e));
    }
    /* the same loss twice (graph kept): twice the single-pass gradient */
    cx_tensor *x2 = leaf(xv, CX_SHAPE(3));
    cx_tensor *l = cx_sum(cx_mul_scalar(cx_tanh(x2), 3.0f));
    cx_backward(l);
    cx_backward(l);
    for (int i = 0; i < 3; i++) {
        double t = tanh((double)xv[i]);
        CHECK_NEAR(x2->grad[i], 2 * 3 * (1 - t * t), 1e-5);
    }
}

static void test_no_grad(void) {
    const float xv[2] = {1, 2};
    cx_tensor *x = leaf(xv, CX_SHAPE(2));
    CHECK(cx_grad_enabled());
    cx_no_grad_begin();
    CHECK(!cx_grad_enabled());
    cx_tensor *y = cx_mul(x, x);
    CHECK(!y->requires_grad);
    CHECK(y->node == NULL);
    CHECK(strcmp(cx_op_name(y), "leaf") == 0);
    CHECK_NEAR(CX_F(y)[1], 4, 0);
    cx_no_grad_begin(); /* nested */
    cx_tensor *z = cx_tanh(x);
    CHECK(!z->requires_grad && z->node == NULL);
    cx_no_grad_end();
    CHECK(!cx_grad_enabled()); /* still inside the outer region */
    cx_tensor *w = cx_sum(cx_exp(x));
    CHECK(!w->requires_grad && w->node == NULL);
    cx_no_grad_end();
    CHECK(cx_grad_enabled());
    cx_tensor *v = cx_mul(x, x);
    CHECK(v->requires_grad && v->node != NULL);
    CHECK(strcmp(cx_op_name(v), "mul") == 0);
    /* backward from a no-grad result is an error */
    EXPECT_FATAL(cx_backward(w), "backward", "require");
    /* unbalanced end is an error */
    EXPECT_FATAL(cx_no_grad_end(), "no_grad");
    CHECK(cx_grad_enabled());
}

static void test_no_grad_inputs_without_grad(void) {
    /* ops on tensors none of which requires grad record nothing */
    cx_tensor *a = cx_ones(CX_SHAPE(2, 2)), *b = cx_full(CX_SHAPE(2), 3.0f);
    cx_tensor *c = cx_add(a, b);
    CHECK(!c->requires_grad && c->node == NULL);
    EXPECT_FATAL(cx_backward(cx_sum(c)), "backward");
}

static void test_detach(void) {
    const float xv[3] = {1, -2, 3};
    cx_tensor *x = leaf(xv, CX_SHAPE(3));
    cx_tensor *d = cx_detach(x);
    CHECK(!d->requires_grad);
    CHECK(d->node == NULL);
    CHECK(d->data == x->data); /* shares the data */
    cx_tensor *y = cx_mul(x, d);   /* d/dx = d = x (not 2x) */
    cx_backward(cx_sum(y));
    for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], xv[i], 1e-6);
    /* detaching an intermediate cuts the whole subgraph */
    cx_tensor *x2 = leaf(xv, CX_SHAPE(3));
    cx_tensor *h = cx_exp(x2);
    cx_tensor *out = cx_add(cx_sum(cx_detach(h)), cx_sum(x2));
    cx_backward(out);
    for (int i = 0; i < 3; i++) CHECK_NEAR(x2->grad[i], 1, 1e-6);
    CHECK(h->grad == NULL);
    /* a detached persistent parameter is not persistent, has no name */
    cx_tensor *p = cx_param_new("p", CX_SHAPE(2));
    cx_tensor *pd = cx_detach(p);
    CHECK(!pd->persistent && !pd->owns_data && pd->name == NULL && !pd->requires_grad);
    cx_tensor_free(p);
}

static void test_op_names(void) {
    cx_tensor *p = cx_param_new("fc.weight", CX_SHAPE(2));
    CHECK(strcmp(cx_op_name(p), "fc.weight") == 0);
    cx_tensor *x = cx_zeros(CX_SHAPE(2));
    CHECK(strcmp(cx_op_name(x), "leaf") == 0);
    CHECK(strcmp(cx_op_name(cx_add(p, x)), "add") == 0);
    CHECK(strcmp(cx_op_name(cx_sigmoid(p)), "sigmoid") == 0);
    CHECK(strcmp(cx_op_name(cx_matmul(cx_reshape(p, CX_SHAPE(1, 2)), cx_ones(CX_SHAPE(2, 2)))), "matmul") == 0);
    CHECK(strcmp(cx_op_name(cx_cross_entropy(cx_reshape(p, CX_SHAPE(1, 2)),
                                             cx_from_i32((const int32_t[]){1}, CX_SHAPE(1)), CX_REDUCE_MEAN)),
                 "cross_entropy") == 0);
    cx_tensor_free(p);
}

/* sign and threshold_unit are piecewise constant: no graph, zero gradient */
static void test_non_differentiable_ops(void) {
    const float xv[3] = {-1, 0, 2};
    cx_tensor *x = leaf(xv, CX_SHAPE(3));
    cx_tensor *s = cx_sign(x), *t = cx_threshold_unit(x), *am = cx_argmax(x, 0);
    CHECK(!s->requires_grad && !t->requires_grad && !am->requires_grad);
    CHECK(CX_F(s)[0] == -1 && CX_F(s)[1] == 0 && CX_F(s)[2] == 1);
    CHECK(CX_F(t)[0] == -1 && CX_F(t)[1] == 1 && CX_F(t)[2] == 1);
    CHECK(am->dtype == CX_I32 && CX_I32P(am)[0] == 2);
    /* x + sign(x): gradient 1 */
    cx_backward(cx_sum(cx_add(x, cx_sign(x))));
    for (int i = 0; i < 3; i++) CHECK_NEAR(x->grad[i], 1, 0);
}

/* Ties: maximum splits the gradient evenly, max_axis/maxout give it to the first maximum. */
static void test_tie_gradients(void) {
    cx_tensor *a = leaf((const float[]){1, 2, 3}, CX_SHAPE(3));
    cx_tensor *b = leaf((const float[]){1, 5, 0}, CX_SHAPE(3));
    cx_backward(cx_sum(cx_maximum(a, b)));
    CHECK_NEAR(a->grad[0], 0.5, 0);
    CHECK_NEAR(b->grad[0], 0.5, 0);
    CHECK_NEAR(a->grad[1], 0, 0);
    CHECK_NEAR(b->grad[1], 1, 0);
    CHECK_NEAR(a->grad[2], 1, 0);
    CHECK_NEAR(b->grad[2], 0, 0);
    cx_tensor *m = leaf((const float[]){4, 1, 4, 2, 7, 7}, CX_SHAPE(2, 3));
    cx_tensor *mx = cx_max_axis(m, 1, false);
    CHECK(CX_F(mx)[0] == 4 && CX_F(mx)[1] == 7);
    cx_backward(cx_sum(mx));
    const float want[6] = {1, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) CHECK_NEAR(m->grad[i], want[i], 0);
    cx_tensor *am = cx_argmax(m, 1);
    CHECK(CX_I32P(am)[0] == 0 && CX_I32P(am)[1] == 1);
    cx_tensor *mo = leaf((const float[]){3, 3, 1, 2}, CX_SHAPE(4));
    cx_backward(cx_sum(cx_maxout(mo, 2)));
    CHECK(mo->grad[0] == 1 && mo->grad[1] == 0 && mo->grad[2] == 0 && mo->grad[3] == 1);
}

/* gradcheck leaves the gradients the caller already had untouched */
static cx_tensor *sq_sum(cx_tensor **in, int n, void *user) {
    (void)n; (void)user;
    return cx_sum(cx_mul(in[0], cx_tanh(in[1])));
}
static void test_gradcheck_preserves_grads(void) {
    cx_tensor *p = cx_param_new("p", CX_SHAPE(3));
    cx_fill_uniform(p, -1, 1);
    float *pg = cx_grad_ensure(p);
    pg[1] = 7.0f;
    cx_tensor *x = cx_rand_uniform_t(CX_SHAPE(3), -1, 1);
    x->requires_grad = true;
    cx_tensor *in[2] = {p, x};
    size_t used = cx_arena_used(cx_arena_current());
    double worst = cx_gradcheck(sq_sum, in, 2, NULL, 1e-2f, 1e-3f, 1e-2f, true);
    CHECK(worst <= 1.0);
    CHECK(p->grad == pg && pg[0] == 0.0f && pg[1] == 7.0f);
    CHECK(x->grad == NULL);
    CHECK(cx_grad_enabled());
    CHECK(cx_arena_used(cx_arena_current()) == used); /* scratch rewound */
    cx_tensor_free(p);
}

static void test_training_flag_dropout(void) {
    bool tr = cx_is_training();
    cx_tensor *x = cx_ones(CX_SHAPE(1000));
    x->requires_grad = true;
    cx_set_training(false);
    CHECK(!cx_is_training());
    CHECK(cx_dropout(x, 0.5f) == x); /* identity in eval mode */
    cx_set_training(true);
    cx_seed(7);
    cx_tensor *y = cx_dropout(x, 0.25f);
    int zeros = 0;
    for (int i = 0; i < 1000; i++) {
        float v = CX_F(y)[i];
        CHECK(v == 0.0f || fabsf(v - 1.0f / 0.75f) < 1e-6f);
        zeros += v == 0.0f;
    }
    CHECK_MSG(zeros > 180 && zeros < 320, "dropped %d of 1000 at p=0.25", zeros);
    /* same seed, same mask */
    cx_seed(7);
    cx_tensor *y2 = cx_dropout(x, 0.25f);
    CHECK(memcmp(y->data, y2->data, 1000 * sizeof(float)) == 0);
    /* gradient is the mask */
    cx_backward(cx_sum(y));
    for (int i = 0; i < 1000; i++) CHECK(x->grad[i] == CX_F(y)[i]);
    /* p = 1 drops everything */
    cx_tensor *z = cx_dropout(x, 1.0f);
    for (int i = 0; i < 1000; i++) CHECK(CX_F(z)[i] == 0.0f);
    EXPECT_FATAL(cx_dropout(x, 1.5f), "dropout");
    cx_set_training(tr);
}

/* ---------------------------------------------------------------- check numerics */
static void test_check_numerics_forward(void) {
    CHECK(!cx_check_numerics()); /* off by default */
    cx_tensor *x = cx_from_data((const float[]){1.0f, 0.0f, -1.0f}, CX_SHAPE(3));
    /* off: log(0) and log(-1) pass silently */
    cx_tensor *y = cx_log(x);
    CHECK(isinf(CX_F(y)[1]) && isnan(CX_F(y)[2]));
    cx_set_check_numerics(true);
    CHECK(cx_check_numerics());
    EXPECT_FATAL(cx_log(x), "log", "check_numerics");
    /* the element index (1: log(0) = -inf) is reported */
    CHECK_MSG(strstr(err_msg, "element 1") != NULL, "message '%s'", err_msg);
    /* also with a graph being recorded */
    x->requires_grad = true;
    EXPECT_FATAL(cx_log(x), "log");
    x->requires_grad = false;
    /* and under no-grad */
    cx_no_grad_begin();
    EXPECT_FATAL(cx_log(x), "log");
    cx_no_grad_end();
    /* division by zero names div */
    EXPECT_FATAL(cx_div(cx_ones(CX_SHAPE(2)), cx_zeros(CX_SHAPE(2))), "div");
    /* finite results pass */
    cx_tensor *ok = cx_exp(x);
    CHECK(isfinite(CX_F(ok)[0]));
    cx_set_check_numerics(false);
}

static void test_check_numerics_input(void) {
    cx_tensor *x = cx_from_data((const float[]){1.0f, NAN, 2.0f}, CX_SHAPE(3));
    x->requires_grad = true;
    cx_set_check_numerics(true);
    EXPECT_FATAL(cx_exp(x), "input", "exp");
    CHECK_MSG(strstr(err_msg, "leaf") != NULL, "message '%s' should call the input a leaf", err_msg);
    /* a NaN in a named parameter names the parameter */
    cx_tensor *p = cx_param_new("layer.bias", CX_SHAPE(2));
    CX_F(p)[1] = INFINITY;
    EXPECT_FATAL(cx_add(cx_ones(CX_SHAPE(2)), p), "input 1", "layer.bias", "add");
    /* a NaN produced by an op and fed to the next one is caught at the producer */
    cx_set_check_numerics(false);
    cx_tensor *bad = cx_sqrt(cx_from_data((const float[]){-1.0f}, CX_SHAPE(1)));
    cx_set_check_numerics(true);
    EXPECT_FATAL(cx_tanh(bad), "input 0", "tanh");
    cx_set_check_numerics(false);
    cx_tensor_free(p);
}

static void test_check_numerics_backward(void) {
    cx_tensor *x = cx_from_data((const float[]){0.0f, 1.0f, 4.0f}, CX_SHAPE(3));
    x->requires_grad = true;
    cx_set_check_numerics(true);
    cx_tensor *y = cx_sqrt(x); /* forward is finite (0, 1, 2) */
    CHECK_NEAR(CX_F(y)[2], 2, 1e-6);
    cx_tensor *loss = cx_sum(y);
    EXPECT_FATAL(cx_backward(loss), "backward", "sqrt", "gradient");
    cx_set_check_numerics(false);
    /* without check mode the inf gradient just propagates */
    cx_tensor *x2 = cx_from_data((const float[]){0.0f, 1.0f}, CX_SHAPE(2));
    x2->requires_grad = true;
    cx_backward(cx_sum(cx_sqrt(x2)));
    CHECK(isinf(x2->grad[0]));
    CHECK_NEAR(x2->grad[1], 0.5, 1e-6);
}

/* ---------------------------------------------------------------- shape errors */
static void test_shape_errors(void) {
    cx_tensor *a = cx_ones(CX_SHAPE(2, 3)), *b = cx_ones(CX_SHAPE(4));
    EXPECT_FATAL(cx_add(a, b), "add", "[2, 3]", "[4]");
    EXPECT_FATAL(cx_mul(cx_ones(CX_SHAPE(3, 2)), cx_ones(CX_SHAPE(2, 3))), "mul", "broadcast");
    EXPECT_FATAL(cx_matmul(a, cx_ones(CX_SHAPE(4, 5))), "matmul", "[2, 3]", "[4, 5]");
    EXPECT_FATAL(cx_matmul(cx_ones(CX_SHAPE(2, 3, 4)), cx_ones(CX_SHAPE(3, 4, 5))), "matmul");
    EXPECT_FATAL(cx_matmul(cx_ones(CX_SHAPE(4)), cx_ones(CX_SHAPE(4, 5))), "matmul");
    EXPECT_FATAL(cx_linear(a, cx_ones(CX_SHAPE(5, 4)), NULL), "linear");
    EXPECT_FATAL(cx_linear(a, cx_ones(CX_SHAPE(5, 3)), cx_ones(CX_SHAPE(4))), "linear", "bias");
    cx_tensor *logits = cx_zeros(CX_SHAPE(2, 3));
    EXPECT_FATAL(cx_cross_entropy(logits, cx_from_i32((const int32_t[]){0, 3}, CX_SHAPE(2)), CX_REDUCE_MEAN),
                 "cross_entropy", "out of range", "3");
    EXPECT_FATAL(cx_cross_entropy(logits, cx_from_i32((const int32_t[]){-1, 0}, CX_SHAPE(2)), CX_REDUCE_MEAN),
                 "cross_entropy", "out of range");
    EXPECT_FATAL(cx_cross_entropy(logits, cx_from_i32((const int32_t[]){0, 1, 2}, CX_SHAPE(3)), CX_REDUCE_MEAN),
                 "cross_entropy");
    EXPECT_FATAL(cx_cross_entropy(logits, cx_zeros(CX_SHAPE(2)), CX_REDUCE_MEAN), "cross_entropy", "I32");
    EXPECT_FATAL(cx_nll_loss(logits, cx_from_i32((const int32_t[]){0, 7}, CX_SHAPE(2)), CX_REDUCE_SUM), "nll_loss");
    EXPECT_FATAL(cx_multi_margin_loss(logits, cx_from_i32((const int32_t[]){0, -100}, CX_SHAPE(2)), 1.0f,
                                      CX_REDUCE_MEAN), "multi_margin");
    EXPECT_FATAL(cx_mse_loss(a, cx_ones(CX_SHAPE(3, 2)), CX_REDUCE_MEAN), "mse_loss", "same shape");
    EXPECT_FATAL(cx_sum_axis(a, 2, false), "sum_axis", "axis");
    EXPECT_FATAL(cx_softmax(a, -3), "softmax", "axis");
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(4, 2)), "reshape");
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(-1, -1)), "reshape", "-1");
    EXPECT_FATAL(cx_concat((cx_tensor *[]){a, cx_ones(CX_SHAPE(3, 3))}, 2, 1), "concat");
    EXPECT_FATAL(cx_stack((cx_tensor *[]){a, cx_ones(CX_SHAPE(2, 4))}, 2, 0), "stack");
    EXPECT_FATAL(cx_index_select(a, 1, cx_from_i32((const int32_t[]){0, 3}, CX_SHAPE(2))), "index_select", "range");
    EXPECT_FATAL(cx_gather(a, 1, cx_from_i32((const int32_t[]){0, 5}, CX_SHAPE(2, 1))), "gather", "range");
    EXPECT_FATAL(cx_permute(a, (const int[]){0, 0}), "permute");
    EXPECT_FATAL(cx_slice(a, 1, 0, 2, 0), "slice", "step");
    EXPECT_FATAL(cx_maxout(a, 2), "maxout");
    EXPECT_FATAL(cx_clamp(a, 1.0f, -1.0f), "clamp");
    EXPECT_FATAL(cx_add(a, cx_from_i32((const int32_t[]){1, 2, 3}, CX_SHAPE(3))), "add", "F32");
    EXPECT_FATAL(cx_backward(cx_mul(cx_ones(CX_SHAPE(2)), cx_ones(CX_SHAPE(2)))), "backward");
    cx_tensor *r = cx_ones(CX_SHAPE(2));
    r->requires_grad = true;
    EXPECT_FATAL(cx_backward(cx_mul_scalar(r, 2.0f)), "backward", "one element");
    /* the library still works normally after a longjmp out of an error */
    cx_tensor *c = cx_add(a, cx_ones(CX_SHAPE(3)));
    CHECK_NEAR(CX_F(c)[5], 2, 0);
}

/* ---------------------------------------------------------------- arenas */
typedef struct {
    cx_tensor *w1, *b1, *w2, *b2;
} mlp;

static void mlp_init(mlp *m) {
    m->w1 = cx_param_new("w1", CX_SHAPE(16, 4));
    m->b1 = cx_param_new("b1", CX_SHAPE(16));
    m->w2 = cx_param_new("w2", CX_SHAPE(3, 16));
    m->b2 = cx_param_new("b2", CX_SHAPE(3));
    cx_fill_uniform(m->w1, -0.5f, 0.5f);
    cx_fill_uniform(m->w2, -0.25f, 0.25f);
}

static void mlp_free(mlp *m) {
    cx_tensor_free(m->w1);
    cx_tensor_free(m->b1);
    cx_tensor_free(m->w2);
    cx_tensor_free(m->b2);
}

/* One SGD step on a fixed toy batch; returns the loss. */
static float mlp_step(mlp *m, const float *X, const int32_t *Y, int N) {
    cx_tensor *x = cx_from_data(X, (const int[]){N, 4}, 2);
    cx_tensor *y = cx_from_i32(Y, &N, 1);
    cx_tensor *h = cx_tanh(cx_linear(x, m->w1, m->b1));
    cx_tensor *loss = cx_cross_entropy(cx_linear(h, m->w2, m->b2), y, CX_REDUCE_MEAN);
    cx_backward(loss);
    float l = cx_item(loss);
    cx_tensor *ps[4] = {m->w1, m->b1, m->w2, m->b2};
    for (int k = 0; k < 4; k++) {
        for (int64_t i = 0; i < ps[k]->numel; i++) CX_F(ps[k])[i] -= 0.5f * ps[k]->grad[i];
        cx_zero_grad(ps[k]);
    }
    return l;
}

static void make_toy(float *X, int32_t *Y, int N) {
    for (int i = 0; i < N; i++) {
        Y[i] = i % 3;
        for (int j = 0; j < 4; j++) X[i * 4 + j] = 0.3f * cx_rand_normal() + (j == Y[i] ? 1.0f : 0.0f);
    }
}

static void test_arena_step(void) {
    /* a fresh arena, so the peak measures this test only */
    cx_arena *ar = cx_arena_new(0);
    cx_arena *prev = cx_arena_use(ar);
    CHECK(cx_arena_current() == ar);
    CHECK(cx_arena_used(ar) == 0);
    mlp m;
    mlp_init(&m);
    float X[32 * 4];
    int32_t Y[32];
    make_toy(X, Y, 32);
    mlp_step(&m, X, Y, 32);
    size_t used = cx_arena_used(ar);
    CHECK_MSG(used > 32 * 16 * 4, "arena used %zu after a step", used);
    CHECK(cx_arena_peak(ar) >= used);
    cx_step_reset();
    CHECK(cx_arena_used(ar) == 0);
    /* many steps: the high-water mark stops growing after the first ones */
    float first = 0, last = 0;
    size_t peak10 = 0, used10 = 0;
    for (int s = 0; s < 1000; s++) {
        float l = mlp_step(&m, X, Y, 32);
        if (s == 0) first = l;
        last = l;
        if (s == 9) {
            peak10 = cx_arena_peak(ar);
            used10 = cx_arena_used(ar);
        }
        if (s >= 10) CHECK(cx_arena_used(ar) == used10); /* every step allocates the same */
        cx_step_reset();
        CHECK(cx_arena_used(ar) == 0);
    }
    CHECK_MSG(cx_arena_peak(ar) == peak10, "peak grew from %zu to %zu", peak10, cx_arena_peak(ar));
    CHECK_MSG(last < 0.5f * first, "loss %g -> %g: training did not progress", first, last);
    mlp_free(&m);
    cx_arena_use(prev);
    cx_arena_free(ar);
}

static void test_arena_use(void) {
    cx_arena *def = cx_arena_current();
    cx_arena *a = cx_arena_new(4096);
    CHECK(cx_arena_used(a) == 0 && cx_arena_peak(a) == 0);
    size_t def_used = cx_arena_used(def);
    cx_arena *prev = cx_arena_use(a);
    CHECK(prev == def);
    CHECK(cx_arena_current() == a);
    cx_tensor *t = cx_zeros(CX_SHAPE(100));
    CHECK(cx_arena_used(a) >= 400);
    CHECK(cx_arena_used(def) == def_used);
    /* growing past the first chunk */
    cx_tensor *big = cx_ones(CX_SHAPE(10000));
    CHECK(cx_arena_used(a) >= 40400);
    CHECK_NEAR(CX_F(big)[9999], 1, 0);
    CHECK_NEAR(CX_F(t)[99], 0, 0); /* earlier allocations stay valid */
    /* alignment */
    for (int i = 1; i < 200; i += 37) CHECK(((uintptr_t)cx_arena_alloc((size_t)i) & 63) == 0);
    size_t peak = cx_arena_peak(a);
    cx_step_reset(); /* resets the current arena, i.e. a */
    CHECK(cx_arena_used(a) == 0);
    CHECK(cx_arena_peak(a) == peak);
    CHECK(cx_arena_used(def) == def_used);
    /* a graph built in a works */
    cx_tensor *x = cx_full(CX_SHAPE(3), 2.0f);
    x->requires_grad = true;
    cx_backward(cx_sum(cx_mul(x, x)));
    CHECK_NEAR(x->grad[1], 4, 0);
    CHECK(cx_arena_use(prev) == a);
    CHECK(cx_arena_current() == def);
    cx_arena_free(a);
    /* NULL selects the built-in default arena */
    cx_arena *b = cx_arena_new(0);
    cx_arena_use(b);
    CHECK(cx_arena_current() == b);
    cx_arena_use(NULL);
    CHECK(cx_arena_current() == def);
    cx_arena_free(b);
    CHECK(cx_arena_used(NULL) == 0 && cx_arena_peak(NULL) == 0);
}

/* ---------------------------------------------------------------- deep graphs */
static void test_deep_tanh_chain(void) {
    cx_tensor *x = cx_from_data((const float[]){0.9f, -0.4f}, CX_SHAPE(2));
    x->requires_grad = true;
    cx_tensor *y = x;
    float v[2] = {0.9f, -0.4f};
    double d[2] = {1, 1};
    for (int k = 0; k < 200; k++) {
        y = cx_tanh(y);
        for (int i = 0; i < 2; i++) {
            v[i] = tanhf(v[i]);
            d[i] *= 1.0 - (double)v[i] * v[i];
        }
    }
    CHECK_NEAR(CX_F(y)[0], v[0], 1e-6);
    cx_backward(cx_sum(y));
    for (int i = 0; i < 2; i++) CHECK_NEAR(x->grad[i], d[i], 1e-4 * fabs(d[i]) + 1e-7);
    CHECK(d[0] > 1e-6 && d[1] > 1e-6); /* the chain does not vanish entirely */
}

static void test_very_deep_chain(void) {
    /* 100000 ops: a recursive backward would overflow the stack */
    cx_arena *a = cx_arena_new(0);
    cx_arena *prev = cx_arena_use(a);
    cx_tensor *x = cx_full(CX_SHAPE(1), 0.5f);
    x->requires_grad = true;
    cx_tensor *y = x;
    for (int k = 0; k < 100000; k++) y = (k & 1) ? cx_add_scalar(y, 0.25f) : cx_mul_scalar(y, 1.0f);
    cx_backward(y);
    CHECK_NEAR(x->grad[0], 1, 0);
    CHECK_NEAR(CX_F(y)[0], 0.5 + 50000 * 0.25, 0); /* exact in float */
    cx_arena_use(prev);
    cx_arena_free(a);
}

static void test_wide_fanout(void) {
    /* one tensor feeding 500 ops, all summed: gradient 500 */
    cx_tensor *x = cx_full(CX_SHAPE(4), 0.25f);
    x->requires_grad = true;
    cx_tensor *acc = cx_mul_scalar(x, 0.0f);
    for (int k = 0; k < 500; k++) acc = cx_add(acc, cx_mul_scalar(x, 1.0f));
    cx_backward(cx_sum(acc));
    for (int i = 0; i < 4; i++) CHECK_NEAR(x->grad[i], 500, 1e-3);
}

/* gradient flows into several leaves through concat/stack/index ops */
static void test_multi_leaf_routes(void) {
    cx_tensor *a = cx_full(CX_SHAPE(2, 2), 1.0f), *b = cx_full(CX_SHAPE(2, 2), 2.0f);
    a->requires_grad = b->requires_grad = true;
    cx_tensor *s = cx_stack((cx_tensor *[]){a, b, a}, 3, 0);       /* a used twice */
    cx_tensor *sel = cx_index_select(s, 0, cx_from_i32((const int32_t[]){1, 1, 0}, CX_SHAPE(3)));
    cx_backward(cx_sum(sel));
    /* s[1] = b selected twice; s[0] = a selected once; s[2] = a not selected */
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(a->grad[i], 1, 0);
        CHECK_NEAR(b->grad[i], 2, 0);
    }
}

/* ---- the op table and multi-output nodes */
static void test_op_table(void) {
    int n = cx_op_count();
    CHECK_MSG(n >= 80, "only %d ops in the table", n);
    for (int i = 0; i < n; i++) {
        const cx_op_desc *op = cx_op_at(i);
        CHECK(op && op->name && *op->name && cx_op_outputs(op) >= 1);
        if (i) CHECK_MSG(strcmp(cx_op_at(i - 1)->name, op->name) < 0, "table not sorted/unique at %s", op->name);
        CHECK(cx_op_find(op->name) == op);
    }
    /* core and nn ops are in the same table */
    const char *some[] = {"add", "relu", "matmul", "log_softmax", "cross_entropy", "conv2d", "max_pool2d",
                          "batch_norm", "embedding", "lstm_seq", "gru_cell"};
    for (size_t k = 0; k < sizeof some / sizeof *some; k++) CHECK_MSG(cx_op_find(some[k]), "no op %s", some[k]);
    CHECK(cx_op_find("no_such_op") == NULL);
    CHECK(cx_op_outputs(cx_op_find("lstm_seq")) == 3 && cx_op_outputs(cx_op_find("gru_seq")) == 2);
    CHECK(cx_op_find("sign")->backward == NULL && cx_op_find("relu")->backward != NULL);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 3), 0, 1);
    x->requires_grad = true;
    CHECK(cx_op_of(x) == NULL && cx_op_of(cx_relu(x)) == cx_op_find("relu"));
}

/* One LSTM node with three outputs: gradients flow from any subset of them
 * (an output nobody used counts as zero), and the backward of the node runs
 * once after every consumer of every output. */
typedef struct { int which; cx_tensor *R[3]; } mo_ctx;
static cx_tensor *multi_out_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    mo_ctx *c = user;
    cx_rnn_out o = cx_lstm_seq_ex(in[0], NULL, NULL, in[1], in[2], NULL, NULL, NULL, false, false);
    cx_tensor *outs[3] = {o.output, o.h, o.c}, *loss = NULL;
    for (int k = 0; k < 3; k++)
        if (c->which & (1 << k)) {
            cx_tensor *t = cx_sum(cx_mul(cx_tanh(outs[k]), c->R[k]));
            loss = loss ? cx_add(loss, t) : t;
        }
    /* the state outputs also feed a second path through the same node */
    if (c->which & 8) loss = cx_add(loss, cx_sum(cx_mul(o.h, o.c)));
    return loss;
}

static void test_multi_output_node(void) {
    cx_seed(5);
    const int T = 3, B = 2, I = 3, H = 4;
    cx_tensor *x = cx_randn(CX_SHAPE(T, B, I), 0, 1), *wih = cx_randn(CX_SHAPE(4 * H, I), 0, 0.5f),
              *whh = cx_randn(CX_SHAPE(4 * H, H), 0, 0.5f);
    x->requires_grad = wih->requires_grad = whh->requires_grad = true;
    mo_ctx c;
    c.R[0] = cx_randn(CX_SHAPE(T, B, H), 0, 1);
    c.R[1] = cx_randn(CX_SHAPE(B, H), 0, 1);
    c.R[2] = cx_randn(CX_SHAPE(B, H), 0, 1);
    cx_tensor *in[3] = {x, wih, whh};
    /* only c_n; only h_n; output and c_n; all three plus a second use of h and c */
    const int subsets[] = {4, 2, 5, 15};
    for (size_t k = 0; k < sizeof subsets / sizeof *subsets; k++) {
        c.which = subsets[k];
        double worst = cx_gradcheck(multi_out_fn, in, 3, &c, 1e-2f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "outputs %d: gradcheck ratio %g", subsets[k], worst);
    }
    /* the three outputs are one node; the graph dump shows it once, outputs by index */
    c.which = 15;
    cx_tensor *loss = multi_out_fn(in, 3, &c);
    cx_rnn_out o = cx_lstm_seq_ex(x, NULL, NULL, wih, whh, NULL, NULL, NULL, false, false);
    CHECK(o.output->node == o.h->node && o.h->node == o.c->node);
    char buf[8192] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    CHECK(f != NULL);
    if (f) {
        cx_graph_dump(loss, f);
        fclose(f);
    }
    const char *p = strstr(buf, "lstm_seq(");
    CHECK_MSG(p && !strstr(p + 1, "lstm_seq("), "dump:\n%s", buf);
    CHECK_MSG(strstr(buf, ".1 [2, 4]") && strstr(buf, ".2 [2, 4]") && strstr(buf, "-> [3, 2, 4], [2, 4], [2, 4]"),
              "dump:\n%s", buf);
    /* check mode names the multi-output op: an infinite initial state times
     * zero recurrent weights gives NaN gates */
    cx_tensor *hinf = cx_full(CX_SHAPE(B, H), INFINITY);
    cx_set_check_numerics(true);
    EXPECT_FATAL(cx_lstm_seq_ex(x, hinf, NULL, wih, cx_zeros(CX_SHAPE(4 * H, H)), NULL, NULL, NULL, false, false),
                 "op 'lstm_seq'", "already holds inf");
    cx_set_check_numerics(false);
}

/* check mode and attention masks: a -inf fill is by design (no stop), the
 * softmax over it is finite; a fully masked row's NaN stops at the softmax */
static void test_check_numerics_masks(void) {
    cx_tensor *scores = cx_randn(CX_SHAPE(2, 4), 0, 1);
    scores->requires_grad = true;
    int32_t m[8] = {0, 0, 1, 1, 0, 1, 0, 1};
    cx_tensor *mask = cx_from_i32(m, CX_SHAPE(2, 4));
    cx_set_check_numerics(true);
    /* mask, then scale and transpose twice: the -inf passes through them */
    cx_tensor *masked = cx_transpose(cx_mul_scalar(cx_masked_fill(scores, mask, -INFINITY), 0.5f), 0, 1);
    cx_tensor *a = cx_softmax(cx_transpose(masked, 0, 1), -1);
    CHECK(CX_F(a)[2] == 0.0f && CX_F(a)[3] == 0.0f);
    cx_backward(cx_sum(cx_mul(a, a)));
    CHECK(scores->grad != NULL && scores->grad[2] == 0.0f);
    int32_t all[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    cx_tensor *full = cx_from_i32(all, CX_SHAPE(2, 4));
    EXPECT_FATAL(cx_softmax(cx_masked_fill(scores, full, -INFINITY), -1), "op 'softmax' produced nan");
    cx_set_check_numerics(false);
}

/* softmax and log_softmax over a few classes (the policy heads' path, 64
 * rows at a time) against a double reference: 1 to 7 classes, 200 rows (a
 * partial last block), logits up to +-60, rows with -inf entries (masked
 * actions), a row of equal values. */
static void test_softmax_few_classes(void) {
    enum { R = 200 };
    for (int n = 1; n <= 7; n++) {
        float v[R * 7];
        for (int i = 0; i < R * n; i++) v[i] = (cx_rand_uniform() - 0.5f) * (i % 3 ? 8.0f : 120.0f);
        for (int k = 0; k < n; k++) v[5 * n + k] = 3.25f;             /* equal logits */
        if (n > 1) v[7 * n + 1] = -INFINITY, v[130 * n] = -INFINITY;  /* masked actions */
        cx_tensor *x = cx_from_data(v, CX_SHAPE(R, n));
        const float *sm = CX_F(cx_softmax(x, -1)), *ls = CX_F(cx_log_softmax(x, -1));
        double worst_p = 0, worst_l = 0;
        for (int r = 0; r < R; r++) {
            double m = -INFINITY, s = 0;
            for (int k = 0; k < n; k++) m = v[r * n + k] > m ? v[r * n + k] : m;
            for (int k = 0; k < n; k++) s += exp((double)v[r * n + k] - m);
            for (int k = 0; k < n; k++) {
                const double lp = ((double)v[r * n + k] - m) - log(s), p = exp(lp);
                const float gp = sm[r * n + k], gl = ls[r * n + k];
                if (isinf(lp)) {
                    CHECK_MSG(gp == 0.0f && gl == -INFINITY, "n %d row %d: masked class gives %g, %g", n, r, gp, gl);
                    continue;
                }
                /* float's x - max alone is off by half an ulp of |lp|: compared as logs */
                if (p < 1e-37) worst_p = fmax(worst_p, gp < 1e-37f ? 0.0 : 1.0);
                else worst_p = fmax(worst_p, fabs(log((double)gp) - lp) / fmax(1.0, fabs(lp)));
                worst_l = fmax(worst_l, fabs(gl - lp) / fmax(1.0, fabs(lp)));
            }
        }
        CHECK_MSG(worst_p < 1e-6 && worst_l < 1e-6, "n %d: relative error %g (log of softmax), %g (log_softmax)", n,
                  worst_p, worst_l);
        CHECK(sm[5 * n] == sm[5 * n + n - 1]);
    }
}

/* cx_set_keep_op_grads(false): the leaves' gradients bit for bit those of
 * the default, op results without one (the root keeps its own), fewer bytes
 * of the step arena (the buffers were reused), a second backward over the
 * same graph, a multi-output node, the fused batch norm with a residual
 * that is its own input; the flag is per thread and a failed backward in
 * cx_try restores it. */
static cx_tensor *recycle_graph(cx_tensor *x, cx_tensor *w1, cx_tensor *w2, cx_tensor *wih, cx_tensor *whh,
                                cx_tensor *bw, cx_tensor *bb, cx_tensor **mid) {
    cx_tensor *h = cx_tanh(cx_matmul(x, w1));                                      /* [16, 32] */
    cx_tensor *r = cx_batch_norm_relu(h, h, NULL, NULL, bw, bb, true, 0.1f, 1e-5f); /* residual = its input */
    cx_tensor *z = cx_add(cx_matmul(r, w2), cx_mul(r, r));                          /* r used three times */
    cx_rnn_out o = cx_lstm_seq_ex(cx_reshape(z, CX_SHAPE(4, 4, 32)), NULL, NULL, wih, whh, NULL, NULL, NULL, false,
                                  false); /* [4, 4, 8] */
    *mid = h;
    return cx_add(cx_sum(cx_mul(o.output, o.output)), cx_add(cx_sum(o.c), cx_sum(cx_sigmoid(z))));
}
static cx_status recycle_fail(void *u) {
    (void)u;
    cx_set_keep_op_grads(false);
    cx_fatal("deliberate");
    return CX_OK;
}
static void test_keep_op_grads(void) {
    cx_seed(77);
    /* persistent leaves: the step arena is reset between the two runs */
    static const int shapes[7][2] = {{16, 8}, {8, 32}, {32, 32}, {32, 32}, {32, 8}, {32, 0}, {32, 0}};
    static const float mean[7] = {0, 0, 0, 0, 0, 1, 0}, sd[7] = {1, 0.4f, 0.3f, 0.3f, 0.3f, 0.2f, 0.2f};
    cx_tensor *leaves[7];
    const int nl = 7;
    for (int i = 0; i < nl; i++) {
        leaves[i] = cx_param_new("leaf", shapes[i], shapes[i][1] ? 2 : 1);
        cx_fill_normal(leaves[i], mean[i], sd[i]);
    }
    cx_tensor *x = leaves[0], *w1 = leaves[1], *w2 = leaves[2], *wih = leaves[3], *whh = leaves[4], *bw = leaves[5],
              *bb = leaves[6];
    float *g[2][7];
    size_t used[2];
    CHECK(cx_keep_op_grads());
    for (int keep = 1; keep >= 0; keep--) {
        for (int i = 0; i < nl; i++) cx_zero_grad(leaves[i]);
        cx_step_reset();
        cx_set_keep_op_grads(keep);
        cx_tensor *mid;
        cx_tensor *loss = recycle_graph(x, w1, w2, wih, whh, bw, bb, &mid);
        const size_t before = cx_arena_used(cx_arena_current());
        cx_backward(loss);
        cx_backward(loss); /* a second pass over the same graph adds the same again */
        used[keep] = cx_arena_used(cx_arena_current()) - before;
        CHECK(cx_keep_op_grads() == (bool)keep);
        CHECK(loss->grad != NULL);
        CHECK((mid->grad != NULL) == (bool)keep);
        for (int i = 0; i < nl; i++) {
            CHECK(leaves[i]->grad != NULL);
            g[keep][i] = malloc((size_t)leaves[i]->numel * sizeof(float));
            memcpy(g[keep][i], leaves[i]->grad, (size_t)leaves[i]->numel * sizeof(float));
        }
    }
    cx_set_keep_op_grads(true);
    for (int i = 0; i < nl; i++) {
        CHECK_MSG(!memcmp(g[0][i], g[1][i], (size_t)leaves[i]->numel * sizeof(float)), "leaf %d's gradient differs", i);
        free(g[0][i]);
        free(g[1][i]);
    }
    CHECK_MSG(used[0] < used[1], "recycling used %zu bytes of the arena, keeping %zu", used[0], used[1]);
    /* a failed backward in cx_try: the flag as it was before the try */
    CHECK(cx_try(recycle_fail, NULL) != CX_OK);
    CHECK(cx_keep_op_grads());
    cx_step_reset();
    for (int i = 0; i < nl; i++) cx_tensor_free(leaves[i]);
}

int main(void) {
    cx_seed(12345);
    RUN(test_value_used_twice);
    RUN(test_backward_with_upstream);
    RUN(test_param_grad_accumulates);
    RUN(test_two_backward_passes_shared_graph);
    RUN(test_no_grad);
    RUN(test_no_grad_inputs_without_grad);
    RUN(test_detach);
    RUN(test_op_names);
    RUN(test_non_differentiable_ops);
    RUN(test_tie_gradients);
    RUN(test_gradcheck_preserves_grads);
    RUN(test_training_flag_dropout);
    RUN(test_check_numerics_forward);
    RUN(test_check_numerics_input);
    RUN(test_check_numerics_backward);
    RUN(test_shape_errors);
    RUN(test_arena_step);
    RUN(test_arena_use);
    RUN(test_deep_tanh_chain);
    RUN(test_very_deep_chain);
    RUN(test_wide_fanout);
    RUN(test_multi_leaf_routes);
    RUN(test_op_table);
    RUN(test_multi_output_node);
    RUN(test_check_numerics_masks);
    RUN(test_softmax_few_classes);
    RUN(test_keep_op_grads);
    TEST_END();
}
