/* cortex/attention.h -- attention: the fused scaled dot-product attention op,
 * Luong (dot, scaled dot, general) and Bahdanau (additive) scores, and the
 * multi-head attention module. See cortex.h.
 *
 * Scaled dot-product attention (one fused op, "attention" in the op table)
 * ------------------------------------------------------------------------
 *   S = scale * q k^T + additive masks      [..., Tq, Tk]
 *   S[i, j] = -inf where a boolean mask, the key padding mask or the causal
 *             flag masks key j for query i
 *   P = softmax(S, over j)                  the attention weights
 *   out = P v                               [..., Tq, dv]
 * with q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv]. The batch dimensions
 * (all but the last two, any number, possibly none) broadcast like
 * torch.matmul's, aligned from the right: [B, H, T, d] with [B, H, T, d], or
 * [B, T, d], or [B, H, Tq, d] against keys [B, 1, Tk, d] shared by the heads.
 * PyTorch: torch.softmax(q @ k.transpose(-2, -1) * scale + mask, -1) @ v; for
 * the default scale and no dropout it is 1.13's
 * F._scaled_dot_product_attention(q, k, v, attn_mask, 0.0, True, causal),
 * whose boolean attn_mask has the OPPOSITE meaning (true = take part; here,
 * as in nn.MultiheadAttention, true = masked out).
 *
 * How it runs: per batch matrix one cx_sgemm for the scores (written straight
 * into the weights output), a masked, numerically stable softmax over each
 * row (max subtracted, sum in double), one cx_sgemm for P v; the batch
 * matrices are split over the OpenMP threads. No operand is copied: a
 * broadcast operand is read in place. The backward is the op's own:
 *   dP = dout v^T + dweights        (the gradient of the weights output, if any)
 *   dv = P^T dout
 *   dS = P * (dP - rowsum(P * dP))  (softmax backward)
 *   dq = scale * dS k,   dk = scale * dS^T q
 * also by cx_sgemm per batch matrix, accumulated into the inputs' gradients.
 * The op has TWO outputs from one graph node: out and the weights; a loss may
 * use both (an attention penalty on the weights) and the gradient of each
 * flows back.
 *
 * Masks (all optional; they are constants: no gradient flows into them)
 *   key_padding_mask  [B, Tk] (or [Tk], for every batch): one row per index of
 *                     the FIRST batch dimension (B of [B, H, T, d] or
 *                     [B, T, d]); I32 / I64: non-zero = key ignored (padding
 *                     of variable-length sources, PyTorch's boolean
 *                     key_padding_mask); F32: added to the scores of that key
 *                     (PyTorch's float key_padding_mask).
 *   attn_mask         [Tq, Tk] (every batch matrix), or [N, Tq, Tk] with N the
 *                     number of batch matrices (B*H for [B, H, T, d]: PyTorch's
 *                     3-D [B*num_heads, L, S]), or with exactly the batch
 *                     dimensions of the output ([B, H, Tq, Tk]). I32 / I64:
 *                     non-zero = not allowed to attend; F32: added to the
 *                     scores (-inf masks; NaN and +inf are refused).
 *   causal            query i attends to keys j <= i only (top-left aligned
 *                     when Tq != Tk: torch.triu(ones(Tq, Tk), 1) as a boolean
 *                     mask, PyTorch's is_causal).
 * A row whose keys are ALL masked (a zero-length source, a query before every
 * allowed key) has a defined result: zero weights and a zero output row, and
 * zero gradients from it (PyTorch 1.13 gives NaN there: the softmax of a row
 * of -inf). Cortex never produces that NaN; check mode stays quiet.
 *
 * Luong scores: dot = scale 1; scaled dot = the default scale; general
 * (bilinear, q W k^T) = cx_general_attention. Bahdanau's additive score:
 * cx_additive_attention.
 *
 * Multi-head attention (torch.nn.MultiheadAttention)
 * --------------------------------------------------
 *   q = query W_q^T + b_q, k = key W_k^T + b_k, v = value W_v^T + b_v
 *   split each into num_heads heads of E / num_heads columns, attention per
 *   head (scale 1/sqrt(E / num_heads)), concatenate the heads, out_proj.
 * Parameters under PyTorch's state_dict names (load them with
 * cx_module_load_state): in_proj_weight [3E, E] (rows W_q, W_k, W_v) when
 * kdim == vdim == E, else q_proj_weight [E, E], k_proj_weight [E, kdim],
 * v_proj_weight [E, vdim]; in_proj_bias [3E] (bias); out_proj.weight [E, E],
 * out_proj.bias [E] (out_proj is a Linear child named "out_proj").
 * Initialisation as PyTorch: xavier_uniform_ on in_proj_weight (or on each
 * of q/k/v_proj_weight), in_proj_bias and out_proj.bias zero, out_proj.weight
 * Linear's default U(-1/sqrt(E), 1/sqrt(E)).
 * The projections are one GEMM each (self-attention: one GEMM with the whole
 * [3E, E] weight), and the fused attention op reads the heads of the
 * projected tensors in place and writes its output in the layout of the
 * input (no per-head copies, no transposes, batch_first or not).
 */
