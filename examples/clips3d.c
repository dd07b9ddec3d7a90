/* 3-D convolution over stacked frames (course section 3: Ji, Xu, Yang & Yu,
 * "3D Convolutional Neural Networks for Human Action Recognition", TPAMI
 * 2013): a kernel that also spans time sees motion, which no single frame
 * shows.
 *
 * The task. A clip is 8 frames of 24x24 pixels: a Fashion-MNIST item, shrunk
 * to 14x14 (2x2 averaging), moves in a straight line on an empty canvas in one
 * of 8 directions (E, NE, N, NW, W, SW, S, SE: 45 degrees apart) by 1 or 2
 * pixels per frame along each moving axis (the speed is random and is not part
 * of the label). Label = direction, chance = 12.5%. The item starts anywhere
 * it fits completely (top-left corner uniform in [0, 10]^2) whatever the
 * direction, so the first frame says nothing about the label; later frames may
 * push it partly off the canvas (it is clipped). Training clips are drawn
 * afresh every step from the training images; the test clips are made once
 * from the held-out test images.
 *
 * Three models, the same width, trained the same way (Adam 1e-3, batches of
 * 32 clips, cross-entropy):
 *   3-D CNN   x [N, 1, 8, 24, 24]:
 *               conv3d 3x3x3 1->8 (pad 1), ReLU, maxpool3d 2  -> [8, 4, 12, 12]
 *               conv3d 3x3x3 8->16 (pad 1), ReLU, maxpool3d 2 -> [16, 2, 6, 6]
 *               flatten (1152), linear -> 8
 *   2-D CNN on the first frame only, x [N, 1, 24, 24]:
 *               conv2d 3x3 1->8, ReLU, maxpool 2, conv2d 3x3 8->16, ReLU,
 *               maxpool 2, flatten (576), linear -> 8
 *             It cannot beat chance: the first frame is independent of the
 *             direction by construction. It is the control showing that the
 *             temporal dimension carries the label.
 *   2-D CNN on the 8 frames stacked as channels ("early fusion"), x [N, 8,
 *             24, 24]: the same 2-D net with 8 input channels. Its first
 *             layer spans all frames at once, so it also sees motion --
 *             included for comparison with the 3-D kernels, which share their
 *             weights across time instead.
 *
 * Run (from the repository root):
 *   build/<variant>/examples/clips3d [--steps 400] [--batch 32] [--test 1000]
 *       [--seed 1] [--threads 1] [--data DIR]
 * One thread by default (these small convolutions gain little from more, and
 * one thread is the fair setting on a shared machine); --threads N uses N.
 * Data: --data, else /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist) if present, else data/fashion-mnist-subset.
 * Exit status: 0 on success, 1 if the data is missing, 2 on a bad flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>

enum { T = 8, SIDE = 24, ITEM = 14, NDIR = 8, MAX_START = SIDE - ITEM };

/* Direction d: unit steps (dx, dy) in image coordinates (y grows downwards),
 * counter-clockwise from east. */
static const int DX[NDIR] = {1, 1, 0, -1, -1, -1, 0, 1};
static const int DY[NDIR] = {0, -1, -1, -1, 0, 1, 1, 1};
static const char *DIR_NAMES[NDIR] = {"E", "NE", "N", "NW", "W", "SW", "S", "SE"};

/* ------------------------------------------------------------ data */

/* Load "<dir>/<prefix>-*" (at most max_items) and shrink every image to
 * ITEM x ITEM by 2x2 averaging: *items F32 [N, ITEM*ITEM] (persistent), labels
 * unused. */
static cx_status load_items(const char *dir, const char *prefix, int max_items,
                            cx_tensor **items) {
    cx_dataset d;
    cx_status st = cx_dataset_load_idx_dir(dir, prefix, max_items, &d);
    if (st != CX_OK) return st;
    int n = cx_dataset_len(&d);
    cx_tensor *out = cx_tensor_new(CX_F32, CX_SHAPE(n, ITEM * ITEM));
    for (int i = 0; i < n; i++) {
        const float *src = CX_F(d.x) + (size_t)i * 28 * 28;
        float *dst = CX_F(out) + (size_t)i * ITEM * ITEM;
        for (int r = 0; r < ITEM; r++)
            for (int c = 0; c < ITEM; c++)
                dst[r * ITEM + c] = 0.25f * (src[(2 * r) * 28 + 2 * c] + src[(2 * r) * 28 + 2 * c + 1] +
                                             src[(2 * r + 1) * 28 + 2 * c] +
                                             src[(2 * r + 1) * 28 + 2 * c + 1]);
    }
    cx_dataset_free(&d);
    *items = out;
    return CX_OK;
}

/* Fill clip x [T, SIDE, SIDE] with a random item moving in a random
 * direction; returns the direction. */
