/* Private: blocked float matrix transposes shared by the GEMM packing
 * (gemm.c) and the channels-last copies of the Winograd convolution. */
#ifndef CX_CPU_TRANSPOSE_H
#define CX_CPU_TRANSPOSE_H
#include <stddef.h>
#include <string.h>

/* 8x8 in-register transpose (GCC >= 12 and clang both have
 * __builtin_shufflevector): dst[j * ldd + i] = src[i * ld + j], i, j < 8. */
typedef float cx_v8 __attribute__((vector_size(32)));
static inline void cx_transpose8(const float *src, size_t ld, float *dst, size_t ldd) {
    cx_v8 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) memcpy(&r[i], src + (size_t)i * ld, sizeof(cx_v8));
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int k = 0; k < 4; k++) {
        cx_v8 lo = __builtin_shufflevector(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        cx_v8 hi = __builtin_shufflevector(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + (size_t)k * ldd, &lo, sizeof(cx_v8));
        memcpy(dst + (size_t)(k + 4) * ldd, &hi, sizeof(cx_v8));
    }
}

/* dst[j * ldd + i] = src[i * ld + j] for i < rows, j < cols. */
static inline void cx_transpose_block(const float *src, size_t ld, float *dst, size_t ldd, int rows,
                                int cols) {
    int i = 0;
    for (; i + 8 <= rows; i += 8) {
        int j = 0;
        for (; j + 8 <= cols; j += 8)
            cx_transpose8(src + (size_t)i * ld + j, ld, dst + (size_t)j * ldd + i, ldd);
        for (; j < cols; j++)
            for (int k = 0; k < 8; k++) dst[(size_t)j * ldd + i + k] = src[(size_t)(i + k) * ld + j];
    }
    for (; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * ld + j];
}

#endif
