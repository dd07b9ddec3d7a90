/* The end-to-end memory network (MemN2N): a fused forward and backward over
 * a batch (no graph: the model's own gradient, checked against PyTorch in
 * tests/models/test_memn2n.c), training, files. See include/cortex/memn2n.h. */
#include <cortex.h>
#include <cortex/memn2n.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tensor/internal.h"

cx_memn2n_config cx_memn2n_defaults(void) {
    cx_memn2n_config c = {0, 20, 3, 50, true, true, 0.1f, CX_MEMN2N_PE_CODE};
    return c;
}

cx_memn2n_train_opts cx_memn2n_train_defaults(void) {
    cx_memn2n_train_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = 100;
    o.batch = 32;
    o.lr = 0.01;
    o.anneal_every = 25;
    o.max_grad_norm = 40.0f;
    o.linear_start = false;
    o.ls_lr_factor = 0.5;
    o.ls_epochs = 0;
    o.random_noise = 0.0f;
    o.val_fraction = 0.1f;
    o.seed = 1;
    return o;
}

static cx_status check_config(const cx_memn2n_config *c) {
    if (!c) return cx_set_error(CX_ERR_ARG, "memn2n: NULL config");
    if (c->vocab < 2 || c->vocab > (1 << 24))
        return cx_set_error(CX_ERR_ARG, "memn2n: vocabulary size %d (expected 2 .. 16777216, with <nil>)", c->vocab);
    if (c->dim < 1 || c->dim > 4096) return cx_set_error(CX_ERR_ARG, "memn2n: embedding size %d (expected 1 .. 4096)", c->dim);
    if (c->hops < 1 || c->hops > CX_MEMN2N_MAX_HOPS)
        return cx_set_error(CX_ERR_ARG, "memn2n: %d hops (expected 1 .. %d)", c->hops, CX_MEMN2N_MAX_HOPS);
    if (c->memory < 1 || c->memory > 100000)
        return cx_set_error(CX_ERR_ARG, "memn2n: memory of %d slots (expected 1 .. 100000)", c->memory);
    if (!(c->init_std >= 0.0f) || !isfinite(c->init_std))
        return cx_set_error(CX_ERR_ARG, "memn2n: init_std %g (expected a finite value >= 0)", (double)c->init_std);
    if (c->pe_form != CX_MEMN2N_PE_CODE && c->pe_form != CX_MEMN2N_PE_PAPER)
        return cx_set_error(CX_ERR_ARG, "memn2n: pe_form %d (expected CX_MEMN2N_PE_CODE or CX_MEMN2N_PE_PAPER)",
                            (int)c->pe_form);
    return CX_OK;
}

static cx_memn2n *alloc_model(const cx_memn2n_config *cfg) {
    cx_memn2n *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *cfg;
    cx_params_init(&m->params);
    char name[32];
    for (int k = 0; k <= cfg->hops; k++) {
        snprintf(name, sizeof name, "A.%d.weight", k);
        m->A[k] = cx_param_new(name, CX_SHAPE(cfg->vocab, cfg->dim));
        cx_params_add(&m->params, m->A[k]);
    }
    if (cfg->temporal)
        for (int k = 0; k <= cfg->hops; k++) {
            snprintf(name, sizeof name, "T.%d.weight", k);
            m->T[k] = cx_param_new(name, CX_SHAPE(cfg->memory, cfg->dim));
            cx_params_add(&m->params, m->T[k]);
        }
    return m;
}

cx_status cx_memn2n_new(const cx_memn2n_config *cfg, uint64_t seed, cx_memn2n **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "memn2n_new: NULL output");
    *out = NULL;
    cx_status st = check_config(cfg);
    if (st) return st;
    cx_memn2n *m = alloc_model(cfg);
    if (!m) return cx_set_error(CX_ERR_NOMEM, "memn2n_new: out of memory");
    cx_rng r = cx_rng_new(seed);
    for (int i = 0; i < m->params.n; i++) {
        cx_tensor *t = m->params.t[i];
        float *w = CX_F(t);
        for (int64_t j = 0; j < t->numel; j++) w[j] = cfg->init_std * cx_rng_normal(&r);
    }
    for (int k = 0; k <= cfg->hops; k++) memset(CX_F(m->A[k]), 0, sizeof(float) * (size_t)cfg->dim);
    *out = m;
    return CX_OK;
}

void cx_memn2n_free(cx_memn2n *m) {
    if (!m) return;
    for (int i = 0; i < m->params.n; i++) cx_tensor_free(m->params.t[i]);
    cx_params_free(&m->params);
    free(m);
}

/* ================================================================ inputs */
static const char *shape_of(const cx_tensor *t, char *buf, size_t n) { return cx_shape_str(t, buf, n); }

