/* The Transformer language model (include/cortex/transformer.h) and the
 * char-LM layer over it (cortex/charlm.h): names, shapes and init; PyTorch-made
 * model files (tools/gen_transformer_fixtures.py: 1-2 layers, 1-4 heads, T = 1,
 * odd sizes, tied and untied) giving the same logits, loss and parameter
 * gradients; a Cortex-written model run by PyTorch; finite differences through
 * a tiny model; causality; save/load; dropout only in training mode; errors
 * naming the argument; the key/value-cache decoder against full passes,
 * sliding past the context; greedy / beam decoding; a short overfitting run. */
#include <cortex/charlm.h>
#include <cortex/transformer.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "charlm_files.h"

#define FIXDIR "tests/fixtures/transformer/"

static char tmpdir[128];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static cx_tensor *ids_tensor(const int32_t *ids, int T, int B) { return cx_from_i32(ids, (const int[]){T, B}, 2); }

static cx_tlm_config small_cfg(int V, int ctx, int E, int L, int H) {
    cx_tlm_config c = cx_tlm_defaults(V);
    c.context = ctx;
    c.embed = E;
    c.layers = L;
    c.heads = H;
    return c;
}

static double stddev(const cx_tensor *t, double *mean) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < t->numel; i++) s += CX_F(t)[i];
    double m = s / (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++) q += (CX_F(t)[i] - m) * (CX_F(t)[i] - m);
    if (mean) *mean = m;
    return sqrt(q / (double)t->numel);
}

static bool all_equal(const cx_tensor *t, float v) {
    for (int64_t i = 0; i < t->numel; i++)
        if (CX_F(t)[i] != v) return false;
    return true;
}

static void test_defaults_names_init(void) {
    cx_tlm_config d = cx_tlm_defaults(50);
    CHECK(d.vocab == 50 && d.context == 128 && d.embed == 256 && d.layers == 4 && d.heads == 4 && d.ffn == 0 &&
          d.dropout == 0.0f && d.attn_dropout == 0.0f && !d.tie);
    cx_seed(1);
    cx_tlm_config cfg = small_cfg(40, 32, 64, 2, 4);
    cx_module *m = cx_tlm_new(&cfg);
    CHECK(!strcmp(cx_module_kind(m), "TransformerLM") && cx_tlm_is(m) && !strcmp(cx_charlm_arch(m), "transformer"));
    cx_tlm_config g = cx_tlm_get_config(m);
    CHECK(g.ffn == 256 && g.vocab == 40 && g.context == 32 && g.layers == 2 && !g.tie);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    const char *names[] = {"tok_emb.weight",
                           "pos_emb.weight",
                           "blocks.0.ln1.weight",
                           "blocks.0.ln1.bias",
                           "blocks.0.attn.in_proj_weight",
                           "blocks.0.attn.in_proj_bias",
                           "blocks.0.attn.out_proj.weight",
                           "blocks.0.attn.out_proj.bias",
                           "blocks.0.ln2.weight",
                           "blocks.0.ln2.bias",
                           "blocks.0.fc1.weight",
                           "blocks.0.fc1.bias",
                           "blocks.0.fc2.weight",
                           "blocks.0.fc2.bias"};
    CHECK_MSG(ps.n == 2 + 12 * 2 + 4, "%d parameters", ps.n);
    for (int i = 0; i < 14 && i < ps.n; i++) CHECK_MSG(!strcmp(ps.t[i]->name, names[i]), "%s", ps.t[i]->name);
    CHECK(!strcmp(ps.t[26]->name, "ln_f.weight") && !strcmp(ps.t[28]->name, "head.weight") &&
          !strcmp(ps.t[29]->name, "head.bias"));
    CHECK(cx_params_find(&ps, "blocks.1.fc1.weight")->shape[0] == 256);
    CHECK(cx_params_find(&ps, "blocks.1.attn.in_proj_weight")->shape[0] == 192);
    CHECK(cx_params_find(&ps, "pos_emb.weight")->shape[0] == 32);
    /* GPT-2 init: N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 L)), zero biases, LN 1 / 0 */
    double mean;
    double s = stddev(cx_params_find(&ps, "tok_emb.weight"), &mean);
    CHECK_MSG(fabs(s - 0.02) < 0.002 && fabs(mean) < 0.002, "tok_emb std %g mean %g", s, mean);
    s = stddev(cx_params_find(&ps, "blocks.0.attn.in_proj_weight"), NULL);
    CHECK_MSG(fabs(s - 0.02) < 0.001, "in_proj std %g", s);
    s = stddev(cx_params_find(&ps, "blocks.1.fc1.weight"), NULL);
    CHECK_MSG(fabs(s - 0.02) < 0.001, "fc1 std %g", s);
    s = stddev(cx_params_find(&ps, "head.weight"), NULL);
    CHECK_MSG(fabs(s - 0.02) < 0.002, "head std %g", s);
    s = stddev(cx_params_find(&ps, "blocks.1.fc2.weight"), NULL);
    CHECK_MSG(fabs(s - 0.01) < 0.0008, "fc2 std %g (want 0.02 / sqrt(4))", s);
    s = stddev(cx_params_find(&ps, "blocks.0.attn.out_proj.weight"), NULL);
    CHECK_MSG(fabs(s - 0.01) < 0.001, "out_proj std %g", s);
    const char *zeros[] = {"blocks.0.attn.in_proj_bias", "blocks.0.attn.out_proj.bias", "blocks.1.fc1.bias",
                           "blocks.1.fc2.bias", "head.bias", "ln_f.bias", "blocks.0.ln1.bias"};
    for (int i = 0; i < 7; i++) CHECK_MSG(all_equal(cx_params_find(&ps, zeros[i]), 0.0f), "%s", zeros[i]);
    CHECK(all_equal(cx_params_find(&ps, "blocks.1.ln2.weight"), 1.0f) &&
          all_equal(cx_params_find(&ps, "ln_f.weight"), 1.0f));
    /* the block accessor and the module call */
    CHECK(!strcmp(cx_module_kind(cx_tlm_block(m, 1)), "TransformerBlock"));
    char desc[160];
    cx_module_describe(m, desc, sizeof desc);
    CHECK_MSG(strstr(desc, "TransformerLM") && strstr(desc, "2 layers x 4 heads"), "%s", desc);
    int32_t ids[3 * 2] = {1, 2, 3, 4, 5, 39};
    cx_tensor *a = cx_tlm_forward(m, ids_tensor(ids, 3, 2));
    cx_tensor *b = cx_module_forward(m, ids_tensor(ids, 3, 2));
    CHECK(a->ndim == 3 && a->shape[0] == 3 && a->shape[1] == 2 && a->shape[2] == 40);
    CHECK(memcmp(a->data, b->data, (size_t)a->numel * 4) == 0);
    cx_charlm_out o = cx_charlm_forward(m, ids_tensor(ids, 3, 2), NULL, NULL);
    CHECK(o.h == NULL && o.c == NULL && memcmp(o.logits->data, a->data, (size_t)a->numel * 4) == 0);
    cx_tensor *h = NULL, *c = NULL;
    cx_charlm_carry(&h, &c, o); /* nothing to carry */
    CHECK(h == NULL && c == NULL);
    cx_params_free(&ps);
    cx_module_free(m);
    /* tied: one tensor, listed once, both names in the state dict */
    cfg.tie = true;
    m = cx_tlm_new(&cfg);
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(ps.n == 29 && cx_module_tensor(m, "head.weight") == cx_module_tensor(m, "tok_emb.weight"));
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    bool has_head = false;
    for (int i = 0; i < sd.n; i++) has_head |= !strcmp(sd.names[i], "head.weight");
    CHECK(has_head && sd.n == 30);
    cx_state_dict_free(&sd);
    CHECK(cx_tlm_get_config(m).tie);
    cx_params_free(&ps);
    cx_module_free(m);
}

