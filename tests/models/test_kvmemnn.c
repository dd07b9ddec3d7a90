/* Key-value memory networks and the film knowledge base (cortex/kvmem.h):
 * the model against PyTorch 1.13 (tools/gen_kvmemnn_fixtures.py ->
 * tests/fixtures/kvmemnn/tiny.safetensors) and finite differences; the KB's
 * facts, questions, splits and memories checked against the triples; a
 * short training run that must answer most test questions; errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_tensor *fx(const cx_st_file *f, const char *name) {
    cx_tensor *t = cx_st_get(f, name);
    CHECK_MSG(t != NULL, "fixture lacks %s", name);
    return t;
}

static cx_kvmemnn *tiny_model(const cx_st_file *f, bool tied) {
    cx_rng r = cx_rng_new(1);
    cx_kvmemnn *m = cx_kvmemnn_new(13, 5, 2, tied, &r);
    CHECK(m != NULL);
    CHECK_MSG(cx_module_load_state(m->root, f, "tiny.safetensors") == CX_OK, "%s", cx_last_error());
    return m;
}

static void fixture_case(bool tied) {
    cx_st_file *f = NULL;
    const char *path = tied ? "tests/fixtures/kvmemnn/tiny_tied.safetensors" : "tests/fixtures/kvmemnn/tiny.safetensors";
    CHECK_MSG(cx_st_load(path, &f) == CX_OK, "cannot load %s: %s (regenerate with /usr/bin/python3 "
              "tools/gen_kvmemnn_fixtures.py)", path, cx_last_error());
    if (!f) return;
    cx_kvmemnn *m = tiny_model(f, tied);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->root, &ps);
    for (int i = 0; i < ps.n; i++) cx_zero_grad(ps.t[i]);
    cx_tensor *att;
    cx_tensor *logits = cx_kvmemnn_forward(m, fx(f, "in.query"), fx(f, "in.keys"), fx(f, "in.values"),
                                           fx(f, "in.mask"), &att);
    cx_tensor *loss = cx_kvmemnn_loss(logits, fx(f, "in.target"));
    cxt_allclose(CX_F(logits), CX_F(fx(f, "out.logits")), (long)logits->numel, 1e-4, 1e-5, "logits");
    cxt_allclose(CX_F(att), CX_F(fx(f, "out.attn")), (long)att->numel, 1e-4, 1e-6, "attention");
    CHECK_NEAR(cx_item(loss), CX_F(fx(f, "out.loss"))[0], 1e-4);
    /* the row with no real memory attends to nothing */
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++) CHECK(CX_F(att)[(h * 3 + 2) * 4 + k] == 0.0f);
    cx_backward(loss);
    const char *names[] = {"A.weight", "R.0.weight", "R.1.weight", "B.weight"};
    CHECK(ps.n == (tied ? 3 : 4));
    for (int i = 0; i < (tied ? 3 : 4); i++) {
        char g[64];
        snprintf(g, sizeof g, "grad.%s", names[i]);
        cx_tensor *p = cx_module_tensor(m->root, names[i]);
        CHECK_MSG(p && p->grad, "no gradient for %s", names[i]);
        if (p && p->grad) cxt_allclose(p->grad, CX_F(fx(f, g)), (long)p->numel, 1e-4, 1e-5, g);
    }
    cx_params_free(&ps);
    cx_kvmemnn_free(m);
    cx_st_free(f);
}

static void pytorch_fixtures(void) {
    fixture_case(false);
    fixture_case(true);
}

/* ---- finite differences on every parameter */
typedef struct {
    cx_kvmemnn *m;
    cx_tensor *q, *k, *v, *mask, *t;
} gc_ctx;

static cx_tensor *gc_fn(cx_tensor **x, int n, void *user) {
    (void)x, (void)n;
    gc_ctx *c = user;
    return cx_kvmemnn_loss(cx_kvmemnn_forward(c->m, c->q, c->k, c->v, c->mask, NULL), c->t);
}

