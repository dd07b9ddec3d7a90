/* Whole-CNN training benchmark on Fashion-MNIST (data already in memory):
 * a network from a .net file, minibatches of B, Adam lr 1e-3, cross-entropy.
 *   bench_cnn [--net models/lenet5.net] [--epochs 1] [--batch 64] [--threads 1]
 *             [--steps N] [--data DIR] [--seed S]
 * Prints machine-readable lines (tools/bench_torch_cnn.py prints the PyTorch
 * equivalents TORCH_CNN_STEP / TORCH_CNN_EPOCH):
 *   CNN_STEP net=lenet5 threads=1 batch=64 ms=... cpu_ms=...     (with --steps N:
 *            best of 3 runs of N training steps, per step)
 *   CNN_EPOCH net=lenet5 threads=1 epoch=1 seconds=... cpu_seconds=... loss=... test_acc=...
 * (seconds / ms: wall time of the training loop only; cpu_*: process CPU time,
 * all threads -- at 1 thread a load-insensitive stand-in for the wall time.
 * test_acc: eval mode over the 10,000 test images.)
 * --epochs 0 with --steps N gives only the step timing.
 * The CNN_STEP line also carries pingpong_ns=before/after: the time one
 * cache line takes to go from one thread to another and back, measured just
 * before and just after the timed steps. It tells where the machine put the
 * two cores: on one last-level cache (Zen 4 VM: 25-35 ns) or on two (150-170
 * ns), where every value one thread writes and the other reads crosses
 * between the caches -- a 2-thread step's time depends on it.
 */
#include <cortex.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [B, features] batch -> [B, C, H, W] as the network's input line declares. */
static cx_tensor *as_input(const int *in_shape, int in_ndim, cx_tensor *x) {
    int shape[CX_MAX_DIMS] = {x->shape[0]};
    memcpy(shape + 1, in_shape, (size_t)in_ndim * sizeof(int));
    return cx_reshape(x, shape, in_ndim + 1);
}

/* ns per one-way hand-over of a cache line between two threads (see the
 * header), or -1 without OpenMP or with one CPU. */
static double pingpong_ns(void) {
#ifdef _OPENMP
    if (omp_get_num_procs() < 2) return -1;
    enum { HOPS = 4000, ROUNDS = 5 };
    static _Alignas(64) atomic_int turn;
    double r[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        atomic_store(&turn, 0);
        const double t0 = cx_now();
#pragma omp parallel num_threads(2)
        {
            const int me = omp_get_thread_num();
            for (int i = me; i < HOPS; i += 2) {
                while (atomic_load_explicit(&turn, memory_order_acquire) != i) {
                }
                atomic_store_explicit(&turn, i + 1, memory_order_release);
            }
        }
        r[k] = (cx_now() - t0) / HOPS * 1e9;
    }
    /* the median round: a thread taken off its CPU spoils one round */
    for (int i = 1; i < ROUNDS; i++)
        for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
            const double t = r[j];
            r[j] = r[j - 1];
            r[j - 1] = t;
        }
    return r[ROUNDS / 2];
#else
    return -1;
#endif
}

/* The network with its input shape, as a cx_forward_fn. */
typedef struct {
    cx_module *net;
    const int *in_shape;
    int in_ndim;
} net_ref;

static cx_tensor *forward(void *user, cx_tensor *x) {
    net_ref *m = user;
    return cx_module_forward(m->net, as_input(m->in_shape, m->in_ndim, x));
}

