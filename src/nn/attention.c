/* Attention: the fused scaled dot-product attention op (two outputs, its own
 * backward), Luong's general and Bahdanau's additive attention (compositions
 * around it) and the multi-head attention module. Formulas, shapes, masks:
 * include/cortex/attention.h.
 *
 * The op works on a geometry rather than on contiguous tensors: every
 * operand (q, k, v, out) is a set of row-major matrices addressed by batch
 * dimensions with element strides (0: broadcast) and a row stride. The
 * public op uses it for broadcast batch dimensions; the multi-head module
 * uses it to read the heads of its projected tensors ([T, B, 3E] or
 * [B, T, 3E]) in place and to write the heads' outputs side by side in the
 * input's layout, so no per-head copy or transpose is ever made. */
#include "../autograd/graph.h"
#include "../cpu/cpu.h"
#include "../cpu/vmath.h"
#include <limits.h>
#include <math.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { AQ, AK, AV, AO }; /* operands of the geometry */

typedef struct {
    int nbd;                          /* batch dimensions */
    int bshape[CX_MAX_DIMS];
    int64_t nbatch;                   /* batch matrices (product of bshape) */
    int Tq, Tk, d, dv;
    int64_t st[4][CX_MAX_DIMS];       /* element strides of q, k, v, out per batch dim (0: broadcast) */
    int64_t off[4];                   /* element offset of the first matrix */
    int ld[4];                        /* row strides */
    float scale;
    bool shared;                      /* an input matrix is read by several batch matrices */
    bool disjoint;                    /* q, k, v passed as one tensor read disjoint regions of it
                                       * (the heads of a packed projection) */
    float drop_scale;                 /* 1 / (1 - p) (0 for p = 1) */
    float *P;                         /* dropout: the probabilities before dropout, else NULL
                                       * (they are the weights output) */
    const unsigned char *keep;        /* dropout: 1 where kept, else NULL */
} attn_geo;

/* Masks in arena copies: bytes (boolean, 1 = masked) or floats (added). */
typedef struct {
    const unsigned char *kpm_b;
    const float *kpm_f;
    int64_t kpm_div;                  /* batch matrix t uses row t / kpm_div (0: row 0) */
    const unsigned char *am_b;
    const float *am_f;
    bool am_per_batch;                /* one [Tq, Tk] mask per batch matrix (else one for all) */
    bool causal;
} attn_masks;

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int imax1(int64_t v) { return v > 1 ? (int)v : 1; }

static void geo_offsets(const attn_geo *g, int64_t t, int64_t o[4]) {
    for (int k = 0; k < 4; k++) o[k] = g->off[k];
    for (int d = g->nbd - 1; d >= 0; d--) {
        int64_t i = t % g->bshape[d];
        t /= g->bshape[d];
        for (int k = 0; k < 4; k++) o[k] += i * g->st[k][d];
    }
}

/* Threads for a loop over the batch matrices. */
static int batch_threads(const attn_geo *g) {
    double work = (double)g->nbatch * g->Tq * g->Tk * ((double)g->d + g->dv);
    if (g->nbatch < 2 || work < 65536.0) return 1;
    int nt = cx_cpu_threads_available();
    return nt > g->nbatch ? (int)g->nbatch : nt;
}

/* Masks, then a stable softmax of one score row in place. Keys j >= jmax are
 * masked (causal). A row with every key masked becomes zeros (unless it holds
 * a NaN, which is passed on). */
static void softmax_row(float *s, int Tk, int jmax, const float *a1, const float *a2, const unsigned char *m1,
                        const unsigned char *m2) {
    if (a1)
        for (int j = 0; j < jmax; j++) s[j] += a1[j];
    if (a2)
        for (int j = 0; j < jmax; j++) s[j] += a2[j];
    if (m1)
        for (int j = 0; j < jmax; j++) s[j] = m1[j] ? -INFINITY : s[j];
    if (m2)
        for (int j = 0; j < jmax; j++) s[j] = m2[j] ? -INFINITY : s[j];
    const float mx = cx_vmaxf(s, jmax);
    if (mx == -INFINITY) {
        bool nan = false;
        for (int j = 0; j < jmax; j++) nan |= isnan(s[j]);
        for (int j = 0; j < Tk; j++) s[j] = nan ? NAN : 0.0f;
        return;
    }
    for (int j = 0; j < jmax; j++) s[j] = cx_vexpf(s[j] - mx);
    const float inv = (float)(1.0 / cx_vsum_f64(s, jmax));
    for (int j = 0; j < jmax; j++) s[j] *= inv;
    for (int j = jmax; j < Tk; j++) s[j] = 0.0f;
}

/* ---- backward */
/* The gradient buffers of q, k, v. When every input's buffer is covered
 * exactly once by the GEMMs below (no broadcast input, and an input passed in
 * two roles only with disjoint regions, as the heads of a packed projection),
 * a buffer made now is written with beta = 0 instead of being zeroed first. */
static void claim_grads(cx_node *nd, const attn_geo *g, float *gr[3], float beta[3]) {
    cx_tensor *const *in = nd->in;
    const bool once = !g->shared && (g->disjoint || (in[0] != in[1] && in[0] != in[2] && in[1] != in[2]));
    for (int k = 0; k < 3; k++) {
        gr[k] = NULL;
        beta[k] = 1.0f;
        if (!in[k] || !in[k]->requires_grad) continue;
        int first = 0;
        while (in[first] != in[k]) first++;
        if (first < k) { /* the same tensor in an earlier role */
            gr[k] = gr[first];
            beta[k] = beta[first];
            continue;
        }
        if (once) {
            bool fresh;
            gr[k] = cx_in_grad_w(nd, k, &fresh);
            beta[k] = fresh ? 0.0f : 1.0f;
        } else {
            gr[k] = cx_in_grad(nd, k);
        }
    }
}

