/* DNC memory operations: the allocation weighting and the temporal link
 * update are fused ops with their own backward; the rest are compositions
 * of autograd ops. Formulas, shapes and conventions: include/cortex/dnc.h. */
#include "../autograd/graph.h"
#include "cortex/dnc.h"
#include "cortex/memory.h"
#include <math.h>
#include <stdlib.h>

static void need_f32(const char *op, const char *name, const cx_tensor *t) {
    if (!t) cx_fatal("%s: %s must not be NULL", op, name);
    if (t->dtype != CX_F32) cx_fatal("%s: %s must be F32, got %s", op, name, cx_dtype_name(t->dtype));
}

/* t must be exactly [d0, d1(, d2)] (a negative entry: any size >= 1, set
 * from t); dims names the axes for the message, e.g. "[B, R, N]". */
static void need_shape(const char *op, const char *name, const cx_tensor *t, int nd, int *d, const char *dims) {
    char s1[96], want[96];
    need_f32(op, name, t);
    bool ok = t->ndim == nd;
    for (int k = 0; ok && k < nd; k++) ok = t->shape[k] >= 1 && (d[k] < 0 || t->shape[k] == d[k]);
    if (!ok) {
        int n = snprintf(want, sizeof want, "[");
        for (int k = 0; k < nd; k++)
            n += snprintf(want + n, sizeof want - (size_t)n, d[k] < 0 ? "%s*" : "%s%d", k ? ", " : "", d[k]);
        snprintf(want + n, sizeof want - (size_t)n, "]");
        cx_fatal("%s: %s has shape %s, expected %s = %s", op, name, cx_shape_str(t, s1, sizeof s1), dims, want);
    }
    for (int k = 0; k < nd; k++) d[k] = t->shape[k];
}

/* A per-item scalar [B] or [B, 1] -> [B, 1]. */
static cx_tensor *need_scalar(const char *op, const char *name, cx_tensor *t, int B) {
    char s1[96];
    need_f32(op, name, t);
    if (!((t->ndim == 1 && t->shape[0] == B) || (t->ndim == 2 && t->shape[0] == B && t->shape[1] == 1)))
        cx_fatal("%s: %s has shape %s, expected [B] or [B, 1] with B = %d", op, name, cx_shape_str(t, s1, sizeof s1),
                 B);
    return t->ndim == 2 ? t : cx_reshape(t, CX_SHAPE(B, 1));
}

/* ---------------------------------------------------------------- composed ops */
cx_tensor *cx_dnc_content_address(cx_tensor *mem, cx_tensor *keys, cx_tensor *beta) {
    const char *op = "dnc_content_address";
    int dm[3] = {-1, -1, -1};
    need_shape(op, "mem", mem, 3, dm, "[B, N, W]");
    const int B = dm[0], N = dm[1], W = dm[2];
    int dk[3] = {B, -1, W};
    need_shape(op, "keys", keys, 3, dk, "[B, H, W]");
    const int H = dk[1];
    int db[2] = {B, H};
    need_shape(op, "beta", beta, 2, db, "[B, H]");
    cx_tensor *sim = cx_cosine_similarity(cx_reshape(keys, CX_SHAPE(B, H, 1, W)), cx_reshape(mem, CX_SHAPE(B, 1, N, W)),
                                          -1, CX_NTM_COS_EPS);
    return cx_softmax(cx_mul(sim, cx_reshape(beta, CX_SHAPE(B, H, 1))), -1);
}

cx_tensor *cx_dnc_retention(cx_tensor *free_gates, cx_tensor *wr_prev) {
    const char *op = "dnc_retention";
    int dw[3] = {-1, -1, -1};
    need_shape(op, "wr_prev", wr_prev, 3, dw, "[B, R, N]");
    const int B = dw[0], R = dw[1], N = dw[2];
    int df[2] = {B, R};
    need_shape(op, "free_gates", free_gates, 2, df, "[B, R]");
    /* 1 - f_r w_r,i, then the product over the heads */
    cx_tensor *keep = cx_add_scalar(cx_neg(cx_mul(cx_reshape(free_gates, CX_SHAPE(B, R, 1)), wr_prev)), 1.0f);
    if (R == 1) return cx_reshape(keep, CX_SHAPE(B, N));
    cx_tensor *cp = cx_cumprod(keep, 1);
    return cx_reshape(cx_slice(cp, 1, R - 1, R, 1), CX_SHAPE(B, N));
}

