/* Tests of the Hopfield network (models.h): Hebbian storage, asynchronous
 * recall, energy, capacity, determinism and argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* P random +-1 patterns of length n from rng. */
static void random_patterns(int8_t *X, int P, int n, cx_rng *rng) {
    for (long k = 0; k < (long)P * n; k++) X[k] = (cx_rng_u32(rng) & 1u) ? 1 : -1;
}

/* Copy of x with exactly `flips` distinct units flipped (random positions). */
static void corrupt(int8_t *out, const int8_t *x, int n, int flips, cx_rng *rng) {
    int *idx = malloc((size_t)n * sizeof *idx);
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int k = 0; k < flips; k++) { /* partial Fisher-Yates */
        int j = k + (int)cx_rng_below(rng, (uint32_t)(n - k));
        int t = idx[k];
        idx[k] = idx[j];
        idx[j] = t;
    }
    memcpy(out, x, (size_t)n);
    for (int k = 0; k < flips; k++) out[idx[k]] = (int8_t)-out[idx[k]];
    free(idx);
}

static void test_weights_hebb(void) {
    const int n = 37, P = 5;
    cx_rng rng = cx_rng_new(3);
    int8_t X[5 * 37];
    random_patterns(X, P, n, &rng);
    cx_hopfield *h = cx_hopfield_new(n);
    CHECK(h != NULL);
    if (!h) return;
    CHECK(cx_hopfield_store(h, X, P, n) == CX_OK);
    CHECK(h->stored == P);
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double want = 0.0;
            if (i != j)
                for (int p = 0; p < P; p++) want += (double)X[p * n + i] * X[p * n + j];
            want /= n;
            float w = h->w[i * n + j];
            if (fabs((double)w - want) > 1e-6 || w != h->w[j * n + i]) bad++;
        }
    CHECK_MSG(bad == 0, "%d weights differ from (1/N) sum x x^T with zero diagonal", bad);
    /* storing in two calls gives the same network */
    cx_hopfield *h2 = cx_hopfield_new(n);
    CHECK(cx_hopfield_store(h2, X, 2, n) == CX_OK);
    CHECK(cx_hopfield_store(h2, X + 2 * n, 3, n) == CX_OK);
    CHECK(h2->stored == P);
    CHECK(memcmp(h->w, h2->w, (size_t)n * n * sizeof(float)) == 0);
    /* energy of a stored pattern matches -1/2 s^T W s computed directly */
    double e = 0.0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) e += (double)X[i] * h->w[i * n + j] * X[j];
    CHECK_NEAR(cx_hopfield_energy(h, X, n), -0.5 * e, 1e-5);
    CHECK_NEAR(cx_hopfield_overlap(X, X, n), 1.0, 0.0);
    cx_hopfield_free(h);
    cx_hopfield_free(h2);
    cx_hopfield_free(NULL);
}

static void test_fixed_points(void) {
    const int n = 120, P = 4;
    cx_rng rng = cx_rng_new(11);
    int8_t *X = malloc((size_t)P * n), s[120];
    random_patterns(X, P, n, &rng);
    cx_hopfield *h = cx_hopfield_new(n);
    CHECK(cx_hopfield_store(h, X, P, n) == CX_OK);
    for (int p = 0; p < P; p++) {
        memcpy(s, X + p * n, (size_t)n);
        cx_hopfield_result r;
        cx_hopfield_opts o = cx_hopfield_defaults();
        o.rng = &rng;
        CHECK(cx_hopfield_recall(h, s, n, &o, &r) == CX_OK);
        CHECK(r.converged && r.sweeps == 1 && r.flips == 0);
        CHECK(memcmp(s, X + p * n, (size_t)n) == 0);
        /* every unit agrees with its field: a fixed point */
        for (int i = 0; i < n; i++) CHECK(cx_hopfield_field(h, s, n, i) * s[i] > 0);
    }
    cx_hopfield_free(h);
    free(X);
}

typedef struct {
    const cx_hopfield *h;
    double e;        /* energy before this update */
    int updates, rises, flat_flips;
} etrace;

static void on_update(int unit, bool changed, const int8_t *s, void *user) {
    etrace *t = user;
    (void)unit;
    double e = cx_hopfield_energy(t->h, s, t->h->n);
    if (e > t->e) t->rises++;
    if (changed && !(e < t->e)) t->flat_flips++;  /* a flip needs |h_i| > 0: E drops */
    t->e = e;
    t->updates++;
}

