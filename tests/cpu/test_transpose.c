/* The blocked transposes of cpu/transpose.h (GEMM packing, Winograd):
 * every block kernel against the definition, on sizes around the block
 * edges, with padded leading dimensions and unaligned starts. */
#include <stdlib.h>

#include "test.h"
#include "cpu/transpose.h"

static void fill(float *a, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) a[i] = (float)((seed + 7919u * (unsigned)i) % 10007u) - 5000.0f;
}

/* dst[j * ldd + i] must be src[i * ld + j] inside the block, and the
 * sentinel outside it */
static int check_block(const float *src, size_t ld, const float *dst, size_t ldd, int rows, int cols,
                       size_t ndst) {
    for (size_t k = 0; k < ndst; k++) {
        size_t j = k / ldd, i = k % ldd;
        float want = (int)j < cols && (int)i < rows ? src[i * ld + j] : -1.0f;
        if (dst[k] != want) return 0;
    }
    return 1;
}

static void test_kernels(void) {
    enum { LD = 37, LDD = 41 };
    float src[16 * LD + 3], dst[16 * LDD];
    fill(src, sizeof src / sizeof *src, 1);
    for (int off = 0; off < 3; off++) {
        for (size_t k = 0; k < 16 * LDD; k++) dst[k] = -1.0f;
        cx_transpose8(src + off, LD, dst, LDD);
        CHECK_MSG(check_block(src + off, LD, dst, LDD, 8, 8, 16 * LDD), "8x8, offset %d", off);
        for (size_t k = 0; k < 16 * LDD; k++) dst[k] = -1.0f;
        cx_transpose8x16(src + off, LD, dst, LDD);
        CHECK_MSG(check_block(src + off, LD, dst, LDD, 8, 16, 16 * LDD), "8x16, offset %d", off);
    }
}

static void test_blocks(void) {
    const int sizes[] = {1, 5, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40};
    const int ns = (int)(sizeof sizes / sizeof *sizes);
    for (int a = 0; a < ns; a++)
        for (int b = 0; b < ns; b++) {
            const int rows = sizes[a], cols = sizes[b];
            const size_t ld = (size_t)cols + 3, ldd = (size_t)rows + 2;
            float *src = malloc(sizeof(float) * (size_t)rows * ld), *dst = malloc(sizeof(float) * (size_t)cols * ldd);
            CHECK(src && dst);
            if (!src || !dst) return;
            fill(src, (size_t)rows * ld, (unsigned)(rows * 100 + cols));
            for (size_t k = 0; k < (size_t)cols * ldd; k++) dst[k] = -1.0f;
            cx_transpose_block(src, ld, dst, ldd, rows, cols);
            CHECK_MSG(check_block(src, ld, dst, ldd, rows, cols, (size_t)cols * ldd), "%d x %d", rows, cols);
            free(src);
            free(dst);
        }
}

int main(void) {
    RUN(test_kernels);
    RUN(test_blocks);
    TEST_END();
}
