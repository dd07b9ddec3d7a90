/* NTM memory operations, compositions of autograd ops. Formulas, shapes and
 * numerics: include/cortex/memory.h. */
#include "cortex/memory.h"
#include "cortex/core.h"
#include "../autograd/graph.h"
#include <math.h>

/* ---- fused kernels (one graph node each; the composition of autograd ops
 * they replace is what memory.h documents, and what the PyTorch fixtures of
 * tests/nn/test_memory.c and tests/models/test_ntm.c check) */

/* Content addressing: wc = softmax_i(beta * cos(key, M_i)), cos with
 * PyTorch 1.13's separately clamped norms. Saved: the similarities and the
 * clamped norms (arena). */
typedef struct {
    float *sim, *kn, *mn; /* [B, N], [B], [B, N] */
    int B, N, W;
} content_saved;

static void ntm_content_backward(cx_node *nd) {
    const content_saved *sv = nd->saved;
    bool fresh; /* gm is written whole when it is a new buffer */
    float *gm = cx_in_grad_w(nd, 0, &fresh), *gk = cx_in_grad(nd, 1), *gb = cx_in_grad(nd, 2);
    if (!gm && !gk && !gb) return;
    const int B = sv->B, N = sv->N, W = sv->W;
    const float *M = CX_F(nd->in[0]), *k = CX_F(nd->in[1]), *beta = CX_F(nd->in[2]);
    const float *wc = CX_F(nd->out[0]), *g = nd->out[0]->grad;
    float *gz = cx_arena_alloc((size_t)N * sizeof(float)), *gkb = cx_arena_alloc((size_t)W * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *wb = wc + (size_t)b * N, *gbb = g + (size_t)b * N, *sim = sv->sim + (size_t)b * N;
        const float *mn = sv->mn + (size_t)b * N, *kb = k + (size_t)b * W;
        const float kn = sv->kn[b], bt = beta[b];
        double dot = 0;
        for (int i = 0; i < N; i++) dot += (double)gbb[i] * wb[i];
        double gbeta = 0;
        for (int i = 0; i < N; i++) {
            gz[i] = wb[i] * (gbb[i] - (float)dot);
            gbeta += (double)gz[i] * sim[i];
        }
        if (gb) gb[b] += (float)gbeta;
        for (int j = 0; j < W; j++) gkb[j] = 0;
        for (int i = 0; i < N; i++) {
            const float gs = bt * gz[i];
            const float *Mi = M + ((size_t)b * N + i) * W;
            const float inv = 1.0f / (kn * mn[i]);
            const float ck = sim[i] / (kn * kn), cm = sim[i] / (mn[i] * mn[i]);
            if (gm) {
                float *gmi = gm + ((size_t)b * N + i) * W;
                if (fresh)
                    for (int j = 0; j < W; j++) gmi[j] = gs * (kb[j] * inv - cm * Mi[j]);
                else
                    for (int j = 0; j < W; j++) gmi[j] += gs * (kb[j] * inv - cm * Mi[j]);
            }
            for (int j = 0; j < W; j++) gkb[j] += gs * (Mi[j] * inv - ck * kb[j]);
        }
        if (gk)
            for (int j = 0; j < W; j++) gk[(size_t)b * W + j] += gkb[j];
    }
}

CX_OP_DEF(ntm_content, .backward = ntm_content_backward);

