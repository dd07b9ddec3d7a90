/* cortex/data.h -- in-memory datasets and seeded minibatch iterators, image
 * augmentation, text corpora (UTF-8, character vocabularies) and the
 * truncated-BPTT batcher. See cortex.h.
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
/* Split `prefix` ("train", "t10k") of an IDX image set stored under its usual
 * file names, DIR/PREFIX-images-idx3-ubyte[.gz] and DIR/PREFIX-labels-idx1-ubyte[.gz]
 * (MNIST, Fashion-MNIST); gzip first. CX_ERR_NOTFOUND, naming the files looked
 * for, if either is missing; otherwise as cx_dataset_load_idx. */
cx_status cx_dataset_load_idx_dir(const char *dir, const char *prefix, int max_items, cx_dataset *out);
/* Where Fashion-MNIST is: `dir` when not NULL; else Debian's package
 * (dataset-fashion-mnist) /usr/share/datasets/fashion-mnist when it holds the
 * training split; else the 6,000 + 1,000 image subset shipped with Cortex,
 * data/fashion-mnist-subset (relative to the working directory). */
const char *cx_fashion_mnist_dir(const char *dir);
/* The name of Fashion-MNIST class `label` ("t-shirt/top", "trouser", ...,
 * "ankle boot"); "?" outside 0..9. */
const char *cx_fashion_mnist_class(int label);

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
/* Shard the loader for data-parallel training (cortex/dist.h): every global
 * batch of B rows -- the same permutation and the same batches as without
 * sharding, given the same random stream state -- is split into `size`
 * contiguous parts, part r holding rows [B*r/size, B*(r+1)/size) (sizes
 * differ by at most one), and cx_loader_next returns part `rank` (zero rows
 * when B < size and the part is empty: a [0, ...] tensor); batch counts stay
 * those of the global batches. size 1 (the default) is the whole batch. Bad
 * rank / size: fatal. Takes effect at the next cx_loader_next. */
void cx_loader_set_shard(cx_loader *l, int rank, int size);
/* The number of parts set by cx_loader_set_shard (1: unsharded). */
int cx_loader_shards(const cx_loader *l);
/* The last batch's share of its global batch: rows returned / rows of the
 * global batch (1 unsharded; 0 before the first batch). The weight of this
 * rank's gradient in the sum over ranks (cx_dist_reducer_begin). */
float cx_loader_shard_weight(const cx_loader *l);

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
/* No augmentation (shift 0, no flip). */
cx_augment_opts cx_augment_defaults(void);
void cx_augment_images(cx_tensor *x, const cx_augment_opts *o);

/* ---- distorted, cluttered canvases: the data of the spatial transformer and
 * recurrent attention models (Jaderberg et al. 2015; Mnih et al. 2014). Every
 * example is a canvas x canvas image holding one item of `src`, rotated by an
 * angle from U(-max_angle, max_angle) degrees, scaled by a factor from
 * U(min_scale, max_scale) and put at a uniformly random place where its ink
 * (pixels > 0.1) stays inside the canvas (the centre, if it cannot), over
 * n_clutter fragments: fragment x fragment patches with some ink, cut from
 * other images of `src` at random places and put at random places (pixel-wise
 * maximum with the item). The item is drawn with cx_affine_grid /
 * cx_grid_sample (bilinear, zero padding). */
typedef struct cx_distort_opts {
    int canvas;                 /* side of the square canvas (60) */
    float max_angle;            /* degrees (45) */
    float min_scale, max_scale; /* (0.7, 1.2) */
    int n_clutter, fragment;    /* fragments per canvas and their side (6, 6) */
} cx_distort_opts;
/* The setting of the issue and of the examples: 60x60, +-45 degrees, scale
 * 0.7-1.2, 6 fragments of 6x6. */
