/* Case study: many-to-one sequence classification -- an LSTM reads a
 * Fashion-MNIST image row by row and classifies it from its last state.
 *
 *   build/<variant>/examples/row_lstm [--data DIR | --subset] [--epochs 5]
 *       [--hidden 128] [--batch 64] [--lr 2e-3] [--threads 1] [--seed 1]
 *
 * Each 28x28 image becomes a sequence of T = 28 steps, step t being pixel
 * row t (28 inputs in [0, 1]). An LSTM with 128 hidden units runs over the
 * rows; its final hidden state h_28 (it has "seen" the whole image) goes
 * through a linear layer to the 10 class logits:
 *
 *   x [B, 784] -> [B, 28, 28] (batch_first) -> LSTM(28, 128) -> h_n [1, B, 128]
 *              -> [B, 128] -> Linear(128, 10) -> cross-entropy
 *
 * This is the "many-to-one" pattern of the recurrent-network notes: many
 * inputs, one output at the end; the gradient of the loss reaches the first
 * rows only through back-propagation through time (28 steps).
 *
 * Data: Debian's full set in /usr/share/datasets/fashion-mnist (package
 * dataset-fashion-mnist, 60,000 train / 10,000 test) when it is installed,
 * else the 6,000 / 1,000-image subset shipped in data/fashion-mnist-subset;
 * --subset forces the subset, --data DIR takes any directory with the four
 * MNIST-format files.
 * Training: Adam, minibatches of 64, global gradient-norm clipping at 5.
 * Threads: one by default. The per-step products here are small (batch 64,
 * a few hundred units), so a second thread gains little, and on a machine
 * shared with other jobs OpenMP threads spinning at barriers made 2-thread
 * training about 10x slower than 1-thread in our measurements; pass
 * --threads 2 on an idle machine (or export OMP_WAIT_POLICY=passive).
 * Prints train loss, test accuracy and the time of every epoch. The loop is
 * the library's trainer with its classifier task (cross-entropy on the
 * loader's minibatches); the model is given to it as a forward function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>

/* The model: an LSTM module and a linear head, kept together. */
typedef struct {
    cx_module *lstm, *head;
} row_model;

/* Logits [B, 10] of a batch of images x [B, 784] (a cx_forward_fn). */
static cx_tensor *model_forward(void *user, cx_tensor *x) {
    row_model *m = user;
    int B = x->shape[0];
    /* Row-major [B, 784] is already [B, 28 rows, 28 pixels]: a free reshape. */
    cx_tensor *seq = cx_reshape(x, CX_SHAPE(B, 28, 28));
    /* cx_rnn_forward returns every output and the final states; we only need
     * h_n, [num_layers * directions = 1, B, H]. */
    cx_rnn_out r = cx_rnn_forward(m->lstm, seq, NULL, NULL);
    cx_tensor *h_last = cx_reshape(r.h, CX_SHAPE(B, r.h->shape[2]));
    return cx_module_forward(m->head, h_last);
}

/* After every epoch (the trainer evaluated the test set as its "val" set). */
typedef struct {
    int epochs;
    double total, total_cpu, acc;
} report;

static cx_status print_epoch(void *user, const cx_train_info *in) {
    report *r = user;
    r->total += in->epoch_seconds;
    r->total_cpu += in->epoch_cpu_seconds;
    r->acc = cx_metrics_get(in->metrics, "val_acc");
    printf("epoch %d/%d  train loss %.4f  test acc %.2f%%  %.1f s (cpu %.1f s)\n", in->pos.epoch, r->epochs,
           in->train_loss, 100.0 * r->acc, in->epoch_seconds, in->epoch_cpu_seconds);
    fflush(stdout);
    return CX_OK;
}

