/* 8-bit PNG output through libpng, written atomically (cx_atomic_open /
 * cx_atomic_commit). libpng reports errors by longjmp to png_jmpbuf: they
 * are caught here and returned as cx_status with libpng's message. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "cortex/core.h"
#include "cortex/io.h"

typedef struct {
    char msg[200];   /* last libpng error */
    char warn[200];  /* last libpng warning (often explains the error) */
} png_diag;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_diag *d = png_get_error_ptr(png);
    if (d) snprintf(d->msg, sizeof d->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg) {
    png_diag *d = png_get_error_ptr(png);
    if (d) snprintf(d->warn, sizeof d->warn, "%s", msg ? msg : "");
}

static cx_status png_write(const char *path, const uint8_t *pixels, int width, int height, int channels) {
    if (!path || !*path) return cx_set_error(CX_ERR_ARG, "cx_png_write: empty path");
    if (!pixels) return cx_set_error(CX_ERR_ARG, "%s: cx_png_write: pixels is NULL", path);
    if (width < 1 || height < 1)
        return cx_set_error(CX_ERR_ARG, "%s: cx_png_write: image size %dx%d (width and height must be >= 1)", path,
                            width, height);
    cx_atomic_file *af = NULL;
    cx_status st = cx_atomic_open(&af, path);
    if (st) return st;
    FILE *fp = cx_atomic_stream(af);
    /* diag is written by the callbacks between setjmp and longjmp: a static
     * (per thread) object keeps its value across the jump, a local would not. */
    static _Thread_local png_diag diag;
    diag.msg[0] = diag.warn[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &diag, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        cx_atomic_abort(af);
        return cx_set_error(CX_ERR_NOMEM, "%s: libpng: out of memory", path);
    }
    /* png, info and af are not modified between setjmp and a longjmp. */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        cx_atomic_abort(af);
        if (diag.warn[0])
            return cx_set_error(CX_ERR_IO, "%s: libpng: %s (%s)", path, diag.msg, diag.warn);
        return cx_set_error(CX_ERR_IO, "%s: libpng: %s", path, diag.msg);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return cx_atomic_commit(af);
}

cx_status cx_png_write_gray(const char *path, const uint8_t *pixels, int width, int height) {
    return png_write(path, pixels, width, height, 1);
}

cx_status cx_png_write_rgb(const char *path, const uint8_t *pixels, int width, int height) {
    return png_write(path, pixels, width, height, 3);
}
