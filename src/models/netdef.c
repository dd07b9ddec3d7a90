/* Networks described in text (.net) files: parser, builder, DAG module and
 * model summary (output shapes, parameter counts, receptive fields). */
#include "../autograd/graph.h"
#include "netdef_internal.h"
#include "../nn/layout.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>

typedef enum {
    L_INPUT, L_CONV, L_CONVT, L_POOL, L_ADAPTIVE, L_GAP, L_BN, L_LN, L_UPSAMPLE,
    L_FLATTEN, L_LINEAR, L_DROPOUT, L_ACT, L_ADD, L_CONCAT
} lkind;

#define MAX_FROM 8
#define MAX_KEYS 12

typedef struct {
    lkind kind;
    char kw[24];            /* keyword as written: conv2d, relu, ... */
    int line;
    int from[MAX_FROM], nfrom;
    cx_module *mod;         /* NULL for input, globalavgpool, add, concat */
    cx_layer_info info;
    cx_net_layer_def def;   /* the resolved keys (defaults filled in), for exporters */
    /* fusion (plan_fusion): a relu layer computing relu(bn [+ residual]) as
     * one op has fuse_bn > 0 (the batchnorm layer) and fuse_res (the other
     * input of the add between them, or -1); the layers it absorbs have
     * fused = true and no output in a fused run */
    int fuse_bn, fuse_res;
    bool fused;
    /* channels-last runs (plan_nhwc): a batchnorm whose input is a conv2d
     * read by nothing else has cl_conv = that layer, computed with it as one
     * op (cx_conv2d_bn_nhwc); the conv2d then has cl_absorbed */
    int cl_conv;
    bool cl_absorbed;
} node;

typedef struct {
    cx_module base;
    int n, cap;
    node *nodes;
    int in_shape[CX_MAX_DIMS], in_ndim;
    int nhwc_gap; /* > 0: the layers before this globalavgpool may run channels last (plan_nhwc) */
} net_m;

/* ---------------------------------------------------------------- module ops */
/* Finds the block ends batchnorm -> relu and batchnorm -> add -> relu whose
 * batchnorm (and add) output feeds nothing else, for cx_batchnorm_forward_relu:
 * the same values and gradients in two passes over the data instead of six. */
static void plan_fusion(net_m *net) {
    int *uses = cx_xcalloc((size_t)net->n, sizeof *uses);
    for (int i = 1; i < net->n; i++)
        for (int k = 0; k < net->nodes[i].nfrom; k++) uses[net->nodes[i].from[k]]++;
    for (int i = 1; i < net->n; i++) {
        node *r = &net->nodes[i];
        r->fuse_bn = 0;
        r->fuse_res = -1;
        if (r->kind != L_ACT || r->def.act != CX_ACT_RELU) continue;
        const int j = r->from[0];
        node *a = &net->nodes[j];
        if (uses[j] != 1 || a->fused) continue;
        if (a->kind == L_BN) {
            r->fuse_bn = j;
            a->fused = true;
        } else if (a->kind == L_ADD && a->nfrom == 2) {
            /* a + b and b + a are the same float sum */
            for (int k = 0; k < 2; k++) {
                const int b = a->from[k], other = a->from[1 - k];
                if (b == other || uses[b] != 1 || net->nodes[b].kind != L_BN || net->nodes[b].fused) continue;
                r->fuse_bn = b;
                r->fuse_res = other;
                net->nodes[b].fused = a->fused = true;
                break;
            }
        }
    }
    free(uses);
}


/* A network whose layers up to its first globalavgpool are 2-D
 * convolutions, batch norms, activations and adds (a ResNet's trunk), and
 * whose later layers read nothing from before that pool, can keep its maps
 * channels last ([N, H, W, C]) through the trunk: the convolutions then
 * run on cx_conv2d_nhwc and the batch norms along rows of channels, and the
 * pool's [N, C, 1, 1] is the same in either layout. The forward pass
 * (net_forward) does so; the layer outputs of cx_net_forward_all stay
 * channels first. On by default where it is faster (cx_net_set_channels_last,
 * netdef.h). */
static void plan_nhwc(net_m *net) {
    net->nhwc_gap = 0;
    if (net->in_ndim != 3) return;
    int gap = 0;
    for (int i = 1; i < net->n && !gap; i++)
        if (net->nodes[i].kind == L_GAP) gap = i;
    if (!gap) return;
    for (int i = 1; i < gap; i++) {
        const node *nd = &net->nodes[i];
        if (nd->info.out_ndim != 3) return;
        switch (nd->kind) {
        case L_CONV:
            if (!cx_conv_module_is_conv2d(nd->mod)) return;
            break;
        case L_BN: case L_ACT: case L_ADD: break;
        default: return;
        }
    }
    for (int i = gap + 1; i < net->n; i++)
        for (int k = 0; k < net->nodes[i].nfrom; k++)
            if (net->nodes[i].from[k] < gap) return;
    net->nhwc_gap = gap;
    int *uses = cx_xcalloc((size_t)net->n, sizeof *uses);
    for (int i = 1; i < net->n; i++)
        for (int k = 0; k < net->nodes[i].nfrom; k++) uses[net->nodes[i].from[k]]++;
    for (int i = 1; i < gap; i++) {
        node *nd = &net->nodes[i];
        nd->cl_conv = 0;
        if (nd->kind != L_BN) continue;
        const int j = nd->from[0];
        if (j > 0 && net->nodes[j].kind == L_CONV && uses[j] == 1) {
            nd->cl_conv = j;
            net->nodes[j].cl_absorbed = true;
        }
    }
    free(uses);
}

/* Layer bn (with its absorbed conv2d) as one op on channels-last maps. */
static cx_tensor *conv_bn_cl(net_m *net, cx_tensor **out, const node *bn, cx_tensor *residual, bool relu) {
    const node *cv = &net->nodes[bn->cl_conv];
    cx_tensor *w, *b;
    cx_conv_opts o;
    cx_conv_module_parts(cv->mod, &w, &b, &o);
    cx_bn_parts p;
    cx_batchnorm_parts(bn->mod, &p);
    const bool training = cx_is_training();
    if (training) CX_I64P(p.nbt)[0] += 1;
    return cx_conv2d_bn_nhwc(out[cv->from[0]], w, b, &o, residual, relu, p.rm, p.rv, p.w, p.b, training, p.momentum,
                             p.eps);
}
/* 0: not read yet; 1: on; 2: off */
static _Atomic int nhwc_mode;
static bool nhwc_on(void) {
    int m = nhwc_mode;
    if (!m) {
        const char *e = getenv("CX_NET_NHWC");
        m = e && *e ? (!strcmp(e, "0") ? 2 : 1) : cx_conv_nhwc_preferred() ? 1 : 2;
        nhwc_mode = m;
    }
    return m == 1;
}
void cx_net_set_channels_last(bool on) { nhwc_mode = on ? 1 : 2; }
bool cx_net_channels_last(void) { return nhwc_on(); }

