/* Decoding from an autoregressive model given as a step callback: sampling
 * with temperature and top-k, greedy decoding, beam search; and scheduled
 * sampling schedules. */
#include "../tensor/internal.h"
#include <limits.h>
#include <math.h>

/* ---------------------------------------------------------------- selection */
/* A candidate: score (larger is better) and id (smaller wins ties). */
typedef struct {
    double score;
    int id;
} cand;

static inline bool better(const cand *a, const cand *b) {
    return a->score > b->score || (a->score == b->score && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

static inline void cswap(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Partial selection (quickselect, expected O(n)): afterwards a[0..k-1] hold
 * the k best candidates in the strict total order `better`, in any order. */
static void select_best(cand *a, int n, int k) {
    int lo = 0, hi = n - 1;
    if (k <= 0 || k >= n) return;
    while (lo < hi) {
        /* median of three as pivot, moved to a[hi] */
        int mid = lo + (hi - lo) / 2;
        if (better(&a[mid], &a[lo])) cswap(&a[mid], &a[lo]);
        if (better(&a[hi], &a[lo])) cswap(&a[hi], &a[lo]);
        if (better(&a[mid], &a[hi])) cswap(&a[mid], &a[hi]);
        cand pivot = a[hi];
        int store = lo;
        for (int i = lo; i < hi; i++)
            if (better(&a[i], &pivot)) cswap(&a[i], &a[store++]);
        cswap(&a[store], &a[hi]);
        /* a[lo..store-1] better than the pivot, a[store] the pivot */
        if (store == k - 1 || store == k) return;
        if (store < k) lo = store + 1;
        else hi = store - 1;
    }
}

int cx_argmax_f32(const float *x, int n) {
    if (n <= 0) cx_fatal("argmax: empty input");
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best] || (isnan(x[i]) && !isnan(x[best]))) best = i;
    return best;
}

/* ---------------------------------------------------------------- sampling */
int cx_sample_logits(const float *logits, int V, float temperature, int top_k) {
    if (V <= 0) cx_fatal("sample_logits: vocabulary size %d must be positive", V);
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY)
            cx_fatal("sample_logits: logit %d is %g", i, (double)logits[i]);
        mx = fmaxf(mx, logits[i]);
    }
    if (mx == -INFINITY) cx_fatal("sample_logits: every logit is -inf");
    if (!(temperature > 0) || top_k == 1) return cx_argmax_f32(logits, V);
    double invT = 1.0 / (double)temperature;
    if (top_k > 0 && top_k < V) {
        cand *c = cx_xmalloc((size_t)V * sizeof *c);
        for (int i = 0; i < V; i++) c[i] = (cand){logits[i], i};
        select_best(c, V, top_k);
        qsort(c, (size_t)top_k, sizeof *c, cand_cmp); /* fixed order for the draw */
        double total = 0;
        for (int j = 0; j < top_k; j++) total += exp(((double)c[j].score - mx) * invT);
        double u = (double)cx_rand_uniform() * total, acc = 0;
        int pick = c[0].id;
        for (int j = 0; j < top_k; j++) {
            double w = exp((c[j].score - mx) * invT);
            if (w <= 0) continue;
            acc += w;
            pick = c[j].id;
            if (u < acc) break;
        }
        free(c);
        return pick;
    }
    double total = 0;
    for (int i = 0; i < V; i++) total += exp(((double)logits[i] - mx) * invT);
    double u = (double)cx_rand_uniform() * total, acc = 0;
    int pick = cx_argmax_f32(logits, V);
    for (int i = 0; i < V; i++) {
        double w = exp(((double)logits[i] - mx) * invT);
        if (w <= 0) continue;
        acc += w;
        pick = i;
        if (u < acc) break;
    }
    return pick;
}

/* In-place log-softmax of V scores; CX_ERR_NUMERIC on NaN / +inf / no finite score. */
static cx_status log_softmax_row(float *x, int V) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (isnan(x[i]) || x[i] == INFINITY)
            return cx_set_error(CX_ERR_NUMERIC, "decode: the step function returned score %g for token %d",
                                (double)x[i], i);
        mx = fmaxf(mx, x[i]);
    }
    if (mx == -INFINITY) return cx_set_error(CX_ERR_NUMERIC, "decode: the step function returned no finite score");
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - mx);
    double lse = (double)mx + log(s);
    for (int i = 0; i < V; i++) x[i] = (float)((double)x[i] - lse);
    return CX_OK;
}

static void check_decoder(const char *op, const cx_decoder *d, const void *init_state, int stop,
                          int max_len) {
    if (!d || !d->step) cx_fatal("%s: decoder without a step function", op);
    if (d->vocab <= 0) cx_fatal("%s: vocabulary size %d must be positive", op, d->vocab);
    if (d->state_bytes && !init_state) cx_fatal("%s: init_state is NULL but state_bytes is %zu", op, d->state_bytes);
    if (stop >= d->vocab) cx_fatal("%s: stop token %d out of range [0, %d)", op, stop, d->vocab);
    if (max_len < 1) cx_fatal("%s: max_len %d must be >= 1", op, max_len);
}

