/* More ONNX ops (the second op table): reductions, shape and index ops
 * (Shape, Size, Cast, Gather, GatherElements, Slice, Expand, Tile, Split,
 * ConstantOfShape, Range, Where), comparisons and logic, ArgMax / ArgMin,
 * LayerNormalization, InstanceNormalization, more activations and
 * elementwise math, and the integer / bool kernels of the arithmetic ops.
 *
 * Types: Cortex holds ONNX bool and the integers up to 32 bits in I32
 * tensors, int64 and uint32 in I64 (cx_onnx_storage). F32 ops go through
 * Cortex's differentiable ops where there is one (gradients flow); integer
 * and bool tensors are computed here, exactly, in int64, and stored as the
 * value's ONNX type would store them (cx_onnx_fit). Ops computed here on
 * F32 without a Cortex op (Floor, Sin, Erf, ...) carry no gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/detect.h"
#include "cortex/core.h"
#include "cortex/onnx.h"
#include "onnx_internal.h"
#include "../tensor/internal.h"

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        cx_status st_ = (x);                                                                                           \
        if (st_) return st_;                                                                                           \
    } while (0)

#define TF ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define TB ONNX__TENSOR_PROTO__DATA_TYPE__BOOL
#define TI32 ONNX__TENSOR_PROTO__DATA_TYPE__INT32
#define TI64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

/* ------------------------------------------------------------ element access */

static double get_d(const cx_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CX_F32: return CX_F(t)[i];
    case CX_I32: return CX_I32P(t)[i];
    default: return (double)CX_I64P(t)[i];
    }
}

/* a double as int64, toward zero (NaN: 0; saturated at the ends: no undefined conversion) */
static int64_t d2i(double v) {
    if (isnan(v)) return 0;
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN;
    return (int64_t)v;
}

static int64_t get_i(const cx_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CX_F32: {
        float f = CX_F(t)[i];
        if (isnan(f)) return 0;
        if (f >= 9.2e18f) return INT64_MAX;
        if (f <= -9.2e18f) return INT64_MIN;
        return (int64_t)f;
    }
    case CX_I32: return CX_I32P(t)[i];
    default: return CX_I64P(t)[i];
    }
}

/* the ONNX type of a tensor whose value has type `ot` (0: from the storage) */
static int type_of(const cx_tensor *t, int ot) {
    if (ot) return ot;
    return t->dtype == CX_F32 ? TF : t->dtype == CX_I32 ? TI32 : TI64;
}

void cx_onnx_check_size(const char *op, int64_t total, int64_t base) {
    int64_t lim = base < ((int64_t)1 << 18) ? (int64_t)1 << 24 : 64 * base;
    if (lim > ((int64_t)1 << 27)) lim = (int64_t)1 << 27;
    if (total < 0 || total > lim) cx_fatal("%s: a result of %lld values (at most %lld here)", op, (long long)total, (long long)lim);
}

static bool in_mask_float(int t) { return t > 0 && t < 32 && (T_FLOAT >> t & 1); }

static int out_type(const cx_onnx_model *m, const onnx_node *nd, int i) {
    return i < nd->n_out && nd->out[i] >= 0 ? m->values[nd->out[i]].otype : 0;
}
static int in_type(const cx_onnx_model *m, const onnx_node *nd, const cx_tensor *t, int i) {
    return type_of(t, i < nd->n_in && nd->in[i] >= 0 ? m->values[nd->in[i]].otype : 0);
}

static cx_tensor *new_t(int ot, const int *shape, int ndim) {
    int dt = cx_onnx_storage(ot);
    return cx_empty(dt < 0 ? CX_F32 : (cx_dtype)dt, shape, ndim);
}

/* store v (double for F32, else int64 fitted to ot) */
static void put(cx_tensor *t, int ot, int64_t i, double d, int64_t v) {
    if (t->dtype == CX_F32) CX_F(t)[i] = (float)d;
    else if (t->dtype == CX_I32) CX_I32P(t)[i] = (int32_t)cx_onnx_fit(v, ot);
    else CX_I64P(t)[i] = cx_onnx_fit(v, ot);
}

static int norm_axis(const char *op, int64_t ax, int nd) {
    if (ax < -nd || ax >= (nd ? nd : 1)) cx_fatal("%s: axis %lld out of range for a %d-d input", op, (long long)ax, nd);
    return (int)(ax < 0 ? ax + nd : ax);
}

/* a 1-D (or scalar) int64 / int32 tensor into v[max]; returns its length */
static int int_list(const char *op, const char *what, const cx_tensor *t, int64_t *v, int max) {
    if (t->dtype == CX_F32 || t->ndim > 1) cx_fatal("%s: %s must be a 1-D integer tensor", op, what);
    if (t->numel > max) cx_fatal("%s: %s has %lld values (at most %d)", op, what, (long long)t->numel, max);
    for (int64_t i = 0; i < t->numel; i++) v[i] = get_i(t, i);
    return (int)t->numel;
}

static double scalar_of(const char *op, const char *what, const cx_tensor *t) {
    if (t->numel != 1) cx_fatal("%s: %s must hold one value (has %lld)", op, what, (long long)t->numel);
    return get_d(t, 0);
}

static cx_status check_none_more(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)nd, (void)why;
    return CX_OK;
}

/* ------------------------------------------------------------ broadcasting */

typedef struct {
    int ndim, shape[CX_MAX_DIMS], n;
    int64_t numel, st[3][CX_MAX_DIMS];
} bplan;

static void plan(const char *op, cx_tensor *const *t, int n, bplan *p) {
    memset(p, 0, sizeof *p);
    p->n = n;
    for (int k = 0; k < n; k++)
        if (t[k]->ndim > p->ndim) p->ndim = t[k]->ndim;
    p->numel = 1;
    for (int d = 0; d < p->ndim; d++) {
        int size = 1;
        for (int k = 0; k < n; k++) {
            int td = d - (p->ndim - t[k]->ndim), s = td >= 0 ? t[k]->shape[td] : 1;
            if (s == 1) continue;
            if (size != 1 && size != s) {
                char a[96], b[96];
                cx_fatal("%s: shapes %s and %s do not broadcast", op, cx_shape_str(t[0], a, sizeof a),
                         cx_shape_str(t[k], b, sizeof b));
            }
            size = s;
        }
        p->shape[d] = size;
        p->numel *= size;
    }
    for (int k = 0; k < n; k++) {
        int64_t s = 1;
        for (int d = p->ndim - 1; d >= 0; d--) {
            int td = d - (p->ndim - t[k]->ndim), sz = td >= 0 ? t[k]->shape[td] : 1;
            p->st[k][d] = sz == 1 ? 0 : s;
            s *= sz;
        }
    }
}

/* for each output element oi, with o[k] the element of input k */
#define BLOOP(p, ...)                                                                                                 \
    do {                                                                                                               \
        int c_[CX_MAX_DIMS] = {0};                                                                                     \
        int64_t o[3] = {0, 0, 0};                                                                                      \
        for (int64_t oi = 0; oi < (p)->numel; oi++) {                                                                  \
            __VA_ARGS__;                                                                                               \
            for (int d_ = (p)->ndim - 1; d_ >= 0; d_--) {                                                              \
                for (int k_ = 0; k_ < (p)->n; k_++) o[k_] += (p)->st[k_][d_];                                          \
                if (++c_[d_] < (p)->shape[d_]) break;                                                                  \
                for (int k_ = 0; k_ < (p)->n; k_++) o[k_] -= (p)->st[k_][d_] * (p)->shape[d_];                         \
                c_[d_] = 0;                                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)

/* ------------------------------------------------------------ integer arithmetic */

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_POW, B_MOD, B_FMOD };

static int64_t ipow(int64_t b, int64_t e) {
    if (e < 0) return b == 1 ? 1 : b == -1 ? (e % 2 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)b;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return (int64_t)r;
}

static int64_t ibin(const char *op, int code, int64_t a, int64_t b) {
    switch (code) {
    case B_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case B_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case B_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case B_DIV:
    case B_MOD:
    case B_FMOD:
        if (b == 0) cx_fatal("%s: integer division by zero", op);
        if (b == -1) return code == B_DIV ? (int64_t)(0 - (uint64_t)a) : 0;
        if (code == B_DIV) return a / b;
        if (code == B_FMOD) return a % b;
        {
            int64_t r = a % b;
            return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
        }
    case B_MAX: return a > b ? a : b;
    case B_MIN: return a < b ? a : b;
    default: return ipow(a, b);
    }
}

/* a op b on integer tensors, broadcasting; the result has ONNX type ot */
static cx_tensor *int_binary(const char *op, int code, cx_tensor *a, cx_tensor *b, int ot) {
    bplan p;
    cx_tensor *t[2] = {a, b};
    plan(op, t, 2, &p);
    cx_tensor *y = new_t(ot, p.shape, p.ndim);
    if (y->dtype == CX_F32) cx_fatal("%s: integer op with a float result", op);
    BLOOP(&p, put(y, ot, oi, 0, ibin(op, code, get_i(a, o[0]), get_i(b, o[1]))));
    return y;
}

static int arith_code(const char *op) {
    if (!strcmp(op, "Add") || !strcmp(op, "Sum") || !strcmp(op, "Mean")) return B_ADD;
    if (!strcmp(op, "Sub")) return B_SUB;
    if (!strcmp(op, "Mul")) return B_MUL;
    if (!strcmp(op, "Div")) return B_DIV;
    if (!strcmp(op, "Max")) return B_MAX;
    if (!strcmp(op, "Min")) return B_MIN;
    return B_POW;
}

/* Add, Sub, Mul, Div, Max, Min, Sum, Mean on integer inputs */
void cx_onnx_int_arith(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    const char *op = nd->p->op_type;
    int code = arith_code(op), ot = type_of(in[0], out_type(m, nd, 0));
    cx_tensor *acc = in[0];
    int n = 0;
    for (int i = 0; i < nd->n_in; i++) {
        if (!in[i]) cx_fatal("%s: input %d is empty", op, i);
        n++;
        if (i) acc = int_binary(op, code, acc, in[i], ot);
    }
    if (!strcmp(op, "Mean")) {
        cx_tensor *k = cx_empty(CX_I64, NULL, 0);
        CX_I64P(k)[0] = n;
        acc = int_binary(op, B_DIV, acc, k, ot);
    }
    out[0] = acc;
}

/* Pow: the exponent may have another type than the base */
void cx_onnx_pow(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0], *y = in[1];
    if (x->dtype == CX_F32) {
        if (y->dtype != CX_F32) {
            cx_tensor *f = cx_empty(CX_F32, y->shape, y->ndim);
            for (int64_t i = 0; i < y->numel; i++) CX_F(f)[i] = (float)get_d(y, i);
            y = f;
        }
        out[0] = cx_pow_t(x, y);
        return;
    }
    int ot = type_of(x, out_type(m, nd, 0));
    bplan p;
    cx_tensor *t[2] = {x, y};
    plan("Pow", t, 2, &p);
    cx_tensor *r = new_t(ot, p.shape, p.ndim);
    if (y->dtype == CX_F32) BLOOP(&p, put(r, ot, oi, 0, d2i(pow(get_d(x, o[0]), get_d(y, o[1])))));
    else BLOOP(&p, put(r, ot, oi, 0, ipow(get_i(x, o[0]), get_i(y, o[1]))));
    out[0] = r;
}

/* ------------------------------------------------------------ comparisons and logic */

enum { C_EQ, C_LT, C_GT, C_LE, C_GE, C_AND, C_OR, C_XOR };

static int cmp_code(const char *op) {
    static const char *names[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"};
    for (int i = 0; i < 8; i++)
        if (!strcmp(op, names[i])) return i;
    return C_EQ;
}

static void run_compare(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    int code = cmp_code(nd->p->op_type);
    cx_tensor *a = in[0], *b = in[1];
    bplan p;
    plan(nd->p->op_type, in, 2, &p);
    cx_tensor *y = cx_empty(CX_I32, p.shape, p.ndim);
    int32_t *r = CX_I32P(y);
    if (a->dtype == CX_F32 || b->dtype == CX_F32) {
        BLOOP(&p, {
            double u = get_d(a, o[0]), v = get_d(b, o[1]);
            r[oi] = code == C_EQ ? u == v : code == C_LT ? u < v : code == C_GT ? u > v : code == C_LE ? u <= v : u >= v;
        });
    } else {
        BLOOP(&p, {
            int64_t u = get_i(a, o[0]), v = get_i(b, o[1]);
            switch (code) {
            case C_EQ: r[oi] = u == v; break;
            case C_LT: r[oi] = u < v; break;
            case C_GT: r[oi] = u > v; break;
            case C_LE: r[oi] = u <= v; break;
            case C_GE: r[oi] = u >= v; break;
            case C_AND: r[oi] = u && v; break;
            case C_OR: r[oi] = u || v; break;
            default: r[oi] = !u != !v; break;
            }
        });
    }
    out[0] = y;
}

static void run_not(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *y = cx_empty(CX_I32, in[0]->shape, in[0]->ndim);
    for (int64_t i = 0; i < y->numel; i++) CX_I32P(y)[i] = !get_i(in[0], i);
    out[0] = y;
}

static void run_where(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *c = in[0], *a = in[1], *b = in[2];
    if (c->dtype != CX_I32) cx_fatal("Where: the condition must be bool");
    if (a->dtype == CX_F32 && b->dtype == CX_F32) {
        out[0] = cx_where(c, a, b);
        return;
    }
    if (a->dtype != b->dtype) cx_fatal("Where: X and Y of different types");
    int ot = in_type(m, nd, a, 1);
    bplan p;
    plan("Where", in, 3, &p);
    cx_tensor *y = new_t(ot, p.shape, p.ndim);
    BLOOP(&p, put(y, ot, oi, 0, CX_I32P(c)[o[0]] ? get_i(a, o[1]) : get_i(b, o[2])));
    out[0] = y;
}

/* ------------------------------------------------------------ elementwise math */

static double erf_d(double x) { return erf(x); }
static double sign_d(double x) { return x > 0 ? 1 : x < 0 ? -1 : 0; }
static double round_d(double x) { return nearbyint(x); } /* half to even (the default rounding mode) */
static double isnan_d(double x) { return isnan(x) != 0; }

static const struct {
    const char *name;
    double (*f)(double);
} unary_fns[] = {
    {"Sin", sin},   {"Cos", cos},     {"Tan", tan},       {"Asin", asin}, {"Acos", acos}, {"Atan", atan},
    {"Sinh", sinh}, {"Cosh", cosh},   {"Asinh", asinh},   {"Acosh", acosh}, {"Atanh", atanh}, {"Floor", floor},
    {"Ceil", ceil}, {"Round", round_d}, {"Sign", sign_d}, {"Erf", erf_d}, {"IsNaN", isnan_d},
};

/* unary float math without a Cortex op (no gradient); Sign also on integers */
static void run_unary_math(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    double (*f)(double) = NULL;
    for (size_t i = 0; i < sizeof unary_fns / sizeof *unary_fns; i++)
        if (!strcmp(unary_fns[i].name, nd->p->op_type)) f = unary_fns[i].f;
    int ot = out_type(m, nd, 0);
    cx_tensor *x = in[0], *y = new_t(type_of(x, ot), x->shape, x->ndim);
    if (y->dtype == CX_F32 || x->dtype == CX_F32)
        for (int64_t i = 0; i < x->numel; i++) {
            double v = f(get_d(x, i));
            put(y, ot, i, v, d2i(v));
        }
    else
        for (int64_t i = 0; i < x->numel; i++) put(y, ot, i, 0, d2i(f((double)get_i(x, i))));
    out[0] = y;
}

static cx_status check_isinf(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t a, b;
    TRY(cx_onnx_attr_int(nd, "detect_negative", 1, 0, 1, &a));
    TRY(cx_onnx_attr_int(nd, "detect_positive", 1, 0, 1, &b));
    nd->a.mode = (int)(a | b << 1);
    return CX_OK;
}
static void run_isinf(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *y = cx_empty(CX_I32, in[0]->shape, in[0]->ndim);
    for (int64_t i = 0; i < y->numel; i++) {
        float v = CX_F(in[0])[i];
        CX_I32P(y)[i] = isinf(v) && ((v < 0 && (nd->a.mode & 1)) || (v > 0 && (nd->a.mode & 2)));
    }
    out[0] = y;
}

/* Mod: fmod = 0 (the sign of the divisor, integers only) or 1 (C fmod) */
static cx_status check_mod(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "fmod", 0, 0, 1, &v));
    nd->a.mode = (int)v;
    int t = m->values[nd->in[0]].otype;
    if (!v && in_mask_float(t)) return cx_set_error(CX_ERR_FORMAT, "fmod = 0 on float inputs (the op requires fmod = 1)");
    return CX_OK;
}
static void run_mod(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    int ot = in_type(m, nd, in[0], 0);
    if (in[0]->dtype == CX_F32) {
        bplan p;
        plan("Mod", in, 2, &p);
        cx_tensor *y = cx_empty(CX_F32, p.shape, p.ndim);
        BLOOP(&p, CX_F(y)[oi] = fmodf(CX_F(in[0])[o[0]], CX_F(in[1])[o[1]]));
        out[0] = y;
        return;
    }
    out[0] = int_binary("Mod", nd->a.mode ? B_FMOD : B_MOD, in[0], in[1], ot);
}

/* ------------------------------------------------------------ activations */

static cx_status check_alpha_beta(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    const char *op = nd->p->op_type;
    float da = 1.0f, db = 0.0f;
    if (!strcmp(op, "HardSigmoid")) da = 0.2f, db = 0.5f;
    else if (!strcmp(op, "Selu")) da = 1.67326319217681884765625f, db = 1.05070102214813232421875f;
    else if (!strcmp(op, "Shrink")) da = 0.0f, db = 0.5f; /* bias, lambd */
    TRY(cx_onnx_attr_float(nd, !strcmp(op, "Shrink") ? "bias" : "alpha", da, &nd->a.alpha));
    if (!strcmp(op, "Selu")) TRY(cx_onnx_attr_float(nd, "gamma", db, &nd->a.beta));
    else if (!strcmp(op, "Shrink")) TRY(cx_onnx_attr_float(nd, "lambd", db, &nd->a.beta));
    else TRY(cx_onnx_attr_float(nd, "beta", db, &nd->a.beta));
    return CX_OK;
}

static void run_hard_sigmoid(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    out[0] = cx_clamp(cx_add_scalar(cx_mul_scalar(in[0], nd->a.alpha), nd->a.beta), 0.0f, 1.0f);
}
static void run_hard_swish(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    out[0] = cx_mul(in[0], cx_clamp(cx_add_scalar(cx_mul_scalar(in[0], 1.0f / 6.0f), 0.5f), 0.0f, 1.0f));
}
static void run_selu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    /* gamma (x > 0 ? x : alpha (e^x - 1)) = gamma elu(x, alpha) */
    out[0] = cx_mul_scalar(cx_elu(in[0], nd->a.alpha), nd->a.beta);
}
static void run_celu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    /* max(0, x) + min(0, alpha (e^(x / alpha) - 1)) = alpha elu(x / alpha, 1) */
    float a = nd->a.alpha;
    out[0] = cx_mul_scalar(cx_elu(cx_mul_scalar(in[0], 1.0f / a), 1.0f), a);
}
static void run_thresholded_relu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *mask = cx_empty(CX_I32, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) CX_I32P(mask)[i] = CX_F(x)[i] > nd->a.alpha;
    out[0] = cx_where(mask, x, cx_zeros(x->shape, x->ndim));
}
static void run_shrink(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *y = cx_empty(CX_F32, x->shape, x->ndim);
    float bias = nd->a.alpha, l = nd->a.beta;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = CX_F(x)[i];
        CX_F(y)[i] = v < -l ? v + bias : v > l ? v - bias : 0.0f;
    }
    out[0] = y;
}
static void run_prelu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    /* x >= 0 ? x : slope x, slope broadcast to x (unidirectionally) */
    cx_tensor *x = in[0], *zero = cx_zeros(x->shape, x->ndim);
    cx_tensor *pos = cx_maximum(x, zero), *neg = cx_neg(cx_maximum(cx_neg(x), zero));
    cx_tensor *y = cx_add(pos, cx_mul(neg, in[1]));
    if (y->ndim != x->ndim || memcmp(y->shape, x->shape, sizeof(int) * (size_t)x->ndim))
        cx_fatal("PRelu: the slope does not broadcast to the input's shape");
    out[0] = y;
}

/* ------------------------------------------------------------ reductions */

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQUARE };
static const char *reduce_names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                     "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

