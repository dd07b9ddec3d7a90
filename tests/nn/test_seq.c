/* Embedding and sequence cross-entropy: PyTorch fixtures (tools/gen_seq_fixtures.py
 * -> tests/fixtures/seq/seq.safetensors, override with CX_SEQ_FIXTURES),
 * finite-difference gradient checks, the Embedding module and argument errors. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define RTOL 1e-4
#define ATOL 1e-5
#define GC_EPS 1e-2f
#define GC_ATOL 2e-3f
#define GC_RTOL 1e-2f

static cx_st_file *FX;

/* Every case the C side knows; the fixture's "cases" metadata must list exactly these. */
static const char *const EMB_CASES[] = {"emb_rep", "emb_pad", "emb_1d_pad0", "emb_3d"};
static const char *const SCE_CASES[] = {"sce_tm_len_mean", "sce_tm_len_sum", "sce_tm_len_none",
                                        "sce_bm_len_mean", "sce_bm_len_none", "sce_tm_len0_sum",
                                        "sce_tm_mask_mean", "sce_bm_mask_sum"};
#define N_EMB ((int)(sizeof EMB_CASES / sizeof *EMB_CASES))
#define N_SCE ((int)(sizeof SCE_CASES / sizeof *SCE_CASES))

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static long fx_int(const char *c, const char *what) { return cxt_fx_int(FX, c, what); }

static bool same_shape_as(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static cx_tensor *leaf_copy(const cx_tensor *src) {
    cx_tensor *t = cx_from_data(CX_F(src), src->shape, src->ndim);
    t->requires_grad = true;
    return t;
}

/* Arena I32 copy of an I64 tensor. */
static cx_tensor *to_i32(const cx_tensor *src) {
    cx_tensor *t = cx_empty(CX_I32, src->shape, src->ndim);
    for (int64_t i = 0; i < src->numel; i++) CX_I32P(t)[i] = (int32_t)CX_I64P(src)[i];
    return t;
}

/* Compare out with C.out and, after backward with C.gout, leaf->grad with C.grad. */
static void compare_case(const char *c, cx_tensor *out, cx_tensor *leaf) {
    cx_tensor *want = fx(c, "out"), *gout = fx(c, "gout"), *wg = fx(c, "grad");
    char s1[96], s2[96], what[128];
    CHECK_MSG(want && gout && wg, "case %s: fixture incomplete", c);
    if (!(want && gout && wg)) return;
    CHECK_MSG(same_shape_as(out, want), "case %s: shape %s, PyTorch %s", c,
              cx_shape_str(out, s1, sizeof s1), cx_shape_str(want, s2, sizeof s2));
    if (out->numel != want->numel) return;
    snprintf(what, sizeof what, "%s forward", c);
    cxt_allclose(CX_F(out), CX_F(want), (long)out->numel, RTOL, ATOL, what);
    CHECK_MSG(out->requires_grad, "case %s: result does not require grad", c);
    if (!out->requires_grad) return;
    cx_backward_with(out, CX_F(gout));
    CHECK_MSG(leaf->grad != NULL, "case %s: no gradient", c);
    if (!leaf->grad) return;
    snprintf(what, sizeof what, "%s gradient", c);
    cxt_allclose(leaf->grad, CX_F(wg), (long)leaf->numel, RTOL, ATOL, what);
}

/* ------------------------------------------------------------ fixtures */
static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the seq fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_seq_fixtures.py", cx_last_error());
}

static void fixture_cases_match_table(void) {
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta != NULL);
    if (!meta) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", meta);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        bool known = false;
        for (int i = 0; i < N_EMB; i++) known |= !strcmp(tok, EMB_CASES[i]);
        for (int i = 0; i < N_SCE; i++) known |= !strcmp(tok, SCE_CASES[i]);
        CHECK_MSG(known, "fixture case %s has no C test", tok);
        n++;
    }
    CHECK_MSG(n == N_EMB + N_SCE, "fixture has %d cases, the C table %d", n, N_EMB + N_SCE);
}

