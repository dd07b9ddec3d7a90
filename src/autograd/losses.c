/* Losses with PyTorch's definitions and reductions (mean / sum / none). */
#include "graph.h"
#include "../cpu/vmath.h"
#include <math.h>
#include <stdio.h>

#define IGNORE_INDEX (-100)

static int64_t tgt_at(const cx_tensor *t, int64_t i) {
    return t->dtype == CX_I64 ? CX_I64P(t)[i] : CX_I32P(t)[i];
}

static void check_class_target(const char *op, const cx_tensor *x, const cx_tensor *t) {
    char s1[96], s2[96];
    if (!t || (t->dtype != CX_I32 && t->dtype != CX_I64))
        cx_fatal("%s: target must be an I32 or I64 tensor of class indices", op);
    if (x->ndim != 2 || t->ndim != 1 || t->shape[0] != x->shape[0])
        cx_fatal("%s: input %s and target %s do not match (expected [N, C] and [N])", op,
                 cx_shape_str(x, s1, sizeof s1), cx_shape_str(t, s2, sizeof s2));
    int C = x->shape[1];
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v = tgt_at(t, i);
        if (v != IGNORE_INDEX && (v < 0 || v >= C))
            cx_fatal("%s: target %lld at position %lld out of range [0, %d)", op, (long long)v, (long long)i, C);
    }
}

static cx_tensor *loss_out(cx_reduction r, const int *shape, int ndim) {
    if (r == CX_REDUCE_NONE) return cx_new_like_shape(shape, ndim);
    int one = 1;
    return cx_new_like_shape(&one, 1);
}

/* Upstream gradient for element i of an un-reduced loss with `count` terms. */
static inline float up_grad(const cx_tensor *out, cx_reduction r, int64_t i, float count) {
    if (r == CX_REDUCE_NONE) return out->grad[i];
    if (r == CX_REDUCE_SUM) return out->grad[0];
    return out->grad[0] / count;
}

/* ---- cross entropy / NLL over class indices.
 * saved: softmax probabilities (CE) ; i[0] = reduction; f[0] = count (non-ignored) */
static void ce_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    cx_tensor *x = nd->in[0];
    const cx_tensor *t = nd->aux;
    int N = x->shape[0], C = x->shape[1];
    cx_reduction r = (cx_reduction)nd->i[0];
    bool ce = nd->op->code;
    const float *p = nd->saved;
    for (int i = 0; i < N; i++) {
        int64_t y = tgt_at(t, i);
        if (y == IGNORE_INDEX) continue;
        float g = up_grad(out, r, i, nd->f[0]);
        float *gr = gx + (int64_t)i * C;
        if (ce) {
            const float *pr = p + (int64_t)i * C;
            for (int c = 0; c < C; c++) gr[c] += g * pr[c];
        }
        gr[y] -= g;
    }
}

CX_OP_DEF(cross_entropy, .backward = ce_backward, .code = 1);
CX_OP_DEF(nll_loss, .backward = ce_backward, .code = 0);

static cx_tensor *class_loss(const cx_op_desc *op, cx_tensor *x, const cx_tensor *target, cx_reduction r) {
    const char *name = op->name;
    cx_need_f32(name, x);
    check_class_target(name, x, target);
    int N = x->shape[0], C = x->shape[1];
    cx_tensor *out = loss_out(r, x->shape, 1);
    float *p = NULL;
    bool ce = op->code;
    if (ce) p = cx_arena_alloc((size_t)N * C * sizeof(float));
    double total = 0;
    int count = 0;
    const float *xd = CX_F(x);
    for (int i = 0; i < N; i++) {
        int64_t y = tgt_at(target, i);
        const float *row = xd + (int64_t)i * C;
        double li = 0;
        if (ce) {
            float m = cx_vmaxf(row, C);
            float *pr = p + (int64_t)i * C;
            for (int c = 0; c < C; c++) pr[c] = cx_vexpf(row[c] - m);
            double s = cx_vsum_f64(pr, C);
            float inv = (float)(1.0 / s);
            for (int c = 0; c < C; c++) pr[c] *= inv;
            if (y != IGNORE_INDEX) li = (double)m + log(s) - (double)row[y];
        } else if (y != IGNORE_INDEX) {
            li = -(double)row[y];
        }
        if (y != IGNORE_INDEX) count++;
        if (r == CX_REDUCE_NONE) CX_F(out)[i] = (float)li;
        total += li;
    }
    if (r == CX_REDUCE_SUM) CX_F(out)[0] = (float)total;
    if (r == CX_REDUCE_MEAN) CX_F(out)[0] = count ? (float)(total / count) : NAN;
    cx_tensor *in[1] = {x};
    cx_node *nd = cx_record(op, out, in, 1);
    if (nd) {
        nd->aux = target;
        nd->saved = p;
        nd->i[0] = (int)r;
        nd->f[0] = (float)count;
    }
    return out;
}

