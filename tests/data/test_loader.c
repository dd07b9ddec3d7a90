/* Datasets and minibatch loaders: coverage, shuffling, drop_last, indices,
 * labels travelling with their rows, splits, checks, and IDX loading of the
 * shipped Fashion-MNIST subset (and of truncated copies). */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"


#define DATA_DIR "data/fashion-mnist-subset"
static char tmpdir[256];

/* x[i] = {i*10, i*10 + 1, i*10 + 2}, y[i] = 1000 + i (I32) */
static cx_dataset make_ds(int n, bool labels) {
    cx_dataset d = {0};
    d.x = cx_tensor_new(CX_F32, CX_SHAPE(n, 3));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++) CX_F(d.x)[i * 3 + j] = (float)(i * 10 + j);
    if (labels) {
        d.y = cx_tensor_new(CX_I32, CX_SHAPE(n));
        for (int i = 0; i < n; i++) CX_I32P(d.y)[i] = 1000 + i;
    }
    d.owned = true;
    return d;
}

/* Run one epoch; record the example index of every row (from x itself), check
 * that labels and cx_loader_indices agree with the rows, and return the number
 * of batches. sizes[b] gets the size of batch b. */
static int run_epoch(cx_loader *ld, int *order, int *sizes, int max_batches) {
    cx_tensor *x, *y;
    int nb = 0, k = 0;
    while (cx_loader_next(ld, &x, &y)) {
        int B = x->shape[0];
        CHECK(x->ndim == 2 && x->shape[1] == 3);
        if (nb < max_batches) sizes[nb] = B;
        int ni = -1;
        const int *idx = cx_loader_indices(ld, &ni);
        CHECK(ni == B);
        if (y) CHECK(y->dtype == CX_I32 && y->ndim == 1 && y->shape[0] == B);
        for (int r = 0; r < B; r++) {
            int ex = (int)(CX_F(x)[r * 3] / 10);
            CHECK(CX_F(x)[r * 3 + 1] == (float)(ex * 10 + 1) && CX_F(x)[r * 3 + 2] == (float)(ex * 10 + 2));
            if (ni == B) CHECK_MSG(idx[r] == ex, "indices[%d] = %d, row holds example %d", r, idx[r], ex);
            if (y) CHECK_MSG(CX_I32P(y)[r] == 1000 + ex, "label %d travels with row %d", CX_I32P(y)[r], ex);
            order[k++] = ex;
        }
        nb++;
        cx_step_reset();
    }
    return nb;
}

static void test_coverage_and_last_batch(void) {
    cx_seed(1);
    cx_dataset d = make_ds(10, true);
    CHECK(cx_dataset_len(&d) == 10);
    CHECK(cx_dataset_check(&d) == CX_OK);
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        cx_loader *ld = cx_loader_new(&d, 3, shuffle, false);
        CHECK(cx_loader_num_batches(ld) == 4);
        for (int epoch = 0; epoch < 3; epoch++) {
            cx_loader_reset(ld);
            int order[10], sizes[8], seen[10] = {0};
            int nb = run_epoch(ld, order, sizes, 8);
            CHECK(nb == 4);
            CHECK(sizes[0] == 3 && sizes[1] == 3 && sizes[2] == 3 && sizes[3] == 1);
            for (int i = 0; i < 10; i++)
                if (order[i] >= 0 && order[i] < 10) seen[order[i]]++;
            for (int i = 0; i < 10; i++) CHECK_MSG(seen[i] == 1, "example %d seen %d times", i, seen[i]);
            if (!shuffle)
                for (int i = 0; i < 10; i++) CHECK_MSG(order[i] == i, "unshuffled position %d holds %d", i, order[i]);
            /* exhausted until reset */
            cx_tensor *x, *y;
            CHECK(!cx_loader_next(ld, &x, &y));
        }
        cx_loader_free(ld);
    }
    /* batch larger than the dataset: one short batch */
    cx_loader *big = cx_loader_new(&d, 64, true, false);
    CHECK(cx_loader_num_batches(big) == 1);
    int order[10], sizes[2];
    CHECK(run_epoch(big, order, sizes, 2) == 1 && sizes[0] == 10);
    cx_loader_free(big);
    /* exact multiple: no short batch */
    cx_loader *ex = cx_loader_new(&d, 5, false, false);
    CHECK(cx_loader_num_batches(ex) == 2);
    CHECK(run_epoch(ex, order, sizes, 2) == 2 && sizes[0] == 5 && sizes[1] == 5);
    cx_loader_free(ex);
    cx_dataset_free(&d);
    CHECK(d.x == NULL && d.y == NULL);
}