static int reduce_code(const char *op) {
    for (int i = 0; i < 10; i++)
        if (!strcmp(op, reduce_names[i])) return i;
    return R_SUM;
}

/* axes from an input: ReduceSum from opset 13 (the others from 18, past what Cortex reads) */
static bool axes_input(const cx_onnx_model *m, const onnx_node *nd) {
    return !strcmp(nd->p->op_type, "ReduceSum") && m->opset >= 13;
}

static cx_status check_reduce(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "keepdims", 1, 0, 1, &v));
    nd->a.keepdims = (int)v;
    TRY(cx_onnx_attr_int(nd, "noop_with_empty_axes", 0, 0, 1, &v));
    nd->a.noop = (int)v;
    if (axes_input(m, nd)) {
        nd->a.nints = -1;
        if (cx_onnx_attr(nd, "axes")) return cx_set_error(CX_ERR_FORMAT, "attribute 'axes' (from opset 13 an input)");
        return CX_OK;
    }
    if (nd->n_in > 1 && nd->in[1] >= 0) return cx_set_error(CX_ERR_FORMAT, "2 inputs (before opset 18 the axes are an attribute)");
    return cx_onnx_attr_int_list(nd, "axes", CX_MAX_DIMS);
}

/* x reduced along one axis, keeping it */
static cx_tensor *reduce1(int code, cx_tensor *x, int ax) {
    switch (code) {
    case R_MEAN: return cx_mean_axis(x, ax, true);
    case R_MAX: return cx_max_axis(x, ax, true);
    case R_MIN: return cx_neg(cx_max_axis(cx_neg(x), ax, true));
    case R_PROD: {
        int n = x->shape[ax];
        if (n == 0) {
            int sh[CX_MAX_DIMS];
            memcpy(sh, x->shape, sizeof sh);
            sh[ax] = 1;
            return cx_ones(sh, x->ndim);
        }
        return cx_slice(cx_cumprod(x, ax), ax, n - 1, n, 1);
    }
    default: return cx_sum_axis(x, ax, true);
    }
}

static void run_reduce(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    const char *op = nd->p->op_type;
    int code = reduce_code(op);
    cx_tensor *x = in[0];
    int64_t axes[CX_MAX_DIMS];
    int na = 0;
    bool red[CX_MAX_DIMS] = {0};
    if (axes_input(m, nd)) {
        if (in[1]) na = int_list(op, "axes", in[1], axes, CX_MAX_DIMS);
    } else if (nd->a.nints > 0) {
        na = nd->a.nints;
        memcpy(axes, nd->a.ints, (size_t)na * sizeof *axes);
    }
    if (na == 0 && nd->a.noop) {
        out[0] = x;
        return;
    }
    for (int i = 0; i < na; i++) red[norm_axis(op, axes[i], x->ndim)] = true;
    if (na == 0)
        for (int i = 0; i < x->ndim; i++) red[i] = true;
    cx_tensor *y = x;
    if (code == R_L1) y = cx_abs(y);
    if (code == R_L2 || code == R_SUMSQUARE) y = cx_mul(y, y);
    cx_tensor *mx = NULL;
    if (code == R_LOGSUMEXP) {
        mx = y;
        for (int i = 0; i < x->ndim; i++)
            if (red[i]) mx = cx_max_axis(mx, i, true);
        y = cx_exp(cx_sub(y, mx));
    }
    for (int i = 0; i < x->ndim; i++)
        if (red[i]) y = reduce1(code, y, i);
    if (code == R_L2) y = cx_sqrt(y);
    if (code == R_LOGSUM) y = cx_log(y);
    if (code == R_LOGSUMEXP) y = cx_add(cx_log(y), mx);
    if (!nd->a.keepdims) {
        int sh[CX_MAX_DIMS], n = 0;
        for (int i = 0; i < x->ndim; i++)
            if (!red[i]) sh[n++] = y->shape[i];
        y = cx_reshape(y, sh, n);
    }
    out[0] = y;
}

/* ArgMax / ArgMin: axis, keepdims, select_last_index; int64 indices */
static cx_status check_arg(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    TRY(cx_onnx_attr_int(nd, "keepdims", 1, 0, 1, &v));
    nd->a.keepdims = (int)v;
    TRY(cx_onnx_attr_int(nd, "select_last_index", 0, 0, 1, &v));
    nd->a.last = (int)v;
    return CX_OK;
}

static void run_arg(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const char *op = nd->p->op_type;
    bool is_max = !strcmp(op, "ArgMax");
    cx_tensor *x = in[0];
    int ax = norm_axis(op, nd->a.axis, x->ndim);
    int n = x->shape[ax];
    if (n == 0) cx_fatal("%s: an empty axis", op);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) inner *= x->shape[i];
    int sh[CX_MAX_DIMS] = {0}, r = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != ax) sh[r++] = x->shape[i];
        else if (nd->a.keepdims) sh[r++] = 1;
    cx_tensor *y = cx_empty(CX_I64, sh, r);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int best = 0;
            double bv = get_d(x, o * n * inner + j);
            for (int k = 1; k < n; k++) {
                double v = get_d(x, (o * n + k) * inner + j);
                bool better = is_max ? (v > bv || (nd->a.last && v == bv)) : (v < bv || (nd->a.last && v == bv));
                if (better) best = k, bv = v;
            }
            CX_I64P(y)[o * inner + j] = best;
        }
    out[0] = y;
}

/* ------------------------------------------------------------ normalisation */

/* LayerNormalization: Y, Mean, InvStdDev over the dims from axis on */
static cx_status check_layer_norm(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "axis", -1, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    TRY(cx_onnx_attr_float(nd, "epsilon", 1e-5f, &nd->a.eps));
    TRY(cx_onnx_attr_int(nd, "stash_type", 1, 1, 16, &v));
    if (v != 1) *why = "stash_type other than float";
    nd->a.out_types[1] = nd->a.out_types[2] = TF;
    return CX_OK;
}

static void run_layer_norm(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int ax = norm_axis("LayerNormalization", nd->a.axis, x->ndim);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    for (int i = ax; i < x->ndim; i++) inner *= x->shape[i];
    if (outer > INT32_MAX || inner > INT32_MAX || inner == 0) cx_fatal("LayerNormalization: bad input size");
    cx_tensor *x2 = cx_reshape(x, CX_SHAPE((int)outer, (int)inner));
    cx_tensor *mu = cx_mean_axis(x2, 1, true), *d = cx_sub(x2, mu);
    cx_tensor *var = cx_mean_axis(cx_mul(d, d), 1, true);
    cx_tensor *inv = cx_pow(cx_add_scalar(var, nd->a.eps), -0.5f);
    cx_tensor *y = cx_reshape(cx_mul(d, inv), x->shape, x->ndim);
    y = cx_mul(y, in[1]);
    if (in[2]) y = cx_add(y, in[2]);
    if (y->ndim != x->ndim || memcmp(y->shape, x->shape, sizeof(int) * (size_t)x->ndim))
        cx_fatal("LayerNormalization: Scale or B does not broadcast to the input's shape");
    out[0] = y;
    int sh[CX_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) sh[i] = i < ax ? x->shape[i] : 1;
    out[1] = cx_reshape(mu, sh, x->ndim);
    out[2] = cx_reshape(inv, sh, x->ndim);
}

static cx_status check_eps(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return cx_onnx_attr_float(nd, "epsilon", 1e-5f, &nd->a.eps);
}

/* InstanceNormalization: x [N, C, ...] normalised over the spatial dims per (n, c) */
static void run_instance_norm(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    if (x->ndim < 3) cx_fatal("InstanceNormalization: input of %d dimensions (at least 3)", x->ndim);
    int N = x->shape[0], C = x->shape[1];
    int64_t S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->shape[i];
    if (S > INT32_MAX || S == 0) cx_fatal("InstanceNormalization: bad input size");
    if (in[1]->numel != C || in[2]->numel != C) cx_fatal("InstanceNormalization: scale and B must have C = %d values", C);
    cx_tensor *x3 = cx_reshape(x, CX_SHAPE(N, C, (int)S));
    cx_tensor *d = cx_sub(x3, cx_mean_axis(x3, 2, true));
    cx_tensor *var = cx_mean_axis(cx_mul(d, d), 2, true);
    cx_tensor *y = cx_mul(d, cx_pow(cx_add_scalar(var, nd->a.eps), -0.5f));
    y = cx_add(cx_mul(y, cx_reshape(in[1], CX_SHAPE(C, 1))), cx_reshape(in[2], CX_SHAPE(C, 1)));
    out[0] = cx_reshape(y, x->shape, x->ndim);
}

/* GlobalMaxPool: max over the spatial dims */
static void run_global_max_pool(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    if (x->ndim < 3) cx_fatal("GlobalMaxPool: input of %d dimensions (at least 3)", x->ndim);
    int64_t S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->shape[i];
    if (S > INT32_MAX || S == 0) cx_fatal("GlobalMaxPool: bad input size");
    cx_tensor *y = cx_max_axis(cx_reshape(x, CX_SHAPE(x->shape[0], x->shape[1], (int)S)), 2, true);
    int sh[CX_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) sh[i] = i < 2 ? x->shape[i] : 1;
    out[0] = cx_reshape(y, sh, x->ndim);
}

/* ------------------------------------------------------------ shape and index ops */

static cx_tensor *i64_vector(const int64_t *v, int n) {
    cx_tensor *t = cx_empty(CX_I64, CX_SHAPE(n));
    if (n) memcpy(t->data, v, (size_t)n * sizeof *v);
    return t;
}

/* x's entries idx[0..n) along axis (idx in range): F32 through
 * cx_index_select (differentiable), other types copied here */
static cx_tensor *take(cx_tensor *x, int axis, const int64_t *idx, int n) {
    if (x->dtype == CX_F32) return cx_index_select(x, axis, i64_vector(idx, n));
    int sh[CX_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[axis] = n;
    cx_tensor *y = cx_empty(x->dtype, sh, x->ndim);
    int64_t outer = 1, inner = 1, L = x->shape[axis];
    for (int i = 0; i < axis; i++) outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) inner *= x->shape[i];
    size_t es = cx_dtype_size(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n; k++)
            memcpy((char *)y->data + (size_t)((o * n + k) * inner) * es,
                   (const char *)x->data + (size_t)((o * L + idx[k]) * inner) * es, (size_t)inner * es);
    return y;
}

/* the same data in another shape, any dtype */
static cx_tensor *reshape_any(cx_tensor *x, const int *sh, int n) { return cx_reshape(x, sh, n); }

static int64_t *idx_buf(int64_t n) { return cx_arena_alloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t)); }

static cx_status check_shape(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    /* start and end are clamped to the rank at run time */
    TRY(cx_onnx_attr_int(nd, "start", 0, INT64_MIN, INT64_MAX, &v));
    nd->a.pads[0] = v < -CX_MAX_DIMS ? -CX_MAX_DIMS - 1 : v > CX_MAX_DIMS ? CX_MAX_DIMS + 1 : (int)v;
    nd->a.np = cx_onnx_attr(nd, "end") != NULL;
    TRY(cx_onnx_attr_int(nd, "end", 0, INT64_MIN, INT64_MAX, &v));
    nd->a.pads[1] = v < -CX_MAX_DIMS ? -CX_MAX_DIMS - 1 : v > CX_MAX_DIMS ? CX_MAX_DIMS + 1 : (int)v;
    return CX_OK;
}

static void run_shape(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int r = x->ndim, s = nd->a.pads[0], e = nd->a.np ? nd->a.pads[1] : r;
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int n = e > s ? e - s : 0;
    cx_tensor *y = cx_empty(CX_I64, CX_SHAPE(n));
    for (int i = 0; i < n; i++) CX_I64P(y)[i] = x->shape[s + i];
    out[0] = y;
}

static void run_size(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *y = cx_empty(CX_I64, NULL, 0);
    CX_I64P(y)[0] = in[0]->numel;
    out[0] = y;
}

/* Cast / CastLike: to float, bool or an integer type Cortex holds */
static cx_status check_cast(cx_onnx_model *m, onnx_node *nd, const char **why) {
    int64_t to;
    if (!strcmp(nd->p->op_type, "CastLike")) {
        to = m->values[nd->in[1]].otype;
        if (!to) {
            *why = "the type of input 'target_type' is not known at load";
            return CX_OK;
        }
    } else {
        if (!cx_onnx_attr(nd, "to")) return cx_set_error(CX_ERR_FORMAT, "attribute 'to' is required");
        TRY(cx_onnx_attr_int(nd, "to", 1, 1, 16, &to));
    }
    if (cx_onnx_storage((int)to) < 0) {
        *why = "a cast to a type Cortex does not hold";
        return CX_OK;
    }
    nd->a.to = (int)to;
    return CX_OK;
}

static void run_cast(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int to = nd->a.to;
    if (to == TF && x->dtype == CX_F32) {
        out[0] = x;
        return;
    }
    cx_tensor *y = new_t(to, x->shape, x->ndim);
    if (to == TB)
        for (int64_t i = 0; i < x->numel; i++) CX_I32P(y)[i] = get_d(x, i) != 0;
    else
        for (int64_t i = 0; i < x->numel; i++) put(y, to, i, get_d(x, i), get_i(x, i));
    if (x->dtype == CX_I64 && y->dtype == CX_F32) /* exact conversion of large int64 */
        for (int64_t i = 0; i < x->numel; i++) CX_F(y)[i] = (float)CX_I64P(x)[i];
    out[0] = y;
}

static cx_status check_axis0(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis);
}

/* Gather: data[..., indices[j...], ...] along axis */
static void run_gather(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *ix = in[1];
    if (ix->dtype == CX_F32) cx_fatal("Gather: indices must be int32 or int64");
    if (x->ndim == 0) cx_fatal("Gather: a 0-d input");
    int ax = norm_axis("Gather", nd->a.axis, x->ndim), L = x->shape[ax];
    if (x->ndim + ix->ndim - 1 > CX_MAX_DIMS) cx_fatal("Gather: result of more than %d dimensions", CX_MAX_DIMS);
    if (ix->numel > INT32_MAX) cx_fatal("Gather: too many indices");
    int64_t *idx = idx_buf(ix->numel);
    for (int64_t i = 0; i < ix->numel; i++) {
        int64_t v = get_i(ix, i);
        if (v < -L || v >= L) cx_fatal("Gather: index %lld out of range [-%d, %d)", (long long)v, L, L);
        idx[i] = v < 0 ? v + L : v;
    }
    cx_tensor *y = take(x, ax, idx, (int)ix->numel);
    int sh[CX_MAX_DIMS], r = 0;
    for (int i = 0; i < ax; i++) sh[r++] = x->shape[i];
    for (int i = 0; i < ix->ndim; i++) sh[r++] = ix->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) sh[r++] = x->shape[i];
    out[0] = reshape_any(y, sh, r);
}

/* GatherElements: out[i][j] = data[i][idx[i][j]] along axis */
static void run_gather_elements(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *ix = in[1];
    if (ix->dtype == CX_F32) cx_fatal("GatherElements: indices must be int32 or int64");
    int ax = norm_axis("GatherElements", nd->a.axis, x->ndim), L = x->shape[ax];
    if (ix->ndim != x->ndim) cx_fatal("GatherElements: indices of %d dimensions for data of %d", ix->ndim, x->ndim);
    cx_tensor *n = cx_empty(CX_I64, ix->shape, ix->ndim);
    for (int64_t i = 0; i < ix->numel; i++) {
        int64_t v = get_i(ix, i);
        if (v < -L || v >= L) cx_fatal("GatherElements: index %lld out of range [-%d, %d)", (long long)v, L, L);
        CX_I64P(n)[i] = v < 0 ? v + L : v;
    }
    if (x->dtype == CX_F32) {
        out[0] = cx_gather(x, ax, n);
        return;
    }
    for (int i = 0; i < x->ndim; i++)
        if (i != ax && ix->shape[i] > x->shape[i]) cx_fatal("GatherElements: indices larger than the data");
    cx_tensor *y = cx_empty(x->dtype, ix->shape, ix->ndim);
    int c[CX_MAX_DIMS] = {0};
    int64_t st[CX_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) st[d] = s, s *= x->shape[d];
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += (d == ax ? CX_I64P(n)[i] : c[d]) * st[d];
        if (x->dtype == CX_I32) CX_I32P(y)[i] = CX_I32P(x)[off];
        else CX_I64P(y)[i] = CX_I64P(x)[off];
        for (int d = x->ndim - 1; d >= 0; d--) {
            if (++c[d] < ix->shape[d]) break;
            c[d] = 0;
        }
    }
    out[0] = y;
}

/* Slice: starts, ends, axes, steps (inputs from opset 10, attributes before) */
static cx_status check_slice(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    if (m->opset >= 10) {
        if (nd->n_in < 3 || nd->in[1] < 0 || nd->in[2] < 0)
            return cx_set_error(CX_ERR_FORMAT, "inputs 'starts' and 'ends' are required");
        return CX_OK;
    }
    int n1, n2, n3;
    TRY(cx_onnx_attr_int_list(nd, "starts", CX_MAX_DIMS));
    n1 = nd->a.nints;
    if (n1 < 0) return cx_set_error(CX_ERR_FORMAT, "attribute 'starts' is required");
    /* starts, ends, axes kept one after the other in a.ints */
    int64_t all[3 * CX_MAX_DIMS];
    memcpy(all, nd->a.ints, (size_t)n1 * sizeof *all);
    TRY(cx_onnx_attr_int_list(nd, "ends", CX_MAX_DIMS));
    n2 = nd->a.nints;
    if (n2 != n1) return cx_set_error(CX_ERR_FORMAT, "attributes 'starts' and 'ends' of different lengths");
    memcpy(all + n1, nd->a.ints, (size_t)n2 * sizeof *all);
    TRY(cx_onnx_attr_int_list(nd, "axes", CX_MAX_DIMS));
    n3 = nd->a.nints;
    if (n3 >= 0 && n3 != n1) return cx_set_error(CX_ERR_FORMAT, "attribute 'axes' of another length than 'starts'");
    for (int i = 0; i < n1; i++) all[2 * n1 + i] = n3 >= 0 ? nd->a.ints[i] : i;
    free(nd->a.ints);
    nd->a.ints = cx_xmalloc((size_t)(3 * n1 + 1) * sizeof *all);
    memcpy(nd->a.ints, all, (size_t)(3 * n1) * sizeof *all);
    nd->a.nints = n1;
    return CX_OK;
}

/* the indices start, start + step, ... before end along a dimension of L (ONNX / NumPy clamping) */
static int slice_idx(int64_t L, int64_t s, int64_t e, int64_t step, int64_t *idx) {
    if (step == 0) cx_fatal("Slice: a step of 0");
    if (s < 0) s += L;
    if (e < 0) e += L;
    if (step > 0) {
        s = s < 0 ? 0 : s > L ? L : s;
        e = e < 0 ? 0 : e > L ? L : e;
    } else {
        s = s < 0 ? -1 : s > L - 1 ? L - 1 : s;
        e = e < -1 ? -1 : e > L - 1 ? L - 1 : e;
    }
    int n = 0;
    for (int64_t i = s; step > 0 ? i < e : i > e; i += step) idx[n++] = i;
    return n;
}

static void run_slice(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int64_t st[CX_MAX_DIMS], en[CX_MAX_DIMS], ax[CX_MAX_DIMS], sp[CX_MAX_DIMS];
    int n;
    if (m->opset >= 10) {
        n = int_list("Slice", "starts", in[1], st, CX_MAX_DIMS);
        if (int_list("Slice", "ends", in[2], en, CX_MAX_DIMS) != n) cx_fatal("Slice: starts and ends of different lengths");
        if (in[3] && int_list("Slice", "axes", in[3], ax, CX_MAX_DIMS) != n) cx_fatal("Slice: axes of another length");
        if (in[4] && int_list("Slice", "steps", in[4], sp, CX_MAX_DIMS) != n) cx_fatal("Slice: steps of another length");
        for (int i = 0; i < n; i++) {
            if (!in[3]) ax[i] = i;
            if (!in[4]) sp[i] = 1;
        }
    } else {
        n = nd->a.nints;
        for (int i = 0; i < n; i++) st[i] = nd->a.ints[i], en[i] = nd->a.ints[n + i], ax[i] = nd->a.ints[2 * n + i], sp[i] = 1;
    }
    bool seen[CX_MAX_DIMS] = {0};
    for (int i = 0; i < n; i++) {
        int a = norm_axis("Slice", ax[i], x->ndim);
        if (seen[a]) cx_fatal("Slice: axis %d repeated", a);
        seen[a] = true;
        int64_t L = x->shape[a];
        int64_t *idx = idx_buf(L);
        int k = slice_idx(L, st[i], en[i], sp[i], idx);
        if (k == L && sp[i] > 0) continue;
        x = sp[i] == 1 && x->dtype == CX_F32 && k > 0 ? cx_slice(x, a, (int)idx[0], (int)idx[0] + k, 1) : take(x, a, idx, k);
    }
    out[0] = x;
}

