/* safetensors reader and writer.
 *
 * File layout: u64 little-endian header size N, N bytes of JSON (an object
 * mapping tensor names to {"dtype", "shape", "data_offsets"} plus an optional
 * "__metadata__" object of strings), then the data buffer. Offsets are
 * relative to the start of the data buffer.
 *
 * The reader never trusts the file: the JSON parser below is a small strict
 * recursive-descent parser over a bounded buffer (no reads past N bytes,
 * nesting depth limited, integers overflow-checked), and every tensor is
 * validated (dtype, shape, offsets, sizes, exact tiling of the buffer, unique
 * names) before anything is allocated for its data. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cortex/core.h"
#include "cortex/io.h"
#include "../tensor/internal.h"

#define ST_MAX_HEADER 100000000ull /* 100 MB, the reference implementation's limit */
#define ST_MAX_DEPTH 64
#define ST_META_KEY "__metadata__"

/* ------------------------------------------------------------ helpers */

static int host_is_le(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const unsigned char *p) {
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}
static void wr64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* ------------------------------------------------------------ dtypes */

typedef enum { K_FLOAT, K_INT, K_UINT, K_BOOL } st_kind;
typedef struct {
    const char *name;
    size_t size;
    st_kind kind;
    cx_dtype target; /* cx dtype the data is loaded as */
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, K_FLOAT, CX_F32}, {"I32", 4, K_INT, CX_I32},  {"I64", 8, K_INT, CX_I64},
    {"F64", 8, K_FLOAT, CX_F32}, {"F16", 2, K_FLOAT, CX_F32}, {"BF16", 2, K_FLOAT, CX_F32},
    {"BOOL", 1, K_BOOL, CX_I64}, {"U8", 1, K_UINT, CX_I64},  {"I8", 1, K_INT, CX_I64},
    {"I16", 2, K_INT, CX_I64},   {"U16", 2, K_UINT, CX_I64}, {"U32", 4, K_UINT, CX_I64},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

static int st_dtype_find(const char *s) {
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return i;
    return -1;
}

static const char *st_dtype_of(cx_dtype d) {
    switch (d) {
    case CX_F32: return "F32";
    case CX_I32: return "I32";
    case CX_I64: return "I64";
    }
    return NULL;
}

/* ------------------------------------------------------------ parsed header */

typedef struct {
    char *name;
    int dt; /* index into st_dtypes */
    int ndim;
    int shape[CX_MAX_DIMS];
    uint64_t begin, end;
} st_info;

typedef struct {
    const char *label; /* file name for messages */
    const unsigned char *p;
    size_t n, i;
    int failed;
    st_info *info;
    int n_info, cap_info;
    char **mkeys, **mvals;
    int n_meta, cap_meta;
    int seen_meta;
} st_parser;

static void sp_free(st_parser *s) {
    for (int i = 0; i < s->n_info; i++) free(s->info[i].name);
    free(s->info);
    for (int i = 0; i < s->n_meta; i++) {
        free(s->mkeys[i]);
        free(s->mvals[i]);
    }
    free(s->mkeys);
    free(s->mvals);
    s->info = NULL;
    s->mkeys = s->mvals = NULL;
    s->n_info = s->n_meta = 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int sp_err(st_parser *s, const char *fmt, ...) {
    if (s->failed) return -1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->failed = 1;
    cx_set_error(CX_ERR_FORMAT, "%s: %s", s->label, msg);
    return -1;
}

static void sp_ws(st_parser *s) {
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') s->i++;
        else break;
    }
}

/* Next non-blank byte, or -1 at the end of the header. */
static int sp_peek(st_parser *s) {
    sp_ws(s);
    return s->i < s->n ? s->p[s->i] : -1;
}

