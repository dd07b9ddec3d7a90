/* Image captioning, both forms of the course: a CNN encoder-decoder and
 * "show, attend and tell" (Xu et al., ICML 2015), trained the same way and
 * compared on captioned canvases of real Fashion-MNIST items
 * (cortex/caption.h).
 *
 *   make examples
 *   build/<variant>/examples/caption --model both --threads 1      # both models, seed 1
 *   build/<variant>/examples/caption --model sat --figures 8 --out-dir out
 *
 * The data (cx_caption_generate, fixed seeds): 64x64 canvases holding 1-3
 * Fashion-MNIST items (28x28, unscaled) at random non-overlapping positions;
 * the references are every true caption of a small grammar, e.g. "a bag",
 * "two trousers above a sneaker", "a top left of a coat left of a bag",
 * "two coats and a dress" (32 words with <pad>/<start>/<end>/<unk>; about
 * 1.02 references per canvas). Training canvases use the first 55000
 * training images, validation canvases the last 5000 training images,
 * test canvases only the t10k images: no image is shared between the
 * splits. --data-seed fixes the canvases, --seed the weights and batches.
 *
 * The two models share the encoder architecture (each has its own weights):
 * CoordConv input (the grey canvas plus x and y channels in [-1, 1]), four
 * conv3x3/BN/ReLU blocks (16, 32, 64, D channels) with max-pools after the
 * first three: an 8x8 feature grid of D = 64 channels (--grid 4|8|16).
 *   encdec  the whole grid flattened -> Linear(64 D, F)+ReLU: one image
 *           vector; h0 = tanh(W_h v), c0 = tanh(W_c v) initialise an LSTM(E,
 *           H) over the word embeddings; Linear(H, V) per step.
 *   sat     the grid's 64 cells are the annotation vectors a_i; h0, c0 =
 *           tanh(Linear(mean a_i)); per step t: Bahdanau's additive score
 *           e_ti = v . tanh(W_a a_i + W_h h_{t-1}) (W_a a_i computed once per
 *           canvas), alpha_t = softmax_i(e_ti), context z_t = beta_t sum_i
 *           alpha_ti a_i with the gate beta_t = sigmoid(f_beta(h_{t-1}));
 *           LSTMCell([E y_{t-1}; z_t], H); deep output L_o tanh(E y_{t-1} +
 *           L_h h_t + L_z z_t) (Xu et al., eq. 7 and section 4.2.1). Loss:
 *           cross-entropy + lambda sum_i (1 - sum_t alpha_ti)^2 per caption
 *           (the doubly stochastic penalty, eq. 14), both divided by the
 *           batch's tokens.
 * Both: teacher forcing on the canonical reference, Adam (lr 2e-3, 200
 * warm-up steps, cosine decay), gradient-norm clip 5, batch 64, the same
 * epochs; before each model the stream is re-seeded with --seed (its
 * initial weights, then the per-epoch shuffles). One step function serves
 * training (sat) and decoding: at start-up the stepped decoder
 * (a cx_decoder) is checked against the teacher-forced pass, and sat's
 * attention against cx_additive_attention.
 *
 * Options (defaults in brackets):
 *   --model encdec|sat|both [both]   --threads T [1]   --seed S [1]   --data-seed S [1]
 *   --train N [30000]  --val N [1000]  --test N [3000]  canvases per split
 *   --epochs N [8]  --batch B [64]  --lr LR [2e-3]  --clip C [5]
 *   --hidden H [256]  --embed E [64]  --attn-dim A [128]  --image-dim F [256]
 *   --grid 4|8|16 [8]  --channels D [64]  --no-coords  --lambda L [1]  --dropout P [0]
 *   --beam K [3]  --show N [8] example captions printed  --figures N [6]
 *   --out-dir DIR [out]  --data DIR [/usr/share/datasets/fashion-mnist, else
 *                         data/fashion-mnist-subset when run from the repository root]
 *
 * Output: per epoch the training loss per word (and sat's penalty per word)
 * and the greedy BLEU-4 / exact match on the validation canvases; on the
 * test canvases corpus BLEU-1..4 (cx_bleu: Papineni et al., validated
 * against NLTK's corpus_bleu) and exact match (the caption equals one of the
 * canvas's references) for greedy decoding and beam search (width --beam);
 * a machine-readable line "CAPTION model=... greedy_bleu=b1,b2,b3,b4 ...".
 * Pictures in --out-dir: caption_attention.png (sat: per test canvas the
 * canvas, then one panel per generated word with the attention weights of
 * that step over the canvas, the word under it, the caption in green when
 * it equals a reference, red otherwise, and a colour scale) and, with
 * --model both, caption_compare.png (both models' greedy captions).
 *
 * Exit codes: 0 success; 1 data missing or unreadable, a failure while
 * training (non-finite loss), decoding or writing a picture, or the
 * start-up checks failing; 2 a bad option.
 *
 * Measured (defaults: 30000 training / 1000 validation / 3000 test canvases,
 * 8 epochs of 469 batches, beam 3, --threads 1; AMD EPYC, 2 vCPUs shared
 * with other jobs, load 2-15), test BLEU-4 / exact match, two seeds:
 *              seed 1 greedy   seed 1 beam    seed 2 greedy   seed 2 beam
 *   encdec     0.476 / 39.8%   0.478 / 41.2%  0.508 / 43.4%   0.495 / 44.4%
 *   sat        0.657 / 66.0%   0.687 / 67.2%  0.682 / 65.4%   0.699 / 66.6%
 * Training: encdec 309 s CPU (1470 s wall), sat 411-415 s CPU (1711 s wall)
 * per seed. --lambda 0 (seed 1): BLEU-4 0.653 / 0.681, exact 64.7% / 65.5%,
 * about the same, with much sharper maps (largest weight 0.5-0.8 against
 * 0.09-0.19 with lambda 1). BLEU-1..4 and the pictures: examples/README.md.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

#define MAXL CX_CAPTION_MAX_LEN /* decoded tokens at most: 10 words + <end> fit */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "caption: out of memory\n");
        exit(1);
    }
    return p;
}

/* ================================================================ the models */

typedef enum { ENCDEC = 0, SAT = 1 } model_kind;
static const char *const KIND_NAME[] = {"encdec", "sat"};
static const char *const KIND_TITLE[] = {"encoder-decoder", "show, attend and tell"};

typedef struct {
    int grid;      /* side of the feature grid: 4, 8 or 16 */
    int D;         /* channels of the grid (annotation size) */
    int H, E, A;   /* LSTM, embedding (= deep-output size), attention sizes */
    int F;         /* encoder-decoder: size of the image vector */
    bool coords;   /* two coordinate channels appended to the input (CoordConv) */
    float lambda;  /* doubly stochastic attention penalty */
    float dropout; /* before the output layer, training only */
} hparams;

typedef struct {
    model_kind kind;
    hparams hp;
    int V, L;             /* vocabulary, grid locations */
    cx_module *all;       /* Sequential used as a container: names + ownership */
    cx_module *cnn, *emb; /* both */
    /* encoder-decoder */
    cx_module *fc, *init_h, *init_c, *lstm, *out;
    cx_tensor *w_ih, *w_hh, *b_ih, *b_hh; /* the LSTM layer's weights, for the stepped cell */
    /* show, attend and tell */
    cx_module *att_a, *att_h, *att_v, *f_beta, *cell, *out_h, *out_z, *out_o;
} model;