cx_tensor *cx_cross_entropy(cx_tensor *logits, const cx_tensor *target, cx_reduction r) {
    return class_loss(&cx_opd_cross_entropy, logits, target, r);
}
cx_tensor *cx_nll_loss(cx_tensor *logp, const cx_tensor *target, cx_reduction r) {
    return class_loss(&cx_opd_nll_loss, logp, target, r);
}

/* ---- multi-class margin loss (PyTorch MultiMarginLoss, p = 1 or 2, optional
 * class weights): l_i = sum_{c != y} w[y] max(0, margin - x_y + x_c)^p / C.
 * i[0] = reduction, i[1] = p; f[0] = margin; saved = the weight tensor (or NULL). */
static void mm_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    cx_tensor *x = nd->in[0];
    const cx_tensor *t = nd->aux, *w = nd->saved;
    int N = x->shape[0], C = x->shape[1];
    cx_reduction r = (cx_reduction)nd->i[0];
    const int p = nd->i[1];
    float margin = nd->f[0];
    const float *xd = CX_F(x);
    for (int i = 0; i < N; i++) {
        int64_t y = tgt_at(t, i);
        float g = up_grad(out, r, i, (float)N) / (float)C;
        if (w) g *= CX_F(w)[y];
        const float *row = xd + (int64_t)i * C;
        for (int c = 0; c < C; c++) {
            if (c == y) continue;
            const float z = margin - row[y] + row[c];
            if (z > 0) {
                const float h = p == 1 ? g : 2.0f * g * z;
                gx[(int64_t)i * C + c] += h;
                gx[(int64_t)i * C + y] -= h;
            }
        }
    }
}

CX_OP_DEF(multi_margin_loss, .backward = mm_backward);

cx_tensor *cx_multi_margin_loss_p(cx_tensor *x, const cx_tensor *target, int p, float margin,
                                  const cx_tensor *weight, cx_reduction r) {
    cx_need_f32("multi_margin_loss", x);
    check_class_target("multi_margin_loss", x, target);
    if (p != 1 && p != 2) cx_fatal("multi_margin_loss: p must be 1 or 2, got %d", p);
    int N = x->shape[0], C = x->shape[1];
    if (weight) {
        cx_need_f32("multi_margin_loss", weight);
        if (weight->ndim != 1 || weight->shape[0] != C) {
            char s1[96], s2[96];
            cx_fatal("multi_margin_loss: weight %s does not match input %s (expected [%d], one per class)",
                     cx_shape_str(weight, s1, sizeof s1), cx_shape_str(x, s2, sizeof s2), C);
        }
    }
    for (int i = 0; i < N; i++)
        if (tgt_at(target, i) == IGNORE_INDEX) cx_fatal("multi_margin_loss: target -100 is not allowed");
    cx_tensor *out = loss_out(r, x->shape, 1);
    double total = 0;
    for (int i = 0; i < N; i++) {
        int64_t y = tgt_at(target, i);
        const float *row = CX_F(x) + (int64_t)i * C;
        double li = 0;
        for (int c = 0; c < C; c++) {
            if (c == y) continue;
            double z = fmax(0.0, (double)margin - row[y] + row[c]);
            li += p == 1 ? z : z * z;
        }
        if (weight) li *= CX_F(weight)[y];
        li /= C;
        if (r == CX_REDUCE_NONE) CX_F(out)[i] = (float)li;
        total += li;
    }
    if (r != CX_REDUCE_NONE) CX_F(out)[0] = (float)(r == CX_REDUCE_MEAN ? total / N : total);
    cx_node *nd = cx_record_saved(&cx_opd_multi_margin_loss, out, &x, 1, weight, 0);
    if (nd) {
        nd->aux = target;
        nd->i[0] = (int)r;
        nd->i[1] = p;
        nd->f[0] = margin;
    }
    return out;
}

cx_tensor *cx_multi_margin_loss(cx_tensor *x, const cx_tensor *target, float margin, cx_reduction r) {
    return cx_multi_margin_loss_p(x, target, 1, margin, NULL, r);
}

/* ---- pointwise losses l(x, t): value and partial derivatives */
enum { PW_MSE, PW_BCE_LOGITS, PW_HINGE, PW_PERCEPTRON, PW_LOGISTIC, PW_SMOOTH_L1 };
static inline void pw(int op, float x, float t, float p, float *l, float *dx, float *dt) {
    switch (op) {
    case PW_MSE: {
        float d = x - t;
        *l = d * d; *dx = 2 * d; *dt = -2 * d;
        break;
    }
    case PW_BCE_LOGITS: {
        /* max(x,0) - x t + log(1 + exp(-|x|)) ; d/dx = sigmoid(x) - t ; d/dt = -x */
        float e = expf(-fabsf(x));
        *l = fmaxf(x, 0) - x * t + log1pf(e);
        float s = x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
        *dx = s - t; *dt = -x;
        break;
    }
    case PW_HINGE: {
        float m = p - t * x;
        *l = m > 0 ? m : 0; *dx = m > 0 ? -t : 0; *dt = m > 0 ? -x : 0;
        break;
    }
    case PW_PERCEPTRON: {
        float m = -t * x;
        *l = m > 0 ? m : 0; *dx = m > 0 ? -t : 0; *dt = m > 0 ? -x : 0;
        break;
    }
    case PW_LOGISTIC: {
        /* log(1 + exp(-z)), z = t x ; dl/dz = -sigmoid(-z) */
        float z = t * x;
        *l = z > 0 ? log1pf(expf(-z)) : -z + log1pf(expf(z));
        float s = z >= 0 ? expf(-z) / (1.0f + expf(-z)) : 1.0f / (1.0f + expf(z));
        *dx = -s * t; *dt = -s * x;
        break;
    }
    case PW_SMOOTH_L1: {
        float d = x - t, ad = fabsf(d);
        if (ad < p) { *l = 0.5f * d * d / p; *dx = d / p; }
        else { *l = ad - 0.5f * p; *dx = d > 0 ? 1.0f : (d < 0 ? -1.0f : 0.0f); }
        *dt = -*dx;
        break;
    }
    default: *l = *dx = *dt = 0;
    }
}

