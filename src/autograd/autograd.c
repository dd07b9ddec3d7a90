/* Define-by-run autograd: recording, backward, no-grad, check mode, detach. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

/* Per-thread autograd state: each thread records, checks and trains on its own. */
static _Thread_local int no_grad_depth;
static _Thread_local bool check_numerics;
static _Thread_local bool training = true;

static _Thread_local bool drop_op_grads; /* !cx_keep_op_grads() */
cx_autograd_state cx_autograd_state_get(void) {
    return (cx_autograd_state){no_grad_depth, training, check_numerics, drop_op_grads};
}
void cx_autograd_state_set(cx_autograd_state s) {
    no_grad_depth = s.no_grad_depth;
    training = s.training;
    check_numerics = s.check_numerics;
    drop_op_grads = s.drop_op_grads;
    cx_grad_pool_clear(); /* a failed backward's buffers (cx_try rewinds them) */
}

void cx_no_grad_begin(void) { no_grad_depth++; }
void cx_no_grad_end(void) {
    if (no_grad_depth <= 0) cx_fatal("cx_no_grad_end without cx_no_grad_begin");
    no_grad_depth--;
}
bool cx_grad_enabled(void) { return no_grad_depth == 0; }
void cx_set_check_numerics(bool on) { check_numerics = on; }
bool cx_check_numerics(void) { return check_numerics; }
void cx_set_keep_op_grads(bool keep) { drop_op_grads = !keep; }
bool cx_keep_op_grads(void) { return !drop_op_grads; }
void cx_set_training(bool on) { training = on; }
bool cx_is_training(void) { return training; }

void cx_need_f32(const char *op, const cx_tensor *t) {
    if (!t) cx_fatal("%s: NULL tensor", op);
    if (t->dtype != CX_F32) cx_fatal("%s: expected an F32 tensor, got %s", op, cx_dtype_name(t->dtype));
}

void cx_need_f32_arg(const char *op, const char *what, const cx_tensor *t) {
    if (!t) cx_fatal("%s: %s is NULL", op, what);
    if (t->dtype != CX_F32) {
        char s[96];
        cx_fatal("%s: %s must be F32, got %s %s", op, what, cx_dtype_name(t->dtype), cx_shape_str(t, s, sizeof s));
    }
}

int cx_axis_of(const char *op, int axis, const cx_tensor *t) {
    int ax = axis < 0 ? axis + t->ndim : axis;
    if (ax < 0 || ax >= t->ndim) {
        char s[96];
        cx_fatal("%s: axis %d out of range for %s (%d-d)", op, axis, cx_shape_str(t, s, sizeof s), t->ndim);
    }
    return ax;
}

cx_tensor *cx_new_like_shape(const int *shape, int ndim) { return cx_empty(CX_F32, shape, ndim); }

/* ---- the op table (generated from every CX_OP_DEF line: optable.c) */
extern const cx_op_desc *const cx_op_table[];
extern const int cx_op_table_len;

int cx_op_count(void) { return cx_op_table_len; }
const cx_op_desc *cx_op_at(int i) {
    if (i < 0 || i >= cx_op_table_len) cx_fatal("cx_op_at: index %d out of range (%d ops)", i, cx_op_table_len);
    return cx_op_table[i];
}
const cx_op_desc *cx_op_find(const char *name) {
    /* the table is sorted by name */
    int lo = 0, hi = cx_op_table_len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, cx_op_table[mid]->name);
        if (!c) return cx_op_table[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}
int cx_op_outputs(const cx_op_desc *op) { return op->n_out > 0 ? op->n_out : 1; }
const cx_op_desc *cx_op_of(const cx_tensor *t) { return t && t->node ? t->node->op : NULL; }

const char *cx_op_name(const cx_tensor *t) {
    if (!t->node) return t->persistent && t->name ? t->name : "leaf";
    return t->node->op->name;
}

bool cx_needs_grad(cx_tensor *const *in, int n) {
    if (no_grad_depth) return false;
    for (int k = 0; k < n; k++)
        if (in[k] && in[k]->requires_grad) return true;
    return false;
}