/* mem [B, N, W], key [B, W], beta [B, 1] (checked by the caller). */
static cx_tensor *content_fused(cx_tensor *mem, cx_tensor *key, cx_tensor *beta) {
    const int B = mem->shape[0], N = mem->shape[1], W = mem->shape[2];
    const float eps = CX_NTM_COS_EPS;
    content_saved sv = {cx_arena_alloc((size_t)B * N * sizeof(float)), cx_arena_alloc((size_t)B * sizeof(float)),
                        cx_arena_alloc((size_t)B * N * sizeof(float)), B, N, W};
    cx_tensor *out = cx_new_like_shape((const int[]){B, N}, 2);
    const float *M = CX_F(mem), *k = CX_F(key), *bt = CX_F(beta);
    float *o = CX_F(out);
    for (int b = 0; b < B; b++) {
        const float *kb = k + (size_t)b * W;
        double kk = 0;
        for (int j = 0; j < W; j++) kk += (double)kb[j] * kb[j];
        const double kn = sqrt(kk) > eps ? sqrt(kk) : eps;
        sv.kn[b] = (float)kn;
        float *ob = o + (size_t)b * N, *sim = sv.sim + (size_t)b * N;
        float mx = -INFINITY;
        for (int i = 0; i < N; i++) {
            const float *Mi = M + ((size_t)b * N + i) * W;
            float d = 0, mm = 0; /* float sums: W is small, and they vectorise */
            for (int j = 0; j < W; j++) {
                d += kb[j] * Mi[j];
                mm += Mi[j] * Mi[j];
            }
            const float mn = sqrtf(mm) > eps ? sqrtf(mm) : eps;
            sv.mn[(size_t)b * N + i] = mn;
            sim[i] = d / ((float)kn * mn);
            ob[i] = bt[b] * sim[i];
            if (ob[i] > mx) mx = ob[i];
        }
        double z = 0;
        for (int i = 0; i < N; i++) {
            ob[i] = expf(ob[i] - mx);
            z += ob[i];
        }
        const float inv = (float)(1.0 / z);
        for (int i = 0; i < N; i++) ob[i] *= inv;
    }
    cx_tensor *in[3] = {mem, key, beta};
    cx_record_saved(&cx_opd_ntm_content, out, in, 3, &sv, sizeof sv);
    return out;
}

/* Location addressing: interpolation, circular shift, sharpening:
 *   wg = g wc + (1 - g) wprev,  ws_i = sum_j wg[(i - o_j) mod N] s_j,
 *   w_i = ws_i^gamma / sum_k ws_k^gamma
 * with torch.pow's conventions at ws_i = 0 (memory.h). Saved: wg, ws and
 * the normaliser (arena). */
typedef struct {
    float *wg, *ws, *z; /* [B, N], [B, N], [B] */
    int B, N, K;
} locate_saved;

static void ntm_locate_backward(cx_node *nd) {
    const locate_saved *sv = nd->saved;
    float *gwc = cx_in_grad(nd, 0), *gwp = cx_in_grad(nd, 1), *gg = cx_in_grad(nd, 2), *gs = cx_in_grad(nd, 3),
          *ggam = cx_in_grad(nd, 4);
    if (!gwc && !gwp && !gg && !gs && !ggam) return;
    const int B = sv->B, N = sv->N, K = sv->K, h = (K - 1) / 2;
    const float *wc = CX_F(nd->in[0]), *wp = CX_F(nd->in[1]), *g = CX_F(nd->in[2]), *s = CX_F(nd->in[3]),
                *gam = CX_F(nd->in[4]), *w = CX_F(nd->out[0]), *gw = nd->out[0]->grad;
    float *gws = cx_arena_alloc((size_t)N * sizeof(float)), *gwg = cx_arena_alloc((size_t)N * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *wb = w + (size_t)b * N, *gb = gw + (size_t)b * N, *ws = sv->ws + (size_t)b * N,
                    *wg = sv->wg + (size_t)b * N, *sb = s + (size_t)b * K;
        const float gm = gam[b], z = sv->z[b];
        double dot = 0;
        for (int i = 0; i < N; i++) dot += (double)gb[i] * wb[i];
        double dgam = 0;
        for (int i = 0; i < N; i++) {
            const float gp = (gb[i] - (float)dot) / z; /* d/dp_i, p_i = ws_i^gamma = w_i z */
            const float p = wb[i] * z;
            gws[i] = gp * gm * powf(ws[i], gm - 1.0f);
            if (ws[i] > 0) dgam += (double)gp * p * logf(ws[i]);
        }
        if (ggam) ggam[b] += (float)dgam;
        for (int i = 0; i < N; i++) gwg[i] = 0;
        for (int j = 0; j < K; j++) {
            const int off = j - h;
            double acc = 0;
            for (int i = 0; i < N; i++) {
                int src = i - off;
                src = src < 0 ? src + N : src >= N ? src - N : src;
                gwg[src] += gws[i] * sb[j];
                acc += (double)gws[i] * wg[src];
            }
            if (gs) gs[(size_t)b * K + j] += (float)acc;
        }
        const float gb_ = g[b];
        double dg = 0;
        for (int i = 0; i < N; i++) {
            const size_t r = (size_t)b * N + i;
            if (gwc) gwc[r] += gb_ * gwg[i];
            if (gwp) gwp[r] += (1.0f - gb_) * gwg[i];
            dg += (double)gwg[i] * (wc[r] - wp[r]);
        }
        if (gg) gg[b] += (float)dg;
    }
}

