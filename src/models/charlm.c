/* Character-level language models: embedding -> multi-layer LSTM -> linear,
 * and the char-LM layer over the Transformer of transformer_lm.c (forward,
 * files, the decoder adaptor). See include/cortex/charlm.h. */
#include <cortex.h>
#include <cortex/charlm.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/internal.h"

typedef struct {
    cx_module base;
    cx_charlm_config cfg;
    cx_module *emb, *lstm, *fc;
} charlm_m;

/* ids [T, B], h0, c0 (optional) -> logits, h_n, c_n */
static int charlm_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out);
static void charlm_describe(const cx_module *m, char *buf, size_t n) {
    const charlm_m *c = (const charlm_m *)m;
    snprintf(buf, n, "CharLM(vocab %d, embed %d, LSTM %d x %d%s)", c->cfg.vocab, c->cfg.embed, c->cfg.layers,
             c->cfg.hidden, c->cfg.dropout > 0 ? ", dropout" : "");
}
static const cx_module_ops charlm_ops = {.kind = "CharLM", .call = charlm_call, .describe = charlm_describe};

static charlm_m *as_charlm(const cx_module *m) {
    if (!m || m->ops != &charlm_ops) cx_fatal("charlm: not a CharLM module (%s)", m ? cx_module_kind(m) : "NULL");
    return (charlm_m *)m;
}

cx_charlm_config cx_charlm_defaults(int vocab) {
    cx_charlm_config c = {vocab, 64, 256, 2, 0.0f};
    return c;
}

cx_module *cx_charlm_new(const cx_charlm_config *cfg) {
    if (!cfg) cx_fatal("charlm_new: NULL config");
    if (cfg->vocab < 2 || cfg->embed < 1 || cfg->hidden < 1 || cfg->layers < 1 || !(cfg->dropout >= 0) ||
        !(cfg->dropout < 1))
        cx_fatal("charlm_new: invalid sizes (vocab %d >= 2, embed %d, hidden %d, layers %d >= 1, dropout %g in [0, 1))",
                 cfg->vocab, cfg->embed, cfg->hidden, cfg->layers, (double)cfg->dropout);
    charlm_m *c = cx_xcalloc(1, sizeof *c);
    cx_module_init(&c->base, &charlm_ops);
    c->cfg = *cfg;
    cx_rnn_opts o = cx_rnn_defaults();
    o.num_layers = cfg->layers;
    o.dropout = cfg->dropout;
    c->emb = cx_module_add(&c->base, "embed", cx_embedding_new(cfg->vocab, cfg->embed, -1));
    c->lstm = cx_module_add(&c->base, "lstm", cx_lstm_new(cfg->embed, cfg->hidden, &o));
    c->fc = cx_module_add(&c->base, "fc", cx_linear_new(cfg->hidden, cfg->vocab, true));
    return &c->base;
}

cx_charlm_config cx_charlm_get_config(const cx_module *m) { return as_charlm(m)->cfg; }
cx_module *cx_charlm_embedding(cx_module *m) { return as_charlm(m)->emb; }
cx_module *cx_charlm_lstm(cx_module *m) { return as_charlm(m)->lstm; }
cx_module *cx_charlm_head(cx_module *m) { return as_charlm(m)->fc; }

const char *cx_charlm_arch(const cx_module *m) {
    if (cx_tlm_is(m)) return "transformer";
    (void)as_charlm(m);
    return "lstm";
}

static int charlm_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    if (n_in < 1 || n_in > 3) cx_fatal("CharLM: expected ids and optionally h0, c0 (1 to 3 inputs), got %d", n_in);
    cx_charlm_out o = cx_charlm_forward(m, in[0], n_in > 1 ? in[1] : NULL, n_in > 2 ? in[2] : NULL);
    cx_tensor *r[3] = {o.logits, o.h, o.c};
    int k = max_out < 3 ? max_out : 3;
    for (int i = 0; i < k; i++) out[i] = r[i];
    return k;
}

