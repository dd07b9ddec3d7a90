/* Key-value memory networks (Miller et al. 2016) answering questions about
 * films from a knowledge base, against a MemN2N-style memory of the same
 * facts.
 *
 * A film KB is generated (cx_filmkb_generate: --films films, the ten real
 * Stanley Kubrick films among them) with WikiMovies-style questions ("who
 * directed the_shining ?", "which films did stanley_kubrick direct ?"),
 * split 80/10/10 by (entity, question type). The same model (cx_kvmemnn:
 * embedding A for question, keys and values, --hops hops with R_j, answer
 * embedding B) is trained on three memories of each question, found by key
 * hashing (memories that mention the question's entity):
 *   kv-kb    key (subject, relation) -> value object, both directions
 *   kv-doc   generated sentences, window keys (+-3 words + the title) ->
 *            centre entity, and window -> title
 *   memn2n   each triple's bag {subject, relation, object} as key and value
 *            (the paper's MemN2N-on-KB baseline)
 * and hits@1 on the test questions is reported for each (the answer counts
 * when the best-scoring entity is one of the question's answers), with the
 * validation hits@1 picking the epoch. Then the per-hop key attention of the
 * best KV-MemNN for "which films did stanley_kubrick direct ?" and "who
 * directed the_shining ?" is printed and drawn (--png).
 *
 * Run (from the repository root):
 *   build/<variant>/examples/kvmemnn [--films 1000] [--dim 64] [--hops 2]
 *       [--epochs 30] [--batch 32] [--lr 0.005] [--seed 1] [--seeds 1]
 *       [--mem 64] [--untied 0|1] [--modes kv-kb,kv-doc,memn2n] [--png out/kvmemnn.png]
 * Exit status: 0 on success, 1 on a library error or non-finite loss, 2 on a
 * bad flag.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>

typedef struct {
    int films, dim, hops, epochs, batch, seeds, mem, untied;
    double lr;
    unsigned long seed;
    const char *modes, *png;
} config;

static const char *const MODE_NAME[3] = {"kv-kb", "kv-doc", "memn2n"};

static int usage(void) {
    fprintf(stderr, "usage: kvmemnn [--films N] [--dim D] [--hops H] [--epochs E] [--batch B] [--lr LR]\n"
                    "               [--seed S] [--seeds K] [--mem M] [--untied 0|1] [--modes kv-kb,kv-doc,memn2n] [--png FILE]\n");
    return 2;
}

/* hits@1 of questions idx[0..n) and (optionally) the predictions */
static double evaluate(cx_kvmemnn *m, const cx_filmkb *kb, const int *idx, int n, cx_kvmem_mode mode, int mem,
                       const int *ent, int n_ent, int *type_hits, int *type_n) {
    long hits = 0;
    cx_no_grad_begin();
    for (int i0 = 0; i0 < n; i0 += 256) {
        int b = n - i0 < 256 ? n - i0 : 256;
        cx_tensor *q, *k, *v, *mk, *t;
        if (cx_filmkb_batch(kb, idx + i0, b, mode, mem, &q, &k, &v, &mk, &t)) {
            fprintf(stderr, "kvmemnn: %s\n", cx_last_error());
            exit(1);
        }
        cx_tensor *logits = cx_kvmemnn_forward(m, q, k, v, mk, NULL);
        for (int r = 0; r < b; r++) {
            const float *row = CX_F(logits) + (size_t)r * m->vocab;
            int best = ent[0];
            for (int e = 1; e < n_ent; e++)
                if (row[ent[e]] > row[best]) best = ent[e];
            bool h = CX_F(t)[(size_t)r * m->vocab + best] > 0;
            hits += h;
            if (type_n) {
                type_n[kb->questions[idx[i0 + r]].type]++;
                type_hits[kb->questions[idx[i0 + r]].type] += h;
            }
        }
        cx_step_reset();
    }
    cx_no_grad_end();
    return (double)hits / n;
}

typedef struct {
    double val, test, coverage, seconds;
    int epoch, type_hits[CX_KVQ_NTYPES], type_n[CX_KVQ_NTYPES];
} result;

static const char *const TYPE_NAME[CX_KVQ_NTYPES] = {"film->director", "film->writer", "film->actor", "film->year",
                                                     "film->genre", "director->film", "writer->film", "actor->film"};

