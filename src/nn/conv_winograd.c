/* Winograd F(2x2, 3x3) convolution: the forward pass, the input gradient and
 * (further down) the weight gradient of stride-1 3x3 2-D convolutions (Lavin
 * & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 *
 * Each 2x2 block of outputs (a tile) of one output channel is
 *   y = A^T [ sum_c (G g_{o,c} G^T) .* (B^T d_c B) ] A
 * where d_c is the 4x4 input patch of channel c under the tile and g the 3x3
 * kernel. The sum over channels, for each of the 16 tile positions xi, is a
 * matrix product  M_xi[o][t] = sum_c U_xi[o][c] V_xi[c][t]  over a block of
 * tiles t: 16 multiply-adds per tile and channel pair instead of the 36 of
 * the direct convolution (2.25x fewer). The transforms only add, subtract
 * and halve, so the result stays within a few ulps of the direct sum.
 *
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The zero-padded input of each image is first split into its four
 * polyphase parts P_ab[y][x] = pad[2y + a][2x + b] (rows of TW + 1), so the
 * 16 inputs of tile (th, tw) are P_ab[u + dr * (TW + 1) + dq] at the tile's
 * index u = th * (TW + 1) + tw: every transform is a plain vector operation
 * over consecutive u. Index tw = TW is a dummy tile (computed, never written).
 *
 * The tiles of a batch of images, numbered (image, u), are cut into fixed
 * blocks of WT; a thread takes a block, transforms its inputs (V,
 * [16][Ci][WT], kept in L2), runs the 16 products with the shared
 * register-tile kernel (conv_kern.h) for DMR output channels at a time, and
 * transforms those outputs straight into Y. Every output is computed the same
 * way whatever the thread count. A non-finite input value reaches every
 * output of the tiles that read it (the transforms mix a tile's inputs). */
#include "conv_kern.h"
#include "../cpu/cpu.h"
#include "../cpu/transpose.h"
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Tiles per block: a multiple of the kernel's DNV * DV lanes. */
#define WT_UNIT (DNV * DV)
#define WT_MAX (4 * 48)
/* Polyphase copies of a batch of images: at most this many bytes. */
#define WINO_PAD_BYTES ((size_t)8 << 20)
/* Inputs and outputs of one block are kept under this many bytes. */
#define WINO_BLOCK_BYTES ((size_t)1 << 20)
#ifndef WINO_PAD_CHUNK_BYTES
#define WINO_PAD_CHUNK_BYTES ((size_t)512 << 10)
#endif
/* Fewer channels than this: the transforms cost more than they save. */
#define WINO_MIN_CH 8

_Atomic long cx_conv_wino_calls;

bool cx_conv_wino_applies(int Ci, int Co, const int in[3], const int out[3], const int k[3],
                          const int d[3]) {
    (void)in;
    if (!(k[0] == 1 && k[1] == 3 && k[2] == 3 && d[1] == 1 && d[2] == 1 && out[0] == 1 &&
          Ci >= WINO_MIN_CH && Co >= WINO_MIN_CH && out[1] >= 2 && out[2] >= 2))
        return false;
    /* one image's polyphase copy must fit the batch buffer */
    const double img = 4.0 * Ci * 4.0 * ((out[1] + 1) / 2 + 1) * (double)((out[2] + 1) / 2 + 1);
    return img <= (double)WINO_PAD_BYTES / 2;
}

/* U[xi][ot][c][DMR] = (G g G^T)[xi] for output channel ot*DMR + i (zero past Co). */
static void transform_weights(int Ci, int Co, const float *W, bool flip, float *U, bool par) {
    const int ots = (Co + DMR - 1) / DMR;
    memset(U, 0, (size_t)16 * ots * Ci * DMR * sizeof(float));
    (void)par;
    CX_OMP(parallel for schedule(static) if(par))
    for (int co = 0; co < Co; co++)
        for (int c = 0; c < Ci; c++) {
            float g[3][3];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    g[a][b] = flip ? W[((size_t)c * Co + co) * 9 + (8 - (a * 3 + b))]
                                   : W[((size_t)co * Ci + c) * 9 + a * 3 + b];
            float t[4][3]; /* G g */
            for (int b = 0; b < 3; b++) {
                t[0][b] = g[0][b];
                t[1][b] = 0.5f * (g[0][b] + g[1][b] + g[2][b]);
                t[2][b] = 0.5f * (g[0][b] - g[1][b] + g[2][b]);
                t[3][b] = g[2][b];
            }
            const int ot = co / DMR, i = co - ot * DMR;
            for (int r = 0; r < 4; r++) {
                float u[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]),
                              0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
                for (int j = 0; j < 4; j++)
                    U[(((size_t)(r * 4 + j) * ots + ot) * Ci + c) * DMR + i] = u[j];
            }
        }
}

