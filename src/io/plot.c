/* Figures: an RGB canvas, colour maps, colour scales and labelled heatmaps
 * (cortex/plot.h). Text is the 5x7 font of src/io/font.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/core.h"
#include "cortex/io.h"
#include "cortex/plot.h"

#define MAX_SIDE 16384
#define MAX_PIXELS (64L * 1024 * 1024)

static const uint8_t WHITE[3] = {255, 255, 255}, INK[3] = {20, 20, 20}, FRAME[3] = {90, 90, 90};
static const uint8_t BAD[3] = {255, 0, 255};

/* ---------------------------------------------------------------- colour maps */
static void lerp_table(const uint8_t (*tab)[3], int n, float t, uint8_t rgb[3]) {
    float u = t * (float)(n - 1);
    int i = (int)u;
    if (i >= n - 1) i = n - 2;
    float f = u - (float)i;
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)lrintf((float)tab[i][c] + f * (float)(tab[i + 1][c] - tab[i][c]));
}

void cx_colormap_rgb(cx_colormap cm, float t, uint8_t rgb[3]) {
    /* matplotlib's viridis sampled at 9 points; Moreland's cool-warm ends */
    static const uint8_t viridis[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                          {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
    static const uint8_t hot[4][3] = {{0, 0, 0}, {230, 0, 0}, {255, 210, 0}, {255, 255, 255}};
    static const uint8_t diverging[3][3] = {{59, 76, 192}, {242, 242, 242}, {180, 4, 38}};
    if (!rgb) return;
    if (isnan(t)) {
        memcpy(rgb, BAD, 3);
        return;
    }
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    switch (cm) {
    case CX_CMAP_GRAY: rgb[0] = rgb[1] = rgb[2] = (uint8_t)lrintf(t * 255.0f); return;
    case CX_CMAP_HOT: lerp_table(hot, 4, t, rgb); return;
    case CX_CMAP_DIVERGING: lerp_table(diverging, 3, t, rgb); return;
    case CX_CMAP_VIRIDIS:
    default: lerp_table(viridis, 9, t, rgb); return;
    }
}

/* ---------------------------------------------------------------- canvas */
cx_status cx_canvas_init(cx_canvas *c, int width, int height, const uint8_t bg[3]) {
    if (!c) return cx_set_error(CX_ERR_ARG, "cx_canvas_init: canvas is NULL");
    c->width = width;
    c->height = height;
    c->pixels = NULL;
    if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE || (long)width * height > MAX_PIXELS)
        return cx_set_error(CX_ERR_ARG, "cx_canvas_init: canvas size %dx%d (each side 1..%d, at most %ld pixels)",
                            width, height, MAX_SIDE, MAX_PIXELS);
    c->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!c->pixels) return cx_set_error(CX_ERR_NOMEM, "cx_canvas_init: out of memory for %dx%d pixels", width, height);
    const uint8_t *b = bg ? bg : WHITE;
    for (long i = 0; i < (long)width * height; i++) memcpy(c->pixels + i * 3, b, 3);
    return CX_OK;
}

void cx_canvas_free(cx_canvas *c) {
    if (!c) return;
    free(c->pixels);
    c->pixels = NULL;
    c->width = c->height = 0;
}

cx_status cx_canvas_save(const cx_canvas *c, const char *path) {
    if (!c || !c->pixels) return cx_set_error(CX_ERR_ARG, "cx_canvas_save: %s: empty canvas", path ? path : "(null)");
    return cx_png_write_rgb(path, c->pixels, c->width, c->height);
}

void cx_canvas_paste(cx_canvas *dst, int x, int y, const cx_canvas *src) {
    if (!dst || !dst->pixels || !src || !src->pixels) return;
    for (int j = 0; j < src->height; j++) {
        int py = y + j;
        if (py < 0 || py >= dst->height) continue;
        int i0 = x < 0 ? -x : 0, i1 = src->width;
        if ((long)x + i1 > dst->width) i1 = dst->width - x;
        if (i1 <= i0) continue;
        memcpy(dst->pixels + ((size_t)py * dst->width + (size_t)(x + i0)) * 3,
               src->pixels + ((size_t)j * src->width + (size_t)i0) * 3, (size_t)(i1 - i0) * 3);
    }
}

