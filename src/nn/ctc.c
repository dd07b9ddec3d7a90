/* Connectionist temporal classification (Graves et al. 2006): the loss by
 * the forward-backward algorithm in log space, and best-path and prefix
 * beam-search decoding.
 *
 * For a target l of length L the extended label sequence l' = (blank, l1,
 * blank, l2, ..., lL, blank) has S = 2L + 1 states. With lp = log y (the
 * log-probabilities [T, N, C]):
 *   alpha_0(0) = lp_0(blank), alpha_0(1) = lp_0(l1),
 *   alpha_t(s) = lp_t(l'_s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1),
 *                                 alpha_{t-1}(s-2) if l'_s != blank and l'_s != l'_{s-2}),
 *   -log p(l|x) = -lse(alpha_{T-1}(S-1), alpha_{T-1}(S-2));
 * beta mirrors it from the end (both include the emission at t), and
 *   d(-log p) / d lp_t(c) = -exp(lse_{s: l'_s = c}(alpha_t(s) + beta_t(s)) - lp_t(c) - log p),
 * the posterior occupation of class c at t, negated. (PyTorch's ctc_loss
 * returns this plus exp(lp_t(c)), the gradient with respect to the logits
 * before a log_softmax; through log_softmax's backward both give the same
 * gradient, since the extra term sums to one over c.) */
#include "../autograd/graph.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline double lse2(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

typedef struct {
    int T, N, C, S;       /* S: the longest extended sequence, 2 max(L) + 1 */
    int blank;
    cx_reduction red;
    bool zero_inf;
    int32_t *tgt;         /* [N][max L] labels */
    int *tlen, *ilen;     /* [N] */
    double *alpha;        /* [N][T][S] */
    double *nll;          /* [N] */
} ctc_saved;

static inline int ext_label(const ctc_saved *c, int n, int s) {
    return (s & 1) ? c->tgt[(size_t)n * ((c->S - 1) / 2) + s / 2] : c->blank;
}

/* alpha of sample n; returns -log p (inf when no alignment exists). */
static double ctc_alpha(const ctc_saved *c, const float *lp, int n) {
    const int Tn = c->ilen[n], L = c->tlen[n], S = 2 * L + 1, N = c->N, C = c->C;
    double *a = c->alpha + (size_t)n * c->T * c->S;
    if (Tn == 0) return L == 0 ? 0.0 : INFINITY;
    for (int s = 0; s < S; s++) a[s] = -INFINITY;
    const float *l0 = lp + (size_t)n * C;
    a[0] = l0[c->blank];
    if (S > 1) a[1] = l0[ext_label(c, n, 1)];
    for (int t = 1; t < Tn; t++) {
        const double *ap = a + (size_t)(t - 1) * c->S;
        double *at = a + (size_t)t * c->S;
        const float *lt = lp + ((size_t)t * N + n) * C;
        for (int s = 0; s < S; s++) {
            int ls = ext_label(c, n, s);
            double v = ap[s];
            if (s >= 1) v = lse2(v, ap[s - 1]);
            if (s >= 2 && ls != c->blank && ls != ext_label(c, n, s - 2)) v = lse2(v, ap[s - 2]);
            at[s] = v == -INFINITY ? -INFINITY : v + lt[ls];
        }
    }
    const double *al = a + (size_t)(Tn - 1) * c->S;
    double lp_total = S > 1 ? lse2(al[S - 1], al[S - 2]) : al[0];
    return -lp_total;
}