static int sp_expect(st_parser *s, char c, const char *ctx) {
    int got = sp_peek(s);
    if (got != (unsigned char)c) {
        if (got < 0)
            return sp_err(s, "header JSON truncated: expected '%c' %s at byte %zu", c, ctx, s->i);
        return sp_err(s, "header JSON: expected '%c' %s at byte %zu", c, ctx, s->i);
    }
    s->i++;
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int sp_hex4(st_parser *s, size_t at, uint32_t *out) {
    if (at + 4 > s->n) return sp_err(s, "header JSON truncated inside a \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s->p[at + (size_t)k]);
        if (h < 0) return sp_err(s, "header JSON: bad \\u escape at byte %zu", at);
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* Parse a JSON string at the cursor into a malloc'd NUL-terminated C string. */
static int sp_string(st_parser *s, char **out) {
    *out = NULL;
    int c = sp_peek(s);
    if (c != '"') {
        if (c < 0) return sp_err(s, "header JSON truncated: expected a string");
        return sp_err(s, "header JSON: expected a string at byte %zu", s->i);
    }
    size_t start = ++s->i, j = start;
    /* first pass: find the closing quote */
    for (;;) {
        if (j >= s->n)
            return sp_err(s, "header JSON: unterminated string starting at byte %zu", start - 1);
        unsigned char ch = s->p[j];
        if (ch == '"') break;
        if (ch < 0x20)
            return sp_err(s, "header JSON: control character in string at byte %zu", j);
        j += ch == '\\' ? 2 : 1;
    }
    size_t end = j;
    char *d = malloc(end - start + 1);
    if (!d) return sp_err(s, "out of memory parsing the header");
    size_t o = 0;
    for (size_t k = start; k < end;) {
        unsigned char ch = s->p[k];
        if (ch != '\\') {
            d[o++] = (char)ch;
            k++;
            continue;
        }
        unsigned char e = s->p[k + 1]; /* k + 1 < end: the first pass skipped pairs */
        k += 2;
        switch (e) {
        case '"': d[o++] = '"'; break;
        case '\\': d[o++] = '\\'; break;
        case '/': d[o++] = '/'; break;
        case 'b': d[o++] = '\b'; break;
        case 'f': d[o++] = '\f'; break;
        case 'n': d[o++] = '\n'; break;
        case 'r': d[o++] = '\r'; break;
        case 't': d[o++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (k + 4 > end || sp_hex4(s, k, &cp)) {
                if (!s->failed) sp_err(s, "header JSON: bad \\u escape at byte %zu", k - 2);
                free(d);
                return -1;
            }
            k += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (k + 6 > end || s->p[k] != '\\' || s->p[k + 1] != 'u' || sp_hex4(s, k + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF) {
                    if (!s->failed) sp_err(s, "header JSON: unpaired surrogate at byte %zu", k - 6);
                    free(d);
                    return -1;
                }
                k += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                sp_err(s, "header JSON: unpaired surrogate at byte %zu", k - 6);
                free(d);
                return -1;
            }
            if (cp == 0) {
                sp_err(s, "header JSON: \\u0000 in a string is not supported");
                free(d);
                return -1;
            }
            if (cp < 0x80) {
                d[o++] = (char)cp;
            } else if (cp < 0x800) {
                d[o++] = (char)(0xC0 | (cp >> 6));
                d[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                d[o++] = (char)(0xE0 | (cp >> 12));
                d[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                d[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                d[o++] = (char)(0xF0 | (cp >> 18));
                d[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                d[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                d[o++] = (char)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            sp_err(s, "header JSON: bad escape '\\%c' at byte %zu", e >= 0x20 && e < 0x7F ? e : '?',
                   k - 2);
            free(d);
            return -1;
        }
    }
    d[o] = 0;
    s->i = end + 1;
    *out = d;
    return 0;
}

/* A non-negative integer without sign, fraction or exponent. */
static int sp_uint(st_parser *s, uint64_t *out, const char *what) {
    int c = sp_peek(s);
    if (c == '-') return sp_err(s, "%s: negative value at byte %zu", what, s->i);
    if (c < '0' || c > '9') {
        if (c < 0) return sp_err(s, "header JSON truncated: expected a number for %s", what);
        return sp_err(s, "%s: expected a non-negative integer at byte %zu", what, s->i);
    }
    uint64_t v = 0;
    size_t start = s->i;
    while (s->i < s->n && s->p[s->i] >= '0' && s->p[s->i] <= '9') {
        unsigned d = (unsigned)(s->p[s->i] - '0');
        if (v > (UINT64_MAX - d) / 10) return sp_err(s, "%s: integer overflow at byte %zu", what, start);
        v = v * 10 + d;
        s->i++;
    }
    if (s->i - start > 1 && s->p[start] == '0')
        return sp_err(s, "%s: leading zero in number at byte %zu", what, start);
    if (s->i < s->n && (s->p[s->i] == '.' || s->p[s->i] == 'e' || s->p[s->i] == 'E'))
        return sp_err(s, "%s: expected an integer at byte %zu", what, start);
    *out = v;
    return 0;
}

/* Array of at most `max` non-negative integers. */
static int sp_uint_array(st_parser *s, uint64_t *vals, int max, int *count, const char *what) {
    *count = 0;
    if (sp_expect(s, '[', what)) return -1;
    if (sp_peek(s) == ']') {
        s->i++;
        return 0;
    }
    for (;;) {
        uint64_t v = 0;
        if (sp_uint(s, &v, what)) return -1;
        if (*count >= max) return sp_err(s, "%s: more than %d values", what, max);
        vals[(*count)++] = v;
        int c = sp_peek(s);
        if (c == ',') {
            s->i++;
            continue;
        }
        if (c == ']') {
            s->i++;
            return 0;
        }
        if (c < 0) return sp_err(s, "header JSON truncated inside %s", what);
        return sp_err(s, "%s: expected ',' or ']' at byte %zu", what, s->i);
    }
}

static int sp_literal(st_parser *s, const char *lit) {
    size_t l = strlen(lit);
    if (s->n - s->i < l || memcmp(s->p + s->i, lit, l) != 0)
        return sp_err(s, "header JSON: invalid value at byte %zu", s->i);
    s->i += l;
    return 0;
}

/* Skip any JSON value (used for unknown fields). */
static int sp_skip(st_parser *s, int depth) {
    if (depth > ST_MAX_DEPTH) return sp_err(s, "header JSON nested too deeply (> %d)", ST_MAX_DEPTH);
    int c = sp_peek(s);
    if (c < 0) return sp_err(s, "header JSON truncated: expected a value");
    if (c == '"') {
        char *tmp;
        if (sp_string(s, &tmp)) return -1;
        free(tmp);
        return 0;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        s->i++;
        if (sp_peek(s) == close) {
            s->i++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                char *k;
                if (sp_string(s, &k)) return -1;
                free(k);
                if (sp_expect(s, ':', "after a key")) return -1;
            }
            if (sp_skip(s, depth + 1)) return -1;
            int d = sp_peek(s);
            if (d == ',') {
                s->i++;
                continue;
            }
            if (d == close) {
                s->i++;
                return 0;
            }
            if (d < 0) return sp_err(s, "header JSON truncated inside %s", c == '{' ? "an object" : "an array");
            return sp_err(s, "header JSON: expected ',' or '%c' at byte %zu", close, s->i);
        }
    }
    if (c == 't') return sp_literal(s, "true");
    if (c == 'f') return sp_literal(s, "false");
    if (c == 'n') return sp_literal(s, "null");
    if (c == '-' || (c >= '0' && c <= '9')) {
        size_t start = s->i, digits = 0;
        if (s->p[s->i] == '-') s->i++;
        while (s->i < s->n) {
            unsigned char ch = s->p[s->i];
            if (ch >= '0' && ch <= '9') digits++;
            else if (!(ch == '.' || ch == 'e' || ch == 'E' || ch == '+' || ch == '-')) break;
            s->i++;
        }
        if (!digits) return sp_err(s, "header JSON: bad number at byte %zu", start);
        return 0;
    }
    return sp_err(s, "header JSON: unexpected character at byte %zu", s->i);
}

static int sp_meta(st_parser *s) {
    if (s->seen_meta) return sp_err(s, "duplicate \"%s\" entry", ST_META_KEY);
    s->seen_meta = 1;
    if (sp_peek(s) != '{') return sp_err(s, "\"%s\" is not an object", ST_META_KEY);
    s->i++;
    if (sp_peek(s) == '}') {
        s->i++;
        return 0;
    }
    for (;;) {
        char *k = NULL, *v = NULL;
        if (sp_string(s, &k)) return -1;
        if (sp_expect(s, ':', "after a metadata key") || sp_peek(s) != '"') {
            if (!s->failed) sp_err(s, "metadata value of '%s' is not a string", k);
            free(k);
            return -1;
        }
        if (sp_string(s, &v)) {
            free(k);
            return -1;
        }
        if (s->n_meta == s->cap_meta) {
            int nc = s->cap_meta ? s->cap_meta * 2 : 8;
            char **nk = realloc(s->mkeys, (size_t)nc * sizeof *nk);
            if (nk) s->mkeys = nk;
            char **nv = nk ? realloc(s->mvals, (size_t)nc * sizeof *nv) : NULL;
            if (nv) s->mvals = nv;
            if (!nk || !nv) {
                free(k);
                free(v);
                return sp_err(s, "out of memory parsing the header");
            }
            s->cap_meta = nc;
        }
        s->mkeys[s->n_meta] = k;
        s->mvals[s->n_meta] = v;
        s->n_meta++;
        int c = sp_peek(s);
        if (c == ',') {
            s->i++;
            continue;
        }
        if (c == '}') {
            s->i++;
            return 0;
        }
        if (c < 0) return sp_err(s, "header JSON truncated inside \"%s\"", ST_META_KEY);
        return sp_err(s, "header JSON: expected ',' or '}' at byte %zu", s->i);
    }
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} for tensor `name`
 * (ownership of name passes to the parser). */
static int sp_tensor(st_parser *s, char *name) {
    if (s->n_info == s->cap_info) {
        int nc = s->cap_info ? s->cap_info * 2 : 16;
        if (nc < 0 || (size_t)nc > SIZE_MAX / sizeof(st_info)) {
            free(name);
            return sp_err(s, "too many tensors");
        }
        st_info *ni = realloc(s->info, (size_t)nc * sizeof *ni);
        if (!ni) {
            free(name);
            return sp_err(s, "out of memory parsing the header");
        }
        s->info = ni;
        s->cap_info = nc;
    }
    st_info *t = &s->info[s->n_info++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dt = -1;
    int c = sp_peek(s);
    if (c != '{') {
        if (c < 0) return sp_err(s, "header JSON truncated at tensor '%s'", name);
        return sp_err(s, "tensor '%s': entry is not an object", name);
    }
    s->i++;
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (sp_peek(s) == '}') {
        s->i++;
    } else {
        for (;;) {
            char *k;
            if (sp_string(s, &k)) return -1;
            if (sp_expect(s, ':', "after a key")) {
                free(k);
                return -1;
            }
            int r = 0;
            char what[96];
            if (strcmp(k, "dtype") == 0) {
                char *v = NULL;
                if (have_dtype++) r = sp_err(s, "tensor '%s': duplicate \"dtype\"", name);
                else if (sp_peek(s) != '"') r = sp_err(s, "tensor '%s': dtype is not a string", name);
                else if (sp_string(s, &v)) r = -1;
                else if ((t->dt = st_dtype_find(v)) < 0)
                    r = sp_err(s, "tensor '%s': unsupported dtype '%.32s'", name, v);
                free(v);
            } else if (strcmp(k, "shape") == 0) {
                uint64_t dims[CX_MAX_DIMS];
                int nd = 0;
                snprintf(what, sizeof what, "tensor '%.64s': shape", name);
                if (have_shape++) r = sp_err(s, "tensor '%s': duplicate \"shape\"", name);
                else if (sp_uint_array(s, dims, CX_MAX_DIMS, &nd, what)) r = -1;
                else {
                    t->ndim = nd;
                    for (int d = 0; d < nd && !r; d++) {
                        if (dims[d] > (uint64_t)INT_MAX)
                            r = sp_err(s, "tensor '%s': dimension %" PRIu64 " is too large", name,
                                       dims[d]);
                        else t->shape[d] = (int)dims[d];
                    }
                }
            } else if (strcmp(k, "data_offsets") == 0) {
                uint64_t off[2];
                int no = 0;
                snprintf(what, sizeof what, "tensor '%.64s': data_offsets", name);
                if (have_off++) r = sp_err(s, "tensor '%s': duplicate \"data_offsets\"", name);
                else if (sp_uint_array(s, off, 2, &no, what)) r = -1;
                else if (no != 2) r = sp_err(s, "tensor '%s': data_offsets needs 2 values", name);
                else {
                    t->begin = off[0];
                    t->end = off[1];
                }
            } else {
                r = sp_skip(s, 2); /* unknown field: ignored */
            }
            free(k);
            if (r) return -1;
            c = sp_peek(s);
            if (c == ',') {
                s->i++;
                continue;
            }
            if (c == '}') {
                s->i++;
                break;
            }
            if (c < 0) return sp_err(s, "header JSON truncated at tensor '%s'", name);
            return sp_err(s, "header JSON: expected ',' or '}' at byte %zu", s->i);
        }
    }
    if (!have_dtype) return sp_err(s, "tensor '%s': missing \"dtype\"", name);
    if (!have_shape) return sp_err(s, "tensor '%s': missing \"shape\"", name);
    if (!have_off) return sp_err(s, "tensor '%s': missing \"data_offsets\"", name);
    return 0;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns the first duplicate in names[0..n) or NULL. Uses a sorted copy. */
static const char *first_duplicate(char *const *names, int n, int *oom) {
    *oom = 0;
    if (n < 2) return NULL;
    char **c = malloc((size_t)n * sizeof *c);
    if (!c) {
        *oom = 1;
        return NULL;
    }
    memcpy(c, names, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(c[i - 1], c[i]) == 0) dup = c[i];
    free(c);
    return dup;
}

static int sp_header(st_parser *s) {
    int c = sp_peek(s);
    if (c < 0) return sp_err(s, "header JSON is empty");
    if (c != '{') return sp_err(s, "header is not a JSON object (starts with '%c')",
                                c >= 0x20 && c < 0x7F ? c : '?');
    s->i++;
    if (sp_peek(s) == '}') {
        s->i++;
    } else {
        for (;;) {
            char *k;
            if (sp_string(s, &k)) return -1;
            if (sp_expect(s, ':', "after a key")) {
                free(k);
                return -1;
            }
            if (strcmp(k, ST_META_KEY) == 0) {
                free(k);
                if (sp_meta(s)) return -1;
            } else if (sp_tensor(s, k)) {
                return -1;
            }
            c = sp_peek(s);
            if (c == ',') {
                s->i++;
                continue;
            }
            if (c == '}') {
                s->i++;
                break;
            }
            if (c < 0) return sp_err(s, "header JSON truncated (object not closed)");
            return sp_err(s, "header JSON: expected ',' or '}' at byte %zu", s->i);
        }
    }
    if (sp_peek(s) >= 0) return sp_err(s, "header JSON: trailing characters at byte %zu", s->i);
    /* names must be unique */
    int oom;
    char **names = malloc(((size_t)s->n_info + 1) * sizeof *names);
    if (!names) return sp_err(s, "out of memory parsing the header");
    for (int i = 0; i < s->n_info; i++) names[i] = s->info[i].name;
    const char *dup = first_duplicate(names, s->n_info, &oom);
    if (dup) {
        sp_err(s, "duplicate tensor name '%s'", dup);
        free(names);
        return -1;
    }
    free(names);
    if (oom) return sp_err(s, "out of memory parsing the header");
    dup = first_duplicate(s->mkeys, s->n_meta, &oom);
    if (dup) return sp_err(s, "duplicate metadata key '%s'", dup);
    if (oom) return sp_err(s, "out of memory parsing the header");
    return 0;
}

/* ------------------------------------------------------------ validation */

static void shape_text(const int *shape, int ndim, char *buf, size_t n) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, d ? ", %d" : "%d", shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

typedef struct {
    uint64_t begin, end;
    int idx;
} st_region;
static int cmp_region(const void *a, const void *b) {
    const st_region *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static int st_validate(st_parser *s, uint64_t data_len) {
    for (int i = 0; i < s->n_info; i++) {
        st_info *t = &s->info[i];
        const st_dtype *dt = &st_dtypes[t->dt];
        /* same rule as the tensor constructor (which would abort on it) */
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            uint64_t dim = (uint64_t)t->shape[d];
            if (dim && numel > (uint64_t)INT64_MAX / 16 / dim)
                return sp_err(s, "tensor '%s': shape overflows (too many elements)", t->name);
            numel *= dim;
        }
        if (numel > UINT64_MAX / dt->size)
            return sp_err(s, "tensor '%s': byte size overflows", t->name);
        uint64_t bytes = numel * dt->size;
        if (t->begin > t->end)
            return sp_err(s, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed",
                          t->name, t->begin, t->end);
        if (t->end > data_len)
            return sp_err(s,
                          "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                          "] exceed the data buffer (%" PRIu64 " bytes; truncated file?)",
                          t->name, t->begin, t->end, data_len);
        if (t->end - t->begin != bytes) {
            char sh[128];
            shape_text(t->shape, t->ndim, sh, sizeof sh);
            return sp_err(s,
                          "tensor '%s': data_offsets span %" PRIu64 " bytes but %s %s needs %" PRIu64,
                          t->name, t->end - t->begin, dt->name, sh, bytes);
        }
    }
    /* the regions must tile [0, data_len) exactly */
    st_region *ord = malloc(((size_t)s->n_info + 1) * sizeof *ord);
    if (!ord) return sp_err(s, "out of memory");
    for (int i = 0; i < s->n_info; i++) {
        ord[i].begin = s->info[i].begin;
        ord[i].end = s->info[i].end;
        ord[i].idx = i;
    }
    qsort(ord, (size_t)s->n_info, sizeof *ord, cmp_region);
    uint64_t pos = 0;
    for (int k = 0; k < s->n_info; k++) {
        const st_info *t = &s->info[ord[k].idx];
        if (t->begin != pos) {
            const char *nm = t->name;
            free(ord);
            if (t->begin < pos)
                return sp_err(s, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                                 "] overlap another tensor (which ends at %" PRIu64 ")",
                              nm, t->begin, t->end, pos);
            return sp_err(s, "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                             "] leave a gap after byte %" PRIu64,
                          nm, t->begin, t->end, pos);
        }
        pos = t->end;
    }
    free(ord);
    if (pos != data_len)
        return sp_err(s, "%" PRIu64 " bytes at the end of the data buffer belong to no tensor",
                      data_len - pos);
    return 0;
}

/* ------------------------------------------------------------ data */

typedef struct {
    const unsigned char *buf; /* data buffer in memory, or */
    FILE *fp;                 /* the file, data starting at `base` */
    uint64_t base;
} st_src;

static int src_read(const st_src *src, uint64_t off, void *dst, size_t len) {
    if (len == 0) return 0;
    if (src->buf) {
        memcpy(dst, src->buf + off, len);
        return 0;
    }
    uint64_t pos = src->base + off;
    if (pos > (uint64_t)INT64_MAX || fseeko(src->fp, (off_t)pos, SEEK_SET) != 0) return -1;
    return fread(dst, 1, len, src->fp) == len ? 0 : -1;
}

/* Convert n elements of dtype dt from little-endian bytes `in` into `out`. */
static void convert(const st_dtype *dt, const unsigned char *in, size_t n, void *out, size_t at) {
    if (dt->target == CX_F32) {
        float *o = (float *)out + at;
        if (strcmp(dt->name, "F32") == 0) {
            for (size_t i = 0; i < n; i++) {
                uint32_t b = rd32(in + 4 * i);
                memcpy(&o[i], &b, 4);
            }
        } else if (strcmp(dt->name, "F64") == 0) {
            for (size_t i = 0; i < n; i++) {
                uint64_t b = rd64(in + 8 * i);
                double v;
                memcpy(&v, &b, 8);
                o[i] = (float)v;
            }
        } else if (strcmp(dt->name, "F16") == 0) {
            for (size_t i = 0; i < n; i++) o[i] = f16_to_f32(rd16(in + 2 * i));
        } else { /* BF16 */
            for (size_t i = 0; i < n; i++) {
                uint32_t b = (uint32_t)rd16(in + 2 * i) << 16;
                memcpy(&o[i], &b, 4);
            }
        }
    } else if (dt->target == CX_I32) {
        int32_t *o = (int32_t *)out + at;
        for (size_t i = 0; i < n; i++) {
            uint32_t b = rd32(in + 4 * i);
            memcpy(&o[i], &b, 4);
        }
    } else {
        int64_t *o = (int64_t *)out + at;
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = in + dt->size * i;
            int64_t v;
            switch (dt->size) {
            case 1: v = dt->kind == K_INT ? (int64_t)(int8_t)p[0] : (int64_t)p[0]; break;
            case 2: v = dt->kind == K_INT ? (int64_t)(int16_t)rd16(p) : (int64_t)rd16(p); break;
            case 4: v = dt->kind == K_INT ? (int64_t)(int32_t)rd32(p) : (int64_t)rd32(p); break;
            default: {
                uint64_t b = rd64(p);
                memcpy(&v, &b, 8);
            }
            }
            if (dt->kind == K_BOOL) v = v != 0;
            o[i] = v;
        }
    }
}

static int load_tensor(st_parser *s, const st_src *src, const st_info *t, cx_tensor *out) {
    const st_dtype *dt = &st_dtypes[t->dt];
    size_t numel = (size_t)out->numel;
    if (numel == 0) return 0;
    int direct = host_is_le() && dt->size == cx_dtype_size(dt->target);
    if (direct) {
        if (src_read(src, t->begin, out->data, numel * dt->size))
            return sp_err(s, "tensor '%s': read error (file changed while reading?)", t->name);
        return 0;
    }
    enum { CHUNK = 1 << 16 };
    unsigned char *tmp = malloc((size_t)CHUNK * dt->size);
    if (!tmp) return sp_err(s, "out of memory");
    for (size_t at = 0; at < numel; at += CHUNK) {
        size_t m = numel - at < CHUNK ? numel - at : CHUNK;
        if (src_read(src, t->begin + (uint64_t)at * dt->size, tmp, m * dt->size)) {
            free(tmp);
            return sp_err(s, "tensor '%s': read error (file changed while reading?)", t->name);
        }
        convert(dt, tmp, m, out->data, at);
    }
    free(tmp);
    return 0;
}

/* Parse header bytes + load data; fills *out on success. Frees the parser. */
static cx_status st_finish(st_parser *s, uint64_t data_len, const st_src *src, cx_st_file **out) {
    cx_st_file *f = NULL;
    if (sp_header(s) || st_validate(s, data_len)) goto fail;
    f = calloc(1, sizeof *f);
    if (!f) {
        sp_err(s, "out of memory");
        goto fail;
    }
    f->entries = calloc((size_t)s->n_info + 1, sizeof *f->entries);
    if (!f->entries) {
        sp_err(s, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_info; i++) {
        const st_info *t = &s->info[i];
        {   /* out of memory is fatal in the tensor constructor: try first, to name the file */
            size_t bytes = cx_dtype_size(st_dtypes[t->dt].target);
            for (int d = 0; d < t->ndim; d++) bytes *= (size_t)t->shape[d];
            void *probe = malloc(bytes + 64);
            if (!probe) {
                sp_err(s, "out of memory for tensor '%s' (%zu bytes)", t->name, bytes);
                goto fail;
            }
            free(probe);
        }
        cx_tensor *ct = cx_tensor_new(st_dtypes[t->dt].target, t->shape, t->ndim);
        f->entries[i].tensor = ct;
        f->entries[i].name = t->name;
        s->info[i].name = NULL; /* ownership moved */
        f->n = i + 1;
        cx_tensor_set_name(ct, f->entries[i].name);
        if (load_tensor(s, src, t, ct)) goto fail;
    }
    f->n_meta = s->n_meta;
    f->meta_keys = s->mkeys;
    f->meta_values = s->mvals;
    s->mkeys = s->mvals = NULL;
    s->n_meta = 0;
    sp_free(s);
    *out = f;
    return CX_OK;
fail:
    sp_free(s);
    cx_st_free(f);
    return CX_ERR_FORMAT;
}

static cx_status st_parse_labeled(const char *label, const unsigned char *buf, size_t n,
                                  cx_st_file **out) {
    if (n < 8)
        return cx_set_error(CX_ERR_FORMAT, "%s: too small for a safetensors file (%zu bytes)", label, n);
    uint64_t hl = rd64(buf);
    if (hl > ST_MAX_HEADER)
        return cx_set_error(CX_ERR_FORMAT, "%s: header size %" PRIu64 " exceeds the %llu byte limit",
                            label, hl, ST_MAX_HEADER);
    if (hl > (uint64_t)(n - 8))
        return cx_set_error(CX_ERR_FORMAT,
                            "%s: header size %" PRIu64 " is larger than the rest of the file (%zu bytes)",
                            label, hl, n - 8);
    st_parser s;
    memset(&s, 0, sizeof s);
    s.label = label;
    s.p = buf + 8;
    s.n = (size_t)hl;
    st_src src = {buf + 8 + hl, NULL, 0};
    return st_finish(&s, (uint64_t)(n - 8 - (size_t)hl), &src, out);
}

cx_status cx_st_parse(const void *buf, size_t n, cx_st_file **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_st_parse: out is NULL");
    *out = NULL;
    if (!buf && n) return cx_set_error(CX_ERR_ARG, "cx_st_parse: NULL buffer");
    return st_parse_labeled("<memory>", buf, n, out);
}

cx_status cx_st_load(const char *path, cx_st_file **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_st_load: out is NULL");
    *out = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_st_load: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return cx_set_error(CX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return cx_set_error(CX_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char h8[8];
    if (size < 8 || fread(h8, 1, 8, fp) != 8) {
        fclose(fp);
        return cx_set_error(CX_ERR_FORMAT, "%s: too small for a safetensors file (%" PRIu64 " bytes)",
                            path, size);
    }
    uint64_t hl = rd64(h8);
    if (hl > ST_MAX_HEADER) {
        fclose(fp);
        return cx_set_error(CX_ERR_FORMAT, "%s: header size %" PRIu64 " exceeds the %llu byte limit",
                            path, hl, ST_MAX_HEADER);
    }
    if (hl > size - 8) {
        fclose(fp);
        return cx_set_error(CX_ERR_FORMAT,
                            "%s: header size %" PRIu64 " is larger than the rest of the file (%" PRIu64
                            " bytes)",
                            path, hl, size - 8);
    }
    unsigned char *hdr = malloc((size_t)hl + 1);
    if (!hdr) {
        fclose(fp);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory for the header", path);
    }
    if (fread(hdr, 1, (size_t)hl, fp) != (size_t)hl) {
        free(hdr);
        fclose(fp);
        return cx_set_error(CX_ERR_IO, "%s: read error in the header", path);
    }
    st_parser s;
    memset(&s, 0, sizeof s);
    s.label = path;
    s.p = hdr;
    s.n = (size_t)hl;
    st_src src = {NULL, fp, 8 + hl};
    cx_status st = st_finish(&s, size - 8 - hl, &src, out);
    free(hdr);
    fclose(fp);
    return st;
}

void cx_st_free(cx_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        cx_tensor_free(f->entries[i].tensor);
        free(f->entries[i].name);
    }
    free(f->entries);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f);
}

cx_tensor *cx_st_get(const cx_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return f->entries[i].tensor;
    return NULL;
}

const char *cx_st_meta(const cx_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------ writer */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"') sb_put(b, "\\\"", 2);
        else if (*p == '\\') sb_put(b, "\\\\", 2);
        else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

typedef struct {
    size_t size;
    const char *name;
    int idx;
} st_order;
static int cmp_save_order(const void *a, const void *b) {
    const st_order *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    return strcmp(x->name, y->name);
}

cx_status cx_st_save(const char *path, cx_tensor *const *tensors, const char *const *names, int n,
                     const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    if (!path) return cx_set_error(CX_ERR_ARG, "cx_st_save: NULL path");
    if (n < 0 || n_meta < 0 || (n > 0 && (!tensors || !names)) ||
        (n_meta > 0 && (!meta_keys || !meta_values)))
        return cx_set_error(CX_ERR_ARG, "%s: cx_st_save: bad tensor or metadata arrays", path);
    for (int i = 0; i < n; i++) {
        const cx_tensor *t = tensors[i];
        if (!names[i]) return cx_set_error(CX_ERR_ARG, "%s: tensor %d has no name", path, i);
        if (!t) return cx_set_error(CX_ERR_ARG, "%s: tensor '%s' is NULL", path, names[i]);
        if (!st_dtype_of(t->dtype))
            return cx_set_error(CX_ERR_ARG, "%s: tensor '%s' has an unsupported dtype", path, names[i]);
        if (t->numel > 0 && !t->data)
            return cx_set_error(CX_ERR_ARG, "%s: tensor '%s' has no data", path, names[i]);
        if (strcmp(names[i], ST_META_KEY) == 0)
            return cx_set_error(CX_ERR_ARG, "%s: '%s' is reserved and cannot name a tensor", path,
                                ST_META_KEY);
    }
    for (int i = 0; i < n_meta; i++)
        if (!meta_keys[i] || !meta_values[i])
            return cx_set_error(CX_ERR_ARG, "%s: metadata entry %d is NULL", path, i);
    int oom = 0;
    const char *dup = first_duplicate((char *const *)names, n, &oom);
    if (!oom && dup) return cx_set_error(CX_ERR_ARG, "%s: duplicate tensor name '%s'", path, dup);
    if (!oom) dup = first_duplicate((char *const *)meta_keys, n_meta, &oom);
    if (!oom && dup) return cx_set_error(CX_ERR_ARG, "%s: duplicate metadata key '%s'", path, dup);
    if (oom) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);

    st_order *so = malloc(((size_t)n + 1) * sizeof *so);
    int *ord = malloc(((size_t)n + 1) * sizeof *ord);
    if (!so || !ord) {
        free(so);
        free(ord);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        so[i].size = cx_dtype_size(tensors[i]->dtype);
        so[i].name = names[i];
        so[i].idx = i;
    }
    qsort(so, (size_t)n, sizeof *so, cmp_save_order);
    for (int i = 0; i < n; i++) ord[i] = so[i].idx;
    free(so);

    sbuf b = {NULL, 0, 0, 0};
    sb_str(&b, "{");
    int first = 1;
    if (n_meta > 0) {
        sb_str(&b, "\"" ST_META_KEY "\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(&b, ",");
            sb_json_string(&b, meta_keys[i]);
            sb_str(&b, ":");
            sb_json_string(&b, meta_values[i]);
        }
        sb_str(&b, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const cx_tensor *t = tensors[ord[k]];
        char num[64];
        if (!first) sb_str(&b, ",");
        first = 0;
        sb_json_string(&b, names[ord[k]]);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, st_dtype_of(t->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%d" : "%d", t->shape[d]);
            sb_str(&b, num);
        }
        uint64_t bytes = (uint64_t)t->numel * cx_dtype_size(t->dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        sb_str(&b, num);
        off += bytes;
    }
    sb_str(&b, "}");
    while (!b.oom && (8 + b.n) % 8 != 0) sb_str(&b, " ");
    if (b.oom) {
        free(b.p);
        free(ord);
        return cx_set_error(CX_ERR_NOMEM, "%s: out of memory building the header", path);
    }

    cx_atomic_file *af;
    cx_status st = cx_atomic_open(&af, path);
    if (st != CX_OK) {
        free(b.p);
        free(ord);
        return st;
    }
    FILE *fp = cx_atomic_stream(af);
    unsigned char h8[8];
    wr64(h8, (uint64_t)b.n);
    int ok = fwrite(h8, 1, 8, fp) == 8 && fwrite(b.p, 1, b.n, fp) == b.n;
    free(b.p);
    int le = host_is_le();
    for (int k = 0; k < n && ok; k++) {
        const cx_tensor *t = tensors[ord[k]];
        size_t es = cx_dtype_size(t->dtype), cnt = (size_t)t->numel;
        if (cnt == 0) continue;
        if (le) {
            ok = fwrite(t->data, es, cnt, fp) == cnt;
        } else {
            const unsigned char *src = t->data;
            unsigned char tmp[8];
            for (size_t i = 0; i < cnt && ok; i++) {
                for (size_t j = 0; j < es; j++) tmp[j] = src[i * es + es - 1 - j];
                ok = fwrite(tmp, 1, es, fp) == es;
            }
        }
    }
    free(ord);
    if (!ok) {
        int e = errno;
        cx_atomic_abort(af);
        return cx_set_error(CX_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return cx_atomic_commit(af);
}

/* ------------------------------------------------------------ parameters */

cx_status cx_params_save(const char *path, const cx_params *p) {
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: cx_params_save: NULL parameter list", path ? path : "?");
    const char **names = malloc(((size_t)p->n + 1) * sizeof *names);
    if (!names) return cx_set_error(CX_ERR_NOMEM, "%s: out of memory", path ? path : "?");
    for (int i = 0; i < p->n; i++) {
        if (!p->t[i] || !p->t[i]->name) {
            free(names);
            return cx_set_error(CX_ERR_ARG, "%s: parameter %d has no name", path ? path : "?", i);
        }
        names[i] = p->t[i]->name;
    }
    static const char *const mk[] = {"format"}, *const mv[] = {"pt"};
    cx_status st = cx_st_save(path, p->t, names, p->n, mk, mv, 1);
    free(names);
    return st;
}

cx_status cx_params_load(const char *path, const cx_params *p, bool strict) {
    if (!p) return cx_set_error(CX_ERR_ARG, "%s: cx_params_load: NULL parameter list", path ? path : "?");
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st != CX_OK) return st;
    /* check everything first, then copy */
    for (int i = 0; i < p->n; i++) {
        const cx_tensor *t = p->t[i];
        if (!t || !t->name) {
            cx_st_free(f);
            return cx_set_error(CX_ERR_ARG, "%s: parameter %d has no name", path, i);
        }
        const cx_tensor *ft = cx_st_get(f, t->name);
        if (!ft) {
            if (!strict) continue;
            cx_st_free(f);
            return cx_set_error(CX_ERR_NOTFOUND, "%s: tensor '%s' not found in the file", path, t->name);
        }
        int same = ft->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = ft->shape[d] == t->shape[d];
        if (!same) {
            char a[160], b[160];
            shape_text(ft->shape, ft->ndim, a, sizeof a);
            shape_text(t->shape, t->ndim, b, sizeof b);
            st = cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' has shape %s, model expects %s", path,
                              t->name, a, b);
            cx_st_free(f);
            return st;
        }
        if (ft->dtype != t->dtype) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: tensor '%s' has dtype %s, model expects %s", path,
                              t->name, st_dtype_of(ft->dtype), st_dtype_of(t->dtype));
            cx_st_free(f);
            return st;
        }
    }
    if (strict) {
        for (int i = 0; i < f->n; i++) {
            if (!cx_params_find(p, f->entries[i].name)) {
                st = cx_set_error(CX_ERR_FORMAT, "%s: unexpected tensor '%s' (not in the model)", path,
                                  f->entries[i].name);
                cx_st_free(f);
                return st;
            }
        }
    }
    for (int i = 0; i < p->n; i++) {
        cx_tensor *t = p->t[i];
        const cx_tensor *ft = cx_st_get(f, t->name);
        if (ft && t->numel > 0) memcpy(t->data, ft->data, (size_t)t->numel * cx_dtype_size(t->dtype));
    }
    cx_st_free(f);
    return CX_OK;
}

bool cx_st_meta_int(const cx_st_file *f, const char *key, long lo, long hi, int *out) {
    const char *s = cx_st_meta(f, key);
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}
