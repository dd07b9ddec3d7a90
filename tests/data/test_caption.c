/* Captioned canvases (cortex/caption.h): the grammar on hand-made layouts,
 * the generator on the shipped Fashion-MNIST subset (determinism, provenance
 * of every pasted item, train/test separation, scaling), the vocabulary and
 * text, save/load with corrupt files, bad input, BLEU on a set, pictures. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define DATA_DIR "data/fashion-mnist-subset"
static char tmpdir[256];
static cx_dataset train, test;

static const char *tmp_path(const char *name) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* The references of a layout as text. Returns their number. */
static int refs_text(cx_caption_classes classes, int n, const int32_t *cls, const int32_t *box,
                     char out[CX_CAPTION_MAX_REFS][128]) {
    int32_t ids[CX_CAPTION_MAX_REFS * CX_CAPTION_MAX_LEN], lens[CX_CAPTION_MAX_REFS];
    int nr = cx_caption_describe(classes, n, cls, box, ids, lens);
    const char *const *words;
    int v = cx_caption_vocab(classes, &words);
    for (int r = 0; r < nr; r++) {
        const int32_t *row = ids + r * CX_CAPTION_MAX_LEN;
        size_t k = 0;
        out[r][0] = 0;
        CHECK(row[0] == CX_CAP_START && row[lens[r] - 1] == CX_CAP_END);
        for (int j = lens[r]; j < CX_CAPTION_MAX_LEN; j++) CHECK(row[j] == CX_CAP_PAD);
        for (int j = 1; j < lens[r] - 1; j++) {
            CHECK(row[j] > CX_CAP_UNK && row[j] < v);
            k += (size_t)snprintf(out[r] + k, 128 - k, "%s%s", j > 1 ? " " : "", words[row[j]]);
        }
    }
    return nr;
}

typedef struct {
    cx_caption_classes classes;
    int n;
    int32_t cls[3], box[12];
    int nr;
    const char *refs[6];
} layout_case;

/* Classes: 0 top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 boot. */
static const layout_case cases[] = {
    {CX_CAPTION_FASHION, 1, {8}, {5, 5, 28, 28}, 1, {"a bag"}},
    /* beside each other, y ranges overlap; the input order does not matter */
    {CX_CAPTION_FASHION, 2, {7, 8}, {0, 10, 28, 28, 30, 12, 28, 28}, 1, {"a sneaker left of a bag"}},
    {CX_CAPTION_FASHION, 2, {8, 7}, {30, 12, 28, 28, 0, 10, 28, 28}, 1, {"a sneaker left of a bag"}},
    {CX_CAPTION_FASHION, 2, {1, 6}, {12, 30, 28, 28, 10, 0, 28, 28}, 1, {"a shirt above a trouser"}},
    /* touching boxes are still separated */
    {CX_CAPTION_FASHION, 2, {7, 8}, {0, 0, 28, 28, 28, 0, 28, 28}, 1, {"a sneaker left of a bag"}},
    /* diagonal: both statements, "left of" first */
    {CX_CAPTION_FASHION, 2, {7, 8}, {0, 0, 28, 28, 30, 30, 28, 28}, 2,
     {"a sneaker left of a bag", "a sneaker above a bag"}},
    /* anti-diagonal: the subject changes */
    {CX_CAPTION_FASHION, 2, {7, 8}, {0, 30, 28, 28, 30, 0, 28, 28}, 2,
     {"a sneaker left of a bag", "a bag above a sneaker"}},
    {CX_CAPTION_FASHION, 2, {8, 8}, {0, 0, 28, 28, 30, 30, 28, 28}, 1, {"two bags"}},
    {CX_CAPTION_FASHION, 3, {8, 8, 8}, {0, 0, 10, 10, 30, 30, 10, 10, 0, 40, 10, 10}, 1, {"three bags"}},
    /* a group relation needs every item of both groups */
    {CX_CAPTION_FASHION, 3, {6, 1, 1}, {17, 0, 28, 28, 0, 34, 28, 28, 34, 34, 28, 28}, 1,
     {"a shirt above two trousers"}},
    {CX_CAPTION_FASHION, 3, {1, 6, 1}, {0, 0, 10, 10, 20, 5, 10, 10, 0, 20, 10, 10}, 1,
     {"two trousers left of a shirt"}},
    /* the shirt between the trousers: no chain, "and" in left-to-right order */
    {CX_CAPTION_FASHION, 3, {6, 1, 1}, {20, 0, 10, 10, 0, 0, 10, 10, 40, 0, 10, 10}, 1,
     {"two trousers and a shirt"}},
    /* three in a row */
    {CX_CAPTION_FASHION, 3, {4, 0, 3}, {40, 0, 10, 10, 0, 2, 10, 10, 20, 1, 10, 10}, 1,
     {"a top left of a dress left of a coat"}},
    /* staircase down to the right: one order, 2 x 2 relations, first link slowest */
    {CX_CAPTION_FASHION, 3, {0, 3, 4}, {0, 0, 10, 10, 20, 20, 10, 10, 40, 40, 10, 10}, 4,
     {"a top left of a dress left of a coat", "a top left of a dress above a coat",
      "a top above a dress left of a coat", "a top above a dress above a coat"}},
    /* staircase up to the right: every order, one relation per link (the most there can be) */
    {CX_CAPTION_FASHION, 3, {0, 3, 4}, {0, 40, 10, 10, 20, 20, 10, 10, 40, 0, 10, 10}, 6,
     {"a top left of a dress left of a coat", "a top left of a coat above a dress",
      "a dress above a top left of a coat", "a dress left of a coat above a top",
      "a coat above a top left of a dress", "a coat above a dress above a top"}},
    /* digits: "an eight"; a name equal to a count word */
    {CX_CAPTION_DIGITS, 2, {8, 2}, {0, 0, 10, 10, 20, 0, 10, 10}, 1, {"an eight left of a two"}},
    {CX_CAPTION_DIGITS, 2, {2, 2}, {0, 0, 10, 10, 20, 0, 10, 10}, 1, {"two twos"}},
    {CX_CAPTION_DIGITS, 3, {3, 3, 1}, {0, 0, 10, 10, 0, 20, 10, 10, 20, 0, 10, 40}, 1, {"two threes left of a one"}},
};

