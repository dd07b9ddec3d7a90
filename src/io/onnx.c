/* ONNX reader: a ModelProto parsed by protobuf-c (the schema is Debian's
 * onnx.proto, compiled by protoc-c at build time), checked (opset, tensors,
 * a DAG without dangling inputs, attributes) and turned into a runnable
 * model (cortex/onnx.h). The runner and the ops are in onnx_ops.c.
 *
 * Nothing of the file is trusted: protobuf-c bounds every field by the
 * buffer, and every count, dimension and name is checked here before it is
 * used; a failure frees everything made so far and returns one message. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/onnx.h"
#include "onnx_internal.h"
#include "../tensor/internal.h"

#define ONNX_MAX_FILE ((size_t)1 << 31) /* 2 GiB: protobuf's own limit */

/* ------------------------------------------------------------ small helpers */

static const char *nz(const char *s) { return s ? s : ""; }

const char *cx_onnx_type_name(int t) {
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32",
                                  "int64", "string", "bool", "float16", "double", "uint32", "uint64",
                                  "complex64", "complex128", "bfloat16"};
    static _Thread_local char buf[32];
    if (t >= 0 && t < (int)(sizeof names / sizeof *names)) return names[t];
    snprintf(buf, sizeof buf, "type %d", t);
    return buf;
}

/* ONNX data type -> the cx_dtype holding it, -1 when Cortex holds no such
 * type. Cortex has F32, I32 and I64: float16 is held exactly in F32
 * (results rounded back to it: cx_onnx_round_to), double in F32 (rounded
 * to float on reading: computed at float precision), bfloat16 exactly in F32
 * (results rounded back to it), bool, int8,
 * uint8, int16, uint16 exactly in I32 (bool as 0 / 1), uint32 in I64,
 * uint64 in I64 (values below 2^63; a larger one is an error on reading). */
int cx_onnx_storage(int t) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return CX_F32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return CX_I32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return CX_I64;
    default: return -1;
    }
}
static int dtype_of(int t) { return cx_onnx_storage(t); }

/* bytes per value in raw_data */
static size_t raw_size(int t) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return 1;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: return 8;
    default: return 4;
    }
}