/* x broadcast to shape sh (Expand, Tile's helper) */
static cx_tensor *broadcast_to(const char *op, cx_tensor *x, const int *sh, int r, int ot) {
    if (x->dtype == CX_F32) {
        cx_tensor *y = cx_add(x, cx_zeros(sh, r));
        return y;
    }
    cx_tensor *z = cx_empty(x->dtype, sh, r);
    memset(z->data, 0, (size_t)z->numel * cx_dtype_size(z->dtype));
    return int_binary(op, B_ADD, x, z, ot);
}

static void run_expand(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int64_t s[CX_MAX_DIMS];
    int n = int_list("Expand", "shape", in[1], s, CX_MAX_DIMS), r = n > x->ndim ? n : x->ndim, sh[CX_MAX_DIMS];
    /* the result: the shape and x's broadcast together */
    for (int d = 0; d < r; d++) {
        int64_t a = d - (r - n) >= 0 ? s[d - (r - n)] : 1;
        int b = d - (r - x->ndim) >= 0 ? x->shape[d - (r - x->ndim)] : 1;
        if (a < 0 || a > INT32_MAX) cx_fatal("Expand: dimension %lld", (long long)a);
        if (a != 1 && b != 1 && a != b) cx_fatal("Expand: shape does not broadcast with the input's");
        sh[d] = a == 1 ? b : (int)a;
    }
    int64_t total = 1;
    for (int d = 0; d < r; d++) total *= sh[d];
    cx_onnx_check_size("Expand", total, x->numel);
    out[0] = broadcast_to("Expand", x, sh, r, in_type(m, nd, x, 0));
}

static void run_tile(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    int64_t rep[CX_MAX_DIMS];
    if (int_list("Tile", "repeats", in[1], rep, CX_MAX_DIMS) != x->ndim) cx_fatal("Tile: repeats of another length than the rank");
    int64_t total = x->numel;
    for (int d = 0; d < x->ndim; d++) {
        if (rep[d] < 0 || rep[d] > INT32_MAX) cx_fatal("Tile: a repeat of %lld", (long long)rep[d]);
        total *= rep[d];
        if (total > ((int64_t)1 << 40)) break;
    }
    cx_onnx_check_size("Tile", total, x->numel);
    for (int d = 0; d < x->ndim; d++) {
        if (rep[d] == 1) continue;
        int64_t L = x->shape[d], n = L * rep[d];
        int64_t *idx = idx_buf(n);
        for (int64_t i = 0; i < n; i++) idx[i] = i % L;
        x = take(x, d, idx, (int)n);
    }
    out[0] = x;
}

/* Split: equal parts, the 'split' attribute (< 13) or input 1 */
static cx_status check_split(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    TRY(cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    if (m->opset < 13) return cx_onnx_attr_int_list(nd, "split", 1 << 16);
    nd->a.nints = -1;
    return CX_OK;
}

static void run_split(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int ax = norm_axis("Split", nd->a.axis, x->ndim), n = nd->n_out;
    int64_t L = x->shape[ax], *parts = idx_buf(n), sum = 0;
    if (m->opset >= 13 && in[1]) {
        if (in[1]->numel != n) cx_fatal("Split: %lld sizes for %d outputs", (long long)in[1]->numel, n);
        for (int i = 0; i < n; i++) parts[i] = get_i(in[1], i);
    } else if (m->opset < 13 && nd->a.nints >= 0) {
        if (nd->a.nints != n) cx_fatal("Split: %d sizes for %d outputs", nd->a.nints, n);
        memcpy(parts, nd->a.ints, (size_t)n * sizeof *parts);
    } else {
        if (L % n) cx_fatal("Split: a dimension of %lld into %d equal parts", (long long)L, n);
        for (int i = 0; i < n; i++) parts[i] = L / n;
    }
    for (int i = 0; i < n; i++) {
        if (parts[i] < 0) cx_fatal("Split: a negative size");
        sum += parts[i];
    }
    if (sum != L) cx_fatal("Split: sizes add up to %lld, the dimension is %lld", (long long)sum, (long long)L);
    int64_t *idx = idx_buf(L), at = 0;
    for (int i = 0; i < n; i++) {
        for (int64_t k = 0; k < parts[i]; k++) idx[k] = at + k;
        out[i] = take(x, ax, idx, (int)parts[i]);
        at += parts[i];
    }
}

/* ConstantOfShape: the value attribute (one element; default float 0) */
static cx_status check_const_of_shape(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "value");
    cx_tensor *v = NULL;
    nd->a.to = TF;
    if (a) {
        if (cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR || !a->t)
            return cx_set_error(CX_ERR_FORMAT, "attribute 'value' is not a tensor");
        cx_status st = cx_onnx_tensor_from_proto(a->t, "attribute 'value'", &v);
        if (st == CX_ERR_ARG) {
            *why = "a value of a data type Cortex does not hold";
            return CX_OK;
        }
        TRY(st);
        if (v->numel != 1) {
            cx_tensor_free(v);
            return cx_set_error(CX_ERR_FORMAT, "attribute 'value' must hold one value");
        }
        nd->a.to = a->t->data_type;
    } else {
        v = cx_tensor_new(CX_F32, NULL, 0);
    }
    cx_tensor_free(nd->a.value);
    nd->a.value = v;
    return CX_OK;
}

static void run_const_of_shape(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    int64_t s[CX_MAX_DIMS];
    int n = int_list("ConstantOfShape", "shape", in[0], s, CX_MAX_DIMS), sh[CX_MAX_DIMS] = {0};
    int64_t total = 1;
    for (int i = 0; i < n; i++) {
        if (s[i] < 0 || s[i] > INT32_MAX) cx_fatal("ConstantOfShape: dimension %lld", (long long)s[i]);
        sh[i] = (int)s[i];
        total *= s[i];
        if (total > ((int64_t)1 << 40)) total = (int64_t)1 << 40;
    }
    cx_onnx_check_size("ConstantOfShape", total, 0);
    cx_tensor *v = nd->a.value, *y = cx_empty(v->dtype, sh, n);
    size_t es = cx_dtype_size(v->dtype);
    for (int64_t i = 0; i < y->numel; i++) memcpy((char *)y->data + (size_t)i * es, v->data, es);
    out[0] = y;
}

/* Range: start, start + delta, ... before limit */
static void run_range(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    int ot = in_type(m, nd, in[0], 0);
    for (int i = 1; i < 3; i++)
        if (in[i]->dtype != in[0]->dtype) cx_fatal("Range: inputs of different types");
    double s = scalar_of("Range", "start", in[0]), l = scalar_of("Range", "limit", in[1]), d = scalar_of("Range", "delta", in[2]);
    if (d == 0) cx_fatal("Range: delta is 0");
    double nf = ceil((l - s) / d);
    if (!(nf < (double)(1 << 27))) nf = nf > 0 ? (double)(1 << 27) + 1 : 0;
    if (nf > (double)(1 << 27)) cx_fatal("Range: more than 2^27 values");
    int n = nf > 0 ? (int)nf : 0;
    cx_onnx_check_size("Range", n, 0);
    cx_tensor *y = new_t(ot, CX_SHAPE(n));
    if (y->dtype == CX_F32) {
        float fs = CX_F(in[0])[0], fd = CX_F(in[2])[0];
        for (int i = 0; i < n; i++) CX_F(y)[i] = fs + (float)i * fd;
    } else {
        int64_t is = get_i(in[0], 0), id = get_i(in[2], 0);
        for (int i = 0; i < n; i++) put(y, ot, i, 0, is + (int64_t)i * id);
    }
    out[0] = y;
}

/* Concat of integer / bool tensors (F32 is cx_concat, in onnx_ops.c) */
void cx_onnx_concat_any(int axis, cx_tensor **in, int n, cx_tensor **out) {
    cx_tensor *t0 = in[0];
    if (t0->ndim == 0) cx_fatal("Concat: 0-d inputs");
    int ax = norm_axis("Concat", axis, t0->ndim), sh[CX_MAX_DIMS];
    memcpy(sh, t0->shape, sizeof sh);
    sh[ax] = 0;
    for (int k = 0; k < n; k++) {
        if (in[k]->dtype != t0->dtype || in[k]->ndim != t0->ndim) cx_fatal("Concat: inputs of different types or ranks");
        for (int d = 0; d < t0->ndim; d++)
            if (d != ax && in[k]->shape[d] != t0->shape[d]) cx_fatal("Concat: input %d's shape does not match input 0's", k);
        sh[ax] += in[k]->shape[ax];
    }
    cx_tensor *y = cx_empty(t0->dtype, sh, t0->ndim);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < ax; d++) outer *= sh[d];
    for (int d = ax + 1; d < t0->ndim; d++) inner *= sh[d];
    size_t es = cx_dtype_size(t0->dtype);
    char *dst = y->data;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n; k++) {
            size_t bytes = (size_t)(in[k]->shape[ax] * inner) * es;
            memcpy(dst, (const char *)in[k]->data + (size_t)o * bytes, bytes);
            dst += bytes;
        }
    out[0] = y;
}

/* Transpose of integer / bool tensors */
cx_tensor *cx_onnx_permute_any(cx_tensor *x, const int *perm) {
    int sh[CX_MAX_DIMS];
    int64_t st[CX_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) st[d] = s, s *= x->shape[d];
    for (int d = 0; d < x->ndim; d++) sh[d] = x->shape[perm[d]];
    cx_tensor *y = cx_empty(x->dtype, sh, x->ndim);
    int c[CX_MAX_DIMS] = {0};
    size_t es = cx_dtype_size(x->dtype);
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += c[d] * st[perm[d]];
        memcpy((char *)y->data + (size_t)i * es, (const char *)x->data + (size_t)off * es, es);
        for (int d = x->ndim - 1; d >= 0; d--) {
            if (++c[d] < sh[d]) break;
            c[d] = 0;
        }
    }
    return y;
}

/* Neg, Abs, Relu on integer inputs (F32 goes through Cortex's ops) */
void cx_onnx_int_unary(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    const char *op = nd->p->op_type;
    int ot = in_type(m, nd, in[0], 0);
    cx_tensor *x = in[0], *y = new_t(ot, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t v = get_i(x, i);
        v = !strcmp(op, "Neg") ? (int64_t)(0 - (uint64_t)v) : !strcmp(op, "Abs") ? (v < 0 ? (int64_t)(0 - (uint64_t)v) : v) : v > 0 ? v : 0;
        put(y, ot, i, 0, v);
    }
    out[0] = y;
}

/* ------------------------------------------------------------ more index ops */

/* Trilu: keep the upper (upper = 1) or lower triangle of the last two dims, diagonal shifted by k */
static cx_status check_trilu(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "upper", 1, 0, 1, &v));
    nd->a.mode = (int)v;
    return CX_OK;
}

static void run_trilu(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    if (x->ndim < 2) cx_fatal("Trilu: input of %d dimensions (at least 2)", x->ndim);
    int64_t k = in[1] ? d2i(scalar_of("Trilu", "k", in[1])) : 0;
    int R = x->shape[x->ndim - 2], C = x->shape[x->ndim - 1];
    cx_tensor *mask = cx_empty(CX_I32, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = i % C, r = (i / C) % (R ? R : 1);
        CX_I32P(mask)[i] = nd->a.mode ? c - r >= k : c - r <= k;
    }
    if (x->dtype == CX_F32) {
        out[0] = cx_where(mask, x, cx_zeros(x->shape, x->ndim));
        return;
    }
    cx_tensor *y = cx_empty(x->dtype, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++)
        if (x->dtype == CX_I32) CX_I32P(y)[i] = CX_I32P(mask)[i] ? CX_I32P(x)[i] : 0;
        else CX_I64P(y)[i] = CX_I32P(mask)[i] ? CX_I64P(x)[i] : 0;
    out[0] = y;
}

/* CumSum: exclusive, reverse; the axis is input 1 */
static cx_status check_cumsum(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t e, r;
    TRY(cx_onnx_attr_int(nd, "exclusive", 0, 0, 1, &e));
    TRY(cx_onnx_attr_int(nd, "reverse", 0, 0, 1, &r));
    nd->a.mode = (int)(e | r << 1);
    return CX_OK;
}

static void run_cumsum(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int ax = norm_axis("CumSum", d2i(scalar_of("CumSum", "axis", in[1])), x->ndim), L = x->shape[ax];
    bool excl = nd->a.mode & 1, rev = nd->a.mode & 2;
    int64_t *idx = idx_buf(L);
    if (rev) {
        for (int i = 0; i < L; i++) idx[i] = L - 1 - i;
        x = take(x, ax, idx, L);
    }
    cx_tensor *y;
    if (x->dtype == CX_F32) {
        y = cx_cumsum(x, ax);
        if (excl && L > 0) {
            int sh[CX_MAX_DIMS];
            memcpy(sh, y->shape, sizeof sh);
            sh[ax] = 1;
            cx_tensor *parts[2] = {cx_zeros(sh, y->ndim), cx_slice(y, ax, 0, L - 1, 1)};
            y = cx_concat(parts, 2, ax);
        }
    } else {
        int ot = in_type(m, nd, x, 0);
        y = new_t(ot, x->shape, x->ndim);
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < ax; i++) outer *= x->shape[i];
        for (int i = ax + 1; i < x->ndim; i++) inner *= x->shape[i];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                int64_t acc = 0;
                for (int k = 0; k < L; k++) {
                    int64_t at = (o * L + k) * inner + j, v = get_i(x, at);
                    if (!excl) acc += v;
                    put(y, ot, at, 0, acc);
                    if (excl) acc += v;
                }
            }
    }
    if (rev) y = take(y, ax, idx, L);
    out[0] = y;
}

/* Hardmax: 1 at the first maximum along axis (opset >= 13), or of the 2-D coercion (< 13) */
static cx_status check_hardmax(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    return cx_onnx_attr_int(nd, "axis", m->opset < 13 ? 1 : -1, -CX_MAX_DIMS, CX_MAX_DIMS, &nd->a.axis);
}

static void run_hardmax(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int64_t outer = 1, inner = 1, L;
    int ax = (int)nd->a.axis;
    if (ax < 0) ax += x->ndim;
    if (ax < 0 || ax > x->ndim || (m->opset >= 13 && ax == x->ndim)) cx_fatal("Hardmax: axis %d out of range", (int)nd->a.axis);
    if (m->opset < 13) {
        for (int i = 0; i < ax; i++) outer *= x->shape[i];
        L = 1;
        for (int i = ax; i < x->ndim; i++) L *= x->shape[i];
    } else {
        for (int i = 0; i < ax; i++) outer *= x->shape[i];
        for (int i = ax + 1; i < x->ndim; i++) inner *= x->shape[i];
        L = x->shape[ax];
    }
    cx_tensor *y = cx_zeros(x->shape, x->ndim);
    if (L > 0)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                int64_t best = 0;
                for (int64_t k = 1; k < L; k++)
                    if (CX_F(x)[(o * L + k) * inner + j] > CX_F(x)[(o * L + best) * inner + j]) best = k;
                CX_F(y)[(o * L + best) * inner + j] = 1.0f;
            }
    out[0] = y;
}

/* DepthToSpace (DCR / CRD) and SpaceToDepth on [N, C, H, W] */
static cx_status check_blocks(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t b;
    if (!cx_onnx_attr(nd, "blocksize")) return cx_set_error(CX_ERR_FORMAT, "attribute 'blocksize' is required");
    TRY(cx_onnx_attr_int(nd, "blocksize", 1, 1, 1 << 16, &b));
    nd->a.group = (int)b;
    nd->a.mode = 0;
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "mode");
    if (a) {
        if (cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
            return cx_set_error(CX_ERR_FORMAT, "attribute 'mode' is not a string");
        if (a->s.len == 3 && !memcmp(a->s.data, "CRD", 3)) nd->a.mode = 1;
        else if (!(a->s.len == 3 && !memcmp(a->s.data, "DCR", 3)))
            return cx_set_error(CX_ERR_FORMAT, "attribute 'mode' is not DCR or CRD");
    }
    return CX_OK;
}

static cx_tensor *permute(cx_tensor *x, const int *perm) {
    return x->dtype == CX_F32 ? cx_permute(x, perm) : cx_onnx_permute_any(x, perm);
}

static void run_depth_to_space(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int b = nd->a.group;
    if (x->ndim != 4 || x->shape[1] % (b * b)) cx_fatal("DepthToSpace: input must be [N, C, H, W] with C a multiple of %d", b * b);
    int N = x->shape[0], C = x->shape[1] / (b * b), H = x->shape[2], W = x->shape[3];
    cx_tensor *t;
    if (nd->a.mode == 0) {
        t = cx_reshape(x, (const int[]){N, b, b, C, H, W}, 6);
        t = permute(t, (const int[]){0, 3, 4, 1, 5, 2});
    } else {
        t = cx_reshape(x, (const int[]){N, C, b, b, H, W}, 6);
        t = permute(t, (const int[]){0, 1, 4, 2, 5, 3});
    }
    out[0] = cx_reshape(t, CX_SHAPE(N, C, H * b, W * b));
}

static void run_space_to_depth(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int b = nd->a.group;
    if (x->ndim != 4 || x->shape[2] % b || x->shape[3] % b) cx_fatal("SpaceToDepth: H and W must be multiples of %d", b);
    int N = x->shape[0], C = x->shape[1], H = x->shape[2] / b, W = x->shape[3] / b;
    cx_tensor *t = cx_reshape(x, (const int[]){N, C, H, b, W, b}, 6);
    t = permute(t, (const int[]){0, 3, 5, 1, 2, 4});
    out[0] = cx_reshape(t, CX_SHAPE(N, C * b * b, H, W));
}

/* EyeLike: ones on the diagonal shifted by k; dtype attribute or the input's */
static cx_status check_eyelike(cx_onnx_model *m, onnx_node *nd, const char **why) {
    int64_t k, dt;
    TRY(cx_onnx_attr_int(nd, "k", 0, INT32_MIN, INT32_MAX, &k));
    nd->a.axis = k;
    TRY(cx_onnx_attr_int(nd, "dtype", 0, 0, 16, &dt));
    nd->a.to = dt ? (int)dt : m->values[nd->in[0]].otype;
    if (!nd->a.to || cx_onnx_storage(nd->a.to) < 0) *why = "an output type Cortex does not hold";
    return CX_OK;
}

static void run_eyelike(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    if (x->ndim != 2) cx_fatal("EyeLike: input must be 2-D");
    cx_tensor *y = new_t(nd->a.to, x->shape, 2);
    memset(y->data, 0, (size_t)y->numel * cx_dtype_size(y->dtype));
    for (int r = 0; r < x->shape[0]; r++) {
        int64_t c = r + nd->a.axis;
        if (c >= 0 && c < x->shape[1]) put(y, nd->a.to, r * (int64_t)x->shape[1] + c, 1.0, 1);
    }
    out[0] = y;
}

/* OneHot(indices, depth, values [off, on]) along axis */
static cx_status check_onehot(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    nd->a.to = m->values[nd->in[2]].otype;
    return cx_onnx_attr_int(nd, "axis", -1, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis);
}

static void run_onehot(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *ix = in[0], *vals = in[2];
    double dd = scalar_of("OneHot", "depth", in[1]);
    if (!(dd >= 1 && dd <= (1 << 24))) cx_fatal("OneHot: depth %g", dd);
    int D = (int)dd, r = ix->ndim + 1;
    if (r > CX_MAX_DIMS) cx_fatal("OneHot: too many dimensions");
    if (vals->numel != 2) cx_fatal("OneHot: values must hold 2 values");
    int ax = norm_axis("OneHot", nd->a.axis, r), sh[CX_MAX_DIMS];
    for (int i = 0, k = 0; i < r; i++) sh[i] = i == ax ? D : ix->shape[k++];
    int ot = in_type(m, nd, vals, 2);
    int64_t total = ix->numel * D;
    cx_onnx_check_size("OneHot", total, ix->numel);
    cx_tensor *y = new_t(ot, sh, r);
    int64_t inner = 1;
    for (int i = ax; i < ix->ndim; i++) inner *= ix->shape[i];
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t j = i % inner, d = (i / inner) % D, o = i / inner / D;
        double iv = get_d(ix, o * inner + j);
        int64_t k = d2i(iv);
        if (k < 0) k += D;
        int on = k == d;
        put(y, ot, i, get_d(vals, on), get_i(vals, on));
    }
    out[0] = y;
}

