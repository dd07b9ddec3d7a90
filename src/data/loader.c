/* Datasets and seeded minibatch iteration. */
#include "../tensor/internal.h"
#include <stdio.h>
#include <sys/stat.h>

int cx_dataset_len(const cx_dataset *d) { return d->x && d->x->ndim ? d->x->shape[0] : 0; }

cx_status cx_dataset_check(const cx_dataset *d) {
    if (!d->x) return cx_set_error(CX_ERR_ARG, "dataset has no inputs");
    if (d->x->dtype != CX_F32) return cx_set_error(CX_ERR_ARG, "dataset inputs must be F32");
    if (d->x->ndim < 1) return cx_set_error(CX_ERR_SHAPE, "dataset inputs must have a batch dimension");
    if (d->y && (d->y->ndim < 1 || d->y->shape[0] != d->x->shape[0]))
        return cx_set_error(CX_ERR_SHAPE, "dataset has %d inputs but %d labels", d->x->shape[0],
                            d->y->ndim ? d->y->shape[0] : 0);
    return CX_OK;
}

void cx_dataset_free(cx_dataset *d) {
    if (d->owned) {
        cx_tensor_free(d->x);
        cx_tensor_free(d->y);
    }
    d->x = d->y = NULL;
}

static cx_tensor *rows_copy(const cx_tensor *t, int start, int n) {
    int shape[CX_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = n;
    cx_tensor *c = cx_tensor_new(t->dtype, shape, t->ndim);
    size_t row = t->shape[0] ? (size_t)(t->numel / t->shape[0]) * cx_dtype_size(t->dtype) : 0;
    memcpy(c->data, (const char *)t->data + row * (size_t)start, row * (size_t)n);
    return c;
}

cx_status cx_dataset_split(const cx_dataset *d, int n_tail, cx_dataset *head, cx_dataset *tail) {
    cx_status st = cx_dataset_check(d);
    if (st) return st;
    int n = cx_dataset_len(d);
    if (n_tail < 0 || n_tail > n) return cx_set_error(CX_ERR_ARG, "split: %d of %d examples", n_tail, n);
    head->x = rows_copy(d->x, 0, n - n_tail);
    head->y = d->y ? rows_copy(d->y, 0, n - n_tail) : NULL;
    tail->x = rows_copy(d->x, n - n_tail, n_tail);
    tail->y = d->y ? rows_copy(d->y, n - n_tail, n_tail) : NULL;
    head->owned = tail->owned = true;
    return CX_OK;
}

cx_status cx_dataset_load_idx(const char *images, const char *labels, int max_items, cx_dataset *out) {
    cx_tensor *x = NULL, *y = NULL;
    cx_status st = cx_idx_load(images, 1.0f / 255.0f, max_items, &x);
    if (st) return st;
    if (x->ndim < 2) {
        cx_tensor_free(x);
        return cx_set_error(CX_ERR_FORMAT, "%s: expected images (at least 2 dimensions)", images);
    }
    st = cx_idx_load(labels, 1.0f, max_items, &y);
    if (st) {
        cx_tensor_free(x);
        return st;
    }
    if (y->dtype != CX_I32 || y->ndim != 1 || y->shape[0] != x->shape[0]) {
        int ny = y->ndim ? y->shape[0] : 0, nx = x->shape[0];
        char sh[96];
        cx_shape_str(y, sh, sizeof sh);
        if (y->ndim != 1)
            st = cx_set_error(CX_ERR_FORMAT, "%s: labels must be a 1-D IDX file (one class number per image), this "
                              "one has shape %s", labels, sh);
        else if (y->dtype != CX_I32)
            st = cx_set_error(CX_ERR_FORMAT, "%s: labels must be integers (IDX type u8, i8, i16 or i32), this file "
                              "holds floating-point values", labels);
        else
            st = cx_set_error(CX_ERR_FORMAT, "%s: %d labels for %d images in %s", labels, ny, nx, images);
        cx_tensor_free(x);
        cx_tensor_free(y);
        return st;
    }
    /* flatten images to [N, features] */
    int feat = (int)(x->numel / (x->shape[0] ? x->shape[0] : 1));
    x->ndim = 2;
    x->shape[1] = feat;
    out->x = x;
    out->y = y;
    out->owned = true;
    return CX_OK;
}

struct cx_loader {
    const cx_dataset *d;
    int n, batch, pos, last_n;
    int shard, shards;  /* this process's part of each batch, of `shards` (1: whole batches) */
    int last_global;    /* rows of the last global batch (all parts) */
    bool shuffle, drop_last;
    int *perm;
    cx_rng *rng; /* NULL: the current stream of the thread calling reset */
};

void cx_loader_set_rng(cx_loader *l, cx_rng *rng) { l->rng = rng; }

cx_loader *cx_loader_new(const cx_dataset *d, int batch, bool shuffle, bool drop_last) {
    if (cx_dataset_check(d)) cx_fatal("loader: %s", cx_last_error());
    if (batch < 1) cx_fatal("loader: batch size must be >= 1, got %d", batch);
    cx_loader *l = cx_xcalloc(1, sizeof *l);
    l->d = d;
    l->n = cx_dataset_len(d);
    l->batch = batch;
    l->shuffle = shuffle;
    l->drop_last = drop_last;
    l->shards = 1;
    l->perm = cx_xmalloc((size_t)(l->n ? l->n : 1) * sizeof(int));
    cx_loader_reset(l);
    return l;
}

void cx_loader_free(cx_loader *l) {
    if (!l) return;
    free(l->perm);
    free(l);
}

void cx_loader_reset(cx_loader *l) {
    l->pos = 0;
    l->last_n = l->last_global = 0;
    /* start from the identity so an epoch's order depends only on the PRNG
     * state (exact resume from a checkpoint) */
    for (int i = 0; i < l->n; i++) l->perm[i] = i;
    if (l->shuffle)
        for (int i = l->n - 1; i > 0; i--) {
            int j = (int)cx_rng_below(l->rng ? l->rng : cx_rng_current(), (uint32_t)i + 1);
            int t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
}

int cx_loader_num_batches(const cx_loader *l) {
    return l->drop_last ? l->n / l->batch : (l->n + l->batch - 1) / l->batch;
}

static cx_tensor *gather_rows(const cx_tensor *t, const int *idx, int b) {
    int shape[CX_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = b;
    cx_tensor *out = cx_empty(t->dtype, shape, t->ndim);
    size_t row = (size_t)(t->numel / t->shape[0]) * cx_dtype_size(t->dtype);
    /* rows scattered over a large data set are read from memory at its
     * latency: a batch of 64 Fashion-MNIST images took 30 us on one thread,
     * 20 us split over two (Zen 5 VM, medians) */
    const bool par = row * (size_t)b >= 65536;
    CX_PFOR(par, for (int i = 0; i < b; i++)
        memcpy((char *)out->data + row * (size_t)i, (const char *)t->data + row * (size_t)idx[i], row););
    return out;
}

void cx_loader_set_shard(cx_loader *l, int rank, int size) {
    if (size < 1 || rank < 0 || rank >= size)
        cx_fatal("loader: shard %d of %d: need 0 <= rank < size and size >= 1", rank, size);
    l->shard = rank;
    l->shards = size;
}

/* Rows [lo, hi) of a global batch of b rows that part r of s gets: b*r/s
 * rounded down, so the parts are contiguous, disjoint, cover the batch and
 * differ in size by at most one. */
static int part_start(int b, int r, int s) { return (int)((int64_t)b * r / s); }

bool cx_loader_next(cx_loader *l, cx_tensor **x, cx_tensor **y) {
    int left = l->n - l->pos;
    if (left <= 0 || (l->drop_last && left < l->batch)) return false;
    int b = left < l->batch ? left : l->batch;
    int lo = part_start(b, l->shard, l->shards), hi = part_start(b, l->shard + 1, l->shards);
    const int *idx = l->perm + l->pos + lo;
    *x = gather_rows(l->d->x, idx, hi - lo);
    if (y) *y = l->d->y ? gather_rows(l->d->y, idx, hi - lo) : NULL;
    l->last_n = hi - lo;
    l->last_global = b;
    l->pos += b;
    return true;
}

int cx_loader_shards(const cx_loader *l) { return l->shards; }

float cx_loader_shard_weight(const cx_loader *l) {
    return l->last_global ? (float)((double)l->last_n / l->last_global) : 0.0f;
}

const int *cx_loader_indices(const cx_loader *l, int *n) {
    *n = l->last_n;
    return l->perm + l->pos - l->last_global + part_start(l->last_global, l->shard, l->shards);
}

static bool regular_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

cx_status cx_dataset_load_idx_dir(const char *dir, const char *prefix, int max_items, cx_dataset *out) {
    if (!dir || !prefix || !out) return cx_set_error(CX_ERR_ARG, "load_idx_dir: NULL argument");
    char img[1024], lab[1024];
    static const char *const ext[2] = {".gz", ""};
    bool hi = false, hl = false; /* each file compressed or not, independently */
    for (int e = 0; e < 2 && !hi; e++) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext[e]);
        hi = regular_file(img);
    }
    for (int e = 0; e < 2 && !hl; e++) {
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext[e]);
        hl = regular_file(lab);
    }
    if (hi && hl) return cx_dataset_load_idx(img, lab, max_items, out);
    if (hi || hl)
        return cx_set_error(CX_ERR_NOTFOUND, "no %s split in %s: %s is there but not %s-%s-idx%d-ubyte[.gz]", prefix,
                            dir, hi ? img : lab, prefix, hi ? "labels" : "images", hi ? 1 : 3);
    return cx_set_error(CX_ERR_NOTFOUND, "no %s split in %s: expected %s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz]",
                        prefix, dir, prefix, prefix);
}

const char *cx_fashion_mnist_dir(const char *dir) {
    if (dir) return dir;
    const char *debian = "/usr/share/datasets/fashion-mnist";
    char p[256];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", debian);
    return regular_file(p) ? debian : "data/fashion-mnist-subset";
}

const char *cx_fashion_mnist_class(int label) {
    static const char *const names[10] = {"t-shirt/top", "trouser", "pullover", "dress", "coat",
                                          "sandal",      "shirt",   "sneaker",  "bag",   "ankle boot"};
    return label >= 0 && label < 10 ? names[label] : "?";
}
