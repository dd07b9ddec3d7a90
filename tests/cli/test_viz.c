/* cortex viz, driven as a subprocess (path in $CORTEX_BIN): filters of
 * models/lenet5.net and of a briefly trained model, feature maps of a test
 * image of the Fashion-MNIST subset, training curves from a CSV, one-line
 * errors for bad input. The PNG sizes follow the layouts documented in the
 * --help texts. Also cx_net_forward_all (every layer's output) directly. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}


/* Width, height and colour type of a PNG from its signature and IHDR chunk. */
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
    return b[24] == 8; /* bit depth */
}

static void expect_png(const char *path, int want_w, int want_h, const char *what) {
    int w = 0, h = 0, ct = -1;
    CHECK_MSG(png_size(path, &w, &h, &ct), "%s: %s is not a readable 8-bit PNG", what, path);
    CHECK_MSG(w == want_w && h == want_h, "%s: %dx%d, expected %dx%d", what, w, h, want_w, want_h);
    CHECK_MSG(ct == 2, "%s: colour type %d, expected 2 (RGB)", what, ct);
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------------------------------------------------------- help */
static void test_help(void) {
    static run_result r;
    run(&r, "viz --help");
    CHECK_MSG(r.code == 0, "viz --help: exit %d", r.code);
    CHECK(strstr(r.out, "usage: cortex viz") && strstr(r.out, "filters") && strstr(r.out, "maps") &&
          strstr(r.out, "curves"));
    const char *subs[3] = {"filters", "maps", "curves"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: cortex viz %s", subs[i]);
        run(&r, "viz %s --help", subs[i]);
        CHECK_MSG(r.code == 0 && strstr(r.out, want) && r.err[0] == 0, "viz %s --help: exit %d, out '%s'", subs[i],
                  r.code, r.out);
    }
    run(&r, "viz filters --help");
    CHECK(strstr(r.out, "--layer") && strstr(r.out, "--out") && strstr(r.out, "--scale"));
    run(&r, "viz maps --help");
    CHECK(strstr(r.out, "--data") && strstr(r.out, "--index"));
    run(&r, "viz");
    CHECK(r.code == 2 && strstr(r.err, "usage: cortex viz"));
}

/* ---------------------------------------------------------------- filters */
/* The picture's size: the bare grid of tiles (tw x th pixels each, `cols` x
 * `rows` of them, 6 pixels apart) grows by the labels around it: a title of
 * `title_chars` characters at font scale 2 (12 pixels each) that fits, a
 * subtitle, filter / channel numbers, and a colour scale on the right. */
static void expect_labelled(const char *path, int cols, int rows, int tw, int th, int title_chars, bool matrix,
                            const char *what) {
    int w = 0, h = 0, ct = -1;
    CHECK_MSG(png_size(path, &w, &h, &ct), "%s: %s is not a readable 8-bit PNG", what, path);
    int num_h = 7 * (tw >= 24 ? 2 : 1) + 3; /* numbers above the tiles (of each row of a grid) */
    int gw = cols * (tw + 6) - 6, gh = rows * (th + 6 + (matrix ? 0 : num_h)) - 6;
    /* margins, title, subtitle, the "weight" line, a matrix's column numbers,
     * then the grid or the colour scale (at least 180 pixels) */
    int want_h = 12 + 14 + 6 + 7 + 8 + 14 + 4 + (matrix ? num_h : 0) + (gh > 180 ? gh : 180) + 12;
    CHECK_MSG(h == want_h, "%s: height %d, expected %d (grid %d + labels)", what, h, want_h, gh);
    CHECK_MSG(w >= 12 + 12 * title_chars - 2 + 12, "%s: width %d does not hold the title", what, w);
    CHECK_MSG(w >= 12 + gw + 24 + 14 + 4 + 6 + 12, "%s: width %d does not hold the grid (%d) and the colour scale",
              what, w, gw);
    CHECK_MSG(ct == 2, "%s: colour type %d, expected 2 (RGB)", what, ct);
}

static void test_filters(void) {
    static run_result r;
    char out[512];
    tmp_path(out, sizeof out, "filters.png");
    /* conv1: 6 filters [1, 5, 5] -> 3 x 2 grid of 40x40 tiles */
    run(&r, "viz filters models/lenet5.net --out '%s'", out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "conv1") != NULL);
    expect_labelled(out, 3, 2, 40, 40, (int)strlen("conv1: Conv2d(1 -> 6, k=5x5, s=1, p=2)"), false, "lenet5 conv1");
    int w = 0, h = 0, ct;
    CHECK(png_size(out, &w, &h, &ct));
    CHECK_MSG(w > 3 * (5 * 8 + 1) + 1 + 300 && h > 2 * (5 * 8 + 1) + 1 + 100,
              "conv1: %dx%d, no bigger than the bare 124x83 tiles", w, h);
    /* conv2: 16 filters [6, 5, 5] -> one row per filter, 6 channels side by side; scale 3 */
    run(&r, "viz filters models/lenet5.net --layer conv2 --scale 3 --out '%s'", out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    expect_labelled(out, 6, 16, 15, 15, (int)strlen("conv2: Conv2d(6 -> 16, k=5x5, s=1, p=0)"), true, "lenet5 conv2");
    /* 3 input channels: one RGB tile per filter, 10 filters -> 4 x 3 grid */
    char net[512];
    tmp_path(net, sizeof net, "rgb.net");
    write_text(net, "input 3 16 16\nconv2d name=c out=10 k=3\nrelu\nflatten\nlinear out=4\n");
    run(&r, "viz filters '%s' --out '%s'", net, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    expect_labelled(out, 4, 3, 24, 24, (int)strlen("c: Conv2d(3 -> 10, k=3x3, s=1, p=0)"), false, "rgb filters");
    /* 1-D kernels: strips one weight high */
    tmp_path(net, sizeof net, "c1d.net");
    write_text(net, "input 2 30\nconv1d out=4 k=7\n");
    run(&r, "viz filters '%s' --out '%s'", net, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    expect_labelled(out, 2, 4, 56, 8, (int)strlen("conv1: Conv1d(2 -> 4, k=7, s=1, p=0)"), true, "conv1d filters");
}

static void test_filters_errors(void) {
    static run_result r;
    char out[512], net[512];
    tmp_path(out, sizeof out, "err.png");
    run(&r, "viz filters models/lenet5.net --layer conv9 --out '%s'", out);
    EXPECT_ERR(&r, "missing layer", "conv9", "conv1, conv2");
    run(&r, "viz filters models/lenet5.net --layer fc1 --out '%s'", out);
    EXPECT_ERR(&r, "not a conv layer", "fc1", "not a convolution");
    tmp_path(net, sizeof net, "mlp.net");
    write_text(net, "input 784\nlinear out=32\nrelu\nlinear out=10\n");
    run(&r, "viz filters '%s' --out '%s'", net, out);
    EXPECT_ERR(&r, "no conv layer", "no convolution layer");
    run(&r, "viz filters '%s/none.net' --out '%s'", tmpdir, out);
    EXPECT_ERR(&r, "missing model", "none.net");
    run(&r, "viz filters models/lenet5.net --scale 0 --out '%s'", out);
    EXPECT_ERR(&r, "bad scale", "--scale");
    run(&r, "viz filters");
    EXPECT_ERR(&r, "no model", "MODEL");
    run(&r, "viz filters models/lenet5.net --out '%s/no/dir/f.png'", tmpdir);
    EXPECT_ERR(&r, "unwritable out", "f.png");
    run(&r, "viz sketch x");
    EXPECT_ERR(&r, "unknown picture", "sketch");
    CHECK_MSG(!exists(out), "a failed run wrote %s", out);
}

/* ---------------------------------------------------------------- maps */
static void test_maps(void) {
    static run_result r;
    char out[512];
    tmp_path(out, sizeof out, "maps.png");
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --index 7 --out '%s'", out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    /* the data directory is Fashion-MNIST's: class names (image 7 is a shirt) */
    CHECK_MSG(strstr(r.out, "conv1 6x28x28") && strstr(r.out, "conv2 16x10x10") && strstr(r.out, "image 7") &&
                  strstr(r.out, "label 6 (shirt), predicted "),
              "stdout: %s", r.out);
    /* layout: 10-pixel margins and gaps, a title line at font scale 2 (14
     * pixels high), a label column as wide as "conv1" at font scale 2
     * (5 * 12 - 2), rows: input 1 tile of 28 * 2, conv1 6 tiles of 28 * 2,
     * conv2 16 tiles of 10 * 6 (each plus 1-pixel gaps) */
    int label = 5 * 12 - 2, wide = 16 * (10 * 6 + 1) + 1;
    int h = 10 + 14 + 10 + (28 * 2 + 2 + 10) * 2 + (10 * 6 + 2 + 10);
    expect_png(out, 10 + label + 10 + wide + 10, h, "lenet5 maps");
    /* more channels than --cols wrap onto further lines */
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --cols 4 --out '%s'", out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    int h4 = 10 + 14 + 10 + (28 * 2 + 2 + 10) + (2 * (28 * 2 + 1) + 1 + 10) + (4 * (10 * 6 + 1) + 1 + 10);
    /* the title line ("test image 0: label 9 (ankle boot), predicted ...") is wider than the tiles */
    int w4 = 10 + label + 10 + 4 * (10 * 6 + 1) + 1 + 10;
    int w = 0, hh = 0, ct = 0;
    CHECK(png_size(out, &w, &hh, &ct) && hh == h4 && w >= w4 && w >= 10 + 12 * 30);
    CHECK_MSG(strstr(r.out, "label 9 (ankle boot)"), "stdout: %s", r.out);
    /* names off, or from a file */
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --classes none --out '%s'", out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "(label 9, predicted ") && !strstr(r.out, "ankle"), "stdout: %s", r.out);
    char names[512];
    tmp_path(names, sizeof names, "names.txt");
    write_text(names, "c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nboot\n");
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --classes '%s' --out '%s'", names, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "label 9 (boot)"), "stdout: %s %s", r.out, r.err);
    write_text(names, "a\nb\n");
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --classes '%s' --out '%s'", names, out);
    EXPECT_ERR(&r, "too few names", "names 2 classes", "10");
}

static void test_maps_errors(void) {
    static run_result r;
    char out[512], net[512];
    tmp_path(out, sizeof out, "merr.png");
    run(&r, "viz maps models/lenet5.net --data " DATA_DIR " --index 100000 --out '%s'", out);
    EXPECT_ERR(&r, "index out of range", "--index 100000", "1000");
    run(&r, "viz maps models/lenet5.net --out '%s'", out);
    EXPECT_ERR(&r, "no --data", "--data");
    run(&r, "viz maps models/lenet5.net --data '%s' --out '%s'", tmpdir, out);
    EXPECT_ERR(&r, "no test images", "t10k-images");
    tmp_path(net, sizeof net, "mlp2.net");
    write_text(net, "input 1 28 28\nflatten\nlinear out=10\n");
    run(&r, "viz maps '%s' --data " DATA_DIR " --out '%s'", net, out);
    EXPECT_ERR(&r, "no conv layer", "no 2-D convolution layer");
    tmp_path(net, sizeof net, "small.net");
    write_text(net, "input 1 16 16\nconv2d out=2 k=3\n");
    run(&r, "viz maps '%s' --data " DATA_DIR " --out '%s'", net, out);
    EXPECT_ERR(&r, "input size mismatch", "256", "784");
    CHECK_MSG(!exists(out), "a failed run wrote %s", out);
}

/* ---------------------------------------------------------------- curves */
static void test_curves(void) {
    static run_result r;
    char csv[512], out[512];
    tmp_path(csv, sizeof csv, "metrics.csv");
    tmp_path(out, sizeof out, "curves.png");
    write_text(csv, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n"
                    "1,0.001,1.45,0.48,0.94,0.645,3.9\n"
                    "2,0.001,0.81,0.69,0.76,0.716,3.4\n"
                    "3,0.001,0.72,0.73,0.72,0.701,3.5\n"
                    "4,0.001,0.65,0.76,0.70,0.747,5.0\n"
                    "5,0.0005,0.61,0.78,0.69,0.752,3.6\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "5 epochs") && strstr(r.out, "train and val"));
    expect_png(out, 920, 340, "curves");
    /* no validation set: val columns are nan and are left out */
    write_text(csv, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n"
                    "1,0.1,2.0,0.3,nan,nan,1\n"
                    "2,0.1,1.0,0.6,-nan,-nan,1\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "train only"), "exit %d: %s %s", r.code, r.err, r.out);
    /* one epoch, columns in another order, no val columns at all */
    write_text(csv, "train_acc,epoch,train_loss\n0.5,1,0.9\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    expect_png(out, 920, 340, "one-epoch curves");
}

static void test_curves_errors(void) {
    static run_result r;
    char csv[512], out[512];
    tmp_path(csv, sizeof csv, "bad.csv");
    tmp_path(out, sizeof out, "cerr.png");
    write_text(csv, "epoch,lr,loss\n1,0.1,2\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "missing column", "bad.csv", "'train_loss'");
    write_text(csv, "1,0.1,2,0.5\n2,0.1,1,0.6\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "no header", "no header");
    write_text(csv, "epoch,train_loss,train_acc\n1,0.5,0.6\n2,abc,0.7\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "not a number", "bad.csv:3", "abc");
    write_text(csv, "epoch,train_loss,train_acc\n1,0.5\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "short row", "bad.csv:2");
    write_text(csv, "");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "empty file", "bad.csv");
    write_text(csv, "epoch,train_loss,train_acc\n1,nan,0.5\n");
    run(&r, "viz curves '%s' --out '%s'", csv, out);
    EXPECT_ERR(&r, "all-nan loss", "train_loss", "no finite value");
    run(&r, "viz curves '%s/missing.csv' --out '%s'", tmpdir, out);
    EXPECT_ERR(&r, "missing file", "missing.csv");
    CHECK_MSG(!exists(out), "a failed run wrote %s", out);
}

/* ---------------------------------------------------------------- trained model */
static void test_trained_model(void) {
    static run_result r;
    char model[512], metrics[512], out[512];
    tmp_path(model, sizeof model, "lenet.safetensors");
    tmp_path(metrics, sizeof metrics, "train.csv");
    tmp_path(out, sizeof out, "trained.png");
    run(&r, "train --data " DATA_DIR " --model models/lenet5.net --epochs 2 --limit 300 --val 100 --quiet --out '%s' "
            "--metrics '%s'", model, metrics);
    CHECK_MSG(r.code == 0, "train: exit %d: %s", r.code, r.err);
    run(&r, "viz filters '%s' --layer conv2 --scale 2 --out '%s'", model, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    expect_labelled(out, 6, 16, 10, 10, (int)strlen("conv2: Conv2d(6 -> 16, k=5x5, s=1, p=0)"), true, "trained conv2");
    run(&r, "viz maps '%s' --data " DATA_DIR " --index 3 --out '%s'", model, out);
    CHECK_MSG(r.code == 0, "exit %d: %s", r.code, r.err);
    run(&r, "viz curves '%s' --out '%s'", metrics, out);
    CHECK_MSG(r.code == 0 && strstr(r.out, "2 epochs"), "exit %d: %s %s", r.code, r.err, r.out);
    /* eval --confusion names Fashion-MNIST's classes */
    run(&r, "eval '%s' " DATA_DIR " --confusion", model);
    CHECK_MSG(r.code == 0 && strstr(r.out, "  0 t-shirt/top ") && strstr(r.out, "  9 ankle boot  ") &&
                  strstr(r.out, "rows: true class"),
              "eval --confusion: exit %d: %s %s", r.code, r.out, r.err);
    run(&r, "eval '%s' " DATA_DIR " --confusion --classes none", model);
    CHECK_MSG(r.code == 0 && !strstr(r.out, "t-shirt") && strstr(r.out, "\n  9 "), "eval: %s", r.out);
    expect_png(out, 920, 340, "trained curves");
}

/* ---------------------------------------------------------------- cx_net_forward_all */
static void check_forward_all(const char *path) {
    cx_module *net;
    CHECK(cx_net_load(path, &net) == CX_OK);
    if (!net) return;
    cx_set_training(false);
    cx_no_grad_begin();
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 28, 28), 0, 1);
    cx_tensor **outs = cx_net_forward_all(net, x);
    int n = cx_net_num_layers(net);
    CHECK(outs[0] == x);
    for (int i = 0; i < n; i++) {
        const cx_layer_info *li = cx_net_layer(net, i);
        bool ok = outs[i]->ndim == li->out_ndim + 1 && outs[i]->shape[0] == 2;
        for (int d = 0; ok && d < li->out_ndim; d++) ok = outs[i]->shape[d + 1] == li->out_shape[d];
        CHECK_MSG(ok, "%s: layer %s has an output of the wrong shape", path, li->name);
    }
    /* the forward pass is bit for bit the layer outputs' last when it runs
     * channels first (a channels-last trunk agrees to rounding: test_netdef) */
    const bool cl = cx_net_channels_last();
    cx_net_set_channels_last(false);
    cx_tensor *y = cx_module_forward(net, x);
    cx_net_set_channels_last(cl);
    CHECK(cx_same_shape(y, outs[n - 1]));
    CHECK(memcmp(y->data, outs[n - 1]->data, (size_t)y->numel * sizeof(float)) == 0);
    cx_no_grad_end();
    cx_set_training(true);
    cx_module_free(net);
}

static void test_forward_all(void) {
    check_forward_all("models/lenet5.net");
    check_forward_all("models/small_resnet.net"); /* add layers read earlier outputs */
}

int main(void) {
    cli_err_prefix = "cortex viz";
    if (!cli_setup("test_viz")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_forward_all);
    RUN(test_help);
    RUN(test_filters);
    RUN(test_filters_errors);
    RUN(test_maps);
    RUN(test_maps_errors);
    RUN(test_curves);
    RUN(test_curves_errors);
    RUN(test_trained_model);
    cli_teardown();
    TEST_END();
}
