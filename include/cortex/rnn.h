/* cortex/rnn.h -- recurrent cells and layers (vanilla RNN, LSTM, GRU). See cortex.h.
 *
 * Formulas, gate orders, weight layouts and parameter names are PyTorch's
 * (torch.nn.RNN / LSTM / GRU and their *Cell versions), so a state_dict moves
 * between the two by name:
 *
 *   RNN   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)         act = tanh or relu
 *         W_ih [H, I], W_hh [H, H], b_ih [H], b_hh [H]
 *   LSTM  rows of W_ih [4H, I] / W_hh [4H, H] / biases [4H] are the gates i, f, g, o:
 *         i = s(.), f = s(.), g = tanh(.), o = s(.)   (s = sigmoid; "." = x W^T + b_i + h U^T + b_h
 *         of that gate's rows)
 *         c' = f * c + i * g,   h' = o * tanh(c')
 *   GRU   rows are the gates r, z, n (W_ih [3H, I], W_hh [3H, H]):
 *         r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz)
 *         n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h
 *
 * LSTM variants of the notes (no PyTorch counterpart; gradient-checked only):
 *   peephole   (Gers & Schmidhuber) diagonal weights P: the input and forget
 *              gates see the previous cell, the output gate the new one:
 *                i = s(a_i + p_i * c), f = s(a_f + p_f * c), g = tanh(a_g),
 *                c' = f * c + i * g,   o = s(a_o + p_o * c'),  h' = o * tanh(c')
 *              P is [3, H] with rows p_i, p_f, p_o.
 *   coupled    input and forget gates coupled: i = 1 - f, so the gate rows
 *              are f, g, o only (W_ih [3H, I], W_hh [3H, H], biases [3H]):
 *                c' = f * c + (1 - f) * g
 *              With peephole too, P is [2, H] with rows p_f, p_o.
 *
 * Layout: sequences are time-major, x [T, B, I] (the modules also take
 * batch_first [B, T, I], and unbatched [T, I] input). Every tensor must be F32.
 *
 * How the ops are built (one graph node per op): a sequence op computes the
 * input projections of all T steps with one GEMM ([T*B, I] x W_ih^T, cx_sgemm),
 * then per step one product h W_hh^T (a register-blocked kernel over W_hh
 * packed once per pass, since cx_sgemm would repack it every step) and one
 * fused elementwise gate kernel; its backward runs BPTT in reverse (one such
 * product per step for dh) and ends with one big cx_sgemm each for dW_ih, dX
 * and dW_hh, accumulated straight into the grads. Results are bit-identical
 * for any thread count. Each op is one graph node with several outputs
 * (output, h_n and, for LSTM, c_n: views of the node's state buffer, no
 * copies), differentiable with respect to x, the initial states, every
 * weight, bias and peephole.
 *
 * Truncated BPTT: to cut the graph between chunks of a long stream, pass
 * detached states to the next chunk, e.g. h0 = cx_detach(prev.h) (and
 * c0 = cx_detach(prev.c)); the chunks then backpropagate independently.
 * cx_detach shares the data, which lives in the current arena: when the
 * arena is reset between chunks (cx_step_reset), copy the state out first
 * (cx_tensor_clone) and pass the copy as h0 / c0 of the next chunk.
 */
#ifndef CORTEX_RNN_H
#define CORTEX_RNN_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CX_RNN_TANH = 0, /* vanilla RNN, tanh */
    CX_RNN_RELU = 1, /* vanilla RNN, relu */
    CX_RNN_LSTM = 2,
    CX_RNN_GRU = 3
} cx_rnn_mode;

/* Results of a recurrent op or module. For a cell: output == h == h'.
 * For a sequence op: output [T, B, H] (all hidden states in time order, also
 * for a reverse pass), h the final state [B, H] (time T-1 forward, time 0
 * reverse), c the final cell state [B, H] (LSTM; NULL otherwise).
 * For a module (cx_rnn_forward): output [T, B, D*H] (or [B, T, D*H] with
 * batch_first), h [num_layers*D, B, H], c likewise (LSTM) in PyTorch's order
 * (layer 0 forward, layer 0 reverse, layer 1 forward, ...). */
typedef struct cx_rnn_out {
    cx_tensor *output, *h, *c;
} cx_rnn_out;

/* ---- single-step cells: x [B, I], h, c [B, H]; h / c may be NULL (zeros).
 * Biases may be NULL (bias=False). */
/* RNN cell: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act tanh or relu. */
cx_tensor *cx_rnn_cell(cx_tensor *x, cx_tensor *h, cx_tensor *w_ih, cx_tensor *w_hh,
                       cx_tensor *b_ih, cx_tensor *b_hh, bool relu);
