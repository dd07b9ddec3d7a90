/* ONNX reader and runner (cortex/onnx.h):
 *   - a tiny MLP and a tiny CNN exported by torch.onnx.export
 *     (tools/gen_onnx_fixtures.py) give PyTorch's outputs; the MLP's symbolic
 *     batch dimension takes other batch sizes; its initialisers are
 *     parameters whose gradients match finite differences;
 *   - models built here with protobuf-c: every malformed one (truncated,
 *     unknown op, bad initialiser shape, cycle, dangling input, huge
 *     dimension, bad opset, duplicate output, wrong attribute type, wrong
 *     input shape, a shape error inside an op) gives one named error;
 *   - every prefix and 3,000 random mutations of the CNN file load or fail
 *     cleanly (and run or fail cleanly when they load). */
#include <stdint.h>
#include <stdlib.h>

#include "onnx.pb-c.h"
#include "test.h"
#include "io/onnx_internal.h" /* cx_onnx_fingerprints */

float cx_onnx_round_to(float f, int onnx_type); /* src/io/onnx_internal.h */

#define FIX "tests/fixtures/onnx/"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* ------------------------------------------------------------ PyTorch models */

static void check_model(const char *name, int n_params) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s.onnx", name);
    cx_onnx_model *m;
    cx_status st = cx_onnx_load(path, &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return;
    snprintf(path, sizeof path, FIX "%s_io.safetensors", name);
    cx_st_file *io;
    CHECK(cx_st_load(path, &io) == CX_OK);
    cx_tensor *x = cx_st_get(io, "x"), *y = cx_st_get(io, "y"), *out[1];
    CHECK(cx_onnx_num_inputs(m) == 1 && cx_onnx_num_outputs(m) == 1);
    CHECK(cx_onnx_num_unsupported(m) == 0);
    CHECK_MSG(cx_onnx_params(m)->n == n_params, "%d parameters", cx_onnx_params(m)->n);
    cx_no_grad_begin();
    st = cx_onnx_run(m, &x, out);
    cx_no_grad_end();
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) {
        CHECK(cx_same_shape(out[0], y));
        cxt_allclose(CX_F(out[0]), CX_F(y), (long)y->numel, 1e-4, 1e-5, name);
    }
    cx_st_free(io);
    cx_onnx_free(m);
}

static void test_mlp_matches_pytorch(void) { check_model("mlp", 6); }
static void test_cnn_matches_pytorch(void) { check_model("cnn", 12); }

/* the MLP's batch dimension is symbolic ("batch"): one row at a time gives the same rows */
static void test_mlp_symbolic_batch(void) {
    cx_onnx_model *m;
    cx_st_file *io;
    CHECK(cx_onnx_load(FIX "mlp.onnx", &m) == CX_OK);
    CHECK(cx_st_load(FIX "mlp_io.safetensors", &io) == CX_OK);
    const cx_onnx_value_info *vi = cx_onnx_input(m, 0);
    CHECK(vi->ndim == 2 && vi->shape[0] == -1 && vi->shape[1] == 6 && vi->dtype == CX_F32);
    CHECK(cx_onnx_opset(m) == 11);
    cx_tensor *x = cx_st_get(io, "x"), *y = cx_st_get(io, "y");
    for (int r = 0; r < x->shape[0]; r++) {
        cx_tensor *row = cx_from_data(CX_F(x) + r * 6, CX_SHAPE(1, 6)), *out;
        CHECK(cx_onnx_run(m, &row, &out) == CX_OK);
        cxt_allclose(CX_F(out), CX_F(y) + r * 5, 5, 1e-4, 1e-5, "row");
    }
    /* a fixed dimension that differs: named error */
    cx_tensor *bad = cx_zeros(CX_SHAPE(2, 7)), *out = (cx_tensor *)1;
    CHECK(cx_onnx_run(m, &bad, &out) == CX_ERR_SHAPE && out == NULL);
    CHECK_MSG(strstr(cx_last_error(), "input 'x' has shape [2, 7]") && strstr(cx_last_error(), "[?, 6]"), "%s",
              cx_last_error());
    cx_st_free(io);
    cx_onnx_free(m);
}

