/* Vectorisable single-precision exp, expm1, tanh, sigmoid, log and the
 * normal CDF (internal).
 *
 * Static inline, branch-free, no libm calls: loops over arrays that use them
 * vectorise (gcc/clang -O2/-O3, any SIMD width, SSE2 included). Accuracy
 * over the whole float range (tests/cpu/test_vmath.c measures it against
 * libm in double): about 1-2 ulp (exp, expm1), 2-3 ulp (tanh, sigmoid).
 * Special values follow libm: exp overflows to +inf (x > 88.72) and
 * underflows through the subnormals to +0 (x < -103.97), exp(-inf) = 0,
 * expm1 saturates at -1; tanh is exactly +-1 for |x| >= 9.01 (and +-inf),
 * sigmoid exactly 0 / 1 at -inf / +inf (tiny positive values below -87);
 * NaN in, NaN out. Signed zeros are kept by expm1 and tanh.
 *
 * Method: x = n ln2 + r (Cody-Waite, |r| <= ln2 / 2, n by the 1.5 * 2^23
 * rounding trick), expm1(r) = r + r^2 P(r) (Cephes expf polynomial),
 * 2^n from the exponent bits (split in two factors so that subnormal
 * results and n = 128 need no special case); tanh: Cephes odd polynomial
 * for |x| < 0.625, 1 - 2 / (expm1(2|x|) + 2) above; sigmoid:
 * e = exp(-|x|), 1 / (1 + e) or e / (1 + e). The normal CDF (the exact
 * GELU's gate): see cx_vnormcdff. */
#ifndef CX_VMATH_H
#define CX_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float cx_vm_bits2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t cx_vm_f2bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b through bit masks. gcc does not if-convert plain ?: chains
 * (clamps, selects whose arm needs a floating-point operation) on SSE2-only
 * targets under -ftrapping-math; masks vectorise everywhere. */
static inline float cx_vm_sel(int c, float a, float b) {
    uint32_t m = (uint32_t)0 - (uint32_t)(c != 0);
    return cx_vm_bits2f((cx_vm_f2bits(a) & m) | (cx_vm_f2bits(b) & ~m));
}

/* The same for doubles. */
static inline double cx_vm_seld(int c, double a, double b) {
    uint64_t ua, ub, m = (uint64_t)0 - (uint64_t)(c != 0);
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* a * b + c, fused where the target has a fused multiply-add (one rounding,
 * one instruction: C11 turns gcc's contraction of a * b + c off, and these
 * polynomials were a third slower without it); two roundings elsewhere, where
 * fmaf would be a library call that does not vectorise. */
#if defined(__FMA__) || defined(__AVX512F__) || defined(__ARM_FEATURE_FMA)
#define CX_VM_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define CX_VM_FMA(a, b, c) ((a) * (b) + (c))
#endif

static inline float cx_vm_fabs(float x) { return cx_vm_bits2f(cx_vm_f2bits(x) & 0x7FFFFFFFu); }

/* The polynomials and constants the scalar and the AVX-512 forms share:
 * ln 2 in two parts (n ln2_hi exact), the Cephes expm1 polynomial of the
 * reduced argument, the Cephes odd tanh polynomial for |x| < 0.625. */
#define CX_VM_LN2_HI 0.693359375f
#define CX_VM_LN2_LO (-2.12194440e-4f)
#define CX_VM_EXPM1_P0 1.9875691500e-4f
#define CX_VM_EXPM1_P1 1.3981999507e-3f
#define CX_VM_EXPM1_P2 8.3334519073e-3f
#define CX_VM_EXPM1_P3 4.1665795894e-2f
#define CX_VM_EXPM1_P4 1.6666665459e-1f
#define CX_VM_EXPM1_P5 5.0000001201e-1f
#define CX_VM_TANH_S0 (-5.70498872745e-3f)
#define CX_VM_TANH_S1 2.06390887954e-2f
#define CX_VM_TANH_S2 (-5.37397155531e-2f)
#define CX_VM_TANH_S3 1.33314422036e-1f
#define CX_VM_TANH_S4 (-3.33332819422e-1f)

/* x = n ln2 + r for x in [-104, 89] (or NaN: then everything is NaN, the
 * integers are garbage but in range): sets n and returns expm1(r). */
static inline float cx_vm_reduce(float x, int32_t *n) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = CX_VM_FMA(x, 1.44269504088896341f, shifter);
    float nf = t - shifter;
    *n = (int32_t)(cx_vm_f2bits(t) - cx_vm_f2bits(shifter)); /* in [-2^30 - 2^29, 2^30] */
    float r = CX_VM_FMA(nf, -CX_VM_LN2_HI, x); /* ln2 high part: n * C1 is exact */
    r = CX_VM_FMA(nf, -CX_VM_LN2_LO, r);
    float p = CX_VM_EXPM1_P0;
    p = CX_VM_FMA(p, r, CX_VM_EXPM1_P1);
    p = CX_VM_FMA(p, r, CX_VM_EXPM1_P2);
    p = CX_VM_FMA(p, r, CX_VM_EXPM1_P3);
    p = CX_VM_FMA(p, r, CX_VM_EXPM1_P4);
    p = CX_VM_FMA(p, r, CX_VM_EXPM1_P5);
    return CX_VM_FMA(p, r * r, r);
}

