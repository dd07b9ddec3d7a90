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
/* The built-in GEMM reads small operands in place (A of at most 64K floats
 * as stored; B too when untransposed) instead of packing them; off, it packs
 * every operand (CX_GEMM_IN_PLACE=0 at start-up). Same results bitwise. */
void cx_gemm_set_in_place(bool on);

/* C [M x N] = act(op(A) op(B) + bias in every row) (bias: N floats, or NULL
 * for none; act: CX_EPI_NONE, CX_EPI_RELU max(., 0) with NaN to 0 as
 * cx_relu, CX_EPI_TANH as cx_tanh): the same result, bit for bit, as C
 * filled with the bias rows, cx_sgemm with alpha 1 and beta 1 (0 without a
 * bias) and the activation's pass; the built-in kernel adds the bias and
 * applies the activation to each tile as it stores it instead (cx_linear,
 * cx_linear_relu, cx_linear_tanh). */
enum { CX_EPI_NONE = 0, CX_EPI_RELU = 1, CX_EPI_TANH = 2 };
void cx_sgemm_bias(bool transA, bool transB, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, const float *bias, int act, float *C, int ldc);

/* Number of threads a parallel CPU loop may use right now: cx_get_threads()
 * outside a parallel region, 1 inside one (no nested parallelism). */
int cx_cpu_threads_available(void);

/* The adaptive thread count's check (threads.c), called by cx_step_reset:
 * cheap (a clock read) except once per window. */
void cx_cpu_threads_tick(void);

/* The calling thread's own scratch buffer number slot (0 <= slot <
 * CX_TSCRATCH_SLOTS): at least bytes long, 64-byte aligned, contents
 * undefined. It is the same memory from call to call (it only moves when a
 * call needs more), so it stays in the cache of the core that uses it. A
 * parallel loop's per-thread buffers carved from the step's arena landed on
 * memory the other thread had written in an earlier layer, and every line
 * then came from that thread's cache (slow when the two cores do not share
 * a last-level cache). A thread's buffers are freed when it exits; those of
 * threads alive at exit stay reachable (not leaks). Fatal when memory runs
 * out. */
#define CX_TSCRATCH_SLOTS 8
void *cx_tscratch(int slot, size_t bytes);

/* Loops of the recurrent kernels (gates, packing) run in parallel from this
 * much work on. */
#define CX_RNN_PAR_MIN 4096

/* GEMM against a weight packed once (cpu/pgemm.c), for many products with a
 * small M and the same B (recurrent steps). cx_pgemm_pack packs op(B) [K, N]
 * (B row-major with leading dimension ldb; trans: B is stored [N, K]) into an
 * arena buffer; cx_pgemm computes C[M, N] = beta C + A[M, K] op(B), beta 0 or
 * 1. Results do not depend on the thread count. */
float *cx_pgemm_pack(const float *B, int ldb, bool trans, int K, int N);
void cx_pgemm(int M, int N, int K, const float *A, int lda, const float *bp, float beta, float *C, int ldc);

#endif
