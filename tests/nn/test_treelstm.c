/* Child-sum Tree-LSTM: against a recursive PyTorch reference
 * (tools/gen_treelstm_fixtures.py -> tests/fixtures/treelstm/treelstm.safetensors,
 * override with CX_TREELSTM_FIXTURES), a chain against Cortex's LSTM,
 * finite differences, bad trees. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"leaves", "chain", "wide", "mixed"};
#define NCASES 4

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the Tree-LSTM fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_treelstm_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "leaves,chain,wide,mixed"));
}

static cx_tree_batch *trees_of(const char *c) {
    cx_tensor *p = fx(c, "ptr"), *ix = fx(c, "idx");
    int n = (int)p->numel - 1;
    int32_t ptr[64], idx[64];
    for (int j = 0; j <= n; j++) ptr[j] = (int32_t)CX_I64P(p)[j];
    for (int e = 0; ix && e < ix->numel; e++) idx[e] = (int32_t)CX_I64P(ix)[e];
    return cx_tree_batch_new(n, ptr, idx);
}

static void copy_into(cx_tensor *dst, const cx_tensor *src) {
    CHECK(dst->numel == src->numel);
    memcpy(CX_F(dst), CX_F(src), sizeof(float) * (size_t)src->numel);
}

static void matches_torch(void) {
    for (int i = 0; i < NCASES; i++) {
        const char *c = CASES[i];
        cx_tree_batch *t = trees_of(c);
        cx_tensor *x0 = fx(c, "x"), *w0 = fx(c, "w_hh");
        const int H = w0->shape[1];
        cx_module *m = cx_treelstm_new(x0->shape[1], H, true);
        const char *names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
        const char *keys[4] = {"w_ih", "w_hh", "b_ih", "b_hh"}, *gkeys[4] = {"gw_ih", "gw_hh", "gb_ih", "gb_hh"};
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m, &ps);
        CHECK(ps.n == 4);
        for (int q = 0; q < 4; q++) {
            CHECK(!strcmp(ps.t[q]->name, names[q]));
            copy_into(ps.t[q], fx(c, keys[q]));
        }
        cx_tensor *x = cx_from_data(CX_F(x0), x0->shape, 2);
        x->requires_grad = true;
        cx_rnn_out o = cx_treelstm_forward(m, t, x);
        char what[96];
        snprintf(what, sizeof what, "%s h", c);
        cxt_allclose(CX_F(o.output), CX_F(fx(c, "out")), (long)o.output->numel, 1e-5, 1e-6, what);
        snprintf(what, sizeof what, "%s root c", c);
        cxt_allclose(CX_F(o.c), CX_F(fx(c, "root_c")), (long)o.c->numel, 1e-5, 1e-6, what);
        /* roots' h = rows of output */
        const int32_t *roots = cx_tree_batch_roots(t);
        for (int r = 0; r < cx_tree_batch_num_roots(t); r++)
            for (int k = 0; k < H; k++) CHECK(CX_F(o.h)[r * H + k] == CX_F(o.output)[roots[r] * H + k]);
        cx_tensor *loss = cx_add(cx_sum(cx_mul(o.output, cx_from_data(CX_F(fx(c, "gout")), o.output->shape, 2))),
                                 cx_sum(cx_mul(o.c, cx_from_data(CX_F(fx(c, "gc")), o.c->shape, 2))));
        for (int q = 0; q < 4; q++) cx_grad_ensure(ps.t[q]); /* weight_hh gets none from leaves alone */
        cx_backward(loss);
        snprintf(what, sizeof what, "%s grad x", c);
        cxt_allclose(x->grad, CX_F(fx(c, "gx")), (long)x->numel, 1e-4, 1e-5, what);
        for (int q = 0; q < 4; q++) {
            snprintf(what, sizeof what, "%s grad %s", c, names[q]);
            cxt_allclose(ps.t[q]->grad, CX_F(fx(c, gkeys[q])), (long)ps.t[q]->numel, 1e-4, 1e-5, what);
        }
        cx_params_free(&ps);
        cx_module_free(m);
        cx_tree_batch_free(t);
        cx_step_reset();
    }
}

