/* Stochastic policies and the score-function (REINFORCE) estimator:
 * sampling matches the distribution, log-probabilities and entropies match
 * their formulas (finite differences too), the estimator is unbiased on a
 * bandit (categorical) and on a continuous problem (Gaussian), discounted
 * returns and the masked surrogate loss are right, errors name the argument. */
#include "test.h"

static void categorical_sampling_matches_probabilities(void) {
    const int N = 30000;
    const float p[3] = {0.2f, 0.5f, 0.3f};
    cx_tensor *logits = cx_empty(CX_F32, CX_SHAPE(N, 3));
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 3; k++) CX_F(logits)[i * 3 + k] = logf(p[k]) + 1.7f; /* shift: same softmax */
    logits->requires_grad = true;
    cx_rng r = cx_rng_new(1);
    cx_tensor *logp;
    cx_tensor *a = cx_categorical_sample(logits, &r, &logp);
    CHECK(a->dtype == CX_I32 && a->ndim == 1 && a->shape[0] == N && logp->shape[0] == N);
    int count[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        int k = CX_I32P(a)[i];
        CHECK(k >= 0 && k < 3);
        count[k]++;
        CHECK_NEAR(CX_F(logp)[i], logf(p[k]), 1e-5);
    }
    for (int k = 0; k < 3; k++) CHECK_NEAR((double)count[k] / N, p[k], 0.01); /* sd ~ 0.003 */
    /* d sum(logp) / d logits = onehot(a) - p per row */
    cx_backward(cx_sum(logp));
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 3; k++)
            CHECK_NEAR(logits->grad[i * 3 + k], (CX_I32P(a)[i] == k ? 1.0f : 0.0f) - p[k], 1e-5);
    /* the same stream state gives the same draws; log_prob re-scores them */
    cx_rng r2 = cx_rng_new(1);
    cx_tensor *b = cx_categorical_sample(logits, &r2, NULL);
    CHECK(memcmp(a->data, b->data, (size_t)N * sizeof(int32_t)) == 0);
    cx_tensor *lp2 = cx_categorical_log_prob(logits, a);
    cxt_allclose(CX_F(lp2), CX_F(logp), N, 0, 0, "categorical_log_prob = the sample's logp");
    /* a class with probability 0 is never drawn */
    cx_tensor *masked = cx_from_data((const float[]){0.0f, -INFINITY, 0.0f, -INFINITY}, CX_SHAPE(2, 2));
    for (int rep = 0; rep < 50; rep++) CHECK(CX_I32P(cx_categorical_sample(masked, NULL, NULL))[0] == 0);
}

static void categorical_entropy_values(void) {
    cx_tensor *l = cx_from_data((const float[]){0, 0, 0, 0, 5, -5, 1, 2}, CX_SHAPE(2, 4));
    l->requires_grad = true;
    cx_tensor *h = cx_categorical_entropy(l);
    CHECK_NEAR(CX_F(h)[0], logf(4.0f), 1e-6);
    double z = exp(5) + exp(-5) + exp(1) + exp(2), e = 0;
    const double row[4] = {5, -5, 1, 2};
    for (int k = 0; k < 4; k++) {
        double q = exp(row[k]) / z;
        e -= q * log(q);
    }
    CHECK_NEAR(CX_F(h)[1], e, 1e-5);
}

/* A 3-armed bandit with rewards r = (1, 0, 2) and a softmax policy over
 * logits theta: J = sum_k p_k r_k, dJ/dtheta_j = p_j (r_j - J). The
 * REINFORCE loss over many sampled actions has gradient -dJ/dtheta in
 * expectation, with or without a baseline. */
static cx_tensor *g_theta;
static void bandit_estimate(bool baseline, double *err) {
    const int N = 40000;
    const float rew[3] = {1.0f, 0.0f, 2.0f};
    float *th = CX_F(g_theta);
    double z = exp(th[0]) + exp(th[1]) + exp(th[2]), p[3], J = 0;
    for (int k = 0; k < 3; k++) {
        p[k] = exp(th[k]) / z;
        J += p[k] * rew[k];
    }
    cx_zero_grad(g_theta);
    cx_tensor *logits = cx_add(cx_zeros(CX_SHAPE(N, 3)), g_theta); /* theta for every row */
    cx_tensor *logp;
    cx_rng r = cx_rng_new(baseline ? 11 : 12);
    cx_tensor *a = cx_categorical_sample(logits, &r, &logp);
    cx_tensor *R = cx_empty(CX_F32, CX_SHAPE(N));
    for (int i = 0; i < N; i++) CX_F(R)[i] = rew[CX_I32P(a)[i]];
    cx_tensor *b = baseline ? cx_full(CX_SHAPE(N), (float)J) : NULL;
    cx_backward(cx_reinforce_loss(logp, R, b, NULL, CX_REDUCE_MEAN));
    *err = 0;
    for (int j = 0; j < 3; j++) {
        double want = -p[j] * (rew[j] - J), d = fabs(g_theta->grad[j] - want);
        if (d > *err) *err = d;
    }
    cx_step_reset();
}

