/*
 * cortex/dnc.h -- the Differentiable Neural Computer (Graves et al. 2016,
 * "Hybrid computing using a neural network with dynamic external memory",
 * Nature 538; equations of its Methods section): the memory operations
 * (batched, differentiable in every tensor argument), one whole memory
 * access step, and the model (an LSTM controller with one write head and R
 * read heads). See cortex.h.
 *
 * Shapes (one write head): memory M [B, N, W] (N slots of width W), usage
 * u, precedence p, write weighting w^w [B, N], temporal link matrix L
 * [B, N, N], read weightings w^r [B, R, N] (R read heads), read vectors r
 * [B, R, W], free gates f [B, R], read modes pi [B, R, 3]. Per-item gates
 * g^a, g^w are [B] or [B, 1]. All F32.
 *
 * Memory operations (t is the current step, t-1 the previous one):
 *   cx_dnc_content_address  c_h = softmax_i(beta_h cos(k_h, M_i)) per head h:
 *                            keys [B, H, W], beta [B, H] -> [B, H, N]
 *   cx_dnc_retention        psi_i = prod_r (1 - f_r w^r_{t-1,r,i})          [B, N]
 *   cx_dnc_usage            u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi
 *   cx_dnc_allocation       a_t from the free list (below)                   [B, N]
 *   cx_dnc_write_weighting  w^w = g^w (g^a a + (1 - g^a) c^w)                [B, N]
 *   cx_ntm_write            M_t = M_{t-1} o (1 - w^w e^T) + w^w v^T (memory.h)
 *   cx_dnc_precedence       p_t = (1 - sum_i w^w_i) p_{t-1} + w^w            [B, N]
 *   cx_dnc_link             L_t[i,j] = (1 - w^w_i - w^w_j) L_{t-1}[i,j] + w^w_i p_{t-1,j},
 *                            L_t[i,i] = 0                                    [B, N, N]
 *   cx_dnc_directional      forward f_r = L_t w^r_{t-1,r}, backward b_r = L_t^T w^r_{t-1,r}
 *   cx_dnc_read_weighting   w^r_r = pi_r1 b_r + pi_r2 c_r + pi_r3 f_r        [B, R, N]
 *   cx_dnc_read             r_r = sum_i w^r_{r,i} M_i                         [B, R, W]
 * L[i, j] close to 1 means "slot i was written right after slot j", so the
 * forward weighting moves a read head from j to the slot written after it.
 *
 * Allocation. phi = the slot indices sorted by ascending usage (the free
 * list, least used first); with s = CX_DNC_EPS + (1 - CX_DNC_EPS) u,
 *   a[phi_j] = (1 - s[phi_j]) prod_{i<j} s[phi_i].
 * Conventions, as DeepMind's reference code (dnc/addressing.py):
 *   - the usage floor CX_DNC_EPS (1e-6) keeps the products away from exact
 *     zero; it is applied inside cx_dnc_allocation (pass the plain usage);
 *     a fully unused memory (u = 0) allocates 1 - 1e-6 to its first slot;
 *   - the sort is a constant of the backward pass: the gradient flows
 *     through the products (and the factor 1 - CX_DNC_EPS) to the usage
 *     values, not through the order (the order is piecewise constant);
 *   - ties are broken by slot index (a stable sort: of two slots with equal
 *     usage the lower index comes first in the free list), as TensorFlow's
 *     top_k on the non-usage and torch.sort(stable=True). The order is that
 *     of the usage values given (not of s, which can round two close usages
 *     to one float). NaN usage sorts last.
 * The backward of the allocation is O(N) per item after the sort (no
 * division by the usage, so it is exact where s underflows).
 *
 * Fused ops: cx_dnc_allocation and cx_dnc_link are single graph nodes with
 * their own backward (the link update composed of elementwise ops would make
 * about eight [B, N, N] temporaries per step); the others are compositions
 * of autograd ops (cosine similarity, softmax, products, matmul).
 *
 * Content addressing uses the cosine of PyTorch 1.13's F.cosine_similarity
 * with eps CX_NTM_COS_EPS (each norm clamped separately), as
 * cx_ntm_content_address; DeepMind's code adds 1e-6 inside its norms
 * instead, a difference below float precision for memories that are not
 * close to zero. A zero memory row has similarity 0.
 *
 * Errors (cx_fatal, the message names the function and the argument): NULL
 * or non-F32 arguments, shapes that do not match (the message gives the
 * shape found and the one expected).
 */
