/* Captioned canvases: the grammar (cx_caption_describe), the generator,
 * vocabulary, text, save/load with full validation, BLEU against a set's
 * references and pictures. The grammar is documented in cortex/caption.h. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "../tensor/internal.h"

#define IMG 28
#define L CX_CAPTION_MAX_LEN
#define MAXR CX_CAPTION_MAX_REFS
#define FORMAT_TAG "cortex-caption-set"

/* ---------------------------------------------------------------- vocabulary */
static const char *const fashion_words[] = {
    "<pad>", "<start>", "<end>", "<unk>", "a", "an", "two", "three", "and", "left", "of", "above",
    "top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot",
    "tops", "trousers", "pullovers", "dresses", "coats", "sandals", "shirts", "sneakers", "bags", "boots",
};
static const char *const digit_words[] = {
    "<pad>", "<start>", "<end>", "<unk>", "a", "an", "two", "three", "and", "left", "of", "above",
    "zero", "one", /* two, three: already there */ "four", "five", "six", "seven", "eight", "nine",
    "zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines",
};
static const char *const fashion_names[10] = {"top", "trouser", "pullover", "dress", "coat",
                                              "sandal", "shirt", "sneaker", "bag", "boot"};
static const char *const fashion_plurals[10] = {"tops", "trousers", "pullovers", "dresses", "coats",
                                                "sandals", "shirts", "sneakers", "bags", "boots"};
static const char *const digit_names[10] = {"zero", "one", "two", "three", "four",
                                            "five", "six", "seven", "eight", "nine"};
static const char *const digit_plurals[10] = {"zeros", "ones", "twos", "threes", "fours",
                                              "fives", "sixes", "sevens", "eights", "nines"};
enum { W_A = 4, W_AN, W_TWO, W_THREE, W_AND, W_LEFT, W_OF, W_ABOVE };

int cx_caption_vocab(cx_caption_classes classes, const char *const **words) {
    bool d = classes == CX_CAPTION_DIGITS;
    if (words) *words = d ? digit_words : fashion_words;
    return d ? (int)(sizeof digit_words / sizeof *digit_words) : (int)(sizeof fashion_words / sizeof *fashion_words);
}

static int vocab_find(cx_caption_classes classes, const char *w) {
    const char *const *words;
    int v = cx_caption_vocab(classes, &words);
    for (int i = 0; i < v; i++)
        if (!strcmp(words[i], w)) return i;
    return CX_CAP_UNK;
}

static bool classes_valid(cx_caption_classes c) { return c == CX_CAPTION_FASHION || c == CX_CAPTION_DIGITS; }
static const char *classes_tag(cx_caption_classes c) { return c == CX_CAPTION_DIGITS ? "mnist-digits" : "fashion-mnist"; }

/* ---------------------------------------------------------------- grammar */
typedef struct {
    int cls, count;
    int x0, y0, x1, y1; /* union of the items' boxes: [x0, x1) x [y0, y1) */
} group;

static int group_cmp(const group *a, const group *b) {
    if (a->x0 != b->x0) return a->x0 < b->x0 ? -1 : 1;
    if (a->y0 != b->y0) return a->y0 < b->y0 ? -1 : 1;
    return (a->cls > b->cls) - (a->cls < b->cls);
}

/* rel 0: P left of Q; rel 1: P above Q. */
static bool holds(const group *p, const group *q, int rel) { return rel == 0 ? p->x1 <= q->x0 : p->y1 <= q->y0; }

static int put_group(cx_caption_classes classes, const group *g, int32_t *row, int k) {
    const char *const *names = classes == CX_CAPTION_DIGITS ? digit_names : fashion_names;
    const char *const *plurals = classes == CX_CAPTION_DIGITS ? digit_plurals : fashion_plurals;
    if (g->count == 1) {
        row[k++] = g->cls == 8 && classes == CX_CAPTION_DIGITS ? W_AN : W_A; /* "an eight" */
        row[k++] = vocab_find(classes, names[g->cls]);
    } else {
        row[k++] = g->count == 2 ? W_TWO : W_THREE;
        row[k++] = vocab_find(classes, plurals[g->cls]);
    }
    return k;
}

static int put_rel(int rel, int32_t *row, int k) {
    if (rel == 0) {
        row[k++] = W_LEFT;
        row[k++] = W_OF;
    } else {
        row[k++] = W_ABOVE;
    }
    return k;
}

static int32_t finish_row(int32_t *row, int k) {
    row[k++] = CX_CAP_END;
    for (int j = k; j < L; j++) row[j] = CX_CAP_PAD;
    return k;
}