#ifndef CORTEX_ATTENTION_H
#define CORTEX_ATTENTION_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Options of cx_attention (cx_attn_defaults(): no masks, not causal, scale 0
 * = default, no dropout). NULL options mean the defaults. */
typedef struct cx_attn_opts {
    const cx_tensor *key_padding_mask; /* [B, Tk] or [Tk]; see the masks above; NULL: none */
    const cx_tensor *attn_mask;        /* [Tq, Tk], [N, Tq, Tk] or [batch..., Tq, Tk]; NULL: none */
    bool causal;                       /* mask keys j > i */
    float scale;                       /* score scale; 0 or NAN: 1/sqrt(d) (scaled dot product);
                                          1: plain dot product; must be finite */
    float dropout;                     /* dropout probability on the weights, training mode
                                          only (cx_set_training), drawn from the calling
                                          thread's current random stream */
} cx_attn_opts;
cx_attn_opts cx_attn_defaults(void);

/* Scaled dot-product attention (formulas, shapes, masks: top of this file).
 * q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (F32, at least 2-D each).
 * Returns out [batch..., Tq, dv] and, when weights is not NULL, sets *weights
 * to the attention weights [batch..., Tq, Tk] (a second output of the same
 * node: rows sum to 1, or 0 for a fully masked row; with dropout, the weights
 * after dropout, those multiplied with v, as nn.MultiheadAttention returns
 * them). Gradients: q, k, v (whichever require grad; one tensor may be
 * passed as several of them), from out and from the weights.
 * Errors (fatal, naming the argument and the shapes): q, k or v not F32 or
 * not at least 2-D; k's d differs from q's; v's Tk differs from k's; batch
 * dimensions that do not broadcast; a key_padding_mask or attn_mask of
 * another shape or dtype than above; a float mask holding NaN or +inf; a
 * non-finite scale; dropout outside [0, 1]. */
cx_tensor *cx_attention(cx_tensor *q, cx_tensor *k, cx_tensor *v, const cx_attn_opts *opts,
                        cx_tensor **weights);

/* Luong's "general" (bilinear) attention: scores q W k^T, i.e.
 * cx_attention(cx_matmul(q, w), k, v, opts, weights) (a composition: one
 * matmul node and the fused op). q [..., Tq, dq], w [dq, dk], k [..., Tk, dk],
 * v [..., Tk, dv]. The scale follows cx_attention's rule (0: 1/sqrt(dk));
 * Luong's unscaled score is opts.scale = 1. Gradients: q, w, k, v.
 * PyTorch: softmax((q @ w) @ k.transpose(-2, -1) * scale + mask, -1) @ v. */
cx_tensor *cx_general_attention(cx_tensor *q, cx_tensor *w, cx_tensor *k, cx_tensor *v,
                                const cx_attn_opts *opts, cx_tensor **weights);

/* Bahdanau (additive) attention of a decoder state s over encoder states h:
 *   e[b, t] = v . tanh(W1 h[b, t] + W2 s[b])         scores [B, T]
 *   a[b, :] = softmax(e[b, :]) over the unpadded t    weights [B, T]
 *   ctx[b]  = sum_t a[b, t] h[b, t]                   returns ctx [B, Dh]
 * h [B, T, Dh] (batch-major; cx_transpose a time-major [T, B, Dh]), s [B, Ds],
 * w1 [A, Dh], w2 [A, Ds] (Linear layout, no bias), v [A]. key_padding_mask:
 * NULL, or [B, T] (I32 / I64, non-zero = padding; F32 = added to e) as for
 * cx_attention; a sequence with every position padded gets a zero context and
 * zero weights. *weights (when not NULL): a [B, T].
 * Built as a composition of differentiable ops (two linears, a broadcast add,
 * tanh, a linear with v, and the fused attention op for the masked softmax and
 * the weighted sum, which keeps one definition of masking), so every part is
 * a GEMM or one vectorised pass; gradients reach h, s, w1, w2 and v.
 * PyTorch: e = torch.tanh(h @ w1.T + (s @ w2.T)[:, None]) @ v;
 * a = softmax(e.masked_fill(mask, -inf), 1); ctx = (a[:, :, None] * h).sum(1).
 * Errors: shapes other than above (naming the argument). */
cx_tensor *cx_additive_attention(cx_tensor *h, cx_tensor *s, cx_tensor *w1, cx_tensor *w2, cx_tensor *v,
                                 const cx_tensor *key_padding_mask, cx_tensor **weights);
/* The same with the encoder side precomputed: hp = h W1^T [B, T, A] (e.g.
 * cx_linear(h, w1, NULL)), computed once per source sequence and reused at
 * every decoder step, as Bahdanau et al. note (appendix A.1.2), instead of
 * once per step. Gradients reach hp, h, s, w2 and v. Errors: as above, and hp
 * not [B, T, A] with h's B and T. */
