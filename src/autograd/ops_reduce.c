/* Reductions (sum, mean, max over all or one axis), argmax, softmax, log_softmax. */
#include "graph.h"
#include "../cpu/vmath.h"
#include <math.h>

static cx_tensor *reduced_shape(const cx_tensor *a, int axis, bool keepdim, cx_dtype dt) {
    int shape[CX_MAX_DIMS], nd = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (i == axis) {
            if (keepdim) shape[nd++] = 1;
        } else {
            shape[nd++] = a->shape[i];
        }
    }
    return cx_empty(dt, shape, nd);
}

/* ---- sum / mean over everything */
static void sum_all_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    int64_t n = nd->in[0]->numel;
    float g = out->grad[0] * (nd->op->code ? 1.0f / (float)n : 1.0f);
    for (int64_t i = 0; i < n; i++) ga[i] += g;
}

CX_OP_DEF(sum, .backward = sum_all_backward, .code = 0);
CX_OP_DEF(mean, .backward = sum_all_backward, .code = 1);

static cx_tensor *sum_all(cx_tensor *a, bool mean) {
    cx_need_f32(mean ? "mean" : "sum", a);
    double s = 0;
    const float *x = CX_F(a);
    for (int64_t i = 0; i < a->numel; i++) s += x[i];
    if (mean) s /= (double)a->numel;
    int one = 1;
    cx_tensor *out = cx_new_like_shape(&one, 1);
    CX_F(out)[0] = (float)s;
    cx_record(mean ? &cx_opd_mean : &cx_opd_sum, out, &a, 1);
    return out;
}
cx_tensor *cx_sum(cx_tensor *a) { return sum_all(a, false); }
cx_tensor *cx_mean(cx_tensor *a) { return sum_all(a, true); }

/* ---- sum / mean over one axis */
static void sum_axis_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    bool fresh;
    float *ga = cx_in_grad_w(nd, 0, &fresh);
    if (!ga) return;
    cx_tensor *a = nd->in[0];
    int64_t outer, inner;
    int n;
    cx_split_axis(a, nd->i[0], &outer, &n, &inner);
    const float scale = nd->op->code ? 1.0f / (float)n : 1.0f;
    const int64_t rows = outer * n;
    /* rows of the input's gradient on all threads, in a static schedule's
     * blocks: the backward's next pass (the layer below) reads each block
     * on the thread that wrote it */
    CX_PFOR(a->numel > CX_PAR_MIN,
    for (int64_t r = 0; r < rows; r++) {
        float *gr = ga + r * inner;
        const float *g = out->grad + (r / n) * inner;
        if (fresh)
            for (int64_t j = 0; j < inner; j++) gr[j] = g[j] * scale;
        else
            for (int64_t j = 0; j < inner; j++) gr[j] += g[j] * scale;
    });
}

CX_OP_DEF(sum_axis, .backward = sum_axis_backward, .code = 0);
CX_OP_DEF(mean_axis, .backward = sum_axis_backward, .code = 1);

static cx_tensor *sum_axis(cx_tensor *a, int axis, bool keepdim, bool mean) {
    const char *name = mean ? "mean_axis" : "sum_axis";
    cx_need_f32(name, a);
    axis = cx_norm_axis(name, axis, a->ndim);
    cx_tensor *out = reduced_shape(a, axis, keepdim, CX_F32);
    int64_t outer, inner;
    int n;
    cx_split_axis(a, axis, &outer, &n, &inner);
    const float *x = CX_F(a);
    float *y = CX_F(out);
    memset(y, 0, (size_t)out->numel * 4);
    if (inner == 1) /* the last axis: one vectorised sum per row */
        for (int64_t o = 0; o < outer; o++) {
            const float *xr = x + o * n;
            float acc = 0.0f;
            CX_OMP(simd reduction(+ : acc))
            for (int k = 0; k < n; k++) acc += xr[k];
            y[o] = acc;
        }
    else
        for (int64_t o = 0; o < outer; o++)
            for (int k = 0; k < n; k++) {
                const float *xr = x + (o * n + k) * inner;
                float *yr = y + o * inner;
                for (int64_t j = 0; j < inner; j++) yr[j] += xr[j];
            }
    if (mean && n > 0)
        for (int64_t i = 0; i < out->numel; i++) y[i] /= (float)n;
    cx_node *nd = cx_record(mean ? &cx_opd_mean_axis : &cx_opd_sum_axis, out, &a, 1);
    if (nd) nd->i[0] = axis;
    return out;
}
cx_tensor *cx_sum_axis(cx_tensor *a, int axis, bool keepdim) { return sum_axis(a, axis, keepdim, false); }
cx_tensor *cx_mean_axis(cx_tensor *a, int axis, bool keepdim) { return sum_axis(a, axis, keepdim, true); }

/* ---- max over an axis (gradient to the first maximum) and argmax */
static void max_axis_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const int64_t *arg = nd->saved;
    for (int64_t i = 0; i < out->numel; i++) ga[arg[i]] += out->grad[i];
}