static void test_drop_last(void) {
    cx_dataset d = make_ds(10, true);
    cx_loader *ld = cx_loader_new(&d, 3, true, true);
    CHECK(cx_loader_num_batches(ld) == 3);
    for (int epoch = 0; epoch < 2; epoch++) {
        cx_loader_reset(ld);
        int order[10], sizes[8], seen[10] = {0};
        int nb = run_epoch(ld, order, sizes, 8);
        CHECK(nb == 3);
        for (int b = 0; b < nb && b < 8; b++) CHECK(sizes[b] == 3);
        int distinct = 0;
        for (int i = 0; i < 9; i++) distinct += order[i] >= 0 && order[i] < 10 && seen[order[i]]++ == 0;
        CHECK(distinct == 9);
    }
    cx_loader_free(ld);
    /* exact multiple: drop_last changes nothing */
    cx_loader *ex = cx_loader_new(&d, 5, false, true);
    CHECK(cx_loader_num_batches(ex) == 2);
    int order[10], sizes[4];
    CHECK(run_epoch(ex, order, sizes, 4) == 2);
    cx_loader_free(ex);
    /* batch larger than N with drop_last: no batch at all */
    cx_loader *none = cx_loader_new(&d, 11, false, true);
    CHECK(cx_loader_num_batches(none) == 0);
    CHECK(run_epoch(none, order, sizes, 4) == 0);
    cx_loader_free(none);
    cx_dataset_free(&d);
}

static void test_shuffle_seeded(void) {
    enum { N = 50, E = 3 };
    cx_dataset d = make_ds(N, true);
    int runs[2][E][N];
    for (int run = 0; run < 2; run++) {
        cx_seed(2024);
        cx_loader *ld = cx_loader_new(&d, 7, true, false);
        for (int e = 0; e < E; e++) {
            cx_loader_reset(ld);
            int sizes[16];
            CHECK(run_epoch(ld, runs[run][e], sizes, 16) == 8);
            CHECK(sizes[7] == 1);
        }
        cx_loader_free(ld);
    }
    for (int e = 0; e < E; e++)
        CHECK_MSG(memcmp(runs[0][e], runs[1][e], sizeof runs[0][e]) == 0, "epoch %d differs for the same seed", e);
    for (int e = 1; e < E; e++)
        CHECK_MSG(memcmp(runs[0][e], runs[0][e - 1], sizeof runs[0][e]) != 0, "epochs %d and %d equal", e - 1, e);
    int identity = 1;
    for (int i = 0; i < N; i++) identity &= runs[0][0][i] == i;
    CHECK(!identity);
    /* another seed gives another order */
    cx_seed(2025);
    cx_loader *ld = cx_loader_new(&d, 7, true, false);
    cx_loader_reset(ld);
    int other[N], sizes[16];
    run_epoch(ld, other, sizes, 16);
    CHECK(memcmp(other, runs[0][0], sizeof other) != 0);
    cx_loader_free(ld);
    cx_dataset_free(&d);
}

/* Batches large enough to be gathered on several threads (64 rows of 1000
 * floats) hold exactly the rows the indices name, at 1, 2 and 3 threads. */