static void test_energy_never_increases(void) {
    const int n = 64, P = 12; /* well above capacity: many spurious states */
    cx_rng rng = cx_rng_new(5);
    int8_t *X = malloc((size_t)P * n), s[64];
    random_patterns(X, P, n, &rng);
    cx_hopfield *h = cx_hopfield_new(n);
    CHECK(cx_hopfield_store(h, X, P, n) == CX_OK);
    long total = 0, sweeps = 0, flips = 0;
    for (int trial = 0; trial < 30; trial++) {
        random_patterns(s, 1, n, &rng);
        etrace t = {h, cx_hopfield_energy(h, s, n), 0, 0, 0};
        cx_hopfield_opts o = cx_hopfield_defaults();
        o.rng = &rng;
        o.on_update = on_update;
        o.user = &t;
        cx_hopfield_result r;
        CHECK(cx_hopfield_recall(h, s, n, &o, &r) == CX_OK);
        CHECK(t.rises == 0);
        CHECK(t.flat_flips == 0);
        CHECK(t.updates == r.sweeps * n);
        CHECK(r.converged);
        for (int i = 0; i < n; i++) CHECK(cx_hopfield_field(h, s, n, i) * s[i] >= 0);
        total += t.updates;
        sweeps += r.sweeps;
        flips += r.flips;
    }
    CHECK(flips > 0); /* the states did move */
    CHECK(total == sweeps * n);
    cx_hopfield_free(h);
    free(X);
}

/* Store P random patterns in N units, probe each with 20% of its bits flipped;
 * returns the fraction recalled exactly, *mean_overlap the mean final overlap. */
static double recall_rate(int n, int P, uint64_t seed, double *mean_overlap) {
    cx_rng rng = cx_rng_new(seed);
    int8_t *X = malloc((size_t)P * n), *s = malloc((size_t)n);
    random_patterns(X, P, n, &rng);
    cx_hopfield *h = cx_hopfield_new(n);
    CHECK(cx_hopfield_store(h, X, P, n) == CX_OK);
    int ok = 0;
    double m = 0.0;
    for (int p = 0; p < P; p++) {
        corrupt(s, X + (size_t)p * n, n, n / 5, &rng);
        CHECK_NEAR(cx_hopfield_overlap(s, X + (size_t)p * n, n), 0.6, 1e-12);
        cx_hopfield_opts o = cx_hopfield_defaults();
        o.rng = &rng;
        CHECK(cx_hopfield_recall(h, s, n, &o, NULL) == CX_OK);
        double q = cx_hopfield_overlap(s, X + (size_t)p * n, n);
        m += q;
        if (q == 1.0) ok++;
    }
    cx_hopfield_free(h);
    free(X);
    free(s);
    *mean_overlap = m / P;
    return (double)ok / P;
}

static void test_recall_below_capacity(void) {
    double m, rate = recall_rate(200, 10, 2024, &m); /* P = 0.05 N */
    fprintf(stderr, "  P = 0.05 N: recalled %.2f, mean overlap %.4f\n", rate, m);
    CHECK(rate >= 0.9);  /* a probe starts at overlap 0.6; no recall would stay there */
    CHECK(m >= 0.99);
}

static void test_recall_fails_above_capacity(void) {
    double m, rate = recall_rate(200, 60, 2024, &m); /* P = 0.3 N */
    fprintf(stderr, "  P = 0.3 N: recalled %.2f, mean overlap %.4f\n", rate, m);
    CHECK(rate <= 0.1);
    CHECK(m < 0.9);
}