CX_OP_DEF(max_axis, .backward = max_axis_backward);
CX_OP_DEF(argmax, .backward = NULL);

static void max_scan(const cx_tensor *a, int axis, float *y, int64_t *arg, int32_t *argi) {
    int64_t outer, inner;
    int n;
    cx_split_axis(a, axis, &outer, &n, &inner);
    const float *x = CX_F(a);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t best = o * n * inner + j;
            int bk = 0;
            for (int k = 1; k < n; k++) {
                int64_t idx = (o * n + k) * inner + j;
                if (x[idx] > x[best] || (isnan(x[idx]) && !isnan(x[best]))) { best = idx; bk = k; }
            }
            int64_t oi = o * inner + j;
            if (y) y[oi] = x[best];
            if (arg) arg[oi] = best;
            if (argi) argi[oi] = bk;
        }
}

cx_tensor *cx_max_axis(cx_tensor *a, int axis, bool keepdim) {
    cx_need_f32("max_axis", a);
    axis = cx_norm_axis("max_axis", axis, a->ndim);
    if (a->shape[axis] == 0) cx_fatal("max_axis: reduction over an empty axis");
    cx_tensor *out = reduced_shape(a, axis, keepdim, CX_F32);
    int64_t *arg = cx_arena_alloc((size_t)out->numel * sizeof(int64_t));
    max_scan(a, axis, CX_F(out), arg, NULL);
    cx_record_saved(&cx_opd_max_axis, out, &a, 1, arg, 0);
    return out;
}

cx_tensor *cx_argmax(cx_tensor *a, int axis) {
    cx_need_f32("argmax", a);
    axis = cx_norm_axis("argmax", axis, a->ndim);
    if (a->shape[axis] == 0) cx_fatal("argmax: reduction over an empty axis");
    cx_tensor *out = reduced_shape(a, axis, false, CX_I32);
    max_scan(a, axis, NULL, NULL, CX_I32P(out));
    cx_record(&cx_opd_argmax, out, &a, 1);
    return out;
}

/* ---- softmax / log_softmax (numerically stable: subtract the max) */
static void softmax_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    int64_t outer, inner;
    int n;
    cx_split_axis(nd->in[0], nd->i[0], &outer, &n, &inner);
    const float *y = CX_F(out), *g = out->grad;
    bool logsm = nd->op->code;
    if (inner == 1 && n < 8) { /* a few classes: the same sums, in order */
        CX_PFOR(outer * n > CX_PAR_MIN,
        for (int64_t o = 0; o < outer; o++) {
            const float *gr = g + o * n, *yr = y + o * n;
            float *gar = ga + o * n;
            double d = 0;
            for (int k = 0; k < n; k++) d += logsm ? (double)gr[k] : (double)gr[k] * (double)yr[k];
            const float dot = (float)d;
            if (logsm)
                for (int k = 0; k < n; k++) gar[k] += gr[k] - cx_vexpf(yr[k]) * dot;
            else
                for (int k = 0; k < n; k++) gar[k] += yr[k] * (gr[k] - dot);
        });
        return;
    }
    if (inner == 1) {
        /* contiguous rows: vectorised sums and updates */
        CX_PFOR(outer * n > CX_PAR_MIN,
        for (int64_t o = 0; o < outer; o++) {
            const float *gr = g + o * n, *yr = y + o * n;
            float *gar = ga + o * n;
            if (logsm) {
                float dot = (float)cx_vsum_f64(gr, n);
                for (int k = 0; k < n; k++) gar[k] += gr[k] - cx_vexpf(yr[k]) * dot;
            } else {
                double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int k = 0;
                for (; k + 8 <= n; k += 8)
                    for (int l = 0; l < 8; l++) s[l] += (double)gr[k + l] * (double)yr[k + l];
                for (; k < n; k++) s[0] += (double)gr[k] * (double)yr[k];
                float dot = (float)(((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])));
                for (k = 0; k < n; k++) gar[k] += yr[k] * (gr[k] - dot);
            }
        });
        return;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t base = o * n * inner + j;
            double dot = 0;
            for (int k = 0; k < n; k++) {
                int64_t idx = base + k * inner;
                dot += logsm ? g[idx] : g[idx] * y[idx];
            }
            for (int k = 0; k < n; k++) {
                int64_t idx = base + k * inner;
                if (logsm) ga[idx] += g[idx] - cx_vexpf(y[idx]) * (float)dot;
                else ga[idx] += y[idx] * (g[idx] - (float)dot);
            }
        }
}

CX_OP_DEF(softmax, .backward = softmax_backward, .code = 0);
CX_OP_DEF(log_softmax, .backward = softmax_backward, .code = 1);

/* Rows r0 .. r0 + 63 (at most) of a softmax over n < 8 classes: the block
 * turned class-major, so that every pass runs across rows in vector lanes
 * (one row at a time, with a libm log per row, was 5% of PPO's training
 * step); float sums of at most 7 terms <= 1. */
