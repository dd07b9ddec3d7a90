/*
 * gcn -- graph convolutions for node classification (the notes'
 * "convolutions in non-euclidean spaces, Graph Convolutional Network";
 * Kipf & Welling 2017) on a graph with community structure, against an MLP
 * that sees the same node features but not the edges.
 *
 * Data: a stochastic block model, 4 communities of 150 nodes; two nodes are
 * joined with probability 0.04 inside a community and 0.004 across (about 6
 * neighbours inside, 1.8 outside). Node features (32) are the community's
 * mean vector, scaled down, plus unit Gaussian noise, so a node's own
 * features say little about its community and its neighbours say more.
 * Semi-supervised, as in the paper: 20 labelled nodes per community (80) for
 * training, 100 for validation, the other 420 for the test.
 *
 * Models: GCN 32 -> 16 -> 4 (ReLU, dropout 0.5, cx_gcn_adjacency's
 * D^-1/2 (A + I) D^-1/2) and MLP 32 -> 16 -> 4 (the same without the
 * adjacency); Adam 0.01, weight decay 5e-4, 200 full-graph epochs, the test
 * accuracy at the epoch of best validation accuracy. Several seeds (graph,
 * features, split and weights all drawn from the seed).
 *
 *   gcn [--seeds 5] [--signal 0.35]
 */
#include <cortex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K = 4, PER = 150, N = K * PER, D = 32, HID = 16, EPOCHS = 200, TRAIN_PER = 20, VAL = 100 };

typedef struct {
    cx_module *l1, *l2;
    bool graph;
} model;

static cx_tensor *forward(model *m, const cx_sparse *adj, cx_tensor *x) {
    cx_tensor *h = cx_dropout(x, 0.5f);
    h = m->graph ? cx_gcn_forward(m->l1, adj, h) : cx_module_forward(m->l1, h);
    h = cx_dropout(cx_relu(h), 0.5f);
    return m->graph ? cx_gcn_forward(m->l2, adj, h) : cx_module_forward(m->l2, h);
}

static double accuracy(const cx_tensor *logits, const int32_t *label, const int32_t *idx, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const float *row = CX_F(logits) + (size_t)idx[i] * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[best]) best = k;
        ok += best == label[idx[i]];
    }
    return (double)ok / n;
}

/* test accuracy at the epoch of best validation accuracy */
static double train_eval(bool graph, const cx_sparse *adj, cx_tensor *x, const int32_t *label, const int32_t *tr,
                         int ntr, const int32_t *va, int nva, const int32_t *te, int nte, uint64_t seed) {
    cx_seed(seed);
    model m = {graph ? cx_gcn_new(D, HID, true) : cx_linear_new(D, HID, true),
               graph ? cx_gcn_new(HID, K, true) : cx_linear_new(HID, K, true), graph};
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m.l1, &ps);
    cx_module_params(m.l2, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    ao.weight_decay = 5e-4;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    int32_t ytr[N];
    for (int i = 0; i < ntr; i++) ytr[i] = label[tr[i]];
    double best_val = -1, test_at_best = 0;
    for (int ep = 0; ep < EPOCHS; ep++) {
        cx_set_training(true);
        cx_tensor *logits = forward(&m, adj, x);
        cx_tensor *tri = cx_from_i32(tr, (const int[]){ntr}, 1); /* step tensors: made every step */
        cx_tensor *loss = cx_cross_entropy(cx_index_select(logits, 0, tri),
                                           cx_from_i32(ytr, (const int[]){ntr}, 1), CX_REDUCE_MEAN);
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        cx_optim_step(opt);
        cx_step_reset();
        cx_set_training(false);
        cx_no_grad_begin();
        logits = forward(&m, adj, x);
        double v = accuracy(logits, label, va, nva);
        if (v > best_val) best_val = v, test_at_best = accuracy(logits, label, te, nte);
        cx_no_grad_end();
        cx_step_reset();
    }
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m.l1);
    cx_module_free(m.l2);
    return test_at_best;
}