int cx_caption_describe(cx_caption_classes classes, int n_items, const int32_t *cls, const int32_t *box,
                        int32_t *ids, int32_t *lens) {
    if (!classes_valid(classes)) cx_fatal("cx_caption_describe: unknown class set %d", (int)classes);
    if (n_items < 1 || n_items > CX_CAPTION_MAX_ITEMS)
        cx_fatal("cx_caption_describe: %d items (must be 1..%d)", n_items, CX_CAPTION_MAX_ITEMS);
    if (!cls || !box || !ids || !lens) cx_fatal("cx_caption_describe: NULL argument");
    group g[CX_CAPTION_MAX_ITEMS];
    int ng = 0;
    for (int k = 0; k < n_items; k++) {
        int c = cls[k];
        const int32_t *b = box + 4 * k;
        if (c < 0 || c > 9) cx_fatal("cx_caption_describe: item %d has label %d (must be 0..9)", k, c);
        if (b[2] < 1 || b[3] < 1) cx_fatal("cx_caption_describe: item %d has a %dx%d box", k, (int)b[2], (int)b[3]);
        int j = 0;
        while (j < ng && g[j].cls != c) j++;
        int x1 = b[0] + b[2], y1 = b[1] + b[3];
        if (j == ng) {
            g[ng++] = (group){.cls = c, .count = 1, .x0 = b[0], .y0 = b[1], .x1 = x1, .y1 = y1};
        } else {
            g[j].count++;
            if (b[0] < g[j].x0) g[j].x0 = b[0];
            if (b[1] < g[j].y0) g[j].y0 = b[1];
            if (x1 > g[j].x1) g[j].x1 = x1;
            if (y1 > g[j].y1) g[j].y1 = y1;
        }
    }
    for (int i = 1; i < ng; i++) /* insertion sort into the canonical numbering */
        for (int j = i; j > 0 && group_cmp(&g[j], &g[j - 1]) < 0; j--) {
            group t = g[j];
            g[j] = g[j - 1];
            g[j - 1] = t;
        }
    int nr = 0;
    if (ng == 1) {
        lens[0] = finish_row(ids, put_group(classes, &g[0], ids, (ids[0] = CX_CAP_START, 1)));
        return 1;
    }
    /* every order of the groups, lexicographic; relations "left of" first, first link slowest */
    static const int perms2[2][3] = {{0, 1, -1}, {1, 0, -1}};
    static const int perms3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    int np = ng == 2 ? 2 : 6, links = ng - 1;
    for (int p = 0; p < np; p++) {
        const int *o = ng == 2 ? perms2[p] : perms3[p];
        for (int rels = 0; rels < (1 << links); rels++) {
            int r[2] = {links == 2 ? rels >> 1 : rels, rels & 1}; /* r[0] varies slowest */
            bool ok = true;
            for (int l = 0; l < links && ok; l++) ok = holds(&g[o[l]], &g[o[l + 1]], r[l]);
            if (!ok) continue;
            if (nr == MAXR) cx_fatal("cx_caption_describe: more than %d references (internal error)", MAXR);
            int32_t *row = ids + (size_t)nr * L;
            int k = 0;
            row[k++] = CX_CAP_START;
            for (int l = 0; l < ng; l++) {
                if (l) k = put_rel(r[l - 1], row, k);
                k = put_group(classes, &g[o[l]], row, k);
            }
            lens[nr++] = finish_row(row, k);
        }
    }
    if (nr == 0) { /* no chain: the groups joined by "and" */
        int k = 0;
        ids[k++] = CX_CAP_START;
        for (int l = 0; l < ng; l++) {
            if (l) ids[k++] = W_AND;
            k = put_group(classes, &g[l], ids, k);
        }
        lens[nr++] = finish_row(ids, k);
    }
    return nr;
}

/* ---------------------------------------------------------------- text */
int cx_caption_word_id(const cx_caption_set *s, const char *word) {
    if (!s || !word) return CX_CAP_UNK;
    for (int i = 0; i < s->vocab_size; i++)
        if (!strcmp(s->words[i], word)) return i;
    return CX_CAP_UNK;
}

size_t cx_caption_decode(const cx_caption_set *s, const int32_t *ids, int n, char *buf, size_t cap) {
    size_t len = 0;
    bool first = true;
    for (int i = 0; ids && i < n; i++) {
        int32_t t = ids[i];
        if (t == CX_CAP_END) break;
        if (t == CX_CAP_START || t == CX_CAP_PAD) continue;
        const char *w = t >= 0 && t < s->vocab_size ? s->words[t] : "<unk>";
        if (!first) {
            if (len + 1 < cap) buf[len] = ' ';
            len++;
        }
        for (const char *c = w; *c; c++, len++)
            if (len + 1 < cap) buf[len] = *c;
        first = false;
    }
    if (cap) buf[len < cap ? len : cap - 1] = 0;
    return len;
}

cx_status cx_caption_encode(const cx_caption_set *s, const char *text, int32_t *ids, int cap, int *len) {
    if (!s || !text || !ids || !len) return cx_set_error(CX_ERR_ARG, "cx_caption_encode: NULL argument");
    *len = 0;
    int k = 0;
    if (k >= cap) return cx_set_error(CX_ERR_ARG, "cx_caption_encode: room for %d ids", cap);
    ids[k++] = CX_CAP_START;
    const char *p = text;
    char word[64];
    for (;;) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t n = strcspn(p, " ");
        int id = CX_CAP_UNK;
        if (n < sizeof word) {
            memcpy(word, p, n);
            word[n] = 0;
            id = cx_caption_word_id(s, word);
        }
        if (k >= cap) return cx_set_error(CX_ERR_ARG, "cx_caption_encode: '%s' needs more than %d ids", text, cap);
        ids[k++] = id;
        p += n;
    }
    if (k >= cap) return cx_set_error(CX_ERR_ARG, "cx_caption_encode: '%s' needs more than %d ids", text, cap);
    ids[k++] = CX_CAP_END;
    *len = k;
    return CX_OK;
}

/* ---------------------------------------------------------------- sets */
static cx_caption_set *set_alloc(cx_caption_classes classes) {
    cx_caption_set *s = cx_xcalloc(1, sizeof *s);
    s->classes = classes;
    s->max_len = L;
    const char *const *words;
    s->vocab_size = cx_caption_vocab(classes, &words);
    s->words = cx_xcalloc((size_t)s->vocab_size, sizeof *s->words);
    for (int i = 0; i < s->vocab_size; i++) s->words[i] = cx_xstrdup(words[i]);
    return s;
}

void cx_caption_set_free(cx_caption_set *s) {
    if (!s) return;
    cx_tensor *ts[] = {s->images, s->n_items, s->item_class, s->item_box, s->item_src,
                       s->captions, s->caption_len, s->ref_start};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) cx_tensor_free(ts[i]);
    for (int i = 0; i < s->vocab_size; i++) free(s->words[i]);
    free(s->words);
    free(s->split);
    free(s->recipe);
    free(s);
}

