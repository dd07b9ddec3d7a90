/* Tests of cx_sgemm / cx_sgemm_builtin against a double-precision reference,
 * and of the thread-count API. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "cpu/cpu.h"
#include "cpu/vmath.h"
#if defined(CX_OPENBLAS_OPENMP) && defined(_OPENMP)
#include <cblas.h>
#include <dirent.h>
#include <omp.h>
#endif

typedef void (*gemm_fn)(bool, bool, int, int, int, float, const float *, int, const float *,
                        int, float, float *, int);

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static float urand(void) { /* deterministic, independent of the library PRNG */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static float *rand_buf(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}

/* One GEMM case: op(A) MxK, op(B) KxN, leading dimensions padded by `pad`.
 * Checks C against a double reference with an error bound proportional to
 * K * eps * sum|alpha a b| (+ |beta c|), and that the padding between rows of
 * C is left untouched. Returns 1 on success. */
static int check_case(gemm_fn fn, const char *name, bool ta, bool tb, int M, int N, int K,
                      float alpha, float beta, int pad) {
    const int arows = ta ? K : M, acols = ta ? M : K;
    const int brows = tb ? N : K, bcols = tb ? K : N;
    const int lda = acols + pad, ldb = bcols + pad, ldc = N + pad;
    float *A = rand_buf((size_t)arows * lda);
    float *B = rand_buf((size_t)brows * ldb);
    float *C = rand_buf((size_t)M * ldc);
    float *C0 = malloc(((size_t)M * ldc + 1) * sizeof *C0);
    memcpy(C0, C, (size_t)M * ldc * sizeof *C);
    if (beta == 0.0f) /* beta == 0 must overwrite, NaN included */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = C0[(size_t)i * ldc + j] = NAN;

    fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

    int ok = 1;
    const double eps = 1.1920929e-7;
    for (int i = 0; i < M && ok; i++) {
        for (int j = 0; j < N; j++) {
            double s = 0, sabs = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                s += a * b;
                sabs += fabs(a * b);
            }
            double ref = alpha * s, bound = fabs(alpha) * sabs;
            if (beta != 0.0f) {
                ref += beta * (double)C0[(size_t)i * ldc + j];
                bound += fabs(beta * (double)C0[(size_t)i * ldc + j]);
            }
            double tol = 2.0 * (K + 2) * eps * bound + 1e-30;
            double got = C[(size_t)i * ldc + j];
            if (!(fabs(got - ref) <= tol)) {
                fprintf(stderr,
                        "  %s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: C[%d][%d]=%.9g "
                        "ref=%.9g tol=%g\n",
                        name, ta, tb, M, N, K, (double)alpha, (double)beta, pad, i, j, got, ref,
                        tol);
                ok = 0;
                break;
            }
        }
        for (int j = N; j < ldc && ok; j++) /* padding untouched */
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float)) != 0) {
                fprintf(stderr, "  %s M=%d N=%d K=%d: padding C[%d][%d] was written\n", name, M,
                        N, K, i, j);
                ok = 0;
            }
    }
    free(A);
    free(B);
    free(C);
    free(C0);
    return ok;
}

