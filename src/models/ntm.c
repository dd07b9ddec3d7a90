/* The Neural Turing Machine module (cortex/ntm.h): controller, heads, memory,
 * forward pass over a sequence, files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/ntm.h"
#include "cortex/memory.h"
#include "cortex/rnn.h"
#include "../tensor/internal.h"

#define NTM_SHIFTS 3
#define NTM_MAX_SIZE 65536

typedef struct {
    cx_module base;
    cx_ntm_config cfg;
    cx_module *controller, *read_heads, *write_heads, *fc;
    cx_tensor *read_init;    /* [R, W] */
    cx_tensor *memory_bias;  /* [N, W] (learned_memory only) */
} ntm_m;

static cx_tensor *ntm_fwd(cx_module *m, cx_tensor *x) { return cx_ntm_forward(m, x, NULL).logits; }

static void ntm_describe(const cx_module *m, char *buf, size_t n) {
    const cx_ntm_config *c = &((const ntm_m *)m)->cfg;
    snprintf(buf, n, "NTM(%d -> %d, %s %d, memory %d x %d, %d read / %d write heads)", c->input_size,
             c->output_size, c->controller == CX_NTM_LSTM ? "LSTM" : "FF", c->hidden, c->mem_n, c->mem_w,
             c->read_heads, c->write_heads);
}

static const cx_module_ops ntm_ops = {.kind = "NTM", .forward = ntm_fwd, .describe = ntm_describe};

cx_ntm_config cx_ntm_defaults(int input_size, int output_size) {
    cx_ntm_config c;
    memset(&c, 0, sizeof c);
    c.input_size = input_size;
    c.output_size = output_size;
    c.controller = CX_NTM_LSTM;
    c.hidden = 100;
    c.mem_n = 128;
    c.mem_w = 20;
    c.read_heads = 1;
    c.write_heads = 1;
    c.key_tanh = false;
    c.learned_memory = false;
    c.mem_const = 1e-6f;
    c.clip = 20.0f;
    return c;
}

/* NULL when valid, else a message (static). */
static const char *config_error(const cx_ntm_config *c, char *buf, size_t n) {
    const int v[8] = {c->input_size, c->output_size, c->hidden, c->mem_n, c->mem_w, c->read_heads, c->write_heads, 0};
    static const char *const nm[7] = {"input_size", "output_size", "hidden", "mem_n", "mem_w", "read_heads",
                                      "write_heads"};
    for (int i = 0; i < 7; i++)
        if (v[i] < 1 || v[i] > NTM_MAX_SIZE) {
            snprintf(buf, n, "%s = %d is out of range [1, %d]", nm[i], v[i], NTM_MAX_SIZE);
            return buf;
        }
    if (c->mem_n < NTM_SHIFTS) {
        snprintf(buf, n, "mem_n = %d: the memory needs at least %d slots (3 shift offsets)", c->mem_n, NTM_SHIFTS);
        return buf;
    }
    if (c->read_heads > 64 || c->write_heads > 64) {
        snprintf(buf, n, "%d read / %d write heads: at most 64 of each", c->read_heads, c->write_heads);
        return buf;
    }
    if (c->controller != CX_NTM_LSTM && c->controller != CX_NTM_FF) {
        snprintf(buf, n, "unknown controller kind %d", (int)c->controller);
        return buf;
    }
    if (!(c->clip >= 0) || !isfinite(c->clip)) {
        snprintf(buf, n, "clip = %g must be finite and >= 0", (double)c->clip);
        return buf;
    }
    if (!isfinite(c->mem_const)) {
        snprintf(buf, n, "mem_const = %g is not finite", (double)c->mem_const);
        return buf;
    }
    return NULL;
}

static ntm_m *as_ntm(const cx_module *m, const char *fn) {
    if (!m || m->ops != &ntm_ops) cx_fatal("%s: the module is not an NTM (%s)", fn, m ? cx_module_kind(m) : "NULL");
    return (ntm_m *)m;
}

