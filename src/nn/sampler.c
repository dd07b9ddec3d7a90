/* The spatial transformer (include/cortex/sampler.h): affine_grid and
 * bilinear grid_sample with zero padding, both align_corners conventions, with
 * the arithmetic of PyTorch 1.13's CPU kernels (GridSamplerKernel.cpp,
 * AffineGridGenerator.cpp), and the SpatialTransformer module.
 *
 * Determinism: the forward passes write each output element once; the input
 * gradient of grid_sample is a scatter-add done per (n, c) plane by one
 * thread, points in order; the grid gradient is a sum over channels done per
 * grid point, channels in order; the theta gradient of affine_grid is a sum
 * over the points of one image, in order. No result depends on the number of
 * threads. */
#include "../autograd/graph.h"
#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- affine_grid */
/* PyTorch's linspace_from_neg_one: linspace(-1, 1, n) in float (the first
 * half stepping up from -1, the second down from 1, as the CPU linspace
 * kernel), times (n - 1) / n without align_corners; {0} for n == 1. */
static void base_coords(int n, bool align_corners, float *out) {
    if (n <= 1) {
        out[0] = 0.0f;
        return;
    }
    float step = 2.0f / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++) {
        float v = i < half ? -1.0f + step * (float)i : 1.0f - step * (float)(n - i - 1);
        if (!align_corners) v = v * (float)(n - 1) / (float)n;
        out[i] = v;
    }
}

typedef struct {
    int N, H, W;
    const float *xs, *ys; /* base coordinates, W and H of them (arena) */
} ag_saved;

static void affine_grid_backward(cx_node *nd) {
    bool fresh;
    float *gt = cx_in_grad_w(nd, 0, &fresh);
    if (!gt) return;
    const ag_saved *s = nd->saved;
    const float *g = nd->out[0]->grad;
    int64_t P = (int64_t)s->H * s->W;
    CX_OMP(parallel for if(P * s->N > CX_PAR_MIN))
    for (int n = 0; n < s->N; n++) {
        const float *gn = g + (int64_t)n * P * 2;
        double acc[2][3] = {{0, 0, 0}, {0, 0, 0}};
        for (int i = 0; i < s->H; i++) {
            double y = s->ys[i];
            for (int j = 0; j < s->W; j++) {
                const float *gp = gn + ((int64_t)i * s->W + j) * 2;
                double x = s->xs[j];
                for (int k = 0; k < 2; k++) {
                    acc[k][0] += gp[k] * x;
                    acc[k][1] += gp[k] * y;
                    acc[k][2] += gp[k];
                }
            }
        }
        float *gtn = gt + (int64_t)n * 6;
        for (int k = 0; k < 6; k++) {
            float v = (float)acc[k / 3][k % 3];
            gtn[k] = fresh ? v : gtn[k] + v;
        }
    }
}
CX_OP_DEF(affine_grid, .backward = affine_grid_backward);

cx_tensor *cx_affine_grid(cx_tensor *theta, int N, int C, int H, int W, bool align_corners) {
    const char *op = "affine_grid";
    char sb[96];
    if (!theta) cx_fatal("%s: theta is NULL", op);
    cx_need_f32_arg(op, "theta", theta);
    if (N < 1 || C < 1 || H < 1 || W < 1)
        cx_fatal("%s: size must be positive, got [%d, %d, %d, %d] (N, C, H, W)", op, N, C, H, W);
    if (theta->ndim != 3 || theta->shape[0] != N || theta->shape[1] != 2 || theta->shape[2] != 3)
        cx_fatal("%s: theta must be [N, 2, 3] = [%d, 2, 3] for size [%d, %d, %d, %d], got theta %s", op, N, N,
                 C, H, W, cx_shape_str(theta, sb, sizeof sb));
    int oshape[4] = {N, H, W, 2};
    (void)cx_shape_numel(op, oshape, 4);
    cx_tensor *out = cx_new_like_shape(oshape, 4);
    float *xs = cx_arena_alloc((size_t)W * sizeof(float)), *ys = cx_arena_alloc((size_t)H * sizeof(float));
    base_coords(W, align_corners, xs);
    base_coords(H, align_corners, ys);
    const float *th = CX_F(theta);
    float *o = CX_F(out);
    int64_t P = (int64_t)H * W;
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int n = 0; n < N; n++) {
        const float *t = th + (int64_t)n * 6;
        float *on = o + (int64_t)n * P * 2;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *p = on + ((int64_t)i * W + j) * 2;
                p[0] = xs[j] * t[0] + ys[i] * t[1] + t[2];
                p[1] = xs[j] * t[3] + ys[i] * t[4] + t[5];
            }
    }
    ag_saved sv = {N, H, W, xs, ys};
    cx_record_saved(&cx_opd_affine_grid, out, &theta, 1, &sv, sizeof sv);
    return out;
}

