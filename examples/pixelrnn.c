/* Case study: a PixelRNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016,
 * Row LSTM variant) models binarised Fashion-MNIST images pixel by pixel:
 * p(x) = prod over pixels in raster order of p(x_i | x_1 .. x_{i-1}).
 *
 *   build/<variant>/examples/pixelrnn [--data DIR | --subset] [--train 60000]
 *       [--test 10000] [--epochs 2] [--hidden 32] [--layers 2] [--batch 32]
 *       [--lr 2e-3] [--seed 1] [--samples 16] [--out-dir out/pixelrnn]
 *
 * Data: Fashion-MNIST (Debian's /usr/share/datasets/fashion-mnist, else the
 * shipped subset), binarised deterministically: pixel = 1 if its intensity
 * (scaled to [0, 1]) is > 0.5, else 0. The first --train training images and
 * the first --test test images are used.
 *
 * Model (cx_pixelrnn_new, see cortex/rnn.h): a 7x7 mask-A convolution
 * (1 -> h), --layers Row-LSTM layers (1x3 mask-B input-to-state convolution,
 * 1-D k=3 state-to-state convolution over the row above, rows top to bottom)
 * each with a residual connection through a 1x1 convolution, then two 1x1
 * convolutions (ReLU between) to one logit per pixel: a Bernoulli per pixel.
 * Loss: the negative log-likelihood in nats per image (the sum of the 784
 * per-pixel binary cross-entropies); bits/dim = nats / (784 ln 2).
 * Baseline: independent Bernoulli pixels with the training set's marginals
 * (Laplace-smoothed counts (k + 1) / (n + 2)).
 *
 * Training: Adam, gradient-norm clipping at 10, --epochs passes over the
 * shuffled subset; after every epoch the NLL on the first 1,000 test images,
 * after the last one on all --test images (the reported figure). The
 * defaults (60,000 images, 2 epochs, h = 32, 2 layers) trained in 793 s of
 * wall-clock time on one thread of a loaded shared 2-core machine, reaching
 * a test NLL of 101.8 nats/image (0.187 bits/dim; the independent-pixel
 * baseline: 383.1 nats, 0.705 bits/dim); --train 20000 --layers 1 takes
 * about 2 minutes (112.0 nats). Then pictures in --out-dir (created with its
 * parents if missing; docs/img's are from the defaults with --out-dir docs/img):
 *   pixelrnn_samples.png      --samples images drawn pixel by pixel
 *   pixelrnn_completions.png  8 test images: the original, the top half
 *                             given, 3 sampled bottom halves
 * and one machine-readable line starting "PIXELRNN ". A picture that cannot
 * be written: a message and exit status 1.
 * Seeds: --seed S seeds the weights and the shuffling (cx_seed(S)); sampling
 * draws from cx_rng_new(S + 1000) (samples) and S + 2000 (completions).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cortex.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void) {
    fprintf(stderr, "usage: pixelrnn [--data DIR | --subset] [--train N] [--test N] [--epochs E]\n"
                    "                [--hidden H] [--layers L] [--batch B] [--lr LR] [--seed S]\n"
                    "                [--samples K] [--out-dir DIR]\n");
    return 2;
}

/* x [N, 784] in [0, 1] -> 0 / 1 in place */
static void binarise(cx_tensor *x) {
    float *d = CX_F(x);
    for (int64_t i = 0; i < x->numel; i++) d[i] = d[i] > 0.5f ? 1.0f : 0.0f;
}

/* Mean test NLL (nats per image) of the model over images [n, 784]. */
static double eval_nll(cx_module *m, const cx_tensor *x, int n) {
    double total = 0;
    cx_no_grad_begin();
    for (int i = 0; i < n; i += 100) {
        int b = n - i < 100 ? n - i : 100;
        cx_tensor *xb = cx_wrap(CX_F(x) + (size_t)i * 784, CX_SHAPE(b, 1, 28, 28));
        total += (double)cx_item(cx_pixelrnn_nll(m, xb)) * b;
        cx_step_reset();
    }
    cx_no_grad_end();
    return total / n;
}

