/* Image-sentence ranking: the bidirectional hinge loss of visual-semantic
 * embeddings (VSE, Kiros et al. 2014; VSE++ hardest negatives, Faghri et al.
 * 2018) composed from differentiable ops, and recall at K for annotation
 * (image -> text) and retrieval (text -> image). */
#include "../autograd/graph.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

cx_ranking_opts cx_ranking_defaults(void) {
    return (cx_ranking_opts){.margin = 0.2f, .max_violation = false, .normalize = false,
                             .reduction = CX_REDUCE_SUM, .ignore = NULL};
}

/* x / max(||x||, 1e-12) row by row (F.normalize(x, dim=1)) */
static cx_tensor *l2_rows(cx_tensor *x) {
    cx_tensor *n = cx_sqrt(cx_sum_axis(cx_mul(x, x), 1, true));
    return cx_div(x, cx_clamp(n, 1e-12f, FLT_MAX));
}

static bool nonzero_at(const cx_tensor *m, int64_t i) {
    switch (m->dtype) {
    case CX_F32: return CX_F(m)[i] != 0.0f;
    case CX_I32: return CX_I32P(m)[i] != 0;
    case CX_I64: return CX_I64P(m)[i] != 0;
    }
    return false;
}

cx_tensor *cx_triplet_ranking_loss(cx_tensor *im, cx_tensor *s, const cx_ranking_opts *opts) {
    cx_ranking_opts o = opts ? *opts : cx_ranking_defaults();
    if (!im || !s) cx_fatal("triplet_ranking_loss: NULL input");
    if (im->dtype != CX_F32 || s->dtype != CX_F32 || im->ndim != 2 || s->ndim != 2)
        cx_fatal("triplet_ranking_loss: image and sentence embeddings must be F32 [B, D] (got %d-D %s and %d-D %s)",
                 im->ndim, cx_dtype_name(im->dtype), s->ndim, cx_dtype_name(s->dtype));
    if (im->shape[0] != s->shape[0] || im->shape[1] != s->shape[1])
        cx_fatal("triplet_ranking_loss: image embeddings [%d, %d] and sentence embeddings [%d, %d] differ in shape",
                 im->shape[0], im->shape[1], s->shape[0], s->shape[1]);
    const int B = im->shape[0];
    if (B < 1 || im->shape[1] < 1) cx_fatal("triplet_ranking_loss: empty batch [%d, %d]", B, im->shape[1]);
    if (!(o.margin >= 0.0f) || !isfinite(o.margin))
        cx_fatal("triplet_ranking_loss: margin %g must be finite and >= 0", (double)o.margin);
    if (o.reduction != CX_REDUCE_SUM && o.reduction != CX_REDUCE_MEAN && o.reduction != CX_REDUCE_NONE)
        cx_fatal("triplet_ranking_loss: unknown reduction %d", (int)o.reduction);
    if (o.ignore) {
        const cx_tensor *m = o.ignore;
        if (m->ndim != 2 || m->shape[0] != B || m->shape[1] != B)
            cx_fatal("triplet_ranking_loss: the ignore mask must be [%d, %d] (got %d-D, first dims %d x %d)", B, B,
                     m->ndim, m->shape[0], m->ndim > 1 ? m->shape[1] : 1);
        if (m->dtype != CX_F32 && m->dtype != CX_I32 && m->dtype != CX_I64)
            cx_fatal("triplet_ranking_loss: the ignore mask must be F32, I32 or I64 (got %s)",
                     cx_dtype_name(m->dtype));
    }
    if (o.normalize) {
        im = l2_rows(im);
        s = l2_rows(s);
    }
    /* positions that are not negatives: the diagonal and the ignored pairs */
    cx_tensor *mask = cx_zeros(CX_SHAPE(B, B));
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            if (i == j || (o.ignore && nonzero_at(o.ignore, (int64_t)i * B + j))) CX_F(mask)[(size_t)i * B + j] = 1;
    cx_tensor *S = cx_matmul_t(im, s, false, true);            /* S[i, j] = im_i . s_j */
    cx_tensor *d = cx_sum_axis(cx_mul(im, s), 1, true);        /* [B, 1]: S_bb */
    cx_tensor *dt = cx_reshape(d, CX_SHAPE(1, B));             /* [1, B] */
    /* c_s[b, j] = [alpha - S_bb + S_bj]_+ (row b: image b against sentences) */
    cx_tensor *cs = cx_masked_fill(cx_relu(cx_add_scalar(cx_sub(S, d), o.margin)), mask, 0.0f);
    /* c_im[i, b] = [alpha - S_bb + S_ib]_+ (column b: sentence b against images) */
    cx_tensor *cim = cx_masked_fill(cx_relu(cx_add_scalar(cx_sub(S, dt), o.margin)), mask, 0.0f);
    cx_tensor *ls, *lim; /* [B] each */
    if (o.max_violation) {
        ls = cx_max_axis(cs, 1, false);
        lim = cx_max_axis(cim, 0, false);
    } else {
        ls = cx_sum_axis(cs, 1, false);
        lim = cx_sum_axis(cim, 0, false);
    }
    cx_tensor *l = cx_add(ls, lim);
    if (o.reduction == CX_REDUCE_NONE) return l;
    cx_tensor *tot = cx_sum(l);
    return o.reduction == CX_REDUCE_MEAN ? cx_mul_scalar(tot, 1.0f / (float)B) : tot;
}

/* ---------------------------------------------------------------- recall at K */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    const float *sim;
    int n_img, n_txt;
    const int *txt_img;
    const uint8_t *relevant;
} rel_ctx;

