/* Object detection (include/cortex/detect.h): RoI max pooling and RoIAlign
 * with the arithmetic of torchvision's CPU kernels (roi_pool_kernel.cpp,
 * roi_align_kernel.cpp: float coordinates, the same rounding, clamping and
 * sample grids), box IoU, NMS, the R-CNN box coder and average precision.
 *
 * Determinism: the forward passes write each output element once; the input
 * gradients are scatter-adds done per (image, channel) plane by one thread,
 * RoIs and bins in order, so no result depends on the number of threads. */
#include "../autograd/graph.h"
#include "cortex/detect.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- argument checks */
static void need_features(const char *op, const cx_tensor *x) {
    char sb[96];
    if (!x) cx_fatal("%s: input is NULL", op);
    cx_need_f32_arg(op, "input", x);
    if (x->ndim != 4 || x->shape[0] < 1 || x->shape[1] < 1 || x->shape[2] < 1 || x->shape[3] < 1)
        cx_fatal("%s: input must be a non-empty [N, C, H, W], got input %s", op, cx_shape_str(x, sb, sizeof sb));
}

/* rois F32 [K, 5] with integer batch indices in [0, N); returns K */
static int need_rois(const char *op, const cx_tensor *rois, int N) {
    char sb[96];
    if (!rois) cx_fatal("%s: rois is NULL", op);
    if (rois->dtype != CX_F32 || rois->ndim != 2 || rois->shape[1] != 5)
        cx_fatal("%s: rois must be F32 [K, 5] rows (batch_index, x1, y1, x2, y2), got %s %s", op,
                 cx_dtype_name(rois->dtype), cx_shape_str(rois, sb, sizeof sb));
    const float *r = CX_F(rois);
    for (int k = 0; k < rois->shape[0]; k++) {
        float b = r[5 * k];
        if (!(b >= 0.0f && b < (float)N) || b != floorf(b))
            cx_fatal("%s: roi %d has batch_index %g, expected an integer in [0, %d) (the input's batch)", op, k,
                     (double)b, N);
        for (int j = 1; j < 5; j++)
            if (!isfinite(r[5 * k + j]))
                cx_fatal("%s: roi %d has a non-finite coordinate %g", op, k, (double)r[5 * k + j]);
    }
    return rois->shape[0];
}

static void need_out_size(const char *op, int ph, int pw) {
    if (ph < 1 || pw < 1) cx_fatal("%s: output size must be positive, got %dx%d", op, ph, pw);
}

/* ---------------------------------------------------------------- roi_pool */
typedef struct {
    int K, C, H, W, ph, pw;
    const int32_t *arg; /* [K, C, ph, pw]: the flat h * W + w of the maximum, -1 for an empty bin */
    const int32_t *img; /* [K]: batch index */
} rp_saved;

