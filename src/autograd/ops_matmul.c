/* matmul (2-D, batched with broadcast batch dimensions, transpose flags), bmm
 * and linear (x W^T + b), on top of cx_sgemm. */
#include "graph.h"
#include "cpu/cpu.h"
#include <stdint.h>
#include <stdio.h>

/* ---- matmul: op(a) op(b) over broadcast batch dimensions, op = identity or
 * the transpose of the last two dimensions, read in place by cx_sgemm (no
 * copy of a transposed or broadcast operand). */
typedef struct {
    int M, K, N;
    bool ta, tb;
    int nbd;                          /* output batch dimensions */
    int bshape[CX_MAX_DIMS];          /* output batch shape */
    int64_t sa[CX_MAX_DIMS], sb[CX_MAX_DIMS]; /* matrix strides per batch dim (0: broadcast) */
    int64_t nbatch;                   /* product of bshape */
    bool fold;                        /* b shared by every batch, a neither transposed nor
                                       * broadcast: one GEMM of nbatch*M rows */
} mm_geo;

/* Matrix offsets (in matrices, not floats) of a and b for output batch t. */
static void mm_offsets(const mm_geo *g, int64_t t, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0;
    for (int d = g->nbd - 1; d >= 0; d--) {
        int64_t i = t % g->bshape[d];
        t /= g->bshape[d];
        a += i * g->sa[d];
        b += i * g->sb[d];
    }
    *oa = a;
    *ob = b;
}

static void matmul_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    const mm_geo *g = nd->saved;
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    if ((!ga && !gb) || out->numel == 0 || g->K == 0) return;
    const float *A = CX_F(nd->in[0]), *Bm = CX_F(nd->in[1]), *G = out->grad;
    const int K = g->K, N = g->N;
    const bool ta = g->ta, tb = g->tb;
    const int M = g->fold ? (int)(g->M * g->nbatch) : g->M;
    const int64_t nloop = g->fold ? 1 : g->nbatch;
    const int lda = ta ? M : K, ldb = tb ? K : N;
    /* sequential over batches: broadcast operands accumulate into one slice */
    for (int64_t t = 0; t < nloop; t++) {
        int64_t oa, ob;
        mm_offsets(g, t, &oa, &ob);
        const float *Ai = A + oa * M * K, *Bi = Bm + ob * K * N, *Gi = G + t * M * N;
        if (ga) {
            float *dA = ga + oa * M * K;
            if (!ta) /* dA [M,K] = G op(B)^T */
                cx_sgemm(false, !tb, M, K, N, 1.0f, Gi, N, Bi, ldb, 1.0f, dA, K);
            else     /* a holds op(A)^T [K,M]: op(B) G^T */
                cx_sgemm(tb, true, K, M, N, 1.0f, Bi, ldb, Gi, N, 1.0f, dA, M);
        }
        if (gb) {
            float *dB = gb + ob * K * N;
            if (!tb) /* dB [K,N] = op(A)^T G */
                cx_sgemm(!ta, false, K, N, M, 1.0f, Ai, lda, Gi, N, 1.0f, dB, N);
            else     /* b holds op(B)^T [N,K]: G^T op(A) */
                cx_sgemm(true, ta, N, K, M, 1.0f, Gi, N, Ai, lda, 1.0f, dB, K);
        }
    }
}

CX_OP_DEF(matmul, .backward = matmul_backward);
CX_OP_DEF(bmm, .backward = matmul_backward);

