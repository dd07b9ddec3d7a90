/* The DNC reading bAbI stories word by word (examples/dnc_babi.c's setting,
 * cortex/babi.h cx_babi_sequences + cortex/dnc.h): a short fixed-seed
 * training (300 Adam steps, about 1.5 s of CPU) of a tiny model (embedding
 * 16, LSTM 32, memory 8 x 8, one read head) on 80 generated task-1 stories
 * cut after their first question ("Where is X?" after two moves) must answer
 * 200 held-out questions well above chance: measured 0.56 with a chance (the
 * best constant answer) of 0.2; the same training with the input zeroed
 * stays at chance, so the threshold is one a reader that does not see the
 * story misses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* keep each story up to its answers-th answer step: targets after it become
 * -100, T shrinks to the longest such prefix; returns the new T */
static int cut_after(cx_tensor *tok, cx_tensor *tgt, int answers) {
    const int T = tok->shape[0], n = tok->shape[1];
    int Tn = 1;
    for (int b = 0; b < n; b++) {
        int seen = 0;
        for (int t = 0; t < T; t++) {
            int32_t *g = &CX_I32P(tgt)[t * n + b];
            if (seen >= answers) {
                *g = -100;
                continue;
            }
            if (*g >= 0 && ++seen == answers && t + 1 > Tn) Tn = t + 1;
        }
    }
    return Tn;
}

/* columns idx[0..b) of the first Tn steps as step tensors */
static void batch_of(const cx_tensor *tok, const cx_tensor *tgt, int Tn, const int *idx, int b, cx_tensor **bt,
                     cx_tensor **bg) {
    const int n = tok->shape[1];
    *bt = cx_empty(CX_I32, CX_SHAPE(Tn, b));
    *bg = cx_empty(CX_I32, CX_SHAPE(Tn, b));
    for (int t = 0; t < Tn; t++)
        for (int k = 0; k < b; k++) {
            CX_I32P(*bt)[t * b + k] = CX_I32P(tok)[t * n + idx[k]];
            CX_I32P(*bg)[t * b + k] = CX_I32P(tgt)[t * n + idx[k]];
        }
}

static double accuracy(cx_tensor *logits, const cx_tensor *tgt) {
    const int V = logits->shape[2];
    long right = 0, asked = 0;
    for (long i = 0; i < (long)tgt->numel; i++) {
        const int32_t g = CX_I32P(tgt)[i];
        if (g < 0) continue;
        const float *y = CX_F(logits) + i * V;
        int best = 0;
        for (int v = 1; v < V; v++)
            if (y[v] > y[best]) best = v;
        right += best == g;
        asked++;
    }
    return asked ? (double)right / asked : 0;
}

/* mode 0: the model as is; 1: the input zeroed (a reader that cannot see
 * the story); returns the test accuracy, *chance the share of the test
 * questions the most frequent test answer takes (the best constant answer) */
