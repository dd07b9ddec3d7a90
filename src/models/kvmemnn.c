/* The key-value memory network of cortex/kvmem.h (Miller et al. 2016), built
 * from autograd ops: embedding bags, batched dot products, a masked softmax
 * per hop, R_j after each hop, and a final product with B. */
#include <stdio.h>

#include "../tensor/internal.h"
#include "cortex/kvmem.h"

static cx_tensor *zeros_dt(cx_dtype dt, const int *shape, int ndim) {
    cx_tensor *t = cx_empty(dt, shape, ndim);
    memset(t->data, 0, (size_t)t->numel * 4);
    return t;
}

typedef struct {
    cx_module base;
    char kind_desc[64];
} kv_root;

static void kv_describe(const cx_module *m, char *buf, size_t n) {
    snprintf(buf, n, "%s", ((const kv_root *)m)->kind_desc);
}

static const cx_module_ops kv_ops = {.kind = "KVMemNN", .describe = kv_describe};

static void fill_normal(cx_tensor *t, float std, cx_rng *r) {
    for (int64_t i = 0; i < t->numel; i++) CX_F(t)[i] = std * cx_rng_normal(r);
}

cx_kvmemnn *cx_kvmemnn_new(int vocab, int dim, int hops, bool tie_answer, cx_rng *rng) {
    if (vocab < 2 || dim < 1 || hops < 1 || hops > 8 || !rng) {
        cx_set_error(CX_ERR_ARG, "cx_kvmemnn_new: vocab %d (>= 2), dim %d (>= 1), hops %d (1..8)%s", vocab, dim,
                     hops, rng ? "" : ", NULL rng");
        return NULL;
    }
    kv_root *root = cx_xcalloc(1, sizeof *root);
    cx_module_init(&root->base, &kv_ops);
    snprintf(root->kind_desc, sizeof root->kind_desc, "KVMemNN(vocab %d, dim %d, hops %d%s)", vocab, dim, hops,
             tie_answer ? ", B = A" : "");
    cx_module *A = cx_module_add(&root->base, "A", cx_embedding_new(vocab, dim, 0));
    cx_module *R = cx_module_add(&root->base, "R", cx_sequential_new());
    for (int j = 0; j < hops; j++) cx_sequential_add(R, NULL, cx_linear_new(dim, dim, false));
    cx_module *B = cx_module_add(&root->base, "B", cx_embedding_new(vocab, dim, -1));
    fill_normal(cx_embedding_weight(A), 0.1f, rng);
    fill_normal(cx_embedding_weight(B), 0.1f, rng);
    for (int k = 0; k < dim; k++) CX_F(cx_embedding_weight(A))[k] = 0;   /* padding row */
    if (tie_answer) cx_module_tie(&root->base, "B.weight", cx_embedding_weight(A));
    for (int j = 0; j < hops; j++) {
        cx_tensor *w = cx_linear_weight(cx_sequential_get(R, j));
        fill_normal(w, 0.01f, rng);
        for (int k = 0; k < dim; k++) CX_F(w)[k * dim + k] += 1.0f;
    }
    cx_kvmemnn *m = cx_xcalloc(1, sizeof *m);
    m->root = &root->base;
    m->vocab = vocab;
    m->dim = dim;
    m->hops = hops;
    m->tied = tie_answer;
    return m;
}

void cx_kvmemnn_free(cx_kvmemnn *m) {
    if (!m) return;
    cx_module_free(m->root);
    free(m);
}

static void check_ids(const cx_tensor *t, int V, const char *what) {
    if (!t || t->dtype != CX_I32) cx_fatal("cx_kvmemnn_forward: %s must be an I32 tensor of word ids", what);
    for (int64_t i = 0; i < t->numel; i++)
        if (CX_I32P(t)[i] < 0 || CX_I32P(t)[i] >= V)
            cx_fatal("cx_kvmemnn_forward: %s holds word id %d outside the vocabulary [0, %d)", what,
                     CX_I32P(t)[i], V);
}

/* sum over the last index axis of the embeddings: ids [..., L] -> [..., d] */
static cx_tensor *bag(cx_tensor *W, const cx_tensor *ids) {
    cx_tensor *e = cx_embedding(W, ids, 0);
    return cx_sum_axis(e, e->ndim - 2, false);
}

