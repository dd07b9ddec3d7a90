/* cortex caption -- captioned-canvas data sets (cortex/caption.h):
 *   gen   make a set from the train or t10k images of an IDX directory
 *   show  check a saved set, print its captions, optionally draw a PNG */
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_caption(int argc, char **argv);

/* Print canvas i: its items and references. */
static void print_canvas(const cx_caption_set *s, int i) {
    char text[160];
    const int32_t *rs = CX_I32P(s->ref_start);
    for (int r = rs[i]; r < rs[i + 1]; r++) {
        cx_caption_decode(s, CX_I32P(s->captions) + (size_t)r * s->max_len, s->max_len, text, sizeof text);
        if (r == rs[i]) printf("%6d  %s\n", i, text);
        else printf("        %s\n", text);
    }
}

static void print_summary(const cx_caption_set *s) {
    int per[4] = {0}, multi = 0;
    for (int i = 0; i < s->n; i++) {
        per[CX_I32P(s->n_items)[i]]++;
        multi += CX_I32P(s->ref_start)[i + 1] - CX_I32P(s->ref_start)[i] > 1;
    }
    printf("%d canvases %dx%d (split '%s', seed %llu, %s), %d captions, vocabulary %d words\n"
           "items per canvas: 1: %d, 2: %d, 3: %d; canvases with several references: %d\n",
           s->n, s->height, s->width, s->split, (unsigned long long)s->seed, s->recipe, s->n_captions, s->vocab_size,
           per[1], per[2], per[3], multi);
}

static int draw(const cx_caption_set *s, const char *png, int show) {
    int n = show < s->n ? show : s->n;
    if (n < 1) n = s->n < 8 ? s->n : 8;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx) return 1;
    for (int i = 0; i < n; i++) idx[i] = i;
    cx_status st = cx_caption_png(s, idx, n, NULL, 4, png);
    free(idx);
    if (st) {
        fprintf(stderr, "cortex caption: %s\n", cx_last_error());
        return 1;
    }
    printf("wrote %s (canvases 0..%d)\n", png, n - 1);
    return 0;
}

