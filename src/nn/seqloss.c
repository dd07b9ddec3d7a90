/* Sequence losses over padded batches, and bits-per-character helpers.
 *
 * cx_seq_cross_entropy is built from cx_reshape and cx_cross_entropy: the
 * padded positions get the target -100 (ignore_index), so the forward, the
 * reductions and the backward are those of the flat cross-entropy. */
#include "../autograd/graph.h"
#include <math.h>

static int64_t tgt_at(const cx_tensor *t, int64_t i) {
    return t->dtype == CX_I64 ? CX_I64P(t)[i] : CX_I32P(t)[i];
}

static bool mask_at(const cx_tensor *m, int64_t i) {
    switch (m->dtype) {
    case CX_F32: return CX_F(m)[i] != 0.0f;
    case CX_I32: return CX_I32P(m)[i] != 0;
    case CX_I64: return CX_I64P(m)[i] != 0;
    }
    return false;
}

/* Shared body: lengths (B ints) or mask (targets' shape) or neither. */
static cx_tensor *seq_ce(const char *op, cx_tensor *logits, const cx_tensor *targets,
                         const int *lengths, const cx_tensor *mask, bool batch_first,
                         cx_reduction r) {
    char s1[96], s2[96];
    cx_need_f32(op, logits);
    if (!targets || (targets->dtype != CX_I32 && targets->dtype != CX_I64))
        cx_fatal("%s: targets must be an I32 or I64 tensor of class indices", op);
    if (logits->ndim != 3 || targets->ndim != 2 || targets->shape[0] != logits->shape[0] ||
        targets->shape[1] != logits->shape[1])
        cx_fatal("%s: logits %s and targets %s do not match (expected %s and %s)", op,
                 cx_shape_str(logits, s1, sizeof s1), cx_shape_str(targets, s2, sizeof s2),
                 batch_first ? "[B, T, V]" : "[T, B, V]", batch_first ? "[B, T]" : "[T, B]");
    if ((unsigned)r > CX_REDUCE_NONE) cx_fatal("%s: unknown reduction %d", op, (int)r);
    int T = batch_first ? logits->shape[1] : logits->shape[0];
    int B = batch_first ? logits->shape[0] : logits->shape[1];
    int V = logits->shape[2];
    if (mask && (mask->ndim != 2 || mask->shape[0] != targets->shape[0] ||
                 mask->shape[1] != targets->shape[1]))
        cx_fatal("%s: mask %s must have the shape of targets %s", op,
                 cx_shape_str(mask, s1, sizeof s1), cx_shape_str(targets, s2, sizeof s2));
    if (lengths)
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > T)
                cx_fatal("%s: lengths[%d] = %d out of range [0, %d]", op, b, lengths[b], T);
    int N = T * B;
    cx_tensor *flat_t = cx_empty(CX_I32, (int[]){N}, 1);
    int32_t *ft = CX_I32P(flat_t);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            int64_t pos = batch_first ? (int64_t)b * T + t : (int64_t)t * B + b;
            bool real = lengths ? t < lengths[b] : mask ? mask_at(mask, pos) : true;
            int64_t y = tgt_at(targets, pos);
            if (real && y != -100 && (y < 0 || y >= V))
                cx_fatal("%s: target %lld at time %d, sequence %d out of range [0, %d)", op,
                         (long long)y, t, b, V);
            ft[pos] = real ? (int32_t)y : -100;
        }
    cx_tensor *flat = cx_reshape(logits, (int[]){N, V}, 2);
    cx_tensor *loss = cx_cross_entropy(flat, flat_t, r);
    if (r == CX_REDUCE_NONE) loss = cx_reshape(loss, targets->shape, 2);
    return loss;
}

cx_tensor *cx_seq_cross_entropy(cx_tensor *logits, const cx_tensor *targets, const int *lengths,
                                bool batch_first, cx_reduction r) {
    return seq_ce("seq_cross_entropy", logits, targets, lengths, NULL, batch_first, r);
}

cx_tensor *cx_seq_cross_entropy_masked(cx_tensor *logits, const cx_tensor *targets,
                                       const cx_tensor *mask, bool batch_first, cx_reduction r) {
    return seq_ce("seq_cross_entropy_masked", logits, targets, NULL, mask, batch_first, r);
}

double cx_bits_per_char(double mean_nats) { return mean_nats / log(2.0); }
double cx_perplexity(double mean_nats) { return exp(mean_nats); }