#ifndef CORTEX_DNC_H
#define CORTEX_DNC_H

#include "core.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* usage floor of the allocation weighting (DeepMind's _EPSILON) */
#define CX_DNC_EPS 1e-6f

/* ---- memory operations (formulas above) */
/* mem [B, N, W], keys [B, H, W], beta [B, H] -> [B, H, N]. */
cx_tensor *cx_dnc_content_address(cx_tensor *mem, cx_tensor *keys, cx_tensor *beta);
/* free_gates [B, R], wr_prev [B, R, N] -> psi [B, N]. */
cx_tensor *cx_dnc_retention(cx_tensor *free_gates, cx_tensor *wr_prev);
/* u_prev, ww_prev, psi [B, N] -> u [B, N]. */
cx_tensor *cx_dnc_usage(cx_tensor *u_prev, cx_tensor *ww_prev, cx_tensor *psi);
/* usage [B, N] -> allocation weighting [B, N] (fused op; conventions above). */
cx_tensor *cx_dnc_allocation(cx_tensor *usage);
/* content [B, N], alloc [B, N], alloc_gate, write_gate [B] or [B, 1] -> w^w [B, N]. */
cx_tensor *cx_dnc_write_weighting(cx_tensor *content, cx_tensor *alloc, cx_tensor *alloc_gate,
                                  cx_tensor *write_gate);
/* p_prev, ww [B, N] -> p [B, N]. */
cx_tensor *cx_dnc_precedence(cx_tensor *p_prev, cx_tensor *ww);
/* link_prev [B, N, N], p_prev [B, N], ww [B, N] -> link [B, N, N] with a zero
 * diagonal (fused op; the diagonal of link_prev gets gradient 0). */
cx_tensor *cx_dnc_link(cx_tensor *link_prev, cx_tensor *p_prev, cx_tensor *ww);
/* link [B, N, N], wr_prev [B, R, N] -> forward (L w, forward true) or
 * backward (L^T w) weightings [B, R, N]. */
cx_tensor *cx_dnc_directional(cx_tensor *link, cx_tensor *wr_prev, bool forward);
/* bwd, content, fwd [B, R, N], modes [B, R, 3] (backward, content, forward)
 * -> w^r [B, R, N]. */
cx_tensor *cx_dnc_read_weighting(cx_tensor *bwd, cx_tensor *content, cx_tensor *fwd, cx_tensor *modes);
/* mem [B, N, W], wr [B, R, N] -> read vectors [B, R, W]. */
cx_tensor *cx_dnc_read(cx_tensor *mem, cx_tensor *wr);

/* ---- one memory access step */
/* The memory state carried from step to step (step tensors, current arena). */
typedef struct cx_dnc_state {
    cx_tensor *mem;    /* [B, N, W] */
    cx_tensor *usage;  /* [B, N] */
    cx_tensor *link;   /* [B, N, N] */
    cx_tensor *prec;   /* precedence [B, N] */
    cx_tensor *ww;     /* write weighting [B, N] */
    cx_tensor *wr;     /* read weightings [B, R, N] */
    cx_tensor *reads;  /* read vectors [B, R, W] */
} cx_dnc_state;

/* The interface vector split into its parts, already squashed. */
typedef struct cx_dnc_interface {
    cx_tensor *read_keys;       /* [B, R, W] */
    cx_tensor *read_strengths;  /* [B, R], oneplus: 1 + softplus */
    cx_tensor *write_key;       /* [B, W] */
    cx_tensor *write_strength;  /* [B, 1], oneplus */
    cx_tensor *erase;           /* [B, W], sigmoid */
    cx_tensor *write_vec;       /* [B, W] */
    cx_tensor *free_gates;      /* [B, R], sigmoid */
    cx_tensor *alloc_gate;      /* [B, 1], sigmoid */
    cx_tensor *write_gate;      /* [B, 1], sigmoid */
    cx_tensor *read_modes;      /* [B, R, 3], softmax over (backward, content, forward) */
} cx_dnc_interface;

