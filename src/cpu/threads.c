/*
 * cpu/threads.c -- thread count of the OpenMP loops and of the BLAS.
 */
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef CX_HAVE_CBLAS
#include <cblas.h>
#endif
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"

/* 0 until cx_set_threads is called on this thread (OpenMP builds report the
 * OpenMP default, itself a per-thread setting). */
static _Thread_local int g_threads = 0;

/* ---- adaptive thread count (OpenMP builds on Linux)
 * When the cores are shared with other work, a parallel region waits for its
 * slowest thread: one thread taken off its core for a scheduler time slice
 * stalls every region it is in, and the waiting threads spin. A recurrent
 * layer with a few regions per time step then runs many times slower at 2
 * threads than at 1. The governor watches for that, between training steps
 * (cx_step_reset): every GOV_WINDOW seconds it reads how long this process's
 * threads waited for a CPU (run_delay, the second field of
 * /proc/self/task/<tid>/schedstat). If they waited more than GOV_WAIT of the
 * window per requested thread, the cores are oversubscribed and the loops run
 * on 1 thread; after a back-off (GOV_BACKOFF seconds, doubling up to
 * GOV_BACKOFF_MAX while the probes keep finding the cores busy) it tries the
 * requested count again for one window. Only the thread count changes: with
 * the built-in GEMM every result is the same for any count. On by default;
 * cx_set_threads_adaptive(false) or CX_THREADS_ADAPTIVE=0 turns it off. */
#define GOV_WINDOW 0.1
#define GOV_WAIT 0.15
#define GOV_BACKOFF 1.0
#define GOV_BACKOFF_MAX 16.0

static _Thread_local struct {
    int eff;             /* loops use this many threads now (0: governor idle) */
    double t0;           /* start of the window, 0: no window yet */
    unsigned long long delay0; /* run_delay of the process at t0, ns */
    double probe_at;     /* while eff == 1: when to try g_threads again */
    double backoff;
    long drops;
} gov;
/* process-wide switches, read by every thread's tick: -1 until the
 * environment (CX_THREADS_ADAPTIVE, CX_THREADS_DEBUG) has been read */
static _Atomic int gov_disabled = -1;

#ifdef _OPENMP
static _Atomic int gov_debug = -1;

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sum of run_delay (ns) over this process's threads; false when the kernel
 * does not provide schedstat. */
static bool process_run_delay(unsigned long long *out) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return false;
    unsigned long long sum = 0;
    bool any = false;
    char path[64], buf[128];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/self/task/%.20s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        unsigned long long run = 0, wait = 0;
        if (fgets(buf, sizeof buf, f) && sscanf(buf, "%llu %llu", &run, &wait) == 2) {
            sum += wait;
            any = true;
        }
        fclose(f);
    }
    closedir(d);
    *out = sum;
    return any;
}

static bool gov_on(void) {
    if (gov_disabled < 0) {
        const char *e = getenv("CX_THREADS_ADAPTIVE");
        gov_disabled = e && !strcmp(e, "0");
    }
    return !gov_disabled;
}
#endif

static void apply_count(int n) {
    (void)n; /* a build with neither OpenMP nor a BLAS has nothing to set */
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef CX_HAVE_CBLAS
    openblas_set_num_threads(n);
#endif
}

void cx_set_threads_adaptive(bool on) {
    gov_disabled = !on;
    if (!on && gov.eff && g_threads > 0 && gov.eff != g_threads) apply_count(g_threads);
    gov.eff = 0;
    gov.t0 = 0;
}