int main(int argc, char **argv) {
    int seeds = 5;
    double signal = 0.35;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--signal") && i + 1 < argc) signal = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gcn [--seeds 5] [--signal 0.35]\n");
            return 2;
        }
    }
    if (seeds < 1 || !(signal >= 0)) {
        fprintf(stderr, "gcn: --seeds must be at least 1 and --signal not negative\n");
        return 2;
    }
    printf("stochastic block model: %d communities x %d nodes, p_in 0.04, p_out 0.004; %d features "
           "(community mean x %.2f + N(0, 1)); %d labelled nodes per community, %d validation, %d test\n",
           K, PER, D, signal, TRAIN_PER, VAL, N - K * TRAIN_PER - VAL);
    double sum_g = 0, sum_m = 0, sq_g = 0, sq_m = 0;
    for (int s = 0; s < seeds; s++) {
        uint64_t seed = 1000 + (uint64_t)s;
        cx_rng r = cx_rng_new(seed);
        int32_t label[N], *src = malloc(sizeof(int32_t) * N * N / 2), *dst = malloc(sizeof(int32_t) * N * N / 2);
        for (int i = 0; i < N; i++) label[i] = i / PER;
        int64_t m = 0;
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++)
                if (cx_rng_uniform(&r) < (label[i] == label[j] ? 0.04f : 0.004f)) src[m] = i, dst[m++] = j;
        cx_sparse *adj = cx_gcn_adjacency(N, src, dst, m, true);
        float mu[K][D];
        for (int k = 0; k < K; k++)
            for (int d = 0; d < D; d++) mu[k][d] = (float)(signal * cx_rng_normal(&r));
        cx_tensor *x = cx_tensor_new(CX_F32, (const int[]){N, D}, 2);
        for (int i = 0; i < N; i++)
            for (int d = 0; d < D; d++) CX_F(x)[i * D + d] = mu[label[i]][d] + cx_rng_normal(&r);
        /* split: a random permutation, then the first 20 of each community train */
        int32_t perm[N], tr[K * TRAIN_PER], va[VAL], te[N];
        for (int i = 0; i < N; i++) perm[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)cx_rng_below(&r, (uint32_t)i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        int cnt[K] = {0}, ntr = 0, nva = 0, nte = 0;
        for (int i = 0; i < N; i++) {
            int v = perm[i];
            if (cnt[label[v]] < TRAIN_PER) cnt[label[v]]++, tr[ntr++] = v;
            else if (nva < VAL) va[nva++] = v;
            else te[nte++] = v;
        }
        double g = train_eval(true, adj, x, label, tr, ntr, va, nva, te, nte, seed * 7 + 1);
        double p = train_eval(false, adj, x, label, tr, ntr, va, nva, te, nte, seed * 7 + 1);
        printf("seed %llu: %lld edges; test accuracy GCN %.3f, MLP %.3f\n", (unsigned long long)seed, (long long)m, g, p);
        fflush(stdout);
        sum_g += g, sq_g += g * g, sum_m += p, sq_m += p * p;
        cx_tensor_free(x);
        cx_sparse_free(adj);
        free(src);
        free(dst);
    }
    double mg = sum_g / seeds, mm = sum_m / seeds;
    double sg = seeds > 1 ? sqrt(fmax(0, (sq_g - seeds * mg * mg) / (seeds - 1))) : 0;
    double sm = seeds > 1 ? sqrt(fmax(0, (sq_m - seeds * mm * mm) / (seeds - 1))) : 0;
    printf("GCN_SBM seeds=%d signal=%.2f gcn_test_acc=%.3f+-%.3f mlp_test_acc=%.3f+-%.3f chance=%.3f\n", seeds, signal,
           mg, sg, mm, sm, 1.0 / K);
    return 0;
}