/* 2^k as a float for k in [-126, 127] (garbage but defined otherwise). */
static inline float cx_vm_pow2i(int32_t k) { return cx_vm_bits2f(((uint32_t)k + 127u) << 23); }

/* e^x for x in [-104, 89] or NaN. n in [-150, 129]: the two halves of 2^n
 * are normal floats, their second product rounds once into the subnormals
 * or to inf. */
static inline float cx_vm_exp_core(float x) {
    int32_t n;
    float em = cx_vm_reduce(x, &n);
    int32_t n1 = n / 2;
    return (em + 1.0f) * cx_vm_pow2i(n1) * cx_vm_pow2i(n - n1);
}

/* e^x. */
static inline float cx_vexpf(float x) {
    float xc = cx_vm_sel(x < -104.0f, -104.0f, x); /* NaN stays NaN */
    xc = cx_vm_sel(xc > 89.0f, 89.0f, xc);
    return cx_vm_exp_core(xc);
}

/* e^x - 1 (full relative accuracy near 0). */
static inline float cx_vexpm1f(float x) {
    float xc = cx_vm_sel(x < -26.0f, -26.0f, x);
    xc = cx_vm_sel(xc > 89.0f, 89.0f, xc);
    int32_t n;
    float em = cx_vm_reduce(xc, &n);
    /* expm1 = 2^n em + 2^n - 1 = 2 (s em + (s - 1/2)), s = 2^(n-1) in range */
    float s = cx_vm_pow2i(n - 1);
    float y = 2.0f * (s * em + (s - 0.5f));
    y = cx_vm_sel(n == 0, em, y); /* exact for |x| < ln2 / 2 */
    return cx_vm_sel(x != 0, y, x); /* keeps -0 (NaN: y is NaN) */
}

/* tanh(x). */
static inline float cx_vtanhf(float x) {
    float a = cx_vm_fabs(x);
    float z = x * x;
    float sp = CX_VM_FMA(CX_VM_TANH_S0, z, CX_VM_TANH_S1);
    sp = CX_VM_FMA(sp, z, CX_VM_TANH_S2);
    sp = CX_VM_FMA(sp, z, CX_VM_TANH_S3);
    sp = CX_VM_FMA(sp, z, CX_VM_TANH_S4);
    float small = CX_VM_FMA(sp, z * x, x);
    /* |x| >= 0.625: 1 - 2 / (e^2|x| + 1), |x| clamped to 10 (tanh rounds to 1
     * from 9.01 on): 2^n needs no split. NaN -> 10, restored below. */
    float ac = cx_vm_sel(a < 10.0f, a, 10.0f);
    int32_t n;
    float em = cx_vm_reduce(2.0f * ac, &n);
    const float p2 = cx_vm_pow2i(n);
    float e = CX_VM_FMA(em, p2, p2); /* (em + 1) 2^n */
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = cx_vm_bits2f(cx_vm_f2bits(big) | (cx_vm_f2bits(x) & 0x80000000u)); /* big >= 0 */
    float y = cx_vm_sel(a < 0.625f, small, big);
    return cx_vm_sel(a > 0, y, x); /* NaN and +-0 pass through */
}

/* y[i] = tanh(x[i]), i < n (y may be x): the loop every tanh of the library
 * runs (cx_tanh, the fused Linear + Tanh), so that they agree bit for bit.
 * On AVX-512 builds sixteen at a time with cx_vtanh16 below (about half the
 * instructions of the auto-vectorised cx_vtanhf: rounding and 2^n through
 * vrndscaleps / vscalefps, selects through mask registers), the last
 * partial vector under a mask; cx_vtanhf elsewhere. */
#if defined(__AVX512F__)
#include <immintrin.h>
/* tanh of 16 floats: cx_vtanhf's method (the same polynomials; e^2|x| from
 * n = round(2|x| / ln2) and expm1 of the remainder, 1 - 2 / (e + 1) from
 * 0.625 on). About 1.3 ulp; exactly +-1 from |x| = 9.01, NaN and signed
 * zeros passed through. */
