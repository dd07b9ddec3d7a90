/* cortex/onnx.h -- reading, running and writing ONNX models. See cortex.h.
 *
 * cx_onnx_load reads a ModelProto (protobuf, ONNX IR with a default-domain
 * opset 1..17) and checks it before anything runs:
 *   - the protobuf parses (a truncated or corrupt file is CX_ERR_FORMAT);
 *   - every initialiser has a data type, at most CX_MAX_DIMS dimensions,
 *     no dimension above CX_ONNX_MAX_DIM, at most CX_ONNX_MAX_NUMEL
 *     elements and exactly as many values as its shape says, in one field
 *     (CX_ERR_FORMAT naming the initialiser); one of a type Cortex does not
 *     have (string, complex, ...) makes the nodes that use it unsupported;
 *   - the graph is a DAG: every node input is a graph input, an initialiser
 *     or the output of a node, no value has two producers, and the nodes can
 *     be ordered (a cycle or a dangling input is CX_ERR_FORMAT naming the
 *     node, its op and the value);
 *   - every node's attributes have the types the op defines.
 * A node whose op (or one of whose variants: an attribute value, a data
 * type) Cortex does not run does not fail the load: it is recorded as
 * unsupported (cx_onnx_unsupported names the node, its op and why) and
 * cx_onnx_run then fails with CX_ERR_ARG naming it. Every error message
 * names the node as  node N 'name' (OpType)  (node N (OpType) when it has no
 * name; N counts the nodes in the file's order from 0).
 *
 * Initialisers become persistent tensors owned by the model; the F32 ones
 * are its parameters (cx_onnx_params, requires_grad set, named as in the
 * file), so an imported model can be fine-tuned with the optimisers of
 * cortex/optim.h: cx_onnx_run records the graph when grad mode is on.
 *
 * Opsets 1 to 17 load; a node runs when its op's definition at the
 * model's opset is one Cortex implements (opsets 7..17 for every op; before
 * 7 only for the ops unchanged since, e.g. Elu and Relu from 6, Softplus,
 * GlobalAveragePool and Not from 1: others are unsupported there).
 *
 * Value types: float, float16, bfloat16 and double tensors are F32
 * (float16 and bfloat16 values exactly, every such result rounded back to
 * its type, to nearest even; double values rounded to float when read, so a
 * double model runs at float precision); bool (as 0 / 1), int8, uint8,
 * int16, uint16 and int32 are held exactly in I32 tensors, int64, uint32
 * and uint64 in I64 (a uint64 value of 2^63 or more is refused when read;
 * cx_onnx_read_tensor reads them so too). Integer results are stored as the
 * declared type would store them (uint8 250 + 10 = 4). Strings, complex
 * numbers, float8, sequences and optionals are not held: their nodes are
 * unsupported.
 *
 * Ops run (151): elementwise arithmetic (Add, Sub, Mul, Div, Pow,
 * Mod, BitShift, Sum, Max, Min, Mean on float and integers), comparisons
 * and logic (Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or,
 * Xor, Not, Where, IsNaN, IsInf), unary math (Abs, Neg, Exp, Log, Sqrt,
 * Reciprocal, Sin ... Atanh, Floor, Ceil, Round, Sign, Erf), activations
 * (Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Sigmoid, HardSigmoid,
 * HardSwish, Tanh, Softplus, Softsign, ThresholdedRelu, Shrink, Softmax,
 * LogSoftmax, Hardmax), MatMul, Gemm, Einsum, MatMulInteger,
 * QLinearMatMul, Conv, ConvTranspose, MaxPool (dilations, Indices),
 * AveragePool, GlobalAveragePool, GlobalMaxPool, MaxUnpool, LRN,
 * BatchNormalization (inference and training mode), InstanceNormalization,
 * LayerNormalization, MeanVarianceNormalization, Dropout (inference),
 * RNN, GRU, LSTM, the ten Reduce ops, ArgMax, ArgMin, TopK, CumSum,
 * shape and index ops (Shape, Size, Cast, CastLike, Reshape, Flatten,
 * Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Gather,
 * GatherElements, GatherND, ScatterElements, Scatter, ScatterND, Expand,
 * Tile, Pad (constant, reflect, edge), ConstantOfShape, Constant, Range,
 * Identity, Trilu, EyeLike, OneHot, NonZero, Compress, Unique,
 * ReverseSequence, DepthToSpace, SpaceToDepth), Resize and Upsample
 * (nearest, linear, cubic), QuantizeLinear, DequantizeLinear,
 * DynamicQuantizeLinear, ConvInteger, QLinearConv, Det, DFT, STFT, the
 * Hann / Hamming / Blackman windows, MelWeightMatrix, NonMaxSuppression, RoiAlign (avg), GridSample,
 * NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss. Gradients flow
 * through the float ops built on Cortex's differentiable ops (arithmetic,
 * activations, matrix products, convolutions, normalisations, reductions,
 * RNNs, Gather, Slice, Concat, Where, Expand, Tile, Pad ...); the ops
 * computed directly (Einsum, Resize, GridSample, DFT, Floor, Sin, MaxPool's
 * direct kernel, scatters, integer ops ...) carry none. Shapes, axes and pads are
 * integers. A pad of Conv / MaxPool / AveragePool may
 * not exceed both the kernel and the input size; padding (Pad, or the
 * explicit padding of asymmetric pads) makes at most max(2^20, 64 x the
 * input's size) and never more than 2^27 values, and Expand, Tile,
 * ConstantOfShape, Range, OneHot, Resize, MaxUnpool, GridSample,
 * ConvTranspose, DFT, STFT at most max(2^24, 64 x the input's size), never
 * more than 2^27 (files cannot make the runner allocate without bound).
 *
 *   cx_onnx_model *m;
 *   if (cx_onnx_load("lenet.onnx", &m)) { puts(cx_last_error()); ... }
 *   cx_tensor *in[1] = {x}, *out[1];
 *   if (cx_onnx_run(m, in, out)) { puts(cx_last_error()); ... }
 *   ... out[0] lives in the current arena ...
 *   cx_onnx_free(m);
 */