/* value i of raw little-endian data of ONNX type t, as int64 (not float) */
static int64_t raw_int(const unsigned char *p, int t, int64_t i) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return p[i] != 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)p[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return p[i];
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: {
        int16_t v;
        memcpy(&v, p + 2 * i, 2);
        return v;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: {
        uint16_t v;
        memcpy(&v, p + 2 * i, 2);
        return v;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    }
}

/* the float of IEEE half-precision bits */
static float half_to_float(uint16_t h) {
    int e = h >> 10 & 31, mant = h & 1023;
    float v = e == 0 ? ldexpf((float)mant, -24) : e == 31 ? (mant ? NAN : INFINITY) : ldexpf((float)(mant | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

float cx_onnx_round_to(float f, int t) {
    if (isnan(f) || isinf(f)) return f;
    if (t == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) { /* the upper 16 bits, rounded to nearest even */
        uint32_t u;
        memcpy(&u, &f, 4);
        u = (u + 0x7FFFu + (u >> 16 & 1u)) & 0xFFFF0000u;
        float r;
        memcpy(&r, &u, 4);
        return r;
    }
    if (t != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16) return f;
    double a = fabs((double)f), q;
    int e;
    frexp(a, &e); /* a in [2^(e-1), 2^e) */
    q = a >= ldexp(1.0, -14) ? ldexp(1.0, e - 11) : ldexp(1.0, -24); /* the spacing of halves there */
    double r = nearbyint(a / q) * q;
    if (r > 65504.0) r = INFINITY;
    return (float)(f < 0 ? -r : r);
}

int64_t cx_onnx_fit(int64_t v, int t) {
    switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return v != 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)(uint8_t)(uint64_t)v;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return (uint8_t)(uint64_t)v;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (int16_t)(uint16_t)(uint64_t)v;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return (uint16_t)(uint64_t)v;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return (int32_t)(uint32_t)(uint64_t)v;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: return (uint32_t)(uint64_t)v;
    default: return v;
    }
}

const char *cx_onnx_node_label(const onnx_node *nd, char *buf, size_t n) {
    const char *name = nz(nd->p->name), *dom = nz(nd->p->domain);
    if (*name) snprintf(buf, n, "node %d '%s' (%s%s%s)", nd->index, name, dom, *dom ? "." : "", nz(nd->p->op_type));
    else snprintf(buf, n, "node %d (%s%s%s)", nd->index, dom, *dom ? "." : "", nz(nd->p->op_type));
    return buf;
}

const Onnx__AttributeProto *cx_onnx_attr(const onnx_node *nd, const char *name) {
    for (size_t i = 0; i < nd->p->n_attribute; i++)
        if (nd->p->attribute[i]->name && !strcmp(nd->p->attribute[i]->name, name)) return nd->p->attribute[i];
    return NULL;
}

static void shape_text(const int64_t *d, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (size_t i = 0; i < n && k < cap; i++) k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", d[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* ------------------------------------------------------------ tensors */

cx_status cx_onnx_tensor_from_proto(const Onnx__TensorProto *tp, const char *what, cx_tensor **out) {
    *out = NULL;
    char sh[160];
    shape_text(tp->dims, tp->n_dims < 16 ? tp->n_dims : 16, sh, sizeof sh);
    if (tp->n_dims > CX_MAX_DIMS)
        return cx_set_error(CX_ERR_FORMAT, "%s: %zu dimensions (at most %d)", what, tp->n_dims, CX_MAX_DIMS);
    int64_t numel = 1;
    int shape[CX_MAX_DIMS];
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0 || tp->dims[i] > CX_ONNX_MAX_DIM)
            return cx_set_error(CX_ERR_FORMAT, "%s: dimension %zu of shape %s is %s (at most %" PRId64 ")", what, i, sh,
                                tp->dims[i] < 0 ? "negative" : "too large", CX_ONNX_MAX_DIM);
        shape[i] = (int)tp->dims[i];
        numel *= tp->dims[i];
        if (numel > CX_ONNX_MAX_NUMEL)
            return cx_set_error(CX_ERR_FORMAT, "%s: shape %s holds more than %" PRId64 " elements", what, sh,
                                CX_ONNX_MAX_NUMEL);
    }
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return cx_set_error(CX_ERR_ARG, "%s: data in an external file is not supported", what);
    if (!tp->has_data_type || tp->data_type == 0)
        return cx_set_error(CX_ERR_FORMAT, "%s: no data type", what);
    int ot = tp->data_type, dt = dtype_of(ot);
    if (dt < 0)
        return cx_set_error(CX_ERR_ARG, "%s: data type %s is not supported (Cortex holds float, float16, bfloat16, double, bool and integers)", what,
                            cx_onnx_type_name(tp->data_type));
    size_t es = raw_size(ot);
    size_t have;
    int sources = (tp->has_raw_data) + (tp->n_float_data > 0) + (tp->n_int32_data > 0) + (tp->n_int64_data > 0) +
                  (tp->n_double_data > 0) + (tp->n_uint64_data > 0) + (tp->n_string_data > 0);
    if (sources > 1) return cx_set_error(CX_ERR_FORMAT, "%s: values in more than one field", what);
    /* the field the values are in: 0 raw, 1 float_data, 2 int32_data, 3 int64_data, 4 uint64_data, 5 double_data */
    int field = -1;
    if (tp->has_raw_data) {
        if (tp->raw_data.len % es)
            return cx_set_error(CX_ERR_FORMAT, "%s: %zu bytes of %s data is not a whole number of values", what,
                                tp->raw_data.len, cx_onnx_type_name(tp->data_type));
        have = tp->raw_data.len / es, field = 0;
    } else if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && tp->n_float_data) {
        have = tp->n_float_data, field = 1;
    } else if (dt == CX_I32 && tp->n_int32_data) {
        have = tp->n_int32_data, field = 2;
    } else if ((ot == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || ot == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) &&
               tp->n_int32_data) {
        have = tp->n_int32_data, field = 2; /* the 16-bit patterns */
    } else if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE && tp->n_double_data) {
        have = tp->n_double_data, field = 5;
    } else if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && tp->n_int64_data) {
        have = tp->n_int64_data, field = 3;
    } else if ((ot == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32 || ot == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64) &&
               tp->n_uint64_data) {
        have = tp->n_uint64_data, field = 4;
    } else if (sources) {
        return cx_set_error(CX_ERR_FORMAT, "%s: %s tensor with its values in a field of another type", what,
                            cx_onnx_type_name(tp->data_type));
    } else {
        have = 0;
    }
    if ((int64_t)have != numel)
        return cx_set_error(CX_ERR_FORMAT, "%s: %zu values for shape %s (%" PRId64 " elements)", what, have, sh, numel);
    cx_tensor *t = cx_tensor_new((cx_dtype)dt, shape, (int)tp->n_dims);
    /* raw data is little-endian, as the host (x86, arm); values of the
     * narrow types are widened and fitted to their type */
    for (int64_t i = 0; i < numel; i++) {
        if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) { /* to the nearest float */
            double d;
            if (field == 0) memcpy(&d, tp->raw_data.data + 8 * i, 8);
            else d = tp->double_data[i];
            CX_F(t)[i] = (float)d;
            continue;
        }
        if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16) { /* the upper half of a float */
            uint16_t h;
            if (field == 0) memcpy(&h, tp->raw_data.data + 2 * i, 2);
            else h = (uint16_t)tp->int32_data[i];
            uint32_t u = (uint32_t)h << 16;
            memcpy(CX_F(t) + i, &u, 4);
            continue;
        }
        if (dt == CX_F32 && ot != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { /* float16 */
            uint16_t h;
            if (field == 0) memcpy(&h, tp->raw_data.data + 2 * i, 2);
            else h = (uint16_t)tp->int32_data[i];
            CX_F(t)[i] = half_to_float(h);
            continue;
        }
        if (dt == CX_F32) {
            if (field == 0) memcpy(CX_F(t) + i, tp->raw_data.data + 4 * i, 4);
            else CX_F(t)[i] = tp->float_data[i];
            continue;
        }
        int64_t v = field == 0   ? raw_int(tp->raw_data.data, ot, i)
                    : field == 2 ? tp->int32_data[i]
                    : field == 3 ? tp->int64_data[i]
                                 : (int64_t)tp->uint64_data[i];
        if (ot == ONNX__TENSOR_PROTO__DATA_TYPE__UINT64 && v < 0) {
            cx_tensor_free(t);
            return cx_set_error(CX_ERR_ARG, "%s: uint64 value %" PRIu64 " at %" PRId64 " is 2^63 or more (Cortex holds uint64 in int64)",
                                what, (uint64_t)v, i);
        }
        v = cx_onnx_fit(v, ot);
        if (dt == CX_I32) CX_I32P(t)[i] = (int32_t)v;
        else CX_I64P(t)[i] = v;
    }
    *out = t;
    return CX_OK;
}