enum { SM_BLOCK = 64 };
static void softmax_few(const float *restrict x, float *restrict y, int64_t r0, int64_t rows, int n, bool logsm) {
    const int nb = rows - r0 < SM_BLOCK ? (int)(rows - r0) : SM_BLOCK;
    float t[7][SM_BLOCK], e[SM_BLOCK], m[SM_BLOCK], sum[SM_BLOCK];
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < n; k++) t[k][b] = x[(r0 + b) * n + k];
    for (int k = 0; k < n; k++) /* the lanes past the last row: defined, unused */
        for (int b = nb; b < SM_BLOCK; b++) t[k][b] = 0.0f;
    for (int b = 0; b < SM_BLOCK; b++) m[b] = -INFINITY, sum[b] = 0.0f;
    for (int k = 0; k < n; k++)
        for (int b = 0; b < SM_BLOCK; b++) m[b] = t[k][b] > m[b] ? t[k][b] : m[b];
    for (int k = 0; k < n; k++) {
        for (int b = 0; b < SM_BLOCK; b++) {
            t[k][b] -= m[b];
            e[b] = cx_vexpf(t[k][b]);
            sum[b] += e[b];
        }
        if (!logsm)
            for (int b = 0; b < SM_BLOCK; b++) t[k][b] = e[b];
    }
    if (logsm) {
        for (int b = 0; b < SM_BLOCK; b++) sum[b] = cx_vlogf(sum[b]);
        for (int k = 0; k < n; k++)
            for (int b = 0; b < SM_BLOCK; b++) t[k][b] -= sum[b];
    } else {
        for (int b = 0; b < SM_BLOCK; b++) sum[b] = 1.0f / sum[b];
        for (int k = 0; k < n; k++)
            for (int b = 0; b < SM_BLOCK; b++) t[k][b] *= sum[b];
    }
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < n; k++) y[(r0 + b) * n + k] = t[k][b];
}

static cx_tensor *softmax_impl(cx_tensor *a, int axis, bool logsm) {
    const char *name = logsm ? "log_softmax" : "softmax";
    cx_need_f32(name, a);
    axis = cx_norm_axis(name, axis, a->ndim);
    cx_tensor *out = cx_new_like_shape(a->shape, a->ndim);
    int64_t outer, inner;
    int n;
    cx_split_axis(a, axis, &outer, &n, &inner);
    const float *x = CX_F(a);
    float *y = CX_F(out);
    int64_t rows = outer * inner;
    if (inner == 1 && n < 8) {
        /* a few classes (a policy's actions): softmax_few, 64 rows at a time */
        const int64_t nblk = (rows + SM_BLOCK - 1) / SM_BLOCK;
        CX_PFOR(rows * n > CX_PAR_MIN,
        for (int64_t bk = 0; bk < nblk; bk++) softmax_few(x, y, bk * SM_BLOCK, rows, n, logsm););
    } else if (inner == 1) {
        /* contiguous rows (softmax over the last axis): vectorised passes */
        CX_PFOR(rows * n > CX_PAR_MIN,
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n;
            float *yr = y + r * n;
            float m = cx_vmaxf(xr, n);
            for (int k = 0; k < n; k++) yr[k] = cx_vexpf(xr[k] - m);
            double s = cx_vsum_f64(yr, n);
            if (logsm) {
                /* (x - max) - log(sum): x - (max + log(sum)) rounds max + log(sum)
                 * to the precision of max, cancelled by the subtraction */
                float ls = (float)log(s);
                for (int k = 0; k < n; k++) yr[k] = (xr[k] - m) - ls;
            } else {
                float inv = (float)(1.0 / s);
                for (int k = 0; k < n; k++) yr[k] *= inv;
            }
        });
    } else {
        CX_PFOR(rows * n > CX_PAR_MIN,
        for (int64_t r = 0; r < rows; r++) {
            int64_t o = r / inner, j = r % inner;
            int64_t base = o * n * inner + j;
            float m = -INFINITY;
            for (int k = 0; k < n; k++) m = fmaxf(m, x[base + k * inner]);
            double s = 0;
            for (int k = 0; k < n; k++) {
                float e = cx_vexpf(x[base + k * inner] - m);
                if (!logsm) y[base + k * inner] = e;
                s += e;
            }
            if (logsm) {
                float ls = (float)log(s);
                for (int k = 0; k < n; k++) y[base + k * inner] = (x[base + k * inner] - m) - ls;
            } else {
                float inv = (float)(1.0 / s);
                for (int k = 0; k < n; k++) y[base + k * inner] *= inv;
            }
        });
    }
    cx_node *nd = cx_record(logsm ? &cx_opd_log_softmax : &cx_opd_softmax, out, &a, 1);
    if (nd) nd->i[0] = axis;
    return out;
}
cx_tensor *cx_softmax(cx_tensor *a, int axis) { return softmax_impl(a, axis, false); }
cx_tensor *cx_log_softmax(cx_tensor *a, int axis) { return softmax_impl(a, axis, true); }