CX_OP_DEF(ntm_locate, .backward = ntm_locate_backward);

/* wc, wprev [B, N], g [B, 1], s [B, K], gamma [B, 1] (checked by the caller). */
static cx_tensor *locate_fused(cx_tensor *wc, cx_tensor *wprev, cx_tensor *g, cx_tensor *s, cx_tensor *gamma) {
    const int B = wc->shape[0], N = wc->shape[1], K = s->shape[1], h = (K - 1) / 2;
    locate_saved sv = {cx_arena_alloc((size_t)B * N * sizeof(float)), cx_arena_alloc((size_t)B * N * sizeof(float)),
                       cx_arena_alloc((size_t)B * sizeof(float)), B, N, K};
    cx_tensor *out = cx_new_like_shape((const int[]){B, N}, 2);
    const float *c = CX_F(wc), *p = CX_F(wprev), *gp = CX_F(g), *sp = CX_F(s), *gam = CX_F(gamma);
    float *o = CX_F(out);
    for (int b = 0; b < B; b++) {
        float *wg = sv.wg + (size_t)b * N, *ws = sv.ws + (size_t)b * N, *ob = o + (size_t)b * N;
        const float gb = gp[b], *sb = sp + (size_t)b * K;
        for (int i = 0; i < N; i++) wg[i] = gb * c[(size_t)b * N + i] + (1.0f - gb) * p[(size_t)b * N + i];
        for (int i = 0; i < N; i++) {
            float acc = 0;
            for (int j = 0; j < K; j++) {
                int src = i - (j - h);
                src = src < 0 ? src + N : src >= N ? src - N : src;
                acc += wg[src] * sb[j];
            }
            ws[i] = acc;
        }
        double z = 0;
        for (int i = 0; i < N; i++) {
            ob[i] = powf(ws[i], gam[b]);
            z += ob[i];
        }
        sv.z[b] = (float)z;
        const float inv = 1.0f / (float)z;
        for (int i = 0; i < N; i++) ob[i] *= inv;
    }
    cx_tensor *in[5] = {wc, wprev, g, s, gamma};
    cx_record_saved(&cx_opd_ntm_locate, out, in, 5, &sv, sizeof sv);
    return out;
}

/* Write: M' = M * (1 - w e^T) + w a^T. */
static void ntm_write_backward(cx_node *nd) {
    bool fresh; /* gm is written whole: a new buffer is stored, not cleared and added to */
    float *gm = cx_in_grad_w(nd, 0, &fresh), *gw = cx_in_grad(nd, 1), *ge = cx_in_grad(nd, 2),
          *ga = cx_in_grad(nd, 3);
    if (!gm && !gw && !ge && !ga) return;
    const cx_tensor *mt = nd->in[0];
    const int B = mt->shape[0], N = mt->shape[1], W = mt->shape[2];
    const float *M = CX_F(mt), *w = CX_F(nd->in[1]), *e = CX_F(nd->in[2]), *a = CX_F(nd->in[3]);
    const float *g = nd->out[0]->grad;
    float *geb = cx_arena_alloc((size_t)W * sizeof(float)), *gab = cx_arena_alloc((size_t)W * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *eb = e + (size_t)b * W, *ab = a + (size_t)b * W;
        for (int j = 0; j < W; j++) geb[j] = gab[j] = 0;
        for (int i = 0; i < N; i++) {
            const size_t r = ((size_t)b * N + i) * W;
            const float wi = w[(size_t)b * N + i];
            const float *gi = g + r, *Mi = M + r;
            float acc = 0;
            for (int j = 0; j < W; j++) {
                acc += gi[j] * (ab[j] - Mi[j] * eb[j]);
                geb[j] -= gi[j] * Mi[j] * wi;
                gab[j] += gi[j] * wi;
            }
            if (gm && fresh)
                for (int j = 0; j < W; j++) gm[r + j] = gi[j] * (1.0f - wi * eb[j]);
            else if (gm)
                for (int j = 0; j < W; j++) gm[r + j] += gi[j] * (1.0f - wi * eb[j]);
            if (gw) gw[(size_t)b * N + i] += acc;
        }
        if (ge)
            for (int j = 0; j < W; j++) ge[(size_t)b * W + j] += geb[j];
        if (ga)
            for (int j = 0; j < W; j++) ga[(size_t)b * W + j] += gab[j];
    }
}