static cx_status read_all(const char *path, unsigned char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cx_set_error(CX_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= ONNX_MAX_FILE) {
                free(b);
                fclose(f);
                return cx_set_error(CX_ERR_FORMAT, "%s: larger than 2 GiB", path);
            }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(f);
                return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
            }
            b = nb, cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return cx_set_error(CX_ERR_IO, "%s: read error", path);
    }
    *buf = b;
    *len = n;
    return CX_OK;
}

cx_status cx_onnx_tensor_from_buffer(const void *data, size_t size, const char *what, cx_tensor **out) {
    *out = NULL;
    if (!what) what = "buffer";
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, data);
    if (!tp) return cx_set_error(CX_ERR_FORMAT, "%s: not a TensorProto (truncated or corrupt protobuf)", what);
    cx_status st = cx_onnx_tensor_from_proto(tp, what, out);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

cx_status cx_onnx_read_tensor(const char *path, cx_tensor **out) {
    unsigned char *b;
    size_t n;
    *out = NULL;
    cx_status st = read_all(path, &b, &n);
    if (st) return st;
    st = cx_onnx_tensor_from_buffer(b, n, path, out);
    free(b);
    return st;
}

/* ------------------------------------------------------------ names */

typedef struct {
    int cap;
    int *slot; /* value id or -1 */
} name_map;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* the id of `name`, -1 if absent; *pos = its slot or the free slot */
static int map_find(const cx_onnx_model *m, const name_map *mp, const char *name, int *pos) {
    int i = (int)(hash_str(name) & (uint64_t)(mp->cap - 1));
    while (mp->slot[i] >= 0) {
        if (!strcmp(m->values[mp->slot[i]].name, name)) break;
        i = (i + 1) & (mp->cap - 1);
    }
    if (pos) *pos = i;
    return mp->slot[i];
}

static int add_value(cx_onnx_model *m, name_map *mp, int pos, const char *name, int producer) {
    int id = m->n_values++;
    onnx_value *v = &m->values[id];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->producer = producer;
    v->dtype = -1;
    mp->slot[pos] = id;
    return id;
}

/* ------------------------------------------------------------ loading */

static cx_status value_info(cx_onnx_model *m, const Onnx__ValueInfoProto *vi, const char *kind, cx_onnx_value_info *o) {
    memset(o, 0, sizeof *o);
    o->name = vi->name;
    o->ndim = -1;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return CX_OK;
    o->onnx_type = tp->tensor_type->has_elem_type ? tp->tensor_type->elem_type : 0;
    int dt = dtype_of(o->onnx_type);
    o->dtype_ok = dt >= 0;
    o->dtype = dt >= 0 ? (cx_dtype)dt : CX_F32;
    const Onnx__TensorShapeProto *sh = tp->tensor_type->shape;
    if (!sh) return CX_OK;
    if (sh->n_dim > CX_MAX_DIMS)
        return cx_set_error(CX_ERR_FORMAT, "%s: graph %s '%s' has %zu dimensions (at most %d)", m->what, kind, vi->name,
                            sh->n_dim, CX_MAX_DIMS);
    o->ndim = (int)sh->n_dim;
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        o->shape[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0 || d->dim_value > CX_ONNX_MAX_DIM)
                return cx_set_error(CX_ERR_FORMAT, "%s: graph %s '%s': dimension %zu is %" PRId64 " (at most %" PRId64 ")",
                                    m->what, kind, vi->name, i, d->dim_value, CX_ONNX_MAX_DIM);
            o->shape[i] = d->dim_value;
        }
    }
    return CX_OK;
}

static void set_unsupported(onnx_node *nd, const char *fmt, ...) {
    char label[256], why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    cx_onnx_node_label(nd, label, sizeof label);
    size_t n = strlen(label) + strlen(why) + 3;
    free(nd->unsupported);
    nd->unsupported = cx_xmalloc(n);
    snprintf(nd->unsupported, n, "%s: %s", label, why);
}

const char *cx_onnx_value_type(const cx_onnx_model *m, int id) {
    const onnx_value *v = &m->values[id];
    return v->otype ? cx_onnx_type_name(v->otype) : v->dtype == CX_I32 ? "int32" : v->dtype == CX_I64 ? "int64" : "float";
}

/* Ops and the opsets before 7 whose definition they keep (ops not listed
 * changed at 7 or later, or Cortex runs them from 7 only). */
