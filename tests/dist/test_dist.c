/* Data-parallel training (cortex/dist.h). Run alone (make test: one process)
 * and under mpirun -np 2 / -np 3 (make mpi-test, tools/mpi_test.sh):
 *  - the sharded loader: disjoint parts that cover each global batch, the
 *    same batches as the unsharded loader, weights summing to 1;
 *  - the backward hook: every bucket starts during backward, gradients are
 *    scaled by the weight, an unused parameter keeps a NULL gradient, a
 *    second backward in one step is fatal;
 *  - broadcast: ranks that start from different weights end with rank 0's;
 *  - training: K steps of an MLP with SGD + momentum on N processes give the
 *    weights of one process on the same global batches (rank 0 trains the
 *    one-process reference itself), for even, uneven and empty shards;
 *    with one process the weights are bit-identical;
 *  - the library's trainer with opts.data_parallel (Adam, clipping,
 *    evaluations) against itself on one process.
 * Failure modes for tools/mpi_test.sh (not run by make test):
 *   --fail-rank R      rank R calls cx_fatal at step 3 while the others wait
 *                      in the all-reduce: mpirun must stop within seconds
 *   --exit-rank R      rank R exits (status 3) at step 3 without finalising
 *   --mismatch-rank R  rank R builds a wider model: broadcast_params names it
 *   --mpi-error-rank R rank R receives a shorter broadcast than rank 0 sends:
 *                      the MPI error (truncation) stops the run, naming rank R */
#include <stdlib.h>
#include <unistd.h>

#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define NDATA 100
#define NFEAT 8
#define NCLS 3

static cx_dataset make_data(void) {
    cx_rng rng = cx_rng_new(4242);
    cx_rng *prev = cx_rng_use(&rng);
    cx_dataset d = {0};
    d.x = cx_tensor_new(CX_F32, CX_SHAPE(NDATA, NFEAT));
    d.y = cx_tensor_new(CX_I32, CX_SHAPE(NDATA));
    for (int i = 0; i < NDATA; i++) {
        int c = (int)cx_rand_below(NCLS);
        CX_I32P(d.y)[i] = c;
        for (int j = 0; j < NFEAT; j++)
            CX_F(d.x)[i * NFEAT + j] = (float)cx_rand_normal() * 0.7f + (j % NCLS == c ? 1.0f : 0.0f);
    }
    d.owned = true;
    cx_rng_use(prev);
    return d;
}

typedef struct {
    cx_module *net;
    cx_params ps;
} mlp;

