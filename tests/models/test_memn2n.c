/* The end-to-end memory network (include/cortex/memn2n.h): logits, attention,
 * loss and every gradient against PyTorch (tools/gen_memn2n_fixtures.py: PE
 * in both forms and bag of words, 1 and 3 hops, temporal encoding, linear
 * start, no temporal encoding), central differences, the two PE forms'
 * weights, names, save/load, bad input, and
 * a short task-1 training run that a broken model cannot pass. */
#include <cortex/memn2n.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

#define FIXDIR "tests/fixtures/memn2n"

static int meta_i(const cx_st_file *f, const char *k) {
    const char *s = cx_st_meta(f, k);
    return s ? atoi(s) : -1;
}

static void check_case(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s.safetensors", FIXDIR, name);
    cx_st_file *f;
    if (cx_st_load(path, &f)) {
        CHECK_MSG(0, "%s", cx_last_error());
        return;
    }
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = meta_i(f, "vocab");
    c.dim = meta_i(f, "dim");
    c.hops = meta_i(f, "hops");
    c.memory = meta_i(f, "memory");
    c.pe = meta_i(f, "pe") == 1;
    c.temporal = meta_i(f, "temporal") == 1;
    const char *form = cx_st_meta(f, "pe_form");   /* absent: the paper's */
    c.pe_form = form && !strcmp(form, "code") ? CX_MEMN2N_PE_CODE : CX_MEMN2N_PE_PAPER;
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 1, &m) == CX_OK);
    m->linear = meta_i(f, "linear") == 1;
    CHECK(m->params.n == (c.temporal ? 2 : 1) * (c.hops + 1));
    for (int i = 0; i < m->params.n; i++) {
        cx_tensor *w = cx_st_get(f, m->params.t[i]->name);
        CHECK_MSG(w && cx_same_shape(w, m->params.t[i]), "%s: %s", name, m->params.t[i]->name);
        if (w) memcpy(m->params.t[i]->data, w->data, sizeof(float) * (size_t)w->numel);
    }
    cx_tensor *mem = cx_st_get(f, "in.memory"), *slots = cx_st_get(f, "in.slots"), *q = cx_st_get(f, "in.query"),
              *ans = cx_st_get(f, "in.answer");
    int N = mem->shape[0], S = mem->shape[1], K = c.hops, M = c.memory, V = c.vocab;
    float *logits = malloc(sizeof(float) * (size_t)N * V), *att = malloc(sizeof(float) * (size_t)N * K * M);
    float *att_s = malloc(sizeof(float) * (size_t)N * K * S);
    CHECK(cx_memn2n_forward(m, mem, slots, q, logits, att) == CX_OK);
    cxt_allclose(logits, CX_F(cx_st_get(f, "out.logits")), (long)N * V, 1e-4, 1e-5, "logits");
    bool tail_zero = true;
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < M; i++) {
                float a = att[((size_t)n * K + k) * M + i];
                if (i < S) att_s[((size_t)n * K + k) * S + i] = a;
                else tail_zero &= a == 0.0f;
            }
    CHECK(tail_zero);
    cxt_allclose(att_s, CX_F(cx_st_get(f, "out.attention")), (long)N * K * S, 1e-4, 1e-6, "attention");
    double loss;
    int correct;
    CHECK(cx_memn2n_loss(m, mem, slots, q, ans, true, &loss, &correct) == CX_OK);
    CHECK_NEAR(loss, cx_item(cx_st_get(f, "out.loss")), 1e-4 * fabs(loss) + 1e-5);
    CHECK(correct >= 0 && correct <= N);
    for (int i = 0; i < m->params.n; i++) {
        char gname[64];
        snprintf(gname, sizeof gname, "grad.%s", m->params.t[i]->name);
        cx_tensor *g = cx_st_get(f, gname);
        CHECK_MSG(g != NULL, "%s missing", gname);
        CHECK_MSG(m->params.t[i]->grad != NULL, "%s: no gradient", gname);
        if (g && m->params.t[i]->grad) {
            char what[96];
            snprintf(what, sizeof what, "%s %s", name, gname);
            cxt_allclose(m->params.t[i]->grad, CX_F(g), (long)g->numel, 1e-3, 2e-5, what);
        }
    }
    free(logits); free(att); free(att_s);
    cx_memn2n_free(m);
    cx_st_free(f);
}