static const struct {
    const char *op;
    int since;
} early[] = {
    {"Abs", 6}, {"ArgMax", 1}, {"ArgMin", 1}, {"AveragePool", 1}, {"Ceil", 6}, {"Clip", 6}, {"Concat", 4},
    {"Constant", 1}, {"Conv", 1}, {"Elu", 6}, {"Exp", 6}, {"Flatten", 1}, {"Floor", 6}, {"GlobalAveragePool", 1},
    {"GlobalMaxPool", 1}, {"HardSigmoid", 6}, {"Identity", 1}, {"InstanceNormalization", 6}, {"LeakyRelu", 6},
    {"Log", 6}, {"LogSoftmax", 1}, {"MatMul", 1}, {"Max", 6}, {"MaxPool", 1}, {"Mean", 6}, {"Min", 6}, {"Neg", 6},
    {"Not", 1}, {"Pad", 2}, {"Reciprocal", 6}, {"ReduceL1", 1}, {"ReduceL2", 1}, {"ReduceLogSum", 1},
    {"ReduceLogSumExp", 1}, {"ReduceMax", 1}, {"ReduceMean", 1}, {"ReduceMin", 1}, {"ReduceProd", 1},
    {"ReduceSum", 1}, {"ReduceSumSquare", 1}, {"Relu", 6}, {"Reshape", 5}, {"Selu", 6}, {"Shape", 1},
    {"Sigmoid", 6}, {"Size", 1}, {"Softmax", 1}, {"Softplus", 1}, {"Softsign", 1}, {"Sqrt", 6}, {"Squeeze", 1},
    {"Sum", 6}, {"Tanh", 6}, {"Tile", 6}, {"Transpose", 1}, {"Unsqueeze", 1}, {"Cast", 6},
};

static int op_since(const onnx_op *op) {
    for (size_t i = 0; i < sizeof early / sizeof *early; i++)
        if (!strcmp(early[i].op, op->name)) return early[i].since;
    return op->since > 7 ? op->since : 7;
}

static bool in_mask(unsigned mask, int t) { return t > 0 && t < 32 && (mask >> t & 1); }

/* the op checks, types and unsupported marks, in execution order */
static cx_status check_nodes(cx_onnx_model *m) {
    char label[256];
    const int n_ops = cx_onnx_n_ops + cx_onnx_n_ops_more;
    for (int k = 0; k < m->n_nodes; k++) {
        onnx_node *nd = &m->nodes[k];
        const char *dom = nz(nd->p->domain);
        nd->op = -1;
        if (!*dom || !strcmp(dom, "ai.onnx"))
            for (int i = 0; i < n_ops; i++)
                if (!strcmp(cx_onnx_op_at(i)->name, nd->p->op_type)) nd->op = i;
        for (size_t i = 0; i < nd->p->n_attribute; i++)
            if (!nd->p->attribute[i]->name || !*nd->p->attribute[i]->name)
                return cx_set_error(CX_ERR_FORMAT, "%s: %s: an attribute without a name", m->what,
                                    cx_onnx_node_label(nd, label, sizeof label));
        if (nd->op < 0) {
            set_unsupported(nd, "op not supported");
            continue;
        }
        const onnx_op *op = cx_onnx_op_at(nd->op);
        int n_in = nd->n_in;
        while (n_in > 0 && nd->in[n_in - 1] < 0) n_in--; /* trailing optional inputs left out */
        if (n_in < op->min_in || n_in > op->max_in)
            return cx_set_error(CX_ERR_FORMAT, "%s: %s: %d inputs (the op takes %d to %d)", m->what,
                                cx_onnx_node_label(nd, label, sizeof label), nd->n_in, op->min_in, op->max_in);
        for (int i = 0; i < op->min_in; i++)
            if (nd->in[i] < 0)
                return cx_set_error(CX_ERR_FORMAT, "%s: %s: input %d is required but empty", m->what,
                                    cx_onnx_node_label(nd, label, sizeof label), i);
        for (int i = op->max_out; i < nd->n_out; i++)
            if (nd->out[i] >= 0) {
                set_unsupported(nd, "output %d ('%s') is not computed by Cortex", i, m->values[nd->out[i]].name);
                break;
            }
        int named = 0; /* optional outputs (e.g. Y of an RNN) may be left out */
        for (int i = 0; i < nd->n_out; i++) named += nd->out[i] >= 0;
        if (!named)
            return cx_set_error(CX_ERR_FORMAT, "%s: %s: no output", m->what, cx_onnx_node_label(nd, label, sizeof label));
        if (m->opset && op_since(op) > m->opset)
            set_unsupported(nd, "%s at opset %d (Cortex runs the definitions of opset %d on)", op->name, m->opset,
                            op_since(op));
        /* inputs of type T: one type, one Cortex runs the op on */
        unsigned types = op->types ? op->types : T_FLOAT;
        int T = 0;
        for (int i = 0; i < nd->n_in && !nd->unsupported; i++) {
            if (nd->in[i] < 0) continue;
            const onnx_value *v = &m->values[nd->in[i]];
            if (v->dtype == -2) {
                set_unsupported(nd, "input '%s' is %s, a type Cortex does not hold", v->name,
                                v->otype ? cx_onnx_type_name(v->otype) : "of a type");
                break;
            }
            if (!(i < 32 ? op->float_in >> i & 1 : op->float_in == ~0u) || !v->otype) continue;
            if (!in_mask(types, v->otype))
                set_unsupported(nd, "input '%s' is %s (Cortex runs %s on %s)", v->name, cx_onnx_type_name(v->otype),
                                op->name, types == T_FLOAT ? "float" : "other types");
            else if (T && v->otype != T)
                return cx_set_error(CX_ERR_FORMAT, "%s: %s: input '%s' is %s, another input of the same type is %s",
                                    m->what, cx_onnx_node_label(nd, label, sizeof label), v->name,
                                    cx_onnx_type_name(v->otype), cx_onnx_type_name(T));
            else T = v->otype;
        }
        const char *why = NULL;
        nd->a.to = 0;
        memset(nd->a.out_types, 0, sizeof nd->a.out_types);
        cx_status st = op->check(m, nd, &why);
        if (st) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", cx_last_error());
            return cx_set_error(st, "%s: %s: %s", m->what, cx_onnx_node_label(nd, label, sizeof label), msg);
        }
        if (why && !nd->unsupported) set_unsupported(nd, "%s", why);
        if (nd->unsupported) continue;
        int ot = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, t0 = nd->n_in > 0 && nd->in[0] >= 0 ? m->values[nd->in[0]].otype : 0;
        if (t0 == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 || t0 == ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16 ||
            t0 == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
            ot = t0; /* the float ops keep float16, bfloat16 and double */
        switch (op->out_same) {
        case OUT_SAME: ot = nd->in[0] >= 0 ? m->values[nd->in[0]].otype : 0; break;
        case OUT_CONST: ot = nd->a.value ? nd->a.to : 0; break;
        case OUT_BOOL: ot = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL; break;
        case OUT_I64: ot = ONNX__TENSOR_PROTO__DATA_TYPE__INT64; break;
        case OUT_SAME1: ot = nd->n_in > 1 && nd->in[1] >= 0 ? m->values[nd->in[1]].otype : 0; break;
        case OUT_ATTR: ot = nd->a.to; break;
        default: break;
        }
        for (int i = 0; i < nd->n_out && i < op->max_out; i++)
            if (nd->out[i] >= 0) {
                onnx_value *v = &m->values[nd->out[i]];
                v->otype = i >= 1 && i < 4 && nd->a.out_types[i] ? nd->a.out_types[i] : ot;
                v->dtype = v->otype ? cx_onnx_storage(v->otype) : -1;
            }
    }
    for (int k = 0; k < m->n_nodes; k++) m->n_unsupported += m->nodes[k].unsupported != NULL;
    return CX_OK;
}