static double train_and_test(int mode, int steps, double *chance) {
    cx_seed(7);
    char *trt = NULL, *tet = NULL;
    size_t trn = 0, ten = 0;
    CHECK(cx_babi_generate_split(1, CX_BABI_TRAIN, 400, 5, &trt, &trn) == CX_OK);
    CHECK(cx_babi_generate_split(1, CX_BABI_TEST, 1000, 5, &tet, &ten) == CX_OK);
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *tr = NULL, *te = NULL;
    CHECK(trt && cx_babi_parse(trt, trn, "train", v, CX_BABI_UNK_ADD, &tr) == CX_OK);
    CHECK(tet && cx_babi_parse(tet, ten, "test", v, CX_BABI_UNK_ADD, &te) == CX_OK);
    free(trt), free(tet);
    double acc = 0;
    if (!tr || !te) goto out;
    const int V = cx_babi_vocab_size(v), S = tr->n_stories, St = te->n_stories;
    cx_tensor *tok, *tgt, *ttok, *ttgt;
    CHECK(cx_babi_sequences(tr, 0, S, V, &tok, &tgt, NULL) == CX_OK);
    CHECK(cx_babi_sequences(te, 0, St, V, &ttok, &ttgt, NULL) == CX_OK);
    const int T = cut_after(tok, tgt, 1), Tt = cut_after(ttok, ttgt, 1);
    /* chance: the best constant answer on the test questions */
    long count[64] = {0}, best = 0, asked = 0;
    for (long i = 0; i < (long)ttgt->numel; i++)
        if (CX_I32P(ttgt)[i] >= 0 && CX_I32P(ttgt)[i] < 64) count[CX_I32P(ttgt)[i]]++, asked++;
    for (int k = 1; k < 64; k++)
        if (count[k] > count[best]) best = k;
    *chance = (double)count[best] / (double)asked;

    cx_module *emb = cx_embedding_new(V + CX_BABI_SEQ_EXTRA, 16, -1);
    cx_dnc_config c = {16, V, 32, 8, 8, 1};
    cx_module *m = cx_dnc_new(&c);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(emb, &ps);
    cx_module_params(m, &ps);
    cx_adam_opts o = cx_adam_defaults();
    o.lr = 5e-3;
    cx_optim *opt = cx_adam_new(&ps, &o);
    cx_rng rng = cx_rng_new(11);
    int idx[16];
    for (int step = 0; step < steps; step++) {
        for (int k = 0; k < 16; k++) idx[k] = (int)cx_rng_below(&rng, (uint32_t)S);
        cx_tensor *bt, *bg;
        batch_of(tok, tgt, T, idx, 16, &bt, &bg);
        cx_tensor *x = cx_module_forward(emb, bt);
        if (mode == 1) x = cx_mul_scalar(x, 0.0f);
        cx_tensor *loss = cx_seq_cross_entropy(cx_dnc_forward(m, x, NULL), bg, NULL, false, CX_REDUCE_MEAN);
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        cx_clip_grad_norm(&ps, 10.0f);
        cx_optim_step(opt);
        cx_step_reset();
    }
    cx_no_grad_begin();
    int all[512];
    for (int k = 0; k < St && k < 512; k++) all[k] = k;
    cx_tensor *bt, *bg;
    batch_of(ttok, ttgt, Tt, all, St < 512 ? St : 512, &bt, &bg);
    cx_tensor *x = cx_module_forward(emb, bt);
    if (mode == 1) x = cx_mul_scalar(x, 0.0f);
    acc = accuracy(cx_dnc_forward(m, x, NULL), bg);
    cx_no_grad_end();
    cx_step_reset();
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m), cx_module_free(emb);
    cx_tensor_free(tok), cx_tensor_free(tgt), cx_tensor_free(ttok), cx_tensor_free(ttgt);
out:
    cx_babi_set_free(tr), cx_babi_set_free(te), cx_babi_vocab_free(v);
    return acc;
}

static void test_learns_task1(void) {
    double chance = 0, t0 = cx_now();
    const double acc = train_and_test(0, 300, &chance);
    printf("  DNC on task 1 (first questions): test accuracy %.3f, chance %.3f (%.1f s)\n", acc, chance,
           cx_now() - t0);
    CHECK_MSG(chance > 0.1 && chance < 0.35, "chance %.3f", chance);
    CHECK_MSG(acc > 0.45, "test accuracy %.3f: not learning (chance %.3f)", acc, chance);
}

static void test_blind_reader_stays_at_chance(void) {
    double chance = 0;
    const double acc = train_and_test(1, 100, &chance);
    printf("  blind DNC: test accuracy %.3f, chance %.3f\n", acc, chance);
    CHECK_MSG(acc < chance + 0.05, "a reader without input reached %.3f (chance %.3f)", acc, chance);
}

int main(void) {
    RUN(test_learns_task1);
    RUN(test_blind_reader_stays_at_chance);
    TEST_END();
}
