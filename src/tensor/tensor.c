/* Tensor construction, persistent tensors, parameter lists, printing. */
#include "internal.h"
#include <math.h>
#include <stdio.h>

size_t cx_dtype_size(cx_dtype t) {
    switch (t) {
    case CX_F32: return 4;
    case CX_I32: return 4;
    case CX_I64: return 8;
    }
    return 4;
}

const char *cx_dtype_name(cx_dtype t) {
    switch (t) {
    case CX_F32: return "F32";
    case CX_I32: return "I32";
    case CX_I64: return "I64";
    }
    return "?";
}

int cx_norm_axis(const char *op, int axis, int ndim) {
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim) cx_fatal("%s: axis %d out of range for a %d-d tensor", op, axis, ndim);
    return a;
}

int64_t cx_shape_numel(const char *op, const int *shape, int ndim) {
    if (ndim < 0 || ndim > CX_MAX_DIMS)
        cx_fatal("%s: %d dimensions (at most %d supported)", op, ndim, CX_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) cx_fatal("%s: negative dimension %d", op, shape[i]);
        if (shape[i] && n > INT64_MAX / 16 / shape[i]) cx_fatal("%s: shape too large", op);
        n *= shape[i];
    }
    return n;
}

static void init_header(cx_tensor *t, cx_dtype dt, const int *shape, int ndim, const char *op) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = cx_shape_numel(op, shape, ndim);
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
}

cx_tensor *cx_empty(cx_dtype dt, const int *shape, int ndim) {
    cx_tensor *t = cx_arena_alloc(sizeof *t);
    init_header(t, dt, shape, ndim, "empty");
    t->data = cx_arena_alloc((size_t)t->numel * cx_dtype_size(dt));
    return t;
}

cx_tensor *cx_zeros(const int *shape, int ndim) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    memset(t->data, 0, (size_t)t->numel * 4);
    return t;
}

cx_tensor *cx_full(const int *shape, int ndim, float value) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    cx_fill(t, value);
    return t;
}

cx_tensor *cx_ones(const int *shape, int ndim) { return cx_full(shape, ndim, 1.0f); }

cx_tensor *cx_scalar(float value) {
    int one = 1;
    return cx_full(&one, 1, value);
}

cx_tensor *cx_from_data(const float *data, const int *shape, int ndim) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    if (t->numel) memcpy(t->data, data, (size_t)t->numel * 4);
    return t;
}

cx_tensor *cx_from_i32(const int32_t *data, const int *shape, int ndim) {
    cx_tensor *t = cx_empty(CX_I32, shape, ndim);
    if (t->numel) memcpy(t->data, data, (size_t)t->numel * 4);
    return t;
}

cx_tensor *cx_wrap(float *data, const int *shape, int ndim) {
    cx_tensor *t = cx_arena_alloc(sizeof *t);
    init_header(t, CX_F32, shape, ndim, "wrap");
    t->data = data;
    return t;
}

cx_tensor *cx_rand_uniform_t(const int *shape, int ndim, float lo, float hi) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    cx_fill_uniform(t, lo, hi);
    return t;
}

cx_tensor *cx_randn(const int *shape, int ndim, float mean, float std) {
    cx_tensor *t = cx_empty(CX_F32, shape, ndim);
    cx_fill_normal(t, mean, std);
    return t;
}

cx_tensor *cx_arange(int n) {
    cx_tensor *t = cx_empty(CX_F32, &n, 1);
    for (int i = 0; i < n; i++) CX_F(t)[i] = (float)i;
    return t;
}

cx_tensor *cx_tensor_new(cx_dtype dt, const int *shape, int ndim) {
    (void)cx_shape_numel("tensor_new", shape, ndim); /* validate before allocating (no leak on error) */
    cx_tensor *t = cx_xmalloc(sizeof *t);
    init_header(t, dt, shape, ndim, "tensor_new");
    size_t bytes = (size_t)t->numel * cx_dtype_size(dt);
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0 || !p) {
        free(t); /* no leak when the failure is caught (cx_try) */
        cx_fatal("out of memory allocating a tensor of %zu bytes", bytes);
    }
    memset(p, 0, bytes);
    t->data = p;
    t->persistent = true;
    t->owns_data = true;
    return t;
}

cx_tensor *cx_param_new(const char *name, const int *shape, int ndim) {
    cx_tensor *t = cx_tensor_new(CX_F32, shape, ndim);
    t->requires_grad = true;
    if (name) t->name = cx_xstrdup(name);
    return t;
}

/* src/optim/flat.c: drop a tensor that is being freed from its flat buffer
 * (whose blocks keep holding, and will free, its data and grad). */
void cx_flat_forget_tensor(cx_tensor *t);

void cx_tensor_free(cx_tensor *t) {
    if (!t) return;
    if (!t->persistent) cx_fatal("cx_tensor_free: tensor is arena-owned (freed by cx_arena_reset)");
    if (t->flat) {
        cx_flat_forget_tensor(t); /* data and grad belong to the flat buffer */
    } else {
        if (t->owns_data) free(t->data);
        free(t->grad);
    }
    free(t->name);
    free(t);
}

