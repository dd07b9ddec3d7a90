/* Text corpora: UTF-8, character vocabularies (build, encode/decode, save/load),
 * train/validation split and the truncated-BPTT batcher. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define CORPUS "data/text/kjv_genesis_ruth_jonah.txt"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void write_bytes(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(s, 1, n, f) == n);
    fclose(f);
}

/* ------------------------------------------------------------ UTF-8 */
static void utf8_round_trip(void) {
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z"; /* a e-acute euro grinning-face z */
    int32_t *cp = NULL;
    int64_t n = 0;
    CHECK(cx_utf8_decode(s, strlen(s), &cp, &n) == CX_OK);
    CHECK(n == 5);
    if (n == 5) {
        CHECK(cp[0] == 'a' && cp[1] == 0xE9 && cp[2] == 0x20AC && cp[3] == 0x1F600 && cp[4] == 'z');
        char buf[32];
        size_t len = 0;
        for (int i = 0; i < 5; i++) len += (size_t)cx_utf8_encode(cp[i], buf + len);
        CHECK(len == strlen(s) && !memcmp(buf, s, len));
    }
    free(cp);
    char b[4];
    CHECK(cx_utf8_encode(0xD800, b) == 0 && cx_utf8_encode(0x110000, b) == 0 && cx_utf8_encode(-1, b) == 0);
    CHECK(cx_utf8_encode(0x7F, b) == 1 && cx_utf8_encode(0x80, b) == 2 && cx_utf8_encode(0xFFFF, b) == 3 &&
          cx_utf8_encode(0x10FFFF, b) == 4);
    /* empty input */
    CHECK(cx_utf8_decode("", 0, &cp, &n) == CX_OK && n == 0);
    free(cp);
}

static void utf8_rejects_invalid(void) {
    struct {
        const char *s;
        const char *msg;
    } bad[] = {
        {"ab\xC0\xAF", "overlong"},          /* overlong '/' */
        {"\xE0\x80\xAF", "overlong"},        /* 3-byte overlong */
        {"\xED\xA0\x80", "invalid code point"}, /* surrogate D800 */
        {"\xF4\x90\x80\x80", "invalid code point"}, /* above 10FFFF */
        {"x\xE2\x82", "truncated"},
        {"\xE2(\xAC", "continuation"},
        {"\x80", "cannot start"},
        {"\xFF", "cannot start"},
    };
    for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *cp = (int32_t *)&i; /* must be reset to NULL on error */
        int64_t n = 7;
        CHECK_MSG(cx_utf8_decode(bad[i].s, strlen(bad[i].s), &cp, &n) == CX_ERR_FORMAT, "case %u", i);
        CHECK(cp == NULL && n == 0);
        CHECK_MSG(strstr(cx_last_error(), bad[i].msg) != NULL, "case %u: '%s' lacks '%s'", i,
                  cx_last_error(), bad[i].msg);
    }
    /* the offset is reported */
    int32_t *cp;
    int64_t n;
    CHECK(cx_utf8_decode("abc\xC0\xAF", 5, &cp, &n) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "offset 3") != NULL);
}