/* LSTM cell: returns {h', h', c'}. */
cx_rnn_out cx_lstm_cell(cx_tensor *x, cx_tensor *h, cx_tensor *c, cx_tensor *w_ih,
                        cx_tensor *w_hh, cx_tensor *b_ih, cx_tensor *b_hh);
/* LSTM cell variants: peephole [3, H] (or [2, H] when coupled; NULL = none),
 * coupled input-forget gate (weights [3H, .] with rows f, g, o). */
cx_rnn_out cx_lstm_cell_ex(cx_tensor *x, cx_tensor *h, cx_tensor *c, cx_tensor *w_ih,
                           cx_tensor *w_hh, cx_tensor *b_ih, cx_tensor *b_hh,
                           cx_tensor *peephole, bool coupled);
/* GRU cell (PyTorch GRUCell). */
cx_tensor *cx_gru_cell(cx_tensor *x, cx_tensor *h, cx_tensor *w_ih, cx_tensor *w_hh,
                       cx_tensor *b_ih, cx_tensor *b_hh);

/* ---- one layer over a whole sequence, one direction (fused op).
 * x [T, B, I] time-major; h0, c0 [B, H] or NULL (zeros; c0 is LSTM only).
 * reverse: run from time T-1 down to 0 (the second direction of a
 * bidirectional layer); output stays in time order. */
cx_rnn_out cx_rnn_seq(cx_rnn_mode mode, cx_tensor *x, cx_tensor *h0, cx_tensor *c0,
                      cx_tensor *w_ih, cx_tensor *w_hh, cx_tensor *b_ih, cx_tensor *b_hh,
                      bool reverse);
/* LSTM layer with the variants (see cx_lstm_cell_ex). */
cx_rnn_out cx_lstm_seq_ex(cx_tensor *x, cx_tensor *h0, cx_tensor *c0, cx_tensor *w_ih,
                          cx_tensor *w_hh, cx_tensor *b_ih, cx_tensor *b_hh,
                          cx_tensor *peephole, bool coupled, bool reverse);

/* ---- PixelRNN (van den Oord et al. 2016): the Row LSTM and a small model
 * for binary images. Composed of differentiable ops (see conv.h's masked
 * convolutions); every tensor F32.
 *
 * Row LSTM over an image x [N, C, H, W], hidden size h, kernel width k (odd),
 * rows processed top to bottom, a whole row per step:
 *   input-to-state  S = masked_conv2d(x, w_is, b_is, mask B), w_is [4h, C, 1, k]:
 *                   the gates of every row at once, each pixel seeing the
 *                   input at columns c - k/2 .. c of its own row;
 *   state-to-state  a_r = S[:, :, r, :] + conv1d(h_{r-1}, w_ss, b_ss, pad k/2),
 *                   w_ss [4h, h, k] (h_{-1} = c_{-1} = 0);
 *   gates (rows of the 4h in PyTorch's LSTM order i, f, g, o):
 *                   c_r = s(f) * c_{r-1} + s(i) * tanh(g),  h_r = s(o) * tanh(c_r).
 * Returns h [N, h, H, W]. b_is / b_ss may be NULL. Errors name the shapes. */
cx_tensor *cx_row_lstm(cx_tensor *x, cx_tensor *w_is, cx_tensor *b_is, cx_tensor *w_ss, cx_tensor *b_ss);
/* Row LSTM module: parameters "weight_is" [4h, in, 1, k], "bias_is" [4h],
 * "weight_ss" [4h, h, k], "bias_ss" [4h]; weights and bias_is drawn from
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (fan_in = in*k, h*k), the forget-gate
 * rows of bias_is set to 1, bias_ss zero. forward(x) = h. */
cx_module *cx_row_lstm_new(int in_channels, int hidden, int k);
/* A Row-LSTM PixelRNN for binary images x [N, 1, H, W] (values 0 / 1):
 *   conv_in  masked conv 7x7, mask A, 1 -> hidden
 *   per layer l: z = z + res{l}(row{l}(z))   (Row LSTM k=3, then a 1x1 mask-B conv)
 *   out1     1x1 mask-B conv hidden -> hidden on relu(z), out2 1x1 hidden -> 1 on relu(.)
 * forward(x) = the logits [N, 1, H, W] of p(x[r, c] = 1 | pixels before (r, c)
 * in raster order). */
cx_module *cx_pixelrnn_new(int hidden, int layers);
/* Negative log-likelihood in nats per image (sum over pixels, mean over the
 * batch) of binary images x [N, 1, H, W]: sum BCE(logits, x) / N.
 * Bits per dimension = nll / (H * W * ln 2). */