static void attention_backward(cx_node *nd) {
    const attn_geo *g = nd->saved;
    if (g->Tq == 0 || g->Tk == 0 || g->nbatch == 0) {
        for (int k = 0; k < 3; k++) (void)cx_in_grad(nd, k); /* zero gradients */
        return;
    }
    float *gr[3], beta[3];
    claim_grads(nd, g, gr, beta);
    float *gq = gr[0], *gk = gr[1], *gv = gr[2];
    if (!gq && !gk && !gv) return;
    const int Tq = g->Tq, Tk = g->Tk, d = g->d, dv = g->dv;
    const int ldq = g->ld[AQ], ldk = g->ld[AK], ldv = g->ld[AV], ldo = g->ld[AO];
    const int64_t TT = (int64_t)Tq * Tk;
    const float *Q = CX_F(nd->in[0]), *K = CX_F(nd->in[1]), *V = CX_F(nd->in[2]);
    const float *dO = nd->out[0]->grad, *dW = nd->out[1]->grad;
    const float *Pd = CX_F(nd->out[1]);           /* weights as used (after dropout) */
    const float *P = g->P ? g->P : Pd;            /* softmax probabilities */
    /* a broadcast input accumulates the gradients of several batch matrices
     * into one slice: then one thread */
    const int nt = g->shared ? 1 : batch_threads(g);
    const bool need_ds = gq || gk;
    float *scratch = need_ds ? cx_arena_alloc((size_t)nt * (size_t)TT * sizeof(float)) : NULL;
    const float scale = g->scale, dsc = g->drop_scale;
    const unsigned char *keep = g->keep;
    CX_OMP(parallel for num_threads(nt) schedule(static) if(nt > 1))
    for (int64_t t = 0; t < g->nbatch; t++) {
        int64_t o[4];
        geo_offsets(g, t, o);
        if (gv) cx_sgemm(true, false, Tk, dv, Tq, 1.0f, Pd + t * TT, Tk, dO + o[AO], ldo, beta[2], gv + o[AV], ldv);
        if (need_ds) {
            float *dS = scratch + (size_t)thread_id() * (size_t)TT;
            /* dP = dout v^T + dweights (added in the row loop) */
            cx_sgemm(false, true, Tq, Tk, dv, 1.0f, dO + o[AO], ldo, V + o[AV], ldv, 0.0f, dS, Tk);
            const float *Pt = P + t * TT, *dWt = dW + t * TT;
            const unsigned char *kp = keep ? keep + t * TT : NULL;
            for (int i = 0; i < Tq; i++) {
                float *r = dS + (size_t)i * Tk;
                const float *p = Pt + (size_t)i * Tk, *dw = dWt + (size_t)i * Tk;
                if (kp) {
                    const unsigned char *kr = kp + (size_t)i * Tk;
                    for (int j = 0; j < Tk; j++) r[j] = (r[j] + dw[j]) * (kr[j] ? dsc : 0.0f);
                } else {
                    for (int j = 0; j < Tk; j++) r[j] += dw[j];
                }
                /* dS = P * (dP - rowsum(P * dP)) */
                double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                int j = 0;
                for (; j + 8 <= Tk; j += 8)
                    for (int l = 0; l < 8; l++) s[l] += (double)p[j + l] * (double)r[j + l];
                for (; j < Tk; j++) s[0] += (double)p[j] * (double)r[j];
                const float dot = (float)(((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])));
                for (j = 0; j < Tk; j++) r[j] = p[j] * (r[j] - dot);
            }
            if (gq) cx_sgemm(false, false, Tq, d, Tk, scale, dS, Tk, K + o[AK], ldk, beta[0], gq + o[AQ], ldq);
            if (gk) cx_sgemm(true, false, Tk, d, Tq, scale, dS, Tk, Q + o[AQ], ldq, beta[1], gk + o[AK], ldk);
        }
    }
}

CX_OP_DEF(attention, .backward = attention_backward, .n_out = 2);