CX_OP_DEF(ntm_write, .backward = ntm_write_backward);

static cx_tensor *write_fused(cx_tensor *mem, cx_tensor *w, cx_tensor *erase, cx_tensor *add) {
    const int B = mem->shape[0], N = mem->shape[1], W = mem->shape[2];
    cx_tensor *out = cx_new_like_shape(mem->shape, 3);
    const float *M = CX_F(mem), *wp = CX_F(w), *e = CX_F(erase), *a = CX_F(add);
    float *o = CX_F(out);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            const size_t r = ((size_t)b * N + i) * W;
            const float wi = wp[(size_t)b * N + i];
            const float *eb = e + (size_t)b * W, *ab = a + (size_t)b * W;
            for (int j = 0; j < W; j++) o[r + j] = M[r + j] * (1.0f - wi * eb[j]) + wi * ab[j];
        }
    cx_tensor *in[4] = {mem, w, erase, add};
    cx_record(&cx_opd_ntm_write, out, in, 4);
    return out;
}

static void need_f32(const char *op, const char *name, const cx_tensor *t) {
    if (!t) cx_fatal("%s: %s must not be NULL", op, name);
    if (t->dtype != CX_F32) cx_fatal("%s: %s must be F32, got %s", op, name, cx_dtype_name(t->dtype));
}

/* mem [B, N, W]: sets *B, *N, *W. */
static void check_mem(const char *op, const cx_tensor *mem, int *B, int *N, int *W) {
    char s1[96];
    need_f32(op, "mem", mem);
    if (mem->ndim != 3 || mem->shape[0] < 1 || mem->shape[1] < 1 || mem->shape[2] < 1)
        cx_fatal("%s: mem has shape %s, expected [B, N, W]", op, cx_shape_str(mem, s1, sizeof s1));
    *B = mem->shape[0];
    *N = mem->shape[1];
    *W = mem->shape[2];
}

/* t [B, C] with C = want_c (want_c < 0: any C >= 1, returned). */
static int check_mat(const char *op, const char *name, const char *dims, const cx_tensor *t, int B, int want_c) {
    char s1[96];
    need_f32(op, name, t);
    bool ok = t->ndim == 2 && t->shape[0] == B && t->shape[1] >= 1 && (want_c < 0 || t->shape[1] == want_c);
    if (!ok) {
        if (want_c < 0)
            cx_fatal("%s: %s has shape %s, expected %s = [%d, *]", op, name, cx_shape_str(t, s1, sizeof s1), dims, B);
        cx_fatal("%s: %s has shape %s, expected %s = [%d, %d]", op, name, cx_shape_str(t, s1, sizeof s1), dims, B,
                 want_c);
    }
    return t->shape[1];
}

/* A per-item scalar [B] or [B, 1] -> [B, 1]. */
static cx_tensor *check_scalar(const char *op, const char *name, cx_tensor *t, int B) {
    char s1[96];
    need_f32(op, name, t);
    if (!((t->ndim == 1 && t->shape[0] == B) || (t->ndim == 2 && t->shape[0] == B && t->shape[1] == 1)))
        cx_fatal("%s: %s has shape %s, expected [B] or [B, 1] with B = %d", op, name, cx_shape_str(t, s1, sizeof s1),
                 B);
    return t->ndim == 2 ? t : cx_reshape(t, CX_SHAPE(B, 1));
}

/* w [B, N] with B, N from its own shape: sets *B, *N. */
static void check_w(const char *op, const char *name, const cx_tensor *w, int *B, int *N) {
    char s1[96];
    need_f32(op, name, w);
    if (w->ndim != 2 || w->shape[0] < 1 || w->shape[1] < 1)
        cx_fatal("%s: %s has shape %s, expected [B, N]", op, name, cx_shape_str(w, s1, sizeof s1));
    *B = w->shape[0];
    *N = w->shape[1];
}