static int64_t first_nonfinite(const float *d, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(d[i])) return i;
    return -1;
}
static int64_t first_nan(const float *d, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (isnan(d[i])) return i;
    return -1;
}

static const char *describe(const cx_tensor *t, char *buf, size_t n) {
    char s[96];
    if (t->node) snprintf(buf, n, "result of '%s' %s", t->node->op->name, cx_shape_str(t, s, sizeof s));
    else if (t->name) snprintf(buf, n, "'%s' %s", t->name, cx_shape_str(t, s, sizeof s));
    else snprintf(buf, n, "leaf %s", cx_shape_str(t, s, sizeof s));
    return buf;
}

/* fabs: NaN prints as "nan" whatever its sign bit */
static double shown(float v) { return isnan(v) ? fabs((double)v) : (double)v; }

void cx_check_op(const cx_op_desc *op, cx_tensor *const *outs, int n_out, cx_tensor *const *in, int n) {
    if (!check_numerics) return;
    /* An op's input made by another op can only hold +-inf by design (the
     * producer was checked and allowed it: a -inf attention mask); an op that
     * passes such infinities on (a scale, a transpose after the mask) is not
     * stopped for them. NaN always stops, and so does an infinity an op makes
     * from finite inputs (unless its descriptor says inf_ok). */
    bool inf_in = op->inf_ok;
    for (int k = 0; k < n && !inf_in; k++)
        if (in[k] && in[k]->dtype == CX_F32 && in[k]->node)
            for (int64_t i = 0; i < in[k]->numel && !inf_in; i++) inf_in = isinf(CX_F(in[k])[i]);
    for (int o = 0; o < n_out; o++) {
        const cx_tensor *out = outs[o];
        if (!out || out->dtype != CX_F32) continue;
        int64_t bad = inf_in ? first_nan(CX_F(out), out->numel) : first_nonfinite(CX_F(out), out->numel);
        if (bad < 0) continue;
        char b[160], s[96], which[32] = "";
        for (int k = 0; k < n; k++) {
            if (!in[k] || in[k]->dtype != CX_F32) continue;
            /* an op-made input may hold +-inf by design: only its NaN counts */
            int64_t ib = in[k]->node ? first_nan(CX_F(in[k]), in[k]->numel)
                                     : first_nonfinite(CX_F(in[k]), in[k]->numel);
            if (ib >= 0)
                cx_fatal("check_numerics: input %d of op '%s' (%s) already holds %g at element %lld",
                         k, op->name, describe(in[k], b, sizeof b), shown(CX_F(in[k])[ib]), (long long)ib);
        }
        if (n_out > 1) snprintf(which, sizeof which, " %d", o);
        cx_fatal("check_numerics: op '%s' produced %g at element %lld of its output%s %s (forward; %s)", op->name,
                 shown(CX_F(out)[bad]), (long long)bad, which, cx_shape_str(out, s, sizeof s),
                 inf_in ? "no NaN in its inputs, masked -inf only" : "inputs finite");
    }
}

cx_node *cx_record_n(const cx_op_desc *op, cx_tensor *const *outs, int n_out, cx_tensor *const *in, int n,
                     const void *saved, size_t saved_size) {
    if (n_out != cx_op_outputs(op))
        cx_fatal("op '%s': %d outputs recorded, the descriptor says %d", op->name, n_out, cx_op_outputs(op));
    cx_check_op(op, outs, n_out, in, n);
    if (!op->backward || !cx_needs_grad(in, n)) return NULL;
    cx_node *nd = cx_arena_alloc(sizeof *nd);
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->n_in = n;
    nd->n_out = n_out;
    nd->in = n <= CX_NODE_MAX_INLINE ? nd->in_inline : cx_arena_alloc((size_t)n * sizeof(cx_tensor *));
    for (int k = 0; k < n; k++) nd->in[k] = in[k];
    nd->out = n_out == 1 ? nd->out_inline : cx_arena_alloc((size_t)n_out * sizeof(cx_tensor *));
    for (int k = 0; k < n_out; k++) {
        /* integer outputs (indices of sort / top-k) belong to the node but
         * carry no gradient */
        nd->out[k] = outs[k];
        outs[k]->node = nd;
        outs[k]->requires_grad = outs[k]->dtype == CX_F32;
    }
    if (saved_size) {
        nd->saved = cx_arena_alloc(saved_size);
        memcpy(nd->saved, saved, saved_size);
    } else {
        nd->saved = (void *)saved;
    }
    return nd;
}

