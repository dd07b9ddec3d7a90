/* ONNX writer: a Net (netdef.c: MLPs, CNNs) or a CharLM (embedding, LSTM,
 * linear) as an ONNX ModelProto packed by protobuf-c (the schema compiled
 * from Debian's onnx.proto at build time), written atomically
 * (cx_write_file_atomic: temp file, fsync, rename). See cortex/onnx.h.
 *
 * Every message of the proto is allocated from one pool owned by the export
 * (freed at the end, also when a check fails inside cx_try), so a failed
 * export frees everything and writes nothing. Initialisers carry their
 * values as raw_data (little-endian float32, the host's order on the
 * machines Cortex builds for; checked below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex.h"
#include "cortex/charlm.h"
#include "cortex/onnx.h"
#include "onnx_internal.h"
#include "../models/netdef_internal.h"
#include "../tensor/internal.h"

/* ------------------------------------------------------------ the pool */
typedef struct {
    void **blocks;
    size_t n, cap;
} pool;

static void *palloc(pool *p, size_t n) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->blocks = cx_xrealloc(p->blocks, p->cap * sizeof *p->blocks);
    }
    void *b = cx_xcalloc(1, n ? n : 1);
    p->blocks[p->n++] = b;
    return b;
}

static char *pstr(pool *p, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = palloc(p, n);
    memcpy(d, s, n);
    return d;
}

static char *pfmt(pool *p, const char *fmt, const char *a, const char *b) {
    char buf[256];
    snprintf(buf, sizeof buf, fmt, a, b);
    return pstr(p, buf);
}

