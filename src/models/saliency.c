/* Explanations of a trained network (cortex/saliency.h): gradient saliency,
 * Grad-CAM, receptive boxes and the strongest patches of a unit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/netdef.h"
#include "cortex/saliency.h"
#include "models/netdef_internal.h"
#include "tensor/internal.h"

void cx_resize_bilinear(const float *src, int h, int w, float *dst, int oh, int ow) {
    if (!src || !dst) cx_fatal("cx_resize_bilinear: NULL plane");
    if (h < 1 || w < 1 || oh < 1 || ow < 1) cx_fatal("cx_resize_bilinear: sizes %dx%d -> %dx%d must be positive", h, w, oh, ow);
    double sy = (double)h / oh, sx = (double)w / ow;
    for (int y = 0; y < oh; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > h - 1) y0 = h - 1;
        int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        float ly = (float)(fy - y0);
        for (int x = 0; x < ow; x++) {
            double fx = (x + 0.5) * sx - 0.5;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > w - 1) x0 = w - 1;
            int x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            float lx = (float)(fx - x0);
            float top = (1 - lx) * src[(long)y0 * w + x0] + lx * src[(long)y0 * w + x1];
            float bot = (1 - lx) * src[(long)y1 * w + x0] + lx * src[(long)y1 * w + x1];
            dst[(long)y * ow + x] = (1 - ly) * top + ly * bot;
        }
    }
}

/* ---------------------------------------------------------------- evaluation mode */
/* Evaluation mode without parameter gradients for the duration of a call:
 * the parameters stop requiring grad (so backward reaches the input and the
 * activations only), training mode off; restored by eval_end. */
typedef struct {
    cx_params ps;
    bool *req;
    bool training;
    cx_arena *arena;
    cx_arena_mark mark;
} eval_state;

static void eval_begin(cx_module *m, eval_state *s) {
    cx_params_init(&s->ps);
    cx_module_params(m, &s->ps);
    s->req = cx_xcalloc((size_t)s->ps.n + 1, sizeof *s->req);
    for (int i = 0; i < s->ps.n; i++) {
        s->req[i] = s->ps.t[i]->requires_grad;
        s->ps.t[i]->requires_grad = false;
    }
    s->training = cx_is_training();
    cx_set_training(false);
    s->arena = cx_arena_current();
    s->mark = cx_arena_get_mark(s->arena);
}

static void eval_end(eval_state *s) {
    cx_arena_rewind(s->arena, s->mark);
    cx_set_training(s->training);
    for (int i = 0; i < s->ps.n; i++) s->ps.t[i]->requires_grad = s->req[i];
    free(s->req);
    cx_params_free(&s->ps);
}

static bool is_net(const cx_module *m) { return m && !strcmp(cx_module_kind(m), "Net"); }

/* x is [1, C, H, W] F32 and, for a Net, its input shape. */
static cx_status check_image(const char *fn, const cx_module *m, const cx_tensor *x) {
    char b[96];
    if (x->dtype != CX_F32 || x->ndim != 4 || x->shape[0] != 1)
        return cx_set_error(CX_ERR_ARG, "%s: x must be one F32 image [1, C, H, W], got %s %s", fn,
                            cx_dtype_name(x->dtype), cx_shape_str(x, b, sizeof b));
    if (is_net(m)) {
        int s[CX_MAX_DIMS], n = cx_net_input_shape(m, s);
        if (n != 3 || s[0] != x->shape[1] || s[1] != x->shape[2] || s[2] != x->shape[3])
            return cx_set_error(CX_ERR_ARG, "%s: the network takes [%d, %d, %d] inputs%s, x is %s", fn, s[0],
                                n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n != 3 ? " (not images)" : "",
                                cx_shape_str(x, b, sizeof b));
    }
    if (!cx_grad_enabled())
        return cx_set_error(CX_ERR_ARG, "%s: grad mode is off (called inside cx_no_grad_begin/end): the "
                                        "gradients it needs are not recorded", fn);
    return CX_OK;
}