static void embedding_matches_torch(void) {
    for (int i = 0; i < N_EMB; i++) {
        const char *c = EMB_CASES[i];
        cx_tensor *w = fx(c, "w"), *idx = fx(c, "idx");
        CHECK_MSG(w && idx, "case %s missing", c);
        if (!w || !idx) continue;
        int pad = (int)fx_int(c, "pad");
        /* I64 indices */
        cx_tensor *leaf = leaf_copy(w);
        compare_case(c, cx_embedding(leaf, idx, pad), leaf);
        /* the same with I32 indices */
        cx_tensor *leaf2 = leaf_copy(w);
        compare_case(c, cx_embedding(leaf2, to_i32(idx), pad), leaf2);
        cx_step_reset();
    }
}

static cx_tensor *run_sce(const char *c, cx_tensor *logits) {
    cx_tensor *tgt = fx(c, "tgt"), *len = fx(c, "lengths"), *mask = fx(c, "mask");
    bool bf = fx_int(c, "bf") == 1;
    cx_reduction r = (cx_reduction)fx_int(c, "red");
    if (len) {
        int lengths[16];
        for (int b = 0; b < len->numel && b < 16; b++) lengths[b] = (int)CX_I64P(len)[b];
        return cx_seq_cross_entropy(logits, tgt, lengths, bf, r);
    }
    return cx_seq_cross_entropy_masked(logits, tgt, mask, bf, r);
}

static void seq_ce_matches_torch(void) {
    for (int i = 0; i < N_SCE; i++) {
        const char *c = SCE_CASES[i];
        cx_tensor *lg = fx(c, "logits"), *tgt = fx(c, "tgt");
        CHECK_MSG(lg && tgt && (fx(c, "lengths") || fx(c, "mask")), "case %s missing", c);
        if (!lg || !tgt) continue;
        cx_tensor *leaf = leaf_copy(lg);
        compare_case(c, run_sce(c, leaf), leaf);
        cx_step_reset();
    }
}

/* ------------------------------------------------------------ gradcheck */
typedef struct {
    const cx_tensor *idx;
    int pad;
    cx_tensor *R;
} emb_ctx;

static cx_tensor *emb_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    emb_ctx *c = user;
    return cx_sum(cx_mul(cx_embedding(in[0], c->idx, c->pad), c->R));
}

static void embedding_gradcheck(void) {
    cx_seed(7);
    int32_t idx[] = {1, 4, 4, 0, 2, 4, 1, 3, 3};
    cx_tensor *it = cx_from_i32(idx, CX_SHAPE(3, 3));
    for (int pad = -1; pad <= 4; pad += 5) { /* none, then padding row 4 (repeated) */
        cx_tensor *w = cx_randn(CX_SHAPE(5, 3), 0, 1);
        w->requires_grad = true;
        /* The padding row does change the output but gets no gradient (PyTorch
         * semantics), so the finite-difference check weights its positions by 0. */
        emb_ctx c = {it, pad, cx_randn(CX_SHAPE(3, 3, 3), 0, 1)};
        for (int j = 0; j < 9; j++)
            if (idx[j] == pad) memset(CX_F(c.R) + j * 3, 0, 3 * sizeof(float));
        double worst = cx_gradcheck(emb_fn, &w, 1, &c, GC_EPS, GC_ATOL, GC_RTOL, true);
        CHECK_MSG(worst <= 1.0, "embedding pad %d: worst %g", pad, worst);
        /* analytic, with every position weighted: row r gets the sum of R over
         * the positions holding r; the padding row gets exactly 0 */
        c.R = cx_randn(CX_SHAPE(3, 3, 3), 0, 1);
        cx_zero_grad(w);
        cx_backward(emb_fn(&w, 1, &c));
        for (int r = 0; r < 5; r++)
            for (int e = 0; e < 3; e++) {
                double want = 0;
                if (r != pad)
                    for (int j = 0; j < 9; j++)
                        if (idx[j] == r) want += CX_F(c.R)[j * 3 + e];
                CHECK_NEAR(w->grad[r * 3 + e], want, 1e-5);
            }
    }
}

typedef struct {
    const cx_tensor *tgt, *mask;
    const int *lengths;
    bool bf;
    cx_reduction r;
    cx_tensor *R; /* weights for reduction none */
} sce_ctx;

static cx_tensor *sce_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    sce_ctx *c = user;
    cx_tensor *l = c->mask ? cx_seq_cross_entropy_masked(in[0], c->tgt, c->mask, c->bf, c->r)
                           : cx_seq_cross_entropy(in[0], c->tgt, c->lengths, c->bf, c->r);
    return c->R ? cx_sum(cx_mul(l, c->R)) : l;
}