static void pool_free(pool *p) {
    for (size_t i = 0; i < p->n; i++) free(p->blocks[i]);
    free(p->blocks);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------ the graph being built */
typedef struct {
    pool P;
    cx_onnx_export_opts o;
    cx_module *m;
    Onnx__GraphProto *g;
    size_t cap_node, cap_init, cap_in, cap_out;
    int opset;
    /* result */
    uint8_t *bytes;
    size_t size;
} exporter;

#define GROW(ex, arr, n, cap)                                                                                        \
    do {                                                                                                              \
        if ((n) == (cap)) {                                                                                           \
            size_t nc_ = (cap) ? 2 * (cap) : 16;                                                                      \
            void *na_ = palloc(&(ex)->P, nc_ * sizeof *(arr));                                                        \
            if (n) memcpy(na_, (arr), (n) * sizeof *(arr));                                                           \
            (arr) = na_;                                                                                              \
            (cap) = nc_;                                                                                              \
        }                                                                                                             \
    } while (0)

/* An initialiser: float32 values (copied) with the given dims. */
static const char *add_init_f32(exporter *ex, const char *name, const float *v, const int64_t *dims, int nd) {
    Onnx__TensorProto *t = palloc(&ex->P, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = pstr(&ex->P, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)nd;
    t->dims = palloc(&ex->P, (size_t)(nd ? nd : 1) * sizeof *t->dims);
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        t->dims[i] = dims[i];
        n *= dims[i];
    }
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * sizeof(float);
    t->raw_data.data = palloc(&ex->P, t->raw_data.len);
    if (n) memcpy(t->raw_data.data, v, t->raw_data.len);
    GROW(ex, ex->g->initializer, ex->g->n_initializer, ex->cap_init);
    ex->g->initializer[ex->g->n_initializer++] = t;
    return t->name;
}

static const char *add_init_i64(exporter *ex, const char *name, const int64_t *v, int64_t n) {
    Onnx__TensorProto *t = palloc(&ex->P, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = pstr(&ex->P, name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_dims = 1;
    t->dims = palloc(&ex->P, sizeof *t->dims);
    t->dims[0] = n;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * sizeof(int64_t);
    t->raw_data.data = palloc(&ex->P, t->raw_data.len);
    memcpy(t->raw_data.data, v, t->raw_data.len);
    GROW(ex, ex->g->initializer, ex->g->n_initializer, ex->cap_init);
    ex->g->initializer[ex->g->n_initializer++] = t;
    return t->name;
}

/* A tensor of the model (by its state name) as an initialiser of that name. */
static const char *add_param(exporter *ex, const char *name) {
    cx_tensor *t = cx_module_tensor(ex->m, name);
    if (!t) cx_raise(CX_ERR_NOTFOUND, "the model has no tensor '%s'", name);
    if (t->dtype != CX_F32) cx_raise(CX_ERR_ARG, "tensor '%s' is %s, not F32", name, cx_dtype_name(t->dtype));
    int64_t d[CX_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) d[i] = t->shape[i];
    return add_init_f32(ex, name, CX_F(t), d, t->ndim);
}

static const char *add_scalar(exporter *ex, const char *name, float v) { return add_init_f32(ex, name, &v, NULL, 0); }

typedef struct {
    const char *name;
    int type;          /* 0 int, 1 ints, 2 float, 3 string */
    int64_t i;
    const int64_t *ints;
    int n;
    float f;
    const char *s;
} attr;

static Onnx__NodeProto *add_node(exporter *ex, const char *op, const char *name, const char *const *in, int n_in,
                                 const char *const *out, int n_out, const attr *a, int n_attr) {
    Onnx__NodeProto *nd = palloc(&ex->P, sizeof *nd);
    onnx__node_proto__init(nd);
    nd->op_type = pstr(&ex->P, op);
    nd->name = pstr(&ex->P, name);
    nd->n_input = (size_t)n_in;
    nd->input = palloc(&ex->P, (size_t)(n_in ? n_in : 1) * sizeof(char *));
    for (int i = 0; i < n_in; i++) nd->input[i] = pstr(&ex->P, in[i]);
    nd->n_output = (size_t)n_out;
    nd->output = palloc(&ex->P, (size_t)n_out * sizeof(char *));
    for (int i = 0; i < n_out; i++) nd->output[i] = pstr(&ex->P, out[i]);
    nd->n_attribute = (size_t)n_attr;
    nd->attribute = palloc(&ex->P, (size_t)(n_attr ? n_attr : 1) * sizeof *nd->attribute);
    for (int i = 0; i < n_attr; i++) {
        Onnx__AttributeProto *ap = palloc(&ex->P, sizeof *ap);
        onnx__attribute_proto__init(ap);
        ap->name = pstr(&ex->P, a[i].name);
        ap->has_type = 1;
        switch (a[i].type) {
        case 0:
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            ap->has_i = 1;
            ap->i = a[i].i;
            break;
        case 1:
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            ap->n_ints = (size_t)a[i].n;
            ap->ints = palloc(&ex->P, (size_t)a[i].n * sizeof(int64_t));
            memcpy(ap->ints, a[i].ints, (size_t)a[i].n * sizeof(int64_t));
            break;
        case 2:
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
            ap->has_f = 1;
            ap->f = a[i].f;
            break;
        default:
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            ap->has_s = 1;
            ap->s.data = (uint8_t *)pstr(&ex->P, a[i].s);
            ap->s.len = strlen(a[i].s);
            break;
        }
        nd->attribute[i] = ap;
    }
    GROW(ex, ex->g->node, ex->g->n_node, ex->cap_node);
    ex->g->node[ex->g->n_node++] = nd;
    return nd;
}

/* one input, one output, no attributes */
static void node1(exporter *ex, const char *op, const char *name, const char *in, const char *out) {
    add_node(ex, op, name, &in, 1, &out, 1, NULL, 0);
}

/* A graph input or output: elem type, dims (-1: the symbolic dimension named
 * by sym[i]). */
static void add_value_info(exporter *ex, bool input, const char *name, int elem, const int64_t *dims,
                           const char *const *sym, int nd) {
    Onnx__ValueInfoProto *vi = palloc(&ex->P, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = pstr(&ex->P, name);
    Onnx__TypeProto *tp = palloc(&ex->P, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = palloc(&ex->P, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    Onnx__TensorShapeProto *sh = palloc(&ex->P, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)nd;
    sh->dim = palloc(&ex->P, (size_t)nd * sizeof *sh->dim);
    for (int i = 0; i < nd; i++) {
        Onnx__TensorShapeProto__Dimension *d = palloc(&ex->P, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = pstr(&ex->P, sym[i]);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    if (input) {
        GROW(ex, ex->g->input, ex->g->n_input, ex->cap_in);
        ex->g->input[ex->g->n_input++] = vi;
    } else {
        GROW(ex, ex->g->output, ex->g->n_output, ex->cap_out);
        ex->g->output[ex->g->n_output++] = vi;
    }
}

/* ------------------------------------------------------------ Net */

/* y = x W^T + b over the last dimension: Gemm for 2-D input, else MatMul
 * with the transposed weight (a Transpose node; the initialiser keeps the
 * model's name and layout) and Add. */
static void emit_linear(exporter *ex, const char *name, const char *x, const char *y, int in_rank, bool bias) {
    char wn[96], bn[96];
    snprintf(wn, sizeof wn, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    const char *w = add_param(ex, wn), *b = bias ? add_param(ex, bn) : NULL;
    if (in_rank == 2) {
        const char *in[3] = {x, w, b};
        attr a[1] = {{.name = "transB", .type = 0, .i = 1}};
        add_node(ex, "Gemm", name, in, bias ? 3 : 2, &y, 1, a, 1);
        return;
    }
    char *wt = pfmt(&ex->P, "%s.weight_t%s", name, ""), *mm = pfmt(&ex->P, "%s/matmul%s", name, "");
    attr perm = {.name = "perm", .type = 1, .ints = (const int64_t[]){1, 0}, .n = 2};
    add_node(ex, "Transpose", pfmt(&ex->P, "%s/transpose%s", name, ""), &w, 1, (const char *const *)&wt, 1, &perm, 1);
    const char *in[2] = {x, wt};
    add_node(ex, "MatMul", bias ? mm : name, in, 2, bias ? (const char *const *)&mm : &y, 1, NULL, 0);
    if (bias) {
        const char *in2[2] = {mm, b};
        add_node(ex, "Add", pfmt(&ex->P, "%s/add%s", name, ""), in2, 2, &y, 1, NULL, 0);
    }
}

/* x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (Cortex's GELU is the exact one) */
static void emit_gelu(exporter *ex, const char *name, const char *x, const char *y) {
    const char *c_sqrt2 = add_scalar(ex, pfmt(&ex->P, "%s.sqrt2%s", name, ""), 1.41421356237309505f);
    const char *c_one = add_scalar(ex, pfmt(&ex->P, "%s.one%s", name, ""), 1.0f);
    const char *c_half = add_scalar(ex, pfmt(&ex->P, "%s.half%s", name, ""), 0.5f);
    char *d = pfmt(&ex->P, "%s/div%s", name, ""), *e = pfmt(&ex->P, "%s/erf%s", name, ""),
         *a = pfmt(&ex->P, "%s/add%s", name, ""), *m = pfmt(&ex->P, "%s/mul%s", name, "");
    add_node(ex, "Div", d, (const char *[]){x, c_sqrt2}, 2, (const char *const *)&d, 1, NULL, 0);
    node1(ex, "Erf", e, d, e);
    add_node(ex, "Add", a, (const char *[]){e, c_one}, 2, (const char *const *)&a, 1, NULL, 0);
    add_node(ex, "Mul", m, (const char *[]){x, a}, 2, (const char *const *)&m, 1, NULL, 0);
    add_node(ex, "Mul", name, (const char *[]){m, c_half}, 2, &y, 1, NULL, 0);
}

static void emit_net(exporter *ex) {
    cx_module *net = ex->m;
    int n = cx_net_num_layers(net);
    /* the opset: 13, or 17 when a layernorm needs LayerNormalization */
    bool has_ln = false;
    for (int i = 1; i < n; i++) {
        const char *kw;
        cx_net_layer_get(net, i, &kw, NULL, NULL, NULL);
        has_ln = has_ln || !strcmp(kw, "layernorm");
    }
    ex->opset = ex->o.opset ? ex->o.opset : has_ln ? 17 : 13;
    if (has_ln && ex->opset < 17)
        cx_raise(CX_ERR_ARG, "layer '%s' (layernorm) needs opset 17 (LayerNormalization), opset %d asked for",
                 cx_net_layer(net, 1)->name, ex->opset);
    /* value names: the layers' names; the input and the last layer's output
     * are the graph's input and output names */
    const char **val = palloc(&ex->P, (size_t)n * sizeof *val);
    for (int i = 0; i < n; i++) {
        const char *ln = cx_net_layer(net, i)->name;
        val[i] = i == 0 ? ex->o.input_name : i == n - 1 ? ex->o.output_name : ln;
        if (i > 0 && i < n - 1 && (!strcmp(ln, ex->o.input_name) || !strcmp(ln, ex->o.output_name)))
            cx_raise(CX_ERR_ARG, "layer '%s' has the name of the graph's input or output; choose other names", ln);
    }
    if (!strcmp(ex->o.input_name, ex->o.output_name))
        cx_raise(CX_ERR_ARG, "the input and the output have the same name '%s'", ex->o.input_name);

    for (int i = 1; i < n; i++) {
        const char *kw;
        const int *from;
        int nfrom;
        cx_module *mod;
        const cx_net_layer_def *d = cx_net_layer_get(net, i, &kw, &from, &nfrom, &mod);
        const cx_layer_info *li = cx_net_layer(net, i), *pi = cx_net_layer(net, from[0]);
        const char *name = li->name, *x = val[from[0]], *y = val[i];
        int in_rank = pi->out_ndim + 1; /* with the batch dimension */
        int sp = pi->out_ndim - 1;      /* spatial dims of the input */
        char wn[96], bn[96];
        snprintf(wn, sizeof wn, "%s.weight", name);
        snprintf(bn, sizeof bn, "%s.bias", name);
        if (!strcmp(kw, "conv1d") || !strcmp(kw, "conv2d") || !strcmp(kw, "conv3d") || !strcmp(kw, "convt2d")) {
            bool tr = kw[4] == 't';
            int64_t ks[3], st[3], dl[3], pads[6], op[3];
            for (int a = 0; a < sp; a++) {
                ks[a] = d->k;
                st[a] = d->s;
                dl[a] = d->d;
                pads[a] = pads[sp + a] = d->p;
                op[a] = d->op;
            }
            const char *in[3] = {x, add_param(ex, wn), d->bias ? add_param(ex, bn) : NULL};
            attr at[6] = {{.name = "kernel_shape", .type = 1, .ints = ks, .n = sp},
                          {.name = "strides", .type = 1, .ints = st, .n = sp},
                          {.name = "pads", .type = 1, .ints = pads, .n = 2 * sp},
                          {.name = "dilations", .type = 1, .ints = dl, .n = sp},
                          {.name = "group", .type = 0, .i = d->g},
                          {.name = "output_padding", .type = 1, .ints = op, .n = sp}};
            add_node(ex, tr ? "ConvTranspose" : "Conv", name, in, d->bias ? 3 : 2, &y, 1, at, tr ? 6 : 5);
        } else if (!strcmp(kw, "maxpool2d") || !strcmp(kw, "avgpool2d") || !strcmp(kw, "maxpool3d") ||
                   !strcmp(kw, "avgpool3d")) {
            int64_t ks[3], st[3], pads[6];
            for (int a = 0; a < sp; a++) {
                ks[a] = d->k;
                st[a] = d->s;
                pads[a] = pads[sp + a] = d->p;
            }
            bool avg = kw[0] == 'a';
            /* Cortex's average pooling counts the padding zeros (PyTorch's
             * default count_include_pad=True); floor mode */
            attr at[4] = {{.name = "kernel_shape", .type = 1, .ints = ks, .n = sp},
                          {.name = "strides", .type = 1, .ints = st, .n = sp},
                          {.name = "pads", .type = 1, .ints = pads, .n = 2 * sp},
                          {.name = "count_include_pad", .type = 0, .i = 1}};
            add_node(ex, avg ? "AveragePool" : "MaxPool", name, &x, 1, &y, 1, at, avg ? 4 : 3);
        } else if (!strcmp(kw, "adaptiveavgpool2d")) {
            int H = pi->out_shape[1], W = pi->out_shape[2];
            if (H % d->h || W % d->w)
                cx_raise(CX_ERR_ARG,
                         "layer '%s' (adaptiveavgpool2d %dx%d of a %dx%d input): only an output size that divides "
                         "the input size is exported (as AveragePool)",
                         name, d->h, d->w, H, W);
            int64_t ks[2] = {H / d->h, W / d->w};
            attr at[2] = {{.name = "kernel_shape", .type = 1, .ints = ks, .n = 2},
                          {.name = "strides", .type = 1, .ints = ks, .n = 2}};
            add_node(ex, "AveragePool", name, &x, 1, &y, 1, at, 2);
        } else if (!strcmp(kw, "globalavgpool")) {
            node1(ex, "GlobalAveragePool", name, x, y);
        } else if (!strcmp(kw, "batchnorm")) {
            char rm[96], rv[96];
            snprintf(rm, sizeof rm, "%s.running_mean", name);
            snprintf(rv, sizeof rv, "%s.running_var", name);
            const char *in[5] = {x, add_param(ex, wn), add_param(ex, bn), add_param(ex, rm), add_param(ex, rv)};
            attr at[1] = {{.name = "epsilon", .type = 2, .f = (float)d->f}};
            add_node(ex, "BatchNormalization", name, in, 5, &y, 1, at, 1);
        } else if (!strcmp(kw, "layernorm")) {
            const char *in[3] = {x, add_param(ex, wn), add_param(ex, bn)};
            attr at[2] = {{.name = "axis", .type = 0, .i = -d->dims}, {.name = "epsilon", .type = 2, .f = (float)d->f}};
            add_node(ex, "LayerNormalization", name, in, 3, &y, 1, at, 2);
        } else if (!strcmp(kw, "upsample")) {
            float sc[4] = {1, 1, (float)d->f, (float)d->f};
            const char *scales = add_init_f32(ex, pfmt(&ex->P, "%s.scales%s", name, ""), sc, (const int64_t[]){4}, 1);
            const char *in[3] = {x, "", scales};
            attr at[3] = {{.name = "mode", .type = 3, .s = d->bilinear ? "linear" : "nearest"},
                          {.name = "coordinate_transformation_mode", .type = 3,
                           .s = !d->bilinear ? "asymmetric" : d->align ? "align_corners" : "pytorch_half_pixel"},
                          {.name = "nearest_mode", .type = 3, .s = "floor"}};
            add_node(ex, "Resize", name, in, 3, &y, 1, at, d->bilinear ? 2 : 3);
        } else if (!strcmp(kw, "flatten")) {
            attr at[1] = {{.name = "axis", .type = 0, .i = 1}};
            add_node(ex, "Flatten", name, &x, 1, &y, 1, at, 1);
        } else if (!strcmp(kw, "linear")) {
            emit_linear(ex, name, x, y, in_rank, d->bias);
        } else if (!strcmp(kw, "dropout") || !strcmp(kw, "identity")) {
            node1(ex, !strcmp(kw, "dropout") ? "Dropout" : "Identity", name, x, y); /* inference: the identity */
        } else if (!strcmp(kw, "relu") || !strcmp(kw, "tanh") || !strcmp(kw, "sigmoid") || !strcmp(kw, "softplus")) {
            const char *op = kw[0] == 'r' ? "Relu" : kw[0] == 't' ? "Tanh" : kw[1] == 'i' ? "Sigmoid" : "Softplus";
            node1(ex, op, name, x, y);
        } else if (!strcmp(kw, "leaky_relu") || !strcmp(kw, "elu")) {
            bool leaky = kw[0] == 'l';
            /* cx_activation_new: slope 0 means 0.01, alpha 0 means 1 */
            float a = (float)d->f != 0 ? (float)d->f : leaky ? 0.01f : 1.0f;
            attr at[1] = {{.name = "alpha", .type = 2, .f = a}};
            add_node(ex, leaky ? "LeakyRelu" : "Elu", name, &x, 1, &y, 1, at, 1);
        } else if (!strcmp(kw, "gelu")) {
            emit_gelu(ex, name, x, y);
        } else if (!strcmp(kw, "add") || !strcmp(kw, "concat")) {
            const char *in[8];
            for (int k = 0; k < nfrom; k++) in[k] = val[from[k]];
            bool cat = kw[0] == 'c';
            attr at[1] = {{.name = "axis", .type = 0, .i = 1}};
            add_node(ex, cat ? "Concat" : nfrom == 2 ? "Add" : "Sum", name, in, nfrom, &y, 1, at, cat ? 1 : 0);
        } else {
            cx_raise(CX_ERR_ARG, "layer '%s': layer kind '%s' has no ONNX export", name, kw);
        }
    }
    /* graph input and output: [N, shape...] with N symbolic */
    const char *sym[CX_MAX_DIMS + 1] = {ex->o.batch_name};
    int64_t dims[CX_MAX_DIMS + 1] = {-1};
    const cx_layer_info *in0 = cx_net_layer(net, 0), *last = cx_net_layer(net, n - 1);
    for (int i = 0; i < in0->out_ndim; i++) dims[i + 1] = in0->out_shape[i];
    add_value_info(ex, true, ex->o.input_name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, sym, in0->out_ndim + 1);
    for (int i = 0; i < last->out_ndim; i++) dims[i + 1] = last->out_shape[i];
    add_value_info(ex, false, ex->o.output_name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, sym, last->out_ndim + 1);
}

/* ------------------------------------------------------------ CharLM */

/* PyTorch's LSTM rows [i; f; g; o] (4 blocks of H rows, `cols` wide) into
 * ONNX's [i; o; f; c], written at dst. */
static void lstm_reorder(float *dst, const float *src, int H, int cols) {
    static const int from[4] = {0, 3, 1, 2};
    size_t blk = (size_t)H * (size_t)cols;
    for (int b = 0; b < 4; b++) memcpy(dst + (size_t)b * blk, src + (size_t)from[b] * blk, blk * sizeof(float));
}

static const float *f32_of(exporter *ex, const char *name, int64_t numel) {
    cx_tensor *t = cx_module_tensor(ex->m, name);
    if (!t) cx_raise(CX_ERR_NOTFOUND, "the model has no tensor '%s'", name);
    if (t->dtype != CX_F32 || t->numel != numel)
        cx_raise(CX_ERR_SHAPE, "tensor '%s' is not F32 with %lld values", name, (long long)numel);
    return CX_F(t);
}

static void emit_charlm(exporter *ex) {
    if (strcmp(cx_charlm_arch(ex->m), "lstm"))
        cx_raise(CX_ERR_ARG, "a Transformer language model has no ONNX export (only the LSTM CharLM)");
    cx_charlm_config c = cx_charlm_get_config(ex->m);
    int V = c.vocab, E = c.embed, H = c.hidden, L = c.layers;
    ex->opset = ex->o.opset ? ex->o.opset : 13;
    const char *ids = ex->o.input_name, *logits = ex->o.output_name;
    /* ids [T, B] int64 -> embedding rows [T, B, E] */
    const char *emb = add_param(ex, "embed.weight");
    attr ax0 = {.name = "axis", .type = 0, .i = 0};
    add_node(ex, "Gather", "embed", (const char *[]){emb, ids}, 2, (const char *[]){"embed"}, 1, &ax0, 1);
    const char *x = "embed";
    const char *hlist[64], *clist[64];
    if (L > 64) cx_raise(CX_ERR_ARG, "%d LSTM layers: at most 64 are exported", L);
    for (int l = 0; l < L; l++) {
        int in = l == 0 ? E : H;
        char nm[64], sfx[16];
        snprintf(sfx, sizeof sfx, "_l%d", l);
        snprintf(nm, sizeof nm, "lstm%s", sfx);
        float *w = palloc(&ex->P, (size_t)4 * H * in * sizeof(float)), *r = palloc(&ex->P, (size_t)4 * H * H * sizeof(float)),
              *b = palloc(&ex->P, (size_t)8 * H * sizeof(float));
        lstm_reorder(w, f32_of(ex, pfmt(&ex->P, "lstm.weight_ih%s%s", sfx, ""), (int64_t)4 * H * in), H, in);
        lstm_reorder(r, f32_of(ex, pfmt(&ex->P, "lstm.weight_hh%s%s", sfx, ""), (int64_t)4 * H * H), H, H);
        lstm_reorder(b, f32_of(ex, pfmt(&ex->P, "lstm.bias_ih%s%s", sfx, ""), (int64_t)4 * H), H, 1);
        lstm_reorder(b + 4 * H, f32_of(ex, pfmt(&ex->P, "lstm.bias_hh%s%s", sfx, ""), (int64_t)4 * H), H, 1);
        const char *W = add_init_f32(ex, pfmt(&ex->P, "%s.W%s", nm, ""), w, (const int64_t[]){1, 4 * H, in}, 3);
        const char *R = add_init_f32(ex, pfmt(&ex->P, "%s.R%s", nm, ""), r, (const int64_t[]){1, 4 * H, H}, 3);
        const char *B = add_init_f32(ex, pfmt(&ex->P, "%s.B%s", nm, ""), b, (const int64_t[]){1, 8 * H}, 2);
        /* this layer's initial states: h0[l : l + 1], c0[l : l + 1] */
        int64_t se[2] = {l, l + 1};
        const char *st = add_init_i64(ex, pfmt(&ex->P, "%s.start%s", nm, ""), &se[0], 1);
        const char *en = add_init_i64(ex, pfmt(&ex->P, "%s.end%s", nm, ""), &se[1], 1);
        char *h0 = pfmt(&ex->P, "%s/h0%s", nm, ""), *c0 = pfmt(&ex->P, "%s/c0%s", nm, "");
        add_node(ex, "Slice", h0, (const char *[]){"h0", st, en}, 3, (const char *const *)&h0, 1, NULL, 0);
        add_node(ex, "Slice", c0, (const char *[]){"c0", st, en}, 3, (const char *const *)&c0, 1, NULL, 0);
        char *Y = pfmt(&ex->P, "%s/Y%s", nm, "");
        const char *yh = pfmt(&ex->P, "%s/Y_h%s", nm, ""), *yc = pfmt(&ex->P, "%s/Y_c%s", nm, "");
        hlist[l] = yh;
        clist[l] = yc;
        attr at[2] = {{.name = "hidden_size", .type = 0, .i = H}, {.name = "direction", .type = 3, .s = "forward"}};
        add_node(ex, "LSTM", nm, (const char *[]){x, W, R, B, "", h0, c0}, 7, (const char *[]){Y, yh, yc}, 3, at,
                 2);
        /* Y [T, 1, B, H] -> [T, B, H] */
        const char *axes = add_init_i64(ex, pfmt(&ex->P, "%s.axes%s", nm, ""), (const int64_t[]){1}, 1);
        char *ys = pfmt(&ex->P, "%s/out%s", nm, "");
        add_node(ex, "Squeeze", ys, (const char *[]){Y, axes}, 2, (const char *const *)&ys, 1, NULL, 0);
        x = ys;
    }
    emit_linear(ex, "fc", x, logits, 3, true);
    attr ax = {.name = "axis", .type = 0, .i = 0};
    if (L == 1) {
        node1(ex, "Identity", "h_n", hlist[0], "h_n");
        node1(ex, "Identity", "c_n", clist[0], "c_n");
    } else {
        add_node(ex, "Concat", "h_n", hlist, L, (const char *[]){"h_n"}, 1, &ax, 1);
        add_node(ex, "Concat", "c_n", clist, L, (const char *[]){"c_n"}, 1, &ax, 1);
    }
    const char *sym[3] = {"T", ex->o.batch_name, NULL};
    add_value_info(ex, true, ids, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, (const int64_t[]){-1, -1}, sym, 2);
    const char *ssym[3] = {NULL, ex->o.batch_name, NULL};
    add_value_info(ex, true, "h0", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, (const int64_t[]){L, -1, H}, ssym, 3);
    add_value_info(ex, true, "c0", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, (const int64_t[]){L, -1, H}, ssym, 3);
    add_value_info(ex, false, logits, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, (const int64_t[]){-1, -1, V}, sym, 3);
    add_value_info(ex, false, "h_n", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, (const int64_t[]){L, -1, H}, ssym, 3);
    add_value_info(ex, false, "c_n", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, (const int64_t[]){L, -1, H}, ssym, 3);
    const char *names[] = {ids, logits};
    for (int i = 0; i < 2; i++)
        if (!strcmp(names[i], "h0") || !strcmp(names[i], "c0") || !strcmp(names[i], "h_n") || !strcmp(names[i], "c_n") ||
            !strcmp(names[i], "embed"))
            cx_raise(CX_ERR_ARG, "the name '%s' is taken by the LSTM graph (h0, c0, h_n, c_n, embed)", names[i]);
    if (!strcmp(ids, logits)) cx_raise(CX_ERR_ARG, "the input and the output have the same name '%s'", ids);
}

/* ------------------------------------------------------------ the model */

static cx_status export_body(void *user) {
    exporter *ex = user;
    const uint32_t one = 1;
    if (*(const uint8_t *)&one != 1) cx_raise(CX_ERR_ARG, "ONNX export needs a little-endian host (raw_data)");
    Onnx__ModelProto *mp = palloc(&ex->P, sizeof *mp);
    onnx__model_proto__init(mp);
    ex->g = palloc(&ex->P, sizeof *ex->g);
    onnx__graph_proto__init(ex->g);
    const char *kind = cx_module_kind(ex->m);
    if (!strcmp(kind, "Net")) emit_net(ex);
    else if (!strcmp(kind, "CharLM") || !strcmp(kind, "TransformerLM")) emit_charlm(ex);
    else
        cx_raise(CX_ERR_ARG, "cannot export a module of kind '%s' (a Net of cx_net_parse / cx_net_load, or an LSTM "
                             "CharLM)", kind);
    if (ex->opset < 13 || ex->opset > 17) cx_raise(CX_ERR_ARG, "opset %d: the export writes opsets 13 to 17", ex->opset);
    ex->g->name = pstr(&ex->P, kind);
    mp->graph = ex->g;
    mp->has_ir_version = 1;
    mp->ir_version = ex->opset >= 15 ? 8 : 7; /* the IR of ONNX 1.8 (opset 13) / 1.10 (15-16) / 1.12 (17) */
    mp->producer_name = pstr(&ex->P, "cortex");
    mp->producer_version = pstr(&ex->P, CORTEX_VERSION);
    Onnx__OperatorSetIdProto *os = palloc(&ex->P, sizeof *os);
    onnx__operator_set_id_proto__init(os);
    os->domain = pstr(&ex->P, "");
    os->has_version = 1;
    os->version = ex->opset;
    mp->n_opset_import = 1;
    mp->opset_import = palloc(&ex->P, sizeof *mp->opset_import);
    mp->opset_import[0] = os;
    size_t n = onnx__model_proto__get_packed_size(mp);
    if (n > ((size_t)1 << 31) - 1) cx_raise(CX_ERR_ARG, "the model is %zu bytes, over protobuf's 2 GiB", n);
    ex->bytes = palloc(&ex->P, n);
    ex->size = onnx__model_proto__pack(mp, ex->bytes);
    return CX_OK;
}

cx_onnx_export_opts cx_onnx_export_defaults(void) {
    return (cx_onnx_export_opts){.opset = 0, .input_name = "input", .output_name = "output", .batch_name = "N"};
}

cx_status cx_onnx_export_buffer(cx_module *model, const cx_onnx_export_opts *opts, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    if (!model) return cx_set_error(CX_ERR_ARG, "cx_onnx_export: no model (NULL)");
    exporter ex = {0};
    ex.o = opts ? *opts : cx_onnx_export_defaults();
    cx_onnx_export_opts def = cx_onnx_export_defaults();
    if (!ex.o.input_name || !*ex.o.input_name) ex.o.input_name = def.input_name;
    if (!ex.o.output_name || !*ex.o.output_name) ex.o.output_name = def.output_name;
    if (!ex.o.batch_name || !*ex.o.batch_name) ex.o.batch_name = def.batch_name;
    ex.m = model;
    cx_status st = cx_try(export_body, &ex);
    if (st) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        pool_free(&ex.P);
        return cx_set_error(st, "ONNX export: %s", msg);
    }
    void *out = malloc(ex.size ? ex.size : 1);
    if (!out) {
        pool_free(&ex.P);
        return cx_set_error(CX_ERR_NOMEM, "ONNX export: out of memory (%zu bytes)", ex.size);
    }
    memcpy(out, ex.bytes, ex.size);
    pool_free(&ex.P);
    *data = out;
    *size = ex.size;
    return CX_OK;
}

cx_status cx_onnx_export(cx_module *model, const char *path, const cx_onnx_export_opts *opts) {
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_onnx_export: no path (NULL)");
    void *buf;
    size_t n;
    cx_status st = cx_onnx_export_buffer(model, opts, &buf, &n);
    if (st) return st;
    st = cx_write_file_atomic(path, buf, n);
    free(buf);
    return st;
}

cx_status cx_onnx_write_tensor(const char *path, const cx_tensor *t) {
    if (!path || !t) return cx_set_error(CX_ERR_ARG, "cx_onnx_write_tensor: NULL %s", path ? "tensor" : "path");
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t dims[CX_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = t->shape[i];
    tp.n_dims = (size_t)t->ndim;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = t->dtype == CX_F32   ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
                   : t->dtype == CX_I32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                                        : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    tp.has_raw_data = 1;
    tp.raw_data.len = (size_t)t->numel * cx_dtype_size(t->dtype);
    tp.raw_data.data = t->data;
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return cx_set_error(CX_ERR_NOMEM, "cx_onnx_write_tensor: out of memory (%zu bytes)", n);
    onnx__tensor_proto__pack(&tp, buf);
    cx_status st = cx_write_file_atomic(path, buf, n);
    free(buf);
    return st;
}
