/* matmul (2-D and batched) and linear (x W^T + b), on top of cx_sgemm. */
#include "graph.h"
#include <stdio.h>

static void matmul_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    cx_tensor *a = nd->in[0], *b = nd->in[1];
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    int B = nd->i[0], M = nd->i[1], K = nd->i[2], N = nd->i[3], bshared = nd->i[4];
    const float *A = CX_F(a), *Bm = CX_F(b), *G = out->grad;
    for (int bi = 0; bi < B; bi++) {
        const float *Ai = A + (size_t)bi * M * K;
        const float *Bi = Bm + (bshared ? 0 : (size_t)bi * K * N);
        const float *Gi = G + (size_t)bi * M * N;
        if (ga) /* dA = dC B^T : [M,N]x[N,K] */
            cx_sgemm(false, true, M, K, N, 1.0f, Gi, N, Bi, N, 1.0f, ga + (size_t)bi * M * K, K);
        if (gb) /* dB = A^T dC : [K,M]x[M,N] */
            cx_sgemm(true, false, K, N, M, 1.0f, Ai, K, Gi, N, 1.0f,
                     gb + (bshared ? 0 : (size_t)bi * K * N), N);
    }
}

CX_OP_DEF(matmul, .backward = matmul_backward);

cx_tensor *cx_matmul(cx_tensor *a, cx_tensor *b) {
    cx_need_f32("matmul", a);
    cx_need_f32("matmul", b);
    char s1[96], s2[96];
    int B, M, K, N, bshared = 0;
    if (a->ndim == 2 && b->ndim == 2) {
        B = 1; M = a->shape[0]; K = a->shape[1]; N = b->shape[1];
        if (b->shape[0] != K) goto bad;
    } else if (a->ndim == 3 && b->ndim == 3) {
        B = a->shape[0]; M = a->shape[1]; K = a->shape[2]; N = b->shape[2];
        if (b->shape[0] != B || b->shape[1] != K) goto bad;
    } else if (a->ndim == 3 && b->ndim == 2) {
        B = a->shape[0]; M = a->shape[1]; K = a->shape[2]; N = b->shape[1]; bshared = 1;
        if (b->shape[0] != K) goto bad;
    } else {
        goto bad;
    }
    {
        int shape3[3] = {B, M, N};
        cx_tensor *out = a->ndim == 2 ? cx_new_like_shape(shape3 + 1, 2) : cx_new_like_shape(shape3, 3);
        for (int bi = 0; bi < B; bi++)
            cx_sgemm(false, false, M, N, K, 1.0f, CX_F(a) + (size_t)bi * M * K, K,
                     CX_F(b) + (bshared ? 0 : (size_t)bi * K * N), N, 0.0f,
                     CX_F(out) + (size_t)bi * M * N, N);
        cx_tensor *in[2] = {a, b};
        cx_node *nd = cx_record(&cx_opd_matmul, out, in, 2);
        if (nd) {
            nd->i[0] = B; nd->i[1] = M; nd->i[2] = K; nd->i[3] = N; nd->i[4] = bshared;
        }
        return out;
    }
bad:
    cx_fatal("matmul: cannot multiply %s by %s (supported: [M,K]x[K,N], [B,M,K]x[B,K,N], [B,M,K]x[K,N])",
             cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2));
}

/* ---- linear */
static void linear_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    int R = nd->i[0], IN = nd->i[1], OUT = nd->i[2];
    const float *G = out->grad;
    float *gx = cx_in_grad(nd, 0), *gw = cx_in_grad(nd, 1);
    float *gb = nd->n_in > 2 ? cx_in_grad(nd, 2) : NULL;
    if (gw) cx_sgemm(true, false, OUT, IN, R, 1.0f, G, OUT, CX_F(x), IN, 1.0f, gw, IN);
    if (gx) cx_sgemm(false, false, R, IN, OUT, 1.0f, G, OUT, CX_F(w), IN, 1.0f, gx, IN);
    if (gb) {
        for (int r = 0; r < R; r++) {
            const float *g = G + (size_t)r * OUT;
            CX_OMP(simd)
            for (int j = 0; j < OUT; j++) gb[j] += g[j];
        }
    }
}

CX_OP_DEF(linear, .backward = linear_backward);

cx_tensor *cx_linear(cx_tensor *x, cx_tensor *w, cx_tensor *b) {
    cx_need_f32("linear", x);
    cx_need_f32("linear", w);
    char s1[96], s2[96];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        cx_fatal("linear: input %s does not match weight %s (expected [..., %d])",
                 cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2),
                 w->ndim == 2 ? w->shape[1] : -1);
    int IN = w->shape[1], OUT = w->shape[0];
    if (b) {
        cx_need_f32("linear", b);
        if (b->numel != OUT)
            cx_fatal("linear: bias %s does not match %d outputs", cx_shape_str(b, s1, sizeof s1), OUT);
    }
    int R = IN ? (int)(x->numel / IN) : 0;
    int shape[CX_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OUT;
    cx_tensor *out = cx_new_like_shape(shape, x->ndim);
    float *y = CX_F(out);
    if (b) {
        const float *bb = CX_F(b);
        for (int r = 0; r < R; r++) memcpy(y + (size_t)r * OUT, bb, (size_t)OUT * 4);
    }
    cx_sgemm(false, true, R, OUT, IN, 1.0f, CX_F(x), IN, CX_F(w), IN, b ? 1.0f : 0.0f, y, OUT);
    cx_tensor *in[3] = {x, w, b};
    cx_node *nd = cx_record(&cx_opd_linear, out, in, b ? 3 : 2);
    if (nd) {
        nd->i[0] = R; nd->i[1] = IN; nd->i[2] = OUT;
    }
    return out;
}