static void test_fixture_pe_h1(void) { check_case("pe_h1"); }
static void test_fixture_pe_h3(void) { check_case("pe_h3"); }
static void test_fixture_bow_h1(void) { check_case("bow_h1"); }
static void test_fixture_bow_h3(void) { check_case("bow_h3"); }
static void test_fixture_linear_start(void) { check_case("pe_h3_linear"); }
static void test_fixture_no_temporal(void) { check_case("pe_h2_notemporal"); }
static void test_fixture_pe_code(void) { check_case("pe_code_h3"); }
static void test_fixture_pe_code_linear(void) { check_case("pe_code_h2_linear"); }

/* A small random problem: N questions, S slots of L words, vocabulary V. */
static void random_inputs(cx_rng *r, int N, int S, int L, int Lq, int V, cx_tensor **mem, cx_tensor **slots,
                          cx_tensor **q, cx_tensor **ans) {
    *mem = cx_tensor_new(CX_I32, CX_SHAPE(N, S, L));
    *slots = cx_tensor_new(CX_I32, CX_SHAPE(N));
    *q = cx_tensor_new(CX_I32, CX_SHAPE(N, Lq));
    *ans = cx_tensor_new(CX_I32, CX_SHAPE(N));
    for (int n = 0; n < N; n++) {
        int ns = 1 + (int)cx_rng_below(r, (uint32_t)S);
        CX_I32P(*slots)[n] = ns;
        for (int i = 0; i < ns; i++) {
            int len = (int)cx_rng_below(r, (uint32_t)L + 1);   /* 0: an empty memory */
            for (int j = 0; j < len; j++) CX_I32P(*mem)[((size_t)n * S + i) * L + j] = 1 + (int)cx_rng_below(r, (uint32_t)V - 1);
        }
        int lq = 1 + (int)cx_rng_below(r, (uint32_t)Lq);
        for (int j = 0; j < lq; j++) CX_I32P(*q)[(size_t)n * Lq + j] = 1 + (int)cx_rng_below(r, (uint32_t)V - 1);
        CX_I32P(*ans)[n] = 1 + (int)cx_rng_below(r, (uint32_t)V - 1);
    }
}

static void free4(cx_tensor *a, cx_tensor *b, cx_tensor *c, cx_tensor *d) {
    cx_tensor_free(a); cx_tensor_free(b); cx_tensor_free(c); cx_tensor_free(d);
}

/* Every gradient element against central differences of the loss (double
 * step on float weights). */
static void finite_difference(bool pe, int hops, bool linear, cx_memn2n_pe_form form) {
    cx_rng r = cx_rng_new(11);
    cx_tensor *mem, *slots, *q, *ans;
    random_inputs(&r, 3, 4, 4, 3, 9, &mem, &slots, &q, &ans);
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = 9; c.dim = 5; c.hops = hops; c.memory = 6; c.pe = pe; c.init_std = 0.4f; c.pe_form = form;
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 5, &m) == CX_OK);
    m->linear = linear;
    CHECK(cx_memn2n_loss(m, mem, slots, q, ans, true, NULL, NULL) == CX_OK);
    double worst = 0;
    const float h = 1e-2f;
    for (int i = 0; i < m->params.n; i++) {
        cx_tensor *p = m->params.t[i];
        for (int64_t j = 0; j < p->numel; j++) {
            float *w = &CX_F(p)[j], keep = *w;
            double lp, lm;
            *w = keep + h;
            cx_memn2n_loss(m, mem, slots, q, ans, false, &lp, NULL);
            *w = keep - h;
            cx_memn2n_loss(m, mem, slots, q, ans, false, &lm, NULL);
            *w = keep;
            double num = (lp - lm) / (2.0 * h), an = p->grad[j];
            double viol = fabs(num - an) / (2e-3 + 2e-2 * fabs(num));
            if (viol > worst) worst = viol;
            if (viol > 1) fprintf(stderr, "  %s[%ld]: analytic %g numeric %g\n", p->name, (long)j, an, num);
        }
    }
    CHECK_MSG(worst <= 1.0, "worst violation %g", worst);
    cx_memn2n_free(m);
    free4(mem, slots, q, ans);
}
static void test_fd_pe_h3(void) { finite_difference(true, 3, false, CX_MEMN2N_PE_PAPER); }
static void test_fd_pe_code_h3(void) { finite_difference(true, 3, false, CX_MEMN2N_PE_CODE); }
static void test_fd_bow_h1(void) { finite_difference(false, 1, false, CX_MEMN2N_PE_CODE); }
static void test_fd_linear(void) { finite_difference(true, 2, true, CX_MEMN2N_PE_CODE); }

