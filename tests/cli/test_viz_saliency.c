/* cortex viz saliency / gradcam / patches / itti, driven as a subprocess
 * (path in $CORTEX_BIN) on a LeNet trained briefly in the test and the
 * Fashion-MNIST subset: valid PNGs of the documented layout, one-line
 * errors for bad input. The computations are tested in tests/nn/test_saliency.c. */
#include <string.h>

#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"

static bool png_size(const char *path, int *w, int *h, int *color_type) {
    unsigned char b[33];
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    if (n != sizeof b || memcmp(b, sig, 8) || memcmp(b + 12, "IHDR", 4)) return false;
    *w = (int)((unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19]);
    *h = (int)((unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23]);
    *color_type = b[25];
    return b[24] == 8;
}

/* an RGB PNG at least min_w x min_h (panels of 28 * 8 pixels, titles) */
static void expect_png(const char *path, int min_w, int min_h, const char *what) {
    int w = 0, h = 0, ct = -1;
    CHECK_MSG(png_size(path, &w, &h, &ct), "%s: %s is not a readable 8-bit PNG", what, path);
    CHECK_MSG(w >= min_w && h >= min_h && ct == 2, "%s: %dx%d colour type %d, expected at least %dx%d RGB", what, w, h,
              ct, min_w, min_h);
    remove(path);
}

static char model[512];

static void test_help(void) {
    static run_result r;
    const char *subs[4] = {"saliency", "gradcam", "patches", "itti"};
    run(&r, "viz --help");
    for (int i = 0; i < 4; i++) CHECK_MSG(strstr(r.out, subs[i]), "viz --help lacks %s", subs[i]);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: cortex viz %s", subs[i]);
        run(&r, "viz %s --help", subs[i]);
        CHECK_MSG(r.code == 0 && strstr(r.out, want), "viz %s --help: exit %d", subs[i], r.code);
    }
}

static void test_pictures(void) {
    static run_result r;
    char out[512];
    tmp_path(out, sizeof out, "pic.png");
    run(&r, "viz saliency '%s' --data " DATA_DIR " --index 3 --out '%s'", model, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "image 3"), "saliency: exit %d: %s", r.code, r.err);
    expect_png(out, 12 + 2 * (224 + 12), 20 + 224, "saliency");
    run(&r, "viz saliency '%s' --data " DATA_DIR " --class 2 --out '%s'", model, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "class 2 (pullover)"), "saliency --class: %s %s", r.out, r.err);
    expect_png(out, 12 + 2 * (224 + 12), 20 + 224, "saliency class 2");
    run(&r, "viz gradcam '%s' --data " DATA_DIR " --index 5 --out '%s'", model, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "gradcam: image 5"), "gradcam: exit %d: %s", r.code, r.err);
    expect_png(out, 12 + 3 * (224 + 12), 20 + 224, "gradcam");
    run(&r, "viz gradcam '%s' --data " DATA_DIR " --layer conv1 --out '%s'", model, out);
    CHECK_MSG(r.code == 0, "gradcam conv1: exit %d: %s", r.code, r.err);
    expect_png(out, 12 + 3 * (224 + 12), 20 + 224, "gradcam conv1");
    run(&r, "viz patches '%s' --data " DATA_DIR " --units 4 --top 5 --out '%s'", model, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "conv2: 4 units x top 5") && strstr(r.out, "receptive field 14x14"),
              "patches: exit %d: %s %s", r.code, r.out, r.err);
    expect_png(out, 5 * (14 * 4 + 4), 4 * (14 * 4 + 4), "patches");
    run(&r, "viz patches '%s' --data " DATA_DIR " --layer conv1 --units 6 --top 3 --out '%s'", model, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "receptive field 5x5"), "patches conv1: %s %s", r.out, r.err);
    expect_png(out, 3 * (5 * 12 + 4), 6 * (5 * 12 + 4), "patches conv1");
    run(&r, "viz itti --data " DATA_DIR " --index 2 --out '%s'", out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "saliency maximum at"), "itti: exit %d: %s", r.code, r.err);
    expect_png(out, 12 + 4 * (224 + 12), 20 + 224, "itti");
    /* a colour PNG: the visual-search array of tools/make_popout_png.py (40-pixel
     * cells); the saliency maximum must fall in the cell of the odd-orientation
     * bar (grid row 4, column 1), and the picture gets a colour panel */
    run(&r, "viz itti data/images/popout.png --out '%s'", out);
    CHECK_MSG(r.code == 0, "itti png: exit %d: %s", r.code, r.err);
    int row = -1, col = -1;
    const char *at = strstr(r.out, "saliency maximum at row ");
    CHECK(at && sscanf(at, "saliency maximum at row %d column %d", &row, &col) == 2);
    CHECK_MSG(row / 40 == 4 && col / 40 == 1, "itti png: maximum at row %d column %d, not in the odd bar's cell", row, col);
    expect_png(out, 12 + 5 * (224 + 12), 20 + 224, "itti png");
}