static void test_gather_threads(void) {
    enum { N = 300, F = 1000, B = 64 };
    cx_dataset d = {0};
    d.x = cx_tensor_new(CX_F32, CX_SHAPE(N, F));
    d.y = cx_tensor_new(CX_I32, CX_SHAPE(N));
    d.owned = true;
    for (int i = 0; i < N; i++) {
        CX_I32P(d.y)[i] = i;
        for (int j = 0; j < F; j++) CX_F(d.x)[(size_t)i * F + j] = (float)i * 10000.0f + (float)j;
    }
    for (int nt = 1; nt <= 3; nt++) {
        cx_set_threads(nt);
        cx_seed(7);
        cx_loader *ld = cx_loader_new(&d, B, true, false);
        cx_loader_reset(ld);
        cx_tensor *x, *y;
        int batches = 0, bad = 0;
        while (cx_loader_next(ld, &x, &y)) {
            int n;
            const int *idx = cx_loader_indices(ld, &n);
            CHECK(n == x->shape[0] && x->shape[1] == F);
            for (int r = 0; r < n; r++) {
                bad += CX_I32P(y)[r] != idx[r];
                for (int j = 0; j < F; j++) bad += CX_F(x)[(size_t)r * F + j] != (float)idx[r] * 10000.0f + (float)j;
            }
            batches++;
            cx_step_reset();
        }
        CHECK(batches == 5);
        CHECK_MSG(bad == 0, "%d threads: %d wrong values", nt, bad);
        cx_loader_free(ld);
    }
    cx_set_threads(1);
    cx_dataset_free(&d);
}

static void test_unlabelled_and_multidim(void) {
    cx_dataset d = make_ds(6, false);
    CHECK(cx_dataset_check(&d) == CX_OK);
    cx_loader *ld = cx_loader_new(&d, 4, false, false);
    cx_tensor *x = NULL, *y = (cx_tensor *)&d; /* must be set to NULL */
    CHECK(cx_loader_next(ld, &x, &y));
    CHECK(y == NULL && x && x->shape[0] == 4);
    /* y pointer may be NULL */
    CHECK(cx_loader_next(ld, &x, NULL));
    CHECK(x->shape[0] == 2 && CX_F(x)[0] == 40.0f);
    CHECK(!cx_loader_next(ld, &x, NULL));
    cx_loader_free(ld);
    cx_dataset_free(&d);

    /* images [N, 2, 2] and F32 targets [N, 2]: rows copied whole */
    cx_dataset m = {0};
    m.x = cx_tensor_new(CX_F32, CX_SHAPE(5, 2, 2));
    m.y = cx_tensor_new(CX_F32, CX_SHAPE(5, 2));
    for (int i = 0; i < 20; i++) CX_F(m.x)[i] = (float)i;
    for (int i = 0; i < 10; i++) CX_F(m.y)[i] = (float)(-i);
    m.owned = true;
    cx_seed(3);
    ld = cx_loader_new(&m, 2, true, false);
    int total = 0;
    while (cx_loader_next(ld, &x, &y)) {
        CHECK(x->ndim == 3 && x->shape[1] == 2 && x->shape[2] == 2);
        CHECK(y->ndim == 2 && y->shape[1] == 2 && y->dtype == CX_F32);
        int n;
        const int *idx = cx_loader_indices(ld, &n);
        for (int r = 0; r < n; r++) {
            for (int k = 0; k < 4; k++) CHECK(CX_F(x)[r * 4 + k] == (float)(idx[r] * 4 + k));
            for (int k = 0; k < 2; k++) CHECK(CX_F(y)[r * 2 + k] == (float)(-(idx[r] * 2 + k)));
        }
        total += n;
        cx_step_reset();
    }
    CHECK(total == 5);
    cx_loader_free(ld);
    cx_dataset_free(&m);
}

