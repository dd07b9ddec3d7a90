/* Kernel perceptron (dual form) and kernels. See include/cortex/models.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/models.h"
#include "perceptron_common.h"

/* ---------------------------------------------------------------- kernels */
cx_kernel cx_kernel_linear(void) {
    cx_kernel k;
    k.type = CX_KERNEL_LINEAR;
    k.gamma = 1.0f;
    k.coef0 = 0.0f;
    k.degree = 1;
    return k;
}

cx_kernel cx_kernel_poly(int degree, float gamma, float coef0) {
    cx_kernel k;
    k.type = CX_KERNEL_POLY;
    k.gamma = gamma;
    k.coef0 = coef0;
    k.degree = degree;
    return k;
}

cx_kernel cx_kernel_rbf(float gamma) {
    cx_kernel k;
    k.type = CX_KERNEL_RBF;
    k.gamma = gamma;
    k.coef0 = 0.0f;
    k.degree = 1;
    return k;
}

static double ipow(double b, int e) {
    double r = 1.0;
    while (e > 0) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

double cx_kernel_eval(const cx_kernel *k, const float *x, const float *y, int D) {
    switch (k->type) {
    case CX_KERNEL_RBF: {
        double d2 = 0.0;
        for (int j = 0; j < D; j++) {
            double d = (double)x[j] - (double)y[j];
            d2 += d * d;
        }
        return exp(-(double)k->gamma * d2);
    }
    case CX_KERNEL_POLY: {
        double dot = 0.0;
        for (int j = 0; j < D; j++) dot += (double)x[j] * (double)y[j];
        return ipow((double)k->gamma * dot + (double)k->coef0, k->degree);
    }
    case CX_KERNEL_LINEAR:
    default: {
        double dot = 0.0;
        for (int j = 0; j < D; j++) dot += (double)x[j] * (double)y[j];
        return dot;
    }
    }
}

const char *cx_kernel_describe(const cx_kernel *k, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    if (!k) {
        snprintf(buf, n, "(null kernel)");
        return buf;
    }
    switch (k->type) {
    case CX_KERNEL_LINEAR: snprintf(buf, n, "linear"); break;
    case CX_KERNEL_POLY:
        snprintf(buf, n, "poly(degree=%d, gamma=%g, coef0=%g)", k->degree, (double)k->gamma,
                 (double)k->coef0);
        break;
    case CX_KERNEL_RBF: snprintf(buf, n, "rbf(gamma=%g)", (double)k->gamma); break;
    default: snprintf(buf, n, "unknown kernel %d", (int)k->type); break;
    }
    return buf;
}

static cx_status check_kernel(const char *fn, const cx_kernel *k) {
    if (!k) return cx_set_error(CX_ERR_ARG, "%s: kernel must not be NULL", fn);
    switch (k->type) {
    case CX_KERNEL_LINEAR: return CX_OK;
    case CX_KERNEL_POLY:
        if (k->degree < 1)
            return cx_set_error(CX_ERR_ARG, "%s: polynomial degree must be >= 1 (got %d)", fn,
                                k->degree);
        if (!(k->gamma > 0.0f) || !isfinite(k->gamma) || !isfinite(k->coef0))
            return cx_set_error(CX_ERR_ARG,
                                "%s: polynomial kernel needs finite gamma > 0 and coef0", fn);
        return CX_OK;
    case CX_KERNEL_RBF:
        if (!(k->gamma > 0.0f) || !isfinite(k->gamma))
            return cx_set_error(CX_ERR_ARG, "%s: RBF kernel needs finite gamma > 0 (got %g)", fn,
                                (double)k->gamma);
        return CX_OK;
    default: return cx_set_error(CX_ERR_ARG, "%s: unknown kernel type %d", fn, (int)k->type);
    }
}

/* ---------------------------------------------------------------- helpers */
/* ---------------------------------------------------------------- training */
cx_kperceptron_opts cx_kperceptron_defaults(void) {
    cx_kperceptron_opts o;
    o.max_epochs = 100;
    o.shuffle = true;
    o.use_bias = true;
    o.gram_max_n = 4096;
    return o;
}

cx_status cx_kperceptron_train(cx_kperceptron *p, const cx_kernel *kernel, const float *X,
                               const float *t, int N, int D, const cx_kperceptron_opts *opts) {
    static const char *fn = "cx_kperceptron_train";
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: result pointer is NULL", fn);
    memset(p, 0, sizeof *p);
    cx_kperceptron_opts o = opts ? *opts : cx_kperceptron_defaults();
    if (o.max_epochs < 1)
        return cx_set_error(CX_ERR_ARG, "%s: max_epochs must be >= 1 (got %d)", fn, o.max_epochs);
    cx_status st = check_kernel(fn, kernel);
    if (st != CX_OK) return st;
    st = cx_pc_check_data(fn, X, t, N, D);
    if (st != CX_OK) return st;
    const cx_kernel k = *kernel;

    const bool use_gram = N <= o.gram_max_n;
    float *K = NULL;
    if (use_gram) {
        K = malloc((size_t)N * (size_t)N * sizeof *K);
        if (!K) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory for the %dx%d Gram matrix",
                                    fn, N, N);
    }
    int32_t *alpha = calloc((size_t)N, sizeof *alpha);
    double *f = calloc((size_t)N, sizeof *f);
    int *idx = malloc((size_t)N * sizeof *idx);
    int *hist = malloc((size_t)o.max_epochs * sizeof *hist);
    if (!alpha || !f || !idx || !hist) {
        free(K);
        free(alpha);
        free(f);
        free(idx);
        free(hist);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
    }
    const double extra = o.use_bias ? 1.0 : 0.0;  /* phi augmented with a constant 1 */

    if (use_gram) {
        /* Every entry is computed independently: deterministic under OpenMP. */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16) if (N >= 256)
#endif
        for (int i = 0; i < N; i++) {
            const float *xi = X + (size_t)i * (size_t)D;
            for (int j = 0; j <= i; j++) {
                float v = (float)cx_kernel_eval(&k, xi, X + (size_t)j * (size_t)D, D);
                K[(size_t)i * (size_t)N + (size_t)j] = v;
                K[(size_t)j * (size_t)N + (size_t)i] = v;
            }
        }
    }

    for (int i = 0; i < N; i++) idx[i] = i;
    int64_t updates = 0;
    int epoch = 0;
    bool converged = false;
    while (epoch < o.max_epochs) {
        if (o.shuffle) cx_pc_shuffle(idx, N);
        int mistakes = 0;
        for (int kk = 0; kk < N; kk++) {
            int i = idx[kk];
            /* f[i] is the current decision value sum_j alpha_j t_j (k(x_i, x_j) + extra). */
            if ((double)t[i] * f[i] <= 0.0) {
                alpha[i]++;
                mistakes++;
                updates++;
                const double ti = (double)t[i];
                if (use_gram) {
                    const float *Ki = K + (size_t)i * (size_t)N;
                    for (int j = 0; j < N; j++) f[j] += ti * ((double)Ki[j] + extra);
                } else {
                    const float *xi = X + (size_t)i * (size_t)D;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (N >= 4096)
#endif
                    for (int j = 0; j < N; j++)
                        f[j] += ti * (cx_kernel_eval(&k, X + (size_t)j * (size_t)D, xi, D) + extra);
                }
            }
        }
        hist[epoch++] = mistakes;
        if (mistakes == 0) {
            converged = true;
            break;
        }
    }
    free(K);
    free(f);
    free(idx);

    /* Keep the support vectors only. */
    int n_sv = 0;
    double b = 0.0;
    for (int i = 0; i < N; i++) {
        if (alpha[i] > 0) n_sv++;
        b += (double)alpha[i] * (double)t[i];
    }
    float *sv_x = malloc((size_t)(n_sv > 0 ? n_sv : 1) * (size_t)D * sizeof *sv_x);
    float *sv_coef = malloc((size_t)(n_sv > 0 ? n_sv : 1) * sizeof *sv_coef);
    if (!sv_x || !sv_coef) {
        free(sv_x);
        free(sv_coef);
        free(alpha);
        free(hist);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (int i = 0, s = 0; i < N; i++) {
        if (alpha[i] == 0) continue;
        memcpy(sv_x + (size_t)s * (size_t)D, X + (size_t)i * (size_t)D, (size_t)D * sizeof *sv_x);
        sv_coef[s] = (float)alpha[i] * t[i];
        s++;
    }

    p->kernel = k;
    p->dim = D;
    p->n_train = N;
    p->alpha = alpha;
    p->n_sv = n_sv;
    p->sv_x = sv_x;
    p->sv_coef = sv_coef;
    p->bias = o.use_bias ? (float)b : 0.0f;
    p->use_bias = o.use_bias;
    p->used_gram = use_gram;
    p->updates = updates;
    p->epochs = epoch;
    p->converged = converged;
    p->max_epochs = o.max_epochs;
    p->epoch_mistakes = hist;
    int64_t errs = 0;
    for (int i = 0; i < N; i++) {
        double fi = cx_kperceptron_decision(p, X + (size_t)i * (size_t)D);
        if ((double)t[i] * fi <= 0.0) errs++;
    }
    p->train_errors = errs;
    return CX_OK;
}