/* conv 3x3 (padding 1, no bias: BN follows), BN, ReLU[, max-pool 2] */
static void conv_block(cx_module *seq, int in, int out, bool pool) {
    cx_conv_opts o = cx_conv_defaults();
    o.padding[0] = o.padding[1] = 1;
    cx_sequential_add(seq, NULL, cx_conv2d_new(in, out, 3, 3, &o, false));
    cx_sequential_add(seq, NULL, cx_batchnorm2d_new(out));
    cx_sequential_add(seq, NULL, cx_activation_new(CX_ACT_RELU, 0));
    if (pool) cx_sequential_add(seq, NULL, cx_maxpool2d_new(2, 2, 0));
}

/* The CNN both models share (as an architecture; each model has its own):
 * on a 64x64 canvas, three conv/BN/ReLU/max-pool blocks (16, 32, 64
 * channels: 32x32, 16x16, 8x8), then conv/BN/ReLU 64 -> D at 8x8: the 8x8
 * feature grid (receptive field 38 pixels, a 28-pixel item spans about 4x4
 * cells). --grid 16 drops the third pool, --grid 4 adds one after the last
 * conv. */
static cx_module *cnn_new(const hparams *hp) {
    cx_module *s = cx_sequential_new();
    conv_block(s, hp->coords ? 3 : 1, 16, true);
    conv_block(s, 16, 32, true);
    conv_block(s, 32, 64, hp->grid != 16);
    conv_block(s, 64, hp->D, hp->grid == 4);
    return s;
}

static void add(model *m, const char *name, cx_module **slot, cx_module *mod) {
    *slot = mod;
    cx_sequential_add(m->all, name, mod);
}

static void model_init(model *m, model_kind kind, const hparams *hp, int V) {
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->hp = *hp;
    m->V = V;
    m->L = hp->grid * hp->grid;
    int D = hp->D, H = hp->H, E = hp->E, A = hp->A;
    m->all = cx_sequential_new();
    add(m, "encoder", &m->cnn, cnn_new(hp));
    add(m, "embedding", &m->emb, cx_embedding_new(V, E, CX_CAP_PAD));
    cx_rnn_opts ro = cx_rnn_defaults();
    ro.set_forget_bias = true; /* forget-gate bias 1 at start */
    ro.forget_bias = 1.0f;
    if (kind == ENCDEC) {
        add(m, "fc", &m->fc, cx_linear_new(m->L * D, hp->F, true));
        add(m, "init_h", &m->init_h, cx_linear_new(hp->F, H, true));
        add(m, "init_c", &m->init_c, cx_linear_new(hp->F, H, true));
        add(m, "decoder", &m->lstm, cx_lstm_new(E, H, &ro));
        add(m, "out", &m->out, cx_linear_new(H, V, true));
        /* the decoder layer's own parameters, for the step function */
        m->w_ih = cx_module_tensor(m->lstm, "weight_ih_l0");
        m->w_hh = cx_module_tensor(m->lstm, "weight_hh_l0");
        m->b_ih = cx_module_tensor(m->lstm, "bias_ih_l0");
        m->b_hh = cx_module_tensor(m->lstm, "bias_hh_l0");
        if (!m->w_ih || !m->w_hh || !m->b_ih || !m->b_hh) {
            fprintf(stderr, "caption: decoder parameters not found by name\n");
            exit(1);
        }
        return;
    }
    add(m, "init_h", &m->init_h, cx_linear_new(D, H, true));
    add(m, "init_c", &m->init_c, cx_linear_new(D, H, true));
    /* e_ti = v . tanh(W_a a_i + W_h h_{t-1}): Bahdanau's score, the layout of
     * cx_additive_attention (w1 = W_a, w2 = W_h, v), no biases */
    add(m, "att_a", &m->att_a, cx_linear_new(D, A, false));
    add(m, "att_h", &m->att_h, cx_linear_new(H, A, false));
    add(m, "att_v", &m->att_v, cx_linear_new(A, 1, false));
    add(m, "f_beta", &m->f_beta, cx_linear_new(H, 1, true));
    add(m, "decoder", &m->cell, cx_lstm_cell_new(E + D, H, &ro));
    add(m, "out_h", &m->out_h, cx_linear_new(H, E, true));
    add(m, "out_z", &m->out_z, cx_linear_new(D, E, false));
    add(m, "out_o", &m->out_o, cx_linear_new(E, V, true));
}

/* ---------------------------------------------------------------- encoder */

/* The annotation vectors a [B, L, D] of canvases img [B, 1, S, S]: the CNN's
 * feature grid, location i = row * grid + column. */
static cx_tensor *annotations(model *m, cx_tensor *img) {
    int B = img->shape[0], S = img->shape[2];
    cx_tensor *x = img;
    if (m->hp.coords) {
        /* CoordConv (Liu et al. 2018): x and y in [-1, 1] as two more channels */
        cx_tensor *xy = cx_empty(CX_F32, CX_SHAPE(B, 2, S, S));
        float *p = CX_F(xy);
        for (int b = 0; b < B; b++)
            for (int r = 0; r < S; r++)
                for (int c = 0; c < S; c++) {
                    p[(((size_t)b * 2 + 0) * S + r) * S + c] = 2.0f * (float)c / (float)(S - 1) - 1.0f;
                    p[(((size_t)b * 2 + 1) * S + r) * S + c] = 2.0f * (float)r / (float)(S - 1) - 1.0f;
                }
        x = cx_concat((cx_tensor *[]){img, xy}, 2, 1);
    }
    cx_tensor *f = cx_module_forward(m->cnn, x); /* [B, D, g, g] */
    if (f->shape[2] != m->hp.grid || f->shape[3] != m->hp.grid) {
        fprintf(stderr, "caption: the CNN gives a %dx%d grid, expected %dx%d\n", f->shape[2], f->shape[3],
                m->hp.grid, m->hp.grid);
        exit(1);
    }
    return cx_reshape(cx_permute(f, (const int[]){0, 2, 3, 1}), CX_SHAPE(B, m->L, m->hp.D));
}

/* What the decoder reads from the encoder. */
typedef struct {
    cx_tensor *a;    /* [B, L, D] annotations (attend) */
    cx_tensor *proj; /* [B, L, A] W_a a_i, computed once per canvas (attend) */
    cx_tensor *h, *c; /* [B, H] initial state */
} enc_out;

static enc_out encode_from(model *m, cx_tensor *a) {
    int B = a->shape[0];
    enc_out e = {0};
    if (m->kind == ENCDEC) {
        /* the image vector: one fully connected layer over the whole grid */
        cx_tensor *v = cx_relu(cx_module_forward(m->fc, cx_reshape(a, CX_SHAPE(B, m->L * m->hp.D))));
        e.h = cx_tanh(cx_module_forward(m->init_h, v));
        e.c = cx_tanh(cx_module_forward(m->init_c, v));
        return e;
    }
    /* h0, c0 from the mean annotation (Xu et al., section 3.1.2) */
    cx_tensor *mean = cx_mean_axis(a, 1, false);
    e.a = a;
    e.proj = cx_module_forward(m->att_a, a);
    e.h = cx_tanh(cx_module_forward(m->init_h, mean));
    e.c = cx_tanh(cx_module_forward(m->init_c, mean));
    return e;
}

