/* libFuzzer target: IDX files, raw and gzip. The first byte chooses: bit 0
 * set -- the rest is gzip-compressed here first (so the fuzzer explores the
 * decompressed content through the gzip path, which random edits of
 * compressed bytes rarely reach past the CRC); clear -- the rest is the file
 * as is (raw, or gzip when it starts with 1f 8b). Bits 1-7: max_items
 * (0 = all). */
#include "fuzz_common.h"
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    if (size < 1) return 0;
    int mode = data[0];
    data++;
    size--;
    const char *path;
    uint8_t *gz = NULL;
    if (mode & 1) {
        uLongf cap = compressBound((uLong)size) + 32;
        gz = malloc(cap);
        if (!gz) abort();
        /* a gzip stream (header and CRC), as gzip(1) writes it */
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
        zs.next_in = (Bytef *)data;
        zs.avail_in = (uInt)size;
        zs.next_out = gz;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
        path = cxf_file("idx", gz, zs.total_out);
        deflateEnd(&zs);
    } else {
        path = cxf_file("idx", data, size);
    }
    cx_tensor *t = NULL;
    cx_status st = cx_idx_load(path, 1.0f / 255, mode >> 1, &t);
    cxf_check_error(st);
    if (st == CX_OK) {
        if (!t || t->ndim < 1 || (mode >> 1 && t->shape[0] > mode >> 1)) abort();
        cx_tensor_free(t);
    } else if (t) {
        abort();
    }
    free(gz);
    return 0;
}