/* TopK: values and int64 indices of the k largest (smallest) along axis */
static cx_status check_topk(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "axis", -1, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    TRY(cx_onnx_attr_int(nd, "largest", 1, 0, 1, &v));
    nd->a.mode = (int)v;
    TRY(cx_onnx_attr_int(nd, "sorted", 1, 0, 1, &v));
    if (!v) *why = "sorted = 0";
    if (m->opset < 10) *why = "k as an attribute (opset < 10)";
    nd->a.out_types[1] = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    return CX_OK;
}

static void run_topk(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *ix = NULL;
    int ax = norm_axis("TopK", nd->a.axis, x->ndim);
    double k = scalar_of("TopK", "K", in[1]);
    if (!(k >= 0 && k <= x->shape[ax])) cx_fatal("TopK: k = %g for a dimension of %d", k, x->shape[ax]);
    out[0] = cx_topk(x, (int)k, ax, nd->a.mode, &ix);
    out[1] = ix;
}

/* NonZero: [rank, count] int64 coordinates of the nonzero entries */
static void run_nonzero(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    int64_t n = 0;
    for (int64_t i = 0; i < x->numel; i++) n += get_d(x, i) != 0;
    int r = x->ndim ? x->ndim : 1;
    cx_tensor *y = cx_empty(CX_I64, CX_SHAPE(r, (int)n));
    int64_t j = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (get_d(x, i) == 0) continue;
        int64_t rem = i;
        for (int d = x->ndim - 1; d >= 0; d--) {
            CX_I64P(y)[d * n + j] = rem % x->shape[d];
            rem /= x->shape[d];
        }
        if (!x->ndim) CX_I64P(y)[j] = 0;
        j++;
    }
    out[0] = y;
}

/* Compress: the entries along axis (or of the flattened input) whose condition is true */
static cx_status check_compress(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    nd->a.has_axis = cx_onnx_attr(nd, "axis") != NULL;
    return cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis);
}

static void run_compress(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *c = in[1];
    int ax = 0;
    if (nd->a.has_axis) ax = norm_axis("Compress", nd->a.axis, x->ndim);
    else x = cx_reshape(x, CX_SHAPE((int)x->numel));
    int L = x->shape[ax], n = 0;
    if (c->numel > L) cx_fatal("Compress: a condition of %lld values for a dimension of %d", (long long)c->numel, L);
    int64_t *idx = idx_buf(L);
    for (int64_t i = 0; i < c->numel; i++)
        if (get_i(c, i)) idx[n++] = i;
    out[0] = take(x, ax, idx, n);
}

/* ------------------------------------------------------------ losses */

/* reduction: 0 none, 1 sum, 2 mean (default); ignore_index */
static cx_status check_loss(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    nd->a.mode = 2;
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "reduction");
    if (a) {
        if (cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
            return cx_set_error(CX_ERR_FORMAT, "attribute 'reduction' is not a string");
        if (a->s.len == 4 && !memcmp(a->s.data, "none", 4)) nd->a.mode = 0;
        else if (a->s.len == 3 && !memcmp(a->s.data, "sum", 3)) nd->a.mode = 1;
        else if (!(a->s.len == 4 && !memcmp(a->s.data, "mean", 4)))
            return cx_set_error(CX_ERR_FORMAT, "attribute 'reduction' is not none, sum or mean");
    }
    nd->a.has_axis = cx_onnx_attr(nd, "ignore_index") != NULL;
    return cx_onnx_attr_int(nd, "ignore_index", 0, INT64_MIN, INT64_MAX, &nd->a.axis);
}

/* NLL of log-probabilities x [N, C, d...] at targets t [N, d...], weights w [C] or NULL */
static cx_tensor *nll(onnx_node *nd, cx_tensor *x, cx_tensor *t, cx_tensor *w) {
    if (x->ndim < 2) cx_fatal("NegativeLogLikelihoodLoss: input of %d dimensions (at least 2)", x->ndim);
    if (t->dtype == CX_F32 || t->ndim != x->ndim - 1) cx_fatal("NegativeLogLikelihoodLoss: target must be integer [N, d...]");
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != x->shape[i ? i + 1 : 0]) cx_fatal("NegativeLogLikelihoodLoss: target shape does not match the input's");
    int C = x->shape[1];
    if (w && (w->ndim != 1 || w->shape[0] != C)) cx_fatal("NegativeLogLikelihoodLoss: weight must be [C]");
    int sh[CX_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) sh[i] = i == 1 ? 1 : x->shape[i];
    cx_tensor *ti = cx_empty(CX_I64, sh, x->ndim), *keep = cx_empty(CX_F32, t->shape, t->ndim);
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v = get_i(t, i);
        bool ign = nd->a.has_axis && v == nd->a.axis;
        if (!ign && (v < 0 || v >= C)) cx_fatal("NegativeLogLikelihoodLoss: target %lld out of range [0, %d)", (long long)v, C);
        CX_I64P(ti)[i] = ign ? 0 : v;
        CX_F(keep)[i] = ign ? 0.0f : 1.0f;
    }
    cx_tensor *picked = cx_reshape(cx_gather(x, 1, ti), t->shape, t->ndim);
    cx_tensor *wt = keep;
    if (w) wt = cx_mul(cx_reshape(cx_index_select(w, 0, cx_reshape(ti, CX_SHAPE((int)t->numel))), t->shape, t->ndim), keep);
    cx_tensor *loss = cx_neg(cx_mul(picked, wt));
    if (nd->a.mode == 0) return loss;
    cx_tensor *s = cx_sum(loss);
    if (nd->a.mode == 2) s = cx_div(s, cx_sum(wt));
    return cx_reshape(s, NULL, 0);
}

static void run_nll(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    out[0] = nll(nd, in[0], in[1], in[2]);
}

static void run_sce(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    if (in[0]->ndim < 2) cx_fatal("SoftmaxCrossEntropyLoss: scores of %d dimensions (at least 2)", in[0]->ndim);
    cx_tensor *lp = cx_log_softmax(in[0], 1);
    out[0] = nll(nd, lp, in[1], in[2]);
    out[1] = lp;
}

/* MeanVarianceNormalization over axes (default 0, 2, 3) */
static cx_status check_mvn(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return cx_onnx_attr_int_list(nd, "axes", CX_MAX_DIMS);
}

static void run_mvn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    bool red[CX_MAX_DIMS] = {0};
    if (nd->a.nints < 0) {
        if (x->ndim != 4) cx_fatal("MeanVarianceNormalization: the default axes need a 4-d input");
        red[0] = red[2] = red[3] = true;
    }
    for (int i = 0; i < nd->a.nints; i++) red[norm_axis("MeanVarianceNormalization", nd->a.ints[i], x->ndim)] = true;
    cx_tensor *mu = x, *sq = cx_mul(x, x);
    for (int i = 0; i < x->ndim; i++)
        if (red[i]) mu = cx_mean_axis(mu, i, true), sq = cx_mean_axis(sq, i, true);
    cx_tensor *var = cx_sub(sq, cx_mul(mu, mu));
    out[0] = cx_div(cx_sub(x, mu), cx_add_scalar(cx_sqrt(var), 1e-9f));
}

/* LRN across channels: x / (bias + alpha / size * sum of squares)^beta */
static cx_status check_lrn(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t size;
    if (!cx_onnx_attr(nd, "size")) return cx_set_error(CX_ERR_FORMAT, "attribute 'size' is required");
    TRY(cx_onnx_attr_int(nd, "size", 1, 1, 1 << 16, &size));
    nd->a.group = (int)size;
    TRY(cx_onnx_attr_float(nd, "alpha", 1e-4f, &nd->a.alpha));
    TRY(cx_onnx_attr_float(nd, "beta", 0.75f, &nd->a.beta));
    return cx_onnx_attr_float(nd, "bias", 1.0f, &nd->a.eps);
}

static void run_lrn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    if (x->ndim < 3) cx_fatal("LRN: input of %d dimensions (at least 3)", x->ndim);
    int C = x->shape[1], size = nd->a.group, lo = (size - 1) / 2, hi = size - 1 - lo;
    cx_tensor *sq = cx_mul(x, x), *acc = NULL;
    for (int c = 0; c < C; c++) {
        int a = c - lo < 0 ? 0 : c - lo, b = c + hi + 1 > C ? C : c + hi + 1;
        cx_tensor *s = cx_sum_axis(cx_slice(sq, 1, a, b, 1), 1, true);
        acc = acc ? cx_concat((cx_tensor *[]){acc, s}, 2, 1) : s;
    }
    cx_tensor *den = cx_pow(cx_add_scalar(cx_mul_scalar(acc, nd->a.alpha / (float)size), nd->a.eps), nd->a.beta);
    out[0] = cx_div(x, den);
}

/* ------------------------------------------------------------ Resize, Upsample */

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_ASYMMETRIC, CT_ALIGN_CORNERS, CT_PYTORCH_HALF_PIXEL, CT_TF_HALF_PIXEL_NN, CT_TF_CROP };
enum { NM_ROUND_FLOOR, NM_ROUND_CEIL, NM_FLOOR, NM_CEIL };

/* which of names[0..n) the string attribute is (def when absent) */
static cx_status attr_choice(const onnx_node *nd, const char *name, const char *const *names, int n, int def, int *out) {
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, name);
    *out = def;
    if (!a) return CX_OK;
    if (cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is not a string", name);
    for (int i = 0; i < n; i++)
        if (a->s.len == strlen(names[i]) && !memcmp(a->s.data, names[i], a->s.len)) {
            *out = i;
            return CX_OK;
        }
    return cx_set_error(CX_ERR_FORMAT, "attribute '%s' is '%.*s' (not one the op defines)", name,
                        (int)(a->s.len > 40 ? 40 : a->s.len), (const char *)a->s.data);
}

/* the settings in a.pads: mode, coordinate transformation, nearest mode, exclude_outside */
static cx_status check_resize(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    static const char *modes[] = {"nearest", "linear", "cubic"};
    static const char *cts[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                "tf_crop_and_resize"};
    static const char *nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const char *old_modes[] = {"nearest", "linear", "bilinear", "trilinear"};
    bool old = !strcmp(nd->p->op_type, "Upsample") || m->opset < 11;
    int v;
    if (old) {
        TRY(attr_choice(nd, "mode", old_modes, 4, 0, &v));
        nd->a.pads[0] = v ? RZ_LINEAR : RZ_NEAREST;
        nd->a.pads[1] = CT_ASYMMETRIC;
        nd->a.pads[2] = NM_FLOOR;
        nd->a.pads[3] = 0;
        if (!strcmp(nd->p->op_type, "Upsample") && m->opset < 9) {
            const Onnx__AttributeProto *a = cx_onnx_attr(nd, "scales");
            if (!a || cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS || a->n_floats > CX_MAX_DIMS)
                return cx_set_error(CX_ERR_FORMAT, "attribute 'scales' (a list of floats) is required");
        } else if (nd->n_in < 2 || nd->in[1] < 0) {
            return cx_set_error(CX_ERR_FORMAT, "input 'scales' is required");
        }
        return CX_OK;
    }
    TRY(attr_choice(nd, "mode", modes, 3, RZ_NEAREST, &nd->a.pads[0]));
    TRY(attr_choice(nd, "coordinate_transformation_mode", cts, 6, CT_HALF_PIXEL, &nd->a.pads[1]));
    TRY(attr_choice(nd, "nearest_mode", nms, 4, NM_ROUND_FLOOR, &nd->a.pads[2]));
    int64_t e;
    TRY(cx_onnx_attr_int(nd, "exclude_outside", 0, 0, 1, &e));
    nd->a.pads[3] = (int)e;
    TRY(cx_onnx_attr_float(nd, "cubic_coeff_a", -0.75f, &nd->a.alpha));
    TRY(cx_onnx_attr_float(nd, "extrapolation_value", 0.0f, &nd->a.beta));
    bool scales = nd->n_in > 2 && nd->in[2] >= 0, sizes = nd->n_in > 3 && nd->in[3] >= 0;
    if (!scales && !sizes) return cx_set_error(CX_ERR_FORMAT, "one of 'scales' and 'sizes' is required");
    if (nd->a.pads[1] == CT_TF_CROP && (nd->n_in < 2 || nd->in[1] < 0))
        return cx_set_error(CX_ERR_FORMAT, "tf_crop_and_resize needs the input 'roi'");
    return CX_OK;
}

static void cubic_coeffs(double r, double A, double *c) {
    double t[4] = {r + 1, r, 1 - r, 2 - r};
    for (int k = 0; k < 4; k++) {
        double x = t[k];
        c[k] = x <= 1 ? ((A + 2) * x - (A + 3)) * x * x + 1 : ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    }
}

/* x resized along axis to n values (F32, no gradient) */
static cx_tensor *resize_axis(const onnx_node *nd, cx_tensor *x, int ax, int n, double scale, const double *roi, int64_t base) {
    int L = x->shape[ax], sh[CX_MAX_DIMS];
    if (L) cx_onnx_check_size("Resize", x->numel / L * n, base);
    memcpy(sh, x->shape, sizeof sh);
    sh[ax] = n;
    cx_tensor *y = cx_empty(CX_F32, sh, x->ndim);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) inner *= x->shape[i];
    int mode = nd->a.pads[0], ct = nd->a.pads[1], nm = nd->a.pads[2];
    double outw = scale * L; /* as ONNX's reference: the scaled length, not the rounded size */
    int64_t idx[4];
    double c[4];
    for (int j = 0; j < n; j++) {
        double xo;
        bool extrap = false;
        switch (ct) {
        case CT_ALIGN_CORNERS: xo = outw == 1 ? 0 : j * (double)(L - 1) / (outw - 1); break;
        case CT_ASYMMETRIC: xo = j / scale; break;
        case CT_PYTORCH_HALF_PIXEL: xo = outw == 1 ? -0.5 : (j + 0.5) / scale - 0.5; break;
        case CT_TF_HALF_PIXEL_NN: xo = (j + 0.5) / scale; break;
        case CT_TF_CROP:
            xo = outw == 1 ? (roi[1] - roi[0]) * (L - 1) / 2 : j * (roi[1] - roi[0]) * (L - 1) / (outw - 1);
            xo += roi[0] * (L - 1);
            extrap = xo < 0 || xo > L - 1;
            break;
        default: xo = (j + 0.5) / scale - 0.5; break;
        }
        int nt;
        double fl = floor(xo), r = xo - fl;
        int64_t base = (int64_t)fl;
        if (r == 0) base -= 1, r = 1; /* an integer position: as the reference's neighbours */
        if (mode == RZ_NEAREST) {
            nt = 1;
            bool up;
            switch (nm) {
            case NM_ROUND_CEIL: up = r >= 0.5; break;
            case NM_FLOOR: up = r == 1; break;
            case NM_CEIL: up = true; break;
            default: up = r > 0.5; break;
            }
            idx[0] = up ? base + 1 : base;
            c[0] = 1;
        } else if (mode == RZ_LINEAR) {
            nt = 2;
            idx[0] = base, idx[1] = base + 1;
            c[0] = 1 - r, c[1] = r;
        } else {
            nt = 4;
            for (int k = 0; k < 4; k++) idx[k] = base - 1 + k;
            cubic_coeffs(r, nd->a.alpha, c);
        }
        if (nd->a.pads[3]) {
            double sum = 0;
            for (int k = 0; k < nt; k++) {
                if (idx[k] < 0 || idx[k] >= L) c[k] = 0;
                sum += c[k];
            }
            for (int k = 0; k < nt; k++) c[k] = sum != 0 ? c[k] / sum : 0;
        }
        for (int k = 0; k < nt; k++) idx[k] = idx[k] < 0 ? 0 : idx[k] >= L ? L - 1 : idx[k];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                float *dst = CX_F(y) + (o * n + j) * inner + i;
                if (extrap) {
                    *dst = nd->a.beta;
                    continue;
                }
                double acc = 0;
                for (int k = 0; k < nt; k++) acc += c[k] * CX_F(x)[(o * L + idx[k]) * inner + i];
                *dst = (float)acc;
            }
    }
    return y;
}

static void run_resize(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0];
    int r = x->ndim;
    double scale[CX_MAX_DIMS], roi[2 * CX_MAX_DIMS];
    int64_t size[CX_MAX_DIMS];
    bool old = !strcmp(nd->p->op_type, "Upsample") || m->opset < 11;
    const cx_tensor *sc = old ? in[1] : in[2], *sz = old ? NULL : in[3];
    if (old && !sc) {
        const Onnx__AttributeProto *a = cx_onnx_attr(nd, "scales");
        if ((int)a->n_floats != r) cx_fatal("%s: %zu scales for a %d-d input", nd->p->op_type, a->n_floats, r);
        for (int i = 0; i < r; i++) scale[i] = a->floats[i];
    } else if (sc && sc->numel) {
        if (sz) cx_fatal("Resize: both scales and sizes");
        if (sc->dtype != CX_F32 || sc->numel != r) cx_fatal("%s: scales must be %d floats", nd->p->op_type, r);
        for (int i = 0; i < r; i++) scale[i] = CX_F(sc)[i];
    } else if (sz) {
        if (int_list("Resize", "sizes", sz, size, CX_MAX_DIMS) != r) cx_fatal("Resize: sizes must have %d values", r);
        for (int i = 0; i < r; i++) {
            if (size[i] < 0 || size[i] > (1 << 24)) cx_fatal("Resize: size %lld", (long long)size[i]);
            scale[i] = x->shape[i] ? (double)size[i] / x->shape[i] : 1.0;
        }
    } else {
        cx_fatal("Resize: neither scales nor sizes");
    }
    int64_t total = 1;
    for (int i = 0; i < r; i++) {
        if (!(scale[i] > 0) || scale[i] > (1 << 20)) cx_fatal("%s: scale %g", nd->p->op_type, scale[i]);
        if (!sz) size[i] = (int64_t)floor(x->shape[i] * scale[i] + 1e-9);
        total *= size[i] > 0 ? size[i] : 1;
        if (total > ((int64_t)1 << 40)) total = (int64_t)1 << 40;
        roi[2 * i] = 0, roi[2 * i + 1] = 1;
    }
    if (!old && nd->a.pads[1] == CT_TF_CROP) {
        if (!in[1] || in[1]->numel != 2 * r || in[1]->dtype != CX_F32) cx_fatal("Resize: roi must hold %d floats", 2 * r);
        for (int i = 0; i < r; i++) roi[2 * i] = CX_F(in[1])[i], roi[2 * i + 1] = CX_F(in[1])[r + i];
    }
    cx_onnx_check_size(nd->p->op_type, total, x->numel);
    int64_t base = x->numel;
    if (x->dtype != CX_F32) cx_fatal("%s: float input only", nd->p->op_type);
    for (int i = r - 1; i >= 0; i--)
        if (size[i] != x->shape[i] || scale[i] != 1.0 || (!old && nd->a.pads[1] == CT_TF_CROP))
            x = resize_axis(nd, x, i, (int)size[i], scale[i], roi + 2 * i, base);
    out[0] = x;
}

/* ------------------------------------------------------------ Einsum */

/* Einsum on F32 operands by direct summation over every label (no
 * gradient): terms of letters and "...", implicit or explicit output. */
#define EIN_MAX 16
static cx_status check_einsum(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "equation");
    if (!a || cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return cx_set_error(CX_ERR_FORMAT, "attribute 'equation' (a string) is required");
    if (a->s.len > 256) return cx_set_error(CX_ERR_FORMAT, "attribute 'equation' is too long");
    int terms = 1;
    for (size_t i = 0; i < a->s.len; i++) {
        char c = (char)a->s.data[i];
        if (c == ',') terms++;
        else if (!(c == ' ' || c == '.' || c == '-' || c == '>' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return cx_set_error(CX_ERR_FORMAT, "equation: character '%c' is not a letter, ',', '...' or '->'", c);
    }
    if (terms != nd->n_in) return cx_set_error(CX_ERR_FORMAT, "equation has %d terms for %d inputs", terms, nd->n_in);
    return CX_OK;
}

/* one term's labels (0..51 letters, 52.. the dims of "...", right-aligned to
 * ne_max of them); rank < 0: the output term ("..." is all ne_max dims).
 * Returns the count. */
static int ein_term(const char *t, size_t n, int rank, int ne_max, int *lab) {
    int explicit_n = 0, k = 0, dots = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '.') dots++;
        else if (t[i] != ' ') explicit_n++;
    if (dots != 0 && dots != 3) cx_fatal("Einsum: '.' outside an ellipsis '...'");
    int ne = !dots ? 0 : rank < 0 ? ne_max : rank - explicit_n;
    if (ne < 0 || (!dots && rank >= 0 && explicit_n != rank)) cx_fatal("Einsum: a term does not match its operand's rank %d", rank);
    if (explicit_n + ne > EIN_MAX) cx_fatal("Einsum: more than %d labels in a term", EIN_MAX);
    bool done_ell = false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == ' ') continue;
        if (c == '.') {
            if (!done_ell)
                for (int j = 0; j < ne; j++) lab[k++] = 52 + (ne_max - ne) + j;
            done_ell = true;
            continue;
        }
        lab[k++] = c >= 'a' ? c - 'a' : 26 + c - 'A';
    }
    return k;
}