static inline void put(cx_canvas *c, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    memcpy(c->pixels + ((size_t)y * (size_t)c->width + (size_t)x) * 3, rgb, 3);
}

static bool usable(const cx_canvas *c, const uint8_t *rgb) { return c && c->pixels && rgb; }

void cx_canvas_fill(cx_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]) {
    if (!usable(c, rgb)) return;
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    long x1 = (long)x + w, y1 = (long)y + h;
    if (x1 > c->width) x1 = c->width;
    if (y1 > c->height) y1 = c->height;
    for (int j = y0; j < y1; j++)
        for (int i = x0; i < x1; i++) memcpy(c->pixels + ((size_t)j * (size_t)c->width + (size_t)i) * 3, rgb, 3);
}

void cx_canvas_rect(cx_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3], int thick) {
    if (thick < 1 || w < 1 || h < 1) return;
    cx_canvas_fill(c, x, y, w, thick, rgb);
    cx_canvas_fill(c, x, y + h - thick, w, thick, rgb);
    cx_canvas_fill(c, x, y, thick, h, rgb);
    cx_canvas_fill(c, x + w - thick, y, thick, h, rgb);
}

void cx_canvas_line(cx_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thick) {
    if (!usable(c, rgb) || thick < 1) return;
    /* clamp far-away endpoints so the loop stays bounded */
    const int lim = 4 * MAX_SIDE;
    x0 = x0 < -lim ? -lim : x0 > lim ? lim : x0;
    x1 = x1 < -lim ? -lim : x1 > lim ? lim : x1;
    y0 = y0 < -lim ? -lim : y0 > lim ? lim : y0;
    y1 = y1 < -lim ? -lim : y1 > lim ? lim : y1;
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    int off = (thick - 1) / 2;
    for (;;) {
        if (thick == 1) put(c, x0, y0, rgb);
        else cx_canvas_fill(c, x0 - off, y0 - off, thick, thick, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

void cx_canvas_text(cx_canvas *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]) {
    if (!usable(c, rgb)) return;
    cx_text_draw_rgb(c->pixels, c->width, c->height, x, y, s, scale, rgb);
}

void cx_canvas_text_up(cx_canvas *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]) {
    if (!usable(c, rgb) || !s || scale < 1) return;
    int W = cx_text_width(s, scale), H = 7 * scale;
    if (W < 1 || W > MAX_SIDE) return;
    /* draw horizontally into a scratch canvas, then copy turned */
    cx_canvas t;
    static const uint8_t zero[3] = {0, 0, 0}, one[3] = {255, 255, 255};
    if (cx_canvas_init(&t, W, H, zero)) return;
    cx_text_draw_rgb(t.pixels, W, H, 0, 0, s, scale, one);
    for (int v = 0; v < H; v++)
        for (int u = 0; u < W; u++)
            if (t.pixels[((size_t)v * W + u) * 3]) put(c, x + v, y + W - 1 - u, rgb);
    cx_canvas_free(&t);
}

bool cx_finite_range(const float *v, long n, float *lo, float *hi) {
    bool any = false;
    for (long i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (!any || v[i] < *lo) *lo = v[i];
        if (!any || v[i] > *hi) *hi = v[i];
        any = true;
    }
    return any;
}

/* The colour range to use: [lo, hi] when lo < hi, else the data's. */
static void pick_range(const float *v, long n, float *lo, float *hi) {
    if (*lo < *hi) return;
    float a = 0, b = 0;
    if (!cx_finite_range(v, n, &a, &b)) a = 0, b = 1;
    *lo = a;
    *hi = b;
}

static float unit(float v, float lo, float hi) {
    if (!isfinite(v)) return NAN;
    if (!(hi > lo)) return 0.5f;
    return (v - lo) / (hi - lo);
}

void cx_canvas_image(cx_canvas *c, int x, int y, const float *v, int rows, int cols, int cell_w, int cell_h,
                     float lo, float hi, cx_colormap cm) {
    if (!c || !c->pixels || !v || rows < 1 || cols < 1 || cell_w < 1 || cell_h < 1) return;
    pick_range(v, (long)rows * cols, &lo, &hi);
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) {
            uint8_t col[3];
            cx_colormap_rgb(cm, unit(v[(long)r * cols + k], lo, hi), col);
            cx_canvas_fill(c, x + k * cell_w, y + r * cell_h, cell_w, cell_h, col);
        }
}

