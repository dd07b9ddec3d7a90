/* Attention (include/cortex/attention.h) beyond the op table rows of
 * tests/autograd/op_cases.h (which compare cx_attention, the general and the
 * additive attention with PyTorch and finite differences):
 *
 *  - the multi-head attention module against torch.nn.MultiheadAttention
 *    (tools/gen_attention_fixtures.py -> tests/fixtures/attention/<case>
 *    .safetensors, override the folder with CX_ATTN_FIXTURES): PyTorch's
 *    state_dict is loaded with cx_module_load_state (names, shapes, layouts),
 *    then the output, the weights (head-averaged or per head) and the
 *    gradients of sum(out * gout) (+ sum(weights * gw)) with respect to the
 *    inputs and every parameter are compared, rtol 1e-4 / atol 1e-5:
 *    batch_first both ways, self / cross attention, kdim / vdim != E,
 *    key_padding_mask (bool, float), attn_mask (bool, float, 2-D, 3-D),
 *    causal, no bias, unbatched input, one head, fully masked rows (against
 *    Cortex's definition: PyTorch 1.13 gives NaN);
 *  - the module's names, shapes and initialisation, cx_module_call, 1 and 2
 *    threads bit-identical (built-in GEMM), dropout on the weights (eval / train, finite
 *    differences through a fixed mask);
 *  - the op: one node with two outputs, fully masked rows under check mode,
 *    a NaN input still propagates;
 *  - errors: every wrong shape, mask or head count names the argument. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define FX_RTOL 1e-4
#define FX_ATOL 1e-5

static const char *fixture_dir(void) {
    const char *d = getenv("CX_ATTN_FIXTURES");
    return d && *d ? d : "tests/fixtures/attention";
}

static const char *const CASES[] = {
    "self_seq", "self_bf_per_head", "cross_kv", "cross_sep_bf", "kdim_vdim_bf", "kdim_vdim_kpm", "kdim_eq_vdim",
    "kpm_bool", "kpm_float", "mask_bool_2d", "mask_float_2d", "mask_bool_3d", "mask_float_3d", "mask_bool_kpm",
    "causal", "causal_kpm", "weights_grad", "weights_grad_per_head", "no_bias", "unbatched", "unbatched_kv_kpm",
    "one_head", "no_weights", "big_threaded", "full_row_kpm", "full_row_causal"};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))

static int meta_int(const cx_st_file *f, const char *key) {
    const char *v = cx_st_meta(f, key);
    CHECK_MSG(v != NULL, "fixture metadata lacks %s", key);
    return v ? atoi(v) : 0;
}

static bool same_shape(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

static void compare(const char *c, const char *what, const cx_tensor *got, const float *got_data,
                    const cx_tensor *want) {
    char msg[256], s1[96], s2[96];
    CHECK_MSG(want != NULL, "case %s: fixture lacks %s", c, what);
    CHECK_MSG(got != NULL, "case %s: no %s", c, what);
    if (!want || !got) return;
    CHECK_MSG(same_shape(got, want), "case %s: %s shape %s, PyTorch %s", c, what, cx_shape_str(got, s1, sizeof s1),
              cx_shape_str(want, s2, sizeof s2));
    CHECK_MSG(got_data != NULL, "case %s: %s missing (no gradient?)", c, what);
    if (got->numel != want->numel || !got_data) return;
    snprintf(msg, sizeof msg, "%s %s", c, what);
    cxt_allclose(got_data, CX_F(want), (long)want->numel, FX_RTOL, FX_ATOL, msg);
}

static cx_tensor *step_copy(const cx_tensor *src, bool grad) {
    if (!src) return NULL;
    cx_tensor *t = cx_empty(src->dtype, src->shape, src->ndim);
    memcpy(t->data, src->data, (size_t)src->numel * cx_dtype_size(src->dtype));
    t->requires_grad = grad && src->dtype == CX_F32;
    return t;
}

typedef struct {
    cx_module *m;
    cx_st_file *f;
    cx_tensor *query, *key, *value, *kpm, *am;
    bool need_weights, average;
} fx_case;

/* Build the module of a fixture file and load PyTorch's state_dict into it. */
static cx_module *module_of(const char *c, cx_st_file *f) {
    cx_mha_opts o = cx_mha_defaults();
    const int E = meta_int(f, "embed_dim"), H = meta_int(f, "num_heads");
    o.kdim = meta_int(f, "kdim");
    o.vdim = meta_int(f, "vdim");
    o.batch_first = meta_int(f, "batch_first");
    o.bias = meta_int(f, "bias");
    o.causal = meta_int(f, "causal");
    cx_module *m = cx_multihead_attention_new(E, H, &o);
    cx_status st = cx_module_load_state(m, f, c);
    CHECK_MSG(st == CX_OK, "case %s: cx_module_load_state: %s", c, cx_last_error());
    /* every tensor of PyTorch's state_dict is one of the module's */
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    int in_file = 0;
    for (int k = 0; k < f->n; k++)
        if (strncmp(f->entries[k].name, "data.", 5) && strncmp(f->entries[k].name, "grad.", 5)) in_file++;
    CHECK_MSG(in_file == sd.n, "case %s: PyTorch's state_dict has %d tensors, the module %d", c, in_file, sd.n);
    cx_state_dict_free(&sd);
    return m;
}

