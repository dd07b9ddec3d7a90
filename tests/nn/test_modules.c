/* Modules: Linear layout / init / forward, Sequential naming (flat and nested),
 * the MLP builder, activation and dropout modules, a small training run, and
 * parameter save / load through safetensors. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"


static char tmpdir[256];

static void path_in_tmp(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static cx_params params_of(cx_module *m) {
    cx_params p;
    cx_params_init(&p);
    cx_module_params(m, &p);
    return p;
}

/* ---------------------------------------------------------------- Linear */
static void test_linear_layout_and_init(void) {
    cx_seed(11);
    const int in = 50, out = 7;
    cx_module *lin = cx_linear_new(in, out, true);
    CHECK(!strcmp(cx_module_kind(lin), "Linear"));
    cx_tensor *w = cx_linear_weight(lin), *b = cx_linear_bias(lin);
    CHECK(w->ndim == 2 && w->shape[0] == out && w->shape[1] == in);
    CHECK(b && b->ndim == 1 && b->shape[0] == out);
    CHECK(w->dtype == CX_F32 && w->requires_grad && w->persistent);
    CHECK(b->requires_grad && b->persistent);
    CHECK(w->name && !strcmp(w->name, "weight"));
    CHECK(b->name && !strcmp(b->name, "bias"));

    double bound = 1.0 / sqrt((double)in);
    int w_in = 1, b_in = 1, distinct = 0;
    double wmin = 1e9, wmax = -1e9;
    for (int64_t i = 0; i < w->numel; i++) {
        float v = CX_F(w)[i];
        if (!(fabs(v) <= bound)) w_in = 0;
        if (v != CX_F(w)[0]) distinct = 1;
        if (v < wmin) wmin = v;
        if (v > wmax) wmax = v;
    }
    for (int64_t i = 0; i < b->numel; i++)
        if (!(fabs(CX_F(b)[i]) <= bound)) b_in = 0;
    CHECK_MSG(w_in, "weight outside U(-%g, %g)", bound, bound);
    CHECK_MSG(b_in, "bias outside U(-%g, %g)", bound, bound);
    CHECK(distinct);
    /* 350 draws of U(-b, b) spread over most of the interval */
    CHECK(wmin < -0.8 * bound && wmax > 0.8 * bound);
    int bdistinct = 0;
    for (int i = 1; i < out; i++) bdistinct |= CX_F(b)[i] != CX_F(b)[0];
    CHECK(bdistinct);

    cx_params p = params_of(lin);
    CHECK(p.n == 2 && p.t[0] == w && p.t[1] == b);
    CHECK(cx_params_count(&p) == (int64_t)in * out + out);
    cx_params_free(&p);

    char desc[64];
    cx_module_describe(lin, desc, sizeof desc);
    CHECK_MSG(strstr(desc, "50") && strstr(desc, "7"), "describe: '%s'", desc);
    cx_module_free(lin);

    cx_module *nb = cx_linear_new(3, 4, false);
    CHECK(cx_linear_bias(nb) == NULL);
    p = params_of(nb);
    CHECK(p.n == 1 && cx_params_count(&p) == 12);
    cx_params_free(&p);
    cx_module_free(nb);

    EXPECT_FATAL(cx_linear_new(0, 3, true), "positive");
    cx_module *act = cx_activation_new(CX_ACT_RELU, 0);
    EXPECT_FATAL(cx_linear_weight(act), "Linear");
    cx_module_free(act);
}

