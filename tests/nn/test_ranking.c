/* Image-sentence ranking: cx_triplet_ranking_loss against PyTorch (VSE++'s
 * ContrastiveLoss, tools/gen_ranking_fixtures.py ->
 * tests/fixtures/retrieval/ranking.safetensors, override with
 * CX_RANKING_FIXTURES), values worked out by hand, finite differences;
 * cx_recall_at_k on similarity matrices with known ranks; argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static cx_st_file *FX;
static const char *const CASES[] = {"sum_norm", "max_norm", "sum_raw", "max_raw", "max_ignore", "sum_ignore"};
#define NCASES 6

static cx_tensor *fx(const char *c, const char *what) { return cxt_fx(FX, c, what); }

static void fixture_file_loads(void) {
    CHECK_MSG(FX != NULL, "cannot load the ranking fixtures (%s); generate them with "
              "/usr/bin/python3 tools/gen_ranking_fixtures.py", cx_last_error());
    const char *meta = FX ? cx_st_meta(FX, "cases") : NULL;
    CHECK(meta && !strcmp(meta, "sum_norm,max_norm,sum_raw,max_raw,max_ignore,sum_ignore"));
}

static cx_tensor *leaf(const cx_tensor *t) {
    cx_tensor *x = cx_from_data(CX_F(t), t->shape, t->ndim);
    x->requires_grad = true;
    return x;
}

static cx_ranking_opts case_opts(const char *c) {
    cx_ranking_opts o = cx_ranking_defaults();
    o.margin = CX_F(fx(c, "margin"))[0];
    o.max_violation = cxt_fx_int(FX, c, "max") == 1;
    o.normalize = cxt_fx_int(FX, c, "norm") == 1;
    o.ignore = fx(c, "ignore");
    return o;
}

static void matches_torch(void) {
    for (int k = 0; k < NCASES; k++) {
        const char *c = CASES[k];
        cx_tensor *im0 = fx(c, "im"), *s0 = fx(c, "s");
        CHECK(im0 && s0);
        if (!im0 || !s0) continue;
        const int B = im0->shape[0];
        long n = (long)im0->numel;
        char what[96];
        cx_ranking_opts o = case_opts(c);
        /* per pair, with an upstream gradient */
        o.reduction = CX_REDUCE_NONE;
        cx_tensor *im = leaf(im0), *s = leaf(s0);
        cx_tensor *per = cx_triplet_ranking_loss(im, s, &o);
        CHECK(per->ndim == 1 && per->shape[0] == B);
        snprintf(what, sizeof what, "%s per pair", c);
        cxt_allclose(CX_F(per), CX_F(fx(c, "per")), B, 1e-5, 1e-5, what);
        cx_backward_with(per, CX_F(fx(c, "gout")));
        snprintf(what, sizeof what, "%s grad im", c);
        cxt_allclose(im->grad, CX_F(fx(c, "gim")), n, 1e-4, 1e-5, what);
        snprintf(what, sizeof what, "%s grad s", c);
        cxt_allclose(s->grad, CX_F(fx(c, "gs")), n, 1e-4, 1e-5, what);
        /* the sum (the default reduction) */
        o.reduction = CX_REDUCE_SUM;
        im = leaf(im0), s = leaf(s0);
        cx_tensor *loss = cx_triplet_ranking_loss(im, s, &o);
        CHECK(loss->numel == 1);
        CHECK_NEAR(cx_item(loss), CX_F(fx(c, "loss"))[0], 1e-5 + 1e-5 * fabs(CX_F(fx(c, "loss"))[0]));
        cx_backward(loss);
        snprintf(what, sizeof what, "%s grad im (sum)", c);
        cxt_allclose(im->grad, CX_F(fx(c, "gim_sum")), n, 1e-4, 1e-5, what);
        snprintf(what, sizeof what, "%s grad s (sum)", c);
        cxt_allclose(s->grad, CX_F(fx(c, "gs_sum")), n, 1e-4, 1e-5, what);
        /* the mean */
        o.reduction = CX_REDUCE_MEAN;
        loss = cx_triplet_ranking_loss(leaf(im0), leaf(s0), &o);
        CHECK_NEAR(cx_item(loss), CX_F(fx(c, "loss"))[0] / B, 1e-5);
        cx_step_reset();
    }
    /* the ignore mask matters: without it the same inputs give another loss */
    cx_ranking_opts o = case_opts("max_ignore");
    o.ignore = NULL;
    cx_tensor *l = cx_triplet_ranking_loss(fx("max_ignore", "im"), fx("max_ignore", "s"), &o);
    CHECK(fabs(cx_item(l) - CX_F(fx("max_ignore", "loss"))[0]) > 1e-3);
}

