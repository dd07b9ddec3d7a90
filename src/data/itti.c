/* Itti, Koch & Niebur (1998), "A model of saliency-based visual attention for
 * rapid scene analysis": centre-surround feature maps over Gaussian
 * pyramids, the N(.) normalisation, conspicuity maps and the saliency map
 * (cortex/saliency.h documents the choices). Plain C on heap planes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/saliency.h"

#define NLEV 9   /* pyramid levels 0..8 */
#define PI 3.14159265358979323846
#define NORI 4   /* Gabor orientations 0, 45, 90, 135 degrees */

typedef struct {
    int h, w;
    float *v;
} plane;

typedef struct {
    bool oom;
} ctx;

static plane plane_new(ctx *c, int h, int w) {
    plane p = {h, w, calloc((size_t)h * (size_t)w, sizeof(float))};
    if (!p.v) c->oom = true;
    return p;
}

static void plane_free(plane *p) {
    free(p->v);
    p->v = NULL;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* 5-tap binomial blur [1 4 6 4 1] / 16 (borders replicated), then every
 * second pixel: the next pyramid level, (h + 1) / 2 x (w + 1) / 2. */
static plane reduce(ctx *c, const plane *in) {
    static const float k[5] = {1 / 16.f, 4 / 16.f, 6 / 16.f, 4 / 16.f, 1 / 16.f};
    int h = in->h, w = in->w, oh = (h + 1) / 2, ow = (w + 1) / 2;
    plane out = plane_new(c, oh, ow), tmp = plane_new(c, h, ow);
    if (!out.v || !tmp.v) {
        plane_free(&out);
        plane_free(&tmp);
        return out;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < ow; x++) {
            float s = 0;
            for (int t = -2; t <= 2; t++) s += k[t + 2] * in->v[(long)y * w + clampi(2 * x + t, 0, w - 1)];
            tmp.v[(long)y * ow + x] = s;
        }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float s = 0;
            for (int t = -2; t <= 2; t++) s += k[t + 2] * tmp.v[(long)clampi(2 * y + t, 0, h - 1) * ow + x];
            out.v[(long)y * ow + x] = s;
        }
    plane_free(&tmp);
    return out;
}

/* pyr[0] = base (taken over), pyr[l + 1] = reduce(pyr[l]) */
static void pyramid(ctx *c, plane base, plane pyr[NLEV]) {
    pyr[0] = base;
    for (int l = 1; l < NLEV; l++) pyr[l] = c->oom ? (plane){0, 0, NULL} : reduce(c, &pyr[l - 1]);
}

static void pyramid_free(plane pyr[NLEV]) {
    for (int l = 0; l < NLEV; l++) plane_free(&pyr[l]);
}

/* Gabor energy sqrt(even^2 + odd^2) at orientation theta: the filter prefers
 * bars and edges lying along theta (0: horizontal, 90: vertical, angles
 * counter-clockwise on the screen); wavelength 4 pixels, isotropic Gaussian
 * envelope sigma = 0.56 * wavelength (one octave), even part made zero-mean. */
#define GR 6
static void gabor_kernels(double theta, float even[2 * GR + 1][2 * GR + 1], float odd[2 * GR + 1][2 * GR + 1]) {
    const double lambda = 4.0, sigma = 0.56 * lambda;
    /* modulation across the preferred orientation; screen y points down */
    double cs = cos(theta + PI / 2), sn = -sin(theta + PI / 2), mean = 0;
    for (int y = -GR; y <= GR; y++)
        for (int x = -GR; x <= GR; x++) {
            double u = x * cs + y * sn, g = exp(-(x * x + y * y) / (2 * sigma * sigma));
            even[y + GR][x + GR] = (float)(g * cos(2 * PI * u / lambda));
            odd[y + GR][x + GR] = (float)(g * sin(2 * PI * u / lambda));
            mean += even[y + GR][x + GR];
        }
    mean /= (2 * GR + 1) * (2 * GR + 1);
    for (int y = 0; y < 2 * GR + 1; y++)
        for (int x = 0; x < 2 * GR + 1; x++) even[y][x] -= (float)mean;
}

