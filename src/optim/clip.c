/* Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_). */
#include <math.h>

#include "cortex/optim.h"

#ifdef _OPENMP
#define CX_OMP_SIMD_SUM(v) _Pragma("omp simd reduction(+:s)")
#else
#define CX_OMP_SIMD_SUM(v)
#endif

static double sum_sq(const float *restrict g, int64_t n) {
    /* Double accumulation in blocks: the inner loop vectorises (several
     * partial sums), the outer fold bounds the rounding of long sums. */
    double total = 0.0;
    for (int64_t lo = 0; lo < n; lo += 1024) {
        int64_t hi = lo + 1024 < n ? lo + 1024 : n;
        double s = 0.0;
        CX_OMP_SIMD_SUM(s)
        for (int64_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        total += s;
    }
    return total;
}

/* max |g|, NaN as soon as one element is NaN (torch.max propagates it) */
static float max_abs(const float *restrict g, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        const float v = fabsf(g[i]);
        if (v > m || isnan(v)) m = v;
        if (isnan(m)) break;
    }
    return m;
}

float cx_clip_grad_norm_p(const cx_params *p, float max_norm, float norm_type) {
    if (!p) cx_fatal("cx_clip_grad_norm_p: params is NULL");
    const bool inf = isinf(norm_type) && norm_type > 0;
    if (!inf && norm_type != 2.0f)
        cx_fatal("cx_clip_grad_norm_p: norm_type must be 2 or INFINITY, got %g", (double)norm_type);
    double norm = 0.0;
    if (inf) {
        for (int i = 0; i < p->n && !isnan(norm); i++) {
            const cx_tensor *t = p->t[i];
            if (t && t->grad) {
                const double m = max_abs(t->grad, t->numel);
                if (m > norm || isnan(m)) norm = m;
            }
        }
    } else {
        double ss = 0.0;
        for (int i = 0; i < p->n; i++) {
            const cx_tensor *t = p->t[i];
            if (t && t->grad) ss += sum_sq(t->grad, t->numel);
        }
        norm = sqrt(ss);
    }
    const double coef = (double)max_norm / (norm + 1e-6);
    if (!(coef >= 1.0)) { /* also NaN, as PyTorch multiplies by a NaN coefficient */
        const float c = (float)coef;
        for (int i = 0; i < p->n; i++) {
            cx_tensor *t = p->t[i];
            if (!t || !t->grad) continue;
            float *restrict g = t->grad;
            const int64_t n = t->numel;
#ifdef _OPENMP
#pragma omp simd
#endif
            for (int64_t j = 0; j < n; j++) g[j] *= c;
        }
    }
    return (float)norm;
}

float cx_clip_grad_norm(const cx_params *p, float max_norm) {
    if (!p) cx_fatal("cx_clip_grad_norm: params is NULL");
    return cx_clip_grad_norm_p(p, max_norm, 2.0f);
}

void cx_clip_grad_value(const cx_params *p, float clip_value) {
    if (!p) cx_fatal("cx_clip_grad_value: params is NULL");
    if (!(clip_value >= 0.0f)) cx_fatal("cx_clip_grad_value: invalid clip value %g", (double)clip_value);
    const float lo = -clip_value, hi = clip_value;
    for (int i = 0; i < p->n; i++) {
        cx_tensor *t = p->t[i];
        if (!t || !t->grad) continue;
        float *restrict g = t->grad;
        const int64_t n = t->numel;
#ifdef _OPENMP
#pragma omp simd
#endif
        for (int64_t j = 0; j < n; j++) {
            float v = g[j];
            v = v < lo ? lo : v;
            g[j] = v > hi ? hi : v;
        }
    }
}
