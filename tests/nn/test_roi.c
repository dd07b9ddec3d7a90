/* Object detection ops: RoI pooling and RoIAlign against a plain-torch port
 * of torchvision's kernels (tools/gen_roi_fixtures.py ->
 * tests/fixtures/detect/roi.safetensors, override with CX_ROI_FIXTURES),
 * finite differences; box IoU, NMS, the box coder and average precision on
 * hand-computed cases; argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"pool_s05_3x2",
                                    "pool_s1_2x4",
                                    "align_s05_3x3_sr2",
                                    "align_s05_2x3_adaptive_aligned",
                                    "align_s025_2x2_adaptive",
                                    "align_s05_4x3_sr1_aligned"};
#define NCASES 6

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the RoI fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_roi_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "pool_s05_3x2,pool_s1_2x4,align_s05_3x3_sr2,align_s05_2x3_adaptive_aligned,"
                                "align_s025_2x2_adaptive,align_s05_4x3_sr1_aligned"));
}

static cx_tensor *run_case(const char *c, cx_tensor *x) {
    const float *p = CX_F(fx(c, "param"));
    cx_tensor *rois = fx(c, "rois");
    if (cxt_fx_int(FX, c, "kind") == 0) return cx_roi_pool(x, rois, p[0], (int)p[1], (int)p[2]);
    return cx_roi_align(x, rois, p[0], (int)p[1], (int)p[2], (int)p[3], p[4] != 0.0f);
}

static void matches_torch(void) {
    for (int i = 0; i < NCASES; i++) {
        const char *c = CASES[i];
        cx_tensor *x0 = fx(c, "x"), *want = fx(c, "out");
        CHECK_MSG(x0 && want, "case %s missing", c);
        if (!x0 || !want) continue;
        cx_tensor *x = cx_from_data(CX_F(x0), x0->shape, 4);
        x->requires_grad = true;
        cx_tensor *out = run_case(c, x);
        CHECK(out->ndim == 4 && out->numel == want->numel);
        for (int d = 0; d < 4; d++) CHECK(out->shape[d] == want->shape[d]);
        char what[128];
        snprintf(what, sizeof what, "%s forward", c);
        cxt_allclose(CX_F(out), CX_F(want), (long)want->numel, 1e-5, 1e-5, what);
        cx_backward_with(out, CX_F(fx(c, "gout")));
        snprintf(what, sizeof what, "%s grad input", c);
        cxt_allclose(x->grad, CX_F(fx(c, "gx")), (long)x->numel, 1e-5, 1e-5, what);
        cx_step_reset();
    }
}

/* the fixtures are not trivial: empty bins give 0, the out-of-image RoI
 * reads nothing, a bin's maximum is one of its cells */
static void fixture_sanity(void) {
    if (!FX) return;
    cx_tensor *out = fx("pool_s05_3x2", "out");
    /* roi 7 lies entirely left of and above the image: every bin empty */
    int64_t per = out->numel / out->shape[0];
    for (int64_t k = 0; k < per; k++) CHECK(CX_F(out)[7 * per + k] == 0.0f);
    cx_tensor *ga = fx("align_s05_3x3_sr2", "gx");
    double s = 0;
    for (int64_t k = 0; k < ga->numel; k++) s += fabs(CX_F(ga)[k]);
    CHECK(s > 1.0);
}

typedef struct {
    cx_tensor *rois, *R;
    bool align, aligned;
    int sr;
} rc_ctx;

static cx_tensor *roi_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    rc_ctx *c = user;
    cx_tensor *y = c->align ? cx_roi_align(in[0], c->rois, 0.5f, 3, 2, c->sr, c->aligned)
                            : cx_roi_pool(in[0], c->rois, 0.5f, 3, 2);
    return cx_sum(cx_mul(y, c->R));
}