static cx_tensor *content(const char *op, cx_tensor *mem, cx_tensor *key, cx_tensor *beta) {
    int B, N, W;
    check_mem(op, mem, &B, &N, &W);
    check_mat(op, "key", "[B, W]", key, B, W);
    cx_tensor *b2 = check_scalar(op, "beta", beta, B);
    return content_fused(mem, key, b2);
}

static cx_tensor *interp(const char *op, cx_tensor *wc, cx_tensor *wprev, cx_tensor *g) {
    int B, N;
    check_w(op, "wc", wc, &B, &N);
    check_mat(op, "wprev", "[B, N]", wprev, B, N);
    cx_tensor *g2 = check_scalar(op, "g", g, B);
    return cx_add(cx_mul(g2, wc), cx_mul(cx_add_scalar(cx_neg(g2), 1.0f), wprev));
}

static cx_tensor *shift(const char *op, cx_tensor *w, cx_tensor *s) {
    int B, N;
    char s1[96];
    check_w(op, "w", w, &B, &N);
    int K = check_mat(op, "s", "[B, K]", s, B, -1);
    if (K % 2 == 0 || K > N)
        cx_fatal("%s: s has shape %s: K = %d must be odd and at most N = %d", op, cx_shape_str(s, s1, sizeof s1), K,
                 N);
    return cx_circular_conv(w, s, -1);
}

static cx_tensor *sharpen(const char *op, cx_tensor *w, cx_tensor *gamma) {
    int B, N;
    check_w(op, "w", w, &B, &N);
    cx_tensor *g2 = check_scalar(op, "gamma", gamma, B);
    cx_tensor *p = cx_pow_t(w, g2);
    return cx_div(p, cx_sum_axis(p, -1, true));
}

cx_tensor *cx_ntm_content_address(cx_tensor *mem, cx_tensor *key, cx_tensor *beta) {
    return content("ntm_content_address", mem, key, beta);
}

cx_tensor *cx_ntm_interpolate(cx_tensor *wc, cx_tensor *wprev, cx_tensor *g) {
    return interp("ntm_interpolate", wc, wprev, g);
}

cx_tensor *cx_ntm_shift(cx_tensor *w, cx_tensor *s) { return shift("ntm_shift", w, s); }

cx_tensor *cx_ntm_sharpen(cx_tensor *w, cx_tensor *gamma) { return sharpen("ntm_sharpen", w, gamma); }

cx_tensor *cx_ntm_address(cx_tensor *mem, cx_tensor *key, cx_tensor *beta, cx_tensor *g, cx_tensor *wprev,
                          cx_tensor *s, cx_tensor *gamma) {
    const char *op = "ntm_address";
    int B, N, W;
    check_mem(op, mem, &B, &N, &W);
    /* check every argument before computing anything */
    check_mat(op, "key", "[B, W]", key, B, W);
    check_scalar(op, "beta", beta, B);
    check_scalar(op, "g", g, B);
    check_mat(op, "wprev", "[B, N]", wprev, B, N);
    check_scalar(op, "gamma", gamma, B);
    int K = check_mat(op, "s", "[B, K]", s, B, -1);
    char s1[96];
    if (K % 2 == 0 || K > N)
        cx_fatal("%s: s has shape %s: K = %d must be odd and at most N = %d", op, cx_shape_str(s, s1, sizeof s1), K,
                 N);
    cx_tensor *w = content(op, mem, key, beta);
    return locate_fused(w, wprev, check_scalar(op, "g", g, B), s, check_scalar(op, "gamma", gamma, B));
}

cx_tensor *cx_ntm_read(cx_tensor *mem, cx_tensor *w) {
    const char *op = "ntm_read";
    int B, N, W;
    check_mem(op, mem, &B, &N, &W);
    check_mat(op, "w", "[B, N]", w, B, N);
    return cx_reshape(cx_bmm(cx_reshape(w, CX_SHAPE(B, 1, N)), mem), CX_SHAPE(B, W));
}

cx_tensor *cx_ntm_write(cx_tensor *mem, cx_tensor *w, cx_tensor *erase, cx_tensor *add) {
    const char *op = "ntm_write";
    int B, N, W;
    check_mem(op, mem, &B, &N, &W);
    check_mat(op, "w", "[B, N]", w, B, N);
    check_mat(op, "erase", "[B, W]", erase, B, W);
    check_mat(op, "add", "[B, W]", add, B, W);
    return write_fused(mem, w, erase, add);
}
