/* Ops of the memory-augmented networks (NTM / DNC addressing and writes):
 * cosine similarity, circular convolution (the NTM shift), outer product. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

/* ---- cosine similarity along an axis of the broadcast of a and b, with
 * PyTorch 1.13's eps: each norm is clamped separately,
 *   out = sum_k a_k b_k / (max(||a||, eps) max(||b||, eps)). */
typedef struct {
    int ndim, axis, n;                 /* broadcast rank, axis, its size */
    int shape[CX_MAX_DIMS];            /* broadcast shape */
    int64_t sa[CX_MAX_DIMS], sb[CX_MAX_DIMS]; /* element strides (0: broadcast) */
    double eps;
} cos_plan;

static void cos_make_plan(const cx_tensor *a, const cx_tensor *b, int axis, float eps, cos_plan *p) {
    char s1[96], s2[96];
    memset(p, 0, sizeof *p);
    p->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t sa = 1, sb = 1;
    for (int i = p->ndim - 1; i >= 0; i--) {
        int ia = i - (p->ndim - a->ndim), ib = i - (p->ndim - b->ndim);
        int da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            cx_fatal("cosine_similarity: shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)",
                     cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2), i, da, db);
        p->shape[i] = da == 1 ? db : da;
        p->sa[i] = da == 1 ? 0 : sa;
        p->sb[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
    int ax = axis < 0 ? axis + p->ndim : axis;
    if (ax < 0 || ax >= p->ndim)
        cx_fatal("cosine_similarity: axis %d out of range for %s and %s (%d-d after broadcasting)", axis,
                 cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2), p->ndim);
    p->axis = ax;
    p->n = p->shape[ax];
    p->eps = eps;
}

/* Visit every output element (the broadcast shape without axis): oi its flat
 * index, oa / ob the offsets of its line's first element in a and b. */
#define COS_LOOP(p, ...)                                                              \
    do {                                                                              \
        int idx_[CX_MAX_DIMS] = {0};                                                  \
        int64_t oa = 0, ob = 0, total_ = 1;                                           \
        for (int d_ = 0; d_ < (p)->ndim; d_++)                                        \
            if (d_ != (p)->axis) total_ *= (p)->shape[d_];                            \
        for (int64_t oi = 0; oi < total_; oi++) {                                     \
            __VA_ARGS__;                                                              \
            for (int d_ = (p)->ndim - 1; d_ >= 0; d_--) {                             \
                if (d_ == (p)->axis) continue;                                        \
                oa += (p)->sa[d_];                                                    \
                ob += (p)->sb[d_];                                                    \
                if (++idx_[d_] < (p)->shape[d_]) break;                               \
                oa -= (p)->sa[d_] * (p)->shape[d_];                                   \
                ob -= (p)->sb[d_] * (p)->shape[d_];                                   \
                idx_[d_] = 0;                                                         \
            }                                                                         \
        }                                                                             \
    } while (0)

/* dot, ||a||, ||b|| of one line (double) */
static void cos_line(const cos_plan *p, const float *a, const float *b, int64_t oa, int64_t ob, double *dot,
                     double *na, double *nb) {
    const int64_t ka = p->sa[p->axis], kb = p->sb[p->axis];
    double d = 0, s1 = 0, s2 = 0;
    for (int k = 0; k < p->n; k++) {
        double x = a[oa + k * ka], y = b[ob + k * kb];
        d += x * y;
        s1 += x * x;
        s2 += y * y;
    }
    *dot = d;
    *na = sqrt(s1);
    *nb = sqrt(s2);
}