static void roi_pool_backward(cx_node *nd) {
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const rp_saved *s = nd->saved;
    const float *go = nd->out[0]->grad;
    int N = nd->in[0]->shape[0], C = s->C;
    int64_t hw = (int64_t)s->H * s->W, bins = (int64_t)s->ph * s->pw, planes = (int64_t)N * C;
    int64_t work = (int64_t)s->K * C * bins;
    (void)work;
    CX_OMP(parallel for if(work > CX_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        int n = (int)(pl / C), c = (int)(pl % C);
        float *gp = gx + pl * hw;
        for (int k = 0; k < s->K; k++) {
            if (s->img[k] != n) continue;
            int64_t o = ((int64_t)k * C + c) * bins;
            for (int64_t b = 0; b < bins; b++)
                if (s->arg[o + b] >= 0) gp[s->arg[o + b]] += go[o + b];
        }
    }
}
CX_OP_DEF(roi_pool, .backward = roi_pool_backward);

cx_tensor *cx_roi_pool(cx_tensor *input, const cx_tensor *rois, float spatial_scale, int ph, int pw) {
    const char *op = "roi_pool";
    need_features(op, input);
    int N = input->shape[0], C = input->shape[1], H = input->shape[2], W = input->shape[3];
    int K = need_rois(op, rois, N);
    need_out_size(op, ph, pw);
    if (!(spatial_scale > 0.0f) || !isfinite(spatial_scale))
        cx_fatal("%s: spatial_scale must be positive, got %g", op, (double)spatial_scale);
    int oshape[4] = {K, C, ph, pw};
    (void)cx_shape_numel(op, oshape, 4);
    cx_tensor *out = cx_new_like_shape(oshape, 4);
    int64_t bins = (int64_t)ph * pw, hw = (int64_t)H * W;
    int32_t *arg = cx_arena_alloc(sizeof(int32_t) * (size_t)(K > 0 ? K * C * bins : 1));
    int32_t *img = cx_arena_alloc(sizeof(int32_t) * (size_t)(K > 0 ? K : 1));
    const float *r = CX_F(rois), *xd = CX_F(input);
    float *yd = CX_F(out);
    for (int k = 0; k < K; k++) img[k] = (int)r[5 * k];
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int k = 0; k < K; k++) {
        const float *rk = r + 5 * k;
        int x1 = (int)roundf(rk[1] * spatial_scale), y1 = (int)roundf(rk[2] * spatial_scale);
        int x2 = (int)roundf(rk[3] * spatial_scale), y2 = (int)roundf(rk[4] * spatial_scale);
        int rw = x2 - x1 + 1 > 1 ? x2 - x1 + 1 : 1, rh = y2 - y1 + 1 > 1 ? y2 - y1 + 1 : 1;
        float bh = (float)rh / (float)ph, bw = (float)rw / (float)pw;
        for (int i = 0; i < ph; i++) {
            int hs = (int)floorf((float)i * bh) + y1, he = (int)ceilf((float)(i + 1) * bh) + y1;
            hs = hs < 0 ? 0 : hs > H ? H : hs;
            he = he < 0 ? 0 : he > H ? H : he;
            for (int j = 0; j < pw; j++) {
                int ws = (int)floorf((float)j * bw) + x1, we = (int)ceilf((float)(j + 1) * bw) + x1;
                ws = ws < 0 ? 0 : ws > W ? W : ws;
                we = we < 0 ? 0 : we > W ? W : we;
                bool empty = he <= hs || we <= ws;
                for (int c = 0; c < C; c++) {
                    const float *xp = xd + ((int64_t)img[k] * C + c) * hw;
                    float m = empty ? 0.0f : -FLT_MAX;
                    int32_t a = -1;
                    for (int h = hs; h < he; h++)
                        for (int w = ws; w < we; w++)
                            if (xp[h * W + w] > m) {
                                m = xp[h * W + w];
                                a = h * W + w;
                            }
                    int64_t o = ((int64_t)k * C + c) * bins + (int64_t)i * pw + j;
                    yd[o] = m;
                    arg[o] = a;
                }
            }
        }
    }
    rp_saved sv = {K, C, H, W, ph, pw, arg, img};
    cx_tensor *in = input;
    cx_record_saved(&cx_opd_roi_pool, out, &in, 1, &sv, sizeof sv);
    return out;
}

/* ---------------------------------------------------------------- roi_align */
/* One bilinear sample: the four cells (flat h * W + w) and their weights;
 * all weights 0 when the sample lies more than one cell outside. */
typedef struct {
    int p1, p2, p3, p4;
    float w1, w2, w3, w4;
} ra_pt;

static inline ra_pt ra_point(int H, int W, float y, float x) {
    ra_pt p = {0, 0, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f};
    if (y < -1.0f || y > (float)H || x < -1.0f || x > (float)W) return p;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int yl = (int)y, xl = (int)x, yh, xh;
    if (yl >= H - 1) {
        yh = yl = H - 1;
        y = (float)yl;
    } else yh = yl + 1;
    if (xl >= W - 1) {
        xh = xl = W - 1;
        x = (float)xl;
    } else xh = xl + 1;
    float ly = y - (float)yl, lx = x - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
    p.p1 = yl * W + xl;
    p.p2 = yl * W + xh;
    p.p3 = yh * W + xl;
    p.p4 = yh * W + xh;
    p.w1 = hy * hx;
    p.w2 = hy * lx;
    p.w3 = ly * hx;
    p.w4 = ly * lx;
    return p;
}

/* The geometry of one RoI in feature cells. */
typedef struct {
    float x0, y0, bw, bh; /* start and bin size */
    int gh, gw;           /* samples per bin */
    float count;          /* max(gh * gw, 1) */
} ra_geom;

