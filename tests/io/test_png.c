/* PNG output and input: gradients written with cx_png_write_gray / cx_png_write_rgb and
 * read back with libpng's own reader (pixel-exact), atomic replacement of an
 * existing file, and errors (bad arguments, unwritable paths, an image libpng
 * refuses) that leave no temporary file behind and the old file untouched. */
#include <dirent.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static char tmpdir[256];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* Number of entries of tmpdir whose name holds ".tmp." (leftover temp files). */
static int count_temp_files(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* Read a PNG with libpng's simplified API into `format` (PNG_FORMAT_GRAY or
 * PNG_FORMAT_RGB); returns the malloc'd pixels or NULL. *file_color tells
 * whether the file itself holds colour. */
static uint8_t *read_png(const char *path, png_uint_32 format, int *w, int *h, bool *file_color) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        fprintf(stderr, "  read_png %s: %s\n", path, img.message);
        return NULL;
    }
    *file_color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    img.format = format;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        fprintf(stderr, "  read_png %s: %s\n", path, img.message);
        free(buf);
        png_image_free(&img);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static void test_gray_roundtrip(void) {
    const int W = 37, H = 23; /* odd sizes */
    uint8_t *px = malloc((size_t)W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (uint8_t)((x * 255 / (W - 1) + y * 7) & 255);
    char path[512];
    tmp_path(path, sizeof path, "gray.png");
    CHECK(cx_png_write_gray(path, px, W, H) == CX_OK);
    int w = 0, h = 0;
    bool color = true;
    uint8_t *back = read_png(path, PNG_FORMAT_GRAY, &w, &h, &color);
    CHECK(back != NULL);
    if (back) {
        CHECK(w == W && h == H);
        CHECK_MSG(!color, "a grey image was stored as colour");
        CHECK(memcmp(back, px, (size_t)W * H) == 0);
    }
    CHECK(count_temp_files() == 0);
    free(back);
    free(px);
}

static void test_rgb_roundtrip(void) {
    const int W = 29, H = 17;
    uint8_t *px = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + (y * W + x) * 3;
            p[0] = (uint8_t)(x * 255 / (W - 1));
            p[1] = (uint8_t)(y * 255 / (H - 1));
            p[2] = (uint8_t)(255 - (x + y) * 4);
        }
    char path[512];
    tmp_path(path, sizeof path, "rgb.png");
    CHECK(cx_png_write_rgb(path, px, W, H) == CX_OK);
    int w = 0, h = 0;
    bool color = false;
    uint8_t *back = read_png(path, PNG_FORMAT_RGB, &w, &h, &color);
    CHECK(back != NULL);
    if (back) {
        CHECK(w == W && h == H);
        CHECK(color);
        CHECK(memcmp(back, px, (size_t)W * H * 3) == 0);
        /* corners: red ramp along x, green along y */
        CHECK(back[0] == 0 && back[1] == 0 && back[2] == 255);
        CHECK(back[(W - 1) * 3] == 255 && back[((H - 1) * W) * 3 + 1] == 255);
    }
    free(back);

    /* a 1x1 image and replacing an existing file */
    uint8_t one[3] = {10, 200, 30};
    CHECK(cx_png_write_rgb(path, one, 1, 1) == CX_OK);
    back = read_png(path, PNG_FORMAT_RGB, &w, &h, &color);
    CHECK(back && w == 1 && h == 1 && back[0] == 10 && back[1] == 200 && back[2] == 30);
    CHECK(count_temp_files() == 0);
    free(back);
    free(px);
}

/* cx_png_read: Cortex's own files back pixel-exact (grey stays grey, RGB
 * RGB), an RGBA file with alpha composited onto white, and errors (missing
 * file, not a PNG, a truncated one) named, with no pixels returned. */
