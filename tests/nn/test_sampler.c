/* The spatial transformer beyond the op table: affine_grid and grid_sample
 * are compared with PyTorch and checked by finite differences as rows of
 * tests/autograd/op_cases.h (identity, rotations, scales, translations that
 * sample outside, both align_corners, odd sizes, C > 1, Ho/Wo != H/W, the
 * kinks). Here, in plain C: values worked out by hand at and beyond the
 * borders, the same results and gradients for 1, 2 and 3 threads, the
 * SpatialTransformer module (identity initialisation, names, theta, training
 * signal, finite differences through the whole module) and the error messages
 * naming the argument. */
#include "test.h"
#include <stdlib.h>

static cx_tensor *grid1(const float *xy, int n) { /* n points as a [1, 1, n, 2] grid */
    return cx_from_data(xy, CX_SHAPE(1, 1, n, 2));
}

/* A 1 x 1 x 2 x 3 image read at hand-picked places, align_corners false:
 * pixel i of a size-3 row sits at x = (2i + 1) / 3 - 1 (-2/3, 0, 2/3); the
 * borders of the image are x = -1 and 1 (half a pixel beyond the centres). */
static void values_at_borders(void) {
    const float img[6] = {1, 2, 3, 4, 5, 6};
    cx_tensor *x = cx_from_data(img, CX_SHAPE(1, 1, 2, 3));
    /* y = -0.5: the centre of row 0 (H = 2: rows at -0.5 and 0.5) */
    const float xy[] = {
        -2.0f / 3, -0.5f, /* pixel (0, 0) itself: 1 */
        -1.0f, -0.5f,     /* half a pixel left of it: half of 1 (zero padding) */
        1.0f, -0.5f,      /* half a pixel right of (0, 2): half of 3 */
        -5.0f / 3, -0.5f, /* one pixel left of (0, 0): 0 */
        0.0f, 0.0f,       /* centre of the image: mean of 2 and 5 */
        0.0f, 1.0f,       /* bottom border below (1, 1): half of 5 */
        3.0f, 0.0f,       /* far outside: 0 */
        INFINITY, 0.0f,   /* infinite: 0 */
    };
    const float want[] = {1, 0.5f, 1.5f, 0, 3.5f, 2.5f, 0, 0};
    cx_tensor *y = cx_grid_sample(x, grid1(xy, 8), false);
    CHECK(y->ndim == 4 && y->shape[0] == 1 && y->shape[1] == 1 && y->shape[2] == 1 && y->shape[3] == 8);
    cxt_allclose(CX_F(y), want, 8, 0, 1e-6, "grid_sample values, align_corners false");
    /* align_corners true: -1 and 1 are the centres of the corner pixels */
    const float xy1[] = {-1.0f, -1.0f, 1.0f, 1.0f, 0.0f, -1.0f, -2.0f, -1.0f, -1.5f, -1.0f, 1.25f, 1.0f};
    const float want1[] = {1, 6, 2, 0, 0.5f, 4.5f};
    /* one unit is one pixel here (W - 1 = 2 pixels over 2 units): x = -2 is a
     * pixel left of column 0: 0; -1.5 half a pixel: half of 1; 1.25 a quarter
     * pixel right of 6: three quarters of 6 */
    cx_tensor *y1 = cx_grid_sample(x, grid1(xy1, 6), true);
    cxt_allclose(CX_F(y1), want1, 6, 0, 1e-6, "grid_sample values, align_corners true");
    /* NaN coordinates give NaN */
    cx_tensor *yn = cx_grid_sample(x, grid1((const float[]){NAN, 0.0f, 0.0f, 0.0f}, 2), false);
    CHECK(isnan(CX_F(yn)[0]) && CX_F(yn)[1] == 3.5f);
}

/* A fresh identity grid at the input's own size reads every pixel at its
 * centre (both conventions), so the output is the input. */