static ra_geom ra_roi(const float *rk, float scale, int ph, int pw, int sampling_ratio, bool aligned) {
    ra_geom g;
    float off = aligned ? 0.5f : 0.0f;
    float x0 = rk[1] * scale - off, y0 = rk[2] * scale - off;
    float x1 = rk[3] * scale - off, y1 = rk[4] * scale - off;
    float rw = x1 - x0, rh = y1 - y0;
    if (!aligned) {
        rw = rw > 1.0f ? rw : 1.0f;
        rh = rh > 1.0f ? rh : 1.0f;
    }
    g.x0 = x0;
    g.y0 = y0;
    g.bh = rh / (float)ph;
    g.bw = rw / (float)pw;
    g.gh = sampling_ratio > 0 ? sampling_ratio : (int)ceilf(rh / (float)ph);
    g.gw = sampling_ratio > 0 ? sampling_ratio : (int)ceilf(rw / (float)pw);
    int cnt = g.gh * g.gw;
    g.count = (float)(cnt > 1 ? cnt : 1);
    return g;
}

static inline float ra_sample_y(const ra_geom *g, int i, int iy) {
    return g->y0 + (float)i * g->bh + ((float)iy + 0.5f) * g->bh / (float)g->gh;
}
static inline float ra_sample_x(const ra_geom *g, int j, int ix) {
    return g->x0 + (float)j * g->bw + ((float)ix + 0.5f) * g->bw / (float)g->gw;
}

typedef struct {
    int K, C, H, W, ph, pw, sampling_ratio;
    float scale;
    bool aligned;
    const float *rois; /* [K, 5] copy (arena) */
} ra_saved;

static void roi_align_backward(cx_node *nd) {
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const ra_saved *s = nd->saved;
    const float *go = nd->out[0]->grad;
    int N = nd->in[0]->shape[0], C = s->C, H = s->H, W = s->W;
    int64_t hw = (int64_t)H * W, bins = (int64_t)s->ph * s->pw, planes = (int64_t)N * C;
    int64_t work = (int64_t)s->K * C * bins;
    (void)work;
    CX_OMP(parallel for if(work > CX_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        int n = (int)(pl / C), c = (int)(pl % C);
        float *gp = gx + pl * hw;
        for (int k = 0; k < s->K; k++) {
            const float *rk = s->rois + 5 * k;
            if ((int)rk[0] != n) continue;
            ra_geom g = ra_roi(rk, s->scale, s->ph, s->pw, s->sampling_ratio, s->aligned);
            const float *gk = go + ((int64_t)k * C + c) * bins;
            for (int i = 0; i < s->ph; i++)
                for (int j = 0; j < s->pw; j++) {
                    float gb = gk[i * s->pw + j] / g.count;
                    for (int iy = 0; iy < g.gh; iy++) {
                        float y = ra_sample_y(&g, i, iy);
                        for (int ix = 0; ix < g.gw; ix++) {
                            ra_pt p = ra_point(H, W, y, ra_sample_x(&g, j, ix));
                            gp[p.p1] += gb * p.w1;
                            gp[p.p2] += gb * p.w2;
                            gp[p.p3] += gb * p.w3;
                            gp[p.p4] += gb * p.w4;
                        }
                    }
                }
        }
    }
}
CX_OP_DEF(roi_align, .backward = roi_align_backward);

cx_tensor *cx_roi_align(cx_tensor *input, const cx_tensor *rois, float spatial_scale, int ph, int pw,
                        int sampling_ratio, bool aligned) {
    const char *op = "roi_align";
    need_features(op, input);
    int N = input->shape[0], C = input->shape[1], H = input->shape[2], W = input->shape[3];
    int K = need_rois(op, rois, N);
    need_out_size(op, ph, pw);
    if (!(spatial_scale > 0.0f) || !isfinite(spatial_scale))
        cx_fatal("%s: spatial_scale must be positive, got %g", op, (double)spatial_scale);
    int oshape[4] = {K, C, ph, pw};
    (void)cx_shape_numel(op, oshape, 4);
    cx_tensor *out = cx_new_like_shape(oshape, 4);
    float *rc = cx_arena_alloc(sizeof(float) * (size_t)(K > 0 ? 5 * K : 1));
    if (K > 0) memcpy(rc, CX_F(rois), sizeof(float) * (size_t)(5 * K));
    /* a huge adaptive grid would take forever: bound the samples per bin */
    for (int k = 0; k < K; k++) {
        ra_geom g = ra_roi(rc + 5 * k, spatial_scale, ph, pw, sampling_ratio, aligned);
        if ((int64_t)g.gh * g.gw > (1 << 20))
            cx_fatal("%s: roi %d needs %d x %d samples per bin (too large: is spatial_scale %g right?)", op, k,
                     g.gh, g.gw, (double)spatial_scale);
    }
    const float *xd = CX_F(input);
    float *yd = CX_F(out);
    int64_t hw = (int64_t)H * W, bins = (int64_t)ph * pw;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int k = 0; k < K; k++) {
        const float *rk = rc + 5 * k;
        int n = (int)rk[0];
        ra_geom g = ra_roi(rk, spatial_scale, ph, pw, sampling_ratio, aligned);
        for (int c = 0; c < C; c++) {
            const float *xp = xd + ((int64_t)n * C + c) * hw;
            float *yk = yd + ((int64_t)k * C + c) * bins;
            for (int i = 0; i < ph; i++)
                for (int j = 0; j < pw; j++) {
                    float acc = 0.0f;
                    for (int iy = 0; iy < g.gh; iy++) {
                        float y = ra_sample_y(&g, i, iy);
                        for (int ix = 0; ix < g.gw; ix++) {
                            ra_pt p = ra_point(H, W, y, ra_sample_x(&g, j, ix));
                            acc += p.w1 * xp[p.p1] + p.w2 * xp[p.p2] + p.w3 * xp[p.p3] + p.w4 * xp[p.p4];
                        }
                    }
                    yk[i * pw + j] = acc / g.count;
                }
        }
    }
    ra_saved sv = {K, C, H, W, ph, pw, sampling_ratio, spatial_scale, aligned, rc};
    cx_tensor *in = input;
    cx_record_saved(&cx_opd_roi_align, out, &in, 1, &sv, sizeof sv);
    return out;
}

