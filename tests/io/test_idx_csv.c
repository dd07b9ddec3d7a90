/* IDX (raw and gzip, truncated, hostile) and CSV readers. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

static char g_dir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static int write_raw(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

static int write_gz(const char *path, const void *p, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) return -1;
    int w = n ? gzwrite(g, p, (unsigned)n) : 0;
    return gzclose(g) == Z_OK && (size_t)w == n ? 0 : -1;
}

/* IDX bytes: header (type, dims) + `dlen` data bytes. Caller frees. */
static unsigned char *make_idx(int type, int ndim, const uint32_t *dims, const void *data, size_t dlen,
                               size_t *n) {
    size_t h = 4 + 4 * (size_t)ndim;
    unsigned char *b = malloc(h + dlen + 1);
    b[0] = 0;
    b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int d = 0; d < ndim; d++)
        for (int k = 0; k < 4; k++) b[4 + 4 * d + k] = (unsigned char)(dims[d] >> (24 - 8 * k));
    if (dlen) memcpy(b + h, data, dlen);
    *n = h + dlen;
    return b;
}

static void test_idx_images(void) {
    unsigned char px[3 * 2 * 3];
    for (int i = 0; i < 18; i++) px[i] = (unsigned char)(i * 15);
    px[17] = 255;
    uint32_t dims[3] = {3, 2, 3};
    size_t n;
    unsigned char *b = make_idx(0x08, 3, dims, px, sizeof px, &n);
    char raw[512], gz[512];
    path_in(raw, sizeof raw, "img.idx");
    path_in(gz, sizeof gz, "img.idx.gz");
    CHECK(write_raw(raw, b, n) == 0);
    CHECK(write_gz(gz, b, n) == 0);
    free(b);
    const char *paths[2] = {raw, gz};
    for (int k = 0; k < 2; k++) {
        cx_tensor *t = NULL;
        cx_status st = cx_idx_load(paths[k], 1.0f / 255.0f, 0, &t);
        CHECK_MSG(st == CX_OK, "%s", cx_last_error());
        if (!t) continue;
        CHECK(t->dtype == CX_F32 && t->persistent && t->ndim == 3);
        CHECK(t->shape[0] == 3 && t->shape[1] == 2 && t->shape[2] == 3 && t->numel == 18);
        for (int i = 0; i < 18; i++) CHECK_NEAR(CX_F(t)[i], px[i] / 255.0f, 1e-7);
        CHECK(CX_F(t)[17] == 1.0f);
        cx_tensor_free(t);
        /* max_items and raw values */
        t = NULL;
        CHECK(cx_idx_load(paths[k], 1.0f, 2, &t) == CX_OK);
        if (!t) continue;
        CHECK(t->shape[0] == 2 && t->numel == 12);
        for (int i = 0; i < 12; i++) CHECK(CX_F(t)[i] == (float)px[i]);
        cx_tensor_free(t);
        /* max_items beyond the count is fine */
        t = NULL;
        CHECK(cx_idx_load(paths[k], 1.0f, 100, &t) == CX_OK);
        CHECK(t && t->shape[0] == 3);
        cx_tensor_free(t);
    }
}

