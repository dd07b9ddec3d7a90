/* Universal approximation on 2-D toy data (course: MLPs).
 *
 *   1. XOR: four noisy clouds whose labels no straight line separates. A
 *      linear model (no hidden layer) stays near chance; a 2-layer net
 *      (one hidden tanh layer of 8 units) solves it.
 *   2. Two spirals: 2 classes x 500 noisy points winding 2 turns around
 *      each other. An MLP 2 -> 64 -> 64 -> 2 (tanh) trained full-batch with
 *      Adam and cross-entropy fits the boundary (>= 98% training accuracy).
 *   3. A picture of what the spiral net learned: a 400x400 PNG of the plane,
 *      each pixel coloured by the predicted class (blue = class 0, orange =
 *      class 1) with the softmax confidence as brightness (dark = unsure,
 *      i.e. the decision boundary), and the training points drawn on top.
 *
 * Run:  build/<variant>/examples/spirals [out.png] [seed]
 *       (default out/spirals.png, seed 1; the PNG is written atomically)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

/* ------------------------------------------------------------ data sets */

/* Two interleaved spirals: point i of class k at radius r = 0.05 + 0.95 t and
 * angle 2 turns * t + k * pi, t uniform in [0, 1] (area-uniform would
 * crowd the outside), plus Gaussian noise of std `noise`. X [N, 2], y [N]. */
static void make_spirals(cx_tensor *X, cx_tensor *y, int per_class, float noise) {
    const float turns = 2.0f, two_pi = 6.283185307f;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < per_class; i++) {
            int n = k * per_class + i;
            float t = cx_rand_uniform();
            float r = 0.05f + 0.95f * t;
            float a = turns * two_pi * t + (float)k * 3.14159265f;
            CX_F(X)[2 * n] = r * cosf(a) + noise * cx_rand_normal();
            CX_F(X)[2 * n + 1] = r * sinf(a) + noise * cx_rand_normal();
            CX_I32P(y)[n] = k;
        }
}

/* Noisy XOR: clouds of std `noise` around (+-1, +-1); class 1 when the two
 * coordinates of the centre have different signs. */
static void make_xor(cx_tensor *X, cx_tensor *y, int per_cloud, float noise) {
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < per_cloud; i++) {
            int n = c * per_cloud + i;
            float cx = (c & 1) ? 1.0f : -1.0f, cy = (c & 2) ? 1.0f : -1.0f;
            CX_F(X)[2 * n] = cx + noise * cx_rand_normal();
            CX_F(X)[2 * n + 1] = cy + noise * cx_rand_normal();
            CX_I32P(y)[n] = (cx > 0) != (cy > 0);
        }
}

/* ------------------------------------------------------------ training */

/* Fraction of rows of X whose argmax logit equals y: the library's classifier
 * evaluation over the whole set in one batch (no graph, eval mode). */
static double accuracy(cx_module *net, cx_tensor *X, const cx_tensor *y) {
    cx_dataset d = {X, (cx_tensor *)y, false};
    cx_classifier_result r;
    if (cx_classifier_eval(cx_forward_module, net, &d, X->shape[0], NULL, 0, &r) != CX_OK) cx_fatal("%s", cx_last_error());
    return r.accuracy;
}

/* Full-batch Adam on the cross-entropy. Prints a line every `every` steps
 * (0: silent). Returns the final training loss. (A plain loop, not the
 * trainer: one in-memory batch, a fixed number of steps, no epochs.) */
static double train(cx_module *net, cx_tensor *X, const cx_tensor *y, double lr, int steps,
                    int every) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_adam_opts o = cx_adam_defaults();
    o.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &o);
    double last = NAN;
    for (int s = 1; s <= steps; s++) {
        cx_optim_zero_grad(opt);
        cx_tensor *loss = cx_cross_entropy(cx_module_forward(net, X), y, CX_REDUCE_MEAN);
        cx_backward(loss);
        cx_optim_step(opt);
        last = cx_item(loss);
        cx_step_reset(); /* frees this step's activations, graph and gradients */
        if (every > 0 && (s % every == 0 || s == 1)) {
            /* the loss printed is the one before this step's update */
            printf("   step %5d  loss %.4f  train acc %.2f%%\n", s, last,
                   100.0 * accuracy(net, X, y));
            fflush(stdout);
        }
    }
    cx_optim_free(opt);
    cx_params_free(&ps);
    return last;
}

/* ------------------------------------------------------------ PNG */