static void run_einsum(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "equation");
    const char *eq = (const char *)a->s.data;
    size_t len = a->s.len, arrow = len;
    for (size_t i = 0; i + 1 < len; i++)
        if (eq[i] == '-' && eq[i + 1] == '>') arrow = i;
    int n = nd->n_in, lab[8][EIN_MAX], nl[8], ne_max = 0;
    if (n > 8) cx_fatal("Einsum: more than 8 operands");
    /* the longest ellipsis first */
    size_t st = 0;
    for (int k = 0; k < n; k++) {
        size_t e = st;
        while (e < arrow && eq[e] != ',') e++;
        int ne;
        if (!in[k] || in[k]->dtype != CX_F32) cx_fatal("Einsum: operand %d must be float", k);
        int explicit_n = 0;
        bool ell = false;
        for (size_t i = st; i < e; i++)
            if (eq[i] == '.') ell = true;
            else if (eq[i] != ' ') explicit_n++;
        ne = ell ? in[k]->ndim - explicit_n : 0;
        if (ne > ne_max) ne_max = ne;
        st = e + 1;
    }
    st = 0;
    int dim[64];
    for (int i = 0; i < 64; i++) dim[i] = -1;
    int count[64] = {0};
    for (int k = 0; k < n; k++) {
        size_t e = st;
        while (e < arrow && eq[e] != ',') e++;
        nl[k] = ein_term(eq + st, e - st, in[k]->ndim, ne_max, lab[k]);
        for (int j = 0; j < nl[k]; j++) {
            int l = lab[k][j], d = in[k]->shape[j];
            count[l]++;
            if (dim[l] < 0 || dim[l] == 1) dim[l] = d;
            else if (d != dim[l] && !(l >= 52 && d == 1)) cx_fatal("Einsum: label sizes %d and %d disagree", dim[l], d);
        }
        st = e + 1;
    }
    int ol[EIN_MAX + 8], no = 0;
    if (arrow < len) {
        no = ein_term(eq + arrow + 2, len - arrow - 2, -1, ne_max, ol);
        for (int j = 0; j < no; j++) {
            if (dim[ol[j]] < 0) cx_fatal("Einsum: output label not in any input");
            for (int i = 0; i < j; i++)
                if (ol[i] == ol[j]) cx_fatal("Einsum: an output label repeated");
        }
    } else {
        for (int j = 0; j < ne_max; j++) ol[no++] = 52 + j;
        for (int l = 0; l < 52 && no < EIN_MAX; l++)
            if (count[l] == 1) ol[no++] = l;
    }
    if (no > CX_MAX_DIMS) cx_fatal("Einsum: output of more than %d dimensions", CX_MAX_DIMS);
    /* every label: output ones first, then the summed ones */
    int all[64], na = 0;
    bool in_out[64] = {0};
    for (int j = 0; j < no; j++) all[na++] = ol[j], in_out[ol[j]] = true;
    for (int l = 0; l < 64; l++)
        if (dim[l] >= 0 && !in_out[l]) all[na++] = l;
    int64_t total = 1;
    for (int j = 0; j < na; j++) total *= dim[all[j]] > 0 ? dim[all[j]] : 1;
    for (int j = 0; j < na; j++)
        if (dim[all[j]] == 0) total = 0;
    if (total > ((int64_t)1 << 26)) cx_fatal("Einsum: %lld products to sum (at most 2^26)", (long long)total);
    int sh[CX_MAX_DIMS] = {0};
    for (int j = 0; j < no; j++) sh[j] = dim[ol[j]];
    cx_tensor *y = cx_zeros(sh, no);
    /* strides of each operand per label (repeated labels add up: diagonals) */
    int64_t str[8][64];
    memset(str, 0, sizeof str);
    for (int k = 0; k < n; k++) {
        int64_t s = 1;
        for (int j = nl[k] - 1; j >= 0; j--) {
            if (in[k]->shape[j] != 1) str[k][lab[k][j]] += s;
            s *= in[k]->shape[j];
        }
    }
    int64_t ostr[64] = {0}, s = 1;
    for (int j = no - 1; j >= 0; j--) ostr[ol[j]] = s, s *= sh[j];
    int c[64] = {0};
    for (int64_t t = 0; t < total; t++) {
        double p = 1;
        int64_t yo = 0;
        for (int k = 0; k < n; k++) {
            int64_t off = 0;
            for (int j = 0; j < na; j++) off += c[j] * str[k][all[j]];
            p *= CX_F(in[k])[off];
        }
        for (int j = 0; j < no; j++) yo += c[j] * ostr[ol[j]];
        CX_F(y)[yo] += (float)p;
        for (int j = na - 1; j >= 0; j--) {
            if (++c[j] < dim[all[j]]) break;
            c[j] = 0;
        }
    }
    out[0] = y;
}

/* ------------------------------------------------------------ RNN, GRU, LSTM */

enum { ACT_SIGMOID, ACT_TANH, ACT_RELU };

static cx_status check_rnn(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    const char *op = nd->p->op_type;
    int gates = !strcmp(op, "LSTM") ? 4 : !strcmp(op, "GRU") ? 3 : 1;
    int64_t v;
    if (!cx_onnx_attr(nd, "hidden_size")) return cx_set_error(CX_ERR_FORMAT, "attribute 'hidden_size' is required");
    TRY(cx_onnx_attr_int(nd, "hidden_size", 1, 1, 1 << 20, &v));
    nd->a.group = (int)v;
    TRY(cx_onnx_attr_int(nd, "layout", 0, 0, 1, &v));
    nd->a.trans_a = (int)v;
    TRY(cx_onnx_attr_int(nd, "linear_before_reset", 0, 0, 1, &v));
    nd->a.trans_b = (int)v;
    TRY(cx_onnx_attr_int(nd, "input_forget", 0, 0, 1, &v));
    if (v) *why = "input_forget = 1";
    static const char *dirs[] = {"forward", "reverse", "bidirectional"};
    TRY(attr_choice(nd, "direction", dirs, 3, 0, &nd->a.mode));
    if (cx_onnx_attr(nd, "clip")) *why = "clip";
    /* activations: the defaults, or these names */
    const Onnx__AttributeProto *a = cx_onnx_attr(nd, "activations");
    int nact = gates == 4 ? 3 : gates == 3 ? 2 : 1;
    for (int i = 0; i < 6; i++) nd->a.kernel[i % 3] = 0;
    nd->a.np = 0;
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < nact; i++) nd->a.pads[d * 3 + i] = gates == 1 ? ACT_TANH : i == 0 ? ACT_SIGMOID : ACT_TANH;
    if (a) {
        if (cx_onnx_attr_type(a) != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS)
            return cx_set_error(CX_ERR_FORMAT, "attribute 'activations' is not a list of strings");
        int need = nact * (nd->a.mode == 2 ? 2 : 1);
        if ((int)a->n_strings != need) return cx_set_error(CX_ERR_FORMAT, "%zu activations (%d expected)", a->n_strings, need);
        for (int i = 0; i < need; i++) {
            const ProtobufCBinaryData *sd = &a->strings[i];
            int act = -1;
            if (sd->len == 7 && !memcmp(sd->data, "Sigmoid", 7)) act = ACT_SIGMOID;
            else if (sd->len == 4 && !memcmp(sd->data, "Tanh", 4)) act = ACT_TANH;
            else if (sd->len == 4 && !memcmp(sd->data, "Relu", 4)) act = ACT_RELU;
            if (act < 0) {
                *why = "an activation other than Sigmoid, Tanh, Relu";
                return CX_OK;
            }
            nd->a.pads[(i / nact) * 3 + i % nact] = act;
        }
    }
    return CX_OK;
}

static cx_tensor *act(int a, cx_tensor *x) { return a == ACT_SIGMOID ? cx_sigmoid(x) : a == ACT_TANH ? cx_tanh(x) : cx_relu(x); }

/* rows [from, from + n) of a 2-D tensor's first dim, as [n, cols] */
static cx_tensor *rows(cx_tensor *t, int from, int n) { return cx_slice(t, 0, from, from + n, 1); }

static void run_rnn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const char *op = nd->p->op_type;
    bool lstm = !strcmp(op, "LSTM"), gru = !strcmp(op, "GRU");
    int G = lstm ? 4 : gru ? 3 : 1, H = nd->a.group, D = nd->a.mode == 2 ? 2 : 1;
    cx_tensor *X = in[0], *W = in[1], *R = in[2], *B = in[3], *SL = in[4], *H0 = in[5], *C0 = lstm ? in[6] : NULL,
              *P = lstm ? in[7] : NULL;
    if (X->ndim != 3) cx_fatal("%s: X must be 3-D", op);
    if (nd->a.trans_a) X = cx_permute(X, (const int[]){1, 0, 2});
    int T = X->shape[0], N = X->shape[1], I = X->shape[2];
    if (W->ndim != 3 || W->shape[0] != D || W->shape[1] != G * H || W->shape[2] != I)
        cx_fatal("%s: W must be [%d, %d, %d]", op, D, G * H, I);
    if (R->ndim != 3 || R->shape[0] != D || R->shape[1] != G * H || R->shape[2] != H)
        cx_fatal("%s: R must be [%d, %d, %d]", op, D, G * H, H);
    if (B && (B->ndim != 2 || B->shape[0] != D || B->shape[1] != 2 * G * H)) cx_fatal("%s: B must be [%d, %d]", op, D, 2 * G * H);
    if (P && (P->ndim != 2 || P->shape[0] != D || P->shape[1] != 3 * H)) cx_fatal("%s: P must be [%d, %d]", op, D, 3 * H);
    if (H0 && (H0->ndim != 3 || H0->shape[0] != D || H0->shape[1] != N || H0->shape[2] != H)) cx_fatal("%s: initial_h must be [%d, %d, %d]", op, D, N, H);
    if (C0 && (C0->ndim != 3 || C0->shape[0] != D || C0->shape[1] != N || C0->shape[2] != H)) cx_fatal("%s: initial_c must be [%d, %d, %d]", op, D, N, H);
    int lens[1 << 12];
    if (N > (1 << 12)) cx_fatal("%s: batch too large", op);
    bool ragged = false;
    for (int b = 0; b < N; b++) {
        lens[b] = T;
        if (SL) {
            if (SL->numel != N || SL->dtype == CX_F32) cx_fatal("%s: sequence_lens must be %d integers", op, N);
            int64_t l = get_i(SL, b);
            if (l < 0 || l > T) cx_fatal("%s: sequence length %lld for %d steps", op, (long long)l, T);
            lens[b] = (int)l;
            ragged |= l != T;
        }
    }
    if (ragged && D == 2 ? true : ragged && nd->a.mode == 1) cx_fatal("%s: sequence_lens shorter than the input in reverse direction", op);
    cx_tensor **ys = cx_arena_alloc(sizeof(cx_tensor *) * (size_t)(2 * T + 1));
    cx_tensor *hs[2], *cs[2];
    for (int d = 0; d < D; d++) {
        bool rev = nd->a.mode == 1 || d == 1;
        const int *acts = nd->a.pads + 3 * d;
        cx_tensor *w = cx_reshape(cx_slice(W, 0, d, d + 1, 1), CX_SHAPE(G * H, I));
        cx_tensor *r = cx_reshape(cx_slice(R, 0, d, d + 1, 1), CX_SHAPE(G * H, H));
        cx_tensor *wb = NULL, *rb = NULL, *p = NULL;
        if (B) {
            cx_tensor *b = cx_reshape(cx_slice(B, 0, d, d + 1, 1), CX_SHAPE(2 * G * H));
            wb = cx_slice(b, 0, 0, G * H, 1), rb = cx_slice(b, 0, G * H, 2 * G * H, 1);
        }
        if (P) p = cx_reshape(cx_slice(P, 0, d, d + 1, 1), CX_SHAPE(3 * H));
        cx_tensor *h = H0 ? cx_reshape(cx_slice(H0, 0, d, d + 1, 1), CX_SHAPE(N, H)) : cx_zeros(CX_SHAPE(N, H));
        cx_tensor *c = C0 ? cx_reshape(cx_slice(C0, 0, d, d + 1, 1), CX_SHAPE(N, H)) : cx_zeros(CX_SHAPE(N, H));
        /* gate weights split per gate: rows g*H .. (g+1)*H */
        for (int step = 0; step < T; step++) {
            int t = rev ? T - 1 - step : step;
            cx_tensor *xt = cx_reshape(cx_slice(X, 0, t, t + 1, 1), CX_SHAPE(N, I));
            cx_tensor *xw = cx_matmul_t(xt, w, false, true); /* [N, G H] */
            if (wb) xw = cx_add(xw, wb);
            cx_tensor *hn, *cn = NULL;
            if (gru) {
                /* gates z, r, h */
                cx_tensor *rz = cx_matmul_t(h, rows(r, 0, 2 * H), false, true);
                if (rb) rz = cx_add(rz, cx_slice(rb, 0, 0, 2 * H, 1));
                cx_tensor *zr = act(acts[0], cx_add(cx_slice(xw, 1, 0, 2 * H, 1), rz));
                cx_tensor *z = cx_slice(zr, 1, 0, H, 1), *rg = cx_slice(zr, 1, H, 2 * H, 1);
                cx_tensor *xh = cx_slice(xw, 1, 2 * H, 3 * H, 1), *rh = rows(r, 2 * H, H), *hh;
                cx_tensor *rbh = rb ? cx_slice(rb, 0, 2 * H, 3 * H, 1) : NULL;
                if (nd->a.trans_b) {
                    cx_tensor *q = cx_matmul_t(h, rh, false, true);
                    if (rbh) q = cx_add(q, rbh);
                    hh = act(acts[1], cx_add(xh, cx_mul(rg, q)));
                } else {
                    cx_tensor *q = cx_matmul_t(cx_mul(rg, h), rh, false, true);
                    if (rbh) q = cx_add(q, rbh);
                    hh = act(acts[1], cx_add(xh, q));
                }
                /* h = (1 - z) hh + z h */
                hn = cx_add(cx_sub(hh, cx_mul(z, hh)), cx_mul(z, h));
            } else {
                cx_tensor *g = cx_add(xw, cx_matmul_t(h, r, false, true));
                if (rb) g = cx_add(g, rb);
                if (!lstm) {
                    hn = act(acts[0], g);
                } else {
                    /* gates i, o, f, c; peepholes i, o, f */
                    cx_tensor *gi = cx_slice(g, 1, 0, H, 1), *go = cx_slice(g, 1, H, 2 * H, 1),
                              *gf = cx_slice(g, 1, 2 * H, 3 * H, 1), *gc = cx_slice(g, 1, 3 * H, 4 * H, 1);
                    if (p) {
                        gi = cx_add(gi, cx_mul(c, cx_slice(p, 0, 0, H, 1)));
                        gf = cx_add(gf, cx_mul(c, cx_slice(p, 0, 2 * H, 3 * H, 1)));
                    }
                    cx_tensor *it = act(acts[0], gi), *ft = act(acts[0], gf), *ct = act(acts[1], gc);
                    cn = cx_add(cx_mul(ft, c), cx_mul(it, ct));
                    if (p) go = cx_add(go, cx_mul(cn, cx_slice(p, 0, H, 2 * H, 1)));
                    hn = cx_mul(act(acts[0], go), act(acts[2], cn));
                }
            }
            cx_tensor *yt = hn;
            if (ragged) {
                /* past a sequence's end: the state holds, the output is 0 */
                cx_tensor *mk = cx_empty(CX_F32, CX_SHAPE(N, 1));
                for (int b = 0; b < N; b++) CX_F(mk)[b] = t < lens[b] ? 1.0f : 0.0f;
                yt = cx_mul(hn, mk);
                hn = cx_add(yt, cx_sub(h, cx_mul(h, mk)));
                if (cn) cn = cx_add(cx_mul(cn, mk), cx_sub(c, cx_mul(c, mk)));
            }
            h = hn;
            if (cn) c = cn;
            ys[d * T + t] = cx_reshape(yt, CX_SHAPE(1, 1, N, H));
        }
        hs[d] = cx_reshape(h, CX_SHAPE(1, N, H));
        cs[d] = cx_reshape(c, CX_SHAPE(1, N, H));
    }
    /* Y [T, D, N, H] */
    cx_tensor *Y = NULL;
    if (T > 0) {
        cx_tensor **steps = cx_arena_alloc(sizeof(cx_tensor *) * (size_t)T);
        for (int t = 0; t < T; t++) {
            steps[t] = ys[t];
            if (D == 2) steps[t] = cx_concat((cx_tensor *[]){ys[t], ys[T + t]}, 2, 1);
        }
        Y = T == 1 ? steps[0] : cx_concat(steps, T, 0);
        if (nd->a.trans_a) Y = cx_permute(Y, (const int[]){2, 0, 1, 3});
    }
    cx_tensor *Yh = D == 2 ? cx_concat(hs, 2, 0) : hs[0], *Yc = D == 2 ? cx_concat(cs, 2, 0) : cs[0];
    if (nd->a.trans_a) {
        Yh = cx_permute(Yh, (const int[]){1, 0, 2});
        Yc = cx_permute(Yc, (const int[]){1, 0, 2});
    }
    out[0] = Y;
    out[1] = Yh;
    out[2] = Yc;
}

/* ------------------------------------------------------------ scatter and gather */

/* ScatterElements / Scatter: data with updates written at indices along axis; reduction none, add, mul */
static cx_status check_scatter(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    static const char *red[] = {"none", "add", "mul"};
    TRY(attr_choice(nd, "reduction", red, 3, 0, &nd->a.mode));
    if (!strcmp(nd->p->op_type, "ScatterND")) return CX_OK;
    return cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis);
}

static void scatter_put(cx_tensor *y, int ot, int64_t at, const cx_tensor *u, int64_t from, int red) {
    if (y->dtype == CX_F32) {
        float v = CX_F(u)[from];
        CX_F(y)[at] = red == 1 ? CX_F(y)[at] + v : red == 2 ? CX_F(y)[at] * v : v;
    } else {
        int64_t v = get_i(u, from), o = get_i(y, at);
        put(y, ot, at, 0, red == 1 ? (int64_t)((uint64_t)o + (uint64_t)v) : red == 2 ? (int64_t)((uint64_t)o * (uint64_t)v) : v);
    }
}

static void run_scatter_elements(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0], *ix = in[1], *u = in[2];
    const char *op = nd->p->op_type;
    int ax = norm_axis(op, nd->a.axis, x->ndim), L = x->shape[ax], ot = in_type(m, nd, x, 0);
    if (ix->dtype == CX_F32 || ix->ndim != x->ndim || u->ndim != x->ndim || memcmp(ix->shape, u->shape, sizeof(int) * (size_t)x->ndim))
        cx_fatal("%s: indices and updates must be integer / data-typed tensors of one shape and the data's rank", op);
    for (int d = 0; d < x->ndim; d++)
        if (ix->shape[d] > x->shape[d] && d != ax) cx_fatal("%s: indices larger than the data", op);
    cx_tensor *z = cx_empty(x->dtype, x->shape, x->ndim);
    memcpy(z->data, x->data, (size_t)x->numel * cx_dtype_size(x->dtype));
    int64_t st[CX_MAX_DIMS], s = 1;
    for (int d = x->ndim - 1; d >= 0; d--) st[d] = s, s *= x->shape[d];
    int c[CX_MAX_DIMS] = {0};
    for (int64_t i = 0; i < ix->numel; i++) {
        int64_t v = get_i(ix, i);
        if (v < -L || v >= L) cx_fatal("%s: index %lld out of range [-%d, %d)", op, (long long)v, L, L);
        if (v < 0) v += L;
        int64_t off = 0;
        for (int d = 0; d < x->ndim; d++) off += (d == ax ? v : c[d]) * st[d];
        scatter_put(z, ot, off, u, i, nd->a.mode);
        for (int d = x->ndim - 1; d >= 0; d--) {
            if (++c[d] < ix->shape[d]) break;
            c[d] = 0;
        }
    }
    out[0] = z;
}

