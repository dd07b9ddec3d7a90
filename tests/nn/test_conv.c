/* Convolutions: finite-difference gradient checks of every op and option,
 * PyTorch fixtures (tools/gen_conv_fixtures.py -> tests/fixtures/conv/),
 * error messages, modules, thread determinism, the tiled column path against
 * a direct loop, the direct (column-free) kernels against loops, and the
 * lecture notes' worked "X" example (convolution, ReLU, 2x2 max pooling). */
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "nn/conv_kern.h" /* cx_conv_wino_calls */

#define RTOL 1e-4
#define ATOL 1e-5
#define FIXTURE "tests/fixtures/conv/conv.safetensors"

/* ---------------------------------------------------------------- helpers */
typedef enum { K_C1, K_C2, K_C3, K_CT2, K_CT } kind; /* K_CT: cx_conv_transpose, any dims */

typedef struct {
    kind k;
    cx_conv_opts o;
} conv_spec;

static cx_tensor *run_conv(const conv_spec *sp, cx_tensor *x, cx_tensor *w, cx_tensor *b) {
    const cx_conv_opts *o = &sp->o;
    switch (sp->k) {
    case K_C1:
        return cx_conv1d(x, w, b, o->stride[0], o->padding[0], o->dilation[0], o->groups);
    case K_C2:
        return cx_conv2d(x, w, b, o->stride[0], o->stride[1], o->padding[0], o->padding[1],
                         o->dilation[0], o->dilation[1], o->groups);
    case K_C3: return cx_conv3d(x, w, b, o);
    case K_CT2: return cx_conv_transpose2d(x, w, b, o);
    case K_CT: return cx_conv_transpose(x, w, b, o);
    }
    return NULL;
}

