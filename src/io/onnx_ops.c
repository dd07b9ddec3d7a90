/* ONNX ops on Cortex ops, and the graph runner (cx_onnx_run).
 *
 * Each op has a check (at load: attribute types and values, defaults; a
 * variant Cortex does not run is reported as unsupported) and a run (inside
 * cx_try: a failed check of a Cortex op comes back as a status naming the
 * node). Semantics follow the ONNX operator documents for opsets 1..17
 * (see cortex/onnx.h); more ops are in onnx_ops_more.c. */
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

#define attr_type cx_onnx_attr_type
#define attr_int cx_onnx_attr_int
#define attr_float cx_onnx_attr_float

/* the attribute's type (IR < 0.0.2 files may leave it out: guessed from the field set) */
int cx_onnx_attr_type(const Onnx__AttributeProto *a) {
    if (a->has_type) return (int)a->type;
    if (a->has_f) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    if (a->has_i) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    if (a->has_s) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    if (a->t) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    if (a->n_floats) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->n_ints) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    return 0;
}

cx_status cx_onnx_attr_int(const onnx_node *nd, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out) {
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

cx_status cx_onnx_attr_float(const onnx_node *nd, const char *name, float def, float *out) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    *out = def;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not a float", name);
    *out = a->f;
    return CX_OK;
}

cx_status cx_onnx_attr_int_list(onnx_node *nd, const char *name, int max) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    free(nd->a.ints);
    nd->a.ints = NULL;
    nd->a.nints = -1;
    if (!a) return CX_OK;
    if (attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not a list of ints", name);
    if (a->n_ints > (size_t)max)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' has %zu values (at most %d)", name, a->n_ints, max);
    nd->a.ints = cx_xmalloc((a->n_ints + 1) * sizeof *nd->a.ints);
    if (a->n_ints) memcpy(nd->a.ints, a->ints, a->n_ints * sizeof *nd->a.ints);
    nd->a.nints = (int)a->n_ints;
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

/* F32 through Cortex's ops; integer types in onnx_ops_more.c */
#define BINARY(NAME, FN)                                                                                               \
    static void run_##NAME(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {                        \
        if (in[0]->dtype != CX_F32 || in[1]->dtype != CX_F32) {                                                        \
            cx_onnx_int_arith(m, nd, in, out);                                                                         \
            return;                                                                                                    \
        }                                                                                                              \
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
/* F32 through Cortex's ops; integer types in onnx_ops_more.c */
#define UNARY_INT(NAME, FN)                                                                                            \
    static void run_##NAME(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {                        \
        if (in[0]->dtype != CX_F32) cx_onnx_int_unary(m, nd, in, out);                                                 \
        else out[0] = FN(in[0]);                                                                                       \
    }
UNARY_INT(relu, cx_relu)
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
    if (!conv && !strcmp(nd->p->op_type, "AveragePool"))
        for (int i = 0; i < dil_n; i++)
            if (dil[i] != 1) *why = "average pooling with dilations";
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

/* ConvTranspose: x [N, C, sp...], w [C, M / group, k...]; pads, output_padding, output_shape, auto_pad */
static cx_status check_conv_transpose(cx_onnx_model *m, onnx_node *nd, const char **why) {
    TRY(check_conv(m, nd, why));
    TRY(attr_ints(nd, "output_padding", 3, 0, 1 << 20, &nd->a.nperm, nd->a.perm));
    return cx_onnx_attr_int_list(nd, "output_shape", CX_MAX_DIMS);
}

/* x cut or zero-padded along axis: `begin` values off the start (negative: zeros added), then `len` long */
static cx_tensor *crop_axis(cx_tensor *x, int axis, int64_t begin, int64_t len, int64_t base) {
    if (begin > 0) x = cx_slice(x, axis, (int)begin, x->shape[axis], 1);
    else if (begin < 0) x = pad_axis(x, axis, (int)-begin, 0, 0.0f, base);
    int64_t L = x->shape[axis];
    if (L > len) x = cx_slice(x, axis, 0, (int)len, 1);
    else if (L < len) x = pad_axis(x, axis, 0, (int)(len - L), 0.0f, base);
    return x;
}