/* Draw binary 28x28 images (cells of `cell` pixels, 1 = white) in a grid
 * starting at (x0, y0), `cols` per row, gap `gap`. */
static void draw_images(cx_canvas *c, int x0, int y0, const float *imgs, int n, int cols, int cell, int gap) {
    for (int k = 0; k < n; k++) {
        int x = x0 + (k % cols) * (28 * cell + gap), y = y0 + (k / cols) * (28 * cell + gap);
        cx_canvas_image(c, x, y, imgs + (size_t)k * 784, 28, 28, cell, cell, 0.0f, 1.0f, CX_CMAP_GRAY);
    }
}


/* Save a picture: "wrote PATH", or the error and false. */
static bool save_picture(const cx_canvas *c, const char *path) {
    if (!c->pixels || cx_canvas_save(c, path) != CX_OK) {
        fprintf(stderr, "pixelrnn: cannot write %s: %s\n", path, cx_last_error());
        return false;
    }
    printf("wrote %s\n", path);
    return true;
}

static const uint8_t BLACK[3] = {0, 0, 0}, RED[3] = {200, 30, 30};

int main(int argc, char **argv) {
    const char *subset = "data/fashion-mnist-subset", *dir = cx_fashion_mnist_dir(NULL), *out_dir = "out/pixelrnn";
    int n_train = 60000, n_test = 10000, epochs = 2, hidden = 32, layers = 2, batch = 32, n_samples = 16;
    double lr = 2e-3;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--subset")) { dir = subset; continue; }
        if (!v) return usage();
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--train")) n_train = atoi(v);
        else if (!strcmp(a, "--test")) n_test = atoi(v);
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--hidden")) hidden = atoi(v);
        else if (!strcmp(a, "--layers")) layers = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--samples")) n_samples = atoi(v);
        else if (!strcmp(a, "--out-dir")) out_dir = v;
        else {
            fprintf(stderr, "pixelrnn: unknown option %s\n", a);
            return usage();
        }
        i++;
    }
    if (n_train < 1 || n_test < 1 || epochs < 0 || hidden < 1 || layers < 1 || batch < 1 || !(lr > 0) ||
        n_samples < 1 || n_samples > 64) {
        fprintf(stderr, "pixelrnn: train, test, hidden, layers, batch, lr must be positive, epochs >= 0, "
                        "samples 1..64\n");
        return usage();
    }
    /* before the training: a directory that cannot be made fails at once */
    if (cx_mkdirs(out_dir) != CX_OK) {
        fprintf(stderr, "pixelrnn: %s\n", cx_last_error());
        return 1;
    }
    cx_seed(seed);

    cx_dataset train, test;
    if (cx_dataset_load_idx_dir(dir, "train", n_train, &train) != CX_OK) {
        fprintf(stderr, "pixelrnn: %s\n(give a directory with the Fashion-MNIST IDX files with --data)\n",
                cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", n_test, &test) != CX_OK) {
        fprintf(stderr, "pixelrnn: %s\n", cx_last_error());
        cx_dataset_free(&train);
        return 1;
    }
    if (train.x->shape[1] != 784 || test.x->shape[1] != 784) {
        fprintf(stderr, "pixelrnn: expected 28x28 images, got %d pixels\n", train.x->shape[1]);
        cx_dataset_free(&train);
        cx_dataset_free(&test);
        return 1;
    }
    n_train = cx_dataset_len(&train);
    n_test = cx_dataset_len(&test);
    binarise(train.x);
    binarise(test.x);
    printf("data: %s, %d train / %d test images, binarised at 0.5\n", dir, n_train, n_test);

    /* baseline: independent pixels with the training marginals */
    double base = 0, on = 0;
    {
        double *p = calloc(784, sizeof(double));
        for (int i = 0; i < n_train; i++)
            for (int j = 0; j < 784; j++) p[j] += CX_F(train.x)[(size_t)i * 784 + (size_t)j];
        for (int j = 0; j < 784; j++) on += p[j], p[j] = (p[j] + 1.0) / (n_train + 2.0);
        for (int i = 0; i < n_test; i++)
            for (int j = 0; j < 784; j++)
                base -= CX_F(test.x)[(size_t)i * 784 + (size_t)j] > 0.5f ? log(p[j]) : log1p(-p[j]);
        base /= n_test;
        free(p);
    }
    const double LN2 = log(2.0);
    printf("training pixels on: %.1f%%\n", 100.0 * on / (784.0 * n_train));
    printf("baseline (independent Bernoulli pixels, training marginals): test NLL %.2f nats/image, %.4f bits/dim\n",
           base, base / (784 * LN2));

    cx_module *m = cx_pixelrnn_new(hidden, layers);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    printf("model: PixelRNN, Row LSTM h=%d, %d layer(s): %lld parameters\n", hidden, layers,
           (long long)cx_params_count(&ps));
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_loader *ld = cx_loader_new(&train, batch, true, false);
    printf("training: Adam lr %g, batch %d, clip 10, %d epoch(s), %d thread(s), seed %lu\n", lr, batch, epochs,
           cx_get_threads(), seed);
    fflush(stdout);

    double t0 = now(), test_nll = NAN;
    for (int e = 1; e <= epochs; e++) {
        cx_loader_reset(ld);
        cx_tensor *xb, *yb;
        double sum = 0, te = now();
        int seen = 0, step = 0;
        while (cx_loader_next(ld, &xb, &yb)) {
            int b = xb->shape[0];
            cx_tensor *x = cx_reshape(xb, CX_SHAPE(b, 1, 28, 28));
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_pixelrnn_nll(m, x);
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 10.0f);
            cx_optim_step(opt);
            sum += (double)cx_item(loss) * b;
            seen += b;
            cx_step_reset();
            if (++step % 100 == 0) {
                printf("  epoch %d step %d: train NLL %.2f nats (%.0f s)\n", e, step, sum / seen, now() - te);
                fflush(stdout);
            }
        }
        double tt = now();
        int ne = e == epochs ? n_test : (n_test < 1000 ? n_test : 1000);
        test_nll = eval_nll(m, test.x, ne);
        printf("epoch %d/%d  train NLL %.2f  test NLL %.2f nats/image (%.4f bits/dim, %d images)  train %.0f s, "
               "eval %.0f s\n", e, epochs, sum / seen, test_nll, test_nll / (784 * LN2), ne, tt - te, now() - tt);
        fflush(stdout);
    }
    if (epochs == 0) test_nll = eval_nll(m, test.x, n_test);
    double train_s = now() - t0;

    /* samples from scratch */
    double ts = now();
    char path[1024], title[256];
    int status = 0;
    cx_tensor *smp = cx_tensor_new(CX_F32, CX_SHAPE(n_samples, 1, 28, 28));
    cx_rng rs = cx_rng_new(seed + 1000);
    cx_pixelrnn_sample(m, smp, 0, &rs);
    int cell = 3, gap = 6, cols = n_samples < 8 ? n_samples : 8, rows = (n_samples + cols - 1) / cols;
    int iw = 28 * cell;
    {
        cx_canvas c;
        snprintf(title, sizeof title, "PixelRNN samples (Row LSTM h=%d, %d layer%s), binarised Fashion-MNIST",
                 hidden, layers, layers > 1 ? "s" : "");
        int W = 20 + cols * (iw + gap), H = 58 + rows * (iw + gap) + 10;
        if (W < 20 + cx_text_width(title, 2)) W = 20 + cx_text_width(title, 2);
        snprintf(path, sizeof path, "%s/pixelrnn_samples.png", out_dir);
        if (cx_canvas_init(&c, W, H, NULL) == CX_OK) {
            cx_canvas_text(&c, 10, 8, title, 2, BLACK);
            snprintf(title, sizeof title, "drawn pixel by pixel, test NLL %.1f nats/image (%.3f bits/dim), seed %lu",
                     test_nll, test_nll / (784 * LN2), seed);
            cx_canvas_text(&c, 10, 32, title, 1, BLACK);
            draw_images(&c, 10, 50, CX_F(smp), n_samples, cols, cell, gap);
        }
        if (!save_picture(&c, path)) status = 1;
        cx_canvas_free(&c);
    }
    /* completions: the top 14 rows of 8 test images given, the bottom drawn */
    int nc = n_test < 8 ? n_test : 8, nk = 3;
    cx_tensor *cmp = cx_tensor_new(CX_F32, CX_SHAPE(nc * nk, 1, 28, 28));
    for (int k = 0; k < nk; k++)
        memcpy(CX_F(cmp) + (size_t)k * nc * 784, CX_F(test.x), sizeof(float) * (size_t)nc * 784);
    cx_rng rc = cx_rng_new(seed + 2000);
    cx_pixelrnn_sample(m, cmp, 14 * 28, &rc);
    double sample_s = now() - ts;
    {
        int lab = 110, W = lab + nc * (iw + gap) + 10, H = 58 + (2 + nk) * (iw + gap) + 10;
        cx_canvas c;
        snprintf(path, sizeof path, "%s/pixelrnn_completions.png", out_dir);
        if (cx_canvas_init(&c, W, H, NULL) == CX_OK) {
            cx_canvas_text(&c, 10, 8, "PixelRNN completions: bottom half drawn given the top half", 2, BLACK);
            snprintf(title, sizeof title, "8 binarised Fashion-MNIST test images, Row LSTM h=%d, %d layer%s, seed %lu",
                     hidden, layers, layers > 1 ? "s" : "", seed);
            cx_canvas_text(&c, 10, 32, title, 1, BLACK);
            cx_canvas_text(&c, W - 10 - cx_text_width("red ticks: end of the given rows (14 of 28)", 1), 32,
                           "red ticks: end of the given rows (14 of 28)", 1, RED);
            float *occ = malloc(sizeof(float) * (size_t)nc * 784);
            memcpy(occ, CX_F(test.x), sizeof(float) * (size_t)nc * 784);
            for (int k = 0; k < nc; k++)
                for (int j = 14 * 28; j < 784; j++) occ[(size_t)k * 784 + (size_t)j] = 0.5f;
            const char *labels[5] = {"original", "top half", "completion 1", "completion 2", "completion 3"};
            for (int r = 0; r < 2 + nk; r++) {
                int y = 50 + r * (iw + gap);
                cx_canvas_text(&c, 6, y + iw / 2 - 4, labels[r], 1, BLACK);
                const float *src = r == 0 ? CX_F(test.x) : r == 1 ? occ : CX_F(cmp) + (size_t)(r - 2) * nc * 784;
                draw_images(&c, lab, y, src, nc, nc, cell, gap);
                if (r >= 1) /* ticks where the given half ends */
                    for (int k = 0; k < nc; k++) {
                        int x = lab + k * (iw + gap);
                        cx_canvas_line(&c, x - 5, y + 14 * cell, x - 1, y + 14 * cell, RED, 1);
                        cx_canvas_line(&c, x + iw, y + 14 * cell, x + iw + 4, y + 14 * cell, RED, 1);
                    }
            }
            free(occ);
        }
        if (!save_picture(&c, path)) status = 1;
        cx_canvas_free(&c);
    }
    printf("sampling: %d images + %d completions in %.0f s\n", n_samples, nc * nk, sample_s);
    printf("PIXELRNN variant=row_lstm hidden=%d layers=%d train=%d test=%d epochs=%d batch=%d lr=%g seed=%lu "
           "binarise=threshold0.5 test_nll_nats=%.3f test_bits_per_dim=%.5f baseline_nats=%.3f "
           "baseline_bits_per_dim=%.5f train_seconds=%.0f threads=%d\n",
           hidden, layers, n_train, n_test, epochs, batch, lr, seed, test_nll, test_nll / (784 * LN2), base,
           base / (784 * LN2), train_s, cx_get_threads());

    cx_tensor_free(smp);
    cx_tensor_free(cmp);
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return status;
}
