/* Figures (cortex/plot.h): colour maps at their anchors, canvas drawing with
 * clipping, turned text, images and overlays, the colour bar, and the
 * labelled heatmap (every cell's colour found as a block at its place,
 * labels turned when they do not fit, errors, the PNG file read back). */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static const uint8_t RED[3] = {255, 0, 0}, BLACK[3] = {0, 0, 0};

static bool px_is(const cx_canvas *c, int x, int y, const uint8_t rgb[3]) {
    const uint8_t *p = c->pixels + ((size_t)y * c->width + x) * 3;
    return p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2];
}

static void test_colormaps(void) {
    uint8_t c[3];
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 0, c);
    CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84);
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 1, c);
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37);
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 7, c); /* clamped */
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37);
    cx_colormap_rgb(CX_CMAP_GRAY, 0.5f, c);
    CHECK(c[0] == 128 && c[1] == 128 && c[2] == 128);
    cx_colormap_rgb(CX_CMAP_GRAY, -1, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    cx_colormap_rgb(CX_CMAP_HOT, 0, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    cx_colormap_rgb(CX_CMAP_HOT, 1, c);
    CHECK(c[0] == 255 && c[1] == 255 && c[2] == 255);
    cx_colormap_rgb(CX_CMAP_DIVERGING, 0.5f, c); /* white-ish middle */
    CHECK(c[0] == 242 && c[1] == 242 && c[2] == 242);
    cx_colormap_rgb(CX_CMAP_DIVERGING, 0, c);
    CHECK(c[2] > c[0]); /* blue end */
    cx_colormap_rgb(CX_CMAP_VIRIDIS, NAN, c);
    CHECK(c[0] == 255 && c[1] == 0 && c[2] == 255);
    /* viridis grows in lightness */
    double prev = -1;
    for (int i = 0; i <= 20; i++) {
        cx_colormap_rgb(CX_CMAP_VIRIDIS, (float)i / 20, c);
        double l = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        CHECK(l > prev);
        prev = l;
    }
}

static void test_canvas(void) {
    cx_canvas c;
    CHECK(cx_canvas_init(&c, 0, 5, NULL) == CX_ERR_ARG && c.pixels == NULL);
    CHECK(strstr(cx_last_error(), "0x5") != NULL);
    CHECK(cx_canvas_init(&c, 20000, 10, NULL) == CX_ERR_ARG);
    CHECK(cx_canvas_init(&c, 16000, 16000, NULL) == CX_ERR_ARG); /* too many pixels */
    CHECK(cx_canvas_init(NULL, 5, 5, NULL) == CX_ERR_ARG);
    cx_canvas_free(&c); /* safe after a failed init */
    cx_canvas_free(NULL);
    CHECK(cx_canvas_init(&c, 30, 20, NULL) == CX_OK);
    CHECK(c.width == 30 && c.height == 20 && px_is(&c, 29, 19, (uint8_t[]){255, 255, 255}));
    /* fill clipped on every side */
    cx_canvas_fill(&c, -5, -5, 10, 10, RED);
    CHECK(px_is(&c, 0, 0, RED) && px_is(&c, 4, 4, RED) && !px_is(&c, 5, 5, RED));
    cx_canvas_fill(&c, 25, 15, 100, 100, BLACK);
    CHECK(px_is(&c, 29, 19, BLACK) && !px_is(&c, 24, 19, BLACK));
    cx_canvas_fill(&c, 0, 0, -3, 4, BLACK); /* negative size: nothing */
    CHECK(px_is(&c, 0, 0, RED));
    /* outline */
    cx_canvas_free(&c);
    CHECK(cx_canvas_init(&c, 30, 20, NULL) == CX_OK);
    cx_canvas_rect(&c, 2, 3, 10, 8, RED, 2);
    CHECK(px_is(&c, 2, 3, RED) && px_is(&c, 11, 10, RED) && px_is(&c, 3, 4, RED));
    CHECK(!px_is(&c, 4, 5, RED) && !px_is(&c, 6, 6, RED));
    /* lines: a diagonal, and one far outside (clipped, bounded) */
    cx_canvas_line(&c, 0, 19, 19, 0, BLACK, 1);
    for (int i = 0; i < 20; i++) CHECK(px_is(&c, i, 19 - i, BLACK));
    cx_canvas_line(&c, -1000000, 5, 1000000, 5, BLACK, 3);
    for (int x = 0; x < 30; x++) CHECK(px_is(&c, x, 4, BLACK) && px_is(&c, x, 6, BLACK));
    /* paste: a 4x3 red patch, clipped at every border */
    cx_canvas patch, big;
    CHECK(cx_canvas_init(&patch, 4, 3, RED) == CX_OK);
    CHECK(cx_canvas_init(&big, 10, 8, BLACK) == CX_OK);
    cx_canvas_paste(&big, 2, 1, &patch);
    int reds = 0;
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 10; x++) reds += px_is(&big, x, y, RED);
    CHECK(reds == 12 && px_is(&big, 2, 1, RED) && px_is(&big, 5, 3, RED) && !px_is(&big, 6, 3, RED));
    const int px_[] = {-3, 8, -100, 3}, py_[] = {-2, 6, 3, 100};
    for (int i = 0; i < 4; i++) cx_canvas_paste(&big, px_[i], py_[i], &patch);
    CHECK(px_is(&big, 0, 0, RED) && px_is(&big, 9, 7, RED) && px_is(&big, 8, 6, RED));
    cx_canvas_paste(&big, 0, 0, NULL);
    cx_canvas_free(&patch);
    cx_canvas_free(&big);
    cx_canvas_free(&c);
    CHECK(c.pixels == NULL);
    /* NULL canvas / colour: no effect, no crash */
    cx_canvas_fill(NULL, 0, 0, 1, 1, RED);
    cx_canvas_line(&c, 0, 0, 3, 3, RED, 1);
    cx_canvas_text(&c, 0, 0, "a", 1, RED);
}

