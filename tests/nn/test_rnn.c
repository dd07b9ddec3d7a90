/* Recurrent cells, fused sequence ops and modules (include/cortex/rnn.h).
 *
 *  - gradcheck (central differences) of every cell and of the sequence ops:
 *    RNN tanh/relu, LSTM, GRU, the LSTM peephole and coupled-gate variants,
 *    forward and reverse direction, with and without initial states, odd
 *    sizes I=3, H=5, B=2, T=4. The scalar checked is
 *    sum(out*R1) + sum(h_n*R2) + sum(c_n*R3) with fixed random R's.
 *  - the LSTM variants' forward against the documented formulas written
 *    with core ops (they have no PyTorch counterpart);
 *  - PyTorch fixtures (tools/gen_rnn_fixtures.py -> tests/fixtures/rnn/
 *    rnn.safetensors, override with CX_RNN_FIXTURE): the state_dict of each
 *    torch module is loaded into the Cortex module BY NAME (so names, shapes
 *    and layouts are checked), then output, h_n, c_n and the gradients w.r.t.
 *    input, initial states and every parameter are compared (rtol 1e-4,
 *    atol 1e-5);
 *  - modules: names, shapes, init options, batch_first / unbatched input,
 *    truncated BPTT with detached states, 1 vs 2 threads bit-identical,
 *    shape errors. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define EPS 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f
#define FX_RTOL 1e-4
#define FX_ATOL 1e-5

enum { X, H0, C0, WIH, WHH, BIH, BHH, PEEP, NIN };

static cx_tensor *leaf(const int *shape, int ndim, float lo, float hi) {
    cx_tensor *t = cx_rand_uniform_t(shape, ndim, lo, hi);
    t->requires_grad = true;
    return t;
}

/* ------------------------------------------------------------ gradcheck */
typedef struct {
    int kind;       /* 0: sequence op, 1: cell */
    cx_rnn_mode mode;
    bool reverse, coupled, use_peep;
    cx_tensor *R[3];
    int slot[NIN]; /* cx_gradcheck takes no NULL inputs: compact index of each slot, -1 = NULL */
} gc_ctx;

static cx_rnn_out run_op(gc_ctx *c, cx_tensor **in) {
    cx_rnn_out o = {0};
    if (c->kind == 0) {
        if (c->mode == CX_RNN_LSTM)
            o = cx_lstm_seq_ex(in[X], in[H0], in[C0], in[WIH], in[WHH], in[BIH], in[BHH],
                               c->use_peep ? in[PEEP] : NULL, c->coupled, c->reverse);
        else
            o = cx_rnn_seq(c->mode, in[X], in[H0], NULL, in[WIH], in[WHH], in[BIH], in[BHH], c->reverse);
    } else {
        switch (c->mode) {
        case CX_RNN_TANH: case CX_RNN_RELU:
            o.h = o.output = cx_rnn_cell(in[X], in[H0], in[WIH], in[WHH], in[BIH], in[BHH], c->mode == CX_RNN_RELU);
            break;
        case CX_RNN_LSTM:
            o = cx_lstm_cell_ex(in[X], in[H0], in[C0], in[WIH], in[WHH], in[BIH], in[BHH],
                                c->use_peep ? in[PEEP] : NULL, c->coupled);
            break;
        case CX_RNN_GRU: o.h = o.output = cx_gru_cell(in[X], in[H0], in[WIH], in[WHH], in[BIH], in[BHH]); break;
        }
    }
    return o;
}

static cx_tensor *gc_fn(cx_tensor **packed, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    cx_tensor *in[NIN];
    for (int k = 0; k < NIN; k++) in[k] = c->slot[k] >= 0 ? packed[c->slot[k]] : NULL;
    cx_rnn_out o = run_op(c, in);
    cx_tensor *s = cx_add(cx_sum(cx_mul(o.output, c->R[0])), cx_sum(cx_mul(o.h, c->R[1])));
    if (o.c) s = cx_add(s, cx_sum(cx_mul(o.c, c->R[2])));
    return s;
}