static void seq_ce_gradcheck(void) {
    cx_seed(11);
    const int T = 4, B = 3, V = 5;
    int lengths[] = {4, 1, 2};
    int32_t tg[12];
    for (int i = 0; i < 12; i++) tg[i] = (int32_t)cx_rand_below((uint32_t)V);
    float mk[12] = {1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0};
    for (int bf = 0; bf <= 1; bf++)
        for (int r = 0; r <= 2; r++)
            for (int use_mask = 0; use_mask <= 1; use_mask++) {
                cx_tensor *tgt = bf ? cx_from_i32(tg, CX_SHAPE(B, T)) : cx_from_i32(tg, CX_SHAPE(T, B));
                cx_tensor *mask = use_mask ? cx_from_data(mk, tgt->shape, 2) : NULL;
                cx_tensor *x = bf ? cx_randn(CX_SHAPE(B, T, V), 0, 1.5f) : cx_randn(CX_SHAPE(T, B, V), 0, 1.5f);
                x->requires_grad = true;
                sce_ctx c = {tgt, mask, lengths, bf == 1, (cx_reduction)r,
                             r == CX_REDUCE_NONE ? cx_randn(tgt->shape, 2, 0, 1) : NULL};
                double worst = cx_gradcheck(sce_fn, &x, 1, &c, GC_EPS, GC_ATOL, GC_RTOL, true);
                CHECK_MSG(worst <= 1.0, "seq CE bf %d red %d mask %d: worst %g", bf, r, use_mask, worst);
                /* padded logits get exactly zero gradient */
                cx_zero_grad(x);
                cx_backward(sce_fn(&x, 1, &c));
                for (int t = 0; t < T; t++)
                    for (int b = 0; b < B; b++) {
                        int64_t pos = bf ? (int64_t)b * T + t : (int64_t)t * B + b;
                        bool real = use_mask ? mk[pos] != 0 : t < lengths[b];
                        if (real) continue;
                        for (int v = 0; v < V; v++) CHECK(x->grad[pos * V + v] == 0.0f);
                    }
            }
}

/* ------------------------------------------------------------ semantics */
static void seq_ce_ignores_padding_values(void) {
    /* garbage (out-of-range, huge logits) at padded positions changes nothing */
    const int T = 3, B = 2, V = 4;
    int lengths[] = {3, 1};
    cx_tensor *x = cx_randn(CX_SHAPE(T, B, V), 0, 1);
    int32_t tg[] = {0, 1, 2, 999, 3, -7};
    cx_tensor *tgt = cx_from_i32(tg, CX_SHAPE(T, B));
    float a = cx_item(cx_seq_cross_entropy(x, tgt, lengths, false, CX_REDUCE_MEAN));
    for (int t = 1; t < T; t++)
        for (int v = 0; v < V; v++) CX_F(x)[(t * B + 1) * V + v] = 1e4f * (float)(v + 1);
    float b = cx_item(cx_seq_cross_entropy(x, tgt, lengths, false, CX_REDUCE_MEAN));
    CHECK(a == b);
    /* mean over the 4 real tokens = sum / 4 */
    float s = cx_item(cx_seq_cross_entropy(x, tgt, lengths, false, CX_REDUCE_SUM));
    CHECK_NEAR(a, s / 4, 1e-6);
    /* none: zero at padding */
    cx_tensor *none = cx_seq_cross_entropy(x, tgt, lengths, false, CX_REDUCE_NONE);
    CHECK(none->ndim == 2 && none->shape[0] == T && none->shape[1] == B);
    CHECK(CX_F(none)[1 * B + 1] == 0.0f && CX_F(none)[2 * B + 1] == 0.0f);
    CHECK(CX_F(none)[0] > 0);
    /* no lengths and no mask: every token is real; equals cx_cross_entropy on the flat view */
    int32_t tg2[] = {0, 1, 2, 3, 3, 0};
    cx_tensor *t2 = cx_from_i32(tg2, CX_SHAPE(T, B));
    float all = cx_item(cx_seq_cross_entropy(x, t2, NULL, false, CX_REDUCE_MEAN));
    float flat = cx_item(cx_cross_entropy(cx_reshape(x, CX_SHAPE(T * B, V)),
                                          cx_from_i32(tg2, CX_SHAPE(T * B)), CX_REDUCE_MEAN));
    CHECK_NEAR(all, flat, 1e-6);
    CHECK_NEAR(cx_item(cx_seq_cross_entropy_masked(x, t2, NULL, false, CX_REDUCE_MEAN)), flat, 1e-6);
    /* every sequence empty: mean is NaN (as PyTorch), sum 0 */
    int zero[] = {0, 0};
    CHECK(isnan(cx_item(cx_seq_cross_entropy(x, tgt, zero, false, CX_REDUCE_MEAN))));
    CHECK(cx_item(cx_seq_cross_entropy(x, tgt, zero, false, CX_REDUCE_SUM)) == 0.0f);
}