/* Turned text is the horizontal text rotated: pixel (u, v) of the
 * horizontal rendering lands at (v, W - 1 - u). */
static void test_text_up(void) {
    const char *s = "ab1";
    int W = cx_text_width(s, 2), H = 14;
    cx_canvas h, u;
    CHECK(cx_canvas_init(&h, W, H, BLACK) == CX_OK);
    CHECK(cx_canvas_init(&u, H, W, BLACK) == CX_OK);
    cx_canvas_text(&h, 0, 0, s, 2, RED);
    cx_canvas_text_up(&u, 0, 0, s, 2, RED);
    int on = 0, bad = 0;
    for (int v = 0; v < H; v++)
        for (int x = 0; x < W; x++) {
            bool a = px_is(&h, x, v, RED), b = px_is(&u, v, W - 1 - x, RED);
            on += a;
            bad += a != b;
        }
    CHECK(on > 20);
    CHECK(bad == 0);
    /* clipped far outside: nothing drawn, no crash */
    cx_canvas_text_up(&u, -500, -500, s, 2, BLACK);
    cx_canvas_free(&h);
    cx_canvas_free(&u);
}

static void test_image_overlay_colorbar(void) {
    cx_canvas c;
    CHECK(cx_canvas_init(&c, 60, 40, NULL) == CX_OK);
    const float v[6] = {0, 1, 2, 3, 4, NAN};
    cx_canvas_image(&c, 0, 0, v, 2, 3, 5, 4, 0, 0, CX_CMAP_GRAY); /* own range 0..4 */
    uint8_t g[3];
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 3; k++) {
            int i = r * 3 + k;
            if (i < 5) cx_colormap_rgb(CX_CMAP_GRAY, v[i] / 4, g);
            else memcpy(g, (uint8_t[]){255, 0, 255}, 3);
            CHECK(px_is(&c, k * 5, r * 4, g) && px_is(&c, k * 5 + 4, r * 4 + 3, g));
        }
    /* a fixed range clamps */
    cx_canvas_image(&c, 0, 20, v, 1, 3, 2, 2, 0.5f, 1.5f, CX_CMAP_GRAY);
    CHECK(px_is(&c, 0, 20, BLACK) && px_is(&c, 4, 20, (uint8_t[]){255, 255, 255}));
    /* overlay: alpha 0 leaves the picture; a 1x1 map at its maximum with alpha 1 paints it */
    cx_canvas_fill(&c, 30, 0, 30, 40, RED);
    const float one = 1, cold = 0;
    cx_canvas_overlay(&c, 30, 0, 10, 10, &one, 1, 1, 0, 1, 0.0f, CX_CMAP_HOT);
    CHECK(px_is(&c, 35, 5, RED));
    cx_canvas_overlay(&c, 30, 0, 10, 10, &one, 1, 1, 0, 1, 1.0f, CX_CMAP_HOT);
    CHECK(px_is(&c, 35, 5, (uint8_t[]){255, 255, 255}) && px_is(&c, 30, 0, (uint8_t[]){255, 255, 255}));
    cx_canvas_overlay(&c, 40, 0, 10, 10, &cold, 1, 1, 0, 1, 1.0f, CX_CMAP_HOT); /* t = 0: transparent */
    CHECK(px_is(&c, 45, 5, RED));
    /* 2x1 map stretched over 20 pixels: left half cold, right half hot, a ramp between */
    const float ramp[2] = {0, 1};
    cx_canvas_fill(&c, 0, 30, 20, 10, BLACK);
    cx_canvas_overlay(&c, 0, 30, 20, 10, ramp, 1, 2, 0, 1, 1.0f, CX_CMAP_GRAY);
    CHECK(px_is(&c, 0, 35, BLACK) && px_is(&c, 19, 35, (uint8_t[]){255, 255, 255}));
    const uint8_t *p5 = c.pixels + ((size_t)35 * c.width + 8) * 3, *p6 = c.pixels + ((size_t)35 * c.width + 12) * 3;
    CHECK(p5[0] < p6[0]);
    cx_canvas_free(&c);
    /* colour bar: hi at the top, lo at the bottom, ticks written right of it */
    CHECK(cx_canvas_init(&c, 120, 140, NULL) == CX_OK);
    int w = cx_canvas_colorbar(&c, 10, 10, 12, 100, 0.0f, 1.0f, CX_CMAP_VIRIDIS, 1);
    uint8_t top[3], bot[3];
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 1, top);
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 0, bot);
    CHECK(px_is(&c, 15, 10, top) && px_is(&c, 15, 109, bot));
    CHECK(w > 12 + 6 + cx_text_width("0.0", 1) - 1);
    int ink = 0;
    for (int y = 0; y < 140; y++)
        for (int x = 10 + 12 + 6; x < 120; x++) ink += px_is(&c, x, y, (uint8_t[]){20, 20, 20});
    CHECK(ink > 30); /* tick labels */
    CHECK(cx_canvas_colorbar(&c, 10, 10, 12, 100, 3.0f, 3.0f, CX_CMAP_GRAY, 1) > 12); /* constant */
    cx_canvas_free(&c);
}