/* the offset and size of the slice of x an index tuple of k values addresses (from dimension b on) */
static int64_t nd_offset(const char *op, const cx_tensor *x, const cx_tensor *ix, int64_t tuple, int k, int b, int64_t *slice) {
    int64_t off = 0, s = 1;
    for (int d = x->ndim - 1; d >= b + k; d--) s *= x->shape[d];
    *slice = s;
    for (int j = 0; j < k; j++) {
        int L = x->shape[b + j];
        int64_t v = get_i(ix, tuple * k + j);
        if (v < -L || v >= L) cx_fatal("%s: index %lld out of range [-%d, %d)", op, (long long)v, L, L);
        off = off * L + (v < 0 ? v + L : v);
    }
    return off * s;
}

static void run_scatter_nd(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    cx_tensor *x = in[0], *ix = in[1], *u = in[2];
    int ot = in_type(m, nd, x, 0);
    if (ix->dtype == CX_F32 || ix->ndim < 1) cx_fatal("ScatterND: indices must be an integer tensor");
    int k = ix->shape[ix->ndim - 1];
    if (k > x->ndim) cx_fatal("ScatterND: index tuples of %d for data of rank %d", k, x->ndim);
    int64_t tuples = k ? ix->numel / k : 0, slice = 1;
    for (int d = k; d < x->ndim; d++) slice *= x->shape[d];
    if (u->numel != tuples * slice) cx_fatal("ScatterND: updates of %lld values (%lld expected)", (long long)u->numel, (long long)(tuples * slice));
    cx_tensor *z = cx_empty(x->dtype, x->shape, x->ndim);
    memcpy(z->data, x->data, (size_t)x->numel * cx_dtype_size(x->dtype));
    for (int64_t t = 0; t < tuples; t++) {
        int64_t sl, off = nd_offset("ScatterND", x, ix, t, k, 0, &sl);
        for (int64_t j = 0; j < sl; j++) scatter_put(z, ot, off + j, u, t * sl + j, nd->a.mode);
    }
    out[0] = z;
}

static cx_status check_gather_nd(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    return cx_onnx_attr_int(nd, "batch_dims", 0, 0, CX_MAX_DIMS - 1, &nd->a.axis);
}

static void run_gather_nd(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *ix = in[1];
    int b = (int)nd->a.axis;
    if (ix->dtype == CX_F32 || ix->ndim < 1) cx_fatal("GatherND: indices must be an integer tensor");
    int k = ix->shape[ix->ndim - 1];
    if (b >= x->ndim || b >= ix->ndim || b + k > x->ndim) cx_fatal("GatherND: batch_dims %d and tuples of %d for data of rank %d", b, k, x->ndim);
    for (int d = 0; d < b; d++)
        if (x->shape[d] != ix->shape[d]) cx_fatal("GatherND: batch dimensions differ");
    int sh[CX_MAX_DIMS], r = 0;
    for (int d = 0; d < ix->ndim - 1; d++) sh[r++] = ix->shape[d];
    for (int d = b + k; d < x->ndim; d++) {
        if (r >= CX_MAX_DIMS) cx_fatal("GatherND: result of too many dimensions");
        sh[r++] = x->shape[d];
    }
    int64_t batch = 1, per = 1, xper = 1;
    for (int d = 0; d < b; d++) batch *= x->shape[d];
    for (int d = b; d < ix->ndim - 1; d++) per *= ix->shape[d];
    for (int d = b; d < x->ndim; d++) xper *= x->shape[d];
    /* x viewed per batch entry: drop the batch dims for the offsets */
    cx_tensor xv = *x;
    xv.ndim = x->ndim - b;
    memmove(xv.shape, x->shape + b, sizeof(int) * (size_t)xv.ndim);
    size_t es = cx_dtype_size(x->dtype);
    cx_tensor *y = cx_empty(x->dtype, sh, r);
    char *dst = y->data;
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t t = 0; t < per; t++) {
            int64_t sl, off = nd_offset("GatherND", &xv, ix, bi * per + t, k, 0, &sl);
            memcpy(dst, (const char *)x->data + (size_t)(bi * xper + off) * es, (size_t)sl * es);
            dst += (size_t)sl * es;
        }
    out[0] = y;
}

/* ReverseSequence: the first seq_lens[b] steps of each batch entry reversed */
static cx_status check_reverse_seq(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t b, t;
    TRY(cx_onnx_attr_int(nd, "batch_axis", 1, 0, 1, &b));
    TRY(cx_onnx_attr_int(nd, "time_axis", 0, 0, 1, &t));
    if (b == t) return cx_set_error(CX_ERR_FORMAT, "batch_axis and time_axis are both %lld", (long long)b);
    nd->a.axis = t;
    return CX_OK;
}

static void run_reverse_seq(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *sl = in[1];
    if (x->ndim < 2) cx_fatal("ReverseSequence: input of %d dimensions (at least 2)", x->ndim);
    int ta = (int)nd->a.axis, ba = 1 - ta, T = x->shape[ta], B = x->shape[ba];
    if (sl->numel != B || sl->dtype == CX_F32) cx_fatal("ReverseSequence: sequence_lens must be %d integers", B);
    int64_t inner = 1;
    for (int d = 2; d < x->ndim; d++) inner *= x->shape[d];
    size_t es = cx_dtype_size(x->dtype);
    cx_tensor *y = cx_empty(x->dtype, x->shape, x->ndim);
    for (int b = 0; b < B; b++) {
        int64_t l = get_i(sl, b);
        if (l < 0 || l > T) cx_fatal("ReverseSequence: length %lld for %d steps", (long long)l, T);
        for (int t = 0; t < T; t++) {
            int src = t < l ? (int)(l - 1 - t) : t;
            int64_t o = ta == 0 ? ((int64_t)t * B + b) : ((int64_t)b * T + t), i = ta == 0 ? ((int64_t)src * B + b) : ((int64_t)b * T + src);
            memcpy((char *)y->data + (size_t)(o * inner) * es, (const char *)x->data + (size_t)(i * inner) * es, (size_t)inner * es);
        }
    }
    out[0] = y;
}

/* ------------------------------------------------------------ integer ops */

static cx_status check_bitshift(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    static const char *dirs[] = {"LEFT", "RIGHT"};
    if (!cx_onnx_attr(nd, "direction")) return cx_set_error(CX_ERR_FORMAT, "attribute 'direction' is required");
    return attr_choice(nd, "direction", dirs, 2, 0, &nd->a.mode);
}

static void run_bitshift(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    int ot = in_type(m, nd, in[0], 0);
    bplan p;
    plan("BitShift", in, 2, &p);
    cx_tensor *y = new_t(ot, p.shape, p.ndim);
    BLOOP(&p, {
        uint64_t v = (uint64_t)get_i(in[0], o[0]), sft = (uint64_t)get_i(in[1], o[1]);
        put(y, ot, oi, 0, sft >= 64 ? 0 : (int64_t)(nd->a.mode ? v >> sft : v << sft));
    });
    out[0] = y;
}

/* Clip on integers: bounds are inputs 1, 2 of the same type */
void cx_onnx_int_clip(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    int ot = in_type(m, nd, in[0], 0);
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    if (in[1]) lo = d2i(scalar_of("Clip", "min", in[1]));
    if (in[2]) hi = d2i(scalar_of("Clip", "max", in[2]));
    cx_tensor *x = in[0], *y = new_t(ot, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t v = get_i(x, i);
        put(y, ot, i, 0, v < lo ? lo : v > hi ? hi : v);
    }
    out[0] = y;
}

/* QuantizeLinear: saturate(round(x / scale) + zero_point) as uint8 / int8 (per tensor or per axis) */
static cx_status check_quant(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    TRY(cx_onnx_attr_int(nd, "axis", 1, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    bool q = !strcmp(nd->p->op_type, "QuantizeLinear");
    if (q) nd->a.to = nd->n_in > 2 && nd->in[2] >= 0 ? m->values[nd->in[2]].otype : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    else nd->a.to = TF;
    if (q && nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
        *why = "a zero point other than uint8 / int8";
    return CX_OK;
}

/* the scale / zero point of element i of x: per tensor or along axis */
static int64_t qindex(const cx_tensor *x, const cx_tensor *s, int ax, int64_t i) {
    if (s->numel == 1) return 0;
    int64_t inner = 1;
    for (int d = ax + 1; d < x->ndim; d++) inner *= x->shape[d];
    return (i / inner) % x->shape[ax];
}

static void run_quant(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    bool q = !strcmp(nd->p->op_type, "QuantizeLinear");
    cx_tensor *x = in[0], *sc = in[1], *zp = in[2];
    int ax = sc->numel != 1 ? norm_axis(nd->p->op_type, nd->a.axis, x->ndim) : 0;
    if (sc->numel != 1 && (sc->ndim != 1 || x->ndim == 0 || sc->numel != x->shape[ax]))
        cx_fatal("%s: scale must be a scalar or hold one value per entry of axis %d", nd->p->op_type, ax);
    if (zp && zp->numel != sc->numel) cx_fatal("%s: zero point and scale of different sizes", nd->p->op_type);
    int ot = nd->a.to;
    bool u8 = ot == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    cx_tensor *y = new_t(ot, x->shape, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = qindex(x, sc, ax, i);
        double s = get_d(sc, k), z = zp ? get_d(zp, k) : 0;
        if (q) {
            /* x / scale rounded in float, as ONNX's reference (ties to even) */
            double v = (double)nearbyintf((float)get_d(x, i) / (float)s) + z, lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
            v = v < lo ? lo : v > hi ? hi : v;
            put(y, ot, i, v, d2i(v));
        } else {
            CX_F(y)[i] = (float)((get_d(x, i) - z) * s);
        }
    }
    out[0] = y;
}

/* DynamicQuantizeLinear: y (uint8), its scale and zero point from x's range (with 0) */
static cx_status check_dynquant(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    nd->a.to = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    nd->a.out_types[1] = TF;
    return CX_OK;
}

static void run_dynquant(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    float lo = 0, hi = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = CX_F(x)[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    float s = (hi - lo) / 255.0f;
    float zf = s != 0 ? nearbyintf(-lo / s) : 0;
    zf = zf < 0 ? 0 : zf > 255 ? 255 : zf;
    cx_tensor *y = cx_empty(CX_I32, x->shape, x->ndim), *ys = cx_empty(CX_F32, NULL, 0), *yz = cx_empty(CX_I32, NULL, 0);
    for (int64_t i = 0; i < x->numel; i++) {
        float v = s != 0 ? nearbyintf(CX_F(x)[i] / s) + zf : zf;
        if (isnan(v)) v = zf;
        CX_I32P(y)[i] = (int32_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    CX_F(ys)[0] = s;
    CX_I32P(yz)[0] = (int32_t)zf;
    out[0] = y, out[1] = ys, out[2] = yz;
}

/* Det of the last two dims */
static void run_det(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *x = in[0];
    if (x->ndim < 2 || x->shape[x->ndim - 1] != x->shape[x->ndim - 2]) cx_fatal("Det: input must be [..., M, M]");
    int M = x->shape[x->ndim - 1];
    if (M > 1024) cx_fatal("Det: matrices larger than 1024");
    cx_tensor *y = cx_empty(CX_F32, x->shape, x->ndim - 2);
    double *a = cx_arena_alloc(sizeof(double) * (size_t)(M * M > 0 ? M * M : 1));
    for (int64_t b = 0; b < y->numel; b++) {
        for (int64_t i = 0; i < (int64_t)M * M; i++) a[i] = CX_F(x)[b * M * M + i];
        double det = 1;
        for (int c = 0; c < M && det != 0; c++) {
            int p = c;
            for (int r = c + 1; r < M; r++)
                if (fabs(a[r * M + c]) > fabs(a[p * M + c])) p = r;
            if (a[p * M + c] == 0) {
                det = 0;
                break;
            }
            if (p != c) {
                for (int k = 0; k < M; k++) {
                    double t = a[c * M + k];
                    a[c * M + k] = a[p * M + k], a[p * M + k] = t;
                }
                det = -det;
            }
            det *= a[c * M + c];
            for (int r = c + 1; r < M; r++) {
                double f = a[r * M + c] / a[c * M + c];
                for (int k = c; k < M; k++) a[r * M + k] -= f * a[c * M + k];
            }
        }
        CX_F(y)[b] = (float)det;
    }
    out[0] = y;
}

/* Hann, Hamming, Blackman windows of `size` values */
static cx_status check_window_fn(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "periodic", 1, 0, 1, &v));
    nd->a.mode = (int)v;
    TRY(cx_onnx_attr_int(nd, "output_datatype", TF, 1, 16, &v));
    nd->a.to = (int)v;
    if (cx_onnx_storage((int)v) < 0) *why = "an output type Cortex does not hold";
    return CX_OK;
}

static void run_window_fn(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    double sz = scalar_of(nd->p->op_type, "size", in[0]);
    if (!(sz >= 0 && sz <= (1 << 22))) cx_fatal("%s: size %g (at most 2^22)", nd->p->op_type, sz);
    int n = (int)sz;
    double N = nd->a.mode ? n : n - 1;
    const char *op = nd->p->op_type;
    cx_tensor *y = new_t(nd->a.to, CX_SHAPE(n));
    for (int i = 0; i < n; i++) {
        double t = N > 0 ? 2 * 3.14159265358979323846 * i / N : 0, v;
        if (!strcmp(op, "HannWindow")) v = 0.5 - 0.5 * cos(t);
        else if (!strcmp(op, "HammingWindow")) v = 25.0 / 46 - 21.0 / 46 * cos(t);
        else v = 0.42 - 0.5 * cos(t) + 0.08 * cos(2 * t);
        put(y, nd->a.to, i, v, d2i(v));
    }
    out[0] = y;
}

/* MelWeightMatrix (opset 17): [dft_length / 2 + 1, num_mel_bins] triangular
 * filters with peak 1, their edges num_mel_bins + 2 points spaced evenly on
 * the mel scale mel(f) = 2595 log10(1 + f / 700) from lower_edge_hertz by
 * (mel(upper) - mel(lower)) / (num_mel_bins + 2) (the definition's step),
 * each point's bin floor((dft_length + 1) f / sample_rate). */
static cx_status check_mel(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "output_datatype", TF, 1, 16, &v));
    nd->a.to = (int)v;
    if (cx_onnx_storage((int)v) < 0) *why = "an output type Cortex does not hold";
    return CX_OK;
}

static void run_mel(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const double nm = scalar_of("MelWeightMatrix", "num_mel_bins", in[0]);
    const double dl = scalar_of("MelWeightMatrix", "dft_length", in[1]);
    const double sr = scalar_of("MelWeightMatrix", "sample_rate", in[2]);
    const double lo = scalar_of("MelWeightMatrix", "lower_edge_hertz", in[3]);
    const double hi = scalar_of("MelWeightMatrix", "upper_edge_hertz", in[4]);
    if (!(nm >= 1 && nm <= (1 << 16))) cx_fatal("MelWeightMatrix: num_mel_bins %g (1 to 2^16)", nm);
    if (!(dl >= 1 && dl <= (1 << 22))) cx_fatal("MelWeightMatrix: dft_length %g (1 to 2^22)", dl);
    if (!(sr > 0)) cx_fatal("MelWeightMatrix: sample_rate %g must be positive", sr);
    if (!(lo >= 0 && hi >= lo)) cx_fatal("MelWeightMatrix: edges %g, %g Hz (need 0 <= lower <= upper)", lo, hi);
    const int M = (int)nm, D = (int)dl, S = D / 2 + 1;
    int64_t *bin = idx_buf(M + 2);
    const double mlo = 2595 * log10(1 + lo / 700), mhi = 2595 * log10(1 + hi / 700), step = (mhi - mlo) / (M + 2);
    for (int i = 0; i < M + 2; i++) {
        const double f = 700 * (pow(10, (i * step + mlo) / 2595) - 1);
        bin[i] = (int64_t)floor((D + 1) * f / sr);
        if (bin[i] < 0 || bin[i] >= S)
            cx_fatal("MelWeightMatrix: the filter edge at %g Hz falls in bin %lld, outside the %d bins of a %d-point DFT "
                     "at %g samples/s", f, (long long)bin[i], S, D, sr);
    }
    cx_tensor *y = new_t(nd->a.to, CX_SHAPE(S, M));
    memset(y->data, 0, (size_t)y->numel * cx_dtype_size(y->dtype));
    for (int i = 0; i < M; i++) {
        const int64_t l = bin[i], c = bin[i + 1], r = bin[i + 2];
        if (c == l) put(y, nd->a.to, c * M + i, 1.0, 1);
        else
            for (int64_t j = l; j <= c; j++) {
                double v = (double)(j - l) / (double)(c - l);
                put(y, nd->a.to, j * M + i, v, d2i(v));
            }
        for (int64_t j = c; j < r; j++) {
            double v = (double)(r - j) / (double)(r - c);
            put(y, nd->a.to, j * M + i, v, d2i(v));
        }
    }
    out[0] = y;
}

/* ------------------------------------------------------------ Pad in any mode */

/* x's entries idx[k] along axis, or `value` where idx[k] is -1 */
static cx_tensor *take_fill(cx_tensor *x, int axis, const int64_t *idx, int n, double value) {
    bool fill = false;
    for (int k = 0; k < n; k++) fill |= idx[k] < 0;
    if (!fill) return take(x, axis, idx, n);
    int sh[CX_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[axis] = n;
    cx_tensor *y = cx_empty(x->dtype, sh, x->ndim);
    int64_t outer = 1, inner = 1, L = x->shape[axis];
    for (int i = 0; i < axis; i++) outer *= x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++) inner *= x->shape[i];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < n; k++)
            for (int64_t j = 0; j < inner; j++) {
                int64_t at = (o * n + k) * inner + j, from = (o * L + idx[k]) * inner + j;
                if (x->dtype == CX_F32) CX_F(y)[at] = idx[k] < 0 ? (float)value : CX_F(x)[from];
                else if (x->dtype == CX_I32) CX_I32P(y)[at] = idx[k] < 0 ? (int32_t)d2i(value) : CX_I32P(x)[from];
                else CX_I64P(y)[at] = idx[k] < 0 ? d2i(value) : CX_I64P(x)[from];
            }
    return y;
}

cx_tensor *cx_onnx_pad_any(cx_tensor *x, const int64_t *pads, int mode, double value) {
    int64_t base = x->numel, lim = base < ((int64_t)1 << 14) ? (int64_t)1 << 20 : 64 * base, size = 1;
    if (lim > ((int64_t)1 << 27)) lim = (int64_t)1 << 27;
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[i], e = pads[x->ndim + i], L = x->shape[i];
        if (b > (1 << 24) || e > (1 << 24) || b < -L || e < -L || b + e + L < 0) /* bounds first: no overflow */
            cx_fatal("Pad: pads %lld, %lld for a dimension of %lld", (long long)b, (long long)e, (long long)L);
        if (mode && L == 0 && b + e > 0) cx_fatal("Pad: %s padding of an empty dimension", mode == 1 ? "reflect" : "edge");
        size *= L + b + e;
        if (size > lim) cx_fatal("Pad: a result of more than %lld values", (long long)lim);
    }
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[i], e = pads[x->ndim + i], L = x->shape[i], n = L + b + e;
        if (!b && !e) continue;
        int64_t *idx = idx_buf(n);
        for (int64_t j = 0; j < n; j++) {
            int64_t src = j - b;
            if (mode == 0) idx[j] = src >= 0 && src < L ? src : -1;
            else if (mode == 2) idx[j] = src < 0 ? 0 : src >= L ? L - 1 : src;
            else if (L == 1) idx[j] = 0;
            else {
                int64_t per = 2 * (L - 1), t = ((src % per) + per) % per;
                idx[j] = t >= L ? per - t : t;
            }
        }
        x = take_fill(x, i, idx, (int)n, value);
    }
    return x;
}

/* ------------------------------------------------------------ MaxUnpool, Unique, integer matmul */

