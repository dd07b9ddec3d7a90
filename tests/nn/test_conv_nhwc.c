/* Channels-last convolution (cx_conv2d_nhwc): values and gradients against
 * the channels-first convolution on permuted tensors (itself checked against
 * PyTorch in test_conv) over many geometries, finite differences, PyTorch
 * fixtures in channels_last (tools/gen_conv_nhwc_fixtures.py), the
 * permuting fallback, accumulation into an existing gradient, the same bits
 * at 1 and 2 threads, and the error messages. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define FIXTURE "tests/fixtures/conv/conv_nhwc.safetensors"

static const int TO_NCHW[4] = {0, 3, 1, 2}, TO_NHWC[4] = {0, 2, 3, 1};

/* A step tensor holding a copy of n floats, shaped like t. */
static cx_tensor *copy_floats(const cx_tensor *t, const float *src) {
    cx_tensor *c = cx_zeros(t->shape, t->ndim);
    memcpy(CX_F(c), src, (size_t)t->numel * sizeof(float));
    return c;
}

static cx_tensor *leaf(const int *shape, int nd) {
    cx_tensor *t = cx_randn(shape, nd, 0.0f, 1.0f);
    t->requires_grad = true;
    return t;
}

typedef struct {
    const char *name;
    int N, H, W, C, O, KH, KW, sh, sw, ph, pw, dh, dw, groups;
    bool bias;
} nc_case;

