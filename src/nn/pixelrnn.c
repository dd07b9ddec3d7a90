/* PixelRNN pieces (van den Oord, Kalchbrenner & Kavukcuoglu 2016): masked
 * 2-D convolutions (mask A / B), the Row LSTM layer and a small Row-LSTM
 * PixelRNN for binary images, with ancestral sampling. Everything is composed
 * of existing differentiable ops (cx_mul, cx_conv2d, cx_conv1d, cx_slice,
 * cx_sigmoid, cx_tanh, cx_stack), so the gradients are the autograd ones. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/conv.h"
#include "cortex/rnn.h"

/* ---------------------------------------------------------------- masks */
cx_tensor *cx_conv_mask_new(int kh, int kw, cx_conv_mask type) {
    if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        cx_fatal("conv_mask: the kernel must have odd sides (a centre pixel), got %d x %d", kh, kw);
    if (type != CX_MASK_A && type != CX_MASK_B)
        cx_fatal("conv_mask: mask type must be CX_MASK_A or CX_MASK_B, got %d", (int)type);
    cx_tensor *m = cx_zeros(CX_SHAPE(kh, kw));
    int ch = kh / 2, cw = kw / 2;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++)
            if (i < ch || (i == ch && j < cw) || (i == ch && j == cw && type == CX_MASK_B))
                CX_F(m)[i * kw + j] = 1.0f;
    return m;
}

cx_tensor *cx_masked_conv2d(cx_tensor *x, cx_tensor *w, cx_tensor *b, cx_conv_mask type) {
    if (!x || !w) cx_fatal("masked_conv2d: x and w must not be NULL");
    if (w->ndim != 4)
        cx_fatal("masked_conv2d: weight must be [O, C, kh, kw], got %d dims", w->ndim);
    if (x->ndim != 4) cx_fatal("masked_conv2d: x must be [N, C, H, W], got %d dims", x->ndim);
    int kh = w->shape[2], kw = w->shape[3];
    if (kh % 2 == 0 || kw % 2 == 0)
        cx_fatal("masked_conv2d: the kernel must have odd sides (a centre pixel), got %d x %d", kh, kw);
    cx_tensor *wm = cx_mul(w, cx_conv_mask_new(kh, kw, type));
    return cx_conv2d(x, wm, b, 1, 1, kh / 2, kw / 2, 1, 1, 1);
}

/* ---------------------------------------------------------------- Row LSTM op */
cx_tensor *cx_row_lstm(cx_tensor *x, cx_tensor *w_is, cx_tensor *b_is, cx_tensor *w_ss, cx_tensor *b_ss) {
    if (!x || !w_is || !w_ss) cx_fatal("row_lstm: x, w_is and w_ss must not be NULL");
    if (x->ndim != 4) cx_fatal("row_lstm: x must be [N, C, H, W], got %d dims", x->ndim);
    if (w_is->ndim != 4 || w_is->shape[2] != 1 || w_is->shape[0] % 4 != 0 || w_is->shape[0] == 0)
        cx_fatal("row_lstm: w_is must be [4h, C, 1, k], got [%d, %d, %d, %d] (%d dims)", w_is->shape[0],
                 w_is->ndim > 1 ? w_is->shape[1] : 0, w_is->ndim > 2 ? w_is->shape[2] : 0,
                 w_is->ndim > 3 ? w_is->shape[3] : 0, w_is->ndim);
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int G = w_is->shape[0], h = G / 4, k = w_is->shape[3];
    if (w_is->shape[1] != C) cx_fatal("row_lstm: x has %d channels but w_is is [%d, %d, 1, %d]", C, G, w_is->shape[1], k);
    if (w_ss->ndim != 3 || w_ss->shape[0] != G || w_ss->shape[1] != h || w_ss->shape[2] % 2 == 0)
        cx_fatal("row_lstm: w_ss must be [4h, h, k] = [%d, %d, odd k], got %d dims [%d, %d, %d]", G, h, w_ss->ndim,
                 w_ss->shape[0], w_ss->ndim > 1 ? w_ss->shape[1] : 0, w_ss->ndim > 2 ? w_ss->shape[2] : 0);
    if (b_is && (b_is->ndim != 1 || b_is->shape[0] != G))
        cx_fatal("row_lstm: b_is must be [%d]", G);
    if (b_ss && (b_ss->ndim != 1 || b_ss->shape[0] != G))
        cx_fatal("row_lstm: b_ss must be [%d]", G);
    /* input-to-state: the gates of every row at once, a 1 x k mask-B convolution */
    cx_tensor *is = cx_masked_conv2d(x, w_is, b_is, CX_MASK_B);          /* [N, 4h, H, W] */
    cx_tensor *isp = cx_permute(is, (const int[]){2, 0, 1, 3});          /* [H, N, 4h, W] */
    int ks = w_ss->shape[2];
    cx_tensor *hp = cx_zeros(CX_SHAPE(N, h, W)), *c = cx_zeros(CX_SHAPE(N, h, W));
    cx_tensor **hs = cx_arena_alloc(sizeof(cx_tensor *) * (size_t)H);
    for (int r = 0; r < H; r++) {
        cx_tensor *a = cx_reshape(cx_slice(isp, 0, r, r + 1, 1), CX_SHAPE(N, G, W));
        /* state-to-state: a 1-D convolution over the previous row's hidden state */
        a = cx_add(a, cx_conv1d(hp, w_ss, b_ss, 1, ks / 2, 1, 1));
        cx_tensor *i = cx_sigmoid(cx_slice(a, 1, 0, h, 1));
        cx_tensor *f = cx_sigmoid(cx_slice(a, 1, h, 2 * h, 1));
        cx_tensor *g = cx_tanh(cx_slice(a, 1, 2 * h, 3 * h, 1));
        cx_tensor *o = cx_sigmoid(cx_slice(a, 1, 3 * h, 4 * h, 1));
        c = cx_add(cx_mul(f, c), cx_mul(i, g));
        hp = cx_mul(o, cx_tanh(c));
        hs[r] = hp;
    }
    return cx_stack(hs, H, 2); /* [N, h, H, W] */
}