static cx_status check_maxunpool(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    TRY(cx_onnx_attr_int_list(nd, "kernel_shape", 3));
    if (nd->a.nints < 1) return cx_set_error(CX_ERR_FORMAT, "attribute 'kernel_shape' is required");
    for (int i = 0; i < nd->a.nints; i++) {
        if (nd->a.ints[i] < 1 || nd->a.ints[i] > (1 << 20)) return cx_set_error(CX_ERR_FORMAT, "kernel_shape value out of range");
        nd->a.kernel[i] = (int)nd->a.ints[i];
    }
    nd->a.nk = nd->a.nints;
    int n;
    const Onnx__AttributeProto *st = cx_onnx_attr(nd, "strides"), *pd = cx_onnx_attr(nd, "pads");
    for (int i = 0; i < 3; i++) nd->a.stride[i] = 1;
    memset(nd->a.pads, 0, sizeof nd->a.pads);
    if (st) {
        TRY(cx_onnx_attr_int_list(nd, "strides", 3));
        n = nd->a.nints;
        if (n != nd->a.nk) return cx_set_error(CX_ERR_FORMAT, "%d strides for a %d-d kernel", n, nd->a.nk);
        for (int i = 0; i < n; i++) {
            if (nd->a.ints[i] < 1 || nd->a.ints[i] > (1 << 20)) return cx_set_error(CX_ERR_FORMAT, "strides value out of range");
            nd->a.stride[i] = (int)nd->a.ints[i];
        }
    }
    if (pd) {
        TRY(cx_onnx_attr_int_list(nd, "pads", 6));
        n = nd->a.nints;
        if (n != 2 * nd->a.nk) return cx_set_error(CX_ERR_FORMAT, "%d pads for a %d-d kernel", n, nd->a.nk);
        for (int i = 0; i < n; i++) {
            if (nd->a.ints[i] < 0 || nd->a.ints[i] > (1 << 20)) return cx_set_error(CX_ERR_FORMAT, "pads value out of range");
            nd->a.pads[i] = (int)nd->a.ints[i];
        }
    }
    return CX_OK;
}

static void run_maxunpool(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *ix = in[1];
    int nsp = x->ndim - 2, sh[CX_MAX_DIMS] = {0};
    if (nsp != nd->a.nk) cx_fatal("MaxUnpool: a %d-d kernel for %d spatial dimensions", nd->a.nk, nsp);
    if (ix->dtype == CX_F32 || ix->numel != x->numel) cx_fatal("MaxUnpool: indices must be integers of the input's shape");
    sh[0] = x->shape[0], sh[1] = x->shape[1];
    for (int i = 0; i < nsp; i++) {
        int64_t o = (int64_t)(x->shape[2 + i] - 1) * nd->a.stride[i] + nd->a.kernel[i] - nd->a.pads[i] - nd->a.pads[nsp + i];
        if (o < 0 || o > INT32_MAX) cx_fatal("MaxUnpool: output size %lld", (long long)o);
        sh[2 + i] = (int)o;
    }
    /* output_shape: the unpooled tensor zero-padded at the end of each dim to it (as ONNX's reference) */
    int64_t os[CX_MAX_DIMS], pads[2 * CX_MAX_DIMS] = {0};
    if (in[2]) {
        if (int_list("MaxUnpool", "output_shape", in[2], os, CX_MAX_DIMS) != x->ndim) cx_fatal("MaxUnpool: output_shape of another rank");
        for (int i = 0; i < x->ndim; i++) {
            if (os[i] < sh[i] || os[i] > INT32_MAX) cx_fatal("MaxUnpool: output_shape smaller than the unpooled shape");
            pads[x->ndim + i] = os[i] - sh[i];
        }
    }
    int64_t total = 1;
    for (int i = 0; i < x->ndim; i++) total *= sh[i];
    cx_onnx_check_size("MaxUnpool", total, x->numel);
    cx_tensor *y = cx_zeros(sh, x->ndim);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = get_i(ix, i);
        if (k < 0 || k >= y->numel) cx_fatal("MaxUnpool: index %lld out of range", (long long)k);
        CX_F(y)[k] = CX_F(x)[i];
    }
    out[0] = in[2] ? cx_onnx_pad_any(y, pads, 0, 0.0) : y;
}

/* Unique: sorted (or first-seen) distinct values, or slices along axis */
static cx_status check_unique(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    nd->a.has_axis = cx_onnx_attr(nd, "axis") != NULL;
    TRY(cx_onnx_attr_int(nd, "axis", 0, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    TRY(cx_onnx_attr_int(nd, "sorted", 1, 0, 1, &v));
    nd->a.mode = (int)v;
    nd->a.out_types[1] = nd->a.out_types[2] = nd->a.out_types[3] = TI64;
    return CX_OK;
}

static _Thread_local struct {
    const cx_tensor *x;
    int64_t L, inner, outer;
} uq;

/* items a and b (slices along the axis) compared in row-major order of their values */
static int uq_cmp(int64_t a, int64_t b) {
    for (int64_t o = 0; o < uq.outer; o++)
        for (int64_t i = 0; i < uq.inner; i++) {
            double u = get_d(uq.x, (o * uq.L + a) * uq.inner + i), v = get_d(uq.x, (o * uq.L + b) * uq.inner + i);
            if (u != v) return u < v ? -1 : 1;
        }
    return 0;
}
static int uq_qsort(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    int c = uq_cmp(a, b);
    return c ? c : (a > b) - (a < b); /* the first occurrence first */
}

static void run_unique(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    int ax = 0;
    if (nd->a.has_axis) ax = norm_axis("Unique", nd->a.axis, x->ndim);
    else x = cx_reshape(x, CX_SHAPE((int)x->numel));
    uq.x = x, uq.L = x->shape[ax], uq.outer = 1, uq.inner = 1;
    for (int i = 0; i < ax; i++) uq.outer *= x->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) uq.inner *= x->shape[i];
    int64_t L = uq.L, *ord = idx_buf(L), *first = idx_buf(L), *inv = idx_buf(L), *cnt = idx_buf(L), nu = 0;
    for (int64_t k = 0; k < L; k++) ord[k] = k;
    qsort(ord, (size_t)L, sizeof *ord, uq_qsort);
    /* groups of equal items in sorted order: the first occurrence of each */
    int64_t *grp = idx_buf(L);
    for (int64_t k = 0; k < L; k++) {
        if (k == 0 || uq_cmp(ord[k - 1], ord[k])) first[nu] = ord[k], cnt[nu] = 0, nu++;
        cnt[nu - 1]++;
        grp[ord[k]] = nu - 1;
    }
    /* output order: sorted, or by first occurrence */
    int64_t *pos = idx_buf(nu), *uo = idx_buf(nu);
    for (int64_t g = 0; g < nu; g++) uo[g] = g;
    if (!nd->a.mode) { /* groups by first occurrence: insertion by first[] (already distinct) */
        for (int64_t g = 1; g < nu; g++)
            for (int64_t h = g; h > 0 && first[uo[h - 1]] > first[uo[h]]; h--) {
                int64_t t = uo[h];
                uo[h] = uo[h - 1], uo[h - 1] = t;
            }
    }
    for (int64_t g = 0; g < nu; g++) pos[uo[g]] = g;
    int64_t *sel = idx_buf(nu);
    for (int64_t g = 0; g < nu; g++) sel[g] = first[uo[g]];
    out[0] = take(x, ax, sel, (int)nu);
    cx_tensor *ti = cx_empty(CX_I64, CX_SHAPE((int)nu)), *tv = cx_empty(CX_I64, CX_SHAPE((int)L)), *tc = cx_empty(CX_I64, CX_SHAPE((int)nu));
    for (int64_t g = 0; g < nu; g++) CX_I64P(ti)[g] = first[uo[g]], CX_I64P(tc)[g] = cnt[uo[g]];
    for (int64_t k = 0; k < L; k++) CX_I64P(tv)[k] = pos[grp[k]];
    (void)inv;
    out[1] = ti, out[2] = tv, out[3] = tc;
}

/* MatMulInteger / QLinearMatMul: (a - a_zero) (b - b_zero) in integers */
static cx_tensor *int_matmul(const char *op, cx_tensor *a, cx_tensor *az, cx_tensor *b, cx_tensor *bz) {
    if (a->ndim < 1 || b->ndim < 1 || a->ndim > 3 || b->ndim > 3) cx_fatal("%s: operands of 1 to 3 dimensions", op);
    bool va = a->ndim == 1, vb = b->ndim == 1;
    int M = va ? 1 : a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], Kb = vb ? b->shape[0] : b->shape[b->ndim - 2],
        N = vb ? 1 : b->shape[b->ndim - 1];
    int Ba = a->ndim == 3 ? a->shape[0] : 1, Bb = b->ndim == 3 ? b->shape[0] : 1, B = Ba > Bb ? Ba : Bb;
    if (K != Kb || (Ba != Bb && Ba != 1 && Bb != 1)) cx_fatal("%s: shapes do not multiply", op);
    if (az && az->numel != 1 && az->numel != M) cx_fatal("%s: a_zero_point must be a scalar or one per row", op);
    if (bz && bz->numel != 1 && bz->numel != N) cx_fatal("%s: b_zero_point must be a scalar or one per column", op);
    if ((int64_t)B * M * N * (K ? K : 1) > ((int64_t)1 << 30)) cx_fatal("%s: too large", op);
    int sh[3], r = 0;
    if (a->ndim == 3 || b->ndim == 3) sh[r++] = B;
    if (!va) sh[r++] = M;
    if (!vb) sh[r++] = N;
    cx_tensor *y = cx_empty(CX_I64, sh, r);
    for (int bi = 0; bi < B; bi++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                int64_t acc = 0, za = az ? get_i(az, az->numel == 1 ? 0 : i) : 0, zb = bz ? get_i(bz, bz->numel == 1 ? 0 : j) : 0;
                for (int k = 0; k < K; k++)
                    acc += (get_i(a, ((int64_t)(Ba > 1 ? bi : 0) * M + i) * K + k) - za) *
                           (get_i(b, ((int64_t)(Bb > 1 ? bi : 0) * K + k) * N + j) - zb);
                CX_I64P(y)[((int64_t)bi * M + i) * N + j] = acc;
            }
    return y;
}

static cx_status check_matmul_integer(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)why;
    for (int i = 0; i < nd->n_in; i++) {
        int t = nd->in[i] >= 0 ? m->values[nd->in[i]].otype : 0;
        if (in_mask_float(t)) return cx_set_error(CX_ERR_FORMAT, "input %d is float (the op multiplies integers)", i);
    }
    nd->a.to = TI32;
    return CX_OK;
}

static void run_matmul_integer(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m, (void)nd;
    cx_tensor *y = int_matmul("MatMulInteger", in[0], in[2], in[1], in[3]), *r = cx_empty(CX_I32, y->shape, y->ndim);
    for (int64_t i = 0; i < y->numel; i++) CX_I32P(r)[i] = (int32_t)cx_onnx_fit(CX_I64P(y)[i], TI32);
    out[0] = r;
}

static cx_status check_qlinear_matmul(cx_onnx_model *m, onnx_node *nd, const char **why) {
    nd->a.to = m->values[nd->in[7]].otype;
    if (nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 && nd->a.to != ONNX__TENSOR_PROTO__DATA_TYPE__INT8)
        *why = "an output zero point other than uint8 / int8";
    return CX_OK;
}

static void run_qlinear_matmul(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const char *op = "QLinearMatMul";
    cx_tensor *y = int_matmul(op, in[0], in[2], in[3], in[5]);
    double s = scalar_of(op, "a_scale", in[1]) * scalar_of(op, "b_scale", in[4]) / scalar_of(op, "y_scale", in[6]);
    double z = scalar_of(op, "y_zero_point", in[7]);
    bool u8 = nd->a.to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    cx_tensor *r = cx_empty(CX_I32, y->shape, y->ndim);
    for (int64_t i = 0; i < y->numel; i++) {
        double v = nearbyint((double)CX_I64P(y)[i] * s) + z, lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
        CX_I32P(r)[i] = (int32_t)(isnan(v) ? z : v < lo ? lo : v > hi ? hi : v);
    }
    out[0] = r;
}

/* ------------------------------------------------------------ NonMaxSuppression, GridSample */

static cx_status check_nms(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "center_point_box", 0, 0, 1, &v));
    nd->a.mode = (int)v;
    return CX_OK;
}

/* RoiAlign (opsets 10, 16) on cx_roi_align: mode avg (max, whose ONNX
 * definition takes the maximum of the weighted samples, is not run);
 * coordinate_transformation_mode half_pixel (opset 16's default: torchvision's
 * aligned) or output_half_pixel (opset 10's only behaviour: not aligned).
 * Attributes: kernel[0..1] = output height, width; a.ints unused; alpha =
 * spatial_scale; pads[0] = sampling_ratio; a.mode = aligned. */
static cx_status check_roialign(cx_onnx_model *m, onnx_node *nd, const char **why) {
    static const char *modes[] = {"avg", "max"}, *cts[] = {"output_half_pixel", "half_pixel"};
    int mode, ct;
    int64_t oh, ow, sr;
    TRY(attr_choice(nd, "mode", modes, 2, 0, &mode));
    TRY(attr_choice(nd, "coordinate_transformation_mode", cts, 2, m->opset >= 16 ? 1 : 0, &ct));
    TRY(cx_onnx_attr_int(nd, "output_height", 1, 1, 1 << 16, &oh));
    TRY(cx_onnx_attr_int(nd, "output_width", 1, 1, 1 << 16, &ow));
    TRY(cx_onnx_attr_int(nd, "sampling_ratio", 0, 0, 1 << 16, &sr));
    TRY(cx_onnx_attr_float(nd, "spatial_scale", 1.0f, &nd->a.alpha));
    if (!(nd->a.alpha > 0) || !isfinite(nd->a.alpha)) return cx_set_error(CX_ERR_FORMAT, "spatial_scale must be positive");
    if (mode == 1) *why = "mode 'max' (Cortex runs RoiAlign's 'avg')";
    nd->a.kernel[0] = (int)oh, nd->a.kernel[1] = (int)ow;
    nd->a.pads[0] = (int)sr;
    nd->a.mode = ct;
    return CX_OK;
}

static void run_roialign(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *rois = in[1], *bi = in[2];
    if (x->ndim != 4) cx_fatal("RoiAlign: X must be [N, C, H, W], got %d dimensions", x->ndim);
    if (rois->ndim != 2 || rois->shape[1] != 4) cx_fatal("RoiAlign: rois must be [num_rois, 4]");
    if (bi->dtype == CX_F32 || bi->ndim != 1 || bi->shape[0] != rois->shape[0])
        cx_fatal("RoiAlign: batch_indices must be an integer tensor of num_rois (%d) values", rois->shape[0]);
    const int R = rois->shape[0];
    cx_tensor *r5 = cx_empty(CX_F32, CX_SHAPE(R, 5));
    for (int i = 0; i < R; i++) {
        const int64_t b = get_i(bi, i);
        if (b < 0 || b >= x->shape[0])
            cx_fatal("RoiAlign: batch index %lld of roi %d is outside [0, %d)", (long long)b, i, x->shape[0]);
        CX_F(r5)[i * 5] = (float)b;
        for (int k = 0; k < 4; k++) CX_F(r5)[i * 5 + 1 + k] = CX_F(rois)[i * 4 + k];
    }
    out[0] = cx_roi_align(x, r5, nd->a.alpha, nd->a.kernel[0], nd->a.kernel[1], nd->a.pads[0], nd->a.mode == 1);
}

/* box i of batch b as y1, x1, y2, x2 with y1 <= y2, x1 <= x2 */
static void nms_box(const cx_tensor *boxes, int center, int64_t at, double *r) {
    const float *p = CX_F(boxes) + at * 4;
    if (center) {
        r[0] = p[1] - p[3] / 2.0, r[2] = p[1] + p[3] / 2.0, r[1] = p[0] - p[2] / 2.0, r[3] = p[0] + p[2] / 2.0;
    } else {
        r[0] = fmin(p[0], p[2]), r[2] = fmax(p[0], p[2]), r[1] = fmin(p[1], p[3]), r[3] = fmax(p[1], p[3]);
    }
}

static double nms_iou(const double *a, const double *b) {
    double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (ih <= 0 || iw <= 0) return 0;
    double inter = ih * iw, ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return ua > 0 ? inter / ua : 0;
}

static _Thread_local const float *nms_scores;
static int nms_cmp(const void *pa, const void *pb) {
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    float u = nms_scores[a], v = nms_scores[b];
    return u > v ? -1 : u < v ? 1 : (a > b) - (a < b);
}

static void run_nms(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    const char *op = "NonMaxSuppression";
    cx_tensor *boxes = in[0], *scores = in[1];
    if (boxes->ndim != 3 || boxes->shape[2] != 4) cx_fatal("%s: boxes must be [batch, boxes, 4]", op);
    int B = boxes->shape[0], N = boxes->shape[1];
    if (scores->ndim != 3 || scores->shape[0] != B || scores->shape[2] != N) cx_fatal("%s: scores must be [%d, classes, %d]", op, B, N);
    int C = scores->shape[1];
    int64_t maxo = in[2] ? d2i(scalar_of(op, "max_output_boxes_per_class", in[2])) : 0;
    double iou_t = in[3] ? scalar_of(op, "iou_threshold", in[3]) : 0, sc_t = in[4] ? scalar_of(op, "score_threshold", in[4]) : -INFINITY;
    if (maxo < 0) maxo = 0;
    if (maxo > N) maxo = N;
    if ((int64_t)B * C * maxo > ((int64_t)1 << 24)) cx_fatal("%s: too many selections", op);
    int64_t *sel = idx_buf((int64_t)B * C * maxo * 3 + 1), ns = 0, *ord = idx_buf(N), *kept = idx_buf(maxo + 1);
    double *bx = cx_arena_alloc(sizeof(double) * 4 * (size_t)(N ? N : 1));
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < N; i++) nms_box(boxes, nd->a.mode, (int64_t)b * N + i, bx + 4 * i);
        for (int c = 0; c < C; c++) {
            nms_scores = CX_F(scores) + ((int64_t)b * C + c) * N;
            int64_t nc = 0, nk = 0;
            for (int i = 0; i < N; i++)
                if (nms_scores[i] > sc_t) ord[nc++] = i;
            qsort(ord, (size_t)nc, sizeof *ord, nms_cmp);
            for (int64_t j = 0; j < nc && nk < maxo; j++) {
                bool keep = true;
                for (int64_t k = 0; k < nk && keep; k++) keep = nms_iou(bx + 4 * ord[j], bx + 4 * kept[k]) <= iou_t;
                if (!keep) continue;
                kept[nk++] = ord[j];
                sel[3 * ns] = b, sel[3 * ns + 1] = c, sel[3 * ns + 2] = ord[j];
                ns++;
            }
        }
    }
    cx_tensor *y = cx_empty(CX_I64, CX_SHAPE((int)ns, 3));
    if (ns) memcpy(y->data, sel, (size_t)(3 * ns) * sizeof *sel);
    out[0] = y;
}

enum { GS_BILINEAR, GS_NEAREST, GS_BICUBIC };
enum { GP_ZEROS, GP_BORDER, GP_REFLECTION };

static cx_status check_grid_sample(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    static const char *modes[] = {"bilinear", "nearest", "bicubic"}, *pads[] = {"zeros", "border", "reflection"};
    int64_t v;
    TRY(attr_choice(nd, "mode", modes, 3, GS_BILINEAR, &nd->a.mode));
    TRY(attr_choice(nd, "padding_mode", pads, 3, GP_ZEROS, &nd->a.group));
    TRY(cx_onnx_attr_int(nd, "align_corners", 0, 0, 1, &v));
    nd->a.trans_a = (int)v;
    return CX_OK;
}

static double gs_reflect(double x, double lo, double hi) {
    double range = hi - lo;
    if (range <= 0) return lo;
    if (x < lo) {
        double dx = lo - x;
        int64_t n = (int64_t)(dx / range);
        double r = dx - (double)n * range;
        return n % 2 == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        int64_t n = (int64_t)(dx / range);
        double r = dx - (double)n * range;
        return n % 2 == 0 ? hi - r : lo + r;
    }
    return x;
}

typedef struct {
    const float *img;
    int H, W, pad, align;
} gs_plane;

/* the pixel at integer position (x, y) under the padding mode */
static double gs_pixel(const gs_plane *p, double x, double y) {
    if (p->pad == GP_ZEROS) {
        if (x < 0 || x > p->W - 1 || y < 0 || y > p->H - 1) return 0;
    } else if (p->pad == GP_REFLECTION) {
        x = gs_reflect(x, p->align ? 0 : -0.5, p->align ? p->W - 1 : p->W - 0.5);
        y = gs_reflect(y, p->align ? 0 : -0.5, p->align ? p->H - 1 : p->H - 0.5);
    }
    x = x < 0 ? 0 : x > p->W - 1 ? p->W - 1 : x;
    y = y < 0 ? 0 : y > p->H - 1 ? p->H - 1 : y;
    return p->img[(int64_t)y * p->W + (int64_t)x];
}