static int usage(void) {
    fprintf(stderr, "usage: row_lstm [--data DIR | --subset] [--epochs N] [--hidden H] [--batch B]\n"
                    "                [--lr LR] [--threads T] [--seed S]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *subset = "data/fashion-mnist-subset", *dir = cx_fashion_mnist_dir(NULL);
    int epochs = 5, hidden = 128, batch = 64, threads = 1;
    double lr = 2e-3;
    unsigned long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--subset")) { dir = subset; continue; }
        if (!v) return usage();
        if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--hidden")) hidden = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "row_lstm: unknown option %s\n", a);
            return usage();
        }
        i++;
    }
    if (epochs < 1 || hidden < 1 || batch < 1 || !(lr > 0)) {
        fprintf(stderr, "row_lstm: epochs, hidden, batch and lr must be positive\n");
        return usage();
    }
    cx_seed(seed); /* initial weights and the shuffling of every epoch */
    cx_set_threads(threads);

    cx_dataset train, test;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &train) != CX_OK) {
        fprintf(stderr, "row_lstm: %s\n(give a directory with the Fashion-MNIST IDX files "
                        "with --data, or apt-get install dataset-fashion-mnist)\n",
                cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &test) != CX_OK) {
        fprintf(stderr, "row_lstm: %s\n", cx_last_error());
        cx_dataset_free(&train);
        return 1;
    }
    if (train.x->shape[1] != 784 || test.x->shape[1] != 784) {
        fprintf(stderr, "row_lstm: expected 28x28 images, got %d pixels\n", train.x->shape[1]);
        cx_dataset_free(&train);
        cx_dataset_free(&test);
        return 1;
    }
    int n_train = cx_dataset_len(&train), n_test = cx_dataset_len(&test);
    printf("data: %s, %d train / %d test images, read as 28 rows of 28 pixels\n", dir, n_train,
           n_test);

    /* Model. batch_first lets the LSTM take [B, T, I] straight from the
     * image rows; h_n stays [1, B, H] as in PyTorch. The forget-gate bias
     * starts at 1 (effective bias, split as bias_ih = 1, bias_hh = 0), a
     * common trick that helps a fresh LSTM keep early rows in memory. */
    cx_rnn_opts ro = cx_rnn_defaults();
    ro.batch_first = true;
    ro.set_forget_bias = true;
    ro.forget_bias = 1.0f;
    row_model m;
    m.lstm = cx_lstm_new(28, hidden, &ro);
    m.head = cx_linear_new(hidden, 10, true);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m.lstm, &ps); /* weight_ih_l0 [4H, 28], weight_hh_l0 [4H, H], biases */
    cx_module_params(m.head, &ps); /* weight [10, H], bias [10] */
    printf("model: LSTM(28, %d) -> last hidden state -> Linear(%d, 10): %lld parameters\n", hidden,
           hidden, (long long)cx_params_count(&ps));

    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_loader *ld = cx_loader_new(&train, batch, true, false);
    printf("training: Adam lr %g, batch %d, clip 5, %d epoch(s), %d thread(s)\n", lr, batch, epochs,
           cx_get_threads());

    /* BPTT through the 28 rows happens inside cx_backward; clip 5 */
    cx_classifier cls = {.forward = model_forward, .forward_user = &m, .train = ld, .val = &test,
                         .eval_batch = 500};
    cx_train_task task = cx_classifier_task(&cls);
    report rep = {epochs, 0, 0, 0};
    cx_train_opts to = cx_train_defaults();
    to.epochs = epochs;
    to.clip = 5.0f;
    to.on_eval = print_epoch;
    to.hook_user = &rep;
    cx_trainer *tr = cx_trainer_new(&task, NULL, opt, &to); /* NULL: the optimiser's parameters are the model */
    int rc = 0;
    if (cx_trainer_run(tr) != CX_OK) {
        fprintf(stderr, "row_lstm: %s\n", cx_last_error());
        rc = 1;
    }
    cx_trainer_free(tr);
    double total = rep.total, total_cpu = rep.total_cpu, acc = rep.acc;
    printf("ROW_LSTM hidden=%d epochs=%d train=%d test=%d threads=%d test_acc=%.4f "
           "sec_per_epoch=%.2f cpu_sec_per_epoch=%.2f\n",
           hidden, epochs, n_train, n_test, cx_get_threads(), acc, total / epochs,
           total_cpu / epochs);

    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m.lstm);
    cx_module_free(m.head);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return rc;
}
