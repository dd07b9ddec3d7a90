/* ONNX ops on Cortex ops, and the graph runner (cx_onnx_run).
 *
 * Each op has a check (at load: attribute types and values, defaults; a
 * variant Cortex does not run is reported as unsupported) and a run (inside
 * cx_try: a failed check of a Cortex op comes back as a status naming the
 * node). Semantics follow the ONNX operator documents for opsets 7..17. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/conv.h"
#include "cortex/core.h"
#include "cortex/norm.h"
#include "cortex/onnx.h"
#include "cortex/pool.h"
#include "onnx_internal.h"
#include "../tensor/internal.h"

/* ------------------------------------------------------------ attributes */

/* the attribute's type (IR < 0.0.2 files may leave it out: guessed from the field set) */
static int attr_type(const Onnx__AttributeProto *a) {
    if (a->has_type) return (int)a->type;
    if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    return 0;
}

static cx_status attr_int(const onnx_node *nd, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    *out = def;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not an int", name);
    if (a->i < lo || a->i > hi)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is %lld (expected %lld to %lld)", name, (long long)a->i,
                            (long long)lo, (long long)hi);
    *out = a->i;
    return CX_OK;
}

static cx_status attr_float(const onnx_node *nd, const char *name, float def, float *out) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    *out = def;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not a float", name);
    *out = a->f;
    return CX_OK;
}

/* a list of ints into v[max]; *n = its length (0 when absent) */
static cx_status attr_ints(const onnx_node *nd, const char *name, int max, int64_t lo, int64_t hi, int *n, int *v) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    *n = 0;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not a list of ints", name);
    if (a->n_ints > (size_t)max)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' has %zu values (at most %d)", name, a->n_ints, max);
    for (size_t i = 0; i < a->n_ints; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi)
            return cx_set_error(CX_ERR_FORMAT, "attribute '%s': value %lld out of range [%lld, %lld]", name,
                                (long long)a->ints[i], (long long)lo, (long long)hi);
        v[i] = (int)a->ints[i];
    }
    *n = (int)a->n_ints;
    return CX_OK;
}

/* auto_pad: 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
static cx_status attr_auto_pad(const onnx_node *nd, int *out) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "auto_pad");
    *out = 0;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return cx_set_error(CX_ERR_FORMAT, "attribute 'auto_pad' is not a string");
    static const char *names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 4; i++)
        if (a->s.len == strlen(names[i]) && !memcmp(a->s.data, names[i], a->s.len)) {
            *out = i;
            return CX_OK;
        }
    return cx_set_error(CX_ERR_FORMAT, "attribute 'auto_pad' is '%.*s' (NOTSET, SAME_UPPER, SAME_LOWER or VALID)",
                        (int)(a->s.len > 40 ? 40 : a->s.len), (const char *)a->s.data);
}

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        cx_status st_ = (x);                                                                                           \
        if (st_) return st_;                                                                                           \
    } while (0)

/* ------------------------------------------------------------ helpers */

static int64_t prod(const int *s, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= s[i];
    return p;
}

/* Padding makes at most max(2^20, 64 x the input's size) values and never
 * more than 2^27 (512 MiB of floats): a file cannot make the runner
 * allocate without bound. */
#define ONNX_MAX_PADDED ((int64_t)1 << 27)

/* x padded along axis; base: the size of the tensor before any padding */
static cx_tensor *pad_axis(cx_tensor *x, int axis, int before, int after, float v, int64_t base) {
    if (!before && !after) return x;
    int64_t lim = base < ((int64_t)1 << 14) ? (int64_t)1 << 20 : 64 * base;
    if (lim > ONNX_MAX_PADDED) lim = ONNX_MAX_PADDED;
    int64_t size = (int64_t)x->shape[axis] + before + after;
    for (int j = 0; j < x->ndim && size <= lim; j++)
        if (j != axis) size *= x->shape[j];
    if (size > lim)
        cx_fatal("padding makes a tensor of more than %lld values (from %lld)", (long long)lim, (long long)base);
    cx_tensor *parts[3];
    int n = 0, sh[CX_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    if (before) {
        sh[axis] = before;
        parts[n++] = cx_full(sh, x->ndim, v);
    }
    parts[n++] = x;
    if (after) {
        sh[axis] = after;
        parts[n++] = cx_full(sh, x->ndim, v);
    }
    return cx_concat(parts, n, axis);
}

/* The begin / end pads of each spatial dim of x [N, C, *sp]: from auto_pad or
 * the pads attribute. k: kernel, s: stride, d: dilation per spatial dim. */
static void spatial_pads(const char *op, const onnx_attrs *a, const cx_tensor *x, int nsp, const int *k, const int *s,
                         const int *d, int *pb, int *pe) {
    if (a->np && a->np != 2 * nsp) cx_fatal("%s: %d pads for %d spatial dimensions", op, a->np, nsp);
    for (int i = 0; i < nsp; i++) {
        int L = x->shape[2 + i];
        pb[i] = a->np ? a->pads[i] : 0;
        pe[i] = a->np ? a->pads[nsp + i] : 0;
        if (a->auto_pad == 3) pb[i] = pe[i] = 0;
        if (a->auto_pad == 1 || a->auto_pad == 2) {
            int64_t out = (L + s[i] - 1) / s[i];
            int64_t total = (out - 1) * s[i] + (int64_t)(k[i] - 1) * d[i] + 1 - L;
            if (total < 0) total = 0;
            if (total > (1 << 20)) cx_fatal("%s: padding too large", op);
            int small = (int)(total / 2), big = (int)(total - total / 2);
            pb[i] = a->auto_pad == 1 ? small : big;
            pe[i] = a->auto_pad == 1 ? big : small;
        }
        int64_t ext = (int64_t)(k[i] - 1) * d[i] + 1, lim = ext > L ? ext : L;
        if (pb[i] > lim || pe[i] > lim)
            cx_fatal("%s: pads %d, %d of spatial dimension %d are larger than both the kernel (%lld) and the input (%d)",
                     op, pb[i], pe[i], i, (long long)ext, L);
    }
}

/* per-dim values of a conv / pool attribute list, or its default */
static void per_dim(const char *op, const char *what, int n, const int *v, int nsp, int def, int *out) {
    if (n && n != nsp) cx_fatal("%s: %d %s for %d spatial dimensions", op, n, what, nsp);
    for (int i = 0; i < nsp; i++) out[i] = n ? v[i] : def;
}

static int spatial_dims(const char *op, const cx_tensor *x) {
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > 3) cx_fatal("%s: input of %d dimensions (3 to 5: [N, C, spatial...])", op, x->ndim);
    return nsp;
}