static cx_kvmemnn *train(const config *c, const cx_filmkb *kb, cx_kvmem_mode mode, unsigned long seed,
                         result *res) {
    int *tr = malloc(sizeof(int) * (size_t)kb->n_split[0]), *va = malloc(sizeof(int) * (size_t)kb->n_split[1]),
        *te = malloc(sizeof(int) * (size_t)kb->n_split[2]), *ent = malloc(sizeof(int) * (size_t)kb->n_words);
    int ntr = cx_filmkb_split(kb, 0, tr), nva = cx_filmkb_split(kb, 1, va), nte = cx_filmkb_split(kb, 2, te);
    int n_ent = 0;
    for (int w = 0; w < kb->n_words; w++)
        if (kb->is_entity[w]) ent[n_ent++] = w;
    /* memory coverage: test questions with an answer among the kept values */
    int *kk = malloc(sizeof(int) * (size_t)c->mem * CX_KVMEM_MAX_TOKENS),
        *vv = malloc(sizeof(int) * (size_t)c->mem * CX_KVMEM_MAX_TOKENS);
    int covered = 0;
    for (int i = 0; i < nte; i++) {
        bool has;
        cx_filmkb_memories(kb, te[i], mode, c->mem, kk, vv, &has);
        covered += has;
    }
    free(kk), free(vv);
    res->coverage = (double)covered / nte;

    cx_rng rng = cx_rng_new(seed);
    cx_kvmemnn *m = cx_kvmemnn_new(kb->n_words, c->dim, c->hops, !c->untied, &rng);
    cx_kvmemnn *best = cx_kvmemnn_new(kb->n_words, c->dim, c->hops, !c->untied, &rng);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m->root, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = c->lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    double t0 = cx_now();
    res->val = -1;
    for (int e = 0; e < c->epochs; e++) {
        for (int i = ntr - 1; i > 0; i--) {   /* shuffle */
            int j = (int)cx_rng_below(&rng, (uint32_t)(i + 1)), t = tr[i];
            tr[i] = tr[j], tr[j] = t;
        }
        double sum = 0;
        for (int i0 = 0; i0 < ntr; i0 += c->batch) {
            int b = ntr - i0 < c->batch ? ntr - i0 : c->batch;
            cx_tensor *q, *k, *v, *mk, *t;
            if (cx_filmkb_batch(kb, tr + i0, b, mode, c->mem, &q, &k, &v, &mk, &t)) {
                fprintf(stderr, "kvmemnn: %s\n", cx_last_error());
                exit(1);
            }
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_kvmemnn_loss(cx_kvmemnn_forward(m, q, k, v, mk, NULL), t);
            float lv = cx_item(loss);
            if (!isfinite(lv)) {
                fprintf(stderr, "kvmemnn: non-finite loss at epoch %d\n", e + 1);
                exit(1);
            }
            cx_backward(loss);
            cx_clip_grad_norm(&ps, 40.0f);
            cx_optim_step(opt);
            sum += lv * b;
            cx_step_reset();
        }
        double val = evaluate(m, kb, va, nva, mode, c->mem, ent, n_ent, NULL, NULL);
        if (val > res->val) {
            res->val = val;
            res->epoch = e + 1;
            cx_module_copy_state(best->root, m->root);
        }
        if ((e + 1) % 5 == 0 || e == 0)
            printf("    %-7s seed %lu  epoch %2d  loss %.4f  valid hits@1 %.2f%%\n", MODE_NAME[mode], seed, e + 1,
                   sum / ntr, 100 * val);
        fflush(stdout);
    }
    res->seconds = cx_now() - t0;
    memset(res->type_hits, 0, sizeof res->type_hits);
    memset(res->type_n, 0, sizeof res->type_n);
    res->test = evaluate(best, kb, te, nte, mode, c->mem, ent, n_ent, res->type_hits, res->type_n);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_kvmemnn_free(m);
    free(tr), free(va), free(te), free(ent);
    return best;
}