/* Compare the model in a PyTorch-made fixture: logits, loss, gradients. */
static void check_fixture(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIXDIR "%s.safetensors", name);
    cx_module *m;
    cx_vocab *v;
    cx_status st = cx_charlm_load(path, &m, &v);
    CHECK_MSG(st == CX_OK, "%s: %s", name, cx_last_error());
    if (st) return;
    CHECK(cx_tlm_is(m) && v && v->size == cx_tlm_get_config(m).vocab);
    cx_st_file *f;
    CHECK(cx_st_load(path, &f) == CX_OK);
    cx_tensor *x = cx_st_get(f, "x"), *y = cx_st_get(f, "y"), *el = cx_st_get(f, "out.logits");
    cx_tensor *lg = cx_tlm_forward(m, x);
    CHECK(cx_same_shape(lg, el));
    char what[320];
    snprintf(what, sizeof what, "%s logits", name);
    cxt_allclose(CX_F(lg), CX_F(el), (long)el->numel, 1e-4, 1e-5, what);
    cx_tensor *loss = cx_seq_cross_entropy(lg, y, NULL, false, CX_REDUCE_MEAN);
    CHECK_NEAR(cx_item(loss), cx_item(cx_st_get(f, "out.loss")), 1e-5);
    cx_backward(loss);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    int checked = 0;
    for (int i = 0; i < ps.n; i++) {
        char gn[128];
        snprintf(gn, sizeof gn, "grad.%s", ps.t[i]->name);
        cx_tensor *g = cx_st_get(f, gn);
        CHECK_MSG(g && ps.t[i]->grad, "%s: %s", name, gn);
        if (g && ps.t[i]->grad) {
            snprintf(what, sizeof what, "%s %s", name, gn);
            cxt_allclose(ps.t[i]->grad, CX_F(g), (long)g->numel, 1e-4, 1e-5, what);
            checked++;
        }
    }
    /* every gradient of the file was compared */
    int ngrad = 0;
    for (int i = 0; i < f->n; i++) ngrad += !strncmp(f->entries[i].name, "grad.", 5);
    CHECK_MSG(checked == ngrad, "%s: %d of %d gradients compared", name, checked, ngrad);
    cx_params_free(&ps);
    cx_st_free(f);
    cx_vocab_free(v);
    cx_module_free(m);
    cx_step_reset();
}