/* ------------------------------------------------------------ elementwise */

static cx_status check_none(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)nd, (void)why;
    return CX_OK;
}

#define BINARY(NAME, FN)                                                                                               \
    static void run_##NAME(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {                        \
        (void)m, (void)nd;                                                                                             \
        out[0] = FN(in[0], in[1]);                                                                                     \
    }
BINARY(add, cx_add)
BINARY(sub, cx_sub)
BINARY(mul, cx_mul)
BINARY(div, cx_div)

#define UNARY(NAME, FN)                                                                                                \
    static void run_##NAME(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {                        \
        (void)m, (void)nd;                                                                                             \
        out[0] = FN(in[0]);                                                                                            \
    }
UNARY(relu, cx_relu)
UNARY(sigmoid, cx_sigmoid)
UNARY(tanh, cx_tanh)

static void run_identity(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = in[0];
}

/* ------------------------------------------------------------ matrix products */

static void run_matmul(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *a = in[0], *b = in[1];
    if (a->ndim < 1 || b->ndim < 1) cx_fatal("MatMul: a 0-d operand");
    bool va = a->ndim == 1, vb = b->ndim == 1;
    if (va) a = cx_reshape(a, CX_SHAPE(1, a->shape[0]));
    if (vb) b = cx_reshape(b, CX_SHAPE(b->shape[0], 1));
    cx_tensor *y = cx_matmul(a, b);
    if (va || vb) {
        int sh[CX_MAX_DIMS], n = 0;
        for (int i = 0; i < y->ndim; i++) {
            if (va && i == y->ndim - 2) continue;
            if (vb && i == y->ndim - 1) continue;
            sh[n++] = y->shape[i];
        }
        y = cx_reshape(y, sh, n);
    }
    out[0] = y;
}

static cx_status check_gemm(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t ta, tb;
    TRY(attr_float(nd, "alpha", 1.0f, &nd->a.alpha));
    TRY(attr_float(nd, "beta", 1.0f, &nd->a.beta));
    TRY(attr_int(nd, "transA", 0, 0, 1, &ta));
    TRY(attr_int(nd, "transB", 0, 0, 1, &tb));
    nd->a.trans_a = (int)ta, nd->a.trans_b = (int)tb;
    return CX_OK;
}

static void run_gemm(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    if (in[0]->ndim != 2 || in[1]->ndim != 2) cx_fatal("Gemm: A and B must be 2-D (got %d-D and %d-D)", in[0]->ndim, in[1]->ndim);
    cx_tensor *y = cx_matmul_t(in[0], in[1], nd->a.trans_a, nd->a.trans_b);
    if (nd->a.alpha != 1.0f) y = cx_mul_scalar(y, nd->a.alpha);
    cx_tensor *c = in[2];
    if (c) {
        for (int i = 0; i < c->ndim; i++)
            if (c->ndim > 2 || (c->shape[i] != 1 && c->shape[i] != y->shape[2 - c->ndim + i]))
                cx_fatal("Gemm: C does not broadcast to the product's shape [%d, %d]", y->shape[0], y->shape[1]);
        if (nd->a.beta != 1.0f) c = cx_mul_scalar(c, nd->a.beta);
        y = cx_add(y, c);
    }
    out[0] = y;
}

/* ------------------------------------------------------------ softmax */

static cx_status check_softmax(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    return attr_int(nd, "axis", m->opset < 13 ? 1 : -1, -CX_MAX_DIMS, CX_MAX_DIMS, &nd->a.axis);
}

static cx_tensor *softmax_any(cx_onnx_model *m, onnx_node *nd, cx_tensor *x, bool logsm) {
    int ax = (int)nd->a.axis;
    if (m->opset >= 13) return logsm ? cx_log_softmax(x, ax) : cx_softmax(x, ax);
    /* opsets < 13: the input coerced to 2-D at axis, softmax over the second dim */
    if (ax < 0) ax += x->ndim;
    if (ax < 0 || ax > x->ndim) cx_fatal("Softmax: axis %d out of range for a %d-d input", (int)nd->a.axis, x->ndim);
    int64_t outer = prod(x->shape, 0, ax), inner = prod(x->shape, ax, x->ndim);
    if (outer > INT32_MAX || inner > INT32_MAX) cx_fatal("Softmax: too large");
    cx_tensor *y = cx_reshape(x, CX_SHAPE((int)outer, (int)inner));
    y = logsm ? cx_log_softmax(y, 1) : cx_softmax(y, 1);
    return cx_reshape(y, x->shape, x->ndim);
}
static void run_softmax(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    out[0] = softmax_any(m, nd, in[0], false);
}
static void run_log_softmax(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    out[0] = softmax_any(m, nd, in[0], true);
}

