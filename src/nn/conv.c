/* Convolutions (1-D, 2-D, 3-D, transposed): im2col + cx_sgemm, col2im.
 *
 * Every op is described by a "conv view" geometry: a plain convolution from
 * a conv-input [N, C, in...] to a conv-output [N, O, out...] with a weight
 * [O, C/G, k...]. Three primitives work on that view:
 *   fwd     Y = W * im2col(X)                 (+ accumulate into Y)
 *   bdata   dX += col2im(W^T dY)
 *   bweight dW += dY im2col(X)^T
 * A convolution uses them directly; a transposed convolution is the same
 * geometry read backwards (its input is the conv-output, its result the
 * conv-input): forward = bdata, input gradient = fwd, weight gradient =
 * bweight with the roles of the two activations swapped.
 *
 * Spatial dims are padded to 3 (D, H, W) with leading size-1 dims. Column
 * buffers hold K = C/G * kd*kh*kw rows and a tile of whole output rows
 * (OW-long); they come from the arena and are released before returning. */
#include "conv_kern.h"
#include "conv_pack.h"
#include "../cpu/transpose.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Upper bound of one column buffer (bytes); a tile is at least one row. */
#define COL_BYTES ((size_t)4 << 20)
/* Fixed image ranges of the weight gradient: at most this many, and their
 * partial sums at most PARTIAL_BYTES in total. */
#define MAX_SLOTS 8
#define PARTIAL_BYTES ((size_t)32 << 20)

typedef struct {
    int N, C, O, G, Cg, Og;
    int in[3], out[3], k[3], s[3], p[3], d[3];
    int64_t inP, outP, K; /* spatial sizes, K = Cg * prod(k) */
    int rows;             /* out[0] * out[1] */
    int tile_rows;        /* output rows per column tile */
    bool direct;          /* 1x1, stride 1, no padding: the column matrix is X itself */
} geom;

typedef struct {
    geom g;
    bool transposed;
} conv_saved;

static int nthreads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}
static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int cx_conv_out_size(int in, int kernel, int stride, int pad, int dil) {
    if (stride < 1) return 0;
    int64_t span = (int64_t)in + 2 * (int64_t)pad - (int64_t)dil * (kernel - 1) - 1;
    if (span < 0) return 0;
    return (int)(span / stride + 1);
}

int cx_conv_transpose_out_size(int in, int kernel, int stride, int pad, int dil, int out_pad) {
    int64_t v = ((int64_t)in - 1) * stride - 2 * (int64_t)pad + (int64_t)dil * (kernel - 1) + out_pad + 1;
    return v > INT32_MAX ? INT32_MAX : (int)v;
}

/* ---------------------------------------------------------------- im2col / col2im */
/* Valid output columns [lo, hi) of a kernel column whose input column is
 * ow * s + off. */
static inline void col_range(int OW, int inW, int s, int off, int *lo, int *hi) {
    int l = off < 0 ? (-off + s - 1) / s : 0;
    int h = inW - 1 - off < 0 ? 0 : (inW - 1 - off) / s + 1;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col[K, (r1-r0)*OW] for output rows [r0, r1) of image-group x [Cg, inP]. */
static void im2col(const geom *g, const float *x, int r0, int r1, float *col, bool par) {
    const int OW = g->out[2], OH = g->out[1], inD = g->in[0], inH = g->in[1], inW = g->in[2];
    const int kd_n = g->k[0], kh_n = g->k[1], kw_n = g->k[2];
    const int64_t L = (int64_t)(r1 - r0) * OW;
    par = par && g->Cg > 1 && g->K * L > CX_PAR_MIN;
    (void)par;
    CX_PFOR(par,
    for (int c = 0; c < g->Cg; c++) {
        const float *xc = x + (size_t)c * g->inP;
        for (int kd = 0; kd < kd_n; kd++)
            for (int kh = 0; kh < kh_n; kh++)
                for (int kw = 0; kw < kw_n; kw++) {
                    int64_t krow = (((int64_t)c * kd_n + kd) * kh_n + kh) * kw_n + kw;
                    float *dst = col + (size_t)(krow * L);
                    const int off = kw * g->d[2] - g->p[2], s = g->s[2];
                    int lo, hi;
                    col_range(OW, inW, s, off, &lo, &hi);
                    for (int r = r0; r < r1; r++) {
                        float *drow = dst + (size_t)(r - r0) * OW;
                        int od = r / OH, oh = r - od * OH;
                        int id = od * g->s[0] - g->p[0] + kd * g->d[0];
                        int ih = oh * g->s[1] - g->p[1] + kh * g->d[1];
                        if (id < 0 || id >= inD || ih < 0 || ih >= inH) {
                            memset(drow, 0, (size_t)OW * sizeof(float));
                            continue;
                        }
                        const float *src = xc + ((size_t)id * inH + ih) * inW + off;
                        for (int ow = 0; ow < lo; ow++) drow[ow] = 0.0f;
                        if (s == 1) {
                            CX_OMP(simd)
                            for (int ow = lo; ow < hi; ow++) drow[ow] = src[ow];
                        } else {
                            for (int ow = lo; ow < hi; ow++) drow[ow] = src[(size_t)ow * s];
                        }
                        for (int ow = hi; ow < OW; ow++) drow[ow] = 0.0f;
                    }
                }
    });
}

/* x [Cg, inP] += col2im(col) for output rows [r0, r1). Channels are
 * independent, so they may run in parallel. */
static void col2im(const geom *g, const float *col, int r0, int r1, float *x, bool par) {
    const int OW = g->out[2], OH = g->out[1], inD = g->in[0], inH = g->in[1], inW = g->in[2];
    const int kd_n = g->k[0], kh_n = g->k[1], kw_n = g->k[2];
    const int64_t L = (int64_t)(r1 - r0) * OW;
    par = par && g->Cg > 1 && g->K * L > CX_PAR_MIN;
    (void)par;
    CX_PFOR(par,
    for (int c = 0; c < g->Cg; c++) {
        float *xc = x + (size_t)c * g->inP;
        for (int kd = 0; kd < kd_n; kd++)
            for (int kh = 0; kh < kh_n; kh++)
                for (int kw = 0; kw < kw_n; kw++) {
                    int64_t krow = (((int64_t)c * kd_n + kd) * kh_n + kh) * kw_n + kw;
                    const float *srcc = col + (size_t)(krow * L);
                    const int off = kw * g->d[2] - g->p[2], s = g->s[2];
                    int lo, hi;
                    col_range(OW, inW, s, off, &lo, &hi);
                    for (int r = r0; r < r1; r++) {
                        const float *srow = srcc + (size_t)(r - r0) * OW;
                        int od = r / OH, oh = r - od * OH;
                        int id = od * g->s[0] - g->p[0] + kd * g->d[0];
                        int ih = oh * g->s[1] - g->p[1] + kh * g->d[1];
                        if (id < 0 || id >= inD || ih < 0 || ih >= inH) continue;
                        float *dst = xc + ((size_t)id * inH + ih) * inW + off;
                        if (s == 1) {
                            CX_OMP(simd)
                            for (int ow = lo; ow < hi; ow++) dst[ow] += srow[ow];
                        } else {
                            for (int ow = lo; ow < hi; ow++) dst[(size_t)ow * s] += srow[ow];
                        }
                    }
                }
    });
}

/* ---------------------------------------------------------------- direct kernels */
/* Stride-1 convolutions (forward, and the input gradient as a convolution of
 * the padded output gradient with the flipped, transposed weight) and the
 * weight gradient of any convolution run without a column matrix: a register
 * tile of DMR output channels x DNV vectors of DV outputs accumulates
 *   acc[i][v] += a[t][i] * B_v[t]       over the reduction index t,
 * where a is a packed weight panel (or a channels-last output gradient) read
 * by broadcast, and each B_v[t] is a vector loaded straight from a
 * zero-padded copy of one image at a per-t offset (a table). Nothing is
 * packed per output tile, so the only per-image work besides the products is
 * the padded copy. Each output element is summed in one fixed order whatever
 * the thread count or the way images are batched. */
/* Padded images of one batch (forward / input gradient), or one channels-last
 * image plus its output gradient (weight gradient): at most this many bytes.
 * Larger images take the column-matrix path. */
#define PAD_BYTES ((size_t)8 << 20)
/* Reduction block of the forward kernels (weight panel rows kept in cache),
 * and of the weight gradient (output positions: its input vectors stay in L1
 * while every block of output channels uses them). */
#ifndef KBLOCK
#define KBLOCK 256
#endif
#ifndef QBLOCK
#define QBLOCK 256
#endif

cx_conv_opts cx_conv_defaults(void) {
    return (cx_conv_opts){{1, 1, 1}, {0, 0, 0}, {1, 1, 1}, {0, 0, 0}, 1};
}

/* CX_CONV_ALGO / cx_conv_set_algo (cortex/conv.h). */
/* process-wide; every thread that reads it first computes the same value */
/* -1: unread; 0: gemm; 1: direct; 2: auto; 3: auto with Winograd on small images too */
static _Atomic int conv_algo = -1;
static int algo(void) {
    int v = atomic_load(&conv_algo);
    if (v < 0) {
        const char *e = getenv("CX_CONV_ALGO");
        v = e && !strcmp(e, "gemm")       ? 0
            : e && !strcmp(e, "direct")   ? 1
            : e && !strcmp(e, "winograd") ? 3
                                          : 2;
        int expect = -1;
        atomic_compare_exchange_strong(&conv_algo, &expect, v);
        v = atomic_load(&conv_algo);
    }
    return v;
}
void cx_conv_set_algo(cx_conv_algo a) {
    if (a != CX_CONV_AUTO && a != CX_CONV_DIRECT && a != CX_CONV_GEMM && a != CX_CONV_WINOGRAD)
        cx_fatal("cx_conv_set_algo: unknown algorithm %d (expected CX_CONV_AUTO, CX_CONV_DIRECT, "
                 "CX_CONV_GEMM or CX_CONV_WINOGRAD)", (int)a);
    atomic_store(&conv_algo, a == CX_CONV_GEMM       ? 0
                             : a == CX_CONV_DIRECT   ? 1
                             : a == CX_CONV_WINOGRAD ? 3
                                                     : 2);
}
cx_conv_algo cx_conv_get_algo(void) {
    int v = algo();
    return v == 0 ? CX_CONV_GEMM : v == 1 ? CX_CONV_DIRECT : v == 3 ? CX_CONV_WINOGRAD : CX_CONV_AUTO;
}
static bool direct_enabled(void) { return algo() >= 1; }

/* A convolution of one group: input [Ci, in...] -> output [Co, out...],
 * leading padding p (may be negative: cropping), stride s. With stride 1 the
 * padded image is one plane per channel; with a stride s > 1 it is split
 * into s^3 polyphase planes, plane (a, b, c) holding the padded positions
 * (s z + a, s y + b, s x + c) at (z, y, x): the taps of every output are
 * then at fixed offsets from the output's own position, as at stride 1. */
typedef struct {
    int Ci, Co;
    int in[3], out[3], k[3], d[3], p[3], s[3];
    int pd[3];          /* dims of a (polyphase) plane: out - 1 + ceil((d*(k-1) + 1) / s) */
    int nph;            /* planes per channel: s0 * s1 * s2 */
    int64_t phP;        /* floats of one plane */
    int64_t inP, outP, padP; /* padP: floats per channel, nph * phP */
    int kks, K;         /* prod k, Ci * prod k */
    int vpr;            /* vectors per output row */
    int64_t vpi;        /* vectors per image */
    size_t img_floats;  /* one padded image (+ slack for the last vector) */
    bool flat;          /* narrow 2-D output: vectors over the padded-width rows */
} dgeom;

/* Fraction of the register tiles' lanes that hold real outputs. */
static double dgeom_use(const dgeom *dg) {
    int ots = (dg->Co + DMR - 1) / DMR;
    return (double)dg->Co / (ots * DMR) * (double)dg->out[2] / ((double)dg->vpr * DV);
}

/* Fill dg for a stride-1 convolution; false when the direct path does not
 * apply (too big, or too few useful lanes). */
static bool dgeom_init_s(dgeom *dg, int Ci, int Co, const int in[3], const int out[3],
                         const int k[3], const int d[3], const int p[3], const int s[3]) {
    memset(dg, 0, sizeof *dg);
    dg->Ci = Ci;
    dg->Co = Co;
    dg->inP = dg->outP = dg->phP = 1;
    dg->kks = dg->nph = 1;
    for (int i = 0; i < 3; i++) {
        dg->in[i] = in[i];
        dg->out[i] = out[i];
        dg->k[i] = k[i];
        dg->d[i] = d[i];
        dg->p[i] = p[i];
        dg->s[i] = s[i];
        dg->pd[i] = out[i] - 1 + (d[i] * (k[i] - 1) + 1 + s[i] - 1) / s[i];
        dg->inP *= in[i];
        dg->outP *= out[i];
        dg->phP *= dg->pd[i];
        dg->nph *= s[i];
        dg->kks *= k[i];
    }
    dg->padP = dg->phP * dg->nph;
    dg->K = Ci * dg->kks;
    dg->vpr = (out[2] + DV - 1) / DV;
    dg->vpi = (int64_t)out[0] * out[1] * dg->vpr;
    dg->img_floats = (size_t)Ci * (size_t)dg->padP + DV;
    if (dg->img_floats * sizeof(float) > PAD_BYTES || dg->outP <= 0) return false;
    if (dgeom_use(dg) >= 0.5) return true;
    /* Outputs narrower than a vector (7x7 at the end of a small ResNet):
     * vectors over positions q = oh * pd[2] + ow of the padded-width rows,
     * the columns ow >= out[2] computed and dropped. The taps of q read at
     * most pd[2] + DV floats past the image: slack for them. */
    if (out[0] != 1) return false;
    const int64_t nq = (int64_t)out[1] * dg->pd[2];
    const int64_t vpi = (nq + DV - 1) / DV;
    const int ots = (Co + DMR - 1) / DMR;
    const double use = (double)Co / (ots * DMR) * (double)dg->outP / ((double)vpi * DV);
    if (use < 0.5) return false;
    dg->flat = true;
    dg->vpr = 0;
    dg->vpi = vpi;
    dg->img_floats = (size_t)Ci * (size_t)dg->padP + 2 * DV + (size_t)dg->pd[2];
    return dg->img_floats * sizeof(float) <= PAD_BYTES;
}
static bool dgeom_init(dgeom *dg, int Ci, int Co, const int in[3], const int out[3],
                       const int k[3], const int d[3], const int p[3]) {
    static const int one[3] = {1, 1, 1};
    return dgeom_init_s(dg, Ci, Co, in, out, k, d, p, one);
}

/* The first i >= 0 with i * s >= num, at most cap: the ranges of plane
 * rows and columns with data. */
static inline int clamp_first(int num, int s, int cap) {
    const int i = num <= 0 ? 0 : (num + s - 1) / s;
    return i < cap ? i : cap;
}

/* dst[x] = src[2x], x < n: the even elements, 16 at a time by one permute
 * of 32 (loads stop at the last element used; a strided scalar copy was
 * most of pad_image's time for a small ResNet at batch 1). */
static inline void take_even(float *dst, const float *src, int n) {
    int x = 0;
#if defined(__AVX512F__)
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; x < n; x += DV) {
        const float *q = src + 2 * x;
        const int rem = n - x < DV ? n - x : DV, need = 2 * rem - 1;
        const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(need >= 16 ? 0xFFFFu : (1u << need) - 1), q);
        const __m512 hi = need > 16 ? _mm512_maskz_loadu_ps((__mmask16)((1u << (need - 16)) - 1), q + 16)
                                    : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(dst + x, (__mmask16)(rem == 16 ? 0xFFFFu : (1u << rem) - 1),
                              _mm512_permutex2var_ps(lo, even, hi));
    }
#endif
    for (; x < n; x++) dst[x] = src[2 * x];
}

/* dst[Ci, planes, pd...] = src[Ci, in...] shifted by the leading padding
 * (each plane holding one phase of the stride), zeros elsewhere.
 *
 * Written in memory order (channel, plane, row, column) with whole
 * vectors: a cursor runs through the image; before each row with data,
 * zeros from the cursor up to the row's first data column; then the row's
 * data, its last vector loaded masked (zeros past the row) and stored
 * whole. A store may run up to DV - 1 floats past where it should end,
 * always into cells that are written after it (the next row's padding or
 * data), or into the DV floats of slack after the last row; the zeros
 * after the last row stop exactly at the image's end, since the next image
 * may be padded by another thread. Rows and planes without data are
 * skipped by their ranges, computed once per plane: the row loop has no
 * tests and no divisions. (The version with masked stores per row was 15%
 * of a small ResNet's inference at batch 1; the one with per-row tests,
 * scalar padding and a memset of the strided images first, 12%.) */
