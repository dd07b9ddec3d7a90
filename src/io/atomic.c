/* Atomic file writes and whole-file reads.
 *
 * cx_atomic_open creates "<path>.tmp.<pid>" in the same directory as <path>;
 * commit flushes, fsyncs, closes, renames it over <path> and fsyncs the
 * directory so the rename itself is durable. Any failure removes the temp
 * file and leaves <path> as it was. A <path> that exists and is a character
 * device or a FIFO (/dev/null, /dev/stdout, a pipe) is written in place:
 * renaming over it would replace the device with a regular file. A directory
 * makes the rename fail (CX_ERR_IO) and stays as it was.
 *
 * A process killed during a save (kill -9, a power cut before the rename)
 * leaves its "<path>.tmp.<pid>" behind: cx_atomic_open removes those of
 * processes that no longer exist (kill(pid, 0) fails with ESRCH) before
 * creating its own. Only regular files named exactly "<name>.tmp.<digits>"
 * for this <path> are considered; a live process's file is never touched. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "cortex/core.h"
#include "cortex/io.h"

struct cx_atomic_file {
    FILE *fp;
    char *path;
    char *tmp;     /* NULL: written in place (a device or a FIFO) */
};

static char *cx__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void atomic_release(cx_atomic_file *f) {
    free(f->path);
    free(f->tmp);
    free(f);
}

/* Remove "<path>.tmp.<pid>" files of dead processes (best effort, silent). */
static void remove_stale_temps(const char *path) {
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 0, blen = strlen(base);
    if (!blen) return;
    char *dir = malloc(dlen + 2);
    if (!dir) return;
    if (!slash) strcpy(dir, ".");
    else if (dlen == 0) strcpy(dir, "/");
    else {
        memcpy(dir, path, dlen);
        dir[dlen] = 0;
    }
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    const long self = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, blen) || strncmp(nm + blen, ".tmp.", 5)) continue;
        const char *digits = nm + blen + 5;
        if (*digits < '1' || *digits > '9' || strlen(digits) > 9) continue;
        long pid = 0;
        const char *c = digits;
        for (; *c >= '0' && *c <= '9'; c++) pid = pid * 10 + (*c - '0');
        if (*c || pid == self) continue;
        errno = 0;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to know */
        size_t n = (slash ? dlen + 1 : 0) + strlen(nm) + 1;
        char *full = malloc(n);
        if (!full) break;
        snprintf(full, n, "%.*s%s%s", (int)dlen, slash ? path : "", slash ? "/" : "", nm);
        struct stat sb;
        if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode)) (void)unlink(full);
        free(full);
    }
    closedir(d);
    free(dir);
}

cx_status cx_atomic_open(cx_atomic_file **out, const char *path) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_atomic_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_atomic_open: empty path");
    cx_atomic_file *f = calloc(1, sizeof *f);
    if (!f) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(path) + 32;
    f->path = cx__strdup(path);
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        atomic_release(f);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
        free(f->tmp);
        f->tmp = NULL;
        f->fp = fopen(path, "wb");
        if (!f->fp) {
            int e = errno;
            atomic_release(f);
            return cx_set_error(CX_ERR_IO, "%s: cannot open: %s", path, strerror(e));
        }
        *out = f;
        return CX_OK;
    }
    remove_stale_temps(path);
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = -1;
    for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
        fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd < 0 && errno == EEXIST && attempt == 0) unlink(f->tmp); /* stale temp of ours */
        else if (fd < 0) break;
    }
    if (fd < 0) {
        int e = errno;
        cx_status st = cx_set_error(CX_ERR_IO, "%s: cannot create temporary file %s: %s", path,
                                    f->tmp, strerror(e));
        atomic_release(f);
        return st;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        unlink(f->tmp);
        cx_status st = cx_set_error(CX_ERR_IO, "%s: fdopen failed: %s", path, strerror(e));
        atomic_release(f);
        return st;
    }
    *out = f;
    return CX_OK;
}

void *cx_atomic_stream(cx_atomic_file *f) { return f ? f->fp : NULL; }

void cx_atomic_abort(cx_atomic_file *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    atomic_release(f);
}

