/* Child-sum Tree-LSTM (Tai, Socher & Manning 2015, section 3.1) over a batch
 * of trees, level by level (a level = the nodes of one height across every
 * tree), built from autograd ops: the backward is theirs. See cortex/rnn.h. */
#include "../autograd/graph.h"
#include <cortex/rnn.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int m;                  /* nodes of this level */
    cx_tensor *nodes;       /* I32 [m]: their node indices, increasing */
    /* levels >= 1: the edges (child k -> parent), sorted by the child's level */
    int E;
    cx_tensor *edge_parent; /* I32 [E]: the parent's row in this level */
    cx_sparse *sum;         /* [m, E]: 1 at (parent row, edge): sums over children */
    int npieces;            /* runs of edges whose children sit in one level */
    int *piece_level;       /* the source level of each run */
    cx_tensor **piece_idx;  /* I32: the children's rows in that level */
} tl_level;

struct cx_tree_batch {
    int n, nroots, nlevels;
    int32_t *roots;     /* nroots */
    int32_t *height;    /* n */
    cx_tensor *pos;     /* I32 [n]: row of node j in the level-ordered states */
    cx_tensor *rootpos; /* I32 [nroots]: the same for the roots */
    tl_level *lv;       /* nlevels */
};

int cx_tree_batch_nodes(const cx_tree_batch *t) { return t ? t->n : 0; }
int cx_tree_batch_num_roots(const cx_tree_batch *t) { return t ? t->nroots : 0; }
const int32_t *cx_tree_batch_roots(const cx_tree_batch *t) { return t ? t->roots : NULL; }
int cx_tree_batch_levels(const cx_tree_batch *t) { return t ? t->nlevels : 0; }
int cx_tree_batch_height(const cx_tree_batch *t, int node) {
    if (!t) cx_fatal("tree_batch_height: no tree batch");
    if (node < 0 || node >= t->n) cx_fatal("tree_batch_height: node %d is outside 0 .. %d", node, t->n - 1);
    return t->height[node];
}

void cx_tree_batch_free(cx_tree_batch *t) {
    if (!t) return;
    for (int l = 0; l < t->nlevels; l++) {
        tl_level *v = &t->lv[l];
        cx_tensor_free(v->nodes);
        cx_tensor_free(v->edge_parent);
        cx_sparse_free(v->sum);
        for (int p = 0; p < v->npieces; p++) cx_tensor_free(v->piece_idx[p]);
        free(v->piece_idx);
        free(v->piece_level);
    }
    free(t->lv);
    free(t->roots);
    free(t->height);
    cx_tensor_free(t->pos);
    cx_tensor_free(t->rootpos);
    free(t);
}

/* free the scratch, then report (the caller's buffers stay untouched) */
static _Noreturn void tree_fail(void **scratch, int ns, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (int i = 0; i < ns; i++) free(scratch[i]);
    cx_fatal("tree_batch: %s", msg);
}

static cx_tensor *i32_tensor(const int32_t *v, int n) {
    cx_tensor *t = cx_tensor_new(CX_I32, (const int[]){n}, 1);
    if (n) memcpy(t->data, v, sizeof(int32_t) * (size_t)n);
    return t;
}

typedef struct {
    int32_t src_level, src_row, parent_row;
} tl_edge;

static int cmp_edge(const void *a, const void *b) {
    const tl_edge *x = a, *y = b;
    if (x->src_level != y->src_level) return x->src_level < y->src_level ? -1 : 1;
    if (x->parent_row != y->parent_row) return x->parent_row < y->parent_row ? -1 : 1;
    return (x->src_row > y->src_row) - (x->src_row < y->src_row);
}

