/* Ops along one axis that look at the whole line: cumsum, cumprod, sort,
 * argsort, topk. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

/* Normalised axis, or a fatal error naming the op and the shape. */

/* ---- cumsum / cumprod (accumulated in double, as PyTorch's CPU kernels do) */
static void cumsum_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    int64_t outer, inner;
    int n;
    cx_split_axis(nd->in[0], nd->i[0], &outer, &n, &inner);
    const float *g = nd->out[0]->grad;
    /* d/dx_k = sum_{j >= k} g_j: a reversed cumulative sum */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double s = 0;
            for (int k = n - 1; k >= 0; k--) {
                s += g[base + k * inner];
                ga[base + k * inner] += (float)s;
            }
        }
}

static void cumprod_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    int64_t outer, inner;
    int n;
    cx_split_axis(nd->in[0], nd->i[0], &outer, &n, &inner);
    const float *x = CX_F(nd->in[0]), *y = CX_F(nd->out[0]), *g = nd->out[0]->grad;
    /* d/dx_k = sum_{j >= k} g_j prod_{t <= j, t != k} x_t. With z the first
     * zero of the line (n if none), as PyTorch's cumprod_backward:
     *   k < z: sum_{j >= k} g_j y_j / x_k (the terms j >= z vanish, y_j = 0)
     *   k = z: sum_{j >= z} g_j (prod_{t < z} x_t) (prod_{z < t <= j} x_t)
     *   k > z: 0 (every product holds x_z = 0). */
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
#define AT(k) (base + (int64_t)(k) * inner)
            int z = 0;
            while (z < n && x[AT(z)] != 0.0f) z++;
            double s = 0;
            for (int k = n - 1; k >= 0; k--) {
                s += (double)g[AT(k)] * (double)y[AT(k)];
                if (k < z) ga[AT(k)] += (float)(s / (double)x[AT(k)]);
            }
            if (z < n) {
                double pre = 1;
                for (int t = 0; t < z; t++) pre *= x[AT(t)];
                double acc = (double)g[AT(z)] * pre, run = pre;
                for (int j = z + 1; j < n; j++) {
                    run *= x[AT(j)];
                    acc += (double)g[AT(j)] * run;
                }
                ga[AT(z)] += (float)acc;
            }
#undef AT
        }
}

CX_OP_DEF(cumsum, .backward = cumsum_backward);
CX_OP_DEF(cumprod, .backward = cumprod_backward);

static cx_tensor *cumulative(const cx_op_desc *op, cx_tensor *a, int axis) {
    const bool prod = op == &cx_opd_cumprod;
    cx_need_f32_arg(op->name, "input", a);
    axis = cx_axis_of(op->name, axis, a);
    cx_tensor *out = cx_new_like_shape(a->shape, a->ndim);
    int64_t outer, inner;
    int n;
    cx_split_axis(a, axis, &outer, &n, &inner);
    const float *x = CX_F(a);
    float *y = CX_F(out);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i;
            double acc = prod ? 1.0 : 0.0;
            for (int k = 0; k < n; k++) {
                const int64_t at = base + (int64_t)k * inner;
                if (prod) acc *= x[at];
                else acc += x[at];
                y[at] = (float)acc;
            }
        }
    cx_node *nd = cx_record(op, out, &a, 1);
    if (nd) nd->i[0] = axis;
    return out;
}

cx_tensor *cx_cumsum(cx_tensor *a, int axis) { return cumulative(&cx_opd_cumsum, a, axis); }
cx_tensor *cx_cumprod(cx_tensor *a, int axis) { return cumulative(&cx_opd_cumprod, a, axis); }

/* ---- sort / argsort / topk: a stable sort of every line, NaN ordered above
 * every number (last ascending, first descending), as torch.sort(stable=True) */
typedef struct {
    float v;
    int64_t i;
} keyed;

