/*
 * cpu/pgemm.c -- GEMM against a weight packed once and reused: C = beta C +
 * A op(B) with a small M (the batch of a recurrent step) and the same B for
 * many products (W_hh over the T steps of a sequence, forward and backward).
 * cx_sgemm would repack the whole weight on every call; here it is packed
 * once into panels of RG_NR columns ([K][RG_NR] each, zero-padded) and every
 * product runs an 8 x RG_NR register-blocked kernel over them. Each element
 * of C is computed by one thread in a fixed k order, so results do not depend
 * on the thread count. Declared in cpu/cpu.h.
 */
#include "../tensor/internal.h"
#include "cpu.h"

/* The kernel relies on fused multiply-add contraction of `acc += a * b`;
 * -std=c11 turns GCC's contraction off (as in cpu/gemm.c). */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif


#define RG_VL 16
#define RG_NR (2 * RG_VL)
#define RG_MR 8
typedef float rg_vf __attribute__((vector_size(RG_VL * sizeof(float))));

/* (a macro, not a function: returning a 64-byte vector by value changes the
 * ABI on targets without AVX-512 and GCC/clang warn about it) */
#define RG_LOAD(v, p) memcpy(&(v), (p), sizeof(v))

/* Pack op(B) [K, N] (B row-major with leading dimension ldb; trans: B is
 * stored [N, K]) into ceil(N/RG_NR) panels. Returns the arena buffer. */
float *cx_pgemm_pack(const float *B, int ldb, bool trans, int K, int N) {
    const int npan = (N + RG_NR - 1) / RG_NR;
    float *bp = cx_arena_alloc((size_t)npan * K * RG_NR * sizeof(float));
    int nt = (int64_t)K * N / 4 >= CX_RNN_PAR_MIN ? cx_cpu_threads_available() : 1;
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1))
    for (int p = 0; p < npan; p++) {
        float *dst = bp + (size_t)p * K * RG_NR;
        const int n0 = p * RG_NR, nr = N - n0 < RG_NR ? N - n0 : RG_NR;
        if (!trans) {
            for (int k = 0; k < K; k++) {
                const float *src = B + (size_t)k * ldb + n0;
                float *d = dst + (size_t)k * RG_NR;
                for (int j = 0; j < nr; j++) d[j] = src[j];
                for (int j = nr; j < RG_NR; j++) d[j] = 0.0f;
            }
        } else {
            for (int j = 0; j < RG_NR; j++) {
                const float *src = B + (size_t)(n0 + j) * ldb;
                for (int k = 0; k < K; k++) dst[(size_t)k * RG_NR + j] = j < nr ? src[k] : 0.0f;
            }
        }
    }
    return bp;
}

/* C[M, N] = beta * C + A[M, K] * packed B. beta is 0 or 1. */
void cx_pgemm(int M, int N, int K, const float *A, int lda, const float *bp, float beta, float *C,
                    int ldc) {
    const int npan = (N + RG_NR - 1) / RG_NR;
    const int nmt = (M + RG_MR - 1) / RG_MR;
    int nt = (double)M * N * K >= 1e6 ? cx_cpu_threads_available() : 1;
    if (nt > npan) nt = npan;
    (void)nt;
    CX_OMP(parallel for num_threads(nt) if(nt > 1) schedule(static))
    for (int p = 0; p < npan; p++) {
        const float *b = bp + (size_t)p * K * RG_NR;
        const int n0 = p * RG_NR, nr = N - n0 < RG_NR ? N - n0 : RG_NR;
        for (int mt = 0; mt < nmt; mt++) {
            const int r0 = mt * RG_MR, mr = M - r0 < RG_MR ? M - r0 : RG_MR;
            const float *a[RG_MR];
            for (int r = 0; r < RG_MR; r++) a[r] = A + (size_t)(r0 + (r < mr ? r : 0)) * lda;
            rg_vf c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
            rg_vf c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0}, c60 = {0}, c61 = {0}, c70 = {0}, c71 = {0};
            for (int k = 0; k < K; k++) {
                rg_vf b0, b1;
                RG_LOAD(b0, b + (size_t)k * RG_NR);
                RG_LOAD(b1, b + (size_t)k * RG_NR + RG_VL);
#define RG_ROW(r) { const float s = a[r][k]; c##r##0 += s * b0; c##r##1 += s * b1; }
                RG_ROW(0) RG_ROW(1) RG_ROW(2) RG_ROW(3) RG_ROW(4) RG_ROW(5) RG_ROW(6) RG_ROW(7)
#undef RG_ROW
            }
            const rg_vf acc[RG_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
            for (int r = 0; r < mr; r++) {
                float out[RG_NR];
                memcpy(out, &acc[r][0], sizeof acc[r][0]);
                memcpy(out + RG_VL, &acc[r][1], sizeof acc[r][1]);
                float *crow = C + (size_t)(r0 + r) * ldc + n0;
                if (beta == 0.0f)
                    for (int j = 0; j < nr; j++) crow[j] = out[j];
                else
                    for (int j = 0; j < nr; j++) crow[j] += out[j];
            }
        }
    }
}