/* ------------------------------------------------------------ convolution and pooling */

static cx_status check_window(onnx_node *nd, bool conv, const char **why) {
    onnx_attrs *a = &nd->a;
    int dil_n, dil[3];
    TRY(attr_auto_pad(nd, &a->auto_pad));
    TRY(attr_ints(nd, "kernel_shape", 3, 1, 1 << 20, &a->nk, a->kernel));
    TRY(attr_ints(nd, "strides", 3, 1, 1 << 20, &a->ns, a->stride));
    TRY(attr_ints(nd, "dilations", 3, 1, 1 << 20, &dil_n, dil));
    TRY(attr_ints(nd, "pads", 6, -(1 << 20), 1 << 20, &a->np, a->pads));
    if (a->np % 2) return cx_set_error(CX_ERR_FORMAT, "attribute 'pads' has %d values (twice the spatial dims)", a->np);
    if (a->nk && a->ns && a->ns != a->nk) return cx_set_error(CX_ERR_FORMAT, "%d strides for a %d-d kernel", a->ns, a->nk);
    if (a->nk && a->np && a->np != 2 * a->nk)
        return cx_set_error(CX_ERR_FORMAT, "%d pads for a %d-d kernel", a->np, a->nk);
    for (int i = 0; i < a->np; i++)
        if (a->pads[i] < 0) *why = "negative pads";
    a->nd = dil_n;
    memcpy(a->dil, dil, sizeof dil);
    if (!conv)
        for (int i = 0; i < dil_n; i++)
            if (dil[i] != 1) *why = "pooling with dilations";
    return CX_OK;
}

static cx_status check_conv(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t g;
    TRY(check_window(nd, true, why));
    TRY(attr_int(nd, "group", 1, 1, 1 << 20, &g));
    nd->a.group = (int)g;
    return CX_OK;
}

static void run_conv(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const onnx_attrs *a = &nd->a;
    cx_tensor *x = in[0], *w = in[1];
    int nsp = spatial_dims("Conv", x), k[3], s[3], d[3], pb[3], pe[3];
    if (w->ndim != x->ndim) cx_fatal("Conv: weight of %d dimensions for an input of %d", w->ndim, x->ndim);
    for (int i = 0; i < nsp; i++) k[i] = w->shape[2 + i];
    if (a->nk) {
        if (a->nk != nsp) cx_fatal("Conv: kernel_shape of %d values for %d spatial dimensions", a->nk, nsp);
        for (int i = 0; i < nsp; i++)
            if (a->kernel[i] != k[i]) cx_fatal("Conv: kernel_shape disagrees with the weight's shape");
    }
    per_dim("Conv", "strides", a->ns, a->stride, nsp, 1, s);
    per_dim("Conv", "dilations", a->nd, a->dil, nsp, 1, d);
    spatial_pads("Conv", a, x, nsp, k, s, d, pb, pe);
    cx_conv_opts o = cx_conv_defaults();
    o.groups = a->group;
    for (int i = 0; i < nsp; i++) {
        o.stride[i] = s[i];
        o.dilation[i] = d[i];
        if (pb[i] == pe[i]) o.padding[i] = pb[i];
        else x = pad_axis(x, 2 + i, pb[i], pe[i], 0.0f, in[0]->numel);
    }
    out[0] = cx_conv(x, w, in[2], &o);
}

static cx_status check_maxpool(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(check_window(nd, false, why));
    if (!nd->a.nk) return cx_set_error(CX_ERR_FORMAT, "attribute 'kernel_shape' is required");
    TRY(attr_int(nd, "ceil_mode", 0, 0, 1, &v));
    nd->a.ceil_mode = (int)v;
    TRY(attr_int(nd, "storage_order", 0, 0, 1, &v));
    return CX_OK;
}

static cx_status check_avgpool(cx_onnx_model *m, onnx_node *nd, const char **why) {
    int64_t v;
    TRY(check_maxpool(m, nd, why));
    TRY(attr_int(nd, "count_include_pad", 0, 0, 1, &v));
    nd->a.count_include_pad = (int)v;
    return CX_OK;
}

static cx_tensor *pool_nd(cx_tensor *x, bool avg, const cx_pool_opts *o) {
    if (x->ndim == 5) return avg ? cx_avg_pool3d_ex(x, o) : cx_max_pool3d_ex(x, o);
    return avg ? cx_avg_pool2d_ex(x, o) : cx_max_pool2d_ex(x, o);
}