/* Top-left corner of the first `side` x `side` block of colour rgb, or false. */
static bool find_block(const cx_canvas *c, const uint8_t rgb[3], int side, int *bx, int *by) {
    for (int y = 0; y + side <= c->height; y++)
        for (int x = 0; x + side <= c->width; x++) {
            if (!px_is(c, x, y, rgb)) continue;
            bool ok = true;
            for (int j = 0; j < side && ok; j++)
                for (int i = 0; i < side && ok; i++) ok = px_is(c, x + i, y + j, rgb);
            if (ok) {
                *bx = x;
                *by = y;
                return true;
            }
        }
    return false;
}

static void test_heatmap(void) {
    enum { R = 3, C = 4, CELL = 20 };
    float v[R * C];
    for (int i = 0; i < R * C; i++) v[i] = (float)i / (R * C - 1);
    const char *rows[R] = {"f", "ih", "n"}, *cols[C] = {"p", "h", "o", "e"};
    cx_heatmap_opts o = cx_heatmap_defaults();
    o.title = "alignment";
    o.xlabel = "letters";
    o.ylabel = "phonemes";
    o.row_labels = rows;
    o.col_labels = cols;
    o.vmin = 0;
    o.vmax = 1;
    o.cell = CELL;
    cx_canvas c;
    CHECK(cx_heatmap_render(&c, v, R, C, &o) == CX_OK);
    CHECK(c.width > C * CELL + 50 && c.height > R * CELL + 40);
    /* every cell is a CELL x CELL block of its colour, in matrix order */
    int x0 = -1, y0 = -1;
    uint8_t col[3];
    cx_colormap_rgb(CX_CMAP_VIRIDIS, 0, col);
    CHECK(find_block(&c, col, CELL, &x0, &y0));
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            cx_colormap_rgb(CX_CMAP_VIRIDIS, v[r * C + k], col);
            bool ok = true;
            for (int j = 0; j < CELL && ok; j++)
                for (int i = 0; i < CELL && ok; i++) ok = px_is(&c, x0 + k * CELL + i, y0 + r * CELL + j, col);
            CHECK_MSG(ok, "cell (%d, %d) not at its place", r, k);
        }
    /* labels: ink left of the matrix (row labels) and below it (column labels) */
    int left_ink = 0, below_ink = 0;
    for (int y = y0; y < y0 + R * CELL; y++)
        for (int x = 0; x < x0 - 2; x++) left_ink += px_is(&c, x, y, (uint8_t[]){20, 20, 20});
    for (int y = y0 + R * CELL + 2; y < c.height; y++)
        for (int x = x0; x < x0 + C * CELL; x++) below_ink += px_is(&c, x, y, (uint8_t[]){20, 20, 20});
    CHECK(left_ink > 50 && below_ink > 50);
    int h_short = c.height;
    cx_canvas_free(&c);
    /* long column labels are turned: the picture grows in height, not width */
    const char *lcols[C] = {"first", "second", "third", "fourth"};
    o.col_labels = lcols;
    o.values = true;
    CHECK(cx_heatmap_render(&c, v, R, C, &o) == CX_OK);
    CHECK(c.height >= h_short + cx_text_width("second", 2) - 14);
    cx_canvas_free(&c);
    /* defaults: no labels given (indices), auto cell and range, NaN */
    v[5] = NAN;
    CHECK(cx_heatmap_render(&c, v, R, C, NULL) == CX_OK);
    uint8_t mag[3] = {255, 0, 255};
    int bx, by;
    CHECK(find_block(&c, mag, 12, &bx, &by));
    cx_canvas_free(&c);
    /* a large matrix gets small cells and stays within bounds */
    float *big = calloc(300 * 500, sizeof(float));
    CHECK(big != NULL);
    if (big) {
        CHECK(cx_heatmap_render(&c, big, 300, 500, NULL) == CX_OK);
        CHECK(c.width < 1200 && c.height < 1000);
        cx_canvas_free(&c);
        free(big);
    }
    /* errors name the argument */
    CHECK(cx_heatmap_render(&c, v, 0, 3, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "0 rows"));
    CHECK(c.pixels == NULL);
    CHECK(cx_heatmap_render(&c, NULL, 2, 3, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "NULL"));
    o.cell = -1;
    CHECK(cx_heatmap_render(&c, v, R, C, &o) == CX_ERR_ARG && strstr(cx_last_error(), "cell"));
    o.cell = 0;
    o.text_scale = 99;
    CHECK(cx_heatmap_render(&c, v, R, C, &o) == CX_ERR_ARG && strstr(cx_last_error(), "text_scale"));
    CHECK(cx_heatmap_render(NULL, v, R, C, NULL) == CX_ERR_ARG);
}