static void cosine_similarity_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    if (!ga && !gb) return;
    const cos_plan *p = nd->saved;
    const float *a = CX_F(nd->in[0]), *b = CX_F(nd->in[1]), *g = nd->out[0]->grad;
    const int64_t ka = p->sa[p->axis], kb = p->sb[p->axis];
    /* PyTorch 1.13 clamps the norms in place outside autograd, so the norm's
     * backward reads the clamped value: d||a||/da = a / ea, ea = max(||a||, eps):
     *   d out/d a_k = b_k / (ea eb) - out a_k / ea^2
     * (the true derivative when ||a|| >= eps; below eps it keeps the second
     * term, which the clamped function does not have). */
    COS_LOOP(p, {
        double dot, na, nb;
        cos_line(p, a, b, oa, ob, &dot, &na, &nb);
        const double ea = na > p->eps ? na : p->eps, eb = nb > p->eps ? nb : p->eps;
        const double out = dot / (ea * eb), gi = g[oi];
        const double ca = ea > 0 ? out / (ea * ea) : 0, cb = eb > 0 ? out / (eb * eb) : 0;
        for (int k = 0; k < p->n; k++) {
            const double x = a[oa + k * ka], y = b[ob + k * kb];
            if (ga) ga[oa + k * ka] += (float)(gi * (y / (ea * eb) - ca * x));
            if (gb) gb[ob + k * kb] += (float)(gi * (x / (ea * eb) - cb * y));
        }
    });
}

CX_OP_DEF(cosine_similarity, .backward = cosine_similarity_backward);

cx_tensor *cx_cosine_similarity(cx_tensor *a, cx_tensor *b, int axis, float eps) {
    cx_need_f32_arg("cosine_similarity", "a", a);
    cx_need_f32_arg("cosine_similarity", "b", b);
    if (!(eps >= 0)) cx_fatal("cosine_similarity: eps must be >= 0, got %g", (double)eps);
    cos_plan p;
    cos_make_plan(a, b, axis, eps, &p);
    int shape[CX_MAX_DIMS], nd = 0;
    for (int d = 0; d < p.ndim; d++)
        if (d != p.axis) shape[nd++] = p.shape[d];
    if (nd == 0) shape[nd++] = 1; /* 1-D inputs: [1], as Cortex's full reductions */
    cx_tensor *out = cx_new_like_shape(shape, nd);
    const float *x = CX_F(a), *y = CX_F(b);
    float *o = CX_F(out);
    COS_LOOP(&p, {
        double dot, na, nb;
        cos_line(&p, x, y, oa, ob, &dot, &na, &nb);
        const double ea = na > p.eps ? na : p.eps, eb = nb > p.eps ? nb : p.eps;
        o[oi] = (float)(dot / (ea * eb));
    });
    cx_tensor *in[2] = {a, b};
    cx_record_saved(&cx_opd_cosine_similarity, out, in, 2, &p, sizeof p);
    return out;
}

/* ---- circular convolution along an axis (the NTM shift):
 *   out[i] = sum_j w[(i - o_j) mod N] s[j],  o_j = j - (K-1)/2,
 * w [..., N, ...], s [..., K, ...] (same other dimensions), K odd, K <= N. */
static void circular_conv_backward(cx_node *nd) {
    float *gw = cx_in_grad(nd, 0), *gs = cx_in_grad(nd, 1);
    if (!gw && !gs) return;
    const cx_tensor *wt = nd->in[0];
    const int axis = nd->i[0], N = wt->shape[axis], K = nd->in[1]->shape[axis], h = (K - 1) / 2;
    int64_t outer, inner;
    int n_unused;
    cx_split_axis(wt, axis, &outer, &n_unused, &inner);
    const float *w = CX_F(wt), *s = CX_F(nd->in[1]), *g = nd->out[0]->grad;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const int64_t wb = o * N * inner + c, sb = o * K * inner + c;
            for (int j = 0; j < K; j++) {
                const int off = j - h;
                const float sj = s[sb + (int64_t)j * inner];
                double acc = 0;
                for (int i = 0; i < N; i++) {
                    int src = ((i - off) % N + N) % N;
                    const float gi = g[wb + (int64_t)i * inner];
                    if (gw) gw[wb + (int64_t)src * inner] += gi * sj;
                    acc += (double)gi * w[wb + (int64_t)src * inner];
                }
                if (gs) gs[sb + (int64_t)j * inner] += (float)acc;
            }
        }
}

CX_OP_DEF(circular_conv, .backward = circular_conv_backward);