cx_caption_opts cx_caption_defaults(void) {
    return (cx_caption_opts){.height = 64, .width = 64, .min_items = 1, .max_items = 3, .min_size = IMG,
                             .max_size = IMG, .gap = 2, .repeat_prob = 0.25f, .classes = CX_CAPTION_FASHION,
                             .pool = NULL, .n_pool = 0, .split = NULL};
}

/* The label of image i (already checked to be I32 or I64). */
static int64_t label_of(const cx_tensor *y, int i) {
    return y->dtype == CX_I32 ? CX_I32P(y)[i] : CX_I64P(y)[i];
}

static cx_status check_inputs(const cx_dataset *d, int n, const cx_caption_opts *o) {
    if (n <= 0) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: n = %d canvases (must be >= 1)", n);
    if (!d || !d->x || !d->y) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: the dataset needs images and labels");
    const cx_tensor *x = d->x, *y = d->y;
    if (x->dtype != CX_F32 || x->ndim < 1)
        return cx_set_error(CX_ERR_SHAPE, "cx_caption_generate: images must be F32 [N, ...]");
    int N = x->shape[0];
    if (N < 1) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: the dataset is empty");
    if (x->numel / N != IMG * IMG) {
        char sh[64];
        return cx_set_error(CX_ERR_SHAPE, "cx_caption_generate: images %s hold %lld values each, 28x28 = 784 expected",
                            cx_shape_str(x, sh, sizeof sh), (long long)(x->numel / N));
    }
    if ((y->dtype != CX_I32 && y->dtype != CX_I64) || y->ndim != 1 || y->shape[0] != N)
        return cx_set_error(CX_ERR_SHAPE, "cx_caption_generate: labels must be I32 or I64 [%d]", N);
    if (!classes_valid(o->classes)) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: unknown class set %d", (int)o->classes);
    if (o->height < 1 || o->width < 1 || o->height > 4096 || o->width > 4096)
        return cx_set_error(CX_ERR_ARG, "cx_caption_generate: canvas %dx%d (sides 1..4096)", o->height, o->width);
    if (o->min_items < 1 || o->max_items > CX_CAPTION_MAX_ITEMS || o->min_items > o->max_items)
        return cx_set_error(CX_ERR_ARG, "cx_caption_generate: items %d..%d (need 1 <= min <= max <= %d)", o->min_items,
                            o->max_items, CX_CAPTION_MAX_ITEMS);
    if (o->min_size < 1 || o->min_size > o->max_size)
        return cx_set_error(CX_ERR_ARG, "cx_caption_generate: item sizes %d..%d (need 1 <= min <= max)", o->min_size,
                            o->max_size);
    if (o->gap < 0) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: gap %d < 0", o->gap);
    int side = o->height < o->width ? o->height : o->width;
    if (o->max_size > side)
        return cx_set_error(CX_ERR_ARG, "cx_caption_generate: items of %d px do not fit a %dx%d canvas", o->max_size,
                            o->height, o->width);
    if (o->max_items > 1 && 2 * o->max_size + o->gap > side)
        return cx_set_error(CX_ERR_ARG,
                            "cx_caption_generate: a %dx%d canvas is too small for %d items of %d px with gap %d "
                            "(2 * %d + %d = %d must fit in both sides)",
                            o->height, o->width, o->max_items, o->max_size, o->gap, o->max_size, o->gap,
                            2 * o->max_size + o->gap);
    if (!(o->repeat_prob >= 0 && o->repeat_prob <= 1))
        return cx_set_error(CX_ERR_ARG, "cx_caption_generate: repeat_prob %g (must be in [0, 1])", (double)o->repeat_prob);
    if (o->pool && o->n_pool < 1) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: the pool is empty");
    int np = o->pool ? o->n_pool : N;
    for (int k = 0; k < np; k++) {
        int i = o->pool ? o->pool[k] : k;
        if (i < 0 || i >= N)
            return cx_set_error(CX_ERR_ARG, "cx_caption_generate: pool[%d] = %d is outside the dataset (0..%d)", k, i, N - 1);
        int64_t c = label_of(y, i);
        if (c < 0 || c > 9)
            return cx_set_error(CX_ERR_FORMAT, "cx_caption_generate: image %d has label %lld (must be 0..9)", i, (long long)c);
    }
    return CX_OK;
}

static float clamp01(float v) { return v > 0 ? (v < 1 ? v : 1) : 0; } /* NaN -> 0 */

/* Paste the 28x28 image src, scaled to s x s (bilinear, PyTorch's
 * align_corners=False sampling), at (x, y) of a W-wide canvas. */
static void paste(float *canvas, int W, const float *src, int x, int y, int s) {
    if (s == IMG) {
        for (int r = 0; r < IMG; r++)
            for (int c = 0; c < IMG; c++) canvas[(size_t)(y + r) * W + x + c] = clamp01(src[r * IMG + c]);
        return;
    }
    float sc = (float)IMG / (float)s;
    for (int r = 0; r < s; r++) {
        float fy = ((float)r + 0.5f) * sc - 0.5f;
        if (fy < 0) fy = 0;
        int y0 = (int)fy, y1 = y0 + 1 < IMG ? y0 + 1 : IMG - 1;
        float wy = fy - (float)y0;
        for (int c = 0; c < s; c++) {
            float fx = ((float)c + 0.5f) * sc - 0.5f;
            if (fx < 0) fx = 0;
            int x0 = (int)fx, x1 = x0 + 1 < IMG ? x0 + 1 : IMG - 1;
            float wx = fx - (float)x0;
            float v = (1 - wy) * ((1 - wx) * src[y0 * IMG + x0] + wx * src[y0 * IMG + x1]) +
                      wy * ((1 - wx) * src[y1 * IMG + x0] + wx * src[y1 * IMG + x1]);
            canvas[(size_t)(y + r) * W + x + c] = clamp01(v);
        }
    }
}

