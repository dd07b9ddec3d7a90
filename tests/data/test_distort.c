/* Distorted, cluttered canvases (cx_distort_dataset, cortex/data.h): mass of
 * a translated item, scaling, clutter, determinism and independence from the
 * caller's stream and arena, labels, every input shape, errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define DATA_DIR "data/fashion-mnist-subset"
static cx_dataset fm;

static double sum(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

/* Translation only: bilinear sampling of an item kept inside the canvas
 * preserves its ink exactly (the weights of every source pixel sum to 1). */
static void translation_keeps_mass(void) {
    cx_distort_opts o = cx_distort_defaults();
    o.max_angle = 0, o.min_scale = o.max_scale = 1, o.n_clutter = 0;
    cx_dataset d;
    CHECK(cx_distort_dataset(&fm, 40, &o, 3, &d) == CX_OK);
    CHECK(d.x->ndim == 2 && d.x->shape[0] == 40 && d.x->shape[1] == 3600);
    for (int i = 0; i < 40; i++) {
        double a = sum(CX_F(fm.x) + (int64_t)(i % cx_dataset_len(&fm)) * 784, 784);
        double b = sum(CX_F(d.x) + (int64_t)i * 3600, 3600);
        CHECK_NEAR(b, a, 1e-3 * a + 1e-3);
        CHECK(CX_I32P(d.y)[i] == CX_I32P(fm.y)[i % cx_dataset_len(&fm)]);
    }
    cx_dataset_free(&d);
}

/* Scale s multiplies the ink by about s^2; values stay in [0, 1]. */
static void scale_and_range(void) {
    cx_distort_opts o = cx_distort_defaults();
    o.max_angle = 0, o.min_scale = o.max_scale = 0.5f, o.n_clutter = 0;
    cx_dataset d;
    CHECK(cx_distort_dataset(&fm, 20, &o, 4, &d) == CX_OK);
    double a = 0, b = 0;
    for (int i = 0; i < 20; i++) a += sum(CX_F(fm.x) + (int64_t)i * 784, 784), b += sum(CX_F(d.x) + (int64_t)i * 3600, 3600);
    CHECK_NEAR(b / a, 0.25, 0.03);
    cx_dataset_free(&d);
    o = cx_distort_defaults();
    CHECK(cx_distort_dataset(&fm, 50, &o, 5, &d) == CX_OK);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < 50 * 3600; i++) lo = fminf(lo, CX_F(d.x)[i]), hi = fmaxf(hi, CX_F(d.x)[i]);
    CHECK(lo >= 0 && hi <= 1 && hi > 0.5f);
    cx_dataset_free(&d);
}

/* Clutter only adds ink (pixel-wise maximum), in n_clutter fragment-sized patches at most. */
static void clutter_adds_ink(void) {
    cx_distort_opts o = cx_distort_defaults();
    cx_dataset plain, clut;
    o.n_clutter = 0;
    CHECK(cx_distort_dataset(&fm, 30, &o, 6, &plain) == CX_OK);
    o.n_clutter = 4;
    CHECK(cx_distort_dataset(&fm, 30, &o, 6, &clut) == CX_OK);
    /* the same item draws come first for a chunk, so the items agree */
    int more = 0, less = 0, changed = 0;
    for (int64_t i = 0; i < 30 * 3600; i++) {
        float a = CX_F(plain.x)[i], b = CX_F(clut.x)[i];
        more += b > a, less += b < a, changed += b != a;
    }
    CHECK(less == 0);
    CHECK(more > 30 * 4 * 5); /* fragments with some ink */
    CHECK(changed <= 30 * 4 * 36);
    cx_dataset_free(&plain);
    cx_dataset_free(&clut);
}

/* Same seed, same canvases; another seed, others; the caller's stream and arena untouched. */
static void deterministic_and_isolated(void) {
    cx_distort_opts o = cx_distort_defaults();
    cx_dataset a, b, c;
    cx_seed(11);
    uint32_t first = cx_rng_u32(cx_rng_current());
    cx_seed(11);
    cx_tensor *keep = cx_full(CX_SHAPE(5), 2.5f);
    size_t used = cx_arena_used(cx_arena_current());
    CHECK(cx_distort_dataset(&fm, 300, &o, 9, &a) == CX_OK); /* two chunks */
    CHECK(cx_rng_u32(cx_rng_current()) == first);
    CHECK(cx_arena_used(cx_arena_current()) == used);
    CHECK(CX_F(keep)[4] == 2.5f);
    CHECK(cx_distort_dataset(&fm, 300, &o, 9, &b) == CX_OK);
    CHECK(cx_distort_dataset(&fm, 300, &o, 10, &c) == CX_OK);
    CHECK(memcmp(CX_F(a.x), CX_F(b.x), 300 * 3600 * sizeof(float)) == 0);
    CHECK(memcmp(CX_F(a.x), CX_F(c.x), 300 * 3600 * sizeof(float)) != 0);
    cx_dataset_free(&a);
    cx_dataset_free(&b);
    cx_dataset_free(&c);
}