static const int shapes[][3] = {
    {1, 1, 1},    {7, 13, 5},   {65, 33, 129}, {300, 200, 17}, {2, 3, 1},     {1, 100, 7},
    {100, 1, 50}, {33, 70, 1},  {16, 32, 64},  {29, 47, 600},  {3, 4200, 5},  {230, 97, 31},
    {128, 128, 128},
    /* last row panels of exactly 8 and 4 rows (AVX-512's 14-row tiles: the 8- and 4-row kernels) */
    {64, 96, 40}, {60, 50, 9},
    /* skinny products (a side of at most 4): dot-product and axpy forms, tails */
    {256, 2, 64}, {64, 4, 256}, {2, 64, 256}, {70, 3, 33}, {4, 4, 4}, {5, 4, 77},
    {4, 5, 17},   {67, 1, 3},   {130, 2, 1000},
    /* small depth (K <= 16, B not transposed: rows of 4 x whole vectors, a zero-padded tail vector) */
    {25, 576, 6}, {9, 100, 1}, {37, 70, 16}, {13, 33, 3}, {6, 200, 11}, {300, 1000, 8},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void sweep(gemm_fn fn, const char *name, int threads) {
    cx_set_threads(threads);
    const float alphas[] = {1.0f, -0.5f, 2.5f};
    const float betas[] = {0.0f, 1.0f, -1.5f};
    int fails = 0, cases = 0;
    for (int s = 0; s < NSHAPES; s++)
        for (int t = 0; t < 4; t++)
            for (int ab = 0; ab < 3; ab++) {
                int pad = (s + t + ab) % 3 == 0 ? 0 : (s + ab) % 5 + 1;
                cases++;
                if (!check_case(fn, name, t & 1, (t >> 1) & 1, shapes[s][0], shapes[s][1],
                                shapes[s][2], alphas[ab], betas[(ab + s + t) % 3], pad))
                    fails++;
            }
    /* every (alpha, beta) pair on two shapes and every transpose */
    for (int t = 0; t < 4; t++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                cases++;
                if (!check_case(fn, name, t & 1, t >> 1, 37, 41, 23, alphas[a], betas[b], 2))
                    fails++;
            }
    CHECK_MSG(fails == 0, "%s threads=%d: %d of %d cases failed", name, threads, fails, cases);
}

static void test_builtin_1thread(void) { sweep(cx_sgemm_builtin, "builtin", 1); }
static void test_builtin_2threads(void) { sweep(cx_sgemm_builtin, "builtin", 2); }
static void test_sgemm_1thread(void) { sweep(cx_sgemm, "cx_sgemm", 1); }
static void test_sgemm_2threads(void) { sweep(cx_sgemm, "cx_sgemm", 2); }

/* Sizes large enough to take the multi-threaded path and several K / M blocks. */
static void test_large(void) {
    for (int th = 1; th <= 2; th++) {
        cx_set_threads(th);
        CHECK(check_case(cx_sgemm_builtin, "builtin", false, false, 300, 260, 1100, 1.0f, 0.0f, 0));
        CHECK(check_case(cx_sgemm_builtin, "builtin", true, true, 257, 300, 530, 0.7f, 0.5f, 3));
        CHECK(check_case(cx_sgemm_builtin, "builtin", false, true, 20, 700, 300, 1.0f, 1.0f, 1));
        CHECK(check_case(cx_sgemm, "cx_sgemm", true, false, 300, 260, 600, -1.0f, 0.0f, 2));
    }
}

/* Small operands read in place by the kernel give the same bits as packed
 * ones, on every transpose, with leading-dimension padding, tiles of 14, 8,
 * 4 and odd row counts (a last tile packed alone), partial column panels,
 * beta 0 and 1, 1 and 2 threads; and the packed path alone stays right on
 * the sweep's shapes. */
static void test_in_place(void) {
    static const int sh[][3] = {{64, 128, 128}, {256, 64, 64}, {64, 64, 256}, {66, 128, 128}, {64, 130, 100},
                                {60, 50, 9},    {5, 40, 33},   {29, 47, 600}, {100, 96, 700}, {128, 4, 64}};
    int diffs = 0, cases = 0;
    for (int th = 1; th <= 2; th++) {
        cx_set_threads(th);
        for (int s = 0; s < (int)(sizeof sh / sizeof sh[0]); s++)
            for (int t = 0; t < 4; t++)
                for (int bz = 0; bz < 2; bz++) {
                    const bool ta = t & 1, tb = t >> 1;
                    const int M = sh[s][0], N = sh[s][1], K = sh[s][2], pad = (s + t) % 3;
                    const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
                    const size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                    float *A = malloc(na * 4), *B = malloc(nb * 4), *C1 = malloc(nc * 4), *C2 = malloc(nc * 4);
                    uint32_t r = 12345u + (uint32_t)s;
                    for (size_t i = 0; i < na; i++) A[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
                    for (size_t i = 0; i < nb; i++) B[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
                    for (size_t i = 0; i < nc; i++) C1[i] = C2[i] = (float)(i % 7) * 0.25f;
                    const float beta = bz ? 1.0f : 0.0f;
                    cx_gemm_set_in_place(true);
                    cx_sgemm_builtin(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C1, ldc);
                    cx_gemm_set_in_place(false);
                    cx_sgemm_builtin(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C2, ldc);
                    cases++;
                    if (memcmp(C1, C2, nc * 4)) {
                        if (diffs++ < 5)
                            fprintf(stderr, "  in place vs packed differ: ta=%d tb=%d M=%d N=%d K=%d beta=%g threads=%d\n",
                                    ta, tb, M, N, K, (double)beta, th);
                    }
                    free(A), free(B), free(C1), free(C2);
                }
    }
    CHECK_MSG(diffs == 0, "%d of %d products differ between in place and packed operands", diffs, cases);
    sweep(cx_sgemm_builtin, "builtin, packed operands", 1); /* in place still off */
    cx_gemm_set_in_place(true);
}

/* The built-in kernel gives bit-identical results for 1 and 2 threads
 * (the thread split never changes the order of the sums). */
static void test_thread_determinism(void) {
    const int M = 301, N = 283, K = 700;
    const size_t big = (size_t)64 * 4000; /* also covers the 5x4000x64 case */
    float *A = rand_buf((size_t)M * K), *B = rand_buf(big);
    float *C1 = calloc(big, sizeof(float)), *C2 = calloc(big, sizeof(float));
    cx_set_threads(1);
    cx_sgemm_builtin(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
    cx_set_threads(2);
    cx_sgemm_builtin(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    CHECK(memcmp(C1, C2, (size_t)M * N * sizeof(float)) == 0);
    /* tall-skinny and short-wide shapes (thread grid over N) as well */
    cx_set_threads(1);
    cx_sgemm_builtin(false, false, 5, 4000, 64, 1.0f, A, 64, B, 4000, 0.0f, C1, 4000);
    cx_set_threads(2);
    cx_sgemm_builtin(false, false, 5, 4000, 64, 1.0f, A, 64, B, 4000, 0.0f, C2, 4000);
    CHECK(memcmp(C1, C2, (size_t)5 * 4000 * sizeof(float)) == 0);
    /* small depth (K <= 16): whole 4-row blocks per thread */
    cx_set_threads(1);
    cx_sgemm_builtin(true, false, 301, 700, 8, 1.0f, A, 301, B, 700, 0.0f, C1, 700);
    cx_set_threads(2);
    cx_sgemm_builtin(true, false, 301, 700, 8, 1.0f, A, 301, B, 700, 0.0f, C2, 700);
    CHECK(memcmp(C1, C2, (size_t)301 * 700 * sizeof(float)) == 0);
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* A small M splits the columns between threads, each packing its own
 * panels without waiting for the other: with several depth blocks (the last
 * one shorter) and with several column blocks (the last one narrower), a
 * thread that runs ahead must not overwrite panels the other still reads.
 * Repeated, since a race shows only sometimes; checked against 1 thread. */
static void test_small_m_threads(void) {
    const int shapes2[][3] = {{20, 1000, 1300}, {64, 600, 1100}, {12, 5000, 700}, {40, 4100, 530}};
    for (int s = 0; s < 4; s++) {
        const int M = shapes2[s][0], N = shapes2[s][1], K = shapes2[s][2];
        float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
        float *C1 = calloc((size_t)M * N, sizeof(float)), *C2 = calloc((size_t)M * N, sizeof(float));
        cx_set_threads(1);
        cx_sgemm_builtin(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
        cx_set_threads(2);
        int bad = 0;
        for (int r = 0; r < 20; r++) {
            memset(C2, 0, (size_t)M * N * sizeof(float));
            cx_sgemm_builtin(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
            bad += memcmp(C1, C2, (size_t)M * N * sizeof(float)) != 0;
        }
        CHECK_MSG(bad == 0, "%dx%dx%d: 2 threads differ from 1 in %d of 20 runs", M, N, K, bad);
        free(A);
        free(B);
        free(C1);
        free(C2);
    }
    cx_set_threads(1);
}

static void test_degenerate(void) {
    gemm_fn fns[2] = {cx_sgemm_builtin, cx_sgemm};
    for (int f = 0; f < 2; f++) {
        float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 1, 1, 1, 1, 1};
        float C[4] = {NAN, NAN, NAN, NAN};
        /* K == 0, beta == 0: C = 0 even when it held NaN */
        fns[f](false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);
        CHECK(C[0] == 0.0f && C[1] == 0.0f && C[2] == 0.0f && C[3] == 0.0f);
        /* K == 0, beta == 2: C scaled */
        float D[4] = {1, 2, 3, 4};
        fns[f](false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 2.0f, D, 2);
        CHECK(D[0] == 2.0f && D[1] == 4.0f && D[2] == 6.0f && D[3] == 8.0f);
        /* alpha == 0: A and B are not used (NaN there does not leak) */
        float An[4] = {NAN, NAN, NAN, NAN}, E[4] = {1, 2, 3, 4};
        fns[f](false, false, 2, 2, 2, 0.0f, An, 2, An, 2, 0.5f, E, 2);
        CHECK(E[0] == 0.5f && E[1] == 1.0f && E[2] == 1.5f && E[3] == 2.0f);
        /* M == 0 or N == 0: nothing is touched (NULL pointers allowed) */
        float G[2] = {7, 8};
        fns[f](false, false, 0, 2, 3, 1.0f, NULL, 3, B, 2, 0.0f, G, 2);
        fns[f](true, true, 2, 0, 3, 1.0f, A, 2, NULL, 3, 0.0f, G, 1);
        CHECK(G[0] == 7.0f && G[1] == 8.0f);
        /* 1x1x1 */
        float a = 3, b = -2, c = 10;
        fns[f](true, true, 1, 1, 1, 0.5f, &a, 1, &b, 1, 1.0f, &c, 1);
        CHECK(c == 7.0f);
        /* exact small product: [[1,2,3],[4,5,6]] x ones(3,2) */
        float H[4];
        fns[f](false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, H, 2);
        CHECK(H[0] == 6.0f && H[1] == 6.0f && H[2] == 15.0f && H[3] == 15.0f);
    }
}

/* Calls from inside a parallel region run single-threaded per caller and
 * stay correct; calls from short-lived threads free their workspace. */
static void *thread_body(void *arg) {
    int *ok = arg;
    *ok = check_case(cx_sgemm_builtin, "builtin/pthread", true, false, 90, 70, 300, 1.0f, 0.0f, 1);
    return NULL;
}

static void test_reentrant(void) {
    cx_set_threads(2);
    int ok[2] = {0, 0};
#ifdef _OPENMP
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 2; i++) {
        /* own data per iteration, fixed by index (urand is not thread-safe);
         * different K per thread = different number of K blocks, so a barrier
         * leaking into this (outer) team would hang or corrupt the result */
        const int M = 70 + 9 * i, N = 50, K = 200 + 900 * i;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N);
        for (int k = 0; k < M * K; k++) A[k] = (float)((k * 7 + i) % 13) - 6.0f;
        for (int k = 0; k < K * N; k++) B[k] = (float)((k * 5) % 11) - 5.0f;
        cx_sgemm_builtin(false, false, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        int good = 1;
        for (int r = 0; r < M && good; r++)
            for (int c = 0; c < N; c++) {
                double s = 0;
                for (int p = 0; p < K; p++) s += (double)A[r * K + p] * B[p * N + c];
                if (C[r * N + c] != (float)s) { good = 0; break; } /* small ints: exact */
            }
        ok[i] = good;
        free(A);
        free(B);
        free(C);
    }
#else
    ok[0] = ok[1] = 1;
#endif
    CHECK(ok[0] && ok[1]);
    pthread_t th;
    int tok = 0;
    CHECK(pthread_create(&th, NULL, thread_body, &tok) == 0);
    pthread_join(th, NULL);
    CHECK(tok == 1);
}

static void test_threads_api(void) {
    cx_set_threads(1);
    CHECK(cx_get_threads() == 1);
    cx_set_threads(2);
    CHECK(cx_get_threads() == 2);
    cx_set_threads(0); /* all cores */
    CHECK(cx_get_threads() >= 1);
    cx_set_threads(-3);
    CHECK(cx_get_threads() >= 1);
    const char *name = cx_blas_name();
    CHECK(strcmp(name, "openblas") == 0 || strcmp(name, "builtin") == 0);
#ifdef CX_HAVE_CBLAS
    CHECK(strcmp(name, "openblas") == 0);
#else
    CHECK(strcmp(name, "builtin") == 0);
#endif
    CHECK(cx_gemm_tile_mr() >= 1 && cx_gemm_tile_nr() >= 1);
    cx_set_threads(1);
}

/* One thread pool: a build linked with the OpenMP build of OpenBLAS
 * (-DCX_OPENBLAS_OPENMP, chosen by tools/find_openblas.sh for gcc) runs
 * OpenBLAS's threads in libgomp's pool. After a 2-thread OpenBLAS GEMM big
 * enough to be split and a 2-thread built-in one, the process holds no more
 * threads than cores (the pthread build adds its own workers, created when the
 * library loads, on top of libgomp's: 2 x cores - 1 here). */
static void test_one_pool(void) {
#if defined(CX_OPENBLAS_OPENMP) && defined(_OPENMP)
    CHECK(openblas_get_parallel() == 2); /* 0 sequential, 1 pthreads, 2 OpenMP */
    enum { n = 512 };
    float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n),
          *C = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) A[i] = B[i] = (float)(i % 7) * 0.25f;
    cx_set_threads(2);
    cx_set_gemm_backend(CX_GEMM_BLAS);
    cx_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    cx_set_gemm_backend(CX_GEMM_BUILTIN);
    cx_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    cx_set_gemm_backend(CX_GEMM_AUTO);
    cx_set_threads(1);
    int tasks = 0;
    DIR *d = opendir("/proc/self/task");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') tasks++;
        closedir(d);
        int cores = omp_get_num_procs();
        CHECK(tasks >= 1 && tasks <= (cores > 2 ? cores : 2));
    }
    free(A);
    free(B);
    free(C);
#endif
}

/* Backend selection: forcing each backend is honoured and described, both
 * give the same product, and AUTO resolves to one of them. */
static void test_backend_choice(void) {
    int M = 37, N = 29, K = 41;
    float A[37 * 41], B[41 * 29], C1[37 * 29], C2[37 * 29];
    cx_seed(7);
    for (int i = 0; i < M * K; i++) A[i] = cx_rand_uniform() - 0.5f;
    for (int i = 0; i < K * N; i++) B[i] = cx_rand_uniform() - 0.5f;
    cx_set_gemm_backend(CX_GEMM_BUILTIN);
    CHECK(cx_gemm_backend_in_use() == CX_GEMM_BUILTIN);
    CHECK(strstr(cx_gemm_describe(), "builtin") != NULL);
    cx_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    cx_set_gemm_backend(CX_GEMM_BLAS);
#ifdef CX_HAVE_CBLAS
    CHECK(cx_gemm_backend_in_use() == CX_GEMM_BLAS);
    CHECK(strstr(cx_gemm_describe(), "openblas") != NULL);
#else
    CHECK(cx_gemm_backend_in_use() == CX_GEMM_BUILTIN); /* no CBLAS in this build */
#endif
    cx_sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    cxt_allclose(C1, C2, M * N, 1e-5, 1e-5, "builtin vs blas backend");
    /* reference for one element */
    double ref = 0;
    for (int k = 0; k < K; k++) ref += (double)A[5 * K + k] * B[7 * K + k];
    CHECK_NEAR(C1[5 * N + 7], ref, 1e-4);
    cx_set_gemm_backend(CX_GEMM_AUTO);
    cx_gemm_backend b = cx_gemm_backend_in_use();
    CHECK(b == CX_GEMM_BLAS || b == CX_GEMM_BUILTIN);
    EXPECT_FATAL(cx_set_gemm_backend((cx_gemm_backend)7), "unknown backend");
}

/* cx_sgemm_bias (the Linear layer's product): bit for bit C filled with the
 * bias row (or none), cx_sgemm(alpha 1, beta 1 / 0) and a ReLU or tanh pass, on the blocked path (several depth blocks, edge tiles, in place and
 * packed operands, 1 and 2 threads), the skinny and small-depth paths, a
 * padded C, and both backends. */
static void test_bias_epilogue(void) {
    const int shapes[][3] = {{64, 128, 128}, {64, 128, 4}, {37, 45, 29}, {64, 2, 128}, {3, 50, 60},
                             {100, 70, 600}, {256, 64, 64}, {15, 33, 9}, {29, 31, 1}, {8, 40, 0}};
    const int nshapes = (int)(sizeof shapes / sizeof *shapes);
    const cx_gemm_backend backends[2] = {CX_GEMM_BUILTIN, CX_GEMM_BLAS};
    for (int be = 0; be < 2; be++) {
        cx_set_gemm_backend(backends[be]);
        for (int threads = 1; threads <= 2; threads++) {
            cx_set_threads(threads);
            for (int si = 0; si < nshapes; si++)
                for (int tr = 0; tr < 24; tr++)
                    for (int pad = 0; pad <= 3; pad += 3) {
                        const int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                        const bool ta = tr & 1, tb = tr & 2, with_bias = !(tr & 4);
                        const int act = tr >> 3; /* CX_EPI_NONE, _RELU, _TANH */
                        /* (BLAS: a leading dimension is at least 1) */
                        const int lda = (ta ? M : K) + pad + (K == 0 && !ta && !pad);
                        const int ldb = (tb ? K : N) + pad + (K == 0 && tb && !pad), ldc = N + pad;
                        float *A = rand_buf((size_t)(ta ? K : M) * lda), *B = rand_buf((size_t)(tb ? N : K) * ldb);
                        float *bias = rand_buf((size_t)N), *C1 = rand_buf((size_t)M * ldc);
                        float *C2 = malloc(sizeof(float) * (size_t)M * ldc);
                        if (M > 3 && K > 0) A[ta ? 3 : (size_t)3 * lda] = NAN; /* op(A)[3][0]: a NaN row of C */
                        memcpy(C2, C1, sizeof(float) * (size_t)M * ldc);
                        if (with_bias)
                            for (int i = 0; i < M; i++) memcpy(C1 + (size_t)i * ldc, bias, sizeof(float) * (size_t)N);
                        cx_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, with_bias ? 1.0f : 0.0f, C1, ldc);
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                float *c = C1 + (size_t)i * ldc + j;
                                if (act == CX_EPI_RELU) *c = *c > 0 ? *c : 0.0f;
                                if (act == CX_EPI_TANH) *c = cx_vtanhf(*c);
                            }
                        cx_sgemm_bias(ta, tb, M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, act, C2, ldc);
                        /* every element of every row, padding included (untouched) */
                        int same = !memcmp(C1, C2, sizeof(float) * (size_t)M * ldc);
                        CHECK_MSG(same, "backend %d, %d threads, %dx%dx%d ta %d tb %d bias %d act %d pad %d", be,
                                  threads, M, N, K, ta, tb, with_bias, act, pad);
                        free(A), free(B), free(bias), free(C1), free(C2);
                    }
        }
    }
    cx_set_threads(1);
    cx_set_gemm_backend(CX_GEMM_AUTO);
}

int main(void) {
    RUN(test_backend_choice);
    RUN(test_threads_api);
    RUN(test_one_pool);
    RUN(test_degenerate);
    RUN(test_builtin_1thread);
    RUN(test_builtin_2threads);
    RUN(test_sgemm_1thread);
    RUN(test_sgemm_2threads);
    RUN(test_large);
    RUN(test_in_place);
    RUN(test_thread_determinism);
    RUN(test_small_m_threads);
    RUN(test_reentrant);
    RUN(test_bias_epilogue);
    TEST_END();
}