static void run_conv_transpose(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const onnx_attrs *a = &nd->a;
    cx_tensor *x = in[0], *w = in[1];
    int nsp = spatial_dims("ConvTranspose", x), k[3], s[3], d[3], op[3];
    if (w->ndim != x->ndim) cx_fatal("ConvTranspose: weight of %d dimensions for an input of %d", w->ndim, x->ndim);
    for (int i = 0; i < nsp; i++) k[i] = w->shape[2 + i];
    if (a->nk) {
        if (a->nk != nsp) cx_fatal("ConvTranspose: kernel_shape of %d values for %d spatial dimensions", a->nk, nsp);
        for (int i = 0; i < nsp; i++)
            if (a->kernel[i] != k[i]) cx_fatal("ConvTranspose: kernel_shape disagrees with the weight's shape");
    }
    per_dim("ConvTranspose", "strides", a->ns, a->stride, nsp, 1, s);
    per_dim("ConvTranspose", "dilations", a->nd, a->dil, nsp, 1, d);
    per_dim("ConvTranspose", "output_padding", a->nperm, a->perm, nsp, 0, op);
    if (a->np && a->np != 2 * nsp) cx_fatal("ConvTranspose: %d pads for %d spatial dimensions", a->np, nsp);
    int no = a->nints > 0 ? a->nints : 0;
    if (no && no != nsp && no != nsp + 2) cx_fatal("ConvTranspose: output_shape of %d values for %d spatial dimensions", no, nsp);
    cx_conv_opts o = cx_conv_defaults();
    o.groups = a->group;
    int64_t total = (int64_t)x->shape[0] * w->shape[1] * (a->group > 0 ? a->group : 1);
    for (int i = 0; i < nsp; i++) {
        o.stride[i] = s[i], o.dilation[i] = d[i];
        total *= (int64_t)(x->shape[2 + i] - 1) * s[i] + (int64_t)(k[i] - 1) * d[i] + 1 + op[i];
        if (total > ((int64_t)1 << 40)) break;
    }
    cx_onnx_check_size("ConvTranspose", total, x->numel + w->numel);
    cx_tensor *y = cx_conv_transpose(x, w, NULL, &o);
    for (int i = 0; i < nsp; i++) {
        int64_t L = x->shape[2 + i], full = (L - 1) * s[i] + (int64_t)(k[i] - 1) * d[i] + 1, pb, len;
        if (no || a->auto_pad == 1 || a->auto_pad == 2) {
            len = no ? a->ints[no - nsp + i] : L * s[i];
            if (len < 0 || len > full + op[i] + (1 << 20)) cx_fatal("ConvTranspose: output size %lld", (long long)len);
            int64_t total = full + op[i] - len, half = total >= 0 ? total / 2 : -((-total + 1) / 2); /* floor */
            pb = a->auto_pad == 1 ? half : total - half;
        } else {
            pb = a->np ? a->pads[i] : 0;
            len = full + op[i] - pb - (a->np ? a->pads[nsp + i] : 0);
            if (len < 0) cx_fatal("ConvTranspose: pads larger than the output");
        }
        y = crop_axis(y, 2 + i, pb, len, in[0]->numel + y->numel);
    }
    if (in[2]) {
        int sh[CX_MAX_DIMS];
        for (int i = 0; i < y->ndim; i++) sh[i] = i == 1 ? (int)in[2]->numel : 1;
        if (in[2]->numel != y->shape[1]) cx_fatal("ConvTranspose: bias of %lld values for %d channels", (long long)in[2]->numel, y->shape[1]);
        y = cx_add(y, cx_reshape(in[2], sh, y->ndim));
    }
    out[0] = y;
}

/* ConvInteger / QLinearConv: an integer convolution computed here exactly
 * (int64 sums of (x - x_zero) (w - w_zero)), groups, strides, dilations,
 * pads, auto_pad; 1-3 spatial dims. No gradient. */