static void gradcheck_case(bool tied) {
    cx_st_file *f = NULL;
    if (cx_st_load(tied ? "tests/fixtures/kvmemnn/tiny_tied.safetensors" : "tests/fixtures/kvmemnn/tiny.safetensors",
                   &f) != CX_OK) {
        CHECK_MSG(0, "fixture: %s", cx_last_error());
        return;
    }
    cx_kvmemnn *m = tiny_model(f, tied);
    const int np = tied ? 3 : 4;
    /* word ids from 1: the padding row 0 of A gets no gradient by design
     * (PyTorch's padding_idx), so it must not be read here */
    cx_tensor *ids[3] = {cx_from_i32(CX_I32P(fx(f, "in.query")), CX_SHAPE(3, 4)),
                         cx_from_i32(CX_I32P(fx(f, "in.keys")), CX_SHAPE(3, 4, 3)),
                         cx_from_i32(CX_I32P(fx(f, "in.values")), CX_SHAPE(3, 4, 3))};
    for (int i = 0; i < 3; i++)
        for (int64_t j = 0; j < ids[i]->numel; j++)
            if (!CX_I32P(ids[i])[j]) CX_I32P(ids[i])[j] = 1 + (int)(j % 12);
    gc_ctx c = {m, ids[0], ids[1], ids[2], fx(f, "in.mask"), fx(f, "in.target")};
    cx_tensor *in[4] = {cx_module_tensor(m->root, "A.weight"), cx_module_tensor(m->root, "R.0.weight"),
                        cx_module_tensor(m->root, "R.1.weight"), cx_module_tensor(m->root, "B.weight")};
    for (int i = 0; i < np; i++) cx_zero_grad(in[i]);
    double worst = cx_gradcheck(gc_fn, in, np, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "kvmemnn gradcheck (tied %d): worst violation ratio %g", tied, worst);
    /* no mask: every memory real */
    c.mask = NULL;
    for (int i = 0; i < np; i++) cx_zero_grad(in[i]);
    worst = cx_gradcheck(gc_fn, in, np, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "kvmemnn gradcheck (tied %d, no mask): worst violation ratio %g", tied, worst);
    cx_kvmemnn_free(m);
    cx_st_free(f);
}

static void gradcheck(void) {
    gradcheck_case(false);
    gradcheck_case(true);
}

/* ---- the knowledge base */
static int find_q(const cx_filmkb *kb, const char *entity, cx_kvq_type type) {
    int e = cx_filmkb_find(kb, entity);
    for (int i = 0; i < kb->n_questions; i++)
        if (kb->questions[i].entity == e && kb->questions[i].type == type) return i;
    return -1;
}

static bool answers_has(const cx_filmkb *kb, int q, const char *w) {
    const cx_kvq *x = &kb->questions[q];
    for (int a = 0; a < x->n_answers; a++)
        if (!strcmp(kb->words[kb->answers[x->first_answer + a]], w)) return true;
    return false;
}