/* orthonormal pairs im = s = e_b: S = I, every violation margin - 1 */
static void by_hand(void) {
    const int B = 3;
    cx_tensor *e = cx_zeros(CX_SHAPE(3, 3));
    for (int i = 0; i < B; i++) CX_F(e)[i * B + i] = 1;
    cx_ranking_opts o = cx_ranking_defaults();
    CHECK_NEAR(o.margin, 0.2, 1e-7);
    CHECK(!o.max_violation && !o.normalize && o.reduction == CX_REDUCE_SUM && !o.ignore);
    CHECK_NEAR(cx_item(cx_triplet_ranking_loss(e, e, &o)), 0.0, 1e-7); /* margin 0.2 met everywhere */
    o.margin = 1.5f; /* each off-diagonal term 0.5: sum 2 x 2 x 0.5 per pair, max 2 x 0.5 */
    CHECK_NEAR(cx_item(cx_triplet_ranking_loss(e, e, &o)), 6.0, 1e-6);
    o.max_violation = true;
    CHECK_NEAR(cx_item(cx_triplet_ranking_loss(e, e, &o)), 3.0, 1e-6);
    /* scaled inputs: normalisation restores the same values */
    cx_tensor *e3 = cx_mul_scalar(e, 3.0f);
    o.normalize = true;
    CHECK_NEAR(cx_item(cx_triplet_ranking_loss(e3, e, &o)), 3.0, 1e-6);
    o.normalize = false; /* S = 3 I: violations 1.5 - 3 < 0 */
    CHECK_NEAR(cx_item(cx_triplet_ranking_loss(e3, e, &o)), 0.0, 1e-6);
    /* hardest negative: image 0 = (1, 0), sentences (1, 0), (0.8, 0.6), (0, 1), margin 0.5:
     * row 0: c_s(0,1) = 0.5 - 1 + 0.8 = 0.3, c_s(0,2) = 0 -> max 0.3, sum 0.3 */
    float imv[] = {1, 0, 0.6f, 0.8f, 0, 1}, sv[] = {1, 0, 0.8f, 0.6f, 0, 1};
    cx_tensor *im = cx_from_data(imv, CX_SHAPE(3, 2)), *s = cx_from_data(sv, CX_SHAPE(3, 2));
    o = cx_ranking_defaults();
    o.margin = 0.5f;
    o.reduction = CX_REDUCE_NONE;
    /* S = [[1, .8, 0], [.6, .96, .8], [0, .6, 1]]; diag 1, .96, 1
     * pair 0: c_s row 0: [.5-1+.8]=.3, [.5-1+0]=0; c_im col 0: [.5-1+.6]=.1, 0 -> sum .4, max .4
     * pair 1: c_s row 1: [.5-.96+.6]=.14, [.5-.96+.8]=.34; c_im col 1: [.5-.96+.8]=.34, [.5-.96+.6]=.14
     *         -> sum .96, max .68
     * pair 2: c_s row 2: 0, [.5-1+.6]=.1; c_im col 2: 0, [.5-1+.8]=.3 -> sum .4, max .4 */
    cx_tensor *l = cx_triplet_ranking_loss(im, s, &o);
    CHECK_NEAR(CX_F(l)[0], 0.4, 1e-6);
    CHECK_NEAR(CX_F(l)[1], 0.96, 1e-6);
    CHECK_NEAR(CX_F(l)[2], 0.4, 1e-6);
    o.max_violation = true;
    l = cx_triplet_ranking_loss(im, s, &o);
    CHECK_NEAR(CX_F(l)[0], 0.4, 1e-6);
    CHECK_NEAR(CX_F(l)[1], 0.68, 1e-6);
    CHECK_NEAR(CX_F(l)[2], 0.4, 1e-6);
    /* ignoring (1, 2) and (2, 1): pair 1 loses c_s(1, 2) = .34 and c_im(2, 1) = .14,
     * its hardest negatives become c_s(1, 0) = .14 and c_im(0, 1) = .34 */
    cx_tensor *ign = cx_zeros(CX_SHAPE(3, 3));
    CX_F(ign)[1 * 3 + 2] = CX_F(ign)[2 * 3 + 1] = 1;
    o.ignore = ign;
    l = cx_triplet_ranking_loss(im, s, &o);
    CHECK_NEAR(CX_F(l)[1], 0.48, 1e-6);
    /* pair 2: c_s(2, 1) and c_im(1, 2) ignored */
    CHECK_NEAR(CX_F(l)[2], 0.0, 1e-6);
    /* an I32 mask works the same */
    int32_t iv[9] = {0, 0, 0, 0, 0, 1, 0, 1, 0};
    o.ignore = cx_from_i32(iv, CX_SHAPE(3, 3));
    l = cx_triplet_ranking_loss(im, s, &o);
    CHECK_NEAR(CX_F(l)[1], 0.48, 1e-6);
    o.max_violation = false; /* the sum keeps the same two terms */
    l = cx_triplet_ranking_loss(im, s, &o);
    CHECK_NEAR(CX_F(l)[1], 0.48, 1e-6);
    CHECK_NEAR(CX_F(l)[0], 0.4, 1e-6);
}

