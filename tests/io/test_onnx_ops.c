/* ONNX ops beyond the first slice, on models built here with protobuf-c:
 * integer shape arithmetic (Shape -> Gather -> Concat -> Reshape), value
 * types (bool, uint8 wrapping), reductions, comparisons and Where, Einsum
 * forms, LayerNormalization gradients, opsets before 7, and the errors of
 * bad attributes, mismatched types and failing ops (each naming the node). */
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "test.h"

/* ------------------------------------------------------------ a small model builder */

#define MAXN 16
typedef struct {
    void *blocks[1024];
    int nblocks;
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *popset[1];
    Onnx__NodeProto *nodes[MAXN];
    Onnx__TensorProto *inits[MAXN];
    Onnx__ValueInfoProto *ins[MAXN], *outs[MAXN];
} mb;

static void *mb_alloc(mb *b, size_t n) {
    void *p = calloc(1, n ? n : 1);
    b->blocks[b->nblocks++] = p;
    return p;
}

static void mb_init(mb *b, int opset) {
    memset(b, 0, sizeof *b);
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->popset[0] = &b->opset;
    b->model.opset_import = b->popset;
    b->model.n_opset_import = 1;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.graph = &b->graph;
    b->graph.name = "g";
    b->graph.node = b->nodes;
    b->graph.initializer = b->inits;
    b->graph.input = b->ins;
    b->graph.output = b->outs;
}

static void mb_free(mb *b) {
    for (int i = 0; i < b->nblocks; i++) free(b->blocks[i]);
}

/* a list "a,b,,c" split into strings (an empty name: an optional input left out) */
static char **mb_names(mb *b, const char *list, size_t *n) {
    char **v = mb_alloc(b, 8 * sizeof *v);
    char *s = mb_alloc(b, strlen(list) + 1);
    strcpy(s, list);
    *n = 0;
    if (!*list) return v;
    for (char *p = s;; p++) {
        char *c = strchr(p, ',');
        v[(*n)++] = p;
        if (!c) break;
        *c = 0;
        p = c;
    }
    return v;
}

static Onnx__NodeProto *mb_node(mb *b, const char *op, const char *name, const char *in, const char *out) {
    Onnx__NodeProto *n = mb_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)name;
    n->input = mb_names(b, in, &n->n_input);
    n->output = mb_names(b, out, &n->n_output);
    n->attribute = mb_alloc(b, 8 * sizeof *n->attribute);
    b->nodes[b->graph.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mb_attr(mb *b, Onnx__NodeProto *n, const char *name, int type) {
    Onnx__AttributeProto *a = mb_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}
static void mb_attr_i(mb *b, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}
static void mb_attr_f(mb *b, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}
static void mb_attr_s(mb *b, Onnx__NodeProto *n, const char *name, const char *v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)v;
    a->s.len = strlen(v);
}
static void mb_attr_ints(mb *b, Onnx__NodeProto *n, const char *name, int cnt, const int64_t *v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->ints = mb_alloc(b, (size_t)cnt * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)cnt * sizeof *v);
    a->n_ints = (size_t)cnt;
}

static Onnx__ValueInfoProto *mb_vi(mb *b, const char *name, int type, int ndim, const int64_t *dims) {
    Onnx__ValueInfoProto *v = mb_alloc(b, sizeof *v);
    Onnx__TypeProto *t = mb_alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof *tt);
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    v->name = (char *)name;
    v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = type;
    if (ndim >= 0) {
        Onnx__TensorShapeProto *s = mb_alloc(b, sizeof *s);
        onnx__tensor_shape_proto__init(s);
        s->dim = mb_alloc(b, (size_t)(ndim + 1) * sizeof *s->dim);
        for (int i = 0; i < ndim; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
            s->dim[i] = d;
        }
        s->n_dim = (size_t)ndim;
        tt->shape = s;
    }
    return v;
}
static void mb_input(mb *b, const char *name, int type, int ndim, const int64_t *dims) {
    b->ins[b->graph.n_input++] = mb_vi(b, name, type, ndim, dims);
}
static void mb_output(mb *b, const char *name, int type) { b->outs[b->graph.n_output++] = mb_vi(b, name, type, -1, NULL); }