static void test_linear_forward_by_hand(void) {
    cx_seed(5);
    const int N = 4, in = 3, out = 2;
    cx_module *lin = cx_linear_new(in, out, true);
    float *w = CX_F(cx_linear_weight(lin)), *b = CX_F(cx_linear_bias(lin));
    const float W[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
    const float B[2] = {0.1f, -0.2f};
    memcpy(w, W, sizeof W);
    memcpy(b, B, sizeof B);
    float xs[12];
    for (int i = 0; i < N * in; i++) xs[i] = (float)(i % 5) - 1.5f + 0.1f * (float)i;
    cx_tensor *x = cx_from_data(xs, CX_SHAPE(N, in));
    cx_tensor *y = cx_module_forward(lin, x);
    CHECK(y->ndim == 2 && y->shape[0] == N && y->shape[1] == out);
    float ref[8];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = B[o];
            for (int k = 0; k < in; k++) s += (double)xs[n * in + k] * W[o * in + k];
            ref[n * out + o] = (float)s;
        }
    cxt_allclose(CX_F(y), ref, N * out, 1e-6, 1e-6, "x W^T + b");
    /* equal to the functional form */
    cx_tensor *y2 = cx_linear(x, cx_linear_weight(lin), cx_linear_bias(lin));
    cxt_allclose(CX_F(y), CX_F(y2), N * out, 0, 0, "module == cx_linear");

    /* gradients reach the parameters */
    cx_backward(cx_sum(y));
    cx_tensor *wt = cx_linear_weight(lin), *bt = cx_linear_bias(lin);
    CHECK(wt->grad && bt->grad);
    if (wt->grad && bt->grad) {
        /* d sum / d W[o,k] = sum_n x[n,k]; d sum / d b[o] = N */
        for (int o = 0; o < out; o++) {
            CHECK_NEAR(bt->grad[o], N, 1e-6);
            for (int k = 0; k < in; k++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += xs[n * in + k];
                CHECK_NEAR(wt->grad[o * in + k], s, 1e-5);
            }
        }
    }
    cx_module_free(lin);
}

/* ---------------------------------------------------------------- Sequential */
static void test_sequential_names(void) {
    cx_module *s = cx_sequential_new();
    CHECK(!strcmp(cx_module_kind(s), "Sequential"));
    cx_sequential_add(s, NULL, cx_linear_new(4, 3, true));
    cx_sequential_add(s, NULL, cx_activation_new(CX_ACT_TANH, 0));
    cx_sequential_add(s, NULL, cx_linear_new(3, 2, false));
    CHECK(cx_sequential_len(s) == 3);
    cx_params p = params_of(s);
    CHECK(p.n == 3);
    if (p.n == 3) {
        CHECK_MSG(!strcmp(p.t[0]->name, "0.weight"), "got '%s'", p.t[0]->name);
        CHECK_MSG(!strcmp(p.t[1]->name, "0.bias"), "got '%s'", p.t[1]->name);
        CHECK_MSG(!strcmp(p.t[2]->name, "2.weight"), "got '%s'", p.t[2]->name);
    }
    CHECK(cx_params_count(&p) == 4 * 3 + 3 + 3 * 2);
    CHECK(cx_params_find(&p, "2.weight") == cx_linear_weight(cx_sequential_get(s, 2)));
    cx_params_free(&p);
    EXPECT_FATAL(cx_sequential_get(s, 3), "out of range");
    cx_module_free(s);

    cx_module *named = cx_sequential_new();
    cx_sequential_add(named, "fc1", cx_linear_new(4, 3, true));
    cx_sequential_add(named, "act", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(named, "fc2", cx_linear_new(3, 2, true));
    p = params_of(named);
    const char *want[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    CHECK(p.n == 4);
    for (int i = 0; i < p.n && i < 4; i++) CHECK_MSG(!strcmp(p.t[i]->name, want[i]), "param %d '%s'", i, p.t[i]->name);
    cx_params_free(&p);
    /* forward runs the children in order */
    cx_seed(1);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 4), 0, 1);
    cx_tensor *y = cx_module_forward(named, x);
    cx_tensor *r = cx_module_forward(cx_sequential_get(named, 0), x);
    r = cx_relu(r);
    r = cx_module_forward(cx_sequential_get(named, 2), r);
    CHECK(y->shape[0] == 5 && y->shape[1] == 2);
    cxt_allclose(CX_F(y), CX_F(r), 10, 0, 0, "sequential forward");
    cx_module_free(named);
}

