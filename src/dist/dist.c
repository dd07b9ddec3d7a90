/* Data-parallel training over MPI (cortex/dist.h): process group, broadcasts
 * and reductions, and the bucketed gradient all-reduce that starts during
 * backward. Built without CX_HAVE_MPI every function acts as one process. */
#include "../tensor/internal.h"
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef CX_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
static bool g_init;      /* cx_dist_init was called */
#ifdef CX_HAVE_MPI
static bool g_mpi;       /* MPI is initialised and in use (by us or the program) */
static bool g_own_mpi;   /* ... and we initialised it (we finalise it) */
#endif

bool cx_dist_have_mpi(void) {
#ifdef CX_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int cx_dist_rank(void) { return g_rank; }
int cx_dist_size(void) { return g_size; }
bool cx_dist_is_root(void) { return g_rank == 0; }

#ifdef CX_HAVE_MPI
/* A failed MPI call: no rank may go on (the others would wait in the next
 * collective), so this stops the whole run whatever cx_try is active. */
static _Noreturn void mpi_failed(const char *call, int rc) {
    char es[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, es, &len) != MPI_SUCCESS) snprintf(es, sizeof es, "error code %d", rc);
    fflush(stdout);
    fprintf(stderr, "cortex: rank %d of %d: MPI error in %s: %s\n", g_rank, g_size, call, es);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}
#define MPI_CHECK(call)                                                                                                \
    do {                                                                                                               \
        int rc_ = (call);                                                                                              \
        if (rc_ != MPI_SUCCESS) mpi_failed(#call, rc_);                                                                \
    } while (0)

/* The fatal path of a run of several processes: name the rank, stop them all. */
static void fatal_abort(const char *msg) {
    if (!g_mpi || g_size < 2) return; /* one process: the default message and exit(1) */
    fprintf(stderr, "cortex: rank %d of %d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Started by an MPI launcher (Open MPI's mpirun, MPICH's hydra, PMIx / PMI
 * under a scheduler)? Without one, MPI_Init would make a singleton run:
 * slower to start and nothing to gain. */
static bool launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return true;
    return false;
}
#endif

int cx_dist_init(int *argc, char ***argv) {
    if (g_init) return g_size;
    g_init = true;
#ifdef CX_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (!launched()) return g_size;
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            fprintf(stderr, "cortex: MPI_Init_thread failed (error %d)\n", rc);
            exit(1);
        }
        g_own_mpi = true;
    }
    g_mpi = true;
    /* errors come back as return codes (MPI_CHECK), not MPI's own abort
     * without a rank or a cause */
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    cx_set_fatal_exit(fatal_abort);
#else
    (void)argc;
    (void)argv;
#endif
    return g_size;
}

void cx_dist_finalize(void) {
#ifdef CX_HAVE_MPI
    if (!g_mpi) return;
    cx_dist_sync_batchnorm(false);
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    cx_set_fatal_exit(NULL);
    g_mpi = false;
    if (g_own_mpi) MPI_Finalize();
    g_own_mpi = false;
    g_rank = 0;
    g_size = 1;
#endif
}

#ifdef CX_HAVE_MPI
/* Collectives of a run of several processes (one process: nothing to do). */
static bool multi(void) { return g_mpi && g_size > 1; }
#endif

/* ---- synchronised batch norm (cx_bn_sync in norm.c calls these) */
static float g_bn_weight = -1.0f; /* the armed reducer's weight, else -1 */
#ifdef CX_HAVE_MPI
static double bn_weight(void) { return g_bn_weight >= 0 ? (double)g_bn_weight : 1.0 / (double)g_size; }
/* batch norm's own communicator: its collectives (blocking, in the forward
 * and backward passes) are then never matched against the gradient
 * buckets' non-blocking ones on MPI_COMM_WORLD */
static MPI_Comm g_bn_comm = MPI_COMM_NULL;
static pthread_t g_mpi_thread;
static void bn_allreduce(double *buf, int n) {
    if (!pthread_equal(pthread_self(), g_mpi_thread))
        cx_fatal("synchronised batch norm ran on a thread other than the one that turned it on "
                 "(MPI is used from the thread that called cx_dist_init only)");
    if (n) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, g_bn_comm));
}
#endif

