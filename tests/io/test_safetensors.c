/* safetensors: round trips, PyTorch interop fixture, hostile inputs, fuzzing,
 * parameter save/load. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test.h"

static char g_dir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

/* u64 header length + json (+ data). Caller frees. */
static unsigned char *make_st(const char *json, const void *data, size_t dlen, size_t *out_n) {
    size_t jl = strlen(json);
    unsigned char *b = malloc(8 + jl + dlen + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)jl >> (8 * i));
    memcpy(b + 8, json, jl);
    if (dlen) memcpy(b + 8 + jl, data, dlen);
    *out_n = 8 + jl + dlen;
    return b;
}

/* Parse must fail with CX_ERR_FORMAT and a message containing `want`. */
static void expect_bad(const char *json, size_t dlen, const char *want, int line) {
    static const unsigned char zeros[4096];
    size_t n;
    unsigned char *b = make_st(json, zeros, dlen, &n);
    cx_st_file *f = (cx_st_file *)0x1;
    cx_status st = cx_st_parse(b, n, &f);
    CHECK_MSG(st == CX_ERR_FORMAT, "line %d: status %d for %.60s", line, (int)st, json);
    CHECK_MSG(f == NULL, "line %d: out not NULL on error", line);
    CHECK_MSG(strstr(cx_last_error(), want) != NULL, "line %d: message '%s' lacks '%s'", line,
              cx_last_error(), want);
    CHECK_MSG(strncmp(cx_last_error(), "<memory>: ", 10) == 0, "line %d: message '%s' lacks the label",
              line, cx_last_error());
    if (st == CX_OK) cx_st_free(f);
    free(b);
}
#define BAD(json, dlen, want) expect_bad(json, dlen, want, __LINE__)

