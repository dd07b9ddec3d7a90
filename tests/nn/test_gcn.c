/* Graph convolution: the normalised adjacency and the GCN layer against
 * PyTorch (tools/gen_gcn_fixtures.py -> tests/fixtures/graph/gcn.safetensors,
 * override with CX_GCN_FIXTURES), sparse products against dense ones,
 * finite differences, argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"gcn_loops", "gcn_noloops"};
#define NCASES 2

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the GCN fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_gcn_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "gcn_loops,gcn_noloops"));
}

/* dense copy of a sparse matrix: a times the identity */
static cx_tensor *densify(const cx_sparse *a) {
    int C = cx_sparse_cols(a);
    cx_tensor *eye = cx_zeros(CX_SHAPE(C, C));
    for (int i = 0; i < C; i++) CX_F(eye)[i * C + i] = 1.0f;
    return cx_spmm(a, eye);
}

static cx_sparse *adj_of(const char *c) {
    cx_tensor *src = fx(c, "src"), *dst = fx(c, "dst");
    int n = (int)CX_I64P(fx(c, "n"))[0];
    int32_t s[64], d[64];
    for (int64_t k = 0; k < src->numel; k++) s[k] = (int32_t)CX_I64P(src)[k], d[k] = (int32_t)CX_I64P(dst)[k];
    return cx_gcn_adjacency(n, s, d, src->numel, CX_I64P(fx(c, "loops"))[0] == 1);
}

static void matches_torch(void) {
    for (int i = 0; i < NCASES; i++) {
        const char *c = CASES[i];
        cx_sparse *a = adj_of(c);
        cx_tensor *ahat = fx(c, "ahat"), *x0 = fx(c, "x"), *w0 = fx(c, "w"), *b0 = fx(c, "b");
        char what[96];
        snprintf(what, sizeof what, "%s adjacency", c);
        cxt_allclose(CX_F(densify(a)), CX_F(ahat), (long)ahat->numel, 1e-6, 1e-7, what);
        cx_module *g = cx_gcn_new(w0->shape[1], w0->shape[0], true);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(g, &ps);
        CHECK(ps.n == 2 && ps.t[0]->numel == w0->numel && ps.t[1]->numel == b0->numel);
        memcpy(CX_F(ps.t[0]), CX_F(w0), sizeof(float) * (size_t)w0->numel);
        memcpy(CX_F(ps.t[1]), CX_F(b0), sizeof(float) * (size_t)b0->numel);
        cx_tensor *x = cx_from_data(CX_F(x0), x0->shape, 2);
        x->requires_grad = true;
        cx_tensor *out = cx_gcn_forward(g, a, x);
        snprintf(what, sizeof what, "%s forward", c);
        cxt_allclose(CX_F(out), CX_F(fx(c, "out")), (long)out->numel, 1e-5, 1e-5, what);
        cx_backward_with(out, CX_F(fx(c, "gout")));
        snprintf(what, sizeof what, "%s grad x", c);
        cxt_allclose(x->grad, CX_F(fx(c, "gx")), (long)x->numel, 1e-5, 1e-5, what);
        snprintf(what, sizeof what, "%s grad weight", c);
        cxt_allclose(ps.t[0]->grad, CX_F(fx(c, "gw")), (long)w0->numel, 1e-5, 1e-5, what);
        snprintf(what, sizeof what, "%s grad bias", c);
        cxt_allclose(ps.t[1]->grad, CX_F(fx(c, "gb")), (long)b0->numel, 1e-5, 1e-5, what);
        cx_params_free(&ps);
        cx_module_free(g);
        cx_sparse_free(a);
        cx_step_reset();
    }
}

