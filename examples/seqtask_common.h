/* Shared by examples/ntm.c and examples/dnc.c (the NTM and the DNC trained and
 * pictured the same way): a clock, flag parsing that exits with status 2 on a
 * bad value, and the heatmap panels of their pictures. Define EX_PROG (the
 * program's name in messages) before including this file. */
#ifndef CORTEX_EXAMPLES_SEQTASK_COMMON_H
#define CORTEX_EXAMPLES_SEQTASK_COMMON_H

#include <cortex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* "20,40,80" -> out[0..n) (at most max), each in [1, 100000] */
static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 100000 || (*end && *end != ',')) {
            fprintf(stderr, EX_PROG ": bad length list '%s' (positive integers separated by commas)\n", s);
            exit(2);
        }
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

static long num(const char *flag, const char *v, long lo, long hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || end == v || x < lo || x > hi) {
        fprintf(stderr, EX_PROG ": %s '%s' is not an integer in [%ld, %ld]\n", flag, v, lo, hi);
        exit(2);
    }
    return x;
}

static const uint8_t BLACK[3] = {0, 0, 0};

/* Panels (rendered with cx_heatmap_render) stacked vertically under a title,
 * saved as one PNG. */
static void save_stack(const char *path, const char *title, cx_canvas *parts, int np) {
    int W = 0, H = 30;
    for (int i = 0; i < np; i++) {
        if (parts[i].width > W) W = parts[i].width;
        H += parts[i].height + 8;
    }
    int tw = (int)strlen(title) * 12 + 16;
    if (tw > W) W = tw;
    cx_canvas fig;
    if (cx_canvas_init(&fig, W, H, NULL)) {
        fprintf(stderr, EX_PROG ": %s\n", cx_last_error());
        return;
    }
    cx_canvas_text(&fig, 8, 8, title, 2, BLACK);
    int y = 30;
    for (int i = 0; i < np; i++) {
        cx_canvas_paste(&fig, 0, y, &parts[i]);
        y += parts[i].height + 8;
    }
    if (cx_canvas_save(&fig, path)) fprintf(stderr, EX_PROG ": %s\n", cx_last_error());
    else printf("wrote %s\n", path);
    cx_canvas_free(&fig);
}

/* rows x cols heatmap panel of v (rows = channels / slots, cols = time);
 * columns numbered every 1, 5 or 10; row r labelled (row0 + r) mod rmod
 * (rmod 0: row0 + r) every few rows. */
static bool panel_rows(cx_canvas *out, const float *v, int rows, int cols, const char *title, const char *xl,
                       const char *yl, float lo, float hi, int cell, int row0, int rmod) {
    cx_heatmap_opts o = cx_heatmap_defaults();
    o.title = title;
    o.xlabel = xl;
    o.ylabel = yl;
    o.vmin = lo;
    o.vmax = hi;
    o.cell = cell;
    o.text_scale = 1;
    char **cl = malloc((size_t)cols * sizeof *cl), **rl = malloc((size_t)rows * sizeof *rl);
    const int ce = cols > 40 ? 10 : cols > 20 ? 5 : 1;
    for (int k = 0; k < cols; k++) {
        cl[k] = malloc(12);
        if (k % ce == 0) snprintf(cl[k], 12, "%d", k);
        else cl[k][0] = 0;
    }
    const int every = rows > 40 ? 8 : rows > 16 ? 4 : 1;
    for (int r = 0; r < rows; r++) {
        rl[r] = malloc(12);
        const int lab = rmod ? (row0 + r) % rmod : row0 + r;
        if (r % every == 0) snprintf(rl[r], 12, "%d", lab);
        else rl[r][0] = 0;
    }
    o.col_labels = (const char *const *)cl;
    o.row_labels = (const char *const *)rl;
    cx_status st = cx_heatmap_render(out, v, rows, cols, &o);
    for (int k = 0; k < cols; k++) free(cl[k]);
    for (int r = 0; r < rows; r++) free(rl[r]);
    free(cl);
    free(rl);
    if (st) fprintf(stderr, EX_PROG ": %s: %s\n", title, cx_last_error());
    return st == CX_OK;
}

static bool panel(cx_canvas *out, const float *v, int rows, int cols, const char *title, const char *xl,
                  const char *yl, float lo, float hi, int cell) {
    return panel_rows(out, v, rows, cols, title, xl, yl, lo, hi, cell, 0, 0);
}

#endif
