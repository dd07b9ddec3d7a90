/* cx_plot_lines: the series are drawn in their colours where their points
 * fall, non-finite points are skipped, the file is a PNG, and bad arguments
 * are reported. */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"
#include <cortex/plot.h>

static int has_colour(const cx_canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            if (x < 0 || y < 0 || x >= c->width || y >= c->height) continue;
            const uint8_t *p = c->pixels + ((size_t)y * c->width + x) * 3;
            if (p[0] == rgb[0] && p[1] == rgb[1] && p[2] == rgb[2]) return 1;
        }
    return 0;
}

static void draws_series_in_colour(void) {
    double x[3] = {0, 50, 100}, y1[3] = {0, 5, 10}, y2[3] = {10, NAN, 0};
    cx_line_series s[2] = {{"up", x, y1, 3}, {"down", x, y2, 3}};
    cx_lines_opts o = cx_lines_defaults();
    o.title = "test";
    o.xlabel = "x";
    o.ylabel = "y";
    cx_canvas c;
    CHECK(cx_lines_render(&c, s, 2, &o) == CX_OK);
    CHECK(c.width == 760 && c.height == 420);
    /* plot area: x in [78, 740), y in [62, 364); first series blue rises
     * from the bottom-left corner to the top-right */
    const uint8_t blue[3] = {31, 119, 180}, orange[3] = {255, 127, 14};
    CHECK(has_colour(&c, 74, 358, 84, 366, blue));
    CHECK(has_colour(&c, 733, 58, 742, 68, blue));
    /* the second has a hole at x = 50: its two points are drawn, the line between is not */
    CHECK(has_colour(&c, 74, 58, 84, 68, orange));
    CHECK(has_colour(&c, 733, 358, 742, 366, orange));
    CHECK(!has_colour(&c, 405, 205, 415, 215, orange));
    cx_canvas_free(&c);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cx_lines_%d.png", (int)getpid());
    CHECK(cx_plot_lines(path, s, 2, &o) == CX_OK);
    FILE *f = fopen(path, "rb");
    unsigned char sig[4] = {0};
    CHECK(f && fread(sig, 1, 4, f) == 4 && sig[1] == 'P' && sig[2] == 'N' && sig[3] == 'G');
    if (f) fclose(f);
    unlink(path);
}

static void bad_arguments(void) {
    double x[1] = {NAN}, y[1] = {1};
    cx_line_series s = {"a", x, y, 1};
    cx_canvas c;
    CHECK(cx_lines_render(&c, &s, 1, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "no finite point"));
    CHECK(cx_lines_render(&c, &s, 0, NULL) == CX_ERR_ARG);
    cx_line_series n = {"b", NULL, y, 1};
    CHECK(cx_lines_render(&c, &n, 1, NULL) == CX_ERR_ARG && strstr(cx_last_error(), "NULL"));
    cx_lines_opts o = cx_lines_defaults();
    o.width = 50;
    x[0] = 1;
    CHECK(cx_lines_render(&c, &s, 1, &o) == CX_ERR_ARG && strstr(cx_last_error(), "size"));
}

int main(void) {
    RUN(draws_series_in_colour);
    RUN(bad_arguments);
    TEST_END();
}