cx_status cx_kperceptron_train_t(cx_kperceptron *p, const cx_kernel *kernel, const cx_tensor *X,
                                 const cx_tensor *t, const cx_kperceptron_opts *opts) {
    static const char *fn = "cx_kperceptron_train_t";
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: result pointer is NULL", fn);
    memset(p, 0, sizeof *p);
    const float *Xp = NULL, *tp = NULL;
    float *tbuf = NULL;
    int N = 0, D = 0;
    cx_status st = cx_pc_unpack(fn, X, t, &Xp, &tp, &tbuf, &N, &D);
    if (st == CX_OK) st = cx_kperceptron_train(p, kernel, Xp, tp, N, D, opts);
    free(tbuf);
    return st;
}

/* ---------------------------------------------------------------- prediction */
double cx_kperceptron_decision(const cx_kperceptron *p, const float *x) {
    double s = (double)p->bias;
    for (int i = 0; i < p->n_sv; i++)
        s += (double)p->sv_coef[i] *
             cx_kernel_eval(&p->kernel, x, p->sv_x + (size_t)i * (size_t)p->dim, p->dim);
    return s;
}

float cx_kperceptron_predict(const cx_kperceptron *p, const float *x) {
    return cx_kperceptron_decision(p, x) >= 0.0 ? 1.0f : -1.0f;
}

