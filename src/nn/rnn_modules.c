/* Recurrent modules: RNN / LSTM / GRU (stacked, bidirectional, batch_first)
 * and their single-step cell modules, on top of the fused ops of rnn.c.
 * Parameter names, shapes, order and default init follow PyTorch. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdio.h>

enum { P_WIH, P_WHH, P_BIH, P_BHH, P_PEEP, P_PER };

typedef struct {
    cx_module base;
    cx_rnn_mode mode;
    bool cell;
    int I, H, L, D, G;
    cx_rnn_opts opt;
    cx_tensor **p; /* L*D*P_PER, NULL where absent */
} rnn_m;

static const char *kind_name(cx_rnn_mode mode, bool cell) {
    switch (mode) {
    case CX_RNN_TANH: case CX_RNN_RELU: return cell ? "RNNCell" : "RNN";
    case CX_RNN_LSTM: return cell ? "LSTMCell" : "LSTM";
    case CX_RNN_GRU: return cell ? "GRUCell" : "GRU";
    }
    return "?";
}

static cx_tensor *param_of(rnn_m *r, int layer, int dir, int which) {
    return r->p[((size_t)layer * r->D + dir) * P_PER + which];
}

cx_rnn_opts cx_rnn_defaults(void) {
    cx_rnn_opts o;
    memset(&o, 0, sizeof o);
    o.num_layers = 1;
    o.bias = true;
    return o;
}

/* ---- module callbacks */
/* x, h0, c0 (optional) -> output, h_n, c_n (LSTM); a cell module: h', h', c' */
static int rnn_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    if (n_in < 1 || n_in > 3) cx_fatal("%s: expected x and optionally h0, c0 (1 to 3 inputs), got %d", m->ops->kind, n_in);
    cx_rnn_out o = cx_rnn_forward(m, in[0], n_in > 1 ? in[1] : NULL, n_in > 2 ? in[2] : NULL);
    cx_tensor *r[3] = {o.output, o.h, o.c};
    int k = o.c ? 3 : 2;
    if (k > max_out) k = max_out;
    for (int i = 0; i < k; i++) out[i] = r[i];
    return k;
}

static void rnn_describe(const cx_module *m, char *buf, size_t n) {
    const rnn_m *r = (const rnn_m *)m;
    const char *k = kind_name(r->mode, r->cell);
    if (r->cell) {
        snprintf(buf, n, "%s(%d, %d%s%s%s%s)", k, r->I, r->H, r->opt.bias ? "" : ", bias=False",
                 r->mode == CX_RNN_RELU ? ", nonlinearity=relu" : "", r->opt.peephole ? ", peephole" : "",
                 r->opt.coupled ? ", coupled" : "");
        return;
    }
    snprintf(buf, n, "%s(%d, %d, num_layers=%d%s%s%s%s%s%s)", k, r->I, r->H, r->L,
             r->D == 2 ? ", bidirectional" : "", r->opt.batch_first ? ", batch_first" : "",
             r->opt.bias ? "" : ", bias=False", r->mode == CX_RNN_RELU ? ", nonlinearity=relu" : "",
             r->opt.peephole ? ", peephole" : "", r->opt.coupled ? ", coupled" : "");
}

/* the parameters are registered with the base (which frees them); the array is ours */
static void rnn_destroy(cx_module *m) { free(((rnn_m *)m)->p); }

#define RNN_OPS(kind_) {.kind = kind_, .call = rnn_call, .describe = rnn_describe, .destroy = rnn_destroy}
/* one table per kind so that cx_module_kind() names it */
static const cx_module_ops rnn_ops[6] = {RNN_OPS("RNN"), RNN_OPS("LSTM"), RNN_OPS("GRU"),
                                         RNN_OPS("RNNCell"), RNN_OPS("LSTMCell"), RNN_OPS("GRUCell")};
#undef RNN_OPS

/* ---- construction */
static cx_tensor *new_param(const char *base, const char *suffix, const int *shape, int ndim) {
    char name[64];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    return cx_param_new(name, shape, ndim);
}