/* ---------------------------------------------------------------- boxes */
static int need_boxes(const char *fn, const char *what, const cx_tensor *b) {
    char sb[96];
    if (!b) cx_fatal("%s: %s is NULL", fn, what);
    if (b->dtype != CX_F32 || b->ndim != 2 || b->shape[1] != 4)
        cx_fatal("%s: %s must be F32 [N, 4] boxes (x1, y1, x2, y2), got %s %s", fn, what, cx_dtype_name(b->dtype),
                 cx_shape_str(b, sb, sizeof sb));
    return b->shape[0];
}

static inline float box_area(const float *b) { return (b[2] - b[0]) * (b[3] - b[1]); }

float cx_box_iou1(const float *a, const float *b) {
    float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    float inter = (w > 0.0f ? w : 0.0f) * (h > 0.0f ? h : 0.0f);
    float uni = box_area(a) + box_area(b) - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

cx_tensor *cx_box_iou(const cx_tensor *a, const cx_tensor *b) {
    int n = need_boxes("cx_box_iou", "a", a), m = need_boxes("cx_box_iou", "b", b);
    cx_tensor *out = cx_zeros(CX_SHAPE(n, m));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) CX_F(out)[(int64_t)i * m + j] = cx_box_iou1(CX_F(a) + 4 * i, CX_F(b) + 4 * j);
    return out;
}

/* indices 0 .. n-1 by decreasing score, equal scores by index (stable) */
static const float *sort_scores;
static int cmp_score_desc(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    float sa = sort_scores[a], sb = sort_scores[b];
    if (sa != sb) return sa > sb ? -1 : 1;
    return (a > b) - (a < b);
}

static int *order_by_score(const float *scores, int n) {
    int *ord = cx_arena_alloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) ord[i] = i;
    /* qsort with a file-scope key: guarded so concurrent calls do not mix keys */
    CX_OMP(critical(cx_roi_sort))
    {
        sort_scores = scores;
        qsort(ord, (size_t)n, sizeof(int), cmp_score_desc);
    }
    return ord;
}

