/* cortex train / cortex eval / cortex info */
#include "cli.h"
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Logits of a batch of flat examples (cx_forward_fn for the CLI's models). */
static cx_tensor *model_forward(void *m, cx_tensor *x) { return cli_model_forward(m, x); }

static int max_label(const cx_dataset *d) {
    int m = -1;
    for (int i = 0; i < cx_dataset_len(d); i++)
        if (CX_I32P(d->y)[i] > m) m = CX_I32P(d->y)[i];
    return m;
}

/* Negative labels: -1 (after one line naming the example and the file) or 0. */
static int check_negative(const cx_dataset *d, const char *file) {
    for (int i = 0; i < cx_dataset_len(d); i++)
        if (CX_I32P(d->y)[i] < 0) {
            fprintf(stderr, "cortex train: label %d of example %d in %s: labels must be class numbers 0, 1, 2, ...\n",
                    (int)CX_I32P(d->y)[i], i, file);
            return -1;
        }
    return 0;
}

/* Classes inferred from the labels (train + validation + test): refuse a
 * label set where most of the classes never occur -- a corrupt label (200 in
 * 0..9) would make a 201-class model. ds[0] and ds[1] are the head and tail of
 * one file. Returns 0 or prints one line and returns 2. */
static int check_label_gaps(const cx_dataset *const *ds, const char *const *files, int nd, int ncls) {
    int64_t *count = calloc((size_t)ncls, sizeof *count);
    if (!count) {
        fprintf(stderr, "cortex train: out of memory counting %d classes\n", ncls);
        return 1;
    }
    for (int d = 0; d < nd; d++)
        for (int i = 0; i < cx_dataset_len(ds[d]); i++) count[CX_I32P(ds[d]->y)[i]]++;
    int present = 0;
    for (int c = 0; c < ncls; c++) present += count[c] > 0;
    int rc = 0;
    if (ncls > 2 && 2 * present < ncls) {
        /* the widest run of absent classes, and the examples beyond it: the suspects */
        int gap_lo = 0, gap_len = 0;
        for (int c = 0; c < ncls;) {
            int e = c;
            while (e < ncls && !count[e]) e++;
            if (e - c > gap_len) gap_lo = c, gap_len = e - c;
            c = e > c ? e : c + 1;
        }
        int64_t beyond = 0, below = 0;
        for (int c = 0; c < ncls; c++) {
            if (c >= gap_lo + gap_len) beyond += count[c];
            else below += count[c];
        }
        int top = ncls - 1, at = -1, file = 0;
        for (int d = 0, off = 0; d < nd && at < 0; d++) {
            if (d == 2) off = 0, file = 2;
            for (int i = 0; i < cx_dataset_len(ds[d]) && at < 0; i++)
                if (CX_I32P(ds[d]->y)[i] == top) at = off + i;
            off += cx_dataset_len(ds[d]);
        }
        fprintf(stderr,
                "cortex train: the labels go up to %d, but only %d of those %d classes occur: classes %d-%d have no "
                "examples, %lld example(s) lie beyond them and %lld below (label %d: example %d of %s): a corrupt "
                "label? Fix the labels, or give --classes %d to train with %d classes anyway\n",
                top, present, ncls, gap_lo, gap_lo + gap_len - 1, (long long)beyond, (long long)below, top, at,
                files[file], ncls, ncls);
        rc = 2;
    }
    free(count);
    return rc;
}

/* The network's output for one example must be [1, C] class scores with C
 * above every label. Returns C, or prints one line and returns -1. */
static int probe_classes(cli_model *m, const cx_dataset *d, const char *modelfile, int maxlab, const char *labfile) {
    cx_no_grad_begin();
    cx_set_training(false);
    cx_tensor *one = cx_reshape(cx_slice(d->x, 0, 0, 1, 1), (int[]){1, d->x->shape[1]}, 2);
    cx_tensor *y = cli_model_forward(m, one);
    int C = -1;
    if (!y) {
        fprintf(stderr, "cortex train: %s: %s\n", modelfile, cx_last_error());
    } else if (y->ndim != 2 || y->shape[0] != 1) {
        char b[96];
        int shape[CX_MAX_DIMS], n = y->ndim > 1 ? y->ndim - 1 : 1;
        for (int i = 0; i < n; i++) shape[i] = y->ndim > 1 ? y->shape[i + 1] : y->shape[0];
        size_t k = (size_t)snprintf(b, sizeof b, "[");
        for (int i = 0; i < n && k < sizeof b; i++) k += (size_t)snprintf(b + k, sizeof b - k, i ? ", %d" : "%d", shape[i]);
        if (k < sizeof b) snprintf(b + k, sizeof b - k, "]");
        fprintf(stderr,
                "cortex train: %s: the network outputs %s per example, not one row of class scores: add flatten "
                "(and a linear layer to the classes) at its end\n", modelfile, b);
    } else if (y->shape[1] <= maxlab) {
        fprintf(stderr, "cortex train: %s: the network outputs %d classes, the labels go up to %d (%s)\n", modelfile,
                y->shape[1], maxlab, labfile);
    } else {
        C = y->shape[1];
    }
    cx_step_reset();
    cx_set_training(true);
    cx_no_grad_end();
    return C;
}

static cx_optim *make_optim(const char *name, cx_params *ps, double lr, double momentum, double wd) {
    if (!strcmp(name, "sgd")) {
        cx_sgd_opts o = cx_sgd_defaults();
        o.lr = lr; o.momentum = momentum; o.weight_decay = wd;
        return cx_sgd_new(ps, &o);
    }
    if (!strcmp(name, "adam") || !strcmp(name, "adamw")) {
        cx_adam_opts o = cx_adam_defaults();
        o.lr = lr; o.weight_decay = wd;
        return name[4] ? cx_adamw_new(ps, &o) : cx_adam_new(ps, &o);
    }
    if (!strcmp(name, "rmsprop")) {
        cx_rmsprop_opts o = cx_rmsprop_defaults();
        o.lr = lr; o.momentum = momentum; o.weight_decay = wd;
        return cx_rmsprop_new(ps, &o);
    }
    if (!strcmp(name, "adagrad")) {
        cx_adagrad_opts o = cx_adagrad_defaults();
        o.lr = lr; o.weight_decay = wd;
        return cx_adagrad_new(ps, &o);
    }
    return NULL;
}

/* What the epoch line and the model file need. */
typedef struct {
    cli_model *model;
    const char *out;
    int epochs; /* 0: no epoch limit */
    bool has_val; /* false (--val 0): no val part in the epoch line */
} train_ctx;

/* Ctrl-C (SIGINT) asks the run to stop after the current step: the step hook
 * returns CX_ERR_IO with this message, the command saves the model and a
 * checkpoint and prints how to resume. A second Ctrl-C kills at once. */
static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}
static cx_status check_interrupt(void *user, const cx_train_info *in) {
    (void)user;
    (void)in;
    return g_interrupted ? cx_set_error(CX_ERR_IO, "interrupted") : CX_OK;
}