static void test_torch_fixtures(void) {
    const char *cases[] = {"l1h1", "l2h4_tied", "t1", "odd_tied", "l2h2_full", "l1h4"};
    for (int i = 0; i < 6; i++) check_fixture(cases[i]);
    /* the tied files hold head.weight too (PyTorch's state_dict): it loaded as tok_emb.weight */
    cx_module *m;
    CHECK(cx_charlm_load(FIXDIR "odd_tied.safetensors", &m, NULL) == CX_OK);
    if (m) {
        cx_tlm_config c = cx_tlm_get_config(m);
        CHECK(c.tie && c.ffn == 7 && c.embed == 15 && c.heads == 3);
        cx_module_free(m);
    }
}

/* A model written by `cortex charlm train --arch transformer`, run by PyTorch
 * (tools/gen_transformer_fixtures.py wrote the logits). */
static void test_cortex_to_torch(void) {
    cx_module *m;
    cx_vocab *v;
    cx_status st = cx_charlm_load(FIXDIR "cortex_tlm.safetensors", &m, &v);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return;
    cx_st_file *f;
    CHECK(cx_st_load(FIXDIR "cortex_check.safetensors", &f) == CX_OK);
    if (f) {
        cx_tensor *lg = cx_tlm_forward(m, cx_st_get(f, "x")), *el = cx_st_get(f, "logits");
        CHECK(cx_same_shape(lg, el));
        cxt_allclose(CX_F(lg), CX_F(el), (long)el->numel, 1e-4, 1e-5, "cortex model, torch logits");
        cx_tensor *loss = cx_seq_cross_entropy(lg, cx_st_get(f, "y"), NULL, false, CX_REDUCE_MEAN);
        CHECK_NEAR(cx_item(loss), cx_item(cx_st_get(f, "loss")), 1e-5);
        cx_st_free(f);
    }
    CHECK(cx_tlm_get_config(m).tie);
    cx_vocab_free(v);
    cx_module_free(m);
}

/* Finite differences through a tiny model, every parameter. */
typedef struct {
    cx_module *m;
    cx_tensor *x, *y;
} gc_ctx;

static cx_tensor *gc_loss(cx_tensor **in, int n, void *user) {
    (void)in;
    (void)n;
    gc_ctx *c = user;
    return cx_seq_cross_entropy(cx_tlm_forward(c->m, c->x), c->y, NULL, false, CX_REDUCE_MEAN);
}

static void test_gradcheck(void) {
    for (int tie = 0; tie < 2; tie++) {
        cx_seed(31 + tie);
        cx_tlm_config cfg = small_cfg(5, 4, 4, 2, 2);
        cfg.ffn = 6;
        cfg.tie = tie;
        cx_module *m = cx_tlm_new(&cfg);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m, &ps);
        for (int i = 0; i < ps.n; i++) cx_fill_normal(ps.t[i], 0.0f, 0.5f); /* away from the tiny init */
        for (int i = 0; i < ps.n; i++)
            if (strstr(ps.t[i]->name, "ln") && strstr(ps.t[i]->name, "weight")) cx_fill_uniform(ps.t[i], 0.7f, 1.3f);
        int32_t x[3 * 2] = {1, 4, 0, 2, 3, 3}, y[3 * 2] = {4, 0, 2, 1, 1, 2};
        gc_ctx c = {m, ids_tensor(x, 3, 2), ids_tensor(y, 3, 2)};
        double worst = cx_gradcheck(gc_loss, ps.t, ps.n, &c, 1e-2f, 2e-3f, 2e-2f, true);
        CHECK_MSG(worst <= 1.0, "tie %d: worst gradcheck ratio %g", tie, worst);
        cx_params_free(&ps);
        cx_module_free(m);
        cx_step_reset();
    }
}

/* Changing token t leaves every logit before t (and every other sequence) bit
 * for bit unchanged, and changes position t. */
