/* The strongly supervised memory network of cortex/memnn.h (Weston et al.
 * 2014), built from autograd ops. */
#include <stdio.h>

#include "../tensor/internal.h"
#include "cortex/memnn.h"

typedef struct {
    cx_module base;
    char desc[80];
} memnn_root;

static void memnn_describe(const cx_module *m, char *buf, size_t n) {
    snprintf(buf, n, "%s", ((const memnn_root *)m)->desc);
}

static const cx_module_ops memnn_ops = {.kind = "MemNN", .describe = memnn_describe};

cx_memnn *cx_memnn_new(int vocab, int dim, int hops, int memory, bool bigrams, cx_rng *rng) {
    if (vocab < 2 || dim < 1 || hops < 1 || hops > 3 || memory < 1 || memory > 1000 || !rng ||
        (bigrams && vocab > CX_MEMNN_BIGRAM_MAX_VOCAB)) {
        cx_set_error(CX_ERR_ARG, "cx_memnn_new: vocab %d (>= 2; <= %d with bigrams), dim %d (>= 1), hops %d (1..3), "
                     "memory %d (1..1000)%s", vocab, CX_MEMNN_BIGRAM_MAX_VOCAB, dim, hops, memory,
                     rng ? "" : ", NULL rng");
        return NULL;
    }
    const int S = 2 + hops;   /* feature slots: question, memory / answer, one per found fact */
    const int bi = bigrams ? S * vocab * vocab : 0;
    memnn_root *root = cx_xcalloc(1, sizeof *root);
    cx_module_init(&root->base, &memnn_ops);
    snprintf(root->desc, sizeof root->desc, "MemNN(vocab %d, dim %d, hops %d, memory %d%s)", vocab, dim, hops, memory,
             bigrams ? ", bigrams" : "");
    cx_module *O = cx_module_add(&root->base, "O", cx_embedding_new(S * vocab + 3 * memory + 1 + bi, dim, 0));
    cx_module *R = cx_module_add(&root->base, "R", cx_embedding_new(S * vocab + bi, dim, 0));
    cx_tensor *w[2] = {cx_embedding_weight(O), cx_embedding_weight(R)};
    for (int k = 0; k < 2; k++) {
        for (int64_t i = 0; i < w[k]->numel; i++) CX_F(w[k])[i] = 0.1f * cx_rng_normal(rng);
        memset(CX_F(w[k]), 0, (size_t)dim * sizeof(float));   /* padding row */
    }
    cx_memnn *m = cx_xcalloc(1, sizeof *m);
    m->root = &root->base;
    m->vocab = vocab;
    m->dim = dim;
    m->hops = hops;
    m->memory = memory;
    m->bigrams = bigrams;
    return m;
}

void cx_memnn_free(cx_memnn *m) {
    if (!m) return;
    cx_module_free(m->root);
    free(m);
}

static cx_tensor *ids_like(const int *shape, int ndim) {
    cx_tensor *t = cx_empty(CX_I32, shape, ndim);
    memset(t->data, 0, (size_t)t->numel * sizeof(int32_t));
    return t;
}

/* The features of n sentences of L words (0 = padding) in feature slot
 * `slot`: [n, L] unigram rows w + slot V, then (bigrams) [n, L - 1] rows
 * bi_base + slot V^2 + w1 V + w2 of adjacent word pairs; 0 where a word is
 * padding. */
static cx_tensor *feats(const int32_t *w, int n, int L, int V, int slot, bool bigrams, int bi_base) {
    const int Lf = bigrams && L > 1 ? 2 * L - 1 : L;
    cx_tensor *t = ids_like(CX_SHAPE(n, Lf));
    int32_t *o = CX_I32P(t);
    for (int s = 0; s < n; s++) {
        const int32_t *x = w + (size_t)s * L;
        int32_t *y = o + (size_t)s * Lf;
        for (int l = 0; l < L; l++) y[l] = x[l] ? x[l] + slot * V : 0;
        for (int l = 0; Lf > L && l + 1 < L; l++)
            y[L + l] = x[l] && x[l + 1] ? bi_base + slot * V * V + x[l] * V + x[l + 1] : 0;
    }
    return t;
}