#ifndef CORTEX_ONNX_H
#define CORTEX_ONNX_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Limits of the reader: a larger dimension or tensor is CX_ERR_FORMAT. */
#define CX_ONNX_MAX_DIM ((int64_t)1 << 30)
#define CX_ONNX_MAX_NUMEL ((int64_t)1 << 31)

typedef struct cx_onnx_model cx_onnx_model;

/* A graph input or output as the file declares it. dtype_ok is false when
 * its element type is not one Cortex holds (float, float16, bfloat16,
 * double in F32; bool, int8 ... int32 in I32; int64, uint32, uint64 in I64:
 * see above); onnx_type is the
 * ONNX TensorProto.DataType number (0 when the file gives none). ndim is -1
 * when the file gives no shape; a dimension is -1 when it is symbolic
 * (dim_param, e.g. a batch size "N") or absent. */
typedef struct cx_onnx_value_info {
    const char *name;
    int onnx_type;
    bool dtype_ok;
    cx_dtype dtype;
    int ndim;
    int64_t shape[CX_MAX_DIMS];
} cx_onnx_value_info;

/* Read and check an ONNX model file (see above). On success *out is a model
 * the caller frees with cx_onnx_free; on failure *out is NULL and
 * cx_last_error() names the problem (CX_ERR_IO: the file cannot be read;
 * CX_ERR_FORMAT: it is not a valid model; CX_ERR_ARG: a valid model Cortex
 * does not read: an opset outside 1..17, sparse initialisers, data in
 * external files). */
cx_status cx_onnx_load(const char *path, cx_onnx_model **out);
/* The same from bytes in memory (copied as needed; `data` may be freed
 * afterwards). `what` names the source in messages (NULL: "buffer"). */
cx_status cx_onnx_load_buffer(const void *data, size_t size, const char *what, cx_onnx_model **out);
void cx_onnx_free(cx_onnx_model *m);

/* The default-domain opset the model imports (1..17; 0 when it imports none
 * and has no node of that domain). */