static cx_status check_inputs(const cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots,
                              const cx_tensor *query, const cx_tensor *answer, const char *fn) {
    char b1[64], b2[64];
    if (!m) return cx_set_error(CX_ERR_ARG, "%s: NULL model", fn);
    if (!memory || !query) return cx_set_error(CX_ERR_ARG, "%s: NULL %s", fn, memory ? "query" : "memory");
    if (memory->dtype != CX_I32 || query->dtype != CX_I32 || (slots && slots->dtype != CX_I32) ||
        (answer && answer->dtype != CX_I32))
        return cx_set_error(CX_ERR_ARG, "%s: memory, slots, query and answer must hold I32 word ids", fn);
    if (memory->ndim != 3 || memory->shape[0] < 1 || memory->shape[1] < 1 || memory->shape[2] < 1)
        return cx_set_error(CX_ERR_SHAPE, "%s: memory has shape %s; expected [N, slots, words] (all >= 1)", fn,
                            shape_of(memory, b1, sizeof b1));
    int N = memory->shape[0], S = memory->shape[1], L = memory->shape[2];
    if (S > m->cfg.memory)
        return cx_set_error(CX_ERR_SHAPE,
                            "%s: the stories hold %d sentences but the model's memory holds %d: keep the most "
                            "recent %d (cx_babi_tensor_opts.memory)",
                            fn, S, m->cfg.memory, m->cfg.memory);
    if (query->ndim != 2 || query->shape[0] != N || query->shape[1] < 1)
        return cx_set_error(CX_ERR_SHAPE, "%s: query has shape %s; expected [%d, words] (one row per question of memory %s)",
                            fn, shape_of(query, b1, sizeof b1), N, shape_of(memory, b2, sizeof b2));
    if (answer && (answer->ndim != 1 || answer->shape[0] != N))
        return cx_set_error(CX_ERR_SHAPE, "%s: answer has shape %s; expected [%d]", fn, shape_of(answer, b1, sizeof b1), N);
    if (slots && (slots->ndim != 1 || slots->shape[0] != N))
        return cx_set_error(CX_ERR_SHAPE, "%s: slots has shape %s; expected [%d]", fn, shape_of(slots, b1, sizeof b1), N);
    int V = m->cfg.vocab;
    const int32_t *x = CX_I32P(memory);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < S; i++)
            for (int j = 0; j < L; j++) {
                int32_t w = x[((int64_t)n * S + i) * L + j];
                if (w < 0 || w >= V)
                    return cx_set_error(CX_ERR_ARG,
                                        "%s: question %d, memory slot %d, word %d: id %d is outside the "
                                        "vocabulary [0, %d)",
                                        fn, n, i, j, (int)w, V);
            }
    const int32_t *q = CX_I32P(query);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < query->shape[1]; j++) {
            int32_t w = q[(int64_t)n * query->shape[1] + j];
            if (w < 0 || w >= V)
                return cx_set_error(CX_ERR_ARG, "%s: question %d, query word %d: id %d is outside the vocabulary [0, %d)",
                                    fn, n, j, (int)w, V);
        }
    if (answer)
        for (int n = 0; n < N; n++) {
            int32_t a = CX_I32P(answer)[n];
            if (a < 0 || a >= V)
                return cx_set_error(CX_ERR_ARG, "%s: question %d: answer id %d is outside the vocabulary [0, %d)", fn, n,
                                    (int)a, V);
        }
    if (slots)
        for (int n = 0; n < N; n++) {
            int32_t s = CX_I32P(slots)[n];
            if (s < 0 || s > S)
                return cx_set_error(CX_ERR_ARG, "%s: question %d uses %d memory slots; expected 0 .. %d", fn, n, (int)s, S);
        }
    return CX_OK;
}

/* ================================================================ kernels */
/* A batch of already checked inputs (raw arrays). */
typedef struct {
    int N, S, L, Lq;
    const int32_t *mem;     /* [N, S, L] */
    const int32_t *slots;   /* [N] or NULL */
    const int32_t *query;   /* [N, Lq] */
    const int32_t *answer;  /* [N] or NULL */
} batch;

/* Scratch of one forward (kept for the backward). */
typedef struct {
    int cap_N, cap_S, cap_V, cap_Lmax, d, K;
    int *ns;        /* [N] slots used */
    float *pe;      /* [Lmax + 1][Lmax][d]: pe[J][j][k] */
    int pe_L;       /* the table's Lmax (0: not built) */
    int pe_form;    /* the table's cx_memn2n_pe_form */
    float *R;       /* [N][K+1][S][d] */
    float *U;       /* [N][K+1][d] */
    float *P;       /* [N][K][S] */
    float *logits;  /* [N][V] */
    float *G;       /* [N][V] gradient of the logits */
    float *gU;      /* [N][d] */
    float *gR;      /* [K+1][S][d] */
    float *gs;      /* [S] */
} scratch;

static void scratch_free(scratch *s) {
    free(s->ns); free(s->pe); free(s->R); free(s->U); free(s->P); free(s->logits); free(s->G); free(s->gU); free(s->gR); free(s->gs);
    memset(s, 0, sizeof *s);
}