/* ---- forward on a geometry: out in the given shape, weights [batch..., Tq, Tk] */
static cx_tensor *attn_run(cx_tensor *q, cx_tensor *k, cx_tensor *v, attn_geo *g, const attn_masks *m,
                           float dropout, const int *oshape, int ondim, cx_tensor **weights) {
    int wshape[CX_MAX_DIMS];
    for (int i = 0; i < g->nbd; i++) wshape[i] = g->bshape[i];
    wshape[g->nbd] = g->Tq;
    wshape[g->nbd + 1] = g->Tk;
    cx_tensor *w = cx_new_like_shape(wshape, g->nbd + 2);
    cx_tensor *out = cx_new_like_shape(oshape, ondim);
    const int Tq = g->Tq, Tk = g->Tk, d = g->d, dv = g->dv;
    const int64_t TT = (int64_t)Tq * Tk;
    g->P = NULL;
    g->keep = NULL;
    g->drop_scale = 1.0f;
    if (dropout > 0 && cx_is_training() && w->numel > 0) {
        /* drawn here, in order, from the thread's current stream (as cx_dropout) */
        unsigned char *keep = cx_arena_alloc((size_t)w->numel);
        for (int64_t i = 0; i < w->numel; i++) keep[i] = cx_rand_uniform() >= dropout;
        g->keep = keep;
        g->P = cx_arena_alloc((size_t)w->numel * sizeof(float));
        g->drop_scale = dropout < 1.0f ? 1.0f / (1.0f - dropout) : 0.0f;
    }
    float *W = CX_F(w), *O = CX_F(out);
    const float *Q = CX_F(q), *K = CX_F(k), *V = CX_F(v);
    if (Tk == 0) {
        memset(O, 0, (size_t)out->numel * sizeof(float)); /* every row fully masked */
    } else if (Tq > 0) {
        const int nt = batch_threads(g);
        (void)nt; /* unused without OpenMP */
        const attn_geo *gc = g;
        CX_OMP(parallel for num_threads(nt) schedule(static) if(nt > 1))
        for (int64_t t = 0; t < gc->nbatch; t++) {
            int64_t o[4];
            geo_offsets(gc, t, o);
            float *S = W + t * TT;
            cx_sgemm(false, true, Tq, Tk, d, gc->scale, Q + o[AQ], gc->ld[AQ], K + o[AK], gc->ld[AK], 0.0f, S, Tk);
            const float *am_f = m->am_f ? m->am_f + (m->am_per_batch ? t * TT : 0) : NULL;
            const unsigned char *am_b = m->am_b ? m->am_b + (m->am_per_batch ? t * TT : 0) : NULL;
            const int64_t kr = m->kpm_div ? t / m->kpm_div : 0;
            const float *kf = m->kpm_f ? m->kpm_f + kr * Tk : NULL;
            const unsigned char *kb = m->kpm_b ? m->kpm_b + kr * Tk : NULL;
            for (int i = 0; i < Tq; i++) {
                const int jmax = m->causal ? (i + 1 < Tk ? i + 1 : Tk) : Tk;
                const size_t ro = (size_t)i * Tk;
                softmax_row(S + ro, Tk, jmax, am_f ? am_f + ro : NULL, kf, am_b ? am_b + ro : NULL, kb);
            }
            if (gc->keep) {
                memcpy(gc->P + t * TT, S, (size_t)TT * sizeof(float));
                const unsigned char *kp = gc->keep + t * TT;
                const float dsc = gc->drop_scale;
                for (int64_t i = 0; i < TT; i++) S[i] *= kp[i] ? dsc : 0.0f;
            }
            cx_sgemm(false, false, Tq, dv, Tk, 1.0f, S, Tk, V + o[AV], gc->ld[AV], 0.0f, O + o[AO], gc->ld[AO]);
        }
    }
    cx_tensor *outs[2] = {out, w}, *in[3] = {q, k, v};
    cx_record_n(&cx_opd_attention, outs, 2, in, 3, g, sizeof *g);
    if (weights) *weights = w;
    return out;
}

/* ---- masks: checked against the geometry and copied into the arena */
static void mask_values(const char *op, const char *what, const cx_tensor *t, const unsigned char **b,
                        const float **f) {
    *b = NULL;
    *f = NULL;
    const int64_t n = t->numel;
    if (t->dtype == CX_F32) {
        float *c = cx_arena_alloc((size_t)(n ? n : 1) * sizeof(float));
        const float *x = CX_F(t);
        for (int64_t i = 0; i < n; i++) {
            if (isnan(x[i]) || x[i] == INFINITY) {
                char s[96];
                cx_fatal("%s: %s %s holds %s at element %lld (an additive mask must be finite or -inf)", op,
                         what, cx_shape_str(t, s, sizeof s), isnan(x[i]) ? "NaN" : "+inf", (long long)i);
            }
            c[i] = x[i];
        }
        *f = c;
        return;
    }
    unsigned char *c = cx_arena_alloc((size_t)(n ? n : 1));
    switch (t->dtype) {
    case CX_I32: for (int64_t i = 0; i < n; i++) c[i] = CX_I32P(t)[i] != 0; break;
    case CX_I64: for (int64_t i = 0; i < n; i++) c[i] = CX_I64P(t)[i] != 0; break;
    default: cx_fatal("%s: %s has an unsupported dtype %s", op, what, cx_dtype_name(t->dtype));
    }
    *b = c;
}

/* nmat_name: how the caller names the number of batch matrices in messages;
 * full_batch_ok: an attn_mask may also have the batch dimensions themselves */