/* Run every layer; returns the arena array of the n layer outputs. fuse:
 * the fused block ends of plan_fusion (the layers they absorb are NULL). */
static cx_tensor **net_run(net_m *net, cx_tensor *x, bool fuse) {
    bool ok = x->ndim == net->in_ndim + 1;
    for (int i = 0; ok && i < net->in_ndim; i++) ok = x->shape[i + 1] == net->in_shape[i];
    if (!ok) {
        char b[96], e[96] = "[N";
        size_t k = 2;
        for (int i = 0; i < net->in_ndim; i++) k += (size_t)snprintf(e + k, sizeof e - k, ", %d", net->in_shape[i]);
        snprintf(e + k, sizeof e - k, "]");
        cx_fatal("Net: input has shape %s, the network expects %s", cx_shape_str(x, b, sizeof b), e);
    }
    cx_tensor **out = cx_arena_alloc((size_t)net->n * sizeof *out);
    /* channels last through the trunk (plan_nhwc): only the fused forward
     * pass, whose layer outputs nobody sees */
    const int cl_end = fuse && net->nhwc_gap > 0 && nhwc_on() ? net->nhwc_gap : 0;
    out[0] = x;
    if (cl_end) {
        const int shp[4] = {x->shape[0], x->shape[2], x->shape[3], x->shape[1]};
        out[0] = x->shape[1] == 1 ? cx_reshape(x, shp, 4) : cx_permute(x, (const int[]){0, 2, 3, 1});
    }
    for (int i = 1; i < net->n; i++) {
        node *nd = &net->nodes[i];
        const bool cl = i <= cl_end;
        if (fuse && nd->fused) {
            out[i] = NULL;
            continue;
        }
        if (cl && nd->cl_absorbed) {
            out[i] = NULL; /* computed by its batchnorm */
            continue;
        }
        if (fuse && nd->fuse_bn > 0) {
            const node *bn = &net->nodes[nd->fuse_bn];
            cx_tensor *res = nd->fuse_res >= 0 ? out[nd->fuse_res] : NULL;
            out[i] = cl && bn->cl_conv ? conv_bn_cl(net, out, bn, res, true)
                     : cl             ? cx_batchnorm_forward_nhwc(bn->mod, out[bn->from[0]], res, true)
                                      : cx_batchnorm_forward_relu(bn->mod, out[bn->from[0]], res);
            continue;
        }
        if (cl && nd->kind == L_BN && nd->cl_conv) {
            out[i] = conv_bn_cl(net, out, nd, NULL, false);
            continue;
        }
        cx_tensor *in = out[nd->from[0]];
        if (cl && i < cl_end && nd->kind == L_CONV) {
            out[i] = cx_conv_module_forward_nhwc(nd->mod, in);
            continue;
        }
        if (cl && i < cl_end && nd->kind == L_BN) {
            out[i] = cx_batchnorm_forward_nhwc(nd->mod, in, NULL, false);
            continue;
        }
        if (cl && i == cl_end) {
            /* [N, H, W, C] -> the mean over H, W -> [N, C, 1, 1] */
            const int N = in->shape[0], C = in->shape[3];
            cx_tensor *m = cx_mean_axis(cx_reshape(in, (const int[]){N, in->shape[1] * in->shape[2], C}, 3), 1, false);
            out[i] = cx_reshape(m, (const int[]){N, C, 1, 1}, 4);
            continue;
        }
        switch (nd->kind) {
        case L_GAP: out[i] = cx_global_avg_pool2d(in); break;
        case L_ADD: {
            cx_tensor *acc = in;
            for (int k = 1; k < nd->nfrom; k++) acc = cx_add(acc, out[nd->from[k]]);
            out[i] = acc;
            break;
        }
        case L_CONCAT: {
            cx_tensor *ts[MAX_FROM];
            for (int k = 0; k < nd->nfrom; k++) ts[k] = out[nd->from[k]];
            out[i] = cx_concat(ts, nd->nfrom, 1);
            break;
        }
        default: out[i] = cx_module_forward(nd->mod, in); break;
        }
    }
    return out;
}

/* x -> the final output, then (when there is room) every layer's output
 * (out[1 + i] = layer i, layer 0 being the input) */
static int net_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    net_m *net = (net_m *)m;
    if (n_in != 1) cx_fatal("Net: takes one input, got %d", n_in);
    cx_tensor **all = net_run(net, in[0], false);
    out[0] = all[net->n - 1];
    int k = 1;
    for (int i = 0; i < net->n && k < max_out; i++) out[k++] = all[i];
    return k;
}

static cx_tensor *net_forward(cx_module *m, cx_tensor *x) {
    net_m *net = (net_m *)m;
    return net_run(net, x, true)[net->n - 1];
}

static void net_describe(const cx_module *m, char *buf, size_t n) {
    const net_m *net = (const net_m *)m;
    snprintf(buf, n, "Net(%d layers)", net->n - 1);
}

/* the layers' modules are children of the base (freed by it) */
static void net_destroy(cx_module *m) { free(((net_m *)m)->nodes); }

static const cx_module_ops net_ops = {.kind = "Net", .forward = net_forward, .call = net_call,
                                      .describe = net_describe, .destroy = net_destroy, .split_safe = true};

static const net_m *as_net(const cx_module *m) {
    if (!m || m->ops != &net_ops) cx_fatal("expected a Net module (from cx_net_parse / cx_net_load)");
    return (const net_m *)m;
}

int cx_net_input_shape(const cx_module *m, int *shape) {
    const net_m *net = as_net(m);
    memcpy(shape, net->in_shape, (size_t)net->in_ndim * sizeof(int));
    return net->in_ndim;
}
int cx_net_num_layers(const cx_module *m) { return as_net(m)->n; }
cx_tensor **cx_net_forward_all(cx_module *m, cx_tensor *x) {
    const net_m *net = as_net(m);
    cx_tensor **out = cx_arena_alloc((size_t)(net->n + 1) * sizeof *out);
    cx_module_call(m, &x, 1, out, net->n + 1);
    return out + 1;
}
const cx_layer_info *cx_net_layer(const cx_module *m, int i) {
    const net_m *net = as_net(m);
    if (i < 0 || i >= net->n) cx_fatal("cx_net_layer: index %d out of range (%d layers)", i, net->n);
    return &net->nodes[i].info;
}