/* Gradcheck one configuration. states: pass h0 (and c0). bias: pass biases. */
static void gradcheck_case(int kind, cx_rnn_mode mode, bool reverse, bool states, bool bias, bool use_peep,
                           bool coupled, const char *what) {
    const int I = 3, H = 5, B = 2, T = kind == 0 ? 4 : 1;
    const bool lstm = mode == CX_RNN_LSTM;
    const int G = lstm ? (coupled ? 3 : 4) : mode == CX_RNN_GRU ? 3 : 1;
    cx_tensor *in[NIN] = {0};
    in[X] = kind == 0 ? leaf(CX_SHAPE(T, B, I), -1.0f, 1.0f) : leaf(CX_SHAPE(B, I), -1.0f, 1.0f);
    if (states) {
        in[H0] = leaf(CX_SHAPE(B, H), -0.8f, 0.8f);
        if (lstm) in[C0] = leaf(CX_SHAPE(B, H), -1.0f, 1.0f);
    }
    in[WIH] = leaf(CX_SHAPE(G * H, I), -0.6f, 0.6f);
    in[WHH] = leaf(CX_SHAPE(G * H, H), -0.5f, 0.5f);
    if (bias) {
        in[BIH] = leaf(CX_SHAPE(G * H), -0.4f, 0.4f);
        in[BHH] = leaf(CX_SHAPE(G * H), -0.4f, 0.4f);
    }
    if (use_peep) in[PEEP] = leaf(CX_SHAPE(coupled ? 2 : 3, H), -0.5f, 0.5f);
    gc_ctx c = {kind, mode, reverse, coupled, use_peep, {NULL, NULL, NULL}, {0}};
    cx_tensor *packed[NIN];
    int np = 0;
    for (int k = 0; k < NIN; k++) {
        c.slot[k] = in[k] ? np : -1;
        if (in[k]) packed[np++] = in[k];
    }
    cx_no_grad_begin();
    cx_rnn_out probe = run_op(&c, in);
    cx_no_grad_end();
    c.R[0] = cx_randn(probe.output->shape, probe.output->ndim, 0.0f, 1.0f);
    c.R[1] = cx_randn(probe.h->shape, probe.h->ndim, 0.0f, 1.0f);
    c.R[2] = probe.c ? cx_randn(probe.c->shape, probe.c->ndim, 0.0f, 1.0f) : NULL;
    cx_tensor *rec = gc_fn(packed, np, &c);
    CHECK_MSG(rec->requires_grad, "%s: loss does not require grad", what);
    /* relu: smaller step so that no difference straddles the kink */
    float eps = mode == CX_RNN_RELU ? 1e-3f : EPS;
    double worst = cx_gradcheck(gc_fn, packed, np, &c, eps, ATOL, RTOL, true);
    CHECK_MSG(worst <= 1.0, "%s: gradcheck worst violation ratio %g", what, worst);
}

static void gradcheck_cells(void) {
    cx_seed(101);
    gradcheck_case(1, CX_RNN_TANH, false, true, true, false, false, "rnn tanh cell");
    gradcheck_case(1, CX_RNN_RELU, false, true, true, false, false, "rnn relu cell");
    gradcheck_case(1, CX_RNN_TANH, false, false, false, false, false, "rnn tanh cell, no state, no bias");
    gradcheck_case(1, CX_RNN_LSTM, false, true, true, false, false, "lstm cell");
    gradcheck_case(1, CX_RNN_LSTM, false, false, true, false, false, "lstm cell, no state");
    gradcheck_case(1, CX_RNN_LSTM, false, true, true, true, false, "lstm peephole cell");
    gradcheck_case(1, CX_RNN_LSTM, false, true, true, false, true, "lstm coupled cell");
    gradcheck_case(1, CX_RNN_LSTM, false, true, false, true, true, "lstm peephole coupled cell, no bias");
    gradcheck_case(1, CX_RNN_GRU, false, true, true, false, false, "gru cell");
    gradcheck_case(1, CX_RNN_GRU, false, false, false, false, false, "gru cell, no state, no bias");
}

static void gradcheck_seq(void) {
    cx_seed(202);
    static const cx_rnn_mode modes[] = {CX_RNN_TANH, CX_RNN_RELU, CX_RNN_LSTM, CX_RNN_GRU};
    static const char *names[] = {"rnn tanh", "rnn relu", "lstm", "gru"};
    for (int m = 0; m < 4; m++)
        for (int rev = 0; rev < 2; rev++)
            for (int st = 0; st < 2; st++) {
                char what[96];
                snprintf(what, sizeof what, "%s seq %s %s", names[m], rev ? "reverse" : "forward",
                         st ? "with h0" : "zero state");
                gradcheck_case(0, modes[m], rev, st, true, false, false, what);
            }
    gradcheck_case(0, CX_RNN_GRU, false, true, false, false, false, "gru seq, no bias");
}

static void gradcheck_lstm_variants(void) {
    cx_seed(303);
    for (int rev = 0; rev < 2; rev++) {
        gradcheck_case(0, CX_RNN_LSTM, rev, true, true, true, false, rev ? "peephole seq reverse" : "peephole seq");
        gradcheck_case(0, CX_RNN_LSTM, rev, true, true, false, true, rev ? "coupled seq reverse" : "coupled seq");
        gradcheck_case(0, CX_RNN_LSTM, rev, rev, true, true, true,
                       rev ? "peephole+coupled seq reverse" : "peephole+coupled seq, zero state");
    }
}

/* ------------------------------------------------------------ variants vs formulas */
static cx_tensor *gate(cx_tensor *pre, int k, int H) { return cx_slice(pre, 1, k * H, (k + 1) * H, 1); }

