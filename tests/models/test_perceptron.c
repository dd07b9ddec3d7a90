/* Tests of the Rosenblatt perceptron and the kernel perceptron (models.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* ---------------------------------------------------------------- data */
/* N points uniform in [-1, 1]^D with |<w*, x> + b*| >= gap, labelled by the
 * sign of <w*, x> + b*. The separator (w*, b*) is known. */
static void gen_separable(float *X, float *t, int N, int D, const float *ws, float bs, float gap) {
    for (int i = 0; i < N; i++) {
        float *x = X + (size_t)i * D;
        double s;
        do {
            s = bs;
            for (int j = 0; j < D; j++) {
                x[j] = 2.0f * cx_rand_uniform() - 1.0f;
                s += (double)ws[j] * x[j];
            }
        } while (fabs(s) < gap);
        t[i] = s > 0 ? 1.0f : -1.0f;
    }
}

/* Two overlapping Gaussian blobs centred at +-0.5 (std 1): not separable. */
static void gen_overlap(float *X, float *t, int N) {
    for (int i = 0; i < N; i++) {
        float c = (i % 2) ? 0.5f : -0.5f;
        X[2 * i] = c + cx_rand_normal();
        X[2 * i + 1] = c + cx_rand_normal();
        t[i] = (i % 2) ? 1.0f : -1.0f;
    }
}

/* Concentric circles: t = +1 inside radius 0.5, t = -1 on the ring 0.8..1.2. */
static void gen_circles(float *X, float *t, int N) {
    for (int i = 0; i < N; i++) {
        bool inner = (i % 2) == 0;
        float r = inner ? 0.5f * sqrtf(cx_rand_uniform()) : 0.8f + 0.4f * cx_rand_uniform();
        float a = 6.283185307f * cx_rand_uniform();
        X[2 * i] = r * cosf(a);
        X[2 * i + 1] = r * sinf(a);
        t[i] = inner ? 1.0f : -1.0f;
    }
}

/* Noisy XOR: four tight clusters at (+-1, +-1), label sign(x1 * x2). */
static void gen_xor(float *X, float *t, int N) {
    for (int i = 0; i < N; i++) {
        float sx = (i & 1) ? 1.0f : -1.0f, sy = (i & 2) ? 1.0f : -1.0f;
        X[2 * i] = sx + 0.15f * cx_rand_normal();
        X[2 * i + 1] = sy + 0.15f * cx_rand_normal();
        t[i] = sx * sy;
    }
}

static const float XOR4_X[8] = {-1, -1, -1, 1, 1, -1, 1, 1};
static const float XOR4_T[4] = {1, -1, -1, 1};

/* ---------------------------------------------------------------- (1) 2-D separable */
static void check_separable_run(const float *X, const float *t, int N, int D, const float *ws,
                                float bs, bool use_bias, float gap) {
    cx_margin_info mi;
    CHECK(cx_perceptron_margin(X, t, N, D, ws, bs, use_bias, &mi) == CX_OK);
    double nrm = use_bias ? (double)bs * bs : 0.0;
    for (int j = 0; j < D; j++) nrm += (double)ws[j] * ws[j];
    CHECK_MSG(mi.margin >= gap / sqrt(nrm) - 1e-6, "margin %g < %g", mi.margin, gap / sqrt(nrm));
    CHECK(isfinite(mi.bound) && mi.bound > 0);

    cx_perceptron_opts o = cx_perceptron_defaults();
    o.use_bias = use_bias;
    o.max_epochs = 1000;
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        o.shuffle = shuffle;
        cx_perceptron p;
        CHECK(cx_perceptron_train(&p, X, t, N, D, &o) == CX_OK);
        CHECK(p.converged);
        CHECK(p.epochs < o.max_epochs);
        CHECK(p.epochs >= 2); /* first epoch always updates (w = 0) */
        CHECK(p.epoch_mistakes[p.epochs - 1] == 0);
        CHECK(p.epoch_mistakes[0] >= 1);
        int64_t sum = 0;
        for (int e = 0; e < p.epochs; e++) sum += p.epoch_mistakes[e];
        CHECK(sum == p.updates);
        CHECK_MSG((double)p.updates <= mi.bound, "updates %lld > bound %g",
                  (long long)p.updates, mi.bound);
        CHECK(p.train_errors == 0);
        CHECK_NEAR(cx_perceptron_accuracy(&p, X, t, N), 1.0, 0);
        for (int i = 0; i < N; i++) CHECK(t[i] * cx_perceptron_decision(&p, X + (size_t)i * D) > 0);
        char buf[160];
        cx_perceptron_describe(&p, buf, sizeof buf);
        CHECK_MSG(strncmp(buf, "converged", 9) == 0, "%s", buf);
        if (!use_bias) CHECK(p.bias == 0.0f);
        cx_perceptron_free(&p);
        CHECK(p.w == NULL);
        cx_perceptron_free(&p); /* idempotent */
    }
}