static void run_pool(onnx_node *nd, cx_tensor *x, bool avg, cx_tensor **out) {
    const onnx_attrs *a = &nd->a;
    const char *op = avg ? "AveragePool" : "MaxPool";
    int nsp = spatial_dims(op, x), s[3], pb[3], pe[3], one[3] = {1, 1, 1};
    if (a->nk != nsp) cx_fatal("%s: kernel_shape of %d values for %d spatial dimensions", op, a->nk, nsp);
    per_dim(op, "strides", a->ns, a->stride, nsp, 1, s);
    spatial_pads(op, a, x, nsp, a->kernel, s, one, pb, pe);
    bool simple = true;
    int64_t base = x->numel;
    for (int i = 0; i < nsp; i++) simple &= pb[i] == pe[i] && pb[i] <= a->kernel[i] / 2;
    cx_tensor *mask = NULL;
    if (!simple) {
        /* explicit padding: -inf for max; zeros for average, divided by the
         * average of a padded mask of ones when padding is not counted */
        if (avg && !a->count_include_pad) mask = cx_ones(x->shape, x->ndim);
        for (int i = 0; i < nsp; i++) {
            x = pad_axis(x, 2 + i, pb[i], pe[i], avg ? 0.0f : -INFINITY, base);
            if (mask) mask = pad_axis(mask, 2 + i, pb[i], pe[i], 0.0f, base);
        }
    }
    /* 1-D as 2-D with a height of 1 */
    int n1 = x->ndim;
    int os[CX_MAX_DIMS];
    if (nsp == 1) {
        x = cx_reshape(x, CX_SHAPE(x->shape[0], x->shape[1], 1, x->shape[2]));
        if (mask) mask = cx_reshape(mask, CX_SHAPE(mask->shape[0], mask->shape[1], 1, mask->shape[2]));
    }
    cx_pool_opts o = nsp == 3 ? cx_pool3d_defaults(a->kernel[0], a->kernel[1], a->kernel[2])
                              : nsp == 2 ? cx_pool2d_defaults(a->kernel[0], a->kernel[1])
                                         : cx_pool2d_defaults(1, a->kernel[0]);
    int off = nsp == 1 ? 1 : 0;
    if (nsp == 1) o.stride[0] = 1;
    for (int i = 0; i < nsp; i++) {
        o.stride[off + i] = s[i];
        o.padding[off + i] = simple ? pb[i] : 0;
    }
    o.ceil_mode = a->ceil_mode;
    o.exclude_pad = avg && !a->count_include_pad;
    cx_tensor *y = pool_nd(x, avg, &o);
    if (mask) y = cx_div(y, pool_nd(mask, true, &o));
    if (nsp == 1) {
        os[0] = y->shape[0], os[1] = y->shape[1], os[2] = y->shape[3];
        y = cx_reshape(y, os, n1);
    }
    out[0] = y;
}
static void run_maxpool(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    run_pool(nd, in[0], false, out);
}
static void run_avgpool(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    run_pool(nd, in[0], true, out);
}

static void run_gap(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    if (x->ndim < 3) cx_fatal("GlobalAveragePool: input of %d dimensions (at least 3)", x->ndim);
    int64_t rest = prod(x->shape, 2, x->ndim);
    cx_tensor *y = cx_mean_axis(cx_reshape(x, CX_SHAPE(x->shape[0], x->shape[1], (int)rest)), 2, true);
    int sh[CX_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) sh[i] = i < 2 ? x->shape[i] : 1;
    out[0] = cx_reshape(y, sh, x->ndim);
}

/* ------------------------------------------------------------ batch norm */

static cx_status check_bn(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(attr_float(nd, "epsilon", 1e-5f, &nd->a.eps));
    TRY(attr_int(nd, "training_mode", 0, 0, 1, &v));
    if (v) *why = "training_mode = 1";
    TRY(attr_int(nd, "spatial", 1, 0, 1, &v));
    if (!v) *why = "spatial = 0";
    return CX_OK;
}

static void run_bn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    if (in[0]->ndim < 2) cx_fatal("BatchNormalization: input of %d dimensions (at least 2)", in[0]->ndim);
    out[0] = cx_batch_norm(in[0], in[3], in[4], in[1], in[2], false, 0.1f, nd->a.eps);
}

/* ------------------------------------------------------------ shapes */

static cx_status check_flatten(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return attr_int(nd, "axis", 1, -CX_MAX_DIMS, CX_MAX_DIMS, &nd->a.axis);
}

static void run_flatten(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int ax = (int)nd->a.axis;
    if (ax < 0) ax += x->ndim;
    if (ax < 0 || ax > x->ndim) cx_fatal("Flatten: axis %d out of range for a %d-d input", (int)nd->a.axis, x->ndim);
    int64_t a = prod(x->shape, 0, ax), b = prod(x->shape, ax, x->ndim);
    if (a > INT32_MAX || b > INT32_MAX) cx_fatal("Flatten: too large");
    out[0] = cx_reshape(x, CX_SHAPE((int)a, (int)b));
}

static cx_status check_reshape(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(attr_int(nd, "allowzero", 0, 0, 1, &v));
    nd->a.allowzero = (int)v;
    return CX_OK;
}

static void run_reshape(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *s = in[1];
    if (s->dtype != CX_I64 || s->ndim != 1) cx_fatal("Reshape: the shape must be a 1-D int64 tensor");
    if (s->numel > CX_MAX_DIMS) cx_fatal("Reshape: %lld dimensions (at most %d)", (long long)s->numel, CX_MAX_DIMS);
    int sh[CX_MAX_DIMS], n = (int)s->numel, infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        int64_t v = CX_I64P(s)[i];
        if (v == 0 && !nd->a.allowzero) {
            if (i >= x->ndim) cx_fatal("Reshape: 0 (copy) at dimension %d of a %d-d input", i, x->ndim);
            v = x->shape[i];
        }
        if (v == -1) {
            if (infer >= 0) cx_fatal("Reshape: more than one -1");
            infer = i;
            continue;
        }
        if (v < 0 || v > INT32_MAX) cx_fatal("Reshape: dimension %lld", (long long)v);
        sh[i] = (int)v;
        known *= v;
        if (known > INT64_MAX / 4 / (v + 1)) cx_fatal("Reshape: shape too large");
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known) cx_fatal("Reshape: cannot infer -1 for %lld elements", (long long)x->numel);
        sh[infer] = (int)(x->numel / known);
    }
    out[0] = cx_reshape(x, sh, n);
}

