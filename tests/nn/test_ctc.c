/* CTC loss and decoding: PyTorch fixtures (tools/gen_ctc_fixtures.py ->
 * tests/fixtures/seq/ctc.safetensors, override with CX_CTC_FIXTURES), the
 * loss against a brute-force sum over every alignment, finite-difference
 * gradients on unnormalised inputs, best-path and beam decoding against the
 * exact most likely labelling, argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"ctc_pad_mean", "ctc_pad_sum",    "ctc_pad_none",     "ctc_cat_mean",
                                    "ctc_blank_last", "ctc_empty_target", "ctc_zero_inf", "ctc_long"};
#define NCASES ((int)(sizeof CASES / sizeof *CASES))

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }
static long fx_int(const char *c, const char *what) { return cxt_fx_int(FX, c, what); }
static void ints_of(const cx_tensor *t, int *out) {
    for (int64_t i = 0; i < t->numel; i++) out[i] = (int)CX_I64P(t)[i];
}

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the CTC fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_ctc_fixtures.py", cx_last_error());
}

static void fixture_cases_match_table(void) {
    const char *meta = cx_st_meta(FX, "cases");
    CHECK(meta != NULL);
    if (!meta) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", meta);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        bool known = false;
        for (int i = 0; i < NCASES; i++) known |= !strcmp(tok, CASES[i]);
        CHECK_MSG(known, "fixture case %s has no C test", tok);
        n++;
    }
    CHECK_MSG(n == NCASES, "fixture has %d cases, the C table %d", n, NCASES);
}

static void matches_torch(void) {
    for (int i = 0; i < NCASES; i++)
        for (int as_i32 = 0; as_i32 < 2; as_i32++) {
            const char *c = CASES[i];
            cx_tensor *x = fx(c, "x"), *tgt = fx(c, "tgt"), *il = fx(c, "il"), *tl = fx(c, "tl");
            cx_tensor *want = fx(c, "out"), *gout = fx(c, "gout"), *wg = fx(c, "grad");
            CHECK_MSG(x && tgt && il && tl && want && gout && wg, "case %s incomplete", c);
            if (!(x && tgt && il && tl && want && gout && wg)) continue;
            int ilen[16], tlen[16];
            ints_of(il, ilen);
            ints_of(tl, tlen);
            const cx_tensor *t = tgt;
            if (as_i32) {
                cx_tensor *t32 = cx_empty(CX_I32, tgt->shape, tgt->ndim);
                for (int64_t k = 0; k < tgt->numel; k++) CX_I32P(t32)[k] = (int32_t)CX_I64P(tgt)[k];
                t = t32;
            }
            cx_tensor *leaf = cx_from_data(CX_F(x), x->shape, x->ndim);
            leaf->requires_grad = true;
            cx_tensor *out = cx_ctc_loss(cx_log_softmax(leaf, 2), t, ilen, tlen, (int)fx_int(c, "blank"),
                                         (cx_reduction)fx_int(c, "red"), fx_int(c, "zinf") == 1);
            char what[128];
            CHECK_MSG(out->numel == want->numel, "%s: %lld values, PyTorch %lld", c, (long long)out->numel,
                      (long long)want->numel);
            if (out->numel != want->numel) continue;
            snprintf(what, sizeof what, "%s forward", c);
            cxt_allclose(CX_F(out), CX_F(want), (long)out->numel, 1e-4, 1e-5, what);
            cx_backward_with(out, CX_F(gout));
            CHECK_MSG(leaf->grad != NULL, "%s: no gradient", c);
            if (!leaf->grad) continue;
            snprintf(what, sizeof what, "%s gradient", c);
            cxt_allclose(leaf->grad, CX_F(wg), (long)leaf->numel, 1e-4, 1e-5, what);
            cx_step_reset();
        }
}

/* ------------------------------------------------------------ brute force */
/* Collapse a path: merge repeats, drop blanks. Returns the length. */
static int collapse(const int *path, int T, int blank, int *lab) {
    int n = 0, prev = -1;
    for (int t = 0; t < T; t++) {
        if (path[t] != blank && path[t] != prev) lab[n++] = path[t];
        prev = path[t];
    }
    return n;
}

/* p(labelling | lp) for every path of T steps over C classes: calls
 * visit(labels, len, log p(path), user) per path. */