void cx_canvas_overlay(cx_canvas *c, int x, int y, int w, int h, const float *v, int rows, int cols, float lo,
                       float hi, float alpha, cx_colormap cm) {
    if (!c || !c->pixels || !v || rows < 1 || cols < 1 || w < 1 || h < 1) return;
    pick_range(v, (long)rows * cols, &lo, &hi);
    alpha = alpha < 0 ? 0 : alpha > 1 ? 1 : alpha;
    for (int j = 0; j < h; j++) {
        int py = y + j;
        if (py < 0 || py >= c->height) continue;
        float fy = ((float)j + 0.5f) * (float)rows / (float)h - 0.5f;
        fy = fy < 0 ? 0 : fy > (float)(rows - 1) ? (float)(rows - 1) : fy;
        int r0 = (int)fy, r1 = r0 + 1 < rows ? r0 + 1 : r0;
        float wy = fy - (float)r0;
        for (int i = 0; i < w; i++) {
            int px = x + i;
            if (px < 0 || px >= c->width) continue;
            float fx = ((float)i + 0.5f) * (float)cols / (float)w - 0.5f;
            fx = fx < 0 ? 0 : fx > (float)(cols - 1) ? (float)(cols - 1) : fx;
            int k0 = (int)fx, k1 = k0 + 1 < cols ? k0 + 1 : k0;
            float wx = fx - (float)k0;
            float val = (1 - wy) * ((1 - wx) * v[(long)r0 * cols + k0] + wx * v[(long)r0 * cols + k1]) +
                        wy * ((1 - wx) * v[(long)r1 * cols + k0] + wx * v[(long)r1 * cols + k1]);
            float t = unit(val, lo, hi);
            uint8_t col[3];
            cx_colormap_rgb(cm, t, col);
            float a = isnan(t) ? 1.0f : alpha * (t < 0 ? 0 : t > 1 ? 1 : t);
            uint8_t *p = c->pixels + ((size_t)py * (size_t)c->width + (size_t)px) * 3;
            for (int ch = 0; ch < 3; ch++) p[ch] = (uint8_t)lrintf((1 - a) * (float)p[ch] + a * (float)col[ch]);
        }
    }
}

double cx_plot_tick_step(double range, int target) {
    if (!(range > 0) || !isfinite(range) || target < 1) return 1.0;
    double raw = range / target, p = pow(10.0, floor(log10(raw))), fr = raw / p;
    return (fr < 1.5 ? 1 : fr < 3 ? 2 : fr < 7 ? 5 : 10) * p;
}

int cx_plot_tick_decimals(double step) {
    if (!(step > 0) || !isfinite(step)) return 0;
    int d = (int)-floor(log10(step) + 1e-9);
    return d < 0 ? 0 : d > 8 ? 8 : d;
}