/* Write an 8-bit RGB image atomically with the library's PNG writer
 * (temporary file, fsync, rename; an existing file survives any error). */
static int write_png(const char *path, const unsigned char *rgb, int w, int h) {
    if (cx_png_write_rgb(path, rgb, w, h) != CX_OK) {
        fprintf(stderr, "%s: cannot write PNG: %s\n", "spirals", cx_last_error());
        return 1;
    }
    return 0;
}

static void put_pixel(unsigned char *rgb, int w, int h, int px, int py, const unsigned char c[3]) {
    if (px < 0 || py < 0 || px >= w || py >= h) return;
    memcpy(rgb + ((size_t)py * w + px) * 3, c, 3);
}

/* Disk of radius r in colour `fill` with a one-pixel `ring` outline. */
static void draw_dot(unsigned char *rgb, int w, int h, float fx, float fy, float r,
                     const unsigned char fill[3], const unsigned char ring[3]) {
    int x0 = (int)floorf(fx - r - 1.5f), x1 = (int)ceilf(fx + r + 1.5f);
    int y0 = (int)floorf(fy - r - 1.5f), y1 = (int)ceilf(fy + r + 1.5f);
    for (int py = y0; py <= y1; py++)
        for (int px = x0; px <= x1; px++) {
            float dx = (float)px + 0.5f - fx, dy = (float)py + 0.5f - fy;
            float d = sqrtf(dx * dx + dy * dy);
            if (d <= r) put_pixel(rgb, w, h, px, py, fill);
            else if (d <= r + 1.2f) put_pixel(rgb, w, h, px, py, ring);
        }
}

/* Render the decision regions of `net` over [-lim, lim]^2 at size x size and
 * draw the data points on top. Returns a malloc'd RGB buffer. */
static unsigned char *render(cx_module *net, const cx_tensor *X, const cx_tensor *y, int size,
                             float lim) {
    unsigned char *rgb = malloc((size_t)size * size * 3);
    float *grid = malloc((size_t)size * 2 * sizeof(float));
    if (!rgb || !grid) {
        free(rgb);
        free(grid);
        return NULL;
    }
    /* region colours (full brightness) for class 0 and class 1 */
    const float base[2][3] = {{90, 150, 255}, {255, 165, 60}};
    cx_no_grad_begin(); /* inference only: no graph, no gradients */
    for (int row = 0; row < size; row++) {
        /* one image row = `size` points, y decreasing from top to bottom */
        float py = lim - (2.0f * lim) * ((float)row + 0.5f) / (float)size;
        for (int col = 0; col < size; col++) {
            grid[2 * col] = -lim + (2.0f * lim) * ((float)col + 0.5f) / (float)size;
            grid[2 * col + 1] = py;
        }
        cx_tensor *pts = cx_wrap(grid, CX_SHAPE(size, 2));
        cx_tensor *prob = cx_softmax(cx_module_forward(net, pts), 1);
        for (int col = 0; col < size; col++) {
            float p1 = CX_F(prob)[2 * col + 1];
            int k = p1 > 0.5f;
            float conf = k ? p1 : 1.0f - p1;            /* in [0.5, 1] */
            float bright = 0.15f + 0.85f * (2.0f * conf - 1.0f); /* dark at the boundary */
            unsigned char *px = rgb + ((size_t)row * size + col) * 3;
            for (int c = 0; c < 3; c++) px[c] = (unsigned char)lrintf(base[k][c] * bright);
        }
        cx_step_reset();
    }
    cx_no_grad_end();
    free(grid);
    /* training points: navy / dark red with a white outline */
    const unsigned char fill[2][3] = {{10, 20, 120}, {140, 20, 0}};
    const unsigned char ring[3] = {255, 255, 255};
    float scale = (float)size / (2.0f * lim);
    for (int i = 0; i < X->shape[0]; i++) {
        float fx = (CX_F(X)[2 * i] + lim) * scale, fy = (lim - CX_F(X)[2 * i + 1]) * scale;
        draw_dot(rgb, size, size, fx, fy, 2.2f, fill[CX_I32P(y)[i]], ring);
    }
    return rgb;
}

/* ------------------------------------------------------------ main */