/* ---------------------------------------------------------------- decoder step */

/* One decoder step of a batch from the embedded previous words x [B, E] and
 * the state (*h, *c) [B, H], updated in place; returns the logits [B, V].
 * alpha (attend, may be NULL) gets the attention weights [B, L]. The one
 * step function of training (attend) and of decoding (both). */
static cx_tensor *dec_step_t(model *m, const enc_out *e, cx_tensor *x, cx_tensor **h, cx_tensor **c,
                             cx_tensor **alpha) {
    int B = x->shape[0], H = m->hp.H, D = m->hp.D, A = m->hp.A;
    if (m->kind == ENCDEC) {
        cx_rnn_out r = cx_lstm_cell(x, *h, *c, m->w_ih, m->w_hh, m->b_ih, m->b_hh);
        *h = r.h;
        *c = r.c;
        cx_tensor *o = r.h;
        if (m->hp.dropout > 0) o = cx_dropout(o, m->hp.dropout);
        return cx_module_forward(m->out, o);
    }
    /* soft attention from the previous state: what cx_additive_attention
     * computes, with W_a a_i taken from e->proj instead of recomputed; the
     * fused attention op does the softmax over the L locations and the
     * weighted sum z = sum_i alpha_i a_i */
    cx_tensor *q = cx_reshape(cx_module_forward(m->att_h, *h), CX_SHAPE(B, 1, A));
    cx_tensor *score = cx_module_forward(m->att_v, cx_tanh(cx_add(e->proj, q))); /* [B, L, 1] */
    cx_attn_opts ao = cx_attn_defaults();
    ao.scale = 1.0f;
    cx_tensor *w = NULL;
    cx_tensor *ctx = cx_attention(cx_ones(CX_SHAPE(B, 1, 1)), score, e->a, &ao, &w); /* [B, 1, D] */
    ctx = cx_reshape(ctx, CX_SHAPE(B, D));
    /* the gating scalar beta = sigmoid(f_beta(h_{t-1})) (section 4.2.1) */
    cx_tensor *beta = cx_sigmoid(cx_module_forward(m->f_beta, *h)); /* [B, 1] */
    cx_tensor *z = cx_mul(ctx, beta);
    cx_rnn_out r = cx_rnn_forward(m->cell, cx_concat((cx_tensor *[]){x, z}, 2, 1), *h, *c);
    *h = r.h;
    *c = r.c;
    /* deep output (eq. 7): L_o tanh(E y_{t-1} + L_h h_t + L_z z_t) */
    cx_tensor *d = cx_tanh(cx_add(cx_add(x, cx_module_forward(m->out_h, r.h)), cx_module_forward(m->out_z, z)));
    if (m->hp.dropout > 0) d = cx_dropout(d, m->hp.dropout);
    if (alpha) *alpha = cx_reshape(w, CX_SHAPE(B, m->L));
    (void)H;
    return cx_module_forward(m->out_o, d);
}

/* Teacher-forced logits [T, B, V] from decoder inputs din [T, B]; alphas
 * (attend, may be NULL) gets the weights of every step [T, B, L]. */
static cx_tensor *decode_teacher(model *m, const enc_out *e, cx_tensor *din, cx_tensor **alphas) {
    int T = din->shape[0], B = din->shape[1], H = m->hp.H;
    cx_tensor *emb = cx_module_forward(m->emb, din); /* [T, B, E] */
    if (m->kind == ENCDEC) { /* the fused sequence layer */
        cx_rnn_out r = cx_rnn_forward(m->lstm, emb, cx_reshape(e->h, CX_SHAPE(1, B, H)),
                                      cx_reshape(e->c, CX_SHAPE(1, B, H)));
        cx_tensor *o = r.output;
        if (m->hp.dropout > 0) o = cx_dropout(o, m->hp.dropout);
        return cx_reshape(cx_module_forward(m->out, cx_reshape(o, CX_SHAPE(T * B, H))), CX_SHAPE(T, B, m->V));
    }
    cx_tensor *h = e->h, *c = e->c;
    cx_tensor **lg = cx_arena_alloc((size_t)T * sizeof *lg), **al = cx_arena_alloc((size_t)T * sizeof *al);
    for (int t = 0; t < T; t++) {
        cx_tensor *x = cx_reshape(cx_slice(emb, 0, t, t + 1, 1), CX_SHAPE(B, m->hp.E));
        lg[t] = dec_step_t(m, e, x, &h, &c, &al[t]);
    }
    if (alphas) *alphas = cx_stack(al, T, 0);
    return cx_stack(lg, T, 0);
}

/* ---------------------------------------------------------------- the decoder adaptor */

/* One canvas (B = 1) as a cx_decoder: state = [h; c], 2H floats. */
typedef struct {
    model *m;
    enc_out e;
    float *align;   /* if not NULL: the weights of step k in align[k * L ..] */
    int align_rows;
} dec_ctx;

static cx_status dec_step(void *user, const int *prefix, int n_prefix, const void *state_in, void *state_out,
                          float *logp) {
    dec_ctx *dc = user;
    model *m = dc->m;
    int H = m->hp.H;
    const float *st = state_in;
    int32_t tok = prefix[n_prefix - 1];
    cx_tensor *x = cx_embedding(cx_embedding_weight(m->emb), cx_from_i32(&tok, CX_SHAPE(1)), CX_CAP_PAD);
    cx_tensor *h = cx_from_data(st, CX_SHAPE(1, H)), *c = cx_from_data(st + H, CX_SHAPE(1, H)), *w = NULL;
    cx_tensor *lg = dec_step_t(m, &dc->e, x, &h, &c, m->kind == SAT ? &w : NULL);
    memcpy(logp, CX_F(lg), (size_t)m->V * sizeof(float));
    memcpy((float *)state_out, CX_F(h), (size_t)H * sizeof(float));
    memcpy((float *)state_out + H, CX_F(c), (size_t)H * sizeof(float));
    if (dc->align && w && n_prefix - 1 < dc->align_rows)
        memcpy(dc->align + (size_t)(n_prefix - 1) * m->L, CX_F(w), (size_t)m->L * sizeof(float));
    return CX_OK;
}

/* ================================================================ training */

