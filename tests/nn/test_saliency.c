/* cortex/saliency.h: gradient saliency and Grad-CAM against PyTorch
 * (tools/gen_saliency_fixtures.py -> tests/fixtures/saliency/saliency.safetensors,
 * override with CX_SALIENCY_FIXTURES), receptive boxes on known stacks (and
 * against the pixels a unit's gradient reaches), the strongest patches of a
 * unit on planted images, Itti-Koch-Niebur saliency on synthetic scenes with
 * a known answer, argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"pred_c2", "cls2_c2", "cls0_c1"};
#define NCASES 3

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static cx_module *net_of(const char *text) {
    cx_module *net = NULL;
    CHECK_MSG(cx_net_parse(text, "test.net", &net) == CX_OK, "parse: %s", cx_last_error());
    return net;
}

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the saliency fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_saliency_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "pred_c2,cls2_c2,cls0_c1"));
}

static void matches_torch(void) {
    cx_module *net = net_of(cx_st_meta(FX, "net"));
    if (!net) return;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    CHECK(ps.n == 6);
    for (int i = 0; i < ps.n; i++) {
        char key[96];
        snprintf(key, sizeof key, "net.%s", ps.t[i]->name);
        cx_tensor *t = cx_st_get(FX, key);
        CHECK_MSG(t && t->numel == ps.t[i]->numel, "fixture %s", key);
        if (t) memcpy(CX_F(ps.t[i]), CX_F(t), sizeof(float) * (size_t)t->numel);
    }
    int cams_nonzero = 0;
    for (int i = 0; i < NCASES; i++) {
        const char *c = CASES[i];
        char what[96];
        cx_tensor *x = fx(c, "x");
        int cls = (int)cxt_fx_int(FX, c, "cls"), used = (int)cxt_fx_int(FX, c, "used");
        int layer = (int)cxt_fx_int(FX, c, "layer");
        cx_saliency_result s;
        CHECK_MSG(cx_saliency(net, x, cls, &s) == CX_OK, "%s: %s", c, cx_last_error());
        CHECK_MSG(s.cls == used && s.c == 2 && s.h == 10 && s.w == 10, "%s: class %d, want %d", c, s.cls, used);
        CHECK_NEAR(s.score, CX_F(fx(c, "score"))[0], 1e-5);
        snprintf(what, sizeof what, "%s saliency grad", c);
        cxt_allclose(s.grad, CX_F(fx(c, "grad")), 200, 1e-4, 1e-6, what);
        snprintf(what, sizeof what, "%s saliency map", c);
        cxt_allclose(s.map, CX_F(fx(c, "map")), 100, 1e-4, 1e-6, what);
        cx_saliency_free(&s);

        cx_gradcam_result g;
        CHECK_MSG(cx_gradcam(net, x, layer == 1 ? "c1" : "c2", cls, &g) == CX_OK, "%s: %s", c, cx_last_error());
        /* A is the relu after the named conv (lines 1 -> 2, 4 -> 5) */
        CHECK_MSG(g.conv == (layer == 1 ? 1 : 4) && g.layer == g.conv + 1, "%s: conv %d, A from layer %d", c, g.conv,
                  g.layer);
        CHECK(g.cls == used && g.in_h == 10 && g.in_w == 10);
        CHECK(g.k == (layer == 1 ? 4 : 5) && g.h == (layer == 1 ? 10 : 5) && g.w == g.h);
        snprintf(what, sizeof what, "%s alpha", c);
        cxt_allclose(g.alpha, CX_F(fx(c, "alpha")), g.k, 1e-4, 1e-7, what);
        snprintf(what, sizeof what, "%s cam", c);
        cxt_allclose(g.cam, CX_F(fx(c, "cam")), (long)g.h * g.w, 1e-4, 1e-6, what);
        snprintf(what, sizeof what, "%s upsampled cam", c);
        cxt_allclose(g.up, CX_F(fx(c, "up")), 100, 1e-4, 1e-6, what);
        float mx = 0;
        for (int p = 0; p < g.h * g.w; p++) mx = fmaxf(mx, g.cam[p]);
        cams_nonzero += mx > 1e-4f;
        cx_gradcam_free(&g);
    }
    CHECK_MSG(cams_nonzero >= 2, "only %d of the reference CAMs are non-zero: a weak test", cams_nonzero);
    /* default layer: the last conv2d (c2) and its relu */
    cx_gradcam_result g;
    CHECK(cx_gradcam(net, fx("pred_c2", "x"), NULL, -1, &g) == CX_OK);
    CHECK(g.conv == 4 && g.layer == 5);
    cxt_allclose(g.cam, CX_F(fx("pred_c2", "cam")), 25, 1e-4, 1e-6, "default layer cam");
    cx_gradcam_free(&g);
    /* parameters: no gradient left behind, still trainable; training mode kept */
    for (int i = 0; i < ps.n; i++) CHECK_MSG(ps.t[i]->requires_grad && !ps.t[i]->grad, "%s", ps.t[i]->name);
    CHECK(cx_is_training());
    cx_params_free(&ps);
    cx_module_free(net);
    cx_step_reset();
}