cx_status cx_decode_sample(const cx_decoder *d, const void *init_state, int start_token,
                           int stop_token, int max_len, float temperature, int top_k, int *out,
                           int *out_len, double *out_logp) {
    check_decoder("decode_sample", d, init_state, stop_token, max_len);
    int V = d->vocab;
    size_t sb = d->state_bytes;
    int *prefix = cx_xmalloc((size_t)(max_len + 1) * sizeof(int));
    float *lp = cx_xmalloc((size_t)V * sizeof(float));
    char *bufs = sb ? cx_xmalloc(2 * sb) : NULL;
    const void *sin = sb ? init_state : NULL;
    prefix[0] = start_token;
    double total = 0;
    int n = 0;
    cx_status st = CX_OK;
    *out_len = 0;
    for (int t = 0; t < max_len; t++) {
        void *sout = sb ? bufs + (size_t)(t & 1) * sb : NULL;
        st = d->step(d->user, prefix, t + 1, sin, sout, lp);
        if (st) break;
        st = log_softmax_row(lp, V);
        if (st) break;
        int tok = cx_sample_logits(lp, V, temperature, top_k);
        total += lp[tok];
        prefix[t + 1] = tok;
        out[n++] = tok;
        sin = sout;
        if (tok == stop_token) break;
    }
    *out_len = n;
    if (out_logp) *out_logp = total;
    free(prefix);
    free(lp);
    free(bufs);
    return st;
}

cx_status cx_decode_greedy(const cx_decoder *d, const void *init_state, int start_token,
                           int stop_token, int max_len, int *out, int *out_len, double *out_logp) {
    return cx_decode_sample(d, init_state, start_token, stop_token, max_len, 0.0f, 0, out, out_len,
                            out_logp);
}

/* ---------------------------------------------------------------- beam search */
cx_beam_opts cx_beam_defaults(int beam, int max_len) {
    return (cx_beam_opts){.beam = beam, .max_len = max_len, .stop_token = -1, .norm = CX_LENNORM_NONE, .alpha = 0.0};
}

double cx_length_normalise(double logp, int n, cx_lennorm norm, double alpha) {
    switch (norm) {
    case CX_LENNORM_NONE: return logp;
    case CX_LENNORM_POWER: return logp / pow((double)(n > 0 ? n : 1), alpha);
    case CX_LENNORM_GNMT: return logp / pow((5.0 + n) / 6.0, alpha);
    }
    cx_fatal("length_normalise: unknown norm %d", (int)norm);
}

