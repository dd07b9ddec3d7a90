/*
 * cortex/ntm.h -- the Neural Turing Machine (Graves, Wayne & Danihelka 2014)
 * as a module: a controller (LSTM cell or feed-forward layer), R read heads
 * and Wr write heads on an N x W memory, built from the addressing and
 * memory ops of cortex/memory.h. Include <cortex/ntm.h> (after or instead
 * of <cortex.h>). The algorithmic tasks it is trained on: cortex/seqtasks.h.
 *
 *   cx_ntm_config cfg = cx_ntm_defaults(9, 8);      // copy task, 8-bit vectors
 *   cx_module *ntm = cx_ntm_new(&cfg);
 *   cx_seqtask_batch b = cx_seqtask_sample(&rng, 1, &task);
 *   cx_ntm_out o = cx_ntm_forward(ntm, b.input, NULL);  // logits [T, B, 8]
 *   cx_tensor *loss = cx_seqtask_loss(o.logits, b.target, b.mask);
 *   cx_backward(loss); ... clip, optimiser step, cx_step_reset() ...
 *
 * One time step t (B sequences at once; x_t [B, in]; r_i the read vectors
 * of step t-1):
 *   u      = [x_t, r_1, .., r_R]                                [B, in + R W]
 *   LSTM:  (h, c) = LSTMCell(u, (h, c))     feed-forward: h = relu(u C^T + c)
 *   h~     = clamp(h, -clip, clip)   (controller output clipping; clip = 0:
 *            none. The LSTM's h lies in (-1, 1), so it matters for the
 *            feed-forward controller)
 *   each head: p = h~ A^T + a (its own linear layer), split in order
 *            key k = p[0:W] (tanh(.) when key_tanh), beta = softplus(p[W]),
 *            g = sigmoid(p[W+1]), s = softmax(p[W+2 : W+5]) (shifts -1, 0,
 *            +1), gamma = 1 + softplus(p[W+5]), and for a write head also
 *            e = sigmoid(p[W+6 : 2W+6]), a = tanh(p[2W+6 : 3W+6]);
 *            w = cx_ntm_address(M, k, beta, g, w_prev, s, gamma)
 *   reads:  r_i = cx_ntm_read(M, w_i) for every read head, from the memory
 *           before this step's writes (pytorch-ntm's order)
 *   writes: M = cx_ntm_write(M, w_j, e_j, a_j), write heads in order
 *   y_t    = [h~, r_1, .., r_R] F^T + f                       logits [B, out]
 * The outputs are logits: sigmoid(y) are the predicted bits, trained with
 * BCE (cx_seqtask_loss).
 *
 * Initial state (documented choices):
 *   - memory: every cell mem_const (1e-6, "memory initialised to small
 *     constants") or, with learned_memory, a learned parameter
 *     "memory_bias" [N, W] drawn from U(-1/sqrt(N+W), 1/sqrt(N+W)) (as
 *     pytorch-ntm's mem_bias), the same for every sequence;
 *   - weightings: fixed, one-hot on slot 0 for every head (a constant
 *     memory makes content addressing uniform, so the heads need a location
 *     to start from);
 *   - read vectors: learned, "read_init" [R, W], drawn from N(0, 0.01^2);
 *   - controller state: zeros.
 *
 * Parameters, named as the state_dict of the PyTorch module
 *   class NTM(nn.Module):  # tools/gen_ntm_fixtures.py
 *       controller  = nn.LSTMCell(in + R W, H)        (or nn.Linear(in + R W, H))
 *       read_heads  = nn.ModuleList([nn.Linear(H, W + 6)] * R)
 *       write_heads = nn.ModuleList([nn.Linear(H, 3 W + 6)] * Wr)
 *       fc          = nn.Linear(H + R W, out)
 *       read_init   = nn.Parameter([R, W]);  memory_bias = nn.Parameter([N, W])
 * i.e. "controller.weight_ih" [4H, in+RW], "controller.weight_hh" [4H, H],
 * "controller.bias_ih", "controller.bias_hh" [4H] (feed-forward:
 * "controller.weight" [H, in+RW], "controller.bias" [H]),
 * "read_heads.<i>.weight" [W+6, H], "read_heads.<i>.bias",
 * "write_heads.<j>.weight" [3W+6, H], "write_heads.<j>.bias",
 * "fc.weight" [out, H+RW], "fc.bias", "read_init", ("memory_bias").
 * Linear layers and the LSTM cell have PyTorch's default initialisation.
 *
 * Files (cx_ntm_save / cx_ntm_load): safetensors with those names and the
 * metadata format "pt", cortex.arch "ntm", cortex.ntm.input / output /
 * controller ("lstm" or "ff") / hidden / mem_n / mem_w / read_heads /
 * write_heads / key_tanh / learned_memory / mem_const / clip.
 */
