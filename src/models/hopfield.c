/* Hopfield network: Hebbian storage, asynchronous recall, energy.
 * See include/cortex/models.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/models.h"

#define MAX_STORED (1LL << 24) /* counts stay exact integers in float */

cx_hopfield_opts cx_hopfield_defaults(void) {
    cx_hopfield_opts o;
    o.max_sweeps = 100;
    o.rng = NULL;
    o.on_update = NULL;
    o.user = NULL;
    return o;
}

cx_hopfield *cx_hopfield_new(int n) {
    static const char *fn = "cx_hopfield_new";
    if (n < 1 || n > CX_HOPFIELD_MAX_N) {
        cx_set_error(CX_ERR_ARG, "%s: n must be in 1..%d (got %d)", fn, CX_HOPFIELD_MAX_N, n);
        return NULL;
    }
    cx_hopfield *h = calloc(1, sizeof *h);
    size_t nn = (size_t)n * (size_t)n;
    if (h) {
        h->w = calloc(nn, sizeof *h->w);
        h->c = calloc(nn, sizeof *h->c);
    }
    if (!h || !h->w || !h->c) {
        cx_hopfield_free(h);
        cx_set_error(CX_ERR_NOMEM, "%s: out of memory for %d units", fn, n);
        return NULL;
    }
    h->n = n;
    return h;
}

void cx_hopfield_free(cx_hopfield *h) {
    if (!h) return;
    free(h->w);
    free(h->c);
    free(h);
}

/* Every value of v[0..len) is -1 or +1; else an error naming `what` and the index. */
static cx_status check_pm1(const char *fn, const char *what, const int8_t *v, long len, int n) {
    for (long k = 0; k < len; k++)
        if (v[k] != 1 && v[k] != -1) {
            if (len > n)
                return cx_set_error(CX_ERR_ARG, "%s: %s[%ld] (pattern %ld, unit %ld) is %d, not -1 or +1",
                                    fn, what, k, k / n, k % n, (int)v[k]);
            return cx_set_error(CX_ERR_ARG, "%s: %s[%ld] is %d, not -1 or +1", fn, what, k, (int)v[k]);
        }
    return CX_OK;
}

static cx_status check_net(const char *fn, const cx_hopfield *h, const void *v, const char *what, int n) {
    if (!h || !h->w || !h->c) return cx_set_error(CX_ERR_ARG, "%s: network h is NULL", fn);
    if (!v) return cx_set_error(CX_ERR_ARG, "%s: %s is NULL", fn, what);
    if (n != h->n)
        return cx_set_error(CX_ERR_ARG, "%s: %s has length n = %d, the network has %d units", fn, what, n,
                            h->n);
    return CX_OK;
}

cx_status cx_hopfield_store(cx_hopfield *h, const int8_t *X, int P, int n) {
    static const char *fn = "cx_hopfield_store";
    cx_status st = check_net(fn, h, X, "patterns X", n);
    if (st != CX_OK) return st;
    if (P < 1) return cx_set_error(CX_ERR_ARG, "%s: P (number of patterns) must be >= 1 (got %d)", fn, P);
    if (h->stored + P > MAX_STORED)
        return cx_set_error(CX_ERR_ARG, "%s: P = %d would exceed %lld stored patterns", fn, P, MAX_STORED);
    st = check_pm1(fn, "X", X, (long)P * n, n);
    if (st != CX_OK) return st;

    size_t nn = (size_t)n * (size_t)n;
    float *Xf = malloc((size_t)P * (size_t)n * sizeof *Xf);
    float *G = malloc(nn * sizeof *G);
    if (!Xf || !G) {
        free(Xf);
        free(G);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (size_t k = 0; k < (size_t)P * (size_t)n; k++) Xf[k] = (float)X[k];
    /* G = X^T X: sums of +-1 products, exact integers in float (|G| <= P < 2^24). */
    cx_sgemm(true, false, n, n, P, 1.0f, Xf, n, Xf, n, 0.0f, G, n);
    for (int i = 0; i < n; i++) {
        float *c = h->c + (size_t)i * n, *w = h->w + (size_t)i * n;
        const float *g = G + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            c[j] += g[j];
            w[j] = (float)((double)c[j] / (double)n);
        }
        c[i] = 0.0f;
        w[i] = 0.0f;
    }
    h->stored += P;
    free(Xf);
    free(G);
    return CX_OK;
}

