/* Flat parameter / gradient buffers (see cortex/optim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_internal.h"
#include "../tensor/internal.h"

float *cx_flat_alloc_floats(int64_t n, const char *who) {
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float) - 64)
        cx_fatal("%s: block of %lld floats is too large", who, (long long)n);
    size_t bytes = (size_t)n * sizeof(float);
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0 || !p)
        cx_fatal("%s: out of memory allocating %zu bytes", who, bytes);
    return p;
}

static const char *tname(const cx_tensor *t) { return t->name && t->name[0] ? t->name : "unnamed"; }

/* Check every tensor before anything is allocated or changed (a fatal error
 * may return to the caller through a longjmp handler). */
static void check_list(const cx_params *p) {
    const char *who = "cx_flat_new";
    if (!p) cx_fatal("%s: params is NULL", who);
    if (p->n <= 0) cx_fatal("%s: empty parameter list (nothing to flatten)", who);
    int64_t total = 0;
    for (int i = 0; i < p->n; i++) {
        const cx_tensor *t = p->t[i];
        if (!t) cx_fatal("%s: tensor %d is NULL", who, i);
        if (t->dtype != CX_F32)
            cx_fatal("%s: tensor %d (%s) is %s; only F32 tensors can be flattened", who, i,
                     tname(t), cx_dtype_name(t->dtype));
        if (!t->persistent)
            cx_fatal("%s: tensor %d (%s) is a step (arena) tensor; only persistent tensors "
                     "(cx_param_new / cx_tensor_new) can be flattened", who, i, tname(t));
        if (t->flat)
            cx_fatal("%s: tensor %d (%s) is already in a flat buffer", who, i, tname(t));
        if (!t->owns_data)
            cx_fatal("%s: tensor %d (%s) does not own its data (a view); it cannot be "
                     "flattened", who, i, tname(t));
        if (t->numel < 0 || t->numel > INT64_MAX / 8 - total)
            cx_fatal("%s: tensor %d (%s): too many elements", who, i, tname(t));
        total += t->numel + CX_FLAT_ALIGN;
        for (int j = 0; j < i; j++)
            if (p->t[j] == t)
                cx_fatal("%s: duplicate tensor: entries %d and %d are the same tensor (%s)", who,
                         j, i, tname(t));
    }
}

static int64_t round_up(int64_t n) { return (n + CX_FLAT_ALIGN - 1) / CX_FLAT_ALIGN * CX_FLAT_ALIGN; }

cx_flat *cx_flat_new(const cx_params *params) {
    check_list(params);
    const int n = params->n;
    cx_flat *f = cx_xmalloc(sizeof *f);
    memset(f, 0, sizeof *f);
    cx_params_init(&f->list);
    for (int i = 0; i < n; i++) cx_params_add(&f->list, params->t[i]);
    f->off = cx_xmalloc((size_t)n * sizeof *f->off);
    f->size = cx_xmalloc((size_t)n * sizeof *f->size);
    int64_t pos = 0;
    for (int i = 0; i < n; i++) {
        f->off[i] = pos;
        f->size[i] = params->t[i]->numel;
        pos = round_up(pos + f->size[i]);
    }
    f->total = pos > 0 ? pos : CX_FLAT_ALIGN;
    f->data = cx_flat_alloc_floats(f->total, "cx_flat_new");
    f->grad = cx_flat_alloc_floats(f->total, "cx_flat_new");
    memset(f->data, 0, (size_t)f->total * sizeof(float));
    memset(f->grad, 0, (size_t)f->total * sizeof(float));
    for (int i = 0; i < n; i++) {
        cx_tensor *t = params->t[i];
        float *d = f->data + f->off[i], *g = f->grad + f->off[i];
        const size_t bytes = (size_t)t->numel * sizeof(float);
        if (bytes) memcpy(d, t->data, bytes);
        if (t->grad && bytes) memcpy(g, t->grad, bytes);
        free(t->data); /* owns_data was checked */
        free(t->grad);
        t->data = d;
        t->grad = g;
        t->owns_data = false;
        t->flat = f;
    }
    return f;
}