static void structure(void) {
    /* mixed forest: heights and roots */
    int32_t ptr[] = {0, 0, 3, 3, 4, 5, 5, 6, 8, 8, 8, 9};
    int32_t idx[] = {4, 0, 6, 2, 3, 5, 8, 9, 7};
    cx_tree_batch *t = cx_tree_batch_new(11, ptr, idx);
    CHECK(cx_tree_batch_nodes(t) == 11);
    CHECK(cx_tree_batch_num_roots(t) == 2 && cx_tree_batch_roots(t)[0] == 1 && cx_tree_batch_roots(t)[1] == 10);
    CHECK(cx_tree_batch_levels(t) == 4);
    CHECK(cx_tree_batch_height(t, 1) == 3 && cx_tree_batch_height(t, 4) == 2 && cx_tree_batch_height(t, 0) == 0);
    CHECK(cx_tree_batch_height(t, 10) == 2 && cx_tree_batch_height(t, 7) == 1);
    /* the same forest from a parent array gives the same outputs */
    int32_t par[] = {1, -1, 3, 4, 1, 6, 1, 10, 7, 7, -1};
    cx_tree_batch *t2 = cx_tree_batch_from_parents(11, par);
    CHECK(cx_tree_batch_levels(t2) == 4 && cx_tree_batch_num_roots(t2) == 2);
    cx_seed(3);
    cx_module *m = cx_treelstm_new(3, 4, true);
    cx_tensor *x = cx_randn(CX_SHAPE(11, 3), 0, 1);
    cx_rnn_out a = cx_treelstm_forward(m, t, x), b = cx_treelstm_forward(m, t2, x);
    for (int64_t k = 0; k < a.output->numel; k++) CHECK(CX_F(a.output)[k] == CX_F(b.output)[k]);
    cx_module_free(m);
    cx_tree_batch_free(t);
    cx_tree_batch_free(t2);
}

/* a chain of single children is an LSTM over the chain, leaf first */
static void chain_is_lstm(void) {
    cx_seed(5);
    const int T = 5, I = 3, H = 4;
    int32_t par[5];
    for (int j = 0; j < T; j++) par[j] = j + 1 < T ? j + 1 : -1; /* node 0 the leaf, node 4 the root */
    cx_tree_batch *t = cx_tree_batch_from_parents(T, par);
    cx_module *tl = cx_treelstm_new(I, H, true), *lstm = cx_lstm_new(I, H, NULL);
    cx_params a, b;
    cx_params_init(&a);
    cx_params_init(&b);
    cx_module_params(tl, &a);
    cx_module_params(lstm, &b);
    for (int q = 0; q < 4; q++) copy_into(b.t[q], a.t[q]);
    cx_tensor *x = cx_randn(CX_SHAPE(T, I), 0, 1);
    cx_rnn_out o = cx_treelstm_forward(tl, t, x);
    cx_rnn_out s = cx_rnn_forward(lstm, cx_reshape(x, CX_SHAPE(T, 1, I)), NULL, NULL);
    cxt_allclose(CX_F(o.output), CX_F(s.output), T * H, 1e-5, 1e-6, "chain h = LSTM output");
    cxt_allclose(CX_F(o.c), CX_F(s.c), H, 1e-5, 1e-6, "root c = LSTM c_n");
    cx_tensor *r = cx_randn(CX_SHAPE(T, H), 0, 1);
    cx_backward(cx_sum(cx_mul(o.output, r)));
    cx_backward(cx_sum(cx_mul(cx_reshape(s.output, CX_SHAPE(T, H)), r)));
    for (int q = 0; q < 4; q++) cxt_allclose(a.t[q]->grad, b.t[q]->grad, (long)a.t[q]->numel, 1e-4, 1e-5, a.t[q]->name);
    cx_params_free(&a);
    cx_params_free(&b);
    cx_module_free(tl);
    cx_module_free(lstm);
    cx_tree_batch_free(t);
}