/* [N, 1, S, S] and [N, S, S] images, no labels, another canvas size. */
static void shapes(void) {
    cx_distort_opts o = cx_distort_defaults();
    o.canvas = 40;
    cx_dataset flat, img4 = {.x = cx_reshape(fm.x, CX_SHAPE(-1, 1, 28, 28))}, img3 = {.x = cx_reshape(fm.x, CX_SHAPE(-1, 28, 28))};
    cx_dataset d4, d3;
    CHECK(cx_distort_dataset(&fm, 10, &o, 1, &flat) == CX_OK);
    CHECK(cx_distort_dataset(&img4, 10, &o, 1, &d4) == CX_OK);
    CHECK(cx_distort_dataset(&img3, 10, &o, 1, &d3) == CX_OK);
    CHECK(flat.x->shape[1] == 1600 && d4.y == NULL);
    CHECK(memcmp(CX_F(flat.x), CX_F(d4.x), 10 * 1600 * sizeof(float)) == 0);
    CHECK(memcmp(CX_F(flat.x), CX_F(d3.x), 10 * 1600 * sizeof(float)) == 0);
    cx_dataset_free(&flat);
    cx_dataset_free(&d4);
    cx_dataset_free(&d3);
}

static void expect_err(const cx_dataset *s, int n, const cx_distort_opts *o, cx_status st, const char *a,
                       const char *b) {
    cx_dataset d = {0};
    CHECK(cx_distort_dataset(s, n, o, 1, &d) == st);
    CHECK(d.x == NULL);
    CHECK_MSG(strstr(cx_last_error(), a) && strstr(cx_last_error(), b), "message '%s' lacks '%s' / '%s'",
              cx_last_error(), a, b);
}

static void errors(void) {
    cx_distort_opts o = cx_distort_defaults(), bad;
    expect_err(&fm, 0, &o, CX_ERR_ARG, "distort_dataset", "n = 0");
    cx_dataset rect = {.x = cx_zeros(CX_SHAPE(4, 3, 5))};
    expect_err(&rect, 4, &o, CX_ERR_SHAPE, "[4, 3, 5]", "square");
    cx_dataset odd = {.x = cx_zeros(CX_SHAPE(4, 783))};
    expect_err(&odd, 4, &o, CX_ERR_SHAPE, "[4, 783]", "square");
    cx_dataset lab = {.x = fm.x, .y = cx_zeros(CX_SHAPE(cx_dataset_len(&fm)))};
    expect_err(&lab, 4, &o, CX_ERR_SHAPE, "labels", "I32");
    bad = o, bad.canvas = 0;
    expect_err(&fm, 4, &bad, CX_ERR_ARG, "canvas 0", "4096");
    bad = o, bad.min_scale = 1.5f;
    expect_err(&fm, 4, &bad, CX_ERR_ARG, "scale range 1.5..1.2", "min_scale");
    bad = o, bad.max_angle = NAN;
    expect_err(&fm, 4, &bad, CX_ERR_ARG, "max_angle nan", "degrees");
    bad = o, bad.fragment = 40;
    expect_err(&fm, 4, &bad, CX_ERR_ARG, "of side 40", "images 28");
}

int main(void) {
    if (cx_dataset_load_idx(DATA_DIR "/t10k-images-idx3-ubyte.gz", DATA_DIR "/t10k-labels-idx1-ubyte.gz", 200, &fm)) {
        fprintf(stderr, "cannot load %s: %s\n", DATA_DIR, cx_last_error());
        return 1;
    }
    RUN(translation_keeps_mass);
    RUN(scale_and_range);
    RUN(clutter_adds_ink);
    RUN(deterministic_and_isolated);
    RUN(shapes);
    RUN(errors);
    cx_dataset_free(&fm);
    TEST_END();
}