static void grammar(void) {
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char got[CX_CAPTION_MAX_REFS][128];
        int nr = refs_text(cases[c].classes, cases[c].n, cases[c].cls, cases[c].box, got);
        CHECK_MSG(nr == cases[c].nr, "case %zu: %d references, expected %d (first '%s')", c, nr, cases[c].nr, got[0]);
        for (int r = 0; r < nr && r < cases[c].nr; r++)
            CHECK_MSG(!strcmp(got[r], cases[c].refs[r]), "case %zu ref %d: '%s', expected '%s'", c, r, got[r],
                      cases[c].refs[r]);
    }
    /* the longest caption fills the fixed length exactly */
    int32_t ids[CX_CAPTION_MAX_REFS * CX_CAPTION_MAX_LEN], lens[CX_CAPTION_MAX_REFS];
    cx_caption_describe(CX_CAPTION_FASHION, 3, cases[12].cls, cases[12].box, ids, lens);
    CHECK(lens[0] == CX_CAPTION_MAX_LEN);
    /* bad arguments are programming errors */
    int32_t cls[3] = {10, 0, 0}, box[12] = {0, 0, 1, 1};
    EXPECT_FATAL(cx_caption_describe(CX_CAPTION_FASHION, 1, cls, box, ids, lens), "label 10");
    cls[0] = 0;
    EXPECT_FATAL(cx_caption_describe(CX_CAPTION_FASHION, 4, cls, box, ids, lens), "4 items");
    box[2] = 0;
    EXPECT_FATAL(cx_caption_describe(CX_CAPTION_FASHION, 1, cls, box, ids, lens), "0x1 box");
}

static void vocabulary(void) {
    const char *const *w;
    int v = cx_caption_vocab(CX_CAPTION_FASHION, &w);
    CHECK(v == 32);
    CHECK(!strcmp(w[CX_CAP_PAD], "<pad>") && !strcmp(w[CX_CAP_START], "<start>") && !strcmp(w[CX_CAP_END], "<end>") &&
          !strcmp(w[CX_CAP_UNK], "<unk>"));
    for (int i = 0; i < v; i++) /* every word once, no spaces */
        for (int j = 0; j < i; j++) CHECK(strcmp(w[i], w[j]) && !strchr(w[i], ' '));
    int vd = cx_caption_vocab(CX_CAPTION_DIGITS, &w);
    CHECK(vd == 30 && cx_caption_vocab(CX_CAPTION_DIGITS, NULL) == 30);
    for (int i = 0; i < vd; i++)
        for (int j = 0; j < i; j++) CHECK(strcmp(w[i], w[j]));
}

/* ---- generated sets */
static bool same_tensor(const cx_tensor *a, const cx_tensor *b) {
    return a && b && a->dtype == b->dtype && cx_same_shape(a, b) &&
           !memcmp(a->data, b->data, (size_t)a->numel * cx_dtype_size(a->dtype));
}

static bool same_set(const cx_caption_set *a, const cx_caption_set *b) {
    bool ok = a->n == b->n && a->height == b->height && a->width == b->width && a->classes == b->classes &&
              a->n_captions == b->n_captions && a->max_len == b->max_len && a->seed == b->seed &&
              a->vocab_size == b->vocab_size && !strcmp(a->split, b->split) && !strcmp(a->recipe, b->recipe);
    ok = ok && same_tensor(a->images, b->images) && same_tensor(a->n_items, b->n_items) &&
         same_tensor(a->item_class, b->item_class) && same_tensor(a->item_box, b->item_box) &&
         same_tensor(a->item_src, b->item_src) && same_tensor(a->captions, b->captions) &&
         same_tensor(a->caption_len, b->caption_len) && same_tensor(a->ref_start, b->ref_start);
    for (int i = 0; ok && i < a->vocab_size; i++) ok = !strcmp(a->words[i], b->words[i]);
    return ok;
}

