/* Case study: an MLP on Fashion-MNIST -- a tour of the Cortex C API.
 *
 *   build/<variant>/examples/fashion_mlp [data-dir] [epochs]
 *
 * data-dir defaults to Debian's /usr/share/datasets/fashion-mnist (package
 * dataset-fashion-mnist); if that is missing we fall back to the 6,000-image
 * subset shipped in data/fashion-mnist-subset. epochs defaults to 5.
 *
 * What it does, in the order a reader meets it below:
 *   1. load the IDX files into in-memory datasets (cx_dataset_load_idx_dir);
 *   2. build an MLP 784 -> 256 -> 10 with ReLU (cx_mlp_new) and collect its
 *      parameters (cx_module_params);
 *   3. train it with Adam (lr 1e-3) on minibatches of 64 with the library's
 *      trainer (cx_trainer_run: per step zero_grad, forward, backward,
 *      optimiser step, one cx_step_reset()), printing train loss, test
 *      accuracy and time per epoch from a hook;
 *   4. save the parameters as safetensors (cx_params_save), load them into a
 *      freshly built model (cx_params_load) and check the reloaded model
 *      gives exactly the same test accuracy.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h> /* the one header: tensors, autograd, nn, optim, io, data, train */

/* Number of test examples the model classifies correctly.
 *
 * Evaluation needs no gradients: cx_classifier_eval runs the model between
 * cx_no_grad_begin/end, so the forward pass records no graph, in evaluation
 * mode (cx_set_training(false): it matters for layers such as dropout --
 * none here), on batches of 1000 taken in order, resetting the arena after
 * each. cx_forward_module adapts a module to the cx_forward_fn it calls. */
static long count_correct(cx_module *net, const cx_dataset *test) {
    cx_classifier_result r;
    if (cx_classifier_eval(cx_forward_module, net, test, 1000, NULL, 0, &r) != CX_OK) return -1;
    return (long)r.correct;
}

/* Called by the trainer after every epoch's evaluation (the metrics come from
 * the classifier task: train_acc, val_loss, val_acc -- our "val" set is the
 * test set here). */
typedef struct {
    int epochs;
    double total_time;
} progress;

static cx_status print_epoch(void *user, const cx_train_info *in) {
    progress *p = user;
    p->total_time += in->epoch_seconds;
    printf("epoch %d/%d  train loss %.4f  test acc %.2f%%  %.2f s\n", in->pos.epoch, p->epochs, in->train_loss,
           100.0 * cx_metrics_get(in->metrics, "val_acc"), in->epoch_seconds);
    fflush(stdout);
    return CX_OK;
}

