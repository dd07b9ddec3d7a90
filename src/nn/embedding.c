/* Embedding lookup (op "embedding") and the Embedding module. */
#include "../autograd/graph.h"
#include <stdio.h>

/* saved: int32 copy of the indices; i[0] = padding_idx (-1: none) */
static void embedding_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gw = cx_in_grad(nd, 0);
    if (!gw) return;
    const cx_tensor *w = nd->in[0];
    int E = w->shape[1];
    int pad = nd->i[0];
    if (E == 0) return;
    const int32_t *idx = nd->saved;
    int64_t n = out->numel / E;
    const float *g = out->grad;
    for (int64_t j = 0; j < n; j++) {
        int32_t r = idx[j];
        if (r == pad) continue;
        float *dst = gw + (int64_t)r * E;
        const float *src = g + j * E;
        for (int e = 0; e < E; e++) dst[e] += src[e];
    }
}

CX_OP_DEF(embedding, .backward = embedding_backward);

cx_tensor *cx_embedding(cx_tensor *weight, const cx_tensor *indices, int padding_idx) {
    char s1[96];
    cx_need_f32("embedding", weight);
    if (weight->ndim != 2)
        cx_fatal("embedding: weight must be 2-D [V, E], got %s", cx_shape_str(weight, s1, sizeof s1));
    if (!indices || (indices->dtype != CX_I32 && indices->dtype != CX_I64))
        cx_fatal("embedding: indices must be an I32 or I64 tensor");
    int V = weight->shape[0], E = weight->shape[1];
    if (padding_idx >= V)
        cx_fatal("embedding: padding_idx %d out of range [0, %d)", padding_idx, V);
    if (padding_idx < 0) padding_idx = -1;
    if (indices->ndim + 1 > CX_MAX_DIMS)
        cx_fatal("embedding: indices have %d dims, at most %d allowed", indices->ndim, CX_MAX_DIMS - 1);
    int64_t n = indices->numel;
    int32_t *idx = cx_arena_alloc((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int64_t j = 0; j < n; j++) {
        int64_t v = indices->dtype == CX_I64 ? CX_I64P(indices)[j] : CX_I32P(indices)[j];
        if (v < 0 || v >= V)
            cx_fatal("embedding: index %lld at position %lld out of range [0, %d)", (long long)v,
                     (long long)j, V);
        idx[j] = (int32_t)v;
    }
    int shape[CX_MAX_DIMS], nd = 0;
    if (indices->ndim == 0) shape[nd++] = 1;
    for (int d = 0; d < indices->ndim; d++) shape[nd++] = indices->shape[d];
    shape[nd++] = E;
    cx_tensor *out = cx_new_like_shape(shape, nd);
    const float *wd = CX_F(weight);
    float *o = CX_F(out);
    for (int64_t j = 0; j < n; j++) memcpy(o + j * E, wd + (int64_t)idx[j] * E, (size_t)E * sizeof(float));
    cx_tensor *in[1] = {weight};
    cx_node *node = cx_record_saved(&cx_opd_embedding, out, in, 1, idx, 0);
    if (node) node->i[0] = padding_idx;
    return out;
}

/* ---- module */
typedef struct {
    cx_module base;
    int V, E, pad;
    cx_tensor *w;
} embedding_m;

static cx_tensor *emb_fwd(cx_module *m, cx_tensor *x) {
    embedding_m *e = (embedding_m *)m;
    return cx_embedding(e->w, x, e->pad);
}
static void emb_describe(const cx_module *m, char *buf, size_t n) {
    const embedding_m *e = (const embedding_m *)m;
    if (e->pad >= 0) snprintf(buf, n, "Embedding(%d, %d, padding_idx=%d)", e->V, e->E, e->pad);
    else snprintf(buf, n, "Embedding(%d, %d)", e->V, e->E);
}
static const cx_module_ops emb_ops = {.kind = "Embedding", .forward = emb_fwd,
                                      .describe = emb_describe, .split_safe = true};

cx_module *cx_embedding_new(int V, int E, int padding_idx) {
    if (V <= 0 || E <= 0) cx_fatal("Embedding: sizes must be positive, got %d x %d", V, E);
    if (padding_idx >= V) cx_fatal("Embedding: padding_idx %d out of range [0, %d)", padding_idx, V);
    (void)cx_shape_numel("Embedding", (const int[]){V, E}, 2); /* before anything is allocated */
    embedding_m *e = cx_xcalloc(1, sizeof *e);
    cx_module_init(&e->base, &emb_ops);
    e->V = V;
    e->E = E;
    e->pad = padding_idx < 0 ? -1 : padding_idx;
    e->w = cx_param_new("weight", (int[]){V, E}, 2);
    cx_fill_normal(e->w, 0.0f, 1.0f);
    if (e->pad >= 0) memset(CX_F(e->w) + (int64_t)e->pad * E, 0, (size_t)E * sizeof(float));
    cx_module_add_param(&e->base, "weight", &e->w);
    return &e->base;
}

static embedding_m *as_emb(const cx_module *m) {
    if (!m || m->ops != &emb_ops) cx_fatal("expected an Embedding module, got %s", m ? m->ops->kind : "NULL");
    return (embedding_m *)m;
}
cx_tensor *cx_embedding_weight(cx_module *m) { return as_emb(m)->w; }
int cx_embedding_padding_idx(const cx_module *m) { return as_emb(m)->pad; }