static void pad_image(const dgeom *dg, const float *src, float *dst) {
    const int P0 = dg->pd[0], P1 = dg->pd[1], P2 = dg->pd[2];
    const int s0 = dg->s[0], s1 = dg->s[1], s2 = dg->s[2];
    const int in0 = dg->in[0], in1 = dg->in[1], in2 = dg->in[2];
    const int p0 = dg->p[0], p1 = dg->p[1], p2 = dg->p[2];
    const dvec zero = {0};
    float *cur = dst;
    for (int c = 0; c < dg->Ci; c++) {
        const float *sc = src + (size_t)c * dg->inP;
        float *plane = dst + (size_t)c * dg->padP;
        /* plane (a, b, e) holds the padded positions (s0 z + a, s1 y + b, s2 x + e),
         * i.e. the input's (s0 z + a - p0, s1 y + b - p1, s2 x + e - p2) */
        for (int a = 0; a < s0; a++)
            for (int b = 0; b < s1; b++)
                for (int e = 0; e < s2; e++, plane += dg->phP) {
                    const int zlo = clamp_first(p0 - a, s0, P0), zhi = clamp_first(in0 + p0 - a, s0, P0);
                    const int ylo = clamp_first(p1 - b, s1, P1), yhi = clamp_first(in1 + p1 - b, s1, P1);
                    const int xlo = clamp_first(p2 - e, s2, P2), xhi = clamp_first(in2 + p2 - e, s2, P2);
                    const int w = xhi - xlo, off = xlo * s2 + e - p2; /* first source column */
                    if (w <= 0) continue;
                    for (int zi = zlo; zi < zhi; zi++) {
                        const float *s = sc + ((size_t)(zi * s0 + a - p0) * in1 + (size_t)(ylo * s1 + b - p1)) * in2 + off;
                        float *row = plane + ((size_t)zi * P1 + ylo) * P2 + xlo;
                        for (int y = ylo; y < yhi; y++, s += (size_t)s1 * in2, row += P2) {
                            for (; cur < row; cur += DV) vst(cur, zero);
                            int x = 0;
                            if (s2 == 1) {
                                for (; x + DV <= w; x += DV) vst(row + x, vld(s + x));
                                if (x < w) vst(row + x, vld_part(s + x, w - x));
                            } else if (s2 == 2) {
                                take_even(row, s, w);
                            } else {
                                for (; x < w; x++) row[x] = s[(size_t)x * s2];
                            }
                            if (cur < row + w) cur = row + w;
                        }
                    }
                }
    }
    float *end = dst + dg->img_floats;
    for (; cur + DV <= end; cur += DV) vst(cur, zero);
    if (cur < end) memset(cur, 0, (size_t)(end - cur) * sizeof(float));
}

/* The flipped weight of a convolution's input gradient, packed in blocks of
 * `width` channels: dst[(co / width) * K * width + (ci * kks + j) * width + co % width]
 * = w[ci][co][kks - 1 - j] (w stored [Ci][Co][kks], the forward's layout read
 * as the transposed convolution's), K = Ci * kks. */
static void pack_flipped(const float *w, int Ci, int Co, int kks, int width, float *dst) {
    const size_t K = (size_t)Ci * kks;
    for (int co = 0; co < Co; co++) {
        float *dc = dst + (size_t)(co / width) * K * width + co % width;
        for (int ci = 0; ci < Ci; ci++) {
            const float *src = w + ((size_t)ci * Co + co) * kks;
            float *d = dc + (size_t)ci * kks * width;
            for (int j = 0; j < kks; j++) d[(size_t)j * width] = src[kks - 1 - j];
        }
    }
}

/* ---------------------------------------------------------------- packed weights (conv_pack.h) */
typedef struct {
    const float *w; /* the group's weight rows */
    int Co, K;
    int kind;       /* 0: direct_run's [ots][K][DMR]; 1: cvec_run's [Co / CW][K][CW] */
    float *ap;
} pack_entry;
struct cx_conv_pack {
    pack_entry *e;
    int n, cap;
};
static _Thread_local cx_conv_pack *tl_pack;  /* the current cache */
static _Thread_local bool tl_pack_this;      /* this call's weight may be cached */

cx_conv_pack *cx_conv_pack_new(void) {
    cx_conv_pack *c = cx_xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    return c;
}
void cx_conv_pack_clear(cx_conv_pack *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->e[i].ap);
    c->n = 0;
}
void cx_conv_pack_free(cx_conv_pack *c) {
    if (!c) return;
    cx_conv_pack_clear(c);
    free(c->e);
    free(c);
}
cx_conv_pack *cx_conv_pack_use(cx_conv_pack *c) {
    cx_conv_pack *prev = tl_pack;
    tl_pack = c;
    tl_pack_this = false;
    return prev;
}
/* the cached packing of weight rows w (Co x K), or NULL */
static float *pack_find(const float *w, int Co, int K, int kind) {
    cx_conv_pack *c = tl_pack;
    for (int i = 0; c && i < c->n; i++)
        if (c->e[i].w == w && c->e[i].Co == Co && c->e[i].K == K && c->e[i].kind == kind) return c->e[i].ap;
    return NULL;
}
static float *pack_add(const float *w, int Co, int K, int kind, size_t floats) {
    cx_conv_pack *c = tl_pack;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        pack_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e) cx_fatal("out of memory (packed convolution weights)");
        c->e = e;
        c->cap = cap;
    }
    float *ap = cx_xmalloc(floats * sizeof(float));
    c->e[c->n++] = (pack_entry){w, Co, K, kind, ap};
    return ap;
}

/* The cached packing of w (Co x K, packing `kind`): found (*found true, the
 * caller skips packing), or a new entry of `floats` for the caller to fill. */
static float *pack_get(const float *w, int Co, int K, int kind, size_t floats, bool *found) {
    float *p = pack_find(w, Co, K, kind);
    *found = p != NULL;
    return p ? p : pack_add(w, Co, K, kind, floats);
}

/* Threads for a direct convolution of N images x G groups: when there are
 * several and at least 2 MFLOP to share. */
static bool direct_par(const dgeom *dg, int N, int G) {
    return nthreads() > 1 && 2.0 * N * G * (double)dg->Co * dg->K * (double)dg->outP >= 2e6;
}

/* Images padded at once: as many as fit in PAD_CHUNK_BYTES, at least 2 per thread, at most N. A
 * chunk small enough to stay in L2 until its tiles read it: with the whole
 * batch at once (8 MiB) the padded copy went out to L3 and back (small
 * ResNet step, 1 thread, Intel Xeon: 105.4 -> 100.8 ms; 128 KiB, 512 KiB and
 * 1 MiB measured the same). */
#ifndef PAD_CHUNK_BYTES
#define PAD_CHUNK_BYTES ((size_t)512 << 10)
#endif
static int pad_chunk(const dgeom *dg, int N) {
    int chunk = (int)(PAD_CHUNK_BYTES / (dg->img_floats * sizeof(float)));
    /* at least two images per thread: one image's tiles split across the
     * threads left them waiting (vgg layer, 64 ch 32x32, 2 threads: 47 -> 55 ms) */
    const int nt = nthreads();
    if (chunk < 2 * nt) chunk = 2 * nt;
    return chunk > N ? N : chunk;
}

/* Per-thread image ranges. With at least two images per thread, each thread
 * takes its own contiguous range of images, [N t / nt, N (t + 1) / nt) as in a
 * static split, and pads and convolves it in chunks of its own: no barrier
 * between the padding and the tiles, and each image stays on the thread whose
 * earlier passes (static splits over the batch) wrote it. Splitting every
 * chunk's padding and tiles over the threads instead handed half of each
 * chunk's padded images to the other thread: across the last-level caches
 * when the two cores do not share one. Every output value is computed by the
 * same kernel calls either way, so the results do not change. */
_Atomic long cx_conv_own_range_calls;
static int own_ranges(int N, int nt) {
    if (nt < 2 || N < 2 * nt) return 0;
    cx_conv_own_range_calls++;
    return nt;
}

/* images per chunk of one thread's own range: as many as fit in
 * PAD_CHUNK_BYTES, at least 1, at most the range */
static int own_chunk(const dgeom *dg, int N, int nown) {
    const int per = (N + nown - 1) / nown;
    const int chunk = (int)(PAD_CHUNK_BYTES / (dg->img_floats * sizeof(float)));
    return chunk < 1 ? 1 : chunk > per ? per : chunk;
}

/* offs[c * kks + tap] = c * padP + the tap's offset in its (polyphase) plane:
 * the input of an output position's tap, from the position's own place. */
static const int32_t *direct_offsets(const dgeom *dg) {
    const int kks = dg->kks, P1 = dg->pd[1], P2 = dg->pd[2];
    int32_t *offs = cx_arena_alloc((size_t)dg->K * sizeof(int32_t));
    for (int a = 0, j = 0; a < dg->k[0]; a++)
        for (int b = 0; b < dg->k[1]; b++)
            for (int e = 0; e < dg->k[2]; e++, j++) {
                const int ta = a * dg->d[0], tb = b * dg->d[1], te = e * dg->d[2];
                const int s0 = dg->s[0], s1 = dg->s[1], s2 = dg->s[2];
                const int64_t plane = ((int64_t)(ta % s0) * s1 + tb % s1) * s2 + te % s2;
                offs[j] = (int32_t)(plane * dg->phP + ((int64_t)(ta / s0) * P1 + tb / s1) * P2 + te / s2);
            }
    for (int c = 1; c < dg->Ci; c++)
        for (int j = 0; j < kks; j++) offs[c * kks + j] = (int32_t)((int64_t)c * dg->padP + offs[j]);
    return offs;
}

/* ---------------------------------------------------------------- channel-vector direct convolution
 * direct_run's convolution with the register tile turned around: vectors
 * over CW = 2 x DV output channels, and the input read one value at a time
 * (a broadcast) at R x PW output positions: R output rows of a segment of
 * PW <= CPW columns, whose taps are at fixed offsets from R row pointers.
 * Every lane then holds a real output, whatever the image's width; the
 * position-vector tile of direct_run fills 28 of 32 lanes of a 28-wide row,
 * 14 of 16 of a 14-wide one, 49 of 64 of a 7x7 map and 50 of 80 of a 10x5
 * one. The price: the tile is transposed on its way to the [Co][positions]
 * output (a scalar copy per output, against K multiply-adds). AVX-512
 * only (its 32 vector registers hold the 2 x R x PW accumulators); Co a
 * multiple of CW. Weights packed [Co / CW][K][CW]. */
#if defined(__AVX512F__)
#define CVEC 1
#define CW (2 * DV) /* channels per tile: NC = 2 vectors, or 1 when Co is an odd multiple of DV */
#define CPW 7
#define CR 4

/* R * PW * NC <= 28 accumulators */
static inline __attribute__((always_inline)) void ckern(const int NC, const int R, const int PW, int T,
                                                        const float *w, const int32_t *boff,
                                                        const float *const *rp, float *buf,
                                                        const float *init) {
    dvec acc[CR][CPW][2];
    const dvec i0 = init ? vld(init) : (dvec){0};
    const dvec i1 = init && NC > 1 ? vld(init + DV) : (dvec){0};
    for (int r = 0; r < R; r++)
        for (int p = 0; p < PW; p++) {
            acc[r][p][0] = i0;
            acc[r][p][1] = i1;
        }
    const float *r0 = rp[0], *r1 = rp[R > 1 ? 1 : 0], *r2 = rp[R > 2 ? 2 : 0], *r3 = rp[R > 3 ? 3 : 0];
    for (int t = 0; t < T; t++) {
        const dvec w0 = vld(w), w1 = NC > 1 ? vld(w + DV) : w0;
        w += NC * DV;
        const ptrdiff_t o = boff[t];
        for (int r = 0; r < R; r++) {
            const float *x = (r == 0 ? r0 : r == 1 ? r1 : r == 2 ? r2 : r3) + o;
            for (int p = 0; p < PW; p++) {
                const float xv = x[p];
                acc[r][p][0] += w0 * xv;
                if (NC > 1) acc[r][p][1] += w1 * xv;
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int p = 0; p < PW; p++) {
            vst(buf + (size_t)(r * PW + p) * CW, acc[r][p][0]);
            if (NC > 1) vst(buf + (size_t)(r * PW + p) * CW + DV, acc[r][p][1]);
        }
}
/* the rows a tile of segments PW wide takes: R * PW * NC <= 28 */
static int crows(int NC, int PW) {
    int R = 28 / (PW * NC);
    return R > CR ? CR : R < 1 ? 1 : R;
}
static void ckern_n(int NC, int R, int PW, int T, const float *w, const int32_t *boff,
                    const float *const *rp, float *buf, const float *init) {
#define CK_P(NN, RR)                                                                                 \
    switch (PW) {                                                                                    \
    case 1: ckern(NN, RR, 1, T, w, boff, rp, buf, init); break;                                      \
    case 2: ckern(NN, RR, 2, T, w, boff, rp, buf, init); break;                                      \
    case 3: ckern(NN, RR, 3, T, w, boff, rp, buf, init); break;                                      \
    case 4: if (RR * 4 * NN <= 28) ckern(NN, RR, 4, T, w, boff, rp, buf, init); break;               \
    case 5: if (RR * 5 * NN <= 28) ckern(NN, RR, 5, T, w, boff, rp, buf, init); break;               \
    case 6: if (RR * 6 * NN <= 28) ckern(NN, RR, 6, T, w, boff, rp, buf, init); break;               \
    default: if (RR * 7 * NN <= 28) ckern(NN, RR, 7, T, w, boff, rp, buf, init); break;              \
    }
#define CK_R(NN)                    \
    switch (R) {                    \
    case 1: CK_P(NN, 1); break;     \
    case 2: CK_P(NN, 2); break;     \
    case 3: CK_P(NN, 3); break;     \
    default: CK_P(NN, 4); break;    \
    }
    if (NC > 1) CK_R(2) else CK_R(1)
#undef CK_R
#undef CK_P
}

/* 0: not read yet; 1: on; 2: off (CX_CONV_CVEC=0, for tests and measurements) */
static _Atomic int cvec_mode;
static bool cvec_on(void) {
    int m = atomic_load(&cvec_mode);
    if (!m) {
        const char *e = getenv("CX_CONV_CVEC");
        m = e && !strcmp(e, "0") ? 2 : 1;
        atomic_store(&cvec_mode, m);
    }
    return m == 1;
}
/* The position-vector tile leaves lanes empty, and there are enough
 * products per output to pay for the transposed stores. Measured at 1
 * thread (forward with the packing, min of 400): 64 ch 7x7 23 vs 30 us,
 * 32 ch 14x14 21 vs 24, 64 x 16->32 ch 10x5 245 vs 324-340; equal at
 * 32 ch 28x28 and 64 ch 14x14. One vector of channels (Co = 16) only pays
 * on narrower maps: 64 x 10x5 171-176 vs 212-280, 7x7 3.7 vs 4.0, but
 * 14x14 10.7 vs 9.0 and 28x28 26 vs 24. */
static bool cvec_applies(const dgeom *dg) {
    const double use = dg->flat ? (double)dg->Co / (((dg->Co + DMR - 1) / DMR) * DMR) * (double)dg->outP /
                                      ((double)dg->vpi * DV)
                                : dgeom_use(dg);
    return dg->K >= 64 && (dg->Co % CW == 0 ? use < 0.95 : dg->Co % DV == 0 && use < 0.8) && cvec_on();
}

/* Rows q and q + 1 (when two) of a tile, pw <= 7 positions each, one
 * vector of DV channels: b[(row * pw + p) * CW + l] is channel l at
 * position p, to y[l * ostride + row * OW + p]. A 16 x 16 transpose in
 * registers (row q in lanes 0-7, row q + 1 in lanes 8-15 of each channel's
 * vector), then a masked store of pw lanes per channel and row. */
static inline void cstore(const float *b, int pw, bool two, float *y, int64_t ostride, int OW,
                          bool accumulate) {
    __m512 r[16], t[16], u[16];
    const __m512 z = _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
        r[i] = i < pw ? _mm512_loadu_ps(b + (size_t)i * CW) : z;
        r[8 + i] = two && i < pw ? _mm512_loadu_ps(b + (size_t)(pw + i) * CW) : z;
    }
    for (int k = 0; k < 16; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    /* u[4k + j], 128-bit lane L: channel 4L + j at positions 4k .. 4k + 3 */
    for (int k = 0; k < 16; k += 4) {
        u[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xEE);
        u[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    const __mmask16 m = (__mmask16)((1u << pw) - 1);
    for (int j = 0; j < 4; j++) {
        const __m512 x0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), x1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
        const __m512 y0 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        const __m512 y1 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
        const __m512 c[4] = {_mm512_shuffle_f32x4(x0, y0, 0x88), _mm512_shuffle_f32x4(x1, y1, 0x88),
                             _mm512_shuffle_f32x4(x0, y0, 0xDD), _mm512_shuffle_f32x4(x1, y1, 0xDD)};
        for (int L = 0; L < 4; L++) { /* channel 4L + j */
            float *yc = y + (size_t)(4 * L + j) * (size_t)ostride;
            __m512 lo = c[L], hi = _mm512_shuffle_f32x4(c[L], c[L], 0xEE);
            if (accumulate) {
                lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m, yc));
                if (two) hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m, yc + OW));
            }
            _mm512_mask_storeu_ps(yc, m, lo);
            if (two) _mm512_mask_storeu_ps(yc + OW, m, hi);
        }
    }
}

/* One chunk of cvec_run: images [n0, n0 + nimg) of group gi padded into xp,
 * then their tiles; each split over the threads when par. */