static void pw_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0), *gt = cx_in_grad(nd, 1);
    const float *x = CX_F(nd->in[0]), *t = CX_F(nd->in[1]);
    cx_reduction r = (cx_reduction)nd->i[0];
    int64_t n = nd->in[0]->numel;
    for (int64_t i = 0; i < n; i++) {
        float l, dx, dt, g = up_grad(out, r, i, (float)n);
        pw(nd->op->code, x[i], t[i], nd->f[0], &l, &dx, &dt);
        if (gx) gx[i] += g * dx;
        if (gt) gt[i] += g * dt;
    }
}

CX_OP_DEF(mse_loss, .backward = pw_backward, .code = PW_MSE);
CX_OP_DEF(bce_with_logits, .backward = pw_backward, .code = PW_BCE_LOGITS);
CX_OP_DEF(hinge_loss, .backward = pw_backward, .code = PW_HINGE);
CX_OP_DEF(perceptron_loss, .backward = pw_backward, .code = PW_PERCEPTRON);
CX_OP_DEF(logistic_loss, .backward = pw_backward, .code = PW_LOGISTIC);
CX_OP_DEF(smooth_l1_loss, .backward = pw_backward, .code = PW_SMOOTH_L1);

static cx_tensor *pointwise_loss(const cx_op_desc *op, cx_tensor *x, cx_tensor *t, float p, cx_reduction r) {
    const char *name = op->name;
    cx_need_f32(name, x);
    cx_need_f32(name, t);
    if (!cx_same_shape(x, t)) {
        char s1[96], s2[96];
        cx_fatal("%s: input %s and target %s must have the same shape", name,
                 cx_shape_str(x, s1, sizeof s1), cx_shape_str(t, s2, sizeof s2));
    }
    cx_tensor *out = loss_out(r, x->shape, x->ndim);
    double total = 0;
    const float *xd = CX_F(x), *td = CX_F(t);
    for (int64_t i = 0; i < x->numel; i++) {
        float l, dx, dt;
        pw(op->code, xd[i], td[i], p, &l, &dx, &dt);
        if (r == CX_REDUCE_NONE) CX_F(out)[i] = l;
        total += l;
    }
    if (r == CX_REDUCE_SUM) CX_F(out)[0] = (float)total;
    if (r == CX_REDUCE_MEAN) CX_F(out)[0] = (float)(total / (double)x->numel);
    cx_tensor *in[2] = {x, t};
    cx_node *nd = cx_record(op, out, in, 2);
    if (nd) {
        nd->i[0] = (int)r;
        nd->f[0] = p;
    }
    return out;
}

cx_tensor *cx_mse_loss(cx_tensor *pred, cx_tensor *target, cx_reduction r) {
    return pointwise_loss(&cx_opd_mse_loss, pred, target, 0, r);
}
cx_tensor *cx_bce_with_logits(cx_tensor *logits, cx_tensor *target, cx_reduction r) {
    return pointwise_loss(&cx_opd_bce_with_logits, logits, target, 0, r);
}
cx_tensor *cx_hinge_loss(cx_tensor *f, cx_tensor *t, float margin, cx_reduction r) {
    return pointwise_loss(&cx_opd_hinge_loss, f, t, margin, r);
}
cx_tensor *cx_perceptron_loss(cx_tensor *f, cx_tensor *t, cx_reduction r) {
    return pointwise_loss(&cx_opd_perceptron_loss, f, t, 0, r);
}
cx_tensor *cx_logistic_loss(cx_tensor *f, cx_tensor *t, cx_reduction r) {
    return pointwise_loss(&cx_opd_logistic_loss, f, t, 0, r);
}
cx_tensor *cx_smooth_l1_loss(cx_tensor *pred, cx_tensor *target, float beta, cx_reduction r) {
    if (beta < 0) cx_fatal("smooth_l1_loss: beta must be >= 0, got %g", (double)beta);
    return pointwise_loss(&cx_opd_smooth_l1_loss, pred, target, beta, r);
}