/* ---- backward */
static _Thread_local unsigned visit_epoch;

/* Growable arrays in the current arena (released with the step, also when an
 * error jumps out of backward). */
typedef struct { cx_node **v; size_t n, cap; } node_vec;
typedef struct { cx_node *nd; int next; } frame;
typedef struct { frame *v; size_t n, cap; } frame_vec;

static void *grow(void *v, size_t n, size_t *cap, size_t elem) {
    size_t c = *cap ? 2 * *cap : 256;
    void *w = cx_arena_alloc(c * elem);
    if (n) memcpy(w, v, n * elem);
    *cap = c;
    return w;
}
static void nv_push(node_vec *a, cx_node *nd) {
    if (a->n == a->cap) a->v = grow(a->v, a->n, &a->cap, sizeof *a->v);
    a->v[a->n++] = nd;
}
static void fv_push(frame_vec *a, cx_node *nd) {
    if (a->n == a->cap) a->v = grow(a->v, a->n, &a->cap, sizeof *a->v);
    a->v[a->n++] = (frame){nd, 0};
}

/* Nodes reachable from root through inputs that require grad, in DFS
 * post-order: a node comes after the nodes of its inputs, so the reverse
 * order runs each node's backward after every consumer of its outputs. */
static node_vec topo_order(const cx_tensor *root) {
    visit_epoch++;
    node_vec order = {0};
    frame_vec stack = {0};
    if (root->node) {
        root->node->visit = visit_epoch;
        fv_push(&stack, root->node);
    }
    while (stack.n) {
        frame *f = &stack.v[stack.n - 1];
        if (f->next < f->nd->n_in) {
            cx_tensor *c = f->nd->in[f->next++];
            if (c && c->node && c->requires_grad && c->node->visit != visit_epoch) {
                c->node->visit = visit_epoch;
                fv_push(&stack, c->node);
            }
        } else {
            nv_push(&order, f->nd);
            stack.n--;
        }
    }
    return order;
}

/* One node's backward, then (check mode) its inputs' gradients scanned. */
static void run_node_backward(cx_node *nd) {
    if (nd->n_out > 1)
        for (int o = 0; o < nd->n_out; o++)
            if (nd->out[o]->dtype == CX_F32) (void)cx_grad_ensure(nd->out[o]);
    nd->op->backward(nd);
    if (!check_numerics) return;
    for (int j = 0; j < nd->n_in; j++) {
        cx_tensor *in = nd->in[j];
        if (!in || !in->grad) continue;
        int64_t bad = first_nonfinite(in->grad, in->numel);
        if (bad >= 0) {
            char b[160];
            cx_fatal("check_numerics: backward of op '%s' produced gradient %g at element %lld of input %d (%s)",
                     nd->op->name, shown(in->grad[bad]), (long long)bad, j, describe(in, b, sizeof b));
        }
    }
}

/* ---- the leaf hook (internal.h): which leaves are done after which node */
static _Thread_local cx_leaf_done_fn leaf_hook;
static _Thread_local void *leaf_hook_user;

void cx_autograd_set_leaf_hook(cx_leaf_done_fn fn, void *user) {
    leaf_hook = fn;
    leaf_hook_user = user;
}

/* (k, leaf): the leaf's last use in execution order is node order.v[k] */
typedef struct { size_t k; cx_tensor *leaf; } leaf_done;

/* Nodes run from order.v[n-1] down to order.v[0], so a leaf's last use is the
 * node of smallest k that takes it as an input. Returns the pairs sorted by
 * k (ascending), each leaf once; *n_out their count. A pointer set (open
 * addressing, in the arena) marks the leaves seen. */
