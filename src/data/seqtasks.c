/* The NTM paper's algorithmic tasks (cortex/seqtasks.h): copy, repeat copy,
 * associative recall; bits-wrong metric and the masked BCE loss. */
#include <math.h>
#include <string.h>

#include "cortex/seqtasks.h"
#include "cortex/core.h"

cx_seqtask_opts cx_seqtask_defaults(cx_seqtask_kind kind) {
    cx_seqtask_opts o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.bits = 8;
    o.min_len = 1;
    o.max_len = kind == CX_SEQTASK_REPEAT ? 10 : 20;
    o.min_rep = 1;
    o.max_rep = 10;
    o.min_items = 2;
    o.max_items = 6;
    o.item_len = 3;
    if (kind == CX_SEQTASK_RECALL) o.bits = 6;
    return o;
}

const char *cx_seqtask_name(cx_seqtask_kind kind) {
    switch (kind) {
    case CX_SEQTASK_COPY: return "copy";
    case CX_SEQTASK_REPEAT: return "repeat";
    case CX_SEQTASK_RECALL: return "recall";
    }
    return "?";
}

bool cx_seqtask_parse(const char *name, cx_seqtask_kind *out) {
    static const char *const names[3] = {"copy", "repeat", "recall"};
    if (!name) return false;
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            if (out) *out = (cx_seqtask_kind)i;
            return true;
        }
    return false;
}

static void check_opts(const char *fn, const cx_seqtask_opts *o) {
    if (!o) cx_fatal("%s: opts must not be NULL", fn);
    if (o->kind != CX_SEQTASK_COPY && o->kind != CX_SEQTASK_REPEAT && o->kind != CX_SEQTASK_RECALL)
        cx_fatal("%s: unknown task kind %d", fn, (int)o->kind);
    if (o->bits < 1) cx_fatal("%s: bits = %d, must be >= 1", fn, o->bits);
}

int cx_seqtask_input_size(const cx_seqtask_opts *o) {
    check_opts("seqtask_input_size", o);
    return o->kind == CX_SEQTASK_COPY ? o->bits + 1 : o->bits + 2;
}

int cx_seqtask_output_size(const cx_seqtask_opts *o) {
    check_opts("seqtask_output_size", o);
    return o->kind == CX_SEQTASK_REPEAT ? o->bits + 1 : o->bits;
}

static int draw(cx_rng *rng, int lo, int hi) { return lo + (int)cx_rng_below(rng, (uint32_t)(hi - lo + 1)); }

static void check_range(const char *fn, const char *what, int lo, int hi, int least) {
    if (lo < least || hi < lo)
        cx_fatal("%s: %s range [%d, %d] is invalid (need %d <= min <= max)", fn, what, lo, hi, least);
}

static cx_seqtask_batch make(const char *fn, cx_rng *rng, int B, const cx_seqtask_opts *o, int len, int reps) {
    check_opts(fn, o);
    if (!rng) cx_fatal("%s: rng must not be NULL", fn);
    if (B < 1) cx_fatal("%s: batch = %d, must be >= 1", fn, B);
    const int W = o->bits, in = cx_seqtask_input_size(o), out = cx_seqtask_output_size(o);
    long T;
    switch (o->kind) {
    case CX_SEQTASK_COPY:
        if (len < 1) cx_fatal("%s: length %d must be >= 1", fn, len);
        T = 2L * len + 1;
        break;
    case CX_SEQTASK_REPEAT:
        if (len < 1) cx_fatal("%s: length %d must be >= 1", fn, len);
        if (reps < 1) cx_fatal("%s: repeat count %d must be >= 1", fn, reps);
        T = (long)len + 1 + (long)reps * len + 1;
        break;
    default:
        if (len < 2) cx_fatal("%s: item count %d must be >= 2", fn, len);
        if (o->item_len < 1) cx_fatal("%s: item_len = %d, must be >= 1", fn, o->item_len);
        T = (long)len * (o->item_len + 1) + 2L * o->item_len + 2;
        break;
    }
    if ((double)T * B * (in > out ? in : out) > (double)(1 << 28))
        cx_fatal("%s: a batch of %d sequences of %ld steps x %d channels is too large", fn, B, T, in);
    cx_seqtask_batch b;
    b.T = (int)T;
    b.B = B;
    b.len = len;
    b.reps = o->kind == CX_SEQTASK_REPEAT ? reps : 0;
    b.input = cx_zeros(CX_SHAPE(b.T, B, in));
    b.target = cx_zeros(CX_SHAPE(b.T, B, out));
    b.mask = cx_zeros(CX_SHAPE(b.T, B));
    float *x = CX_F(b.input), *y = CX_F(b.target), *m = CX_F(b.mask);
#define X(t, bb, c) x[((size_t)(t) * B + (bb)) * in + (c)]
#define Y(t, bb, c) y[((size_t)(t) * B + (bb)) * out + (c)]
#define M(t, bb) m[(size_t)(t) * B + (bb)]
    for (int bb = 0; bb < B; bb++) {
        if (o->kind == CX_SEQTASK_COPY || o->kind == CX_SEQTASK_REPEAT) {
            const int L = len;
            for (int t = 0; t < L; t++)
                for (int c = 0; c < W; c++) X(t, bb, c) = (float)(cx_rng_u32(rng) >> 31);
            X(L, bb, W) = 1.0f;
            if (o->kind == CX_SEQTASK_COPY) {
                for (int t = 0; t < L; t++) {
                    for (int c = 0; c < W; c++) Y(L + 1 + t, bb, c) = X(t, bb, c);
                    M(L + 1 + t, bb) = 1.0f;
                }
            } else {
                const double mu = 0.5 * (o->min_rep + o->max_rep);
                const double span = (double)(o->max_rep - o->min_rep + 1);
                const double sigma = o->max_rep > o->min_rep ? sqrt((span * span - 1.0) / 12.0) : 1.0;
                X(L, bb, W + 1) = (float)((reps - mu) / sigma);
                for (int k = 0; k < reps * L; k++) {
                    for (int c = 0; c < W; c++) Y(L + 1 + k, bb, c) = X(k % L, bb, c);
                    M(L + 1 + k, bb) = 1.0f;
                }
                Y(b.T - 1, bb, W) = 1.0f;
                M(b.T - 1, bb) = 1.0f;
            }
        } else {
            const int k = len, il = o->item_len;
            int t = 0;
            for (int i = 0; i < k; i++) {
                X(t, bb, W) = 1.0f;
                t++;
                for (int j = 0; j < il; j++, t++)
                    for (int c = 0; c < W; c++) X(t, bb, c) = (float)(cx_rng_u32(rng) >> 31);
            }
            const int q = (int)cx_rng_below(rng, (uint32_t)(k - 1));
            X(t, bb, W + 1) = 1.0f;
            t++;
            const int qstart = q * (il + 1) + 1, nstart = (q + 1) * (il + 1) + 1;
            for (int j = 0; j < il; j++, t++)
                for (int c = 0; c < W; c++) X(t, bb, c) = X(qstart + j, bb, c);
            X(t, bb, W + 1) = 1.0f;
            t++;
            for (int j = 0; j < il; j++, t++) {
                for (int c = 0; c < W; c++) Y(t, bb, c) = X(nstart + j, bb, c);
                M(t, bb) = 1.0f;
            }
        }
    }
#undef X
#undef Y
#undef M
    return b;
}