static void prep_masks(const char *op, const attn_geo *g, const cx_tensor *kpm, const cx_tensor *am, bool causal,
                       const char *nmat_name, bool full_batch_ok, attn_masks *m) {
    memset(m, 0, sizeof *m);
    m->causal = causal;
    char s[96];
    if (kpm) {
        const int B = g->nbd ? g->bshape[0] : 1;
        bool ok = (kpm->ndim == 2 && kpm->shape[0] == B && kpm->shape[1] == g->Tk) ||
                  (kpm->ndim == 1 && kpm->shape[0] == g->Tk);
        if (!ok)
            cx_fatal("%s: key_padding_mask has shape %s, expected [B, Tk] = [%d, %d] or [Tk] = [%d]", op,
                     cx_shape_str(kpm, s, sizeof s), B, g->Tk, g->Tk);
        m->kpm_div = kpm->ndim == 2 && g->nbd && B > 0 ? g->nbatch / B : 0;
        mask_values(op, "key_padding_mask", kpm, &m->kpm_b, &m->kpm_f);
    }
    if (am) {
        const int Tq = g->Tq, Tk = g->Tk;
        bool last2 = am->ndim >= 2 && am->shape[am->ndim - 2] == Tq && am->shape[am->ndim - 1] == Tk;
        bool ok2 = last2 && am->ndim == 2;
        bool ok3 = last2 && am->ndim == 3 && am->shape[0] == g->nbatch;
        bool okb = full_batch_ok && last2 && g->nbd >= 1 && am->ndim == g->nbd + 2;
        for (int i = 0; okb && i < g->nbd; i++) okb = am->shape[i] == g->bshape[i];
        if (!(ok2 || ok3 || okb)) {
            char bs[160] = "[";
            size_t n = 1;
            /* once the buffer is full, keep counting with a NULL / 0 destination */
            for (int i = 0; i < g->nbd; i++)
                n += (size_t)snprintf(n < sizeof bs ? bs + n : NULL, n < sizeof bs ? sizeof bs - n : 0, "%d, ",
                                      g->bshape[i]);
            if (n < sizeof bs) snprintf(bs + n, sizeof bs - n, "%d, %d]", Tq, Tk);
            cx_fatal("%s: attn_mask has shape %s, expected [Tq, Tk] = [%d, %d], [%s, Tq, Tk] = [%lld, %d, %d]%s%s", op,
                     cx_shape_str(am, s, sizeof s), Tq, Tk, nmat_name, (long long)g->nbatch, Tq, Tk,
                     full_batch_ok && g->nbd >= 2 ? " or " : "", full_batch_ok && g->nbd >= 2 ? bs : "");
        }
        m->am_per_batch = !ok2;
        mask_values(op, "attn_mask", am, &m->am_b, &m->am_f);
    }
}

static float resolve_scale(const char *op, float scale, int d) {
    if (scale == 0.0f || isnan(scale)) return d > 0 ? (float)(1.0 / sqrt((double)d)) : 1.0f;
    if (!isfinite(scale)) cx_fatal("%s: scale must be finite (0 or NAN: 1/sqrt(d)), got %g", op, (double)scale);
    return scale;
}

static void check_dropout(const char *op, float p) {
    if (!(p >= 0.0f && p <= 1.0f)) cx_fatal("%s: dropout must be in [0, 1], got %g", op, (double)p);
}

cx_attn_opts cx_attn_defaults(void) {
    cx_attn_opts o;
    memset(&o, 0, sizeof o);
    return o;
}

/* ---- the public op */
cx_tensor *cx_attention(cx_tensor *q, cx_tensor *k, cx_tensor *v, const cx_attn_opts *opts, cx_tensor **weights) {
    const char *op = "attention";
    const cx_attn_opts o = opts ? *opts : cx_attn_defaults();
    cx_need_f32_arg(op, "q", q);
    cx_need_f32_arg(op, "k", k);
    cx_need_f32_arg(op, "v", v);
    char s1[96], s2[96], s3[96];
    const cx_tensor *ops[3] = {q, k, v};
    const char *nm[3] = {"q", "k", "v"};
    const char *want[3] = {"[..., Tq, d]", "[..., Tk, d]", "[..., Tk, dv]"};
    for (int i = 0; i < 3; i++)
        if (ops[i]->ndim < 2)
            cx_fatal("%s: %s has shape %s, expected %s (at least 2 dimensions)", op, nm[i],
                     cx_shape_str(ops[i], s1, sizeof s1), want[i]);
    attn_geo g;
    memset(&g, 0, sizeof g);
    g.Tq = q->shape[q->ndim - 2];
    g.d = q->shape[q->ndim - 1];
    g.Tk = k->shape[k->ndim - 2];
    g.dv = v->shape[v->ndim - 1];
    if (k->shape[k->ndim - 1] != g.d)
        cx_fatal("%s: k %s does not match q %s: their last dimensions (d) differ, %d vs %d", op,
                 cx_shape_str(k, s1, sizeof s1), cx_shape_str(q, s2, sizeof s2), k->shape[k->ndim - 1], g.d);
    if (v->shape[v->ndim - 2] != g.Tk)
        cx_fatal("%s: v %s does not match k %s: their key counts (Tk, dimension -2) differ, %d vs %d", op,
                 cx_shape_str(v, s1, sizeof s1), cx_shape_str(k, s2, sizeof s2), v->shape[v->ndim - 2], g.Tk);
    /* batch dimensions of the three, broadcast from the right */
    int nbd = 0;
    for (int i = 0; i < 3; i++) nbd = ops[i]->ndim - 2 > nbd ? ops[i]->ndim - 2 : nbd;
    g.nbd = nbd;
    const int64_t msz[3] = {(int64_t)g.Tq * g.d, (int64_t)g.Tk * g.d, (int64_t)g.Tk * g.dv};
    int64_t acc[3] = {1, 1, 1};
    g.nbatch = 1;
    for (int dd = nbd - 1; dd >= 0; dd--) {
        int dim = 1, di[3];
        for (int i = 0; i < 3; i++) {
            int ii = dd - (nbd - (ops[i]->ndim - 2));
            di[i] = ii >= 0 ? ops[i]->shape[ii] : 1;
            if (di[i] != 1) {
                if (dim != 1 && dim != di[i])
                    cx_fatal("%s: the batch dimensions of q %s, k %s and v %s cannot be broadcast (dimension %d: "
                             "%d vs %d)", op, cx_shape_str(q, s1, sizeof s1), cx_shape_str(k, s2, sizeof s2),
                             cx_shape_str(v, s3, sizeof s3), dd, dim, di[i]);
                dim = di[i];
            }
        }
        g.bshape[dd] = dim;
        for (int i = 0; i < 3; i++) {
            g.st[i][dd] = di[i] == 1 ? 0 : acc[i] * msz[i];
            if (di[i] == 1 && dim > 1) g.shared = true;
            acc[i] *= di[i];
        }
        g.nbatch *= dim;
    }
    int oshape[CX_MAX_DIMS];
    for (int i = 0; i < nbd; i++) oshape[i] = g.bshape[i];
    oshape[nbd] = g.Tq;
    oshape[nbd + 1] = g.dv;
    (void)cx_shape_numel(op, oshape, nbd + 2);
    int64_t ost = (int64_t)g.Tq * g.dv;
    for (int dd = nbd - 1; dd >= 0; dd--) {
        g.st[AO][dd] = ost;
        ost *= g.bshape[dd];
    }
    g.ld[AQ] = imax1(g.d);
    g.ld[AK] = imax1(g.d);
    g.ld[AV] = imax1(g.dv);
    g.ld[AO] = imax1(g.dv);
    g.scale = resolve_scale(op, o.scale, g.d);
    check_dropout(op, o.dropout);
    attn_masks m;
    prep_masks(op, &g, o.key_padding_mask, o.attn_mask, o.causal, "N", true, &m);
    return attn_run(q, k, v, &g, &m, o.dropout, oshape, nbd + 2, weights);
}