/* initialisers are parameters: d sum(y * w) / d param equals finite differences */
static void test_params_train(void) {
    cx_onnx_model *m;
    cx_st_file *io;
    CHECK(cx_onnx_load(FIX "cnn.onnx", &m) == CX_OK);
    CHECK(cx_st_load(FIX "cnn_io.safetensors", &io) == CX_OK);
    cx_tensor *x = cx_st_get(io, "x"), *out;
    const cx_params *p = cx_onnx_params(m);
    cx_tensor *w = NULL;
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->ndim == 4 && !w) w = p->t[i]; /* the first convolution's weight */
    CHECK(w && w->requires_grad && w->name);
    if (!w) goto done;
    cx_params_zero_grad(p);
    cx_tensor *wt = cx_arange(6);
    CHECK(cx_onnx_run(m, &x, &out) == CX_OK);
    cx_backward(cx_sum(cx_mul(out, cx_reshape(wt, CX_SHAPE(2, 3)))));
    CHECK(w->grad != NULL);
    if (!w->grad) goto done;
    int idx[3] = {0, 7, (int)w->numel - 1};
    for (int k = 0; k < 3; k++) {
        float *v = &CX_F(w)[idx[k]], keep = *v, h = 1e-2f;
        double f[2];
        cx_no_grad_begin();
        for (int s = 0; s < 2; s++) {
            *v = keep + (s ? -h : h);
            CHECK(cx_onnx_run(m, &x, &out) == CX_OK);
            f[s] = cx_item(cx_sum(cx_mul(out, cx_reshape(wt, CX_SHAPE(2, 3)))));
        }
        cx_no_grad_end();
        *v = keep;
        double num = (f[0] - f[1]) / (2 * h);
        CHECK_NEAR(w->grad[idx[k]], num, 2e-2 + 2e-2 * fabs(num));
    }
done:
    cx_st_free(io);
    cx_onnx_free(m);
}

/* ------------------------------------------------------------ models built here */

typedef struct {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__NodeProto nodes[8], *pnodes[8];
    Onnx__AttributeProto attrs[8], *pattrs[8][1];
    char *ins[8][3], *outs[8][1];
    Onnx__TensorProto inits[4], *pinits[4];
    int64_t dims[4][4];
    float data[4][64];
    Onnx__ValueInfoProto vin, vout, *pvin[1], *pvout[1];
    Onnx__TypeProto tin, tout;
    Onnx__TypeProto__Tensor ttin, ttout;
    Onnx__TensorShapeProto sin, sout;
    Onnx__TensorShapeProto__Dimension din[2], dout[2], *pdin[2], *pdout[2];
} builder;