cx_tensor *cx_dnc_usage(cx_tensor *u_prev, cx_tensor *ww_prev, cx_tensor *psi) {
    const char *op = "dnc_usage";
    int d[2] = {-1, -1};
    need_shape(op, "u_prev", u_prev, 2, d, "[B, N]");
    need_shape(op, "ww_prev", ww_prev, 2, d, "[B, N]");
    need_shape(op, "psi", psi, 2, d, "[B, N]");
    cx_tensor *u = cx_sub(cx_add(u_prev, ww_prev), cx_mul(u_prev, ww_prev));
    return cx_mul(u, psi);
}

cx_tensor *cx_dnc_write_weighting(cx_tensor *content, cx_tensor *alloc, cx_tensor *alloc_gate,
                                  cx_tensor *write_gate) {
    const char *op = "dnc_write_weighting";
    int d[2] = {-1, -1};
    need_shape(op, "content", content, 2, d, "[B, N]");
    need_shape(op, "alloc", alloc, 2, d, "[B, N]");
    cx_tensor *ga = need_scalar(op, "alloc_gate", alloc_gate, d[0]);
    cx_tensor *gw = need_scalar(op, "write_gate", write_gate, d[0]);
    /* g^a a + (1 - g^a) c = c + g^a (a - c) */
    cx_tensor *mix = cx_add(content, cx_mul(ga, cx_sub(alloc, content)));
    return cx_mul(gw, mix);
}

cx_tensor *cx_dnc_precedence(cx_tensor *p_prev, cx_tensor *ww) {
    const char *op = "dnc_precedence";
    int d[2] = {-1, -1};
    need_shape(op, "p_prev", p_prev, 2, d, "[B, N]");
    need_shape(op, "ww", ww, 2, d, "[B, N]");
    cx_tensor *keep = cx_add_scalar(cx_neg(cx_sum_axis(ww, -1, true)), 1.0f);
    return cx_add(cx_mul(keep, p_prev), ww);
}

cx_tensor *cx_dnc_directional(cx_tensor *link, cx_tensor *wr_prev, bool forward) {
    const char *op = "dnc_directional";
    int dl[3] = {-1, -1, -1};
    need_shape(op, "link", link, 3, dl, "[B, N, N]");
    char s1[96];
    if (dl[1] != dl[2])
        cx_fatal("%s: link has shape %s, expected [B, N, N] (square)", op, cx_shape_str(link, s1, sizeof s1));
    int dw[3] = {dl[0], -1, dl[1]};
    need_shape(op, "wr_prev", wr_prev, 3, dw, "[B, R, N]");
    /* rows: forward (L w)_i = sum_j w_j L[i, j] = (w L^T)_i; backward w L */
    return cx_matmul_t(wr_prev, link, false, forward);
}

cx_tensor *cx_dnc_read_weighting(cx_tensor *bwd, cx_tensor *content, cx_tensor *fwd, cx_tensor *modes) {
    const char *op = "dnc_read_weighting";
    int d[3] = {-1, -1, -1};
    need_shape(op, "bwd", bwd, 3, d, "[B, R, N]");
    need_shape(op, "content", content, 3, d, "[B, R, N]");
    need_shape(op, "fwd", fwd, 3, d, "[B, R, N]");
    int dm[3] = {d[0], d[1], 3};
    need_shape(op, "modes", modes, 3, dm, "[B, R, 3]");
    cx_tensor *w = cx_mul(cx_slice(modes, 2, 0, 1, 1), bwd);
    w = cx_add(w, cx_mul(cx_slice(modes, 2, 1, 2, 1), content));
    return cx_add(w, cx_mul(cx_slice(modes, 2, 2, 3, 1), fwd));
}

cx_tensor *cx_dnc_read(cx_tensor *mem, cx_tensor *wr) {
    const char *op = "dnc_read";
    int dm[3] = {-1, -1, -1};
    need_shape(op, "mem", mem, 3, dm, "[B, N, W]");
    int dw[3] = {dm[0], -1, dm[1]};
    need_shape(op, "wr", wr, 3, dw, "[B, R, N]");
    return cx_bmm(wr, mem);
}

/* ---------------------------------------------------------------- allocation (fused)
 * Saved: the free list phi of every item (B * N ints). */
typedef struct {
    float v;
    int i;
} key_idx;