static mlp mlp_new(uint64_t seed, int hidden) {
    cx_rng rng = cx_rng_new(seed);
    cx_rng *prev = cx_rng_use(&rng);
    mlp m;
    m.net = cx_sequential_new();
    cx_sequential_add(m.net, "fc1", cx_linear_new(NFEAT, hidden, true));
    cx_sequential_add(m.net, "act", cx_activation_new(CX_ACT_TANH, 0));
    cx_sequential_add(m.net, "fc2", cx_linear_new(hidden, 12, true));
    cx_sequential_add(m.net, "act2", cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(m.net, "fc3", cx_linear_new(12, NCLS, true));
    cx_params_init(&m.ps);
    cx_module_params(m.net, &m.ps);
    cx_rng_use(prev);
    return m;
}

static void mlp_free(mlp *m) {
    cx_params_free(&m->ps);
    cx_module_free(m->net);
}

/* All parameters, concatenated (heap). */
static float *flatten(const cx_params *ps, int64_t *n) {
    *n = cx_params_count(ps);
    float *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    int64_t o = 0;
    for (int i = 0; i < ps->n; i++) {
        memcpy(v + o, ps->t[i]->data, (size_t)ps->t[i]->numel * sizeof(float));
        o += ps->t[i]->numel;
    }
    return v;
}

/* ------------------------------------------------------------ loader */
static void test_loader_shards(void) {
    cx_dataset d = make_data();
    for (int batch = 1; batch <= 13; batch += 4)
        for (int size = 1; size <= 4; size++) {
            cx_rng r0 = cx_rng_new(9);
            cx_loader *whole = cx_loader_new(&d, batch, true, false);
            cx_loader_set_rng(whole, &r0);
            CHECK(cx_loader_shards(whole) == 1);
            cx_loader_reset(whole);
            cx_loader *part[4];
            cx_rng rr[4];
            for (int r = 0; r < size; r++) {
                rr[r] = cx_rng_new(9);
                part[r] = cx_loader_new(&d, batch, true, false);
                cx_loader_set_rng(part[r], &rr[r]);
                cx_loader_set_shard(part[r], r, size);
                CHECK(cx_loader_shards(part[r]) == size);
                cx_loader_reset(part[r]);
                CHECK(cx_loader_num_batches(part[r]) == cx_loader_num_batches(whole));
            }
            cx_tensor *x, *y;
            int batches = 0;
            while (cx_loader_next(whole, &x, &y)) {
                int nw;
                const int *iw = cx_loader_indices(whole, &nw);
                CHECK(cx_loader_shard_weight(whole) == 1.0f);
                int at = 0, minp = nw, maxp = 0;
                float wsum = 0;
                for (int r = 0; r < size; r++) {
                    cx_tensor *xp, *yp;
                    CHECK(cx_loader_next(part[r], &xp, &yp));
                    int np;
                    const int *ip = cx_loader_indices(part[r], &np);
                    CHECK(xp->shape[0] == np && yp->shape[0] == np);
                    /* part r is the next contiguous run of the global batch */
                    for (int i = 0; i < np; i++) {
                        CHECK(at + i < nw && ip[i] == iw[at + i]);
                        CHECK(at + i < nw && CX_I32P(yp)[i] == CX_I32P(y)[at + i]);
                        CHECK(at + i < nw && CX_F(xp)[i * NFEAT + 3] == CX_F(x)[(at + i) * NFEAT + 3]);
                    }
                    at += np;
                    minp = np < minp ? np : minp;
                    maxp = np > maxp ? np : maxp;
                    wsum += cx_loader_shard_weight(part[r]);
                }
                CHECK(at == nw);           /* disjoint parts covering the batch */
                CHECK(maxp - minp <= 1);   /* balanced */
                CHECK_NEAR(wsum, 1.0, 1e-6);
                batches++;
                cx_step_reset();
            }
            CHECK(batches == cx_loader_num_batches(whole));
            for (int r = 0; r < size; r++) {
                cx_tensor *xp, *yp;
                CHECK(!cx_loader_next(part[r], &xp, &yp));
                cx_loader_free(part[r]);
            }
            cx_loader_free(whole);
        }
    cx_loader *l = cx_loader_new(&d, 4, false, false);
    EXPECT_FATAL(cx_loader_set_shard(l, 2, 2), "shard 2 of 2");
    EXPECT_FATAL(cx_loader_set_shard(l, 0, 0), "shard 0 of 0");
    CHECK(cx_loader_shard_weight(l) == 0.0f);
    cx_loader_free(l);
    cx_dataset_free(&d);
}

/* ------------------------------------------------------------ API, one step */
static cx_tensor *batch_loss(mlp *m, cx_tensor *x, cx_tensor *y) {
    return cx_cross_entropy(cx_module_forward(m->net, x), y, CX_REDUCE_MEAN);
}

static void test_api(void) {
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    int want = env && cx_dist_have_mpi() ? atoi(env) : 1;
    CHECK(cx_dist_size() == want);
    CHECK(cx_dist_rank() >= 0 && cx_dist_rank() < cx_dist_size());
    CHECK(cx_dist_is_root() == (cx_dist_rank() == 0));
    CHECK(cx_dist_init(NULL, NULL) == cx_dist_size()); /* a second call does nothing */
    double v[2] = {1.0, (double)cx_dist_rank()};
    cx_dist_allreduce_sum_f64(v, 2);
    CHECK(v[0] == cx_dist_size());
    CHECK(v[1] == cx_dist_size() * (cx_dist_size() - 1) / 2.0);
    CHECK(cx_dist_allreduce_max((double)cx_dist_rank()) == cx_dist_size() - 1);
    float f[3] = {1.5f, -2.0f, (float)cx_dist_rank()};
    cx_dist_allreduce_sum_f32(f, 3);
    CHECK(f[0] == 1.5f * (float)cx_dist_size() && f[1] == -2.0f * (float)cx_dist_size());
    float b[2] = {(float)cx_dist_rank() + 7.0f, 3.0f};
    cx_dist_broadcast_f32(b, 2, cx_dist_size() - 1);
    CHECK(b[0] == (float)(cx_dist_size() - 1) + 7.0f && b[1] == 3.0f);
    EXPECT_FATAL(cx_dist_broadcast_f32(b, 2, cx_dist_size()), "root");
    cx_dist_barrier();
    /* one process: cx_dist_abort(code) flushes and exits with code (a child
     * here; under mpirun, tools/mpi_test.sh checks that a failing rank stops
     * them all) */
    if (cx_dist_size() == 1) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            cx_dist_abort(3);
        }
        int status = 0;
        CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    }
}

/* The hook on one rank: buckets start during backward, weights scale, an
 * unused parameter stays without a gradient, misuse is fatal. */