static void identity_grid_copies(void) {
    cx_seed(5);
    for (int ac = 0; ac < 2; ac++) {
        cx_tensor *x = cx_randn(CX_SHAPE(2, 3, 7, 5), 0, 1);
        cx_tensor *theta = cx_from_data((const float[]){1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0}, CX_SHAPE(2, 2, 3));
        cx_tensor *g = cx_affine_grid(theta, 2, 3, 7, 5, ac);
        CHECK(g->ndim == 4 && g->shape[0] == 2 && g->shape[1] == 7 && g->shape[2] == 5 && g->shape[3] == 2);
        cx_tensor *y = cx_grid_sample(x, g, ac);
        cxt_allclose(CX_F(y), CX_F(x), (long)x->numel, 0, 1e-5, ac ? "identity, align_corners" : "identity");
    }
    /* the grid of a size-1 dimension is 0 (the centre) */
    cx_tensor *t = cx_from_data((const float[]){2, 0, 0.5f, 0, 3, -0.25f}, CX_SHAPE(1, 2, 3));
    cx_tensor *g = cx_affine_grid(t, 1, 1, 1, 1, false);
    CHECK(CX_F(g)[0] == 0.5f && CX_F(g)[1] == -0.25f);
}

/* Forward and every gradient bit-identical for 1, 2 and 3 threads, at sizes
 * above the parallel threshold. */
typedef struct { float *y, *gx, *gt; } run_out;
static run_out stn_run(int threads, cx_tensor *x0, cx_tensor *t0, cx_tensor *r0, bool ac) {
    cx_set_threads(threads);
    cx_tensor *x = cx_from_data(CX_F(x0), x0->shape, x0->ndim), *t = cx_from_data(CX_F(t0), t0->shape, t0->ndim);
    x->requires_grad = t->requires_grad = true;
    cx_tensor *g = cx_affine_grid(t, x->shape[0], x->shape[1], 48, 44, ac);
    cx_tensor *y = cx_grid_sample(x, g, ac);
    cx_backward(cx_sum(cx_mul(y, r0)));
    run_out o = {malloc((size_t)y->numel * 4), malloc((size_t)x->numel * 4), malloc((size_t)t->numel * 4)};
    memcpy(o.y, CX_F(y), (size_t)y->numel * 4);
    memcpy(o.gx, x->grad, (size_t)x->numel * 4);
    memcpy(o.gt, t->grad, (size_t)t->numel * 4);
    return o;
}
static void same_for_any_thread_count(void) {
    int saved = cx_get_threads();
    cx_seed(11);
    const int N = 16, C = 3;
    cx_tensor *x = cx_randn(CX_SHAPE(N, C, 40, 36), 0, 1);
    cx_tensor *t = cx_randn(CX_SHAPE(N, 2, 3), 0, 0.6f);
    cx_tensor *r = cx_randn(CX_SHAPE(N, C, 48, 44), 0, 1);
    for (int ac = 0; ac < 2; ac++) {
        run_out a = stn_run(1, x, t, r, ac), b = stn_run(2, x, t, r, ac), c = stn_run(3, x, t, r, ac);
        size_t ny = (size_t)N * C * 48 * 44, nx = (size_t)x->numel, nt = (size_t)t->numel;
        CHECK_MSG(!memcmp(a.y, b.y, ny * 4) && !memcmp(a.y, c.y, ny * 4), "outputs differ (ac %d)", ac);
        CHECK_MSG(!memcmp(a.gx, b.gx, nx * 4) && !memcmp(a.gx, c.gx, nx * 4), "input grads differ (ac %d)", ac);
        CHECK_MSG(!memcmp(a.gt, b.gt, nt * 4) && !memcmp(a.gt, c.gt, nt * 4), "theta grads differ (ac %d)", ac);
        free(a.y), free(a.gx), free(a.gt), free(b.y), free(b.gx), free(b.gt), free(c.y), free(c.gx), free(c.gt);
    }
    cx_set_threads(saved);
}

/* ------------------------------------------------------------ the module */
static cx_module *small_loc(void) { /* [N, 1, 8, 8] -> [N, 6] */
    cx_module *loc = cx_sequential_new();
    cx_sequential_add(loc, "pool", cx_maxpool2d_new(2, 2, 0));
    cx_sequential_add(loc, "flatten", cx_flatten_new());
    cx_sequential_add(loc, "fc", cx_linear_new(16, 6, true));
    cx_sequential_add(loc, "act", cx_activation_new(CX_ACT_TANH, 0));
    return loc;
}