/* ---------------------------------------------------------------- receptive boxes */
static void check_box(cx_module *net, int layer, int y, int x, int y0, int x0, int y1, int x1) {
    int b[4] = {0};
    CHECK_MSG(cx_net_receptive_box(net, layer, y, x, b) == CX_OK, "%s", cx_last_error());
    CHECK_MSG(b[0] == y0 && b[1] == x0 && b[2] == y1 && b[3] == x1,
              "layer %d unit (%d, %d): box rows %d..%d cols %d..%d, expected rows %d..%d cols %d..%d", layer, y, x,
              b[0], b[2], b[1], b[3], y0, y1, x0, x1);
}

static void receptive_boxes(void) {
    /* LeNet's front: conv 5 pad 2, pool 2, conv 5 */
    cx_module *net = net_of("input 1 28 28\nconv2d name=conv1 out=6 k=5 p=2\nrelu\nmaxpool2d k=2\n"
                            "conv2d name=conv2 out=16 k=5\nrelu\n");
    if (!net) return;
    check_box(net, 1, 0, 0, -2, -2, 2, 2);
    check_box(net, 1, 27, 10, 25, 8, 29, 12);
    check_box(net, 3, 0, 0, -2, -2, 3, 3);
    /* conv2 (3, 4): pool rows 3..7 cols 4..8 -> conv1 rows 6..15 cols 8..17 -> input rows 4..17 cols 6..19 */
    check_box(net, 4, 3, 4, 4, 6, 17, 19);
    check_box(net, 5, 0, 0, -2, -2, 11, 11);
    int b[4];
    cx_net_receptive_box(net, 4, 9, 9, b);
    CHECK(b[2] - b[0] + 1 == (int)cx_net_layer(net, 4)->rf[0] && b[3] - b[1] + 1 == 14);
    /* out of range, and the input line itself */
    CHECK(cx_net_receptive_box(net, 4, 10, 0, b) == CX_ERR_ARG && strstr(cx_last_error(), "outside"));
    CHECK(cx_net_receptive_box(net, 9, 0, 0, b) == CX_ERR_ARG && strstr(cx_last_error(), "out of range"));
    check_box(net, 0, 5, 6, 5, 6, 5, 6);
    cx_module_free(net);
    /* stride 2 then dilation 2: b (y, x) reads a rows y..y+4 -> input rows 2y-1 .. 2y+9 */
    net = net_of("input 1 32 32\nconv2d name=a out=2 k=3 s=2 p=1\nconv2d name=b out=2 k=3 d=2\n"
                 "flatten\nlinear name=fc out=2\n");
    check_box(net, 2, 0, 0, -1, -1, 9, 9);
    check_box(net, 2, 5, 2, 9, 3, 19, 13);
    CHECK(cx_net_layer(net, 2)->rf[0] == 11);
    CHECK(cx_net_receptive_box(net, 3, 0, 0, b) == CX_ERR_ARG && strstr(cx_last_error(), "flatten"));
    cx_module_free(net);
    /* a residual join: the union of both branches */
    net = net_of("input 1 16 16\nconv2d name=a out=2 k=3 p=1\nconv2d name=b out=2 k=5 p=2 from=input\n"
                 "add name=s from=a,b\nupsample scale=2\n");
    check_box(net, 3, 7, 7, 5, 5, 9, 9);
    check_box(net, 4, 15, 15, 5, 5, 9, 9); /* nearest x2: output 15 reads row 7 */
    cx_module_free(net);
}