cx_tensor *cx_pixelrnn_nll(cx_module *m, cx_tensor *x);
/* Ancestral sampling in place: the pixels of img (F32 [N, 1, H, W]) at raster
 * index start .. H*W-1 are drawn one at a time, each from the model given all
 * pixels before it (start = 0: new images; start = H/2*W: the bottom half
 * completed given the top half). Draws from rng; no gradient; uses a private
 * arena (the caller's arena is untouched). */
void cx_pixelrnn_sample(cx_module *m, cx_tensor *img, int start, cx_rng *rng);

/* ---- modules */
typedef struct cx_rnn_opts {
    int num_layers;        /* stacked layers (>= 1) */
    bool bidirectional;    /* D = 2: a reverse pass per layer, outputs concatenated */
    bool bias;             /* b_ih and b_hh (PyTorch bias=True) */
    bool batch_first;      /* input / output [B, T, .] (h0, h_n stay [L*D, B, H]) */
    bool relu;             /* RNN only: nonlinearity='relu' instead of tanh */
    float dropout;         /* dropout on the outputs of every layer but the last
                              (training mode only), as PyTorch's `dropout` */
    /* initialisation beyond PyTorch's default U(-1/sqrt(H), 1/sqrt(H)) of everything: */
    bool orthogonal;       /* each gate block [H, H] of weight_hh: cx_init_orthogonal(gain 1) */
    bool set_forget_bias;  /* LSTM: forget-gate rows of bias_ih = forget_bias and of */
    float forget_bias;     /*   bias_hh = 0 (their sum, the effective bias, = forget_bias) */
    /* LSTM variants (see the top of this file); parameter "peephole_l0" [3, H]
     * ([2, H] when coupled) per layer and direction, named like the weights. */
    bool peephole;
    bool coupled;
} cx_rnn_opts;

/* PyTorch's defaults: 1 layer, unidirectional, bias, time-major, tanh. */
cx_rnn_opts cx_rnn_defaults(void);

/* Sequence modules, parameters named and shaped as PyTorch's state_dict:
 *   weight_ih_l{k}[_reverse] [G*H, I] (layer 0) or [G*H, D*H] (layer k > 0),
 *   weight_hh_l{k}[_reverse] [G*H, H], bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] [G*H]
 * with G = 1 (RNN), 4 (LSTM; 3 when coupled), 3 (GRU), in PyTorch's order
 * (per layer: forward then reverse; per direction: weight_ih, weight_hh,
 * bias_ih, bias_hh, then peephole). opt NULL: cx_rnn_defaults(). Every
 * parameter is drawn from U(-1/sqrt(H), 1/sqrt(H)) as PyTorch does.
 * cx_module_forward(m, x) returns the output only; use cx_rnn_forward for
 * the states. */
cx_module *cx_rnn_new(int input_size, int hidden_size, const cx_rnn_opts *opt);
cx_module *cx_lstm_new(int input_size, int hidden_size, const cx_rnn_opts *opt);
cx_module *cx_gru_new(int input_size, int hidden_size, const cx_rnn_opts *opt);

/* Cell modules with PyTorch's *Cell names: weight_ih [G*H, I], weight_hh
 * [G*H, H], bias_ih, bias_hh [G*H]. opt: bias, relu (RNN cell), orthogonal,
 * set_forget_bias/forget_bias, peephole ("peephole" [3, H]) and coupled (LSTM
 * cell); the sequence options are ignored. cx_module_forward(m, x) steps
 * from a zero state and returns h'. */
cx_module *cx_rnn_cell_new(int input_size, int hidden_size, const cx_rnn_opts *opt);
cx_module *cx_lstm_cell_new(int input_size, int hidden_size, const cx_rnn_opts *opt);
cx_module *cx_gru_cell_new(int input_size, int hidden_size, const cx_rnn_opts *opt);

/* Run a recurrent module (sequence or cell).
 * Sequence module: x [T, B, I] ([B, T, I] with batch_first, or unbatched
 * [T, I]); h0, c0 [num_layers*D, B, H] ([num_layers*D, H] unbatched) or NULL
 * (zeros); c0 only for LSTM. Returns output and the final states h_n, c_n.
 * Cell module: x [B, I], h, c [B, H] or NULL; returns {h', h', c'}.
 * For truncated BPTT pass cx_detach()ed states of the previous chunk. */
cx_rnn_out cx_rnn_forward(cx_module *m, cx_tensor *x, cx_tensor *h0, cx_tensor *c0);