/* ---------------------------------------------------------------- modules */
typedef struct {
    cx_module base;
    int in, out, kh, kw;
    cx_conv_mask type;
    cx_tensor *w, *b;
} mconv_m;

static cx_tensor *mconv_fwd(cx_module *m, cx_tensor *x) {
    mconv_m *c = (mconv_m *)m;
    return cx_masked_conv2d(x, c->w, c->b, c->type);
}
static void mconv_describe(const cx_module *m, char *buf, size_t n) {
    const mconv_m *c = (const mconv_m *)m;
    snprintf(buf, n, "MaskedConv2d(%d -> %d, k=%dx%d, mask %c%s)", c->in, c->out, c->kh, c->kw,
             c->type == CX_MASK_A ? 'A' : 'B', c->b ? "" : ", no bias");
}
static const cx_module_ops mconv_ops = {.kind = "MaskedConv2d", .forward = mconv_fwd, .describe = mconv_describe};

cx_module *cx_masked_conv2d_new(int in, int out, int kh, int kw, cx_conv_mask type, bool bias) {
    if (in <= 0 || out <= 0) cx_fatal("MaskedConv2d: channels must be positive, got %d -> %d", in, out);
    if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0)
        cx_fatal("MaskedConv2d: the kernel must have odd sides (a centre pixel), got %d x %d", kh, kw);
    if (type != CX_MASK_A && type != CX_MASK_B)
        cx_fatal("MaskedConv2d: mask type must be CX_MASK_A or CX_MASK_B, got %d", (int)type);
    cx_tensor *w, *b;
    cx_layer_params_new((int[]){out, in, kh, kw}, 4, bias ? out : 0, &w, &b);
    mconv_m *c = cx_xcalloc(1, sizeof *c);
    cx_module_init(&c->base, &mconv_ops);
    c->in = in, c->out = out, c->kh = kh, c->kw = kw, c->type = type;
    /* PyTorch's Conv2d default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * kh * kw */
    float bound = 1.0f / sqrtf((float)(in * kh * kw));
    c->w = w;
    cx_fill_uniform(c->w, -bound, bound);
    cx_module_add_param(&c->base, "weight", &c->w);
    if (bias) {
        c->b = b;
        cx_fill_uniform(c->b, -bound, bound);
        cx_module_add_param(&c->base, "bias", &c->b);
    }
    return &c->base;
}

typedef struct {
    cx_module base;
    int in, hidden, k;
    cx_tensor *w_is, *b_is, *w_ss, *b_ss;
} rowlstm_m;