static void test_reducer_step(void) {
    cx_dataset d = make_data();
    mlp m = mlp_new(5, 16);
    /* an extra parameter no forward uses */
    cx_tensor *unused = cx_param_new("unused", CX_SHAPE(4));
    cx_params all;
    cx_params_init(&all);
    /* first in the list: its bucket is the last one (buckets start in order,
     * so an unused parameter in bucket 0 would hold every bucket back) */
    cx_params_add(&all, unused);
    for (int i = 0; i < m.ps.n; i++) cx_params_add(&all, m.ps.t[i]);
    /* 64-byte buckets: fc3.bias alone, fc3.weight, ... several buckets */
    cx_dist_reducer *red = cx_dist_reducer_new(&all, 64);
    cx_params_free(&all); /* the reducer keeps its own copy of the list */
    const cx_params ps = m.ps;
    CHECK(cx_dist_reducer_buckets(red) >= 5);
    cx_tensor *x = cx_from_data(CX_F(d.x), CX_SHAPE(6, NFEAT));
    cx_tensor *y = cx_empty(CX_I32, CX_SHAPE(6));
    memcpy(y->data, d.y->data, 6 * sizeof(int32_t));

    /* the plain gradients */
    cx_backward(batch_loss(&m, x, y));
    int64_t n;
    float *g0 = malloc((size_t)cx_params_count(&ps) * sizeof *g0);
    n = 0;
    for (int i = 0; i < ps.n; i++) {
        memcpy(g0 + n, ps.t[i]->grad, (size_t)ps.t[i]->numel * sizeof(float));
        n += ps.t[i]->numel;
    }
    for (int i = 0; i < ps.n; i++) cx_zero_grad(ps.t[i]);

    cx_dist_reducer_begin(red, 0.25f);
    cx_backward(batch_loss(&m, x, y));
    cx_dist_stats st = cx_dist_reducer_stats(red);
    /* everything but the bucket holding the unused parameter started in backward */
    CHECK(st.buckets_early == cx_dist_reducer_buckets(red) - 1);
    cx_dist_reducer_finish(red);
    st = cx_dist_reducer_stats(red);
    CHECK(st.steps == 1 && st.buckets_late == 1 && st.buckets_early + st.buckets_late == cx_dist_reducer_buckets(red));
    cx_dist_reducer_reset_stats(red);
    st = cx_dist_reducer_stats(red);
    CHECK(st.steps == 0 && st.buckets_early == 0 && st.buckets_late == 0 && st.wait_seconds == 0 && st.reduce_seconds == 0);
    CHECK(unused->grad == NULL);
    /* the sum over ranks of 0.25 * each rank's gradient (all ranks use the
     * same rows here): 0.25 * size * g0 */
    float s = 0.25f * (float)cx_dist_size();
    n = 0;
    double worst = 0;
    for (int i = 0; i < ps.n; i++)
        for (int64_t e = 0; e < ps.t[i]->numel; e++, n++) {
            double dlt = fabs((double)ps.t[i]->grad[e] - (double)(s * g0[n]));
            worst = dlt > worst ? dlt : worst;
        }
    CHECK_MSG(worst <= 1e-6, "worst %g", worst);
    if (cx_dist_size() == 1) CHECK(worst == 0);

    /* misuse */
    EXPECT_FATAL(cx_dist_reducer_finish(red), "no cx_dist_reducer_begin");
    EXPECT_FATAL(cx_dist_reducer_begin(red, 1.5f), "weight 1.5");
    cx_dist_reducer_begin(red, -1.0f);
    EXPECT_FATAL(cx_dist_reducer_begin(red, 0.5f), "not finished");
    cx_backward(batch_loss(&m, x, y));
    EXPECT_FATAL(cx_backward(batch_loss(&m, x, y)), "finished twice");
    cx_dist_reducer_finish(red);
    cx_params bad;
    cx_params_init(&bad);
    cx_params_add(&bad, m.ps.t[0]);
    cx_params_add(&bad, m.ps.t[0]);
    EXPECT_FATAL(cx_dist_reducer_new(&bad, 0), "twice");
    cx_params_free(&bad);
    cx_dist_reducer_free(red);
    free(g0);
    cx_tensor_free(unused);
    mlp_free(&m);
    cx_dataset_free(&d);
}

/* A parameter used by several nodes (W twice, b in two places, a tied
 * scale): its bucket must wait for the last use, or the sum would miss the
 * contributions of the nodes that run after the hook fired. Every rank has
 * the same data and weight 1/size, so the result is the plain gradient. */