static cx_status check_transpose(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return attr_ints(nd, "perm", CX_MAX_DIMS, 0, CX_MAX_DIMS - 1, &nd->a.nperm, nd->a.perm);
}

static void run_transpose(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int perm[CX_MAX_DIMS];
    if (nd->a.nperm && nd->a.nperm != x->ndim) cx_fatal("Transpose: perm of %d values for a %d-d input", nd->a.nperm, x->ndim);
    for (int i = 0; i < x->ndim; i++) perm[i] = nd->a.nperm ? nd->a.perm[i] : x->ndim - 1 - i;
    out[0] = x->ndim ? cx_permute(x, perm) : x;
}

static cx_status check_concat(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    if (!cx_onnx_attr(nd, "axis")) return cx_set_error(CX_ERR_FORMAT, "attribute 'axis' is required");
    return attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS, &nd->a.axis);
}

static void run_concat(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    int n = nd->n_in;
    for (int i = 0; i < n; i++)
        if (!in[i]) cx_fatal("Concat: input %d is empty", i);
    out[0] = n == 1 ? in[0] : cx_concat(in, n, (int)nd->a.axis);
}

/* ------------------------------------------------------------ Constant */

static cx_status check_constant(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    const Onnx__AttributeProto *a = NULL;
    int found = 0;
    for (size_t i = 0; i < nd->p->n_attribute; i++) {
        const char *n = nd->p->attribute[i]->name;
        if (!strcmp(n, "value") || !strncmp(n, "value_", 6) || !strcmp(n, "sparse_value")) {
            a = nd->p->attribute[i];
            found++;
        }
    }
    if (found != 1) return cx_set_error(CX_ERR_FORMAT, "%d value attributes (exactly one expected)", found);
    int t = attr_type(a);
    cx_tensor *v = NULL;
    if (!strcmp(a->name, "value") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR && a->t) {
        cx_status st = cx_onnx_tensor_from_proto(a->t, "attribute 'value'", &v);
        if (st == CX_ERR_ARG) {
            *why = "a constant of a data type Cortex does not have";
            return CX_OK;
        }
        TRY(st);
    } else if (!strcmp(a->name, "value_float") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
        v = cx_tensor_new(CX_F32, NULL, 0);
        CX_F(v)[0] = a->f;
    } else if (!strcmp(a->name, "value_floats") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) {
        if (a->n_floats > (size_t)CX_ONNX_MAX_DIM) return cx_set_error(CX_ERR_FORMAT, "too many values");
        v = cx_tensor_new(CX_F32, CX_SHAPE((int)a->n_floats));
        if (a->n_floats) memcpy(v->data, a->floats, a->n_floats * sizeof(float));
    } else if (!strcmp(a->name, "value_int") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
        v = cx_tensor_new(CX_I64, NULL, 0);
        CX_I64P(v)[0] = a->i;
    } else if (!strcmp(a->name, "value_ints") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) {
        if (a->n_ints > (size_t)CX_ONNX_MAX_DIM) return cx_set_error(CX_ERR_FORMAT, "too many values");
        v = cx_tensor_new(CX_I64, CX_SHAPE((int)a->n_ints));
        if (a->n_ints) memcpy(v->data, a->ints, a->n_ints * sizeof(int64_t));
    } else if (!strcmp(a->name, "sparse_value") || !strcmp(a->name, "value_string") ||
               !strcmp(a->name, "value_strings")) {
        *why = "a sparse or string constant";
        return CX_OK;
    } else {
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' of the wrong type or unknown", a->name);
    }
    cx_tensor_free(nd->a.value);
    nd->a.value = v;
    return CX_OK;
}

static void run_constant(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)in;
    out[0] = nd->a.value;
}


/* ------------------------------------------------------------ more elementwise ops */

UNARY(abs, cx_abs)
UNARY(neg, cx_neg)
UNARY(exp, cx_exp)
UNARY(log, cx_log)
UNARY(sqrt, cx_sqrt)

static void run_reciprocal(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = cx_div(cx_ones(in[0]->shape, in[0]->ndim), in[0]);
}
static void run_softsign(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = cx_div(in[0], cx_add_scalar(cx_abs(in[0]), 1.0f));
}
static void run_softplus(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = cx_softplus(in[0], 1.0f, 20.0f); /* log(1 + e^x); x above 20 is x within 2e-9 */
}

static cx_status check_alpha(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return attr_float(nd, "alpha", !strcmp(nd->p->op_type, "LeakyRelu") ? 0.01f : 1.0f, &nd->a.alpha);
}
static void run_leaky_relu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    out[0] = cx_leaky_relu(in[0], nd->a.alpha);
}
static void run_elu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    out[0] = cx_elu(in[0], nd->a.alpha);
}

static void run_pow(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = cx_pow_t(in[0], in[1]);
}