static void reinforce_unbiased_on_a_bandit(void) {
    g_theta = cx_param_new("theta", CX_SHAPE(3));
    CX_F(g_theta)[0] = 0.3f;
    CX_F(g_theta)[1] = -0.2f;
    CX_F(g_theta)[2] = 0.1f;
    double e0, e1;
    bandit_estimate(false, &e0);
    bandit_estimate(true, &e1);
    /* per-sample gradient sd <= ~1: the mean of 40000 has sd <= 0.005 */
    CHECK_MSG(e0 < 0.02, "no baseline: worst gradient error %g", e0);
    CHECK_MSG(e1 < 0.02, "baseline J: worst gradient error %g", e1);
    cx_tensor_free(g_theta);
}

/* Gaussian policy a ~ N(mu, sigma^2), reward -(a - 3)^2: J = -(mu - 3)^2 -
 * sigma^2, dJ/dmu = -2 (mu - 3), dJ/dlog_sigma = -2 sigma^2. */
static void reinforce_unbiased_gaussian(void) {
    const int N = 200000;
    cx_tensor *mu = cx_param_new("mu", CX_SHAPE(1)), *ls = cx_param_new("log_std", CX_SHAPE(1));
    CX_F(mu)[0] = 1.0f;
    CX_F(ls)[0] = logf(0.5f);
    cx_tensor *mean = cx_add(cx_zeros(CX_SHAPE(N, 1)), mu);
    cx_tensor *logp;
    cx_rng r = cx_rng_new(3);
    cx_tensor *a = cx_normal_sample(mean, ls, &r, &logp);
    CHECK(!a->requires_grad && a->shape[0] == N && a->shape[1] == 1 && logp->shape[0] == N);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += CX_F(a)[i];
    m /= N;
    for (int i = 0; i < N; i++) v += (CX_F(a)[i] - m) * (CX_F(a)[i] - m);
    CHECK_NEAR(m, 1.0, 0.01);
    CHECK_NEAR(sqrt(v / N), 0.5, 0.01);
    cx_tensor *R = cx_empty(CX_F32, CX_SHAPE(N)), *b = cx_full(CX_SHAPE(N), -(4.0f + 0.25f));
    for (int i = 0; i < N; i++) CX_F(R)[i] = -(CX_F(a)[i] - 3) * (CX_F(a)[i] - 3);
    cx_backward(cx_reinforce_loss(logp, R, b, NULL, CX_REDUCE_MEAN));
    CHECK_NEAR(mu->grad[0], 2.0 * (1.0 - 3.0), 0.08);  /* -dJ/dmu = 2 (mu - 3) = -4 */
    CHECK_NEAR(ls->grad[0], 2.0 * 0.25, 0.03);         /* -dJ/dlog_sigma = 2 sigma^2 */
    cx_step_reset();
    cx_tensor_free(mu);
    cx_tensor_free(ls);
}

typedef struct { cx_tensor *a; } lp_ctx;
static cx_tensor *lp_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    return cx_sum(cx_normal_log_prob(in[0], in[1], ((lp_ctx *)user)->a));
}

static void normal_log_prob_formula_and_gradients(void) {
    cx_tensor *mean = cx_from_data((const float[]){0.5f, -1.0f, 2.0f, 0.0f, 0.3f, 1.1f}, CX_SHAPE(2, 3));
    cx_tensor *ls = cx_from_data((const float[]){-0.2f, 0.4f, 0.1f}, CX_SHAPE(3));
    cx_tensor *a = cx_from_data((const float[]){0.9f, -0.1f, 1.0f, -0.7f, 0.8f, 2.5f}, CX_SHAPE(2, 3));
    cx_tensor *lp = cx_normal_log_prob(mean, ls, a);
    for (int i = 0; i < 2; i++) {
        double want = 0;
        for (int d = 0; d < 3; d++) {
            double s = exp(CX_F(ls)[d]), z = (CX_F(a)[i * 3 + d] - CX_F(mean)[i * 3 + d]) / s;
            want += -0.5 * z * z - log(s) - 0.5 * log(2 * 3.14159265358979323846);
        }
        CHECK_NEAR(CX_F(lp)[i], want, 1e-5);
    }
    mean->requires_grad = ls->requires_grad = true;
    lp_ctx c = {a};
    cx_tensor *in[2] = {mean, ls};
    double worst = cx_gradcheck(lp_fn, in, 2, &c, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "gradcheck ratio %g", worst);
    /* per-row log_std */
    cx_tensor *ls2 = cx_from_data((const float[]){-0.2f, 0.4f, 0.1f, -0.2f, 0.4f, 0.1f}, CX_SHAPE(2, 3));
    cxt_allclose(CX_F(cx_normal_log_prob(mean, ls2, a)), CX_F(lp), 2, 1e-6, 1e-6, "log_std [N, D] = [D]");
}