/* The class to explain: cls, or (cls < 0) the largest score of y [1, K]. */
static cx_status pick_class(const char *fn, const cx_tensor *y, int cls, int *out) {
    char b[96];
    if (y->ndim != 2 || y->shape[0] != 1)
        return cx_set_error(CX_ERR_ARG, "%s: the model's output is %s, expected class scores [1, K]", fn,
                            cx_shape_str(y, b, sizeof b));
    int K = y->shape[1];
    if (cls >= K) return cx_set_error(CX_ERR_ARG, "%s: class %d is out of range: the model has %d classes", fn, cls, K);
    if (cls < 0) {
        cls = 0;
        for (int k = 1; k < K; k++)
            if (CX_F(y)[k] > CX_F(y)[cls]) cls = k;
    }
    *out = cls;
    return CX_OK;
}

/* ---------------------------------------------------------------- gradient saliency */
typedef struct {
    cx_module *m;
    const cx_tensor *x;
    int cls;
    cx_saliency_result *r;
} sal_job;

static cx_status saliency_run(void *user) {
    sal_job *j = user;
    cx_saliency_result *r = j->r;
    cx_tensor *xi = cx_from_data(CX_F(j->x), j->x->shape, 4);
    xi->requires_grad = true;
    cx_tensor *y = cx_module_forward(j->m, xi);
    cx_status st = pick_class("cx_saliency", y, j->cls, &r->cls);
    if (st) return st;
    r->score = CX_F(y)[r->cls];
    float *g = cx_arena_alloc((size_t)y->numel * sizeof *g);
    memset(g, 0, (size_t)y->numel * sizeof *g);
    g[r->cls] = 1;
    if (y->requires_grad) cx_backward_with(y, g);
    long plane = (long)r->h * r->w;
    for (long i = 0; i < r->c * plane; i++) r->grad[i] = xi->grad ? xi->grad[i] : 0.0f;
    for (long i = 0; i < plane; i++) {
        float m = 0;
        for (int c = 0; c < r->c; c++) m = fmaxf(m, fabsf(r->grad[c * plane + i]));
        r->map[i] = m;
    }
    return CX_OK;
}

cx_status cx_saliency(cx_module *model, const cx_tensor *x, int cls, cx_saliency_result *out) {
    if (!model || !x || !out) cx_fatal("cx_saliency: NULL argument");
    memset(out, 0, sizeof *out);
    cx_status st = check_image("cx_saliency", model, x);
    if (st) return st;
    cx_saliency_result r = {.c = x->shape[1], .h = x->shape[2], .w = x->shape[3]};
    r.grad = malloc(sizeof(float) * (size_t)x->numel);
    r.map = malloc(sizeof(float) * (size_t)r.h * (size_t)r.w);
    if (!r.grad || !r.map) {
        cx_saliency_free(&r);
        return cx_set_error(CX_ERR_NOMEM, "cx_saliency: out of memory");
    }
    eval_state es;
    eval_begin(model, &es);
    sal_job j = {model, x, cls, &r};
    st = cx_try(saliency_run, &j);
    eval_end(&es);
    if (st) {
        cx_saliency_free(&r);
        return st;
    }
    *out = r;
    return CX_OK;
}

void cx_saliency_free(cx_saliency_result *r) {
    if (!r) return;
    free(r->grad);
    free(r->map);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- Grad-CAM */
static bool is_act_kw(const char *kw) {
    static const char *const acts[] = {"relu", "tanh", "sigmoid", "gelu", "elu", "softplus", "identity", "leaky_relu"};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++)
        if (!strcmp(kw, acts[i])) return true;
    return false;
}

static const char *layer_kw(const cx_module *net, int i) {
    const char *kw = NULL;
    cx_net_layer_get(net, i, &kw, NULL, NULL, NULL);
    return kw;
}

static int find_layer(const cx_module *net, const char *name) {
    for (int i = 0; i < cx_net_num_layers(net); i++)
        if (!strcmp(cx_net_layer(net, i)->name, name)) return i;
    return -1;
}

typedef struct {
    cx_module *net;
    const cx_tensor *x;
    int cls;
    cx_gradcam_result *r;
} cam_job;