/* ------------------------------------------------------------ vocabulary */
static void vocab_build_encode_decode(void) {
    const char *text = "h\xC3\xA9llo w\xC3\xA9rld!"; /* "héllo wérld!" */
    int32_t *cp;
    int64_t n;
    CHECK(cx_utf8_decode(text, strlen(text), &cp, &n) == CX_OK);
    cx_vocab *v = cx_vocab_build(cp, n, 1);
    /* distinct: ' ' ! d h l o r w e-acute -> 9 + <unk> */
    CHECK(v->size == 10);
    CHECK(v->chars[0] == -1 && v->counts[0] == 0);
    for (int i = 2; i < v->size; i++) CHECK(v->chars[i] > v->chars[i - 1]);
    CHECK(v->chars[1] == ' ' && v->chars[9] == 0xE9);
    CHECK(v->counts[cx_vocab_id(v, 'l')] == 3 && v->counts[cx_vocab_id(v, 0xE9)] == 2);
    CHECK(cx_vocab_id(v, 'Z') == CX_VOCAB_UNK && cx_vocab_char(v, 0) == -1 && cx_vocab_char(v, 99) == -1);
    int64_t total = 0;
    for (int i = 0; i < v->size; i++) total += v->counts[i];
    CHECK(total == n);
    /* encode / decode round trip */
    int32_t *ids;
    int64_t ni;
    CHECK(cx_vocab_encode(v, text, strlen(text), &ids, &ni) == CX_OK && ni == n);
    char buf[64];
    size_t len = cx_vocab_decode(v, ids, ni, buf, sizeof buf);
    CHECK(len == strlen(text) && !strcmp(buf, text));
    /* snprintf-style truncation */
    char small[5];
    CHECK(cx_vocab_decode(v, ids, ni, small, sizeof small) == strlen(text));
    CHECK(!strcmp(small, "h\xC3\xA9l"));
    CHECK(cx_vocab_decode(v, ids, ni, NULL, 0) == strlen(text));
    free(ids);
    /* unknown characters -> <unk> -> U+FFFD */
    CHECK(cx_vocab_encode(v, "hZ\xE2\x82\xAC", 5, &ids, &ni) == CX_OK && ni == 3);
    CHECK(ids[0] == cx_vocab_id(v, 'h') && ids[1] == CX_VOCAB_UNK && ids[2] == CX_VOCAB_UNK);
    len = cx_vocab_decode(v, ids, ni, buf, sizeof buf);
    CHECK(len == 7 && !strcmp(buf, "h\xEF\xBF\xBD\xEF\xBF\xBD"));
    free(ids);
    CHECK(cx_vocab_encode(v, "\xC0\xAF", 2, &ids, &ni) == CX_ERR_FORMAT);
    cx_vocab_free(v);
    /* min_count: characters seen fewer times go to <unk> and are counted there */
    v = cx_vocab_build(cp, n, 2);
    CHECK(v->size == 3); /* l (3 times), e-acute (twice) */
    CHECK(v->chars[1] == 'l' && v->chars[2] == 0xE9);
    CHECK(v->counts[0] == n - 3 - 2);
    CHECK(cx_vocab_id(v, 'h') == CX_VOCAB_UNK);
    cx_vocab_free(v);
    cx_vocab_free(NULL);
    free(cp);
}

static void vocab_save_load_round_trip(void) {
    const char *text = "the quick brown fox \xE2\x82\xAC jumps";
    int32_t *cp;
    int64_t n;
    CHECK(cx_utf8_decode(text, strlen(text), &cp, &n) == CX_OK);
    cx_vocab *v = cx_vocab_build(cp, n, 2);
    free(cp);
    const char *path = tmp_path("vocab.safetensors");
    CHECK(cx_vocab_save(v, path) == CX_OK);
    cx_vocab *w = NULL;
    CHECK(cx_vocab_load(path, &w) == CX_OK);
    CHECK(w && w->size == v->size);
    if (w && w->size == v->size) {
        CHECK(!memcmp(w->chars, v->chars, (size_t)v->size * sizeof(int32_t)));
        CHECK(!memcmp(w->counts, v->counts, (size_t)v->size * sizeof(int64_t)));
    }
    cx_vocab_free(w);
    /* errors */
    w = (cx_vocab *)path;
    CHECK(cx_vocab_load(tmp_path("missing.safetensors"), &w) == CX_ERR_IO && w == NULL);
    cx_tensor *t = cx_tensor_new(CX_I32, CX_SHAPE(3));
    const char *nm[] = {"chars"};
    CHECK(cx_st_save(tmp_path("other.safetensors"), &t, nm, 1, NULL, NULL, 0) == CX_OK);
    CHECK(cx_vocab_load(tmp_path("other.safetensors"), &w) == CX_ERR_FORMAT && w == NULL);
    CHECK(strstr(cx_last_error(), "format tag") != NULL);
    /* right tag, but code points out of order */
    cx_tensor *co = cx_tensor_new(CX_I64, CX_SHAPE(3));
    CX_I32P(t)[0] = -1;
    CX_I32P(t)[1] = 'b';
    CX_I32P(t)[2] = 'a';
    cx_tensor *ts[] = {t, co};
    const char *nms[] = {"chars", "counts"}, *mk[] = {"format"}, *mv[] = {"cortex-char-vocab"};
    CHECK(cx_st_save(tmp_path("bad.safetensors"), ts, nms, 2, mk, mv, 1) == CX_OK);
    CHECK(cx_vocab_load(tmp_path("bad.safetensors"), &w) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "increasing") != NULL);
    CX_I32P(t)[2] = 'c';
    CHECK(cx_st_save(tmp_path("good.safetensors"), ts, nms, 2, mk, mv, 1) == CX_OK);
    CHECK(cx_vocab_load(tmp_path("good.safetensors"), &w) == CX_OK && w && w->size == 3);
    cx_vocab_free(w);
    cx_tensor_free(t);
    cx_tensor_free(co);
    cx_vocab_free(v);
}