static void knowledge_base(void) {
    cx_filmkb *kb = NULL, *kb2 = NULL;
    CHECK(cx_filmkb_generate(200, 5, &kb) == CX_OK);
    CHECK(cx_filmkb_generate(200, 5, &kb2) == CX_OK);
    if (!kb || !kb2) return;
    CHECK(kb->n_films == 200);
    CHECK(kb->n_words == kb2->n_words && kb->n_questions == kb2->n_questions && kb->n_triples == kb2->n_triples);
    for (int i = 0; i < kb->n_questions && i < kb2->n_questions; i++)
        CHECK(!memcmp(&kb->questions[i], &kb2->questions[i], sizeof(cx_kvq)));
    CHECK(kb->n_split[0] + kb->n_split[1] + kb->n_split[2] == kb->n_questions);
    CHECK(kb->n_split[1] > 0 && kb->n_split[2] > 0 && kb->n_split[0] > 6 * kb->n_split[2]);
    /* the notes' triple and the Kubrick questions */
    int f = cx_filmkb_find(kb, "2001:a_space_odyssey"), r = cx_filmkb_find(kb, "directed_by"),
        p = cx_filmkb_find(kb, "stanley_kubrick");
    bool found = false;
    for (int t = 0; t < kb->n_triples; t++)
        found |= kb->triples[3 * t] == f && kb->triples[3 * t + 1] == r && kb->triples[3 * t + 2] == p;
    CHECK_MSG(found, "(2001:a_space_odyssey, directed_by, stanley_kubrick) missing");
    int q = find_q(kb, "stanley_kubrick", CX_KVQ_DIRECTED);
    CHECK(q >= 0);
    if (q >= 0) {
        CHECK(kb->questions[q].n_answers == 10);
        CHECK(answers_has(kb, q, "the_shining") && answers_has(kb, q, "barry_lyndon"));
    }
    q = find_q(kb, "the_shining", CX_KVQ_YEAR);
    CHECK(q >= 0 && answers_has(kb, q, "1980"));
    q = find_q(kb, "2001:a_space_odyssey", CX_KVQ_WRITER);
    CHECK(q >= 0 && answers_has(kb, q, "arthur_c_clarke") && answers_has(kb, q, "stanley_kubrick"));
    char text[128];
    q = find_q(kb, "the_shining", CX_KVQ_DIRECTOR);
    cx_filmkb_question_text(kb, q, text, sizeof text);
    CHECK_MSG(strstr(text, "the_shining") && text[strlen(text) - 1] == '?', "question '%s'", text);
    /* every answer agrees with the triples (recomputed here), every KB
     * memory holds an answer, the memories are found by the question entity */
    static const char *const REL[] = {"directed_by", "written_by", "starred_actors", "release_year", "has_genre"};
    int *keys = malloc(sizeof(int) * 200 * CX_KVMEM_MAX_TOKENS), *vals = malloc(sizeof(int) * 200 * CX_KVMEM_MAX_TOKENS);
    int bad = 0, uncovered = 0, uncovered_doc = 0;
    for (int i = 0; i < kb->n_questions; i++) {
        const cx_kvq *x = &kb->questions[i];
        int rel = cx_filmkb_find(kb, REL[x->type % 5]), n = 0;
        bool film_q = x->type <= CX_KVQ_GENRE;
        for (int t = 0; t < kb->n_triples; t++) {
            const int *tr = kb->triples + 3 * t;
            if (tr[1] != rel || (film_q ? tr[0] : tr[2]) != x->entity) continue;
            int ans = film_q ? tr[2] : tr[0];
            bool in = false;
            for (int a = 0; a < x->n_answers; a++) in |= kb->answers[x->first_answer + a] == ans;
            bad += !in;
            n++;
        }
        bad += n != x->n_answers;
        bool has;
        int nm = cx_filmkb_memories(kb, i, CX_KVMEM_KB, 200, keys, vals, &has);
        uncovered += !has;
        for (int k = 0; k < nm; k++) bad += keys[k * CX_KVMEM_MAX_TOKENS] != x->entity;
        cx_filmkb_memories(kb, i, CX_KVMEM_DOC, 200, keys, vals, &has);
        uncovered_doc += !has;
    }
    CHECK_MSG(bad == 0, "%d answers disagree with the triples", bad);
    CHECK_MSG(uncovered == 0, "%d questions without an answer in their KB memory", uncovered);
    CHECK_MSG(uncovered_doc == 0, "%d questions without an answer in their document memory", uncovered_doc);
    free(keys), free(vals);
    /* batches */
    int idx[2] = {0, kb->n_questions - 1};
    cx_tensor *qt, *k, *v, *mk, *t;
    CHECK(cx_filmkb_batch(kb, idx, 2, CX_KVMEM_TRIPLE, 16, &qt, &k, &v, &mk, &t) == CX_OK);
    CHECK(k->shape[0] == 2 && k->shape[1] <= 16 && k->shape[2] == CX_KVMEM_MAX_TOKENS);
    CHECK(t->shape[1] == kb->n_words);
    double s0 = 0;
    for (int w = 0; w < kb->n_words; w++) s0 += CX_F(t)[w];
    CHECK_NEAR(s0, 1.0, 1e-6);
    idx[1] = kb->n_questions;
    CHECK(cx_filmkb_batch(kb, idx, 2, CX_KVMEM_KB, 16, &qt, &k, &v, &mk, &t) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "outside"));
    cx_filmkb *none = NULL;
    CHECK(cx_filmkb_generate(9, 1, &none) == CX_ERR_ARG && none == NULL);
    CHECK(strstr(cx_last_error(), "films"));
    cx_filmkb_free(kb);
    cx_filmkb_free(kb2);
}