static cx_status gradcam_run(void *user) {
    cam_job *j = user;
    cx_gradcam_result *r = j->r;
    cx_tensor *xi = cx_from_data(CX_F(j->x), j->x->shape, 4);
    xi->requires_grad = true; /* so the graph is recorded although the parameters do not require grad */
    cx_tensor **outs = cx_net_forward_all(j->net, xi);
    cx_tensor *y = outs[cx_net_num_layers(j->net) - 1], *A = outs[r->layer];
    cx_status st = pick_class("cx_gradcam", y, j->cls, &r->cls);
    if (st) return st;
    r->score = CX_F(y)[r->cls];
    float *g = cx_arena_alloc((size_t)y->numel * sizeof *g);
    memset(g, 0, (size_t)y->numel * sizeof *g);
    g[r->cls] = 1;
    if (y->requires_grad) cx_backward_with(y, g);
    long plane = (long)r->h * r->w;
    const float *a = CX_F(A), *ga = A->grad;
    for (int k = 0; k < r->k; k++) {
        double s = 0;
        for (long i = 0; ga && i < plane; i++) s += ga[k * plane + i];
        r->alpha[k] = (float)(s / (double)plane);
    }
    for (long i = 0; i < plane; i++) {
        double s = 0;
        for (int k = 0; k < r->k; k++) s += (double)r->alpha[k] * a[k * plane + i];
        r->cam[i] = s > 0 ? (float)s : 0.0f;
    }
    cx_resize_bilinear(r->cam, r->h, r->w, r->up, r->in_h, r->in_w);
    return CX_OK;
}

cx_status cx_gradcam(cx_module *net, const cx_tensor *x, const char *layer, int cls, cx_gradcam_result *out) {
    if (!net || !x || !out) cx_fatal("cx_gradcam: NULL argument");
    memset(out, 0, sizeof *out);
    if (!is_net(net))
        return cx_set_error(CX_ERR_ARG, "cx_gradcam: the model is a %s, not a Net (cortex/netdef.h): its layers have no names",
                            cx_module_kind(net));
    cx_status st = check_image("cx_gradcam", net, x);
    if (st) return st;
    int n = cx_net_num_layers(net), li = -1;
    if (layer) {
        li = find_layer(net, layer);
        if (li < 0) return cx_set_error(CX_ERR_ARG, "cx_gradcam: the network has no layer named '%s'", layer);
    } else {
        for (int i = 0; i < n; i++)
            if (!strcmp(layer_kw(net, i), "conv2d")) li = i;
        if (li < 0) return cx_set_error(CX_ERR_ARG, "cx_gradcam: the network has no conv2d layer");
    }
    const cx_layer_info *info = cx_net_layer(net, li);
    if (info->out_ndim != 3)
        return cx_set_error(CX_ERR_ARG, "cx_gradcam: layer '%s' (%s) has no [channels, height, width] output",
                            info->name, info->desc);
    cx_gradcam_result r = {.conv = li, .layer = li, .in_h = x->shape[2], .in_w = x->shape[3]};
    if (!strncmp(layer_kw(net, li), "conv", 4) && li + 1 < n) {
        const int *from;
        int nfrom;
        const char *kw;
        cx_net_layer_get(net, li + 1, &kw, &from, &nfrom, NULL);
        if (is_act_kw(kw) && nfrom == 1 && from[0] == li) r.layer = li + 1;
    }
    info = cx_net_layer(net, r.layer);
    r.k = info->out_shape[0];
    r.h = info->out_shape[1];
    r.w = info->out_shape[2];
    r.alpha = malloc(sizeof(float) * (size_t)r.k);
    r.cam = malloc(sizeof(float) * (size_t)r.h * (size_t)r.w);
    r.up = malloc(sizeof(float) * (size_t)r.in_h * (size_t)r.in_w);
    if (!r.alpha || !r.cam || !r.up) {
        cx_gradcam_free(&r);
        return cx_set_error(CX_ERR_NOMEM, "cx_gradcam: out of memory");
    }
    eval_state es;
    eval_begin(net, &es);
    cam_job j = {net, x, cls, &r};
    st = cx_try(gradcam_run, &j);
    eval_end(&es);
    if (st) {
        cx_gradcam_free(&r);
        return st;
    }
    *out = r;
    return CX_OK;
}