cx_charlm_out cx_charlm_forward(cx_module *m, const cx_tensor *x, cx_tensor *h0, cx_tensor *c0) {
    if (cx_tlm_is(m)) {
        if (h0 || c0) cx_fatal("charlm: a Transformer has no recurrent state (h0 and c0 must be NULL)");
        cx_charlm_out r = {cx_tlm_forward(m, x), NULL, NULL};
        return r;
    }
    charlm_m *c = as_charlm(m);
    char sb[96];
    if (!x || x->ndim != 2 || (x->dtype != CX_I32 && x->dtype != CX_I64))
        cx_fatal("charlm: input must be I32/I64 ids [T, B], got %s%s",
                 x ? cx_dtype_name(x->dtype) : "NULL", x ? cx_shape_str(x, sb, sizeof sb) : "");
    const int T = x->shape[0], B = x->shape[1], H = c->cfg.hidden, V = c->cfg.vocab;
    cx_tensor *e = cx_embedding(cx_embedding_weight(c->emb), x, -1); /* [T, B, E] */
    cx_rnn_out o = cx_rnn_forward(c->lstm, e, h0, c0);                /* [T, B, H] */
    cx_tensor *flat = cx_reshape(o.output, (const int[]){T * B, H}, 2);
    cx_tensor *lg = cx_linear(flat, cx_linear_weight(c->fc), cx_linear_bias(c->fc));
    cx_charlm_out r = {cx_reshape(lg, (const int[]){T, B, V}, 3), o.h, o.c};
    return r;
}

static void carry_one(cx_tensor **dst, const cx_tensor *src) {
    if (!src) return;
    if (*dst && !cx_same_shape(*dst, src)) {
        cx_tensor_free(*dst);
        *dst = NULL;
    }
    if (!*dst) *dst = cx_tensor_new(CX_F32, src->shape, src->ndim);
    memcpy((*dst)->data, src->data, (size_t)src->numel * sizeof(float));
}

void cx_charlm_carry(cx_tensor **h, cx_tensor **c, cx_charlm_out o) {
    if (!h || !c) cx_fatal("charlm_carry: NULL state pointer");
    carry_one(h, o.h);
    carry_one(c, o.c);
}

/* ---------------------------------------------------------------- files */
void cx_charlm_meta_init(cx_charlm_meta *md, cx_module *m, const cx_vocab *v) {
    const bool tf = cx_tlm_is(m);
    charlm_m *c = tf ? NULL : as_charlm(m);
    memset(md, 0, sizeof *md);
    if (v) { /* up to 11 characters per code point ("1114111,") */
        md->vocab = cx_xmalloc((size_t)v->size * 12 + 1);
        size_t k = 0;
        md->vocab[0] = 0;
        for (int i = 1; i < v->size; i++)
            k += (size_t)sprintf(md->vocab + k, i > 1 ? ",%ld" : "%ld", (long)v->chars[i]);
    }
    int j = 0;
    md->keys[j] = "format", md->values[j++] = "pt";
    md->keys[j] = "cortex.arch", md->values[j++] = "charlm";
    if (tf) {
        const cx_tlm_config tc = cx_tlm_get_config(m);
        static const char *const keys[9] = {"cortex.charlm.vocab",   "cortex.charlm.embed",   "cortex.charlm.layers",
                                            "cortex.charlm.heads",   "cortex.charlm.context", "cortex.charlm.ffn",
                                            "cortex.charlm.dropout", "cortex.charlm.attn_dropout",
                                            "cortex.charlm.tie"};
        const int iv[6] = {tc.vocab, tc.embed, tc.layers, tc.heads, tc.context, tc.ffn};
        for (int i = 0; i < 6; i++) snprintf(md->num[i], sizeof md->num[i], "%d", iv[i]);
        snprintf(md->num[6], sizeof md->num[6], "%.9g", (double)tc.dropout);
        snprintf(md->num[7], sizeof md->num[7], "%.9g", (double)tc.attn_dropout);
        snprintf(md->num[8], sizeof md->num[8], "%d", tc.tie ? 1 : 0);
        md->keys[j] = "cortex.charlm.arch", md->values[j++] = "transformer";
        for (int i = 0; i < 9; i++) md->keys[j] = keys[i], md->values[j++] = md->num[i];
    } else {
        snprintf(md->num[0], sizeof md->num[0], "%d", c->cfg.vocab);
        snprintf(md->num[1], sizeof md->num[1], "%d", c->cfg.embed);
        snprintf(md->num[2], sizeof md->num[2], "%d", c->cfg.hidden);
        snprintf(md->num[3], sizeof md->num[3], "%d", c->cfg.layers);
        snprintf(md->num[4], sizeof md->num[4], "%.9g", (double)c->cfg.dropout);
        static const char *const keys[5] = {"cortex.charlm.vocab", "cortex.charlm.embed", "cortex.charlm.hidden",
                                            "cortex.charlm.layers", "cortex.charlm.dropout"};
        for (int i = 0; i < 5; i++) md->keys[j] = keys[i], md->values[j++] = md->num[i];
    }
    if (md->vocab) md->keys[j] = "cortex.vocab", md->values[j++] = md->vocab;
    md->n = j;
}

