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
    cx_tensor *value;             /* Constant, ConstantOfShape: persistent, owned by the model */
    int keepdims, noop, last;     /* reductions, ArgMax / ArgMin */
    int to;                       /* Cast: ONNX type; other ops: the output type their check chose */
    int nints;                    /* a list attribute of the newer ops (axes, split, starts...) */
    int64_t *ints;                /* malloc'd, owned by the node */
    int mode;                     /* an op's string attribute as a number */
    int out_types[4];             /* ONNX type of outputs 1..3 when not the rule's (set by the check; 0: the rule) */
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
    int dtype;                    /* storage cx_dtype; -1 unknown, -2 a type Cortex does not hold */
    int otype;                    /* ONNX element type (0 unknown) */
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
    unsigned float_in;            /* bit i: input i is of the op's type T (all of one type) */
    int out_same;                 /* output type: OUT_FLOAT, OUT_SAME (T), OUT_CONST, OUT_BOOL, OUT_I64, OUT_SAME1
                                   * (input 1's), OUT_ATTR (a.to, set by the check) */
    /* parse and check attributes: CX_OK, CX_ERR_FORMAT (invalid; message
     * set), or CX_OK with *why set to a static reason it is unsupported */
    cx_status (*check)(cx_onnx_model *m, onnx_node *nd, const char **why);
    /* run (inside cx_try): in[] has n_in tensors (NULL for left-out optional ones) */
    void (*run)(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
    unsigned types;               /* ONNX types T may have (bit t: type t); 0: float only */
    int since;                    /* the opset that introduced the op when after 7 (0: 7 or before) */
} onnx_op;
enum { OUT_FLOAT = 0, OUT_SAME = 1, OUT_CONST = 2, OUT_BOOL = 3, OUT_I64 = 4, OUT_SAME1 = 5, OUT_ATTR = 6 };
extern const onnx_op cx_onnx_ops[];
extern const int cx_onnx_n_ops;
extern const onnx_op cx_onnx_ops_more[]; /* onnx_ops_more.c */
extern const int cx_onnx_n_ops_more;
/* op i of both tables (0 .. cx_onnx_n_ops + cx_onnx_n_ops_more - 1) */
const onnx_op *cx_onnx_op_at(int i);

/* ONNX element types as bits of onnx_op.types */
#define OT(t) (1u << ONNX__TENSOR_PROTO__DATA_TYPE__##t)
#define T_FLOAT (OT(FLOAT) | OT(FLOAT16) | OT(BFLOAT16) | OT(DOUBLE))
#define T_INTS (OT(INT8) | OT(UINT8) | OT(INT16) | OT(UINT16) | OT(INT32) | OT(INT64) | OT(UINT32) | OT(UINT64))
#define T_BOOL OT(BOOL)
#define T_NUM (T_FLOAT | T_INTS)
#define T_ALL (T_NUM | T_BOOL)
/* The cx_dtype holding ONNX type t (float: F32; int64, uint32: I64; bool,
 * int8, uint8, int16, uint16, int32: I32), -1 when Cortex holds no such type. */
int cx_onnx_storage(int onnx_type);
/* f rounded to ONNX float type t (float16: to nearest even; float: f) */
float cx_onnx_round_to(float f, int onnx_type);
/* v stored as ONNX integer type t would store it (wrapped; bool: 0 / 1) */
int64_t cx_onnx_fit(int64_t v, int onnx_type);
/* the ONNX type name of a value for messages */
const char *cx_onnx_value_type(const cx_onnx_model *m, int value_id);

/* kernels of onnx_ops_more.c used by the ops of onnx_ops.c */
void cx_onnx_int_arith(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
void cx_onnx_int_unary(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
void cx_onnx_int_clip(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
/* Pad in mode 0 constant (any type), 1 reflect, 2 edge; pads: begin..., end... */
cx_tensor *cx_onnx_pad_any(cx_tensor *x, const int64_t *pads, int mode, double value);
/* fatal when an op would make `total` values: at most max(2^24, 64 x base), never more than 2^27 */
void cx_onnx_check_size(const char *op, int64_t total, int64_t base);
void cx_onnx_pow(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out);
void cx_onnx_concat_any(int axis, cx_tensor **in, int n, cx_tensor **out);
cx_tensor *cx_onnx_permute_any(cx_tensor *x, const int *perm);

/* attribute readers shared by the op files (CX_ERR_FORMAT with a message) */
int cx_onnx_attr_type(const Onnx__AttributeProto *a);
cx_status cx_onnx_attr_int(const onnx_node *nd, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out);
cx_status cx_onnx_attr_float(const onnx_node *nd, const char *name, float def, float *out);
/* a list of ints of at most max values into nd->a.ints / nints (absent: nints -1) */
cx_status cx_onnx_attr_int_list(onnx_node *nd, const char *name, int max);

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
/* the parameters may change: fold again before the next optimised run,
 * and check their fingerprint before every one after it */
void cx_onnx_opt_touch(const cx_onnx_model *m);
/* after a run: an output sharing memory with a parameter exposes them */
void cx_onnx_opt_outputs(const cx_onnx_model *m, cx_tensor *const *out, int n);
/* fingerprints of the parameters taken so far (for tests) */
extern _Atomic long cx_onnx_fingerprints;
/* at the start of a run: true when this run uses the plan */
bool cx_onnx_opt_begin(cx_onnx_model *m);
/* after a run that cx_onnx_opt_begin started (also after a failed one) */
void cx_onnx_opt_end(void);
/* node k (execution order) is skipped: its output 0 is the value *src */
bool cx_onnx_opt_skip(const cx_onnx_model *m, int k, int *src);
/* replace node k's inputs (folded weights) before it runs */
void cx_onnx_opt_inputs(const cx_onnx_model *m, int k, cx_tensor **in);
/* after node k ran: a fused Relu on out[0] */
void cx_onnx_opt_after(const cx_onnx_model *m, int k, cx_tensor **out);
/* node k is an Add into an operand (and its fused Relu): done into out[0]
 * and true, or false (shapes differ at run time: run it as usual) */
bool cx_onnx_opt_run(const cx_onnx_model *m, int k, cx_tensor **in, cx_tensor **out);
/* Adds planned into an operand (for tests) */
int cx_onnx_opt_num_inplace(const cx_onnx_model *m);
#endif
