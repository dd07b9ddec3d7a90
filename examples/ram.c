/* Hard attention: a recurrent attention model (Mnih, Heess, Graves &
 * Kavukcuoglu, "Recurrent Models of Visual Attention", NIPS 2014) on
 * distorted, cluttered Fashion-MNIST.
 *
 * The data: the canvases of the spatial-transformer example (cx_distort_dataset
 * with cx_distort_defaults()): 60x60, one Fashion-MNIST item rotated by up to
 * +-45 degrees, scaled 0.7-1.2, placed at random with its ink inside, over 6
 * clutter fragments of 6x6 from other items. Training canvases from the
 * training images with --data-seed, test canvases from the test images with
 * --data-seed + 1 (the same sets as examples/stn.c for the same flags).
 *
 * The model sees the canvas only through N glimpses (--glimpses). Per step t:
 *   retina     rho = cx_glimpse(x, l_t, 12, 3, 2): patches of 12, 24 and 48
 *              pixels around l_t, each average-pooled to 12x12  [432]
 *   glimpse    h_g = ReLU(Linear(432, 128) rho), h_l = ReLU(Linear(2, 128) l_t),
 *   network    g_t = ReLU(Linear(128, 256) h_g + Linear(128, 256) h_l)
 *   core       (h_t, c_t) = LSTMCell(256, 256)(g_t, h_{t-1}, c_{t-1})
 *   location   mu_t = tanh(Linear(256, 2) h_{t-1}),  l_t ~ N(mu_t, std^2 I)
 *              (--std, fixed; the mean at test time); h_0 = 0, so the first
 *              location is a learned constant (plus the noise in training)
 *   baseline   b_t = Linear(256, 1) h_{t-1}  (the expected reward before l_t)
 *   action     logits = Linear(256, 10) h_N  (after the last glimpse)
 * Locations are in [-1, 1] canvas coordinates (-1 left/top edge, +1
 * right/bottom); the sampled location is clamped to [-1, 1] before use.
 *
 * Training (the hybrid loss of the paper): reward R = 1 if the class is
 * right after the last glimpse, else 0, for every location decision;
 *   loss = cross-entropy(logits, y)                        (action, core, glimpse net)
 *        + sum_t -(R - b_t) log N(l_t; mu_t, std)  / B     (REINFORCE: location net)
 *        + mean_t,b (b_t - R)^2                            (baseline)
 * The score-function term comes from cortex/rl.h (cx_normal_sample gives
 * l_t and log p(l_t), cx_reinforce_loss detaches R - b). The location and
 * baseline networks read a detached h_{t-1}: the core learns from the
 * classification loss only, the location net from the reward only (no
 * gradient flows through the non-differentiable glimpse). Adam, cosine decay
 * over the epochs, gradient clipping at 5, batches of --batch.
 *
 * Output: per epoch the training loss, training reward (accuracy with sampled
 * locations) and test accuracy (mean locations); a final line
 *   RAM glimpses=N ... test_acc=...
 * and a PNG (--out, default out/ram.png) of the glimpse paths on 10 test
 * canvases: the locations numbered and joined in order, the three patch
 * squares of every glimpse, the true class and the prediction.
 *
 * Run (from the repository root):
 *   build/<variant>/examples/ram [--glimpses 6] [--epochs 10] [--train 30000]
 *       [--test 10000] [--batch 64] [--lr 1e-3] [--std 0.15] [--threads 1]
 *       [--seed 1] [--data-seed 7] [--data DIR] [--out out/ram.png]
 *       [--save FILE] [--load FILE]
 * --save writes the trained parameters (safetensors); --load reads them
 * instead of training (same --glimpses), then evaluates and draws.
 * Data: --data, else /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist) if present, else data/fashion-mnist-subset.
 * Exit status: 0 on success, 1 if the data is missing, training fails
 * (non-finite loss) or the PNG cannot be written, 2 on a bad flag.
 *
 * Measured with --epochs 40 (1 thread, seeds 1 and 2): test accuracy about
 * 48%, 55%, 59%, 58-59%, 58% with 1, 2, 4, 6, 8 glimpses -- below the plain
 * CNN (68%) and the STN-CNN (74%) of examples/stn.c on the same canvases;
 * see examples/README.md for the table and why.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

#define CANVAS 60
#define PATCH 12  /* retina patch side (pixels) */
#define SCALES 3  /* patches of 12, 24, 48 pixels */
#define ZOOM 2    /* each larger patch is ZOOM times the previous */
#define HG 128    /* glimpse features */
#define HL 128    /* location features */
#define GDIM 256  /* glimpse vector */
#define HID 256   /* LSTM state */
#define MAXG 16   /* most glimpses */

