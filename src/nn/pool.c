/* Pooling: max / average (2-D and 3-D, padding, ceil mode), adaptive and
 * global average pooling, and their modules. PyTorch semantics (see
 * include/cortex/pool.h). 2-D pooling runs through the 3-D kernels with a
 * depth of 1. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdio.h>

/* Geometry of one pooling call (saved on the graph node). */
typedef struct {
    int64_t planes;              /* N * C (every leading dim) */
    int in[3], out[3];           /* spatial sizes (D, H, W); 2-D: D = 1 */
    int k[3], s[3], p[3];
    bool exclude_pad;
    int32_t *arg;                /* max pooling: argmax within the plane, per output */
    uint8_t *code;               /* max pooling, 2x2 fast path: argmax within the window
                                  * (0..3 = dh * 2 + dw) instead of arg */
} pool_geom;

static int64_t plane_size(const int *d) { return (int64_t)d[0] * d[1] * d[2]; }

/* PyTorch's pooling_output_shape (dilation 1). */
static int pool_out_size(int in, int k, int s, int p, bool ceil_mode) {
    int64_t num = (int64_t)in + 2 * (int64_t)p - k + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= (int64_t)in + p) o--;
    return o > INT32_MAX ? INT32_MAX : (int)o;
}

/* Validate x and the options; fill g and the output shape. nsp: 2 or 3. */
static void pool_setup(const char *op, const cx_tensor *x, int nsp, const cx_pool_opts *o, pool_geom *g,
                       int *oshape, int *ondim) {
    char sb[96];
    cx_need_f32(op, x);
    if (!o) cx_fatal("%s: NULL options", op);
    if (x->ndim != nsp + 1 && x->ndim != nsp + 2)
        cx_fatal("%s: expected a %d-D input [N, C, %s] or a %d-D input [C, %s], got %s", op, nsp + 2,
                 nsp == 2 ? "H, W" : "D, H, W", nsp + 1, nsp == 2 ? "H, W" : "D, H, W",
                 cx_shape_str(x, sb, sizeof sb));
    memset(g, 0, sizeof *g);
    int lead = x->ndim - nsp;
    g->planes = 1;
    for (int i = 0; i < lead; i++) g->planes *= x->shape[i];
    for (int d = 0; d < 3; d++) {
        g->in[d] = 1;
        g->k[d] = g->s[d] = 1;
        g->p[d] = 0;
    }
    int off = 3 - nsp;
    for (int d = 0; d < nsp; d++) {
        int k = o->kernel[d], s = o->stride[d] ? o->stride[d] : o->kernel[d], p = o->padding[d];
        if (k < 1 || s < 1 || p < 0)
            cx_fatal("%s: kernel, stride and padding must be positive (padding >= 0), got kernel %d, "
                     "stride %d, padding %d in spatial dim %d", op, k, o->stride[d], p, d);
        if (p > k / 2)
            cx_fatal("%s: padding %d is more than half the kernel size %d (spatial dim %d)", op, p, k, d);
        g->in[off + d] = x->shape[lead + d];
        g->k[off + d] = k;
        g->s[off + d] = s;
        g->p[off + d] = p;
    }
    bool bad = false;
    for (int d = 0; d < 3; d++) {
        g->out[d] = pool_out_size(g->in[d], g->k[d], g->s[d], g->p[d], o->ceil_mode);
        if (g->out[d] < 1) bad = true;
    }
    if (bad) {
        if (nsp == 2)
            cx_fatal("%s: input %s is too small for kernel %dx%d (stride %dx%d, padding %dx%d): output "
                     "would be %dx%d", op, cx_shape_str(x, sb, sizeof sb), g->k[1], g->k[2], g->s[1],
                     g->s[2], g->p[1], g->p[2], g->out[1], g->out[2]);
        cx_fatal("%s: input %s is too small for kernel %dx%dx%d (stride %dx%dx%d, padding %dx%dx%d): "
                 "output would be %dx%dx%d", op, cx_shape_str(x, sb, sizeof sb), g->k[0], g->k[1], g->k[2],
                 g->s[0], g->s[1], g->s[2], g->p[0], g->p[1], g->p[2], g->out[0], g->out[1], g->out[2]);
    }
    g->exclude_pad = o->exclude_pad;
    *ondim = x->ndim;
    for (int i = 0; i < lead; i++) oshape[i] = x->shape[i];
    for (int d = 0; d < nsp; d++) oshape[lead + d] = g->out[off + d];
}