static void bits_per_char_helpers(void) {
    CHECK_NEAR(cx_bits_per_char(log(2.0)), 1.0, 1e-12);
    CHECK_NEAR(cx_perplexity(log(7.0)), 7.0, 1e-9);
    /* uniform logits over V = 8: CE = ln 8 nats = 3 bits */
    cx_tensor *x = cx_zeros(CX_SHAPE(2, 3, 8));
    int32_t tg[] = {0, 1, 2, 3, 4, 5};
    float ce = cx_item(cx_seq_cross_entropy(x, cx_from_i32(tg, CX_SHAPE(2, 3)), NULL, false, CX_REDUCE_MEAN));
    CHECK_NEAR(cx_bits_per_char(ce), 3.0, 1e-6);
}

static void seq_ce_errors(void) {
    cx_tensor *x = cx_zeros(CX_SHAPE(3, 2, 4));
    int32_t tg[] = {0, 1, 2, 3, 4, 0};
    cx_tensor *tgt = cx_from_i32(tg, CX_SHAPE(3, 2));
    int ok_len[] = {3, 2}, bad_len[] = {4, 1};
    EXPECT_FATAL(cx_seq_cross_entropy(x, tgt, ok_len, false, CX_REDUCE_MEAN), "target 4", "time 2",
                 "sequence 0");
    EXPECT_FATAL(cx_seq_cross_entropy(x, tgt, bad_len, false, CX_REDUCE_MEAN), "lengths[0] = 4");
    cx_tensor *t3 = cx_from_i32(tg, CX_SHAPE(2, 3));
    EXPECT_FATAL(cx_seq_cross_entropy(x, t3, NULL, false, CX_REDUCE_MEAN), "do not match", "[T, B, V]");
    EXPECT_FATAL(cx_seq_cross_entropy(x, cx_zeros(CX_SHAPE(3, 2)), NULL, false, CX_REDUCE_MEAN), "I32 or I64");
    EXPECT_FATAL(cx_seq_cross_entropy_masked(x, tgt, cx_zeros(CX_SHAPE(2, 3)), false, CX_REDUCE_MEAN),
                 "mask");
    /* batch-first shape check */
    EXPECT_FATAL(cx_seq_cross_entropy(x, t3, NULL, true, CX_REDUCE_MEAN), "[B, T, V]");
}

static void embedding_errors(void) {
    cx_tensor *w = cx_zeros(CX_SHAPE(4, 2));
    int32_t bad[] = {0, 4};
    EXPECT_FATAL(cx_embedding(w, cx_from_i32(bad, CX_SHAPE(2)), -1), "index 4", "out of range");
    int32_t neg[] = {-1};
    EXPECT_FATAL(cx_embedding(w, cx_from_i32(neg, CX_SHAPE(1)), -1), "index -1");
    EXPECT_FATAL(cx_embedding(w, cx_zeros(CX_SHAPE(2)), -1), "I32 or I64");
    EXPECT_FATAL(cx_embedding(w, cx_from_i32(bad, CX_SHAPE(1)), 4), "padding_idx 4");
    EXPECT_FATAL(cx_embedding(cx_zeros(CX_SHAPE(4)), cx_from_i32(bad, CX_SHAPE(1)), -1), "2-D");
    EXPECT_FATAL(cx_embedding_new(0, 3, -1), "positive");
    EXPECT_FATAL(cx_embedding_new(3, 3, 3), "padding_idx 3");
    cx_module *lin = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_embedding_weight(lin), "Embedding");
    cx_module_free(lin);
}