static void test_sequential_nested(void) {
    cx_module *block = cx_sequential_new();
    cx_sequential_add(block, "fc", cx_linear_new(6, 5, true));
    cx_sequential_add(block, "act", cx_activation_new(CX_ACT_RELU, 0));
    cx_module *inner = cx_sequential_new();
    cx_sequential_add(inner, NULL, cx_linear_new(5, 4, true));
    cx_sequential_add(block, "inner", inner);
    cx_module *net = cx_sequential_new();
    cx_sequential_add(net, "block", block);
    cx_sequential_add(net, "head", cx_linear_new(4, 3, true));
    cx_params p = params_of(net);
    const char *want[6] = {"block.fc.weight", "block.fc.bias", "block.inner.0.weight",
                           "block.inner.0.bias", "head.weight", "head.bias"};
    CHECK(p.n == 6);
    for (int i = 0; i < p.n && i < 6; i++)
        CHECK_MSG(!strcmp(p.t[i]->name, want[i]), "param %d is '%s', expected '%s'", i, p.t[i]->name, want[i]);
    CHECK(cx_params_count(&p) == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
    cx_params_free(&p);
    cx_tensor *x = cx_ones(CX_SHAPE(2, 6));
    cx_tensor *y = cx_module_forward(net, x);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 3);
    cx_module_free(net);
}

static void test_sequential_errors(void) {
    cx_module *s = cx_sequential_new();
    cx_sequential_add(s, "fc", cx_linear_new(2, 2, true));
    cx_module *dup = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_sequential_add(s, "fc", dup), "duplicate child name 'fc'");
    cx_module_free(dup); /* not taken over on error */
    /* unnamed children take their index: "1" is now taken by index */
    cx_sequential_add(s, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_module *dup2 = cx_activation_new(CX_ACT_RELU, 0);
    EXPECT_FATAL(cx_sequential_add(s, "1", dup2), "duplicate");
    cx_module_free(dup2);
    cx_module *dotted = cx_activation_new(CX_ACT_RELU, 0);
    EXPECT_FATAL(cx_sequential_add(s, "a.b", dotted), "invalid child name");
    cx_module_free(dotted);
    EXPECT_FATAL(cx_sequential_add(s, "x", NULL), "NULL");
    cx_module *lin = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_sequential_add(lin, "x", s), "Sequential");
    EXPECT_FATAL(cx_sequential_len(lin), "Sequential");
    cx_module_free(lin);
    CHECK(cx_sequential_len(s) == 2);
    cx_module_free(s);
}

/* ---------------------------------------------------------------- MLP */
static void test_mlp_builder(void) {
    const int sizes[4] = {10, 8, 6, 3};
    cx_module *net = cx_mlp_new(sizes, 4, CX_ACT_RELU, 0);
    cx_params p = params_of(net);
    const char *want[6] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"};
    CHECK(p.n == 6);
    for (int i = 0; i < p.n && i < 6; i++) CHECK_MSG(!strcmp(p.t[i]->name, want[i]), "param %d '%s'", i, p.t[i]->name);
    if (p.n == 6) {
        CHECK(p.t[0]->shape[0] == 8 && p.t[0]->shape[1] == 10);
        CHECK(p.t[2]->shape[0] == 6 && p.t[2]->shape[1] == 8);
        CHECK(p.t[4]->shape[0] == 3 && p.t[4]->shape[1] == 6);
    }
    CHECK(cx_params_count(&p) == 10 * 8 + 8 + 8 * 6 + 6 + 6 * 3 + 3);
    cx_params_free(&p);
    /* fc1 act1 fc2 act2 fc3 */
    CHECK(cx_sequential_len(net) == 5);
    CHECK(!strcmp(cx_module_kind(cx_sequential_get(net, 1)), "Activation"));
    cx_module_free(net);

    /* with dropout: fc1 act1 drop1 fc2 */
    cx_module *d = cx_mlp_new(sizes, 3, CX_ACT_TANH, 0.5f);
    CHECK(cx_sequential_len(d) == 4);
    CHECK(!strcmp(cx_module_kind(cx_sequential_get(d, 2)), "Dropout"));
    p = params_of(d);
    CHECK(p.n == 4 && cx_params_count(&p) == 10 * 8 + 8 + 8 * 6 + 6);
    cx_params_free(&p);
    cx_module_free(d);

    /* one layer: no activation */
    cx_module *one = cx_mlp_new(sizes, 2, CX_ACT_RELU, 0);
    CHECK(cx_sequential_len(one) == 1);
    cx_module_free(one);
    EXPECT_FATAL(cx_mlp_new(sizes, 1, CX_ACT_RELU, 0), "at least");
}