/* Everything a set promises, checked canvas by canvas against its source. */
static void check_set(const cx_caption_set *s, const cx_dataset *src, const cx_caption_opts *o) {
    int H = s->height, W = s->width, N = s->n;
    CHECK(s->images->ndim == 4 && s->images->shape[0] == N && s->images->shape[1] == 1 && s->images->shape[2] == H &&
          s->images->shape[3] == W);
    CHECK(s->captions->shape[1] == CX_CAPTION_MAX_LEN && s->max_len == CX_CAPTION_MAX_LEN);
    CHECK(CX_I32P(s->ref_start)[0] == 0 && CX_I32P(s->ref_start)[N] == s->n_captions);
    int bad_items = 0, bad_px = 0, bad_box = 0, bad_caps = 0, bad_text = 0;
    float *mask = malloc((size_t)H * W * sizeof(float));
    for (int i = 0; i < N; i++) {
        int k = CX_I32P(s->n_items)[i];
        if (k < o->min_items || k > o->max_items) bad_items++;
        const int32_t *cls = CX_I32P(s->item_class) + i * 3, *sr = CX_I32P(s->item_src) + i * 3;
        const int32_t *box = CX_I32P(s->item_box) + i * 12;
        const float *img = CX_F(s->images) + (size_t)i * H * W;
        memset(mask, 0, (size_t)H * W * sizeof(float));
        for (int j = 0; j < 3; j++) {
            const int32_t *b = box + 4 * j;
            if (j >= k) {
                bad_items += cls[j] != -1 || sr[j] != -1 || b[0] || b[1] || b[2] || b[3];
                continue;
            }
            if (sr[j] < 0 || sr[j] >= src->x->shape[0] || cls[j] != CX_I32P(src->y)[sr[j]]) bad_items++;
            if (b[2] != b[3] || b[2] < o->min_size || b[2] > o->max_size || b[0] < 0 || b[1] < 0 || b[0] + b[2] > W ||
                b[1] + b[3] > H)
                bad_box++;
            for (int q = 0; q < j; q++) {
                const int32_t *c = box + 4 * q;
                int g = o->gap;
                if (!(b[0] + b[2] + g <= c[0] || c[0] + c[2] + g <= b[0] || b[1] + b[3] + g <= c[1] ||
                      c[1] + c[3] + g <= b[1]))
                    bad_box++;
            }
            if (bad_box) continue;
            /* an unscaled item is its source image, pixel for pixel */
            const float *from = CX_F(src->x) + (size_t)sr[j] * 784;
            for (int y = 0; y < b[3]; y++)
                for (int x = 0; x < b[2]; x++) {
                    float v = img[(size_t)(b[1] + y) * W + b[0] + x];
                    if (b[2] == 28 && v != from[y * 28 + x]) bad_px++;
                    if (!(v >= 0 && v <= 1)) bad_px++;
                    mask[(size_t)(b[1] + y) * W + b[0] + x] = 1;
                }
        }
        for (int p = 0; p < H * W; p++) bad_px += !mask[p] && img[p] != 0; /* background */
        /* the captions are the grammar's, and survive decode + encode */
        int32_t ids[CX_CAPTION_MAX_REFS * CX_CAPTION_MAX_LEN], lens[CX_CAPTION_MAX_REFS];
        int nr = bad_box ? 0 : cx_caption_describe(s->classes, k, cls, box, ids, lens);
        int r0 = CX_I32P(s->ref_start)[i], r1 = CX_I32P(s->ref_start)[i + 1];
        if (r1 - r0 != nr) bad_caps++;
        for (int r = 0; r < nr && r1 - r0 == nr; r++) {
            const int32_t *row = CX_I32P(s->captions) + (size_t)(r0 + r) * CX_CAPTION_MAX_LEN;
            if (memcmp(row, ids + r * CX_CAPTION_MAX_LEN, sizeof(int32_t) * CX_CAPTION_MAX_LEN) ||
                CX_I32P(s->caption_len)[r0 + r] != lens[r])
                bad_caps++;
            char text[200];
            size_t tl = cx_caption_decode(s, row, CX_CAPTION_MAX_LEN, text, sizeof text);
            int32_t back[CX_CAPTION_MAX_LEN];
            int bl = 0;
            if (tl >= sizeof text || cx_caption_encode(s, text, back, CX_CAPTION_MAX_LEN, &bl) != CX_OK ||
                bl != lens[r] || memcmp(back, row, (size_t)bl * sizeof(int32_t)))
                bad_text++;
        }
    }
    free(mask);
    CHECK_MSG(bad_items == 0, "%d bad items", bad_items);
    CHECK_MSG(bad_box == 0, "%d bad boxes", bad_box);
    CHECK_MSG(bad_px == 0, "%d bad pixels", bad_px);
    CHECK_MSG(bad_caps == 0, "%d canvases whose captions are not the grammar's", bad_caps);
    CHECK_MSG(bad_text == 0, "%d captions that do not survive decode + encode", bad_text);
}

static void generate(void) {
    cx_caption_opts o = cx_caption_defaults();
    CHECK(o.height == 64 && o.width == 64 && o.min_items == 1 && o.max_items == 3 && o.min_size == 28 &&
          o.max_size == 28 && o.gap == 2);
    o.split = "train";
    cx_rng before = cx_rng_get();
    cx_caption_set *s = NULL, *t = NULL, *u = NULL;
    CHECK(cx_caption_generate(&train, 400, 7, &o, &s) == CX_OK && s);
    cx_rng after = cx_rng_get();
    CHECK(before.state == after.state && before.inc == after.inc); /* the thread's stream is not used */
    if (!s) return;
    CHECK(s->n == 400 && s->seed == 7 && !strcmp(s->split, "train") && s->classes == CX_CAPTION_FASHION);
    CHECK(strstr(s->recipe, "items=1-3") && strstr(s->recipe, "pool=6000"));
    check_set(s, &train, &o);
    /* every item count, repeated classes and several references all occur */
    int per[4] = {0}, counted = 0, multi = 0;
    for (int i = 0; i < s->n; i++) {
        per[CX_I32P(s->n_items)[i]]++;
        multi += CX_I32P(s->ref_start)[i + 1] - CX_I32P(s->ref_start)[i] > 1;
        int r0 = CX_I32P(s->ref_start)[i];
        const int32_t *row = CX_I32P(s->captions) + (size_t)r0 * CX_CAPTION_MAX_LEN;
        counted += row[1] == cx_caption_word_id(s, "two") || row[1] == cx_caption_word_id(s, "three");
    }
    CHECK(per[1] > 80 && per[2] > 80 && per[3] > 80);
    CHECK(counted > 40 && multi >= 3);
    /* same seed, same set; another seed, another set */
    CHECK(cx_caption_generate(&train, 400, 7, &o, &t) == CX_OK && t && same_set(s, t));
    CHECK(cx_caption_generate(&train, 400, 8, &o, &u) == CX_OK && u);
    if (u) CHECK(!same_tensor(s->images, u->images) && !same_tensor(s->item_src, u->item_src));
    cx_caption_set_free(t);
    cx_caption_set_free(u);
    /* BLEU against the set: its canonical captions score 1; "a bag" everywhere does not */
    cx_token_seq *c = malloc((size_t)s->n * sizeof *c);
    int32_t a_bag[4] = {CX_CAP_START, cx_caption_word_id(s, "a"), cx_caption_word_id(s, "bag"), CX_CAP_END};
    for (int i = 0; i < s->n; i++) {
        int r0 = CX_I32P(s->ref_start)[i];
        c[i] = (cx_token_seq){CX_I32P(s->captions) + (size_t)r0 * CX_CAPTION_MAX_LEN, CX_CAPTION_MAX_LEN};
    }
    cx_bleu_result b;
    CHECK(cx_caption_bleu(s, c, &b) == CX_OK);
    CHECK(b.bleu[3] == 1.0 && b.exact_match == 1.0 && b.n == s->n);
    int bags = 0;
    for (int i = 0; i < s->n; i++) c[i] = (cx_token_seq){a_bag, 4};
    for (int i = 0; i < s->n; i++) {
        int r0 = CX_I32P(s->ref_start)[i];
        bags += CX_I32P(s->caption_len)[r0] == 4 && CX_I32P(s->captions)[(size_t)r0 * CX_CAPTION_MAX_LEN + 2] == a_bag[2];
    }
    CHECK(cx_caption_bleu(s, c, &b) == CX_OK);
    CHECK(b.n_exact == bags && b.bleu[0] > 0 && b.bleu[0] < 1 && b.cand_len == 2L * s->n);
    CHECK(cx_caption_bleu(s, NULL, &b) == CX_ERR_ARG);
    free(c);
    cx_caption_set_free(s);
}

