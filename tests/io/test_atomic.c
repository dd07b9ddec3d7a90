/* Atomic writes: success, overwrite, abort, failures leave the original
 * untouched and no temp file behind; cx_read_file limits. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

static char g_dir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

/* Number of entries in the test directory whose name contains ".tmp." */
static int count_temps(void) {
    DIR *d = opendir(g_dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static int file_is(const char *path, const char *want) {
    void *d;
    size_t n;
    if (cx_read_file(path, &d, &n, 0) != CX_OK) return 0;
    int ok = n == strlen(want) && memcmp(d, want, n) == 0 && ((char *)d)[n] == 0;
    free(d);
    return ok;
}

static void test_write_and_overwrite(void) {
    char p[512];
    path_in(p, sizeof p, "a.txt");
    CHECK(cx_write_file_atomic(p, "first", 5) == CX_OK);
    CHECK(file_is(p, "first"));
    CHECK(cx_write_file_atomic(p, "second version", 14) == CX_OK);
    CHECK(file_is(p, "second version"));
    CHECK(cx_write_file_atomic(p, "", 0) == CX_OK);
    CHECK(file_is(p, ""));
    CHECK(count_temps() == 0);

    /* streamed, several MB */
    size_t n = 3u << 20;
    unsigned char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (unsigned char)(i * 131 + (i >> 9));
    cx_atomic_file *f = NULL;
    CHECK(cx_atomic_open(&f, p) == CX_OK);
    FILE *fp = cx_atomic_stream(f);
    CHECK(fp != NULL);
    if (!f || !fp) {
        free(big);
        return;
    }
    CHECK(fwrite(big, 1, n / 2, fp) == n / 2);
    CHECK(fwrite(big + n / 2, 1, n - n / 2, fp) == n - n / 2);
    CHECK(file_is(p, "")); /* nothing visible before commit */
    CHECK(count_temps() == 1);
    CHECK(cx_atomic_commit(f) == CX_OK);
    void *d;
    size_t got;
    CHECK(cx_read_file(p, &d, &got, 0) == CX_OK);
    CHECK(got == n && memcmp(d, big, n) == 0);
    free(d);
    free(big);
    CHECK(count_temps() == 0);
}

static void test_abort_keeps_original(void) {
    char p[512];
    path_in(p, sizeof p, "keep.txt");
    CHECK(cx_write_file_atomic(p, "original", 8) == CX_OK);
    cx_atomic_file *f = NULL;
    CHECK(cx_atomic_open(&f, p) == CX_OK);
    if (!f) return;
    fputs("half-written garbage", cx_atomic_stream(f));
    cx_atomic_abort(f);
    CHECK(file_is(p, "original"));
    CHECK(count_temps() == 0);
    cx_atomic_abort(NULL);
    CHECK(cx_atomic_commit(NULL) == CX_ERR_ARG);

    /* a stream error (here: reading a write-only stream) makes commit fail */
    f = NULL;
    CHECK(cx_atomic_open(&f, p) == CX_OK);
    if (!f) return;
    FILE *fp = cx_atomic_stream(f);
    fputs("bad data", fp);
    (void)fgetc(fp);
    CHECK(ferror(fp));
    CHECK(cx_atomic_commit(f) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), p) != NULL && strstr(cx_last_error(), "write failed"));
    CHECK(file_is(p, "original"));
    CHECK(count_temps() == 0);
}

static void test_crash_mid_write(void) {
    char p[512];
    path_in(p, sizeof p, "crash.txt");
    CHECK(cx_write_file_atomic(p, "before crash", 12) == CX_OK);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* child: start a save and die without committing */
        cx_atomic_file *f;
        if (cx_atomic_open(&f, p) != CX_OK) _exit(2);
        fputs("partial", cx_atomic_stream(f));
        fflush(cx_atomic_stream(f));
        _exit(0);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(file_is(p, "before crash"));
    /* the dead writer's temp file is left behind, but never replaces the target */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)pid);
    CHECK(file_is(tmp, "partial"));
    /* ... until the next save to the same target removes it (issue 14, item 11) */
    CHECK(cx_write_file_atomic(p, "after crash", 11) == CX_OK);
    CHECK(file_is(p, "after crash") && access(tmp, F_OK) != 0 && count_temps() == 0);
}