static void test_idx_labels_and_types(void) {
    unsigned char lab[7] = {0, 1, 2, 9, 255, 3, 3};
    uint32_t d1[1] = {7};
    size_t n;
    unsigned char *b = make_idx(0x08, 1, d1, lab, 7, &n);
    char p[512];
    path_in(p, sizeof p, "lab.idx.gz");
    CHECK(write_gz(p, b, n) == 0);
    free(b);
    cx_tensor *t = NULL;
    CHECK(cx_idx_load(p, 1.0f / 255.0f, 0, &t) == CX_OK);
    CHECK(t && t->dtype == CX_I32 && t->ndim == 1 && t->shape[0] == 7);
    if (t)
        for (int i = 0; i < 7; i++) CHECK(CX_I32P(t)[i] == lab[i]);
    cx_tensor_free(t);
    t = NULL;
    CHECK(cx_idx_load(p, 1.0f, 3, &t) == CX_OK);
    CHECK(t && t->numel == 3 && CX_I32P(t)[2] == 2);
    cx_tensor_free(t);

    /* i32 labels, big-endian */
    unsigned char i32[8] = {0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x01, 0x00, 0x00}; /* -2, 65536 */
    uint32_t d2[1] = {2};
    b = make_idx(0x0C, 1, d2, i32, 8, &n);
    path_in(p, sizeof p, "i32.idx");
    CHECK(write_raw(p, b, n) == 0);
    free(b);
    t = NULL;
    CHECK(cx_idx_load(p, 1.0f, 0, &t) == CX_OK);
    CHECK(t && t->dtype == CX_I32 && CX_I32P(t)[0] == -2 && CX_I32P(t)[1] == 65536);
    cx_tensor_free(t);

    /* f32 matrix, big-endian, scaled */
    unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xC0, 0x20, 0, 0}; /* 1.5, -2.5 */
    uint32_t d3[2] = {2, 1};
    b = make_idx(0x0D, 2, d3, f32, 8, &n);
    path_in(p, sizeof p, "f32.idx");
    CHECK(write_raw(p, b, n) == 0);
    free(b);
    t = NULL;
    CHECK(cx_idx_load(p, 2.0f, 0, &t) == CX_OK);
    CHECK(t && t->dtype == CX_F32 && t->ndim == 2 && CX_F(t)[0] == 3.0f && CX_F(t)[1] == -5.0f);
    cx_tensor_free(t);

    /* zero items */
    uint32_t d4[3] = {0, 28, 28};
    b = make_idx(0x08, 3, d4, NULL, 0, &n);
    path_in(p, sizeof p, "zero.idx");
    CHECK(write_raw(p, b, n) == 0);
    free(b);
    t = NULL;
    CHECK(cx_idx_load(p, 1.0f, 0, &t) == CX_OK);
    CHECK(t && t->numel == 0 && t->shape[0] == 0 && t->shape[2] == 28);
    cx_tensor_free(t);
}

/* Load must fail with `want_st` and a message containing `want`. */
static void idx_bad(const char *name, const void *bytes, size_t n, int gz, cx_status want_st,
                    const char *want, int line) {
    char p[512];
    path_in(p, sizeof p, name);
    CHECK(gz ? write_gz(p, bytes, n) == 0 : write_raw(p, bytes, n) == 0);
    cx_tensor *t = (cx_tensor *)0x1;
    cx_status st = cx_idx_load(p, 1.0f, 0, &t);
    CHECK_MSG(st == want_st, "line %d: status %d (%s)", line, (int)st, cx_last_error());
    CHECK_MSG(t == NULL, "line %d: out not NULL", line);
    CHECK_MSG(strstr(cx_last_error(), want) != NULL, "line %d: '%s' lacks '%s'", line, cx_last_error(),
              want);
    CHECK_MSG(strstr(cx_last_error(), p) == cx_last_error(), "line %d: '%s' does not name the file",
              line, cx_last_error());
}
#define IDX_BAD(name, b, n, gz, want) idx_bad(name, b, n, gz, CX_ERR_FORMAT, want, __LINE__)