static int cmp_asc(const void *p, const void *q) {
    const keyed *a = p, *b = q;
    const bool na = isnan(a->v), nb = isnan(b->v);
    if (na != nb) return na ? 1 : -1;
    if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

static int cmp_desc(const void *p, const void *q) {
    const keyed *a = p, *b = q;
    const bool na = isnan(a->v), nb = isnan(b->v);
    if (na != nb) return na ? -1 : 1;
    if (!na && a->v != b->v) return a->v > b->v ? -1 : 1;
    return a->i < b->i ? -1 : (a->i > b->i);
}

/* Sort every line of a along axis and keep the first k of each: values (may
 * be NULL) and indices, both shaped like a with k along axis. */
static void sort_lines(const cx_tensor *a, int axis, bool descending, int k, float *vals, int64_t *idx) {
    int64_t outer, inner;
    int n;
    cx_split_axis(a, axis, &outer, &n, &inner);
    if (n == 0 || k == 0) return;
    keyed *line = cx_xmalloc((size_t)n * sizeof *line);
    const float *x = CX_F(a);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i, obase = o * k * inner + i;
            for (int j = 0; j < n; j++) line[j] = (keyed){x[base + (int64_t)j * inner], j};
            qsort(line, (size_t)n, sizeof *line, descending ? cmp_desc : cmp_asc);
            for (int j = 0; j < k; j++) {
                if (vals) vals[obase + (int64_t)j * inner] = line[j].v;
                idx[obase + (int64_t)j * inner] = line[j].i;
            }
        }
    free(line);
}

/* values[o, j, i] came from a[o, indices[o, j, i], i]: scatter g back */
static void sorted_backward(cx_node *nd) {
    float *ga = cx_in_grad(nd, 0);
    if (!ga) return;
    const cx_tensor *vals = nd->out[0], *ind = nd->out[1];
    int64_t outer, inner;
    int n;
    cx_split_axis(nd->in[0], nd->i[0], &outer, &n, &inner);
    const int k = vals->shape[nd->i[0]];
    const float *g = vals->grad;
    const int64_t *id = CX_I64P(ind);
    for (int64_t o = 0; o < outer; o++)
        for (int j = 0; j < k; j++)
            for (int64_t i = 0; i < inner; i++) {
                const int64_t at = (o * k + j) * inner + i;
                ga[(o * n + id[at]) * inner + i] += g[at];
            }
}

CX_OP_DEF(sort, .backward = sorted_backward, .n_out = 2);
CX_OP_DEF(topk, .backward = sorted_backward, .n_out = 2);
CX_OP_DEF(argsort, .backward = NULL);

static cx_tensor *sorted_op(const cx_op_desc *op, cx_tensor *a, int axis, bool descending, int k,
                            cx_tensor **indices) {
    int shape[CX_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[axis] = k;
    cx_tensor *vals = cx_new_like_shape(shape, a->ndim);
    cx_tensor *ind = cx_empty(CX_I64, shape, a->ndim);
    sort_lines(a, axis, descending, k, CX_F(vals), CX_I64P(ind));
    cx_tensor *outs[2] = {vals, ind};
    cx_node *nd = cx_record_n(op, outs, 2, &a, 1, NULL, 0);
    if (nd) nd->i[0] = axis;
    if (indices) *indices = ind;
    return vals;
}

cx_tensor *cx_sort(cx_tensor *a, int axis, bool descending, cx_tensor **indices) {
    cx_need_f32_arg("sort", "input", a);
    axis = cx_axis_of("sort", axis, a);
    return sorted_op(&cx_opd_sort, a, axis, descending, a->shape[axis], indices);
}

cx_tensor *cx_topk(cx_tensor *a, int k, int axis, bool largest, cx_tensor **indices) {
    cx_need_f32_arg("topk", "input", a);
    axis = cx_axis_of("topk", axis, a);
    if (k < 0 || k > a->shape[axis]) {
        char s[96];
        cx_fatal("topk: k = %d out of range for %s along axis %d (size %d)", k, cx_shape_str(a, s, sizeof s),
                 axis, a->shape[axis]);
    }
    return sorted_op(&cx_opd_topk, a, axis, largest, k, indices);
}

cx_tensor *cx_argsort(cx_tensor *a, int axis, bool descending) {
    cx_need_f32_arg("argsort", "input", a);
    axis = cx_axis_of("argsort", axis, a);
    cx_tensor *ind = cx_empty(CX_I64, a->shape, a->ndim);
    sort_lines(a, axis, descending, a->shape[axis], NULL, CX_I64P(ind));
    cx_record(&cx_opd_argsort, ind, &a, 1);
    return ind;
}
