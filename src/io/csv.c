/* CSV of numbers -> persistent F32 tensor [rows, cols].
 *
 * Line based: a quoted field cannot span lines. The delimiter (',', ';' or
 * tab) is the most frequent of the three on the first non-blank line; that
 * line is a header when any of its fields is not a number. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/core.h"
#include "cortex/io.h"

typedef struct {
    char **f;    /* field pointers into scratch */
    int n, cap;
    char *scratch;
    size_t scap;
} csv_fields;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Split line [s, e) into fields. Returns 0, or -1 with *why set. */
static int split_line(const char *s, const char *e, char delim, csv_fields *fl, const char **why) {
    size_t need = (size_t)(e - s) + 1;
    if (need > fl->scap) {
        size_t nc = fl->scap ? fl->scap : 256;
        while (nc < need) nc *= 2;
        char *ns = realloc(fl->scratch, nc);
        if (!ns) {
            *why = "out of memory";
            return -1;
        }
        fl->scratch = ns;
        fl->scap = nc;
    }
    char *o = fl->scratch;
    fl->n = 0;
    const char *p = s;
    for (;;) {
        if (fl->n == fl->cap) {
            int nc = fl->cap ? fl->cap * 2 : 16;
            char **nf = realloc(fl->f, (size_t)nc * sizeof *nf);
            if (!nf) {
                *why = "out of memory";
                return -1;
            }
            fl->f = nf;
            fl->cap = nc;
        }
        fl->f[fl->n++] = o;
        /* a delimiter that is itself blank (tab) must not be skipped as space */
        while (p < e && is_blank(*p) && *p != delim) p++;
        if (p < e && *p == '"') {
            p++;
            for (;;) {
                if (p >= e) {
                    *why = "unterminated quoted field";
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < e && p[1] == '"') {
                        *o++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *o++ = *p++;
            }
            while (p < e && is_blank(*p) && *p != delim) p++;
            if (p < e && *p != delim) {
                *why = "unexpected character after a closing quote";
                return -1;
            }
        } else {
            char *start = o;
            while (p < e && *p != delim) {
                if (*p == '"') {
                    *why = "quote inside an unquoted field";
                    return -1;
                }
                *o++ = *p++;
            }
            while (o > start && is_blank(o[-1])) o--;
        }
        *o++ = 0;
        if (p < e && *p == delim) {
            p++;
            continue;
        }
        return 0;
    }
}

/* 0, -1 (not a number) or -2 (a finite number beyond the float range, which
 * would become inf: "nan" and "inf" themselves are kept). */
static int parse_number(const char *s, float *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return -1;
    bool written_inf = false;
    for (const char *c = s; *c && !written_inf; c++) written_inf = *c == 'i' || *c == 'I';
    if (!written_inf && (isinf(v) || fabs(v) > FLT_MAX)) return -2;
    *out = (float)v;
    return 0;
}

static char pick_delim(const char *s, const char *e) {
    long c = 0, sc = 0, tb = 0;
    int inq = 0;
    for (const char *p = s; p < e; p++) {
        if (*p == '"') inq = !inq;
        else if (!inq && *p == ',') c++;
        else if (!inq && *p == ';') sc++;
        else if (!inq && *p == '\t') tb++;
    }
    if (c >= sc && c >= tb) return ',';
    return sc >= tb ? ';' : '\t';
}

void cx_csv_free_header(char **header, int n) {
    if (!header) return;
    for (int i = 0; i < n; i++) free(header[i]);
    free(header);
}

cx_status cx_csv_load(const char *path, cx_tensor **out, char ***header, int *n_header) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_csv_load: out is NULL");
    *out = NULL;
    if (header) *header = NULL;
    if (n_header) *n_header = 0;
    void *vbuf;
    size_t len;
    cx_status st = cx_read_file(path, &vbuf, &len, 0);
    if (st != CX_OK) return st;
    const char *buf = vbuf, *end = buf + len, *p = buf;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 BOM */
    csv_fields fl = {NULL, 0, 0, NULL, 0};
    float *vals = NULL;
    size_t nvals = 0, vcap = 0;
    char **hdr = NULL;
    int cols = -1, rows = 0, have_hdr = 0;
    char delim = ',';
    const char *why;
    long lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        lineno++;
        if (le > p && le[-1] == '\r') le--;
        const char *q = p;
        while (q < le && (is_blank(*q) || *q == '\r')) q++;
        if (q == le) { /* blank line */
            p = next;
            continue;
        }
        if (cols < 0) delim = pick_delim(p, le);
        if (split_line(p, le, delim, &fl, &why)) {
            st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: %s", path, lineno, why);
            goto fail;
        }
        if (cols < 0) {
            cols = fl.n;
            for (int i = 0; i < fl.n && !have_hdr; i++) {
                float v;
                if (parse_number(fl.f[i], &v) == -1) have_hdr = 1;
            }
            if (have_hdr) {
                hdr = calloc((size_t)cols, sizeof *hdr);
                if (!hdr) {
                    st = cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
                    goto fail;
                }
                for (int i = 0; i < cols; i++) {
                    size_t l = strlen(fl.f[i]) + 1;
                    hdr[i] = malloc(l);
                    if (!hdr[i]) {
                        st = cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
                        goto fail;
                    }
                    memcpy(hdr[i], fl.f[i], l);
                }
                p = next;
                continue;
            }
        }
        if (fl.n != cols) {
            st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: expected %d fields, got %d", path, lineno, cols,
                              fl.n);
            goto fail;
        }
        if (rows == INT_MAX || nvals > SIZE_MAX / sizeof(float) - (size_t)cols) {
            st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: too many rows", path, lineno);
            goto fail;
        }
        if (nvals + (size_t)cols > vcap) {
            size_t nc = vcap ? vcap * 2 : 1024;
            while (nc < nvals + (size_t)cols) nc *= 2;
            float *nv = realloc(vals, nc * sizeof *nv);
            if (!nv) {
                st = cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
                goto fail;
            }
            vals = nv;
            vcap = nc;
        }
        for (int i = 0; i < cols; i++) {
            int pr = parse_number(fl.f[i], &vals[nvals + (size_t)i]);
            if (pr) {
                if (pr == -2)
                    st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: column %d: %.40s is beyond the float range (+-%.3g)",
                                      path, lineno, i + 1, fl.f[i], (double)FLT_MAX);
                else if (!fl.f[i][0])
                    st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: field %d is empty", path, lineno, i + 1);
                else
                    st = cx_set_error(CX_ERR_FORMAT, "%s:%ld: '%.40s' is not a number", path, lineno,
                                      fl.f[i]);
                goto fail;
            }
        }
        nvals += (size_t)cols;
        rows++;
        p = next;
    }
    if (cols < 0) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: empty file", path);
        goto fail;
    }
    if (rows == 0) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: no data rows (only a header)", path);
        goto fail;
    }
    cx_tensor *t = cx_tensor_new(CX_F32, (const int[]){rows, cols}, 2);
    memcpy(t->data, vals, nvals * sizeof(float));
    *out = t;
    if (header && have_hdr) {
        *header = hdr;
        hdr = NULL;
        if (n_header) *n_header = cols;
    }
    cx_csv_free_header(hdr, have_hdr ? cols : 0);
    free(vals);
    free(fl.f);
    free(fl.scratch);
    free(vbuf);
    return CX_OK;
fail:
    cx_csv_free_header(hdr, hdr ? cols : 0);
    free(vals);
    free(fl.f);
    free(fl.scratch);
    free(vbuf);
    return st;
}
