/* 8-bit PNG output through libpng, written atomically (cx_atomic_open /
 * cx_atomic_commit), and input through libpng's simplified reader. libpng reports errors by longjmp to png_jmpbuf: they
 * are caught here and returned as cx_status with libpng's message. */
#include <png.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
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

#define PNG_MAX_SIDE 16384
#define PNG_MAX_PIXELS ((int64_t)1 << 26)

cx_status cx_png_read(const char *path, uint8_t **pixels, int *width, int *height, int *channels) {
    if (pixels) *pixels = NULL;
    if (!path || !*path || !pixels || !width || !height || !channels)
        return cx_set_error(CX_ERR_ARG, "cx_png_read: NULL or empty argument");
    FILE *fp = fopen(path, "rb");
    if (!fp) return cx_set_error(CX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, fp);
    if (got != sizeof sig || png_sig_cmp(sig, 0, sizeof sig)) {
        fclose(fp);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a PNG file (no PNG signature)", path);
    }
    rewind(fp);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&im, fp)) {
        fclose(fp);
        cx_status st = cx_set_error(CX_ERR_FORMAT, "%s: libpng: %s", path, im.message);
        png_image_free(&im);
        return st;
    }
    if (im.width < 1 || im.height < 1 || im.width > PNG_MAX_SIDE || im.height > PNG_MAX_SIDE ||
        (int64_t)im.width * im.height > PNG_MAX_PIXELS) {
        png_image_free(&im);
        fclose(fp);
        return cx_set_error(CX_ERR_FORMAT, "%s: image of %ux%u pixels (at most %d a side and 2^26 in all)", path,
                            (unsigned)im.width, (unsigned)im.height, PNG_MAX_SIDE);
    }
    const int ch = im.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    im.format = ch == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    uint8_t *buf = malloc((size_t)im.width * im.height * (size_t)ch);
    if (!buf) {
        png_image_free(&im);
        fclose(fp);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory for %ux%u pixels", path, (unsigned)im.width,
                            (unsigned)im.height);
    }
    const png_color white = {255, 255, 255};
    if (!png_image_finish_read(&im, &white, buf, 0, NULL)) {
        cx_status st = cx_set_error(CX_ERR_FORMAT, "%s: libpng: %s", path, im.message);
        free(buf);
        png_image_free(&im);
        fclose(fp);
        return st;
    }
    fclose(fp);
    *pixels = buf;
    *width = (int)im.width;
    *height = (int)im.height;
    *channels = ch;
    return CX_OK;
}