static bool scratch_fit(scratch *s, const cx_memn2n *m, const batch *b) {
    int d = m->cfg.dim, K = m->cfg.hops, V = m->cfg.vocab;
    int Lmax = b->L > b->Lq ? b->L : b->Lq;
    if (s->d != d || s->K != K || b->N > s->cap_N || b->S > s->cap_S || V > s->cap_V ||
        (m->cfg.pe && (Lmax > s->pe_L || (int)m->cfg.pe_form != s->pe_form))) {
        int N = b->N > s->cap_N ? b->N : s->cap_N, S = b->S > s->cap_S ? b->S : s->cap_S;
        int PL = Lmax > s->pe_L ? Lmax : s->pe_L;
        scratch_free(s);
        s->cap_N = N; s->cap_S = S; s->cap_V = V; s->d = d; s->K = K; s->pe_L = PL; s->pe_form = (int)m->cfg.pe_form;
        size_t nd = (size_t)d;
        s->ns = malloc(sizeof(int) * (size_t)N);
        s->R = malloc(sizeof(float) * (size_t)N * (size_t)(K + 1) * (size_t)S * nd);
        s->U = malloc(sizeof(float) * (size_t)N * (size_t)(K + 1) * nd);
        s->P = malloc(sizeof(float) * (size_t)N * (size_t)K * (size_t)S);
        s->logits = malloc(sizeof(float) * (size_t)N * (size_t)V);
        s->G = malloc(sizeof(float) * (size_t)N * (size_t)V);
        s->gU = malloc(sizeof(float) * (size_t)N * nd);
        s->gR = malloc(sizeof(float) * (size_t)(K + 1) * (size_t)S * nd);
        s->gs = malloc(sizeof(float) * (size_t)S);
        s->pe = malloc(sizeof(float) * (size_t)(PL + 1) * (size_t)PL * nd);
        if (!s->ns || !s->R || !s->U || !s->P || !s->logits || !s->G || !s->gU || !s->gR || !s->gs || !s->pe) {
            scratch_free(s);
            return false;
        }
        bool code = m->cfg.pe_form == CX_MEMN2N_PE_CODE;
        for (int J = 1; J <= PL; J++)
            for (int j = 1; j <= J; j++)
                for (int k = 1; k <= d; k++)
                    s->pe[((size_t)J * PL + (j - 1)) * nd + (k - 1)] =
                        code ? 1.0f + 4.0f * ((float)k - 0.5f * (float)(d + 1)) * ((float)j - 0.5f * (float)(J + 1)) /
                                          ((float)d * (float)J)
                             : (1.0f - (float)j / J) - ((float)k / d) * (1.0f - 2.0f * (float)j / J);
    }
    return true;
}

/* Length J of a sentence: the position of its last non-nil word. */
static inline int sent_len(const int32_t *x, int L) {
    int J = L;
    while (J > 0 && x[J - 1] == 0) J--;
    return J;
}

/* out (+)= enc(E, x) */
static inline void encode(const float *E, const int32_t *x, int L, const scratch *s, bool pe, int d, float *out) {
    int J = sent_len(x, L);
    for (int j = 0; j < J; j++) {
        if (!x[j]) continue;
        const float *e = E + (size_t)x[j] * d;
        if (pe) {
            const float *l = s->pe + ((size_t)J * s->pe_L + j) * d;
            for (int k = 0; k < d; k++) out[k] += l[k] * e[k];
        } else {
            for (int k = 0; k < d; k++) out[k] += e[k];
        }
    }
}

/* dE[x_j] += l_j * g */
static inline void scatter(float *dE, const int32_t *x, int L, const scratch *s, bool pe, int d, const float *g) {
    int J = sent_len(x, L);
    for (int j = 0; j < J; j++) {
        if (!x[j]) continue;
        float *e = dE + (size_t)x[j] * d;
        if (pe) {
            const float *l = s->pe + ((size_t)J * s->pe_L + j) * d;
            for (int k = 0; k < d; k++) e[k] += l[k] * g[k];
        } else {
            for (int k = 0; k < d; k++) e[k] += g[k];
        }
    }
}

static inline float dot(const float *a, const float *b, int d) {
    float s = 0.0f;
    for (int k = 0; k < d; k++) s += a[k] * b[k];
    return s;
}

static int slots_of(const batch *b, int n) {
    if (b->slots) return b->slots[n];
    const int32_t *x = b->mem + (size_t)n * b->S * b->L;
    int last = 0;
    for (int i = 0; i < b->S; i++)
        for (int j = 0; j < b->L; j++)
            if (x[(size_t)i * b->L + j]) { last = i + 1; break; }
    return last;
}