static int make_clip(const cx_tensor *items, float *x) {
    int idx = (int)cx_rand_below((uint32_t)items->shape[0]);
    int d = (int)cx_rand_below(NDIR);
    int speed = 1 + (int)cx_rand_below(2);
    int x0 = (int)cx_rand_below(MAX_START + 1), y0 = (int)cx_rand_below(MAX_START + 1);
    const float *img = CX_F(items) + (size_t)idx * ITEM * ITEM;
    memset(x, 0, sizeof(float) * T * SIDE * SIDE);
    for (int t = 0; t < T; t++) {
        int ox = x0 + t * speed * DX[d], oy = y0 + t * speed * DY[d];
        float *frame = x + (size_t)t * SIDE * SIDE;
        for (int r = 0; r < ITEM; r++) {
            int yy = oy + r;
            if (yy < 0 || yy >= SIDE) continue;
            for (int c = 0; c < ITEM; c++) {
                int xx = ox + c;
                if (xx >= 0 && xx < SIDE) frame[yy * SIDE + xx] = img[r * ITEM + c];
            }
        }
    }
    return d;
}

/* x [N, 1, T, SIDE, SIDE], y [N] */
static void make_batch(const cx_tensor *items, cx_tensor *x, cx_tensor *y) {
    for (int n = 0; n < x->shape[0]; n++)
        CX_I32P(y)[n] = make_clip(items, CX_F(x) + (size_t)n * T * SIDE * SIDE);
}

/* ------------------------------------------------------------ models */

typedef enum { M_3D, M_FIRST_FRAME, M_STACKED } model_kind;
static const char *MODEL_NAMES[3] = {"3-D CNN (8 frames)", "2-D CNN (first frame only)",
                                     "2-D CNN (frames as channels)"};