/* Tick labels of a colour bar: their widest text width at `scale`. */
static int colorbar_label_width(float lo, float hi, int h, int scale) {
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
        char b[32];
        snprintf(b, sizeof b, "%.3g", (double)lo);
        return cx_text_width(b, scale);
    }
    int target = h / (7 * scale * 3);
    target = target < 2 ? 2 : target > 8 ? 8 : target;
    double st = cx_plot_tick_step((double)hi - lo, target);
    int dec = cx_plot_tick_decimals(st), wmax = 0;
    for (double t = ceil(lo / st - 1e-9) * st; t <= hi + st * 1e-6; t += st) {
        char b[32];
        snprintf(b, sizeof b, "%.*f", dec, fabs(t) < st * 1e-6 ? 0.0 : t);
        int w = cx_text_width(b, scale);
        if (w > wmax) wmax = w;
    }
    return wmax;
}

int cx_canvas_colorbar(cx_canvas *c, int x, int y, int w, int h, float lo, float hi, cx_colormap cm, int scale) {
    if (!c || !c->pixels || w < 1 || h < 2 || scale < 1) return 0;
    for (int j = 0; j < h; j++) {
        uint8_t col[3];
        cx_colormap_rgb(cm, 1.0f - (float)j / (float)(h - 1), col);
        cx_canvas_fill(c, x, y + j, w, 1, col);
    }
    cx_canvas_rect(c, x - 1, y - 1, w + 2, h + 2, FRAME, 1);
    int lx = x + w + 4 + 3 * scale, th = 7 * scale;
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) { /* a constant: one label mid-height */
        char b[32];
        snprintf(b, sizeof b, "%.3g", (double)lo);
        cx_canvas_fill(c, x + w + 1, y + h / 2, 4, 1, FRAME);
        cx_canvas_text(c, lx, y + h / 2 - th / 2, b, scale, INK);
        return w + 4 + 3 * scale + cx_text_width(b, scale);
    }
    int target = h / (th * 3);
    target = target < 2 ? 2 : target > 8 ? 8 : target;
    double st = cx_plot_tick_step((double)hi - lo, target);
    int dec = cx_plot_tick_decimals(st);
    for (double t = ceil(lo / st - 1e-9) * st; t <= hi + st * 1e-6; t += st) {
        int py = y + (int)lround((1.0 - (t - lo) / ((double)hi - lo)) * (h - 1));
        char b[32];
        snprintf(b, sizeof b, "%.*f", dec, fabs(t) < st * 1e-6 ? 0.0 : t);
        cx_canvas_fill(c, x + w + 1, py, 4, 1, FRAME);
        cx_canvas_text(c, lx, py - th / 2, b, scale, INK);
    }
    return w + 4 + 3 * scale + colorbar_label_width(lo, hi, h, scale);
}

/* ---------------------------------------------------------------- heatmap */
cx_heatmap_opts cx_heatmap_defaults(void) {
    cx_heatmap_opts o;
    memset(&o, 0, sizeof o);
    o.cmap = CX_CMAP_VIRIDIS;
    o.text_scale = 2;
    return o;
}

/* Label i of a list, or its index written into buf. */
static const char *label(const char *const *labels, int i, char *buf, size_t n) {
    if (labels && labels[i]) return labels[i];
    snprintf(buf, n, "%d", i);
    return buf;
}