/* Only a dead process's temp file of this very target is removed. */
static void test_stale_temps(void) {
    char p[512], name[700];
    path_in(p, sizeof p, "model.st");
    fflush(NULL);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    CHECK(dead > 0);
    CHECK(waitpid(dead, NULL, 0) == dead); /* reaped: kill(dead, 0) fails with ESRCH */
    long live = (long)getppid();           /* the shell or make that runs us */
    const char *keep_fmt[] = {"%s.tmp.%ld.x", "%s.tmp.0%ld", "%s.tmpx.%ld", "%s2.tmp.%ld", "%s.TMP.%ld"};
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, keep_fmt[i], p, (long)dead);
        CHECK(cx_write_file_atomic(name, "other", 5) == CX_OK);
    }
    snprintf(name, sizeof name, "%s.tmp.%ld", p, live);
    CHECK(cx_write_file_atomic(name, "live", 4) == CX_OK);
    char dead_tmp[700], dead_dir[700];
    snprintf(dead_tmp, sizeof dead_tmp, "%s.tmp.%ld", p, (long)dead);
    CHECK(cx_write_file_atomic(dead_tmp, "stale", 5) == CX_OK);
    int before = count_temps();
    CHECK(cx_write_file_atomic(p, "model", 5) == CX_OK);
    CHECK(file_is(p, "model") && access(dead_tmp, F_OK) != 0);
    CHECK(count_temps() == before - 1);
    CHECK(file_is(name, "live"));
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, keep_fmt[i], p, (long)dead);
        CHECK(file_is(name, "other"));
        unlink(name);
    }
    snprintf(name, sizeof name, "%s.tmp.%ld", p, live);
    unlink(name);
    /* a directory under a stale temp's name is not removed */
    snprintf(dead_dir, sizeof dead_dir, "%s.tmp.%ld", p, (long)dead);
    CHECK(mkdir(dead_dir, 0700) == 0);
    CHECK(cx_write_file_atomic(p, "again", 5) == CX_OK);
    struct stat sb;
    CHECK(stat(dead_dir, &sb) == 0 && S_ISDIR(sb.st_mode));
    rmdir(dead_dir);
    unlink(p);
    /* a target in the current directory (no slash) */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(g_dir) == 0);
    snprintf(name, sizeof name, "m.bin.tmp.%ld", (long)dead);
    CHECK(cx_write_file_atomic(name, "stale", 5) == CX_OK);
    CHECK(cx_write_file_atomic("m.bin", "m", 1) == CX_OK);
    CHECK(access(name, F_OK) != 0);
    unlink("m.bin");
    CHECK(chdir(cwd) == 0);
}

static void test_failures(void) {
    /* nonexistent directory */
    const char *bad = "/nonexistent-cortex-dir/sub/file.bin";
    CHECK(cx_write_file_atomic(bad, "x", 1) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), bad) == cx_last_error());
    CHECK(strlen(cx_last_error()) > strlen(bad) + 5);
    cx_atomic_file *f = (cx_atomic_file *)0x1;
    CHECK(cx_atomic_open(&f, bad) == CX_ERR_IO && f == NULL);

    /* rename fails: the target is a non-empty directory; it survives, no temp left */
    char d[512], inner[600];
    path_in(d, sizeof d, "adir");
    CHECK(mkdir(d, 0755) == 0);
    snprintf(inner, sizeof inner, "%s/inside", d);
    CHECK(cx_write_file_atomic(inner, "in", 2) == CX_OK);
    CHECK(cx_write_file_atomic(d, "data", 4) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "rename") != NULL);
    CHECK(file_is(inner, "in"));
    CHECK(count_temps() == 0);
    unlink(inner);
    rmdir(d);
}

