/* cortex/seq.h -- sequence modelling around recurrent nets: embeddings,
 * sequence losses, character text corpora with a truncated-BPTT batcher,
 * sampling, greedy decoding, beam search and scheduled sampling. See cortex.h.
 *
 * Layout convention: sequence tensors are time-major, [T, B, ...], like
 * PyTorch's recurrent layers without batch_first; the losses also take
 * batch-major [B, T, ...] with a flag.
 *
 * A character language model in a few lines:
 *
 *   cx_vocab *voc = NULL; cx_tensor *ids;                   // NULL: build the vocabulary
 *   cx_text_load("data/text/kjv_genesis_ruth_jonah.txt", 1, &voc, &ids);
 *   cx_tensor *train, *val;
 *   cx_text_split(ids, 0.1, &train, &val);
 *   cx_module *emb = cx_embedding_new(voc->size, 64, -1);
 *   cx_bptt_loader *ld = cx_bptt_new(train, 32, 100, true);  // B = 32, T = 100
 *   cx_tensor *x, *y;                                         // I32 [T, B]
 *   while (cx_bptt_next(ld, &x, &y)) {
 *       cx_tensor *e = cx_module_forward(emb, x);             // [T, B, 64]
 *       cx_tensor *logits = ...;                              // [T, B, V]
 *       cx_tensor *loss = cx_seq_cross_entropy(logits, y, NULL, false, CX_REDUCE_MEAN);
 *       printf("%.3f bpc\n", cx_bits_per_char(cx_item(loss)));
 *       ...
 *   }
 */
#ifndef CORTEX_SEQ_H
#define CORTEX_SEQ_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ embedding */
/* out[..., :] = weight[indices[...], :]: weight F32 [V, E], indices I32 or I64
 * of any shape (a 0-d index tensor counts as shape [1]); result [..., E].
 * Every index must lie in [0, V) (fatal otherwise). The gradient of weight
 * accumulates over repeated indices. padding_idx in [0, V) names a row that
 * receives no gradient (PyTorch semantics: its output is still the row
 * itself); any negative padding_idx means "no padding row" (PyTorch's
 * negative padding_idx p corresponds to V + p here). The indices are copied,
 * so the index tensor need not outlive the call. Recorded as "embedding". */
cx_tensor *cx_embedding(cx_tensor *weight, const cx_tensor *indices, int padding_idx);

/* Embedding module (torch.nn.Embedding): parameter "weight" [V, E] drawn
 * from N(0, 1), the padding row (if padding_idx in [0, V)) set to zero.
 * cx_module_forward(m, indices) takes an I32 / I64 index tensor. */
cx_module *cx_embedding_new(int num_embeddings, int embedding_dim, int padding_idx);
cx_tensor *cx_embedding_weight(cx_module *m);
int cx_embedding_padding_idx(const cx_module *m); /* -1 when there is none */

/* ================================================================ losses */
/* Cross-entropy of a batch of padded sequences.
 *   logits  F32 [T, B, V] (batch_first false) or [B, T, V] (batch_first true)
 *   targets I32 / I64 [T, B] or [B, T]: class indices in [0, V)
 *   lengths NULL, or B ints: sequence b has lengths[b] real tokens (time steps
 *           0 .. lengths[b]-1); 0 <= lengths[b] <= T
 * Padded positions (t >= lengths[b]) and positions whose target is -100
 * (PyTorch's ignore_index) contribute nothing, whatever their logits and
 * target values. Reductions:
 *   CX_REDUCE_MEAN  sum over real tokens / number of real tokens (a per-token
 *                   mean: each real token weighs the same whatever the length
 *                   of its sequence; NaN when there is no real token, as in
 *                   PyTorch)
 *   CX_REDUCE_SUM   sum over real tokens
 *   CX_REDUCE_NONE  per-position loss with the shape of targets, 0 at padding
 * Equal to torch.nn.functional.cross_entropy(logits.reshape(-1, V),
 * t.reshape(-1), ignore_index=-100, reduction=r) where t is the targets with
 * -100 written at padded positions. Differentiable in logits. */
cx_tensor *cx_seq_cross_entropy(cx_tensor *logits, const cx_tensor *targets, const int *lengths,
                                bool batch_first, cx_reduction r);
/* Same with a mask tensor of the shape of targets (F32, I32 or I64): a
 * position is a real token when its mask value is non-zero. NULL mask: every
 * position is real. */
cx_tensor *cx_seq_cross_entropy_masked(cx_tensor *logits, const cx_tensor *targets,
                                       const cx_tensor *mask, bool batch_first, cx_reduction r);
/* Bits per character (or per token) from a mean cross-entropy in nats:
 * nats / ln 2. */
double cx_bits_per_char(double mean_nats);
/* Perplexity exp(mean_nats). */
double cx_perplexity(double mean_nats);

/* ================================================================ text data */
/* Decode UTF-8 into code points (malloc'd array in *out, free with free();
 * *n_out code points). Strict: overlong forms, surrogates, code points above
 * U+10FFFF and truncated sequences give CX_ERR_FORMAT naming the byte offset.
 * A leading byte-order mark is kept as U+FEFF. */
cx_status cx_utf8_decode(const char *s, size_t n, int32_t **out, int64_t *n_out);
/* Encode one code point as UTF-8 into buf (at least 4 bytes); returns the
 * number of bytes (0 for an invalid code point). */
int cx_utf8_encode(int32_t cp, char *buf);

/* Character vocabulary. Id 0 is <unk>; ids 1 .. size-1 are the kept code
 * points in increasing order. Every code point not in the vocabulary
 * (including those dropped by min_count) encodes to CX_VOCAB_UNK. */