static bool apart(const int32_t *a, const int32_t *b, int gap) {
    return a[0] + a[2] + gap <= b[0] || b[0] + b[2] + gap <= a[0] || a[1] + a[3] + gap <= b[1] ||
           b[1] + b[3] + gap <= a[1];
}

/* Place k items of sizes box[4j+2] uniformly among the free positions, one
 * after the other. Returns false when one does not fit. */
static bool place(cx_rng *r, int32_t *box, int k, int H, int W, int gap) {
    for (int j = 0; j < k; j++) {
        int s = box[4 * j + 2];
        int32_t *b = box + 4 * j;
        int64_t free_pos = 0;
        for (int pass = 0; pass < 2; pass++) {
            int64_t pick = pass ? (int64_t)cx_rng_below(r, (uint32_t)free_pos) : -1, seen = 0;
            for (int y = 0; y + s <= H; y++)
                for (int x = 0; x + s <= W; x++) {
                    b[0] = x;
                    b[1] = y;
                    bool ok = true;
                    for (int q = 0; q < j && ok; q++) ok = apart(b, box + 4 * q, gap);
                    if (!ok) continue;
                    if (pass && seen == pick) goto placed;
                    seen++;
                }
            if (!pass) {
                if (seen == 0) return false;
                free_pos = seen;
            }
        }
    placed:;
    }
    return true;
}

static char *recipe_text(const cx_caption_opts *o, int n_pool) {
    char buf[200];
    snprintf(buf, sizeof buf, "height=%d width=%d items=%d-%d size=%d-%d gap=%d repeat=%g pool=%d", o->height,
             o->width, o->min_items, o->max_items, o->min_size, o->max_size, o->gap, (double)o->repeat_prob, n_pool);
    return cx_xstrdup(buf);
}

cx_status cx_caption_generate(const cx_dataset *d, int n, uint64_t seed, const cx_caption_opts *opts,
                              cx_caption_set **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_caption_generate: out is NULL");
    *out = NULL;
    cx_caption_opts o = opts ? *opts : cx_caption_defaults();
    cx_status st = check_inputs(d, n, &o);
    if (st) return st;
    int N = d->x->shape[0], H = o.height, W = o.width;
    int np = o.pool ? o.n_pool : N;
    int *pool = cx_xmalloc((size_t)np * sizeof *pool);
    for (int k = 0; k < np; k++) pool[k] = o.pool ? o.pool[k] : k;
    /* the pool by class */
    int cnt[10] = {0}, *byc[10];
    for (int k = 0; k < np; k++) cnt[label_of(d->y, pool[k])]++;
    for (int c = 0; c < 10; c++) {
        byc[c] = cx_xmalloc((size_t)(cnt[c] ? cnt[c] : 1) * sizeof(int));
        cnt[c] = 0;
    }
    for (int k = 0; k < np; k++) {
        int c = (int)label_of(d->y, pool[k]);
        byc[c][cnt[c]++] = pool[k];
    }

    cx_caption_set *s = set_alloc(o.classes);
    s->n = n;
    s->height = H;
    s->width = W;
    s->seed = seed;
    s->split = cx_xstrdup(o.split ? o.split : "");
    s->recipe = recipe_text(&o, np);
    s->images = cx_tensor_new(CX_F32, (int[]){n, 1, H, W}, 4);
    s->n_items = cx_tensor_new(CX_I32, (int[]){n}, 1);
    s->item_class = cx_tensor_new(CX_I32, (int[]){n, CX_CAPTION_MAX_ITEMS}, 2);
    s->item_box = cx_tensor_new(CX_I32, (int[]){n, CX_CAPTION_MAX_ITEMS, 4}, 3);
    s->item_src = cx_tensor_new(CX_I32, (int[]){n, CX_CAPTION_MAX_ITEMS}, 2);
    s->ref_start = cx_tensor_new(CX_I32, (int[]){n + 1}, 1);
    int32_t *caps = cx_xmalloc((size_t)n * MAXR * L * sizeof(int32_t));
    int32_t *clen = cx_xmalloc((size_t)n * MAXR * sizeof(int32_t));
    int m = 0;
    cx_rng r = cx_rng_new(seed);
    const float *X = CX_F(d->x);
    for (int i = 0; i < n && !st; i++) {
        int k = o.min_items + (int)cx_rng_below(&r, (uint32_t)(o.max_items - o.min_items + 1));
        int32_t *cls = CX_I32P(s->item_class) + (size_t)i * CX_CAPTION_MAX_ITEMS;
        int32_t *src = CX_I32P(s->item_src) + (size_t)i * CX_CAPTION_MAX_ITEMS;
        int32_t *box = CX_I32P(s->item_box) + (size_t)i * CX_CAPTION_MAX_ITEMS * 4;
        for (int j = 0; j < CX_CAPTION_MAX_ITEMS; j++) cls[j] = src[j] = -1;
        for (int j = 0; j < k; j++) {
            const int *list = pool;
            int len = np;
            if (j > 0 && o.repeat_prob > 0 && cx_rng_uniform(&r) < o.repeat_prob) {
                int c = cls[cx_rng_below(&r, (uint32_t)j)];
                list = byc[c];
                len = cnt[c];
            }
            int pick = list[cx_rng_below(&r, (uint32_t)len)];
            for (int t = 0; t < 16; t++) { /* another image than those already on the canvas, if possible */
                bool dup = false;
                for (int q = 0; q < j; q++) dup |= src[q] == pick;
                if (!dup || len < 2) break;
                pick = list[cx_rng_below(&r, (uint32_t)len)];
            }
            src[j] = pick;
            cls[j] = (int32_t)label_of(d->y, pick);
            box[4 * j + 2] = box[4 * j + 3] =
                o.min_size + (int)cx_rng_below(&r, (uint32_t)(o.max_size - o.min_size + 1));
        }
        int tries = 0;
        while (!place(&r, box, k, H, W, o.gap))
            if (++tries == 1000) {
                st = cx_set_error(CX_ERR_ARG,
                                  "cx_caption_generate: could not place %d items of %d..%d px with gap %d on a %dx%d "
                                  "canvas in 1000 tries (canvas %d): use a larger canvas",
                                  k, o.min_size, o.max_size, o.gap, H, W, i);
                break;
            }
        CX_I32P(s->n_items)[i] = k;
        float *canvas = CX_F(s->images) + (size_t)i * H * W;
        for (int j = 0; j < k && !st; j++)
            paste(canvas, W, X + (size_t)src[j] * IMG * IMG, box[4 * j], box[4 * j + 1], box[4 * j + 2]);
        CX_I32P(s->ref_start)[i] = m;
        if (!st) m += cx_caption_describe(o.classes, k, cls, box, caps + (size_t)m * L, clen + m);
    }
    CX_I32P(s->ref_start)[n] = m;
    free(pool);
    for (int c = 0; c < 10; c++) free(byc[c]);
    if (st) {
        free(caps);
        free(clen);
        cx_caption_set_free(s);
        return st;
    }
    s->n_captions = m;
    s->captions = cx_tensor_new(CX_I32, (int[]){m, L}, 2);
    s->caption_len = cx_tensor_new(CX_I32, (int[]){m}, 1);
    memcpy(s->captions->data, caps, (size_t)m * L * sizeof(int32_t));
    memcpy(s->caption_len->data, clen, (size_t)m * sizeof(int32_t));
    free(caps);
    free(clen);
    *out = s;
    return CX_OK;
}