cx_status cx_beam_search(const cx_decoder *d, const void *init_state, int start_token,
                         const cx_beam_opts *o, int *out, int *out_len, double *out_score,
                         double *out_logp) {
    if (!o) cx_fatal("beam_search: NULL options");
    check_decoder("beam_search", d, init_state, o->stop_token, o->max_len);
    if (o->beam < 1) cx_fatal("beam_search: beam width %d must be >= 1", o->beam);
    if ((unsigned)o->norm > CX_LENNORM_GNMT) cx_fatal("beam_search: unknown length norm %d", (int)o->norm);
    int V = d->vocab, Tm = o->max_len, stop = o->stop_token;
    /* the beam never holds more than V^t hypotheses at step t, nor K*V candidates */
    int K = o->beam;
    if ((int64_t)K * V > INT_MAX / 2) cx_fatal("beam_search: beam %d x vocabulary %d too large", K, V);
    size_t sb = d->state_bytes, W = (size_t)Tm + 1;
    int *pre_cur = cx_xmalloc((size_t)K * W * sizeof(int));
    int *pre_next = cx_xmalloc((size_t)K * W * sizeof(int));
    double *lp_cur = cx_xmalloc((size_t)K * sizeof(double));
    double *lp_next = cx_xmalloc((size_t)K * sizeof(double));
    float *scores = cx_xmalloc((size_t)K * V * sizeof(float));
    cand *c = cx_xmalloc((size_t)K * V * sizeof(cand));
    char *s_cur = sb ? cx_xmalloc((size_t)K * sb) : NULL;
    char *s_out = sb ? cx_xmalloc((size_t)K * sb) : NULL;
    char *s_next = sb ? cx_xmalloc((size_t)K * sb) : NULL;
    int *best = cx_xmalloc((size_t)Tm * sizeof(int));
    int best_len = -1;
    double best_score = -INFINITY, best_lp = -INFINITY;
    cx_status st = CX_OK;

    pre_cur[0] = start_token;
    lp_cur[0] = 0;
    int n_live = 1;
    for (int t = 1; t <= Tm && n_live > 0; t++) {
        /* expand every live hypothesis (prefix length t) */
        for (int h = 0; h < n_live && !st; h++) {
            const void *sin = !sb ? NULL : t == 1 ? init_state : (const void *)(s_cur + (size_t)h * sb);
            void *so = sb ? s_out + (size_t)h * sb : NULL;
            st = d->step(d->user, pre_cur + (size_t)h * W, t, sin, so, scores + (size_t)h * V);
            if (!st) st = log_softmax_row(scores + (size_t)h * V, V);
        }
        if (st) break;
        int nc = 0;
        for (int h = 0; h < n_live; h++)
            for (int v = 0; v < V; v++) {
                float s = scores[(size_t)h * V + v];
                if (s == -INFINITY) continue;
                c[nc++] = (cand){lp_cur[h] + (double)s, h * V + v};
            }
        int k = nc < K ? nc : K;
        select_best(c, nc, k);
        qsort(c, (size_t)k, sizeof *c, cand_cmp);
        int n_next = 0;
        for (int j = 0; j < k; j++) {
            int h = c[j].id / V, v = c[j].id % V;
            const int *ph = pre_cur + (size_t)h * W;
            if (v == stop || t == Tm) {
                /* finished: tokens ph[1..t-1], v */
                double sc = cx_length_normalise(c[j].score, t, o->norm, o->alpha);
                if (best_len < 0 || sc > best_score) {
                    best_score = sc;
                    best_lp = c[j].score;
                    best_len = t;
                    memcpy(best, ph + 1, (size_t)(t - 1) * sizeof(int));
                    best[t - 1] = v;
                }
                continue;
            }
            int *pn = pre_next + (size_t)n_next * W;
            memcpy(pn, ph, (size_t)t * sizeof(int));
            pn[t] = v;
            lp_next[n_next] = c[j].score;
            if (sb) {
                void *dst = s_next + (size_t)n_next * sb;
                const void *src = s_out + (size_t)h * sb;
                if (d->copy_state) d->copy_state(d->user, dst, src);
                else memcpy(dst, src, sb);
            }
            n_next++;
        }
        /* swap the beams */
        int *tp = pre_cur; pre_cur = pre_next; pre_next = tp;
        double *tl = lp_cur; lp_cur = lp_next; lp_next = tl;
        char *ts = s_cur; s_cur = s_next; s_next = ts;
        n_live = n_next;
        if (o->norm == CX_LENNORM_NONE && best_len > 0) {
            /* log-probabilities only decrease: stop when nothing live can win */
            double top = -INFINITY;
            for (int h = 0; h < n_live; h++) top = fmax(top, lp_cur[h]);
            if (top <= best_lp) n_live = 0;
        }
    }
    if (!st) {
        memcpy(out, best, (size_t)best_len * sizeof(int));
        *out_len = best_len;
        if (out_score) *out_score = best_score;
        if (out_logp) *out_logp = best_lp;
    } else {
        *out_len = 0;
    }
    free(pre_cur);
    free(pre_next);
    free(lp_cur);
    free(lp_next);
    free(scores);
    free(c);
    free(s_cur);
    free(s_out);
    free(s_next);
    free(best);
    return st;
}

/* ---------------------------------------------------------------- scheduled sampling */
double cx_ss_teacher_prob(const cx_ss_schedule *s, int64_t step) {
    if (!s) cx_fatal("scheduled sampling: NULL schedule");
    if (step < 0) cx_fatal("scheduled sampling: negative step %lld", (long long)step);
    double i = (double)step, e;
    switch (s->kind) {
    case CX_SS_LINEAR:
        e = s->k - s->c * i;
        break;
    case CX_SS_EXPONENTIAL:
        if (!(s->k > 0 && s->k < 1)) cx_fatal("scheduled sampling: exponential decay needs 0 < k < 1, got %g", s->k);
        e = pow(s->k, i);
        break;
    case CX_SS_INVERSE_SIGMOID:
        if (!(s->k >= 1)) cx_fatal("scheduled sampling: inverse sigmoid decay needs k >= 1, got %g", s->k);
        /* k / (k + exp(i/k)) written to stay finite for large i */
        e = 1.0 / (1.0 + exp(i / s->k - log(s->k)));
        break;
    default:
        cx_fatal("scheduled sampling: unknown schedule kind %d", (int)s->kind);
    }
    if (e < s->eps_min) e = s->eps_min;
    return e < 0 ? 0 : e > 1 ? 1 : e;
}

double cx_ss_sample_prob(const cx_ss_schedule *s, int64_t step) { return 1.0 - cx_ss_teacher_prob(s, step); }

int cx_ss_mix(const cx_ss_schedule *s, int64_t step, const int32_t *truth, const int32_t *pred,
              int32_t *out, int n) {
    double eps = cx_ss_teacher_prob(s, step);
    int used = 0;
    for (int j = 0; j < n; j++) {
        bool teacher = (double)cx_rand_uniform() < eps;
        out[j] = teacher ? truth[j] : pred[j];
        used += !teacher;
    }
    return used;
}
