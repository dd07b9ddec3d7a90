/* cortex/charlm.h -- character-level language models (the course's case
 * study): embedding -> multi-layer LSTM -> linear, or the decoder-only
 * Transformer of cortex/transformer.h. Include <cortex/charlm.h> (after or
 * instead of <cortex.h>).
 *
 *   cx_charlm_config cfg = cx_charlm_defaults(voc->size);  // 2 x 256 LSTM, embed 64
 *   cx_module *lm = cx_charlm_new(&cfg);
 *   cx_tensor *h = NULL, *c = NULL;                          // carried states (persistent)
 *   while (cx_bptt_next(ld, &x, &y)) {                       // x, y I32 [T, B]
 *       cx_charlm_out o = cx_charlm_forward(lm, x, h, c);    // logits [T, B, V]
 *       cx_tensor *loss = cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN);
 *       cx_backward(loss); ... optimiser step ...
 *       cx_charlm_carry(&h, &c, o);                          // copy out + detach (TBPTT)
 *       cx_step_reset();
 *   }
 *
 * Either architecture. The functions marked [either] below also take a
 * Transformer (cx_tlm_new): cx_charlm_forward gives its logits and no states
 * (a Transformer carries nothing from one chunk to the next: each [T, B]
 * chunk is its own causal context, positions 0 .. T-1), cx_charlm_carry then
 * does nothing, and the same loop trains it; files, loading and the decoder
 * adaptor work for both, so code written for the LSTM (the CLI's train,
 * sample and eval) runs a Transformer unchanged. cx_charlm_arch tells them
 * apart.
 *
 * LSTM parameters are named as the state_dict of the PyTorch module
 *   class CharLM(nn.Module):
 *       def __init__(s, V, E, H, L):
 *           super().__init__(); s.embed = nn.Embedding(V, E)
 *           s.lstm = nn.LSTM(E, H, L); s.fc = nn.Linear(H, V)
 * i.e. "embed.weight" [V, E], "lstm.weight_ih_l0" [4H, E], "lstm.weight_hh_l0"
 * [4H, H], "lstm.bias_ih_l0", "lstm.bias_hh_l0" [4H], ... for every layer,
 * "fc.weight" [V, H], "fc.bias" [V]; every one is initialised as PyTorch does
 * (embedding N(0, 1), LSTM and linear U(-1/sqrt(fan), 1/sqrt(fan))). The
 * Transformer's names: cortex/transformer.h.
 *
 * Model files are safetensors: the parameters under those names, plus
 * metadata
 *   LSTM:        format "pt", cortex.arch "charlm", cortex.charlm.vocab / embed /
 *                hidden / layers (decimal sizes), cortex.charlm.dropout,
 *   Transformer: format "pt", cortex.arch "charlm", cortex.charlm.arch
 *                "transformer", cortex.charlm.vocab / embed / layers / heads /
 *                context / ffn (decimal sizes), cortex.charlm.dropout,
 *                cortex.charlm.attn_dropout, cortex.charlm.tie ("1" or "0"),
 *   and cortex.vocab: the code points of ids 1 .. V-1 as comma-separated
 *   decimals (id 0 is <unk>, see cx_vocab in data.h). A file without
 *   cortex.charlm.arch (or with "lstm") is an LSTM.
 */
#ifndef CORTEX_CHARLM_H
#define CORTEX_CHARLM_H
#include "core.h"
#include "nn.h"
#include "data.h"
#include "decode.h"
#include "transformer.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_charlm_config {
    int vocab;      /* V: number of token ids (<unk> included), >= 2 */
    int embed;      /* E: embedding size */
    int hidden;     /* H: LSTM hidden size */
    int layers;     /* L: stacked LSTM layers */
    float dropout;  /* dropout between LSTM layers (training mode only), [0, 1) */
} cx_charlm_config;

/* vocab V, embed 64, hidden 256, 2 layers, no dropout. */
cx_charlm_config cx_charlm_defaults(int vocab);

/* New model (kind "CharLM"), parameters drawn from the current random stream. Invalid
 * sizes (V < 2, E/H/L < 1, dropout outside [0, 1)) are fatal.
 * cx_module_forward(m, x) takes I32/I64 ids [T, B] and returns the logits
 * [T, B, V] from zero states; free with cx_module_free. */
cx_module *cx_charlm_new(const cx_charlm_config *cfg);
/* The configuration of an LSTM model made by cx_charlm_new / cx_charlm_load
 * (fatal if m is not a CharLM; a Transformer: cx_tlm_get_config). */
cx_charlm_config cx_charlm_get_config(const cx_module *m);
/* The three parts (owned by the model): the Embedding, the LSTM and the
 * Linear module. */
cx_module *cx_charlm_embedding(cx_module *m);
cx_module *cx_charlm_lstm(cx_module *m);
cx_module *cx_charlm_head(cx_module *m);
/* [either] "lstm" for a CharLM, "transformer" for a TransformerLM (fatal for
 * any other module), the value of cortex.charlm.arch. */
const char *cx_charlm_arch(const cx_module *m);

/* Result of a forward pass: logits [T, B, V] and the final states h, c
 * [L, B, H] (differentiable step tensors of the current arena). */
typedef struct cx_charlm_out {
    cx_tensor *logits, *h, *c;
} cx_charlm_out;