static void test_read(void) {
    const int W = 13, H = 9;
    uint8_t g[13 * 9], c[13 * 9 * 3];
    for (int i = 0; i < W * H; i++) {
        g[i] = (uint8_t)(i * 2);
        c[3 * i] = (uint8_t)i, c[3 * i + 1] = (uint8_t)(255 - i), c[3 * i + 2] = (uint8_t)(i * 3);
    }
    char path[512], bad[512];
    tmp_path(path, sizeof path, "read_g.png");
    CHECK(cx_png_write_gray(path, g, W, H) == CX_OK);
    uint8_t *px = NULL;
    int w = 0, h = 0, ch = 0;
    CHECK(cx_png_read(path, &px, &w, &h, &ch) == CX_OK);
    CHECK(px && w == W && h == H && ch == 1 && !memcmp(px, g, sizeof g));
    free(px);
    tmp_path(path, sizeof path, "read_c.png");
    CHECK(cx_png_write_rgb(path, c, W, H) == CX_OK);
    CHECK(cx_png_read(path, &px, &w, &h, &ch) == CX_OK);
    CHECK(px && w == W && h == H && ch == 3 && !memcmp(px, c, sizeof c));
    free(px);
    /* RGBA through libpng's writer: a transparent pixel reads as white, an opaque one as itself */
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 2, im.height = 1, im.format = PNG_FORMAT_RGBA;
    uint8_t rgba[8] = {255, 0, 0, 0, 10, 20, 30, 255};
    tmp_path(path, sizeof path, "read_a.png");
    CHECK(png_image_write_to_file(&im, path, 0, rgba, 0, NULL));
    CHECK(cx_png_read(path, &px, &w, &h, &ch) == CX_OK);
    CHECK(px && w == 2 && h == 1 && ch == 3);
    if (px) CHECK(px[0] == 255 && px[1] == 255 && px[2] == 255 && px[3] == 10 && px[4] == 20 && px[5] == 30);
    free(px);
    /* errors */
    tmp_path(bad, sizeof bad, "missing.png");
    CHECK(cx_png_read(bad, &px, &w, &h, &ch) == CX_ERR_IO && px == NULL && strstr(cx_last_error(), "cannot open"));
    tmp_path(bad, sizeof bad, "text.png");
    FILE *f = fopen(bad, "wb");
    fputs("this is not an image at all", f);
    fclose(f);
    CHECK(cx_png_read(bad, &px, &w, &h, &ch) == CX_ERR_FORMAT && px == NULL && strstr(cx_last_error(), "not a PNG"));
    /* the colour file cut in half */
    tmp_path(path, sizeof path, "read_c.png");
    f = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    tmp_path(bad, sizeof bad, "cut.png");
    f = fopen(bad, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    CHECK_MSG(cx_png_read(bad, &px, &w, &h, &ch) == CX_ERR_FORMAT && px == NULL, "%s", cx_last_error());
    CHECK(strstr(cx_last_error(), "cut.png: libpng:"));
    CHECK(cx_png_read(NULL, &px, &w, &h, &ch) == CX_ERR_ARG);
}

static void test_errors(void) {
    uint8_t px[12] = {0};
    char path[512], dir[512], big[512];
    tmp_path(path, sizeof path, "keep.png");
    CHECK(cx_png_write_gray(path, px, 4, 3) == CX_OK);
    struct stat st0;
    CHECK(stat(path, &st0) == 0);

    /* bad arguments: nothing is created */
    CHECK(cx_png_write_gray(path, px, 0, 3) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "0x3") != NULL);
    CHECK(cx_png_write_rgb(path, px, 2, -1) == CX_ERR_ARG);
    CHECK(cx_png_write_gray(path, NULL, 4, 3) == CX_ERR_ARG);
    CHECK(cx_png_write_gray("", px, 4, 3) == CX_ERR_ARG);
    CHECK(cx_png_write_gray(NULL, px, 4, 3) == CX_ERR_ARG);

    /* a directory that does not exist */
    tmp_path(dir, sizeof dir, "no/such/dir/x.png");
    CHECK(cx_png_write_gray(dir, px, 4, 3) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "no/such/dir/x.png") != NULL);

    /* the target is a directory: the temp file is written, the rename fails,
     * the temp file is removed */
    tmp_path(dir, sizeof dir, "adir");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(cx_png_write_rgb(dir, px, 2, 2) == CX_ERR_IO);
    CHECK_MSG(count_temp_files() == 0, "a temp file was left behind after a failed rename");

    /* libpng refuses the image (width beyond its 1000000-pixel limit): the
     * setjmp path returns CX_ERR_IO quoting libpng, no temp file remains and
     * the existing file is untouched */
    const int wide = 1000001;
    uint8_t *row = calloc((size_t)wide, 1);
    CHECK(cx_png_write_gray(path, row, wide, 1) == CX_ERR_IO);
    CHECK_MSG(strstr(cx_last_error(), "libpng") && strstr(cx_last_error(), "keep.png"), "message: %s",
              cx_last_error());
    CHECK_MSG(count_temp_files() == 0, "a temp file was left behind after a libpng error");
    struct stat st1;
    CHECK(stat(path, &st1) == 0 && st1.st_size == st0.st_size && st1.st_ino == st0.st_ino);
    int w = 0, h = 0;
    bool color = true;
    uint8_t *back = read_png(path, PNG_FORMAT_GRAY, &w, &h, &color);
    CHECK(back && w == 4 && h == 3);
    free(back);
    /* a new file is not created either */
    tmp_path(big, sizeof big, "big.png");
    CHECK(cx_png_write_gray(big, row, wide, 1) == CX_ERR_IO);
    CHECK(access(big, F_OK) != 0);
    CHECK(count_temp_files() == 0);
    free(row);
}