/* ---------------------------------------------------------------- grid_sample */
/* One grid point in pixel units: the west column x0 and north row y0 of the
 * four neighbours (x0 + 1, y0 + 1 the others), the fractional parts wx, wy,
 * and which neighbours lie inside the input. skip: no neighbour inside (the
 * point reads 0 and gets no gradient), nan: a NaN coordinate (reads NaN). */
typedef struct {
    int x0, y0;
    float wx, wy;
    bool in_w, in_e, in_n, in_s, skip, nan;
} bl_pt;

/* PyTorch's vectorised unnormalisation: (c + 1) * (size - 1) / 2 with
 * align_corners, (c + 1) * size / 2 - 0.5 without. */
static inline float unnormalize(float c, float scale, bool align_corners) {
    return align_corners ? (c + 1.0f) * scale : (c + 1.0f) * scale - 0.5f;
}

static inline bl_pt bl_point(float gx, float gy, int H, int W, float sx, float sy, bool align_corners) {
    bl_pt p = {0, 0, 0, 0, false, false, false, false, true, false};
    float x = unnormalize(gx, sx, align_corners), y = unnormalize(gy, sy, align_corners);
    if (isnan(x) || isnan(y)) {
        p.nan = true;
        return p;
    }
    float fx = floorf(x), fy = floorf(y);
    /* outside by a pixel or more (or infinite): no neighbour inside; this
     * also keeps the float -> int conversions below in range */
    if (!(fx >= -1.0f && fx <= (float)(W - 1) && fy >= -1.0f && fy <= (float)(H - 1))) return p;
    p.skip = false;
    p.x0 = (int)fx;
    p.y0 = (int)fy;
    p.wx = x - fx;
    p.wy = y - fy;
    p.in_w = p.x0 >= 0;
    p.in_e = p.x0 + 1 < W;
    p.in_n = p.y0 >= 0;
    p.in_s = p.y0 + 1 < H;
    return p;
}

/* The four neighbour values of p in plane xp (0 outside). */
static inline void bl_vals(const bl_pt *p, const float *xp, int W, float *nw, float *ne, float *sw, float *se) {
    const float *rn = xp + (int64_t)p->y0 * W, *rs = rn + W;
    *nw = p->in_n && p->in_w ? rn[p->x0] : 0.0f;
    *ne = p->in_n && p->in_e ? rn[p->x0 + 1] : 0.0f;
    *sw = p->in_s && p->in_w ? rs[p->x0] : 0.0f;
    *se = p->in_s && p->in_e ? rs[p->x0 + 1] : 0.0f;
}

typedef struct {
    int N, C, H, W, Ho, Wo;
    bool align_corners;
} gs_saved;

static inline float gs_scale(int size, bool align_corners) {
    return align_corners ? (float)(size - 1) / 2.0f : (float)size / 2.0f;
}