/* The box equals the pixels the unit's gradient reaches (all weights and
 * inputs positive, average pooling: every pixel of the box counts). */
static void boxes_match_gradients(void) {
    cx_module *net = net_of("input 1 24 24\nconv2d name=c1 out=2 k=3 p=1\nrelu\navgpool2d k=2\n"
                            "conv2d name=c2 out=2 k=3 s=2\nrelu\n");
    if (!net) return;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    for (int i = 0; i < ps.n; i++) cx_fill_uniform(ps.t[i], 0.05f, 0.2f);
    int L = 4, H = cx_net_layer(net, L)->out_shape[1];
    int pos[3][2] = {{0, 0}, {2, 3}, {H - 1, H - 1}};
    for (int q = 0; q < 3; q++) {
        cx_tensor *x = cx_rand_uniform_t(CX_SHAPE(1, 1, 24, 24), 0.1f, 1.0f);
        x->requires_grad = true;
        cx_tensor *o = cx_net_forward_all(net, x)[L];
        float *g = calloc((size_t)o->numel, sizeof *g);
        g[pos[q][0] * o->shape[3] + pos[q][1]] = 1; /* channel 0 */
        cx_backward_with(o, g);
        int y0 = 99, x0 = 99, y1 = -1, x1 = -1;
        for (int y = 0; y < 24; y++)
            for (int xx = 0; xx < 24; xx++)
                if (x->grad[y * 24 + xx] != 0) {
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                    if (xx < x0) x0 = xx;
                    if (xx > x1) x1 = xx;
                }
        int b[4];
        CHECK(cx_net_receptive_box(net, L, pos[q][0], pos[q][1], b) == CX_OK);
        int c0 = b[0] < 0 ? 0 : b[0], c1 = b[1] < 0 ? 0 : b[1], c2 = b[2] > 23 ? 23 : b[2], c3 = b[3] > 23 ? 23 : b[3];
        CHECK_MSG(y0 == c0 && x0 == c1 && y1 == c2 && x1 == c3,
                  "unit (%d, %d): gradient reaches rows %d..%d cols %d..%d, box (clipped) rows %d..%d cols %d..%d",
                  pos[q][0], pos[q][1], y0, y1, x0, x1, c0, c2, c1, c3);
        free(g);
        cx_params_zero_grad(&ps);
        cx_step_reset();
    }
    cx_params_free(&ps);
    cx_module_free(net);
}