int main(int argc, char **argv) {
    /* the directory given, else Debian's dataset-fashion-mnist, else the
     * subset shipped in data/fashion-mnist-subset */
    const char *dir = cx_fashion_mnist_dir(argc > 1 ? argv[1] : NULL);
    int epochs = argc > 2 ? atoi(argv[2]) : 5;
    if (epochs < 1) {
        fprintf(stderr, "usage: fashion_mlp [data-dir] [epochs >= 1]\n");
        return 2;
    }
    const char *model_path = "out/fashion_mlp.safetensors";

    /* ---- runtime set-up -------------------------------------------------
     * cx_seed seeds the one PRNG of Cortex: the initial weights and the
     * shuffling of every epoch come from it, so a run is reproducible (for a
     * given thread count). One thread keeps the timings comparable. */
    cx_seed(1);
    cx_set_threads(1);

    /* ---- 1. data ------------------------------------------------------- */
    if (argc <= 1 && !strcmp(dir, "data/fashion-mnist-subset"))
        printf("no Fashion-MNIST in /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist);\n"
               "using the subset in %s\n", dir);
    cx_dataset train, test;
    /* images become F32 [N, 784] scaled to [0, 1], labels I32 [N]; the
     * dataset owns both (freed by cx_dataset_free). I/O problems are
     * *returned* as a cx_status with a message in cx_last_error(). */
    if (cx_dataset_load_idx_dir(dir, "train", 0, &train) != CX_OK) {
        fprintf(stderr, "fashion_mlp: %s\n", cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &test) != CX_OK) {
        fprintf(stderr, "fashion_mlp: %s\n", cx_last_error());
        cx_dataset_free(&train);
        return 1;
    }
    int n_train = cx_dataset_len(&train), n_test = cx_dataset_len(&test);
    printf("data: %s, %d train / %d test images of %d pixels\n", dir, n_train, n_test,
           train.x->shape[1]);

    /* ---- 2. model -------------------------------------------------------
     * cx_mlp_new builds a Sequential: fc1 = Linear(784, 256), act1 = ReLU,
     * fc2 = Linear(256, 10), with PyTorch's default initialisation. The
     * module owns its parameters (persistent tensors that survive arena
     * resets); cx_module_free releases them. */
    const int sizes[3] = {784, 256, 10};
    cx_module *net = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0.0f);
    cx_module_print(net); /* one line per layer + the parameter count */

    /* The parameter list: pointers to fc1.weight [256, 784], fc1.bias [256],
     * fc2.weight [10, 256], fc2.bias [10]. It does not own the tensors. */
    cx_params params;
    cx_params_init(&params);
    cx_module_params(net, &params);

    /* ---- the optimiser --------------------------------------------------
     * Adam with PyTorch's update rule; it keeps its moment buffers (owned by
     * the optimiser) for every parameter of the list. */
    cx_adam_opts ao = cx_adam_defaults(); /* lr 1e-3, betas (0.9, 0.999), eps 1e-8 */
    ao.lr = 1e-3;
    cx_optim *opt = cx_adam_new(&params, &ao);

    /* The loader hands out shuffled minibatches of 64 (a new permutation
     * from the Cortex PRNG at every cx_loader_reset). */
    cx_loader *loader = cx_loader_new(&train, 64, true, false);

    /* ---- 3. training ----------------------------------------------------
     * The trainer owns the loop. Per epoch it asks the task for batches; per
     * batch it runs the five steps of a training step:
     *   cx_optim_zero_grad   1. clear old gradients
     *   forward + loss       2. graph recorded (the task: cross-entropy of the MLP)
     *   cx_backward          3. gradients into p->grad
     *   cx_optim_step        4. update the parameters
     *   cx_step_reset        5. release the batch, activations, graph nodes and
     *                           intermediate gradients (parameters, their
     *                           gradients and the optimiser state are persistent)
     * then, at the end of the epoch, evaluates (here on the test set) and
     * calls our hook. cx_classifier is the ready-made task for "cross-entropy
     * on a loader's minibatches"; any other model supplies its own callbacks. */
    printf("training: Adam lr %g, batch 64, %d epoch(s), %d thread(s), BLAS %s\n", ao.lr, epochs,
           cx_get_threads(), cx_blas_name());
    cx_classifier cls = {.forward = cx_forward_module, .forward_user = net, .train = loader,
                         .val = &test, .eval_batch = 1000};
    cx_train_task task = cx_classifier_task(&cls);
    progress prog = {epochs, 0};
    cx_train_opts to = cx_train_defaults();
    to.epochs = epochs;
    to.on_eval = print_epoch; /* the trainer's progress bar shows on a terminal */
    to.hook_user = &prog;
    cx_trainer *trainer = cx_trainer_new(&task, net, opt, &to);
    int rc = 0;
    if (cx_trainer_run(trainer) != CX_OK) { /* e.g. a NaN loss: the message names epoch and batch */
        fprintf(stderr, "fashion_mlp: %s\n", cx_last_error());
        rc = 1;
    }
    cx_trainer_free(trainer);
    double total_time = prog.total_time;
    printf("trained in %.1f s (%.2f s per epoch)\n", total_time, total_time / epochs);
    long correct = count_correct(net, &test);

    /* ---- 4. save, reload, check -----------------------------------------
     * cx_params_save writes a safetensors file under the parameters' names
     * (fc1.weight, ... -- the names PyTorch's state_dict would use), atomically:
     * an interrupted save never leaves a half-written file behind. */
    if (!rc && mkdir("out", 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fashion_mlp: cannot create out/: %s\n", strerror(errno));
        rc = 1;
    }
    if (!rc && cx_params_save(model_path, &params) != CX_OK) {
        fprintf(stderr, "fashion_mlp: %s\n", cx_last_error());
        rc = 1;
    }
    if (!rc) {
        printf("saved %lld parameters to %s\n", (long long)cx_params_count(&params), model_path);
        /* A fresh model with different random weights ... */
        cx_module *net2 = cx_mlp_new(sizes, 3, CX_ACT_RELU, 0.0f);
        cx_params params2;
        cx_params_init(&params2);
        cx_module_params(net2, &params2);
        long before = count_correct(net2, &test);
        /* ... gets the trained values by name. strict = true: every parameter
         * must be in the file with the right shape, and nothing else. */
        if (cx_params_load(model_path, &params2, true) != CX_OK) {
            fprintf(stderr, "fashion_mlp: %s\n", cx_last_error());
            rc = 1;
        } else {
            long after = count_correct(net2, &test);
            printf("reloaded into a fresh model: test acc %.2f%% (untrained %.2f%%, trained %.2f%%) "
                   "-> %s\n",
                   100.0 * (double)after / n_test, 100.0 * (double)before / n_test,
                   100.0 * (double)correct / n_test, after == correct ? "identical" : "MISMATCH");
            if (after != correct) rc = 1;
        }
        cx_params_free(&params2);
        cx_module_free(net2);
    }

    /* ---- clean-up: whoever made a persistent object frees it ------------ */
    cx_loader_free(loader);
    cx_optim_free(opt);     /* its state tensors, not the parameters */
    cx_params_free(&params); /* the list only */
    cx_module_free(net);    /* the layers and their parameters */
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return rc;
}