static void gradcheck(void) {
    cx_seed(11);
    float r[] = {0, 1.0f, 2.0f, 13.0f, 11.0f, 1, 3.3f, 0.7f, 9.9f, 14.2f, 0, -3.0f, 4.0f, 8.0f, 20.0f,
                 1, 2.0f,  2.0f, 3.0f,  3.0f};
    cx_tensor *rois = cx_from_data(r, CX_SHAPE(4, 5));
    cx_tensor *x = cx_randn(CX_SHAPE(2, 2, 8, 7), 0, 1);
    x->requires_grad = true;
    rc_ctx c = {rois, cx_randn(CX_SHAPE(4, 2, 3, 2), 0, 1), true, false, 2};
    double worst = cx_gradcheck(roi_fn, &x, 1, &c, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "roi_align sr 2: worst %g", worst);
    c.aligned = true;
    c.sr = -1;
    worst = cx_gradcheck(roi_fn, &x, 1, &c, 1e-2f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "roi_align aligned adaptive: worst %g", worst);
    /* max pooling: a small step keeps every bin's maximum (random values) */
    c.align = false;
    worst = cx_gradcheck(roi_fn, &x, 1, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "roi_pool: worst %g", worst);
}

/* a RoI on a constant map averages to the constant; roi_pool of a ramp picks
 * the bin's bottom-right cell */
static void known_values(void) {
    cx_tensor *x = cx_full(CX_SHAPE(1, 1, 6, 6), 3.0f);
    float r[] = {0, 1.0f, 1.0f, 4.0f, 5.0f};
    cx_tensor *rois = cx_from_data(r, CX_SHAPE(1, 5));
    cx_tensor *y = cx_roi_align(x, rois, 1.0f, 2, 2, -1, true);
    for (int k = 0; k < 4; k++) CHECK_NEAR(CX_F(y)[k], 3.0, 1e-6);
    cx_tensor *ramp = cx_zeros(CX_SHAPE(1, 1, 6, 6));
    for (int k = 0; k < 36; k++) CX_F(ramp)[k] = (float)k;
    /* cells 0..3 x 0..3 in 2 x 2 bins: maxima at (1,1), (1,3), (3,1), (3,3) */
    float r2[] = {0, 0.0f, 0.0f, 3.0f, 3.0f};
    cx_tensor *p = cx_roi_pool(ramp, cx_from_data(r2, CX_SHAPE(1, 5)), 1.0f, 2, 2);
    CHECK(CX_F(p)[0] == 7.0f && CX_F(p)[1] == 9.0f && CX_F(p)[2] == 19.0f && CX_F(p)[3] == 21.0f);
    /* aligned roi_align of a linear ramp x + 6y at a bin centre reads the ramp there:
     * box 0..6 (the whole map) in 1 x 1 -> the centre 2.5 + 6 * 2.5 */
    float r3[] = {0, 0.0f, 0.0f, 6.0f, 6.0f};
    cx_tensor *a = cx_roi_align(ramp, cx_from_data(r3, CX_SHAPE(1, 5)), 1.0f, 1, 1, 2, true);
    CHECK_NEAR(CX_F(a)[0], 17.5, 1e-5);
}

static cx_tensor *boxes(const float *b, int n) { return cx_from_data(b, CX_SHAPE(n, 4)); }

static void iou(void) {
    float a[] = {0, 0, 2, 2, 0, 0, 4, 4};
    float b[] = {1, 1, 3, 3, 0, 0, 2, 2, 5, 5, 6, 6};
    cx_tensor *m = cx_box_iou(boxes(a, 2), boxes(b, 3));
    CHECK(m->shape[0] == 2 && m->shape[1] == 3);
    const float *v = CX_F(m);
    CHECK_NEAR(v[0], 1.0 / 7.0, 1e-7);  /* overlap 1, union 4 + 4 - 1 */
    CHECK_NEAR(v[1], 1.0, 1e-7);        /* identical */
    CHECK_NEAR(v[2], 0.0, 0);           /* disjoint */
    CHECK_NEAR(v[3], 4.0 / 16.0, 1e-7); /* [1,3]^2 inside [0,4]^2: 4 / 16 */
    CHECK_NEAR(v[4], 4.0 / 16.0, 1e-7);
    CHECK_NEAR(v[5], 0.0, 0);
    float z[] = {1, 1, 1, 1};
    CHECK(cx_box_iou1(z, z) == 0.0f); /* empty union */
}