static cx_status build(cx_onnx_model *m) {
    const Onnx__ModelProto *mp = m->proto;
    char label[256];
    /* opset */
    int64_t opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = nz(mp->opset_import[i]->domain);
        if (!*d || !strcmp(d, "ai.onnx")) opset = mp->opset_import[i]->has_version ? mp->opset_import[i]->version : 0;
    }
    /* no default-domain opset: valid when no node uses that domain (checked below) */
    if (opset >= 0 && (opset < 1 || opset > 17))
        return cx_set_error(CX_ERR_ARG, "%s: opset %" PRId64 " (Cortex reads opsets 1 to 17)", m->what, opset);
    m->opset = opset < 0 ? 0 : (int)opset;
    const Onnx__GraphProto *g = mp->graph;
    if (!g) return cx_set_error(CX_ERR_FORMAT, "%s: no graph (an empty or non-ONNX file?)", m->what);
    for (size_t i = 0; i < g->n_node && opset < 0; i++) {
        const char *d = nz(g->node[i]->domain);
        if (!*d || !strcmp(d, "ai.onnx"))
            return cx_set_error(CX_ERR_FORMAT, "%s: node %zu '%s' (%s) is in the default domain, whose opset the model does not import",
                                m->what, i, nz(g->node[i]->name), nz(g->node[i]->op_type));
    }
    if (g->n_sparse_initializer) return cx_set_error(CX_ERR_ARG, "%s: sparse initialisers are not supported", m->what);
    /* every name the graph can define or use */
    size_t bound = g->n_initializer + g->n_input + 1;
    for (size_t i = 0; i < g->n_node; i++) {
        if (!g->node[i]->op_type || !*g->node[i]->op_type)
            return cx_set_error(CX_ERR_FORMAT, "%s: node %zu '%s' has no op type", m->what, i, nz(g->node[i]->name));
        bound += g->node[i]->n_output;
    }
    if (bound > (1u << 28)) return cx_set_error(CX_ERR_FORMAT, "%s: too many values", m->what);
    name_map map;
    map.cap = 16;
    while ((size_t)map.cap < 2 * bound) map.cap *= 2;
    map.slot = cx_xmalloc((size_t)map.cap * sizeof *map.slot);
    for (int i = 0; i < map.cap; i++) map.slot[i] = -1;
    m->values = cx_xmalloc(bound * sizeof *m->values);
    cx_status st = CX_OK;
    int pos;
    /* initialisers */
    for (size_t i = 0; i < g->n_initializer && !st; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        const char *name = tp->name;
        if (!name || !*name) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: initialiser %zu has no name", m->what, i);
            break;
        }
        if (map_find(m, &map, name, &pos) >= 0) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: two initialisers named '%s'", m->what, name);
            break;
        }
        int id = add_value(m, &map, pos, name, -2);
        char what[300];
        snprintf(what, sizeof what, "%s: initialiser '%s'", m->what, name);
        cx_tensor *t = NULL;
        cx_status ts = cx_onnx_tensor_from_proto(tp, what, &t);
        if (ts == CX_ERR_ARG && tp->has_data_type && dtype_of(tp->data_type) < 0) {
            m->values[id].dtype = -2; /* a type Cortex does not have: its users are unsupported */
            m->values[id].otype = tp->data_type;
            continue;
        }
        if (ts) {
            st = ts;
            break;
        }
        cx_tensor_set_name(t, name);
        if (t->dtype == CX_F32) {
            t->requires_grad = true;
            cx_params_add(&m->params, t);
        }
        m->values[id].init = t;
        m->values[id].dtype = t->dtype;
        m->values[id].otype = tp->data_type;
    }
    /* graph inputs (an input that is also an initialiser is the initialiser) */
    m->inputs = cx_xmalloc((g->n_input + 1) * sizeof *m->inputs);
    m->input_ids = cx_xmalloc((g->n_input + 1) * sizeof *m->input_ids);
    for (size_t i = 0; i < g->n_input && !st; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        if (!vi->name || !*vi->name) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: graph input %zu has no name", m->what, i);
            break;
        }
        int id = map_find(m, &map, vi->name, &pos);
        if (id >= 0 && m->values[id].producer == -2) continue;
        if (id >= 0) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: two graph inputs named '%s'", m->what, vi->name);
            break;
        }
        cx_onnx_value_info *o = &m->inputs[m->n_inputs];
        if ((st = value_info(m, vi, "input", o))) break;
        id = add_value(m, &map, pos, vi->name, -1);
        m->values[id].dtype = o->onnx_type == 0 ? -1 : o->dtype_ok ? (int)o->dtype : -2;
        m->values[id].otype = o->onnx_type;
        m->input_ids[m->n_inputs++] = id;
    }
    /* node outputs: one producer per name */
    int nn = (int)g->n_node;
    if (!st) {
        m->nodes = cx_xmalloc(((size_t)nn + 1) * sizeof *m->nodes);
        memset(m->nodes, 0, ((size_t)nn + 1) * sizeof *m->nodes);
    }
    for (int k = 0; k < nn && !st; k++) {
        onnx_node *nd = &m->nodes[k];
        nd->p = g->node[k];
        nd->index = k;
        nd->n_in = (int)nd->p->n_input;
        nd->n_out = (int)nd->p->n_output;
        nd->in = cx_xmalloc(((size_t)nd->n_in + 1) * sizeof *nd->in);
        nd->out = cx_xmalloc(((size_t)nd->n_out + 1) * sizeof *nd->out);
        for (int i = 0; i < nd->n_out; i++) {
            const char *name = nd->p->output[i];
            nd->out[i] = -1;
            if (!*name) continue;
            int id = map_find(m, &map, name, &pos);
            if (id >= 0) {
                const onnx_value *v = &m->values[id];
                char by[300];
                if (v->producer >= 0) cx_onnx_node_label(&m->nodes[v->producer], by, sizeof by);
                else snprintf(by, sizeof by, "%s", v->producer == -1 ? "a graph input" : "an initialiser");
                st = cx_set_error(CX_ERR_FORMAT, "%s: %s: output '%s' is already produced by %s", m->what,
                                  cx_onnx_node_label(nd, label, sizeof label), name, by);
                break;
            }
            nd->out[i] = add_value(m, &map, pos, name, k);
        }
    }
    m->n_nodes = st ? m->n_nodes : nn;
    /* node inputs: each defined somewhere */
    for (int k = 0; k < nn && !st; k++) {
        onnx_node *nd = &m->nodes[k];
        for (int i = 0; i < nd->n_in; i++) {
            const char *name = nd->p->input[i];
            nd->in[i] = *name ? map_find(m, &map, name, NULL) : -1;
            if (*name && nd->in[i] < 0) {
                st = cx_set_error(CX_ERR_FORMAT,
                                  "%s: %s: input '%s' is produced by no node, graph input or initialiser (a dangling input)",
                                  m->what, cx_onnx_node_label(nd, label, sizeof label), name);
                break;
            }
        }
    }
    /* graph outputs */
    m->outputs = cx_xmalloc((g->n_output + 1) * sizeof *m->outputs);
    m->output_ids = cx_xmalloc((g->n_output + 1) * sizeof *m->output_ids);
    for (size_t i = 0; i < g->n_output && !st; i++) {
        const Onnx__ValueInfoProto *vi = g->output[i];
        int id = vi->name && *vi->name ? map_find(m, &map, vi->name, NULL) : -1;
        if (id < 0) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: graph output '%s' is produced by no node, input or initialiser", m->what,
                              nz(vi->name));
            break;
        }
        if ((st = value_info(m, vi, "output", &m->outputs[m->n_outputs]))) break;
        m->output_ids[m->n_outputs++] = id;
    }
    if (!st && m->n_outputs == 0) st = cx_set_error(CX_ERR_FORMAT, "%s: the graph has no outputs", m->what);
    free(map.slot);
    if (st) return st;
    /* execution order (Kahn's algorithm, file order among ready nodes) */
    int *deps = cx_xmalloc(((size_t)nn + 1) * sizeof *deps);
    int *first = cx_xmalloc(((size_t)nn + 2) * sizeof *first);
    memset(deps, 0, ((size_t)nn + 1) * sizeof *deps);
    memset(first, 0, ((size_t)nn + 2) * sizeof *first);
    size_t edges = 0;
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < m->nodes[k].n_in; i++) {
            int id = m->nodes[k].in[i];
            if (id >= 0 && m->values[id].producer >= 0) {
                deps[k]++;
                first[m->values[id].producer + 1]++;
                edges++;
            }
        }
    for (int k = 0; k < nn; k++) first[k + 1] += first[k];
    int *adj = cx_xmalloc((edges + 1) * sizeof *adj);
    int *fill = cx_xmalloc(((size_t)nn + 1) * sizeof *fill);
    memcpy(fill, first, (size_t)nn * sizeof *fill);
    for (int k = 0; k < nn; k++)
        for (int i = 0; i < m->nodes[k].n_in; i++) {
            int id = m->nodes[k].in[i];
            if (id >= 0 && m->values[id].producer >= 0) adj[fill[m->values[id].producer]++] = k;
        }
    int *queue = cx_xmalloc(((size_t)nn + 1) * sizeof *queue), qh = 0, qt = 0;
    for (int k = 0; k < nn; k++)
        if (!deps[k]) queue[qt++] = k;
    while (qh < qt) {
        int k = queue[qh++];
        for (int e = first[k]; e < first[k + 1]; e++)
            if (--deps[adj[e]] == 0) queue[qt++] = adj[e];
    }
    if (qt < nn) {
        int k = 0;
        while (deps[k] == 0) k++;
        const onnx_node *nd = &m->nodes[k];
        const char *via = "";
        for (int i = 0; i < nd->n_in; i++) {
            int id = nd->in[i];
            if (id >= 0 && m->values[id].producer >= 0 && deps[m->values[id].producer] > 0) {
                via = m->values[id].name;
                break;
            }
        }
        st = cx_set_error(CX_ERR_FORMAT, "%s: the graph has a cycle: %s needs '%s', which depends on its own output",
                          m->what, cx_onnx_node_label(nd, label, sizeof label), via);
    } else {
        /* reorder nodes; producers become execution positions */
        onnx_node *ord = cx_xmalloc(((size_t)nn + 1) * sizeof *ord);
        for (int i = 0; i < nn; i++) ord[i] = m->nodes[queue[i]];
        free(m->nodes);
        m->nodes = ord;
        for (int i = 0; i < nn; i++)
            for (int j = 0; j < ord[i].n_out; j++)
                if (ord[i].out[j] >= 0) m->values[ord[i].out[j]].producer = i;
    }
    free(deps), free(first), free(adj), free(fill), free(queue);
    if (st) return st;
    if ((st = check_nodes(m))) return st;
    cx_onnx_opt_build(m);
    return CX_OK;
}