static void cvec_chunk(const dgeom *dg, int G, int gi, int n0, int nimg, const float *X,
                       const float *wp, const int32_t *offs, const float *bias, float *Y,
                       bool accumulate, float *xp, bool par) {
    const int K = dg->K, Co = dg->Co, Ci = dg->Ci;
    const int NC = Co % CW ? 1 : 2, cw = NC * DV, ncb = Co / cw;
    const int P1 = dg->pd[1], P2 = dg->pd[2];
    const int OW = dg->out[2], OH = dg->out[0] * dg->out[1];
    /* row segments of at most CPW columns, as even as they come */
    const int nseg = (OW + CPW - 1) / CPW, pwmax = (OW + nseg - 1) / nseg;
    const int R = crows(NC, pwmax);
    const int nrg = (OH + R - 1) / R;
    const int64_t tiles = (int64_t)nrg * nseg * ncb;
    (void)par;
    CX_PFOR(par,
    for (int j = 0; j < nimg; j++) {
        size_t img = (size_t)(n0 + j) * G + gi;
        pad_image(dg, X + img * Ci * dg->inP, xp + (size_t)j * dg->img_floats);
    });
    CX_PFOR(par,
    for (int64_t tix = 0; tix < (int64_t)nimg * tiles; tix++) {
        const int j = (int)(tix / tiles);
        int64_t r = tix - (int64_t)j * tiles;
        const int cb = (int)(r % ncb);
        r /= ncb;
        const int sg = (int)(r % nseg), rg = (int)(r / nseg);
        const int c0 = (int)((int64_t)sg * OW / nseg), c1 = (int)((int64_t)(sg + 1) * OW / nseg);
        const int row0 = rg * R, nr = OH - row0 < R ? OH - row0 : R;
        const size_t img = (size_t)(n0 + j) * G + gi;
        const float *rp[CR];
        for (int q = 0; q < nr; q++) {
            const int row = row0 + q, od = row / dg->out[1], oh = row - od * dg->out[1];
            rp[q] = xp + (size_t)j * dg->img_floats + ((size_t)od * P1 + oh) * P2 + c0;
        }
        _Alignas(64) float buf[CR * CPW * CW];
        const float *init = bias && !accumulate ? bias + (size_t)gi * Co + (size_t)cb * cw : NULL;
        const int pw = c1 - c0;
        ckern_n(NC, nr, pw, K, wp + (size_t)cb * K * cw, offs, rp, buf, init);
        float *yb = Y + (img * Co + (size_t)cb * cw) * dg->outP + (size_t)row0 * OW + c0;
        for (int v = 0; v < NC; v++)
            for (int q = 0; q < nr; q += 2)
                cstore(buf + (size_t)q * pw * CW + (size_t)v * DV, pw, nr - q >= 2,
                       yb + (size_t)v * DV * dg->outP + (size_t)q * OW, dg->outP, OW, accumulate);
    });
}

_Atomic long cx_conv_cvec_calls;
static void cvec_run(const dgeom *dg, int G, int N, const float *X, const float *W, bool flip,
                     const float *bias, float *Y, bool accumulate) {
    cx_conv_cvec_calls++;
    const int K = dg->K, kks = dg->kks, Co = dg->Co, Ci = dg->Ci;
    const int NC = Co % CW ? 1 : 2, cw = NC * DV, ncb = Co / cw;
    const int32_t *offs = direct_offsets(dg);
    const bool cached = !flip && tl_pack && tl_pack_this;
    float *wp = cached ? NULL : cx_arena_alloc((size_t)K * Co * sizeof(float));
    const bool par = direct_par(dg, N, G);
    const int nown = par ? own_ranges(N, nthreads()) : 0;
    const int chunk = nown ? own_chunk(dg, N, nown) : pad_chunk(dg, N);
    float *xp = cx_arena_alloc((size_t)(nown ? nown : 1) * chunk * dg->img_floats * sizeof(float));
    for (int gi = 0; gi < G; gi++) {
        const float *wg = W + (size_t)gi * Co * K;
        bool packed = false;
        if (cached) wp = pack_get(wg, Co, K, 1, (size_t)K * Co, &packed);
        /* wp[cb][kk][l] = Wf(cb * cw + l, kk) */
        for (int cb = 0; cb < ncb && !flip && !packed; cb++)
            cx_transpose_block(wg + (size_t)cb * cw * K, (size_t)K, wp + (size_t)cb * K * cw, (size_t)cw, cw, K);
        if (flip && !packed) pack_flipped(wg, Ci, Co, kks, cw, wp);
        if (nown) {
            CX_OMP(parallel for schedule(static) num_threads(nown))
            for (int t = 0; t < nown; t++) {
                const int a = (int)((int64_t)N * t / nown), b = (int)((int64_t)N * (t + 1) / nown);
                float *xpt = xp + (size_t)t * chunk * dg->img_floats;
                for (int n0 = a; n0 < b; n0 += chunk)
                    cvec_chunk(dg, G, gi, n0, b - n0 < chunk ? b - n0 : chunk, X, wp, offs, bias, Y,
                               accumulate, xpt, false);
            }
        } else {
            for (int n0 = 0; n0 < N; n0 += chunk)
                cvec_chunk(dg, G, gi, n0, N - n0 < chunk ? N - n0 : chunk, X, wp, offs, bias, Y,
                           accumulate, xp, par);
        }
    }
}
#else
_Atomic long cx_conv_cvec_calls;
static bool cvec_applies(const dgeom *dg) {
    (void)dg;
    return false;
}
static void cvec_run(const dgeom *dg, int G, int N, const float *X, const float *W, bool flip,
                     const float *bias, float *Y, bool accumulate) {
    (void)dg, (void)G, (void)N, (void)X, (void)W, (void)flip, (void)bias, (void)Y, (void)accumulate;
}
#endif

/* Y[n][g] (+)= conv(X[n][g], Wf_g) for all images and groups; X [N][G*Ci][inP],
 * Y [N][G*Co][outP]. Wf(co, ci, j) = W[g][co][ci][j] or, when flip,
 * W[g][ci][co][kks-1-j] (the input gradient of the convolution W). */
/* One chunk of direct_run: images [n0, n0 + nimg) of group gi, padded into xp
 * (and, flat, their products in yt), the padding, the tiles and the move
 * into Y each split over the threads when par. */
static void direct_chunk(const dgeom *dg, int G, int gi, int n0, int nimg, const float *X,
                         const float *ap, const int32_t *offs, int kb, const float *bias,
                         float *Y, bool accumulate, float *xp, float *yt, bool par) {
    const int K = dg->K, Co = dg->Co, Ci = dg->Ci;
    const int ots = (Co + DMR - 1) / DMR;
    const int P1 = dg->pd[1], P2 = dg->pd[2];
    const int64_t fs = dg->vpi * DV;
    (void)par;
    CX_PFOR(par,
    for (int j = 0; j < nimg; j++) {
        size_t img = (size_t)(n0 + j) * G + gi;
        pad_image(dg, X + img * Ci * dg->inP, xp + (size_t)j * dg->img_floats);
    });
    const int64_t nvec = (int64_t)nimg * dg->vpi;
    const int64_t ntile = (nvec + DNV - 1) / DNV;
    /* the sums start from the outputs (accumulate), from the bias
     * (the first block of K; not a pass filling Y with it first), or
     * from 0 (flat: the bias comes with the move into Y) */
    const bool load0 = accumulate && !dg->flat;
    const float *bias_g = bias && !accumulate && !dg->flat ? bias + (size_t)gi * Co : NULL;
    CX_PFOR(par,
    for (int64_t tix = 0; tix < ntile; tix++) {
        dtile tl;
        int nv = 0;
        for (int64_t v = tix * DNV; v < nvec && nv < DNV; v++, nv++) {
            int64_t j = v / dg->vpi, r = v - j * dg->vpi;
            if (dg->flat) {
                tl.b[nv] = xp + (size_t)j * dg->img_floats + (size_t)r * DV;
                tl.out[nv] = yt + (size_t)j * Co * fs + (size_t)r * DV;
                tl.nval[nv] = DV;
                continue;
            }
            int64_t row = r / dg->vpr;
            int col = (int)(r - row * dg->vpr) * DV;
            int od = (int)(row / dg->out[1]), oh = (int)(row - (int64_t)od * dg->out[1]);
            size_t img = (size_t)(n0 + j) * G + gi;
            tl.b[nv] = xp + (size_t)j * dg->img_floats + ((size_t)od * P1 + oh) * P2 + col;
            tl.out[nv] = Y + img * Co * dg->outP + (size_t)row * dg->out[2] + col;
            tl.nval[nv] = dg->out[2] - col < DV ? dg->out[2] - col : DV;
        }
        for (int k0 = 0; k0 < K; k0 += kb) {
            const int T = K - k0 < kb ? K - k0 : kb;
            for (int ot = 0; ot < ots; ot++) {
                const int mr = Co - ot * DMR < DMR ? Co - ot * DMR : DMR;
                const ptrdiff_t ost = dg->flat ? (ptrdiff_t)fs : (ptrdiff_t)dg->outP;
                dkern_n(nv, T, ap + ((size_t)ot * K + k0) * DMR, DMR, offs + k0, &tl,
                        (ptrdiff_t)ot * DMR * ost, ost, mr, load0 || k0 > 0,
                        bias_g && k0 == 0 ? bias_g + (size_t)ot * DMR : NULL);
            }
        }
    });
    if (dg->flat) {
        const int OH = dg->out[1], OW = dg->out[2];
        CX_PFOR(par,
        for (int64_t jo = 0; jo < (int64_t)nimg * Co; jo++) {
            const int j = (int)(jo / Co), o = (int)(jo - (int64_t)j * Co);
            const size_t img = (size_t)(n0 + j) * G + gi;
            const float *t = yt + ((size_t)j * Co + o) * fs;
            float *yo = Y + (img * Co + o) * dg->outP;
            const float bv = bias && !accumulate ? bias[gi * Co + o] : 0.0f;
            for (int oh = 0; oh < OH; oh++) {
                const float *tr = t + (size_t)oh * P2;
                float *yr = yo + (size_t)oh * OW;
                if (accumulate)
                    for (int ow = 0; ow < OW; ow++) yr[ow] += tr[ow];
                else
                    for (int ow = 0; ow < OW; ow++) yr[ow] = bv + tr[ow];
            }
        });
    }
}

static void direct_run(const dgeom *dg, int G, int N, const float *X, const float *W, bool flip,
                       const float *bias, float *Y, bool accumulate) {
    const int K = dg->K, kks = dg->kks, Co = dg->Co, Ci = dg->Ci;
    const int ots = (Co + DMR - 1) / DMR;
    if (cvec_applies(dg)) {
        cvec_run(dg, G, N, X, W, flip, bias, Y, accumulate);
        return;
    }
    const int32_t *offs = direct_offsets(dg);
    const bool cached = !flip && tl_pack && tl_pack_this;
    float *ap = cached ? NULL : cx_arena_alloc((size_t)ots * K * DMR * sizeof(float));
    const bool par = direct_par(dg, N, G);
    const int nown = par ? own_ranges(N, nthreads()) : 0;
    /* images per chunk; with own ranges, per thread */
    const int chunk = nown ? own_chunk(dg, N, nown) : pad_chunk(dg, N);
    const int nbuf = nown ? nown : 1;
    float *xp = cx_arena_alloc((size_t)nbuf * chunk * dg->img_floats * sizeof(float));
    /* flat: the products of each image [Co][vpi * DV], moved into Y after */
    const size_t ytf = (size_t)chunk * Co * (size_t)(dg->vpi * DV);
    float *yt = dg->flat ? cx_arena_alloc((size_t)nbuf * ytf * sizeof(float)) : NULL;
    const int kb = KBLOCK / kks > 0 ? KBLOCK / kks * kks : kks;
    for (int gi = 0; gi < G; gi++) {
        const float *wg = W + (size_t)gi * Co * K;
        /* ap[ot][kk][i] = Wf(ot * DMR + i, kk), zero past Co: blocked
         * transposes of W's rows (on every call, unless a packed-weight
         * cache holds them: conv_pack.h) */
        bool packed = false;
        if (cached) ap = pack_get(wg, Co, K, 0, (size_t)ots * K * DMR, &packed);
        if (Co % DMR && !packed) memset(ap + (size_t)(ots - 1) * K * DMR, 0, (size_t)K * DMR * sizeof(float));
        for (int ot = 0; ot < ots && !flip && !packed; ot++) {
            const int mr = Co - ot * DMR < DMR ? Co - ot * DMR : DMR;
            cx_transpose_block(wg + (size_t)ot * DMR * K, (size_t)K, ap + (size_t)ot * K * DMR, DMR, mr, K);
        }
        if (flip) pack_flipped(wg, Ci, Co, kks, DMR, ap);
        if (nown) {
            CX_OMP(parallel for schedule(static) num_threads(nown))
            for (int t = 0; t < nown; t++) {
                const int a = (int)((int64_t)N * t / nown), b = (int)((int64_t)N * (t + 1) / nown);
                float *xpt = xp + (size_t)t * chunk * dg->img_floats, *ytt = yt ? yt + (size_t)t * ytf : NULL;
                for (int n0 = a; n0 < b; n0 += chunk)
                    direct_chunk(dg, G, gi, n0, b - n0 < chunk ? b - n0 : chunk, X, ap, offs, kb, bias, Y,
                                 accumulate, xpt, ytt, false);
            }
        } else {
            for (int n0 = 0; n0 < N; n0 += chunk)
                direct_chunk(dg, G, gi, n0, N - n0 < chunk ? N - n0 : chunk, X, ap, offs, kb, bias, Y,
                             accumulate, xp, yt, par);
        }
    }
}

/* The forward convolution of geometry g as a direct stride-1 convolution. */
static bool stride1(const geom *g) { return g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1; }

/* The leading padding of the input gradient of a stride-1 convolution seen
 * as a convolution of the output gradient with the flipped weight:
 * d*(k-1) - p (negative: cropping). */
static void bdata_pad(const geom *g, int p[3]) {
    for (int i = 0; i < 3; i++) p[i] = g->d[i] * (g->k[i] - 1) - g->p[i];
}

/* Strided: direct (polyphase planes), whatever the batch. At batch 1 of a
 * small image the column copies and thin GEMMs of the other paths cost most
 * (a small ResNet's 3x3 stride-2 convolutions 16->32 at 28x28 and 32->64 at
 * 14x14: 0.02-0.03 vs 0.05 ms); at batch 64 the folded GEMM's column
 * matrix is as costly (16->32: 2.25 -> 1.22 ms, 32->64: 1.71 -> 1.13 ms
 * forward, 1 thread, AVX-512; the training step 2.5% faster). Not 1x1
 * kernels, which would copy s^2 planes to use one (pw_applies instead). */
static int fold_images(const geom *g, int N);
static bool direct_fwd_geom(const geom *g, dgeom *dg) {
    if (!direct_enabled() || g->direct) return false;
    if (stride1(g)) return dgeom_init(dg, g->Cg, g->Og, g->in, g->out, g->k, g->d, g->p);
    return g->K > g->Cg && g->s[0] <= 4 &&
           g->s[1] <= 4 && g->s[2] <= 4 && dgeom_init_s(dg, g->Cg, g->Og, g->in, g->out, g->k, g->d, g->p, g->s);
}

/* The input gradient of geometry g (stride 1) as a direct convolution of the
 * output gradient, padded by bdata_pad, with the flipped weight. */
static bool direct_bdata_geom(const geom *g, dgeom *dg) {
    int p[3];
    bdata_pad(g, p);
    return stride1(g) && direct_enabled() && !g->direct &&
           dgeom_init(dg, g->Og, g->Cg, g->out, g->in, g->k, g->d, p);
}

/* Winograd F(2x2, 3x3) (conv_winograd.c): forward, input gradient (padded
 * by bdata_pad) and, with S image ranges, weight gradient. AUTO leaves the
 * forward pass and the weight gradient of small images (at most WINO_MIN_P
 * output positions, folding: see fold_images) to the folded GEMM and the
 * direct weight gradient, which are faster there: the partial and dummy
 * tiles and the per-tile-row output work cost more than Winograd's fewer
 * products save (a 10x5 image: 20 tiles for 50 outputs). Its input gradient
 * stays faster than the alternatives (measured: bench/bench_convsmall.c). */
#define WINO_MIN_P 64
static int fold_images(const geom *g, int N);
static bool small_image(const geom *g) {
    return g->outP <= WINO_MIN_P && fold_images(g, g->N) > 0;
}
static bool wino_enabled(const geom *g) {
    const int a = algo();
    return a == 3 || (a == 2 && !small_image(g));
}
/* AUTO also leaves a forward pass of few tiles (batch 1 of a small image) to
 * the direct convolution: each call transforms the whole weight (16 values
 * per channel pair), which few tiles do not pay back. Measured at 1 thread,
 * batch 1: 16 ch 28x28 (196 tiles) direct 0.057 ms vs Winograd 0.100, 32 ch
 * 14x14 0.057 vs 0.217, 64 ch 7x7 0.11 vs 0.42; at 784 tiles (56x56) it
 * is close either way (16 ch: direct 0.10 vs 0.13; 64 ch: Winograd 1.6 vs
 * 2.9), so the line is drawn below that.
 * Nor does Winograd's forward pass pay with few channels, whatever the
 * batch: no-grad forward, min of 15, 1 / 2 threads (2026-12-06, Zen 5):
 * batch 64 of 16 ch 28x28 direct 1.73 / 0.85 ms vs Winograd 2.71 / 1.65;
 * 32 ch 14x14 1.38 / 0.71 vs 2.00 / 1.43; batch 32 of 32 ch 28x28 2.72 /
 * 1.36 vs 3.39 / 2.37. From 64 channels it is even or Winograd's: batch 16
 * of 64 ch 28x28 5.16 / 2.37 vs 5.09 / 2.67, bench_conv's vgg layer (64 ch
 * 32x32, batch 64) forward 32-35 vs 24-27 ms at 1 thread; batch 8 of 96 ch
 * 28x28 5.03 / 2.64 vs 3.65 / 2.36, 128 ch 9.36 / 5.10 vs 6.98 / 4.53. */