/* an int64 initialiser of n values (1-D) */
static void mb_init_i64(mb *b, const char *name, int n, const int64_t *v) {
    Onnx__TensorProto *t = mb_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->dims = mb_alloc(b, sizeof *t->dims);
    t->dims[0] = n;
    t->n_dims = 1;
    t->int64_data = mb_alloc(b, (size_t)n * sizeof *v);
    memcpy(t->int64_data, v, (size_t)n * sizeof *v);
    t->n_int64_data = (size_t)n;
    b->inits[b->graph.n_initializer++] = t;
}
/* a float initialiser of shape dims */
static void mb_init_f(mb *b, const char *name, int ndim, const int64_t *dims, const float *v) {
    Onnx__TensorProto *t = mb_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->dims = mb_alloc(b, (size_t)(ndim + 1) * sizeof *t->dims);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i], n *= dims[i];
    t->n_dims = (size_t)ndim;
    t->float_data = mb_alloc(b, (size_t)n * sizeof *v);
    memcpy(t->float_data, v, (size_t)n * sizeof *v);
    t->n_float_data = (size_t)n;
    b->inits[b->graph.n_initializer++] = t;
}

static cx_status mb_load(mb *b, cx_onnx_model **m) {
    size_t n = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(n + 1);
    onnx__model_proto__pack(&b->model, buf);
    cx_status st = cx_onnx_load_buffer(buf, n, "built.onnx", m);
    free(buf);
    return st;
}

#define F ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#define U8 ONNX__TENSOR_PROTO__DATA_TYPE__UINT8
#define BOOL ONNX__TENSOR_PROTO__DATA_TYPE__BOOL

/* ------------------------------------------------------------ tests */

/* x [2, 3, 4] -> Shape -> Gather 0 -> Concat(-1) -> Reshape: y [2, 12]; and
 * dims 1 * 2 by integer Mul: n = 12 (int64) */
static void test_shape_gather_reshape(void) {
    mb b;
    mb_init(&b, 13);
    mb_input(&b, "x", F, 3, (const int64_t[]){2, 3, 4});
    mb_init_i64(&b, "i0", 1, (const int64_t[]){0});
    mb_init_i64(&b, "i12", 2, (const int64_t[]){1, 2});
    mb_init_i64(&b, "minus1", 1, (const int64_t[]){-1});
    mb_node(&b, "Shape", "shape", "x", "s");
    mb_attr_i(&b, mb_node(&b, "Gather", "g0", "s,i0", "n0"), "axis", 0);
    mb_attr_i(&b, mb_node(&b, "Concat", "cat", "n0,minus1", "newshape"), "axis", 0);
    mb_node(&b, "Reshape", "re", "x,newshape", "y");
    mb_node(&b, "Gather", "g12", "s,i12", "d12");
    Onnx__NodeProto *r = mb_node(&b, "ReduceProd", "prod", "d12", "n");
    mb_attr_i(&b, r, "keepdims", 0);
    mb_output(&b, "y", F);
    mb_output(&b, "newshape", I64);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    /* ReduceProd runs on float only: an int64 input makes the node unsupported, naming it */
    CHECK(cx_onnx_num_unsupported(m) == 1);
    const char *why = NULL;
    for (int k = 0; k < cx_onnx_num_nodes(m); k++)
        if (cx_onnx_node_unsupported(m, k)) why = cx_onnx_node_unsupported(m, k);
    CHECK_MSG(why && strstr(why, "'prod' (ReduceProd)") && strstr(why, "int64"), "%s", why ? why : "(null)");
    cx_onnx_free(m);
    /* the same with an integer Mul of the two dims */
    b.graph.n_node--;
    mb_node(&b, "Gather", "g1", "d12,i0", "da");
    mb_init_i64(&b, "i1", 1, (const int64_t[]){1});
    mb_node(&b, "Gather", "g2", "d12,i1", "db");
    mb_node(&b, "Mul", "mul", "da,db", "n");
    mb_output(&b, "n", I64);
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    CHECK(cx_onnx_num_unsupported(m) == 0);
    float xv[24];
    for (int i = 0; i < 24; i++) xv[i] = (float)i * 0.5f - 3.0f;
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(2, 3, 4)), *out[3];
    CHECK_MSG(cx_onnx_run(m, &x, out) == CX_OK, "%s", cx_last_error());
    CHECK(out[0] && out[0]->ndim == 2 && out[0]->shape[0] == 2 && out[0]->shape[1] == 12);
    if (out[0]) cxt_allclose(CX_F(out[0]), xv, 24, 0, 0, "y");
    CHECK(out[1] && out[1]->dtype == CX_I64 && out[1]->numel == 2 && CX_I64P(out[1])[0] == 2 && CX_I64P(out[1])[1] == -1);
    CHECK(out[2] && out[2]->dtype == CX_I64 && out[2]->numel == 1 && CX_I64P(out[2])[0] == 12);
    cx_onnx_free(m);
    mb_free(&b);
}

