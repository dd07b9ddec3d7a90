/* Convolution benchmark: forward + backward (input, weight and bias
 * gradients) of three layers, median over repetitions.
 *   bench_conv [threads] [reps]      (threads also from env CX_THREADS; default 1)
 * Prints, per layer:  CONV layer=lenet threads=1 ms=... cpu_ms=...
 * (ms: median wall time of one step; cpu_ms: median process CPU time of one
 * step, all threads -- at 1 thread a load-insensitive stand-in for ms;
 * fwd_cpu_ms: the forward part of cpu_ms; gflops: useful multiply-adds x2 of
 * forward + both gradients per wall second.)
 * CX_CONV_ALGO=gemm in the environment forces the column-matrix path.
 * Layers (NCHW, float32), the same as tools/bench_torch_conv.py:
 *   lenet  N=64, 1 -> 6,     28x28, k5, stride 1, padding 0
 *   vgg    N=64, 64 -> 64,   32x32, k3, stride 1, padding 1
 *   deep   N=32, 128 -> 128, 16x16, k3, stride 1, padding 1
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now_ms(void) { return cx_now() * 1e3; }
static double cpu_ms(void) { return cx_cpu_now() * 1e3; }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *name;
    int n, c, o, hw, k, p;
} layer;

int main(int argc, char **argv) {
    int threads = 1, reps = 0;
    const char *env = getenv("CX_THREADS");
    if (env) threads = atoi(env);
    if (argc > 1) threads = atoi(argv[1]);
    if (argc > 2) reps = atoi(argv[2]);
    if (threads < 1) threads = 1;
    cx_set_threads(threads);
    cx_seed(0);
    const layer L[] = {{"lenet", 64, 1, 6, 28, 5, 0}, {"vgg", 64, 64, 64, 32, 3, 1},
                       {"deep", 32, 128, 128, 16, 3, 1}};
    printf("conv benchmark, %d thread(s), GEMM %s\n", threads, cx_gemm_describe());
    for (size_t li = 0; li < sizeof L / sizeof L[0]; li++) {
        const layer *l = &L[li];
        cx_conv_opts o = cx_conv_defaults();
        o.padding[0] = o.padding[1] = l->p;
        cx_module *conv = cx_conv2d_new(l->c, l->o, l->k, l->k, &o, true);
        cx_tensor *w = cx_conv_weight(conv), *b = cx_conv_bias(conv);
        cx_tensor *xp = cx_tensor_new(CX_F32, (int[]){l->n, l->c, l->hw, l->hw}, 4);
        cx_fill_normal(xp, 0, 1);
        int oh = l->hw + 2 * l->p - l->k + 1;
        int64_t gn = (int64_t)l->n * l->o * oh * oh;
        float *gy = malloc((size_t)gn * sizeof(float));
        for (int64_t i = 0; i < gn; i++) gy[i] = cx_rand_normal();
        double flops = 2.0 * l->n * l->o * l->c * l->k * l->k * oh * oh;
        int r = reps > 0 ? reps : (int)(2e9 / (3 * flops));
        if (r < 15) r = 15; /* at least 15: the machine drifts, the median needs samples */
        if (r > 30) r = 30;
        double *ts = malloc((size_t)r * sizeof(double)), *cs = malloc((size_t)r * sizeof(double));
        double *fs = malloc((size_t)r * sizeof(double));
        for (int it = -2; it < r; it++) {
            double t0 = now_ms(), c0 = cpu_ms();
            cx_tensor *x = cx_wrap(CX_F(xp), xp->shape, 4);
            x->requires_grad = true;
            cx_zero_grad(w);
            cx_zero_grad(b);
            cx_tensor *y = cx_module_forward(conv, x);
            double cf = cpu_ms();
            cx_backward_with(y, gy);
            double t1 = now_ms(), c1 = cpu_ms();
            if (it >= 0) {
                ts[it] = t1 - t0;
                cs[it] = c1 - c0;
                fs[it] = cf - c0;
            }
            cx_step_reset();
        }
        qsort(ts, (size_t)r, sizeof(double), cmp_d);
        qsort(cs, (size_t)r, sizeof(double), cmp_d);
        qsort(fs, (size_t)r, sizeof(double), cmp_d);
        printf("CONV layer=%s threads=%d ms=%.3f cpu_ms=%.3f fwd_cpu_ms=%.3f gflops=%.1f\n", l->name,
               threads, ts[r / 2], cs[r / 2], fs[r / 2], 3 * flops / (ts[r / 2] * 1e6));
        fflush(stdout);
        free(ts);
        free(cs);
        free(fs);
        free(gy);
        cx_tensor_free(xp);
        cx_module_free(conv);
    }
    return 0;
}
