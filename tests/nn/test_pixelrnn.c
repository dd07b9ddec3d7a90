/* PixelRNN pieces: masked convolutions (mask A / B) and the Row LSTM against
 * PyTorch (tools/gen_pixelrnn_fixtures.py ->
 * tests/fixtures/pixelrnn/pixelrnn.safetensors, override with
 * CX_PIXELRNN_FIXTURES), finite differences, causality of the whole model
 * (the output at pixel (r, c) does not depend on any pixel at or after
 * (r, c) in raster order: gradient exactly 0, forward bitwise unchanged),
 * ancestral sampling, argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CONV_CASES[] = {"mconv_a7", "mconv_b3", "mconv_b13", "mconv_a35"};
static const char *const ROW_CASES[] = {"row_k3", "row_k5"};

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the PixelRNN fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_pixelrnn_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "mconv_a7,mconv_b3,mconv_b13,mconv_a35,row_k3,row_k5"));
}

/* a leaf step copy of a fixture tensor that requires grad */
static cx_tensor *leaf(const char *c, const char *what) {
    cx_tensor *t = fx(c, what);
    cx_tensor *l = cx_from_data(CX_F(t), t->shape, t->ndim);
    l->requires_grad = true;
    return l;
}

static void masks(void) {
    cx_tensor *a = cx_conv_mask_new(7, 7, CX_MASK_A), *b = cx_conv_mask_new(7, 7, CX_MASK_B);
    double sa = 0, sb = 0;
    for (int i = 0; i < 49; i++) sa += CX_F(a)[i], sb += CX_F(b)[i];
    CHECK(sa == 24 && sb == 25);                       /* 3 rows of 7 + 3 left of the centre (+ centre) */
    CHECK(CX_F(a)[24] == 0.0f && CX_F(b)[24] == 1.0f); /* the centre */
    CHECK(CX_F(a)[23] == 1.0f && CX_F(a)[25] == 0.0f && CX_F(a)[6] == 1.0f && CX_F(a)[28] == 0.0f);
    cx_tensor *r = cx_conv_mask_new(1, 3, CX_MASK_B);
    CHECK(CX_F(r)[0] == 1.0f && CX_F(r)[1] == 1.0f && CX_F(r)[2] == 0.0f);
    cx_tensor *one = cx_conv_mask_new(1, 1, CX_MASK_A);
    CHECK(CX_F(one)[0] == 0.0f);
    for (int i = 0; i < 4; i++) {
        if (!FX) break;
        const char *c = CONV_CASES[i];
        cx_tensor *w = fx(c, "w");
        cx_tensor *m = cx_conv_mask_new(w->shape[2], w->shape[3], (cx_conv_mask)cxt_fx_int(FX, c, "type"));
        cxt_allclose(CX_F(m), CX_F(fx(c, "mask")), (long)m->numel, 0, 0, c);
    }
}

static void matches_torch(void) {
    char what[96];
    for (int i = 0; i < 4; i++) {
        const char *c = CONV_CASES[i];
        cx_tensor *x = leaf(c, "x"), *w = leaf(c, "w"), *b = leaf(c, "b");
        cx_tensor *y = cx_masked_conv2d(x, w, b, (cx_conv_mask)cxt_fx_int(FX, c, "type"));
        snprintf(what, sizeof what, "%s forward", c);
        CHECK(y->numel == fx(c, "out")->numel);
        cxt_allclose(CX_F(y), CX_F(fx(c, "out")), (long)y->numel, 1e-5, 1e-5, what);
        cx_backward_with(y, CX_F(fx(c, "gout")));
        snprintf(what, sizeof what, "%s grad x", c);
        cxt_allclose(x->grad, CX_F(fx(c, "gx")), (long)x->numel, 1e-4, 1e-5, what);
        snprintf(what, sizeof what, "%s grad w", c);
        cxt_allclose(w->grad, CX_F(fx(c, "gw")), (long)w->numel, 1e-4, 1e-5, what);
        snprintf(what, sizeof what, "%s grad b", c);
        cxt_allclose(b->grad, CX_F(fx(c, "gb")), (long)b->numel, 1e-4, 1e-5, what);
        cx_step_reset();
    }
    for (int i = 0; i < 2; i++) {
        const char *c = ROW_CASES[i];
        cx_tensor *x = leaf(c, "x"), *wi = leaf(c, "w_is"), *bi = leaf(c, "b_is"), *ws = leaf(c, "w_ss"),
                  *bs = leaf(c, "b_ss");
        cx_tensor *y = cx_row_lstm(x, wi, bi, ws, bs);
        cx_tensor *want = fx(c, "out");
        CHECK(y->ndim == 4 && y->numel == want->numel && y->shape[1] == want->shape[1]);
        snprintf(what, sizeof what, "%s forward", c);
        cxt_allclose(CX_F(y), CX_F(want), (long)y->numel, 1e-5, 1e-5, what);
        cx_backward_with(y, CX_F(fx(c, "gout")));
        const char *names[5] = {"gx", "gw_is", "gb_is", "gw_ss", "gb_ss"};
        cx_tensor *ts[5] = {x, wi, bi, ws, bs};
        for (int k = 0; k < 5; k++) {
            snprintf(what, sizeof what, "%s %s", c, names[k]);
            cxt_allclose(ts[k]->grad, CX_F(fx(c, names[k])), (long)ts[k]->numel, 1e-4, 1e-5, what);
        }
        cx_step_reset();
    }
}

