/* MLP training benchmark on Fashion-MNIST (data already in memory).
 *   bench_mlp [--hidden 256[,256]] [--epochs 5] [--batch 64] [--threads 1]
 *             [--steps N] [--data DIR] [--seed S] [--optim-steps K] [--optim-reps R]
 * Prints one line per epoch and machine-readable lines:
 *   MLP_EPOCH hidden=256 threads=1 epoch=1 seconds=... test_acc=...
 *   MLP_STEP hidden=256,256 threads=1 batch=64 ms=...      (with --steps)
 *   OPTIM_STEP hidden=256 threads=1 params=... tensors=4 per_tensor_us=... flat_us=...
 *       speedup=... per_tensor_min_us=... flat_min_us=... identical=yes  (with --optim-steps)
 * --optim-steps K times the Adam step alone over the MLP's parameters, per
 * tensor and on a flat buffer (cx_flat), K steps per repetition, R
 * repetitions (default 15) alternating which runs first; medians of the
 * per-step times. It needs no data: with --epochs 0 and no --steps the
 * dataset is not loaded.
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xmmintrin.h>

/* The MLP_EPOCH line after every epoch; loss is the mean of the batch losses. */
typedef struct {
    const char *hidden;
    int threads, nb;
    double loss;
    cx_trainer *tr;
} epoch_log;