static void test_separable_2d(void) {
    cx_seed(1);
    enum { N = 300 };
    static float X[N * 2], t[N];
    /* Through the origin, no bias. */
    const float w1[2] = {0.6f, 0.8f};
    gen_separable(X, t, N, 2, w1, 0.0f, 0.1f);
    check_separable_run(X, t, N, 2, w1, 0.0f, false, 0.1f);
    /* Affine separator, learned with the augmented phi(x) = [x, 1]. */
    const float w2[2] = {-0.8f, 0.6f};
    gen_separable(X, t, N, 2, w2, 0.3f, 0.1f);
    check_separable_run(X, t, N, 2, w2, 0.3f, true, 0.1f);
}

/* ---------------------------------------------------------------- (2) higher dimension */
static void test_separable_highdim(void) {
    cx_seed(2);
    enum { N = 500, D = 20 };
    static float X[N * D], t[N];
    float ws[D];
    double n2 = 0;
    for (int j = 0; j < D; j++) {
        ws[j] = cx_rand_normal();
        n2 += (double)ws[j] * ws[j];
    }
    for (int j = 0; j < D; j++) ws[j] = (float)(ws[j] / sqrt(n2));
    gen_separable(X, t, N, D, ws, -0.1f, 0.15f);
    check_separable_run(X, t, N, D, ws, -0.1f, true, 0.15f);
}

/* The margin helper on a hand-made example. */
static void test_margin_by_hand(void) {
    const float X[6] = {3, 4, -1, 0, 0, -2};
    const float t[3] = {1, -1, -1};
    const float w[2] = {0, 2}; /* normalised to (0, 1) */
    cx_margin_info mi;
    CHECK(cx_perceptron_margin(X, t, 3, 2, w, 5.0f, false, &mi) == CX_OK);
    CHECK_NEAR(mi.margin, 0.0, 1e-12); /* the point (-1, 0) lies on the line */
    CHECK_NEAR(mi.radius, 5.0, 1e-12);
    CHECK(isinf(mi.bound));
    const float w2[2] = {1, 1};
    CHECK(cx_perceptron_margin(X, t, 3, 2, w2, 0.0f, false, &mi) == CX_OK);
    /* t <u, x> with u = (1,1)/sqrt 2: 7/sqrt2, 1/sqrt2, 2/sqrt2 */
    CHECK_NEAR(mi.margin, 1.0 / sqrt(2.0), 1e-7);
    CHECK_NEAR(mi.bound, 25.0 / 0.5, 1e-5);
    /* With bias: u = (1, 1, 1) / sqrt 3, phi = [x, 1]. */
    CHECK(cx_perceptron_margin(X, t, 3, 2, w2, 1.0f, true, &mi) == CX_OK);
    CHECK_NEAR(mi.radius, sqrt(26.0), 1e-6);
    CHECK_NEAR(mi.margin, 0.0, 1e-7); /* (-1, 0): -1 * (-1 + 0 + 1) = 0 */
}

/* The number of updates does not depend on eta (start at w = 0). */
static void test_eta_invariance(void) {
    cx_seed(3);
    enum { N = 200 };
    static float X[N * 2], t[N];
    const float w[2] = {0.6f, -0.8f};
    gen_separable(X, t, N, 2, w, 0.2f, 0.05f);
    cx_perceptron_opts o = cx_perceptron_defaults();
    o.shuffle = false;
    o.max_epochs = 1000;
    cx_perceptron a, b;
    o.eta = 1.0f;
    CHECK(cx_perceptron_train(&a, X, t, N, 2, &o) == CX_OK);
    o.eta = 0.25f; /* a power of two: the weights are exactly scaled */
    CHECK(cx_perceptron_train(&b, X, t, N, 2, &o) == CX_OK);
    CHECK(a.converged && b.converged);
    CHECK(a.updates == b.updates);
    CHECK(a.epochs == b.epochs);
    CHECK_NEAR(b.w[0], 0.25 * a.w[0], 1e-6);
    CHECK_NEAR(b.w[1], 0.25 * a.w[1], 1e-6);
    CHECK_NEAR(b.bias, 0.25 * a.bias, 1e-6);
    cx_perceptron_free(&a);
    cx_perceptron_free(&b);
}