static cx_tensor *shared_loss(cx_tensor *w, cx_tensor *b, cx_tensor *s, cx_tensor *x) {
    cx_tensor *h = cx_tanh(cx_add(cx_matmul(x, w), b));
    h = cx_tanh(cx_add(cx_matmul(cx_mul(h, s), w), b));
    return cx_sum(cx_mul(cx_matmul(h, w), s));
}

static void test_hook_shared(void) {
    cx_rng rng = cx_rng_new(3);
    cx_rng *prev = cx_rng_use(&rng);
    cx_tensor *w = cx_param_new("w", CX_SHAPE(6, 6)), *b = cx_param_new("b", CX_SHAPE(6)),
              *s = cx_param_new("s", CX_SHAPE(6));
    cx_tensor *ts[3] = {w, b, s};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < ts[k]->numel; i++) CX_F(ts[k])[i] = 0.4f * cx_rand_normal();
    cx_tensor *x = cx_randn(CX_SHAPE(5, 6), 0.0f, 1.0f);
    cx_rng_use(prev);
    cx_backward(shared_loss(w, b, s, x));
    float g[3][36];
    for (int k = 0; k < 3; k++) {
        memcpy(g[k], ts[k]->grad, (size_t)ts[k]->numel * sizeof(float));
        cx_zero_grad(ts[k]);
    }
    cx_params ps;
    cx_params_init(&ps);
    for (int k = 0; k < 3; k++) cx_params_add(&ps, ts[k]);
    cx_dist_reducer *red = cx_dist_reducer_new(&ps, 4); /* a bucket per parameter */
    CHECK(cx_dist_reducer_buckets(red) == 3);
    cx_dist_reducer_begin(red, -1.0f);
    cx_backward(shared_loss(w, b, s, x));
    CHECK(cx_dist_reducer_stats(red).buckets_early == 3);
    cx_dist_reducer_finish(red);
    for (int k = 0; k < 3; k++) cxt_allclose(ts[k]->grad, g[k], ts[k]->numel, 1e-6, 1e-7, ts[k]->name);
    cx_dist_reducer_free(red);
    cx_params_free(&ps);
    for (int k = 0; k < 3; k++) cx_tensor_free(ts[k]);
}

/* ------------------------------------------------------------ broadcast */
static void test_broadcast(void) {
    mlp m = mlp_new(100 + (uint64_t)cx_dist_rank(), 16);
    int64_t n;
    float *mine = flatten(&m.ps, &n);
    float *root = flatten(&m.ps, &n);
    cx_dist_broadcast_f32(root, n, 0);
    double before = 0;
    for (int64_t i = 0; i < n; i++) before += fabs((double)mine[i] - root[i]);
    if (cx_dist_rank() > 0) CHECK(before > 1.0); /* the ranks did start apart */
    cx_dist_broadcast_params(&m.ps);
    free(mine);
    mine = flatten(&m.ps, &n);
    CHECK(memcmp(mine, root, (size_t)n * sizeof(float)) == 0);
    free(mine);
    free(root);
    mlp_free(&m);
}

/* ------------------------------------------------------------ training */
typedef struct {
    int batch, steps;
    size_t bucket_bytes;
    int fail_rank, exit_rank; /* failure modes (-1: off) */
} run_cfg;

/* K steps of SGD (lr 0.1, momentum 0.9) over the loader; with red == NULL,
 * the plain one-process loop. Returns the weights (heap). */
static float *train(const cx_dataset *d, mlp *m, const run_cfg *c, bool distributed, cx_dist_stats *stats) {
    cx_sgd_opts o = cx_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    cx_optim *opt = cx_sgd_new(&m->ps, &o);
    cx_rng data_rng = cx_rng_new(77);
    cx_loader *ld = cx_loader_new(d, c->batch, true, false);
    cx_loader_set_rng(ld, &data_rng);
    cx_loader_reset(ld);
    cx_dist_reducer *red = NULL;
    if (distributed) {
        cx_dist_shard_loader(ld);
        red = cx_dist_reducer_new(&m->ps, c->bucket_bytes);
    }
    for (int step = 0; step < c->steps; step++) {
        cx_tensor *x, *y;
        if (!cx_loader_next(ld, &x, &y)) {
            cx_loader_reset(ld);
            if (!cx_loader_next(ld, &x, &y)) cx_fatal("empty loader");
        }
        if (step == 3 && cx_dist_rank() == c->fail_rank) cx_fatal("deliberate failure at step %d", step);
        if (step == 3 && cx_dist_rank() == c->exit_rank) _exit(3);
        cx_optim_zero_grad(opt);
        if (red) cx_dist_reducer_begin(red, cx_loader_shard_weight(ld));
        if (x->shape[0] > 0) cx_backward(batch_loss(m, x, y));
        if (red) cx_dist_reducer_finish(red);
        cx_optim_step(opt);
        cx_step_reset();
    }
    if (red && stats) *stats = cx_dist_reducer_stats(red);
    cx_dist_reducer_free(red);
    cx_loader_free(ld);
    cx_optim_free(opt);
    int64_t n;
    return flatten(&m->ps, &n);
}