cx_tensor *cx_general_attention(cx_tensor *q, cx_tensor *w, cx_tensor *k, cx_tensor *v, const cx_attn_opts *opts,
                                cx_tensor **weights) {
    const char *op = "general_attention";
    cx_need_f32_arg(op, "q", q);
    cx_need_f32_arg(op, "w", w);
    char s1[96], s2[96];
    if (q->ndim < 2 || w->ndim != 2 || w->shape[0] != q->shape[q->ndim - 1])
        cx_fatal("%s: w has shape %s, expected [dq, dk] with dq = %d (the last dimension of q %s)", op,
                 cx_shape_str(w, s1, sizeof s1), q->shape[q->ndim - 1], cx_shape_str(q, s2, sizeof s2));
    return cx_attention(cx_matmul(q, w), k, v, opts, weights);
}

/* Shapes of the decoder side (s, w2, v) and the mask against B, T, A. */
static void additive_check(const char *op, int B, int T, int A, const cx_tensor *s, const cx_tensor *w2,
                           const cx_tensor *v, const cx_tensor *key_padding_mask) {
    char s1[96];
    if (s->ndim != 2 || s->shape[0] != B)
        cx_fatal("%s: s has shape %s, expected [B, Ds] with B = %d", op, cx_shape_str(s, s1, sizeof s1), B);
    const int Ds = s->shape[1];
    if (w2->ndim != 2 || w2->shape[0] != A || w2->shape[1] != Ds)
        cx_fatal("%s: w2 has shape %s, expected [A, Ds] = [%d, %d]", op, cx_shape_str(w2, s1, sizeof s1), A, Ds);
    if (v->ndim != 1 || v->shape[0] != A)
        cx_fatal("%s: v has shape %s, expected [A] = [%d]", op, cx_shape_str(v, s1, sizeof s1), A);
    if (key_padding_mask &&
        !(key_padding_mask->ndim == 2 && key_padding_mask->shape[0] == B && key_padding_mask->shape[1] == T))
        cx_fatal("%s: key_padding_mask has shape %s, expected [B, T] = [%d, %d]", op,
                 cx_shape_str(key_padding_mask, s1, sizeof s1), B, T);
}

/* e = tanh(hp + (s W2^T)[:, None]) v -> [B, T, 1], the keys of width 1 of a
 * fused attention whose query is 1 and scale 1: the op then applies the mask,
 * the softmax (fully padded rows: zeros) and sum_t a h. */
static cx_tensor *additive_core(cx_tensor *hp, cx_tensor *h, cx_tensor *s, cx_tensor *w2, cx_tensor *v,
                                const cx_tensor *key_padding_mask, cx_tensor **weights) {
    const int B = h->shape[0], T = h->shape[1], Dh = h->shape[2], A = hp->shape[2];
    cx_tensor *z = cx_tanh(cx_add(hp, cx_reshape(cx_linear(s, w2, NULL), (const int[]){B, 1, A}, 3)));
    cx_tensor *e = cx_linear(z, cx_reshape(v, (const int[]){1, A}, 2), NULL);
    cx_tensor *one = cx_ones((const int[]){B, 1, 1}, 3);
    cx_attn_opts o = cx_attn_defaults();
    o.scale = 1.0f;
    o.key_padding_mask = key_padding_mask;
    cx_tensor *a = NULL;
    cx_tensor *ctx = cx_attention(one, e, h, &o, &a);
    if (weights) *weights = cx_reshape(a, (const int[]){B, T}, 2);
    return cx_reshape(ctx, (const int[]){B, Dh}, 2);
}