/* ------------------------------------------------------------ corpus */
static void text_load_corpus(void) {
    cx_vocab *v = NULL;
    cx_tensor *ids = NULL;
    CHECK_MSG(cx_text_load(CORPUS, 1, &v, &ids) == CX_OK, "%s", cx_last_error());
    if (!ids) return;
    void *raw;
    size_t nb;
    CHECK(cx_read_file(CORPUS, &raw, &nb, 0) == CX_OK);
    CHECK(ids->dtype == CX_I32 && ids->ndim == 1 && ids->numel == (int64_t)nb); /* ASCII text */
    CHECK(v->size > 40 && v->size < 90);
    CHECK(v->counts[0] == 0);
    for (int64_t i = 0; i < ids->numel; i++)
        if (CX_I32P(ids)[i] <= 0 || CX_I32P(ids)[i] >= v->size) {
            CHECK_MSG(0, "id %d at %lld", CX_I32P(ids)[i], (long long)i);
            break;
        }
    /* decoding gives the file back */
    char *back = malloc(nb + 1);
    size_t len = cx_vocab_decode(v, CX_I32P(ids), ids->numel, back, nb + 1);
    CHECK(len == nb && !memcmp(back, raw, nb));
    free(back);
    CHECK(v->chars[cx_vocab_id(v, 'e')] == 'e' && v->counts[cx_vocab_id(v, 'e')] > 10000);
    /* train / validation split */
    cx_tensor *tr, *va;
    cx_text_split(ids, 0.1, &tr, &va);
    CHECK(va->numel == (int64_t)llround(0.1 * (double)ids->numel));
    CHECK(tr->numel + va->numel == ids->numel);
    CHECK(!memcmp(tr->data, ids->data, (size_t)tr->numel * 4));
    CHECK(!memcmp(va->data, CX_I32P(ids) + tr->numel, (size_t)va->numel * 4));
    CHECK(tr->persistent && va->persistent);
    /* batches of the real corpus: stream 0 read across batches is a slice of the text */
    cx_bptt_loader *ld = cx_bptt_new(tr, 8, 64, false);
    cx_tensor *x, *y;
    int64_t L = cx_bptt_stream_len(ld), got = 0;
    char *s0 = malloc((size_t)L + 1);
    while (cx_bptt_next(ld, &x, &y)) {
        for (int t = 0; t < x->shape[0]; t++) s0[got++] = (char)cx_vocab_char(v, CX_I32P(x)[t * 8]);
        cx_step_reset();
    }
    CHECK(got == L && !memcmp(s0, raw, (size_t)L));
    free(s0);
    cx_bptt_free(ld);
    /* a pre-built vocabulary is used as is */
    cx_vocab *small = cx_vocab_build((const int32_t[]){'a', 'e'}, 2, 1);
    cx_tensor *ids2 = NULL;
    CHECK(cx_text_load(CORPUS, 1, &small, &ids2) == CX_OK && small->size == 3);
    if (ids2) {
        int64_t unk = 0;
        for (int64_t i = 0; i < ids2->numel; i++) unk += CX_I32P(ids2)[i] == CX_VOCAB_UNK;
        CHECK(unk == ids2->numel - v->counts[cx_vocab_id(v, 'a')] - v->counts[cx_vocab_id(v, 'e')]);
    }
    cx_tensor_free(ids2);
    cx_vocab_free(small);
    free(raw);
    cx_tensor_free(tr);
    cx_tensor_free(va);
    cx_tensor_free(ids);
    cx_vocab_free(v);
}