/* Clipped window [lo, hi) of output index o along dim d (max pooling). */
#define WIN(g, d, o, lo, hi) do { \
    int s_ = (o) * (g)->s[d] - (g)->p[d]; \
    (hi) = s_ + (g)->k[d] < (g)->in[d] ? s_ + (g)->k[d] : (g)->in[d]; \
    (lo) = s_ > 0 ? s_ : 0; } while (0)

/* ---------------------------------------------------------------- max pooling */
/* 2x2 windows with stride 2 and no padding, every window inside the input
 * (floor mode, or ceil mode with even sizes), no pooling over depth: the
 * common CNN case. */
static bool is_pool2x2(const pool_geom *g) {
    return g->k[0] == 1 && g->s[0] == 1 && g->p[0] == 0 && g->k[1] == 2 && g->k[2] == 2 && g->s[1] == 2 &&
           g->s[2] == 2 && g->p[1] == 0 && g->p[2] == 0 && 2 * g->out[1] <= g->in[1] &&
           2 * g->out[2] <= g->in[2];
}

/* Branch-free select c ? a : b (bit masks: the loops below vectorise and the
 * scalar remainders, which dominate for short rows, do not branch on the
 * data). */
static inline float fsel(int c, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)(c != 0), ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, 4);
    return a;
}

/* n outputs of the 2x2 fast path from n pairs of the top row and n pairs of
 * the bottom row: the generic rule unrolled (the first element starts the
 * max, a strictly larger value or a NaN takes over; c = index of the winner
 * in the window, dh * 2 + dw). */
static void max2x2_run(const float *restrict top, const float *restrict bot, float *restrict y,
                       uint8_t *restrict c, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float a = top[2 * i], b = top[2 * i + 1], v2 = bot[2 * i], v3 = bot[2 * i + 1];
        float bv = a;
        int t1 = (b > bv) | (b != b);
        bv = fsel(t1, b, bv);
        int t2 = (v2 > bv) | (v2 != v2);
        bv = fsel(t2, v2, bv);
        int t3 = (v3 > bv) | (v3 != v3);
        bv = fsel(t3, v3, bv);
        y[i] = bv;
        int k = t1; /* the last element that took over */
        k = t2 ? 2 : k;
        k = t3 ? 3 : k;
        c[i] = (uint8_t)k;
    }
}

/* Average of each 2x2 window, summed in the generic order (row by row). */
static void avg2x2_run(const float *restrict top, const float *restrict bot, float *restrict y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (((top[2 * i] + top[2 * i + 1]) + bot[2 * i]) + bot[2 * i + 1]) / 4.0f;
}

/* Output rows [r0, r0 + nr) (r = plane * OH + oh) of the 2x2 fast path (max
 * pooling when code is given, else average). Short rows (LeNet: 14 and 5
 * outputs) would leave the vector loop to its scalar remainder, so their
 * input row pairs are first packed into a tile: then one run covers the
 * whole tile. */
enum { MP_TILE = 2048, MP_RUN = 64 };
static void pool2x2_rows(const float *x, float *y, uint8_t *code, int64_t r0, int64_t nr, int H, int W, int OH,
                         int OW) {
    const int64_t plane_in = (int64_t)H * W;
    if (2 * (int64_t)OW > MP_TILE / 4) {
        for (int64_t r = r0; r < r0 + nr; r++) {
            const float *src = x + (r / OH) * plane_in + (int64_t)2 * (r % OH) * W;
            if (code) max2x2_run(src, src + W, y + r * OW, code + r * OW, OW);
            else avg2x2_run(src, src + W, y + r * OW, OW);
        }
        return;
    }
    float top[MP_TILE], bot[MP_TILE];
    const int64_t per = MP_TILE / (2 * OW); /* row pairs per tile */
    for (int64_t t0 = r0; t0 < r0 + nr; t0 += per) {
        int64_t cnt = r0 + nr - t0 < per ? r0 + nr - t0 : per;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t r = t0 + i;
            const float *src = x + (r / OH) * plane_in + (int64_t)2 * (r % OH) * W;
            memcpy(top + i * 2 * OW, src, (size_t)(2 * OW) * sizeof(float));
            memcpy(bot + i * 2 * OW, src + W, (size_t)(2 * OW) * sizeof(float));
        }
        if (code) max2x2_run(top, bot, y + t0 * OW, code + t0 * OW, cnt * OW);
        else avg2x2_run(top, bot, y + t0 * OW, cnt * OW);
    }
}

