/* cortex/transformer.h -- a decoder-only Transformer language model (GPT
 * style, pre-norm), its block, and incremental decoding with a key/value
 * cache. See cortex.h; the char-LM layer (cortex/charlm.h) trains, saves,
 * loads and samples it like the LSTM.
 *
 *   cx_tlm_config cfg = cx_tlm_defaults(voc->size);   // 4 layers, E 256, 4 heads, context 128
 *   cfg.dropout = 0.1f;  cfg.tie = true;
 *   cx_module *lm = cx_tlm_new(&cfg);
 *   cx_tensor *logits = cx_tlm_forward(lm, x);         // x I32 [T, B], T <= context
 *   cx_tensor *loss = cx_seq_cross_entropy(logits, y, NULL, false, CX_REDUCE_MEAN);
 *
 * The model (x: ids [T, B], time-major like the LSTM's; every T*B row is one
 * GEMM row, no per-token loop):
 *   h = Dropout(tok_emb[x] + pos_emb[0 .. T-1])                    [T, B, E]
 *   N times (a block, pre-norm):
 *     h = h + Dropout(MHA_causal(LN1(h)))                          self-attention
 *     h = h + Dropout(fc2(GELU(fc1(LN2(h)))))                      feed-forward, F hidden
 *   logits = head(LN_f(h))                                         [T, B, V]
 * with learned positions (an Embedding of `context` rows: a sequence may be
 * at most `context` long), causal multi-head attention (the fused op of
 * cortex/attention.h: position t sees positions 0..t of its own sequence,
 * nothing else), the exact (erf) GELU, LayerNorm eps 1e-5, dropout p on the
 * embeddings and on both residual branches and attn_dropout on the attention
 * weights (training mode only, cx_set_training). With tie, head.weight IS
 * tok_emb.weight (cx_module_tie: one tensor, its gradient the sum of both
 * uses, saved once); head.bias stays its own.
 *
 * Parameters are named as the state_dict of the PyTorch reference module
 * (tools/gen_transformer_fixtures.py, class TransformerLM: nn.Embedding,
 * nn.MultiheadAttention without batch_first, nn.LayerNorm, nn.Linear):
 *   tok_emb.weight [V, E], pos_emb.weight [context, E],
 *   blocks.<i>.ln1.weight / .bias [E],
 *   blocks.<i>.attn.in_proj_weight [3E, E], blocks.<i>.attn.in_proj_bias [3E],
 *   blocks.<i>.attn.out_proj.weight [E, E], blocks.<i>.attn.out_proj.bias [E],
 *   blocks.<i>.ln2.weight / .bias [E],
 *   blocks.<i>.fc1.weight [F, E], .bias [F], blocks.<i>.fc2.weight [E, F], .bias [E],
 *   ln_f.weight / .bias [E], head.weight [V, E] (absent from Cortex's files when
 *   tied: it is tok_emb.weight; PyTorch's state_dict holds both names, and both
 *   load), head.bias [V].
 * Initialisation (GPT-2's, as the reference's _init_weights): every Linear
 * and Embedding weight and in_proj_weight N(0, 0.02); the two projections
 * that end a residual branch (attn.out_proj.weight, fc2.weight)
 * N(0, 0.02 / sqrt(2 N)); every bias 0; LayerNorm weight 1, bias 0. Drawn
 * from the current random stream in registration order.
 */
#ifndef CORTEX_TRANSFORMER_H
#define CORTEX_TRANSFORMER_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_tlm_config {
    int vocab;          /* V: token ids (<unk> included), >= 2 */
    int context;        /* most positions a sequence may have (pos_emb rows), >= 1 */
    int embed;          /* E, divisible by heads */
    int layers;         /* N blocks, >= 1 */
    int heads;          /* H attention heads, >= 1 */
    int ffn;            /* F: hidden size of the feed-forward; 0 means 4 E */
    float dropout;      /* embeddings and residual branches, [0, 1) */
    float attn_dropout; /* attention weights, [0, 1) */
    bool tie;           /* head.weight tied to tok_emb.weight */
} cx_tlm_config;

/* vocab V, context 128, embed 256, 4 layers, 4 heads, ffn 0 (= 4 E = 1024), no
 * dropout, untied. */
cx_tlm_config cx_tlm_defaults(int vocab);