static void fixture_case(const char *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixture_dir(), c);
    cx_st_file *f = NULL;
    CHECK_MSG(cx_st_load(path, &f) == CX_OK, "case %s: %s (regenerate with /usr/bin/python3 "
              "tools/gen_attention_fixtures.py)", c, cx_last_error());
    if (!f) return;
    cx_module *m = module_of(c, f);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_params_zero_grad(&ps);
    const char *inputs = cx_st_meta(f, "inputs");
    const bool need_weights = meta_int(f, "need_weights"), average = meta_int(f, "average");
    cx_tensor *query = step_copy(cx_st_get(f, "data.query"), true);
    cx_tensor *key = step_copy(cx_st_get(f, "data.key"), true);
    cx_tensor *value = step_copy(cx_st_get(f, "data.value"), true);
    CHECK_MSG(query && inputs, "case %s: no query / inputs", c);
    if (!query || !inputs) goto done;
    if (!strcmp(inputs, "self")) key = value = query;
    else if (!strcmp(inputs, "kv")) value = key;
    cx_tensor *w = NULL;
    cx_tensor *out = NULL;
    cx_tensor *y = cx_mha_forward(m, query, key, value, cx_st_get(f, "data.kpm"), cx_st_get(f, "data.attn_mask"),
                                  need_weights, average, &out, &w);
    CHECK(y == out);
    compare(c, "output", y, CX_F(y), cx_st_get(f, "data.out"));
    if (need_weights) compare(c, "weights", w, w ? CX_F(w) : NULL, cx_st_get(f, "data.weights"));
    else CHECK_MSG(w == NULL, "case %s: weights without need_weights", c);
    cx_tensor *loss = cx_sum(cx_mul(y, cx_st_get(f, "data.gout")));
    if (meta_int(f, "weights_grad")) loss = cx_add(loss, cx_sum(cx_mul(w, cx_st_get(f, "data.gw"))));
    cx_backward(loss);
    compare(c, "grad query", query, query->grad, cx_st_get(f, "grad.query"));
    if (key != query) compare(c, "grad key", key, key->grad, cx_st_get(f, "grad.key"));
    if (value != key) compare(c, "grad value", value, value->grad, cx_st_get(f, "grad.value"));
    for (int k = 0; k < ps.n; k++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", ps.t[k]->name);
        compare(c, name, ps.t[k], ps.t[k]->grad, cx_st_get(f, name));
    }
done:
    cx_params_free(&ps);
    cx_module_free(m);
    cx_st_free(f);
    cx_step_reset();
}

static void pytorch_fixtures(void) {
    for (int i = 0; i < N_CASES; i++) fixture_case(CASES[i]);
    /* and the folder holds no case this list does not know */
    DIR *d = opendir(fixture_dir());
    CHECK_MSG(d != NULL, "cannot open %s", fixture_dir());
    if (!d) return;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors")) continue;
        n++;
        bool known = false;
        for (int i = 0; i < N_CASES; i++)
            known |= strlen(CASES[i]) == len - 12 && !strncmp(e->d_name, CASES[i], len - 12);
        CHECK_MSG(known, "fixture %s is not in the test's case list", e->d_name);
    }
    closedir(d);
    CHECK_MSG(n == N_CASES, "%d fixture files, %d cases", n, N_CASES);
}