/* x [1, 4] -> node 0 'fc' Gemm(x, W [3, 4] transposed, b [3]) -> node 1 'act' Relu -> y [1, 3] */
static void build_mlp(builder *b) {
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = 13;
    b->opsets[0] = &b->opset;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.has_ir_version = 1;
    b->model.ir_version = 7;
    b->model.graph = &b->graph;
    b->graph.name = "g";
    const char *ops[2] = {"Gemm", "Relu"}, *names[2] = {"fc", "act"};
    for (int i = 0; i < 2; i++) {
        Onnx__NodeProto *n = &b->nodes[i];
        onnx__node_proto__init(n);
        n->op_type = (char *)ops[i];
        n->name = (char *)names[i];
        n->output = b->outs[i];
        n->n_output = 1;
        n->input = b->ins[i];
        b->pnodes[i] = n;
    }
    b->ins[0][0] = "x", b->ins[0][1] = "W", b->ins[0][2] = "b";
    b->nodes[0].n_input = 3;
    b->outs[0][0] = "h";
    b->ins[1][0] = "h";
    b->nodes[1].n_input = 1;
    b->outs[1][0] = "y";
    Onnx__AttributeProto *a = &b->attrs[0];
    onnx__attribute_proto__init(a);
    a->name = "transB";
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = 1;
    b->pattrs[0][0] = a;
    b->nodes[0].attribute = b->pattrs[0];
    b->nodes[0].n_attribute = 1;
    b->graph.node = b->pnodes;
    b->graph.n_node = 2;
    const char *in_names[2] = {"W", "b"};
    int64_t shapes[2][2] = {{3, 4}, {3, 0}};
    for (int i = 0; i < 2; i++) {
        Onnx__TensorProto *t = &b->inits[i];
        onnx__tensor_proto__init(t);
        t->name = (char *)in_names[i];
        t->has_data_type = 1;
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_dims = i == 0 ? 2 : 1;
        memcpy(b->dims[i], shapes[i], sizeof shapes[i]);
        t->dims = b->dims[i];
        t->n_float_data = i == 0 ? 12 : 3;
        for (int k = 0; k < 12; k++) b->data[i][k] = i == 0 ? (float)(k % 5) - 2.0f : (float)k - 1.0f;
        t->float_data = b->data[i];
        b->pinits[i] = t;
    }
    b->graph.initializer = b->pinits;
    b->graph.n_initializer = 2;
    /* input x: float [1, 4]; output y: float [1, 3] */
    Onnx__ValueInfoProto *vi[2] = {&b->vin, &b->vout};
    Onnx__TypeProto *tp[2] = {&b->tin, &b->tout};
    Onnx__TypeProto__Tensor *tt[2] = {&b->ttin, &b->ttout};
    Onnx__TensorShapeProto *sp[2] = {&b->sin, &b->sout};
    Onnx__TensorShapeProto__Dimension *dd[2] = {b->din, b->dout}, **pd[2] = {b->pdin, b->pdout};
    for (int i = 0; i < 2; i++) {
        onnx__value_info_proto__init(vi[i]);
        onnx__type_proto__init(tp[i]);
        onnx__type_proto__tensor__init(tt[i]);
        onnx__tensor_shape_proto__init(sp[i]);
        vi[i]->name = i ? "y" : "x";
        vi[i]->type = tp[i];
        tp[i]->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp[i]->tensor_type = tt[i];
        tt[i]->has_elem_type = 1;
        tt[i]->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        tt[i]->shape = sp[i];
        for (int k = 0; k < 2; k++) {
            onnx__tensor_shape_proto__dimension__init(&dd[i][k]);
            dd[i][k].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[i][k].dim_value = k == 0 ? 1 : i ? 3 : 4;
            pd[i][k] = &dd[i][k];
        }
        sp[i]->dim = pd[i];
        sp[i]->n_dim = 2;
    }
    b->pvin[0] = &b->vin, b->pvout[0] = &b->vout;
    b->graph.input = b->pvin;
    b->graph.n_input = 1;
    b->graph.output = b->pvout;
    b->graph.n_output = 1;
}

/* pack and load; returns the status, *m the model (or NULL) */
static cx_status load_built(builder *b, cx_onnx_model **m) {
    size_t n = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(n + 1);
    onnx__model_proto__pack(&b->model, buf);
    cx_status st = cx_onnx_load_buffer(buf, n, "built.onnx", m);
    free(buf);
    return st;
}

/* the load fails with st and a message holding each needle */
static void expect_load_error(builder *b, cx_status want, const char *what, const char *n1, const char *n2) {
    cx_onnx_model *m = (cx_onnx_model *)1;
    cx_status st = load_built(b, &m);
    CHECK_MSG(st == want && m == NULL, "%s: status %d (want %d): %s", what, st, want, st ? cx_last_error() : "loaded");
    if (!st) {
        cx_onnx_free(m);
        return;
    }
    CHECK_MSG(strstr(cx_last_error(), "built.onnx") && strstr(cx_last_error(), n1) && (!n2 || strstr(cx_last_error(), n2)),
              "%s: message '%s' lacks '%s' / '%s'", what, cx_last_error(), n1, n2 ? n2 : "");
}

static void test_built_model_runs(void) {
    builder b;
    build_mlp(&b);
    cx_onnx_model *m;
    CHECK_MSG(load_built(&b, &m) == CX_OK, "%s", cx_last_error());
    float xv[4] = {-1, 2, -3, 4};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(1, 4)), *y;
    CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
    /* relu(x W^T + b): W rows {-2,-1,0,1}, {2,-2,-1,0}, {1,2,-2,-1}; b {-1,0,1} */
    float want[3] = {3, 0, 6};
    cxt_allclose(CX_F(y), want, 3, 0, 1e-6, "y");
    cx_onnx_free(m);
}

