/* cortex/decode.h -- generating sequences from a model: sampling with
 * temperature and top-k, greedy decoding, beam search with length
 * normalisation, and scheduled sampling. See cortex.h. */
#ifndef CORTEX_DECODE_H
#define CORTEX_DECODE_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ decoding */
/* Pick a token from V logits (or log-probabilities: the result is the same,
 * since only differences matter). temperature <= 0 or top_k == 1: the argmax
 * (the first one on ties). Otherwise keep the top_k largest logits (top_k <= 0
 * or >= V: all of them; ties at the boundary go to the lower index) and draw
 * from softmax(logits / temperature) over them with one cx_rand_uniform().
 * -INFINITY logits are never drawn; fatal on NaN or when every logit is
 * -INFINITY. */
int cx_sample_logits(const float *logits, int V, float temperature, int top_k);
/* Index of the largest of n values (the first on ties). */
int cx_argmax_f32(const float *x, int n);

/* The model seen by the decoders, as a step function:
 *
 *   status = step(user, prefix, n_prefix, state_in, state_out, logp)
 *
 * prefix[0 .. n_prefix-1] is the sequence so far: prefix[0] is the start
 * token given to the decoder, then the tokens generated. state_in is the
 * model's state after consuming prefix[0 .. n_prefix-2] (for n_prefix == 1,
 * the initial state given to the decoder). The function consumes the last
 * token prefix[n_prefix-1], writes the new state into state_out (a different
 * buffer of state_bytes bytes) and the V scores of the next token into logp:
 * log-probabilities or unnormalised logits (the decoders apply log-softmax).
 * A non-CX_OK status stops decoding and is returned by the decoder.
 * States are opaque blobs of state_bytes bytes (0 for a model whose state is
 * its prefix: then state_in / state_out are NULL); they are copied with
 * copy_state(user, dst, src), or memcpy when copy_state is NULL. */
typedef cx_status (*cx_step_fn)(void *user, const int *prefix, int n_prefix,
                                const void *state_in, void *state_out, float *logp);
typedef struct cx_decoder {
    int vocab;                /* V */
    size_t state_bytes;       /* size of one state blob (0: stateless) */
    cx_step_fn step;
    void (*copy_state)(void *user, void *dst, const void *src); /* NULL: memcpy */
    void *user;
} cx_decoder;

/* Autoregressive generation: start from start_token and init_state (may be
 * NULL when state_bytes is 0), feed back each token drawn with
 * cx_sample_logits(temperature, top_k), stop after stop_token is emitted
 * (stop_token < 0: never) or after max_len tokens. out (max_len ints)
 * receives the generated tokens without the start token, the stop token
 * included when it was emitted; *out_len their number. *out_logp (may be
 * NULL) gets the sum of the log-probabilities (log-softmax of the step's
 * scores at temperature 1) of the generated tokens. */
cx_status cx_decode_sample(const cx_decoder *d, const void *init_state, int start_token,
                           int stop_token, int max_len, float temperature, int top_k, int *out,
                           int *out_len, double *out_logp);
/* Greedy decoding: cx_decode_sample with temperature 0 (no PRNG draw). */
cx_status cx_decode_greedy(const cx_decoder *d, const void *init_state, int start_token,
                           int stop_token, int max_len, int *out, int *out_len, double *out_logp);

/* Length normalisation of finished beam hypotheses of n tokens (the stop
 * token counted) and total log-probability lp:
 *   NONE   lp
 *   POWER  lp / n^alpha          (alpha = 1: the mean log-probability per token)
 *   GNMT   lp / ((5 + n) / 6)^alpha   (Wu et al. 2016, "Google's NMT", eq. 14;
 *                                      their coverage penalty is not included) */
typedef enum { CX_LENNORM_NONE = 0, CX_LENNORM_POWER = 1, CX_LENNORM_GNMT = 2 } cx_lennorm;
double cx_length_normalise(double logp, int n, cx_lennorm norm, double alpha);

