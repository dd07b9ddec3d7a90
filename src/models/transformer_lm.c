/* A decoder-only Transformer language model (pre-norm blocks of causal
 * multi-head self-attention and a GELU feed-forward, learned positions,
 * optional weight tying) and its incremental decoding with a key/value
 * cache. See include/cortex/transformer.h. */
#include <cortex.h>
#include <cortex/transformer.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu/vmath.h"
#include "../tensor/internal.h"

#define LN_EPS 1e-5f
#define INIT_STD 0.02f

/* ================================================================ the block */
typedef struct {
    cx_module base;
    int E, H, F, layers;
    float p, pa;
    cx_module *ln1, *attn, *ln2, *fc1, *fc2;
} tblock_m;

static cx_tensor *tblock_fwd(cx_module *m, cx_tensor *x);
static void tblock_describe(const cx_module *m, char *buf, size_t n) {
    const tblock_m *b = (const tblock_m *)m;
    snprintf(buf, n, "TransformerBlock(embed %d, heads %d, ffn %d%s)", b->E, b->H, b->F,
             b->p > 0 || b->pa > 0 ? ", dropout" : "");
}
static const cx_module_ops tblock_ops = {.kind = "TransformerBlock", .forward = tblock_fwd,
                                         .describe = tblock_describe};

static void check_sizes(const char *who, int E, int H, int F, int layers, float p, float pa) {
    if (E < 1) cx_fatal("%s: embed must be >= 1, got %d", who, E);
    if (H < 1) cx_fatal("%s: heads must be >= 1, got %d", who, H);
    if (E % H) cx_fatal("%s: embed %d is not divisible by heads %d", who, E, H);
    if (F < 0) cx_fatal("%s: ffn must be >= 0 (0: 4 x embed), got %d", who, F);
    if (layers < 1) cx_fatal("%s: layers must be >= 1, got %d", who, layers);
    if (!(p >= 0 && p < 1)) cx_fatal("%s: dropout must be in [0, 1), got %g", who, (double)p);
    if (!(pa >= 0 && pa < 1)) cx_fatal("%s: attn_dropout must be in [0, 1), got %g", who, (double)pa);
    if (E > INT_MAX / 4 || (F == 0 && E > (1 << 20)))
        cx_fatal("%s: embed %d is too large", who, E);
    (void)cx_shape_numel(who, (const int[]){3 * E, E}, 2);
    (void)cx_shape_numel(who, (const int[]){F ? F : 4 * E, E}, 2);
}

cx_module *cx_tlm_block_new(int E, int H, int F, int layers, float p, float pa) {
    const char *who = "TransformerBlock";
    check_sizes(who, E, H, F, layers, p, pa);
    if (F == 0) F = 4 * E;
    tblock_m *b = cx_xcalloc(1, sizeof *b);
    cx_module_init(&b->base, &tblock_ops);
    b->E = E;
    b->H = H;
    b->F = F;
    b->layers = layers;
    b->p = p;
    b->pa = pa;
    const float rstd = INIT_STD / sqrtf(2.0f * (float)layers);
    b->ln1 = cx_module_add(&b->base, "ln1", cx_layernorm_new((const int[]){E}, 1));
    cx_mha_opts o = cx_mha_defaults();
    o.dropout = pa;
    o.causal = true;
    b->attn = cx_module_add(&b->base, "attn", cx_multihead_attention_new(E, H, &o));
    cx_init_normal(cx_module_tensor(b->attn, "in_proj_weight"), 0.0f, INIT_STD);
    cx_fill(cx_module_tensor(b->attn, "in_proj_bias"), 0.0f);
    cx_init_normal(cx_module_tensor(b->attn, "out_proj.weight"), 0.0f, rstd);
    cx_fill(cx_module_tensor(b->attn, "out_proj.bias"), 0.0f);
    b->ln2 = cx_module_add(&b->base, "ln2", cx_layernorm_new((const int[]){E}, 1));
    b->fc1 = cx_module_add(&b->base, "fc1", cx_linear_new(E, F, true));
    cx_init_normal(cx_linear_weight(b->fc1), 0.0f, INIT_STD);
    cx_fill(cx_linear_bias(b->fc1), 0.0f);
    b->fc2 = cx_module_add(&b->base, "fc2", cx_linear_new(F, E, true));
    cx_init_normal(cx_linear_weight(b->fc2), 0.0f, rstd);
    cx_fill(cx_linear_bias(b->fc2), 0.0f);
    return &b->base;
}

static cx_tensor *drop(cx_tensor *x, float p) { return p > 0 ? cx_dropout(x, p) : x; }

