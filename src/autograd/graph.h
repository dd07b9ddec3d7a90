/* Internal: op descriptors, graph nodes, and helpers for writing ops.
 *
 * Every op, core or nn, is described by one descriptor defined next to its
 * kernel with CX_OP_DEF (at the start of a line: the build collects every
 * such line into the op table, tools/gen_optable.sh, so the table lists every
 * op without a separate registry to edit):
 *
 *   static void relu_backward(cx_node *nd) { ... nd->out[0]->grad ... }
 *   CX_OP_DEF(relu, .backward = relu_backward);
 *   ...
 *   cx_tensor *cx_relu(cx_tensor *a) {
 *       cx_tensor *out = ...kernel...;
 *       cx_record(&cx_opd_relu, out, &a, 1);
 *       return out;
 *   }
 *
 * A node may have several outputs (n_out in the descriptor): each output
 * tensor points to the node, and the node's backward runs once, after every
 * consumer of every output, with every F32 output's gradient allocated (zeros
 * where nothing flowed back); integer outputs (indices) carry no gradient. Ops that never need a gradient (sign, argmax)
 * still have a descriptor without backward, for check mode and the table. */
#ifndef CX_GRAPH_H
#define CX_GRAPH_H
#include "../tensor/internal.h"

#define CX_OP_DEF(id, ...) const cx_op_desc cx_opd_##id = {.name = #id, __VA_ARGS__}

#define CX_NODE_MAX_INLINE 3
struct cx_node {
    const cx_op_desc *op;
    int n_in, n_out;
    cx_tensor **in;          /* n_in inputs (arena); entries may be NULL (absent optional inputs) */
    cx_tensor **out;         /* n_out outputs */
    cx_tensor *in_inline[CX_NODE_MAX_INLINE];
    cx_tensor *out_inline[1];
    float f[4];              /* scalar parameters */
    int i[CX_MAX_DIMS + 4];  /* integer parameters */
    void *saved;             /* op-specific saved data (arena) */
    const cx_tensor *aux;    /* non-differentiable input (targets, indices) */
    unsigned visit;          /* topological sort mark */
};

/* True when an op on these inputs must be recorded. */
bool cx_needs_grad(cx_tensor *const *in, int n);
/* Record one node producing outs[0..n_out-1] (n_out must be the descriptor's
 * count) from in[0..n_in-1], if grad mode is on and an input requires grad;
 * runs check mode on every output first (naming the op). saved: saved_size
 * bytes copied into the arena (nd->saved) when the node is recorded, or, with
 * saved_size 0, a pointer stored as is (it must outlive the step). Returns
 * the node or NULL. */
cx_node *cx_record_n(const cx_op_desc *op, cx_tensor *const *outs, int n_out, cx_tensor *const *in, int n_in,
                     const void *saved, size_t saved_size);
/* One output, nothing saved. */
static inline cx_node *cx_record(const cx_op_desc *op, cx_tensor *out, cx_tensor *const *in, int n) {
    return cx_record_n(op, &out, 1, in, n, NULL, 0);
}
/* One output with saved bytes (see cx_record_n). */
static inline cx_node *cx_record_saved(const cx_op_desc *op, cx_tensor *out, cx_tensor *const *in, int n,
                                       const void *saved, size_t saved_size) {
    return cx_record_n(op, &out, 1, in, n, saved, saved_size);
}
/* Check-mode scan of the outputs of an op that records nothing. */
void cx_check_op(const cx_op_desc *op, cx_tensor *const *outs, int n_out, cx_tensor *const *in, int n_in);

/* Gradient buffer of input k if it needs one, else NULL. */
static inline float *cx_in_grad(cx_node *nd, int k) {
    cx_tensor *t = nd->in[k];
    return t && t->requires_grad ? cx_grad_ensure(t) : NULL;
}

/* Gradient buffer of input k for a backward that writes every element of it:
 * *fresh = true when the buffer was just created (uninitialised: store with
 * =, do not accumulate). NULL (and *fresh = false) when none is needed. */
static inline float *cx_in_grad_w(cx_node *nd, int k, bool *fresh) {
    cx_tensor *t = nd->in[k];
    *fresh = false;
    return t && t->requires_grad ? cx_grad_claim(t, fresh) : NULL;
}

/* The activation fused into cx_linear_relu / cx_linear_tanh (ops_matmul.c),
 * and its backward helper in ops_unary.c (512-bit vectors there): out = g *
 * act'(y) from the output y (relu: g * (y > 0 ? 1 : 0), tanh: g * (1 - y^2),
 * exactly as cx_relu's and cx_tanh's backward). */
enum { CX_LINEAR_PLAIN = 0, CX_LINEAR_RELU = 1, CX_LINEAR_TANH = 2 };
void cx_act_grad(int act, const float *y, const float *g, float *out, int64_t n);

/* Fatal unless t is F32. */
void cx_need_f32(const char *op, const cx_tensor *t);
/* Fatal unless t is F32, naming the op, the operand ("weight", "mask" ...) and its shape. */
void cx_need_f32_arg(const char *op, const char *what, const cx_tensor *t);

/* A possibly negative axis of t, normalised; fatal naming the op and t's shape. */
int cx_axis_of(const char *op, int axis, const cx_tensor *t);

/* View a tensor as [outer, n, inner] around `axis` (a valid axis). */
static inline void cx_split_axis(const cx_tensor *a, int axis, int64_t *outer, int *n, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++) *outer *= a->shape[i];
    for (int i = axis + 1; i < a->ndim; i++) *inner *= a->shape[i];
    *n = a->shape[axis];
}
/* New arena result with the given shape (F32). */
cx_tensor *cx_new_like_shape(const int *shape, int ndim);
#endif
