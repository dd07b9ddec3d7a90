/* Shape ops: reshape, flatten, transpose/permute, slice, concat, stack,
 * index_select, gather. */
#include "graph.h"

static int64_t idx_at(const cx_tensor *t, int64_t i) {
    return t->dtype == CX_I64 ? CX_I64P(t)[i] : t->dtype == CX_I32 ? CX_I32P(t)[i] : (int64_t)CX_F(t)[i];
}

static void need_index(const char *op, const cx_tensor *t) {
    if (!t) cx_fatal("%s: NULL index tensor", op);
    if (t->dtype != CX_I32 && t->dtype != CX_I64)
        cx_fatal("%s: index tensor must be I32 or I64, got %s", op, cx_dtype_name(t->dtype));
}

static void contiguous_strides(const int *shape, int nd, int64_t *st) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

/* ---- reshape (shares the input's buffer) */
static void copy_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    bool fresh;
    float *ga = cx_in_grad_w(nd, 0, &fresh);
    if (!ga) return;
    const float *g = out->grad;
    const int64_t n = out->numel;
    /* on all threads, in the blocks of a static schedule: the next pass (a
     * layer's backward) reads each block on the thread that wrote it */
    if (fresh)
        CX_PFOR_SIMD(n > CX_PAR_MIN, for (int64_t i = 0; i < n; i++) ga[i] = g[i];);
    else
        CX_PFOR_SIMD(n > CX_PAR_MIN, for (int64_t i = 0; i < n; i++) ga[i] += g[i];);
}

CX_OP_DEF(reshape, .backward = copy_backward);

cx_tensor *cx_reshape(cx_tensor *a, const int *shape, int ndim) {
    if (ndim < 0 || ndim > CX_MAX_DIMS) cx_fatal("reshape: %d dimensions", ndim);
    int s[CX_MAX_DIMS], infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) cx_fatal("reshape: more than one -1 dimension");
            infer = i;
        } else {
            if (s[i] < 0) cx_fatal("reshape: negative dimension %d", s[i]);
            known *= s[i];
        }
    }
    if (infer >= 0) s[infer] = known ? (int)(a->numel / known) : 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= s[i];
    if (n != a->numel) {
        char b[96];
        cx_fatal("reshape: cannot view %s (%lld elements) as a shape of %lld elements",
                 cx_shape_str(a, b, sizeof b), (long long)a->numel, (long long)n);
    }
    cx_tensor *out = cx_arena_alloc(sizeof *out);
    memset(out, 0, sizeof *out);
    out->dtype = a->dtype;
    out->ndim = ndim;
    for (int i = 0; i < ndim; i++) out->shape[i] = s[i];
    out->numel = n;
    out->data = a->data;
    if (a->dtype == CX_F32) cx_record(&cx_opd_reshape, out, &a, 1);
    return out;
}

cx_tensor *cx_flatten(cx_tensor *a) {
    if (a->ndim < 1) cx_fatal("flatten: needs at least 1 dimension");
    int s[2] = {a->shape[0], -1};
    if (a->shape[0] == 0) s[1] = 0;
    return cx_reshape(a, s, 2);
}

/* ---- permute */
static void permute_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const int64_t *map = nd->saved; /* out index -> in index */
    for (int64_t i = 0; i < out->numel; i++) ga[map[i]] += out->grad[i];
}

CX_OP_DEF(permute, .backward = permute_backward);

cx_tensor *cx_permute(cx_tensor *a, const int *perm) {
    cx_need_f32("permute", a);
    int nd = a->ndim, seen[CX_MAX_DIMS] = {0}, shape[CX_MAX_DIMS];
    int64_t ist[CX_MAX_DIMS], pst[CX_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int p = perm[i] < 0 ? perm[i] + nd : perm[i];
        if (p < 0 || p >= nd || seen[p]) cx_fatal("permute: invalid permutation for a %d-d tensor", nd);
        seen[p] = 1;
        shape[i] = a->shape[p];
    }
    contiguous_strides(a->shape, nd, ist);
    for (int i = 0; i < nd; i++) pst[i] = ist[perm[i] < 0 ? perm[i] + nd : perm[i]];
    cx_tensor *out = cx_new_like_shape(shape, nd);
    int64_t *map = cx_arena_alloc((size_t)(out->numel ? out->numel : 1) * sizeof(int64_t));
    int idx[CX_MAX_DIMS] = {0};
    int64_t off = 0;
    const float *x = CX_F(a);
    float *y = CX_F(out);
    for (int64_t i = 0; i < out->numel; i++) {
        map[i] = off;
        y[i] = x[off];
        for (int d = nd - 1; d >= 0; d--) {
            idx[d]++;
            off += pst[d];
            if (idx[d] < shape[d]) break;
            off -= pst[d] * shape[d];
            idx[d] = 0;
        }
    }
    cx_record_saved(&cx_opd_permute, out, &a, 1, map, 0);
    return out;
}