/* Train canvases use training images only and test canvases test images
 * only: as separate files (t10k), or as disjoint pools of one file. */
static void train_test_separation(void) {
    cx_caption_opts o = cx_caption_defaults();
    int *pool_a = malloc(5000 * sizeof(int)), *pool_b = malloc(1000 * sizeof(int));
    for (int i = 0; i < 5000; i++) pool_a[i] = i;
    for (int i = 0; i < 1000; i++) pool_b[i] = 5000 + i;
    cx_caption_set *a = NULL, *b = NULL, *t = NULL;
    o.pool = pool_a;
    o.n_pool = 5000;
    o.split = "train";
    CHECK(cx_caption_generate(&train, 300, 1, &o, &a) == CX_OK);
    o.pool = pool_b;
    o.n_pool = 1000;
    o.split = "val";
    CHECK(cx_caption_generate(&train, 300, 2, &o, &b) == CX_OK);
    if (a && b) {
        static bool in_a[6000];
        memset(in_a, 0, sizeof in_a);
        int used_a = 0, outside = 0, shared = 0;
        for (int i = 0; i < a->n * 3; i++) {
            int src = CX_I32P(a->item_src)[i];
            if (src < 0) continue;
            outside += src >= 5000;
            used_a += !in_a[src];
            in_a[src] = true;
        }
        for (int i = 0; i < b->n * 3; i++) {
            int src = CX_I32P(b->item_src)[i];
            if (src < 0) continue;
            outside += src < 5000;
            shared += in_a[src];
        }
        CHECK(outside == 0 && shared == 0 && used_a > 300);
        o.pool = pool_a;
        o.n_pool = 5000;
        check_set(a, &train, &o);
    }
    /* the t10k file: every item is the test image it names */
    o = cx_caption_defaults();
    o.split = "test";
    CHECK(cx_caption_generate(&test, 200, 3, &o, &t) == CX_OK);
    if (t) {
        check_set(t, &test, &o);
        int bad = 0;
        for (int i = 0; i < t->n * 3; i++) bad += CX_I32P(t->item_src)[i] >= test.x->shape[0];
        CHECK(bad == 0);
    }
    cx_caption_set_free(a);
    cx_caption_set_free(b);
    cx_caption_set_free(t);
    free(pool_a);
    free(pool_b);
}

static void scaled_items(void) {
    cx_caption_opts o = cx_caption_defaults();
    o.height = 48;
    o.width = 56;
    o.min_size = 14;
    o.max_size = 22;
    o.gap = 1;
    o.min_items = 2;
    o.repeat_prob = 0.5f;
    cx_caption_set *s = NULL;
    CHECK(cx_caption_generate(&train, 300, 11, &o, &s) == CX_OK && s);
    if (!s) return;
    check_set(s, &train, &o);
    int small = 0, large = 0, one = 0;
    for (int i = 0; i < s->n; i++) {
        one += CX_I32P(s->n_items)[i] == 1;
        for (int j = 0; j < CX_I32P(s->n_items)[i]; j++) {
            int w = CX_I32P(s->item_box)[i * 12 + 4 * j + 2];
            small += w == 14;
            large += w == 22;
        }
    }
    CHECK(one == 0 && small > 0 && large > 0);
    /* a scaled item keeps the look of its source: its mean brightness is close */
    double worst = 0;
    for (int i = 0; i < 50; i++) {
        int w = CX_I32P(s->item_box)[i * 12 + 2], x0 = CX_I32P(s->item_box)[i * 12], y0 = CX_I32P(s->item_box)[i * 12 + 1];
        const float *from = CX_F(train.x) + (size_t)CX_I32P(s->item_src)[i * 3] * 784;
        double m0 = 0, m1 = 0;
        for (int p = 0; p < 784; p++) m0 += from[p] / 784.0;
        for (int y = 0; y < w; y++)
            for (int x = 0; x < w; x++) m1 += CX_F(s->images)[(size_t)i * 48 * 56 + (y0 + y) * 56 + x0 + x] / (w * w);
        if (fabs(m1 - m0) > worst) worst = fabs(m1 - m0);
    }
    CHECK_MSG(worst < 0.06, "scaled item brightness differs by %g", worst);
    cx_caption_set_free(s);
    /* digits names on the same images (labels 0..9) */
    o = cx_caption_defaults();
    o.classes = CX_CAPTION_DIGITS;
    CHECK(cx_caption_generate(&train, 50, 4, &o, &s) == CX_OK && s);
    if (s) {
        CHECK(s->vocab_size == 30 && cx_caption_word_id(s, "eights") > CX_CAP_UNK);
        check_set(s, &train, &o);
        cx_caption_set_free(s);
    }
}