static int caption_gen(int argc, char **argv) {
    cli_flag f[] = {
        {"data", "directory of IDX files (e.g. /usr/share/datasets/fashion-mnist)", false, NULL},
        {"split", "which images: train or t10k (canvases use that file's images only)", false, "train"},
        {"range", "use only images A..B-1 of the split, as A:B (disjoint ranges for train / validation)", false, NULL},
        {"n", "number of canvases", false, NULL},
        {"seed", "random seed (same data, seed and options: same set)", false, "1"},
        {"out", "output safetensors file", false, NULL},
        {"height", "canvas height", false, "64"},
        {"width", "canvas width", false, "64"},
        {"min-items", "fewest items per canvas", false, "1"},
        {"max-items", "most items per canvas (at most 3)", false, "3"},
        {"min-size", "smallest item side in pixels (28: unscaled)", false, "28"},
        {"max-size", "largest item side in pixels", false, "28"},
        {"gap", "empty pixels between items", false, "2"},
        {"repeat", "probability that an item repeats an earlier item's class", false, "0.25"},
        {"classes", "label names: fashion or digits", false, "fashion"},
        {"png", "also draw the first canvases with their captions into this PNG", false, NULL},
        {"show", "canvases to print (and draw)", false, "8"},
    };
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse("caption gen", argc, argv, f, nf, pos, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage("caption gen", "--data DIR --n N --out FILE [options]",
                  "Make a captioned-canvas set: canvases holding 1-3 images of one split of an IDX data set\n"
                  "at random non-overlapping positions, with every true caption of the grammar in\n"
                  "include/cortex/caption.h ('a sneaker left of a bag', 'a shirt above two trousers').\n"
                  "Make training sets from --split train and test sets from --split t10k.",
                  f, nf);
        return 0;
    }
    const char *data = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out"), *split = cli_get(f, nf, "split");
    if (!data || !out || !cli_get(f, nf, "n")) {
        fprintf(stderr, "cortex caption gen: --data, --n and --out are required (see 'cortex caption gen --help')\n");
        return 2;
    }
    if (strcmp(split, "train") && strcmp(split, "t10k")) {
        fprintf(stderr, "cortex caption gen: --split must be train or t10k, not '%s'\n", split);
        return 2;
    }
    cx_caption_opts o = cx_caption_defaults();
    int n, show;
    double repeat;
    const char *cls = cli_get(f, nf, "classes");
    const char *seed_s = cli_get(f, nf, "seed");
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(seed_s, &end, 10);
    if (errno || end == seed_s || *end || seed_s[0] == '-') {
        fprintf(stderr, "cortex caption gen: --seed must be a whole number in [0, 2^64), got '%s'\n", seed_s);
        return 2;
    }
    if (!cli_int("caption gen", f, nf, "n", 1, 10000000, &n) ||
        !cli_int("caption gen", f, nf, "height", 1, 4096, &o.height) ||
        !cli_int("caption gen", f, nf, "width", 1, 4096, &o.width) ||
        !cli_int("caption gen", f, nf, "min-items", 1, 3, &o.min_items) ||
        !cli_int("caption gen", f, nf, "max-items", 1, 3, &o.max_items) ||
        !cli_int("caption gen", f, nf, "min-size", 1, 4096, &o.min_size) ||
        !cli_int("caption gen", f, nf, "max-size", 1, 4096, &o.max_size) ||
        !cli_int("caption gen", f, nf, "gap", 0, 4096, &o.gap) ||
        !cli_double("caption gen", f, nf, "repeat", 0, 1, &repeat) ||
        !cli_int("caption gen", f, nf, "show", 0, 1000, &show))
        return 2;
    o.repeat_prob = (float)repeat;
    if (!strcmp(cls, "digits")) o.classes = CX_CAPTION_DIGITS;
    else if (strcmp(cls, "fashion")) {
        fprintf(stderr, "cortex caption gen: --classes must be fashion or digits, not '%s'\n", cls);
        return 2;
    }
    o.split = split;
    char img[1024], lab[1024];
    if (!cli_find_idx(data, split, img, lab, sizeof img)) {
        fprintf(stderr, "cortex caption gen: no data: %s not found\n", img);
        return 1;
    }
    cx_dataset d;
    if (cx_dataset_load_idx(img, lab, 0, &d)) {
        fprintf(stderr, "cortex caption gen: %s\n", cx_last_error());
        return 1;
    }
    int N = cx_dataset_len(&d), *pool = NULL;
    const char *range = cli_get(f, nf, "range");
    if (range) {
        long a = strtol(range, &end, 10), b = -1;
        if (*end == ':') b = strtol(end + 1, &end, 10);
        if (*end || a < 0 || b <= a || b > N) {
            fprintf(stderr, "cortex caption gen: --range '%s' must be A:B with 0 <= A < B <= %d\n", range, N);
            cx_dataset_free(&d);
            return 2;
        }
        pool = malloc((size_t)(b - a) * sizeof *pool);
        if (!pool) {
            cx_dataset_free(&d);
            return 1;
        }
        for (long i = a; i < b; i++) pool[i - a] = (int)i;
        o.pool = pool;
        o.n_pool = (int)(b - a);
    }
    cx_caption_set *s = NULL;
    cx_status st = cx_caption_generate(&d, n, (uint64_t)seed, &o, &s);
    free(pool);
    cx_dataset_free(&d);
    if (!st) st = cx_caption_save(s, out);
    if (st) {
        fprintf(stderr, "cortex caption gen: %s\n", cx_last_error());
        cx_caption_set_free(s);
        return 1;
    }
    printf("wrote %s: ", out);
    print_summary(s);
    for (int i = 0; i < show && i < s->n; i++) print_canvas(s, i);
    int rc = cli_get(f, nf, "png") ? draw(s, cli_get(f, nf, "png"), show) : 0;
    cx_caption_set_free(s);
    return rc;
}

static int caption_show(int argc, char **argv) {
    cli_flag f[] = {
        {"first", "first canvas to print", false, "0"},
        {"count", "canvases to print (and draw)", false, "8"},
        {"png", "draw canvases 0..count-1 with their captions into this PNG", false, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos, first, count;
    const char *pos[1];
    bool help;
    if (cli_parse("caption show", argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help || npos != 1) {
        if (!help) fprintf(stderr, "cortex caption show: expected one caption set (see 'cortex caption show --help')\n");
        else
            cli_usage("caption show", "FILE [options]",
                      "Load a set written by 'cortex caption gen' (every check of cx_caption_load), print\n"
                      "a summary and the captions of some canvases, optionally draw them.",
                      f, nf);
        return help ? 0 : 2;
    }
    if (!cli_int("caption show", f, nf, "first", 0, 1 << 30, &first) ||
        !cli_int("caption show", f, nf, "count", 0, 1 << 30, &count))
        return 2;
    cx_caption_set *s = NULL;
    if (cx_caption_load(pos[0], &s)) {
        fprintf(stderr, "cortex caption show: %s\n", cx_last_error());
        return 1;
    }
    printf("%s: ", pos[0]);
    print_summary(s);
    for (int i = first; i < first + count && i < s->n; i++) print_canvas(s, i);
    int rc = cli_get(f, nf, "png") ? draw(s, cli_get(f, nf, "png"), count) : 0;
    cx_caption_set_free(s);
    return rc;
}

int cmd_caption(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "gen")) return caption_gen(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "show")) return caption_show(argc - 1, argv + 1);
    FILE *o = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) ? stdout : stderr;
    fprintf(o, "usage: cortex caption gen --data DIR --n N --out FILE [options]\n"
               "       cortex caption show FILE [--count K] [--png OUT.png]\n"
               "'cortex caption gen --help' and 'cortex caption show --help' list the options.\n");
    return o == stdout ? 0 : 2;
}