static int key_cmp(const void *pa, const void *pb) {
    const key_idx *a = pa, *b = pb;
    const bool na = isnan(a->v), nb = isnan(b->v);
    if (na != nb) return na ? 1 : -1; /* NaN last */
    if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i); /* stable: by slot index */
}

static double floor_usage(float u) { return (double)CX_DNC_EPS + (1.0 - (double)CX_DNC_EPS) * (double)u; }

static void allocation_backward(cx_node *nd) {
    float *gu = cx_in_grad(nd, 0);
    if (!gu) return;
    const cx_tensor *ut = nd->in[0];
    const int B = ut->shape[0], N = ut->shape[1];
    const int *phi = nd->saved;
    const float *u = CX_F(ut), *g = nd->out[0]->grad;
    /* sorted position j: s_j, P_j = prod_{i<j} s_i, a_j = (1 - s_j) P_j.
     *   d a_j / d s_k = -P_k (j = k);  (1 - s_j) prod_{i<j, i != k} s_i (j > k)
     * so dL/ds_k = P_k (Q_k - g_k) with Q_k = sum_{j>k} g_j (1 - s_j) prod_{k<i<j} s_i,
     * Q_{N-1} = 0, Q_k = g_{k+1} (1 - s_{k+1}) + s_{k+1} Q_{k+1}. */
    double *P = malloc(sizeof(double) * (size_t)N);
    if (!P) cx_fatal("dnc_allocation: out of memory");
    for (int b = 0; b < B; b++) {
        const int *ph = phi + (int64_t)b * N;
        const float *ub = u + (int64_t)b * N, *gb = g + (int64_t)b * N;
        float *gub = gu + (int64_t)b * N;
        double p = 1.0;
        for (int j = 0; j < N; j++) {
            P[j] = p;
            p *= floor_usage(ub[ph[j]]);
        }
        double Q = 0.0;
        for (int k = N - 1; k >= 0; k--) {
            const double gk = gb[ph[k]];
            gub[ph[k]] += (float)((1.0 - (double)CX_DNC_EPS) * P[k] * (Q - gk));
            const double sk = floor_usage(ub[ph[k]]);
            Q = gk * (1.0 - sk) + sk * Q;
        }
    }
    free(P);
}

CX_OP_DEF(dnc_allocation, .backward = allocation_backward);

cx_tensor *cx_dnc_allocation(cx_tensor *usage) {
    const char *op = "dnc_allocation";
    int d[2] = {-1, -1};
    need_shape(op, "usage", usage, 2, d, "[B, N]");
    const int B = d[0], N = d[1];
    cx_tensor *out = cx_new_like_shape(usage->shape, 2);
    int *phi = cx_arena_alloc(sizeof(int) * (size_t)B * (size_t)N);
    key_idx *ki = malloc(sizeof *ki * (size_t)N);
    if (!ki) cx_fatal("%s: out of memory", op);
    const float *u = CX_F(usage);
    float *a = CX_F(out);
    for (int b = 0; b < B; b++) {
        const float *ub = u + (int64_t)b * N;
        for (int i = 0; i < N; i++) ki[i] = (key_idx){ub[i], i};
        qsort(ki, (size_t)N, sizeof *ki, key_cmp);
        double p = 1.0;
        for (int j = 0; j < N; j++) {
            const int i = ki[j].i;
            phi[(int64_t)b * N + j] = i;
            const double s = floor_usage(ub[i]);
            a[(int64_t)b * N + i] = (float)((1.0 - s) * p);
            p *= s;
        }
    }
    free(ki);
    cx_tensor *in[1] = {usage};
    cx_record_n(&cx_opd_dnc_allocation, &out, 1, in, 1, phi, 0);
    return out;
}

