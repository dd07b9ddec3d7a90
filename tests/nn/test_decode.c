/* Sampling, greedy decoding, beam search (against exhaustive enumeration and a
 * full-sort reference beam) and scheduled-sampling schedules. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* ------------------------------------------------------------ toy model
 * V = 4 tokens, token 3 is the stop symbol. The next-token scores depend on
 * the previous token through a fixed table and, when `hist` is set, on the
 * whole prefix through a hash carried in the state (so that the state
 * plumbing of the decoders is checked: the step verifies that state_in is
 * the state of prefix[0 .. n-2]). */
#define V 4
#define STOP 3
#define START 0

typedef struct {
    uint32_t hash;
    int len;
} toy_state;

typedef struct {
    float table[V][V];   /* log-probabilities, rows normalised */
    bool hist;           /* add a history-dependent term */
    int calls, copies, bad_states;
    int fail_at;         /* > 0: return CX_ERR_ARG at that call */
    bool nan_out;
} toy;

static uint32_t hash_step(uint32_t h, int tok) { return (h ^ (uint32_t)(tok + 1)) * 16777619u; }
static uint32_t hash_prefix(const int *p, int n) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) h = hash_step(h, p[i]);
    return h;
}

/* The scores the toy model gives after `prefix` (what exhaustive search uses). */
static void toy_scores(const toy *m, const int *prefix, int n, float *out) {
    uint32_t h = hash_prefix(prefix, n);
    for (int v = 0; v < V; v++) {
        out[v] = m->table[prefix[n - 1]][v];
        if (m->hist) out[v] += 0.8f * (float)((h >> (3 * v)) & 7) / 7.0f;
    }
}

static cx_status toy_step(void *user, const int *prefix, int n, const void *sin, void *sout, float *logp) {
    toy *m = user;
    m->calls++;
    if (m->fail_at && m->calls == m->fail_at) return cx_set_error(CX_ERR_ARG, "toy failure");
    if (sin) {
        const toy_state *s = sin;
        if (s->len != n - 1 || s->hash != hash_prefix(prefix, n - 1)) m->bad_states++;
        toy_state *o = sout;
        o->len = n;
        o->hash = hash_step(s->hash, prefix[n - 1]);
    }
    toy_scores(m, prefix, n, logp);
    if (m->nan_out) logp[1] = NAN;
    return CX_OK;
}

static void toy_copy(void *user, void *dst, const void *src) {
    ((toy *)user)->copies++;
    memcpy(dst, src, sizeof(toy_state));
}

static void toy_random(toy *m, bool hist) {
    memset(m, 0, sizeof *m);
    m->hist = hist;
    for (int a = 0; a < V; a++) {
        double s = 0;
        float raw[V];
        for (int b = 0; b < V; b++) {
            raw[b] = 1.5f * cx_rand_normal();
            s += exp(raw[b]);
        }
        for (int b = 0; b < V; b++) m->table[a][b] = (float)(raw[b] - log(s));
    }
}

static cx_decoder toy_decoder(toy *m, bool stateful) {
    cx_decoder d = {V, stateful ? sizeof(toy_state) : 0, toy_step, stateful ? toy_copy : NULL, m};
    return d;
}

/* ------------------------------------------------------------ references */
static void logsm(float *x) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = fmaxf(mx, x[i]);
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - mx);
    double lse = (double)mx + log(s);
    for (int i = 0; i < V; i++) x[i] = (float)((double)x[i] - lse);
}

typedef struct {
    int tok[16], len;
    double lp, score;
    int n_best; /* exhaustive search: sequences within 1e-12 of the best score */
} hyp;

