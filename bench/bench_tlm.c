/* Transformer char-LM training-step benchmark: the work of one step of
 * `cortex charlm train --arch transformer` (cli/charlm.c on the trainer:
 * zero the gradients, cx_tlm_forward, cx_seq_cross_entropy (mean), backward,
 * cx_clip_grad_norm 5, Adam lr 2e-3, reset the step), timed step by step
 * after 3 warm-up steps (the first steps grow the step arena and fault its
 * pages in; a training run pays that once). The same work as
 * tools/bench_torch_transformer_lm.py does with the PyTorch reference model.
 *   bench_tlm [threads] [--steps 15] [--vocab 91] [--layers 4] [--heads 4]
 *             [--embed 256] [--ffn 0] [--batch 32] [--seq 128] [--tie]
 * threads: first positional argument, else env CX_THREADS, else 1.
 * Input: B streams of random ids over 1..V-1 (speed does not depend on the
 * data), each step the next seq characters of every stream. Prints
 *   TLM threads=1 chars_per_s=... ms=... chars_per_cpu_s=... min_ms=... params=... V=91 L=4 H=4 E=256 F=1024 B=32 T=128
 * chars_per_s = B T / the median step time; chars_per_cpu_s = B T steps /
 * the process CPU time of the timed steps (all threads). */
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
    int steps = 15, V = 91, L = 4, H = 4, E = 256, Fh = 0, B = 32, T = 128;
    bool tie = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) V = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) L = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--embed") && i + 1 < argc) E = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ffn") && i + 1 < argc) Fh = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tie")) tie = true;
        else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else { fprintf(stderr, "bench_tlm: unknown flag %s\n", argv[i]); return 2; }
    }
    if (threads < 1) threads = 1;
    if (steps < 1) steps = 1;
    if (V < 2 || L < 1 || H < 1 || E < 1 || E % H || Fh < 0 || B < 1 || T < 1) {
        fprintf(stderr, "bench_tlm: bad sizes\n");
        return 2;
    }
    cx_set_threads(threads);
    printf("# GEMM %s\n", cx_gemm_describe());
    cx_seed(1);
    cx_tlm_config cfg = cx_tlm_defaults(V);
    cfg.context = T;
    cfg.embed = E;
    cfg.layers = L;
    cfg.heads = H;
    cfg.ffn = Fh;
    cfg.tie = tie;
    cx_module *m = cx_tlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 2e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);

    const int warm = 3, total = warm + steps;
    const long len = (long)total * T + 1; /* characters per stream */
    int32_t *data = malloc((size_t)B * len * sizeof *data), *xb = malloc((size_t)T * B * sizeof *xb),
            *yb = malloc((size_t)T * B * sizeof *yb);
    double *ms = malloc((size_t)steps * sizeof *ms);
    if (!data || !xb || !yb || !ms) { fprintf(stderr, "bench_tlm: out of memory\n"); return 1; }
    for (long i = 0; i < (long)B * len; i++) data[i] = 1 + (int32_t)(cx_rand_uniform() * (float)(V - 1)) % (V - 1);
    const int shape[2] = {T, B};
    cx_set_training(true);
    double c0 = 0;
    float lv = 0;
    for (int s = 0; s < total; s++) {
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++) {
                xb[t * B + b] = data[(long)b * len + (long)s * T + t];
                yb[t * B + b] = data[(long)b * len + (long)s * T + t + 1];
            }
        if (s == warm) c0 = cx_cpu_now();
        double t0 = cx_now();
        cx_optim_zero_grad(opt);
        cx_tensor *x = cx_from_i32(xb, shape, 2), *y = cx_from_i32(yb, shape, 2);
        cx_tensor *loss = cx_seq_cross_entropy(cx_tlm_forward(m, x), y, NULL, false, CX_REDUCE_MEAN);
        lv = cx_item(loss);
        cx_backward(loss);
        cx_clip_grad_norm(&ps, 5.0f);
        cx_optim_step(opt);
        cx_step_reset();
        double t1 = cx_now();
        if (s >= warm) ms[s - warm] = (t1 - t0) * 1e3;
    }
    double cpu = cx_cpu_now() - c0;
    qsort(ms, (size_t)steps, sizeof *ms, cmp_double);
    double med = steps % 2 ? ms[steps / 2] : 0.5 * (ms[steps / 2 - 1] + ms[steps / 2]);
    const double chars = (double)B * T;
    printf("TLM threads=%d chars_per_s=%.0f ms=%.2f chars_per_cpu_s=%.0f min_ms=%.2f params=%lld V=%d L=%d H=%d E=%d "
           "F=%d B=%d T=%d steps=%d loss=%.3f\n",
           threads, chars / (med * 1e-3), med, chars * steps / cpu, ms[0], (long long)cx_params_count(&ps), V, L, H, E,
           Fh ? Fh : 4 * E, B, T, steps, (double)lv);
    free(data);
    free(xb);
    free(yb);
    free(ms);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    return 0;
}
