/* cortex/plot.h -- figures: an RGB canvas with boxes, lines, text, images
 * through colour maps, heat overlays and colour scales, and a complete
 * labelled heatmap (attention and alignment matrices, memory contents,
 * confusion matrices). See cortex.h.
 *
 *   cx_heatmap_opts o = cx_heatmap_defaults();
 *   o.title = "alignment: PHOENIX";
 *   o.xlabel = "letters";  o.ylabel = "phonemes";
 *   o.col_labels = letters;  o.row_labels = phonemes;   // char *[cols], char *[rows]
 *   o.vmin = 0;  o.vmax = 1;                            // attention weights
 *   if (cx_plot_heatmap("align.png", weights, rows, cols, &o)) puts(cx_last_error());
 *
 * Pictures are drawn in memory and written with cx_png_write_rgb (atomic:
 * temp file, fsync, rename). Text uses the 5x7 bitmap font of cortex/io.h
 * (cx_text_draw_rgb). Coordinates are pixels, x to the right, y down; every
 * drawing call clips to the canvas. Non-finite values are drawn magenta.
 */
#ifndef CORTEX_PLOT_H
#define CORTEX_PLOT_H

#include "cortex/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An RGB image in memory: pixels[(y * width + x) * 3 + c], c = 0 red,
 * 1 green, 2 blue (the layout of cx_png_write_rgb). Owns `pixels`. */
typedef struct cx_canvas {
    int width, height;
    uint8_t *pixels;
} cx_canvas;

/* Colour maps from t in [0, 1] (values outside are clamped):
 *   GRAY      black -> white
 *   VIRIDIS   dark blue -> green -> yellow (perceptually ordered; the default)
 *   HOT       black -> red -> yellow -> white (heat over an image)
 *   DIVERGING blue -> white -> red (signed values: use vmin = -vmax) */
typedef enum cx_colormap { CX_CMAP_VIRIDIS = 0, CX_CMAP_GRAY, CX_CMAP_HOT, CX_CMAP_DIVERGING } cx_colormap;

/* Colour of t under map cm into rgb[0..2]; NaN gives magenta. */
void cx_colormap_rgb(cx_colormap cm, float t, uint8_t rgb[3]);

/* A width x height canvas filled with bg (NULL: white). Errors: CX_ERR_ARG
 * (c NULL, a side < 1 or > 16384, more than 64 M pixels), CX_ERR_NOMEM.
 * On error c->pixels is NULL (cx_canvas_free is still safe). */
cx_status cx_canvas_init(cx_canvas *c, int width, int height, const uint8_t bg[3]);
void cx_canvas_free(cx_canvas *c); /* frees the pixels; c may be NULL */
/* Atomic PNG write (cx_png_write_rgb); its errors. */
cx_status cx_canvas_save(const cx_canvas *c, const char *path);

/* Copy all of src into dst with src's top-left corner at (x, y), clipped
 * (to compose figures from several rendered parts). */
void cx_canvas_paste(cx_canvas *dst, int x, int y, const cx_canvas *src);

/* Filled rectangle; its outline `thick` pixels wide; a line (Bresenham,
 * each point a thick x thick square). */
void cx_canvas_fill(cx_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3]);
void cx_canvas_rect(cx_canvas *c, int x, int y, int w, int h, const uint8_t rgb[3], int thick);
void cx_canvas_line(cx_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thick);
/* Text with its top-left corner at (x, y), every font pixel scale x scale
 * (cx_text_width(s, scale) wide, 7 * scale high). */
void cx_canvas_text(cx_canvas *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]);
/* Text turned 90 degrees counter-clockwise (read bottom to top, for vertical
 * axis labels): it occupies the box x .. x + 7 * scale - 1, y .. y +
 * cx_text_width(s, scale) - 1. */
void cx_canvas_text_up(cx_canvas *c, int x, int y, const char *s, int scale, const uint8_t rgb[3]);

/* A rows x cols matrix v[r * cols + k] drawn as cells of cell_w x cell_h
 * pixels from (x, y), value lo -> colour map 0 and hi -> 1. lo >= hi: the
 * matrix's own finite range (a constant matrix is drawn mid-scale). */
void cx_canvas_image(cx_canvas *c, int x, int y, const float *v, int rows, int cols, int cell_w, int cell_h,
                     float lo, float hi, cx_colormap cm);
/* A rows x cols heat map stretched over the w x h rectangle at (x, y)
 * (bilinear, cell centres aligned like align_corners=False) and blended over
 * what is drawn there: pixel = (1 - a) pixel + a colour, a = alpha * t,
 * t = (v - lo) / (hi - lo) in [0, 1] (so low values leave the picture
 * visible). lo >= hi: the map's own finite range. */