static const nc_case CASES[] = {
    {"resnet 16->16 3x3", 2, 28, 28, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
    {"resnet 16->32 3x3 stride 2", 2, 28, 28, 16, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, false},
    {"resnet 16->32 1x1 stride 2", 2, 28, 28, 16, 32, 1, 1, 2, 2, 0, 0, 1, 1, 1, false},
    {"resnet 32->64 3x3 stride 2", 3, 14, 14, 32, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, false},
    {"resnet 64->64 7x7 map", 2, 7, 7, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
    {"stem 1->16", 3, 28, 28, 1, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
    {"odd channels 3->5", 2, 9, 11, 3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
    {"17->33, 5x4 kernel, pad 2/1", 1, 12, 10, 17, 33, 5, 4, 1, 1, 2, 1, 1, 1, 1, true},
    {"stride 3x2, odd sizes", 2, 13, 11, 7, 20, 3, 3, 3, 2, 1, 1, 1, 1, 1, true},
    {"stride 2, no padding, even kernel", 2, 10, 9, 8, 48, 2, 2, 2, 2, 0, 0, 1, 1, 1, true},
    {"stride 2, pad 2, 3x3", 1, 8, 8, 16, 16, 3, 3, 2, 2, 2, 2, 1, 1, 1, false},
    {"1x1 stride 1", 2, 5, 6, 24, 40, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},
    {"1x1 stride 2 pad 1", 1, 5, 4, 3, 2, 1, 1, 2, 2, 1, 1, 1, 1, 1, true},
    {"1x1 stride 2x3, odd channels", 3, 7, 10, 5, 20, 1, 1, 2, 3, 0, 0, 1, 1, 1, true},
    {"kernel as large as the padded input", 2, 3, 4, 5, 6, 5, 6, 1, 1, 1, 1, 1, 1, 1, true},
    {"wide 1-row image", 2, 1, 40, 16, 32, 1, 3, 1, 1, 0, 1, 1, 1, 1, true},
    {"64->16, wide map", 1, 6, 30, 64, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
    {"fallback: dilation 2", 2, 9, 8, 4, 6, 3, 3, 1, 1, 2, 2, 2, 2, 1, true},
    {"fallback: groups 2", 2, 7, 7, 4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true},
};

static cx_conv_opts opts_of(const nc_case *c) {
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = c->sh, o.stride[1] = c->sw;
    o.padding[0] = c->ph, o.padding[1] = c->pw;
    o.dilation[0] = c->dh, o.dilation[1] = c->dw;
    o.groups = c->groups;
    return o;
}

/* Winograd F(4x4, 3x3)'s rounding error is bounded relative to the sum of
 * the absolute values of the products an output adds up (measured: at most
 * 2e-6 of it, about 10x the direct sums' 2e-7; F(2x2): 1.3e-7): such layers
 * are compared within WINO4_REL of those sums, which the same convolution
 * of |x|, |w| (and its gradients for |dY|) gives. */
#define WINO4_REL 1e-5
static bool takes_wino4(const nc_case *c) {
    return c->KH == 3 && c->KW == 3 && c->sh == 1 && c->sw == 1 && c->ph == 1 && c->pw == 1 && c->dh == 1 &&
           c->dw == 1 && c->groups == 1 && c->C % 16 == 0 && c->O % 16 == 0 && cx_conv_get_winograd_tile() != 2 &&
           cx_conv_get_algo() != CX_CONV_DIRECT && cx_conv_get_algo() != CX_CONV_GEMM;
}
typedef struct {
    float *y, *gx, *gw; /* malloc'd sums of |terms| of y, dx, dw */
} term_sums;
static float *dup_abs(const float *src, long n) {
    float *d = malloc((size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) d[i] = fabsf(src[i]);
    return d;
}
static term_sums terms_of(const nc_case *c, cx_tensor *x, cx_tensor *w, const cx_tensor *R) {
    const cx_conv_algo saved = cx_conv_get_algo();
    cx_conv_set_algo(CX_CONV_DIRECT);
    cx_conv_opts o = opts_of(c);
    float *ax = dup_abs(CX_F(x), (long)x->numel), *aw = dup_abs(CX_F(w), (long)w->numel);
    float *aR = dup_abs(CX_F(R), (long)R->numel);
    cx_tensor *xa = copy_floats(x, ax), *wa = copy_floats(w, aw), *Ra = copy_floats(R, aR);
    xa->requires_grad = wa->requires_grad = true;
    cx_tensor *y = cx_conv2d_nhwc(xa, wa, NULL, &o);
    cx_backward(cx_sum(cx_mul(y, Ra)));
    term_sums t = {dup_abs(CX_F(y), (long)y->numel), dup_abs(xa->grad, (long)xa->numel),
                   dup_abs(wa->grad, (long)wa->numel)};
    free(ax), free(aw), free(aR);
    cx_conv_set_algo(saved);
    return t;
}
static void terms_free(term_sums *t) { free(t->y), free(t->gx), free(t->gw); }

/* forward and all three gradients against the permuted channels-first op */
static void run_case(const nc_case *c, double rtol, double atol) {
    cx_conv_opts o = opts_of(c);
    cx_tensor *x = leaf((int[]){c->N, c->H, c->W, c->C}, 4);
    cx_tensor *w = leaf((int[]){c->O, c->C / c->groups, c->KH, c->KW}, 4);
    cx_tensor *b = c->bias ? leaf((int[]){c->O}, 1) : NULL;
    cx_tensor *y = cx_conv2d_nhwc(x, w, b, &o);
    cx_tensor *R = cx_randn(y->shape, 4, 0.0f, 1.0f);
    cx_backward(cx_sum(cx_mul(y, R)));
    cx_tensor *gx = copy_floats(x, x->grad), *gw = copy_floats(w, w->grad);
    cx_tensor *gb = b ? copy_floats(b, b->grad) : NULL;
    cx_zero_grad(x), cx_zero_grad(w);
    if (b) cx_zero_grad(b);
    cx_tensor *yr = cx_permute(cx_conv2d_ex(cx_permute(x, TO_NCHW), w, b, &o), TO_NHWC);
    cx_backward(cx_sum(cx_mul(yr, R)));
    const double rel = takes_wino4(c) ? WINO4_REL : 0;
    term_sums ts = terms_of(c, x, w, R);
    char what[160];
    CHECK_MSG(y->ndim == 4 && y->shape[0] == yr->shape[0] && y->shape[1] == yr->shape[1] &&
                  y->shape[2] == yr->shape[2] && y->shape[3] == yr->shape[3],
              "%s: shape", c->name);
    snprintf(what, sizeof what, "%s: y", c->name);
    if (y->numel == yr->numel) cxt_allclose_terms(CX_F(y), CX_F(yr), ts.y, (long)y->numel, rtol, atol, rel, what);
    snprintf(what, sizeof what, "%s: dx", c->name);
    cxt_allclose_terms(CX_F(gx), x->grad, ts.gx, (long)x->numel, rtol, atol, rel, what);
    snprintf(what, sizeof what, "%s: dw", c->name);
    cxt_allclose_terms(CX_F(gw), w->grad, ts.gw, (long)w->numel, rtol, atol, rel, what);
    terms_free(&ts);
    if (b) {
        snprintf(what, sizeof what, "%s: db", c->name);
        cxt_allclose(CX_F(gb), b->grad, (long)b->numel, rtol, atol, what);
    }
}

static void test_against_channels_first(void) {
    cx_seed(7);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        run_case(&CASES[i], 1e-4, 1e-4);
        cx_step_reset();
    }
}

/* the same at 2 threads, and the same bits as 1 thread (3x3 and 1x1, stride 2) */
static void test_threads_same_bits(void) {
    for (int ci = 1; ci <= 2; ci++) {
        const nc_case *c = &CASES[ci];
        cx_conv_opts o = opts_of(c);
        float *res[2][3];
        for (int pass = 0; pass < 2; pass++) {
            cx_set_threads(pass + 1);
            cx_seed(11);
            cx_tensor *x = leaf((int[]){8, c->H, c->W, c->C}, 4);
            cx_tensor *w = leaf((int[]){c->O, c->C, c->KH, c->KW}, 4);
            cx_tensor *y = cx_conv2d_nhwc(x, w, NULL, &o);
            cx_backward(cx_sum(cx_mul(y, y)));
            res[pass][0] = malloc((size_t)y->numel * sizeof(float));
            res[pass][1] = malloc((size_t)x->numel * sizeof(float));
            res[pass][2] = malloc((size_t)w->numel * sizeof(float));
            memcpy(res[pass][0], CX_F(y), (size_t)y->numel * sizeof(float));
            memcpy(res[pass][1], x->grad, (size_t)x->numel * sizeof(float));
            memcpy(res[pass][2], w->grad, (size_t)w->numel * sizeof(float));
            if (pass) {
                CHECK(!memcmp(res[0][0], res[1][0], (size_t)y->numel * sizeof(float)));
                CHECK(!memcmp(res[0][1], res[1][1], (size_t)x->numel * sizeof(float)));
                CHECK(!memcmp(res[0][2], res[1][2], (size_t)w->numel * sizeof(float)));
            }
            cx_step_reset();
        }
        cx_set_threads(1);
        for (int p = 0; p < 2; p++)
            for (int k = 0; k < 3; k++) free(res[p][k]);
    }
}

/* an input used twice: the second gradient adds to the first (3x3 and 1x1 kernels) */
static void test_accumulates(void) {
    for (int k = 3; k >= 1; k -= 2) {
        cx_seed(3);
        cx_tensor *x = leaf((int[]){2, 9, 10, 16}, 4);
        cx_tensor *w = leaf((int[]){16, 16, k, k}, 4);
        cx_conv_opts o = cx_conv_defaults();
        o.padding[0] = o.padding[1] = k / 2;
        o.stride[0] = o.stride[1] = 2;
        cx_tensor *y = cx_add(cx_sum(cx_mul(cx_conv2d_nhwc(x, w, NULL, &o), cx_conv2d_nhwc(x, w, NULL, &o))),
                              cx_sum(cx_mul(x, x)));
        cx_backward(y);
        cx_tensor *gx = copy_floats(x, x->grad);
        cx_zero_grad(x);
        cx_zero_grad(w);
        cx_tensor *xc = cx_permute(x, TO_NCHW);
        cx_tensor *yr = cx_add(cx_sum(cx_mul(cx_conv2d_ex(xc, w, NULL, &o), cx_conv2d_ex(xc, w, NULL, &o))),
                               cx_sum(cx_mul(x, x)));
        cx_backward(yr);
        cxt_allclose(CX_F(gx), x->grad, (long)x->numel, 1e-4, 1e-4, "dx of a twice-used input");
        cx_step_reset();
    }
}

typedef struct {
    cx_conv_opts o;
    cx_tensor *R;
} gc_ctx;
static cx_tensor *gc_fn(cx_tensor **in, int n, void *user) {
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_conv2d_nhwc(in[0], in[1], n > 2 ? in[2] : NULL, &c->o), c->R));
}

static void test_gradcheck(void) {
    cx_seed(5);
    /* small enough that float differences of the loss resolve the gradient */
    static const nc_case GCC[] = {
        {"3x3 pad 1", 1, 5, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
        {"3x3 stride 2", 1, 7, 6, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, false},
        {"1x1 stride 2", 1, 5, 5, 3, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1, true},
        {"2x3 stride 3x2 pad 1x0", 1, 6, 7, 2, 3, 2, 3, 3, 2, 1, 0, 1, 1, 1, true},
    };
    for (size_t i = 0; i < sizeof GCC / sizeof GCC[0]; i++) {
        const nc_case *c = &GCC[i];
        gc_ctx ctx = {opts_of(c), NULL};
        cx_tensor *x = leaf((int[]){c->N, c->H, c->W, c->C}, 4);
        cx_tensor *w = leaf((int[]){c->O, c->C, c->KH, c->KW}, 4);
        cx_tensor *b = c->bias ? leaf((int[]){c->O}, 1) : NULL;
        cx_no_grad_begin();
        cx_tensor *probe = cx_conv2d_nhwc(x, w, b, &ctx.o);
        cx_no_grad_end();
        ctx.R = cx_randn(probe->shape, 4, 0.0f, 1.0f);
        cx_tensor *in[3] = {x, w, b};
        double worst = cx_gradcheck(gc_fn, in, b ? 3 : 2, &ctx, 1e-2f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", c->name, worst);
        cx_step_reset();
    }
}

/* Winograd F(m x m, 3x3), m = 2 and 4 (3x3, stride 1, padding 1, channels
 * in whole vectors, AVX-512 builds) against the direct kernels: output and
 * every gradient, on even, odd, one-pixel and wide maps; then the same bits
 * at 1 and 2 threads, with 2 images (tile-row chunks) and 8 (whole images). */
static void winograd_against_direct(int tile) {
    static const nc_case WC[] = {
        {"wino 16->16 28x28", 2, 28, 28, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
        {"wino 64->64 7x7", 3, 7, 7, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
        {"wino 16->32 5x9", 2, 5, 9, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
        {"wino 32->16 1x1 map", 2, 1, 1, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
        {"wino 16->48 2x3", 2, 2, 3, 16, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
        {"wino 64->16 6x30", 1, 6, 30, 64, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false},
        {"wino 48->32 33x3", 1, 33, 3, 48, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, true},
    };
    const cx_conv_algo saved = cx_conv_get_algo();
    const int saved_tile = cx_conv_get_winograd_tile();
    cx_conv_set_winograd_tile(tile);
    cx_seed(21);
    for (size_t i = 0; i < sizeof WC / sizeof WC[0]; i++) {
        const nc_case *c = &WC[i];
        cx_conv_opts o = opts_of(c);
        cx_tensor *x = leaf((int[]){c->N, c->H, c->W, c->C}, 4);
        cx_tensor *w = leaf((int[]){c->O, c->C, 3, 3}, 4);
        cx_tensor *b = c->bias ? leaf((int[]){c->O}, 1) : NULL;
        cx_tensor *R = cx_randn((int[]){c->N, c->H, c->W, c->O}, 4, 0.0f, 1.0f);
        term_sums ts = terms_of(c, x, w, R);
        const float *scales[4] = {ts.y, ts.gx, ts.gw, NULL};
        float *res[2][4];
        for (int pass = 0; pass < 2; pass++) {
            cx_conv_set_algo(pass ? CX_CONV_DIRECT : CX_CONV_WINOGRAD);
            cx_zero_grad(x), cx_zero_grad(w);
            if (b) cx_zero_grad(b);
            cx_tensor *y = cx_conv2d_nhwc(x, w, b, &o);
            cx_backward(cx_sum(cx_mul(y, R)));
            const cx_tensor *t[4] = {y, x, w, b};
            for (int k = 0; k < 4; k++) {
                res[pass][k] = NULL;
                if (!t[k]) continue;
                const float *src = k ? t[k]->grad : CX_F(t[k]);
                res[pass][k] = malloc((size_t)t[k]->numel * sizeof(float));
                memcpy(res[pass][k], src, (size_t)t[k]->numel * sizeof(float));
            }
        }
        static const char *names[4] = {"y", "dx", "dw", "db"};
        const long counts[4] = {(long)c->N * c->H * c->W * c->O, (long)x->numel, (long)w->numel, b ? (long)b->numel : 0};
        for (int k = 0; k < 4; k++) {
            if (!res[0][k]) continue;
            char what[160];
            snprintf(what, sizeof what, "%s, F(%dx%d): %s", c->name, tile, tile, names[k]);
            if (scales[k] && tile == 4)
                cxt_allclose_terms(res[0][k], res[1][k], scales[k], counts[k], 1e-4, 1e-4, WINO4_REL, what);
            else
                cxt_allclose(res[0][k], res[1][k], counts[k], 1e-4, 1e-4, what);
            free(res[0][k]), free(res[1][k]);
        }
        terms_free(&ts);
        cx_step_reset();
    }
    /* the same bits at 1 and 2 threads */
    cx_conv_set_algo(CX_CONV_WINOGRAD);
    for (int nimg = 2; nimg <= 8; nimg += 6) {
        float *res[2][3];
        long cnt[3];
        for (int pass = 0; pass < 2; pass++) {
            cx_set_threads(pass + 1);
            cx_seed(23);
            cx_conv_opts o = cx_conv_defaults();
            o.padding[0] = o.padding[1] = 1;
            cx_tensor *x = leaf((int[]){nimg, 13, 10, 32}, 4), *w = leaf((int[]){16, 32, 3, 3}, 4);
            cx_tensor *y = cx_conv2d_nhwc(x, w, NULL, &o);
            cx_backward(cx_sum(cx_mul(y, y)));
            const float *src[3] = {CX_F(y), x->grad, w->grad};
            cnt[0] = (long)y->numel, cnt[1] = (long)x->numel, cnt[2] = (long)w->numel;
            for (int k = 0; k < 3; k++) {
                res[pass][k] = malloc((size_t)cnt[k] * sizeof(float));
                memcpy(res[pass][k], src[k], (size_t)cnt[k] * sizeof(float));
            }
            cx_step_reset();
        }
        for (int k = 0; k < 3; k++) {
            CHECK_MSG(!memcmp(res[0][k], res[1][k], (size_t)cnt[k] * sizeof(float)),
                      "winograd F(%dx%d), %d images: result %d differs between 1 and 2 threads", tile, tile, nimg, k);
            free(res[0][k]), free(res[1][k]);
        }
    }
    cx_set_threads(1);
    cx_conv_set_algo(saved);
    cx_conv_set_winograd_tile(saved_tile);
}
static void test_winograd2_against_direct(void) { winograd_against_direct(2); }
static void test_winograd4_against_direct(void) { winograd_against_direct(4); }

/* Winograd's input gradient and weights' path by finite differences, for
 * both tiles (a 6x5 map: F(4x4)'s tiles cut at both edges) */
static void winograd_gradcheck(int tile) {
    const cx_conv_algo saved = cx_conv_get_algo();
    const int saved_tile = cx_conv_get_winograd_tile();
    cx_conv_set_algo(CX_CONV_WINOGRAD);
    cx_conv_set_winograd_tile(tile);
    cx_seed(25);
    const nc_case c = {tile == 2 ? "wino F(2x2) 16->16 3x5" : "wino F(4x4) 16->16 6x5", 1, tile == 2 ? 3 : 6, 5,
                       16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, true};
    gc_ctx ctx = {opts_of(&c), NULL};
    cx_tensor *x = leaf((int[]){c.N, c.H, c.W, c.C}, 4);
    cx_tensor *w = leaf((int[]){c.O, c.C, 3, 3}, 4);
    cx_tensor *b = leaf((int[]){c.O}, 1);
    ctx.R = cx_randn((int[]){c.N, c.H, c.W, c.O}, 4, 0.0f, 1.0f);
    cx_tensor *in[3] = {x, w, b};
    /* the loss is linear in each element: a large step makes the central
     * difference exact but for rounding, which it divides down (F(4x4)'s
     * forward rounding over a 1e-2 step was 10% of a gradient) */
    double worst = cx_gradcheck(gc_fn, in, 3, &ctx, tile == 2 ? 1e-2f : 0.5f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", c.name, worst);
    cx_step_reset();
    cx_conv_set_algo(saved);
    cx_conv_set_winograd_tile(saved_tile);
}
static void test_winograd_gradcheck(void) {
    winograd_gradcheck(2);
    winograd_gradcheck(4);
    EXPECT_FATAL(cx_conv_set_winograd_tile(3), "cx_conv_set_winograd_tile", "tile 3", "2 or 4");
}

/* PyTorch, channels_last: x, w, b, y, R and the gradients of sum(y * R) */
static void test_pytorch_fixtures(void) {
    cx_st_file *fx = NULL;
    cx_status st = cx_st_load(FIXTURE, &fx);
    CHECK_MSG(st == CX_OK && fx != NULL, "missing %s (tools/gen_conv_nhwc_fixtures.py)", FIXTURE);
    if (!fx) return;
    static const char *names[] = {"s1", "s2", "proj", "odd"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *nm = names[i];
        cx_tensor *x = cxt_fx(fx, nm, "x"), *w = cxt_fx(fx, nm, "w"), *b = cxt_fx(fx, nm, "b");
        cx_tensor *y = cxt_fx(fx, nm, "y"), *R = cxt_fx(fx, nm, "R"), *gx = cxt_fx(fx, nm, "gx");
        cx_tensor *gw = cxt_fx(fx, nm, "gw"), *gb = cxt_fx(fx, nm, "gb");
        const long sd = cxt_fx_int(fx, nm, "stride"), pd = cxt_fx_int(fx, nm, "padding");
        CHECK_MSG(x && w && b && y && R && gx && gw && gb && sd > 0 && pd >= 0, "case %s incomplete", nm);
        if (!(x && w && b && y && R && gx && gw && gb && sd > 0 && pd >= 0)) continue;
        x = copy_floats(x, CX_F(x)), w = copy_floats(w, CX_F(w)), b = copy_floats(b, CX_F(b));
        x->requires_grad = w->requires_grad = b->requires_grad = true;
        cx_conv_opts o = cx_conv_defaults();
        o.stride[0] = o.stride[1] = (int)sd;
        o.padding[0] = o.padding[1] = (int)pd;
        cx_tensor *out = cx_conv2d_nhwc(x, w, b, &o);
        cx_backward(cx_sum(cx_mul(out, R)));
        char what[64];
        CHECK_MSG(out->numel == y->numel, "%s: %lld outputs, PyTorch %lld", nm, (long long)out->numel,
                  (long long)y->numel);
        if (out->numel != y->numel) continue;
        snprintf(what, sizeof what, "%s: y", nm);
        cxt_allclose(CX_F(out), CX_F(y), (long)y->numel, 1e-4, 1e-4, what);
        snprintf(what, sizeof what, "%s: dx", nm);
        cxt_allclose(x->grad, CX_F(gx), (long)gx->numel, 1e-4, 1e-4, what);
        snprintf(what, sizeof what, "%s: dw", nm);
        cxt_allclose(w->grad, CX_F(gw), (long)gw->numel, 1e-4, 2e-4, what);
        snprintf(what, sizeof what, "%s: db", nm);
        cxt_allclose(b->grad, CX_F(gb), (long)gb->numel, 1e-4, 2e-4, what);
    }
    cx_st_free(fx);
}

static void test_errors(void) {
    cx_tensor *x = cx_zeros((int[]){1, 5, 5, 3}, 4), *w = cx_zeros((int[]){4, 2, 3, 3}, 4);
    EXPECT_FATAL(cx_conv2d_nhwc(x, w, NULL, NULL), "conv2d_nhwc", "[4, 2, 3, 3]", "2 channels", "[1, 5, 5, 3]");
    cx_tensor *w2 = cx_zeros((int[]){4, 3, 7, 3}, 4);
    EXPECT_FATAL(cx_conv2d_nhwc(x, w2, NULL, NULL), "conv2d_nhwc", "larger than the padded input");
    cx_tensor *x3 = cx_zeros((int[]){5, 5, 3}, 3);
    EXPECT_FATAL(cx_conv2d_nhwc(x3, w, NULL, NULL), "conv2d_nhwc", "[N, H, W, C]");
    cx_tensor *w3 = cx_zeros((int[]){4, 3, 3, 3}, 4), *b = cx_zeros((int[]){5}, 1);
    EXPECT_FATAL(cx_conv2d_nhwc(x, w3, b, NULL), "conv2d_nhwc", "bias", "4 output channels");
}


/* ---------------------------------------------------------------- conv + batch norm */
/* cx_conv2d_bn_nhwc against cx_batch_norm_nhwc(cx_conv2d_nhwc(...)):
 * outputs, every gradient (x, w, conv bias, bn weight and bias, residual)
 * and the running statistics, in training and eval mode, plain, with relu,
 * with relu and a residual, strided; a conv bias of 50 makes the mean large
 * against the spread (the exact second pass over y); dilation 2 is the two
 * ops. */
static void test_conv_bn_matches_two_ops(void) {
    typedef struct {
        const char *name;
        int N, H, W, C, O, k, s, p, d;
        bool relu, res, cbias;
        float bias_mean;
    } cb_case;
    static const cb_case CB[] = {
        {"bn", 2, 9, 8, 16, 16, 3, 1, 1, 1, false, false, false, 0},
        {"bn relu", 3, 10, 10, 16, 32, 3, 2, 1, 1, true, false, true, 0},
        {"bn add relu", 2, 7, 7, 32, 16, 3, 1, 1, 1, true, true, false, 0},
        {"1x1 stride 2, relu, odd channels", 2, 9, 9, 5, 7, 1, 2, 0, 1, true, false, true, 0},
        {"large mean", 2, 6, 6, 8, 16, 3, 1, 1, 1, true, false, true, 50},
        {"dilation 2: the two ops", 2, 9, 9, 4, 6, 3, 1, 2, 2, true, true, false, 0},
    };
    cx_seed(13);
    for (size_t i = 0; i < sizeof CB / sizeof CB[0]; i++) {
        const cb_case *c = &CB[i];
        for (int training = 1; training >= 0; training--) {
            cx_conv_opts o = cx_conv_defaults();
            o.stride[0] = o.stride[1] = c->s;
            o.padding[0] = o.padding[1] = c->p;
            o.dilation[0] = o.dilation[1] = c->d;
            cx_tensor *x = leaf((int[]){c->N, c->H, c->W, c->C}, 4), *w = leaf((int[]){c->O, c->C, c->k, c->k}, 4);
            cx_tensor *cb = NULL;
            if (c->cbias) {
                cb = cx_randn((int[]){c->O}, 1, c->bias_mean, 1.0f);
                cb->requires_grad = true;
            }
            cx_tensor *bw = leaf((int[]){c->O}, 1), *bb = leaf((int[]){c->O}, 1);
            cx_no_grad_begin();
            cx_tensor *probe = cx_conv2d_nhwc(x, w, NULL, &o);
            cx_no_grad_end();
            cx_tensor *r = c->res ? leaf(probe->shape, 4) : NULL;
            cx_tensor *rm[2], *rv[2];
            for (int k = 0; k < 2; k++) {
                rm[k] = cx_full((int[]){c->O}, 1, c->bias_mean * 0.9f);
                rv[k] = cx_full((int[]){c->O}, 1, 2.0f);
            }
            cx_tensor *R = cx_randn(probe->shape, 4, 0.0f, 1.0f);
            cx_tensor *ps[6] = {x, w, cb, bw, bb, r};
            float *gs[6] = {NULL};
            cx_tensor *y = cx_conv2d_bn_nhwc(x, w, cb, &o, r, c->relu, rm[0], rv[0], bw, bb, training, 0.1f, 1e-5f);
            cx_backward(cx_sum(cx_mul(y, R)));
            cx_tensor *ycopy = copy_floats(y, CX_F(y));
            for (int k = 0; k < 6; k++)
                if (ps[k]) {
                    gs[k] = malloc((size_t)ps[k]->numel * sizeof(float));
                    memcpy(gs[k], ps[k]->grad, (size_t)ps[k]->numel * sizeof(float));
                    cx_zero_grad(ps[k]);
                }
            cx_tensor *y2 = cx_batch_norm_nhwc(cx_conv2d_nhwc(x, w, cb, &o), r, c->relu, rm[1], rv[1], bw, bb, training,
                                               0.1f, 1e-5f);
            cx_backward(cx_sum(cx_mul(y2, R)));
            char what[128];
            snprintf(what, sizeof what, "%s, training %d: y", c->name, training);
            cxt_allclose(CX_F(ycopy), CX_F(y2), (long)y2->numel, 1e-4, 1e-4, what);
            static const char *names[6] = {"dx", "dw", "conv bias", "bn weight", "bn bias", "residual"};
            for (int k = 0; k < 6; k++)
                if (ps[k]) {
                    snprintf(what, sizeof what, "%s, training %d: %s", c->name, training, names[k]);
                    cxt_allclose(gs[k], ps[k]->grad, (long)ps[k]->numel, 2e-3, 2e-4, what);
                    free(gs[k]);
                }
            snprintf(what, sizeof what, "%s, training %d: running stats", c->name, training);
            cxt_allclose(CX_F(rm[0]), CX_F(rm[1]), c->O, 1e-4, 1e-5, what);
            cxt_allclose(CX_F(rv[0]), CX_F(rv[1]), c->O, 1e-4, 1e-5, what);
            cx_step_reset();
        }
    }
}

typedef struct {
    cx_conv_opts o;
    cx_tensor *R;
    bool relu;
} cbgc_ctx;
static cx_tensor *cbgc_fn(cx_tensor **in, int n, void *user) {
    cbgc_ctx *c = user;
    return cx_sum(cx_mul(cx_conv2d_bn_nhwc(in[0], in[1], NULL, &c->o, n > 4 ? in[4] : NULL, c->relu, NULL, NULL, in[2], in[3], true,
                                           0.1f, 1e-5f),
                         c->R));
}

static void test_conv_bn_gradcheck(void) {
    cx_seed(17);
    for (int variant = 0; variant < 2; variant++) {
        /* variant 1 without the relu: 18 values per channel normalised to
         * N(0, 1) put some within the difference step of its kink */
        cbgc_ctx ctx = {cx_conv_defaults(), NULL, variant == 0};
        ctx.o.padding[0] = ctx.o.padding[1] = 1;
        ctx.o.stride[0] = ctx.o.stride[1] = variant ? 2 : 1;
        cx_tensor *x = leaf((int[]){2, 5, 5, 3}, 4), *w = leaf((int[]){4, 3, 3, 3}, 4);
        cx_tensor *bw = leaf((int[]){4}, 1), *bb = leaf((int[]){4}, 1);
        cx_no_grad_begin();
        cx_tensor *probe = cx_conv2d_nhwc(x, w, NULL, &ctx.o);
        cx_no_grad_end();
        cx_tensor *r = variant ? NULL : leaf(probe->shape, 4);
        ctx.R = cx_randn(probe->shape, 4, 0.0f, 1.0f);
        cx_tensor *in[5] = {x, w, bw, bb, r};
        double worst = cx_gradcheck(cbgc_fn, in, r ? 5 : 4, &ctx, 1e-2f, 3e-3f, 2e-2f, true);
        CHECK_MSG(worst <= 1.0, "variant %d: gradcheck worst violation ratio %g", variant, worst);
        cx_step_reset();
    }
}

static void test_conv_bn_errors(void) {
    cx_tensor *x = cx_zeros((int[]){2, 5, 5, 3}, 4), *w = cx_zeros((int[]){4, 3, 3, 3}, 4);
    cx_tensor *r = cx_zeros((int[]){2, 3, 3, 4}, 4), *bad = cx_zeros((int[]){5}, 1);
    EXPECT_FATAL(cx_conv2d_bn_nhwc(x, w, NULL, NULL, r, false, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f),
                 "conv2d_bn_nhwc", "residual needs relu");
    EXPECT_FATAL(cx_conv2d_bn_nhwc(x, w, NULL, NULL, NULL, true, NULL, NULL, bad, NULL, true, 0.1f, 1e-5f),
                 "conv2d_bn_nhwc", "bn weight", "[5]", "[4]");
    EXPECT_FATAL(cx_conv2d_bn_nhwc(x, w, NULL, NULL, NULL, true, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f),
                 "conv2d_bn_nhwc", "eval mode needs running_mean");
    cx_tensor *r2 = cx_zeros((int[]){2, 3, 3, 5}, 4);
    EXPECT_FATAL(cx_conv2d_bn_nhwc(x, w, NULL, NULL, r2, true, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f),
                 "conv2d_bn_nhwc", "residual has shape [2, 3, 3, 5]", "[2, 3, 3, 4]");
}

int main(void) {
    cx_set_threads(1);
    RUN(test_against_channels_first);
    RUN(test_threads_same_bits);
    RUN(test_accumulates);
    RUN(test_gradcheck);
    RUN(test_winograd2_against_direct);
    RUN(test_winograd4_against_direct);
    RUN(test_winograd_gradcheck);
    RUN(test_pytorch_fixtures);
    RUN(test_errors);
    RUN(test_conv_bn_matches_two_ops);
    RUN(test_conv_bn_gradcheck);
    RUN(test_conv_bn_errors);
    TEST_END();
}