/* ---------------------------------------------------------------- gradcheck */
typedef struct {
    const conv_spec *sp;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *gc_fn(cx_tensor **in, int n, void *user) {
    gc_ctx *c = user;
    cx_tensor *y = run_conv(c->sp, in[0], in[1], n > 2 ? in[2] : NULL);
    return cx_sum(cx_mul(y, c->R));
}

static cx_tensor *leaf(const int *shape, int nd) {
    cx_tensor *t = cx_randn(shape, nd, 0.0f, 1.0f);
    t->requires_grad = true;
    return t;
}

typedef struct {
    const char *name;
    conv_spec sp;
    int xnd, xs[5], ws[5];
    bool bias;
} gc_case;

#define O3(s0, s1, s2, p0, p1, p2, d0, d1, d2, q0, q1, q2, g) \
    {{s0, s1, s2}, {p0, p1, p2}, {d0, d1, d2}, {q0, q1, q2}, g}

static const gc_case GC[] = {
    {"conv2d basic", {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {2, 3, 7, 6}, {4, 3, 3, 3}, true},
    {"conv2d stride 2", {K_C2, O3(2, 2, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {2, 2, 9, 7}, {3, 2, 3, 3}, true},
    {"conv2d padding", {K_C2, O3(1, 1, 1, 2, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {1, 2, 5, 6}, {3, 2, 3, 3}, true},
    {"conv2d dilation 2", {K_C2, O3(1, 1, 1, 1, 1, 0, 2, 2, 1, 0, 0, 0, 1)}, 4, {2, 2, 7, 8}, {2, 2, 3, 3}, true},
    {"conv2d groups 2", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 2)}, 4, {2, 4, 5, 5}, {6, 2, 3, 3}, true},
    {"conv2d depthwise", {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 3)}, 4, {2, 3, 7, 7}, {3, 1, 3, 3}, true},
    {"conv2d 1x1", {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {2, 5, 3, 5}, {3, 5, 1, 1}, true},
    {"conv2d 1x1 stride 2 pad 1", {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {1, 3, 5, 4}, {2, 3, 1, 1}, true},
    {"conv2d no bias, asymmetric", {K_C2, O3(2, 1, 1, 1, 0, 0, 1, 2, 1, 0, 0, 0, 1)}, 4, {2, 3, 6, 7}, {4, 3, 2, 3}, false},
    {"conv1d", {K_C1, O3(2, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 3, {2, 3, 11}, {4, 3, 3}, true},
    {"conv1d groups dilation", {K_C1, O3(1, 1, 1, 2, 0, 0, 2, 1, 1, 0, 0, 0, 3)}, 3, {2, 3, 9}, {6, 1, 3}, false},
    {"conv3d", {K_C3, O3(1, 2, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1)}, 5, {1, 2, 4, 5, 4}, {3, 2, 3, 2, 3}, true},
    {"conv3d groups dilation", {K_C3, O3(2, 1, 1, 0, 1, 1, 1, 2, 1, 0, 0, 0, 2)}, 5, {2, 4, 4, 5, 3}, {2, 2, 2, 3, 2}, true},
    {"conv_transpose2d stride 2 op 1", {K_CT2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1)}, 4, {2, 3, 3, 4}, {3, 2, 3, 3}, true},
    {"conv_transpose2d groups dilation", {K_CT2, O3(2, 3, 1, 1, 0, 0, 2, 2, 1, 1, 2, 0, 3)}, 4, {1, 6, 3, 3}, {6, 2, 3, 3}, true},
    {"conv_transpose2d no bias", {K_CT2, O3(1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {2, 2, 4, 3}, {2, 3, 2, 3}, false},
    {"conv_transpose2d 1x1", {K_CT2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 4, {2, 4, 3, 5}, {4, 3, 1, 1}, true},
    {"conv_transpose 1-D", {K_CT, O3(3, 1, 1, 1, 0, 0, 1, 1, 1, 2, 0, 0, 2)}, 3, {2, 4, 5}, {4, 3, 3}, true},
    {"conv_transpose 3-D", {K_CT, O3(2, 1, 2, 0, 1, 1, 1, 2, 1, 1, 0, 1, 1)}, 5, {1, 2, 3, 3, 2}, {2, 3, 2, 2, 3}, true},
};

static void gradcheck_all(void) {
    cx_seed(42);
    for (size_t i = 0; i < sizeof GC / sizeof GC[0]; i++) {
        const gc_case *c = &GC[i];
        cx_tensor *x = leaf(c->xs, c->xnd), *w = leaf(c->ws, c->xnd);
        int bn = (c->sp.k == K_CT2 || c->sp.k == K_CT) ? c->ws[1] * c->sp.o.groups : c->ws[0];
        cx_tensor *b = c->bias ? leaf((int[]){bn}, 1) : NULL;
        cx_no_grad_begin();
        cx_tensor *probe = run_conv(&c->sp, x, w, b);
        cx_no_grad_end();
        gc_ctx ctx = {&c->sp, cx_randn(probe->shape, probe->ndim, 0.0f, 1.0f)};
        cx_tensor *in[3] = {x, w, b};
        double worst = cx_gradcheck(gc_fn, in, c->bias ? 3 : 2, &ctx, 1e-2f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", c->name, worst);
        cx_step_reset();
    }
}

/* ---------------------------------------------------------------- PyTorch fixtures */
static int fixture_case(cx_st_file *fx, const char *name) {
    char key[128], what[160];
    const char *meta = cx_st_meta(fx, name);
    CHECK_MSG(meta != NULL, "case %s has no options in the metadata", name);
    if (!meta) return 0;
    char kname[32];
    conv_spec sp;
    memset(&sp, 0, sizeof sp);
    cx_conv_opts *o = &sp.o;
    int got = sscanf(meta, "%31s %d %d %d %d %d %d %d %d %d %d %d %d %d", kname, &o->stride[0],
                     &o->stride[1], &o->stride[2], &o->padding[0], &o->padding[1], &o->padding[2],
                     &o->dilation[0], &o->dilation[1], &o->dilation[2], &o->output_padding[0],
                     &o->output_padding[1], &o->output_padding[2], &o->groups);
    CHECK_MSG(got == 14, "case %s: bad options '%s'", name, meta);
    if (got != 14) return 0;
    if (!strcmp(kname, "conv1d")) sp.k = K_C1;
    else if (!strcmp(kname, "conv2d")) sp.k = K_C2;
    else if (!strcmp(kname, "conv3d")) sp.k = K_C3;
    else sp.k = K_CT2;
#define GET(var, suffix) \
    snprintf(key, sizeof key, "%s.%s", name, suffix); \
    cx_tensor *var = cx_st_get(fx, key)
    GET(fx_x, "x");
    GET(fx_w, "w");
    GET(fx_b, "b");
    GET(fx_out, "out");
    GET(fx_gout, "gout");
    GET(fx_gx, "gx");
    GET(fx_gw, "gw");
    GET(fx_gb, "gb");
#undef GET
    CHECK_MSG(fx_x && fx_w && fx_out && fx_gout && fx_gx && fx_gw, "case %s: tensors missing", name);
    if (!(fx_x && fx_w && fx_out && fx_gout && fx_gx && fx_gw)) return 0;
    cx_tensor *x = cx_from_data(CX_F(fx_x), fx_x->shape, fx_x->ndim);
    cx_tensor *w = cx_from_data(CX_F(fx_w), fx_w->shape, fx_w->ndim);
    cx_tensor *b = fx_b ? cx_from_data(CX_F(fx_b), fx_b->shape, fx_b->ndim) : NULL;
    x->requires_grad = w->requires_grad = true;
    if (b) b->requires_grad = true;
    cx_tensor *y = run_conv(&sp, x, w, b);
    CHECK_MSG(cx_same_shape(y, fx_out), "case %s: output shape differs", name);
    if (!cx_same_shape(y, fx_out)) return 0;
    snprintf(what, sizeof what, "%s forward", name);
    cxt_allclose(CX_F(y), CX_F(fx_out), (long)y->numel, RTOL, ATOL, what);
    cx_backward_with(y, CX_F(fx_gout));
    snprintf(what, sizeof what, "%s grad x", name);
    cxt_allclose(x->grad, CX_F(fx_gx), (long)x->numel, RTOL, ATOL, what);
    snprintf(what, sizeof what, "%s grad w", name);
    cxt_allclose(w->grad, CX_F(fx_gw), (long)w->numel, RTOL, ATOL, what);
    if (b) {
        CHECK_MSG(fx_gb != NULL, "case %s: gb missing", name);
        snprintf(what, sizeof what, "%s grad b", name);
        if (fx_gb) cxt_allclose(b->grad, CX_F(fx_gb), (long)b->numel, RTOL, ATOL, what);
    }
    cx_step_reset();
    return 1;
}

static void torch_fixtures(void) {
    const char *path = getenv("CX_CONV_FIXTURE") ? getenv("CX_CONV_FIXTURE") : FIXTURE;
    cx_st_file *fx = NULL;
    cx_status st = cx_st_load(path, &fx);
    CHECK_MSG(st == CX_OK, "cannot load %s: %s (regenerate with /usr/bin/python3 "
              "tools/gen_conv_fixtures.py)", path, cx_last_error());
    if (st != CX_OK) return;
    int n_cases = 0, n_ok = 0;
    for (int i = 0; i < fx->n; i++) {
        const char *nm = fx->entries[i].name;
        size_t len = strlen(nm);
        if (len > 4 && !strcmp(nm + len - 4, ".out")) {
            char name[96];
            snprintf(name, sizeof name, "%.*s", (int)(len - 4), nm);
            n_cases++;
            n_ok += fixture_case(fx, name);
        }
    }
    const char *meta = cx_st_meta(fx, "cases");
    CHECK_MSG(meta && atoi(meta) == n_cases && n_cases >= 18, "fixture cases: meta %s, found %d",
              meta ? meta : "(none)", n_cases);
    CHECK(n_ok == n_cases);
    cx_st_free(fx);
}

/* ---------------------------------------------------------------- errors */
static void error_messages(void) {
    cx_tensor *x = cx_zeros(CX_SHAPE(2, 3, 8, 8));
    cx_tensor *w = cx_zeros(CX_SHAPE(4, 2, 3, 3));
    EXPECT_FATAL(cx_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1, 1), "conv2d", "[4, 2, 3, 3]", "[2, 3, 8, 8]");
    cx_tensor *w3 = cx_zeros(CX_SHAPE(4, 3, 3, 3));
    cx_tensor *big = cx_zeros(CX_SHAPE(4, 3, 11, 3));
    EXPECT_FATAL(cx_conv2d(x, big, NULL, 1, 1, 1, 1, 1, 1, 1), "conv2d", "larger than the padded input",
                 "[4, 3, 11, 3]");
    EXPECT_FATAL(cx_conv2d(x, w3, NULL, 1, 1, 0, 0, 5, 5, 1), "conv2d", "kernel size 3 (dilated 11)");
    cx_tensor *wg = cx_zeros(CX_SHAPE(4, 1, 3, 3));
    EXPECT_FATAL(cx_conv2d(x, wg, NULL, 1, 1, 0, 0, 1, 1, 2), "conv2d", "groups (2) must divide");
    cx_tensor *wo = cx_zeros(CX_SHAPE(5, 1, 3, 3));
    EXPECT_FATAL(cx_conv2d(x, wo, NULL, 1, 1, 0, 0, 1, 1, 3), "conv2d", "groups (3)", "output channels (5)");
    cx_tensor *bb = cx_zeros(CX_SHAPE(5));
    EXPECT_FATAL(cx_conv2d(x, w3, bb, 1, 1, 0, 0, 1, 1, 1), "conv2d", "bias [5]", "4 output channels");
    EXPECT_FATAL(cx_conv2d(x, w3, NULL, 0, 1, 0, 0, 1, 1, 1), "conv2d", "stride");
    EXPECT_FATAL(cx_conv2d(x, w3, NULL, 1, 1, -1, 0, 1, 1, 1), "conv2d", "padding must be >= 0");
    cx_tensor *x3 = cx_zeros(CX_SHAPE(2, 3, 8));
    EXPECT_FATAL(cx_conv2d(x3, w3, NULL, 1, 1, 0, 0, 1, 1, 1), "conv2d", "4-D input", "[2, 3, 8]");
    EXPECT_FATAL(cx_conv3d(x, w3, NULL, NULL), "conv3d", "5-D input");
    cx_tensor *w1 = cx_zeros(CX_SHAPE(4, 2, 3));
    EXPECT_FATAL(cx_conv1d(x3, w1, NULL, 1, 0, 1, 1), "conv1d", "[4, 2, 3]", "[2, 3, 8]");
    /* transposed */
    cx_tensor *wt = cx_zeros(CX_SHAPE(3, 4, 3, 3));
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = o.stride[1] = 2;
    o.output_padding[0] = 2;
    EXPECT_FATAL(cx_conv_transpose2d(x, wt, NULL, &o), "conv_transpose2d", "output_padding (2)",
                 "stride (2)");
    o.output_padding[0] = 1;
    cx_tensor *wt2 = cx_zeros(CX_SHAPE(4, 4, 3, 3));
    EXPECT_FATAL(cx_conv_transpose2d(x, wt2, NULL, &o), "conv_transpose2d", "[4, 4, 3, 3]", "expects input with 4 channels", "[2, 3, 8, 8]");
    o.groups = 2;
    EXPECT_FATAL(cx_conv_transpose2d(x, wt, NULL, &o), "conv_transpose2d", "groups (2)");
    o.groups = 1;
    o.padding[0] = o.padding[1] = 9;
    EXPECT_FATAL(cx_conv_transpose2d(x, wt, NULL, &o), "conv_transpose2d", "output size");
    EXPECT_FATAL(cx_conv2d_new(3, 5, 3, 3, &(cx_conv_opts){.groups = 2}, true), "Conv2d", "groups (2)");
}

/* ---------------------------------------------------------------- output sizes */
static void output_sizes(void) {
    CHECK(cx_conv_out_size(28, 5, 1, 0, 1) == 24);
    CHECK(cx_conv_out_size(32, 3, 1, 1, 1) == 32);
    CHECK(cx_conv_out_size(9, 3, 2, 1, 1) == 5);
    CHECK(cx_conv_out_size(10, 3, 2, 1, 1) == 5);
    CHECK(cx_conv_out_size(9, 3, 1, 0, 2) == 5);
    CHECK(cx_conv_transpose_out_size(4, 3, 2, 1, 1, 1) == 8);
    CHECK(cx_conv_transpose_out_size(3, 3, 2, 1, 2, 1) == 8);
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 2, 5, 5));
    cx_tensor *w = cx_zeros(CX_SHAPE(2, 3, 4, 4));
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = 3;
    o.stride[1] = 2;
    o.padding[1] = 1;
    o.output_padding[0] = 2;
    cx_tensor *y = cx_conv_transpose2d(x, w, NULL, &o);
    /* H: (5-1)*3 + 4 + 2 = 18; W: (5-1)*2 - 2 + 4 = 10 */
    CHECK(y->ndim == 4 && y->shape[0] == 1 && y->shape[1] == 3 && y->shape[2] == 18 && y->shape[3] == 10);
    /* the zero-initialised struct is the default */
    cx_conv_opts z;
    memset(&z, 0, sizeof z);
    cx_tensor *xs = cx_randn(CX_SHAPE(1, 2, 5, 6), 0, 1), *ws = cx_randn(CX_SHAPE(3, 2, 3, 3), 0, 1);
    cx_tensor *a = cx_conv2d_ex(xs, ws, NULL, &z), *b = cx_conv2d(xs, ws, NULL, 1, 1, 0, 0, 1, 1, 1);
    CHECK(cx_same_shape(a, b) && memcmp(CX_F(a), CX_F(b), (size_t)a->numel * 4) == 0);
    cx_tensor *c = cx_conv(xs, ws, NULL, NULL);
    CHECK(cx_same_shape(a, c) && memcmp(CX_F(a), CX_F(c), (size_t)a->numel * 4) == 0);
    CHECK(!strcmp(cx_op_name(cx_conv2d(xs, leaf(CX_SHAPE(3, 2, 3, 3)), NULL, 1, 1, 0, 0, 1, 1, 1)),
                  "conv2d"));
}

/* ---------------------------------------------------------------- modules */
static void modules(void) {
    cx_seed(3);
    cx_module *net = cx_sequential_new();
    cx_sequential_add(net, "conv1", cx_conv2d_new(1, 6, 5, 5, NULL, true));
    cx_sequential_add(net, "act", cx_activation_new(CX_ACT_RELU, 0));
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = o.stride[1] = 2;
    o.padding[0] = o.padding[1] = 1;
    o.groups = 2;
    cx_sequential_add(net, "conv2", cx_conv2d_new(6, 4, 3, 3, &o, false));
    cx_sequential_add(net, "flat", cx_flatten_new());
    cx_sequential_add(net, "fc", cx_linear_new(4 * 6 * 6, 10, true));
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    CHECK(ps.n == 5);
    cx_tensor *w1 = cx_params_find(&ps, "conv1.weight"), *b1 = cx_params_find(&ps, "conv1.bias");
    cx_tensor *w2 = cx_params_find(&ps, "conv2.weight");
    CHECK(w1 && w1->ndim == 4 && w1->shape[0] == 6 && w1->shape[1] == 1 && w1->shape[2] == 5 &&
          w1->shape[3] == 5);
    CHECK(b1 && b1->ndim == 1 && b1->shape[0] == 6);
    CHECK(w2 && w2->shape[0] == 4 && w2->shape[1] == 3 && w2->shape[2] == 3);
    CHECK(cx_params_find(&ps, "conv2.bias") == NULL);
    CHECK(cx_conv_weight(cx_sequential_get(net, 0)) == w1);
    CHECK(cx_conv_bias(cx_sequential_get(net, 0)) == b1);
    /* init bounds: 1/sqrt(fan_in), fan_in = C/groups * kh * kw */
    float bd1 = 1.0f / 5.0f, bd2 = 1.0f / sqrtf(27.0f), mx = 0;
    for (int64_t i = 0; i < w1->numel; i++) mx = fmaxf(mx, fabsf(CX_F(w1)[i]));
    CHECK(mx <= bd1 && mx > 0.6f * bd1);
    for (int64_t i = 0; i < b1->numel; i++) CHECK(fabsf(CX_F(b1)[i]) <= bd1);
    mx = 0;
    for (int64_t i = 0; i < w2->numel; i++) mx = fmaxf(mx, fabsf(CX_F(w2)[i]));
    CHECK(mx <= bd2 && mx > 0.6f * bd2);
    char buf[128];
    cx_module_describe(cx_sequential_get(net, 0), buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "Conv2d(1 -> 6, k=5x5, s=1, p=0)"), "got '%s'", buf);
    cx_module_describe(cx_sequential_get(net, 2), buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "Conv2d(6 -> 4, k=3x3, s=2, p=1, g=2, no bias)"), "got '%s'", buf);
    cx_module_describe(cx_sequential_get(net, 3), buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "Flatten()"), "got '%s'", buf);
    /* forward + backward through the whole net */
    cx_tensor *x = cx_randn(CX_SHAPE(3, 1, 16, 15), 0, 1);
    cx_tensor *y = cx_module_forward(net, x);
    CHECK(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10);
    int32_t t[3] = {1, 4, 9};
    cx_backward(cx_cross_entropy(y, cx_from_i32(t, CX_SHAPE(3)), CX_REDUCE_MEAN));
    CHECK(w1->grad && w2->grad && b1->grad);
    cx_params_free(&ps);
    cx_module_free(net);

    /* 1-D, 3-D and transposed modules */
    cx_module *m1 = cx_conv1d_new(4, 6, 3, &(cx_conv_opts){.dilation = {2}, .groups = 2}, true);
    cx_tensor *w = cx_conv_weight(m1);
    CHECK(w->ndim == 3 && w->shape[0] == 6 && w->shape[1] == 2 && w->shape[2] == 3);
    cx_module_describe(m1, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "Conv1d(4 -> 6, k=3, s=1, p=0, d=2, g=2)"), "got '%s'", buf);
    cx_module *m3 = cx_conv3d_new(2, 3, 3, 1, 2, NULL, true);
    w = cx_conv_weight(m3);
    CHECK(w->ndim == 5 && w->shape[0] == 3 && w->shape[1] == 2 && w->shape[2] == 3 && w->shape[3] == 1 &&
          w->shape[4] == 2);
    cx_module_describe(m3, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "Conv3d(2 -> 3, k=3x1x2, s=1, p=0)"), "got '%s'", buf);
    cx_tensor *y3 = cx_module_forward(m3, cx_randn(CX_SHAPE(1, 2, 4, 4, 4), 0, 1));
    CHECK(y3->ndim == 5 && y3->shape[1] == 3 && y3->shape[2] == 2 && y3->shape[3] == 4 && y3->shape[4] == 3);
    cx_conv_opts ot = cx_conv_defaults();
    ot.stride[0] = ot.stride[1] = 2;
    ot.padding[0] = ot.padding[1] = 1;
    ot.output_padding[0] = ot.output_padding[1] = 1;
    ot.groups = 2;
    cx_module *mt = cx_conv_transpose2d_new(4, 6, 3, 3, &ot, true);
    w = cx_conv_weight(mt);
    /* PyTorch layout [in, out/groups, kh, kw]; fan_in = out/groups * kh * kw = 27 */
    CHECK(w->shape[0] == 4 && w->shape[1] == 3 && w->shape[2] == 3 && w->shape[3] == 3);
    CHECK(cx_conv_bias(mt)->numel == 6);
    mx = 0;
    for (int64_t i = 0; i < w->numel; i++) mx = fmaxf(mx, fabsf(CX_F(w)[i]));
    CHECK(mx <= bd2 && mx > 0.5f * bd2);
    cx_module_describe(mt, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, "ConvTranspose2d(4 -> 6, k=3x3, s=2, p=1, g=2, op=1)"), "got '%s'", buf);
    cx_tensor *yt = cx_module_forward(mt, cx_randn(CX_SHAPE(2, 4, 5, 3), 0, 1));
    CHECK(yt->shape[0] == 2 && yt->shape[1] == 6 && yt->shape[2] == 10 && yt->shape[3] == 6);
    cx_params p2;
    cx_params_init(&p2);
    cx_module *seq = cx_sequential_new();
    cx_sequential_add(seq, NULL, mt);
    cx_module_params(seq, &p2);
    CHECK(p2.n == 2 && !strcmp(p2.t[0]->name, "0.weight") && !strcmp(p2.t[1]->name, "0.bias"));
    cx_params_free(&p2);
    cx_module_free(seq);
    cx_module_free(m1);
    cx_module_free(m3);
    cx_module *flat = cx_flatten_new();
    EXPECT_FATAL(cx_conv_weight(flat), "expected a convolution module", "Flatten");
    cx_module_free(flat);
}

/* ---------------------------------------------------------------- determinism */
static void run_fb(const conv_spec *sp, const int *xs, const int *ws, int bn, float **res, int64_t *len) {
    cx_seed(9);
    cx_tensor *x = leaf(xs, 4), *w = leaf(ws, 4), *b = leaf((int[]){bn}, 1);
    cx_tensor *y = run_conv(sp, x, w, b);
    cx_tensor *g = cx_randn(y->shape, y->ndim, 0, 1);
    cx_backward_with(y, CX_F(g));
    cx_tensor *parts[4] = {y, x, w, b};
    int64_t n = 0;
    for (int i = 0; i < 4; i++) n += parts[i]->numel;
    float *r = malloc((size_t)n * sizeof(float));
    int64_t off = 0;
    memcpy(r, CX_F(y), (size_t)y->numel * 4);
    off += y->numel;
    for (int i = 1; i < 4; i++) {
        memcpy(r + off, parts[i]->grad, (size_t)parts[i]->numel * 4);
        off += parts[i]->numel;
    }
    *res = r;
    *len = n;
}

static void thread_determinism(void) {
    const conv_spec specs[] = {
        {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)},
        {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 2)},
        {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)},
        {K_CT2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1)},
        {K_C2, O3(1, 1, 1, 2, 2, 0, 1, 1, 1, 0, 0, 0, 1)}, /* few input channels */
        {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, /* small images: folded GEMM */
        {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)},
        /* LeNet-5's second layer, 9 images: each thread its own range of
         * images in the direct kernels (9 = 4 + 5 at 2 threads, 3 x 3 at 3) */
        {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)},
    };
    enum { NSPEC = 8 };
    const int xs[NSPEC][4] = {{6, 16, 16, 15}, {5, 16, 17, 16}, {7, 32, 12, 11}, {6, 16, 9, 8},
                              {9, 1, 12, 13}, {40, 16, 10, 5}, {40, 1, 10, 5}, {9, 6, 14, 14}};
    const int ws[NSPEC][4] = {{16, 16, 3, 3}, {16, 8, 3, 3}, {24, 32, 1, 1}, {16, 12, 3, 3},
                              {6, 1, 5, 5}, {32, 16, 3, 3}, {16, 1, 3, 3}, {16, 6, 5, 5}};
    const int bn[NSPEC] = {16, 16, 24, 12, 6, 32, 16, 16};
    const long own0 = cx_conv_own_range_calls;
    int saved = cx_get_threads();
    const cx_gemm_backend keep = cx_gemm_backend_in_use();
    /* the built-in GEMM: the same bits for any thread count; OpenBLAS (the
     * backend on AVX2 machines and AVX-512 Intel cores) splits its own work
     * by thread count, so there the same thread count gives the same bits
     * and other counts agree to rounding */
    for (int be = 0; be < 2; be++) {
        cx_set_gemm_backend(be ? CX_GEMM_BLAS : CX_GEMM_BUILTIN);
        const bool exact = cx_gemm_backend_in_use() == CX_GEMM_BUILTIN;
        if (be && exact) break; /* a build without CBLAS */
        for (int i = 0; i < NSPEC; i++) {
            float *r1, *r2, *r3, *r2b;
            int64_t n1, n2, n3, n2b;
            cx_set_threads(1);
            run_fb(&specs[i], xs[i], ws[i], bn[i], &r1, &n1);
            cx_step_reset();
            cx_set_threads(2);
            run_fb(&specs[i], xs[i], ws[i], bn[i], &r2, &n2);
            cx_step_reset();
            run_fb(&specs[i], xs[i], ws[i], bn[i], &r2b, &n2b);
            cx_step_reset();
            cx_set_threads(3);
            run_fb(&specs[i], xs[i], ws[i], bn[i], &r3, &n3);
            cx_step_reset();
            CHECK(n1 == n2 && n1 == n3 && n2 == n2b);
            if (n1 == n2 && n1 == n3 && n2 == n2b) {
                CHECK_MSG(memcmp(r2, r2b, (size_t)n1 * 4) == 0, "spec %d (%s): 2 threads twice differ", i,
                          cx_gemm_describe());
                if (exact) {
                    CHECK_MSG(memcmp(r1, r2, (size_t)n1 * 4) == 0, "spec %d: 1 vs 2 threads differ", i);
                    CHECK_MSG(memcmp(r1, r3, (size_t)n1 * 4) == 0, "spec %d: 1 vs 3 threads differ", i);
                } else {
                    cxt_allclose(r2, r1, (long)n1, 1e-4, 1e-5, "OpenBLAS: 2 vs 1 threads");
                    cxt_allclose(r3, r1, (long)n1, 1e-4, 1e-5, "OpenBLAS: 3 vs 1 threads");
                }
            }
            free(r1);
            free(r2);
            free(r2b);
            free(r3);
        }
    }
    cx_set_gemm_backend(keep);
    cx_set_threads(saved);
    /* the per-thread image ranges ran (OpenMP builds) */
