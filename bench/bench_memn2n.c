/* MemN2N training benchmark (the network of cortex/memn2n.h): 3 hops, PE,
 * temporal encoding, d 20, batch 32, SGD lr 0.01, gradient norm clipped at
 * 40, on 1000 generated task-1 questions (seed 1; every question trains, no
 * validation split), epoch time = the training loop of cx_memn2n_train.
 *   bench_memn2n [threads] [--epochs 20] [--data-out FILE]
 * threads: first positional argument, else env CX_THREADS, else 1.
 * --data-out writes the questions (memory [N, S, L], query, answer, I32) for
 * the PyTorch side, tools/bench_torch_memn2n.py. Prints the median epoch:
 *   MEMN2N threads=1 epoch_ms=... train_err=... questions=1000
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double ms[10000];
static int n_ms;

static bool on_epoch(const cx_memn2n_epoch *e, void *user) {
    (void)user;
    if (n_ms < 10000) ms[n_ms++] = e->seconds * 1e3;
    return true;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = getenv("CX_THREADS") ? atoi(getenv("CX_THREADS")) : 1, epochs = 20;
    const char *data_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--data-out") && i + 1 < argc) data_out = argv[++i];
        else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else { fprintf(stderr, "bench_memn2n: unknown flag %s\n", argv[i]); return 2; }
    }
    if (threads < 1) threads = 1;
    if (epochs < 1) epochs = 1;
    cx_set_threads(threads);
    char *text;
    size_t len;
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s;
    if (cx_babi_generate(1, 1000, 1, &text, &len) || cx_babi_parse(text, len, "task1", v, CX_BABI_UNK_ADD, &s)) {
        fprintf(stderr, "bench_memn2n: %s\n", cx_last_error());
        return 1;
    }
    free(text);
    cx_babi_tensor_opts o = cx_babi_tensor_defaults();   /* S = the most facts (10), L = the longest sentence */
    o.recent_first = true;
    cx_tensor *mem, *q, *a;
    if (cx_babi_tensors(s, 0, s->n_questions, &o, &mem, &q, &a)) {
        fprintf(stderr, "bench_memn2n: %s\n", cx_last_error());
        return 1;
    }
    if (data_out) {
        cx_tensor *ts[3] = {mem, q, a};
        const char *names[3] = {"memory", "query", "answer"}, *k[1] = {"vocab"};
        char vs[16];
        snprintf(vs, sizeof vs, "%d", cx_babi_vocab_size(v));
        const char *vv[1] = {vs};
        if (cx_st_save(data_out, ts, names, 3, k, vv, 1)) {
            fprintf(stderr, "bench_memn2n: %s\n", cx_last_error());
            return 1;
        }
    }
    cx_memn2n_config c = cx_memn2n_defaults();
    c.vocab = cx_babi_vocab_size(v);
    cx_memn2n *m;
    if (cx_memn2n_new(&c, 1, &m)) return 1;
    cx_memn2n_train_opts t = cx_memn2n_train_defaults();
    t.epochs = epochs;
    t.val_fraction = 0.0f;
    t.anneal_every = 0;
    t.on_epoch = on_epoch;
    double err;
    if (cx_memn2n_train(m, mem, NULL, q, a, &t, NULL) || cx_memn2n_evaluate(m, mem, NULL, q, a, NULL, &err)) {
        fprintf(stderr, "bench_memn2n: %s\n", cx_last_error());
        return 1;
    }
    qsort(ms, (size_t)n_ms, sizeof *ms, cmp_double);
    double med = n_ms % 2 ? ms[n_ms / 2] : 0.5 * (ms[n_ms / 2 - 1] + ms[n_ms / 2]);
    printf("MEMN2N threads=%d epoch_ms=%.3f min_ms=%.3f train_err=%.4f questions=%d memory=%dx%d epochs=%d\n", threads, med,
           ms[0], err, mem->shape[0], mem->shape[1], mem->shape[2], epochs);
    cx_memn2n_free(m);
    cx_tensor_free(mem);
    cx_tensor_free(q);
    cx_tensor_free(a);
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
    return 0;
}
