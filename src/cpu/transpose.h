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

/* 8 rows by 16 columns: dst[j * ldd + i] = src[i * ld + j], i < 8, j < 16
 * (cx_transpose8 twice on other targets). With AVX-512, 24 shuffles per 128
 * floats (unpack pairs of rows, then pairs of those within each 128-bit
 * lane, then one two-source permute that puts a column's two halves side by
 * side) and 16 half-vector stores, against 48 shuffles for two 8x8 blocks:
 * the shuffle unit bounds both. */
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
static inline void cx_transpose8x16(const float *src, size_t ld, float *dst, size_t ldd) {
    __m512 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_ps(src + (size_t)i * ld);
    for (int i = 0; i < 8; i += 2) {
        /* 128-bit lane k: t[i] = r_i[4k], r_i+1[4k], r_i[4k+1], r_i+1[4k+1];
         * t[i+1] the same for 4k+2, 4k+3 */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        /* lane k of u[h + c]: rows h..h+3 of column 4k + c */
        u[h] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[h]), _mm512_castps_pd(t[h + 2])));
        u[h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[h]), _mm512_castps_pd(t[h + 2])));
        u[h + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[h + 1]), _mm512_castps_pd(t[h + 3])));
        u[h + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[h + 1]), _mm512_castps_pd(t[h + 3])));
    }
    /* column 4k + c = lane k of u[c] (rows 0-3), then lane k of u[c + 4] */
    const __m512i lo = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
    const __m512i hi = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
    for (int c = 0; c < 4; c++) {
        __m512 a = _mm512_permutex2var_ps(u[c], lo, u[c + 4]); /* columns c, 4 + c */
        __m512 b = _mm512_permutex2var_ps(u[c], hi, u[c + 4]); /* columns 8 + c, 12 + c */
        _mm256_storeu_ps(dst + (size_t)c * ldd, _mm512_castps512_ps256(a));
        _mm256_storeu_ps(dst + (size_t)(4 + c) * ldd, _mm512_extractf32x8_ps(a, 1));
        _mm256_storeu_ps(dst + (size_t)(8 + c) * ldd, _mm512_castps512_ps256(b));
        _mm256_storeu_ps(dst + (size_t)(12 + c) * ldd, _mm512_extractf32x8_ps(b, 1));
    }
}
#else
static inline void cx_transpose8x16(const float *src, size_t ld, float *dst, size_t ldd) {
    cx_transpose8(src, ld, dst, ldd);
    cx_transpose8(src + 8, ld, dst + 8 * ldd, ldd);
}
#endif

/* dst[j * ldd + i] = src[i * ld + j] for i < rows, j < cols. */
static inline void cx_transpose_block(const float *src, size_t ld, float *dst, size_t ldd, int rows,
                                int cols) {
    int i = 0;
    for (; i + 8 <= rows; i += 8) {
        int j = 0;
        for (; j + 16 <= cols; j += 16)
            cx_transpose8x16(src + (size_t)i * ld + j, ld, dst + (size_t)j * ldd + i, ldd);
        for (; j + 8 <= cols; j += 8)
            cx_transpose8(src + (size_t)i * ld + j, ld, dst + (size_t)j * ldd + i, ldd);
        for (; j < cols; j++)
            for (int k = 0; k < 8; k++) dst[(size_t)j * ldd + i + k] = src[(size_t)(i + k) * ld + j];
    }
    for (; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * ldd + i] = src[(size_t)i * ld + j];
}

#endif
