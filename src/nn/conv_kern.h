/* Private to src/nn: the register-tile kernel shared by the direct
 * convolutions (conv.c) and the Winograd convolution (conv_winograd.c).
 *
 * A register tile of DMR rows x DNV vectors of DV floats accumulates
 *   acc[i][v] += a[t*astep + i] * B_v[t]      over the reduction index t,
 * where a is read by broadcast and each B_v[t] = b[v] + boff[t] is a vector
 * load at a per-t offset (a table), so the right operand needs no packing. */
#ifndef CX_NN_CONV_KERN_H
#define CX_NN_CONV_KERN_H
#include "../autograd/graph.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* The kernels rely on fused multiply-add contraction of acc += a * b;
 * -std=c11 turns GCC's contraction off, so re-enable it for the includer. */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

#if defined(__AVX512F__)
#define DV 16 /* floats per vector */
#define DMR 8 /* rows of the register tile */
#elif defined(__AVX__)
#define DV 8
#define DMR 4
#else
#define DV 4
#define DMR 4
#endif
#define DNV 3 /* vectors per register tile */
typedef float dvec __attribute__((vector_size(DV * sizeof(float))));

static inline dvec vld(const float *p) {
    dvec v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vst(float *p, dvec v) { memcpy(p, &v, sizeof v); }
/* The first n (< DV) lanes: load (the rest zero) and store. */
#if defined(__AVX512F__)
static inline dvec vld_part(const float *p, int n) {
    return (dvec)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline void vst_part(float *p, dvec v, int n) {
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}
#else
static inline dvec vld_part(const float *p, int n) {
    float tmp[DV] = {0};
    memcpy(tmp, p, (size_t)n * sizeof(float));
    return vld(tmp);
}
static inline void vst_part(float *p, dvec v, int n) {
    float tmp[DV];
    vst(tmp, v);
    memcpy(p, tmp, (size_t)n * sizeof(float));
}
#endif

typedef struct {
    const float *b[DNV]; /* vector bases: B_v[t] = b[v] + boff[t] */
    float *out[DNV];     /* outputs of tile row 0; row i at out[v] + i * ostride */
    int nval[DNV];       /* valid lanes of each vector */
} dtile;

/* One register tile: out rows [0, mr) (+)= sum_t a[t*astep + i] * B_v[t], computing
 * MR >= mr rows; the sums start from the outputs (load), else from init[i]
 * (row i's bias) when init is given, else from 0. */
static inline __attribute__((always_inline)) void dkern(const int MR, const int NV, int T,
                                                        const float *a,
                                                        ptrdiff_t astep, const int32_t *boff,
                                                        const dtile *tl, ptrdiff_t ooff,
                                                        ptrdiff_t ostride, int mr, bool load,
                                                        const float *init) {
    dvec acc[DMR][DNV];
    for (int i = 0; i < DMR; i++)
        for (int v = 0; v < DNV; v++) acc[i][v] = (dvec){0};
    if (load)
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < NV; v++) {
                const float *o = tl->out[v] + ooff + i * ostride;
                acc[i][v] = tl->nval[v] == DV ? vld(o) : vld_part(o, tl->nval[v]);
            }
    else if (init)
        for (int i = 0; i < mr; i++)
            for (int v = 0; v < NV; v++) acc[i][v] = (dvec){0} + init[i];
    const float *b0 = tl->b[0], *b1 = tl->b[NV > 1 ? 1 : 0], *b2 = tl->b[NV > 2 ? 2 : 0];
    for (int t = 0; t < T; t++) {
        const ptrdiff_t o = boff[t];
        dvec bv[DNV];
        bv[0] = vld(b0 + o);
        if (NV > 1) bv[1] = vld(b1 + o);
        if (NV > 2) bv[2] = vld(b2 + o);
        for (int i = 0; i < MR; i++) {
            const float ai = a[i];
            for (int v = 0; v < NV; v++) acc[i][v] += bv[v] * ai;
        }
        a += astep;
    }
    for (int i = 0; i < mr; i++)
        for (int v = 0; v < NV; v++) {
            float *o = tl->out[v] + ooff + i * ostride;
            if (tl->nval[v] == DV) vst(o, acc[i][v]);
            else vst_part(o, acc[i][v], tl->nval[v]);
        }
}

static inline void dkern_n(int nv, int T, const float *a, ptrdiff_t astep, const int32_t *boff,
                    const dtile *tl, ptrdiff_t ooff, ptrdiff_t ostride, int mr, bool load,
                    const float *init) {
#define DK(MR)                                                                            \
    do {                                                                                  \
        if (nv >= 3) dkern(MR, 3, T, a, astep, boff, tl, ooff, ostride, mr, load, init);  \
        else if (nv == 2) dkern(MR, 2, T, a, astep, boff, tl, ooff, ostride, mr, load, init); \
        else dkern(MR, 1, T, a, astep, boff, tl, ooff, ostride, mr, load, init);          \
    } while (0)
    /* a tile of mr < DMR rows computes only as many rows as it needs */
#if DMR > 6
    if (mr <= 4) DK(4);
    else if (mr <= 6) DK(6);
    else DK(DMR);
#else
    DK(DMR);
#endif
#undef DK
}


/* Winograd F(2x2, 3x3) convolution (conv_winograd.c). A stride-1, dilation-1
 * 3x3 2-D convolution of one group, input [Ci, inH, inW] -> output
 * [Co, outH, outW] with leading padding (pH, pW) (negative: cropping), for
 * all images and groups: X [N][G*Ci][inH*inW], Y [N][G*Co][outH*outW].
 * Wf(co, ci, j) = W[g][co][ci][j] or, when flip, W[g][ci][co][8-j] (the
 * input gradient). Y = (accumulate ? Y : bias or 0) + conv. */
bool cx_conv_wino_applies(int Ci, int Co, const int in[3], const int out[3], const int k[3],
                          const int d[3]);
void cx_conv_wino_run(int G, int N, int Ci, int Co, const int in[3], const int out[3],
                      const int p[3], const float *X, const float *W, bool flip,
                      const float *bias, float *Y, bool accumulate);
/* dW[g] += the weight gradient of that convolution (X the input, dY the
 * output gradient; dW [G][Co][Ci][3][3]); the images in S fixed ranges,
 * threaded over ranges when par. Applies when cx_conv_wino_applies does and
 * there are at least 16 input channels. */
bool cx_conv_wino_bweight_applies(int Ci, int Co, const int in[3], const int out[3],
                                  const int k[3], const int d[3]);
void cx_conv_wino_bweight(int G, int N, int Ci, int Co, const int in[3], const int out[3],
                          const int p[3], const float *X, const float *dY, float *dW, int S,
                          bool par);
/* Bytes of one image range's partial sums in cx_conv_wino_bweight. */
size_t cx_conv_wino_bweight_partial_bytes(int Ci, int Co);
/* Calls of the Winograd functions since start (tests check which path ran). */
extern _Atomic long cx_conv_wino_calls;
/* Calls of the channel-vector direct convolution (conv.c's cvec_run). */
extern _Atomic long cx_conv_cvec_calls;
/* Calls of the strided direct input gradient (conv.c's sbd_run). */
extern _Atomic long cx_conv_sbd_calls;
/* Calls of conv.c's direct_run / cvec_run that gave each thread its own
 * range of images. */
extern _Atomic long cx_conv_own_range_calls;

#endif