cx_tensor *cx_transpose(cx_tensor *a, int d0, int d1) {
    d0 = cx_norm_axis("transpose", d0, a->ndim);
    d1 = cx_norm_axis("transpose", d1, a->ndim);
    int perm[CX_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) perm[i] = i;
    perm[d0] = d1;
    perm[d1] = d0;
    return cx_permute(a, perm);
}

/* ---- slice along one axis: [outer, n, inner] -> [outer, m, inner] */
static void slice_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    int64_t outer = nd->i[0], inner = nd->i[1];
    int n = nd->i[2], m = nd->i[3], start = nd->i[4], step = nd->i[5];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < m; k++) {
            float *dst = ga + (o * n + start + (int64_t)k * step) * inner;
            const float *g = out->grad + (o * m + k) * inner;
            for (int64_t j = 0; j < inner; j++) dst[j] += g[j];
        }
}

CX_OP_DEF(slice, .backward = slice_backward);

cx_tensor *cx_slice(cx_tensor *a, int axis, int start, int stop, int step) {
    cx_need_f32("slice", a);
    axis = cx_norm_axis("slice", axis, a->ndim);
    if (step < 1) cx_fatal("slice: step must be >= 1, got %d", step);
    int n = a->shape[axis];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (stop > n) stop = n;
    if (stop < start) stop = start;
    int m = (stop - start + step - 1) / step;
    int shape[CX_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = m;
    cx_tensor *out = cx_new_like_shape(shape, a->ndim);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= a->shape[i];
    for (int i = axis + 1; i < a->ndim; i++) inner *= a->shape[i];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < m; k++)
            memcpy(CX_F(out) + (o * m + k) * inner, CX_F(a) + (o * n + start + (int64_t)k * step) * inner,
                   (size_t)inner * 4);
    cx_node *nd = cx_record(&cx_opd_slice, out, &a, 1);
    if (nd) {
        nd->i[0] = (int)outer; nd->i[1] = (int)inner; nd->i[2] = n; nd->i[3] = m;
        nd->i[4] = start; nd->i[5] = step;
    }
    return out;
}

/* ---- concat / stack */
static void concat_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    int axis = nd->i[0];
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= out->shape[i];
    for (int i = axis + 1; i < out->ndim; i++) inner *= out->shape[i];
    int total = out->shape[axis], off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        cx_tensor *t = nd->in[k];
        int nk = t->ndim > axis ? t->shape[axis] : 1;
        if (t->ndim != out->ndim) nk = 1; /* stacked input (one fewer dim) */
        float *g = t->requires_grad ? cx_grad_ensure(t) : NULL;
        if (g)
            for (int64_t o = 0; o < outer; o++) {
                const float *src = out->grad + (o * total + off) * inner;
                float *dst = g + o * nk * inner;
                for (int64_t j = 0; j < nk * inner; j++) dst[j] += src[j];
            }
        off += nk;
    }
}

CX_OP_DEF(concat, .backward = concat_backward);
CX_OP_DEF(stack, .backward = concat_backward);

static cx_tensor *concat_impl(cx_tensor **ts, int n, int axis, bool stack) {
    const char *name = stack ? "stack" : "concat";
    if (n < 1) cx_fatal("%s: needs at least one tensor", name);
    cx_tensor *t0 = ts[0];
    for (int k = 0; k < n; k++) cx_need_f32(name, ts[k]);
    int nd = stack ? t0->ndim + 1 : t0->ndim;
    axis = cx_norm_axis(name, axis, nd);
    int shape[CX_MAX_DIMS];
    /* output shape */
    for (int i = 0, j = 0; i < nd; i++) {
        if (stack && i == axis) shape[i] = n;
        else shape[i] = t0->shape[j++];
    }
    if (!stack) shape[axis] = 0;
    for (int k = 0; k < n; k++) {
        cx_tensor *t = ts[k];
        bool ok = t->ndim == t0->ndim;
        for (int i = 0; ok && i < t0->ndim; i++)
            if (i != axis || stack) ok = t->shape[i] == t0->shape[i];
        if (!ok) {
            char s1[96], s2[96];
            cx_fatal("%s: tensor %d has shape %s, incompatible with tensor 0's %s along axis %d", name, k,
                     cx_shape_str(t, s1, sizeof s1), cx_shape_str(t0, s2, sizeof s2), axis);
        }
        if (!stack) shape[axis] += t->shape[axis];
    }
    cx_tensor *out = cx_new_like_shape(shape, nd);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= shape[i];
    for (int i = axis + 1; i < nd; i++) inner *= shape[i];
    int total = shape[axis], off = 0;
    for (int k = 0; k < n; k++) {
        int nk = stack ? 1 : ts[k]->shape[axis];
        for (int64_t o = 0; o < outer; o++)
            memcpy(CX_F(out) + (o * total + off) * inner, CX_F(ts[k]) + o * nk * inner, (size_t)(nk * inner) * 4);
        off += nk;
    }
    cx_node *node = cx_record(stack ? &cx_opd_stack : &cx_opd_concat, out, ts, n);
    if (node) node->i[0] = axis;
    return out;
}