/* ---- a short training run: most test questions answered from memory */
static double hits(cx_kvmemnn *m, const cx_filmkb *kb, const int *idx, int n) {
    cx_tensor *q, *k, *v, *mk, *t;
    CHECK(cx_filmkb_batch(kb, idx, n, CX_KVMEM_KB, 64, &q, &k, &v, &mk, &t) == CX_OK);
    cx_no_grad_begin();
    cx_tensor *lg = cx_kvmemnn_forward(m, q, k, v, mk, NULL);
    cx_no_grad_end();
    int h = 0;
    for (int b = 0; b < n; b++) {
        int best = -1;
        for (int w = 0; w < kb->n_words; w++)
            if (kb->is_entity[w] && (best < 0 || CX_F(lg)[b * kb->n_words + w] > CX_F(lg)[b * kb->n_words + best]))
                best = w;
        h += CX_F(t)[b * kb->n_words + best] > 0;
    }
    return (double)h / n;
}

static void training(void) {
    cx_filmkb *kb = NULL;
    CHECK(cx_filmkb_generate(120, 3, &kb) == CX_OK);
    if (!kb) return;
    int *tr = malloc(sizeof(int) * (size_t)kb->n_split[0]), *te = malloc(sizeof(int) * (size_t)kb->n_split[2]);
    int ntr = cx_filmkb_split(kb, 0, tr), nte = cx_filmkb_split(kb, 2, te);
    cx_rng r = cx_rng_new(2);
    cx_kvmemnn *m = cx_kvmemnn_new(kb->n_words, 32, 2, true, &r);
    double before = hits(m, kb, te, nte);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->root, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    for (int e = 0; e < 20; e++)
        for (int i0 = 0; i0 < ntr; i0 += 32) {
            int b = ntr - i0 < 32 ? ntr - i0 : 32;
            cx_tensor *q, *k, *v, *mk, *t;
            cx_filmkb_batch(kb, tr + i0, b, CX_KVMEM_KB, 64, &q, &k, &v, &mk, &t);
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_kvmemnn_loss(cx_kvmemnn_forward(m, q, k, v, mk, NULL), t);
            cx_backward(loss);
            cx_optim_step(opt);
            cx_step_reset();
        }
    double after = hits(m, kb, te, nte);
    printf("  kv-kb 120 films: test hits@1 %.3f untrained, %.3f after 20 epochs (%d questions)\n", before, after, nte);
    CHECK_MSG(before < 0.2, "untrained hits@1 %.3f", before);
    CHECK_MSG(after > 0.75, "trained hits@1 %.3f <= 0.75", after);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_kvmemnn_free(m);
    free(tr), free(te);
    cx_filmkb_free(kb);
}

static void errors(void) {
    cx_rng r = cx_rng_new(1);
    CHECK(cx_kvmemnn_new(1, 4, 1, false, &r) == NULL && strstr(cx_last_error(), "vocab"));
    CHECK(cx_kvmemnn_new(10, 4, 9, false, &r) == NULL && strstr(cx_last_error(), "hops"));
    cx_kvmemnn *m = cx_kvmemnn_new(10, 4, 1, false, &r);
    int32_t qd[2] = {1, 2}, kd[6] = {1, 2, 3, 4, 5, 12};
    cx_tensor *q = cx_from_i32(qd, CX_SHAPE(1, 2)), *k = cx_from_i32(kd, CX_SHAPE(1, 2, 3)),
              *okk = cx_from_i32(kd, CX_SHAPE(1, 1, 3));
    EXPECT_FATAL(cx_kvmemnn_forward(m, q, k, k, NULL, NULL), "keys", "word id 12", "[0, 10)");
    EXPECT_FATAL(cx_kvmemnn_forward(m, q, okk, cx_from_i32(kd, CX_SHAPE(1, 3, 2)), NULL, NULL), "values");
    EXPECT_FATAL(cx_kvmemnn_forward(m, q, okk, okk, cx_zeros(CX_SHAPE(1, 2)), NULL), "mask");
    EXPECT_FATAL(cx_kvmemnn_loss(cx_zeros(CX_SHAPE(1, 10)), cx_zeros(CX_SHAPE(1, 9))), "target");
    cx_kvmemnn_free(m);
}

int main(void) {
    RUN(pytorch_fixtures);
    RUN(gradcheck);
    RUN(knowledge_base);
    RUN(training);
    RUN(errors);
    TEST_END();
}