static cx_tensor *tblock_fwd(cx_module *m, cx_tensor *x) {
    tblock_m *b = (tblock_m *)m;
    char sb[96];
    if (!x || x->dtype != CX_F32 || x->ndim != 3 || x->shape[2] != b->E)
        cx_fatal("TransformerBlock: input must be F32 [T, B, %d], got %s%s", b->E, x ? cx_dtype_name(x->dtype) : "NULL",
                 x ? cx_shape_str(x, sb, sizeof sb) : "");
    cx_tensor *h = cx_layer_norm(x, 1, cx_layernorm_weight(b->ln1), cx_layernorm_bias(b->ln1), LN_EPS);
    cx_tensor *a = cx_mha_forward(b->attn, h, h, h, NULL, NULL, false, false, NULL, NULL);
    x = cx_add(x, drop(a, b->p));
    h = cx_layer_norm(x, 1, cx_layernorm_weight(b->ln2), cx_layernorm_bias(b->ln2), LN_EPS);
    cx_tensor *f = cx_linear(h, cx_linear_weight(b->fc1), cx_linear_bias(b->fc1));
    f = cx_linear(cx_gelu(f), cx_linear_weight(b->fc2), cx_linear_bias(b->fc2));
    return cx_add(x, drop(f, b->p));
}

/* ================================================================ the model */
typedef struct {
    cx_module base;
    cx_tlm_config cfg;
    cx_module *tok, *pos, *blocks, *ln_f, *head;
} tlm_m;

static cx_tensor *tlm_fwd(cx_module *m, cx_tensor *x) { return cx_tlm_forward(m, x); }
static void tlm_describe(const cx_module *m, char *buf, size_t n) {
    const tlm_m *t = (const tlm_m *)m;
    snprintf(buf, n, "TransformerLM(vocab %d, context %d, embed %d, %d layers x %d heads, ffn %d%s%s)", t->cfg.vocab,
             t->cfg.context, t->cfg.embed, t->cfg.layers, t->cfg.heads, t->cfg.ffn,
             t->cfg.dropout > 0 || t->cfg.attn_dropout > 0 ? ", dropout" : "", t->cfg.tie ? ", tied" : "");
}
static const cx_module_ops tlm_ops = {.kind = "TransformerLM", .forward = tlm_fwd, .describe = tlm_describe};

bool cx_tlm_is(const cx_module *m) { return m && m->ops == &tlm_ops; }

static tlm_m *as_tlm(const cx_module *m) {
    if (!cx_tlm_is(m)) cx_fatal("transformer: not a TransformerLM module (%s)", m ? cx_module_kind(m) : "NULL");
    return (tlm_m *)m;
}

cx_tlm_config cx_tlm_defaults(int vocab) {
    cx_tlm_config c = {vocab, 128, 256, 4, 4, 0, 0.0f, 0.0f, false};
    return c;
}

cx_module *cx_tlm_new(const cx_tlm_config *cfg) {
    const char *who = "TransformerLM";
    if (!cfg) cx_fatal("%s: NULL config", who);
    if (cfg->vocab < 2) cx_fatal("%s: vocab must be >= 2, got %d", who, cfg->vocab);
    if (cfg->context < 1) cx_fatal("%s: context must be >= 1, got %d", who, cfg->context);
    check_sizes(who, cfg->embed, cfg->heads, cfg->ffn, cfg->layers, cfg->dropout, cfg->attn_dropout);
    if (cfg->layers > 4096) cx_fatal("%s: layers %d is too many (at most 4096)", who, cfg->layers);
    (void)cx_shape_numel(who, (const int[]){cfg->vocab, cfg->embed}, 2);
    (void)cx_shape_numel(who, (const int[]){cfg->context, cfg->embed}, 2);
    /* the decoding state: 8 L T E bytes must fit */
    if ((double)cfg->layers * cfg->context * cfg->embed * 2.0 > (double)INT64_MAX / 8)
        cx_fatal("%s: layers x context x embed is too large", who);
    tlm_m *t = cx_xcalloc(1, sizeof *t);
    cx_module_init(&t->base, &tlm_ops);
    t->cfg = *cfg;
    if (!t->cfg.ffn) t->cfg.ffn = 4 * cfg->embed;
    const int E = cfg->embed;
    t->tok = cx_module_add(&t->base, "tok_emb", cx_embedding_new(cfg->vocab, E, -1));
    cx_init_normal(cx_embedding_weight(t->tok), 0.0f, INIT_STD);
    t->pos = cx_module_add(&t->base, "pos_emb", cx_embedding_new(cfg->context, E, -1));
    cx_init_normal(cx_embedding_weight(t->pos), 0.0f, INIT_STD);
    t->blocks = cx_module_add(&t->base, "blocks", cx_sequential_new());
    for (int i = 0; i < cfg->layers; i++)
        cx_sequential_add(t->blocks, NULL,
                          cx_tlm_block_new(E, cfg->heads, t->cfg.ffn, cfg->layers, cfg->dropout, cfg->attn_dropout));
    t->ln_f = cx_module_add(&t->base, "ln_f", cx_layernorm_new((const int[]){E}, 1));
    t->head = cx_module_add(&t->base, "head", cx_linear_new(E, cfg->vocab, true));
    cx_fill(cx_linear_bias(t->head), 0.0f);
    if (cfg->tie) cx_module_tie(&t->base, "head.weight", cx_embedding_weight(t->tok));
    else cx_init_normal(cx_linear_weight(t->head), 0.0f, INIT_STD);
    return &t->base;
}