static cx_tensor *conv_integer(onnx_node *nd, cx_tensor *x, cx_tensor *xz, cx_tensor *w, cx_tensor *wz) {
    const onnx_attrs *a = &nd->a;
    const char *op = nd->p->op_type;
    if (x->dtype == CX_F32 || w->dtype == CX_F32) cx_fatal("%s: integer inputs only", op);
    int nsp = spatial_dims(op, x), k[3], s[3], d[3], pb[3], pe[3];
    if (w->ndim != x->ndim) cx_fatal("%s: weight of %d dimensions for an input of %d", op, w->ndim, x->ndim);
    for (int i = 0; i < nsp; i++) k[i] = w->shape[2 + i];
    per_dim(op, "strides", a->ns, a->stride, nsp, 1, s);
    per_dim(op, "dilations", a->nd, a->dil, nsp, 1, d);
    spatial_pads(op, a, x, nsp, k, s, d, pb, pe);
    int N = x->shape[0], C = x->shape[1], M = w->shape[0], G = a->group;
    if (C % G || M % G || w->shape[1] != C / G) cx_fatal("%s: %d channels, weight [%d, %d, ...], group %d", op, C, M, w->shape[1], G);
    if (xz && xz->numel != 1) cx_fatal("%s: x_zero_point must be a scalar", op);
    if (wz && wz->numel != 1 && wz->numel != M) cx_fatal("%s: w_zero_point must be a scalar or one per output channel", op);
    int L[3] = {1, 1, 1}, K[3] = {1, 1, 1}, S[3] = {1, 1, 1}, P[3] = {0, 0, 0}, D[3] = {1, 1, 1}, O[3] = {1, 1, 1}, os[5];
    os[0] = N, os[1] = M;
    int64_t total = (int64_t)N * M, work;
    for (int i = 0; i < nsp; i++) {
        int64_t ext = (int64_t)(k[i] - 1) * d[i] + 1, num = x->shape[2 + i] + pb[i] + pe[i] - ext;
        if (num < 0) cx_fatal("%s: a kernel larger than the padded input", op);
        int j = 3 - nsp + i;
        L[j] = x->shape[2 + i], K[j] = k[i], S[j] = s[i], P[j] = pb[i], D[j] = d[i], O[j] = (int)(num / s[i] + 1);
        os[2 + i] = O[j];
        total *= O[j];
    }
    work = total * (C / G) * K[0] * K[1] * K[2];
    if (total > ((int64_t)1 << 27) || work > ((int64_t)1 << 32)) cx_fatal("%s: too large", op);
    cx_tensor *y = cx_empty(CX_I64, os, x->ndim);
    int64_t zx = xz ? (x->dtype == CX_I32 ? CX_I32P(xz)[0] : CX_I64P(xz)[0]) : 0, at = 0;
    int Cg = C / G, Mg = M / G;
    int64_t plane = (int64_t)L[0] * L[1] * L[2], kvol = (int64_t)K[0] * K[1] * K[2];
    for (int n = 0; n < N; n++)
        for (int mo = 0; mo < M; mo++) {
            int g = mo / Mg;
            int64_t zw = wz ? (wz->numel == 1 ? (wz->dtype == CX_I32 ? CX_I32P(wz)[0] : CX_I64P(wz)[0])
                                              : (wz->dtype == CX_I32 ? CX_I32P(wz)[mo] : CX_I64P(wz)[mo]))
                            : 0;
            for (int o0 = 0; o0 < O[0]; o0++)
                for (int o1 = 0; o1 < O[1]; o1++)
                    for (int o2 = 0; o2 < O[2]; o2++, at++) {
                        int64_t acc = 0;
                        for (int c = 0; c < Cg; c++)
                            for (int k0 = 0; k0 < K[0]; k0++)
                                for (int k1 = 0; k1 < K[1]; k1++)
                                    for (int k2 = 0; k2 < K[2]; k2++) {
                                        int64_t i0 = (int64_t)o0 * S[0] - P[0] + (int64_t)k0 * D[0], i1 = (int64_t)o1 * S[1] - P[1] + (int64_t)k1 * D[1],
                                                i2 = (int64_t)o2 * S[2] - P[2] + (int64_t)k2 * D[2];
                                        int64_t xv = zx; /* padding is the zero point: contributes 0 */
                                        if (i0 >= 0 && i0 < L[0] && i1 >= 0 && i1 < L[1] && i2 >= 0 && i2 < L[2]) {
                                            int64_t xo = ((int64_t)n * C + g * Cg + c) * plane + (i0 * L[1] + i1) * L[2] + i2;
                                            xv = x->dtype == CX_I32 ? CX_I32P(x)[xo] : CX_I64P(x)[xo];
                                        }
                                        int64_t wo = ((int64_t)mo * Cg + c) * kvol + ((int64_t)k0 * K[1] + k1) * K[2] + k2;
                                        int64_t wv = w->dtype == CX_I32 ? CX_I32P(w)[wo] : CX_I64P(w)[wo];
                                        acc += (xv - zx) * (wv - zw);
                                    }
                        CX_I64P(y)[at] = acc;
                    }
        }
    return y;
}