static void test_idx_hostile(void) {
    unsigned char px[1234];
    memset(px, 7, sizeof px);
    uint32_t dims[3] = {4, 28, 28};
    size_t n;
    unsigned char *b = make_idx(0x08, 3, dims, px, sizeof px, &n);
    IDX_BAD("trunc.idx", b, n, 0, "truncated: expected 3136 bytes of data, got 1234");
    IDX_BAD("trunc.idx.gz", b, n, 1, "truncated: expected 3136 bytes of data, got 1234");
    /* a gzip stream cut in the middle */
    {
        unsigned char full[4 + 12 + 3136];
        memset(full, 0, sizeof full);
        unsigned char *h = make_idx(0x08, 3, dims, NULL, 0, &n);
        memcpy(full, h, n);
        free(h);
        for (size_t i = 16; i < sizeof full; i++) full[i] = (unsigned char)((i * 2654435761u) >> 13);
        char p[512];
        path_in(p, sizeof p, "cut.gz");
        CHECK(write_gz(p, full, sizeof full) == 0);
        void *gzb;
        size_t gzn;
        CHECK(cx_read_file(p, &gzb, &gzn, 0) == CX_OK);
        IDX_BAD("cut2.gz", gzb, gzn / 2, 0, "");
        free(gzb);
    }
    free(b);
    unsigned char hdr[16] = {0, 0, 0x08, 1, 0, 0, 0, 5};
    IDX_BAD("empty.idx", "", 0, 0, "truncated");
    IDX_BAD("short.idx", hdr, 2, 0, "truncated");
    IDX_BAD("shortdims.idx", hdr, 6, 0, "truncated: expected 4 bytes of dimensions, got 2");
    unsigned char magic[8] = {0x1f, 0x00, 0x08, 0x01, 0, 0, 0, 0};
    IDX_BAD("magic.idx", magic, 8, 0, "bad magic");
    IDX_BAD("text.idx", "hello world, this is text", 25, 0, "bad magic");
    unsigned char type[8] = {0, 0, 0x07, 1, 0, 0, 0, 0};
    IDX_BAD("type.idx", type, 8, 0, "unsupported IDX element type 0x07");
    unsigned char nd0[4] = {0, 0, 0x08, 0};
    IDX_BAD("nd0.idx", nd0, 4, 0, "dimensions");
    unsigned char nd9[4 + 36] = {0, 0, 0x08, 9};
    IDX_BAD("nd9.idx", nd9, sizeof nd9, 0, "dimensions");
    unsigned char bigdim[8] = {0, 0, 0x08, 1, 0xFF, 0xFF, 0xFF, 0xFF};
    IDX_BAD("bigdim.idx", bigdim, 8, 0, "too large");
    uint32_t ovf[4] = {0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF, 0x7FFFFFFF};
    b = make_idx(0x0D, 4, ovf, NULL, 0, &n);
    IDX_BAD("ovf.idx", b, n, 0, "overflows");
    free(b);
    uint32_t ovf0[3] = {0x7FFFFFFF, 0x7FFFFFFF, 0};
    b = make_idx(0x08, 3, ovf0, NULL, 0, &n);
    IDX_BAD("ovf0.idx", b, n, 0, "overflows");
    free(b);
    /* a header claiming ~2 TB with 10 bytes of data: no huge allocation, just an error */
    uint32_t lie[2] = {0x7FFFFFFF, 1000};
    b = make_idx(0x08, 2, lie, px, 10, &n);
    IDX_BAD("lie.idx", b, n, 0, "got 10");
    free(b);
    cx_tensor *t = NULL;
    /* issue 14, item 13: a gzip file whose header claims more than it can
     * hold (deflate expands at most 1032:1) fails before decompressing */
    {
        uint32_t bomb[3] = {100000, 1000, 1000};
        b = make_idx(0x08, 3, bomb, px, sizeof px, &n);
        IDX_BAD("bomb.idx.gz", b, n, 1, "the header claims 100000 x 1000 x 1000 u8 values (100000000000 bytes), "
                                        "more than a ");
        CHECK(strstr(cx_last_error(), "-byte gzip file can hold"));
        free(b);
    }
    /* ... and a tensor above the limit (cx_idx_set_limit) is refused up front */
    {
        static unsigned char big[64 * 64 * 64];
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < sizeof big; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            big[i] = (unsigned char)(x & 63);
        }
        uint32_t d3[3] = {64, 64, 64};
        b = make_idx(0x08, 3, d3, big, sizeof big, &n);
        size_t old = cx_idx_set_limit(1 << 19);
        CHECK(old == (size_t)1 << 32);
        IDX_BAD("limit.idx.gz", b, n, 1, "a 1048576-byte tensor: more than the 524288-byte limit");
        cx_idx_set_limit(4 << 20);
        char p[512];
        path_in(p, sizeof p, "limit.idx.gz");
        CHECK(cx_idx_load(p, 1.0f, 0, &t) == CX_OK && t && t->numel == 64 * 64 * 64);
        cx_tensor_free(t);
        t = NULL;
        CHECK(cx_idx_set_limit(0) == 4 << 20);
        cx_idx_set_limit(old);
        /* corruption in the middle: reported where it is found, not "after 0 bytes" */
        void *gzb;
        size_t gzn;
        CHECK(cx_read_file(p, &gzb, &gzn, 0) == CX_OK);
        bool found = false, crc = false;
        for (size_t pos = gzn / 2; pos + 64 < gzn && !(found && crc); pos += 3) {
            unsigned char *c = malloc(gzn);
            memcpy(c, gzb, gzn);
            c[pos] ^= 0x80;
            path_in(p, sizeof p, "mid.idx.gz");
            CHECK(write_raw(p, c, gzn) == 0);
            free(c);
            if (cx_idx_load(p, 1.0f, 0, &t) == CX_OK) {
                cx_tensor_free(t); /* (never: the trailer's CRC catches it) */
                CHECK_MSG(0, "a flipped bit at %zu was not noticed", pos);
                break;
            }
            const char *e = cx_last_error(), *at = strstr(e, "found after ");
            CHECK_MSG(strstr(e, "mid.idx.gz: corrupt compressed data") != NULL, "%s", e);
            if (at && !found) {
                found = true;
                CHECK_MSG(atol(at + 12) > 0, "%s", e);
            }
            if (strstr(e, "do not match the gzip checksum")) crc = true;
        }
        CHECK(found && crc);
        free(gzb);
        free(b);
    }
    /* devices and pipes are refused before reading */
    CHECK(cx_idx_load("/dev/zero", 1.0f, 0, &t) == CX_ERR_IO && t == NULL);
    CHECK(strstr(cx_last_error(), "/dev/zero: not a regular file") != NULL);
    CHECK(cx_idx_load("/nonexistent/x.idx", 1.0f, 0, &t) == CX_ERR_IO && t == NULL);
    CHECK(strstr(cx_last_error(), "/nonexistent/x.idx") != NULL);
    CHECK(cx_idx_load(g_dir, 1.0f, 0, &t) == CX_ERR_IO && t == NULL);
}