#ifdef _OPENMP
    CHECK_MSG(cx_conv_own_range_calls > own0, "no convolution ran with per-thread image ranges");
#else
    (void)own0;
#endif
}

/* ---------------------------------------------------------------- tiled columns vs direct loops */
static void tiled_vs_direct(void) {
    /* K = 16*9 = 144 rows of 100 columns per output row: 100 rows exceed the
     * column-buffer bound, so the op runs in row tiles. */
    enum { N = 2, C = 16, O = 3, H = 100, W = 100, KH = 3, KW = 3 };
    cx_seed(5);
    cx_tensor *x = leaf(CX_SHAPE(N, C, H, W)), *w = leaf(CX_SHAPE(O, C, KH, KW)), *b = leaf(CX_SHAPE(O));
    cx_tensor *y = cx_conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1);
    CHECK(y->shape[2] == H && y->shape[3] == W);
    cx_tensor *g = cx_randn(y->shape, 4, 0, 1);
    cx_backward_with(y, CX_F(g));
    const float *X = CX_F(x), *Wt = CX_F(w), *G = CX_F(g);
    float *ref = malloc(sizeof(float) * N * O * H * W), *rgx = calloc((size_t)N * C * H * W, 4);
    double *rgw = calloc((size_t)O * C * KH * KW, sizeof(double));
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = CX_F(b)[o];
                    float gy = G[((n * O + o) * H + i) * W + j];
                    for (int c = 0; c < C; c++)
                        for (int u = 0; u < KH; u++)
                            for (int v = 0; v < KW; v++) {
                                int ii = i - 1 + u, jj = j - 1 + v;
                                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                                size_t xi = ((size_t)(n * C + c) * H + ii) * W + jj;
                                size_t wi = ((size_t)(o * C + c) * KH + u) * KW + v;
                                s += (double)X[xi] * Wt[wi];
                                rgx[xi] += gy * Wt[wi];
                                rgw[wi] += (double)gy * X[xi];
                            }
                    ref[((n * O + o) * H + i) * W + j] = (float)s;
                }
    cxt_allclose(CX_F(y), ref, (long)y->numel, 1e-4, 1e-4, "tiled forward");
    cxt_allclose(x->grad, rgx, (long)x->numel, 1e-4, 1e-4, "tiled grad x");
    float *rgwf = malloc(sizeof(float) * O * C * KH * KW);
    for (int i = 0; i < O * C * KH * KW; i++) rgwf[i] = (float)rgw[i];
    cxt_allclose(w->grad, rgwf, (long)w->numel, 1e-4, 1e-3, "tiled grad w");
    free(ref);
    free(rgx);
    free(rgw);
    free(rgwf);
}

