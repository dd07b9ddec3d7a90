/* Animated GIF output through giflib (Debian libgif-dev), written
 * atomically (cx_atomic_open / cx_atomic_commit), and PNG film strips.
 *
 * Each frame is one GIF image with its own (local) colour table: the
 * frame's exact colours when it has at most 256, otherwise a fixed 6x6x6
 * colour cube (each channel rounded to the nearest of 0, 51, ..., 255).
 * Frames are streamed to the file as they are added, so a long episode
 * needs no more memory than one frame. A NETSCAPE2.0 block makes viewers
 * loop the animation. */
#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/core.h"
#include "cortex/io.h"

struct cx_gif {
    char *path;
    cx_atomic_file *af;
    GifFileType *gif;
    int w, h, delay_cs, frames;
    cx_status err;        /* the first error met (close then reports it) */
    GifByteType *line;    /* [w] colour indices of one row */
};

static int gif_out(GifFileType *g, const GifByteType *buf, int n) {
    FILE *fp = g->UserData;
    return (int)fwrite(buf, 1, (size_t)n, fp);
}

static cx_status gif_fail(cx_gif *g, int code, const char *what) {
    const char *msg = GifErrorString(code);
    g->err = cx_set_error(CX_ERR_IO, "%s: giflib: %s: %s", g->path, what, msg ? msg : "unknown error");
    return g->err;
}

static void gif_release(cx_gif *g) {
    if (g->gif) {
        int code;
        EGifCloseFile(g->gif, &code); /* frees; its output goes to the temp file, which is removed */
    }
    cx_atomic_abort(g->af);
    free(g->line);
    free(g->path);
    free(g);
}

cx_status cx_gif_open(cx_gif **out, const char *path, int width, int height, int delay_cs) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_gif_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_gif_open: empty path");
    if (width < 1 || height < 1 || width > 65535 || height > 65535)
        return cx_set_error(CX_ERR_ARG, "%s: cx_gif_open: size %dx%d (GIF sides are 1 .. 65535)", path, width, height);
    if (delay_cs < 0 || delay_cs > 65535)
        return cx_set_error(CX_ERR_ARG, "%s: cx_gif_open: delay %d (hundredths of a second, 0 .. 65535)", path,
                            delay_cs);
    cx_gif *g = calloc(1, sizeof *g);
    if (!g) return cx_set_error(CX_ERR_NOMEM, "%s: cx_gif_open: out of memory", path);
    g->path = malloc(strlen(path) + 1);
    g->line = malloc((size_t)width);
    if (!g->path || !g->line) {
        gif_release(g);
        return cx_set_error(CX_ERR_NOMEM, "%s: cx_gif_open: out of memory", path);
    }
    strcpy(g->path, path);
    g->w = width;
    g->h = height;
    g->delay_cs = delay_cs;
    cx_status st = cx_atomic_open(&g->af, path);
    if (st) {
        gif_release(g);
        return st;
    }
    int code = 0;
    g->gif = EGifOpen(cx_atomic_stream(g->af), gif_out, &code);
    if (!g->gif) {
        st = gif_fail(g, code, "EGifOpen");
        gif_release(g);
        return st;
    }
    EGifSetGifVersion(g->gif, true); /* GIF89a: delays and the loop block */
    if (EGifPutScreenDesc(g->gif, width, height, 8, 0, NULL) == GIF_ERROR) {
        st = gif_fail(g, g->gif->Error, "screen descriptor");
        gif_release(g);
        return st;
    }
    /* NETSCAPE2.0 application block: loop forever (count 0) */
    static const GifByteType loop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(g->gif, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
        EGifPutExtensionBlock(g->gif, 11, "NETSCAPE2.0") == GIF_ERROR ||
        EGifPutExtensionBlock(g->gif, 3, loop) == GIF_ERROR || EGifPutExtensionTrailer(g->gif) == GIF_ERROR) {
        st = gif_fail(g, g->gif->Error, "loop extension");
        gif_release(g);
        return st;
    }
    *out = g;
    return CX_OK;
}

/* Open-addressing set of 24-bit colours (at most 256 kept). */
#define HSIZE 1024
typedef struct {
    int32_t key[HSIZE]; /* -1: empty */
    uint8_t idx[HSIZE];
    int n;
} colour_set;

static int cs_find(const colour_set *cs, int32_t c) {
    unsigned h = ((uint32_t)c * 2654435761u) >> 22; /* 10 bits */
    while (cs->key[h] != -1 && cs->key[h] != c) h = (h + 1) & (HSIZE - 1);
    return (int)h;
}

/* The frame's exact palette; false when it has more than 256 colours. */
static bool exact_palette(const uint8_t *rgb, size_t npix, colour_set *cs, GifColorType *pal) {
    memset(cs->key, 0xff, sizeof cs->key);
    cs->n = 0;
    for (size_t i = 0; i < npix; i++) {
        int32_t c = (int32_t)rgb[3 * i] << 16 | (int32_t)rgb[3 * i + 1] << 8 | rgb[3 * i + 2];
        int h = cs_find(cs, c);
        if (cs->key[h] == c) continue;
        if (cs->n == 256) return false;
        cs->key[h] = c;
        cs->idx[h] = (uint8_t)cs->n;
        pal[cs->n] = (GifColorType){rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]};
        cs->n++;
    }
    return true;
}