static inline __m512 cx_vtanh16(__m512 x) {
    /* on a = |x|, the sign copied back last (one vpternlogd: this keeps -0,
     * and the odd small-argument polynomial needs no select for 0); NaN
     * propagates through min(20, NaN) = NaN (vminps returns its second
     * operand) and every step after */
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 a = _mm512_abs_ps(x), z = _mm512_mul_ps(a, a);
    __m512 sp = _mm512_fmadd_ps(_mm512_set1_ps(CX_VM_TANH_S0), z, _mm512_set1_ps(CX_VM_TANH_S1));
    sp = _mm512_fmadd_ps(sp, z, _mm512_set1_ps(CX_VM_TANH_S2));
    sp = _mm512_fmadd_ps(sp, z, _mm512_set1_ps(CX_VM_TANH_S3));
    sp = _mm512_fmadd_ps(sp, z, _mm512_set1_ps(CX_VM_TANH_S4));
    const __m512 small = _mm512_fmadd_ps(sp, _mm512_mul_ps(z, a), a);
    const __m512 t = _mm512_min_ps(_mm512_set1_ps(20.0f), _mm512_add_ps(a, a)); /* 2|x| up to 20 */
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CX_VM_LN2_HI), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(CX_VM_LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(CX_VM_EXPM1_P0), r, _mm512_set1_ps(CX_VM_EXPM1_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CX_VM_EXPM1_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CX_VM_EXPM1_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CX_VM_EXPM1_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(CX_VM_EXPM1_P5));
    const __m512 em = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);      /* e^r - 1 */
    const __m512 e = _mm512_scalef_ps(_mm512_add_ps(em, one), n);        /* e^2|x| */
    const __m512 big = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    const __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, small);
    /* sign ? x : y bitwise (vpternlogd 0xCA over sign mask, x, y): x's sign on y */
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(x),
                                                         _mm512_castps_si512(y), 0xCA));
}
/* sqrt(v) for v >= +0 or NaN, equal to vsqrtps bit for bit under DAZ/FTZ
 * (as the optimisers run; tests/cpu/test_vmath.c compares a stride through
 * all 2^31 non-negative bit patterns, every one with CX_TEST_EXHAUSTIVE=1)
 * without the divide/square-root unit, which Adam's division also needs:
 * 1/sqrt to 14 bits (vrsqrt14ps), one coupled Newton step for sqrt(v) and
 * 1/(2 sqrt(v)), one FMA-residual correction (v below 2^-100 scaled by 2^64
 * first, so that the residual stays normal; zeros, denormals (+0 under DAZ)
 * and +inf passed through). */
