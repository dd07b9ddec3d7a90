/*
 * bench_gemm -- GFLOPS of cx_sgemm, of cblas_sgemm called directly (when the
 * build has CBLAS) and of the built-in kernel, square sizes 64..1024.
 *
 *   bench_gemm [threads [n ...]]     (threads also from env CX_THREADS; default 1)
 *
 * Prints a table, then one machine-readable line per size:
 *   GEMM n=512 threads=1 cortex=123.4 openblas_direct=125.0 builtin=98.7
 * (GFLOPS, median of several timed repetitions after a warm-up).
 *
 * On a machine whose cores are shared with other work, run multi-threaded
 * measurements with OMP_WAIT_POLICY=passive: spinning OpenMP workers (and
 * OpenBLAS's own spinning threads) otherwise steal the cores from each other.
 * OpenBLAS may not recognise a virtualised CPU (the header prints the kernel
 * it picked); OPENBLAS_CORETYPE=SkylakeX forces its AVX-512 kernels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>
#ifdef CX_HAVE_CBLAS
#include <cblas.h>
#endif

#define REPS 7

typedef enum { IMPL_CORTEX, IMPL_BLAS, IMPL_BUILTIN } impl_t;

static void run(impl_t impl, int n, const float *A, const float *B, float *C) {
    switch (impl) {
    case IMPL_CORTEX:
        cx_sgemm(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        break;
    case IMPL_BLAS:
#ifdef CX_HAVE_CBLAS
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f,
                    C, n);
#endif
        break;
    case IMPL_BUILTIN:
        cx_sgemm_builtin(false, false, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        break;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median GFLOPS over REPS timed repetitions; each repetition runs enough
 * calls to last >= ~10 ms so that timer resolution does not matter. */
static double bench(impl_t impl, int n, const float *A, const float *B, float *C) {
    const double flops = 2.0 * n * n * (double)n;
    int calls = (int)(4e8 / flops); /* >= ~4 ms per repetition at 100 GFLOPS */
    if (calls < 1) calls = 1;
    for (int w = 0; w < (calls > 2 ? calls : 2); w++) run(impl, n, A, B, C); /* warm-up */
    double g[REPS];
    for (int r = 0; r < REPS; r++) {
        double t0 = cx_now();
        for (int c = 0; c < calls; c++) run(impl, n, A, B, C);
        double dt = cx_now() - t0;
        g[r] = flops * calls / dt * 1e-9;
    }
    qsort(g, REPS, sizeof g[0], cmp_double);
    return g[REPS / 2];
}

int main(int argc, char **argv) {
    int threads = 1;
    const char *env = getenv("CX_THREADS");
    if (env && *env) threads = atoi(env);
    if (argc > 1) threads = atoi(argv[1]);
    if (threads <= 0) threads = 0; /* all cores */
    cx_set_threads(threads);
    threads = cx_get_threads();

    int sizes[16] = {64, 128, 256, 512, 1024};
    int nsizes = 5;
    if (argc > 2) {
        nsizes = 0;
        for (int i = 2; i < argc && nsizes < 16; i++) {
            int n = atoi(argv[i]);
            if (n > 0) sizes[nsizes++] = n;
        }
    }
    int nmax = 0;
    for (int i = 0; i < nsizes; i++)
        if (sizes[i] > nmax) nmax = sizes[i];

    size_t sz = (size_t)nmax * nmax;
    float *A = malloc(sz * sizeof *A), *B = malloc(sz * sizeof *B);
    float *C = malloc(sz * sizeof *C), *C2 = malloc(sz * sizeof *C2);
    if (!A || !B || !C || !C2) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        return 1;
    }
    cx_seed(42);
    for (size_t i = 0; i < sz; i++) {
        A[i] = cx_rand_uniform() * 2.0f - 1.0f;
        B[i] = cx_rand_uniform() * 2.0f - 1.0f;
    }

    printf("sgemm C = A B (row-major, square), threads=%d, cx_sgemm uses %s\n", threads,
           cx_gemm_describe());
    /* Conditions that change the numbers a lot on a small shared machine. */
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("OMP_WAIT_POLICY=%s", wp ? wp : "unset");
#ifdef CX_HAVE_CBLAS
    printf("  openblas core=%s", openblas_get_corename());
#endif
    printf("\n");
#ifdef CX_HAVE_CBLAS
    printf("%6s %12s %14s %12s %12s %10s\n", "n", "cx_sgemm", "cx_sgemm(blas)", "cblas_direct",
           "builtin", "builtin/blas");
#else
    printf("%6s %12s %12s\n", "n", "cx_sgemm", "builtin");
#endif
    char lines[16][160];
    for (int s = 0; s < nsizes; s++) {
        int n = sizes[s];
        double g_cx = bench(IMPL_CORTEX, n, A, B, C);
        double g_bi = bench(IMPL_BUILTIN, n, A, B, C2);
        /* Sanity: the two results must agree (both computed A*B). */
        run(IMPL_CORTEX, n, A, B, C);
        run(IMPL_BUILTIN, n, A, B, C2);
        double maxd = 0;
        for (size_t i = 0; i < (size_t)n * n; i++) {
            double d = fabs((double)C[i] - (double)C2[i]);
            if (d > maxd) maxd = d;
        }
        if (maxd > 1e-4 * n) fprintf(stderr, "WARNING n=%d: builtin differs by %g\n", n, maxd);
#ifdef CX_HAVE_CBLAS
        double g_bl = bench(IMPL_BLAS, n, A, B, C);
        cx_gemm_backend auto_b = cx_gemm_backend_in_use();
        cx_set_gemm_backend(CX_GEMM_BLAS);
        double g_cb = bench(IMPL_CORTEX, n, A, B, C);
        cx_set_gemm_backend(auto_b);
        printf("%6d %12.1f %14.1f %12.1f %12.1f %9.0f%%\n", n, g_cx, g_cb, g_bl, g_bi, 100.0 * g_bi / g_bl);
        snprintf(lines[s], sizeof lines[s],
                 "GEMM n=%d threads=%d cortex=%.2f cortex_blas=%.2f openblas_direct=%.2f builtin=%.2f", n,
                 threads, g_cx, g_cb, g_bl, g_bi);
#else
        printf("%6d %12.1f %12.1f\n", n, g_cx, g_bi);
        snprintf(lines[s], sizeof lines[s], "GEMM n=%d threads=%d cortex=%.2f builtin=%.2f", n,
                 threads, g_cx, g_bi);
#endif
        fflush(stdout);
    }
    for (int s = 0; s < nsizes; s++) puts(lines[s]);
    free(A);
    free(B);
    free(C);
    free(C2);
    return 0;
}