static void test_causal(void) {
    cx_seed(41);
    cx_tlm_config cfg = small_cfg(9, 8, 16, 2, 4);
    cx_module *m = cx_tlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    for (int i = 0; i < ps.n; i++) cx_fill_normal(ps.t[i], 0.0f, 0.3f);
    enum { T = 8, B = 3, V = 9 };
    int32_t ids[T * B];
    for (int i = 0; i < T * B; i++) ids[i] = (int32_t)cx_rand_below(V);
    cx_set_training(false);
    for (int t = 0; t < T; t++) {
        cx_tensor *a = cx_tlm_forward(m, ids_tensor(ids, T, B));
        int32_t ch[T * B];
        memcpy(ch, ids, sizeof ch);
        ch[t * B + 1] = (ch[t * B + 1] + 1) % V; /* sequence 1, position t */
        cx_tensor *b = cx_tlm_forward(m, ids_tensor(ch, T, B));
        for (int s = 0; s < T; s++)
            for (int bb = 0; bb < B; bb++) {
                const float *ra = CX_F(a) + ((size_t)s * B + bb) * V, *rb = CX_F(b) + ((size_t)s * B + bb) * V;
                bool same = !memcmp(ra, rb, V * sizeof(float));
                if (bb != 1 || s < t) CHECK_MSG(same, "changing (%d, 1) changed the logits at (%d, %d)", t, s, bb);
                if (bb == 1 && s == t) CHECK_MSG(!same, "changing (%d, 1) left its own logits alone", t);
            }
        cx_step_reset();
    }
    cx_set_training(true);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void test_save_load(void) {
    int32_t cps[] = {'\n', ' ', 'a', 'b', 'c', 'd', 0x3bb};
    cx_vocab *v = cx_vocab_build(cps, 7, 1);
    for (int tie = 0; tie < 2; tie++) {
        cx_seed(51 + tie);
        cx_tlm_config cfg = small_cfg(v->size, 6, 12, 2, 3);
        cfg.ffn = 10;
        cfg.dropout = 0.25f;
        cfg.attn_dropout = 0.125f;
        cfg.tie = tie;
        cx_module *m = cx_tlm_new(&cfg);
        char path[256], p2[256];
        tmp_path(path, sizeof path, "tlm.safetensors");
        tmp_path(p2, sizeof p2, "tlm2.safetensors");
        const char *mk[] = {"cortex.note"}, *mv[] = {"hello"};
        CHECK(cx_charlm_save(path, m, v, NULL, mk, mv, 1) == CX_OK);
        cx_module *m2;
        cx_vocab *v2;
        cx_status st = cx_charlm_load(path, &m2, &v2);
        CHECK_MSG(st == CX_OK, "%s", cx_last_error());
        if (st) continue;
        cx_tlm_config g = cx_tlm_get_config(m2);
        CHECK(g.vocab == cfg.vocab && g.context == 6 && g.embed == 12 && g.layers == 2 && g.heads == 3 &&
              g.ffn == 10 && g.dropout == 0.25f && g.attn_dropout == 0.125f && g.tie == (bool)tie);
        CHECK(v2 && v2->size == v->size && !memcmp(v2->chars, v->chars, (size_t)v->size * sizeof(int32_t)));
        int32_t ids[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 0};
        cx_set_training(false);
        cx_tensor *a = cx_tlm_forward(m, ids_tensor(ids, 4, 2)), *b = cx_tlm_forward(m2, ids_tensor(ids, 4, 2));
        cx_set_training(true);
        CHECK(a->numel == b->numel && !memcmp(a->data, b->data, (size_t)a->numel * 4));
        cx_st_file *f;
        CHECK(cx_st_load(path, &f) == CX_OK);
        if (f) {
            CHECK(!strcmp(cx_st_meta(f, "cortex.arch"), "charlm") &&
                  !strcmp(cx_st_meta(f, "cortex.charlm.arch"), "transformer") &&
                  !strcmp(cx_st_meta(f, "cortex.note"), "hello"));
            CHECK((cx_st_get(f, "head.weight") != NULL) == !tie); /* tied: saved once, as tok_emb.weight */
            cx_charlm_meta md;
            cx_charlm_meta_init(&md, m, v);
            CHECK(md.n == 13);
            for (int i = 0; i < md.n; i++)
                CHECK_MSG(cx_st_meta(f, md.keys[i]) && !strcmp(cx_st_meta(f, md.keys[i]), md.values[i]), "%s",
                          md.keys[i]);
            cx_charlm_meta_free(&md);
            cx_st_free(f);
        }
        /* saving the loaded model gives the same bytes */
        CHECK(cx_charlm_save(p2, m2, v2, NULL, mk, mv, 1) == CX_OK);
        void *d1 = NULL, *d2 = NULL;
        size_t n1 = 0, n2 = 1;
        CHECK(cx_read_file(path, &d1, &n1, 0) == CX_OK && cx_read_file(p2, &d2, &n2, 0) == CX_OK);
        CHECK(n1 == n2 && d1 && d2 && !memcmp(d1, d2, n1));
        free(d1);
        free(d2);
        /* cx_module_save / cx_module_load_state work on it too (PyTorch names) */
        CHECK(cx_module_save(m, p2, NULL, NULL, 0) == CX_OK);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m2, &ps);
        for (int i = 0; i < ps.n; i++) cx_fill(ps.t[i], 0.0f);
        CHECK(cx_module_load(m2, p2) == CX_OK);
        cx_set_training(false);
        b = cx_tlm_forward(m2, ids_tensor(ids, 4, 2));
        cx_set_training(true);
        CHECK(!memcmp(a->data, b->data, (size_t)a->numel * 4));
        cx_params_free(&ps);
        cx_module_free(m2);
        cx_vocab_free(v2);
        cx_module_free(m);
        cx_step_reset();
    }
    cx_vocab_free(v);
}

/* Dropout (embeddings, residual branches, attention weights) acts in training
 * mode only. */
