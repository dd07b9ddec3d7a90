/* Inference speed of an ONNX model in Cortex (cx_onnx_run), to set beside
 * onnxruntime's on the same file and input (tools/ort_run.js --bench N
 * --batch B, one thread):
 *   bench_onnx MODEL.onnx INPUT.pb [--batch B] [--runs N] [--threads T]
 * INPUT.pb is a TensorProto (cx_onnx_read_tensor) whose first B rows are fed
 * (default: all); 3 warm-up runs, then N timed runs (default 200) without
 * gradients. Prints the machine-readable line
 *   ONNX_RUN model=... batch=B threads=T runs=N median_ms=... mean_ms=... min_ms=...
 */
#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_onnx MODEL.onnx INPUT.pb [--batch B] [--runs N] [--threads T]\n");
        return 2;
    }
    int batch = 0, runs = 200, threads = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_onnx: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    cx_set_threads(threads);
    cx_onnx_model *m;
    if (cx_onnx_load(argv[1], &m)) {
        fprintf(stderr, "bench_onnx: %s\n", cx_last_error());
        return 1;
    }
    cx_tensor *x;
    if (cx_onnx_read_tensor(argv[2], &x)) {
        fprintf(stderr, "bench_onnx: %s\n", cx_last_error());
        cx_onnx_free(m);
        return 1;
    }
    if (batch <= 0 || batch > x->shape[0]) batch = x->shape[0];
    int shape[CX_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = batch;
    cx_tensor *xb = cx_tensor_new(CX_F32, shape, x->ndim);
    memcpy(xb->data, x->data, (size_t)xb->numel * sizeof(float));
    double *t = malloc((size_t)runs * sizeof *t);
    cx_tensor *out[8];
    cx_no_grad_begin();
    int rc = 0;
    for (int i = -3; i < runs && !rc; i++) {
        double t0 = now_ms();
        if (cx_onnx_run(m, &xb, out)) {
            fprintf(stderr, "bench_onnx: %s\n", cx_last_error());
            rc = 1;
        }
        cx_step_reset();
        if (i >= 0) t[i] = now_ms() - t0;
    }
    cx_no_grad_end();
    if (!rc) {
        double sum = 0;
        for (int i = 0; i < runs; i++) sum += t[i];
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        const char *base = strrchr(argv[1], '/');
        printf("ONNX_RUN model=%s batch=%d threads=%d runs=%d median_ms=%.4f mean_ms=%.4f min_ms=%.4f\n",
               base ? base + 1 : argv[1], batch, threads, runs, t[runs / 2], sum / runs, t[0]);
    }
    free(t);
    cx_tensor_free(xb);
    cx_tensor_free(x);
    cx_onnx_free(m);
    return rc;
}