static plane gabor_energy(ctx *c, const plane *in, double theta) {
    float ev[2 * GR + 1][2 * GR + 1], od[2 * GR + 1][2 * GR + 1];
    gabor_kernels(theta, ev, od);
    plane out = plane_new(c, in->h, in->w);
    if (!out.v) return out;
    for (int y = 0; y < in->h; y++)
        for (int x = 0; x < in->w; x++) {
            double se = 0, so = 0;
            for (int dy = -GR; dy <= GR; dy++) {
                const float *row = in->v + (long)clampi(y + dy, 0, in->h - 1) * in->w;
                for (int dx = -GR; dx <= GR; dx++) {
                    float v = row[clampi(x + dx, 0, in->w - 1)];
                    se += ev[dy + GR][dx + GR] * v;
                    so += od[dy + GR][dx + GR] * v;
                }
            }
            out.v[(long)y * in->w + x] = (float)sqrt(se * se + so * so);
        }
    return out;
}

/* N(.): scale to [0, 1]; m = mean of the local maxima above 0.05 other than
 * the global one; multiply by (1 - m)^2. A local maximum is >= its 8
 * neighbours and > the ones before it in raster order (one per plateau). */
static void normalize_map(plane *p) {
    long n = (long)p->h * p->w;
    float mx = 0;
    for (long i = 0; i < n; i++) mx = fmaxf(mx, p->v[i]);
    if (!(mx > 0)) {
        memset(p->v, 0, sizeof(float) * (size_t)n);
        return;
    }
    for (long i = 0; i < n; i++) p->v[i] = p->v[i] > 0 ? p->v[i] / mx : 0;
    double sum = 0;
    long cnt = 0;
    bool global_seen = false;
    for (int y = 0; y < p->h; y++)
        for (int x = 0; x < p->w; x++) {
            float v = p->v[(long)y * p->w + x];
            if (v <= 0.05f) continue;
            bool ok = true;
            for (int dy = -1; dy <= 1 && ok; dy++)
                for (int dx = -1; dx <= 1 && ok; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if ((!dy && !dx) || yy < 0 || xx < 0 || yy >= p->h || xx >= p->w) continue;
                    float u = p->v[(long)yy * p->w + xx];
                    bool before = dy < 0 || (dy == 0 && dx < 0);
                    ok = before ? v > u : v >= u;
                }
            if (!ok) continue;
            if (v >= 1.0f && !global_seen) {
                global_seen = true;
                continue;
            }
            sum += v;
            cnt++;
        }
    double m = cnt ? sum / (double)cnt : 0.0, f = (1 - m) * (1 - m);
    for (long i = 0; i < n; i++) p->v[i] = (float)(p->v[i] * f);
}

/* |a - resize(b to a's size)| into a new plane; sign: b enters as -b when
 * `opp` (double opponents: (R - G)(c) against (G - R)(s) = -(R - G)(s)). */
static plane center_surround(ctx *c, const plane *a, const plane *b, bool opp) {
    plane out = plane_new(c, a->h, a->w);
    if (!out.v) return out;
    cx_resize_bilinear(b->v, b->h, b->w, out.v, a->h, a->w);
    long n = (long)a->h * a->w;
    for (long i = 0; i < n; i++) out.v[i] = fabsf(a->v[i] - (opp ? -out.v[i] : out.v[i]));
    return out;
}

/* add map m (at pyramid level `lev`) into acc (level `to`), reducing it level by level */
static void add_at(ctx *c, plane *acc, plane m, int lev, int to) {
    for (; lev < to && !c->oom; lev++) {
        plane r = reduce(c, &m);
        plane_free(&m);
        m = r;
    }
    if (!c->oom && m.h == acc->h && m.w == acc->w)
        for (long i = 0; i < (long)m.h * m.w; i++) acc->v[i] += m.v[i];
    plane_free(&m);
}

