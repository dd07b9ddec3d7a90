/* Per-thread state: two threads training two models at once get exactly the
 * results of running the two trainings one after the other (each thread has
 * its own arena, autograd flags and default random stream), and random
 * streams split, save and restore. */
#include "test.h"
#include <pthread.h>
#include <stdlib.h>

enum { N = 1536, F = 20, C = 4, EPOCHS = 3, NP = 4 };

typedef struct {
    uint64_t seed;
    bool eval_midway;      /* also flips training / no-grad state in the middle */
    float params[NP][F * 48 + 48 * C + 64];
    int64_t numel[NP];
    double loss;
} job;

/* Deterministic synthetic data (no random stream involved). */
static void make_data(cx_dataset *d) {
    d->x = cx_tensor_new(CX_F32, (int[]){N, F}, 2);
    d->y = cx_tensor_new(CX_I32, (int[]){N}, 1);
    d->owned = true;
    for (int i = 0; i < N; i++) {
        int cls = i % C;
        CX_I32P(d->y)[i] = cls;
        for (int j = 0; j < F; j++)
            CX_F(d->x)[i * F + j] = (float)((i * 7 + j * 13) % 17) / 17.0f + (j % C == cls ? 1.0f : 0.0f);
    }
}

/* Train an MLP with dropout on a shuffled loader with Adam: every part that
 * draws random numbers or reads a per-thread flag. */
static void train(job *jb) {
    cx_set_threads(1);
    cx_seed(jb->seed);
    cx_dataset d;
    make_data(&d);
    cx_module *net = cx_mlp_new((int[]){F, 48, C}, 3, CX_ACT_TANH, 0.3f);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_adam_opts o = cx_adam_defaults();
    o.lr = 1e-2;
    cx_optim *opt = cx_adam_new(&ps, &o);
    cx_loader *ld = cx_loader_new(&d, 32, true, false);
    double last = 0;
    for (int e = 0; e < EPOCHS; e++) {
        cx_loader_reset(ld);
        cx_tensor *x, *y;
        int b = 0;
        while (cx_loader_next(ld, &x, &y)) {
            cx_optim_zero_grad(opt);
            cx_tensor *loss = cx_cross_entropy(cx_module_forward(net, x), y, CX_REDUCE_MEAN);
            last = cx_item(loss);
            cx_backward(loss);
            cx_optim_step(opt);
            cx_step_reset();
            if (jb->eval_midway && ++b == 3) {
                /* an evaluation in the middle: no grad, eval mode, restored after */
                cx_no_grad_begin();
                cx_set_training(false);
                cx_tensor *xe = cx_from_data(CX_F(d.x), (int[]){8, F}, 2);
                (void)cx_module_forward(net, xe);
                cx_set_training(true);
                cx_no_grad_end();
                cx_step_reset();
            }
        }
    }
    jb->loss = last;
    for (int i = 0; i < ps.n && i < NP; i++) {
        jb->numel[i] = ps.t[i]->numel;
        memcpy(jb->params[i], ps.t[i]->data, (size_t)ps.t[i]->numel * sizeof(float));
    }
    cx_loader_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(net);
    cx_dataset_free(&d);
}

static void *train_thread(void *p) {
    train(p);
    return NULL;
}

static bool same_job(const job *a, const job *b) {
    if (a->loss != b->loss) return false;
    for (int i = 0; i < NP; i++)
        if (a->numel[i] != b->numel[i] || memcmp(a->params[i], b->params[i], (size_t)a->numel[i] * 4)) return false;
    return true;
}

