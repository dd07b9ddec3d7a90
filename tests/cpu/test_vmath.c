/* Tests of the vectorisable math in src/cpu/vmath.h: error in ulps against
 * libm in double (the normal CDF against erfc) over the whole float range (a
 * stride through every bit pattern plus dense sweeps of the busy ranges),
 * special values, signed zeros, saturation. Evaluated through array loops,
 * i.e. the vectorised code. Prints the worst error of each function. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "cpu/vmath.h"
#if defined(__AVX512F__)
#include <xmmintrin.h>
#endif

typedef float (*f32_fn)(float);
typedef double (*ref_fn)(double);

static double ref_exp(double x) { return exp(x); }
static double ref_expm1(double x) { return expm1(x); }
static double ref_tanh(double x) { return tanh(x); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_log(double x) { return log(x); }
static double ref_normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

/* The array loops the kernels are meant for (vectorised at -O2 and up). */
static void run_exp(const float *x, float *y, int n) { for (int i = 0; i < n; i++) y[i] = cx_vexpf(x[i]); }
static void run_expm1(const float *x, float *y, int n) { for (int i = 0; i < n; i++) y[i] = cx_vexpm1f(x[i]); }
static void run_tanh(const float *x, float *y, int n) { for (int i = 0; i < n; i++) y[i] = cx_vtanhf(x[i]); }
/* the array form the tanh ops run (AVX-512: cx_vtanh16, a masked tail) */
static void run_tanh_arr(const float *x, float *y, int n) { cx_vtanh_array(x, y, n); }
static void run_sigmoid(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = cx_vsigmoidf(x[i]);
}

static void run_log(const float *x, float *y, int n) { for (int i = 0; i < n; i++) y[i] = cx_vlogf(x[i]); }

static void run_normcdf(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = cx_vnormcdff(x[i]);
}

typedef void (*run_fn)(const float *, float *, int);

/* Error of got against the exact value r in units of the float ulp at r
 * (subnormal spacing 2^-149 at the bottom). An exact value beyond FLT_MAX
 * (after rounding) must give inf. */
static double ulp_err(float got, double r) {
    if (isnan(r)) return isnan(got) ? 0 : INFINITY;
    double ar = fabs(r);
    if ((float)r == (float)INFINITY || (float)r == -(float)INFINITY || ar >= (double)FLT_MAX * (1 + 0x1p-25))
        return got == (float)r ? 0 : INFINITY;
    if (isinf(got) || isnan(got)) return INFINITY;
    int e;
    frexp(ar, &e); /* ar in [2^(e-1), 2^e) */
    double ulp = ldexp(1.0, (e - 1) - 23 < -149 ? -149 : (e - 1) - 23);
    return fabs((double)got - r) / ulp;
}

enum { CHUNK = 4096 };
#define NORMCDF_ULP 5.0 /* the Numerical Recipes fit: 1.2e-7 relative, i.e. up to 2 ulp, before rounding */

typedef struct {
    double worst;
    float at;
} err_stat;

static void eval_chunk(run_fn run, ref_fn ref, const float *x, int n, err_stat *st) {
    float y[CHUNK];
    run(x, y, n);
    for (int i = 0; i < n; i++) {
        double e = ulp_err(y[i], ref((double)x[i]));
        if (e > st->worst || (isnan(e) && !isnan(st->worst))) {
            st->worst = e;
            st->at = x[i];
        }
    }
}

/* Every `stride`-th bit pattern (both signs) plus a dense uniform sweep of
 * [lo, hi]. */
static err_stat sweep(run_fn run, ref_fn ref, uint32_t stride, float lo, float hi, int dense) {
    err_stat st = {0, 0};
    float x[CHUNK];
    int n = 0;
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += stride) {
        float f = cx_vm_bits2f((uint32_t)u);
        if (isnan(f)) continue;
        x[n++] = f;
        if (n == CHUNK) {
            eval_chunk(run, ref, x, n, &st);
            n = 0;
        }
    }
    for (int i = 0; i <= dense; i++) {
        x[n++] = lo + (hi - lo) * (float)((double)i / dense);
        if (n == CHUNK) {
            eval_chunk(run, ref, x, n, &st);
            n = 0;
        }
    }
    if (n) eval_chunk(run, ref, x, n, &st);
    return st;
}

