/* Stochastic policies and the score-function (REINFORCE) estimator, composed
 * from differentiable ops (see include/cortex/rl.h). */
#include <math.h>
#include <stdio.h>

#include "../tensor/internal.h"

static void need_f32(const char *fn, const char *what, const cx_tensor *t) {
    if (!t) cx_fatal("%s: %s is NULL", fn, what);
    if (t->dtype != CX_F32) {
        char s[96];
        cx_fatal("%s: %s must be F32, got %s %s", fn, what, cx_dtype_name(t->dtype), cx_shape_str(t, s, sizeof s));
    }
}

static int64_t int_at(const cx_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CX_I32: return CX_I32P(t)[i];
    case CX_I64: return CX_I64P(t)[i];
    case CX_F32: return (int64_t)CX_F(t)[i];
    }
    return 0;
}

/* log p(a) = log_softmax(logits)[i, a_i] as [N], from the log-softmax lsm
 * [N, K] and I32 actions [N, 1]. */
static cx_tensor *pick(cx_tensor *lsm, const cx_tensor *idx) {
    return cx_reshape(cx_gather(lsm, 1, idx), (const int[]){lsm->shape[0]}, 1);
}

static void need_logits(const char *fn, const cx_tensor *logits) {
    need_f32(fn, "logits", logits);
    char s[96];
    if (logits->ndim != 2 || logits->shape[1] < 1)
        cx_fatal("%s: logits must be [N, K] with K >= 1, got %s", fn, cx_shape_str(logits, s, sizeof s));
}

cx_tensor *cx_categorical_sample(cx_tensor *logits, cx_rng *rng, cx_tensor **logp) {
    need_logits("categorical_sample", logits);
    if (!rng) rng = cx_rng_current();
    const int N = logits->shape[0], K = logits->shape[1];
    cx_tensor *lsm = cx_log_softmax(logits, 1);
    cx_tensor *a = cx_empty(CX_I32, (const int[]){N, 1}, 2);
    const float *l = CX_F(lsm);
    for (int i = 0; i < N; i++) {
        const float *row = l + (int64_t)i * K;
        double total = 0;
        for (int k = 0; k < K; k++) total += exp((double)row[k]);
        if (!(total > 0) || !isfinite(total))
            cx_fatal("categorical_sample: row %d of the logits has no finite probability (all -inf or NaN)", i);
        /* inverse CDF with one uniform draw; the last non-zero class takes
         * what rounding leaves */
        double u = (double)cx_rng_uniform(rng) * total, acc = 0;
        int pick_k = -1;
        for (int k = 0; k < K; k++) {
            double p = exp((double)row[k]);
            if (p > 0) pick_k = k;
            acc += p;
            if (u < acc && p > 0) break;
        }
        CX_I32P(a)[i] = pick_k;
    }
    if (logp) *logp = pick(lsm, a);
    return cx_reshape(a, (const int[]){N}, 1);
}

cx_tensor *cx_categorical_log_prob(cx_tensor *logits, const cx_tensor *actions) {
    need_logits("categorical_log_prob", logits);
    const int N = logits->shape[0], K = logits->shape[1];
    char s1[96], s2[96];
    if (!actions || (actions->dtype != CX_I32 && actions->dtype != CX_I64) || actions->numel != N)
        cx_fatal("categorical_log_prob: actions must be I32/I64 with one per row of logits %s, got %s",
                 cx_shape_str(logits, s1, sizeof s1), actions ? cx_shape_str(actions, s2, sizeof s2) : "NULL");
    cx_tensor *idx = cx_empty(CX_I32, (const int[]){N, 1}, 2);
    for (int i = 0; i < N; i++) {
        int64_t v = int_at(actions, i);
        if (v < 0 || v >= K) cx_fatal("categorical_log_prob: action %lld at row %d out of range [0, %d)", (long long)v, i, K);
        CX_I32P(idx)[i] = (int32_t)v;
    }
    return pick(cx_log_softmax(logits, 1), idx);
}

cx_tensor *cx_categorical_entropy(cx_tensor *logits) {
    need_logits("categorical_entropy", logits);
    cx_tensor *lsm = cx_log_softmax(logits, 1);
    return cx_neg(cx_sum_axis(cx_mul(cx_exp(lsm), lsm), 1, false));
}

static void need_gaussian(const char *fn, const cx_tensor *mean, const cx_tensor *log_std) {
    need_f32(fn, "mean", mean);
    need_f32(fn, "log_std", log_std);
    char s1[96], s2[96];
    if (mean->ndim != 2)
        cx_fatal("%s: mean must be [N, D], got %s", fn, cx_shape_str(mean, s1, sizeof s1));
    const int D = mean->shape[1];
    bool ok = (log_std->ndim == 1 && log_std->shape[0] == D) ||
              (log_std->ndim == 2 && log_std->shape[0] == mean->shape[0] && log_std->shape[1] == D);
    if (!ok)
        cx_fatal("%s: log_std %s must be [D] or [N, D] for mean %s", fn, cx_shape_str(log_std, s2, sizeof s2),
                 cx_shape_str(mean, s1, sizeof s1));
}