/* Sum, Max, Min, Mean of 1..N inputs, broadcasting */
static void run_variadic(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const char *op = nd->p->op_type;
    bool is_min = !strcmp(op, "Min"), is_max = !strcmp(op, "Max");
    cx_tensor *acc = is_min ? cx_neg(in[0]) : in[0];
    for (int i = 1; i < nd->n_in; i++) {
        if (!in[i]) cx_fatal("%s: input %d is empty", op, i);
        if (is_min) acc = cx_maximum(acc, cx_neg(in[i]));
        else if (is_max) acc = cx_maximum(acc, in[i]);
        else acc = cx_add(acc, in[i]);
    }
    if (is_min) acc = cx_neg(acc);
    else if (!strcmp(op, "Mean")) acc = cx_mul_scalar(acc, 1.0f / (float)nd->n_in);
    out[0] = acc;
}

static cx_status check_clip(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    if (m->opset >= 11) return CX_OK;
    TRY(attr_float(nd, "min", -INFINITY, &nd->a.alpha));
    return attr_float(nd, "max", INFINITY, &nd->a.beta);
}
static void run_clip(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    float lo = -INFINITY, hi = INFINITY;
    if (m->opset < 11) lo = nd->a.alpha, hi = nd->a.beta;
    for (int i = 1; i <= 2; i++)
        if (in[i]) {
            if (in[i]->numel != 1) cx_fatal("Clip: %s must be a scalar", i == 1 ? "min" : "max");
            if (i == 1) lo = CX_F(in[i])[0];
            else hi = CX_F(in[i])[0];
        }
    out[0] = cx_clamp(in[0], lo, hi);
}

/* Dropout at inference: the identity (the mask output and training mode are unsupported) */
static cx_status check_dropout(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    if (nd->n_in >= 3 && nd->in[2] >= 0) *why = "training_mode input (a random op)";
    return CX_OK;
}

/* ------------------------------------------------------------ more shape ops */

/* the axes of Squeeze / Unsqueeze: attribute (opset < 13) or int64 input 1 */
static int get_axes(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, int *axes) {
    if (m->opset < 13) {
        memcpy(axes, nd->a.perm, sizeof nd->a.perm);
        return nd->a.nperm;
    }
    if (!in[1]) return 0;
    if (in[1]->dtype != CX_I64 || in[1]->ndim != 1 || in[1]->numel > CX_MAX_DIMS)
        cx_fatal("%s: axes must be a 1-D int64 tensor of at most %d values", nd->p->op_type, CX_MAX_DIMS);
    for (int i = 0; i < in[1]->numel; i++) {
        int64_t v = CX_I64P(in[1])[i];
        if (v < -CX_MAX_DIMS || v >= CX_MAX_DIMS) cx_fatal("%s: axis %lld out of range", nd->p->op_type, (long long)v);
        axes[i] = (int)v;
    }
    return (int)in[1]->numel;
}

static cx_status check_axes(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    if (m->opset >= 13) return CX_OK;
    return attr_ints(nd, "axes", CX_MAX_DIMS, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.nperm, nd->a.perm);
}

static void run_squeeze(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int axes[CX_MAX_DIMS], na = get_axes(m, nd, in, axes), sh[CX_MAX_DIMS], n = 0;
    bool drop[CX_MAX_DIMS] = {0};
    for (int i = 0; i < na; i++) {
        int a = axes[i] < 0 ? axes[i] + x->ndim : axes[i];
        if (a < 0 || a >= x->ndim || x->shape[a] != 1) cx_fatal("Squeeze: axis %d is not a dimension of size 1", axes[i]);
        drop[a] = true;
    }
    for (int i = 0; i < x->ndim; i++)
        if (!(na ? drop[i] : x->shape[i] == 1)) sh[n++] = x->shape[i];
    out[0] = cx_reshape(x, sh, n);
}

static void run_unsqueeze(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int axes[CX_MAX_DIMS], na = get_axes(m, nd, in, axes), r = x->ndim + na, sh[CX_MAX_DIMS];
    bool ins[CX_MAX_DIMS] = {0};
    if (r > CX_MAX_DIMS) cx_fatal("Unsqueeze: %d dimensions (at most %d)", r, CX_MAX_DIMS);
    for (int i = 0; i < na; i++) {
        int a = axes[i] < 0 ? axes[i] + r : axes[i];
        if (a < 0 || a >= r || ins[a]) cx_fatal("Unsqueeze: bad or repeated axis %d", axes[i]);
        ins[a] = true;
    }
    for (int i = 0, k = 0; i < r; i++) sh[i] = ins[i] ? 1 : x->shape[k++];
    out[0] = cx_reshape(x, sh, r);
}

/* Pad, constant mode: pads from the attribute (opset < 11) or the int64 input 1 */
static cx_status check_pad(cx_onnx_model *m, onnx_node *nd, const char **why) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "mode");
    if (a) {
        if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
            return cx_set_error(CX_ERR_FORMAT, "attribute 'mode' is not a string");
        if (!(a->s.len == 8 && !memcmp(a->s.data, "constant", 8))) *why = "Pad mode other than constant";
    }
    if (m->opset >= 11) {
        if (nd->n_in < 2 || nd->in[1] < 0) return cx_set_error(CX_ERR_FORMAT, "input 'pads' is required");
        return CX_OK;
    }
    TRY(attr_float(nd, "value", 0.0f, &nd->a.alpha));
    const Onnx__AttributeProto *p = cx_onnx_attr(nd, "pads");
    if (!p || attr_type(p) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || p->n_ints > 2 * CX_MAX_DIMS)
        return cx_set_error(CX_ERR_FORMAT, "attribute 'pads' (a list of at most %d ints) is required", 2 * CX_MAX_DIMS);
    return CX_OK;
}