/* Sum over c, s of N(|F(c) - F(s)|) at level `to` (two feature pyramids for opponents). */
static void across_scales(ctx *c, plane *acc, plane fa[NLEV], plane fb[NLEV], int c0, int to) {
    for (int cc = c0; cc <= c0 + 2 && !c->oom; cc++)
        for (int d = 3; d <= 4 && !c->oom; d++) {
            plane m;
            if (fb) {
                /* (A - B)(c) against (B - A)(s) */
                plane dc = plane_new(c, fa[cc].h, fa[cc].w), ds = plane_new(c, fa[cc + d].h, fa[cc + d].w);
                if (c->oom) {
                    plane_free(&dc);
                    plane_free(&ds);
                    return;
                }
                for (long i = 0; i < (long)dc.h * dc.w; i++) dc.v[i] = fa[cc].v[i] - fb[cc].v[i];
                for (long i = 0; i < (long)ds.h * ds.w; i++) ds.v[i] = fa[cc + d].v[i] - fb[cc + d].v[i];
                m = center_surround(c, &dc, &ds, true);
                plane_free(&dc);
                plane_free(&ds);
            } else {
                m = center_surround(c, &fa[cc], &fa[cc + d], false);
            }
            if (c->oom) {
                plane_free(&m);
                return;
            }
            normalize_map(&m);
            add_at(c, acc, m, cc, to);
        }
}

cx_itti_opts cx_itti_defaults(void) { return (cx_itti_opts){.min_side = 256, .c0 = 2, .color = true}; }

void cx_itti_free(cx_itti_result *r) {
    if (!r) return;
    free(r->intensity);
    free(r->color);
    free(r->orientation);
    free(r->saliency);
    free(r->saliency_up);
    memset(r, 0, sizeof *r);
}

static float *copy_out(ctx *c, const plane *p) {
    float *v = malloc(sizeof(float) * (size_t)p->h * (size_t)p->w);
    if (!v) c->oom = true;
    else memcpy(v, p->v, sizeof(float) * (size_t)p->h * (size_t)p->w);
    return v;
}

