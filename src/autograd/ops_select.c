/* Selection by a mask or a condition: masked_fill and where, broadcasting
 * their operands together like torch.Tensor.masked_fill and torch.where. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

/* Broadcast plan of up to three operands: output shape and, per operand,
 * element strides (0 on broadcast dimensions). */
typedef struct {
    int ndim, n;
    int shape[CX_MAX_DIMS];
    int64_t numel;
    int64_t st[3][CX_MAX_DIMS];
} bplan3;

static void plan3(const char *op, const cx_tensor *const *t, int n, bplan3 *p) {
    memset(p, 0, sizeof *p);
    p->n = n;
    for (int k = 0; k < n; k++) p->ndim = t[k]->ndim > p->ndim ? t[k]->ndim : p->ndim;
    int64_t stride[3] = {1, 1, 1};
    p->numel = 1;
    for (int i = p->ndim - 1; i >= 0; i--) {
        int dim = 1;
        for (int k = 0; k < n; k++) {
            int ik = i - (p->ndim - t[k]->ndim), dk = ik >= 0 ? t[k]->shape[ik] : 1;
            if (dk == 1) continue;
            if (dim != 1 && dim != dk) {
                char s[3][96];
                for (int j = 0; j < n; j++) cx_shape_str(t[j], s[j], sizeof s[j]);
                if (n == 2)
                    cx_fatal("%s: shapes %s and %s cannot be broadcast (dimension %d: %d vs %d)", op, s[0], s[1],
                             i, dim, dk);
                cx_fatal("%s: shapes %s, %s and %s cannot be broadcast (dimension %d: %d vs %d)", op, s[0], s[1],
                         s[2], i, dim, dk);
            }
            dim = dk;
        }
        p->shape[i] = dim;
        for (int k = 0; k < n; k++) {
            int ik = i - (p->ndim - t[k]->ndim), dk = ik >= 0 ? t[k]->shape[ik] : 1;
            p->st[k][i] = dk == 1 ? 0 : stride[k];
            stride[k] *= dk;
        }
        p->numel *= dim;
    }
}

/* Visit every output element oi with the operands' element offsets o[k]. */
#define BC3_LOOP(p, ...)                                                            \
    do {                                                                            \
        int idx_[CX_MAX_DIMS] = {0};                                                \
        int64_t o[3] = {0, 0, 0};                                                   \
        for (int64_t oi = 0; oi < (p)->numel; oi++) {                               \
            __VA_ARGS__;                                                            \
            for (int d_ = (p)->ndim - 1; d_ >= 0; d_--) {                           \
                for (int k_ = 0; k_ < (p)->n; k_++) o[k_] += (p)->st[k_][d_];       \
                if (++idx_[d_] < (p)->shape[d_]) break;                             \
                for (int k_ = 0; k_ < (p)->n; k_++) o[k_] -= (p)->st[k_][d_] * (p)->shape[d_]; \
                idx_[d_] = 0;                                                       \
            }                                                                       \
        }                                                                           \
    } while (0)

/* A mask or condition of any dtype as bytes: 1 where the element is non-zero
 * (NaN counts as non-zero, as bool(NaN) in PyTorch). */
static const unsigned char *truth_bytes(const char *op, const char *what, const cx_tensor *t) {
    if (!t) cx_fatal("%s: %s is NULL", op, what);
    unsigned char *m = cx_arena_alloc((size_t)(t->numel ? t->numel : 1));
    switch (t->dtype) {
    case CX_F32: for (int64_t i = 0; i < t->numel; i++) m[i] = CX_F(t)[i] != 0.0f; break;
    case CX_I32: for (int64_t i = 0; i < t->numel; i++) m[i] = CX_I32P(t)[i] != 0; break;
    case CX_I64: for (int64_t i = 0; i < t->numel; i++) m[i] = CX_I64P(t)[i] != 0; break;
    default: cx_fatal("%s: %s has an unsupported dtype %s", op, what, cx_dtype_name(t->dtype));
    }
    return m;
}

typedef struct {
    bplan3 p;
    const unsigned char *m;
} select_saved;

/* ---- masked_fill: out = mask ? value : a */
static void masked_fill_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const select_saved *s = nd->saved;
    const float *g = nd->out[0]->grad;
    const unsigned char *m = s->m;
    BC3_LOOP(&s->p, if (!m[o[1]]) ga[o[0]] += g[oi]);
}

CX_OP_DEF(masked_fill, .backward = masked_fill_backward, .inf_ok = true);

cx_tensor *cx_masked_fill(cx_tensor *a, const cx_tensor *mask, float value) {
    cx_need_f32_arg("masked_fill", "a", a);
    const unsigned char *m = truth_bytes("masked_fill", "mask", mask);
    select_saved s;
    const cx_tensor *ops[2] = {a, mask};
    plan3("masked_fill", ops, 2, &s.p);
    s.m = m;
    cx_tensor *out = cx_new_like_shape(s.p.shape, s.p.ndim);
    const float *x = CX_F(a);
    float *y = CX_F(out);
    BC3_LOOP(&s.p, y[oi] = m[o[1]] ? value : x[o[0]]);
    cx_record_saved(&cx_opd_masked_fill, out, &a, 1, &s, sizeof s);
    return out;
}

/* ---- where: out = cond ? a : b */
static void where_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0), *gb = cx_in_grad(nd, 1);
    if (!ga && !gb) return;
    const select_saved *s = nd->saved;
    const float *g = nd->out[0]->grad;
    const unsigned char *c = s->m;
    /* plan operands: 0 cond, 1 a, 2 b */
    BC3_LOOP(&s->p, if (c[o[0]]) { if (ga) ga[o[1]] += g[oi]; } else if (gb) gb[o[2]] += g[oi]);
}

CX_OP_DEF(where, .backward = where_backward);

cx_tensor *cx_where(const cx_tensor *cond, cx_tensor *a, cx_tensor *b) {
    cx_need_f32_arg("where", "a", a);
    cx_need_f32_arg("where", "b", b);
    const unsigned char *c = truth_bytes("where", "cond", cond);
    select_saved s;
    const cx_tensor *ops[3] = {cond, a, b};
    plan3("where", ops, 3, &s.p);
    s.m = c;
    cx_tensor *out = cx_new_like_shape(s.p.shape, s.p.ndim);
    const float *x = CX_F(a), *z = CX_F(b);
    float *y = CX_F(out);
    BC3_LOOP(&s.p, y[oi] = c[o[0]] ? x[o[1]] : z[o[2]]);
    cx_tensor *in[2] = {a, b};
    cx_record_saved(&cx_opd_where, out, in, 2, &s, sizeof s);
    return out;
}