static void check_training(const run_cfg *c) {
    cx_dataset d = make_data();
    /* each rank starts from its own weights; the broadcast makes them rank 0's */
    mlp m = mlp_new(1000 + (uint64_t)cx_dist_rank(), 16);
    int64_t n;
    float *init = flatten(&m.ps, &n);
    cx_dist_broadcast_params(&m.ps);
    free(init);
    cx_dist_stats st = {0};
    float *w = train(&d, &m, c, true, &st);
    CHECK(st.steps == c->steps);
    /* overlap with backward happened (on a rank that had rows to train on) */
    if (cx_dist_size() > 1 && c->batch >= cx_dist_size()) CHECK(st.buckets_early > 0);

    /* every rank holds the same weights (up to the all-reduce's rounding) */
    float *w0 = malloc((size_t)n * sizeof *w0);
    memcpy(w0, w, (size_t)n * sizeof *w0);
    cx_dist_broadcast_f32(w0, n, 0);
    double dr = 0;
    for (int64_t i = 0; i < n; i++) dr = fmax(dr, fabs((double)w[i] - w0[i]));
    dr = cx_dist_allreduce_max(dr);
    CHECK_MSG(dr <= 1e-6, "ranks differ by %g", dr);

    if (cx_dist_rank() == 0) {
        /* the one-process reference: rank 0's initial weights, whole batches */
        mlp r = mlp_new(1000, 16);
        int64_t nr;
        float *ref0 = flatten(&r.ps, &nr);
        CHECK(nr == n);
        float *ref = train(&d, &r, c, false, NULL);
        double moved = 0, worst = 0;
        for (int64_t i = 0; i < n; i++) {
            moved = fmax(moved, fabs((double)ref[i] - ref0[i]));
            worst = fmax(worst, fabs((double)w[i] - ref[i]) / (1e-3 + fabs((double)ref[i])));
        }
        CHECK_MSG(moved > 0.05, "training moved the weights by %g only", moved);
        /* float rounding of the split sums; a wrong scale, a missing shard
         * or a missing reduction moves weights by ~1e-2 and more */
        CHECK_MSG(worst <= 2e-5, "batch %d, %d steps, %d processes: worst relative difference %g", c->batch, c->steps,
                  cx_dist_size(), worst);
        if (cx_dist_size() == 1) CHECK(worst == 0);
        printf("# batch %d, %d steps, %d process(es), buckets of %zu bytes: max |w - w_ref| / (1e-3 + |w_ref|) = %.3g, "
               "ranks agree to %.3g; %lld of %lld buckets started during backward\n",
               c->batch, c->steps, cx_dist_size(), c->bucket_bytes, worst, dr, (long long)st.buckets_early,
               (long long)(st.buckets_early + st.buckets_late));
        free(ref);
        free(ref0);
        mlp_free(&r);
    }
    free(w0);
    free(w);
    mlp_free(&m);
    cx_dataset_free(&d);
}

static void test_train_even(void) {
    /* 12 rows: 6 + 6 (2 processes), 4 + 4 + 4 (3); 100 rows: a final batch
     * of 4 (2 + 2, 1 + 1 + 2); 12 steps: into the second epoch */
    run_cfg c = {.batch = 12, .steps = 12, .bucket_bytes = 256, .fail_rank = -1, .exit_rank = -1};
    check_training(&c);
}
static void test_train_uneven(void) {
    /* 10 rows over 3: 3 + 3 + 4; one bucket for everything */
    run_cfg c = {.batch = 10, .steps = 14, .bucket_bytes = 1 << 20, .fail_rank = -1, .exit_rank = -1};
    check_training(&c);
}
static void test_train_empty_shards(void) {
    /* 2 rows over 3 processes: one rank has none each step */
    run_cfg c = {.batch = 2, .steps = 10, .bucket_bytes = 0, .fail_rank = -1, .exit_rank = -1};
    check_training(&c);
}

/* ------------------------------------------------------------ the trainer */
typedef struct {
    int steps;
    double last_loss;
} trainer_out;

/* The classifier task under the library's trainer (Adam, clipping on, an
 * evaluation every 5 steps), data-parallel or not; returns the weights. */