static void check_fn(const char *name, run_fn run, ref_fn ref, float lo, float hi, double max_ulp) {
    err_stat st = sweep(run, ref, 1021, lo, hi, 400000);
    printf("  %-8s max error %.3f ulp (at x = %.9g)\n", name, st.worst, (double)st.at);
    CHECK_MSG(st.worst <= max_ulp, "%s: %.3f ulp at x = %.9g (limit %.1f)", name, st.worst, (double)st.at,
              max_ulp);
}

static void test_accuracy(void) {
    check_fn("exp", run_exp, ref_exp, -104.0f, 89.0f, 2.0);
    check_fn("expm1", run_expm1, ref_expm1, -3.0f, 3.0f, 2.0);
    check_fn("tanh", run_tanh, ref_tanh, -10.0f, 10.0f, 3.0);
    check_fn("tanh_arr", run_tanh_arr, ref_tanh, -10.0f, 10.0f, 3.0);
    check_fn("sigmoid", run_sigmoid, ref_sigmoid, -30.0f, 30.0f, 3.0);
    check_fn("log", run_log, ref_log, 0.0f, 8.0f, 2.0);
    /* the exact GELU's gate: the lower tail to the subnormals, 1 - 2^-25 above 5.4 */
    check_fn("normcdf", run_normcdf, ref_normcdf, -15.0f, 15.0f, NORMCDF_ULP);
}

/* Extra dense checks where the methods switch: n = 0 / +-1 boundaries of the
 * exp reduction, the tanh polynomial / expm1 switch at 0.625, the exp
 * subnormal and overflow edges, the normal CDF's cut-off at |x| = 10 sqrt 2. */
static void test_edges(void) {
    static const float centres[] = {0.3465736f, -0.3465736f, 1.0397208f, -1.0397208f, 0.625f, -0.625f,
                                    -87.33655f, -103.2789f, 88.72283f, 9.01f, -9.01f,
                                    -14.1421356f, 14.1421356f, -13.0f, 5.4f};
    const run_fn runs[6] = {run_exp, run_expm1, run_tanh, run_sigmoid, run_normcdf, run_tanh_arr};
    const ref_fn refs[6] = {ref_exp, ref_expm1, ref_tanh, ref_sigmoid, ref_normcdf, ref_tanh};
    const double lim[6] = {2.0, 2.0, 3.0, 3.0, NORMCDF_ULP, 3.0};
    for (int f = 0; f < 6; f++) {
        err_stat st = {0, 0};
        for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
            float x[CHUNK];
            uint32_t b = cx_vm_f2bits(centres[c]);
            for (int i = 0; i < CHUNK; i++) x[i] = cx_vm_bits2f(b - CHUNK / 2 + (uint32_t)i);
            eval_chunk(runs[f], refs[f], x, CHUNK, &st);
        }
        CHECK_MSG(st.worst <= lim[f], "function %d: %.3f ulp at x = %.9g", f, st.worst, (double)st.at);
    }
}

/* log: dense around 1 (tiny results), the reduction's switch at sqrt(2)
 * and sqrt(1/2), the subnormal edge; exact specials. */
static void test_log(void) {
    static const float centres[] = {1.0f, 1.41421356f, 0.70710678f, 2.0f, 0.5f, 1.17549435e-38f, 3.0f};
    err_stat st = {0, 0};
    for (size_t c = 0; c < sizeof centres / sizeof centres[0]; c++) {
        float x[CHUNK];
        uint32_t b = cx_vm_f2bits(centres[c]);
        for (int i = 0; i < CHUNK; i++) x[i] = cx_vm_bits2f(b - CHUNK / 2 + (uint32_t)i);
        eval_chunk(run_log, ref_log, x, CHUNK, &st);
    }
    CHECK_MSG(st.worst <= 2.0, "log: %.3f ulp at x = %.9g", st.worst, (double)st.at);
    const float x[] = {0.0f, -0.0f, -1.0f, INFINITY, -INFINITY, NAN, 1.0f, 1e-45f, FLT_MAX, 2.0f};
    enum { N = sizeof x / sizeof x[0] };
    float y[N];
    run_log(x, y, N);
    CHECK(y[0] == -INFINITY && y[1] == -INFINITY && isnan(y[2]) && y[3] == INFINITY && isnan(y[4]) && isnan(y[5]));
    CHECK(y[6] == 0.0f && !signbit(y[6]));
    CHECK(ulp_err(y[7], log((double)x[7])) <= 1 && ulp_err(y[8], log((double)FLT_MAX)) <= 1 && ulp_err(y[9], log(2.0)) <= 1);
}

