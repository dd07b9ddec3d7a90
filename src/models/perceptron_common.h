/* Internal helpers shared by perceptron.c and kernel_perceptron.c. */
#ifndef CX_PERCEPTRON_COMMON_H
#define CX_PERCEPTRON_COMMON_H
#include "cortex/core.h"

/* N, D > 0, labels in {-1, +1}, X finite; errors name `fn`. */
cx_status cx_pc_check_data(const char *fn, const float *X, const float *t, int N, int D);
/* X F32 [N, D] and t F32/I32 [N] -> raw pointers; *tbuf is a malloc'd float
 * copy of I32 labels (caller frees) or NULL. */
cx_status cx_pc_unpack(const char *fn, const cx_tensor *X, const cx_tensor *t, const float **Xp,
                       const float **tp, float **tbuf, int *N, int *D);
/* Fisher-Yates shuffle of idx[0..n) with the Cortex PRNG. */
void cx_pc_shuffle(int *idx, int n);
#endif