typedef struct {
    cx_ranking_opts o;
} gc_ctx;

static cx_tensor *loss_fn(cx_tensor **in, int n, void *user) {
    (void)n;
    return cx_triplet_ranking_loss(in[0], in[1], &((gc_ctx *)user)->o);
}

static void gradcheck(void) {
    for (int form = 0; form < 4; form++) {
        cx_seed(11 + (uint64_t)form);
        cx_tensor *ins[2] = {cx_randn(CX_SHAPE(5, 4), 0, 1), cx_randn(CX_SHAPE(5, 4), 0, 1)};
        ins[0]->requires_grad = ins[1]->requires_grad = true;
        gc_ctx c = {cx_ranking_defaults()};
        c.o.max_violation = form & 1;
        c.o.normalize = form & 2;
        c.o.margin = 0.3f;
        c.o.reduction = CX_REDUCE_MEAN;
        double worst = cx_gradcheck(loss_fn, ins, 2, &c, 1e-3f, 2e-3f, 1e-2f, true);
        CHECK_MSG(worst <= 1.0, "form %d: worst %g", form, worst);
        /* the loss is not trivially zero at these points */
        CHECK(cx_item(loss_fn(ins, 2, &c)) > 0.05f);
    }
}

/* ---------------------------------------------------------------- recall at K */