typedef struct {
    const cx_tree_batch *t;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *tl_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    cx_rnn_out o = cx_treelstm(c->t, in[0], in[1], in[2], in[3], in[4]);
    return cx_add(cx_sum(cx_mul(o.output, c->R)), cx_sum(o.c));
}

static void gradcheck(void) {
    cx_seed(11);
    int32_t par[] = {-1, 0, 0, 0, 0, 1, 5, 2, -1, 8};
    cx_tree_batch *t = cx_tree_batch_from_parents(10, par);
    const int I = 3, H = 2;
    cx_tensor *in[5] = {cx_randn(CX_SHAPE(10, I), 0, 1), cx_randn(CX_SHAPE(4 * H, I), 0, 0.7f),
                        cx_randn(CX_SHAPE(4 * H, H), 0, 0.7f), cx_randn(CX_SHAPE(4 * H), 0, 0.5f),
                        cx_randn(CX_SHAPE(4 * H), 0, 0.5f)};
    for (int q = 0; q < 5; q++) in[q]->requires_grad = true;
    gc_ctx ctx = {t, cx_randn(CX_SHAPE(10, H), 0, 1)};
    double worst = cx_gradcheck(tl_fn, in, 5, &ctx, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "treelstm: worst %g", worst);
    cx_tree_batch_free(t);
}

static void errors(void) {
    int32_t p1[] = {0, 1, 1, 1}, i1[] = {7};
    EXPECT_FATAL(cx_tree_batch_new(3, p1, i1), "node 0 has child 7", "0 .. 2");
    int32_t p2[] = {0, 1, 2, 2}, i2[] = {2, 2};
    EXPECT_FATAL(cx_tree_batch_new(3, p2, i2), "node 2 has two parents", "node 0 and node 1");
    int32_t p3[] = {0, 1, 2, 3, 3}, i3[] = {1, 2, 0}; /* 0 -> 1 -> 2 -> 0, node 3 alone */
    EXPECT_FATAL(cx_tree_batch_new(4, p3, i3), "cycle");
    int32_t p4[] = {0, 0, 1}, i4[] = {1};
    EXPECT_FATAL(cx_tree_batch_new(2, p4, i4), "node 1 is its own child");
    int32_t p5[] = {0, 2, 2, 2}, i5[] = {1, 1};
    EXPECT_FATAL(cx_tree_batch_new(3, p5, i5), "lists child 1 twice");
    int32_t p6[] = {0, 2, 1}, i6[] = {1, 0};
    EXPECT_FATAL(cx_tree_batch_new(2, p6, i6), "child_ptr decreases");
    int32_t par[] = {1, 2, 0};
    EXPECT_FATAL(cx_tree_batch_from_parents(3, par), "cycle");
    int32_t par2[] = {-1, 5};
    EXPECT_FATAL(cx_tree_batch_from_parents(2, par2), "node 1 has parent 5");
    int32_t par3[] = {-1, 0};
    cx_tree_batch *t = cx_tree_batch_from_parents(2, par3);
    cx_module *m = cx_treelstm_new(3, 2, true);
    EXPECT_FATAL(cx_treelstm_forward(m, t, cx_zeros(CX_SHAPE(3, 3))), "[3, 3]", "one row per node");
    EXPECT_FATAL(cx_treelstm_forward(m, t, cx_zeros(CX_SHAPE(2, 4))), "expected [n, 3]");
    EXPECT_FATAL(cx_module_forward(m, cx_zeros(CX_SHAPE(2, 3))), "cx_treelstm_forward");
    cx_module_free(m);
    cx_tree_batch_free(t);
}

int main(void) {
    const char *path = getenv("CX_TREELSTM_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/treelstm/treelstm.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) RUN(matches_torch);
    RUN(structure);
    RUN(chain_is_lstm);
    RUN(gradcheck);
    RUN(errors);
    cx_st_free(FX);
    TEST_END();
}