/* The two forms' weights, from the forward of one word: a one-word memory
 * and query, A.0 = A.1 = e (all ones), no T: the logits give u_1 =
 * l_1(query) + l_j(memory). Also: the code's weights average 1, the paper's
 * about 1/2 (the factor behind the training difference). */
static void test_pe_forms(void) {
    for (int f = 0; f < 2; f++) {
        cx_memn2n_config c = cx_memn2n_defaults();
        c.vocab = 3; c.dim = 4; c.hops = 1; c.memory = 2; c.temporal = false; c.init_std = 0.0f;
        c.pe_form = f ? CX_MEMN2N_PE_PAPER : CX_MEMN2N_PE_CODE;
        cx_memn2n *m;
        CHECK(cx_memn2n_new(&c, 1, &m) == CX_OK);
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < 4; i++) CX_F(m->A[k])[4 + i] = 1.0f, CX_F(m->A[k])[8 + i] = 0.0f;
        /* memory: "w w w" (J = 3); query "x w" (J = 2; x = word 2 has a zero row) */
        cx_tensor *mem = cx_tensor_new(CX_I32, CX_SHAPE(1, 1, 3)), *q = cx_tensor_new(CX_I32, CX_SHAPE(1, 2));
        for (int j = 0; j < 3; j++) CX_I32P(mem)[j] = 1;
        CX_I32P(q)[0] = 2, CX_I32P(q)[1] = 1;
        float logits[3];
        CHECK(cx_memn2n_forward(m, mem, NULL, q, logits, NULL) == CX_OK);
        /* logits[1] = sum_k u_k (A.1 row 1 = ones) = sum_k [l_k2(J=2) + sum_j l_kj(J=3)] (one slot: p = 1) */
        double want = 0.0;
        for (int k = 1; k <= 4; k++) {
            for (int j = 1; j <= 3; j++)
                want += f ? (1.0 - j / 3.0) - (k / 4.0) * (1.0 - 2.0 * j / 3.0)
                          : 1.0 + 4.0 * (k - 2.5) * (j - 2.0) / 12.0;
            want += f ? (1.0 - 2 / 2.0) - (k / 4.0) * (1.0 - 2.0 * 2 / 2.0) : 1.0 + 4.0 * (k - 2.5) * (2 - 1.5) / 8.0;
        }
        CHECK_NEAR(logits[1], want, 1e-4);
        CHECK_NEAR(logits[1], f ? 9.0 : 16.0, 1e-4);   /* 16 weights: mean 1 (code), 9/16 (paper) */
        cx_tensor_free(mem); cx_tensor_free(q);
        cx_memn2n_free(m);
    }
    cx_memn2n_config c = cx_memn2n_defaults();
    CHECK(c.pe_form == CX_MEMN2N_PE_CODE);
    c.vocab = 3; c.pe_form = (cx_memn2n_pe_form)7;
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 1, &m) == CX_ERR_ARG && m == NULL && strstr(cx_last_error(), "pe_form 7"));
}

