/* Child-sum Tree-LSTM vs a sequential LSTM on nested arithmetic modulo 10.
 *
 * Each example is a random expression of k operators over digits, with + and
 * * modulo 10, e.g. "(3+(4*2))*5" (value 5: the class, 0-9). Both operators
 * are commutative, so a child-sum Tree-LSTM (which cannot tell its children
 * apart) can represent the task. The Tree-LSTM reads the parse tree (leaves:
 * the digits, internal nodes: their operator; the root's h goes to a linear
 * classifier); the LSTM reads the fully parenthesised token string (4k - 1
 * tokens) and classifies from its last h. Both train on k = 1 .. train_max
 * operators and are tested on k = 1 .. test_max (longer than seen).
 *
 *   ./treelstm [seed] [steps] [png]      (defaults 1, 1500, out/treelstm.png)
 *
 * Prints a table of test accuracy per k and a line
 *   RESULT treelstm seed=S steps=N tree=a1,a2,.. lstm=b1,b2,.. majority=c1,c2,..
 * and draws the accuracies against k (an empty png: no picture). A picture
 * that cannot be written: a message and exit status 1.
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TOK_PLUS = 10, TOK_TIMES = 11, TOK_OPEN = 12, TOK_CLOSE = 13, VOCAB = 14 };
#define TRAIN_MAX 4
#define TEST_MAX 8
#define EMB 32
#define HID 64
#define BATCH 64
#define MAXN 64  /* nodes of one expression: 2k + 1 */
#define MAXT 64  /* tokens: 4k - 1 */

typedef struct {
    int n, T;
    int32_t tok[MAXN], parent[MAXN]; /* nodes: token and parent (-1 at the root) */
    int32_t seq[MAXT];
    int value;
} expr;

static int gen(expr *e, int k, int parent, bool root) {
    const int j = e->n++;
    e->parent[j] = parent;
    if (k == 0) {
        const int d = (int)cx_rand_below(10);
        e->tok[j] = d;
        e->seq[e->T++] = d;
        return d;
    }
    const int a = (int)cx_rand_below((uint32_t)k), op = (int)cx_rand_below(2);
    e->tok[j] = op ? TOK_TIMES : TOK_PLUS;
    if (!root) e->seq[e->T++] = TOK_OPEN;
    const int l = gen(e, a, j, false);
    e->seq[e->T++] = e->tok[j];
    const int r = gen(e, k - 1 - a, j, false);
    if (!root) e->seq[e->T++] = TOK_CLOSE;
    return op ? (l * r) % 10 : (l + r) % 10;
}

static void make(expr *e, int k) {
    memset(e, 0, sizeof *e);
    e->value = gen(e, k, -1, true);
}

typedef struct {
    cx_module *emb, *cell, *fc; /* cell: the Tree-LSTM or the LSTM */
    bool tree;
} model;

/* logits [B, 10] of a batch of expressions with the same k */
static cx_tensor *forward(model *m, const expr *ex, int B, cx_tree_batch **trees) {
    if (m->tree) {
        int n = 0;
        int32_t *tok = malloc(sizeof *tok * (size_t)B * MAXN), *par = malloc(sizeof *par * (size_t)B * MAXN);
        for (int b = 0; b < B; b++) {
            for (int j = 0; j < ex[b].n; j++) {
                tok[n + j] = ex[b].tok[j];
                par[n + j] = ex[b].parent[j] < 0 ? -1 : n + ex[b].parent[j];
            }
            n += ex[b].n;
        }
        *trees = cx_tree_batch_from_parents(n, par);
        cx_tensor *x = cx_module_forward(m->emb, cx_from_i32(tok, (const int[]){n}, 1));
        free(tok);
        free(par);
        cx_rnn_out o = cx_treelstm_forward(m->cell, *trees, x); /* roots in node order = batch order */
        return cx_module_forward(m->fc, o.h);
    }
    const int T = ex[0].T;
    int32_t *ids = malloc(sizeof *ids * (size_t)T * B);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) ids[t * B + b] = ex[b].seq[t];
    cx_tensor *x = cx_module_forward(m->emb, cx_from_i32(ids, (const int[]){T, B}, 2));
    free(ids);
    cx_rnn_out o = cx_rnn_forward(m->cell, x, NULL, NULL);
    return cx_module_forward(m->fc, cx_reshape(o.h, (const int[]){B, HID}, 2));
}

