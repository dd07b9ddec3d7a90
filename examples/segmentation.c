/* Semantic segmentation with a fully convolutional network (course section 3:
 * Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
 * Segmentation", CVPR 2015).
 *
 * The task. Each example is a 48x48 canvas holding 1-3 Fashion-MNIST items
 * (28x28, uniformly placed, later items on top of earlier ones, so they may
 * overlap). Every pixel gets a label:
 *     0  background (and the faint / dark pixels of an item, intensity <= 0.15)
 *     1  tops       (T-shirt/top, pullover, coat, shirt)
 *     2  trousers & dresses
 *     3  footwear   (sandal, sneaker, ankle boot)
 *     4  bags
 * i.e. an item pixel brighter than 0.15 takes the super-class of the item
 * visible there (the top-most one). The 4 super-classes are the default because
 * a T-shirt, a pullover, a coat and a shirt look alike at 28x28 (an MLP
 * confuses them too); --fine uses the 10 original classes (11 labels).
 * Training canvases are drawn afresh every step from the training images;
 * the evaluation canvases are made once from the held-out test images.
 *
 * The network (FCN-8s style, built from Cortex modules; shapes for 48x48):
 *     stage1  conv3x3 1->16, BN, ReLU, conv3x3/2 16->16, BN, ReLU   [16, 24, 24]  1/2
 *     stage2  conv3x3 16->32, BN, ReLU, conv3x3/2 32->32, BN, ReLU  [32, 12, 12]  1/4
 *     stage3  conv3x3/2 32->64, BN, ReLU, conv3x3 64->64, BN, ReLU  [64,  6,  6]  1/8
 *     score8  conv1x1 64->K: class scores of the coarse map          [K,   6,  6]
 *     up8     transposed conv 4x4/2 K->K (learned, bilinear init)     [K,  12, 12]
 *             + score4 = conv1x1 32->K on stage2's output (skip)
 *     up4     transposed conv 4x4/2, + score2 = conv1x1 16->K on stage1's output
 *     up2     transposed conv 4x4/2 -> logits                          [K,  48, 48]
 * As in the paper the skip scorers start at zero (the net starts as the
 * coarse "FCN-32s" path) and the up-sampling kernels start as bilinear
 * interpolation and are then learned. --no-skip trains that coarse path alone:
 * score8 followed by one transposed conv 16x16/8 (FCN-32s style), for
 * comparison.
 *
 * Loss: per-pixel cross-entropy -- logits [N, K, H, W] are permuted to
 * [N, H, W, K] and reshaped to [N*H*W, K] for cx_cross_entropy. Adam, lr 2e-3
 * with a cosine decay, batches of 16 canvases.
 *
 * Report: pixel accuracy, per-class IoU = TP / (TP + FP + FN) and their mean
 * (mIoU over all K labels, background included, as the paper's "mean IU") on
 * the held-out canvases; and a PNG (default out/segmentation.png): one row per
 * test canvas showing input | prediction | truth (named over the columns),
 * scaled 4x, with a legend of the label colours and names at the bottom:
 *     background black, tops red, trousers/dresses blue, footwear green,
 *     bags yellow (--fine: 10 distinct colours, printed at the end of a run).
 *
 * Run (from the repository root):
 *   build/<variant>/examples/segmentation [--steps 1500] [--batch 16]
 *       [--test 400] [--seed 1] [--threads 1] [--fine] [--no-skip]
 *       [--data DIR] [--out out/segmentation.png]
 * One thread by default (these small convolutions gain little from more, and
 * one thread is the fair setting on a shared machine); --threads N uses N.
 * Data: --data, else /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist) if present, else data/fashion-mnist-subset.
 * Exit status: 0 on success, 1 if the data is missing or the PNG cannot be
 * written, 2 on a bad flag.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

enum { SIDE = 48, ITEM = 28, MAX_ITEMS = 3, MAX_K = 11 };
static const float INK = 0.15f; /* an item pixel brighter than this is labelled */


/* ------------------------------------------------------------ data */

/* Fashion-MNIST class -> super-class (1-based; 0 is the background). */
static const int SUPER[10] = {1, 2, 1, 2, 1, 3, 1, 3, 4, 3};
static const char *SUPER_NAMES[5] = {"background", "tops", "trousers/dresses", "footwear",
                                     "bags"};