cx_tensor *cx_circular_conv(cx_tensor *w, cx_tensor *s, int axis) {
    cx_need_f32_arg("circular_conv", "w", w);
    cx_need_f32_arg("circular_conv", "s", s);
    char s1[96], s2[96];
    cx_shape_str(w, s1, sizeof s1);
    cx_shape_str(s, s2, sizeof s2);
    const int ax = cx_axis_of("circular_conv", axis, w);
    bool same = w->ndim == s->ndim;
    for (int d = 0; same && d < w->ndim; d++) same = d == ax || w->shape[d] == s->shape[d];
    if (!same)
        cx_fatal("circular_conv: w %s and s %s must have the same shape except along axis %d", s1, s2, axis);
    const int N = w->shape[ax], K = s->shape[ax];
    if (K % 2 == 0 || K > N)
        cx_fatal("circular_conv: w %s and s %s along axis %d: the shift size K = %d must be odd and at most "
                 "N = %d", s1, s2, axis, K, N);
    const int h = (K - 1) / 2;
    cx_tensor *out = cx_new_like_shape(w->shape, w->ndim);
    int64_t outer, inner;
    int n_unused;
    cx_split_axis(w, ax, &outer, &n_unused, &inner);
    const float *wd = CX_F(w), *sd = CX_F(s);
    float *y = CX_F(out);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < inner; c++) {
            const int64_t wb = o * N * inner + c, sb = o * K * inner + c;
            for (int i = 0; i < N; i++) {
                double acc = 0;
                for (int j = 0; j < K; j++) {
                    int src = ((i - (j - h)) % N + N) % N;
                    acc += (double)wd[wb + (int64_t)src * inner] * sd[sb + (int64_t)j * inner];
                }
                y[wb + (int64_t)i * inner] = (float)acc;
            }
        }
    cx_tensor *in[2] = {w, s};
    cx_node *nd = cx_record(&cx_opd_circular_conv, out, in, 2);
    if (nd) nd->i[0] = ax;
    return out;
}

/* ---- outer product: [M] x [N] -> [M, N], [B, M] x [B, N] -> [B, M, N] */
static void outer_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    if (!ga && !gb) return;
    const cx_tensor *a = nd->in[0], *b = nd->in[1];
    const int B = a->ndim == 2 ? a->shape[0] : 1, M = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
    const float *x = CX_F(a), *y = CX_F(b), *g = nd->out[0]->grad;
    for (int t = 0; t < B; t++) {
        const float *xt = x + (int64_t)t * M, *yt = y + (int64_t)t * N, *gt = g + (int64_t)t * M * N;
        for (int m = 0; m < M; m++) {
            const float *gr = gt + (int64_t)m * N;
            if (ga) {
                double acc = 0;
                for (int n = 0; n < N; n++) acc += (double)gr[n] * yt[n];
                ga[(int64_t)t * M + m] += (float)acc;
            }
            if (gb) {
                float *gbt = gb + (int64_t)t * N;
                const float xm = xt[m];
                for (int n = 0; n < N; n++) gbt[n] += gr[n] * xm;
            }
        }
    }
}

CX_OP_DEF(outer, .backward = outer_backward);

cx_tensor *cx_outer(cx_tensor *a, cx_tensor *b) {
    cx_need_f32_arg("outer", "a", a);
    cx_need_f32_arg("outer", "b", b);
    bool ok = (a->ndim == 1 && b->ndim == 1) || (a->ndim == 2 && b->ndim == 2 && a->shape[0] == b->shape[0]);
    if (!ok) {
        char s1[96], s2[96];
        cx_fatal("outer: cannot take the outer product of %s and %s (expected [M] and [N], or [B, M] and [B, N])",
                 cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2));
    }
    const int B = a->ndim == 2 ? a->shape[0] : 1, M = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
    int shape[3] = {B, M, N};
    cx_tensor *out = a->ndim == 2 ? cx_new_like_shape(shape, 3) : cx_new_like_shape(shape + 1, 2);
    const float *x = CX_F(a), *y = CX_F(b);
    float *o = CX_F(out);
    for (int t = 0; t < B; t++)
        for (int m = 0; m < M; m++) {
            const float xm = x[(int64_t)t * M + m];
            const float *yt = y + (int64_t)t * N;
            float *orow = o + ((int64_t)t * M + m) * N;
            for (int n = 0; n < N; n++) orow[n] = xm * yt[n];
        }
    cx_tensor *in[2] = {a, b};
    cx_record(&cx_opd_outer, out, in, 2);
    return out;
}