static cx_tensor *nms_impl(const char *fn, const cx_tensor *boxes, const cx_tensor *scores, const cx_tensor *idxs,
                           float thr) {
    char sa[96], sb[96];
    int n = need_boxes(fn, "boxes", boxes);
    if (!scores || scores->dtype != CX_F32 || scores->ndim != 1 || scores->shape[0] != n)
        cx_fatal("%s: scores must be F32 [%d] (one per box of boxes %s), got %s", fn, n,
                 cx_shape_str(boxes, sa, sizeof sa), scores ? cx_shape_str(scores, sb, sizeof sb) : "NULL");
    if (idxs && (idxs->dtype == CX_F32 || idxs->ndim != 1 || idxs->shape[0] != n))
        cx_fatal("%s: idxs must be I32 or I64 [%d] (one category per box), got %s %s", fn, n,
                 cx_dtype_name(idxs->dtype), cx_shape_str(idxs, sb, sizeof sb));
    if (isnan(thr)) cx_fatal("%s: iou_threshold is NaN", fn);
    const float *s = CX_F(scores), *b = CX_F(boxes);
    for (int i = 0; i < n; i++)
        if (isnan(s[i])) cx_fatal("%s: score %d is NaN", fn, i);
    int *ord = order_by_score(s, n);
    unsigned char *dead = cx_arena_alloc((size_t)(n > 0 ? n : 1));
    memset(dead, 0, (size_t)(n > 0 ? n : 1));
    int64_t *keep = cx_arena_alloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int a = 0; a < n; a++) {
        int i = ord[a];
        if (dead[i]) continue;
        keep[k++] = i;
        int64_t ci = idxs ? (idxs->dtype == CX_I32 ? CX_I32P(idxs)[i] : CX_I64P(idxs)[i]) : 0;
        for (int c = a + 1; c < n; c++) {
            int j = ord[c];
            if (dead[j]) continue;
            int64_t cj = idxs ? (idxs->dtype == CX_I32 ? CX_I32P(idxs)[j] : CX_I64P(idxs)[j]) : 0;
            if (cj == ci && cx_box_iou1(b + 4 * i, b + 4 * j) > thr) dead[j] = 1;
        }
    }
    cx_tensor *out = cx_empty(CX_I64, CX_SHAPE(k));
    if (k > 0) memcpy(out->data, keep, sizeof(int64_t) * (size_t)k);
    return out;
}

cx_tensor *cx_nms(const cx_tensor *boxes, const cx_tensor *scores, float iou_threshold) {
    return nms_impl("cx_nms", boxes, scores, NULL, iou_threshold);
}

cx_tensor *cx_batched_nms(const cx_tensor *boxes, const cx_tensor *scores, const cx_tensor *idxs,
                          float iou_threshold) {
    if (!idxs) cx_fatal("cx_batched_nms: idxs is NULL");
    return nms_impl("cx_batched_nms", boxes, scores, idxs, iou_threshold);
}

/* ---------------------------------------------------------------- box coder */
static const float unit_weights[4] = {1, 1, 1, 1};

static int need_pair(const char *fn, const char *wa, const cx_tensor *a, const cx_tensor *p) {
    char sa[96], sb[96];
    int n = need_boxes(fn, wa, a), m = need_boxes(fn, "proposals", p);
    if (n != m)
        cx_fatal("%s: %s %s and proposals %s must have the same number of rows", fn, wa,
                 cx_shape_str(a, sa, sizeof sa), cx_shape_str(p, sb, sizeof sb));
    for (int i = 0; i < m; i++) {
        const float *q = CX_F(p) + 4 * i;
        if (!(q[2] > q[0] && q[3] > q[1]))
            cx_fatal("%s: proposal %d (%g, %g, %g, %g) has no positive width and height", fn, i, (double)q[0],
                     (double)q[1], (double)q[2], (double)q[3]);
    }
    return n;
}

cx_tensor *cx_box_encode(const cx_tensor *boxes, const cx_tensor *proposals, const float *weights) {
    const char *fn = "cx_box_encode";
    int n = need_pair(fn, "boxes", boxes, proposals);
    const float *w = weights ? weights : unit_weights;
    cx_tensor *out = cx_zeros(CX_SHAPE(n, 4));
    for (int i = 0; i < n; i++) {
        const float *g = CX_F(boxes) + 4 * i, *p = CX_F(proposals) + 4 * i;
        if (!(g[2] > g[0] && g[3] > g[1]))
            cx_fatal("%s: box %d (%g, %g, %g, %g) has no positive width and height", fn, i, (double)g[0],
                     (double)g[1], (double)g[2], (double)g[3]);
        float pw = p[2] - p[0], ph = p[3] - p[1], px = p[0] + 0.5f * pw, py = p[1] + 0.5f * ph;
        float gw = g[2] - g[0], gh = g[3] - g[1], gx = g[0] + 0.5f * gw, gy = g[1] + 0.5f * gh;
        float *d = CX_F(out) + 4 * i;
        d[0] = w[0] * (gx - px) / pw;
        d[1] = w[1] * (gy - py) / ph;
        d[2] = w[2] * logf(gw / pw);
        d[3] = w[3] * logf(gh / ph);
    }
    return out;
}