static void recall_diagonal(void) {
    /* 4 pairs; the correct text of image i ranks: image 0 first, image 1 second,
     * image 2 third, image 3 fourth */
    float v[16] = {
        0.9f, 0.1f, 0.2f, 0.3f, /* image 0: text 0 best -> rank 1 */
        0.8f, 0.7f, 0.1f, 0.0f, /* image 1: text 0 above text 1 -> rank 2 */
        0.5f, 0.6f, 0.4f, 0.0f, /* image 2: rank 3 */
        0.5f, 0.6f, 0.7f, 0.1f, /* image 3: rank 4 */
    };
    cx_tensor *sim = cx_from_data(v, CX_SHAPE(4, 4));
    cx_recall_result r;
    int ks[4] = {1, 2, 3, 4};
    CHECK(cx_recall_at_k(sim, NULL, NULL, ks, 4, &r) == CX_OK);
    CHECK(r.n_img == 4 && r.n_txt == 4 && r.n_k == 4 && r.k[2] == 3);
    for (int q = 0; q < 4; q++) CHECK_NEAR(r.i2t[q], (q + 1) / 4.0, 1e-12);
    CHECK_NEAR(r.i2t_median_rank, 2.5, 1e-12);
    CHECK_NEAR(r.i2t_mean_rank, 2.5, 1e-12);
    /* columns: text 0: image 0 (0.9) best -> 1; text 1: image 1 (0.7) best -> 1;
     * text 2: image 2 (0.4) below image 3 (0.7) -> 2; text 3: image 3 (0.1) below image 0 (0.3) -> 2 */
    CHECK_NEAR(r.t2i[0], 0.5, 1e-12);
    CHECK_NEAR(r.t2i[1], 1.0, 1e-12);
    CHECK_NEAR(r.t2i_mean_rank, 1.5, 1e-12);
    CHECK_NEAR(r.t2i_median_rank, 1.5, 1e-12);
    /* default K = 1, 5, 10 */
    CHECK(cx_recall_at_k(sim, NULL, NULL, NULL, 0, &r) == CX_OK);
    CHECK(r.n_k == 3 && r.k[0] == 1 && r.k[1] == 5 && r.k[2] == 10);
    CHECK_NEAR(r.i2t[0], 0.25, 1e-12);
    CHECK_NEAR(r.i2t[1], 1.0, 1e-12);
    /* ties count against the query: a constant matrix gives rank n */
    cx_tensor *flat = cx_full(CX_SHAPE(5, 5), 0.5f);
    CHECK(cx_recall_at_k(flat, NULL, NULL, (int[]){4, 5}, 2, &r) == CX_OK);
    CHECK_NEAR(r.i2t[0], 0.0, 1e-12);
    CHECK_NEAR(r.t2i[0], 0.0, 1e-12);
    CHECK_NEAR(r.i2t[1], 1.0, 1e-12);
    CHECK_NEAR(r.t2i_median_rank, 5.0, 1e-12);
}

/* two captions per image (txt_img) and text-level relevance (relevant) */
static void recall_several_captions(void) {
    /* 3 images, 6 texts; text j describes image j / 2 */
    int owner[6] = {0, 0, 1, 1, 2, 2};
    float v[18] = {
        0.1f, 0.9f, 0.95f, 0.0f, 0.0f, 0.0f, /* image 0: best own text 1 (0.9), text 2 above -> rank 2 */
        0.0f, 0.0f, 0.2f, 0.8f, 0.1f, 0.1f,  /* image 1: text 3 best -> rank 1 */
        0.7f, 0.6f, 0.0f, 0.0f, 0.5f, 0.4f,  /* image 2: own best 0.5, texts 0, 1 above -> rank 3 */
    };
    cx_tensor *sim = cx_from_data(v, CX_SHAPE(3, 6));
    cx_recall_result r;
    CHECK(cx_recall_at_k(sim, owner, NULL, (int[]){1, 2, 3}, 3, &r) == CX_OK);
    CHECK_NEAR(r.i2t[0], 1 / 3.0, 1e-12);
    CHECK_NEAR(r.i2t[1], 2 / 3.0, 1e-12);
    CHECK_NEAR(r.i2t[2], 1.0, 1e-12);
    /* texts -> images (column j, own image j/2):
     * t0: img0 .1 < img2 .7 -> 2; t1: img0 .9 -> 1; t2: img1 .2 < img0 .95 -> 2;
     * t3: img1 .8 -> 1; t4: img2 .5 -> 1; t5: img2 .4 -> 1 */
    CHECK_NEAR(r.t2i[0], 4 / 6.0, 1e-12);
    CHECK_NEAR(r.t2i[1], 1.0, 1e-12);
    CHECK_NEAR(r.t2i_mean_rank, 8 / 6.0, 1e-12);
    /* text 2 says the same as text 1 about image 0 too: relevance by text */
    uint8_t rel[18] = {0};
    for (int j = 0; j < 6; j++) rel[owner[j] * 6 + j] = 1;
    rel[0 * 6 + 2] = 1;
    CHECK(cx_recall_at_k(sim, owner, rel, (int[]){1, 2}, 2, &r) == CX_OK); /* relevant wins over txt_img */
    CHECK_NEAR(r.i2t[0], 2 / 3.0, 1e-12); /* image 0 now rank 1 */
    CHECK_NEAR(r.t2i[0], 5 / 6.0, 1e-12); /* text 2 now rank 1 (image 0 relevant) */
}