void cx_charlm_meta_free(cx_charlm_meta *md) {
    free(md->vocab);
    memset(md, 0, sizeof *md);
}

cx_status cx_charlm_save(const char *path, cx_module *m, const cx_vocab *v, const cx_params *extra,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    (void)cx_charlm_arch(m); /* either architecture */
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return cx_set_error(CX_ERR_ARG, "%s: bad metadata list", path);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    if (extra)
        for (int i = 0; i < extra->n; i++) cx_params_add(&ps, extra->t[i]);
    const char **names = cx_xmalloc((size_t)(ps.n ? ps.n : 1) * sizeof *names);
    for (int i = 0; i < ps.n; i++) names[i] = ps.t[i]->name;
    cx_charlm_meta md;
    cx_charlm_meta_init(&md, m, v);
    const int nm = md.n + n_meta;
    const char **mk = cx_xmalloc((size_t)nm * sizeof *mk), **mv = cx_xmalloc((size_t)nm * sizeof *mv);
    for (int i = 0; i < md.n; i++) mk[i] = md.keys[i], mv[i] = md.values[i];
    for (int i = 0; i < n_meta; i++) mk[md.n + i] = meta_keys[i], mv[md.n + i] = meta_values[i];
    cx_status st = cx_st_save(path, ps.t, names, ps.n, mk, mv, nm);
    free(mk);
    free(mv);
    cx_charlm_meta_free(&md);
    free(names);
    cx_params_free(&ps);
    return st;
}

static cx_status need_shape(const char *path, const cx_st_file *f, const char *name, int d0, int d1, int nd) {
    const cx_tensor *t = cx_st_get(f, name);
    if (!t) return cx_set_error(CX_ERR_NOTFOUND, "%s: tensor '%s' is missing", path, name);
    char b[96];
    if (t->dtype != CX_F32 || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        if (nd == 2)
            return cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' is %s %s, the metadata needs F32 [%d, %d]", path, name,
                                cx_dtype_name(t->dtype), cx_shape_str(t, b, sizeof b), d0, d1);
        return cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' is %s %s, the metadata needs F32 [%d]", path, name,
                            cx_dtype_name(t->dtype), cx_shape_str(t, b, sizeof b), d0);
    }
    return CX_OK;
}