/* The 2x2 fast path over the whole input (code: max pooling, else average). */
static void pool2x2(const pool_geom *g, const float *x, float *y, uint8_t *code) {
    const int H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t rows = g->planes * g->in[0] * OH, blk = 64; /* output rows per task */
    CX_OMP(parallel for if(rows * OW * 4 > CX_PAR_MIN))
    for (int64_t b0 = 0; b0 < rows; b0 += blk)
        pool2x2_rows(x, y, code, b0, rows - b0 < blk ? rows - b0 : blk, H, W, OH, OW);
}

static void max_pool2x2_backward(cx_tensor *out, float *gx) {
    const pool_geom *g = out->node->saved;
    const int H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
    const int64_t planes = g->planes * g->in[0];
    const float *go = out->grad;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        float *gxp = gx + pl * H * W;
        const float *gop = go + pl * OH * OW;
        const uint8_t *cp = g->code + pl * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            float *r0 = gxp + (int64_t)2 * oh * W;
            for (int ow = 0; ow < OW; ow++) {
                int k = cp[(int64_t)oh * OW + ow];
                r0[(k >> 1) * W + 2 * ow + (k & 1)] += gop[(int64_t)oh * OW + ow];
            }
        }
    }
}

static void max_pool_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const pool_geom *g = nd->saved;
    if (g->code) {
        max_pool2x2_backward(out, gx);
        return;
    }
    int64_t ip = plane_size(g->in), op = plane_size(g->out);
    const float *go = out->grad;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *gxp = gx + pl * ip;
        const float *gop = go + pl * op;
        const int32_t *ap = g->arg + pl * op;
        for (int64_t i = 0; i < op; i++) gxp[ap[i]] += gop[i];
    }
}

CX_OP_DEF(max_pool2d, .backward = max_pool_backward);
CX_OP_DEF(max_pool3d, .backward = max_pool_backward);