static void test_read_file(void) {
    char p[512];
    path_in(p, sizeof p, "r.bin");
    CHECK(cx_write_file_atomic(p, "0123456789", 10) == CX_OK);
    void *d = (void *)0x1;
    size_t n = 99;
    CHECK(cx_read_file(p, &d, &n, 10) == CX_OK);
    CHECK(n == 10 && memcmp(d, "0123456789", 11) == 0);
    free(d);
    CHECK(cx_read_file(p, &d, &n, 9) == CX_ERR_FORMAT && d == NULL && n == 0);
    CHECK(strstr(cx_last_error(), "too large") != NULL);
    CHECK(cx_read_file("/nonexistent/r.bin", &d, &n, 0) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "/nonexistent/r.bin") != NULL);
    CHECK(cx_read_file(g_dir, &d, &n, 0) == CX_ERR_IO);
    path_in(p, sizeof p, "zero.bin");
    CHECK(cx_write_file_atomic(p, "", 0) == CX_OK);
    CHECK(cx_read_file(p, &d, &n, 0) == CX_OK);
    CHECK(n == 0 && d != NULL && ((char *)d)[0] == 0);
    free(d);
    /* files whose st_size lies (procfs reports 0) are read to the end */
    if (access("/proc/self/status", R_OK) == 0) {
        CHECK(cx_read_file("/proc/self/status", &d, &n, 0) == CX_OK);
        CHECK(n > 20 && strncmp(d, "Name:", 5) == 0 && strlen(d) == n);
        free(d);
        CHECK(cx_read_file("/proc/self/status", &d, &n, 8) == CX_ERR_FORMAT);
    }
}

static void cleanup_dir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
}

/* A device or a FIFO is written in place, never replaced by a regular file
 * (as root, renaming over /dev/null would replace the device); a directory
 * stays a directory. */
static void test_special_files(void) {
    struct stat sb;
    CHECK(cx_write_file_atomic("/dev/null", "discarded\n", 10) == CX_OK);
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    cx_params ps;
    cx_params_init(&ps);
    cx_tensor *t = cx_param_new("w", CX_SHAPE(3));
    cx_params_add(&ps, t);
    CHECK(cx_params_save("/dev/null", &ps) == CX_OK);
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
    cx_params_free(&ps);
    cx_tensor_free(t);
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/pipe", g_dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    pid_t pid = fork();
    if (pid == 0) { /* the reader */
        FILE *r = fopen(fifo, "rb");
        char buf[64] = "";
        size_t n = r ? fread(buf, 1, sizeof buf - 1, r) : 0;
        _exit(n == 6 && !memcmp(buf, "piped\n", 6) ? 0 : 1);
    }
    CHECK(cx_write_file_atomic(fifo, "piped\n", 6) == CX_OK);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader did not get the bytes");
    CHECK(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode));
    unlink(fifo);
    CHECK(cx_write_file_atomic(g_dir, "x", 1) == CX_ERR_IO);
    CHECK(stat(g_dir, &sb) == 0 && S_ISDIR(sb.st_mode));
}

/* cx_mkdirs: nested directories, existing ones, a trailing and a doubled
 * slash; a file in the way and an empty path are named errors. */
static void test_mkdirs(void) {
    char a[400], f[400], bad[420];
    struct stat sb;
    path_in(a, sizeof a, "m1/m2//m3/");
    CHECK(cx_mkdirs(a) == CX_OK);
    CHECK(stat(a, &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(cx_mkdirs(a) == CX_OK); /* already there */
    path_in(f, sizeof f, "m1/file");
    CHECK(cx_write_file_atomic(f, "x", 1) == CX_OK);
    snprintf(bad, sizeof bad, "%s/sub", f);
    CHECK(cx_mkdirs(bad) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "m1/file") && strstr(cx_last_error(), "Not a directory"));
    CHECK(cx_mkdirs(f) == CX_ERR_IO);
    CHECK(cx_mkdirs("") == CX_ERR_ARG);
    CHECK(cx_mkdirs(NULL) == CX_ERR_ARG);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cx_atomic_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_write_and_overwrite);
    RUN(test_abort_keeps_original);
    RUN(test_crash_mid_write);
    RUN(test_stale_temps);
    RUN(test_failures);
    RUN(test_read_file);
    RUN(test_special_files);
    RUN(test_mkdirs);
    cleanup_dir();
    TEST_END();
}