cx_distort_opts cx_distort_defaults(void);
/* n canvases from the square images of src (x F32 [N, S*S], [N, S, S] or
 * [N, 1, S, S], values in [0, 1]; y I32 [N] or NULL): canvas i holds image
 * i mod N and has its label. A function of (src, n, o, seed) only: the random
 * draws come from a stream of its own seeded with `seed`, the calling
 * thread's stream is untouched. *out owns x F32 [n, canvas*canvas] and y I32
 * [n] (NULL without labels). Errors (CX_ERR_ARG / CX_ERR_SHAPE, message
 * naming the argument; *out untouched): n < 1, images not square, an option
 * out of range. The caller's arena is left as it was. */
cx_status cx_distort_dataset(const cx_dataset *src, int n, const cx_distort_opts *o, uint64_t seed,
                             cx_dataset *out);

/* A character language model's data in a few lines:
 *
 *   cx_vocab *voc = NULL; cx_tensor *ids;                   // NULL: build the vocabulary
 *   cx_text_load("data/text/kjv_genesis_ruth_jonah.txt", 1, &voc, &ids);
 *   cx_tensor *train, *val;
 *   cx_text_split(ids, 0.1, &train, &val);
 *   cx_module *emb = cx_embedding_new(voc->size, 64, -1);
 *   cx_bptt_loader *ld = cx_bptt_new(train, 32, 100, true);  // B = 32, T = 100
 *   cx_tensor *x, *y;                                         // I32 [T, B]
 *   while (cx_bptt_next(ld, &x, &y)) {
 *       cx_tensor *e = cx_module_forward(emb, x);             // [T, B, 64]
 *       cx_tensor *logits = ...;                              // [T, B, V]
 *       cx_tensor *loss = cx_seq_cross_entropy(logits, y, NULL, false, CX_REDUCE_MEAN);
 *       printf("%.3f bpc\n", cx_bits_per_char(cx_item(loss)));
 *       ...
 *   }
 */
/* ================================================================ text data */
/* Decode UTF-8 into code points (malloc'd array in *out, free with free();
 * *n_out code points). Strict: overlong forms, surrogates, code points above
 * U+10FFFF and truncated sequences give CX_ERR_FORMAT naming the byte offset.
 * A leading byte-order mark is kept as U+FEFF. */
cx_status cx_utf8_decode(const char *s, size_t n, int32_t **out, int64_t *n_out);
/* Encode one code point as UTF-8 into buf (at least 4 bytes); returns the
 * number of bytes (0 for an invalid code point). */
int cx_utf8_encode(int32_t cp, char *buf);

/* Character vocabulary. Id 0 is <unk>; ids 1 .. size-1 are the kept code
 * points in increasing order. Every code point not in the vocabulary
 * (including those dropped by min_count) encodes to CX_VOCAB_UNK. */
#define CX_VOCAB_UNK 0
typedef struct cx_vocab {
    int size;          /* number of ids, <unk> included */
    int32_t *chars;    /* [size] code point of each id; chars[0] = -1 (<unk>) */
    int64_t *counts;   /* [size] occurrences in the text the vocabulary was
                          built from (counts[0]: characters mapped to <unk>) */
} cx_vocab;

/* Build from n code points: every code point seen at least min_count times
 * (min_count <= 1: every one) gets an id. Never returns NULL (fatal on
 * invalid code points or out of memory). Free with cx_vocab_free. */
cx_vocab *cx_vocab_build(const int32_t *cps, int64_t n, int64_t min_count);
void cx_vocab_free(cx_vocab *v);  /* NULL is fine */
/* Id of a code point (CX_VOCAB_UNK when absent); binary search. */
int cx_vocab_id(const cx_vocab *v, int32_t cp);
/* Code point of an id (-1 for <unk> or an id out of range). */
int32_t cx_vocab_char(const cx_vocab *v, int id);
/* Encode UTF-8 text into ids (malloc'd, free with free()). Errors: invalid
 * UTF-8 (CX_ERR_FORMAT). */
cx_status cx_vocab_encode(const cx_vocab *v, const char *utf8, size_t n, int32_t **ids,
                          int64_t *n_ids);
/* Decode ids into UTF-8, snprintf-style: writes at most cap bytes including
 * a terminating NUL (buf may be NULL when cap is 0) and returns the length
 * the full text needs (without the NUL). <unk> and out-of-range ids decode
 * as U+FFFD. */