static void test_split(void) {
    cx_dataset d = make_ds(10, true);
    cx_dataset head = {0}, tail = {0};
    CHECK(cx_dataset_split(&d, 3, &head, &tail) == CX_OK);
    CHECK(head.owned && tail.owned);
    CHECK(cx_dataset_len(&head) == 7 && cx_dataset_len(&tail) == 3);
    CHECK(head.x->shape[1] == 3 && head.y->shape[0] == 7 && tail.y->shape[0] == 3);
    for (int i = 0; i < 7; i++) {
        CHECK(CX_F(head.x)[i * 3 + 2] == (float)(i * 10 + 2));
        CHECK(CX_I32P(head.y)[i] == 1000 + i);
    }
    for (int i = 0; i < 3; i++) {
        CHECK(CX_F(tail.x)[i * 3] == (float)((7 + i) * 10));
        CHECK(CX_I32P(tail.y)[i] == 1007 + i);
    }
    /* copies: writing the source does not change the parts */
    CX_F(d.x)[0] = -1;
    CHECK(CX_F(head.x)[0] == 0.0f);
    cx_dataset_free(&head);
    cx_dataset_free(&tail);

    /* edge cases: nothing split off, everything split off */
    CHECK(cx_dataset_split(&d, 0, &head, &tail) == CX_OK);
    CHECK(cx_dataset_len(&head) == 10 && cx_dataset_len(&tail) == 0);
    cx_loader *ld = cx_loader_new(&tail, 4, true, false);
    CHECK(cx_loader_num_batches(ld) == 0);
    cx_tensor *x, *y;
    CHECK(!cx_loader_next(ld, &x, &y));
    cx_loader_free(ld);
    cx_dataset_free(&head);
    cx_dataset_free(&tail);
    CHECK(cx_dataset_split(&d, 10, &head, &tail) == CX_OK);
    CHECK(cx_dataset_len(&head) == 0 && cx_dataset_len(&tail) == 10);
    cx_dataset_free(&head);
    cx_dataset_free(&tail);

    CHECK(cx_dataset_split(&d, 11, &head, &tail) == CX_ERR_ARG);
    CHECK(cx_dataset_split(&d, -1, &head, &tail) == CX_ERR_ARG);

    /* unlabelled split */
    cx_dataset u = make_ds(4, false);
    CHECK(cx_dataset_split(&u, 1, &head, &tail) == CX_OK);
    CHECK(head.y == NULL && tail.y == NULL && cx_dataset_len(&tail) == 1);
    cx_dataset_free(&head);
    cx_dataset_free(&tail);
    cx_dataset_free(&u);
    cx_dataset_free(&d);
}

static void test_check_errors(void) {
    cx_dataset d = make_ds(10, false);
    cx_tensor *y = cx_tensor_new(CX_I32, CX_SHAPE(9));
    d.y = y;
    CHECK(cx_dataset_check(&d) == CX_ERR_SHAPE);
    CHECK_MSG(strstr(cx_last_error(), "10") && strstr(cx_last_error(), "9"), "message: %s", cx_last_error());
    cx_dataset h, t;
    CHECK(cx_dataset_split(&d, 2, &h, &t) == CX_ERR_SHAPE);
    EXPECT_FATAL(cx_loader_new(&d, 4, false, false), "loader");

    cx_dataset none = {0};
    CHECK(cx_dataset_check(&none) == CX_ERR_ARG);
    CHECK(cx_dataset_len(&none) == 0);

    cx_dataset ints = {0};
    ints.x = cx_tensor_new(CX_I32, CX_SHAPE(4, 2));
    CHECK(cx_dataset_check(&ints) == CX_ERR_ARG);
    CHECK_MSG(strstr(cx_last_error(), "F32"), "message: %s", cx_last_error());
    cx_tensor_free(ints.x);

    d.y = NULL;
    EXPECT_FATAL(cx_loader_new(&d, 0, false, false), "batch size");
    d.y = y;
    cx_dataset_free(&d); /* owned: frees x and the bad y */
}