static cx_module *make(cx_rnn_mode mode, bool cell, int I, int H, const cx_rnn_opts *o) {
    cx_rnn_opts opt = o ? *o : cx_rnn_defaults();
    const char *k = kind_name(mode, cell);
    if (I <= 0 || H <= 0) cx_fatal("%s: input_size and hidden_size must be positive, got %d, %d", k, I, H);
    if (mode == CX_RNN_TANH && opt.relu) mode = CX_RNN_RELU;
    if (mode != CX_RNN_LSTM && (opt.peephole || opt.coupled || opt.set_forget_bias))
        cx_fatal("%s: peephole, coupled and forget_bias are LSTM options", k);
    if (cell) {
        opt.num_layers = 1;
        opt.bidirectional = false;
        opt.batch_first = false;
        opt.dropout = 0;
    }
    if (opt.num_layers < 1) cx_fatal("%s: num_layers must be >= 1, got %d", k, opt.num_layers);
    if (!(opt.dropout >= 0 && opt.dropout <= 1)) cx_fatal("%s: dropout must be in [0, 1], got %g", k, (double)opt.dropout);
    {   /* the largest weights checked before anything is allocated */
        const int64_t G = mode == CX_RNN_LSTM ? (opt.coupled ? 3 : 4) : mode == CX_RNN_GRU ? 3 : 1;
        const int64_t D = opt.bidirectional ? 2 : 1, in_max = (int64_t)I > D * H ? I : D * H;
        if (G * H > INT32_MAX || in_max > INT32_MAX) cx_fatal("%s: hidden size %d is too large", k, H);
        (void)cx_shape_numel(k, (const int[]){(int)(G * H), (int)in_max}, 2);
        (void)cx_shape_numel(k, (const int[]){(int)(G * H), H}, 2);
    }
    rnn_m *r = cx_xcalloc(1, sizeof *r);
    cx_module_init(&r->base, &rnn_ops[(cell ? 3 : 0) + (mode == CX_RNN_LSTM ? 1 : mode == CX_RNN_GRU ? 2 : 0)]);
    r->mode = mode;
    r->cell = cell;
    r->I = I;
    r->H = H;
    r->L = opt.num_layers;
    r->D = opt.bidirectional ? 2 : 1;
    r->G = mode == CX_RNN_LSTM ? (opt.coupled ? 3 : 4) : mode == CX_RNN_GRU ? 3 : 1;
    r->opt = opt;
    r->p = cx_xcalloc((size_t)r->L * r->D * P_PER, sizeof *r->p);
    const int GH = r->G * H;
    const float bound = 1.0f / sqrtf((float)H);
    for (int l = 0; l < r->L; l++)
        for (int d = 0; d < r->D; d++) {
            char suffix[32] = "";
            if (!cell) snprintf(suffix, sizeof suffix, "_l%d%s", l, d ? "_reverse" : "");
            const int in = l == 0 ? I : r->D * H;
            cx_tensor **pp = r->p + ((size_t)l * r->D + d) * P_PER;
            pp[P_WIH] = new_param("weight_ih", suffix, (const int[]){GH, in}, 2);
            pp[P_WHH] = new_param("weight_hh", suffix, (const int[]){GH, H}, 2);
            if (opt.bias) {
                pp[P_BIH] = new_param("bias_ih", suffix, (const int[]){GH}, 1);
                pp[P_BHH] = new_param("bias_hh", suffix, (const int[]){GH}, 1);
            }
            if (opt.peephole) pp[P_PEEP] = new_param("peephole", suffix, (const int[]){opt.coupled ? 2 : 3, H}, 2);
            /* PyTorch's reset_parameters: every parameter U(-1/sqrt(H), 1/sqrt(H)),
             * in registration order */
            for (int q = 0; q < P_PER; q++)
                if (pp[q]) cx_fill_uniform(pp[q], -bound, bound);
            if (opt.orthogonal)
                for (int g = 0; g < r->G; g++) {
                    cx_tensor blk = *pp[P_WHH];
                    blk.shape[0] = H;
                    blk.shape[1] = H;
                    blk.numel = (int64_t)H * H;
                    blk.data = CX_F(pp[P_WHH]) + (size_t)g * H * H;
                    cx_init_orthogonal(&blk, 1.0f);
                }
            if (opt.set_forget_bias && opt.bias) {
                const int fo = opt.coupled ? 0 : H; /* forget rows: gate 1 (i f g o) or 0 (f g o) */
                for (int j = 0; j < H; j++) {
                    CX_F(pp[P_BIH])[fo + j] = opt.forget_bias;
                    CX_F(pp[P_BHH])[fo + j] = 0.0f;
                }
            }
            /* registered in PyTorch's order (weight_ih, weight_hh, bias_ih, bias_hh) */
            for (int q = 0; q < P_PER; q++)
                if (pp[q]) {
                    char nm[64];
                    snprintf(nm, sizeof nm, "%s", pp[q]->name);
                    cx_module_add_param(&r->base, nm, &pp[q]);
                }
        }
    return &r->base;
}