/* After every epoch: the epoch line, then the model file (the trainer then
 * writes the metrics CSV and the checkpoint). */
static cx_status print_epoch(void *user, const cx_train_info *in) {
    train_ctx *c = user;
    char of[16] = "";
    char val[64] = "";
    if (c->epochs > 0) snprintf(of, sizeof of, "/%d", c->epochs);
    if (c->has_val)
        snprintf(val, sizeof val, "  val loss %.4f acc %.4f", cx_metrics_get(in->metrics, "val_loss"),
                 cx_metrics_get(in->metrics, "val_acc"));
    printf("epoch %d%s  lr %.3g  train loss %.4f acc %.4f%s  %.2fs (%.0f ex/s)\n", in->pos.epoch, of, in->lr,
           in->train_loss, cx_metrics_get(in->metrics, "train_acc"), val, in->epoch_seconds,
           (double)in->epoch_count / in->epoch_seconds);
    fflush(stdout);
    return cx_dist_is_root() ? cli_model_save(c->out, c->model) : CX_OK;
}

int cmd_train(int argc, char **argv) {
    cli_flag f[] = {
        {"data", "directory with train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz]", false, "data/fashion-mnist-subset"},
        {"model", "network file (.net, see models/); without it an MLP from --hidden", false, NULL},
        {"hidden", "MLP hidden layer sizes, comma-separated", false, "256"},
        {"act", "MLP activation: relu, tanh, sigmoid, leaky_relu, elu, gelu, softplus", false, "relu"},
        {"dropout", "MLP dropout probability after each hidden layer", false, "0"},
        {"epochs", "number of epochs (default 5; no limit when --steps or --minutes is given alone)", false, NULL},
        {"steps", "stop after this many optimiser steps in all (0: no limit)", false, "0"},
        {"minutes", "stop after this many minutes of training (this run)", false, NULL},
        {"batch", "minibatch size", false, "64"},
        {"optim", "sgd, adam, adamw, rmsprop, adagrad", false, "adam"},
        {"lr", "learning rate", false, "0.001"},
        {"momentum", "momentum (sgd, rmsprop)", false, "0"},
        {"weight-decay", "L2 weight decay (decoupled for adamw)", false, "0"},
        {"sched", "LR schedule: none, step, exp, cosine", false, "none"},
        {"warmup", "linear warm-up epochs before the schedule", false, "0"},
        {"clip", "clip gradients to this global norm (0: off)", false, "0"},
        {"augment", "image augmentation: shift=N (crop with padding N / translation), flip; e.g. shift=2,flip", false, NULL},
        {"val", "examples of the training file held out for validation (default 1000, or a fifth of a smaller set)", false, NULL},
        {"limit", "train on the first N examples of the training file, validate on the --val after them (0: all)", false, "0"},
        {"test-limit", "evaluate the first N test examples after training (0: skip the test pass; default: all)", false, NULL},
        {"out", "model file (safetensors), saved atomically after every epoch", false, "model.safetensors"},
        {"metrics", "metrics CSV, one row per epoch", false, "metrics.csv"},
        {"checkpoint", "also save a checkpoint (model + optimiser + PRNG + epoch) here after every epoch", false, NULL},
        {"resume", "continue from a checkpoint written by --checkpoint (the same flags and data: checked)", false, NULL},
        {"resume-override", "resume even if flags or data differ from the checkpoint's (says which)", true, NULL},
        {"classes", "number of classes (default: the largest label + 1, refused when most classes are empty)", false,
         NULL},
        {"seed", "PRNG seed", false, "1"},
        {"threads", "threads for OpenMP and the BLAS (0: all cores)", false, "1"},
        {"sync-bn", "under mpirun: batch norm over all the processes' examples of each batch, as one process "
                    "would (default: each process over its own part)", true, NULL},
        {"check-numerics", "stop at the first op producing NaN/Inf and name it", true, NULL},
        {"quiet", "no progress bar", true, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse("train", argc, argv, f, nf, pos, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage("train", "[options]",
                  "Train a classifier on an IDX data set (MNIST format): an MLP, or any network\n"
                  "described in a .net file (--model models/lenet5.net). Reports validation accuracy\n"
                  "per epoch and test accuracy at the end; saves the model as safetensors (PyTorch\n"
                  "state_dict names) and a metrics CSV, atomically, after every epoch.",
                  f, nf);
        return 0;
    }
    int epochs = 5, batch = 64, warmup = 0, val = 1000, limit = 0, threads = 1, seed = 1, classes = 0, max_steps = 0,
        test_limit = -1;
    double minutes = 0, lr = 1e-3, momentum = 0, wd = 0, clip = 0, dropout = 0;
    const char *cmd = "train";
    if (!cli_int(cmd, f, nf, "epochs", 1, 100000, &epochs) || !cli_int(cmd, f, nf, "batch", 1, 1 << 20, &batch) ||
        !cli_int(cmd, f, nf, "warmup", 0, 100000, &warmup) || !cli_int(cmd, f, nf, "val", 0, 1 << 30, &val) ||
        !cli_int(cmd, f, nf, "limit", 0, 1 << 30, &limit) || !cli_int(cmd, f, nf, "threads", 0, 1024, &threads) ||
        !cli_int(cmd, f, nf, "seed", 0, 2147483647, &seed) || !cli_int(cmd, f, nf, "classes", 2, 1 << 20, &classes) ||
        !cli_double(cmd, f, nf, "lr", 0, 100, &lr) ||
        !cli_double(cmd, f, nf, "momentum", 0, 1, &momentum) ||
        !cli_double(cmd, f, nf, "weight-decay", 0, 10, &wd) || !cli_double(cmd, f, nf, "clip", 0, 1e9, &clip) ||
        !cli_double(cmd, f, nf, "dropout", 0, 0.99, &dropout) ||
        !cli_int(cmd, f, nf, "steps", 0, 2147483647, &max_steps) ||
        !cli_double(cmd, f, nf, "minutes", 0, 1e6, &minutes) ||
        !cli_int(cmd, f, nf, "test-limit", 0, 1 << 30, &test_limit))
        return 2;
    if (cli_get(f, nf, "minutes") && minutes <= 0) {
        fprintf(stderr, "cortex train: --minutes must be positive\n");
        return 2;
    }
    /* --steps / --minutes alone: no epoch limit (like charlm train) */
    bool no_epoch_limit = !cli_get(f, nf, "epochs") && (max_steps > 0 || minutes > 0);
    bool val_given = cli_get(f, nf, "val") != NULL;
    const char *dir = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out"), *metrics = cli_get(f, nf, "metrics");
    const char *optname = cli_get(f, nf, "optim"), *schedname = cli_get(f, nf, "sched");
    const char *modelfile = cli_get(f, nf, "model"), *ckpt = cli_get(f, nf, "checkpoint"),
               *resume = cli_get(f, nf, "resume"), *augs = cli_get(f, nf, "augment");
    cx_act act;
    if (!cx_act_parse(cli_get(f, nf, "act"), &act) || act == CX_ACT_SIGN || act == CX_ACT_MAXOUT ||
        act == CX_ACT_SOFTMAX || act == CX_ACT_LOG_SOFTMAX) {
        fprintf(stderr, "cortex train: unknown or unsuitable activation '%s'\n", cli_get(f, nf, "act"));
        return 2;
    }
    if (strcmp(optname, "sgd") && strcmp(optname, "adam") && strcmp(optname, "adamw") &&
        strcmp(optname, "rmsprop") && strcmp(optname, "adagrad")) {
        fprintf(stderr, "cortex train: unknown optimiser '%s' (sgd, adam, adamw, rmsprop, adagrad)\n", optname);
        return 2;
    }
    cx_augment_opts aug = {0, false};
    if (augs) {
        char ab[128];
        snprintf(ab, sizeof ab, "%s", augs);
        for (char *tok = strtok(ab, ","); tok; tok = strtok(NULL, ",")) {
            char *end;
            if (!strcmp(tok, "flip")) aug.hflip = true;
            else if (!strncmp(tok, "shift=", 6)) {
                long v = strtol(tok + 6, &end, 10);
                if (end == tok + 6 || *end || v < 0 || v > 64) {
                    fprintf(stderr, "cortex train: --augment: %s: the shift must be a whole number of pixels "
                                    "from 0 to 64\n", tok);
                    return 2;
                }
                aug.shift = (int)v;
            } else {
                fprintf(stderr, "cortex train: --augment: unknown item '%s' (shift=N, flip)\n", tok);
                return 2;
            }
        }
    }
    cx_sched sched;
    if (!strcmp(schedname, "none")) sched = cx_sched_constant();
    else if (no_epoch_limit && strcmp(schedname, "exp")) {
        fprintf(stderr, "cortex train: --sched %s needs --epochs (its length) with --steps / --minutes\n", schedname);
        return 2;
    } else if (!strcmp(schedname, "step")) sched = cx_sched_step(epochs > 3 ? epochs / 3 : 1, 0.1);
    else if (!strcmp(schedname, "exp")) sched = cx_sched_exponential(0.9);
    else if (!strcmp(schedname, "cosine")) sched = cx_sched_cosine(epochs - warmup > 0 ? epochs - warmup : 1, 0);
    else {
        fprintf(stderr, "cortex train: unknown schedule '%s' (none, step, exp, cosine)\n", schedname);
        return 2;
    }
    if (warmup > 0) sched = cx_sched_with_warmup(sched, 0.1, warmup);
    int sizes[16] = {0}, ns = 1;
    {
        const char *p = cli_get(f, nf, "hidden");
        while (*p) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || v > 100000 || ns >= 14 || (*end && *end != ',')) {
                fprintf(stderr, "cortex train: --hidden must be sizes like 256,128, got '%s'\n", cli_get(f, nf, "hidden"));
                return 2;
            }
            sizes[ns++] = (int)v;
            p = *end ? end + 1 : end;
        }
    }
    /* the files are written after every epoch: find out now if they cannot be */
    if (!cli_check_writable(cmd, "out", out) || !cli_check_writable(cmd, "metrics", metrics) ||
        !cli_check_writable(cmd, "checkpoint", ckpt))
        return 2;
    char img[1024], lab[1024], trlab[1024], telab[1024] = "";
    if (!cli_find_idx(dir, "train", img, lab, sizeof img)) {
        fprintf(stderr, "cortex train: no training data: %s not found\n", img);
        return 1;
    }
    snprintf(trlab, sizeof trlab, "%s", lab);
    cx_set_threads(threads);
    cx_seed((uint64_t)seed);
    cx_set_check_numerics(cli_get(f, nf, "check-numerics") != NULL);
    cx_dataset all, train, valset, test = {0};
    /* --limit N: N training examples, then --val validation examples after them */
    if (cx_dataset_load_idx(img, lab, limit > 0 ? (int)(limit + (int64_t)val < (1 << 30) ? limit + val : 1 << 30) : 0,
                            &all)) {
        fprintf(stderr, "cortex train: %s\n", cx_last_error());
        return 1;
    }
    int n_all = cx_dataset_len(&all);
    int n_train = limit > 0 ? limit : n_all - val;
    if (!val_given && (limit > 0 ? n_all < limit + val : val > n_all / 5)) {
        /* the default --val 1000 shrinks to fit a small data set or --limit */
        int v = limit > 0 ? n_all - limit : n_all / 5;
        if (v > 0) {
            printf("validation: %d examples (the default 1000 does not fit: %s has %d%s)\n", v, img, n_all,
                   limit > 0 ? " for --limit plus validation" : "");
            val = v;
            n_train = n_all - val;
        }
    }
    if (n_train < 1 || n_all - n_train < val || n_train + val > n_all) {
        if (limit > 0)
            fprintf(stderr, "cortex train: --limit %d plus --val %d needs %lld examples, %s has %d: lower --limit or --val\n",
                    limit, val, (long long)limit + val, img, n_all);
        else
            fprintf(stderr, "cortex train: --val %d leaves no training examples (%s has %d): lower --val\n", val, img,
                    n_all);
        cx_dataset_free(&all);
        return 2;
    }
    /* what the data is, for --resume: its size and a fingerprint of its bytes */
    char data_id[160];
    {
        uint64_t h = cli_fingerprint(0, all.x->data, (size_t)all.x->numel * cx_dtype_size(all.x->dtype));
        h = cli_fingerprint(h, all.y->data, (size_t)all.y->numel * cx_dtype_size(all.y->dtype));
        snprintf(data_id, sizeof data_id, "%d examples of %d values, fingerprint %016llx", n_all, all.x->shape[1],
                 (unsigned long long)h);
    }
    if (check_negative(&all, trlab)) {
        cx_dataset_free(&all);
        return 1;
    }
    int maxlab = max_label(&all);
    cx_dataset_split(&all, val, &train, &valset);
    cx_dataset_free(&all);
    bool have_test = test_limit != 0 && cli_find_idx(dir, "t10k", img, lab, sizeof img);
    int rc = 0;
    if (have_test && cx_dataset_load_idx(img, lab, test_limit > 0 ? test_limit : 0, &test)) {
        fprintf(stderr, "cortex train: %s\n", cx_last_error());
        rc = 1;
    } else if (have_test) {
        snprintf(telab, sizeof telab, "%s", lab);
        if (check_negative(&test, telab)) rc = 1;
        else if (max_label(&test) > maxlab) maxlab = max_label(&test);
    }
    /* the classes: --classes, the network's outputs, or the labels */
    const char *maxfile = have_test && max_label(&test) == maxlab ? telab : trlab;
    if (!rc && classes && maxlab >= classes) {
        fprintf(stderr, "cortex train: --classes %d, but the labels go up to %d (%s)\n", classes, maxlab, maxfile);
        rc = 2;
    }
    int ncls = classes ? classes : maxlab + 1;
    if (ncls < 2) ncls = 2;
    if (!rc && !classes && !modelfile) {
        const cx_dataset *ds[3] = {&train, &valset, &test};
        const char *files[3] = {trlab, trlab, telab};
        rc = check_label_gaps(ds, files, have_test ? 3 : 2, ncls);
    }
    cli_model model;
    if (rc) {
    } else if (modelfile) {
        if (cli_model_from_netfile(modelfile, &model)) {
            fprintf(stderr, "cortex train: %s\n", cx_last_error());
            rc = 1;
        } else if (cli_model_features(&model) != train.x->shape[1]) {
            fprintf(stderr, "cortex train: %s expects %d input values per example, the data has %d\n", modelfile,
                    cli_model_features(&model), train.x->shape[1]);
            cli_model_free(&model);
            rc = 1;
        } else {
            int C = probe_classes(&model, &train, modelfile, maxlab, maxfile);
            if (C < 0) rc = 2;
            else if (classes && C != classes) {
                fprintf(stderr, "cortex train: %s: the network outputs %d classes, --classes is %d\n", modelfile, C,
                        classes);
                rc = 2;
            } else {
                ncls = C;
            }
            if (rc) cli_model_free(&model);
        }
    } else {
        sizes[0] = train.x->shape[1];
        sizes[ns++] = ncls;
        cli_model_mlp(&model, sizes, ns, act, (float)dropout);
    }
    if (!rc && (aug.shift || aug.hflip) && model.in_ndim != 3) {
        fprintf(stderr, "cortex train: --augment needs an image model (input C H W, from --model)\n");
        cli_model_free(&model);
        rc = 2;
    }
    if (rc) {
        cx_dataset_free(&train);
        cx_dataset_free(&valset);
        if (have_test) cx_dataset_free(&test);
        return rc;
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(model.net, &ps);
    cx_optim *opt = make_optim(optname, &ps, lr, momentum, wd);
    printf("data %s: %d train, %d validation, %d test examples, %d features, %d classes\n", dir,
           cx_dataset_len(&train), cx_dataset_len(&valset), have_test ? cx_dataset_len(&test) : 0,
           train.x->shape[1], ncls);
    if (model.is_netdef) {
        printf("model: %s, %lld parameters\n", modelfile, (long long)cx_params_count(&ps));
    } else {
        printf("model: MLP");
        for (int i = 0; i < ns; i++) printf("%s%d", i ? "-" : " ", sizes[i]);
        printf(" (%s), %lld parameters", cx_act_name(act), (long long)cx_params_count(&ps));
        printf("\n");
    }
    printf("training: %s lr %g, batch %d, %d thread(s), GEMM %s, seed %d\n", optname, lr, batch, cx_get_threads(),
           cx_gemm_describe(), seed);

    /* the loop, the metrics CSV, checkpoints and resume: the library's trainer */
    cx_loader *ld = cx_loader_new(&train, batch, true, false);
    /* under mpirun: data-parallel, each rank on its part of every batch of
     * --batch examples. The shuffles come from a copy of the seeded stream,
     * so they are those of a one-process run with the same seed (augmentation
     * draws from the thread's stream, which differs between ranks). */
    const int nproc = cx_dist_size();
    cx_rng data_rng = cx_rng_get();
    if (nproc > 1) {
        if (batch < nproc) {
            fprintf(stderr, "cortex train: --batch %d is smaller than the %d processes: each needs examples\n", batch, nproc);
            rc = 2;
        }
        cx_loader_set_rng(ld, &data_rng);
        cx_dist_shard_loader(ld);
        printf("data-parallel: %d processes, each on %d-%d examples of every batch of %d\n", nproc, batch / nproc,
               (batch + nproc - 1) / nproc, batch);
        if (cli_get(f, nf, "sync-bn")) {
            /* every process needs examples of every batch, the last one of an epoch too */
            const int64_t last = cx_dataset_len(&train) % batch;
            if (last > 0 && last < nproc) {
                fprintf(stderr,
                        "cortex train: --sync-bn: the last batch of each epoch has %lld example(s), fewer than the %d "
                        "processes (each needs one); change --batch or --limit\n", (long long)last, nproc);
                rc = 2;
            }
            if (!rc) {
                cx_dist_sync_batchnorm(true);
                printf("batch norm synchronised over the %d processes\n", nproc);
            }
        }
    }
    cx_classifier cls = {.forward = model_forward, .forward_user = &model, .train = ld, .val = &valset,
                         .eval_batch = 500, .augment = aug};
    if (aug.shift || aug.hflip) memcpy(cls.image_shape, model.in_shape, sizeof cls.image_shape);
    char szbuf[256], runbuf[2048];
    const char *mk[CLI_MODEL_META + 64], *mv[CLI_MODEL_META + 64];
    /* the flags that do not change the trajectory: not recorded, not compared
     * (--epochs only moves the end, unless the schedule is laid out over it) */
    const bool sched_epochs = !strcmp(schedname, "step") || !strcmp(schedname, "cosine");
    /* (--sync-bn, like the number of processes, belongs to how a run is
     * spread over processes: a checkpoint resumes on any number) */
    const char *const free_flags[] = {"out", "metrics", "checkpoint", "resume", "resume-override", "threads", "quiet",
                                      "check-numerics", "data", "steps", "minutes", "test-limit", "sync-bn",
                                      sched_epochs ? "" : "epochs", NULL};
    train_ctx ctx = {&model, out, no_epoch_limit ? 0 : epochs, cx_dataset_len(&valset) > 0};
    cx_train_opts o = cx_train_defaults();
    o.epochs = no_epoch_limit ? 0 : epochs;
    o.max_steps = max_steps;
    o.minutes = minutes;
    o.on_step = check_interrupt;
    o.sched = sched;
    o.clip = (float)clip;
    o.metrics_path = metrics;
    o.checkpoint_path = ckpt;
    o.meta_keys = mk;
    o.meta_values = mv;
    o.n_meta = cli_model_meta(&model, mk, mv, szbuf, sizeof szbuf);
    o.n_meta += cli_run_meta(f, nf, free_flags, data_id, mk + o.n_meta, mv + o.n_meta, 64, runbuf, sizeof runbuf);
    o.quiet = cli_get(f, nf, "quiet") != NULL;
    o.on_eval = print_epoch;
    o.hook_user = &ctx;
    o.data_parallel = nproc > 1;
    cx_train_task task = cx_classifier_task(&cls);
    cx_trainer *tr = cx_trainer_new(&task, model.net, opt, &o);
    if (nproc > 1) cx_trainer_add_rng(tr, "data", &data_rng);
    if (resume) {
        /* the same flags and data as the run that wrote the checkpoint */
        cx_st_file *ck = NULL;
        if (cx_st_load(resume, &ck)) {
            fprintf(stderr, "cortex train: %s\n", cx_last_error());
            rc = 1;
        } else if (cx_st_meta(ck, "cortex.checkpoint")) {
            rc = cli_run_check(cmd, resume, ck, f, nf, free_flags, NULL, data_id,
                               cli_get(f, nf, "resume-override") != NULL);
        }
        cx_st_free(ck);
    }
    if (resume && !rc) {
        if (cx_trainer_resume(tr, resume)) {
            fprintf(stderr, "cortex train: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("resumed from %s after epoch %d\n", resume, cx_trainer_info(tr).pos.epoch - 1);
        }
    }
    double t_start = cx_now();
    g_interrupted = 0;
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    if (!rc && cx_trainer_run(tr)) {
        if (g_interrupted) {
            rc = 130;
        } else {
            fprintf(stderr, "cortex train: %s\n", cx_last_error());
            rc = 1;
        }
    }
    sigaction(SIGINT, &old_sa, NULL);
    if (rc == 130) {
        /* stopped by Ctrl-C between two steps: save the model and a checkpoint
         * (the --checkpoint file, or OUT.ckpt), then say how to go on */
        cx_train_info in = cx_trainer_info(tr);
        char defckpt[1100];
        snprintf(defckpt, sizeof defckpt, "%s.ckpt", out);
        const char *cp = ckpt ? ckpt : defckpt;
        if (!cx_dist_is_root()) {
            /* rank 0 saves */
        } else if (cli_model_save(out, &model) || cx_trainer_save(tr, cp)) {
            fprintf(stderr, "cortex train: interrupted; saving failed: %s\n", cx_last_error());
        } else {
            fprintf(stderr, "\ncortex train: interrupted at epoch %d, batch %d (step %lld); model saved to %s, checkpoint to %s\n",
                    in.pos.epoch, in.pos.batch, (long long)in.pos.step, out, cp);
            fprintf(stderr, "to resume: cortex train");
            for (int i = 0; i < argc; i++) {
                if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--checkpoint")) {
                    i++;
                    continue;
                }
                if (!strncmp(argv[i], "--resume=", 9) || !strncmp(argv[i], "--checkpoint=", 13)) continue;
                fprintf(stderr, strpbrk(argv[i], " \t'\"$\\") ? " '%s'" : " %s", argv[i]);
            }
            fprintf(stderr, " --checkpoint %s --resume %s\n", cp, cp);
        }
    }
    if (rc == 0) {
        cx_train_info in = cx_trainer_info(tr);
        printf("trained to epoch %d (%lld steps) in %.1fs; model saved to %s, metrics to %s%s%s\n",
               in.pos.batch > 0 ? in.pos.epoch : in.pos.epoch - 1, (long long)in.pos.step, cx_now() - t_start, out,
               metrics, ckpt ? ", checkpoint to " : "", ckpt ? ckpt : "");
        if (have_test && cx_dist_is_root()) {
            cx_classifier_result r;
            if (cx_classifier_eval(model_forward, &model, &test, 500, NULL, 0, &r)) {
                fprintf(stderr, "cortex train: %s\n", cx_last_error());
                rc = 1;
            } else {
                printf("test: loss %.4f accuracy %.4f (%d examples%s)\n", r.loss, r.accuracy, cx_dataset_len(&test),
                       test_limit > 0 ? ", --test-limit" : "");
            }
        }
    }
    cx_trainer_free(tr);
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cli_model_free(&model);
    cx_dataset_free(&train);
    cx_dataset_free(&valset);
    if (have_test) cx_dataset_free(&test);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    cli_flag f[] = {
        {"split", "which files of DATA to use: t10k or train", false, "t10k"},
        {"threads", "threads for OpenMP and the BLAS (0: all cores)", false, "1"},
        {"confusion", "print the confusion matrix", true, NULL},
        {"classes", "class names: auto (Fashion-MNIST's for a fashion data directory), fashion, none or a file "
                    "(one name per line)", false, "auto"},
        {"allow-nonfinite", "evaluate a model whose weights hold NaN or inf (refused otherwise)", true, NULL},
        {"net", "network (.net file) of a MODEL without Cortex metadata, e.g. a PyTorch state_dict", false, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos, threads = 1;
    const char *pos[2];
    bool help;
    if (cli_parse("eval", argc, argv, f, nf, pos, 2, &npos, &help)) return 2;
    if (help) {
        cli_usage("eval", "MODEL DATA [options]",
                  "Evaluate a model saved by 'cortex train' on an IDX data set. DATA is a directory\n"
                  "holding <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz]. A PyTorch\n"
                  "state_dict saved as safetensors loads with --net NET.net naming its network.",
                  f, nf);
        return 0;
    }
    if (npos != 2) {
        fprintf(stderr, "cortex eval: expected MODEL and DATA (see 'cortex eval --help')\n");
        return 2;
    }
    if (!cli_int("eval", f, nf, "threads", 0, 1024, &threads)) return 2;
    cx_set_threads(threads);
    cli_model model;
    if (cli_model_load_net(pos[0], cli_get(f, nf, "net"), &model)) {
        fprintf(stderr, "cortex eval: %s\n", cx_last_error());
        return 1;
    }
    if (!cli_model_finite_or_allowed("eval", &model, pos[0], cli_get(f, nf, "allow-nonfinite") != NULL)) {
        cli_model_free(&model);
        return 1;
    }
    char img[1024], lab[1024];
    cx_dataset d;
    if (!cli_find_idx(pos[1], cli_get(f, nf, "split"), img, lab, sizeof img)) {
        fprintf(stderr, "cortex eval: no data: %s not found\n", img);
        cli_model_free(&model);
        return 1;
    }
    if (cx_dataset_load_idx(img, lab, 0, &d)) {
        fprintf(stderr, "cortex eval: %s\n", cx_last_error());
        cli_model_free(&model);
        return 1;
    }
    int rc = 0, C = 0;
    {
        /* number of classes: run one example */
        cx_no_grad_begin();
        cx_set_training(false);
        if (d.x->shape[1] == cli_model_features(&model)) {
            cx_tensor *one = cx_reshape(cx_slice(d.x, 0, 0, 1, 1), (int[]){1, d.x->shape[1]}, 2);
            C = cli_model_forward(&model, one)->shape[1];
            cx_step_reset();
        }
        cx_set_training(true);
        cx_no_grad_end();
    }
    if (d.x->shape[1] != cli_model_features(&model)) {
        fprintf(stderr, "cortex eval: the model expects %d features, %s has %d\n", cli_model_features(&model), img,
                d.x->shape[1]);
        rc = 1;
    } else if (max_label(&d) >= C) {
        fprintf(stderr, "cortex eval: label %d in %s but the model has %d classes\n", max_label(&d), lab, C);
        rc = 1;
    } else {
        int64_t *conf = calloc((size_t)C * C, sizeof *conf);
        cx_classifier_result r;
        if (!conf) {
            fprintf(stderr, "cortex eval: out of memory\n");
            rc = 1;
        } else if (cx_classifier_eval(model_forward, &model, &d, 500, conf, C, &r)) {
            fprintf(stderr, "cortex eval: %s\n", cx_last_error());
            rc = 1;
        } else if (!isfinite(r.loss)) {
            /* never a loss of nan with exit 0 */
            fprintf(stderr, "cortex eval: %s on %s: the loss is %s (accuracy %.4f): the model's outputs are not "
                            "finite\n", pos[0], img, isnan(r.loss) ? "NaN" : "infinite", r.accuracy);
            rc = 1;
        } else {
            printf("%s on %s: %d examples, loss %.4f, accuracy %.4f\n", pos[0], img, cx_dataset_len(&d), r.loss,
                   r.accuracy);
            static cli_classes names;
            if (cli_get(f, nf, "confusion") && cli_classes_load("eval", cli_get(f, nf, "classes"), pos[1], C, &names))
                cli_print_confusion(conf, C, &names);
            else if (cli_get(f, nf, "confusion"))
                rc = 1;
        }
        free(conf);
    }
    cx_dataset_free(&d);
    cli_model_free(&model);
    return rc;
}

int cmd_summary(int argc, char **argv) {
    cli_flag f[] = {
        {"net", "network (.net file) of a MODEL without Cortex metadata, e.g. a PyTorch state_dict", false, NULL},
        {"allow-nonfinite", "describe a saved model whose weights hold NaN or inf (refused otherwise)", true, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos;
    bool help;
    if (cli_parse("summary", argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help || npos != 1) {
        if (!help) fprintf(stderr, "cortex summary: expected one .net file or saved model\n");
        else
            cli_usage("summary", "MODEL [--net NET.net]",
                      "For each layer of a network (.net file, or a model saved by 'cortex train --model'):\n"
                      "output shape, parameter count and receptive field, and the totals. A model saved by\n"
                      "'cortex charlm train': its sizes and each part's parameters. A PyTorch state_dict\n"
                      "saved as safetensors loads with --net naming its network (shapes are checked).\n"
                      "An ONNX model (.onnx): its opset, inputs and outputs, nodes per op and the nodes\n"
                      "Cortex cannot run (as 'cortex onnx info').",
                      f, nf);
        return help ? 0 : 2;
    }
    cli_model m;
    size_t len = strlen(pos[0]);
    if (len > 5 && !strcmp(pos[0] + len - 5, ".onnx")) { /* an ONNX model: what 'cortex onnx info' prints */
        cx_onnx_model *om;
        if (cx_onnx_load(pos[0], &om)) {
            fprintf(stderr, "cortex summary: %s\n", cx_last_error());
            return 1;
        }
        cx_onnx_print_info(om, stdout);
        cx_onnx_free(om);
        return 0;
    }
    bool netfile = len > 4 && !strcmp(pos[0] + len - 4, ".net");
    int lm = netfile ? -1 : cli_charlm_summary(pos[0]); /* a char-LM model */
    if (lm >= 0) return lm;
    cx_status st = netfile ? cli_model_from_netfile(pos[0], &m) : cli_model_load_net(pos[0], cli_get(f, nf, "net"), &m);
    if (st) {
        fprintf(stderr, "cortex summary: %s\n", cx_last_error());
        return 1;
    }
    if (!cli_model_finite_or_allowed("summary", &m, pos[0], cli_get(f, nf, "allow-nonfinite") != NULL)) {
        cli_model_free(&m);
        return 1;
    }
    if (!m.is_netdef) {
        printf("MLP");
        for (int i = 0; i < m.ns; i++) printf("%s%d", i ? "-" : " ", m.sizes[i]);
        printf(" (%s)\n", cx_act_name(m.act));
        cx_module_print(m.net);
    } else {
        cx_net_summary(m.net, stdout);
    }
    cli_model_free(&m);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *pos[1];
    int npos;
    bool help;
    if (cli_parse("info", argc, argv, NULL, 0, pos, 1, &npos, &help)) return 2;
    if (help || npos != 1) {
        if (!help) fprintf(stderr, "cortex info: expected one safetensors file\n");
        cli_usage("info", "FILE", "List the tensors and metadata of a safetensors file.", NULL, 0);
        return help ? 0 : 2;
    }
    cx_st_file *sf;
    if (cx_st_load(pos[0], &sf)) {
        fprintf(stderr, "cortex info: %s\n", cx_last_error());
        return 1;
    }
    int64_t total = 0;
    for (int i = 0; i < sf->n; i++) {
        char b[96];
        cx_tensor *t = sf->entries[i].tensor;
        printf("%-32s %-4s %s\n", sf->entries[i].name, cx_dtype_name(t->dtype), cx_shape_str(t, b, sizeof b));
        total += t->numel;
    }
    for (int i = 0; i < sf->n_meta; i++) printf("metadata %s = %s\n", sf->meta_keys[i], sf->meta_values[i]);
    printf("%d tensors, %lld values\n", sf->n, (long long)total);
    cx_st_free(sf);
    return 0;
}