static cx_tensor *matmul_impl(const cx_op_desc *op, cx_tensor *a, cx_tensor *b, bool ta, bool tb) {
    const char *name = op->name;
    cx_need_f32_arg(name, "a", a);
    cx_need_f32_arg(name, "b", b);
    char s1[96], s2[96];
    if (a->ndim < 2 || b->ndim < 2)
        cx_fatal("%s: cannot multiply %s by %s (both need at least 2 dimensions: [..., M, K] x [..., K, N])",
                 name, cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2));
    mm_geo g;
    memset(&g, 0, sizeof g);
    g.ta = ta;
    g.tb = tb;
    const int ra = a->shape[a->ndim - 2], ca = a->shape[a->ndim - 1];
    const int rb = b->shape[b->ndim - 2], cb = b->shape[b->ndim - 1];
    g.M = ta ? ca : ra;
    g.K = ta ? ra : ca;
    const int K2 = tb ? cb : rb;
    g.N = tb ? rb : cb;
    if (g.K != K2)
        cx_fatal("%s: cannot multiply %s%s by %s%s (inner dimensions %d and %d differ)", name,
                 cx_shape_str(a, s1, sizeof s1), ta ? "^T" : "", cx_shape_str(b, s2, sizeof s2), tb ? "^T" : "",
                 g.K, K2);
    /* batch dimensions, aligned from the right, broadcast like torch.matmul */
    const int nba = a->ndim - 2, nbb = b->ndim - 2;
    g.nbd = nba > nbb ? nba : nbb;
    int64_t sa = 1, sb = 1;
    g.nbatch = 1;
    for (int d = g.nbd - 1; d >= 0; d--) {
        int ia = d - (g.nbd - nba), ib = d - (g.nbd - nbb);
        int da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            cx_fatal("%s: cannot multiply %s by %s (batch dimensions cannot be broadcast: %d vs %d)", name,
                     cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2), da, db);
        g.bshape[d] = da == 1 ? db : da;
        g.sa[d] = da == 1 ? 0 : sa;
        g.sb[d] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        g.nbatch *= g.bshape[d];
    }
    const int64_t na = sa, nb = sb; /* matrices in a and in b */
    g.fold = nb == 1 && !ta && na == g.nbatch && g.nbatch > 1 && (int64_t)g.M * g.nbatch <= INT32_MAX;
    int shape[CX_MAX_DIMS];
    for (int d = 0; d < g.nbd; d++) shape[d] = g.bshape[d];
    shape[g.nbd] = g.M;
    shape[g.nbd + 1] = g.N;
    cx_tensor *out = cx_new_like_shape(shape, g.nbd + 2);
    float *C = CX_F(out);
    if (out->numel && g.K == 0) {
        memset(C, 0, (size_t)out->numel * sizeof(float));
    } else if (out->numel) {
        const int M = g.fold ? (int)(g.M * g.nbatch) : g.M, K = g.K, N = g.N;
        const int64_t nloop = g.fold ? 1 : g.nbatch;
        const int lda = ta ? M : K, ldb = tb ? K : N;
        for (int64_t t = 0; t < nloop; t++) {
            int64_t oa, ob;
            mm_offsets(&g, t, &oa, &ob);
            cx_sgemm(ta, tb, M, N, K, 1.0f, CX_F(a) + oa * M * K, lda, CX_F(b) + ob * K * N, ldb, 0.0f,
                     C + t * M * N, N);
        }
    }
    cx_tensor *in[2] = {a, b};
    cx_record_saved(op, out, in, 2, &g, sizeof g);
    return out;
}

cx_tensor *cx_matmul(cx_tensor *a, cx_tensor *b) { return matmul_impl(&cx_opd_matmul, a, b, false, false); }
cx_tensor *cx_matmul_t(cx_tensor *a, cx_tensor *b, bool trans_a, bool trans_b) {
    return matmul_impl(&cx_opd_matmul, a, b, trans_a, trans_b);
}
cx_tensor *cx_bmm(cx_tensor *a, cx_tensor *b) {
    cx_need_f32_arg("bmm", "a", a);
    cx_need_f32_arg("bmm", "b", b);
    if (a->ndim != 3 || b->ndim != 3 || a->shape[0] != b->shape[0] || a->shape[2] != b->shape[1]) {
        char s1[96], s2[96];
        cx_fatal("bmm: cannot multiply %s by %s (expected [B, M, K] and [B, K, N], no broadcasting)",
                 cx_shape_str(a, s1, sizeof s1), cx_shape_str(b, s2, sizeof s2));
    }
    return matmul_impl(&cx_opd_bmm, a, b, false, false);
}

/* ---- linear */
/* gb[j] += sum over the R rows of G[r][j]: columns in blocks of 64, each
 * summed in registers over the even and the odd rows (eight independent
 * vector sums; one running sum per column in memory was a chain of dependent
 * store-load-adds, 5% of PPO's training step), then blocks of 16 and single
 * columns with four partial sums over the rows. */
typedef float cx_bg_v __attribute__((vector_size(64)));
static void bias_grad(const float *restrict G, int R, int OUT, float *restrict gb) {
    int j0 = 0;
    for (; j0 + 64 <= OUT; j0 += 64) {
        cx_bg_v s0[4] = {{0}}, s1[4] = {{0}};
        int r = 0;
        for (; r + 2 <= R; r += 2) {
            const float *g0 = G + (size_t)r * OUT + j0, *g1 = g0 + OUT;
            for (int v = 0; v < 4; v++) {
                cx_bg_v a, b;
                memcpy(&a, g0 + 16 * v, sizeof a);
                memcpy(&b, g1 + 16 * v, sizeof b);
                s0[v] += a;
                s1[v] += b;
            }
        }
        for (; r < R; r++)
            for (int v = 0; v < 4; v++) {
                cx_bg_v a;
                memcpy(&a, G + (size_t)r * OUT + j0 + 16 * v, sizeof a);
                s0[v] += a;
            }
        for (int v = 0; v < 4; v++) {
            cx_bg_v t = s0[v] + s1[v];
            for (int k = 0; k < 16; k++) gb[j0 + 16 * v + k] += t[k];
        }
    }
    for (; j0 + 16 <= OUT; j0 += 16) {
        cx_bg_v s4[4] = {{0}};
        int r = 0;
        for (; r + 4 <= R; r += 4)
            for (int k = 0; k < 4; k++) {
                cx_bg_v a;
                memcpy(&a, G + (size_t)(r + k) * OUT + j0, sizeof a);
                s4[k] += a;
            }
        for (; r < R; r++) {
            cx_bg_v a;
            memcpy(&a, G + (size_t)r * OUT + j0, sizeof a);
            s4[0] += a;
        }
        cx_bg_v t = (s4[0] + s4[1]) + (s4[2] + s4[3]);
        for (int k = 0; k < 16; k++) gb[j0 + k] += t[k];
    }
    for (int j = j0; j < OUT; j++) {
        float p[4] = {0, 0, 0, 0};
        int r = 0;
        for (; r + 4 <= R; r += 4)
            for (int k = 0; k < 4; k++) p[k] += G[(size_t)(r + k) * OUT + j];
        for (; r < R; r++) p[0] += G[(size_t)r * OUT + j];
        gb[j] += (p[0] + p[1]) + (p[2] + p[3]);
    }
}