void cx_gradcam_free(cx_gradcam_result *r) {
    if (!r) return;
    free(r->alpha);
    free(r->cam);
    free(r->up);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- receptive boxes */
typedef struct {
    bool set;
    long y0, x0, y1, x1;
} rbox;

static void box_union(rbox *d, long y0, long x0, long y1, long x1) {
    if (!d->set) {
        *d = (rbox){true, y0, x0, y1, x1};
        return;
    }
    if (y0 < d->y0) d->y0 = y0;
    if (x0 < d->x0) d->x0 = x0;
    if (y1 > d->y1) d->y1 = y1;
    if (x1 > d->x1) d->x1 = x1;
}

/* upsample by f: the source rows read by output rows a..b */
static void up_range(long a, long b, double f, bool bilinear, long n_in, long *o0, long *o1) {
    if (bilinear) {
        *o0 = (long)floor((a + 0.5) / f - 0.5);
        *o1 = (long)floor((b + 0.5) / f - 0.5) + 1;
    } else {
        *o0 = (long)floor(a / f);
        *o1 = (long)floor(b / f);
    }
    if (*o0 < 0) *o0 = 0;
    if (*o1 > n_in - 1) *o1 = n_in - 1;
    if (*o0 > *o1) *o0 = *o1;
}

cx_status cx_net_receptive_box(const cx_module *net, int layer, int y, int x, int box[4]) {
    if (!net || !box) cx_fatal("cx_net_receptive_box: NULL argument");
    if (!is_net(net)) return cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: the model is a %s, not a Net", cx_module_kind(net));
    int n = cx_net_num_layers(net);
    if (layer < 0 || layer >= n)
        return cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: layer %d is out of range (%d layers)", layer, n);
    const cx_layer_info *li = cx_net_layer(net, layer);
    if (li->out_ndim != 3)
        return cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: layer '%s' (%s) has no 2-D [C, H, W] output", li->name,
                            li->desc);
    if (y < 0 || y >= li->out_shape[1] || x < 0 || x >= li->out_shape[2])
        return cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: position (%d, %d) is outside layer '%s' (%dx%d)", y, x,
                            li->name, li->out_shape[1], li->out_shape[2]);
    rbox *b = cx_xcalloc((size_t)n, sizeof *b);
    b[layer] = (rbox){true, y, x, y, x};
    cx_status st = CX_OK;
    /* layers are in order (every from= names an earlier line): one pass backwards */
    for (int i = layer; i > 0 && !st; i--) {
        if (!b[i].set) continue;
        const char *kw;
        const int *from;
        int nfrom;
        const cx_net_layer_def *d = cx_net_layer_get(net, i, &kw, &from, &nfrom, NULL);
        const cx_layer_info *me = cx_net_layer(net, i);
        for (int j = 0; j < nfrom && !st; j++) {
            const cx_layer_info *in = cx_net_layer(net, from[j]);
            rbox r = b[i];
            if (in->out_ndim != 3) {
                st = cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: layer '%s' reads '%s', which has no 2-D [C, H, W] output",
                                  me->name, in->name);
                break;
            }
            if (!strcmp(kw, "conv2d") || !strcmp(kw, "maxpool2d") || !strcmp(kw, "avgpool2d")) {
                long s = d->s > 0 ? d->s : 1, dil = d->d > 0 ? d->d : 1, k = d->k, p = d->p;
                box_union(&b[from[j]], r.y0 * s - p, r.x0 * s - p, r.y1 * s - p + (k - 1) * dil,
                          r.x1 * s - p + (k - 1) * dil);
            } else if (!strcmp(kw, "upsample")) {
                long y0, y1, x0, x1;
                up_range(r.y0, r.y1, d->f, d->bilinear, in->out_shape[1], &y0, &y1);
                up_range(r.x0, r.x1, d->f, d->bilinear, in->out_shape[2], &x0, &x1);
                box_union(&b[from[j]], y0, x0, y1, x1);
            } else if (!strcmp(kw, "adaptiveavgpool2d") || !strcmp(kw, "globalavgpool") || !strcmp(kw, "flatten") ||
                       !strcmp(kw, "linear") || !strcmp(kw, "layernorm")) {
                box_union(&b[from[j]], 0, 0, in->out_shape[1] - 1, in->out_shape[2] - 1);
            } else if (!strcmp(kw, "add") || !strcmp(kw, "concat") || !strcmp(kw, "batchnorm") ||
                       !strcmp(kw, "dropout") || is_act_kw(kw)) {
                box_union(&b[from[j]], r.y0, r.x0, r.y1, r.x1);
            } else {
                st = cx_set_error(CX_ERR_ARG, "cx_net_receptive_box: layer '%s' (%s) is not supported on the way to "
                                              "the input", me->name, me->desc);
            }
        }
    }
    if (!st) {
        box[0] = (int)b[0].y0;
        box[1] = (int)b[0].x0;
        box[2] = (int)b[0].y1;
        box[3] = (int)b[0].x1;
    }
    free(b);
    return st;
}

