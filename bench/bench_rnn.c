/* Recurrent layer benchmark: one LSTM / GRU layer, forward + backward.
 *   bench_rnn [threads] [--cell lstm|gru|all] [--reps N] [--input 128]
 *             [--hidden 256] [--batch 32] [--seq 64]
 * threads: first positional argument, else env CX_THREADS, else 1.
 * x [seq, batch, input] (no gradient wanted for x, as in the PyTorch side
 * tools/bench_torch_rnn.py); the loss gradient is a fixed random tensor on
 * the output. Prints the median over the repetitions:
 *   RNN cell=lstm threads=1 ms=...
 *   RNN cell=gru threads=1 ms=...
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double run(const char *cell, int threads, int reps, int I, int H, int B, int T) {
    cx_seed(1);
    cx_module *m = strcmp(cell, "lstm") == 0 ? cx_lstm_new(I, H, NULL) : cx_gru_new(I, H, NULL);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_tensor *xp = cx_tensor_new(CX_F32, (const int[]){T, B, I}, 3);
    cx_fill_uniform(xp, -1.0f, 1.0f);
    size_t n_out = (size_t)T * B * H;
    float *gout = malloc(n_out * sizeof *gout);
    if (!gout) { fprintf(stderr, "bench_rnn: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n_out; i++) gout[i] = cx_rand_uniform() * 2.0f - 1.0f;
    double *ms = malloc((size_t)reps * sizeof *ms);
    if (!ms) { fprintf(stderr, "bench_rnn: out of memory\n"); exit(1); }
    for (int r = -2; r < reps; r++) { /* two warm-up runs */
        cx_params_zero_grad(&ps);
        double t0 = cx_now();
        cx_tensor *x = cx_wrap(CX_F(xp), xp->shape, 3);
        cx_rnn_out o = cx_rnn_forward(m, x, NULL, NULL);
        cx_backward_with(o.output, gout);
        double t1 = cx_now();
        cx_step_reset();
        if (r >= 0) ms[r] = (t1 - t0) * 1e3;
    }
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double med = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    printf("RNN cell=%s threads=%d ms=%.2f input=%d hidden=%d batch=%d seq=%d min_ms=%.2f\n", cell, threads,
           med, I, H, B, T, ms[0]);
    fflush(stdout);
    free(ms);
    free(gout);
    cx_tensor_free(xp);
    cx_params_free(&ps);
    cx_module_free(m);
    return med;
}

int main(int argc, char **argv) {
    int threads = getenv("CX_THREADS") ? atoi(getenv("CX_THREADS")) : 1;
    int reps = 15, I = 128, H = 256, B = 32, T = 64;
    const char *cell = "all";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cell") && i + 1 < argc) cell = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--input") && i + 1 < argc) I = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoi(argv[++i]);
        else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else { fprintf(stderr, "bench_rnn: unknown flag %s\n", argv[i]); return 2; }
    }
    if (threads < 1) threads = 1;
    if (reps < 1) reps = 1;
    cx_set_threads(threads);
    printf("# GEMM %s\n", cx_gemm_describe());
    if (!strcmp(cell, "lstm") || !strcmp(cell, "all")) run("lstm", threads, reps, I, H, B, T);
    if (!strcmp(cell, "gru") || !strcmp(cell, "all")) run("gru", threads, reps, I, H, B, T);
    return 0;
}