cx_tree_batch *cx_tree_batch_new(int n, const int32_t *child_ptr, const int32_t *child_idx) {
    if (n <= 0) cx_fatal("tree_batch: %d nodes (need at least one)", n);
    if (!child_ptr) cx_fatal("tree_batch: no child_ptr");
    if (child_ptr[0] != 0) cx_fatal("tree_batch: child_ptr[0] is %d, must be 0", child_ptr[0]);
    for (int j = 0; j < n; j++)
        if (child_ptr[j + 1] < child_ptr[j])
            cx_fatal("tree_batch: child_ptr decreases at node %d (%d after %d)", j, child_ptr[j + 1], child_ptr[j]);
    const int nedges = child_ptr[n];
    if (nedges > 0 && !child_idx) cx_fatal("tree_batch: %d children but no child_idx", nedges);
    int32_t *parent = malloc(sizeof *parent * (size_t)n), *queue = malloc(sizeof *queue * (size_t)n),
            *height = malloc(sizeof *height * (size_t)n);
    void *scratch[3] = {parent, queue, height};
    if (!parent || !queue || !height) tree_fail(scratch, 3, "out of memory (%d nodes)", n);
    for (int j = 0; j < n; j++) parent[j] = -1;
    for (int j = 0; j < n; j++)
        for (int e = child_ptr[j]; e < child_ptr[j + 1]; e++) {
            const int k = child_idx[e];
            if (k < 0 || k >= n)
                tree_fail(scratch, 3, "node %d has child %d, outside the nodes 0 .. %d", j, k, n - 1);
            if (k == j) tree_fail(scratch, 3, "node %d is its own child (a cycle)", j);
            if (parent[k] == j) tree_fail(scratch, 3, "node %d lists child %d twice", j, k);
            if (parent[k] >= 0)
                tree_fail(scratch, 3, "node %d has two parents, node %d and node %d", k, parent[k], j);
            parent[k] = j;
        }
    /* breadth first from the roots: a node never reached lies on or below a cycle */
    int qn = 0, nroots = 0;
    for (int j = 0; j < n; j++)
        if (parent[j] < 0) queue[qn++] = j, nroots++;
    for (int q = 0; q < qn; q++) {
        const int j = queue[q];
        for (int e = child_ptr[j]; e < child_ptr[j + 1]; e++) queue[qn++] = child_idx[e];
    }
    if (qn < n) {
        /* walk up from an unreached node: every node has one parent, so the walk ends in the cycle */
        for (int j = 0; j < n; j++) height[j] = 0;
        int j = 0;
        for (int q = 0; q < qn; q++) height[queue[q]] = 1;
        while (height[j]) j++;
        while (height[j] != 2) height[j] = 2, j = parent[j];
        char path[256];
        int len = snprintf(path, sizeof path, "%d", j), k = parent[j], steps = 0;
        while (k != j && len < (int)sizeof path - 24 && steps++ < 16) {
            len += snprintf(path + len, sizeof path - (size_t)len, " <- %d", k);
            k = parent[k];
        }
        if (k != j) len += snprintf(path + len, sizeof path - (size_t)len, " <- ...");
        snprintf(path + len, sizeof path - (size_t)len, " <- %d", j);
        tree_fail(scratch, 3, "the child lists have a cycle (child <- parent): %s", path);
    }
    /* heights: children come after their parent in the queue */
    int nlevels = 1;
    for (int q = n - 1; q >= 0; q--) {
        const int j = queue[q];
        int h = 0;
        for (int e = child_ptr[j]; e < child_ptr[j + 1]; e++)
            if (height[child_idx[e]] + 1 > h) h = height[child_idx[e]] + 1;
        height[j] = h;
        if (h + 1 > nlevels) nlevels = h + 1;
    }
    cx_tree_batch *t = cx_xcalloc(1, sizeof *t);
    t->n = n;
    t->nroots = nroots;
    t->nlevels = nlevels;
    t->height = height;
    t->roots = cx_xmalloc(sizeof *t->roots * (size_t)nroots);
    for (int j = 0, r = 0; j < n; j++)
        if (parent[j] < 0) t->roots[r++] = j;
    t->lv = cx_xcalloc((size_t)nlevels, sizeof *t->lv);
    /* rows within a level (node order), level offsets in the level-ordered states */
    int32_t *row = queue; /* reuse: row[j] within its level */
    int *count = cx_xcalloc((size_t)nlevels + 1, sizeof *count);
    for (int j = 0; j < n; j++) row[j] = count[height[j]]++;
    int32_t *buf = cx_xmalloc(sizeof *buf * (size_t)(n > nedges ? n : nedges ? nedges : 1));
    for (int l = 0; l < nlevels; l++) {
        tl_level *v = &t->lv[l];
        v->m = count[l];
        int m = 0;
        for (int j = 0; j < n; j++)
            if (height[j] == l) buf[m++] = j;
        v->nodes = i32_tensor(buf, m);
    }
    int *offset = cx_xcalloc((size_t)nlevels + 1, sizeof *offset);
    for (int l = 0; l < nlevels; l++) offset[l + 1] = offset[l] + count[l];
    for (int j = 0; j < n; j++) buf[j] = offset[height[j]] + row[j];
    t->pos = i32_tensor(buf, n);
    for (int r = 0; r < nroots; r++) buf[r] = offset[height[t->roots[r]]] + row[t->roots[r]];
    t->rootpos = i32_tensor(buf, nroots);
    /* the edges of every level above the leaves */
    tl_edge *ed = cx_xmalloc(sizeof *ed * (size_t)(nedges ? nedges : 1));
    int32_t *rr = cx_xmalloc(sizeof *rr * (size_t)(nedges ? nedges : 1));
    int32_t *cc = cx_xmalloc(sizeof *cc * (size_t)(nedges ? nedges : 1));
    for (int l = 1; l < nlevels; l++) {
        tl_level *v = &t->lv[l];
        int E = 0;
        for (int j = 0; j < n; j++)
            if (height[j] == l)
                for (int e = child_ptr[j]; e < child_ptr[j + 1]; e++) {
                    const int k = child_idx[e];
                    ed[E++] = (tl_edge){height[k], row[k], row[j]};
                }
        qsort(ed, (size_t)E, sizeof *ed, cmp_edge);
        v->E = E;
        for (int e = 0; e < E; e++) buf[e] = ed[e].parent_row, rr[e] = ed[e].parent_row, cc[e] = e;
        v->edge_parent = i32_tensor(buf, E);
        v->sum = cx_sparse_from_coo(v->m, E, rr, cc, NULL, E);
        int np = 0;
        for (int e = 0; e < E; e++)
            if (e == 0 || ed[e].src_level != ed[e - 1].src_level) np++;
        v->npieces = np;
        v->piece_level = cx_xmalloc(sizeof *v->piece_level * (size_t)np);
        v->piece_idx = cx_xcalloc((size_t)np, sizeof *v->piece_idx);
        for (int e = 0, p = 0; e < E; p++) {
            int f = e;
            while (f < E && ed[f].src_level == ed[e].src_level) buf[f - e] = ed[f].src_row, f++;
            v->piece_level[p] = ed[e].src_level;
            v->piece_idx[p] = i32_tensor(buf, f - e);
            e = f;
        }
    }
    free(ed);
    free(rr);
    free(cc);
    free(buf);
    free(offset);
    free(count);
    free(queue);
    free(parent);
    return t;
}