cx_status cx_itti_saliency(const float *pixels, int nc, int h, int w, const cx_itti_opts *opts, cx_itti_result *out) {
    if (!pixels || !out) cx_fatal("cx_itti_saliency: NULL argument");
    memset(out, 0, sizeof *out);
    cx_itti_opts o = opts ? *opts : cx_itti_defaults();
    if (nc != 1 && nc != 3)
        return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: %d channels: expected 1 (grey) or 3 (RGB)", nc);
    if (h < 8 || w < 8 || h > 8192 || w > 8192)
        return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: image %dx%d: each side must be 8..8192 pixels", h, w);
    if (o.c0 < 0 || o.c0 > 4)
        return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: c0 = %d: the finest centre level must be 0..4", o.c0);
    if (o.min_side < (16 << o.c0) || o.min_side > 4096)
        return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: min_side = %d: must be %d..4096 (16 pixels at level c0)",
                            o.min_side, 16 << o.c0);
    for (long i = 0; i < (long)nc * h * w; i++)
        if (!isfinite(pixels[i]))
            return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: pixel value %ld is not finite", i);
    ctx c = {false};
    /* working size: the shorter side at least min_side */
    int side = h < w ? h : w, H = h, W = w;
    if (side < o.min_side) {
        double f = (double)o.min_side / side;
        H = h == side ? o.min_side : (int)lround(h * f);
        W = w == side ? o.min_side : (int)lround(w * f);
        if (H > 8192 || W > 8192)
            return cx_set_error(CX_ERR_ARG, "cx_itti_saliency: image %dx%d is too elongated to resize to a shorter "
                                            "side of %d", h, w, o.min_side);
    }
    bool color = nc == 3 && o.color;
    plane ch[3] = {{0}};
    for (int k = 0; k < nc; k++) {
        ch[k] = plane_new(&c, H, W);
        if (ch[k].v) cx_resize_bilinear(pixels + (long)k * h * w, h, w, ch[k].v, H, W);
    }
    plane ipyr[NLEV] = {{0}}, cpyr[4][NLEV] = {{{0}}}, opyr[NORI][NLEV] = {{{0}}};
    plane inten = plane_new(&c, H, W);
    int to = o.c0 + 2;
    plane cI = {0}, cC = {0}, cO = {0}, sal = {0};
    if (c.oom) goto done;
    long n = (long)H * W;
    for (long i = 0; i < n; i++) inten.v[i] = nc == 3 ? (ch[0].v[i] + ch[1].v[i] + ch[2].v[i]) / 3 : ch[0].v[i];
    if (color) {
        /* r, g, b divided by I where I > max(I) / 10 (else 0); R, G, B, Y clipped at 0 */
        float imax = 0;
        for (long i = 0; i < n; i++) imax = fmaxf(imax, inten.v[i]);
        plane cp[4];
        for (int k = 0; k < 4; k++) cp[k] = plane_new(&c, H, W);
        if (c.oom) {
            for (int k = 0; k < 4; k++) plane_free(&cp[k]);
            goto done;
        }
        for (long i = 0; i < n; i++) {
            float I = inten.v[i], r = 0, g = 0, b = 0;
            if (I > imax / 10 && I > 0) r = ch[0].v[i] / I, g = ch[1].v[i] / I, b = ch[2].v[i] / I;
            cp[0].v[i] = fmaxf(0, r - (g + b) / 2);
            cp[1].v[i] = fmaxf(0, g - (r + b) / 2);
            cp[2].v[i] = fmaxf(0, b - (r + g) / 2);
            cp[3].v[i] = fmaxf(0, (r + g) / 2 - fabsf(r - g) / 2 - b);
        }
        for (int k = 0; k < 4; k++) pyramid(&c, cp[k], cpyr[k]);
    }
    pyramid(&c, inten, ipyr);
    inten.v = NULL; /* owned by ipyr[0] */
    if (c.oom) goto done;
    for (int t = 0; t < NORI && !c.oom; t++)
        for (int l = o.c0; l < NLEV && !c.oom; l++) opyr[t][l] = gabor_energy(&c, &ipyr[l], t * PI / 4);
    cI = plane_new(&c, ipyr[to].h, ipyr[to].w);
    cC = plane_new(&c, ipyr[to].h, ipyr[to].w);
    cO = plane_new(&c, ipyr[to].h, ipyr[to].w);
    sal = plane_new(&c, ipyr[to].h, ipyr[to].w);
    if (c.oom) goto done;
    across_scales(&c, &cI, ipyr, NULL, o.c0, to);
    if (color) {
        across_scales(&c, &cC, cpyr[0], cpyr[1], o.c0, to); /* RG */
        across_scales(&c, &cC, cpyr[2], cpyr[3], o.c0, to); /* BY */
    }
    for (int t = 0; t < NORI && !c.oom; t++) {
        plane ot = plane_new(&c, cO.h, cO.w);
        if (c.oom) {
            plane_free(&ot);
            break;
        }
        across_scales(&c, &ot, opyr[t], NULL, o.c0, to);
        normalize_map(&ot);
        for (long i = 0; i < (long)ot.h * ot.w; i++) cO.v[i] += ot.v[i];
        plane_free(&ot);
    }
    if (c.oom) goto done;
    out->h = cI.h;
    out->w = cI.w;
    out->in_h = h;
    out->in_w = w;
    out->has_color = color;
    out->intensity = copy_out(&c, &cI);
    out->orientation = copy_out(&c, &cO);
    if (color) out->color = copy_out(&c, &cC);
    {   /* S = mean of N(I), N(C), N(O) */
        plane *cons[3] = {&cI, &cO, &cC};
        int ncons = color ? 3 : 2;
        for (int k = 0; k < ncons; k++) {
            normalize_map(cons[k]);
            for (long i = 0; i < (long)sal.h * sal.w; i++) sal.v[i] += cons[k]->v[i] / (float)ncons;
        }
    }
    out->saliency = copy_out(&c, &sal);
    out->saliency_up = malloc(sizeof(float) * (size_t)h * (size_t)w);
    if (!out->saliency_up) c.oom = true;
    else if (out->saliency) cx_resize_bilinear(out->saliency, sal.h, sal.w, out->saliency_up, h, w);
done:
    for (int k = 0; k < 3; k++) plane_free(&ch[k]);
    plane_free(&inten);
    pyramid_free(ipyr);
    for (int k = 0; k < 4; k++) pyramid_free(cpyr[k]);
    for (int t = 0; t < NORI; t++) pyramid_free(opyr[t]);
    plane_free(&cI);
    plane_free(&cC);
    plane_free(&cO);
    plane_free(&sal);
    if (c.oom) {
        cx_itti_free(out);
        return cx_set_error(CX_ERR_NOMEM, "cx_itti_saliency: out of memory (image %dx%d, working size %dx%d)", h, w, H, W);
    }
    return CX_OK;
}