/* ------------------------------------------------------------ data */
/* ------------------------------------------------------------ the model */
typedef struct {
    cx_module *root; /* owns everything below (a container: its forward is never called) */
    cx_module *fc_g, *fc_l, *fc_gg, *fc_gl, *core, *loc, *base, *act;
    int glimpses;
    float std;
} ram;

static ram ram_new(int glimpses, float std) {
    ram m = {0};
    m.root = cx_sequential_new();
    m.fc_g = cx_module_add(m.root, "glimpse_fc", cx_linear_new(SCALES * PATCH * PATCH, HG, true));
    m.fc_l = cx_module_add(m.root, "loc_fc", cx_linear_new(2, HL, true));
    m.fc_gg = cx_module_add(m.root, "what_fc", cx_linear_new(HG, GDIM, true));
    m.fc_gl = cx_module_add(m.root, "where_fc", cx_linear_new(HL, GDIM, true));
    m.core = cx_module_add(m.root, "core", cx_lstm_cell_new(GDIM, HID, NULL));
    m.loc = cx_module_add(m.root, "location", cx_linear_new(HID, 2, true));
    m.base = cx_module_add(m.root, "baseline", cx_linear_new(HID, 1, true));
    m.act = cx_module_add(m.root, "action", cx_linear_new(HID, 10, true));
    m.glimpses = glimpses;
    m.std = std;
    return m;
}

/* What one pass over a batch gives. */
typedef struct {
    cx_tensor *logits;         /* [B, 10] */
    cx_tensor *logp, *baseline; /* [B, G]: log p(l_t) and b_t (training only) */
    float *locs;               /* if not NULL: [B, G, 2] the locations used */
} ram_out;

/* Run the model on flat canvases x [B, 3600]. sample: draw the locations
 * (training), else use the means. */
static ram_out ram_forward(ram *m, cx_tensor *x, bool sample, float *locs) {
    const int B = x->shape[0], G = m->glimpses;
    cx_tensor *img = cx_reshape(x, CX_SHAPE(B, 1, CANVAS, CANVAS));
    cx_tensor *h = NULL, *c = NULL, *logps[MAXG], *bs[MAXG];
    cx_tensor *log_std = cx_full(CX_SHAPE(2), logf(m->std));
    cx_tensor *zero = cx_zeros(CX_SHAPE(B, HID));
    for (int t = 0; t < G; t++) {
        cx_tensor *hin = h ? cx_detach(h) : zero;
        cx_tensor *mu = cx_tanh(cx_module_forward(m->loc, hin));
        cx_tensor *l;
        if (sample) {
            l = cx_normal_sample(mu, log_std, NULL, &logps[t]);
            bs[t] = cx_reshape(cx_module_forward(m->base, hin), CX_SHAPE(B));
        } else {
            l = cx_detach(mu);
        }
        l = cx_detach(cx_clamp(l, -1.0f, 1.0f));
        if (locs)
            for (int b = 0; b < B; b++) {
                locs[((size_t)b * G + t) * 2] = CX_F(l)[2 * b];
                locs[((size_t)b * G + t) * 2 + 1] = CX_F(l)[2 * b + 1];
            }
        cx_tensor *rho = cx_reshape(cx_glimpse(img, l, PATCH, SCALES, ZOOM), CX_SHAPE(B, SCALES * PATCH * PATCH));
        cx_tensor *hg = cx_relu(cx_module_forward(m->fc_g, rho));
        cx_tensor *hl = cx_relu(cx_module_forward(m->fc_l, l));
        cx_tensor *g = cx_relu(cx_add(cx_module_forward(m->fc_gg, hg), cx_module_forward(m->fc_gl, hl)));
        cx_rnn_out o = cx_rnn_forward(m->core, g, h, c);
        h = o.h;
        c = o.c;
    }
    ram_out r = {cx_module_forward(m->act, h), NULL, NULL, locs};
    if (sample) {
        r.logp = cx_stack(logps, G, 1);
        r.baseline = cx_stack(bs, G, 1);
    }
    return r;
}