static void test_plot_file(void) {
    char dir[] = "/tmp/cx_test_plot_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/heat.png", dir);
    const float v[6] = {0.1f, 0.9f, 0.0f, 0.2f, 0.3f, 0.5f};
    cx_heatmap_opts o = cx_heatmap_defaults();
    o.title = "test";
    CHECK(cx_plot_heatmap(path, v, 2, 3, &o) == CX_OK);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&img, path) != 0);
    cx_canvas c;
    CHECK(cx_heatmap_render(&c, v, 2, 3, &o) == CX_OK);
    CHECK((int)img.width == c.width && (int)img.height == c.height);
    img.format = PNG_FORMAT_RGB;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    CHECK(buf && png_image_finish_read(&img, NULL, buf, 0, NULL));
    CHECK(buf && !memcmp(buf, c.pixels, (size_t)c.width * c.height * 3));
    free(buf);
    /* cx_canvas_save writes the same picture; an empty canvas is refused */
    char path2[160];
    snprintf(path2, sizeof path2, "%s/canvas.png", dir);
    CHECK(cx_canvas_save(&c, path2) == CX_OK);
    png_image img2;
    memset(&img2, 0, sizeof img2);
    img2.version = PNG_IMAGE_VERSION;
    CHECK(png_image_begin_read_from_file(&img2, path2) != 0);
    img2.format = PNG_FORMAT_RGB;
    uint8_t *buf2 = malloc(PNG_IMAGE_SIZE(img2));
    CHECK(buf2 && png_image_finish_read(&img2, NULL, buf2, 0, NULL));
    CHECK(buf2 && (int)img2.width == c.width && !memcmp(buf2, c.pixels, (size_t)c.width * c.height * 3));
    free(buf2);
    unlink(path2);
    cx_canvas_free(&c);
    CHECK(cx_canvas_save(&c, path2) == CX_ERR_ARG && strstr(cx_last_error(), "empty canvas"));
    CHECK(access(path2, F_OK) != 0);
    /* errors: empty path; a directory that does not exist (the file is not created) */
    CHECK(cx_plot_heatmap("", v, 2, 3, &o) == CX_ERR_ARG);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/x.png", dir);
    CHECK(cx_plot_heatmap(bad, v, 2, 3, &o) == CX_ERR_IO);
    CHECK(access(bad, F_OK) != 0);
    unlink(path);
    rmdir(dir);
}