static cx_status check_conv_integer(cx_onnx_model *m, onnx_node *nd, const char **why) {
    TRY(check_conv(m, nd, why));
    if (!strcmp(nd->p->op_type, "ConvInteger")) {
        nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
        return CX_OK;
    }
    nd->a.to = m->values[nd->in[7]].otype;
    if (nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
        *why = "an output zero point other than uint8 / int8";
    return CX_OK;
}

static void run_conv_integer(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *y = conv_integer(nd, in[0], in[2], in[1], in[3]), *r = cx_empty(CX_I32, y->shape, y->ndim);
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t v = CX_I64P(y)[i];
        CX_I32P(r)[i] = (int32_t)(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
    }
    out[0] = r;
}

/* QLinearConv(x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, B) */
static void run_qlinear_conv(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *y = conv_integer(nd, in[0], in[2], in[3], in[5]);
    int M = y->shape[1];
    int64_t per = y->numel / (y->shape[0] ? y->shape[0] : 1) / (M ? M : 1);
    if (in[1]->numel != 1 || in[6]->numel != 1 || in[7]->numel != 1) cx_fatal("QLinearConv: x_scale, y_scale and y_zero_point must be scalars");
    if (in[4]->numel != 1 && in[4]->numel != M) cx_fatal("QLinearConv: w_scale must be a scalar or one per output channel");
    if (in[8] && (in[8]->numel != M || in[8]->dtype == CX_F32)) cx_fatal("QLinearConv: B must be %d int32 values", M);
    double xs = CX_F(in[1])[0], ys = CX_F(in[6])[0], yz = in[7]->dtype == CX_I32 ? CX_I32P(in[7])[0] : (double)CX_I64P(in[7])[0];
    bool u8 = nd->a.to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    cx_tensor *r = cx_empty(CX_I32, y->shape, y->ndim);
    for (int64_t i = 0; i < y->numel; i++) {
        int mo = (int)(i / per % M);
        double ws = CX_F(in[4])[in[4]->numel == 1 ? 0 : mo];
        int64_t acc = CX_I64P(y)[i] + (in[8] ? (in[8]->dtype == CX_I32 ? CX_I32P(in[8])[mo] : CX_I64P(in[8])[mo]) : 0);
        double v = nearbyint((double)acc * (xs * ws / ys)) + yz, lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
        CX_I32P(r)[i] = (int32_t)(isnan(v) ? yz : v < lo ? lo : v > hi ? hi : v);
    }
    out[0] = r;
}

static cx_status check_maxpool(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(check_window(nd, false, why));
    if (!nd->a.nk) return cx_set_error(CX_ERR_FORMAT, "attribute 'kernel_shape' is required");
    TRY(attr_int(nd, "ceil_mode", 0, 0, 1, &v));
    nd->a.ceil_mode = (int)v;
    TRY(attr_int(nd, "storage_order", 0, 0, 1, &v));
    nd->a.trans_a = (int)v;
    nd->a.out_types[1] = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
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
/* MaxPool computed here (no gradient): dilations, the Indices output
 * (flat positions in the input, row-major or with storage_order 1
 * column-major spatial dims), integer inputs. Padding never wins. */
static void max_pool_direct(onnx_node *nd, cx_tensor *x, cx_tensor **out) {
    const onnx_attrs *a = &nd->a;
    int nsp = spatial_dims("MaxPool", x), s[3], d[3], pb[3], pe[3], os[CX_MAX_DIMS], L[3] = {1, 1, 1}, K[3] = {1, 1, 1};
    if (a->nk != nsp) cx_fatal("MaxPool: kernel_shape of %d values for %d spatial dimensions", a->nk, nsp);
    per_dim("MaxPool", "strides", a->ns, a->stride, nsp, 1, s);
    per_dim("MaxPool", "dilations", a->nd, a->dil, nsp, 1, d);
    spatial_pads("MaxPool", a, x, nsp, a->kernel, s, d, pb, pe);
    os[0] = x->shape[0], os[1] = x->shape[1];
    int64_t total = (int64_t)os[0] * os[1];
    int S[3] = {1, 1, 1}, P[3] = {0, 0, 0}, D[3] = {1, 1, 1}, O[3] = {1, 1, 1};
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->shape[2 + i], ext = (int64_t)(a->kernel[i] - 1) * d[i] + 1, num = in + pb[i] + pe[i] - ext;
        if (num < 0) cx_fatal("MaxPool: a kernel of %lld larger than the padded input %lld", (long long)ext, (long long)(in + pb[i] + pe[i]));
        int64_t o = (a->ceil_mode ? (num + s[i] - 1) / s[i] : num / s[i]) + 1;
        if (a->ceil_mode && (o - 1) * s[i] >= in + pb[i]) o--;
        os[2 + i] = (int)o;
        total *= o;
        int j = 3 - nsp + i; /* right-aligned into 3 dims */
        L[j] = (int)in, K[j] = a->kernel[i], S[j] = s[i], P[j] = pb[i], D[j] = d[i], O[j] = (int)o;
    }
    if (total > ((int64_t)1 << 27)) cx_fatal("MaxPool: result too large");
    cx_tensor *y = cx_empty(x->dtype, os, x->ndim), *ix = cx_empty(CX_I64, os, x->ndim);
    int64_t plane = (int64_t)L[0] * L[1] * L[2], at = 0;
    for (int64_t nc = 0; nc < (int64_t)os[0] * os[1]; nc++)
        for (int o0 = 0; o0 < O[0]; o0++)
            for (int o1 = 0; o1 < O[1]; o1++)
                for (int o2 = 0; o2 < O[2]; o2++, at++) {
                    int64_t best = -1;
                    double bv = 0;
                    for (int k0 = 0; k0 < K[0]; k0++)
                        for (int k1 = 0; k1 < K[1]; k1++)
                            for (int k2 = 0; k2 < K[2]; k2++) {
                                int64_t i0 = (int64_t)o0 * S[0] - P[0] + (int64_t)k0 * D[0], i1 = (int64_t)o1 * S[1] - P[1] + (int64_t)k1 * D[1],
                                        i2 = (int64_t)o2 * S[2] - P[2] + (int64_t)k2 * D[2];
                                if (i0 < 0 || i0 >= L[0] || i1 < 0 || i1 >= L[1] || i2 < 0 || i2 >= L[2]) continue;
                                int64_t off = (i0 * L[1] + i1) * L[2] + i2;
                                double v = x->dtype == CX_F32   ? CX_F(x)[nc * plane + off]
                                           : x->dtype == CX_I32 ? CX_I32P(x)[nc * plane + off]
                                                                : (double)CX_I64P(x)[nc * plane + off];
                                if (best < 0 || v > bv || isnan(v)) {
                                    best = off, bv = v;
                                    if (isnan(v)) k0 = K[0], k1 = K[1], k2 = K[2];
                                }
                            }
                    if (best < 0) best = 0, bv = x->dtype == CX_F32 ? -INFINITY : 0;
                    if (x->dtype == CX_F32) CX_F(y)[at] = (float)bv;
                    else if (x->dtype == CX_I32) CX_I32P(y)[at] = (int32_t)bv;
                    else CX_I64P(y)[at] = (int64_t)bv;
                    int64_t flat = best;
                    if (a->trans_a) { /* column-major spatial position */
                        int64_t i2 = best % L[2], i1 = best / L[2] % L[1], i0 = best / L[2] / L[1];
                        flat = (i2 * L[1] + i1) * L[0] + i0;
                    }
                    CX_I64P(ix)[at] = nc * plane + flat;
                }
    out[0] = y;
    out[1] = ix;
}

static void run_maxpool(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    bool dil = false;
    for (int i = 0; i < nd->a.nd; i++) dil |= nd->a.dil[i] != 1;
    if (dil || in[0]->dtype != CX_F32 || (nd->n_out > 1 && nd->out[1] >= 0)) max_pool_direct(nd, in[0], out);
    else run_pool(nd, in[0], false, out);
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
    TRY(attr_float(nd, "momentum", 0.9f, &nd->a.alpha));
    TRY(attr_int(nd, "training_mode", 0, 0, 1, &v));
    nd->a.mode = (int)v;
    if (!v)
        for (int i = 1; i < nd->n_out; i++)
            if (nd->out[i] >= 0) *why = "the statistics outputs outside training mode (opset < 14)";
    TRY(attr_int(nd, "spatial", 1, 0, 1, &v));
    if (!v) *why = "spatial = 0";
    return CX_OK;
}

static void run_bn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    if (in[0]->ndim < 2) cx_fatal("BatchNormalization: input of %d dimensions (at least 2)", in[0]->ndim);
    if (!nd->a.mode) {
        out[0] = cx_batch_norm(in[0], in[3], in[4], in[1], in[2], false, 0.1f, nd->a.eps);
        return;
    }
    /* training mode: the batch's statistics (biased variance) and the updated running ones */
    cx_tensor *x = in[0];
    int N = x->shape[0], C = x->shape[1];
    int64_t S = prod(x->shape, 2, x->ndim);
    if (S > INT32_MAX || (int64_t)N * S == 0) cx_fatal("BatchNormalization: bad input size");
    for (int i = 1; i < 5; i++)
        if (in[i]->numel != C) cx_fatal("BatchNormalization: input %d must hold C = %d values", i, C);
    cx_tensor *x3 = cx_reshape(x, CX_SHAPE(N, C, (int)S));
    cx_tensor *mu = cx_mean_axis(cx_mean_axis(x3, 2, true), 0, true); /* [1, C, 1] */
    cx_tensor *d = cx_sub(x3, mu);
    cx_tensor *var = cx_mean_axis(cx_mean_axis(cx_mul(d, d), 2, true), 0, true);
    cx_tensor *y = cx_mul(d, cx_pow(cx_add_scalar(var, nd->a.eps), -0.5f));
    y = cx_add(cx_mul(y, cx_reshape(in[1], CX_SHAPE(1, C, 1))), cx_reshape(in[2], CX_SHAPE(1, C, 1)));
    out[0] = cx_reshape(y, x->shape, x->ndim);
    float mom = nd->a.alpha;
    out[1] = cx_add(cx_mul_scalar(in[3], mom), cx_mul_scalar(cx_reshape(mu, CX_SHAPE(C)), 1.0f - mom));
    out[2] = cx_add(cx_mul_scalar(in[4], mom), cx_mul_scalar(cx_reshape(var, CX_SHAPE(C)), 1.0f - mom));
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
        /* checked before multiplying: the product itself must not overflow */
        if (v > 0 && known > INT64_MAX / 4 / v) cx_fatal("Reshape: shape too large");
        known *= v;
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
    bool seen[CX_MAX_DIMS] = {0};
    for (int i = 0; i < x->ndim; i++) {
        perm[i] = nd->a.nperm ? nd->a.perm[i] : x->ndim - 1 - i;
        if (perm[i] >= x->ndim || seen[perm[i]]) cx_fatal("Transpose: perm is not a permutation of the %d dimensions", x->ndim);
        seen[perm[i]] = true;
    }
    out[0] = !x->ndim ? x : x->dtype == CX_F32 ? cx_permute(x, perm) : cx_onnx_permute_any(x, perm);
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
    if (n > 1 && in[0]->dtype != CX_F32) cx_onnx_concat_any((int)nd->a.axis, in, n, out);
    else out[0] = n == 1 ? in[0] : cx_concat(in, n, (int)nd->a.axis);
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
        nd->a.to = a->t->data_type;
    } else if (!strcmp(a->name, "value_float") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
        v = cx_tensor_new(CX_F32, NULL, 0);
        CX_F(v)[0] = a->f;
        nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    } else if (!strcmp(a->name, "value_floats") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS) {
        if (a->n_floats > (size_t)CX_ONNX_MAX_DIM) return cx_set_error(CX_ERR_FORMAT, "too many values");
        v = cx_tensor_new(CX_F32, CX_SHAPE((int)a->n_floats));
        if (a->n_floats) memcpy(v->data, a->floats, a->n_floats * sizeof(float));
        nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    } else if (!strcmp(a->name, "value_int") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
        v = cx_tensor_new(CX_I64, NULL, 0);
        CX_I64P(v)[0] = a->i;
        nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    } else if (!strcmp(a->name, "value_ints") && t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) {
        if (a->n_ints > (size_t)CX_ONNX_MAX_DIM) return cx_set_error(CX_ERR_FORMAT, "too many values");
        v = cx_tensor_new(CX_I64, CX_SHAPE((int)a->n_ints));
        if (a->n_ints) memcpy(v->data, a->ints, a->n_ints * sizeof(int64_t));
        nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
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

UNARY_INT(abs, cx_abs)
UNARY_INT(neg, cx_neg)
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


/* Sum, Max, Min, Mean of 1..N inputs, broadcasting */
static void run_variadic(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    const char *op = nd->p->op_type;
    if (in[0]->dtype != CX_F32) {
        cx_onnx_int_arith(m, nd, in, out);
        return;
    }
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
    if (in[0]->dtype != CX_F32) {
        cx_onnx_int_clip(m, nd, in, out);
        return;
    }
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
    nd->a.out_types[1] = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    return CX_OK;
}

/* inference: the identity, and a mask of ones (bool) */
static void run_dropout(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = in[0];
    cx_tensor *mask = cx_empty(CX_I32, in[0]->shape, in[0]->ndim);
    for (int64_t i = 0; i < mask->numel; i++) CX_I32P(mask)[i] = 1;
    out[1] = mask;
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
        nd->a.mode = a->s.len == 8 && !memcmp(a->s.data, "constant", 8) ? 0
                     : a->s.len == 7 && !memcmp(a->s.data, "reflect", 7) ? 1
                     : a->s.len == 4 && !memcmp(a->s.data, "edge", 4)    ? 2
                                                                         : -1;
        if (nd->a.mode < 0) *why = "Pad mode other than constant, reflect, edge";
    } else {
        nd->a.mode = 0;
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
    double dvalue = 0;
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
            if (in[2]->dtype != x->dtype) cx_fatal("Pad: constant_value of another type than the data");
            dvalue = x->dtype == CX_F32 ? CX_F(in[2])[0] : x->dtype == CX_I32 ? CX_I32P(in[2])[0] : (double)CX_I64P(in[2])[0];
            if (x->dtype == CX_F32) value = CX_F(in[2])[0];
        }
    }
    if (m->opset < 11) dvalue = value;
    if (np != 2 * x->ndim) cx_fatal("Pad: %d pads for a %d-d input", np, x->ndim);
    if (nd->a.mode != 0 || x->dtype != CX_F32) {
        out[0] = cx_onnx_pad_any(x, pads, nd->a.mode, dvalue);
        return;
    }
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[i], e = pads[x->ndim + i], L = x->shape[i];
        if (b > (1 << 24) || e > (1 << 24) || b < -L || e < -L || b + e + L < 0) /* bounds first: no overflow */
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
    {"Add", 2, 2, 1, 3, 1, check_none, run_add, T_NUM, 0},
    {"Sub", 2, 2, 1, 3, 1, check_none, run_sub, T_NUM, 0},
    {"Mul", 2, 2, 1, 3, 1, check_none, run_mul, T_NUM, 0},
    {"Div", 2, 2, 1, 3, 1, check_none, run_div, T_NUM, 0},
    {"MatMul", 2, 2, 1, 3, 0, check_none, run_matmul, 0, 0},
    {"Gemm", 2, 3, 1, 7, 0, check_gemm, run_gemm, 0, 0},
    {"Relu", 1, 1, 1, 1, 1, check_none, run_relu, T_INTS | T_FLOAT, 0},
    {"Sigmoid", 1, 1, 1, 1, 0, check_none, run_sigmoid, 0, 0},
    {"Tanh", 1, 1, 1, 1, 0, check_none, run_tanh, 0, 0},
    {"Softmax", 1, 1, 1, 1, 0, check_softmax, run_softmax, 0, 0},
    {"LogSoftmax", 1, 1, 1, 1, 0, check_softmax, run_log_softmax, 0, 0},
    {"Conv", 2, 3, 1, 7, 0, check_conv, run_conv, 0, 0},
    {"ConvTranspose", 2, 3, 1, 7, 0, check_conv_transpose, run_conv_transpose, 0, 0},
    {"ConvInteger", 2, 4, 1, 0, OUT_ATTR, check_conv_integer, run_conv_integer, 0, 10},
    {"QLinearConv", 8, 9, 1, 0, OUT_ATTR, check_conv_integer, run_qlinear_conv, 0, 10},
    {"MaxPool", 1, 1, 2, 1, 1, check_maxpool, run_maxpool, T_FLOAT | OT(INT8) | OT(UINT8), 0},
    {"AveragePool", 1, 1, 1, 1, 0, check_avgpool, run_avgpool, 0, 0},
    {"GlobalAveragePool", 1, 1, 1, 1, 0, check_none, run_gap, 0, 0},
    {"BatchNormalization", 5, 5, 3, 31, 0, check_bn, run_bn, 0, 0},
    {"Flatten", 1, 1, 1, 0, 1, check_flatten, run_flatten, 0, 0},
    {"Reshape", 2, 2, 1, 0, 1, check_reshape, run_reshape, 0, 0},
    {"Transpose", 1, 1, 1, 1, 1, check_transpose, run_transpose, T_ALL, 0},
    {"Identity", 1, 1, 1, 0, 1, check_none, run_identity, 0, 0},
    {"Constant", 0, 0, 1, 0, 2, check_constant, run_constant, 0, 0},
    {"Concat", 1, 4096, 1, ALL, 1, check_concat, run_concat, T_ALL, 0},
    {"Abs", 1, 1, 1, 1, 1, check_none, run_abs, T_INTS | T_FLOAT, 0},
    {"Neg", 1, 1, 1, 1, 1, check_none, run_neg, T_INTS | T_FLOAT, 0},
    {"Exp", 1, 1, 1, 1, 0, check_none, run_exp, 0, 0},
    {"Log", 1, 1, 1, 1, 0, check_none, run_log, 0, 0},
    {"Sqrt", 1, 1, 1, 1, 0, check_none, run_sqrt, 0, 0},
    {"Reciprocal", 1, 1, 1, 1, 0, check_none, run_reciprocal, 0, 0},
    {"Softsign", 1, 1, 1, 1, 0, check_none, run_softsign, 0, 0},
    {"Softplus", 1, 1, 1, 1, 0, check_none, run_softplus, 0, 0},
    {"LeakyRelu", 1, 1, 1, 1, 0, check_alpha, run_leaky_relu, 0, 0},
    {"Elu", 1, 1, 1, 1, 0, check_alpha, run_elu, 0, 0},
    {"Pow", 2, 2, 1, 1, 1, check_none, cx_onnx_pow, T_NUM, 0},
    {"Sum", 1, 4096, 1, ALL, 1, check_none, run_variadic, T_NUM, 0},
    {"Max", 1, 4096, 1, ALL, 1, check_none, run_variadic, T_NUM, 0},
    {"Min", 1, 4096, 1, ALL, 1, check_none, run_variadic, T_NUM, 0},
    {"Mean", 1, 4096, 1, ALL, 1, check_none, run_variadic, T_NUM, 0},
    {"Clip", 1, 3, 1, 7, 1, check_clip, run_clip, T_NUM, 0},
    {"Dropout", 1, 3, 2, 1, 0, check_dropout, run_dropout, 0, 0},
    {"Squeeze", 1, 2, 1, 0, 1, check_axes, run_squeeze, 0, 0},
    {"Unsqueeze", 1, 2, 1, 0, 1, check_axes, run_unsqueeze, 0, 0},
    {"Pad", 1, 3, 1, 5, 1, check_pad, run_pad, T_ALL, 0},
};
const int cx_onnx_n_ops = (int)(sizeof cx_onnx_ops / sizeof *cx_onnx_ops);