static bool is_rel(const rel_ctx *c, int i, int j) {
    if (c->relevant) return c->relevant[(size_t)i * c->n_txt + j] != 0;
    if (c->txt_img) return c->txt_img[j] == i;
    return i == j;
}

cx_status cx_recall_at_k(const cx_tensor *sim, const int *txt_img, const uint8_t *relevant, const int *ks, int n_k,
                         cx_recall_result *out) {
    if (out) memset(out, 0, sizeof *out);
    if (!sim || !out) return cx_set_error(CX_ERR_ARG, "recall_at_k: NULL %s", sim ? "result" : "similarity matrix");
    if (sim->dtype != CX_F32 || sim->ndim != 2)
        return cx_set_error(CX_ERR_ARG, "recall_at_k: the similarity matrix must be F32 [images, texts] (got %d-D %s)",
                            sim->ndim, cx_dtype_name(sim->dtype));
    const int ni = sim->shape[0], nt = sim->shape[1];
    if (ni < 1 || nt < 1) return cx_set_error(CX_ERR_ARG, "recall_at_k: empty similarity matrix [%d, %d]", ni, nt);
    static const int def_ks[3] = {1, 5, 10};
    if (!ks) {
        ks = def_ks;
        n_k = 3;
    }
    if (n_k < 1 || n_k > CX_RECALL_MAX_K)
        return cx_set_error(CX_ERR_ARG, "recall_at_k: %d values of K (1 .. %d allowed)", n_k, CX_RECALL_MAX_K);
    for (int q = 0; q < n_k; q++)
        if (ks[q] < 1) return cx_set_error(CX_ERR_ARG, "recall_at_k: K = %d (must be >= 1)", ks[q]);
    if (!relevant && !txt_img && ni != nt)
        return cx_set_error(CX_ERR_ARG,
                            "recall_at_k: a %d x %d similarity matrix needs txt_img or relevant (pairs on the "
                            "diagonal need a square one)",
                            ni, nt);
    if (!relevant && txt_img)
        for (int j = 0; j < nt; j++)
            if (txt_img[j] < 0 || txt_img[j] >= ni)
                return cx_set_error(CX_ERR_ARG, "recall_at_k: txt_img[%d] = %d is not an image index 0 .. %d", j,
                                    txt_img[j], ni - 1);
    const float *S = CX_F(sim);
    for (int64_t e = 0; e < sim->numel; e++)
        if (isnan(S[e]))
            return cx_set_error(CX_ERR_ARG, "recall_at_k: NaN similarity at (%d, %d)", (int)(e / nt),
                                (int)(e % nt));
    rel_ctx c = {S, ni, nt, txt_img, relevant};
    /* the best relevant score of every image and of every text */
    float *best_i = malloc(sizeof(float) * (size_t)ni), *best_t = malloc(sizeof(float) * (size_t)nt);
    double *rank_i = malloc(sizeof(double) * (size_t)ni), *rank_t = malloc(sizeof(double) * (size_t)nt);
    if (!best_i || !best_t || !rank_i || !rank_t) {
        free(best_i), free(best_t), free(rank_i), free(rank_t);
        return cx_set_error(CX_ERR_NOMEM, "recall_at_k: out of memory (%d x %d)", ni, nt);
    }
    for (int i = 0; i < ni; i++) best_i[i] = NAN, rank_i[i] = 1;
    for (int j = 0; j < nt; j++) best_t[j] = NAN, rank_t[j] = 1;
    for (int i = 0; i < ni; i++)
        for (int j = 0; j < nt; j++)
            if (is_rel(&c, i, j)) {
                float v = S[(size_t)i * nt + j];
                if (isnan(best_i[i]) || v > best_i[i]) best_i[i] = v;
                if (isnan(best_t[j]) || v > best_t[j]) best_t[j] = v;
            }
    const char *missing = NULL;
    int which = -1;
    for (int i = 0; i < ni && !missing; i++)
        if (isnan(best_i[i])) missing = "image", which = i;
    for (int j = 0; j < nt && !missing; j++)
        if (isnan(best_t[j])) missing = "text", which = j;
    cx_status st = CX_OK;
    if (missing) {
        st = cx_set_error(CX_ERR_ARG, "recall_at_k: %s %d has no relevant %s", missing, which,
                          missing[0] == 'i' ? "text" : "image");
    } else {
        for (int i = 0; i < ni; i++)
            for (int j = 0; j < nt; j++) {
                if (is_rel(&c, i, j)) continue;
                float v = S[(size_t)i * nt + j];
                if (v >= best_i[i]) rank_i[i]++; /* text j outranks image i's best caption */
                if (v >= best_t[j]) rank_t[j]++; /* image i outranks text j's best image */
            }
        out->n_img = ni;
        out->n_txt = nt;
        out->n_k = n_k;
        for (int q = 0; q < n_k; q++) {
            out->k[q] = ks[q];
            int hi = 0, ht = 0;
            for (int i = 0; i < ni; i++) hi += rank_i[i] <= ks[q];
            for (int j = 0; j < nt; j++) ht += rank_t[j] <= ks[q];
            out->i2t[q] = (double)hi / ni;
            out->t2i[q] = (double)ht / nt;
        }
        double si = 0, stt = 0;
        for (int i = 0; i < ni; i++) si += rank_i[i];
        for (int j = 0; j < nt; j++) stt += rank_t[j];
        out->i2t_mean_rank = si / ni;
        out->t2i_mean_rank = stt / nt;
        out->i2t_median_rank = median(rank_i, ni);
        out->t2i_median_rank = median(rank_t, nt);
    }
    free(best_i), free(best_t), free(rank_i), free(rank_t);
    return st;
}