cx_tensor *cx_concat(cx_tensor **ts, int n, int axis) { return concat_impl(ts, n, axis, false); }
cx_tensor *cx_stack(cx_tensor **ts, int n, int axis) { return concat_impl(ts, n, axis, true); }

/* ---- index_select / gather (the index is saved in nd->aux) */
static void index_select_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const cx_tensor *idx = nd->aux;
    int64_t outer = nd->i[0], inner = nd->i[1];
    int n = nd->i[2], m = (int)idx->numel;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < m; k++) {
            float *dst = ga + (o * n + idx_at(idx, k)) * inner;
            const float *g = out->grad + (o * m + k) * inner;
            for (int64_t j = 0; j < inner; j++) dst[j] += g[j];
        }
}

CX_OP_DEF(index_select, .backward = index_select_backward);

cx_tensor *cx_index_select(cx_tensor *a, int axis, const cx_tensor *index) {
    cx_need_f32("index_select", a);
    need_index("index_select", index);
    if (index->ndim != 1) cx_fatal("index_select: index must be 1-D, got %d-D", index->ndim);
    axis = cx_norm_axis("index_select", axis, a->ndim);
    int n = a->shape[axis], m = (int)index->numel;
    for (int k = 0; k < m; k++) {
        int64_t v = idx_at(index, k);
        if (v < 0 || v >= n)
            cx_fatal("index_select: index %lld at position %d out of range [0, %d)", (long long)v, k, n);
    }
    int shape[CX_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = m;
    cx_tensor *out = cx_new_like_shape(shape, a->ndim);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= a->shape[i];
    for (int i = axis + 1; i < a->ndim; i++) inner *= a->shape[i];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < m; k++)
            memcpy(CX_F(out) + (o * m + k) * inner, CX_F(a) + (o * n + idx_at(index, k)) * inner,
                   (size_t)inner * 4);
    cx_node *nd = cx_record(&cx_opd_index_select, out, &a, 1);
    if (nd) {
        nd->aux = index;
        nd->i[0] = (int)outer; nd->i[1] = (int)inner; nd->i[2] = n;
    }
    return out;
}

static void gather_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const int64_t *map = nd->saved;
    for (int64_t i = 0; i < out->numel; i++) ga[map[i]] += out->grad[i];
}

CX_OP_DEF(gather, .backward = gather_backward);

cx_tensor *cx_gather(cx_tensor *a, int axis, const cx_tensor *index) {
    cx_need_f32("gather", a);
    need_index("gather", index);
    axis = cx_norm_axis("gather", axis, a->ndim);
    if (index->ndim != a->ndim) cx_fatal("gather: index has %d dims, input %d", index->ndim, a->ndim);
    for (int i = 0; i < a->ndim; i++)
        if (i != axis && index->shape[i] > a->shape[i])
            cx_fatal("gather: index dimension %d (%d) exceeds input's (%d)", i, index->shape[i], a->shape[i]);
    int64_t ast[CX_MAX_DIMS];
    contiguous_strides(a->shape, a->ndim, ast);
    cx_tensor *out = cx_new_like_shape(index->shape, index->ndim);
    int64_t *map = cx_arena_alloc((size_t)(out->numel ? out->numel : 1) * sizeof(int64_t));
    int c[CX_MAX_DIMS] = {0};
    for (int64_t i = 0; i < out->numel; i++) {
        int64_t v = idx_at(index, i);
        if (v < 0 || v >= a->shape[axis])
            cx_fatal("gather: index %lld out of range [0, %d) along axis %d", (long long)v, a->shape[axis], axis);
        int64_t off = 0;
        for (int d = 0; d < a->ndim; d++) off += (d == axis ? v : c[d]) * ast[d];
        map[i] = off;
        CX_F(out)[i] = CX_F(a)[off];
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++c[d] < index->shape[d]) break;
            c[d] = 0;
        }
    }
    cx_record_saved(&cx_opd_gather, out, &a, 1, map, 0);
    return out;
}