static void text_load_utf8_and_errors(void) {
    const char *s = "\xCE\xB1\xCE\xB2\xCE\xB1 x\n";  /* "αβα x\n" */
    write_bytes(tmp_path("greek.txt"), s, strlen(s));
    cx_vocab *v = NULL;
    cx_tensor *ids = NULL;
    CHECK(cx_text_load(tmp_path("greek.txt"), 1, &v, &ids) == CX_OK);
    CHECK(ids && ids->numel == 6 && v && v->size == 6);
    if (ids && v) {
        CHECK(CX_I32P(ids)[0] == CX_I32P(ids)[2] && cx_vocab_char(v, CX_I32P(ids)[1]) == 0x3B2);
        CHECK(v->chars[1] == '\n' && v->chars[2] == ' ');
    }
    cx_tensor_free(ids);
    cx_vocab_free(v);
    v = NULL;
    write_bytes(tmp_path("bad.txt"), "ok\xC3(", 4);
    CHECK(cx_text_load(tmp_path("bad.txt"), 1, &v, &ids) == CX_ERR_FORMAT && ids == NULL && v == NULL);
    CHECK(strstr(cx_last_error(), "bad.txt") && strstr(cx_last_error(), "offset 3"));
    write_bytes(tmp_path("empty.txt"), "", 0);
    CHECK(cx_text_load(tmp_path("empty.txt"), 1, &v, &ids) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "empty"));
    CHECK(cx_text_load(tmp_path("nope.txt"), 1, &v, &ids) == CX_ERR_IO);
    cx_tensor *t = cx_tensor_new(CX_I32, CX_SHAPE(10)), *a, *b;
    cx_text_split(t, 0.0, &a, &b);
    CHECK(a->numel == 10 && b->numel == 0);
    cx_tensor_free(a);
    cx_tensor_free(b);
    EXPECT_FATAL(cx_text_split(t, 1.0, &a, &b), "val_fraction");
    cx_tensor_free(t);
}

/* ------------------------------------------------------------ BPTT batcher */
/* ids[i] = i: every batch value names its own position. */
static cx_tensor *positions(int n, cx_dtype dt) {
    cx_tensor *t = cx_tensor_new(dt, CX_SHAPE(n));
    for (int i = 0; i < n; i++) {
        if (dt == CX_I32) CX_I32P(t)[i] = i;
        else CX_I64P(t)[i] = i;
    }
    return t;
}

/* One epoch: check the layout formula, x/y shift, continuity and coverage. */
static void check_epoch(cx_bptt_loader *ld, int N, int B, int T) {
    int64_t o = cx_bptt_offset(ld), L = cx_bptt_stream_len(ld);
    CHECK(L == (N - o - 1) / B);
    char *seen = calloc((size_t)N, 1);
    int32_t *last = malloc((size_t)B * sizeof(int32_t));
    int k = 0;
    cx_tensor *x, *y;
    while (cx_bptt_next(ld, &x, &y)) {
        int Tk = x->shape[0];
        CHECK(x->dtype == CX_I32 && y->dtype == CX_I32 && x->ndim == 2 && x->shape[1] == B);
        CHECK(y->shape[0] == Tk && y->shape[1] == B);
        CHECK(Tk == (L - (int64_t)k * T < T ? L - (int64_t)k * T : T) && Tk > 0);
        for (int b = 0; b < B; b++) {
            /* batch k continues batch k-1 in every stream */
            if (k > 0) CHECK(CX_I32P(x)[b] == last[b] + 1);
            for (int t = 0; t < Tk; t++) {
                int32_t xv = CX_I32P(x)[t * B + b], yv = CX_I32P(y)[t * B + b];
                CHECK(xv == o + (int64_t)b * L + (int64_t)k * T + t);
                CHECK(yv == xv + 1);
                if (xv >= 0 && xv < N) {
                    CHECK(!seen[xv]);
                    seen[xv] = 1;
                }
            }
            last[b] = CX_I32P(x)[(Tk - 1) * B + b];
        }
        k++;
        cx_step_reset();
    }
    CHECK(k == cx_bptt_num_batches(ld));
    /* full coverage: positions o .. o + B*L - 1, each exactly once */
    int covered = 0;
    for (int i = 0; i < N; i++) {
        covered += seen[i];
        if (seen[i]) CHECK(i >= o && i < o + B * L);
    }
    CHECK(covered == B * L);
    CHECK(!cx_bptt_next(ld, &x, &y)); /* stays at the end */
    free(seen);
    free(last);
}