static void stn_module_starts_at_identity(void) {
    cx_seed(3);
    cx_module *stn = cx_stn_new(small_loc(), 6, 0, 0, false);
    char desc[96];
    cx_module_describe(stn, desc, sizeof desc);
    CHECK_MSG(!strcmp(desc, "SpatialTransformer(out=input size, align_corners=0)"), "%s", desc);
    cx_tensor *w = cx_module_tensor(stn, "fc_loc.weight"), *b = cx_module_tensor(stn, "fc_loc.bias");
    CHECK(w && b && w->ndim == 2 && w->shape[0] == 6 && w->shape[1] == 6 && b->numel == 6);
    CHECK(cx_module_tensor(stn, "loc.fc.weight") != NULL);
    CHECK(cx_stn_fc_loc(stn) && cx_linear_weight(cx_stn_fc_loc(stn)) == w && cx_stn_loc(stn));
    if (!w || !b) return;
    for (int i = 0; i < 36; i++) CHECK(CX_F(w)[i] == 0.0f);
    const float id[6] = {1, 0, 0, 0, 1, 0};
    CHECK(!memcmp(CX_F(b), id, sizeof id));
    cx_tensor *x = cx_rand_uniform_t(CX_SHAPE(3, 1, 8, 8), 0, 1);
    cx_tensor *out[2] = {0};
    CHECK(cx_module_call(stn, &x, 1, out, 2) == 2);
    CHECK(out[0]->ndim == 4 && out[0]->shape[0] == 3 && out[0]->shape[2] == 8 && out[0]->shape[3] == 8);
    cxt_allclose(CX_F(out[0]), CX_F(x), (long)x->numel, 0, 1e-6, "a fresh STN passes its input through");
    CHECK(out[1]->ndim == 3 && out[1]->shape[0] == 3 && out[1]->shape[1] == 2 && out[1]->shape[2] == 3);
    for (int n = 0; n < 3; n++) cxt_allclose(CX_F(out[1]) + 6 * n, id, 6, 0, 0, "theta = identity");
    /* the loss reaches fc_loc at once (the localisation body only once fc_loc.weight moves) */
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(stn, &ps);
    CHECK(ps.n == 4); /* loc.fc.weight, loc.fc.bias, fc_loc.weight, fc_loc.bias */
    cx_params_zero_grad(&ps);
    cx_tensor *r = cx_randn(CX_SHAPE(3, 1, 8, 8), 0, 1);
    cx_backward(cx_sum(cx_mul(cx_module_forward(stn, x), r)));
    double gw = 0;
    for (int i = 0; i < 36; i++) gw += fabs(w->grad ? w->grad[i] : 0);
    CHECK_MSG(gw > 1e-3, "fc_loc.weight gets no gradient (%g)", gw);
    cx_params_zero_grad(&ps);
    cx_params_free(&ps);
    cx_module_free(stn);
}

/* Finite differences through the whole module (localisation net, fc_loc,
 * affine_grid, grid_sample), in every parameter and the input, with a
 * non-trivial fc_loc and an output size of its own. */
typedef struct { cx_module *stn; cx_tensor *x, *r; } stn_ctx;
static cx_tensor *stn_loss(cx_tensor **in, int n, void *user) {
    (void)in, (void)n;
    stn_ctx *c = user;
    return cx_sum(cx_mul(cx_module_forward(c->stn, c->x), c->r));
}
static void stn_module_gradcheck(void) {
    cx_seed(8);
    cx_module *stn = cx_stn_new(small_loc(), 6, 5, 7, true);
    char desc[96];
    cx_module_describe(stn, desc, sizeof desc);
    CHECK_MSG(!strcmp(desc, "SpatialTransformer(out=5x7, align_corners=1)"), "%s", desc);
    cx_init_uniform(cx_module_tensor(stn, "fc_loc.weight"), -0.3f, 0.3f);
    stn_ctx c = {stn, cx_rand_uniform_t(CX_SHAPE(2, 1, 8, 8), 0, 1), cx_randn(CX_SHAPE(2, 1, 5, 7), 0, 1)};
    c.x->requires_grad = true;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(stn, &ps);
    cx_tensor *in[5] = {c.x};
    for (int i = 0; i < ps.n; i++) in[1 + i] = ps.t[i];
    double worst = cx_gradcheck(stn_loss, in, 1 + ps.n, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "STN module gradcheck: worst violation ratio %g", worst);
    cx_params_free(&ps);
    cx_module_free(stn);
}

