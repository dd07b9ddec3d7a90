/* Broadcasting elementwise binary ops: add, sub, mul, div, maximum, pow_t;
 * scalar ops. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

/* Broadcast plan: output shape plus per-input strides (0 on broadcast dims). */
typedef struct {
    int ndim;
    int shape[CX_MAX_DIMS];
    int64_t sa[CX_MAX_DIMS], sb[CX_MAX_DIMS];
} bplan;

static void make_plan(const char *op, const cx_tensor *a, const cx_tensor *b, bplan *p) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    p->ndim = nd;
    int64_t sa = 1, sb = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char s1[96], s2[96];
            cx_fatal("%s: shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)", op,
                     cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2), i, da, db);
        }
        p->shape[i] = da > db ? da : db;
        if (da == 0 || db == 0) p->shape[i] = 0;
        p->sa[i] = da == 1 ? 0 : sa;
        p->sb[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
}

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_POW } bkind;

static inline float bapply(bkind k, float x, float y) {
    switch (k) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_MAX: return x > y ? x : y;
    case B_POW: return powf(x, y);
    }
    return 0;
}

/* Iterate the broadcast: calls body(out_index, ia, ib) via an odometer over the
 * leading dims with a tight loop on the last dim. */
#define BCAST_LOOP(p, ...)                                                           \
    do {                                                                             \
        int nd_ = (p)->ndim;                                                         \
        int last_ = nd_ ? (p)->shape[nd_ - 1] : 1;                                   \
        int64_t la_ = nd_ ? (p)->sa[nd_ - 1] : 0, lb_ = nd_ ? (p)->sb[nd_ - 1] : 0;  \
        int64_t total_ = 1;                                                          \
        for (int d_ = 0; d_ < nd_; d_++) total_ *= (p)->shape[d_];                   \
        int idx_[CX_MAX_DIMS] = {0};                                                 \
        int64_t oa_ = 0, ob_ = 0;                                                    \
        for (int64_t o0_ = 0; o0_ < total_ && last_ > 0; o0_ += last_) {             \
            for (int j_ = 0; j_ < last_; j_++) {                                     \
                int64_t oi = o0_ + j_, ia = oa_ + j_ * la_, ib = ob_ + j_ * lb_;     \
                __VA_ARGS__;                                                         \
            }                                                                        \
            for (int d_ = nd_ - 2; d_ >= 0; d_--) {                                  \
                idx_[d_]++;                                                          \
                oa_ += (p)->sa[d_];                                                  \
                ob_ += (p)->sb[d_];                                                  \
                if (idx_[d_] < (p)->shape[d_]) break;                                \
                oa_ -= (p)->sa[d_] * (p)->shape[d_];                                 \
                ob_ -= (p)->sb[d_] * (p)->shape[d_];                                 \
                idx_[d_] = 0;                                                        \
            }                                                                        \
        }                                                                            \
    } while (0)

static void binary_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    bkind k = (bkind)nd->op->code;
    cx_tensor *a = nd->in[0], *b = nd->in[1];
    const float *x = CX_F(a), *y = CX_F(b), *g = out->grad;
    bool same = cx_same_shape(a, b) && cx_same_shape(a, out);
    if (same && (k == B_ADD || k == B_SUB || k == B_MUL)) {
        /* every element written: a new gradient buffer is stored, not zeroed
         * and accumulated (claimed one at a time: a and b may be the same) */
        const int64_t n = out->numel;
        bool fa, fb;
        float *ga = cx_in_grad_w(nd, 0, &fa);
        if (ga) {
            const float *m = k == B_MUL ? y : NULL;
            if (fa) for (int64_t i = 0; i < n; i++) ga[i] = m ? g[i] * m[i] : g[i];
            else for (int64_t i = 0; i < n; i++) ga[i] += m ? g[i] * m[i] : g[i];
        }
        float *gb = cx_in_grad_w(nd, 1, &fb);
        if (gb) {
            const float *m = k == B_MUL ? x : NULL;
            const float sg = k == B_SUB ? -1.0f : 1.0f;
            if (fb) for (int64_t i = 0; i < n; i++) gb[i] = sg * (m ? g[i] * m[i] : g[i]);
            else for (int64_t i = 0; i < n; i++) gb[i] += sg * (m ? g[i] * m[i] : g[i]);
        }
        return;
    }
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    bplan p;
    make_plan("backward", a, b, &p);
    BCAST_LOOP(&p, {
        float gi = g[oi], xv = x[ia], yv = y[ib];
        switch (k) {
        case B_ADD:
            if (ga) ga[ia] += gi;
            if (gb) gb[ib] += gi;
            break;
        case B_SUB:
            if (ga) ga[ia] += gi;
            if (gb) gb[ib] -= gi;
            break;
        case B_MUL:
            if (ga) ga[ia] += gi * yv;
            if (gb) gb[ib] += gi * xv;
            break;
        case B_DIV:
            if (ga) ga[ia] += gi / yv;
            if (gb) gb[ib] -= gi * xv / (yv * yv);
            break;
        case B_MAX:
            /* ties split the gradient evenly, as PyTorch does */
            if (xv > yv) { if (ga) ga[ia] += gi; }
            else if (yv > xv) { if (gb) gb[ib] += gi; }
            else { if (ga) ga[ia] += 0.5f * gi; if (gb) gb[ib] += 0.5f * gi; }
            break;
        case B_POW:
            /* PyTorch's pow_backward_self / pow_backward_exponent: 0 where
             * the exponent is 0 / where the base is 0 and the exponent >= 0 */
            if (ga && yv != 0.0f) ga[ia] += gi * (yv * powf(xv, yv - 1.0f));
            if (gb && !(xv == 0.0f && yv >= 0.0f)) gb[ib] += gi * (CX_F(out)[oi] * logf(xv));
            break;
        }
    });
}