void cx_onnx_free(cx_onnx_model *m) {
    if (!m) return;
    cx_onnx_opt_free(m);
    for (int i = 0; i < m->n_values; i++) cx_tensor_free(m->values[i].init);
    for (int k = 0; k < m->n_nodes; k++) {
        free(m->nodes[k].in);
        free(m->nodes[k].out);
        free(m->nodes[k].unsupported);
        free(m->nodes[k].a.ints);
        cx_tensor_free(m->nodes[k].a.value);
    }
    /* nodes made before a failure (n_nodes not yet set) */
    if (m->nodes && m->n_nodes == 0 && m->proto && m->proto->graph)
        for (size_t k = 0; k < m->proto->graph->n_node; k++) {
            free(m->nodes[k].in);
            free(m->nodes[k].out);
        }
    free(m->nodes);
    free(m->values);
    free(m->inputs), free(m->outputs), free(m->input_ids), free(m->output_ids);
    cx_params_free(&m->params);
    if (m->proto) onnx__model_proto__free_unpacked(m->proto, NULL);
    free(m);
}

cx_status cx_onnx_load_buffer(const void *data, size_t size, const char *what, cx_onnx_model **out) {
    *out = NULL;
    if (!what) what = "buffer";
    if (size == 0) return cx_set_error(CX_ERR_FORMAT, "%s: empty file", what);
    cx_onnx_model *m = cx_xmalloc(sizeof *m);
    memset(m, 0, sizeof *m);
    snprintf(m->what, sizeof m->what, "%s", what);
    cx_params_init(&m->params);
    m->proto = onnx__model_proto__unpack(NULL, size, data);
    if (!m->proto) {
        cx_onnx_free(m);
        return cx_set_error(CX_ERR_FORMAT, "%s: not an ONNX model (truncated or corrupt protobuf)", what);
    }
    cx_status st = build(m);
    if (st) {
        cx_onnx_free(m);
        return st;
    }
    *out = m;
    return CX_OK;
}

