/* Step arena: bump allocation in 64-byte aligned chunks, released at once. */
#define _DEFAULT_SOURCE /* madvise */
#include "internal.h"
#include <sys/mman.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include "cpu/cpu.h"

typedef struct chunk {
    struct chunk *prev;
    size_t size, off;
    /* data follows, 64-byte aligned */
} chunk;

struct cx_arena {
    chunk *head;     /* current (newest) chunk */
    size_t used;     /* bytes handed out since reset */
    size_t peak;
    size_t initial;
    unsigned gen;    /* resets so far (a mark from before a reset is void) */
};

#define HDR (((sizeof(chunk) + 63) / 64) * 64)

/* Chunks of at least two huge pages are aligned to one and offered to the
 * kernel's transparent huge pages (Linux; when THP is "madvise" only such
 * regions get them). A training step streams its activations through the
 * arena, and with 4 KiB pages it walks thousands of them: 2 MiB pages made
 * the small ResNet's step 2.5% faster at 1 and 2 threads (Intel Xeon VM).
 * CX_ARENA_THP=0 in the environment turns this off (for measurements). */
#define HUGE_BYTES ((size_t)2 << 20)
static bool thp_on(void) {
    static _Atomic int mode; /* 0: not read yet; 1: on; 2: off */
    int m = atomic_load_explicit(&mode, memory_order_relaxed);
    if (!m) {
        const char *e = getenv("CX_ARENA_THP");
        m = e && !strcmp(e, "0") ? 2 : 1;
        atomic_store_explicit(&mode, m, memory_order_relaxed);
    }
    return m == 1;
}
static chunk *chunk_new(size_t size, chunk *prev) {
    void *p = NULL;
    const bool huge = HDR + size >= 2 * HUGE_BYTES && thp_on();
    if (posix_memalign(&p, huge ? HUGE_BYTES : 64, HDR + size) != 0 || !p)
        cx_fatal("out of memory: arena chunk of %zu bytes", size);
#if defined(MADV_HUGEPAGE)
    if (huge) (void)madvise(p, (HDR + size) / HUGE_BYTES * HUGE_BYTES, MADV_HUGEPAGE);
#endif
    chunk *c = p;
    c->prev = prev;
    c->size = size;
    c->off = 0;
    return c;
}

cx_arena *cx_arena_new(size_t initial_bytes) {
    cx_arena *a = cx_xcalloc(1, sizeof *a);
    a->initial = initial_bytes ? initial_bytes : (1u << 20);
    a->head = chunk_new(a->initial, NULL);
    return a;
}

void cx_arena_free(cx_arena *a) {
    if (!a) return;
    chunk *c = a->head;
    while (c) {
        chunk *p = c->prev;
        free(c);
        c = p;
    }
    free(a);
}

void cx_arena_reset(cx_arena *a) {
    if (!a) return;
    if (a->head->prev) {
        /* coalesce: next step fits in one chunk */
        size_t total = 0;
        chunk *c = a->head;
        while (c) {
            chunk *p = c->prev;
            total += c->size;
            free(c);
            c = p;
        }
        a->head = chunk_new(total, NULL);
    }
    a->head->off = 0;
    a->used = 0;
    a->gen++;
}

/* CX_ARENA_POISON=1 fills every allocation with 0xFF bytes (a NaN as a
 * float), so that code reading step memory it never wrote gives NaN instead
 * of the zeros of fresh pages: `make test` runs with it (tools/run_tests.sh). */
static _Atomic int poison_mode; /* 0: not read yet; 1: on; 2: off */
static bool poison_on(void) {
    int m = atomic_load_explicit(&poison_mode, memory_order_relaxed);
    if (!m) {
        const char *e = getenv("CX_ARENA_POISON");
        m = e && *e && strcmp(e, "0") ? 1 : 2;
        atomic_store_explicit(&poison_mode, m, memory_order_relaxed);
    }
    return m == 1;
}

static void *arena_alloc(cx_arena *a, size_t bytes) {
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need == 0) need = 64;
    chunk *c = a->head;
    if (c->off + need > c->size) {
        size_t sz = c->size * 2;
        if (sz < need) sz = need;
        c = a->head = chunk_new(sz, c);
    }
    void *p = (char *)c + HDR + c->off;
    c->off += need;
    a->used += need;
    if (a->used > a->peak) a->peak = a->used;
    if (poison_on()) memset(p, 0xFF, need);
    return p;
}

/* Each thread has its own default arena, made on first use and freed when
 * the thread exits (pthread key destructor) or, for the thread that runs the
 * process's destructors (normally the main thread), at exit. */
static _Thread_local cx_arena *tl_default;
static _Thread_local cx_arena *current;
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_key_destroy(void *p) { cx_arena_free(p); }
static void arena_key_init(void) {
    if (pthread_key_create(&arena_key, arena_key_destroy) != 0) cx_fatal("cannot create the arena thread key");
}

cx_arena *cx_arena_current(void) {
    if (current) return current;
    if (!tl_default) {
        pthread_once(&arena_once, arena_key_init);
        tl_default = cx_arena_new(8u << 20);
        pthread_setspecific(arena_key, tl_default);
    }
    return tl_default;
}

cx_arena *cx_arena_use(cx_arena *a) {
    cx_arena *prev = cx_arena_current();
    current = a;
    return prev;
}

size_t cx_arena_used(const cx_arena *a) { return a ? a->used : 0; }
size_t cx_arena_peak(const cx_arena *a) { return a ? a->peak : 0; }
void cx_step_reset(void) {
    cx_arena_reset(cx_arena_current());
    cx_cpu_threads_tick();
}
void *cx_arena_alloc(size_t bytes) { return arena_alloc(cx_arena_current(), bytes); }

cx_arena_mark cx_arena_get_mark(cx_arena *a) {
    cx_arena_mark m = {a->head, a->head->off, a->used, a->gen};
    return m;
}

bool cx_arena_after_mark(const cx_arena *a, cx_arena_mark m, const void *p) {
    if (m.gen != a->gen) return true;
    const char *q = p;
    for (const chunk *c = a->head; c; c = c->prev) {
        const char *base = (const char *)c + HDR;
        if (c == m.chunk) return q >= base + m.off && q < base + c->size;
        if (q >= base && q < base + c->size) return true;
    }
    return false;
}

void cx_arena_rewind(cx_arena *a, cx_arena_mark m) {
    if (m.gen != a->gen) {
        /* the arena was reset since the mark: everything from before the mark
         * is gone already, so rewinding to it releases everything */
        cx_arena_reset(a);
        return;
    }
    while (a->head != m.chunk && a->head->prev) {
        chunk *p = a->head->prev;
        free(a->head);
        a->head = p;
    }
    a->head->off = m.off;
    a->used = m.used;
}

/* Free this thread's default arena at exit so leak checkers see a clean heap
 * (key destructors do not run for the thread that calls exit). */
__attribute__((destructor)) static void arena_fini(void) {
    if (!tl_default) return;
    pthread_setspecific(arena_key, NULL);
    cx_arena_free(tl_default);
    tl_default = NULL;
    current = NULL;
}
