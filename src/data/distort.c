/* Distorted, cluttered canvases (cx_distort_dataset, cortex/data.h): the
 * spatial-transformer and recurrent-attention set. */
#include <math.h>
#include <string.h>

#include "cortex.h"

#define PI_F 3.14159265358979f

cx_distort_opts cx_distort_defaults(void) {
    return (cx_distort_opts){.canvas = 60, .max_angle = 45.0f, .min_scale = 0.7f, .max_scale = 1.2f,
                             .n_clutter = 6, .fragment = 6};
}

/* Side of the square images of x ([N, S*S], [N, S, S] or [N, 1, S, S]); 0 if not square. */
static int image_side(const cx_tensor *x) {
    int64_t per = 1;
    for (int i = 1; i < x->ndim; i++) per *= x->shape[i];
    if (x->ndim == 3 && x->shape[1] != x->shape[2]) return 0;
    if (x->ndim == 4 && (x->shape[1] != 1 || x->shape[2] != x->shape[3])) return 0;
    if (x->ndim < 2 || x->ndim > 4) return 0;
    int s = (int)lround(sqrt((double)per));
    return (int64_t)s * s == per ? s : 0;
}

/* theta (canvas -> source, normalised coordinates, align_corners false) for
 * one item: random angle and scale, random place keeping the ink inside. */
static void item_theta(const float *im, int S, int C, const cx_distort_opts *o, cx_rng *rng, float t[6]) {
    float ang = (o->max_angle * (2 * cx_rng_uniform(rng) - 1)) * PI_F / 180.0f;
    float sc = o->min_scale + (o->max_scale - o->min_scale) * cx_rng_uniform(rng);
    float ca = cosf(ang), sa = sinf(ang);
    /* the ink's bounding box (pixels > 0.1), in source pixels from the centre */
    int r0 = S, r1 = -1, q0 = S, q1 = -1;
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++)
            if (im[r * S + q] > 0.1f) {
                r0 = r < r0 ? r : r0, r1 = r > r1 ? r : r1;
                q0 = q < q0 ? q : q0, q1 = q > q1 ? q : q1;
            }
    if (r1 < 0) r0 = q0 = 0, r1 = q1 = S - 1;
    const float half = (S - 1) / 2.0f;
    float bx[2] = {q0 - 0.5f - half, q1 + 0.5f - half}, by[2] = {r0 - 0.5f - half, r1 + 0.5f - half};
    /* canvas offset of a source offset d: sc * R d */
    float lo_x = 1e9f, hi_x = -1e9f, lo_y = 1e9f, hi_y = -1e9f;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            float dx = sc * (ca * bx[a] - sa * by[b]), dy = sc * (sa * bx[a] + ca * by[b]);
            lo_x = fminf(lo_x, dx), hi_x = fmaxf(hi_x, dx), lo_y = fminf(lo_y, dy), hi_y = fmaxf(hi_y, dy);
        }
    /* the item's centre (canvas pixels) so that the box stays inside [-0.5, C - 0.5] */
    float cxmin = -0.5f - lo_x, cxmax = C - 0.5f - hi_x;
    float cymin = -0.5f - lo_y, cymax = C - 0.5f - hi_y;
    float ux_ = cx_rng_uniform(rng), uy_ = cx_rng_uniform(rng);
    float px = cxmax >= cxmin ? cxmin + (cxmax - cxmin) * ux_ : (C - 1) / 2.0f;
    float py = cymax >= cymin ? cymin + (cymax - cymin) * uy_ : (C - 1) / 2.0f;
    /* v = k R^-1 (u - u_c), k = (C / S) / sc, u_c the centre in canvas coordinates */
    float kk = ((float)C / S) / sc;
    float ux = (2 * px + 1) / C - 1, uy = (2 * py + 1) / C - 1;
    float a00 = kk * ca, a01 = kk * sa, a10 = -kk * sa, a11 = kk * ca;
    t[0] = a00, t[1] = a01, t[2] = -(a00 * ux + a01 * uy);
    t[3] = a10, t[4] = a11, t[5] = -(a10 * ux + a11 * uy);
}