/* Exhaustive enumeration of every sequence ending with STOP or at max_len. */
static void exhaustive_rec(const toy *m, int *prefix, int n, double lp, int max_len, cx_lennorm norm,
                           double alpha, hyp *best) {
    float s[V];
    toy_scores(m, prefix, n, s);
    logsm(s);
    for (int v = 0; v < V; v++) {
        double l = lp + s[v];
        prefix[n] = v;
        if (v == STOP || n == max_len) {
            double sc = cx_length_normalise(l, n, norm, alpha);
            if (best->len >= 0 && fabs(sc - best->score) <= 1e-12) best->n_best++;
            else if (best->len < 0 || sc > best->score) best->n_best = 1;
            if (best->len < 0 || sc > best->score) {
                best->len = n;
                best->lp = l;
                best->score = sc;
                memcpy(best->tok, prefix + 1, (size_t)n * sizeof(int));
            }
        } else {
            exhaustive_rec(m, prefix, n + 1, l, max_len, norm, alpha, best);
        }
    }
}
static hyp exhaustive(const toy *m, int max_len, cx_lennorm norm, double alpha) {
    hyp best = {.len = -1};
    int prefix[16] = {START};
    exhaustive_rec(m, prefix, 1, 0.0, max_len, norm, alpha, &best);
    return best;
}

/* Reference beam search with a full sort of the candidates (same rules as
 * cx_beam_search, none of its machinery). */
typedef struct {
    double score;
    int id;
} rc;
static int rc_cmp(const void *pa, const void *pb) {
    const rc *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}
static hyp ref_beam(const toy *m, int K, int max_len, cx_lennorm norm, double alpha) {
    hyp best = {.len = -1};
    int nl = 1;
    static int pre[2048][16], pre2[2048][16];
    static double lp[2048], lp2[2048];
    static rc c[2048 * V];
    pre[0][0] = START;
    lp[0] = 0;
    for (int t = 1; t <= max_len && nl > 0; t++) {
        int nc = 0;
        for (int h = 0; h < nl; h++) {
            float s[V];
            toy_scores(m, pre[h], t, s);
            logsm(s);
            for (int v = 0; v < V; v++) c[nc++] = (rc){lp[h] + s[v], h * V + v};
        }
        qsort(c, (size_t)nc, sizeof *c, rc_cmp);
        int k = nc < K ? nc : K, nn = 0;
        for (int j = 0; j < k; j++) {
            int h = c[j].id / V, v = c[j].id % V;
            if (v == STOP || t == max_len) {
                double sc = cx_length_normalise(c[j].score, t, norm, alpha);
                if (best.len < 0 || sc > best.score) {
                    best.len = t;
                    best.lp = c[j].score;
                    best.score = sc;
                    memcpy(best.tok, pre[h] + 1, (size_t)(t - 1) * sizeof(int));
                    best.tok[t - 1] = v;
                }
                continue;
            }
            memcpy(pre2[nn], pre[h], (size_t)t * sizeof(int));
            pre2[nn][t] = v;
            lp2[nn++] = c[j].score;
        }
        memcpy(pre, pre2, (size_t)nn * sizeof pre[0]);
        memcpy(lp, lp2, (size_t)nn * sizeof lp[0]);
        nl = nn;
    }
    return best;
}

/* Normalised score of a generated sequence under the toy model. */
static double seq_score(const toy *m, const int *seq, int n, cx_lennorm norm, double alpha) {
    int prefix[16] = {START};
    double lp = 0;
    for (int i = 0; i < n; i++) {
        float s[V];
        toy_scores(m, prefix, i + 1, s);
        logsm(s);
        lp += s[seq[i]];
        prefix[i + 1] = seq[i];
    }
    return cx_length_normalise(lp, n, norm, alpha);
}

static bool same_seq(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof(int));
}

static toy_state init_state(void) {
    toy_state s = {hash_prefix(NULL, 0), 0};
    return s;
}

