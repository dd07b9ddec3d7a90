/*
 * cortex/seqtasks.h -- the algorithmic sequence tasks of the Neural Turing
 * Machine paper (Graves et al. 2014, section 4): copy, repeat copy and
 * associative recall, as seeded batch generators, plus the bits-wrong
 * metric. Model-agnostic: any sequence model (NTM, DNC, LSTM) trains on
 * them. Include <cortex/seqtasks.h> (after or instead of <cortex.h>).
 *
 * Every generator returns step tensors of the current arena (released by
 * the next cx_step_reset), time-major:
 *   input   F32 [T, B, in]    what the model reads at each step
 *   target  F32 [T, B, out]   what it should output (0 where not scored)
 *   mask    F32 [T, B]        1 where the output of step t is scored, else 0
 * One batch has one length (every sequence of the batch has the same T;
 * the sizes are drawn once per batch, as pytorch-ntm does). Every random
 * draw comes from `rng`, so a seed gives the same batches. Bits are 0 / 1
 * with probability 1/2 each.
 *
 * Copy (W = bits, L drawn uniformly in [min_len, max_len]):
 *   in = W + 1, out = W, T = 2 L + 1.
 *   t = 0 .. L-1      input bits x_t (channel W = 0)
 *   t = L             the delimiter: channel W = 1, bits 0
 *   t = L+1 .. 2L     input all 0; target x_{t-L-1}; mask 1
 *   Example W = 2, L = 2, x = (1,0), (1,1):
 *     input  (1,0,0) (1,1,0) (0,0,1) (0,0,0) (0,0,0)
 *     target (0,0)   (0,0)   (0,0)   (1,0)   (1,1)      mask 0 0 0 1 1
 *
 * Repeat copy (L in [min_len, max_len], repeats n in [min_rep, max_rep]):
 *   in = W + 2, out = W + 1, T = L + 1 + n L + 1.
 *   t = 0 .. L-1      input bits x_t
 *   t = L             channel W = 1 (delimiter) and channel W + 1 = the
 *                     repeat count normalised to mean 0 and variance 1 over
 *                     the uniform distribution of n: (n - mu) / sigma with
 *                     mu = (min_rep + max_rep) / 2, sigma^2 = ((max_rep -
 *                     min_rep + 1)^2 - 1) / 12 (sigma = 1 when min_rep ==
 *                     max_rep), as the paper's scalar repeat channel
 *   t = L+1 .. L+nL   input 0; target bits x_{(t-L-1) mod L}, channel W 0
 *   t = T-1           input 0; target the end marker: channel W = 1, bits 0
 *   mask 1 for t >= L+1 (the n L copies and the end marker).
 *
 * Associative recall (k items in [min_items, max_items], k >= 2, each item
 * `item_len` vectors of W bits):
 *   in = W + 2, out = W, T = k (item_len + 1) + item_len + 2 + item_len.
 *   item i = 0 .. k-1: one step with channel W = 1 (item delimiter), then
 *                      its item_len bit vectors
 *   the query: channel W + 1 = 1 (query delimiter), the item_len vectors of
 *              item q (q uniform in [0, k-2]), channel W + 1 = 1 again
 *   output phase (last item_len steps): input 0, target the vectors of
 *              item q + 1, mask 1.
 *
 * Errors (cx_fatal naming the argument): NULL rng or opts, batch < 1,
 * bits < 1, lengths / counts < 1 (items < 2) or min > max, and batches
 * whose T * B * in exceeds 2^28 floats.
 */
#ifndef CORTEX_SEQTASKS_H
#define CORTEX_SEQTASKS_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CX_SEQTASK_COPY = 0, CX_SEQTASK_REPEAT = 1, CX_SEQTASK_RECALL = 2 } cx_seqtask_kind;

typedef struct cx_seqtask_opts {
    cx_seqtask_kind kind;
    int bits;                 /* W: width of a vector (8 in the paper) */
    int min_len, max_len;     /* copy / repeat: sequence length L range (inclusive) */
    int min_rep, max_rep;     /* repeat: repeat count range */
    int min_items, max_items; /* recall: number of items (>= 2) */
    int item_len;             /* recall: vectors per item (3 in the paper) */
} cx_seqtask_opts;

/* The paper's training distribution of each task: copy W 8, L 1..20;
 * repeat W 8, L 1..10, n 1..10; recall W 6, items 2..6 of 3 vectors. */
cx_seqtask_opts cx_seqtask_defaults(cx_seqtask_kind kind);
/* "copy", "repeat", "recall" (parse returns false for anything else). */
const char *cx_seqtask_name(cx_seqtask_kind kind);
bool cx_seqtask_parse(const char *name, cx_seqtask_kind *out);
/* Channel counts of the input and the target for these options. */
int cx_seqtask_input_size(const cx_seqtask_opts *o);
int cx_seqtask_output_size(const cx_seqtask_opts *o);

/* One batch (see the top of this file). */
typedef struct cx_seqtask_batch {
    cx_tensor *input;   /* [T, B, in] */
    cx_tensor *target;  /* [T, B, out] */
    cx_tensor *mask;    /* [T, B] */
    int T, B;
    int len;            /* copy / repeat: L; recall: item count k */
    int reps;           /* repeat: n; otherwise 0 */
} cx_seqtask_batch;

/* Draw a batch of B sequences from `rng` (sizes drawn once for the batch). */
cx_seqtask_batch cx_seqtask_sample(cx_rng *rng, int B, const cx_seqtask_opts *o);
/* The same with the sizes given instead of drawn (the evaluation of a
 * trained model at one length): len = L (copy, repeat) or k (recall), reps
 * = n (repeat; ignored otherwise). The ranges of `o` are not checked
 * against them, so lengths beyond the training range are allowed. */
cx_seqtask_batch cx_seqtask_sample_fixed(cx_rng *rng, int B, const cx_seqtask_opts *o, int len, int reps);

/* Bits wrong: the number of scored target bits (mask != 0) where the
 * thresholded prediction (logit > 0, i.e. sigmoid > 0.5) differs from the
 * target (> 0.5), summed over the batch. logits and target [T, B, out],
 * mask [T, B]. Divide by B for the paper's "bits wrong per sequence". */
long cx_seqtask_bits_wrong(const cx_tensor *logits, const cx_tensor *target, const cx_tensor *mask);
/* The masked binary cross-entropy: sum over scored steps and every output
 * channel of BCE(sigmoid(logits), target), divided by (scored steps * out),
 * i.e. the mean per scored bit (differentiable in logits; 0 when nothing
 * is scored). */
cx_tensor *cx_seqtask_loss(cx_tensor *logits, const cx_tensor *target, const cx_tensor *mask);

#ifdef __cplusplus
}
#endif
#endif