static float *trainer_run(const cx_dataset *d, const cx_dataset *val, mlp *m, bool dp, trainer_out *out) {
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    cx_optim *opt = cx_adam_new(&m->ps, &ao);
    cx_rng data_rng = cx_rng_new(31);
    cx_loader *ld = cx_loader_new(d, 12, true, false);
    cx_loader_set_rng(ld, &data_rng);
    if (dp) cx_dist_shard_loader(ld);
    cx_classifier c = {.forward = cx_forward_module, .forward_user = m->net, .train = ld, .val = val};
    cx_train_task task = cx_classifier_task(&c);
    cx_train_opts o = cx_train_defaults();
    o.epochs = 0;
    o.max_steps = 20; /* 9 batches an epoch: into the third */
    o.clip = 0.5f;
    o.eval_every = 5;
    o.quiet = true;
    o.data_parallel = dp;
    cx_trainer *tr = cx_trainer_new(&task, m->net, opt, &o);
    cx_trainer_add_rng(tr, "data", &data_rng);
    CHECK(cx_trainer_run(tr) == CX_OK);
    cx_train_info in = cx_trainer_info(tr);
    out->steps = (int)in.pos.step;
    out->last_loss = in.train_loss;
    cx_trainer_free(tr);
    cx_loader_free(ld);
    cx_optim_free(opt);
    int64_t n;
    return flatten(&m->ps, &n);
}

static void test_trainer_data_parallel(void) {
    cx_dataset d = make_data(), tr, val;
    CHECK(cx_dataset_split(&d, 20, &tr, &val) == CX_OK); /* 80 rows: batches of 12, a last one of 8 */
    /* different initial weights per rank: the trainer broadcasts rank 0's */
    mlp m = mlp_new(2000 + (uint64_t)cx_dist_rank(), 16);
    trainer_out o1;
    float *w = trainer_run(&tr, &val, &m, true, &o1);
    CHECK(o1.steps == 20);
    int64_t n = cx_params_count(&m.ps);
    float *w0 = malloc((size_t)n * sizeof *w0);
    memcpy(w0, w, (size_t)n * sizeof *w0);
    cx_dist_broadcast_f32(w0, n, 0);
    double dr = 0;
    for (int64_t i = 0; i < n; i++) dr = fmax(dr, fabs((double)w[i] - w0[i]));
    CHECK_MSG(cx_dist_allreduce_max(dr) <= 1e-6, "ranks differ by %g", dr);
    if (cx_dist_rank() == 0) {
        mlp r = mlp_new(2000, 16);
        trainer_out o2;
        float *ref = trainer_run(&tr, &val, &r, false, &o2);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)w[i] - ref[i]) / (1e-3 + fabs((double)ref[i])));
        /* Adam divides by sqrt(v): rounding differences of tiny gradients grow more than with SGD */
        CHECK_MSG(worst <= 1e-4, "trainer, %d processes: worst relative difference %g", cx_dist_size(), worst);
        if (cx_dist_size() == 1) CHECK(worst == 0);
        /* the running loss is the global batch's */
        CHECK_NEAR(o1.last_loss, o2.last_loss, 1e-5);
        printf("# trainer (Adam, clip 0.5, 20 steps, batch 12): %d process(es): max relative weight difference %.3g, "
               "train loss %.6f vs %.6f\n", cx_dist_size(), worst, o1.last_loss, o2.last_loss);
        free(ref);
        mlp_free(&r);
    }
    free(w0);
    free(w);
    mlp_free(&m);
    cx_dataset_free(&tr);
    cx_dataset_free(&val);
    cx_dataset_free(&d);
}

/* ------------------------------------------------------------ synchronised batch norm */
/* fc1 -> batch norm + relu -> fc2 -> batch norm + the residual + relu -> fc3
 * -> batch norm -> fc4: the three batch-norm paths (fused without and with
 * a residual, plain), per-channel over rows (1-d). */
typedef struct {
    cx_module *fc[4], *bn[3];
    cx_params ps;
} bnnet;