/* [either] Forward over a time-major batch of ids x I32/I64 [T, B] (every id
 * in [0, V), fatal otherwise) from the states h0, c0 [L, B, H] (NULL: zeros).
 * One embedding lookup, one fused LSTM op per layer, one linear layer over
 * all T*B positions. A Transformer: cx_tlm_forward(m, x) as the logits, h and
 * c NULL; h0 and c0 must be NULL (fatal otherwise: it has no state). */
cx_charlm_out cx_charlm_forward(cx_module *m, const cx_tensor *x, cx_tensor *h0, cx_tensor *c0);

/* [either] Truncated BPTT: copy the final states of `o` into the persistent
 * tensors *h and *c (allocated [L, B, H] on first use or when the batch size
 * changes; freed with cx_tensor_free by the caller), so they survive
 * cx_step_reset and carry no graph: pass them as h0 / c0 of the next chunk.
 * When o has no states (a Transformer's), *h and *c are left as they are. */
void cx_charlm_carry(cx_tensor **h, cx_tensor **c, cx_charlm_out o);

/* ---- files [either]. Save the model with its vocabulary (v may be NULL: then
 * cortex.vocab is absent and the CLI cannot use the model for text),
 * atomically. extra (may be NULL) adds tensors under their own names (e.g.
 * optimiser state for a checkpoint), meta_keys / meta_values (n_meta >= 0)
 * extra metadata. Errors from cx_st_save (CX_ERR_IO, CX_ERR_ARG). */
/* The metadata cx_charlm_save writes (format, cortex.arch, the sizes and, with
 * v, cortex.vocab) as n (key, value) pairs, for writers that save the model
 * another way (the trainer's checkpoints): init, use md.keys / md.values,
 * free. */
typedef struct cx_charlm_meta {
    int n;
    const char *keys[16], *values[16];
    char num[10][32];  /* the sizes as text */
    char *vocab;       /* the vocabulary as text (owned) */
} cx_charlm_meta;
void cx_charlm_meta_init(cx_charlm_meta *md, cx_module *m, const cx_vocab *v);
void cx_charlm_meta_free(cx_charlm_meta *md);
cx_status cx_charlm_save(const char *path, cx_module *m, const cx_vocab *v, const cx_params *extra,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta);
/* Load a model of either architecture (cortex.charlm.arch), or a checkpoint:
 * tensors other than the model's are ignored. The sizes in the metadata are checked against the stored tensors
 * before anything is allocated, so hostile metadata cannot request huge
 * models. *vocab (vocab may be NULL if not wanted) receives the vocabulary,
 * or NULL when the file has none; it must then have V == vocab size.
 * Errors: those of cx_st_load, CX_ERR_FORMAT (not a charlm file, bad
 * metadata, bad vocabulary), CX_ERR_NOTFOUND / CX_ERR_SHAPE (a tensor is
 * missing or has the wrong shape), each naming the path. *out and *vocab are
 * NULL on error. */
cx_status cx_charlm_load(const char *path, cx_module **out, cx_vocab **vocab);
/* Same from an already loaded safetensors file (cx_st_load of io.h); `path`
 * only names it in messages. */
struct cx_st_file;
cx_status cx_charlm_from_st(const struct cx_st_file *f, const char *path, cx_module **out,
                            cx_vocab **vocab);

/* ---- decoding [either]: an adaptor that lets decode.h's decoders
 * (cx_decode_sample, cx_decode_greedy, cx_beam_search) run the model one
 * character at a time. The state blob is the model's state for one
 * sequence: for the LSTM its recurrent state, h then c, each [L, H] floats
 * (state_bytes = 2 L H sizeof(float)); for the Transformer the window of the
 * last <= context characters with its key/value cache (cx_tlm_step:
 * state_bytes = cx_tlm_state_bytes, copied by dec.copy_state, which copies
 * only the rows in use). Each step runs in no-grad, eval mode (no dropout)
 * inside the adaptor's private arena, which is reset after every step, so
 * decoding of any length uses bounded memory and leaves the caller's arena
 * untouched.
 *
 *   cx_charlm_decoder d;  cx_charlm_decoder_init(&d, lm);
 *   float *st = malloc(d.dec.state_bytes);
 *   cx_charlm_prime(&d, ids, n - 1, st);          // state after all but the last
 *   cx_decode_sample(&d.dec, st, ids[n - 1], -1, 500, 0.8f, 0, out, &len, NULL);
 *   cx_charlm_decoder_free(&d);
 */
typedef struct cx_charlm_decoder {
    cx_decoder dec;     /* pass &d.dec to the decoders; dec.user == this struct */
    cx_module *model;   /* not owned */
    cx_arena *arena;    /* private scratch arena */
    bool ban_unk;       /* set by the caller: the step gives <unk> (id 0) the score
                           -INFINITY, so decoders never emit it (default false) */
} cx_charlm_decoder;
void cx_charlm_decoder_init(cx_charlm_decoder *d, cx_module *model);
void cx_charlm_decoder_free(cx_charlm_decoder *d);
/* Run ids[0 .. n-1] (n >= 0, every id in [0, V)) through the model from the
 * zero state in one batched pass, and write the state after them into state
 * (state_bytes bytes; n == 0 gives the zero / empty state; a Transformer
 * keeps the last `context` of them: cx_tlm_prime). logits (may be NULL) receives the V
 * scores of the next character when n > 0. */
void cx_charlm_prime(cx_charlm_decoder *d, const int32_t *ids, int n, void *state, float *logits);

#ifdef __cplusplus
}
#endif
#endif