static void test_roundtrip(void) {
    cx_tensor *a = cx_tensor_new(CX_F32, CX_SHAPE(2, 3));
    for (int i = 0; i < 6; i++) CX_F(a)[i] = (float)i * 1.5f - 2.0f;
    CX_F(a)[5] = -0.0f;
    cx_tensor *b = cx_tensor_new(CX_I32, CX_SHAPE(4));
    int32_t bi[4] = {INT32_MIN, -1, 0, INT32_MAX};
    memcpy(b->data, bi, sizeof bi);
    cx_tensor *c = cx_tensor_new(CX_I64, CX_SHAPE(3));
    int64_t ci[3] = {INT64_MIN, 1234567890123LL, INT64_MAX};
    memcpy(c->data, ci, sizeof ci);
    cx_tensor *s = cx_tensor_new(CX_F32, NULL, 0); /* 0-d scalar */
    CX_F(s)[0] = 3.25f;
    cx_tensor *e = cx_tensor_new(CX_F32, CX_SHAPE(0, 5)); /* empty */
    cx_tensor *ts[5] = {a, b, c, s, e};
    const char *names[5] = {"w.a", "b \"quoted\"\n", "c", "scalar", "empty"};
    const char *mk[2] = {"format", "epoch"}, *mv[2] = {"pt", "caf\xc3\xa9 \\ \x01"};
    char p1[512], p2[512];
    path_in(p1, sizeof p1, "rt.safetensors");
    path_in(p2, sizeof p2, "rt2.safetensors");
    CHECK(cx_st_save(p1, ts, names, 5, mk, mv, 2) == CX_OK);
    /* deterministic regardless of the order of the arguments */
    cx_tensor *ts2[5] = {e, s, c, b, a};
    const char *names2[5] = {"empty", "scalar", "c", "b \"quoted\"\n", "w.a"};
    CHECK(cx_st_save(p2, ts2, names2, 5, mk, mv, 2) == CX_OK);
    void *d1, *d2;
    size_t n1, n2;
    CHECK(cx_read_file(p1, &d1, &n1, 0) == CX_OK);
    CHECK(cx_read_file(p2, &d2, &n2, 0) == CX_OK);
    CHECK(n1 == n2 && memcmp(d1, d2, n1) == 0);
    /* header 8-aligned, padded with spaces */
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)((unsigned char *)d1)[i] << (8 * i);
    CHECK((8 + hl) % 8 == 0);
    CHECK(((char *)d1)[8] == '{');
    free(d1);
    free(d2);

    cx_st_file *f = NULL;
    CHECK(cx_st_load(p1, &f) == CX_OK);
    if (!f) return;
    CHECK(f->n == 5);
    cx_tensor *la = cx_st_get(f, "w.a");
    CHECK(la && la->dtype == CX_F32 && la->ndim == 2 && la->shape[0] == 2 && la->shape[1] == 3);
    if (la) CHECK(memcmp(la->data, a->data, 24) == 0);
    if (la) CHECK(la->name && strcmp(la->name, "w.a") == 0);
    cx_tensor *lb = cx_st_get(f, "b \"quoted\"\n");
    CHECK(lb && lb->dtype == CX_I32 && lb->numel == 4 && memcmp(lb->data, bi, 16) == 0);
    cx_tensor *lc = cx_st_get(f, "c");
    CHECK(lc && lc->dtype == CX_I64 && lc->numel == 3 && memcmp(lc->data, ci, 24) == 0);
    cx_tensor *ls = cx_st_get(f, "scalar");
    CHECK(ls && ls->ndim == 0 && ls->numel == 1 && CX_F(ls)[0] == 3.25f);
    cx_tensor *le = cx_st_get(f, "empty");
    CHECK(le && le->ndim == 2 && le->shape[0] == 0 && le->shape[1] == 5 && le->numel == 0);
    CHECK(cx_st_get(f, "nope") == NULL);
    CHECK(f->n_meta == 2);
    CHECK(cx_st_meta(f, "format") && strcmp(cx_st_meta(f, "format"), "pt") == 0);
    CHECK(cx_st_meta(f, "epoch") && strcmp(cx_st_meta(f, "epoch"), mv[1]) == 0);
    CHECK(cx_st_meta(f, "missing") == NULL);
    cx_st_free(f);

    /* the same bytes parse from memory too */
    void *d;
    size_t n;
    CHECK(cx_read_file(p1, &d, &n, 0) == CX_OK);
    f = NULL;
    CHECK(cx_st_parse(d, n, &f) == CX_OK);
    CHECK(f && f->n == 5 && cx_st_get(f, "c") && CX_I64P(cx_st_get(f, "c"))[2] == INT64_MAX);
    cx_st_free(f);
    free(d);

    /* no tensors, no metadata */
    CHECK(cx_st_save(p2, NULL, NULL, 0, NULL, NULL, 0) == CX_OK);
    f = NULL;
    CHECK(cx_st_load(p2, &f) == CX_OK);
    CHECK(f && f->n == 0 && f->n_meta == 0);
    cx_st_free(f);
    for (int i = 0; i < 5; i++) cx_tensor_free(ts[i]);
}

static void test_save_errors(void) {
    char p[512];
    path_in(p, sizeof p, "bad_save.safetensors");
    cx_tensor *a = cx_tensor_new(CX_F32, CX_SHAPE(2));
    cx_tensor *ts[2] = {a, a};
    const char *dup[2] = {"x", "x"};
    CHECK(cx_st_save(p, ts, dup, 2, NULL, NULL, 0) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "duplicate tensor name 'x'") != NULL);
    const char *res[1] = {"__metadata__"};
    CHECK(cx_st_save(p, ts, res, 1, NULL, NULL, 0) == CX_ERR_ARG);
    const char *nul[1] = {NULL};
    CHECK(cx_st_save(p, ts, nul, 1, NULL, NULL, 0) == CX_ERR_ARG);
    const char *ok[1] = {"x"}, *mk[2] = {"k", "k"}, *mv[2] = {"1", "2"};
    CHECK(cx_st_save(p, ts, ok, 1, mk, mv, 2) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "duplicate metadata key") != NULL);
    CHECK(access(p, F_OK) != 0); /* nothing written */
    CHECK(cx_st_save("/nonexistent-dir-cortex/x.safetensors", ts, ok, 1, NULL, NULL, 0) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "/nonexistent-dir-cortex/x.safetensors") != NULL);
    cx_tensor_free(a);
}

