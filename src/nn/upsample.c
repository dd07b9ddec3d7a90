/* Up-sampling of [N, C, H, W] (or [C, H, W]) tensors: nearest and bilinear
 * (align_corners true / false), by output size or by scale factor, with the
 * index arithmetic of PyTorch's CPU kernels (float), and the Upsample module. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdio.h>

typedef struct {
    int64_t planes;
    int H, W, oh, ow;
    bool bilinear;
    int *h0, *h1, *w0, *w1;      /* source indices per output row / column */
    float *lh0, *lh1, *lw0, *lw1; /* bilinear weights */
} up_geom;

/* PyTorch's 'nearest' source index (the NCHW kernel, HelperInterpNearest):
 * src = min(floor(dst * r), in - 1) in float, with r = 1 / scale when the
 * user gave a scale factor (scale > 0), else in / out. */
static void nearest_table(int in, int out, double scale, int *idx) {
    float r = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        int64_t s = (int64_t)floorf((float)i * r);
        idx[i] = s < in - 1 ? (int)s : in - 1;
    }
}

/* PyTorch area_pixel_compute_scale / compute_source_index_and_lambda. */
static void linear_table(int in, int out, double scale, bool align_corners, int *i0, int *i1, float *l0,
                         float *l1) {
    float ratio;
    if (align_corners) ratio = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    else ratio = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        if (out == in) {
            i0[i] = i1[i] = i;
            l0[i] = 1.0f;
            l1[i] = 0.0f;
            continue;
        }
        float src = align_corners ? ratio * (float)i : ratio * ((float)i + 0.5f) - 0.5f;
        if (!align_corners && src < 0) src = 0;
        int a = (int)src;
        if (a > in - 1) a = in - 1;
        i0[i] = a;
        i1[i] = a + (a < in - 1 ? 1 : 0);
        float lam = src - (float)a;
        lam = lam < 0 ? 0 : lam > 1 ? 1 : lam;
        l1[i] = lam;
        l0[i] = 1.0f - lam;
    }
}

static void upsample_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    float *gx = cx_in_grad(nd, 0);
    if (!gx) return;
    const up_geom *g = nd->saved;
    const float *go = out->grad;
    int64_t ip = (int64_t)g->H * g->W, opl = (int64_t)g->oh * g->ow;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        float *gxp = gx + pl * ip;
        const float *gop = go + pl * opl;
        for (int i = 0; i < g->oh; i++) {
            const float *gr = gop + (int64_t)i * g->ow;
            if (!g->bilinear) {
                float *r = gxp + (int64_t)g->h0[i] * g->W;
                for (int j = 0; j < g->ow; j++) r[g->w0[j]] += gr[j];
                continue;
            }
            float *r0 = gxp + (int64_t)g->h0[i] * g->W, *r1 = gxp + (int64_t)g->h1[i] * g->W;
            float a0 = g->lh0[i], a1 = g->lh1[i];
            for (int j = 0; j < g->ow; j++) {
                float v = gr[j], b0 = g->lw0[j], b1 = g->lw1[j];
                r0[g->w0[j]] += a0 * b0 * v;
                r0[g->w1[j]] += a0 * b1 * v;
                r1[g->w0[j]] += a1 * b0 * v;
                r1[g->w1[j]] += a1 * b1 * v;
            }
        }
    }
}

/* oh/ow: output size (used when sh <= 0), else sh/sw: scale factors. */
CX_OP_DEF(upsample_nearest2d, .backward = upsample_backward);
CX_OP_DEF(upsample_bilinear2d, .backward = upsample_backward);