/* ---------------------------------------------------------------- save / load */
static const char *const field_names[8] = {"images", "n_items", "item_class", "item_box",
                                           "item_src", "captions", "caption_len", "ref_start"};

cx_status cx_caption_save(const cx_caption_set *s, const char *path) {
    if (!s || !path) return cx_set_error(CX_ERR_ARG, "cx_caption_save: NULL argument");
    cx_tensor *ts[8] = {s->images, s->n_items, s->item_class, s->item_box,
                        s->item_src, s->captions, s->caption_len, s->ref_start};
    for (int i = 0; i < 8; i++)
        if (!ts[i]) return cx_set_error(CX_ERR_ARG, "%s: cx_caption_save: the set has no '%s'", path, field_names[i]);
    size_t vlen = 1;
    for (int i = 0; i < s->vocab_size; i++) vlen += strlen(s->words[i]) + 1;
    char *vocab = cx_xmalloc(vlen), *p = vocab;
    for (int i = 0; i < s->vocab_size; i++) p += sprintf(p, "%s%s", i ? " " : "", s->words[i]);
    *p = 0;
    char grammar[16], seed[32];
    snprintf(grammar, sizeof grammar, "%d", CX_CAPTION_GRAMMAR);
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    const char *mk[7] = {"format", "grammar", "classes", "vocab", "split", "seed", "opts"};
    const char *mv[7] = {FORMAT_TAG, grammar, classes_tag(s->classes), vocab,
                         s->split ? s->split : "", seed, s->recipe ? s->recipe : ""};
    cx_status st = cx_st_save(path, ts, field_names, 8, mk, mv, 7);
    free(vocab);
    return st;
}

/* Check one loaded tensor: dtype, rank and the given dims (-1: any). */
static const char *check_tensor(const cx_tensor *t, cx_dtype dt, int ndim, const int *dims) {
    if (!t) return "missing";
    if (t->dtype != dt) return "has the wrong dtype";
    if (t->ndim != ndim) return "has the wrong number of dimensions";
    for (int i = 0; i < ndim; i++)
        if (dims[i] >= 0 && t->shape[i] != dims[i]) return "has the wrong shape";
    return NULL;
}