/* the per-hop attention over the memories of one question, printed and drawn */
static int explain(cx_kvmemnn *m, const cx_filmkb *kb, const char *question_entity, cx_kvq_type type,
                   int mem, cx_kvmem_mode mode, const char *png) {
    int qi = -1, e = cx_filmkb_find(kb, question_entity);
    for (int i = 0; i < kb->n_questions; i++)
        if (kb->questions[i].entity == e && kb->questions[i].type == type) qi = i;
    if (qi < 0) return 0;
    cx_tensor *q, *k, *v, *mk, *t, *att;
    if (cx_filmkb_batch(kb, &qi, 1, mode, mem, &q, &k, &v, &mk, &t)) return 1;
    cx_no_grad_begin();
    cx_tensor *logits = cx_kvmemnn_forward(m, q, k, v, mk, &att);
    cx_no_grad_end();
    const int M = (int)k->shape[1], H = m->hops, L = CX_KVMEM_MAX_TOKENS;
    char text[256];
    cx_filmkb_question_text(kb, qi, text, sizeof text);
    int best = -1;
    for (int w = 0; w < kb->n_words; w++)
        if (kb->is_entity[w] && (best < 0 || CX_F(logits)[w] > CX_F(logits)[best])) best = w;
    const cx_kvq *x = &kb->questions[qi];
    printf("\n  %s  (%s, split %s)\n  answer:", text, MODE_NAME[mode], x->split == 0 ? "train" : x->split == 1 ? "valid" : "test");
    for (int a = 0; a < x->n_answers; a++) printf(" %s", kb->words[kb->answers[x->first_answer + a]]);
    printf("\n  predicted: %s\n  %-48s %-22s", kb->words[best], "key", "value");
    for (int h = 0; h < H; h++) printf("  hop %d", h + 1);
    printf("\n");
    char **labels = calloc((size_t)M, sizeof(char *));
    float *heat = malloc(sizeof(float) * (size_t)M * H);
    for (int r = 0; r < M; r++) {
        char key[160] = "", val[64] = "";
        for (int j = 0; j < L && CX_I32P(k)[r * L + j]; j++)
            snprintf(key + strlen(key), sizeof key - strlen(key), "%s%s", j ? " " : "", kb->words[CX_I32P(k)[r * L + j]]);
        for (int j = 0; j < L && CX_I32P(v)[r * L + j]; j++)
            snprintf(val + strlen(val), sizeof val - strlen(val), "%s%s", j ? " " : "", kb->words[CX_I32P(v)[r * L + j]]);
        printf("  %-48s %-22s", key, val);
        for (int h = 0; h < H; h++) {
            float p = CX_F(att)[(size_t)h * M + r];
            heat[(size_t)r * H + h] = p;
            printf("  %5.3f", (double)p);
        }
        printf("\n");
        labels[r] = malloc(strlen(key) + strlen(val) + 5);
        sprintf(labels[r], "%s -> %s", key, val);
    }
    int rc = 0;
    if (png) {
        char **cols = malloc(sizeof(char *) * (size_t)H);
        for (int h = 0; h < H; h++) {
            cols[h] = malloc(16);
            snprintf(cols[h], 16, "hop %d", h + 1);
        }
        char title[320];
        snprintf(title, sizeof title, "KV-MemNN key attention: %s", text);
        cx_heatmap_opts o = cx_heatmap_defaults();
        o.title = title;
        o.xlabel = "hop";
        o.ylabel = "memory (key -> value)";
        o.row_labels = (const char *const *)labels;
        o.col_labels = (const char *const *)cols;
        o.vmin = 0;
        o.vmax = 1;
        o.values = true;
        o.cell = 44;
        if (cx_plot_heatmap(png, heat, M, H, &o)) {
            fprintf(stderr, "kvmemnn: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("  wrote %s\n", png);
        }
        for (int h = 0; h < H; h++) free(cols[h]);
        free(cols);
    }
    for (int r = 0; r < M; r++) free(labels[r]);
    free(labels);
    free(heat);
    cx_step_reset();
    return rc;
}

int main(int argc, char **argv) {
    config c = {1000, 64, 2, 30, 32, 1, 64, 0, 0.005, 1, "kv-kb,kv-doc,memn2n", "out/kvmemnn.png"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        char *end;
        if (!strcmp(a, "--films")) c.films = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--dim")) c.dim = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--hops")) c.hops = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--epochs")) c.epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--batch")) c.batch = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seeds")) c.seeds = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--untied")) c.untied = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--mem")) c.mem = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) c.seed = strtoul(v, &end, 10);
        else if (!strcmp(a, "--lr")) c.lr = strtod(v, &end);
        else if (!strcmp(a, "--modes")) c.modes = v, end = (char *)v + strlen(v);
        else if (!strcmp(a, "--png")) c.png = *v ? v : NULL, end = (char *)v + strlen(v);
        else return usage();
        if (*end) {
            fprintf(stderr, "kvmemnn: bad value '%s' for %s\n", v, a);
            return 2;
        }
        i++;
    }
    if (c.films < 10 || c.films > 1500 || c.dim < 1 || c.hops < 1 || c.hops > 8 || c.epochs < 1 || c.batch < 1 ||
        c.seeds < 1 || c.mem < 1 || !(c.lr > 0)) {
        fprintf(stderr, "kvmemnn: a flag is out of range (films 10..1500, hops 1..8, the rest positive)\n");
        return 2;
    }
    cx_filmkb *kb;
    if (cx_filmkb_generate(c.films, c.seed, &kb)) {
        fprintf(stderr, "kvmemnn: %s\n", cx_last_error());
        return 1;
    }
    printf("film KB: %d films, %d triples, %d sentences, vocabulary %d; questions %d train / %d valid / %d test\n",
           kb->n_films, kb->n_triples, kb->n_sentences, kb->n_words, kb->n_split[0], kb->n_split[1], kb->n_split[2]);
    printf("model: dim %d, %d hops, answer embedding %s, Adam lr %g, batch %d, %d epochs, at most %d memories, %d seed(s) from %lu\n",
           c.dim, c.hops, c.untied ? "B (untied)" : "B = A (tied)", c.lr, c.batch, c.epochs, c.mem, c.seeds, c.seed);
    result tab[3][16];
    bool on[3] = {false, false, false};
    cx_kvmemnn *shown = NULL;
    for (int mo = 0; mo < 3; mo++) {
        if (!strstr(c.modes, MODE_NAME[mo])) continue;
        on[mo] = true;
        for (int s = 0; s < c.seeds && s < 16; s++) {
            cx_kvmemnn *m = train(&c, kb, (cx_kvmem_mode)mo, c.seed + (unsigned long)s, &tab[mo][s]);
            printf("  %-7s seed %lu: test hits@1 %.2f%% (best valid %.2f%% at epoch %d), memory holds an answer for "
                   "%.1f%% of test questions, %.1f s\n", MODE_NAME[mo], c.seed + (unsigned long)s,
                   100 * tab[mo][s].test, 100 * tab[mo][s].val, tab[mo][s].epoch, 100 * tab[mo][s].coverage,
                   tab[mo][s].seconds);
            printf("           by type:");
            for (int ty = 0; ty < CX_KVQ_NTYPES; ty++)
                printf(" %s %.0f%%", TYPE_NAME[ty], tab[mo][s].type_n[ty] ? 100.0 * tab[mo][s].type_hits[ty] / tab[mo][s].type_n[ty] : 0.0);
            printf("\n");
            if (mo == CX_KVMEM_KB && s == 0) shown = m;
            else cx_kvmemnn_free(m);
        }
    }
    printf("\n  memory   test hits@1 (mean [min, max] over %d seed(s))\n", c.seeds);
    for (int mo = 0; mo < 3; mo++) {
        if (!on[mo]) continue;
        double mean = 0, lo = 1, hi = 0;
        for (int s = 0; s < c.seeds && s < 16; s++) {
            mean += tab[mo][s].test;
            lo = fmin(lo, tab[mo][s].test);
            hi = fmax(hi, tab[mo][s].test);
        }
        mean /= c.seeds < 16 ? c.seeds : 16;
        printf("  %-7s  %.2f%% [%.2f, %.2f]\n", MODE_NAME[mo], 100 * mean, 100 * lo, 100 * hi);
    }
    int rc = 0;
    if (shown) {
        rc |= explain(shown, kb, "stanley_kubrick", CX_KVQ_DIRECTED, c.mem, CX_KVMEM_KB, c.png);
        rc |= explain(shown, kb, "the_shining", CX_KVQ_DIRECTOR, c.mem, CX_KVMEM_KB, NULL);
        cx_kvmemnn_free(shown);
    }
    cx_filmkb_free(kb);
    return rc;
}