cx_tensor *cx_additive_attention(cx_tensor *h, cx_tensor *s, cx_tensor *w1, cx_tensor *w2, cx_tensor *v,
                                 const cx_tensor *key_padding_mask, cx_tensor **weights) {
    const char *op = "additive_attention";
    cx_need_f32_arg(op, "h", h);
    cx_need_f32_arg(op, "s", s);
    cx_need_f32_arg(op, "w1", w1);
    cx_need_f32_arg(op, "w2", w2);
    cx_need_f32_arg(op, "v", v);
    char s1[96];
    if (h->ndim != 3)
        cx_fatal("%s: h has shape %s, expected [B, T, Dh]", op, cx_shape_str(h, s1, sizeof s1));
    const int B = h->shape[0], T = h->shape[1], Dh = h->shape[2];
    if (w1->ndim != 2 || w1->shape[1] != Dh)
        cx_fatal("%s: w1 has shape %s, expected [A, Dh] with Dh = %d", op, cx_shape_str(w1, s1, sizeof s1), Dh);
    additive_check(op, B, T, w1->shape[0], s, w2, v, key_padding_mask);
    return additive_core(cx_linear(h, w1, NULL), h, s, w2, v, key_padding_mask, weights);
}

cx_tensor *cx_additive_attention_pre(cx_tensor *hp, cx_tensor *h, cx_tensor *s, cx_tensor *w2, cx_tensor *v,
                                     const cx_tensor *key_padding_mask, cx_tensor **weights) {
    const char *op = "additive_attention_pre";
    cx_need_f32_arg(op, "hp", hp);
    cx_need_f32_arg(op, "h", h);
    cx_need_f32_arg(op, "s", s);
    cx_need_f32_arg(op, "w2", w2);
    cx_need_f32_arg(op, "v", v);
    char s1[96];
    if (h->ndim != 3)
        cx_fatal("%s: h has shape %s, expected [B, T, Dh]", op, cx_shape_str(h, s1, sizeof s1));
    const int B = h->shape[0], T = h->shape[1];
    if (hp->ndim != 3 || hp->shape[0] != B || hp->shape[1] != T)
        cx_fatal("%s: hp has shape %s, expected [B, T, A] with B = %d, T = %d (h W1^T)", op,
                 cx_shape_str(hp, s1, sizeof s1), B, T);
    additive_check(op, B, T, hp->shape[2], s, w2, v, key_padding_mask);
    return additive_core(hp, h, s, w2, v, key_padding_mask, weights);
}

/* ================================================================ multi-head attention */
typedef struct {
    cx_module base;
    int E, H, kdim, vdim;
    cx_mha_opts opt;
    cx_tensor *in_proj_weight, *q_proj_weight, *k_proj_weight, *v_proj_weight, *in_proj_bias;
    cx_module *out_proj;
} mha_m;

static int mha_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out);
static void mha_describe(const cx_module *m, char *buf, size_t n);
static const cx_module_ops mha_ops = {.kind = "MultiheadAttention", .call = mha_call, .describe = mha_describe};

cx_mha_opts cx_mha_defaults(void) {
    cx_mha_opts o;
    memset(&o, 0, sizeof o);
    o.bias = true;
    return o;
}

static mha_m *as_mha(const cx_module *m) {
    if (!m || m->ops != &mha_ops)
        cx_fatal("expected a MultiheadAttention module, got %s", m ? m->ops->kind : "NULL");
    return (mha_m *)m;
}
int cx_mha_embed_dim(const cx_module *m) { return as_mha(m)->E; }
int cx_mha_num_heads(const cx_module *m) { return as_mha(m)->H; }

static void mha_describe(const cx_module *m, char *buf, size_t n) {
    const mha_m *a = (const mha_m *)m;
    char kv[48] = "";
    if (a->kdim != a->E || a->vdim != a->E) snprintf(kv, sizeof kv, ", kdim=%d, vdim=%d", a->kdim, a->vdim);
    snprintf(buf, n, "MultiheadAttention(embed_dim=%d, num_heads=%d%s%s%s%s)", a->E, a->H, kv,
             a->opt.bias ? "" : ", bias=False", a->opt.batch_first ? ", batch_first" : "",
             a->opt.causal ? ", causal" : "");
}