static leaf_done *leaf_schedule(const node_vec *order, size_t *n_out) {
    size_t total = 0;
    for (size_t k = 0; k < order->n; k++) total += (size_t)order->v[k]->n_in;
    size_t cap = 16;
    while (cap < 2 * total) cap *= 2;
    cx_tensor **set = cx_arena_alloc(cap * sizeof *set);
    memset(set, 0, cap * sizeof *set);
    leaf_done *out = cx_arena_alloc((total ? total : 1) * sizeof *out);
    size_t n = 0;
    for (size_t k = 0; k < order->n; k++) {
        const cx_node *nd = order->v[k];
        for (int j = 0; j < nd->n_in; j++) {
            cx_tensor *t = nd->in[j];
            if (!t || t->node || !t->requires_grad || t->dtype != CX_F32) continue;
            size_t h = ((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull & (cap - 1);
            while (set[h] && set[h] != t) h = (h + 1) & (cap - 1);
            if (set[h]) continue;
            set[h] = t;
            out[n++] = (leaf_done){k, t};
        }
    }
    *n_out = n;
    return out;
}

void cx_backward_with(cx_tensor *root, const float *grad_out) {
    if (!root->requires_grad) cx_fatal("backward: tensor does not require grad (no parameter reaches it, or it was computed under no_grad)");
    cx_need_f32("backward", root);
    node_vec order = topo_order(root);
    /* Gradients of op results are per-pass buffers: clear what an earlier
     * backward over a shared subgraph left there, or it would be propagated
     * (and counted) again. Leaves keep accumulating. */
    for (size_t k = 0; k < order.n; k++)
        for (int o = 0; o < order.v[k]->n_out; o++) {
            cx_tensor *t = order.v[k]->out[o];
            if (t->grad && t->dtype == CX_F32) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
        }
    /* the hook is read once: a hook that re-arms itself takes effect at the next backward */
    cx_leaf_done_fn hook = leaf_hook;
    void *hook_user = leaf_hook_user;
    size_t n_done = 0;
    leaf_done *done = hook ? leaf_schedule(&order, &n_done) : NULL;
    float *g = cx_grad_ensure(root);
    for (int64_t i = 0; i < root->numel; i++) g[i] += grad_out ? grad_out[i] : 1.0f;
    if (hook && !root->node) hook(root, hook_user);
    const bool drop = drop_op_grads;
    cx_grad_pool_clear();
    for (size_t k = order.n; k-- > 0;) {
        cx_node *nd = order.v[k];
        bool any = false;
        for (int o = 0; o < nd->n_out; o++) any |= nd->out[o]->grad != NULL;
        if (any) run_node_backward(nd);
        /* the node's consumers ran before it: its results' gradients are
         * read by nothing else (cx_set_keep_op_grads) */
        if (drop)
            for (int o = 0; o < nd->n_out; o++) {
                cx_tensor *t = nd->out[o];
                if (t == root || !t->grad || t->persistent || t->dtype != CX_F32) continue;
                cx_grad_pool_put(t->grad, (size_t)t->numel * sizeof(float));
                t->grad = NULL;
            }
        while (n_done && done[n_done - 1].k == k) hook(done[--n_done].leaf, hook_user);
    }
    cx_grad_pool_clear();
}

/* ---- graph dump */
static int tensor_id(const cx_tensor *t, const node_vec *order) {
    /* position of t's node in the order (for naming results), -1 for a leaf */
    if (!t->node) return -1;
    for (size_t k = 0; k < order->n; k++)
        if (order->v[k] == t->node) return (int)k;
    return -1;
}

void cx_graph_dump(const cx_tensor *root, FILE *f) {
    cx_arena *ar = cx_arena_current();
    cx_arena_mark m = cx_arena_get_mark(ar);
    node_vec order = topo_order(root);
    char s[96];
    fprintf(f, "graph of %s %s: %zu node(s)\n", cx_op_name(root), cx_shape_str(root, s, sizeof s), order.n);
    for (size_t k = 0; k < order.n; k++) {
        const cx_node *nd = order.v[k];
        fprintf(f, "  %%%zu = %s(", k, nd->op->name);
        for (int j = 0; j < nd->n_in; j++) {
            const cx_tensor *in = nd->in[j];
            if (j) fputs(", ", f);
            if (!in) { fputs("none", f); continue; }
            int id = tensor_id(in, &order);
            if (id >= 0) {
                int o = 0;
                while (o < in->node->n_out && in->node->out[o] != in) o++;
                if (in->node->n_out > 1) fprintf(f, "%%%d.%d", id, o);
                else fprintf(f, "%%%d", id);
            } else if (in->name) fprintf(f, "%s", in->name);
            else fputs(in->requires_grad ? "leaf" : "const", f);
            fprintf(f, " %s", cx_shape_str(in, s, sizeof s));
        }
        fputs(") ->", f);
        for (int o = 0; o < nd->n_out; o++) fprintf(f, "%s %s", o ? "," : "", cx_shape_str(nd->out[o], s, sizeof s));
        fputc('\n', f);
    }
    cx_arena_rewind(ar, m);
}

void cx_backward(cx_tensor *loss) {
    if (loss->numel != 1) {
        char b[96];
        cx_fatal("backward: loss must have one element, got shape %s (use cx_backward_with)",
                 cx_shape_str(loss, b, sizeof b));
    }
    cx_backward_with(loss, NULL);
}

cx_tensor *cx_detach(cx_tensor *t) {
    cx_tensor *d = cx_arena_alloc(sizeof *d);
    *d = *t;
    d->grad = NULL;
    d->node = NULL;
    d->requires_grad = false;
    d->persistent = false;
    d->owns_data = false;
    d->name = NULL;
    return d;
}

/* ---- gradient check */
double cx_gradcheck(cx_scalar_fn fn, cx_tensor **inputs, int n, void *user, float eps,
                    float atol, float rtol, bool verbose) {
    cx_arena *ar = cx_arena_current();
    /* analytic */
    float **saved_grad = cx_xcalloc((size_t)n, sizeof *saved_grad);
    float **analytic = cx_xcalloc((size_t)n, sizeof *analytic);
    for (int k = 0; k < n; k++) {
        saved_grad[k] = inputs[k]->grad;
        inputs[k]->grad = NULL;
    }
    cx_arena_mark m = cx_arena_get_mark(ar);
    cx_tensor *loss = fn(inputs, n, user);
    cx_backward(loss);
    for (int k = 0; k < n; k++) {
        cx_tensor *x = inputs[k];
        if (!x->requires_grad || x->dtype != CX_F32) continue;
        analytic[k] = cx_xmalloc((size_t)x->numel * sizeof(float));
        if (x->grad) memcpy(analytic[k], x->grad, (size_t)x->numel * 4);
        else memset(analytic[k], 0, (size_t)x->numel * 4);
        if (x->persistent) free(x->grad);
        x->grad = NULL;
    }
    cx_arena_rewind(ar, m);
    double worst = 0;
    cx_no_grad_begin();
    for (int k = 0; k < n && worst <= 1e30; k++) {
        cx_tensor *x = inputs[k];
        if (!analytic[k]) continue;
        float *d = CX_F(x);
        for (int64_t i = 0; i < x->numel; i++) {
            float orig = d[i];
            d[i] = orig + eps;
            double fp = cx_item(fn(inputs, n, user));
            cx_arena_rewind(ar, m);
            d[i] = orig - eps;
            double fm = cx_item(fn(inputs, n, user));
            cx_arena_rewind(ar, m);
            d[i] = orig;
            double num = (fp - fm) / (2.0 * (double)eps);
            double an = analytic[k][i];
            double lim = atol + rtol * fabs(num);
            double ratio = fabs(an - num) / lim;
            if (!(ratio <= worst)) {
                if (verbose && ratio > 1)
                    fprintf(stderr, "gradcheck: input %d element %lld analytic %.7g numeric %.7g\n", k,
                            (long long)i, an, num);
                worst = isnan(ratio) ? INFINITY : ratio;
            }
        }
    }
    cx_no_grad_end();
    for (int k = 0; k < n; k++) {
        free(analytic[k]);
        inputs[k]->grad = saved_grad[k];
    }
    free(analytic);
    free(saved_grad);
    return worst;
}