cx_tensor *cx_normal_log_prob(cx_tensor *mean, cx_tensor *log_std, const cx_tensor *a) {
    need_gaussian("normal_log_prob", mean, log_std);
    char s1[96], s2[96];
    if (!a || a->dtype != CX_F32 || !cx_same_shape(a, mean))
        cx_fatal("normal_log_prob: samples %s must be F32 with the shape of mean %s",
                 a ? cx_shape_str(a, s1, sizeof s1) : "NULL", cx_shape_str(mean, s2, sizeof s2));
    cx_tensor *ac = cx_detach((cx_tensor *)a);
    /* z = (a - mean) / std; log p = sum_d -0.5 z^2 - log std - 0.5 log(2 pi) */
    cx_tensor *z = cx_mul(cx_sub(ac, mean), cx_exp(cx_neg(log_std)));
    cx_tensor *terms = cx_sub(cx_mul_scalar(cx_mul(z, z), -0.5f), log_std);
    const float half_log_2pi = 0.91893853320467274f;
    return cx_add_scalar(cx_sum_axis(terms, 1, false), -half_log_2pi * (float)mean->shape[1]);
}

cx_tensor *cx_normal_sample(cx_tensor *mean, cx_tensor *log_std, cx_rng *rng, cx_tensor **logp) {
    need_gaussian("normal_sample", mean, log_std);
    if (!rng) rng = cx_rng_current();
    const int N = mean->shape[0], D = mean->shape[1];
    const bool per_row = log_std->ndim == 2;
    cx_tensor *a = cx_empty(CX_F32, mean->shape, 2);
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) {
            const float ls = CX_F(log_std)[per_row ? (int64_t)i * D + d : d];
            CX_F(a)[(int64_t)i * D + d] = CX_F(mean)[(int64_t)i * D + d] + expf(ls) * cx_rng_normal(rng);
        }
    if (logp) *logp = cx_normal_log_prob(mean, log_std, a);
    return a;
}

cx_tensor *cx_discounted_returns(const cx_tensor *rewards, const cx_tensor *done, float gamma) {
    need_f32("discounted_returns", "rewards", rewards);
    char s1[96], s2[96];
    if (rewards->ndim < 1) cx_fatal("discounted_returns: rewards must have a time axis, got a 0-d tensor");
    if (!(gamma >= 0 && gamma <= 1)) cx_fatal("discounted_returns: gamma must be in [0, 1], got %g", (double)gamma);
    if (done && !cx_same_shape(done, rewards))
        cx_fatal("discounted_returns: done %s must have the shape of rewards %s", cx_shape_str(done, s1, sizeof s1),
                 cx_shape_str(rewards, s2, sizeof s2));
    const int T = rewards->shape[rewards->ndim - 1];
    const int64_t rows = T ? rewards->numel / T : 0;
    cx_tensor *R = cx_empty(CX_F32, rewards->shape, rewards->ndim);
    for (int64_t r = 0; r < rows; r++) {
        double acc = 0;
        for (int t = T - 1; t >= 0; t--) {
            const int64_t i = r * T + t;
            if (done && int_at(done, i) != 0) acc = 0;
            acc = (double)CX_F(rewards)[i] + (double)gamma * acc;
            CX_F(R)[i] = (float)acc;
        }
    }
    return R;
}

cx_tensor *cx_reinforce_loss(cx_tensor *logp, const cx_tensor *returns, cx_tensor *baseline, const cx_tensor *mask,
                             cx_reduction r) {
    need_f32("reinforce_loss", "logp", logp);
    need_f32("reinforce_loss", "returns", returns);
    char s1[96], s2[96];
    if (!cx_same_shape(returns, logp))
        cx_fatal("reinforce_loss: returns %s must have the shape of logp %s", cx_shape_str(returns, s1, sizeof s1),
                 cx_shape_str(logp, s2, sizeof s2));
    if (baseline) {
        need_f32("reinforce_loss", "baseline", baseline);
        if (!cx_same_shape(baseline, logp))
            cx_fatal("reinforce_loss: baseline %s must have the shape of logp %s",
                     cx_shape_str(baseline, s1, sizeof s1), cx_shape_str(logp, s2, sizeof s2));
    }
    if (mask && mask->numel != logp->numel)
        cx_fatal("reinforce_loss: mask %s must have the shape of logp %s", cx_shape_str(mask, s1, sizeof s1),
                 cx_shape_str(logp, s2, sizeof s2));
    /* the weights (R - b) * mask are constants: no gradient to the returns or the baseline */
    cx_tensor *w = cx_empty(CX_F32, logp->shape, logp->ndim);
    int64_t count = 0;
    for (int64_t i = 0; i < logp->numel; i++) {
        const bool on = !mask || (mask->dtype == CX_F32 ? CX_F(mask)[i] != 0.0f : int_at(mask, i) != 0);
        count += on;
        CX_F(w)[i] = on ? CX_F(returns)[i] - (baseline ? CX_F(baseline)[i] : 0.0f) : 0.0f;
    }
    cx_tensor *terms = cx_neg(cx_mul(logp, w));
    switch (r) {
    case CX_REDUCE_NONE: return terms;
    case CX_REDUCE_SUM: return cx_sum(terms);
    case CX_REDUCE_MEAN: return cx_mul_scalar(cx_sum(terms), count ? 1.0f / (float)count : NAN);
    }
    cx_fatal("reinforce_loss: unknown reduction %d", (int)r);
}
