/* Spatial transformer networks (Jaderberg, Simonyan, Zisserman & Kavukcuoglu,
 * "Spatial Transformer Networks", NIPS 2015) on distorted, cluttered
 * Fashion-MNIST: the same CNN with and without a spatial transformer in front.
 *
 * The data (cx_distort_dataset with cx_distort_defaults(), include/cortex/
 * data.h). Every example is a 60x60 canvas holding one Fashion-MNIST item
 * (28x28), rotated by an angle from U(-45, 45) degrees, scaled by a factor
 * from U(0.7, 1.2) and placed uniformly at random where its ink stays inside
 * the canvas, over 6 clutter fragments (6x6 patches with some ink cut from
 * other images of the same split). The --train training canvases are made
 * from the Fashion-MNIST training images with seed --data-seed (default 7),
 * the --test test canvases from the test images with seed data-seed + 1;
 * canvas i holds image i mod N and its label.
 *
 * The models. Both classify what a CNN sees through a VIEW x VIEW window
 * (--view, default 30):
 *   CNN      the whole canvas resized to 30x30 (bilinear, = 2x2 averaging),
 *            then conv5x5 1->16 (pad 2), BN, ReLU, max-pool 2   [16, 15, 15]
 *                 conv5x5 16->32 (pad 2), BN, ReLU, max-pool 2  [32, 7, 7]
 *                 conv3x3 32->32 (pad 1), BN, ReLU              [32, 7, 7]
 *                 flatten, Linear(1568, 128), ReLU, Linear(128, 10)
 *   STN-CNN  a spatial transformer (cx_stn_new) whose 30x30 output goes to
 *            the same CNN, built from the same seed (same initial weights).
 *            Its localisation network reads the canvas at half resolution:
 *            max-pool 2, conv5x5 1->8, BN, ReLU, max-pool 2, conv5x5 8->10,
 *            BN, ReLU, max-pool 2, flatten, Linear(160, 32), ReLU; then
 *            fc_loc = Linear(32, 6) with weight 0 and bias (1/z, 0, 0, 0,
 *            1/z, 0): every canvas starts read through the same centred
 *            square, z = --init-zoom times smaller than the canvas. With
 *            z = 1 (the identity) the STN-CNN starts as exactly the CNN, but
 *            shifting the window then changes nothing the CNN cares about, so
 *            the transformer gets almost no signal to learn where the item
 *            is; with z > 1 items near the border start cut off, and moving
 *            the window to them lowers the loss. (BN in the localisation
 *            network: without it its features barely vary between canvases,
 *            and the transformer learns one fixed transformation for all.)
 * Both are trained the same way (Adam, cosine decay to 0, batches of 64,
 * gradient-norm clipping at 5, shuffling seed --seed + 100, the library's
 * trainer and classifier task), and evaluated on all the test canvases after
 * every epoch (eval mode). --loc-lr-scale s gives the transformer's
 * parameters a learning rate of s * lr (an on_step hook rescales their
 * update, w = w_prev + s (w_new - w_prev): exactly s * lr for Adam without
 * weight decay, whose moments depend on the gradients only).
 *
 * Output: per epoch the training loss and accuracy and the test accuracy of
 * each model (and, for the STN-CNN, what its transformer does on 1000 test
 * canvases: mean zoom, and the mean and spread of the centre of the region it
 * reads), a final summary line "STN threads=... cnn_test_acc=...
 * stn_test_acc=... cnn_sec=... stn_sec=..." (wall and CPU seconds of
 * training), and a PNG (default out/stn.png): 12 test canvases, each as the
 * input with the region the STN samples outlined in orange, beside the STN's
 * output (what its CNN sees), with the true class and both models'
 * predictions (green right, red wrong), under a title and the test
 * accuracies.
 *
 * Run (from the repository root; the numbers of examples/README.md):
 *   make examples
 *   build/<variant>/examples/stn
 * All flags, with their defaults:
 *   --epochs 12 --train 30000 --test 10000 --batch 64 --lr 1e-3
 *   --loc-lr-scale 1 --init-zoom 2 --view 30 --threads 1 --seed 1
 *   --data-seed 7 --only cnn|stn (train one model; the other is shown as
 *   "not trained") --data DIR --out out/stn.png
 * Measured with those defaults (seed 1; AMD EPYC, 2 shared
 * vCPUs): test accuracy CNN 67.60%, STN-CNN 74.56% (seed 2: 68.46%, 74.02%);
 * about 96 s and 135 s of CPU time for the two trainings.
 * Data: --data, else /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist) if present, else data/fashion-mnist-subset.
 * Exit status: 0 on success; 1 if the data is missing, training fails or the
 * PNG cannot be written; 2 on a bad or unknown flag (one line on stderr).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

#define CANVAS 60 /* cx_distort_defaults().canvas */