/* ------------------------------------------------------------ errors name the argument */
static void bad_arguments_named(void) {
    cx_tensor *t23 = cx_zeros(CX_SHAPE(2, 2, 3)), *x = cx_zeros(CX_SHAPE(2, 1, 5, 5));
    EXPECT_FATAL(cx_affine_grid(cx_zeros(CX_SHAPE(2, 3, 3)), 2, 1, 5, 5, false), "affine_grid", "theta",
                 "[2, 2, 3]", "got theta [2, 3, 3]");
    EXPECT_FATAL(cx_affine_grid(t23, 3, 1, 5, 5, false), "affine_grid", "theta must be [N, 2, 3] = [3, 2, 3]",
                 "[3, 1, 5, 5]", "got theta [2, 2, 3]");
    EXPECT_FATAL(cx_affine_grid(cx_zeros(CX_SHAPE(6)), 1, 1, 5, 5, false), "affine_grid", "theta", "[6]");
    EXPECT_FATAL(cx_affine_grid(t23, 2, 1, 0, 5, false), "affine_grid", "size must be positive",
                 "[2, 1, 0, 5]");
    EXPECT_FATAL(cx_affine_grid(cx_empty(CX_I64, CX_SHAPE(2, 2, 3)), 2, 1, 5, 5, false), "affine_grid",
                 "theta must be F32", "I64");
    EXPECT_FATAL(cx_affine_grid(NULL, 2, 1, 5, 5, false), "affine_grid", "theta is NULL");
    cx_tensor *g = cx_zeros(CX_SHAPE(2, 4, 4, 2));
    EXPECT_FATAL(cx_grid_sample(cx_zeros(CX_SHAPE(1, 5, 5)), g, false), "grid_sample", "input must be 4-D",
                 "[1, 5, 5]");
    EXPECT_FATAL(cx_grid_sample(x, cx_zeros(CX_SHAPE(2, 4, 4, 3)), false), "grid_sample", "grid must be",
                 "input [2, 1, 5, 5]", "got grid [2, 4, 4, 3]");
    EXPECT_FATAL(cx_grid_sample(x, cx_zeros(CX_SHAPE(3, 4, 4, 2)), false), "grid_sample", "N = 2",
                 "got grid [3, 4, 4, 2]");
    EXPECT_FATAL(cx_grid_sample(x, cx_zeros(CX_SHAPE(2, 16, 2)), true), "grid_sample", "got grid [2, 16, 2]");
    EXPECT_FATAL(cx_grid_sample(x, cx_empty(CX_I32, CX_SHAPE(2, 4, 4, 2)), false), "grid_sample",
                 "grid must be F32", "I32");
    EXPECT_FATAL(cx_grid_sample(cx_empty(CX_I32, CX_SHAPE(2, 1, 5, 5)), g, false), "grid_sample",
                 "input must be F32");
    EXPECT_FATAL(cx_grid_sample(cx_zeros(CX_SHAPE(2, 1, 0, 5)), g, false), "grid_sample", "input",
                 "[2, 1, 0, 5]");
    EXPECT_FATAL(cx_grid_sample(x, NULL, false), "grid_sample", "grid is NULL");
    /* the module */
    EXPECT_FATAL(cx_stn_new(NULL, 6, 0, 0, false), "SpatialTransformer", "localisation network is NULL");
    cx_module *loc = small_loc();
    EXPECT_FATAL(cx_stn_new(loc, 0, 0, 0, false), "SpatialTransformer", "loc_features", "got 0");
    EXPECT_FATAL(cx_stn_new(loc, 6, 5, 0, false), "SpatialTransformer", "output size", "5x0");
    cx_module *stn = cx_stn_new(loc, 5, 0, 0, false); /* loc gives 6 features, not 5 */
    EXPECT_FATAL(cx_module_forward(stn, cx_zeros(CX_SHAPE(2, 1, 8, 8))), "SpatialTransformer",
                 "[2, 1, 8, 8]", "[2, 6]", "expected [2, 5]", "loc_features");
    EXPECT_FATAL(cx_module_forward(stn, cx_zeros(CX_SHAPE(2, 64))), "SpatialTransformer", "x must be [N, C, H, W]",
                 "[2, 64]");
    EXPECT_FATAL(cx_stn_theta(loc, x), "expected a SpatialTransformer", "Sequential");
    cx_module_free(stn);
}

int main(void) {
    RUN(values_at_borders);
    RUN(identity_grid_copies);
    RUN(same_for_any_thread_count);
    RUN(stn_module_starts_at_identity);
    RUN(stn_module_gradcheck);
    RUN(bad_arguments_named);
    cx_step_reset();
    TEST_END();
}
