/* The character language model (include/cortex/charlm.h): shapes and names,
 * a PyTorch-made model file (tools/gen_charlm_fixtures.py) giving the same
 * logits / states / loss / gradients, carried states (TBPTT) equal to one long
 * pass, save/load round trip, hostile files, the decoder adaptor against
 * by-hand argmax and brute force, and a short overfitting run. */
#include <cortex/charlm.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"
#include "charlm_files.h"

#define FIXTURE "tests/fixtures/charlm/charlm.safetensors"

static char tmpdir[128];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static cx_vocab *vocab_of(const char *s) {
    int32_t *cps;
    int64_t n;
    if (cx_utf8_decode(s, strlen(s), &cps, &n)) return NULL;
    cx_vocab *v = cx_vocab_build(cps, n, 1);
    free(cps);
    return v;
}

static cx_tensor *ids_tensor(const int32_t *ids, int T, int B) { return cx_from_i32(ids, (const int[]){T, B}, 2); }

static void test_shapes_and_names(void) {
    cx_seed(1);
    cx_charlm_config cfg = {9, 5, 6, 2, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    CHECK(!strcmp(cx_module_kind(m), "CharLM"));
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    const char *names[] = {"embed.weight",      "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0",
                           "lstm.bias_hh_l0",   "lstm.weight_ih_l1", "lstm.weight_hh_l1", "lstm.bias_ih_l1",
                           "lstm.bias_hh_l1",   "fc.weight",         "fc.bias"};
    CHECK(ps.n == 11);
    for (int i = 0; i < ps.n && i < 11; i++) CHECK_MSG(!strcmp(ps.t[i]->name, names[i]), "%s", ps.t[i]->name);
    CHECK(cx_params_find(&ps, "lstm.weight_ih_l1")->shape[1] == 6);
    CHECK(cx_params_find(&ps, "lstm.weight_ih_l0")->shape[1] == 5);
    CHECK(cx_params_find(&ps, "fc.weight")->shape[0] == 9);
    int32_t ids[4 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 2};
    cx_charlm_out o = cx_charlm_forward(m, ids_tensor(ids, 4, 3), NULL, NULL);
    CHECK(o.logits->ndim == 3 && o.logits->shape[0] == 4 && o.logits->shape[1] == 3 && o.logits->shape[2] == 9);
    CHECK(o.h->ndim == 3 && o.h->shape[0] == 2 && o.h->shape[1] == 3 && o.h->shape[2] == 6);
    CHECK(o.c->ndim == 3 && o.c->shape[0] == 2 && o.c->shape[1] == 3 && o.c->shape[2] == 6);
    cx_tensor *lg = cx_module_forward(m, ids_tensor(ids, 4, 3));
    CHECK(memcmp(lg->data, o.logits->data, (size_t)lg->numel * 4) == 0);
    cx_charlm_config g = cx_charlm_get_config(m);
    CHECK(g.vocab == 9 && g.embed == 5 && g.hidden == 6 && g.layers == 2);
    CHECK(cx_charlm_embedding(m) && cx_charlm_lstm(m) && cx_charlm_head(m));
    int32_t bad[1] = {9};
    EXPECT_FATAL(cx_charlm_forward(m, ids_tensor(bad, 1, 1), NULL, NULL), "embedding");
    cx_charlm_config z = {1, 5, 6, 1, 0.0f};
    EXPECT_FATAL(cx_charlm_new(&z), "charlm_new");
    EXPECT_FATAL(cx_charlm_get_config(cx_charlm_lstm(m)), "not a CharLM");
    cx_params_free(&ps);
    cx_module_free(m);
}

/* A model file written by PyTorch (tools/gen_charlm_fixtures.py). */
static void test_torch_fixture(void) {
    cx_module *m;
    cx_vocab *v;
    cx_status st = cx_charlm_load(FIXTURE, &m, &v);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return;
    cx_st_file *f;
    CHECK(cx_st_load(FIXTURE, &f) == CX_OK);
    CHECK(v && v->size == 7 && v->chars[1] == '\n' && v->chars[6] == 0x3bb);
    CHECK(cx_vocab_id(v, 'b') == 4);
    cx_tensor *x = cx_st_get(f, "x"), *y = cx_st_get(f, "y");
    cx_charlm_out o = cx_charlm_forward(m, x, cx_st_get(f, "h0"), cx_st_get(f, "c0"));
    cx_tensor *el = cx_st_get(f, "out.logits"), *eh = cx_st_get(f, "out.h"), *ec = cx_st_get(f, "out.c");
    CHECK(cx_same_shape(o.logits, el) && cx_same_shape(o.h, eh) && cx_same_shape(o.c, ec));
    cxt_allclose(CX_F(o.logits), CX_F(el), (long)el->numel, 1e-4, 1e-5, "logits");
    cxt_allclose(CX_F(o.h), CX_F(eh), (long)eh->numel, 1e-4, 1e-5, "h_n");
    cxt_allclose(CX_F(o.c), CX_F(ec), (long)ec->numel, 1e-4, 1e-5, "c_n");
    cx_tensor *loss = cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN);
    CHECK_NEAR(cx_item(loss), cx_item(cx_st_get(f, "out.loss")), 1e-5);
    cx_backward(loss);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    for (int i = 0; i < ps.n; i++) {
        char gn[96];
        snprintf(gn, sizeof gn, "grad.%s", ps.t[i]->name);
        cx_tensor *g = cx_st_get(f, gn);
        CHECK_MSG(g && ps.t[i]->grad, "%s", gn);
        if (g && ps.t[i]->grad) cxt_allclose(ps.t[i]->grad, CX_F(g), (long)g->numel, 1e-4, 1e-5, gn);
    }
    cx_params_free(&ps);
    cx_st_free(f);
    cx_vocab_free(v);
    cx_module_free(m);
}

