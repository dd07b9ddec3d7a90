/* Error reporting: returned statuses with a thread-local message, and the
 * fatal handler for programming errors. */
#include "internal.h"
#include <stdarg.h>
#include <stdio.h>

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

void cx_fatal(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof last_error, "%s", msg);
    if (handler) handler(msg, handler_user);
    fflush(stdout);
    fprintf(stderr, "cortex: %s\n", msg);
    exit(1);
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
