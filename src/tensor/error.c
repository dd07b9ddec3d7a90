/* Error reporting: returned statuses with a thread-local message, and the
 * fatal handler for programming errors. */
#include "internal.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static _Thread_local char last_error[1024] = "no error";
static cx_error_handler handler;
static void *handler_user;
static void (*fatal_exit)(const char *msg);

void cx_set_fatal_exit(void (*fn)(const char *msg)) { fatal_exit = fn; }

const char *cx_last_error(void) { return last_error; }

cx_status cx_set_error(cx_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

void cx_set_error_handler(cx_error_handler h, void *user) {
    handler = h;
    handler_user = user;
}

cx_error_handler cx_get_error_handler(void **user) {
    if (user) *user = handler_user;
    return handler;
}

/* ---- recoverable errors: cx_try installs a trap on this thread's stack of
 * traps; a failed check inside it jumps back to it. */
typedef struct trap {
    jmp_buf jb;
    struct trap *prev;
    int level;            /* OpenMP nesting level of the cx_try */
    cx_arena *arena;      /* the arena and mark a failure rewinds to */
    cx_arena_mark mark;
    cx_tensor **claimed;  /* step tensors given a gradient buffer inside the try */
    int n_claimed, cap_claimed;
} trap;
static _Thread_local trap *tl_trap;

static int omp_level(void) {
#ifdef _OPENMP
    return omp_get_level();
#else
    return 0;
#endif
}

void cx_try_note_grad(cx_tensor *t) {
    trap *tp = tl_trap;
    if (!tp) return;
    if (tp->n_claimed == tp->cap_claimed) {
        int cap = tp->cap_claimed ? 2 * tp->cap_claimed : 64;
        cx_tensor **v = realloc(tp->claimed, (size_t)cap * sizeof *v);
        if (!v) return; /* out of memory: the rewind below cannot clear this one */
        tp->claimed = v;
        tp->cap_claimed = cap;
    }
    tp->claimed[tp->n_claimed++] = t;
}

static _Noreturn void fail_with(cx_status st, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(last_error, sizeof last_error, "%s", msg);
    /* jump to the innermost trap of this thread, but only from the OpenMP
     * level where that cx_try was called (never out of a parallel region
     * that the library or the caller opened inside it) */
    if (tl_trap && tl_trap->level == omp_level()) longjmp(tl_trap->jb, (int)st);

    if (handler) handler(msg, handler_user);
    fflush(stdout);
    if (fatal_exit) fatal_exit(msg);
    fprintf(stderr, "cortex: %s\n", msg);
    exit(1);
}

void cx_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_with(CX_ERR_INVALID, fmt, ap);
}

void cx_raise(cx_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fail_with(st == CX_OK ? CX_ERR_INVALID : st, fmt, ap);
}

bool cx_in_try(void) { return tl_trap != NULL; }

cx_status cx_try(cx_try_fn fn, void *user) {
    /* what a failure restores */
    cx_autograd_state ag = cx_autograd_state_get();
    cx_rng *rng = cx_rng_current();
    trap t;
    memset(&t, 0, sizeof t);
    t.prev = tl_trap;
    t.level = omp_level();
    t.arena = cx_arena_current();
    t.mark = cx_arena_get_mark(t.arena);
    tl_trap = &t;
    int jumped = setjmp(t.jb);
    if (!jumped) {
        cx_status st = fn(user);
        tl_trap = t.prev;
        /* an enclosing try that fails must also clear these */
        for (int i = 0; i < t.n_claimed; i++) cx_try_note_grad(t.claimed[i]);
        free(t.claimed);
        return st;
    }
    tl_trap = t.prev;
    /* a tensor made before the try whose gradient buffer was claimed inside
     * it (a backward that failed) must not keep a pointer into the memory the
     * rewind releases */
    for (int i = 0; i < t.n_claimed; i++) {
        cx_tensor *c = t.claimed[i];
        if (!cx_arena_after_mark(t.arena, t.mark, c) && cx_arena_after_mark(t.arena, t.mark, c->grad)) c->grad = NULL;
    }
    free(t.claimed);
    cx_arena_use(t.arena);
    cx_arena_rewind(t.arena, t.mark);
    cx_autograd_state_set(ag);
    cx_rng_use(rng);
    return (cx_status)jumped;
}

void *cx_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) cx_fatal("out of memory allocating %zu bytes", n);
    return p;
}
void *cx_xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) cx_fatal("out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}
void *cx_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) cx_fatal("out of memory reallocating %zu bytes", n);
    return q;
}
char *cx_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = cx_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
