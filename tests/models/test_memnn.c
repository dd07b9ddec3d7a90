/* The strongly supervised memory network (cortex/memnn.h): finite-difference
 * gradients of the margin ranking loss, a short bAbI task-1 training run that
 * must find the supporting facts and answer, errors naming the argument. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

typedef struct {
    cx_memnn *m;
    cx_tensor *mem, *q, *a;
    int *sup;
} gc_ctx;

static cx_tensor *gc_fn(cx_tensor **x, int n, void *user) {
    (void)x, (void)n;
    gc_ctx *c = user;
    return cx_memnn_loss(c->m, c->mem, c->q, c->sup, c->a, 5.0f);   /* a wide margin: every hinge active */
}

static void gradcheck(void) {
    enum { V = 9, M = 4, L = 3, B = 2 };
    cx_rng r = cx_rng_new(3);
    cx_memnn *m = cx_memnn_new(V, 4, 2, M, true, &r);
    CHECK(m != NULL);
    if (!m) return;
    /* row 3 of example 1 is an empty slot (masked: never a candidate); no
     * other padding word, since row 0 of each table is padding and gets no
     * gradient by design (PyTorch's padding_idx) */
    int32_t mem[B * M * L] = {1, 2, 3, 4, 5, 6, 6, 7, 8, 2, 2, 5,
                              3, 1, 4, 8, 8, 2, 7, 6, 1, 0, 0, 0};
    int32_t q[B * L] = {1, 5, 4, 7, 2, 3}, a[B] = {4, 6};
    int sup[B * 2] = {2, 0, 1, 2};
    gc_ctx c = {m, cx_from_i32(mem, CX_SHAPE(B, M, L)), cx_from_i32(q, CX_SHAPE(B, L)), cx_from_i32(a, CX_SHAPE(B)),
                sup};
    cx_tensor *in[2] = {cx_module_tensor(m->root, "O.weight"), cx_module_tensor(m->root, "R.weight")};
    CHECK(in[0] && in[1] && in[0]->shape[0] == 4 * V + 3 * M + 1 + 4 * V * V && in[1]->shape[0] == 4 * V + 4 * V * V);
    for (int i = 0; i < 2; i++) cx_zero_grad(in[i]);
    double worst = cx_gradcheck(gc_fn, in, 2, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "memnn gradcheck: worst violation ratio %g", worst);
    /* the empty slot is never predicted */
    int ans[B], facts[B * 2];
    cx_memnn_predict(m, c.mem, c.q, ans, facts);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < 2; h++) CHECK(facts[b * 2 + h] >= 0 && !(b == 1 && facts[b * 2 + h] == 3));
    cx_memnn_free(m);
}