cx_module *cx_multihead_attention_new(int E, int H, const cx_mha_opts *opts) {
    const char *k = "MultiheadAttention";
    cx_mha_opts o = opts ? *opts : cx_mha_defaults();
    if (E <= 0) cx_fatal("%s: embed_dim must be positive, got %d", k, E);
    if (H <= 0) cx_fatal("%s: num_heads must be positive, got %d", k, H);
    if (E % H) cx_fatal("%s: embed_dim %d is not divisible by num_heads %d", k, E, H);
    if (o.kdim < 0 || o.vdim < 0) cx_fatal("%s: kdim and vdim must be >= 0 (0: embed_dim), got %d, %d", k, o.kdim, o.vdim);
    check_dropout(k, o.dropout);
    if (o.add_bias_kv) cx_fatal("%s: add_bias_kv is not supported", k);
    if (o.add_zero_attn) cx_fatal("%s: add_zero_attn is not supported", k);
    const int kdim = o.kdim ? o.kdim : E, vdim = o.vdim ? o.vdim : E;
    if (E > INT_MAX / 3) cx_fatal("%s: embed_dim %d is too large", k, E);
    (void)cx_shape_numel(k, (const int[]){3 * E, E}, 2);
    (void)cx_shape_numel(k, (const int[]){E, kdim > vdim ? kdim : vdim}, 2);
    mha_m *a = cx_xcalloc(1, sizeof *a);
    cx_module_init(&a->base, &mha_ops);
    a->E = E;
    a->H = H;
    a->kdim = kdim;
    a->vdim = vdim;
    a->opt = o;
    /* PyTorch's order: out_proj (a Linear: its default init) is made in
     * __init__, then _reset_parameters draws xavier_uniform_ for the input
     * projections and zeroes the biases */
    cx_module *out_proj = cx_linear_new(E, E, o.bias);
    if (kdim == E && vdim == E) {
        a->in_proj_weight = cx_param_new("in_proj_weight", (const int[]){3 * E, E}, 2);
        cx_init_xavier_uniform(a->in_proj_weight, 1.0f);
        cx_module_add_param(&a->base, "in_proj_weight", &a->in_proj_weight);
    } else {
        a->q_proj_weight = cx_param_new("q_proj_weight", (const int[]){E, E}, 2);
        a->k_proj_weight = cx_param_new("k_proj_weight", (const int[]){E, kdim}, 2);
        a->v_proj_weight = cx_param_new("v_proj_weight", (const int[]){E, vdim}, 2);
        cx_init_xavier_uniform(a->q_proj_weight, 1.0f);
        cx_init_xavier_uniform(a->k_proj_weight, 1.0f);
        cx_init_xavier_uniform(a->v_proj_weight, 1.0f);
        cx_module_add_param(&a->base, "q_proj_weight", &a->q_proj_weight);
        cx_module_add_param(&a->base, "k_proj_weight", &a->k_proj_weight);
        cx_module_add_param(&a->base, "v_proj_weight", &a->v_proj_weight);
    }
    if (o.bias) {
        a->in_proj_bias = cx_param_new("in_proj_bias", (const int[]){3 * E}, 1); /* zeros */
        cx_module_add_param(&a->base, "in_proj_bias", &a->in_proj_bias);
        cx_fill(cx_linear_bias(out_proj), 0.0f);
    }
    a->out_proj = cx_module_add(&a->base, "out_proj", out_proj);
    return &a->base;
}

/* The heads of a projected tensor x, [T, B, W] (or [B, T, W] batch-first):
 * head h of batch b is the [T, hd] block at column col + h * hd. */
static void heads_operand(const char *op, attn_geo *g, int which, const cx_tensor *x, int col, int hd, bool bf) {
    const int W = x->shape[2], T = bf ? x->shape[1] : x->shape[0], B = bf ? x->shape[0] : x->shape[1];
    if ((int64_t)B * W > INT_MAX) cx_fatal("%s: batch %d x width %d is too large", op, B, W);
    g->st[which][0] = bf ? (int64_t)T * W : W;
    g->st[which][1] = hd;
    g->ld[which] = imax1(bf ? W : (int64_t)B * W);
    g->off[which] = col;
}

static cx_tensor *rows(cx_tensor *t, int r0, int r1) { return t ? cx_slice(t, 0, r0, r1, 1) : NULL; }