/* The optimised no-grad runs check a fingerprint of the parameters only
 * once something outside the model can reach them (src/io/onnx_opt.c):
 * not on a fresh model; after cx_onnx_params, on every run (and a weight
 * written through the pointer is seen); after a run whose output is a
 * parameter itself (an Identity of an initialiser), on every run. */
static void test_fingerprint_when_exposed(void) {
    builder b;
    build_mlp(&b);
    cx_onnx_model *m;
    CHECK_MSG(load_built(&b, &m) == CX_OK, "%s", cx_last_error());
    if (!m) return;
    float xv[4] = {-1, 2, -3, 4};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(1, 4)), *y;
    cx_no_grad_begin();
    long f0 = cx_onnx_fingerprints;
    for (int i = 0; i < 3; i++) CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
    CHECK_MSG(cx_onnx_fingerprints == f0, "%ld fingerprints of unexposed parameters", cx_onnx_fingerprints - f0);
    const cx_params *p = cx_onnx_params(m);
    CHECK(cx_onnx_run(m, &x, &y) == CX_OK); /* folds again (touched) */
    f0 = cx_onnx_fingerprints;
    CHECK(cx_onnx_run(m, &x, &y) == CX_OK && cx_onnx_run(m, &x, &y) == CX_OK);
    CHECK_MSG(cx_onnx_fingerprints - f0 == 2, "%ld fingerprints in 2 runs after cx_onnx_params",
              cx_onnx_fingerprints - f0);
    cx_tensor *w = NULL;
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->ndim == 2) w = p->t[i];
    CHECK(w != NULL);
    if (w) {
        CX_F(w)[1] = 5.0f; /* W row 0 {-2, 5, 0, 1}: y0 = 2 + 10 + 4 - 1 = 15 */
        CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
        CHECK_NEAR(CX_F(y)[0], 15.0f, 1e-5);
    }
    cx_onnx_free(m);
    /* y = Identity(W): the caller holds the parameter itself */
    build_mlp(&b);
    b.nodes[1].op_type = "Identity";
    b.ins[1][0] = "W";
    CHECK_MSG(load_built(&b, &m) == CX_OK, "%s", cx_last_error());
    if (m) {
        CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
        f0 = cx_onnx_fingerprints;
        CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
        CHECK_MSG(cx_onnx_fingerprints - f0 == 1, "%ld fingerprints after an output aliased a parameter",
                  cx_onnx_fingerprints - f0);
        cx_onnx_free(m);
    }
    cx_no_grad_end();
}

static void test_truncated(void) {
    size_t n;
    unsigned char *buf = slurp(FIX "cnn.onnx", &n);
    CHECK(buf && n > 1000);
    if (!buf) return;
    cx_onnx_model *m;
    CHECK(cx_onnx_load_buffer(buf, n / 2, "half.onnx", &m) == CX_ERR_FORMAT && m == NULL);
    CHECK_MSG(strstr(cx_last_error(), "half.onnx: not an ONNX model (truncated or corrupt protobuf)"), "%s",
              cx_last_error());
    CHECK(cx_onnx_load_buffer(buf, 0, "empty.onnx", &m) == CX_ERR_FORMAT && strstr(cx_last_error(), "empty"));
    /* every prefix: an error, or a model that runs or fails cleanly */
    cx_tensor *x = cx_zeros(CX_SHAPE(2, 2, 8, 8)), *out[4];
    int loaded = 0;
    for (size_t k = 0; k < n; k++) {
        if (cx_onnx_load_buffer(buf, k, "prefix", &m) == CX_OK) {
            loaded++;
            if (cx_onnx_num_inputs(m) == 1 && cx_onnx_num_outputs(m) <= 4) (void)cx_onnx_run(m, &x, out);
            cx_onnx_free(m);
        } else {
            CHECK(strlen(cx_last_error()) > 8);
        }
        cx_step_reset();
    }
    CHECK(loaded < 10);
    CHECK(cx_onnx_load("tests/fixtures/onnx/no-such-file.onnx", &m) == CX_ERR_IO);
    free(buf);
}