static cx_module *build(model_kind kind) {
    cx_module *net = cx_sequential_new();
    if (kind == M_3D) {
        cx_conv_opts o = cx_conv_defaults();
        o.padding[0] = o.padding[1] = o.padding[2] = 1;
        cx_sequential_add(net, "conv1", cx_conv3d_new(1, 8, 3, 3, 3, &o, true));
        cx_sequential_add(net, "relu1", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(net, "pool1", cx_maxpool3d_new(2, 2, 0));
        cx_sequential_add(net, "conv2", cx_conv3d_new(8, 16, 3, 3, 3, &o, true));
        cx_sequential_add(net, "relu2", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(net, "pool2", cx_maxpool3d_new(2, 2, 0));
        cx_sequential_add(net, "flatten", cx_flatten_new());
        cx_sequential_add(net, "fc", cx_linear_new(16 * (T / 4) * (SIDE / 4) * (SIDE / 4), NDIR, true));
    } else {
        cx_conv_opts o = cx_conv_defaults();
        o.padding[0] = o.padding[1] = 1;
        int in = kind == M_STACKED ? T : 1;
        cx_sequential_add(net, "conv1", cx_conv2d_new(in, 8, 3, 3, &o, true));
        cx_sequential_add(net, "relu1", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(net, "pool1", cx_maxpool2d_new(2, 2, 0));
        cx_sequential_add(net, "conv2", cx_conv2d_new(8, 16, 3, 3, &o, true));
        cx_sequential_add(net, "relu2", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(net, "pool2", cx_maxpool2d_new(2, 2, 0));
        cx_sequential_add(net, "flatten", cx_flatten_new());
        cx_sequential_add(net, "fc", cx_linear_new(16 * (SIDE / 4) * (SIDE / 4), NDIR, true));
    }
    return net;
}

/* What each model sees of a batch of clips x [N, 1, T, SIDE, SIDE]. */
static cx_tensor *model_input(model_kind kind, cx_tensor *x) {
    int n = x->shape[0];
    switch (kind) {
    case M_3D: return x;
    case M_FIRST_FRAME: /* frame 0 of every clip: [N, 1, 1, S, S] -> [N, 1, S, S] */
        return cx_reshape(cx_slice(x, 2, 0, 1, 1), CX_SHAPE(n, 1, SIDE, SIDE));
    case M_STACKED: return cx_reshape(x, CX_SHAPE(n, T, SIDE, SIDE));
    }
    return x;
}

/* A cx_forward_fn: the model and what it sees of the clips. */
typedef struct {
    cx_module *net;
    model_kind kind;
} model_ref;

static cx_tensor *forward_clips(void *user, cx_tensor *x) {
    model_ref *m = user;
    return cx_module_forward(m->net, model_input(m->kind, x));
}

/* Test accuracy and the per-direction confusion (conf[true * NDIR + pred]):
 * the library's classifier evaluation, batches of 200 clips. */
static double evaluate(cx_module *net, model_kind kind, const cx_tensor *X, const cx_tensor *Y,
                       int64_t conf[NDIR * NDIR]) {
    model_ref m = {net, kind};
    cx_dataset d = {(cx_tensor *)X, (cx_tensor *)Y, false};
    cx_classifier_result r;
    if (cx_classifier_eval(forward_clips, &m, &d, 200, conf, NDIR, &r) != CX_OK) cx_fatal("%s", cx_last_error());
    return r.accuracy;
}

typedef struct {
    double acc, seconds, last_loss;
    int64_t params;
    int64_t conf[NDIR * NDIR];
} run_result;

static run_result train_eval(model_kind kind, const cx_tensor *train_items, const cx_tensor *Xt,
                             const cx_tensor *Yt, int steps, int batch) {
    run_result r;
    cx_module *net = build(kind);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    r.params = cx_params_count(&ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 1e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_tensor *Xb = cx_tensor_new(CX_F32, CX_SHAPE(batch, 1, T, SIDE, SIDE));
    cx_tensor *Yb = cx_tensor_new(CX_I32, CX_SHAPE(batch));
    printf("\n%s, %lld parameters\n", MODEL_NAMES[kind], (long long)r.params);
    double t0 = cx_now(), run = 0;
    int run_n = 0;
    r.last_loss = 0;
    for (int s = 0; s < steps; s++) {
        make_batch(train_items, Xb, Yb);
        cx_optim_zero_grad(opt);
        cx_tensor *loss =
            cx_cross_entropy(cx_module_forward(net, model_input(kind, Xb)), Yb, CX_REDUCE_MEAN);
        cx_backward(loss);
        cx_optim_step(opt);
        run += cx_item(loss);
        run_n++;
        cx_step_reset();
        if ((s + 1) % 100 == 0 || s + 1 == steps) {
            r.last_loss = run / run_n;
            printf("  step %4d  loss %.4f  (%.1f s)\n", s + 1, r.last_loss, cx_now() - t0);
            fflush(stdout);
            run = 0;
            run_n = 0;
        }
    }
    r.seconds = cx_now() - t0;
    r.acc = evaluate(net, kind, Xt, Yt, r.conf);
    printf("  test accuracy %.2f%% (chance 12.50%%), trained in %.1f s\n", 100 * r.acc, r.seconds);
    cx_tensor_free(Xb);
    cx_tensor_free(Yb);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net);
    return r;
}

/* ------------------------------------------------------------ main */

static int usage(void) {
    fprintf(stderr, "usage: clips3d [--steps N] [--batch B] [--test N] [--seed S] "
                    "[--threads T] [--data DIR]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int steps = 400, batch = 32, n_test = 1000, threads = 1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--test")) n_test = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--data")) dir = v;
        else return usage();
    }
    if (steps < 0 || batch < 1 || n_test < 1) return usage();
    dir = cx_fashion_mnist_dir(dir);
    cx_set_threads(threads);
    cx_seed(seed); /* clips, initial weights: all randomness comes from here */
    double t_start = cx_now();

    cx_tensor *train_items = NULL, *test_items = NULL;
    if (load_items(dir, "train", 20000, &train_items) != CX_OK) {
        fprintf(stderr,
                "clips3d: cannot load Fashion-MNIST from %s: %s\n"
                "  (install dataset-fashion-mnist, run from the repository root so that "
                "data/fashion-mnist-subset is found, or pass --data DIR)\n",
                dir, cx_last_error());
        return 1;
    }
    if (load_items(dir, "t10k", 0, &test_items) != CX_OK) {
        fprintf(stderr, "clips3d: cannot load the Fashion-MNIST test split from %s: %s\n", dir,
                cx_last_error());
        cx_tensor_free(train_items);
        return 1;
    }
    cx_tensor *Xt = cx_tensor_new(CX_F32, CX_SHAPE(n_test, 1, T, SIDE, SIDE));
    cx_tensor *Yt = cx_tensor_new(CX_I32, CX_SHAPE(n_test));
    make_batch(test_items, Xt, Yt);
    int count[NDIR] = {0}, most = 0;
    for (int i = 0; i < n_test; i++) count[CX_I32P(Yt)[i]]++;
    for (int d = 0; d < NDIR; d++) most = count[d] > most ? count[d] : most;
    printf("Direction of motion from clips: %d frames of %dx%d, a %dx%d Fashion-MNIST item (%s)\n"
           "moving 1-2 px/frame in one of %d directions; %d test clips from test images\n"
           "%d steps x %d clips per model, Adam 1e-3, %d thread(s)\n",
           T, SIDE, SIDE, ITEM, ITEM, dir, NDIR, n_test, steps, batch, cx_get_threads());

    run_result r[3];
    for (int k = 0; k < 3; k++) r[k] = train_eval((model_kind)k, train_items, Xt, Yt, steps, batch);

    printf("\nSummary (test accuracy; chance 12.50%%, always guessing the most frequent test "
           "direction %.2f%%):\n",
           100.0 * most / n_test);
    for (int k = 0; k < 3; k++)
        printf("  %-30s %6.2f%%   %6lld params  %5.1f s\n", MODEL_NAMES[k], 100 * r[k].acc,
               (long long)r[k].params, r[k].seconds);
    printf("3-D CNN per-direction recall:");
    for (int d = 0; d < NDIR; d++) {
        int tot = 0;
        for (int p = 0; p < NDIR; p++) tot += (int)r[M_3D].conf[d * NDIR + p];
        printf(" %s %.0f%%", DIR_NAMES[d], tot ? 100.0 * (double)r[M_3D].conf[d * NDIR + d] / tot : 0.0);
    }
    printf("\ntotal %.1f s\n", cx_now() - t_start);

    cx_tensor_free(Xt);
    cx_tensor_free(Yt);
    cx_tensor_free(train_items);
    cx_tensor_free(test_items);
    return 0;
}