cx_tensor *cx_mha_forward(cx_module *m, cx_tensor *query, cx_tensor *key, cx_tensor *value,
                          const cx_tensor *key_padding_mask, const cx_tensor *attn_mask, bool need_weights,
                          bool average_weights, cx_tensor **out, cx_tensor **weights) {
    mha_m *a = as_mha(m);
    const char *op = "MultiheadAttention";
    if (!key) key = query;
    if (!value) value = key;
    cx_need_f32_arg(op, "query", query);
    cx_need_f32_arg(op, "key", key);
    cx_need_f32_arg(op, "value", value);
    char s1[96], s2[96];
    const int E = a->E, H = a->H, hd = E / H;
    const bool batched = query->ndim == 3, bf = batched && a->opt.batch_first;
    if (!(query->ndim == 3 || query->ndim == 2) || query->shape[query->ndim - 1] != E)
        cx_fatal("%s: query has shape %s, expected %s with E = %d, or unbatched [Tq, E]", op,
                 cx_shape_str(query, s1, sizeof s1), a->opt.batch_first ? "[B, Tq, E]" : "[Tq, B, E]", E);
    const int Tq = bf ? query->shape[1] : query->shape[0], B = batched ? (bf ? query->shape[0] : query->shape[1]) : 1;
    /* key and value: same batchedness, batch size, feature sizes kdim / vdim, one Tk */
    if (key->ndim != query->ndim || key->shape[key->ndim - 1] != a->kdim ||
        (batched && key->shape[bf ? 0 : 1] != B))
        cx_fatal("%s: key has shape %s, expected %s with %s = %d and B = %d (query %s)", op,
                 cx_shape_str(key, s1, sizeof s1),
                 !batched ? "[Tk, kdim]" : a->opt.batch_first ? "[B, Tk, kdim]" : "[Tk, B, kdim]",
                 a->kdim == E ? "kdim = E" : "kdim", a->kdim, B, cx_shape_str(query, s2, sizeof s2));
    const int Tk = bf ? key->shape[1] : key->shape[0];
    if (value->ndim != key->ndim || value->shape[value->ndim - 1] != a->vdim ||
        (batched && value->shape[bf ? 0 : 1] != B) || value->shape[bf ? 1 : 0] != Tk)
        cx_fatal("%s: value has shape %s, expected %s with vdim = %d, Tk = %d (that of key %s) and B = %d", op,
                 cx_shape_str(value, s1, sizeof s1),
                 !batched ? "[Tk, vdim]" : a->opt.batch_first ? "[B, Tk, vdim]" : "[Tk, B, vdim]", a->vdim, Tk,
                 cx_shape_str(key, s2, sizeof s2), B);
    cx_tensor *qx = query, *kx = key, *vx = value;
    if (!batched) { /* [T, 1, .]: one sequence, seq-first */
        qx = cx_reshape(query, (const int[]){Tq, 1, E}, 3);
        kx = key == query ? qx : cx_reshape(key, (const int[]){Tk, 1, a->kdim}, 3);
        vx = value == key ? kx : value == query ? qx : cx_reshape(value, (const int[]){Tk, 1, a->vdim}, 3);
    }
    /* in-projections: one GEMM for self-attention (the whole [3E, E] weight),
     * two when key is value, else three */
    cx_tensor *bq = NULL, *bk = NULL, *bv = NULL;
    cx_tensor *pq, *pk, *pv;
    int cq = 0, ck = 0, cv = 0;
    cx_tensor *W = a->in_proj_weight, *bias = a->in_proj_bias;
    if (W && query == key && key == value) {
        pq = pk = pv = cx_linear(qx, W, bias);
        ck = E;
        cv = 2 * E;
    } else if (W && key == value) {
        pq = cx_linear(qx, rows(W, 0, E), rows(bias, 0, E));
        pk = pv = cx_linear(kx, rows(W, E, 3 * E), rows(bias, E, 3 * E));
        cv = E;
    } else {
        if (bias) {
            bq = rows(bias, 0, E);
            bk = rows(bias, E, 2 * E);
            bv = rows(bias, 2 * E, 3 * E);
        }
        pq = cx_linear(qx, W ? rows(W, 0, E) : a->q_proj_weight, bq);
        pk = cx_linear(kx, W ? rows(W, E, 2 * E) : a->k_proj_weight, bk);
        pv = cx_linear(vx, W ? rows(W, 2 * E, 3 * E) : a->v_proj_weight, bv);
    }
    /* attention over the heads, read in place: batch dims (B, H) */
    attn_geo g;
    memset(&g, 0, sizeof g);
    g.nbd = 2;
    g.bshape[0] = B;
    g.bshape[1] = H;
    g.nbatch = (int64_t)B * H;
    g.disjoint = true; /* separate tensors, or distinct column ranges of one */
    g.Tq = Tq;
    g.Tk = Tk;
    g.d = hd;
    g.dv = hd;
    heads_operand(op, &g, AQ, pq, cq, hd, bf);
    heads_operand(op, &g, AK, pk, ck, hd, bf);
    heads_operand(op, &g, AV, pv, cv, hd, bf);
    g.st[AO][0] = bf ? (int64_t)Tq * E : E;
    g.st[AO][1] = hd;
    g.ld[AO] = bf ? E : imax1((int64_t)B * E);
    g.scale = resolve_scale(op, 0.0f, hd);
    attn_masks mk;
    const cx_tensor *kpm = key_padding_mask;
    if (kpm && !batched && !(kpm->ndim == 1 && kpm->shape[0] == Tk))
        cx_fatal("%s: key_padding_mask has shape %s, expected [Tk] = [%d] for unbatched input", op,
                 cx_shape_str(kpm, s1, sizeof s1), Tk);
    if (kpm && batched && kpm->ndim != 2)
        cx_fatal("%s: key_padding_mask has shape %s, expected [B, Tk] = [%d, %d]", op,
                 cx_shape_str(kpm, s1, sizeof s1), B, Tk);
    prep_masks(op, &g, kpm, attn_mask, a->opt.causal, "B*num_heads", false, &mk);
    const int oshape[3] = {bf ? B : Tq, bf ? Tq : B, E};
    cx_tensor *w4 = NULL;
    cx_tensor *att = attn_run(pq, pk, pv, &g, &mk, a->opt.dropout, oshape, 3, &w4);
    cx_tensor *y = cx_module_forward(a->out_proj, att);
    if (!batched) y = cx_reshape(y, (const int[]){Tq, E}, 2);
    if (weights) {
        *weights = NULL;
        if (need_weights) {
            cx_tensor *wt = average_weights ? cx_mean_axis(w4, 1, false) : w4;
            if (!batched)
                wt = average_weights ? cx_reshape(wt, (const int[]){Tq, Tk}, 2)
                                     : cx_reshape(wt, (const int[]){H, Tq, Tk}, 3);
            *weights = wt;
        }
    }
    if (out) *out = y;
    return y;
}

static int mha_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    if (n_in < 1 || n_in > 5)
        cx_fatal("MultiheadAttention: expected query and optionally key, value, key_padding_mask, attn_mask "
                 "(1 to 5 inputs), got %d", n_in);
    cx_tensor *w = NULL;
    cx_tensor *y = cx_mha_forward(m, in[0], n_in > 1 ? in[1] : NULL, n_in > 2 ? in[2] : NULL,
                                  n_in > 3 ? in[3] : NULL, n_in > 4 ? in[4] : NULL, max_out >= 2, true, NULL,
                                  max_out >= 2 ? &w : NULL);
    if (max_out < 1) return 0;
    out[0] = y;
    if (max_out < 2) return 1;
    out[1] = w;
    return 2;
}