cx_module *cx_ntm_new(const cx_ntm_config *cfg) {
    char eb[160];
    if (!cfg) cx_fatal("ntm_new: cfg must not be NULL");
    const char *e = config_error(cfg, eb, sizeof eb);
    if (e) cx_fatal("ntm_new: %s", e);
    const int H = cfg->hidden, W = cfg->mem_w, R = cfg->read_heads, U = cfg->input_size + R * W;
    ntm_m *n = cx_xcalloc(1, sizeof *n);
    cx_module_init(&n->base, &ntm_ops);
    n->cfg = *cfg;
    n->read_init = cx_param_new(NULL, CX_SHAPE(R, W));
    cx_init_normal(n->read_init, 0.0f, 0.01f);
    cx_module_add_param(&n->base, "read_init", &n->read_init);
    if (cfg->learned_memory) {
        n->memory_bias = cx_param_new(NULL, CX_SHAPE(cfg->mem_n, W));
        const float s = 1.0f / sqrtf((float)(cfg->mem_n + W));
        cx_init_uniform(n->memory_bias, -s, s);
        cx_module_add_param(&n->base, "memory_bias", &n->memory_bias);
    }
    n->controller = cfg->controller == CX_NTM_LSTM ? cx_lstm_cell_new(U, H, NULL) : cx_linear_new(U, H, true);
    cx_module_add(&n->base, "controller", n->controller);
    n->read_heads = cx_sequential_new();
    for (int i = 0; i < R; i++) cx_sequential_add(n->read_heads, NULL, cx_linear_new(H, W + 6, true));
    cx_module_add(&n->base, "read_heads", n->read_heads);
    n->write_heads = cx_sequential_new();
    for (int i = 0; i < cfg->write_heads; i++) cx_sequential_add(n->write_heads, NULL, cx_linear_new(H, 3 * W + 6, true));
    cx_module_add(&n->base, "write_heads", n->write_heads);
    n->fc = cx_linear_new(H + R * W, cfg->output_size, true);
    cx_module_add(&n->base, "fc", n->fc);
    return &n->base;
}

cx_ntm_config cx_ntm_get_config(const cx_module *m) { return as_ntm(m, "ntm_get_config")->cfg; }

void cx_ntm_trace_free(cx_ntm_trace *tr) {
    if (!tr) return;
    free(tr->read_w);
    free(tr->write_w);
    free(tr->mem);
    memset(tr, 0, sizeof *tr);
}

/* Columns [a, a + n) of p [B, P]. */
static cx_tensor *cols(cx_tensor *p, int a, int n) { return cx_slice(p, 1, a, a + n, 1); }

typedef struct {
    cx_tensor *key, *beta, *g, *s, *gamma, *erase, *add;
} head_params;

static head_params split_head(cx_tensor *p, int W, bool key_tanh, bool write) {
    head_params h;
    memset(&h, 0, sizeof h);
    h.key = cols(p, 0, W);
    if (key_tanh) h.key = cx_tanh(h.key);
    h.beta = cx_softplus(cols(p, W, 1), 1.0f, 20.0f);
    h.g = cx_sigmoid(cols(p, W + 1, 1));
    h.s = cx_softmax(cols(p, W + 2, NTM_SHIFTS), -1);
    h.gamma = cx_add_scalar(cx_softplus(cols(p, W + 5, 1), 1.0f, 20.0f), 1.0f);
    if (write) {
        h.erase = cx_sigmoid(cols(p, W + 6, W));
        h.add = cx_tanh(cols(p, 2 * W + 6, W));
    }
    return h;
}