#define WINO_MIN_TILES 512
#if defined(__AVX512F__)
#define WINO_AUTO_MIN_CH 64
#else
#define WINO_AUTO_MIN_CH 8 /* not measured without AVX-512: Winograd's own minimum, as before */
#endif
/* AUTO's Winograd for the forward pass and the input gradient: enough channels */
static bool wino_channels(const geom *g) {
    return algo() == 3 || (g->Cg >= WINO_AUTO_MIN_CH && g->Og >= WINO_AUTO_MIN_CH);
}
static bool wino_fwd(const geom *g) {
    const int64_t tiles = (int64_t)g->N * ((g->out[1] + 1) / 2) * ((g->out[2] + 1) / 2);
    return stride1(g) && wino_enabled(g) &&
           (algo() == 3 || tiles >= WINO_MIN_TILES) && wino_channels(g) &&
           cx_conv_wino_applies(g->Cg, g->Og, g->in, g->out, g->k, g->d);
}
/* The input gradient likewise: the small ResNet's training step (16-64
 * channels, batch 64) with the direct input gradient below 64 channels,
 * five alternating rounds: medians 86.4 vs 91.2 ms (1 thread), 53.6 vs 57.0
 * (2 threads). (Its weight gradient measured no different either way.) */
static bool wino_bdata(const geom *g) {
    return stride1(g) && algo() >= 2 && wino_channels(g) &&
           cx_conv_wino_applies(g->Og, g->Cg, g->out, g->in, g->k, g->d);
}
/* AUTO leaves the weight gradient of fewer than WINO_BW_AUTO_MIN_CI input
 * channels to the direct kernel: the small ResNet's 16-channel 28x28 layers,
 * batch 64, 1 thread (Intel Xeon, AVX-512), in the training step: 2.55 vs
 * 2.91 ms per layer; from 32 channels Winograd's is faster (32 ch 14x14:
 * 1.79 vs 2.10 ms). */
#if defined(__AVX512F__)
#define WINO_BW_AUTO_MIN_CI 32
#else
#define WINO_BW_AUTO_MIN_CI 0 /* not measured without AVX-512 */
#endif
static bool wino_bweight(const geom *g, int S) {
    return stride1(g) && wino_enabled(g) && !g->direct && (algo() != 2 || g->Cg >= WINO_BW_AUTO_MIN_CI) &&
           cx_conv_wino_bweight_applies(g->Cg, g->Og, g->in, g->out, g->k, g->d) &&
           cx_conv_wino_bweight_partial_bytes(g->Cg, g->Og) * (size_t)S <= PARTIAL_BYTES;
}

/* ---------------------------------------------------------------- direct weight gradient */
/* dW[g][o][c][j] += sum over images and output positions q of
 * dY[n][g][o][q] * X[n][g][c][pos(q) + tap(j)], any stride. Per image: a
 * channels-last zero-padded copy xT [pd...][Cg] and dYT [outP][Og]; the
 * register tile holds DMR output channels x DNV vectors of DV input
 * channels (each vector at one kernel tap), summing over q in registers. */
typedef struct {
    int pd[3];
    int64_t padP;
    size_t xt_floats, yt_floats;
    int cv;       /* channel vectors */
    int nvec;     /* kks * cv */
} wgeom;

static bool wgeom_init(const geom *g, wgeom *wg) {
    if (!direct_enabled() || g->direct) return false;
    wg->padP = 1;
    for (int i = 0; i < 3; i++) {
        wg->pd[i] = (g->out[i] - 1) * g->s[i] + g->d[i] * (g->k[i] - 1) + 1;
        wg->padP *= wg->pd[i];
    }
    wg->xt_floats = (size_t)wg->padP * g->Cg + DV;
    wg->yt_floats = (size_t)g->outP * g->Og + DMR;
    wg->cv = (g->Cg + DV - 1) / DV;
    const int kks = (int)(g->K / g->Cg);
    wg->nvec = kks * wg->cv;
    if ((wg->xt_floats + wg->yt_floats) * sizeof(float) > PAD_BYTES) return false;
    int ots = (g->Og + DMR - 1) / DMR;
    double use = (double)g->Og / (ots * DMR) * (double)g->Cg / ((double)wg->cv * DV);
    return use >= 0.5;
}

/* Images whose channels-last copies one wgrad_images call takes: their
 * copies within WG_BYTES, so they stay in L2 while the kernel reads them,
 * and the kernel sums over the positions of all of them in registers
 * rather than sending its accumulators to memory and back after each image
 * (49 positions apart for a 7x7 map). Measured alone this changed little
 * (64 channels 7x7, batch 64, 1 thread: 1.86 -> 1.79-1.84 ms); storing the
 * first sums instead of zeroing the partials, and summing the ranges row by
 * row, brought it to 1.63 ms. */
#define WG_BYTES ((size_t)512 << 10)
static int wgrad_batch(const wgeom *wg, int n) {
    const size_t per = (wg->xt_floats - DV + wg->yt_floats - DMR) * sizeof(float);
    const int nb = (int)(WG_BYTES / per);
    return nb < 1 ? 1 : nb > n ? n : nb;
}

/* xt [pd...][Cg] and yt [outP][Og]: channels-last copies of one
 * image-group, the input zero-padded. */
static void wgrad_copy(const geom *g, const wgeom *wg, const float *x, const float *dy, float *xt, float *yt) {
    const int Cg = g->Cg, Og = g->Og;
    const int P0 = wg->pd[0], P1 = wg->pd[1], P2 = wg->pd[2];
    for (int z = 0; z < P0; z++)
        for (int y = 0; y < P1; y++) {
            float *row = xt + ((size_t)z * P1 + y) * P2 * Cg;
            int sz = z - g->p[0], sy = y - g->p[1];
            if (sz < 0 || sz >= g->in[0] || sy < 0 || sy >= g->in[1]) {
                memset(row, 0, (size_t)P2 * Cg * sizeof(float));
                continue;
            }
            int lo = g->p[2] < P2 ? g->p[2] : P2, hi = g->p[2] + g->in[2];
            if (hi > P2) hi = P2;
            memset(row, 0, (size_t)lo * Cg * sizeof(float));
            if (hi < P2) memset(row + (size_t)hi * Cg, 0, (size_t)(P2 - hi) * Cg * sizeof(float));
            /* row[xx][c] = channel c's input at column xx - p2: blocked
             * in-register transposes (element by element, these copies were
             * 6% of a small ResNet's training step) */
            if (hi > lo)
                cx_transpose_block(x + ((size_t)sz * g->in[1] + sy) * g->in[2] + lo - g->p[2], (size_t)g->inP,
                                   row + (size_t)lo * Cg, (size_t)Cg, Cg, hi - lo);
        }
    /* yt[q][o], in blocks of positions so that the writes stay in cache */
    for (int64_t q0 = 0; q0 < g->outP; q0 += 64) {
        int64_t q1 = q0 + 64 < g->outP ? q0 + 64 : g->outP;
        cx_transpose_block(dy + q0, (size_t)g->outP, yt + (size_t)q0 * Og, (size_t)Og, Og, (int)(q1 - q0));
    }
}

/* acc [Og][kks][Cg] += the contributions of nb image-groups, whose copies
 * are consecutive in xt (padP * Cg floats each) and yt (outP * Og); qoff
 * holds the input offset of each of their nb * outP positions. The sums
 * run over the positions in order, image after image, as one image at a
 * time would add them. */
static void wgrad_images(const geom *g, const wgeom *wg, int nb, const int32_t *qoff, float *xt, float *yt,
                         float *acc, bool fresh) {
    const int Cg = g->Cg, Og = g->Og, kks = (int)(g->K / g->Cg);
    const int P1 = wg->pd[1], P2 = wg->pd[2];
    const int64_t nq = (int64_t)nb * g->outP;
    /* slack after the last image: whole-vector reads past it */
    memset(xt + (size_t)nb * wg->padP * Cg, 0, DV * sizeof(float));
    memset(yt + (size_t)nq * Og, 0, DMR * sizeof(float));
    const int ots = (Og + DMR - 1) / DMR;
    const int ntile = (wg->nvec + DNV - 1) / DNV;
    const ptrdiff_t ostride = (ptrdiff_t)kks * Cg;
    for (int64_t q0 = 0; q0 < nq; q0 += QBLOCK) {
      const int T = nq - q0 < QBLOCK ? (int)(nq - q0) : QBLOCK;
      for (int tix = 0; tix < ntile; tix++) {
        dtile tl;
        int nv = 0;
        for (int v = tix * DNV; v < wg->nvec && nv < DNV; v++, nv++) {
            int j = v / wg->cv, c0 = (v - j * wg->cv) * DV;
            int e = j % g->k[2], b = (j / g->k[2]) % g->k[1], a = j / (g->k[2] * g->k[1]);
            int64_t tap = ((int64_t)a * g->d[0] * P1 + (int64_t)b * g->d[1]) * P2 +
                          (int64_t)e * g->d[2];
            tl.b[nv] = xt + (size_t)tap * Cg + c0;
            tl.out[nv] = acc + (size_t)j * Cg + c0;
            tl.nval[nv] = Cg - c0 < DV ? Cg - c0 : DV;
        }
        for (int ot = 0; ot < ots; ot++) {
            const int mr = Og - ot * DMR < DMR ? Og - ot * DMR : DMR;
            dkern_n(nv, T, yt + (size_t)q0 * Og + (size_t)ot * DMR, Og, qoff + q0, &tl,
                    (ptrdiff_t)ot * DMR * ostride, ostride, mr, !fresh || q0 > 0, NULL);
        }
      }
    }
}

/* dW += sum_n dY[n] im2col(X[n])^T through wgrad_images, in the same fixed
 * image ranges as prim_bweight. */
static void direct_bweight(const geom *g, const wgeom *wg, const float *X, const float *dY,
                           float *dW, int S, bool par, int nt) {
    const size_t wn = (size_t)g->O * (size_t)g->K;
    const int kks = (int)(g->K / g->Cg);
    const int nbmax = wgrad_batch(wg, (g->N + S - 1) / S);
    const size_t xs = (size_t)wg->padP * g->Cg, ys = (size_t)g->outP * g->Og; /* one image's copies */
    int32_t *qoff = cx_arena_alloc((size_t)nbmax * g->outP * sizeof(int32_t));
    for (int od = 0; od < g->out[0]; od++)
        for (int oh = 0; oh < g->out[1]; oh++)
            for (int ow = 0; ow < g->out[2]; ow++)
                qoff[((size_t)od * g->out[1] + oh) * g->out[2] + ow] =
                    (int32_t)(((((int64_t)od * g->s[0]) * wg->pd[1] + (int64_t)oh * g->s[1]) *
                                   wg->pd[2] +
                               (int64_t)ow * g->s[2]) *
                              g->Cg);
    for (int i = 1; i < nbmax; i++)
        for (int64_t q = 0; q < g->outP; q++)
            qoff[(size_t)i * g->outP + q] = (int32_t)((int64_t)i * xs + qoff[q]);
    const int nbuf = par ? nt : 1;
    const size_t per = (size_t)nbmax * (xs + ys) + DV + DMR;
    float *bufs = cx_arena_alloc((size_t)nbuf * per * sizeof(float));
    float *part = cx_arena_alloc((size_t)S * wn * sizeof(float));
    (void)par;
    CX_OMP(parallel for schedule(static) if(par))
    for (int s = 0; s < S; s++) {
        float *xt = bufs + (size_t)(par ? thread_id() : 0) * per, *yt = xt + (size_t)nbmax * xs + DV;
        float *ps = part + (size_t)s * wn;
        int n0 = (int)((int64_t)g->N * s / S), n1 = (int)((int64_t)g->N * (s + 1) / S);
        if (n1 == n0) memset(ps, 0, wn * sizeof(float));
        for (int gi = 0; gi < g->G; gi++)
            for (int c0 = n0; c0 < n1; c0 += nbmax) {
                const int nb = n1 - c0 < nbmax ? n1 - c0 : nbmax;
                for (int i = 0; i < nb; i++)
                    wgrad_copy(g, wg, X + ((size_t)(c0 + i) * g->C + (size_t)gi * g->Cg) * g->inP,
                               dY + ((size_t)(c0 + i) * g->O + (size_t)gi * g->Og) * g->outP, xt + i * xs,
                               yt + i * ys);
                /* the range's first images store their sums (every element of
                 * the partial is written), the others add to them */
                wgrad_images(g, wg, nb, qoff, xt, yt, ps + (size_t)gi * g->Og * g->K, c0 == n0);
            }
    }
    /* part[s][g][o][j][c] -> dW[g][o][c][j]: the ranges summed in order over
     * contiguous rows, then transposed (the sum element by element across
     * the ranges, strided, was 10% of a 64-channel 7x7 weight gradient) */
    const int Cg = g->Cg;
    const size_t rowf = (size_t)kks * Cg;
    float *rows = cx_arena_alloc((size_t)nt * rowf * sizeof(float));
    CX_OMP(parallel for schedule(static) if(wn * S > CX_PAR_MIN))
    for (int go = 0; go < g->O; go++) {
        float *dw = dW + (size_t)go * g->K;
        const float *pt = part + (size_t)go * g->K;
        float *r = rows + (size_t)thread_id() * rowf;
        memcpy(r, pt, rowf * sizeof(float));
        for (int s = 1; s < S; s++) {
            const float *ps = pt + (size_t)s * wn;
            for (size_t i = 0; i < rowf; i++) r[i] += ps[i];
        }
        for (int j = 0; j < kks; j++)
            for (int c = 0; c < Cg; c++) dw[(size_t)c * kks + j] += r[(size_t)j * Cg + c];
    }
}

/* ---------------------------------------------------------------- direct weight gradient, few channels */
/* A stride-1 convolution whose input channels are too few to fill the
 * channel vectors of wgrad_image (a network's first layers) vectorises over
 * output positions instead. Positions are flattened with the row stride of
 * the zero-padded input (pd[2]), so the input under tap j of the positions
 * [q, q + DV) is the contiguous vector xp + off(j) + q; the output gradient
 * is copied to the same stride with zeros in the columns past out[2]. A
 * register tile of SOT output channels x STT taps keeps DV-lane partial sums
 * dW[o][j][lane], which accumulate over the images of one fixed range and
 * are summed across ranges, then lanes, in a fixed order at the end. When
 * an image holds a non-finite value its input lanes at invalid positions are
 * masked to zero, so that value only reaches the sums that really multiply
 * it (otherwise the zero output gradient there cancels them). */
#define SOT 4 /* output channels per register tile (4 or 6) */
#define STT 5 /* taps (reduction rows of dW) per register tile */
#define SW_CHUNK_BYTES ((size_t)256 << 10) /* images laid out at once per thread */

typedef int32_t ivec __attribute__((vector_size(DV * sizeof(int32_t))));

typedef struct {
    dgeom dg;            /* the forward convolution (padded input geometry, offsets) */
    int nq;              /* vectors of flattened positions */
    int kslack;          /* extra zero floats after a padded image */
    size_t x_floats;     /* one padded image-group + slack */
    size_t y_floats;     /* one output gradient image-group, Og * nq * DV */
} sgeom;

static bool sgeom_init(const geom *g, sgeom *sg) {
    if (!direct_enabled() || g->direct || !stride1(g)) return false;
    (void)dgeom_init(&sg->dg, g->Cg, g->Og, g->in, g->out, g->k, g->d, g->p);
    const dgeom *dg = &sg->dg;
    if (dg->outP <= 0) return false;
    const int64_t qv = (((int64_t)g->out[0] - 1) * dg->pd[1] + g->out[1]) * dg->pd[2];
    const int64_t nq = (qv + DV - 1) / DV;
    sg->nq = (int)nq;
    sg->kslack = g->d[2] * (g->k[2] - 1);
    sg->x_floats = dg->img_floats + (size_t)sg->kslack;
    sg->y_floats = (size_t)g->Og * (size_t)nq * DV;
    if ((sg->x_floats + sg->y_floats) * sizeof(float) > PAD_BYTES) return false;
    if ((size_t)g->O * (size_t)g->K * DV * sizeof(float) > PARTIAL_BYTES / MAX_SLOTS) return false;
    /* useful fraction of the lanes and of the register tiles */
    const double lanes = (double)dg->outP / ((double)nq * DV);
    const int ots = (g->Og + SOT - 1) / SOT, tts = (int)((g->K + STT - 1) / STT);
    const double tiles = (double)g->Og * (double)g->K / ((double)ots * SOT * (double)tts * STT);
    return lanes * tiles >= 0.5;
}

/* acc[o][t] (+)= sum over nimg images i, then position vectors, of
 * yq[i][o] * (xp[i][off[t]] & mask) (image i's at xp + i * xis, yq + i * yis),
 * the sums kept in registers across the images; without MASK the input is
 * read unmasked (all finite: the zeros of yq at invalid positions cancel
 * it; masking a finite input changes no bit, as a sum that starts at +0
 * never holds -0). */
static inline __attribute__((always_inline)) void swkern(const int NO, const bool MASK, int nimg, int nq,
                                                         const float *yq, size_t ystride, size_t yis,
                                                         const float *xp, size_t xis,
                                                         const int32_t *off, const ivec *mk,
                                                         dvec *acc, size_t astride, int tr,
                                                         bool first) {
    dvec a[SOT][STT];
    for (int o = 0; o < NO; o++)
        for (int t = 0; t < STT; t++)
            a[o][t] = !first && t < tr ? vld((const float *)(acc + o * astride + t)) : (dvec){0};
    for (int i = 0; i < nimg; i++) {
        const float *xb[STT], *yi = yq + (size_t)i * yis;
        for (int t = 0; t < STT; t++) xb[t] = xp + (size_t)i * xis + off[t < tr ? t : tr - 1];
        for (int v = 0; v < nq; v++) {
            const size_t q = (size_t)v * DV;
            const ivec m = MASK ? mk[v] : (ivec){0};
            dvec y[SOT];
            for (int o = 0; o < NO; o++) y[o] = vld(yi + o * ystride + q);
            for (int t = 0; t < STT; t++) {
                ivec xi;
                memcpy(&xi, xb[t] + q, sizeof xi);
                if (MASK) xi &= m;
                dvec x;
                memcpy(&x, &xi, sizeof x);
                for (int o = 0; o < NO; o++) a[o][t] += y[o] * x;
            }
        }
    }
    for (int o = 0; o < NO; o++)
        for (int t = 0; t < tr; t++) vst((float *)(acc + o * astride + t), a[o][t]);
}