size_t cx_vocab_decode(const cx_vocab *v, const int32_t *ids, int64_t n, char *buf, size_t cap);
/* Save as safetensors (atomically): "chars" I32 [size] (chars[0] = -1) and
 * "counts" I64 [size], metadata format = "cortex-char-vocab", unk = "0". */
cx_status cx_vocab_save(const cx_vocab *v, const char *path);
/* Load a file written by cx_vocab_save. Checks the format tag, the shapes,
 * chars[0] == -1 and strictly increasing valid code points after it
 * (CX_ERR_FORMAT otherwise). *out is NULL on error. */
cx_status cx_vocab_load(const char *path, cx_vocab **out);

/* Read a UTF-8 text file and encode it: *ids is a persistent I32 tensor [N]
 * (free with cx_tensor_free). *vocab must be set before the call: NULL to
 * build the vocabulary from this text (cx_vocab_build with min_count; the
 * caller frees it with cx_vocab_free), or an existing vocabulary to encode
 * with (e.g. the training one for a validation file; min_count is then
 * ignored and *vocab is left as is). On error *ids is NULL and *vocab
 * unchanged. Errors: CX_ERR_IO, CX_ERR_FORMAT (invalid UTF-8 naming the
 * path and byte offset, empty file). */
cx_status cx_text_load(const char *path, int64_t min_count, cx_vocab **vocab, cx_tensor **ids);
/* Split a 1-D id tensor into its first part and its last
 * round(val_fraction * N) ids (contiguous, so that no stream crosses the
 * boundary); both results are persistent copies. 0 <= val_fraction < 1. */
void cx_text_split(const cx_tensor *ids, double val_fraction, cx_tensor **train, cx_tensor **val);

/* Truncated-BPTT language-model batcher over a 1-D I32/I64 id tensor of N
 * tokens (not copied: keep it alive while the loader is used).
 * At each cx_bptt_reset an offset o is chosen (0, or uniform in [0, T) from
 * the loader's random stream when random_offset is set: cx_bptt_set_rng, by
 * default the calling thread's current stream). The tokens o .. o + B*L are cut
 * into B parallel streams of L = (N - o - 1) / B tokens: stream b holds
 * positions o + b*L .. o + b*L + L - 1. Batch k is
 *     x[t][b] = ids[o + b*L + k*T + t],   y[t][b] = ids[o + b*L + k*T + t + 1]
 * for t < T_k = min(T, L - k*T) (the last batch of an epoch may be shorter),
 * so batch k+1 continues batch k in every stream and a recurrent state can be
 * carried across batches (detach it between them). Every one of the B*L
 * positions appears exactly once as an input per epoch. */
typedef struct cx_bptt_loader cx_bptt_loader;
/* Fatal if batch < 1, bptt < 1, or the corpus is too short for one token per
 * stream (N < batch + bptt when random_offset, else N < batch + 1). Starts
 * positioned at epoch 0 (cx_bptt_reset is called once). */
cx_bptt_loader *cx_bptt_new(const cx_tensor *ids, int batch, int bptt, bool random_offset);
void cx_bptt_free(cx_bptt_loader *l);
/* Draw offsets from `rng` from the next reset on (NULL: the calling thread's
 * current stream; not owned). */
void cx_bptt_set_rng(cx_bptt_loader *l, cx_rng *rng);
/* Start a new epoch (draws a new offset when random_offset is set). */
void cx_bptt_reset(cx_bptt_loader *l);
/* Next batch as step tensors (current arena): *x and *y I32 [T_k, B].
 * Returns false at the end of the epoch. */
bool cx_bptt_next(cx_bptt_loader *l, cx_tensor **x, cx_tensor **y);
/* Batches per epoch with the current offset: ceil(L / T). */
int cx_bptt_num_batches(const cx_bptt_loader *l);
/* Current offset o and stream length L. */
int64_t cx_bptt_offset(const cx_bptt_loader *l);
int64_t cx_bptt_stream_len(const cx_bptt_loader *l);

#ifdef __cplusplus
}
#endif
#endif