/* The forward of a batch into s (R, U, P, logits). */
static void forward(const cx_memn2n *m, const batch *b, scratch *s) {
    int d = m->cfg.dim, K = m->cfg.hops, V = m->cfg.vocab, S = b->S, L = b->L;
    bool pe = m->cfg.pe;
    for (int n = 0; n < b->N; n++) {
        int ns = slots_of(b, n);
        s->ns[n] = ns;
        float *U = s->U + (size_t)n * (K + 1) * d;
        float *R = s->R + (size_t)n * (K + 1) * S * d;
        float *P = s->P + (size_t)n * K * S;
        memset(U, 0, sizeof(float) * (size_t)d);
        encode(CX_F(m->A[0]), b->query + (size_t)n * b->Lq, b->Lq, s, pe, d, U);
        const int32_t *x = b->mem + (size_t)n * S * L;
        for (int e = 0; e <= K; e++) {
            const float *E = CX_F(m->A[e]);
            for (int i = 0; i < ns; i++) {
                float *r = R + ((size_t)e * S + i) * d;
                if (m->T[e]) memcpy(r, CX_F(m->T[e]) + (size_t)i * d, sizeof(float) * (size_t)d);
                else memset(r, 0, sizeof(float) * (size_t)d);
                encode(E, x + (size_t)i * L, L, s, pe, d, r);
            }
        }
        for (int k = 1; k <= K; k++) {
            const float *u = U + (size_t)(k - 1) * d;
            float *un = U + (size_t)k * d;
            float *p = P + (size_t)(k - 1) * S;
            const float *Rm = R + (size_t)(k - 1) * S * d, *Rc = R + (size_t)k * S * d;
            for (int i = 0; i < ns; i++) p[i] = dot(u, Rm + (size_t)i * d, d);
            if (!m->linear && ns > 0) {
                float mx = p[0];
                for (int i = 1; i < ns; i++) mx = p[i] > mx ? p[i] : mx;
                float z = 0.0f;
                for (int i = 0; i < ns; i++) z += p[i] = expf(p[i] - mx);
                for (int i = 0; i < ns; i++) p[i] /= z;
            }
            for (int i = ns; i < S; i++) p[i] = 0.0f;
            memcpy(un, u, sizeof(float) * (size_t)d);
            for (int i = 0; i < ns; i++) {
                const float *c = Rc + (size_t)i * d;
                float pi = p[i];
                for (int kk = 0; kk < d; kk++) un[kk] += pi * c[kk];
            }
        }
    }
    /* logits = u_K A.K^T */
    cx_sgemm(false, true, b->N, V, d, 1.0f, s->U + (size_t)K * d, (K + 1) * d, CX_F(m->A[K]), d, 0.0f, s->logits, V);
}

/* Loss (sum), correct count and, with backward, G = d loss / d logits. */
static double loss_of(const cx_memn2n *m, const batch *b, scratch *s, bool grad, int *correct) {
    int V = m->cfg.vocab;
    double loss = 0.0;
    int ok = 0;
    for (int n = 0; n < b->N; n++) {
        const float *a = s->logits + (size_t)n * V;
        int am = 0;
        for (int v = 1; v < V; v++) if (a[v] > a[am]) am = v;
        float mx = a[am];
        double z = 0.0;
        for (int v = 0; v < V; v++) z += exp((double)a[v] - mx);
        int y = b->answer[n];
        loss += log(z) + mx - a[y];
        ok += am == y;
        if (grad) {
            float *g = s->G + (size_t)n * V;
            for (int v = 0; v < V; v++) g[v] = (float)(exp((double)a[v] - mx) / z);
            g[y] -= 1.0f;
        }
    }
    if (correct) *correct = ok;
    return loss;
}

static void backward(cx_memn2n *m, const batch *b, scratch *s) {
    int d = m->cfg.dim, K = m->cfg.hops, V = m->cfg.vocab, S = b->S, L = b->L;
    bool pe = m->cfg.pe;
    float *dA[CX_MEMN2N_MAX_HOPS + 1], *dT[CX_MEMN2N_MAX_HOPS + 1];
    for (int e = 0; e <= K; e++) {
        dA[e] = cx_grad_ensure(m->A[e]);
        dT[e] = m->T[e] ? cx_grad_ensure(m->T[e]) : NULL;
    }
    /* the output layer W = A.K^T: dA.K += G^T u_K, g(u_K) = G A.K */
    cx_sgemm(true, false, V, d, b->N, 1.0f, s->G, V, s->U + (size_t)K * d, (K + 1) * d, 1.0f, dA[K], d);
    cx_sgemm(false, false, b->N, d, V, 1.0f, s->G, V, CX_F(m->A[K]), d, 0.0f, s->gU, d);
    for (int n = 0; n < b->N; n++) {
        int ns = s->ns[n];
        const float *U = s->U + (size_t)n * (K + 1) * d;
        const float *R = s->R + (size_t)n * (K + 1) * S * d;
        const float *P = s->P + (size_t)n * K * S;
        float *g = s->gU + (size_t)n * d;   /* d loss / d u_k, k going down */
        memset(s->gR, 0, sizeof(float) * (size_t)(K + 1) * S * d);
        for (int k = K; k >= 1; k--) {
            const float *u = U + (size_t)(k - 1) * d;
            const float *p = P + (size_t)(k - 1) * S;
            const float *Rm = R + (size_t)(k - 1) * S * d, *Rc = R + (size_t)k * S * d;
            float *gRm = s->gR + (size_t)(k - 1) * S * d, *gRc = s->gR + (size_t)k * S * d;
            /* o = sum p_i c_i: g(p_i) = g . c_i, g(c_i) += p_i g. g(p) is kept in gs (in place). */
            float *gs = s->gs;
            float sum = 0.0f;
            for (int i = 0; i < ns; i++) {
                gs[i] = dot(g, Rc + (size_t)i * d, d);
                sum += p[i] * gs[i];
                float *gc = gRc + (size_t)i * d;
                for (int kk = 0; kk < d; kk++) gc[kk] += p[i] * g[kk];
            }
            if (!m->linear)
                for (int i = 0; i < ns; i++) gs[i] = p[i] * (gs[i] - sum);
            /* s_i = u . m_i: g(u) += gs_i m_i, g(m_i) += gs_i u (g(u_{k-1}) = g(u_k) + that) */
            for (int i = 0; i < ns; i++) {
                const float *mi = Rm + (size_t)i * d;
                float *gm = gRm + (size_t)i * d;
                float gi = gs[i];
                for (int kk = 0; kk < d; kk++) {
                    g[kk] += gi * mi[kk];
                    gm[kk] += gi * u[kk];
                }
            }
        }
        scatter(dA[0], b->query + (size_t)n * b->Lq, b->Lq, s, pe, d, g);
        const int32_t *x = b->mem + (size_t)n * S * L;
        for (int e = 0; e <= K; e++)
            for (int i = 0; i < ns; i++) {
                const float *gr = s->gR + ((size_t)e * S + i) * d;
                if (dT[e]) {
                    float *t = dT[e] + (size_t)i * d;
                    for (int kk = 0; kk < d; kk++) t[kk] += gr[kk];
                }
                scatter(dA[e], x + (size_t)i * L, L, s, pe, d, gr);
            }
    }
    /* <nil> stays zero: its rows never receive a gradient (nil words are skipped). */
}