/* ------------------------------------------------------------ beam search */
static void beam_matches_exhaustive_and_reference(void) {
    cx_seed(2024);
    const int Ks[] = {1, 2, 3, 4, 8, 16, 1024};
    const cx_lennorm norms[] = {CX_LENNORM_NONE, CX_LENNORM_POWER, CX_LENNORM_GNMT};
    const double alphas[] = {0, 1.0, 0.6};
    int max_len = 5, n_greedy_suboptimal = 0, n_runs = 0, n_unique = 0;
    toy_state s0 = init_state();
    for (int trial = 0; trial < 40; trial++) {
        toy m;
        toy_random(&m, trial % 2 == 1);
        bool stateful = trial % 4 >= 2;
        cx_decoder d = toy_decoder(&m, stateful);
        for (int ni = 0; ni < 3; ni++) {
            hyp ex = exhaustive(&m, max_len, norms[ni], alphas[ni]);
            for (unsigned ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                int K = Ks[ki];
                cx_beam_opts o = {K, max_len, STOP, norms[ni], alphas[ni]};
                int out[8], n = -1;
                double sc = 0, lp = 0;
                cx_status st = cx_beam_search(&d, stateful ? &s0 : NULL, START, &o, out, &n, &sc, &lp);
                CHECK(st == CX_OK);
                n_runs++;
                hyp ref = ref_beam(&m, K, max_len, norms[ni], alphas[ni]);
                CHECK_MSG(same_seq(out, n, ref.tok, ref.len), "trial %d norm %d K %d: differs from the "
                          "reference beam", trial, ni, K);
                CHECK_NEAR(sc, ref.score, 1e-9);
                CHECK_NEAR(lp, ref.lp, 1e-9);
                CHECK_NEAR(sc, cx_length_normalise(lp, n, norms[ni], alphas[ni]), 1e-12);
                CHECK(sc <= ex.score + 1e-12); /* never better than the optimum */
                if (K >= 1024) { /* K >= V^max_len: nothing is pruned */
                    CHECK_MSG(fabs(sc - ex.score) < 1e-12 && fabs(seq_score(&m, out, n, norms[ni], alphas[ni]) - sc) < 1e-12,
                              "trial %d norm %d: K %d differs from exhaustive search", trial, ni, K);
                    /* without the history term, sequences made of the same transitions
                     * tie exactly: the sequence itself is compared when the optimum is unique */
                    if (ex.n_best == 1)
                        CHECK_MSG(same_seq(out, n, ex.tok, ex.len), "trial %d norm %d: K %d returns "
                                  "another sequence than exhaustive search", trial, ni, K);
                    n_unique += ex.n_best == 1;
                }
                if (K == 1) {
                    int g[8], ng = -1;
                    double glp = 0;
                    CHECK(cx_decode_greedy(&d, stateful ? &s0 : NULL, START, STOP, max_len, g, &ng, &glp) == CX_OK);
                    CHECK_MSG(same_seq(out, n, g, ng), "trial %d norm %d: K = 1 is not greedy", trial, ni);
                    CHECK_NEAR(lp, glp, 1e-12);
                    n_greedy_suboptimal += !same_seq(g, ng, ex.tok, ex.len);
                }
            }
        }
        CHECK(m.bad_states == 0);
        if (stateful) CHECK(m.copies > 0);
    }
    CHECK(n_runs == 40 * 3 * 7);
    CHECK(n_unique >= 60); /* most optima are unique (all of the history-dependent ones) */
    /* the random tables are hard enough for greedy to miss the optimum sometimes */
    CHECK(n_greedy_suboptimal > 0);
}

/* A hand-made table where greedy is wrong and a beam of 2 is exact:
 * after START, token 1 (p .6) leads to near-uniform continuations, token 2
 * (p .4) to a sure STOP. Best: [2, STOP] with p .4*.97 against .6*.4 for
 * [1, STOP]. */