static void test_dropout_modes(void) {
    for (int which = 0; which < 2; which++) {
        cx_seed(61);
        cx_tlm_config cfg = small_cfg(8, 6, 8, 2, 2);
        if (which == 0) cfg.dropout = 0.5f;
        else cfg.attn_dropout = 0.5f;
        cx_module *m = cx_tlm_new(&cfg);
        cx_tlm_config c0 = cfg;
        c0.dropout = c0.attn_dropout = 0.0f;
        cx_module *ref = cx_tlm_new(&c0);
        CHECK(cx_module_copy_state(ref, m) == CX_OK);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m, &ps);
        for (int i = 0; i < ps.n; i++) cx_fill_normal(ps.t[i], 0.0f, 0.4f);
        CHECK(cx_module_copy_state(ref, m) == CX_OK);
        int32_t ids[6 * 2] = {1, 2, 3, 4, 5, 6, 7, 0, 1, 1, 2, 2};
        cx_tensor *x = ids_tensor(ids, 6, 2);
        cx_set_training(false);
        cx_tensor *e1 = cx_tlm_forward(m, x), *e2 = cx_tlm_forward(m, x), *r = cx_tlm_forward(ref, x);
        CHECK(!memcmp(e1->data, e2->data, (size_t)e1->numel * 4) && !memcmp(e1->data, r->data, (size_t)r->numel * 4));
        cx_set_training(true);
        cx_tensor *t1 = cx_tlm_forward(m, x), *t2 = cx_tlm_forward(m, x), *rt = cx_tlm_forward(ref, x);
        CHECK_MSG(memcmp(t1->data, t2->data, (size_t)t1->numel * 4) != 0, "dropout %d: same masks twice", which);
        CHECK(memcmp(t1->data, e1->data, (size_t)t1->numel * 4) != 0);
        CHECK(!memcmp(rt->data, r->data, (size_t)r->numel * 4)); /* no dropout: training mode changes nothing */
        cx_params_free(&ps);
        cx_module_free(ref);
        cx_module_free(m);
        cx_step_reset();
    }
}

static void test_errors(void) {
    cx_tlm_config c = small_cfg(10, 8, 10, 1, 3);
    EXPECT_FATAL(cx_tlm_new(&c), "embed 10 is not divisible by heads 3");
    c = small_cfg(1, 8, 8, 1, 2);
    EXPECT_FATAL(cx_tlm_new(&c), "vocab", ">= 2");
    c = small_cfg(10, 0, 8, 1, 2);
    EXPECT_FATAL(cx_tlm_new(&c), "context");
    c = small_cfg(10, 8, 8, 0, 2);
    EXPECT_FATAL(cx_tlm_new(&c), "layers");
    c = small_cfg(10, 8, 8, 1, 0);
    EXPECT_FATAL(cx_tlm_new(&c), "heads");
    c = small_cfg(10, 8, 8, 1, 2);
    c.ffn = -1;
    EXPECT_FATAL(cx_tlm_new(&c), "ffn");
    c.ffn = 0;
    c.dropout = 1.0f;
    EXPECT_FATAL(cx_tlm_new(&c), "dropout", "[0, 1)");
    c.dropout = 0.0f;
    c.attn_dropout = -0.5f;
    EXPECT_FATAL(cx_tlm_new(&c), "attn_dropout");
    EXPECT_FATAL(cx_tlm_new(NULL), "NULL config");
    EXPECT_FATAL(cx_tlm_block_new(9, 2, 0, 1, 0.0f, 0.0f), "TransformerBlock", "not divisible");
    c.attn_dropout = 0.0f;
    cx_seed(71);
    cx_module *m = cx_tlm_new(&c);
    int32_t ids[9 * 1] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    EXPECT_FATAL(cx_tlm_forward(m, ids_tensor(ids, 9, 1)), "sequence length 9 exceeds the context 8");
    int32_t bad[2] = {1, 10};
    EXPECT_FATAL(cx_tlm_forward(m, ids_tensor(bad, 2, 1)), "embedding", "out of range");
    EXPECT_FATAL(cx_tlm_forward(m, cx_zeros(CX_SHAPE(2, 1))), "I32/I64 ids [T, B]");
    EXPECT_FATAL(cx_tlm_forward(m, cx_from_i32(ids, CX_SHAPE(3))), "[T, B]");
    EXPECT_FATAL(cx_tlm_block(m, 1), "block 1 out of range");
    EXPECT_FATAL(cx_module_forward(cx_tlm_block(m, 0), cx_zeros(CX_SHAPE(2, 1, 4))), "TransformerBlock",
                 "[T, B, 8]");
    cx_tensor *h0 = cx_zeros(CX_SHAPE(1, 1, 8));
    EXPECT_FATAL(cx_charlm_forward(m, ids_tensor(ids, 2, 1), h0, NULL), "no recurrent state");
    cx_charlm_config lc = {10, 4, 5, 1, 0.0f};
    cx_module *lstm = cx_charlm_new(&lc);
    EXPECT_FATAL(cx_tlm_get_config(lstm), "not a TransformerLM");
    EXPECT_FATAL(cx_tlm_state_bytes(lstm), "not a TransformerLM");
    EXPECT_FATAL(cx_charlm_get_config(m), "not a CharLM");
    CHECK(!strcmp(cx_charlm_arch(lstm), "lstm") && !cx_tlm_is(lstm));
    cx_module *lin = cx_linear_new(2, 2, true);
    EXPECT_FATAL(cx_charlm_arch(lin), "not a CharLM");
    cx_charlm_decoder d;
    EXPECT_FATAL(cx_charlm_decoder_init(&d, lin), "not a CharLM");
    cx_module_free(lin);
    cx_module_free(lstm);
    cx_module_free(m);
}