typedef struct {
    cx_tensor *R;
    cx_conv_mask type;
    cx_module *m;
} gc_ctx;

static cx_tensor *mconv_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_tanh(cx_masked_conv2d(in[0], in[1], in[2], c->type)), c->R));
}
static cx_tensor *row_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_row_lstm(in[0], in[1], in[2], in[3], in[4]), c->R));
}
static cx_tensor *model_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_module_forward(c->m, in[0]), c->R));
}

static cx_tensor *rnd(int a, int b, int c, int d, float s) {
    cx_tensor *t = cx_randn(CX_SHAPE(a, b, c, d), 0, s);
    t->requires_grad = true;
    return t;
}

static void gradcheck(void) {
    cx_seed(5);
    for (int t = 0; t < 2; t++) {
        cx_tensor *ins[3] = {rnd(2, 2, 5, 4, 1), rnd(3, 2, 3, 3, 0.5f), cx_randn(CX_SHAPE(3), 0, 0.5f)};
        ins[2]->requires_grad = true;
        gc_ctx c = {cx_randn(CX_SHAPE(2, 3, 5, 4), 0, 1), (cx_conv_mask)t, NULL};
        double worst = cx_gradcheck(mconv_fn, ins, 3, &c, 1e-2f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "masked conv %c: worst %g", t ? 'B' : 'A', worst);
    }
    int h = 3;
    cx_tensor *ins[5] = {rnd(2, 2, 4, 5, 1), rnd(4 * h, 2, 1, 3, 0.5f), cx_randn(CX_SHAPE(4 * h), 0, 0.3f),
                         cx_randn(CX_SHAPE(4 * h, h, 3), 0, 0.5f), cx_randn(CX_SHAPE(4 * h), 0, 0.3f)};
    for (int k = 2; k < 5; k++) ins[k]->requires_grad = true;
    gc_ctx c = {cx_randn(CX_SHAPE(2, h, 4, 5), 0, 1), CX_MASK_B, NULL};
    double worst = cx_gradcheck(row_fn, ins, 5, &c, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "row lstm: worst %g", worst);
    /* the whole model: input and every parameter (a seed whose ReLU inputs
     * are all further than the step from their kink) */
    cx_seed(6);
    cx_module *m = cx_pixelrnn_new(3, 2);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(ps.n == 2 + 2 * 6 + 4);
    cx_tensor *mins[32];
    mins[0] = rnd(1, 1, 4, 3, 1);
    for (int i = 0; i < ps.n && i < 31; i++) mins[i + 1] = ps.t[i];
    gc_ctx cm = {cx_randn(CX_SHAPE(1, 1, 4, 3), 0, 1), CX_MASK_B, m};
    /* eps 1e-3: the ReLUs of the head have kinks a larger step crosses */
    worst = cx_gradcheck(model_fn, mins, ps.n + 1, &cm, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "pixelrnn model: worst %g", worst);
    cx_params_free(&ps);
    cx_module_free(m);
}

/* Gradient of output element `p` (one channel-0 map [N=1, ., H, W]) of
 * fn(x) with respect to x [1, C, H, W]; grad copied to g (C*H*W floats). */
typedef cx_tensor *(*img_fn)(cx_tensor *x, void *user);

static void grad_of_pixel(img_fn fn, void *user, const float *x0, int C, int H, int W, int p, float *g,
                          float *val) {
    cx_tensor *x = cx_from_data(x0, CX_SHAPE(1, C, H, W));
    x->requires_grad = true;
    cx_tensor *y = fn(x, user);
    float *go = calloc((size_t)y->numel, sizeof(float));
    go[p] = 1.0f; /* channel 0 of the output */
    *val = CX_F(y)[p];
    cx_backward_with(y, go);
    for (int i = 0; i < C * H * W; i++) g[i] = x->grad ? x->grad[i] : 0.0f;
    free(go);
    cx_step_reset();
}