static void test_mutations(void) {
    size_t n;
    unsigned char *buf = slurp(FIX "cnn.onnx", &n);
    if (!buf) return;
    unsigned char *mut = malloc(n);
    uint32_t s = 12345;
    cx_tensor *x = cx_zeros(CX_SHAPE(2, 2, 8, 8)), *out[4];
    int loaded = 0, ran = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(mut, buf, n);
        int k = 1 + (int)((s = s * 1664525u + 1013904223u) >> 30);
        for (int j = 0; j < k; j++) {
            s = s * 1664525u + 1013904223u;
            mut[(s >> 8) % n] = (unsigned char)(s >> 24);
        }
        cx_onnx_model *m;
        if (cx_onnx_load_buffer(mut, n, "mutant", &m) == CX_OK) {
            loaded++;
            if (cx_onnx_num_inputs(m) == 1 && cx_onnx_num_outputs(m) <= 4) ran += cx_onnx_run(m, &x, out) == CX_OK;
            cx_onnx_free(m);
        }
        cx_step_reset();
    }
    printf("mutations: %d of 3000 loaded, %d ran\n", loaded, ran);
    CHECK(loaded > 0 && loaded < 3000);
    free(mut);
    free(buf);
}

static void test_unknown_op(void) {
    builder b;
    build_mlp(&b);
    b.nodes[1].op_type = "FrobnicateV2";
    cx_onnx_model *m;
    CHECK(load_built(&b, &m) == CX_OK);
    if (!m) return;
    CHECK(cx_onnx_num_unsupported(m) == 1);
    CHECK(cx_onnx_node_unsupported(m, 0) == NULL);
    CHECK_MSG(cx_onnx_node_unsupported(m, 1) && strstr(cx_onnx_node_unsupported(m, 1), "node 1 'act' (FrobnicateV2)"),
              "%s", cx_onnx_node_unsupported(m, 1));
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 4)), *y = (cx_tensor *)1;
    CHECK(cx_onnx_run(m, &x, &y) == CX_ERR_ARG && y == NULL);
    CHECK_MSG(strstr(cx_last_error(), "node 1 'act' (FrobnicateV2): op not supported"), "%s", cx_last_error());
    cx_onnx_free(m);
    /* another domain: unsupported too, named with its domain */
    build_mlp(&b);
    b.nodes[1].domain = "com.example";
    CHECK(load_built(&b, &m) == CX_OK);
    if (!m) return;
    CHECK(cx_onnx_num_unsupported(m) == 1 && strstr(cx_onnx_node_unsupported(m, 1), "(com.example.Relu)"));
    cx_onnx_free(m);
}

static void test_bad_shapes(void) {
    builder b;
    build_mlp(&b);
    b.inits[0].n_float_data = 11; /* W [3, 4] with 11 values */
    expect_load_error(&b, CX_ERR_FORMAT, "short initialiser", "initialiser 'W'", "11 values for shape [3, 4]");
    build_mlp(&b);
    b.dims[0][0] = (int64_t)1 << 40;
    expect_load_error(&b, CX_ERR_FORMAT, "huge dimension", "initialiser 'W'", "too large");
    build_mlp(&b);
    b.dims[0][0] = -3;
    expect_load_error(&b, CX_ERR_FORMAT, "negative dimension", "initialiser 'W'", "negative");
    build_mlp(&b);
    b.din[1].dim_value = (int64_t)1 << 50;
    expect_load_error(&b, CX_ERR_FORMAT, "huge input dimension", "graph input 'x'", "dimension 1");
    build_mlp(&b);
    b.inits[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64; /* int64 tensor with float values */
    expect_load_error(&b, CX_ERR_FORMAT, "values of the wrong type", "initialiser 'W'", "another type");
    /* a consistent file whose shapes do not agree: the op's error names the node */
    build_mlp(&b);
    b.dims[0][1] = 3;
    b.inits[0].n_float_data = 9; /* W [3, 3] for x [1, 4] */
    cx_onnx_model *m;
    CHECK(load_built(&b, &m) == CX_OK);
    if (!m) return;
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 4)), *y;
    cx_status st = cx_onnx_run(m, &x, &y);
    CHECK(st == CX_ERR_INVALID);
    CHECK_MSG(strstr(cx_last_error(), "built.onnx: node 0 'fc' (Gemm): ") && strstr(cx_last_error(), "matmul"), "%s",
              cx_last_error());
    cx_onnx_free(m);
}

