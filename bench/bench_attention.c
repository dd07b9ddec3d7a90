/* Multi-head self-attention benchmark: cx_multihead_attention, forward +
 * backward, the same work as tools/bench_torch_attention.py does with
 * torch.nn.MultiheadAttention.
 *   bench_attention [threads] [--reps 15] [--batch 32] [--seq 64] [--embed 256]
 *                   [--heads 8] [--batch-first]
 * threads: first positional argument, else env CX_THREADS, else 1.
 * x [seq, batch, embed] ([batch, seq, embed] with --batch-first) requires
 * grad (the output of a previous layer); query = key = value = x; no weights
 * requested (need_weights false); training mode, dropout 0; the loss gradient
 * is a fixed random tensor on the output. Each repetition: zero the
 * parameter gradients, forward, backward, reset the step. Prints the median:
 *   ATTN threads=1 ms=... batch=32 seq=64 embed=256 heads=8 min_ms=...
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = getenv("CX_THREADS") ? atoi(getenv("CX_THREADS")) : 1;
    int reps = 15, B = 32, T = 64, E = 256, H = 8;
    bool bf = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--embed") && i + 1 < argc) E = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch-first")) bf = true;
        else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else { fprintf(stderr, "bench_attention: unknown flag %s\n", argv[i]); return 2; }
    }
    if (threads < 1) threads = 1;
    if (reps < 1) reps = 1;
    cx_set_threads(threads);
    printf("# GEMM %s\n", cx_gemm_describe());
    cx_seed(1);
    cx_mha_opts o = cx_mha_defaults();
    o.batch_first = bf;
    cx_module *m = cx_multihead_attention_new(E, H, &o);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    const int shape[3] = {bf ? B : T, bf ? T : B, E};
    cx_tensor *xp = cx_tensor_new(CX_F32, shape, 3);
    cx_fill_uniform(xp, -1.0f, 1.0f);
    size_t n = (size_t)B * T * E;
    float *gout = malloc(n * sizeof *gout);
    double *ms = malloc((size_t)reps * sizeof *ms);
    if (!gout || !ms) { fprintf(stderr, "bench_attention: out of memory\n"); return 1; }
    for (size_t i = 0; i < n; i++) gout[i] = cx_rand_uniform() * 2.0f - 1.0f;
    cx_set_training(true);
    for (int r = -2; r < reps; r++) { /* two warm-up runs */
        cx_params_zero_grad(&ps);
        double t0 = cx_now();
        cx_tensor *x = cx_wrap(CX_F(xp), shape, 3);
        x->requires_grad = true;
        cx_tensor *y = cx_mha_forward(m, x, x, x, NULL, NULL, false, true, NULL, NULL);
        cx_backward_with(y, gout);
        double t1 = cx_now();
        cx_step_reset();
        if (r >= 0) ms[r] = (t1 - t0) * 1e3;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double med = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    printf("ATTN threads=%d ms=%.3f batch=%d seq=%d embed=%d heads=%d batch_first=%d min_ms=%.3f\n", threads, med, B,
           T, E, H, bf, ms[0]);
    free(ms);
    free(gout);
    cx_tensor_free(xp);
    cx_params_free(&ps);
    cx_module_free(m);
    return 0;
}