/* ------------------------------------------------------------ the module itself */
static void names_shapes_init(void) {
    cx_seed(3);
    const int E = 16, H = 4;
    cx_module *m = cx_multihead_attention_new(E, H, NULL);
    CHECK(!strcmp(cx_module_kind(m), "MultiheadAttention"));
    CHECK(cx_mha_embed_dim(m) == E && cx_mha_num_heads(m) == H);
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    const char *want[] = {"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"};
    CHECK_MSG(sd.n == 4, "%d state tensors", sd.n);
    for (int i = 0; i < sd.n && i < 4; i++) CHECK_MSG(!strcmp(sd.names[i], want[i]), "state %d: %s", i, sd.names[i]);
    cx_state_dict_free(&sd);
    cx_tensor *w = cx_module_tensor(m, "in_proj_weight"), *b = cx_module_tensor(m, "in_proj_bias");
    cx_tensor *ow = cx_module_tensor(m, "out_proj.weight"), *ob = cx_module_tensor(m, "out_proj.bias");
    CHECK(w && w->ndim == 2 && w->shape[0] == 3 * E && w->shape[1] == E);
    CHECK(b && b->ndim == 1 && b->shape[0] == 3 * E);
    CHECK(ow && ow->shape[0] == E && ow->shape[1] == E && ob && ob->shape[0] == E);
    CHECK(cx_module_find(m, "out_proj") && !strcmp(cx_module_kind(cx_module_find(m, "out_proj")), "Linear"));
    /* xavier_uniform_ on [3E, E]: U(-a, a), a = sqrt(6 / (E + 3E)); the extremes come close to a */
    const float a = sqrtf(6.0f / (float)(4 * E)), lo = 1.0f / sqrtf((float)E);
    float wmax = 0, omax = 0;
    for (int64_t i = 0; i < w->numel; i++) wmax = fmaxf(wmax, fabsf(CX_F(w)[i]));
    for (int64_t i = 0; i < ow->numel; i++) omax = fmaxf(omax, fabsf(CX_F(ow)[i]));
    CHECK_MSG(wmax <= a && wmax > 0.95f * a, "in_proj_weight max |w| %g, xavier bound %g", wmax, a);
    CHECK_MSG(omax <= lo && omax > 0.9f * lo, "out_proj.weight max |w| %g, bound %g", omax, lo);
    for (int64_t i = 0; i < b->numel; i++) CHECK(CX_F(b)[i] == 0.0f);
    for (int64_t i = 0; i < ob->numel; i++) CHECK(CX_F(ob)[i] == 0.0f);
    char desc[128];
    cx_module_describe(m, desc, sizeof desc);
    CHECK_MSG(!strcmp(desc, "MultiheadAttention(embed_dim=16, num_heads=4)"), "%s", desc);
    cx_module_free(m);
    /* separate projections (kdim / vdim), no bias */
    cx_mha_opts o = cx_mha_defaults();
    o.kdim = 5;
    o.vdim = 7;
    o.bias = false;
    o.batch_first = true;
    m = cx_multihead_attention_new(E, H, &o);
    cx_module_state_dict(m, &sd);
    const char *want2[] = {"q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"};
    CHECK_MSG(sd.n == 4, "%d state tensors", sd.n);
    for (int i = 0; i < sd.n && i < 4; i++) CHECK_MSG(!strcmp(sd.names[i], want2[i]), "state %d: %s", i, sd.names[i]);
    cx_state_dict_free(&sd);
    CHECK(cx_module_tensor(m, "k_proj_weight")->shape[1] == 5 && cx_module_tensor(m, "v_proj_weight")->shape[1] == 7);
    CHECK(cx_module_tensor(m, "in_proj_bias") == NULL && cx_module_tensor(m, "out_proj.bias") == NULL);
    cx_module_describe(m, desc, sizeof desc);
    CHECK_MSG(!strcmp(desc, "MultiheadAttention(embed_dim=16, num_heads=4, kdim=5, vdim=7, bias=False, batch_first)"),
              "%s", desc);
    cx_module_free(m);
}

/* cx_module_call = cx_mha_forward with averaged weights; 1 and 2 threads give
 * the same bits with the built-in GEMM (the batch-heads loop splits whole
 * GEMMs), the same values within rounding with a BLAS */