int cx_threads_in_use(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

long cx_threads_adaptive_drops(void) { return gov.drops; }

void cx_cpu_threads_tick(void) {
#ifdef _OPENMP
    if (g_threads <= 1 || !gov_on() || omp_in_parallel()) return;
    const double now = mono_now();
    if (gov.eff == 0) { /* first step since cx_set_threads (which cleared t0) */
        gov.eff = g_threads;
        gov.backoff = GOV_BACKOFF;
    }
    if (gov.eff == 1) {
        if (now < gov.probe_at) return;
        gov.eff = g_threads; /* probe: one window at the requested count */
        apply_count(g_threads);
        gov.t0 = 0;
    }
    unsigned long long d;
    if (gov.t0 == 0) {
        if (!process_run_delay(&d)) { gov_disabled = 1; return; } /* no schedstat: stay off */
        gov.t0 = now;
        gov.delay0 = d;
        return;
    }
    const double dt = now - gov.t0;
    if (dt < GOV_WINDOW) return;
    if (!process_run_delay(&d)) return;
    const double waited = (double)(d - gov.delay0) * 1e-9 / (dt * g_threads);
    gov.t0 = now;
    gov.delay0 = d;
    if (gov_debug < 0) gov_debug = getenv("CX_THREADS_DEBUG") != NULL;
    if (gov_debug)
        fprintf(stderr, "cortex threads: %d thread(s) waited %.0f%% of %.2f s for a CPU%s\n", g_threads,
                100.0 * waited, dt, waited > GOV_WAIT ? ": running on 1 thread" : "");
    if (waited > GOV_WAIT) {
        gov.eff = 1;
        gov.drops++;
        apply_count(1);
        gov.probe_at = now + gov.backoff;
        gov.backoff = gov.backoff * 2 < GOV_BACKOFF_MAX ? gov.backoff * 2 : GOV_BACKOFF_MAX;
    } else {
        gov.backoff = GOV_BACKOFF;
    }
#endif
}

static int all_cores(void) {
#ifdef _OPENMP
    return omp_get_num_procs();
#elif defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#else
    return 1;
#endif
}

void cx_set_threads(int n) {
    if (n <= 0) n = all_cores();
    if (n < 1) n = 1;
    g_threads = n;
    apply_count(n);
    gov.eff = 0; /* the governor starts over at the next step */
    gov.t0 = 0;
}

int cx_get_threads(void) {
#ifdef _OPENMP
    /* The count cx_set_threads asked for, also while the adaptive count runs
     * the loops on fewer; before any call, OpenMP's (OMP_NUM_THREADS, a
     * per-thread setting). */
    return g_threads > 0 ? g_threads : omp_get_max_threads();
#else
    return g_threads > 0 ? g_threads : 1;
#endif
}

int cx_cpu_threads_available(void) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

const char *cx_blas_name(void) {
#ifdef CX_HAVE_CBLAS
    return "openblas";
#else
    return "builtin";
#endif
}

/* ---- per-thread scratch (cpu.h) */
typedef struct tscr {
    void *p[CX_TSCRATCH_SLOTS];
    size_t cap[CX_TSCRATCH_SLOTS];
    struct tscr *prev, *next; /* every live thread's, reachable from ts_all */
} tscr;

static pthread_once_t ts_once = PTHREAD_ONCE_INIT;
static pthread_key_t ts_key;
static pthread_mutex_t ts_lock = PTHREAD_MUTEX_INITIALIZER;
static tscr *ts_all;
static _Thread_local tscr *ts_mine;

static void ts_free(void *arg) {
    tscr *t = arg;
    pthread_mutex_lock(&ts_lock);
    if (t->prev) t->prev->next = t->next;
    else ts_all = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&ts_lock);
    for (int i = 0; i < CX_TSCRATCH_SLOTS; i++) free(t->p[i]);
    free(t);
}

static void ts_init(void) {
    if (pthread_key_create(&ts_key, ts_free)) cx_fatal("cx_tscratch: no thread-specific key left");
}

void *cx_tscratch(int slot, size_t bytes) {
    if (slot < 0 || slot >= CX_TSCRATCH_SLOTS) cx_fatal("cx_tscratch: slot %d out of range", slot);
    tscr *t = ts_mine;
    if (!t) {
        pthread_once(&ts_once, ts_init);
        t = calloc(1, sizeof *t);
        if (!t) cx_fatal("cx_tscratch: out of memory");
        pthread_mutex_lock(&ts_lock);
        t->next = ts_all;
        if (ts_all) ts_all->prev = t;
        ts_all = t;
        pthread_mutex_unlock(&ts_lock);
        pthread_setspecific(ts_key, t);
        ts_mine = t;
    }
    if (bytes > t->cap[slot] || !t->p[slot]) {
        const size_t n = (bytes + 63) / 64 * 64 + 64;
        free(t->p[slot]);
        t->p[slot] = aligned_alloc(64, n);
        if (!t->p[slot]) cx_fatal("cx_tscratch: out of memory (%zu bytes)", n);
        t->cap[slot] = n;
    }
    return t->p[slot];
}