static void text(void) {
    cx_caption_set *s = NULL;
    CHECK(cx_caption_generate(&train, 1, 1, NULL, &s) == CX_OK && s);
    if (!s) return;
    int32_t ids[16];
    int n = -1;
    CHECK(cx_caption_encode(s, "  a sneaker left of   a bag ", ids, 16, &n) == CX_OK && n == 8);
    CHECK(ids[0] == CX_CAP_START && ids[7] == CX_CAP_END && ids[2] == cx_caption_word_id(s, "sneaker"));
    char buf[64];
    CHECK(cx_caption_decode(s, ids, n, buf, sizeof buf) == strlen("a sneaker left of a bag"));
    CHECK(!strcmp(buf, "a sneaker left of a bag"));
    /* unknown words, truncation, out-of-range ids, stop at <end>, skip <pad> */
    CHECK(cx_caption_encode(s, "a zebra", ids, 16, &n) == CX_OK && n == 4 && ids[2] == CX_CAP_UNK);
    CHECK(cx_caption_encode(s, "a bag left of a bag", ids, 5, &n) == CX_ERR_ARG);
    CHECK(cx_caption_encode(s, "", ids, 2, &n) == CX_OK && n == 2);
    CHECK(cx_caption_encode(s, "", ids, 1, &n) == CX_ERR_ARG);
    int32_t odd[] = {CX_CAP_PAD, 4, 999, -5, CX_CAP_UNK, CX_CAP_END, 20};
    CHECK(cx_caption_decode(s, odd, 7, buf, sizeof buf) == strlen("a <unk> <unk> <unk>"));
    CHECK(!strcmp(buf, "a <unk> <unk> <unk>"));
    char tiny[6];
    CHECK(cx_caption_decode(s, ids, 0, tiny, sizeof tiny) == 0 && tiny[0] == 0);
    int32_t two[] = {4, 20};
    CHECK(cx_caption_decode(s, two, 2, tiny, sizeof tiny) == 5 && !strcmp(tiny, "a bag"));
    CHECK(cx_caption_decode(s, two, 2, tiny, 3) == 5 && !strcmp(tiny, "a "));
    CHECK(cx_caption_decode(s, two, 2, NULL, 0) == 5);
    CHECK(cx_caption_word_id(s, "above") > CX_CAP_UNK && cx_caption_word_id(s, "Above") == CX_CAP_UNK);
    cx_caption_set_free(s);
}

static void bad_input(void) {
    cx_caption_set *s = (cx_caption_set *)&s; /* must become NULL */
    CHECK(cx_caption_generate(&train, 0, 1, NULL, &s) == CX_ERR_ARG && s == NULL);
    CHECK(strstr(cx_last_error(), "n = 0"));
    CHECK(cx_caption_generate(&train, -3, 1, NULL, &s) == CX_ERR_ARG);
    CHECK(cx_caption_generate(NULL, 5, 1, NULL, &s) == CX_ERR_ARG);
    CHECK(cx_caption_generate(&train, 5, 1, NULL, NULL) == CX_ERR_ARG);
    cx_dataset nolabels = {.x = train.x, .y = NULL};
    CHECK(cx_caption_generate(&nolabels, 5, 1, NULL, &s) == CX_ERR_ARG);
    /* empty dataset */
    cx_dataset empty = {.x = cx_tensor_new(CX_F32, (int[]){0, 784}, 2), .y = cx_tensor_new(CX_I32, (int[]){0}, 1), .owned = true};
    CHECK(cx_caption_generate(&empty, 5, 1, NULL, &s) == CX_ERR_ARG && s == NULL);
    CHECK(strstr(cx_last_error(), "empty"));
    cx_dataset_free(&empty);
    /* wrong image size */
    cx_dataset small = {.x = cx_tensor_new(CX_F32, (int[]){4, 10, 10}, 3), .y = cx_tensor_new(CX_I32, (int[]){4}, 1), .owned = true};
    CHECK(cx_caption_generate(&small, 5, 1, NULL, &s) == CX_ERR_SHAPE);
    CHECK(strstr(cx_last_error(), "28x28"));
    cx_dataset_free(&small);
    /* [N, 1, 28, 28] is fine; labels of the wrong length or outside 0..9 are not */
    cx_dataset four = {.x = cx_tensor_new(CX_F32, (int[]){4, 1, 28, 28}, 4), .y = cx_tensor_new(CX_I64, (int[]){4}, 1), .owned = true};
    CHECK(cx_caption_generate(&four, 5, 1, NULL, &s) == CX_OK && s);
    cx_caption_set_free(s);
    CX_I64P(four.y)[2] = 10;
    CHECK(cx_caption_generate(&four, 5, 1, NULL, &s) == CX_ERR_FORMAT && strstr(cx_last_error(), "image 2 has label 10"));
    int pool01[2] = {0, 1};
    cx_caption_opts o = cx_caption_defaults();
    o.pool = pool01;
    o.n_pool = 2;
    CHECK(cx_caption_generate(&four, 5, 1, &o, &s) == CX_OK && s); /* the bad label is not in the pool */
    if (s) {
        for (int i = 0; i < s->n * 3; i++) CHECK(CX_I32P(s->item_src)[i] < 2);
        cx_caption_set_free(s);
    }
    cx_tensor_free(four.y);
    four.y = cx_tensor_new(CX_I32, (int[]){3}, 1);
    CHECK(cx_caption_generate(&four, 5, 1, NULL, &s) == CX_ERR_SHAPE);
    cx_dataset_free(&four);
    /* options */
    o = cx_caption_defaults();
    o.height = 56; /* 2 * 28 + 2 > 56 */
    o.width = 56;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG && strstr(cx_last_error(), "too small"));
    o.gap = 0; /* just fits: three items need a corner layout, found by starting over */
    CHECK(cx_caption_generate(&train, 100, 1, &o, &s) == CX_OK && s);
    if (s) check_set(s, &train, &o);
    cx_caption_set_free(s);
    o = cx_caption_defaults();
    o.min_items = 0;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.max_items = 4;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.min_items = 3;
    o.max_items = 2;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.min_size = 20;
    o.max_size = 19;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.max_size = 70;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.gap = -1;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.repeat_prob = 1.5f;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o.repeat_prob = NAN;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.height = 0;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    o.classes = (cx_caption_classes)7;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o = cx_caption_defaults();
    int pool_bad[2] = {0, 6000};
    o.pool = pool_bad;
    o.n_pool = 2;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG && strstr(cx_last_error(), "pool[1] = 6000"));
    pool_bad[1] = -1;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG);
    o.n_pool = 0;
    CHECK(cx_caption_generate(&train, 5, 1, &o, &s) == CX_ERR_ARG && strstr(cx_last_error(), "pool is empty"));
    CHECK(s == NULL);
}

