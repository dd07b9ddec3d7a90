/* Channels-last 2-D convolution (cx_conv2d_nhwc, conv.h).
 *
 * x [N, H, W, C] (PyTorch's channels_last memory order), weight in PyTorch's
 * layout [O, C, KH, KW], result [N, OH, OW, O]. Stride and padding of any
 * size, one group, dilation 1 run on the kernels below; other geometries
 * are the channels-first convolution between two permutes.
 *
 * Every lane of a vector holds a real output whatever the image's width:
 * vectors run over output channels, and each input value is read by a
 * broadcast. The forward pass and the input gradient share one register
 * tile (rtile), R output positions of one row x CB vectors of channels,
 * summed over groups of up to 3 taps that read one input row at consecutive
 * offsets (each broadcast then feeds up to 3 multiply-adds) and over the
 * input channels. The input rows come through a small per-thread ring of
 * padded rows, stored channel by channel and split by the stride's phase, so
 * that the R positions of a tap are R consecutive floats: the image is never
 * copied whole with its padding. The input gradient of a strided
 * convolution is one such sum per phase of dX's columns (the taps that
 * reach it), written at every s-th position.
 *
 * The weight gradient works on bands of output rows whose dY and padded
 * input rows stay in L1: for each kernel row it sums all the kernel row's
 * taps at once (their inputs are KW * C consecutive floats of the padded
 * row), with the same register tile, turned (vectors over those KW * C
 * inputs, dY broadcast). The backward pass goes image by image: each
 * image's weight gradient, then its input gradient while its dY is in
 * cache. Weight-gradient sums run over fixed image ranges, reduced in a
 * fixed order: the same bits for any thread count.
 *
 * 3x3 stride-1 layers whose channels are whole vectors take Winograd
 * F(4x4, 3x3) (or F(2x2, 3x3), cx_conv_set_winograd_tile) instead in all
 * three passes (its section says how).
 *
 * cx_conv2d_bn_nhwc (at the end) adds a batch norm (and residual add and
 * relu) to the convolution as one op. */
#include "conv_kern.h"
#include "layout.h"
#include "../cpu/cpu.h"
#include "../cpu/transpose.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if DV == 16
#define NACC 28 /* accumulators of a tile: 32 vector registers */
#else
#define NACC 12
#endif
#define RMAX 14  /* positions of a tile */
#define WSLOTS 8 /* image ranges of the weight gradient */