/* ---------------------------------------------------------------- (3) not separable */
static void test_not_separable(void) {
    cx_perceptron_opts o = cx_perceptron_defaults();
    o.max_epochs = 37;
    cx_perceptron p;
    cx_seed(4);
    /* The four XOR corners: certainly not linearly separable. */
    for (int bias = 0; bias < 2; bias++) {
        o.use_bias = bias;
        CHECK(cx_perceptron_train(&p, XOR4_X, XOR4_T, 4, 2, &o) == CX_OK);
        CHECK(!p.converged);
        CHECK(p.epochs == 37);
        CHECK(p.max_epochs == 37);
        CHECK(p.train_errors > 0);
        for (int e = 0; e < p.epochs; e++) CHECK(p.epoch_mistakes[e] > 0);
        char buf[160];
        cx_perceptron_describe(&p, buf, sizeof buf);
        CHECK_MSG(strstr(buf, "did not converge") != NULL && strstr(buf, "37") != NULL, "%s", buf);
        cx_perceptron_free(&p);
    }
    /* Overlapping Gaussian blobs. */
    enum { N = 400 };
    static float X[N * 2], t[N];
    gen_overlap(X, t, N);
    o.use_bias = true;
    o.max_epochs = 50;
    CHECK(cx_perceptron_train(&p, X, t, N, 2, &o) == CX_OK);
    CHECK(!p.converged);
    CHECK(p.epochs == 50);
    CHECK(p.train_errors > 0);
    CHECK(p.updates >= 50);
    cx_perceptron_free(&p);
    /* The same point with both labels. */
    const float Xd[4] = {1, 2, 1, 2}, td[2] = {1, -1};
    CHECK(cx_perceptron_train(&p, Xd, td, 2, 2, &o) == CX_OK);
    CHECK(!p.converged && p.epochs == 50);
    cx_perceptron_free(&p);
}

/* ---------------------------------------------------------------- tensors */
static void test_tensor_api(void) {
    cx_seed(5);
    enum { N = 100 };
    cx_tensor *X = cx_tensor_new(CX_F32, CX_SHAPE(N, 3));
    cx_tensor *t = cx_tensor_new(CX_F32, CX_SHAPE(N));
    cx_tensor *ti = cx_tensor_new(CX_I32, CX_SHAPE(N));
    const float w[3] = {0.5f, -0.5f, 0.7071f};
    gen_separable(CX_F(X), CX_F(t), N, 3, w, 0.1f, 0.05f);
    for (int i = 0; i < N; i++) CX_I32P(ti)[i] = (int32_t)CX_F(t)[i];
    cx_perceptron_opts o = cx_perceptron_defaults();
    o.shuffle = false;
    o.max_epochs = 1000;
    cx_perceptron a, b, c;
    CHECK(cx_perceptron_train_t(&a, X, t, &o) == CX_OK);
    CHECK(cx_perceptron_train_t(&b, X, ti, &o) == CX_OK);
    CHECK(cx_perceptron_train(&c, CX_F(X), CX_F(t), N, 3, &o) == CX_OK);
    CHECK(a.converged && a.dim == 3 && a.n_train == N);
    CHECK(a.updates == b.updates && a.updates == c.updates);
    CHECK(memcmp(a.w, c.w, 3 * sizeof(float)) == 0);
    float pred[N];
    cx_perceptron_predict_batch(&a, CX_F(X), N, pred);
    for (int i = 0; i < N; i++) CHECK(pred[i] == CX_F(t)[i]);

    cx_kperceptron_opts ko = cx_kperceptron_defaults();
    ko.shuffle = false;
    ko.max_epochs = 1000;
    cx_kernel lin = cx_kernel_linear();
    cx_kperceptron ka;
    CHECK(cx_kperceptron_train_t(&ka, &lin, X, ti, &ko) == CX_OK);
    CHECK(ka.converged && ka.train_errors == 0);
    cx_kperceptron_free(&ka);

    cx_perceptron_free(&a);
    cx_perceptron_free(&b);
    cx_perceptron_free(&c);

    /* Shape / dtype errors are returned. */
    cx_tensor *bad = cx_tensor_new(CX_F32, CX_SHAPE(N - 1));
    CHECK(cx_perceptron_train_t(&c, X, bad, &o) == CX_ERR_SHAPE);
    CHECK(strstr(cx_last_error(), "rows") != NULL);
    CHECK(c.w == NULL);
    CHECK(cx_perceptron_train_t(&c, ti, t, &o) == CX_ERR_SHAPE);
    CHECK(strstr(cx_last_error(), "F32") != NULL);
    CHECK(cx_kperceptron_train_t(&ka, &lin, X, bad, &ko) == CX_ERR_SHAPE);
    CHECK(ka.alpha == NULL);
    cx_tensor_free(bad);
    cx_tensor_free(X);
    cx_tensor_free(t);
    cx_tensor_free(ti);
}

