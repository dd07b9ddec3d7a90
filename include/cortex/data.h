/* cortex/data.h -- in-memory datasets and seeded minibatch iterators. See cortex.h.
 *
 *   cx_dataset ds = {.x = images, .y = labels};   // persistent tensors, first dim = N
 *   cx_loader *ld = cx_loader_new(&ds, 64, true, false);
 *   for (int epoch = 0; epoch < 5; epoch++) {
 *       cx_loader_reset(ld);                       // reshuffles (seeded random stream)
 *       cx_tensor *xb, *yb;
 *       while (cx_loader_next(ld, &xb, &yb)) { ...; cx_step_reset(); }
 *   }
 *   cx_loader_free(ld);
 */
#ifndef CORTEX_DATA_H
#define CORTEX_DATA_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* A dataset of N examples: x [N, ...] (F32) and y [N, ...] (any dtype) or NULL.
 * The dataset does not own the tensors unless `owned` is set, in which case
 * cx_dataset_free frees them. */
typedef struct cx_dataset {
    cx_tensor *x, *y;
    bool owned;
} cx_dataset;

int cx_dataset_len(const cx_dataset *d);
/* Check that x and y agree on N; returns CX_ERR_SHAPE with a message otherwise. */
cx_status cx_dataset_check(const cx_dataset *d);
void cx_dataset_free(cx_dataset *d);
/* Split off the last `n_tail` examples into a new dataset (copies). Both
 * results own their tensors. */
cx_status cx_dataset_split(const cx_dataset *d, int n_tail, cx_dataset *head, cx_dataset *tail);
/* Load an IDX image/label pair (e.g. Fashion-MNIST): images scaled to [0,1]
 * as F32 [N, rows*cols], labels I32 [N]. max_items > 0 limits N. */
cx_status cx_dataset_load_idx(const char *images, const char *labels, int max_items, cx_dataset *out);

typedef struct cx_loader cx_loader;
/* Iterate minibatches of `batch` examples; shuffle draws a new permutation
 * at every cx_loader_reset (and at creation) from the loader's stream (see
 * cx_loader_set_rng; by default the current stream of the calling thread);
 * each permutation depends only on that stream's state at the reset, so
 * restoring it (cx_rng_set) before a reset replays an epoch exactly;
 * drop_last skips the final short batch. */
cx_loader *cx_loader_new(const cx_dataset *d, int batch, bool shuffle, bool drop_last);
/* Shuffle with `rng` from the next cx_loader_reset on (NULL: the calling
 * thread's current stream). The stream is not owned and must outlive its use. */
void cx_loader_set_rng(cx_loader *l, cx_rng *rng);
void cx_loader_free(cx_loader *l);
void cx_loader_reset(cx_loader *l);
/* Next batch as step tensors (current arena): *x [B, ...], *y [B, ...] (y
 * NULL when the dataset has no labels). Returns false at the end of the epoch. */
bool cx_loader_next(cx_loader *l, cx_tensor **x, cx_tensor **y);
int cx_loader_num_batches(const cx_loader *l);
/* Indices of the examples of the last batch returned (length = its size). */
const int *cx_loader_indices(const cx_loader *l, int *n);

/* ---- image augmentation, in place on a batch x [B, C, H, W] (F32), drawing
 * from the calling thread's current random stream (so it is reproducible from
 * the seed):
 *   shift    random crop with zero padding `shift` on every side, which is the
 *            same as a random translation by -shift..+shift pixels in x and y
 *            with zeros shifted in ("crop with padding" and "small
 *            translations" of the usual recipes);
 *   hflip    mirror left-right with probability 1/2. */
typedef struct cx_augment_opts {
    int shift;
    bool hflip;
} cx_augment_opts;
void cx_augment_images(cx_tensor *x, const cx_augment_opts *o);

#ifdef __cplusplus
}
#endif
#endif