/* ---------------------------------------------------------------- IDX */
static void test_load_fashion_subset(void) {
    cx_dataset d = {0};
    cx_status st = cx_dataset_load_idx(DATA_DIR "/train-images-idx3-ubyte.gz", DATA_DIR "/train-labels-idx1-ubyte.gz",
                                       0, &d);
    CHECK_MSG(st == CX_OK, "load: %s", cx_last_error());
    if (st) return;
    CHECK(d.owned);
    CHECK(d.x->dtype == CX_F32 && d.x->ndim == 2 && d.x->shape[0] == 6000 && d.x->shape[1] == 784);
    CHECK(d.y->dtype == CX_I32 && d.y->ndim == 1 && d.y->shape[0] == 6000);
    CHECK(cx_dataset_check(&d) == CX_OK);
    double lo = 1, hi = 0, sum = 0;
    int in_range = 1, fractional = 0;
    for (int64_t i = 0; i < d.x->numel; i++) {
        float v = CX_F(d.x)[i];
        in_range &= v >= 0.0f && v <= 1.0f;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
        fractional |= v > 0.0f && v < 1.0f;
    }
    CHECK(in_range && lo == 0.0 && hi == 1.0 && fractional);
    /* values are k/255 */
    float v = CX_F(d.x)[400];
    CHECK_NEAR(v * 255.0f, roundf(v * 255.0f), 1e-3);
    double mean = sum / (double)d.x->numel;
    CHECK_MSG(mean > 0.2 && mean < 0.4, "mean pixel %g (Fashion-MNIST is about 0.29)", mean);
    int counts[10] = {0}, labels_ok = 1;
    for (int i = 0; i < 6000; i++) {
        int l = CX_I32P(d.y)[i];
        if (l < 0 || l > 9) labels_ok = 0;
        else counts[l]++;
    }
    CHECK(labels_ok);
    for (int c = 0; c < 10; c++) CHECK_MSG(counts[c] > 400 && counts[c] < 800, "class %d: %d", c, counts[c]);
    /* the first Fashion-MNIST training label is 9 (ankle boot), the second 0 */
    CHECK(CX_I32P(d.y)[0] == 9 && CX_I32P(d.y)[1] == 0);

    /* max_items: the same first rows */
    cx_dataset s = {0};
    st = cx_dataset_load_idx(DATA_DIR "/train-images-idx3-ubyte.gz", DATA_DIR "/train-labels-idx1-ubyte.gz", 100, &s);
    CHECK(st == CX_OK);
    if (!st) {
        CHECK(s.x->shape[0] == 100 && s.x->shape[1] == 784 && s.y->shape[0] == 100);
        CHECK(memcmp(s.x->data, d.x->data, 100 * 784 * sizeof(float)) == 0);
        CHECK(memcmp(s.y->data, d.y->data, 100 * sizeof(int32_t)) == 0);
        cx_dataset_free(&s);
    }
    /* the test split */
    st = cx_dataset_load_idx(DATA_DIR "/t10k-images-idx3-ubyte.gz", DATA_DIR "/t10k-labels-idx1-ubyte.gz", 0, &s);
    CHECK(st == CX_OK);
    if (!st) {
        CHECK(s.x->shape[0] == 1000 && s.x->shape[1] == 784);
        cx_dataset_free(&s);
    }
    /* a loader over the real data keeps images and labels together */
    cx_seed(8);
    cx_loader *ld = cx_loader_new(&d, 256, true, false);
    CHECK(cx_loader_num_batches(ld) == 24);
    cx_tensor *x, *y;
    int batches = 0;
    while (cx_loader_next(ld, &x, &y) && batches < 3) {
        int n;
        const int *idx = cx_loader_indices(ld, &n);
        for (int r = 0; r < n; r += 17) {
            CHECK(CX_I32P(y)[r] == CX_I32P(d.y)[idx[r]]);
            CHECK(memcmp(CX_F(x) + (int64_t)r * 784, CX_F(d.x) + (int64_t)idx[r] * 784, 784 * sizeof(float)) == 0);
        }
        batches++;
        cx_step_reset();
    }
    cx_loader_free(ld);
    cx_dataset_free(&d);
}

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static void test_load_truncated(void) {
    const char *img = DATA_DIR "/train-images-idx3-ubyte.gz", *lab = DATA_DIR "/train-labels-idx1-ubyte.gz";
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(img, &buf, &n, 0) == CX_OK);
    if (!buf) return;
    char p[512];
    cx_dataset d = {0};

    /* the gzip stream cut in half */
    tmp_path(p, sizeof p, "half-images.gz");
    CHECK(cx_write_file_atomic(p, buf, n / 2) == CX_OK);
    cx_status st = cx_dataset_load_idx(p, lab, 0, &d);
    CHECK(st == CX_ERR_FORMAT || st == CX_ERR_IO);
    CHECK_MSG(strstr(cx_last_error(), "half-images.gz") != NULL, "message: %s", cx_last_error());
    CHECK(d.x == NULL && d.y == NULL);
    unlink(p);

    /* only the first few bytes: not even a header */
    tmp_path(p, sizeof p, "tiny.gz");
    CHECK(cx_write_file_atomic(p, buf, 10) == CX_OK);
    st = cx_dataset_load_idx(p, lab, 0, &d);
    CHECK(st == CX_ERR_FORMAT || st == CX_ERR_IO);
    unlink(p);
    free(buf);

    /* a raw IDX file whose header claims 6000 images but holds 100 */
    cx_tensor *x = NULL;
    CHECK(cx_idx_load(img, 1.0f, 100, &x) == CX_OK);
    if (x) {
        size_t body = 100 * 784;
        unsigned char *raw = malloc(16 + body);
        const unsigned char hdr[16] = {0, 0, 8, 3, 0, 0, 6000 >> 8, 6000 & 255, 0, 0, 0, 28, 0, 0, 0, 28};
        memcpy(raw, hdr, 16);
        for (size_t i = 0; i < body; i++) raw[16 + i] = (unsigned char)CX_F(x)[i];
        tmp_path(p, sizeof p, "short-images-idx3-ubyte");
        CHECK(cx_write_file_atomic(p, raw, 16 + body) == CX_OK);
        st = cx_dataset_load_idx(p, lab, 0, &d);
        CHECK(st == CX_ERR_FORMAT);
        CHECK_MSG(strstr(cx_last_error(), "truncated") != NULL, "message: %s", cx_last_error());
        /* ... but reading only the items present works, and matches the original */
        st = cx_dataset_load_idx(p, lab, 100, &d);
        CHECK_MSG(st == CX_OK, "max_items 100: %s", cx_last_error());
        if (!st) {
            cx_dataset ref = {0};
            CHECK(cx_dataset_load_idx(img, lab, 100, &ref) == CX_OK);
            if (ref.x) CHECK(memcmp(ref.x->data, d.x->data, body * sizeof(float)) == 0);
            cx_dataset_free(&ref);
            cx_dataset_free(&d);
        }
        unlink(p);
        free(raw);
        cx_tensor_free(x);
    }

    /* labels from another split: counts disagree */
    st = cx_dataset_load_idx(img, DATA_DIR "/t10k-labels-idx1-ubyte.gz", 0, &d);
    CHECK(st == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "1000") && strstr(cx_last_error(), "6000"), "message: %s", cx_last_error());
    /* labels file given as images: 1-D, not images */
    st = cx_dataset_load_idx(lab, lab, 0, &d);
    CHECK(st == CX_ERR_FORMAT);
    /* a missing file */
    st = cx_dataset_load_idx(DATA_DIR "/no-such-file", lab, 0, &d);
    CHECK(st == CX_ERR_IO);
    CHECK_MSG(strstr(cx_last_error(), "no-such-file") != NULL, "message: %s", cx_last_error());
    CHECK(d.x == NULL);
}