/* uint8 arithmetic wraps as uint8; bool comparisons, Not, Where, Cast */
static void test_value_types(void) {
    mb b;
    mb_init(&b, 13);
    mb_input(&b, "a", U8, 1, (const int64_t[]){3});
    mb_input(&b, "x", F, 1, (const int64_t[]){3});
    mb_input(&b, "y", F, 1, (const int64_t[]){3});
    mb_node(&b, "Add", "add", "a,a", "a2");
    mb_node(&b, "Greater", "gt", "x,y", "g");
    mb_node(&b, "Not", "not", "g", "ng");
    mb_node(&b, "Where", "where", "ng,x,y", "mn");
    mb_attr_i(&b, mb_node(&b, "Cast", "cast", "g", "gf"), "to", F);
    mb_output(&b, "a2", U8);
    mb_output(&b, "g", BOOL);
    mb_output(&b, "mn", F);
    mb_output(&b, "gf", F);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    CHECK(cx_onnx_input(m, 0)->dtype_ok && cx_onnx_input(m, 0)->dtype == CX_I32);
    int32_t av[3] = {250, 7, 128};
    float xv[3] = {1, 5, -2}, yv[3] = {2, 4, -2};
    cx_tensor *in[3] = {cx_from_i32(av, CX_SHAPE(3)), cx_from_data(xv, CX_SHAPE(3)), cx_from_data(yv, CX_SHAPE(3))}, *out[4];
    CHECK_MSG(cx_onnx_run(m, in, out) == CX_OK, "%s", cx_last_error());
    /* 500 mod 256 = 244, 14, 256 mod 256 = 0 */
    CHECK(CX_I32P(out[0])[0] == 244 && CX_I32P(out[0])[1] == 14 && CX_I32P(out[0])[2] == 0);
    CHECK(out[1]->dtype == CX_I32 && CX_I32P(out[1])[0] == 0 && CX_I32P(out[1])[1] == 1 && CX_I32P(out[1])[2] == 0);
    float mn[3] = {1, 4, -2}, gf[3] = {0, 1, 0};
    cxt_allclose(CX_F(out[2]), mn, 3, 0, 0, "min by Where");
    cxt_allclose(CX_F(out[3]), gf, 3, 0, 0, "Cast bool -> float");
    cx_onnx_free(m);
    mb_free(&b);
}

/* ReduceSum over an axes input (keepdims 0), ReduceMax over an attribute,
 * ReduceLogSumExp of large values, noop_with_empty_axes */
static void test_reductions(void) {
    mb b;
    mb_init(&b, 13);
    mb_input(&b, "x", F, 2, (const int64_t[]){2, 3});
    mb_init_i64(&b, "ax1", 1, (const int64_t[]){-1});
    mb_attr_i(&b, mb_node(&b, "ReduceSum", "sum", "x,ax1", "s"), "keepdims", 0);
    Onnx__NodeProto *mx = mb_node(&b, "ReduceMax", "max", "x", "mx");
    mb_attr_ints(&b, mx, "axes", 1, (const int64_t[]){0});
    mb_node(&b, "ReduceLogSumExp", "lse", "x", "lse");
    mb_attr_i(&b, mb_node(&b, "ReduceSum", "noop", "x", "same"), "noop_with_empty_axes", 1);
    mb_output(&b, "s", F);
    mb_output(&b, "mx", F);
    mb_output(&b, "lse", F);
    mb_output(&b, "same", F);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    float xv[6] = {1, 2, 3, 1000, -5, 999};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(2, 3)), *out[4];
    CHECK_MSG(cx_onnx_run(m, &x, out) == CX_OK, "%s", cx_last_error());
    CHECK(out[0]->ndim == 1 && out[0]->shape[0] == 2);
    CHECK_NEAR(CX_F(out[0])[0], 6.0, 1e-5);
    CHECK_NEAR(CX_F(out[0])[1], 1994.0, 1e-3);
    CHECK(out[1]->ndim == 2 && out[1]->shape[0] == 1 && out[1]->shape[1] == 3);
    CHECK_NEAR(CX_F(out[1])[0], 1000.0, 0);
    CHECK_NEAR(CX_F(out[1])[1], 2.0, 0);
    /* log(e^1000 + e^999 + ...) = 1000 + log(1 + e^-1) (finite: the max is taken out) */
    CHECK(out[2]->ndim == 2 && out[2]->numel == 1);
    CHECK_NEAR(CX_F(out[2])[0], 1000.0 + log1p(exp(-1.0)), 1e-3);
    CHECK(out[3] == x);
    cx_onnx_free(m);
    mb_free(&b);
}