/* One image-group laid out for swkern: its input padded into xp (zeros
 * after it), its output gradient copied into yq at the padded row stride
 * with zeros at the invalid positions. Returns whether the input is all
 * finite. */
static bool swgrad_prep(const geom *g, const sgeom *sg, const float *x, const float *dy, float *xp, float *yq) {
    const dgeom *dg = &sg->dg;
    const int Og = g->Og, nq = sg->nq;
    const int P1 = dg->pd[1], P2 = dg->pd[2], OW = g->out[2];
    const size_t ys = (size_t)nq * DV;
    pad_image(dg, x, xp);
    memset(xp + dg->img_floats, 0, (size_t)sg->kslack * sizeof(float));
    /* finite input: no masking needed (x * 0 == 0) */
    uint32_t nonfin = 0;
    for (int64_t i = 0; i < (int64_t)g->Cg * g->inP; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        nonfin |= (u & 0x7f800000u) == 0x7f800000u;
    }
    for (int o = 0; o < Og; o++) {
        float *yo = yq + (size_t)o * ys;
        const float *so = dy + (size_t)o * g->outP;
        size_t done = 0; /* floats of yo written */
        for (int od = 0; od < g->out[0]; od++)
            for (int oh = 0; oh < g->out[1]; oh++) {
                const size_t at = ((size_t)od * P1 + oh) * P2;
                const float *src = so + ((size_t)od * g->out[1] + oh) * OW;
                for (size_t i = done; i < at; i++) yo[i] = 0.0f;
                for (int i = 0; i < OW; i++) yo[at + (size_t)i] = src[i];
                done = at + (size_t)OW;
            }
        for (size_t i = done; i < ys; i++) yo[i] = 0.0f;
    }
    return !nonfin;
}

/* vacc [Og][K] (DV lanes each) += (or, when first, =) the contribution of
 * nimg image-groups laid out by swgrad_prep at xp + i * sg->x_floats and
 * yq + i * sg->y_floats (finite: every input finite). */
static void swgrad_images(const geom *g, const sgeom *sg, int nimg, const float *xp, const float *yq, bool finite,
                          const int32_t *offs, const ivec *mk, dvec *vacc, bool first) {
    const int Og = g->Og, K = (int)g->K, nq = sg->nq;
    const size_t ys = (size_t)nq * DV, xis = sg->x_floats, yis = sg->y_floats;
    for (int o0 = 0; o0 < Og; o0 += SOT) {
        const int no = Og - o0 < SOT ? Og - o0 : SOT;
        const float *yo = yq + (size_t)o0 * ys;
        for (int t0 = 0; t0 < K; t0 += STT) {
            const int tr = K - t0 < STT ? K - t0 : STT;
            dvec *ac = vacc + (size_t)o0 * K + t0;
#define SW(NO)                                                                                          \
    (finite ? swkern(NO, false, nimg, nq, yo, ys, yis, xp, xis, offs + t0, mk, ac, (size_t)K, tr, first) \
            : swkern(NO, true, nimg, nq, yo, ys, yis, xp, xis, offs + t0, mk, ac, (size_t)K, tr, first))
            switch (no) {
#if SOT >= 6
            case 6: SW(6); break;
            case 5: SW(5); break;
#endif
            case 4: SW(4); break;
            case 3: SW(3); break;
            case 2: SW(2); break;
            default: SW(1); break;
            }
#undef SW
        }
    }
}

/* dW += sum_n dY[n] im2col(X[n])^T through swgrad_images, in the same fixed
 * image ranges as prim_bweight. */
static void small_bweight(const geom *g, const sgeom *sg, const float *X, const float *dY,
                          float *dW, int S, bool par, int nt) {
    const dgeom *dg = &sg->dg;
    const size_t wn = (size_t)g->O * (size_t)g->K;
    const int K = (int)g->K, kks = dg->kks;
    const int P1 = dg->pd[1], P2 = dg->pd[2];
    int32_t *offs = cx_arena_alloc((size_t)K * sizeof(int32_t));
    for (int c = 0; c < g->Cg; c++)
        for (int a = 0; a < g->k[0]; a++)
            for (int b = 0; b < g->k[1]; b++)
                for (int e = 0; e < g->k[2]; e++)
                    offs[((c * g->k[0] + a) * g->k[1] + b) * g->k[2] + e] =
                        (int32_t)((int64_t)c * dg->padP +
                                  ((int64_t)a * g->d[0] * P1 + (int64_t)b * g->d[1]) * P2 +
                                  (int64_t)e * g->d[2]);
    (void)kks;
    ivec *mk = cx_arena_alloc((size_t)sg->nq * sizeof(ivec));
    for (int v = 0; v < sg->nq; v++) {
        int32_t lane[DV];
        for (int l = 0; l < DV; l++) {
            int64_t q = (int64_t)v * DV + l;
            int64_t ow = q % P2, r = q / P2, oh = r % P1, od = r / P1;
            lane[l] = ow < g->out[2] && oh < g->out[1] && od < g->out[0] ? -1 : 0;
        }
        memcpy(&mk[v], lane, sizeof lane);
    }
    /* images laid out and summed in chunks of up to CH (about SW_CHUNK_BYTES):
     * a register tile's sums stay in registers over a chunk's images (one
     * image is a few position vectors: LeNet's second layer 9) */
    const size_t per = sg->x_floats + sg->y_floats;
    int CH = (int)(SW_CHUNK_BYTES / (per * sizeof(float)));
    if (CH < 1) CH = 1;
    if (CH > (g->N + S - 1) / S) CH = (g->N + S - 1) / S;
    const int nbuf = par ? nt : 1;
    float *bufs = cx_arena_alloc((size_t)nbuf * CH * per * sizeof(float));
    dvec *part = cx_arena_alloc((size_t)S * wn * sizeof(dvec));
    (void)par;
    CX_OMP(parallel for schedule(static) if(par))
    for (int s = 0; s < S; s++) {
        float *xb = bufs + (size_t)(par ? thread_id() : 0) * CH * per, *yb = xb + (size_t)CH * sg->x_floats;
        dvec *ps = part + (size_t)s * wn;
        int n0 = (int)((int64_t)g->N * s / S), n1 = (int)((int64_t)g->N * (s + 1) / S);
        if (n1 == n0) memset(ps, 0, wn * sizeof(dvec));
        for (int gi = 0; gi < g->G; gi++)
            for (int c0 = n0; c0 < n1; c0 += CH) {
                const int nc = n1 - c0 < CH ? n1 - c0 : CH;
                bool finite = true;
                for (int i = 0; i < nc; i++)
                    finite &= swgrad_prep(g, sg, X + ((size_t)(c0 + i) * g->C + (size_t)gi * g->Cg) * g->inP,
                                          dY + ((size_t)(c0 + i) * g->O + (size_t)gi * g->Og) * g->outP,
                                          xb + (size_t)i * sg->x_floats, yb + (size_t)i * sg->y_floats);
                swgrad_images(g, sg, nc, xb, yb, finite, offs, mk, ps + (size_t)gi * g->Og * K, c0 == n0);
            }
    }
    CX_OMP(parallel for schedule(static) if(wn * S * DV > CX_PAR_MIN))
    for (int64_t i = 0; i < (int64_t)wn; i++) {
        dvec v = part[i];
        for (int s = 1; s < S; s++) v += part[(size_t)s * wn + (size_t)i];
        float lane[DV], h = 0;
        memcpy(lane, &v, sizeof lane);
        for (int l = 0; l < DV; l++) h += lane[l];
        dW[i] += h;
    }
}

/* ---------------------------------------------------------------- primitives */
/* Images in parallel (one column buffer per thread) when there are enough
 * of them; otherwise one image at a time with threaded GEMMs / im2col. */
static bool images_parallel(const geom *g, int nt) {
    double flops = 2.0 * g->N * g->O * (double)g->K * (double)g->outP;
    return nt > 1 && g->N >= nt && flops >= 2e6;
}

static float *scratch(int nbuf, size_t floats) {
    return nbuf > 0 && floats > 0 ? cx_arena_alloc((size_t)nbuf * floats * sizeof(float)) : NULL;
}

static size_t tile_floats(const geom *g) {
    return g->direct ? 0 : (size_t)g->K * (size_t)g->tile_rows * (size_t)g->out[2];
}

/* The column matrix [K, (r1-r0)*OW] of output rows [r0, r1) of image-group
 * xg and its row stride: xg itself for a 1x1 stride-1 unpadded convolution,
 * else im2col into col. */
static const float *col_operand(const geom *g, const float *xg, int r0, int r1, float *col,
                                bool par, int *ld) {
    if (g->direct) {
        *ld = (int)g->inP;
        return xg + (size_t)r0 * g->out[2];
    }
    im2col(g, xg, r0, r1, col, par);
    *ld = (r1 - r0) * g->out[2];
    return col;
}

/* ---------------------------------------------------------------- folded images */
/* Small images make the per-image GEMMs of the column-matrix path thin (one
 * image's outP columns) and dominated by packing and call overhead. For
 * them a chunk of nb images is folded into one GEMM instead: their column
 * matrices side by side, [K, nb * outP], and the output (gradient) moved
 * between [nb][Og][outP] and [Og][nb * outP]. 1-D and 2-D convolutions. */
/* Fold when an image has at most this many output positions... */
#define FOLD_MAX_P 256
/* ...and at least two images' column matrices fit this many bytes. */
#define FOLD_BYTES ((size_t)1 << 20)
/* Rows of the column matrix are written, and rows of the padded window read,
 * FOLD_V floats at a time past their end (the next row overwrites the
 * excess); the window has FOLD_V floats of slack. */
#define FOLD_V 8
typedef float fold_vec __attribute__((vector_size(FOLD_V * sizeof(float))));

/* Images per folded chunk (N at most), or 0: no folding. */
static int fold_images(const geom *g, int N) {
    if (N < 2 || g->outP > FOLD_MAX_P || g->tile_rows < g->rows) return 0;
    if (g->in[0] != 1 || g->out[0] != 1 || g->k[0] != 1) return 0;
    const size_t per = (size_t)g->K * (size_t)g->outP * sizeof(float);
    const size_t nb = per ? FOLD_BYTES / per : 0;
    if (nb < 2) return 0;
    return nb > (size_t)N ? N : (int)nb;
}

/* The zero-padded window of one image-group that the outputs read:
 * [Cg][PH][PW], PH = (OH-1)*sh + dh*(kh-1) + 1 (likewise PW). */
static void fold_pad_dims(const geom *g, int *PH, int *PW) {
    *PH = (g->out[1] - 1) * g->s[1] + g->d[1] * (g->k[1] - 1) + 1;
    *PW = (g->out[2] - 1) * g->s[2] + g->d[2] * (g->k[2] - 1) + 1;
}
static size_t fold_pad_floats(const geom *g) {
    int PH, PW;
    fold_pad_dims(g, &PH, &PW);
    return (size_t)g->Cg * PH * PW + FOLD_V;
}
/* Row stride of a folded column matrix of nb images. */
static int64_t fold_ld(const geom *g, int nb) { return (int64_t)nb * g->outP; }

/* idx[q] = the offset in the padded window of output position q's tap (0, 0). */
static int32_t *fold_index(const geom *g) {
    int PH, PW;
    fold_pad_dims(g, &PH, &PW);
    (void)PH;
    int32_t *idx = cx_arena_alloc((size_t)g->outP * sizeof(int32_t));
    for (int oh = 0; oh < g->out[1]; oh++)
        for (int ow = 0; ow < g->out[2]; ow++)
            idx[oh * g->out[2] + ow] = (int32_t)oh * g->s[1] * PW + (int32_t)ow * g->s[2];
    return idx;
}

/* pad [Cg][PH][PW] (+ FOLD_V zeros) = the zero-padded window of image-group x. */
static void fold_pad(const geom *g, const float *x, float *pad) {
    const int inH = g->in[1], inW = g->in[2];
    int PH, PW;
    fold_pad_dims(g, &PH, &PW);
    const int lo = g->p[2] < PW ? g->p[2] : PW; /* first column with data */
    int hi = g->p[2] + inW;
    if (hi > PW) hi = PW;
    for (int c = 0; c < g->Cg; c++)
        for (int y = 0; y < PH; y++) {
            float *row = pad + ((size_t)c * PH + y) * PW;
            const int sy = y - g->p[1];
            if (sy < 0 || sy >= inH || hi <= lo) {
                memset(row, 0, (size_t)PW * sizeof(float));
                continue;
            }
            const float *src = x + ((size_t)c * inH + sy) * inW - g->p[2];
            int xx = 0;
            for (; xx < lo; xx++) row[xx] = 0.0f;
            for (; xx < hi; xx++) row[xx] = src[xx];
            for (; xx < PW; xx++) row[xx] = 0.0f;
        }
    memset(pad + (size_t)g->Cg * PH * PW, 0, FOLD_V * sizeof(float));
}

static void fold_cols_image(const geom *g, const float *x, float *col, int64_t ld,
                            float *pad, const int32_t *idx) {
    const int64_t P = g->outP;
    const int kh_n = g->k[1], kw_n = g->k[2], OH = g->out[1], OW = g->out[2];
    const int sh = g->s[1], dh = g->d[1], dw = g->d[2];
    int PH, PW;
    fold_pad_dims(g, &PH, &PW);
    const size_t plane = (size_t)PH * PW;
    /* stride 1: rows [0, vrows) are copied in whole vectors, the excess past
     * a row's OW floats being overwritten by the next rows; the later rows
     * (whose excess would pass the image's P floats) in scalars. The reads
     * stay in the window + FOLD_V. */
    const int vw = (OW + FOLD_V - 1) / FOLD_V * FOLD_V;
    int vrows = P >= vw ? (int)((P - vw) / OW) + 1 : 0;
    if (vrows > OH) vrows = OH;
    fold_pad(g, x, pad);
    for (int c = 0; c < g->Cg; c++)
        for (int kh = 0; kh < kh_n; kh++)
            for (int kw = 0; kw < kw_n; kw++) {
                const int64_t krow = ((int64_t)c * kh_n + kh) * kw_n + kw;
                float *dst = col + (size_t)(krow * ld);
                const float *src = pad + c * plane + (size_t)kh * dh * PW + (size_t)kw * dw;
                if (g->s[2] != 1) {
                    for (int64_t q = 0; q < P; q++) dst[q] = src[idx[q]];
                    continue;
                }
                int oh = 0;
                for (; oh < vrows; oh++) {
                    const float *sr = src + (size_t)oh * sh * PW;
                    float *dr = dst + (size_t)oh * OW;
                    for (int xx = 0; xx < OW; xx += FOLD_V) {
                        fold_vec v;
                        memcpy(&v, sr + xx, sizeof v);
                        memcpy(dr + xx, &v, sizeof v);
                    }
                }
                for (; oh < OH; oh++) {
                    const float *sr = src + (size_t)oh * sh * PW;
                    float *dr = dst + (size_t)oh * OW;
                    for (int xx = 0; xx < OW; xx++) dr[xx] = sr[xx];
                }
            }
}

/* col [K][m * outP] (rows ld >= m * outP apart) from images [n0, n0 + m)
 * of group gi of X, through the padded window of each image (pads: one
 * fold_pad_floats buffer per thread when par). The short rows make the
 * generic im2col's per-row bounds work dominate; here a stride-1 column row
 * is OH vector copies (idx: fold_index, for other strides). */
static void fold_cols(const geom *g, const float *X, int gi, int n0, int m, float *col,
                      int64_t ld, float *pads, const int32_t *idx, bool par) {
    const size_t pf = fold_pad_floats(g);
    if (!par) {
        for (int j = 0; j < m; j++)
            fold_cols_image(g, X + ((size_t)(n0 + j) * g->C + (size_t)gi * g->Cg) * g->inP,
                            col + (size_t)j * g->outP, ld, pads, idx);
        return;
    }
    CX_OMP(parallel for schedule(static))
    for (int j = 0; j < m; j++)
        fold_cols_image(g, X + ((size_t)(n0 + j) * g->C + (size_t)gi * g->Cg) * g->inP,
                        col + (size_t)j * g->outP, ld, pads + (size_t)thread_id() * pf, idx);
}

#if defined(__AVX512F__)
/* dst[2 i] += src[i] for i < n, eight at a time: src spread to the even
 * lanes of a vector, the odd elements of dst neither read nor written
 * (a strided scalar loop was 40% of a stride-2 input gradient) */
static void add_to_even(float *dst, const float *src, int n) {
    const __m512i spread = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (int i = 0; i < n; i += 8) {
        const int m = n - i < 8 ? n - i : 8;
        const __mmask16 even = (__mmask16)(0x5555u & ((1u << (2 * m - 1)) - 1));
        const __m512 v = _mm512_castps256_ps512(_mm256_maskz_loadu_ps((__mmask8)((1u << m) - 1), src + i));
        const __m512 d = _mm512_maskz_loadu_ps(even, dst + 2 * i);
        _mm512_mask_storeu_ps(dst + 2 * i, even, _mm512_add_ps(d, _mm512_permutexvar_ps(spread, v)));
    }
}
#endif

/* One row of a column matrix (one tap) added into the padded window at the
 * positions idx (fold_index) from dst. */