cx_tree_batch *cx_tree_batch_from_parents(int n, const int32_t *parent) {
    if (n <= 0) cx_fatal("tree_batch: %d nodes (need at least one)", n);
    if (!parent) cx_fatal("tree_batch: no parent array");
    for (int j = 0; j < n; j++)
        if (parent[j] < -1 || parent[j] >= n)
            cx_fatal("tree_batch: node %d has parent %d, outside -1 (root) .. %d", j, parent[j], n - 1);
    int32_t *ptr = calloc((size_t)n + 1, sizeof *ptr), *idx = malloc(sizeof *idx * (size_t)n),
            *fill = malloc(sizeof *fill * (size_t)n);
    if (!ptr || !idx || !fill) {
        free(ptr);
        free(idx);
        free(fill);
        cx_fatal("tree_batch: out of memory (%d nodes)", n);
    }
    for (int j = 0; j < n; j++)
        if (parent[j] >= 0) ptr[parent[j] + 1]++;
    for (int j = 0; j < n; j++) ptr[j + 1] += ptr[j], fill[j] = ptr[j];
    for (int j = 0; j < n; j++)
        if (parent[j] >= 0) idx[fill[parent[j]]++] = j;
    free(fill);
    /* a cycle would make cx_tree_batch_new fatal with ptr and idx still held: check here */
    int32_t *mark = calloc((size_t)n, sizeof *mark);
    if (!mark) {
        free(ptr);
        free(idx);
        cx_fatal("tree_batch: out of memory (%d nodes)", n);
    }
    for (int j = 0; j < n; j++) {
        int k = j, steps = 0;
        while (k >= 0 && mark[k] == 0 && steps <= n) mark[k] = j + 1, k = parent[k], steps++;
        if (k >= 0 && mark[k] == j + 1) {
            free(ptr);
            free(idx);
            free(mark);
            cx_fatal("tree_batch: the parent array has a cycle through node %d", k);
        }
    }
    free(mark);
    cx_tree_batch *t = cx_tree_batch_new(n, ptr, idx);
    free(ptr);
    free(idx);
    return t;
}