/* ---------------------------------------------------------------- link (fused) */
static void link_backward(cx_node *nd) {
    float *gl = cx_in_grad(nd, 0), *gp = cx_in_grad(nd, 1), *gw = cx_in_grad(nd, 2);
    if (!gl && !gp && !gw) return;
    const cx_tensor *lt = nd->in[0];
    const int B = lt->shape[0], N = lt->shape[1];
    const float *L = CX_F(lt), *p = CX_F(nd->in[1]), *w = CX_F(nd->in[2]), *g = nd->out[0]->grad;
    for (int b = 0; b < B; b++) {
        const float *Lb = L + (int64_t)b * N * N, *gb = g + (int64_t)b * N * N;
        const float *pb = p + (int64_t)b * N, *wb = w + (int64_t)b * N;
        for (int i = 0; i < N; i++) {
            const float *Lr = Lb + (int64_t)i * N, *gr = gb + (int64_t)i * N;
            double gwi = 0;
            for (int j = 0; j < N; j++) {
                if (j == i) continue;
                const double gij = gr[j];
                if (gl) gl[(int64_t)b * N * N + (int64_t)i * N + j] += (float)(gij * (1.0 - wb[i] - wb[j]));
                /* d/dw_i: -L_ij + p_j; d/dw_j: -L_ij; d/dp_j: w_i */
                gwi += gij * ((double)pb[j] - Lr[j]);
                if (gw) gw[(int64_t)b * N + j] -= (float)(gij * Lr[j]);
                if (gp) gp[(int64_t)b * N + j] += (float)(gij * wb[i]);
            }
            if (gw) gw[(int64_t)b * N + i] += (float)gwi;
        }
    }
}

CX_OP_DEF(dnc_link, .backward = link_backward);

cx_tensor *cx_dnc_link(cx_tensor *link_prev, cx_tensor *p_prev, cx_tensor *ww) {
    const char *op = "dnc_link";
    int dl[3] = {-1, -1, -1};
    need_shape(op, "link_prev", link_prev, 3, dl, "[B, N, N]");
    char s1[96];
    if (dl[1] != dl[2])
        cx_fatal("%s: link_prev has shape %s, expected [B, N, N] (square)", op,
                 cx_shape_str(link_prev, s1, sizeof s1));
    int d[2] = {dl[0], dl[1]};
    need_shape(op, "p_prev", p_prev, 2, d, "[B, N]");
    need_shape(op, "ww", ww, 2, d, "[B, N]");
    const int B = dl[0], N = dl[1];
    cx_tensor *out = cx_new_like_shape(link_prev->shape, 3);
    const float *L = CX_F(link_prev), *p = CX_F(p_prev), *w = CX_F(ww);
    float *o = CX_F(out);
    for (int b = 0; b < B; b++) {
        const float *Lb = L + (int64_t)b * N * N, *pb = p + (int64_t)b * N, *wb = w + (int64_t)b * N;
        float *ob = o + (int64_t)b * N * N;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
                ob[(int64_t)i * N + j] =
                    i == j ? 0.0f : (1.0f - wb[i] - wb[j]) * Lb[(int64_t)i * N + j] + wb[i] * pb[j];
    }
    cx_tensor *in[3] = {link_prev, p_prev, ww};
    cx_record(&cx_opd_dnc_link, out, in, 3);
    return out;
}

/* ---------------------------------------------------------------- access step */
int cx_dnc_interface_size(int read_heads, int width) { return read_heads * width + 3 * width + 5 * read_heads + 3; }

cx_dnc_interface cx_dnc_interface_split(cx_tensor *xi, int read_heads, int width) {
    const char *op = "dnc_interface_split";
    const int R = read_heads, W = width;
    if (R < 1 || W < 1) cx_fatal("%s: read_heads = %d and width = %d must be >= 1", op, R, W);
    int d[2] = {-1, cx_dnc_interface_size(R, W)};
    need_shape(op, "xi", xi, 2, d, "[B, R W + 3 W + 5 R + 3]");
    const int B = d[0];
    int at = 0;
#define TAKE(n) (at += (n), cx_slice(xi, 1, at - (n), at, 1))
    cx_dnc_interface it;
    it.read_keys = cx_reshape(TAKE(R * W), CX_SHAPE(B, R, W));
    it.read_strengths = cx_add_scalar(cx_softplus(TAKE(R), 1.0f, 20.0f), 1.0f);
    it.write_key = TAKE(W);
    it.write_strength = cx_add_scalar(cx_softplus(TAKE(1), 1.0f, 20.0f), 1.0f);
    it.erase = cx_sigmoid(TAKE(W));
    it.write_vec = TAKE(W);
    it.free_gates = cx_sigmoid(TAKE(R));
    it.alloc_gate = cx_sigmoid(TAKE(1));
    it.write_gate = cx_sigmoid(TAKE(1));
    it.read_modes = cx_softmax(cx_reshape(TAKE(3 * R), CX_SHAPE(B, R, 3)), -1);
#undef TAKE
    return it;
}