static int cube_level(uint8_t v) { return (v * 5 + 127) / 255; }

cx_status cx_gif_add(cx_gif *g, const uint8_t *rgb) {
    if (!g) return cx_set_error(CX_ERR_ARG, "cx_gif_add: NULL writer");
    if (g->err) return g->err;
    if (!rgb) return g->err = cx_set_error(CX_ERR_ARG, "%s: cx_gif_add: pixels is NULL", g->path);
    size_t npix = (size_t)g->w * g->h;
    static _Thread_local colour_set cs;
    GifColorType pal[256];
    bool exact = exact_palette(rgb, npix, &cs, pal);
    int ncol = exact ? cs.n : 216, bits = 1;
    if (!exact)
        for (int i = 0; i < 216; i++)
            pal[i] = (GifColorType){(GifByteType)(i / 36 * 51), (GifByteType)(i / 6 % 6 * 51), (GifByteType)(i % 6 * 51)};
    while ((1 << bits) < ncol) bits++;
    for (int i = ncol; i < (1 << bits); i++) pal[i] = (GifColorType){0, 0, 0};
    ColorMapObject *map = GifMakeMapObject(1 << bits, pal);
    if (!map) return g->err = cx_set_error(CX_ERR_NOMEM, "%s: cx_gif_add: out of memory", g->path);
    GraphicsControlBlock gcb = {DISPOSAL_UNSPECIFIED, false, g->delay_cs, NO_TRANSPARENT_COLOR};
    GifByteType ext[4];
    EGifGCBToExtension(&gcb, ext);
    cx_status st = CX_OK;
    if (EGifPutExtension(g->gif, GRAPHICS_EXT_FUNC_CODE, 4, ext) == GIF_ERROR ||
        EGifPutImageDesc(g->gif, 0, 0, g->w, g->h, false, map) == GIF_ERROR)
        st = gif_fail(g, g->gif->Error, "image header");
    for (int y = 0; y < g->h && !st; y++) {
        const uint8_t *p = rgb + (size_t)y * g->w * 3;
        for (int x = 0; x < g->w; x++, p += 3) {
            if (exact) {
                int32_t c = (int32_t)p[0] << 16 | (int32_t)p[1] << 8 | p[2];
                g->line[x] = cs.idx[cs_find(&cs, c)];
            } else {
                g->line[x] = (GifByteType)(cube_level(p[0]) * 36 + cube_level(p[1]) * 6 + cube_level(p[2]));
            }
        }
        if (EGifPutLine(g->gif, g->line, g->w) == GIF_ERROR) st = gif_fail(g, g->gif->Error, "image data");
    }
    GifFreeMapObject(map);
    if (!st) g->frames++;
    return st;
}

int cx_gif_frames(const cx_gif *g) { return g ? g->frames : 0; }

void cx_gif_abort(cx_gif *g) {
    if (g) gif_release(g);
}

cx_status cx_gif_close(cx_gif *g) {
    if (!g) return cx_set_error(CX_ERR_ARG, "cx_gif_close: NULL writer");
    cx_status st = g->err;
    if (!st && g->frames == 0) st = cx_set_error(CX_ERR_ARG, "%s: cx_gif_close: no frames were added", g->path);
    if (st) {
        gif_release(g);
        return st;
    }
    int code = 0;
    int rc = EGifCloseFile(g->gif, &code); /* writes the trailer; frees g->gif */
    g->gif = NULL;
    if (rc == GIF_ERROR) {
        st = gif_fail(g, code, "close");
        gif_release(g);
        return st;
    }
    st = cx_atomic_commit(g->af); /* fsync, rename; frees af */
    g->af = NULL;
    free(g->line);
    free(g->path);
    free(g);
    return st;
}

cx_status cx_png_write_strip(const char *path, const uint8_t *const *frames, int n, int width, int height, int cols) {
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_png_write_strip: empty path");
    if (!frames || n < 1 || width < 1 || height < 1 || cols < 1)
        return cx_set_error(CX_ERR_ARG, "%s: cx_png_write_strip: %d frames of %dx%d in %d columns (need frames, n, sides, cols >= 1)",
                            path, n, width, height, cols);
    for (int i = 0; i < n; i++)
        if (!frames[i]) return cx_set_error(CX_ERR_ARG, "%s: cx_png_write_strip: frame %d is NULL", path, i);
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    long W = (long)cols * width + cols - 1, H = (long)rows * height + rows - 1;
    if (W > 1000000 || H > 1000000 || W * H > (64L << 20))
        return cx_set_error(CX_ERR_ARG, "%s: cx_png_write_strip: a %ldx%ld picture is too large", path, W, H);
    uint8_t *img = malloc((size_t)W * H * 3);
    if (!img) return cx_set_error(CX_ERR_NOMEM, "%s: cx_png_write_strip: out of memory", path);
    memset(img, 160, (size_t)W * H * 3); /* the grey of the gaps */
    for (int i = 0; i < n; i++) {
        long x0 = (long)(i % cols) * (width + 1), y0 = (long)(i / cols) * (height + 1);
        for (int y = 0; y < height; y++)
            memcpy(img + ((size_t)(y0 + y) * W + x0) * 3, frames[i] + (size_t)y * width * 3, (size_t)width * 3);
    }
    cx_status st = cx_png_write_rgb(path, img, (int)W, (int)H);
    free(img);
    return st;
}