cx_tensor *cx_kvmemnn_forward(cx_kvmemnn *m, const cx_tensor *query, const cx_tensor *keys,
                              const cx_tensor *values, const cx_tensor *mask, cx_tensor **attn) {
    if (attn) *attn = NULL;
    if (!m) cx_fatal("cx_kvmemnn_forward: NULL model");
    check_ids(query, m->vocab, "query");
    check_ids(keys, m->vocab, "keys");
    check_ids(values, m->vocab, "values");
    if (query->ndim != 2) cx_fatal("cx_kvmemnn_forward: query must be [B, L] word ids, got %d dimensions", query->ndim);
    const int B = (int)query->shape[0];
    if (keys->ndim != 3 || values->ndim != 3 || keys->shape[0] != B || values->shape[0] != B ||
        keys->shape[1] != values->shape[1])
        cx_fatal("cx_kvmemnn_forward: keys and values must be [B, M, L] with the query's B = %d and the same M", B);
    const int M = (int)keys->shape[1], d = m->dim;
    if (mask && (mask->dtype != CX_F32 || mask->ndim != 2 || mask->shape[0] != B || mask->shape[1] != M))
        cx_fatal("cx_kvmemnn_forward: mask must be F32 [B, M] = [%d, %d]", B, M);
    cx_tensor *A = cx_embedding_weight(cx_module_find(m->root, "A"));
    cx_tensor *Bw = cx_embedding_weight(cx_module_find(m->root, "B"));
    cx_module *R = cx_module_find(m->root, "R");
    cx_tensor *q = bag(A, query);                 /* [B, d] */
    cx_tensor *K = bag(A, keys);                  /* [B, M, d] */
    cx_tensor *V = bag(A, values);                /* [B, M, d] */
    cx_tensor *pad = NULL, *real = NULL;
    if (mask) {
        pad = zeros_dt(CX_F32, CX_SHAPE(B, M));
        for (int64_t i = 0; i < (int64_t)B * M; i++) CX_F(pad)[i] = CX_F(mask)[i] == 0.0f;
        real = cx_detach((cx_tensor *)mask);
    }
    cx_tensor *att = attn ? zeros_dt(CX_F32, CX_SHAPE(m->hops, B, M)) : NULL;
    for (int j = 0; j < m->hops; j++) {
        cx_tensor *s = cx_reshape(cx_bmm(K, cx_reshape(q, CX_SHAPE(B, d, 1))), CX_SHAPE(B, M));
        if (pad) s = cx_masked_fill(s, pad, -1e30f);
        cx_tensor *p = cx_softmax(s, 1);
        if (real) p = cx_mul(p, real);            /* a row with no real memory reads nothing */
        if (att) memcpy(CX_F(att) + (size_t)j * B * M, CX_F(p), (size_t)B * M * sizeof(float));
        cx_tensor *o = cx_reshape(cx_bmm(cx_reshape(p, CX_SHAPE(B, 1, M)), V), CX_SHAPE(B, d));
        q = cx_module_forward(cx_sequential_get(R, j), cx_add(q, o));
    }
    if (attn) *attn = att;
    /* scores of every word; "<nil>" (id 0) can never be the answer: its
     * logit is masked (no gradient reaches A's padding row from here) */
    cx_tensor *nil = zeros_dt(CX_F32, CX_SHAPE(1, m->vocab));
    CX_F(nil)[0] = 1;
    return cx_masked_fill(cx_linear(q, Bw, NULL), nil, -1e30f);   /* [B, V] */
}

cx_tensor *cx_kvmemnn_loss(cx_tensor *logits, const cx_tensor *target) {
    if (!logits || !target || logits->ndim != 2 || target->dtype != CX_F32 || target->ndim != 2 ||
        target->shape[0] != logits->shape[0] || target->shape[1] != logits->shape[1])
        cx_fatal("cx_kvmemnn_loss: target must be F32 with the logits' shape [B, V]");
    cx_tensor *lp = cx_log_softmax(logits, 1);
    return cx_mul_scalar(cx_sum(cx_mul(lp, cx_detach((cx_tensor *)target))), -1.0f / (float)logits->shape[0]);
}