static bnnet bnnet_new(uint64_t seed) {
    cx_rng rng = cx_rng_new(seed);
    cx_rng *prev = cx_rng_use(&rng);
    bnnet m;
    m.fc[0] = cx_linear_new(NFEAT, 16, true);
    m.fc[1] = cx_linear_new(16, 16, true);
    m.fc[2] = cx_linear_new(16, 8, true);
    m.fc[3] = cx_linear_new(8, NCLS, true);
    m.bn[0] = cx_batchnorm1d_new(16);
    m.bn[1] = cx_batchnorm1d_new(16);
    m.bn[2] = cx_batchnorm1d_new(8);
    cx_params_init(&m.ps);
    for (int i = 0; i < 4; i++) cx_module_params(m.fc[i], &m.ps);
    for (int i = 0; i < 3; i++) cx_module_params(m.bn[i], &m.ps);
    cx_rng_use(prev);
    return m;
}
static void bnnet_free(bnnet *m) {
    cx_params_free(&m->ps);
    for (int i = 0; i < 4; i++) cx_module_free(m->fc[i]);
    for (int i = 0; i < 3; i++) cx_module_free(m->bn[i]);
}
static cx_tensor *bnnet_loss(bnnet *m, cx_tensor *x, cx_tensor *y) {
    cx_tensor *a1 = cx_batchnorm_forward_relu(m->bn[0], cx_module_forward(m->fc[0], x), NULL);
    cx_tensor *a2 = cx_batchnorm_forward_relu(m->bn[1], cx_module_forward(m->fc[1], a1), a1);
    cx_tensor *a3 = cx_module_forward(m->bn[2], cx_module_forward(m->fc[2], a2));
    return cx_cross_entropy(cx_module_forward(m->fc[3], a3), y, CX_REDUCE_MEAN);
}
/* The weights, then every batch norm's running mean and variance (heap). */
static float *bnnet_state(const bnnet *m, int64_t *n) {
    int64_t np;
    float *w = flatten(&m->ps, &np);
    int64_t ns = 0;
    for (int i = 0; i < 3; i++) ns += 2 * cx_batchnorm_running_mean(m->bn[i])->numel;
    w = realloc(w, (size_t)(np + ns) * sizeof *w);
    int64_t o = np;
    for (int i = 0; i < 3; i++) {
        cx_tensor *rm = cx_batchnorm_running_mean(m->bn[i]), *rv = cx_batchnorm_running_var(m->bn[i]);
        memcpy(w + o, CX_F(rm), (size_t)rm->numel * sizeof *w);
        o += rm->numel;
        memcpy(w + o, CX_F(rv), (size_t)rv->numel * sizeof *w);
        o += rv->numel;
    }
    *n = o;
    return w;
}

/* K steps of SGD with momentum, data-parallel (sharded loader and reducer)
 * or the plain one-process loop; returns bnnet_state. */
static float *bnnet_train(const cx_dataset *d, bnnet *m, int batch, int steps, bool distributed, int64_t *n) {
    cx_sgd_opts o = cx_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    cx_optim *opt = cx_sgd_new(&m->ps, &o);
    cx_rng data_rng = cx_rng_new(78);
    cx_loader *ld = cx_loader_new(d, batch, true, false);
    cx_loader_set_rng(ld, &data_rng);
    cx_loader_reset(ld);
    cx_dist_reducer *red = NULL;
    if (distributed) {
        cx_dist_shard_loader(ld);
        red = cx_dist_reducer_new(&m->ps, 512);
    }
    for (int step = 0; step < steps; step++) {
        cx_tensor *x, *y;
        if (!cx_loader_next(ld, &x, &y)) {
            cx_loader_reset(ld);
            if (!cx_loader_next(ld, &x, &y)) cx_fatal("empty loader");
        }
        cx_optim_zero_grad(opt);
        if (red) cx_dist_reducer_begin(red, cx_loader_shard_weight(ld));
        cx_backward(bnnet_loss(m, x, y));
        if (red) cx_dist_reducer_finish(red);
        cx_optim_step(opt);
        cx_step_reset();
    }
    cx_dist_reducer_free(red);
    cx_loader_free(ld);
    cx_optim_free(opt);
    return bnnet_state(m, n);
}

/* N processes with synchronised batch norm take one process's steps on the
 * whole batches: weights and running statistics. Without it (N > 1) each
 * process normalises over its own rows and the weights move away from the
 * one-process run: the comparison sees batch norm. */