/* The CNN_EPOCH line after every epoch; loss is the mean of the batch losses. */
typedef struct {
    const char *name;
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

static cx_status on_eval(void *user, const cx_train_info *in) {
    epoch_log *l = user;
    printf("CNN_EPOCH net=%s threads=%d epoch=%d seconds=%.3f cpu_seconds=%.3f loss=%.4f test_acc=%.4f parts=%d\n",
           l->name, l->threads, in->pos.epoch, in->epoch_seconds, in->epoch_cpu_seconds, l->loss / l->nb,
           cx_metrics_get(in->metrics, "val_acc"), cx_trainer_split_parts(l->tr));
    fflush(stdout);
    l->loss = 0;
    l->nb = 0;
    return CX_OK;
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/datasets/fashion-mnist", *netfile = "models/lenet5.net";
    int epochs = 1, batch = 64, threads = 1, steps = 0;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) { fprintf(stderr, "bench_cnn: %s needs a value\n", argv[i]); return 2; }
        if (!strcmp(argv[i], "--net")) netfile = argv[i + 1];
        else if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--seed")) seed = strtoul(argv[i + 1], NULL, 10);
        else { fprintf(stderr, "bench_cnn: unknown flag %s\n", argv[i]); return 2; }
    }
    if (batch < 1 || threads < 1 || epochs < 0 || steps < 0) {
        fprintf(stderr, "bench_cnn: bad --batch/--threads/--epochs/--steps\n");
        return 2;
    }
    /* the name printed: the file name without directory and ".net" */
    char name[64];
    const char *base = strrchr(netfile, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : netfile);
    char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".net")) *dot = 0;

    cx_set_threads(threads);
    cx_seed(seed);
    cx_module *net;
    if (cx_net_load(netfile, &net)) { fprintf(stderr, "bench_cnn: %s\n", cx_last_error()); return 1; }
    int in_shape[CX_MAX_DIMS], in_ndim = cx_net_input_shape(net, in_shape);
    char p1[512], p2[512];
    cx_dataset train = {0}, test = {0};
    int feat = 1;
    for (int i = 0; i < in_ndim; i++) feat *= in_shape[i];
    snprintf(p1, sizeof p1, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(p2, sizeof p2, "%s/train-labels-idx1-ubyte.gz", dir);
    bool ok = cx_dataset_load_idx(p1, p2, 0, &train) == CX_OK;
    snprintf(p1, sizeof p1, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(p2, sizeof p2, "%s/t10k-labels-idx1-ubyte.gz", dir);
    ok = ok && cx_dataset_load_idx(p1, p2, 0, &test) == CX_OK;
    if (!ok) fprintf(stderr, "bench_cnn: %s\n", cx_last_error());
    else if (train.x->ndim != 2 || train.x->shape[1] != feat) {
        fprintf(stderr, "bench_cnn: %s expects %d input values per example, the data has %d\n", netfile, feat,
                train.x->shape[1]);
        ok = false;
    }
    if (!ok) {
        cx_dataset_free(&train);
        cx_dataset_free(&test);
        cx_module_free(net);
        return 1;
    }

    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_optim *opt = cx_adam_new(&ps, NULL);
    cx_loader *ld = cx_loader_new(&train, batch, true, false);
    printf("CNN %s, %lld params, batch %d, Adam 1e-3, %d thread(s), GEMM %s\n", name,
           (long long)cx_params_count(&ps), batch, threads, cx_gemm_describe());
    fflush(stdout);
    if (steps > 0) {
        cx_tensor *x, *y;
        double best = 1e9, best_cpu = 1e9;
        const double pp0 = pingpong_ns();
        /* as the library's trainer does (and PyTorch, which keeps no
         * gradient of a non-leaf tensor): op results' gradient buffers are
         * recycled during backward */
        cx_set_keep_op_grads(false);
        for (int rep = 0; rep < 3; rep++) {
            cx_loader_reset(ld);
            double t0 = cx_now(), c0 = cx_cpu_now();
            int k = 0;
            while (k < steps && cx_loader_next(ld, &x, &y)) {
                cx_optim_zero_grad(opt);
                cx_tensor *logits = cx_module_forward(net, as_input(in_shape, in_ndim, x));
                cx_backward(cx_cross_entropy(logits, y, CX_REDUCE_MEAN));
                cx_optim_step(opt);
                cx_step_reset();
                k++;
            }
            double ms = (cx_now() - t0) * 1e3 / k, cms = (cx_cpu_now() - c0) * 1e3 / k;
            if (ms < best) best = ms;
            if (cms < best_cpu) best_cpu = cms;
        }
        cx_set_keep_op_grads(true);
        const double pp1 = pingpong_ns();
        printf("CNN_STEP net=%s threads=%d batch=%d ms=%.3f cpu_ms=%.3f pingpong_ns=%.0f/%.0f\n", name, threads, batch,
               best, best_cpu, pp0, pp1);
        fflush(stdout);
    }
    if (epochs > 0) { /* the library's trainer, evaluating the 10,000 test images after every epoch */
        net_ref m = {net, in_shape, in_ndim};
        cx_classifier cls = {.forward = forward, .forward_user = &m, .train = ld, .val = &test, .eval_batch = 1000};
        cx_train_task task = cx_classifier_task(&cls);
        epoch_log log = {name, threads, 0, 0, NULL};
        cx_train_opts o = cx_train_defaults();
        o.epochs = epochs;
        o.quiet = true;
        o.on_step = on_step;
        o.on_eval = on_eval;
        o.hook_user = &log;
        cx_trainer *tr = cx_trainer_new(&task, net, opt, &o);
        log.tr = tr;
        if (cx_trainer_run(tr)) fprintf(stderr, "bench_cnn: %s\n", cx_last_error());
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