static void module_call_and_threads(void) {
    cx_seed(5);
    const int E = 32, H = 4, B = 3, T = 20;
    cx_mha_opts o = cx_mha_defaults();
    o.batch_first = true;
    cx_module *m = cx_multihead_attention_new(E, H, &o);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_tensor *x = cx_randn(CX_SHAPE(B, T, E), 0.0f, 1.0f);
    cx_tensor *kpm_b = cx_empty(CX_I32, CX_SHAPE(B, T));
    for (int i = 0; i < B * T; i++) CX_I32P(kpm_b)[i] = (i % T) >= T - 3 * (i / T);
    cx_tensor *outs[2] = {0};
    cx_tensor *in[5] = {x, NULL, NULL, kpm_b, NULL};
    CHECK(cx_module_call(m, in, 4, outs, 2) == 2);
    cx_tensor *w = NULL;
    cx_tensor *y = cx_mha_forward(m, x, x, x, kpm_b, NULL, true, true, NULL, &w);
    CHECK(outs[0] && outs[1] && same_shape(outs[0], y) && same_shape(outs[1], w));
    CHECK(w->ndim == 3 && w->shape[0] == B && w->shape[1] == T && w->shape[2] == T);
    if (outs[0] && outs[1]) {
        CHECK(!memcmp(CX_F(outs[0]), CX_F(y), (size_t)y->numel * 4));
        CHECK(!memcmp(CX_F(outs[1]), CX_F(w), (size_t)w->numel * 4));
    }
    CHECK(cx_module_call(m, in, 1, outs, 1) == 1);
    float *res[2][3];
    int nthr[2] = {1, 2};
    const int saved = cx_get_threads();
    for (int r = 0; r < 2; r++) {
        cx_set_threads(nthr[r]);
        cx_params_zero_grad(&ps);
        cx_tensor *xx = cx_from_data(CX_F(x), x->shape, 3);
        xx->requires_grad = true;
        cx_tensor *ww = NULL;
        cx_tensor *yy = cx_mha_forward(m, xx, xx, xx, kpm_b, NULL, true, false, NULL, &ww);
        cx_backward(cx_add(cx_sum(cx_mul(yy, yy)), cx_sum(cx_mul(ww, ww))));
        res[r][0] = malloc((size_t)yy->numel * 4);
        res[r][1] = malloc((size_t)xx->numel * 4);
        res[r][2] = malloc((size_t)ps.t[0]->numel * 4);
        memcpy(res[r][0], CX_F(yy), (size_t)yy->numel * 4);
        memcpy(res[r][1], xx->grad, (size_t)xx->numel * 4);
        memcpy(res[r][2], ps.t[0]->grad, (size_t)ps.t[0]->numel * 4);
    }
    cx_set_threads(saved);
    if (cx_gemm_backend_in_use() == CX_GEMM_BUILTIN) { /* its results do not depend on the thread count */
        CHECK_MSG(!memcmp(res[0][0], res[1][0], (size_t)B * T * E * 4), "output differs between 1 and 2 threads");
        CHECK_MSG(!memcmp(res[0][1], res[1][1], (size_t)B * T * E * 4), "input gradient differs between 1 and 2 threads");
        CHECK_MSG(!memcmp(res[0][2], res[1][2], (size_t)3 * E * E * 4), "in_proj_weight gradient differs");
    } else { /* a BLAS may split its sums differently */
        cxt_allclose(res[1][0], res[0][0], (long)B * T * E, 1e-5, 1e-6, "output, 2 vs 1 threads");
        cxt_allclose(res[1][1], res[0][1], (long)B * T * E, 1e-5, 1e-6, "input gradient, 2 vs 1 threads");
        cxt_allclose(res[1][2], res[0][2], (long)3 * E * E, 1e-5, 1e-5, "in_proj_weight gradient, 2 vs 1 threads");
    }
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) free(res[r][k]);
    cx_params_free(&ps);
    cx_module_free(m);
}

/* dropout on the weights: identity in eval mode; in training, each weight is
 * 0 or P / (1 - p) (per-head weights compared with the eval ones), about a
 * fraction p dropped, and the output is those weights times v */
static void dropout_on_weights(void) {
    cx_seed(9);
    const int E = 12, H = 3, B = 4, T = 16;
    cx_mha_opts o = cx_mha_defaults();
    o.dropout = 0.25f;
    cx_module *m = cx_multihead_attention_new(E, H, &o);
    cx_tensor *x = cx_randn(CX_SHAPE(T, B, E), 0.0f, 1.0f);
    cx_set_training(false);
    cx_tensor *w_eval = NULL;
    cx_tensor *y_eval = cx_mha_forward(m, x, x, x, NULL, NULL, true, false, NULL, &w_eval);
    cx_set_training(true);
    cx_tensor *w_tr = NULL;
    cx_seed(77);
    cx_tensor *y_tr = cx_mha_forward(m, x, x, x, NULL, NULL, true, false, NULL, &w_tr);
    int64_t dropped = 0, bad = 0;
    for (int64_t i = 0; i < w_tr->numel; i++) {
        float a = CX_F(w_tr)[i], e = CX_F(w_eval)[i];
        if (a == 0.0f) dropped++;
        else if (fabsf(a - e / 0.75f) > 1e-6f * (1.0f + fabsf(e))) bad++;
    }
    CHECK_MSG(bad == 0, "%lld kept weights are not P / (1 - p)", (long long)bad);
    double frac = (double)dropped / (double)w_tr->numel;
    CHECK_MSG(fabs(frac - 0.25) < 0.05, "dropped fraction %g, p = 0.25", frac);
    CHECK(memcmp(CX_F(y_tr), CX_F(y_eval), (size_t)y_eval->numel * 4) != 0);
    /* same seed, same draws */
    cx_seed(77);
    cx_tensor *w_tr2 = NULL;
    cx_tensor *y_tr2 = cx_mha_forward(m, x, x, x, NULL, NULL, true, false, NULL, &w_tr2);
    CHECK(!memcmp(CX_F(y_tr), CX_F(y_tr2), (size_t)y_tr->numel * 4));
    /* p = 1: every weight dropped, the output is out_proj.bias (zero here) */
    cx_module_free(m);
    o.dropout = 1.0f;
    m = cx_multihead_attention_new(E, H, &o);
    cx_tensor *w1 = NULL;
    cx_tensor *y1 = cx_mha_forward(m, x, x, x, NULL, NULL, true, true, NULL, &w1);
    int nz = 0;
    for (int64_t i = 0; i < y1->numel; i++) nz += CX_F(y1)[i] != 0.0f;
    for (int64_t i = 0; i < w1->numel; i++) nz += CX_F(w1)[i] != 0.0f;
    CHECK_MSG(nz == 0, "p = 1 left %d non-zero values", nz);
    cx_module_free(m);
}