static cx_status parse_vocab(const char *path, const char *s, int V, cx_vocab **out) {
    *out = NULL;
    int32_t *cps = cx_xmalloc((size_t)V * sizeof *cps);
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long cp = strtol(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') || n >= V - 1 || cp < 0 || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF) || (n > 0 && cp <= cps[n - 1])) {
            free(cps);
            return cx_set_error(CX_ERR_FORMAT,
                                "%s: bad cortex.vocab metadata at entry %d (need %d strictly increasing code points)",
                                path, n + 1, V - 1);
        }
        cps[n++] = (int32_t)cp;
        if (!*end) break;
        p = end + 1;
    }
    if (n != V - 1) {
        free(cps);
        return cx_set_error(CX_ERR_FORMAT, "%s: cortex.vocab holds %d code points, cortex.charlm.vocab needs %d", path,
                            n, V - 1);
    }
    *out = cx_vocab_build(cps, n, 1);
    free(cps);
    return CX_OK;
}

static cx_status parse_prob(const char *path, const cx_st_file *f, const char *key, float *out) {
    const char *ds = cx_st_meta(f, key);
    *out = 0;
    if (!ds) return CX_OK;
    char *end;
    double d = strtod(ds, &end);
    if (end == ds || *end || !(d >= 0 && d < 1))
        return cx_set_error(CX_ERR_FORMAT, "%s: metadata %s '%s' is not in [0, 1)", path, key, ds);
    *out = (float)d;
    return CX_OK;
}

/* The vocabulary (when the file has one) and the model's state into a new
 * model m (freed on error). */
static cx_status finish_load(const cx_st_file *f, const char *path, cx_module *m, int V, cx_module **out,
                             cx_vocab **vocab) {
    cx_vocab *voc = NULL;
    const char *vs = cx_st_meta(f, "cortex.vocab");
    cx_status st = vs ? parse_vocab(path, vs, V, &voc) : CX_OK;
    if (!st) st = cx_module_load_state(m, f, path);
    if (st) {
        cx_module_free(m);
        cx_vocab_free(voc);
        return st;
    }
    *out = m;
    if (vocab) *vocab = voc;
    else cx_vocab_free(voc);
    return CX_OK;
}

/* A Transformer file: sizes from the metadata, every tensor checked against
 * them before the model is allocated. */