static cx_tensor *max_pool_impl(const cx_op_desc *opd, cx_tensor *x, int nsp, const cx_pool_opts *o) {
    const char *op = opd->name;
    pool_geom geo, *g = &geo;
    int oshape[CX_MAX_DIMS], ondim;
    pool_setup(op, x, nsp, o, g, oshape, &ondim);
    cx_tensor *out = cx_new_like_shape(oshape, ondim);
    int64_t ip = plane_size(g->in), opl = plane_size(g->out);
    const float *xd = CX_F(x);
    float *yd = CX_F(out);
    if (is_pool2x2(g)) {
        uint8_t *code = cx_arena_alloc((size_t)out->numel);
        pool2x2(g, xd, yd, code);
        geo.code = code;
        cx_record_saved(opd, out, &x, 1, &geo, sizeof geo);
        return out;
    }
    int32_t *arg = cx_arena_alloc((size_t)out->numel * sizeof(int32_t));
    int64_t work = out->numel * g->k[0] * g->k[1] * g->k[2];
    (void)work; /* only read by the OpenMP clause */
    const int H = g->in[1], W = g->in[2], OW = g->out[2], kw = g->k[2], sw = g->s[2], pw = g->p[2];
    /* outputs [owA, owB) have their whole window inside the row: done a run
     * of them at a time, element by element across the run (independent
     * chains instead of one serial chain of selects per output) */
    int owA = (pw + sw - 1) / sw, owB = W + pw - kw >= 0 ? (W + pw - kw) / sw + 1 : 0;
    owB = owB < OW ? owB : OW;
    owB = owB > owA ? owB : owA;
    CX_OMP(parallel for if(work > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const float *xp = xd + pl * ip;
        float *yp = yd + pl * opl;
        int32_t *ap = arg + pl * opl;
        int64_t oi = 0;
        for (int od = 0; od < g->out[0]; od++) {
            int d0, d1;
            WIN(g, 0, od, d0, d1);
            for (int oh = 0; oh < g->out[1]; oh++) {
                int h0, h1;
                WIN(g, 1, oh, h0, h1);
                for (int c0 = owA; c0 < owB; c0 += MP_RUN) {
                    const int n = owB - c0 < MP_RUN ? owB - c0 : MP_RUN;
                    float bv[MP_RUN];
                    int32_t bi[MP_RUN];
                    const int32_t first = (int32_t)(((int64_t)d0 * H + h0) * W + (int64_t)c0 * sw - pw);
                    for (int i = 0; i < n; i++) {
                        bv[i] = -INFINITY;
                        bi[i] = first + i * sw;
                    }
                    for (int id = d0; id < d1; id++)
                        for (int ih = h0; ih < h1; ih++)
                            for (int j = 0; j < kw; j++) {
                                const int32_t base = (int32_t)(((int64_t)id * H + ih) * W + (int64_t)c0 * sw - pw + j);
                                for (int i = 0; i < n; i++) {
                                    float v = xp[base + i * sw];
                                    int take = (v > bv[i]) | (v != v);
                                    bv[i] = fsel(take, v, bv[i]);
                                    bi[i] = take ? base + i * sw : bi[i];
                                }
                            }
                    for (int i = 0; i < n; i++) {
                        yp[oi + c0 + i] = bv[i];
                        ap[oi + c0 + i] = bi[i];
                    }
                }
                for (int ow = 0; ow < OW; ow++) {
                    if (ow == owA) ow = owB; /* the run above did these */
                    if (ow >= OW) break;
                    int w0, w1;
                    WIN(g, 2, ow, w0, w1);
                    /* PyTorch: start at the first in-bounds element with -inf;
                     * a strictly larger value or a NaN takes over. */
                    int32_t best = (int32_t)(((int64_t)d0 * H + h0) * W + w0);
                    float bv = -INFINITY;
                    for (int id = d0; id < d1; id++)
                        for (int ih = h0; ih < h1; ih++) {
                            int32_t row = (int32_t)(((int64_t)id * H + ih) * W);
                            for (int iw = w0; iw < w1; iw++) {
                                float v = xp[row + iw];
                                int take = (v > bv) | (v != v); /* v larger or NaN */
                                bv = fsel(take, v, bv);
                                best = take ? row + iw : best;
                            }
                        }
                    yp[oi + ow] = bv;
                    ap[oi + ow] = best;
                }
                oi += OW;
            }
        }
    }
    geo.arg = arg;
    cx_record_saved(opd, out, &x, 1, &geo, sizeof geo);
    return out;
}

/* ---------------------------------------------------------------- average pooling */
/* Window of output index o along dim d for average pooling: the clipped
 * window [lo, hi) and the PyTorch pool size (window clipped to the padded
 * input) along that dim. */
static inline void avg_win(const pool_geom *g, int d, int o, int *lo, int *hi, int *full) {
    int s = o * g->s[d] - g->p[d];
    int e = s + g->k[d];
    if (e > g->in[d] + g->p[d]) e = g->in[d] + g->p[d];
    *full = e - s;
    *lo = s > 0 ? s : 0;
    *hi = e < g->in[d] ? e : g->in[d];
}

static void avg_pool_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const pool_geom *g = nd->saved;
    if (is_pool2x2(g)) { /* each input element in at most one window */
        const int H = g->in[1], W = g->in[2], OH = g->out[1], OW = g->out[2];
        const int64_t planes = g->planes * g->in[0];
        const float *go = out->grad;
        CX_OMP(parallel for if(out->numel * 4 > CX_PAR_MIN))
        for (int64_t pl = 0; pl < planes; pl++)
            for (int oh = 0; oh < OH; oh++) {
                float *r0 = gx + pl * H * W + (int64_t)2 * oh * W, *r1 = r0 + W;
                const float *gr = go + (pl * OH + oh) * OW;
                for (int ow = 0; ow < OW; ow++) {
                    float gv = gr[ow] / 4.0f;
                    r0[2 * ow] += gv;
                    r0[2 * ow + 1] += gv;
                    r1[2 * ow] += gv;
                    r1[2 * ow + 1] += gv;
                }
            }
        return;
    }
    int64_t ip = plane_size(g->in), opl = plane_size(g->out);
    const int H = g->in[1], W = g->in[2];
    const float *go = out->grad;
    int64_t work = out->numel * g->k[0] * g->k[1] * g->k[2];
    (void)work; /* only read by the OpenMP clause */
    CX_OMP(parallel for if(work > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *gxp = gx + pl * ip;
        const float *gop = go + pl * opl;
        int64_t oi = 0;
        for (int od = 0; od < g->out[0]; od++) {
            int d0, d1, fd;
            avg_win(g, 0, od, &d0, &d1, &fd);
            for (int oh = 0; oh < g->out[1]; oh++) {
                int h0, h1, fh;
                avg_win(g, 1, oh, &h0, &h1, &fh);
                for (int ow = 0; ow < g->out[2]; ow++, oi++) {
                    int w0, w1, fw;
                    avg_win(g, 2, ow, &w0, &w1, &fw);
                    if (d0 >= d1 || h0 >= h1 || w0 >= w1) continue;
                    int64_t div = g->exclude_pad ? (int64_t)(d1 - d0) * (h1 - h0) * (w1 - w0)
                                                 : (int64_t)fd * fh * fw;
                    float gv = gop[oi] / (float)div;
                    for (int id = d0; id < d1; id++)
                        for (int ih = h0; ih < h1; ih++) {
                            float *r = gxp + ((int64_t)id * H + ih) * W;
                            for (int iw = w0; iw < w1; iw++) r[iw] += gv;
                        }
                }
            }
        }
    }
}

CX_OP_DEF(avg_pool2d, .backward = avg_pool_backward);
CX_OP_DEF(avg_pool3d, .backward = avg_pool_backward);

static cx_tensor *avg_pool_impl(const cx_op_desc *opd, cx_tensor *x, int nsp, const cx_pool_opts *o) {
    const char *op = opd->name;
    pool_geom geo, *g = &geo;
    int oshape[CX_MAX_DIMS], ondim;
    pool_setup(op, x, nsp, o, g, oshape, &ondim);
    cx_tensor *out = cx_new_like_shape(oshape, ondim);
    int64_t ip = plane_size(g->in), opl = plane_size(g->out);
    const int H = g->in[1], W = g->in[2];
    const float *xd = CX_F(x);
    float *yd = CX_F(out);
    int64_t work = out->numel * g->k[0] * g->k[1] * g->k[2];
    (void)work; /* only read by the OpenMP clause */
    int64_t gen_planes = g->planes; /* planes left to the generic loop */
    if (is_pool2x2(g)) { /* no padding: the divisor is 4 with or without exclude_pad */
        pool2x2(g, xd, yd, NULL);
        gen_planes = 0;
    }
    CX_OMP(parallel for if(work > CX_PAR_MIN))
    for (int64_t pl = 0; pl < gen_planes; pl++) {
        const float *xp = xd + pl * ip;
        float *yp = yd + pl * opl;
        int64_t oi = 0;
        for (int od = 0; od < g->out[0]; od++) {
            int d0, d1, fd;
            avg_win(g, 0, od, &d0, &d1, &fd);
            for (int oh = 0; oh < g->out[1]; oh++) {
                int h0, h1, fh;
                avg_win(g, 1, oh, &h0, &h1, &fh);
                for (int ow = 0; ow < g->out[2]; ow++, oi++) {
                    int w0, w1, fw;
                    avg_win(g, 2, ow, &w0, &w1, &fw);
                    if (d0 >= d1 || h0 >= h1 || w0 >= w1) {
                        yp[oi] = 0.0f;
                        continue;
                    }
                    float sum = 0.0f;
                    for (int id = d0; id < d1; id++)
                        for (int ih = h0; ih < h1; ih++) {
                            const float *r = xp + ((int64_t)id * H + ih) * W;
                            for (int iw = w0; iw < w1; iw++) sum += r[iw];
                        }
                    int64_t div = g->exclude_pad ? (int64_t)(d1 - d0) * (h1 - h0) * (w1 - w0)
                                                 : (int64_t)fd * fh * fw;
                    yp[oi] = sum / (float)div;
                }
            }
        }
    }
    cx_record_saved(opd, out, &x, 1, &geo, sizeof geo);
    return out;
}

/* ---------------------------------------------------------------- public pooling */
static cx_pool_opts opts2(int kh, int kw, int sh, int sw, int ph, int pw) {
    cx_pool_opts o = cx_pool2d_defaults(kh, kw);
    o.stride[0] = sh;
    o.stride[1] = sw;
    o.padding[0] = ph;
    o.padding[1] = pw;
    return o;
}
static cx_pool_opts opts3(int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph, int pw) {
    cx_pool_opts o = cx_pool3d_defaults(kd, kh, kw);
    o.stride[0] = sd;
    o.stride[1] = sh;
    o.stride[2] = sw;
    o.padding[0] = pd;
    o.padding[1] = ph;
    o.padding[2] = pw;
    return o;
}

cx_tensor *cx_max_pool2d(cx_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw) {
    cx_pool_opts o = opts2(kh, kw, sh, sw, ph, pw);
    return max_pool_impl(&cx_opd_max_pool2d, x, 2, &o);
}
cx_tensor *cx_max_pool2d_ex(cx_tensor *x, const cx_pool_opts *o) { return max_pool_impl(&cx_opd_max_pool2d, x, 2, o); }
cx_tensor *cx_max_pool3d(cx_tensor *x, int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph,
                         int pw) {
    cx_pool_opts o = opts3(kd, kh, kw, sd, sh, sw, pd, ph, pw);
    return max_pool_impl(&cx_opd_max_pool3d, x, 3, &o);
}
cx_tensor *cx_max_pool3d_ex(cx_tensor *x, const cx_pool_opts *o) { return max_pool_impl(&cx_opd_max_pool3d, x, 3, o); }

cx_tensor *cx_avg_pool2d(cx_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw) {
    cx_pool_opts o = opts2(kh, kw, sh, sw, ph, pw);
    return avg_pool_impl(&cx_opd_avg_pool2d, x, 2, &o);
}
cx_tensor *cx_avg_pool2d_ex(cx_tensor *x, const cx_pool_opts *o) { return avg_pool_impl(&cx_opd_avg_pool2d, x, 2, o); }
cx_tensor *cx_avg_pool3d(cx_tensor *x, int kd, int kh, int kw, int sd, int sh, int sw, int pd, int ph,
                         int pw) {
    cx_pool_opts o = opts3(kd, kh, kw, sd, sh, sw, pd, ph, pw);
    return avg_pool_impl(&cx_opd_avg_pool3d, x, 3, &o);
}
cx_tensor *cx_avg_pool3d_ex(cx_tensor *x, const cx_pool_opts *o) { return avg_pool_impl(&cx_opd_avg_pool3d, x, 3, o); }

/* ---------------------------------------------------------------- adaptive average */
typedef struct {
    int64_t planes;
    int H, W, oh, ow;
} adapt_geom;

static inline int ad_start(int o, int out, int in) { return (int)(((int64_t)o * in) / out); }
static inline int ad_end(int o, int out, int in) { return (int)(((int64_t)(o + 1) * in + out - 1) / out); }

static void adaptive_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const adapt_geom *g = nd->saved;
    const float *go = out->grad;
    int64_t ip = (int64_t)g->H * g->W, opl = (int64_t)g->oh * g->ow;
    CX_OMP(parallel for if(nd->in[0]->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *gxp = gx + pl * ip;
        const float *gop = go + pl * opl;
        for (int i = 0; i < g->oh; i++) {
            int h0 = ad_start(i, g->oh, g->H), h1 = ad_end(i, g->oh, g->H);
            for (int j = 0; j < g->ow; j++) {
                int w0 = ad_start(j, g->ow, g->W), w1 = ad_end(j, g->ow, g->W);
                float gv = gop[(int64_t)i * g->ow + j] / (float)((h1 - h0) * (w1 - w0));
                for (int h = h0; h < h1; h++) {
                    float *r = gxp + (int64_t)h * g->W;
                    for (int w = w0; w < w1; w++) r[w] += gv;
                }
            }
        }
    }
}

CX_OP_DEF(adaptive_avg_pool2d, .backward = adaptive_backward);
CX_OP_DEF(global_avg_pool2d, .backward = adaptive_backward);

static cx_tensor *adaptive_impl(const cx_op_desc *opd, cx_tensor *x, int oh, int ow) {
    const char *op = opd->name;
    char sb[96];
    cx_need_f32(op, x);
    if (x->ndim != 3 && x->ndim != 4)
        cx_fatal("%s: expected a 4-D input [N, C, H, W] or a 3-D input [C, H, W], got %s", op,
                 cx_shape_str(x, sb, sizeof sb));
    int H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (oh < 1 || ow < 1) cx_fatal("%s: output size must be positive, got %dx%d", op, oh, ow);
    if (H < 1 || W < 1) cx_fatal("%s: empty spatial dims in input %s", op, cx_shape_str(x, sb, sizeof sb));
    adapt_geom geo = {1, H, W, oh, ow};
    for (int i = 0; i < x->ndim - 2; i++) geo.planes *= x->shape[i];
    int oshape[4];
    for (int i = 0; i < x->ndim - 2; i++) oshape[i] = x->shape[i];
    oshape[x->ndim - 2] = oh;
    oshape[x->ndim - 1] = ow;
    cx_tensor *out = cx_new_like_shape(oshape, x->ndim);
    const float *xd = CX_F(x);
    float *yd = CX_F(out);
    int64_t ip = (int64_t)H * W, opl = (int64_t)oh * ow;
    CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < geo.planes; pl++) {
        const float *xp = xd + pl * ip;
        float *yp = yd + pl * opl;
        for (int i = 0; i < oh; i++) {
            int h0 = ad_start(i, oh, H), h1 = ad_end(i, oh, H);
            for (int j = 0; j < ow; j++) {
                int w0 = ad_start(j, ow, W), w1 = ad_end(j, ow, W);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++) {
                    const float *r = xp + (int64_t)h * W;
                    for (int w = w0; w < w1; w++) sum += r[w];
                }
                yp[(int64_t)i * ow + j] = sum / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
    cx_record_saved(opd, out, &x, 1, &geo, sizeof geo);
    return out;
}

cx_tensor *cx_adaptive_avg_pool2d(cx_tensor *x, int out_h, int out_w) {
    return adaptive_impl(&cx_opd_adaptive_avg_pool2d, x, out_h, out_w);
}

cx_tensor *cx_global_avg_pool2d(cx_tensor *x) {
    char sb[96];
    if (x && x->ndim != 4)
        cx_fatal("global_avg_pool2d: expected a 4-D input [N, C, H, W], got %s", cx_shape_str(x, sb, sizeof sb));
    return adaptive_impl(&cx_opd_global_avg_pool2d, x, 1, 1);
}

/* ---------------------------------------------------------------- modules */
typedef struct {
    cx_module base;
    cx_pool_kind kind;
    cx_pool_opts o;
} pool_m;

static const char *const pool_kind_names[] = {"MaxPool2d", "AvgPool2d", "MaxPool3d", "AvgPool3d"};

static cx_tensor *pool_fwd(cx_module *m, cx_tensor *x) {
    pool_m *p = (pool_m *)m;
    switch (p->kind) {
    case CX_POOL_MAX2D: return cx_max_pool2d_ex(x, &p->o);
    case CX_POOL_AVG2D: return cx_avg_pool2d_ex(x, &p->o);
    case CX_POOL_MAX3D: return cx_max_pool3d_ex(x, &p->o);
    case CX_POOL_AVG3D: return cx_avg_pool3d_ex(x, &p->o);
    }
    cx_fatal("pool: unknown kind %d", (int)p->kind);
}

/* "2", "(2,3)" or "(1,2,3)" for one option array. */
static void fmt_tuple(char *buf, size_t n, const int *v, int nsp) {
    bool same = true;
    for (int d = 1; d < nsp; d++) same &= v[d] == v[0];
    if (same) snprintf(buf, n, "%d", v[0]);
    else if (nsp == 2) snprintf(buf, n, "(%d,%d)", v[0], v[1]);
    else snprintf(buf, n, "(%d,%d,%d)", v[0], v[1], v[2]);
}

static void pool_describe(const cx_module *m, char *buf, size_t n) {
    const pool_m *p = (const pool_m *)m;
    int nsp = p->kind == CX_POOL_MAX3D || p->kind == CX_POOL_AVG3D ? 3 : 2;
    bool avg = p->kind == CX_POOL_AVG2D || p->kind == CX_POOL_AVG3D;
    int st[3], zero = 1;
    for (int d = 0; d < 3; d++) {
        st[d] = p->o.stride[d] ? p->o.stride[d] : p->o.kernel[d];
        if (d < nsp && p->o.padding[d]) zero = 0;
    }
    char k[40], s[40], pd[48] = "";
    fmt_tuple(k, sizeof k, p->o.kernel, nsp);
    fmt_tuple(s, sizeof s, st, nsp);
    if (!zero) {
        char t[40];
        fmt_tuple(t, sizeof t, p->o.padding, nsp);
        snprintf(pd, sizeof pd, ", p=%s", t);
    }
    snprintf(buf, n, "%s(k=%s, s=%s%s%s%s)", pool_kind_names[p->kind], k, s, pd,
             p->o.ceil_mode ? ", ceil" : "", avg && p->o.exclude_pad ? ", exclude_pad" : "");
}

static const cx_module_ops pool_ops[4] = {
    {.kind = "MaxPool2d", .forward = pool_fwd, .describe = pool_describe, .split_safe = true},
    {.kind = "AvgPool2d", .forward = pool_fwd, .describe = pool_describe, .split_safe = true},
    {.kind = "MaxPool3d", .forward = pool_fwd, .describe = pool_describe, .split_safe = true},
    {.kind = "AvgPool3d", .forward = pool_fwd, .describe = pool_describe, .split_safe = true}};

cx_pool_opts cx_pool2d_defaults(int kh, int kw) {
    return (cx_pool_opts){{kh, kw, 1}, {0, 0, 0}, {0, 0, 0}, false, false};
}
cx_pool_opts cx_pool3d_defaults(int kd, int kh, int kw) {
    return (cx_pool_opts){{kd, kh, kw}, {0, 0, 0}, {0, 0, 0}, false, false};
}

cx_module *cx_pool_new(cx_pool_kind kind, const cx_pool_opts *o) {
    if ((unsigned)kind > (unsigned)CX_POOL_AVG3D) cx_fatal("pool: unknown kind %d", (int)kind);
    if (!o) cx_fatal("%s: NULL options", pool_kind_names[kind]);
    int nsp = kind == CX_POOL_MAX3D || kind == CX_POOL_AVG3D ? 3 : 2;
    for (int d = 0; d < nsp; d++) {
        if (o->kernel[d] < 1 || o->stride[d] < 0 || o->padding[d] < 0)
            cx_fatal("%s: kernel must be >= 1, stride and padding >= 0 (got kernel %d, stride %d, padding %d)",
                     pool_kind_names[kind], o->kernel[d], o->stride[d], o->padding[d]);
        if (o->padding[d] > o->kernel[d] / 2)
            cx_fatal("%s: padding %d is more than half the kernel size %d", pool_kind_names[kind],
                     o->padding[d], o->kernel[d]);
    }
    pool_m *p = cx_xcalloc(1, sizeof *p);
    cx_module_init(&p->base, &pool_ops[kind]);
    p->kind = kind;
    p->o = *o;
    for (int d = nsp; d < 3; d++) {
        p->o.kernel[d] = 1;
        p->o.stride[d] = 0;
        p->o.padding[d] = 0;
    }
    return &p->base;
}

static cx_module *pool_square(cx_pool_kind kind, int k, int s, int p) {
    cx_pool_opts o = {{k, k, k}, {s, s, s}, {p, p, p}, false, false};
    return cx_pool_new(kind, &o);
}
cx_module *cx_maxpool2d_new(int kernel, int stride, int padding) {
    return pool_square(CX_POOL_MAX2D, kernel, stride, padding);
}
cx_module *cx_avgpool2d_new(int kernel, int stride, int padding) {
    return pool_square(CX_POOL_AVG2D, kernel, stride, padding);
}
cx_module *cx_maxpool3d_new(int kernel, int stride, int padding) {
    return pool_square(CX_POOL_MAX3D, kernel, stride, padding);
}
cx_module *cx_avgpool3d_new(int kernel, int stride, int padding) {
    return pool_square(CX_POOL_AVG3D, kernel, stride, padding);
}

typedef struct {
    cx_module base;
    int oh, ow;
} adapt_m;
static cx_tensor *adapt_fwd(cx_module *m, cx_tensor *x) {
    adapt_m *a = (adapt_m *)m;
    return cx_adaptive_avg_pool2d(x, a->oh, a->ow);
}
static void adapt_describe(const cx_module *m, char *buf, size_t n) {
    const adapt_m *a = (const adapt_m *)m;
    snprintf(buf, n, "AdaptiveAvgPool2d(%dx%d)", a->oh, a->ow);
}
static const cx_module_ops adapt_ops = {.kind = "AdaptiveAvgPool2d", .forward = adapt_fwd,
                                        .describe = adapt_describe, .split_safe = true};

cx_module *cx_adaptive_avgpool2d_new(int out_h, int out_w) {
    if (out_h < 1 || out_w < 1) cx_fatal("AdaptiveAvgPool2d: output size must be positive, got %dx%d", out_h, out_w);
    adapt_m *a = cx_xcalloc(1, sizeof *a);
    cx_module_init(&a->base, &adapt_ops);
    a->oh = out_h;
    a->ow = out_w;
    return &a->base;
}