/* ---------------------------------------------------------------- activations */
static cx_tensor *direct(cx_act a, float param, cx_tensor *x) {
    switch (a) {
    case CX_ACT_IDENTITY: return x;
    case CX_ACT_RELU: return cx_relu(x);
    case CX_ACT_LEAKY_RELU: return cx_leaky_relu(x, param != 0 ? param : 0.01f);
    case CX_ACT_SIGMOID: return cx_sigmoid(x);
    case CX_ACT_TANH: return cx_tanh(x);
    case CX_ACT_ELU: return cx_elu(x, param != 0 ? param : 1.0f);
    case CX_ACT_GELU: return cx_gelu(x);
    case CX_ACT_SOFTPLUS: return cx_softplus(x, 1.0f, 20.0f);
    case CX_ACT_MAXOUT: return cx_maxout(x, param >= 1 ? (int)param : 2);
    case CX_ACT_SIGN: return cx_threshold_unit(x);
    case CX_ACT_SOFTMAX: return cx_softmax(x, -1);
    case CX_ACT_LOG_SOFTMAX: return cx_log_softmax(x, -1);
    }
    return NULL;
}

static void test_activation_modules(void) {
    cx_seed(3);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 6), 0, 2);
    CX_F(x)[0] = 0.0f; /* the threshold unit maps 0 to +1 */
    const float params[2] = {0.0f, 0.3f};
    int n_acts = 0;
    for (int a = CX_ACT_IDENTITY; a <= CX_ACT_LOG_SOFTMAX; a++, n_acts++) {
        for (int k = 0; k < 2; k++) {
            float prm = params[k];
            if (a == CX_ACT_MAXOUT) prm = k ? 3.0f : 0.0f;
            cx_module *m = cx_activation_new((cx_act)a, prm);
            CHECK(!strcmp(cx_module_kind(m), "Activation"));
            cx_params p = params_of(m);
            CHECK(p.n == 0);
            cx_params_free(&p);
            cx_tensor *ym = cx_module_forward(m, x);
            cx_tensor *yd = direct((cx_act)a, prm, x);
            cx_tensor *yf = cx_activate((cx_act)a, prm, x);
            CHECK_MSG(cx_same_shape(ym, yd), "%s shape", cx_act_name((cx_act)a));
            if (cx_same_shape(ym, yd)) {
                char what[64];
                snprintf(what, sizeof what, "%s(param %g)", cx_act_name((cx_act)a), (double)prm);
                cxt_allclose(CX_F(ym), CX_F(yd), ym->numel, 0, 0, what);
                cxt_allclose(CX_F(yf), CX_F(yd), ym->numel, 0, 0, what);
            }
            char desc[64];
            cx_module_describe(m, desc, sizeof desc);
            CHECK_MSG(strstr(desc, cx_act_name((cx_act)a)) != NULL, "describe '%s'", desc);
            cx_module_free(m);
        }
    }
    CHECK(n_acts == 12);
    /* spot values, independent of the ops */
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_LEAKY_RELU, 0, cx_scalar(-2.0f))), -0.02, 1e-7);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_LEAKY_RELU, 0.2f, cx_scalar(-2.0f))), -0.4, 1e-7);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_ELU, 0, cx_scalar(-1.0f))), exp(-1.0) - 1.0, 1e-6);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_TANH, 0, cx_scalar(0.5f))), tanh(0.5), 1e-6);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_SIGMOID, 0, cx_scalar(1.0f))), 1.0 / (1.0 + exp(-1.0)), 1e-6);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_SIGN, 0, cx_scalar(0.0f))), 1.0, 0);
    CHECK_NEAR(cx_item(cx_activate(CX_ACT_SIGN, 0, cx_scalar(-0.1f))), -1.0, 0);
    /* maxout default group size 2 halves the last axis */
    cx_tensor *mo = cx_activate(CX_ACT_MAXOUT, 0, x);
    CHECK(mo->ndim == 2 && mo->shape[0] == 4 && mo->shape[1] == 3);
    CHECK_NEAR(CX_F(mo)[1], fmax(CX_F(x)[2], CX_F(x)[3]), 0);
    EXPECT_FATAL(cx_activation_new((cx_act)99, 0), "unknown activation");
}