/* ---------------------------------------------------------------- direct kernels vs loops */
/* Sizes with enough channels and columns for the direct (column-free)
 * kernels: stride-1 forward and input gradient (also with a negative padding
 * of the flipped convolution, groups, dilation, 1-D and 3-D, odd widths that
 * leave partial vectors), the weight gradient of a strided convolution, and a
 * stride-1 transposed convolution with output_padding; checked against
 * double-precision loops. */
typedef struct {
    int N, C, O, G, in[3], out[3], k[3], s[3], p[3], d[3];
} rgeom;

/* y = conv(x, w) [N, O, out], gx = input gradient of gy, gw = weight gradient. */
static void ref_conv(const rgeom *g, const float *x, const float *w, const float *gy, double *y,
                     double *gx, double *gw) {
    const int Cg = g->C / g->G, Og = g->O / g->G;
    const int64_t inP = (int64_t)g->in[0] * g->in[1] * g->in[2];
    const int64_t outP = (int64_t)g->out[0] * g->out[1] * g->out[2];
    const int kk = g->k[0] * g->k[1] * g->k[2];
    for (int n = 0; n < g->N; n++)
        for (int o = 0; o < g->O; o++)
            for (int64_t q = 0; q < outP; q++) {
                int oz = (int)(q / ((int64_t)g->out[1] * g->out[2]));
                int oy = (int)(q / g->out[2] % g->out[1]), ox = (int)(q % g->out[2]);
                double acc = 0, gv = gy[((int64_t)n * g->O + o) * outP + q];
                int gi = o / Og;
                for (int c = 0; c < Cg; c++)
                    for (int j = 0; j < kk; j++) {
                        int a = j / (g->k[1] * g->k[2]), b = j / g->k[2] % g->k[1], e = j % g->k[2];
                        int iz = oz * g->s[0] - g->p[0] + a * g->d[0];
                        int iy = oy * g->s[1] - g->p[1] + b * g->d[1];
                        int ix = ox * g->s[2] - g->p[2] + e * g->d[2];
                        if (iz < 0 || iz >= g->in[0] || iy < 0 || iy >= g->in[1] || ix < 0 ||
                            ix >= g->in[2])
                            continue;
                        int64_t xi = ((int64_t)n * g->C + gi * Cg + c) * inP +
                                     ((int64_t)iz * g->in[1] + iy) * g->in[2] + ix;
                        int64_t wi = ((int64_t)o * Cg + c) * kk + j;
                        acc += (double)x[xi] * w[wi];
                        gx[xi] += gv * w[wi];
                        gw[wi] += gv * x[xi];
                    }
                y[((int64_t)n * g->O + o) * outP + q] = acc;
            }
}

/* The few-channel weight gradient reads whole vectors of positions: an
 * infinite input must reach only the weights that really multiply it.
 * x[0, 0, 1, 0] = inf (k 3, no padding) meets taps kw = 0 only. */
static void few_channel_nonfinite(void) {
    cx_seed(12);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 9, 21), 0, 1);
    cx_tensor *w = leaf(CX_SHAPE(4, 1, 3, 3));
    CX_F(x)[21] = INFINITY;
    cx_tensor *y = cx_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1, 1);
    cx_tensor *g = cx_randn(y->shape, 4, 0, 1);
    cx_backward_with(y, CX_F(g));
    int bad = 0;
    for (int i = 0; i < 4 * 9; i++)
        if (i % 3 != 0 && !isfinite(w->grad[i])) bad++;
    CHECK_MSG(bad == 0, "%d finite weight gradients became non-finite", bad);
    cx_step_reset();
}

/* A strided convolution whose input also feeds another op: its input
 * gradient is added to what the other op gave, or stored (zeros where it
 * has none) when it comes first; both orders of the loss terms, against the
 * im2col path. A 1x1 kernel (scattered at the strided positions, the rest
 * untouched) and a 3x3 kernel with padding (interleaved phases). */
static void strided_accumulates(void) {
    const cx_conv_algo saved = cx_conv_get_algo();
    const int64_t nx = 2 * 4 * 9 * 11;
    for (int k = 1; k <= 3; k += 2) {
        float *ref = NULL;
        const long pw0 = cx_conv_sbd_calls;
        for (int run = 0; run < 3; run++) {
            cx_conv_set_algo(run == 0 ? CX_CONV_GEMM : CX_CONV_AUTO);
            cx_seed(61);
            cx_tensor *x = leaf(CX_SHAPE(2, 4, 9, 11)), *w = leaf(CX_SHAPE(6, 4, k, k));
            cx_tensor *R = cx_randn(CX_SHAPE(2, 6, 5, 6), 0, 1), *R2 = cx_randn(CX_SHAPE(2, 4, 9, 11), 0, 1);
            cx_tensor *a = cx_sum(cx_mul(cx_conv2d(x, w, NULL, 2, 2, k / 2, k / 2, 1, 1, 1), R));
            cx_tensor *b = cx_sum(cx_mul(cx_tanh(x), R2));
            cx_backward(run == 2 ? cx_add(b, a) : cx_add(a, b));
            if (!ref) {
                ref = malloc((size_t)nx * sizeof(float));
                memcpy(ref, x->grad, (size_t)nx * sizeof(float));
            } else {
                char what[64];
                snprintf(what, sizeof what, "%dx%d, %s", k, k, run == 1 ? "conv term first" : "tanh term first");
                cxt_allclose(x->grad, ref, (long)nx, 1e-5, 1e-6, what);
            }
            cx_step_reset();
        }
        if (k == 3) CHECK_MSG(cx_conv_sbd_calls - pw0 == 2, "3x3: %ld strided direct input gradients, expected 2",
                              cx_conv_sbd_calls - pw0);
        free(ref);
    }
    cx_conv_set_algo(saved);
}