static inline __attribute__((always_inline)) void uncol_row(const geom *g, const float *restrict src,
                                                            float *restrict dst, const int32_t *idx, int PW) {
#if defined(__AVX512F__)
    if (g->s[2] == 2) { /* output row by row, into every other column */
        for (int oh = 0; oh < g->out[1]; oh++)
            add_to_even(dst + (size_t)oh * g->s[1] * PW, src + (size_t)oh * g->out[2], g->out[2]);
        return;
    }
#else
    (void)PW;
#endif
    /* the positions of one row are distinct */
    for (int64_t q = 0; q < g->outP; q++) dst[idx[q]] += src[q];
}

/* dX += col2im of col [K][m * outP] (rows ld apart) for images
 * [n0, n0 + m) of group gi, summed in a padded window (pad) first. */
static void fold_uncols(const geom *g, const float *col, int64_t ld, int gi, int n0, int m,
                        float *dX, float *pads, const int32_t *idx, bool par) {
    const int64_t P = g->outP;
    const int inH = g->in[1], inW = g->in[2], kh_n = g->k[1], kw_n = g->k[2];
    int PH, PW;
    fold_pad_dims(g, &PH, &PW);
    const size_t plane = (size_t)PH * PW, pf = fold_pad_floats(g);
    (void)par, (void)pf;
    CX_PFOR(par,
    for (int j = 0; j < m; j++) {
        float *pad = pads + (size_t)(par ? thread_id() : 0) * pf;
        memset(pad, 0, (size_t)g->Cg * plane * sizeof(float));
        for (int c = 0; c < g->Cg; c++)
            for (int kh = 0; kh < kh_n; kh++)
                for (int kw = 0; kw < kw_n; kw++) {
                    const int64_t krow = ((int64_t)c * kh_n + kh) * kw_n + kw;
                    const float *restrict src = col + (size_t)(krow * ld) + (size_t)j * P;
                    float *restrict dst =
                        pad + c * plane + (size_t)kh * g->d[1] * PW + (size_t)kw * g->d[2];
                    uncol_row(g, src, dst, idx, PW);
                }
        float *x = dX + ((size_t)(n0 + j) * g->C + (size_t)gi * g->Cg) * g->inP;
        for (int c = 0; c < g->Cg; c++)
            for (int y = 0; y < inH; y++) {
                const int py = y + g->p[1];
                if (py >= PH) break;
                const float *restrict row = pad + c * plane + (size_t)py * PW + g->p[2];
                float *restrict dr = x + ((size_t)c * inH + y) * inW;
                /* the columns xx with xx + p2 < PW (no test in the loop: it vectorises) */
                const int nx = inW < PW - g->p[2] ? inW : PW - g->p[2];
                for (int xx = 0; xx < nx; xx++) dr[xx] += row[xx];
            }
    });
}

/* dyg [Og][m * outP] (rows ld apart) = the output (gradient) of group gi,
 * images [n0, n0 + m). */
static void fold_gather(const geom *g, const float *dY, int gi, int n0, int m, float *dyg,
                        int64_t ld) {
    const int64_t P = g->outP;
    for (int j = 0; j < m; j++)
        for (int o = 0; o < g->Og; o++)
            memcpy(dyg + (size_t)o * ld + (size_t)j * P,
                   dY + ((size_t)(n0 + j) * g->O + (size_t)gi * g->Og + o) * P,
                   (size_t)P * sizeof(float));
}

static void fold_fwd(const geom *g, int nb, const float *X, const float *W, const float *bias,
                     float *Y, bool accumulate) {
    const int64_t P = g->outP, ld = fold_ld(g, nb);
    const int nt = nthreads();
    const bool par = nt > 1 && images_parallel(g, nt);
    float *col = cx_arena_alloc((size_t)g->K * ld * sizeof(float));
    float *t = cx_arena_alloc((size_t)g->Og * ld * sizeof(float));
    float *pad = cx_arena_alloc((size_t)(par ? nt : 1) * fold_pad_floats(g) * sizeof(float));
    const int32_t *idx = fold_index(g);
    for (int gi = 0; gi < g->G; gi++) {
        const float *wg = W + (size_t)gi * g->Og * g->K;
        for (int n0 = 0; n0 < g->N; n0 += nb) {
            const int m = g->N - n0 < nb ? g->N - n0 : nb;
            fold_cols(g, X, gi, n0, m, col, ld, pad, idx, par);
            cx_sgemm(false, false, g->Og, (int)(m * P), (int)g->K, 1.0f, wg, (int)g->K, col,
                     (int)ld, 0.0f, t, (int)ld);
            for (int j = 0; j < m; j++)
                for (int o = 0; o < g->Og; o++) {
                    const float *to = t + (size_t)o * ld + (size_t)j * P;
                    float *yo = Y + ((size_t)(n0 + j) * g->O + (size_t)gi * g->Og + o) * P;
                    if (accumulate) {
                        for (int64_t q = 0; q < P; q++) yo[q] += to[q];
                    } else if (bias) {
                        const float bv = bias[gi * g->Og + o];
                        for (int64_t q = 0; q < P; q++) yo[q] = bv + to[q];
                    } else {
                        memcpy(yo, to, (size_t)P * sizeof(float));
                    }
                }
        }
    }
}

/* dX += col2im(W^T dY) with folded chunks. */
static void fold_bdata(const geom *g, int nb, const float *dY, const float *W, float *dX) {
    const int64_t P = g->outP, ld = fold_ld(g, nb);
    const int nt = nthreads();
    const bool par = nt > 1 && images_parallel(g, nt);
    float *col = cx_arena_alloc((size_t)g->K * ld * sizeof(float));
    float *dyg = cx_arena_alloc((size_t)g->Og * ld * sizeof(float));
    float *pad = cx_arena_alloc((size_t)(par ? nt : 1) * fold_pad_floats(g) * sizeof(float));
    const int32_t *idx = fold_index(g);
    for (int gi = 0; gi < g->G; gi++) {
        const float *wg = W + (size_t)gi * g->Og * g->K;
        for (int n0 = 0; n0 < g->N; n0 += nb) {
            const int m = g->N - n0 < nb ? g->N - n0 : nb;
            fold_gather(g, dY, gi, n0, m, dyg, ld);
            cx_sgemm(true, false, (int)g->K, (int)(m * P), g->Og, 1.0f, wg, (int)g->K, dyg,
                     (int)ld, 0.0f, col, (int)ld);
            fold_uncols(g, col, ld, gi, n0, m, dX, pad, idx, par);
        }
    }
}

/* accT[G][K][Og] += sum over images [n0, n1) as bweight_range, folded in
 * chunks of nb images; buf holds fold_bweight_floats(g, nb) floats. */
static size_t fold_bweight_floats(const geom *g, int nb) {
    return (size_t)(g->K + g->Og) * (size_t)fold_ld(g, nb) + fold_pad_floats(g);
}
static void fold_bweight_range(const geom *g, int nb, const float *X, const float *dY, int n0,
                               int n1, float *accT, float *buf, const int32_t *idx) {
    const int64_t P = g->outP, ld = fold_ld(g, nb);
    float *col = buf, *dyg = buf + (size_t)g->K * ld, *pad = dyg + (size_t)g->Og * ld;
    for (int gi = 0; gi < g->G; gi++) {
        float *ag = accT + (size_t)gi * g->K * g->Og;
        for (int c0 = n0; c0 < n1; c0 += nb) {
            const int m = n1 - c0 < nb ? n1 - c0 : nb;
            fold_cols(g, X, gi, c0, m, col, ld, pad, idx, false);
            fold_gather(g, dY, gi, c0, m, dyg, ld);
            cx_sgemm(false, true, (int)g->K, g->Og, (int)(m * P), 1.0f, col, (int)ld, dyg,
                     (int)ld, 1.0f, ag, g->Og);
        }
    }
}

/* ---------------------------------------------------------------- strided 1x1 */
/* A 1x1 convolution with no padding and a stride above 1 (a ResNet's
 * projection shortcut) reads one input position in s0 s1 s2: its column
 * matrix is the subsampled input [Cg, outP]. It is gathered once per image
 * (pw_gather), the GEMMs run on it, and the input gradient is written
 * straight into dX: the strided positions from the GEMM's result, the
 * others zero when dX is fresh and untouched when accumulating. */
static bool pw_applies(const geom *g) {
    bool pw = !g->direct && direct_enabled();
    for (int i = 0; i < 3; i++) pw &= g->k[i] == 1 && g->p[i] == 0;
    return pw;
}

/* row[2x] (+)= ev[x], row[2x + 1] (+)= od[x] (0 when od is NULL) for the Wd
 * columns of a dX row. */
static inline void interleave2(float *row, const float *ev, const float *od, int Wd, bool accumulate) {
    int x0 = 0;
#if defined(__AVX512F__)
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (; x0 < Wd; x0 += 32) {
        const int n = Wd - x0 < 32 ? Wd - x0 : 32, ne = (n + 1) / 2, no = n / 2;
        const __m512 e = _mm512_maskz_loadu_ps((__mmask16)((1u << ne) - 1), ev + x0 / 2);
        const __m512 o = od ? _mm512_maskz_loadu_ps((__mmask16)((1u << no) - 1), od + x0 / 2) : _mm512_setzero_ps();
        __m512 lo = _mm512_permutex2var_ps(e, ilo, o), hi = _mm512_permutex2var_ps(e, ihi, o);
        const __mmask16 mlo = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
        const __mmask16 mhi = (__mmask16)(n > 16 ? (1u << (n - 16)) - 1 : 0);
        if (accumulate) {
            lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mlo, row + x0));
            hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mhi, row + x0 + 16));
        }
        _mm512_mask_storeu_ps(row + x0, mlo, lo);
        _mm512_mask_storeu_ps(row + x0 + 16, mhi, hi);
    }
#endif
    for (int x = x0; x < Wd; x++) {
        const float v = x & 1 ? (od ? od[x / 2] : 0.0f) : ev[x / 2];
        row[x] = accumulate ? row[x] + v : v;
    }
}

/* xs [Cg][outP] (rows ld apart) = the positions of image-group x that the
 * outputs read */
static void pw_gather(const geom *g, const float *x, float *xs, int64_t ld) {
    const int OD = g->out[0], OH = g->out[1], OW = g->out[2], s0 = g->s[0], s1 = g->s[1], s2 = g->s[2];
    const int64_t inH = g->in[1], inW = g->in[2];
    for (int c = 0; c < g->Cg; c++) {
        const float *xc = x + (size_t)c * g->inP;
        float *d = xs + (size_t)c * (size_t)ld;
        for (int od = 0; od < OD; od++)
            for (int oy = 0; oy < OH; oy++) {
                const float *src = xc + ((int64_t)od * s0 * inH + (int64_t)oy * s1) * inW;
                if (s2 == 2) take_even(d, src, OW);
                else
                    for (int ox = 0; ox < OW; ox++) d[ox] = src[(int64_t)ox * s2];
                d += OW;
            }
    }
}

/* image-group dx (+)= the scatter of t [Cg][outP] to the strided positions
 * (stored with zeros elsewhere unless accumulating) */
static void pw_scatter(const geom *g, const float *t, float *dx, bool accumulate) {
    const int OD = g->out[0], OH = g->out[1], OW = g->out[2], s0 = g->s[0], s1 = g->s[1], s2 = g->s[2];
    const int inD = g->in[0], inH = g->in[1], inW = g->in[2];
    for (int c = 0; c < g->Cg; c++) {
        const float *tc = t + (size_t)c * g->outP;
        float *xc = dx + (size_t)c * g->inP;
        for (int z = 0; z < inD; z++)
            for (int y = 0; y < inH; y++) {
                float *row = xc + ((size_t)z * inH + y) * inW;
                const bool hit = z % s0 == 0 && z / s0 < OD && y % s1 == 0 && y / s1 < OH;
                const float *tr = hit ? tc + ((size_t)(z / s0) * OH + y / s1) * OW : NULL;
                if (hit && s2 == 2) {
                    /* the row's first 2 OW columns (at most inW) in one pass:
                     * the values between zeros, or added (and zeros added) */
                    const int w = 2 * OW < inW ? 2 * OW : inW;
                    interleave2(row, tr, NULL, w, accumulate);
                    if (!accumulate && w < inW) memset(row + w, 0, (size_t)(inW - w) * sizeof(float));
                    continue;
                }
                if (!accumulate) memset(row, 0, (size_t)inW * sizeof(float));
                if (!hit) continue;
                for (int ox = 0; ox < OW; ox++) row[(size_t)ox * s2] += tr[ox];
            }
    }
}

/* Forward (Y (+)= W xs, + bias unless accumulating) or, with bdata, the
 * input gradient (dX (+)= the scatter of W^T dY): images in parallel, one
 * [Cg][outP] buffer per thread for the gathered input or the product. */
static void pw_run(const geom *g, bool bdata, const float *X, const float *W, const float *bias, float *Y,
                   const float *dY, float *dX, bool accumulate) {
    const int nt = nthreads();
    const bool par = images_parallel(g, nt);
    const size_t tf = (size_t)g->Cg * (size_t)g->outP;
    float *bufs = scratch(par ? nt : 1, tf);
    (void)par;
    CX_PFOR(par,
    for (int n = 0; n < g->N; n++) {
        float *t = bufs + (size_t)(par ? thread_id() : 0) * tf;
        for (int gi = 0; gi < g->G; gi++) {
            const float *wg = W + (size_t)gi * g->Og * g->Cg;
            const size_t xo = ((size_t)n * g->C + (size_t)gi * g->Cg) * g->inP;
            const size_t yo = ((size_t)n * g->O + (size_t)gi * g->Og) * g->outP;
            if (bdata) {
                cx_sgemm(true, false, g->Cg, (int)g->outP, g->Og, 1.0f, wg, g->Cg, dY + yo, (int)g->outP, 0.0f, t,
                         (int)g->outP);
                pw_scatter(g, t, dX + xo, accumulate);
                continue;
            }
            float *yg = Y + yo;
            if (!accumulate && bias)
                for (int o = 0; o < g->Og; o++)
                    for (int64_t q = 0; q < g->outP; q++) yg[(size_t)o * g->outP + q] = bias[gi * g->Og + o];
            pw_gather(g, X + xo, t, g->outP);
            cx_sgemm(false, false, g->Og, (int)g->outP, g->Cg, 1.0f, wg, g->Cg, t, (int)g->outP,
                     (accumulate || bias) ? 1.0f : 0.0f, yg, (int)g->outP);
        }
    });
}

/* accT[G][Cg][Og] += sum over images [n0, n1) of xs[n] dY[n]^T, nb images
 * per GEMM (their subsampled inputs and output gradients side by side, so
 * the GEMM's inner dimension is nb * outP rather than one image's outP);
 * buf: (Cg + Og) * nb * outP floats. */
static void pw_bweight_range(const geom *g, int nb, const float *X, const float *dY, int n0, int n1,
                             float *accT, float *buf) {
    const int64_t P = g->outP, ld = (int64_t)nb * P;
    float *col = buf, *dyg = buf + (size_t)g->Cg * ld;
    for (int gi = 0; gi < g->G; gi++)
        for (int c0 = n0; c0 < n1; c0 += nb) {
            const int m = n1 - c0 < nb ? n1 - c0 : nb;
            for (int j = 0; j < m; j++)
                pw_gather(g, X + ((size_t)(c0 + j) * g->C + (size_t)gi * g->Cg) * g->inP, col + (size_t)j * P, ld);
            fold_gather(g, dY, gi, c0, m, dyg, ld);
            cx_sgemm(false, true, g->Cg, g->Og, (int)(m * P), 1.0f, col, (int)ld, dyg, (int)ld, 1.0f,
                     accT + (size_t)gi * g->Cg * g->Og, g->Og);
        }
}
/* Images per pw_bweight_range GEMM: their operands within FOLD_BYTES. */
static int pw_fold(const geom *g) {
    const size_t per = (size_t)(g->Cg + g->Og) * (size_t)g->outP * sizeof(float);
    const size_t nb = per ? FOLD_BYTES / per : 1;
    return nb < 1 ? 1 : nb > (size_t)g->N ? g->N : (int)nb;
}

/* ---------------------------------------------------------------- strided input gradient, direct
 * dX of a strided 2-D (or 1-D) convolution as s1 x s2 phase convolutions
 * of one padded copy of dY. The dX position (s1 i + a, s2 j + b) -- phase
 * (a, b), at (i, j) of its phase plane -- receives W[o][c][ky][kx] *
 * dY[o][i + r][j + e] for the taps with a + p1 - d1 ky = s1 r and
 * b + p2 - d2 kx = s2 e: a stride-1 convolution over (o, tap) with the
 * taps at fixed offsets (r, e) of dY. Each tap belongs to one phase
 * (phase (1, 1) of a 3x3 kernel at stride 2 has four, (0, 0) one).
 *
 * Each thread takes whole images: an image's dY is padded (lead1 rows and
 * lead2 columns in front, zeros behind) once and read by every phase. A
 * phase's products go flat -- vectors over q = i * PW + j of the
 * padded-width rows, the columns j >= the phase's width computed and
 * dropped -- into the image's phase buffer, from which they are
 * interleaved into dX. (The folded GEMM and col2im this
 * replaces took 2.4 ms for the small ResNet's 16 -> 32 layer, batch 64,
 * 1 thread; an earlier version of this, one direct convolution per phase
 * padding dY each time, was slower in the training step.) */