static void lstm_variants_match_formulas(void) {
    cx_seed(404);
    const int I = 3, H = 5, B = 2;
    for (int coupled = 0; coupled < 2; coupled++) {
        const int G = coupled ? 3 : 4;
        cx_tensor *x = cx_randn(CX_SHAPE(B, I), 0, 1), *h = cx_randn(CX_SHAPE(B, H), 0, 1);
        cx_tensor *c = cx_randn(CX_SHAPE(B, H), 0, 1);
        cx_tensor *wih = cx_randn(CX_SHAPE(G * H, I), 0, 0.5f), *whh = cx_randn(CX_SHAPE(G * H, H), 0, 0.5f);
        cx_tensor *bih = cx_randn(CX_SHAPE(G * H), 0, 0.5f), *bhh = cx_randn(CX_SHAPE(G * H), 0, 0.5f);
        cx_tensor *P = cx_randn(CX_SHAPE(coupled ? 2 : 3, H), 0, 0.5f);
        cx_rnn_out o = cx_lstm_cell_ex(x, h, c, wih, whh, bih, bhh, P, coupled);
        /* reference with core ops */
        cx_tensor *pre = cx_add(cx_linear(x, wih, bih), cx_linear(h, whh, bhh));
        cx_tensor *p0 = cx_reshape(cx_slice(P, 0, 0, 1, 1), CX_SHAPE(H));
        cx_tensor *p1 = cx_reshape(cx_slice(P, 0, 1, 2, 1), CX_SHAPE(H));
        cx_tensor *i, *f, *g, *o_pre, *cn;
        if (!coupled) {
            cx_tensor *p2 = cx_reshape(cx_slice(P, 0, 2, 3, 1), CX_SHAPE(H));
            i = cx_sigmoid(cx_add(gate(pre, 0, H), cx_mul(p0, c)));
            f = cx_sigmoid(cx_add(gate(pre, 1, H), cx_mul(p1, c)));
            g = cx_tanh(gate(pre, 2, H));
            cn = cx_add(cx_mul(f, c), cx_mul(i, g));
            o_pre = cx_add(gate(pre, 3, H), cx_mul(p2, cn));
        } else {
            f = cx_sigmoid(cx_add(gate(pre, 0, H), cx_mul(p0, c)));
            g = cx_tanh(gate(pre, 1, H));
            cn = cx_add(cx_mul(f, c), cx_mul(cx_add_scalar(cx_neg(f), 1.0f), g));
            o_pre = cx_add(gate(pre, 2, H), cx_mul(p1, cn));
        }
        cx_tensor *hn = cx_mul(cx_sigmoid(o_pre), cx_tanh(cn));
        cxt_allclose(CX_F(o.c), CX_F(cn), B * H, 1e-5, 1e-6, coupled ? "coupled c'" : "peephole c'");
        cxt_allclose(CX_F(o.h), CX_F(hn), B * H, 1e-5, 1e-6, coupled ? "coupled h'" : "peephole h'");
    }
}

/* ------------------------------------------------------------ PyTorch fixtures */
static cx_st_file *FX;

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static cx_tensor *step_copy(const cx_tensor *src, bool grad) {
    cx_tensor *t = cx_from_data(CX_F(src), src->shape, src->ndim);
    t->requires_grad = grad;
    return t;
}