/* ---------------------------------------------------------------- (5) determinism */
static void test_determinism(void) {
    cx_seed(6);
    enum { N = 300 };
    static float X[N * 2], t[N];
    const float w[2] = {0.28f, 0.96f};
    gen_separable(X, t, N, 2, w, -0.1f, 0.02f);
    cx_perceptron_opts o = cx_perceptron_defaults();
    o.max_epochs = 1000;
    cx_perceptron a, b;
    cx_seed(1234);
    CHECK(cx_perceptron_train(&a, X, t, N, 2, &o) == CX_OK);
    cx_seed(1234);
    CHECK(cx_perceptron_train(&b, X, t, N, 2, &o) == CX_OK);
    CHECK(a.converged);
    CHECK(a.updates == b.updates);
    CHECK(a.epochs == b.epochs);
    CHECK(memcmp(a.w, b.w, 2 * sizeof(float)) == 0);
    CHECK(a.bias == b.bias);
    CHECK(memcmp(a.epoch_mistakes, b.epoch_mistakes, (size_t)a.epochs * sizeof(int)) == 0);
    cx_perceptron_free(&a);
    cx_perceptron_free(&b);

    static float Xc[N * 2], tc[N];
    gen_circles(Xc, tc, N);
    cx_kernel k = cx_kernel_rbf(2.0f);
    cx_kperceptron ka, kb;
    cx_seed(99);
    CHECK(cx_kperceptron_train(&ka, &k, Xc, tc, N, 2, NULL) == CX_OK);
    cx_seed(99);
    CHECK(cx_kperceptron_train(&kb, &k, Xc, tc, N, 2, NULL) == CX_OK);
    CHECK(ka.updates == kb.updates && ka.n_sv == kb.n_sv && ka.epochs == kb.epochs);
    CHECK(memcmp(ka.alpha, kb.alpha, N * sizeof(int32_t)) == 0);
    cx_kperceptron_free(&ka);
    cx_kperceptron_free(&kb);
}

/* ---------------------------------------------------------------- (6) kernel values */
static void test_kernel_values(void) {
    const float x[2] = {1, 2}, y[2] = {3, -1};
    cx_kernel k = cx_kernel_linear();
    CHECK_NEAR(cx_kernel_eval(&k, x, y, 2), 1.0, 1e-12);
    k = cx_kernel_poly(2, 0.5f, 1.0f);
    CHECK_NEAR(cx_kernel_eval(&k, x, y, 2), 2.25, 1e-12); /* (0.5 * 1 + 1)^2 */
    k = cx_kernel_poly(3, 1.0f, -2.0f);
    CHECK_NEAR(cx_kernel_eval(&k, x, y, 2), -1.0, 1e-12); /* (1 - 2)^3 */
    k = cx_kernel_poly(2, 1.0f, 0.0f);
    CHECK_NEAR(cx_kernel_eval(&k, x, x, 2), 25.0, 1e-12); /* <x,x>^2 = 5^2 */
    k = cx_kernel_rbf(0.5f);
    CHECK_NEAR(cx_kernel_eval(&k, x, y, 2), exp(-6.5), 1e-15); /* ||x-y||^2 = 13 */
    CHECK_NEAR(cx_kernel_eval(&k, x, x, 2), 1.0, 0);
    const float a3[3] = {1, 0, -1}, b3[3] = {2, 1, 1};
    k = cx_kernel_rbf(0.1f);
    CHECK_NEAR(cx_kernel_eval(&k, a3, b3, 3), exp(-0.1 * 6.0), 1e-7);
    char buf[96];
    CHECK(strcmp(cx_kernel_describe(&k, buf, sizeof buf), "rbf(gamma=0.1)") == 0);
    k = cx_kernel_poly(2, 1.0f, 1.0f);
    CHECK(strcmp(cx_kernel_describe(&k, buf, sizeof buf), "poly(degree=2, gamma=1, coef0=1)") == 0);
}