/* Test accuracy with the mean locations; locs (if not NULL) receives the
 * locations [n, G, 2] and pred (if not NULL) the predicted classes. */
static double evaluate(ram *m, const cx_dataset *test, float *locs, int *pred) {
    const int n = cx_dataset_len(test), EB = 500;
    long correct = 0;
    cx_no_grad_begin();
    for (int i0 = 0; i0 < n; i0 += EB) {
        int b = n - i0 < EB ? n - i0 : EB;
        cx_tensor *x = cx_slice(test->x, 0, i0, i0 + b, 1);
        ram_out o = ram_forward(m, x, false, locs ? locs + (size_t)i0 * m->glimpses * 2 : NULL);
        cx_tensor *am = cx_argmax(o.logits, 1);
        for (int k = 0; k < b; k++) {
            int p = CX_I32P(am)[k];
            correct += p == CX_I32P(test->y)[i0 + k];
            if (pred) pred[i0 + k] = p;
        }
        cx_step_reset();
    }
    cx_no_grad_end();
    return (double)correct / n;
}

typedef struct {
    int epochs, batch;
    double lr;
} train_cfg;

/* Train; returns 0, or 1 on a non-finite loss. */
static int train(ram *m, const cx_dataset *tr, const cx_dataset *te, const train_cfg *cfg, double *seconds,
                 double *cpu, double *acc) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->root, &ps);
    printf("model: %lld parameters, %d glimpses of %d scales (%d, %d, %d px -> %dx%d), LSTM %d, location std %g\n",
           (long long)cx_params_count(&ps), m->glimpses, SCALES, PATCH, PATCH * ZOOM, PATCH * ZOOM * ZOOM, PATCH,
           PATCH, HID, (double)m->std);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = cfg->lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_loader *ld = cx_loader_new(tr, cfg->batch, true, false);
    cx_sched sched = cx_sched_cosine(cfg->epochs, 0);
    double t0 = cx_now(), c0 = cx_cpu_now();
    int rc = 0;
    for (int e = 0; e < cfg->epochs && !rc; e++) {
        cx_sched_apply(&sched, opt, cfg->lr, e);
        cx_loader_reset(ld);
        double te0 = cx_now(), sum_ce = 0, sum_rl = 0, sum_b = 0, reward = 0;
        long seen = 0, steps = 0;
        cx_tensor *x, *y;
        while (cx_loader_next(ld, &x, &y)) {
            const int B = x->shape[0], G = m->glimpses;
            cx_optim_zero_grad(opt);
            ram_out o = ram_forward(m, x, true, NULL);
            /* reward: 1 if right after the last glimpse, the same for every decision */
            cx_tensor *am = cx_argmax(o.logits, 1);
            cx_tensor *R = cx_empty(CX_F32, CX_SHAPE(B, G));
            float got = 0;
            for (int b = 0; b < B; b++) {
                float r = CX_I32P(am)[b] == CX_I32P(y)[b] ? 1.0f : 0.0f;
                got += r;
                for (int t = 0; t < G; t++) CX_F(R)[b * G + t] = r;
            }
            cx_tensor *ce = cx_cross_entropy(o.logits, y, CX_REDUCE_MEAN);
            cx_tensor *rl = cx_mul_scalar(cx_reinforce_loss(o.logp, R, o.baseline, NULL, CX_REDUCE_SUM), 1.0f / B);
            cx_tensor *bl = cx_mse_loss(o.baseline, R, CX_REDUCE_MEAN);
            cx_tensor *loss = cx_add(cx_add(ce, rl), bl);
            float lv = cx_item(loss);
            if (!isfinite(lv)) {
                fprintf(stderr, "ram: non-finite loss at epoch %d step %ld\n", e + 1, steps);
                rc = 1;
                break;
            }
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 5.0f);
            cx_optim_step(opt);
            sum_ce += cx_item(ce) * B;
            sum_rl += cx_item(rl) * B;
            sum_b += cx_item(bl) * B;
            reward += got;
            seen += B;
            steps++;
            cx_step_reset();
        }
        if (rc) break;
        *acc = evaluate(m, te, NULL, NULL);
        printf("  epoch %d/%d  ce %.4f  reinforce %.4f  baseline mse %.4f  train reward %.2f%%  test acc %.2f%%  "
               "%.1f s\n", e + 1, cfg->epochs, sum_ce / seen, sum_rl / seen, sum_b / seen, 100.0 * reward / seen,
               100.0 * *acc, cx_now() - te0);
        fflush(stdout);
    }
    *seconds = cx_now() - t0;
    *cpu = cx_cpu_now() - c0;
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    return rc;
}