cx_status cx_heatmap_render(cx_canvas *out, const float *v, int rows, int cols, const cx_heatmap_opts *opt) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: out is NULL");
    out->pixels = NULL;
    out->width = out->height = 0;
    if (!v) return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: values are NULL");
    if (rows < 1 || cols < 1 || rows > 4096 || cols > 4096)
        return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: %d rows x %d columns (each 1..4096)", rows, cols);
    cx_heatmap_opts o = opt ? *opt : cx_heatmap_defaults();
    int s = o.text_scale ? o.text_scale : 2;
    if (s < 1 || s > 8) return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: text_scale %d (1..8)", o.text_scale);
    if (o.cell < 0 || o.cell > 512) return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: cell %d pixels (0..512)", o.cell);
    int cell = o.cell;
    if (!cell) {
        int big = rows > cols ? rows : cols;
        cell = 640 / big;
        cell = cell < 12 ? 12 : cell > 48 ? 48 : cell;
        if (big > 640 / 4) cell = 640 / big > 1 ? 640 / big : 1; /* huge matrices: small cells, no labels */
    }
    float lo = o.vmin, hi = o.vmax;
    pick_range(v, (long)rows * cols, &lo, &hi);
    bool show_labels = 7 * s <= cell + 2 * s || (o.row_labels || o.col_labels);
    if (cell < 6) show_labels = false;
    int th = 7 * s, pad = 4 * s;
    /* label sizes */
    char buf[32];
    int row_w = 0, turned_w = 0; /* widest row label; widest column label that must be turned */
    if (show_labels) {
        for (int r = 0; r < rows; r++) {
            int w = cx_text_width(label(o.row_labels, r, buf, sizeof buf), s);
            if (w > row_w) row_w = w;
        }
        for (int k = 0; k < cols; k++) {
            int w = cx_text_width(label(o.col_labels, k, buf, sizeof buf), s);
            if (w > cell - 2 && w > turned_w) turned_w = w;
        }
    }
    /* a column label wider than its cell is turned; the others stay level */
    int col_h = show_labels ? (turned_w > th ? turned_w : th) : 0;
    int mw = cols * cell, mh = rows * cell;
    int bar_h = mh < 80 ? 80 : mh, bar_w = 14 + 2 * s;
    int bar_lab = colorbar_label_width(lo, hi, bar_h, s);
    int left = pad + (o.ylabel ? th + pad : 0) + (row_w ? row_w + pad : 0);
    int top = pad + (o.title ? th + pad : 0);
    int right = 3 * pad + bar_w + 4 + 3 * s + bar_lab + pad;
    int bottom = (col_h ? pad + col_h : 0) + (o.xlabel ? pad + th : 0) + pad;
    int width = left + mw + right, height = top + (mh > bar_h ? mh : bar_h) + bottom;
    int title_w = o.title ? cx_text_width(o.title, s) + 2 * pad : 0;
    int xlab_w = o.xlabel ? left + cx_text_width(o.xlabel, s) + pad : 0;
    if (width < title_w) width = title_w;
    if (width < xlab_w) width = xlab_w;
    if ((long)width * height > MAX_PIXELS || width > MAX_SIDE || height > MAX_SIDE)
        return cx_set_error(CX_ERR_ARG, "cx_heatmap_render: a %d x %d matrix with %d-pixel cells makes a %dx%d picture "
                            "(too large; set a smaller cell)", rows, cols, cell, width, height);
    cx_status st = cx_canvas_init(out, width, height, WHITE);
    if (st) return st;
    /* title, matrix, frame */
    if (o.title) cx_canvas_text(out, (width - cx_text_width(o.title, s)) / 2, pad, o.title, s, INK);
    cx_canvas_image(out, left, top, v, rows, cols, cell, cell, lo, hi, o.cmap);
    cx_canvas_rect(out, left - 1, top - 1, mw + 2, mh + 2, FRAME, 1);
    /* values */
    if (o.values) {
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) {
                float x = v[(long)r * cols + k];
                snprintf(buf, sizeof buf, "%.2f", (double)x);
                int w = cx_text_width(buf, 1);
                if (w > cell - 2 || 7 > cell - 2) continue;
                uint8_t col[3];
                cx_colormap_rgb(o.cmap, unit(x, lo, hi), col);
                bool dark = 0.299 * col[0] + 0.587 * col[1] + 0.114 * col[2] < 128;
                cx_canvas_text(out, left + k * cell + (cell - w) / 2, top + r * cell + (cell - 7) / 2, buf, 1,
                               dark ? WHITE : INK);
            }
    }
    /* row labels (right-aligned left of their row), column labels (under their column) */
    if (show_labels) {
        for (int r = 0; r < rows; r++) {
            const char *l = label(o.row_labels, r, buf, sizeof buf);
            cx_canvas_text(out, left - pad - cx_text_width(l, s), top + r * cell + (cell - th) / 2, l, s, INK);
        }
        for (int k = 0; k < cols; k++) {
            const char *l = label(o.col_labels, k, buf, sizeof buf);
            int w = cx_text_width(l, s);
            if (w > cell - 2) /* turned, its end under the column */
                cx_canvas_text_up(out, left + k * cell + (cell - th) / 2, top + mh + pad, l, s, INK);
            else
                cx_canvas_text(out, left + k * cell + (cell - w) / 2, top + mh + pad, l, s, INK);
        }
    }
    /* axis names */
    if (o.xlabel)
        cx_canvas_text(out, left + (mw - cx_text_width(o.xlabel, s)) / 2 > pad ? left + (mw - cx_text_width(o.xlabel, s)) / 2 : pad,
                       top + mh + (col_h ? pad + col_h : 0) + pad, o.xlabel, s, INK);
    if (o.ylabel) {
        int w = cx_text_width(o.ylabel, s);
        int y0 = top + (mh - w) / 2;
        cx_canvas_text_up(out, pad, y0 > 0 ? y0 : 0, o.ylabel, s, INK);
    }
    /* colour scale */
    cx_canvas_colorbar(out, left + mw + 3 * pad, top, bar_w, bar_h, lo, hi, o.cmap, s);
    return CX_OK;
}