const cx_net_layer_def *cx_net_layer_get(const cx_module *m, int i, const char **kw, const int **from, int *nfrom,
                                         cx_module **mod) {
    const net_m *net = as_net(m);
    if (i < 0 || i >= net->n) cx_fatal("cx_net_layer_get: index %d out of range (%d layers)", i, net->n);
    const node *nd = &net->nodes[i];
    if (kw) *kw = nd->kw;
    if (from) *from = nd->from;
    if (nfrom) *nfrom = nd->nfrom;
    if (mod) *mod = nd->mod;
    return &nd->def;
}

/* ---------------------------------------------------------------- parsing */
typedef struct {
    char key[16];
    char val[64];
} kv;


static const struct {
    const char *kw;
    lkind kind;
    const char *keys; /* allowed keys besides name, from */
} kinds[] = {
    {"input", L_INPUT, ""},
    {"conv1d", L_CONV, "out k s p d g bias"},
    {"conv2d", L_CONV, "out k s p d g bias"},
    {"conv3d", L_CONV, "out k s p d g bias"},
    {"convt2d", L_CONVT, "out k s p op d g bias"},
    {"maxpool2d", L_POOL, "k s p"},
    {"avgpool2d", L_POOL, "k s p"},
    {"maxpool3d", L_POOL, "k s p"},
    {"avgpool3d", L_POOL, "k s p"},
    {"adaptiveavgpool2d", L_ADAPTIVE, "h w"},
    {"globalavgpool", L_GAP, ""},
    {"batchnorm", L_BN, "eps momentum"},
    {"layernorm", L_LN, "dims eps"},
    {"upsample", L_UPSAMPLE, "scale mode align"},
    {"flatten", L_FLATTEN, ""},
    {"linear", L_LINEAR, "out bias"},
    {"dropout", L_DROPOUT, "p"},
    {"relu", L_ACT, ""},
    {"tanh", L_ACT, ""},
    {"sigmoid", L_ACT, ""},
    {"gelu", L_ACT, ""},
    {"elu", L_ACT, "alpha"},
    {"softplus", L_ACT, ""},
    {"identity", L_ACT, ""},
    {"leaky_relu", L_ACT, "slope"},
    {"add", L_ADD, ""},
    {"concat", L_CONCAT, ""},
};

