/* Shared harness of the CLI tests: run `$CORTEX_BIN <prefix> <args>` as a
 * subprocess (stderr through a pipe, stdout to a file), and check one-line
 * errors. A test file sets cli_prefix ("" or "charlm ") and cli_err_prefix
 * ("cortex", "cortex viz", ...) and calls cli_setup() first. */
#ifndef CX_CLI_HARNESS_H
#define CX_CLI_HARNESS_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char bin[4096];
static char tmpdir[256];
static const char *cli_prefix = "";
static const char *cli_err_prefix = "cortex";

typedef struct {
    int status;      /* raw wait status from pclose */
    int code;        /* exit code, or -1 if not a normal exit */
    char err[8192];  /* stderr */
    char out[32768]; /* stdout */
} run_result;

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static size_t read_text(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return n;
}

static void run(run_result *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void run(run_result *r, const char *fmt, ...) {
    char args[4096], cmd[8192 + 600], outp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    tmp_path(outp, sizeof outp, "stdout.txt");
    snprintf(cmd, sizeof cmd, "'%s' %s%s 2>&1 >'%s'", bin, cli_prefix, args, outp);
    memset(r, 0, sizeof *r);
    r->code = -1;
    FILE *p = popen(cmd, "r");
    if (!p) {
        CHECK_MSG(0, "popen failed for %s", cmd);
        return;
    }
    size_t n = fread(r->err, 1, sizeof r->err - 1, p);
    r->err[n] = 0;
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    r->status = pclose(p);
    if (r->status != -1 && WIFEXITED(r->status)) r->code = WEXITSTATUS(r->status);
    read_text(outp, r->out, sizeof r->out);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A clean failure: exit code 1 or 2 (not a signal), and exactly one line on
 * stderr that starts with cli_err_prefix and holds each of the needles. */
static void expect_one_line_error(const run_result *r, const char *what, const char *const *needles) {
    CHECK_MSG(r->code == 1 || r->code == 2, "%s: exit code %d (status %d), stderr: %s", what, r->code, r->status,
              r->err);
    size_t len = strlen(r->err);
    CHECK_MSG(count_lines(r->err) == 1 && len > 0 && r->err[len - 1] == '\n', "%s: expected one stderr line, got: '%s'",
              what, r->err);
    CHECK_MSG(strncmp(r->err, cli_err_prefix, strlen(cli_err_prefix)) == 0, "%s: stderr does not start with '%s': %s",
              what, cli_err_prefix, r->err);
    for (int i = 0; needles && needles[i]; i++)
        CHECK_MSG(strstr(r->err, needles[i]) != NULL, "%s: stderr lacks '%s': %s", what, needles[i], r->err);
}
#define EXPECT_ERR(r, what, ...) expect_one_line_error(r, what, (const char *const[]){__VA_ARGS__, NULL})

/* $CORTEX_BIN and a fresh temp directory; false (after printing why) if unusable. */
static bool cli_setup(const char *name) {
    const char *env = getenv("CORTEX_BIN");
    if (!env || !*env || access(env, X_OK) != 0) {
        fprintf(stderr, "%s: CORTEX_BIN is not set to the cortex binary (run through 'make test')\n", name);
        return false;
    }
    snprintf(bin, sizeof bin, "%s", env);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_%s_XXXXXX", name);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return false;
    }
    return true;
}

static void cli_teardown(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}
#endif