static void grid_sample_backward(cx_node *nd) {
    const gs_saved *s = nd->saved;
    cx_tensor *x = nd->in[0], *grid = nd->in[1];
    const float *go = nd->out[0]->grad, *xd = CX_F(x), *gd = CX_F(grid);
    int64_t P = (int64_t)s->Ho * s->Wo, ip = (int64_t)s->H * s->W;
    float sx = gs_scale(s->W, s->align_corners), sy = gs_scale(s->H, s->align_corners);
    int H = s->H, W = s->W, C = s->C;
    bool ac = s->align_corners;
    int64_t work = (int64_t)s->N * C * P;
    (void)work; /* used by the OpenMP pragmas only */
    float *gx = cx_in_grad(nd, 0);
    if (gx) {
        /* one (n, c) plane per iteration: its scatter-adds stay in the plane */
        int64_t planes = (int64_t)s->N * C;
        CX_OMP(parallel for if(work > CX_PAR_MIN))
        for (int64_t pl = 0; pl < planes; pl++) {
            int64_t n = pl / C;
            const float *gn = gd + n * P * 2, *gop = go + pl * P;
            float *gxp = gx + pl * ip;
            for (int64_t q = 0; q < P; q++) {
                bl_pt p = bl_point(gn[2 * q], gn[2 * q + 1], H, W, sx, sy, ac);
                if (p.skip || p.nan) continue;
                float g = gop[q], e = 1.0f - p.wx, so = 1.0f - p.wy;
                float *rn = gxp + (int64_t)p.y0 * W, *rs = rn + W;
                if (p.in_n && p.in_w) rn[p.x0] += so * e * g;
                if (p.in_n && p.in_e) rn[p.x0 + 1] += so * p.wx * g;
                if (p.in_s && p.in_w) rs[p.x0] += p.wy * e * g;
                if (p.in_s && p.in_e) rs[p.x0 + 1] += p.wy * p.wx * g;
            }
        }
    }
    bool fresh;
    float *gg = cx_in_grad_w(nd, 1, &fresh);
    if (gg) {
        /* one grid point per iteration, its channels in order */
        int64_t pts = (int64_t)s->N * P;
        CX_OMP(parallel for if(work > CX_PAR_MIN))
        for (int64_t t = 0; t < pts; t++) {
            int64_t n = t / P, q = t % P;
            bl_pt p = bl_point(gd[2 * t], gd[2 * t + 1], H, W, sx, sy, ac);
            float ax = 0.0f, ay = 0.0f;
            if (p.nan) ax = ay = NAN;
            else if (!p.skip) {
                float e = 1.0f - p.wx, so = 1.0f - p.wy;
                for (int c = 0; c < C; c++) {
                    int64_t pl = n * C + c;
                    float nw, ne, sw, se, g = go[pl * P + q];
                    bl_vals(&p, xd + pl * ip, W, &nw, &ne, &sw, &se);
                    ax += ((ne - nw) * so + (se - sw) * p.wy) * g;
                    ay += ((sw - nw) * e + (se - ne) * p.wx) * g;
                }
            }
            ax *= sx;
            ay *= sy;
            gg[2 * t] = fresh ? ax : gg[2 * t] + ax;
            gg[2 * t + 1] = fresh ? ay : gg[2 * t + 1] + ay;
        }
    }
}
CX_OP_DEF(grid_sample, .backward = grid_sample_backward);

cx_tensor *cx_grid_sample(cx_tensor *input, cx_tensor *grid, bool align_corners) {
    const char *op = "grid_sample";
    char sa[96], sb[96];
    if (!input || !grid) cx_fatal("%s: %s is NULL", op, !input ? "input" : "grid");
    cx_need_f32_arg(op, "input", input);
    cx_need_f32_arg(op, "grid", grid);
    if (input->ndim != 4)
        cx_fatal("%s: input must be 4-D [N, C, H, W], got input %s", op, cx_shape_str(input, sa, sizeof sa));
    for (int d = 0; d < 4; d++)
        if (input->shape[d] < 1)
            cx_fatal("%s: input must not be empty, got input %s", op, cx_shape_str(input, sa, sizeof sa));
    int N = input->shape[0], C = input->shape[1], H = input->shape[2], W = input->shape[3];
    if (grid->ndim != 4 || grid->shape[0] != N || grid->shape[3] != 2 || grid->shape[1] < 1 || grid->shape[2] < 1)
        cx_fatal("%s: grid must be [N, Ho, Wo, 2] with N = %d (the batch of input %s), got grid %s", op, N,
                 cx_shape_str(input, sa, sizeof sa), cx_shape_str(grid, sb, sizeof sb));
    int Ho = grid->shape[1], Wo = grid->shape[2];
    int oshape[4] = {N, C, Ho, Wo};
    (void)cx_shape_numel(op, oshape, 4);
    cx_tensor *out = cx_new_like_shape(oshape, 4);
    const float *xd = CX_F(input), *gd = CX_F(grid);
    float *yd = CX_F(out);
    int64_t P = (int64_t)Ho * Wo, ip = (int64_t)H * W, planes = (int64_t)N * C;
    float sx = gs_scale(W, align_corners), sy = gs_scale(H, align_corners);
    CX_OMP(parallel for if(out->numel > CX_PAR_MIN))
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *gn = gd + (pl / C) * P * 2, *xp = xd + pl * ip;
        float *yp = yd + pl * P;
        for (int64_t q = 0; q < P; q++) {
            bl_pt p = bl_point(gn[2 * q], gn[2 * q + 1], H, W, sx, sy, align_corners);
            if (p.skip || p.nan) {
                yp[q] = p.nan ? NAN : 0.0f;
                continue;
            }
            float nw, ne, sw, se;
            bl_vals(&p, xp, W, &nw, &ne, &sw, &se);
            float e = 1.0f - p.wx, so = 1.0f - p.wy;
            yp[q] = nw * (so * e) + ne * (so * p.wx) + sw * (p.wy * e) + se * (p.wy * p.wx);
        }
    }
    cx_tensor *in[2] = {input, grid};
    gs_saved sv = {N, C, H, W, Ho, Wo, align_corners};
    cx_record_saved(&cx_opd_grid_sample, out, in, 2, &sv, sizeof sv);
    return out;
}