static bool key_allowed(const char *keys, const char *key) {
    size_t n = strlen(key);
    for (const char *p = keys; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, key, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static const char *get(const kv *kvs, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(kvs[i].key, key)) return kvs[i].val;
    return NULL;
}

/* Integer value of `key` (default `def`; required when def == INT_MIN). */
#define REQUIRED (-2147483647 - 1)
static int geti(const char *kw, const kv *kvs, int n, const char *key, int def, int lo, int hi) {
    const char *v = get(kvs, n, key);
    if (!v) {
        if (def == REQUIRED) cx_raise(CX_ERR_FORMAT, "%s needs %s=", kw, key);
        return def;
    }
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        cx_raise(CX_ERR_FORMAT, "%s: %s=%s is not an integer in [%d, %d]", kw, key, v, lo, hi);
    return (int)x;
}

static double getd(const char *kw, const kv *kvs, int n, const char *key, double def, double lo, double hi) {
    const char *v = get(kvs, n, key);
    if (!v) return def;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        cx_raise(CX_ERR_FORMAT, "%s: %s=%s is not a number in [%g, %g]", kw, key, v, lo, hi);
    return x;
}

static bool valid_name(const char *s) {
    if (!*s || strlen(s) >= 48) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_') return false;
    return true;
}

static int find_node(const net_m *net, const char *name) {
    for (int i = 0; i < net->n; i++)
        if (!strcmp(net->nodes[i].info.name, name)) return i;
    return -1;
}

static const char *default_prefix(const char *kw, lkind k) {
    switch (k) {
    case L_CONV: case L_CONVT: return "conv";
    case L_POOL: case L_ADAPTIVE: case L_GAP: return "pool";
    case L_BN: return "bn";
    case L_LN: return "ln";
    case L_LINEAR: return "fc";
    case L_DROPOUT: return "drop";
    case L_UPSAMPLE: return "up";
    default: return kw;
    }
}

/* A syntax error: fmt has two %s (padded with "" where unused). */
static _Noreturn void fail(const char *fmt, const char *a, const char *b) { cx_raise(CX_ERR_FORMAT, fmt, a, b); }

/* Receptive field bookkeeping for a node from its (first) input. */
static void set_rf(node *nd, const node *in, int k, int s, int d, double up) {
    cx_layer_info *o = &nd->info;
    const cx_layer_info *i = &in->info;
    o->rf_all = i->rf_all;
    for (int a = 0; a < 3; a++) {
        o->rf[a] = i->rf[a];
        o->jump[a] = i->jump[a];
    }
    if (o->rf_all || o->spatial == 0) return;
    for (int a = 0; a < o->spatial; a++) {
        if (up > 0) { /* up-sampling by `up` */
            o->jump[a] = i->jump[a] / up;
        } else if (s < 0) { /* transposed conv, stride -s */
            o->jump[a] = i->jump[a] / (double)(-s);
            o->rf[a] = i->rf[a] + (k - 1) * d * o->jump[a];
        } else {
            o->rf[a] = i->rf[a] + (double)(k - 1) * d * i->jump[a];
            o->jump[a] = i->jump[a] * s;
        }
    }
}


/* ---- parse-only shape inference (cx_net_check). Each infer_* function makes
 * the checks the layer's constructor and the probe forward pass of
 * cx_net_parse make, in the same order and with the same messages, on sizes
 * only, and sets the output shape (without the batch dimension) and the
 * parameter count. */

/* "[1, s0, s1, ...]": cx_shape_str of the batch-1 probe tensor */
static const char *probe_str(const int *s, int nd, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[1");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, ", %d", s[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

/* The output shape; its size is checked as the probe tensor's would be. */
static void infer_out(cx_layer_info *o, const char *op, const int *s, int nd) {
    int full[CX_MAX_DIMS + 1] = {1};
    memcpy(full + 1, s, (size_t)nd * sizeof(int));
    (void)cx_shape_numel(op, full, nd + 1);
    memcpy(o->out_shape, s, (size_t)nd * sizeof(int));
    o->out_ndim = nd;
}

static void infer_conv(cx_layer_info *o, const int *is, int dims, bool tr, int outc, int k, int s, int p, int d,
                       int g, int op, bool bias) {
    static const char *const kinds[] = {"", "Conv1d", "Conv2d", "Conv3d"}, *const ops[] = {"", "conv1d", "conv2d",
                                                                                          "conv3d"};
    const char *kind = tr ? "ConvTranspose2d" : kinds[dims], *opn = tr ? "conv_transpose2d" : ops[dims];
    int in = is[0];
    if (in % g || outc % g)
        cx_fatal("%s: groups (%d) must be >= 1 and divide both in_channels (%d) and out_channels (%d)", kind, g, in,
                 outc);
    if (tr && op >= s && op >= d)
        cx_fatal("%s: output_padding (%d) must be >= 0 and smaller than either stride (%d) or dilation (%d)", kind, op,
                 s, d);
    int ws[5] = {tr ? in : outc, tr ? outc / g : in / g, k, k, k};
    int64_t wn = cx_shape_numel(kind, ws, dims + 2);
    int os[4] = {outc};
    char s1[96], s2[96];
    for (int i = 0; i < dims; i++) {
        int L = is[1 + i];
        if (!tr) {
            int span = d * (k - 1) + 1;
            if ((int64_t)span > (int64_t)L + 2 * (int64_t)p)
                cx_fatal("%s: kernel size %d (dilated %d) is larger than the padded input size %lld (dim %d); input %s, "
                         "weight %s", opn, k, span, (long long)L + 2 * p, 2 + i, probe_str(is, dims + 1, s1, sizeof s1),
                         cx_shape_str(&(cx_tensor){.ndim = dims + 2, .shape = {ws[0], ws[1], k, k, k}}, s2, sizeof s2));
            os[1 + i] = cx_conv_out_size(L, k, s, p, d);
        } else {
            int ot = cx_conv_transpose_out_size(L, k, s, p, d, op);
            if (ot < 1)
                cx_fatal("%s: output size %d < 1 along dim %d (input %s, weight %s, stride %d, padding %d, dilation %d, "
                         "output_padding %d)", opn, ot, 2 + i, probe_str(is, dims + 1, s1, sizeof s1),
                         cx_shape_str(&(cx_tensor){.ndim = 4, .shape = {ws[0], ws[1], k, k}}, s2, sizeof s2), s, p, d,
                         op);
            os[1 + i] = ot;
        }
    }
    infer_out(o, opn, os, dims + 1);
    o->params = wn + (bias ? outc : 0);
}

/* pool_out_size of src/nn/pool.c without ceil mode */
static int pool_out(int in, int k, int s, int p) {
    int64_t num = (int64_t)in + 2 * (int64_t)p - k;
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    return o > INT32_MAX ? INT32_MAX : (int)o;
}

static void infer_pool(cx_layer_info *o, const int *is, int dims, bool max, int k, int s, int p) {
    const char *kind = max ? (dims == 2 ? "MaxPool2d" : "MaxPool3d") : (dims == 2 ? "AvgPool2d" : "AvgPool3d");
    const char *opn = max ? (dims == 2 ? "max_pool2d" : "max_pool3d") : (dims == 2 ? "avg_pool2d" : "avg_pool3d");
    if (p > k / 2) cx_fatal("%s: padding %d is more than half the kernel size %d", kind, p, k);
    int os[4] = {is[0]};
    bool bad = false;
    for (int i = 0; i < dims; i++) {
        os[1 + i] = pool_out(is[1 + i], k, s, p);
        bad = bad || os[1 + i] < 1;
    }
    if (bad) {
        char sb[96];
        probe_str(is, dims + 1, sb, sizeof sb);
        if (dims == 2)
            cx_fatal("%s: input %s is too small for kernel %dx%d (stride %dx%d, padding %dx%d): output would be %dx%d",
                     opn, sb, k, k, s, s, p, p, os[1], os[2]);
        cx_fatal("%s: input %s is too small for kernel %dx%dx%d (stride %dx%dx%d, padding %dx%dx%d): output would be "
                 "%dx%dx%d", opn, sb, k, k, k, s, s, s, p, p, p, os[1], os[2], os[3]);
    }
    infer_out(o, opn, os, dims + 1);
}

static void infer_upsample(cx_layer_info *o, const int *is, bool bilinear, double up) {
    const char *opn = bilinear ? "upsample_bilinear2d" : "upsample_nearest2d";
    double fh = floor((double)is[1] * up), fw = floor((double)is[2] * up);
    if (fh < 1 || fw < 1 || fh > INT32_MAX || fw > INT32_MAX) {
        char sb[96];
        cx_fatal("%s: scale %g x %g of input %s gives an output of %.0f x %.0f", opn, up, up,
                 probe_str(is, 3, sb, sizeof sb), fh, fw);
    }
    infer_out(o, opn, (const int[]){is[0], (int)fh, (int)fw}, 3);
}

static void infer_flatten(cx_layer_info *o, const int *is, int ind) {
    int64_t n = 1;
    for (int i = 0; i < ind; i++) n *= is[i];
    if (n > INT32_MAX) {
        char sb[96];
        cx_fatal("flatten: input %s has %lld values per example, more than a dimension can hold",
                 probe_str(is, ind, sb, sizeof sb), (long long)n);
    }
    infer_out(o, "reshape", (const int[]){(int)n}, 1);
}

/* State of one parse, reachable after a failure (cx_try). */
typedef struct {
    net_m *net;
    char *copy;        /* the text, cut into lines */
    cx_tensor **probe; /* dummy batch-1 output of every node */
    int line_no;       /* line being parsed (0: none) */
    bool shapes_only;  /* cx_net_check: no module, no probe (see infer_* above) */
    const cx_st_file *weights; /* the tensors to be loaded (NULL: none) */
} parse_ctx;

/* With weights to load: the layer's weight must have this shape in the file,
 * checked before the layer is built, so that metadata describing a huge
 * network fails at once instead of allocating and initialising it. */
static void expect_weight(const parse_ctx *c, const char *layer, const int *shape, int nd) {
    if (!c->weights) return;
    char name[96], want[96], have[96] = "missing from the file";
    snprintf(name, sizeof name, "%s.weight", layer);
    const cx_tensor *t = cx_st_get(c->weights, name);
    bool ok = t && t->ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
    if (ok) return;
    size_t k = (size_t)snprintf(want, sizeof want, "[");
    for (int i = 0; i < nd && k < sizeof want; i++) k += (size_t)snprintf(want + k, sizeof want - k, i ? ", %d" : "%d", shape[i]);
    if (k < sizeof want) snprintf(want + k, sizeof want - k, "]");
    if (t) {
        char sh[80];
        snprintf(have, sizeof have, "%s in the file", cx_shape_str(t, sh, sizeof sh));
    }
    char msg[320];
    snprintf(msg, sizeof msg, "tensor '%s' is %s", name, have);
    fail("%s, but this layer needs %s (checked before building it)", msg, want);
}

static cx_status parse_body(void *user) {
    parse_ctx *c = user;
    net_m *net = c->net;
    cx_no_grad_begin();
    bool was_training = cx_is_training();
    cx_set_training(false);
    int counters[32] = {0};
    char *save = NULL;
    int ln = 0;
    for (char *lp = c->copy; lp; lp = save) {
        char *nl = strchr(lp, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        ln++;
        c->line_no = ln;
        char *hash = strchr(lp, '#');
        if (hash) *hash = 0;
        /* tokens */
        char *tok[2 + MAX_KEYS + 2];
        int nt = 0;
        for (char *p = lp; *p;) {
            while (*p && isspace((unsigned char)*p)) p++;
            if (!*p) break;
            if (nt == (int)(sizeof tok / sizeof *tok)) fail("too many fields%s%s", "", "");
            tok[nt++] = p;
            while (*p && !isspace((unsigned char)*p)) p++;
            if (*p) *p++ = 0;
        }
        if (nt == 0) continue;
        const char *kw = tok[0];
        int ki = -1;
        for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++)
            if (!strcmp(kinds[i].kw, kw)) ki = (int)i;
        if (ki < 0) fail("unknown layer '%s'%s", kw, "");
        lkind kind = kinds[ki].kind;
        if (net->n == 0 && kind != L_INPUT) fail("the first line must be 'input <shape>', got '%s'%s", kw, "");
        if (net->n > 0 && kind == L_INPUT) fail("'input' may appear only once, on the first line%s%s", "", "");
        if (net->n == net->cap) {
            net->cap = net->cap ? net->cap * 2 : 16;
            net->nodes = cx_xrealloc(net->nodes, (size_t)net->cap * sizeof *net->nodes);
            c->probe = cx_xrealloc(c->probe, (size_t)net->cap * sizeof *c->probe);
        }
        node *nd = &net->nodes[net->n];
        memset(nd, 0, sizeof *nd);
        nd->kind = kind;
        nd->line = ln;
        snprintf(nd->kw, sizeof nd->kw, "%s", kw);
        cx_layer_info *info = &nd->info;

        if (kind == L_INPUT) {
            if (nt < 2 || nt > 5) fail("input needs 1 to 4 sizes (C H W, C L, C D H W or F)%s%s", "", "");
            for (int i = 1; i < nt; i++) {
                char *end;
                long v = strtol(tok[i], &end, 10);
                if (end == tok[i] || *end || v < 1 || v > 1 << 20) fail("input: '%s' is not a positive size%s", tok[i], "");
                net->in_shape[i - 1] = (int)v;
            }
            net->in_ndim = nt - 1;
            snprintf(info->name, sizeof info->name, "input");
            snprintf(info->desc, sizeof info->desc, "Input");
            memcpy(info->out_shape, net->in_shape, sizeof net->in_shape);
            info->out_ndim = net->in_ndim;
            info->spatial = net->in_ndim >= 2 ? net->in_ndim - 1 : 0;
            for (int a = 0; a < 3; a++) info->rf[a] = info->jump[a] = 1;
            int shape[CX_MAX_DIMS + 1] = {1};
            memcpy(shape + 1, net->in_shape, (size_t)net->in_ndim * sizeof(int));
            if (c->shapes_only) (void)cx_shape_numel("empty", shape, net->in_ndim + 1);
            else c->probe[0] = cx_zeros(shape, net->in_ndim + 1);
            net->n = 1;
            continue;
        }
        /* key=value pairs */
        kv kvs[MAX_KEYS];
        int nk = 0;
        const char *name = NULL, *from = NULL;
        for (int i = 1; i < nt; i++) {
            char *eq = strchr(tok[i], '=');
            if (!eq || eq == tok[i]) fail("%s: expected key=value, got '%s'", kw, tok[i]);
            *eq = 0;
            const char *key = tok[i], *val = eq + 1;
            if (!*val) fail("%s: %s= has no value", kw, key);
            if (!strcmp(key, "name")) name = val;
            else if (!strcmp(key, "from")) from = val;
            else if (!key_allowed(kinds[ki].keys, key)) fail("%s: unknown key '%s'", kw, key);
            else {
                if (get(kvs, nk, key)) fail("%s: %s given twice", kw, key);
                if (nk == MAX_KEYS || strlen(key) >= sizeof kvs[0].key || strlen(val) >= sizeof kvs[0].val)
                    fail("%s: key or value too long near '%s'", kw, key);
                snprintf(kvs[nk].key, sizeof kvs[nk].key, "%s", key);
                snprintf(kvs[nk].val, sizeof kvs[nk].val, "%s", val);
                nk++;
            }
        }
        /* name */
        if (name) {
            if (!valid_name(name)) fail("invalid name '%s' (letters, digits, _)%s", name, "");
            if (find_node(net, name) >= 0) fail("duplicate name '%s'%s", name, "");
            snprintf(info->name, sizeof info->name, "%s", name);
        } else {
            const char *pre = default_prefix(kw, kind);
            unsigned slot = (unsigned)((pre[0] * 31u + pre[1]) % 32u);
            do {
                snprintf(info->name, sizeof info->name, "%s%d", pre, ++counters[slot]);
            } while (find_node(net, info->name) >= 0);
        }
        /* inputs */
        if (from) {
            char fb[256];
            snprintf(fb, sizeof fb, "%s", from);
            for (char *f = strtok(fb, ","); f; f = strtok(NULL, ",")) {
                int idx = find_node(net, f);
                if (idx < 0) fail("from=%s: no earlier layer is named '%s'", from, f);
                if (nd->nfrom == MAX_FROM) fail("from=%s: too many inputs%s", from, "");
                nd->from[nd->nfrom++] = idx;
            }
        } else {
            nd->from[nd->nfrom++] = net->n - 1;
        }
        if ((kind == L_ADD || kind == L_CONCAT) && nd->nfrom < 2) fail("%s needs from=a,b (two or more layers)%s", kw, "");
        if (kind != L_ADD && kind != L_CONCAT && nd->nfrom != 1) fail("%s takes one input, from= names %s", kw, from);
        node *in = &net->nodes[nd->from[0]];
        const int *is = in->info.out_shape;
        int ind = in->info.out_ndim;
        char sb[320];
        /* build the module */
        int k = 1, s = 1, p = 0, d = 1;
        double up = 0;
        switch (kind) {
        case L_CONV: case L_CONVT: {
            int dims = kw[4] == '1' ? 1 : kw[4] == '3' ? 3 : 2;
            if (kind == L_CONVT) dims = 2;
            if (ind != dims + 1) {
                snprintf(sb, sizeof sb, "%d-D", dims);
                fail("%s needs a [C, spatial...] input with %s spatial dims", kw, sb);
            }
            int outc = geti(kw, kvs, nk, "out", REQUIRED, 1, 1 << 20);
            k = geti(kw, kvs, nk, "k", REQUIRED, 1, 1024);
            s = geti(kw, kvs, nk, "s", 1, 1, 1024);
            p = geti(kw, kvs, nk, "p", 0, 0, 1024);
            d = geti(kw, kvs, nk, "d", 1, 1, 1024);
            int g = geti(kw, kvs, nk, "g", 1, 1, 1 << 20);
            bool bias = geti(kw, kvs, nk, "bias", 1, 0, 1) != 0;
            nd->def.out = outc;
            nd->def.k = k;
            nd->def.s = s;
            nd->def.p = p;
            nd->def.d = d;
            nd->def.g = g;
            nd->def.bias = bias;
            cx_conv_opts o = cx_conv_defaults();
            for (int a = 0; a < 3; a++) {
                o.stride[a] = s;
                o.padding[a] = p;
                o.dilation[a] = d;
            }
            o.groups = g;
            if (c->weights && g >= 1 && is[0] % g == 0 && outc % g == 0) {
                int ws[5] = {kind == L_CONVT ? is[0] : outc, kind == L_CONVT ? outc / g : is[0] / g, k, k, k};
                expect_weight(c, info->name, ws, dims + 2);
            }
            if (kind == L_CONVT) {
                int op = geti(kw, kvs, nk, "op", 0, 0, 1024);
                nd->def.op = op;
                for (int a = 0; a < 3; a++) o.output_padding[a] = op;
                if (c->shapes_only) infer_conv(info, is, 2, true, outc, k, s, p, d, g, op, bias);
                else nd->mod = cx_conv_transpose2d_new(is[0], outc, k, k, &o, bias);
                s = -s;
            } else if (c->shapes_only) {
                infer_conv(info, is, dims, false, outc, k, s, p, d, g, 0, bias);
            } else if (dims == 1) {
                nd->mod = cx_conv1d_new(is[0], outc, k, &o, bias);
            } else if (dims == 2) {
                nd->mod = cx_conv2d_new(is[0], outc, k, k, &o, bias);
            } else {
                nd->mod = cx_conv3d_new(is[0], outc, k, k, k, &o, bias);
            }
            break;
        }
        case L_POOL: {
            int dims = kw[7] == '3' ? 3 : 2;
            if (ind != dims + 1) {
                snprintf(sb, sizeof sb, "%d-D", dims);
                fail("%s needs a [C, spatial...] input with %s spatial dims", kw, sb);
            }
            k = geti(kw, kvs, nk, "k", REQUIRED, 1, 1024);
            s = geti(kw, kvs, nk, "s", k, 1, 1024);
            p = geti(kw, kvs, nk, "p", 0, 0, 1024);
            nd->def.k = k;
            nd->def.s = s;
            nd->def.p = p;
            cx_pool_kind pk = kw[0] == 'm' ? (dims == 2 ? CX_POOL_MAX2D : CX_POOL_MAX3D)
                                           : (dims == 2 ? CX_POOL_AVG2D : CX_POOL_AVG3D);
            cx_pool_opts o = dims == 2 ? cx_pool2d_defaults(k, k) : cx_pool3d_defaults(k, k, k);
            for (int a = 0; a < dims; a++) {
                o.stride[a] = s;
                o.padding[a] = p;
            }
            if (c->shapes_only) infer_pool(info, is, dims, kw[0] == 'm', k, s, p);
            else nd->mod = cx_pool_new(pk, &o);
            break;
        }
        case L_ADAPTIVE: {
            if (ind != 3) fail("%s needs a [C, H, W] input%s", kw, "");
            int h = geti(kw, kvs, nk, "h", REQUIRED, 1, 1 << 16), w = geti(kw, kvs, nk, "w", REQUIRED, 1, 1 << 16);
            nd->def.h = h;
            nd->def.w = w;
            if (c->shapes_only) infer_out(info, "adaptive_avg_pool2d", (const int[]){is[0], h, w}, 3);
            else nd->mod = cx_adaptive_avgpool2d_new(h, w);
            k = (is[1] + h - 1) / h;
            s = is[1] / h > 0 ? is[1] / h : 1;
            break;
        }
        case L_GAP:
            if (ind != 3) fail("%s needs a [C, H, W] input%s", kw, "");
            if (c->shapes_only) infer_out(info, "global_avg_pool2d", (const int[]){is[0], 1, 1}, 3);
            break;
        case L_BN: {
            if (ind < 1 || ind > 3) fail("%s needs a [F], [C, L] or [C, H, W] input%s", kw, "");
            double eps = getd(kw, kvs, nk, "eps", 1e-5, 0, 1);
            double mom = getd(kw, kvs, nk, "momentum", 0.1, 0, 1);
            nd->def.f = (float)eps;
            if (!c->shapes_only) {
                nd->mod = cx_batchnorm_new_ex(ind == 3 ? 2 : 1, is[0], (float)eps, (float)mom, true);
                break;
            }
            if (!((float)eps > 0)) cx_fatal("BatchNorm%dd: eps must be positive, got %g", ind == 3 ? 2 : 1, (double)(float)eps);
            infer_out(info, "batch_norm", is, ind);
            info->params = 2 * (int64_t)is[0];
            break;
        }
        case L_LN: {
            int dims = geti(kw, kvs, nk, "dims", 1, 1, ind);
            double eps = getd(kw, kvs, nk, "eps", 1e-5, 0, 1);
            nd->def.dims = dims;
            nd->def.f = (float)eps;
            if (!c->shapes_only) {
                nd->mod = cx_layernorm_new_ex(is + ind - dims, dims, (float)eps, true);
                break;
            }
            if (!((float)eps > 0)) cx_fatal("LayerNorm: eps must be positive, got %g", (double)(float)eps);
            info->params = 2 * cx_shape_numel("cx_tensor_new", is + ind - dims, dims);
            infer_out(info, "layer_norm", is, ind);
            break;
        }
        case L_UPSAMPLE: {
            if (ind != 3) fail("%s needs a [C, H, W] input%s", kw, "");
            up = getd(kw, kvs, nk, "scale", 0, 1e-3, 1e3);
            if (up <= 0) fail("%s needs scale=%s", kw, "");
            const char *mode = get(kvs, nk, "mode");
            cx_upsample_mode um = CX_UPSAMPLE_NEAREST;
            if (mode && !strcmp(mode, "bilinear")) um = CX_UPSAMPLE_BILINEAR;
            else if (mode && strcmp(mode, "nearest")) fail("%s: mode=%s (nearest or bilinear)", kw, mode);
            bool align = geti(kw, kvs, nk, "align", 0, 0, 1) != 0;
            nd->def.f = up;
            nd->def.bilinear = um == CX_UPSAMPLE_BILINEAR;
            nd->def.align = align;
            if (c->shapes_only) infer_upsample(info, is, um == CX_UPSAMPLE_BILINEAR, up);
            else nd->mod = cx_upsample_new(um, up, align);
            break;
        }
        case L_FLATTEN:
            if (c->shapes_only) infer_flatten(info, is, ind);
            else nd->mod = cx_flatten_new();
            break;
        case L_LINEAR: {
            int outf = geti(kw, kvs, nk, "out", REQUIRED, 1, 1 << 24);
            expect_weight(c, info->name, (const int[]){outf, is[ind - 1]}, 2);
            bool bias = geti(kw, kvs, nk, "bias", 1, 0, 1) != 0;
            nd->def.out = outf;
            nd->def.bias = bias;
            if (c->shapes_only) {
                info->params = cx_shape_numel("Linear", (const int[]){outf, is[ind - 1]}, 2) + (bias ? outf : 0);
                int os[CX_MAX_DIMS];
                memcpy(os, is, (size_t)ind * sizeof(int));
                os[ind - 1] = outf;
                infer_out(info, "linear", os, ind);
            } else {
                nd->mod = cx_linear_new(is[ind - 1], outf, bias);
            }
            break;
        }
        case L_DROPOUT: {
            float pd = (float)getd(kw, kvs, nk, "p", 0.5, 0, 1);
            nd->def.f = pd;
            if (c->shapes_only) infer_out(info, "dropout", is, ind);
            else nd->mod = cx_dropout_new(pd);
            break;
        }
        case L_ACT: {
            cx_act a;
            if (!cx_act_parse(kw, &a)) fail("unknown activation '%s'%s", kw, "");
            float prm = a == CX_ACT_LEAKY_RELU ? (float)getd(kw, kvs, nk, "slope", 0.01, 0, 1)
                      : a == CX_ACT_ELU ? (float)getd(kw, kvs, nk, "alpha", 1.0, 0, 100) : 0.0f;
            nd->def.act = a;
            nd->def.f = prm;
            if (c->shapes_only) infer_out(info, kw, is, ind);
            else nd->mod = cx_activation_new(a, prm);
            break;
        }
        case L_ADD: case L_CONCAT: {
            for (int j = 1; j < nd->nfrom; j++) {
                const cx_layer_info *o = &net->nodes[nd->from[j]].info;
                bool ok = o->out_ndim == ind;
                for (int a = 0; ok && a < ind; a++)
                    if (kind == L_ADD || a != 0) ok = o->out_shape[a] == is[a];
                if (!ok) {
                    char s1[96], s2[96];
                    snprintf(sb, sizeof sb, "'%s' %s and '%s' %s", in->info.name, probe_str(is, ind, s1, sizeof s1),
                             o->name, probe_str(o->out_shape, o->out_ndim, s2, sizeof s2));
                    fail("%s: inputs do not match: %s", kw, sb);
                }
            }
            if (c->shapes_only) {
                int os[CX_MAX_DIMS];
                memcpy(os, is, (size_t)ind * sizeof(int));
                int64_t ch = os[0];
                if (kind == L_CONCAT)
                    for (int j = 1; j < nd->nfrom; j++) ch += net->nodes[nd->from[j]].info.out_shape[0];
                if (ch > INT32_MAX) cx_fatal("concat: %lld channels, more than a dimension can hold", (long long)ch);
                os[0] = (int)ch;
                infer_out(info, kind == L_ADD ? "add" : "concat", os, ind);
            }
            break;
        }
        case L_INPUT: break;
        }
        if (nd->mod) cx_module_add(&net->base, info->name, nd->mod);
        /* probe: run the layer on the batch-1 outputs of its inputs */
        net->n++;
        if (!c->shapes_only) {
            cx_tensor *x = c->probe[nd->from[0]], *y;
            if (kind == L_GAP) y = cx_global_avg_pool2d(x);
            else if (kind == L_ADD) {
                y = x;
                for (int j = 1; j < nd->nfrom; j++) y = cx_add(y, c->probe[nd->from[j]]);
            } else if (kind == L_CONCAT) {
                cx_tensor *ts[MAX_FROM];
                for (int j = 0; j < nd->nfrom; j++) ts[j] = c->probe[nd->from[j]];
                y = cx_concat(ts, nd->nfrom, 1);
            } else {
                y = cx_module_forward(nd->mod, x);
            }
            c->probe[net->n - 1] = y;
            info->out_ndim = y->ndim - 1;
            memcpy(info->out_shape, y->shape + 1, (size_t)info->out_ndim * sizeof(int));
        }
        if (c->shapes_only) {
            snprintf(info->desc, sizeof info->desc, "%s", kw);
        } else if (nd->mod) {
            cx_module_describe(nd->mod, info->desc, sizeof info->desc);
            cx_params ps;
            cx_params_init(&ps);
            cx_module_params(nd->mod, &ps);
            info->params = cx_params_count(&ps);
            cx_params_free(&ps);
        } else {
            snprintf(info->desc, sizeof info->desc, "%s", kind == L_GAP ? "GlobalAvgPool" : kind == L_ADD ? "Add" : "Concat");
        }
        /* receptive field */
        info->spatial = in->info.spatial;
        if (kind == L_FLATTEN || kind == L_LINEAR || info->out_ndim < 2) info->spatial = 0;
        if (kind == L_CONV || kind == L_CONVT || kind == L_POOL || kind == L_ADAPTIVE) set_rf(nd, in, k, s, d, 0);
        else if (kind == L_UPSAMPLE) set_rf(nd, in, 1, 1, 1, up);
        else set_rf(nd, in, 1, 1, 1, 0);
        if (kind == L_GAP || kind == L_FLATTEN || kind == L_LINEAR || (kind == L_LN && info->spatial > 0 &&
                                                                    geti(kw, kvs, nk, "dims", 1, 1, 8) > 1))
            info->rf_all = true;
        if (kind == L_ADD || kind == L_CONCAT)
            for (int j = 1; j < nd->nfrom; j++) {
                const cx_layer_info *o = &net->nodes[nd->from[j]].info;
                info->rf_all = info->rf_all || o->rf_all;
                for (int a = 0; a < 3; a++) {
                    if (o->rf[a] > info->rf[a]) info->rf[a] = o->rf[a];
                    if (o->jump[a] > info->jump[a]) info->jump[a] = o->jump[a];
                }
            }
    }
    c->line_no = 0;
    if (net->n == 0) fail("empty network (no 'input' line)%s%s", "", "");
    if (net->n == 1) fail("the network has no layers after 'input'%s%s", "", "");
    cx_no_grad_end();
    cx_set_training(was_training);
    return CX_OK;
}

cx_status cx_net_parse(const char *text, const char *source, cx_module **out) {
    return cx_net_parse_for(text, source, NULL, out);
}

cx_status cx_net_parse_for(const char *text, const char *source, const cx_st_file *weights, cx_module **out) {
    *out = NULL;
    const char *src = source ? source : "<net>";
    parse_ctx c = {0};
    c.weights = weights;
    c.net = cx_xcalloc(1, sizeof *c.net);
    cx_module_init(&c.net->base, &net_ops);
    c.copy = cx_xstrdup(text);
    /* the probe tensors are scratch: released with everything else the parse
     * allocated from the arena (cx_try rewinds it on failure) */
    cx_arena *ar = cx_arena_current();
    cx_arena_mark mark = cx_arena_get_mark(ar);
    cx_status st = cx_try(parse_body, &c);
    cx_arena_rewind(ar, mark);
    free(c.copy);
    free(c.probe);
    if (st) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_module_free(&c.net->base);
        if (c.line_no > 0) return cx_set_error(CX_ERR_FORMAT, "%s:%d: %s", src, c.line_no, msg);
        return cx_set_error(CX_ERR_FORMAT, "%s: %s", src, msg);
    }
    plan_fusion(c.net);
    plan_nhwc(c.net);
    *out = &c.net->base;
    return CX_OK;
}

cx_status cx_net_check(const char *text, const char *source, cx_net_shapes **out) {
    *out = NULL;
    const char *src = source ? source : "<net>";
    parse_ctx c = {0};
    c.shapes_only = true;
    c.net = cx_xcalloc(1, sizeof *c.net);
    cx_module_init(&c.net->base, &net_ops);
    c.copy = cx_xstrdup(text);
    cx_status st = cx_try(parse_body, &c);
    free(c.copy);
    free(c.probe);
    net_m *net = c.net;
    if (st) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_module_free(&net->base);
        if (c.line_no > 0) return cx_set_error(CX_ERR_FORMAT, "%s:%d: %s", src, c.line_no, msg);
        return cx_set_error(CX_ERR_FORMAT, "%s: %s", src, msg);
    }
    cx_net_shapes *r = cx_xcalloc(1, sizeof *r);
    r->n = net->n;
    r->in_ndim = net->in_ndim;
    memcpy(r->in_shape, net->in_shape, sizeof r->in_shape);
    r->layers = cx_xcalloc((size_t)net->n, sizeof *r->layers);
    for (int i = 0; i < net->n; i++) {
        r->layers[i] = net->nodes[i].info;
        r->params += net->nodes[i].info.params;
    }
    cx_module_free(&net->base);
    *out = r;
    return CX_OK;
}

void cx_net_shapes_free(cx_net_shapes *s) {
    if (!s) return;
    free(s->layers);
    free(s);
}

cx_status cx_net_load(const char *path, cx_module **out) {
    void *buf;
    size_t n;
    *out = NULL;
    cx_status st = cx_read_file(path, &buf, &n, 1 << 20);
    if (st) return st;
    if (memchr(buf, 0, n)) {
        free(buf);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a text file (NUL byte)", path);
    }
    st = cx_net_parse(buf, path, out);
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- summary */
static void fmt_shape(const int *s, int nd, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < nd && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %d" : "%d", s[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

void cx_net_summary(const cx_module *m, FILE *f) {
    const net_m *net = as_net(m);
    int64_t total = 0;
    fprintf(f, "%-14s %-40s %-18s %10s  %s\n", "layer", "type", "output", "params", "receptive field");
    for (int i = 0; i < net->n; i++) {
        const cx_layer_info *li = &net->nodes[i].info;
        char shape[64], rf[48];
        fmt_shape(li->out_shape, li->out_ndim, shape, sizeof shape);
        if (li->rf_all) snprintf(rf, sizeof rf, "whole input");
        else if (li->spatial == 0) snprintf(rf, sizeof rf, "-");
        else {
            size_t k = 0;
            for (int a = 0; a < li->spatial; a++)
                k += (size_t)snprintf(rf + k, sizeof rf - k, a ? "x%g" : "%g", li->rf[a]);
        }
        fprintf(f, "%-14s %-40s %-18s %10lld  %s\n", li->name, li->desc, shape, (long long)li->params, rf);
        total += li->params;
    }
    cx_params b;
    cx_params_init(&b);
    cx_module_buffers((cx_module *)m, &b);
    fprintf(f, "total: %lld parameters in %d layers", (long long)total, net->n - 1);
    if (b.n) fprintf(f, ", plus %lld buffer values", (long long)cx_params_count(&b));
    fprintf(f, "\n");
    cx_params_free(&b);
}