static void beam_beats_greedy_on_crafted_table(void) {
    toy m;
    memset(&m, 0, sizeof m);
    const float P[V][V] = {
        {0.01f, 0.59f, 0.39f, 0.01f}, /* after START (token 0) */
        {0.2f, 0.2f, 0.2f, 0.4f},     /* after 1 */
        {0.01f, 0.01f, 0.01f, 0.97f}, /* after 2 */
        {0.25f, 0.25f, 0.25f, 0.25f}, /* after STOP (never used) */
    };
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) m.table[a][b] = logf(P[a][b]);
    cx_decoder d = toy_decoder(&m, false);
    int g[8], ng;
    CHECK(cx_decode_greedy(&d, NULL, START, STOP, 5, g, &ng, NULL) == CX_OK);
    CHECK(ng == 2 && g[0] == 1 && g[1] == STOP);
    for (int K = 1; K <= 4; K++) {
        cx_beam_opts o = {K, 5, STOP, CX_LENNORM_NONE, 0};
        int out[8], n;
        double lp;
        CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, &lp) == CX_OK);
        if (K == 1) CHECK(n == 2 && out[0] == 1 && out[1] == STOP);
        else {
            CHECK(n == 2 && out[0] == 2 && out[1] == STOP);
            CHECK_NEAR(lp, log(0.39) + log(0.97), 1e-5);
        }
        hyp ex = exhaustive(&m, 5, CX_LENNORM_NONE, 0);
        if (K >= 2) CHECK(same_seq(out, n, ex.tok, ex.len));
    }
}

/* Length normalisation changes the winner: a short sequence with a low
 * total against a long one with a higher mean. */
static void length_normalisation_values(void) {
    CHECK_NEAR(cx_length_normalise(-6.0, 3, CX_LENNORM_NONE, 0.7), -6.0, 1e-15);
    CHECK_NEAR(cx_length_normalise(-6.0, 3, CX_LENNORM_POWER, 1.0), -2.0, 1e-15);
    CHECK_NEAR(cx_length_normalise(-8.0, 4, CX_LENNORM_POWER, 0.5), -4.0, 1e-15);
    CHECK_NEAR(cx_length_normalise(-6.0, 7, CX_LENNORM_GNMT, 1.0), -3.0, 1e-15); /* (5+7)/6 = 2 */
    CHECK_NEAR(cx_length_normalise(-6.0, 1, CX_LENNORM_GNMT, 0.6), -6.0, 1e-15); /* (5+1)/6 = 1 */
    toy m;
    memset(&m, 0, sizeof m);
    /* [STOP] has p .4 (log -0.92); [1, 2, STOP] has p .6 * .9997 * .5 (log -1.20,
     * mean -0.40); everything else is far less likely in total and per token */
    const float P[V][V] = {
        {0.0001f, 0.5998f, 0.0001f, 0.4f},
        {0.0001f, 0.0001f, 0.9997f, 0.0001f},
        {0.1667f, 0.1667f, 0.1666f, 0.5f},
        {0.25f, 0.25f, 0.25f, 0.25f},
    };
    for (int a = 0; a < V; a++)
        for (int b = 0; b < V; b++) m.table[a][b] = logf(P[a][b]);
    cx_decoder d = toy_decoder(&m, false);
    int out[8], n;
    cx_beam_opts o = cx_beam_defaults(8, 5);
    CHECK(o.beam == 8 && o.max_len == 5 && o.stop_token < 0 && o.norm == CX_LENNORM_NONE && o.alpha == 0);
    o.stop_token = STOP;
    CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL) == CX_OK);
    CHECK(n == 1 && out[0] == STOP);
    o.norm = CX_LENNORM_POWER;
    o.alpha = 1.0;
    CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL) == CX_OK);
    CHECK(n == 3 && out[0] == 1 && out[1] == 2 && out[2] == STOP);
    hyp ex = exhaustive(&m, 5, CX_LENNORM_POWER, 1.0);
    CHECK(same_seq(out, n, ex.tok, ex.len));
}