/* Axis helpers: nice steps, their decimals, finite ranges. */
static void test_ticks_and_ranges(void) {
    CHECK_NEAR(cx_plot_tick_step(1.0, 5), 0.2, 1e-12);
    CHECK_NEAR(cx_plot_tick_step(7.3, 5), 1.0, 1e-12);  /* raw 1.46: 1 */
    CHECK_NEAR(cx_plot_tick_step(8.0, 5), 2.0, 1e-12);  /* raw 1.6: 2 */
    CHECK_NEAR(cx_plot_tick_step(0.037, 4), 0.01, 1e-12);
    CHECK_NEAR(cx_plot_tick_step(350, 5), 100, 1e-9);   /* raw 70: 7 rounds up to 10 */
    CHECK_NEAR(cx_plot_tick_step(300, 5), 50, 1e-9);    /* raw 60: 5 */
    CHECK_NEAR(cx_plot_tick_step(0, 5), 1, 0);
    CHECK_NEAR(cx_plot_tick_step(NAN, 5), 1, 0);
    CHECK(cx_plot_tick_decimals(0.2) == 1 && cx_plot_tick_decimals(0.01) == 2 && cx_plot_tick_decimals(50) == 0);
    CHECK(cx_plot_tick_decimals(1e-12) == 8 && cx_plot_tick_decimals(0) == 0);
    float v[5] = {NAN, 3, -INFINITY, -2, 7}, lo = 99, hi = 99;
    CHECK(cx_finite_range(v, 5, &lo, &hi) && lo == -2 && hi == 7);
    float w[2] = {NAN, INFINITY};
    lo = hi = 5;
    CHECK(!cx_finite_range(w, 2, &lo, &hi) && lo == 5 && hi == 5);
}

int main(void) {
    RUN(test_colormaps);
    RUN(test_canvas);
    RUN(test_text_up);
    RUN(test_image_overlay_colorbar);
    RUN(test_heatmap);
    RUN(test_plot_file);
    RUN(test_ticks_and_ranges);
    TEST_END();
}