cx_tlm_config cx_tlm_get_config(const cx_module *m) { return as_tlm(m)->cfg; }

cx_module *cx_tlm_block(cx_module *m, int i) {
    tlm_m *t = as_tlm(m);
    if (i < 0 || i >= t->cfg.layers) cx_fatal("transformer: block %d out of range [0, %d)", i, t->cfg.layers);
    return cx_sequential_get(t->blocks, i);
}

cx_tensor *cx_tlm_forward(cx_module *m, const cx_tensor *x) {
    tlm_m *t = as_tlm(m);
    char sb[96];
    if (!x || x->ndim != 2 || (x->dtype != CX_I32 && x->dtype != CX_I64))
        cx_fatal("transformer: input must be I32/I64 ids [T, B], got %s%s", x ? cx_dtype_name(x->dtype) : "NULL",
                 x ? cx_shape_str(x, sb, sizeof sb) : "");
    const int T = x->shape[0], B = x->shape[1], E = t->cfg.embed, V = t->cfg.vocab;
    if (T < 1 || B < 1) cx_fatal("transformer: empty input %s", cx_shape_str(x, sb, sizeof sb));
    if (T > t->cfg.context)
        cx_fatal("transformer: sequence length %d exceeds the context %d (the positions the model has)", T,
                 t->cfg.context);
    cx_tensor *e = cx_embedding(cx_embedding_weight(t->tok), x, -1);                  /* [T, B, E] */
    cx_tensor *pw = cx_embedding_weight(t->pos);
    cx_tensor *p = T == t->cfg.context ? pw : cx_slice(pw, 0, 0, T, 1);               /* [T, E] */
    cx_tensor *h = cx_add(e, cx_reshape(p, (const int[]){T, 1, E}, 3));
    h = drop(h, t->cfg.dropout);
    for (int i = 0; i < t->cfg.layers; i++) h = cx_module_forward(cx_sequential_get(t->blocks, i), h);
    h = cx_layer_norm(h, 1, cx_layernorm_weight(t->ln_f), cx_layernorm_bias(t->ln_f), LN_EPS);
    cx_tensor *lg = cx_linear(cx_reshape(h, (const int[]){T * B, E}, 2), cx_linear_weight(t->head),
                              cx_linear_bias(t->head));
    return cx_reshape(lg, (const int[]){T, B, V}, 3);
}

/* ================================================================ decoding with a key/value cache
 * State blob: header {magic, n, context, embed}, then int32 tokens[context]
 * (the window, oldest first), then float cache[layers][2][context][embed]
 * (the keys and values of every window position, the heads side by side as
 * in the projected rows). */
#define TLM_MAGIC 0x4d4c5443 /* "CTLM" */
typedef struct {
    int32_t magic, n, context, embed;
} tlm_hdr;

static size_t tok_bytes(int T) { return (size_t)T * sizeof(int32_t); }
static float *cache_of(void *state, int T) { return (float *)((char *)state + sizeof(tlm_hdr) + tok_bytes(T)); }

size_t cx_tlm_state_bytes(const cx_module *m) {
    const cx_tlm_config c = as_tlm(m)->cfg;
    return sizeof(tlm_hdr) + tok_bytes(c.context) + (size_t)2 * c.layers * c.context * c.embed * sizeof(float);
}

int cx_tlm_state_len(const void *state) { return ((const tlm_hdr *)state)->n; }