/* ---------------------------------------------------------------- module */
typedef struct {
    cx_module base;
    cx_module *loc, *fc;
    int features, oh, ow;
    bool align_corners;
} stn_m;

static void stn_describe(const cx_module *m, char *buf, size_t n);
static int stn_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out);
static const cx_module_ops stn_ops = {.kind = "SpatialTransformer", .call = stn_call, .describe = stn_describe};

static stn_m *as_stn(cx_module *m) {
    if (!m || m->ops != &stn_ops)
        cx_fatal("expected a SpatialTransformer module, got %s", m ? m->ops->kind : "NULL");
    return (stn_m *)m;
}

static void need_image_batch(const char *what, const cx_tensor *x) {
    char sb[96];
    if (!x || x->ndim != 4)
        cx_fatal("SpatialTransformer: %s must be [N, C, H, W], got %s", what,
                 x ? cx_shape_str(x, sb, sizeof sb) : "NULL");
}

cx_tensor *cx_stn_theta(cx_module *m, cx_tensor *x) {
    stn_m *s = as_stn(m);
    need_image_batch("x", x);
    char sa[96], sb[96];
    cx_tensor *f = cx_module_forward(s->loc, x);
    int N = x->shape[0];
    if (f->ndim > 2 && f->shape[0] == N) f = cx_reshape(f, CX_SHAPE(N, -1));
    if (f->ndim != 2 || f->shape[0] != N || f->shape[1] != s->features)
        cx_fatal("SpatialTransformer: the localisation network maps x %s to %s, expected [%d, %d] "
                 "(N, loc_features)", cx_shape_str(x, sa, sizeof sa), cx_shape_str(f, sb, sizeof sb), N,
                 s->features);
    return cx_reshape(cx_module_forward(s->fc, f), CX_SHAPE(N, 2, 3));
}

static int stn_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    stn_m *s = as_stn(m);
    if (n_in != 1) cx_fatal("SpatialTransformer takes one input, got %d", n_in);
    cx_tensor *x = in[0];
    need_image_batch("x", x);
    cx_tensor *theta = cx_stn_theta(m, x);
    int oh = s->oh > 0 ? s->oh : x->shape[2], ow = s->ow > 0 ? s->ow : x->shape[3];
    cx_tensor *grid = cx_affine_grid(theta, x->shape[0], x->shape[1], oh, ow, s->align_corners);
    out[0] = cx_grid_sample(x, grid, s->align_corners);
    if (max_out < 2) return 1;
    out[1] = theta;
    return 2;
}

static void stn_describe(const cx_module *m, char *buf, size_t n) {
    const stn_m *s = (const stn_m *)m;
    if (s->oh > 0) snprintf(buf, n, "SpatialTransformer(out=%dx%d, align_corners=%d)", s->oh, s->ow,
                            (int)s->align_corners);
    else snprintf(buf, n, "SpatialTransformer(out=input size, align_corners=%d)", (int)s->align_corners);
}

cx_module *cx_stn_new(cx_module *loc, int loc_features, int out_h, int out_w, bool align_corners) {
    if (!loc) cx_fatal("SpatialTransformer: the localisation network is NULL");
    if (loc_features < 1) cx_fatal("SpatialTransformer: loc_features must be positive, got %d", loc_features);
    if (out_h < 0 || out_w < 0 || (out_h == 0) != (out_w == 0))
        cx_fatal("SpatialTransformer: output size must be positive (or 0 x 0: the input's), got %dx%d", out_h,
                 out_w);
    stn_m *s = cx_xcalloc(1, sizeof *s);
    cx_module_init(&s->base, &stn_ops);
    s->features = loc_features;
    s->oh = out_h;
    s->ow = out_w;
    s->align_corners = align_corners;
    s->loc = cx_module_add(&s->base, "loc", loc);
    /* the identity transform: theta = [[1, 0, 0], [0, 1, 0]] whatever the features */
    s->fc = cx_module_add(&s->base, "fc_loc", cx_linear_new(loc_features, 6, true));
    cx_init_constant(cx_linear_weight(s->fc), 0.0f);
    float *b = CX_F(cx_linear_bias(s->fc));
    const float id[6] = {1, 0, 0, 0, 1, 0};
    memcpy(b, id, sizeof id);
    return &s->base;
}

cx_module *cx_stn_loc(cx_module *m) { return as_stn(m)->loc; }
cx_module *cx_stn_fc_loc(cx_module *m) { return as_stn(m)->fc; }