static void test_torch_fixture(void) {
    const char *path = "tests/fixtures/io/torch_small.safetensors";
    cx_st_file *f = NULL;
    cx_status st = cx_st_load(path, &f);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st != CX_OK) return;
    CHECK(f->n == 13);
    CHECK(cx_st_meta(f, "format") && strcmp(cx_st_meta(f, "format"), "pt") == 0);
    CHECK(cx_st_meta(f, "note") &&
          strcmp(cx_st_meta(f, "note"), "caf\xc3\xa9 \"quoted\"\n\xe2\x9c\x93") == 0);
    cx_tensor *w = cx_st_get(f, "weight");
    CHECK(w && w->dtype == CX_F32 && w->ndim == 2 && w->shape[0] == 3 && w->shape[1] == 4);
    if (w)
        for (int i = 0; i < 12; i++) CHECK_NEAR(CX_F(w)[i], i * 0.25 - 1.0, 0);
    cx_tensor *b = cx_st_get(f, "bias");
    CHECK(b && b->numel == 3 && CX_F(b)[0] == 0.5f && CX_F(b)[1] == -1.5f && CX_F(b)[2] == 3.0f);
    cx_tensor *ids = cx_st_get(f, "ids");
    CHECK(ids && ids->dtype == CX_I64 && ids->numel == 5);
    if (ids) {
        CHECK(CX_I64P(ids)[0] == 1 && CX_I64P(ids)[1] == -2 && CX_I64P(ids)[2] == 3);
        CHECK(CX_I64P(ids)[3] == (int64_t)1 << 40 && CX_I64P(ids)[4] == -((int64_t)1 << 40));
    }
    cx_tensor *c = cx_st_get(f, "count");
    CHECK(c && c->dtype == CX_I32 && c->ndim == 0 && c->numel == 1 && CX_I32P(c)[0] == 7);
    cx_tensor *h = cx_st_get(f, "half");
    CHECK(h && h->dtype == CX_F32 && h->numel == 4);
    if (h) {
        CHECK(CX_F(h)[0] == 1.5f && CX_F(h)[1] == -0.25f && CX_F(h)[2] == 65504.0f);
        CHECK(CX_F(h)[3] == ldexpf(1.0f, -24)); /* smallest fp16 subnormal */
    }
    cx_tensor *bf = cx_st_get(f, "bf");
    CHECK(bf && bf->dtype == CX_F32 && bf->numel == 3 && CX_F(bf)[0] == 1.0f &&
          CX_F(bf)[1] == -3.5f && CX_F(bf)[2] == 256.0f);
    cx_tensor *dbl = cx_st_get(f, "dbl");
    CHECK(dbl && dbl->dtype == CX_F32 && CX_F(dbl)[0] == 0.1f && CX_F(dbl)[1] == -2.5f);
    cx_tensor *u8 = cx_st_get(f, "bytes");
    CHECK(u8 && u8->dtype == CX_I64 && CX_I64P(u8)[0] == 0 && CX_I64P(u8)[1] == 128 &&
          CX_I64P(u8)[2] == 255);
    cx_tensor *i8 = cx_st_get(f, "small");
    CHECK(i8 && i8->dtype == CX_I64 && CX_I64P(i8)[0] == -128 && CX_I64P(i8)[1] == 127);
    cx_tensor *i16 = cx_st_get(f, "short");
    CHECK(i16 && CX_I64P(i16)[0] == -32768 && CX_I64P(i16)[1] == 1234);
    cx_tensor *fl = cx_st_get(f, "flags");
    CHECK(fl && fl->dtype == CX_I64 && CX_I64P(fl)[0] == 1 && CX_I64P(fl)[1] == 0 &&
          CX_I64P(fl)[2] == 1);
    cx_tensor *e = cx_st_get(f, "empty");
    CHECK(e && e->numel == 0 && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 3);
    cx_tensor *lw = cx_st_get(f, "layer.0.w");
    CHECK(lw && CX_F(lw)[0] == 1.0f && CX_F(lw)[3] == 4.0f);
    cx_st_free(f);
}