static void embedding_module(void) {
    cx_seed(3);
    cx_module *m = cx_embedding_new(200, 50, 7);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(ps.n == 1 && !strcmp(ps.t[0]->name, "weight"));
    cx_tensor *w = cx_embedding_weight(m);
    CHECK(w == ps.t[0] && w->ndim == 2 && w->shape[0] == 200 && w->shape[1] == 50);
    CHECK(w->requires_grad && w->persistent);
    CHECK(cx_embedding_padding_idx(m) == 7);
    double s = 0, s2 = 0;
    int n = 0;
    for (int r = 0; r < 200; r++)
        for (int e = 0; e < 50; e++) {
            float v = CX_F(w)[r * 50 + e];
            if (r == 7) {
                CHECK(v == 0.0f);
                continue;
            }
            s += v;
            s2 += (double)v * v;
            n++;
        }
    double mean = s / n, sd = sqrt(s2 / n - mean * mean);
    CHECK_NEAR(mean, 0.0, 0.05); /* N(0,1): sd of the mean of 9950 draws ~ 0.01 */
    CHECK_NEAR(sd, 1.0, 0.05);
    char buf[96];
    cx_module_describe(m, buf, sizeof buf);
    CHECK(!strcmp(buf, "Embedding(200, 50, padding_idx=7)"));
    /* forward through the module; padding row gets no gradient, others accumulate */
    int32_t idx[] = {7, 3, 3, 7, 0};
    cx_tensor *y = cx_module_forward(m, cx_from_i32(idx, CX_SHAPE(5)));
    CHECK(y->ndim == 2 && y->shape[0] == 5 && y->shape[1] == 50);
    CHECK(!memcmp(CX_F(y) + 50, CX_F(w) + 3 * 50, 50 * sizeof(float)));
    CHECK(!strcmp(cx_op_name(y), "embedding"));
    cx_backward(cx_sum(y));
    CHECK(w->grad[7 * 50] == 0.0f && w->grad[3 * 50 + 9] == 2.0f && w->grad[0] == 1.0f && w->grad[50] == 0.0f);
    cx_params_free(&ps);
    /* inside a Sequential the parameter is renamed */
    cx_module *seq = cx_sequential_new();
    cx_sequential_add(seq, "emb", m);
    cx_params_init(&ps);
    cx_module_params(seq, &ps);
    CHECK(ps.n == 1 && !strcmp(ps.t[0]->name, "emb.weight"));
    cx_params_free(&ps);
    cx_module_free(seq);
    /* no padding: every row random */
    cx_module *m2 = cx_embedding_new(3, 2, -5);
    CHECK(cx_embedding_padding_idx(m2) == -1);
    cx_module_describe(m2, buf, sizeof buf);
    CHECK(!strcmp(buf, "Embedding(3, 2)"));
    cx_module_free(m2);
}

static void embedding_shapes(void) {
    cx_tensor *w = cx_randn(CX_SHAPE(3, 2), 0, 1);
    int64_t one = 2;
    cx_tensor *s = cx_empty(CX_I64, NULL, 0);
    CX_I64P(s)[0] = one;
    cx_tensor *y = cx_embedding(w, s, -1); /* 0-d index -> [1, E] */
    CHECK(y->ndim == 2 && y->shape[0] == 1 && y->shape[1] == 2);
    CHECK(CX_F(y)[0] == CX_F(w)[4] && CX_F(y)[1] == CX_F(w)[5]);
    cx_tensor *e = cx_embedding(w, cx_empty(CX_I32, CX_SHAPE(0)), -1);
    CHECK(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 2 && e->numel == 0);
    /* no grad recorded when the weight does not require grad */
    CHECK(!cx_embedding(w, s, -1)->requires_grad);
}

/* ------------------------------------------------------------ end to end */
/* A character bigram model on the shipped corpus: an Embedding [V, V] whose
 * row is the logits of the next character, trained with the truncated-BPTT
 * batcher, cx_seq_cross_entropy and Adam; then decoded through the step
 * callback with greedy search, sampling and beam search. */