int main(int argc, char **argv) {
    const char *png_path = argc > 1 ? argv[1] : "out/spirals.png";
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    cx_seed(seed); /* data, initial weights: everything random comes from here */
    cx_set_threads(1);
    double t_start = cx_now();

    /* ---------------------------------------------------------- 1. XOR */
    enum { XOR_PER = 100 };
    cx_tensor *Xx = cx_tensor_new(CX_F32, CX_SHAPE(4 * XOR_PER, 2));
    cx_tensor *yx = cx_tensor_new(CX_I32, CX_SHAPE(4 * XOR_PER));
    make_xor(Xx, yx, XOR_PER, 0.3f);
    /* the four noiseless corners (-1,-1) (1,-1) (-1,1) (1,1) -> 0 1 1 0 */
    cx_tensor *Xc = cx_tensor_new(CX_F32, CX_SHAPE(4, 2));
    cx_tensor *yc = cx_tensor_new(CX_I32, CX_SHAPE(4));
    for (int c = 0; c < 4; c++) {
        CX_F(Xc)[2 * c] = (c & 1) ? 1.0f : -1.0f;
        CX_F(Xc)[2 * c + 1] = (c & 2) ? 1.0f : -1.0f;
        CX_I32P(yc)[c] = c == 1 || c == 2;
    }
    printf("1. XOR: 4 Gaussian clouds (std 0.3) x %d points around (+-1, +-1)\n", XOR_PER);
    cx_module *lin = cx_linear_new(2, 2, true);              /* logits = W x + b */
    const int xor_sizes[3] = {2, 8, 2};
    cx_module *xor_net = cx_mlp_new(xor_sizes, 3, CX_ACT_TANH, 0); /* 2 -> 8 -> 2 */
    double l_lin = train(lin, Xx, yx, 0.05, 500, 0);
    double l_mlp = train(xor_net, Xx, yx, 0.05, 500, 0);
    printf("   linear model 2 -> 2        : loss %.4f  train acc %6.2f%%  corners %3.0f%%\n", l_lin,
           100 * accuracy(lin, Xx, yx), 100 * accuracy(lin, Xc, yc));
    printf("   2-layer net 2 -> 8 -> 2 tanh: loss %.4f  train acc %6.2f%%  corners %3.0f%%\n", l_mlp,
           100 * accuracy(xor_net, Xx, yx), 100 * accuracy(xor_net, Xc, yc));
    printf("   (no line separates XOR: a linear model gets at most 3 of the 4 corners)\n");
    cx_module_free(lin);
    cx_module_free(xor_net);

    /* ---------------------------------------------------------- 2. spirals */
    enum { PER_CLASS = 500, STEPS = 600 };
    cx_tensor *X = cx_tensor_new(CX_F32, CX_SHAPE(2 * PER_CLASS, 2));
    cx_tensor *y = cx_tensor_new(CX_I32, CX_SHAPE(2 * PER_CLASS));
    make_spirals(X, y, PER_CLASS, 0.03f);
    const int sizes[4] = {2, 64, 64, 2};
    cx_module *net = cx_mlp_new(sizes, 4, CX_ACT_TANH, 0);
    printf("\n2. Two spirals: 2 classes x %d points, 2 turns, noise std 0.03\n", PER_CLASS);
    printf("   MLP 2 -> 64 -> 64 -> 2 (tanh), full-batch Adam lr 0.01, %d steps\n", STEPS);
    double t0 = cx_now();
    train(net, X, y, 0.01, STEPS, 100);
    double acc = accuracy(net, X, y);
    printf("   final train accuracy %.2f%% (%s 98%%) in %.2f s\n", 100 * acc,
           acc >= 0.98 ? ">=" : "BELOW", cx_now() - t0);

    /* ---------------------------------------------------------- 3. PNG */
    int rc = 0;
    if (argc <= 1 && mkdir("out", 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "spirals: cannot create out/: %s\n", strerror(errno));
        rc = 1;
    }
    enum { SIZE = 400 };
    unsigned char *rgb = rc ? NULL : render(net, X, y, SIZE, 1.25f);
    if (!rc && !rgb) {
        fprintf(stderr, "spirals: out of memory\n");
        rc = 1;
    }
    if (!rc) {
        rc = write_png(png_path, rgb, SIZE, SIZE);
        if (!rc)
            printf("\n3. Decision regions (%dx%d, brightness = softmax confidence) -> %s\n", SIZE,
                   SIZE, png_path);
    }
    free(rgb);
    printf("total %.2f s\n", cx_now() - t_start);

    cx_module_free(net);
    cx_tensor_free(X);
    cx_tensor_free(y);
    cx_tensor_free(Xx);
    cx_tensor_free(yx);
    cx_tensor_free(Xc);
    cx_tensor_free(yc);
    return rc || acc < 0.98;
}