static bool same_shape(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

static void compare(const char *c, const char *what, const cx_tensor *got, const float *got_data,
                    const cx_tensor *want) {
    char msg[400], s1[96], s2[96];
    CHECK_MSG(want != NULL, "case %s: fixture lacks %s", c, what);
    CHECK_MSG(got != NULL, "case %s: no %s", c, what);
    if (!want || !got) return;
    CHECK_MSG(same_shape(got, want), "case %s: %s shape %s, PyTorch %s", c, what,
              cx_shape_str(got, s1, sizeof s1), cx_shape_str(want, s2, sizeof s2));
    CHECK_MSG(got_data != NULL, "case %s: %s missing (no gradient?)", c, what);
    if (got->numel != want->numel || !got_data) return;
    snprintf(msg, sizeof msg, "%s %s", c, what);
    cxt_allclose(got_data, CX_F(want), (long)want->numel, FX_RTOL, FX_ATOL, msg);
}

static int n_fixture_cases;

static void fixture_case(const char *c) {
    const char *cfg = cx_st_meta(FX, c);
    CHECK_MSG(cfg != NULL, "case %s: no configuration in the metadata", c);
    if (!cfg) return;
    char kind[16];
    int layers, bidir, bf, bias, relu;
    CHECK_MSG(sscanf(cfg, "%15s %d %d %d %d %d", kind, &layers, &bidir, &bf, &bias, &relu) == 6,
              "case %s: bad configuration '%s'", c, cfg);
    n_fixture_cases++;
    cx_rnn_opts opt = cx_rnn_defaults();
    opt.num_layers = layers;
    opt.bidirectional = bidir;
    opt.batch_first = bf;
    opt.bias = bias;
    opt.relu = relu;
    cx_module *m = NULL;
    const int I = 3, H = 5;
    if (!strcmp(kind, "RNNCell")) m = cx_rnn_cell_new(I, H, &opt);
    else if (!strcmp(kind, "LSTMCell")) m = cx_lstm_cell_new(I, H, &opt);
    else if (!strcmp(kind, "GRUCell")) m = cx_gru_cell_new(I, H, &opt);
    else if (!strcmp(kind, "RNN")) m = cx_rnn_new(I, H, &opt);
    else if (!strcmp(kind, "LSTM")) m = cx_lstm_new(I, H, &opt);
    else if (!strcmp(kind, "GRU")) m = cx_gru_new(I, H, &opt);
    CHECK_MSG(m != NULL, "case %s: unknown kind %s", c, kind);
    if (!m) return;
    CHECK_MSG(!strcmp(cx_module_kind(m), kind), "case %s: module kind %s", c, cx_module_kind(m));
    /* load the state_dict by name: every Cortex parameter must be in the file
     * with the same shape, and the file must hold no other parameter */
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.p.", c);
    int in_file = 0;
    for (int k = 0; k < FX->n; k++)
        if (!strncmp(FX->entries[k].name, prefix, strlen(prefix))) in_file++;
    CHECK_MSG(in_file == ps.n, "case %s: PyTorch state_dict has %d tensors, Cortex module %d", c, in_file, ps.n);
    for (int k = 0; k < ps.n; k++) {
        char key[160];
        snprintf(key, sizeof key, "p.%s", ps.t[k]->name);
        cx_tensor *src = fx(c, key);
        CHECK_MSG(src != NULL, "case %s: parameter %s not in PyTorch's state_dict", c, ps.t[k]->name);
        if (!src) continue;
        CHECK_MSG(same_shape(src, ps.t[k]), "case %s: parameter %s shape mismatch", c, ps.t[k]->name);
        if (same_shape(src, ps.t[k])) memcpy(CX_F(ps.t[k]), CX_F(src), (size_t)src->numel * sizeof(float));
    }
    cx_params_zero_grad(&ps);
    cx_tensor *fx_x = fx(c, "x"), *fx_h0 = fx(c, "h0"), *fx_c0 = fx(c, "c0");
    cx_tensor *x = step_copy(fx_x, true);
    cx_tensor *h0 = fx_h0 ? step_copy(fx_h0, true) : NULL;
    cx_tensor *c0 = fx_c0 ? step_copy(fx_c0, true) : NULL;
    cx_rnn_out o = cx_rnn_forward(m, x, h0, c0);
    const bool cell = strstr(kind, "Cell") != NULL;
    compare(c, "output", o.output, CX_F(o.output), fx(c, "out"));
    cx_tensor *loss = cx_sum(cx_mul(o.output, fx(c, "gout")));
    if (!cell) {
        compare(c, "h_n", o.h, CX_F(o.h), fx(c, "h_n"));
        loss = cx_add(loss, cx_sum(cx_mul(o.h, fx(c, "gh"))));
    }
    if (fx(c, "c_n")) {
        compare(c, "c_n", o.c, o.c ? CX_F(o.c) : NULL, fx(c, "c_n"));
        if (o.c) loss = cx_add(loss, cx_sum(cx_mul(o.c, fx(c, "gc"))));
    }
    cx_backward(loss);
    compare(c, "grad x", x, x->grad, fx(c, "grad.x"));
    if (h0) compare(c, "grad h0", h0, h0->grad, fx(c, "grad.h0"));
    if (c0) compare(c, "grad c0", c0, c0->grad, fx(c, "grad.c0"));
    for (int k = 0; k < ps.n; k++) {
        char key[160];
        snprintf(key, sizeof key, "grad.p.%s", ps.t[k]->name);
        compare(c, key, ps.t[k], ps.t[k]->grad, fx(c, key));
    }
    cx_params_free(&ps);
    cx_module_free(m);
    cx_step_reset();
}

static void pytorch_fixtures(void) {
    static const char *expected[] = {"rnncell_tanh", "rnncell_relu", "rnncell_nostate", "lstmcell",
                                     "lstmcell_nobias", "grucell", "grucell_nostate", "rnn_tanh_l2_bi",
                                     "rnn_relu", "lstm_l2_bi", "lstm_l2_bf", "lstm_bi_bf_nostate",
                                     "lstm_nobias_rev", "gru_l2_bi", "gru_bf", "gru_l2_bi_bf_nostate"};
    const int n_expected = (int)(sizeof expected / sizeof *expected);
    const char *cases = cx_st_meta(FX, "cases");
    CHECK_MSG(cases != NULL, "fixture has no case list");
    if (!cases) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", cases);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        bool known = false;
        for (int k = 0; k < n_expected; k++) known |= !strcmp(tok, expected[k]);
        CHECK_MSG(known, "fixture case %s is not in the expected list", tok);
        char name[64];
        snprintf(name, sizeof name, "%s", tok);
        n++;
        fixture_case(name);
    }
    CHECK_MSG(n == n_expected && n_fixture_cases == n_expected, "ran %d fixture cases, expected %d", n,
              n_expected);
}

