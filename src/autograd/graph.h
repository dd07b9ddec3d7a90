/* Internal: graph nodes recorded by ops, and helpers for writing ops. */
#ifndef CX_GRAPH_H
#define CX_GRAPH_H
#include "../tensor/internal.h"

/* Op table: every op has an id and a name (used by check mode and cx_op_name). */
#define CX_OPS(X) \
    X(LEAF, "leaf") X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div") \
    X(MAXIMUM, "maximum") X(ADD_SCALAR, "add_scalar") X(MUL_SCALAR, "mul_scalar") \
    X(NEG, "neg") X(EXP, "exp") X(LOG, "log") X(SQRT, "sqrt") X(POW, "pow") X(ABS, "abs") \
    X(CLAMP, "clamp") X(SIGN, "sign") X(SIGMOID, "sigmoid") X(TANH, "tanh") X(RELU, "relu") \
    X(LEAKY_RELU, "leaky_relu") X(ELU, "elu") X(GELU, "gelu") X(SOFTPLUS, "softplus") \
    X(THRESHOLD, "threshold_unit") X(MAXOUT, "maxout") X(DROPOUT, "dropout") \
    X(MATMUL, "matmul") X(LINEAR, "linear") X(SUM, "sum") X(MEAN, "mean") \
    X(SUM_AXIS, "sum_axis") X(MEAN_AXIS, "mean_axis") X(MAX_AXIS, "max_axis") \
    X(ARGMAX, "argmax") X(SOFTMAX, "softmax") X(LOG_SOFTMAX, "log_softmax") \
    X(RESHAPE, "reshape") X(PERMUTE, "permute") X(SLICE, "slice") X(CONCAT, "concat") \
    X(INDEX_SELECT, "index_select") X(GATHER, "gather") X(CROSS_ENTROPY, "cross_entropy") \
    X(NLL, "nll_loss") X(MSE, "mse_loss") X(BCE_LOGITS, "bce_with_logits") \
    X(MULTI_MARGIN, "multi_margin_loss") X(HINGE, "hinge_loss") \
    X(PERCEPTRON, "perceptron_loss") X(LOGISTIC, "logistic_loss") \
    X(SMOOTH_L1, "smooth_l1_loss") X(DETACH, "detach") X(CUSTOM, "custom")

#define CX_OP_ENUM(id, name) CX_OP_##id,
typedef enum { CX_OPS(CX_OP_ENUM) CX_OP_COUNT } cx_op;
#undef CX_OP_ENUM
extern const char *const cx_op_names[CX_OP_COUNT];

typedef void (*cx_backward_fn)(cx_tensor *out);

#define CX_NODE_MAX_INLINE 3
struct cx_node {
    cx_op op;
    cx_backward_fn backward;
    int n_in;
    cx_tensor **in;          /* n_in inputs (arena) */
    cx_tensor *in_inline[CX_NODE_MAX_INLINE];
    float f[4];              /* scalar parameters */
    int i[CX_MAX_DIMS + 4];  /* integer parameters */
    void *saved;             /* op-specific saved data (arena) */
    const cx_tensor *aux;    /* non-differentiable input (targets, indices) */
    unsigned visit;          /* topological sort mark */
    const char *name;        /* op name (static string), for ops outside the table */
};

/* True when an op on these inputs must be recorded. */
bool cx_needs_grad(cx_tensor *const *in, int n);
/* Attach a node to `out` if any input requires grad (and grad mode is on).
 * Returns the node or NULL. Also runs the numerics check when enabled. */
cx_node *cx_record(cx_tensor *out, cx_op op, cx_backward_fn bw, cx_tensor *const *in, int n);
/* Same for an op outside the op table (layers in other folders: conv, pooling,
 * normalisation, recurrent cells...): `name` (a static string) is what check
 * mode and cx_op_name report. */
cx_node *cx_record_named(cx_tensor *out, const char *name, cx_backward_fn bw, cx_tensor *const *in, int n);
/* Name of a node's op. */
const char *cx_node_name(const cx_node *nd);
/* Check-mode scan of an op's forward result (called by cx_record, and by ops
 * that record nothing). */
void cx_check_forward(cx_op op, const cx_tensor *out, cx_tensor *const *in, int n);
void cx_check_forward_named(const char *name, const cx_tensor *out, cx_tensor *const *in, int n);

/* Gradient buffer of input k if it needs one, else NULL. */
static inline float *cx_in_grad(cx_tensor *out, int k) {
    cx_tensor *t = out->node->in[k];
    return t->requires_grad ? cx_grad_ensure(t) : NULL;
}

/* Gradient buffer of input k for a backward that writes every element of it:
 * *fresh = true when the buffer was just created (uninitialised: store with
 * =, do not accumulate). NULL (and *fresh = false) when none is needed. */
static inline float *cx_in_grad_w(cx_tensor *out, int k, bool *fresh) {
    cx_tensor *t = out->node->in[k];
    *fresh = false;
    return t->requires_grad ? cx_grad_claim(t, fresh) : NULL;
}

/* Fatal unless t is F32. */
void cx_need_f32(const char *op, const cx_tensor *t);
/* New arena result with the given shape (F32). */
cx_tensor *cx_new_like_shape(const int *shape, int ndim);
#endif