static void all_paths(const float *lp, int T, int C, int blank,
                      void (*visit)(const int *, int, double, void *), void *user) {
    int path[8] = {0}, lab[8];
    for (;;) {
        double s = 0;
        for (int t = 0; t < T; t++) s += lp[t * C + path[t]];
        visit(lab, collapse(path, T, blank, lab), s, user);
        int t = T - 1;
        while (t >= 0 && path[t] == C - 1) path[t--] = 0;
        if (t < 0) break;
        path[t]++;
    }
}

typedef struct {
    const int *target;
    int len;
    double p;
} target_sum;

static void add_if_target(const int *lab, int len, double lps, void *user) {
    target_sum *u = user;
    if (len == u->len && !memcmp(lab, u->target, sizeof(int) * (size_t)len)) u->p += exp(lps);
}

static void log_softmax_rows(float *x, int rows, int C) {
    for (int r = 0; r < rows; r++) {
        double m = -INFINITY, s = 0;
        for (int k = 0; k < C; k++) m = fmax(m, x[r * C + k]);
        for (int k = 0; k < C; k++) s += exp(x[r * C + k] - m);
        for (int k = 0; k < C; k++) x[r * C + k] = (float)(x[r * C + k] - m - log(s));
    }
}

static void loss_equals_sum_over_alignments(void) {
    cx_seed(3);
    enum { T = 6, C = 3 };
    const int targets[][4] = {{1, 2}, {1, 1}, {2}, {1, 2, 1}, {2, 2, 2}, {0}};
    const int lens[] = {2, 2, 1, 3, 3, 0};
    for (int blank = 0; blank < 3; blank += 2)
        for (int k = 0; k < 6; k++) {
            cx_tensor *x = cx_randn(CX_SHAPE(T, 1, C), 0, 1.5f);
            log_softmax_rows(CX_F(x), T, C);
            int tg[4];
            for (int j = 0; j < lens[k]; j++) tg[j] = targets[k][j] == blank ? 1 : targets[k][j]; /* never the blank */
            target_sum u = {tg, lens[k], 0};
            all_paths(CX_F(x), T, C, blank, add_if_target, &u);
            cx_tensor *t = cx_from_i32(lens[k] ? tg : (int[]){1}, CX_SHAPE(1, lens[k] ? lens[k] : 1));
            int il = T, tl = lens[k];
            cx_tensor *l = cx_ctc_loss(x, t, &il, &tl, blank, CX_REDUCE_SUM, false);
            CHECK_MSG(fabs(cx_item(l) - (-log(u.p))) < 1e-4 * fmax(1.0, -log(u.p)),
                      "blank %d target %d: loss %g, brute force %g", blank, k, cx_item(l), -log(u.p));
            /* shorter input: only the first 4 steps count */
            u.p = 0;
            all_paths(CX_F(x), 4, C, blank, add_if_target, &u);
            il = 4;
            l = cx_ctc_loss(x, t, &il, &tl, blank, CX_REDUCE_SUM, false);
            if (u.p > 0)
                CHECK_MSG(fabs(cx_item(l) - (-log(u.p))) < 1e-4 * fmax(1.0, -log(u.p)),
                          "blank %d target %d, 4 steps: loss %g, brute force %g", blank, k, cx_item(l), -log(u.p));
            else
                CHECK_MSG(isinf(cx_item(l)), "target %d cannot be aligned in 4 steps: loss %g", k, cx_item(l));
        }
}

/* ------------------------------------------------------------ gradcheck */
typedef struct {
    const cx_tensor *tgt;
    const int *il, *tl;
    int blank;
    cx_reduction r;
    cx_tensor *R;
} ctc_ctx;

static cx_tensor *ctc_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    ctc_ctx *c = user;
    cx_tensor *l = cx_ctc_loss(in[0], c->tgt, c->il, c->tl, c->blank, c->r, false);
    return c->R ? cx_sum(cx_mul(l, c->R)) : l;
}