static cx_tensor *model_img(cx_tensor *x, void *user) { return cx_module_forward(user, x); }
static cx_tensor *mconv_img(cx_tensor *x, void *user) {
    cx_tensor *w = user;
    return cx_masked_conv2d(x, w, NULL, CX_MASK_A);
}
static cx_tensor *mconv_b_img(cx_tensor *x, void *user) {
    cx_tensor *w = user;
    return cx_masked_conv2d(x, w, NULL, CX_MASK_B);
}
typedef struct {
    cx_tensor *wi, *bi, *ws, *bs;
} row_w;
static cx_tensor *row_img(cx_tensor *x, void *user) {
    row_w *r = user;
    return cx_row_lstm(x, r->wi, r->bi, r->ws, r->bs);
}

/* Checks of the PixelRNN property on fn: for every output pixel p, the
 * gradient with respect to every input pixel q >= p (q > p when
 * `self_ok`: a mask-B layer may see its own position) is exactly 0, some
 * earlier pixel has a non-zero gradient, and changing all inputs at q >= p
 * leaves output p bitwise unchanged. Returns the number of violations. */
static bool quiet; /* no details for the expected violations */

static int causality(img_fn fn, void *user, int C, int H, int W, bool self_ok, int *seen_past) {
    int n = C * H * W, bad = 0;
    float *x0 = malloc(sizeof(float) * (size_t)n), *x1 = malloc(sizeof(float) * (size_t)n);
    float *g = malloc(sizeof(float) * (size_t)n), *g1 = malloc(sizeof(float) * (size_t)n);
    cx_rng r = cx_rng_new(11);
    for (int i = 0; i < n; i++) x0[i] = cx_rng_uniform(&r) < 0.5f ? 1.0f : 0.0f;
    *seen_past = 0;
    for (int p = 0; p < H * W; p++) {
        float v0, v1;
        grad_of_pixel(fn, user, x0, C, H, W, p, g, &v0);
        int first = self_ok ? p + 1 : p, nz_past = 0;
        for (int ch = 0; ch < C; ch++)
            for (int q = 0; q < H * W; q++) {
                float gq = g[ch * H * W + q];
                if (q >= first && gq != 0.0f) {
                    if (bad < 5 && !quiet) fprintf(stderr, "    output %d depends on input %d (grad %g)\n", p, q, gq);
                    bad++;
                }
                if (q < p && gq != 0.0f) nz_past++;
            }
        if (nz_past) (*seen_past)++;
        /* the future (from `first` on) replaced: output p stays bitwise the same */
        memcpy(x1, x0, sizeof(float) * (size_t)n);
        for (int ch = 0; ch < C; ch++)
            for (int q = first; q < H * W; q++) x1[ch * H * W + q] = 1.0f - x0[ch * H * W + q] + 0.5f;
        grad_of_pixel(fn, user, x1, C, H, W, p, g1, &v1);
        if (memcmp(&v0, &v1, sizeof v0) != 0) {
            if (bad < 5 && !quiet) fprintf(stderr, "    output %d changed with the future: %.9g -> %.9g\n", p, v0, v1);
            bad++;
        }
    }
    free(x0), free(x1), free(g), free(g1);
    return bad;
}

static void causal_masked_conv(void) {
    cx_seed(8);
    /* persistent: grad_of_pixel resets the step arena */
    cx_tensor *w = cx_tensor_clone(cx_randn(CX_SHAPE(2, 2, 5, 5), 0, 1));
    int past = 0;
    int bad = causality(mconv_img, w, 2, 5, 6, false, &past);
    CHECK_MSG(bad == 0, "mask A: %d violations", bad);
    CHECK(past == 5 * 6 - 1); /* every pixel but the first sees its left neighbour */
    /* mask B sees the centre: the same test without self_ok must flag it,
     * with self_ok it passes */
    quiet = true;
    bad = causality(mconv_b_img, w, 2, 5, 6, false, &past);
    quiet = false;
    CHECK_MSG(bad >= 30, "mask B counted as strictly causal: %d violations", bad);
    bad = causality(mconv_b_img, w, 2, 5, 6, true, &past);
    CHECK_MSG(bad == 0, "mask B beyond the centre: %d violations", bad);
    cx_tensor_free(w);
}