void cx_tlm_state_copy(const cx_module *m, void *dst, const void *src) {
    const cx_tlm_config c = as_tlm(m)->cfg;
    if (dst == src) return;
    const tlm_hdr *h = src;
    int n = h->n < 0 ? 0 : h->n > c.context ? c.context : h->n;
    memcpy(dst, src, sizeof(tlm_hdr) + tok_bytes(c.context));
    const float *s = cache_of((void *)src, c.context);
    float *d = cache_of(dst, c.context);
    const size_t plane = (size_t)c.context * c.embed;
    for (int k = 0; k < 2 * c.layers; k++) memcpy(d + k * plane, s + k * plane, (size_t)n * c.embed * sizeof(float));
}

/* y[r] = LN(x[r]) * w + b for R rows of E (statistics in double, as cx_layer_norm). */
static void ln_rows(const float *x, float *y, int R, int E, const float *w, const float *b) {
    for (int r = 0; r < R; r++) {
        const float *xr = x + (size_t)r * E;
        float *yr = y + (size_t)r * E;
        double s = 0, q = 0;
        for (int j = 0; j < E; j++) s += xr[j];
        const double mean = s / E;
        for (int j = 0; j < E; j++) q += (xr[j] - mean) * (xr[j] - mean);
        const double inv = 1.0 / sqrt(q / E + (double)LN_EPS);
        for (int j = 0; j < E; j++) yr[j] = (float)((xr[j] - mean) * inv * w[j] + b[j]);
    }
}

/* y [R, out] = x [R, in] W^T + b */
static void lin_rows(const float *x, float *y, int R, int in, int out, const cx_tensor *w, const cx_tensor *b) {
    for (int r = 0; r < R; r++) memcpy(y + (size_t)r * out, b->data, (size_t)out * sizeof(float));
    cx_sgemm(false, true, R, out, in, 1.0f, x, in, CX_F(w), in, 1.0f, y, out);
}

/* Compute window rows s .. n-1 of the state (rows < s are cached), filling
 * their cached keys and values, and the logits of row n-1. */
static void extend(tlm_m *t, void *state, int s, float *logits) {
    const cx_tlm_config c = t->cfg;
    const int E = c.embed, T = c.context, H = c.heads, hd = E / H, F = c.ffn;
    tlm_hdr *hd_ = state;
    const int n = hd_->n, R = n - s;
    const int32_t *tok = (const int32_t *)(hd_ + 1);
    float *cache = cache_of(state, T);
    float *X = cx_arena_alloc((size_t)R * E * sizeof(float));
    float *Hn = cx_arena_alloc((size_t)R * E * sizeof(float));
    float *QKV = cx_arena_alloc((size_t)R * 3 * E * sizeof(float));
    float *A = cx_arena_alloc((size_t)R * E * sizeof(float));
    float *F1 = cx_arena_alloc((size_t)R * F * sizeof(float));
    float *S = cx_arena_alloc((size_t)R * n * sizeof(float));
    const float *tw = CX_F(cx_embedding_weight(t->tok)), *pw = CX_F(cx_embedding_weight(t->pos));
    for (int r = 0; r < R; r++)
        for (int j = 0; j < E; j++) X[(size_t)r * E + j] = tw[(size_t)tok[s + r] * E + j] + pw[(size_t)(s + r) * E + j];
    const float scale = 1.0f / sqrtf((float)hd);
    for (int l = 0; l < c.layers; l++) {
        tblock_m *b = (tblock_m *)cx_sequential_get(t->blocks, l);
        float *Kc = cache + (size_t)2 * l * T * E, *Vc = Kc + (size_t)T * E;
        ln_rows(X, Hn, R, E, CX_F(cx_layernorm_weight(b->ln1)), CX_F(cx_layernorm_bias(b->ln1)));
        lin_rows(Hn, QKV, R, E, 3 * E, cx_module_tensor(b->attn, "in_proj_weight"),
                 cx_module_tensor(b->attn, "in_proj_bias"));
        for (int r = 0; r < R; r++) {
            memcpy(Kc + (size_t)(s + r) * E, QKV + (size_t)r * 3 * E + E, (size_t)E * sizeof(float));
            memcpy(Vc + (size_t)(s + r) * E, QKV + (size_t)r * 3 * E + 2 * E, (size_t)E * sizeof(float));
        }
        for (int h = 0; h < H; h++) {
            cx_sgemm(false, true, R, n, hd, scale, QKV + h * hd, 3 * E, Kc + h * hd, E, 0.0f, S, n);
            for (int r = 0; r < R; r++) { /* causal: row s + r sees keys 0 .. s + r */
                float *sr = S + (size_t)r * n;
                const int jmax = s + r + 1;
                const float mx = cx_vmaxf(sr, jmax);
                for (int j = 0; j < jmax; j++) sr[j] = cx_vexpf(sr[j] - mx);
                const float inv = (float)(1.0 / cx_vsum_f64(sr, jmax));
                for (int j = 0; j < jmax; j++) sr[j] *= inv;
                for (int j = jmax; j < n; j++) sr[j] = 0.0f;
            }
            cx_sgemm(false, false, R, hd, n, 1.0f, S, n, Vc + h * hd, E, 0.0f, A + h * hd, E);
        }
        cx_module *op = cx_module_find(b->attn, "out_proj");
        lin_rows(A, Hn, R, E, E, cx_linear_weight(op), cx_linear_bias(op));
        for (size_t i = 0; i < (size_t)R * E; i++) X[i] += Hn[i];
        ln_rows(X, Hn, R, E, CX_F(cx_layernorm_weight(b->ln2)), CX_F(cx_layernorm_bias(b->ln2)));
        lin_rows(Hn, F1, R, E, F, cx_linear_weight(b->fc1), cx_linear_bias(b->fc1));
        for (size_t i = 0; i < (size_t)R * F; i++) F1[i] = 0.5f * F1[i] * (1.0f + erff(F1[i] * 0.70710678118654752f));
        lin_rows(F1, Hn, R, F, E, cx_linear_weight(b->fc2), cx_linear_bias(b->fc2));
        for (size_t i = 0; i < (size_t)R * E; i++) X[i] += Hn[i];
    }
    if (logits) {
        ln_rows(X + (size_t)(R - 1) * E, Hn, 1, E, CX_F(cx_layernorm_weight(t->ln_f)), CX_F(cx_layernorm_bias(t->ln_f)));
        lin_rows(Hn, logits, 1, E, c.vocab, cx_linear_weight(t->head), cx_linear_bias(t->head));
    }
}