cx_module *cx_rnn_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_TANH, false, I, H, o); }
cx_module *cx_lstm_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_LSTM, false, I, H, o); }
cx_module *cx_gru_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_GRU, false, I, H, o); }
cx_module *cx_rnn_cell_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_TANH, true, I, H, o); }
cx_module *cx_lstm_cell_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_LSTM, true, I, H, o); }
cx_module *cx_gru_cell_new(int I, int H, const cx_rnn_opts *o) { return make(CX_RNN_GRU, true, I, H, o); }

static rnn_m *as_rnn(const cx_module *m) {
    if (!m || m->ops < rnn_ops || m->ops >= rnn_ops + 6)
        cx_fatal("expected a recurrent module (RNN, LSTM, GRU or a cell), got %s", m ? m->ops->kind : "NULL");
    return (rnn_m *)m;
}
cx_rnn_mode cx_rnn_module_mode(const cx_module *m) { return as_rnn(m)->mode; }
int cx_rnn_hidden_size(const cx_module *m) { return as_rnn(m)->H; }
int cx_rnn_num_layers(const cx_module *m) { return as_rnn(m)->L; }
int cx_rnn_num_directions(const cx_module *m) { return as_rnn(m)->D; }

/* ---- forward */
static cx_rnn_out run_one(rnn_m *r, cx_tensor *x, cx_tensor *h0, cx_tensor *c0, int l, int d) {
    cx_tensor *wih = param_of(r, l, d, P_WIH), *whh = param_of(r, l, d, P_WHH);
    cx_tensor *bih = param_of(r, l, d, P_BIH), *bhh = param_of(r, l, d, P_BHH);
    if (r->mode == CX_RNN_LSTM)
        return cx_lstm_seq_ex(x, h0, c0, wih, whh, bih, bhh, param_of(r, l, d, P_PEEP), r->opt.coupled, d == 1);
    return cx_rnn_seq(r->mode, x, h0, NULL, wih, whh, bih, bhh, d == 1);
}

static void need_state(const char *k, const char *what, const cx_tensor *s, int n0, int B, int H, bool batched) {
    char sb[96];
    cx_need_f32(k, s);
    bool ok = batched ? (s->ndim == 3 && s->shape[0] == n0 && s->shape[1] == B && s->shape[2] == H)
                      : (s->ndim == 2 && s->shape[0] == n0 && s->shape[1] == H);
    if (!ok) {
        if (batched)
            cx_fatal("%s: %s has shape %s, expected [%d, %d, %d]", k, what, cx_shape_str(s, sb, sizeof sb), n0, B, H);
        cx_fatal("%s: %s has shape %s, expected [%d, %d]", k, what, cx_shape_str(s, sb, sizeof sb), n0, H);
    }
}

static cx_rnn_out cell_forward(rnn_m *r, cx_tensor *x, cx_tensor *h, cx_tensor *c) {
    const char *k = kind_name(r->mode, true);
    char sb[96];
    cx_need_f32(k, x);
    if (x->ndim != 2 || x->shape[1] != r->I)
        cx_fatal("%s: input has shape %s, expected [B, %d]", k, cx_shape_str(x, sb, sizeof sb), r->I);
    if (c && r->mode != CX_RNN_LSTM) cx_fatal("%s: only an LSTM cell takes a cell state", k);
    cx_tensor *wih = param_of(r, 0, 0, P_WIH), *whh = param_of(r, 0, 0, P_WHH);
    cx_tensor *bih = param_of(r, 0, 0, P_BIH), *bhh = param_of(r, 0, 0, P_BHH);
    cx_rnn_out o = {0};
    switch (r->mode) {
    case CX_RNN_TANH:
    case CX_RNN_RELU:
        o.h = o.output = cx_rnn_cell(x, h, wih, whh, bih, bhh, r->mode == CX_RNN_RELU);
        break;
    case CX_RNN_LSTM:
        o = cx_lstm_cell_ex(x, h, c, wih, whh, bih, bhh, param_of(r, 0, 0, P_PEEP), r->opt.coupled);
        break;
    case CX_RNN_GRU: o.h = o.output = cx_gru_cell(x, h, wih, whh, bih, bhh); break;
    }
    return o;
}

