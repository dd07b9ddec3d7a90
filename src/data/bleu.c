/* Corpus BLEU (Papineni et al. 2002) and the exact-match rate on token id
 * sequences. N-grams are compared exactly (no hashing): the n-gram start
 * positions of a sequence are sorted lexicographically by a merge sort that
 * reads the sequence, equal n-grams form runs, and each distinct candidate
 * n-gram is counted in every sorted reference by binary search. Cost per
 * candidate and order: O((c + R) log(c + R)) for c candidate and R reference
 * tokens. */
#include <math.h>
#include <string.h>

#include "../tensor/internal.h"

cx_bleu_opts cx_bleu_defaults(void) {
    return (cx_bleu_opts){.n_max = 4, .start_id = -1, .pad_id = -1, .end_id = -1, .nltk_short = false};
}

/* Copy s into dst without the start/pad tokens, up to the first end token. */
static int strip(const cx_token_seq *s, const cx_bleu_opts *o, int32_t *dst) {
    int k = 0;
    for (int i = 0; i < s->len; i++) {
        int32_t t = s->ids[i];
        if (o->end_id >= 0 && t == o->end_id) break;
        if ((o->start_id >= 0 && t == o->start_id) || (o->pad_id >= 0 && t == o->pad_id)) continue;
        dst[k++] = t;
    }
    return k;
}