static void test_errors(void) {
    static run_result r;
    char out[512];
    tmp_path(out, sizeof out, "err.png");
    run(&r, "viz gradcam '%s' --data " DATA_DIR " --layer conv9 --out '%s'", model, out);
    EXPECT_ERR(&r, "missing layer", "conv9", "conv1, conv2");
    run(&r, "viz gradcam '%s' --data " DATA_DIR " --layer fc1 --out '%s'", model, out);
    EXPECT_ERR(&r, "not a conv layer", "fc1", "not a 2-D convolution");
    run(&r, "viz patches '%s' --data " DATA_DIR " --layer fc2 --out '%s'", model, out);
    EXPECT_ERR(&r, "patches: not a conv layer", "fc2", "not a 2-D convolution");
    run(&r, "viz patches '%s' --data " DATA_DIR " --units 17 --out '%s'", model, out);
    EXPECT_ERR(&r, "too many units", "--units 17", "16 channels");
    run(&r, "viz saliency '%s' --data " DATA_DIR " --index 100000 --out '%s'", model, out);
    EXPECT_ERR(&r, "index out of range", "--index 100000", "1000");
    run(&r, "viz itti --data " DATA_DIR " --index 5000 --out '%s'", out);
    EXPECT_ERR(&r, "itti index out of range", "--index 5000");
    run(&r, "viz saliency '%s' --data " DATA_DIR " --class 10 --out '%s'", model, out);
    EXPECT_ERR(&r, "class out of range", "class 10", "10 classes");
    run(&r, "viz gradcam '%s' --out '%s'", model, out);
    EXPECT_ERR(&r, "no --data", "--data");
    run(&r, "viz itti --out '%s'", out);
    EXPECT_ERR(&r, "itti without data", "--data");
    run(&r, "viz itti data/text/README.md --out '%s'", out);
    EXPECT_ERR(&r, "itti on a text file", "README.md", "not a PNG");
    run(&r, "viz itti data/images/popout.png --data " DATA_DIR " --out '%s'", out);
    EXPECT_ERR(&r, "itti with both inputs", "either an IMAGE.png or --data");
    CHECK_MSG(access(out, F_OK) != 0, "a failed run wrote %s", out);
}

int main(void) {
    cli_err_prefix = "cortex viz";
    if (!cli_setup("test_viz_saliency")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    tmp_path(model, sizeof model, "lenet.safetensors");
    static run_result r;
    run(&r, "train --data " DATA_DIR " --model models/lenet5.net --epochs 1 --limit 300 --val 0 --quiet --out '%s' "
            "--metrics '%s/m.csv'", model, tmpdir);
    CHECK_MSG(r.code == 0, "train: exit %d: %s", r.code, r.err);
    RUN(test_help);
    RUN(test_pictures);
    RUN(test_errors);
    cli_teardown();
    TEST_END();
}
