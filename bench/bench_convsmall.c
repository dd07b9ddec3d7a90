/* Small-image CNN benchmark: one update of the pixel DQN network on Catch
 * (cortex rl train --env catch --algo dqn), at batch 64 of [1, 10, 5]
 * images:
 *   conv 3x3 1->16 pad 1, ReLU, conv 3x3 16->32 pad 1, ReLU, flatten,
 *   Linear 1600->128, ReLU, Linear 128->3.
 * One step = what dqn_update does: two no-grad forwards on the next states
 * (target net, online net: Double DQN), a forward + backward of the online
 * net on the states (gather of the taken actions, smooth L1), gradient-norm
 * clipping at 10, Adam 1e-3, arena reset.
 *   bench_convsmall [reps] [steps]      (1 thread; CX_CONV_ALGO=gemm|direct)
 * Prints (tools/bench_torch_convsmall.py prints the PyTorch equivalent):
 *   CONVSMALL algo=auto step_ms=... nograd_fwd_ms=... fwd_bwd_ms=... step_cpu_ms=... ...
 * (medians over reps of the mean over steps; step_ms is the whole update,
 * nograd_fwd_ms one no-grad forward, fwd_bwd_ms forward + backward of the
 * online net without the optimiser; *_cpu_ms the same in process CPU time,
 * at 1 thread a load-insensitive stand-in for the wall time.)
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 64, H = 10, W = 5, A = 3 };

static cx_module *make_net(void) {
    cx_module *seq = cx_sequential_new();
    cx_conv_opts o = cx_conv_defaults();
    o.padding[0] = o.padding[1] = 1;
    cx_sequential_add(seq, "conv1", cx_conv2d_new(1, 16, 3, 3, &o, true));
    cx_sequential_add(seq, "relu1", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(seq, "conv2", cx_conv2d_new(16, 32, 3, 3, &o, true));
    cx_sequential_add(seq, "relu2", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(seq, "flatten", cx_flatten_new());
    cx_sequential_add(seq, "mlp", cx_mlp_new((const int[]){32 * H * W, 128, A}, 3, CX_ACT_RELU, 0));
    return seq;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static const int XS[4] = {B, 1, H, W};

/* Catch-like frames: a ball pixel and a 3-wide paddle on the last row. */
static void frames(float *o) {
    memset(o, 0, sizeof(float) * B * H * W);
    for (int j = 0; j < B; j++) {
        float *f = o + (size_t)j * H * W;
        f[(rand() % (H - 1)) * W + rand() % W] = 1;
        int p = rand() % (W - 2);
        for (int i = 0; i < 3; i++) f[(H - 1) * W + p + i] = 1;
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 7, steps = argc > 2 ? atoi(argv[2]) : 200;
    if (reps < 1) reps = 1;
    if (steps < 1) steps = 1;
    cx_set_threads(1);
    cx_seed(1);
    srand(1);
    cx_module *q = make_net(), *qt = make_net();
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(q, &ps);
    cx_optim *opt = cx_adam_new(&ps, NULL);
    cx_arena *ar = cx_arena_new(1 << 20), *prev = cx_arena_use(ar);
    float *o = malloc(sizeof(float) * B * H * W), *o2 = malloc(sizeof(float) * B * H * W);
    float y[B];
    int32_t act[B];
    frames(o);
    frames(o2);
    for (int j = 0; j < B; j++) act[j] = j % A, y[j] = 0.1f * (j % 7) - 0.3f;
    double *t_step = malloc(sizeof(double) * reps), *t_fwd = malloc(sizeof(double) * reps),
           *t_fb = malloc(sizeof(double) * reps), *u_step = malloc(sizeof(double) * reps),
           *u_fwd = malloc(sizeof(double) * reps), *u_fb = malloc(sizeof(double) * reps);
    double sink = 0;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        /* whole update */
        double t0 = cx_now(), c0 = cx_cpu_now();
        for (int s = 0; s < steps; s++) {
            cx_no_grad_begin();
            cx_tensor *x2 = cx_from_data(o2, XS, 4);
            const float *a1 = CX_F(cx_module_forward(qt, x2));
            const float *a2 = CX_F(cx_module_forward(q, x2));
            sink += a1[0] + a2[0];
            cx_no_grad_end();
            cx_tensor *qv = cx_module_forward(q, cx_from_data(o, XS, 4));
            cx_tensor *qa = cx_reshape(cx_gather(qv, 1, cx_from_i32(act, (const int[]){B, 1}, 2)),
                                       (const int[]){B}, 1);
            cx_tensor *loss = cx_smooth_l1_loss(qa, cx_from_data(y, (const int[]){B}, 1), 1.0f,
                                                CX_REDUCE_MEAN);
            sink += cx_item(loss);
            cx_optim_zero_grad(opt);
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 10.0f);
            cx_optim_step(opt);
            cx_arena_reset(ar);
        }
        double t1 = cx_now(), c1 = cx_cpu_now();
        /* no-grad forward only */
        for (int s = 0; s < steps; s++) {
            cx_no_grad_begin();
            sink += CX_F(cx_module_forward(q, cx_from_data(o2, XS, 4)))[0];
            cx_no_grad_end();
            cx_arena_reset(ar);
        }
        double t2 = cx_now(), c2 = cx_cpu_now();
        /* forward + backward, no optimiser */
        for (int s = 0; s < steps; s++) {
            cx_tensor *qv = cx_module_forward(q, cx_from_data(o, XS, 4));
            cx_tensor *qa = cx_reshape(cx_gather(qv, 1, cx_from_i32(act, (const int[]){B, 1}, 2)),
                                       (const int[]){B}, 1);
            cx_tensor *loss = cx_smooth_l1_loss(qa, cx_from_data(y, (const int[]){B}, 1), 1.0f,
                                                CX_REDUCE_MEAN);
            cx_optim_zero_grad(opt);
            cx_backward(loss);
            cx_arena_reset(ar);
        }
        double t3 = cx_now(), c3 = cx_cpu_now();
        if (r >= 0) {
            t_step[r] = (t1 - t0) * 1e3 / steps;
            t_fwd[r] = (t2 - t1) * 1e3 / steps;
            t_fb[r] = (t3 - t2) * 1e3 / steps;
            u_step[r] = (c1 - c0) * 1e3 / steps;
            u_fwd[r] = (c2 - c1) * 1e3 / steps;
            u_fb[r] = (c3 - c2) * 1e3 / steps;
        }
    }
    qsort(t_step, reps, sizeof(double), cmp_d);
    qsort(t_fwd, reps, sizeof(double), cmp_d);
    qsort(t_fb, reps, sizeof(double), cmp_d);
    qsort(u_step, reps, sizeof(double), cmp_d);
    qsort(u_fwd, reps, sizeof(double), cmp_d);
    qsort(u_fb, reps, sizeof(double), cmp_d);
    const cx_conv_algo al = cx_conv_get_algo();
    printf("CONVSMALL algo=%s step_ms=%.3f nograd_fwd_ms=%.3f fwd_bwd_ms=%.3f "
           "step_cpu_ms=%.3f nograd_fwd_cpu_ms=%.3f fwd_bwd_cpu_ms=%.3f%s\n",
           al == CX_CONV_GEMM ? "gemm" : al == CX_CONV_DIRECT ? "direct" : "auto", t_step[reps / 2],
           t_fwd[reps / 2], t_fb[reps / 2], u_step[reps / 2], u_fwd[reps / 2], u_fb[reps / 2],
           sink == 12345.678 ? " " : "");
    cx_arena_use(prev);
    cx_arena_free(ar);
    free(o), free(o2), free(t_step), free(t_fwd), free(t_fb), free(u_step), free(u_fwd), free(u_fb);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(q);
    cx_module_free(qt);
    return 0;
}