static cx_status tlm_from_st(const cx_st_file *f, const char *path, cx_module **out, cx_vocab **vocab) {
    cx_tlm_config cfg = cx_tlm_defaults(2);
    const char *keys[6] = {"cortex.charlm.vocab", "cortex.charlm.embed",   "cortex.charlm.layers",
                           "cortex.charlm.heads", "cortex.charlm.context", "cortex.charlm.ffn"};
    int *dst[6] = {&cfg.vocab, &cfg.embed, &cfg.layers, &cfg.heads, &cfg.context, &cfg.ffn};
    const long lo[6] = {2, 1, 1, 1, 1, 1}, hi[6] = {1 << 22, 1 << 16, 4096, 1 << 16, 1 << 20, 1 << 20};
    for (int i = 0; i < 6; i++)
        if (!cx_st_meta_int(f, keys[i], lo[i], hi[i], dst[i]))
            return cx_set_error(CX_ERR_FORMAT, "%s: metadata %s is %s (expected an integer in [%ld, %ld])", path,
                                keys[i], cx_st_meta(f, keys[i]) ? "malformed" : "missing", lo[i], hi[i]);
    if (cfg.embed % cfg.heads)
        return cx_set_error(CX_ERR_FORMAT, "%s: metadata cortex.charlm.embed %d is not divisible by cortex.charlm.heads %d",
                            path, cfg.embed, cfg.heads);
    cx_status st = parse_prob(path, f, "cortex.charlm.dropout", &cfg.dropout);
    if (!st) st = parse_prob(path, f, "cortex.charlm.attn_dropout", &cfg.attn_dropout);
    if (st) return st;
    const char *tie = cx_st_meta(f, "cortex.charlm.tie");
    if (tie && strcmp(tie, "0") && strcmp(tie, "1"))
        return cx_set_error(CX_ERR_FORMAT, "%s: metadata cortex.charlm.tie '%s' is not 0 or 1", path, tie);
    cfg.tie = tie && !strcmp(tie, "1");
    const int V = cfg.vocab, E = cfg.embed, F = cfg.ffn;
    st = need_shape(path, f, "tok_emb.weight", V, E, 2);
    if (!st) st = need_shape(path, f, "pos_emb.weight", cfg.context, E, 2);
    for (int l = 0; !st && l < cfg.layers; l++) {
        static const char *const nm[12] = {"ln1.weight", "ln1.bias", "attn.in_proj_weight", "attn.in_proj_bias",
                                           "attn.out_proj.weight", "attn.out_proj.bias", "ln2.weight", "ln2.bias",
                                           "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
        const int d0[12] = {E, E, 3 * E, 3 * E, E, E, E, E, F, F, E, E}, d1[12] = {0, 0, E, 0, E, 0, 0, 0, E, 0, F, 0};
        for (int i = 0; !st && i < 12; i++) {
            char n[96];
            snprintf(n, sizeof n, "blocks.%d.%s", l, nm[i]);
            st = need_shape(path, f, n, d0[i], d1[i], d1[i] ? 2 : 1);
        }
    }
    if (!st) st = need_shape(path, f, "ln_f.weight", E, 0, 1);
    if (!st) st = need_shape(path, f, "ln_f.bias", E, 0, 1);
    if (!st && (!cfg.tie || cx_st_get(f, "head.weight"))) st = need_shape(path, f, "head.weight", V, E, 2);
    if (!st) st = need_shape(path, f, "head.bias", V, 0, 1);
    if (st) return st;
    return finish_load(f, path, cx_tlm_new(&cfg), V, out, vocab);
}

cx_status cx_charlm_from_st(const struct cx_st_file *f, const char *path, cx_module **out, cx_vocab **vocab) {
    *out = NULL;
    if (vocab) *vocab = NULL;
    const char *arch = cx_st_meta(f, "cortex.arch");
    if (!arch || strcmp(arch, "charlm"))
        return cx_set_error(CX_ERR_FORMAT, "%s: not a character language model (cortex.arch is %s%s%s, expected 'charlm')",
                            path, arch ? "'" : "", arch ? arch : "missing", arch ? "'" : "");
    const char *la = cx_st_meta(f, "cortex.charlm.arch");
    if (la && !strcmp(la, "transformer")) return tlm_from_st(f, path, out, vocab);
    if (la && strcmp(la, "lstm"))
        return cx_set_error(CX_ERR_FORMAT, "%s: unknown cortex.charlm.arch '%s' (lstm, transformer)", path, la);
    cx_charlm_config cfg;
    const char *keys[4] = {"cortex.charlm.vocab", "cortex.charlm.embed", "cortex.charlm.hidden", "cortex.charlm.layers"};
    int *dst[4] = {&cfg.vocab, &cfg.embed, &cfg.hidden, &cfg.layers};
    const long lo[4] = {2, 1, 1, 1}, hi[4] = {1 << 22, 1 << 20, 1 << 20, 1024};
    for (int i = 0; i < 4; i++)
        if (!cx_st_meta_int(f, keys[i], lo[i], hi[i], dst[i]))
            return cx_set_error(CX_ERR_FORMAT, "%s: metadata %s is %s (expected an integer in [%ld, %ld])", path,
                                keys[i], cx_st_meta(f, keys[i]) ? "malformed" : "missing", lo[i], hi[i]);
    const char *ds = cx_st_meta(f, "cortex.charlm.dropout");
    cfg.dropout = 0;
    if (ds) {
        char *end;
        double d = strtod(ds, &end);
        if (end == ds || *end || !(d >= 0 && d < 1))
            return cx_set_error(CX_ERR_FORMAT, "%s: metadata cortex.charlm.dropout '%s' is not in [0, 1)", path, ds);
        cfg.dropout = (float)d;
    }
    /* every tensor's shape before allocating anything */
    const int V = cfg.vocab, E = cfg.embed, H = cfg.hidden;
    if ((int64_t)4 * H > (1 << 30)) return cx_set_error(CX_ERR_FORMAT, "%s: hidden size %d too large", path, H);
    cx_status st = need_shape(path, f, "embed.weight", V, E, 2);
    for (int l = 0; !st && l < cfg.layers; l++) {
        char n[64];
        snprintf(n, sizeof n, "lstm.weight_ih_l%d", l);
        st = need_shape(path, f, n, 4 * H, l ? H : E, 2);
        snprintf(n, sizeof n, "lstm.weight_hh_l%d", l);
        if (!st) st = need_shape(path, f, n, 4 * H, H, 2);
        snprintf(n, sizeof n, "lstm.bias_ih_l%d", l);
        if (!st) st = need_shape(path, f, n, 4 * H, 0, 1);
        snprintf(n, sizeof n, "lstm.bias_hh_l%d", l);
        if (!st) st = need_shape(path, f, n, 4 * H, 0, 1);
    }
    if (!st) st = need_shape(path, f, "fc.weight", V, H, 2);
    if (!st) st = need_shape(path, f, "fc.bias", V, 0, 1);
    if (st) return st;
    cx_vocab *voc = NULL;
    const char *vs = cx_st_meta(f, "cortex.vocab");
    if (vs && (st = parse_vocab(path, vs, V, &voc))) return st;
    cx_module *m = cx_charlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    for (int i = 0; i < ps.n; i++) {
        const cx_tensor *src = cx_st_get(f, ps.t[i]->name);
        if (!src || !cx_same_shape(src, ps.t[i])) { /* unreachable after the checks above */
            st = cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' does not fit the model", path, ps.t[i]->name);
            break;
        }
        memcpy(ps.t[i]->data, src->data, (size_t)src->numel * sizeof(float));
    }
    cx_params_free(&ps);
    if (st) {
        cx_module_free(m);
        cx_vocab_free(voc);
        return st;
    }
    *out = m;
    if (vocab) *vocab = voc;
    else cx_vocab_free(voc);
    return CX_OK;
}

cx_status cx_charlm_load(const char *path, cx_module **out, cx_vocab **vocab) {
    *out = NULL;
    if (vocab) *vocab = NULL;
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    st = cx_charlm_from_st(f, path, out, vocab);
    cx_st_free(f);
    return st;
}

/* ---------------------------------------------------------------- decoding */
static cx_charlm_out run_state(cx_charlm_decoder *d, const cx_tensor *x, const float *state) {
    cx_charlm_config c = as_charlm(d->model)->cfg;
    const int L = c.layers, H = c.hidden, B = x->shape[1];
    cx_tensor *h0 = NULL, *c0 = NULL;
    if (state) {
        h0 = cx_from_data(state, (const int[]){L, B, H}, 3);
        c0 = cx_from_data(state + (size_t)L * H, (const int[]){L, B, H}, 3);
    }
    return cx_charlm_forward(d->model, x, h0, c0);
}

static cx_status charlm_step(void *user, const int *prefix, int n_prefix, const void *state_in, void *state_out,
                             float *logp) {
    cx_charlm_decoder *d = user;
    cx_charlm_config c = as_charlm(d->model)->cfg;
    int tok = prefix[n_prefix - 1];
    if (tok < 0 || tok >= c.vocab)
        return cx_set_error(CX_ERR_ARG, "charlm decoder: token %d out of range [0, %d)", tok, c.vocab);
    cx_arena *prev = cx_arena_use(d->arena);
    bool training = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    int32_t t32 = tok;
    cx_charlm_out o = run_state(d, cx_from_i32(&t32, (const int[]){1, 1}, 2), state_in);
    const size_t LH = (size_t)c.layers * c.hidden;
    memcpy(state_out, o.h->data, LH * sizeof(float));
    memcpy((float *)state_out + LH, o.c->data, LH * sizeof(float));
    memcpy(logp, o.logits->data, (size_t)c.vocab * sizeof(float));
    if (d->ban_unk) logp[CX_VOCAB_UNK] = -INFINITY;
    cx_no_grad_end();
    cx_set_training(training);
    cx_arena_reset(d->arena);
    cx_arena_use(prev);
    return CX_OK;
}

/* The Transformer's step: cx_tlm_step on its window + key/value cache. */
static cx_status tlm_dec_step(void *user, const int *prefix, int n_prefix, const void *state_in, void *state_out,
                              float *logp) {
    cx_charlm_decoder *d = user;
    cx_arena *prev = cx_arena_use(d->arena);
    cx_status st = cx_tlm_step(d->model, state_in, state_out, prefix[n_prefix - 1], logp);
    if (!st && d->ban_unk) logp[CX_VOCAB_UNK] = -INFINITY;
    cx_arena_reset(d->arena);
    cx_arena_use(prev);
    return st;
}

static void tlm_dec_copy(void *user, void *dst, const void *src) {
    cx_tlm_state_copy(((cx_charlm_decoder *)user)->model, dst, src);
}

void cx_charlm_decoder_init(cx_charlm_decoder *d, cx_module *model) {
    (void)cx_charlm_arch(model); /* fatal for other modules, before anything is allocated */
    memset(d, 0, sizeof *d);
    d->model = model;
    d->arena = cx_arena_new((size_t)1 << 20);
    d->dec.user = d;
    if (cx_tlm_is(model)) {
        d->dec.vocab = cx_tlm_get_config(model).vocab;
        d->dec.state_bytes = cx_tlm_state_bytes(model);
        d->dec.step = tlm_dec_step;
        d->dec.copy_state = tlm_dec_copy;
        return;
    }
    cx_charlm_config c = as_charlm(model)->cfg;
    d->dec.vocab = c.vocab;
    d->dec.state_bytes = 2 * (size_t)c.layers * c.hidden * sizeof(float);
    d->dec.step = charlm_step;
    d->dec.copy_state = NULL;
    d->dec.user = d;
}

void cx_charlm_decoder_free(cx_charlm_decoder *d) {
    if (!d) return;
    cx_arena_free(d->arena);
    memset(d, 0, sizeof *d);
}

void cx_charlm_prime(cx_charlm_decoder *d, const int32_t *ids, int n, void *state, float *logits) {
    if (cx_tlm_is(d->model)) {
        cx_arena *prev = cx_arena_use(d->arena);
        cx_tlm_prime(d->model, ids, n, state, logits);
        cx_arena_reset(d->arena);
        cx_arena_use(prev);
        return;
    }
    cx_charlm_config c = as_charlm(d->model)->cfg;
    const size_t LH = (size_t)c.layers * c.hidden;
    if (n < 0) cx_fatal("charlm_prime: negative length %d", n);
    if (n == 0) {
        memset(state, 0, 2 * LH * sizeof(float));
        return;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c.vocab) cx_fatal("charlm_prime: id %d at %d out of range [0, %d)", ids[i], i, c.vocab);
    cx_arena *prev = cx_arena_use(d->arena);
    bool training = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    cx_charlm_out o = run_state(d, cx_from_i32(ids, (const int[]){n, 1}, 2), NULL);
    memcpy(state, o.h->data, LH * sizeof(float));
    memcpy((float *)state + LH, o.c->data, LH * sizeof(float));
    if (logits) memcpy(logits, (const float *)o.logits->data + (size_t)(n - 1) * c.vocab, (size_t)c.vocab * sizeof(float));
    cx_no_grad_end();
    cx_set_training(training);
    cx_arena_reset(d->arena);
    cx_arena_use(prev);
}