static void run_pad(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int64_t pads[2 * CX_MAX_DIMS];
    int np;
    float value = 0.0f;
    if (m->opset < 11) {
        const Onnx__AttributeProto *p = cx_onnx_attr(nd, "pads");
        np = (int)p->n_ints;
        memcpy(pads, p->ints, (size_t)np * sizeof *pads);
        value = nd->a.alpha;
    } else {
        if (in[1]->dtype != CX_I64 || in[1]->ndim != 1 || in[1]->numel > 2 * CX_MAX_DIMS)
            cx_fatal("Pad: pads must be a 1-D int64 tensor");
        np = (int)in[1]->numel;
        memcpy(pads, in[1]->data, (size_t)np * sizeof *pads);
        if (in[2]) {
            if (in[2]->numel != 1) cx_fatal("Pad: constant_value must be a scalar");
            value = CX_F(in[2])[0];
        }
    }
    if (np != 2 * x->ndim) cx_fatal("Pad: %d pads for a %d-d input", np, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[i], e = pads[x->ndim + i], L = x->shape[i];
        if (b < -L || e < -L || b + e + L < 0 || b > (1 << 24) || e > (1 << 24))
            cx_fatal("Pad: pads %lld, %lld for a dimension of %lld", (long long)b, (long long)e, (long long)L);
        if (b < 0 || e < 0) { /* negative pads crop */
            int start = b < 0 ? (int)-b : 0, stop = (int)(e < 0 ? L + e : L);
            x = cx_slice(x, i, start, stop, 1);
        }
        x = pad_axis(x, i, b > 0 ? (int)b : 0, e > 0 ? (int)e : 0, value, in[0]->numel);
    }
    out[0] = x;
}

/* ------------------------------------------------------------ the table */

#define ALL (~0u)
const onnx_op cx_onnx_ops[] = {
    /* name, inputs min..max, outputs, float inputs, out dtype, check, run */
    {"Add", 2, 2, 1, 3, 0, check_none, run_add},
    {"Sub", 2, 2, 1, 3, 0, check_none, run_sub},
    {"Mul", 2, 2, 1, 3, 0, check_none, run_mul},
    {"Div", 2, 2, 1, 3, 0, check_none, run_div},
    {"MatMul", 2, 2, 1, 3, 0, check_none, run_matmul},
    {"Gemm", 2, 3, 1, 7, 0, check_gemm, run_gemm},
    {"Relu", 1, 1, 1, 1, 0, check_none, run_relu},
    {"Sigmoid", 1, 1, 1, 1, 0, check_none, run_sigmoid},
    {"Tanh", 1, 1, 1, 1, 0, check_none, run_tanh},
    {"Softmax", 1, 1, 1, 1, 0, check_softmax, run_softmax},
    {"LogSoftmax", 1, 1, 1, 1, 0, check_softmax, run_log_softmax},
    {"Conv", 2, 3, 1, 7, 0, check_conv, run_conv},
    {"MaxPool", 1, 1, 1, 1, 0, check_maxpool, run_maxpool},
    {"AveragePool", 1, 1, 1, 1, 0, check_avgpool, run_avgpool},
    {"GlobalAveragePool", 1, 1, 1, 1, 0, check_none, run_gap},
    {"BatchNormalization", 5, 5, 1, 31, 0, check_bn, run_bn},
    {"Flatten", 1, 1, 1, 0, 1, check_flatten, run_flatten},
    {"Reshape", 2, 2, 1, 0, 1, check_reshape, run_reshape},
    {"Transpose", 1, 1, 1, 1, 1, check_transpose, run_transpose},
    {"Identity", 1, 1, 1, 0, 1, check_none, run_identity},
    {"Constant", 0, 0, 1, 0, 2, check_constant, run_constant},
    {"Concat", 1, 4096, 1, ALL, 1, check_concat, run_concat},
    {"Abs", 1, 1, 1, 1, 0, check_none, run_abs},
    {"Neg", 1, 1, 1, 1, 0, check_none, run_neg},
    {"Exp", 1, 1, 1, 1, 0, check_none, run_exp},
    {"Log", 1, 1, 1, 1, 0, check_none, run_log},
    {"Sqrt", 1, 1, 1, 1, 0, check_none, run_sqrt},
    {"Reciprocal", 1, 1, 1, 1, 0, check_none, run_reciprocal},
    {"Softsign", 1, 1, 1, 1, 0, check_none, run_softsign},
    {"Softplus", 1, 1, 1, 1, 0, check_none, run_softplus},
    {"LeakyRelu", 1, 1, 1, 1, 0, check_alpha, run_leaky_relu},
    {"Elu", 1, 1, 1, 1, 0, check_alpha, run_elu},
    {"Pow", 2, 2, 1, 3, 0, check_none, run_pow},
    {"Sum", 1, 4096, 1, ALL, 0, check_none, run_variadic},
    {"Max", 1, 4096, 1, ALL, 0, check_none, run_variadic},
    {"Min", 1, 4096, 1, ALL, 0, check_none, run_variadic},
    {"Mean", 1, 4096, 1, ALL, 0, check_none, run_variadic},
    {"Clip", 1, 3, 1, 7, 0, check_clip, run_clip},
    {"Dropout", 1, 3, 1, 1, 0, check_dropout, run_identity},
    {"Squeeze", 1, 2, 1, 0, 1, check_axes, run_squeeze},
    {"Unsqueeze", 1, 2, 1, 0, 1, check_axes, run_unsqueeze},
    {"Pad", 1, 3, 1, 5, 0, check_pad, run_pad},
};
const int cx_onnx_n_ops = (int)(sizeof cx_onnx_ops / sizeof *cx_onnx_ops);