void cx_canvas_overlay(cx_canvas *c, int x, int y, int w, int h, const float *v, int rows, int cols, float lo,
                       float hi, float alpha, cx_colormap cm);
/* Vertical colour scale: a w x h bar at (x, y), lo at the bottom and hi at
 * the top, with "nice" tick values (1, 2 or 5 times a power of ten) written
 * right of it at text scale `scale`. Returns the width used (bar + ticks +
 * labels). */
int cx_canvas_colorbar(cx_canvas *c, int x, int y, int w, int h, float lo, float hi, cx_colormap cm, int scale);

/* ---- heatmap: a matrix with its title, axis names, a label per row and
 * column (turned vertical when they do not fit under their column) and a
 * colour scale. */
typedef struct cx_heatmap_opts {
    const char *title;              /* top line (NULL: none) */
    const char *xlabel, *ylabel;    /* axis names (NULL: none) */
    const char *const *row_labels;  /* rows strings (NULL: 0, 1, ...) */
    const char *const *col_labels;  /* cols strings (NULL: 0, 1, ...) */
    float vmin, vmax;               /* colour range; vmin >= vmax: the data's range */
    cx_colormap cmap;               /* default VIRIDIS */
    int cell;                       /* cell side in pixels; 0: chosen from the size (12..48) */
    int text_scale;                 /* font scale of labels (default 2; title 2, ticks 1 if 1) */
    bool values;                    /* also print each value (2 decimals) in its cell when it fits */
} cx_heatmap_opts;

cx_heatmap_opts cx_heatmap_defaults(void);

/* Draw the heatmap of v[r * cols + k] on a new canvas (owned by the caller:
 * cx_canvas_free). Errors: CX_ERR_ARG (NULL v or out, rows or cols < 1,
 * a cell or text scale out of range, a picture too large), CX_ERR_NOMEM. */
cx_status cx_heatmap_render(cx_canvas *out, const float *v, int rows, int cols, const cx_heatmap_opts *opt);
/* cx_heatmap_render + cx_canvas_save. opt NULL: cx_heatmap_defaults(). */
cx_status cx_plot_heatmap(const char *path, const float *v, int rows, int cols, const cx_heatmap_opts *opt);

/* ---- line chart: series of (x, y) points with a title, axis names, ticks,
 * a grid and a legend (learning curves: return against environment steps,
 * loss against epochs, ...). Non-finite points are skipped (the line
 * breaks there).
 *
 *   cx_line_series s[2] = {{"A2C", xs, ys, n}, {"PPO", xs2, ys2, n2}};
 *   cx_lines_opts o = cx_lines_defaults();
 *   o.title = "CartPole-v1: greedy return";  o.xlabel = "steps";  o.ylabel = "return";
 *   cx_plot_lines("curves.png", s, 2, &o); */
typedef struct cx_line_series {
    const char *name; /* legend entry (NULL: none) */
    const double *x, *y;
    int n;
} cx_line_series;

typedef struct cx_lines_opts {
    const char *title, *xlabel, *ylabel;
    int width, height;          /* pixels (default 760 x 420) */
    double ymin, ymax;          /* y range; ymin >= ymax: the data's range */
    bool markers;               /* a square at each point (default: when <= 40 points) */
} cx_lines_opts;

cx_lines_opts cx_lines_defaults(void);
/* Draw on a new canvas (owned by the caller). Up to 8 series, drawn in 8
 * distinct colours. Errors: CX_ERR_ARG (no series, more than 8, a NULL
 * array with n > 0, no finite point at all, a size out of 200..4000). */
cx_status cx_lines_render(cx_canvas *out, const cx_line_series *s, int n, const cx_lines_opts *opt);
cx_status cx_plot_lines(const char *path, const cx_line_series *s, int n, const cx_lines_opts *opt);

/* ---- helpers for axes and colour ranges */
/* min and max of the finite values of v[0..n); false (lo, hi untouched) if
 * there is none. */
bool cx_finite_range(const float *v, long n, float *lo, float *hi);
/* A "nice" tick step, 1, 2 or 5 times a power of ten, giving about `target`
 * intervals over `range` (1 when range is not positive and finite or target < 1). */
double cx_plot_tick_step(double range, int target);
/* Decimals that print the multiples of `step` exactly (0..8). */
int cx_plot_tick_decimals(double step);

#ifdef __cplusplus
}
#endif

#endif