cx_ntm_out cx_ntm_forward(cx_module *m, cx_tensor *x, cx_ntm_trace *trace) {
    ntm_m *n = as_ntm(m, "ntm_forward");
    const cx_ntm_config *c = &n->cfg;
    char s1[64];
    if (!x || x->dtype != CX_F32 || x->ndim != 3 || x->shape[2] != c->input_size || x->shape[0] < 1 ||
        x->shape[1] < 1)
        cx_fatal("ntm_forward: x has shape %s, expected F32 [T, B, %d]", x ? cx_shape_str(x, s1, sizeof s1) : "NULL",
                 c->input_size);
    const int T = x->shape[0], B = x->shape[1], N = c->mem_n, W = c->mem_w, R = c->read_heads,
              Wr = c->write_heads, H = c->hidden, I = c->input_size;
    if (trace) {
        cx_ntm_trace_free(trace);
        trace->T = T, trace->B = B, trace->N = N, trace->W = W, trace->R = R, trace->Wr = Wr;
        trace->read_w = cx_xmalloc((size_t)T * R * B * N * sizeof(float));
        trace->write_w = cx_xmalloc((size_t)T * Wr * B * N * sizeof(float));
        trace->mem = cx_xmalloc((size_t)T * B * N * W * sizeof(float));
    }
    /* initial state */
    cx_tensor *mem;
    if (n->memory_bias)
        mem = cx_add(cx_zeros(CX_SHAPE(B, N, W)), cx_reshape(n->memory_bias, CX_SHAPE(1, N, W)));
    else
        mem = cx_full(CX_SHAPE(B, N, W), c->mem_const);
    cx_tensor *w0 = cx_zeros(CX_SHAPE(B, N));
    for (int b = 0; b < B; b++) CX_F(w0)[(size_t)b * N] = 1.0f;
    cx_tensor *rw[64], *ww[64], *reads[65];
    for (int i = 0; i < R; i++) {
        rw[i] = w0;
        reads[i + 1] = cx_add(cx_zeros(CX_SHAPE(B, W)), cx_slice(n->read_init, 0, i, i + 1, 1));
    }
    for (int j = 0; j < Wr; j++) ww[j] = w0;
    cx_tensor *h = NULL, *cs = NULL;
    cx_tensor *cw_ih = NULL, *cw_hh = NULL, *cb_ih = NULL, *cb_hh = NULL, *cw = NULL, *cb = NULL;
    if (c->controller == CX_NTM_LSTM) {
        cw_ih = cx_module_tensor(n->controller, "weight_ih");
        cw_hh = cx_module_tensor(n->controller, "weight_hh");
        cb_ih = cx_module_tensor(n->controller, "bias_ih");
        cb_hh = cx_module_tensor(n->controller, "bias_hh");
    } else {
        cw = cx_linear_weight(n->controller);
        cb = cx_linear_bias(n->controller);
    }
    cx_tensor **ys = cx_arena_alloc((size_t)T * sizeof *ys);
    for (int t = 0; t < T; t++) {
        reads[0] = cx_reshape(cx_slice(x, 0, t, t + 1, 1), CX_SHAPE(B, I));
        cx_tensor *u = cx_concat(reads, R + 1, 1);
        if (c->controller == CX_NTM_LSTM) {
            cx_rnn_out o = cx_lstm_cell(u, h, cs, cw_ih, cw_hh, cb_ih, cb_hh);
            h = o.h;
            cs = o.c;
        } else {
            h = cx_relu(cx_linear(u, cw, cb));
        }
        cx_tensor *hc = c->clip > 0 ? cx_clamp(h, -c->clip, c->clip) : h;
        for (int i = 0; i < R; i++) {
            cx_module *lin = cx_sequential_get(n->read_heads, i);
            cx_tensor *p = cx_linear(hc, cx_linear_weight(lin), cx_linear_bias(lin));
            head_params hp = split_head(p, W, c->key_tanh, false);
            rw[i] = cx_ntm_address(mem, hp.key, hp.beta, hp.g, rw[i], hp.s, hp.gamma);
            reads[i + 1] = cx_ntm_read(mem, rw[i]);
            if (trace) memcpy(trace->read_w + ((size_t)t * R + i) * B * N, rw[i]->data, (size_t)B * N * sizeof(float));
        }
        for (int j = 0; j < Wr; j++) {
            cx_module *lin = cx_sequential_get(n->write_heads, j);
            cx_tensor *p = cx_linear(hc, cx_linear_weight(lin), cx_linear_bias(lin));
            head_params hp = split_head(p, W, c->key_tanh, true);
            ww[j] = cx_ntm_address(mem, hp.key, hp.beta, hp.g, ww[j], hp.s, hp.gamma);
            mem = cx_ntm_write(mem, ww[j], hp.erase, hp.add);
            if (trace)
                memcpy(trace->write_w + ((size_t)t * Wr + j) * B * N, ww[j]->data, (size_t)B * N * sizeof(float));
        }
        if (trace) memcpy(trace->mem + (size_t)t * B * N * W, mem->data, (size_t)B * N * W * sizeof(float));
        reads[0] = hc;
        cx_tensor *o = cx_concat(reads, R + 1, 1);
        ys[t] = cx_linear(o, cx_linear_weight(n->fc), cx_linear_bias(n->fc));
    }
    (void)H;
    cx_ntm_out out = {cx_stack(ys, T, 0), mem};
    return out;
}