static void gs_cubic(double t, double *c) {
    const double A = -0.75;
    double d[4] = {t + 1, t, 1 - t, 2 - t};
    for (int k = 0; k < 4; k++) {
        double x = d[k];
        c[k] = x <= 1 ? ((A + 2) * x - (A + 3)) * x * x + 1 : ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    }
}

static void run_grid_sample(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *g = in[1];
    if (x->ndim != 4 || g->ndim != 4 || g->shape[0] != x->shape[0] || g->shape[3] != 2)
        cx_fatal("GridSample: X must be [N, C, H, W] and grid [N, H_out, W_out, 2]");
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], Ho = g->shape[1], Wo = g->shape[2];
    cx_onnx_check_size("GridSample", (int64_t)N * C * Ho * Wo, x->numel + g->numel);
    cx_tensor *y = cx_empty(CX_F32, CX_SHAPE(N, C, Ho, Wo));
    gs_plane p = {NULL, H, W, nd->a.group, nd->a.trans_a};
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            p.img = CX_F(x) + ((int64_t)n * C + c) * H * W;
            for (int i = 0; i < Ho; i++)
                for (int j = 0; j < Wo; j++) {
                    const float *gp = CX_F(g) + (((int64_t)n * Ho + i) * Wo + j) * 2;
                    double gx = gp[0], gy = gp[1], sx, sy, v = 0;
                    sx = p.align ? (gx + 1) / 2 * (W - 1) : ((gx + 1) * W - 1) / 2;
                    sy = p.align ? (gy + 1) / 2 * (H - 1) : ((gy + 1) * H - 1) / 2;
                    if (isnan(sx) || isnan(sy) || fabs(sx) > 1e9 || fabs(sy) > 1e9) {
                        v = NAN;
                    } else {
                        if (p.pad == GP_BORDER) {
                            sx = sx < 0 ? 0 : sx > W - 1 ? W - 1 : sx;
                            sy = sy < 0 ? 0 : sy > H - 1 ? H - 1 : sy;
                        } else if (p.pad == GP_REFLECTION) {
                            sx = gs_reflect(sx, p.align ? 0 : -0.5, p.align ? W - 1 : W - 0.5);
                            sy = gs_reflect(sy, p.align ? 0 : -0.5, p.align ? H - 1 : H - 0.5);
                        }
                        if (nd->a.mode == GS_NEAREST) {
                            v = gs_pixel(&p, nearbyint(sx), nearbyint(sy));
                        } else if (nd->a.mode == GS_BILINEAR) {
                            double x0 = floor(sx), y0 = floor(sy), dx = sx - x0, dy = sy - y0;
                            v = (1 - dy) * ((1 - dx) * gs_pixel(&p, x0, y0) + dx * gs_pixel(&p, x0 + 1, y0)) +
                                dy * ((1 - dx) * gs_pixel(&p, x0, y0 + 1) + dx * gs_pixel(&p, x0 + 1, y0 + 1));
                        } else {
                            double x0 = floor(sx) - 1, y0 = floor(sy) - 1, cx[4], cy[4];
                            gs_cubic(sx - floor(sx), cx);
                            gs_cubic(sy - floor(sy), cy);
                            for (int a = 0; a < 4; a++)
                                for (int b = 0; b < 4; b++) v += cy[a] * cx[b] * gs_pixel(&p, x0 + b, y0 + a);
                        }
                    }
                    CX_F(y)[(((int64_t)n * C + c) * Ho + i) * Wo + j] = (float)v;
                }
        }
    out[0] = y;
}

/* ------------------------------------------------------------ DFT, STFT */

/* the DFT of n complex values (re, im pairs at stride `st`) into out[2 m], m <= n bins; no gradient */
static void dft1(const double *x, int64_t n, int64_t m, bool inverse, double *out) {
    const double tau = 2 * 3.14159265358979323846;
    for (int64_t k = 0; k < m; k++) {
        double re = 0, im = 0;
        for (int64_t j = 0; j < n; j++) {
            double a = (inverse ? tau : -tau) * (double)((j * k) % n) / (double)n, c = cos(a), s = sin(a);
            re += x[2 * j] * c - x[2 * j + 1] * s;
            im += x[2 * j] * s + x[2 * j + 1] * c;
        }
        out[2 * k] = inverse ? re / (double)n : re, out[2 * k + 1] = inverse ? im / (double)n : im;
    }
}

static cx_status check_dft(cx_onnx_model *m, onnx_node *nd, const char **why) {
    (void)m, (void)why;
    int64_t v;
    TRY(cx_onnx_attr_int(nd, "axis", 1, -CX_MAX_DIMS, CX_MAX_DIMS - 1, &nd->a.axis));
    TRY(cx_onnx_attr_int(nd, "inverse", 0, 0, 1, &v));
    nd->a.mode = (int)v;
    TRY(cx_onnx_attr_int(nd, "onesided", !strcmp(nd->p->op_type, "STFT"), 0, 1, &v));
    nd->a.keepdims = (int)v;
    return CX_OK;
}

static void run_dft(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0];
    if (x->ndim < 3 || (x->shape[x->ndim - 1] != 1 && x->shape[x->ndim - 1] != 2))
        cx_fatal("DFT: input must be [batch, signal..., 1 or 2]");
    int ax = norm_axis("DFT", nd->a.axis, x->ndim - 1);
    if (ax == 0) cx_fatal("DFT: axis 0 is the batch");
    bool cplx = x->shape[x->ndim - 1] == 2;
    int64_t L = x->shape[ax], n = L;
    if (in[1]) {
        n = d2i(scalar_of("DFT", "dft_length", in[1]));
        if (n < 1 || n > (1 << 20)) cx_fatal("DFT: dft_length %lld", (long long)n);
    }
    if (nd->a.keepdims && cplx) cx_fatal("DFT: onesided on a complex input");
    int64_t mbins = nd->a.keepdims ? n / 2 + 1 : n, outer = 1, inner = 1;
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    for (int i = ax + 1; i < x->ndim - 1; i++) inner *= x->shape[i];
    if (outer * inner * n * mbins > ((int64_t)1 << 30)) cx_fatal("DFT: too large for the direct transform");
    int sh[CX_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[ax] = (int)mbins, sh[x->ndim - 1] = 2;
    cx_onnx_check_size("DFT", outer * inner * mbins * 2, x->numel);
    cx_tensor *y = cx_empty(CX_F32, sh, x->ndim);
    double *buf = cx_arena_alloc(sizeof(double) * (size_t)(2 * n)), *res = cx_arena_alloc(sizeof(double) * (size_t)(2 * mbins));
    int c = cplx ? 2 : 1;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < n; j++) {
                bool have = j < L;
                int64_t at = ((o * L + j) * inner + i) * c;
                buf[2 * j] = have ? CX_F(x)[at] : 0;
                buf[2 * j + 1] = have && cplx ? CX_F(x)[at + 1] : 0;
            }
            dft1(buf, n, mbins, nd->a.mode, res);
            for (int64_t k = 0; k < mbins; k++) {
                int64_t at = ((o * mbins + k) * inner + i) * 2;
                CX_F(y)[at] = (float)res[2 * k], CX_F(y)[at + 1] = (float)res[2 * k + 1];
            }
        }
    out[0] = y;
}

/* STFT(signal [batch, length, 1 or 2], frame_step, window, frame_length): [batch, frames, bins, 2] */
static void run_stft(cx_onnx_model *m, onnx_node *nd, cx_tensor **in, cx_tensor **out) {
    (void)m;
    cx_tensor *x = in[0], *win = in[2];
    if (x->ndim != 3 || (x->shape[2] != 1 && x->shape[2] != 2)) cx_fatal("STFT: signal must be [batch, length, 1 or 2]");
    bool cplx = x->shape[2] == 2;
    int64_t B = x->shape[0], L = x->shape[1], step = d2i(scalar_of("STFT", "frame_step", in[1])), fl;
    if (win && win->ndim != 1) cx_fatal("STFT: window must be 1-D");
    if (in[3]) fl = d2i(scalar_of("STFT", "frame_length", in[3]));
    else if (win) fl = win->shape[0];
    else cx_fatal("STFT: neither a window nor frame_length");
    if (win && win->shape[0] != fl) cx_fatal("STFT: a window of %d for frames of %lld", win->shape[0], (long long)fl);
    if (step < 1 || fl < 1 || fl > L || fl > (1 << 20)) cx_fatal("STFT: frame_step %lld, frame_length %lld for a signal of %lld", (long long)step, (long long)fl, (long long)L);
    if (nd->a.keepdims && cplx) cx_fatal("STFT: onesided on a complex signal");
    int64_t frames = 1 + (L - fl) / step, bins = nd->a.keepdims ? fl / 2 + 1 : fl;
    if (B * frames * fl * bins > ((int64_t)1 << 30)) cx_fatal("STFT: too large for the direct transform");
    cx_onnx_check_size("STFT", B * frames * bins * 2, x->numel);
    cx_tensor *y = cx_empty(CX_F32, CX_SHAPE((int)B, (int)frames, (int)bins, 2));
    double *buf = cx_arena_alloc(sizeof(double) * (size_t)(2 * fl)), *res = cx_arena_alloc(sizeof(double) * (size_t)(2 * bins));
    int c = cplx ? 2 : 1;
    for (int64_t b = 0; b < B; b++)
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t j = 0; j < fl; j++) {
                double w = win ? get_d(win, j) : 1.0;
                int64_t at = (b * L + f * step + j) * c;
                buf[2 * j] = CX_F(x)[at] * w;
                buf[2 * j + 1] = cplx ? CX_F(x)[at + 1] * w : 0;
            }
            dft1(buf, fl, bins, false, res);
            for (int64_t k = 0; k < bins; k++) {
                int64_t at = ((b * frames + f) * bins + k) * 2;
                CX_F(y)[at] = (float)res[2 * k], CX_F(y)[at + 1] = (float)res[2 * k + 1];
            }
        }
    out[0] = y;
}

/* ------------------------------------------------------------ the table */

#define ALL (~0u)
const onnx_op cx_onnx_ops_more[] = {
    /* name, inputs min..max, outputs, inputs of type T, out type, check, run, types T may have */
    {"ReduceSum", 1, 2, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceMean", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceMax", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceMin", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceProd", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceL1", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceL2", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceLogSum", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceLogSumExp", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ReduceSumSquare", 1, 1, 1, 1, OUT_SAME, check_reduce, run_reduce, T_FLOAT, 0},
    {"ArgMax", 1, 1, 1, 1, OUT_I64, check_arg, run_arg, T_NUM, 0},
    {"ArgMin", 1, 1, 1, 1, OUT_I64, check_arg, run_arg, T_NUM, 0},
    {"Shape", 1, 1, 1, 0, OUT_I64, check_shape, run_shape, T_ALL, 0},
    {"Size", 1, 1, 1, 0, OUT_I64, check_none_more, run_size, T_ALL, 0},
    {"Cast", 1, 1, 1, 1, OUT_ATTR, check_cast, run_cast, T_ALL, 0},
    {"CastLike", 2, 2, 1, 1, OUT_ATTR, check_cast, run_cast, T_ALL, 0},
    {"Gather", 2, 2, 1, 1, OUT_SAME, check_axis0, run_gather, T_ALL, 0},
    {"GatherElements", 2, 2, 1, 1, OUT_SAME, check_axis0, run_gather_elements, T_ALL, 0},
    {"Slice", 1, 5, 1, 1, OUT_SAME, check_slice, run_slice, T_ALL, 0},
    {"Expand", 2, 2, 1, 1, OUT_SAME, check_none_more, run_expand, T_ALL, 0},
    {"Tile", 2, 2, 1, 1, OUT_SAME, check_none_more, run_tile, T_ALL, 0},
    {"Split", 1, 2, 1 << 16, 1, OUT_SAME, check_split, run_split, T_ALL, 0},
    {"ConstantOfShape", 1, 1, 1, 0, OUT_ATTR, check_const_of_shape, run_const_of_shape, T_ALL, 0},
    {"Range", 3, 3, 1, 7, OUT_SAME, check_none_more, run_range, T_NUM, 0},
    {"Where", 3, 3, 1, 6, OUT_SAME1, check_none_more, run_where, T_ALL, 0},
    {"Equal", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_ALL, 0},
    {"Less", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_NUM, 0},
    {"Greater", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_NUM, 0},
    {"LessOrEqual", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_NUM, 0},
    {"GreaterOrEqual", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_NUM, 0},
    {"And", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_BOOL, 0},
    {"Or", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_BOOL, 0},
    {"Xor", 2, 2, 1, 3, OUT_BOOL, check_none_more, run_compare, T_BOOL, 0},
    {"Not", 1, 1, 1, 1, OUT_BOOL, check_none_more, run_not, T_BOOL, 0},
    {"Mod", 2, 2, 1, 3, OUT_SAME, check_mod, run_mod, T_NUM, 0},
    {"IsInf", 1, 1, 1, 1, OUT_BOOL, check_isinf, run_isinf, T_FLOAT, 0},
    {"IsNaN", 1, 1, 1, 1, OUT_BOOL, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Sin", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Cos", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Tan", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Asin", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Acos", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Atan", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Sinh", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Cosh", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Asinh", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Acosh", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Atanh", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Floor", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Ceil", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Round", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"Sign", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_NUM, 0},
    {"Erf", 1, 1, 1, 1, OUT_SAME, check_none_more, run_unary_math, T_FLOAT, 0},
    {"HardSigmoid", 1, 1, 1, 1, OUT_SAME, check_alpha_beta, run_hard_sigmoid, T_FLOAT, 0},
    {"HardSwish", 1, 1, 1, 1, OUT_SAME, check_none_more, run_hard_swish, T_FLOAT, 0},
    {"Selu", 1, 1, 1, 1, OUT_SAME, check_alpha_beta, run_selu, T_FLOAT, 0},
    {"Celu", 1, 1, 1, 1, OUT_SAME, check_alpha_beta, run_celu, T_FLOAT, 0},
    {"ThresholdedRelu", 1, 1, 1, 1, OUT_SAME, check_alpha_beta, run_thresholded_relu, T_FLOAT, 0},
    {"Shrink", 1, 1, 1, 1, OUT_SAME, check_alpha_beta, run_shrink, T_FLOAT, 0},
    {"PRelu", 2, 2, 1, 3, OUT_SAME, check_none_more, run_prelu, T_FLOAT, 0},
    {"LayerNormalization", 2, 3, 3, 7, OUT_SAME, check_layer_norm, run_layer_norm, T_FLOAT, 0},
    {"InstanceNormalization", 3, 3, 1, 7, OUT_SAME, check_eps, run_instance_norm, T_FLOAT, 0},
    {"GlobalMaxPool", 1, 1, 1, 1, OUT_SAME, check_none_more, run_global_max_pool, T_FLOAT, 0},
    {"Trilu", 1, 2, 1, 1, OUT_SAME, check_trilu, run_trilu, T_ALL, 0},
    {"CumSum", 2, 2, 1, 1, OUT_SAME, check_cumsum, run_cumsum, T_NUM, 0},
    {"Hardmax", 1, 1, 1, 1, OUT_SAME, check_hardmax, run_hardmax, T_FLOAT, 0},
    {"DepthToSpace", 1, 1, 1, 1, OUT_SAME, check_blocks, run_depth_to_space, T_ALL, 0},
    {"SpaceToDepth", 1, 1, 1, 1, OUT_SAME, check_blocks, run_space_to_depth, T_ALL, 0},
    {"EyeLike", 1, 1, 1, 1, OUT_ATTR, check_eyelike, run_eyelike, T_ALL, 0},
    {"OneHot", 3, 3, 1, 0, OUT_ATTR, check_onehot, run_onehot, T_ALL, 0},
    {"TopK", 2, 2, 2, 1, OUT_SAME, check_topk, run_topk, T_FLOAT, 0},
    {"NonZero", 1, 1, 1, 1, OUT_I64, check_none_more, run_nonzero, T_ALL, 0},
    {"Compress", 2, 2, 1, 1, OUT_SAME, check_compress, run_compress, T_ALL, 0},
    {"NegativeLogLikelihoodLoss", 2, 3, 1, 5, OUT_SAME, check_loss, run_nll, T_FLOAT, 0},
    {"SoftmaxCrossEntropyLoss", 2, 3, 2, 5, OUT_SAME, check_loss, run_sce, T_FLOAT, 0},
    {"MeanVarianceNormalization", 1, 1, 1, 1, OUT_SAME, check_mvn, run_mvn, T_FLOAT, 0},
    {"LRN", 1, 1, 1, 1, OUT_SAME, check_lrn, run_lrn, T_FLOAT, 0},
    {"Resize", 1, 4, 1, 1, OUT_SAME, check_resize, run_resize, T_FLOAT, 0},
    {"Upsample", 1, 2, 1, 1, OUT_SAME, check_resize, run_resize, T_FLOAT, 0},
    {"Einsum", 1, 8, 1, ALL, OUT_SAME, check_einsum, run_einsum, T_FLOAT, 0},
    {"RNN", 3, 6, 2, 15, OUT_SAME, check_rnn, run_rnn, T_FLOAT, 0},
    {"GRU", 3, 6, 2, 15, OUT_SAME, check_rnn, run_rnn, T_FLOAT, 0},
    {"LSTM", 3, 8, 3, 15 | 32 | 64 | 128, OUT_SAME, check_rnn, run_rnn, T_FLOAT, 0},
    {"ScatterElements", 3, 3, 1, 5, OUT_SAME, check_scatter, run_scatter_elements, T_ALL, 0},
    {"Scatter", 3, 3, 1, 5, OUT_SAME, check_scatter, run_scatter_elements, T_ALL, 0},
    {"ScatterND", 3, 3, 1, 5, OUT_SAME, check_scatter, run_scatter_nd, T_ALL, 0},
    {"GatherND", 2, 2, 1, 1, OUT_SAME, check_gather_nd, run_gather_nd, T_ALL, 0},
    {"ReverseSequence", 2, 2, 1, 1, OUT_SAME, check_reverse_seq, run_reverse_seq, T_ALL, 0},
    {"BitShift", 2, 2, 1, 3, OUT_SAME, check_bitshift, run_bitshift,
     OT(UINT8) | OT(UINT16) | OT(UINT32) | OT(UINT64), 0},
    {"QuantizeLinear", 2, 3, 1, 3, OUT_ATTR, check_quant, run_quant, T_FLOAT, 0},
    {"DequantizeLinear", 2, 3, 1, 5, OUT_ATTR, check_quant, run_quant, OT(UINT8) | OT(INT8) | OT(INT32), 0},
    {"DynamicQuantizeLinear", 1, 1, 3, 1, OUT_ATTR, check_dynquant, run_dynquant, T_FLOAT, 0},
    {"Det", 1, 1, 1, 1, OUT_SAME, check_none_more, run_det, T_FLOAT, 0},
    {"HannWindow", 1, 1, 1, 0, OUT_ATTR, check_window_fn, run_window_fn, T_ALL, 0},
    {"HammingWindow", 1, 1, 1, 0, OUT_ATTR, check_window_fn, run_window_fn, T_ALL, 0},
    {"BlackmanWindow", 1, 1, 1, 0, OUT_ATTR, check_window_fn, run_window_fn, T_ALL, 0},
    {"MelWeightMatrix", 5, 5, 1, 0, OUT_ATTR, check_mel, run_mel, T_ALL, 17},
    {"MaxUnpool", 2, 3, 1, 1, OUT_SAME, check_maxunpool, run_maxunpool, T_FLOAT, 0},
    {"Unique", 1, 1, 4, 1, OUT_SAME, check_unique, run_unique, T_ALL, 0},
    {"MatMulInteger", 2, 4, 1, 0, OUT_ATTR, check_matmul_integer, run_matmul_integer, T_ALL, 0},
    {"QLinearMatMul", 8, 8, 1, 0, OUT_ATTR, check_qlinear_matmul, run_qlinear_matmul, T_ALL, 0},
    {"NonMaxSuppression", 2, 5, 1, 3, OUT_I64, check_nms, run_nms, T_FLOAT, 0},
    {"RoiAlign", 3, 3, 1, 3, OUT_FLOAT, check_roialign, run_roialign, T_FLOAT, 10},
    {"GridSample", 2, 2, 1, 3, OUT_SAME, check_grid_sample, run_grid_sample, T_FLOAT, 0},
    {"DFT", 1, 2, 1, 1, OUT_SAME, check_dft, run_dft, T_FLOAT, 17},
    {"STFT", 2, 4, 1, 5, OUT_SAME, check_dft, run_stft, T_FLOAT, 17},
};
const int cx_onnx_n_ops_more = (int)(sizeof cx_onnx_ops_more / sizeof *cx_onnx_ops_more);