cx_dnc_state cx_dnc_state_zeros(int batch, int slots, int width, int read_heads) {
    const int B = batch, N = slots, W = width, R = read_heads;
    if (B < 1 || N < 1 || W < 1 || R < 1)
        cx_fatal("dnc_state_zeros: batch = %d, slots = %d, width = %d, read_heads = %d must all be >= 1", B, N, W, R);
    cx_dnc_state s;
    s.mem = cx_zeros(CX_SHAPE(B, N, W));
    s.usage = cx_zeros(CX_SHAPE(B, N));
    s.link = cx_zeros(CX_SHAPE(B, N, N));
    s.prec = cx_zeros(CX_SHAPE(B, N));
    s.ww = cx_zeros(CX_SHAPE(B, N));
    s.wr = cx_zeros(CX_SHAPE(B, R, N));
    s.reads = cx_zeros(CX_SHAPE(B, R, W));
    return s;
}

cx_dnc_state cx_dnc_access(const cx_dnc_state *prev, const cx_dnc_interface *in) {
    const char *op = "dnc_access";
    if (!prev || !in) cx_fatal("%s: prev and in must not be NULL", op);
    int dm[3] = {-1, -1, -1};
    need_shape(op, "prev.mem", prev->mem, 3, dm, "[B, N, W]");
    const int B = dm[0], N = dm[1], W = dm[2];
    int dw[3] = {B, -1, N};
    need_shape(op, "prev.wr", prev->wr, 3, dw, "[B, R, N]");
    const int R = dw[1];
    int dbn[2] = {B, N}, dbw[2] = {B, W}, dbr[2] = {B, R}, dl[3] = {B, N, N}, dk[3] = {B, R, W}, dmo[3] = {B, R, 3};
    need_shape(op, "prev.usage", prev->usage, 2, dbn, "[B, N]");
    need_shape(op, "prev.link", prev->link, 3, dl, "[B, N, N]");
    need_shape(op, "prev.prec", prev->prec, 2, dbn, "[B, N]");
    need_shape(op, "prev.ww", prev->ww, 2, dbn, "[B, N]");
    need_shape(op, "in.read_keys", in->read_keys, 3, dk, "[B, R, W]");
    need_shape(op, "in.read_strengths", in->read_strengths, 2, dbr, "[B, R]");
    need_shape(op, "in.write_key", in->write_key, 2, dbw, "[B, W]");
    need_scalar(op, "in.write_strength", in->write_strength, B);
    need_shape(op, "in.erase", in->erase, 2, dbw, "[B, W]");
    need_shape(op, "in.write_vec", in->write_vec, 2, dbw, "[B, W]");
    need_shape(op, "in.free_gates", in->free_gates, 2, dbr, "[B, R]");
    need_scalar(op, "in.alloc_gate", in->alloc_gate, B);
    need_scalar(op, "in.write_gate", in->write_gate, B);
    need_shape(op, "in.read_modes", in->read_modes, 3, dmo, "[B, R, 3]");

    cx_tensor *cw = cx_dnc_content_address(prev->mem, cx_reshape(in->write_key, CX_SHAPE(B, 1, W)),
                                           cx_reshape(in->write_strength, CX_SHAPE(B, 1)));
    cw = cx_reshape(cw, CX_SHAPE(B, N));
    cx_tensor *psi = cx_dnc_retention(in->free_gates, prev->wr);
    cx_tensor *usage = cx_dnc_usage(prev->usage, cx_detach(prev->ww), psi);
    cx_tensor *alloc = cx_dnc_allocation(usage);
    cx_dnc_state s;
    s.usage = usage;
    s.ww = cx_dnc_write_weighting(cw, alloc, in->alloc_gate, in->write_gate);
    s.mem = cx_ntm_write(prev->mem, s.ww, in->erase, in->write_vec);
    s.link = cx_dnc_link(prev->link, prev->prec, s.ww);
    s.prec = cx_dnc_precedence(prev->prec, s.ww);
    cx_tensor *cr = cx_dnc_content_address(s.mem, in->read_keys, in->read_strengths);
    cx_tensor *fw = cx_dnc_directional(s.link, prev->wr, true);
    cx_tensor *bw = cx_dnc_directional(s.link, prev->wr, false);
    s.wr = cx_dnc_read_weighting(bw, cr, fw, in->read_modes);
    s.reads = cx_dnc_read(s.mem, s.wr);
    return s;
}