static cx_tensor *upsample_impl(const cx_op_desc *opd, cx_tensor *x, int oh, int ow, double sh, double sw,
                                bool bilinear, bool align_corners) {
    const char *op = opd->name;
    char sb[96];
    cx_need_f32(op, x);
    if (x->ndim != 3 && x->ndim != 4)
        cx_fatal("%s: expected a 4-D input [N, C, H, W] or a 3-D input [C, H, W], got %s", op,
                 cx_shape_str(x, sb, sizeof sb));
    int H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (H < 1 || W < 1) cx_fatal("%s: empty spatial dims in input %s", op, cx_shape_str(x, sb, sizeof sb));
    bool by_scale = sh > 0 || sw > 0;
    if (by_scale) {
        if (!(sh > 0 && sw > 0 && isfinite(sh) && isfinite(sw)))
            cx_fatal("%s: scale factors must be positive and finite, got %g x %g", op, sh, sw);
        double fh = floor((double)H * sh), fw = floor((double)W * sw);
        if (fh < 1 || fw < 1 || fh > INT32_MAX || fw > INT32_MAX)
            cx_fatal("%s: scale %g x %g of input %s gives an output of %.0f x %.0f", op, sh, sw,
                     cx_shape_str(x, sb, sizeof sb), fh, fw);
        oh = (int)fh;
        ow = (int)fw;
    } else {
        if (oh < 1 || ow < 1)
            cx_fatal("%s: output size must be positive, got %dx%d for input %s", op, oh, ow,
                     cx_shape_str(x, sb, sizeof sb));
        sh = sw = 0;
    }
    up_geom geo = {1, H, W, oh, ow, bilinear, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    for (int i = 0; i < x->ndim - 2; i++) geo.planes *= x->shape[i];
    geo.h0 = cx_arena_alloc((size_t)oh * sizeof(int));
    geo.w0 = cx_arena_alloc((size_t)ow * sizeof(int));
    if (bilinear) {
        geo.h1 = cx_arena_alloc((size_t)oh * sizeof(int));
        geo.w1 = cx_arena_alloc((size_t)ow * sizeof(int));
        geo.lh0 = cx_arena_alloc((size_t)oh * sizeof(float));
        geo.lh1 = cx_arena_alloc((size_t)oh * sizeof(float));
        geo.lw0 = cx_arena_alloc((size_t)ow * sizeof(float));
        geo.lw1 = cx_arena_alloc((size_t)ow * sizeof(float));
        linear_table(H, oh, sh, align_corners, geo.h0, geo.h1, geo.lh0, geo.lh1);
        linear_table(W, ow, sw, align_corners, geo.w0, geo.w1, geo.lw0, geo.lw1);
    } else {
        nearest_table(H, oh, sh, geo.h0);
        nearest_table(W, ow, sw, geo.w0);
    }
    int oshape[4];
    for (int i = 0; i < x->ndim - 2; i++) oshape[i] = x->shape[i];
    oshape[x->ndim - 2] = oh;
    oshape[x->ndim - 1] = ow;
    cx_tensor *out = cx_new_like_shape(oshape, x->ndim);
    const float *xd = CX_F(x);
    float *yd = CX_F(out);
    int64_t ip = (int64_t)H * W, opl = (int64_t)oh * ow;
    const up_geom *g = &geo;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < g->planes; pl++) {
        const float *xp = xd + pl * ip;
        float *yp = yd + pl * opl;
        for (int i = 0; i < g->oh; i++) {
            float *yr = yp + (int64_t)i * g->ow;
            if (!g->bilinear) {
                const float *r = xp + (int64_t)g->h0[i] * g->W;
                for (int j = 0; j < g->ow; j++) yr[j] = r[g->w0[j]];
                continue;
            }
            const float *r0 = xp + (int64_t)g->h0[i] * g->W, *r1 = xp + (int64_t)g->h1[i] * g->W;
            float a0 = g->lh0[i], a1 = g->lh1[i];
            for (int j = 0; j < g->ow; j++) {
                int c0 = g->w0[j], c1 = g->w1[j];
                float b0 = g->lw0[j], b1 = g->lw1[j];
                yr[j] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
            }
        }
    }
    cx_record_saved(opd, out, &x, 1, &geo, sizeof geo);
    return out;
}