static void two_threads_equal_sequential_on(cx_gemm_backend backend) {
    static job seq[2], par[2];
    memset(seq, 0, sizeof seq);
    memset(par, 0, sizeof par);
    cx_set_gemm_backend(backend);
    seq[0].seed = par[0].seed = 11;
    seq[1].seed = par[1].seed = 12;
    seq[1].eval_midway = par[1].eval_midway = true;
    train(&seq[0]);
    train(&seq[1]);
    CHECK_MSG(!same_job(&seq[0], &seq[1]), "two seeds gave the same model");
    for (int rep = 0; rep < 3; rep++) {
        pthread_t t[2];
        for (int k = 0; k < 2; k++) CHECK(pthread_create(&t[k], NULL, train_thread, &par[k]) == 0);
        for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
        for (int k = 0; k < 2; k++)
            CHECK_MSG(same_job(&seq[k], &par[k]), "run %d: model %d trained in a thread differs from the sequential run "
                      "(loss %.9g vs %.9g)", rep, k, par[k].loss, seq[k].loss);
    }
    /* the main thread's own state was not disturbed by the workers */
    CHECK(cx_grad_enabled());
    CHECK(cx_is_training());
    cx_set_gemm_backend(CX_GEMM_AUTO);
}

/* both GEMM kernels (OpenBLAS called from two threads at once, and the
 * built-in one with its per-thread workspace) */
static void two_threads_equal_sequential_blas(void) { two_threads_equal_sequential_on(CX_GEMM_BLAS); }
static void two_threads_equal_sequential_builtin(void) { two_threads_equal_sequential_on(CX_GEMM_BUILTIN); }

typedef struct {
    bool grad, train, check;
    uint32_t draw;
    size_t arena_used;
} fresh_state;

static void *probe_thread(void *p) {
    fresh_state *f = p;
    f->grad = cx_grad_enabled();
    f->train = cx_is_training();
    f->check = cx_check_numerics();
    f->draw = cx_rand_u32();
    (void)cx_zeros(CX_SHAPE(1000));
    f->arena_used = cx_arena_used(cx_arena_current());
    return NULL;
}

static void thread_starts_with_fresh_state(void) {
    /* flags, stream and arena set here must not leak into another thread */
    cx_no_grad_begin();
    cx_set_training(false);
    cx_set_check_numerics(true);
    cx_seed(99);
    cx_step_reset();
    cx_rng fresh = {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL}; /* a new thread's default stream */
    uint32_t expect = cx_rng_u32(&fresh);
    fresh_state f;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, probe_thread, &f) == 0);
    pthread_join(t, NULL);
    CHECK(f.grad && f.train && !f.check);
    CHECK_MSG(f.draw == expect, "a new thread's first draw %u, expected %u", f.draw, expect);
    CHECK_MSG(f.arena_used >= 4000 && cx_arena_used(cx_arena_current()) == 0,
              "the thread allocated from its own arena (%zu bytes there, %zu here)", f.arena_used,
              cx_arena_used(cx_arena_current()));
    CHECK(!cx_grad_enabled() && !cx_is_training() && cx_check_numerics());
    cx_no_grad_end();
    cx_set_training(true);
    cx_set_check_numerics(false);
}

