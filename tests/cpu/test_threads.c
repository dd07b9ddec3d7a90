/* The adaptive thread count (src/cpu/threads.c): with the cores oversubscribed
 * it falls back to 1 thread at a step boundary, retries the asked count after
 * its back-off, keeps cx_get_threads at the asked count, and does nothing
 * when turned off. The oversubscription is made here: 2 x cores + 2 threads
 * of this process spinning, so this process's threads wait for a CPU most of
 * the time whatever else the machine runs. Also CX_PFOR_BACK (internal.h):
 * each index once, last to first within each thread's block, and the block
 * the same thread gets from a static "parallel for" over the same range. And
 * cx_tscratch (cpu.h): each thread's own scratch, kept from call to call. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/cpu.h"         /* cx_tscratch */
#include "tensor/internal.h" /* CX_PFOR_BACK */
#include "test.h"

static atomic_int stop_spin;

static void *spin(void *arg) {
    (void)arg;
    volatile unsigned long x = 0;
    while (!atomic_load_explicit(&stop_spin, memory_order_relaxed)) x++;
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

enum { MAX_SPIN = 130 };
static pthread_t spinners[MAX_SPIN];
static int nspin;

static void start_load(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    nspin = (int)(2 * cores + 2 < MAX_SPIN ? 2 * cores + 2 : MAX_SPIN);
    atomic_store(&stop_spin, 0);
    for (int i = 0; i < nspin; i++)
        if (pthread_create(&spinners[i], NULL, spin, NULL)) nspin = i;
}

static void stop_load(void) {
    atomic_store(&stop_spin, 1);
    for (int i = 0; i < nspin; i++) pthread_join(spinners[i], NULL);
    nspin = 0;
}

/* Steps (a tick each) until cx_threads_in_use() == want (want 0: never) or
 * the deadline; returns whether it got there. */
static bool step_until(int want, double seconds) {
    double t_end = now_s() + seconds;
    while (now_s() < t_end) {
        cx_step_reset();
        if (want && cx_threads_in_use() == want) return true;
        nap_ms(5);
    }
    return false;
}

#ifdef _OPENMP
static bool schedstat_available(void) { return access("/proc/self/schedstat", R_OK) == 0; }
#endif

static void test_falls_back_and_retries(void) {
#ifdef _OPENMP
    if (!schedstat_available()) {
        fprintf(stderr, "  (no /proc/self/schedstat: the governor stays off; skipped)\n");
        return;
    }
    cx_set_threads_adaptive(true);
    cx_set_threads(2);
    CHECK(cx_threads_in_use() == 2);
    const long d0 = cx_threads_adaptive_drops();
    start_load();
    bool dropped = step_until(1, 5.0);
    CHECK(dropped);
    CHECK(cx_threads_adaptive_drops() > d0);
    CHECK(cx_get_threads() == 2); /* the asked count is still reported */
    stop_load();
    /* after the back-off (1 s) the asked count is tried again */
    bool retried = step_until(2, 3.0);
    CHECK(retried);
    cx_set_threads(1);
#endif
}

/* Under load for `seconds` with the adaptive count on or off and `threads`
 * asked: no fallback, the loops keep the asked count. */
static void check_no_fallback(bool adaptive, int threads, double seconds) {
    cx_set_threads_adaptive(adaptive);
    cx_set_threads(threads);
    const long d0 = cx_threads_adaptive_drops();
    start_load();
    (void)step_until(0, seconds);
    stop_load();
    CHECK(cx_threads_adaptive_drops() == d0);
    CHECK(cx_threads_in_use() == threads);
    CHECK(cx_get_threads() == threads);
    cx_set_threads_adaptive(true);
    cx_set_threads(1);
}

static void test_off(void) {
#ifdef _OPENMP
    check_no_fallback(false, 2, 0.4);
#endif
}

/* One thread asked: nothing to adapt. */
static void test_one_thread(void) { check_no_fallback(true, 1, 0.3); }

static int thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Every index once; per thread decreasing, on the thread a plain "parallel
 * for" (static schedule) gives it, for 1 to 3 threads and ranges shorter and
 * longer than the thread count. */
static void test_pfor_back(void) {
    enum { NMAX = 1000 };
    static int owner[NMAX], seen[NMAX], order[NMAX];
    const int ns[] = {0, 1, 2, 3, 7, 49, 98, 196, NMAX};
    for (int threads = 1; threads <= 3; threads++) {
        cx_set_threads(threads);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            const int n = ns[k];
            for (int i = 0; i < n; i++) owner[i] = seen[i] = order[i] = -1;
            CX_OMP(parallel for)
            for (int i = 0; i < n; i++) owner[i] = thread_num();
            _Atomic int tick = 0;
            CX_PFOR_BACK(n > 0, int, i, n, {
                seen[i] = thread_num();
                order[i] = atomic_fetch_add(&tick, 1);
            });
            int bad = 0;
            for (int i = 0; i < n; i++) {
                if (seen[i] < 0) bad++; /* not visited */
                if (seen[i] != owner[i]) bad++;
                /* within a thread's block the higher index comes first */
                if (i + 1 < n && seen[i] == seen[i + 1] && order[i] < order[i + 1]) bad++;
            }
            CHECK(bad == 0);
            CHECK(atomic_load(&tick) == n);
        }
    }
    cx_set_threads(1);
}