static batch batch_of(const cx_tensor *memory, const cx_tensor *slots, const cx_tensor *query,
                      const cx_tensor *answer) {
    batch b;
    b.N = memory->shape[0];
    b.S = memory->shape[1];
    b.L = memory->shape[2];
    b.Lq = query->shape[1];
    b.mem = CX_I32P(memory);
    b.slots = slots ? CX_I32P(slots) : NULL;
    b.query = CX_I32P(query);
    b.answer = answer ? CX_I32P(answer) : NULL;
    return b;
}

cx_status cx_memn2n_forward(const cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots,
                            const cx_tensor *query, float *logits, float *attention) {
    cx_status st = check_inputs(m, memory, slots, query, NULL, "memn2n_forward");
    if (st) return st;
    batch b = batch_of(memory, slots, query, NULL);
    scratch s;
    memset(&s, 0, sizeof s);
    if (!scratch_fit(&s, m, &b)) {
        scratch_free(&s);
        return cx_set_error(CX_ERR_NOMEM, "memn2n_forward: out of memory");
    }
    forward(m, &b, &s);
    int V = m->cfg.vocab, K = m->cfg.hops, M = m->cfg.memory;
    if (logits) memcpy(logits, s.logits, sizeof(float) * (size_t)b.N * V);
    if (attention)
        for (int n = 0; n < b.N; n++)
            for (int k = 0; k < K; k++) {
                float *a = attention + ((size_t)n * K + k) * M;
                for (int i = 0; i < M; i++) a[i] = i < b.S ? s.P[((size_t)n * K + k) * b.S + i] : 0.0f;
            }
    scratch_free(&s);
    return CX_OK;
}

cx_status cx_memn2n_loss(cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots, const cx_tensor *query,
                         const cx_tensor *answer, bool backward_, double *loss, int *n_correct) {
    cx_status st = check_inputs(m, memory, slots, query, answer, "memn2n_loss");
    if (st) return st;
    if (!answer) return cx_set_error(CX_ERR_ARG, "memn2n_loss: NULL answer");
    batch b = batch_of(memory, slots, query, answer);
    scratch s;
    memset(&s, 0, sizeof s);
    if (!scratch_fit(&s, m, &b)) {
        scratch_free(&s);
        return cx_set_error(CX_ERR_NOMEM, "memn2n_loss: out of memory");
    }
    forward(m, &b, &s);
    double l = loss_of(m, &b, &s, backward_, n_correct);
    if (backward_) backward(m, &b, &s);
    if (loss) *loss = l;
    scratch_free(&s);
    return CX_OK;
}

