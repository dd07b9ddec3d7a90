/* Minimal test harness: each tests/<area>/<name>.c is one binary.
 * A test function passes when none of its checks failed. The binary prints
 * "RESULT <passed> <failed>" last; tools/run_tests.sh adds them up. */
#ifndef CX_TEST_H
#define CX_TEST_H
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cortex.h>

static int cxt_passed, cxt_failed, cxt_cur_failed;
static const char *cxt_cur;

#define CHECK(cond) do { if (!(cond)) { cxt_cur_failed++; \
    fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, cxt_cur, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { cxt_cur_failed++; \
    fprintf(stderr, "  FAIL %s:%d [%s]: %s -- ", __FILE__, __LINE__, cxt_cur, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double cxt_a = (double)(a), cxt_b = (double)(b); \
    if (!(fabs(cxt_a - cxt_b) <= (tol))) { cxt_cur_failed++; \
    fprintf(stderr, "  FAIL %s:%d [%s]: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__, \
        __LINE__, cxt_cur, #a, cxt_a, #b, cxt_b, (double)(tol)); } } while (0)
#define RUN(fn) do { cxt_cur = #fn; cxt_cur_failed = 0; cx_arena_reset(cx_arena_current()); fn(); \
    if (cxt_cur_failed) { cxt_failed++; fprintf(stderr, "FAILED %s\n", #fn); } \
    else { cxt_passed++; } } while (0)
#define TEST_END() do { printf("RESULT %d %d\n", cxt_passed, cxt_failed); \
    return cxt_failed ? 1 : 0; } while (0)

/* Compare n floats: |a-b| <= atol + rtol*|b|. Reports the worst element. */
static inline int cxt_allclose(const float *a, const float *b, long n, double rtol, double atol,
                               const char *what) {
    long worst = -1; double wv = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]), lim = atol + rtol * fabs((double)b[i]);
        if (!(d <= lim) && (worst < 0 || d - lim > wv)) { worst = i; wv = d - lim; }
    }
    if (worst >= 0) {
        cxt_cur_failed++;
        fprintf(stderr, "  FAIL [%s] %s: element %ld got %.9g expected %.9g\n", cxt_cur, what,
                worst, (double)a[worst], (double)b[worst]);
        return 0;
    }
    return 1;
}
/* As cxt_allclose, with rel * scale[i] added to element i's limit: for sums
 * whose rounding error is bounded relative to the sum of the absolute
 * values of their terms (scale), such as Winograd convolutions. */
static inline int cxt_allclose_terms(const float *a, const float *b, const float *scale, long n, double rtol,
                                     double atol, double rel, const char *what) {
    long worst = -1; double wv = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]), lim = atol + rtol * fabs((double)b[i]) + rel * scale[i];
        if (!(d <= lim) && (worst < 0 || d - lim > wv)) { worst = i; wv = d - lim; }
    }
    if (worst >= 0) {
        cxt_cur_failed++;
        fprintf(stderr, "  FAIL [%s] %s: element %ld got %.9g expected %.9g (sum of |terms| %.6g)\n", cxt_cur, what,
                worst, (double)a[worst], (double)b[worst], (double)scale[worst]);
        return 0;
    }
    return 1;
}
/* ---- fatal-error capture: EXPECT_FATAL(stmt, "substring", ...) runs `stmt`,
 * which must stop through the error handler (cx_fatal) with a message, and
 * cx_last_error(), containing every given substring. */
/* Fixture files hold a case's tensors as "<case>.<what>": the tensor, or
 * NULL when the file (fx may be NULL) or the entry is missing. */
static inline cx_tensor *cxt_fx(cx_st_file *fx, const char *c, const char *what) {
    char key[400];
    snprintf(key, sizeof key, "%s.%s", c, what);
    return fx ? cx_st_get(fx, key) : NULL;
}
/* The same for a 1-element I64 entry (a case parameter); -999 when absent. */
static inline long cxt_fx_int(cx_st_file *fx, const char *c, const char *what) {
    cx_tensor *t = cxt_fx(fx, c, what);
    return t && t->dtype == CX_I64 && t->numel == 1 ? (long)CX_I64P(t)[0] : -999;
}

#include <setjmp.h>
static jmp_buf err_jb;
static char err_msg[1024] __attribute__((unused));
static int err_count __attribute__((unused));

static __attribute__((unused)) void on_error(const char *message, void *user) {
    (void)user;
    snprintf(err_msg, sizeof err_msg, "%s", message);
    err_count++;
    longjmp(err_jb, 1);
}

#define EXPECT_FATAL(stmt, ...) do { \
    err_msg[0] = 0; \
    int before_ = err_count; \
    cx_set_error_handler(on_error, NULL); \
    if (setjmp(err_jb) == 0) { \
        stmt; \
        cx_set_error_handler(NULL, NULL); \
        CHECK_MSG(0, "no error raised by: %s", #stmt); \
    } else { \
        cx_set_error_handler(NULL, NULL); \
        CHECK(err_count == before_ + 1); \
        const char *subs_[] = {__VA_ARGS__}; \
        for (size_t k_ = 0; k_ < sizeof subs_ / sizeof subs_[0]; k_++) { \
            CHECK_MSG(strstr(err_msg, subs_[k_]) != NULL, "message '%s' lacks '%s'", err_msg, subs_[k_]); \
            CHECK_MSG(strstr(cx_last_error(), subs_[k_]) != NULL, "cx_last_error '%s' lacks '%s'", \
                      cx_last_error(), subs_[k_]); \
        } \
    } \
} while (0)
#endif
