/* examples/quickstart.c -- the README's "C API in five minutes", compiled. */
#include <cortex.h>
#include <stdio.h>

int main(void) {
    cx_seed(42);                                   /* default random stream: same seed, same run */
    cx_set_threads(1);

    /* data: persistent tensors owned by the dataset */
    cx_dataset train;
    if (cx_dataset_load_idx("data/fashion-mnist-subset/train-images-idx3-ubyte.gz",
                            "data/fashion-mnist-subset/train-labels-idx1-ubyte.gz", 0, &train))
        return fprintf(stderr, "%s\n", cx_last_error()), 1;   /* I/O errors are returned */
    printf("loaded %d training images\n", cx_dataset_len(&train));

    /* model: modules own their parameters, named like PyTorch's state_dict */
    cx_module *net = cx_mlp_new((int[]){784, 256, 10}, 3, CX_ACT_RELU, 0.0f);
    cx_params ps;  cx_params_init(&ps);  cx_module_params(net, &ps);   /* fc1.weight ... */

    cx_adam_opts o = cx_adam_defaults();             /* PyTorch's update rules and defaults */
    cx_optim *opt = cx_adam_new(&ps, &o);
    printf("MLP 784-256-10: %lld parameters, Adam lr %g\n", (long long)cx_params_count(&ps), o.lr);

    cx_loader *ld = cx_loader_new(&train, 64, true, false);
    for (int epoch = 0; epoch < 3; epoch++) {
        cx_loader_reset(ld);                       /* seeded reshuffle */
        cx_tensor *x, *y;
        double sum = 0;  int batches = 0;
        while (cx_loader_next(ld, &x, &y)) {
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_cross_entropy(cx_module_forward(net, x), y, CX_REDUCE_MEAN);
            cx_backward(loss);                     /* define-by-run: ordinary C control flow */
            sum += cx_item(loss);  batches++;
            cx_clip_grad_norm(&ps, 5.0f);
            cx_optim_step(opt);
            cx_step_reset();                       /* frees every intermediate and graph node */
        }
        printf("epoch %d: mean training loss %.4f over %d batches\n", epoch + 1, sum / batches, batches);
    }
    if (cx_params_save("mlp.safetensors", &ps))    /* atomic; loads in PyTorch */
        fprintf(stderr, "%s\n", cx_last_error());
    else
        printf("saved the model to mlp.safetensors\n");

    cx_loader_free(ld);  cx_optim_free(opt);  cx_params_free(&ps);
    cx_module_free(net); cx_dataset_free(&train);
    return 0;
}