/* Each algorithm gives the same result (to rounding) as the others. */
static void algorithms_agree(void) {
    const cx_conv_algo saved = cx_conv_get_algo();
    CHECK(saved == CX_CONV_AUTO);
    const cx_conv_algo algos[4] = {CX_CONV_GEMM, CX_CONV_DIRECT, CX_CONV_AUTO, CX_CONV_WINOGRAD};
    float *ref[4] = {NULL, NULL, NULL, NULL};
    const int64_t ny = 3 * 24 * 13 * 10, nx = 3 * 16 * 13 * 10, nw = 24 * 16 * 9;
    for (int a = 0; a < 4; a++) {
        cx_conv_set_algo(algos[a]);
        CHECK(cx_conv_get_algo() == algos[a]);
        cx_seed(5);
        cx_tensor *x = leaf(CX_SHAPE(3, 16, 13, 10)), *w = leaf(CX_SHAPE(24, 16, 3, 3));
        cx_tensor *b = leaf(CX_SHAPE(24));
        const long wino0 = cx_conv_wino_calls;
        cx_tensor *y = cx_conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1);
        cx_tensor *g = cx_randn(y->shape, 4, 0, 1);
        cx_backward_with(y, CX_F(g));
        /* AUTO: the weight gradient; the forward pass (105 tiles, below
         * WINO_MIN_TILES) runs direct, and on AVX-512 so do the input
         * gradient (fewer than WINO_AUTO_MIN_CH channels, conv.c) and the
         * weight gradient (fewer than WINO_BW_AUTO_MIN_CI input channels) */
#if defined(__AVX512F__)
        const long auto_wino = 0;
#else
        const long auto_wino = 2;
#endif
        CHECK_MSG(cx_conv_wino_calls - wino0 == (algos[a] == CX_CONV_WINOGRAD ? 3 : algos[a] == CX_CONV_AUTO ? auto_wino : 0),
                  "algorithm %d: %ld Winograd calls", a, cx_conv_wino_calls - wino0);
        ref[a] = malloc((size_t)(ny + nx + nw) * sizeof(float));
        memcpy(ref[a], CX_F(y), (size_t)ny * sizeof(float));
        memcpy(ref[a] + ny, x->grad, (size_t)nx * sizeof(float));
        memcpy(ref[a] + ny + nx, w->grad, (size_t)nw * sizeof(float));
        cx_step_reset();
    }
    static const char *const what[4] = {"", "direct vs gemm", "auto (Winograd) vs gemm",
                                        "winograd vs gemm"};
    for (int a = 1; a < 4; a++)
        cxt_allclose(ref[a], ref[0], (long)(ny + nx + nw), 1e-4, 1e-4, what[a]);
    for (int a = 0; a < 4; a++) free(ref[a]);
    cx_conv_set_algo(saved);
    EXPECT_FATAL(cx_conv_set_algo((cx_conv_algo)7), "unknown algorithm 7");
}

typedef struct {
    const char *name;
    conv_spec sp;
    int nd;
    rgeom g;
} dcase;

/* Runs case c forward and backward, compares with ref_conv; returns the
 * Winograd calls it made. */
static long check_case(const dcase *c, int ci);