static void beam_without_stop_and_errors(void) {
    cx_seed(5);
    toy m;
    toy_random(&m, true);
    cx_decoder d = toy_decoder(&m, false);
    cx_beam_opts o = {3, 4, -1, CX_LENNORM_NONE, 0};
    int out[8], n;
    CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL) == CX_OK);
    CHECK(n == 4); /* no stop symbol: every hypothesis runs to max_len */
    /* a failing step function stops the search with its status */
    m.fail_at = 3;
    m.calls = 0;
    CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL) == CX_ERR_ARG);
    CHECK(n == 0 && strstr(cx_last_error(), "toy failure"));
    m.fail_at = 0;
    m.nan_out = true;
    CHECK(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL) == CX_ERR_NUMERIC);
    CHECK(cx_decode_greedy(&d, NULL, START, STOP, 4, out, &n, NULL) == CX_ERR_NUMERIC);
    m.nan_out = false;
    o.beam = 0;
    EXPECT_FATAL(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL), "beam width 0");
    o.beam = 2;
    o.stop_token = V;
    EXPECT_FATAL(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL), "stop token 4");
    o.stop_token = STOP;
    o.max_len = 0;
    EXPECT_FATAL(cx_beam_search(&d, NULL, START, &o, out, &n, NULL, NULL), "max_len 0");
    cx_decoder ds = toy_decoder(&m, true);
    EXPECT_FATAL(cx_decode_greedy(&ds, NULL, START, STOP, 3, out, &n, NULL), "init_state is NULL");
}

/* ------------------------------------------------------------ sampling */
static void sample_cold_is_argmax(void) {
    cx_seed(1);
    float l[] = {0.3f, 2.0f, 1.99f, -1.0f, 2.0f};
    CHECK(cx_argmax_f32(l, 5) == 1); /* first of the ties */
    CHECK(cx_sample_logits(l, 5, 0.0f, 0) == 1);
    CHECK(cx_sample_logits(l, 5, -1.0f, 3) == 1);
    CHECK(cx_sample_logits(l, 5, 5.0f, 1) == 1); /* top-1 is argmax at any temperature */
    float m[] = {0.3f, 1.5f, 1.49f, -1.0f, 0.7f};
    int hits = 0;
    for (int i = 0; i < 1000; i++) hits += cx_sample_logits(m, 5, 1e-4f, 0) == 1;
    CHECK(hits == 1000); /* (1.5 - 1.49) / 1e-4 = 100: the runner-up has weight e^-100 */
    /* top-k = 1 sampling through the decoder equals greedy */
    toy t;
    toy_random(&t, true);
    cx_decoder d = toy_decoder(&t, true);
    toy_state s0 = init_state();
    int a[8], na, b[8], nb;
    double la, lb;
    CHECK(cx_decode_greedy(&d, &s0, START, STOP, 6, a, &na, &la) == CX_OK);
    CHECK(cx_decode_sample(&d, &s0, START, STOP, 6, 1.0f, 1, b, &nb, &lb) == CX_OK);
    CHECK(same_seq(a, na, b, nb) && la == lb);
    CHECK(t.bad_states == 0);
}

static void softmax_ref(const float *l, int n, float T, int topk, double *p) {
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, l[i]);
    for (int i = 0; i < n; i++) {
        int rank = 0; /* how many are strictly better (ties -> lower index) */
        for (int j = 0; j < n; j++) rank += l[j] > l[i] || (l[j] == l[i] && j < i);
        p[i] = (topk > 0 && rank >= topk) ? 0 : exp((l[i] - mx) / T);
        s += p[i];
    }
    for (int i = 0; i < n; i++) p[i] /= s;
}