static void train(model *m, int steps, uint64_t seed) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->emb, &ps);
    cx_module_params(m->cell, &ps);
    cx_module_params(m->fc, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 3e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_rng data = cx_rng_new(seed * 7919 + 1);
    static expr ex[BATCH];
    int32_t y[BATCH];
    double run_loss = 0;
    for (int s = 1; s <= steps; s++) {
        cx_rng *prev = cx_rng_use(&data);
        const int k = 1 + (int)cx_rand_below(TRAIN_MAX);
        for (int b = 0; b < BATCH; b++) make(&ex[b], k), y[b] = ex[b].value;
        cx_rng_use(prev);
        cx_tree_batch *tb = NULL;
        cx_tensor *loss = cx_cross_entropy(forward(m, ex, BATCH, &tb), cx_from_i32(y, (const int[]){BATCH}, 1),
                                           CX_REDUCE_MEAN);
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        cx_optim_step(opt);
        run_loss += cx_item(loss);
        cx_tree_batch_free(tb);
        cx_step_reset();
        if (s % 500 == 0) {
            printf("  %s step %5d  loss %.3f\n", m->tree ? "tree-lstm" : "lstm     ", s, run_loss / 500);
            fflush(stdout);
            run_loss = 0;
        }
    }
    cx_optim_free(opt);
    cx_params_free(&ps);
}

/* test accuracy of every k on the same expressions for both models */
#define NTEST 1000
static void evaluate(model *tree, model *seq, double *acc_tree, double *acc_seq, double *majority, uint64_t seed) {
    cx_rng data = cx_rng_new(seed * 104729 + 12345); /* test expressions: a stream of their own */
    static expr ex[100];
    cx_no_grad_begin();
    cx_set_training(false);
    for (int k = 1; k <= TEST_MAX; k++) {
        int right_t = 0, right_s = 0, counts[10] = {0};
        for (int done = 0; done < NTEST; done += 100) {
            cx_rng *prev = cx_rng_use(&data);
            for (int b = 0; b < 100; b++) make(&ex[b], k), counts[ex[b].value]++;
            cx_rng_use(prev);
            cx_tree_batch *tb = NULL;
            cx_tensor *pt = cx_argmax(forward(tree, ex, 100, &tb), 1), *pq = cx_argmax(forward(seq, ex, 100, NULL), 1);
            for (int b = 0; b < 100; b++) {
                right_t += CX_I32P(pt)[b] == ex[b].value;
                right_s += CX_I32P(pq)[b] == ex[b].value;
            }
            cx_tree_batch_free(tb);
            cx_step_reset();
        }
        int most = 0;
        for (int c = 0; c < 10; c++) most = counts[c] > most ? counts[c] : most;
        acc_tree[k - 1] = (double)right_t / NTEST;
        acc_seq[k - 1] = (double)right_s / NTEST;
        majority[k - 1] = (double)most / NTEST;
    }
    cx_set_training(true);
    cx_no_grad_end();
}