static void test_names_and_init(void) {
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = 30;
    cx_memn2n *m, *m2;
    CHECK(cx_memn2n_new(&c, 3, &m) == CX_OK);
    CHECK(m->params.n == 8);
    CHECK(!strcmp(m->params.t[0]->name, "A.0.weight") && !strcmp(m->params.t[3]->name, "A.3.weight"));
    CHECK(!strcmp(m->params.t[4]->name, "T.0.weight") && m->params.t[4]->shape[0] == 50);
    CHECK(m->A[1]->shape[0] == 30 && m->A[1]->shape[1] == 20);
    double s = 0, s2 = 0;
    long n = 0;
    bool nil_zero = true;
    for (int k = 0; k <= 3; k++) {
        for (int j = 0; j < 20; j++) nil_zero &= CX_F(m->A[k])[j] == 0.0f;
        for (int j = 20; j < 30 * 20; j++, n++) { s += CX_F(m->A[k])[j]; s2 += CX_F(m->A[k])[j] * CX_F(m->A[k])[j]; }
    }
    CHECK(nil_zero);
    CHECK_NEAR(sqrt(s2 / n - (s / n) * (s / n)), 0.1, 0.01);
    CHECK(cx_memn2n_new(&c, 3, &m2) == CX_OK);
    CHECK(!memcmp(m->A[2]->data, m2->A[2]->data, sizeof(float) * 600));   /* same seed, same weights */
    cx_memn2n_free(m2);
    c.hops = 0;
    CHECK(cx_memn2n_new(&c, 3, &m2) == CX_ERR_ARG && m2 == NULL && strstr(cx_last_error(), "hops"));
    c.hops = 3;
    c.vocab = 1;
    CHECK(cx_memn2n_new(&c, 3, &m2) == CX_ERR_ARG && strstr(cx_last_error(), "vocabulary"));
    cx_memn2n_free(m);
}

static void test_bad_input(void) {
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = 9; c.dim = 4; c.hops = 2; c.memory = 4;
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 1, &m) == CX_OK);
    cx_rng r = cx_rng_new(2);
    cx_tensor *mem, *slots, *q, *ans;
    random_inputs(&r, 3, 4, 3, 3, 9, &mem, &slots, &q, &ans);
    CHECK(cx_memn2n_loss(m, mem, slots, q, ans, false, NULL, NULL) == CX_OK);
    /* a story longer than the memory */
    cx_tensor *big = cx_tensor_new(CX_I32, CX_SHAPE(3, 5, 3));
    CHECK(cx_memn2n_loss(m, big, NULL, q, ans, false, NULL, NULL) == CX_ERR_SHAPE);
    CHECK_MSG(strstr(cx_last_error(), "5 sentences") && strstr(cx_last_error(), "holds 4"), "%s", cx_last_error());
    cx_tensor_free(big);
    /* a word id out of range */
    CX_I32P(mem)[(1 * 4 + 0) * 3 + 1] = 9;
    CHECK(cx_memn2n_forward(m, mem, slots, q, NULL, NULL) == CX_ERR_ARG);
    CHECK_MSG(strstr(cx_last_error(), "question 1, memory slot 0, word 1: id 9"), "%s", cx_last_error());
    CX_I32P(mem)[(1 * 4 + 0) * 3 + 1] = -1;
    CHECK(cx_memn2n_forward(m, mem, slots, q, NULL, NULL) == CX_ERR_ARG);
    CX_I32P(mem)[(1 * 4 + 0) * 3 + 1] = 2;
    CX_I32P(q)[2] = 100;
    CHECK(cx_memn2n_forward(m, mem, slots, q, NULL, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "query word"));
    CX_I32P(q)[2] = 1;
    CX_I32P(ans)[0] = 9;
    CHECK(cx_memn2n_loss(m, mem, slots, q, ans, false, NULL, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "answer id 9"));
    CX_I32P(ans)[0] = 1;
    /* a query of the wrong shape */
    cx_tensor *q2 = cx_tensor_new(CX_I32, CX_SHAPE(2, 3)), *q3 = cx_tensor_new(CX_I32, CX_SHAPE(3, 3, 1));
    CHECK(cx_memn2n_forward(m, mem, slots, q2, NULL, NULL) == CX_ERR_SHAPE);
    CHECK_MSG(strstr(cx_last_error(), "query has shape [2, 3]; expected [3, words]"), "%s", cx_last_error());
    CHECK(cx_memn2n_forward(m, mem, slots, q3, NULL, NULL) == CX_ERR_SHAPE && strstr(cx_last_error(), "query"));
    cx_tensor_free(q2);
    cx_tensor_free(q3);
    /* slots beyond the memory rows, float ids */
    CX_I32P(slots)[2] = 5;
    CHECK(cx_memn2n_forward(m, mem, slots, q, NULL, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "slots"));
    CX_I32P(slots)[2] = 1;
    cx_tensor *fm = cx_tensor_new(CX_F32, CX_SHAPE(3, 4, 3));
    CHECK(cx_memn2n_forward(m, fm, slots, q, NULL, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "I32"));
    cx_tensor_free(fm);
    /* a memory of the wrong rank */
    cx_tensor *m2 = cx_tensor_new(CX_I32, CX_SHAPE(3, 12));
    CHECK(cx_memn2n_forward(m, m2, NULL, q, NULL, NULL) == CX_ERR_SHAPE && strstr(cx_last_error(), "memory has shape"));
    cx_tensor_free(m2);
    CHECK(cx_memn2n_loss(m, mem, slots, q, ans, false, NULL, NULL) == CX_OK);
    cx_memn2n_free(m);
    free4(mem, slots, q, ans);
}