static void gradcheck_log_probs(void) {
    cx_seed(5);
    /* unnormalised inputs: the true gradient of the loss in its own input */
    int32_t t[] = {1, 1, 3, 2, 0, 0, 3, 3, 3};
    cx_tensor *tgt = cx_from_i32(t, CX_SHAPE(3, 3));
    int il[] = {9, 7, 9}, tl[] = {3, 1, 3};
    for (int r = 0; r < 3; r++) {
        cx_tensor *x = cx_randn(CX_SHAPE(9, 3, 4), -1.0f, 0.7f);
        x->requires_grad = true;
        ctc_ctx c = {tgt, il, tl, 0, (cx_reduction)r, r == CX_REDUCE_NONE ? cx_randn(CX_SHAPE(3), 0, 1) : NULL};
        double worst = cx_gradcheck(ctc_fn, &x, 1, &c, 1e-2f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "reduction %d: worst %g", r, worst);
        /* steps past an input length get no gradient */
        cx_zero_grad(x);
        cx_backward(ctc_fn(&x, 1, &c));
        for (int k = 0; k < 4; k++) CHECK(x->grad[(8 * 3 + 1) * 4 + k] == 0.0f);
    }
}

/* log-softmax'd inputs: the occupations at every step sum to one, so the
 * gradient of the sum-reduced loss sums to -1 per step and sequence */
static void gradient_is_minus_occupation(void) {
    cx_seed(6);
    cx_tensor *x = cx_randn(CX_SHAPE(10, 2, 5), 0, 1);
    log_softmax_rows(CX_F(x), 20, 5);
    x->requires_grad = true;
    int il[] = {10, 8}, tl[] = {4, 1};
    int32_t cat[] = {1, 2, 2, 4, 3}; /* 1-D: 1 2 2 4, then 3 */
    cx_backward(cx_ctc_loss(x, cx_from_i32(cat, CX_SHAPE(5)), il, tl, 0, CX_REDUCE_SUM, false));
    for (int n = 0; n < 2; n++)
        for (int s = 0; s < 10; s++) {
            double sum = 0;
            for (int k = 0; k < 5; k++) {
                float g = x->grad[(s * 2 + n) * 5 + k];
                CHECK(g <= 1e-7f);
                sum += g;
            }
            CHECK_NEAR(sum, s < il[n] ? -1.0 : 0.0, 1e-5);
        }
}

/* ------------------------------------------------------------ decoding */
static void greedy_merges_repeats_and_drops_blanks(void) {
    /* argmax per step: b 1 1 b 2 2 1 b 1 -> 1 2 1 1 */
    const int path[] = {0, 1, 1, 0, 2, 2, 1, 0, 1};
    cx_tensor *lp = cx_full(CX_SHAPE(9, 2, 3), -5.0f);
    for (int t = 0; t < 9; t++) {
        CX_F(lp)[(t * 2 + 0) * 3 + path[t]] = -0.1f;
        CX_F(lp)[(t * 2 + 1) * 3 + 2] = -0.1f; /* sequence 1: all 2s -> "2" */
    }
    int32_t out[18];
    int len[2], il[] = {9, 5};
    cx_ctc_greedy_decode(lp, il, 0, out, len);
    CHECK(len[0] == 4 && out[0] == 1 && out[1] == 2 && out[2] == 1 && out[3] == 1);
    CHECK(len[1] == 1 && out[9] == 2);
    cx_ctc_beam_decode(lp, il, 0, 8, out, len, NULL);
    CHECK(len[0] == 4 && out[0] == 1 && out[1] == 2 && out[2] == 1 && out[3] == 1);
}

typedef struct {
    int lab[64][8], len[64], n;
    double p[64];
} labelling_table;

static void tally(const int *lab, int len, double lps, void *user) {
    labelling_table *u = user;
    int i = 0;
    for (; i < u->n; i++)
        if (u->len[i] == len && !memcmp(u->lab[i], lab, sizeof(int) * (size_t)len)) break;
    if (i == u->n) {
        if (u->n == 64) return;
        memcpy(u->lab[i], lab, sizeof(int) * (size_t)len);
        u->len[i] = len;
        u->p[i] = 0;
        u->n++;
    }
    u->p[i] += exp(lps);
}

