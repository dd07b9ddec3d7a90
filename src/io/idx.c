/* IDX (MNIST) reader. zlib's gzread reads gzip and plain files alike.
 *
 * Header: 0x00 0x00 <type> <ndim>, then ndim big-endian u32 dims, then the
 * data, big-endian for multi-byte types. The data is read incrementally into
 * a growing buffer, so a header that lies about the size cannot make us
 * allocate more than the file really holds (plus one chunk). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cortex/core.h"
#include "cortex/io.h"

#define IDX_CHUNK ((size_t)1 << 24)
/* deflate's largest expansion: 258 bytes from 2 bits, about 1032:1 */
#define GZ_MAX_RATIO 1032u

static size_t idx_limit = (size_t)1 << 32 < SIZE_MAX / 2 ? (size_t)1 << 32 : SIZE_MAX / 4;

size_t cx_idx_set_limit(size_t bytes) {
    size_t old = idx_limit;
    if (bytes) idx_limit = bytes;
    return old;
}

/* Read up to n bytes; returns bytes read, -1 on a zlib error (message in *err). */
static int64_t gz_read_all(gzFile g, void *dst, size_t n, const char **err) {
    size_t got = 0;
    *err = NULL;
    while (got < n) {
        size_t want = n - got;
        /* small calls: after an error gztell says where, within 64 KiB */
        if (want > ((size_t)1 << 16)) want = (size_t)1 << 16;
        int r = gzread(g, (char *)dst + got, (unsigned)want);
        if (r < 0) {
            int code;
            *err = gzerror(g, &code);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got < n) { /* distinguish clean EOF from a broken stream */
        int code;
        const char *m = gzerror(g, &code);
        if (code != Z_OK && code != Z_BUF_ERROR) *err = m;
    }
    return (int64_t)got;
}

static int type_info(int type, size_t *size, int *is_float, const char **name) {
    switch (type) {
    case 0x08: *size = 1; *is_float = 0; *name = "u8"; return 0;
    case 0x09: *size = 1; *is_float = 0; *name = "i8"; return 0;
    case 0x0B: *size = 2; *is_float = 0; *name = "i16"; return 0;
    case 0x0C: *size = 4; *is_float = 0; *name = "i32"; return 0;
    case 0x0D: *size = 4; *is_float = 1; *name = "f32"; return 0;
    case 0x0E: *size = 8; *is_float = 1; *name = "f64"; return 0;
    default: return -1;
    }
}

static double elem_value(int type, const unsigned char *p) {
    switch (type) {
    case 0x08: return (double)p[0];
    case 0x09: return (double)(int8_t)p[0];
    case 0x0B: return (double)(int16_t)(uint16_t)((p[0] << 8) | p[1]);
    case 0x0C: {
        uint32_t u = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        return (double)(int32_t)u;
    }
    case 0x0D: {
        uint32_t u = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        float f;
        memcpy(&f, &u, 4);
        return (double)f;
    }
    default: {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | p[i];
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

/* A zlib error in the data, with where it was found (uncompressed and file offsets). */
static cx_status corrupt(gzFile g, const char *path, const char *zerr) {
    long long at = (long long)gztell(g), cpos = (long long)gzoffset(g);
    const char *colon = zerr ? strrchr(zerr, ':') : NULL; /* gzerror prefixes the path */
    const char *why = colon && colon[1] == ' ' ? colon + 2 : zerr ? zerr : "?";
    if (at < 0) return cx_set_error(CX_ERR_FORMAT, "%s: corrupt compressed data: %s", path, why);
    if (strstr(why, "incorrect data check") || strstr(why, "incorrect length check"))
        return cx_set_error(CX_ERR_FORMAT,
                            "%s: corrupt compressed data: the %lld bytes it decompresses to do not match the gzip "
                            "checksum (%s), so the corruption is somewhere in its first %lld bytes",
                            path, at, why, cpos);
    return cx_set_error(CX_ERR_FORMAT,
                        "%s: corrupt compressed data (%s), found after %lld bytes of decompressed data, near byte "
                        "%lld of the file",
                        path, why, at, cpos);
}

cx_status cx_idx_load(const char *path, float scale, int max_items, cx_tensor **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_idx_load: out is NULL");
    *out = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_idx_load: NULL path");
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cx_set_error(CX_ERR_IO, "%s: is a directory", path);
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return cx_set_error(CX_ERR_IO, "%s: not a regular file (a device, pipe or socket): give a file", path);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return cx_set_error(CX_ERR_IO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    const char *zerr;
    unsigned char hdr[4 + 4 * CX_MAX_DIMS];
    int64_t got = gz_read_all(g, hdr, 4, &zerr);
    cx_status st = CX_OK;
    unsigned char *raw = NULL;
    if (got < 0 || zerr) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: corrupt compressed data: %s", path, zerr ? zerr : "?");
        goto done;
    }
    if (got < 4) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: truncated: expected a 4-byte IDX header, got %" PRId64
                          " bytes", path, got);
        goto done;
    }
    if (hdr[0] != 0 || hdr[1] != 0) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: bad magic %02x %02x %02x %02x (not an IDX file)", path,
                          hdr[0], hdr[1], hdr[2], hdr[3]);
        goto done;
    }
    size_t esize;
    int is_float;
    const char *tname;
    int type = hdr[2], ndim = hdr[3];
    if (type_info(type, &esize, &is_float, &tname)) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: unsupported IDX element type 0x%02x", path, type);
        goto done;
    }
    if (ndim < 1 || ndim > CX_MAX_DIMS) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: bad number of dimensions %d (1..%d supported)", path, ndim,
                          CX_MAX_DIMS);
        goto done;
    }
    got = gz_read_all(g, hdr + 4, 4 * (size_t)ndim, &zerr);
    if (got < 0 || zerr) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: corrupt compressed data: %s", path, zerr ? zerr : "?");
        goto done;
    }
    if (got < 4 * ndim) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: truncated: expected %d bytes of dimensions, got %" PRId64,
                          path, 4 * ndim, got);
        goto done;
    }
    int shape[CX_MAX_DIMS];
    uint64_t item = 1; /* elements per item */
    for (int d = 0; d < ndim; d++) {
        const unsigned char *p = hdr + 4 + 4 * d;
        uint32_t v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
        if (v > (uint32_t)INT_MAX) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: dimension %d is too large (%" PRIu32 ")", path, d, v);
            goto done;
        }
        shape[d] = (int)v;
        if (d > 0) {
            if (v != 0 && item > (uint64_t)INT64_MAX / 8 / v) {
                st = cx_set_error(CX_ERR_FORMAT, "%s: item size overflows", path);
                goto done;
            }
            item *= v;
        }
    }
    const uint64_t full_items = (uint64_t)shape[0];
    if (max_items > 0 && shape[0] > max_items) shape[0] = max_items;
    uint64_t n_items = (uint64_t)shape[0];
    if (item != 0 && n_items > (uint64_t)INT64_MAX / 8 / item / esize) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: data size overflows", path);
        goto done;
    }
    uint64_t prod = 1; /* same rule as the tensor constructor (which would abort on it) */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] && prod > (uint64_t)INT64_MAX / 16 / (uint64_t)shape[d]) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: shape overflows", path);
            goto done;
        }
        prod *= (uint64_t)shape[d];
    }
    uint64_t numel = n_items * item, want = numel * esize;
    if (want > (uint64_t)SIZE_MAX / 2) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: data too large (%" PRIu64 " bytes)", path, want);
        goto done;
    }
    /* the claimed sizes, before decompressing anything: against what a file
     * of this size can hold, and against the limit on the tensor */
    {
        uint64_t fsize = (uint64_t)sb.st_size, hbytes = 4 + 4 * (uint64_t)ndim;
        uint64_t tbytes = numel * (is_float || ndim > 1 ? sizeof(float) : sizeof(int32_t));
        bool gz = !gzdirect(g);
        uint64_t can_hold = gz ? fsize * GZ_MAX_RATIO + 1024 : (fsize > hbytes ? fsize - hbytes : 0);
        char dims[128];
        size_t k = 0;
        dims[0] = 0;
        for (int d = 0; d < ndim && k < sizeof dims; d++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, d ? " x %d" : "%d", shape[d]);
        if (want > can_hold) {
            if (gz)
                st = cx_set_error(CX_ERR_FORMAT,
                                  "%s: the header claims %s %s values (%" PRIu64 " bytes), more than a %" PRIu64
                                  "-byte gzip file can hold (at most %" PRIu64 " bytes): corrupt or hostile",
                                  path, dims, tname, want, fsize, can_hold);
            else
                st = cx_set_error(CX_ERR_FORMAT,
                                  "%s: truncated: expected %" PRIu64 " bytes of data, got %" PRIu64
                                  " (the header claims %s %s values)",
                                  path, want, can_hold, dims, tname);
            goto done;
        }
        if (tbytes > idx_limit) {
            st = cx_set_error(CX_ERR_FORMAT,
                              "%s: the header claims %s values, a %" PRIu64 "-byte tensor: more than the %zu-byte "
                              "limit (cx_idx_set_limit)",
                              path, dims, tbytes, idx_limit);
            goto done;
        }
    }
    /* read incrementally: memory follows what the file really contains */
    size_t have = 0, cap = 0;
    while (have < (size_t)want) {
        size_t step = (size_t)want - have < IDX_CHUNK ? (size_t)want - have : IDX_CHUNK;
        if (have + step > cap) {
            size_t ncap = cap ? cap * 2 : IDX_CHUNK;
            if (ncap > (size_t)want) ncap = (size_t)want;
            if (ncap < have + step) ncap = have + step;
            unsigned char *nr = realloc(raw, ncap);
            if (!nr) {
                st = cx_set_error(CX_ERR_NOMEM, "%s: out of memory (%zu bytes)", path, ncap);
                goto done;
            }
            raw = nr;
            cap = ncap;
        }
        got = gz_read_all(g, raw + have, step, &zerr);
        if (got < 0 || zerr) {
            st = corrupt(g, path, zerr);
            goto done;
        }
        have += (size_t)got;
        if ((size_t)got < step) break;
    }
    if (have < (size_t)want) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: truncated: expected %" PRIu64 " bytes of data, got %zu",
                          path, want, have);
        goto done;
    }
    /* all of it read: one more byte makes zlib check the gzip trailer (CRC,
     * length), so a corrupt stream is not taken for data */
    if (n_items == full_items && !gzdirect(g)) {
        unsigned char extra;
        got = gz_read_all(g, &extra, 1, &zerr);
        if (got < 0 || zerr) {
            st = corrupt(g, path, zerr);
            goto done;
        }
    }
    cx_dtype dt = (!is_float && ndim == 1) ? CX_I32 : CX_F32;
    {   /* out of memory is fatal in the tensor constructor: try first, to name the file */
        void *probe = malloc((size_t)numel * 4 + 64);
        if (!probe) {
            st = cx_set_error(CX_ERR_NOMEM, "%s: out of memory for its %" PRIu64 "-byte tensor", path,
                              numel * 4);
            goto done;
        }
        free(probe);
    }
    cx_tensor *t = cx_tensor_new(dt, shape, ndim);
    if (dt == CX_I32) {
        int32_t *o = CX_I32P(t);
        for (uint64_t i = 0; i < numel; i++) o[i] = (int32_t)elem_value(type, raw + i * esize);
    } else if (type == 0x08) {
        float *o = CX_F(t), lut[256];
        for (int v = 0; v < 256; v++) lut[v] = (float)v * scale;
        for (uint64_t i = 0; i < numel; i++) o[i] = lut[raw[i]];
    } else {
        float *o = CX_F(t);
        for (uint64_t i = 0; i < numel; i++) o[i] = (float)(elem_value(type, raw + i * esize) * scale);
    }
    *out = t;
done:
    free(raw);
    gzclose(g);
    return st;
}
