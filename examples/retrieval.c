/* Image-sentence retrieval with a visual-semantic embedding: a CNN image
 * encoder and a GRU sentence encoder trained jointly with the bidirectional
 * hinge ranking loss (cx_triplet_ranking_loss), in both forms of the course
 * notes: the sum over negatives (VSE, Kiros et al. 2014) and the hardest
 * negative (VSE++, Faghri et al. 2018); evaluated by recall at K for
 * annotation (image -> text) and retrieval (text -> image).
 *
 *   make examples
 *   build/<variant>/examples/retrieval                      # both loss forms, seed 1
 *   build/<variant>/examples/retrieval --loss max --seed 2 --figure docs/img/retrieval.png
 *
 * Data (cortex/caption.h, fixed seeds): 64x64 canvases with 1-3
 * Fashion-MNIST items and every true caption of a small grammar ("a bag",
 * "two trousers above a sneaker", "a top left of a coat left of a bag").
 * Training canvases come from the training images, test canvases from the
 * t10k images only.
 *
 * Models (fresh weights for each loss form, the same seed):
 *   image     conv3x3/BN/ReLU/max-pool x 3 (16, 32, 64 channels: an 8x8
 *             grid that keeps where the items are) -> flatten -> Linear(4096, D)
 *   sentence  Embedding(V, E) over <start> and the words -> GRU(E, H) -> the
 *             state after the last word -> Linear(H, D)
 *   both embeddings L2-normalised (the loss's normalize option), so
 *   S = I C^T is the cosine similarity; margin alpha 0.2, mean over the batch.
 * Adam (lr 2e-3, 100 warm-up steps, cosine decay), gradient-norm clip 5,
 * full batches of 128. Each training canvas is paired with one of its
 * references drawn at random. Many canvases share a caption ("a bag"), so in a batch a
 * "negative" caption can be a true caption of the anchor image: those pairs
 * go to the loss's ignore mask (--no-ignore keeps them as negatives).
 *
 * Evaluation on the test canvases: every canvas against every caption of
 * the test set (all references of all canvases, duplicates included):
 *   text-level (the main numbers)  a retrieved caption is correct when it
 *       is one of the image's true captions word for word; a retrieved image
 *       is correct for a query caption when that caption is among the
 *       image's true captions (any canvas described by "a bag" answers the
 *       query "a bag");
 *   strict (pair index)  only the canvas the caption was generated for, and
 *       only that canvas's own caption rows; identical captions of other
 *       canvases score exactly the same and count as misses (ties are
 *       counted against the query, cx_recall_at_k).
 * The random baseline is the exact expectation for a random scorer: a query
 * with r correct items among n has a hit in its top K with probability
 * 1 - C(n - r, K) / C(n, K), averaged over the queries (K/n for one).
 *
 * The hardest-negative form trained from scratch collapses here: every
 * embedding goes to one point, S is constant and the loss sits at 2 alpha
 * (seeds 1 and 2; Faghri et al. start from pre-trained encoders). So the
 * max form runs its first --max-warmup epochs (default 1) with the sum form,
 * then switches; --max-warmup 0 shows the collapse.
 *
 * Options [defaults]: --loss sum|max|both [both]  --seed S [1]  --data-seed S [1]
 *   --train N [20000]  --test N [1000]  --epochs N [5]  --batch B [128]  --lr LR [2e-3]
 *   --dim D [128]  --hidden H [256]  --embed E [64]  --margin A [0.2]  --max-warmup E [1]  --no-ignore
 *   --threads T [1]  --figure PATH [none]  --data DIR [/usr/share/datasets/fashion-mnist,
 *   else data/fashion-mnist-subset]
 * Output: per epoch the mean training loss; per loss form the test R@1/5/10
 * in both directions, text-level and strict, with the random baselines, and a
 * machine-readable line
 *   RETRIEVAL loss=... seed=... i2t=r1,r5,r10 t2i=r1,r5,r10 i2t_strict=... t2i_strict=... ...
 * The figure (--figure): for the last loss form trained, 4 caption queries
 * with their 5 best canvases (green frame: a correct answer) and 4 canvas
 * queries with their 3 best captions (green: a true caption).
 * Exit codes: 0 success, 1 data missing or a failure, 2 a bad option.
 *
 * Measured (defaults, 1 thread, full Fashion-MNIST; 1000 test canvases x
 * 1014 captions, 424 distinct; about 95-125 s CPU of training per form),
 * R@1 / R@5 / R@10 in %, text-level then strict:
 *                      seed  image->text         text->image         image->text (strict) text->image (strict)
 *   sum                1     66.2 / 82.5 / 87.5  71.7 / 96.6 / 98.8  17.7 / 43.3 / 52.6   26.3 / 54.4 / 66.6
 *   sum                2     65.1 / 80.1 / 85.4  71.2 / 96.0 / 97.8  17.7 / 43.4 / 52.2   26.0 / 53.7 / 65.4
 *   max (1 warm-up)    1     64.2 / 78.0 / 83.3  62.9 / 91.4 / 97.6  18.1 / 41.2 / 50.7   23.4 / 51.9 / 64.2
 *   max (1 warm-up)    2     63.9 / 77.7 / 83.2  60.6 / 89.8 / 97.1  16.9 / 41.1 / 50.4   22.4 / 51.6 / 63.8
 *   max, --max-warmup 0 1    13.5 / 17.2 / 23.2  15.1 / 38.5 / 51.1   0.4 /  4.1 /  9.8    1.3 /  5.8 / 10.3
 *   max, --max-warmup 0 2     8.5 / 11.6 / 14.2   4.3 / 22.3 / 31.9   0.8 /  3.4 /  6.7    0.4 /  1.8 /  3.4
 *   sum, --no-ignore   1     65.3 / 82.5 / 86.9  75.4 / 96.7 / 98.6  17.4 / 44.0 / 52.9   26.9 / 54.6 / 66.8
 *   max, --no-ignore   1     59.4 / 76.7 / 82.2  57.5 / 89.5 / 96.9  17.4 / 41.1 / 50.3   21.8 / 49.9 / 63.4
 *   random scorer            1.44 / 6.77 / 12.54 1.44 / 6.76 / 12.52 0.10 / 0.50 / 1.00   0.10 / 0.50 / 1.00
 * A rerun of seed 2 reproduced its lines exactly.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "retrieval: out of memory\n");
        exit(1);
    }
    return p;
}

typedef struct {
    int D, H, E;
} hparams;

typedef struct {
    cx_module *all; /* container: names and ownership */
    cx_module *cnn, *img_fc, *emb, *gru, *txt_fc;
} model;