/* finite differences of the fused op through a fixed dropout mask (seeded
 * before every evaluation), gradient through both outputs */
typedef struct { cx_tensor *R1, *R2; float p; } drop_ctx;
static cx_tensor *drop_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    drop_ctx *c = user;
    cx_seed(1234);
    cx_attn_opts o = cx_attn_defaults();
    o.dropout = c->p;
    o.causal = true;
    cx_tensor *w = NULL;
    cx_tensor *y = cx_attention(in[0], in[1], in[2], &o, &w);
    return cx_add(cx_sum(cx_mul(y, c->R1)), cx_sum(cx_mul(w, c->R2)));
}
static void dropout_gradcheck(void) {
    cx_seed(21);
    cx_set_training(true);
    cx_tensor *in[3] = {cx_randn(CX_SHAPE(2, 3, 5, 4), 0.0f, 1.0f), cx_randn(CX_SHAPE(2, 3, 6, 4), 0.0f, 1.0f),
                        cx_randn(CX_SHAPE(2, 3, 6, 3), 0.0f, 1.0f)};
    for (int k = 0; k < 3; k++) in[k]->requires_grad = true;
    drop_ctx c = {cx_randn(CX_SHAPE(2, 3, 5, 3), 0.0f, 1.0f), cx_randn(CX_SHAPE(2, 3, 5, 6), 0.0f, 1.0f), 0.3f};
    double worst = cx_gradcheck(drop_fn, in, 3, &c, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "dropout attention gradcheck: worst violation ratio %g", worst);
    /* eval mode: no dropout at all */
    cx_set_training(false);
    cx_attn_opts o = cx_attn_defaults();
    o.dropout = 0.5f;
    cx_tensor *y0 = cx_attention(in[0], in[1], in[2], NULL, NULL);
    cx_tensor *y1 = cx_attention(in[0], in[1], in[2], &o, NULL);
    CHECK(!memcmp(CX_F(y0), CX_F(y1), (size_t)y0->numel * 4));
    cx_set_training(true);
}

/* ------------------------------------------------------------ the op */
static void one_node_two_outputs(void) {
    cx_seed(2);
    cx_tensor *q = cx_randn(CX_SHAPE(2, 3, 4), 0.0f, 1.0f);
    q->requires_grad = true;
    cx_tensor *w = NULL;
    cx_tensor *y = cx_attention(q, q, q, NULL, &w);
    CHECK(w && y->node && w->node == y->node);
    CHECK(cx_op_of(y) == cx_op_find("attention") && cx_op_outputs(cx_op_find("attention")) == 2);
    CHECK(w->ndim == 3 && w->shape[0] == 2 && w->shape[1] == 3 && w->shape[2] == 3);
    for (int r = 0; r < 6; r++) {
        double s = 0;
        for (int j = 0; j < 3; j++) s += CX_F(w)[r * 3 + j];
        CHECK_NEAR(s, 1.0, 1e-6);
    }
    /* scale 1 = plain dot product: the weights of q = e_i against itself */
    cx_tensor *e = cx_zeros(CX_SHAPE(2, 2));
    CX_F(e)[0] = CX_F(e)[3] = 3.0f;
    cx_attn_opts o = cx_attn_defaults();
    o.scale = 1.0f;
    cx_tensor *we = NULL;
    cx_attention(e, e, e, &o, &we);
    CHECK_NEAR(CX_F(we)[0], 1.0 / (1.0 + exp(-9.0)), 1e-6);
    o.scale = 0.0f; /* default 1/sqrt(2) */
    cx_attention(e, e, e, &o, &we);
    CHECK_NEAR(CX_F(we)[0], 1.0 / (1.0 + exp(-9.0 / sqrt(2.0))), 1e-6);
}