/* ------------------------------------------------------------ the runner */

typedef struct {
    cx_onnx_model *m;
    cx_tensor *const *inputs;
    cx_tensor **outputs;
    int cur;
} run_ctx;

static cx_status run_graph(void *user) {
    run_ctx *c = user;
    cx_onnx_model *m = c->m;
    cx_tensor **val = cx_arena_alloc((size_t)(m->n_values + 1) * sizeof *val);
    memset(val, 0, (size_t)(m->n_values + 1) * sizeof *val);
    for (int i = 0; i < m->n_values; i++) val[i] = m->values[i].init;
    for (int i = 0; i < m->n_inputs; i++) val[m->input_ids[i]] = c->inputs[i];
    const bool opt = cx_onnx_opt_begin(m); /* no-grad runs: folded / fused nodes (onnx_opt.c) */
    for (int k = 0; k < m->n_nodes; k++) {
        onnx_node *nd = &m->nodes[k];
        const onnx_op *op = &cx_onnx_ops[nd->op];
        c->cur = k;
        int src;
        if (opt && cx_onnx_opt_skip(m, k, &src)) {
            val[nd->out[0]] = val[src];
            continue;
        }
        cx_tensor **in = cx_arena_alloc((size_t)(nd->n_in + 8) * sizeof *in);
        memset(in, 0, (size_t)(nd->n_in + 8) * sizeof *in);
        for (int i = 0; i < nd->n_in; i++) {
            if (nd->in[i] < 0) continue;
            in[i] = val[nd->in[i]];
            if (!in[i]) cx_fatal("input '%s' has no value", m->values[nd->in[i]].name);
            if ((i < 32 ? op->float_in >> i & 1 : op->float_in == ALL) && in[i]->dtype != CX_F32)
                cx_fatal("input '%s' is %s, not float", m->values[nd->in[i]].name, cx_dtype_name(in[i]->dtype));
        }
        cx_tensor *out[4] = {0};
        if (opt) cx_onnx_opt_inputs(m, k, in);
        op->run(m, nd, in, out);
        if (opt) cx_onnx_opt_after(m, k, out);
        for (int i = 0; i < nd->n_out && i < op->max_out; i++)
            if (nd->out[i] >= 0) val[nd->out[i]] = out[i];
    }
    c->cur = -1;
    for (int i = 0; i < m->n_outputs; i++) {
        c->outputs[i] = val[m->output_ids[i]];
        if (!c->outputs[i]) cx_fatal("graph output '%s' has no value", m->outputs[i].name);
    }
    return CX_OK;
}

cx_status cx_onnx_run(cx_onnx_model *m, cx_tensor *const *inputs, cx_tensor **outputs) {
    for (int i = 0; i < m->n_outputs; i++) outputs[i] = NULL;
    for (int k = 0; k < m->n_nodes; k++)
        if (m->nodes[k].unsupported)
            return cx_set_error(CX_ERR_ARG, "%s: %s", m->what, m->nodes[k].unsupported);
    for (int i = 0; i < m->n_inputs; i++) {
        const cx_onnx_value_info *v = &m->inputs[i];
        const cx_tensor *t = inputs[i];
        if (!t) return cx_set_error(CX_ERR_ARG, "%s: no tensor for input %d '%s'", m->what, i, v->name);
        if (v->onnx_type && v->dtype_ok && t->dtype != v->dtype)
            return cx_set_error(CX_ERR_SHAPE, "%s: input '%s' is %s, the model declares %s", m->what, v->name,
                                cx_dtype_name(t->dtype), cx_onnx_type_name(v->onnx_type));
        bool ok = v->ndim < 0 || v->ndim == t->ndim;
        for (int d = 0; ok && d < v->ndim; d++) ok = v->shape[d] < 0 || v->shape[d] == t->shape[d];
        if (!ok) {
            char have[128], want[128] = "[";
            cx_shape_str(t, have, sizeof have);
            for (int d = 0; d < v->ndim; d++) {
                size_t l = strlen(want);
                if (v->shape[d] < 0) snprintf(want + l, sizeof want - l, "%s?", d ? ", " : "");
                else snprintf(want + l, sizeof want - l, "%s%lld", d ? ", " : "", (long long)v->shape[d]);
            }
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "]");
            return cx_set_error(CX_ERR_SHAPE, "%s: input '%s' has shape %s, the model declares %s", m->what, v->name,
                                have, want);
        }
    }
    run_ctx c = {m, inputs, outputs, -1};
    cx_status st = cx_try(run_graph, &c);
    if (st) {
        char msg[1024], label[256];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        for (int i = 0; i < m->n_outputs; i++) outputs[i] = NULL;
        if (c.cur >= 0)
            return cx_set_error(st, "%s: %s: %s", m->what, cx_onnx_node_label(&m->nodes[c.cur], label, sizeof label), msg);
        return cx_set_error(st, "%s: %s", m->what, msg);
    }
    return CX_OK;
}