/* Slots NULL: the rows through the last non-empty one (row 0 the newest). */
static void test_default_slots(void) {
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = 9; c.dim = 4; c.hops = 2; c.memory = 5;
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 4, &m) == CX_OK);
    cx_tensor *mem = cx_tensor_new(CX_I32, CX_SHAPE(1, 5, 2)), *q = cx_tensor_new(CX_I32, CX_SHAPE(1, 2));
    cx_tensor *sl = cx_tensor_new(CX_I32, CX_SHAPE(1));
    int32_t x[10] = {1, 2, 0, 0, 3, 0, 0, 0, 0, 0};   /* rows 0, 2 used, row 1 empty */
    memcpy(mem->data, x, sizeof x);
    CX_I32P(q)[0] = 4;
    CX_I32P(sl)[0] = 3;
    float a1[2 * 5], a2[2 * 5], l1[9], l2[9];
    CHECK(cx_memn2n_forward(m, mem, NULL, q, l1, a1) == CX_OK);
    CHECK(cx_memn2n_forward(m, mem, sl, q, l2, a2) == CX_OK);
    CHECK(!memcmp(a1, a2, sizeof a1) && !memcmp(l1, l2, sizeof l1));
    CHECK(a1[3] == 0.0f && a1[4] == 0.0f && a1[1] > 0.0f);
    CHECK_NEAR(a1[0] + a1[1] + a1[2], 1.0, 1e-6);
    cx_memn2n_free(m);
    cx_tensor_free(mem); cx_tensor_free(q); cx_tensor_free(sl);
}

