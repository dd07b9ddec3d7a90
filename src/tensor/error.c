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
    cx_status st;
} trap;
static _Thread_local trap *tl_trap;

static _Noreturn void fail_with(cx_status st, const char *fmt, va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(last_error, sizeof last_error, "%s", msg);
    /* jump to the innermost trap of this thread, never out of a parallel
     * region (a worker thread has no trap; the team must not be left) */
    bool in_par = false;
#ifdef _OPENMP
    in_par = omp_in_parallel();
#endif
    if (tl_trap && !in_par) {
        tl_trap->st = st;
        longjmp(tl_trap->jb, 1);
    }
    if (handler) handler(msg, handler_user);
    fflush(stdout);
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
    cx_arena *ar = cx_arena_current();
    cx_arena_mark mark = cx_arena_get_mark(ar);
    cx_autograd_state ag = cx_autograd_state_get();
    cx_rng *rng = cx_rng_current();
    trap t;
    t.prev = tl_trap;
    t.st = CX_OK;
    tl_trap = &t;
    if (setjmp(t.jb) == 0) {
        cx_status st = fn(user);
        tl_trap = t.prev;
        return st;
    }
    tl_trap = t.prev;
    cx_arena_use(ar);
    cx_arena_rewind(ar, mark);
    cx_autograd_state_set(ag);
    cx_rng_use(rng);
    return t.st;
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
