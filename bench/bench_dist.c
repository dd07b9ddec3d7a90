/* Data-parallel training throughput (cortex/dist.h): a network from a .net
 * file (default LeNet-5) trained with SGD on Fashion-MNIST (or the subset in
 * data/), global batch --batch split over the processes. Run alone or under
 * mpirun:
 *   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 bench_dist [--net models/lenet5.net]
 *       [--batch 64] [--steps 200] [--warmup 20] [--data DIR] [--bucket BYTES]
 *       [--sync-bn 1]   (batch norm over all processes' rows: cx_dist_sync_batchnorm)
 *   mpirun -np 2 bench_dist ...
 * Rank 0 prints, after the warm-up steps:
 *   DIST np=2 batch=64 steps=200 ex_per_s=... ms_per_step=... allreduce_wait_ms=...
 *        allreduce_ms=... buckets=... early=... late=...
 * ms_per_step is the wall clock of the slowest rank per step (forward,
 * backward, all-reduce, optimiser step); allreduce_wait_ms the time
 * cx_dist_reducer_finish spent waiting per step, allreduce_ms the time from
 * the first bucket's start to the end of that wait (overlapping backward);
 * each the mean over ranks; allreduce_alone_ms one blocking all-reduce of all
 * the gradients after a barrier (the transfer without waiting for a slower
 * rank). One thread per process: set OMP_NUM_THREADS=1. */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    cx_dist_init(&argc, &argv);
    const char *netfile = "models/lenet5.net", *dir = NULL;
    int batch = 64, steps = 200, warmup = 20;
    size_t bucket = 0;
    bool sync_bn = false;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) { fprintf(stderr, "bench_dist: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--net")) netfile = argv[i + 1];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--bucket")) bucket = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--sync-bn")) sync_bn = atoi(argv[i + 1]) != 0;
        else { fprintf(stderr, "bench_dist: unknown flag %s\n", argv[i]); return 2; }
    }
    if (batch < cx_dist_size() || steps < 1 || warmup < 0) {
        fprintf(stderr, "bench_dist: need --batch >= processes, --steps >= 1, --warmup >= 0\n");
        return 2;
    }
    cx_set_threads(1);
    cx_dataset d;
    if (cx_dataset_load_idx_dir(cx_fashion_mnist_dir(dir), "train", 0, &d)) {
        fprintf(stderr, "bench_dist: %s\n", cx_last_error());
        cx_dist_abort(1);
    }
    cx_seed(1);
    cx_module *net = NULL;
    if (cx_net_load(netfile, &net)) {
        fprintf(stderr, "bench_dist: %s\n", cx_last_error());
        cx_dist_abort(1);
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_dist_broadcast_params(&ps);
    cx_dist_sync_batchnorm(sync_bn);
    cx_sgd_opts so = cx_sgd_defaults();
    so.lr = 0.01;
    so.momentum = 0.9;
    cx_optim *opt = cx_sgd_new(&ps, &so);
    cx_rng data_rng = cx_rng_new(7);
    cx_loader *ld = cx_loader_new(&d, batch, true, true);
    cx_loader_set_rng(ld, &data_rng);
    cx_loader_reset(ld);
    cx_dist_shard_loader(ld);
    cx_dist_reducer *red = cx_dist_reducer_new(&ps, bucket);
    double t0 = 0, loss_sum = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) {
            cx_dist_barrier();
            cx_dist_reducer_reset_stats(red);
            t0 = cx_now();
        }
        cx_tensor *x, *y;
        if (!cx_loader_next(ld, &x, &y)) {
            cx_loader_reset(ld);
            cx_loader_next(ld, &x, &y);
        }
        int rows = x->shape[0];
        /* the .net input is [C, H, W]: images as [B, 1, 28, 28] */
        x = cx_reshape(x, CX_SHAPE(rows, 1, 28, 28));
        cx_optim_zero_grad(opt);
        cx_dist_reducer_begin(red, cx_loader_shard_weight(ld));
        if (rows) {
            cx_tensor *loss = cx_cross_entropy(cx_module_forward(net, x), y, CX_REDUCE_MEAN);
            loss_sum += cx_item(loss);
            cx_backward(loss);
        }
        cx_dist_reducer_finish(red);
        cx_optim_step(opt);
        cx_step_reset();
    }
    cx_dist_barrier();
    double secs = cx_now() - t0;
    cx_dist_stats st = cx_dist_reducer_stats(red);
    /* the all-reduce alone: all the gradients in one blocking call, the
     * ranks lined up by a barrier first */
    int64_t np_ = cx_params_count(&ps);
    float *g = calloc((size_t)np_, sizeof *g);
    double ar = 0;
    for (int r = 0; r < 50; r++) {
        cx_dist_barrier();
        double a = cx_now();
        cx_dist_allreduce_sum_f32(g, np_);
        ar += cx_now() - a;
    }
    free(g);
    double v[5] = {st.wait_seconds, st.reduce_seconds, secs, loss_sum, ar / 50};
    cx_dist_allreduce_sum_f64(v, 5);
    double np = cx_dist_size();
    secs = cx_dist_allreduce_max(secs);
    if (cx_dist_is_root())
        printf("DIST np=%d batch=%d steps=%d ex_per_s=%.1f ms_per_step=%.3f allreduce_wait_ms=%.3f allreduce_ms=%.3f "
               "buckets=%d early=%lld late=%lld params=%lld mean_loss=%.4f allreduce_alone_ms=%.3f sync_bn=%d\n",
               cx_dist_size(), batch, steps, (double)batch * steps / secs, 1e3 * secs / steps,
               1e3 * v[0] / np / steps, 1e3 * v[1] / np / steps, cx_dist_reducer_buckets(red),
               (long long)st.buckets_early, (long long)st.buckets_late, (long long)cx_params_count(&ps),
               v[3] / np / (warmup + steps), 1e3 * v[4] / np, cx_dist_batchnorm_synced());
    cx_dist_reducer_free(red);
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net);
    cx_dataset_free(&d);
    cx_dist_finalize();
    return 0;
}