cx_tensor *cx_box_decode(const cx_tensor *deltas, const cx_tensor *proposals, const float *weights) {
    const char *fn = "cx_box_decode";
    int n = need_pair(fn, "deltas", deltas, proposals);
    const float *w = weights ? weights : unit_weights;
    const float clip = logf(1000.0f / 16.0f);
    cx_tensor *out = cx_zeros(CX_SHAPE(n, 4));
    for (int i = 0; i < n; i++) {
        const float *d = CX_F(deltas) + 4 * i, *p = CX_F(proposals) + 4 * i;
        float pw = p[2] - p[0], ph = p[3] - p[1], px = p[0] + 0.5f * pw, py = p[1] + 0.5f * ph;
        float dx = d[0] / w[0], dy = d[1] / w[1], dw = fminf(d[2] / w[2], clip), dh = fminf(d[3] / w[3], clip);
        float cx = dx * pw + px, cy = dy * ph + py, bw = expf(dw) * pw, bh = expf(dh) * ph;
        float *o = CX_F(out) + 4 * i;
        o[0] = cx - 0.5f * bw;
        o[1] = cy - 0.5f * bh;
        o[2] = cx + 0.5f * bw;
        o[3] = cy + 0.5f * bh;
    }
    return out;
}

/* ---------------------------------------------------------------- average precision */
static const cx_det *sort_dets;
static int cmp_det_desc(const void *pa, const void *pb) {
    int a = *(const int *)pa, b = *(const int *)pb;
    float sa = sort_dets[a].score, sb = sort_dets[b].score;
    if (sa != sb) return sa > sb ? -1 : 1;
    return (a > b) - (a < b);
}

typedef struct {
    int image, g;
} gt_ref;
static int cmp_gt_ref(const void *pa, const void *pb) {
    const gt_ref *a = pa, *b = pb;
    if (a->image != b->image) return a->image < b->image ? -1 : 1;
    return (a->g > b->g) - (a->g < b->g);
}