/* sum of the rows of W named by the last axis of ids (0 = padding) */
static cx_tensor *bag(cx_tensor *W, const cx_tensor *ids) {
    cx_tensor *e = cx_embedding(W, ids, 0);
    return cx_sum_axis(e, e->ndim - 2, false);
}

static void check_ids(const cx_tensor *t, int V, int ndim, const char *what) {
    if (!t || t->dtype != CX_I32 || t->ndim != ndim)
        cx_fatal("cx_memnn: %s must be an I32 tensor of %d dimensions", what, ndim);
    for (int64_t i = 0; i < t->numel; i++)
        if (CX_I32P(t)[i] < 0 || CX_I32P(t)[i] >= V)
            cx_fatal("cx_memnn: %s holds word id %d outside the vocabulary [0, %d)", what, CX_I32P(t)[i], V);
}

/* Shared forward: with support (training) the loss, else predictions. */
static cx_tensor *run(cx_memnn *m, const cx_tensor *memory, const cx_tensor *query, const int *support,
                      const cx_tensor *answer, float margin, int *out_answer, int *out_facts) {
    const int V = m->vocab, H = m->hops, S = 2 + H, tO = S * V;   /* tO: the first time row of O */
    check_ids(memory, V, 3, "memory");
    check_ids(query, V, 2, "query");
    const int B = (int)memory->shape[0], M = (int)memory->shape[1], L = (int)memory->shape[2];
    if (M != m->memory) cx_fatal("cx_memnn: memory has %d slots, the model %d", M, m->memory);
    if (query->shape[0] != B) cx_fatal("cx_memnn: query has %d rows, memory %d", (int)query->shape[0], B);
    if (answer) {
        check_ids(answer, V, 1, "answer");
        if (answer->shape[0] != B) cx_fatal("cx_memnn: answer has %d entries, memory %d", (int)answer->shape[0], B);
    }
    const int32_t *mem = CX_I32P(memory);
    /* valid slots and ages (how many valid slots come after) */
    cx_tensor *pad = cx_zeros(CX_SHAPE(B, M));
    cx_tensor *age = ids_like(CX_SHAPE(B, M));
    int *valid = cx_arena_alloc((size_t)B * M * sizeof(int));   /* step memory: safe under cx_try */
    for (int b = 0; b < B; b++) {
        int after = 0;
        for (int i = M - 1; i >= 0; i--) {
            bool v = false;
            for (int l = 0; l < L; l++) v |= mem[((size_t)b * M + i) * L + l] != 0;
            valid[b * M + i] = v;
            CX_F(pad)[b * M + i] = !v;
            CX_I32P(age)[b * M + i] = tO + (v ? after : 0);
            after += v;
        }
    }
    if (support)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++) {
                int s = support[b * H + h];
                if (s < 0 || s >= M || !valid[b * M + s]) {
                    cx_fatal("cx_memnn_loss: question %d's supporting fact %d (hop %d) is %s", b, s, h + 1,
                             s < 0 || s >= M ? "outside the memory" : "an empty slot");
                }
            }
    cx_tensor *Ow = cx_embedding_weight(cx_module_find(m->root, "O"));
    cx_tensor *Rw = cx_embedding_weight(cx_module_find(m->root, "R"));
    /* memory words in the memory slots of the feature space */
    const bool bg = m->bigrams;
    const int biO = tO + 3 * M + 1, biR = S * V, Lq = (int)query->shape[1];
    cx_tensor *memV = feats(mem, B * M, L, V, 1, bg, biO);
    memV = cx_reshape(memV, CX_SHAPE(B, M, (int)memV->shape[1]));
    cx_tensor *cand0 = cx_add(bag(Ow, memV), cx_embedding(Ow, age, -1));   /* [B, M, d] */
    cx_tensor *in = bag(Ow, feats(CX_I32P(query), B, Lq, V, 0, bg, biO));
    cx_tensor *inR = bag(Rw, feats(CX_I32P(query), B, Lq, V, 0, bg, biR));
    cx_tensor *loss = NULL;
    int *sel = cx_arena_alloc((size_t)B * sizeof(int));
    for (int h = 0; h < H; h++) {
        cx_tensor *cand = cand0;
        if (h > 0) {
            cx_tensor *rel = ids_like(CX_SHAPE(B, M));
            for (int b = 0; b < B; b++)
                for (int i = 0; i < M; i++) CX_I32P(rel)[b * M + i] = tO + M + M + (i - sel[b]);
            cand = cx_add(cand, cx_embedding(Ow, rel, -1));
        }
        cx_tensor *s = cx_reshape(cx_bmm(cand, cx_reshape(in, CX_SHAPE(B, m->dim, 1))), CX_SHAPE(B, M));
        s = cx_masked_fill(s, pad, -1e4f);
        if (support) {
            cx_tensor *t = ids_like(CX_SHAPE(B));
            for (int b = 0; b < B; b++) CX_I32P(t)[b] = sel[b] = support[b * H + h];
            cx_tensor *l = cx_mul_scalar(cx_multi_margin_loss(s, t, margin, CX_REDUCE_MEAN), (float)M);
            loss = loss ? cx_add(loss, l) : l;
        } else {
            for (int b = 0; b < B; b++) {
                int best = -1;
                for (int i = 0; i < M; i++)
                    if (valid[b * M + i] && (best < 0 || CX_F(s)[b * M + i] > CX_F(s)[b * M + best])) best = i;
                sel[b] = best < 0 ? 0 : best;
                if (out_facts) out_facts[b * H + h] = best;
            }
        }
        /* the found fact joins the input of the next hop and of R */
        int32_t *fw = cx_arena_alloc((size_t)B * L * sizeof(int32_t));
        for (int b = 0; b < B; b++) memcpy(fw + (size_t)b * L, mem + ((size_t)b * M + sel[b]) * L, L * sizeof(int32_t));
        in = cx_add(in, bag(Ow, feats(fw, B, L, V, 2 + h, bg, biO)));
        inR = cx_add(inR, bag(Rw, feats(fw, B, L, V, 2 + h, bg, biR)));
    }
    cx_tensor *nil = cx_zeros(CX_SHAPE(1, V));
    CX_F(nil)[0] = 1;
    cx_tensor *logits = cx_masked_fill(cx_matmul_t(inR, cx_slice(Rw, 0, V, 2 * V, 1), false, true), nil, -1e4f);
    if (support) loss = cx_add(loss, cx_mul_scalar(cx_multi_margin_loss(logits, answer, margin, CX_REDUCE_MEAN), (float)V));
    else {
        cx_tensor *am = cx_argmax(logits, 1);
        for (int b = 0; b < B; b++) out_answer[b] = CX_I32P(am)[b];
    }
    return loss;
}

cx_tensor *cx_memnn_loss(cx_memnn *m, const cx_tensor *memory, const cx_tensor *query, const int *support,
                         const cx_tensor *answer, float margin) {
    if (!m || !support || !answer || !(margin > 0)) cx_fatal("cx_memnn_loss: NULL argument or margin <= 0");
    return run(m, memory, query, support, answer, margin, NULL, NULL);
}

void cx_memnn_predict(cx_memnn *m, const cx_tensor *memory, const cx_tensor *query, int *answer, int *facts) {
    if (!m || !answer) cx_fatal("cx_memnn_predict: NULL argument");
    cx_no_grad_begin();
    run(m, memory, query, NULL, NULL, 1, answer, facts);
    cx_no_grad_end();
}