/* ------------------------------------------------------------ the picture */
static void colour_of(int t, int G, uint8_t rgb[3]) {
    /* early glimpses blue, late ones red, through the diverging map's ends */
    static const uint8_t pal[6][3] = {{0, 90, 255}, {0, 170, 200}, {40, 190, 40},
                                      {230, 170, 0}, {255, 90, 0},  {220, 0, 120}};
    if (G <= 6) {
        memcpy(rgb, pal[t], 3);
        return;
    }
    float f = G > 1 ? (float)t / (float)(G - 1) * 5.0f : 0;
    int i = (int)f;
    if (i >= 5) i = 4;
    float a = f - (float)i;
    for (int k = 0; k < 3; k++) rgb[k] = (uint8_t)((1 - a) * pal[i][k] + a * pal[i + 1][k] + 0.5f);
}

static int write_picture(const char *path, ram *m, const cx_dataset *test, double acc, int epochs, int n_train) {
    enum { NSHOW = 10, COLS = 5, Z = 4, IMG = CANVAS * Z, MARGIN = 22, HEAD = 86, CZ = 2, TILE = PATCH * CZ + 4,
           STRIP = SCALES * (TILE + 2), LABELH = 34 };
    const int G = m->glimpses;
    /* the retina strip: a column per glimpse, a row per scale */
    const int cell = IMG / G < TILE + 2 ? TILE + 2 : (IMG / G > 2 * TILE ? 2 * TILE : IMG / G);
    const int rowh = IMG + 6 + STRIP + 4 + LABELH;
    int rows = (NSHOW + COLS - 1) / COLS;
    const uint8_t WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0}, GREY[3] = {90, 90, 90},
                  GREEN[3] = {0, 130, 50}, RED[3] = {210, 30, 30};
    cx_canvas c;
    if (cx_canvas_init(&c, MARGIN + COLS * (IMG + MARGIN), HEAD + rows * rowh + 6, WHITE) != CX_OK) {
        fprintf(stderr, "ram: %s\n", cx_last_error());
        return 1;
    }
    char line[256];
    snprintf(line, sizeof line, "recurrent attention model: %d glimpse%s on distorted fashion-mnist", G,
             G == 1 ? "" : "s");
    cx_canvas_text(&c, MARGIN, 10, line, 2, BLACK);
    snprintf(line, sizeof line,
             "test canvases 60x60 (item rotated up to 45 deg, scaled 0.7-1.2, moved, 6 clutter fragments). "
             "trained %d epochs on %d canvases. test accuracy %.2f%%", epochs, n_train, 100 * acc);
    cx_canvas_text(&c, MARGIN, 32, line, 1, GREY);
    cx_canvas_text(&c, MARGIN, 44,
                   "each glimpse (mean location, test mode): its number at the centre, its 12, 24 and 48 px "
                   "squares, joined in order. colour = step (blue first, then cyan, green, yellow, orange, red)",
                   1, GREY);
    cx_canvas_text(&c, MARGIN, 56,
                   "under each canvas, what the retina saw: a column per glimpse, its 12, 24 and 48 px patches (rows) "
                   "pooled to 12x12. then the true class and the prediction (green right, red wrong)", 1, GREY);
    /* the step colours as a legend */
    for (int t = 0; t < G; t++) {
        uint8_t col[3];
        colour_of(t, G, col);
        int lx = MARGIN + t * 40;
        cx_canvas_fill(&c, lx, 70, 12, 10, col);
        snprintf(line, sizeof line, "%d", t + 1);
        cx_canvas_text(&c, lx + 16, 71, line, 1, BLACK);
    }

    int n = cx_dataset_len(test), idx[NSHOW];
    /* persistent: evaluate() resets the arena */
    cx_tensor *x = cx_tensor_new(CX_F32, CX_SHAPE(NSHOW, CANVAS * CANVAS));
    cx_tensor *yy = cx_tensor_new(CX_I32, CX_SHAPE(NSHOW));
    for (int k = 0; k < NSHOW; k++) {
        idx[k] = (int)(((int64_t)k * n / NSHOW + 5) % n);
        memcpy(CX_F(x) + (int64_t)k * CANVAS * CANVAS, CX_F(test->x) + (int64_t)idx[k] * CANVAS * CANVAS,
               CANVAS * CANVAS * sizeof(float));
        CX_I32P(yy)[k] = CX_I32P(test->y)[idx[k]];
    }
    cx_dataset few = {x, yy, false};
    float locs[NSHOW * MAXG * 2];
    int pred[NSHOW];
    evaluate(m, &few, locs, pred);
    cx_tensor *img = cx_reshape(x, CX_SHAPE(NSHOW, 1, CANVAS, CANVAS));
    for (int k = 0; k < NSHOW; k++) {
        int gx = MARGIN + (k % COLS) * (IMG + MARGIN), gy = HEAD + (k / COLS) * rowh;
        const float *im = CX_F(x) + (int64_t)k * CANVAS * CANVAS;
        /* the canvas, squares, path and numbers on a panel of its own, so
         * squares reaching past the canvas are clipped at its edge */
        cx_canvas p;
        if (cx_canvas_init(&p, IMG, IMG, BLACK) != CX_OK) {
            fprintf(stderr, "ram: %s\n", cx_last_error());
            cx_canvas_free(&c);
            return 1;
        }
        cx_canvas_image(&p, 0, 0, im, CANVAS, CANVAS, Z, Z, 0.0f, 1.0f, CX_CMAP_GRAY);
        int px[MAXG], py[MAXG];
        for (int t = 0; t < G; t++) {
            const float *l = locs + ((size_t)k * G + t) * 2;
            /* the glimpse's pixel centre, as cx_glimpse computes it */
            px[t] = (int)lroundf((l[0] + 1.0f) * CANVAS / 2.0f * Z);
            py[t] = (int)lroundf((l[1] + 1.0f) * CANVAS / 2.0f * Z);
        }
        /* squares first (thin), then the path, then the numbers on top */
        for (int t = 0; t < G; t++) {
            uint8_t col[3];
            colour_of(t, G, col);
            const float *l = locs + ((size_t)k * G + t) * 2;
            double ccx = ((double)l[0] + 1.0) * CANVAS / 2.0, ccy = ((double)l[1] + 1.0) * CANVAS / 2.0;
            for (int s = 0, side = PATCH; s < SCALES; s++, side *= ZOOM) {
                int x0 = (int)floor(ccx - side / 2.0 + 0.5), y0 = (int)floor(ccy - side / 2.0 + 0.5);
                cx_canvas_rect(&p, x0 * Z, y0 * Z, side * Z, side * Z, col, s == 0 ? 2 : 1);
            }
        }
        for (int t = 1; t < G; t++) cx_canvas_line(&p, px[t - 1], py[t - 1], px[t], py[t], WHITE, 2);
        for (int t = 0; t < G; t++) {
            uint8_t col[3];
            colour_of(t, G, col);
            snprintf(line, sizeof line, "%d", t + 1);
            int w = cx_text_width(line, 2);
            cx_canvas_fill(&p, px[t] - w / 2 - 2, py[t] - 9, w + 4, 18, col);
            cx_canvas_text(&p, px[t] - w / 2, py[t] - 7, line, 2, WHITE);
        }
        cx_canvas_paste(&c, gx, gy, &p);
        cx_canvas_free(&p);
        /* what the retina saw at each glimpse: its SCALES views, pooled to PATCH x PATCH */
        int sy = gy + IMG + 6;
        cx_no_grad_begin();
        for (int t = 0; t < G; t++) {
            cx_tensor *lt = cx_from_data(locs + ((size_t)k * G + t) * 2, CX_SHAPE(1, 2));
            cx_tensor *one = cx_slice(img, 0, k, k + 1, 1);
            cx_tensor *rho = cx_glimpse(one, lt, PATCH, SCALES, ZOOM); /* [1, SCALES, PATCH, PATCH] */
            uint8_t col[3];
            colour_of(t, G, col);
            for (int s = 0; s < SCALES; s++) {
                int sx = gx + t * cell, syy = sy + s * (TILE + 2);
                cx_canvas_fill(&c, sx, syy, TILE, TILE, col);
                cx_canvas_image(&c, sx + 2, syy + 2, CX_F(rho) + s * PATCH * PATCH, PATCH, PATCH, CZ, CZ, 0.0f, 1.0f,
                                CX_CMAP_GRAY);
            }
        }
        cx_no_grad_end();
        int ty = sy + STRIP + 4, truth = CX_I32P(yy)[k];
        snprintf(line, sizeof line, "true: %s", cx_fashion_mnist_class(truth));
        cx_canvas_text(&c, gx, ty, line, 1, BLACK);
        snprintf(line, sizeof line, "predicted: %s", cx_fashion_mnist_class(pred[k]));
        cx_canvas_text(&c, gx, ty + 12, line, 1, pred[k] == truth ? GREEN : RED);
    }
    cx_step_reset();
    cx_tensor_free(x);
    cx_tensor_free(yy);
    int rc = 0;
    if (cx_canvas_save(&c, path) != CX_OK) {
        fprintf(stderr, "ram: cannot write %s: %s\n", path, cx_last_error());
        rc = 1;
    } else {
        printf("wrote %s (%dx%d): glimpse paths on %d test canvases\n", path, c.width, c.height, NSHOW);
    }
    cx_canvas_free(&c);
    return rc;
}