static cx_status load_fail(cx_st_file *f, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static cx_status load_fail(cx_st_file *f, const char *path, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cx_st_free(f);
    return cx_set_error(CX_ERR_FORMAT, "%s: %s", path, msg);
}

/* Validate the items and captions of canvas i; NULL when they are right. */
static const char *check_canvas(const cx_caption_set *s, int i, char *why, size_t n_why) {
    int H = s->height, W = s->width;
    int k = CX_I32P(s->n_items)[i];
    if (k < 1 || k > CX_CAPTION_MAX_ITEMS) return snprintf(why, n_why, "canvas %d has %d items (must be 1..3)", i, k), why;
    const int32_t *cls = CX_I32P(s->item_class) + (size_t)i * CX_CAPTION_MAX_ITEMS;
    const int32_t *src = CX_I32P(s->item_src) + (size_t)i * CX_CAPTION_MAX_ITEMS;
    const int32_t *box = CX_I32P(s->item_box) + (size_t)i * CX_CAPTION_MAX_ITEMS * 4;
    for (int j = 0; j < CX_CAPTION_MAX_ITEMS; j++) {
        const int32_t *b = box + 4 * j;
        if (j < k) {
            if (cls[j] < 0 || cls[j] > 9)
                return snprintf(why, n_why, "canvas %d item %d has label %d (must be 0..9)", i, j, (int)cls[j]), why;
            if (src[j] < 0) return snprintf(why, n_why, "canvas %d item %d has source index %d", i, j, (int)src[j]), why;
            if (b[2] < 1 || b[3] < 1 || b[0] < 0 || b[1] < 0 || b[2] > W || b[3] > H || b[0] > W - b[2] ||
                b[1] > H - b[3])
                return snprintf(why, n_why, "canvas %d item %d has box (%d, %d, %d, %d) outside the %dx%d canvas", i, j,
                                (int)b[0], (int)b[1], (int)b[2], (int)b[3], H, W),
                       why;
        } else if (cls[j] != -1 || src[j] != -1 || b[0] || b[1] || b[2] || b[3]) {
            return snprintf(why, n_why, "canvas %d has %d items but item %d is set", i, k, j), why;
        }
    }
    int32_t ids[MAXR * L], lens[MAXR];
    int nr = cx_caption_describe(s->classes, k, cls, box, ids, lens);
    const int32_t *rs = CX_I32P(s->ref_start);
    if (rs[i + 1] - rs[i] != nr)
        return snprintf(why, n_why, "canvas %d has %d captions, grammar %d gives %d for its items", i, rs[i + 1] - rs[i],
                        CX_CAPTION_GRAMMAR, nr),
               why;
    for (int r = 0; r < nr; r++) {
        const int32_t *row = CX_I32P(s->captions) + (size_t)(rs[i] + r) * L;
        if (CX_I32P(s->caption_len)[rs[i] + r] != lens[r] || memcmp(row, ids + (size_t)r * L, L * sizeof(int32_t)))
            return snprintf(why, n_why, "canvas %d caption %d is not the grammar's caption for its items", i, r), why;
    }
    return NULL;
}

cx_status cx_caption_load(const char *path, cx_caption_set **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_caption_load: out is NULL");
    *out = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_caption_load: path is NULL");
    cx_st_file *f = NULL;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *fmt = cx_st_meta(f, "format"), *gr = cx_st_meta(f, "grammar"), *cl = cx_st_meta(f, "classes");
    const char *vo = cx_st_meta(f, "vocab"), *sp = cx_st_meta(f, "split"), *se = cx_st_meta(f, "seed");
    const char *op = cx_st_meta(f, "opts");
    if (!fmt || strcmp(fmt, FORMAT_TAG)) return load_fail(f, path, "not a Cortex caption set (format tag missing)");
    char want[16];
    snprintf(want, sizeof want, "%d", CX_CAPTION_GRAMMAR);
    if (!gr || strcmp(gr, want))
        return load_fail(f, path, "grammar version '%s', this Cortex reads version %d", gr ? gr : "(none)", CX_CAPTION_GRAMMAR);
    cx_caption_classes classes;
    if (cl && !strcmp(cl, classes_tag(CX_CAPTION_FASHION))) classes = CX_CAPTION_FASHION;
    else if (cl && !strcmp(cl, classes_tag(CX_CAPTION_DIGITS))) classes = CX_CAPTION_DIGITS;
    else return load_fail(f, path, "unknown class set '%s'", cl ? cl : "(none)");
    {
        const char *const *words;
        int v = cx_caption_vocab(classes, &words);
        const char *p = vo;
        bool ok = p != NULL;
        for (int i = 0; i < v && ok; i++) {
            size_t n = strlen(words[i]);
            ok = !strncmp(p, words[i], n) && (p[n] == (i + 1 < v ? ' ' : 0));
            p += n + (i + 1 < v);
        }
        if (!ok) return load_fail(f, path, "the vocabulary is not the one of grammar %d for %s", CX_CAPTION_GRAMMAR, cl);
    }
    uint64_t seed = 0;
    if (se) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(se, &end, 10);
        if (errno || end == se || *end || se[0] == '-') return load_fail(f, path, "bad seed '%s'", se);
        seed = (uint64_t)v;
    }
    cx_tensor *t[8];
    for (int i = 0; i < 8; i++) t[i] = cx_st_get(f, field_names[i]);
    const char *e;
    if ((e = check_tensor(t[0], CX_F32, 4, (int[]){-1, 1, -1, -1}))) return load_fail(f, path, "'images' %s (F32 [N, 1, H, W] expected)", e);
    int N = t[0]->shape[0], H = t[0]->shape[2], W = t[0]->shape[3];
    if (N < 1 || H < 1 || W < 1) return load_fail(f, path, "'images' is empty");
    if ((e = check_tensor(t[1], CX_I32, 1, (int[]){N}))) return load_fail(f, path, "'n_items' %s (I32 [%d] expected)", e, N);
    if ((e = check_tensor(t[2], CX_I32, 2, (int[]){N, 3}))) return load_fail(f, path, "'item_class' %s (I32 [%d, 3] expected)", e, N);
    if ((e = check_tensor(t[3], CX_I32, 3, (int[]){N, 3, 4}))) return load_fail(f, path, "'item_box' %s (I32 [%d, 3, 4] expected)", e, N);
    if ((e = check_tensor(t[4], CX_I32, 2, (int[]){N, 3}))) return load_fail(f, path, "'item_src' %s (I32 [%d, 3] expected)", e, N);
    if ((e = check_tensor(t[5], CX_I32, 2, (int[]){-1, L}))) return load_fail(f, path, "'captions' %s (I32 [M, %d] expected)", e, L);
    int M = t[5]->shape[0];
    if ((e = check_tensor(t[6], CX_I32, 1, (int[]){M}))) return load_fail(f, path, "'caption_len' %s (I32 [%d] expected)", e, M);
    if ((e = check_tensor(t[7], CX_I32, 1, (int[]){N + 1}))) return load_fail(f, path, "'ref_start' %s (I32 [%d] expected)", e, N + 1);
    const int32_t *rs = CX_I32P(t[7]);
    if (rs[0] != 0 || rs[N] != M) return load_fail(f, path, "'ref_start' must run from 0 to %d", M);
    for (int i = 0; i < N; i++) {
        int64_t nr = (int64_t)rs[i + 1] - rs[i];
        if (nr < 1 || nr > MAXR)
            return load_fail(f, path, "canvas %d has %lld captions (must be 1..%d)", i, (long long)nr, MAXR);
    }
    const float *px = CX_F(t[0]);
    for (int64_t j = 0; j < t[0]->numel; j++)
        if (!(px[j] >= 0 && px[j] <= 1))
            return load_fail(f, path, "image %lld has pixel value %g outside [0, 1]", (long long)(j / ((int64_t)H * W)),
                             (double)px[j]);
    /* the set, taking the tensors from the file */
    cx_caption_set *s = set_alloc(classes);
    s->n = N;
    s->height = H;
    s->width = W;
    s->n_captions = M;
    s->seed = seed;
    s->split = cx_xstrdup(sp ? sp : "");
    s->recipe = cx_xstrdup(op ? op : "");
    cx_tensor **dst[8] = {&s->images, &s->n_items, &s->item_class, &s->item_box,
                          &s->item_src, &s->captions, &s->caption_len, &s->ref_start};
    for (int i = 0; i < 8; i++) {
        *dst[i] = t[i];
        for (int j = 0; j < f->n; j++)
            if (f->entries[j].tensor == t[i]) f->entries[j].tensor = NULL;
    }
    char why[200];
    for (int i = 0; i < N; i++) {
        const char *bad = check_canvas(s, i, why, sizeof why);
        if (bad) {
            cx_caption_set_free(s);
            return load_fail(f, path, "%s", bad);
        }
    }
    cx_st_free(f);
    *out = s;
    return CX_OK;
}