static void causal_row_lstm(void) {
    cx_seed(9);
    int h = 3, C = 2, H = 5, W = 6;
    row_w rw = {cx_tensor_clone(cx_randn(CX_SHAPE(4 * h, C, 1, 3), 0, 1)),
                cx_tensor_clone(cx_randn(CX_SHAPE(4 * h), 0, 0.5f)),
                cx_tensor_clone(cx_randn(CX_SHAPE(4 * h, h, 3), 0, 1)),
                cx_tensor_clone(cx_randn(CX_SHAPE(4 * h), 0, 0.5f))};
    int past = 0;
    int bad = causality(row_img, &rw, C, H, W, true, &past);
    CHECK_MSG(bad == 0, "row lstm: %d violations", bad);
    CHECK(past == H * W - 1);
    /* the state-to-state convolution reaches up and to the right: output (2, 1)
     * depends on input (1, 2) and, through two rows, on (0, 3) */
    float *x0 = calloc((size_t)(C * H * W), sizeof(float)), *g = malloc(sizeof(float) * (size_t)(C * H * W));
    for (int i = 0; i < C * H * W; i++) x0[i] = (float)((i * 7) % 5) * 0.3f;
    float v;
    grad_of_pixel(row_img, &rw, x0, C, H, W, 2 * W + 1, g, &v);
    CHECK(g[1 * W + 2] != 0.0f && g[0 * W + 3] != 0.0f);
    CHECK(g[0 * W + 4] == 0.0f); /* outside the triangular receptive field */
    free(x0), free(g);
    cx_tensor_free(rw.wi), cx_tensor_free(rw.bi), cx_tensor_free(rw.ws), cx_tensor_free(rw.bs);
}

static void causal_model(void) {
    cx_seed(10);
    cx_module *m = cx_pixelrnn_new(4, 2);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    for (int i = 0; i < ps.n; i++) { /* larger weights: no gradient vanishes by accident */
        float *d = CX_F(ps.t[i]);
        for (int64_t k = 0; k < ps.t[i]->numel; k++) d[k] *= 2.0f;
    }
    int past = 0;
    int bad = causality(model_img, m, 1, 6, 5, false, &past);
    CHECK_MSG(bad == 0, "pixelrnn: %d violations", bad);
    CHECK(past == 6 * 5 - 1);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void nll_and_sampling(void) {
    cx_seed(12);
    cx_module *m = cx_pixelrnn_new(4, 1);
    int N = 3, H = 6, W = 5;
    cx_tensor *x = cx_zeros(CX_SHAPE(N, 1, H, W));
    for (int i = 0; i < N * H * W; i++) CX_F(x)[i] = (float)((i * 5 + i / 7) % 3 == 0);
    cx_tensor *nll = cx_pixelrnn_nll(m, x);
    cx_tensor *lg = cx_module_forward(m, x);
    double want = 0;
    for (int i = 0; i < N * H * W; i++) {
        double l = CX_F(lg)[i], t = CX_F(x)[i];
        want += (l > 0 ? l : 0) - l * t + log1p(exp(-fabs(l)));
    }
    CHECK(nll->numel == 1);
    CHECK_NEAR(CX_F(nll)[0], want / N, 1e-4);
    /* completion: the first half stays, the rest becomes 0 / 1; the same seed
     * gives the same images */
    cx_tensor *a = cx_tensor_new(CX_F32, CX_SHAPE(N, 1, H, W)), *b = cx_tensor_new(CX_F32, CX_SHAPE(N, 1, H, W));
    memcpy(CX_F(a), CX_F(x), sizeof(float) * (size_t)(N * H * W));
    for (int i = 0; i < N * H * W; i++) CX_F(a)[i] = CX_F(a)[i] * 1.0f;
    for (int n = 0; n < N; n++)
        for (int q = H / 2 * W; q < H * W; q++) CX_F(a)[n * H * W + q] = 0.25f; /* not a pixel value */
    memcpy(CX_F(b), CX_F(a), sizeof(float) * (size_t)(N * H * W));
    size_t used = cx_arena_used(cx_arena_current());
    cx_rng r1 = cx_rng_new(3), r2 = cx_rng_new(3);
    cx_pixelrnn_sample(m, a, H / 2 * W, &r1);
    cx_pixelrnn_sample(m, b, H / 2 * W, &r2);
    CHECK(cx_arena_used(cx_arena_current()) == used);
    CHECK(!memcmp(CX_F(a), CX_F(b), sizeof(float) * (size_t)(N * H * W)));
    int ones = 0, kept = 1, binary = 1;
    for (int n = 0; n < N; n++)
        for (int q = 0; q < H * W; q++) {
            float v = CX_F(a)[n * H * W + q];
            if (q < H / 2 * W) kept &= v == CX_F(x)[n * H * W + q];
            else binary &= v == 0.0f || v == 1.0f, ones += v == 1.0f;
        }
    CHECK(kept && binary);
    CHECK(ones > 0 && ones < N * (H * W - H / 2 * W)); /* an untrained model draws both values */
    /* a sample from scratch differs with another seed */
    cx_rng r3 = cx_rng_new(4);
    cx_pixelrnn_sample(m, b, 0, &r3);
    CHECK(memcmp(CX_F(a), CX_F(b), sizeof(float) * (size_t)(N * H * W)) != 0);
    cx_tensor_free(a);
    cx_tensor_free(b);
    cx_module_free(m);
}

static void modules(void) {
    cx_module *c = cx_masked_conv2d_new(1, 6, 7, 7, CX_MASK_A, true);
    char buf[128];
    cx_module_describe(c, buf, sizeof buf);
    CHECK(!strcmp(buf, "MaskedConv2d(1 -> 6, k=7x7, mask A)"));
    cx_module *r = cx_row_lstm_new(6, 5, 3);
    cx_module_describe(r, buf, sizeof buf);
    CHECK(!strcmp(buf, "RowLSTM(6 -> 5, k=3)"));
    CHECK(cx_module_tensor(r, "weight_is")->shape[0] == 20 && cx_module_tensor(r, "weight_ss")->ndim == 3);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 4, 5), 0, 1);
    cx_tensor *y = cx_module_forward(r, cx_module_forward(c, x));
    CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 5 && y->shape[2] == 4 && y->shape[3] == 5);
    cx_module *p = cx_pixelrnn_new(8, 2);
    cx_module_describe(p, buf, sizeof buf);
    CHECK(!strcmp(buf, "PixelRNN(Row LSTM, h=8, layers=2)"));
    CHECK(cx_module_tensor(p, "row1.weight_ss") != NULL && cx_module_tensor(p, "conv_in.weight")->shape[2] == 7);
    cx_module_free(p);
    cx_module_free(r);
    cx_module_free(c);
}