static void sample_frequencies_match_softmax(void) {
    cx_seed(42);
    float l[] = {1.0f, 0.2f, -0.5f, 1.3f, 0.0f, -INFINITY};
    const int n = 6, N = 20000;
    const float temps[] = {1.0f, 0.5f, 2.0f, 1.0f};
    const int topks[] = {0, 0, 0, 3};
    for (int c = 0; c < 4; c++) {
        int cnt[6] = {0};
        for (int i = 0; i < N; i++) cnt[cx_sample_logits(l, n, temps[c], topks[c])]++;
        double p[6];
        softmax_ref(l, n, temps[c], topks[c], p);
        for (int i = 0; i < n; i++) {
            CHECK_MSG(fabs((double)cnt[i] / N - p[i]) < 0.01, "T %g top-k %d: token %d frequency %g, "
                      "probability %g", (double)temps[c], topks[c], i, (double)cnt[i] / N, p[i]);
            if (p[i] == 0) CHECK(cnt[i] == 0); /* -inf and outside the top k: never */
        }
    }
    /* the same seed gives the same draws */
    cx_seed(9);
    int first[50];
    for (int i = 0; i < 50; i++) first[i] = cx_sample_logits(l, n, 1.0f, 0);
    cx_seed(9);
    for (int i = 0; i < 50; i++) CHECK(cx_sample_logits(l, n, 1.0f, 0) == first[i]);
    float bad[] = {0.0f, NAN};
    EXPECT_FATAL(cx_sample_logits(bad, 2, 1.0f, 0), "logit 1");
    float none[] = {-INFINITY, -INFINITY};
    EXPECT_FATAL(cx_sample_logits(none, 2, 1.0f, 0), "-inf");
}

static void decode_sample_stops_and_reports_logp(void) {
    cx_seed(77);
    toy m;
    toy_random(&m, true);
    cx_decoder d = toy_decoder(&m, true);
    toy_state s0 = init_state();
    int total_stop = 0;
    for (int r = 0; r < 200; r++) {
        int out[10], n;
        double lp;
        CHECK(cx_decode_sample(&d, &s0, START, STOP, 10, 1.0f, 0, out, &n, &lp) == CX_OK);
        CHECK(n >= 1 && n <= 10);
        for (int i = 0; i + 1 < n; i++) CHECK(out[i] != STOP);
        total_stop += out[n - 1] == STOP;
        /* recompute the log-probability from the model */
        int prefix[12] = {START};
        double want = 0;
        for (int i = 0; i < n; i++) {
            float s[V];
            toy_scores(&m, prefix, i + 1, s);
            logsm(s);
            want += s[out[i]];
            prefix[i + 1] = out[i];
        }
        CHECK_NEAR(lp, want, 1e-9);
    }
    CHECK(total_stop > 0);
    CHECK(m.bad_states == 0);
    /* without a stop token the output is always max_len long */
    int out[7], n;
    CHECK(cx_decode_sample(&d, &s0, START, -1, 7, 1.0f, 2, out, &n, NULL) == CX_OK);
    CHECK(n == 7);
}