void cx_kperceptron_predict_batch(const cx_kperceptron *p, const float *X, int N, float *out) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (N >= 1024)
#endif
    for (int i = 0; i < N; i++) out[i] = cx_kperceptron_predict(p, X + (size_t)i * (size_t)p->dim);
}

double cx_kperceptron_accuracy(const cx_kperceptron *p, const float *X, const float *t, int N) {
    if (N <= 0) return 0.0;
    int64_t ok = 0;
    for (int i = 0; i < N; i++)
        if (cx_kperceptron_predict(p, X + (size_t)i * (size_t)p->dim) == t[i]) ok++;
    return (double)ok / (double)N;
}

const char *cx_kperceptron_describe(const cx_kperceptron *p, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    if (!p || !p->alpha) {
        snprintf(buf, n, "untrained kernel perceptron");
        return buf;
    }
    char kb[96];
    cx_kernel_describe(&p->kernel, kb, sizeof kb);
    if (p->converged)
        snprintf(buf, n,
                 "%s: converged after %d epoch%s (%lld updates, %d support vectors, %lld "
                 "training errors)",
                 kb, p->epochs, p->epochs == 1 ? "" : "s", (long long)p->updates, p->n_sv,
                 (long long)p->train_errors);
    else
        snprintf(buf, n,
                 "%s: did not converge: stopped at the cap of %d epochs (%lld updates, %d "
                 "support vectors, %lld training errors)",
                 kb, p->max_epochs, (long long)p->updates, p->n_sv, (long long)p->train_errors);
    return buf;
}

void cx_kperceptron_free(cx_kperceptron *p) {
    if (!p) return;
    free(p->alpha);
    free(p->sv_x);
    free(p->sv_coef);
    free(p->epoch_mistakes);
    memset(p, 0, sizeof *p);
}
