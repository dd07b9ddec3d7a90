/* The perceptron of course section 1, on toy data:
 *   1. separable data: number of updates vs the (R/gamma)^2 convergence bound;
 *   2. non-separable data: the rule keeps cycling and stops at the epoch cap;
 *   3. the kernel perceptron on concentric circles with three kernels.
 * Run: build/<variant>/examples/perceptron [seed]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cortex.h>

/* Uniform points in [-1, 1]^D with |<w*, x> + b*| >= gap, labelled by the sign. */
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

/* Two overlapping Gaussian blobs (centres +-0.5, std 1). */
static void gen_overlap(float *X, float *t, int N) {
    for (int i = 0; i < N; i++) {
        float c = (i % 2) ? 0.5f : -0.5f;
        X[2 * i] = c + cx_rand_normal();
        X[2 * i + 1] = c + cx_rand_normal();
        t[i] = (i % 2) ? 1.0f : -1.0f;
    }
}

/* +1 inside radius 0.5, -1 on the ring 0.8 .. 1.2. */
static void gen_circles(float *X, float *t, int N) {
    for (int i = 0; i < N; i++) {
        int inner = (i % 2) == 0;
        float r = inner ? 0.5f * sqrtf(cx_rand_uniform()) : 0.8f + 0.4f * cx_rand_uniform();
        float a = 6.283185307f * cx_rand_uniform();
        X[2 * i] = r * cosf(a);
        X[2 * i + 1] = r * sinf(a);
        t[i] = inner ? 1.0f : -1.0f;
    }
}

static void die(cx_status st) {
    fprintf(stderr, "error %d: %s\n", (int)st, cx_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 10) : 42;
    cx_seed(seed);
    char buf[256];

    /* ------------------------------------------------ 1. separable */
    enum { NS = 500 };
    static float Xs[NS * 2], ts[NS];
    const float ws[2] = {0.6f, 0.8f};
    const float bs = 0.2f;
    gen_separable(Xs, ts, NS, 2, ws, bs, 0.05f);
    cx_margin_info mi;
    cx_status st = cx_perceptron_margin(Xs, ts, NS, 2, ws, bs, true, &mi);
    if (st != CX_OK) die(st);
    printf("1. Separable data: %d points in 2-D, labelled by the line 0.6 x + 0.8 y + 0.2 = 0\n", NS);
    printf("   known separator in phi(x) = [x, 1] space: margin gamma = %.4f, radius R = %.4f\n",
           mi.margin, mi.radius);
    printf("   Novikoff bound (R/gamma)^2 = %.1f updates (the notes' M/delta^2 with M = R^2)\n",
           mi.bound);
    printf("   (same shuffled order for each eta: from w = 0 the updates do not depend on eta)\n");
    cx_perceptron_opts po = cx_perceptron_defaults();
    po.max_epochs = 1000;
    const float etas[3] = {1.0f, 0.1f, 0.01f};
    for (int e = 0; e < 3; e++) {
        po.eta = etas[e];
        cx_seed(seed + 1); /* same visiting order for every eta */
        cx_perceptron p;
        st = cx_perceptron_train(&p, Xs, ts, NS, 2, &po);
        if (st != CX_OK) die(st);
        printf("   eta = %-5g %s; updates %lld <= bound %.0f: %s; w = (%.3f, %.3f), b = %.3f\n",
               (double)etas[e], cx_perceptron_describe(&p, buf, sizeof buf), (long long)p.updates,
               mi.bound, (double)p.updates <= mi.bound ? "yes" : "NO", (double)p.w[0],
               (double)p.w[1], (double)p.bias);
        cx_perceptron_free(&p);
    }

    /* ------------------------------------------------ 2. not separable */
    enum { NN = 400 };
    static float Xn[NN * 2], tn[NN];
    gen_overlap(Xn, tn, NN);
    po = cx_perceptron_defaults();
    po.max_epochs = 100;
    cx_perceptron p;
    st = cx_perceptron_train(&p, Xn, tn, NN, 2, &po);
    if (st != CX_OK) die(st);
    printf("\n2. Overlapping Gaussian blobs (%d points, not linearly separable):\n   %s\n", NN,
           cx_perceptron_describe(&p, buf, sizeof buf));
    printf("   converged flag = %s; mistakes in the last 5 epochs:", p.converged ? "true" : "false");
    for (int e = p.epochs - 5; e < p.epochs; e++) printf(" %d", p.epoch_mistakes[e]);
    printf("; training accuracy %.1f%%\n", 100.0 * cx_perceptron_accuracy(&p, Xn, tn, NN));
    cx_perceptron_free(&p);

    /* ------------------------------------------------ 3. kernel perceptron */
    enum { NTR = 400, NTE = 2000 };
    static float Xtr[NTR * 2], ttr[NTR], Xte[NTE * 2], tte[NTE];
    gen_circles(Xtr, ttr, NTR);
    gen_circles(Xte, tte, NTE);
    printf("\n3. Kernel perceptron on concentric circles (%d train, %d test points):\n", NTR, NTE);
    printf("   %-34s %9s %6s %8s %9s %8s %4s\n", "kernel", "converged", "epochs", "updates",
           "train acc", "test acc", "SVs");
    cx_kernel ks[3] = {cx_kernel_linear(), cx_kernel_poly(2, 1.0f, 1.0f), cx_kernel_rbf(2.0f)};
    cx_kperceptron_opts ko = cx_kperceptron_defaults();
    ko.max_epochs = 200;
    for (int q = 0; q < 3; q++) {
        cx_kperceptron kp;
        st = cx_kperceptron_train(&kp, &ks[q], Xtr, ttr, NTR, 2, &ko);
        if (st != CX_OK) die(st);
        printf("   %-34s %9s %6d %8lld %8.1f%% %7.1f%% %4d\n",
               cx_kernel_describe(&ks[q], buf, sizeof buf), kp.converged ? "yes" : "no", kp.epochs,
               (long long)kp.updates, 100.0 * cx_kperceptron_accuracy(&kp, Xtr, ttr, NTR),
               100.0 * cx_kperceptron_accuracy(&kp, Xte, tte, NTE), kp.n_sv);
        cx_kperceptron_free(&kp);
    }
    return 0;
}