/* Length of the raw interface vector: R W + 3 W + 5 R + 3. */
int cx_dnc_interface_size(int read_heads, int width);
/* Split a raw interface vector xi [B, cx_dnc_interface_size(R, W)] in the
 * paper's order (read keys R*W, read strengths R, write key W, write
 * strength 1, erase W, write vector W, free gates R, allocation gate 1, write
 * gate 1, read modes 3R, head by head) and apply oneplus / sigmoid / softmax.
 * Errors: xi not [B, R W + 3 W + 5 R + 3], R or W < 1. */
cx_dnc_interface cx_dnc_interface_split(cx_tensor *xi, int read_heads, int width);
/* The initial state, all zeros (step tensors, no gradient). */
cx_dnc_state cx_dnc_state_zeros(int batch, int slots, int width, int read_heads);
/* One access step, in DeepMind's order: the write content weighting on
 * M_{t-1}; the usage from w^w_{t-1}, the free gates and w^r_{t-1}; the
 * allocation; w^w_t; the write; the link and precedence; the read content
 * weightings on M_t; the directional weightings from L_t and w^r_{t-1};
 * w^r_t; the reads. As DeepMind's code, the usage sees w^w_{t-1} detached
 * (cx_detach: no gradient through the usage to earlier write weightings);
 * everything else is differentiated. Errors: shapes of prev and in that do
 * not agree (named). */
cx_dnc_state cx_dnc_access(const cx_dnc_state *prev, const cx_dnc_interface *in);

/* ---- the model
 * An LSTM cell controller reads [x_t, r_{t-1}] (r flattened to R W); its
 * hidden state h_t gives the interface vector xi_t = interface(h_t) (a
 * Linear layer), which drives cx_dnc_access; the output is
 *   y_t = output(h_t) + read_output(r_t)
 * (output: Linear with bias, read_output: Linear without bias). Parameters
 * (PyTorch state_dict names):
 *   controller.weight_ih [4H, I + R W], controller.weight_hh [4H, H],
 *   controller.bias_ih, controller.bias_hh [4H]   (torch.nn.LSTMCell)
 *   interface.weight [S, H], interface.bias [S]   S = cx_dnc_interface_size(R, W)
 *   output.weight [Y, H], output.bias [Y]
 *   read_output.weight [Y, R W]
 * initialised as PyTorch's defaults for those layers. The initial state is
 * all zeros (controller, memory, weightings, reads). */
typedef struct cx_dnc_config {
    int input_size;   /* I */
    int output_size;  /* Y */
    int hidden_size;  /* H, the controller's */
    int slots;        /* N */
    int width;        /* W */
    int read_heads;   /* R */
} cx_dnc_config;

/* Everything carried between steps. */
typedef struct cx_dnc_carry {
    cx_tensor *h, *c;  /* controller state [B, H] */
    cx_dnc_state mem;
} cx_dnc_carry;

/* A new model (free with cx_module_free). Errors: a size < 1 (named). */
cx_module *cx_dnc_new(const cx_dnc_config *cfg);
/* The configuration of a model made by cx_dnc_new (fatal for another module). */
cx_dnc_config cx_dnc_get_config(const cx_module *m);
/* The all-zero initial carry for a batch of B. */
cx_dnc_carry cx_dnc_initial(cx_module *m, int batch);
/* One step: x [B, I] -> y [B, Y]; fills *next (may be the same struct as
 * prev) and, if iface is not NULL, the step's interface. Errors: x of the
 * wrong shape, a carry of another batch. */
cx_tensor *cx_dnc_step(cx_module *m, cx_tensor *x, const cx_dnc_carry *prev, cx_dnc_carry *next,
                       cx_dnc_interface *iface);
/* A whole sequence from the zero state: x [T, B, I] -> y [T, B, Y]. When
 * states is not NULL it receives the T carries (states[t] after step t).
 * cx_module_forward(m, x) is this with states NULL. */
cx_tensor *cx_dnc_forward(cx_module *m, cx_tensor *x, cx_dnc_carry *states);
/* Save the parameters with the configuration as metadata (dnc.input_size,
 * ...), atomically. Errors from cx_module_save. */
cx_status cx_dnc_save(cx_module *m, const char *path);
/* Build the model a cx_dnc_save file describes and load its parameters.
 * Errors: CX_ERR_IO, CX_ERR_FORMAT (missing or bad configuration),
 * CX_ERR_NOTFOUND / CX_ERR_SHAPE (tensors), with *out NULL. */
cx_status cx_dnc_load(const char *path, cx_module **out);

#ifdef __cplusplus
}
#endif
#endif