static void babi_task1(void) {
    char *tr_text, *te_text;
    size_t tl, el;
    CHECK(cx_babi_generate_split(1, CX_BABI_TRAIN, 300, 4, &tr_text, &tl) == CX_OK);
    CHECK(cx_babi_generate_split(1, CX_BABI_TEST, 200, 4, &te_text, &el) == CX_OK);
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *tr = NULL, *te = NULL;
    CHECK(cx_babi_parse(tr_text, tl, "train", v, CX_BABI_UNK_ADD, &tr) == CX_OK);
    CHECK(cx_babi_parse(te_text, el, "test", v, CX_BABI_UNK_ADD, &te) == CX_OK);
    free(tr_text), free(te_text);
    if (!tr || !te) return;
    const int M = 20, L = 8;
    cx_babi_tensor_opts o = cx_babi_tensor_defaults();
    o.memory = M;
    o.sentence_len = L;
    cx_tensor *mtr, *qtr, *atr, *mte, *qte, *ate;
    CHECK(cx_babi_tensors(tr, 0, tr->n_questions, &o, &mtr, &qtr, &atr) == CX_OK);
    CHECK(cx_babi_tensors(te, 0, te->n_questions, &o, &mte, &qte, &ate) == CX_OK);
    int *sup = malloc(sizeof(int) * (size_t)tr->n_questions);
    for (int q = 0; q < tr->n_questions; q++) sup[q] = tr->questions[q].support[0];   /* task-1 stories are short */
    cx_rng r = cx_rng_new(5);
    cx_memnn *m = cx_memnn_new(cx_babi_vocab_size(v), 30, 1, M, false, &r);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->root, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.005;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    const int n = tr->n_questions, Bt = 30;
    for (int e = 0; e < 15; e++)
        for (int i0 = 0; i0 < n; i0 += Bt) {
            int b = n - i0 < Bt ? n - i0 : Bt;
            cx_tensor *mb = cx_from_i32(CX_I32P(mtr) + (size_t)i0 * M * L, CX_SHAPE(b, M, L));
            cx_tensor *qb = cx_from_i32(CX_I32P(qtr) + (size_t)i0 * L, CX_SHAPE(b, L));
            cx_tensor *ab = cx_from_i32(CX_I32P(atr) + i0, CX_SHAPE(b));
            cx_optim_zero_grad(opt);
            cx_backward(cx_memnn_loss(m, mb, qb, sup + i0, ab, 0.1f));
            cx_optim_step(opt);
            cx_step_reset();
        }
    int *ans = malloc(sizeof(int) * (size_t)te->n_questions), *facts = malloc(sizeof(int) * (size_t)te->n_questions);
    cx_memnn_predict(m, mte, qte, ans, facts);
    int right = 0, found = 0;
    for (int q = 0; q < te->n_questions; q++) {
        right += ans[q] == CX_I32P(ate)[q];
        found += facts[q] == te->questions[q].support[0];
    }
    printf("  task 1, 300 training questions: test answers %d/%d right, supporting facts %d/%d found\n", right,
           te->n_questions, found, te->n_questions);
    CHECK_MSG(right >= 0.9 * te->n_questions, "only %d of %d answers right", right, te->n_questions);
    CHECK_MSG(found >= 0.9 * te->n_questions, "only %d of %d supporting facts found", found, te->n_questions);
    /* errors */
    int bad[1] = {M + 3};
    cx_tensor *m1 = cx_from_i32(CX_I32P(mtr), CX_SHAPE(1, M, L)), *q1 = cx_from_i32(CX_I32P(qtr), CX_SHAPE(1, L)),
              *a1 = cx_from_i32(CX_I32P(atr), CX_SHAPE(1));
    EXPECT_FATAL(cx_memnn_loss(m, m1, q1, bad, a1, 0.1f), "supporting fact", "outside the memory");
    bad[0] = M - 1;   /* an empty slot: the first question has 2 facts */
    EXPECT_FATAL(cx_memnn_loss(m, m1, q1, bad, a1, 0.1f), "empty slot");
    EXPECT_FATAL(cx_memnn_loss(m, cx_from_i32(CX_I32P(mtr), CX_SHAPE(1, M - 1, L)), q1, sup, a1, 0.1f),
                 "memory has 19 slots, the model 20");
    int32_t big[1] = {1000};
    EXPECT_FATAL(cx_memnn_loss(m, m1, q1, sup, cx_from_i32(big, CX_SHAPE(1)), 0.1f), "answer", "word id 1000");
    CHECK(cx_memnn_new(10, 4, 4, 5, false, &r) == NULL && strstr(cx_last_error(), "hops"));
    CHECK(cx_memnn_new(CX_MEMNN_BIGRAM_MAX_VOCAB + 1, 4, 1, 5, true, &r) == NULL && strstr(cx_last_error(), "bigrams"));
    free(ans), free(facts), free(sup);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_memnn_free(m);
    cx_tensor_free(mtr), cx_tensor_free(qtr), cx_tensor_free(atr);
    cx_tensor_free(mte), cx_tensor_free(qte), cx_tensor_free(ate);
    cx_babi_set_free(tr), cx_babi_set_free(te), cx_babi_vocab_free(v);
}

int main(void) {
    RUN(gradcheck);
    RUN(babi_task1);
    TEST_END();
}