/* The gradients of y = x W^T + b from G = dL/dy. */
static void linear_grads(cx_node *nd, const float *G) {
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    int R = nd->i[0], IN = nd->i[1], OUT = nd->i[2];
    /* gx last: a new input gradient is written (beta 0) rather than zeroed and
     * accumulated; claimed after gw and gb so that an input that is also the
     * weight or the bias finds its buffer zeroed */
    float *gw = cx_in_grad(nd, 1), *gb = nd->n_in > 2 ? cx_in_grad(nd, 2) : NULL;
    bool fresh;
    float *gx = cx_in_grad_w(nd, 0, &fresh);
    if (gw) cx_sgemm(true, false, OUT, IN, R, 1.0f, G, OUT, CX_F(x), IN, 1.0f, gw, IN);
    if (gx) cx_sgemm(false, false, R, IN, OUT, 1.0f, G, OUT, CX_F(w), IN, fresh ? 0.0f : 1.0f, gx, IN);
    if (gb) bias_grad(G, R, OUT, gb);
}

static void linear_backward(cx_node *nd) { linear_grads(nd, nd->out[0]->grad); }

CX_OP_DEF(linear, .backward = linear_backward);

/* relu(linear) and tanh(linear): G times the activation's derivative (from
 * the output y, as cx_relu's and cx_tanh's backward), then linear's. */
static void linear_act_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    cx_tensor *gp = cx_new_like_shape(out->shape, out->ndim);
    cx_act_grad(nd->i[3], CX_F(out), out->grad, CX_F(gp), out->numel);
    linear_grads(nd, CX_F(gp));
}

CX_OP_DEF(linear_relu, .backward = linear_act_backward);
CX_OP_DEF(linear_tanh, .backward = linear_act_backward);

/* y = act(x W^T + b); act: CX_LINEAR_PLAIN, _RELU or _TANH, applied by the
 * GEMM to each tile of y as it stores it (cx_sgemm_bias). */
static cx_tensor *linear_impl(const cx_op_desc *op, cx_tensor *x, cx_tensor *w, cx_tensor *b, int act) {
    const char *name = op->name;
    cx_need_f32(name, x);
    cx_need_f32(name, w);
    char s1[96], s2[96];
    if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        cx_fatal("%s: input %s does not match weight %s (expected [..., %d])", name,
                 cx_shape_str(x, s1, sizeof s1), cx_shape_str(w, s2, sizeof s2),
                 w->ndim == 2 ? w->shape[1] : -1);
    int IN = w->shape[1], OUT = w->shape[0];
    if (b) {
        cx_need_f32(name, b);
        if (b->numel != OUT)
            cx_fatal("%s: bias %s does not match %d outputs", name, cx_shape_str(b, s1, sizeof s1), OUT);
    }
    int R = IN ? (int)(x->numel / IN) : 0;
    int shape[CX_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = OUT;
    cx_tensor *out = cx_new_like_shape(shape, x->ndim);
    float *y = CX_F(out);
    const int epi = act == CX_LINEAR_RELU ? CX_EPI_RELU : act == CX_LINEAR_TANH ? CX_EPI_TANH : CX_EPI_NONE;
    if (b || epi != CX_EPI_NONE)
        cx_sgemm_bias(false, true, R, OUT, IN, CX_F(x), IN, CX_F(w), IN, b ? CX_F(b) : NULL, epi, y, OUT);
    else
        cx_sgemm(false, true, R, OUT, IN, 1.0f, CX_F(x), IN, CX_F(w), IN, 0.0f, y, OUT);
    cx_tensor *in[3] = {x, w, b};
    cx_node *nd = cx_record(op, out, in, b ? 3 : 2);
    if (nd) {
        nd->i[0] = R; nd->i[1] = IN; nd->i[2] = OUT; nd->i[3] = act;
    }
    return out;
}

cx_tensor *cx_linear(cx_tensor *x, cx_tensor *w, cx_tensor *b) { return linear_impl(&cx_opd_linear, x, w, b, CX_LINEAR_PLAIN); }
cx_tensor *cx_linear_relu(cx_tensor *x, cx_tensor *w, cx_tensor *b) {
    return linear_impl(&cx_opd_linear_relu, x, w, b, CX_LINEAR_RELU);
}
cx_tensor *cx_linear_tanh(cx_tensor *x, cx_tensor *w, cx_tensor *b) {
    return linear_impl(&cx_opd_linear_tanh, x, w, b, CX_LINEAR_TANH);
}