/* ---------------------------------------------------------------- (4) kernel perceptron */
static void test_kernel_xor(void) {
    cx_kperceptron_opts o = cx_kperceptron_defaults();
    o.max_epochs = 40;
    cx_kperceptron p;
    cx_kernel lin = cx_kernel_linear(), rbf = cx_kernel_rbf(1.0f), poly = cx_kernel_poly(2, 1, 1);
    cx_seed(7);
    CHECK(cx_kperceptron_train(&p, &lin, XOR4_X, XOR4_T, 4, 2, &o) == CX_OK);
    CHECK(!p.converged && p.epochs == 40 && p.train_errors > 0);
    cx_kperceptron_free(&p);
    CHECK(cx_kperceptron_train(&p, &rbf, XOR4_X, XOR4_T, 4, 2, &o) == CX_OK);
    CHECK(p.converged && p.train_errors == 0);
    cx_kperceptron_free(&p);
    CHECK(cx_kperceptron_train(&p, &poly, XOR4_X, XOR4_T, 4, 2, &o) == CX_OK);
    CHECK(p.converged && p.train_errors == 0);
    cx_kperceptron_free(&p);

    enum { N = 200, NT = 400 };
    static float X[N * 2], t[N], Xt[NT * 2], tt[NT];
    gen_xor(X, t, N);
    gen_xor(Xt, tt, NT);
    o.max_epochs = 200;
    CHECK(cx_kperceptron_train(&p, &lin, X, t, N, 2, &o) == CX_OK);
    CHECK(!p.converged && p.epochs == 200);
    cx_kperceptron_free(&p);
    const cx_kernel *ks[2] = {&rbf, &poly};
    for (int q = 0; q < 2; q++) {
        CHECK(cx_kperceptron_train(&p, ks[q], X, t, N, 2, &o) == CX_OK);
        CHECK(p.converged && p.train_errors == 0);
        CHECK_NEAR(cx_kperceptron_accuracy(&p, X, t, N), 1.0, 0);
        double acc = cx_kperceptron_accuracy(&p, Xt, tt, NT);
        CHECK_MSG(acc > 0.97, "xor held-out accuracy %.3f", acc);
        cx_kperceptron_free(&p);
    }
}

static void test_kernel_circles(void) {
    cx_seed(8);
    enum { N = 400, NT = 1000 };
    static float X[N * 2], t[N], Xt[NT * 2], tt[NT];
    gen_circles(X, t, N);
    gen_circles(Xt, tt, NT);
    cx_kperceptron_opts o = cx_kperceptron_defaults();
    o.max_epochs = 300;
    cx_kperceptron p;
    cx_kernel lin = cx_kernel_linear();
    CHECK(cx_kperceptron_train(&p, &lin, X, t, N, 2, &o) == CX_OK);
    CHECK(!p.converged && p.epochs == 300 && p.train_errors > 0);
    char buf[200];
    cx_kperceptron_describe(&p, buf, sizeof buf);
    CHECK_MSG(strstr(buf, "did not converge") != NULL, "%s", buf);
    cx_kperceptron_free(&p);

    cx_kernel ks[2] = {cx_kernel_rbf(2.0f), cx_kernel_poly(2, 1.0f, 1.0f)};
    for (int q = 0; q < 2; q++) {
        CHECK(cx_kperceptron_train(&p, &ks[q], X, t, N, 2, &o) == CX_OK);
        cx_kperceptron_describe(&p, buf, sizeof buf);
        CHECK_MSG(p.converged, "%s", buf);
        CHECK(p.train_errors == 0);
        CHECK(p.used_gram);
        CHECK_NEAR(cx_kperceptron_accuracy(&p, X, t, N), 1.0, 0);
        double acc = cx_kperceptron_accuracy(&p, Xt, tt, NT);
        CHECK_MSG(acc > 0.95, "%s: circles held-out accuracy %.3f", buf, acc);
        /* support vectors and alpha agree */
        int nsv = 0;
        int64_t sum = 0;
        for (int i = 0; i < N; i++) {
            nsv += p.alpha[i] > 0;
            sum += p.alpha[i];
        }
        CHECK(nsv == p.n_sv && sum == p.updates);
        CHECK(p.n_sv > 0 && p.n_sv < N);
        float pred[NT];
        cx_kperceptron_predict_batch(&p, Xt, NT, pred);
        int ok = 0;
        for (int i = 0; i < NT; i++) ok += pred[i] == tt[i];
        CHECK_NEAR((double)ok / NT, acc, 1e-12);
        cx_kperceptron_free(&p);
        CHECK(p.alpha == NULL && p.sv_x == NULL);
    }
}