static inline __m512 cx_vsqrt16_exact(__m512 v) {
    const __m512 vz = _mm512_add_ps(v, _mm512_setzero_ps()); /* DAZ: denormals to +0 */
    const __mmask16 tiny = _mm512_cmp_ps_mask(vz, _mm512_set1_ps(0x1p-100f), _CMP_LT_OQ);
    const __m512 vs = _mm512_mask_mul_ps(vz, tiny, vz, _mm512_set1_ps(0x1p64f));
    const __m512 y0 = _mm512_rsqrt14_ps(vs);
    const __m512 s0 = _mm512_mul_ps(vs, y0), h0 = _mm512_mul_ps(_mm512_set1_ps(0.5f), y0);
    const __m512 r0 = _mm512_fnmadd_ps(s0, h0, _mm512_set1_ps(0.5f));
    const __m512 s1 = _mm512_fmadd_ps(s0, r0, s0), h1 = _mm512_fmadd_ps(h0, r0, h0);
    __m512 s2 = _mm512_fmadd_ps(_mm512_fnmadd_ps(s1, s1, vs), h1, s1);
    s2 = _mm512_mask_mul_ps(s2, tiny, s2, _mm512_set1_ps(0x1p-32f));
    return _mm512_mask_blend_ps(_mm512_fpclass_ps_mask(vz, 0x02 | 0x04 | 0x08), s2, vz);
}
static inline void cx_vtanh_array(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, cx_vtanh16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, cx_vtanh16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
#else
static inline void cx_vtanh_array(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cx_vtanhf(x[i]);
}
#endif

/* 1 / (1 + e^-x), as e / (1 + e) with e = e^x for x < 0. */
static inline float cx_vsigmoidf(float x) {
    float na = cx_vm_bits2f(cx_vm_f2bits(x) | 0x80000000u); /* -|x| */
    float e = cx_vm_exp_core(cx_vm_sel(na < -104.0f, -104.0f, na)); /* NaN stays NaN */
    return cx_vm_sel(x < 0, e, 1.0f) / (1.0f + e);
}

/* Phi(x) = (1 + erf(x / sqrt 2)) / 2 = erfc(-x / sqrt 2) / 2, the standard
 * normal CDF, with erfc(a) for a = |x| / sqrt 2 >= 0 from the Chebyshev fit
 * of Press et al., Numerical Recipes (2nd ed., section 6.2, "erfcc"),
 * fractional error below 1.2e-7 for every a >= 0:
 *   t = 1 / (1 + a / 2),  erfc(a) = t exp(-a^2 + P(t)),  P of degree 9;
 * then Phi = erfc / 2 for x < 0 (full relative accuracy in the lower tail,
 * unlike 1 + erf) and 1 - erfc / 2 above. t, P(t) - a^2 in double (P's
 * terms cancel, and a^2 near 100 would lose the tail's relative accuracy in
 * float); the exponential in float on the argument split as hi + lo,
 * e^hi (1 + lo). Below 5 ulp of error, 4.5 measured (the fit's 1.2e-7 is up
 * to 2 ulp by itself; tests/cpu/test_vmath.c); one exp,
 * one division, no branch, so GELU loops vectorise (libm's erff does not).
 * NaN in, NaN out; Phi(x) = 0 below x = -14.1 (a > 10) and at -inf,
 * Phi(+inf) = 1. */
static inline float cx_vnormcdff(float x) {
    double a = (double)cx_vm_fabs(x) * 0.70710678118654752440;
    const int far = a > 10.0;
    a = cx_vm_seld(far, 10.0, a); /* NaN stays NaN */
    const double t = 1.0 / (1.0 + 0.5 * a);
    double p = 0.17087277;
    p = p * t - 0.82215223;
    p = p * t + 1.48851587;
    p = p * t - 1.13520398;
    p = p * t + 0.27886807;
    p = p * t - 0.18628806;
    p = p * t + 0.09678418;
    p = p * t + 0.37409196;
    p = p * t + 1.00002368;
    p = p * t - 1.26551223;
    const double arg = p - a * a; /* >= -101.3 */
    const float hi = (float)arg, lo = (float)(arg - (double)hi);
    float h = 0.5f * (float)t * (cx_vm_exp_core(hi) * (1.0f + lo)); /* erfc(a) / 2 */
    h = cx_vm_sel(far, 0.0f, h);
    return cx_vm_sel(x < 0, h, 1.0f - h);
}

/* log(x): x = 2^k m with m in [sqrt(1/2), sqrt(2)) from the bits (subnormals
 * scaled by 2^23 first), f = m - 1, log(1 + f) = f - f^2 / 2 + f^3 P(f) with
 * P a degree-7 polynomial fitted for this (relative error 6e-9 on the
 * interval), k ln2 added in two parts. About 1 ulp; log(0) = -inf, log of a
 * negative number or NaN is NaN, log(+inf) = +inf. */
static inline float cx_vlogf(float x) {
    const int sub = x < 1.17549435e-38f; /* subnormal, zero or negative */
    const float xs = cx_vm_sel(sub, x * 8388608.0f, x);
    const uint32_t d = cx_vm_f2bits(xs) - 0x3f3504f3u; /* the bits of sqrt(1/2) */
    const int32_t k = (int32_t)(d & 0xff800000u) / (1 << 23) - (sub ? 23 : 0);
    const float f = cx_vm_bits2f((d & 0x007fffffu) + 0x3f3504f3u) - 1.0f;
    float p = -7.6342463354e-02f;
    p = CX_VM_FMA(p, f, 1.2761216489e-01f);
    p = CX_VM_FMA(p, f, -1.3160105868e-01f);
    p = CX_VM_FMA(p, f, 1.4201801771e-01f);
    p = CX_VM_FMA(p, f, -1.6623369152e-01f);
    p = CX_VM_FMA(p, f, 2.0001225409e-01f);
    p = CX_VM_FMA(p, f, -2.5000820690e-01f);
    p = CX_VM_FMA(p, f, 3.3333331720e-01f);
    const float z = f * f;
    const float r = CX_VM_FMA(z, CX_VM_FMA(f, p, -0.5f), f); /* log(1 + f) */
    const float kf = (float)k;
    const float y = CX_VM_FMA(kf, CX_VM_LN2_HI, CX_VM_FMA(kf, CX_VM_LN2_LO, r));
    /* x <= 0, +inf, NaN */
    float sp = cx_vm_sel(x == 0, -INFINITY, cx_vm_sel(x == INFINITY, INFINITY, NAN));
    return cx_vm_sel(x > 0 && x < INFINITY, y, sp);
}

/* Largest element of x[0..n) ignoring NaNs (-inf for n = 0 or all NaN), and
 * the sum of x[0..n) in double; both in independent lanes so that they
 * vectorise. */
static inline float cx_vmaxf(const float *x, int64_t n) {
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    float r = m[0];
    for (int k = 1; k < 8; k++) r = m[k] > r ? m[k] : r;
    return r;
}
static inline double cx_vsum_f64(const float *x, int64_t n) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] += (double)x[i + k];
    for (; i < n; i++) s[0] += (double)x[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

#endif
