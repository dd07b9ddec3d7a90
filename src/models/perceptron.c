/* Rosenblatt perceptron (primal form). See include/cortex/models.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/models.h"
#include "perceptron_common.h"

cx_perceptron_opts cx_perceptron_defaults(void) {
    cx_perceptron_opts o;
    o.eta = 1.0f;
    o.max_epochs = 100;
    o.shuffle = true;
    o.use_bias = true;
    return o;
}

/* <w, x> + b in double. */
static double decision(const float *w, float b, const float *x, int D) {
    double s = (double)b;
    for (int j = 0; j < D; j++) s += (double)w[j] * (double)x[j];
    return s;
}

cx_status cx_perceptron_train(cx_perceptron *p, const float *X, const float *t, int N, int D,
                              const cx_perceptron_opts *opts) {
    static const char *fn = "cx_perceptron_train";
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: result pointer is NULL", fn);
    memset(p, 0, sizeof *p);
    cx_perceptron_opts o = opts ? *opts : cx_perceptron_defaults();
    if (!(o.eta > 0.0f) || !isfinite(o.eta))
        return cx_set_error(CX_ERR_ARG, "%s: eta must be finite and > 0 (got %g)", fn,
                            (double)o.eta);
    if (o.max_epochs < 1)
        return cx_set_error(CX_ERR_ARG, "%s: max_epochs must be >= 1 (got %d)", fn, o.max_epochs);
    cx_status st = cx_pc_check_data(fn, X, t, N, D);
    if (st != CX_OK) return st;

    float *w = calloc((size_t)D, sizeof *w);
    int *hist = malloc((size_t)o.max_epochs * sizeof *hist);
    int *idx = malloc((size_t)N * sizeof *idx);
    if (!w || !hist || !idx) {
        free(w);
        free(hist);
        free(idx);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (int i = 0; i < N; i++) idx[i] = i;

    float b = 0.0f;
    const float eta = o.eta;
    int64_t updates = 0;
    int epoch = 0;
    bool converged = false;
    while (epoch < o.max_epochs) {
        if (o.shuffle) cx_pc_shuffle(idx, N);
        int mistakes = 0;
        for (int k = 0; k < N; k++) {
            int i = idx[k];
            const float *xi = X + (size_t)i * (size_t)D;
            double f = decision(w, b, xi, D);
            /* "<= 0": at w = 0 every point is a mistake (see models.h). */
            if ((double)t[i] * f <= 0.0) {
                float s = eta * t[i];
                for (int j = 0; j < D; j++) w[j] += s * xi[j];
                if (o.use_bias) b += s;  /* phi(x) = [x, 1] */
                mistakes++;
                updates++;
            }
        }
        hist[epoch++] = mistakes;
        if (mistakes == 0) {
            converged = true;
            break;
        }
    }
    free(idx);

    p->dim = D;
    p->w = w;
    p->bias = b;
    p->use_bias = o.use_bias;
    p->eta = eta;
    p->updates = updates;
    p->epochs = epoch;
    p->converged = converged;
    p->max_epochs = o.max_epochs;
    p->n_train = N;
    p->epoch_mistakes = hist;
    int64_t errs = 0;
    for (int i = 0; i < N; i++) {
        double f = decision(w, b, X + (size_t)i * (size_t)D, D);
        if ((double)t[i] * f <= 0.0) errs++;
    }
    p->train_errors = errs;
    return CX_OK;
}

cx_status cx_perceptron_train_t(cx_perceptron *p, const cx_tensor *X, const cx_tensor *t,
                                const cx_perceptron_opts *opts) {
    static const char *fn = "cx_perceptron_train_t";
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: result pointer is NULL", fn);
    memset(p, 0, sizeof *p);
    const float *Xp = NULL, *tp = NULL;
    float *tbuf = NULL;
    int N = 0, D = 0;
    cx_status st = cx_pc_unpack(fn, X, t, &Xp, &tp, &tbuf, &N, &D);
    if (st == CX_OK) st = cx_perceptron_train(p, Xp, tp, N, D, opts);
    free(tbuf);
    return st;
}

float cx_perceptron_decision(const cx_perceptron *p, const float *x) {
    return (float)decision(p->w, p->bias, x, p->dim);
}

float cx_perceptron_predict(const cx_perceptron *p, const float *x) {
    return decision(p->w, p->bias, x, p->dim) >= 0.0 ? 1.0f : -1.0f;
}

void cx_perceptron_predict_batch(const cx_perceptron *p, const float *X, int N, float *out) {
    for (int i = 0; i < N; i++) out[i] = cx_perceptron_predict(p, X + (size_t)i * (size_t)p->dim);
}

double cx_perceptron_accuracy(const cx_perceptron *p, const float *X, const float *t, int N) {
    if (N <= 0) return 0.0;
    int64_t ok = 0;
    for (int i = 0; i < N; i++)
        if (cx_perceptron_predict(p, X + (size_t)i * (size_t)p->dim) == t[i]) ok++;
    return (double)ok / (double)N;
}

const char *cx_perceptron_describe(const cx_perceptron *p, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    if (!p || !p->w) {
        snprintf(buf, n, "untrained perceptron");
    } else if (p->converged) {
        snprintf(buf, n, "converged after %d epoch%s (%lld updates, %lld training errors)",
                 p->epochs, p->epochs == 1 ? "" : "s", (long long)p->updates,
                 (long long)p->train_errors);
    } else {
        snprintf(buf, n,
                 "did not converge: stopped at the cap of %d epochs (%lld updates, %lld "
                 "training errors)",
                 p->max_epochs, (long long)p->updates, (long long)p->train_errors);
    }
    return buf;
}

void cx_perceptron_free(cx_perceptron *p) {
    if (!p) return;
    free(p->w);
    free(p->epoch_mistakes);
    memset(p, 0, sizeof *p);
}

cx_status cx_perceptron_margin(const float *X, const float *t, int N, int D,
                               const float *w_star, float b_star, bool use_bias,
                               cx_margin_info *out) {
    static const char *fn = "cx_perceptron_margin";
    if (!out) return cx_set_error(CX_ERR_ARG, "%s: result pointer is NULL", fn);
    memset(out, 0, sizeof *out);
    if (!w_star) return cx_set_error(CX_ERR_ARG, "%s: w_star must not be NULL", fn);
    cx_status st = cx_pc_check_data(fn, X, t, N, D);
    if (st != CX_OK) return st;
    double nrm2 = use_bias ? (double)b_star * (double)b_star : 0.0;
    for (int j = 0; j < D; j++) nrm2 += (double)w_star[j] * (double)w_star[j];
    if (!(nrm2 > 0.0) || !isfinite(nrm2))
        return cx_set_error(CX_ERR_ARG, "%s: the separator must be finite and non-zero", fn);
    double inv = 1.0 / sqrt(nrm2);
    double gamma = INFINITY, r2max = 0.0;
    for (int i = 0; i < N; i++) {
        const float *xi = X + (size_t)i * (size_t)D;
        double dot = use_bias ? (double)b_star : 0.0;
        double r2 = use_bias ? 1.0 : 0.0;
        for (int j = 0; j < D; j++) {
            dot += (double)w_star[j] * (double)xi[j];
            r2 += (double)xi[j] * (double)xi[j];
        }
        double m = (double)t[i] * dot * inv;
        if (m < gamma) gamma = m;
        if (r2 > r2max) r2max = r2;
    }
    out->margin = gamma;
    out->radius = sqrt(r2max);
    out->bound = gamma > 0.0 ? r2max / (gamma * gamma) : INFINITY;
    return CX_OK;
}