#define SBD_MAXS 4
typedef struct {
    dgeom pg;                       /* pad_image's geometry of the padded dY */
    int s1, s2, nph;                /* nph = s1 * s2 phases, phase a * s2 + b */
    int PW, lead1, lead2;
    int ha[SBD_MAXS], wb[SBD_MAXS]; /* phase plane rows (by a) and columns (by b) */
    int ntap[SBD_MAXS * SBD_MAXS];
    int64_t nq[SBD_MAXS * SBD_MAXS]; /* vectors of a phase's flat plane */
    int64_t tb_floats;              /* one image's phase buffer: Cg * sum nq * DV */
} sbgeom;

/* The shift s * r = a + p - d * k when s divides it. */
static bool sbd_shift(int a, int p, int d, int k, int s, int *r) {
    const int v = a + p - d * k;
    if (((v % s) + s) % s) return false;
    *r = v / s;
    return true;
}

/* Along one dimension (s phases of len[] positions, padding p, dilation d,
 * kernel k, output size out): the leading padding *lead that keeps every
 * tap's offset r >= 0, and *need, the padded length past it that the taps
 * of every position reach (at least out). */
static void sbd_extent(int s, const int *len, int p, int d, int k, int out, int *lead, int *need) {
    int rmin = 0, r;
    *need = out;
    for (int a = 0; a < s; a++)
        for (int t = 0; t < k; t++)
            if (len[a] && sbd_shift(a, p, d, t, s, &r)) {
                rmin = r < rmin ? r : rmin;
                *need = len[a] + r > *need ? len[a] + r : *need;
            }
    *lead = -rmin;
}

static bool sbd_init(const geom *g, sbgeom *sg) {
    memset(sg, 0, sizeof *sg);
    if (!direct_enabled() || g->direct || stride1(g) || g->in[0] != 1 || g->out[0] != 1 ||
        g->k[0] != 1 || g->s[0] != 1 || g->s[1] > SBD_MAXS || g->s[2] > SBD_MAXS)
        return false;
    const int s1 = g->s[1], s2 = g->s[2], OH = g->out[1], OW = g->out[2];
    const int H = g->in[1], W = g->in[2], kh = g->k[1], kw = g->k[2];
    sg->s1 = s1;
    sg->s2 = s2;
    sg->nph = s1 * s2;
    for (int a = 0; a < s1; a++) sg->ha[a] = H > a ? (H - a + s1 - 1) / s1 : 0;
    for (int b = 0; b < s2; b++) sg->wb[b] = W > b ? (W - b + s2 - 1) / s2 : 0;
    /* the reach of the phases' taps along rows and along columns */
    int need_h, need_w, r, e;
    sbd_extent(s1, sg->ha, g->p[1], g->d[1], kh, OH, &sg->lead1, &need_h);
    sbd_extent(s2, sg->wb, g->p[2], g->d[2], kw, OW, &sg->lead2, &need_w);
    const int PH = need_h + sg->lead1;
    sg->PW = need_w + sg->lead2;
    int64_t useful = 0, computed = 0, maxread = 0;
    for (int a = 0; a < s1; a++)
        for (int b = 0; b < s2; b++) {
            const int ph = a * s2 + b;
            int nt = 0;
            int64_t far = 0;
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                    if (sbd_shift(a, g->p[1], g->d[1], ky, s1, &r) && sbd_shift(b, g->p[2], g->d[2], kx, s2, &e)) {
                        nt++;
                        const int64_t o = (int64_t)(r + sg->lead1) * sg->PW + e + sg->lead2;
                        far = o > far ? o : far;
                    }
            sg->ntap[ph] = sg->ha[a] && sg->wb[b] ? nt : 0;
            if (!sg->ntap[ph]) continue;
            sg->nq[ph] = ((int64_t)sg->ha[a] * sg->PW + DV - 1) / DV;
            useful += (int64_t)sg->ha[a] * sg->wb[b];
            computed += sg->nq[ph] * DV;
            sg->tb_floats += (int64_t)g->Cg * sg->nq[ph] * DV;
            maxread = far + sg->nq[ph] * DV > maxread ? far + sg->nq[ph] * DV : maxread;
        }
    if (!computed || 2 * useful < computed) return false; /* too few useful lanes */
    dgeom *pg = &sg->pg;
    pg->Ci = g->Og;
    pg->in[0] = 1;
    pg->in[1] = OH;
    pg->in[2] = OW;
    pg->pd[0] = 1;
    pg->pd[1] = PH;
    pg->pd[2] = sg->PW;
    pg->p[1] = sg->lead1;
    pg->p[2] = sg->lead2;
    pg->s[0] = pg->s[1] = pg->s[2] = 1;
    pg->nph = 1;
    pg->inP = (int64_t)OH * OW;
    pg->phP = pg->padP = (int64_t)PH * sg->PW;
    /* the last channel's reads may run past its plane: slack, zeroed by pad_image */
    const int64_t slack = maxread > pg->padP ? maxread - pg->padP : 0;
    pg->img_floats = (size_t)g->Og * (size_t)pg->padP + (size_t)slack + DV;
    return pg->img_floats * sizeof(float) <= PAD_BYTES;
}

/* dX[n][g] (+)= the input gradient, for all images and groups. */
_Atomic long cx_conv_sbd_calls;
static void sbd_run(const geom *g, const sbgeom *sg, const float *dY, const float *W, float *dX,
                    bool accumulate) {
    cx_conv_sbd_calls++;
    const int Cg = g->Cg, Og = g->Og, kw = g->k[2], kks = g->k[1] * g->k[2];
    const int ots = (Cg + DMR - 1) / DMR, nph = sg->nph, PW = sg->PW;
    const int64_t padP = sg->pg.padP;
    /* per phase: packed weights ap[ot][o * ntap + t][i] = W[o][ot * DMR + i][tap t],
     * the offsets of its (o, tap) in the padded dY, its place in the phase buffer */
    float *ap[SBD_MAXS * SBD_MAXS];
    int32_t *offs[SBD_MAXS * SBD_MAXS];
    int16_t *taps[SBD_MAXS * SBD_MAXS];
    int64_t tbo[SBD_MAXS * SBD_MAXS] = {0};
    for (int ph = 0; ph < nph; ph++) {
        const int a = ph / sg->s2, b = ph % sg->s2, nt = sg->ntap[ph];
        ap[ph] = nt ? cx_arena_alloc((size_t)ots * DMR * Og * nt * sizeof(float)) : NULL;
        offs[ph] = nt ? cx_arena_alloc((size_t)Og * nt * sizeof(int32_t)) : NULL;
        taps[ph] = nt ? cx_arena_alloc((size_t)nt * sizeof(int16_t)) : NULL;
        int t = 0, r, e;
        for (int ky = 0; ky < g->k[1] && nt; ky++)
            for (int kx = 0; kx < kw; kx++)
                if (sbd_shift(a, g->p[1], g->d[1], ky, sg->s1, &r) && sbd_shift(b, g->p[2], g->d[2], kx, sg->s2, &e)) {
                    taps[ph][t] = (int16_t)(ky * kw + kx);
                    for (int o = 0; o < Og; o++)
                        offs[ph][o * nt + t] = (int32_t)(o * padP + (int64_t)(r + sg->lead1) * PW + e + sg->lead2);
                    t++;
                }
        if (ph) tbo[ph] = tbo[ph - 1] + (int64_t)Cg * sg->nq[ph - 1] * DV;
    }
    const bool par = nthreads() > 1 && g->N > 1 &&
                     2.0 * g->N * g->G * (double)Cg * Og * kks * (double)g->outP >= 2e6;
    const int nbuf = par ? nthreads() : 1;
    float *yps = cx_arena_alloc((size_t)nbuf * sg->pg.img_floats * sizeof(float));
    float *tbs = cx_arena_alloc((size_t)nbuf * (size_t)sg->tb_floats * sizeof(float));
    const int H = g->in[1], Wd = g->in[2], s1 = sg->s1, s2 = sg->s2;
    (void)par;
    for (int gi = 0; gi < g->G; gi++) {
        const float *wg = W + (size_t)gi * Og * g->K;
        for (int ph = 0; ph < nph; ph++) {
            const int nt = sg->ntap[ph];
            for (int ot = 0; ot < ots && nt; ot++)
                for (int o = 0; o < Og; o++)
                    for (int t = 0; t < nt; t++) {
                        float *dst = ap[ph] + (((size_t)ot * Og + o) * nt + t) * DMR;
                        for (int i = 0; i < DMR; i++) {
                            const int c = ot * DMR + i;
                            dst[i] = c < Cg ? wg[((size_t)o * Cg + c) * kks + taps[ph][t]] : 0.0f;
                        }
                    }
        }
        /* an image at a time per thread, from padding to dX: its copies stay
         * in that thread's cache (split across threads tile by tile, the
         * 16 -> 32 layer ran 1.14x faster at 2 threads than at 1) */
        CX_PFOR(par,
        for (int n = 0; n < g->N; n++) {
            const int tid = par ? thread_id() : 0;
            float *yp = yps + (size_t)tid * sg->pg.img_floats, *tb = tbs + (size_t)tid * sg->tb_floats;
            const size_t img = (size_t)n * g->G + gi;
            pad_image(&sg->pg, dY + img * Og * g->outP, yp);
            for (int ph = 0; ph < nph; ph++) {
                const int nt = sg->ntap[ph], K = Og * nt;
                if (!nt) continue;
                const int kb = KBLOCK / nt > 0 ? KBLOCK / nt * nt : nt;
                const int64_t nq = sg->nq[ph], ost = nq * DV;
                for (int64_t v0 = 0; v0 < nq; v0 += DNV) {
                    const int nv = nq - v0 < DNV ? (int)(nq - v0) : DNV;
                    dtile tl;
                    for (int v = 0; v < nv; v++) {
                        tl.b[v] = yp + (v0 + v) * DV;
                        tl.out[v] = tb + tbo[ph] + (v0 + v) * DV;
                        tl.nval[v] = DV;
                    }
                    for (int k0 = 0; k0 < K; k0 += kb) {
                        const int T = K - k0 < kb ? K - k0 : kb;
                        for (int ot = 0; ot < ots; ot++) {
                            const int mr = Cg - ot * DMR < DMR ? Cg - ot * DMR : DMR;
                            dkern_n(nv, T, ap[ph] + ((size_t)ot * K + k0) * DMR, DMR, offs[ph] + k0, &tl,
                                    (ptrdiff_t)ot * DMR * ost, (ptrdiff_t)ost, mr, k0 > 0, NULL);
                        }
                    }
                }
            }
            /* interleave the phases into dX */
            for (int c = 0; c < Cg; c++) {
                float *xc = dX + (img * Cg + (size_t)c) * g->inP;
                for (int y = 0; y < H; y++) {
                    const int a = y % s1, i = y / s1;
                    float *row = xc + (size_t)y * Wd;
                    const int p0 = a * s2;
                    if (s2 == 2 && sg->ntap[p0] && sg->ntap[p0 + 1]) {
                        /* the common case, pairs of columns */
                        const float *ev = tb + tbo[p0] + (size_t)c * sg->nq[p0] * DV + (size_t)i * PW;
                        const float *od = tb + tbo[p0 + 1] + (size_t)c * sg->nq[p0 + 1] * DV + (size_t)i * PW;
                        interleave2(row, ev, od, Wd, accumulate);
                        continue;
                    }
                    for (int b = 0; b < s2; b++) {
                        const int ph = p0 + b, wbb = sg->wb[b];
                        if (!sg->ntap[ph]) {
                            if (!accumulate)
                                for (int x = 0; x < wbb; x++) row[(size_t)x * s2 + b] = 0.0f;
                            continue;
                        }
                        const float *src = tb + tbo[ph] + (size_t)c * sg->nq[ph] * DV + (size_t)i * PW;
                        if (accumulate)
                            for (int x = 0; x < wbb; x++) row[(size_t)x * s2 + b] += src[x];
                        else
                            for (int x = 0; x < wbb; x++) row[(size_t)x * s2 + b] = src[x];
                    }
                }
            }
        });
    }
}

/* Y[n] (+)= W * im2col(X[n]) (+ bias when given and not accumulating). */
static void prim_fwd(const geom *g, const float *X, const float *W, const float *bias, float *Y,
                     bool accumulate) {
    dgeom dg;
    if (pw_applies(g)) {
        pw_run(g, false, X, W, bias, Y, NULL, NULL, accumulate);
        return;
    }
    if (wino_fwd(g)) {
        cx_conv_wino_run(g->G, g->N, g->Cg, g->Og, g->in, g->out, g->p, X, W, false, bias, Y,
                         accumulate);
        return;
    }
    if (direct_fwd_geom(g, &dg)) {
        direct_run(&dg, g->G, g->N, X, W, false, bias, Y, accumulate);
        return;
    }
    const int nb = fold_images(g, g->N);
    if (nb) {
        fold_fwd(g, nb, X, W, bias, Y, accumulate);
        return;
    }
    const int nt = nthreads();
    const bool par = images_parallel(g, nt);
    const size_t tf = tile_floats(g);
    float *cols = scratch(par ? nt : 1, tf);
    const int OW = g->out[2];
    (void)par;
    CX_PFOR(par,
    for (int n = 0; n < g->N; n++) {
        float *col = cols ? cols + (size_t)(par ? thread_id() : 0) * tf : NULL;
        float *yn = Y + (size_t)n * g->O * g->outP;
        if (!accumulate) {
            if (bias) {
                for (int o = 0; o < g->O; o++) {
                    float bv = bias[o], *yo = yn + (size_t)o * g->outP;
                    for (int64_t p = 0; p < g->outP; p++) yo[p] = bv;
                }
            }
        }
        const float beta = (accumulate || bias) ? 1.0f : 0.0f;
        for (int gi = 0; gi < g->G; gi++) {
            const float *xg = X + ((size_t)n * g->C + (size_t)gi * g->Cg) * g->inP;
            const float *wg = W + (size_t)gi * g->Og * g->K;
            float *yg = yn + (size_t)gi * g->Og * g->outP;
            for (int r0 = 0; r0 < g->rows; r0 += g->tile_rows) {
                int r1 = r0 + g->tile_rows < g->rows ? r0 + g->tile_rows : g->rows;
                int L = (r1 - r0) * OW, ldb;
                const float *B = col_operand(g, xg, r0, r1, col, !par, &ldb);
                cx_sgemm(false, false, g->Og, L, (int)g->K, 1.0f, wg, (int)g->K, B, ldb, beta,
                         yg + (size_t)r0 * OW, (int)g->outP);
            }
        }
    });
}

/* dX[n] (+)= col2im(W^T dY[n]): accumulated, or (accumulate false) stored
 * over whatever dX held. */
static void prim_bdata(const geom *g, const float *dY, const float *W, float *dX,
                       bool accumulate) {
    dgeom dg;
    if (pw_applies(g)) {
        pw_run(g, true, NULL, W, NULL, NULL, dY, dX, accumulate);
        return;
    }
    sbgeom sg;
    if (sbd_init(g, &sg)) {
        sbd_run(g, &sg, dY, W, dX, accumulate);
        return;
    }
    /* AUTO: small images whose channels fill the channel-vector tile: faster
     * than Winograd's partial tiles (the pixel DQN's 10x5 maps, 32 -> 16
     * channels, batch 64: forward + backward 1.54-1.68 vs 1.75-2.0 ms) */
    if (algo() == 2 && small_image(g) && direct_bdata_geom(g, &dg) && cvec_applies(&dg)) {
        direct_run(&dg, g->G, g->N, dY, W, true, NULL, dX, accumulate);
        return;
    }
    if (wino_bdata(g)) {
        int pb[3];
        bdata_pad(g, pb);
        cx_conv_wino_run(g->G, g->N, g->Og, g->Cg, g->out, g->in, pb, dY, W, true, NULL, dX,
                         accumulate);
        return;
    }
    if (direct_bdata_geom(g, &dg)) {
        direct_run(&dg, g->G, g->N, dY, W, true, NULL, dX, accumulate);
        return;
    }
    if (!accumulate) memset(dX, 0, (size_t)g->N * g->C * (size_t)g->inP * sizeof(float));
    const int nb = fold_images(g, g->N);
    if (nb) {
        fold_bdata(g, nb, dY, W, dX);
        return;
    }
    const int nt = nthreads();
    const bool par = images_parallel(g, nt);
    const size_t tf = tile_floats(g);
    float *cols = scratch(par ? nt : 1, tf);
    const int OW = g->out[2];
    (void)par;
    CX_PFOR(par,
    for (int n = 0; n < g->N; n++) {
        float *col = cols ? cols + (size_t)(par ? thread_id() : 0) * tf : NULL;
        for (int gi = 0; gi < g->G; gi++) {
            float *xg = dX + ((size_t)n * g->C + (size_t)gi * g->Cg) * g->inP;
            const float *wg = W + (size_t)gi * g->Og * g->K;
            const float *yg = dY + ((size_t)n * g->O + (size_t)gi * g->Og) * g->outP;
            for (int r0 = 0; r0 < g->rows; r0 += g->tile_rows) {
                int r1 = r0 + g->tile_rows < g->rows ? r0 + g->tile_rows : g->rows;
                int L = (r1 - r0) * OW;
                if (g->direct) {
                    cx_sgemm(true, false, (int)g->K, L, g->Og, 1.0f, wg, (int)g->K,
                             yg + (size_t)r0 * OW, (int)g->outP, 1.0f, xg + (size_t)r0 * OW,
                             (int)g->inP);
                } else {
                    cx_sgemm(true, false, (int)g->K, L, g->Og, 1.0f, wg, (int)g->K,
                             yg + (size_t)r0 * OW, (int)g->outP, 0.0f, col, L);
                    col2im(g, col, r0, r1, xg, !par);
                }
            }
        }
    });
}

/* accT[G][K][Og] += sum over images [n0, n1) of (dY[n] im2col(X[n])^T)^T,
 * computed as im2col(X[n]) dY[n]^T: the column matrix is the GEMM's large
 * left operand, which runs faster than the [Og, K] orientation. */