/* ---- child-sum Tree-LSTM (Tai, Socher & Manning 2015, section 3.1)
 * For node j with input x_j and children C(j) (h~_j = sum_k h_k):
 *   i_j  = s(W_i x_j + U_i h~_j + b_i)        f_jk = s(W_f x_j + U_f h_k + b_f)  per child k
 *   u_j  = tanh(W_u x_j + U_u h~_j + b_u)     o_j  = s(W_o x_j + U_o h~_j + b_o)
 *   c_j  = i_j * u_j + sum_k f_jk * c_k,      h_j  = o_j * tanh(c_j)
 * (a leaf has h~ = 0 and no cell term). The weights are laid out as
 * PyTorch's LSTMCell: W_ih [4H, I] and W_hh [4H, H] with row blocks i, f, u, o
 * (LSTM's i, f, g, o), biases b_ih, b_hh [4H] (b = b_ih + b_hh). So a chain of
 * single children is exactly an LSTM over the chain, leaf first, with the
 * same parameters.
 *
 * A batch of trees (a forest) of n nodes is given by child lists in
 * compressed form: the children of node j are child_idx[child_ptr[j] ..
 * child_ptr[j+1] - 1] (child_ptr[0] = 0, non-decreasing, n + 1 entries; the
 * order of the children does not matter). Nodes without a parent are the
 * roots, one per tree, in increasing node order. Nodes may be numbered in any
 * order. The forward runs level by level, a node's level being its height
 * (leaves 0, else 1 + the largest height of its children): all nodes of one
 * level, across every tree of the batch, go through one GEMM for the h~ term
 * and one for the per-child forget gates; the input projection of all n
 * nodes is one GEMM. It is built from the autograd ops (index_select, matmul,
 * spmm, the gates), so it is differentiable in x and every weight and bias.
 *
 * cx_tree_batch_new checks the description and is fatal, naming the nodes,
 * for a child index outside 0 .. n-1, a node listed as a child twice (two
 * parents, or twice under one), a cycle (no root above a node, a node its own
 * child), or child_ptr out of order. The batch is heap-owned by the caller
 * (cx_tree_batch_free); a forward keeps pointers into it until backward, so
 * free it after the step. */
typedef struct cx_tree_batch cx_tree_batch;
cx_tree_batch *cx_tree_batch_new(int n, const int32_t *child_ptr, const int32_t *child_idx);
/* The same from a parent array: parent[j] is j's parent, -1 for a root
 * (children in increasing node order). Fatal for a parent outside -1 .. n-1
 * and for cycles. */
cx_tree_batch *cx_tree_batch_from_parents(int n, const int32_t *parent);
void cx_tree_batch_free(cx_tree_batch *t);
int cx_tree_batch_nodes(const cx_tree_batch *t);
int cx_tree_batch_num_roots(const cx_tree_batch *t);
const int32_t *cx_tree_batch_roots(const cx_tree_batch *t);   /* num_roots node indices */
int cx_tree_batch_levels(const cx_tree_batch *t);              /* 1 + the largest height */
int cx_tree_batch_height(const cx_tree_batch *t, int node);    /* 0 for a leaf */

/* The Tree-LSTM over a batch of trees: x [n, I] the node inputs (row j for
 * node j); b_ih / b_hh may be NULL. Returns output [n, H] (h of every node,
 * node order), h [R, H] and c [R, H] (the roots' states, in
 * cx_tree_batch_roots order). */
cx_rnn_out cx_treelstm(const cx_tree_batch *t, cx_tensor *x, cx_tensor *w_ih, cx_tensor *w_hh,
                       cx_tensor *b_ih, cx_tensor *b_hh);
/* Module with the parameters of LSTMCell: weight_ih [4H, I], weight_hh
 * [4H, H], bias_ih, bias_hh [4H] (bias false: none), all drawn from
 * U(-1/sqrt(H), 1/sqrt(H)). cx_module_forward cannot supply the trees and is
 * fatal; use cx_treelstm_forward. */
cx_module *cx_treelstm_new(int input_size, int hidden_size, bool bias);
cx_rnn_out cx_treelstm_forward(cx_module *m, const cx_tree_batch *t, cx_tensor *x);

/* Introspection: the mode, hidden size, number of layers and directions. */
cx_rnn_mode cx_rnn_module_mode(const cx_module *m);
int cx_rnn_hidden_size(const cx_module *m);
int cx_rnn_num_layers(const cx_module *m);   /* 1 for a cell */
int cx_rnn_num_directions(const cx_module *m);

#ifdef __cplusplus
}
#endif
#endif