/* ---- the forward */
static void need_shape(const char *what, const cx_tensor *t, int nd, const int *shape) {
    char s1[96];
    bool ok = t->ndim == nd;
    for (int d = 0; ok && d < nd; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char want[96];
        int len = snprintf(want, sizeof want, "[");
        for (int d = 0; d < nd; d++) len += snprintf(want + len, sizeof want - (size_t)len, d ? ", %d" : "%d", shape[d]);
        snprintf(want + len, sizeof want - (size_t)len, "]");
        cx_fatal("treelstm: %s is %s, expected %s", what, cx_shape_str(t, s1, sizeof s1), want);
    }
}

cx_rnn_out cx_treelstm(const cx_tree_batch *t, cx_tensor *x, cx_tensor *w_ih, cx_tensor *w_hh, cx_tensor *b_ih,
                       cx_tensor *b_hh) {
    char s1[96];
    if (!t) cx_fatal("treelstm: no tree batch");
    if (!x || !w_ih || !w_hh) cx_fatal("treelstm: x, w_ih and w_hh are required");
    cx_need_f32_arg("treelstm", "x", x);
    cx_need_f32_arg("treelstm", "w_ih", w_ih);
    cx_need_f32_arg("treelstm", "w_hh", w_hh);
    if (w_hh->ndim != 2 || w_hh->shape[0] != 4 * w_hh->shape[1] || w_hh->shape[1] <= 0)
        cx_fatal("treelstm: w_hh is %s, expected [4H, H]", cx_shape_str(w_hh, s1, sizeof s1));
    const int H = w_hh->shape[1];
    if (x->ndim != 2 || x->shape[0] != t->n)
        cx_fatal("treelstm: x is %s, expected [%d, I] (one row per node)", cx_shape_str(x, s1, sizeof s1), t->n);
    const int I = x->shape[1];
    need_shape("w_ih", w_ih, 2, (const int[]){4 * H, I});
    if (b_ih) cx_need_f32_arg("treelstm", "b_ih", b_ih), need_shape("b_ih", b_ih, 1, (const int[]){4 * H});
    if (b_hh) cx_need_f32_arg("treelstm", "b_hh", b_hh), need_shape("b_hh", b_hh, 1, (const int[]){4 * H});

    cx_tensor *xp = cx_linear(x, w_ih, b_ih); /* [n, 4H], every node in one GEMM */
    if (b_hh) xp = cx_add(xp, b_hh);
    cx_tensor *uf = cx_slice(w_hh, 0, H, 2 * H, 1); /* U_f [H, H] */
    const int L = t->nlevels;
    cx_tensor **hl = cx_arena_alloc(sizeof *hl * (size_t)L), **cl = cx_arena_alloc(sizeof *cl * (size_t)L);
    cx_tensor **pieces = cx_arena_alloc(sizeof *pieces * (size_t)L);
    for (int l = 0; l < L; l++) {
        const tl_level *v = &t->lv[l];
        cx_tensor *a = cx_index_select(xp, 0, v->nodes); /* [m, 4H] */
        cx_tensor *z = a, *hc = NULL, *ccell = NULL;
        if (l > 0) {
            for (int p = 0; p < v->npieces; p++) pieces[p] = cx_index_select(hl[v->piece_level[p]], 0, v->piece_idx[p]);
            hc = v->npieces == 1 ? pieces[0] : cx_concat(pieces, v->npieces, 0); /* children's h [E, H] */
            for (int p = 0; p < v->npieces; p++) pieces[p] = cx_index_select(cl[v->piece_level[p]], 0, v->piece_idx[p]);
            ccell = v->npieces == 1 ? pieces[0] : cx_concat(pieces, v->npieces, 0);
            cx_tensor *hsum = cx_spmm(v->sum, hc); /* h~ [m, H] */
            z = cx_add(a, cx_matmul_t(hsum, w_hh, false, true));
        }
        cx_tensor *ig = cx_sigmoid(cx_slice(z, 1, 0, H, 1));
        cx_tensor *u = cx_tanh(cx_slice(z, 1, 2 * H, 3 * H, 1));
        cx_tensor *og = cx_sigmoid(cx_slice(z, 1, 3 * H, 4 * H, 1));
        cx_tensor *c = cx_mul(ig, u);
        if (l > 0) {
            /* per child: f_jk = s(W_f x_j + b_f + U_f h_k) */
            cx_tensor *af = cx_index_select(cx_slice(a, 1, H, 2 * H, 1), 0, v->edge_parent);
            cx_tensor *f = cx_sigmoid(cx_add(af, cx_matmul_t(hc, uf, false, true)));
            c = cx_add(c, cx_spmm(v->sum, cx_mul(f, ccell)));
        }
        cl[l] = c;
        hl[l] = cx_mul(og, cx_tanh(c));
    }
    cx_tensor *hall = L == 1 ? hl[0] : cx_concat(hl, L, 0), *call = L == 1 ? cl[0] : cx_concat(cl, L, 0);
    cx_rnn_out out;
    out.output = cx_index_select(hall, 0, t->pos);
    out.h = cx_index_select(hall, 0, t->rootpos);
    out.c = cx_index_select(call, 0, t->rootpos);
    return out;
}