static double eval_bpc(cx_module *emb, const cx_tensor *ids) {
    cx_bptt_loader *ld = cx_bptt_new(ids, 8, 64, false);
    cx_tensor *x, *y;
    double nats = 0;
    int64_t count = 0;
    cx_no_grad_begin();
    while (cx_bptt_next(ld, &x, &y)) {
        nats += cx_item(cx_seq_cross_entropy(cx_module_forward(emb, x), y, NULL, false, CX_REDUCE_SUM));
        count += y->numel;
        cx_step_reset();
    }
    cx_no_grad_end();
    cx_bptt_free(ld);
    return cx_bits_per_char(nats / (double)count);
}

static cx_status bigram_step(void *user, const int *prefix, int n, const void *sin, void *sout, float *logp) {
    (void)sin;
    (void)sout;
    const cx_tensor *w = user;
    int V = w->shape[0];
    memcpy(logp, CX_F(w) + (int64_t)prefix[n - 1] * V, (size_t)V * sizeof(float));
    return CX_OK;
}

static void bigram_char_lm_end_to_end(void) {
    cx_vocab *voc = NULL;
    cx_tensor *ids = NULL;
    CHECK_MSG(cx_text_load("data/text/kjv_genesis_ruth_jonah.txt", 1, &voc, &ids) == CX_OK, "%s",
              cx_last_error());
    if (!ids) return;
    cx_tensor *train, *val;
    cx_text_split(ids, 0.1, &train, &val);
    cx_seed(5);
    int V = voc->size;
    cx_module *emb = cx_embedding_new(V, V, -1);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(emb, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.1;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    double before = eval_bpc(emb, val);
    cx_bptt_loader *ld = cx_bptt_new(train, 16, 32, true);
    cx_tensor *x, *y;
    for (int step = 0; step < 150; step++) {
        if (!cx_bptt_next(ld, &x, &y)) {
            cx_bptt_reset(ld);
            cx_bptt_next(ld, &x, &y);
        }
        cx_optim_zero_grad(opt);
        cx_tensor *loss = cx_seq_cross_entropy(cx_module_forward(emb, x), y, NULL, false, CX_REDUCE_MEAN);
        cx_backward(loss);
        cx_optim_step(opt);
        cx_step_reset();
    }
    double after = eval_bpc(emb, val);
    CHECK_MSG(before > 6.0 && after < 3.7, "validation bpc %.3f -> %.3f", before, after);
    /* decode from "A" (no stop symbol; the newline would do for lines) */
    cx_tensor *w = cx_embedding_weight(emb);
    cx_decoder d = {V, 0, bigram_step, NULL, w};
    int start = cx_vocab_id(voc, 'A'), out[24], n;
    double lp;
    CHECK(cx_decode_greedy(&d, NULL, start, -1, 24, out, &n, &lp) == CX_OK && n == 24);
    CHECK(out[0] == cx_vocab_id(voc, 'n')); /* "And ..." */
    CHECK(cx_decode_sample(&d, NULL, start, cx_vocab_id(voc, '\n'), 24, 0.8f, 10, out, &n, &lp) == CX_OK);
    CHECK(n >= 1 && n <= 24 && lp < 0);
    cx_beam_opts bo = {4, 12, cx_vocab_id(voc, ' '), CX_LENNORM_GNMT, 0.6};
    double sc;
    CHECK(cx_beam_search(&d, NULL, start, &bo, out, &n, &sc, &lp) == CX_OK);
    CHECK(n >= 1 && n <= 12 && sc <= 0 && lp <= 0);
    char word[64];
    cx_vocab_decode(voc, out, n, word, sizeof word);
    CHECK(strlen(word) == (size_t)n);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(emb);
    cx_tensor_free(train);
    cx_tensor_free(val);
    cx_tensor_free(ids);
    cx_vocab_free(voc);
}

int main(void) {
    const char *path = getenv("CX_SEQ_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/seq/seq.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) {
        RUN(fixture_cases_match_table);
        RUN(embedding_matches_torch);
        RUN(seq_ce_matches_torch);
    }
    RUN(embedding_gradcheck);
    RUN(seq_ce_gradcheck);
    RUN(seq_ce_ignores_padding_values);
    RUN(bits_per_char_helpers);
    RUN(seq_ce_errors);
    RUN(embedding_errors);
    RUN(embedding_module);
    RUN(embedding_shapes);
    RUN(bigram_char_lm_end_to_end);
    cx_st_free(FX);
    TEST_END();
}