static float einsum_run(const char *eq, int n, cx_tensor **in, cx_tensor **out) {
    mb b;
    mb_init(&b, 12);
    static const char *names[2] = {"a", "b"};
    for (int i = 0; i < n; i++) {
        int64_t d[CX_MAX_DIMS];
        for (int k = 0; k < in[i]->ndim; k++) d[k] = in[i]->shape[k];
        mb_input(&b, names[i], F, in[i]->ndim, d);
    }
    mb_attr_s(&b, mb_node(&b, "Einsum", "e", n == 1 ? "a" : "a,b", "y"), "equation", eq);
    mb_output(&b, "y", F);
    cx_onnx_model *m;
    cx_status st = mb_load(&b, &m);
    CHECK_MSG(st == CX_OK, "%s: %s", eq, cx_last_error());
    if (!st) {
        st = cx_onnx_run(m, in, out);
        CHECK_MSG(st == CX_OK, "%s: %s", eq, cx_last_error());
        cx_onnx_free(m);
    }
    mb_free(&b);
    return st ? NAN : 0;
}

/* the common Einsum forms against sums written out */
static void test_einsum(void) {
    float av[24], bv[24];
    for (int i = 0; i < 24; i++) av[i] = (float)((i * 7) % 11) - 5.0f, bv[i] = (float)((i * 5) % 13) * 0.5f - 3.0f;
    cx_tensor *a = cx_from_data(av, CX_SHAPE(2, 3, 4)), *b = cx_from_data(bv, CX_SHAPE(2, 4, 3)), *y = NULL;
    cx_tensor *ab[2] = {a, b};
    /* batch matmul */
    if (einsum_run("bij, bjk -> bik", 2, ab, &y) == 0) {
        CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 3);
        for (int n = 0; n < 2; n++)
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < 3; k++) {
                    double s = 0;
                    for (int j = 0; j < 4; j++) s += av[n * 12 + i * 4 + j] * bv[n * 12 + j * 3 + k];
                    CHECK_NEAR(CX_F(y)[n * 9 + i * 3 + k], s, 1e-4);
                }
    }
    /* transpose, row sums, inner product (implicit output), batch diagonal with an ellipsis */
    cx_tensor *m2 = cx_from_data(av, CX_SHAPE(4, 6));
    if (einsum_run("ij->ji", 1, &m2, &y) == 0) {
        CHECK(y->shape[0] == 6 && y->shape[1] == 4);
        CHECK_NEAR(CX_F(y)[1 * 4 + 2], av[2 * 6 + 1], 0);
    }
    if (einsum_run("ij->i", 1, &m2, &y) == 0) {
        CHECK(y->ndim == 1 && y->shape[0] == 4);
        double s = 0;
        for (int j = 0; j < 6; j++) s += av[6 + j];
        CHECK_NEAR(CX_F(y)[1], s, 1e-5);
    }
    cx_tensor *v[2] = {cx_from_data(av, CX_SHAPE(5)), cx_from_data(bv, CX_SHAPE(5))};
    if (einsum_run("i,i", 2, v, &y) == 0) {
        double s = 0;
        for (int i = 0; i < 5; i++) s += av[i] * bv[i];
        CHECK(y->ndim == 0);
        CHECK_NEAR(CX_F(y)[0], s, 1e-5);
    }
    cx_tensor *sq = cx_from_data(av, CX_SHAPE(2, 1, 3, 3));
    if (einsum_run("...ii->...i", 1, &sq, &y) == 0) {
        CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 1 && y->shape[2] == 3);
        CHECK_NEAR(CX_F(y)[1 * 3 + 2], av[9 + 2 * 3 + 2], 0);
    }
}