static int ngram_cmp(const int32_t *a, const int32_t *b, int n) {
    for (int k = 0; k < n; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* Sort the m positions pos[] by the n-gram of seq starting there (bottom-up
 * merge sort; tmp holds m ints). */
static void sort_ngrams(int *pos, int *tmp, int m, const int32_t *seq, int n) {
    for (int w = 1; w < m; w *= 2) {
        for (int lo = 0; lo < m; lo += 2 * w) {
            int mid = lo + w < m ? lo + w : m, hi = lo + 2 * w < m ? lo + 2 * w : m;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = ngram_cmp(seq + pos[j], seq + pos[i], n) < 0 ? pos[j++] : pos[i++];
            while (i < mid) tmp[k++] = pos[i++];
            while (j < hi) tmp[k++] = pos[j++];
        }
        memcpy(pos, tmp, (size_t)m * sizeof *pos);
    }
}

/* Occurrences of the n-gram `key` among the m sorted n-gram positions sp of seq. */
static int count_in(const int *sp, int m, const int32_t *seq, const int32_t *key, int n) {
    int lo = 0, hi = m;
    while (lo < hi) { /* first n-gram >= key */
        int mid = lo + (hi - lo) / 2;
        if (ngram_cmp(seq + sp[mid], key, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    int first = lo;
    hi = m;
    while (lo < hi) { /* first n-gram > key */
        int mid = lo + (hi - lo) / 2;
        if (ngram_cmp(seq + sp[mid], key, n) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo - first;
}

static cx_status check_seq(const char *what, int i, const cx_token_seq *s) {
    if (s->len < 0) return cx_set_error(CX_ERR_ARG, "cx_bleu: %s %d has length %d", what, i, s->len);
    if (s->len > 0 && !s->ids) return cx_set_error(CX_ERR_ARG, "cx_bleu: %s %d has NULL ids", what, i);
    return CX_OK;
}

cx_status cx_bleu(const cx_token_seq *cands, int n, const cx_token_seq *refs, const int *ref_start,
                  const cx_bleu_opts *opts, cx_bleu_result *out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_bleu: out is NULL");
    memset(out, 0, sizeof *out);
    cx_bleu_opts o = opts ? *opts : cx_bleu_defaults();
    if (o.n_max < 1 || o.n_max > CX_BLEU_MAX_N)
        return cx_set_error(CX_ERR_ARG, "cx_bleu: n_max %d (must be 1..%d)", o.n_max, CX_BLEU_MAX_N);
    out->n_max = o.n_max;
    if (n < 0) return cx_set_error(CX_ERR_ARG, "cx_bleu: %d candidates", n);
    if (n == 0) return CX_OK;
    if (!cands || !refs || !ref_start) return cx_set_error(CX_ERR_ARG, "cx_bleu: NULL candidates or references");
    if (ref_start[0] != 0) return cx_set_error(CX_ERR_ARG, "cx_bleu: ref_start[0] is %d, must be 0", ref_start[0]);
    /* validate everything and size the scratch buffers */
    int max_c = 0;
    int64_t max_r = 0;
    for (int i = 0; i < n; i++) {
        if (ref_start[i + 1] <= ref_start[i])
            return cx_set_error(CX_ERR_ARG, "cx_bleu: candidate %d has no reference (ref_start[%d] = %d, ref_start[%d] = %d)",
                                i, i, ref_start[i], i + 1, ref_start[i + 1]);
        cx_status st = check_seq("candidate", i, &cands[i]);
        if (st) return st;
        if (cands[i].len > max_c) max_c = cands[i].len;
        int64_t sum = 0;
        for (int j = ref_start[i]; j < ref_start[i + 1]; j++) {
            if ((st = check_seq("reference", j, &refs[j]))) return st;
            sum += refs[j].len;
        }
        if (sum > max_r) max_r = sum;
    }
    if (max_r > INT32_MAX) return cx_set_error(CX_ERR_ARG, "cx_bleu: references of one candidate too long");
    int max_refs = 0;
    for (int i = 0; i < n; i++)
        if (ref_start[i + 1] - ref_start[i] > max_refs) max_refs = ref_start[i + 1] - ref_start[i];
    size_t mc = (size_t)max_c + 1, mr = (size_t)max_r + 1, mx = mc > mr ? mc : mr;
    int32_t *cand = cx_xmalloc(mc * sizeof(int32_t));
    int32_t *ref = cx_xmalloc(mr * sizeof(int32_t));            /* the stripped references, one after another */
    int *roff = cx_xmalloc(((size_t)max_refs + 1) * sizeof(int)); /* where each starts in ref */
    int *cpos = cx_xmalloc(mc * sizeof(int));                    /* sorted candidate n-grams */
    int *rpos = cx_xmalloc(mr * sizeof(int));                    /* sorted n-grams of each reference */
    int *rcnt = cx_xmalloc(((size_t)max_refs + 1) * sizeof(int)); /* n-grams of each reference */
    int *tmp = cx_xmalloc(mx * sizeof(int));

    for (int i = 0; i < n; i++) {
        int lc = strip(&cands[i], &o, cand);
        int nr = ref_start[i + 1] - ref_start[i];
        roff[0] = 0;
        int best = -1;
        bool exact = false;
        for (int j = 0; j < nr; j++) {
            int lr = strip(&refs[ref_start[i] + j], &o, ref + roff[j]);
            roff[j + 1] = roff[j] + lr;
            /* closest reference length, the shorter one on ties (NLTK's closest_ref_length) */
            int d = abs(lr - lc), bd = best < 0 ? 0 : abs(best - lc);
            if (best < 0 || d < bd || (d == bd && lr < best)) best = lr;
            if (!exact && lr == lc && !memcmp(ref + roff[j], cand, (size_t)lc * sizeof(int32_t))) exact = true;
        }
        out->cand_len += lc;
        out->ref_len += best;
        out->n_exact += exact;
        for (int g = 1; g <= o.n_max; g++) {
            int m = lc - g + 1 > 0 ? lc - g + 1 : 0;
            out->total[g - 1] += o.nltk_short && m == 0 ? 1 : m;
            if (m == 0) continue;
            for (int p = 0; p < m; p++) cpos[p] = p;
            sort_ngrams(cpos, tmp, m, cand, g);
            int *rp = rpos;
            for (int j = 0; j < nr; j++) {
                int lr = roff[j + 1] - roff[j], mrj = lr - g + 1 > 0 ? lr - g + 1 : 0;
                for (int p = 0; p < mrj; p++) rp[p] = roff[j] + p;
                sort_ngrams(rp, tmp, mrj, ref, g);
                rcnt[j] = mrj;
                rp += mrj;
            }
            for (int a = 0; a < m;) { /* one run of equal candidate n-grams */
                int b = a + 1;
                while (b < m && !ngram_cmp(cand + cpos[b], cand + cpos[a], g)) b++;
                int most = 0;
                rp = rpos;
                for (int j = 0; j < nr && most < b - a; rp += rcnt[j], j++) {
                    int k = count_in(rp, rcnt[j], ref, cand + cpos[a], g);
                    if (k > most) most = k;
                }
                out->match[g - 1] += most < b - a ? most : b - a;
                a = b;
            }
        }
    }
    free(cand);
    free(ref);
    free(roff);
    free(cpos);
    free(rpos);
    free(rcnt);
    free(tmp);

    out->n = n;
    out->exact_match = (double)out->n_exact / n;
    int64_t c = out->cand_len, r = out->ref_len;
    out->bp = c == 0 ? 0.0 : c > r ? 1.0 : exp(1.0 - (double)r / (double)c);
    double logsum = 0;
    bool zero = false;
    for (int g = 1; g <= o.n_max; g++) {
        int64_t tot = out->total[g - 1], mat = out->match[g - 1];
        out->precision[g - 1] = tot ? (double)mat / (double)tot : 0.0;
        if (mat == 0) zero = true; /* log 0: this and every longer BLEU-k is 0 */
        if (!zero) logsum += log((double)mat) - log((double)tot);
        out->bleu[g - 1] = zero ? 0.0 : out->bp * exp(logsum / g);
    }
    return CX_OK;
}
