/* Modules: Linear, activations, Dropout, Sequential, MLP builder. */
#include "../tensor/internal.h"
#include <math.h>
#include <stdio.h>

cx_tensor *cx_module_forward(cx_module *m, cx_tensor *x) { return m->ops->forward(m, x); }
void cx_module_params(cx_module *m, cx_params *out) {
    if (m->ops->params) m->ops->params(m, out);
}
void cx_module_buffers(cx_module *m, cx_params *out) {
    if (m->ops->buffers) m->ops->buffers(m, out);
}
void cx_module_state(cx_module *m, cx_params *out) {
    cx_module_params(m, out);
    cx_module_buffers(m, out);
}
void cx_module_free(cx_module *m) {
    if (m) m->ops->destroy(m);
}
const char *cx_module_kind(const cx_module *m) { return m->ops->kind; }
void cx_module_describe(const cx_module *m, char *buf, size_t n) {
    if (m->ops->describe) m->ops->describe(m, buf, n);
    else snprintf(buf, n, "%s", m->ops->kind);
}

static void rename_param(cx_tensor *t, const char *prefix) {
    if (!t || !prefix || !*prefix) return;
    size_t n = strlen(prefix) + strlen(t->name ? t->name : "") + 2;
    char *s = cx_xmalloc(n);
    snprintf(s, n, "%s.%s", prefix, t->name ? t->name : "");
    free(t->name);
    t->name = s;
}

/* ---- Linear */
typedef struct {
    cx_module base;
    int in, out;
    cx_tensor *w, *b;
} linear_m;

static cx_tensor *linear_fwd(cx_module *m, cx_tensor *x) {
    linear_m *l = (linear_m *)m;
    return cx_linear(x, l->w, l->b);
}
static void linear_params(cx_module *m, cx_params *out) {
    linear_m *l = (linear_m *)m;
    cx_params_add(out, l->w);
    if (l->b) cx_params_add(out, l->b);
}
static void linear_rename(cx_module *m, const char *prefix) {
    linear_m *l = (linear_m *)m;
    rename_param(l->w, prefix);
    rename_param(l->b, prefix);
}
static void linear_describe(const cx_module *m, char *buf, size_t n) {
    const linear_m *l = (const linear_m *)m;
    snprintf(buf, n, "Linear(%d -> %d%s)", l->in, l->out, l->b ? "" : ", no bias");
}
static void linear_destroy(cx_module *m) {
    linear_m *l = (linear_m *)m;
    cx_tensor_free(l->w);
    cx_tensor_free(l->b);
    free(l);
}
static const cx_module_ops linear_ops = {"Linear", linear_fwd, linear_params, linear_rename,
                                         linear_describe, linear_destroy, NULL};

cx_module *cx_linear_new(int in, int out, bool bias) {
    if (in <= 0 || out <= 0) cx_fatal("Linear: sizes must be positive, got %d -> %d", in, out);
    linear_m *l = cx_xcalloc(1, sizeof *l);
    l->base.ops = &linear_ops;
    l->in = in;
    l->out = out;
    l->w = cx_param_new("weight", (int[]){out, in}, 2);
    /* PyTorch: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)) */
    float bound = 1.0f / sqrtf((float)in);
    cx_fill_uniform(l->w, -bound, bound);
    if (bias) {
        l->b = cx_param_new("bias", (int[]){out}, 1);
        cx_fill_uniform(l->b, -bound, bound);
    }
    return &l->base;
}

static linear_m *as_linear(cx_module *m) {
    if (!m || m->ops != &linear_ops) cx_fatal("expected a Linear module, got %s", m ? m->ops->kind : "NULL");
    return (linear_m *)m;
}
cx_tensor *cx_linear_weight(cx_module *m) { return as_linear(m)->w; }
cx_tensor *cx_linear_bias(cx_module *m) { return as_linear(m)->b; }

/* ---- activations */
static const char *act_names[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu",
                                  "softplus", "maxout", "sign", "softmax", "log_softmax"};

const char *cx_act_name(cx_act a) {
    return (unsigned)a < sizeof act_names / sizeof *act_names ? act_names[a] : "?";
}