void cx_tlm_prime(cx_module *m, const int32_t *ids, int n, void *state, float *logits) {
    tlm_m *t = as_tlm(m);
    const cx_tlm_config c = t->cfg;
    if (n < 0) cx_fatal("transformer prime: negative length %d", n);
    if (n > 0 && !ids) cx_fatal("transformer prime: NULL ids");
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c.vocab)
            cx_fatal("transformer prime: id %d at %d out of range [0, %d)", ids[i], i, c.vocab);
    tlm_hdr *h = state;
    const int w = n < c.context ? n : c.context;
    h->magic = TLM_MAGIC;
    h->n = w;
    h->context = c.context;
    h->embed = c.embed;
    int32_t *tok = (int32_t *)(h + 1);
    memset(tok, 0, tok_bytes(c.context));
    if (w) memcpy(tok, ids + (n - w), (size_t)w * sizeof(int32_t));
    if (w) extend(t, state, 0, logits);
}

cx_status cx_tlm_step(cx_module *m, const void *state_in, void *state_out, int token, float *logits) {
    tlm_m *t = as_tlm(m);
    const cx_tlm_config c = t->cfg;
    if (token < 0 || token >= c.vocab)
        return cx_set_error(CX_ERR_ARG, "transformer step: token %d out of range [0, %d)", token, c.vocab);
    const tlm_hdr *hi = state_in;
    if (hi && hi->magic == 0 && hi->n == 0 && hi->context == 0 && hi->embed == 0) { /* zeroed: the empty window */
        tlm_hdr *ho = state_out;
        ho->magic = TLM_MAGIC;
        ho->n = 1;
        ho->context = c.context;
        ho->embed = c.embed;
        *(int32_t *)(ho + 1) = token;
        extend(t, state_out, 0, logits);
        return CX_OK;
    }
    if (!hi || hi->magic != TLM_MAGIC || hi->context != c.context || hi->embed != c.embed || hi->n < 0 ||
        hi->n > c.context)
        return cx_set_error(CX_ERR_ARG, "transformer step: the state was not made for this model (context %d, embed %d)",
                            c.context, c.embed);
    const int n = hi->n;
    tlm_hdr *ho = state_out;
    int32_t *tok;
    if (n < c.context) { /* append: one new row against the cache */
        cx_tlm_state_copy(m, state_out, state_in);
        tok = (int32_t *)(ho + 1);
        tok[n] = token;
        ho->n = n + 1;
        extend(t, state_out, n, logits);
    } else { /* slide the window: every position moves, recompute it */
        const int32_t *ti = (const int32_t *)(hi + 1);
        tok = (int32_t *)(ho + 1);
        memmove(tok, ti + 1, (size_t)(n - 1) * sizeof(int32_t));
        tok[n - 1] = token;
        *ho = *hi;
        extend(t, state_out, 0, logits);
    }
    return CX_OK;
}