static void rng_streams(void) {
    /* cx_seed(s) == cx_rng_new(s); the stream cx_seed made is unchanged (same
     * first values as before streams existed: reproducibility of old runs) */
    cx_seed(42);
    cx_rng a = cx_rng_new(42), a2;
    cx_rng_seed(&a2, 42);
    CHECK(a.state == a2.state && a.inc == a2.inc);
    for (int i = 0; i < 10; i++) CHECK(cx_rand_u32() == cx_rng_u32(&a));
    cx_seed(1);
    CHECK_MSG(cx_rand_u32() == 2525623064u, "stream of seed 1 changed"); /* value of the generator before streams */
    /* split: deterministic, advances the parent, children differ */
    cx_rng p1 = cx_rng_new(7), p2 = cx_rng_new(7);
    cx_rng c1 = cx_rng_split(&p1), c2 = cx_rng_split(&p2);
    CHECK(c1.state == c2.state && c1.inc == c2.inc);
    CHECK(p1.state == p2.state);
    cx_rng c3 = cx_rng_split(&p1);
    CHECK(c3.inc != c1.inc);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += cx_rng_u32(&c1) == cx_rng_u32(&c3);
    CHECK_MSG(same < 3, "two children agree on %d of 1000 draws", same);
    /* a child's uniform draws look uniform */
    double m = 0;
    for (int i = 0; i < 20000; i++) m += cx_rng_uniform(&c2);
    CHECK_NEAR(m / 20000, 0.5, 0.01);
    /* use: the current stream drives library draws (dropout, fill), and
     * restoring a saved copy replays them */
    cx_rng r = cx_rng_new(5);
    cx_rng saved = r;
    cx_rng *prev = cx_rng_use(&r);
    CHECK(cx_rng_current() == &r);
    cx_tensor *x1 = cx_randn(CX_SHAPE(64), 0, 1);
    cx_tensor *d1 = cx_dropout(cx_ones(CX_SHAPE(64)), 0.5f);
    r = saved;
    cx_tensor *x2 = cx_randn(CX_SHAPE(64), 0, 1);
    cx_tensor *d2 = cx_dropout(cx_ones(CX_SHAPE(64)), 0.5f);
    CHECK(memcmp(x1->data, x2->data, 64 * 4) == 0 && memcmp(d1->data, d2->data, 64 * 4) == 0);
    CHECK(cx_rng_use(prev) == &r);
    CHECK(cx_rng_current() == cx_rng_default());
    /* the default stream did not move while r was current */
    cx_seed(3);
    cx_rng d = cx_rng_new(3);
    prev = cx_rng_use(&r);
    (void)cx_rand_u32();
    cx_rng_use(prev);
    CHECK(cx_rand_u32() == cx_rng_u32(&d));
    /* a loader with its own stream shuffles independently of the thread's */
    cx_dataset ds = {cx_tensor_new(CX_F32, (int[]){50, 1}, 2), NULL, true};
    for (int i = 0; i < 50; i++) CX_F(ds.x)[i] = (float)i;
    cx_rng lr1 = cx_rng_new(9), lr2 = cx_rng_new(9);
    cx_loader *l1 = cx_loader_new(&ds, 50, true, false), *l2 = cx_loader_new(&ds, 50, true, false);
    cx_loader_set_rng(l1, &lr1);
    cx_loader_set_rng(l2, &lr2);
    cx_seed(100);
    cx_loader_reset(l1);
    cx_seed(200);
    (void)cx_rand_u32();
    cx_loader_reset(l2);
    int n1, n2;
    cx_tensor *b1, *b2;
    CHECK(cx_loader_next(l1, &b1, NULL) && cx_loader_next(l2, &b2, NULL));
    const int *i1 = cx_loader_indices(l1, &n1), *i2 = cx_loader_indices(l2, &n2);
    CHECK(n1 == 50 && n2 == 50 && memcmp(i1, i2, 50 * sizeof(int)) == 0);
    cx_loader_free(l1);
    cx_loader_free(l2);
    cx_dataset_free(&ds);
    /* the BPTT batcher's random offsets from its own stream */
    cx_tensor *ids = cx_tensor_new(CX_I32, (int[]){500}, 1);
    cx_bptt_loader *q1 = cx_bptt_new(ids, 4, 16, true), *q2 = cx_bptt_new(ids, 4, 16, true);
    cx_rng o1 = cx_rng_new(77), o2 = cx_rng_new(77);
    cx_bptt_set_rng(q1, &o1);
    cx_bptt_set_rng(q2, &o2);
    int64_t off1[5], off2[5];
    for (int e = 0; e < 5; e++) {
        cx_seed((uint64_t)e); /* the thread's stream changes; the loaders' do not depend on it */
        cx_bptt_reset(q1);
        (void)cx_rand_u32();
        cx_bptt_reset(q2);
        off1[e] = cx_bptt_offset(q1);
        off2[e] = cx_bptt_offset(q2);
    }
    CHECK(memcmp(off1, off2, sizeof off1) == 0);
    CHECK(off1[0] != off1[1] || off1[1] != off1[2] || off1[2] != off1[3]);
    cx_bptt_free(q1);
    cx_bptt_free(q2);
    cx_tensor_free(ids);
}

int main(void) {
    RUN(rng_streams);
    RUN(thread_starts_with_fresh_state);
    RUN(two_threads_equal_sequential_blas);
    RUN(two_threads_equal_sequential_builtin);
    TEST_END();
}