static void errors(void) {
    EXPECT_FATAL(cx_conv_mask_new(4, 3, CX_MASK_A), "odd sides", "4 x 3");
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 2, 4, 4));
    EXPECT_FATAL(cx_masked_conv2d(x, cx_zeros(CX_SHAPE(3, 2, 2, 3)), NULL, CX_MASK_B), "odd sides");
    EXPECT_FATAL(cx_masked_conv2d(x, cx_zeros(CX_SHAPE(3, 2, 3)), NULL, CX_MASK_B), "[O, C, kh, kw]");
    EXPECT_FATAL(cx_row_lstm(x, cx_zeros(CX_SHAPE(8, 3, 1, 3)), NULL, cx_zeros(CX_SHAPE(8, 2, 3)), NULL),
                 "2 channels");
    EXPECT_FATAL(cx_row_lstm(x, cx_zeros(CX_SHAPE(7, 2, 1, 3)), NULL, cx_zeros(CX_SHAPE(8, 2, 3)), NULL), "[4h, C, 1, k]");
    EXPECT_FATAL(cx_row_lstm(x, cx_zeros(CX_SHAPE(8, 2, 1, 3)), NULL, cx_zeros(CX_SHAPE(8, 3, 3)), NULL), "w_ss");
    EXPECT_FATAL(cx_row_lstm_new(2, 3, 2), "odd");
    EXPECT_FATAL(cx_pixelrnn_new(0, 1), "positive");
    cx_module *m = cx_pixelrnn_new(2, 1);
    EXPECT_FATAL(cx_module_forward(m, x), "[N, 1, H, W]");
    cx_rng r = cx_rng_new(1);
    cx_tensor *img = cx_zeros(CX_SHAPE(1, 1, 3, 3));
    EXPECT_FATAL(cx_pixelrnn_sample(m, img, 10, &r), "start 10", "0 .. 9");
    cx_module *l = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_pixelrnn_sample(l, img, 0, &r), "PixelRNN");
    cx_module_free(l);
    cx_module_free(m);
}

int main(void) {
    const char *path = getenv("CX_PIXELRNN_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/pixelrnn/pixelrnn.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    RUN(masks);
    if (FX) RUN(matches_torch);
    RUN(gradcheck);
    RUN(causal_masked_conv);
    RUN(causal_row_lstm);
    RUN(causal_model);
    RUN(nll_and_sampling);
    RUN(modules);
    RUN(errors);
    cx_st_free(FX);
    TEST_END();
}