static cx_tensor *rowlstm_fwd(cx_module *m, cx_tensor *x) {
    rowlstm_m *r = (rowlstm_m *)m;
    return cx_row_lstm(x, r->w_is, r->b_is, r->w_ss, r->b_ss);
}
static void rowlstm_describe(const cx_module *m, char *buf, size_t n) {
    const rowlstm_m *r = (const rowlstm_m *)m;
    snprintf(buf, n, "RowLSTM(%d -> %d, k=%d)", r->in, r->hidden, r->k);
}
static const cx_module_ops rowlstm_ops = {.kind = "RowLSTM", .forward = rowlstm_fwd, .describe = rowlstm_describe};

cx_module *cx_row_lstm_new(int in, int hidden, int k) {
    if (in <= 0 || hidden <= 0) cx_fatal("RowLSTM: sizes must be positive, got %d -> %d", in, hidden);
    if (k < 1 || k % 2 == 0) cx_fatal("RowLSTM: the kernel width must be odd, got %d", k);
    rowlstm_m *r = cx_xcalloc(1, sizeof *r);
    cx_module_init(&r->base, &rowlstm_ops);
    r->in = in, r->hidden = hidden, r->k = k;
    int G = 4 * hidden;
    cx_tensor *w, *b;
    cx_layer_params_new((int[]){G, in, 1, k}, 4, G, &w, &b);
    r->w_is = w, r->b_is = b;
    float bi = 1.0f / sqrtf((float)(in * k));
    cx_fill_uniform(r->w_is, -bi, bi);
    cx_fill_uniform(r->b_is, -bi, bi);
    for (int j = hidden; j < 2 * hidden; j++) CX_F(r->b_is)[j] = 1.0f; /* forget gate open */
    cx_module_add_param(&r->base, "weight_is", &r->w_is);
    cx_module_add_param(&r->base, "bias_is", &r->b_is);
    cx_layer_params_new((int[]){G, hidden, k}, 3, G, &w, &b);
    r->w_ss = w, r->b_ss = b;
    float bs = 1.0f / sqrtf((float)(hidden * k));
    cx_fill_uniform(r->w_ss, -bs, bs);
    memset(CX_F(r->b_ss), 0, sizeof(float) * (size_t)G);
    cx_module_add_param(&r->base, "weight_ss", &r->w_ss);
    cx_module_add_param(&r->base, "bias_ss", &r->b_ss);
    return &r->base;
}

/* ---------------------------------------------------------------- the model */
typedef struct {
    cx_module base;
    int hidden, layers;
    cx_module *in, **rows, **res, *out1, *out2;
} pixelrnn_m;

static cx_tensor *pixelrnn_fwd(cx_module *m, cx_tensor *x) {
    pixelrnn_m *p = (pixelrnn_m *)m;
    if (x->ndim != 4 || x->shape[1] != 1)
        cx_fatal("PixelRNN: input must be binary images [N, 1, H, W], got %d dims%s", x->ndim,
                 x->ndim == 4 ? " with more than one channel" : "");
    cx_tensor *z = cx_module_forward(p->in, x);
    for (int l = 0; l < p->layers; l++) {
        cx_tensor *h = cx_module_forward(p->rows[l], z);
        z = cx_add(z, cx_module_forward(p->res[l], h));
    }
    z = cx_module_forward(p->out1, cx_relu(z));
    return cx_module_forward(p->out2, cx_relu(z));
}
static void pixelrnn_describe(const cx_module *m, char *buf, size_t n) {
    const pixelrnn_m *p = (const pixelrnn_m *)m;
    snprintf(buf, n, "PixelRNN(Row LSTM, h=%d, layers=%d)", p->hidden, p->layers);
}
static void pixelrnn_destroy(cx_module *m) {
    pixelrnn_m *p = (pixelrnn_m *)m;
    free(p->rows);
    free(p->res);
}
static const cx_module_ops pixelrnn_ops = {
    .kind = "PixelRNN", .forward = pixelrnn_fwd, .describe = pixelrnn_describe, .destroy = pixelrnn_destroy};