cx_tensor *cx_additive_attention_pre(cx_tensor *hp, cx_tensor *h, cx_tensor *s, cx_tensor *w2, cx_tensor *v,
                                     const cx_tensor *key_padding_mask, cx_tensor **weights);

/* ---- hard attention: the glimpse sensor of a recurrent attention model
 * (Mnih et al. 2014): a "retina" of n_scales square patches centred at a
 * location, of sides size, size*scale, size*scale^2, ..., each average-pooled
 * to size x size, so the centre is seen sharply and the surround coarsely.
 * x [B, C, H, W]; loc [B, 2] = (x, y) per image in [-1, 1]: -1 the left / top
 * edge of the image, +1 the right / bottom edge (values outside are allowed:
 * the patch then lies partly or wholly outside). Pixels outside the image
 * count as 0 (zero padding; the average still divides by the full patch).
 * A patch of side n around centre c = (loc + 1) * W / 2 (pixels) covers
 * columns floor(c - n/2 + 0.5) .. + n - 1, and likewise rows.
 * Returns [B, n_scales * C, size, size] (patch j's channels at j*C .. j*C+C-1).
 * Not differentiable: the output is a constant (the locations of hard
 * attention are sampled, and trained with the score-function estimator of
 * cortex/rl.h, not by backpropagation). Errors (fatal, naming the argument):
 * x not F32 [B, C, H, W], loc not F32 [B, 2] or holding a non-finite value,
 * size outside 1..1024, n_scales outside 1..8, scale outside 1..8, a largest
 * patch over 65536 pixels wide. */
cx_tensor *cx_glimpse(const cx_tensor *x, const cx_tensor *loc, int size, int n_scales, int scale);

/* ---- the multi-head attention module */
typedef struct cx_mha_opts {
    float dropout;       /* on the attention weights, training mode only (PyTorch's dropout) */
    bool bias;           /* in_proj_bias and out_proj.bias (default true) */
    bool add_bias_kv;    /* not supported: must be false (refused, naming it) */
    bool add_zero_attn;  /* not supported: must be false */
    int kdim, vdim;      /* feature sizes of key and value; 0: embed_dim */
    bool batch_first;    /* query / key / value / output [B, T, .] instead of [T, B, .] */
    bool causal;         /* every call also masks keys j > i (a decoder's self-attention;
                            PyTorch passes attn_mask = torch.triu(ones(L, S), 1).bool()) */
} cx_mha_opts;
cx_mha_opts cx_mha_defaults(void);

/* torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, kdim=,
 * vdim=, batch_first=) (names, layouts and init: top of this file).
 * Errors: embed_dim or num_heads not positive, embed_dim not divisible by
 * num_heads, kdim / vdim negative, dropout outside [0, 1], add_bias_kv or
 * add_zero_attn set. */
cx_module *cx_multihead_attention_new(int embed_dim, int num_heads, const cx_mha_opts *opts);

/* Multi-head attention forward, torch.nn.MultiheadAttention.forward:
 *   query [Tq, B, E], key [Tk, B, kdim], value [Tk, B, vdim] ([B, T, .] with
 *   batch_first), or unbatched [Tq, E], [Tk, kdim], [Tk, vdim];
 *   key NULL: key = query; value NULL: value = key (self-attention: passing
 *   the same tensor three times takes the one-GEMM in-projection);
 *   key_padding_mask [B, Tk] ([Tk] unbatched) and attn_mask [Tq, Tk] or
 *   [B*num_heads, Tq, Tk]: as cx_attention's masks (I32 / I64 non-zero =
 *   masked, PyTorch's bool True; F32 added), NULL for none.
 * Returns the output ([Tq, B, E] / [B, Tq, E] / [Tq, E]); *out is set to it
 * too when out is not NULL. When need_weights and weights is not NULL,
 * *weights is the attention weights averaged over the heads [B, Tq, Tk]
 * (average_weights) or per head [B, num_heads, Tq, Tk] (unbatched: without
 * B), differentiable; otherwise *weights is NULL. A query whose keys are all
 * masked gets zero weights and the output out_proj.bias (PyTorch 1.13: NaN).
 * Errors (naming the argument and the expected shape): query, key or value
 * of another shape (feature size, batch size, Tk of key and value), masks of
 * another shape or dtype. */
cx_tensor *cx_mha_forward(cx_module *m, cx_tensor *query, cx_tensor *key, cx_tensor *value,
                          const cx_tensor *key_padding_mask, const cx_tensor *attn_mask, bool need_weights,
                          bool average_weights, cx_tensor **out, cx_tensor **weights);
/* The module through cx_module_call: inputs (query, key, value,
 * key_padding_mask, attn_mask), trailing ones may be omitted or NULL;
 * outputs out[0] = the output and, when max_out >= 2, out[1] = the
 * head-averaged weights. */
int cx_mha_embed_dim(const cx_module *m);
int cx_mha_num_heads(const cx_module *m);

#ifdef __cplusplus
}
#endif
#endif