cx_tensor *cx_tensor_clone(const cx_tensor *t) {
    cx_tensor *c = cx_tensor_new(t->dtype, t->shape, t->ndim);
    memcpy(c->data, t->data, (size_t)t->numel * cx_dtype_size(t->dtype));
    if (t->name) c->name = cx_xstrdup(t->name);
    return c;
}

void cx_tensor_set_name(cx_tensor *t, const char *name) {
    if (!t->persistent) cx_fatal("cx_tensor_set_name: only persistent tensors carry names");
    free(t->name);
    t->name = name ? cx_xstrdup(name) : NULL;
}

static void need_f32(const char *op, const cx_tensor *t) {
    if (t->dtype != CX_F32) cx_fatal("%s: expected an F32 tensor, got %s", op, cx_dtype_name(t->dtype));
}

void cx_fill(cx_tensor *t, float v) {
    need_f32("fill", t);
    float *d = CX_F(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = v;
}

void cx_fill_uniform(cx_tensor *t, float lo, float hi) {
    need_f32("fill_uniform", t);
    float *d = CX_F(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = lo + (hi - lo) * cx_rand_uniform();
}

void cx_fill_normal(cx_tensor *t, float mean, float std) {
    need_f32("fill_normal", t);
    float *d = CX_F(t);
    for (int64_t i = 0; i < t->numel; i++) d[i] = mean + std * cx_rand_normal();
}

/* The recycled gradient buffers of the current backward pass (internal.h). */
#define GRAD_POOL 64
static _Thread_local struct {
    float *p;
    size_t bytes;
} grad_pool[GRAD_POOL];
static _Thread_local int grad_pool_n;
void cx_grad_pool_clear(void) { grad_pool_n = 0; }
void cx_grad_pool_put(float *buf, size_t bytes) {
    if (grad_pool_n == GRAD_POOL) return; /* full: the buffer stays where it is, unused */
    grad_pool[grad_pool_n].p = buf;
    grad_pool[grad_pool_n].bytes = bytes;
    grad_pool_n++;
}
/* The most recently freed buffer of exactly `bytes` (the warmest), or NULL. */
static float *grad_pool_take(size_t bytes) {
    for (int i = grad_pool_n - 1; i >= 0; i--)
        if (grad_pool[i].bytes == bytes) {
            float *p = grad_pool[i].p;
            for (int j = i; j + 1 < grad_pool_n; j++) grad_pool[j] = grad_pool[j + 1];
            grad_pool_n--;
            return p;
        }
    return NULL;
}

/* ---- the gradient sink (internal.h) */
static _Thread_local cx_grad_sink *tl_sink;

static size_t sink_hash(const cx_tensor *t, size_t cap) {
    return (size_t)(((uintptr_t)t >> 4) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

void cx_grad_sink_init(cx_grad_sink *s, cx_tensor *const *keys, int n) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->cap = 16;
    while (s->cap < 2 * (size_t)(n > 0 ? n : 1)) s->cap *= 2;
    s->keys = cx_xcalloc((size_t)(n > 0 ? n : 1), sizeof *s->keys);
    s->bufs = cx_xcalloc((size_t)(n > 0 ? n : 1), sizeof *s->bufs);
    s->claimed = cx_xcalloc((size_t)(n > 0 ? n : 1), sizeof *s->claimed);
    s->slot = cx_xcalloc(s->cap, sizeof *s->slot);
    for (int i = 0; i < n; i++) {
        cx_tensor *t = keys[i];
        need_f32("grad", t);
        size_t h = sink_hash(t, s->cap);
        while (s->slot[h]) {
            if (s->keys[s->slot[h] - 1] == t) cx_fatal("cx_grad_sink_init: tensor %s listed twice", t->name ? t->name : "");
            h = (h + 1) & (s->cap - 1);
        }
        s->slot[h] = i + 1;
        s->keys[i] = t;
        void *p = NULL;
        size_t bytes = (size_t)t->numel * sizeof(float);
        if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0 || !p) {
            cx_grad_sink_free(s);
            cx_fatal("out of memory allocating a gradient of %zu bytes", bytes);
        }
        s->bufs[i] = p;
    }
}

void cx_grad_sink_free(cx_grad_sink *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->bufs ? s->bufs[i] : NULL);
    free(s->keys);
    free(s->bufs);
    free(s->claimed);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

void cx_grad_sink_clear(cx_grad_sink *s) {
    if (s->n) memset(s->claimed, 0, (size_t)s->n * sizeof *s->claimed);
}

cx_grad_sink *cx_grad_sink_set(cx_grad_sink *s) {
    cx_grad_sink *old = tl_sink;
    tl_sink = s;
    return old;
}

static float *sink_claim(cx_grad_sink *s, cx_tensor *t, bool *fresh) {
    size_t h = sink_hash(t, s->cap);
    for (int k; (k = s->slot[h]); h = (h + 1) & (s->cap - 1))
        if (s->keys[k - 1] == t) {
            if (!s->claimed[k - 1]) {
                s->claimed[k - 1] = true;
                *fresh = true;
            }
            return s->bufs[k - 1];
        }
    cx_fatal("batch splitting: backward reached parameter '%s', which is neither the model's nor the optimiser's "
             "(turn batch splitting off: cx_train_opts.split_batch = CX_SPLIT_OFF, or CX_SPLIT_BATCH=0)",
             t->name ? t->name : "(unnamed)");
}

float *cx_grad_claim(cx_tensor *t, bool *fresh) {
    *fresh = false;
    if (tl_sink && t->persistent) return sink_claim(tl_sink, t, fresh);
    if (t->grad) return t->grad;
    need_f32("grad", t);
    size_t bytes = (size_t)t->numel * 4;
    float *reuse = !t->persistent && grad_pool_n ? grad_pool_take(bytes) : NULL;
    if (reuse) {
        t->grad = reuse;
        if (cx_in_try()) cx_try_note_grad(t);
    } else if (t->persistent) {
        void *p = NULL;
        if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0 || !p)
            cx_fatal("out of memory allocating a gradient of %zu bytes", bytes);
        t->grad = p;
    } else {
        t->grad = cx_arena_alloc(bytes);
        if (cx_in_try()) cx_try_note_grad(t);
    }
    *fresh = true;
    return t->grad;
}

float *cx_grad_ensure(cx_tensor *t) {
    bool fresh;
    float *g = cx_grad_claim(t, &fresh);
    if (fresh) memset(g, 0, (size_t)t->numel * sizeof(float));
    return g;
}

void cx_zero_grad(cx_tensor *t) {
    if (t->grad) memset(t->grad, 0, (size_t)t->numel * 4);
}

bool cx_same_shape(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *cx_shape_str(const cx_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    /* once the buffer is full, keep counting with a NULL/0 destination: buf + k
     * past the end of the buffer would be an invalid pointer */
    k += (size_t)snprintf(k < n ? buf + k : NULL, k < n ? n - k : 0, "[");
    for (int i = 0; i < t->ndim; i++)
        k += (size_t)snprintf(k < n ? buf + k : NULL, k < n ? n - k : 0, i ? ", %d" : "%d", t->shape[i]);
    snprintf(k < n ? buf + k : NULL, k < n ? n - k : 0, "]");
    return buf;
}

float cx_get(const cx_tensor *t, int64_t i) {
    if (i < 0 || i >= t->numel) cx_fatal("cx_get: index %lld out of range (numel %lld)",
                                         (long long)i, (long long)t->numel);
    switch (t->dtype) {
    case CX_F32: return CX_F(t)[i];
    case CX_I32: return (float)CX_I32P(t)[i];
    case CX_I64: return (float)CX_I64P(t)[i];
    }
    return 0;
}

float cx_item(const cx_tensor *t) {
    if (t->numel != 1) {
        char b[96];
        cx_fatal("cx_item: tensor of shape %s has %lld elements, expected 1",
                 cx_shape_str(t, b, sizeof b), (long long)t->numel);
    }
    return cx_get(t, 0);
}

void cx_print(const cx_tensor *t, const char *label) {
    char b[96];
    printf("%s%s%s %s (%s):", label ? label : "", label ? " " : "", cx_dtype_name(t->dtype),
           cx_shape_str(t, b, sizeof b), cx_op_name(t));
    int64_t n = t->numel < 64 ? t->numel : 64;
    int last = t->ndim ? t->shape[t->ndim - 1] : 1;
    for (int64_t i = 0; i < n; i++) {
        if (last && i % last == 0) printf("\n ");
        printf(" %.6g", (double)cx_get(t, i));
    }
    if (n < t->numel) printf(" ... (%lld more)", (long long)(t->numel - n));
    printf("\n");
}

/* ---- parameter lists */
void cx_params_init(cx_params *p) { memset(p, 0, sizeof *p); }

void cx_params_add(cx_params *p, cx_tensor *t) {
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->t = cx_xrealloc(p->t, (size_t)p->cap * sizeof *p->t);
    }
    p->t[p->n++] = t;
}

void cx_params_free(cx_params *p) {
    free(p->t);
    memset(p, 0, sizeof *p);
}

cx_tensor *cx_params_find(const cx_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->name && strcmp(p->t[i]->name, name) == 0) return p->t[i];
    return NULL;
}

int64_t cx_params_count(const cx_params *p) {
    int64_t n = 0;
    for (int i = 0; i < p->n; i++) n += p->t[i]->numel;
    return n;
}

void cx_params_zero_grad(const cx_params *p) {
    for (int i = 0; i < p->n; i++) cx_zero_grad(p->t[i]);
}