/* Truncated BPTT: two chunks with carried (copied, detached) states give the
 * logits of one pass over the whole sequence. */
static void test_carry_matches_full(void) {
    cx_seed(3);
    cx_charlm_config cfg = {11, 4, 7, 2, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    enum { T = 6, B = 3 };
    int32_t ids[T * B];
    for (int i = 0; i < T * B; i++) ids[i] = (int32_t)cx_rand_below(11);
    cx_tensor *full = cx_charlm_forward(m, ids_tensor(ids, T, B), NULL, NULL).logits;
    float *ref = malloc((size_t)full->numel * sizeof *ref);
    memcpy(ref, full->data, (size_t)full->numel * sizeof *ref);
    cx_step_reset();
    cx_tensor *h = NULL, *c = NULL;
    float got[T * B * 11];
    for (int k = 0; k < 2; k++) {
        cx_charlm_out o = cx_charlm_forward(m, ids_tensor(ids + k * 3 * B, 3, B), h, c);
        memcpy(got + k * 3 * B * 11, o.logits->data, (size_t)o.logits->numel * sizeof(float));
        cx_charlm_carry(&h, &c, o);
        CHECK(h->persistent && c->persistent && !h->requires_grad && h->shape[0] == 2 && h->shape[1] == B);
        cx_step_reset(); /* the carried copies survive the reset */
    }
    cxt_allclose(got, ref, T * B * 11, 1e-5, 1e-6, "chunked logits");
    free(ref);
    cx_tensor_free(h);
    cx_tensor_free(c);
    cx_module_free(m);
}

static void test_save_load_roundtrip(void) {
    cx_seed(5);
    cx_vocab *v = vocab_of("hello, w\xc3\xb6rld\n");
    cx_charlm_config cfg = {v->size, 3, 5, 2, 0.25f};
    cx_module *m = cx_charlm_new(&cfg);
    char path[256];
    tmp_path(path, sizeof path, "m.safetensors");
    cx_tensor *extra = cx_tensor_new(CX_I64, (const int[]){2}, 1);
    cx_tensor_set_name(extra, "cortex.rng");
    cx_params ex;
    cx_params_init(&ex);
    cx_params_add(&ex, extra);
    const char *mk[] = {"cortex.epoch"}, *mv[] = {"3"};
    CHECK(cx_charlm_save(path, m, v, &ex, mk, mv, 1) == CX_OK);
    cx_module *m2;
    cx_vocab *v2;
    cx_status st = cx_charlm_load(path, &m2, &v2);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) {
        cx_charlm_config g = cx_charlm_get_config(m2);
        CHECK(g.vocab == cfg.vocab && g.embed == 3 && g.hidden == 5 && g.layers == 2 && g.dropout == 0.25f);
        CHECK(v2 && v2->size == v->size && !memcmp(v2->chars, v->chars, (size_t)v->size * sizeof(int32_t)));
        int32_t ids[5 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
        cx_set_training(false);
        cx_tensor *a = cx_charlm_forward(m, ids_tensor(ids, 5, 2), NULL, NULL).logits;
        cx_tensor *b = cx_charlm_forward(m2, ids_tensor(ids, 5, 2), NULL, NULL).logits;
        cx_set_training(true);
        CHECK(a->numel == b->numel && memcmp(a->data, b->data, (size_t)a->numel * sizeof(float)) == 0);
        cx_st_file *f;
        CHECK(cx_st_load(path, &f) == CX_OK);
        CHECK(cx_st_get(f, "cortex.rng") && !strcmp(cx_st_meta(f, "cortex.epoch"), "3"));
        /* the metadata pairs other writers (the trainer's checkpoints) take */
        cx_charlm_meta md;
        cx_charlm_meta_init(&md, m, v);
        CHECK(md.n == 8 && !strcmp(md.keys[1], "cortex.arch") && !strcmp(md.values[1], "charlm"));
        for (int i = 0; i < md.n; i++)
            CHECK_MSG(cx_st_meta(f, md.keys[i]) && !strcmp(cx_st_meta(f, md.keys[i]), md.values[i]),
                      "metadata %s differs from the saved file", md.keys[i]);
        cx_charlm_meta_free(&md);
        CHECK(!strcmp(cx_st_meta(f, "cortex.arch"), "charlm"));
        cx_st_free(f);
        /* saving again gives the same bytes */
        char p2[256];
        tmp_path(p2, sizeof p2, "m2.safetensors");
        CHECK(cx_charlm_save(p2, m2, v2, &ex, mk, mv, 1) == CX_OK);
        void *d1 = NULL, *d2 = NULL;
        size_t n1 = 0, n2 = 1;
        CHECK(cx_read_file(path, &d1, &n1, 0) == CX_OK && cx_read_file(p2, &d2, &n2, 0) == CX_OK);
        CHECK(n1 == n2 && !memcmp(d1, d2, n1));
        free(d1);
        free(d2);
        cx_module_free(m2);
        cx_vocab_free(v2);
    }
    /* without a vocabulary */
    CHECK(cx_charlm_save(path, m, NULL, NULL, NULL, NULL, 0) == CX_OK);
    CHECK(cx_charlm_load(path, &m2, &v2) == CX_OK && v2 == NULL);
    cx_module_free(m2);
    cx_params_free(&ex);
    cx_tensor_free(extra);
    cx_vocab_free(v);
    cx_module_free(m);
}

/* Write a copy of the fixture's model tensors with altered metadata. */
static cx_status save_variant(const char *path, const char *key, const char *value, const char *drop) {
    return save_variant_of(FIXTURE, path, key, value, drop);
}

static void test_load_errors(void) {
    char p[256];
    tmp_path(p, sizeof p, "bad.safetensors");
    CHECK(save_variant(p, "cortex.arch", "mlp", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "not a character language model");
    CHECK(save_variant(p, "cortex.arch", NULL, NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.arch is missing");
    /* hostile sizes: rejected against the stored tensors before any allocation */
    CHECK(save_variant(p, "cortex.charlm.hidden", "1000000", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_SHAPE, "lstm.weight_ih_l0");
    CHECK(save_variant(p, "cortex.charlm.layers", "3", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_NOTFOUND, "lstm.weight_ih_l2");
    CHECK(save_variant(p, "cortex.charlm.vocab", "-4", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.charlm.vocab");
    CHECK(save_variant(p, "cortex.charlm.embed", "5x", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.charlm.embed");
    CHECK(save_variant(p, "cortex.charlm.dropout", "1.5", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "dropout");
    CHECK(save_variant(p, "cortex.vocab", "10,32,98,97,99,955", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.vocab");
    CHECK(save_variant(p, "cortex.vocab", "10,32,97", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.vocab");
    CHECK(save_variant(p, "cortex.vocab", "10,32,97,98,99,55296", NULL) == CX_OK); /* a surrogate */
    expect_load_error(p, CX_ERR_FORMAT, "cortex.vocab");
    CHECK(save_variant(p, "cortex.vocab", "10,32,97,98,99,955,", NULL) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "cortex.vocab");
    CHECK(save_variant(p, "x", NULL, "fc.bias") == CX_OK);
    expect_load_error(p, CX_ERR_NOTFOUND, "fc.bias");
    /* not safetensors at all, and a missing file */
    CHECK(cx_write_file_atomic(p, "garbage!garbage!", 16) == CX_OK);
    expect_load_error(p, CX_ERR_FORMAT, "bad.safetensors");
    tmp_path(p, sizeof p, "missing.safetensors");
    expect_load_error(p, CX_ERR_IO, "missing.safetensors");
}

/* Log-softmax of row `last` of the logits of one full pass over seq[0..n-1]. */
static int argmax_by_hand(cx_module *m, const int32_t *seq, int n, double *logp_of, int tok) {
    cx_no_grad_begin();
    cx_tensor *lg = cx_charlm_forward(m, ids_tensor(seq, n, 1), NULL, NULL).logits;
    int V = lg->shape[2];
    const float *row = CX_F(lg) + (size_t)(n - 1) * V;
    int best = cx_argmax_f32(row, V);
    if (logp_of) {
        double mx = row[best], s = 0;
        for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
        *logp_of = (double)row[tok < 0 ? best : tok] - mx - log(s);
    }
    cx_no_grad_end();
    return best;
}

static void test_decoder_greedy_by_hand(void) {
    cx_seed(11);
    cx_charlm_config cfg = {8, 4, 9, 2, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    CHECK(d.dec.vocab == 8 && d.dec.state_bytes == 2 * 2 * 9 * sizeof(float) && d.dec.user == &d);
    int32_t prime[3] = {3, 1, 4};
    float *st = malloc(d.dec.state_bytes);
    cx_step_reset();
    cx_charlm_prime(&d, prime, 2, st, NULL); /* state after 3 1; start token 4 */
    int out[6], n = 0;
    double lp = 0;
    CHECK(cx_decode_greedy(&d.dec, st, prime[2], -1, 6, out, &n, &lp) == CX_OK);
    CHECK(n == 6);
    /* the decoder's arena is its own: nothing was allocated in ours */
    CHECK(cx_arena_used(cx_arena_current()) == 0);
    int32_t seq[16] = {3, 1, 4};
    int len = 3;
    double lp_hand = 0;
    for (int i = 0; i < n; i++) {
        double l;
        int want = argmax_by_hand(m, seq, len, &l, -1);
        CHECK_MSG(out[i] == want, "step %d: greedy %d, by hand %d", i, out[i], want);
        lp_hand += l;
        seq[len++] = out[i];
    }
    CHECK_NEAR(lp, lp_hand, 1e-4);
    /* beam search with K = 1 is greedy decoding */
    int bo[6], bn = 0;
    cx_beam_opts o1 = {1, 6, -1, CX_LENNORM_NONE, 0};
    CHECK(cx_beam_search(&d.dec, st, prime[2], &o1, bo, &bn, NULL, NULL) == CX_OK);
    CHECK(bn == 6 && !memcmp(bo, out, sizeof out));
    free(st);
    cx_charlm_decoder_free(&d);
    cx_module_free(m);
}

/* The state primed in one pass equals the state stepped one token at a time,
 * and the primed logits are the step's logits. */
static void test_prime_matches_steps(void) {
    cx_seed(12);
    cx_charlm_config cfg = {6, 3, 5, 3, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    int32_t ids[5] = {2, 5, 0, 1, 3};
    size_t sb = d.dec.state_bytes, nf = sb / sizeof(float);
    float *a = malloc(sb), *b = calloc(1, sb), *b2 = malloc(sb), la[6], lb[6];
    cx_charlm_prime(&d, ids, 5, a, la);
    int prefix[5];
    for (int i = 0; i < 5; i++) {
        prefix[i] = ids[i];
        CHECK(d.dec.step(d.dec.user, prefix, i + 1, b, b2, lb) == CX_OK);
        memcpy(b, b2, sb);
    }
    cxt_allclose(a, b, (long)nf, 1e-5, 1e-6, "primed state");
    cxt_allclose(la, lb, 6, 1e-5, 1e-6, "primed logits");
    cx_charlm_prime(&d, ids, 0, a, NULL);
    for (size_t i = 0; i < nf; i++) CHECK(a[i] == 0.0f);
    /* ban_unk: <unk> scores -INFINITY, the other scores are unchanged */
    d.ban_unk = true;
    float lc[6];
    CHECK(d.dec.step(d.dec.user, prefix, 1, a, b2, lc) == CX_OK);
    d.ban_unk = false;
    CHECK(d.dec.step(d.dec.user, prefix, 1, a, b2, lb) == CX_OK);
    CHECK(isinf(lc[0]) && lc[0] < 0 && !isinf(lb[0]));
    CHECK(!memcmp(lc + 1, lb + 1, 5 * sizeof(float)));
    prefix[0] = 6;
    CHECK(d.dec.step(d.dec.user, prefix, 1, b, b2, lb) == CX_ERR_ARG);
    free(a);
    free(b);
    free(b2);
    cx_charlm_decoder_free(&d);
    cx_module_free(m);
}

/* A beam wide enough never prunes: it finds the exact best sequence (checked
 * by brute force over all V^2 continuations). */
static void test_beam_exact(void) {
    cx_seed(13);
    cx_charlm_config cfg = {5, 3, 6, 1, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    float *st = calloc(1, d.dec.state_bytes);
    int out[2], n = 0;
    double lp = 0;
    cx_beam_opts o = {25, 2, -1, CX_LENNORM_NONE, 0};
    CHECK(cx_beam_search(&d.dec, st, 2, &o, out, &n, NULL, &lp) == CX_OK);
    double best = -INFINITY;
    int bi = -1, bj = -1;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            int32_t s1[2] = {2, i};
            double l1, l2;
            argmax_by_hand(m, s1, 1, &l1, i);
            argmax_by_hand(m, s1, 2, &l2, j);
            if (l1 + l2 > best) best = l1 + l2, bi = i, bj = j;
        }
    CHECK(n == 2 && out[0] == bi && out[1] == bj);
    CHECK_NEAR(lp, best, 1e-4);
    /* a stop token ends hypotheses */
    cx_beam_opts os = {3, 40, 1, CX_LENNORM_POWER, 1.0};
    int o2[40], n2 = 0;
    CHECK(cx_beam_search(&d.dec, st, 2, &os, o2, &n2, NULL, NULL) == CX_OK);
    CHECK(n2 >= 1 && n2 <= 40);
    for (int i = 0; i + 1 < n2; i++) CHECK(o2[i] != 1);
    free(st);
    cx_charlm_decoder_free(&d);
    cx_module_free(m);
}

/* A short run on a repeated sentence: the loss collapses and greedy decoding
 * from a prime continues the sentence. */
static void test_overfit_repeated_text(void) {
    const char *unit = "the cat sat on the mat. ";
    char text[24 * 40 + 1] = "";
    for (int i = 0; i < 40; i++) strcat(text, unit);
    cx_seed(21);
    cx_vocab *v = vocab_of(text);
    int32_t *all;
    int64_t n;
    CHECK(cx_vocab_encode(v, text, strlen(text), &all, &n) == CX_OK);
    cx_tensor *ids = cx_tensor_new(CX_I32, (const int[]){(int)n}, 1);
    memcpy(ids->data, all, (size_t)n * sizeof(int32_t));
    free(all);
    cx_charlm_config cfg = {v->size, 8, 32, 1, 0.0f};
    cx_module *m = cx_charlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 1e-2;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_bptt_loader *ld = cx_bptt_new(ids, 4, 24, true);
    cx_tensor *h = NULL, *c = NULL, *x, *y;
    double first = NAN, last = NAN;
    for (int epoch = 0; epoch < 25; epoch++) {
        cx_bptt_reset(ld);
        cx_tensor_free(h);
        cx_tensor_free(c);
        h = c = NULL;
        double sum = 0;
        int k = 0;
        while (cx_bptt_next(ld, &x, &y)) {
            cx_optim_zero_grad(opt);
            cx_charlm_out o = cx_charlm_forward(m, x, h, c);
            cx_tensor *loss = cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN);
            sum += cx_item(loss);
            k++;
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 5.0f);
            cx_optim_step(opt);
            cx_charlm_carry(&h, &c, o);
            cx_step_reset();
        }
        if (epoch == 0) first = sum / k;
        last = sum / k;
    }
    CHECK_MSG(last < 0.15 && first > 1.5, "mean loss %.4f in the first epoch, %.4f in the last", first, last);
    /* greedy continuation of "the cat" */
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, m);
    const char *prime = "on the mat. the cat";
    int32_t *pid;
    int64_t np;
    CHECK(cx_vocab_encode(v, prime, strlen(prime), &pid, &np) == CX_OK);
    float *st = malloc(d.dec.state_bytes);
    cx_charlm_prime(&d, pid, (int)np - 1, st, NULL);
    int out[30], no = 0;
    CHECK(cx_decode_greedy(&d.dec, st, pid[np - 1], -1, 30, out, &no, NULL) == CX_OK);
    int32_t o32[30];
    for (int i = 0; i < no; i++) o32[i] = out[i];
    char buf[64];
    cx_vocab_decode(v, o32, no, buf, sizeof buf);
    CHECK_MSG(!strcmp(buf, " sat on the mat. the cat sat o"), "greedy continuation '%s'", buf);
    free(pid);
    free(st);
    cx_charlm_decoder_free(&d);
    cx_tensor_free(h);
    cx_tensor_free(c);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    cx_tensor_free(ids);
    cx_vocab_free(v);
}

/* cx_charlm_defaults gives the documented sizes; cx_charlm_from_st builds the
 * same model as cx_charlm_load from an already parsed file. */
static void test_defaults_and_from_st(void) {
    cx_charlm_config d = cx_charlm_defaults(11);
    CHECK(d.vocab == 11 && d.embed == 64 && d.hidden == 256 && d.layers == 2 && d.dropout == 0.0f);
    cx_charlm_config cfg = {7, 4, 5, 1, 0.0f};
    cx_seed(4);
    cx_module *m = cx_charlm_new(&cfg);
    char path[300];
    snprintf(path, sizeof path, "%s/from_st.safetensors", tmpdir);
    CHECK(cx_charlm_save(path, m, NULL, NULL, NULL, NULL, 0) == CX_OK);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(path, &f) == CX_OK);
    cx_module *m2 = NULL;
    cx_vocab *v = (cx_vocab *)1;
    CHECK(f && cx_charlm_from_st(f, path, &m2, &v) == CX_OK);
    CHECK(v == NULL); /* saved without a vocabulary */
    if (m2) {
        cx_charlm_config g = cx_charlm_get_config(m2);
        CHECK(g.vocab == 7 && g.embed == 4 && g.hidden == 5 && g.layers == 1);
        int32_t ids[6] = {1, 2, 3, 4, 5, 6};
        cx_tensor *x = cx_from_i32(ids, CX_SHAPE(3, 2));
        cx_tensor *a = cx_module_forward(m, x), *b = cx_module_forward(m2, x);
        CHECK(cx_same_shape(a, b) && memcmp(a->data, b->data, (size_t)a->numel * 4) == 0);
        cx_module_free(m2);
    }
    cx_st_free(f);
    cx_module_free(m);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_charlm_%d", (int)getpid());
    char cmd[200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmpdir);
    if (system(cmd) != 0) return 1;
    RUN(test_shapes_and_names);
    RUN(test_torch_fixture);
    RUN(test_carry_matches_full);
    RUN(test_save_load_roundtrip);
    RUN(test_load_errors);
    RUN(test_decoder_greedy_by_hand);
    RUN(test_prime_matches_steps);
    RUN(test_beam_exact);
    RUN(test_overfit_repeated_text);
    RUN(test_defaults_and_from_st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