static void ctc_backward(cx_node *nd) {
    const ctc_saved *c = nd->saved;
    cx_tensor *x = nd->in[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const float *lp = CX_F(x), *go = nd->out[0]->grad;
    const int N = c->N, C = c->C, Sm = c->S;
    double *beta = malloc(sizeof(double) * 2 * (size_t)Sm), *lcab = malloc(sizeof(double) * (size_t)C);
    if (!beta || !lcab) cx_fatal("ctc_loss: out of memory (backward)");
    for (int n = 0; n < N; n++) {
        const int Tn = c->ilen[n], L = c->tlen[n], S = 2 * L + 1;
        double nll = c->nll[n];
        if (Tn == 0 || nll == INFINITY) {
            if (c->zero_inf || Tn == 0) continue; /* no gradient (zero_infinity), or no steps */
        }
        double g;
        switch (c->red) {
        case CX_REDUCE_MEAN: g = go[0] / ((double)N * (L > 1 ? L : 1)); break;
        case CX_REDUCE_SUM: g = go[0]; break;
        default: g = go[n]; break;
        }
        if (g == 0.0) continue;
        const double *a = c->alpha + (size_t)n * c->T * Sm;
        double *bn = beta, *bp = beta + Sm; /* beta at t and t + 1 */
        for (int t = Tn - 1; t >= 0; t--) {
            const float *lt = lp + ((size_t)t * N + n) * C;
            for (int s = 0; s < S; s++) {
                int ls = ext_label(c, n, s);
                double v;
                if (t == Tn - 1) {
                    v = s >= S - 2 ? 0.0 : -INFINITY;
                } else {
                    v = bp[s];
                    if (s + 1 < S) v = lse2(v, bp[s + 1]);
                    if (s + 2 < S && ls != c->blank && ls != ext_label(c, n, s + 2)) v = lse2(v, bp[s + 2]);
                }
                bn[s] = v == -INFINITY ? -INFINITY : v + lt[ls];
            }
            for (int k = 0; k < C; k++) lcab[k] = -INFINITY;
            const double *at = a + (size_t)t * Sm;
            for (int s = 0; s < S; s++) {
                int ls = ext_label(c, n, s);
                lcab[ls] = lse2(lcab[ls], at[s] + bn[s]);
            }
            float *gt = gx + ((size_t)t * N + n) * C;
            for (int k = 0; k < C; k++)
                if (lcab[k] != -INFINITY) gt[k] += (float)(-g * exp(lcab[k] - lt[k] + nll));
            double *sw = bn;
            bn = bp;
            bp = sw;
        }
    }
    free(beta);
    free(lcab);
}

CX_OP_DEF(ctc_loss, .backward = ctc_backward);

static int64_t idx_at(const cx_tensor *t, int64_t i) {
    return t->dtype == CX_I64 ? CX_I64P(t)[i] : CX_I32P(t)[i];
}

cx_tensor *cx_ctc_loss(cx_tensor *log_probs, const cx_tensor *targets, const int *input_lengths,
                       const int *target_lengths, int blank, cx_reduction r, bool zero_infinity) {
    char s1[96], s2[96];
    cx_need_f32("ctc_loss", log_probs);
    if (log_probs->ndim != 3)
        cx_fatal("ctc_loss: log_probs %s must be [T, N, C] (time, batch, classes)",
                 cx_shape_str(log_probs, s1, sizeof s1));
    const int T = log_probs->shape[0], N = log_probs->shape[1], C = log_probs->shape[2];
    if (!targets || (targets->dtype != CX_I32 && targets->dtype != CX_I64))
        cx_fatal("ctc_loss: targets must be an I32 or I64 tensor of labels");
    if (!input_lengths || !target_lengths) cx_fatal("ctc_loss: input_lengths and target_lengths are required");
    if (blank < 0 || blank >= C) cx_fatal("ctc_loss: blank %d is not a class index in [0, %d)", blank, C);
    if ((unsigned)r > CX_REDUCE_NONE) cx_fatal("ctc_loss: unknown reduction %d", (int)r);
    int maxL = 0;
    int64_t total = 0;
    for (int n = 0; n < N; n++) {
        if (input_lengths[n] < 0 || input_lengths[n] > T)
            cx_fatal("ctc_loss: input_lengths[%d] = %d is outside [0, %d] (T of log_probs)", n, input_lengths[n], T);
        if (target_lengths[n] < 0) cx_fatal("ctc_loss: target_lengths[%d] = %d is negative", n, target_lengths[n]);
        if (target_lengths[n] > maxL) maxL = target_lengths[n];
        total += target_lengths[n];
    }
    bool padded = targets->ndim == 2;
    if (padded) {
        if (targets->shape[0] != N || targets->shape[1] < maxL)
            cx_fatal("ctc_loss: padded targets %s do not match %d sequences of up to %d labels "
                     "(expected [%d, >= %d])", cx_shape_str(targets, s2, sizeof s2), N, maxL, N, maxL);
    } else if (targets->ndim != 1 || targets->numel < total) {
        cx_fatal("ctc_loss: targets %s must be [N, S] (padded) or 1-D with the %lld labels of "
                 "target_lengths concatenated", cx_shape_str(targets, s2, sizeof s2), (long long)total);
    }
    ctc_saved c = {.T = T, .N = N, .C = C, .S = 2 * maxL + 1, .blank = blank, .red = r, .zero_inf = zero_infinity};
    c.tgt = cx_arena_alloc(sizeof(int32_t) * ((size_t)N * maxL + 1));
    c.tlen = cx_arena_alloc(sizeof(int) * (size_t)N);
    c.ilen = cx_arena_alloc(sizeof(int) * (size_t)N);
    c.alpha = cx_arena_alloc(sizeof(double) * ((size_t)N * T * c.S + 1));
    c.nll = cx_arena_alloc(sizeof(double) * (size_t)N);
    int64_t off = 0;
    for (int n = 0; n < N; n++) {
        c.tlen[n] = target_lengths[n];
        c.ilen[n] = input_lengths[n];
        for (int k = 0; k < target_lengths[n]; k++) {
            int64_t v = idx_at(targets, padded ? (int64_t)n * targets->shape[1] + k : off + k);
            if (v < 0 || v >= C || v == blank)
                cx_fatal("ctc_loss: label %lld of sequence %d (position %d) is %s", (long long)v, n, k,
                         v == blank ? "the blank" : "not a class index");
            c.tgt[(size_t)n * maxL + k] = (int32_t)v;
        }
        off += target_lengths[n];
    }
    const float *lp = CX_F(log_probs);
    CX_OMP(parallel for schedule(dynamic) if(N > 1 && (int64_t)T * c.S * N > 100000))
    for (int n = 0; n < N; n++) c.nll[n] = ctc_alpha(&c, lp, n);

    cx_tensor *out = r == CX_REDUCE_NONE ? cx_empty(CX_F32, (const int[]){N}, 1) : cx_scalar(0.0f);
    double acc = 0;
    for (int n = 0; n < N; n++) {
        double v = c.nll[n];
        if (zero_infinity && v == INFINITY) v = 0.0;
        if (r == CX_REDUCE_NONE) CX_F(out)[n] = (float)v;
        else acc += r == CX_REDUCE_MEAN ? v / (c.tlen[n] > 1 ? c.tlen[n] : 1) : v;
    }
    if (r == CX_REDUCE_MEAN) acc /= N;
    if (r != CX_REDUCE_NONE) CX_F(out)[0] = (float)acc;
    cx_record_saved(&cx_opd_ctc_loss, out, &log_probs, 1, &c, sizeof c);
    return out;
}

/* ---------------------------------------------------------------- decoding */
static void check_decode_args(const char *fn, const cx_tensor *lp, const int *input_lengths, int blank) {
    char s1[96];
    cx_need_f32(fn, lp);
    if (lp->ndim != 3)
        cx_fatal("%s: log_probs %s must be [T, N, C]", fn, cx_shape_str(lp, s1, sizeof s1));
    if (blank < 0 || blank >= lp->shape[2])
        cx_fatal("%s: blank %d is not a class index in [0, %d)", fn, blank, lp->shape[2]);
    for (int n = 0; input_lengths && n < lp->shape[1]; n++)
        if (input_lengths[n] < 0 || input_lengths[n] > lp->shape[0])
            cx_fatal("%s: input_lengths[%d] = %d is outside [0, %d]", fn, n, input_lengths[n], lp->shape[0]);
}

void cx_ctc_greedy_decode(const cx_tensor *log_probs, const int *input_lengths, int blank, int32_t *out,
                          int *out_lengths) {
    check_decode_args("ctc_greedy_decode", log_probs, input_lengths, blank);
    const int T = log_probs->shape[0], N = log_probs->shape[1], C = log_probs->shape[2];
    const float *lp = CX_F(log_probs);
    for (int n = 0; n < N; n++) {
        int Tn = input_lengths ? input_lengths[n] : T, len = 0, prev = -1;
        for (int t = 0; t < Tn; t++) {
            const float *row = lp + ((size_t)t * N + n) * C;
            int best = 0;
            for (int k = 1; k < C; k++)
                if (row[k] > row[best]) best = k;
            if (best != blank && best != prev) out[(size_t)n * T + len++] = best;
            prev = best;
        }
        out_lengths[n] = len;
    }
}

/* Prefix beam search: every hypothesis is a label prefix with the
 * probabilities of its alignments so far ending in a blank (pb) and in its
 * last label (pnb). Extending by the prefix's last label c needs a blank in
 * between (from pb only); c again without a blank stays the same prefix. */
typedef struct {
    int32_t *lab;
    int len;
    double pb, pnb;
} beam_hyp;

static double hyp_score(const beam_hyp *h) { return lse2(h->pb, h->pnb); }

static int cmp_hyp(const void *a, const void *b) {
    double x = hyp_score(a), y = hyp_score(b);
    return (x < y) - (x > y);
}

/* index of the hypothesis with prefix (base[0..len-1], c) in list, or -1 */
static int find_hyp(const beam_hyp *list, int n, const int32_t *base, int len, int c) {
    for (int i = 0; i < n; i++) {
        const beam_hyp *h = &list[i];
        if (h->len != len + (c >= 0)) continue;
        if (len && memcmp(h->lab, base, sizeof(int32_t) * (size_t)len)) continue;
        if (c >= 0 && h->lab[len] != c) continue;
        return i;
    }
    return -1;
}

void cx_ctc_beam_decode(const cx_tensor *log_probs, const int *input_lengths, int blank, int beam_width,
                        int32_t *out, int *out_lengths, float *scores) {
    check_decode_args("ctc_beam_decode", log_probs, input_lengths, blank);
    if (beam_width < 1) cx_fatal("ctc_beam_decode: beam width %d must be at least 1", beam_width);
    const int T = log_probs->shape[0], N = log_probs->shape[1], C = log_probs->shape[2];
    const float *lp = CX_F(log_probs);
    const size_t cap = (size_t)beam_width * (C + 1);
    beam_hyp *cur = calloc((size_t)beam_width, sizeof *cur), *nxt = calloc(cap, sizeof *nxt);
    int32_t *store = malloc(sizeof(int32_t) * ((size_t)beam_width + cap) * ((size_t)T + 1));
    if (!cur || !nxt || !store) cx_fatal("ctc_beam_decode: out of memory");
    int32_t *cur_store = store, *nxt_store = store + (size_t)beam_width * (T + 1);
    for (int n = 0; n < N; n++) {
        int Tn = input_lengths ? input_lengths[n] : T, ncur = 1;
        cur[0] = (beam_hyp){cur_store, 0, 0.0, -INFINITY};
        for (int t = 0; t < Tn; t++) {
            const float *row = lp + ((size_t)t * N + n) * C;
            int nn = 0;
            for (int i = 0; i < ncur; i++) {
                const beam_hyp *h = &cur[i];
                const double tot = hyp_score(h);
                /* the same prefix: a blank, or its last label repeated */
                int j = find_hyp(nxt, nn, h->lab, h->len, -1);
                if (j < 0) {
                    j = nn++;
                    nxt[j] = (beam_hyp){nxt_store + (size_t)j * (T + 1), h->len, -INFINITY, -INFINITY};
                    memcpy(nxt[j].lab, h->lab, sizeof(int32_t) * (size_t)h->len);
                }
                nxt[j].pb = lse2(nxt[j].pb, tot + row[blank]);
                if (h->len) nxt[j].pnb = lse2(nxt[j].pnb, h->pnb + row[h->lab[h->len - 1]]);
                /* extensions by a label c */
                for (int k = 0; k < C; k++) {
                    if (k == blank) continue;
                    double add = (h->len && h->lab[h->len - 1] == k) ? h->pb : tot;
                    if (add == -INFINITY) continue;
                    int e = find_hyp(nxt, nn, h->lab, h->len, k);
                    if (e < 0) {
                        e = nn++;
                        nxt[e] = (beam_hyp){nxt_store + (size_t)e * (T + 1), h->len + 1, -INFINITY, -INFINITY};
                        memcpy(nxt[e].lab, h->lab, sizeof(int32_t) * (size_t)h->len);
                        nxt[e].lab[h->len] = k;
                    }
                    nxt[e].pnb = lse2(nxt[e].pnb, add + row[k]);
                }
            }
            qsort(nxt, (size_t)nn, sizeof *nxt, cmp_hyp);
            ncur = nn < beam_width ? nn : beam_width;
            for (int i = 0; i < ncur; i++) {
                cur[i] = nxt[i];
                cur[i].lab = cur_store + (size_t)i * (T + 1);
                memcpy(cur[i].lab, nxt[i].lab, sizeof(int32_t) * (size_t)nxt[i].len);
            }
        }
        qsort(cur, (size_t)ncur, sizeof *cur, cmp_hyp);
        memcpy(out + (size_t)n * T, cur[0].lab, sizeof(int32_t) * (size_t)cur[0].len);
        out_lengths[n] = cur[0].len;
        if (scores) scores[n] = (float)hyp_score(&cur[0]);
    }
    free(cur);
    free(nxt);
    free(store);
}