static void test_hostile(void) {
    /* sizes */
    cx_st_file *f = NULL;
    CHECK(cx_st_parse("", 0, &f) == CX_ERR_FORMAT && f == NULL);
    CHECK(strstr(cx_last_error(), "too small") != NULL);
    unsigned char big[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(cx_st_parse(big, 10, &f) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "header size 1000 is larger than the rest of the file") != NULL);
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    CHECK(cx_st_parse(huge, 10, &f) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "exceeds") != NULL);
    unsigned char lim[16] = {0x00, 0xe1, 0xf5, 0x05, 0, 0, 0, 0}; /* 100000000 + 0 */
    lim[0] = 0x01;                                                /* 100000001 */
    CHECK(cx_st_parse(lim, 16, &f) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "exceeds") != NULL);

    /* JSON structure */
    BAD("", 0, "empty");
    BAD("   ", 0, "empty");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]", 4, "truncated");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,", 4, "truncated");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1", 4, "truncated");
    BAD("{\"a\":{\"dty", 4, "unterminated string");
    BAD("{\"abc", 0, "unterminated string");
    BAD("{\"a\\", 0, "unterminated string");
    BAD("[1,2]", 0, "not a JSON object");
    BAD("\"x\"", 0, "not a JSON object");
    BAD("{} x", 0, "trailing");
    BAD("{}{}", 0, "trailing");
    BAD("{\"a\" 1}", 0, "expected ':'");
    BAD("{\"a\":[[[[1]]]]}", 0, "not an object");
    BAD("{\"a\":5}", 0, "not an object");
    BAD("{a:1}", 0, "expected a string");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, "expected a string");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]} \"b\"", 4, "expected ','");
    /* strings */
    BAD("{\"a\\q\":1}", 0, "bad escape");
    BAD("{\"a\\u00zz\":1}", 0, "bad \\u escape");
    BAD("{\"a\\u0000\":1}", 0, "\\u0000");
    BAD("{\"a\\ud800\":1}", 0, "surrogate");
    BAD("{\"a\\udc00\":1}", 0, "surrogate");
    BAD("{\"a\tb\":1}", 0, "control character");
    /* dtype / shape / offsets */
    BAD("{\"a\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unsupported dtype 'F99'");
    BAD("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype is not a string");
    BAD("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing \"dtype\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing \"shape\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing \"data_offsets\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        "duplicate \"dtype\"");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "negative");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "integer");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, "leading zero");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4, "expected '['");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "more than 8 values");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,4]}}", 4, "too large");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999],\"data_offsets\":[0,4]}}", 4,
        "overflow");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}",
        4, "overflows");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,0],\"data_offsets\":[0,0]}}", 0,
        "overflows");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "needs 2 values");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, "more than 2");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,400]}}", 4, "exceed the data buffer");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551615,4]}}", 4,
        "reversed");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "reversed");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12");
    BAD("{\"a\":{\"dtype\":\"I64\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "needs 32");
    /* overlapping / misordered / gaps / leftovers */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
        12, "overlap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
        8, "overlap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
        12, "gap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "belong to no tensor");
    /* truncated data: header promises 16 bytes, 6 present */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 6, "truncated file?");
    /* names */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
        4, "duplicate tensor name 'a'");
    BAD("{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}}", 0, "duplicate \"__metadata__\"");
    BAD("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "duplicate metadata key 'k'");
    BAD("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    BAD("{\"__metadata__\":{\"k\":{\"n\":\"v\"}}}", 0, "not a string");
    BAD("{\"__metadata__\":[]}", 0, "not an object");
    /* unknown fields are skipped, but junk inside them is still checked */
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[1,}}", 4, "unexpected");
    BAD("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":tru}}", 4, "invalid value");
    /* deeply nested junk */
    {
        size_t depth = 100000;
        const char *pre = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":";
        char *j = malloc(strlen(pre) + 2 * depth + 8);
        strcpy(j, pre);
        size_t o = strlen(j);
        for (size_t i = 0; i < depth; i++) j[o++] = '[';
        for (size_t i = 0; i < depth; i++) j[o++] = ']';
        memcpy(j + o, "}}", 3);
        BAD(j, 4, "nested too deeply");
        free(j);
    }

    /* a valid one with an unknown field and escapes still loads */
    {
        size_t n;
        float v = 2.5f;
        unsigned char *b = make_st("{\"\\u00e9\\ud83d\\ude00\\t\":{\"x\":{\"y\":[1,-2.5e3,true,null]},"
                                   "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}   ",
                                   &v, 4, &n);
        f = NULL;
        cx_status st = cx_st_parse(b, n, &f);
        CHECK_MSG(st == CX_OK, "%s", cx_last_error());
        cx_tensor *t = cx_st_get(f, "\xc3\xa9\xf0\x9f\x98\x80\t");
        CHECK(t && CX_F(t)[0] == 2.5f);
        cx_st_free(f);
        free(b);
    }
}