/* cx_vsqrt16_exact against vsqrtps under DAZ/FTZ: a stride of 61 through
 * every bit pattern with the sign clear (NaNs, denormals, +inf included),
 * all 2^31 of them with CX_TEST_EXHAUSTIVE=1. */
static void test_sqrt_exact(void) {
#if defined(__AVX512F__)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);
    const char *ex = getenv("CX_TEST_EXHAUSTIVE");
    const uint64_t stride = ex && *ex == '1' ? 1 : 61;
    long bad = 0, n = 0;
    uint32_t first = 0;
    for (uint64_t u = 0; u < 0x80000000ull; u += 16 * stride) {
        uint32_t b[16];
        for (int k = 0; k < 16; k++) b[k] = (uint32_t)((u + (uint64_t)k * stride) & 0x7fffffffu);
        __m512 v;
        memcpy(&v, b, sizeof v);
        const __m512i got = _mm512_castps_si512(cx_vsqrt16_exact(v)), want = _mm512_castps_si512(_mm512_sqrt_ps(v));
        const __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(want), _mm512_castsi512_ps(want), _CMP_UNORD_Q);
        const __mmask16 ne = (_mm512_cmpneq_epi32_mask(got, want) & (__mmask16)~nan) |
                             (nan & (__mmask16)~_mm512_cmp_ps_mask(_mm512_castsi512_ps(got), _mm512_castsi512_ps(got),
                                                                   _CMP_UNORD_Q));
        if (ne && !bad)
            for (int k = 0; k < 16; k++)
                if (ne >> k & 1) {
                    first = b[k];
                    break;
                }
        bad += __builtin_popcount(ne);
        n += 16;
    }
    _mm_setcsr(csr);
    printf("  sqrt16_exact: %ld bit patterns, %ld differ from vsqrtps\n", n, bad);
    CHECK_MSG(bad == 0, "%ld of %ld differ, first at bits 0x%08x", bad, n, first);
#endif
}

