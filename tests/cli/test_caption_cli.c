/* cortex caption gen / show, driven as a subprocess (path in $CORTEX_BIN) on
 * the shipped Fashion-MNIST subset: the same seed gives the same file byte
 * for byte, --range restricts the images, show reloads and checks, the PNG
 * is written, and bad input gives one-line errors. */
#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"

static bool same_file(const char *a, const char *b) {
    void *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    bool same = cx_read_file(a, &x, &nx, 0) == CX_OK && cx_read_file(b, &y, &ny, 0) == CX_OK && nx == ny &&
                !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

static void test_gen_show(void) {
    char a[512], b[512], c[512], png[512];
    tmp_path(a, sizeof a, "a.safetensors");
    tmp_path(b, sizeof b, "b.safetensors");
    tmp_path(c, sizeof c, "c.safetensors");
    tmp_path(png, sizeof png, "a.png");
    run_result r;
    run(&r, "gen --data %s --n 60 --seed 5 --out %s --show 3 --png %s", DATA_DIR, a, png);
    CHECK_MSG(r.code == 0, "gen: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "60 canvases 64x64 (split 'train', seed 5") != NULL);
    CHECK(strstr(r.out, "pool=6000") && strstr(r.out, "\n     0  ") && strstr(r.out, "wrote") != NULL);
    struct stat st;
    CHECK(stat(png, &st) == 0 && st.st_size > 1000);
    run(&r, "gen --data %s --n 60 --seed 5 --out %s --show 0", DATA_DIR, b);
    CHECK(r.code == 0 && same_file(a, b));
    /* test images, a range of them, scaled items */
    run(&r, "gen --data %s --split t10k --range 500:1000 --n 40 --seed 6 --min-size 20 --out %s", DATA_DIR, c);
    CHECK_MSG(r.code == 0, "gen t10k: %s", r.err);
    cx_caption_set *s = NULL;
    CHECK(cx_caption_load(c, &s) == CX_OK && s);
    if (s) {
        CHECK(s->n == 40 && !strcmp(s->split, "t10k") && s->seed == 6 && strstr(s->recipe, "pool=500"));
        int outside = 0;
        for (int i = 0; i < s->n * 3; i++) {
            int src = CX_I32P(s->item_src)[i];
            outside += src != -1 && (src < 500 || src >= 1000);
        }
        CHECK(outside == 0);
        cx_caption_set_free(s);
    }
    run(&r, "show %s --first 10 --count 4", a);
    CHECK_MSG(r.code == 0, "show: %s", r.err);
    CHECK(strstr(r.out, "60 canvases") && strstr(r.out, "    10  ") && strstr(r.out, "    13  ") && !strstr(r.out, "    14  "));
    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "cortex caption gen"));
    run(&r, "gen --help");
    CHECK(r.code == 0 && strstr(r.out, "--range"));
}

static void test_errors(void) {
    char out[512], bad[512];
    tmp_path(out, sizeof out, "e.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    run_result r;
    run(&r, "gen --data %s --n 5", DATA_DIR);
    EXPECT_ERR(&r, "no --out", "--out are required");
    run(&r, "gen --data %s --n 0 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "n = 0", "--n must be an integer");
    run(&r, "gen --data %s/nowhere --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "no data", "no data", "nowhere");
    run(&r, "gen --data %s --split test --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "split", "--split must be train or t10k");
    run(&r, "gen --data %s --range 10:5 --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "range", "--range '10:5'");
    run(&r, "gen --data %s --range 0:6001 --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "range past the end", "0 <= A < B <= 6000");
    run(&r, "gen --data %s --height 50 --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "small canvas", "too small");
    run(&r, "gen --data %s --seed -1 --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "seed", "--seed");
    run(&r, "gen --data %s --classes cifar --n 5 --out %s", DATA_DIR, out);
    EXPECT_ERR(&r, "classes", "--classes");
    CHECK(access(out, F_OK) != 0);
    FILE *f = fopen(bad, "wb");
    if (f) {
        fputs("not a safetensors file", f);
        fclose(f);
    }
    run(&r, "show %s", bad);
    EXPECT_ERR(&r, "corrupt set", "bad.safetensors");
    run(&r, "show");
    EXPECT_ERR(&r, "no file", "expected one caption set");
}

int main(void) {
    cli_prefix = "caption ";
    cli_err_prefix = "cortex caption";
    if (!cli_setup("test_caption_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_gen_show);
    RUN(test_errors);
    cli_teardown();
    TEST_END();
}