/* ---- the module */
typedef struct {
    cx_module base;
    int I, H;
    cx_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} treelstm_m;

static cx_tensor *treelstm_fwd(cx_module *m, cx_tensor *x) {
    (void)x;
    cx_fatal("%s: a Tree-LSTM needs its trees: call cx_treelstm_forward(m, trees, x)", m->ops->kind);
    return NULL;
}
static void treelstm_describe(const cx_module *m, char *buf, size_t n) {
    const treelstm_m *t = (const treelstm_m *)m;
    snprintf(buf, n, "ChildSumTreeLSTM(%d -> %d%s)", t->I, t->H, t->b_ih ? "" : ", no bias");
}
static const cx_module_ops treelstm_ops = {
    .kind = "ChildSumTreeLSTM", .forward = treelstm_fwd, .describe = treelstm_describe};

cx_module *cx_treelstm_new(int input_size, int hidden_size, bool bias) {
    if (input_size <= 0 || hidden_size <= 0)
        cx_fatal("ChildSumTreeLSTM: sizes must be positive, got %d -> %d", input_size, hidden_size);
    if (hidden_size > INT32_MAX / 4) cx_fatal("ChildSumTreeLSTM: hidden size %d is too large", hidden_size);
    const int G = 4 * hidden_size;
    (void)cx_shape_numel("ChildSumTreeLSTM", (const int[]){G, input_size > hidden_size ? input_size : hidden_size}, 2);
    treelstm_m *t = cx_xcalloc(1, sizeof *t);
    cx_module_init(&t->base, &treelstm_ops);
    t->I = input_size;
    t->H = hidden_size;
    t->w_ih = cx_param_new(NULL, (const int[]){G, input_size}, 2);
    t->w_hh = cx_param_new(NULL, (const int[]){G, hidden_size}, 2);
    if (bias) {
        t->b_ih = cx_param_new(NULL, (const int[]){G}, 1);
        t->b_hh = cx_param_new(NULL, (const int[]){G}, 1);
    }
    const float bound = 1.0f / sqrtf((float)hidden_size);
    cx_tensor **ps[4] = {&t->w_ih, &t->w_hh, &t->b_ih, &t->b_hh};
    const char *names[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
    for (int q = 0; q < 4; q++)
        if (*ps[q]) {
            cx_fill_uniform(*ps[q], -bound, bound);
            cx_module_add_param(&t->base, names[q], ps[q]);
        }
    return &t->base;
}

cx_rnn_out cx_treelstm_forward(cx_module *m, const cx_tree_batch *trees, cx_tensor *x) {
    if (!m || m->ops != &treelstm_ops)
        cx_fatal("treelstm_forward: expected a ChildSumTreeLSTM module, got %s", m ? m->ops->kind : "NULL");
    treelstm_m *t = (treelstm_m *)m;
    if (x && x->ndim == 2 && x->shape[1] != t->I) {
        char s1[96];
        cx_fatal("ChildSumTreeLSTM: x is %s, expected [n, %d]", cx_shape_str(x, s1, sizeof s1), t->I);
    }
    return cx_treelstm(trees, x, t->w_ih, t->w_hh, t->b_ih, t->b_hh);
}