static void test_save_load(void) {
    char dir[] = "/tmp/cx_memn2n_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], bad[128];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = 11; c.dim = 6; c.hops = 2; c.memory = 7; c.pe = false; c.pe_form = CX_MEMN2N_PE_PAPER;
    cx_memn2n *m, *m2;
    CHECK(cx_memn2n_new(&c, 9, &m) == CX_OK);
    const char *k[] = {"cortex.vocab"}, *v[] = {"<nil> a b"};
    CHECK(cx_memn2n_save(path, m, k, v, 1) == CX_OK);
    cx_st_file *f;
    CHECK(cx_memn2n_load(path, &m2, &f) == CX_OK);
    if (m2) {
        CHECK(m2->cfg.vocab == 11 && m2->cfg.dim == 6 && m2->cfg.hops == 2 && m2->cfg.memory == 7 && !m2->cfg.pe &&
              m2->cfg.temporal && m2->cfg.pe_form == CX_MEMN2N_PE_PAPER);
        CHECK(!strcmp(cx_st_meta(f, "memn2n.pe_form"), "paper"));
        for (int i = 0; i < m->params.n; i++)
            CHECK(!memcmp(m->params.t[i]->data, m2->params.t[i]->data, sizeof(float) * (size_t)m->params.t[i]->numel));
        CHECK(!strcmp(cx_st_meta(f, "cortex.vocab"), "<nil> a b"));
        cx_memn2n_free(m2);
        cx_st_free(f);
    }
    /* a file missing a tensor, a file of another model */
    cx_tensor *ts[3] = {m->A[0], m->A[1], m->A[2]};
    const char *names[3] = {"A.0.weight", "A.1.weight", "A.2.weight"};
    const char *mk[] = {"cortex.arch", "memn2n.vocab", "memn2n.dim", "memn2n.hops", "memn2n.memory", "memn2n.pe",
                        "memn2n.temporal"};
    const char *mv[] = {"memn2n", "11", "6", "2", "7", "0", "1"};
    CHECK(cx_st_save(bad, ts, names, 3, mk, mv, 7) == CX_OK);
    CHECK(cx_memn2n_load(bad, &m2, NULL) == CX_ERR_FORMAT && m2 == NULL);
    CHECK_MSG(strstr(cx_last_error(), "3 tensors"), "%s", cx_last_error());
    mv[0] = "mlp";
    CHECK(cx_st_save(bad, ts, names, 3, mk, mv, 7) == CX_OK);
    CHECK(cx_memn2n_load(bad, &m2, NULL) == CX_ERR_FORMAT && strstr(cx_last_error(), "not a MemN2N"));
    CHECK(cx_memn2n_load("/nonexistent/m.safetensors", &m2, NULL) == CX_ERR_IO);
    /* a file from before pe_form: the paper's form; a bad form: named */
    cx_tensor *all[6] = {m->A[0], m->A[1], m->A[2], m->T[0], m->T[1], m->T[2]};
    const char *all_names[6] = {"A.0.weight", "A.1.weight", "A.2.weight", "T.0.weight", "T.1.weight", "T.2.weight"};
    const char *mk8[] = {"cortex.arch", "memn2n.vocab", "memn2n.dim", "memn2n.hops", "memn2n.memory", "memn2n.pe",
                         "memn2n.temporal", "memn2n.pe_form"};
    const char *mv8[] = {"memn2n", "11", "6", "2", "7", "1", "1", "code"};
    CHECK(cx_st_save(bad, all, all_names, 6, mk8, mv8, 7) == CX_OK);
    CHECK(cx_memn2n_load(bad, &m2, NULL) == CX_OK && m2 && m2->cfg.pe && m2->cfg.pe_form == CX_MEMN2N_PE_PAPER);
    cx_memn2n_free(m2);
    CHECK(cx_st_save(bad, all, all_names, 6, mk8, mv8, 8) == CX_OK);
    CHECK(cx_memn2n_load(bad, &m2, NULL) == CX_OK && m2 && m2->cfg.pe_form == CX_MEMN2N_PE_CODE);
    cx_memn2n_free(m2);
    mv8[7] = "fancy";
    CHECK(cx_st_save(bad, all, all_names, 6, mk8, mv8, 8) == CX_OK);
    CHECK(cx_memn2n_load(bad, &m2, NULL) == CX_ERR_FORMAT && m2 == NULL);
    CHECK_MSG(strstr(cx_last_error(), "memn2n.pe_form is 'fancy'"), "%s", cx_last_error());
    unlink(path);
    unlink(bad);
    rmdir(dir);
    cx_memn2n_free(m);
}

/* Task 1, 1000 generated questions, a short run: a working model gets most
 * test questions right; chance is about 5/6 wrong. */