/* New model (kind "TransformerLM"), parameters drawn from the current random
 * stream (init above). Errors (fatal, naming the field and its value): vocab
 * < 2, context / embed / layers / heads < 1, embed not divisible by heads,
 * ffn < 0, dropout or attn_dropout outside [0, 1), sizes whose tensors would
 * overflow. cx_module_forward(m, x) is cx_tlm_forward; free with
 * cx_module_free. */
cx_module *cx_tlm_new(const cx_tlm_config *cfg);
/* True when m is a model made by cx_tlm_new (or loaded). */
bool cx_tlm_is(const cx_module *m);
/* The configuration (ffn resolved: never 0). Fatal if m is not a TransformerLM. */
cx_tlm_config cx_tlm_get_config(const cx_module *m);

/* Logits [T, B, V] of ids x I32/I64 [T, B] (every id in [0, V)), each column
 * b one sequence, positions 0 .. T-1. Differentiable in every parameter; the
 * intermediates live in the current arena. Errors (fatal): x not an I32/I64
 * [T, B] tensor, T > context ("sequence length 300 exceeds the context 256"),
 * T or B zero, an id out of range. */
cx_tensor *cx_tlm_forward(cx_module *m, const cx_tensor *x);

/* The i-th block (0-based; a "TransformerBlock" module owned by the model),
 * fatal outside [0, layers). */
cx_module *cx_tlm_block(cx_module *m, int i);

/* One pre-norm block on its own (kind "TransformerBlock", the model's
 * blocks.<i>): children ln1 (LayerNorm), attn (MultiheadAttention, causal,
 * sequence-first), ln2, fc1 (Linear E -> ffn), fc2 (Linear ffn -> E), init
 * as above for a model of `layers` blocks (the residual projections get
 * 0.02 / sqrt(2 layers)). cx_module_forward(b, x): x [T, B, E] -> [T, B, E],
 *   x + Dropout(MHA(LN1(x))), then + Dropout(fc2(GELU(fc1(LN2(x))))).
 * Errors: as cx_tlm_new for embed, heads, ffn (0: 4 embed), layers, dropout,
 * attn_dropout; an input that is not [T, B, embed]. */
cx_module *cx_tlm_block_new(int embed, int heads, int ffn, int layers, float dropout, float attn_dropout);

/* ---- incremental decoding with a key/value cache
 * A decoding state holds the window of the last <= context tokens and, per
 * layer, the keys and values of its positions. A step appends one token:
 * while the window is shorter than the context, only that token's row is
 * computed (its query attends to the cached keys and values: O(context E)
 * per layer instead of a full pass); once the window is full it slides by
 * one, the positions of every token change, and the window is recomputed in
 * one batched pass (context rows). Either way the logits are those of
 * cx_tlm_forward on the window at its last position (eval mode: no dropout).
 * Scratch memory comes from the current arena (reset it between steps, as
 * the char-LM decoder adaptor does). A state is a plain blob: copy it with
 * cx_tlm_state_copy (only the used rows) or memcpy. */
/* Bytes of one state: 16 + 4 * context (tokens) + 8 * layers * context * E. */
size_t cx_tlm_state_bytes(const cx_module *m);
/* Run ids[0 .. n-1] (n >= 0, every id in [0, V), fatal otherwise) into state
 * from the empty window: the window is the last min(n, context) of them,
 * computed in one pass. logits (may be NULL) receives the V logits of the
 * next token when n > 0 (untouched when n == 0). */
void cx_tlm_prime(cx_module *m, const int32_t *ids, int n, void *state, float *logits);
/* Append `token` to the window of state_in, write the new state to state_out
 * (may equal state_in) and the V logits of the next token to logits. A
 * zeroed state (calloc) is the empty window, as cx_tlm_prime with n = 0.
 * Errors (returned, state_out and logits unspecified): CX_ERR_ARG for a token
 * outside [0, V) or a state that was not made for this model (its header
 * does not match) -- message naming it. */
cx_status cx_tlm_step(cx_module *m, const void *state_in, void *state_out, int token, float *logits);
/* Copy a state (the header, the tokens and the cached rows in use). */
void cx_tlm_state_copy(const cx_module *m, void *dst, const void *src);
/* Tokens in the window of a state (0 .. context). */
int cx_tlm_state_len(const void *state);

#ifdef __cplusplus
}
#endif
#endif
