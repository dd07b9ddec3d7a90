/* Internal to the ONNX reader (onnx.c: loading and checks) and runner
 * (onnx_ops.c: the ops on Cortex tensors). */
#ifndef CX_ONNX_INTERNAL_H
#define CX_ONNX_INTERNAL_H
#include "cortex/core.h"
#include "cortex/onnx.h"
#include "onnx.pb-c.h"

/* Attributes of a node, parsed and checked at load (the ops read only what
 * they use; defaults filled in by the op's check). */
typedef struct onnx_attrs {
    int64_t axis;
    int has_axis;
    float alpha, beta, eps;
    int trans_a, trans_b;
    int auto_pad;                 /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    int nk, kernel[3];            /* kernel_shape (nk 0: from the weight) */
    int ns, stride[3];
    int nd, dil[3];
    int np, pads[6];              /* begin..., end... */
    int group;
    int ceil_mode, count_include_pad, allowzero;
    int nperm, perm[CX_MAX_DIMS];
    cx_tensor *value;             /* Constant: persistent, owned by the model */
} onnx_attrs;

typedef struct onnx_node {
    const Onnx__NodeProto *p;
    int index;                    /* position in the file */
    int op;                       /* index into the op table, -1 unknown */
    int n_in, n_out;
    int *in, *out;                /* value ids; -1 = an optional input left out */
    onnx_attrs a;
    char *unsupported;            /* NULL, or why not (malloc'd) */
} onnx_node;

/* A named value of the graph. */
typedef struct onnx_value {
    const char *name;
    int producer;                 /* node (execution order), -1 graph input, -2 initialiser */
    int dtype;                    /* cx_dtype, or -1 unknown / not a Cortex type */
    cx_tensor *init;              /* initialiser (persistent, owned by the model) */
} onnx_value;

struct cx_onnx_model {
    Onnx__ModelProto *proto;
    int opset;
    int n_values, cap_values;
    onnx_value *values;
    int n_nodes;
    onnx_node *nodes;             /* execution order */
    int n_inputs, n_outputs;
    int *input_ids, *output_ids;
    cx_onnx_value_info *inputs, *outputs;
    int n_unsupported;
    cx_params params;
    char what[256];
    struct onnx_opt *opt;         /* inference plan (onnx_opt.c) */
};

/* The op table (onnx_ops.c). */
typedef struct onnx_op {
    const char *name;
    int min_in, max_in;           /* input count limits */
    int max_out;                  /* outputs Cortex computes */
    unsigned float_in;            /* bit i: input i must be F32 */
    int out_same;                 /* output dtype: 1 same as input 0, 0 F32, 2 the constant's */
    /* parse and check attributes: CX_OK, CX_ERR_FORMAT (invalid; message
     * set), or CX_OK with *why set to a static reason it is unsupported */
    cx_status (*check)(cx_onnx_model *m, onnx_node *nd, const char **why);
    /* run (inside cx_try): in[] has n_in tensors (NULL for left-out optional ones) */
    void (*run)(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
} onnx_op;
extern const onnx_op cx_onnx_ops[];
extern const int cx_onnx_n_ops;

/* "node N 'name' (Op)" into buf */
const char *cx_onnx_node_label(const onnx_node *nd, char *buf, size_t n);
/* the attribute `name` of the node, NULL if absent */
const Onnx__AttributeProto *cx_onnx_attr(const onnx_node *nd, const char *name);
/* A TensorProto as a persistent tensor; CX_ERR_FORMAT / CX_ERR_ARG with the
 * message naming `what`. */
cx_status cx_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *what, cx_tensor **out);

/* The inference plan (onnx_opt.c): BatchNormalization folded into Conv,
 * Relu fused into the node before it; used by no-grad runs. */
void cx_onnx_opt_build(cx_onnx_model *m);
void cx_onnx_opt_free(cx_onnx_model *m);
/* the parameters may change: fold again before the next optimised run */
void cx_onnx_opt_touch(const cx_onnx_model *m);
/* at the start of a run: true when this run uses the plan */
bool cx_onnx_opt_begin(cx_onnx_model *m);
/* node k (execution order) is skipped: its output 0 is the value *src */
bool cx_onnx_opt_skip(const cx_onnx_model *m, int k, int *src);
/* replace node k's inputs (folded weights) before it runs */
void cx_onnx_opt_inputs(const cx_onnx_model *m, int k, cx_tensor **in);
/* after node k ran: a fused Relu on out[0] */
void cx_onnx_opt_after(const cx_onnx_model *m, int k, cx_tensor **out);
#endif