/* The bitmap font: widths, the glyph pixels of a known letter, clipping at
 * every border, both letter cases, unknown bytes as a hollow box. */
static void test_font(void) {
    CHECK(cx_text_width("", 1) == 0 && cx_text_width(NULL, 1) == 0 && cx_text_width("ab", 0) == 0);
    CHECK(cx_text_width("a", 1) == 5 && cx_text_width("ab", 1) == 11 && cx_text_width("ab", 2) == 22);
    enum { W = 20, H = 12 };
    uint8_t px[W * H * 3], ref[W * H * 3];
    const uint8_t red[3] = {255, 0, 0};
    memset(px, 0, sizeof px);
    cx_text_draw_rgb(px, W, H, 1, 2, "l", 1, red);
    /* 'l' is ".##.." then four "..#.." rows then ".###." */
    static const char *l_rows[7] = {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."};
    int lit = 0, wrong = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const uint8_t *p = px + (y * W + x) * 3;
            bool on = y >= 2 && y < 9 && x >= 1 && x < 6 && l_rows[y - 2][x - 1] == '#';
            if (on) lit += p[0] == 255 && p[1] == 0 && p[2] == 0;
            else wrong += p[0] || p[1] || p[2];
        }
    CHECK(lit == 10 && wrong == 0);
    /* upper case has its own glyphs: 'L' is a column and a bottom bar */
    memset(ref, 0, sizeof ref);
    cx_text_draw_rgb(ref, W, H, 1, 2, "L", 1, red);
    CHECK(memcmp(px, ref, sizeof px) != 0);
    int col = 0, bar = 0;
    for (int y = 2; y < 9; y++) col += ref[(y * W + 1) * 3] == 255;
    for (int x = 1; x < 6; x++) bar += ref[(8 * W + x) * 3] == 255;
    CHECK(col == 7 && bar == 5);
    /* every letter of both cases is a real glyph, not the hollow box */
    uint8_t box_px[W * H * 3];
    memset(box_px, 0, sizeof box_px);
    cx_text_draw_rgb(box_px, W, H, 0, 0, "\x01", 1, red);
    for (char ch = 'A'; ch <= 'z'; ch++) {
        if (ch > 'Z' && ch < 'a') continue;
        char s1[2] = {ch, 0};
        memset(ref, 0, sizeof ref);
        cx_text_draw_rgb(ref, W, H, 0, 0, s1, 1, red);
        CHECK_MSG(memcmp(ref, box_px, sizeof ref) != 0, "letter '%c' has no glyph", ch);
    }
    /* so are the punctuation marks of questions and sentences */
    for (const char *p = "?!,.:'"; *p; p++) {
        char s1[2] = {*p, 0};
        memset(ref, 0, sizeof ref);
        cx_text_draw_rgb(ref, W, H, 0, 0, s1, 1, red);
        CHECK_MSG(memcmp(ref, box_px, sizeof ref) != 0, "'%c' has no glyph", *p);
    }
    /* '<' and '>' exist (captions print <unk>); an unknown byte is a hollow box */
    memset(px, 0, sizeof px);
    memset(ref, 0, sizeof ref);
    cx_text_draw_rgb(px, W, H, 0, 0, "<", 1, red);
    cx_text_draw_rgb(ref, W, H, 0, 0, "\x01", 1, red);
    CHECK(memcmp(px, ref, sizeof px) != 0);
    int box = 0;
    for (int i = 0; i < W * H; i++) box += ref[i * 3] == 255;
    CHECK(box == 20); /* 5x7 outline */
    /* clipping: text off every border, scaled, writes nothing outside */
    uint8_t *inner = malloc(W * H * 3);
    CHECK(inner != NULL);
    if (!inner) return;
    memset(inner, 0, W * H * 3);
    const int xs[] = {-30, -3, 15, 19, 40}, ys[] = {-20, -5, 8, 11, 30};
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) cx_text_draw_rgb(inner, W, H, xs[i], ys[j], "mw%", 3, red);
    cx_text_draw_rgb(NULL, W, H, 0, 0, "a", 1, red);
    cx_text_draw_rgb(inner, W, H, 0, 0, NULL, 1, red);
    /* nothing was written past the W x H buffer: ASan checks the heap block */
    int any = 0;
    for (int i = 0; i < W * H * 3; i++) any |= inner[i];
    CHECK(any);
    free(inner);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_png_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_gray_roundtrip);
    RUN(test_rgb_roundtrip);
    RUN(test_errors);
    RUN(test_read);
    RUN(test_font);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_png: could not remove %s\n", tmpdir);
    TEST_END();
}