static int nthreads(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

typedef struct {
    int N, H, W, C, O, KH, KW, sh, sw, ph, pw, OH, OW;
} ngeom;

/* The kernels below were measured faster than the channels-first ones only
 * with 512-bit vectors (32 registers for the tiles). */
bool cx_conv_nhwc_preferred(void) { return DV == 16; }

static int rup(int a, int b) { return (a + b - 1) / b * b; }

/* ---------------------------------------------------------------- the tile */
/* Full unrolling of the tile's loops over compile-time bounds: without it
 * GCC kept the group loops rolled, with the sums in memory. */
#define UNROLL _Pragma("GCC unroll 32")
/* y[r * ystep + c * DV + l] (+)= sum over tap groups g, channels i < nred of
 *   sum_k  x_g[i * xcs + r + k] * w_gk[i * wcs + c * DV + l],   k < M_g,
 * for r < R, c < CB, the lanes l < ovalid - c * DV. A group is M_g <= 3
 * taps that read one row at consecutive offsets (a kernel row's columns at
 * stride 1, or those of one phase of a stride): each input value is then
 * broadcast once for up to three multiply-adds, where one tap per group
 * loads as many values as it computes products and runs at the speed of
 * the loads (16->16 at 28x28, batch 64, forward: 1.91 -> 1.77 ms).
 * ng[0..2]: the number of groups of 3, 2 and 1 taps, in that order in gx (a
 * row pointer each) and gw (M_g weight pointers each). The sums start from
 * y (accumulate), from init, or from 0. */
static inline __attribute__((always_inline)) void rtile(const int R, const int CB, const int *ng,
                                                        const float *const *gx, const float *const *gw,
                                                        int nred, ptrdiff_t xcs, ptrdiff_t wcs, float *y,
                                                        ptrdiff_t ystep, int ovalid, const float *init,
                                                        bool accumulate) {
    dvec acc[RMAX][4];
    for (int c = 0; c < CB; c++) {
        const int nv = ovalid - c * DV;
        dvec v0 = init ? vld(init + c * DV) : (dvec){0};
        for (int r = 0; r < R; r++) {
            if (accumulate) {
                const float *o = y + r * ystep + c * DV;
                acc[r][c] = nv >= DV ? vld(o) : nv > 0 ? vld_part(o, nv) : (dvec){0};
            } else {
                acc[r][c] = v0;
            }
        }
    }
    /* the groups of M taps (written out once per M: passed to a helper,
     * the sums went to the stack on every step) */
#define RGROUP(M)                                                                                         \
    for (int g = 0; g < ng[3 - (M)]; g++) {                                                                \
        const float *x = gx[g];                                                                            \
        const float *w0 = gw[g * (M)], *w1 = gw[g * (M) + ((M) > 1 ? 1 : 0)], *w2 = gw[g * (M) + ((M) > 2 ? 2 : 0)]; \
        for (int i = 0; i < nred; i++) {                                                                   \
            dvec wv[3][4];                                                                                 \
            for (int c = 0; c < CB; c++) {                                                                 \
                wv[0][c] = vld(w0 + c * DV);                                                               \
                if ((M) > 1) wv[1][c] = vld(w1 + c * DV);                                                  \
                if ((M) > 2) wv[2][c] = vld(w2 + c * DV);                                                  \
            }                                                                                              \
            UNROLL for (int q = 0; q < R + (M) - 1; q++) {                                                 \
                const float xv = x[q];                                                                     \
                UNROLL for (int k = 0; k < (M); k++) {                                                     \
                    const int r = q - k;                                                                   \
                    if (r < 0 || r >= R) continue;                                                         \
                    UNROLL for (int c = 0; c < CB; c++) acc[r][c] += wv[k][c] * xv;                        \
                }                                                                                          \
            }                                                                                              \
            x += xcs;                                                                                      \
            w0 += wcs;                                                                                     \
            w1 += wcs;                                                                                     \
            w2 += wcs;                                                                                     \
        }                                                                                                  \
    }                                                                                                      \
    gx += ng[3 - (M)];                                                                                     \
    gw += (M) * ng[3 - (M)];
    RGROUP(3)
    RGROUP(2)
    RGROUP(1)
#undef RGROUP
    for (int c = 0; c < CB; c++) {
        const int nv = ovalid - c * DV;
        if (nv <= 0) break;
        for (int r = 0; r < R; r++) {
            float *o = y + r * ystep + c * DV;
            if (nv >= DV) vst(o, acc[r][c]);
            else vst_part(o, acc[r][c], nv);
        }
    }
}

/* switch (R) over the tile sizes 1..14, calling F(R, CC) with both as constants */
#define R_SWITCH(F, CC)                                                                                \
    switch (R) {                                                                                       \
    case 1: F(1, CC); break;                                                                           \
    case 2: F(2, CC); break;                                                                           \
    case 3: F(3, CC); break;                                                                           \
    case 4: F(4, CC); break;                                                                           \
    case 5: F(5, CC); break;                                                                           \
    case 6: F(6, CC); break;                                                                           \
    case 7: F(7, CC); break;                                                                           \
    case 8: F(8, CC); break;                                                                           \
    case 9: F(9, CC); break;                                                                           \
    case 10: F(10, CC); break;                                                                         \
    case 11: F(11, CC); break;                                                                         \
    case 12: F(12, CC); break;                                                                         \
    case 13: F(13, CC); break;                                                                         \
    default: F(14, CC); break;                                                                         \
    }

/* R_SWITCH over CB = 1, 2 or 4 too (the Winograd products' channel blocks) */
#define CB_SWITCH(F)                                                                                   \
    if (CB == 1) R_SWITCH(F, 1)                                                                        \
    else if (CB == 2) R_SWITCH(F, 2)                                                                   \
    else R_SWITCH(F, 4)

static void rtile_n(int R, int CB, const int *ng, const float *const *gx, const float *const *gw, int nred,
                    ptrdiff_t xcs, ptrdiff_t wcs, float *y, ptrdiff_t ystep, int ovalid, const float *init,
                    bool accumulate) {
#define RT(RR, CC) rtile(RR, CC, ng, gx, gw, nred, xcs, wcs, y, ystep, ovalid, init, accumulate)
#define RSW(CC) R_SWITCH(RT, CC)
    if (CB == 1) RSW(1)
    else if (CB == 2) RSW(2)
    else if (CB == 3) RSW(3)
    else RSW(4)
#undef RSW
#undef RT
}

/* Vectors per channel block for nout output channels, when the tile's
 * groups have up to mmax taps (their weights take registers too). */
static int pick_cb(int nout, int mmax) {
    const int nv = (nout + DV - 1) / DV;
    if (nv % 4 == 0 && mmax <= 1) return 4;
    return nv % 2 == 0 ? 2 : 1;
}
/* Positions per tile: R * CB sums and mmax * CB weights in the registers. */
static int rmax_for(int CB, int mmax) {
    const int regs = DV == 16 ? 31 : 15;
    int r = (regs - (mmax > 0 ? mmax : 1) * CB) / CB;
    if (r > NACC / CB) r = NACC / CB;
    return r > RMAX ? RMAX : r < 1 ? 1 : r;
}

/* The groups of taps of one row: the kernel columns kw = ph + s m (m <
 * cnt) of one phase, split into runs of at most 3 consecutive m. Appends
 * (row + offset of the run's first m, its weights) to the lists by size:
 * lists[M - 1] gets M weight pointers per group. off0: the column offset
 * of m = 0; dm: +1 when the run's later taps read later columns (forward),
 * -1 when they read earlier ones (input gradient: the run is reversed so
 * that its first tap reads the first column). */
typedef struct {
    int n[3];
    const float **x[3];
    const float **w[3];
} glist;
static void add_runs(glist *gl, const float *row, int off0, int dm, int cnt, const float *const *wm) {
    for (int m0 = 0; m0 < cnt; m0 += 3) {
        const int M = cnt - m0 < 3 ? cnt - m0 : 3;
        const int li = M - 1, gi = gl->n[li]++;
        if (dm > 0) {
            gl->x[li][gi] = row + off0 + m0;
            for (int k = 0; k < M; k++) gl->w[li][gi * M + k] = wm[m0 + k];
        } else {
            /* taps m0 .. m0+M-1 read columns off0 - m: the first column is that of m0 + M - 1 */
            gl->x[li][gi] = row + off0 - (m0 + M - 1);
            for (int k = 0; k < M; k++) gl->w[li][gi * M + k] = wm[m0 + M - 1 - k];
        }
    }
}
/* Packs the lists as rtile reads them: groups of 3, then 2, then 1. */
static void pack_groups(const glist *gl, const float **gx, const float **gw, int *ng) {
    int xi = 0, wi = 0;
    for (int li = 2; li >= 0; li--) {
        ng[2 - li] = gl->n[li];
        for (int g = 0; g < gl->n[li]; g++) {
            gx[xi++] = gl->x[li][g];
            for (int k = 0; k <= li; k++) gw[wi++] = gl->w[li][g * (li + 1) + k];
        }
    }
}

/* ---------------------------------------------------------------- padded rows */
/* A ring of nslot padded input rows, each [cin][phase][wq] floats: column
 * q = j * s + phase of the padded row is input column q - lpad (zeros
 * outside the row). Tags say which (image, row) a slot holds. */
typedef struct {
    float *buf;
    int64_t *tag;
    int nslot, cin, s, wq, lpad, win;
    int64_t slot_floats;
} ring;

static void ring_init(ring *rg, float *buf, int64_t *tag, int nslot, int cin, int s, int wq, int lpad,
                      int win) {
    rg->buf = buf;
    rg->tag = tag;
    rg->nslot = nslot;
    rg->cin = cin;
    rg->s = s;
    rg->wq = wq;
    rg->lpad = lpad;
    rg->win = win;
    rg->slot_floats = (int64_t)cin * s * wq;
    memset(buf, 0, (size_t)(rg->slot_floats * nslot) * sizeof(float));
    for (int i = 0; i < nslot; i++) tag[i] = -1;
}
static int64_t ring_floats(int nslot, int cin, int s, int wq) { return (int64_t)nslot * cin * s * wq; }

/* The calling thread's own scratch (cx_tscratch) in this file: each slot
 * holds one kind of buffer, so that buffers a thread uses at the same time
 * never share one. */
enum { TS_FBATCH, TS_WEIGHTS, TS_RING, TS_WPAD, TS_WPTRS, TS_DY, TS_ONE_X, TS_ONE_T };

/* a ring's buffer (rf floats), its tags (nslot) and the tap lists (16 ntaps
 * pointers) in the calling thread's TS_RING scratch */
static void ring_scratch(int64_t rf, int nslot, int ntaps, float **buf, int64_t **tags, const float ***tp) {
    const size_t fb = ((size_t)rf * sizeof(float) + 63) / 64 * 64, tb = ((size_t)nslot * sizeof(int64_t) + 63) / 64 * 64;
    char *p = cx_tscratch(TS_RING, fb + tb + (size_t)16 * ntaps * sizeof(float *));
    *buf = (float *)(void *)p;
    *tags = (int64_t *)(void *)(p + fb);
    *tp = (const float **)(void *)(p + fb + tb);
}

/* dst[c * ldd + i] = src[i * ld + c] for i < rows, c < cols, in blocks of 8
 * rows; the last, partial block through a zero-padded copy, which also
 * writes zeros to the up to 7 columns after the last row, when the
 * destination has room for them (the ring keeps RMAX floats of padding). A row of 28 pixels left 4 of them to a
 * scalar loop, a 7-wide one all 7. */
static void ring_transpose(const float *src, size_t ld, float *dst, size_t ldd, int rows, int cols, int room) {
    const int full = rows / 8 * 8;
    if (full) cx_transpose_block(src, ld, dst, ldd, full, cols);
    if (full == rows) return;
    if (cols > 256 || full + 8 > room) {
        cx_transpose_block(src + (size_t)full * ld, ld, dst + full, ldd, rows - full, cols);
        return;
    }
    float tmp[8 * 256];
    for (int i = 0; i < 8; i++) {
        if (full + i < rows) memcpy(tmp + (size_t)i * cols, src + (size_t)(full + i) * ld, (size_t)cols * sizeof(float));
        else memset(tmp + (size_t)i * cols, 0, (size_t)cols * sizeof(float));
    }
    cx_transpose_block(tmp, (size_t)cols, dst + full, ldd, 8, cols);
}

/* The padded row `row` (its tag: key) of src [win][cin]. */
static const float *ring_row(ring *rg, int64_t key, int row, const float *src) {
    const int slot = row % rg->nslot;
    float *d = rg->buf + slot * rg->slot_floats;
    if (rg->tag[slot] == key) return d;
    rg->tag[slot] = key;
    const int s = rg->s, cin = rg->cin;
    const size_t xcs = (size_t)s * rg->wq;
    for (int ph = 0; ph < s; ph++) {
        /* input columns ix with (ix + lpad) % s == ph */
        int ix0 = ((ph - rg->lpad) % s + s) % s;
        if (ix0 >= rg->win) continue;
        int cnt = (rg->win - 1 - ix0) / s + 1;
        const int j0 = (ix0 + rg->lpad) / s;
        if (j0 + cnt > rg->wq) cnt = rg->wq - j0;
        if (cnt <= 0) continue;
        ring_transpose(src + (size_t)ix0 * cin, (size_t)s * cin, d + (size_t)ph * rg->wq + j0, xcs, cnt, cin,
                       rg->wq - j0);
    }
    (void)row;
    return d;
}

/* Tasks of the row passes: images, or row ranges of them when there are
 * fewer images than twice the threads. */
static int row_chunks(int N, int rows, int nt) {
    if (nt <= 1 || N >= 2 * nt) return 1;
    int c = (2 * nt + N - 1) / N;
    return c > rows ? rows : c;
}

/* ---------------------------------------------------------------- Winograd */
/* 3x3 convolutions of stride 1 and padding 1 whose channel counts are
 * whole vectors, in the forward pass and the input gradient (which is
 * such a convolution of dY with the kernel turned by 180 degrees and its
 * channels swapped), by Winograd F(m x m, 3x3), m = 2 or 4: per m x m
 * block of outputs (a tile), the A x A inputs d (A = m + 2) become
 * V = B^T d B, the weights U = G w G^T, and the NE = A^2 products M = U V
 * (summed over input channels: NE small matrix products [tiles x C] x
 * [C x O]) give the outputs A^T M A. Multiply-adds per output and channel
 * pair: 9 for the direct sum, 4 for F(2x2), 2.25 for F(4x4); the rest (the
 * transforms) are additions over channel vectors, which the floating-point
 * adders run beside the multiply-adds. Tiles go by chunks of tile rows
 * whose V and M stay in L1/L2. The sums differ from the direct ones by
 * rounding: F(2x2)'s transforms only halve and add (error at most 1.3e-7
 * of the sum of the absolute values of an output's products, the direct
 * sums 2.4e-7), F(4x4)'s multiply by up to 8 and cancel more (at most
 * 2e-6 of that sum; rms 3-6x the direct sums' error; measured on unit
 * normal data, 16-64 channels). */

/* CX_WINOGRAD_TILE / cx_conv_set_winograd_tile (conv.h): 0 automatic, 2, 4 */
static _Atomic int wino_tile = -1;
void cx_conv_set_winograd_tile(int m) {
    if (m != 0 && m != 2 && m != 4)
        cx_fatal("cx_conv_set_winograd_tile: tile %d (expected 0 for automatic, 2 or 4)", m);
    wino_tile = m;
}
int cx_conv_get_winograd_tile(void) {
    int m = wino_tile;
    if (m < 0) {
        const char *e = getenv("CX_WINOGRAD_TILE");
        m = e && !strcmp(e, "2") ? 2 : e && !strcmp(e, "4") ? 4 : 0;
        wino_tile = m;
    }
    return m;
}

/* The tile's output side m for this layer (2 or 4), or 0: no Winograd. */
static int wino_m(const ngeom *g) {
#if DV == 16
    if (g->KH != 3 || g->KW != 3 || g->sh != 1 || g->sw != 1 || g->ph != 1 || g->pw != 1) return 0;
    if (g->C % DV || g->O % DV) return 0;
    const cx_conv_algo a = cx_conv_get_algo();
    if (a != CX_CONV_AUTO && a != CX_CONV_WINOGRAD) return 0;
    const int m = cx_conv_get_winograd_tile();
    return m ? m : 4;
#else
    (void)g;
    return 0;
#endif
}

/* G (A x 3) of F(2x2, 3x3) and F(4x4, 3x3) */
static const float WG2[4 * 3] = {1, 0, 0, 0.5f, 0.5f, 0.5f, 0.5f, -0.5f, 0.5f, 0, 0, 1};
static const float WG4[6 * 3] = {1 / 4.f,  0,         0,        -1 / 6.f, -1 / 6.f, -1 / 6.f,
                                 -1 / 6.f, 1 / 6.f,   -1 / 6.f, 1 / 24.f, 1 / 12.f, 1 / 6.f,
                                 1 / 24.f, -1 / 12.f, 1 / 6.f,  0,        0,        1};

/* U[e][i][o] (e = A a + b) = (G w G^T)[a][b] of the taps w9[k][i][o]
 * (k = 3 kh + kw; flip: tap 8 - k, the kernel turned by 180 degrees),
 * i < ni, o < no (whole vectors). */
static void wino_weights_into(float *U, const float *w9, int ni, int no, bool flip, int m) {
    const int A = m + 2;
    const float *G = m == 4 ? WG4 : WG2;
    for (int i = 0; i < ni; i++)
        for (int o = 0; o < no; o += DV) {
            dvec w[9], t[6][3];
            for (int k = 0; k < 9; k++) w[k] = vld(w9 + ((size_t)(flip ? 8 - k : k) * ni + i) * no + o);
            for (int a = 0; a < A; a++)
                for (int j = 0; j < 3; j++) t[a][j] = G[3 * a] * w[j] + G[3 * a + 1] * w[3 + j] + G[3 * a + 2] * w[6 + j];
            for (int a = 0; a < A; a++)
                for (int b = 0; b < A; b++)
                    vst(U + ((size_t)(A * a + b) * ni + i) * no + o,
                        G[3 * b] * t[a][0] + G[3 * b + 1] * t[a][1] + G[3 * b + 2] * t[a][2]);
        }
}

/* The transformed weights, one copy per thread, each made by its thread on
 * first use (wcopies_get) in its own scratch (TS_WEIGHTS). One copy
 * made by the calling thread and read by all had every other thread pull it
 * from that thread's cache at each call: 590 KB for a 64-channel layer,
 * across the last-level caches when the cores do not share one. The copies
 * are the same bits: the same code on the same weights. */
typedef struct {
    const float *w9;
    int ni, no, m;
    bool flip;
    unsigned long gen; /* this call's number: a thread's copy is this call's when its gen matches */
} wcopies;

static _Atomic unsigned long wcopies_gen;
static _Thread_local unsigned long wcopies_made; /* the gen of the copy in this thread's TS_WEIGHTS */

static void wcopies_init(wcopies *c, const float *w9, int ni, int no, bool flip, int m) {
    *c = (wcopies){w9, ni, no, m, flip, ++wcopies_gen};
}

/* the calling thread's copy, made on its first use in this call */
static const float *wcopies_get(const wcopies *c) {
    const size_t floats = (size_t)(c->m + 2) * (c->m + 2) * c->ni * c->no;
    float *U = cx_tscratch(TS_WEIGHTS, floats * sizeof(float));
    if (wcopies_made != c->gen) {
        wino_weights_into(U, c->w9, c->ni, c->no, c->flip, c->m);
        wcopies_made = c->gen;
    }
    return U;
}

/* m[r * ldm + c * TS * DV + l] = sum over i < K of V(r, i) * u[i * ldu + c * DV + l],
 * r < R, c < CB: one of the NE = TS products for R tiles. V(r, i) =
 * v[(i / DV) * vbs + r * TS * DV + i % DV]: the inputs in blocks of a
 * vector of channels, at a fixed tile stride, so that the R tiles'
 * broadcasts are at fixed offsets from one pointer (a tile stride known
 * only at run time took one register per tile, and GCC spilled them).
 * Output vector c of tile r goes to m + r * ldm + c * TS * DV. */
static inline __attribute__((always_inline)) void wgemm(const int TS, const int R, const int CB, const float *v,
                                                        ptrdiff_t vbs, int K, const float *u, ptrdiff_t ldu, float *m,
                                                        ptrdiff_t ldm) {
    dvec acc[RMAX][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < CB; c++) acc[r][c] = (dvec){0};
    for (int i0 = 0; i0 < K; i0 += DV) {
        const float *vb = v + (i0 / DV) * vbs;
        for (int l = 0; l < DV; l++) {
            dvec wv[4];
            for (int c = 0; c < CB; c++) wv[c] = vld(u + c * DV);
            UNROLL for (int r = 0; r < R; r++) {
                const float xv = vb[r * TS * DV + l];
                UNROLL for (int c = 0; c < CB; c++) acc[r][c] += wv[c] * xv;
            }
            u += ldu;
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < CB; c++) vst(m + r * ldm + c * TS * DV, acc[r][c]);
}
static void wgemm_n(int TS, int R, int CB, const float *v, ptrdiff_t vbs, int K, const float *u, ptrdiff_t ldu,
                    float *m, ptrdiff_t ldm) {
#define WG16(RR, CC) wgemm(16, RR, CC, v, vbs, K, u, ldu, m, ldm)
#define WG36(RR, CC) wgemm(36, RR, CC, v, vbs, K, u, ldu, m, ldm)
    if (TS == 16) CB_SWITCH(WG16)
    else CB_SWITCH(WG36)
#undef WG16
#undef WG36
}

/* The forward's tiles go by batches of about 16 tiles of F(2x2), 14 of
 * F(4x4) (whole tile rows, across images when a map has few tiles: 28
 * tiles of F(2x2) and 7 of F(4x4) were slower), whose V and M stay in
 * L1/L2; the scratch (V, M, a row of zeros) of one thread, in floats. */
static int fbatch_cap(int W, int m) {
    const int TW = (W + m - 1) / m, t = m == 2 ? 16 : 14;
    return t < TW ? TW : t / TW * TW;
}
static int64_t wino_scratch(int W, int ni, int no, int m) {
    return (int64_t)(m + 2) * (m + 2) * fbatch_cap(W, m) * (ni + no) + (int64_t)W * ni;
}

/* The sums and sums of squares of the channels of output row yrow ([OW][O])
 * into rs[0..O) and rs[OP..OP + O). */
static void row_stats(const float *yrow, int OW, int O, int OP, float *rs) {
    for (int c0 = 0; c0 < O; c0 += DV) {
        const int nv = O - c0 < DV ? O - c0 : DV;
        dvec s1 = {0}, s2 = {0};
        for (int ox = 0; ox < OW; ox++) {
            const float *yv = yrow + (size_t)ox * O + c0;
            const dvec v = nv == DV ? vld(yv) : vld_part(yv, nv);
            s1 += v;
            s2 += v * v;
        }
        vst(rs + c0, s1);
        vst(rs + OP + c0, s2);
    }
}

/* V = B^T d B for the tiles of tile rows [ty0, ty1) of x [H][W][ni], as
 * V[i / DV][tile][e][DV] (tiles counted from ty0, tc tiles per block of
 * channels); each input column's B^T part once, for the tiles that read
 * it. zrow: W * ni zeros. */
/* rw[a]: input row m ty - 1 + a of x [H][W][ni] (a < m + 2), zrow outside */
static void tile_rows(const float *x, int H, int W, int ni, int m, int ty, const float *zrow, const float **rw) {
    for (int a = 0; a < m + 2; a++) {
        const int iy = m * ty - 1 + a;
        rw[a] = iy >= 0 && iy < H ? x + (size_t)iy * W * ni : zrow;
    }
}
static void wino_vin2(const float *x, int H, int W, int ni, int ty0, int ty1, float *V, int tc, const float *zrow) {
    const int TW = (W + 1) / 2, nib = ni / DV;
    const dvec z = {0};
    for (int ty = ty0; ty < ty1; ty++) {
        const float *rw[4];
        tile_rows(x, H, W, ni, 2, ty, zrow, rw);
        for (int ib = 0; ib < nib; ib++) {
            const int i = ib * DV;
#define WCOL(j, s)                                                                                         \
    do {                                                                                                   \
        dvec d0 = z, d1 = z, d2 = z, d3 = z;                                                               \
        if ((j) >= 0 && (j) < W) {                                                                         \
            d0 = vld(rw[0] + (size_t)(j) * ni + i);                                                        \
            d1 = vld(rw[1] + (size_t)(j) * ni + i);                                                        \
            d2 = vld(rw[2] + (size_t)(j) * ni + i);                                                        \
            d3 = vld(rw[3] + (size_t)(j) * ni + i);                                                        \
        }                                                                                                  \
        s[0] = d0 - d2;                                                                                    \
        s[1] = d1 + d2;                                                                                    \
        s[2] = d2 - d1;                                                                                    \
        s[3] = d1 - d3;                                                                                    \
    } while (0)
            dvec ca[4], cb4[4], cc[4], cd[4];
            WCOL(-1, ca);
            WCOL(0, cb4);
            float *vt = V + ((size_t)ib * tc + (size_t)(ty - ty0) * TW) * 16 * DV;
            for (int tx = 0; tx < TW; tx++, vt += 16 * DV) {
                WCOL(2 * tx + 1, cc);
                WCOL(2 * tx + 2, cd);
                for (int a = 0; a < 4; a++) {
                    vst(vt + (4 * a + 0) * DV, ca[a] - cc[a]);
                    vst(vt + (4 * a + 1) * DV, cb4[a] + cc[a]);
                    vst(vt + (4 * a + 2) * DV, cc[a] - cb4[a]);
                    vst(vt + (4 * a + 3) * DV, cb4[a] - cd[a]);
                    ca[a] = cc[a];
                    cb4[a] = cd[a];
                }
            }
#undef WCOL
        }
    }
}

/* F(4x4)'s B^T applied to six vectors */
static inline __attribute__((always_inline)) void bt6(const dvec *d, dvec *s) {
    const dvec t1 = d[4] - 4.0f * d[2], t2 = d[3] - 4.0f * d[1], t3 = d[4] - d[2], t4 = 2.0f * (d[3] - d[1]);
    s[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    s[1] = t1 + t2;
    s[2] = t1 - t2;
    s[3] = t3 + t4;
    s[4] = t3 - t4;
    s[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

/* wino_vin2 for F(4x4): tiles of 6x6 inputs at stride 4 */
static void wino_vin4(const float *x, int H, int W, int ni, int ty0, int ty1, float *V, int tc, const float *zrow) {
    const int TW = (W + 3) / 4, nib = ni / DV;
    const dvec z = {0};
    for (int ty = ty0; ty < ty1; ty++) {
        const float *rw[6];
        tile_rows(x, H, W, ni, 4, ty, zrow, rw);
        for (int ib = 0; ib < nib; ib++) {
            const int i = ib * DV;
            /* col[k][a]: B^T of input column 4 tx - 1 + k, rows a */
            dvec col[6][6];
#define WCOL4(j, s)                                                                                        \
    do {                                                                                                   \
        dvec d[6];                                                                                         \
        for (int q = 0; q < 6; q++) d[q] = (j) >= 0 && (j) < W ? vld(rw[q] + (size_t)(j) * ni + i) : z;     \
        bt6(d, s);                                                                                         \
    } while (0)
            WCOL4(-1, col[0]);
            WCOL4(0, col[1]);
            float *vt = V + ((size_t)ib * tc + (size_t)(ty - ty0) * TW) * 36 * DV;
            for (int tx = 0; tx < TW; tx++, vt += 36 * DV) {
                for (int k = 2; k < 6; k++) WCOL4(4 * tx - 1 + k, col[k]);
                for (int a = 0; a < 6; a++) {
                    const dvec d[6] = {col[0][a], col[1][a], col[2][a], col[3][a], col[4][a], col[5][a]};
                    dvec s[6];
                    bt6(d, s);
                    for (int b = 0; b < 6; b++) vst(vt + (6 * a + b) * DV, s[b]);
                }
                for (int a = 0; a < 6; a++) {
                    col[0][a] = col[4][a];
                    col[1][a] = col[5][a];
                }
            }
#undef WCOL4
        }
    }
}

static void wino_vin(int m, const float *x, int H, int W, int ni, int ty0, int ty1, float *V, int tc,
                     const float *zrow) {
    if (m == 4) wino_vin4(x, H, W, ni, ty0, ty1, V, tc, zrow);
    else wino_vin2(x, H, W, ni, ty0, ty1, V, tc, zrow);
}

/* F(4x4)'s A^T applied to six vectors */
static inline __attribute__((always_inline)) void at6(const dvec *m, dvec *o) {
    const dvec t1 = m[1] + m[2], t2 = m[1] - m[2], t3 = m[3] + m[4], t4 = m[3] - m[4];
    o[0] = m[0] + t1 + t3;
    o[1] = t2 + 2.0f * t4;
    o[2] = t1 + 4.0f * t3;
    o[3] = t2 + 8.0f * t4 + m[5];
}

/* The 3x3, stride 1, padding 1 convolution y [H][W][no] (+)= conv(x
 * [H][W][ni]) of images, with the transformed weights U [NE][ni][no], by
 * batches of tiles: fbatch_add transforms an image's tile rows into V (as
 * V[i / DV][tile][e][DV], cap tiles per block of channels), fbatch_flush
 * forms the products M [tile][o / DV][e][DV] = V U per element and writes
 * the outputs A^T M A of every image in the batch, with bias [no] or NULL,
 * and each output row's sums and sums of squares into rowstats [H][2 no]
 * of that image when given. A tile's NE vectors are at fixed offsets from
 * one pointer in both transforms, and the products' R tiles at fixed
 * offsets too. Each output's sums run in one order whatever the batch:
 * the same bits for any split into tasks. */
typedef struct {
    float *y, *rowstats;
    int ty0, ty1, t0; /* tile rows of the image, first tile in the batch */
} fseg;

/* F(4x4)'s output tile out = A^T M A from M's 36 vectors mt[(6 a + c) DV]. */
static inline __attribute__((always_inline)) void ot4(const float *mt, dvec out[4][4]) {
    dvec s4[4][6];
    for (int c = 0; c < 6; c++) {
        dvec mc[6], oc[4];
        for (int a = 0; a < 6; a++) mc[a] = vld(mt + (6 * a + c) * DV);
        at6(mc, oc);
        for (int a = 0; a < 4; a++) s4[a][c] = oc[a];
    }
    for (int a = 0; a < 4; a++) at6(s4[a], out[a]);
}
/* One whole 4x4 output tile of F(4x4): y[a * rs + c * cs] (+)= (A^T M A)[a][c]
 * (+ bv): constant bounds and flags, nothing spilled. */
static inline __attribute__((always_inline)) void otile4(const float *mt, float *y, ptrdiff_t rs, ptrdiff_t cs,
                                                         dvec bv, const bool BIAS, const bool ACC) {
    dvec o4[4][4];
    ot4(mt, o4);
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++) {
            dvec v = o4[a][c];
            if (BIAS) v += bv;
            if (ACC) v += vld(y + a * rs + c * cs);
            vst(y + a * rs + c * cs, v);
        }
}
typedef struct {
    int m, H, W, ni, no;
    const float *U, *bias;
    bool accumulate;
    float *V, *M, *zrow;
    int cap, fill, nseg;
    fseg seg[64];
} fbatch;

static fbatch fbatch_of(int m, int H, int W, int ni, int no, const float *U, const float *bias, bool accumulate,
                        float *scr) {
    const int cap = fbatch_cap(W, m), NE = (m + 2) * (m + 2);
    fbatch b = {m, H, W, ni, no, U, bias, accumulate, scr, scr + (size_t)NE * cap * ni,
                scr + (size_t)NE * cap * (ni + no), cap, 0, 0, {{0}}};
    memset(b.zrow, 0, (size_t)W * ni * sizeof(float));
    return b;
}

static void fbatch_flush(fbatch *b) {
    const int m = b->m, H = b->H, W = b->W, ni = b->ni, no = b->no, tc = b->fill;
    const int NE = (m + 2) * (m + 2), TW = (W + m - 1) / m;
    const int CB = pick_cb(no, 1), cbw = CB * DV, ncb = no / cbw, Rm = rmax_for(CB, 1), nob = no / DV;
    const dvec z = {0};
    if (!tc) return;
    /* M[t][o / DV][e] = sum_i V[e][t][i] U[e][i][o] */
    const int nb = (tc + Rm - 1) / Rm, R = (tc + nb - 1) / nb;
    for (int e = 0; e < NE; e++) {
        const float *ue = b->U + (size_t)e * ni * no;
        for (int t0 = 0; t0 < tc; t0 += R) {
            const int r = tc - t0 < R ? tc - t0 : R;
            for (int cb = 0; cb < ncb; cb++)
                wgemm_n(NE, r, CB, b->V + ((size_t)t0 * NE + e) * DV, (ptrdiff_t)b->cap * NE * DV, ni, ue + cb * cbw,
                        no, b->M + (((size_t)t0 * nob + cb * CB) * NE + e) * DV, (ptrdiff_t)nob * NE * DV);
        }
    }
    /* y = A^T M A */
    for (int sg = 0; sg < b->nseg; sg++) {
        const fseg *q = &b->seg[sg];
        for (int ty = q->ty0; ty < q->ty1; ty++)
            for (int tx = 0; tx < TW; tx++) {
                const int t = q->t0 + (ty - q->ty0) * TW + tx, oy = m * ty, ox = m * tx;
                const int nr = H - oy < m ? H - oy : m, nc = W - ox < m ? W - ox : m;
                float *y0 = q->y + ((size_t)oy * W + ox) * no;
                const float *mt = b->M + (size_t)t * nob * NE * DV;
                for (int o = 0; o < no; o += DV, mt += NE * DV) {
                    const dvec bv = b->bias ? vld(b->bias + o) : z;
                    dvec out[4][4];
                    if (m == 2) {
                        dvec s2[2][4];
                        for (int c = 0; c < 4; c++) {
                            const dvec m0 = vld(mt + c * DV), m1 = vld(mt + (4 + c) * DV),
                                       m2 = vld(mt + (8 + c) * DV), m3 = vld(mt + (12 + c) * DV);
                            s2[0][c] = m0 + m1 + m2;
                            s2[1][c] = m1 - m2 - m3;
                        }
                        for (int a = 0; a < 2; a++) {
                            out[a][0] = s2[a][0] + s2[a][1] + s2[a][2] + bv;
                            out[a][1] = s2[a][1] - s2[a][2] - s2[a][3] + bv;
                        }
                    } else if (nr == 4 && nc == 4) {
                        /* whole tiles (most) */
                        if (b->accumulate) {
                            if (b->bias) otile4(mt, y0 + o, (ptrdiff_t)W * no, no, bv, true, true);
                            else otile4(mt, y0 + o, (ptrdiff_t)W * no, no, bv, false, true);
                        } else {
                            if (b->bias) otile4(mt, y0 + o, (ptrdiff_t)W * no, no, bv, true, false);
                            else otile4(mt, y0 + o, (ptrdiff_t)W * no, no, bv, false, false);
                        }
                        continue;
                    } else {
                        ot4(mt, out);
                        for (int a = 0; a < nr; a++)
                            for (int c = 0; c < nc; c++) out[a][c] += bv;
                    }
                    for (int a = 0; a < nr; a++) {
                        float *yr = y0 + (size_t)a * W * no + o;
                        for (int c = 0; c < nc; c++) {
                            dvec v = out[a][c];
                            if (b->accumulate) v += vld(yr + (size_t)c * no);
                            vst(yr + (size_t)c * no, v);
                        }
                    }
                }
            }
        if (q->rowstats)
            for (int oy = m * q->ty0; oy < m * q->ty1 && oy < H; oy++)
                row_stats(q->y + (size_t)oy * W * no, W, no, no, q->rowstats + (size_t)oy * 2 * no);
    }
    b->fill = 0;
    b->nseg = 0;
}

/* Adds tile rows [ty0, ty1) of image x (output y, rowstats or NULL) to the
 * batch, flushing it whenever full. */
static void fbatch_add(fbatch *b, const float *x, float *y, float *rowstats, int ty0, int ty1) {
    const int m = b->m, NE = (m + 2) * (m + 2), TW = (b->W + m - 1) / m, TH = (b->H + m - 1) / m;
    if (ty1 > TH) ty1 = TH;
    while (ty0 < ty1) {
        if (b->fill + TW > b->cap || b->nseg == 64) fbatch_flush(b);
        int t1 = ty0 + (b->cap - b->fill) / TW;
        if (t1 > ty1) t1 = ty1;
        wino_vin(m, x, b->H, b->W, b->ni, ty0, t1, b->V + (size_t)b->fill * NE * DV, b->cap, b->zrow);
        b->seg[b->nseg++] = (fseg){y, rowstats, ty0, t1, b->fill};
        b->fill += (t1 - ty0) * TW;
        ty0 = t1;
    }
}

/* The weight gradient by Winograd F(3x3, m x m), the forward's dual: per
 * tile, the A x A inputs give V = B^T d B (the forward's transform) and
 * the m x m output gradients D = A dY A^T; P[e][i][o] sums V[e][t][i]
 * D[e][t][o] over all tiles of all images (NE products with the tiles as
 * their long sum), and dW = G^T P G once at the end. */

/* D = A dY A^T for the tiles of tile rows [ty0, ty1) of dy [H][W][no], as
 * D[tile][o / DV][e][DV]. */
static void wino_dyin(int m, const float *dy, int H, int W, int no, int ty0, int ty1, float *D) {
    const int TW = (W + m - 1) / m, nob = no / DV, A = m + 2, NE = A * A;
    const dvec z = {0};
    for (int ty = ty0; ty < ty1; ty++)
        for (int tx = 0; tx < TW; tx++) {
            const int oy = m * ty, ox = m * tx;
            const int nr = H - oy < m ? H - oy : m, nc = W - ox < m ? W - ox : m;
            const float *y0 = dy + ((size_t)oy * W + ox) * no;
            float *dt = D + ((size_t)(ty - ty0) * TW + tx) * nob * NE * DV;
            for (int o = 0; o < no; o += DV, dt += NE * DV) {
                dvec g[4][4];
                for (int a = 0; a < m; a++)
                    for (int b = 0; b < m; b++) g[a][b] = a < nr && b < nc ? vld(y0 + ((size_t)a * W + b) * no + o) : z;
                if (m == 2) {
                    /* A applied to the columns (u[a][j]), then to the rows */
                    const dvec u[4][2] = {{g[0][0], g[0][1]},
                                          {g[0][0] + g[1][0], g[0][1] + g[1][1]},
                                          {g[0][0] - g[1][0], g[0][1] - g[1][1]},
                                          {-g[1][0], -g[1][1]}};
                    for (int a = 0; a < 4; a++) {
                        vst(dt + (4 * a + 0) * DV, u[a][0]);
                        vst(dt + (4 * a + 1) * DV, u[a][0] + u[a][1]);
                        vst(dt + (4 * a + 2) * DV, u[a][0] - u[a][1]);
                        vst(dt + (4 * a + 3) * DV, -u[a][1]);
                    }
                } else {
                    /* A (6x4): u0 = g0, u1,2 = (g0 + g2) +- (g1 + g3),
                     * u3,4 = (g0 + 4 g2) +- (2 g1 + 8 g3), u5 = g3 */
#define A6(g0, g1, g2, g3, u)                                                                              \
    do {                                                                                                   \
        const dvec p_ = (g0) + (g2), q_ = (g1) + (g3), p2_ = (g0) + 4.0f * (g2), q2_ = 2.0f * (g1) + 8.0f * (g3); \
        (u)[0] = (g0);                                                                                     \
        (u)[1] = p_ + q_;                                                                                  \
        (u)[2] = p_ - q_;                                                                                  \
        (u)[3] = p2_ + q2_;                                                                                \
        (u)[4] = p2_ - q2_;                                                                                \
        (u)[5] = (g3);                                                                                     \
    } while (0)
                    dvec u[6][4]; /* u[a][j]: A along the rows of column j */
                    for (int j = 0; j < 4; j++) {
                        dvec c[6];
                        A6(g[0][j], g[1][j], g[2][j], g[3][j], c);
                        for (int a = 0; a < 6; a++) u[a][j] = c[a];
                    }
                    for (int a = 0; a < 6; a++) {
                        dvec r[6];
                        A6(u[a][0], u[a][1], u[a][2], u[a][3], r);
                        for (int b = 0; b < 6; b++) vst(dt + (6 * a + b) * DV, r[b]);
                    }
#undef A6
                }
            }
        }
}

/* p[r * ldp + c * DV + l] += sum over t < K of v[t * TS * DV + r] *
 * d[t * dts + c * TS * DV + l], r < R, c < CB. */
static inline __attribute__((always_inline)) void pgemm(const int TS, const int R, const int CB, const float *v,
                                                        const float *d, ptrdiff_t dts, int K, float *p, ptrdiff_t ldp) {
    dvec acc[RMAX][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < CB; c++) acc[r][c] = vld(p + r * ldp + c * DV);
    for (int t = 0; t < K; t++) {
        dvec wv[4];
        for (int c = 0; c < CB; c++) wv[c] = vld(d + c * TS * DV);
        UNROLL for (int r = 0; r < R; r++) {
            const float xv = v[r];
            UNROLL for (int c = 0; c < CB; c++) acc[r][c] += wv[c] * xv;
        }
        v += TS * DV;
        d += dts;
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < CB; c++) vst(p + r * ldp + c * DV, acc[r][c]);
}
static void pgemm_n(int TS, int R, int CB, const float *v, const float *d, ptrdiff_t dts, int K, float *p,
                    ptrdiff_t ldp) {
#define PG16(RR, CC) pgemm(16, RR, CC, v, d, dts, K, p, ldp)
#define PG36(RR, CC) pgemm(36, RR, CC, v, d, dts, K, p, ldp)
    if (TS == 16) CB_SWITCH(PG16)
    else CB_SWITCH(PG36)
#undef PG16
#undef PG36
}

/* The weight gradient's tiles go by batches of about 1024 transformed
 * elements per channel (64 tiles of F(2x2), 28 of F(4x4); whole tile rows,
 * across images: a 7x7 map has 4 tiles of F(4x4)): long sums over the
 * tiles, V and D in L2. The batches of an image range (its images in a
 * fixed order) do not depend on the thread count. */
typedef struct {
    float *V, *D, *zrow;
    int cap, fill; /* tiles: room, filled */
} wbatch;
static int wbatch_cap(const ngeom *g, int m) {
    const int TW = (g->W + m - 1) / m, t = 1024 / ((m + 2) * (m + 2));
    return t < TW ? TW : t / TW * TW;
}
static int64_t wino_wscratch(const ngeom *g, int m) {
    return (int64_t)(m + 2) * (m + 2) * wbatch_cap(g, m) * (g->C + g->O) + (int64_t)g->W * g->C;
}
static wbatch wbatch_of(const ngeom *g, int m, float *scr) {
    const int cap = wbatch_cap(g, m), NE = (m + 2) * (m + 2);
    wbatch b = {scr, scr + (size_t)NE * cap * g->C, scr + (size_t)NE * cap * (g->C + g->O), cap, 0};
    memset(b.zrow, 0, (size_t)g->W * g->C * sizeof(float));
    return b;
}

/* P [NE][C][O] += the sums over the batch's tiles; empties it. */
static void wbatch_flush(const ngeom *g, int m, wbatch *b, float *P) {
    const int ni = g->C, no = g->O, NE = (m + 2) * (m + 2), nib = ni / DV, nob = no / DV, tc = b->fill;
    const int CB = pick_cb(no, 1), cbw = CB * DV, ncb = no / cbw, Rm = rmax_for(CB, 1);
    const int nb = (DV + Rm - 1) / Rm, R = (DV + nb - 1) / nb; /* rows of a block of DV input channels */
    if (!tc) return;
    for (int e = 0; e < NE; e++)
        for (int ib = 0; ib < nib; ib++)
            for (int r0 = 0; r0 < DV; r0 += R) {
                const int r = DV - r0 < R ? DV - r0 : R;
                for (int cb = 0; cb < ncb; cb++)
                    pgemm_n(NE, r, CB, b->V + (((size_t)ib * b->cap * NE + e) * DV) + r0,
                            b->D + ((size_t)cb * CB * NE + e) * DV, (ptrdiff_t)nob * NE * DV, tc,
                            P + ((size_t)e * ni + ib * DV + r0) * no + cb * cbw, no);
            }
    b->fill = 0;
}

/* Adds the tiles of one image x [H][W][C], dy [H][W][O] to the batch,
 * flushing it into P [NE][C][O] when full. */
static void wino_bweight_image(const ngeom *g, int m, const float *x, const float *dy, float *P, wbatch *b) {
    const int H = g->H, W = g->W, NE = (m + 2) * (m + 2), nob = g->O / DV;
    const int TW = (W + m - 1) / m, TH = (H + m - 1) / m;
    for (int ty0 = 0; ty0 < TH;) {
        if (b->fill + TW > b->cap) wbatch_flush(g, m, b, P);
        int ty1 = ty0 + (b->cap - b->fill) / TW;
        if (ty1 > TH) ty1 = TH;
        wino_vin(m, x, H, W, g->C, ty0, ty1, b->V + (size_t)b->fill * NE * DV, b->cap, b->zrow);
        wino_dyin(m, dy, H, W, g->O, ty0, ty1, b->D + (size_t)b->fill * nob * NE * DV);
        b->fill += (ty1 - ty0) * TW;
        ty0 = ty1;
    }
}

/* dW [O][C][3][3] += G^T P G, P [NE][C][O]: G^T along the rows of each
 * (c, o)'s A x A block, then G along its columns, DV outputs o at once. */
static void wino_bweight_finish(const ngeom *g, int m, const float *P, float *dW, bool par) {
    const int C = g->C, O = g->O, A = m + 2;
    const float *G = m == 4 ? WG4 : WG2;
    CX_PFOR(par,
    for (int c = 0; c < C; c++)
        for (int o = 0; o < O; o += DV) {
            dvec q[3][6];
            for (int kh = 0; kh < 3; kh++)
                for (int b = 0; b < A; b++) {
                    dvec s = {0};
                    for (int a = 0; a < A; a++) s += G[3 * a + kh] * vld(P + ((size_t)(A * a + b) * C + c) * O + o);
                    q[kh][b] = s;
                }
            float d[9][DV];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    dvec s = {0};
                    for (int b = 0; b < A; b++) s += G[3 * b + kw] * q[kh][b];
                    vst(d[3 * kh + kw], s);
                }
            for (int l = 0; l < DV; l++)
                for (int k = 0; k < 9; k++) dW[((size_t)(o + l) * C + c) * 9 + k] += d[k][l];
        });
}

/* The Winograd convolution of images x [N][H][W][ni] into y [N][H][W][no]
 * (rowstats: [N][H][2 no] or NULL), by tasks of whole tile rows over all
 * the images (several images per task when they have few tiles), each
 * thread on its own scratch (TS_FBATCH) and copy of the weights. */
static void wino_images(int m, int N, int H, int W, int ni, int no, const wcopies *U, const float *x, float *y,
                        const float *bias, bool accumulate, float *rowstats, bool par) {
    const int64_t sf = wino_scratch(W, ni, no, m);
    const int TH = (H + m - 1) / m, TW = (W + m - 1) / m, rpt = fbatch_cap(W, m) / TW;
    const int64_t rows = (int64_t)N * TH;
    const int ntk = (int)((rows + rpt - 1) / rpt);
    CX_PFOR(par,
    for (int tk = 0; tk < ntk; tk++) {
        fbatch b = fbatch_of(m, H, W, ni, no, wcopies_get(U), bias, accumulate,
                             cx_tscratch(TS_FBATCH, (size_t)sf * sizeof(float)));
        const int64_t r1 = (int64_t)(tk + 1) * rpt < rows ? (int64_t)(tk + 1) * rpt : rows;
        for (int64_t r = (int64_t)tk * rpt; r < r1;) {
            const int n = (int)(r / TH), ty0 = (int)(r % TH);
            const int ty1 = r1 - r < TH - ty0 ? ty0 + (int)(r1 - r) : TH;
            fbatch_add(&b, x + (size_t)n * H * W * ni, y + (size_t)n * H * W * no,
                       rowstats ? rowstats + (size_t)n * H * 2 * no : NULL, ty0, ty1);
            r += ty1 - ty0;
        }
        fbatch_flush(&b);
    });
}

/* ---------------------------------------------------------------- 1x1 kernels
 * A 1x1 kernel without padding is a product per image (nhwc_forward, nhwc_backward_images). */
static bool is_1x1(const ngeom *g) { return g->KH == 1 && g->KW == 1 && g->ph == 0 && g->pw == 0; }

/* Image xn [H][W][C]'s strided positions as [OH*OW][C] (into dst), or xn itself at stride 1. */
static const float *gather_1x1(const ngeom *g, const float *xn, float *dst) {
    if (g->sh == 1 && g->sw == 1) return xn;
    for (int oy = 0; oy < g->OH; oy++)
        for (int ox = 0; ox < g->OW; ox++)
            memcpy(dst + ((size_t)oy * g->OW + ox) * g->C, xn + ((size_t)oy * g->sh * g->W + (size_t)ox * g->sw) * g->C,
                   (size_t)g->C * sizeof(float));
    return dst;
}

/* ---------------------------------------------------------------- forward */
/* Y [N][OH][OW][O] (+)= conv(X [N][H][W][C]); wf [KH*KW][C][OP] (zero past O),
 * bias padded to OP or NULL. */
static void nhwc_forward(const ngeom *g, const float *X, const float *wf, const float *bias, float *Y,
                         bool accumulate, float *rowstats) {
    const int mmax = (g->KW + g->sw - 1) / g->sw < 3 ? (g->KW + g->sw - 1) / g->sw : 3;
    const int OP = rup(g->O, DV), CB = pick_cb(g->O, mmax), cbw = CB * DV, ncb = OP / cbw;
    const int Rm = rmax_for(CB, mmax), nb = (g->OW + Rm - 1) / Rm, R = (g->OW + nb - 1) / nb;
    const int Wp = (g->OW - 1) * g->sw + g->KW;
    const int wq = (Wp + g->sw - 1) / g->sw + RMAX;
    const int nt = nthreads();
    const double work = 2.0 * g->N * g->OH * g->OW * (double)g->O * g->C * g->KH * g->KW;
    const bool par = nt > 1 && work >= 2e6;
    const int ntask_threads = par ? nt : 1;
    const int rc = row_chunks(g->N, g->OH, ntask_threads);
    const int64_t rf = ring_floats(g->KH, g->C, g->sw, wq);
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk = cx_arena_get_mark(a);
    if (is_1x1(g)) {
        /* a 1x1 kernel: per image Y [OH*OW][O] (+)= X' [OH*OW][C] wf [C][OP],
         * X' the strided positions gathered (X itself at stride 1), one GEMM
         * (the direct kernels re-laid each input row out for taps it does
         * not have: 18 GFLOP/s on a 16->32 stride-2 projection) */
        const int P = g->OH * g->OW;
        const bool gather = g->sh != 1 || g->sw != 1;
        CX_PFOR(par,
        for (int n = 0; n < g->N; n++) {
            const float *xn = X + (size_t)n * g->H * g->W * g->C;
            float *yn = Y + (size_t)n * P * g->O;
            const float *A = gather_1x1(g, xn, gather ? cx_tscratch(TS_ONE_X, (size_t)P * g->C * sizeof(float)) : NULL);
            if (!accumulate && bias)
                for (int q = 0; q < P; q++) memcpy(yn + (size_t)q * g->O, bias, (size_t)g->O * sizeof(float));
            cx_sgemm(false, false, P, g->O, g->C, 1.0f, A, g->C, wf, OP, accumulate || bias ? 1.0f : 0.0f, yn, g->O);
            if (rowstats)
                for (int oy = 0; oy < g->OH; oy++)
                    row_stats(yn + (size_t)oy * g->OW * g->O, g->OW, g->O, OP, rowstats + ((size_t)n * g->OH + oy) * 2 * OP);
        });
        cx_arena_rewind(a, mk);
        return;
    }
    const int wm = wino_m(g);
    if (wm) {
        wcopies wu;
        wcopies_init(&wu, wf, g->C, OP, false, wm);
        wino_images(wm, g->N, g->H, g->W, g->C, OP, &wu, X, Y, bias, accumulate, rowstats, par);
        cx_arena_rewind(a, mk);
        return;
    }
    const int ntaps = g->KH * g->KW;
    const int ntask = g->N * rc;
    CX_PFOR(par,
    for (int task = 0; task < ntask; task++) {
        const int n = task / rc, ck = task % rc;
        const int oy0 = (int)((int64_t)ck * g->OH / rc), oy1 = (int)((int64_t)(ck + 1) * g->OH / rc);
        float *rbuf;
        int64_t *tags;
        const float **tp;
        ring_scratch(rf, g->KH, ntaps, &rbuf, &tags, &tp);
        ring rg;
        ring_init(&rg, rbuf, tags, g->KH, g->C, g->sw, wq, g->pw, g->W);
        const float **px = tp, **pw = px + 3 * ntaps, **gx = pw + 9 * ntaps, **gw = gx + ntaps;
        const float *xn = X + (size_t)n * g->H * g->W * g->C;
        for (int oy = oy0; oy < oy1; oy++) {
            glist gl = {{0, 0, 0}, {px, px + ntaps, px + 2 * ntaps}, {pw, pw + 3 * ntaps, pw + 6 * ntaps}};
            for (int kh = 0; kh < g->KH; kh++) {
                const int iy = oy * g->sh - g->ph + kh;
                if (iy < 0 || iy >= g->H) continue;
                const float *row = ring_row(&rg, (int64_t)n * g->H + iy, iy, xn + (size_t)iy * g->W * g->C);
                /* the columns of each phase: kw = ph + sw m, at column m of the phase's plane */
                for (int ph = 0; ph < g->sw && ph < g->KW; ph++) {
                    const float *wm[64];
                    const int cnt = (g->KW - ph + g->sw - 1) / g->sw;
                    for (int m = 0; m < cnt; m++) wm[m] = wf + (size_t)(kh * g->KW + ph + g->sw * m) * g->C * OP;
                    add_runs(&gl, row + (size_t)ph * wq, 0, 1, cnt, wm);
                }
            }
            int ng[3];
            pack_groups(&gl, gx, gw, ng);
            const int ngx = ng[0] + ng[1] + ng[2], ngw = 3 * ng[0] + 2 * ng[1] + ng[2];
            float *yrow = Y + (((size_t)n * g->OH + oy) * g->OW) * g->O;
            for (int ox0 = 0; ox0 < g->OW; ox0 += R) {
                const int r = g->OW - ox0 < R ? g->OW - ox0 : R;
                for (int cb = 0; cb < ncb; cb++) {
                    for (int t = 0; t < ngx; t++) gx[t] += ox0;
                    for (int t = 0; t < ngw; t++) gw[t] += cb * cbw;
                    rtile_n(r, CB, ng, gx, gw, g->C, (ptrdiff_t)g->sw * wq, OP, yrow + (size_t)ox0 * g->O + cb * cbw,
                            g->O, g->O - cb * cbw, bias ? bias + cb * cbw : NULL, accumulate);
                    for (int t = 0; t < ngx; t++) gx[t] -= ox0;
                    for (int t = 0; t < ngw; t++) gw[t] -= cb * cbw;
                }
            }
            /* the row's sums and sums of squares per channel, read back from L1 */
            if (rowstats) row_stats(yrow, g->OW, g->O, OP, rowstats + ((size_t)n * g->OH + oy) * 2 * OP);
        }
    });
    cx_arena_rewind(a, mk);
}

/* ---------------------------------------------------------------- input gradient */
/* dX [N][H][W][C] (+)= the input gradient from dY [N][OH][OW][O];
 * wb [KH*KW][O][CP] = W[o][c][kh][kw] (zero past C). Each dX row ih takes the
 * kernel rows kh with (ih + ph - kh) % sh == 0; within it, the columns
 * iw = sw * J + e - pw of phase e take the kernel columns kw = e + sw * m,
 * read at dY column J - m. */
/* The input gradient's constants and per-thread scratch (ring, pointer lists). */
typedef struct {
    const ngeom *g;
    const float *dY, *wb;
    float *dX;
    bool accumulate;
    int CP, CB, cbw, ncb, Rm, L, wq, nslot, ntaps;
    int64_t rf;
    wcopies wu;      /* Winograd's weights, per thread (when wm) */
    int wm;          /* Winograd's tile (wino_m), 0: the direct kernels */
    int64_t wsf;     /* Winograd's scratch per thread, floats (TS_FBATCH) */
} bdctx;

static void bdata_prep(bdctx *c, const ngeom *g, const float *dY, const float *wb, float *dX, bool accumulate) {
    const int mmax = (g->KW + g->sw - 1) / g->sw < 3 ? (g->KW + g->sw - 1) / g->sw : 3;
    c->g = g;
    c->dY = dY;
    c->wb = wb;
    c->dX = dX;
    c->accumulate = accumulate;
    c->CP = rup(g->C, DV);
    c->CB = pick_cb(g->C, mmax);
    c->cbw = c->CB * DV;
    c->ncb = c->CP / c->cbw;
    c->Rm = rmax_for(c->CB, mmax);
    c->L = (g->KW - 1) / g->sw; /* the largest m */
    c->wq = (g->W - 1 + g->pw) / g->sw + c->L + 1 + RMAX;
    c->nslot = (g->KH + g->sh - 1) / g->sh;
    c->ntaps = g->KH * g->KW;
    c->rf = ring_floats(c->nslot, g->O, 1, c->wq);
    /* Winograd: dX = the convolution of dY with the kernel turned and its
     * channels swapped (its own scratch); else the direct kernels' rings */
    c->wm = wino_m(g);
    if (c->wm) wcopies_init(&c->wu, wb, g->O, c->CP, true, c->wm);
    c->wsf = c->wm ? wino_scratch(g->W, g->O, c->CP, c->wm) : 0;
}

/* dX rows [iy0, iy1) of image n, on the calling thread's scratch, by the direct kernels (c->wm 0). */
static void bdata_rows(const bdctx *c, int n, int iy0, int iy1, const float *dyn) {
    const ngeom *g = c->g;
    const float *dY = c->dY, *wb = c->wb;
    float *dX = c->dX;
    const bool accumulate = c->accumulate;
    const int CP = c->CP, CB = c->CB, cbw = c->cbw, ncb = c->ncb, Rm = c->Rm, L = c->L, wq = c->wq;
    const int nslot = c->nslot, ntaps = c->ntaps;
    const int64_t rf = c->rf;
    float *rbuf;
    int64_t *tags;
    const float **tp;
    ring_scratch(rf, nslot, ntaps, &rbuf, &tags, &tp);
    if (!dyn) dyn = dY + (size_t)n * g->OH * g->OW * g->O;
    ring rg;
    ring_init(&rg, rbuf, tags, nslot, g->O, 1, wq, L, g->OW);
    const float **px = tp, **pw = px + 3 * ntaps, **gx = pw + 9 * ntaps, **gw = gx + ntaps;
    for (int ih = iy0; ih < iy1; ih++) {
        const float *rows[64];
        int khs[64], nkh = 0;
        for (int kh = 0; kh < g->KH && nkh < 64; kh++) {
            const int num = ih + g->ph - kh;
            if (num < 0 || num % g->sh) continue;
            const int oh = num / g->sh;
            if (oh >= g->OH) continue;
            rows[nkh] = ring_row(&rg, (int64_t)n * g->OH + oh, oh, dyn + (size_t)oh * g->OW * g->O);
            khs[nkh++] = kh;
        }
        float *xrow = dX + (((size_t)n * g->H + ih) * g->W) * g->C;
        for (int e = 0; e < g->sw; e++) {
            /* columns iw = sw * J + e - pw, 0 <= iw < W */
            const int Jlo = g->pw > e ? (g->pw - e + g->sw - 1) / g->sw : 0;
            const int Jhi = g->W - 1 + g->pw - e >= 0 ? (g->W - 1 + g->pw - e) / g->sw + 1 : 0;
            if (Jhi <= Jlo) continue;
            /* taps kw = e + sw m read dY column J - m: ring column J - m + L */
            glist gl = {{0, 0, 0}, {px, px + ntaps, px + 2 * ntaps}, {pw, pw + 3 * ntaps, pw + 6 * ntaps}};
            const int cnt = e < g->KW ? (g->KW - e + g->sw - 1) / g->sw : 0;
            for (int q = 0; q < nkh; q++) {
                const float *wm[64];
                for (int m = 0; m < cnt; m++) wm[m] = wb + (size_t)(khs[q] * g->KW + e + g->sw * m) * g->O * CP;
                add_runs(&gl, rows[q], L, -1, cnt, wm);
            }
            int ng[3];
            pack_groups(&gl, gx, gw, ng);
            const int ngx = ng[0] + ng[1] + ng[2], ngw = 3 * ng[0] + 2 * ng[1] + ng[2];
            const int span = Jhi - Jlo, nb = (span + Rm - 1) / Rm, R = (span + nb - 1) / nb;
            for (int J0 = Jlo; J0 < Jhi; J0 += R) {
                const int r = Jhi - J0 < R ? Jhi - J0 : R;
                float *yo = xrow + (size_t)(g->sw * J0 + e - g->pw) * g->C;
                for (int cb = 0; cb < ncb; cb++) {
                    for (int t = 0; t < ngx; t++) gx[t] += J0;
                    for (int t = 0; t < ngw; t++) gw[t] += cb * cbw;
                    rtile_n(r, CB, ng, gx, gw, g->O, wq, CP, yo + cb * cbw, (ptrdiff_t)g->sw * g->C,
                            g->C - cb * cbw, NULL, accumulate);
                    for (int t = 0; t < ngx; t++) gx[t] -= J0;
                    for (int t = 0; t < ngw; t++) gw[t] -= cb * cbw;
                }
            }
        }
    }
}

/* dX [N][H][W][C] (+)= the input gradient from dY [N][OH][OW][O];
 * wb [KH*KW][O][CP] = W[o][c][kh][kw] (zero past C). Each dX row ih takes the
 * kernel rows kh with (ih + ph - kh) % sh == 0; within it, the columns
 * iw = sw * J + e - pw of phase e take the kernel columns kw = e + sw * m,
 * read at dY column J - m. */
static void nhwc_bdata(const ngeom *g, const float *dY, const float *wb, float *dX, bool accumulate) {
    const int nt = nthreads();
    const double work = 2.0 * g->N * g->OH * g->OW * (double)g->O * g->C * g->KH * g->KW;
    const bool par = nt > 1 && work >= 2e6;
    const int ntt = par ? nt : 1;
    const int rc = row_chunks(g->N, g->H, ntt);
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk = cx_arena_get_mark(a);
    bdctx c;
    bdata_prep(&c, g, dY, wb, dX, accumulate);
    if (c.wm) {
        /* dX = the convolution of dY with the kernel turned */
        wino_images(c.wm, g->N, g->H, g->W, g->O, c.CP, &c.wu, dY, dX, NULL, accumulate, NULL, par);
        cx_arena_rewind(a, mk);
        return;
    }
    const int ntask = g->N * rc;
    CX_PFOR(par,
    for (int task = 0; task < ntask; task++) {
        const int n = task / rc, ck = task % rc;
        const int r0 = (int)((int64_t)ck * g->H / rc), r1 = (int)((int64_t)(ck + 1) * g->H / rc);
        bdata_rows(&c, n, r0, r1, NULL);
    });
    cx_arena_rewind(a, mk);
}

/* ---------------------------------------------------------------- weight gradient */
/* part[i * pld + c * DV + l] (+)= sum over noy rows, nox columns of
 * x[i] * dy[c * DV + l] (x, dy advancing by xs, dys per column and xrow,
 * dyrow per row), i < CI, c < CB; ovalid channels of dy are read. */
static inline __attribute__((always_inline)) void wtile(const int CI, const int CB, const float *x,
                                                        ptrdiff_t xs, ptrdiff_t xrow, const float *dy,
                                                        ptrdiff_t dys, ptrdiff_t dyrow, int nox, int noy,
                                                        int ovalid, float *part, ptrdiff_t pld, bool first) {
    dvec acc[16][4];
    for (int i = 0; i < CI; i++)
        for (int c = 0; c < CB; c++) acc[i][c] = (dvec){0};
#if DV == 16
    /* the lanes of dy to read, as masks (one code path, no branch in the loop) */
    __mmask16 mk[4];
    for (int c = 0; c < CB; c++) {
        const int nv = ovalid - c * DV;
        mk[c] = (__mmask16)(nv >= DV ? 0xFFFFu : nv > 0 ? (1u << nv) - 1 : 0u);
    }
#define WLOAD(c) ((dvec)_mm512_maskz_loadu_ps(mk[c], dp + (c) * DV))
#else
    const bool full = ovalid >= CB * DV;
#define WLOAD(c)                                                                                            \
    (full || ovalid - (c) * DV >= DV ? vld(dp + (c) * DV)                                                  \
                                     : ovalid > (c) * DV ? vld_part(dp + (c) * DV, ovalid - (c) * DV) : (dvec){0})
#endif
    /* one loop over the noy x nox positions (nested loops kept the sums in memory) */
    const float *xp = x, *dp = dy;
    const int total = noy * nox;
    for (int q = 0, ox = 0, oy = 0; q < total; q++) {
        dvec dv[4];
        for (int c = 0; c < CB; c++) dv[c] = WLOAD(c);
        for (int i = 0; i < CI; i++) {
            const float xv = xp[i];
            for (int c = 0; c < CB; c++) acc[i][c] += dv[c] * xv;
        }
        xp += xs;
        dp += dys;
        if (++ox == nox) {
            ox = 0;
            oy++;
            xp = x + oy * xrow;
            dp = dy + oy * dyrow;
        }
    }
#undef WLOAD
    for (int i = 0; i < CI; i++)
        for (int c = 0; c < CB; c++) {
            float *p = part + i * pld + c * DV;
            vst(p, first ? acc[i][c] : vld(p) + acc[i][c]);
        }
}

static void wtile_n(int CI, int CB, const float *x, ptrdiff_t xs, ptrdiff_t xrow, const float *dy, ptrdiff_t dys,
                    ptrdiff_t dyrow, int nox, int noy, int ovalid, float *part, ptrdiff_t pld, bool first) {
#define WT(II, CC) wtile(II, CC, x, xs, xrow, dy, dys, dyrow, nox, noy, ovalid, part, pld, first)
#define WSW(CC)                                                                                        \
    switch (CI) {                                                                                      \
    case 1: WT(1, CC); break;                                                                          \
    case 2: WT(2, CC); break;                                                                          \
    case 3: WT(3, CC); break;                                                                          \
    case 4: WT(4, CC); break;                                                                          \
    case 5: WT(5, CC); break;                                                                          \
    case 6: WT(6, CC); break;                                                                          \
    case 7: WT(7, CC); break;                                                                          \
    case 8: WT(8, CC); break;                                                                          \
    case 9: WT(9, CC); break;                                                                          \
    case 10: WT(10, CC); break;                                                                        \
    case 11: WT(11, CC); break;                                                                        \
    case 12: WT(12, CC); break;                                                                        \
    case 13: WT(13, CC); break;                                                                        \
    case 14: WT(14, CC); break;                                                                        \
    case 15: WT(15, CC); break;                                                                        \
    default: WT(16, CC); break;                                                                        \
    }
    if (CB == 1) WSW(1)
    else if (CB == 2) WSW(2)
    else WSW(4)
#undef WSW
#undef WT
}

/* wtile's sums; with whole vectors of dy, as the register tile of the
 * forward pass (positions: the ci values of x, channel vectors: dy, summed
 * over the positions as the reduction and the rows as the taps): GCC keeps
 * that tile's sums in registers, but stored wtile's to the stack on every
 * position (4.1 against 2.5 ms for a 16-channel layer). */
static void wsum(int CI, int CB, const float *x, ptrdiff_t xs, ptrdiff_t xrow, const float *dy, ptrdiff_t dys,
                 ptrdiff_t dyrow, int nox, int noy, int ovalid, float *part, ptrdiff_t pld, bool first,
                 const float **ptrs) {
    if (ovalid < CB * DV) {
        wtile_n(CI, CB, x, xs, xrow, dy, dys, dyrow, nox, noy, ovalid, part, pld, first);
        return;
    }
    const float **tx = ptrs, **tw = ptrs + noy;
    for (int t = 0; t < noy; t++) {
        tx[t] = x + t * xrow;
        tw[t] = dy + t * dyrow;
    }
    const int ng[3] = {0, 0, noy};
    rtile_n(CI, CB, ng, tx, tw, nox, xs, dys, part, pld, CB * DV, NULL, !first);
}

/* Output rows per band of the weight gradient: the band's dy and padded x
 * stay in L1 while every kernel row and channel block reads them. */
static int wband(const ngeom *g) {
    const int Wp = (g->OW - 1) * g->sw + g->KW;
    const int64_t row_bytes = ((int64_t)g->OW * g->O + (int64_t)g->sh * Wp * g->C) * (int64_t)sizeof(float);
    int band = (int)((32 << 10) / (row_bytes > 0 ? row_bytes : 1));
    band = band < 1 ? 1 : band > g->OH ? g->OH : band;
    const int nb = (g->OH + band - 1) / band;
    return (g->OH + nb - 1) / nb; /* even bands: 7 rows as 4 + 3, not 6 + 1 */
}
static int64_t wpad_floats(const ngeom *g) {
    const int Wp = (g->OW - 1) * g->sw + g->KW;
    return ((int64_t)(wband(g) - 1) * g->sh + g->KH) * Wp * g->C;
}

/* The weight gradient's two register tiles: vectors over output channels
 * (dy) with x broadcast, or, "turned" (U = KW * C a multiple of DV), vectors
 * over u = kw * C + c (x) with dy broadcast. Turned is taken whenever it
 * applies: 16 output channels straight load one dy vector and 14
 * broadcasts for 14 multiply-adds, turned 3 x vectors and 8 broadcasts for
 * 24 (16->16 at 28x28, batch 64: 2.1 -> 1.7 ms); at 64 output channels the
 * two are even (64 ch 7x7: 1.8 straight, 1.7 turned). */
typedef struct {
    bool turned;
    int CB, R; /* vectors per block and positions per tile of the chosen tile */
} wplan;
static wplan wplan_of(const ngeom *g) {
    const int U = g->KW * g->C;
    wplan p = {false, pick_cb(g->O, 1), 0};
    if (U % DV == 0) {
        const int nvu = U / DV;
        p.turned = true;
        p.CB = nvu % 3 == 0 ? 3 : nvu % 2 == 0 ? 2 : 1;
    }
    p.R = rmax_for(p.CB, 1);
    return p;
}

/* Adds the sums of one image to part: [KH*KW*C][OP], or turned
 * [O][KH*KW*C]. Each band of output
 * rows first copies the input rows it reads with their zero columns (xp),
 * so that every output column reads its KW * C inputs of a kernel row as
 * consecutive floats: one sum over u = kw * C + c per kernel row, without
 * border cases. */
static void bweight_image(const ngeom *g, const wplan *wp, const float *x, const float *dy, float *part,
                          const float **ptrs, float *xp) {
    const int OP = rup(g->O, DV);
    const int CB = wp->CB, cbw = CB * DV, ncb = OP / cbw;
    const int CIM = wp->R;
    const int Wp = (g->OW - 1) * g->sw + g->KW, U = g->KW * g->C;
    const int nub = (U + CIM - 1) / CIM, ustep = (U + nub - 1) / nub;
    const ptrdiff_t xs = (ptrdiff_t)g->sw * g->C, xrow = (ptrdiff_t)g->sh * Wp * g->C;
    const ptrdiff_t dyrow = (ptrdiff_t)g->OW * g->O;
    /* input columns ix = q - pw of the padded row's q < Wp */
    const int qlo = g->pw, qhi = g->W + g->pw < Wp ? g->W + g->pw : Wp;
    const int band = wband(g);
    for (int b0 = 0; b0 < g->OH; b0 += band) {
        const int b1 = g->OH - b0 < band ? g->OH : b0 + band;
        const int iybase = b0 * g->sh - g->ph, nrows = (b1 - 1 - b0) * g->sh + g->KH;
        for (int r = 0; r < nrows; r++) {
            const int iy = iybase + r;
            float *d = xp + (size_t)r * Wp * g->C;
            if (iy < 0 || iy >= g->H) continue; /* never read */
            if (qlo > 0) memset(d, 0, (size_t)qlo * g->C * sizeof(float));
            if (qhi > qlo) memcpy(d + (size_t)qlo * g->C, x + (size_t)iy * g->W * g->C, (size_t)(qhi - qlo) * g->C * sizeof(float));
            if (Wp > qhi) memset(d + (size_t)qhi * g->C, 0, (size_t)(Wp - (qhi > qlo ? qhi : qlo)) * g->C * sizeof(float));
        }
        for (int kh = 0; kh < g->KH; kh++) {
            /* rows oy with 0 <= oy * sh - ph + kh < H, in the band */
            int oylo = g->ph - kh > 0 ? (g->ph - kh + g->sh - 1) / g->sh : 0;
            int oyhi = g->H - 1 + g->ph - kh >= 0 ? (g->H - 1 + g->ph - kh) / g->sh + 1 : 0;
            if (oylo < b0) oylo = b0;
            if (oyhi > b1) oyhi = b1;
            const int noy = oyhi - oylo;
            if (noy <= 0) continue;
            float *pk = part + (size_t)kh * U * OP;
            const float *xr = xp + (size_t)(oylo * g->sh - g->ph + kh - iybase) * Wp * g->C;
            const float *dyr = dy + (size_t)oylo * dyrow;
            if (wp->turned) {
                /* part[o][kh * U + u]: positions o (dy, broadcast), vectors over u (x) */
                const ptrdiff_t pu = (ptrdiff_t)g->KH * U;
                const float **tx = ptrs, **tw = ptrs + noy;
                for (int o0 = 0; o0 < g->O; o0 += CIM) {
                    const int ro = g->O - o0 < CIM ? g->O - o0 : CIM;
                    for (int u0 = 0; u0 < U; u0 += cbw) {
                        for (int t = 0; t < noy; t++) {
                            tx[t] = dyr + t * dyrow + o0;
                            tw[t] = xr + t * xrow + u0;
                        }
                        const int ng[3] = {0, 0, noy};
                        rtile_n(ro, CB, ng, tx, tw, g->OW, g->O, xs, part + o0 * pu + (ptrdiff_t)kh * U + u0, pu, cbw,
                                NULL, true);
                    }
                }
                continue;
            }
            for (int u0 = 0; u0 < U; u0 += ustep) {
                const int ci = U - u0 < ustep ? U - u0 : ustep;
                for (int cb = 0; cb < ncb; cb++)
                    wsum(ci, CB, xr + u0, xs, xrow, dyr + cb * cbw, g->O, dyrow, g->OW, noy, g->O - cb * cbw,
                         pk + (size_t)u0 * OP + cb * cbw, OP, false, ptrs);
            }
        }
    }
}

/* ---------------------------------------------------------------- 1x1 kernels
 * (their gradients; is_1x1 and gather_1x1 are above the forward pass) */
/* The weight gradient's sums of one image, p [C][OP] += xs^T dY; xs
 * [OH*OW][C] (gather_1x1). */
static void bweight_1x1(const ngeom *g, const float *xs, const float *dyn, float *p) {
    cx_sgemm(true, false, g->C, g->O, g->OH * g->OW, 1.0f, xs, g->C, dyn, g->O, 1.0f, p, rup(g->O, DV));
}

/* Image n's input gradient dxn [H][W][C] (+)= dY wb at the strided positions
 * (0 elsewhere when storing); wb [O][CP] (pack_bdata); t: OH*OW*C floats. */
static void bdata_1x1(const ngeom *g, const float *dyn, const float *wb, int CP, float *dxn, bool accumulate,
                      float *t) {
    const int P = g->OH * g->OW;
    if (g->sh == 1 && g->sw == 1) {
        cx_sgemm(false, false, P, g->C, g->O, 1.0f, dyn, g->O, wb, CP, accumulate ? 1.0f : 0.0f, dxn, g->C);
        return;
    }
    cx_sgemm(false, false, P, g->C, g->O, 1.0f, dyn, g->O, wb, CP, 0.0f, t, g->C);
    if (!accumulate) memset(dxn, 0, (size_t)g->H * g->W * g->C * sizeof(float));
    for (int oy = 0; oy < g->OH; oy++)
        for (int ox = 0; ox < g->OW; ox++) {
            float *d = dxn + ((size_t)oy * g->sh * g->W + (size_t)ox * g->sw) * g->C;
            const float *r = t + ((size_t)oy * g->OW + ox) * g->C;
            for (int c = 0; c < g->C; c++) d[c] += r[c];
        }
}

/* The backward pass image by image, in WSLOTS fixed ranges of images (the
 * weight gradient's partial sums, reduced in a fixed order: the same bits for
 * any thread count), ranges and images last to first (dY's producer wrote
 * its end last) within each thread's block of ranges (CX_PFOR_BACK: the
 * images stay on the thread that made them in the forward pass). Each
 * image's dY is read from dY, or made by mk into a
 * per-range scratch buffer (the fused batch norm's input gradient, never
 * written whole); then its weight gradient (dW != NULL: dW += ...), the
 * sums of dY (db != NULL: db[o] += ..., in double) and, with bd, its input
 * gradient, while its dY is in cache (it was read twice from memory when
 * the two passes ran one after the other). */
typedef void (*dy_maker)(const void *ctx, int n, float *dst);
static void nhwc_backward_images(const ngeom *g, const float *X, const float *dY, dy_maker mk, const void *mkctx,
                                 float *dW, double *db, const bdctx *bd) {
    const int OP = rup(g->O, DV);
    const wplan wp = wplan_of(g);
    const int wm = dW ? wino_m(g) : 0;
    const bool wino = wm > 0;
    /* the sums' layout: [t][c][OP] straight, [o][t][c] turned (the direct
     * kernels' choice; a 1x1 kernel's product is straight, OP wide) */
    const bool one = is_1x1(g), turned = wp.turned && !one;
    const int64_t pf = !dW ? 0 : wino ? (int64_t)(wm + 2) * (wm + 2) * g->C * g->O : (int64_t)g->KH * g->KW * g->C * (turned ? g->O : OP);
    const int S = g->N < WSLOTS ? g->N : WSLOTS;
    if (S <= 0) return;
    const int nt = nthreads();
    const double work = 2.0 * g->N * g->OH * g->OW * (double)g->O * g->C * g->KH * g->KW;
    const bool par = nt > 1 && S > 1 && work >= 2e6;
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk0 = cx_arena_get_mark(a);
    float *parts = dW ? cx_arena_alloc((size_t)(pf * S) * sizeof(float)) : NULL;
    double *dbs = db ? cx_arena_alloc((size_t)g->O * S * sizeof(double)) : NULL;
    /* the ranges' working buffers (input padding, pointer lists, made dY,
     * 1x1 gathers) are each thread's own scratch (cx_tscratch): a range
     * uses them only while it runs */
    const int64_t xpf = !dW ? 0 : wino ? wino_wscratch(g, wm) : wpad_floats(g);
    const size_t ximg = (size_t)g->H * g->W * g->C, dyimg = (size_t)g->OH * g->OW * g->O;
    /* 1x1: the gathered input and the input gradient's product */
    const bool strided = g->sh != 1 || g->sw != 1;
    const size_t one_f = (size_t)g->OH * g->OW * g->C;
    bdctx bdc;
    if (bd) {
        bdc = *bd;
        bdata_prep(&bdc, g, bd->dY, bd->wb, bd->dX, bd->accumulate);
    }
    CX_PFOR_BACK(par, int, sl, S, {
        const int n0 = (int)((int64_t)sl * g->N / S), n1 = (int)((int64_t)(sl + 1) * g->N / S);
        float *p = dW ? parts + pf * sl : NULL;
        if (p) memset(p, 0, (size_t)pf * sizeof(float));
        double *ds = db ? dbs + (size_t)g->O * sl : NULL;
        if (ds)
            for (int o = 0; o < g->O; o++) ds[o] = 0;
        float *xpad = p ? cx_tscratch(TS_WPAD, (size_t)xpf * sizeof(float)) : NULL;
        const float **ptrs = p && !wino && !one ? cx_tscratch(TS_WPTRS, (size_t)2 * (g->OH + 1) * sizeof(float *)) : NULL;
        float *scratch = mk ? cx_tscratch(TS_DY, dyimg * sizeof(float)) : NULL;
        float *one_x = one && strided && p ? cx_tscratch(TS_ONE_X, one_f * sizeof(float)) : NULL;
        float *one_t = one && strided && bd ? cx_tscratch(TS_ONE_T, one_f * sizeof(float)) : NULL;
        wbatch wb = {0};
        if (p && wino) wb = wbatch_of(g, wm, xpad);
        /* Winograd's input gradient: the range's images batched too */
        fbatch fb = {0};
        if (bd && bdc.wm)
            fb = fbatch_of(bdc.wm, g->H, g->W, g->O, bdc.CP, wcopies_get(&bdc.wu), NULL, bdc.accumulate,
                           cx_tscratch(TS_FBATCH, (size_t)bdc.wsf * sizeof(float)));
        for (int n = n1 - 1; n >= n0; n--) {
            const float *dyn = dY ? dY + dyimg * n : scratch;
            if (mk) mk(mkctx, n, scratch);
            if (ds)
                for (size_t q = 0; q < (size_t)g->OH * g->OW; q++)
                    for (int o = 0; o < g->O; o++) ds[o] += dyn[q * g->O + o];
            if (p && wino) wino_bweight_image(g, wm, X + ximg * n, dyn, p, &wb);
            else if (p && one) bweight_1x1(g, gather_1x1(g, X + ximg * n, one_x), dyn, p);
            else if (p) bweight_image(g, &wp, X + ximg * n, dyn, p, ptrs, xpad);
            if (bd && bdc.wm)
                fbatch_add(&fb, dyn, bdc.dX + ximg * n, NULL, 0, (g->H + bdc.wm - 1) / bdc.wm);
            else if (bd && one)
                bdata_1x1(g, dyn, bdc.wb, bdc.CP, bdc.dX + ximg * n, bdc.accumulate, one_t);
            else if (bd)
                bdata_rows(&bdc, n, 0, g->H, dyn);
        }
        if (p && wino) wbatch_flush(g, wm, &wb, p);
        if (bd && bdc.wm) fbatch_flush(&fb);
    });
    const int K = g->KH * g->KW;
    if (dW && S > 1) {
        /* the ranges' sums in a fixed order, the same for any thread count:
         * each half of the ranges added up in range order into its first
         * range, then the second half's total into the first's. The halves
         * go by blocks of elements, the first half's blocks first: with 2
         * threads each adds up the ranges it made (a serial pass over 8 x
         * [36][64][64] sums held the other thread 0.3 ms; adding all ranges
         * by blocks of elements made each thread read the other's ranges,
         * 1.2 MB per 64-channel layer, slow when the cores do not share a
         * cache). The last step goes by input channel, as the Winograd
         * finish below reads it. */
        const int64_t RB = 4096, nrb = (pf + RB - 1) / RB;
        const int h = S / 2;
        const bool rpar = nt > 1 && pf >= 4 * RB;
        CX_PFOR(rpar,
        for (int64_t tk = 0; tk < 2 * nrb; tk++) {
            const int half = (int)(tk / nrb), s0 = half ? h : 0, s1 = half ? S : h;
            const int64_t i0 = (tk % nrb) * RB, i1 = i0 + RB < pf ? i0 + RB : pf;
            float *pd = parts + pf * s0;
            for (int sl = s0 + 1; sl < s1; sl++) {
                const float *ps = parts + pf * sl;
                for (int64_t i = i0; i < i1; i++) pd[i] += ps[i];
            }
        });
        const float *ph = parts + pf * h;
        if (wino) { /* the sums are [NE][C][O] */
            const int NE = (wm + 2) * (wm + 2);
            CX_PFOR(rpar,
            for (int c = 0; c < g->C; c++)
                for (int e = 0; e < NE; e++) {
                    const int64_t i0 = ((int64_t)e * g->C + c) * g->O;
                    for (int64_t i = i0; i < i0 + g->O; i++) parts[i] += ph[i];
                });
        } else {
            CX_PFOR(rpar,
            for (int64_t rb = 0; rb < nrb; rb++) {
                const int64_t i0 = rb * RB, i1 = i0 + RB < pf ? i0 + RB : pf;
                for (int64_t i = i0; i < i1; i++) parts[i] += ph[i];
            });
        }
    }
    if (dW) {
        if (wino) {
            wino_bweight_finish(g, wm, parts, dW, nt > 1 && (int64_t)g->C * g->O >= 1024);
        } else {
            for (int o = 0; o < g->O; o++)
                for (int c = 0; c < g->C; c++)
                    for (int t = 0; t < K; t++) {
                        /* straight [t][c][OP]; turned [o][kh][kw][c], t = kh * KW + kw */
                        const size_t at =
                            turned ? ((size_t)o * K + t) * g->C + c : ((size_t)t * g->C + c) * OP + o;
                        dW[((size_t)o * g->C + c) * K + t] += parts[at];
                    }
        }
    }
    if (db)
        for (int o = 0; o < g->O; o++)
            for (int sl = 0; sl < S; sl++) db[o] += dbs[(size_t)g->O * sl + o];
    cx_arena_rewind(a, mk0);
}

/* ---------------------------------------------------------------- packing */
/* wf[t][c][OP] = W[o][c][t] (forward): W as [O][C*K] transposed, then its
 * rows moved into place (element by element it was a serial 0.1 ms per
 * 64-channel layer, a wait for the other thread at 2). */
static float *pack_fwd(const ngeom *g, const float *W) {
    const int OP = rup(g->O, DV), K = g->KH * g->KW;
    float *wf = cx_arena_alloc((size_t)K * g->C * OP * sizeof(float));
    float *t = cx_arena_alloc((size_t)K * g->C * g->O * sizeof(float));
    cx_transpose_block(W, (size_t)g->C * K, t, (size_t)g->O, g->O, g->C * K); /* t[c*K + k][o] */
    for (int k = 0; k < K; k++)
        for (int c = 0; c < g->C; c++) {
            float *d = wf + ((size_t)k * g->C + c) * OP;
            memcpy(d, t + ((size_t)c * K + k) * g->O, (size_t)g->O * sizeof(float));
            if (OP > g->O) memset(d + g->O, 0, (size_t)(OP - g->O) * sizeof(float));
        }
    return wf;
}
/* wb[t][o][CP] = W[o][c][t] (input gradient): each W[o] ([C][K]) transposed into place. */
static float *pack_bdata(const ngeom *g, const float *W) {
    const int CP = rup(g->C, DV), K = g->KH * g->KW;
    float *wb = cx_arena_alloc((size_t)K * g->O * CP * sizeof(float));
    if (CP > g->C) memset(wb, 0, (size_t)K * g->O * CP * sizeof(float));
    for (int o = 0; o < g->O; o++)
        cx_transpose_block(W + (size_t)o * g->C * K, (size_t)K, wb + (size_t)o * CP, (size_t)g->O * CP, g->C, K);
    return wb;
}

/* ---------------------------------------------------------------- the op */
static void conv_nhwc_backward(cx_node *nd) {
    const ngeom *g = nd->saved;
    cx_tensor *out = nd->out[0], *x = nd->in[0], *w = nd->in[1];
    bool fresh;
    float *gx = cx_in_grad_w(nd, 0, &fresh), *gw = cx_in_grad(nd, 1);
    float *gb = nd->n_in > 2 ? cx_in_grad(nd, 2) : NULL;
    const float *G = out->grad;
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk = cx_arena_get_mark(a);
    if (gb) {
        const int64_t rows = (int64_t)g->N * g->OH * g->OW;
        double *acc = cx_arena_alloc((size_t)g->O * sizeof(double));
        for (int o = 0; o < g->O; o++) acc[o] = 0;
        for (int64_t r = 0; r < rows; r++) {
            const float *gr = G + (size_t)r * g->O;
            for (int o = 0; o < g->O; o++) acc[o] += gr[o];
        }
        for (int o = 0; o < g->O; o++) gb[o] += (float)acc[o];
    }
    if (gw && gx) {
        bdctx bd = {.dY = G, .wb = pack_bdata(g, CX_F(w)), .dX = gx, .accumulate = !fresh};
        nhwc_backward_images(g, CX_F(x), G, NULL, NULL, gw, NULL, &bd);
    } else if (gw) {
        nhwc_backward_images(g, CX_F(x), G, NULL, NULL, gw, NULL, NULL);
    } else if (gx) {
        nhwc_bdata(g, G, pack_bdata(g, CX_F(w)), gx, !fresh);
    }
    cx_arena_rewind(a, mk);
}

CX_OP_DEF(conv2d_nhwc, .backward = conv_nhwc_backward);

cx_tensor *cx_conv2d_nhwc(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o) {
    const char *op = "conv2d_nhwc";
    char s1[96], s2[96];
    if (!x || !w) cx_fatal("%s: NULL input or weight", op);
    cx_need_f32(op, x);
    cx_need_f32(op, w);
    if (b) cx_need_f32(op, b);
    if (x->ndim != 4 || w->ndim != 4)
        cx_fatal("%s: expected a 4-D input [N, H, W, C] and a 4-D weight [O, C, kh, kw], got input %s and "
                 "weight %s", op, cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
    cx_conv_opts def = cx_conv_defaults();
    if (!o) o = &def;
    const int groups = o->groups ? o->groups : 1;
    int s[2], p[2], d[2];
    for (int i = 0; i < 2; i++) {
        s[i] = o->stride[i] ? o->stride[i] : 1;
        d[i] = o->dilation[i] ? o->dilation[i] : 1;
        p[i] = o->padding[i];
    }
    if (groups == 1 && w->shape[1] != x->shape[3])
        cx_fatal("%s: weight %s expects input with %d channels (the last dim), got input %s", op,
                 cx_shape_str(w, s2, sizeof s2), w->shape[1], cx_shape_str(x, s1, sizeof s1));
    if (groups != 1 || d[0] != 1 || d[1] != 1 || s[0] < 1 || s[1] < 1 || p[0] < 0 || p[1] < 0 ||
        w->shape[2] > 64 || w->shape[3] > 64) {
        /* the channels-first convolution between permutes (it names any error) */
        cx_tensor *y = cx_conv2d_ex(cx_permute(x, (const int[]){0, 3, 1, 2}), w, b, o);
        return cx_permute(y, (const int[]){0, 2, 3, 1});
    }
    ngeom g = {.N = x->shape[0], .H = x->shape[1], .W = x->shape[2], .C = x->shape[3], .O = w->shape[0],
               .KH = w->shape[2], .KW = w->shape[3], .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1]};
    if (g.KH < 1 || g.KW < 1 || g.KH > g.H + 2 * g.ph || g.KW > g.W + 2 * g.pw)
        cx_fatal("%s: kernel %dx%d is larger than the padded input %dx%d; input %s, weight %s", op, g.KH, g.KW,
                 g.H + 2 * g.ph, g.W + 2 * g.pw, cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
    if (b && b->numel != g.O)
        cx_fatal("%s: bias %s does not match %d output channels (weight %s)", op, cx_shape_str(b, s1, sizeof s1),
                 g.O, cx_shape_str(w, s2, sizeof s2));
    g.OH = cx_conv_out_size(g.H, g.KH, g.sh, g.ph, 1);
    g.OW = cx_conv_out_size(g.W, g.KW, g.sw, g.pw, 1);
    int shape[4] = {g.N, g.OH, g.OW, g.O};
    cx_shape_numel(op, shape, 4);
    cx_tensor *out = cx_new_like_shape(shape, 4);
    if (out->numel > 0) {
        cx_arena *a = cx_arena_current();
        cx_arena_mark mk = cx_arena_get_mark(a);
        float *bp = NULL;
        if (b) {
            const int OP = rup(g.O, DV);
            bp = cx_arena_alloc((size_t)OP * sizeof(float));
            memset(bp, 0, (size_t)OP * sizeof(float));
            memcpy(bp, CX_F(b), (size_t)g.O * sizeof(float));
        }
        nhwc_forward(&g, CX_F(x), pack_fwd(&g, CX_F(w)), bp, CX_F(out), false, NULL);
        cx_arena_rewind(a, mk);
    }
    cx_tensor *in[3] = {x, w, b};
    cx_record_saved(&cx_opd_conv2d_nhwc, out, in, b ? 3 : 2, &g, sizeof g);
    return out;
}

/* ---------------------------------------------------------------- convolution + batch norm */
/* cx_conv2d_bn_nhwc: the convolution's output y is a buffer of this op,
 * never a tensor of the graph. Forward: the convolution sums each output
 * row's values and squares while the row is in L1 (no pass over y for the
 * statistics), then y is normalised into the result, last rows first (the
 * convolution wrote them last). Backward: the batch norm's sums over g and y,
 * then image by image the gradient of y into a scratch buffer and from it
 * the convolution's weight and input gradients: y's gradient is never
 * written whole nor read back from memory. */
typedef struct {
    ngeom g;
    float *y;                 /* the convolution's output */
    float *mean, *invstd;     /* per channel */
    float *alpha, *beta;      /* relu without a residual: the normalisation's scale and shift */
    double n;                 /* values per channel */
    bool training, relu;
} cbn_saved;

typedef struct {
    const cbn_saved *s;
    const float *go, *mg, *yd, *fa, *fb, *fk;
} cbn_dy;

static void cbn_make_dy(const void *ctx, int n, float *dst) {
    const cbn_dy *c = ctx;
    const ngeom *g = &c->s->g;
    const size_t img = (size_t)g->OH * g->OW * g->O;
    /* dst is [OH*OW][O] of image n: the rows of the whole-batch arrays, from image n's first */
    cx_bn_rows_dx(c->s->y + img * n, c->go + img * n, c->yd ? c->yd + img * n : NULL, c->mg ? c->mg + img * n : NULL,
                  c->s->alpha, c->s->beta, c->s->relu, dst, true, 0, (int64_t)g->OH * g->OW, g->O, c->s->mean, c->fa,
                  c->fb, c->fk);
}

static void conv_bn_nhwc_backward(cx_node *nd) {
    const cbn_saved *s = nd->saved;
    const ngeom *g = &s->g;
    cx_tensor *out = nd->out[0], *x = nd->in[0], *w = nd->in[1];
    bool fresh, rfresh = false;
    /* the residual's gradient first (as the batch norm's backward) */
    float *gr = nd->n_in > 5 && nd->in[5] ? cx_in_grad_w(nd, 5, &rfresh) : NULL;
    float *gx = cx_in_grad_w(nd, 0, &fresh), *gw = cx_in_grad(nd, 1);
    float *gcb = nd->in[2] ? cx_in_grad(nd, 2) : NULL;
    float *gbw = nd->in[3] ? cx_in_grad(nd, 3) : NULL, *gbb = nd->in[4] ? cx_in_grad(nd, 4) : NULL;
    const float *G = out->grad, *bwd = nd->in[3] ? CX_F(nd->in[3]) : NULL;
    const int O = g->O;
    const int64_t M = (int64_t)g->N * g->OH * g->OW;
    cx_arena *a = cx_arena_current();
    cx_arena_mark mk = cx_arena_get_mark(a);
    const bool xmask = s->relu && s->alpha;
    const float *yd = s->relu && !xmask ? CX_F(out) : NULL;
    double *sg = cx_arena_alloc((size_t)O * sizeof(double)), *sgx = cx_arena_alloc((size_t)O * sizeof(double));
    cx_bn_rows_gsums(s->y, G, yd, s->alpha, s->beta, s->relu, gr, rfresh, M, O, s->mean, sg, sgx);
    float *fa = cx_arena_alloc((size_t)3 * O * sizeof(float)), *fb = fa + O, *fk = fb + O;
    for (int c = 0; c < O; c++) {
        sgx[c] *= s->invstd[c];
        if (gbw) gbw[c] += (float)sgx[c];
        if (gbb) gbb[c] += (float)sg[c];
        const double invstd = s->invstd[c], scale = (bwd ? bwd[c] : 1.0) * invstd;
        const double mg = s->training ? sg[c] / s->n : 0.0, mgx = s->training ? sgx[c] / s->n : 0.0;
        fa[c] = (float)scale;
        fb[c] = (float)(-scale * mgx * invstd);
        fk[c] = (float)(-scale * mg);
    }
    if (gx || gw || gcb) {
        cbn_dy c = {s, G, s->relu && gr && rfresh ? gr : NULL, yd, fa, fb, fk};
        double *db = gcb ? cx_arena_alloc((size_t)O * sizeof(double)) : NULL;
        if (db)
            for (int o = 0; o < O; o++) db[o] = 0;
        bdctx bd = {.dY = NULL, .wb = gx ? pack_bdata(g, CX_F(w)) : NULL, .dX = gx, .accumulate = !fresh};
        nhwc_backward_images(g, CX_F(x), NULL, cbn_make_dy, &c, gw, db, gx ? &bd : NULL);
        if (db)
            for (int o = 0; o < O; o++) gcb[o] += (float)db[o];
    }
    cx_arena_rewind(a, mk);
}

CX_OP_DEF(conv2d_bn_nhwc, .backward = conv_bn_nhwc_backward);

static void need_channels(const char *op, const char *what, const cx_tensor *t, int O) {
    char sb[96];
    if (!t) return;
    cx_need_f32_arg(op, what, t);
    if (t->ndim != 1 || t->shape[0] != O)
        cx_fatal("%s: %s has shape %s, expected [%d] (the output channels)", op, what, cx_shape_str(t, sb, sizeof sb), O);
}

cx_tensor *cx_conv2d_bn_nhwc(cx_tensor *x, cx_tensor *w, cx_tensor *b, const cx_conv_opts *o, cx_tensor *residual,
                             bool relu, cx_tensor *running_mean, cx_tensor *running_var, cx_tensor *bn_weight,
                             cx_tensor *bn_bias, bool training, float momentum, float eps) {
    const char *op = "conv2d_bn_nhwc";
    char s1[96], s2[96];
    if (!x || !w) cx_fatal("%s: NULL input or weight", op);
    if (residual && !relu) cx_fatal("%s: a residual needs relu (the block end conv - bn - add - relu)", op);
    cx_need_f32(op, x);
    cx_need_f32(op, w);
    cx_conv_opts def = cx_conv_defaults();
    if (!o) o = &def;
    bool fast = !cx_bn_sync.allreduce && (o->groups ? o->groups : 1) == 1 && x->ndim == 4 && w->ndim == 4 &&
                w->shape[0] <= 4096 && w->shape[2] <= 64 && w->shape[3] <= 64 && w->shape[1] == x->shape[3];
    for (int i = 0; i < 2; i++) fast &= (o->dilation[i] ? o->dilation[i] : 1) == 1 && (o->stride[i] ? o->stride[i] : 1) >= 1 && o->padding[i] >= 0;
    if (!fast) /* the two ops (synchronised batch norm, groups, dilation ...), which name any error */
        return cx_batch_norm_nhwc(cx_conv2d_nhwc(x, w, b, o), residual, relu, running_mean, running_var, bn_weight,
                                  bn_bias, training, momentum, eps);
    if (b) cx_need_f32(op, b);
    ngeom g = {.N = x->shape[0], .H = x->shape[1], .W = x->shape[2], .C = x->shape[3], .O = w->shape[0],
               .KH = w->shape[2], .KW = w->shape[3], .sh = o->stride[0] ? o->stride[0] : 1,
               .sw = o->stride[1] ? o->stride[1] : 1, .ph = o->padding[0], .pw = o->padding[1]};
    if (g.KH < 1 || g.KW < 1 || g.KH > g.H + 2 * g.ph || g.KW > g.W + 2 * g.pw)
        cx_fatal("%s: kernel %dx%d is larger than the padded input %dx%d; input %s, weight %s", op, g.KH, g.KW,
                 g.H + 2 * g.ph, g.W + 2 * g.pw, cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2));
    if (b && b->numel != g.O)
        cx_fatal("%s: bias %s does not match %d output channels (weight %s)", op, cx_shape_str(b, s1, sizeof s1), g.O,
                 cx_shape_str(w, s2, sizeof s2));
    need_channels(op, "bn weight", bn_weight, g.O);
    need_channels(op, "bn bias", bn_bias, g.O);
    need_channels(op, "running_mean", running_mean, g.O);
    need_channels(op, "running_var", running_var, g.O);
    if (!training && (!running_mean || !running_var))
        cx_fatal("%s: eval mode needs running_mean and running_var (input %s)", op, cx_shape_str(x, s1, sizeof s1));
    if (!(eps > 0)) cx_fatal("%s: eps must be positive, got %g", op, (double)eps);
    if (training && !(momentum >= 0 && momentum <= 1))
        cx_fatal("%s: momentum must be in [0, 1], got %g", op, (double)momentum);
    g.OH = cx_conv_out_size(g.H, g.KH, g.sh, g.ph, 1);
    g.OW = cx_conv_out_size(g.W, g.KW, g.sw, g.pw, 1);
    int shape[4] = {g.N, g.OH, g.OW, g.O};
    cx_shape_numel(op, shape, 4);
    const int64_t M = (int64_t)g.N * g.OH * g.OW;
    if (training && M <= 1)
        cx_fatal("%s: expected more than 1 value per channel when training, got input %s", op,
                 cx_shape_str(x, s1, sizeof s1));
    if (residual) {
        cx_need_f32_arg(op, "residual", residual);
        bool same = residual->ndim == 4;
        for (int i = 0; same && i < 4; i++) same = residual->shape[i] == shape[i];
        if (!same)
            cx_fatal("%s: residual has shape %s, expected the output's shape [%d, %d, %d, %d]", op,
                     cx_shape_str(residual, s1, sizeof s1), shape[0], shape[1], shape[2], shape[3]);
    }
    cx_tensor *out = cx_new_like_shape(shape, 4);
    const int O = g.O, OP = rup(O, DV);
    cbn_saved sv = {.g = g, .n = (double)M, .training = training, .relu = relu};
    sv.y = cx_arena_alloc((size_t)(M > 0 ? M : 1) * O * sizeof(float));
    sv.mean = cx_arena_alloc((size_t)O * sizeof(float));
    sv.invstd = cx_arena_alloc((size_t)O * sizeof(float));
    float *fa = cx_arena_alloc((size_t)O * sizeof(float)), *fb = cx_arena_alloc((size_t)O * sizeof(float));
    if (relu && !residual) {
        sv.alpha = fa;
        sv.beta = fb;
    }
    cx_arena *a = cx_arena_current();
    {
        cx_arena_mark mk = cx_arena_get_mark(a);
        float *bp = NULL;
        if (b) {
            bp = cx_arena_alloc((size_t)OP * sizeof(float));
            memset(bp, 0, (size_t)OP * sizeof(float));
            memcpy(bp, CX_F(b), (size_t)O * sizeof(float));
        }
        float *rowstats = training ? cx_arena_alloc((size_t)g.N * g.OH * 2 * OP * sizeof(float)) : NULL;
        if (M > 0) nhwc_forward(&g, CX_F(x), pack_fwd(&g, CX_F(w)), bp, sv.y, false, rowstats);
        float *rm = running_mean ? CX_F(running_mean) : NULL, *rv = running_var ? CX_F(running_var) : NULL;
        const float *wd = bn_weight ? CX_F(bn_weight) : NULL, *bd = bn_bias ? CX_F(bn_bias) : NULL;
        double *s1 = cx_arena_alloc((size_t)O * sizeof(double)), *s2 = cx_arena_alloc((size_t)O * sizeof(double));
        bool exact = false;
        if (training) {
            /* sum y and sum y^2 over the rows, in a fixed order */
            for (int c = 0; c < O; c++) s1[c] = s2[c] = 0;
            for (int64_t r = 0; r < (int64_t)g.N * g.OH; r++) {
                const float *rs = rowstats + (size_t)r * 2 * OP;
                for (int c = 0; c < O; c++) {
                    s1[c] += rs[c];
                    s2[c] += rs[OP + c];
                }
            }
            /* a mean large against the spread would cancel in s2 - s1^2 / n:
             * then the shifted sums of a pass over y (cx_bn_rows_stat) */
            for (int c = 0; c < O && !exact; c++) {
                const double m = s1[c] / (double)M, q = s2[c] / (double)M - m * m;
                exact = !(q > 1e-2 * m * m);
            }
            if (exact) cx_bn_rows_stat(sv.y, M, O, s1, s2);
        }
        for (int c = 0; c < O; c++) {
            double mean, invstd;
            if (training) {
                double q;
                if (exact) {
                    mean = (double)sv.y[c] + s1[c] / (double)M;
                    q = s2[c] - s1[c] * s1[c] / (double)M;
                } else {
                    mean = s1[c] / (double)M;
                    q = s2[c] - s1[c] * mean;
                }
                q = q > 0 ? q : 0;
                invstd = 1.0 / sqrt(q / (double)M + (double)eps);
                if (rm) rm[c] = (float)((1.0 - (double)momentum) * rm[c] + (double)momentum * mean);
                if (rv) rv[c] = (float)((1.0 - (double)momentum) * rv[c] + (double)momentum * (q / (double)(M - 1)));
            } else {
                mean = rm[c];
                invstd = 1.0 / sqrt((double)rv[c] + (double)eps);
            }
            sv.mean[c] = (float)mean;
            sv.invstd[c] = (float)invstd;
            fa[c] = (float)(invstd * (wd ? wd[c] : 1.0));
            fb[c] = bd ? bd[c] : 0.0f;
        }
        /* normalise, the last rows first (the convolution wrote them last),
         * each thread its block: the rows the convolution gave it */
        const int64_t nb = (M + 255) / 256;
        const float *rd = residual ? CX_F(residual) : NULL;
        float *zd = CX_F(out);
        CX_PFOR_BACK(M * O > CX_PAR_MIN, int64_t, bi, nb, {
            const int64_t q0 = bi * 256, q1 = q0 + 256 < M ? q0 + 256 : M;
            cx_bn_rows_apply(sv.y, rd, relu, zd, q0, q1, O, sv.mean, fa, fb);
        });
        cx_arena_rewind(a, mk);
    }
    cx_tensor *in[6] = {x, w, b, bn_weight, bn_bias, residual};
    cx_record_saved(&cx_opd_conv2d_bn_nhwc, out, in, 6, &sv, sizeof sv);
    return out;
}