static void test_deterministic(void) {
    const int n = 100, P = 15;
    int8_t *X = malloc((size_t)P * n), a[100], b[100], c[100];
    cx_rng g = cx_rng_new(9);
    random_patterns(X, P, n, &g);
    cx_hopfield *h = cx_hopfield_new(n);
    CHECK(cx_hopfield_store(h, X, P, n) == CX_OK);
    random_patterns(a, 1, n, &g);
    memcpy(b, a, sizeof a);
    memcpy(c, a, sizeof a);
    cx_hopfield_result ra, rb;
    cx_rng r1 = cx_rng_new(77), r2 = cx_rng_new(77);
    cx_hopfield_opts o = cx_hopfield_defaults();
    o.rng = &r1;
    CHECK(cx_hopfield_recall(h, a, n, &o, &ra) == CX_OK);
    o.rng = &r2;
    CHECK(cx_hopfield_recall(h, b, n, &o, &rb) == CX_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(ra.sweeps == rb.sweeps && ra.flips == rb.flips && ra.converged == rb.converged);
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
    /* NULL rng: the thread's current stream, seeded the same way */
    cx_rng r3 = cx_rng_new(77);
    cx_rng *prev = cx_rng_use(&r3);
    cx_hopfield_result rc;
    CHECK(cx_hopfield_recall(h, c, n, NULL, &rc) == CX_OK);
    cx_rng_use(prev);
    CHECK(memcmp(a, c, sizeof a) == 0 && rc.flips == ra.flips);
    /* max_sweeps = 1 stops after one sweep */
    random_patterns(a, 1, n, &g);
    o.max_sweeps = 1;
    CHECK(cx_hopfield_recall(h, a, n, &o, &ra) == CX_OK);
    CHECK(ra.sweeps == 1);
    CHECK(ra.converged == (ra.flips == 0));
    cx_hopfield_free(h);
    free(X);
}

static void test_errors(void) {
    CHECK(cx_hopfield_new(0) == NULL);
    CHECK(strstr(cx_last_error(), "n must be") != NULL);
    CHECK(cx_hopfield_new(-3) == NULL);
    CHECK(cx_hopfield_new(CX_HOPFIELD_MAX_N + 1) == NULL);
    cx_hopfield *h = cx_hopfield_new(4);
    int8_t X[8] = {1, -1, 1, -1, 1, 1, -1, -1}, s[4] = {1, 1, 1, 1};
    CHECK(cx_hopfield_store(NULL, X, 2, 4) == CX_ERR_ARG);
    CHECK(cx_hopfield_store(h, NULL, 2, 4) == CX_ERR_ARG);
    CHECK(cx_hopfield_store(h, X, 2, 5) == CX_ERR_ARG); /* wrong length */
    CHECK(strstr(cx_last_error(), "length n = 5") != NULL);
    CHECK(cx_hopfield_store(h, X, 0, 4) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "P") != NULL);
    X[6] = 0;
    CHECK(cx_hopfield_store(h, X, 2, 4) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "X[6] (pattern 1, unit 2) is 0") != NULL);
    X[6] = 2;
    CHECK(cx_hopfield_store(h, X, 2, 4) == CX_ERR_ARG);
    CHECK(h->stored == 0);
    for (int k = 0; k < 16; k++) CHECK(h->w[k] == 0.0f); /* unchanged */
    X[6] = -1;
    CHECK(cx_hopfield_store(h, X, 2, 4) == CX_OK);
    CHECK(cx_hopfield_recall(h, s, 3, NULL, NULL) == CX_ERR_ARG);
    CHECK(cx_hopfield_recall(NULL, s, 4, NULL, NULL) == CX_ERR_ARG);
    CHECK(cx_hopfield_recall(h, NULL, 4, NULL, NULL) == CX_ERR_ARG);
    cx_hopfield_opts o = cx_hopfield_defaults();
    o.max_sweeps = 0;
    cx_hopfield_result r = {5, 5, true};
    CHECK(cx_hopfield_recall(h, s, 4, &o, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "max_sweeps") != NULL);
    CHECK(r.sweeps == 0 && r.flips == 0 && !r.converged);
    s[1] = 0;
    CHECK(cx_hopfield_recall(h, s, 4, NULL, NULL) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "s[1] is 0") != NULL);
    CHECK(s[0] == 1 && s[1] == 0 && s[2] == 1 && s[3] == 1); /* unchanged */
    CHECK(isnan(cx_hopfield_energy(h, s, 4)));
    CHECK(isnan(cx_hopfield_energy(h, X, 3)));
    CHECK(isnan(cx_hopfield_field(h, X, 4, 4)));
    CHECK(isnan(cx_hopfield_overlap(X, NULL, 4)));
    CHECK(isnan(cx_hopfield_overlap(X, X, 0)));
    cx_hopfield_free(h);
}

int main(void) {
    RUN(test_weights_hebb);
    RUN(test_fixed_points);
    RUN(test_energy_never_increases);
    RUN(test_recall_below_capacity);
    RUN(test_recall_fails_above_capacity);
    RUN(test_deterministic);
    RUN(test_errors);
    TEST_END();
}