bool cx_act_parse(const char *name, cx_act *out) {
    for (unsigned i = 0; i < sizeof act_names / sizeof *act_names; i++)
        if (!strcmp(name, act_names[i])) {
            *out = (cx_act)i;
            return true;
        }
    return false;
}

cx_tensor *cx_activate(cx_act act, float p, cx_tensor *x) {
    switch (act) {
    case CX_ACT_IDENTITY: return x;
    case CX_ACT_RELU: return cx_relu(x);
    case CX_ACT_LEAKY_RELU: return cx_leaky_relu(x, p != 0 ? p : 0.01f);
    case CX_ACT_SIGMOID: return cx_sigmoid(x);
    case CX_ACT_TANH: return cx_tanh(x);
    case CX_ACT_ELU: return cx_elu(x, p != 0 ? p : 1.0f);
    case CX_ACT_GELU: return cx_gelu(x);
    case CX_ACT_SOFTPLUS: return cx_softplus(x, 1.0f, 20.0f);
    case CX_ACT_MAXOUT: return cx_maxout(x, p >= 1 ? (int)p : 2);
    case CX_ACT_SIGN: return cx_threshold_unit(x);
    case CX_ACT_SOFTMAX: return cx_softmax(x, -1);
    case CX_ACT_LOG_SOFTMAX: return cx_log_softmax(x, -1);
    }
    cx_fatal("unknown activation %d", (int)act);
}

typedef struct {
    cx_module base;
    cx_act act;
    float p;
} act_m;
static cx_tensor *act_fwd(cx_module *m, cx_tensor *x) {
    act_m *a = (act_m *)m;
    return cx_activate(a->act, a->p, x);
}
static void act_describe(const cx_module *m, char *buf, size_t n) {
    const act_m *a = (const act_m *)m;
    snprintf(buf, n, "%s", cx_act_name(a->act));
}
static void plain_destroy(cx_module *m) { free(m); }
static const cx_module_ops act_ops = {"Activation", act_fwd, NULL, NULL, act_describe, plain_destroy, NULL};

cx_module *cx_activation_new(cx_act act, float param) {
    if ((unsigned)act >= sizeof act_names / sizeof *act_names) cx_fatal("unknown activation %d", (int)act);
    act_m *a = cx_xcalloc(1, sizeof *a);
    a->base.ops = &act_ops;
    a->act = act;
    a->p = param;
    return &a->base;
}

/* ---- dropout */
typedef struct {
    cx_module base;
    float p;
} drop_m;
static cx_tensor *drop_fwd(cx_module *m, cx_tensor *x) { return cx_dropout(x, ((drop_m *)m)->p); }
static void drop_describe(const cx_module *m, char *buf, size_t n) {
    snprintf(buf, n, "Dropout(p=%g)", (double)((const drop_m *)m)->p);
}
static const cx_module_ops drop_ops = {"Dropout", drop_fwd, NULL, NULL, drop_describe, plain_destroy, NULL};

cx_module *cx_dropout_new(float p) {
    if (!(p >= 0 && p <= 1)) cx_fatal("Dropout: p must be in [0, 1], got %g", (double)p);
    drop_m *d = cx_xcalloc(1, sizeof *d);
    d->base.ops = &drop_ops;
    d->p = p;
    return &d->base;
}

/* ---- Sequential */
typedef struct {
    cx_module base;
    int n, cap;
    cx_module **child;
    char **names;
} seq_m;