static void test_special_values(void) {
    const float inf = INFINITY, nan = NAN;
    float x[] = {inf, -inf, nan, 0.0f, -0.0f, 89.0f, 88.72f, -88.0f, -103.0f, -104.5f, -1000.0f, 1000.0f,
                 9.5f, -9.5f, 20.0f, -20.0f, 1e-30f, -1e-30f, 1e-40f, -1e-40f};
    enum { N = sizeof x / sizeof x[0] };
    float e[N], m[N], t[N], s[N], p[N];
    run_exp(x, e, N);
    run_normcdf(x, p, N);
    run_expm1(x, m, N);
    run_tanh(x, t, N);
    run_sigmoid(x, s, N);
    /* exp */
    CHECK(e[0] == inf && e[1] == 0.0f && isnan(e[2]) && e[3] == 1.0f && e[4] == 1.0f);
    CHECK(e[5] == inf && isfinite(e[6]) && e[6] > 3e38f);
    CHECK(e[7] > 0 && e[8] > 0 && e[8] < 1e-44f && e[9] == 0.0f && e[10] == 0.0f && e[11] == inf);
    /* expm1: saturation, signed zeros, tiny arguments exact */
    CHECK(m[0] == inf && m[1] == -1.0f && isnan(m[2]));
    CHECK(m[3] == 0.0f && !signbit(m[3]) && m[4] == 0.0f && signbit(m[4]));
    CHECK(m[10] == -1.0f && m[11] == inf && m[14] > 4.8e8f && m[15] == -1.0f);
    CHECK(m[16] == 1e-30f && m[17] == -1e-30f && m[18] == 1e-40f && m[19] == -1e-40f);
    /* tanh (both forms): exact +-1, signed zeros, tiny arguments */
    for (int form = 0; form < 2; form++) {
        if (form) run_tanh_arr(x, t, N);
        CHECK(t[0] == 1.0f && t[1] == -1.0f && isnan(t[2]));
        CHECK(t[3] == 0.0f && !signbit(t[3]) && t[4] == 0.0f && signbit(t[4]));
        CHECK(t[12] == 1.0f && t[13] == -1.0f && t[14] == 1.0f && t[15] == -1.0f && t[10] == -1.0f && t[11] == 1.0f);
        CHECK(t[16] == 1e-30f && t[17] == -1e-30f && t[18] == 1e-40f && t[19] == -1e-40f);
    }
    /* the array form's masked tail: every length up to two vectors */
    for (int len = 0; len <= 33; len++) {
        float in[40], out[40];
        for (int i = 0; i < 40; i++) in[i] = 0.37f * (float)(i - 20), out[i] = 123.0f;
        cx_vtanh_array(in, out, len);
        int ok = 1;
        for (int i = 0; i < 40; i++) ok &= i < len ? ulp_err(out[i], tanh((double)in[i])) <= 3.0 : out[i] == 123.0f;
        CHECK_MSG(ok, "cx_vtanh_array of %d elements", len);
    }
    /* sigmoid */
    CHECK(s[0] == 1.0f && s[1] == 0.0f && isnan(s[2]) && s[3] == 0.5f && s[4] == 0.5f);
    CHECK(s[11] == 1.0f && s[10] == 0.0f && s[9] == 0.0f && s[8] > 0 && s[15] > 2e-9f && s[15] < 2.1e-9f);
    /* normal CDF: 0 and 1 at the ends, 1/2 at +-0 and tiny arguments, the lower tail
     * keeps its relative accuracy (Phi(-9.5) = 1.0494e-21; 1 + erf would give 0) */
    CHECK(p[0] == 1.0f && p[1] == 0.0f && isnan(p[2]) && p[3] == 0.5f && p[4] == 0.5f);
    CHECK(p[5] == 1.0f && p[7] == 0.0f && p[10] == 0.0f && p[11] == 1.0f && p[14] == 1.0f && p[15] == 0.0f);
    CHECK(p[12] == 1.0f && p[13] > 1.0493e-21f && p[13] < 1.0495e-21f);
    CHECK(p[16] == 0.5f && p[17] == 0.5f && p[18] == 0.5f && p[19] == 0.5f);
    float nx[2] = {-NAN, NAN}, ny[2];
    run_normcdf(nx, ny, 2);
    CHECK(isnan(ny[0]) && isnan(ny[1]));
}

/* tanh, sigmoid and the normal CDF stay within [-1, 1] / [0, 1] and are
 * monotone on a fine grid up to one ulp (results next to a rounding tie may
 * alternate between the two neighbours; no kinks at the method switches;
 * the normal CDF's fit: up to 4 ulp). */
static void test_monotone(void) {
    enum { N = 40001 };
    float *x = malloc(N * sizeof *x), *t = malloc(N * sizeof *t), *s = malloc(N * sizeof *s);
    float *p = malloc(N * sizeof *p);
    for (int i = 0; i < N; i++) x[i] = -20.0f + 40.0f * (float)i / (N - 1);
    run_tanh(x, t, N);
    run_sigmoid(x, s, N);
    run_normcdf(x, p, N);
    float *t2 = malloc(N * sizeof *t2);
    run_tanh_arr(x, t2, N);
    int bad = 0;
    for (int i = 1; i < N; i++) bad += !(t2[i] >= -1.0f && t2[i] <= 1.0f && t2[i] >= t2[i - 1] - 0x1p-24f * fabsf(t2[i]));
    free(t2);
    for (int i = 0; i < N; i++) {
        bad += !(t[i] >= -1.0f && t[i] <= 1.0f && s[i] >= 0.0f && s[i] <= 1.0f && p[i] >= 0.0f && p[i] <= 1.0f);
        if (i) bad += !(t[i] >= t[i - 1] - 0x1p-24f * fabsf(t[i]) && s[i] >= s[i - 1] - 0x1p-24f * s[i] &&
                        p[i] >= p[i - 1] - 0x1p-22f * p[i]);
    }
    CHECK(bad == 0);
    free(x);
    free(t);
    free(s);
    free(p);
}

int main(void) {
    RUN(test_accuracy);
    RUN(test_log);
    RUN(test_sqrt_exact);
    RUN(test_edges);
    RUN(test_special_values);
    RUN(test_monotone);
    TEST_END();
}