int cx_onnx_opset(const cx_onnx_model *m);
/* Graph inputs (initialisers excluded) and outputs, in the file's order. */
int cx_onnx_num_inputs(const cx_onnx_model *m);
int cx_onnx_num_outputs(const cx_onnx_model *m);
const cx_onnx_value_info *cx_onnx_input(const cx_onnx_model *m, int i);
const cx_onnx_value_info *cx_onnx_output(const cx_onnx_model *m, int i);
/* Nodes, in execution (topological) order: op type, name ("" if none),
 * domain ("" for the default one). */
int cx_onnx_num_nodes(const cx_onnx_model *m);
const char *cx_onnx_node_op(const cx_onnx_model *m, int i);
const char *cx_onnx_node_name(const cx_onnx_model *m, int i);
const char *cx_onnx_node_domain(const cx_onnx_model *m, int i);
/* NULL when node i can run, else why not ("node 3 'n' (Foo): op not supported"). */
const char *cx_onnx_node_unsupported(const cx_onnx_model *m, int i);
/* Number of nodes Cortex cannot run (0: cx_onnx_run can run the model). */
int cx_onnx_num_unsupported(const cx_onnx_model *m);
/* The F32 initialisers as parameters (owned by the model). */
const cx_params *cx_onnx_params(const cx_onnx_model *m);

/* Run the graph: inputs[i] is graph input i (cx_onnx_num_inputs of them,
 * each with the declared element type and every fixed dimension of the
 * declared shape); outputs[i] receives graph output i, a tensor of the
 * current arena (or an initialiser / input itself when the graph returns
 * one unchanged). Gradients are recorded when grad mode is on. Errors:
 * CX_ERR_ARG (an unsupported node, a NULL input), CX_ERR_SHAPE (an input
 * of the wrong type or shape, naming it), CX_ERR_INVALID (an op's check
 * failed: the message names the node and the op's complaint). On failure
 * the arena is rewound and outputs are NULL. */
cx_status cx_onnx_run(cx_onnx_model *m, cx_tensor *const *inputs, cx_tensor **outputs);

/* Inference optimisation. At load Cortex plans, without changing the graph,
 * how no-grad runs (cx_no_grad_begin) execute it: a BatchNormalization
 * whose input is a Conv's output used by nothing else is folded into that
 * Conv's weight and bias (F32 initialisers), and a Relu whose input is used
 * by nothing else is done in place by the Conv, Gemm, Add, Sub, Mul, Div or
 * BatchNormalization before it, and an Add writes its sum into an operand
 * that nothing else reads (made new by a Conv, Gemm, Add, Sub, Mul, Div or
 * BatchNormalization). Results equal the plain run to rounding
 * (the folded weights are computed in double). Runs in grad mode always
 * run every node. The folded weights are derived again before the next
 * optimised run after a grad-mode run, a call of cx_onnx_params or of
 * cx_onnx_set_optimize, so fine-tuned or edited parameters are seen; and
 * values written later through tensors that cx_onnx_params returned are
 * seen too: once the parameters have been handed out (cx_onnx_params, a
 * grad-mode run, or an output that is a parameter), every optimised run
 * first checks a fingerprint of their bytes (about 10 us for the 700 kB
 * of a small ResNet).
 * cx_onnx_set_optimize(m, false) turns the plan off (on by default);
 * cx_onnx_num_optimized is the number of nodes it skips. */
void cx_onnx_set_optimize(cx_onnx_model *m, bool on);
int cx_onnx_num_optimized(const cx_onnx_model *m);

/* Read a TensorProto file (the .pb inputs and outputs of ONNX's test data)
 * into a new persistent tensor (F32, I32 or I64 as the value types above;
 * the caller frees it).
 * CX_ERR_IO / CX_ERR_FORMAT as cx_onnx_load; CX_ERR_ARG for a data type
 * Cortex does not have (named). */
cx_status cx_onnx_read_tensor(const char *path, cx_tensor **out);
/* The same from bytes in memory. */
cx_status cx_onnx_tensor_from_buffer(const void *data, size_t size, const char *what, cx_tensor **out);
/* Name of an ONNX TensorProto.DataType ("float", "int64", ...; "type N"
 * for an unknown one, written into a static buffer). */