static void test_idx_fashion_mnist(void) {
    const char *p = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(p, R_OK) != 0) {
        printf("  (skip: %s not present)\n", p);
        return;
    }
    cx_tensor *t = NULL;
    CHECK(cx_idx_load(p, 1.0f, 100, &t) == CX_OK);
    CHECK(t && t->dtype == CX_I32 && t->ndim == 1 && t->shape[0] == 100);
    cx_tensor_free(t);
    t = NULL;
    CHECK(cx_idx_load(p, 1.0f, 0, &t) == CX_OK);
    CHECK(t && t->shape[0] == 10000);
    if (t) {
        int counts[10] = {0}, bad = 0;
        for (int i = 0; i < 10000; i++) {
            int v = CX_I32P(t)[i];
            if (v < 0 || v > 9) bad++;
            else counts[v]++;
        }
        CHECK(bad == 0);
        for (int c = 0; c < 10; c++) CHECK(counts[c] == 1000);
    }
    cx_tensor_free(t);
    const char *pi = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    if (access(pi, R_OK) == 0) {
        t = NULL;
        CHECK(cx_idx_load(pi, 1.0f / 255.0f, 16, &t) == CX_OK);
        CHECK(t && t->ndim == 3 && t->shape[0] == 16 && t->shape[1] == 28 && t->shape[2] == 28);
        if (t) {
            float lo = 1, hi = 0;
            for (int64_t i = 0; i < t->numel; i++) {
                if (CX_F(t)[i] < lo) lo = CX_F(t)[i];
                if (CX_F(t)[i] > hi) hi = CX_F(t)[i];
            }
            CHECK(lo >= 0.0f && hi <= 1.0f && hi > 0.5f);
        }
        cx_tensor_free(t);
    }
}