#define CX_VOCAB_UNK 0
typedef struct cx_vocab {
    int size;          /* number of ids, <unk> included */
    int32_t *chars;    /* [size] code point of each id; chars[0] = -1 (<unk>) */
    int64_t *counts;   /* [size] occurrences in the text the vocabulary was
                          built from (counts[0]: characters mapped to <unk>) */
} cx_vocab;

/* Build from n code points: every code point seen at least min_count times
 * (min_count <= 1: every one) gets an id. Never returns NULL (fatal on
 * invalid code points or out of memory). Free with cx_vocab_free. */
cx_vocab *cx_vocab_build(const int32_t *cps, int64_t n, int64_t min_count);
void cx_vocab_free(cx_vocab *v);  /* NULL is fine */
/* Id of a code point (CX_VOCAB_UNK when absent); binary search. */
int cx_vocab_id(const cx_vocab *v, int32_t cp);
/* Code point of an id (-1 for <unk> or an id out of range). */
int32_t cx_vocab_char(const cx_vocab *v, int id);
/* Encode UTF-8 text into ids (malloc'd, free with free()). Errors: invalid
 * UTF-8 (CX_ERR_FORMAT). */
cx_status cx_vocab_encode(const cx_vocab *v, const char *utf8, size_t n, int32_t **ids,
                          int64_t *n_ids);
/* Decode ids into UTF-8, snprintf-style: writes at most cap bytes including
 * a terminating NUL (buf may be NULL when cap is 0) and returns the length
 * the full text needs (without the NUL). <unk> and out-of-range ids decode
 * as U+FFFD. */
size_t cx_vocab_decode(const cx_vocab *v, const int32_t *ids, int64_t n, char *buf, size_t cap);
/* Save as safetensors (atomically): "chars" I32 [size] (chars[0] = -1) and
 * "counts" I64 [size], metadata format = "cortex-char-vocab", unk = "0". */
cx_status cx_vocab_save(const cx_vocab *v, const char *path);
/* Load a file written by cx_vocab_save. Checks the format tag, the shapes,
 * chars[0] == -1 and strictly increasing valid code points after it
 * (CX_ERR_FORMAT otherwise). *out is NULL on error. */
cx_status cx_vocab_load(const char *path, cx_vocab **out);

/* Read a UTF-8 text file and encode it: *ids is a persistent I32 tensor [N]
 * (free with cx_tensor_free). *vocab must be set before the call: NULL to
 * build the vocabulary from this text (cx_vocab_build with min_count; the
 * caller frees it with cx_vocab_free), or an existing vocabulary to encode
 * with (e.g. the training one for a validation file; min_count is then
 * ignored and *vocab is left as is). On error *ids is NULL and *vocab
 * unchanged. Errors: CX_ERR_IO, CX_ERR_FORMAT (invalid UTF-8 naming the
 * path and byte offset, empty file). */
cx_status cx_text_load(const char *path, int64_t min_count, cx_vocab **vocab, cx_tensor **ids);
/* Split a 1-D id tensor into its first part and its last
 * round(val_fraction * N) ids (contiguous, so that no stream crosses the
 * boundary); both results are persistent copies. 0 <= val_fraction < 1. */
void cx_text_split(const cx_tensor *ids, double val_fraction, cx_tensor **train, cx_tensor **val);

/* Truncated-BPTT language-model batcher over a 1-D I32/I64 id tensor of N
 * tokens (not copied: keep it alive while the loader is used).
 * At each cx_bptt_reset an offset o is chosen (0, or uniform in [0, T) from
 * the loader's random stream when random_offset is set: cx_bptt_set_rng, by
 * default the calling thread's current stream). The tokens o .. o + B*L are cut
 * into B parallel streams of L = (N - o - 1) / B tokens: stream b holds
 * positions o + b*L .. o + b*L + L - 1. Batch k is
 *     x[t][b] = ids[o + b*L + k*T + t],   y[t][b] = ids[o + b*L + k*T + t + 1]
 * for t < T_k = min(T, L - k*T) (the last batch of an epoch may be shorter),
 * so batch k+1 continues batch k in every stream and a recurrent state can be
 * carried across batches (detach it between them). Every one of the B*L
 * positions appears exactly once as an input per epoch. */
typedef struct cx_bptt_loader cx_bptt_loader;
/* Fatal if batch < 1, bptt < 1, or the corpus is too short for one token per
 * stream (N < batch + bptt when random_offset, else N < batch + 1). Starts
 * positioned at epoch 0 (cx_bptt_reset is called once). */
cx_bptt_loader *cx_bptt_new(const cx_tensor *ids, int batch, int bptt, bool random_offset);
void cx_bptt_free(cx_bptt_loader *l);
/* Draw offsets from `rng` from the next reset on (NULL: the calling thread's
 * current stream; not owned). */
void cx_bptt_set_rng(cx_bptt_loader *l, cx_rng *rng);
/* Start a new epoch (draws a new offset when random_offset is set). */
void cx_bptt_reset(cx_bptt_loader *l);
/* Next batch as step tensors (current arena): *x and *y I32 [T_k, B].
 * Returns false at the end of the epoch. */
bool cx_bptt_next(cx_bptt_loader *l, cx_tensor **x, cx_tensor **y);
/* Batches per epoch with the current offset: ceil(L / T). */
int cx_bptt_num_batches(const cx_bptt_loader *l);
/* Current offset o and stream length L. */
int64_t cx_bptt_offset(const cx_bptt_loader *l);
int64_t cx_bptt_stream_len(const cx_bptt_loader *l);

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