static void nms(void) {
    /* 0: A, 1: B = A shifted (IoU 81/119), 2: far away, 3: A's top half (IoU
     * with A exactly 0.5: kept, the test is "> threshold"), 4: a copy of 2
     * with the same score (lower index first: 2 kept, 4 suppressed) */
    float b[] = {0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 5, 20, 20, 30, 30};
    float s[] = {0.9f, 0.95f, 0.7f, 0.6f, 0.7f};
    cx_tensor *bx = boxes(b, 5), *sc = cx_from_data(s, CX_SHAPE(5));
    cx_tensor *k = cx_nms(bx, sc, 0.5f);
    CHECK(k->dtype == CX_I64 && k->ndim == 1);
    /* by score: 1 (0.95) kept, 0 suppressed by 1 (0.68 > 0.5), 2 kept, 4 suppressed, 3: IoU with 1 is
     * (9*4)/(100+50-36) = 0.316 -> kept */
    int64_t want[] = {1, 2, 3};
    CHECK(k->shape[0] == 3);
    for (int i = 0; i < 3 && i < k->shape[0]; i++) CHECK(CX_I64P(k)[i] == want[i]);
    /* a threshold above 0.68 keeps 0 too; one above 1 keeps everything */
    k = cx_nms(bx, sc, 0.7f);
    CHECK(k->shape[0] == 4 && CX_I64P(k)[0] == 1 && CX_I64P(k)[1] == 0 && CX_I64P(k)[2] == 2);
    k = cx_nms(bx, sc, 1.0f);
    CHECK(k->shape[0] == 5);
    /* nothing in, nothing out */
    k = cx_nms(cx_zeros(CX_SHAPE(0, 4)), cx_zeros(CX_SHAPE(0)), 0.5f);
    CHECK(k->shape[0] == 0);
    /* per class: 0 and 1 in different classes both survive; 2 and 4 in the same class do not */
    int32_t cl[] = {0, 1, 2, 1, 2};
    k = cx_batched_nms(bx, sc, cx_from_i32(cl, CX_SHAPE(5)), 0.5f);
    int64_t want2[] = {1, 0, 2, 3};
    CHECK(k->shape[0] == 4);
    for (int i = 0; i < 4 && i < k->shape[0]; i++) CHECK(CX_I64P(k)[i] == want2[i]);
}

static void box_coder(void) {
    float p[] = {0, 0, 10, 10, 4, 6, 8, 9};
    float g[] = {2, 2, 12, 22, 3, 5, 9, 11};
    const float w[4] = {10, 10, 5, 5};
    cx_tensor *d = cx_box_encode(boxes(g, 2), boxes(p, 2), w);
    /* P centre (5, 5) size 10 x 10, G centre (7, 12) size 10 x 20 */
    CHECK_NEAR(CX_F(d)[0], 10 * 0.2, 1e-5);
    CHECK_NEAR(CX_F(d)[1], 10 * 0.7, 1e-5);
    CHECK_NEAR(CX_F(d)[2], 0.0, 1e-6);
    CHECK_NEAR(CX_F(d)[3], 5 * log(2.0), 1e-5);
    /* P centre (6, 7.5) size 4 x 3, G centre (6, 8) size 6 x 6 */
    CHECK_NEAR(CX_F(d)[4], 0.0, 1e-6);
    CHECK_NEAR(CX_F(d)[5], 10 * 0.5 / 3.0, 1e-5);
    CHECK_NEAR(CX_F(d)[6], 5 * log(1.5), 1e-5);
    CHECK_NEAR(CX_F(d)[7], 5 * log(2.0), 1e-5);
    cx_tensor *back = cx_box_decode(d, boxes(p, 2), w);
    for (int i = 0; i < 8; i++) CHECK_NEAR(CX_F(back)[i], g[i], 1e-4);
    /* unit weights, and the clamp of log(1000/16) on dw, dh */
    float big[] = {0, 0, 20, 20};
    cx_tensor *c = cx_box_decode(boxes(big, 1), boxes(p, 1), NULL);
    double s = exp(log(1000.0 / 16.0)) * 10; /* 62.5 * 10 */
    CHECK_NEAR(CX_F(c)[2] - CX_F(c)[0], s, 1e-2);
    CHECK_NEAR(CX_F(c)[0], 5 + 0 * 10 - s / 2, 1e-2);
}