cx_seqtask_batch cx_seqtask_sample(cx_rng *rng, int B, const cx_seqtask_opts *o) {
    const char *fn = "seqtask_sample";
    check_opts(fn, o);
    if (!rng) cx_fatal("%s: rng must not be NULL", fn);
    int len, reps = 0;
    if (o->kind == CX_SEQTASK_RECALL) {
        check_range(fn, "items", o->min_items, o->max_items, 2);
        len = draw(rng, o->min_items, o->max_items);
    } else {
        check_range(fn, "length", o->min_len, o->max_len, 1);
        len = draw(rng, o->min_len, o->max_len);
        if (o->kind == CX_SEQTASK_REPEAT) {
            check_range(fn, "repeat", o->min_rep, o->max_rep, 1);
            reps = draw(rng, o->min_rep, o->max_rep);
        }
    }
    return make(fn, rng, B, o, len, reps);
}

cx_seqtask_batch cx_seqtask_sample_fixed(cx_rng *rng, int B, const cx_seqtask_opts *o, int len, int reps) {
    const char *fn = "seqtask_sample_fixed";
    check_opts(fn, o);
    if (o->kind == CX_SEQTASK_REPEAT) check_range(fn, "repeat", o->min_rep, o->max_rep, 1);
    return make(fn, rng, B, o, len, reps);
}

static void check_lmt(const char *fn, const cx_tensor *logits, const cx_tensor *target, const cx_tensor *mask) {
    char s1[64], s2[64], s3[64];
    if (!logits || !target || !mask) cx_fatal("%s: logits, target and mask must not be NULL", fn);
    if (logits->dtype != CX_F32 || target->dtype != CX_F32 || mask->dtype != CX_F32)
        cx_fatal("%s: logits, target and mask must be F32", fn);
    if (logits->ndim != 3 || !cx_same_shape(logits, target) || mask->ndim != 2 ||
        mask->shape[0] != logits->shape[0] || mask->shape[1] != logits->shape[1])
        cx_fatal("%s: logits %s and target %s must be [T, B, out] and mask %s [T, B]", fn,
                 cx_shape_str(logits, s1, sizeof s1), cx_shape_str(target, s2, sizeof s2),
                 cx_shape_str(mask, s3, sizeof s3));
}

long cx_seqtask_bits_wrong(const cx_tensor *logits, const cx_tensor *target, const cx_tensor *mask) {
    check_lmt("seqtask_bits_wrong", logits, target, mask);
    const long TB = (long)mask->numel, C = logits->shape[2];
    const float *p = CX_F(logits), *y = CX_F(target), *m = CX_F(mask);
    long wrong = 0;
    for (long i = 0; i < TB; i++) {
        if (m[i] == 0.0f) continue;
        for (long c = 0; c < C; c++) wrong += (p[i * C + c] > 0.0f) != (y[i * C + c] > 0.5f);
    }
    return wrong;
}

cx_tensor *cx_seqtask_loss(cx_tensor *logits, const cx_tensor *target, const cx_tensor *mask) {
    check_lmt("seqtask_loss", logits, target, mask);
    const int T = logits->shape[0], B = logits->shape[1], C = logits->shape[2];
    double n = 0;
    for (long i = 0; i < (long)mask->numel; i++) n += CX_F(mask)[i] != 0.0f;
    /* the targets and the mask are data: step copies without gradient */
    cx_tensor *y = cx_from_data(CX_F(target), target->shape, target->ndim);
    cx_tensor *mk = cx_from_data(CX_F(mask), CX_SHAPE(T, B, 1));
    cx_tensor *l = cx_bce_with_logits(logits, y, CX_REDUCE_NONE);
    cx_tensor *s = cx_sum(cx_mul(l, mk));
    return cx_mul_scalar(s, n > 0 ? (float)(1.0 / (n * C)) : 0.0f);
}