/* ------------------------------------------------------------ modules */
static void module_names_shapes(void) {
    cx_seed(5);
    cx_rnn_opts opt = cx_rnn_defaults();
    opt.num_layers = 2;
    opt.bidirectional = true;
    cx_module *m = cx_lstm_new(3, 5, &opt);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    static const char *names[] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                  "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                                  "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1",
                                  "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse",
                                  "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
    CHECK(ps.n == 16);
    for (int k = 0; k < ps.n && k < 16; k++) CHECK_MSG(!strcmp(ps.t[k]->name, names[k]), "param %d is %s", k, ps.t[k]->name);
    cx_tensor *w = cx_params_find(&ps, "weight_ih_l1_reverse");
    CHECK(w && w->ndim == 2 && w->shape[0] == 20 && w->shape[1] == 10);
    w = cx_params_find(&ps, "weight_ih_l0");
    CHECK(w && w->shape[0] == 20 && w->shape[1] == 3);
    float bound = 1.0f / sqrtf(5.0f);
    for (int k = 0; k < ps.n; k++)
        for (int64_t e = 0; e < ps.t[k]->numel; e++) CHECK(fabsf(CX_F(ps.t[k])[e]) <= bound);
    char d[128];
    cx_module_describe(m, d, sizeof d);
    CHECK_MSG(strstr(d, "LSTM(3, 5, num_layers=2, bidirectional") == d, "describe: %s", d);
    CHECK(cx_rnn_num_layers(m) == 2 && cx_rnn_num_directions(m) == 2 && cx_rnn_hidden_size(m) == 5);
    CHECK(cx_rnn_module_mode(m) == CX_RNN_LSTM);
    cx_params_free(&ps);
    /* inside a Sequential the names get a prefix */
    cx_module *seq = cx_sequential_new();
    cx_sequential_add(seq, "rnn", m);
    cx_sequential_add(seq, "cell", cx_gru_cell_new(10, 4, NULL));
    cx_params_init(&ps);
    cx_module_params(seq, &ps);
    CHECK(ps.n == 20);
    CHECK(cx_params_find(&ps, "rnn.bias_hh_l1_reverse") != NULL);
    CHECK(cx_params_find(&ps, "cell.weight_hh") != NULL);
    cx_tensor *g = cx_params_find(&ps, "cell.weight_ih");
    CHECK(g && g->shape[0] == 12 && g->shape[1] == 10);
    cx_params_free(&ps);
    cx_module_free(seq);
    /* coupled + peephole */
    opt = cx_rnn_defaults();
    opt.coupled = true;
    opt.peephole = true;
    m = cx_lstm_new(3, 5, &opt);
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(ps.n == 5);
    w = cx_params_find(&ps, "peephole_l0");
    CHECK(w && w->shape[0] == 2 && w->shape[1] == 5);
    w = cx_params_find(&ps, "weight_hh_l0");
    CHECK(w && w->shape[0] == 15);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 2, 3), 0, 1);
    cx_rnn_out o = cx_rnn_forward(m, x, NULL, NULL);
    CHECK(o.output->shape[2] == 5 && o.c && o.c->shape[0] == 1);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void module_init_options(void) {
    cx_seed(6);
    cx_rnn_opts opt = cx_rnn_defaults();
    opt.orthogonal = true;
    opt.set_forget_bias = true;
    opt.forget_bias = 1.0f;
    const int H = 6;
    cx_module *m = cx_lstm_new(4, H, &opt);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_tensor *w = cx_params_find(&ps, "weight_hh_l0");
    for (int g = 0; g < 4; g++) {
        const float *b = CX_F(w) + (size_t)g * H * H;
        double worst = 0;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < H; j++) {
                double d = 0;
                for (int k = 0; k < H; k++) d += (double)b[i * H + k] * b[j * H + k];
                worst = fmax(worst, fabs(d - (i == j)));
            }
        CHECK_MSG(worst < 1e-5, "gate block %d of weight_hh is not orthogonal (%g)", g, worst);
    }
    const float *bih = CX_F(cx_params_find(&ps, "bias_ih_l0")), *bhh = CX_F(cx_params_find(&ps, "bias_hh_l0"));
    for (int j = 0; j < H; j++) {
        CHECK(bih[H + j] == 1.0f && bhh[H + j] == 0.0f);
        CHECK(fabsf(bih[j]) <= 1.0f / sqrtf((float)H)); /* input gate untouched */
    }
    cx_params_free(&ps);
    cx_module_free(m);
}