static void test_hostile_files(void) {
    char p[512];
    cx_st_file *f = NULL;
    path_in(p, sizeof p, "empty.safetensors");
    CHECK(write_bytes(p, "", 0) == 0);
    CHECK(cx_st_load(p, &f) == CX_ERR_FORMAT && f == NULL);
    CHECK(strstr(cx_last_error(), p) == cx_last_error() && strstr(cx_last_error(), "too small"));
    path_in(p, sizeof p, "long_header.safetensors");
    unsigned char big[10] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(write_bytes(p, big, sizeof big) == 0);
    CHECK(cx_st_load(p, &f) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), p) == cx_last_error() &&
          strstr(cx_last_error(), "larger than the rest of the file"));
    path_in(p, sizeof p, "trunc_data.safetensors");
    size_t n;
    unsigned char *b = make_st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                               "abcdefgh", 8, &n);
    CHECK(write_bytes(p, b, n) == 0);
    free(b);
    CHECK(cx_st_load(p, &f) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "tensor 'w'") && strstr(cx_last_error(), "exceed the data buffer"));
    CHECK(cx_st_load("/nonexistent/file.safetensors", &f) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "/nonexistent/file.safetensors") != NULL);
    CHECK(cx_st_load(g_dir, &f) == CX_ERR_IO); /* a directory */
}

static uint64_t g_rng = 88172645463325252ULL;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

static void test_fuzz(void) {
    void *d;
    size_t n;
    cx_status st = cx_read_file("tests/fixtures/io/torch_small.safetensors", &d, &n, 0);
    CHECK(st == CX_OK);
    if (st != CX_OK) return;
    const unsigned char *orig = d;
    unsigned char *m = malloc(n);
    int ok = 0, bad = 0, other = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(m, orig, n);
        size_t len = n;
        int kind = (int)(rnd() % 4);
        int flips = 1 + (int)(rnd() % 4);
        if (kind != 1)
            for (int k = 0; k < flips; k++) {
                /* mostly in the header, where the parser lives */
                size_t at = (rnd() % 4) ? (size_t)(rnd() % 700) : (size_t)(rnd() % n);
                if (rnd() % 2) m[at] ^= (unsigned char)(1u << (rnd() % 8));
                else m[at] = (unsigned char)"{}[]\",:0123456789-\\u e"[rnd() % 23];
            }
        if (kind >= 1 && kind <= 2) len = rnd() % (n + 1);
        cx_st_file *f = NULL;
        st = cx_st_parse(m, len, &f);
        if (st == CX_OK) {
            ok++;
            for (int i = 0; i < f->n; i++) { /* touch every element */
                cx_tensor *t = f->entries[i].tensor;
                volatile unsigned char sink = 0;
                for (int64_t j = 0; j < t->numel * (int64_t)cx_dtype_size(t->dtype); j++)
                    sink ^= ((unsigned char *)t->data)[j];
                (void)sink;
            }
            cx_st_free(f);
        } else if (st == CX_ERR_FORMAT) {
            bad++;
            if (f != NULL || strlen(cx_last_error()) < 12) other++;
        } else {
            other++;
        }
    }
    CHECK(ok + bad == 2000);
    CHECK(other == 0);
    CHECK(bad > 1000);
    /* the file reader (seek + read per tensor) gets the same treatment */
    char p[512];
    path_in(p, sizeof p, "fuzz.safetensors");
    int fok = 0, fbad = 0;
    for (int it = 0; it < 200; it++) {
        memcpy(m, orig, n);
        size_t len = (rnd() % 3 == 0) ? rnd() % (n + 1) : n;
        for (int k = 0; k < 2; k++) m[rnd() % 700] ^= (unsigned char)(1u << (rnd() % 8));
        if (write_bytes(p, m, len) != 0) continue;
        cx_st_file *f = NULL;
        st = cx_st_load(p, &f);
        if (st == CX_OK) fok++, cx_st_free(f);
        else if (st == CX_ERR_FORMAT && f == NULL && strstr(cx_last_error(), p) == cx_last_error()) fbad++;
    }
    CHECK(fok + fbad == 200);
    free(m);
    free(d);
}

