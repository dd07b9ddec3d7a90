/* Shared helpers of the primal and kernel perceptrons (see perceptron_common.h). */
#include <math.h>
#include <stdlib.h>

#include "cortex/models.h"
#include "perceptron_common.h"

/* Common checks of X [N, D] and t [N]. */
cx_status cx_pc_check_data(const char *fn, const float *X, const float *t, int N, int D) {
    if (N <= 0) return cx_set_error(CX_ERR_ARG, "%s: need at least one example (N = %d)", fn, N);
    if (D <= 0) return cx_set_error(CX_ERR_ARG, "%s: input dimension must be >= 1 (D = %d)", fn, D);
    if (!X || !t) return cx_set_error(CX_ERR_ARG, "%s: X and t must not be NULL", fn);
    for (int i = 0; i < N; i++) {
        if (t[i] != 1.0f && t[i] != -1.0f)
            return cx_set_error(CX_ERR_ARG, "%s: label t[%d] = %g is not -1 or +1", fn, i,
                                (double)t[i]);
    }
    int64_t n = (int64_t)N * D;
    for (int64_t k = 0; k < n; k++) {
        if (!isfinite(X[k]))
            return cx_set_error(CX_ERR_NUMERIC, "%s: X[%lld][%lld] is not finite", fn,
                                (long long)(k / D), (long long)(k % D));
    }
    return CX_OK;
}

/* Unpack tensors X F32 [N, D] and t F32/I32 [N]. *tbuf gets a malloc'd copy
 * of the labels when t is I32 (caller frees). */
cx_status cx_pc_unpack(const char *fn, const cx_tensor *X, const cx_tensor *t,
                      const float **Xp, const float **tp, float **tbuf, int *N,
                      int *D) {
    *tbuf = NULL;
    if (!X || !t) return cx_set_error(CX_ERR_ARG, "%s: X and t must not be NULL", fn);
    if (X->dtype != CX_F32 || X->ndim != 2)
        return cx_set_error(CX_ERR_SHAPE, "%s: X must be an F32 [N, D] tensor (got %s, %d dims)",
                            fn, cx_dtype_name(X->dtype), X->ndim);
    if ((t->dtype != CX_F32 && t->dtype != CX_I32) || t->ndim != 1)
        return cx_set_error(CX_ERR_SHAPE, "%s: t must be an F32 or I32 [N] tensor (got %s, %d dims)",
                            fn, cx_dtype_name(t->dtype), t->ndim);
    if (t->shape[0] != X->shape[0])
        return cx_set_error(CX_ERR_SHAPE, "%s: X has %d rows but t has %d labels", fn,
                            X->shape[0], t->shape[0]);
    *N = X->shape[0];
    *D = X->shape[1];
    *Xp = (const float *)X->data;
    if (t->dtype == CX_F32) {
        *tp = (const float *)t->data;
    } else {
        int n = t->shape[0];
        float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof *b);
        if (!b) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", fn);
        const int32_t *ti = (const int32_t *)t->data;
        for (int i = 0; i < n; i++) b[i] = (float)ti[i];
        *tbuf = b;
        *tp = b;
    }
    return CX_OK;
}

/* Fisher-Yates shuffle of idx[0..n) with the library PRNG. */
void cx_pc_shuffle(int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cx_rand_below((uint32_t)i + 1u);
        int tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
}