CX_OP_DEF(add, .backward = binary_backward, .code = B_ADD);
CX_OP_DEF(sub, .backward = binary_backward, .code = B_SUB);
CX_OP_DEF(mul, .backward = binary_backward, .code = B_MUL);
CX_OP_DEF(div, .backward = binary_backward, .code = B_DIV);
CX_OP_DEF(maximum, .backward = binary_backward, .code = B_MAX);
CX_OP_DEF(pow_t, .backward = binary_backward, .code = B_POW);

static cx_tensor *binary(const cx_op_desc *op, cx_tensor *a, cx_tensor *b) {
    const bkind k = (bkind)op->code;
    const char *name = op->name;
    cx_need_f32(name, a);
    cx_need_f32(name, b);
    cx_tensor *out;
    const float *x = CX_F(a), *y = CX_F(b);
    if (cx_same_shape(a, b)) {
        out = cx_new_like_shape(a->shape, a->ndim);
        float *o = CX_F(out);
        int64_t n = out->numel;
        switch (k) {
#define LOOP(EXPR) do { CX_PFOR_SIMD(n > CX_PAR_MIN, \
            for (int64_t i = 0; i < n; i++) o[i] = EXPR;); } while (0); break;
        case B_ADD: LOOP(x[i] + y[i])
        case B_SUB: LOOP(x[i] - y[i])
        case B_MUL: LOOP(x[i] * y[i])
        case B_DIV: LOOP(x[i] / y[i])
        case B_MAX: LOOP(x[i] > y[i] ? x[i] : y[i])
        case B_POW: LOOP(powf(x[i], y[i]))
#undef LOOP
        }
    } else {
        bplan p;
        make_plan(name, a, b, &p);
        out = cx_new_like_shape(p.shape, p.ndim);
        float *o = CX_F(out);
        BCAST_LOOP(&p, o[oi] = bapply(k, x[ia], y[ib]));
    }
    cx_tensor *in[2] = {a, b};
    cx_record(op, out, in, 2);
    return out;
}

cx_tensor *cx_add(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_add, a, b); }
cx_tensor *cx_sub(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_sub, a, b); }
cx_tensor *cx_mul(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_mul, a, b); }
cx_tensor *cx_div(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_div, a, b); }
cx_tensor *cx_maximum(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_maximum, a, b); }
cx_tensor *cx_pow_t(cx_tensor *a, cx_tensor *b) { return binary(&cx_opd_pow_t, a, b); }

/* ---- scalar ops */
static void scalar_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const float *g = out->grad;
    float s = nd->op->code == 1 ? nd->f[0] : 1.0f; /* mul_scalar: s, add_scalar: 1 */
    for (int64_t i = 0; i < out->numel; i++) ga[i] += s * g[i];
}

CX_OP_DEF(add_scalar, .backward = scalar_backward, .code = 0);
CX_OP_DEF(mul_scalar, .backward = scalar_backward, .code = 1);

static cx_tensor *scalar_op(const cx_op_desc *op, cx_tensor *a, float s) {
    cx_need_f32(op->name, a);
    cx_tensor *out = cx_new_like_shape(a->shape, a->ndim);
    const float *x = CX_F(a);
    float *o = CX_F(out);
    int64_t n = a->numel;
    if (op->code == 1) {
        for (int64_t i = 0; i < n; i++) o[i] = x[i] * s;
    } else {
        for (int64_t i = 0; i < n; i++) o[i] = x[i] + s;
    }
    cx_node *nd = cx_record(op, out, &a, 1);
    if (nd) nd->f[0] = s;
    return out;
}

cx_tensor *cx_add_scalar(cx_tensor *a, float s) { return scalar_op(&cx_opd_add_scalar, a, s); }
cx_tensor *cx_mul_scalar(cx_tensor *a, float s) { return scalar_op(&cx_opd_mul_scalar, a, s); }