/* LayerNormalization: values, and the gradient of its Scale against finite differences */
static void test_layer_norm_grad(void) {
    mb b;
    mb_init(&b, 17);
    mb_input(&b, "x", F, 2, (const int64_t[]){2, 4});
    float sv[4] = {1.0f, -0.5f, 2.0f, 0.25f}, bv[4] = {0.1f, 0.2f, -0.3f, 0.0f};
    mb_init_f(&b, "scale", 1, (const int64_t[]){4}, sv);
    mb_init_f(&b, "bias", 1, (const int64_t[]){4}, bv);
    mb_attr_f(&b, mb_node(&b, "LayerNormalization", "ln", "x,scale,bias", "y"), "epsilon", 1e-3f);
    mb_output(&b, "y", F);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    float xv[8] = {1, 2, 3, 4, -1, 0.5f, 7, 2};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(2, 4)), *y;
    /* values: (x - mean) / sqrt(var + eps) * scale + bias */
    CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
    for (int r = 0; r < 2; r++) {
        double mu = 0, var = 0;
        for (int j = 0; j < 4; j++) mu += xv[r * 4 + j] / 4.0;
        for (int j = 0; j < 4; j++) var += (xv[r * 4 + j] - mu) * (xv[r * 4 + j] - mu) / 4.0;
        for (int j = 0; j < 4; j++)
            CHECK_NEAR(CX_F(y)[r * 4 + j], (xv[r * 4 + j] - mu) / sqrt(var + 1e-3) * sv[j] + bv[j], 1e-5);
    }
    /* d sum(y * w) / d scale */
    const cx_params *p = cx_onnx_params(m);
    cx_tensor *scale = cx_params_find(p, "scale");
    CHECK(scale != NULL);
    float wv[8] = {0.3f, -1, 2, 0.5f, 1, 1, -0.7f, 0.2f};
    cx_tensor *w = cx_from_data(wv, CX_SHAPE(2, 4));
    cx_params_zero_grad(p);
    CHECK(cx_onnx_run(m, &x, &y) == CX_OK);
    cx_backward(cx_sum(cx_mul(y, w)));
    CHECK(scale && scale->grad);
    cx_no_grad_begin();
    for (int j = 0; scale && scale->grad && j < 4; j++) {
        float keep = CX_F(scale)[j];
        double f[2];
        for (int s = 0; s < 2; s++) {
            CX_F(scale)[j] = keep + (s ? 1e-2f : -1e-2f);
            cx_tensor *yy;
            CHECK(cx_onnx_run(m, &x, &yy) == CX_OK);
            f[s] = 0;
            for (int i = 0; i < 8; i++) f[s] += CX_F(yy)[i] * wv[i];
        }
        CX_F(scale)[j] = keep;
        CHECK_NEAR(scale->grad[j], (f[1] - f[0]) / 2e-2, 2e-3);
    }
    cx_no_grad_end();
    cx_params_zero_grad(p);
    cx_onnx_free(m);
    mb_free(&b);
}

/* opset 1 / 6 models run the ops whose definition has not changed since */
static void test_old_opsets(void) {
    mb b;
    mb_init(&b, 6);
    mb_input(&b, "x", F, 1, (const int64_t[]){3});
    mb_node(&b, "Softplus", "sp", "x", "s");
    mb_attr_f(&b, mb_node(&b, "Elu", "elu", "s", "e"), "alpha", 2.0f);
    mb_output(&b, "e", F);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    CHECK(cx_onnx_num_unsupported(m) == 0 && cx_onnx_opset(m) == 6);
    float xv[3] = {-1, 0, 2};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(3)), *y;
    CHECK_MSG(cx_onnx_run(m, &x, &y) == CX_OK, "%s", cx_last_error());
    for (int i = 0; i < 3; i++) CHECK_NEAR(CX_F(y)[i], log1p(exp(xv[i])), 1e-5);
    cx_onnx_free(m);
    /* Add at opset 6 had a broadcast attribute: unsupported there */
    b.graph.n_node = 0;
    mb_node(&b, "Add", "add", "x,x", "e");
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    CHECK(cx_onnx_num_unsupported(m) == 1);
    const char *why = cx_onnx_node_unsupported(m, 0);
    CHECK_MSG(why && strstr(why, "'add' (Add)") && strstr(why, "opset 6"), "%s", why ? why : "(null)");
    cx_onnx_free(m);
    mb_free(&b);
}