/* a random scorer: R@K near K / N */
static void recall_random(void) {
    cx_seed(5);
    const int n = 500;
    cx_tensor *sim = cx_randn(CX_SHAPE(n, n), 0, 1);
    cx_recall_result r;
    CHECK(cx_recall_at_k(sim, NULL, NULL, NULL, 0, &r) == CX_OK);
    /* R@10 expected 0.02, sd 0.0063 */
    CHECK_MSG(r.i2t[2] > 0.002 && r.i2t[2] < 0.04, "i2t R@10 %g", r.i2t[2]);
    CHECK_MSG(r.t2i[2] > 0.002 && r.t2i[2] < 0.04, "t2i R@10 %g", r.t2i[2]);
    /* mean rank (n + 1) / 2 = 250.5, sd of the mean about 6.5 */
    CHECK_MSG(fabs(r.i2t_mean_rank - 250.5) < 30, "mean rank %g", r.i2t_mean_rank);
    /* the same matrix plus 10 on the diagonal: everything found first */
    for (int i = 0; i < n; i++) CX_F(sim)[(size_t)i * n + i] += 10;
    CHECK(cx_recall_at_k(sim, NULL, NULL, NULL, 0, &r) == CX_OK);
    CHECK_NEAR(r.i2t[0], 1.0, 0);
    CHECK_NEAR(r.t2i[0], 1.0, 0);
    CHECK_NEAR(r.i2t_median_rank, 1.0, 0);
}

static void errors(void) {
    cx_tensor *a = cx_zeros(CX_SHAPE(3, 4)), *b = cx_zeros(CX_SHAPE(3, 5));
    EXPECT_FATAL(cx_triplet_ranking_loss(a, b, NULL), "[3, 4]", "[3, 5]");
    EXPECT_FATAL(cx_triplet_ranking_loss(a, cx_zeros(CX_SHAPE(12)), NULL), "[B, D]");
    cx_ranking_opts o = cx_ranking_defaults();
    o.margin = -1;
    EXPECT_FATAL(cx_triplet_ranking_loss(a, a, &o), "margin");
    o = cx_ranking_defaults();
    o.ignore = cx_zeros(CX_SHAPE(3, 4));
    EXPECT_FATAL(cx_triplet_ranking_loss(a, a, &o), "ignore mask must be [3, 3]");
    cx_recall_result r;
    cx_tensor *sim = cx_zeros(CX_SHAPE(2, 3));
    CHECK(cx_recall_at_k(sim, NULL, NULL, NULL, 0, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "2 x 3") != NULL);
    CHECK(r.n_k == 0);
    CHECK(cx_recall_at_k(sim, (int[]){0, 0, 5}, NULL, NULL, 0, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "txt_img[2] = 5") != NULL);
    CHECK(cx_recall_at_k(sim, (int[]){0, 0, 0}, NULL, NULL, 0, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "image 1 has no relevant text") != NULL);
    CHECK(cx_recall_at_k(sim, (int[]){0, 1, 1}, NULL, (int[]){0}, 1, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "K = 0") != NULL);
    CHECK(cx_recall_at_k(sim, (int[]){0, 1, 1}, NULL, (int[]){1}, 0, &r) == CX_ERR_ARG);
    CX_F(sim)[4] = NAN;
    CHECK(cx_recall_at_k(sim, (int[]){0, 1, 1}, NULL, NULL, 0, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "NaN similarity at (1, 1)") != NULL);
    uint8_t rel[6] = {1, 0, 0, 0, 1, 0}; /* text 2 describes no image */
    CX_F(sim)[4] = 0;
    CHECK(cx_recall_at_k(sim, NULL, rel, NULL, 0, &r) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "text 2 has no relevant image") != NULL);
    CHECK(cx_recall_at_k(NULL, NULL, NULL, NULL, 0, &r) == CX_ERR_ARG);
}

int main(void) {
    const char *path = getenv("CX_RANKING_FIXTURES");
    if (!path || !*path) path = "tests/fixtures/retrieval/ranking.safetensors";
    if (cx_st_load(path, &FX) != CX_OK) FX = NULL;
    RUN(fixture_file_loads);
    if (FX) RUN(matches_torch);
    RUN(by_hand);
    RUN(gradcheck);
    RUN(recall_diagonal);
    RUN(recall_several_captions);
    RUN(recall_random);
    RUN(errors);
    cx_st_free(FX);
    TEST_END();
}
