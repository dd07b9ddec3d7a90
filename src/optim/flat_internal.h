/* The layout of a cx_flat, shared by flat.c, optim.c and clip.c (not public
 * API; see cortex/optim.h). */
#ifndef CX_FLAT_INTERNAL_H
#define CX_FLAT_INTERNAL_H
#include "cortex/optim.h"

struct cx_flat {
    cx_params list; /* the tensors in layout order; NULL once a tensor is freed */
    int64_t *off;   /* tensor i starts at data + off[i] and grad + off[i] */
    int64_t *size;  /* numel of tensor i */
    int64_t total;  /* floats per block: a multiple of CX_FLAT_ALIGN, >= CX_FLAT_ALIGN */
    float *data, *grad;
};

/* The flat buffer whose list is exactly t[0..n) (same tensors, same order),
 * with every tensor's data and grad still at its place in the blocks; NULL
 * when there is none. O(n) pointer comparisons. */
const cx_flat *cx_flat_match(cx_tensor *const *t, int n);

/* 64-byte aligned allocation of n floats (at least one cache line); out of
 * memory is fatal, naming `who`. */
float *cx_flat_alloc_floats(int64_t n, const char *who);

#endif