double cx_average_precision(const cx_det *dets, int n_dets, const cx_gt *gts, int n_gts, int cls,
                            float iou_threshold, cx_ap_rule rule) {
    const char *fn = "cx_average_precision";
    if (n_dets < 0 || n_gts < 0 || (n_dets > 0 && !dets) || (n_gts > 0 && !gts))
        cx_fatal("%s: bad arrays (%d detections at %p, %d objects at %p)", fn, n_dets, (const void *)dets, n_gts,
                 (const void *)gts);
    if (rule != CX_AP_VOC && rule != CX_AP_COCO) cx_fatal("%s: unknown rule %d", fn, (int)rule);
    for (int i = 0; i < n_dets; i++)
        if (dets[i].cls == cls && isnan(dets[i].score)) cx_fatal("%s: detection %d has a NaN score", fn, i);
    int npos = 0;
    for (int g = 0; g < n_gts; g++) npos += gts[g].cls == cls;
    if (npos == 0) return -1.0;
    int nd = 0;
    int *ord = malloc(sizeof(int) * (size_t)(n_dets > 0 ? n_dets : 1));
    unsigned char *taken = calloc((size_t)n_gts + 1, 1);
    double *tp = malloc(sizeof(double) * (size_t)(n_dets + 1)), *fp = malloc(sizeof(double) * (size_t)(n_dets + 1));
    gt_ref *byim = malloc(sizeof(gt_ref) * (size_t)npos);
    if (!ord || !taken || !tp || !fp || !byim) cx_fatal("%s: out of memory", fn);
    /* this class's objects by image (then index): each detection looks at its image's only */
    int ng = 0;
    for (int g = 0; g < n_gts; g++)
        if (gts[g].cls == cls) byim[ng].image = gts[g].image, byim[ng++].g = g;
    qsort(byim, (size_t)ng, sizeof *byim, cmp_gt_ref);
    for (int i = 0; i < n_dets; i++)
        if (dets[i].cls == cls) ord[nd++] = i;
    CX_OMP(critical(cx_roi_sort))
    {
        sort_dets = dets;
        qsort(ord, (size_t)nd, sizeof(int), cmp_det_desc);
    }
    for (int a = 0; a < nd; a++) {
        const cx_det *d = &dets[ord[a]];
        int best = -1, lo = 0, hi = ng;
        float bi = -1.0f;
        while (lo < hi) { /* the first of the detection's image */
            int mid = lo + (hi - lo) / 2;
            if (byim[mid].image < d->image) lo = mid + 1;
            else hi = mid;
        }
        int end = lo;
        while (end < ng && byim[end].image == d->image) end++;
        if (rule == CX_AP_VOC) {
            for (int q = lo; q < end; q++) {
                int g = byim[q].g;
                float v = cx_box_iou1(d->box, gts[g].box);
                if (v > bi) bi = v, best = g;
            }
            bool ok = best >= 0 && bi > iou_threshold && !taken[best];
            if (ok) taken[best] = 1;
            tp[a] = ok;
        } else {
            float t = fminf(iou_threshold, 1.0f - 1e-10f);
            for (int q = lo; q < end; q++) {
                int g = byim[q].g;
                if (taken[g]) continue;
                float v = cx_box_iou1(d->box, gts[g].box);
                if (v < t || v < bi) continue;
                bi = v, best = g;
            }
            if (best >= 0) taken[best] = 1;
            tp[a] = best >= 0;
        }
        fp[a] = 1.0 - tp[a];
    }
    /* precision and recall after each detection */
    double ctp = 0, cfp = 0, ap = 0;
    double *rec = malloc(sizeof(double) * (size_t)(nd + 2)), *prec = malloc(sizeof(double) * (size_t)(nd + 2));
    double *mr = malloc(sizeof(double) * (size_t)(nd + 2)), *mp = malloc(sizeof(double) * (size_t)(nd + 2));
    if (!rec || !prec || !mr || !mp) cx_fatal("%s: out of memory", fn);
    for (int a = 0; a < nd; a++) {
        ctp += tp[a];
        cfp += fp[a];
        rec[a] = ctp / npos;
        prec[a] = ctp / (ctp + cfp);
    }
    if (rule == CX_AP_VOC) {
        /* mrec = [0, rec, 1], mpre = [0, prec, 0], made monotone from the right */
        mr[0] = 0, mp[0] = 0;
        for (int a = 0; a < nd; a++) mr[a + 1] = rec[a], mp[a + 1] = prec[a];
        mr[nd + 1] = 1, mp[nd + 1] = 0;
        for (int i = nd; i >= 0; i--) mp[i] = fmax(mp[i], mp[i + 1]);
        for (int i = 0; i <= nd; i++)
            if (mr[i + 1] != mr[i]) ap += (mr[i + 1] - mr[i]) * mp[i + 1];
    } else {
        for (int i = nd - 1; i > 0; i--)
            if (prec[i] > prec[i - 1]) prec[i - 1] = prec[i];
        int idx = 0;
        for (int r = 0; r <= 100; r++) {
            double thr = (double)r / 100.0;
            while (idx < nd && rec[idx] < thr) idx++; /* searchsorted, side left */
            ap += idx < nd ? prec[idx] : 0.0;
        }
        ap /= 101.0;
    }
    free(rec);
    free(prec);
    free(mr);
    free(mp);
    free(ord);
    free(byim);
    free(taken);
    free(tp);
    free(fp);
    return ap;
}

int cx_detection_map(const cx_det *dets, int n_dets, const cx_gt *gts, int n_gts, int n_classes, double *map50,
                     double *map5095, double *ap50) {
    if (n_classes < 1) cx_fatal("cx_detection_map: n_classes must be positive, got %d", n_classes);
    int have = 0;
    double s50 = 0, s5095 = 0;
    for (int c = 0; c < n_classes; c++) {
        double a = cx_average_precision(dets, n_dets, gts, n_gts, c, 0.5f, CX_AP_VOC);
        if (ap50) ap50[c] = a;
        if (a < 0) continue;
        have++;
        s50 += a;
        double m = 0;
        for (int t = 0; t < 10; t++)
            m += cx_average_precision(dets, n_dets, gts, n_gts, c, 0.5f + 0.05f * (float)t, CX_AP_COCO);
        s5095 += m / 10.0;
    }
    if (map50) *map50 = have ? s50 / have : 0.0;
    if (map5095) *map5095 = have ? s5095 / have : 0.0;
    return have;
}