/* ------------------------------------------------------------ scheduled sampling */
static void scheduled_sampling_schedules(void) {
    cx_ss_schedule lin = {CX_SS_LINEAR, 1.0, 1e-3, 0.1};
    CHECK_NEAR(cx_ss_teacher_prob(&lin, 0), 1.0, 1e-12);
    CHECK_NEAR(cx_ss_teacher_prob(&lin, 500), 0.5, 1e-12);
    CHECK_NEAR(cx_ss_teacher_prob(&lin, 2000), 0.1, 1e-12); /* floored at eps_min */
    CHECK_NEAR(cx_ss_sample_prob(&lin, 500), 0.5, 1e-12);
    CHECK_NEAR(cx_ss_sample_prob(&lin, 250), 0.25, 1e-12);
    cx_ss_schedule lin_hi = {CX_SS_LINEAR, 1.5, 1e-3, 0};
    CHECK_NEAR(cx_ss_teacher_prob(&lin_hi, 100), 1.0, 1e-12); /* clamped to 1 */
    cx_ss_schedule ex = {CX_SS_EXPONENTIAL, 0.99, 0, 0};
    CHECK_NEAR(cx_ss_teacher_prob(&ex, 0), 1.0, 1e-12);
    CHECK_NEAR(cx_ss_teacher_prob(&ex, 100), 0.36603234127322950, 1e-12);
    CHECK_NEAR(cx_ss_sample_prob(&ex, 1), 0.01, 1e-12);
    cx_ss_schedule sig = {CX_SS_INVERSE_SIGMOID, 10, 0, 0};
    CHECK_NEAR(cx_ss_teacher_prob(&sig, 0), 10.0 / 11.0, 1e-12);
    CHECK_NEAR(cx_ss_teacher_prob(&sig, 50), 10.0 / (10.0 + exp(5.0)), 1e-12);
    CHECK_NEAR(cx_ss_teacher_prob(&sig, 23), 10.0 / (10.0 + exp(2.3)), 1e-12);
    CHECK(cx_ss_teacher_prob(&sig, 100000) >= 0 && cx_ss_teacher_prob(&sig, 100000) < 1e-300);
    cx_ss_schedule sig_min = {CX_SS_INVERSE_SIGMOID, 10, 0, 0.05};
    CHECK_NEAR(cx_ss_teacher_prob(&sig_min, 1000), 0.05, 1e-12);
    /* monotone decay */
    for (int i = 1; i < 300; i++) {
        CHECK(cx_ss_teacher_prob(&ex, i) <= cx_ss_teacher_prob(&ex, i - 1));
        CHECK(cx_ss_teacher_prob(&sig, i) <= cx_ss_teacher_prob(&sig, i - 1));
        CHECK(cx_ss_teacher_prob(&lin, i) <= cx_ss_teacher_prob(&lin, i - 1));
    }
    cx_ss_schedule bad = {CX_SS_EXPONENTIAL, 1.5, 0, 0};
    EXPECT_FATAL(cx_ss_teacher_prob(&bad, 3), "0 < k < 1");
    cx_ss_schedule bad2 = {CX_SS_INVERSE_SIGMOID, 0.5, 0, 0};
    EXPECT_FATAL(cx_ss_teacher_prob(&bad2, 3), "k >= 1");
}

static void scheduled_sampling_mix(void) {
    cx_seed(3);
    enum { N = 20000 };
    static int32_t truth[N], pred[N], out[N];
    for (int i = 0; i < N; i++) {
        truth[i] = 1;
        pred[i] = 2;
    }
    cx_ss_schedule lin = {CX_SS_LINEAR, 1.0, 1e-3, 0};
    CHECK(cx_ss_mix(&lin, 0, truth, pred, out, N) == 0); /* eps 1: all teacher forcing */
    for (int i = 0; i < N; i++) CHECK(out[i] == 1);
    CHECK(cx_ss_mix(&lin, 1000, truth, pred, out, N) == N); /* eps 0: all model */
    int used = cx_ss_mix(&lin, 300, truth, pred, out, N);   /* eps 0.7 */
    int twos = 0;
    for (int i = 0; i < N; i++) twos += out[i] == 2;
    CHECK(used == twos);
    CHECK_NEAR((double)used / N, 0.3, 0.01);
    /* in place over the truth buffer */
    cx_ss_mix(&lin, 1000, truth, pred, truth, N);
    CHECK(truth[0] == 2 && truth[N - 1] == 2);
}

int main(void) {
    RUN(beam_matches_exhaustive_and_reference);
    RUN(beam_beats_greedy_on_crafted_table);
    RUN(length_normalisation_values);
    RUN(beam_without_stop_and_errors);
    RUN(sample_cold_is_argmax);
    RUN(sample_frequencies_match_softmax);
    RUN(decode_sample_stops_and_reports_logp);
    RUN(scheduled_sampling_schedules);
    RUN(scheduled_sampling_mix);
    TEST_END();
}