static void test_graph_errors(void) {
    builder b;
    /* cycle: fc reads y, which act makes from fc's output */
    build_mlp(&b);
    b.ins[0][0] = "y";
    b.graph.n_input = 0;
    expect_load_error(&b, CX_ERR_FORMAT, "cycle", "cycle", "node 0 'fc' (Gemm) needs 'y'");
    /* a node reading its own output */
    build_mlp(&b);
    b.ins[1][0] = "y";
    expect_load_error(&b, CX_ERR_FORMAT, "self loop", "cycle", "node 1 'act' (Relu)");
    /* dangling input */
    build_mlp(&b);
    b.ins[1][0] = "nowhere";
    expect_load_error(&b, CX_ERR_FORMAT, "dangling", "node 1 'act' (Relu): input 'nowhere'", "dangling");
    /* a graph output nobody makes */
    build_mlp(&b);
    b.vout.name = "z";
    expect_load_error(&b, CX_ERR_FORMAT, "dangling output", "graph output 'z'", NULL);
    /* two producers of one value */
    build_mlp(&b);
    b.outs[1][0] = "h";
    expect_load_error(&b, CX_ERR_FORMAT, "two producers", "node 1 'act' (Relu): output 'h' is already produced by",
                      "node 0 'fc' (Gemm)");
    /* opsets */
    build_mlp(&b);
    b.opset.version = 0;
    expect_load_error(&b, CX_ERR_ARG, "opset 0", "opset 0", "1 to 17");
    /* opset 5 loads; Gemm (from 7 on) and Relu (from 6 on) are unsupported there */
    build_mlp(&b);
    b.opset.version = 5;
    {
        cx_onnx_model *m = NULL;
        CHECK_MSG(load_built(&b, &m) == CX_OK, "opset 5: %s", cx_last_error());
        if (m) {
            CHECK(cx_onnx_num_unsupported(m) == 2);
            const char *why = cx_onnx_node_unsupported(m, 0);
            CHECK_MSG(why && strstr(why, "node 0 'fc' (Gemm)") && strstr(why, "opset 5"), "%s", why ? why : "(null)");
            float xv[4] = {0};
            cx_tensor *x = cx_from_data(xv, CX_SHAPE(1, 4)), *y;
            CHECK(cx_onnx_run(m, &x, &y) == CX_ERR_ARG && strstr(cx_last_error(), "Gemm"));
            cx_onnx_free(m);
        }
    }
    build_mlp(&b);
    b.opset.version = 18;
    expect_load_error(&b, CX_ERR_ARG, "new opset", "opset 18", NULL);
    build_mlp(&b);
    b.opset.domain = "ai.onnx.ml";
    expect_load_error(&b, CX_ERR_FORMAT, "no default opset", "node 0 'fc' (Gemm)", "opset");
    /* wrong attribute type */
    build_mlp(&b);
    b.attrs[0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    expect_load_error(&b, CX_ERR_FORMAT, "attribute type", "node 0 'fc' (Gemm): attribute 'transB' is not an int", NULL);
    build_mlp(&b);
    b.attrs[0].i = 7;
    expect_load_error(&b, CX_ERR_FORMAT, "attribute value", "node 0 'fc' (Gemm): attribute 'transB' is 7", NULL);
    /* wrong input count */
    build_mlp(&b);
    b.nodes[1].n_input = 2;
    b.ins[1][1] = "x";
    expect_load_error(&b, CX_ERR_FORMAT, "input count", "node 1 'act' (Relu): 2 inputs", NULL);
    /* no graph at all (a protobuf that is not a model) */
    build_mlp(&b);
    b.model.graph = NULL;
    expect_load_error(&b, CX_ERR_FORMAT, "no graph", "no graph", NULL);
}

static void test_tensor_files(void) {
    Onnx__TensorProto t;
    onnx__tensor_proto__init(&t);
    int64_t dims[2] = {2, 3}, iv[6] = {1, -2, 3, -4, 5, 1LL << 40};
    t.n_dims = 2;
    t.dims = dims;
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t.n_int64_data = 6;
    t.int64_data = iv;
    uint8_t buf[256];
    size_t n = onnx__tensor_proto__pack(&t, buf);
    cx_tensor *x;
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "t.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_I64 && x->ndim == 2 && x->shape[1] == 3 && CX_I64P(x)[5] == (1LL << 40));
        cx_tensor_free(x);
    }
    CHECK(cx_onnx_tensor_from_buffer(buf, n - 3, "t.pb", &x) == CX_ERR_FORMAT && x == NULL);
    CHECK(strstr(cx_last_error(), "t.pb: not a TensorProto"));
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE; /* double values in the int64 field */
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "d.pb", &x) == CX_ERR_FORMAT && strstr(cx_last_error(), "another type"));
    /* uint64 is held in int64: below 2^63 exactly, 2^63 and more refused */
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT64;
    t.n_int64_data = 0;
    t.int64_data = NULL;
    uint64_t uv[6] = {0, 1, 7, 1ULL << 40, (1ULL << 63) - 1, 3};
    t.n_uint64_data = 6;
    t.uint64_data = uv;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "u.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_I64 && CX_I64P(x)[3] == (1LL << 40) && CX_I64P(x)[4] == INT64_MAX);
        cx_tensor_free(x);
    }
    uv[2] = 1ULL << 63;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "u.pb", &x) == CX_ERR_ARG && x == NULL);
    CHECK(strstr(cx_last_error(), "u.pb: uint64 value 9223372036854775808 at 2 is 2^63 or more"));
    /* double (double_data and raw) is held in float, rounded to nearest */
    double dv[6] = {0.1, -1e-3, 1e10, 1.0 / 3.0, 0, -2.5};
    onnx__tensor_proto__init(&t);
    t.n_dims = 2;
    t.dims = dims;
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
    t.n_double_data = 6;
    t.double_data = dv;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "d.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_F32 && CX_F(x)[0] == 0.1f && CX_F(x)[3] == (float)(1.0 / 3.0) && CX_F(x)[2] == 1e10f);
        cx_tensor_free(x);
    }
    t.n_double_data = 0;
    t.double_data = NULL;
    t.has_raw_data = 1;
    t.raw_data.data = (uint8_t *)dv;
    t.raw_data.len = sizeof dv;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "d.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_F32 && CX_F(x)[1] == -1e-3f && CX_F(x)[5] == -2.5f);
        cx_tensor_free(x);
    }
    /* bfloat16: the upper half of a float, exactly */
    uint16_t bv[6] = {0x3F80, 0xC000, 0x3EAB, 0x7F80, 0x0000, 0x4049};
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16;
    t.raw_data.data = (uint8_t *)bv;
    t.raw_data.len = sizeof bv;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "b.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_F32 && CX_F(x)[0] == 1.0f && CX_F(x)[1] == -2.0f && CX_F(x)[2] == 0.333984375f &&
              isinf(CX_F(x)[3]) && CX_F(x)[5] == 3.140625f);
        cx_tensor_free(x);
    }
    /* and rounding to bfloat16 is to nearest even */
    CHECK(cx_onnx_round_to(1.0f + 1.0f / 256, ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) == 1.0f);
    CHECK(cx_onnx_round_to(1.0f + 3.0f / 256, ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) == 1.0f + 4.0f / 256);
    CHECK(cx_onnx_round_to(1.0f + 1.5f / 256, ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) == 1.0f + 2.0f / 256);
    /* raw little-endian floats */
    float fv[6] = {0.5f, -1, 2, 3, 4, 5};
    onnx__tensor_proto__init(&t);
    t.n_dims = 2;
    t.dims = dims;
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.has_raw_data = 1;
    t.raw_data.data = (uint8_t *)fv;
    t.raw_data.len = sizeof fv;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "r.pb", &x) == CX_OK);
    if (x) {
        CHECK(x->dtype == CX_F32 && CX_F(x)[0] == 0.5f && CX_F(x)[5] == 5.0f);
        cx_tensor_free(x);
    }
    /* float_data holds FLOAT values only: double, float16 and bfloat16 tensors
     * with their values there are refused by name (once read a NULL field) */
    int wrong[3] = {ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
                    ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16};
    for (int k = 0; k < 3; k++) {
        Onnx__TensorProto w;
        onnx__tensor_proto__init(&w);
        w.n_dims = 2;
        w.dims = dims;
        w.has_data_type = 1;
        w.data_type = wrong[k];
        w.n_float_data = 6;
        w.float_data = fv;
        n = onnx__tensor_proto__pack(&w, buf);
        CHECK(cx_onnx_tensor_from_buffer(buf, n, "w.pb", &x) == CX_ERR_FORMAT && x == NULL);
        CHECK(strstr(cx_last_error(), "w.pb: ") && strstr(cx_last_error(), "tensor with its values in a field of another type"));
    }
    t.raw_data.len = sizeof fv - 2;
    n = onnx__tensor_proto__pack(&t, buf);
    CHECK(cx_onnx_tensor_from_buffer(buf, n, "r.pb", &x) == CX_ERR_FORMAT && strstr(cx_last_error(), "whole number"));
}


