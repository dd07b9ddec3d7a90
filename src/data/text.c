/* Character-level text corpora: UTF-8, vocabularies, train/validation split
 * and the truncated-BPTT batcher. */
#include "../tensor/internal.h"
#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- UTF-8 */
static bool cp_valid(int64_t cp) { return cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF); }

cx_status cx_utf8_decode(const char *s, size_t n, int32_t **out, int64_t *n_out) {
    *out = NULL;
    *n_out = 0;
    int32_t *cps = cx_xmalloc((n ? n : 1) * sizeof(int32_t));
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    int64_t k = 0;
    while (i < n) {
        unsigned c = u[i];
        int len;
        uint32_t cp, min;
        if (c < 0x80) { len = 1; cp = c; min = 0; }
        else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else {
            free(cps);
            return cx_set_error(CX_ERR_FORMAT, "invalid UTF-8: byte 0x%02x at offset %zu cannot start a character", c, i);
        }
        if ((size_t)len > n - i) {
            free(cps);
            return cx_set_error(CX_ERR_FORMAT, "invalid UTF-8: truncated %d-byte sequence at offset %zu", len, i);
        }
        for (int j = 1; j < len; j++) {
            unsigned cc = u[i + (size_t)j];
            if ((cc & 0xC0) != 0x80) {
                free(cps);
                return cx_set_error(CX_ERR_FORMAT, "invalid UTF-8: bad continuation byte 0x%02x at offset %zu", cc, i + (size_t)j);
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || !cp_valid(cp)) {
            free(cps);
            return cx_set_error(CX_ERR_FORMAT, "invalid UTF-8: %s U+%04X at offset %zu",
                                cp < min ? "overlong encoding of" : "invalid code point", (unsigned)cp, i);
        }
        cps[k++] = (int32_t)cp;
        i += (size_t)len;
    }
    *out = cps;
    *n_out = k;
    return CX_OK;
}

int cx_utf8_encode(int32_t cp, char *buf) {
    unsigned char *b = (unsigned char *)buf;
    if (!cp_valid(cp)) return 0;
    uint32_t c = (uint32_t)cp;
    if (c < 0x80) { b[0] = (unsigned char)c; return 1; }
    if (c < 0x800) {
        b[0] = (unsigned char)(0xC0 | (c >> 6));
        b[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (c >> 12));
        b[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (c >> 18));
    b[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- vocabulary */
static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static cx_vocab *vocab_alloc(int size) {
    cx_vocab *v = cx_xcalloc(1, sizeof *v);
    v->size = size;
    v->chars = cx_xcalloc((size_t)size, sizeof(int32_t));
    v->counts = cx_xcalloc((size_t)size, sizeof(int64_t));
    v->chars[0] = -1;
    return v;
}

cx_vocab *cx_vocab_build(const int32_t *cps, int64_t n, int64_t min_count) {
    if (n < 0) cx_fatal("vocab_build: negative length %lld", (long long)n);
    int32_t *s = cx_xmalloc((size_t)(n ? n : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++) {
        if (!cp_valid(cps[i])) cx_fatal("vocab_build: invalid code point %ld at position %lld", (long)cps[i], (long long)i);
        s[i] = cps[i];
    }
    qsort(s, (size_t)n, sizeof *s, cmp_i32);
    int distinct = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || s[i] != s[i - 1]) distinct++;
    cx_vocab *v = vocab_alloc(distinct + 1);
    int k = 1;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && s[j] == s[i]) j++;
        if (j - i >= min_count) {
            v->chars[k] = s[i];
            v->counts[k] = j - i;
            k++;
        } else {
            v->counts[0] += j - i;
        }
        i = j;
    }
    free(s);
    v->size = k;
    return v;
}

void cx_vocab_free(cx_vocab *v) {
    if (!v) return;
    free(v->chars);
    free(v->counts);
    free(v);
}

int cx_vocab_id(const cx_vocab *v, int32_t cp) {
    int lo = 1, hi = v->size - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (v->chars[mid] == cp) return mid;
        if (v->chars[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return CX_VOCAB_UNK;
}

int32_t cx_vocab_char(const cx_vocab *v, int id) {
    return id >= 1 && id < v->size ? v->chars[id] : -1;
}

cx_status cx_vocab_encode(const cx_vocab *v, const char *utf8, size_t n, int32_t **ids, int64_t *n_ids) {
    cx_status st = cx_utf8_decode(utf8, n, ids, n_ids);
    if (st) return st;
    for (int64_t i = 0; i < *n_ids; i++) (*ids)[i] = cx_vocab_id(v, (*ids)[i]);
    return CX_OK;
}

size_t cx_vocab_decode(const cx_vocab *v, const int32_t *ids, int64_t n, char *buf, size_t cap) {
    size_t len = 0;
    char tmp[4];
    for (int64_t i = 0; i < n; i++) {
        int32_t cp = cx_vocab_char(v, ids[i]);
        int k = cx_utf8_encode(cp < 0 ? 0xFFFD : cp, tmp);
        for (int j = 0; j < k; j++, len++)
            if (len + 1 < cap) buf[len] = tmp[j];
    }
    if (cap) buf[len < cap ? len : cap - 1] = 0;
    return len;
}

#define VOCAB_FORMAT "cortex-char-vocab"

cx_status cx_vocab_save(const cx_vocab *v, const char *path) {
    cx_tensor *ch = cx_tensor_new(CX_I32, (int[]){v->size}, 1);
    cx_tensor *co = cx_tensor_new(CX_I64, (int[]){v->size}, 1);
    memcpy(ch->data, v->chars, (size_t)v->size * sizeof(int32_t));
    memcpy(co->data, v->counts, (size_t)v->size * sizeof(int64_t));
    CX_I32P(ch)[0] = -1;
    cx_tensor *ts[2] = {ch, co};
    const char *names[2] = {"chars", "counts"};
    const char *mk[2] = {"format", "unk"}, *mv[2] = {VOCAB_FORMAT, "0"};
    cx_status st = cx_st_save(path, ts, names, 2, mk, mv, 2);
    cx_tensor_free(ch);
    cx_tensor_free(co);
    return st;
}

cx_status cx_vocab_load(const char *path, cx_vocab **out) {
    *out = NULL;
    cx_st_file *f = NULL;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *fmt = cx_st_meta(f, "format");
    const cx_tensor *ch = cx_st_get(f, "chars"), *co = cx_st_get(f, "counts");
    const char *err = NULL;
    if (!fmt || strcmp(fmt, VOCAB_FORMAT)) err = "not a Cortex character vocabulary (format tag missing)";
    else if (!ch || !co) err = "missing tensor 'chars' or 'counts'";
    else if (ch->dtype != CX_I32 || co->dtype != CX_I64 || ch->ndim != 1 || co->ndim != 1 ||
             ch->shape[0] != co->shape[0] || ch->shape[0] < 1)
        err = "'chars' must be I32 [V] and 'counts' I64 [V] with V >= 1";
    else if (CX_I32P(ch)[0] != -1) err = "chars[0] must be -1 (<unk>)";
    else {
        for (int i = 1; i < ch->shape[0] && !err; i++) {
            int32_t c = CX_I32P(ch)[i];
            if (!cp_valid(c) || (i > 1 && c <= CX_I32P(ch)[i - 1]))
                err = "code points must be valid and strictly increasing";
        }
        for (int i = 0; i < co->shape[0] && !err; i++)
            if (CX_I64P(co)[i] < 0) err = "negative count";
    }
    if (err) {
        cx_st_free(f);
        return cx_set_error(CX_ERR_FORMAT, "%s: %s", path, err);
    }
    cx_vocab *v = vocab_alloc(ch->shape[0]);
    memcpy(v->chars, ch->data, (size_t)v->size * sizeof(int32_t));
    memcpy(v->counts, co->data, (size_t)v->size * sizeof(int64_t));
    cx_st_free(f);
    *out = v;
    return CX_OK;
}

/* ---------------------------------------------------------------- corpus */
cx_status cx_text_load(const char *path, int64_t min_count, cx_vocab **vocab, cx_tensor **ids) {
    *ids = NULL;
    void *buf = NULL;
    size_t n = 0;
    cx_status st = cx_read_file(path, &buf, &n, 0);
    if (st) return st;
    int32_t *cps = NULL;
    int64_t m = 0;
    st = cx_utf8_decode(buf, n, &cps, &m);
    free(buf);
    if (st) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        return cx_set_error(st, "%s: %s", path, msg);
    }
    if (m == 0) {
        free(cps);
        return cx_set_error(CX_ERR_FORMAT, "%s: empty text", path);
    }
    if (m > INT32_MAX) {
        free(cps);
        return cx_set_error(CX_ERR_FORMAT, "%s: %lld characters, at most %d supported", path, (long long)m, INT32_MAX);
    }
    if (!*vocab) *vocab = cx_vocab_build(cps, m, min_count);
    cx_tensor *t = cx_tensor_new(CX_I32, (int[]){(int)m}, 1);
    int32_t *d = CX_I32P(t);
    for (int64_t i = 0; i < m; i++) d[i] = cx_vocab_id(*vocab, cps[i]);
    free(cps);
    *ids = t;
    return CX_OK;
}

void cx_text_split(const cx_tensor *ids, double val_fraction, cx_tensor **train, cx_tensor **val) {
    if (!ids || ids->ndim != 1 || (ids->dtype != CX_I32 && ids->dtype != CX_I64))
        cx_fatal("text_split: ids must be a 1-D I32 or I64 tensor");
    if (!(val_fraction >= 0 && val_fraction < 1))
        cx_fatal("text_split: val_fraction %g not in [0, 1)", val_fraction);
    int n = ids->shape[0];
    int nv = (int)llround(val_fraction * n);
    if (nv > n) nv = n;
    size_t es = cx_dtype_size(ids->dtype);
    *train = cx_tensor_new(ids->dtype, (int[]){n - nv}, 1);
    *val = cx_tensor_new(ids->dtype, (int[]){nv}, 1);
    memcpy((*train)->data, ids->data, (size_t)(n - nv) * es);
    memcpy((*val)->data, (const char *)ids->data + (size_t)(n - nv) * es, (size_t)nv * es);
}

/* ---------------------------------------------------------------- BPTT batcher */
struct cx_bptt_loader {
    const cx_tensor *ids;
    int B, T;
    bool random_offset;
    int64_t offset, L, pos; /* pos: time index within the streams of the next batch */
    cx_rng *rng;            /* NULL: the current stream of the calling thread */
};

void cx_bptt_set_rng(cx_bptt_loader *l, cx_rng *rng) { l->rng = rng; }

void cx_bptt_reset(cx_bptt_loader *l) {
    int64_t N = l->ids->numel;
    l->offset = l->random_offset ? (int64_t)cx_rng_below(l->rng ? l->rng : cx_rng_current(), (uint32_t)l->T) : 0;
    l->L = (N - l->offset - 1) / l->B;
    l->pos = 0;
}

cx_bptt_loader *cx_bptt_new(const cx_tensor *ids, int batch, int bptt, bool random_offset) {
    if (!ids || ids->ndim != 1 || (ids->dtype != CX_I32 && ids->dtype != CX_I64))
        cx_fatal("bptt_new: ids must be a 1-D I32 or I64 tensor");
    if (batch < 1 || bptt < 1) cx_fatal("bptt_new: batch %d and bptt %d must be >= 1", batch, bptt);
    int64_t need = random_offset ? (int64_t)batch + bptt : (int64_t)batch + 1;
    if (ids->numel < need)
        cx_fatal("bptt_new: %lld tokens are too few for %d streams%s (need at least %lld)",
                 (long long)ids->numel, batch, random_offset ? " with random offsets" : "", (long long)need);
    cx_bptt_loader *l = cx_xcalloc(1, sizeof *l);
    l->ids = ids;
    l->B = batch;
    l->T = bptt;
    l->random_offset = random_offset;
    cx_bptt_reset(l);
    return l;
}

void cx_bptt_free(cx_bptt_loader *l) { free(l); }

bool cx_bptt_next(cx_bptt_loader *l, cx_tensor **x, cx_tensor **y) {
    if (l->pos >= l->L) return false;
    int64_t rem = l->L - l->pos;
    int Tk = rem < l->T ? (int)rem : l->T;
    int B = l->B;
    cx_tensor *xt = cx_empty(CX_I32, (int[]){Tk, B}, 2);
    cx_tensor *yt = cx_empty(CX_I32, (int[]){Tk, B}, 2);
    int32_t *xd = CX_I32P(xt), *yd = CX_I32P(yt);
    const cx_tensor *ids = l->ids;
    for (int b = 0; b < B; b++) {
        int64_t base = l->offset + (int64_t)b * l->L + l->pos;
        for (int t = 0; t < Tk; t++) {
            int64_t p = base + t;
            if (ids->dtype == CX_I32) {
                xd[(int64_t)t * B + b] = CX_I32P(ids)[p];
                yd[(int64_t)t * B + b] = CX_I32P(ids)[p + 1];
            } else {
                xd[(int64_t)t * B + b] = (int32_t)CX_I64P(ids)[p];
                yd[(int64_t)t * B + b] = (int32_t)CX_I64P(ids)[p + 1];
            }
        }
    }
    l->pos += Tk;
    *x = xt;
    *y = yt;
    return true;
}

int cx_bptt_num_batches(const cx_bptt_loader *l) { return (int)((l->L + l->T - 1) / l->T); }
int64_t cx_bptt_offset(const cx_bptt_loader *l) { return l->offset; }
int64_t cx_bptt_stream_len(const cx_bptt_loader *l) { return l->L; }