static void beam_finds_most_likely_labelling(void) {
    cx_seed(8);
    enum { T = 5, C = 3 };
    int greedy_wrong = 0;
    for (int trial = 0; trial < 200; trial++) {
        cx_tensor *lp = cx_randn(CX_SHAPE(T, 1, C), 0, 1.2f);
        log_softmax_rows(CX_F(lp), T, C);
        labelling_table *u = calloc(1, sizeof *u);
        all_paths(CX_F(lp), T, C, 0, tally, u);
        int best = 0;
        for (int i = 1; i < u->n; i++)
            if (u->p[i] > u->p[best]) best = i;
        int32_t out[T];
        int len;
        float score;
        cx_ctc_beam_decode(lp, NULL, 0, 64, out, &len, &score);
        bool same = len == u->len[best];
        for (int k = 0; same && k < len; k++) same = out[k] == u->lab[best][k];
        CHECK_MSG(same, "trial %d: beam found a labelling of length %d, exact best has length %d", trial, len,
                  u->len[best]);
        CHECK_NEAR(score, log(u->p[best]), 1e-4);
        /* and the beam's score is the CTC probability of what it returns */
        if (len > 0) {
            int il = T;
            cx_tensor *l = cx_ctc_loss(lp, cx_from_i32(out, CX_SHAPE(1, len)), &il, &len, 0, CX_REDUCE_SUM, false);
            CHECK_NEAR(-cx_item(l), score, 1e-4);
        }
        cx_ctc_greedy_decode(lp, NULL, 0, out, &len);
        same = len == u->len[best];
        for (int k = 0; same && k < len; k++) same = out[k] == u->lab[best][k];
        greedy_wrong += !same;
        free(u);
        cx_step_reset();
    }
    /* best path is not the best labelling for some inputs: why the beam exists */
    CHECK_MSG(greedy_wrong > 0, "greedy decoding was exact on all 200 inputs");
}

/* ------------------------------------------------------------ errors */
static void argument_errors(void) {
    cx_tensor *lp = cx_zeros(CX_SHAPE(4, 2, 3));
    int il[] = {4, 4}, tl[] = {2, 1}, bad_il[] = {5, 4};
    int32_t t[] = {1, 2, 1, 0};
    cx_tensor *tg = cx_from_i32(t, CX_SHAPE(2, 2));
    EXPECT_FATAL(cx_ctc_loss(lp, tg, bad_il, tl, 0, CX_REDUCE_MEAN, false), "input_lengths[0] = 5");
    EXPECT_FATAL(cx_ctc_loss(lp, tg, il, tl, 3, CX_REDUCE_MEAN, false), "blank 3");
    int32_t tb[] = {1, 0, 2, 2};
    EXPECT_FATAL(cx_ctc_loss(lp, cx_from_i32(tb, CX_SHAPE(2, 2)), il, tl, 0, CX_REDUCE_MEAN, false),
                 "sequence 0", "the blank");
    int32_t tc[] = {1, 7, 2, 2};
    EXPECT_FATAL(cx_ctc_loss(lp, cx_from_i32(tc, CX_SHAPE(2, 2)), il, tl, 0, CX_REDUCE_MEAN, false),
                 "label 7", "not a class index");
    int tl3[] = {3, 1};
    EXPECT_FATAL(cx_ctc_loss(lp, tg, il, tl3, 0, CX_REDUCE_MEAN, false), "padded targets", "[2, >= 3]");
    EXPECT_FATAL(cx_ctc_loss(cx_zeros(CX_SHAPE(4, 3)), tg, il, tl, 0, CX_REDUCE_MEAN, false), "[T, N, C]");
    EXPECT_FATAL(cx_ctc_loss(lp, cx_zeros(CX_SHAPE(2, 2)), il, tl, 0, CX_REDUCE_MEAN, false), "I32 or I64");
    int32_t out[8];
    int len[2];
    EXPECT_FATAL(cx_ctc_beam_decode(lp, il, 0, 0, out, len, NULL), "beam width 0");
    EXPECT_FATAL(cx_ctc_greedy_decode(lp, bad_il, 0, out, len), "input_lengths[0] = 5");
}

int main(void) {
    const char *path = getenv("CX_CTC_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/seq/ctc.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) {
        RUN(fixture_cases_match_table);
        RUN(matches_torch);
    }
    RUN(loss_equals_sum_over_alignments);
    RUN(gradcheck_log_probs);
    RUN(gradient_is_minus_occupation);
    RUN(greedy_merges_repeats_and_drops_blanks);
    RUN(beam_finds_most_likely_labelling);
    RUN(argument_errors);
    cx_st_free(FX);
    TEST_END();
}