/* The Gram path and the on-the-fly path make the same decisions. */
static void test_gram_vs_on_the_fly(void) {
    cx_seed(9);
    enum { N = 300 };
    static float X[N * 2], t[N];
    gen_circles(X, t, N);
    cx_kernel k = cx_kernel_poly(2, 1.0f, 1.0f);
    cx_kperceptron_opts o = cx_kperceptron_defaults();
    o.shuffle = false;
    o.max_epochs = 300;
    cx_kperceptron a, b;
    CHECK(cx_kperceptron_train(&a, &k, X, t, N, 2, &o) == CX_OK);
    o.gram_max_n = 0;
    CHECK(cx_kperceptron_train(&b, &k, X, t, N, 2, &o) == CX_OK);
    CHECK(a.used_gram && !b.used_gram);
    CHECK(a.converged && b.converged);
    CHECK(a.updates == b.updates && a.epochs == b.epochs && a.n_sv == b.n_sv);
    CHECK(memcmp(a.alpha, b.alpha, N * sizeof(int32_t)) == 0);
    cx_kperceptron_free(&a);
    cx_kperceptron_free(&b);
}

/* Linear kernel in dual form == the primal perceptron with eta = 1. */
static void test_dual_equals_primal(void) {
    cx_seed(10);
    enum { N = 200, D = 4 };
    static float X[N * D], t[N];
    const float w[D] = {0.5f, 0.5f, -0.5f, 0.5f};
    gen_separable(X, t, N, D, w, 0.2f, 0.05f);
    cx_perceptron_opts po = cx_perceptron_defaults();
    po.shuffle = false;
    po.max_epochs = 1000;
    cx_kperceptron_opts ko = cx_kperceptron_defaults();
    ko.shuffle = false;
    ko.max_epochs = 1000;
    cx_perceptron p;
    cx_kperceptron k;
    cx_kernel lin = cx_kernel_linear();
    CHECK(cx_perceptron_train(&p, X, t, N, D, &po) == CX_OK);
    CHECK(cx_kperceptron_train(&k, &lin, X, t, N, D, &ko) == CX_OK);
    CHECK(p.converged && k.converged);
    CHECK(p.updates == k.updates);
    CHECK(p.epochs == k.epochs);
    /* w = sum_i alpha_i t_i x_i, b = sum_i alpha_i t_i */
    for (int j = 0; j < D; j++) {
        double s = 0;
        for (int i = 0; i < k.n_sv; i++) s += (double)k.sv_coef[i] * k.sv_x[(size_t)i * D + j];
        CHECK_NEAR(s, p.w[j], 1e-4);
    }
    CHECK_NEAR(k.bias, p.bias, 1e-6);
    for (int i = 0; i < N; i++)
        CHECK_NEAR(cx_kperceptron_decision(&k, X + (size_t)i * D),
                   cx_perceptron_decision(&p, X + (size_t)i * D), 1e-3);
    cx_perceptron_free(&p);
    cx_kperceptron_free(&k);
}