cx_status cx_onnx_load(const char *path, cx_onnx_model **out) {
    unsigned char *b;
    size_t n;
    *out = NULL;
    cx_status st = read_all(path, &b, &n);
    if (st) return st;
    st = cx_onnx_load_buffer(b, n, path, out);
    free(b);
    return st;
}

/* ------------------------------------------------------------ accessors */

int cx_onnx_opset(const cx_onnx_model *m) { return m->opset; }
int cx_onnx_num_inputs(const cx_onnx_model *m) { return m->n_inputs; }
int cx_onnx_num_outputs(const cx_onnx_model *m) { return m->n_outputs; }
const cx_onnx_value_info *cx_onnx_input(const cx_onnx_model *m, int i) {
    return i >= 0 && i < m->n_inputs ? &m->inputs[i] : NULL;
}
const cx_onnx_value_info *cx_onnx_output(const cx_onnx_model *m, int i) {
    return i >= 0 && i < m->n_outputs ? &m->outputs[i] : NULL;
}
int cx_onnx_num_nodes(const cx_onnx_model *m) { return m->n_nodes; }
const char *cx_onnx_node_op(const cx_onnx_model *m, int i) { return i >= 0 && i < m->n_nodes ? m->nodes[i].p->op_type : NULL; }
const char *cx_onnx_node_name(const cx_onnx_model *m, int i) {
    return i >= 0 && i < m->n_nodes ? nz(m->nodes[i].p->name) : NULL;
}
const char *cx_onnx_node_domain(const cx_onnx_model *m, int i) {
    return i >= 0 && i < m->n_nodes ? nz(m->nodes[i].p->domain) : NULL;
}
const char *cx_onnx_node_unsupported(const cx_onnx_model *m, int i) {
    return i >= 0 && i < m->n_nodes ? m->nodes[i].unsupported : NULL;
}
int cx_onnx_num_unsupported(const cx_onnx_model *m) { return m->n_unsupported; }
const cx_params *cx_onnx_params(const cx_onnx_model *m) {
    cx_onnx_opt_touch(m); /* the caller may change them */
    return &m->params;
}