static void discounted_returns_values(void) {
    cx_tensor *r = cx_from_data((const float[]){1, 2, 3, 4, 1, 1, 1, 1}, CX_SHAPE(2, 4));
    int32_t dn[8] = {0, 0, 0, 0, 0, 1, 0, 0};
    cx_tensor *done = cx_from_i32(dn, CX_SHAPE(2, 4));
    cx_tensor *R = cx_discounted_returns(r, done, 0.5f);
    const float want[8] = {1 + 0.5f * (2 + 0.5f * (3 + 0.5f * 4)), 2 + 0.5f * (3 + 0.5f * 4), 3 + 0.5f * 4, 4,
                           1 + 0.5f * 1, 1, 1 + 0.5f * 1, 1};
    cxt_allclose(CX_F(R), want, 8, 1e-6, 1e-6, "discounted returns with a done at (1, 1)");
    CHECK(!R->requires_grad);
    cx_tensor *R1 = cx_discounted_returns(r, NULL, 1.0f);
    CHECK(CX_F(R1)[0] == 10.0f && CX_F(R1)[4] == 4.0f);
    EXPECT_FATAL(cx_discounted_returns(r, NULL, 1.5f), "gamma");
}

static void reinforce_loss_mask_and_reductions(void) {
    cx_tensor *logp = cx_from_data((const float[]){-1, -2, -0.5f, -3}, CX_SHAPE(2, 2));
    logp->requires_grad = true;
    cx_tensor *R = cx_from_data((const float[]){2, 1, 4, 0}, CX_SHAPE(2, 2));
    cx_tensor *b = cx_from_data((const float[]){1, 1, 1, 1}, CX_SHAPE(2, 2));
    b->requires_grad = true;
    int32_t mk[4] = {1, 1, 1, 0};
    cx_tensor *mask = cx_from_i32(mk, CX_SHAPE(2, 2));
    /* terms -(R - b) logp: 1, 0, 1.5, (masked) */
    cx_tensor *none = cx_reinforce_loss(logp, R, b, mask, CX_REDUCE_NONE);
    const float wn[4] = {1, 0, 1.5f, 0};
    cxt_allclose(CX_F(none), wn, 4, 0, 1e-6, "per-position terms");
    CHECK_NEAR(cx_item(cx_reinforce_loss(logp, R, b, mask, CX_REDUCE_SUM)), 2.5, 1e-6);
    cx_tensor *mean = cx_reinforce_loss(logp, R, b, mask, CX_REDUCE_MEAN);
    CHECK_NEAR(cx_item(mean), 2.5 / 3, 1e-6);
    cx_backward(mean);
    const float g[4] = {-1.0f / 3, 0, -1.0f, 0};
    cxt_allclose(logp->grad, g, 4, 0, 1e-6, "d loss / d logp = -(R - b) mask / count");
    CHECK(b->grad == NULL); /* the baseline is a constant here */
    EXPECT_FATAL(cx_reinforce_loss(logp, cx_zeros(CX_SHAPE(3)), NULL, NULL, CX_REDUCE_MEAN), "returns");
    EXPECT_FATAL(cx_reinforce_loss(logp, R, cx_zeros(CX_SHAPE(4)), NULL, CX_REDUCE_MEAN), "baseline");
    EXPECT_FATAL(cx_categorical_sample(cx_zeros(CX_SHAPE(3)), NULL, NULL), "logits");
    EXPECT_FATAL(cx_categorical_sample(cx_full(CX_SHAPE(1, 2), NAN), NULL, NULL), "no finite probability");
    EXPECT_FATAL(cx_normal_sample(cx_zeros(CX_SHAPE(2, 3)), cx_zeros(CX_SHAPE(2)), NULL, NULL), "log_std");
    EXPECT_FATAL(cx_categorical_log_prob(cx_zeros(CX_SHAPE(2, 3)), cx_from_i32((const int32_t[]){0, 3}, CX_SHAPE(2))),
                 "out of range");
}

int main(void) {
    cx_set_threads(1);
    RUN(categorical_sampling_matches_probabilities);
    RUN(categorical_entropy_values);
    RUN(reinforce_unbiased_on_a_bandit);
    RUN(reinforce_unbiased_gaussian);
    RUN(normal_log_prob_formula_and_gradients);
    RUN(discounted_returns_values);
    RUN(reinforce_loss_mask_and_reductions);
    TEST_END();
}