/* ---------------------------------------------------------------- files */
cx_status cx_ntm_save(const char *path, cx_module *m, const char *const *meta_keys, const char *const *meta_values,
                      int n_meta) {
    ntm_m *n = as_ntm(m, "ntm_save");
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return cx_set_error(CX_ERR_ARG, "%s: bad metadata list", path);
    const cx_ntm_config *c = &n->cfg;
    char num[12][32];
    snprintf(num[0], 32, "%d", c->input_size);
    snprintf(num[1], 32, "%d", c->output_size);
    snprintf(num[2], 32, "%s", c->controller == CX_NTM_LSTM ? "lstm" : "ff");
    snprintf(num[3], 32, "%d", c->hidden);
    snprintf(num[4], 32, "%d", c->mem_n);
    snprintf(num[5], 32, "%d", c->mem_w);
    snprintf(num[6], 32, "%d", c->read_heads);
    snprintf(num[7], 32, "%d", c->write_heads);
    snprintf(num[8], 32, "%d", c->key_tanh ? 1 : 0);
    snprintf(num[9], 32, "%d", c->learned_memory ? 1 : 0);
    snprintf(num[10], 32, "%.9g", (double)c->mem_const);
    snprintf(num[11], 32, "%.9g", (double)c->clip);
    static const char *const keys[12] = {"cortex.ntm.input",    "cortex.ntm.output",      "cortex.ntm.controller",
                                         "cortex.ntm.hidden",   "cortex.ntm.mem_n",       "cortex.ntm.mem_w",
                                         "cortex.ntm.read_heads", "cortex.ntm.write_heads", "cortex.ntm.key_tanh",
                                         "cortex.ntm.learned_memory", "cortex.ntm.mem_const", "cortex.ntm.clip"};
    const int nm = 2 + 12 + n_meta;
    const char **mk = cx_xmalloc((size_t)nm * sizeof *mk), **mv = cx_xmalloc((size_t)nm * sizeof *mv);
    mk[0] = "format", mv[0] = "pt";
    mk[1] = "cortex.arch", mv[1] = "ntm";
    for (int i = 0; i < 12; i++) mk[2 + i] = keys[i], mv[2 + i] = num[i];
    for (int i = 0; i < n_meta; i++) mk[14 + i] = meta_keys[i], mv[14 + i] = meta_values[i];
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    const char **names = cx_xmalloc((size_t)ps.n * sizeof *names);
    for (int i = 0; i < ps.n; i++) names[i] = ps.t[i]->name;
    cx_status st = cx_st_save(path, ps.t, names, ps.n, mk, mv, nm);
    free(names);
    cx_params_free(&ps);
    free(mk);
    free(mv);
    return st;
}

static bool parse_float(const char *s, float *out) {
    if (!s || !*s) return false;
    char *end;
    double d = strtod(s, &end);
    if (*end || !isfinite(d)) return false;
    *out = (float)d;
    return true;
}

static cx_status need_shape(const char *path, const cx_st_file *f, const char *name, int d0, int d1) {
    const cx_tensor *t = cx_st_get(f, name);
    const int nd = d1 ? 2 : 1;
    char b[96];
    if (!t) return cx_set_error(CX_ERR_NOTFOUND, "%s: tensor '%s' is missing", path, name);
    if (t->dtype != CX_F32 || t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        if (nd == 2)
            return cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' is %s %s, the metadata needs F32 [%d, %d]", path, name,
                                cx_dtype_name(t->dtype), cx_shape_str(t, b, sizeof b), d0, d1);
        return cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' is %s %s, the metadata needs F32 [%d]", path, name,
                            cx_dtype_name(t->dtype), cx_shape_str(t, b, sizeof b), d0);
    }
    return CX_OK;
}

static cx_status bad_meta(const char *path, const cx_st_file *f, const char *key, const char *want) {
    const char *v = cx_st_meta(f, key);
    return cx_set_error(CX_ERR_FORMAT, "%s: metadata %s is %s%s%s (expected %s)", path, key, v ? "'" : "",
                        v ? v : "missing", v ? "'" : "", want);
}