static cx_det det(int im, int cls, float s, float x1, float y1, float x2, float y2) {
    cx_det d = {im, cls, s, {x1, y1, x2, y2}};
    return d;
}
static cx_gt gt(int im, int cls, float x1, float y1, float x2, float y2) {
    cx_gt g = {im, cls, {x1, y1, x2, y2}};
    return g;
}

static void average_precision(void) {
    /* TP, FP, TP over two objects: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
     * VOC: 0.5 * 1 + 0.5 * 2/3. COCO: 51 recall points at precision 1, 50 at 2/3. */
    cx_gt g1[] = {gt(0, 0, 0, 0, 10, 10), gt(0, 0, 20, 20, 30, 30)};
    cx_det d1[] = {det(0, 0, 0.9f, 0, 0, 10, 10), det(0, 0, 0.8f, 40, 40, 50, 50), det(0, 0, 0.7f, 21, 20, 31, 30)};
    CHECK_NEAR(cx_average_precision(d1, 3, g1, 2, 0, 0.5f, CX_AP_VOC), 0.5 + 1.0 / 3.0, 1e-12);
    CHECK_NEAR(cx_average_precision(d1, 3, g1, 2, 0, 0.5f, CX_AP_COCO), (51 + 50 * 2.0 / 3.0) / 101.0, 1e-12);
    /* the same detections in another order: the scores decide */
    cx_det d1r[] = {d1[2], d1[0], d1[1]};
    CHECK_NEAR(cx_average_precision(d1r, 3, g1, 2, 0, 0.5f, CX_AP_VOC), 0.5 + 1.0 / 3.0, 1e-12);
    /* a detection in another image or class matches nothing; a class without objects gives -1 */
    cx_det d2[] = {det(1, 0, 0.9f, 0, 0, 10, 10), det(0, 1, 0.8f, 0, 0, 10, 10)};
    CHECK_NEAR(cx_average_precision(d2, 2, g1, 2, 0, 0.5f, CX_AP_VOC), 0.0, 0);
    CHECK(cx_average_precision(d2, 2, g1, 2, 1, 0.5f, CX_AP_VOC) == -1.0);
    /* duplicates: the second detection of one object is a false positive */
    cx_gt g3[] = {gt(0, 0, 0, 0, 10, 10)};
    cx_det d3[] = {det(0, 0, 0.9f, 1, 0, 10, 10), det(0, 0, 0.95f, 0, 0, 10, 10)};
    CHECK_NEAR(cx_average_precision(d3, 2, g3, 1, 0, 0.5f, CX_AP_VOC), 1.0, 1e-12);
    CHECK_NEAR(cx_average_precision(d3, 2, g3, 1, 0, 0.5f, CX_AP_COCO), 1.0, 1e-12);
    /* at IoU 0.95 the better (higher-scored) one matches, the other not:
     * VOC recall 1 at the first detection -> 1 */
    CHECK_NEAR(cx_average_precision(d3, 2, g3, 1, 0, 0.95f, CX_AP_VOC), 1.0, 1e-12);
    /* the low-score one first in score order? swap scores: the loose box (IoU 0.9) first:
     * at 0.95 it is a FP, then the exact box a TP: precision 1/2 at recall 1 */
    d3[0].score = 0.99f;
    CHECK_NEAR(cx_average_precision(d3, 2, g3, 1, 0, 0.95f, CX_AP_VOC), 0.5, 1e-12);
    CHECK_NEAR(cx_average_precision(d3, 2, g3, 1, 0, 0.95f, CX_AP_COCO), 0.5, 1e-12);
    /* IoU exactly 0.5: VOC's strict test rejects it, COCO's accepts it */
    cx_det d4[] = {det(0, 0, 0.9f, 0, 0, 10, 5)};
    CHECK_NEAR(cx_average_precision(d4, 1, g3, 1, 0, 0.5f, CX_AP_VOC), 0.0, 0);
    CHECK_NEAR(cx_average_precision(d4, 1, g3, 1, 0, 0.5f, CX_AP_COCO), 1.0, 1e-12);
    /* VOC compares with the best-overlapping object only (taken: a FP); COCO
     * takes the best still unmatched one */
    cx_gt g5[] = {gt(0, 0, 0, 0, 10, 10), gt(0, 0, 2, 0, 12, 10)};
    cx_det d5[] = {det(0, 0, 0.9f, 0, 0, 10, 10), det(0, 0, 0.8f, 0.5f, 0, 10.5f, 10)};
    CHECK_NEAR(cx_average_precision(d5, 2, g5, 2, 0, 0.5f, CX_AP_VOC), 0.5, 1e-12);
    CHECK_NEAR(cx_average_precision(d5, 2, g5, 2, 0, 0.5f, CX_AP_COCO), 1.0, 1e-12);
    /* no detections at all */
    CHECK_NEAR(cx_average_precision(NULL, 0, g5, 2, 0, 0.5f, CX_AP_COCO), 0.0, 0);
    /* the summary: class 0 from g1/d1, class 1 perfect, class 2 without objects */
    cx_gt gs[] = {g1[0], g1[1], gt(3, 1, 5, 5, 9, 9)};
    cx_det ds[] = {d1[0], d1[1], d1[2], det(3, 1, 0.5f, 5, 5, 9, 9), det(3, 2, 0.5f, 5, 5, 9, 9)};
    double m50, m5095, ap[3];
    int have = cx_detection_map(ds, 5, gs, 3, 3, &m50, &m5095, ap);
    CHECK(have == 2);
    CHECK_NEAR(ap[0], 0.5 + 1.0 / 3.0, 1e-12);
    CHECK_NEAR(ap[1], 1.0, 1e-12);
    CHECK(ap[2] == -1.0);
    CHECK_NEAR(m50, (0.5 + 1.0 / 3.0 + 1.0) / 2.0, 1e-12);
    /* class 1 is exact at every threshold (1.0); class 0: d1[0] exact, d1[2]
     * has IoU 90/110 = 0.818: a TP up to 0.8, from 0.85 on a FP (recall 1/2) */
    double c0 = 0;
    for (int t = 0; t < 10; t++) c0 += t <= 6 ? (51 + 50 * 2.0 / 3.0) / 101.0 : 51.0 / 101.0;
    CHECK_NEAR(m5095, (c0 / 10.0 + 1.0) / 2.0, 1e-12);
}