/* ---- save / load */
static int count_temp_files(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void save_load(void) {
    cx_caption_opts o = cx_caption_defaults();
    o.split = "test";
    cx_caption_set *s = NULL, *t = NULL;
    CHECK(cx_caption_generate(&test, 120, 99, &o, &s) == CX_OK && s);
    if (!s) return;
    const char *p = tmp_path("set.safetensors");
    CHECK(cx_caption_save(s, p) == CX_OK);
    CHECK(count_temp_files() == 0);
    CHECK(cx_caption_load(p, &t) == CX_OK && t);
    if (t) CHECK(same_set(s, t));
    cx_caption_set_free(t);
    /* the metadata a reader sees */
    cx_st_file *f = NULL;
    CHECK(cx_st_load(p, &f) == CX_OK);
    if (f) {
        CHECK(!strcmp(cx_st_meta(f, "format"), "cortex-caption-set") && !strcmp(cx_st_meta(f, "grammar"), "1"));
        CHECK(!strcmp(cx_st_meta(f, "classes"), "fashion-mnist") && !strcmp(cx_st_meta(f, "seed"), "99"));
        CHECK(!strcmp(cx_st_meta(f, "split"), "test"));
        CHECK(!strncmp(cx_st_meta(f, "vocab"), "<pad> <start> <end> <unk> a an two three and left of above top", 62));
        cx_st_free(f);
    }
    /* a large seed survives */
    s->seed = UINT64_MAX;
    CHECK(cx_caption_save(s, p) == CX_OK && cx_caption_load(p, &t) == CX_OK && t && t->seed == UINT64_MAX);
    cx_caption_set_free(t);
    CHECK(cx_caption_load(tmp_path("missing.safetensors"), &t) == CX_ERR_IO && t == NULL);
    CHECK(cx_caption_save(s, NULL) == CX_ERR_ARG && cx_caption_save(NULL, p) == CX_ERR_ARG);
    CHECK(cx_caption_load(p, NULL) == CX_ERR_ARG);
    cx_caption_set_free(s);
}

/* Rewrite a saved set with one change (a tensor edited in place, or one
 * metadata value replaced or removed), then load it: it must fail with
 * CX_ERR_FORMAT and a message holding `want`. */
typedef void (*mutator)(cx_st_file *f);
static const char *meta_key, *meta_val; /* metadata change (val NULL: drop the key) */
static const char *drop_tensor;

static void expect_corrupt(const char *good, mutator mut, const char *want, int line) {
    cx_st_file *f = NULL;
    CHECK(cx_st_load(good, &f) == CX_OK);
    if (!f) return;
    if (mut) mut(f);
    cx_tensor *ts[16];
    const char *names[16];
    int n = 0;
    for (int i = 0; i < f->n && n < 16; i++) {
        if (drop_tensor && !strcmp(f->entries[i].name, drop_tensor)) continue;
        ts[n] = f->entries[i].tensor;
        names[n++] = f->entries[i].name;
    }
    const char *mk[16], *mv[16];
    int nm = 0;
    for (int i = 0; i < f->n_meta && nm < 16; i++) {
        if (meta_key && !strcmp(f->meta_keys[i], meta_key)) {
            if (!meta_val) continue;
            mk[nm] = meta_key;
            mv[nm++] = meta_val;
            continue;
        }
        mk[nm] = f->meta_keys[i];
        mv[nm++] = f->meta_values[i];
    }
    const char *bad = tmp_path("bad.safetensors");
    CHECK(cx_st_save(bad, ts, names, n, mk, mv, nm) == CX_OK);
    cx_st_free(f);
    cx_caption_set *s = (cx_caption_set *)&f;
    cx_status st = cx_caption_load(bad, &s);
    CHECK_MSG(st == CX_ERR_FORMAT && s == NULL, "line %d: status %d", line, (int)st);
    CHECK_MSG(strstr(cx_last_error(), want) && strstr(cx_last_error(), "bad.safetensors"),
              "line %d: '%s' lacks '%s'", line, cx_last_error(), want);
    meta_key = meta_val = drop_tensor = NULL;
}
#define CORRUPT(mut, want) expect_corrupt(good, mut, want, __LINE__)

static cx_tensor *get(cx_st_file *f, const char *name) { return cx_st_get(f, name); }
static void m_word(cx_st_file *f) { /* canvas 3's first caption: its second word becomes "boot" */
    int r0 = CX_I32P(get(f, "ref_start"))[3];
    int32_t *w = CX_I32P(get(f, "captions")) + r0 * CX_CAPTION_MAX_LEN + 2;
    *w = *w == 21 ? 20 : 21;
}
static void m_len(cx_st_file *f) { CX_I32P(get(f, "caption_len"))[0]++; }
static void m_pad(cx_st_file *f) { CX_I32P(get(f, "captions"))[CX_CAPTION_MAX_LEN - 1] = 4; }
static void m_items(cx_st_file *f) { CX_I32P(get(f, "n_items"))[5] = 4; }
static void m_items0(cx_st_file *f) { CX_I32P(get(f, "n_items"))[5] = 0; }
static void m_label(cx_st_file *f) { CX_I32P(get(f, "item_class"))[0] = 12; }
static void m_box(cx_st_file *f) { CX_I32P(get(f, "item_box"))[0] = 60; }
static void m_box_neg(cx_st_file *f) { CX_I32P(get(f, "item_box"))[1] = -1; }
static void m_box_huge(cx_st_file *f) { CX_I32P(get(f, "item_box"))[0] = 2147483600; }
static void m_pixel(cx_st_file *f) { CX_F(get(f, "images"))[100] = 1.5f; }
static void m_nan(cx_st_file *f) { CX_F(get(f, "images"))[7] = NAN; }
static void m_refs(cx_st_file *f) { CX_I32P(get(f, "ref_start"))[1] = 0; }
static void m_refs_big(cx_st_file *f) { CX_I32P(get(f, "ref_start"))[1] = INT32_MIN; }
static void m_unused(cx_st_file *f) { /* set an item past n_items */
    int32_t *n = CX_I32P(get(f, "n_items"));
    for (int i = 0; i < 100; i++)
        if (n[i] < 3) {
            CX_I32P(get(f, "item_src"))[i * 3 + 2] = 0;
            return;
        }
}
static void m_shape(cx_st_file *f) { get(f, "images")->shape[1] = 2, get(f, "images")->shape[2] /= 2; }
static void m_dtype(cx_st_file *f) { get(f, "n_items")->dtype = CX_F32; }

static void corrupt_files(void) {
    cx_caption_set *s = NULL;
    CHECK(cx_caption_generate(&test, 100, 5, NULL, &s) == CX_OK && s);
    if (!s) return;
    static char good[512];
    snprintf(good, sizeof good, "%s", tmp_path("good.safetensors"));
    CHECK(cx_caption_save(s, good) == CX_OK);
    cx_caption_set_free(s);
    CORRUPT(m_word, "canvas 3 caption 0 is not the grammar's caption");
    CORRUPT(m_len, "canvas 0 caption 0");
    CORRUPT(m_pad, "canvas 0 caption 0");
    CORRUPT(m_items, "canvas 5 has 4 items");
    CORRUPT(m_items0, "canvas 5 has 0 items");
    CORRUPT(m_label, "canvas 0 item 0 has label 12");
    CORRUPT(m_box, "outside the 64x64 canvas");
    CORRUPT(m_box_neg, "outside the 64x64 canvas");
    CORRUPT(m_box_huge, "outside the 64x64 canvas");
    CORRUPT(m_pixel, "pixel value 1.5");
    CORRUPT(m_nan, "image 0 has pixel value nan");
    CORRUPT(m_refs, "canvas 0 has 0 captions");
    CORRUPT(m_refs_big, "captions (must be 1..6)");
    CORRUPT(m_unused, "item 2 is set");
    CORRUPT(m_shape, "'images' has the wrong shape");
    CORRUPT(m_dtype, "'n_items' has the wrong dtype");
    drop_tensor = "item_box";
    CORRUPT(NULL, "'item_box' missing");
    meta_key = "format";
    CORRUPT(NULL, "not a Cortex caption set");
    meta_key = "grammar", meta_val = "2";
    CORRUPT(NULL, "grammar version '2'");
    meta_key = "classes", meta_val = "cifar";
    CORRUPT(NULL, "unknown class set 'cifar'");
    meta_key = "classes", meta_val = "mnist-digits"; /* the vocabulary is then the wrong one */
    CORRUPT(NULL, "vocabulary");
    meta_key = "vocab", meta_val = "<pad> <start> <end> <unk> a an two three and left of above top trouser";
    CORRUPT(NULL, "vocabulary");
    meta_key = "vocab";
    CORRUPT(NULL, "vocabulary");
    meta_key = "seed", meta_val = "-4";
    CORRUPT(NULL, "bad seed");
    meta_key = "seed", meta_val = "99999999999999999999999";
    CORRUPT(NULL, "bad seed");
    /* another kind of safetensors file */
    cx_vocab *v = cx_vocab_build((const int32_t[]){'a', 'b'}, 2, 1);
    CHECK(cx_vocab_save(v, tmp_path("vocab.safetensors")) == CX_OK);
    cx_vocab_free(v);
    cx_caption_set *t = NULL;
    CHECK(cx_caption_load(tmp_path("vocab.safetensors"), &t) == CX_ERR_FORMAT && strstr(cx_last_error(), "format tag"));
    /* truncated, and random byte flips: an error or a valid set, never a crash */
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(good, &buf, &n, 0) == CX_OK);
    if (!buf) return;
    const char *bad = tmp_path("fuzz.safetensors");
    CHECK(cx_write_file_atomic(bad, buf, n / 2) == CX_OK);
    CHECK(cx_caption_load(bad, &t) == CX_ERR_FORMAT && t == NULL);
    unsigned char *m = malloc(n);
    cx_rng g = cx_rng_new(3);
    int loaded = 0, failed = 0;
    for (int it = 0; it < 120 && m; it++) {
        memcpy(m, buf, n);
        int flips = 1 + (int)cx_rng_below(&g, 4);
        for (int k = 0; k < flips; k++) {
            /* half the flips in the header and the small tensors, where they matter most */
            size_t at = cx_rng_below(&g, 2) ? cx_rng_below(&g, 4096) : cx_rng_below(&g, (uint32_t)n);
            if (at < n) m[at] ^= (unsigned char)(1u << cx_rng_below(&g, 8));
        }
        CHECK(cx_write_file_atomic(bad, m, n) == CX_OK);
        cx_status st = cx_caption_load(bad, &t);
        if (st == CX_OK) {
            loaded++;
            CHECK(t && t->n == 100);
            cx_caption_set_free(t);
        } else {
            failed++;
            CHECK(t == NULL && (st == CX_ERR_FORMAT || st == CX_ERR_IO));
        }
    }
    CHECK(loaded + failed == 120 && failed > 20);
    free(m);
    free(buf);
}

