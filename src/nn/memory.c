/* NTM memory operations, compositions of autograd ops. Formulas, shapes and
 * numerics: include/cortex/memory.h. */
#include "cortex/memory.h"
#include "cortex/core.h"

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
    cx_tensor *sim = cx_cosine_similarity(cx_reshape(key, CX_SHAPE(B, 1, W)), mem, -1, CX_NTM_COS_EPS);
    return cx_softmax(cx_mul(sim, b2), -1);
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
    w = interp(op, w, wprev, g);
    w = shift(op, w, s);
    return sharpen(op, w, gamma);
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
    cx_tensor *kept = cx_sub(mem, cx_mul(mem, cx_outer(w, erase)));
    return cx_add(kept, cx_outer(w, add));
}
