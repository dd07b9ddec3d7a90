/*
 * cpu/threads.c -- thread count of the OpenMP loops and of the BLAS.
 */
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef CX_HAVE_CBLAS
#include <cblas.h>
#endif
#ifndef _OPENMP
#include <unistd.h>
#endif

#include "cpu/cpu.h"

/* 0 until cx_set_threads is called on this thread (OpenMP builds report the
 * OpenMP default, itself a per-thread setting). */
static _Thread_local int g_threads = 0;

static int all_cores(void) {
#ifdef _OPENMP
    return omp_get_num_procs();
#elif defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#else
    return 1;
#endif
}

void cx_set_threads(int n) {
    if (n <= 0) n = all_cores();
    if (n < 1) n = 1;
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef CX_HAVE_CBLAS
    openblas_set_num_threads(n);
#endif
}

int cx_get_threads(void) {
#ifdef _OPENMP
    /* omp_get_max_threads reflects OMP_NUM_THREADS and omp_set_num_threads
     * (a per-thread ICV): report what a parallel loop here would use. */
    (void)g_threads;
    return omp_get_max_threads();
#else
    return g_threads > 0 ? g_threads : 1;
#endif
}

int cx_cpu_threads_available(void) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

const char *cx_blas_name(void) {
#ifdef CX_HAVE_CBLAS
    return "openblas";
#else
    return "builtin";
#endif
}
