/* cortex/io.h -- safetensors, IDX, CSV, PNG output (with a bitmap font for labels),
 * atomic file writes, animated GIFs and PNG film strips. See cortex.h.
 *
 * Every reader is bounds-checked: a truncated, corrupt or hostile file gives
 * CX_ERR_FORMAT (or CX_ERR_IO) with a message from cx_last_error() naming
 * the file and the problem -- never a crash or an out-of-bounds read.
 * Every writer is atomic: it writes "<path>.tmp.<pid>", fsyncs it, renames
 * it over <path> and fsyncs the directory, so an interrupted save never
 * destroys the previous file. */
#ifndef CORTEX_IO_H
#define CORTEX_IO_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---- atomic writes */
/* Write `n` bytes to `path` atomically. Errors: CX_ERR_IO (message names the
 * path and the failing system call); on failure the temp file is removed and
 * an existing <path> is left untouched. An existing character device or FIFO
 * (/dev/null, a pipe) is written in place, never replaced; an existing
 * directory makes the rename fail (CX_ERR_IO). Temp files "<path>.tmp.<pid>"
 * left by processes killed during a save are removed first when that process
 * no longer exists (never a live process's file, never another name). The
 * same holds for every atomic writer (cx_atomic_open, safetensors, PNG, the
 * trainer). */
cx_status cx_write_file_atomic(const char *path, const void *data, size_t n);
/* Create directory `dir` and any missing parents (mkdir -p, mode 0777 less
 * the umask). Existing directories are fine; a path component that exists
 * and is not a directory, or an empty path, gives CX_ERR_IO / CX_ERR_ARG
 * with a message naming the path and the reason. */
cx_status cx_mkdirs(const char *dir);
/* Streamed variant: open a temp file next to `path`, write with fwrite, then
 * commit (fsync + rename) or abort (unlink the temp file). commit reports a
 * write error met on the stream (ferror) as CX_ERR_IO and removes the temp
 * file. Both commit and abort accept NULL (commit(NULL) returns CX_ERR_ARG). */
typedef struct cx_atomic_file cx_atomic_file;
cx_status cx_atomic_open(cx_atomic_file **out, const char *path);
void *cx_atomic_stream(cx_atomic_file *f);  /* the FILE* to write to */
cx_status cx_atomic_commit(cx_atomic_file *f); /* frees f */
void cx_atomic_abort(cx_atomic_file *f);       /* frees f */
/* Read a whole file (malloc'd; *n set). Limit: max_bytes (0 = 4 GiB); a
 * longer file gives CX_ERR_FORMAT. Only regular files are read: a device,
 * FIFO or socket (/dev/zero, a pipe) gives CX_ERR_IO before any read. The buffer has one extra NUL byte after
 * the n bytes (handy for text); free it with free(). */
cx_status cx_read_file(const char *path, void **data, size_t *n, size_t max_bytes);

/* ---- safetensors (https://github.com/huggingface/safetensors format):
 * u64 little-endian header size N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2,3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the byte buffer. Supported dtypes: F32, I32, I64 (F64, F16, BF16 are
 * converted to F32 on load; BOOL, U8, I8, I16, U16, U32 to I64).
 * Checks: header size <= 100 MB and within the file; JSON strictly parsed
 * (nesting depth, escapes, integers with overflow checks); dtype known; shape
 * dims non-negative, fit in int, ndim <= CX_MAX_DIMS; end - begin ==
 * numel * dtype size; the regions tile the byte buffer exactly (no overlap,
 * no gap, nothing left over); names unique. Any failure: CX_ERR_FORMAT with
 * "<path>: <problem>" ("<memory>" for cx_st_parse). Unknown fields of a
 * tensor entry are ignored; __metadata__ must map strings to strings. */
typedef struct cx_st_entry {
    char *name;
    cx_tensor *tensor;       /* persistent tensor owned by the file object */
} cx_st_entry;
typedef struct cx_st_file {
    int n;
    cx_st_entry *entries;
    int n_meta;
    char **meta_keys, **meta_values;
} cx_st_file;

/* Load every tensor of a safetensors file (the header is validated first,
 * then each tensor is read straight into its own buffer). Entries keep the
 * file's order and each tensor also carries its name in t->name. *out is
 * owned by the caller and freed with cx_st_free; it is NULL on error. */
cx_status cx_st_load(const char *path, cx_st_file **out);
/* Parse from memory (same checks). */
cx_status cx_st_parse(const void *buf, size_t n, cx_st_file **out);
void cx_st_free(cx_st_file *f);
/* Find by name (NULL if absent). */
cx_tensor *cx_st_get(const cx_st_file *f, const char *name);
const char *cx_st_meta(const cx_st_file *f, const char *key);