/* batch_first and unbatched input give the same numbers as time-major */
static void module_layouts(void) {
    cx_seed(7);
    const int T = 4, B = 2, I = 3, H = 5;
    cx_rnn_opts opt = cx_rnn_defaults();
    opt.bidirectional = true;
    opt.num_layers = 2;
    cx_module *tm = cx_gru_new(I, H, &opt);
    opt.batch_first = true;
    cx_module *bf = cx_gru_new(I, H, &opt);
    cx_params p1, p2;
    cx_params_init(&p1);
    cx_params_init(&p2);
    cx_module_params(tm, &p1);
    cx_module_params(bf, &p2);
    for (int k = 0; k < p1.n; k++) memcpy(CX_F(p2.t[k]), CX_F(p1.t[k]), (size_t)p1.t[k]->numel * 4);
    cx_tensor *x = cx_randn(CX_SHAPE(T, B, I), 0, 1);
    cx_tensor *h0 = cx_randn(CX_SHAPE(4, B, H), 0, 1);
    cx_rnn_out a = cx_rnn_forward(tm, x, h0, NULL);
    cx_rnn_out b = cx_rnn_forward(bf, cx_transpose(x, 0, 1), h0, NULL);
    CHECK(b.output->shape[0] == B && b.output->shape[1] == T && b.output->shape[2] == 2 * H);
    cx_tensor *bt = cx_transpose(b.output, 0, 1);
    cxt_allclose(CX_F(bt), CX_F(a.output), (long)a.output->numel, 0, 0, "batch_first output");
    cxt_allclose(CX_F(b.h), CX_F(a.h), (long)a.h->numel, 0, 0, "batch_first h_n");
    /* unbatched: batch element 1 alone */
    cx_tensor *x1 = cx_reshape(cx_slice(x, 1, 1, 2, 1), CX_SHAPE(T, I));
    cx_tensor *h01 = cx_reshape(cx_slice(h0, 1, 1, 2, 1), CX_SHAPE(4, H));
    cx_rnn_out u = cx_rnn_forward(tm, x1, h01, NULL);
    CHECK(u.output->ndim == 2 && u.output->shape[0] == T && u.output->shape[1] == 2 * H);
    CHECK(u.h->ndim == 2 && u.h->shape[0] == 4 && u.h->shape[1] == H);
    cx_tensor *ref = cx_reshape(cx_slice(a.output, 1, 1, 2, 1), CX_SHAPE(T, 2 * H));
    cxt_allclose(CX_F(u.output), CX_F(ref), (long)ref->numel, 1e-6, 1e-6, "unbatched output");
    cx_params_free(&p1);
    cx_params_free(&p2);
    cx_module_free(tm);
    cx_module_free(bf);
}

/* Truncated BPTT: two chunks with a detached state reproduce the forward of
 * the whole sequence, and the second chunk's backward stops at the cut. */
static void truncated_bptt(void) {
    cx_seed(8);
    const int T = 6, B = 2, I = 3, H = 4;
    cx_module *m = cx_lstm_new(I, H, NULL);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_tensor *x = cx_randn(CX_SHAPE(T, B, I), 0, 1);
    cx_rnn_out full = cx_rnn_forward(m, x, NULL, NULL);
    cx_rnn_out a = cx_rnn_forward(m, cx_slice(x, 0, 0, 3, 1), NULL, NULL);
    cx_tensor *h1 = cx_detach(a.h), *c1 = cx_detach(a.c);
    cx_rnn_out b = cx_rnn_forward(m, cx_slice(x, 0, 3, 6, 1), h1, c1);
    cx_tensor *tail = cx_slice(full.output, 0, 3, 6, 1);
    cxt_allclose(CX_F(b.output), CX_F(tail), (long)tail->numel, 1e-6, 1e-6, "chunked forward");
    cxt_allclose(CX_F(b.h), CX_F(full.h), (long)full.h->numel, 1e-6, 1e-6, "chunked h_n");
    /* backward of chunk 2 == backward of chunk 2 run from constant states */
    cx_params_zero_grad(&ps);
    cx_backward(cx_sum(b.output));
    float *g1 = malloc((size_t)ps.t[1]->numel * sizeof(float));
    memcpy(g1, ps.t[1]->grad, (size_t)ps.t[1]->numel * sizeof(float));
    cx_params_zero_grad(&ps);
    cx_tensor *hc = cx_from_data(CX_F(a.h), a.h->shape, 3), *cc = cx_from_data(CX_F(a.c), a.c->shape, 3);
    cx_rnn_out b2 = cx_rnn_forward(m, cx_slice(x, 0, 3, 6, 1), hc, cc);
    cx_backward(cx_sum(b2.output));
    cxt_allclose(g1, ps.t[1]->grad, (long)ps.t[1]->numel, 0, 0, "truncated BPTT weight_hh grad");
    CHECK(a.output->grad == NULL); /* nothing reached the first chunk */
    free(g1);
    cx_params_free(&ps);
    cx_module_free(m);
}