/* coordinates: duplicates summed, rows sorted, the product equals the dense one */
static void sparse_from_coo(void) {
    int32_t r[] = {2, 0, 2, 1, 2}, c[] = {1, 3, 1, 0, 0};
    float v[] = {1.5f, -2.0f, 0.5f, 3.0f, 4.0f};
    cx_sparse *s = cx_sparse_from_coo(3, 4, r, c, v, 5);
    CHECK(cx_sparse_rows(s) == 3 && cx_sparse_cols(s) == 4 && cx_sparse_nnz(s) == 4);
    float dense[12] = {0};
    for (int k = 0; k < 5; k++) dense[r[k] * 4 + c[k]] += v[k];
    cx_seed(2);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 3), 0, 1);
    cx_tensor *y = cx_spmm(s, x);
    for (int i = 0; i < 3; i++)
        for (int f = 0; f < 3; f++) {
            double want = 0;
            for (int k = 0; k < 4; k++) want += dense[i * 4 + k] * CX_F(x)[k * 3 + f];
            CHECK_NEAR(CX_F(y)[i * 3 + f], want, 1e-5);
        }
    cx_sparse_free(s);
}

typedef struct {
    const cx_sparse *a;
    cx_module *g;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *spmm_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_spmm(c->a, in[0]), c->R));
}

static cx_tensor *gcn2_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    return cx_sum(cx_mul(cx_tanh(cx_gcn_forward(c->g, c->a, in[0])), c->R));
}

static void gradcheck(void) {
    cx_seed(4);
    int32_t r[] = {0, 1, 2, 3, 4, 0, 2}, c[] = {1, 2, 3, 4, 0, 3, 2};
    float v[] = {0.5f, -1.0f, 2.0f, 0.3f, 1.1f, -0.7f, 0.9f};
    cx_sparse *s = cx_sparse_from_coo(5, 5, r, c, v, 7); /* not symmetric: the backward uses A^T */
    cx_tensor *x = cx_randn(CX_SHAPE(5, 3), 0, 1);
    x->requires_grad = true;
    gc_ctx ctx = {s, NULL, cx_randn(CX_SHAPE(5, 3), 0, 1)};
    double worst = cx_gradcheck(spmm_fn, &x, 1, &ctx, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "spmm: worst %g", worst);
    cx_sparse_free(s);
    int32_t es[] = {0, 1, 2, 3, 1}, ed[] = {1, 2, 3, 4, 4};
    cx_sparse *a = cx_gcn_adjacency(6, es, ed, 5, true);
    cx_module *g = cx_gcn_new(3, 2, true);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(g, &ps);
    cx_fill_uniform(ps.t[1], -0.5f, 0.5f); /* a non-zero bias */
    cx_tensor *x2 = cx_randn(CX_SHAPE(6, 3), 0, 1);
    x2->requires_grad = true;
    gc_ctx c2 = {a, g, cx_randn(CX_SHAPE(6, 2), 0, 1)};
    cx_tensor *ins[3] = {x2, ps.t[0], ps.t[1]};
    worst = cx_gradcheck(gcn2_fn, ins, 3, &c2, 1e-2f, 2e-3f, 1e-2f, true); /* x, weight, bias */
    CHECK_MSG(worst <= 1.0, "gcn: worst %g", worst);
    cx_params_free(&ps);
    cx_module_free(g);
    cx_sparse_free(a);
}

static void errors(void) {
    int32_t s[] = {0, 5}, d[] = {1, 2};
    EXPECT_FATAL(cx_gcn_adjacency(4, s, d, 2, true), "edge 1 (5, 2)", "outside 0 .. 3");
    int32_t r[] = {0}, c[] = {9};
    EXPECT_FATAL(cx_sparse_from_coo(2, 3, r, c, NULL, 1), "(0, 9)", "2 x 3");
    int32_t s2[] = {0}, d2[] = {1};
    cx_sparse *a = cx_gcn_adjacency(3, s2, d2, 1, true);
    EXPECT_FATAL(cx_spmm(a, cx_zeros(CX_SHAPE(4, 2))), "3 x 3", "[3, F]");
    cx_module *g = cx_gcn_new(2, 2, true);
    EXPECT_FATAL(cx_module_forward(g, cx_zeros(CX_SHAPE(3, 2))), "cx_gcn_forward");
    cx_module *l = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_gcn_forward(l, a, cx_zeros(CX_SHAPE(3, 2))), "GCNConv");
    cx_module_free(l);
    cx_module_free(g);
    cx_sparse_free(a);
}

int main(void) {
    const char *path = getenv("CX_GCN_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/graph/gcn.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) RUN(matches_torch);
    RUN(sparse_from_coo);
    RUN(gradcheck);
    RUN(errors);
    cx_st_free(FX);
    TEST_END();
}