static void check_sync_bn(int batch, int steps) {
    cx_dataset d = make_data();
    double worst[2] = {0, 0}, spread[2] = {0, 0};
    for (int sync = 1; sync >= 0; sync--) {
        bnnet m = bnnet_new(3000 + (uint64_t)cx_dist_rank());
        cx_dist_broadcast_params(&m.ps);
        cx_dist_sync_batchnorm(sync);
        CHECK(cx_dist_batchnorm_synced() == (sync && cx_dist_size() > 1));
        int64_t n;
        /* unsynchronised, within the first epoch: its last batch of 4 gives
         * a process of 3 a single row, too few for batch norm on its own */
        const int k = sync ? steps : 8;
        float *w = bnnet_train(&d, &m, batch, k, true, &n);
        cx_dist_sync_batchnorm(false);
        CHECK(!cx_dist_batchnorm_synced());
        /* every rank holds the same weights and, synchronised, running statistics */
        const int64_t nw = cx_params_count(&m.ps);
        float *w0 = malloc((size_t)n * sizeof *w0);
        memcpy(w0, w, (size_t)n * sizeof *w0);
        cx_dist_broadcast_f32(w0, n, 0);
        for (int64_t i = 0; i < (sync ? n : nw); i++) spread[sync] = fmax(spread[sync], fabs((double)w[i] - w0[i]));
        spread[sync] = cx_dist_allreduce_max(spread[sync]);
        if (cx_dist_rank() == 0) {
            bnnet r = bnnet_new(3000);
            int64_t nr;
            float *ref = bnnet_train(&d, &r, batch, k, false, &nr);
            CHECK(nr == n);
            for (int64_t i = 0; i < n; i++)
                worst[sync] = fmax(worst[sync], fabs((double)w[i] - ref[i]) / (1e-3 + fabs((double)ref[i])));
            free(ref);
            bnnet_free(&r);
        }
        free(w0);
        free(w);
        bnnet_free(&m);
    }
    CHECK_MSG(spread[1] <= 1e-6, "synchronised: ranks differ by %g", spread[1]);
    CHECK_MSG(spread[0] <= 1e-6, "unsynchronised: ranks' weights differ by %g", spread[0]);
    if (cx_dist_rank() == 0) {
        CHECK_MSG(worst[1] <= 1e-4, "batch %d, %d processes, synchronised: worst relative difference %g", batch,
                  cx_dist_size(), worst[1]);
        if (cx_dist_size() == 1) CHECK(worst[0] == 0 && worst[1] == 0);
        else CHECK_MSG(worst[0] > 1e-3, "unsynchronised batch norm matched the one-process run (%g)", worst[0]);
        printf("# batch norm, batch %d, %d steps, %d process(es): max relative difference from one process "
               "(weights and running statistics) %.3g synchronised, %.3g not (8 steps)\n",
               batch, steps, cx_dist_size(), worst[1], worst[0]);
    }
    cx_dataset_free(&d);
}
static void test_sync_batchnorm(void) {
    check_sync_bn(12, 12); /* 6 + 6, 4 + 4 + 4; the epoch's last batch of 4: 2 + 2, 1 + 1 + 2 */
    check_sync_bn(10, 10); /* 3 + 3 + 4: unequal shards, weighted */
}

/* ------------------------------------------------------------ failure modes */
static int arg_rank(int argc, char **argv, const char *flag) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag)) return atoi(argv[i + 1]);
    return -1;
}

int main(int argc, char **argv) {
    cx_dist_init(&argc, &argv);
    int fail = arg_rank(argc, argv, "--fail-rank"), ex = arg_rank(argc, argv, "--exit-rank"),
        mis = arg_rank(argc, argv, "--mismatch-rank"), merr = arg_rank(argc, argv, "--mpi-error-rank");
    if (merr >= 0) {
        /* rank merr expects fewer floats than rank 0 sends: MPI reports a truncation there */
        static float buf[4096];
        cx_dist_broadcast_f32(buf, cx_dist_rank() == merr ? 1 : 4096, 0);
        cx_dist_barrier();
        fprintf(stderr, "rank %d: the mismatched broadcast went through\n", cx_dist_rank());
        return 0;
    }
    if (fail >= 0 || ex >= 0) {
        cx_dataset d = make_data();
        mlp m = mlp_new(1, 16);
        cx_dist_broadcast_params(&m.ps);
        run_cfg c = {.batch = 12, .steps = 1000000, .bucket_bytes = 256, .fail_rank = fail, .exit_rank = ex};
        free(train(&d, &m, &c, true, NULL));
        fprintf(stderr, "rank %d: the run went on after the failure\n", cx_dist_rank());
        return 0;
    }
    if (mis >= 0) {
        mlp m = mlp_new(1, cx_dist_rank() == mis ? 17 : 16);
        cx_dist_broadcast_params(&m.ps);
        fprintf(stderr, "rank %d: broadcast_params accepted different shapes\n", cx_dist_rank());
        return 0;
    }
    RUN(test_api);
    RUN(test_loader_shards);
    RUN(test_reducer_step);
    RUN(test_hook_shared);
    RUN(test_broadcast);
    RUN(test_train_even);
    RUN(test_train_uneven);
    RUN(test_train_empty_shards);
    RUN(test_trainer_data_parallel);
    RUN(test_sync_batchnorm);
    /* every rank's verdict: rank 0 prints the result of the whole run */
    double f = cx_dist_allreduce_max((double)cxt_failed);
    if (cx_dist_rank() != 0 && cxt_failed) fprintf(stderr, "rank %d: %d test(s) failed\n", cx_dist_rank(), cxt_failed);
    if (f > cxt_failed) cxt_failed = (int)f;
    cx_dist_finalize();
    TEST_END();
}