/* ---------------------------------------------------------------- top patches */
static void top_patches(void) {
    cx_module *net = net_of("input 1 12 12\nconv2d name=c out=2 k=3 bias=0\nrelu\nflatten\nlinear name=fc out=2\n");
    if (!net) return;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    cx_tensor *w = cx_params_find(&ps, "c.weight");
    cx_fill(w, 1.0f);                                 /* unit 0: sum of the 3x3 patch */
    for (int i = 9; i < 18; i++) CX_F(w)[i] = -1.0f;  /* unit 1: minus that */
    int N = 5;
    cx_tensor *img = cx_rand_uniform_t(CX_SHAPE(N, 1, 12, 12), 0.0f, 0.1f);
    for (int y = 5; y < 8; y++)
        for (int x = 2; x < 5; x++) CX_F(img)[3 * 144 + y * 12 + x] = 1.0f; /* image 3: a bright square */
    cx_patch_hit hits[2 * 8];
    CHECK_MSG(cx_top_activations(net, img, "c", 2, 8, hits) == CX_OK, "%s", cx_last_error());
    CHECK_MSG(hits[0].image == 3 && hits[0].y == 5 && hits[0].x == 2 && hits[0].value > 8.9f,
              "top hit: image %d (%d, %d) value %g", hits[0].image, hits[0].y, hits[0].x, hits[0].value);
    CHECK(hits[0].box[0] == 5 && hits[0].box[1] == 2 && hits[0].box[2] == 7 && hits[0].box[3] == 4);
    bool sorted = true, distinct = true;
    for (int j = 1; j < N; j++) {
        sorted &= hits[j].value <= hits[j - 1].value && hits[j].image >= 0;
        for (int k = 0; k < j; k++) distinct &= hits[j].image != hits[k].image;
    }
    CHECK(sorted && distinct && hits[N].image == -1 && hits[7].image == -1);
    CHECK(hits[8 + N - 1].image == 3); /* unit 1 likes the bright square least */
    CHECK(cx_top_activations(net, img, "fc", 1, 1, hits) == CX_ERR_ARG && strstr(cx_last_error(), "fc"));
    CHECK(cx_top_activations(net, img, "nope", 1, 1, hits) == CX_ERR_ARG && strstr(cx_last_error(), "nope"));
    CHECK(cx_top_activations(net, img, "c", 3, 1, hits) == CX_ERR_ARG && strstr(cx_last_error(), "2 channels"));
    cx_tensor *bad = cx_zeros(CX_SHAPE(2, 1, 10, 12));
    CHECK(cx_top_activations(net, bad, "c", 1, 1, hits) == CX_ERR_ARG);
    cx_params_free(&ps);
    cx_module_free(net);
    cx_step_reset();
}

/* ---------------------------------------------------------------- errors of the gradient methods */
static void gradient_errors(void) {
    cx_module *net = net_of("input 1 8 8\nconv2d name=c out=2 k=3\nrelu\nflatten\nlinear name=fc out=3\n");
    if (!net) return;
    cx_tensor *x = cx_zeros(CX_SHAPE(1, 1, 8, 8));
    cx_saliency_result s;
    cx_gradcam_result g;
    CHECK(cx_gradcam(net, x, "fc", -1, &g) == CX_ERR_ARG && strstr(cx_last_error(), "'fc'") && !g.cam);
    CHECK(cx_gradcam(net, x, "zz", -1, &g) == CX_ERR_ARG && strstr(cx_last_error(), "'zz'"));
    CHECK(cx_gradcam(net, x, NULL, 3, &g) == CX_ERR_ARG && strstr(cx_last_error(), "3 classes"));
    CHECK(cx_saliency(net, x, 7, &s) == CX_ERR_ARG && strstr(cx_last_error(), "3 classes") && !s.map);
    cx_tensor *wrong = cx_zeros(CX_SHAPE(1, 1, 9, 8));
    CHECK(cx_saliency(net, wrong, 0, &s) == CX_ERR_ARG && strstr(cx_last_error(), "[1, 8, 8]"));
    cx_no_grad_begin();
    CHECK(cx_saliency(net, x, 0, &s) == CX_ERR_ARG && strstr(cx_last_error(), "grad mode"));
    cx_no_grad_end();
    cx_module_free(net);
    net = net_of("input 1 8 8\nflatten\nlinear name=fc out=3\n");
    CHECK(cx_gradcam(net, x, NULL, -1, &g) == CX_ERR_ARG && strstr(cx_last_error(), "no conv2d"));
    CHECK(cx_saliency(net, x, -1, &s) == CX_OK && s.cls >= 0 && s.cls < 3); /* any classifier */
    cx_saliency_free(&s);
    cx_module_free(net);
    cx_step_reset();
}