/* Give t buffers of its own again, with the same data and gradient. */
static void unflatten(cx_tensor *t) {
    const size_t bytes = (size_t)t->numel * sizeof(float);
    float *d = cx_flat_alloc_floats(t->numel, "cx_flat_free");
    float *g = cx_flat_alloc_floats(t->numel, "cx_flat_free");
    if (bytes) {
        memcpy(d, t->data, bytes);
        memcpy(g, t->grad, bytes);
    }
    t->data = d;
    t->grad = g;
    t->owns_data = true;
    t->flat = NULL;
}

void cx_flat_free(cx_flat *f) {
    if (!f) return;
    for (int i = 0; i < f->list.n; i++) {
        cx_tensor *t = f->list.t[i];
        if (!t) continue;
        if (t->flat != f)
            cx_fatal("cx_flat_free: tensor %d (%s) no longer belongs to this flat buffer", i,
                     tname(t));
        unflatten(t);
        f->list.t[i] = NULL;
    }
    free(f->data);
    free(f->grad);
    free(f->off);
    free(f->size);
    cx_params_free(&f->list);
    free(f);
}

/* Called by cx_tensor_free (src/tensor/tensor.c) for a flattened tensor. */
void cx_flat_forget_tensor(cx_tensor *t);
void cx_flat_forget_tensor(cx_tensor *t) {
    cx_flat *f = t->flat;
    for (int i = 0; i < f->list.n; i++) {
        if (f->list.t[i] == t) {
            f->list.t[i] = NULL;
            t->flat = NULL;
            return;
        }
    }
    cx_fatal("cx_tensor_free: tensor (%s) claims a flat buffer that does not list it", tname(t));
}

const cx_flat *cx_flat_match(cx_tensor *const *t, int n) {
    if (n <= 0 || !t || !t[0]) return NULL;
    const cx_flat *f = t[0]->flat;
    if (!f || f->list.n != n) return NULL;
    for (int i = 0; i < n; i++) {
        const cx_tensor *x = t[i];
        if (!x || f->list.t[i] != x || x->flat != f || CX_F(x) != f->data + f->off[i] ||
            x->grad != f->grad + f->off[i])
            return NULL;
    }
    return f;
}

int64_t cx_flat_numel(const cx_flat *f) { return f->total; }
float *cx_flat_data(const cx_flat *f) { return f->data; }
float *cx_flat_grad(const cx_flat *f) { return f->grad; }
const cx_params *cx_flat_params(const cx_flat *f) { return &f->list; }
cx_flat *cx_flat_of(const cx_tensor *t) { return t ? t->flat : NULL; }

static void check_index(const cx_flat *f, int i, const char *who) {
    if (i < 0 || i >= f->list.n)
        cx_fatal("%s: index %d out of range [0, %d)", who, i, f->list.n);
}
int64_t cx_flat_offset(const cx_flat *f, int i) {
    check_index(f, i, "cx_flat_offset");
    return f->off[i];
}
int64_t cx_flat_size(const cx_flat *f, int i) {
    check_index(f, i, "cx_flat_size");
    return f->size[i];
}

void cx_flat_zero_grad(cx_flat *f) { memset(f->grad, 0, (size_t)f->total * sizeof(float)); }

cx_status cx_flat_copy(cx_flat *dst, const cx_flat *src) {
    if (!dst || !src) return cx_set_error(CX_ERR_ARG, "cx_flat_copy: NULL argument");
    if (dst == src) return CX_OK;
    if (dst->list.n != src->list.n)
        return cx_set_error(CX_ERR_SHAPE, "cx_flat_copy: %d tensors into a flat buffer of %d",
                            src->list.n, dst->list.n);
    for (int i = 0; i < src->list.n; i++) {
        const cx_tensor *a = dst->list.t[i], *b = src->list.t[i];
        if (dst->size[i] != src->size[i] || (a && b && !cx_same_shape(a, b))) {
            char sa[96] = "?", sb[96] = "?";
            if (a) cx_shape_str(a, sa, sizeof sa);
            if (b) cx_shape_str(b, sb, sizeof sb);
            return cx_set_error(CX_ERR_SHAPE,
                                "cx_flat_copy: tensor %d (%s) has shape %s (%lld elements) in "
                                "the source but %s (%lld) in the destination",
                                i, b ? tname(b) : a ? tname(a) : "freed", sb,
                                (long long)src->size[i], sa, (long long)dst->size[i]);
        }
    }
    memcpy(dst->data, src->data, (size_t)src->total * sizeof(float));
    return CX_OK;
}