static void *tscratch_thread(void *arg) {
    void **got = arg;
    char *p = cx_tscratch(0, 4096);
    memset(p, 7, 4096);
    got[0] = p;
    got[1] = cx_tscratch(0, 100);
    return NULL;
}

/* The same 64-byte aligned memory on every call while it is big enough, a
 * bigger block when asked for more; one per slot; one per thread (an
 * exiting thread's is freed by its destructor: ASan's leak check in CI). */
static void test_tscratch(void) {
    char *a = cx_tscratch(0, 1000);
    CHECK(((uintptr_t)a & 63) == 0);
    memset(a, 1, 1000);
    CHECK(cx_tscratch(0, 10) == a);
    CHECK(cx_tscratch(0, 1000) == a);
    char *b = cx_tscratch(1, 1000);
    CHECK(b != a);
    memset(b, 2, 1000);
    CHECK(a[999] == 1);
    char *big = cx_tscratch(0, (size_t)1 << 20);
    CHECK(((uintptr_t)big & 63) == 0);
    memset(big, 3, (size_t)1 << 20);
    CHECK(cx_tscratch(0, 1000) == big);
    void *got[2] = {NULL, NULL};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, tscratch_thread, got) == 0);
    pthread_join(th, NULL);
    CHECK(got[0] != NULL && got[0] == got[1]);
    CHECK(got[0] != (void *)big && got[0] != (void *)b);
    CHECK(cx_tscratch(0, 1000) == big && big[(1 << 20) - 1] == 3);
    /* the threads of one parallel region: each its own */
    void *mine[2] = {NULL, NULL};
    int nt = 1;
    cx_set_threads(2);
    CX_OMP(parallel num_threads(2))
    {
        const int t = thread_num();
        if (t < 2) {
            mine[t] = cx_tscratch(2, 256);
            memset(mine[t], t + 1, 256);
        }
#ifdef _OPENMP
        CX_OMP(single)
        nt = omp_get_num_threads();
#endif
    }
    cx_set_threads(1);
    if (nt == 2) CHECK(mine[0] && mine[1] && mine[0] != mine[1]);
    EXPECT_FATAL(cx_tscratch(CX_TSCRATCH_SLOTS, 8), "slot");
    EXPECT_FATAL(cx_tscratch(-1, 8), "slot");
}

int main(void) {
    RUN(test_tscratch);
    RUN(test_pfor_back);
    RUN(test_falls_back_and_retries);
    RUN(test_off);
    RUN(test_one_thread);
    TEST_END();
}