static void errors(void) {
    cx_tensor *x = cx_zeros(CX_SHAPE(2, 1, 4, 4));
    float r[] = {2, 0, 0, 1, 1};
    EXPECT_FATAL(cx_roi_align(x, cx_from_data(r, CX_SHAPE(1, 5)), 1.0f, 2, 2, 2, true), "roi_align", "roi 0",
                 "batch_index 2", "[0, 2)");
    EXPECT_FATAL(cx_roi_pool(x, cx_zeros(CX_SHAPE(3, 4)), 1.0f, 2, 2), "roi_pool", "[K, 5]", "[3, 4]");
    EXPECT_FATAL(cx_roi_pool(cx_zeros(CX_SHAPE(4, 4)), cx_zeros(CX_SHAPE(1, 5)), 1.0f, 2, 2), "roi_pool",
                 "[N, C, H, W]");
    EXPECT_FATAL(cx_roi_align(x, cx_zeros(CX_SHAPE(1, 5)), 1.0f, 0, 2, 2, true), "output size");
    EXPECT_FATAL(cx_roi_align(x, cx_zeros(CX_SHAPE(1, 5)), -1.0f, 2, 2, 2, true), "spatial_scale");
    EXPECT_FATAL(cx_nms(cx_zeros(CX_SHAPE(3, 4)), cx_zeros(CX_SHAPE(2)), 0.5f), "cx_nms", "scores", "[3]");
    EXPECT_FATAL(cx_box_iou(cx_zeros(CX_SHAPE(3, 5)), cx_zeros(CX_SHAPE(2, 4))), "cx_box_iou", "[N, 4]");
    float bad[] = {0, 0, 0, 5};
    EXPECT_FATAL(cx_box_encode(boxes(bad, 1), boxes(bad, 1), NULL), "proposal 0", "positive width");
}

int main(void) {
    const char *path = getenv("CX_ROI_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/detect/roi.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) RUN(matches_torch);
    RUN(fixture_sanity);
    RUN(gradcheck);
    RUN(known_values);
    RUN(iou);
    RUN(nms);
    RUN(box_coder);
    RUN(average_precision);
    RUN(errors);
    cx_st_free(FX);
    TEST_END();
}