/* ------------------------------------------------------------ data */
/* ------------------------------------------------------------ models */
static void conv_bn_relu(cx_module *seq, const char *conv, const char *bn, int in, int out, int k, bool pool) {
    cx_conv_opts o = cx_conv_defaults();
    o.padding[0] = o.padding[1] = k / 2;
    cx_sequential_add(seq, conv, cx_conv2d_new(in, out, k, k, &o, false));
    cx_sequential_add(seq, bn, cx_batchnorm2d_new(out));
    cx_sequential_add(seq, NULL, cx_activation_new(CX_ACT_RELU, 0));
    if (pool) cx_sequential_add(seq, NULL, cx_maxpool2d_new(2, 2, 0));
}

static int VIEW = 30; /* what the CNN sees: VIEW x VIEW (--view) */

static cx_module *cnn_new(void) {
    cx_module *m = cx_sequential_new();
    conv_bn_relu(m, "conv1", "bn1", 1, 16, 5, true);  /* [16, 15, 15] */
    conv_bn_relu(m, "conv2", "bn2", 16, 32, 5, true); /* [32, 7, 7] */
    conv_bn_relu(m, "conv3", "bn3", 32, 32, 3, false); /* [32, 7, 7] */
    cx_sequential_add(m, "flatten", cx_flatten_new());
    int v = VIEW / 2 / 2;
    cx_sequential_add(m, "fc1", cx_linear_new(32 * v * v, 128, true));
    cx_sequential_add(m, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(m, "fc2", cx_linear_new(128, 10, true));
    return m;
}

/* The localisation network: [N, 1, 60, 60] -> [N, 32]. */
static cx_module *loc_new(void) {
    cx_module *m = cx_sequential_new();
    cx_sequential_add(m, "pool0", cx_maxpool2d_new(2, 2, 0));              /* 30 x 30 */
    cx_sequential_add(m, "conv1", cx_conv2d_new(1, 8, 5, 5, NULL, false)); /* 26 x 26 */
    cx_sequential_add(m, "bn1", cx_batchnorm2d_new(8));
    cx_sequential_add(m, "relu1", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(m, "pool1", cx_maxpool2d_new(2, 2, 0));               /* 13 x 13 */
    cx_sequential_add(m, "conv2", cx_conv2d_new(8, 10, 5, 5, NULL, false)); /* 9 x 9 */
    cx_sequential_add(m, "bn2", cx_batchnorm2d_new(10));
    cx_sequential_add(m, "relu2", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(m, "pool2", cx_maxpool2d_new(2, 2, 0));               /* 4 x 4 */
    cx_sequential_add(m, "flatten", cx_flatten_new());
    cx_sequential_add(m, "fc", cx_linear_new(10 * 4 * 4, 32, true));
    cx_sequential_add(m, "relu3", cx_activation_new(CX_ACT_RELU, 0));
    return m;
}

/* A model as the trainer sees it: flat canvases [B, 3600] in, logits out. */
typedef struct {
    cx_module *net; /* the CNN, or Sequential(stn, cnn) */
} model;

static cx_tensor *model_forward(void *user, cx_tensor *x) {
    model *m = user;
    return cx_module_forward(m->net, cx_reshape(x, CX_SHAPE(x->shape[0], 1, CANVAS, CANVAS)));
}

typedef struct {
    const char *name;
    int epochs;
    double acc;
    cx_module *stn;          /* NULL for the plain CNN */
    const cx_dataset *test;
} report;

/* What the transformer does on the first (up to) 1000 test canvases: theta =
 * [A | t] maps output to input coordinates, so 1 / sqrt|det A| is its zoom
 * (1: the whole canvas, 2: a region of half the side) and t the centre of
 * the region read (canvas coordinates in [-1, 1]). Prints the mean zoom and
 * the spread of the centres across canvases (0 when the STN ignores where
 * the item is). In an arena of its own: the trainer's step is untouched. */
static void print_theta(cx_module *stn, const cx_dataset *test) {
    int n = cx_dataset_len(test) < 1000 ? cx_dataset_len(test) : 1000;
    cx_arena *ar = cx_arena_new(1 << 20), *prev = cx_arena_use(ar);
    bool tr = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    cx_tensor *x = cx_empty(CX_F32, CX_SHAPE(n, 1, CANVAS, CANVAS));
    memcpy(CX_F(x), CX_F(test->x), (size_t)n * CANVAS * CANVAS * sizeof(float));
    const float *t = CX_F(cx_stn_theta(stn, x));
    double z = 0, zlo = 1e30, zhi = 0, mx = 0, my = 0, sx = 0, sy = 0;
    for (int i = 0; i < n; i++, t += 6) {
        double zi = 1.0 / sqrt(fabs((double)t[0] * t[4] - (double)t[1] * t[3]) + 1e-12);
        z += zi, zlo = zi < zlo ? zi : zlo, zhi = zi > zhi ? zi : zhi;
        mx += t[2], my += t[5], sx += (double)t[2] * t[2], sy += (double)t[5] * t[5];
    }
    mx /= n, my /= n;
    printf("    transformer on %d test canvases: zoom mean %.3f (%.3f-%.3f), centre of the region read: "
           "mean (%+.3f, %+.3f), sd (%.3f, %.3f)\n",
           n, z / n, zlo, zhi, mx, my, sqrt(fmax(sx / n - mx * mx, 0)), sqrt(fmax(sy / n - my * my, 0)));
    cx_no_grad_end();
    cx_set_training(tr);
    cx_arena_use(prev);
    cx_arena_free(ar);
}

static cx_status print_epoch(void *user, const cx_train_info *in) {
    report *r = user; /* the first member of run_ctx */
    r->acc = cx_metrics_get(in->metrics, "val_acc");
    printf("  %s epoch %d/%d  train loss %.4f  train acc %.2f%%  test acc %.2f%%  %.1f s (cpu %.1f s)\n", r->name,
           in->pos.epoch, r->epochs, in->train_loss, 100.0 * cx_metrics_get(in->metrics, "train_acc"),
           100.0 * r->acc, in->epoch_seconds, in->epoch_cpu_seconds);
    if (r->stn) print_theta(r->stn, r->test);
    fflush(stdout);
    return CX_OK;
}

typedef struct {
    int epochs, batch;
    double lr;
    float loc_scale;
} train_cfg;

/* The slower learning rate of the transformer: after every optimiser step,
 * w = prev + scale * (w - prev), prev = w, for each of its parameters. */
typedef struct {
    cx_params ps;
    float **prev;
    float scale;
} slow_params;

static void slow_init(slow_params *sp, cx_module *m, float scale) {
    cx_params_init(&sp->ps);
    cx_module_params(m, &sp->ps);
    sp->scale = scale;
    sp->prev = calloc((size_t)sp->ps.n, sizeof *sp->prev);
    for (int i = 0; i < sp->ps.n; i++) {
        size_t bytes = (size_t)sp->ps.t[i]->numel * sizeof(float);
        sp->prev[i] = malloc(bytes);
        memcpy(sp->prev[i], CX_F(sp->ps.t[i]), bytes);
    }
}
static void slow_free(slow_params *sp) {
    for (int i = 0; i < sp->ps.n; i++) free(sp->prev[i]);
    free(sp->prev);
    cx_params_free(&sp->ps);
}
/* What the hooks see (hook_user). */
typedef struct {
    report rep;
    slow_params slow;
} run_ctx;

static cx_status slow_step(void *user, const cx_train_info *info) {
    (void)info;
    slow_params *sp = &((run_ctx *)user)->slow;
    for (int i = 0; i < sp->ps.n; i++) {
        float *w = CX_F(sp->ps.t[i]), *p = sp->prev[i];
        for (int64_t k = 0; k < sp->ps.t[i]->numel; k++) p[k] = w[k] = p[k] + sp->scale * (w[k] - p[k]);
    }
    return CX_OK;
}

/* Train m on `train`, evaluating on `test` after every epoch; the parameters
 * of `slow` (NULL: none) learn at cfg->loc_scale times the rate. */
static int train_model(const char *name, model *m, cx_module *slow, const cx_dataset *train,
                       const cx_dataset *test, const train_cfg *cfg, double *seconds, double *cpu, double *acc) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->net, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = cfg->lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_loader *ld = cx_loader_new(train, cfg->batch, true, false);
    cx_classifier cls = {.forward = model_forward, .forward_user = m, .train = ld, .val = test, .eval_batch = 500};
    cx_train_task task = cx_classifier_task(&cls);
    report rep = {name, cfg->epochs, NAN, slow, test};
    cx_train_opts to = cx_train_defaults();
    to.epochs = cfg->epochs;
    to.clip = 5.0f;
    to.sched = cx_sched_cosine(cfg->epochs, 0);
    run_ctx rc_ = {rep, {{0, 0, NULL}, NULL, 1}};
    to.on_eval = print_epoch;
    to.hook_user = &rc_;
    if (slow && cfg->loc_scale != 1.0f) {
        slow_init(&rc_.slow, slow, cfg->loc_scale);
        to.on_step = slow_step;
    }
    printf("%s: %lld parameters, Adam lr %g (cosine), batch %d, %d epochs\n", name, (long long)cx_params_count(&ps),
           cfg->lr, cfg->batch, cfg->epochs);
    double t0 = cx_now(), c0 = cx_cpu_now();
    cx_trainer *tr = cx_trainer_new(&task, m->net, opt, &to);
    int rc = 0;
    if (cx_trainer_run(tr) != CX_OK) {
        fprintf(stderr, "stn: training %s: %s\n", name, cx_last_error());
        rc = 1;
    }
    *seconds = cx_now() - t0;
    *cpu = cx_cpu_now() - c0;
    *acc = rc_.rep.acc;
    if (rc_.slow.prev) slow_free(&rc_.slow);
    cx_trainer_free(tr);
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    return rc;
}

/* ------------------------------------------------------------ picture */
static int argmax10(const float *v) {
    int b = 0;
    for (int k = 1; k < 10; k++)
        if (v[k] > v[b]) b = k;
    return b;
}

/* 12 test canvases (4 per row): input with the STN's sampling region
 * outlined | the STN's output; under each pair the truth and both models'
 * predictions (green right, red wrong). */
static int write_picture(const char *path, model *stn_model, model *cnn_model, const cx_dataset *test,
                         const cx_distort_opts *dopt, double stn_acc, double cnn_acc) {
    enum { NSHOW = 12, COLS = 4, Z = 3, IMG = CANVAS * Z, GAP = 8, PAIRW = 2 * IMG + GAP, MARGIN = 28,
           TS = 2, LINE = 8 * TS + 4, HEAD = 6 * LINE + 24, ROWH = LINE + IMG + 6 + 3 * LINE + 18 };
    static const uint8_t BLACK[3] = {0, 0, 0}, GREY[3] = {80, 80, 80}, ORANGE[3] = {255, 140, 0},
                         GREEN[3] = {0, 130, 50}, RED[3] = {210, 30, 30}, FRAME[3] = {170, 170, 170};
    int rows = (NSHOW + COLS - 1) / COLS;
    cx_canvas c;
    if (cx_canvas_init(&c, MARGIN + COLS * (PAIRW + MARGIN), HEAD + rows * ROWH + 8, NULL) != CX_OK) {
        fprintf(stderr, "stn: %s\n", cx_last_error());
        return 1;
    }
    char line[240];
    cx_canvas_text(&c, MARGIN, 14, "Spatial transformer on distorted, cluttered Fashion-MNIST", 3, BLACK);
    int y = 14 + 7 * 3 + 14;
    snprintf(line, sizeof line,
             "Test canvases %dx%d: an item rotated by up to %g deg, scaled %g-%g, placed at random, over %d "
             "clutter fragments of %dx%d.",
             dopt->canvas, dopt->canvas, dopt->max_angle, dopt->min_scale, dopt->max_scale, dopt->n_clutter,
             dopt->fragment, dopt->fragment);
    cx_canvas_text(&c, MARGIN, y, line, TS, GREY);
    y += LINE;
    snprintf(line, sizeof line,
             "Each pair: left the input, outlined in orange the region the STN samples, right the STN output "
             "(%dx%d, what its CNN sees).",
             VIEW, VIEW);
    cx_canvas_text(&c, MARGIN, y, line, TS, GREY);
    y += LINE;
    snprintf(line, sizeof line,
             "The plain CNN sees the whole input at %dx%d. Below: true class, STN-CNN's and CNN's prediction "
             "(green right, red wrong).",
             VIEW, VIEW);
    cx_canvas_text(&c, MARGIN, y, line, TS, GREY);
    y += LINE + 4;
    char acc_s[32], acc_c[32];
    snprintf(acc_s, sizeof acc_s, isnan(stn_acc) ? "not trained" : "%.2f%%", 100 * stn_acc);
    snprintf(acc_c, sizeof acc_c, isnan(cnn_acc) ? "not trained" : "%.2f%%", 100 * cnn_acc);
    snprintf(line, sizeof line, "Test accuracy (%d canvases): STN-CNN %s, CNN %s", cx_dataset_len(test), acc_s,
             acc_c);
    cx_canvas_text(&c, MARGIN, y, line, TS, BLACK);

    /* canvases spread over the test set */
    int n = cx_dataset_len(test);
    cx_tensor *x = cx_empty(CX_F32, CX_SHAPE(NSHOW, 1, CANVAS, CANVAS));
    int idx[NSHOW];
    for (int k = 0; k < NSHOW; k++) {
        idx[k] = (int)(((int64_t)k * n / NSHOW + 3) % n);
        memcpy(CX_F(x) + (int64_t)k * CANVAS * CANVAS, CX_F(test->x) + (int64_t)idx[k] * CANVAS * CANVAS,
               CANVAS * CANVAS * sizeof(float));
    }
    bool tr = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    cx_module *stn = cx_sequential_get(stn_model->net, 0), *stn_cnn = cx_sequential_get(stn_model->net, 1);
    cx_tensor *out[2];
    cx_module_call(stn, &x, 1, out, 2);
    cx_tensor *ls = cx_module_forward(stn_cnn, out[0]);
    cx_tensor *lc = cx_module_forward(cnn_model->net, x);
    cx_no_grad_end();
    cx_set_training(tr);
    for (int k = 0; k < NSHOW; k++) {
        int gx = MARGIN + (k % COLS) * (PAIRW + MARGIN), gy = HEAD + (k / COLS) * ROWH;
        cx_canvas_text(&c, gx, gy, "input", TS, GREY);
        cx_canvas_text(&c, gx + IMG + GAP, gy, "STN output", TS, GREY);
        int iy = gy + LINE;
        /* the input and the region read, on a canvas of its own so that the
         * outline is clipped to the input (the STN may read past its border) */
        cx_canvas in;
        if (cx_canvas_init(&in, IMG, IMG, NULL) != CX_OK) {
            fprintf(stderr, "stn: %s\n", cx_last_error());
            cx_canvas_free(&c);
            return 1;
        }
        cx_canvas_image(&in, 0, 0, CX_F(x) + (int64_t)k * CANVAS * CANVAS, CANVAS, CANVAS, Z, Z, 0, 1,
                        CX_CMAP_GRAY);
        int zo = IMG / VIEW;
        cx_canvas_image(&c, gx + IMG + GAP, iy, CX_F(out[0]) + (int64_t)k * VIEW * VIEW, VIEW, VIEW, zo, zo, 0, 1,
                        CX_CMAP_GRAY);
        /* the output's corners mapped by theta into the input: the region read */
        const float *t = CX_F(out[1]) + 6 * k;
        const float cu[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
        int qx[4], qy[4];
        for (int j = 0; j < 4; j++) {
            float vx = t[0] * cu[j][0] + t[1] * cu[j][1] + t[2], vy = t[3] * cu[j][0] + t[4] * cu[j][1] + t[5];
            qx[j] = (int)lroundf((vx + 1) / 2 * IMG), qy[j] = (int)lroundf((vy + 1) / 2 * IMG);
        }
        for (int j = 0; j < 4; j++) cx_canvas_line(&in, qx[j], qy[j], qx[(j + 1) % 4], qy[(j + 1) % 4], ORANGE, 2);
        cx_canvas_paste(&c, gx, iy, &in);
        cx_canvas_free(&in);
        cx_canvas_rect(&c, gx - 1, iy - 1, IMG + 2, IMG + 2, FRAME, 1);
        cx_canvas_rect(&c, gx + IMG + GAP - 1, iy - 1, VIEW * zo + 2, VIEW * zo + 2, FRAME, 1);
        int truth = CX_I32P(test->y)[idx[k]];
        int ps = argmax10(CX_F(ls) + 10 * k), pc = argmax10(CX_F(lc) + 10 * k);
        int ty = iy + IMG + 8;
        snprintf(line, sizeof line, "true: %s", cx_fashion_mnist_class(truth));
        cx_canvas_text(&c, gx, ty, line, TS, BLACK);
        if (isnan(stn_acc)) snprintf(line, sizeof line, "STN-CNN: not trained");
        else snprintf(line, sizeof line, "STN-CNN: %s", cx_fashion_mnist_class(ps));
        cx_canvas_text(&c, gx, ty + LINE, line, TS, isnan(stn_acc) ? GREY : ps == truth ? GREEN : RED);
        if (isnan(cnn_acc)) snprintf(line, sizeof line, "CNN: not trained");
        else snprintf(line, sizeof line, "CNN: %s", cx_fashion_mnist_class(pc));
        cx_canvas_text(&c, gx, ty + 2 * LINE, line, TS, isnan(cnn_acc) ? GREY : pc == truth ? GREEN : RED);
    }
    cx_step_reset();
    int rc = 0;
    if (cx_canvas_save(&c, path) != CX_OK) {
        fprintf(stderr, "stn: cannot write the picture: %s\n", cx_last_error());
        rc = 1;
    } else {
        printf("wrote %s (%dx%d): %d test canvases, input | STN output\n", path, c.width, c.height, NSHOW);
    }
    cx_canvas_free(&c);
    return rc;
}

/* ------------------------------------------------------------ main */
static void usage(FILE *f) {
    fprintf(f, "usage: stn [--epochs N] [--train N] [--test N] [--batch B] [--lr LR] [--loc-lr-scale S]\n"
               "           [--init-zoom Z] [--view V] [--threads T] [--seed S] [--data-seed S] [--only cnn|stn]\n"
               "           [--data DIR] [--out PNG]\n");
}

/* One-line complaint about a flag's value; exit status 2. */
static int bad_flag(const char *flag, const char *v, const char *want) {
    fprintf(stderr, "stn: %s wants %s, got '%s' (stn --help for the flags)\n", flag, want, v);
    return 2;
}
static bool parse_int(const char *v, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) return false;
    *out = (int)x;
    return true;
}
static bool parse_u64(const char *v, unsigned long long *out) {
    char *end;
    errno = 0;
    if (*v == '-') return false;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end) return false;
    *out = x;
    return true;
}
static bool parse_pos(const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x > 0) || !isfinite(x)) return false;
    *out = x;
    return true;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *png = "out/stn.png", *only = NULL;
    int n_train = 30000, n_test = 10000, threads = 1;
    unsigned long long seed = 1, data_seed = 7;
    train_cfg cfg = {12, 64, 1e-3, 1.0f};
    float init_zoom = 2.0f;
    bool default_out = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const char *v = i + 1 < argc ? argv[++i] : NULL;
        bool known = true;
        double d = 0;
        if (!v) {
            if (a[0] == '-' && a[1] == '-') {
                fprintf(stderr, "stn: %s needs a value (stn --help for the flags)\n", a);
                return 2;
            }
            known = false;
        } else if (!strcmp(a, "--epochs")) {
            if (!parse_int(v, 1, 100000, &cfg.epochs)) return bad_flag(a, v, "a positive integer");
        } else if (!strcmp(a, "--train")) {
            if (!parse_int(v, 1, 100000000, &n_train)) return bad_flag(a, v, "a positive integer");
        } else if (!strcmp(a, "--test")) {
            if (!parse_int(v, 1, 100000000, &n_test)) return bad_flag(a, v, "a positive integer");
        } else if (!strcmp(a, "--batch")) {
            if (!parse_int(v, 1, 65536, &cfg.batch)) return bad_flag(a, v, "a positive integer");
        } else if (!strcmp(a, "--lr")) {
            if (!parse_pos(v, &d)) return bad_flag(a, v, "a positive number");
            cfg.lr = d;
        } else if (!strcmp(a, "--loc-lr-scale")) {
            if (!parse_pos(v, &d) || d > 100) return bad_flag(a, v, "a number in (0, 100]");
            cfg.loc_scale = (float)d;
        } else if (!strcmp(a, "--init-zoom")) {
            if (!parse_pos(v, &d) || d < 1 || d > 4) return bad_flag(a, v, "a number from 1 to 4");
            init_zoom = (float)d;
        } else if (!strcmp(a, "--view")) {
            if (!parse_int(v, 8, CANVAS, &VIEW)) return bad_flag(a, v, "an integer from 8 to 60");
        } else if (!strcmp(a, "--threads")) {
            if (!parse_int(v, 1, 1024, &threads)) return bad_flag(a, v, "a positive integer");
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(v, &seed)) return bad_flag(a, v, "a non-negative integer");
        } else if (!strcmp(a, "--data-seed")) {
            if (!parse_u64(v, &data_seed)) return bad_flag(a, v, "a non-negative integer");
        } else if (!strcmp(a, "--only")) {
            if (strcmp(v, "cnn") && strcmp(v, "stn")) return bad_flag(a, v, "cnn or stn");
            only = v;
        } else if (!strcmp(a, "--data")) {
            dir = v;
        } else if (!strcmp(a, "--out")) {
            png = v, default_out = false;
        } else {
            known = false;
        }
        if (!known) {
            fprintf(stderr, "stn: unknown argument '%s' (stn --help for the flags)\n", a);
            return 2;
        }
    }
    dir = cx_fashion_mnist_dir(dir);
    cx_set_threads(threads);

    cx_dataset src_train, src_test;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &src_train) != CX_OK) {
        fprintf(stderr, "stn: no Fashion-MNIST training set in %s: %s (give the IDX files' directory with --data)\n",
                dir, cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &src_test) != CX_OK) {
        fprintf(stderr, "stn: no Fashion-MNIST test set in %s: %s (give the IDX files' directory with --data)\n",
                dir, cx_last_error());
        cx_dataset_free(&src_train);
        return 1;
    }
    double t0 = cx_now();
    cx_distort_opts dopt = cx_distort_defaults();
    cx_dataset train, test;
    if (cx_distort_dataset(&src_train, n_train, &dopt, data_seed, &train) != CX_OK ||
        cx_distort_dataset(&src_test, n_test, &dopt, data_seed + 1, &test) != CX_OK) {
        fprintf(stderr, "stn: making the distorted canvases: %s\n", cx_last_error());
        return 1;
    }
    printf("data: %s; %d training canvases from %d training images (data seed %llu), %d test canvases from %d "
           "test images (seed %llu); %dx%d, rotation +-%g deg, scale %g-%g, %d clutter fragments of %dx%d; "
           "made in %.1f s\n",
           dir, n_train, cx_dataset_len(&src_train), data_seed, n_test, cx_dataset_len(&src_test), data_seed + 1,
           dopt.canvas, dopt.canvas, dopt.max_angle, dopt.min_scale, dopt.max_scale, dopt.n_clutter,
           dopt.fragment, dopt.fragment, cx_now() - t0);
    cx_dataset_free(&src_train);
    cx_dataset_free(&src_test);
    /* the same CNN (same seed, so the same initial weights) in both models */
    cx_seed(seed);
    model cnn = {cx_sequential_new()};
    cx_sequential_add(cnn.net, "view", cx_upsample_size_new(CX_UPSAMPLE_BILINEAR, VIEW, VIEW, false));
    cx_sequential_add(cnn.net, "cnn", cnn_new());
    cx_seed(seed);
    cx_module *cnn2 = cnn_new();
    cx_module *stn = cx_stn_new(loc_new(), 32, VIEW, VIEW, false);
    /* fc_loc starts at weight 0 (cx_stn_new) and bias (1/z, 0, 0, 0, 1/z, 0):
     * every canvas read through the same centred square, z times smaller
     * than the canvas (z = 1: the identity) */
    float *fb = CX_F(cx_linear_bias(cx_stn_fc_loc(stn)));
    fb[0] = fb[4] = 1.0f / init_zoom;
    model stnm = {cx_sequential_new()};
    cx_sequential_add(stnm.net, "stn", stn);
    cx_sequential_add(stnm.net, "cnn", cnn2);

    double s_cnn = 0, c_cnn = 0, a_cnn = NAN, s_stn = 0, c_stn = 0, a_stn = NAN;
    int rc = 0;
    if (!only || !strcmp(only, "cnn")) {
        cx_seed(seed + 100); /* the shuffling */
        rc |= train_model("cnn", &cnn, NULL, &train, &test, &cfg, &s_cnn, &c_cnn, &a_cnn);
    }
    if (!only || !strcmp(only, "stn")) {
        cx_seed(seed + 100);
        rc |= train_model("stn-cnn", &stnm, stn, &train, &test, &cfg, &s_stn, &c_stn, &a_stn);
    }
    printf("STN threads=%d train=%d test=%d epochs=%d cnn_test_acc=%.4f stn_test_acc=%.4f cnn_sec=%.1f "
           "stn_sec=%.1f cnn_cpu=%.1f stn_cpu=%.1f\n",
           cx_get_threads(), n_train, n_test, cfg.epochs, a_cnn, a_stn, s_cnn, s_stn, c_cnn, c_stn);
    if (!rc) {
        if (default_out) mkdir("out", 0777);
        rc |= write_picture(png, &stnm, &cnn, &test, &dopt, a_stn, a_cnn);
    }
    cx_module_free(cnn.net);
    cx_module_free(stnm.net);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return rc;
}