cx_module *cx_pixelrnn_new(int hidden, int layers) {
    if (hidden <= 0 || layers <= 0)
        cx_fatal("PixelRNN: hidden size and layers must be positive, got h=%d, layers=%d", hidden, layers);
    if (layers > 64) cx_fatal("PixelRNN: at most 64 layers, got %d", layers);
    pixelrnn_m *p = cx_xcalloc(1, sizeof *p);
    cx_module_init(&p->base, &pixelrnn_ops);
    p->hidden = hidden, p->layers = layers;
    p->rows = cx_xcalloc((size_t)layers, sizeof *p->rows);
    p->res = cx_xcalloc((size_t)layers, sizeof *p->res);
    p->in = cx_module_add(&p->base, "conv_in", cx_masked_conv2d_new(1, hidden, 7, 7, CX_MASK_A, true));
    for (int l = 0; l < layers; l++) {
        char name[32];
        snprintf(name, sizeof name, "row%d", l);
        p->rows[l] = cx_module_add(&p->base, name, cx_row_lstm_new(hidden, hidden, 3));
        snprintf(name, sizeof name, "res%d", l);
        p->res[l] = cx_module_add(&p->base, name, cx_masked_conv2d_new(hidden, hidden, 1, 1, CX_MASK_B, true));
    }
    p->out1 = cx_module_add(&p->base, "out1", cx_masked_conv2d_new(hidden, hidden, 1, 1, CX_MASK_B, true));
    p->out2 = cx_module_add(&p->base, "out2", cx_masked_conv2d_new(hidden, 1, 1, 1, CX_MASK_B, true));
    return &p->base;
}

static pixelrnn_m *as_pixelrnn(cx_module *m, const char *fn) {
    if (!m || m->ops != &pixelrnn_ops)
        cx_fatal("%s: expected a PixelRNN module (cx_pixelrnn_new), got %s", fn, m ? m->ops->kind : "NULL");
    return (pixelrnn_m *)m;
}

cx_tensor *cx_pixelrnn_nll(cx_module *m, cx_tensor *x) {
    as_pixelrnn(m, "pixelrnn_nll");
    cx_tensor *logits = cx_module_forward(m, x);
    return cx_mul_scalar(cx_bce_with_logits(logits, x, CX_REDUCE_SUM), 1.0f / (float)x->shape[0]);
}

void cx_pixelrnn_sample(cx_module *m, cx_tensor *img, int start, cx_rng *rng) {
    as_pixelrnn(m, "pixelrnn_sample");
    if (!img || img->dtype != CX_F32 || img->ndim != 4 || img->shape[1] != 1)
        cx_fatal("pixelrnn_sample: img must be F32 [N, 1, H, W]");
    if (!rng) cx_fatal("pixelrnn_sample: rng must not be NULL");
    int N = img->shape[0], H = img->shape[2], W = img->shape[3];
    if (start < 0 || start > H * W) cx_fatal("pixelrnn_sample: start %d outside 0 .. %d", start, H * W);
    cx_arena *ar = cx_arena_new(1 << 20), *prev = cx_arena_use(ar);
    cx_no_grad_begin();
    float *d = CX_F(img);
    float *rows = malloc(sizeof(float) * (size_t)N * (size_t)H * (size_t)W);
    if (!rows) cx_fatal("pixelrnn_sample: out of memory");
    for (int p = start; p < H * W; p++) {
        int r = p / W, c = p % W;
        /* the output at row r depends on rows 0 .. r only: run the model on those */
        for (int n = 0; n < N; n++)
            memcpy(rows + (size_t)n * (size_t)(r + 1) * (size_t)W, d + (size_t)n * (size_t)H * (size_t)W,
                   sizeof(float) * (size_t)(r + 1) * (size_t)W);
        cx_tensor *x = cx_from_data(rows, CX_SHAPE(N, 1, r + 1, W));
        cx_tensor *lg = cx_module_forward(m, x);
        for (int n = 0; n < N; n++) {
            float l = CX_F(lg)[(size_t)n * (size_t)(r + 1) * (size_t)W + (size_t)r * (size_t)W + (size_t)c];
            float prob = 1.0f / (1.0f + expf(-l));
            d[(size_t)n * (size_t)H * (size_t)W + (size_t)p] = cx_rng_uniform(rng) < prob ? 1.0f : 0.0f;
        }
        cx_arena_reset(ar);
    }
    free(rows);
    cx_no_grad_end();
    cx_arena_use(prev);
    cx_arena_free(ar);
}