static void shuffle(int *v, int n) {
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates, Cortex PRNG */
        int j = (int)cx_rand_below((uint32_t)i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* The loss of a batch: mean cross-entropy per real target token, plus (attend)
 * lambda / tokens * sum_b sum_i (1 - sum_{t < len_b} alpha_bti)^2, the paper's
 * per-caption penalty (eq. 14) on the same per-token scale. */
static cx_tensor *batch_loss(model *m, const cx_caption_batch *b, double *ce_out, double *pen_out) {
    cx_tensor *a = annotations(m, b->images);
    enc_out e = encode_from(m, a);
    cx_tensor *alphas = NULL;
    cx_tensor *logits = decode_teacher(m, &e, b->input, m->kind == SAT ? &alphas : NULL);
    cx_tensor *loss = cx_seq_cross_entropy(logits, b->target, b->lengths, false, CX_REDUCE_MEAN);
    *ce_out = cx_item(loss);
    *pen_out = 0;
    if (m->kind == SAT && m->hp.lambda > 0) {
        int T = b->steps, B = b->n;
        long tokens = 0;
        cx_tensor *mask = cx_empty(CX_F32, CX_SHAPE(T, B, 1));
        for (int t = 0; t < T; t++)
            for (int k = 0; k < B; k++) CX_F(mask)[(size_t)t * B + k] = t < b->lengths[k] ? 1.0f : 0.0f;
        for (int k = 0; k < B; k++) tokens += b->lengths[k];
        cx_tensor *s = cx_sum_axis(cx_mul(alphas, mask), 0, false); /* [B, L] */
        cx_tensor *dev = cx_add_scalar(cx_neg(s), 1.0f);
        cx_tensor *pen = cx_mul_scalar(cx_sum(cx_mul(dev, dev)), m->hp.lambda / (float)tokens);
        *pen_out = cx_item(pen);
        loss = cx_add(loss, pen);
    }
    return loss;
}

typedef struct {
    int epochs, batch;
    double lr;
    float clip;
} train_opts;

/* ================================================================ evaluation */

typedef struct {
    int n;
    int32_t *greedy, *beam; /* n x MAXL tokens (the <end> included when emitted) */
    int *greedy_len, *beam_len;
    float *align;           /* n x MAXL x L greedy attention weights (attend), or NULL */
} decoded;

static void decoded_alloc(decoded *d, int n, int L, bool align) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->greedy = xmalloc((size_t)n * MAXL * sizeof(int32_t));
    d->beam = xmalloc((size_t)n * MAXL * sizeof(int32_t));
    d->greedy_len = xmalloc((size_t)n * sizeof(int));
    d->beam_len = xmalloc((size_t)n * sizeof(int));
    if (align) {
        d->align = xmalloc((size_t)n * MAXL * L * sizeof(float));
        memset(d->align, 0, (size_t)n * MAXL * L * sizeof(float));
    }
}

static void decoded_free(decoded *d) {
    free(d->greedy);
    free(d->beam);
    free(d->greedy_len);
    free(d->beam_len);
    free(d->align);
    memset(d, 0, sizeof *d);
}

/* Decode canvases 0 .. n-1 of s greedily and (beam > 1) with beam search,
 * one canvas at a time through the cx_decoder adaptor. The CNN runs on
 * chunks of canvases; their annotations are kept on the heap while the
 * chunk's canvases are decoded. */
static void decode_set(model *m, const cx_caption_set *s, int n, int beam, decoded *out) {
    cx_no_grad_begin();
    cx_set_training(false);
    int H = m->hp.H, L = m->L, D = m->hp.D, chunk = 100;
    float *ann = xmalloc((size_t)chunk * L * D * sizeof(float));
    float st0[2 * 1024];
    if (2 * H > 2 * 1024) {
        fprintf(stderr, "caption: --hidden %d too large for the decoder state buffer\n", H);
        exit(1);
    }
    dec_ctx dc = {.m = m};
    cx_decoder dec = {.vocab = m->V, .state_bytes = 2 * (size_t)H * sizeof(float), .step = dec_step, .user = &dc};
    int *idx = xmalloc((size_t)chunk * sizeof(int));
    for (int s0 = 0; s0 < n; s0 += chunk) {
        int nb = n - s0 < chunk ? n - s0 : chunk;
        for (int k = 0; k < nb; k++) idx[k] = s0 + k;
        cx_caption_batch b;
        if (cx_caption_make_batch(s, idx, nb, 0, &b) != CX_OK) {
            fprintf(stderr, "caption: %s\n", cx_last_error());
            exit(1);
        }
        memcpy(ann, CX_F(annotations(m, b.images)), (size_t)nb * L * D * sizeof(float));
        cx_step_reset();
        for (int k = 0; k < nb; k++) {
            int i = s0 + k;
            dc.e = encode_from(m, cx_wrap(ann + (size_t)k * L * D, CX_SHAPE(1, L, D)));
            memcpy(st0, CX_F(dc.e.h), (size_t)H * sizeof(float));
            memcpy(st0 + H, CX_F(dc.e.c), (size_t)H * sizeof(float));
            dc.align = out->align ? out->align + (size_t)i * MAXL * L : NULL;
            dc.align_rows = MAXL;
            cx_status rc = cx_decode_greedy(&dec, st0, CX_CAP_START, CX_CAP_END, MAXL - 1,
                                            out->greedy + (size_t)i * MAXL, &out->greedy_len[i], NULL);
            dc.align = NULL;
            if (rc == CX_OK && beam > 1) {
                cx_beam_opts bo = cx_beam_defaults(beam, MAXL - 1);
                bo.stop_token = CX_CAP_END;
                rc = cx_beam_search(&dec, st0, CX_CAP_START, &bo, out->beam + (size_t)i * MAXL, &out->beam_len[i],
                                    NULL, NULL);
            } else if (rc == CX_OK) {
                memcpy(out->beam + (size_t)i * MAXL, out->greedy + (size_t)i * MAXL, MAXL * sizeof(int32_t));
                out->beam_len[i] = out->greedy_len[i];
            }
            if (rc != CX_OK) {
                fprintf(stderr, "caption: decoding failed: %s\n", cx_last_error());
                exit(1);
            }
            cx_step_reset();
        }
    }
    free(idx);
    free(ann);
    cx_set_training(true);
    cx_no_grad_end();
}

/* BLEU of the greedy (which = 0) or beam (1) captions of the first n canvases. */
static cx_bleu_result score(const cx_caption_set *s, const decoded *d, int which) {
    cx_token_seq *c = xmalloc((size_t)s->n * sizeof *c);
    for (int i = 0; i < s->n; i++)
        c[i] = (cx_token_seq){(which ? d->beam : d->greedy) + (size_t)i * MAXL,
                              (which ? d->beam_len : d->greedy_len)[i]};
    cx_bleu_result r;
    if (cx_caption_bleu(s, c, &r) != CX_OK) {
        fprintf(stderr, "caption: %s\n", cx_last_error());
        exit(1);
    }
    free(c);
    return r;
}

/* Does the caption equal one of canvas i's references? */
static bool is_exact(const cx_caption_set *s, int i, const int32_t *ids, int n) {
    int words = n > 0 && ids[n - 1] == CX_CAP_END ? n - 1 : n;
    for (int r = CX_I32P(s->ref_start)[i]; r < CX_I32P(s->ref_start)[i + 1]; r++) {
        const int32_t *ref = CX_I32P(s->captions) + (size_t)r * s->max_len;
        if (CX_I32P(s->caption_len)[r] - 2 == words && !memcmp(ref + 1, ids, (size_t)words * sizeof(int32_t)))
            return true;
    }
    return false;
}

static void caption_text(const cx_caption_set *s, const int32_t *ids, int n, char *buf, size_t cap) {
    cx_caption_decode(s, ids, n, buf, cap);
}
static void ref_text(const cx_caption_set *s, int i, int r, char *buf, size_t cap) {
    int row = CX_I32P(s->ref_start)[i] + r;
    cx_caption_decode(s, CX_I32P(s->captions) + (size_t)row * s->max_len, s->max_len, buf, cap);
}

/* ---------------------------------------------------------------- start-up checks */

/* The decoder stepped one word at a time through the cx_decoder adaptor must
 * give the logits of the teacher-forced pass of training (for encdec the
 * fused LSTM layer, for attend the same step function batched); and the
 * precomputed attention must equal cx_additive_attention. Returns the largest
 * |difference|. */
static double check_model(model *m, const cx_caption_set *s, double *att_diff) {
    cx_no_grad_begin();
    cx_set_training(false);
    int idx[2] = {0, 1 < s->n ? 1 : 0}, H = m->hp.H;
    cx_caption_batch b;
    if (cx_caption_make_batch(s, idx, 2, 0, &b) != CX_OK) {
        fprintf(stderr, "caption: %s\n", cx_last_error());
        exit(1);
    }
    cx_tensor *a = annotations(m, b.images);
    enc_out e = encode_from(m, a);
    cx_tensor *logits = decode_teacher(m, &e, b.input, NULL); /* [T, 2, V] */
    double worst = 0;
    *att_diff = 0;
    for (int k = 0; k < 2; k++) {
        dec_ctx dc = {.m = m, .e = encode_from(m, cx_reshape(cx_slice(a, 0, k, k + 1, 1), CX_SHAPE(1, m->L, m->hp.D)))};
        float *st = xmalloc(4 * (size_t)H * sizeof(float)), *lg = xmalloc((size_t)m->V * sizeof(float));
        memcpy(st, CX_F(dc.e.h), (size_t)H * sizeof(float));
        memcpy(st + H, CX_F(dc.e.c), (size_t)H * sizeof(float));
        int prefix[MAXL + 1];
        for (int t = 0; t < b.lengths[k]; t++) prefix[t] = CX_I32P(b.input)[t * 2 + k];
        for (int t = 0; t < b.lengths[k]; t++) {
            float *in = st + (t % 2) * 2 * H, *out = st + ((t + 1) % 2) * 2 * H;
            if (m->kind == SAT) { /* the attention of this step against the library's composition */
                cx_tensor *w1 = cx_linear_weight(m->att_a), *w2 = cx_linear_weight(m->att_h);
                cx_tensor *v = cx_reshape(cx_linear_weight(m->att_v), CX_SHAPE(m->hp.A));
                cx_tensor *hh = cx_from_data(in, CX_SHAPE(1, H)), *w_lib = NULL;
                cx_tensor *ctx_lib = cx_additive_attention(dc.e.a, hh, w1, w2, v, NULL, &w_lib);
                float al[4096];
                dc.align = al;
                dc.align_rows = 1;
                int one_prefix = prefix[t];
                dec_step(&dc, &one_prefix, 1, in, out, lg);
                dc.align = NULL;
                for (int i = 0; i < m->L; i++) {
                    double d = fabs((double)al[i] - CX_F(w_lib)[i]);
                    if (d > *att_diff) *att_diff = d;
                }
                (void)ctx_lib;
            } else {
                dec_step(&dc, prefix, t + 1, in, out, lg);
            }
            for (int v = 0; v < m->V; v++) {
                double d = fabs((double)lg[v] - CX_F(logits)[((size_t)t * 2 + k) * m->V + v]);
                if (d > worst) worst = d;
            }
        }
        free(st);
        free(lg);
    }
    cx_step_reset();
    cx_set_training(true);
    cx_no_grad_end();
    return worst;
}

/* ================================================================ pictures */

static const uint8_t BLACK[3] = {0, 0, 0}, GREY[3] = {110, 110, 110}, GREEN[3] = {0, 130, 0},
                     RED[3] = {200, 0, 0}, WHITE[3] = {255, 255, 255};

/* The attention figure: one row per canvas, the canvas, then the canvas under
 * the attention map of each generated word (greedy), the word below, a title
 * with the caption and the reference, a colour scale 0 .. the row's largest
 * weight. */
static cx_status attention_png(const model *m, const cx_caption_set *s, const decoded *d, const int *idx, int n,
                               const char *path) {
    const int Z = 2, S = s->height * Z, PAD = 10, TITLE = 22, WORD = 24, GAP = 8;
    if (n > 64) n = 64;
    int max_panels = 0;
    for (int j = 0; j < n; j++)
        if (d->greedy_len[idx[j]] > max_panels) max_panels = d->greedy_len[idx[j]];
    int row_h = TITLE + S + WORD + GAP, L = m->L, g = m->hp.grid;
    const char *head = "Show, attend and tell: the attention of each generated word (greedy decoding, "
                       "heat = attention weight, scale per row)";
    char titles[64][400];
    int W = PAD + (1 + max_panels) * (S + GAP) + 70, Ht = 40 + n * row_h + PAD;
    if (cx_text_width(head, 2) + 2 * PAD > W) W = cx_text_width(head, 2) + 2 * PAD;
    for (int j = 0; j < n; j++) {
        int i = idx[j], nr = CX_I32P(s->ref_start)[i + 1] - CX_I32P(s->ref_start)[i];
        char cap[160], ref[160];
        caption_text(s, d->greedy + (size_t)i * MAXL, d->greedy_len[i], cap, sizeof cap);
        ref_text(s, i, 0, ref, sizeof ref);
        if (nr > 1) snprintf(titles[j], sizeof titles[j], "%s   (reference: %s, and %d more)", cap, ref, nr - 1);
        else snprintf(titles[j], sizeof titles[j], "%s   (reference: %s)", cap, ref);
        if (cx_text_width(titles[j], 2) + 2 * PAD > W) W = cx_text_width(titles[j], 2) + 2 * PAD;
    }
    cx_canvas cv;
    cx_status st = cx_canvas_init(&cv, W, Ht, NULL);
    if (st) return st;
    cx_canvas_text(&cv, PAD, 10, head, 2, BLACK);
    for (int j = 0; j < n; j++) {
        int i = idx[j], y0 = 40 + j * row_h;
        const int32_t *ids = d->greedy + (size_t)i * MAXL;
        int nw = d->greedy_len[i];
        char cap[160];
        caption_text(s, ids, nw, cap, sizeof cap);
        /* the caption in green (a reference) or red, then the reference in grey */
        cx_canvas_text(&cv, PAD, y0, titles[j], 2, GREY);
        cx_canvas_text(&cv, PAD, y0, cap, 2, is_exact(s, i, ids, nw) ? GREEN : RED);
        const float *img = CX_F(s->images) + (size_t)i * s->height * s->width;
        int py = y0 + TITLE;
        cx_canvas_image(&cv, PAD, py, img, s->height, s->width, Z, Z, 0, 1, CX_CMAP_GRAY);
        cx_canvas_text(&cv, PAD + (S - cx_text_width("canvas", 2)) / 2, py + S + 6, "canvas", 2, GREY);
        float hi = 0;
        const float *al = d->align + (size_t)i * MAXL * L;
        for (int t = 0; t < nw; t++)
            for (int k = 0; k < L; k++)
                if (al[(size_t)t * L + k] > hi) hi = al[(size_t)t * L + k];
        if (!(hi > 0)) hi = 1;
        for (int t = 0; t < nw; t++) {
            int px = PAD + (1 + t) * (S + GAP);
            cx_canvas_image(&cv, px, py, img, s->height, s->width, Z, Z, 0, 1, CX_CMAP_GRAY);
            cx_canvas_overlay(&cv, px, py, S, S, al + (size_t)t * L, g, g, 0, hi, 0.75f, CX_CMAP_HOT);
            char w[32];
            snprintf(w, sizeof w, "%s", ids[t] >= 0 && ids[t] < s->vocab_size ? s->words[ids[t]] : "<unk>");
            cx_canvas_text(&cv, px + (S - cx_text_width(w, 2)) / 2, py + S + 6, w, 2, BLACK);
        }
        cx_canvas_colorbar(&cv, PAD + (1 + max_panels) * (S + GAP), py, 12, S, 0, hi, CX_CMAP_HOT, 1);
    }
    st = cx_canvas_save(&cv, path);
    cx_canvas_free(&cv);
    return st;
}

/* The comparison figure: canvases with their first reference and each
 * model's greedy caption, green when it equals a reference, red otherwise. */
static cx_status compare_png(const cx_caption_set *s, const decoded *dm, int n_models, const model_kind *kinds,
                             const int *idx, int n, const char *path) {
    const int Z = 3, S = s->height * Z, CW = S + 20 > 290 ? S + 20 : 290, PAD = 10, LINE = 12, cols = 4;
    int rows = (n + cols - 1) / cols, CH = S + 8 + (2 + n_models) * LINE + 12;
    cx_canvas cv;
    cx_status st = cx_canvas_init(&cv, PAD + cols * CW, 36 + rows * CH, NULL);
    if (st) return st;
    cx_canvas_text(&cv, PAD, 10, "Greedy captions of test canvases (green: equal to a reference, red: not)", 2, BLACK);
    for (int j = 0; j < n; j++) {
        int i = idx[j], x = PAD + (j % cols) * CW, y = 36 + (j / cols) * CH;
        cx_canvas_image(&cv, x, y, CX_F(s->images) + (size_t)i * s->height * s->width, s->height, s->width, Z, Z, 0,
                        1, CX_CMAP_GRAY);
        char line[200], cap[160];
        int ty = y + S + 6;
        ref_text(s, i, 0, cap, sizeof cap);
        snprintf(line, sizeof line, "reference: %s", cap);
        cx_canvas_text(&cv, x, ty, line, 1, BLACK);
        ty += LINE;
        for (int k = 0; k < n_models; k++) {
            const int32_t *ids = dm[k].greedy + (size_t)i * MAXL;
            caption_text(s, ids, dm[k].greedy_len[i], cap, sizeof cap);
            snprintf(line, sizeof line, "%-9s %s", kinds[k] == ENCDEC ? "enc-dec:" : "SAT:", cap);
            cx_canvas_text(&cv, x, ty, line, 1, is_exact(s, i, ids, dm[k].greedy_len[i]) ? GREEN : RED);
            ty += LINE;
        }
    }
    (void)WHITE;
    st = cx_canvas_save(&cv, path);
    cx_canvas_free(&cv);
    return st;
}

/* ================================================================ main */

static int usage(void) {
    fprintf(stderr,
            "usage: caption [--model encdec|sat|both] [--data DIR] [--train N] [--val N] [--test N]\n"
            "               [--epochs N] [--batch B] [--lr LR] [--clip C] [--hidden H] [--embed E]\n"
            "               [--attn-dim A] [--image-dim F] [--grid 4|8|16] [--channels D] [--lambda L]\n"
            "               [--dropout P] [--no-coords] [--beam K] [--seed S] [--data-seed S] [--threads T]\n"
            "               [--show N] [--figures N] [--out-dir DIR]\n");
    return 2;
}

typedef struct {
    double train_s, train_cpu_s, decode_s;
    cx_bleu_result g, b;
    int64_t params;
} run_result;

int main(int argc, char **argv) {
    const char *dir = NULL, *out_dir = "out";
    int which = 2, n_train = 30000, n_val = 1000, n_test = 3000, threads = 1, beam = 3, show = 8, figures = 6;
    uint64_t seed = 1, data_seed = 1;
    hparams hp = {.grid = 8, .D = 64, .H = 256, .E = 64, .A = 128, .F = 256, .coords = true, .lambda = 1.0f,
                  .dropout = 0};
    train_opts to = {.epochs = 8, .batch = 64, .lr = 2e-3, .clip = 5.0f};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-coords")) {
            hp.coords = false;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "caption: %s needs a value\n", a);
            return usage();
        }
        char *end = NULL;
        double num = strtod(v, &end);
        bool is_num = end && end != v && *end == 0;
        if (!strcmp(a, "--model")) {
            which = !strcmp(v, "encdec") ? 0 : !strcmp(v, "sat") ? 1 : !strcmp(v, "both") ? 2 : -1;
            if (which < 0) {
                fprintf(stderr, "caption: --model %s: expected encdec, sat or both\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--out-dir")) out_dir = v;
        else if (!is_num) {
            fprintf(stderr, "caption: %s %s: expected a number\n", a, v);
            return 2;
        } else if (!strcmp(a, "--train")) n_train = (int)num;
        else if (!strcmp(a, "--val")) n_val = (int)num;
        else if (!strcmp(a, "--test")) n_test = (int)num;
        else if (!strcmp(a, "--epochs")) to.epochs = (int)num;
        else if (!strcmp(a, "--batch")) to.batch = (int)num;
        else if (!strcmp(a, "--lr")) to.lr = num;
        else if (!strcmp(a, "--clip")) to.clip = (float)num;
        else if (!strcmp(a, "--hidden")) hp.H = (int)num;
        else if (!strcmp(a, "--embed")) hp.E = (int)num;
        else if (!strcmp(a, "--attn-dim")) hp.A = (int)num;
        else if (!strcmp(a, "--image-dim")) hp.F = (int)num;
        else if (!strcmp(a, "--grid")) hp.grid = (int)num;
        else if (!strcmp(a, "--channels")) hp.D = (int)num;
        else if (!strcmp(a, "--lambda")) hp.lambda = (float)num;
        else if (!strcmp(a, "--dropout")) hp.dropout = (float)num;
        else if (!strcmp(a, "--beam")) beam = (int)num;
        else if (!strcmp(a, "--seed")) seed = (uint64_t)num;
        else if (!strcmp(a, "--data-seed")) data_seed = (uint64_t)num;
        else if (!strcmp(a, "--threads")) threads = (int)num;
        else if (!strcmp(a, "--show")) show = (int)num;
        else if (!strcmp(a, "--figures")) figures = (int)num;
        else {
            fprintf(stderr, "caption: unknown option %s\n", a);
            return usage();
        }
        i++;
    }
    const char *bad = n_train < 1                                   ? "--train must be at least 1"
                      : n_val < 0                                   ? "--val must be at least 0"
                      : n_test < 1                                  ? "--test must be at least 1"
                      : to.epochs < 0                               ? "--epochs must be at least 0"
                      : to.batch < 1                                ? "--batch must be at least 1"
                      : !(to.lr > 0)                                ? "--lr must be positive"
                      : to.clip < 0                                 ? "--clip must be at least 0"
                      : hp.H < 1 || hp.H > 1024                     ? "--hidden must be in 1..1024"
                      : hp.E < 1                                    ? "--embed must be at least 1"
                      : hp.A < 1                                    ? "--attn-dim must be at least 1"
                      : hp.F < 1                                    ? "--image-dim must be at least 1"
                      : hp.D < 1 || hp.D > 4096                     ? "--channels must be in 1..4096"
                      : hp.grid != 4 && hp.grid != 8 && hp.grid != 16 ? "--grid must be 4, 8 or 16"
                      : hp.lambda < 0                               ? "--lambda must be at least 0"
                      : hp.dropout < 0 || hp.dropout >= 1           ? "--dropout must be in [0, 1)"
                      : beam < 1                                    ? "--beam must be at least 1"
                      : threads < 1                                 ? "--threads must be at least 1"
                      : show < 0                                    ? "--show must be at least 0"
                      : figures < 0                                 ? "--figures must be at least 0"
                                                                    : NULL;
    if (bad) {
        fprintf(stderr, "caption: %s\n", bad);
        return 2;
    }
    cx_set_threads(threads);

    /* ---- data */
    bool full = dir || strcmp(cx_fashion_mnist_dir(NULL), "data/fashion-mnist-subset") != 0;
    dir = cx_fashion_mnist_dir(dir);
    cx_dataset train_img, test_img;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &train_img) != CX_OK) {
        fprintf(stderr,
                "caption: cannot load Fashion-MNIST from %s: %s\n"
                "  (install dataset-fashion-mnist, run from the repository root so that data/fashion-mnist-subset "
                "is found, or pass --data DIR)\n",
                dir, cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &test_img) != CX_OK) {
        fprintf(stderr, "caption: cannot load the Fashion-MNIST test images from %s: %s\n", dir, cx_last_error());
        cx_dataset_free(&train_img);
        return 1;
    }
    int n_img = cx_dataset_len(&train_img), n_val_img = n_img / 12;
    printf("data: %s (%d train images, %d test images)%s\n", dir, n_img, cx_dataset_len(&test_img),
           full ? "" : "\n  the full Fashion-MNIST (Debian package dataset-fashion-mnist) is not installed: "
                       "using the repository's subset");
    /* training canvases from the first 11/12 of the training images,
     * validation canvases from the last 1/12, test canvases from t10k */
    int *pool = xmalloc((size_t)n_img * sizeof(int));
    for (int i = 0; i < n_img; i++) pool[i] = i;
    cx_caption_opts co = cx_caption_defaults();
    cx_caption_set *train = NULL, *val = NULL, *test = NULL;
    double t_data = cx_now();
    co.pool = pool;
    co.n_pool = n_img - n_val_img;
    co.split = "train";
    cx_status st = cx_caption_generate(&train_img, n_train, data_seed, &co, &train);
    if (st == CX_OK && n_val > 0) {
        co.pool = pool + (n_img - n_val_img);
        co.n_pool = n_val_img;
        co.split = "val";
        st = cx_caption_generate(&train_img, n_val, data_seed + 1000, &co, &val);
    }
    if (st == CX_OK) {
        co.pool = NULL;
        co.n_pool = 0;
        co.split = "test";
        st = cx_caption_generate(&test_img, n_test, data_seed + 2000, &co, &test);
    }
    free(pool);
    cx_dataset_free(&train_img);
    cx_dataset_free(&test_img);
    if (st != CX_OK) {
        fprintf(stderr, "caption: %s\n", cx_last_error());
        cx_caption_set_free(train);
        cx_caption_set_free(val);
        return 1;
    }
    printf("  canvases: %d train (images 0..%d), %d validation (images %d..%d), %d test (t10k), %s; "
           "%.1f s\n",
           train->n, n_img - n_val_img - 1, val ? val->n : 0, n_img - n_val_img, n_img - 1, test->n, train->recipe,
           cx_now() - t_data);
    printf("  vocabulary %d words; references per canvas: %.2f (test)\n", train->vocab_size,
           (double)test->n_captions / test->n);

    /* ---- models */
    model_kind kinds[2];
    int n_models = 0;
    if (which != 1) kinds[n_models++] = ENCDEC;
    if (which != 0) kinds[n_models++] = SAT;
    decoded dec_test[2];
    run_result res[2];
    int rc = 0;
    for (int mi = 0; mi < n_models; mi++) {
        model m;
        cx_seed(seed); /* each model: its own initial weights and batch order, the same for --model X alone */
        model_init(&m, kinds[mi], &hp, train->vocab_size);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m.all, &ps);
        res[mi].params = cx_params_count(&ps);
        printf("\n== %s (%s): %lld parameters\n", KIND_TITLE[m.kind], KIND_NAME[m.kind], (long long)res[mi].params);
        if (m.kind == ENCDEC)
            printf("  CNN (%s) -> %dx%dx%d grid -> flatten -> Linear(%d, %d)+ReLU image vector -> h0, c0 = "
                   "tanh(Linear); LSTM(%d, %d) over word embeddings (%d); Linear(%d, %d)\n",
                   hp.coords ? "CoordConv input" : "grey input", hp.grid, hp.grid, hp.D, m.L * hp.D, hp.F, hp.E,
                   hp.H, hp.E, hp.H, m.V);
        else
            printf("  CNN (%s) -> %d annotation vectors of %d; h0, c0 = tanh(Linear(mean annotation)); additive "
                   "attention (%d) from h_{t-1}, gate beta = sigmoid(f_beta(h_{t-1})); LSTMCell(%d + %d, %d); "
                   "deep output Linear(tanh(E y + L_h h + L_z z)); lambda %g\n",
                   hp.coords ? "CoordConv input" : "grey input", m.L, hp.D, hp.A, hp.E, hp.D, hp.H, hp.lambda);
        double att_diff = 0, diff = check_model(&m, test, &att_diff);
        printf("  check: stepped decoder (cx_decoder adaptor) vs teacher-forced pass, max |logit diff| %.2e", diff);
        if (m.kind == SAT) printf("; precomputed attention vs cx_additive_attention, max |weight diff| %.2e", att_diff);
        printf("\n");
        if (diff > 1e-4 || att_diff > 1e-5) {
            fprintf(stderr, "caption: the stepped decoder does not match the training pass\n");
            return 1;
        }

        cx_adam_opts ao = cx_adam_defaults();
        ao.lr = to.lr;
        cx_optim *opt = cx_adam_new(&ps, &ao);
        int nb_epoch = (train->n + to.batch - 1) / to.batch, total = to.epochs * nb_epoch;
        cx_sched sched = cx_sched_with_warmup(cx_sched_cosine(total > 200 ? total - 200 : 1, to.lr * 0.02), 0.1,
                                              total > 200 ? 200 : 0);
        printf("  training: teacher forcing on the canonical caption, Adam lr %g (warm-up 200 steps, cosine to "
               "%g), batch %d, clip %g, %d epochs of %d steps, %d thread(s)\n",
               to.lr, to.lr * 0.02, to.batch, to.clip, to.epochs, nb_epoch, cx_get_threads());
        int *order = xmalloc((size_t)train->n * sizeof(int));
        for (int i = 0; i < train->n; i++) order[i] = i;
        double t_wall = 0, t_cpu = 0;
        int step = 0;
        for (int ep = 1; ep <= to.epochs; ep++) {
            shuffle(order, train->n);
            double t0 = cx_now(), c0 = cx_cpu_now(), ce_sum = 0, pen_sum = 0;
            int nb = 0;
            for (int s0 = 0; s0 < train->n; s0 += to.batch) {
                int bn = train->n - s0 < to.batch ? train->n - s0 : to.batch;
                cx_sched_apply(&sched, opt, to.lr, step);
                cx_caption_batch b;
                if (cx_caption_make_batch(train, order + s0, bn, 0, &b) != CX_OK) {
                    fprintf(stderr, "caption: %s\n", cx_last_error());
                    return 1;
                }
                cx_optim_zero_grad(opt);
                double ce, pen;
                cx_tensor *loss = batch_loss(&m, &b, &ce, &pen);
                if (!isfinite(cx_item(loss))) {
                    fprintf(stderr, "caption: the loss is %g at epoch %d step %d; lower --lr\n", cx_item(loss), ep,
                            step);
                    return 1;
                }
                cx_backward(loss);
                if (to.clip > 0) cx_clip_grad_norm(&ps, to.clip);
                cx_optim_step(opt);
                cx_step_reset();
                ce_sum += ce;
                pen_sum += pen;
                nb++;
                step++;
            }
            double wall = cx_now() - t0, cpu = cx_cpu_now() - c0;
            t_wall += wall;
            t_cpu += cpu;
            printf("  epoch %d/%d  loss %.4f/word", ep, to.epochs, ce_sum / nb);
            if (m.kind == SAT && hp.lambda > 0) printf(" + penalty %.4f", pen_sum / nb);
            printf("  %.1f s (cpu %.1f s)", wall, cpu);
            if (val) {
                decoded dv;
                decoded_alloc(&dv, val->n, m.L, false);
                decode_set(&m, val, val->n, 1, &dv);
                cx_bleu_result r = score(val, &dv, 0);
                printf("  val greedy BLEU-4 %.4f exact %.2f%%", r.bleu[3], 100 * r.exact_match);
                decoded_free(&dv);
            }
            printf("\n");
            fflush(stdout);
        }
        free(order);
        res[mi].train_s = t_wall;
        res[mi].train_cpu_s = t_cpu;

        /* ---- test */
        double t0 = cx_now();
        decoded_alloc(&dec_test[mi], test->n, m.L, m.kind == SAT);
        decode_set(&m, test, test->n, beam, &dec_test[mi]);
        res[mi].decode_s = cx_now() - t0;
        res[mi].g = score(test, &dec_test[mi], 0);
        res[mi].b = score(test, &dec_test[mi], 1);
        printf("  test (%d canvases, %d references):\n", test->n, test->n_captions);
        for (int k = 0; k < 2; k++) {
            const cx_bleu_result *r = k ? &res[mi].b : &res[mi].g;
            printf("    %-8s BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  exact %.2f%%  (BP %.3f)\n",
                   k ? (beam > 1 ? "beam" : "beam=1") : "greedy", r->bleu[0], r->bleu[1], r->bleu[2], r->bleu[3],
                   100 * r->exact_match, r->bp);
        }
        printf("  decoding %.1f s (greedy and beam %d)\n", res[mi].decode_s, beam);
        if (show > 0) printf("  examples (greedy | beam %d | reference):\n", beam);
        for (int j = 0; j < show && j < test->n; j++) {
            int i = (int)((int64_t)j * test->n / show);
            char g[160], bm[160], r[160];
            caption_text(test, dec_test[mi].greedy + (size_t)i * MAXL, dec_test[mi].greedy_len[i], g, sizeof g);
            caption_text(test, dec_test[mi].beam + (size_t)i * MAXL, dec_test[mi].beam_len[i], bm, sizeof bm);
            ref_text(test, i, 0, r, sizeof r);
            printf("    #%-5d %-36s %s | %-36s %s | %s\n", i, g,
                   is_exact(test, i, dec_test[mi].greedy + (size_t)i * MAXL, dec_test[mi].greedy_len[i]) ? "ok" : "--",
                   bm, is_exact(test, i, dec_test[mi].beam + (size_t)i * MAXL, dec_test[mi].beam_len[i]) ? "ok" : "--",
                   r);
        }
        printf("CAPTION model=%s seed=%llu train=%d test=%d epochs=%d grid=%d lambda=%g coords=%d "
               "greedy_bleu=%.4f,%.4f,%.4f,%.4f greedy_exact=%.4f beam=%d beam_bleu=%.4f,%.4f,%.4f,%.4f "
               "beam_exact=%.4f train_s=%.1f train_cpu_s=%.1f params=%lld\n",
               KIND_NAME[m.kind], (unsigned long long)seed, train->n, test->n, to.epochs, hp.grid, hp.lambda,
               hp.coords, res[mi].g.bleu[0], res[mi].g.bleu[1], res[mi].g.bleu[2], res[mi].g.bleu[3],
               res[mi].g.exact_match, beam, res[mi].b.bleu[0], res[mi].b.bleu[1], res[mi].b.bleu[2],
               res[mi].b.bleu[3], res[mi].b.exact_match, res[mi].train_s, res[mi].train_cpu_s,
               (long long)res[mi].params);
        fflush(stdout);

        /* ---- the attention picture */
        if (m.kind == SAT && figures > 0) {
            if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "caption: cannot create %s: %s\n", out_dir, strerror(errno));
                rc = 1;
            } else {
                int nf = figures < test->n ? figures : test->n, *fi = xmalloc((size_t)nf * sizeof(int));
                for (int j = 0; j < nf; j++) fi[j] = j;
                char path[1024];
                snprintf(path, sizeof path, "%s/caption_attention.png", out_dir);
                if (attention_png(&m, test, &dec_test[mi], fi, nf, path) != CX_OK) {
                    fprintf(stderr, "caption: %s\n", cx_last_error());
                    rc = 1;
                } else {
                    printf("  wrote %s (attention maps of %d test canvases)\n", path, nf);
                }
                free(fi);
            }
        }
        cx_optim_free(opt);
        cx_params_free(&ps);
        cx_module_free(m.all);
    }

    if (n_models == 2) {
        printf("\n== summary on %d test canvases (%d training canvases, %d epochs, seed %llu)\n", test->n, train->n,
               to.epochs, (unsigned long long)seed);
        printf("  %-24s %-7s %7s %7s %7s %7s %7s\n", "model", "decode", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4",
               "exact");
        for (int mi = 0; mi < 2; mi++)
            for (int k = 0; k < 2; k++) {
                const cx_bleu_result *r = k ? &res[mi].b : &res[mi].g;
                char dname[16];
                snprintf(dname, sizeof dname, k ? "beam %d" : "greedy", beam);
                printf("  %-24s %-7s %7.4f %7.4f %7.4f %7.4f %6.2f%%\n", KIND_TITLE[kinds[mi]], dname, r->bleu[0],
                       r->bleu[1], r->bleu[2], r->bleu[3], 100 * r->exact_match);
            }
        printf("  training time: %s %.1f s (cpu %.1f s), %s %.1f s (cpu %.1f s)\n", KIND_NAME[0], res[0].train_s,
               res[0].train_cpu_s, KIND_NAME[1], res[1].train_s, res[1].train_cpu_s);
        if (figures > 0 && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "caption: cannot create %s: %s\n", out_dir, strerror(errno));
            rc = 1;
        } else if (figures > 0) {
            int nf = 2 * figures < test->n ? 2 * figures : test->n, *fi = xmalloc((size_t)nf * sizeof(int));
            for (int j = 0; j < nf; j++) fi[j] = j;
            char path[1024];
            snprintf(path, sizeof path, "%s/caption_compare.png", out_dir);
            if (compare_png(test, dec_test, 2, kinds, fi, nf, path) != CX_OK) {
                fprintf(stderr, "caption: %s\n", cx_last_error());
                rc = 1;
            } else {
                printf("  wrote %s (both models' captions of %d test canvases)\n", path, nf);
            }
            free(fi);
        }
    }
    for (int mi = 0; mi < n_models; mi++) decoded_free(&dec_test[mi]);
    cx_caption_set_free(train);
    cx_caption_set_free(val);
    cx_caption_set_free(test);
    return rc;
}