/* fsync the directory holding `path` (best effort: some file systems refuse). */
static void fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = cx__strdup(".");
    } else if (slash == path) {
        dir = cx__strdup("/");
    } else {
        size_t n = (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = 0;
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

cx_status cx_atomic_commit(cx_atomic_file *f) {
    if (!f) return cx_set_error(CX_ERR_ARG, "cx_atomic_commit: NULL file");
    const char *what = NULL;
    int e = 0;
    if (ferror(f->fp)) {
        what = "write failed";
        e = errno ? errno : EIO;
    } else if (fflush(f->fp) != 0) {
        what = "flush failed";
        e = errno;
    } else if (f->tmp && fsync(fileno(f->fp)) != 0) {
        what = "fsync failed";
        e = errno;
    }
    int rc = fclose(f->fp);
    f->fp = NULL;
    if (!what && rc != 0) {
        what = "close failed";
        e = errno;
    }
    if (!what && f->tmp && rename(f->tmp, f->path) != 0) {
        what = "rename failed";
        e = errno;
    }
    if (what) {
        cx_status st = cx_set_error(CX_ERR_IO, "%s: %s: %s", f->path, what, strerror(e));
        if (f->tmp) unlink(f->tmp);
        atomic_release(f);
        return st;
    }
    if (f->tmp) fsync_parent_dir(f->path);
    atomic_release(f);
    return CX_OK;
}

cx_status cx_write_file_atomic(const char *path, const void *data, size_t n) {
    cx_atomic_file *f;
    cx_status st = cx_atomic_open(&f, path);
    if (st != CX_OK) return st;
    if (n > 0 && fwrite(data, 1, n, f->fp) != n) {
        int e = errno;
        cx_atomic_abort(f);
        return cx_set_error(CX_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return cx_atomic_commit(f);
}

cx_status cx_read_file(const char *path, void **data, size_t *n, size_t max_bytes) {
    if (!data || !n) return cx_set_error(CX_ERR_ARG, "cx_read_file: NULL output");
    *data = NULL;
    *n = 0;
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_read_file: NULL path");
    if (max_bytes == 0)
        max_bytes = SIZE_MAX > 0xFFFFFFFFu ? (size_t)0xFFFFFFFFu + 1u : SIZE_MAX - 1;
    if (max_bytes > SIZE_MAX / 2) max_bytes = SIZE_MAX / 2;
    struct stat sb;
    /* before opening: a FIFO would block the open, a device never ends */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode))
        return cx_set_error(CX_ERR_IO, "%s: not a regular file (%s): give a file", path,
                            S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
                            : S_ISFIFO(sb.st_mode)                     ? "a pipe"
                                                                       : "a socket or special file");
    FILE *fp = fopen(path, "rb");
    if (!fp) return cx_set_error(CX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096;
    if (fstat(fileno(fp), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(fp);
        return cx_set_error(CX_ERR_IO, "%s: is a directory", path);
    }
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return cx_set_error(CX_ERR_IO, "%s: not a regular file: give a file", path);
    }
    {
        if ((uintmax_t)sb.st_size > (uintmax_t)max_bytes) {
            fclose(fp);
            return cx_set_error(CX_ERR_FORMAT, "%s: file too large (%jd bytes, limit %zu)", path,
                                (intmax_t)sb.st_size, max_bytes);
        }
        cap = (size_t)sb.st_size + 1;
    }
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory reading the file", path);
    }
    size_t len = 0;
    for (;;) {
        size_t room = cap - 1 - len; /* one byte kept for the NUL */
        if (room == 0) {
            int c = fgetc(fp); /* at the expected end: really the end? */
            if (c == EOF) break;
            if (cap >= max_bytes + 2) { /* more than max_bytes */
                len++;
                break;
            }
            size_t ncap = cap > (max_bytes + 2) / 2 ? max_bytes + 2 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return cx_set_error(CX_ERR_NOMEM, "%s: out of memory reading the file", path);
            }
            buf = nb;
            cap = ncap;
            buf[len++] = (char)c;
            continue;
        }
        size_t got = fread(buf + len, 1, room, fp);
        len += got;
        if (got < room || len > max_bytes) break;
    }
    if (ferror(fp)) {
        int e = errno;
        free(buf);
        fclose(fp);
        return cx_set_error(CX_ERR_IO, "%s: read error: %s", path, strerror(e));
    }
    fclose(fp);
    if (len > max_bytes) {
        free(buf);
        return cx_set_error(CX_ERR_FORMAT, "%s: file too large (limit %zu bytes)", path, max_bytes);
    }
    buf[len] = 0;
    *data = buf;
    *n = len;
    return CX_OK;
}

cx_status cx_mkdirs(const char *dir) {
    if (!dir || !*dir) return cx_set_error(CX_ERR_ARG, "cx_mkdirs: empty path");
    const size_t n = strlen(dir);
    char *p = cx__strdup(dir);
    if (!p) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        if (p[i - 1] == '/') continue; /* "a//b" */
        p[i] = '\0';
        if (mkdir(p, 0777) != 0) {
            const int e = errno;
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) { /* an existing directory is fine */
                cx_status s = cx_set_error(CX_ERR_IO, "cannot create directory %s: %s", p,
                                           strerror(e == EEXIST ? ENOTDIR : e));
                free(p);
                return s;
            }
        }
        p[i] = dir[i];
    }
    free(p);
    return CX_OK;
}
