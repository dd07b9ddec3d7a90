/* Modules: Linear, activations, Dropout, Sequential, MLP builder (on the
 * base module of module.c). */
#include "../tensor/internal.h"
#include <math.h>
#include <stdio.h>

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
static void linear_describe(const cx_module *m, char *buf, size_t n) {
    const linear_m *l = (const linear_m *)m;
    snprintf(buf, n, "Linear(%d -> %d%s)", l->in, l->out, l->b ? "" : ", no bias");
}
static const cx_module_ops linear_ops = {.kind = "Linear", .forward = linear_fwd,
                                         .describe = linear_describe, .split_safe = true};

cx_module *cx_linear_new(int in, int out, bool bias) {
    if (in <= 0 || out <= 0) cx_fatal("Linear: sizes must be positive, got %d -> %d", in, out);
    (void)cx_shape_numel("Linear", (const int[]){out, in}, 2); /* before anything is allocated */
    /* the tensors first: a failed allocation (caught by cx_try) leaks nothing */
    cx_tensor *w, *b;
    cx_layer_params_new((int[]){out, in}, 2, bias ? out : 0, &w, &b);
    linear_m *l = cx_xcalloc(1, sizeof *l);
    cx_module_init(&l->base, &linear_ops);
    l->in = in;
    l->out = out;
    l->w = w;
    /* PyTorch: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)) */
    float bound = 1.0f / sqrtf((float)in);
    cx_fill_uniform(l->w, -bound, bound);
    cx_module_add_param(&l->base, "weight", &l->w);
    if (bias) {
        l->b = b;
        cx_fill_uniform(l->b, -bound, bound);
        cx_module_add_param(&l->base, "bias", &l->b);
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
static const cx_module_ops act_ops = {.kind = "Activation", .forward = act_fwd,
                                      .describe = act_describe, .split_safe = true};

cx_module *cx_activation_new(cx_act act, float param) {
    if ((unsigned)act >= sizeof act_names / sizeof *act_names) cx_fatal("unknown activation %d", (int)act);
    act_m *a = cx_xcalloc(1, sizeof *a);
    cx_module_init(&a->base, &act_ops);
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
static const cx_module_ops drop_ops = {.kind = "Dropout", .forward = drop_fwd,
                                       .describe = drop_describe, .split_safe = true};

cx_module *cx_dropout_new(float p) {
    if (!(p >= 0 && p <= 1)) cx_fatal("Dropout: p must be in [0, 1], got %g", (double)p);
    drop_m *d = cx_xcalloc(1, sizeof *d);
    cx_module_init(&d->base, &drop_ops);
    d->p = p;
    return &d->base;
}

/* ---- Sequential: the children, in order */
/* A Linear followed by a ReLU or Tanh activation runs as one op
 * (cx_linear_relu, cx_linear_tanh: the same values and gradients). */
static cx_tensor *seq_fwd(cx_module *m, cx_tensor *x) {
    int n = cx_module_num_children(m);
    for (int i = 0; i < n; i++) {
        cx_module *c = cx_module_child(m, i, NULL);
        if (c->ops == &linear_ops && i + 1 < n) {
            const cx_module *nx = cx_module_child(m, i + 1, NULL);
            const cx_act act = nx->ops == &act_ops ? ((const act_m *)nx)->act : CX_ACT_IDENTITY;
            if (act == CX_ACT_RELU || act == CX_ACT_TANH) {
                const linear_m *l = (const linear_m *)c;
                x = act == CX_ACT_RELU ? cx_linear_relu(x, l->w, l->b) : cx_linear_tanh(x, l->w, l->b);
                i++;
                continue;
            }
        }
        x = cx_module_forward(c, x);
    }
    return x;
}
static void seq_describe(const cx_module *m, char *buf, size_t n) {
    snprintf(buf, n, "Sequential(%d)", cx_module_num_children(m));
}
static const cx_module_ops seq_ops = {.kind = "Sequential", .forward = seq_fwd,
                                      .describe = seq_describe, .split_safe = true};

cx_module *cx_sequential_new(void) {
    cx_module *m = cx_xcalloc(1, sizeof *m);
    cx_module_init(m, &seq_ops);
    return m;
}

static cx_module *as_seq(const cx_module *m) {
    if (!m || m->ops != &seq_ops) cx_fatal("expected a Sequential module");
    return (cx_module *)m;
}

void cx_sequential_add(cx_module *seq, const char *name, cx_module *child) {
    as_seq(seq);
    if (!child) cx_fatal("Sequential: NULL child");
    char idx[16];
    if (!name) {
        snprintf(idx, sizeof idx, "%d", cx_module_num_children(seq));
        name = idx;
    }
    if (!*name || strchr(name, '.')) cx_fatal("Sequential: invalid child name '%s'", name);
    cx_module_add(seq, name, child);
}

int cx_sequential_len(const cx_module *seq) { return cx_module_num_children(as_seq(seq)); }
cx_module *cx_sequential_get(cx_module *seq, int i) {
    int n = cx_sequential_len(seq);
    if (i < 0 || i >= n) cx_fatal("Sequential: index %d out of range (%d children)", i, n);
    return cx_module_child(seq, i, NULL);
}

cx_module *cx_mlp_new(const int *sizes, int n, cx_act act, float dropout) {
    if (n < 2) cx_fatal("mlp: needs at least input and output sizes");
    for (int i = 0; i + 1 < n; i++) { /* every layer checked before anything is allocated */
        if (sizes[i] <= 0 || sizes[i + 1] <= 0)
            cx_fatal("mlp: layer sizes must be positive, got %d -> %d", sizes[i], sizes[i + 1]);
        (void)cx_shape_numel("mlp", (const int[]){sizes[i + 1], sizes[i]}, 2);
    }
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