static cx_tensor *seq_fwd(cx_module *m, cx_tensor *x) {
    seq_m *s = (seq_m *)m;
    for (int i = 0; i < s->n; i++) x = cx_module_forward(s->child[i], x);
    return x;
}
static void seq_params(cx_module *m, cx_params *out) {
    seq_m *s = (seq_m *)m;
    for (int i = 0; i < s->n; i++) cx_module_params(s->child[i], out);
}
static void seq_buffers(cx_module *m, cx_params *out) {
    seq_m *s = (seq_m *)m;
    for (int i = 0; i < s->n; i++) cx_module_buffers(s->child[i], out);
}
static void seq_rename(cx_module *m, const char *prefix) {
    seq_m *s = (seq_m *)m;
    for (int i = 0; i < s->n; i++)
        if (s->child[i]->ops->rename) s->child[i]->ops->rename(s->child[i], prefix);
}
static void seq_describe(const cx_module *m, char *buf, size_t n) {
    snprintf(buf, n, "Sequential(%d)", ((const seq_m *)m)->n);
}
static void seq_destroy(cx_module *m) {
    seq_m *s = (seq_m *)m;
    for (int i = 0; i < s->n; i++) {
        cx_module_free(s->child[i]);
        free(s->names[i]);
    }
    free(s->child);
    free(s->names);
    free(s);
}
static const cx_module_ops seq_ops = {"Sequential", seq_fwd, seq_params, seq_rename, seq_describe, seq_destroy, seq_buffers};

cx_module *cx_sequential_new(void) {
    seq_m *s = cx_xcalloc(1, sizeof *s);
    s->base.ops = &seq_ops;
    return &s->base;
}

static seq_m *as_seq(const cx_module *m) {
    if (!m || m->ops != &seq_ops) cx_fatal("expected a Sequential module");
    return (seq_m *)m;
}

void cx_sequential_add(cx_module *seq, const char *name, cx_module *child) {
    seq_m *s = as_seq(seq);
    if (!child) cx_fatal("Sequential: NULL child");
    char idx[16];
    if (!name) {
        snprintf(idx, sizeof idx, "%d", s->n);
        name = idx;
    }
    if (!*name || strchr(name, '.')) cx_fatal("Sequential: invalid child name '%s'", name);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) cx_fatal("Sequential: duplicate child name '%s'", name);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->child = cx_xrealloc(s->child, (size_t)s->cap * sizeof *s->child);
        s->names = cx_xrealloc(s->names, (size_t)s->cap * sizeof *s->names);
    }
    s->child[s->n] = child;
    s->names[s->n] = cx_xstrdup(name);
    s->n++;
    if (child->ops->rename) child->ops->rename(child, name);
}

int cx_sequential_len(const cx_module *seq) { return as_seq(seq)->n; }
cx_module *cx_sequential_get(cx_module *seq, int i) {
    seq_m *s = as_seq(seq);
    if (i < 0 || i >= s->n) cx_fatal("Sequential: index %d out of range (%d children)", i, s->n);
    return s->child[i];
}

cx_module *cx_mlp_new(const int *sizes, int n, cx_act act, float dropout) {
    if (n < 2) cx_fatal("mlp: needs at least input and output sizes");
    cx_module *net = cx_sequential_new();
    char name[32];
    for (int i = 0; i + 1 < n; i++) {
        snprintf(name, sizeof name, "fc%d", i + 1);
        cx_sequential_add(net, name, cx_linear_new(sizes[i], sizes[i + 1], true));
        if (i + 2 < n) {
            snprintf(name, sizeof name, "act%d", i + 1);
            cx_sequential_add(net, name, cx_activation_new(act, 0));
            if (dropout > 0) {
                snprintf(name, sizeof name, "drop%d", i + 1);
                cx_sequential_add(net, name, cx_dropout_new(dropout));
            }
        }
    }
    return net;
}

void cx_module_print(cx_module *m) {
    char buf[128];
    int64_t total = 0;
    if (m->ops == &seq_ops) {
        seq_m *s = (seq_m *)m;
        for (int i = 0; i < s->n; i++) {
            cx_params p;
            cx_params_init(&p);
            cx_module_params(s->child[i], &p);
            cx_module_describe(s->child[i], buf, sizeof buf);
            int64_t c = cx_params_count(&p);
            printf("  %-8s %-32s %10lld params\n", s->names[i], buf, (long long)c);
            total += c;
            cx_params_free(&p);
        }
    } else {
        cx_params p;
        cx_params_init(&p);
        cx_module_params(m, &p);
        cx_module_describe(m, buf, sizeof buf);
        total = cx_params_count(&p);
        printf("  %-41s %10lld params\n", buf, (long long)total);
        cx_params_free(&p);
    }
    printf("  total %46lld params\n", (long long)total);
}