cx_status cx_distort_dataset(const cx_dataset *src, int n, const cx_distort_opts *o, uint64_t seed,
                             cx_dataset *out) {
    const char *fn = "distort_dataset";
    if (!src || !out || !o) return cx_set_error(CX_ERR_ARG, "%s: NULL argument", fn);
    if (!src->x || src->x->dtype != CX_F32) return cx_set_error(CX_ERR_ARG, "%s: src has no F32 images", fn);
    if (n < 1) return cx_set_error(CX_ERR_ARG, "%s: n = %d canvases, need at least 1", fn, n);
    const int N = src->x->shape[0], S = image_side(src->x);
    char sh[96];
    if (N < 1) return cx_set_error(CX_ERR_SHAPE, "%s: src has no images", fn);
    if (S == 0)
        return cx_set_error(CX_ERR_SHAPE, "%s: src images have shape %s, expected square images [N, S*S], [N, S, S] or [N, 1, S, S]",
                            fn, cx_shape_str(src->x, sh, sizeof sh));
    if (src->y && (src->y->dtype != CX_I32 || src->y->ndim != 1 || src->y->shape[0] != N))
        return cx_set_error(CX_ERR_SHAPE, "%s: src labels must be I32 [%d], got %s", fn, N,
                            cx_shape_str(src->y, sh, sizeof sh));
    if (o->canvas < 1 || o->canvas > 4096) return cx_set_error(CX_ERR_ARG, "%s: canvas %d out of 1..4096", fn, o->canvas);
    if (!(o->max_angle >= 0 && o->max_angle <= 180))
        return cx_set_error(CX_ERR_ARG, "%s: max_angle %g out of 0..180 degrees", fn, (double)o->max_angle);
    if (!(o->min_scale > 0 && o->max_scale >= o->min_scale && o->max_scale < 100))
        return cx_set_error(CX_ERR_ARG, "%s: scale range %g..%g, need 0 < min_scale <= max_scale", fn,
                            (double)o->min_scale, (double)o->max_scale);
    if (o->n_clutter < 0 || (o->n_clutter > 0 && (o->fragment < 1 || o->fragment > S || o->fragment > o->canvas)))
        return cx_set_error(CX_ERR_ARG, "%s: %d clutter fragments of side %d (images %d, canvas %d)", fn,
                            o->n_clutter, o->fragment, S, o->canvas);

    const int C = o->canvas, F = o->fragment;
    const float *img = CX_F(src->x);
    const int32_t *lab = src->y ? CX_I32P(src->y) : NULL;
    cx_dataset d = {.owned = true};
    d.x = cx_tensor_new(CX_F32, (int[]){n, C * C}, 2);
    d.y = lab ? cx_tensor_new(CX_I32, (int[]){n}, 1) : NULL;
    float *cv = CX_F(d.x);
    int32_t *cy = d.y ? CX_I32P(d.y) : NULL;
    cx_rng rng = cx_rng_new(seed);
    cx_arena *arena = cx_arena_new(1 << 20), *prev = cx_arena_use(arena);
    cx_no_grad_begin();
    enum { CHUNK = 256 };
    for (int c0 = 0; c0 < n; c0 += CHUNK) {
        int m = n - c0 < CHUNK ? n - c0 : CHUNK;
        cx_tensor *items = cx_empty(CX_F32, CX_SHAPE(m, 1, S, S));
        cx_tensor *theta = cx_empty(CX_F32, CX_SHAPE(m, 2, 3));
        for (int k = 0; k < m; k++) {
            int i = c0 + k, s = i % N;
            const float *im = img + (int64_t)s * S * S;
            memcpy(CX_F(items) + (int64_t)k * S * S, im, (size_t)S * S * sizeof(float));
            if (cy) cy[i] = lab[s];
            item_theta(im, S, C, o, &rng, CX_F(theta) + 6 * k);
        }
        cx_tensor *canv = cx_grid_sample(items, cx_affine_grid(theta, m, 1, C, C, false), false);
        for (int k = 0; k < m; k++) {
            int i = c0 + k;
            float *dst = cv + (int64_t)i * C * C;
            memcpy(dst, CX_F(canv) + (int64_t)k * C * C, (size_t)C * C * sizeof(float));
            for (int f = 0; f < o->n_clutter; f++) {
                /* a fragment with some ink from another image */
                int fr = 0, fc = 0;
                const float *im = img;
                for (int tries = 0;; tries++) {
                    int s = (int)cx_rng_below(&rng, (uint32_t)N);
                    if (s == i % N && N > 1 && tries <= 20) continue;
                    im = img + (int64_t)s * S * S;
                    fr = (int)cx_rng_below(&rng, (uint32_t)(S - F + 1));
                    fc = (int)cx_rng_below(&rng, (uint32_t)(S - F + 1));
                    float ink = 0;
                    for (int r = 0; r < F; r++)
                        for (int q = 0; q < F; q++) ink += im[(fr + r) * S + fc + q];
                    if (ink > 0.25f * F * F || tries > 20) break;
                }
                int tr = (int)cx_rng_below(&rng, (uint32_t)(C - F + 1)), tc = (int)cx_rng_below(&rng, (uint32_t)(C - F + 1));
                for (int r = 0; r < F; r++)
                    for (int q = 0; q < F; q++) {
                        float v = im[(fr + r) * S + fc + q];
                        float *px = dst + (tr + r) * C + tc + q;
                        if (v > *px) *px = v;
                    }
            }
        }
        cx_arena_reset(arena);
    }
    cx_no_grad_end();
    cx_arena_use(prev);
    cx_arena_free(arena);
    *out = d;
    return CX_OK;
}