typedef struct cx_beam_opts {
    int beam;          /* K >= 1 */
    int max_len;       /* most tokens generated (stop token included), >= 1 */
    int stop_token;    /* < 0: none (every hypothesis runs to max_len) */
    cx_lennorm norm;
    double alpha;
} cx_beam_opts;
/* beam K and max_len (they have no default), no stop token, no length
 * normalisation. */
cx_beam_opts cx_beam_defaults(int beam, int max_len);

/* Beam search. The beam starts as the one hypothesis [start_token] with log-
 * probability 0. At each step every live hypothesis h (at most K) is extended
 * by each of the V tokens, scored logp(h) + log_softmax(step scores)[v]; the
 * K best of these K*V candidates by log-probability are kept (partial
 * selection, O(K V) per step; ties go to the earlier hypothesis, then the
 * lower token). A kept candidate ending with stop_token is finished and
 * leaves the beam (which shrinks); the others form the next beam, their
 * states copied from their parents' new states. After max_len steps the live
 * hypotheses are finished as they are. The result is the finished hypothesis
 * with the best cx_length_normalise score (the first one found on ties).
 * With the NONE norm the search stops early once no live hypothesis can beat
 * the best finished one (log-probabilities only decrease), which does not
 * change the result. K = 1 is greedy decoding; a K of at least V^max_len never
 * prunes and returns the exact best sequence.
 * Cost per step: at most K model steps, the K*V candidates, their O(K V)
 * partial selection (quickselect), an O(K log K) sort of the K kept and
 * O(K max_len) token copies (each hypothesis' prefix is kept contiguous for
 * the model); max_len steps at most. Memory O(K (V + max_len + state_bytes)).
 * out (max_len ints) receives the best sequence without the start token,
 * *out_len its length; *out_score (may be NULL) its normalised score and
 * *out_logp (may be NULL) its log-probability. */
cx_status cx_beam_search(const cx_decoder *d, const void *init_state, int start_token,
                         const cx_beam_opts *opts, int *out, int *out_len, double *out_score,
                         double *out_logp);

/* ================================================================ scheduled sampling */
/* Scheduled sampling (Bengio et al. 2015): at training step i a decoder input
 * is the ground-truth previous token with probability eps_i (teacher forcing)
 * and the model's own prediction otherwise, with eps_i decaying over
 * training:
 *   LINEAR           eps_i = max(eps_min, k - c i)
 *   EXPONENTIAL      eps_i = max(eps_min, k^i)            (0 < k < 1)
 *   INVERSE_SIGMOID  eps_i = max(eps_min, k / (k + exp(i / k)))   (k >= 1)
 * eps_min = 0 gives the paper's curves (its minimum is stated for the linear
 * decay); results are clamped to [0, 1]. */
typedef enum { CX_SS_LINEAR = 0, CX_SS_EXPONENTIAL = 1, CX_SS_INVERSE_SIGMOID = 2 } cx_ss_kind;
typedef struct cx_ss_schedule {
    cx_ss_kind kind;
    double k, c, eps_min;
} cx_ss_schedule;
/* Teacher-forcing probability eps_i at step i >= 0 (fatal on invalid k). */
double cx_ss_teacher_prob(const cx_ss_schedule *s, int64_t step);
/* Probability of feeding the model's own prediction: 1 - eps_i. */
double cx_ss_sample_prob(const cx_ss_schedule *s, int64_t step);
/* Per-token choice for n positions: out[j] = truth[j] with probability eps_i,
 * else pred[j] (one cx_rand_uniform() per position). Returns how many
 * positions took the model's prediction. out may alias truth or pred. */
int cx_ss_mix(const cx_ss_schedule *s, int64_t step, const int32_t *truth, const int32_t *pred,
              int32_t *out, int n);

#ifdef __cplusplus
}
#endif
#endif