static cx_status on_step(void *user, const cx_train_info *in) {
    epoch_log *l = user;
    l->loss += in->loss;
    l->nb++;
    return CX_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Adam step over the MLP's parameters: per-tensor path vs one pass over a
 * flat buffer. Two nets from the same seed, the same fixed gradients. */
static void bench_optim(const int *sizes, int n, const char *hidden, int threads,
                        unsigned long seed, int steps, int reps) {
    cx_seed(seed);
    cx_module *na = cx_mlp_new(sizes, n, CX_ACT_RELU, 0);
    cx_seed(seed);
    cx_module *nb = cx_mlp_new(sizes, n, CX_ACT_RELU, 0);
    cx_params pa, pb;
    cx_params_init(&pa);
    cx_params_init(&pb);
    cx_module_params(na, &pa);
    cx_module_params(nb, &pb);
    cx_flat *f = cx_flat_new(&pb);
    for (int i = 0; i < pa.n; i++) {
        float *ga = cx_grad_ensure(pa.t[i]);
        for (int64_t j = 0; j < pa.t[i]->numel; j++) ga[j] = 1e-2f * cx_rand_normal();
        memcpy(pb.t[i]->grad, ga, (size_t)pa.t[i]->numel * sizeof(float));
    }
    cx_optim *oa = cx_adam_new(&pa, NULL), *ob = cx_adam_new(cx_flat_params(f), NULL);
    for (int k = 0; k < 20; k++) { /* warm-up */
        cx_optim_step(oa);
        cx_optim_step(ob);
    }
    double *ta = malloc((size_t)reps * sizeof *ta), *tb = malloc((size_t)reps * sizeof *tb);
    for (int r = 0; r < reps; r++) {
        for (int side = 0; side < 2; side++) {
            const int flat = (side + r) % 2; /* alternate which one runs first */
            cx_optim *o = flat ? ob : oa;
            double t0 = cx_now();
            for (int k = 0; k < steps; k++) cx_optim_step(o);
            double us = (cx_now() - t0) * 1e6 / steps;
            if (flat) tb[r] = us;
            else ta[r] = us;
        }
    }
    int same = 1;
    for (int i = 0; i < pa.n; i++)
        same &= memcmp(pa.t[i]->data, pb.t[i]->data, (size_t)pa.t[i]->numel * sizeof(float)) == 0;
    double ma = median(ta, reps), mb = median(tb, reps); /* sorts: [0] is the minimum */
    printf("OPTIM_STEP hidden=%s threads=%d params=%lld tensors=%d steps=%d reps=%d "
           "per_tensor_us=%.2f flat_us=%.2f speedup=%.3f per_tensor_min_us=%.2f flat_min_us=%.2f "
           "identical=%s\n",
           hidden, threads, (long long)cx_params_count(&pa), pa.n, steps, reps, ma, mb, ma / mb,
           ta[0], tb[0], same ? "yes" : "NO");
    fflush(stdout);
    free(ta);
    free(tb);
    cx_optim_free(oa);
    cx_optim_free(ob);
    cx_params_free(&pa);
    cx_params_free(&pb);
    cx_module_free(na);
    cx_module_free(nb); /* tensors first: nothing to unflatten */
    cx_flat_free(f);
}

static cx_status on_eval(void *user, const cx_train_info *in) {
    epoch_log *l = user;
    printf("MLP_EPOCH hidden=%s threads=%d epoch=%d seconds=%.3f loss=%.4f test_acc=%.4f parts=%d\n", l->hidden,
           l->threads, in->pos.epoch, in->epoch_seconds, l->loss / l->nb, cx_metrics_get(in->metrics, "val_acc"),
           cx_trainer_split_parts(l->tr));
    fflush(stdout);
    l->loss = 0;
    l->nb = 0;
    return CX_OK;
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist", *hidden = "256";
    int epochs = 5, batch = 64, threads = 1, steps = 0, optim_steps = 0, optim_reps = 15;
    unsigned long seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--hidden")) hidden = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--optim-steps")) optim_steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--optim-reps")) optim_reps = atoi(argv[i + 1]);
        else { fprintf(stderr, "bench_mlp: unknown flag %s\n", argv[i]); return 2; }
    }
    cx_set_threads(threads);
    if (getenv("FTZ")) _mm_setcsr(_mm_getcsr() | 0x8040);
    cx_seed(seed);
    int sizes[8] = {784}, n = 1;
    char hbuf[64];
    snprintf(hbuf, sizeof hbuf, "%s", hidden);
    for (char *tok = strtok(hbuf, ","); tok && n < 7; tok = strtok(NULL, ",")) sizes[n++] = atoi(tok);
    sizes[n++] = 10;
    if (optim_steps > 0) {
        bench_optim(sizes, n, hidden, threads, seed, optim_steps, optim_reps > 0 ? optim_reps : 1);
        if (epochs <= 0 && steps <= 0) return 0;
        cx_seed(seed); /* the training below starts from the same stream either way */
    }
    char p1[512], p2[512];
    cx_dataset train, test;
    snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(p2, sizeof p2, "%s/train-labels-idx1-ubyte.gz", dir);
    if (cx_dataset_load_idx(p1, p2, 0, &train)) { fprintf(stderr, "bench_mlp: %s\n", cx_last_error()); return 1; }
    snprintf(p1, sizeof p1, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(p2, sizeof p2, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (cx_dataset_load_idx(p1, p2, 0, &test)) { fprintf(stderr, "bench_mlp: %s\n", cx_last_error()); return 1; }

    cx_module *net = cx_mlp_new(sizes, n, CX_ACT_RELU, 0);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_optim *opt = cx_adam_new(&ps, NULL);
    cx_loader *ld = cx_loader_new(&train, batch, true, false);
    printf("MLP %s, %lld params, batch %d, Adam 1e-3, %d thread(s), GEMM %s\n", hidden,
           (long long)cx_params_count(&ps), batch, threads, cx_gemm_describe());
    if (steps > 0) {
        cx_tensor *x, *y;
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            cx_loader_reset(ld);
            double t0 = cx_now();
            int k = 0;
            while (k < steps && cx_loader_next(ld, &x, &y)) {
                cx_optim_zero_grad(opt);
                cx_backward(cx_cross_entropy(cx_module_forward(net, x), y, CX_REDUCE_MEAN));
                cx_optim_step(opt);
                cx_step_reset();
                k++;
            }
            double ms = (cx_now() - t0) * 1e3 / k;
            if (ms < best) best = ms;
        }
        printf("MLP_STEP hidden=%s threads=%d batch=%d ms=%.4f\n", hidden, threads, batch, best);
    }
    if (epochs > 0) { /* the library's trainer, evaluating the test set after every epoch */
        cx_classifier cls = {.forward = cx_forward_module, .forward_user = net, .train = ld, .val = &test,
                             .eval_batch = 1000};
        cx_train_task task = cx_classifier_task(&cls);
        epoch_log log = {hidden, threads, 0, 0, NULL};
        cx_train_opts o = cx_train_defaults();
        o.epochs = epochs;
        o.quiet = true;
        o.on_step = on_step;
        o.on_eval = on_eval;
        o.hook_user = &log;
        cx_trainer *tr = cx_trainer_new(&task, net, opt, &o);
        log.tr = tr;
        if (cx_trainer_run(tr)) fprintf(stderr, "bench_mlp: %s\n", cx_last_error());
        cx_trainer_free(tr);
    }
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return 0;
}
