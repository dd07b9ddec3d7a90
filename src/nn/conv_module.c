/* Convolution modules (Conv1d/2d/3d, ConvTranspose2d) and Flatten. */
#include "../tensor/internal.h"
#include "layout.h"
#include <math.h>
#include <stdio.h>

typedef struct {
    cx_module base;
    int nd;           /* spatial dims */
    bool transposed;
    int in, out;
    int k[3];
    cx_conv_opts o;   /* normalised: stride / dilation / groups >= 1 */
    cx_tensor *w, *b;
} conv_m;

static cx_tensor *conv_fwd(cx_module *m, cx_tensor *x) {
    conv_m *c = (conv_m *)m;
    char s1[96];
    if (x->ndim != c->nd + 2)
        cx_fatal("%s: expected a %d-D input [N, C, ...], got %s", m->ops->kind, c->nd + 2,
                 cx_shape_str(x, s1, sizeof s1));
    return c->transposed ? cx_conv_transpose(x, c->w, c->b, &c->o) : cx_conv(x, c->w, c->b, &c->o);
}

/* "5x5" or "2" from the first nd values of v. */
static void dims_str(char *buf, size_t n, const int *v, int nd) {
    bool same = true;
    for (int i = 1; i < nd; i++) same &= v[i] == v[0];
    if (same && nd > 0) {
        snprintf(buf, n, "%d", v[0]);
        return;
    }
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < nd && len < n; i++) {
        int w = snprintf(buf + len, n - len, i ? "x%d" : "%d", v[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static bool all_eq(const int *v, int nd, int x) {
    for (int i = 0; i < nd; i++)
        if (v[i] != x) return false;
    return true;
}

static void conv_describe(const cx_module *m, char *buf, size_t n) {
    const conv_m *c = (const conv_m *)m;
    char k[48], s[48], p[48], d[48], op[48];
    /* the kernel always shows every dim ("5x5"); 1-D shows "3" */
    size_t len = 0;
    k[0] = 0;
    for (int i = 0; i < c->nd; i++) len += (size_t)snprintf(k + len, sizeof k - len, i ? "x%d" : "%d", c->k[i]);
    dims_str(s, sizeof s, c->o.stride, c->nd);
    dims_str(p, sizeof p, c->o.padding, c->nd);
    dims_str(d, sizeof d, c->o.dilation, c->nd);
    dims_str(op, sizeof op, c->o.output_padding, c->nd);
    char extra[160] = "";
    size_t el = 0;
    if (!all_eq(c->o.dilation, c->nd, 1)) el += (size_t)snprintf(extra + el, sizeof extra - el, ", d=%s", d);
    if (c->o.groups != 1) el += (size_t)snprintf(extra + el, sizeof extra - el, ", g=%d", c->o.groups);
    if (c->transposed && !all_eq(c->o.output_padding, c->nd, 0))
        el += (size_t)snprintf(extra + el, sizeof extra - el, ", op=%s", op);
    if (!c->b) snprintf(extra + el, sizeof extra - el, ", no bias");
    snprintf(buf, n, "%s(%d -> %d, k=%s, s=%s, p=%s%s)", m->ops->kind, c->in, c->out, k, s, p, extra);
}
static const cx_module_ops conv1d_ops = {.kind = "Conv1d", .forward = conv_fwd,
                                         .describe = conv_describe, .split_safe = true};
static const cx_module_ops conv2d_ops = {.kind = "Conv2d", .forward = conv_fwd,
                                         .describe = conv_describe, .split_safe = true};
static const cx_module_ops conv3d_ops = {.kind = "Conv3d", .forward = conv_fwd,
                                         .describe = conv_describe, .split_safe = true};
static const cx_module_ops convt2d_ops = {.kind = "ConvTranspose2d", .forward = conv_fwd,
                                          .describe = conv_describe, .split_safe = true};

bool cx_conv_module_is_conv2d(const cx_module *m) { return m && m->ops == &conv2d_ops; }
void cx_conv_module_parts(cx_module *m, cx_tensor **w, cx_tensor **b, cx_conv_opts *o) {
    if (!cx_conv_module_is_conv2d(m)) cx_fatal("cx_conv_module_parts: %s is not a Conv2d", m ? m->ops->kind : "NULL");
    conv_m *c = (conv_m *)m;
    *w = c->w;
    *b = c->b;
    *o = c->o;
}
cx_tensor *cx_conv_module_forward_nhwc(cx_module *m, cx_tensor *x) {
    if (!cx_conv_module_is_conv2d(m)) cx_fatal("channels-last forward: %s is not a Conv2d", m ? m->ops->kind : "NULL");
    conv_m *c = (conv_m *)m;
    return cx_conv2d_nhwc(x, c->w, c->b, &c->o);
}

static cx_module *conv_new(const cx_module_ops *ops, int nd, bool transposed, int in, int out,
                           const int *k, const cx_conv_opts *o, bool bias) {
    const char *kind = ops->kind;
    cx_conv_opts oo = o ? *o : cx_conv_defaults();
    if (oo.groups == 0) oo.groups = 1;
    if (in <= 0 || out <= 0) cx_fatal("%s: channels must be positive, got %d -> %d", kind, in, out);
    if (oo.groups < 1 || in % oo.groups || out % oo.groups)
        cx_fatal("%s: groups (%d) must be >= 1 and divide both in_channels (%d) and out_channels (%d)",
                 kind, oo.groups, in, out);
    int64_t rf = 1;
    for (int i = 0; i < nd; i++) {
        if (k[i] < 1) cx_fatal("%s: kernel size must be >= 1, got %d", kind, k[i]);
        if (oo.stride[i] == 0) oo.stride[i] = 1;
        if (oo.dilation[i] == 0) oo.dilation[i] = 1;
        if (oo.stride[i] < 1 || oo.dilation[i] < 1 || oo.padding[i] < 0)
            cx_fatal("%s: stride (%d) and dilation (%d) must be >= 1, padding (%d) >= 0", kind,
                     oo.stride[i], oo.dilation[i], oo.padding[i]);
        if (!transposed) oo.output_padding[i] = 0;
        else if (oo.output_padding[i] < 0 ||
                 (oo.output_padding[i] >= oo.stride[i] && oo.output_padding[i] >= oo.dilation[i]))
            cx_fatal("%s: output_padding (%d) must be >= 0 and smaller than either stride (%d) or "
                     "dilation (%d)", kind, oo.output_padding[i], oo.stride[i], oo.dilation[i]);
        rf *= k[i];
    }
    for (int i = nd; i < 3; i++) {
        oo.stride[i] = oo.dilation[i] = 1;
        oo.padding[i] = oo.output_padding[i] = 0;
    }
    {   /* the weight's size is checked before anything is allocated (no leak
         * when the failure is caught by cx_try) */
        int ws[5] = {transposed ? in : out, transposed ? out / oo.groups : in / oo.groups, 1, 1, 1};
        for (int i = 0; i < nd; i++) ws[2 + i] = k[i];
        (void)cx_shape_numel(kind, ws, nd + 2);
    }
    int shape[5];
    /* conv: [out, in/g, k...]; transposed: [in, out/g, k...] */
    shape[0] = transposed ? in : out;
    shape[1] = transposed ? out / oo.groups : in / oo.groups;
    for (int i = 0; i < nd; i++) shape[2 + i] = k[i];
    /* the tensors first: a failed allocation (caught by cx_try) leaks nothing */
    cx_tensor *w, *b;
    cx_layer_params_new(shape, nd + 2, bias ? out : 0, &w, &b);
    conv_m *c = cx_xcalloc(1, sizeof *c);
    cx_module_init(&c->base, ops);
    c->nd = nd;
    c->transposed = transposed;
    c->in = in;
    c->out = out;
    c->o = oo;
    for (int i = 0; i < nd; i++) c->k[i] = k[i];
    c->w = w;
    /* PyTorch: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
     * fan_in = weight.size(1) * receptive field; the bias uses the same bound. */
    double fan_in = (double)shape[1] * (double)rf;
    float bound = (float)(1.0 / sqrt(fan_in));
    cx_fill_uniform(c->w, -bound, bound);
    cx_module_add_param(&c->base, "weight", &c->w);
    if (bias) {
        c->b = b;
        cx_fill_uniform(c->b, -bound, bound);
        cx_module_add_param(&c->base, "bias", &c->b);
    }
    return &c->base;
}

cx_module *cx_conv1d_new(int in, int out, int kernel, const cx_conv_opts *o, bool bias) {
    return conv_new(&conv1d_ops, 1, false, in, out, (int[]){kernel}, o, bias);
}
cx_module *cx_conv2d_new(int in, int out, int kh, int kw, const cx_conv_opts *o, bool bias) {
    return conv_new(&conv2d_ops, 2, false, in, out, (int[]){kh, kw}, o, bias);
}
cx_module *cx_conv3d_new(int in, int out, int kd, int kh, int kw, const cx_conv_opts *o, bool bias) {
    return conv_new(&conv3d_ops, 3, false, in, out, (int[]){kd, kh, kw}, o, bias);
}
cx_module *cx_conv_transpose2d_new(int in, int out, int kh, int kw, const cx_conv_opts *o,
                                   bool bias) {
    return conv_new(&convt2d_ops, 2, true, in, out, (int[]){kh, kw}, o, bias);
}

static conv_m *as_conv(cx_module *m) {
    if (!m || (m->ops != &conv1d_ops && m->ops != &conv2d_ops && m->ops != &conv3d_ops &&
               m->ops != &convt2d_ops))
        cx_fatal("expected a convolution module, got %s", m ? m->ops->kind : "NULL");
    return (conv_m *)m;
}
cx_tensor *cx_conv_weight(cx_module *m) { return as_conv(m)->w; }
cx_tensor *cx_conv_bias(cx_module *m) { return as_conv(m)->b; }

/* ---- Flatten */
static cx_tensor *flatten_fwd(cx_module *m, cx_tensor *x) {
    (void)m;
    return cx_flatten(x);
}
static void flatten_describe(const cx_module *m, char *buf, size_t n) {
    (void)m;
    snprintf(buf, n, "Flatten()");
}
static const cx_module_ops flatten_ops = {.kind = "Flatten", .forward = flatten_fwd,
                                          .describe = flatten_describe, .split_safe = true};

cx_module *cx_flatten_new(void) {
    cx_module *m = cx_xcalloc(1, sizeof *m);
    cx_module_init(m, &flatten_ops);
    return m;
}