/* Loss and errors over [0, N) in chunks, inputs already checked. */
static cx_status eval_checked(const cx_memn2n *m, const batch *all, const int *idx, int n_idx, scratch *s,
                              double *loss, double *error) {
    enum { CH = 256 };
    size_t SL = (size_t)all->S * all->L;
    int32_t *mem = malloc(sizeof(int32_t) * CH * SL), *q = malloc(sizeof(int32_t) * CH * (size_t)all->Lq);
    int32_t *ans = malloc(sizeof(int32_t) * CH), *sl = malloc(sizeof(int32_t) * CH);
    if (!mem || !q || !ans || !sl) {
        free(mem); free(q); free(ans); free(sl);
        return cx_set_error(CX_ERR_NOMEM, "memn2n: out of memory");
    }
    double tl = 0.0;
    long wrong = 0;
    for (int at = 0; at < n_idx; at += CH) {
        int nb = n_idx - at < CH ? n_idx - at : CH;
        for (int r = 0; r < nb; r++) {
            int n = idx ? idx[at + r] : at + r;
            memcpy(mem + r * SL, all->mem + (size_t)n * SL, sizeof(int32_t) * SL);
            memcpy(q + (size_t)r * all->Lq, all->query + (size_t)n * all->Lq, sizeof(int32_t) * (size_t)all->Lq);
            ans[r] = all->answer[n];
            sl[r] = all->slots ? all->slots[n] : slots_of(all, n);
        }
        batch b = *all;
        b.N = nb; b.mem = mem; b.query = q; b.answer = ans; b.slots = sl;
        if (!scratch_fit(s, m, &b)) {
            free(mem); free(q); free(ans); free(sl);
            return cx_set_error(CX_ERR_NOMEM, "memn2n: out of memory");
        }
        forward(m, &b, s);
        int ok;
        tl += loss_of(m, &b, s, false, &ok);
        wrong += nb - ok;
    }
    free(mem); free(q); free(ans); free(sl);
    if (loss) *loss = n_idx ? tl / n_idx : 0.0;
    if (error) *error = n_idx ? (double)wrong / n_idx : 0.0;
    return CX_OK;
}

cx_status cx_memn2n_evaluate(const cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots,
                             const cx_tensor *query, const cx_tensor *answer, double *loss, double *error) {
    cx_status st = check_inputs(m, memory, slots, query, answer, "memn2n_evaluate");
    if (st) return st;
    if (!answer) return cx_set_error(CX_ERR_ARG, "memn2n_evaluate: NULL answer");
    batch b = batch_of(memory, slots, query, answer);
    scratch s;
    memset(&s, 0, sizeof s);
    st = eval_checked(m, &b, NULL, b.N, &s, loss, error);
    scratch_free(&s);
    return st;
}

/* ================================================================ training */
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