void cx_dist_sync_batchnorm(bool on) {
#ifdef CX_HAVE_MPI
    if (on && multi() && g_bn_comm == MPI_COMM_NULL) {
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g_bn_comm));
        g_mpi_thread = pthread_self();
        cx_bn_sync.allreduce = bn_allreduce;
        cx_bn_sync.weight = bn_weight;
    } else if (!on && g_bn_comm != MPI_COMM_NULL) {
        cx_bn_sync.allreduce = NULL;
        cx_bn_sync.weight = NULL;
        MPI_CHECK(MPI_Comm_free(&g_bn_comm));
    }
#else
    (void)on;
#endif
}

bool cx_dist_batchnorm_synced(void) { return cx_bn_sync.allreduce != NULL; }

void cx_dist_barrier(void) {
#ifdef CX_HAVE_MPI
    if (multi()) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

void cx_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef CX_HAVE_MPI
    if (multi()) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

/* MPI counts are int: long buffers go in pieces. */
#define CHUNK ((int64_t)1 << 30)

void cx_dist_broadcast_f32(float *buf, int64_t n, int root) {
    if (n < 0 || (n > 0 && !buf)) cx_fatal("cx_dist_broadcast_f32: %lld floats at %p", (long long)n, (void *)buf);
    if (root < 0 || root >= g_size) cx_fatal("cx_dist_broadcast_f32: root %d of %d processes", root, g_size);
#ifdef CX_HAVE_MPI
    if (!multi()) return;
    for (int64_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        MPI_CHECK(MPI_Bcast(buf + o, c, MPI_FLOAT, root, MPI_COMM_WORLD));
    }
#endif
}

void cx_dist_allreduce_sum_f32(float *buf, int64_t n) {
    if (n < 0 || (n > 0 && !buf)) cx_fatal("cx_dist_allreduce_sum_f32: %lld floats at %p", (long long)n, (void *)buf);
#ifdef CX_HAVE_MPI
    if (!multi()) return;
    for (int64_t o = 0; o < n; o += CHUNK) {
        int c = (int)(n - o < CHUNK ? n - o : CHUNK);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf + o, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
#endif
}

void cx_dist_allreduce_sum_f64(double *buf, int n) {
    if (n < 0 || (n > 0 && !buf)) cx_fatal("cx_dist_allreduce_sum_f64: %d doubles at %p", n, (void *)buf);
#ifdef CX_HAVE_MPI
    if (multi() && n) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
#endif
}

double cx_dist_allreduce_max(double v) {
#ifdef CX_HAVE_MPI
    if (multi()) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
#endif
    return v;
}

/* Every rank must hold the same list: count, each shape. Compared against
 * rank 0's, which every rank receives; a mismatch names the rank and the
 * tensor, and is fatal there (so the run stops, see the header). */
static void check_same_params(const char *what, const cx_params *p) {
    for (int i = 0; i < p->n; i++)
        if (!p->t[i] || p->t[i]->dtype != CX_F32) cx_fatal("%s: tensor %d is %s (F32 tensors only)", what, i, p->t[i] ? cx_dtype_name(p->t[i]->dtype) : "NULL");
#ifdef CX_HAVE_MPI
    if (!multi()) return;
    /* per tensor: ndim and the dims, fixed width */
    int w = 1 + CX_MAX_DIMS;
    int n0 = p->n;
    MPI_CHECK(MPI_Bcast(&n0, 1, MPI_INT, 0, MPI_COMM_WORLD));
    int bad = n0 != p->n ? -2 : -1;
    int n = n0 > p->n ? n0 : p->n;
    int *desc = cx_xcalloc((size_t)n * (size_t)w + 1, sizeof *desc);
    for (int i = 0; i < p->n; i++) {
        desc[i * w] = p->t[i]->ndim;
        memcpy(desc + i * w + 1, p->t[i]->shape, sizeof p->t[i]->shape);
    }
    int *mine = cx_xmalloc(((size_t)n * (size_t)w + 1) * sizeof *mine);
    memcpy(mine, desc, ((size_t)n * (size_t)w + 1) * sizeof *mine);
    MPI_CHECK(MPI_Bcast(desc, n0 * w, MPI_INT, 0, MPI_COMM_WORLD));
    for (int i = 0; i < n0 && i < p->n && bad == -1; i++)
        if (memcmp(desc + i * w, mine + i * w, (size_t)w * sizeof *desc)) bad = i;
    char s0[96] = "", s1[96] = "";
    if (bad >= 0) {
        cx_tensor t0 = *p->t[bad];
        t0.ndim = desc[bad * w];
        memcpy(t0.shape, desc + bad * w + 1, sizeof t0.shape);
        cx_shape_str(&t0, s0, sizeof s0);
        cx_shape_str(p->t[bad], s1, sizeof s1);
    }
    free(desc);
    free(mine);
    /* everyone learns whether some rank differs before anyone stops */
    int any = bad != -1;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    if (bad == -2) cx_fatal("%s: this rank has %d tensors, rank 0 has %d", what, p->n, n0);
    if (bad >= 0)
        cx_fatal("%s: tensor %d ('%s') is %s here, %s on rank 0", what, bad, p->t[bad]->name ? p->t[bad]->name : "?", s1, s0);
    if (any) cx_fatal("%s: another rank's tensors differ from rank 0's (see its message)", what);
#endif
}

void cx_dist_broadcast_params(const cx_params *params) {
    if (!params) cx_fatal("cx_dist_broadcast_params: NULL list");
    check_same_params("cx_dist_broadcast_params", params);
    for (int i = 0; i < params->n; i++) cx_dist_broadcast_f32(CX_F(params->t[i]), params->t[i]->numel, 0);
}

void cx_dist_shard_loader(cx_loader *l) {
    if (!l) cx_fatal("cx_dist_shard_loader: NULL loader");
    cx_loader_set_shard(l, g_rank, g_size);
}

/* ---- the reducer */
typedef struct {
    int first, last;    /* parameters first..last (list order), inclusive */
    int64_t numel;      /* their elements, then one flag per parameter */
    float *buf;         /* numel + (last - first + 1) floats */
    int pending;        /* parameters not yet copied in this step */
    bool started;
#ifdef CX_HAVE_MPI
    MPI_Request req;
#endif
} bucket;

struct cx_dist_reducer {
    int n;
    cx_tensor **p;
    int *bucket_of;     /* per parameter */
    int64_t *offset;    /* per parameter: first element in its bucket */
    bool *done;         /* per parameter: copied in this step */
    int nb;
    bucket *b;
    int next;           /* the next bucket to start (they start in order) */
    bool armed;
    float weight;
    /* pointer -> parameter index (open addressing) */
    cx_tensor **key;
    int *val;
    size_t cap;
    cx_dist_stats st;
    double t_first;     /* when the step's first bucket started (-1: none yet) */
};

static size_t hash_slot(const cx_dist_reducer *r, const cx_tensor *t) {
    return (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull) & (r->cap - 1);
}

static int param_index(const cx_dist_reducer *r, const cx_tensor *t) {
    size_t h = hash_slot(r, t);
    while (r->key[h]) {
        if (r->key[h] == t) return r->val[h];
        h = (h + 1) & (r->cap - 1);
    }
    return -1;
}

cx_dist_reducer *cx_dist_reducer_new(const cx_params *params, size_t bucket_bytes) {
    if (!params) cx_fatal("cx_dist_reducer_new: NULL list");
    check_same_params("cx_dist_reducer_new", params);
    if (!bucket_bytes) bucket_bytes = CX_DIST_BUCKET_BYTES;
    /* a bucket's count (floats + one flag per parameter) must fit an int */
    if (bucket_bytes > (size_t)1 << 30) bucket_bytes = (size_t)1 << 30; /* 2^28 floats */
    /* the checks first: a fatal error leaves nothing allocated */
    for (int i = 0; i < params->n; i++)
        if (params->t[i]->numel >= INT_MAX - 1)
            cx_fatal("cx_dist_reducer_new: parameter %d ('%s') has %lld elements, more than one all-reduce takes", i,
                     params->t[i]->name ? params->t[i]->name : "?", (long long)params->t[i]->numel);
    size_t cap = 16;
    while (cap < 2 * (size_t)params->n) cap *= 2;
    cx_tensor **key = cx_xcalloc(cap, sizeof *key);
    int *val = cx_xcalloc(cap, sizeof *val);
    for (int i = 0; i < params->n; i++) {
        cx_tensor *t = params->t[i];
        size_t h = (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (key[h] && key[h] != t) h = (h + 1) & (cap - 1);
        if (key[h]) {
            free(key);
            free(val);
            cx_fatal("cx_dist_reducer_new: tensor %d ('%s') is in the list twice", i, t->name ? t->name : "?");
        }
        key[h] = t;
        val[h] = i;
    }
    cx_dist_reducer *r = cx_xcalloc(1, sizeof *r);
    r->key = key;
    r->val = val;
    r->cap = cap;
    r->n = params->n;
    r->p = cx_xmalloc((size_t)(r->n ? r->n : 1) * sizeof *r->p);
    if (r->n) memcpy(r->p, params->t, (size_t)r->n * sizeof *r->p);
    r->bucket_of = cx_xmalloc((size_t)(r->n ? r->n : 1) * sizeof *r->bucket_of);
    r->offset = cx_xmalloc((size_t)(r->n ? r->n : 1) * sizeof *r->offset);
    r->done = cx_xcalloc((size_t)(r->n ? r->n : 1), sizeof *r->done);
    /* buckets in reverse list order: the last parameters (the output layer)
     * usually finish first in backward */
    r->b = cx_xcalloc((size_t)(r->n ? r->n : 1), sizeof *r->b);
    for (int i = r->n - 1; i >= 0;) {
        bucket *bk = &r->b[r->nb];
        bk->last = i;
        size_t bytes = 0;
        int64_t off = 0;
        while (i >= 0 && (bytes == 0 || bytes + (size_t)r->p[i]->numel * 4 <= bucket_bytes)) {
            bytes += (size_t)r->p[i]->numel * 4;
            r->bucket_of[i] = r->nb;
            i--;
        }
        bk->first = i + 1;
        for (int j = bk->first; j <= bk->last; j++) {
            r->offset[j] = off;
            off += r->p[j]->numel;
        }
        bk->numel = off; /* one parameter below INT_MAX - 1, or at most 2^28 floats (bucket_bytes capped above) */
        bk->buf = cx_xmalloc((size_t)(bk->numel + (bk->last - bk->first + 1)) * sizeof(float));
        r->nb++;
    }
    return r;
}

int cx_dist_reducer_buckets(const cx_dist_reducer *r) { return r->nb; }
cx_dist_stats cx_dist_reducer_stats(const cx_dist_reducer *r) { return r->st; }
void cx_dist_reducer_reset_stats(cx_dist_reducer *r) { memset(&r->st, 0, sizeof r->st); }

static void wait_all(cx_dist_reducer *r) {
#ifdef CX_HAVE_MPI
    for (int k = 0; k < r->nb; k++)
        if (r->b[k].started && multi()) MPI_CHECK(MPI_Wait(&r->b[k].req, MPI_STATUS_IGNORE));
#endif
    for (int k = 0; k < r->nb; k++) r->b[k].started = false;
}

void cx_dist_reducer_free(cx_dist_reducer *r) {
    if (!r) return;
    if (r->armed) {
        cx_autograd_set_leaf_hook(NULL, NULL);
        /* buckets already started must complete on every rank */
        wait_all(r);
    }
    for (int k = 0; k < r->nb; k++) free(r->b[k].buf);
    free(r->b);
    free(r->key);
    free(r->val);
    free(r->done);
    free(r->offset);
    free(r->bucket_of);
    free(r->p);
    free(r);
}

static void start_bucket(cx_dist_reducer *r, bucket *bk) {
    if (r->t_first < 0) r->t_first = cx_now();
    bk->started = true;
#ifdef CX_HAVE_MPI
    if (multi())
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, bk->buf, (int)(bk->numel + (bk->last - bk->first + 1)), MPI_FLOAT, MPI_SUM,
                                 MPI_COMM_WORLD, &bk->req));
#endif
}

/* Start the buckets that are full, in order; give MPI a chance to move the
 * ones in flight (without a progress thread they advance inside MPI calls). */
static void start_ready(cx_dist_reducer *r, bool early) {
    while (r->next < r->nb && r->b[r->next].pending == 0) {
        start_bucket(r, &r->b[r->next++]);
        if (early) r->st.buckets_early++;
        else r->st.buckets_late++;
    }
#ifdef CX_HAVE_MPI
    if (early && multi() && r->next > 0) {
        int flag; /* a finished request becomes MPI_REQUEST_NULL (MPI_Wait returns at once) */
        MPI_CHECK(MPI_Test(&r->b[r->next - 1].req, &flag, MPI_STATUS_IGNORE));
    }
#endif
}

/* Parameter i's gradient is final for this step: scaled into its bucket. */
static void take(cx_dist_reducer *r, int i) {
    bucket *bk = &r->b[r->bucket_of[i]];
    const cx_tensor *t = r->p[i];
    float *dst = bk->buf + r->offset[i], w = r->weight;
    if (t->grad)
        for (int64_t e = 0; e < t->numel; e++) dst[e] = w * t->grad[e];
    else
        memset(dst, 0, (size_t)t->numel * sizeof *dst);
    bk->buf[bk->numel + (i - bk->first)] = t->grad ? 1.0f : 0.0f; /* "had a gradient" */
    r->done[i] = true;
    bk->pending--;
}

static void leaf_done(cx_tensor *leaf, void *user) {
    cx_dist_reducer *r = user;
    int i = param_index(r, leaf);
    if (i < 0) return; /* an input or a tensor this reducer does not average */
    if (r->done[i])
        cx_fatal("cx_dist_reducer: the gradient of parameter %d ('%s') was finished twice in one step (one backward "
                 "between cx_dist_reducer_begin and cx_dist_reducer_finish)",
                 i, leaf->name ? leaf->name : "?");
    take(r, i);
    start_ready(r, true);
}

void cx_dist_reducer_begin(cx_dist_reducer *r, float weight) {
    if (!r) cx_fatal("cx_dist_reducer_begin: NULL reducer");
    if (r->armed) cx_fatal("cx_dist_reducer_begin: the previous step was not finished (cx_dist_reducer_finish)");
    if (!(weight <= 1.0f)) cx_fatal("cx_dist_reducer_begin: weight %g (this rank's share of the batch, <= 1)", (double)weight);
    r->weight = weight < 0 ? 1.0f / (float)g_size : weight;
    g_bn_weight = r->weight;
    for (int i = 0; i < r->n; i++) r->done[i] = false;
    for (int k = 0; k < r->nb; k++) r->b[k].pending = r->b[k].last - r->b[k].first + 1;
    r->next = 0;
    r->t_first = -1;
    r->armed = true;
    cx_autograd_set_leaf_hook(leaf_done, r);
}

void cx_dist_reducer_finish(cx_dist_reducer *r) {
    if (!r) cx_fatal("cx_dist_reducer_finish: NULL reducer");
    if (!r->armed) cx_fatal("cx_dist_reducer_finish: no cx_dist_reducer_begin before it");
    cx_autograd_set_leaf_hook(NULL, NULL);
    r->armed = false;
    g_bn_weight = -1.0f;
    /* parameters backward did not reach, or whose gradient something else wrote */
    for (int i = 0; i < r->n; i++)
        if (!r->done[i]) take(r, i);
    start_ready(r, false);
    double t0 = cx_now();
    wait_all(r);
    double t1 = cx_now();
    r->st.wait_seconds += t1 - t0;
    r->st.reduce_seconds += t1 - (r->t_first < 0 ? t0 : r->t_first);
    r->st.steps++;
    for (int k = 0; k < r->nb; k++) {
        const bucket *bk = &r->b[k];
        for (int i = bk->first; i <= bk->last; i++) {
            cx_tensor *t = r->p[i];
            if (bk->buf[bk->numel + (i - bk->first)] == 0.0f) continue; /* no rank had one: stays NULL */
            memcpy(cx_grad_ensure(t), bk->buf + r->offset[i], (size_t)t->numel * sizeof(float));
        }
    }
}