static void direct_paths(void) {
    /* rgeom: N, C, O, G, in, out, k, s, p, d (the convolution view: for a
     * transposed convolution, C/in describe its result, O/out its input). */
    const dcase cs[] = {
        {"conv2d 14->12 9x23", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 14, 12, 1, {1, 9, 23}, {1, 9, 23}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"conv2d groups 2, dilation, padding > d(k-1)", {K_C2, O3(1, 1, 1, 2, 1, 0, 1, 2, 1, 0, 0, 0, 2)}, 2,
         {2, 28, 24, 2, {1, 12, 30}, {1, 15, 28}, {1, 2, 3}, {1, 1, 1}, {0, 2, 1}, {1, 1, 2}}},
        {"conv2d stride 2 (direct weight gradient)", {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {2, 16, 16, 1, {1, 17, 33}, {1, 9, 17}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}}},
        {"conv1d", {K_C1, O3(1, 1, 1, 2, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 1,
         {2, 12, 16, 1, {1, 1, 40}, {1, 1, 40}, {1, 1, 5}, {1, 1, 1}, {0, 0, 2}, {1, 1, 1}}},
        {"conv3d", {K_C3, O3(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1)}, 3,
         {2, 8, 8, 1, {4, 5, 18}, {4, 5, 18}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}},
        {"conv_transpose2d stride 1, dilation 2, output_padding 1", {K_CT2, O3(1, 1, 1, 1, 1, 0, 2, 2, 1, 1, 1, 0, 1)}, 2,
         {2, 12, 16, 1, {1, 13, 23}, {1, 10, 20}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 2, 2}}},
        /* few input channels: the weight gradient vectorised over positions */
        {"conv2d 1->6 k5 pad 2 (few channels)", {K_C2, O3(1, 1, 1, 2, 2, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 1, 6, 1, {1, 13, 29}, {1, 13, 29}, {1, 5, 5}, {1, 1, 1}, {0, 2, 2}, {1, 1, 1}}},
        {"conv2d groups 2 of 3->4, dilation (few channels)", {K_C2, O3(1, 1, 1, 1, 0, 0, 1, 2, 1, 0, 0, 0, 2)}, 2,
         {2, 6, 8, 2, {1, 11, 17}, {1, 11, 13}, {1, 3, 3}, {1, 1, 1}, {0, 1, 0}, {1, 1, 2}}},
        {"conv1d 2->3 k5 (few channels)", {K_C1, O3(1, 1, 1, 2, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 1,
         {2, 2, 3, 1, {1, 1, 37}, {1, 1, 37}, {1, 1, 5}, {1, 1, 1}, {0, 0, 2}, {1, 1, 1}}},
        {"conv3d 2->4 (few channels)", {K_C3, O3(1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1)}, 3,
         {2, 2, 4, 1, {3, 5, 11}, {3, 5, 11}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}}},
        /* Winograd F(2x2, 3x3): odd output sizes (partial tiles), output
         * channels not a multiple of the register tile, padding 0 / 1 / 2
         * (the input gradient then crops), groups, many blocks and images
         * per block, and a transposed convolution (forward = input gradient) */
        {"winograd conv2d 16->20 pad 0, 7x9 out", {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 16, 20, 1, {1, 9, 11}, {1, 7, 9}, {1, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}}},
        {"winograd conv2d groups 2 of 8->10, pad 2", {K_C2, O3(1, 1, 1, 2, 2, 0, 1, 1, 1, 0, 0, 0, 2)}, 2,
         {2, 16, 20, 2, {1, 6, 13}, {1, 8, 15}, {1, 3, 3}, {1, 1, 1}, {0, 2, 2}, {1, 1, 1}}},
        {"winograd conv2d 9->8 pad 1, 40x37 (many blocks)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {5, 9, 8, 1, {1, 40, 37}, {1, 40, 37}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"winograd conv2d 8->8 pad 1, 2x3 (tiny images)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {7, 8, 8, 1, {1, 2, 3}, {1, 2, 3}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"winograd conv2d groups 2 of 20->12, pad 1, 19x21", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 2)}, 2,
         {3, 40, 24, 2, {1, 19, 21}, {1, 19, 21}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"winograd conv2d 16->8 pad 1, 40x37 (many tiles per image)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 16, 8, 1, {1, 40, 37}, {1, 40, 37}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        /* strided 1x1 without padding (a ResNet's projection shortcut): the
         * subsampled input, the input gradient scattered with zeros between */
        {"1x1 stride 2 conv2d 16->32 13x14", {K_C2, O3(2, 2, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 16, 32, 1, {1, 13, 14}, {1, 7, 7}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}}},
        {"1x1 stride 2 conv2d 5->6 9x13 (odd width)", {K_C2, O3(2, 2, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {2, 5, 6, 1, {1, 9, 13}, {1, 5, 7}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}}},
        {"1x1 stride (2, 3) conv2d groups 2", {K_C2, O3(2, 3, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2)}, 2,
         {2, 6, 4, 2, {1, 9, 10}, {1, 5, 4}, {1, 1, 1}, {1, 2, 3}, {0, 0, 0}, {1, 1, 1}}},
        {"1x1 stride 3 conv1d", {K_C1, O3(3, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 1,
         {2, 5, 3, 1, {1, 1, 20}, {1, 1, 7}, {1, 1, 1}, {1, 1, 3}, {0, 0, 0}, {1, 1, 1}}},
        {"1x1 stride (2, 1, 2) conv3d", {K_C3, O3(2, 1, 2, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 3,
         {2, 3, 4, 1, {5, 4, 7}, {3, 4, 4}, {1, 1, 1}, {2, 1, 2}, {0, 0, 0}, {1, 1, 1}}},
        {"1x1 stride 2 conv_transpose2d output_padding 1", {K_CT2, O3(2, 2, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1)}, 2,
         {2, 3, 5, 1, {1, 8, 10}, {1, 4, 5}, {1, 1, 1}, {1, 2, 2}, {0, 0, 0}, {1, 1, 1}}},
        {"winograd conv_transpose2d 12->16 stride 1 pad 1", {K_CT2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {2, 16, 12, 1, {1, 11, 14}, {1, 11, 14}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        /* the direct weight gradient over images of 410 KB of copies each:
         * one per chunk (WG_BYTES), so an image range of two takes two chunks
         * (the first stores its sums, the second adds) */
        {"conv2d 16->8 64x64, 9 images (weight gradient in chunks)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {9, 16, 8, 1, {1, 64, 64}, {1, 64, 64}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        /* strided k > 1: the input gradient as one stride-1 convolution per
         * phase of dX (conv.c's sbd_run): a ResNet's downsampling layer;
         * strides (2, 3) with kernel (3, 5), padding (1, 2), dilation and
         * groups; 1-D with a kernel of 4 at stride 3; stride 4 with a 3x3
         * kernel (a phase no tap reaches: zeros); an odd and wide dX row (the
         * interleave's tail and several 32-column steps); a transposed
         * convolution with output padding (its forward is this path) */
        {"strided conv2d 16->32 3x3 stride 2 pad 1, 28x28", {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 16, 32, 1, {1, 28, 28}, {1, 14, 14}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}}},
        {"strided conv2d groups 2, stride (2, 3), k (3, 5), dilation (1, 2)", {K_C2, O3(2, 3, 1, 1, 2, 0, 1, 2, 1, 0, 0, 0, 2)}, 2,
         {2, 8, 12, 2, {1, 13, 20}, {1, 7, 6}, {1, 3, 5}, {1, 2, 3}, {0, 1, 2}, {1, 1, 2}}},
        {"strided conv1d k4 stride 3 pad 1", {K_C1, O3(3, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 1,
         {2, 6, 10, 1, {1, 1, 31}, {1, 1, 10}, {1, 1, 4}, {1, 1, 3}, {0, 0, 1}, {1, 1, 1}}},
        {"strided conv2d 3x3 stride 4 pad 0 (a phase without taps)", {K_C2, O3(4, 4, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {2, 8, 16, 1, {1, 19, 23}, {1, 5, 6}, {1, 3, 3}, {1, 4, 4}, {0, 0, 0}, {1, 1, 1}}},
        {"strided conv2d 4->8 stride 2 pad 1, 9x71 (odd, wide rows)", {K_C2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {2, 4, 8, 1, {1, 9, 71}, {1, 5, 36}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}}},
        {"strided conv_transpose2d 12->16 stride 2 pad 1 output_padding 1", {K_CT2, O3(2, 2, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1)}, 2,
         {2, 16, 12, 1, {1, 14, 16}, {1, 7, 8}, {1, 3, 3}, {1, 2, 2}, {0, 1, 1}, {1, 1, 1}}},
    };
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        const dcase *c = &cs[ci];
        const int Cg = c->g.C / c->g.G, Og = c->g.O / c->g.G;
        /* Winograd wherever it applies: AUTO leaves small images to others */
        const bool wino = !strncmp(c->name, "winograd", 8);
        if (wino) cx_conv_set_algo(CX_CONV_WINOGRAD);
        const long sbd0 = cx_conv_sbd_calls;
        const long calls = check_case(c, (int)ci);
        if (!strncmp(c->name, "strided", 7))
            CHECK_MSG(cx_conv_sbd_calls - sbd0 == 1, "%s: %ld strided direct input gradients, expected 1",
                      c->name, cx_conv_sbd_calls - sbd0);
        if (wino)
            CHECK_MSG(calls == 2 + (Cg >= 16 && Og >= 8 ? 1 : 0),
                      "%s: %ld Winograd calls, expected forward, input gradient and (16 or more "
                      "input channels) weight gradient", c->name, calls);
        cx_conv_set_algo(CX_CONV_AUTO);
    }
}

static long check_case(const dcase *c, int ci) {
    const rgeom *g = &c->g;
    const bool tr = c->sp.k == K_CT2;
    const int off = 3 - c->nd, Cg = g->C / g->G, Og = g->O / g->G;
    int xs[5] = {g->N, tr ? g->O : g->C}, ws[5] = {tr ? g->C / g->G : g->O, tr ? Og : Cg};
    if (tr) ws[0] = g->O, ws[1] = Cg; /* [in = O, out/groups, k...] */
    for (int i = 0; i < c->nd; i++) {
        xs[2 + i] = tr ? g->out[off + i] : g->in[off + i];
        ws[2 + i] = g->k[off + i];
    }
    cx_seed(31 + (uint64_t)ci);
    cx_tensor *x = leaf(xs, c->nd + 2), *w = leaf(ws, c->nd + 2);
    cx_tensor *b = leaf((int[]){tr ? g->C : g->O}, 1);
    const long wino0 = cx_conv_wino_calls;
    cx_tensor *y = run_conv(&c->sp, x, w, b);
    cx_tensor *G = cx_randn(y->shape, y->ndim, 0, 1);
    cx_backward_with(y, CX_F(G));
    const long calls = cx_conv_wino_calls - wino0;
    const int64_t inN = (int64_t)g->N * g->C * g->in[0] * g->in[1] * g->in[2];
    const int64_t outN = (int64_t)g->N * g->O * g->out[0] * g->out[1] * g->out[2];
    const int64_t wn = w->numel;
    double *ry = calloc((size_t)outN, sizeof(double)), *rx = calloc((size_t)inN, sizeof(double));
    double *rw = calloc((size_t)wn, sizeof(double));
    float *fy = malloc((size_t)(outN > inN ? outN : inN) * sizeof(float));
    float *fw = malloc((size_t)wn * sizeof(float));
    char what[128];
    if (!tr) {
        ref_conv(g, CX_F(x), CX_F(w), CX_F(G), ry, rx, rw);
        const int64_t outP = outN / ((int64_t)g->N * g->O);
        for (int64_t i = 0; i < outN; i++) fy[i] = (float)(ry[i] + CX_F(b)[i / outP % g->O]);
        snprintf(what, sizeof what, "%s: forward", c->name);
        cxt_allclose(CX_F(y), fy, (long)outN, 1e-4, 1e-4, what);
        for (int64_t i = 0; i < inN; i++) fy[i] = (float)rx[i];
        snprintf(what, sizeof what, "%s: grad x", c->name);
        cxt_allclose(x->grad, fy, (long)inN, 1e-4, 1e-4, what);
    } else {
        /* result = input gradient of the view with gy = x; its gradient
         * G is the view's input, so grad x = the view's forward of G. */
        ref_conv(g, CX_F(G), CX_F(w), CX_F(x), ry, rx, rw);
        const int64_t inP = inN / ((int64_t)g->N * g->C);
        for (int64_t i = 0; i < inN; i++) fy[i] = (float)(rx[i] + CX_F(b)[i / inP % g->C]);
        snprintf(what, sizeof what, "%s: forward", c->name);
        cxt_allclose(CX_F(y), fy, (long)inN, 1e-4, 1e-4, what);
        for (int64_t i = 0; i < outN; i++) fy[i] = (float)ry[i];
        snprintf(what, sizeof what, "%s: grad x", c->name);
        cxt_allclose(x->grad, fy, (long)outN, 1e-4, 1e-4, what);
    }
    for (int64_t i = 0; i < wn; i++) fw[i] = (float)rw[i];
    snprintf(what, sizeof what, "%s: grad w", c->name);
    cxt_allclose(w->grad, fw, (long)wn, 1e-4, 1e-3, what);
    free(ry);
    free(rx);
    free(rw);
    free(fy);
    free(fw);
    cx_step_reset();
    return calls;
}

/* Small images (at most 256 output positions) fold a chunk of images into
 * one GEMM; AUTO also leaves their forward pass and weight gradient to the
 * folded GEMM / direct kernels instead of Winograd (at most 64 positions).
 * Every algorithm against the double-precision reference: the pixel-DQN
 * network on Catch (10x5 frames), strides (the indexed column copy),
 * dilation, groups, 1-D, cropping padding, a transposed convolution, and
 * enough images for several folded chunks. */
static void small_images(void) {
    const dcase cs[] = {
        {"small conv2d 1->16 pad 1, 10x5 (Catch layer 1)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {6, 1, 16, 1, {1, 10, 5}, {1, 10, 5}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"small conv2d 16->32 pad 1, 10x5 (Catch layer 2)", {K_C2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {6, 16, 32, 1, {1, 10, 5}, {1, 10, 5}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
        {"small conv2d 3->5 stride 2x3 pad 1, 9x11", {K_C2, O3(2, 3, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {5, 3, 5, 1, {1, 9, 11}, {1, 5, 4}, {1, 3, 3}, {1, 2, 3}, {0, 1, 1}, {1, 1, 1}}},
        {"small conv2d groups 2 of 4->3, dilation 2, pad 2, 6x7", {K_C2, O3(1, 1, 1, 2, 2, 0, 2, 2, 1, 0, 0, 0, 2)}, 2,
         {4, 8, 6, 2, {1, 6, 7}, {1, 6, 7}, {1, 3, 3}, {1, 1, 1}, {0, 2, 2}, {1, 2, 2}}},
        {"small conv1d 4->6 k5 pad 1, 30 (1-D)", {K_C1, O3(1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 1,
         {3, 4, 6, 1, {1, 1, 30}, {1, 1, 28}, {1, 1, 5}, {1, 1, 1}, {0, 0, 1}, {1, 1, 1}}},
        {"small conv2d 64->40 pad 0, 6x5, 70 images (several chunks)", {K_C2, O3(1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {70, 64, 40, 1, {1, 6, 5}, {1, 4, 3}, {1, 3, 3}, {1, 1, 1}, {0, 0, 0}, {1, 1, 1}}},
        {"small conv_transpose2d 12->16 stride 1 pad 1, 7x6", {K_CT2, O3(1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1)}, 2,
         {3, 16, 12, 1, {1, 7, 6}, {1, 7, 6}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}}},
    };
    const cx_conv_algo algos[4] = {CX_CONV_AUTO, CX_CONV_GEMM, CX_CONV_DIRECT, CX_CONV_WINOGRAD};
    for (int a = 0; a < 4; a++) {
        cx_conv_set_algo(algos[a]);
        for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
            const long calls = check_case(&cs[ci], 100 + (int)ci);
            if (ci == 1) {
                /* AUTO: Winograd for the input gradient only, unless the
                 * channel-vector direct path (AVX-512) takes it; WINOGRAD:
                 * all three */
#if defined(__AVX512F__)
                const long auto_wino = 0;
#else
                const long auto_wino = 1;
#endif
                const long want = algos[a] == CX_CONV_AUTO ? auto_wino : algos[a] == CX_CONV_WINOGRAD ? 3 : 0;
                CHECK_MSG(calls == want, "%s, algorithm %d: %ld Winograd calls, expected %ld",
                          cs[ci].name, (int)algos[a], calls, want);
            }
        }
    }
    cx_conv_set_algo(CX_CONV_AUTO);
}

/* ---------------------------------------------------------------- the lecture example */
/* The notes print values truncated (not rounded) to 2 decimals: 7/9 -> 0.77,
 * 5/9 -> 0.55; zeros after the ReLU print as "0". */
static void fmt2(float v, char *buf, size_t n) {
    double t = trunc((double)v * 100.0 + (v >= 0 ? 1e-4 : -1e-4)) / 100.0;
    if (t == 0) snprintf(buf, n, "0");
    else snprintf(buf, n, "%.2f", t);
}

static void check_table(const cx_tensor *t, int64_t off, int rows, int cols, const char *want,
                        const char *what) {
    char got[1024] = "", cell[16];
    size_t len = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            fmt2(CX_F(t)[off + i * cols + j], cell, sizeof cell);
            len += (size_t)snprintf(got + len, sizeof got - len, "%s%s", cell,
                                    j + 1 < cols ? " " : (i + 1 < rows ? "\n" : ""));
        }
    CHECK_MSG(!strcmp(got, want), "%s:\n%s\nexpected\n%s", what, got, want);
}

static void lecture_x_example(void) {
    static const float img[81] = {
        -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, 1, -1, -1, -1, -1, -1, 1, -1,
        -1, -1, 1, -1, -1, -1, 1, -1, -1,
        -1, -1, -1, 1, -1, 1, -1, -1, -1,
        -1, -1, -1, -1, 1, -1, -1, -1, -1,
        -1, -1, -1, 1, -1, 1, -1, -1, -1,
        -1, -1, 1, -1, -1, -1, 1, -1, -1,
        -1, 1, -1, -1, -1, -1, -1, 1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1};
    static const float filt[27] = {
        1, -1, -1, -1, 1, -1, -1, -1, 1,   /* "\" diagonal */
        1, -1, 1, -1, 1, -1, 1, -1, 1,     /* "x" */
        -1, -1, 1, -1, 1, -1, 1, -1, -1};  /* "/" diagonal */
    cx_tensor *x = cx_from_data(img, CX_SHAPE(1, 1, 9, 9));
    cx_tensor *w = cx_mul_scalar(cx_from_data(filt, CX_SHAPE(3, 1, 3, 3)), 1.0f / 9.0f);
    cx_tensor *y = cx_conv2d(x, w, NULL, 1, 1, 0, 0, 1, 1, 1);
    CHECK(y->shape[1] == 3 && y->shape[2] == 7 && y->shape[3] == 7);
    check_table(y, 0, 7, 7,
                "0.77 -0.11 0.11 0.33 0.55 -0.11 0.33\n"
                "-0.11 1.00 -0.11 0.33 -0.11 0.11 -0.11\n"
                "0.11 -0.11 1.00 -0.33 0.11 -0.11 0.55\n"
                "0.33 0.33 -0.33 0.55 -0.33 0.33 0.33\n"
                "0.55 -0.11 0.11 -0.33 1.00 -0.11 0.11\n"
                "-0.11 0.11 -0.11 0.33 -0.11 1.00 -0.11\n"
                "0.33 -0.11 0.55 0.33 0.11 -0.11 0.77", "feature map 1");
    check_table(y, 49, 7, 7,
                "0.33 -0.55 0.11 -0.11 0.11 -0.55 0.33\n"
                "-0.55 0.55 -0.55 0.33 -0.55 0.55 -0.55\n"
                "0.11 -0.55 0.55 -0.77 0.55 -0.55 0.11\n"
                "-0.11 0.33 -0.77 1.00 -0.77 0.33 -0.11\n"
                "0.11 -0.55 0.55 -0.77 0.55 -0.55 0.11\n"
                "-0.55 0.55 -0.55 0.33 -0.55 0.55 -0.55\n"
                "0.33 -0.55 0.11 -0.11 0.11 -0.55 0.33", "feature map 2");
    check_table(y, 98, 7, 7,
                "0.33 -0.11 0.55 0.33 0.11 -0.11 0.77\n"
                "-0.11 0.11 -0.11 0.33 -0.11 1.00 -0.11\n"
                "0.55 -0.11 0.11 -0.33 1.00 -0.11 0.11\n"
                "0.33 0.33 -0.33 0.55 -0.33 0.33 0.33\n"
                "0.11 -0.11 1.00 -0.33 0.11 -0.11 0.55\n"
                "-0.11 1.00 -0.11 0.33 -0.11 0.11 -0.11\n"
                "0.77 -0.11 0.11 0.33 0.55 -0.11 0.33", "feature map 3");
    /* ReLU of the first map */
    cx_tensor *r = cx_relu(y);
    check_table(r, 0, 7, 7,
                "0.77 0 0.11 0.33 0.55 0 0.33\n"
                "0 1.00 0 0.33 0 0.11 0\n"
                "0.11 0 1.00 0 0.11 0 0.55\n"
                "0.33 0.33 0 0.55 0 0.33 0.33\n"
                "0.55 0 0.11 0 1.00 0 0.11\n"
                "0 0.11 0 0.33 0 1.00 0\n"
                "0.33 0 0.55 0.33 0.11 0 0.77", "ReLU of map 1");
    /* 2x2 max pooling, stride 2: the notes keep the partial last window
     * (7 -> 4), i.e. PyTorch's ceil_mode. */
    cx_pool_opts po = cx_pool2d_defaults(2, 2);
    po.ceil_mode = true;
    cx_tensor *p = cx_max_pool2d_ex(y, &po);
    CHECK(p->shape[2] == 4 && p->shape[3] == 4);
    check_table(p, 0, 4, 4, "1.00 0.33 0.55 0.33\n0.33 1.00 0.33 0.55\n0.55 0.33 1.00 0.11\n0.33 0.55 0.11 0.77",
                "pooled map 1");
    check_table(p, 16, 4, 4, "0.55 0.33 0.55 0.33\n0.33 1.00 0.55 0.11\n0.55 0.55 0.55 0.11\n0.33 0.11 0.11 0.33",
                "pooled map 2");
    check_table(p, 32, 4, 4, "0.33 0.55 1.00 0.77\n0.55 0.55 1.00 0.33\n1.00 1.00 0.11 0.55\n0.77 0.33 0.55 0.33",
                "pooled map 3");
    /* the global maximum of map 1 ("maximum" slide) */
    CHECK_NEAR(cx_item(cx_max_axis(cx_reshape(cx_slice(y, 1, 0, 1, 1), CX_SHAPE(1, 49)), 1, false)), 1.0, 1e-6);
}

/* Outputs narrower than a vector run direct over the padded-width rows (the
 * extra columns computed and dropped), and strided convolutions at batch 1
 * over polyphase planes: forward with bias, input and weight gradients equal
 * the GEMM path's. 64 ch 7x7, dilated 9x6, 2 images 3x5 with padding 0, a
 * 1-D conv of length 9; stride 2 (3x3 28x28, dilated, 2x2 kernel with an odd
 * width, padding 3 on rows 70 wide), a 1-D and a 2-D stride 3; stride-1 rows
 * of exactly one and two vectors. */
/* Forward, then backward with a random output gradient: a malloc'ed copy of
 * [y | dL/dx | dL/dw] and the three sizes. */
static float *conv_and_grads(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o, int64_t *ny,
                             int64_t *nx, int64_t *nw) {
    cx_tensor *y = cx_conv(x, w, b, o);
    cx_tensor *g = cx_randn(y->shape, y->ndim, 0, 1);
    cx_backward_with(y, CX_F(g));
    *ny = y->numel, *nx = x->numel, *nw = w->numel;
    float *r = malloc((size_t)(*ny + *nx + *nw) * sizeof(float));
    memcpy(r, CX_F(y), (size_t)*ny * sizeof(float));
    memcpy(r + *ny, x->grad, (size_t)*nx * sizeof(float));
    memcpy(r + *ny + *nx, w->grad, (size_t)*nw * sizeof(float));
    return r;
}

static void narrow_direct_agrees(void) {
    const cx_conv_algo saved = cx_conv_get_algo();
    static const int cases[][10] = {
        /* N, C, O, H, W, k, pad, dil, 1-D, stride */
        {1, 64, 64, 7, 7, 3, 1, 1, 0, 1},
        {2, 8, 12, 9, 6, 3, 2, 2, 0, 1},
        {2, 6, 10, 5, 7, 3, 0, 1, 0, 1},
        {3, 8, 8, 1, 9, 3, 1, 1, 1, 1},
        /* strided at batch 1: polyphase planes */
        {1, 16, 32, 28, 28, 3, 1, 1, 0, 2},
        {1, 5, 7, 9, 11, 3, 1, 2, 0, 2},
        {1, 4, 8, 1, 60, 5, 2, 1, 1, 3},
        {1, 32, 64, 14, 13, 2, 0, 1, 0, 2},
        /* the padding's row copies: padding wider than the stride, rows of
         * several vectors (stride 2: several permutes), a stride of 3 in
         * 2-D, and stride-1 rows of exactly one and two vectors (no zero
         * lanes left in the last vector for the padding after it) */
        {1, 4, 8, 11, 70, 3, 3, 1, 0, 2},
        {1, 6, 8, 13, 40, 5, 2, 1, 0, 3},
        {2, 8, 8, 5, 16, 3, 1, 1, 0, 1},
        {1, 8, 8, 4, 32, 5, 2, 1, 0, 1},
    };
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        const int *c = cases[ci];
        float *ref[2] = {NULL, NULL};
        int64_t ny = 0, nx = 0, nw = 0;
        for (int a = 0; a < 2; a++) {
            cx_conv_set_algo(a ? CX_CONV_DIRECT : CX_CONV_GEMM);
            cx_seed(40 + (uint64_t)ci);
            cx_tensor *x, *w, *b = leaf(CX_SHAPE(c[2]));
            cx_conv_opts o = cx_conv_defaults();
            o.padding[0] = o.padding[1] = c[6];
            o.dilation[0] = o.dilation[1] = c[7];
            o.stride[0] = o.stride[1] = c[9];
            if (c[8]) {
                x = leaf(CX_SHAPE(c[0], c[1], c[4]));
                w = leaf(CX_SHAPE(c[2], c[1], c[5]));
            } else {
                x = leaf(CX_SHAPE(c[0], c[1], c[3], c[4]));
                w = leaf(CX_SHAPE(c[2], c[1], c[5], c[5]));
            }
            ref[a] = conv_and_grads(x, w, b, &o, &ny, &nx, &nw);
            cx_step_reset();
        }
        char what[64];
        snprintf(what, sizeof what, "narrow case %d: direct vs gemm", ci);
        cxt_allclose(ref[1], ref[0], (long)(ny + nx + nw), 1e-4, 1e-4, what);
        free(ref[0]);
        free(ref[1]);
    }
    cx_conv_set_algo(saved);
}

/* The channel-vector direct convolution (vectors over output channels, the
 * input by broadcast: conv.c's cvec_run) on the shapes it takes: 16, 32,
 * 48, 64 and 96 output channels (one or two vectors per tile, several
 * channel blocks), widths 2-14 and 28 (row segments 2-7 wide, and the
 * tiles of fewer rows at the bottom), padding 0-2, dilation, stride 2
 * (polyphase planes), groups, a 1-D and a 3-D convolution: forward with
 * bias, input and weight gradients equal the GEMM path's, and (AVX-512
 * builds) the path ran, forward and for the input gradient (flipped
 * weight) where the input channels allow it; under AUTO on a small image
 * it takes both the forward pass and the input gradient. */
static void cvec_agrees(void) {
    const cx_conv_algo saved = cx_conv_get_algo();
    static const int cases[][12] = {
        /* N, C, O, H, W, k, pad, dil, nd (1-3), stride, groups, AUTO (else DIRECT) */
        {1, 64, 64, 7, 7, 3, 1, 1, 2, 1, 1},
        {2, 32, 32, 6, 4, 3, 1, 1, 2, 1, 1},
        {1, 32, 32, 8, 2, 3, 1, 1, 2, 1, 1},
        {1, 16, 32, 16, 3, 3, 1, 1, 2, 1, 1},
        {3, 16, 32, 10, 5, 3, 1, 1, 2, 1, 1},
        {1, 32, 48, 9, 6, 3, 2, 2, 2, 1, 1},
        {1, 32, 32, 13, 8, 3, 1, 1, 2, 1, 1},
        {1, 32, 32, 3, 9, 3, 0, 1, 2, 1, 1},
        {1, 32, 96, 7, 11, 3, 1, 1, 2, 1, 1},
        {2, 32, 64, 6, 13, 3, 1, 1, 2, 1, 1},
        {1, 32, 32, 14, 14, 3, 1, 1, 2, 1, 1},
        {1, 16, 32, 5, 12, 3, 1, 1, 2, 1, 1},
        {1, 16, 16, 7, 7, 3, 1, 1, 2, 1, 1},
        {4, 16, 16, 10, 5, 3, 1, 1, 2, 1, 1},
        {1, 16, 32, 28, 28, 3, 1, 1, 2, 2, 1},
        {1, 32, 64, 14, 14, 3, 1, 1, 2, 2, 1},
        {1, 64, 64, 9, 9, 3, 1, 1, 2, 1, 2},
        {2, 32, 32, 1, 19, 5, 2, 1, 1, 1, 1},
        {1, 16, 32, 4, 14, 3, 1, 1, 3, 1, 1}, /* 3-D: 3 x 4 x 14 */
        /* AUTO: the pixel DQN's second layer; forward and input gradient */
        {8, 16, 32, 10, 5, 3, 1, 1, 2, 1, 1, 1},
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int ci = 0; ci < ncases; ci++) {
        const int *c = cases[ci];
        const int N = c[0], C = c[1], O = c[2], H = c[3], W = c[4], k = c[5], nd = c[8], G = c[10];
        float *ref[2] = {NULL, NULL};
        int64_t ny = 0, nx = 0, nw = 0;
        long calls = 0;
        for (int a = 0; a < 2; a++) {
            cx_conv_set_algo(!a ? CX_CONV_GEMM : c[11] ? CX_CONV_AUTO : CX_CONV_DIRECT);
            cx_seed(70 + (uint64_t)ci);
            cx_conv_opts o = cx_conv_defaults();
            for (int i = 0; i < 3; i++) {
                o.padding[i] = c[6];
                o.dilation[i] = c[7];
                o.stride[i] = c[9];
            }
            o.groups = G;
            cx_tensor *x, *w, *b = leaf(CX_SHAPE(O));
            if (nd == 1) {
                x = leaf(CX_SHAPE(N, C, W));
                w = leaf(CX_SHAPE(O, C / G, k));
            } else if (nd == 2) {
                x = leaf(CX_SHAPE(N, C, H, W));
                w = leaf(CX_SHAPE(O, C / G, k, k));
            } else {
                x = leaf(CX_SHAPE(N, C, 3, H, W));
                w = leaf(CX_SHAPE(O, C / G, k, k, k));
            }
            const long c0 = cx_conv_cvec_calls;
            ref[a] = conv_and_grads(x, w, b, &o, &ny, &nx, &nw);
            if (a) calls = cx_conv_cvec_calls - c0;
            cx_step_reset();
        }
        char what[96];
        snprintf(what, sizeof what, "cvec case %d (%d->%d, %dx%d): direct vs gemm", ci, C, O, H, W);
        cxt_allclose(ref[1], ref[0], (long)(ny + nx + nw), 1e-4, 1e-4, what);
#if defined(__AVX512F__)
        CHECK_MSG(calls >= 1 + c[11], "cvec case %d (%d->%d, %dx%d): the channel-vector path ran %ld times",
                  ci, C, O, H, W, calls);
#else
        (void)calls;
#endif
        free(ref[0]);
        free(ref[1]);
    }
    cx_conv_set_algo(saved);
}

int main(void) {
    RUN(gradcheck_all);
    RUN(torch_fixtures);
    RUN(error_messages);
    RUN(output_sizes);
    RUN(modules);
    RUN(thread_determinism);
    RUN(tiled_vs_direct);
    RUN(direct_paths);
    RUN(algorithms_agree);
    RUN(strided_accumulates);
    RUN(narrow_direct_agrees);
    RUN(cvec_agrees);
    RUN(small_images);
    RUN(few_channel_nonfinite);
    RUN(lecture_x_example);
    TEST_END();
}