cx_tensor *cx_upsample_nearest2d(cx_tensor *x, int out_h, int out_w) {
    return upsample_impl(&cx_opd_upsample_nearest2d, x, out_h, out_w, 0, 0, false, false);
}
cx_tensor *cx_upsample_nearest2d_scale(cx_tensor *x, double scale_h, double scale_w) {
    if (!(scale_h > 0 && scale_w > 0))
        cx_fatal("upsample_nearest2d: scale factors must be positive, got %g x %g", scale_h, scale_w);
    return upsample_impl(&cx_opd_upsample_nearest2d, x, 0, 0, scale_h, scale_w, false, false);
}
cx_tensor *cx_upsample_bilinear2d(cx_tensor *x, int out_h, int out_w, bool align_corners) {
    return upsample_impl(&cx_opd_upsample_bilinear2d, x, out_h, out_w, 0, 0, true, align_corners);
}
cx_tensor *cx_upsample_bilinear2d_scale(cx_tensor *x, double scale_h, double scale_w, bool align_corners) {
    if (!(scale_h > 0 && scale_w > 0))
        cx_fatal("upsample_bilinear2d: scale factors must be positive, got %g x %g", scale_h, scale_w);
    return upsample_impl(&cx_opd_upsample_bilinear2d, x, 0, 0, scale_h, scale_w, true, align_corners);
}

/* ---------------------------------------------------------------- module */
typedef struct {
    cx_module base;
    cx_upsample_mode mode;
    double scale;      /* > 0: scale factor; else size */
    int oh, ow;
    bool align_corners;
} up_m;

static cx_tensor *up_fwd(cx_module *m, cx_tensor *x) {
    up_m *u = (up_m *)m;
    if (u->mode == CX_UPSAMPLE_NEAREST)
        return u->scale > 0 ? cx_upsample_nearest2d_scale(x, u->scale, u->scale)
                            : cx_upsample_nearest2d(x, u->oh, u->ow);
    return u->scale > 0 ? cx_upsample_bilinear2d_scale(x, u->scale, u->scale, u->align_corners)
                        : cx_upsample_bilinear2d(x, u->oh, u->ow, u->align_corners);
}
static void up_describe(const cx_module *m, char *buf, size_t n) {
    const up_m *u = (const up_m *)m;
    char sz[64];
    if (u->scale > 0) snprintf(sz, sizeof sz, "scale=%g", u->scale);
    else snprintf(sz, sizeof sz, "size=%dx%d", u->oh, u->ow);
    snprintf(buf, n, "Upsample(%s, %s%s)", u->mode == CX_UPSAMPLE_NEAREST ? "nearest" : "bilinear", sz,
             u->mode == CX_UPSAMPLE_BILINEAR && u->align_corners ? ", align_corners" : "");
}
static const cx_module_ops up_ops = {.kind = "Upsample", .forward = up_fwd, .describe = up_describe};

static cx_module *up_new(cx_upsample_mode mode, double scale, int oh, int ow, bool align_corners) {
    if (mode != CX_UPSAMPLE_NEAREST && mode != CX_UPSAMPLE_BILINEAR)
        cx_fatal("Upsample: unknown mode %d", (int)mode);
    up_m *u = cx_xcalloc(1, sizeof *u);
    cx_module_init(&u->base, &up_ops);
    u->mode = mode;
    u->scale = scale;
    u->oh = oh;
    u->ow = ow;
    u->align_corners = align_corners;
    return &u->base;
}

cx_module *cx_upsample_new(cx_upsample_mode mode, double scale, bool align_corners) {
    if (!(scale > 0 && isfinite(scale))) cx_fatal("Upsample: scale must be positive and finite, got %g", scale);
    return up_new(mode, scale, 0, 0, align_corners);
}
cx_module *cx_upsample_size_new(cx_upsample_mode mode, int out_h, int out_w, bool align_corners) {
    if (out_h < 1 || out_w < 1) cx_fatal("Upsample: output size must be positive, got %dx%d", out_h, out_w);
    return up_new(mode, 0, out_h, out_w, align_corners);
}