/* A fully masked row: zero weights, zero output, zero gradient; check mode
 * (which stops at the first NaN) stays quiet; a NaN in the input still gives
 * NaN (never hidden). */
static void fully_masked_rows(void) {
    cx_seed(4);
    cx_tensor *q = cx_randn(CX_SHAPE(2, 3, 4), 0.0f, 1.0f), *k = cx_randn(CX_SHAPE(2, 5, 4), 0.0f, 1.0f);
    cx_tensor *v = cx_randn(CX_SHAPE(2, 5, 3), 0.0f, 1.0f);
    q->requires_grad = k->requires_grad = v->requires_grad = true;
    cx_tensor *kpm = cx_empty(CX_I64, CX_SHAPE(2, 5));
    for (int i = 0; i < 10; i++) CX_I64P(kpm)[i] = i >= 5; /* batch 1: every key is padding */
    cx_set_check_numerics(true);
    cx_attn_opts o = cx_attn_defaults();
    o.key_padding_mask = kpm;
    cx_tensor *w = NULL;
    cx_tensor *y = cx_attention(q, k, v, &o, &w);
    cx_backward(cx_add(cx_sum(y), cx_sum(cx_mul(w, w))));
    cx_set_check_numerics(false);
    int bad = 0;
    for (int i = 9; i < 18; i++) bad += CX_F(y)[i] != 0.0f;
    for (int i = 15; i < 30; i++) bad += CX_F(w)[i] != 0.0f;
    for (int i = 12; i < 24; i++) bad += q->grad[i] != 0.0f;
    for (int i = 20; i < 40; i++) bad += k->grad[i] != 0.0f;
    for (int i = 15; i < 30; i++) bad += v->grad[i] != 0.0f;
    CHECK_MSG(bad == 0, "%d non-zero values in the fully masked batch", bad);
    /* the MultiheadAttention module: the row's output is out_proj.bias */
    cx_mha_opts mo = cx_mha_defaults();
    mo.batch_first = true;
    cx_module *m = cx_multihead_attention_new(4, 2, &mo);
    cx_fill(cx_module_tensor(m, "out_proj.bias"), 0.5f);
    cx_tensor *wm = NULL;
    cx_tensor *ym = cx_mha_forward(m, q, k, k, kpm, NULL, true, true, NULL, &wm);
    for (int i = 12; i < 24; i++) bad += fabsf(CX_F(ym)[i] - 0.5f) > 1e-6f;
    CHECK_MSG(bad == 0, "the fully masked rows are not out_proj.bias");
    cx_module_free(m);
    /* NaN in q: the row is NaN, not zero */
    CX_F(q)[0] = NAN;
    cx_tensor *yn = cx_attention(cx_detach(q), k, v, NULL, NULL);
    CHECK(isnan(CX_F(yn)[0]) && !isnan(CX_F(yn)[3]));
    /* the same through the additive-mask path */
    cx_tensor *am = cx_ones(CX_SHAPE(3, 5));
    o = cx_attn_defaults();
    o.attn_mask = am; /* F32: additive 1, nothing masked */
    cx_tensor *ya = cx_attention(cx_detach(q), k, v, &o, NULL);
    CHECK(isnan(CX_F(ya)[0]));
}