const char *cx_onnx_type_name(int onnx_type);

/* ---- export: Cortex models as ONNX files
 *
 * cx_onnx_export writes `model` as an ONNX ModelProto (default-domain opset
 * 13, or 17 when a layer needs it; IR 7 / 8), packed by protobuf-c and
 * written atomically (a temp file beside `path`, fsync, rename: on any
 * failure nothing is left at `path`, an existing file stays as it was).
 * Parameters and buffers become float32 initialisers (raw_data) under their
 * state names ("conv1.weight", "bn1.running_mean", ...). Models:
 *
 *   - a Net (cx_net_parse / cx_net_load, cortex/netdef.h): graph input
 *     `input_name` float [N, <the input shape>] and output `output_name`
 *     float [N, <the last layer's shape>], N a symbolic dimension named
 *     `batch_name`; one node per layer (named as the layer): conv1d/2d/3d ->
 *     Conv, convt2d -> ConvTranspose, max/avgpool -> MaxPool / AveragePool
 *     (count_include_pad=1, as Cortex), adaptiveavgpool2d -> AveragePool
 *     (only when the output size divides the input size), globalavgpool ->
 *     GlobalAveragePool, batchnorm -> BatchNormalization (running
 *     statistics: inference), layernorm -> LayerNormalization (opset 17),
 *     upsample -> Resize, flatten -> Flatten, linear -> Gemm (2-D input) or
 *     Transpose + MatMul + Add, dropout -> Dropout (inference: the
 *     identity), relu / tanh / sigmoid / softplus / elu / leaky_relu /
 *     identity -> the ONNX op, gelu -> Div, Erf, Add, Mul (exact GELU), add
 *     -> Add / Sum, concat -> Concat (axis 1). The output equals
 *     cx_module_forward in evaluation mode.
 *   - an LSTM CharLM (cx_charlm_new / cx_charlm_load, cortex/charlm.h):
 *     inputs `input_name` int64 ids [T, B] and h0, c0 float [L, B, H]
 *     (zeros for cx_module_forward's result), outputs `output_name` float
 *     logits [T, B, V], h_n and c_n [L, B, H]: Gather (the embedding), one
 *     ONNX LSTM per layer (PyTorch's gate order i, f, g, o rearranged into
 *     ONNX's i, o, f, c; both biases in B), Squeeze, the linear head.
 *
 * Errors (nothing written): CX_ERR_ARG (a module of another kind, named; a
 * layer with no ONNX form, named with its kind; names that clash; an opset
 * outside 13..17 or below what a layer needs), CX_ERR_NOTFOUND (a tensor
 * missing from the model), CX_ERR_IO (path cannot be written: the message
 * names it and the failing call). */
typedef struct cx_onnx_export_opts {
    int opset;               /* 0: 13 (17 for layernorm); else 13..17 */
    const char *input_name;  /* NULL or "": "input" */
    const char *output_name; /* NULL or "": "output" */
    const char *batch_name;  /* the symbolic batch dimension; NULL or "": "N" */
} cx_onnx_export_opts;
/* opset 0, "input", "output", "N". */
cx_onnx_export_opts cx_onnx_export_defaults(void);
/* Export `model` to `path` (opts NULL: the defaults). */
cx_status cx_onnx_export(cx_module *model, const char *path, const cx_onnx_export_opts *opts);
/* The same into memory: *data (malloc'd, the caller frees it) holds *size
 * bytes of ModelProto. */
cx_status cx_onnx_export_buffer(cx_module *model, const cx_onnx_export_opts *opts, void **data, size_t *size);
/* Write t (F32, I32 or I64) as a TensorProto file (raw_data), atomically:
 * the inputs cx_onnx_read_tensor and `cortex onnx run --input` read. */
cx_status cx_onnx_write_tensor(const char *path, const cx_tensor *t);

/* `cortex onnx info`: opset, inputs and outputs with shapes, nodes per op,
 * unsupported nodes, parameter count. */
void cx_onnx_print_info(const cx_onnx_model *m, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