#ifndef CORTEX_NTM_H
#define CORTEX_NTM_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CX_NTM_LSTM = 0, CX_NTM_FF = 1 } cx_ntm_controller;

typedef struct cx_ntm_config {
    int input_size, output_size;   /* channels of x_t and of y_t */
    cx_ntm_controller controller;  /* LSTM cell (default) or feed-forward (relu) */
    int hidden;                    /* controller size H */
    int mem_n, mem_w;              /* memory N slots x W */
    int read_heads, write_heads;   /* R >= 1, Wr >= 1 */
    bool key_tanh;                 /* key = tanh(p) instead of p (linear, the default) */
    bool learned_memory;           /* initial memory: learned "memory_bias" instead of mem_const */
    float mem_const;               /* constant initial memory (default 1e-6) */
    float clip;                    /* controller output clipping to [-clip, clip]; 0: none (default 20) */
} cx_ntm_config;

/* The paper's copy-task NTM: LSTM controller of 100 units, 1 read and 1
 * write head, memory 128 x 20, linear keys, constant memory 1e-6, clip 20. */
cx_ntm_config cx_ntm_defaults(int input_size, int output_size);

/* New NTM (kind "NTM"), parameters drawn from the current random stream.
 * Invalid sizes (any size < 1, mem_n < 3 (the 3-way shift), a size above
 * 65536, a controller kind outside the enum, clip < 0, non-finite
 * mem_const) are fatal. cx_module_forward(m, x) returns the logits of
 * cx_ntm_forward. Free with cx_module_free. */
cx_module *cx_ntm_new(const cx_ntm_config *cfg);
/* The configuration of an NTM (fatal if m is not one). */
cx_ntm_config cx_ntm_get_config(const cx_module *m);

/* What happened inside a forward pass, for pictures (optional): the
 * weightings of every head and the memory after every step, copied out of
 * the graph (plain floats owned by the trace, free with cx_ntm_trace_free).
 *   read_w  [T][R][B][N]   the read weightings
 *   write_w [T][Wr][B][N]  the write weightings
 *   mem     [T][B][N][W]   the memory after the writes of step t */
typedef struct cx_ntm_trace {
    int T, B, N, W, R, Wr;
    float *read_w, *write_w, *mem;
} cx_ntm_trace;
void cx_ntm_trace_free(cx_ntm_trace *tr);

typedef struct cx_ntm_out {
    cx_tensor *logits;  /* [T, B, out] */
    cx_tensor *mem;     /* the final memory [B, N, W] */
} cx_ntm_out;

/* Run the NTM over x F32 [T, B, input_size] from the initial state above.
 * trace: NULL, or a trace to fill (its previous contents are freed first
 * if non-NULL pointers; initialise it with {0}). Fatal on a wrong shape. */
cx_ntm_out cx_ntm_forward(cx_module *m, cx_tensor *x, cx_ntm_trace *trace);

/* Save the model (atomically) with its configuration as metadata, plus
 * n_meta extra (key, value) pairs. Errors from cx_st_save. */
cx_status cx_ntm_save(const char *path, cx_module *m, const char *const *meta_keys,
                      const char *const *meta_values, int n_meta);
/* Load a model saved by cx_ntm_save. The configuration in the metadata is
 * checked (ranges, and against the shapes of the stored tensors) before
 * anything is allocated. Errors: those of cx_st_load; CX_ERR_FORMAT (not an
 * NTM file, bad metadata); CX_ERR_NOTFOUND / CX_ERR_SHAPE (a tensor missing
 * or of the wrong shape), each naming the path. *out is NULL on error. */
cx_status cx_ntm_load(const char *path, cx_module **out);

#ifdef __cplusplus
}
#endif
#endif