/* what `cortex onnx info` reads: nodes in order, names, domains, outputs,
 * type names, the printed summary; and a TensorProto file that is missing */
static void test_introspection(void) {
    cx_onnx_model *m;
    CHECK(cx_onnx_load(FIX "mlp.onnx", &m) == CX_OK);
    CHECK(cx_onnx_num_nodes(m) == 9);
    int gemm = 0, softmax_last = 0;
    for (int i = 0; i < cx_onnx_num_nodes(m); i++) {
        CHECK(cx_onnx_node_name(m, i) != NULL);
        CHECK(cx_onnx_node_domain(m, i) != NULL && cx_onnx_node_domain(m, i)[0] == 0);
        gemm += !strcmp(cx_onnx_node_op(m, i), "Gemm");
        if (i == cx_onnx_num_nodes(m) - 1) softmax_last = !strcmp(cx_onnx_node_op(m, i), "Softmax");
    }
    CHECK(gemm == 2 && softmax_last);
    const cx_onnx_value_info *out = cx_onnx_output(m, 0);
    CHECK(out && out->ndim == 2 && out->shape[0] == -1 && out->shape[1] == 5 && out->dtype == CX_F32);
    CHECK(!strcmp(cx_onnx_type_name(1), "float") && !strcmp(cx_onnx_type_name(7), "int64"));
    CHECK(strstr(cx_onnx_type_name(999), "999") != NULL);
    char buf[4096] = {0};
    FILE *f = tmpfile();
    cx_onnx_print_info(m, f);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    CHECK(n > 0 && strstr(buf, "opset 11") && strstr(buf, "Gemm") && strstr(buf, "x: float [?, 6]"));
    cx_onnx_free(m);
    cx_tensor *t = NULL;
    CHECK(cx_onnx_read_tensor("tests/fixtures/onnx/no-such-input.pb", &t) == CX_ERR_IO && t == NULL);
    CHECK(strstr(cx_last_error(), "no-such-input.pb") != NULL);
}

int main(void) {
    RUN(test_introspection);
    cx_set_threads(1);
    RUN(test_mlp_matches_pytorch);
    RUN(test_cnn_matches_pytorch);
    RUN(test_mlp_symbolic_batch);
    RUN(test_params_train);
    RUN(test_built_model_runs);
    RUN(test_fingerprint_when_exposed);
    RUN(test_truncated);
    RUN(test_mutations);
    RUN(test_unknown_op);
    RUN(test_bad_shapes);
    RUN(test_graph_errors);
    RUN(test_tensor_files);
    TEST_END();
}