/* ------------------------------------------------------------ main */
static int usage(void) {
    fprintf(stderr, "usage: ram [--glimpses N] [--epochs N] [--train N] [--test N] [--batch B] [--lr LR]\n"
                    "           [--std S] [--threads T] [--seed S] [--data-seed S] [--data DIR] [--out PNG]\n"
                    "           [--save FILE.safetensors] [--load FILE.safetensors]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *png = "out/ram.png", *save = NULL, *load = NULL;
    int glimpses = 6, n_train = 30000, n_test = 10000, threads = 1;
    unsigned long seed = 1, data_seed = 7;
    float std = 0.15f;
    train_cfg cfg = {10, 64, 1e-3};
    bool default_out = true;
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--glimpses")) glimpses = atoi(v);
        else if (!strcmp(a, "--epochs")) cfg.epochs = atoi(v);
        else if (!strcmp(a, "--train")) n_train = atoi(v);
        else if (!strcmp(a, "--test")) n_test = atoi(v);
        else if (!strcmp(a, "--batch")) cfg.batch = atoi(v);
        else if (!strcmp(a, "--lr")) cfg.lr = atof(v);
        else if (!strcmp(a, "--std")) std = (float)atof(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--data-seed")) data_seed = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--load")) load = v;
        else if (!strcmp(a, "--out")) png = v, default_out = false;
        else {
            fprintf(stderr, "ram: unknown option %s\n", a);
            return usage();
        }
    }
    if (glimpses < 1 || glimpses > MAXG || cfg.epochs < 1 || n_train < 1 || n_test < 1 || cfg.batch < 1 ||
        !(cfg.lr > 0) || !(std > 0) || threads < 1) {
        fprintf(stderr, "ram: glimpses must be 1..%d; epochs, train, test, batch, lr, std and threads positive\n",
                MAXG);
        return usage();
    }
    dir = cx_fashion_mnist_dir(dir);
    cx_set_threads(threads);

    cx_dataset src_train, src_test;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &src_train) != CX_OK) {
        fprintf(stderr, "ram: %s\n(give a directory with the Fashion-MNIST IDX files with --data, "
                        "or apt-get install dataset-fashion-mnist)\n", cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &src_test) != CX_OK) {
        fprintf(stderr, "ram: %s\n", cx_last_error());
        cx_dataset_free(&src_train);
        return 1;
    }
    double t0 = cx_now();
    cx_distort_opts dopt = cx_distort_defaults();
    cx_dataset train_set = {NULL, NULL, false}, test_set;
    /* with --load only the test canvases are needed (--train then only labels the picture) */
    if ((!load && cx_distort_dataset(&src_train, n_train, &dopt, data_seed, &train_set) != CX_OK) ||
        cx_distort_dataset(&src_test, n_test, &dopt, data_seed + 1, &test_set) != CX_OK) {
        fprintf(stderr, "ram: %s\n", cx_last_error());
        return 1;
    }
    printf("data: %s; %d training canvases from %d training images (seed %lu), %d test canvases from %d test "
           "images (seed %lu); 60x60, rotation +-45 deg, scale 0.7-1.2, 6 clutter fragments of 6x6; made in %.1f s\n",
           dir, load ? 0 : n_train, cx_dataset_len(&src_train), data_seed, n_test, cx_dataset_len(&src_test), data_seed + 1, cx_now() - t0);
    cx_dataset_free(&src_train);
    cx_dataset_free(&src_test);

    cx_seed(seed);
    ram m = ram_new(glimpses, std);
    if (!load)
        printf("training: Adam lr %g (cosine), batch %d, %d epoch(s), %d thread(s), seed %lu\n", cfg.lr, cfg.batch,
               cfg.epochs, cx_get_threads(), seed);
    double secs = 0, cpu = 0, acc = NAN;
    int rc = 0;
    if (load) { /* a trained model: evaluate and draw only */
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m.root, &ps);
        if (cx_params_load(load, &ps, true) != CX_OK) {
            fprintf(stderr, "ram: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("loaded %s (no training)\n", load);
            acc = evaluate(&m, &test_set, NULL, NULL);
        }
        cx_params_free(&ps);
    } else {
        rc = train(&m, &train_set, &test_set, &cfg, &secs, &cpu, &acc);
    }
    if (!rc && save && !load) {
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m.root, &ps);
        if (cx_params_save(save, &ps) != CX_OK) {
            fprintf(stderr, "ram: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("saved the parameters to %s\n", save);
        }
        cx_params_free(&ps);
    }
    printf("RAM glimpses=%d threads=%d train=%d test=%d epochs=%d std=%g seed=%lu test_acc=%.4f train_sec=%.1f "
           "train_cpu=%.1f\n", glimpses, cx_get_threads(), n_train, n_test, cfg.epochs, (double)std, seed, acc, secs,
           cpu);
    if (!rc) {
        if (default_out) mkdir("out", 0777);
        rc |= write_picture(png, &m, &test_set, acc, cfg.epochs, n_train);
    }
    cx_module_free(m.root);
    cx_dataset_free(&train_set);
    cx_dataset_free(&test_set);
    return rc;
}