int main(int argc, char **argv) {
    const uint64_t seed = argc > 1 ? (uint64_t)strtoull(argv[1], NULL, 10) : 1;
    const int steps = argc > 2 ? atoi(argv[2]) : 1500;
    const char *png = argc > 3 ? argv[3] : "out/treelstm.png";
    if (argc <= 3 && cx_mkdirs("out") != CX_OK) {
        fprintf(stderr, "treelstm: %s\n", cx_last_error());
        return 1;
    }
    cx_seed(seed);
    model tree = {cx_embedding_new(VOCAB, EMB, -1), cx_treelstm_new(EMB, HID, true), cx_linear_new(HID, 10, true), true};
    model seq = {cx_embedding_new(VOCAB, EMB, -1), cx_lstm_new(EMB, HID, NULL), cx_linear_new(HID, 10, true), false};
    printf("nested + and * modulo 10: train k = 1..%d operators, test k = 1..%d; %d steps of %d, seed %llu\n",
           TRAIN_MAX, TEST_MAX, steps, BATCH, (unsigned long long)seed);
    expr demo;
    cx_rng dr = cx_rng_new(seed);
    cx_rng *prev = cx_rng_use(&dr);
    make(&demo, 3);
    cx_rng_use(prev);
    printf("example: ");
    for (int t = 0; t < demo.T; t++) putchar(demo.seq[t] < 10 ? '0' + demo.seq[t] : "+*()"[demo.seq[t] - 10]);
    printf(" = %d (mod 10)\n", demo.value);
    double t0 = cx_now();
    train(&tree, steps, seed);
    double t1 = cx_now();
    train(&seq, steps, seed);
    double t2 = cx_now();
    printf("training time: tree-lstm %.1f s, lstm %.1f s\n", t1 - t0, t2 - t1);
    double at[TEST_MAX], as[TEST_MAX], maj[TEST_MAX], ks[TEST_MAX];
    evaluate(&tree, &seq, at, as, maj, seed);
    printf("\n operators | tree-lstm |   lstm   | majority class\n");
    for (int k = 1; k <= TEST_MAX; k++)
        printf(" %6d%s  |  %6.3f   |  %6.3f  |  %6.3f\n", k, k > TRAIN_MAX ? "*" : " ", at[k - 1], as[k - 1],
               maj[k - 1]);
    printf(" (* longer than any training expression; %d test expressions per row)\n", NTEST);
    printf("RESULT treelstm seed=%llu steps=%d", (unsigned long long)seed, steps);
    const char *lab[3] = {"tree", "lstm", "majority"};
    double *v[3] = {at, as, maj};
    for (int q = 0; q < 3; q++) {
        printf(" %s=", lab[q]);
        for (int k = 0; k < TEST_MAX; k++) printf("%s%.3f", k ? "," : "", v[q][k]);
    }
    printf("\n");
    for (int k = 0; k < TEST_MAX; k++) ks[k] = k + 1;
    int rc = 0;
    if (png && *png) {
        cx_line_series s[3] = {{"Tree-LSTM", ks, at, TEST_MAX},
                               {"LSTM", ks, as, TEST_MAX},
                               {"majority class", ks, maj, TEST_MAX}};
        cx_lines_opts o = cx_lines_defaults();
        char title[160];
        snprintf(title, sizeof title, "Nested + and x mod 10: trained on 1-%d operators, %d steps, seed %llu",
                 TRAIN_MAX, steps, (unsigned long long)seed);
        o.title = title;
        o.xlabel = "operators in the expression";
        o.ylabel = "accuracy";
        o.width = 900;
        if (o.width < 100 + cx_text_width(title, 2)) o.width = 100 + cx_text_width(title, 2); /* + the margins */
        o.height = 480;
        o.ymin = 0;
        o.ymax = 1;
        if (cx_plot_lines(png, s, 3, &o) != CX_OK) {
            fprintf(stderr, "treelstm: cannot write %s: %s\n", png, cx_last_error());
            rc = 1;
        } else {
            printf("wrote %s\n", png);
        }
    }
    cx_module_free(tree.emb);
    cx_module_free(tree.cell);
    cx_module_free(tree.fc);
    cx_module_free(seq.emb);
    cx_module_free(seq.cell);
    cx_module_free(seq.fc);
    return rc;
}