static void test_act_parse_roundtrip(void) {
    for (int a = CX_ACT_IDENTITY; a <= CX_ACT_LOG_SOFTMAX; a++) {
        const char *name = cx_act_name((cx_act)a);
        cx_act back = (cx_act)-1;
        CHECK_MSG(cx_act_parse(name, &back), "'%s' does not parse", name);
        CHECK_MSG(back == (cx_act)a, "'%s' parsed to %d, expected %d", name, (int)back, a);
    }
    const char *documented[10] = {"relu", "tanh", "sigmoid", "leaky_relu", "elu",
                                  "gelu", "softplus", "identity", "sign", "maxout"};
    for (int i = 0; i < 10; i++) {
        cx_act a;
        CHECK_MSG(cx_act_parse(documented[i], &a) && !strcmp(cx_act_name(a), documented[i]), "%s", documented[i]);
    }
    cx_act a = CX_ACT_TANH;
    CHECK(!cx_act_parse("Relu", &a));
    CHECK(!cx_act_parse("", &a));
    CHECK(!cx_act_parse("swish", &a));
    CHECK(!cx_act_parse("relu ", &a));
    CHECK(a == CX_ACT_TANH); /* untouched on failure */
    CHECK(!strcmp(cx_act_name(CX_ACT_RELU), "relu"));
    CHECK(!strcmp(cx_act_name((cx_act)42), "?"));
}

/* ---------------------------------------------------------------- dropout */
static void test_dropout_module(void) {
    cx_seed(9);
    cx_module *d = cx_dropout_new(0.5f);
    CHECK(!strcmp(cx_module_kind(d), "Dropout"));
    cx_params p = params_of(d);
    CHECK(p.n == 0);
    cx_params_free(&p);
    cx_tensor *x = cx_randn(CX_SHAPE(20, 50), 1, 1);
    CHECK(cx_is_training());
    cx_set_training(false);
    cx_tensor *y = cx_module_forward(d, x);
    cx_set_training(true);
    CHECK(cx_same_shape(x, y));
    cxt_allclose(CX_F(y), CX_F(x), x->numel, 0, 0, "dropout in eval mode");

    /* training mode: each element either 0 or doubled, about half dropped */
    cx_tensor *yt = cx_module_forward(d, x);
    int64_t zeros = 0, bad = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = CX_F(yt)[i];
        if (v == 0.0f) zeros++;
        else if (fabsf(v - 2.0f * CX_F(x)[i]) > 1e-6f * (1 + fabsf(v))) bad++;
    }
    CHECK(bad == 0);
    CHECK_MSG(zeros > 400 && zeros < 600, "%lld of 1000 dropped", (long long)zeros);

    /* inside an MLP: eval mode is deterministic and equal to the same net without dropout */
    const int sizes[3] = {50, 16, 4};
    cx_seed(21);
    cx_module *with = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0.5f);
    cx_seed(21);
    cx_module *without = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0);
    cx_set_training(false);
    cx_tensor *a = cx_module_forward(with, x), *b = cx_module_forward(without, x);
    cx_set_training(true);
    cxt_allclose(CX_F(a), CX_F(b), a->numel, 0, 0, "MLP with dropout in eval mode");
    cx_module_free(with);
    cx_module_free(without);
    cx_module_free(d);

    EXPECT_FATAL(cx_dropout_new(1.5f), "Dropout");
    EXPECT_FATAL(cx_dropout_new(-0.1f), "Dropout");
}