/* ---------------------------------------------------------------- Itti-Koch */
static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* 64x64: a 4x4 grid of bars 2 x 10 pixels centred at (8 + 16 i, 8 + 16 j),
 * all vertical except the one at (odd_i, odd_j), which is horizontal. */
static void bars(float *img, int odd_i, int odd_j) {
    memset(img, 0, sizeof(float) * 64 * 64);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            bool horiz = i == odd_i && j == odd_j;
            int cy = 8 + 16 * i, cx = 8 + 16 * j;
            for (int dy = -5; dy < 5; dy++)
                for (int dx = -1; dx < 1; dx++) {
                    int y = cy + (horiz ? dx : dy), x = cx + (horiz ? dy : dx);
                    img[y * 64 + x] = 1.0f;
                }
        }
}

static void itti_odd_bar(void) {
    static float img[64 * 64];
    int cells[3][2] = {{2, 1}, {0, 3}, {3, 0}};
    for (int q = 0; q < 3; q++) {
        bars(img, cells[q][0], cells[q][1]);
        cx_itti_result r;
        CHECK_MSG(cx_itti_saliency(img, 1, 64, 64, NULL, &r) == CX_OK, "%s", cx_last_error());
        CHECK(r.h == 16 && r.w == 16 && r.in_h == 64 && !r.has_color && !r.color);
        int m = argmax(r.saliency_up, 64 * 64), my = m / 64, mx = m % 64;
        int cy = 8 + 16 * cells[q][0], cx = 8 + 16 * cells[q][1];
        CHECK_MSG(abs(my - cy) <= 6 && abs(mx - cx) <= 6, "odd bar at (%d, %d): saliency maximum at (%d, %d)", cy, cx,
                  my, mx);
        /* the odd bar stands out: its peak beats every other bar's by a quarter */
        float odd = 0, other = 0;
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                float best = 0;
                for (int y = 16 * i; y < 16 * i + 16; y++)
                    for (int x = 16 * j; x < 16 * j + 16; x++) best = fmaxf(best, r.saliency_up[y * 64 + x]);
                if (i == cells[q][0] && j == cells[q][1]) odd = best;
                else other = fmaxf(other, best);
            }
        CHECK_MSG(odd > 1.25f * other, "odd bar peak %g, the best other bar %g", odd, other);
        int mo = argmax(r.orientation, 16 * 16);
        CHECK_MSG(abs(mo / 16 * 4 + 2 - cy) <= 6 && abs(mo % 16 * 4 + 2 - cx) <= 6, "orientation map maximum elsewhere");
        cx_itti_free(&r);
    }
    /* without the odd one no bar stands out: peaks within a factor of 2 */
    bars(img, -1, -1);
    cx_itti_result r;
    CHECK(cx_itti_saliency(img, 1, 64, 64, NULL, &r) == CX_OK);
    float lo = 1e30f, hi = 0;
    for (int i = 1; i < 3; i++)
        for (int j = 1; j < 3; j++) { /* the inner bars (the outer ones touch the border differently) */
            float best = 0;
            for (int y = 16 * i; y < 16 * i + 16; y++)
                for (int x = 16 * j; x < 16 * j + 16; x++) best = fmaxf(best, r.saliency_up[y * 64 + x]);
            lo = fminf(lo, best);
            hi = fmaxf(hi, best);
        }
    CHECK_MSG(hi < 2 * lo, "uniform bars: inner peaks %g .. %g", lo, hi);
    cx_itti_free(&r);
}