cx_status cx_plot_heatmap(const char *path, const float *v, int rows, int cols, const cx_heatmap_opts *opt) {
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_plot_heatmap: empty path");
    cx_canvas c;
    cx_status st = cx_heatmap_render(&c, v, rows, cols, opt);
    if (st) return st;
    st = cx_canvas_save(&c, path);
    cx_canvas_free(&c);
    return st;
}

/* ---------------------------------------------------------------- line charts */

cx_lines_opts cx_lines_defaults(void) {
    cx_lines_opts o;
    memset(&o, 0, sizeof o);
    o.width = 760;
    o.height = 420;
    return o;
}

static const uint8_t LINE_COLS[8][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                        {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

cx_status cx_lines_render(cx_canvas *out, const cx_line_series *s, int n, const cx_lines_opts *opt) {
    cx_lines_opts o = opt ? *opt : cx_lines_defaults();
    if (!out || !s || n < 1 || n > 8) return cx_set_error(CX_ERR_ARG, "cx_lines_render: 1 to 8 series, got %d", n);
    if (o.width < 200 || o.width > 4000 || o.height < 200 || o.height > 4000)
        return cx_set_error(CX_ERR_ARG, "cx_lines_render: size %dx%d out of 200..4000", o.width, o.height);
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int npts = 0;
    for (int k = 0; k < n; k++) {
        if (s[k].n > 0 && (!s[k].x || !s[k].y))
            return cx_set_error(CX_ERR_ARG, "cx_lines_render: series %d has NULL data", k);
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
            npts++;
        }
    }
    if (!npts) return cx_set_error(CX_ERR_ARG, "cx_lines_render: no finite point to draw");
    if (o.ymin < o.ymax) ylo = o.ymin, yhi = o.ymax;
    if (xhi - xlo <= 0) xlo -= 1, xhi += 1;
    if (yhi - ylo <= 1e-12 * fmax(1.0, fabs(yhi))) {
        double d = fmax(fabs(yhi) * 0.05, 1e-3);
        ylo -= d, yhi += d;
    }
    double ys = cx_plot_tick_step(yhi - ylo, 5), xs = cx_plot_tick_step(xhi - xlo, 6);
    if (!(o.ymin < o.ymax)) {
        ylo = floor(ylo / ys + 1e-9) * ys;
        yhi = ceil(yhi / ys - 1e-9) * ys;
    }
    cx_status st = cx_canvas_init(out, o.width, o.height, (const uint8_t[]){255, 255, 255});
    if (st) return st;
    const uint8_t axis[3] = {60, 60, 60}, grid[3] = {228, 228, 228}, black[3] = {0, 0, 0};
    const int ml = 78, mr = 20, mt = 62, mb = 56;
    int ax = ml, ay = mt, aw = o.width - ml - mr, ah = o.height - mt - mb;
#define MX(v) (ax + (int)lround(((v) - xlo) / (xhi - xlo) * (aw - 1)))
#define MY(v) (ay + ah - 1 - (int)lround(((v) - ylo) / (yhi - ylo) * (ah - 1)))
    char buf[48];
    int yd = cx_plot_tick_decimals(ys), xd = cx_plot_tick_decimals(xs);
    for (double v = ceil(ylo / ys - 1e-9) * ys; v <= yhi + ys * 1e-9; v += ys) {
        int y = MY(v);
        cx_canvas_fill(out, ax, y, aw, 1, grid);
        cx_canvas_fill(out, ax - 5, y, 5, 1, axis);
        snprintf(buf, sizeof buf, "%.*f", yd, fabs(v) < ys * 1e-6 ? 0.0 : v);
        cx_canvas_text(out, ax - 8 - cx_text_width(buf, 1), y - 3, buf, 1, axis);
    }
    for (double v = ceil(xlo / xs - 1e-9) * xs; v <= xhi + xs * 1e-9; v += xs) {
        int x = MX(v);
        cx_canvas_fill(out, x, ay, 1, ah, grid);
        cx_canvas_fill(out, x, ay + ah, 1, 5, axis);
        snprintf(buf, sizeof buf, "%.*f", xd, fabs(v) < xs * 1e-6 ? 0.0 : v);
        cx_canvas_text(out, x - cx_text_width(buf, 1) / 2, ay + ah + 9, buf, 1, axis);
    }
    cx_canvas_fill(out, ax - 1, ay, 1, ah + 1, axis);
    cx_canvas_fill(out, ax - 1, ay + ah, aw + 1, 1, axis);
    if (o.xlabel) cx_canvas_text(out, ax + aw / 2 - cx_text_width(o.xlabel, 2) / 2, ay + ah + 26, o.xlabel, 2, axis);
    if (o.ylabel) cx_canvas_text_up(out, 8, ay + ah / 2 + cx_text_width(o.ylabel, 2) / 2, o.ylabel, 2, axis);
    if (o.title) cx_canvas_text(out, ax, 10, o.title, 2, black);
    /* legend on one line under the title, series colours in order */
    int lx = ax;
    for (int k = 0; k < n; k++) {
        if (!s[k].name) continue;
        cx_canvas_fill(out, lx, 41, 18, 3, LINE_COLS[k]);
        cx_canvas_text(out, lx + 24, 35, s[k].name, 2, black);
        lx += 24 + cx_text_width(s[k].name, 2) + 20;
    }
    for (int k = 0; k < n; k++) {
        bool prev = false, mark = o.markers || s[k].n <= 40;
        int px = 0, py = 0;
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) {
                prev = false;
                continue;
            }
            y = fmin(fmax(y, ylo), yhi);
            int X = MX(x), Y = MY(y);
            if (prev) cx_canvas_line(out, px, py, X, Y, LINE_COLS[k], 2);
            if (mark) cx_canvas_fill(out, X - 2, Y - 2, 5, 5, LINE_COLS[k]);
            px = X, py = Y, prev = true;
        }
    }
#undef MX
#undef MY
    return CX_OK;
}

cx_status cx_plot_lines(const char *path, const cx_line_series *s, int n, const cx_lines_opts *opt) {
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_plot_lines: empty path");
    cx_canvas c;
    cx_status st = cx_lines_render(&c, s, n, opt);
    if (st) return st;
    st = cx_canvas_save(&c, path);
    cx_canvas_free(&c);
    return st;
}