/* ---------------------------------------------------------------- top activations */
typedef struct {
    cx_module *net;
    const cx_tensor *images;
    int layer, units, top_k;
    cx_patch_hit *hits;
} top_job;

static cx_status top_run(void *user) {
    top_job *j = user;
    int N = j->images->shape[0];
    long per = (long)(j->images->numel / (N > 0 ? N : 1));
    const cx_layer_info *li = cx_net_layer(j->net, j->layer);
    long plane = (long)li->out_shape[1] * li->out_shape[2];
    int W = li->out_shape[2];
    cx_arena *a = cx_arena_current();
    for (int b0 = 0; b0 < N; b0 += 64) {
        int nb = N - b0 < 64 ? N - b0 : 64;
        cx_arena_mark mk = cx_arena_get_mark(a);
        int shape[CX_MAX_DIMS];
        memcpy(shape, j->images->shape, sizeof shape);
        shape[0] = nb;
        cx_tensor *xb = cx_from_data(CX_F(j->images) + (long)b0 * per, shape, j->images->ndim);
        cx_tensor *o = cx_net_forward_all(j->net, xb)[j->layer];
        for (int i = 0; i < nb; i++)
            for (int u = 0; u < j->units; u++) {
                const float *v = CX_F(o) + ((long)i * li->out_shape[0] + u) * plane;
                long best = 0;
                for (long p = 1; p < plane; p++)
                    if (v[p] > v[best]) best = p;
                float val = v[best];
                if (!isfinite(val)) continue;
                cx_patch_hit *h = j->hits + (long)u * j->top_k;
                int pos = j->top_k;
                while (pos > 0 && (h[pos - 1].image < 0 || val > h[pos - 1].value)) pos--;
                if (pos >= j->top_k) continue;
                memmove(h + pos + 1, h + pos, sizeof *h * (size_t)(j->top_k - pos - 1));
                h[pos] = (cx_patch_hit){.image = b0 + i, .y = (int)(best / W), .x = (int)(best % W), .value = val};
            }
        cx_arena_rewind(a, mk);
    }
    return CX_OK;
}

cx_status cx_top_activations(cx_module *net, const cx_tensor *images, const char *layer, int units, int top_k,
                             cx_patch_hit *hits) {
    if (!net || !images || !layer || !hits) cx_fatal("cx_top_activations: NULL argument");
    if (!is_net(net)) return cx_set_error(CX_ERR_ARG, "cx_top_activations: the model is a %s, not a Net", cx_module_kind(net));
    int li = find_layer(net, layer);
    if (li < 0) return cx_set_error(CX_ERR_ARG, "cx_top_activations: the network has no layer named '%s'", layer);
    const cx_layer_info *info = cx_net_layer(net, li);
    if (info->out_ndim != 3)
        return cx_set_error(CX_ERR_ARG, "cx_top_activations: layer '%s' (%s) has no 2-D [C, H, W] output", layer, info->desc);
    if (units < 1 || units > info->out_shape[0])
        return cx_set_error(CX_ERR_ARG, "cx_top_activations: units %d is out of range: layer '%s' has %d channels", units,
                            layer, info->out_shape[0]);
    if (top_k < 1) return cx_set_error(CX_ERR_ARG, "cx_top_activations: top_k must be at least 1, got %d", top_k);
    int s[CX_MAX_DIMS], nd = cx_net_input_shape(net, s);
    bool ok = images->dtype == CX_F32 && images->ndim == nd + 1 && images->shape[0] >= 1;
    for (int d = 0; ok && d < nd; d++) ok = images->shape[d + 1] == s[d];
    if (!ok) {
        char b[96];
        return cx_set_error(CX_ERR_ARG, "cx_top_activations: images %s do not match the network's input (%d dims "
                                        "after the batch)", cx_shape_str(images, b, sizeof b), nd);
    }
    for (long i = 0; i < (long)units * top_k; i++) hits[i] = (cx_patch_hit){.image = -1};
    eval_state es;
    eval_begin(net, &es);
    cx_no_grad_begin();
    top_job j = {net, images, li, units, top_k, hits};
    cx_status st = cx_try(top_run, &j);
    cx_no_grad_end();
    eval_end(&es);
    for (long i = 0; !st && i < (long)units * top_k; i++)
        if (hits[i].image >= 0) st = cx_net_receptive_box(net, li, hits[i].y, hits[i].x, hits[i].box);
    return st;
}