/* ------------------------------------------------------------ errors name the argument */
static void errors_name_the_argument(void) {
    cx_tensor *q = cx_ones(CX_SHAPE(2, 3, 4)), *k = cx_ones(CX_SHAPE(2, 5, 4)), *v = cx_ones(CX_SHAPE(2, 5, 6));
    cx_attn_opts o = cx_attn_defaults();
    EXPECT_FATAL(cx_attention(cx_ones(CX_SHAPE(4)), k, v, NULL, NULL), "attention", "q has shape [4]");
    EXPECT_FATAL(cx_attention(q, cx_ones(CX_SHAPE(2, 5, 3)), v, NULL, NULL), "attention", "k [2, 5, 3]",
                 "q [2, 3, 4]", "(d) differ, 3 vs 4");
    EXPECT_FATAL(cx_attention(q, k, cx_ones(CX_SHAPE(2, 6, 6)), NULL, NULL), "attention", "v [2, 6, 6]",
                 "Tk", "6 vs 5");
    EXPECT_FATAL(cx_attention(q, cx_ones(CX_SHAPE(3, 5, 4)), cx_ones(CX_SHAPE(3, 5, 6)), NULL, NULL), "attention",
                 "batch dimensions", "cannot be broadcast", "2 vs 3");
    EXPECT_FATAL(cx_attention(cx_empty(CX_I32, CX_SHAPE(2, 3, 4)), k, v, NULL, NULL), "attention", "q must be F32");
    o.key_padding_mask = cx_ones(CX_SHAPE(2, 4));
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "key_padding_mask has shape [2, 4]", "[2, 5]");
    o = cx_attn_defaults();
    o.attn_mask = cx_ones(CX_SHAPE(3, 4));
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "attn_mask has shape [3, 4]", "[3, 5]");
    o.attn_mask = cx_ones(CX_SHAPE(4, 3, 5));
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "attn_mask has shape [4, 3, 5]", "[2, 3, 5]");
    cx_tensor *q4 = cx_ones(CX_SHAPE(2, 3, 4, 5)), *k4 = cx_ones(CX_SHAPE(2, 3, 6, 5));
    o.attn_mask = cx_ones(CX_SHAPE(2, 3, 4, 5));
    EXPECT_FATAL(cx_attention(q4, k4, k4, &o, NULL), "attention", "attn_mask has shape [2, 3, 4, 5]",
                 "[Tq, Tk] = [4, 6]", "[N, Tq, Tk] = [6, 4, 6]", "or [2, 3, 4, 6]");
    cx_tensor *nanm = cx_zeros(CX_SHAPE(3, 5));
    CX_F(nanm)[7] = NAN;
    o.attn_mask = nanm;
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "attn_mask", "NaN at element 7");
    CX_F(nanm)[7] = INFINITY;
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "attn_mask", "+inf");
    o = cx_attn_defaults();
    o.scale = INFINITY;
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "scale must be finite");
    o.scale = 0;
    o.dropout = 1.5f;
    EXPECT_FATAL(cx_attention(q, k, v, &o, NULL), "attention", "dropout must be in [0, 1]");
    /* general / additive */
    EXPECT_FATAL(cx_general_attention(q, cx_ones(CX_SHAPE(3, 4)), k, v, NULL, NULL), "general_attention",
                 "w has shape [3, 4]", "dq = 4");
    cx_tensor *h = cx_ones(CX_SHAPE(2, 5, 4)), *s = cx_ones(CX_SHAPE(2, 3)), *w1 = cx_ones(CX_SHAPE(6, 4));
    cx_tensor *w2 = cx_ones(CX_SHAPE(6, 3)), *va = cx_ones(CX_SHAPE(6));
    EXPECT_FATAL(cx_additive_attention(cx_ones(CX_SHAPE(5, 4)), s, w1, w2, va, NULL, NULL), "additive_attention",
                 "h has shape [5, 4]");
    EXPECT_FATAL(cx_additive_attention(h, cx_ones(CX_SHAPE(3, 3)), w1, w2, va, NULL, NULL), "additive_attention",
                 "s has shape [3, 3]");
    EXPECT_FATAL(cx_additive_attention(h, s, cx_ones(CX_SHAPE(6, 5)), w2, va, NULL, NULL), "additive_attention",
                 "w1 has shape [6, 5]");
    EXPECT_FATAL(cx_additive_attention(h, s, w1, cx_ones(CX_SHAPE(5, 3)), va, NULL, NULL), "additive_attention",
                 "w2 has shape [5, 3]");
    EXPECT_FATAL(cx_additive_attention(h, s, w1, w2, cx_ones(CX_SHAPE(5)), NULL, NULL), "additive_attention",
                 "v has shape [5]");
    EXPECT_FATAL(cx_additive_attention(h, s, w1, w2, va, cx_ones(CX_SHAPE(2, 4)), NULL), "additive_attention",
                 "key_padding_mask has shape [2, 4]", "[2, 5]");
    cx_tensor *hp = cx_ones(CX_SHAPE(2, 5, 6));
    EXPECT_FATAL(cx_additive_attention_pre(cx_ones(CX_SHAPE(2, 4, 6)), h, s, w2, va, NULL, NULL),
                 "additive_attention_pre", "hp has shape [2, 4, 6]", "T = 5");
    EXPECT_FATAL(cx_additive_attention_pre(hp, h, s, cx_ones(CX_SHAPE(5, 3)), va, NULL, NULL),
                 "additive_attention_pre", "w2 has shape [5, 3]", "[6, 3]");
    EXPECT_FATAL(cx_additive_attention_pre(hp, cx_ones(CX_SHAPE(10, 4)), s, w2, va, NULL, NULL),
                 "additive_attention_pre", "h has shape [10, 4]");
    /* the precomputed form equals the plain one */
    {
        cx_tensor *hr = cx_randn(CX_SHAPE(2, 5, 4), 0, 1), *sr = cx_randn(CX_SHAPE(2, 3), 0, 1);
        cx_tensor *w1r = cx_randn(CX_SHAPE(6, 4), 0, 1), *w2r = cx_randn(CX_SHAPE(6, 3), 0, 1), *vr = cx_randn(CX_SHAPE(6), 0, 1);
        cx_tensor *wa = NULL, *wb = NULL;
        cx_tensor *ca = cx_additive_attention(hr, sr, w1r, w2r, vr, NULL, &wa);
        cx_tensor *cb = cx_additive_attention_pre(cx_linear(hr, w1r, NULL), hr, sr, w2r, vr, NULL, &wb);
        for (int i = 0; i < 8; i++) CHECK(CX_F(ca)[i] == CX_F(cb)[i]);
        for (int i = 0; i < 10; i++) CHECK(CX_F(wa)[i] == CX_F(wb)[i]);
    }
    /* the module */
    EXPECT_FATAL(cx_multihead_attention_new(10, 3, NULL), "MultiheadAttention", "embed_dim 10",
                 "not divisible by num_heads 3");
    EXPECT_FATAL(cx_multihead_attention_new(8, 0, NULL), "MultiheadAttention", "num_heads must be positive");
    EXPECT_FATAL(cx_multihead_attention_new(0, 2, NULL), "MultiheadAttention", "embed_dim must be positive");
    cx_mha_opts mo = cx_mha_defaults();
    mo.add_bias_kv = true;
    EXPECT_FATAL(cx_multihead_attention_new(8, 2, &mo), "MultiheadAttention", "add_bias_kv is not supported");
    mo = cx_mha_defaults();
    mo.add_zero_attn = true;
    EXPECT_FATAL(cx_multihead_attention_new(8, 2, &mo), "MultiheadAttention", "add_zero_attn is not supported");
    mo = cx_mha_defaults();
    mo.dropout = -0.1f;
    EXPECT_FATAL(cx_multihead_attention_new(8, 2, &mo), "MultiheadAttention", "dropout must be in [0, 1]");
    mo = cx_mha_defaults();
    mo.kdim = 5;
    cx_module *m = cx_multihead_attention_new(8, 2, &mo);
    cx_tensor *x = cx_ones(CX_SHAPE(4, 2, 8)), *kk = cx_ones(CX_SHAPE(6, 2, 5)), *vv = cx_ones(CX_SHAPE(6, 2, 8));
    EXPECT_FATAL(cx_mha_forward(m, cx_ones(CX_SHAPE(4, 2, 7)), kk, vv, NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "query has shape [4, 2, 7]", "E = 8");
    EXPECT_FATAL(cx_mha_forward(m, x, cx_ones(CX_SHAPE(6, 2, 8)), vv, NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "key has shape [6, 2, 8]", "kdim = 5");
    EXPECT_FATAL(cx_mha_forward(m, x, cx_ones(CX_SHAPE(6, 3, 5)), vv, NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "key has shape [6, 3, 5]", "B = 2");
    EXPECT_FATAL(cx_mha_forward(m, x, kk, cx_ones(CX_SHAPE(7, 2, 8)), NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "value has shape [7, 2, 8]", "Tk = 6");
    EXPECT_FATAL(cx_mha_forward(m, x, kk, vv, cx_ones(CX_SHAPE(2, 4)), NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "key_padding_mask has shape [2, 4]", "[2, 6]");
    EXPECT_FATAL(cx_mha_forward(m, x, kk, vv, NULL, cx_ones(CX_SHAPE(4, 5)), true, true, NULL, NULL),
                 "MultiheadAttention", "attn_mask has shape [4, 5]", "[Tq, Tk] = [4, 6]", "[B*num_heads, Tq, Tk] = [4, 4, 6]");
    EXPECT_FATAL(cx_mha_forward(m, x, kk, vv, NULL, cx_ones(CX_SHAPE(2, 2, 4, 6)), true, true, NULL, NULL),
                 "MultiheadAttention", "attn_mask has shape [2, 2, 4, 6]");
    EXPECT_FATAL(cx_mha_forward(m, cx_ones(CX_SHAPE(8)), NULL, NULL, NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "query has shape [8]");
    EXPECT_FATAL(cx_mha_forward(m, cx_ones(CX_SHAPE(4, 8)), kk, vv, NULL, NULL, true, true, NULL, NULL),
                 "MultiheadAttention", "key has shape [6, 2, 5]", "[Tk, kdim]");
    cx_module *lin = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_mha_forward(lin, x, NULL, NULL, NULL, NULL, true, true, NULL, NULL),
                 "expected a MultiheadAttention module", "Linear");
    cx_module_free(lin);
    cx_module_free(m);
}

int main(void) {
    RUN(pytorch_fixtures);
    RUN(names_shapes_init);
    RUN(module_call_and_threads);
    RUN(dropout_on_weights);
    RUN(dropout_gradcheck);
    RUN(one_node_two_outputs);
    RUN(fully_masked_rows);
    RUN(errors_name_the_argument);
    TEST_END();
}