static void print_vi(FILE *f, const cx_onnx_value_info *v) {
    fprintf(f, "  %s: %s", v->name, v->onnx_type ? cx_onnx_type_name(v->onnx_type) : "?");
    if (v->ndim < 0) {
        fprintf(f, " (shape not given)\n");
        return;
    }
    fprintf(f, " [");
    for (int i = 0; i < v->ndim; i++) {
        if (v->shape[i] < 0) fprintf(f, "%s?", i ? ", " : "");
        else fprintf(f, "%s%" PRId64, i ? ", " : "", v->shape[i]);
    }
    fprintf(f, "]\n");
}

void cx_onnx_print_info(const cx_onnx_model *m, FILE *f) {
    const Onnx__ModelProto *p = m->proto;
    fprintf(f, "%s: ONNX IR %" PRId64 ", opset %d", m->what, p->has_ir_version ? p->ir_version : (int64_t)0, m->opset);
    if (p->producer_name && *p->producer_name)
        fprintf(f, ", made by %s%s%s", p->producer_name, p->producer_version && *p->producer_version ? " " : "",
                nz(p->producer_version));
    fprintf(f, "\ninputs:\n");
    for (int i = 0; i < m->n_inputs; i++) print_vi(f, &m->inputs[i]);
    fprintf(f, "outputs:\n");
    for (int i = 0; i < m->n_outputs; i++) print_vi(f, &m->outputs[i]);
    fprintf(f, "nodes: %d\n", m->n_nodes);
    /* count per op, in order of first appearance */
    int *done = cx_xmalloc(((size_t)m->n_nodes + 1) * sizeof *done);
    memset(done, 0, ((size_t)m->n_nodes + 1) * sizeof *done);
    for (int k = 0; k < m->n_nodes; k++) {
        if (done[k]) continue;
        int n = 0, bad = 0;
        for (int j = k; j < m->n_nodes; j++)
            if (!strcmp(m->nodes[j].p->op_type, m->nodes[k].p->op_type) &&
                !strcmp(nz(m->nodes[j].p->domain), nz(m->nodes[k].p->domain))) {
                done[j] = 1;
                n++;
                bad += m->nodes[j].unsupported != NULL;
            }
        const char *d = nz(m->nodes[k].p->domain);
        fprintf(f, "  %s%s%-20s %4d%s\n", d, *d ? "." : "", m->nodes[k].p->op_type, n,
                bad == n ? "  (unsupported)" : bad ? "  (some unsupported)" : "");
    }
    free(done);
    fprintf(f, "parameters: %d tensors, %" PRId64 " values\n", m->params.n, cx_params_count(&m->params));
    if (!m->n_unsupported) {
        fprintf(f, "unsupported: none (cortex onnx run can run it)\n");
        return;
    }
    fprintf(f, "unsupported: %d node%s\n", m->n_unsupported, m->n_unsupported == 1 ? "" : "s");
    for (int k = 0; k < m->n_nodes; k++)
        if (m->nodes[k].unsupported) fprintf(f, "  %s\n", m->nodes[k].unsupported);
}
