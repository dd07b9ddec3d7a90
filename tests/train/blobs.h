/* Synthetic classification data shared by the trainer tests. */
#ifndef CX_TEST_BLOBS_H
#define CX_TEST_BLOBS_H
#include <cortex.h>

/* n examples of 16 features (a 1x4x4 "image") in 3 classes: class k has mean
 * 1.5 on the features j with j % 3 == k, Gaussian noise of std 0.8. */
static inline void make_blobs(cx_dataset *d, int n, uint64_t seed) {
    cx_rng r = cx_rng_new(seed);
    d->x = cx_tensor_new(CX_F32, CX_SHAPE(n, 16));
    d->y = cx_tensor_new(CX_I32, CX_SHAPE(n));
    d->owned = true;
    for (int i = 0; i < n; i++) {
        int k = (int)cx_rng_below(&r, 3);
        CX_I32P(d->y)[i] = k;
        for (int j = 0; j < 16; j++) CX_F(d->x)[i * 16 + j] = (j % 3 == k ? 1.5f : 0.0f) + 0.8f * cx_rng_normal(&r);
    }
}
#endif