/* Save tensors (F32 / I32 / I64) under the given names, atomically. Names
 * must be unique, non-NULL and not "__metadata__" (else CX_ERR_ARG).
 * meta_keys/values may be NULL (n_meta = 0). Layout is deterministic: the
 * tensors are stored ordered by dtype size (largest first) then name, the
 * header is padded with spaces so the data starts 8-byte aligned, and the
 * data is little-endian. */
cx_status cx_st_save(const char *path, cx_tensor *const *tensors, const char *const *names,
                     int n, const char *const *meta_keys, const char *const *meta_values,
                     int n_meta);
/* Save a parameter list under the tensors' own names (t->name; a tensor
 * without a name gives CX_ERR_ARG). */
cx_status cx_params_save(const char *path, const cx_params *p);
/* Load values into a parameter list by name. strict: every parameter must be
 * present with the same shape and the file must have no other tensor;
 * otherwise missing ones are reported as an error only if strict. Shapes
 * must always match (CX_ERR_SHAPE, e.g. "model.safetensors: tensor 'fc1.weight'
 * has shape [10, 784], model expects [256, 784]"), and so must dtypes
 * (CX_ERR_FORMAT). A missing tensor in strict mode gives CX_ERR_NOTFOUND, an
 * extra one CX_ERR_FORMAT. Everything is checked before any parameter is
 * written, so on error the parameters are unchanged. */
cx_status cx_params_load(const char *path, const cx_params *p, bool strict);

/* ---- IDX (MNIST format), raw or gzip (detected by content, read via zlib).
 * Returns a persistent tensor: u8 images are converted to F32 scaled by
 * `scale` (e.g. 1/255.f; 1 keeps raw values), labels (1-D u8) to I32.
 * max_items > 0 reads only the first max_items items.
 * Element types: u8 (0x08), i8 (0x09), i16 (0x0B), i32 (0x0C) and f32 (0x0D),
 * f64 (0x0E). Integer types give I32 when the file is 1-D and F32 * scale
 * otherwise; float types always give F32 * scale. Result shape [N, d1, ...].
 * Errors: CX_ERR_IO (cannot open, not a regular file), CX_ERR_FORMAT (bad
 * magic, bad type, too many dims, size overflow, "truncated: expected X bytes
 * of data, got Y"; sizes claimed by the header that exceed the limit below, or
 * that a gzip file of this size cannot hold -- deflate expands at most 1032:1 --
 * checked before anything is decompressed), CX_ERR_NOMEM naming the file. */
cx_status cx_idx_load(const char *path, float scale, int max_items, cx_tensor **out);
/* The largest tensor cx_idx_load builds, in bytes (default 4 GiB: Fashion-MNIST's
 * training images take 188 MB). Returns the previous limit; 0 keeps it. */
size_t cx_idx_set_limit(size_t bytes);

/* ---- CSV of numbers. Fields separated by ',' (or ';' / tab, detected from
 * the first line); an optional header line (detected: a non-numeric field) is
 * skipped and its names returned in *header (may be NULL). Every row must
 * have the same number of fields: the error names the line. Result: a
 * persistent F32 tensor [rows, cols].
 * Details: CRLF or LF line ends, last line with or without a newline; blank
 * lines are skipped; fields may be double-quoted ("" is a literal quote) and
 * surrounding spaces are trimmed. Errors (CX_ERR_FORMAT): empty file, no data
 * rows, "data.csv:17: expected 4 fields, got 3", "data.csv:3: 'abc' is not a
 * number", "data.csv:5: column 2: 1e308 is beyond the float range" (a value
 * that would become inf; "nan" and "inf" written as such are read as they
 * are), unterminated quote. If header != NULL, *header gets the header
 * names (NULL when the file has no header) and *n_header their count; free
 * with cx_csv_free_header. */
cx_status cx_csv_load(const char *path, cx_tensor **out, char ***header, int *n_header);
void cx_csv_free_header(char **header, int n); /* NULL is fine */

/* ---- PNG output (libpng; link with -lpng). 8-bit, non-interlaced images,
 * rows top to bottom, no padding between rows. Written atomically like every
 * writer here (temp file, fsync, rename): on any error the temp file is
 * removed and an existing <path> is left untouched.
 * Errors: CX_ERR_ARG (NULL/empty path, NULL pixels, width or height < 1),
 * CX_ERR_IO (cannot create / write / rename the file; or libpng refused the
 * image, e.g. a width beyond its limit of 1000000 pixels -- the message
 * quotes libpng: "out.png: libpng: Invalid IHDR data (...)"),
 * CX_ERR_NOMEM. */
/* Grey image: pixels[y * width + x], 0 = black, 255 = white. */
cx_status cx_png_write_gray(const char *path, const uint8_t *pixels, int width, int height);
/* RGB image: pixels[(y * width + x) * 3 + c], c = 0 red, 1 green, 2 blue. */
cx_status cx_png_write_rgb(const char *path, const uint8_t *pixels, int width, int height);