/* Block k of a state tensor [L*D, B, H] as [B, H] (differentiable). */
static cx_tensor *state_block(cx_tensor *s, int k, int B, int H) {
    if (!s) return NULL;
    return cx_reshape(cx_slice(s, 0, k, k + 1, 1), (const int[]){B, H}, 2);
}

cx_rnn_out cx_rnn_forward(cx_module *m, cx_tensor *x, cx_tensor *h0, cx_tensor *c0) {
    rnn_m *r = as_rnn(m);
    if (r->cell) return cell_forward(r, x, h0, c0);
    const char *k = kind_name(r->mode, false);
    char sb[96];
    cx_need_f32(k, x);
    if (c0 && r->mode != CX_RNN_LSTM) cx_fatal("%s: only an LSTM takes an initial cell state", k);
    const bool batched = x->ndim == 3;
    if (!(x->ndim == 3 || x->ndim == 2) || x->shape[x->ndim - 1] != r->I)
        cx_fatal("%s: input has shape %s, expected [T, B, %d]%s or unbatched [T, %d]", k,
                 cx_shape_str(x, sb, sizeof sb), r->I, r->opt.batch_first ? " ([B, T, I] with batch_first)" : "",
                 r->I);
    const int H = r->H, LD = r->L * r->D;
    cx_tensor *seq = x;
    if (!batched) seq = cx_reshape(x, (const int[]){x->shape[0], 1, r->I}, 3);
    else if (r->opt.batch_first) seq = cx_transpose(x, 0, 1);
    const int T = seq->shape[0], B = seq->shape[1];
    if (h0) need_state(k, "h0", h0, LD, B, H, batched);
    if (c0) need_state(k, "c0", c0, LD, B, H, batched);
    if (!batched) {
        if (h0) h0 = cx_reshape(h0, (const int[]){LD, 1, H}, 3);
        if (c0) c0 = cx_reshape(c0, (const int[]){LD, 1, H}, 3);
    }
    cx_tensor **hs = cx_arena_alloc((size_t)LD * sizeof *hs);
    cx_tensor **cs = cx_arena_alloc((size_t)LD * sizeof *cs);
    cx_tensor *in = seq;
    for (int l = 0; l < r->L; l++) {
        cx_tensor *outs[2];
        for (int d = 0; d < r->D; d++) {
            const int s = l * r->D + d;
            cx_rnn_out o = run_one(r, in, state_block(h0, s, B, H), state_block(c0, s, B, H), l, d);
            outs[d] = o.output;
            hs[s] = o.h;
            cs[s] = o.c;
        }
        in = r->D == 2 ? cx_concat(outs, 2, 2) : outs[0];
        if (r->opt.dropout > 0 && l + 1 < r->L) in = cx_dropout(in, r->opt.dropout);
    }
    cx_rnn_out res = {0};
    res.output = in;
    res.h = LD == 1 ? cx_reshape(hs[0], (const int[]){1, B, H}, 3) : cx_stack(hs, LD, 0);
    if (r->mode == CX_RNN_LSTM)
        res.c = LD == 1 ? cx_reshape(cs[0], (const int[]){1, B, H}, 3) : cx_stack(cs, LD, 0);
    if (!batched) {
        res.output = cx_reshape(res.output, (const int[]){T, r->D * H}, 2);
        res.h = cx_reshape(res.h, (const int[]){LD, H}, 2);
        if (res.c) res.c = cx_reshape(res.c, (const int[]){LD, H}, 2);
    } else if (r->opt.batch_first) {
        res.output = cx_transpose(res.output, 0, 1);
    }
    return res;
}
