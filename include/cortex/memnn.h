/*
 * cortex/memnn.h -- the memory network with strong supervision (Weston,
 * Chopra & Bordes 2014): I, G, O, R with supervised supporting facts.
 *
 *   I  the question and each statement as bags of words;
 *   G  every statement is written to the next memory slot (the bAbI tensors
 *      of cortex/babi.h: memory [B, M, L], oldest fact in row 0);
 *   O  `hops` supporting facts found one after the other, each the argmax
 *      over the memories of s_O(x, m) = Phi_in . Phi_mem(m), with Phi_in =
 *      U_O-embedding of the question plus the facts found so far;
 *   R  the answer word, the argmax over the vocabulary of
 *      s_R = (U_R-embedding of the question and the found facts) . U_R(w).
 *
 * Embeddings are sums of rows of one table per module (the paper's U^T U
 * with a feature space of several copies of the vocabulary, written as
 * lookups): S = 2 + hops slots of V rows each: question words slot 0,
 * candidate memories slot 1 (in O) and answer words slot 1 (in R), the fact
 * found at hop h slot 2 + h (so R can tell the first fact's words from the
 * second's; the paper's 3|W| space shares one slot for all found facts).
 * Time: each candidate memory also gets a learned row for its age (how many
 * facts are newer) and, from the second hop on, one for its position
 * relative to the previously found fact. This stands in for the paper's
 * pairwise "is y newer than y'" features (the same information, linear in
 * the memories instead of a tournament over pairs).
 *
 * Training is the paper's: margin ranking losses with the true supporting
 * facts fed to the next hop (the scores of every other memory must be at
 * least `margin` below the true fact's; the same for every other answer
 * word): per hop and for the answer, the sum over the wrong candidates of
 * max(0, margin - s_true + s_other) (PyTorch's multi_margin_loss times the
 * candidate count), averaged over the batch, hop losses and the answer loss
 * summed. Empty slots and the padding word are never candidates.
 * Parameters (state_dict names): "O.weight" [S V + 3M + 1 (+ S V^2), dim]
 * and "R.weight" [S V (+ S V^2), dim] (time rows after the words in O, the
 * bigram rows last).
 */
#ifndef CORTEX_MEMNN_H
#define CORTEX_MEMNN_H

#include "core.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_memnn {
    cx_module *root;
    int vocab, dim, hops, memory;
    bool bigrams;
} cx_memnn;

#define CX_MEMNN_BIGRAM_MAX_VOCAB 200

/* vocab V (word 0 = padding), embedding dim, hops (supporting facts found
 * per question, 1..3), memory M (slots), bigrams: also a feature for every
 * pair of adjacent words (the paper's bag of words cannot tell "the kitchen
 * is north of the office" from "the office is north of the kitchen"; the
 * bAbI paper's MemNN adds n-grams for that); weights N(0, 0.1^2) from rng.
 * Errors (NULL + cx_last_error): a size out of range, V above
 * CX_MEMNN_BIGRAM_MAX_VOCAB with bigrams. */
cx_memnn *cx_memnn_new(int vocab, int dim, int hops, int memory, bool bigrams, cx_rng *rng);
void cx_memnn_free(cx_memnn *m);    /* NULL is fine */

/* The training loss of a batch: memory I32 [B, M, L] (M = the model's
 * memory; a row of zeros is an empty slot), query I32 [B, Lq], support
 * [B * hops] the memory rows of the supporting facts in the order they are
 * used (a question with fewer facts than hops repeats its last one),
 * answer I32 [B] (word ids), margin > 0. Errors (cx_fatal naming the
 * argument): shapes, word ids outside [0, V), a supporting row outside the
 * memory or on an empty slot. */
cx_tensor *cx_memnn_loss(cx_memnn *m, const cx_tensor *memory, const cx_tensor *query, const int *support,
                         const cx_tensor *answer, float margin);
/* Inference (no graph): answer[b] the predicted word, facts[b * hops + h]
 * the memory row found at hop h (facts may be NULL). */
void cx_memnn_predict(cx_memnn *m, const cx_tensor *memory, const cx_tensor *query, int *answer, int *facts);

#ifdef __cplusplus
}
#endif
#endif