/* ---- PNG input (libpng's simplified reader): any PNG (grey, palette,
 * RGB, with or without alpha, 1-16 bits) as 8-bit sRGB, grey when the file
 * has no colour (*channels = 1), else RGB (*channels = 3); alpha is
 * composited onto white. *pixels (malloc'ed, caller frees) holds
 * pixels[(y * width + x) * channels + c], rows top to bottom. Images of more
 * than 16384 pixels a side or 2^26 pixels are refused. Errors: CX_ERR_ARG
 * (NULL arguments), CX_ERR_IO (cannot open the file), CX_ERR_FORMAT (not a
 * PNG, or a damaged one: the message quotes libpng), CX_ERR_NOMEM. On error
 * *pixels is NULL. */
cx_status cx_png_read(const char *path, uint8_t **pixels, int *width, int *height, int *channels);

/* ---- text on RGB images: a built-in 5x7 bitmap font, each glyph in a 6x8
 * cell (one column and one row of spacing), for labels, titles and captions
 * drawn before cx_png_write_rgb. Digits, space, the signs
 * . , - + _ : / ( ) % < > = ' and both cases of the letters; any other
 * byte is drawn as a hollow box. */
/* Width in pixels of `s` drawn at `scale` (6 * scale per character, without
 * the trailing spacing column); 0 for NULL, "" or scale < 1. Height: 7 * scale. */
int cx_text_width(const char *s, int scale);
/* Draw `s` into pixels[(y * width + x) * 3 + c] (the layout of
 * cx_png_write_rgb) with the top-left corner of its first glyph at (x, y),
 * every font pixel a scale x scale square of colour rgb[0..2]; pixels
 * outside the image are clipped. Does nothing for NULL arguments or
 * scale < 1. */
void cx_text_draw_rgb(uint8_t *pixels, int width, int height, int x, int y, const char *s, int scale,
                      const uint8_t rgb[3]);

/* ---- recordings: animated GIFs (giflib; link with -lgif) and PNG film
 * strips, e.g. of an environment's frames (cx_env_render).
 *
 *   cx_gif *g;
 *   if (cx_gif_open(&g, "episode.gif", w, h, 4)) { puts(cx_last_error()); ... }  // 4/100 s a frame
 *   for (...) cx_gif_add(g, cx_env_render(env, NULL, NULL));
 *   cx_gif_close(g);
 *
 * The GIF is written to "<path>.tmp.<pid>" as frames are added (one frame
 * in memory at a time) and renamed over <path> by cx_gif_close (as
 * cx_atomic_commit): an error, or cx_gif_abort, leaves no file and an
 * existing <path> untouched. Each frame has its own colour table: exact
 * when the frame has at most 256 colours, otherwise a fixed 6x6x6 colour
 * cube (each channel rounded to a multiple of 51). The animation loops.
 * Errors: CX_ERR_ARG (NULL/empty path, a side not in 1 .. 65535, a delay
 * not in 0 .. 65535 hundredths of a second, NULL pixels, closing without
 * frames), CX_ERR_IO (cannot create / write / rename the file: the message
 * names the path and quotes giflib or the system call), CX_ERR_NOMEM. */
typedef struct cx_gif cx_gif;
cx_status cx_gif_open(cx_gif **g, const char *path, int width, int height, int delay_cs);
/* Append one frame: rgb[(y * width + x) * 3 + c], the size given to open.
 * After an error the writer only reports it again: cx_gif_close returns it
 * (and removes the temp file), or call cx_gif_abort. */
cx_status cx_gif_add(cx_gif *g, const uint8_t *rgb);
int cx_gif_frames(const cx_gif *g); /* frames added so far */
/* Finish and commit the file; frees g (also on error). */
cx_status cx_gif_close(cx_gif *g);
/* Discard: frees g and removes the temp file (NULL is fine). */
void cx_gif_abort(cx_gif *g);

/* n frames of width x height RGB (frames[i], the layout above) in a grid of
 * cols columns (ceil(n / cols) rows, read left to right then down), with
 * 1-pixel grey (160) gaps between them, written as a PNG (atomic, as
 * cx_png_write_rgb). Size: (cols * (width + 1) - 1) x (rows * (height + 1)
 * - 1), cols capped at n. Errors: CX_ERR_ARG (NULL/empty path, NULL frames
 * or a NULL frame, n, a side or cols < 1, a picture beyond 64 M pixels),
 * cx_png_write_rgb's errors. */
cx_status cx_png_write_strip(const char *path, const uint8_t *const *frames, int n, int width, int height,
                             int cols);

#ifdef __cplusplus
}
#endif
#endif