static void conv_block(cx_module *seq, int in, int out) {
    cx_conv_opts o = cx_conv_defaults();
    o.padding[0] = o.padding[1] = 1;
    cx_sequential_add(seq, NULL, cx_conv2d_new(in, out, 3, 3, &o, false));
    cx_sequential_add(seq, NULL, cx_batchnorm2d_new(out));
    cx_sequential_add(seq, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(seq, NULL, cx_maxpool2d_new(2, 2, 0));
}

static void model_init(model *m, const hparams *hp, int V, int H_img, int W_img) {
    memset(m, 0, sizeof *m);
    m->all = cx_sequential_new();
    m->cnn = cx_sequential_new();
    conv_block(m->cnn, 1, 16);
    conv_block(m->cnn, 16, 32);
    conv_block(m->cnn, 32, 64);
    cx_sequential_add(m->all, "cnn", m->cnn);
    m->img_fc = cx_linear_new(64 * (H_img / 8) * (W_img / 8), hp->D, true);
    cx_sequential_add(m->all, "img_fc", m->img_fc);
    m->emb = cx_embedding_new(V, hp->E, CX_CAP_PAD);
    cx_sequential_add(m->all, "embedding", m->emb);
    m->gru = cx_gru_new(hp->E, hp->H, NULL);
    cx_sequential_add(m->all, "gru", m->gru);
    m->txt_fc = cx_linear_new(hp->H, hp->D, true);
    cx_sequential_add(m->all, "txt_fc", m->txt_fc);
}

/* images [n, 1, H, W] -> [n, D] */
static cx_tensor *encode_images(model *m, cx_tensor *images) {
    return cx_module_forward(m->img_fc, cx_flatten(cx_module_forward(m->cnn, images)));
}

/* tokens I32 [T, n] (<start> and the words, then <pad>), lengths[b] real steps -> [n, D]:
 * the GRU state after step lengths[b] - 1 */
static cx_tensor *encode_text(model *m, cx_tensor *tokens, const int *lengths) {
    const int T = tokens->shape[0], n = tokens->shape[1];
    cx_rnn_out r = cx_rnn_forward(m->gru, cx_module_forward(m->emb, tokens), NULL, NULL);
    const int H = r.output->shape[2];
    int32_t *pick = cx_arena_alloc(sizeof(int32_t) * (size_t)n);
    for (int b = 0; b < n; b++) pick[b] = (int32_t)((lengths[b] - 1) * n + b);
    cx_tensor *last = cx_index_select(cx_reshape(r.output, CX_SHAPE(T * n, H)), 0, cx_from_i32(pick, CX_SHAPE(n)));
    return cx_module_forward(m->txt_fc, last);
}

/* caption rows rows[0 .. n-1] of s as the sentence encoder's input: tokens up to
 * the last word (the <end> dropped), time-major, padded */
static cx_tensor *caption_tokens(const cx_caption_set *s, const int *rows, int n, int *lengths) {
    int T = 1;
    for (int b = 0; b < n; b++) {
        lengths[b] = CX_I32P(s->caption_len)[rows[b]] - 1;
        if (lengths[b] > T) T = lengths[b];
    }
    cx_tensor *t = cx_empty(CX_I32, CX_SHAPE(T, n));
    for (int k = 0; k < T; k++)
        for (int b = 0; b < n; b++)
            CX_I32P(t)[k * n + b] =
                k < lengths[b] ? CX_I32P(s->captions)[(size_t)rows[b] * s->max_len + k] : CX_CAP_PAD;
    return t;
}

/* text id of every caption row: equal ids <=> the same words */
static int *caption_text_ids(const cx_caption_set *s, int *n_unique) {
    int M = s->n_captions, L = s->max_len, u = 0;
    int *id = xmalloc(sizeof(int) * (size_t)M), *first = xmalloc(sizeof(int) * (size_t)M);
    for (int c = 0; c < M; c++) {
        id[c] = -1;
        for (int k = 0; k < u && id[c] < 0; k++)
            if (!memcmp(CX_I32P(s->captions) + (size_t)first[k] * L, CX_I32P(s->captions) + (size_t)c * L,
                        sizeof(int32_t) * (size_t)L))
                id[c] = k;
        if (id[c] < 0) first[u] = c, id[c] = u++;
    }
    free(first);
    if (n_unique) *n_unique = u;
    return id;
}

/* canvas i has a reference with text id t */
static bool canvas_has_text(const cx_caption_set *s, const int *tid, int i, int t) {
    for (int r = CX_I32P(s->ref_start)[i]; r < CX_I32P(s->ref_start)[i + 1]; r++)
        if (tid[r] == t) return true;
    return false;
}

static void shuffle(int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cx_rand_below((uint32_t)i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* embeddings of every test canvas [N, D] and every test caption [M, D], then S = I C^T */
static float *similarities(model *m, const cx_caption_set *s, int D) {
    const int N = s->n, M = s->n_captions, chunk = 200;
    float *img = xmalloc(sizeof(float) * (size_t)N * D), *txt = xmalloc(sizeof(float) * (size_t)M * D);
    cx_set_training(false);
    cx_no_grad_begin();
    for (int i0 = 0; i0 < N; i0 += chunk) {
        int n = N - i0 < chunk ? N - i0 : chunk;
        cx_tensor *x =
            cx_wrap(CX_F(s->images) + (size_t)i0 * s->height * s->width, CX_SHAPE(n, 1, s->height, s->width));
        cx_tensor *e = encode_images(m, x);
        memcpy(img + (size_t)i0 * D, CX_F(e), sizeof(float) * (size_t)n * D);
        cx_step_reset();
    }
    int *rows = xmalloc(sizeof(int) * (size_t)chunk), *len = xmalloc(sizeof(int) * (size_t)chunk);
    for (int c0 = 0; c0 < M; c0 += chunk) {
        int n = M - c0 < chunk ? M - c0 : chunk;
        for (int b = 0; b < n; b++) rows[b] = c0 + b;
        cx_tensor *e = encode_text(m, caption_tokens(s, rows, n, len), len);
        memcpy(txt + (size_t)c0 * D, CX_F(e), sizeof(float) * (size_t)n * D);
        cx_step_reset();
    }
    free(rows);
    free(len);
    cx_no_grad_end();
    cx_set_training(true);
    /* normalise and multiply (as the loss's normalize option does) */
    for (int r = 0; r < N + M; r++) {
        float *v = r < N ? img + (size_t)r * D : txt + (size_t)(r - N) * D;
        double ss = 0;
        for (int k = 0; k < D; k++) ss += (double)v[k] * v[k];
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int k = 0; k < D; k++) v[k] *= inv;
    }
    float *S = xmalloc(sizeof(float) * (size_t)N * M);
    cx_sgemm(false, true, N, M, D, 1.0f, img, D, txt, D, 0.0f, S, M);
    free(img);
    free(txt);
    return S;
}

/* expected R@k of a random scorer: mean over queries of 1 - C(n - r, k) / C(n, k) */
static double random_recall(const int *r, int q, int n, int k) {
    double sum = 0;
    for (int i = 0; i < q; i++) {
        double miss = 1;
        for (int t = 0; t < k && miss > 0; t++) miss *= (double)(n - r[i] - t) / (double)(n - t);
        sum += 1 - (miss > 0 ? miss : 0);
    }
    return sum / q;
}

typedef struct {
    cx_recall_result text, strict;
    double base_text_i2t[3], base_text_t2i[3], base_strict_i2t[3], base_strict_t2i[3];
} eval_result;

static const int KS[3] = {1, 5, 10};

static int evaluate(const cx_caption_set *s, const float *S, const int *tid, eval_result *er) {
    const int N = s->n, M = s->n_captions;
    uint8_t *rel = xmalloc((size_t)N * M);
    int *owner = xmalloc(sizeof(int) * (size_t)M), *ri = xmalloc(sizeof(int) * (size_t)N),
        *rt = xmalloc(sizeof(int) * (size_t)M), *si = xmalloc(sizeof(int) * (size_t)N),
        *st1 = xmalloc(sizeof(int) * (size_t)M);
    for (int i = 0; i < N; i++)
        for (int r = CX_I32P(s->ref_start)[i]; r < CX_I32P(s->ref_start)[i + 1]; r++) owner[r] = i;
    memset(rt, 0, sizeof(int) * (size_t)M);
    for (int i = 0; i < N; i++) {
        ri[i] = 0;
        si[i] = CX_I32P(s->ref_start)[i + 1] - CX_I32P(s->ref_start)[i];
        for (int j = 0; j < M; j++) {
            rel[(size_t)i * M + j] = canvas_has_text(s, tid, i, tid[j]);
            ri[i] += rel[(size_t)i * M + j];
            rt[j] += rel[(size_t)i * M + j];
        }
    }
    for (int j = 0; j < M; j++) st1[j] = 1;
    cx_tensor *sim = cx_wrap((float *)S, CX_SHAPE(N, M));
    int rc = 0;
    if (cx_recall_at_k(sim, NULL, rel, KS, 3, &er->text) != CX_OK ||
        cx_recall_at_k(sim, owner, NULL, KS, 3, &er->strict) != CX_OK) {
        fprintf(stderr, "retrieval: %s\n", cx_last_error());
        rc = 1;
    }
    for (int q = 0; q < 3; q++) {
        er->base_text_i2t[q] = random_recall(ri, N, M, KS[q]);
        er->base_text_t2i[q] = random_recall(rt, M, N, KS[q]);
        er->base_strict_i2t[q] = random_recall(si, N, M, KS[q]);
        er->base_strict_t2i[q] = random_recall(st1, M, N, KS[q]);
    }
    free(rel), free(owner), free(ri), free(rt), free(si), free(st1);
    return rc;
}

/* ---------------------------------------------------------------- the figure */
static const uint8_t BLACK[3] = {0, 0, 0}, GREEN[3] = {0, 150, 0}, RED[3] = {200, 0, 0}, GREY[3] = {110, 110, 110};

static void draw_canvas(cx_canvas *c, int x, int y, const cx_caption_set *s, int i, int scale) {
    const float *v = CX_F(s->images) + (size_t)i * s->height * s->width;
    cx_canvas_image(c, x, y, v, s->height, s->width, scale, scale, 0.0f, 1.0f, CX_CMAP_GRAY);
}

static void caption_str(const cx_caption_set *s, int row, char *buf, size_t cap) {
    cx_caption_decode(s, CX_I32P(s->captions) + (size_t)row * s->max_len, s->max_len, buf, cap);
}

/* indices of the k largest of v[0 .. n-1] (stride st) */
static void top_k(const float *v, int n, size_t st, int k, int *out) {
    for (int t = 0; t < k; t++) {
        int best = -1;
        for (int j = 0; j < n; j++) {
            bool used = false;
            for (int u = 0; u < t; u++) used |= out[u] == j;
            if (!used && (best < 0 || v[(size_t)j * st] > v[(size_t)best * st])) best = j;
        }
        out[t] = best;
    }
}

static int figure(const char *path, const cx_caption_set *s, const float *S, const int *tid, const char *title,
                  const char *subtitle) {
    const int N = s->n, M = s->n_captions, sc = 2, cw = s->width * sc, ch = s->height * sc, pad = 8;
    const int nq = 4, top_img = 5, top_txt = 3;
    /* caption queries: 4 different texts with several words, spread over the set */
    int qrows[4], nqr = 0;
    for (int j = 0; j < M && nqr < nq; j += M / 13 + 1) {
        bool dup = false;
        for (int u = 0; u < nqr; u++) dup |= tid[qrows[u]] == tid[j];
        if (!dup) qrows[nqr++] = j;
    }
    int row_h = ch + 2 * pad + 14, trow_h = row_h + 14, W = pad + top_img * (cw + pad) + pad;
    int W2 = pad + cw + pad + 330, W3 = cx_text_width(title, 2) + 2 * pad;
    if (W2 > W) W = W2;
    if (W3 > W) W = W3;
    int H = 56 + 18 + nqr * trow_h + 22 + nq * row_h + 10;
    cx_canvas c;
    if (cx_canvas_init(&c, W, H, NULL) != CX_OK) return 1;
    cx_canvas_text(&c, pad, 8, title, 2, BLACK);
    cx_canvas_text(&c, pad, 32, subtitle, 1, BLACK);
    int y = 56;
    cx_canvas_text(&c, pad, y, "caption query -> its 5 best test canvases (green frame: the caption is true of it)", 1,
                   GREY);
    y += 18;
    char buf[160];
    int idx[8];
    for (int q = 0; q < nqr; q++) {
        caption_str(s, qrows[q], buf, sizeof buf);
        char qb[180];
        snprintf(qb, sizeof qb, "query: '%s'", buf);
        cx_canvas_text(&c, pad, y, qb, 1, BLACK);
        y += 14;
        top_k(S + qrows[q], N, (size_t)M, top_img, idx);
        for (int t = 0; t < top_img; t++) {
            int x = pad + 3 + t * (cw + pad);
            bool ok = canvas_has_text(s, tid, idx[t], tid[qrows[q]]);
            cx_canvas_rect(&c, x - 3, y - 3, cw + 6, ch + 6, ok ? GREEN : RED, 3);
            draw_canvas(&c, x, y, s, idx[t], sc);
            snprintf(buf, sizeof buf, "%d. cos %.2f", t + 1, (double)S[(size_t)idx[t] * M + qrows[q]]);
            cx_canvas_text(&c, x, y + ch + 5, buf, 1, GREY);
        }
        y += row_h;
    }
    y += 4;
    cx_canvas_text(&c, pad, y,
                   "test canvas query -> its 3 best distinct captions (cosine similarity, green: a true caption)", 1,
                   GREY);
    y += 18;
    for (int q = 0; q < nq; q++) {
        int i = (int)((int64_t)(2 * q + 1) * N / (2 * nq));
        draw_canvas(&c, pad, y, s, i, sc);
        cx_canvas_rect(&c, pad - 1, y - 1, cw + 2, ch + 2, GREY, 1);
        /* distinct texts only: skip rows repeating a text already shown */
        int shown = 0;
        /* captions in score order (many rows repeat a text) */
        int nc = M < 400 ? M : 400, *cand = xmalloc(sizeof(int) * (size_t)nc);
        top_k(S + (size_t)i * M, M, 1, nc, cand);
        int seen[8];
        for (int t = 0; t < nc && shown < top_txt; t++) {
            bool dup = false;
            for (int u = 0; u < shown; u++) dup |= seen[u] == tid[cand[t]];
            if (dup) continue;
            seen[shown] = tid[cand[t]];
            char line[200];
            caption_str(s, cand[t], buf, sizeof buf);
            snprintf(line, sizeof line, "%d. %s  (%.2f)", shown + 1, buf, (double)S[(size_t)i * M + cand[t]]);
            cx_canvas_text(&c, pad + cw + pad, y + 10 + shown * 20, line, 1,
                           canvas_has_text(s, tid, i, tid[cand[t]]) ? GREEN : RED);
            shown++;
        }
        free(cand);
        caption_str(s, CX_I32P(s->ref_start)[i], buf, sizeof buf);
        char line[200];
        snprintf(line, sizeof line, "true: %s%s", buf,
                 CX_I32P(s->ref_start)[i + 1] - CX_I32P(s->ref_start)[i] > 1 ? " (and others)" : "");
        cx_canvas_text(&c, pad + cw + pad, y + 10 + top_txt * 20 + 6, line, 1, GREY);
        y += row_h;
    }
    cx_status st = cx_canvas_save(&c, path);
    cx_canvas_free(&c);
    if (st != CX_OK) {
        fprintf(stderr, "retrieval: %s\n", cx_last_error());
        return 1;
    }
    printf("  wrote %s\n", path);
    return 0;
}

/* ---------------------------------------------------------------- main */
typedef struct {
    int epochs, batch;
    double lr;
    float margin;
    bool ignore;
    int max_warmup; /* max form: epochs of the sum form first */
} train_opts;

static int usage(void) {
    fprintf(stderr, "usage: retrieval [--loss sum|max|both] [--seed S] [--data-seed S] [--train N] [--test N]\n"
                    "                 [--epochs N] [--batch B] [--lr LR] [--dim D] [--hidden H] [--embed E]\n"
                    "                 [--margin A] [--max-warmup E] [--no-ignore] [--threads T] [--figure PATH]\n"
                    "                 [--data DIR]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *fig = NULL;
    int which = 2, n_train = 20000, n_test = 1000, threads = 1;
    uint64_t seed = 1, data_seed = 1;
    hparams hp = {.D = 128, .H = 256, .E = 64};
    train_opts to = {.epochs = 5, .batch = 128, .lr = 2e-3, .margin = 0.2f, .ignore = true, .max_warmup = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-ignore")) {
            to.ignore = false;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "retrieval: %s needs a value\n", a);
            return usage();
        }
        char *end = NULL;
        double num = strtod(v, &end);
        bool is_num = end && end != v && *end == 0;
        if (!strcmp(a, "--loss")) {
            which = !strcmp(v, "sum") ? 0 : !strcmp(v, "max") ? 1 : !strcmp(v, "both") ? 2 : -1;
            if (which < 0) {
                fprintf(stderr, "retrieval: --loss %s: expected sum, max or both\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--figure")) fig = v;
        else if (!is_num) {
            fprintf(stderr, "retrieval: %s %s: expected a number\n", a, v);
            return 2;
        } else if (!strcmp(a, "--train")) n_train = (int)num;
        else if (!strcmp(a, "--test")) n_test = (int)num;
        else if (!strcmp(a, "--epochs")) to.epochs = (int)num;
        else if (!strcmp(a, "--batch")) to.batch = (int)num;
        else if (!strcmp(a, "--lr")) to.lr = num;
        else if (!strcmp(a, "--margin")) to.margin = (float)num;
        else if (!strcmp(a, "--max-warmup")) to.max_warmup = (int)num;
        else if (!strcmp(a, "--dim")) hp.D = (int)num;
        else if (!strcmp(a, "--hidden")) hp.H = (int)num;
        else if (!strcmp(a, "--embed")) hp.E = (int)num;
        else if (!strcmp(a, "--seed")) seed = (uint64_t)num;
        else if (!strcmp(a, "--data-seed")) data_seed = (uint64_t)num;
        else if (!strcmp(a, "--threads")) threads = (int)num;
        else {
            fprintf(stderr, "retrieval: unknown option %s\n", a);
            return usage();
        }
        i++;
    }
    const char *bad = n_train < 2                     ? "--train must be at least 2"
                      : n_test < 10                   ? "--test must be at least 10"
                      : to.epochs < 0                 ? "--epochs must be at least 0"
                      : to.batch < 2                  ? "--batch must be at least 2"
                      : !(to.lr > 0)                  ? "--lr must be positive"
                      : !(to.margin >= 0)             ? "--margin must be at least 0"
                      : to.max_warmup < 0             ? "--max-warmup must be at least 0"
                      : hp.D < 1 || hp.D > 4096       ? "--dim must be in 1..4096"
                      : hp.H < 1 || hp.H > 4096       ? "--hidden must be in 1..4096"
                      : hp.E < 1 || hp.E > 4096       ? "--embed must be in 1..4096"
                      : threads < 1                   ? "--threads must be at least 1"
                                                      : NULL;
    if (bad) {
        fprintf(stderr, "retrieval: %s\n", bad);
        return 2;
    }
    cx_set_threads(threads);

    /* ---- data */
    bool full = dir || strcmp(cx_fashion_mnist_dir(NULL), "data/fashion-mnist-subset") != 0;
    dir = cx_fashion_mnist_dir(dir);
    cx_dataset train_img, test_img;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &train_img) != CX_OK) {
        fprintf(stderr,
                "retrieval: cannot load Fashion-MNIST from %s: %s\n"
                "  (install dataset-fashion-mnist, run from the repository root so that data/fashion-mnist-subset "
                "is found, or pass --data DIR)\n",
                dir, cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &test_img) != CX_OK) {
        fprintf(stderr, "retrieval: cannot load the Fashion-MNIST test images from %s: %s\n", dir, cx_last_error());
        cx_dataset_free(&train_img);
        return 1;
    }
    printf("data: %s (%d train images, %d test images)%s\n", dir, cx_dataset_len(&train_img),
           cx_dataset_len(&test_img), full ? "" : " -- the repository's subset (full Fashion-MNIST not installed)");
    cx_caption_opts co = cx_caption_defaults();
    cx_caption_set *train = NULL, *test = NULL;
    co.split = "train";
    cx_status st = cx_caption_generate(&train_img, n_train, data_seed, &co, &train);
    if (st == CX_OK) {
        co.split = "test";
        st = cx_caption_generate(&test_img, n_test, data_seed + 2000, &co, &test);
    }
    cx_dataset_free(&train_img);
    cx_dataset_free(&test_img);
    if (st != CX_OK) {
        fprintf(stderr, "retrieval: %s\n", cx_last_error());
        cx_caption_set_free(train);
        return 1;
    }
    int n_unique = 0;
    int *test_tid = caption_text_ids(test, &n_unique), *train_tid = caption_text_ids(train, NULL);
    printf("  canvases: %d train (train images), %d test (t10k images), %s\n", train->n, test->n, train->recipe);
    printf("  test set: %d canvases, %d captions (%.2f per canvas), %d distinct caption texts\n", test->n,
           test->n_captions, (double)test->n_captions / test->n, n_unique);

    int forms[2], n_forms = 0, rc = 0;
    if (which != 1) forms[n_forms++] = 0;
    if (which != 0) forms[n_forms++] = 1;
    const int B = to.batch;
    for (int fi = 0; fi < n_forms; fi++) {
        const bool maxv = forms[fi] == 1;
        const char *lname = maxv ? "max" : "sum";
        model m;
        cx_seed(seed);
        model_init(&m, &hp, train->vocab_size, train->height, train->width);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m.all, &ps);
        printf("\n== %s (%s): %lld parameters; D %d, GRU %d, embedding %d, margin %g, batch %d, %s\n",
               maxv ? "hardest negative (VSE++)" : "sum of violations (VSE)", lname, (long long)cx_params_count(&ps),
               hp.D, hp.H, hp.E, (double)to.margin, B,
               to.ignore ? "duplicate true captions ignored as negatives" : "duplicates kept as negatives");
        if (maxv && to.max_warmup > 0)
            printf("  the first %d epoch(s) with the sum form (--max-warmup), then the hardest negative\n",
                   to.max_warmup);
        cx_adam_opts ao = cx_adam_defaults();
        ao.lr = to.lr;
        cx_optim *opt = cx_adam_new(&ps, &ao);
        int nb_epoch = train->n / B, total = to.epochs * nb_epoch; /* full batches only */
        cx_sched sched = cx_sched_with_warmup(cx_sched_cosine(total > 100 ? total - 100 : 1, to.lr * 0.05), 0.1,
                                              total > 100 ? 100 : 0);
        int *order = xmalloc(sizeof(int) * (size_t)train->n), *len = xmalloc(sizeof(int) * (size_t)B);
        for (int i = 0; i < train->n; i++) order[i] = i;
        cx_ranking_opts ro = cx_ranking_defaults();
        ro.margin = to.margin;
        ro.normalize = true;
        ro.reduction = CX_REDUCE_MEAN;
        double t_cpu = 0, t_wall = 0;
        int step = 0;
        for (int ep = 1; ep <= to.epochs && !rc; ep++) {
            shuffle(order, train->n);
            ro.max_violation = maxv && ep > to.max_warmup;
            double t0 = cx_now(), c0 = cx_cpu_now(), lsum = 0;
            int n_ign = 0;
            for (int bi = 0; bi < nb_epoch; bi++) {
                const int *idx = order + bi * B;
                cx_sched_apply(&sched, opt, to.lr, step);
                cx_caption_batch b;
                if (cx_caption_make_batch(train, idx, B, CX_CAPTION_REF_RANDOM, &b) != CX_OK) {
                    fprintf(stderr, "retrieval: %s\n", cx_last_error());
                    rc = 1;
                    break;
                }
                cx_tensor *ign = NULL;
                if (to.ignore) {
                    ign = cx_zeros(CX_SHAPE(B, B));
                    for (int i = 0; i < B; i++)
                        for (int j = 0; j < B; j++)
                            if (i != j && canvas_has_text(train, train_tid, idx[i], train_tid[b.caption[j]]))
                                CX_F(ign)[i * B + j] = 1, n_ign++;
                }
                ro.ignore = ign;
                cx_optim_zero_grad(opt);
                cx_tensor *loss = cx_triplet_ranking_loss(encode_images(&m, b.images),
                                                          encode_text(&m, b.input, b.lengths), &ro);
                float lv = cx_item(loss);
                if (!isfinite(lv)) {
                    fprintf(stderr, "retrieval: the loss is %g at epoch %d step %d; lower --lr\n", (double)lv, ep,
                            step);
                    rc = 1;
                    break;
                }
                cx_backward(loss);
                cx_clip_grad_norm(&ps, 5.0f);
                cx_optim_step(opt);
                cx_step_reset();
                lsum += lv;
                step++;
            }
            double wall = cx_now() - t0, cpu = cx_cpu_now() - c0;
            t_wall += wall;
            t_cpu += cpu;
            printf("  epoch %d/%d  %s loss %.4f  (%.1f ignored pairs per batch)  %.1f s (cpu %.1f s)\n", ep,
                   to.epochs, ro.max_violation ? "max" : "sum", lsum / (nb_epoch ? nb_epoch : 1),
                   to.ignore ? (double)n_ign / (nb_epoch ? nb_epoch : 1) : 0.0,
                   wall, cpu);
            fflush(stdout);
        }
        free(order);
        free(len);
        if (!rc) {
            float *S = similarities(&m, test, hp.D);
            eval_result er;
            rc = evaluate(test, S, test_tid, &er);
            if (!rc) {
                const cx_recall_result *t = &er.text, *s = &er.strict;
                printf("  test: %d canvases x %d captions\n", test->n, test->n_captions);
                printf("    %-28s %7s %7s %7s   %s\n", "", "R@1", "R@5", "R@10", "(random R@1/5/10)");
                printf("    %-28s %6.1f%% %6.1f%% %6.1f%%   (%.2f / %.2f / %.2f%%)  median rank %.1f\n",
                       "image->text (text-level)", 100 * t->i2t[0], 100 * t->i2t[1], 100 * t->i2t[2],
                       100 * er.base_text_i2t[0], 100 * er.base_text_i2t[1], 100 * er.base_text_i2t[2],
                       t->i2t_median_rank);
                printf("    %-28s %6.1f%% %6.1f%% %6.1f%%   (%.2f / %.2f / %.2f%%)  median rank %.1f\n",
                       "text->image (text-level)", 100 * t->t2i[0], 100 * t->t2i[1], 100 * t->t2i[2],
                       100 * er.base_text_t2i[0], 100 * er.base_text_t2i[1], 100 * er.base_text_t2i[2],
                       t->t2i_median_rank);
                printf("    %-28s %6.1f%% %6.1f%% %6.1f%%   (%.2f / %.2f / %.2f%%)  median rank %.1f\n",
                       "image->text (strict)", 100 * s->i2t[0], 100 * s->i2t[1], 100 * s->i2t[2],
                       100 * er.base_strict_i2t[0], 100 * er.base_strict_i2t[1], 100 * er.base_strict_i2t[2],
                       s->i2t_median_rank);
                printf("    %-28s %6.1f%% %6.1f%% %6.1f%%   (%.2f / %.2f / %.2f%%)  median rank %.1f\n",
                       "text->image (strict)", 100 * s->t2i[0], 100 * s->t2i[1], 100 * s->t2i[2],
                       100 * er.base_strict_t2i[0], 100 * er.base_strict_t2i[1], 100 * er.base_strict_t2i[2],
                       s->t2i_median_rank);
                printf("RETRIEVAL loss=%s seed=%llu data_seed=%llu train=%d test=%d captions=%d epochs=%d "
                       "max_warmup=%d ignore=%d "
                       "i2t=%.4f,%.4f,%.4f t2i=%.4f,%.4f,%.4f i2t_strict=%.4f,%.4f,%.4f t2i_strict=%.4f,%.4f,%.4f "
                       "rand_i2t=%.4f,%.4f,%.4f rand_t2i=%.4f,%.4f,%.4f train_s=%.1f train_cpu_s=%.1f\n",
                       lname, (unsigned long long)seed, (unsigned long long)data_seed, train->n, test->n,
                       test->n_captions, to.epochs, maxv ? to.max_warmup : 0, to.ignore, t->i2t[0], t->i2t[1],
                       t->i2t[2], t->t2i[0], t->t2i[1], t->t2i[2], s->i2t[0], s->i2t[1], s->i2t[2], s->t2i[0],
                       s->t2i[1], s->t2i[2],
                       er.base_text_i2t[0], er.base_text_i2t[1], er.base_text_i2t[2], er.base_text_t2i[0],
                       er.base_text_t2i[1], er.base_text_t2i[2], t_wall, t_cpu);
                fflush(stdout);
                if (fig && fi == n_forms - 1) {
                    char title[160];
                    snprintf(title, sizeof title, "Image-sentence retrieval, %s loss (test: %d canvases)",
                             maxv ? "hardest-negative (VSE++)" : "sum-of-violations (VSE)", test->n);
                    char sub[256];
                    char warm[64] = "";
                    if (maxv && to.max_warmup > 0)
                        snprintf(warm, sizeof warm, ", after %d sum-form epoch(s)", to.max_warmup);
                    /* the font has no '@': "recall at" */
                    snprintf(sub, sizeof sub,
                             "seed %llu%s. Recall at 1 / 10: image->text %.1f / %.1f%%, text->image %.1f / %.1f%% "
                             "(text-level, %d captions)",
                             (unsigned long long)seed, warm, 100 * t->i2t[0], 100 * t->i2t[2], 100 * t->t2i[0],
                             100 * t->t2i[2], test->n_captions);
                    rc = figure(fig, test, S, test_tid, title, sub);
                }
            }
            free(S);
        }
        cx_optim_free(opt);
        cx_params_free(&ps);
        cx_module_free(m.all);
    }
    free(test_tid);
    free(train_tid);
    cx_caption_set_free(train);
    cx_caption_set_free(test);
    return rc;
}