static void bweight_range(const geom *g, const float *X, const float *dY, int n0, int n1,
                          float *accT, float *col, bool inner_par) {
    const int OW = g->out[2];
    for (int n = n0; n < n1; n++)
        for (int gi = 0; gi < g->G; gi++) {
            const float *xg = X + ((size_t)n * g->C + (size_t)gi * g->Cg) * g->inP;
            const float *yg = dY + ((size_t)n * g->O + (size_t)gi * g->Og) * g->outP;
            float *ag = accT + (size_t)gi * g->K * g->Og;
            for (int r0 = 0; r0 < g->rows; r0 += g->tile_rows) {
                int r1 = r0 + g->tile_rows < g->rows ? r0 + g->tile_rows : g->rows;
                int L = (r1 - r0) * OW, lda;
                const float *A = col_operand(g, xg, r0, r1, col, inner_par, &lda);
                cx_sgemm(false, true, (int)g->K, g->Og, L, 1.0f, A, lda, yg + (size_t)r0 * OW,
                         (int)g->outP, 1.0f, ag, g->Og);
            }
        }
}

/* dW += sum_n dY[n] im2col(X[n])^T. The images are split into S fixed
 * ranges (S depends on N and the weight size only); each range sums into
 * its own (transposed) partial in image order and the partials are added to
 * dW in range order, so the result does not depend on the thread count. */
static void prim_bweight(const geom *g, const float *X, const float *dY, float *dW) {
    const size_t wn = (size_t)g->O * (size_t)g->K;
    int S = g->N < MAX_SLOTS ? g->N : MAX_SLOTS;
    size_t cap = PARTIAL_BYTES / (wn * sizeof(float) + 1);
    if ((size_t)S > cap) S = cap > 0 ? (int)cap : 1;
    if (S < 1) S = 1;
    const int nt = nthreads();
    const bool par = S > 1 && images_parallel(g, nt);
    if (wino_bweight(g, S)) {
        cx_conv_wino_bweight(g->G, g->N, g->Cg, g->Og, g->in, g->out, g->p, X, dY, dW, S, par);
        return;
    }
    wgeom wg;
    const bool pw = pw_applies(g);
    if (!pw && wgeom_init(g, &wg)) {
        direct_bweight(g, &wg, X, dY, dW, S, par, nt);
        return;
    }
    sgeom sg;
    if (!pw && sgeom_init(g, &sg)) {
        small_bweight(g, &sg, X, dY, dW, S, par, nt);
        return;
    }
    /* folded chunks stay inside one image range */
    const int pnb = pw ? pw_fold(g) : 0;
    const int nb = pw ? 0 : fold_images(g, (g->N + S - 1) / S);
    const size_t tf = pw ? (size_t)(g->Cg + g->Og) * (size_t)pnb * (size_t)g->outP
                         : nb ? fold_bweight_floats(g, nb) : tile_floats(g);
    float *cols = scratch(par ? nt : 1, tf);
    float *part = cx_arena_alloc((size_t)S * wn * sizeof(float));
    const int32_t *idx = nb ? fold_index(g) : NULL;
    (void)par;
    CX_OMP(parallel for schedule(static) if(par))
    for (int s = 0; s < S; s++) {
        float *col = cols ? cols + (size_t)(par ? thread_id() : 0) * tf : NULL;
        float *ps = part + (size_t)s * wn;
        memset(ps, 0, wn * sizeof(float));
        int n0 = (int)((int64_t)g->N * s / S), n1 = (int)((int64_t)g->N * (s + 1) / S);
        if (pw) pw_bweight_range(g, pnb, X, dY, n0, n1, ps, col);
        else if (nb) fold_bweight_range(g, nb, X, dY, n0, n1, ps, col, idx);
        else bweight_range(g, X, dY, n0, n1, ps, col, !par);
    }
    const int64_t K = g->K;
    const int Og = g->Og;
    CX_OMP(parallel for schedule(static) if(wn * S > CX_PAR_MIN))
    for (int go = 0; go < g->O; go++) {
        int gi = go / Og, o = go - gi * Og;
        float *dw = dW + (size_t)go * K;
        const float *pt = part + (size_t)gi * K * Og + o;
        for (int64_t k = 0; k < K; k++) {
            float v = 0;
            for (int s = 0; s < S; s++) v += pt[(size_t)s * wn + (size_t)k * Og];
            dw[k] += v;
        }
    }
}

/* db[c] += sum over n and positions of dY[n, c, :] (dY [N, Cn, P]). */
static void bias_grad(const float *dY, int N, int Cn, int64_t P, float *db) {
    CX_OMP(parallel for schedule(static) if((int64_t)N * Cn * P > CX_PAR_MIN))
    for (int c = 0; c < Cn; c++) {
        double acc = 0;
        for (int n = 0; n < N; n++) {
            const float *y = dY + ((size_t)n * Cn + c) * (size_t)P;
            float s = 0;
            CX_OMP(simd reduction(+ : s))
            for (int64_t p = 0; p < P; p++) s += y[p];
            acc += s;
        }
        db[c] += (float)acc;
    }
}

/* ---------------------------------------------------------------- ops */
static void conv_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    const conv_saved *sv = nd->saved;
    const geom *g = &sv->g;
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    bool fresh; /* gx just created: the primitives store instead of accumulating */
    float *gx = cx_in_grad_w(nd, 0, &fresh), *gw = cx_in_grad(nd, 1);
    float *gb = nd->n_in > 2 ? cx_in_grad(nd, 2) : NULL;
    const float *G = out->grad;
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk = cx_arena_get_mark(a);
    if (!sv->transposed) {
        if (gb) bias_grad(G, g->N, g->O, g->outP, gb);
        if (gw) prim_bweight(g, CX_F(x), G, gw);
        if (gx) prim_bdata(g, G, CX_F(w), gx, !fresh);
    } else {
        /* conv view: the result (and its gradient) is the conv-input. */
        if (gb) bias_grad(G, g->N, g->C, g->inP, gb);
        if (gw) prim_bweight(g, G, CX_F(x), gw);
        if (gx) prim_fwd(g, G, CX_F(w), NULL, gx, !fresh);
    }
    cx_arena_rewind(a, mk);
}

static void norm_opts(const char *op, const cx_conv_opts *o, int nd, bool transposed,
                      int s[3], int p[3], int d[3], int op_[3], int *groups) {
    cx_conv_opts def = cx_conv_defaults();
    if (!o) o = &def;
    for (int i = 0; i < nd; i++) {
        s[i] = o->stride[i] ? o->stride[i] : 1;
        d[i] = o->dilation[i] ? o->dilation[i] : 1;
        p[i] = o->padding[i];
        op_[i] = transposed ? o->output_padding[i] : 0;
        if (s[i] < 1) cx_fatal("%s: stride must be >= 1, got %d", op, s[i]);
        if (d[i] < 1) cx_fatal("%s: dilation must be >= 1, got %d", op, d[i]);
        if (p[i] < 0) cx_fatal("%s: padding must be >= 0, got %d", op, p[i]);
        if (op_[i] < 0) cx_fatal("%s: output_padding must be >= 0, got %d", op, op_[i]);
        if (transposed && op_[i] >= s[i] && op_[i] >= d[i])
            cx_fatal("%s: output_padding (%d) must be smaller than either stride (%d) or "
                     "dilation (%d)", op, op_[i], s[i], d[i]);
    }
    *groups = o->groups ? o->groups : 1;
    if (*groups < 1) cx_fatal("%s: groups must be >= 1, got %d", op, *groups);
}

static void finish_geom(geom *g) {
    g->Cg = g->C / g->G;
    g->Og = g->O / g->G;
    g->inP = (int64_t)g->in[0] * g->in[1] * g->in[2];
    g->outP = (int64_t)g->out[0] * g->out[1] * g->out[2];
    g->K = (int64_t)g->Cg * g->k[0] * g->k[1] * g->k[2];
    g->rows = g->out[0] * g->out[1];
    g->direct = true;
    for (int i = 0; i < 3; i++) g->direct &= g->k[i] == 1 && g->s[i] == 1 && g->p[i] == 0;
    size_t row_bytes = (size_t)g->K * (size_t)g->out[2] * sizeof(float);
    size_t tr = row_bytes ? COL_BYTES / row_bytes : 1;
    if (tr < 1) tr = 1;
    g->tile_rows = tr > (size_t)g->rows ? (g->rows > 0 ? g->rows : 1) : (int)tr;
}

CX_OP_DEF(conv1d, .backward = conv_backward);
CX_OP_DEF(conv2d, .backward = conv_backward);
CX_OP_DEF(conv3d, .backward = conv_backward);
CX_OP_DEF(conv_transpose1d, .backward = conv_backward);
CX_OP_DEF(conv_transpose2d, .backward = conv_backward);
CX_OP_DEF(conv_transpose3d, .backward = conv_backward);
static const cx_op_desc *const conv_ops[2][4] = {
    {NULL, &cx_opd_conv1d, &cx_opd_conv2d, &cx_opd_conv3d},
    {NULL, &cx_opd_conv_transpose1d, &cx_opd_conv_transpose2d, &cx_opd_conv_transpose3d}};

static cx_tensor *conv_impl(const cx_op_desc *odesc, cx_tensor *x, cx_tensor *w, cx_tensor *b, int nd,
                            const cx_conv_opts *o, bool transposed) {
    const char *op = odesc->name;
    char s1[96], s2[96], s3[96];
    cx_need_f32(op, x);
    cx_need_f32(op, w);
    if (b) cx_need_f32(op, b);
    if (x->ndim != nd + 2 || w->ndim != nd + 2)
        cx_fatal("%s: expected a %d-D input [N, C, %s] and a %d-D weight, got input %s and "
                 "weight %s", op, nd + 2, nd == 1 ? "L" : nd == 2 ? "H, W" : "D, H, W", nd + 2,
                 cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
    int s[3], p[3], d[3], opd[3], groups;
    norm_opts(op, o, nd, transposed, s, p, d, opd, &groups);
    geom g;
    memset(&g, 0, sizeof g);
    g.N = x->shape[0];
    g.G = groups;
    const int off = 3 - nd;
    for (int i = 0; i < 3; i++) {
        g.in[i] = g.out[i] = g.k[i] = g.s[i] = g.d[i] = 1;
        g.p[i] = 0;
    }
    int xc = x->shape[1];
    int res_ch; /* channels of the result */
    int out_shape[CX_MAX_DIMS];
    if (!transposed) {
        g.C = xc;
        g.O = w->shape[0];
        if (xc % groups || g.O % groups)
            cx_fatal("%s: groups (%d) must divide the input channels (%d) and the output channels "
                     "(%d); input %s, weight %s", op, groups, xc, g.O,
                     cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
        if ((int64_t)w->shape[1] * groups != xc)
            cx_fatal("%s: weight %s with groups=%d expects input with %lld channels, got input %s",
                     op, cx_shape_str(w, s1, sizeof s1), groups,
                     (long long)w->shape[1] * groups, cx_shape_str(x, s2, sizeof s2));
        for (int i = 0; i < nd; i++) {
            int L = x->shape[2 + i], k = w->shape[2 + i];
            int span = d[i] * (k - 1) + 1;
            if (k < 1 || (int64_t)span > (int64_t)L + 2 * (int64_t)p[i])
                cx_fatal("%s: kernel size %d (dilated %d) is larger than the padded input size %lld "
                         "(dim %d); input %s, weight %s", op, k, span, (long long)L + 2 * p[i],
                         2 + i, cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
            g.in[off + i] = L;
            g.k[off + i] = k;
            g.s[off + i] = s[i];
            g.p[off + i] = p[i];
            g.d[off + i] = d[i];
            g.out[off + i] = cx_conv_out_size(L, k, s[i], p[i], d[i]);
            out_shape[2 + i] = g.out[off + i];
        }
        res_ch = g.O;
    } else {
        /* conv view: O = x channels (w dim 0), C = result channels */
        g.O = xc;
        if (w->shape[0] != xc)
            cx_fatal("%s: weight %s expects input with %d channels (weight dim 0), got input %s",
                     op, cx_shape_str(w, s1, sizeof s1), w->shape[0], cx_shape_str(x, s2, sizeof s2));
        if (xc % groups)
            cx_fatal("%s: groups (%d) must divide the input channels (%d); input %s, weight %s", op,
                     groups, xc, cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
        g.C = w->shape[1] * groups;
        for (int i = 0; i < nd; i++) {
            int L = x->shape[2 + i], k = w->shape[2 + i];
            int ot = cx_conv_transpose_out_size(L, k, s[i], p[i], d[i], opd[i]);
            if (k < 1 || ot < 1)
                cx_fatal("%s: output size %d < 1 along dim %d (input %s, weight %s, stride %d, "
                         "padding %d, dilation %d, output_padding %d)", op, ot, 2 + i,
                         cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2), s[i], p[i],
                         d[i], opd[i]);
            g.in[off + i] = ot;
            g.out[off + i] = L;
            g.k[off + i] = k;
            g.s[off + i] = s[i];
            g.p[off + i] = p[i];
            g.d[off + i] = d[i];
            out_shape[2 + i] = ot;
        }
        res_ch = g.C;
    }
    if (b && b->numel != res_ch)
        cx_fatal("%s: bias %s does not match %d output channels (weight %s)", op,
                 cx_shape_str(b, s1, sizeof s1), res_ch, cx_shape_str(w, s3, sizeof s3));
    finish_geom(&g);
    out_shape[0] = g.N;
    out_shape[1] = res_ch;
    cx_shape_numel(op, out_shape, nd + 2);
    cx_tensor *out = cx_new_like_shape(out_shape, nd + 2);
    if (out->numel > 0 && x->numel > 0) {
        cx_arena *a = cx_arena_current();
        cx_arena_mark mk = cx_arena_get_mark(a);
        if (!transposed) {
            /* a persistent weight in a no-grad run may come packed from the
             * current cache (conv_pack.h); arena memory is reused, never cached */
            const bool prev = tl_pack_this;
            tl_pack_this = tl_pack && w->persistent && !cx_grad_enabled();
            prim_fwd(&g, CX_F(x), CX_F(w), b ? CX_F(b) : NULL, CX_F(out), false);
            tl_pack_this = prev;
        } else {
            prim_bdata(&g, CX_F(x), CX_F(w), CX_F(out), false);
            if (b) {
                const float *bb = CX_F(b);
                float *y = CX_F(out);
                CX_OMP(parallel for schedule(static) if(out->numel > CX_PAR_MIN))
                for (int64_t nc = 0; nc < (int64_t)g.N * g.C; nc++) {
                    float bv = bb[nc % g.C], *yp = y + (size_t)nc * g.inP;
                    for (int64_t q = 0; q < g.inP; q++) yp[q] += bv;
                }
            }
        }
        cx_arena_rewind(a, mk);
    } else if (out->numel > 0) {
        memset(CX_F(out), 0, (size_t)out->numel * sizeof(float));
    }
    cx_tensor *in[3] = {x, w, b};
    conv_saved sv = {.g = g, .transposed = transposed};
    cx_record_saved(odesc, out, in, b ? 3 : 2, &sv, sizeof sv);
    return out;
}

cx_tensor *cx_conv(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    if (!x || !w) cx_fatal("conv: NULL input or weight");
    int nd = x->ndim - 2;
    if (nd < 1 || nd > 3)
        cx_fatal("conv: input must have 3, 4 or 5 dims ([N, C, *spatial]), got %d", x->ndim);
    return conv_impl(conv_ops[0][nd], x, w, b, nd, o, false);
}

cx_tensor *cx_conv2d_ex(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    return conv_impl(&cx_opd_conv2d, x, w, b, 2, o, false);
}

cx_tensor *cx_conv2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, int stride_h, int stride_w,
                     int pad_h, int pad_w, int dil_h, int dil_w, int groups) {
    if (stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1 || groups < 1)
        cx_fatal("conv2d: stride (%d, %d), dilation (%d, %d) and groups (%d) must be >= 1",
                 stride_h, stride_w, dil_h, dil_w, groups);
    cx_conv_opts o = {{stride_h, stride_w, 1}, {pad_h, pad_w, 0}, {dil_h, dil_w, 1}, {0, 0, 0}, groups};
    return conv_impl(&cx_opd_conv2d, x, w, b, 2, &o, false);
}

cx_tensor *cx_conv1d(cx_tensor *x, cx_tensor *w, cx_tensor *b, int stride, int pad, int dil,
                     int groups) {
    if (stride < 1 || dil < 1 || groups < 1)
        cx_fatal("conv1d: stride (%d), dilation (%d) and groups (%d) must be >= 1", stride, dil,
                 groups);
    cx_conv_opts o = {{stride, 1, 1}, {pad, 0, 0}, {dil, 1, 1}, {0, 0, 0}, groups};
    return conv_impl(&cx_opd_conv1d, x, w, b, 1, &o, false);
}

cx_tensor *cx_conv3d(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    return conv_impl(&cx_opd_conv3d, x, w, b, 3, o, false);
}

cx_tensor *cx_conv_transpose2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    return conv_impl(&cx_opd_conv_transpose2d, x, w, b, 2, o, true);
}

cx_tensor *cx_conv_transpose(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    if (!x || !w) cx_fatal("conv_transpose: NULL input or weight");
    int nd = x->ndim - 2;
    if (nd < 1 || nd > 3)
        cx_fatal("conv_transpose: input must have 3, 4 or 5 dims ([N, C, *spatial]), got %d",
                 x->ndim);
    return conv_impl(conv_ops[1][nd], x, w, b, nd, o, true);
}