/* Geometry of one Winograd call: the convolution of one group (input
 * [Ci, inH, inW], output [Co, OH, OW], leading padding pH, pW) in TH x TW
 * tiles, with the layouts of the forward / input-gradient path (polyphase
 * parts, RS, PP) and of the weight-gradient path (channels-last copies PH x
 * PW, channels padded to Cp / Op). WT (tiles per block) is set by each path. */
typedef struct {
    int Ci, Co, inH, inW, OH, OW, pH, pW, TH, TW, WT, ots;
    int RS;                /* polyphase row stride, TW + 1 */
    int64_t inP, outP;
    int64_t PP;            /* floats of one polyphase part, (TH + 1) * RS */
    size_t img_floats;     /* one image's polyphase parts, Ci * 4 * PP (+ slack) */
    int Cp, Op;            /* channels padded to whole vectors / register tiles */
    int PH, PW;            /* the zero-padded image under all tiles, 2 * T + 2 */
} wgeo;

static int pad_to(int n, int unit) { return (n + unit - 1) / unit * unit; }

static void wgeo_init(wgeo *w, int Ci, int Co, const int in[3], const int out[3],
                      const int p[3]) {
    memset(w, 0, sizeof *w);
    w->Ci = Ci;
    w->Co = Co;
    w->inH = in[1];
    w->inW = in[2];
    w->OH = out[1];
    w->OW = out[2];
    w->pH = p[1];
    w->pW = p[2];
    w->TH = (w->OH + 1) / 2;
    w->TW = (w->OW + 1) / 2;
    w->RS = w->TW + 1;
    w->inP = (int64_t)w->inH * w->inW;
    w->outP = (int64_t)w->OH * w->OW;
    w->PP = (int64_t)(w->TH + 1) * w->RS;
    /* vector loads of a run may read up to DV + RS floats past its last tile */
    w->img_floats = (size_t)Ci * 4 * (size_t)w->PP + (size_t)w->RS + 2 * DV;
    w->ots = (Co + DMR - 1) / DMR;
    w->Cp = pad_to(Ci, DV);
    w->Op = pad_to(Co, DV > DMR ? DV : DMR);
    w->PH = 2 * w->TH + 2;
    w->PW = 2 * w->TW + 2;
}

/* E[k] = s[2k], O[k] = s[2k + 1] for k < n. */
static inline void deinterleave(const float *s, float *E, float *O, int n) {
    int k = 0;
#if defined(__AVX512F__)
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (; k + 16 <= n; k += 16) {
        __m512 lo = _mm512_loadu_ps(s + 2 * k), hi = _mm512_loadu_ps(s + 2 * k + 16);
        _mm512_storeu_ps(E + k, _mm512_permutex2var_ps(lo, ie, hi));
        _mm512_storeu_ps(O + k, _mm512_permutex2var_ps(lo, io, hi));
    }
#endif
    for (; k < n; k++) {
        E[k] = s[2 * k];
        O[k] = s[2 * k + 1];
    }
}

/* d[2k] = base(2k) + a[k], d[2k + 1] = base(2k + 1) + b[k] for the first n
 * entries of d; base = d (accumulate) or the constant c. */
static inline void interleave(float *d, const float *a, const float *b, int n, bool accumulate,
                              float c) {
    int q = 0;
#if defined(__AVX512F__)
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 cv = _mm512_set1_ps(c);
    for (; q < n; q += 32) {
        const int left = n - q;
        const int na = (left + 1) / 2 < 16 ? (left + 1) / 2 : 16;
        const __mmask16 ma = (__mmask16)((1u << na) - 1);
        const __mmask16 m0 = (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1);
        const __mmask16 m1 = (__mmask16)(left >= 32 ? 0xffffu : left > 16 ? (1u << (left - 16)) - 1 : 0);
        __m512 va = _mm512_maskz_loadu_ps(ma, a + q / 2), vb = _mm512_maskz_loadu_ps(ma, b + q / 2);
        __m512 lo = _mm512_permutex2var_ps(va, il, vb), hi = _mm512_permutex2var_ps(va, ih, vb);
        __m512 b0 = accumulate ? _mm512_maskz_loadu_ps(m0, d + q) : cv;
        __m512 b1 = accumulate ? _mm512_maskz_loadu_ps(m1, d + q + 16) : cv;
        _mm512_mask_storeu_ps(d + q, m0, _mm512_add_ps(b0, lo));
        _mm512_mask_storeu_ps(d + q + 16, m1, _mm512_add_ps(b1, hi));
    }
#endif
    for (; q < n; q++) {
        const float v = (q & 1) ? b[q >> 1] : a[q >> 1];
        d[q] = (accumulate ? d[q] : c) + v;
    }
}