static void test_params(void) {
    char p[512];
    path_in(p, sizeof p, "model.safetensors");
    cx_tensor *w = cx_param_new("fc1.weight", CX_SHAPE(10, 4));
    cx_tensor *b = cx_param_new("fc1.bias", CX_SHAPE(10));
    for (int i = 0; i < 40; i++) CX_F(w)[i] = (float)i / 8.0f;
    for (int i = 0; i < 10; i++) CX_F(b)[i] = -(float)i;
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, w);
    cx_params_add(&ps, b);
    CHECK(cx_params_save(p, &ps) == CX_OK);

    /* same model, zeroed: strict load restores the values */
    cx_tensor *w2 = cx_param_new("fc1.weight", CX_SHAPE(10, 4));
    cx_tensor *b2 = cx_param_new("fc1.bias", CX_SHAPE(10));
    cx_params p2;
    cx_params_init(&p2);
    cx_params_add(&p2, w2);
    cx_params_add(&p2, b2);
    CHECK(cx_params_load(p, &p2, true) == CX_OK);
    CHECK(memcmp(w2->data, w->data, 160) == 0 && memcmp(b2->data, b->data, 40) == 0);

    /* shape mismatch names the file, the tensor and both shapes; nothing written */
    cx_tensor *w3 = cx_param_new("fc1.weight", CX_SHAPE(256, 4));
    cx_tensor *b3 = cx_param_new("fc1.bias", CX_SHAPE(10));
    cx_params p3;
    cx_params_init(&p3);
    cx_params_add(&p3, b3);
    cx_params_add(&p3, w3);
    CHECK(cx_params_load(p, &p3, false) == CX_ERR_SHAPE);
    char want[700];
    snprintf(want, sizeof want, "%s: tensor 'fc1.weight' has shape [10, 4], model expects [256, 4]", p);
    CHECK_MSG(strcmp(cx_last_error(), want) == 0, "got '%s'", cx_last_error());
    CHECK(CX_F(b3)[9] == 0.0f); /* checked before copying */

    /* missing parameter: error only when strict */
    cx_tensor *extra = cx_param_new("fc2.weight", CX_SHAPE(2));
    cx_params p4;
    cx_params_init(&p4);
    cx_params_add(&p4, w2);
    cx_params_add(&p4, b2);
    cx_params_add(&p4, extra);
    CHECK(cx_params_load(p, &p4, true) == CX_ERR_NOTFOUND);
    CHECK(strstr(cx_last_error(), "fc2.weight") != NULL);
    CHECK(cx_params_load(p, &p4, false) == CX_OK);

    /* extra tensor in the file: error only when strict */
    cx_params p5;
    cx_params_init(&p5);
    cx_params_add(&p5, w2);
    CHECK(cx_params_load(p, &p5, true) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "unexpected tensor 'fc1.bias'") != NULL);
    CHECK(cx_params_load(p, &p5, false) == CX_OK);

    /* dtype mismatch */
    cx_tensor *wi = cx_tensor_new(CX_I32, CX_SHAPE(10));
    cx_tensor_set_name(wi, "fc1.bias");
    cx_params p6;
    cx_params_init(&p6);
    cx_params_add(&p6, wi);
    CHECK(cx_params_load(p, &p6, false) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "dtype") != NULL);

    /* unnamed parameter cannot be saved */
    cx_tensor *anon = cx_tensor_new(CX_F32, CX_SHAPE(2));
    cx_params p7;
    cx_params_init(&p7);
    cx_params_add(&p7, anon);
    CHECK(cx_params_save(p, &p7) == CX_ERR_ARG);
    CHECK(cx_params_load("/nonexistent/m.safetensors", &p2, true) == CX_ERR_IO);

    cx_params_free(&ps);
    cx_params_free(&p2);
    cx_params_free(&p3);
    cx_params_free(&p4);
    cx_params_free(&p5);
    cx_params_free(&p6);
    cx_params_free(&p7);
    cx_tensor *all[] = {w, b, w2, b2, w3, b3, extra, wi, anon};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cx_tensor_free(all[i]);
}

static void cleanup_dir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", g_dir);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/cx_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip);
    RUN(test_save_errors);
    RUN(test_torch_fixture);
    RUN(test_hostile);
    RUN(test_hostile_files);
    RUN(test_fuzz);
    RUN(test_params);
    cleanup_dir();
    TEST_END();
}