/* sum_j C_ij s_j, exact (an integer of magnitude <= stored * N < 2^53). */
static double count_field(const cx_hopfield *h, const int8_t *s, int i) {
    const float *c = h->c + (size_t)i * (size_t)h->n;
    double f = 0.0;
    for (int j = 0; j < h->n; j++) f += (double)c[j] * (double)s[j];
    return f;
}

cx_status cx_hopfield_recall(const cx_hopfield *h, int8_t *s, int n, const cx_hopfield_opts *opts,
                             cx_hopfield_result *res) {
    static const char *fn = "cx_hopfield_recall";
    if (res) memset(res, 0, sizeof *res);
    cx_status st = check_net(fn, h, s, "state s", n);
    if (st != CX_OK) return st;
    cx_hopfield_opts o = opts ? *opts : cx_hopfield_defaults();
    if (o.max_sweeps < 1)
        return cx_set_error(CX_ERR_ARG, "%s: max_sweeps must be >= 1 (got %d)", fn, o.max_sweeps);
    st = check_pm1(fn, "s", s, n, n);
    if (st != CX_OK) return st;
    int *order = malloc((size_t)n * sizeof *order);
    if (!order) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
    cx_rng *rng = o.rng ? o.rng : cx_rng_current();

    cx_hopfield_result r = {0, 0, false};
    while (r.sweeps < o.max_sweeps) {
        /* a fresh uniform permutation (Fisher-Yates) */
        for (int k = 0; k < n; k++) order[k] = k;
        for (int k = n - 1; k > 0; k--) {
            int j = (int)cx_rng_below(rng, (uint32_t)k + 1u);
            int t = order[k];
            order[k] = order[j];
            order[j] = t;
        }
        int64_t changes = 0;
        for (int k = 0; k < n; k++) {
            int i = order[k];
            double f = count_field(h, s, i);
            int8_t v = f > 0.0 ? 1 : f < 0.0 ? -1 : s[i]; /* tie: keep */
            bool changed = v != s[i];
            s[i] = v;
            if (changed) changes++;
            if (o.on_update) o.on_update(i, changed, s, o.user);
        }
        r.sweeps++;
        r.flips += changes;
        if (changes == 0) {
            r.converged = true;
            break;
        }
    }
    free(order);
    if (res) *res = r;
    return CX_OK;
}

double cx_hopfield_field(const cx_hopfield *h, const int8_t *s, int n, int i) {
    static const char *fn = "cx_hopfield_field";
    if (check_net(fn, h, s, "state s", n) != CX_OK) return NAN;
    if (i < 0 || i >= n) {
        cx_set_error(CX_ERR_ARG, "%s: unit i = %d is out of range 0..%d", fn, i, n - 1);
        return NAN;
    }
    if (check_pm1(fn, "s", s, n, n) != CX_OK) return NAN;
    return count_field(h, s, i) / (double)n;
}

double cx_hopfield_energy(const cx_hopfield *h, const int8_t *s, int n) {
    static const char *fn = "cx_hopfield_energy";
    if (check_net(fn, h, s, "state s", n) != CX_OK) return NAN;
    if (check_pm1(fn, "s", s, n, n) != CX_OK) return NAN;
    double q = 0.0; /* s^T C s, an exact integer */
    for (int i = 0; i < n; i++) q += (double)s[i] * count_field(h, s, i);
    return -0.5 * q / (double)n;
}

double cx_hopfield_overlap(const int8_t *a, const int8_t *b, int n) {
    if (!a || !b || n < 1) {
        cx_set_error(CX_ERR_ARG, "cx_hopfield_overlap: %s", n < 1 ? "n must be >= 1" : "a or b is NULL");
        return NAN;
    }
    long m = 0;
    for (int i = 0; i < n; i++) m += (long)a[i] * (long)b[i];
    return (double)m / (double)n;
}