const onnx_op *cx_onnx_op_at(int i) { return i < cx_onnx_n_ops ? &cx_onnx_ops[i] : &cx_onnx_ops_more[i - cx_onnx_n_ops]; }

/* ------------------------------------------------------------ the runner */

/* a value of ONNX type float16 or bfloat16 (held in F32) rounded to it: a new
 * tensor (the rounding is added as a constant, so gradients pass straight
 * through); other values as they are */
static cx_tensor *half_round(cx_tensor *t, int otype) {
    if (!t || t->dtype != CX_F32 ||
        (otype != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16 && otype != ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16))
        return t;
    cx_tensor *d = cx_empty(CX_F32, t->shape, t->ndim);
    bool same = true, ovf = false;
    for (int64_t i = 0; i < t->numel; i++) {
        float v = CX_F(t)[i], r = cx_onnx_round_to(v, otype);
        bool eq = r == v || isnan(v);
        same &= eq;
        ovf |= !eq && isinf(r);
        CX_F(d)[i] = eq || isinf(r) ? 0.0f : r - v;
    }
    if (same) return t;
    cx_tensor *y = cx_add(t, d);
    if (ovf) /* beyond the type's largest finite value: infinity */
        for (int64_t i = 0; i < t->numel; i++) {
            float r = cx_onnx_round_to(CX_F(t)[i], otype);
            if (isinf(r)) CX_F(y)[i] = r;
        }
    return y;
}

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
    for (int i = 0; i < m->n_inputs; i++) val[m->input_ids[i]] = half_round(c->inputs[i], m->values[m->input_ids[i]].otype);
    const bool opt = cx_onnx_opt_begin(m); /* no-grad runs: folded / fused nodes (onnx_opt.c) */
    for (int k = 0; k < m->n_nodes; k++) {
        onnx_node *nd = &m->nodes[k];
        const onnx_op *op = cx_onnx_op_at(nd->op);
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
            if ((i < 32 ? op->float_in >> i & 1 : op->float_in == ALL) && (!op->types || op->types == T_FLOAT) &&
                in[i]->dtype != CX_F32)
                cx_fatal("input '%s' is %s, not float", m->values[nd->in[i]].name, cx_dtype_name(in[i]->dtype));
        }
        int n_out = nd->n_out > 4 ? nd->n_out : 4;
        cx_tensor **out = cx_arena_alloc((size_t)n_out * sizeof *out);
        memset(out, 0, (size_t)n_out * sizeof *out);
        if (opt) cx_onnx_opt_inputs(m, k, in);
        if (!opt || !cx_onnx_opt_run(m, k, in, out)) {
            op->run(m, nd, in, out);
            if (opt) cx_onnx_opt_after(m, k, out);
        }
        for (int i = 0; i < nd->n_out && i < op->max_out; i++)
            if (nd->out[i] >= 0) val[nd->out[i]] = half_round(out[i], m->values[nd->out[i]].otype);
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
    cx_onnx_opt_end();
    if (!st) cx_onnx_opt_outputs(m, outputs, m->n_outputs);
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