static const char *FINE_NAMES[11] = {"background", "T-shirt/top", "trouser", "pullover",
                                     "dress",      "coat",        "sandal",  "shirt",
                                     "sneaker",    "bag",         "ankle boot"};

static bool file_exists(const char *dir, const char *name) {
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* Images of "<dir>/<prefix>-images-idx3-ubyte.gz" as F32 [N, 784] in [0, 1]
 * and labels I32 [N] (at most max_items). */
static cx_status load_split(const char *dir, const char *prefix, int max_items, cx_dataset *out) {
    char img[1024], lab[1024];
    snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
    snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    return cx_dataset_load_idx(img, lab, max_items, out);
}

/* Compose canvas `n` of the batch: x [.., 1, SIDE, SIDE] (F32), y [.., SIDE,
 * SIDE] (I32) from random images of `src`. Items are pasted in order; where
 * an item's pixel is above INK it covers what is below (value and label),
 * elsewhere the brighter value wins and the label stays. */
static void make_canvas(const cx_dataset *src, bool fine, float *x, int32_t *y) {
    memset(x, 0, sizeof(float) * SIDE * SIDE);
    memset(y, 0, sizeof(int32_t) * SIDE * SIDE);
    int items = 1 + (int)cx_rand_below(MAX_ITEMS);
    int n_src = cx_dataset_len(src);
    for (int it = 0; it < items; it++) {
        int idx = (int)cx_rand_below((uint32_t)n_src);
        int cls = CX_I32P(src->y)[idx];
        int label = fine ? 1 + cls : SUPER[cls];
        int oy = (int)cx_rand_below(SIDE - ITEM + 1), ox = (int)cx_rand_below(SIDE - ITEM + 1);
        const float *img = CX_F(src->x) + (size_t)idx * ITEM * ITEM;
        for (int r = 0; r < ITEM; r++)
            for (int c = 0; c < ITEM; c++) {
                float v = img[r * ITEM + c];
                int p = (oy + r) * SIDE + ox + c;
                if (v > INK) {
                    x[p] = v;
                    y[p] = label;
                } else if (v > x[p]) {
                    x[p] = v;
                }
            }
    }
}

static void make_batch(const cx_dataset *src, bool fine, cx_tensor *x, cx_tensor *y) {
    for (int n = 0; n < x->shape[0]; n++)
        make_canvas(src, fine, CX_F(x) + (size_t)n * SIDE * SIDE,
                    CX_I32P(y) + (size_t)n * SIDE * SIDE);
}

/* ------------------------------------------------------------ the FCN */

/* The network's pieces live in one Sequential `all` (which owns them, names
 * the parameters "stage1.0.weight", "score8.weight", ... and frees them); it
 * is never run as a Sequential -- fcn_forward wires the skips by hand. */
typedef struct {
    cx_module *all;
    cx_module *stage1, *stage2, *stage3, *score8, *score4, *score2, *up8, *up4, *up2;
    bool skip;
} fcn;

/* conv3x3 (stride s, padding 1, no bias: BN follows), BN, ReLU appended to seq */
static void conv_bn_relu(cx_module *seq, int in, int out, int stride) {
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = o.stride[1] = stride;
    o.padding[0] = o.padding[1] = 1;
    cx_sequential_add(seq, NULL, cx_conv2d_new(in, out, 3, 3, &o, false));
    cx_sequential_add(seq, NULL, cx_batchnorm2d_new(out));
    cx_sequential_add(seq, NULL, cx_activation_new(CX_ACT_RELU, 0));
}

/* Transposed conv K->K, kernel k, stride s, padding p, no bias, initialised
 * to bilinear up-sampling by the factor s (channel c -> channel c only), the
 * initialisation of Long et al. (their "deconvolution" layers). */
static cx_module *bilinear_up(int K, int k, int s, int p) {
    cx_conv_opts o = cx_conv_defaults();
    o.stride[0] = o.stride[1] = s;
    o.padding[0] = o.padding[1] = p;
    cx_module *m = cx_conv_transpose2d_new(K, K, k, k, &o, false);
    cx_tensor *w = cx_conv_weight(m); /* [K, K, k, k] */
    cx_fill(w, 0.0f);
    float centre = (k % 2 == 1) ? (float)(s - 1) : (float)s - 0.5f;
    for (int c = 0; c < K; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                CX_F(w)[(((size_t)c * K + c) * k + i) * k + j] =
                    (1.0f - fabsf((float)i - centre) / (float)s) *
                    (1.0f - fabsf((float)j - centre) / (float)s);
    return m;
}

static cx_module *conv1x1(int in, int out, bool zero) {
    cx_module *m = cx_conv2d_new(in, out, 1, 1, NULL, true);
    if (zero) {
        cx_fill(cx_conv_weight(m), 0.0f);
        cx_fill(cx_conv_bias(m), 0.0f);
    }
    return m;
}

static void add_part(fcn *f, const char *name, cx_module **slot, cx_module *m) {
    *slot = m;
    cx_sequential_add(f->all, name, m);
}

static void fcn_build(fcn *f, int K, bool skip) {
    memset(f, 0, sizeof *f);
    f->skip = skip;
    f->all = cx_sequential_new();
    cx_module *s1 = cx_sequential_new(), *s2 = cx_sequential_new(), *s3 = cx_sequential_new();
    conv_bn_relu(s1, 1, 16, 1);
    conv_bn_relu(s1, 16, 16, 2);
    conv_bn_relu(s2, 16, 32, 1);
    conv_bn_relu(s2, 32, 32, 2);
    conv_bn_relu(s3, 32, 64, 2);
    conv_bn_relu(s3, 64, 64, 1);
    add_part(f, "stage1", &f->stage1, s1);
    add_part(f, "stage2", &f->stage2, s2);
    add_part(f, "stage3", &f->stage3, s3);
    add_part(f, "score8", &f->score8, conv1x1(64, K, false));
    if (skip) {
        add_part(f, "up8", &f->up8, bilinear_up(K, 4, 2, 1));  /* 6 -> 12 */
        add_part(f, "score4", &f->score4, conv1x1(32, K, true));
        add_part(f, "up4", &f->up4, bilinear_up(K, 4, 2, 1));  /* 12 -> 24 */
        add_part(f, "score2", &f->score2, conv1x1(16, K, true));
        add_part(f, "up2", &f->up2, bilinear_up(K, 4, 2, 1));  /* 24 -> 48 */
    } else {
        add_part(f, "up2", &f->up2, bilinear_up(K, 16, 8, 4)); /* 6 -> 48 */
    }
}

/* x [N, 1, SIDE, SIDE] -> logits [N, K, SIDE, SIDE] */
static cx_tensor *fcn_forward(fcn *f, cx_tensor *x) {
    cx_tensor *f2 = cx_module_forward(f->stage1, x);  /* 1/2 */
    cx_tensor *f4 = cx_module_forward(f->stage2, f2); /* 1/4 */
    cx_tensor *f8 = cx_module_forward(f->stage3, f4); /* 1/8 */
    cx_tensor *s = cx_module_forward(f->score8, f8);
    if (f->skip) {
        s = cx_add(cx_module_forward(f->up8, s), cx_module_forward(f->score4, f4));
        s = cx_add(cx_module_forward(f->up4, s), cx_module_forward(f->score2, f2));
    }
    return cx_module_forward(f->up2, s);
}

/* Per-pixel cross-entropy: [N, K, H, W] -> [N, H, W, K] -> [N*H*W, K]. */
static cx_tensor *pixel_loss(cx_tensor *logits, const cx_tensor *y) {
    int K = logits->shape[1];
    cx_tensor *t = cx_permute(logits, (const int[]){0, 2, 3, 1});
    t = cx_reshape(t, CX_SHAPE(-1, K));
    return cx_cross_entropy(t, y, CX_REDUCE_MEAN);
}

/* ------------------------------------------------------------ evaluation */

/* Predicted labels of every pixel of x (I32 [N * SIDE * SIDE] into pred). */
static void predict(fcn *f, const cx_tensor *x, int32_t *pred) {
    enum { EB = 50 };
    int N = x->shape[0];
    cx_no_grad_begin();
    cx_set_training(false);
    for (int n0 = 0; n0 < N; n0 += EB) {
        int nb = N - n0 < EB ? N - n0 : EB;
        cx_tensor *xb = cx_from_data(CX_F(x) + (size_t)n0 * SIDE * SIDE,
                                     CX_SHAPE(nb, 1, SIDE, SIDE));
        cx_tensor *am = cx_argmax(fcn_forward(f, xb), 1); /* [nb, SIDE, SIDE] */
        memcpy(pred + (size_t)n0 * SIDE * SIDE, am->data, sizeof(int32_t) * am->numel);
        cx_step_reset();
    }
    cx_set_training(true);
    cx_no_grad_end();
}

typedef struct {
    double pixel_acc, miou, iou[MAX_K];
} seg_metrics;

static seg_metrics score(const int32_t *pred, const int32_t *truth, int64_t n, int K) {
    int64_t conf[MAX_K][MAX_K] = {{0}}; /* conf[truth][pred] */
    for (int64_t i = 0; i < n; i++) conf[truth[i]][pred[i]]++;
    seg_metrics m = {0};
    int64_t diag = 0;
    for (int k = 0; k < K; k++) {
        int64_t tp = conf[k][k], row = 0, col = 0;
        for (int j = 0; j < K; j++) {
            row += conf[k][j];
            col += conf[j][k];
        }
        diag += tp;
        int64_t uni = row + col - tp;
        m.iou[k] = uni ? (double)tp / (double)uni : 1.0;
        m.miou += m.iou[k] / K;
    }
    m.pixel_acc = (double)diag / (double)n;
    return m;
}

/* ------------------------------------------------------------ PNG */

/* Label colours: 5 super-class labels, or background + 10 classes (--fine). */
static const unsigned char COARSE_RGB[5][3] = {
    {0, 0, 0}, {235, 70, 60}, {60, 120, 240}, {70, 200, 80}, {245, 210, 50}};
static const unsigned char FINE_RGB[11][3] = {
    {0, 0, 0},      {230, 25, 75},  {0, 130, 200},  {255, 135, 40}, {145, 30, 180},
    {240, 50, 230}, {60, 180, 75},  {170, 110, 40}, {70, 240, 240}, {255, 225, 25},
    {128, 128, 0}};

static const unsigned char *label_rgb(int k, bool fine) {
    return fine ? FINE_RGB[k] : COARSE_RGB[k];
}

/* The picture: a header over each column (input | prediction | truth, font
 * scale 2), rows of the three panels (each SIDE*Z square, GAP pixels apart,
 * on white), then a legend: "colours:" and, for each label, its colour swatch
 * and name, wrapped onto as many lines as needed. With draw false only the
 * height is computed. Returns the height. */
enum { Z = 4, GAP = 6, PANEL = SIDE * Z, TS = 2, SW = 14 };
static int layout(cx_canvas *c, bool draw, const cx_tensor *x, const int32_t *pred, const int32_t *truth, int rows,
                  int K, bool fine, const char *const *names) {
    static const uint8_t ink[3] = {0, 0, 0}, frame[3] = {160, 160, 160};
    const int w = 3 * PANEL + 4 * GAP;
    static const char *const heads[3] = {"input", "prediction", "truth"};
    int y = GAP;
    for (int panel = 0; panel < 3 && draw; panel++) {
        int x0 = GAP + panel * (PANEL + GAP);
        cx_canvas_text(c, x0 + (PANEL - cx_text_width(heads[panel], TS)) / 2, y, heads[panel], TS, ink);
    }
    y += 7 * TS + GAP;
    for (int r = 0; r < rows; r++) {
        const float *img = CX_F(x) + (size_t)r * SIDE * SIDE;
        const int32_t *maps[2] = {pred + (size_t)r * SIDE * SIDE, truth + (size_t)r * SIDE * SIDE};
        for (int panel = 0; panel < 3 && draw; panel++) {
            int x0 = GAP + panel * (PANEL + GAP);
            cx_canvas_rect(c, x0 - 1, y - 1, PANEL + 2, PANEL + 2, frame, 1);
            for (int py = 0; py < SIDE; py++)
                for (int px = 0; px < SIDE; px++) {
                    int p = py * SIDE + px;
                    uint8_t col[3];
                    if (panel == 0) {
                        float v = img[p] < 0 ? 0 : img[p] > 1 ? 1 : img[p];
                        col[0] = col[1] = col[2] = (uint8_t)lrintf(255.0f * v);
                    } else {
                        memcpy(col, label_rgb(maps[panel - 1][p], fine), 3);
                    }
                    cx_canvas_fill(c, x0 + px * Z, y + py * Z, Z, Z, col);
                }
        }
        y += PANEL + GAP;
    }
    /* legend */
    int lx = GAP;
    if (draw) cx_canvas_text(c, lx, y, "colours:", TS, ink);
    lx += cx_text_width("colours:", TS) + 3 * GAP;
    for (int k = 0; k < K; k++) {
        int item = SW + GAP + cx_text_width(names[k], TS) + 3 * GAP;
        if (lx + item - 2 * GAP > w - GAP && lx > GAP) {
            lx = GAP;
            y += 7 * TS + 2 * GAP;
        }
        if (draw) {
            cx_canvas_fill(c, lx, y, SW, SW, label_rgb(k, fine));
            cx_canvas_rect(c, lx - 1, y - 1, SW + 2, SW + 2, frame, 1);
            cx_canvas_text(c, lx + SW + GAP, y, names[k], TS, ink);
        }
        lx += item;
    }
    return y + 7 * TS + GAP;
}

/* Draw and save the picture (atomically: an existing file survives any
 * error). Returns 0 or 1 after a message. */
static int write_picture(const char *path, const cx_tensor *x, const int32_t *pred, const int32_t *truth, int rows,
                         int K, bool fine, const char *const *names, int *w_out, int *h_out) {
    cx_canvas c = {0, 0, NULL};
    int w = 3 * PANEL + 4 * GAP, h = layout(NULL, false, x, pred, truth, rows, K, fine, names);
    cx_status st = cx_canvas_init(&c, w, h, NULL);
    if (!st) {
        layout(&c, true, x, pred, truth, rows, K, fine, names);
        st = cx_canvas_save(&c, path);
    }
    cx_canvas_free(&c);
    if (st) {
        fprintf(stderr, "segmentation: cannot write PNG: %s\n", cx_last_error());
        return 1;
    }
    *w_out = w;
    *h_out = h;
    return 0;
}

/* ------------------------------------------------------------ main */

static int usage(void) {
    fprintf(stderr, "usage: segmentation [--steps N] [--batch B] [--test N] [--seed S] "
                    "[--threads T] [--fine] [--no-skip] [--data DIR] [--out PNG]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *png_path = "out/segmentation.png";
    int steps = 1500, batch = 16, n_test = 400, threads = 1;
    bool fine = false, skip = true, default_out = true;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fine")) fine = true;
        else if (!strcmp(a, "--no-skip")) skip = false;
        else if (!v) return usage();
        else if (!strcmp(a, "--steps")) steps = atoi(v), i++;
        else if (!strcmp(a, "--batch")) batch = atoi(v), i++;
        else if (!strcmp(a, "--test")) n_test = atoi(v), i++;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads")) threads = atoi(v), i++;
        else if (!strcmp(a, "--data")) dir = v, i++;
        else if (!strcmp(a, "--out")) png_path = v, default_out = false, i++;
        else return usage();
    }
    if (steps < 0 || batch < 2 || n_test < 1) return usage();
    if (!dir) {
        dir = file_exists("/usr/share/datasets/fashion-mnist", "train-images-idx3-ubyte.gz")
                  ? "/usr/share/datasets/fashion-mnist"
                  : "data/fashion-mnist-subset";
    }
    cx_set_threads(threads);
    cx_seed(seed); /* canvases, initial weights: all randomness comes from here */
    double t_start = cx_now();

    /* at most 20,000 training items: plenty of distinct canvases, quick to load */
    cx_dataset train, test;
    if (load_split(dir, "train", 20000, &train) != CX_OK) {
        fprintf(stderr,
                "segmentation: cannot load Fashion-MNIST from %s: %s\n"
                "  (install dataset-fashion-mnist, run from the repository root so that "
                "data/fashion-mnist-subset is found, or pass --data DIR)\n",
                dir, cx_last_error());
        return 1;
    }
    if (load_split(dir, "t10k", 0, &test) != CX_OK) {
        fprintf(stderr, "segmentation: cannot load the Fashion-MNIST test split from %s: %s\n",
                dir, cx_last_error());
        cx_dataset_free(&train);
        return 1;
    }
    const int K = fine ? 11 : 5;
    const char *const *names = fine ? FINE_NAMES : SUPER_NAMES;

    /* held-out canvases: test images only */
    cx_tensor *Xt = cx_tensor_new(CX_F32, CX_SHAPE(n_test, 1, SIDE, SIDE));
    cx_tensor *Yt = cx_tensor_new(CX_I32, CX_SHAPE(n_test * SIDE * SIDE));
    make_batch(&test, fine, Xt, Yt);
    /* one reusable training batch, refilled every step */
    cx_tensor *Xb = cx_tensor_new(CX_F32, CX_SHAPE(batch, 1, SIDE, SIDE));
    cx_tensor *Yb = cx_tensor_new(CX_I32, CX_SHAPE(batch * SIDE * SIDE));

    fcn net;
    fcn_build(&net, K, skip);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net.all, &ps);
    int64_t bg = 0;
    for (int64_t i = 0; i < Yt->numel; i++) bg += CX_I32P(Yt)[i] == 0;
    printf("Segmentation of %dx%d canvases with 1-%d Fashion-MNIST items (%s), %d labels (%s)\n",
           SIDE, SIDE, MAX_ITEMS, dir, K, fine ? "background + 10 classes" : "background + 4 super-classes");
    printf("FCN %s, %lld parameters; %d steps x %d canvases, Adam 2e-3 cosine, %d thread(s)\n",
           skip ? "with skips (scores at 1/8 + 1/4 + 1/2)" : "without skips (1/8 scores, x8 up)",
           (long long)cx_params_count(&ps), steps, batch, cx_get_threads());
    printf("held-out: %d canvases from test images, %.1f%% background pixels\n", n_test,
           100.0 * (double)bg / (double)Yt->numel);

    const double lr = 2e-3;
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_sched sched = cx_sched_cosine(steps, lr * 0.02);
    double t0 = cx_now(), run_loss = 0;
    int run_n = 0;
    for (int s = 0; s < steps; s++) {
        cx_sched_apply(&sched, opt, lr, s);
        make_batch(&train, fine, Xb, Yb);
        cx_optim_zero_grad(opt);
        cx_tensor *loss = pixel_loss(fcn_forward(&net, Xb), Yb);
        cx_backward(loss);
        cx_optim_step(opt);
        run_loss += cx_item(loss);
        run_n++;
        cx_step_reset();
        if ((s + 1) % 100 == 0 || s + 1 == steps) {
            printf("  step %4d  loss %.4f  (%.1f s)\n", s + 1, run_loss / run_n, cx_now() - t0);
            fflush(stdout);
            run_loss = 0;
            run_n = 0;
        }
    }
    double t_train = cx_now() - t0;

    int32_t *pred = malloc(sizeof(int32_t) * (size_t)Yt->numel);
    if (!pred) cx_fatal("segmentation: out of memory");
    predict(&net, Xt, pred);
    seg_metrics m = score(pred, CX_I32P(Yt), Yt->numel, K);
    printf("\nheld-out (%d canvases, %lld pixels): pixel accuracy %.2f%%  mean IoU %.2f%%\n",
           n_test, (long long)Yt->numel, 100 * m.pixel_acc, 100 * m.miou);
    for (int k = 0; k < K; k++) printf("  IoU %-18s %6.2f%%\n", names[k], 100 * m.iou[k]);
    printf("training %.1f s\n", t_train);

    int rc = 0;
    if (default_out && mkdir("out", 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "segmentation: cannot create out/: %s\n", strerror(errno));
        rc = 1;
    }
    if (!rc) {
        int rows = n_test < 8 ? n_test : 8, w = 0, h = 0;
        rc = write_picture(png_path, Xt, pred, CX_I32P(Yt), rows, K, fine, names, &w, &h);
        if (!rc) {
            printf("%s (%dx%d): %d rows of input | prediction | truth under column headers, legend:", png_path, w,
                   h, rows);
            for (int k = 0; k < K; k++) {
                const unsigned char *c = label_rgb(k, fine);
                printf("%s %s (%d,%d,%d)", k ? "," : "", names[k], c[0], c[1], c[2]);
            }
            printf("\n");
        }
    }
    printf("total %.1f s\n", cx_now() - t_start);

    free(pred);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net.all);
    cx_tensor_free(Xt);
    cx_tensor_free(Yt);
    cx_tensor_free(Xb);
    cx_tensor_free(Yb);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return rc;
}