/* The block alone: a module of its own, [T, B, E] -> [T, B, E]. */
static void test_block_module(void) {
    cx_seed(75);
    cx_module *b = cx_tlm_block_new(8, 2, 0, 3, 0.0f, 0.0f);
    CHECK(!strcmp(cx_module_kind(b), "TransformerBlock"));
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(b, &ps);
    CHECK(ps.n == 12 && !strcmp(ps.t[0]->name, "ln1.weight") && !strcmp(ps.t[2]->name, "attn.in_proj_weight"));
    CHECK(cx_params_find(&ps, "fc1.weight")->shape[0] == 32);
    double s = stddev(cx_params_find(&ps, "fc2.weight"), NULL);
    CHECK_MSG(s > 0.02 / sqrt(6.0) * 0.8 && s < 0.02 / sqrt(6.0) * 1.2, "fc2 std %g for 3 layers", s);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 2, 8), 0.0f, 1.0f);
    cx_tensor *y = cx_module_forward(b, x);
    CHECK(cx_same_shape(x, y));
    /* causal inside the block: the first position depends on itself only */
    cx_tensor *x2 = cx_from_data(CX_F(x), x->shape, 3);
    CX_F(x2)[4 * 16] += 1.0f; /* position 4, sequence 0 */
    cx_tensor *y2 = cx_module_forward(b, x2);
    CHECK(!memcmp(y->data, y2->data, 4 * 16 * sizeof(float)));
    cx_params_free(&ps);
    cx_module_free(b);
}

static cx_module *random_tlm(uint64_t seed, int V, int ctx, int E, int L, int H, bool tie) {
    cx_seed(seed);
    cx_tlm_config cfg = small_cfg(V, ctx, E, L, H);
    cfg.tie = tie;
    cfg.dropout = 0.1f; /* the decoder runs in eval mode: no effect */
    cx_module *m = cx_tlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    for (int i = 0; i < ps.n; i++) cx_fill_normal(ps.t[i], 0.0f, 0.3f);
    cx_params_free(&ps);
    return m;
}