/* ---------------------------------------------------------------- training */
static void test_mlp_learns_toy_problem(void) {
    /* two interleaved classes on a ring pattern (not linearly separable):
     * class 1 iff x0 * x1 > 0 (XOR of the signs) */
    cx_seed(1234);
    enum { N = 128 };
    float xs[N * 2];
    int32_t ys[N];
    for (int i = 0; i < N; i++) {
        float a = cx_rand_uniform() * 2 - 1, b = cx_rand_uniform() * 2 - 1;
        if (fabsf(a) < 0.1f) a = a < 0 ? -0.1f - a : 0.1f + a;
        if (fabsf(b) < 0.1f) b = b < 0 ? -0.1f - b : 0.1f + b;
        xs[2 * i] = a;
        xs[2 * i + 1] = b;
        ys[i] = (a * b > 0) ? 1 : 0;
    }
    const int sizes[3] = {2, 32, 2};
    cx_module *net = cx_mlp_new(sizes, 3, CX_ACT_TANH, 0);
    cx_params ps = params_of(net);
    cx_adam_opts o = cx_adam_defaults();
    o.lr = 0.03;
    cx_optim *opt = cx_adam_new(&ps, &o);
    double first = 0, last = 0;
    for (int step = 0; step < 400; step++) {
        cx_tensor *x = cx_from_data(xs, CX_SHAPE(N, 2));
        cx_tensor *y = cx_from_i32(ys, CX_SHAPE(N));
        cx_optim_zero_grad(opt);
        cx_tensor *loss = cx_cross_entropy(cx_module_forward(net, x), y, CX_REDUCE_MEAN);
        double lv = cx_item(loss);
        if (step == 0) first = lv;
        last = lv;
        cx_backward(loss);
        cx_optim_step(opt);
        cx_step_reset();
    }
    CHECK_MSG(first > 0.6, "initial loss %g (chance is ln 2)", first);
    CHECK_MSG(last < 0.1, "final loss %g did not go below 0.1 (start %g)", last, first);
    /* accuracy on the training set */
    cx_set_training(false);
    cx_tensor *logits = cx_module_forward(net, cx_from_data(xs, CX_SHAPE(N, 2)));
    cx_tensor *pred = cx_argmax(logits, 1);
    int correct = 0;
    for (int i = 0; i < N; i++) correct += CX_I32P(pred)[i] == ys[i];
    cx_set_training(true);
    CHECK_MSG(correct >= N - 2, "%d of %d correct", correct, N);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net);
}

/* ---------------------------------------------------------------- save / load */
static void test_save_load_roundtrip(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "mlp.safetensors");
    const int sizes[4] = {6, 9, 7, 3};
    cx_seed(100);
    cx_module *a = cx_mlp_new(sizes, 4, CX_ACT_GELU, 0);
    cx_params pa = params_of(a);
    CHECK(cx_params_save(path, &pa) == CX_OK);

    cx_seed(200); /* different weights */
    cx_module *b = cx_mlp_new(sizes, 4, CX_ACT_GELU, 0);
    cx_params pb = params_of(b);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 6), 0, 1);
    cx_tensor *ya = cx_module_forward(a, x);
    cx_tensor *yb0 = cx_module_forward(b, x);
    int differ = 0;
    for (int i = 0; i < 15; i++) differ |= CX_F(ya)[i] != CX_F(yb0)[i];
    CHECK(differ);

    cx_status st = cx_params_load(path, &pb, true);
    CHECK_MSG(st == CX_OK, "load: %s", cx_last_error());
    cx_tensor *yb = cx_module_forward(b, x);
    cxt_allclose(CX_F(yb), CX_F(ya), 15, 0, 0, "outputs after load");
    for (int i = 0; i < pa.n && i < pb.n; i++)
        CHECK(memcmp(pa.t[i]->data, pb.t[i]->data, (size_t)pa.t[i]->numel * sizeof(float)) == 0);

    /* the file holds exactly the state_dict names */
    cx_st_file *f = NULL;
    CHECK(cx_st_load(path, &f) == CX_OK);
    if (f) {
        CHECK(f->n == 6);
        cx_tensor *w1 = cx_st_get(f, "fc1.weight");
        CHECK(w1 && w1->shape[0] == 9 && w1->shape[1] == 6);
        CHECK(cx_st_get(f, "fc3.bias") != NULL);
        cx_st_free(f);
    }
    cx_params_free(&pa);
    cx_params_free(&pb);
    cx_module_free(a);
    cx_module_free(b);
}