/* ---------------------------------------------------------------- (7) bad arguments */
static void test_bad_args(void) {
    const float X[4] = {1, 2, 3, 4};
    const float t_ok[2] = {1, -1}, t_bad[2] = {1, 0.5f}, t_zero[2] = {0, 1};
    cx_perceptron p;
    cx_perceptron_opts o = cx_perceptron_defaults();
    CHECK(cx_perceptron_train(&p, X, t_ok, 0, 2, &o) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "N = 0") != NULL);
    CHECK(p.w == NULL && p.epoch_mistakes == NULL);
    cx_perceptron_free(&p);
    CHECK(cx_perceptron_train(&p, X, t_bad, 2, 2, &o) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "t[1]") != NULL);
    CHECK(cx_perceptron_train(&p, X, t_zero, 2, 2, &o) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "t[0]") != NULL);
    CHECK(cx_perceptron_train(&p, X, t_ok, 2, 0, &o) == CX_ERR_ARG);
    CHECK(cx_perceptron_train(&p, NULL, t_ok, 2, 2, &o) == CX_ERR_ARG);
    CHECK(cx_perceptron_train(NULL, X, t_ok, 2, 2, &o) == CX_ERR_ARG);
    const float Xnan[4] = {1, NAN, 3, 4};
    CHECK(cx_perceptron_train(&p, Xnan, t_ok, 2, 2, &o) == CX_ERR_NUMERIC);
    CHECK(strlen(cx_last_error()) > 0);
    o.eta = 0.0f;
    CHECK(cx_perceptron_train(&p, X, t_ok, 2, 2, &o) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "eta") != NULL);
    o = cx_perceptron_defaults();
    o.max_epochs = 0;
    CHECK(cx_perceptron_train(&p, X, t_ok, 2, 2, &o) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "max_epochs") != NULL);
    CHECK(p.w == NULL);

    cx_margin_info mi;
    const float wz[2] = {0, 0};
    CHECK(cx_perceptron_margin(X, t_ok, 2, 2, wz, 0.0f, false, &mi) == CX_ERR_ARG);
    CHECK(cx_perceptron_margin(X, t_bad, 2, 2, X, 0.0f, false, &mi) == CX_ERR_ARG);
    CHECK(cx_perceptron_margin(X, t_ok, 0, 2, X, 0.0f, false, &mi) == CX_ERR_ARG);

    cx_kperceptron k;
    cx_kernel lin = cx_kernel_linear();
    CHECK(cx_kperceptron_train(&k, &lin, X, t_ok, 0, 2, NULL) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "N = 0") != NULL);
    CHECK(k.alpha == NULL);
    cx_kperceptron_free(&k);
    CHECK(cx_kperceptron_train(&k, &lin, X, t_bad, 2, 2, NULL) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "not -1 or +1") != NULL);
    CHECK(cx_kperceptron_train(&k, NULL, X, t_ok, 2, 2, NULL) == CX_ERR_ARG);
    cx_kernel kb = cx_kernel_rbf(0.0f);
    CHECK(cx_kperceptron_train(&k, &kb, X, t_ok, 2, 2, NULL) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "gamma") != NULL);
    kb = cx_kernel_poly(0, 1.0f, 1.0f);
    CHECK(cx_kperceptron_train(&k, &kb, X, t_ok, 2, 2, NULL) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "degree") != NULL);
    kb.type = (cx_kernel_type)42;
    CHECK(cx_kperceptron_train(&k, &kb, X, t_ok, 2, 2, NULL) == CX_ERR_ARG);
    cx_kperceptron_opts ko = cx_kperceptron_defaults();
    ko.max_epochs = -3;
    CHECK(cx_kperceptron_train(&k, &lin, X, t_ok, 2, 2, &ko) == CX_ERR_ARG);
    CHECK(k.alpha == NULL);
    char buf[64];
    CHECK(strcmp(cx_kperceptron_describe(&k, buf, sizeof buf), "untrained kernel perceptron") == 0);
    CHECK(strcmp(cx_perceptron_describe(&p, buf, sizeof buf), "untrained perceptron") == 0);
    cx_perceptron_free(NULL);
    cx_kperceptron_free(NULL);
}

int main(void) {
    RUN(test_separable_2d);
    RUN(test_separable_highdim);
    RUN(test_margin_by_hand);
    RUN(test_eta_invariance);
    RUN(test_not_separable);
    RUN(test_tensor_api);
    RUN(test_determinism);
    RUN(test_kernel_values);
    RUN(test_kernel_xor);
    RUN(test_kernel_circles);
    RUN(test_gram_vs_on_the_fly);
    RUN(test_dual_equals_primal);
    RUN(test_bad_args);
    TEST_END();
}