/* A split by directory and prefix (gzip or raw files), the Fashion-MNIST
 * location and class names. */
static void test_load_idx_dir(void) {
    cx_dataset a = {0}, b = {0};
    CHECK(cx_dataset_load_idx_dir(DATA_DIR, "t10k", 50, &a) == CX_OK);
    CHECK(cx_dataset_load_idx(DATA_DIR "/t10k-images-idx3-ubyte.gz", DATA_DIR "/t10k-labels-idx1-ubyte.gz", 50, &b) ==
          CX_OK);
    CHECK(a.x && b.x && a.x->shape[0] == 50 && a.x->shape[1] == 784);
    if (a.x && b.x) {
        CHECK(memcmp(a.x->data, b.x->data, 50 * 784 * sizeof(float)) == 0);
        CHECK(memcmp(a.y->data, b.y->data, 50 * sizeof(int32_t)) == 0);
    }
    cx_dataset_free(&a);
    /* nothing there yet: the error names the files looked for */
    cx_dataset raw = {0};
    cx_status st = cx_dataset_load_idx_dir(tmpdir, "t10k", 0, &raw);
    CHECK(st == CX_ERR_NOTFOUND);
    CHECK_MSG(strstr(cx_last_error(), "no t10k split in") && strstr(cx_last_error(), "t10k-images-idx3-ubyte[.gz]"),
              "message: %s", cx_last_error());
    CHECK(raw.x == NULL);
    /* uncompressed files under the same names load the same */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "gzip -dc " DATA_DIR "/t10k-images-idx3-ubyte.gz > '%s/t10k-images-idx3-ubyte' && "
             "gzip -dc " DATA_DIR "/t10k-labels-idx1-ubyte.gz > '%s/t10k-labels-idx1-ubyte'",
             tmpdir, tmpdir);
    if (system(cmd) == 0) {
        CHECK(cx_dataset_load_idx_dir(tmpdir, "t10k", 50, &raw) == CX_OK);
        if (raw.x && b.x) CHECK(memcmp(raw.x->data, b.x->data, 50 * 784 * sizeof(float)) == 0);
        cx_dataset_free(&raw);
    } else {
        CHECK_MSG(0, "gzip -dc failed");
    }
    snprintf(cmd, sizeof cmd, "%s/t10k-images-idx3-ubyte", tmpdir);
    unlink(cmd);
    snprintf(cmd, sizeof cmd, "%s/t10k-labels-idx1-ubyte", tmpdir);
    unlink(cmd);
    CHECK(cx_dataset_load_idx_dir(DATA_DIR, "valid", 0, &raw) == CX_ERR_NOTFOUND);
    cx_dataset_free(&b);

    CHECK(!strcmp(cx_fashion_mnist_dir("/some/where"), "/some/where"));
    const char *d = cx_fashion_mnist_dir(NULL);
    CHECK(!strcmp(d, "/usr/share/datasets/fashion-mnist") || !strcmp(d, "data/fashion-mnist-subset"));
    CHECK(!strcmp(cx_fashion_mnist_class(0), "t-shirt/top") && !strcmp(cx_fashion_mnist_class(9), "ankle boot"));
    CHECK(!strcmp(cx_fashion_mnist_class(10), "?") && !strcmp(cx_fashion_mnist_class(-1), "?"));
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_loader_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_coverage_and_last_batch);
    RUN(test_drop_last);
    RUN(test_shuffle_seeded);
    RUN(test_gather_threads);
    RUN(test_unlabelled_and_multidim);
    RUN(test_split);
    RUN(test_check_errors);
    RUN(test_load_fashion_subset);
    RUN(test_load_truncated);
    RUN(test_load_idx_dir);
    rmdir(tmpdir);
    TEST_END();
}