static void test_load_wrong_shape(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "small.safetensors");
    const int sizes[3] = {4, 8, 3};
    cx_seed(7);
    cx_module *a = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0);
    cx_params pa = params_of(a);
    CHECK(cx_params_save(path, &pa) == CX_OK);

    /* hidden width differs: fc1.weight [8,4] in the file, model [10,4] */
    const int wider[3] = {4, 10, 3};
    cx_module *b = cx_mlp_new(wider, 3, CX_ACT_RELU, 0);
    cx_params pb = params_of(b);
    cx_tensor *before = cx_tensor_clone(pb.t[0]);
    cx_status st = cx_params_load(path, &pb, true);
    CHECK(st == CX_ERR_SHAPE || st == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "fc1.weight") != NULL, "message: %s", cx_last_error());
    CHECK_MSG(strstr(cx_last_error(), "small.safetensors") != NULL, "message: %s", cx_last_error());
    CHECK(memcmp(before->data, pb.t[0]->data, (size_t)before->numel * sizeof(float)) == 0);
    /* non-strict mode still rejects a shape mismatch */
    st = cx_params_load(path, &pb, false);
    CHECK(st == CX_ERR_SHAPE || st == CX_ERR_FORMAT);
    cx_tensor_free(before);
    cx_params_free(&pb);
    cx_module_free(b);

    /* an extra layer in the model: fc3 missing from the file */
    const int deeper[4] = {4, 8, 3, 3};
    cx_module *c = cx_mlp_new(deeper, 4, CX_ACT_RELU, 0);
    cx_params pc = params_of(c);
    st = cx_params_load(path, &pc, true);
    CHECK(st == CX_ERR_NOTFOUND);
    CHECK_MSG(strstr(cx_last_error(), "fc3.weight") != NULL, "message: %s", cx_last_error());
    /* non-strict: the two present layers load */
    st = cx_params_load(path, &pc, false);
    CHECK_MSG(st == CX_OK, "non-strict load: %s", cx_last_error());
    CHECK(memcmp(pc.t[0]->data, pa.t[0]->data, (size_t)pa.t[0]->numel * sizeof(float)) == 0);
    cx_params_free(&pc);
    cx_module_free(c);

    /* a model with fewer layers: the file has an unexpected tensor */
    const int shallow[2] = {4, 8};
    cx_module *d = cx_mlp_new(shallow, 2, CX_ACT_RELU, 0);
    cx_params pd = params_of(d);
    st = cx_params_load(path, &pd, true);
    CHECK(st == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "fc2.") != NULL, "message: %s", cx_last_error());
    cx_params_free(&pd);
    cx_module_free(d);

    cx_params_free(&pa);
    cx_module_free(a);
}

/* ---------------------------------------------------------------- print */
static void test_module_print(void) {
    char path[512], text[4096] = "";
    path_in_tmp(path, sizeof path, "print.txt");
    const int sizes[3] = {4, 8, 3};
    cx_module *net = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0.25f);
    fflush(stdout);
    int saved = dup(1);
    FILE *f = fopen(path, "w");
    CHECK(saved >= 0 && f);
    if (saved < 0 || !f) {
        if (f) fclose(f);
        cx_module_free(net);
        return;
    }
    dup2(fileno(f), 1);
    cx_module_print(net);
    cx_module *lin = cx_linear_new(5, 2, false);
    cx_module_print(lin);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    f = fopen(path, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
    }
    unlink(path);
    CHECK_MSG(strstr(text, "fc1") && strstr(text, "Linear(4 -> 8)"), "print:\n%s", text);
    CHECK_MSG(strstr(text, "act1") && strstr(text, "relu"), "print:\n%s", text);
    CHECK_MSG(strstr(text, "drop1") && strstr(text, "Dropout(p=0.25)"), "print:\n%s", text);
    CHECK_MSG(strstr(text, "Linear(8 -> 3)"), "print:\n%s", text);
    CHECK_MSG(strstr(text, " 67 params"), "total 4*8+8+8*3+3 = 67 missing:\n%s", text);
    CHECK_MSG(strstr(text, "Linear(5 -> 2, no bias)") && strstr(text, " 10 params"), "print:\n%s", text);
    cx_module_free(lin);
    cx_module_free(net);
}

/* ---------------------------------------------------------------- free */
static void test_module_free_everything(void) {
    /* a deep tree with every module kind; the ASan build checks for leaks */
    for (int rep = 0; rep < 3; rep++) {
        cx_module *root = cx_sequential_new();
        for (int i = 0; i < 4; i++) {
            cx_module *blk = cx_sequential_new();
            cx_sequential_add(blk, NULL, cx_linear_new(3, 3, i % 2 == 0));
            cx_sequential_add(blk, NULL, cx_activation_new(CX_ACT_ELU, 0));
            cx_sequential_add(blk, NULL, cx_dropout_new(0.1f));
            const int sz[3] = {3, 5, 3};
            cx_sequential_add(blk, "mlp", cx_mlp_new(sz, 3, CX_ACT_RELU, 0.2f));
            cx_sequential_add(root, NULL, blk);
        }
        cx_params p = params_of(root);
        CHECK(p.n == 4 * 4 + 4 + 2); /* 4 mlp params + linear w per block, + b on 2 blocks */
        CHECK(!strcmp(p.t[0]->name, "0.0.weight"));
        CHECK(!strcmp(p.t[2]->name, "0.mlp.fc1.weight"));
        cx_params_free(&p);
        cx_tensor *y = cx_module_forward(root, cx_ones(CX_SHAPE(2, 3)));
        CHECK(y->shape[0] == 2 && y->shape[1] == 3);
        cx_module_free(root);
    }
    cx_module_free(NULL);
}