/* Logits of the last position of one full pass over seq[0..n-1] (eval mode). */
static void full_last(cx_module *m, const int32_t *seq, int n, float *out) {
    bool tr = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    cx_tensor *lg = cx_tlm_forward(m, ids_tensor(seq, n, 1));
    const int V = lg->shape[2];
    memcpy(out, CX_F(lg) + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    cx_no_grad_end();
    cx_set_training(tr);
}

/* The key/value cache: primed and stepped logits equal a full pass over the
 * window, before and after the window fills (sliding). */
static void test_kv_cache(void) {
    enum { V = 11, CTX = 6, N = 15 };
    cx_module *m = random_tlm(81, V, CTX, 12, 2, 3, true);
    const size_t sb = cx_tlm_state_bytes(m);
    CHECK(sb == 16 + 4 * CTX + 8 * 2 * CTX * 12);
    void *a = malloc(sb), *b = malloc(sb), *c = malloc(sb);
    int32_t seq[N];
    for (int i = 0; i < N; i++) seq[i] = (int32_t)cx_rand_below(V);
    float lg[V], ref[V], lg2[V];
    cx_tlm_prime(m, seq, 0, a, NULL);
    CHECK(cx_tlm_state_len(a) == 0);
    for (int i = 0; i < N; i++) {
        CHECK(cx_tlm_step(m, a, b, seq[i], lg) == CX_OK);
        const int w = i + 1 < CTX ? i + 1 : CTX;
        CHECK(cx_tlm_state_len(b) == w);
        full_last(m, seq + (i + 1 - w), w, ref);
        char what[64];
        snprintf(what, sizeof what, "step %d (window %d)", i, w);
        cxt_allclose(lg, ref, V, 1e-4, 1e-5, what);
        /* priming with everything so far gives the same state's logits */
        cx_tlm_prime(m, seq, i + 1, c, lg2);
        snprintf(what, sizeof what, "prime %d", i + 1);
        cxt_allclose(lg2, ref, V, 1e-4, 1e-5, what);
        CHECK(cx_tlm_state_len(c) == w);
        cx_tlm_state_copy(m, a, b);
        cx_step_reset();
    }
    /* in place (state_out == state_in) gives the same as out of place */
    cx_tlm_prime(m, seq, 3, a, NULL);
    cx_tlm_state_copy(m, c, a);
    CHECK(cx_tlm_step(m, a, b, 4, lg) == CX_OK && cx_tlm_step(m, c, c, 4, lg2) == CX_OK);
    CHECK(!memcmp(lg, lg2, sizeof lg));
    /* errors: a token out of range, a state of another model */
    CHECK(cx_tlm_step(m, a, b, V, lg) == CX_ERR_ARG && strstr(cx_last_error(), "token 11 out of range"));
    cx_module *other = random_tlm(82, V, CTX + 1, 12, 2, 3, false);
    CHECK(cx_tlm_step(other, a, b, 1, lg) == CX_ERR_ARG && strstr(cx_last_error(), "not made for this model"));
    memset(c, 0, sb);
    CHECK(cx_tlm_step(m, c, b, 1, lg) == CX_OK && cx_tlm_state_len(b) == 1); /* zeroed = empty */
    full_last(m, (const int32_t[]){1}, 1, ref);
    cxt_allclose(lg, ref, V, 1e-4, 1e-5, "step from a zeroed state");
    ((int32_t *)c)[1] = 2; /* a zeroed header with n = 2: not a state */
    CHECK(cx_tlm_step(m, c, b, 1, lg) == CX_ERR_ARG);
    int32_t bad = V;
    EXPECT_FATAL(cx_tlm_prime(m, &bad, 1, a, NULL), "prime", "out of range");
    free(a);
    free(b);
    free(c);
    cx_module_free(other);
    cx_module_free(m);
    cx_step_reset();
}

/* The char-LM decoder adaptor on a Transformer: greedy decoding = argmax of
 * full passes over the window, beam 1 = greedy, the caller's arena untouched. */
static void test_decoder(void) {
    enum { V = 7, CTX = 5 };
    cx_module *m = random_tlm(91, V, CTX, 8, 1, 2, false);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    CHECK(d.dec.vocab == V && d.dec.state_bytes == cx_tlm_state_bytes(m) && d.dec.copy_state);
    void *st = malloc(d.dec.state_bytes);
    int32_t prime[3] = {3, 1, 4};
    cx_step_reset();
    float pl[V];
    cx_charlm_prime(&d, prime, 2, st, pl);
    CHECK(cx_arena_used(cx_arena_current()) == 0);
    int out[9], n = 0;
    double lp = 0;
    CHECK(cx_decode_greedy(&d.dec, st, prime[2], -1, 9, out, &n, &lp) == CX_OK);
    CHECK(n == 9 && cx_arena_used(cx_arena_current()) == 0);
    int32_t seq[16] = {3, 1, 4};
    int len = 3;
    double lp_hand = 0;
    for (int i = 0; i < n; i++) {
        const int w = len < CTX ? len : CTX;
        float row[V];
        full_last(m, seq + len - w, w, row);
        int best = cx_argmax_f32(row, V);
        double mx = row[best], s = 0;
        for (int j = 0; j < V; j++) s += exp((double)row[j] - mx);
        lp_hand += -log(s);
        CHECK_MSG(out[i] == best, "step %d: greedy %d, by hand %d", i, out[i], best);
        seq[len++] = out[i];
        cx_step_reset();
    }
    CHECK_NEAR(lp, lp_hand, 1e-4);
    int bo[9], bn = 0;
    cx_beam_opts o1 = {1, 9, -1, CX_LENNORM_NONE, 0};
    CHECK(cx_beam_search(&d.dec, st, prime[2], &o1, bo, &bn, NULL, NULL) == CX_OK);
    CHECK(bn == 9 && !memcmp(bo, out, sizeof out));
    /* a wider beam is at least as likely as greedy */
    double lpb = 0;
    cx_beam_opts o4 = {4, 9, -1, CX_LENNORM_NONE, 0};
    CHECK(cx_beam_search(&d.dec, st, prime[2], &o4, bo, &bn, NULL, &lpb) == CX_OK);
    CHECK(bn == 9 && lpb >= lp - 1e-9);
    /* ban_unk */
    d.ban_unk = true;
    float l2[V];
    int pfx[1] = {2};
    void *st2 = malloc(d.dec.state_bytes);
    CHECK(d.dec.step(d.dec.user, pfx, 1, st, st2, l2) == CX_OK && isinf(l2[0]) && l2[0] < 0);
    pfx[0] = V;
    CHECK(d.dec.step(d.dec.user, pfx, 1, st, st2, l2) == CX_ERR_ARG);
    /* priming nothing: the empty window */
    cx_charlm_prime(&d, prime, 0, st, NULL);
    CHECK(cx_tlm_state_len(st) == 0);
    free(st);
    free(st2);
    cx_charlm_decoder_free(&d);
    cx_module_free(m);
}

/* Hostile and broken Transformer files: each refused with a message naming it. */
static cx_status save_variant(const char *path, const char *key, const char *value, const char *drop) {
    return save_variant_of(FIXDIR "l2h4_tied.safetensors", path, key, value, drop);
}

static void test_load_errors(void) {
    char p[256];
    tmp_path(p, sizeof p, "bad.safetensors");
    CHECK(save_variant(p, "cortex.charlm.arch", "gru", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "unknown cortex.charlm.arch 'gru'");
    CHECK(save_variant(p, "cortex.charlm.heads", "5", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "not divisible by cortex.charlm.heads 5");
    CHECK(save_variant(p, "cortex.charlm.embed", "1000", NULL) == CX_OK); /* hostile: checked against the tensors */
    expect_load_error(p, CX_ERR_SHAPE, "tok_emb.weight");
    CHECK(save_variant(p, "cortex.charlm.layers", "3", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_NOTFOUND, "blocks.2.ln1.weight");
    CHECK(save_variant(p, "cortex.charlm.context", "100000", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_SHAPE, "pos_emb.weight");
    CHECK(save_variant(p, "cortex.charlm.ffn", "x", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.charlm.ffn");
    CHECK(save_variant(p, "cortex.charlm.heads", NULL, NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.charlm.heads is missing");
    CHECK(save_variant(p, "cortex.charlm.tie", "yes", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.charlm.tie");
    CHECK(save_variant(p, "cortex.charlm.attn_dropout", "1", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "attn_dropout");
    CHECK(save_variant(p, "x", NULL, "blocks.1.fc2.bias") == CX_OK);
    expect_load_error(p, CX_ERR_NOTFOUND, "blocks.1.fc2.bias");
    /* untied without head.weight: missing */
    CHECK(save_variant(p, "cortex.charlm.tie", "0", "head.weight") == CX_OK);
    expect_load_error(p, CX_ERR_NOTFOUND, "head.weight");
    /* tied without head.weight: fine (it is tok_emb.weight) */
    CHECK(save_variant(p, "cortex.charlm.tie", "1", "head.weight") == CX_OK);
    cx_module *m = NULL;
    CHECK(cx_charlm_load(p, &m, NULL) == CX_OK && m && cx_tlm_get_config(m).tie);
    cx_module_free(m);
    CHECK(save_variant(p, "cortex.vocab", "10,32", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.vocab");
}

/* A short run on a repeated sentence: the loss collapses and greedy decoding
 * through the key/value cache continues the sentence, also past the context.
 * Chunks of 20 characters on a 24-character period start at every phase of
 * the sentence (with chunks of 24 each would start at "the cat", positions
 * would carry the phase, and decoding past the context, where the window no
 * longer starts at the sentence, would hinge on the run's rounding). */
static void test_overfit(void) {
    const char *unit = "the cat sat on the mat. ";
    char text[24 * 30 + 1] = "";
    for (int i = 0; i < 30; i++) strcat(text, unit);
    int32_t *cps;
    int64_t ncp;
    CHECK(cx_utf8_decode(unit, strlen(unit), &cps, &ncp) == CX_OK);
    cx_vocab *v = cx_vocab_build(cps, ncp, 1);
    free(cps);
    int32_t *all;
    int64_t n;
    CHECK(cx_vocab_encode(v, text, strlen(text), &all, &n) == CX_OK);
    cx_tensor *ids = cx_tensor_new(CX_I32, (const int[]){(int)n}, 1);
    memcpy(ids->data, all, (size_t)n * sizeof(int32_t));
    free(all);
    cx_seed(101);
    cx_tlm_config cfg = small_cfg(v->size, 20, 32, 2, 2);
    cfg.tie = true;
    cx_module *m = cx_tlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 1e-2;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_bptt_loader *ld = cx_bptt_new(ids, 6, 20, true);
    cx_tensor *x, *y;
    double first = NAN, last = NAN;
    for (int epoch = 0; epoch < 40; epoch++) {
        cx_bptt_reset(ld);
        double sum = 0;
        int k = 0;
        while (cx_bptt_next(ld, &x, &y)) {
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_seq_cross_entropy(cx_tlm_forward(m, x), y, NULL, false, CX_REDUCE_MEAN);
            sum += cx_item(loss);
            k++;
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 1.0f);
            cx_optim_step(opt);
            cx_step_reset();
        }
        if (epoch == 0) first = sum / k;
        last = sum / k;
    }
    /* each chunk starts without context: its first characters stay uncertain */
    CHECK_MSG(last < 0.4 && first > 1.5, "mean loss %.4f in the first epoch, %.4f in the last", first, last);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    const char *prime = "on the mat. the cat";
    int32_t *pid;
    int64_t np;
    CHECK(cx_vocab_encode(v, prime, strlen(prime), &pid, &np) == CX_OK);
    void *st = malloc(d.dec.state_bytes);
    cx_charlm_prime(&d, pid, (int)np - 1, st, NULL);
    int out[40], no = 0;
    CHECK(cx_decode_greedy(&d.dec, st, pid[np - 1], -1, 40, out, &no, NULL) == CX_OK);
    int32_t o32[40];
    for (int i = 0; i < no; i++) o32[i] = out[i];
    char buf[64];
    cx_vocab_decode(v, o32, no, buf, sizeof buf);
    /* the 19-character prime nearly fills the 20-position window, so almost
     * all of the 40 characters are decoded past the context; all are checked
     * (with chunks aligned to the sentence, b5541c9 could check only the
     * first 24: clang's rounding changed a later choice) */
    CHECK_MSG(no == 40 && !strcmp(buf, " sat on the mat. the cat sat on the mat."), "greedy continuation '%s'", buf);
    free(pid);
    free(st);
    cx_charlm_decoder_free(&d);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    cx_tensor_free(ids);
    cx_vocab_free(v);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_transformer_%d", (int)getpid());
    char cmd[200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    RUN(test_defaults_names_init);
    RUN(test_torch_fixtures);
    RUN(test_cortex_to_torch);
    RUN(test_gradcheck);
    RUN(test_causal);
    RUN(test_save_load);
    RUN(test_dropout_modes);
    RUN(test_errors);
    RUN(test_block_module);
    RUN(test_kv_cache);
    RUN(test_decoder);
    RUN(test_load_errors);
    RUN(test_overfit);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