/* ---------------------------------------------------------------- training batches */
cx_status cx_caption_make_batch(const cx_caption_set *s, const int *idx, int n, int ref, cx_caption_batch *out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_caption_make_batch: out is NULL");
    memset(out, 0, sizeof *out);
    if (!s || !idx) return cx_set_error(CX_ERR_ARG, "cx_caption_make_batch: NULL argument");
    if (n < 1) return cx_set_error(CX_ERR_ARG, "cx_caption_make_batch: n = %d canvases (must be >= 1)", n);
    if (ref < CX_CAPTION_REF_RANDOM)
        return cx_set_error(CX_ERR_ARG, "cx_caption_make_batch: ref = %d (must be >= 0 or CX_CAPTION_REF_RANDOM)", ref);
    for (int b = 0; b < n; b++)
        if (idx[b] < 0 || idx[b] >= s->n)
            return cx_set_error(CX_ERR_ARG, "cx_caption_make_batch: canvas %d out of range (set of %d)", idx[b], s->n);
    const int32_t *rs = CX_I32P(s->ref_start), *clen = CX_I32P(s->caption_len), *cap = CX_I32P(s->captions);
    int *rows = cx_arena_alloc((size_t)n * sizeof *rows), *lens = cx_arena_alloc((size_t)n * sizeof *lens);
    int T = 1;
    for (int b = 0; b < n; b++) {
        int first = rs[idx[b]], nr = rs[idx[b] + 1] - first;
        int k = ref == CX_CAPTION_REF_RANDOM ? (int)cx_rand_below((uint32_t)nr) : ref < nr ? ref : 0;
        rows[b] = first + k;
        lens[b] = clen[rows[b]] - 1;
        if (lens[b] > T) T = lens[b];
    }
    size_t hw = (size_t)s->height * s->width;
    cx_tensor *img = cx_empty(CX_F32, CX_SHAPE(n, 1, s->height, s->width));
    cx_tensor *in = cx_empty(CX_I32, CX_SHAPE(T, n)), *tg = cx_empty(CX_I32, CX_SHAPE(T, n));
    for (int b = 0; b < n; b++) {
        memcpy(CX_F(img) + (size_t)b * hw, CX_F(s->images) + (size_t)idx[b] * hw, hw * sizeof(float));
        const int32_t *c = cap + (size_t)rows[b] * s->max_len;
        for (int t = 0; t < T; t++) {
            CX_I32P(in)[(size_t)t * n + b] = t < lens[b] ? c[t] : CX_CAP_PAD;
            CX_I32P(tg)[(size_t)t * n + b] = t < lens[b] ? c[t + 1] : CX_CAP_PAD;
        }
    }
    out->n = n;
    out->steps = T;
    out->images = img;
    out->input = in;
    out->target = tg;
    out->lengths = lens;
    out->caption = rows;
    return CX_OK;
}

/* ---------------------------------------------------------------- BLEU on a set */
cx_status cx_caption_bleu(const cx_caption_set *s, const cx_token_seq *cands, cx_bleu_result *out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_caption_bleu: out is NULL");
    memset(out, 0, sizeof *out);
    if (!s || !cands) return cx_set_error(CX_ERR_ARG, "cx_caption_bleu: NULL argument");
    int M = s->n_captions;
    cx_token_seq *refs = cx_xmalloc((size_t)(M ? M : 1) * sizeof *refs);
    for (int j = 0; j < M; j++)
        refs[j] = (cx_token_seq){CX_I32P(s->captions) + (size_t)j * s->max_len, CX_I32P(s->caption_len)[j]};
    cx_bleu_opts o = cx_bleu_defaults();
    o.start_id = CX_CAP_START;
    o.pad_id = CX_CAP_PAD;
    o.end_id = CX_CAP_END;
    cx_status st = cx_bleu(cands, s->n, refs, CX_I32P(s->ref_start), &o, out);
    free(refs);
    return st;
}