/* ------------------------------------------------------------ CSV */

static const char *csv_file(const char *name, const char *text) {
    static char p[512];
    path_in(p, sizeof p, name);
    CHECK(write_raw(p, text, strlen(text)) == 0);
    return p;
}

static void test_csv_basic(void) {
    const char *p = csv_file("basic.csv", "a,b,c\n1,2,3\n4.5,-6,7e2\n");
    cx_tensor *t = NULL;
    char **hdr = NULL;
    int nh = -1;
    cx_status st = cx_csv_load(p, &t, &hdr, &nh);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    CHECK(t && t->dtype == CX_F32 && t->persistent && t->ndim == 2 && t->shape[0] == 2 &&
          t->shape[1] == 3);
    float want[6] = {1, 2, 3, 4.5f, -6, 700};
    if (t) cxt_allclose(CX_F(t), want, 6, 0, 0, "basic");
    CHECK(nh == 3 && hdr && strcmp(hdr[0], "a") == 0 && strcmp(hdr[2], "c") == 0);
    cx_csv_free_header(hdr, nh);
    cx_tensor_free(t);

    /* no header, CRLF, no trailing newline, semicolons, quoted numbers, spaces */
    p = csv_file("semi.csv", "1;2\r\n 3 ; \"4\"\r\n\r\n5;6");
    t = NULL;
    hdr = (char **)0x1;
    nh = -1;
    CHECK(cx_csv_load(p, &t, &hdr, &nh) == CX_OK);
    CHECK(hdr == NULL && nh == 0);
    CHECK(t && t->shape[0] == 3 && t->shape[1] == 2);
    float w2[6] = {1, 2, 3, 4, 5, 6};
    if (t) cxt_allclose(CX_F(t), w2, 6, 0, 0, "semi");
    cx_tensor_free(t);

    /* tabs, quoted header with delimiter and escaped quote inside */
    p = csv_file("tab.tsv", "\"x\ty\"\t\"say \"\"hi\"\"\"\n1\t2\n");
    t = NULL;
    CHECK(cx_csv_load(p, &t, &hdr, &nh) == CX_OK);
    CHECK(nh == 2 && hdr && strcmp(hdr[0], "x\ty") == 0 && strcmp(hdr[1], "say \"hi\"") == 0);
    CHECK(t && t->shape[0] == 1 && t->shape[1] == 2 && CX_F(t)[1] == 2.0f);
    cx_csv_free_header(hdr, nh);
    cx_tensor_free(t);

    /* single column, header pointer not wanted */
    p = csv_file("col.csv", "value\n0.25\n-1\n");
    t = NULL;
    CHECK(cx_csv_load(p, &t, NULL, NULL) == CX_OK);
    CHECK(t && t->shape[0] == 2 && t->shape[1] == 1 && CX_F(t)[0] == 0.25f && CX_F(t)[1] == -1.0f);
    cx_tensor_free(t);

    /* the committed fixture (CRLF, quoted header) */
    t = NULL;
    st = cx_csv_load("tests/fixtures/io/iris_head.csv", &t, &hdr, &nh);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    CHECK(t && t->shape[0] == 5 && t->shape[1] == 5);
    CHECK(nh == 5 && hdr && strcmp(hdr[2], "petal length") == 0 && strcmp(hdr[4], "class") == 0);
    if (t) CHECK(CX_F(t)[0] == 5.1f && CX_F(t)[24] == 2.0f && CX_F(t)[22] == 6.0f);
    cx_csv_free_header(hdr, nh);
    cx_tensor_free(t);
}