cx_status cx_ntm_load(const char *path, cx_module **out) {
    if (!out) cx_fatal("ntm_load: out must not be NULL");
    *out = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "ntm_load: path is NULL");
    cx_st_file *f = NULL;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    cx_ntm_config c = cx_ntm_defaults(1, 1);
    const char *arch = cx_st_meta(f, "cortex.arch");
    if (!arch || strcmp(arch, "ntm")) {
        st = bad_meta(path, f, "cortex.arch", "'ntm': not an NTM file");
        goto done;
    }
    {
        static const char *const keys[7] = {"cortex.ntm.input", "cortex.ntm.output", "cortex.ntm.hidden",
                                            "cortex.ntm.mem_n", "cortex.ntm.mem_w",  "cortex.ntm.read_heads",
                                            "cortex.ntm.write_heads"};
        int *dst[7] = {&c.input_size, &c.output_size, &c.hidden, &c.mem_n, &c.mem_w, &c.read_heads, &c.write_heads};
        for (int i = 0; i < 7; i++)
            if (!cx_st_meta_int(f, keys[i], 1, i >= 5 ? 64 : NTM_MAX_SIZE, dst[i])) {
                st = bad_meta(path, f, keys[i], "a positive integer in range");
                goto done;
            }
        const char *ctl = cx_st_meta(f, "cortex.ntm.controller");
        if (ctl && !strcmp(ctl, "lstm")) c.controller = CX_NTM_LSTM;
        else if (ctl && !strcmp(ctl, "ff")) c.controller = CX_NTM_FF;
        else {
            st = bad_meta(path, f, "cortex.ntm.controller", "'lstm' or 'ff'");
            goto done;
        }
        int kt, lm;
        if (!cx_st_meta_int(f, "cortex.ntm.key_tanh", 0, 1, &kt)) {
            st = bad_meta(path, f, "cortex.ntm.key_tanh", "0 or 1");
            goto done;
        }
        if (!cx_st_meta_int(f, "cortex.ntm.learned_memory", 0, 1, &lm)) {
            st = bad_meta(path, f, "cortex.ntm.learned_memory", "0 or 1");
            goto done;
        }
        c.key_tanh = kt, c.learned_memory = lm;
        if (!parse_float(cx_st_meta(f, "cortex.ntm.mem_const"), &c.mem_const)) {
            st = bad_meta(path, f, "cortex.ntm.mem_const", "a finite number");
            goto done;
        }
        if (!parse_float(cx_st_meta(f, "cortex.ntm.clip"), &c.clip) || c.clip < 0) {
            st = bad_meta(path, f, "cortex.ntm.clip", "a finite number >= 0");
            goto done;
        }
        char eb[160];
        const char *e = config_error(&c, eb, sizeof eb);
        if (e) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: bad NTM configuration in the metadata: %s", path, e);
            goto done;
        }
    }
    {
        const int H = c.hidden, W = c.mem_w, R = c.read_heads, U = c.input_size + R * W;
        st = need_shape(path, f, "read_init", R, W);
        if (!st && c.learned_memory) st = need_shape(path, f, "memory_bias", c.mem_n, W);
        if (c.controller == CX_NTM_LSTM) {
            if (!st) st = need_shape(path, f, "controller.weight_ih", 4 * H, U);
            if (!st) st = need_shape(path, f, "controller.weight_hh", 4 * H, H);
            if (!st) st = need_shape(path, f, "controller.bias_ih", 4 * H, 0);
            if (!st) st = need_shape(path, f, "controller.bias_hh", 4 * H, 0);
        } else {
            if (!st) st = need_shape(path, f, "controller.weight", H, U);
            if (!st) st = need_shape(path, f, "controller.bias", H, 0);
        }
        for (int i = 0; !st && i < R + c.write_heads; i++) {
            char nb[64];
            const bool wr = i >= R;
            const int k = wr ? i - R : i, P = wr ? 3 * W + 6 : W + 6;
            snprintf(nb, sizeof nb, "%s.%d.weight", wr ? "write_heads" : "read_heads", k);
            st = need_shape(path, f, nb, P, H);
            snprintf(nb, sizeof nb, "%s.%d.bias", wr ? "write_heads" : "read_heads", k);
            if (!st) st = need_shape(path, f, nb, P, 0);
        }
        if (!st) st = need_shape(path, f, "fc.weight", c.output_size, H + R * W);
        if (!st) st = need_shape(path, f, "fc.bias", c.output_size, 0);
    }
    if (!st) {
        cx_module *m = cx_ntm_new(&c);
        st = cx_module_load_state(m, f, path);
        if (st) cx_module_free(m);
        else *out = m;
    }
done:
    cx_st_free(f);
    return st;
}