/* a bad attribute, inputs of mismatched types, an op failing at run time:
 * one error each naming the node */
static void test_errors(void) {
    mb b;
    mb_init(&b, 13);
    mb_input(&b, "x", F, 2, (const int64_t[]){2, 3});
    mb_attr_i(&b, mb_node(&b, "ReduceMean", "mean", "x", "y"), "keepdims", 5);
    mb_output(&b, "y", F);
    cx_onnx_model *m = NULL;
    CHECK(mb_load(&b, &m) == CX_ERR_FORMAT && m == NULL);
    CHECK_MSG(strstr(cx_last_error(), "built.onnx: node 0 'mean' (ReduceMean): attribute 'keepdims' is 5"), "%s", cx_last_error());
    /* a string where an int belongs */
    b.graph.n_node = 0;
    mb_attr_s(&b, mb_node(&b, "Gather", "g", "x,x", "y"), "axis", "zero");
    CHECK(mb_load(&b, &m) == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "node 0 'g' (Gather): attribute 'axis' is not an int"), "%s", cx_last_error());
    /* Add of float and int64 */
    b.graph.n_node = 0;
    mb_init_i64(&b, "k", 1, (const int64_t[]){1});
    mb_node(&b, "Add", "add", "x,k", "y");
    CHECK(mb_load(&b, &m) == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "node 0 'add' (Add): input 'k' is int64") && strstr(cx_last_error(), "float"), "%s",
              cx_last_error());
    /* Gather with an index out of range: a run-time error naming the node */
    b.graph.n_node = 0;
    mb_init_i64(&b, "idx", 2, (const int64_t[]){0, 5});
    mb_attr_i(&b, mb_node(&b, "Gather", "pick", "x,idx", "y"), "axis", 1);
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    float xv[6] = {0};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(2, 3)), *y = (cx_tensor *)1;
    CHECK(cx_onnx_run(m, &x, &y) == CX_ERR_INVALID && y == NULL);
    CHECK_MSG(strstr(cx_last_error(), "node 0 'pick' (Gather)") && strstr(cx_last_error(), "index 5 out of range"), "%s",
              cx_last_error());
    cx_onnx_free(m);
    mb_free(&b);
}

/* float16 values: read from their bit patterns, held in F32, every result rounded back to float16 */
static void test_float16(void) {
    mb b;
    mb_init(&b, 13);
    mb_input(&b, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1, (const int64_t[]){2});
    Onnx__TensorProto *t = mb_alloc(&b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = "c";
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    t->dims = mb_alloc(&b, sizeof *t->dims);
    t->dims[0] = 2;
    t->n_dims = 1;
    t->int32_data = mb_alloc(&b, 2 * sizeof *t->int32_data);
    t->int32_data[0] = 0x3C00, t->int32_data[1] = 0x7BFF; /* 1.0, 65504 (the largest half) */
    t->n_int32_data = 2;
    b.inits[b.graph.n_initializer++] = t;
    mb_node(&b, "Add", "add", "x,c", "y");
    mb_output(&b, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16);
    cx_onnx_model *m;
    CHECK_MSG(mb_load(&b, &m) == CX_OK, "%s", cx_last_error());
    float xv[2] = {0.1f, 65504.0f};
    cx_tensor *x = cx_from_data(xv, CX_SHAPE(2)), *y;
    CHECK_MSG(cx_onnx_run(m, &x, &y) == CX_OK, "%s", cx_last_error());
    /* 0.1 -> 0.0999755859375 (half), + 1 = 1.0999755859375 -> 1.099609375 (half); 65504 + 65504: infinity */
    CHECK(y->dtype == CX_F32 && CX_F(y)[0] == 1.099609375f && isinf(CX_F(y)[1]) && CX_F(y)[1] > 0);
    cx_onnx_free(m);
    mb_free(&b);
}

int main(void) {
    RUN(test_shape_gather_reshape);
    RUN(test_value_types);
    RUN(test_reductions);
    RUN(test_einsum);
    RUN(test_layer_norm_grad);
    RUN(test_old_opsets);
    RUN(test_errors);
    RUN(test_float16);
    TEST_END();
}