static void csv_bad(const char *name, const char *text, const char *want_suffix, int line) {
    const char *p = csv_file(name, text);
    cx_tensor *t = (cx_tensor *)0x1;
    char **hdr = (char **)0x1;
    int nh = -1;
    cx_status st = cx_csv_load(p, &t, &hdr, &nh);
    CHECK_MSG(st == CX_ERR_FORMAT, "line %d: status %d", line, (int)st);
    CHECK_MSG(t == NULL && hdr == NULL && nh == 0, "line %d: outputs not cleared", line);
    char want[700];
    snprintf(want, sizeof want, "%s%s", p, want_suffix);
    CHECK_MSG(strcmp(cx_last_error(), want) == 0, "line %d: got '%s', want '%s'", line, cx_last_error(),
              want);
}
#define CSV_BAD(name, text, want) csv_bad(name, text, want, __LINE__)

static void test_csv_errors(void) {
    CSV_BAD("ragged.csv", "a,b,c,d\n1,2,3,4\n5,6,7\n", ":3: expected 4 fields, got 3");
    CSV_BAD("ragged2.csv", "1,2\n\n3\n", ":3: expected 2 fields, got 1");
    CSV_BAD("nan.csv", "x,y\r\n1,2\r\nabc,3\r\n", ":3: 'abc' is not a number");
    CSV_BAD("num.csv", "1,2\n3,4x\n", ":2: '4x' is not a number");
    CSV_BAD("emptyfield.csv", "1,2\n3,\n", ":2: field 2 is empty");
    CSV_BAD("empty.csv", "", ": empty file");
    CSV_BAD("blank.csv", "\n\r\n  \n", ": empty file");
    CSV_BAD("hdronly.csv", "a,b\n", ": no data rows (only a header)");
    CSV_BAD("quote.csv", "a,b\n\"1,2\n", ":2: unterminated quoted field");
    CSV_BAD("quote2.csv", "a,b\n\"1\"x,2\n", ":2: unexpected character after a closing quote");
    CSV_BAD("quote3.csv", "a,b\n1\"2,3\n", ":2: quote inside an unquoted field");
    /* a number beyond the float range is not turned into inf (issue 14, item 17) */
    CSV_BAD("huge.csv", "a,b\n1,2\n3,1e308\n", ":3: column 2: 1e308 is beyond the float range (+-3.4e+38)");
    CSV_BAD("huge2.csv", "-1e999,2\n", ":1: column 1: -1e999 is beyond the float range (+-3.4e+38)");
    cx_tensor *t = NULL;
    /* ... but nan and inf written as such are read as they are */
    CHECK(cx_csv_load(csv_file("naninf.csv", "a,b,c\n1,nan,-inf\n3.4e38,inf,-1e-50\n"), &t, NULL, NULL) == CX_OK);
    if (t) {
        CHECK(isnan(CX_F(t)[1]) && isinf(CX_F(t)[2]) && CX_F(t)[2] < 0 && isinf(CX_F(t)[4]));
        CHECK(isfinite(CX_F(t)[3]) && CX_F(t)[5] == 0.0f);
        cx_tensor_free(t);
        t = NULL;
    }
    CHECK(cx_csv_load("/nonexistent/d.csv", &t, NULL, NULL) == CX_ERR_IO && t == NULL);
    CHECK(strstr(cx_last_error(), "/nonexistent/d.csv") != NULL);
}

static void cleanup_dir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cx_idx_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_idx_images);
    RUN(test_idx_labels_and_types);
    RUN(test_idx_hostile);
    RUN(test_idx_fashion_mnist);
    RUN(test_csv_basic);
    RUN(test_csv_errors);
    cleanup_dir();
    TEST_END();
}
