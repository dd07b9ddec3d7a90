/* cortex/caption.h -- image captioning: corpus BLEU and the exact-match rate
 * (the captioned-canvas data sets follow). See cortex.h. */
#ifndef CORTEX_CAPTION_H
#define CORTEX_CAPTION_H
#include "core.h"
#include "data.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ BLEU */
/* A token id sequence ids[0 .. len-1] (not owned). */
typedef struct cx_token_seq {
    const int32_t *ids;
    int len;
} cx_token_seq;

#define CX_BLEU_MAX_N 8
typedef struct cx_bleu_opts {
    int n_max;       /* highest n-gram order N, 1..CX_BLEU_MAX_N (default 4) */
    int start_id;    /* tokens equal to it are dropped (< 0: none; default -1) */
    int pad_id;      /* tokens equal to it are dropped (< 0: none; default -1) */
    int end_id;      /* a sequence ends before its first end_id (< 0: none; default -1) */
    /* NLTK 3.8's corpus_bleu counts a candidate shorter than n as having one
     * n-gram of order n (max(1, len - n + 1) in its modified_precision), which
     * lowers p_n for short candidates; true reproduces that exactly. Default
     * false: the standard count len - n + 1 (Papineni et al., sacreBLEU,
     * the COCO caption scorer). The two agree when every candidate has at
     * least N tokens. */
    bool nltk_short;
} cx_bleu_opts;
/* N = 4, no special tokens, standard counts. */
cx_bleu_opts cx_bleu_defaults(void);

typedef struct cx_bleu_result {
    int n_max;                          /* N */
    double bleu[CX_BLEU_MAX_N];         /* bleu[k-1] = BLEU-k, k = 1..N */
    double precision[CX_BLEU_MAX_N];    /* p_n = match / total (0 when total is 0) */
    int64_t match[CX_BLEU_MAX_N];       /* clipped n-gram matches, summed over the corpus */
    int64_t total[CX_BLEU_MAX_N];       /* candidate n-grams, summed over the corpus */
    double bp;                          /* brevity penalty */
    int64_t cand_len;                   /* c: candidate tokens */
    int64_t ref_len;                    /* r: closest reference lengths, summed */
    int n;                              /* candidates */
    int n_exact;                        /* candidates equal to one of their references */
    double exact_match;                 /* n_exact / n (0 for n = 0) */
} cx_bleu_result;

/* Corpus-level BLEU of Papineni et al. 2002, as NLTK's corpus_bleu computes it
 * with uniform weights and no smoothing:
 *   each sequence is cut before its first end_id and stripped of start_id and
 *   pad_id tokens;
 *   p_n = sum over candidates of the clipped n-gram matches (each candidate
 *         n-gram counted at most as often as it occurs in the reference where
 *         it occurs most) / sum of the candidates' n-gram counts;
 *   c   = total candidate length; r = sum over candidates of the length of
 *         the reference closest in length to the candidate (the shorter one
 *         on ties: NLTK's closest_ref_length, Papineni's "best match length");
 *   BP  = 1 if c > r, exp(1 - r / c) if 0 < c <= r, 0 if c = 0;
 *   BLEU-k = BP exp((1/k) sum_{n<=k} log p_n) (cumulative, uniform weights),
 *            0 when some p_n, n <= k, is 0 (NLTK returns 0, or a value below
 *            1e-75 for an empty higher-order match, there).
 * Candidate i's references are refs[ref_start[i] .. ref_start[i+1] - 1]
 * (ref_start has n + 1 entries, ref_start[0] = 0, each candidate at least one
 * reference). Exact match: the stripped candidate equals one of its stripped
 * references token for token. opts NULL: cx_bleu_defaults(). n = 0 gives an
 * all-zero result. Errors (CX_ERR_ARG, *out zeroed): NULL pointers, n < 0,
 * n_max out of range, a candidate without references, a negative length,
 * NULL ids with a positive length. */
cx_status cx_bleu(const cx_token_seq *cands, int n, const cx_token_seq *refs, const int *ref_start,
                  const cx_bleu_opts *opts, cx_bleu_result *out);

#ifdef __cplusplus
}
#endif
#endif