/* 1 vs 2 threads: bit-identical forward and gradients (sizes large enough
 * for the parallel GEMMs and elementwise loops). Identity across thread
 * counts is a property of the built-in GEMM (static work split); OpenBLAS
 * promises only the same result for the same thread count, so the test pins
 * the built-in kernel. */
static void threads_deterministic(void) {
    static const cx_rnn_mode modes[] = {CX_RNN_LSTM, CX_RNN_GRU, CX_RNN_TANH};
    const int T = 5, B = 32, I = 48, H = 64;
    int saved = cx_get_threads();
    cx_gemm_backend saved_gemm = cx_gemm_backend_in_use();
    cx_set_gemm_backend(CX_GEMM_BUILTIN);
    for (int mi = 0; mi < 3; mi++) {
        cx_rnn_opts opt = cx_rnn_defaults();
        opt.bidirectional = true;
        float *res[2][3] = {{0}};
        int64_t sz[3] = {0};
        for (int th = 0; th < 2; th++) {
            cx_set_threads(th + 1);
            cx_seed(9);
            cx_module *m = modes[mi] == CX_RNN_LSTM ? cx_lstm_new(I, H, &opt)
                         : modes[mi] == CX_RNN_GRU ? cx_gru_new(I, H, &opt) : cx_rnn_new(I, H, &opt);
            cx_params ps;
            cx_params_init(&ps);
            cx_module_params(m, &ps);
            cx_tensor *x = cx_randn(CX_SHAPE(T, B, I), 0, 1);
            x->requires_grad = true;
            cx_rnn_out o = cx_rnn_forward(m, x, NULL, NULL);
            cx_tensor *r = cx_randn(o.output->shape, 3, 0, 1);
            cx_backward(cx_sum(cx_mul(o.output, r)));
            sz[0] = o.output->numel; sz[1] = x->numel; sz[2] = ps.t[1]->numel;
            res[th][0] = malloc((size_t)sz[0] * 4); memcpy(res[th][0], CX_F(o.output), (size_t)sz[0] * 4);
            res[th][1] = malloc((size_t)sz[1] * 4); memcpy(res[th][1], x->grad, (size_t)sz[1] * 4);
            res[th][2] = malloc((size_t)sz[2] * 4); memcpy(res[th][2], ps.t[1]->grad, (size_t)sz[2] * 4);
            cx_params_free(&ps);
            cx_module_free(m);
            cx_step_reset();
        }
        for (int k = 0; k < 3; k++) {
            CHECK_MSG(memcmp(res[0][k], res[1][k], (size_t)sz[k] * 4) == 0, "mode %d: result %d differs between 1 and 2 threads",
                      (int)modes[mi], k);
            free(res[0][k]);
            free(res[1][k]);
        }
    }
    cx_set_threads(saved);
    cx_set_gemm_backend(saved_gemm);
}

static void shape_errors(void) {
    cx_tensor *x = cx_randn(CX_SHAPE(4, 2, 3), 0, 1);
    cx_tensor *wih = cx_randn(CX_SHAPE(20, 3), 0, 1), *whh = cx_randn(CX_SHAPE(20, 5), 0, 1);
    cx_tensor *bad_h = cx_randn(CX_SHAPE(3, 5), 0, 1);
    EXPECT_FATAL(cx_rnn_seq(CX_RNN_LSTM, x, bad_h, NULL, wih, whh, NULL, NULL, false), "lstm_seq",
                 "initial hidden state", "[2, 5]");
    EXPECT_FATAL(cx_rnn_seq(CX_RNN_GRU, x, NULL, NULL, wih, whh, NULL, NULL, false), "gru_seq", "weight_hh");
    cx_tensor *wih4 = cx_randn(CX_SHAPE(20, 4), 0, 1);
    EXPECT_FATAL(cx_rnn_seq(CX_RNN_LSTM, x, NULL, NULL, wih4, whh, NULL, NULL, false), "lstm_seq", "input");
    cx_module *m = cx_lstm_new(3, 5, NULL);
    EXPECT_FATAL(cx_rnn_forward(m, cx_randn(CX_SHAPE(4, 2, 7), 0, 1), NULL, NULL), "LSTM", "expected [T, B, 3]");
    EXPECT_FATAL(cx_rnn_forward(m, x, cx_randn(CX_SHAPE(2, 2, 5), 0, 1), NULL), "LSTM", "h0", "[1, 2, 5]");
    cx_module_free(m);
    EXPECT_FATAL(cx_gru_new(3, 5, &(cx_rnn_opts){.num_layers = 1, .peephole = true}), "GRU", "LSTM options");
}

