/* Define-by-run autograd: recording, backward, no-grad, check mode, detach. */
#include "graph.h"
#include <math.h>
#include <stdio.h>

#define CX_OP_NAME(id, name) name,
const char *const cx_op_names[CX_OP_COUNT] = {CX_OPS(CX_OP_NAME)};
#undef CX_OP_NAME
_Static_assert(sizeof(cx_op_names) / sizeof(cx_op_names[0]) == CX_OP_COUNT, "op name table");

/* Per-thread autograd state: each thread records, checks and trains on its own. */
static _Thread_local int no_grad_depth;
static _Thread_local bool check_numerics;
static _Thread_local bool training = true;

void cx_no_grad_begin(void) { no_grad_depth++; }
void cx_no_grad_end(void) {
    if (no_grad_depth <= 0) cx_fatal("cx_no_grad_end without cx_no_grad_begin");
    no_grad_depth--;
}
bool cx_grad_enabled(void) { return no_grad_depth == 0; }
void cx_set_check_numerics(bool on) { check_numerics = on; }
bool cx_check_numerics(void) { return check_numerics; }
void cx_set_training(bool on) { training = on; }
bool cx_is_training(void) { return training; }

void cx_need_f32(const char *op, const cx_tensor *t) {
    if (!t) cx_fatal("%s: NULL tensor", op);
    if (t->dtype != CX_F32) cx_fatal("%s: expected an F32 tensor, got %s", op, cx_dtype_name(t->dtype));
}

cx_tensor *cx_new_like_shape(const int *shape, int ndim) { return cx_empty(CX_F32, shape, ndim); }

const char *cx_op_name(const cx_tensor *t) {
    if (!t->node) return t->persistent && t->name ? t->name : "leaf";
    return cx_node_name(t->node);
}

const char *cx_node_name(const cx_node *nd) {
    return nd->name ? nd->name : cx_op_names[nd->op];
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

static const char *describe(const cx_tensor *t, char *buf, size_t n) {
    char s[96];
    if (t->node) snprintf(buf, n, "result of '%s' %s", cx_node_name(t->node), cx_shape_str(t, s, sizeof s));
    else if (t->name) snprintf(buf, n, "'%s' %s", t->name, cx_shape_str(t, s, sizeof s));
    else snprintf(buf, n, "leaf %s", cx_shape_str(t, s, sizeof s));
    return buf;
}

void cx_check_forward(cx_op op, const cx_tensor *out, cx_tensor *const *in, int n) {
    cx_check_forward_named(cx_op_names[op], out, in, n);
}

void cx_check_forward_named(const char *opname, const cx_tensor *out, cx_tensor *const *in, int n) {
    if (!check_numerics || out->dtype != CX_F32) return;
    int64_t bad = first_nonfinite(CX_F(out), out->numel);
    if (bad < 0) return;
    char b[160], s[96];
    for (int k = 0; k < n; k++) {
        if (!in[k] || in[k]->dtype != CX_F32) continue;
        int64_t ib = first_nonfinite(CX_F(in[k]), in[k]->numel);
        if (ib >= 0)
            cx_fatal("check_numerics: input %d of op '%s' (%s) already holds %g at element %lld",
                     k, opname, describe(in[k], b, sizeof b), (double)CX_F(in[k])[ib],
                     (long long)ib);
    }
    cx_fatal("check_numerics: op '%s' produced %g at element %lld of its output %s (forward; inputs finite)",
             opname, (double)CX_F(out)[bad], (long long)bad, cx_shape_str(out, s, sizeof s));
}

static cx_node *cx_record_nocheck(cx_tensor *out, cx_op op, cx_backward_fn bw, cx_tensor *const *in, int n);

cx_node *cx_record_named(cx_tensor *out, const char *name, cx_backward_fn bw, cx_tensor *const *in, int n) {
    cx_check_forward_named(name, out, in, n);
    cx_node *nd = cx_record_nocheck(out, CX_OP_CUSTOM, bw, in, n);
    if (nd) nd->name = name;
    return nd;
}

cx_node *cx_record(cx_tensor *out, cx_op op, cx_backward_fn bw, cx_tensor *const *in, int n) {
    cx_check_forward(op, out, in, n);
    return cx_record_nocheck(out, op, bw, in, n);
}

static cx_node *cx_record_nocheck(cx_tensor *out, cx_op op, cx_backward_fn bw, cx_tensor *const *in, int n) {
    if (!cx_needs_grad(in, n)) return NULL;
    cx_node *nd = cx_arena_alloc(sizeof *nd);
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->backward = bw;
    nd->n_in = n;
    nd->in = n <= CX_NODE_MAX_INLINE ? nd->in_inline : cx_arena_alloc((size_t)n * sizeof(cx_tensor *));
    for (int k = 0; k < n; k++) nd->in[k] = in[k];
    out->node = nd;
    out->requires_grad = true;
    return nd;
}

/* ---- backward */
static _Thread_local unsigned visit_epoch;

void cx_backward_with(cx_tensor *root, const float *grad_out) {
    if (!root->requires_grad) cx_fatal("backward: tensor does not require grad (no parameter reaches it, or it was computed under no_grad)");
    cx_need_f32("backward", root);
    visit_epoch++;
    /* iterative DFS post-order over tensors with nodes */
    size_t cap = 256, n_order = 0, sp = 0;
    cx_tensor **order = cx_xmalloc(cap * sizeof *order);
    size_t scap = 256;
    struct frame { cx_tensor *t; int next; } *stack = cx_xmalloc(scap * sizeof *stack);
    if (root->node) {
        root->node->visit = visit_epoch;
        stack[sp++] = (struct frame){root, 0};
    }
    while (sp) {
        struct frame *f = &stack[sp - 1];
        cx_node *nd = f->t->node;
        if (f->next < nd->n_in) {
            cx_tensor *c = nd->in[f->next++];
            if (c && c->node && c->requires_grad && c->node->visit != visit_epoch) {
                c->node->visit = visit_epoch;
                if (sp == scap) { scap *= 2; stack = cx_xrealloc(stack, scap * sizeof *stack); }
                stack[sp++] = (struct frame){c, 0};
            }
        } else {
            if (n_order == cap) { cap *= 2; order = cx_xrealloc(order, cap * sizeof *order); }
            order[n_order++] = f->t;
            sp--;
        }
    }
    free(stack);
    /* Gradients of op results are per-pass buffers: clear what an earlier
     * backward over a shared subgraph left there, or it would be propagated
     * (and counted) again. Leaves keep accumulating. */
    for (size_t k = 0; k < n_order; k++)
        if (order[k]->grad) memset(order[k]->grad, 0, (size_t)order[k]->numel * sizeof(float));
    float *g = cx_grad_ensure(root);
    for (int64_t i = 0; i < root->numel; i++) g[i] += grad_out ? grad_out[i] : 1.0f;
    for (size_t k = n_order; k-- > 0;) {
        cx_tensor *t = order[k];
        if (!t->grad) continue;
        t->node->backward(t);
        if (check_numerics) {
            cx_node *nd = t->node;
            for (int j = 0; j < nd->n_in; j++) {
                cx_tensor *in = nd->in[j];
                if (!in || !in->grad) continue;
                int64_t bad = first_nonfinite(in->grad, in->numel);
                if (bad >= 0) {
                    char b[160];
                    free(order);
                    cx_fatal("check_numerics: backward of op '%s' produced gradient %g at element %lld of input %d (%s)",
                             cx_node_name(nd), (double)in->grad[bad], (long long)bad, j,
                             describe(in, b, sizeof b));
                }
            }
        }
    }
    free(order);
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