static void itti_blob_and_color(void) {
    /* a bright blob on a grey field, 48 x 80 (not square, smaller than min_side) */
    int H = 48, W = 80;
    float *img = malloc(sizeof(float) * 3 * (size_t)H * W);
    for (int i = 0; i < H * W; i++) img[i] = 0.4f;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if ((y - 30) * (y - 30) + (x - 57) * (x - 57) <= 16) img[y * W + x] = 1.0f;
    cx_itti_result r;
    CHECK_MSG(cx_itti_saliency(img, 1, H, W, NULL, &r) == CX_OK, "%s", cx_last_error());
    CHECK_MSG(r.h == 16 && r.w == 27 && r.in_h == H && r.in_w == W, "maps %dx%d", r.h, r.w); /* 256 x 427 working */
    int m = argmax(r.saliency_up, H * W);
    CHECK_MSG(abs(m / W - 30) <= 4 && abs(m % W - 57) <= 4, "blob at (30, 57), maximum at (%d, %d)", m / W, m % W);
    cx_itti_free(&r);
    /* colour: one red disc among grey discs of the same intensity */
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < H * W; i++) img[k * H * W + i] = 0.1f;
    int red = 4;
    for (int d = 0; d < 6; d++) {
        int cy = 12 + 24 * (d / 3), cx = 14 + 26 * (d % 3);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if ((y - cy) * (y - cy) + (x - cx) * (x - cx) <= 20) {
                    img[y * W + x] = d == red ? 0.8f : 0.8f / 3;
                    img[H * W + y * W + x] = d == red ? 0.0f : 0.8f / 3;
                    img[2 * H * W + y * W + x] = d == red ? 0.0f : 0.8f / 3;
                }
    }
    CHECK(cx_itti_saliency(img, 3, H, W, NULL, &r) == CX_OK);
    CHECK(r.has_color && r.color);
    m = argmax(r.saliency_up, H * W);
    CHECK_MSG(abs(m / W - 36) <= 5 && abs(m % W - 40) <= 5, "red disc at (36, 40), maximum at (%d, %d)", m / W, m % W);
    cx_itti_free(&r);
    /* colour off: the discs are alike, no longer the red one above all */
    cx_itti_opts o = cx_itti_defaults();
    o.color = false;
    CHECK(cx_itti_saliency(img, 3, H, W, &o, &r) == CX_OK && !r.color);
    cx_itti_free(&r);
    /* errors */
    CHECK(cx_itti_saliency(img, 2, H, W, NULL, &r) == CX_ERR_ARG && strstr(cx_last_error(), "2 channels"));
    CHECK(cx_itti_saliency(img, 1, 4, W, NULL, &r) == CX_ERR_ARG && strstr(cx_last_error(), "4x80"));
    o = cx_itti_defaults();
    o.c0 = 7;
    CHECK(cx_itti_saliency(img, 1, H, W, &o, &r) == CX_ERR_ARG && strstr(cx_last_error(), "c0"));
    img[5] = NAN;
    CHECK(cx_itti_saliency(img, 1, H, W, NULL, &r) == CX_ERR_ARG && strstr(cx_last_error(), "not finite") &&
          !r.saliency);
    free(img);
}

static void resize_matches_bilinear(void) {
    /* 2x2 -> 4x4 with half-pixel centres: torch gives rows 0, .25, .75, 1 of the span */
    float src[4] = {0, 1, 2, 3}, dst[16];
    cx_resize_bilinear(src, 2, 2, dst, 4, 4);
    float want[16] = {0, 0.25f, 0.75f, 1, 0.5f, 0.75f, 1.25f, 1.5f, 1.5f, 1.75f, 2.25f, 2.5f, 2, 2.25f, 2.75f, 3};
    cxt_allclose(dst, want, 16, 1e-6, 1e-7, "resize 2x2 -> 4x4");
    cx_resize_bilinear(want, 4, 4, dst, 4, 4); /* same size: a copy */
    cxt_allclose(dst, want, 16, 0, 0, "resize identity");
}

int main(void) {
    const char *path = getenv("CX_SALIENCY_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/saliency/saliency.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    cx_seed(5);
    RUN(fixture_file_loads);
    if (FX) RUN(matches_torch);
    RUN(receptive_boxes);
    RUN(boxes_match_gradients);
    RUN(top_patches);
    RUN(gradient_errors);
    RUN(resize_matches_bilinear);
    RUN(itti_odd_bar);
    RUN(itti_blob_and_color);
    cx_st_free(FX);
    TEST_END();
}