static void picture(void) {
    cx_caption_set *s = NULL;
    CHECK(cx_caption_generate(&test, 12, 21, NULL, &s) == CX_OK && s);
    if (!s) return;
    int idx[6] = {0, 1, 2, 3, 4, 5};
    cx_token_seq preds[6];
    int32_t wrong[3] = {CX_CAP_START, 4, CX_CAP_END};
    for (int j = 0; j < 6; j++) {
        int r0 = CX_I32P(s->ref_start)[j];
        preds[j] = j % 2 ? (cx_token_seq){wrong, 3}
                         : (cx_token_seq){CX_I32P(s->captions) + (size_t)r0 * CX_CAPTION_MAX_LEN, CX_CAPTION_MAX_LEN};
    }
    const char *p = tmp_path("captions.png");
    CHECK(cx_caption_png(s, idx, 6, preds, 3, p) == CX_OK);
    FILE *f = fopen(p, "rb");
    CHECK(f != NULL);
    if (f) {
        unsigned char sig[8];
        CHECK(fread(sig, 1, 8, f) == 8 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
        fclose(f);
    }
    CHECK(cx_caption_png(s, idx, 6, NULL, 0, p) == CX_OK);
    idx[2] = 12;
    CHECK(cx_caption_png(s, idx, 6, NULL, 0, p) == CX_ERR_ARG && strstr(cx_last_error(), "canvas 12 out of range"));
    CHECK(cx_caption_png(s, idx, 0, NULL, 0, p) == CX_ERR_ARG);
    CHECK(cx_caption_png(NULL, idx, 1, NULL, 0, p) == CX_ERR_ARG);
    CHECK(count_temp_files() == 0);
    cx_caption_set_free(s);
}

/* Teacher-forcing batches: input = caption without its last token, target =
 * caption without <start>, time-major, padded; the images copied; canonical,
 * fixed and random references; errors. */
static void make_batch(void) {
    cx_caption_opts o = cx_caption_defaults();
    cx_caption_set *s = NULL;
    CHECK(cx_caption_generate(&train, 200, 11, &o, &s) == CX_OK && s);
    if (!s) return;
    const int32_t *rs = CX_I32P(s->ref_start), *clen = CX_I32P(s->caption_len);
    int idx[6] = {3, 0, 199, 3, 57, 120};
    for (int ref = CX_CAPTION_REF_RANDOM; ref <= 2; ref++) {
        cx_caption_batch b;
        CHECK(cx_caption_make_batch(s, idx, 6, ref, &b) == CX_OK);
        CHECK(b.n == 6 && b.images->ndim == 4 && b.images->shape[0] == 6 && b.images->shape[1] == 1 &&
              b.images->shape[2] == s->height && b.images->shape[3] == s->width);
        CHECK(b.input->dtype == CX_I32 && b.target->dtype == CX_I32 && b.input->ndim == 2 &&
              b.input->shape[0] == b.steps && b.input->shape[1] == 6 && b.target->shape[0] == b.steps &&
              b.target->shape[1] == 6);
        int longest = 0;
        for (int k = 0; k < 6; k++) {
            int first = rs[idx[k]], nr = rs[idx[k] + 1] - first;
            CHECK(b.caption[k] >= first && b.caption[k] < first + nr);
            if (ref >= 0) CHECK(b.caption[k] == first + (ref < nr ? ref : 0));
            CHECK(b.lengths[k] == clen[b.caption[k]] - 1);
            if (b.lengths[k] > longest) longest = b.lengths[k];
            const int32_t *c = CX_I32P(s->captions) + (size_t)b.caption[k] * s->max_len;
            for (int t = 0; t < b.steps; t++) {
                int32_t in = CX_I32P(b.input)[t * 6 + k], tg = CX_I32P(b.target)[t * 6 + k];
                if (t < b.lengths[k]) CHECK(in == c[t] && tg == c[t + 1]);
                else CHECK(in == CX_CAP_PAD && tg == CX_CAP_PAD);
            }
            CHECK(CX_I32P(b.input)[k] == CX_CAP_START && CX_I32P(b.target)[(b.lengths[k] - 1) * 6 + k] == CX_CAP_END);
            size_t hw = (size_t)s->height * s->width;
            CHECK(!memcmp(CX_F(b.images) + k * hw, CX_F(s->images) + (size_t)idx[k] * hw, hw * sizeof(float)));
        }
        CHECK(b.steps == longest);
    }
    /* random references: the same draws from the same stream, every reference reachable */
    int many[200], seen_other = 0;
    for (int i = 0; i < 200; i++) many[i] = i;
    cx_caption_batch b1, b2;
    cx_seed(5);
    CHECK(cx_caption_make_batch(s, many, 200, CX_CAPTION_REF_RANDOM, &b1) == CX_OK);
    cx_seed(5);
    CHECK(cx_caption_make_batch(s, many, 200, CX_CAPTION_REF_RANDOM, &b2) == CX_OK);
    for (int i = 0; i < 200; i++) {
        CHECK(b1.caption[i] == b2.caption[i]);
        seen_other += b1.caption[i] != rs[i];
    }
    CHECK(seen_other > 0);
    /* errors */
    cx_caption_batch e;
    int bad[2] = {0, 200};
    CHECK(cx_caption_make_batch(s, bad, 2, 0, &e) == CX_ERR_ARG && strstr(cx_last_error(), "canvas 200 out of range") &&
          e.n == 0 && e.input == NULL);
    bad[1] = -1;
    CHECK(cx_caption_make_batch(s, bad, 2, 0, &e) == CX_ERR_ARG);
    CHECK(cx_caption_make_batch(s, idx, 0, 0, &e) == CX_ERR_ARG);
    CHECK(cx_caption_make_batch(s, idx, 2, -2, &e) == CX_ERR_ARG);
    CHECK(cx_caption_make_batch(NULL, idx, 2, 0, &e) == CX_ERR_ARG);
    CHECK(cx_caption_make_batch(s, NULL, 2, 0, &e) == CX_ERR_ARG);
    CHECK(cx_caption_make_batch(s, idx, 2, 0, NULL) == CX_ERR_ARG);
    cx_caption_set_free(s);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_caption_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        printf("RESULT 0 1\n");
        return 1;
    }
    if (cx_dataset_load_idx(DATA_DIR "/train-images-idx3-ubyte.gz", DATA_DIR "/train-labels-idx1-ubyte.gz", 0, &train) ||
        cx_dataset_load_idx(DATA_DIR "/t10k-images-idx3-ubyte.gz", DATA_DIR "/t10k-labels-idx1-ubyte.gz", 0, &test)) {
        fprintf(stderr, "cannot load %s: %s\n", DATA_DIR, cx_last_error());
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(grammar);
    RUN(vocabulary);
    RUN(generate);
    RUN(train_test_separation);
    RUN(scaled_items);
    RUN(text);
    RUN(bad_input);
    RUN(save_load);
    RUN(corrupt_files);
    RUN(picture);
    RUN(make_batch);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_caption: could not remove %s\n", tmpdir);
    TEST_END();
}
