/*
 * cpu/cpu.h -- internal interface of the CPU layer (GEMM kernel, threads).
 *
 * Not part of the public API. The public entry points (cx_sgemm,
 * cx_sgemm_builtin, cx_set_threads, cx_get_threads, cx_blas_name) are
 * declared in include/cortex/core.h.
 */
#ifndef CX_CPU_H
#define CX_CPU_H

#include <stdbool.h>
#include <stddef.h>

#include "cortex/core.h"

/* GEMMs with fewer multiply-adds (M*N*K) than this run on one thread. */
#define CX_GEMM_PAR_MIN_FLOPS (64.0 * 64.0 * 64.0 * 4.0)

/* Register-block shape of the built-in micro-kernel for this build:
 * rows of C per tile (MR) and columns per tile (NR). Exposed for tests. */
int cx_gemm_tile_mr(void);
int cx_gemm_tile_nr(void);

/* Number of threads a parallel CPU loop may use right now: cx_get_threads()
 * outside a parallel region, 1 inside one (no nested parallelism). */
int cx_cpu_threads_available(void);

#endif