cx_status cx_memn2n_train(cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots, const cx_tensor *query,
                          const cx_tensor *answer, const cx_memn2n_train_opts *opts, cx_memn2n_epoch *last) {
    cx_status st = check_inputs(m, memory, slots, query, answer, "memn2n_train");
    if (st) return st;
    if (!answer) return cx_set_error(CX_ERR_ARG, "memn2n_train: NULL answer");
    cx_memn2n_train_opts o = opts ? *opts : cx_memn2n_train_defaults();
    if (o.epochs < 1 || o.batch < 1 || !(o.lr > 0) || o.anneal_every < 0 || !(o.ls_lr_factor > 0) || o.ls_epochs < 0 ||
        !(o.random_noise >= 0 && o.random_noise < 1) || !(o.val_fraction >= 0 && o.val_fraction < 1))
        return cx_set_error(CX_ERR_ARG,
                            "memn2n_train: options out of range (epochs %d, batch %d, lr %g, anneal_every %d, "
                            "ls_lr_factor %g, random_noise %g, val_fraction %g)",
                            o.epochs, o.batch, o.lr, o.anneal_every, o.ls_lr_factor, (double)o.random_noise,
                            (double)o.val_fraction);
    batch all = batch_of(memory, slots, query, answer);
    if (all.N < 2) return cx_set_error(CX_ERR_ARG, "memn2n_train: %d question(s); need at least 2", all.N);
    cx_rng rng = cx_rng_new(o.seed);
    int N = all.N;
    int *perm = malloc(sizeof(int) * (size_t)N);
    int Mb = o.random_noise > 0 ? m->cfg.memory : all.S;   /* rows of a training batch */
    int B = o.batch < N ? o.batch : N;
    size_t SL = (size_t)all.S * all.L;
    int32_t *bm = malloc(sizeof(int32_t) * (size_t)B * Mb * all.L), *bq = malloc(sizeof(int32_t) * (size_t)B * all.Lq);
    int32_t *ba = malloc(sizeof(int32_t) * (size_t)B), *bs = malloc(sizeof(int32_t) * (size_t)B);
    if (!perm || !bm || !bq || !ba || !bs) {
        free(perm); free(bm); free(bq); free(ba); free(bs);
        return cx_set_error(CX_ERR_NOMEM, "memn2n_train: out of memory");
    }
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)cx_rng_below(&rng, (uint32_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int n_val = (int)(o.val_fraction * N);
    if (n_val >= N) n_val = N - 1;
    int *val = perm, *tr = perm + n_val, n_tr = N - n_val;
    cx_sgd_opts so = cx_sgd_defaults();
    so.lr = o.lr;
    cx_optim *opt = cx_sgd_new(&m->params, &so);
    scratch s;
    memset(&s, 0, sizeof s);
    m->linear = o.linear_start;
    double best_val = INFINITY;
    cx_memn2n_epoch ep;
    memset(&ep, 0, sizeof ep);
    st = CX_OK;
    int fixed_ls = o.linear_start ? o.ls_epochs : 0, total = o.epochs + fixed_ls;
    for (int e = 1; e <= total && !st; e++) {
        if (fixed_ls > 0) m->linear = e <= fixed_ls;
        int se = e - fixed_ls;      /* epoch of the annealing schedule */
        double lr = o.lr;
        if (o.anneal_every > 0 && se > 0) lr *= pow(0.5, (double)((se - 1) / o.anneal_every));
        if (m->linear) lr *= o.ls_lr_factor;   /* fixed linear start: se <= 0, no annealing */
        cx_optim_set_lr(opt, lr);
        ep.epoch = e;
        ep.lr = lr;
        ep.linear = m->linear;
        for (int i = n_tr - 1; i > 0; i--) {
            int j = (int)cx_rng_below(&rng, (uint32_t)(i + 1)), t = tr[i];
            tr[i] = tr[j];
            tr[j] = t;
        }
        double t0 = now_s(), tl = 0.0;
        long wrong = 0;
        for (int at = 0; at < n_tr && !st; at += B) {
            int nb = n_tr - at < B ? n_tr - at : B;
            for (int r = 0; r < nb; r++) {
                int n = tr[at + r];
                int nf = all.slots ? all.slots[n] : slots_of(&all, n);
                int32_t *dst = bm + (size_t)r * Mb * all.L;
                const int32_t *src = all.mem + (size_t)n * SL;
                if (o.random_noise > 0) {
                    memset(dst, 0, sizeof(int32_t) * (size_t)Mb * all.L);
                    int row = 0;
                    for (int i = 0; i < nf; i++) {
                        if (row + (nf - i) < Mb && cx_rng_uniform(&rng) < o.random_noise) row++;
                        memcpy(dst + (size_t)row * all.L, src + (size_t)i * all.L, sizeof(int32_t) * (size_t)all.L);
                        row++;
                    }
                    bs[r] = row;
                } else {
                    memcpy(dst, src, sizeof(int32_t) * SL);
                    bs[r] = nf;
                }
                memcpy(bq + (size_t)r * all.Lq, all.query + (size_t)n * all.Lq, sizeof(int32_t) * (size_t)all.Lq);
                ba[r] = all.answer[n];
            }
            batch b = all;
            b.N = nb; b.S = Mb; b.mem = bm; b.query = bq; b.answer = ba; b.slots = bs;
            if (!scratch_fit(&s, m, &b)) { st = cx_set_error(CX_ERR_NOMEM, "memn2n_train: out of memory"); break; }
            cx_params_zero_grad(&m->params);
            forward(m, &b, &s);
            int ok;
            tl += loss_of(m, &b, &s, true, &ok);
            wrong += nb - ok;
            backward(m, &b, &s);
            if (o.max_grad_norm > 0) cx_clip_grad_norm(&m->params, o.max_grad_norm);
            cx_optim_step(opt);
        }
        if (st) break;
        ep.seconds = now_s() - t0;
        ep.train_loss = tl / n_tr;
        ep.train_error = (double)wrong / n_tr;
        ep.val_loss = ep.val_error = 0.0;
        if (n_val > 0) st = eval_checked(m, &all, val, n_val, &s, &ep.val_loss, &ep.val_error);
        if (st) break;
        if (m->linear && fixed_ls == 0) {
            double crit = n_val > 0 ? ep.val_loss : ep.train_loss;
            if (!(crit < best_val)) m->linear = false;
            else best_val = crit;
        }
        if (o.on_epoch && !o.on_epoch(&ep, o.user)) break;
    }
    m->linear = false;
    cx_params_zero_grad(&m->params);
    cx_optim_free(opt);
    scratch_free(&s);
    free(perm); free(bm); free(bq); free(ba); free(bs);
    if (!st && last) *last = ep;
    return st;
}

/* ================================================================ files */
cx_status cx_memn2n_save(const char *path, const cx_memn2n *m, const char *const *extra_keys,
                         const char *const *extra_values, int n_extra) {
    if (!path || !m) return cx_set_error(CX_ERR_ARG, "memn2n_save: NULL %s", path ? "model" : "path");
    if (n_extra < 0 || (n_extra > 0 && (!extra_keys || !extra_values)))
        return cx_set_error(CX_ERR_ARG, "memn2n_save: bad extra metadata");
    enum { NM = 8 };
    char vals[NM][32];
    const char *keys[NM] = {"cortex.arch", "memn2n.vocab", "memn2n.dim", "memn2n.hops", "memn2n.memory", "memn2n.pe",
                            "memn2n.temporal", "memn2n.pe_form"};
    snprintf(vals[0], 32, "memn2n");
    snprintf(vals[1], 32, "%d", m->cfg.vocab);
    snprintf(vals[2], 32, "%d", m->cfg.dim);
    snprintf(vals[3], 32, "%d", m->cfg.hops);
    snprintf(vals[4], 32, "%d", m->cfg.memory);
    snprintf(vals[5], 32, "%d", m->cfg.pe ? 1 : 0);
    snprintf(vals[6], 32, "%d", m->cfg.temporal ? 1 : 0);
    snprintf(vals[7], 32, "%s", m->cfg.pe_form == CX_MEMN2N_PE_PAPER ? "paper" : "code");
    const char **mk = malloc(sizeof(char *) * (size_t)(NM + n_extra));
    const char **mv = malloc(sizeof(char *) * (size_t)(NM + n_extra));
    const char **names = malloc(sizeof(char *) * (size_t)m->params.n);
    if (!mk || !mv || !names) {
        free(mk); free(mv); free(names);
        return cx_set_error(CX_ERR_NOMEM, "memn2n_save: out of memory");
    }
    for (int i = 0; i < NM; i++) { mk[i] = keys[i]; mv[i] = vals[i]; }
    for (int i = 0; i < n_extra; i++) { mk[NM + i] = extra_keys[i]; mv[NM + i] = extra_values[i]; }
    for (int i = 0; i < m->params.n; i++) names[i] = m->params.t[i]->name;
    cx_status st = cx_st_save(path, m->params.t, names, m->params.n, mk, mv, NM + n_extra);
    free(mk); free(mv); free(names);
    return st;
}

cx_status cx_memn2n_load(const char *path, cx_memn2n **out, cx_st_file **file) {
    if (!out) return cx_set_error(CX_ERR_ARG, "memn2n_load: NULL output");
    *out = NULL;
    if (file) *file = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "memn2n_load: NULL path");
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *arch = cx_st_meta(f, "cortex.arch");
    if (!arch || strcmp(arch, "memn2n")) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: not a MemN2N model (cortex.arch is %s%s%s)", path, arch ? "'" : "",
                          arch ? arch : "missing", arch ? "'" : "");
        cx_st_free(f);
        return st;
    }
    cx_memn2n_config c = cx_memn2n_defaults();
    int pe = 0, te = 0;
    const char *bad = NULL;
    if (!cx_st_meta_int(f, "memn2n.vocab", 2, 1 << 24, &c.vocab)) bad = "memn2n.vocab";
    else if (!cx_st_meta_int(f, "memn2n.dim", 1, 4096, &c.dim)) bad = "memn2n.dim";
    else if (!cx_st_meta_int(f, "memn2n.hops", 1, CX_MEMN2N_MAX_HOPS, &c.hops)) bad = "memn2n.hops";
    else if (!cx_st_meta_int(f, "memn2n.memory", 1, 100000, &c.memory)) bad = "memn2n.memory";
    else if (!cx_st_meta_int(f, "memn2n.pe", 0, 1, &pe)) bad = "memn2n.pe";
    else if (!cx_st_meta_int(f, "memn2n.temporal", 0, 1, &te)) bad = "memn2n.temporal";
    if (bad) {
        cx_st_free(f);
        return cx_set_error(CX_ERR_FORMAT, "%s: metadata %s is missing or out of range", path, bad);
    }
    const char *form = cx_st_meta(f, "memn2n.pe_form");   /* absent: a file from before the code's form */
    if (form && strcmp(form, "code") && strcmp(form, "paper")) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: metadata memn2n.pe_form is '%s' (expected 'code' or 'paper')", path,
                          form);
        cx_st_free(f);
        return st;
    }
    c.pe_form = form && !strcmp(form, "code") ? CX_MEMN2N_PE_CODE : CX_MEMN2N_PE_PAPER;
    c.pe = pe;
    c.temporal = te;
    cx_memn2n *m = alloc_model(&c);
    if (!m) {
        cx_st_free(f);
        return cx_set_error(CX_ERR_NOMEM, "memn2n_load: out of memory");
    }
    if (f->n != m->params.n) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: %d tensors; a MemN2N of %d hops%s has %d", path, f->n, c.hops,
                          c.temporal ? " with temporal encoding" : "", m->params.n);
    }
    for (int i = 0; i < m->params.n && !st; i++) {
        cx_tensor *p = m->params.t[i], *t = cx_st_get(f, p->name);
        char b1[64], b2[64];
        if (!t) st = cx_set_error(CX_ERR_FORMAT, "%s: tensor '%s' is missing", path, p->name);
        else if (t->dtype != CX_F32) st = cx_set_error(CX_ERR_FORMAT, "%s: tensor '%s' is not F32", path, p->name);
        else if (!cx_same_shape(t, p))
            st = cx_set_error(CX_ERR_FORMAT, "%s: tensor '%s' has shape %s, the config needs %s", path, p->name,
                              cx_shape_str(t, b1, sizeof b1), cx_shape_str(p, b2, sizeof b2));
        else memcpy(p->data, t->data, sizeof(float) * (size_t)p->numel);
    }
    if (st) {
        cx_memn2n_free(m);
        cx_st_free(f);
        return st;
    }
    if (file) *file = f;
    else cx_st_free(f);
    *out = m;
    return CX_OK;
}