static void tensors_of(int n, uint64_t seed, cx_babi_vocab *v, cx_tensor **mem, cx_tensor **q, cx_tensor **a) {
    char *text;
    size_t len;
    cx_babi_set *s = NULL;
    CHECK(cx_babi_generate(1, n, seed, &text, &len) == CX_OK);
    CHECK(cx_babi_parse(text, len, "task1", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    free(text);
    cx_babi_tensor_opts o = cx_babi_tensor_defaults();
    o.memory = 50;
    o.sentence_len = 6;
    o.recent_first = true;
    CHECK(cx_babi_tensors(s, 0, s->n_questions, &o, mem, q, a) == CX_OK);
    cx_babi_set_free(s);
}

static bool count_linear(const cx_memn2n_epoch *e, void *user) {
    int *n = user;
    if (e->linear) {
        CHECK(e->epoch == *n + 1 && fabs(e->lr - 0.005) < 1e-12);   /* no annealing, ls_lr_factor 0.5 */
        ++*n;
    }
    return true;
}

static void test_train_task1(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_tensor *mem, *q, *a, *tm, *tq, *ta;
    tensors_of(1000, 7, v, &mem, &q, &a);
    tensors_of(1000, 8, v, &tm, &tq, &ta);
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = cx_babi_vocab_size(v);
    cx_memn2n *m;
    CHECK(cx_memn2n_new(&c, 1, &m) == CX_OK);
    double before, after, loss;
    CHECK(cx_memn2n_evaluate(m, tm, NULL, tq, ta, NULL, &before) == CX_OK);
    cx_memn2n_train_opts o = cx_memn2n_train_defaults();
    o.epochs = 15;
    o.linear_start = true;
    o.random_noise = 0.1f;
    o.seed = 3;
    cx_memn2n_epoch last;
    CHECK(cx_memn2n_train(m, mem, NULL, q, a, &o, &last) == CX_OK);
    CHECK(!m->linear && last.epoch == 15);
    CHECK(cx_memn2n_evaluate(m, tm, NULL, tq, ta, &loss, &after) == CX_OK);
    printf("  task 1, 15 epochs: test error %.1f%% (untrained %.1f%%), loss %.3f\n", 100 * after, 100 * before, loss);
    CHECK_MSG(before > 0.6, "untrained error %g", before);
    CHECK_MSG(after < 0.10, "test error %g after 15 epochs", after);
    cx_memn2n_free(m);
    /* Facebook's code's linear start: a fixed number of extra epochs without softmax */
    int linear_epochs = 0;
    o.epochs = 3;
    o.ls_epochs = 2;
    o.on_epoch = count_linear;
    o.user = &linear_epochs;
    CHECK(cx_memn2n_new(&c, 2, &m) == CX_OK);
    CHECK(cx_memn2n_train(m, mem, NULL, q, a, &o, &last) == CX_OK);
    CHECK(last.epoch == 5 && !last.linear && linear_epochs == 2 && !m->linear);
    cx_memn2n_free(m);
    cx_tensor_free(mem); cx_tensor_free(q); cx_tensor_free(a);
    cx_tensor_free(tm); cx_tensor_free(tq); cx_tensor_free(ta);
    cx_babi_vocab_free(v);
}

int main(void) {
    RUN(test_fixture_pe_h1);
    RUN(test_fixture_pe_h3);
    RUN(test_fixture_bow_h1);
    RUN(test_fixture_bow_h3);
    RUN(test_fixture_linear_start);
    RUN(test_fixture_no_temporal);
    RUN(test_fixture_pe_code);
    RUN(test_fixture_pe_code_linear);
    RUN(test_fd_pe_h3);
    RUN(test_fd_pe_code_h3);
    RUN(test_pe_forms);
    RUN(test_fd_bow_h1);
    RUN(test_fd_linear);
    RUN(test_names_and_init);
    RUN(test_bad_input);
    RUN(test_default_slots);
    RUN(test_save_load);
    RUN(test_train_task1);
    TEST_END();
}