static void bptt_layout_continuity_coverage(void) {
    const int N = 50, B = 3, T = 4;
    cx_tensor *ids = positions(N, CX_I32);
    cx_bptt_loader *ld = cx_bptt_new(ids, B, T, false);
    CHECK(cx_bptt_offset(ld) == 0 && cx_bptt_stream_len(ld) == 16 && cx_bptt_num_batches(ld) == 4);
    check_epoch(ld, N, B, T);
    cx_bptt_reset(ld);
    check_epoch(ld, N, B, T);
    cx_bptt_free(ld);
    cx_tensor_free(ids);
    /* a short last batch (L = 59 / 2 = 29 = 4 * 7 + 1), I64 ids */
    ids = positions(60, CX_I64);
    ld = cx_bptt_new(ids, 2, 7, false);
    CHECK(cx_bptt_stream_len(ld) == 29 && cx_bptt_num_batches(ld) == 5);
    check_epoch(ld, 60, 2, 7);
    cx_bptt_free(ld);
    cx_tensor_free(ids);
    /* the smallest corpus: one token per stream */
    ids = positions(4, CX_I32);
    ld = cx_bptt_new(ids, 3, 5, false);
    CHECK(cx_bptt_stream_len(ld) == 1 && cx_bptt_num_batches(ld) == 1);
    check_epoch(ld, 4, 3, 5);
    cx_bptt_free(ld);
    cx_tensor_free(ids);
}

static void bptt_random_offsets(void) {
    const int N = 1000, B = 4, T = 10;
    cx_tensor *ids = positions(N, CX_I32);
    cx_seed(123);
    cx_bptt_loader *ld = cx_bptt_new(ids, B, T, true);
    int hist[10] = {0};
    int64_t offs[30];
    for (int e = 0; e < 30; e++) {
        if (e) cx_bptt_reset(ld);
        int64_t o = cx_bptt_offset(ld);
        offs[e] = o;
        CHECK(o >= 0 && o < T);
        if (o >= 0 && o < T) hist[o]++;
        check_epoch(ld, N, B, T);
    }
    int distinct = 0;
    for (int i = 0; i < 10; i++) distinct += hist[i] > 0;
    CHECK(distinct >= 5);
    cx_bptt_free(ld);
    /* same seed, same offsets */
    cx_seed(123);
    ld = cx_bptt_new(ids, B, T, true);
    for (int e = 0; e < 30; e++) {
        if (e) cx_bptt_reset(ld);
        CHECK(cx_bptt_offset(ld) == offs[e]);
    }
    cx_bptt_free(ld);
    cx_tensor_free(ids);
}

static void bptt_errors(void) {
    cx_tensor *ids = positions(10, CX_I32);
    EXPECT_FATAL(cx_bptt_new(ids, 0, 5, false), "batch 0");
    EXPECT_FATAL(cx_bptt_new(ids, 2, 0, false), "bptt 0");
    EXPECT_FATAL(cx_bptt_new(ids, 10, 5, false), "too few", "need at least 11");
    EXPECT_FATAL(cx_bptt_new(ids, 6, 5, true), "random offsets", "need at least 11");
    cx_tensor *f = cx_tensor_new(CX_F32, CX_SHAPE(10));
    EXPECT_FATAL(cx_bptt_new(f, 2, 2, false), "1-D I32 or I64");
    cx_tensor_free(f);
    cx_tensor_free(ids);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_text.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(utf8_round_trip);
    RUN(utf8_rejects_invalid);
    RUN(vocab_build_encode_decode);
    RUN(vocab_save_load_round_trip);
    RUN(text_load_corpus);
    RUN(text_load_utf8_and_errors);
    RUN(bptt_layout_continuity_coverage);
    RUN(bptt_random_offsets);
    RUN(bptt_errors);
    const char *names[] = {"vocab.safetensors", "other.safetensors", "bad.safetensors", "good.safetensors",
                           "greek.txt", "bad.txt", "empty.txt"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) unlink(tmp_path(names[i]));
    rmdir(tmpdir);
    TEST_END();
}
