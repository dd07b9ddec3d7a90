/* Graph convolution (Kipf & Welling 2017): sparse matrices in CSR form, the
 * symmetric normalised adjacency D^-1/2 (A + I) D^-1/2, the sparse-dense
 * product (differentiable in the dense side) and the GCN layer
 * H' = A_hat (H W^T) + b, as PyTorch Geometric's GCNConv. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct cx_sparse {
    int rows, cols;
    int64_t nnz;
    int64_t *rowptr; /* rows + 1 */
    int32_t *col;    /* nnz, sorted within a row, no duplicates */
    float *val;      /* nnz */
};

int cx_sparse_rows(const cx_sparse *s) { return s->rows; }
int cx_sparse_cols(const cx_sparse *s) { return s->cols; }
int64_t cx_sparse_nnz(const cx_sparse *s) { return s->nnz; }

void cx_sparse_free(cx_sparse *s) {
    if (!s) return;
    free(s->rowptr);
    free(s->col);
    free(s->val);
    free(s);
}

typedef struct {
    int32_t r, c;
    float v;
} coo;

static int cmp_coo(const void *a, const void *b) {
    const coo *x = a, *y = b;
    if (x->r != y->r) return x->r < y->r ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

cx_sparse *cx_sparse_from_coo(int rows, int cols, const int32_t *row, const int32_t *col, const float *val,
                              int64_t nnz) {
    if (rows < 0 || cols < 0) cx_fatal("sparse: negative size %d x %d", rows, cols);
    if (nnz < 0 || (nnz > 0 && (!row || !col))) cx_fatal("sparse: %lld entries without their indices", (long long)nnz);
    coo *e = malloc(sizeof *e * (size_t)(nnz ? nnz : 1));
    if (!e) cx_fatal("sparse: out of memory (%lld entries)", (long long)nnz);
    for (int64_t k = 0; k < nnz; k++) {
        if (row[k] < 0 || row[k] >= rows || col[k] < 0 || col[k] >= cols) {
            free(e);
            cx_fatal("sparse: entry %lld at (%d, %d) is outside the %d x %d matrix", (long long)k, row[k], col[k],
                     rows, cols);
        }
        e[k] = (coo){row[k], col[k], val ? val[k] : 1.0f};
    }
    qsort(e, (size_t)nnz, sizeof *e, cmp_coo);
    cx_sparse *s = calloc(1, sizeof *s);
    int64_t u = 0; /* duplicates summed */
    for (int64_t k = 0; k < nnz; k++) {
        if (u > 0 && e[u - 1].r == e[k].r && e[u - 1].c == e[k].c) e[u - 1].v += e[k].v;
        else e[u++] = e[k];
    }
    if (!s) cx_fatal("sparse: out of memory");
    s->rows = rows;
    s->cols = cols;
    s->nnz = u;
    s->rowptr = calloc((size_t)rows + 1, sizeof *s->rowptr);
    s->col = malloc(sizeof *s->col * (size_t)(u ? u : 1));
    s->val = malloc(sizeof *s->val * (size_t)(u ? u : 1));
    if (!s->rowptr || !s->col || !s->val) cx_fatal("sparse: out of memory (%lld entries)", (long long)u);
    for (int64_t k = 0; k < u; k++) {
        s->rowptr[e[k].r + 1]++;
        s->col[k] = e[k].c;
        s->val[k] = e[k].v;
    }
    for (int r = 0; r < rows; r++) s->rowptr[r + 1] += s->rowptr[r];
    free(e);
    return s;
}

cx_sparse *cx_gcn_adjacency(int n, const int32_t *src, const int32_t *dst, int64_t m, bool self_loops) {
    if (n <= 0) cx_fatal("gcn_adjacency: %d nodes", n);
    if (m < 0) cx_fatal("gcn_adjacency: %lld edges", (long long)m);
    int64_t cap = 2 * m + (self_loops ? n : 0);
    int32_t *r = malloc(sizeof *r * (size_t)(cap ? cap : 1)), *c = malloc(sizeof *c * (size_t)(cap ? cap : 1));
    if (!r || !c) cx_fatal("gcn_adjacency: out of memory (%lld edges)", (long long)m);
    int64_t k = 0;
    for (int64_t i = 0; i < m; i++) {
        if (src[i] < 0 || src[i] >= n || dst[i] < 0 || dst[i] >= n) {
            free(r);
            free(c);
            cx_fatal("gcn_adjacency: edge %lld (%d, %d) names a node outside 0 .. %d", (long long)i, src[i], dst[i],
                     n - 1);
        }
        if (src[i] == dst[i]) continue; /* self loops come from self_loops only */
        r[k] = src[i], c[k++] = dst[i];
        r[k] = dst[i], c[k++] = src[i];
    }
    if (self_loops)
        for (int i = 0; i < n; i++) r[k] = c[k] = i, k++;
    cx_sparse *s = cx_sparse_from_coo(n, n, r, c, NULL, k);
    free(r);
    free(c);
    /* an edge listed twice counts once */
    for (int64_t e = 0; e < s->nnz; e++) s->val[e] = 1.0f;
    double *dinv = malloc(sizeof *dinv * (size_t)n);
    if (!dinv) cx_fatal("gcn_adjacency: out of memory");
    for (int i = 0; i < n; i++) {
        double d = (double)(s->rowptr[i + 1] - s->rowptr[i]);
        dinv[i] = d > 0 ? 1.0 / sqrt(d) : 0.0;
    }
    for (int i = 0; i < n; i++)
        for (int64_t e = s->rowptr[i]; e < s->rowptr[i + 1]; e++) s->val[e] = (float)(dinv[i] * dinv[s->col[e]]);
    free(dinv);
    return s;
}

/* ---- y = A x, A sparse [R, C], x [C, F] */
static void spmm_kernel(const cx_sparse *a, const float *x, int F, float *y) {
    CX_OMP(parallel for schedule(static) if((int64_t)a->nnz * F > 200000))
    for (int r = 0; r < a->rows; r++) {
        float *yr = y + (size_t)r * F;
        memset(yr, 0, sizeof(float) * (size_t)F);
        for (int64_t e = a->rowptr[r]; e < a->rowptr[r + 1]; e++) {
            const float v = a->val[e], *xr = x + (size_t)a->col[e] * F;
            for (int f = 0; f < F; f++) yr[f] += v * xr[f];
        }
    }
}

typedef struct {
    const cx_sparse *a;
} spmm_saved;

static void spmm_backward(cx_node *nd) {
    const spmm_saved *sv = nd->saved;
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const cx_sparse *a = sv->a;
    const int F = nd->out[0]->shape[1];
    const float *g = nd->out[0]->grad;
    /* gx += A^T g: row r of g scattered to the columns of row r */
    for (int r = 0; r < a->rows; r++) {
        const float *gr = g + (size_t)r * F;
        for (int64_t e = a->rowptr[r]; e < a->rowptr[r + 1]; e++) {
            const float v = a->val[e];
            float *xr = gx + (size_t)a->col[e] * F;
            for (int f = 0; f < F; f++) xr[f] += v * gr[f];
        }
    }
}

CX_OP_DEF(spmm, .backward = spmm_backward);

cx_tensor *cx_spmm(const cx_sparse *a, cx_tensor *x) {
    char s1[96];
    if (!a) cx_fatal("spmm: no sparse matrix");
    cx_need_f32("spmm", x);
    if (x->ndim != 2 || x->shape[0] != a->cols)
        cx_fatal("spmm: a %d x %d sparse matrix cannot multiply %s (expected [%d, F])", a->rows, a->cols,
                 cx_shape_str(x, s1, sizeof s1), a->cols);
    const int F = x->shape[1];
    cx_tensor *y = cx_new_like_shape((const int[]){a->rows, F}, 2);
    spmm_kernel(a, CX_F(x), F, CX_F(y));
    spmm_saved sv = {a};
    cx_record_saved(&cx_opd_spmm, y, &x, 1, &sv, sizeof sv);
    return y;
}

/* ---- the GCN layer */
typedef struct {
    cx_module base;
    int in, out;
    cx_tensor *w, *b;
} gcn_m;

static cx_tensor *gcn_fwd(cx_module *m, cx_tensor *x) {
    (void)x;
    cx_fatal("%s: a graph convolution needs its adjacency: call cx_gcn_forward(m, adj, x)", m->ops->kind);
    return NULL;
}
static void gcn_describe(const cx_module *m, char *buf, size_t n) {
    const gcn_m *g = (const gcn_m *)m;
    snprintf(buf, n, "GCNConv(%d -> %d%s)", g->in, g->out, g->b ? "" : ", no bias");
}
static const cx_module_ops gcn_ops = {.kind = "GCNConv", .forward = gcn_fwd, .describe = gcn_describe};

cx_module *cx_gcn_new(int in, int out, bool bias) {
    if (in <= 0 || out <= 0) cx_fatal("GCNConv: sizes must be positive, got %d -> %d", in, out);
    cx_tensor *w, *b;
    cx_layer_params_new((int[]){out, in}, 2, bias ? out : 0, &w, &b);
    gcn_m *g = cx_xcalloc(1, sizeof *g);
    cx_module_init(&g->base, &gcn_ops);
    g->in = in;
    g->out = out;
    g->w = w;
    /* Glorot uniform, as PyG's GCNConv; bias zero */
    float bound = sqrtf(6.0f / (float)(in + out));
    cx_fill_uniform(g->w, -bound, bound);
    cx_module_add_param(&g->base, "weight", &g->w);
    if (bias) {
        g->b = b;
        memset(CX_F(g->b), 0, sizeof(float) * (size_t)out);
        cx_module_add_param(&g->base, "bias", &g->b);
    }
    return &g->base;
}

cx_tensor *cx_gcn_forward(cx_module *m, const cx_sparse *adj, cx_tensor *x) {
    if (!m || m->ops != &gcn_ops) cx_fatal("gcn_forward: expected a GCNConv module, got %s", m ? m->ops->kind : "NULL");
    gcn_m *g = (gcn_m *)m;
    cx_tensor *h = cx_spmm(adj, cx_linear(x, g->w, NULL));
    return g->b ? cx_add(h, g->b) : h;
}