static void no_grad_and_op_names(void) {
    cx_module *m = cx_gru_new(3, 5, NULL);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 2, 3), 0, 1);
    cx_rnn_out o = cx_rnn_forward(m, x, NULL, NULL);
    CHECK(o.output->requires_grad);
    CHECK(!strcmp(cx_op_name(o.output), "gru_seq"));
    /* one node, several outputs: output and h_n of the op come from the same node */
    cx_tensor *wih = cx_randn(CX_SHAPE(15, 3), 0, 1), *whh = cx_randn(CX_SHAPE(15, 5), 0, 1);
    wih->requires_grad = true;
    cx_rnn_out q = cx_lstm_seq_ex(x, NULL, NULL, cx_randn(CX_SHAPE(20, 3), 0, 1), cx_randn(CX_SHAPE(20, 5), 0, 1),
                                  NULL, NULL, NULL, false, false);
    CHECK(!q.output->requires_grad); /* nothing requires grad: no node */
    q = cx_rnn_seq(CX_RNN_GRU, x, NULL, NULL, wih, whh, NULL, NULL, false);
    CHECK(cx_op_of(q.output) == cx_op_of(q.h) && cx_op_outputs(cx_op_of(q.h)) == 2);
    CHECK(!strcmp(cx_op_of(q.h)->name, "gru_seq") && q.c == NULL);
    cx_no_grad_begin();
    cx_rnn_out p = cx_rnn_forward(m, x, NULL, NULL);
    cx_no_grad_end();
    CHECK(!p.output->requires_grad);
    cxt_allclose(CX_F(p.output), CX_F(o.output), (long)o.output->numel, 0, 0, "no_grad forward");
    cx_module_free(m);
}

/* cx_lstm_cell is cx_lstm_cell_ex without the variants. */
static void lstm_cell_plain_equals_ex(void) {
    const int B = 2, I = 3, H = 4;
    cx_seed(21);
    cx_tensor *x = cx_randn(CX_SHAPE(B, I), 0, 1), *h = cx_randn(CX_SHAPE(B, H), 0, 1);
    cx_tensor *c = cx_randn(CX_SHAPE(B, H), 0, 1);
    cx_tensor *wi = cx_randn(CX_SHAPE(4 * H, I), 0, 0.5f), *wh = cx_randn(CX_SHAPE(4 * H, H), 0, 0.5f);
    cx_tensor *bi = cx_randn(CX_SHAPE(4 * H), 0, 0.5f), *bh = cx_randn(CX_SHAPE(4 * H), 0, 0.5f);
    cx_rnn_out a = cx_lstm_cell(x, h, c, wi, wh, bi, bh);
    cx_rnn_out b = cx_lstm_cell_ex(x, h, c, wi, wh, bi, bh, NULL, false);
    CHECK(memcmp(a.h->data, b.h->data, (size_t)B * H * 4) == 0);
    CHECK(memcmp(a.c->data, b.c->data, (size_t)B * H * 4) == 0);
    /* and against the formula for one element: i, f, g, o rows */
    double gate[4];
    for (int k = 0; k < 4; k++) {
        double z = CX_F(bi)[k * H] + CX_F(bh)[k * H];
        for (int j = 0; j < I; j++) z += (double)CX_F(wi)[(k * H) * I + j] * CX_F(x)[j];
        for (int j = 0; j < H; j++) z += (double)CX_F(wh)[(k * H) * H + j] * CX_F(h)[j];
        gate[k] = z;
    }
    double ig = 1 / (1 + exp(-gate[0])), fg = 1 / (1 + exp(-gate[1])), gg = tanh(gate[2]), og = 1 / (1 + exp(-gate[3]));
    double c1 = fg * CX_F(c)[0] + ig * gg;
    CHECK_NEAR(CX_F(a.c)[0], c1, 1e-5);
    CHECK_NEAR(CX_F(a.h)[0], og * tanh(c1), 1e-5);
}

int main(void) {
    const char *path = getenv("CX_RNN_FIXTURE");
    if (!path) path = "tests/fixtures/rnn/rnn.safetensors";
    cx_status st = cx_st_load(path, &FX);
    if (st != CX_OK)
        fprintf(stderr, "cannot load %s: %s (regenerate with /usr/bin/python3 tools/gen_rnn_fixtures.py)\n", path,
                cx_last_error());
    RUN(gradcheck_cells);
    RUN(gradcheck_seq);
    RUN(gradcheck_lstm_variants);
    RUN(lstm_variants_match_formulas);
    if (FX) {
        RUN(pytorch_fixtures);
    } else {
        cxt_failed++; /* a missing fixture file is a failure, not a skip */
    }
    RUN(module_names_shapes);
    RUN(module_init_options);
    RUN(module_layouts);
    RUN(truncated_bptt);
    RUN(threads_deterministic);
    RUN(lstm_cell_plain_equals_ex);
    RUN(shape_errors);
    RUN(no_grad_and_op_names);
    cx_st_free(FX);
    TEST_END();
}