/* The polyphase parts of one image-group x [Ci][inH][inW]:
 * P[c][2a + b][y][x] = pad[2y + a][2x + b], y <= TH, x <= TW. */
static void polyphase(const wgeo *w, const float *x, float *P, float *row) {
    const int RS = w->RS, rl = 2 * RS;
    int lo = w->pW, hi = w->pW + w->inW; /* padded columns holding input */
    if (lo > rl) lo = rl;
    if (hi > rl) hi = rl;
    for (int c = 0; c < w->Ci; c++) {
        const float *xc = x + (size_t)c * w->inP;
        float *Pc = P + (size_t)c * 4 * w->PP;
        for (int pr = 0; pr < 2 * (w->TH + 1); pr++) {
            const int a = pr & 1, y = pr >> 1, sr = pr - w->pH;
            float *E = Pc + (size_t)(2 * a) * w->PP + (size_t)y * RS, *O = E + w->PP;
            if (sr < 0 || sr >= w->inH || hi <= lo) {
                memset(E, 0, (size_t)RS * sizeof(float));
                memset(O, 0, (size_t)RS * sizeof(float));
                continue;
            }
            const float *src = xc + (size_t)sr * w->inW - w->pW; /* padded column 0 */
            if (lo == 0 && hi == rl) {
                deinterleave(src, E, O, RS);
                continue;
            }
#if defined(__AVX512F__)
            /* masked loads of the columns holding input (masked-off lanes
             * read nothing), split into even and odd columns */
            const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for (int k = 0; k < RS; k += 16) {
                const int q0 = 2 * k;
                __mmask16 m[2];
                for (int h = 0; h < 2; h++) {
                    int a0 = lo - (q0 + 16 * h), a1 = hi - (q0 + 16 * h);
                    if (a0 < 0) a0 = 0;
                    if (a1 > 16) a1 = 16;
                    m[h] = a1 > a0 ? (__mmask16)(((1u << a1) - 1) & ~((1u << a0) - 1)) : 0;
                }
                __m512 v0 = _mm512_maskz_loadu_ps(m[0], src + q0);
                __m512 v1 = _mm512_maskz_loadu_ps(m[1], src + q0 + 16);
                const __mmask16 ms = (__mmask16)(RS - k >= 16 ? 0xffffu : (1u << (RS - k)) - 1);
                _mm512_mask_storeu_ps(E + k, ms, _mm512_permutex2var_ps(v0, ie, v1));
                _mm512_mask_storeu_ps(O + k, ms, _mm512_permutex2var_ps(v0, io, v1));
            }
            (void)row;
#else
            for (int q = 0; q < lo; q++) row[q] = 0.0f;
            memcpy(row + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            for (int q = hi; q < rl; q++) row[q] = 0.0f;
            deinterleave(row, E, O, RS);
#endif
        }
    }
}

/* V[xi][c][k0 + k] = (B^T d B)[xi] of the tiles at polyphase index u0 + k, k < len, of
 * one image's polyphase parts P. */
static void input_run(const wgeo *w, const float *P, int64_t u0, int len, float *V, int k0) {
    const int WT = w->WT, RS = w->RS;
    const size_t xs = (size_t)w->Ci * WT; /* V stride of one xi */
    for (int c = 0; c < w->Ci; c++) {
        const float *Pc = P + (size_t)c * 4 * w->PP + u0;
        const float *p00 = Pc, *p01 = Pc + w->PP, *p10 = Pc + 2 * w->PP, *p11 = Pc + 3 * w->PP;
        float *vc = V + (size_t)c * WT + k0;
        for (int k = 0; k < len; k += DV) {
            dvec d[4][4];
            for (int dr = 0; dr < 2; dr++)
                for (int dq = 0; dq < 2; dq++) {
                    const size_t o = (size_t)k + (size_t)dr * RS + (size_t)dq;
                    d[2 * dr][2 * dq] = vld(p00 + o);
                    d[2 * dr][2 * dq + 1] = vld(p01 + o);
                    d[2 * dr + 1][2 * dq] = vld(p10 + o);
                    d[2 * dr + 1][2 * dq + 1] = vld(p11 + o);
                }
            dvec cc[4][4]; /* cc[r][j]: column transform of row r */
            for (int r = 0; r < 4; r++) {
                cc[r][0] = d[r][0] - d[r][2];
                cc[r][1] = d[r][1] + d[r][2];
                cc[r][2] = d[r][2] - d[r][1];
                cc[r][3] = d[r][1] - d[r][3];
            }
            dvec v[16];
            for (int j = 0; j < 4; j++) {
                v[0 + j] = cc[0][j] - cc[2][j];
                v[4 + j] = cc[1][j] + cc[2][j];
                v[8 + j] = cc[2][j] - cc[1][j];
                v[12 + j] = cc[1][j] - cc[3][j];
            }
            if (len - k >= DV)
                for (int xi = 0; xi < 16; xi++) vst(vc + xi * xs + k, v[xi]);
            else
                for (int xi = 0; xi < 16; xi++) vst_part(vc + xi * xs + k, v[xi], len - k);
        }
    }
}

/* The output transform A^T m A of row i of the block's products M
 * [16][DMR][WT], for all WT tiles: Yt[4][WT_MAX] = y00, y01, y10, y11. */
static void output_transform(const float *M, int i, int WT, float *Yt) {
    for (int k = 0; k < WT; k += DV) {
        dvec m[16];
        for (int xi = 0; xi < 16; xi++) m[xi] = vld(M + ((size_t)xi * DMR + i) * WT + k);
        dvec r0[4], r1[4];
        for (int j = 0; j < 4; j++) {
            r0[j] = m[j] + m[4 + j] + m[8 + j];
            r1[j] = m[4 + j] - m[8 + j] - m[12 + j];
        }
        vst(Yt + k, r0[0] + r0[1] + r0[2]);
        vst(Yt + WT_MAX + k, r0[1] - r0[2] - r0[3]);
        vst(Yt + 2 * WT_MAX + k, r1[0] + r1[1] + r1[2]);
        vst(Yt + 3 * WT_MAX + k, r1[1] - r1[2] - r1[3]);
    }
}

/* Write the transformed tiles (th, tw0 .. tw0 + len), block columns k ..,
 * into output channel plane yo. */
static void output_tiles(const wgeo *w, const float *Yt, float *yo, int th, int tw0, int len,
                         int k, float b, bool accumulate) {
    const int oh0 = 2 * th, ow0 = 2 * tw0;
    const int ncol = 2 * len < w->OW - ow0 ? 2 * len : w->OW - ow0;
    for (int rr = 0; rr < 2 && oh0 + rr < w->OH; rr++)
        interleave(yo + (size_t)(oh0 + rr) * w->OW + ow0, Yt + (size_t)(2 * rr) * WT_MAX + k,
                   Yt + (size_t)(2 * rr + 1) * WT_MAX + k, ncol, accumulate, b);
}

/* A run: the tiles at polyphase indices [u0, u0 + len) of image j of the
 * batch (u = th * RS + tw), at block column k0. */
typedef struct {
    int j, u0, len, k0;
} wrun;

/* The runs of block columns [g0, g0 + nb) of the batch's tiles, numbered
 * (image, u) with u = th * RS + tw: each row's dummy tile tw = TW is computed
 * and never written, which costs 1 / (TW + 1) of the products but keeps the
 * transforms on long runs of consecutive u (per-row runs measured up to 11%
 * slower for 14x14 outputs and never faster, 7x7 to 32x32). */
static int block_runs(const wgeo *w, int64_t g0, int nb, wrun *runs) {
    int n = 0;
    const int64_t tpi = (int64_t)w->TH * w->RS;
    for (int64_t g = g0; g < g0 + nb;) {
        const int64_t j = g / tpi, u0 = g - j * tpi;
        int64_t len = tpi - u0;
        if (len > g0 + nb - g) len = g0 + nb - g;
        runs[n++] = (wrun){(int)j, (int)u0, (int)len, (int)(g - g0)};
        g += len;
    }
    return n;
}

void cx_conv_wino_run(int G, int N, int Ci, int Co, const int in[3], const int out[3],
                      const int p[3], const float *X, const float *W, bool flip,
                      const float *bias, float *Y, bool accumulate) {
    cx_conv_wino_calls++;
    wgeo w;
    wgeo_init(&w, Ci, Co, in, out, p);
    /* block size: V [16][Ci][WT] and M [ots][16][DMR][WT] under WINO_BLOCK_BYTES */
    size_t per_tile = (size_t)16 * (Ci + (size_t)w.ots * DMR) * sizeof(float);
    int wt = (int)(WINO_BLOCK_BYTES / per_tile) / WT_UNIT * WT_UNIT;
    if (wt < WT_UNIT) wt = WT_UNIT;
    if (wt > WT_MAX / WT_UNIT * WT_UNIT) wt = WT_MAX / WT_UNIT * WT_UNIT;
    /* images per batch of polyphase copies: few enough for the copies to
     * stay in L2 until their blocks use them (all of them at once went
     * through L3 and back) */
    int chunk = (int)(WINO_PAD_CHUNK_BYTES / (w.img_floats * sizeof(float)));
    /* at least two images per thread, for the blocks to spread over them */
#ifdef _OPENMP
    if (!omp_in_parallel() && chunk < 2 * omp_get_max_threads()) chunk = 2 * omp_get_max_threads();
#endif
    if (chunk < 1) chunk = 1;
    if (chunk > N) chunk = N;
    const int64_t ntiles_max = (int64_t)chunk * w.TH * w.RS;
    const int64_t need = (ntiles_max + WT_UNIT - 1) / WT_UNIT * WT_UNIT;
    if (need < wt) wt = (int)need;
    w.WT = wt;

    int nt = 1;
#ifdef _OPENMP
    nt = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
    const double flops = 2.0 * N * G * (double)Co * Ci * 9.0 * (double)w.outP;
    const bool par = nt > 1 && flops >= 2e6;
    /* each thread's buffers: its own scratch (cx_tscratch slot 0, the same
     * memory from call to call; arena buffers landed on memory the other
     * thread wrote in an earlier layer) */
    const size_t vfl = (size_t)16 * Ci * wt, mfl = (size_t)16 * w.ots * DMR * wt;
    const size_t tfl = 4 * (size_t)WT_MAX + 2 * (size_t)w.RS + 2 * DV; /* Yt, a padded row */
    const size_t per = vfl + mfl + tfl;
    float *U = cx_arena_alloc((size_t)16 * w.ots * Ci * DMR * sizeof(float));
    float *P = cx_arena_alloc((size_t)chunk * w.img_floats * sizeof(float));
    int32_t *boff = cx_arena_alloc((size_t)Ci * sizeof(int32_t));
    for (int c = 0; c < Ci; c++) boff[c] = (int32_t)((int64_t)c * wt);
    const int groups_of = wt / WT_UNIT; /* kernel calls per row of a block */
    (void)par;
    for (int gi = 0; gi < G; gi++) {
        transform_weights(Ci, Co, W + (size_t)gi * Co * Ci * 9, flip, U,
                          par && (size_t)Ci * Co >= 4096);
        const float *bg = bias ? bias + (size_t)gi * Co : NULL;
        for (int n0 = 0; n0 < N; n0 += chunk) {
            const int nimg = N - n0 < chunk ? N - n0 : chunk;
            CX_OMP(parallel for schedule(static) if(par))
            for (int j = 0; j < nimg; j++) {
                float *P_j = P + (size_t)j * w.img_floats;
                polyphase(&w, X + ((size_t)(n0 + j) * G + gi) * Ci * w.inP, P_j,
                          (float *)cx_tscratch(0, per * sizeof(float)) + vfl + mfl + 4 * WT_MAX);
                memset(P_j + (size_t)Ci * 4 * w.PP, 0,
                       (w.img_floats - (size_t)Ci * 4 * w.PP) * sizeof(float));
            }
            const int64_t ntiles = (int64_t)nimg * w.TH * w.RS;
            const int64_t nblocks = (ntiles + wt - 1) / wt;
            CX_OMP(parallel for schedule(dynamic, 1) if(par && nblocks > 1))
            for (int64_t blk = 0; blk < nblocks; blk++) {
                float *V = cx_tscratch(0, per * sizeof(float)), *M = V + vfl, *Yt = M + mfl;
                wrun runs[WT_MAX + 2];
                const int64_t g0 = blk * wt;
                const int nb = (int)(ntiles - g0 < wt ? ntiles - g0 : wt);
                const int nr = block_runs(&w, g0, nb, runs);
                for (int r = 0; r < nr; r++)
                    input_run(&w, P + (size_t)runs[r].j * w.img_floats, runs[r].u0, runs[r].len,
                              V, runs[r].k0);
                if (nb < wt)
                    for (int xi = 0; xi < 16; xi++)
                        for (int c = 0; c < Ci; c++)
                            memset(V + ((size_t)xi * Ci + c) * wt + nb, 0,
                                   (size_t)(wt - nb) * sizeof(float));
                /* the products: a group of DNV vectors of V stays in L1 while
                 * every block of DMR output channels uses it */
                for (int xi = 0; xi < 16; xi++)
                    for (int gv = 0; gv < groups_of; gv++) {
                        dtile tl;
                        for (int v = 0; v < DNV; v++) {
                            const size_t col = (size_t)(gv * DNV + v) * DV;
                            tl.b[v] = V + (size_t)xi * Ci * wt + col;
                            tl.out[v] = M + (size_t)xi * DMR * wt + col;
                            tl.nval[v] = DV;
                        }
                        for (int ot = 0; ot < w.ots; ot++) {
                            const int mr = Co - ot * DMR < DMR ? Co - ot * DMR : DMR;
                            dkern_n(DNV, Ci, U + ((size_t)xi * w.ots + ot) * Ci * DMR, DMR, boff,
                                    &tl, (ptrdiff_t)ot * 16 * DMR * wt, wt, mr, false, NULL);
                        }
                    }
                for (int ot = 0; ot < w.ots; ot++) {
                    const int mr = Co - ot * DMR < DMR ? Co - ot * DMR : DMR;
                    for (int i = 0; i < mr; i++) {
                        output_transform(M + (size_t)ot * 16 * DMR * wt, i, wt, Yt);
                        const int co = ot * DMR + i;
                        const float b = bg ? bg[co] : 0.0f;
                        for (int r = 0; r < nr; r++) {
                            const wrun *ru = &runs[r];
                            float *yo = Y + (((size_t)(n0 + ru->j) * G + gi) * Co + co) * w.outP;
                            const int u1 = ru->u0 + ru->len;
                            for (int th = ru->u0 / w.RS; th * w.RS < u1; th++) {
                                int lo = ru->u0 - th * w.RS, hi = u1 - th * w.RS;
                                if (lo < 0) lo = 0;
                                if (hi > w.TW) hi = w.TW;
                                if (hi > lo)
                                    output_tiles(&w, Yt, yo, th, lo, hi - lo,
                                                 ru->k0 + th * w.RS + lo - ru->u0, b, accumulate);
                            }
                        }
                    }
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- weight gradient */
/* The weight gradient is the adjoint of the forward transform:
 *   dW[o][c] += G^T [ sum over tiles (A dy A^T) .* (B^T d B) ] G
 * with A = (A^T)^T (4x2) and dy the tile's 2x2 output gradient. For each of
 * the 16 positions xi the sum over tiles is a matrix product
 *   S_xi[o][c] += sum_t Yh_xi[t][o] V_xi[t][c],
 * reduced over tiles, so both transforms are laid out tile-major and
 * computed on channels-last copies of one image (vectors over channels). The
 * images are split into the caller's fixed ranges, each summing into its own
 * S in image and tile order; the ranges are added in order, then
 * transformed: the result does not depend on the thread count. */
#define WB_TILES_MAX 128
/* The tile transforms run on vectors of input channels: at least this many. */
#define WB_MIN_CI 16
#define WB_BLOCK_BYTES ((size_t)512 << 10)

bool cx_conv_wino_bweight_applies(int Ci, int Co, const int in[3], const int out[3],
                                  const int k[3], const int d[3]) {
    if (!cx_conv_wino_applies(Ci, Co, in, out, k, d) || Ci < WB_MIN_CI) return false;
    /* the channels-last copies of one image stay bounded */
    const double th = (out[1] + 1) / 2, tw = (out[2] + 1) / 2;
    const double bytes = 4.0 * ((2 * th + 2) * (2 * tw + 2) * Ci + (double)out[1] * out[2] * Co);
    return bytes <= (double)WINO_PAD_BYTES;
}

size_t cx_conv_wino_bweight_partial_bytes(int Ci, int Co) {
    return 16 * (size_t)pad_to(Ci, DV) * (size_t)pad_to(Co, DV > DMR ? DV : DMR) * sizeof(float);
}

/* xT[PH][PW][Ci]: the zero-padded image, channels last (Cp-float slack at
 * the end); yT[OH][OW][Co]: the output gradient, channels last. */
static void wb_images(const wgeo *w, const float *x, const float *dy, float *xT, float *yT) {
    const int Ci = w->Ci, Co = w->Co;
    for (int y = 0; y < w->PH; y++) {
        float *row = xT + (size_t)y * w->PW * Ci;
        const int sy = y - w->pH;
        if (sy < 0 || sy >= w->inH) {
            memset(row, 0, (size_t)w->PW * Ci * sizeof(float));
            continue;
        }
        int lo = w->pW < w->PW ? w->pW : w->PW, hi = w->pW + w->inW;
        if (hi > w->PW) hi = w->PW;
        if (hi < lo) hi = lo;
        memset(row, 0, (size_t)lo * Ci * sizeof(float));
        memset(row + (size_t)hi * Ci, 0, (size_t)(w->PW - hi) * Ci * sizeof(float));
        cx_transpose_block(x + (size_t)sy * w->inW - w->pW + lo, (size_t)w->inP, row + (size_t)lo * Ci,
                     (size_t)Ci, Ci, hi - lo);
    }
    memset(xT + (size_t)w->PH * w->PW * Ci, 0, (size_t)w->Cp * sizeof(float));
    cx_transpose_block(dy, (size_t)w->outP, yT, (size_t)Co, Co, (int)w->outP);
    memset(yT + (size_t)w->outP * Co, 0, (size_t)w->Op * sizeof(float));
}

/* V[xi][k][Cp] and Yh[xi][k][Op] for the tiles t0 + k, k < nb, of one image. */
static void wb_transform(const wgeo *w, const float *xT, const float *yT, int64_t t0, int nb,
                         float *V, float *Yh) {
    const int Ci = w->Ci, Co = w->Co, WT = w->WT;
    for (int k = 0; k < nb; k++) {
        const int64_t t = t0 + k;
        const int th = (int)(t / w->TW), tw = (int)(t - (int64_t)th * w->TW);
        /* input: 4x4 patch at padded (2th, 2tw), vectors over channels */
        const float *pa = xT + ((size_t)(2 * th) * w->PW + (size_t)(2 * tw)) * Ci;
        for (int c0 = 0; c0 < Ci; c0 += DV) {
            const int nv = Ci - c0 < DV ? Ci - c0 : DV;
            dvec d[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) {
                    const float *src = pa + ((size_t)r * w->PW + q) * Ci + c0;
                    d[r][q] = nv == DV ? vld(src) : vld_part(src, nv);
                }
            dvec cc[4][4];
            for (int r = 0; r < 4; r++) {
                cc[r][0] = d[r][0] - d[r][2];
                cc[r][1] = d[r][1] + d[r][2];
                cc[r][2] = d[r][2] - d[r][1];
                cc[r][3] = d[r][1] - d[r][3];
            }
            for (int j = 0; j < 4; j++) {
                float *v = V + (size_t)k * w->Cp + c0;
                const size_t xs = (size_t)WT * w->Cp;
                vst(v + (size_t)(0 + j) * xs, cc[0][j] - cc[2][j]);
                vst(v + (size_t)(4 + j) * xs, cc[1][j] + cc[2][j]);
                vst(v + (size_t)(8 + j) * xs, cc[2][j] - cc[1][j]);
                vst(v + (size_t)(12 + j) * xs, cc[1][j] - cc[3][j]);
            }
        }
        /* output gradient: 2x2 patch (zero past the edges), A g A^T */
        const bool r1 = 2 * th + 1 < w->OH, c1 = 2 * tw + 1 < w->OW;
        const float *ga = yT + ((size_t)(2 * th) * w->OW + (size_t)(2 * tw)) * Co;
        for (int o0 = 0; o0 < Co; o0 += DV) {
            const int nv = Co - o0 < DV ? Co - o0 : DV;
            dvec g00 = vld_part(ga + o0, nv);
            dvec g01 = c1 ? vld_part(ga + Co + o0, nv) : (dvec){0};
            dvec g10 = r1 ? vld_part(ga + (size_t)w->OW * Co + o0, nv) : (dvec){0};
            dvec g11 = r1 && c1 ? vld_part(ga + ((size_t)w->OW + 1) * Co + o0, nv) : (dvec){0};
            dvec h0[4] = {g00, g00 + g01, g00 - g01, -g01};
            dvec h1[4] = {g10, g10 + g11, g10 - g11, -g11};
            float *yh = Yh + (size_t)k * w->Op + o0;
            const size_t xs = (size_t)WT * w->Op;
            for (int j = 0; j < 4; j++) {
                vst(yh + (size_t)(0 + j) * xs, h0[j]);
                vst(yh + (size_t)(4 + j) * xs, h0[j] + h1[j]);
                vst(yh + (size_t)(8 + j) * xs, h0[j] - h1[j]);
                vst(yh + (size_t)(12 + j) * xs, -h1[j]);
            }
        }
    }
}

void cx_conv_wino_bweight(int G, int N, int Ci, int Co, const int in[3], const int out[3],
                          const int p[3], const float *X, const float *dY, float *dW, int S,
                          bool par) {
    cx_conv_wino_calls++;
    wgeo w;
    wgeo_init(&w, Ci, Co, in, out, p);
    int wt = (int)(WB_BLOCK_BYTES / ((size_t)16 * (w.Cp + w.Op) * sizeof(float)));
    if (wt > WB_TILES_MAX) wt = WB_TILES_MAX;
    if (wt < 8) wt = 8;
    w.WT = wt;
    const int64_t tpi = (int64_t)w.TH * w.TW;
    int nt = 1;
#ifdef _OPENMP
    nt = par && !omp_in_parallel() ? omp_get_max_threads() : 1;
#endif
    if (nt < 2) par = false;
    /* each thread's buffers: its own scratch (cx_tscratch slot 0) */
    const size_t xfl = (size_t)w.PH * w.PW * Ci + (size_t)w.Cp;
    const size_t yfl = (size_t)w.outP * Co + (size_t)w.Op;
    const size_t vfl = (size_t)16 * wt * w.Cp, hfl = (size_t)16 * wt * w.Op;
    const size_t per = xfl + yfl + vfl + hfl + 2 * DV;
    const size_t sn = (size_t)16 * w.Op * w.Cp; /* one S */
    float *part = cx_arena_alloc((size_t)S * sn * sizeof(float));
    int32_t *boff = cx_arena_alloc((size_t)wt * sizeof(int32_t));
    for (int t = 0; t < wt; t++) boff[t] = (int32_t)((int64_t)t * w.Cp);
    const int cv = w.Cp / DV, ots = (Co + DMR - 1) / DMR;
    (void)par;
    for (int gi = 0; gi < G; gi++) {
        CX_OMP(parallel for schedule(dynamic, 1) if(par))
        for (int s = 0; s < S; s++) {
            float *xT = cx_tscratch(0, per * sizeof(float)), *yT = xT + xfl, *V = yT + yfl, *Yh = V + vfl;
            float *Ss = part + (size_t)s * sn;
            memset(Ss, 0, sn * sizeof(float));
            const int n0 = (int)((int64_t)N * s / S), n1 = (int)((int64_t)N * (s + 1) / S);
            for (int n = n0; n < n1; n++) {
                wb_images(&w, X + ((size_t)n * G + gi) * Ci * w.inP,
                          dY + ((size_t)n * G + gi) * Co * w.outP, xT, yT);
                for (int64_t t0 = 0; t0 < tpi; t0 += wt) {
                    const int nb = (int)(tpi - t0 < wt ? tpi - t0 : wt);
                    wb_transform(&w, xT, yT, t0, nb, V, Yh);
                    for (int xi = 0; xi < 16; xi++)
                        for (int g0 = 0; g0 < cv; g0 += DNV) {
                            dtile tl;
                            int nv = 0;
                            for (int v = g0; v < cv && nv < DNV; v++, nv++) {
                                const int c0 = v * DV;
                                tl.b[nv] = V + (size_t)xi * wt * w.Cp + c0;
                                tl.out[nv] = Ss + (size_t)xi * w.Op * w.Cp + c0;
                                tl.nval[nv] = Ci - c0 < DV ? Ci - c0 : DV;
                            }
                            for (int ot = 0; ot < ots; ot++) {
                                const int mr = Co - ot * DMR < DMR ? Co - ot * DMR : DMR;
                                dkern_n(nv, nb, Yh + (size_t)xi * wt * w.Op + (size_t)ot * DMR,
                                        w.Op, boff, &tl, (ptrdiff_t)ot * DMR * w.Cp, w.Cp, mr,
                                        true, NULL);
                            }
                        }
                }
            }
        }
        /* the ranges' sums, added in range order into part[0] */
        const int64_t nsv = (int64_t)(sn / DV);
        CX_OMP(parallel for schedule(static) if(par))
        for (int64_t i = 0; i < nsv; i++) {
            dvec v = vld(part + (size_t)i * DV);
            for (int s = 1; s < S; s++) v += vld(part + (size_t)s * sn + (size_t)i * DV);
            vst(part + (size_t)i * DV, v);
        }
        /* dW[g][o][c] += G^T S G, vectors over c */
        float *dwg = dW + (size_t)gi * Co * Ci * 9;
        CX_OMP(parallel for schedule(static) if(par))
        for (int o = 0; o < Co; o++)
            for (int c0 = 0; c0 < Ci; c0 += DV) {
                dvec m[16];
                for (int xi = 0; xi < 16; xi++)
                    m[xi] = vld(part + ((size_t)xi * w.Op + o) * w.Cp + c0);
                dvec t[3][4]; /* G^T m */
                for (int j = 0; j < 4; j++) {
                    const dvec h = 0.5f * (m[4 + j] + m[8 + j]);
                    t[0][j] = m[j] + h;
                    t[1][j] = 0.5f * (m[4 + j] - m[8 + j]);
                    t[2][j] = h + m[12 + j];
                }
                float r[9][DV];
                for (int a = 0; a < 3; a++) {
                    const dvec h = 0.5f * (t[a][1] + t[a][2]);
                    vst(r[a * 3 + 0], t[a][0] + h);
                    vst(r[a * 3 + 1], 0.5f * (t[a][1] - t[a][2]));
                    vst(r[a * 3 + 2], h + t[a][3]);
                }
                const int nc = Ci - c0 < DV ? Ci - c0 : DV;
                for (int l = 0; l < nc; l++) {
                    float *dst = dwg + ((size_t)o * Ci + c0 + l) * 9;
                    for (int q = 0; q < 9; q++) dst[q] += r[q][l];
                }
            }
    }
}