/* ---------------------------------------------------------------- pictures */
#define ZOOM 3
#define LINE_H 10

/* Word-wrap `text` into lines of at most `cols` characters (at spaces);
 * writes at most max_lines lines into lines[] (each up to 127 chars) and
 * returns the number of lines. */
static int wrap(const char *text, int cols, char lines[][128], int max_lines) {
    int n = 0;
    const char *p = text;
    while (*p && n < max_lines) {
        int len = (int)strlen(p), take = len <= cols ? len : cols;
        if (take < len) { /* break at the last space that fits */
            int b = take;
            while (b > 0 && p[b] != ' ') b--;
            if (b > 0) take = b;
        }
        if (take > 127) take = 127;
        memcpy(lines[n], p, (size_t)take);
        lines[n][take] = 0;
        n++;
        p += take;
        while (*p == ' ') p++;
    }
    return n;
}

cx_status cx_caption_png(const cx_caption_set *s, const int *idx, int n, const cx_token_seq *preds, int cols,
                         const char *path) {
    if (!s || !idx || !path) return cx_set_error(CX_ERR_ARG, "cx_caption_png: NULL argument");
    if (n < 1) return cx_set_error(CX_ERR_ARG, "%s: cx_caption_png: %d canvases", path, n);
    for (int j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= s->n)
            return cx_set_error(CX_ERR_ARG, "%s: cx_caption_png: canvas %d out of range (0..%d)", path, idx[j], s->n - 1);
    if (cols <= 0) cols = 4;
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int iw = s->width * ZOOM, ih = s->height * ZOOM;
    int cw = iw > 264 ? iw : 264, chars = (cw - 8) / 6, pad = 8;
    enum { MAXL = 24 };
    char lines[MAXL][128], text[256];
    int most = 0; /* lines under the tallest cell */
    for (int j = 0; j < n; j++) {
        const int32_t *rs = CX_I32P(s->ref_start);
        int k = 0;
        for (int r = rs[idx[j]]; r < rs[idx[j] + 1]; r++) {
            cx_caption_decode(s, CX_I32P(s->captions) + (size_t)r * s->max_len, s->max_len, text, sizeof text);
            k += wrap(text, chars, lines, MAXL);
        }
        if (preds) {
            cx_caption_decode(s, preds[j].ids, preds[j].len, text, sizeof text);
            k += wrap(text[0] ? text : "(empty)", chars, lines, MAXL);
        }
        if (k > most) most = k;
    }
    int ch = ih + 6 + most * LINE_H + 6;
    int W = pad + cols * (cw + pad), H = pad + rows * (ch + pad);
    uint8_t *px = malloc((size_t)W * (size_t)H * 3);
    if (!px) return cx_set_error(CX_ERR_NOMEM, "%s: cx_caption_png: out of memory for %dx%d", path, W, H);
    memset(px, 255, (size_t)W * (size_t)H * 3);
    static const uint8_t black[3] = {0, 0, 0}, grey[3] = {120, 120, 120}, green[3] = {0, 140, 0},
                         red[3] = {200, 0, 0};
    for (int j = 0; j < n; j++) {
        int x0 = pad + (j % cols) * (cw + pad), y0 = pad + (j / cols) * (ch + pad);
        const float *img = CX_F(s->images) + (size_t)idx[j] * s->height * s->width;
        for (int y = 0; y < ih; y++)
            for (int x = 0; x < iw; x++) {
                float v = img[(size_t)(y / ZOOM) * s->width + x / ZOOM];
                uint8_t g = (uint8_t)lrintf(255.0f * (v > 0 ? (v < 1 ? v : 1) : 0));
                uint8_t *p = px + ((size_t)(y0 + y) * W + (size_t)(x0 + x)) * 3;
                p[0] = p[1] = p[2] = g;
            }
        int ty = y0 + ih + 6;
        const int32_t *rs = CX_I32P(s->ref_start);
        for (int r = rs[idx[j]]; r < rs[idx[j] + 1]; r++) {
            cx_caption_decode(s, CX_I32P(s->captions) + (size_t)r * s->max_len, s->max_len, text, sizeof text);
            int k = wrap(text, chars, lines, MAXL);
            for (int l = 0; l < k; l++, ty += LINE_H)
                cx_text_draw_rgb(px, W, H, x0 + (l ? 12 : 0), ty, lines[l], 1, r == rs[idx[j]] ? black : grey);
        }
        if (preds) {
            bool hit = false;
            cx_bleu_result b;
            int one[2] = {0, rs[idx[j] + 1] - rs[idx[j]]};
            cx_token_seq refs[MAXR];
            for (int r = 0; r < one[1]; r++)
                refs[r] = (cx_token_seq){CX_I32P(s->captions) + (size_t)(rs[idx[j]] + r) * s->max_len,
                                         CX_I32P(s->caption_len)[rs[idx[j]] + r]};
            cx_bleu_opts o = cx_bleu_defaults();
            o.start_id = CX_CAP_START;
            o.pad_id = CX_CAP_PAD;
            o.end_id = CX_CAP_END;
            o.n_max = 1;
            if (cx_bleu(&preds[j], 1, refs, one, &o, &b) == CX_OK) hit = b.n_exact == 1;
            cx_caption_decode(s, preds[j].ids, preds[j].len, text, sizeof text);
            int k = wrap(text[0] ? text : "(empty)", chars, lines, MAXL);
            for (int l = 0; l < k; l++, ty += LINE_H)
                cx_text_draw_rgb(px, W, H, x0 + (l ? 12 : 0), ty, lines[l], 1, hit ? green : red);
        }
    }
    cx_status st = cx_png_write_rgb(path, px, W, H);
    free(px);
    return st;
}
