/* Parameter initialisers with PyTorch's fan and gain conventions. */
#include "../tensor/internal.h"
#include <math.h>
#include <stdio.h>

float cx_init_gain(const char *nl, float param) {
    if (!nl || !strcmp(nl, "linear") || !strcmp(nl, "sigmoid") || !strncmp(nl, "conv", 4)) return 1.0f;
    if (!strcmp(nl, "tanh")) return 5.0f / 3.0f;
    if (!strcmp(nl, "relu")) return sqrtf(2.0f);
    if (!strcmp(nl, "leaky_relu")) return sqrtf(2.0f / (1.0f + param * param));
    if (!strcmp(nl, "selu")) return 0.75f;
    cx_fatal("init: unknown nonlinearity '%s'", nl);
}

void cx_init_fans(const cx_tensor *t, int *fan_in, int *fan_out) {
    if (t->ndim < 2) {
        char b[64];
        cx_fatal("init: fan in/out need a tensor with at least 2 dimensions, got %s", cx_shape_str(t, b, sizeof b));
    }
    int rf = 1;
    for (int i = 2; i < t->ndim; i++) rf *= t->shape[i];
    *fan_in = t->shape[1] * rf;
    *fan_out = t->shape[0] * rf;
}

void cx_init_uniform(cx_tensor *t, float lo, float hi) { cx_fill_uniform(t, lo, hi); }
void cx_init_normal(cx_tensor *t, float mean, float std) { cx_fill_normal(t, mean, std); }
void cx_init_constant(cx_tensor *t, float v) { cx_fill(t, v); }

void cx_init_xavier_uniform(cx_tensor *t, float gain) {
    int fi, fo;
    cx_init_fans(t, &fi, &fo);
    float a = gain * sqrtf(6.0f / (float)(fi + fo));
    cx_fill_uniform(t, -a, a);
}

void cx_init_xavier_normal(cx_tensor *t, float gain) {
    int fi, fo;
    cx_init_fans(t, &fi, &fo);
    cx_fill_normal(t, 0.0f, gain * sqrtf(2.0f / (float)(fi + fo)));
}

static float kaiming_std(cx_tensor *t, float a, cx_fan_mode mode, const char *nl) {
    int fi, fo;
    cx_init_fans(t, &fi, &fo);
    float gain = cx_init_gain(nl ? nl : "leaky_relu", a);
    return gain / sqrtf((float)(mode == CX_FAN_IN ? fi : fo));
}

void cx_init_kaiming_uniform(cx_tensor *t, float a, cx_fan_mode mode, const char *nl) {
    float b = sqrtf(3.0f) * kaiming_std(t, a, mode, nl);
    cx_fill_uniform(t, -b, b);
}

void cx_init_kaiming_normal(cx_tensor *t, float a, cx_fan_mode mode, const char *nl) {
    cx_fill_normal(t, 0.0f, kaiming_std(t, a, mode, nl));
}

void cx_init_orthogonal(cx_tensor *t, float gain) {
    if (t->ndim < 2) cx_fatal("init_orthogonal: needs at least 2 dimensions");
    if (t->numel == 0) return; /* as PyTorch: a zero-element tensor is left as is */
    int rows = t->shape[0], cols = (int)(t->numel / rows);
    /* orthonormalise the `small` vectors of length `big` (modified Gram-Schmidt
     * in double, twice for stability), then lay them out as rows or columns */
    int big = rows > cols ? rows : cols, small = rows > cols ? cols : rows;
    double *q = cx_xmalloc((size_t)big * small * sizeof(double));
    for (int64_t i = 0; i < (int64_t)big * small; i++) q[i] = cx_rand_normal();
    for (int k = 0; k < small; k++) {
        double *v = q + (int64_t)k * big;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < k; j++) {
                double *u = q + (int64_t)j * big, d = 0;
                for (int i = 0; i < big; i++) d += u[i] * v[i];
                for (int i = 0; i < big; i++) v[i] -= d * u[i];
            }
        double nrm = 0;
        for (int i = 0; i < big; i++) nrm += v[i] * v[i];
        nrm = sqrt(nrm);
        if (nrm < 1e-12) cx_fatal("init_orthogonal: degenerate random draw");
        for (int i = 0; i < big; i++) v[i] /= nrm;
    }
    float *d = CX_F(t);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            d[(int64_t)r * cols + c] = (float)(gain * (rows > cols ? q[(int64_t)c * big + r] : q[(int64_t)r * big + c]));
    free(q);
}
