/* NTM copy-task training benchmark (the paper's model: LSTM controller of
 * 100 units, 1 read + 1 write head, memory 128 x 20, 8-bit vectors), one
 * training step = forward, masked BCE, backward, gradient-norm clipping
 * (10) and RMSprop (lr 1e-4, momentum 0.9, alpha 0.95).
 *   bench_ntm [threads] [--batch 1] [--steps 100] [--warmup 20]
 * The sequence length of step s is 1 + (7 s mod 20) (every length 1..20
 * once per 20 steps, mean 10.5), the same schedule as the PyTorch side
 * tools/bench_torch_ntm.py; bits come from each side's own seeded stream.
 * Prints sequences per second over the timed steps, by the wall clock and
 * per CPU-second of the process (steadier on a shared machine):
 *   NTM threads=1 batch=1 seq_per_s=... seq_per_cpu_s=... ms_per_step=...
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    int threads = getenv("CX_THREADS") ? atoi(getenv("CX_THREADS")) : 1;
    int batch = 1, steps = 100, warmup = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else {
            fprintf(stderr, "bench_ntm: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1) threads = 1;
    if (batch < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_ntm: bad --batch / --steps / --warmup\n");
        return 2;
    }
    cx_set_threads(threads);
    cx_seed(1);
    cx_seqtask_opts task = cx_seqtask_defaults(CX_SEQTASK_COPY);
    cx_ntm_config cfg = cx_ntm_defaults(cx_seqtask_input_size(&task), cx_seqtask_output_size(&task));
    cx_module *m = cx_ntm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_flat *flat = cx_flat_new(&ps);
    cx_rmsprop_opts o = cx_rmsprop_defaults();
    o.lr = 1e-4, o.momentum = 0.9, o.alpha = 0.95;
    cx_optim *opt = cx_rmsprop_new(cx_flat_params(flat), &o);
    cx_rng rng = cx_rng_new(1);
    double t0 = 0, loss_sum = 0;
    clock_t c0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = cx_now(), c0 = clock();
        cx_seqtask_batch b = cx_seqtask_sample_fixed(&rng, batch, &task, 1 + (7 * s) % 20, 0);
        cx_tensor *loss = cx_seqtask_loss(cx_ntm_forward(m, b.input, NULL).logits, b.target, b.mask);
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        cx_clip_grad_norm(cx_flat_params(flat), 10.0f);
        cx_optim_step(opt);
        loss_sum += cx_item(loss);
        cx_step_reset();
    }
    const double el = cx_now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("NTM threads=%d batch=%d seq_per_s=%.1f seq_per_cpu_s=%.1f ms_per_step=%.3f steps=%d mean_loss=%.4f\n",
           threads, batch, (double)steps * batch / el, (double)steps * batch / cpu, 1e3 * el / steps, steps,
           loss_sum / (warmup + steps));
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    cx_flat_free(flat);
    return 0;
}