/* A Sequential runs Linear + ReLU / Tanh as one op (cx_linear_relu /
 * cx_linear_tanh): the same output and parameter and input gradients, bit
 * for bit, as the ops one after the other; the fused op in the graph. */
static void test_sequential_fuses_linear_act(void) {
    const cx_act acts[2] = {CX_ACT_RELU, CX_ACT_TANH};
    for (int a = 0; a < 2; a++) {
        cx_seed(77);
        cx_module *mlp = cx_mlp_new((const int[]){7, 40, 33, 3}, 4, acts[a], 0);
        cx_params p;
        cx_params_init(&p);
        cx_module_params(mlp, &p);
        CHECK(p.n == 6);
        cx_tensor *x = cx_randn(CX_SHAPE(9, 7), 0, 1);
        x->requires_grad = true;
        cx_tensor *y = cx_module_forward(mlp, x);
        CHECK(!strcmp(cx_op_name(y), "linear"));
        char *dump = NULL;
        size_t dlen = 0;
        FILE *f = open_memstream(&dump, &dlen);
        cx_graph_dump(y, f);
        fclose(f);
        CHECK(strstr(dump, a ? "linear_tanh" : "linear_relu") && !strstr(dump, a ? " tanh" : " relu"));
        free(dump);
        cx_backward(cx_sum(cx_mul(y, y)));
        float *g1[6], *gx1 = malloc(sizeof(float) * 63), *y1 = malloc(sizeof(float) * 27);
        memcpy(gx1, x->grad, sizeof(float) * 63);
        memcpy(y1, CX_F(y), sizeof(float) * 27);
        for (int i = 0; i < 6; i++) {
            g1[i] = malloc(sizeof(float) * (size_t)p.t[i]->numel);
            memcpy(g1[i], p.t[i]->grad, sizeof(float) * (size_t)p.t[i]->numel);
        }
        cx_params_zero_grad(&p);
        cx_zero_grad(x);
        /* the same network, op by op (parameters in order: w1 b1 w2 b2 w3 b3) */
        cx_tensor *h = x;
        for (int l = 0; l < 3; l++) {
            h = cx_linear(h, p.t[2 * l], p.t[2 * l + 1]);
            if (l < 2) h = a ? cx_tanh(h) : cx_relu(h);
        }
        cx_backward(cx_sum(cx_mul(h, h)));
        CHECK(!memcmp(y1, CX_F(h), sizeof(float) * 27));
        CHECK(!memcmp(gx1, x->grad, sizeof(float) * 63));
        for (int i = 0; i < 6; i++) {
            CHECK_MSG(!memcmp(g1[i], p.t[i]->grad, sizeof(float) * (size_t)p.t[i]->numel), "%s: gradient of %s",
                      a ? "tanh" : "relu", p.t[i]->name ? p.t[i]->name : "?");
            free(g1[i]);
        }
        free(gx1), free(y1);
        cx_params_free(&p);
        cx_module_free(mlp);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_modules_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_linear_layout_and_init);
    RUN(test_linear_forward_by_hand);
    RUN(test_sequential_names);
    RUN(test_sequential_nested);
    RUN(test_sequential_errors);
    RUN(test_mlp_builder);
    RUN(test_activation_modules);
    RUN(test_act_parse_roundtrip);
    RUN(test_dropout_module);
    RUN(test_mlp_learns_toy_problem);
    RUN(test_save_load_roundtrip);
    RUN(test_load_wrong_shape);
    RUN(test_module_print);
    RUN(test_module_free_everything);
    RUN(test_sequential_fuses_linear_act);
    char p[512];
    path_in_tmp(p, sizeof p, "mlp.safetensors");
    unlink(p);
    path_in_tmp(p, sizeof p, "small.safetensors");
    unlink(p);
    rmdir(tmpdir);
    TEST_END();
}
