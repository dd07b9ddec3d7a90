/* Batch normalisation and layer normalisation (ops with backward) and the
 * BatchNorm1d / BatchNorm2d / LayerNorm modules. PyTorch semantics, see
 * include/cortex/norm.h. Sums are vectorised and end in double (see the row kernels). */
#include "../autograd/graph.h"
#include "layout.h"
#include <math.h>
#include <stdio.h>

/* ---------------------------------------------------------------- helpers */
static void shape_text(const int *shape, int ndim, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ", %d" : "%d", shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* Fatal unless t (optional when allow_null) is F32 with exactly `shape`. */
static void need_vec(const char *op, const char *what, const cx_tensor *t, const int *shape, int ndim,
                     const cx_tensor *x) {
    if (!t) return;
    char a[96], b[96], c[96];
    if (t->dtype != CX_F32) cx_fatal("%s: %s must be F32, got %s", op, what, cx_dtype_name(t->dtype));
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        shape_text(shape, ndim, b, sizeof b);
        cx_fatal("%s: %s has shape %s, expected %s for input %s", op, what, cx_shape_str(t, a, sizeof a), b,
                 cx_shape_str(x, c, sizeof c));
    }
}

/* ---------------------------------------------------------------- row kernels
 * Sums over one contiguous run (a row of H*W values of one channel),
 * vectorised with OpenMP simd reductions (one partial sum per lane). The
 * plain sum is accumulated in double (a channel with a large mean and a
 * small spread needs the mean to full precision); sums of terms that are
 * already deviations from the mean use float partial sums over blocks of RB
 * values, added up in double. */
enum { RB = 1024 };
static double sum_row(const float *restrict x, int64_t n) {
    double s = 0;
    CX_OMP(simd reduction(+ : s))
    for (int64_t j = 0; j < n; j++) s += (double)x[j];
    return s;
}
/* sum (x - m)^2 */
static double sqdev_row(const float *restrict x, int64_t n, float m) {
    double t = 0;
    for (int64_t j0 = 0; j0 < n; j0 += RB) {
        const int64_t j1 = j0 + RB < n ? j0 + RB : n;
        float s = 0;
        CX_OMP(simd reduction(+ : s))
        for (int64_t j = j0; j < j1; j++) s += (x[j] - m) * (x[j] - m);
        t += s;
    }
    return t;
}
/* sum g and sum g (x - m) over one block of at most RB values, in float.
 * Not inlined: the plain and the fused batch-norm backward (which masks g
 * first) sum with this one compiled loop, so in the same order. */
__attribute__((noinline)) static void gsums_block(const float *restrict g, const float *restrict x, int64_t n,
                                                  float m, float *sa, float *sb) {
    float a = 0, b = 0;
    CX_OMP(simd reduction(+ : a, b))
    for (int64_t j = 0; j < n; j++) {
        a += g[j];
        b += g[j] * (x[j] - m);
    }
    *sa = a;
    *sb = b;
}
/* sum g and sum g (x - m), added to *sg, *sgx */
static void gsums_row(const float *restrict g, const float *restrict x, int64_t n, float m, double *sg,
                      double *sgx) {
    for (int64_t j0 = 0; j0 < n; j0 += RB) {
        const int64_t j1 = j0 + RB < n ? j0 + RB : n;
        float a, b;
        gsums_block(g + j0, x + j0, j1 - j0, m, &a, &b);
        *sg += a;
        *sgx += b;
    }
}

/* ---------------------------------------------------------------- batch norm */
/* The rows [off, off + n) of a, b and c (when not NULL) towards the cache.
 * The passes read one channel's rows, image after image, C rows apart:
 * each row a new stream, which the hardware prefetcher picks up too late
 * to be of use (a 3 KiB row of a 28x28 map). Asking for the next image's
 * rows -- and, with prefetch_out, for the output rows about to be written
 * -- while working on this one's: a model of the backward's two passes went
 * from 0.83 to 0.66 ms (16 ch 28x28, batch 64, cold cache), and the small
 * ResNet's training step from 94.5 to 91.0 ms at 1 thread, 50.0 to 48.3 at
 * 2 (Intel Xeon VM; mostly the backward, the forward's share measured within
 * noise). */
static inline void prefetch_rows(const float *a, const float *b, const float *c, int64_t off, int64_t n) {
    for (int64_t j = 0; j < n; j += 64 / sizeof(float)) {
        __builtin_prefetch(a + off + j);
        if (b) __builtin_prefetch(b + off + j);
        if (c) __builtin_prefetch(c + off + j);
    }
}
/* The rows [off, off + n) of an output about to be written, and of an
 * input (when not NULL) about to be read with it. */
static inline void prefetch_out(float *w, const float *r, int64_t off, int64_t n) {
    for (int64_t j = 0; j < n; j += 64 / sizeof(float)) {
        __builtin_prefetch(w + off + j, 1);
        if (r) __builtin_prefetch(r + off + j);
    }
}

typedef struct {
    int C;
    int64_t outer, inner;  /* x viewed as [outer, C, inner] */
    bool training, relu;   /* relu: the output is relu(bn(x) [+ residual]) */
    float *mean, *invstd;  /* per channel: the statistics used to normalise */
    float *alpha, *beta;   /* relu without a residual: the forward's scale and shift */
    double n;              /* values per channel: of every process when synced */
    bool synced;           /* statistics summed over the processes (training only) */
    bool rows;             /* channels last: x is [outer, C] rows (inner 1) */
} bn_saved;

/* Synchronised batch norm's backward: the per-channel sums [2 C] (g and g
 * xhat) of every process, each weighted by its share of the loss (the
 * gradient reducer's weight) so that unequal shards sum right, divided back
 * by this process's share: its gradients stay in its own units, which the
 * reducer then weights. */
static void sync_grad_sums(double *sums, int C) {
    const double w = cx_bn_sync.weight();
    if (!(w > 0))
        cx_fatal("batch_norm: synchronised backward with a weight of %g for this process (it needs rows of the batch)", w);
    for (int i = 0; i < 2 * C; i++) sums[i] *= w;
    cx_bn_sync.allreduce(sums, 2 * C);
    for (int i = 0; i < 2 * C; i++) sums[i] /= w;
}

/* The normalised value before the relu, one expression for the forward and
 * for the backward's mask (the same rounding in both). */
static inline float bn_affine(float x, float m, float a, float b) { return (x - m) * a + b; }

/* BW channels at once (the target's vector), for the row passes with C a
 * multiple of BW (the scalar loops paid a loop set-up per row: at 16
 * channels the apply ran at half its 64-channel speed from L2). The same
 * expressions as the scalar code, element by element: the same bits (GCC
 * does not contract them into multiply-adds under -std=c11; clang contracts
 * within an expression, the vector one as the scalar one: tests/nn/test_norm.c
 * checks both builds bit for bit). */
#if defined(__AVX512F__)
#define BW 16
#elif defined(__AVX__)
#define BW 8
#else
#define BW 4
#endif
typedef float bvec __attribute__((vector_size(BW * sizeof(float))));
typedef int32_t bmask __attribute__((vector_size(BW * sizeof(int32_t))));
static inline bvec bld(const float *p) {
    bvec v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void bst(float *p, bvec v) { memcpy(p, &v, sizeof v); }
/* v where keep is set, else +0 (the scalar "t > 0 ? t : 0.0f", also for NaN) */
static inline bvec bkeep(bvec v, bmask keep) { return (bvec)((bmask)v & keep); }
/* 1.0f where keep is set, else 0.0f */
static inline bvec bone(bmask keep) { return bkeep((bvec){0} + 1.0f, keep); }


/* ---------------------------------------------------------------- channels last
 * x viewed as rows [M, C] (channels last: a [N, H, W, C] map, or
 * BatchNorm1d's [N, C]): the passes run along the rows with vectors over the
 * channels, in BN_SLOTS fixed row ranges summed in a fixed order (the same
 * bits for any thread count), each range in float blocks of BN_BLK rows added
 * up in double. */
enum { BN_SLOTS = 16, BN_BLK = 64, BN_ROWS_MAXC = 4096 };
static int bn_slots(int64_t M) { return M < BN_SLOTS ? (int)(M > 0 ? M : 1) : BN_SLOTS; }

/* Per channel, in one pass: sum (x - k) and sum (x - k)^2 with k the first
 * row (the shift keeps the squares' cancellation small), into s1, s2. The
 * rows are read last to first: the end of x is what its producer wrote
 * last, still in cache (the pass after this one reads from the start, which
 * this one read last). */
static void rows_stat(const float *xd, int64_t M, int C, double *s1, double *s2) {
    const int S = bn_slots(M);
    double *part = cx_arena_alloc((size_t)S * 2 * C * sizeof(double));
    float *blk = cx_arena_alloc((size_t)S * 2 * C * sizeof(float));
    const float *k = xd;
    CX_PFOR_BACK((int64_t)M * C > CX_PAR_MIN, int, sl, S, {
        const int64_t r0 = M * sl / S, r1 = M * (sl + 1) / S;
        double *pa = part + (size_t)sl * 2 * C, *pb = pa + C;
        float *ba = blk + (size_t)sl * 2 * C, *bb = ba + C;
        for (int c = 0; c < C; c++) pa[c] = pb[c] = 0;
        for (int64_t q1 = r1; q1 > r0; q1 -= BN_BLK) {
            const int64_t q0 = q1 - BN_BLK > r0 ? q1 - BN_BLK : r0;
            for (int c = 0; c < C; c++) ba[c] = bb[c] = 0;
            for (int64_t q = q1 - 1; q >= q0; q--) {
                const float *xr = xd + q * C;
                for (int c = 0; c < C; c++) {
                    const float d = xr[c] - k[c];
                    ba[c] += d;
                    bb[c] += d * d;
                }
            }
            for (int c = 0; c < C; c++) {
                pa[c] += ba[c];
                pb[c] += bb[c];
            }
        }
    });
    for (int c = 0; c < C; c++) {
        double a = 0, b = 0;
        for (int sl = 0; sl < S; sl++) {
            a += part[(size_t)sl * 2 * C + c];
            b += part[(size_t)sl * 2 * C + C + c];
        }
        s1[c] = a;
        s2[c] = b;
    }
}

/* The backward's per-channel sums over rows: sg[c] = sum g', sgx[c] =
 * sum g' (x - m) with g' = g, or g masked by the relu (from x with alpha,
 * beta, or from y); the masked g stored into (fresh) or added to the
 * residual's gradient gr. */
static void rows_gsums(const float *xd, const float *go, const float *yd, const float *alpha, const float *beta,
                       bool relu, float *gr, bool rfresh, int64_t M, int C, const float *m, double *sg,
                       double *sgx) {
    const int S = bn_slots(M);
    double *part = cx_arena_alloc((size_t)S * 2 * C * sizeof(double));
    float *blk = cx_arena_alloc((size_t)S * 3 * C * sizeof(float));
    CX_OMP(parallel for if((int64_t)M * C > CX_PAR_MIN))
    for (int sl = 0; sl < S; sl++) {
        /* first to last: a convolution's input gradient (the producer of g
         * in a ResNet) writes its images last to first */
        const int64_t r0 = M * sl / S, r1 = M * (sl + 1) / S;
        double *pa = part + (size_t)sl * 2 * C, *pb = pa + C;
        float *ba = blk + (size_t)sl * 3 * C, *bb = ba + C, *d = bb + C;
        for (int c = 0; c < C; c++) pa[c] = pb[c] = 0;
        for (int64_t q0 = r0; q0 < r1; q0 += BN_BLK) {
            const int64_t q1 = q0 + BN_BLK < r1 ? q0 + BN_BLK : r1;
            for (int c = 0; c < C; c++) ba[c] = bb[c] = 0;
            for (int64_t q = q0; q < q1 && C % BW == 0; q++) /* the same, BW channels at once */
                for (int c = 0; c < C; c += BW) {
                    const bvec x = bld(xd + q * C + c), mv = bld(m + c);
                    bvec gm = bld(go + q * C + c);
                    if (relu) {
                        gm = gm * bone(alpha ? (x - mv) * bld(alpha + c) + bld(beta + c) > 0 : bld(yd + q * C + c) > 0);
                        if (gr) bst(gr + q * C + c, rfresh ? gm : bld(gr + q * C + c) + gm);
                    }
                    bst(ba + c, bld(ba + c) + gm);
                    bst(bb + c, bld(bb + c) + gm * (x - mv));
                }
            for (int64_t q = q0; q < q1 && C % BW != 0; q++) {
                const float *xr = xd + q * C, *g = go + q * C;
                const float *gm = g;
                if (relu) {
                    float *dd = gr && rfresh ? gr + q * C : d;
                    if (alpha)
                        for (int c = 0; c < C; c++)
                            dd[c] = g[c] * (bn_affine(xr[c], m[c], alpha[c], beta[c]) > 0 ? 1.0f : 0.0f);
                    else
                        for (int c = 0; c < C; c++) dd[c] = g[c] * (yd[q * C + c] > 0 ? 1.0f : 0.0f);
                    if (gr && !rfresh)
                        for (int c = 0; c < C; c++) gr[q * C + c] += dd[c];
                    gm = dd;
                }
                for (int c = 0; c < C; c++) {
                    ba[c] += gm[c];
                    bb[c] += gm[c] * (xr[c] - m[c]);
                }
            }
            for (int c = 0; c < C; c++) {
                pa[c] += ba[c];
                pb[c] += bb[c];
            }
        }
    }
    for (int c = 0; c < C; c++) {
        double a = 0, b = 0;
        for (int sl = 0; sl < S; sl++) {
            a += part[(size_t)sl * 2 * C + c];
            b += part[(size_t)sl * 2 * C + C + c];
        }
        sg[c] = a;
        sgx[c] = b;
    }
}

/* gx (+)= fa g' + fb (x - m) + fk per channel, g' as in rows_gsums (mg: the
 * masked g already stored, or NULL), rows [q0, q1) on the calling thread
 * (layout.h) */
void cx_bn_rows_dx(const float *xd, const float *go, const float *yd, const float *mg, const float *alpha,
                   const float *beta, bool relu, float *gx, bool fresh, int64_t q0, int64_t q1, int C, const float *m,
                   const float *fa, const float *fb, const float *fk) {
    if (C % BW == 0 && !(relu && !mg && !alpha && !yd)) {
        for (int64_t q = q0; q < q1; q++) {
            const float *xr = xd + q * C, *g = go + q * C;
            float *o = gx + q * C;
            for (int c = 0; c < C; c += BW) {
                const bvec x = bld(xr + c), mv = bld(m + c);
                bvec gm = bld(g + c);
                if (relu && mg)
                    gm = bld(mg + q * C + c);
                else if (relu && alpha)
                    gm = gm * bone((x - mv) * bld(alpha + c) + bld(beta + c) > 0);
                else if (relu)
                    gm = gm * bone(bld(yd + q * C + c) > 0);
                const bvec d = bld(fa + c) * gm + bld(fb + c) * (x - mv) + bld(fk + c);
                bst(o + c, fresh ? d : bld(o + c) + d);
            }
        }
        return;
    }
    for (int64_t q = q0; q < q1; q++) {
        const float *xr = xd + q * C, *g = go + q * C;
        float *o = gx + q * C;
        float t[BN_ROWS_MAXC];
        const float *gm = g;
        if (relu && mg) {
            gm = mg + q * C;
        } else if (relu) {
            gm = t;
            if (alpha)
                for (int c = 0; c < C; c++) t[c] = g[c] * (bn_affine(xr[c], m[c], alpha[c], beta[c]) > 0 ? 1.0f : 0.0f);
            else
                for (int c = 0; c < C; c++) t[c] = g[c] * (yd[q * C + c] > 0 ? 1.0f : 0.0f);
        }
        if (fresh)
            for (int c = 0; c < C; c++) o[c] = fa[c] * gm[c] + fb[c] * (xr[c] - m[c]) + fk[c];
        else
            for (int c = 0; c < C; c++) o[c] += fa[c] * gm[c] + fb[c] * (xr[c] - m[c]) + fk[c];
    }
}
static void rows_gx(const float *xd, const float *go, const float *yd, const float *mg, const float *alpha,
                    const float *beta, bool relu, float *gx, bool fresh, int64_t M, int C, const float *m,
                    const float *fa, const float *fb, const float *fk) {
    const int nb = (int)((M + 255) / 256);
    CX_OMP(parallel for if((int64_t)M * C > CX_PAR_MIN))
    for (int b = 0; b < nb; b++) {
        const int64_t q0 = (int64_t)b * 256, q1 = q0 + 256 < M ? q0 + 256 : M;
        cx_bn_rows_dx(xd, go, yd, mg, alpha, beta, relu, gx, fresh, q0, q1, C, m, fa, fb, fk);
    }
}

/* The sums and the statistics of layout.h */
void cx_bn_rows_gsums(const float *xd, const float *go, const float *yd, const float *alpha, const float *beta,
                      bool relu, float *gr, bool rfresh, int64_t M, int C, const float *m, double *sg, double *sgx) {
    rows_gsums(xd, go, yd, alpha, beta, relu, gr, rfresh, M, C, m, sg, sgx);
}
void cx_bn_rows_stat(const float *xd, int64_t M, int C, double *s1, double *s2) { rows_stat(xd, M, C, s1, s2); }

/* y = (x - m) a + b [+ r], then the relu, rows [q0, q1) (layout.h) */
void cx_bn_rows_apply(const float *xd, const float *rd, bool relu, float *yd, int64_t q0, int64_t q1, int C,
                      const float *fm, const float *fa, const float *fb) {
    if (C % BW == 0) {
        for (int64_t q = q0; q < q1; q++) {
            const float *xr = xd + q * C;
            float *yr = yd + q * C;
            for (int c = 0; c < C; c += BW) {
                bvec t = (bld(xr + c) - bld(fm + c)) * bld(fa + c) + bld(fb + c);
                if (relu && rd) t = t + bld(rd + q * C + c);
                bst(yr + c, relu ? bkeep(t, t > 0) : t);
            }
        }
        return;
    }
    for (int64_t q = q0; q < q1; q++) {
        const float *xr = xd + q * C;
        float *yr = yd + q * C;
        if (!relu) {
            for (int c = 0; c < C; c++) yr[c] = (xr[c] - fm[c]) * fa[c] + fb[c];
        } else if (rd) {
            const float *rr = rd + q * C;
            for (int c = 0; c < C; c++) {
                const float t = (xr[c] - fm[c]) * fa[c] + fb[c] + rr[c];
                yr[c] = t > 0 ? t : 0.0f;
            }
        } else {
            for (int c = 0; c < C; c++) {
                const float t = bn_affine(xr[c], fm[c], fa[c], fb[c]);
                yr[c] = t > 0 ? t : 0.0f;
            }
        }
    }
}

/* Inputs: x, weight, bias and (cx_batch_norm_relu only) the residual. With
 * relu the gradient reaching the sum is g (y > 0), exactly what cx_relu's
 * backward gives (y > 0 where the sum is > 0); the residual receives it as
 * cx_add's backward would, and the normalisation's backward uses it in
 * place of g: the same arithmetic in the same order as the three ops. */
/* Without a residual the relu's mask y > 0 is recomputed from x with the
 * forward's own scale and shift (bn_affine > 0: the same test on the same
 * value), so that the two passes read x and g but not y: two of the seven
 * reads of a 3 MiB map. */
static void batch_norm_backward_rows(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    const bn_saved *s = nd->saved;
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    bool fresh, rfresh = false; /* the residual's gradient first, as below */
    float *gr = nd->n_in > 3 && nd->in[3] ? cx_in_grad_w(nd, 3, &rfresh) : NULL;
    float *gx = cx_in_grad_w(nd, 0, &fresh);
    float *gw = w ? cx_in_grad(nd, 1) : NULL;
    float *gb = nd->in[2] ? cx_in_grad(nd, 2) : NULL;
    const float *xd = CX_F(x), *go = out->grad, *wd = w ? CX_F(w) : NULL;
    const bool xmask = s->relu && s->alpha;
    const float *yd = s->relu && !xmask ? CX_F(out) : NULL;
    const int C = s->C;
    const int64_t M = s->outer;
    const int Cn = C > 0 ? C : 1;
    double *sg = cx_arena_alloc((size_t)Cn * sizeof(double)), *sgx = cx_arena_alloc((size_t)Cn * sizeof(double));
    rows_gsums(xd, go, yd, xmask ? s->alpha : NULL, xmask ? s->beta : NULL, s->relu, gr, rfresh, M, C, s->mean, sg,
               sgx);
    for (int c = 0; c < C; c++) {
        sgx[c] *= s->invstd[c];
        if (gw) gw[c] += (float)sgx[c];
        if (gb) gb[c] += (float)sg[c];
    }
    if (s->synced) {
        double *sums = cx_arena_alloc((size_t)2 * Cn * sizeof(double));
        for (int c = 0; c < C; c++) sums[2 * c] = sg[c], sums[2 * c + 1] = sgx[c];
        sync_grad_sums(sums, C);
        for (int c = 0; c < C; c++) sg[c] = sums[2 * c], sgx[c] = sums[2 * c + 1];
    }
    if (!gx) return;
    float *fa = cx_arena_alloc((size_t)3 * Cn * sizeof(float)), *fb = fa + Cn, *fk = fb + Cn;
    for (int c = 0; c < C; c++) {
        const double invstd = s->invstd[c], scale = (wd ? wd[c] : 1.0) * invstd;
        const double mg = s->training ? sg[c] / s->n : 0.0, mgx = s->training ? sgx[c] / s->n : 0.0;
        fa[c] = (float)scale;
        fb[c] = (float)(-scale * mgx * invstd);
        fk[c] = (float)(-scale * mg);
    }
    rows_gx(xd, go, yd, s->relu && gr && rfresh ? gr : NULL, xmask ? s->alpha : NULL, xmask ? s->beta : NULL,
            s->relu, gx, fresh, M, C, s->mean, fa, fb, fk);
}

static void batch_norm_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    const bn_saved *s = nd->saved;
    if (s->rows) {
        batch_norm_backward_rows(nd);
        return;
    }
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    bool fresh, rfresh = false; /* gx / gr just created: every element is stored below */
    /* the residual's gradient first: when the residual is x itself, its
     * buffer is then stored by the first pass and added to by the second,
     * as cx_add's backward and then the normalisation's would */
    float *gr = nd->n_in > 3 && nd->in[3] ? cx_in_grad_w(nd, 3, &rfresh) : NULL;
    float *gx = cx_in_grad_w(nd, 0, &fresh);
    float *gw = w ? cx_in_grad(nd, 1) : NULL;
    float *gb = nd->in[2] ? cx_in_grad(nd, 2) : NULL;
    const float *xd = CX_F(x), *go = out->grad, *wd = w ? CX_F(w) : NULL;
    const bool xmask = s->relu && s->alpha; /* the relu's mask from x */
    const float *yd = s->relu && !xmask ? CX_F(out) : NULL;
    const float *mgr = yd && gr && rfresh ? gr : NULL; /* g (y > 0), stored by the first pass */
    const int C = s->C;
    const int64_t outer = s->outer, inner = s->inner;
    const double n = s->n; /* all the processes' values when synchronised */
    /* synchronised: the per-channel sums of every channel first (the
     * weight's and bias's gradients take this process's), then summed over
     * the processes, then the input gradient from the sums */
    double *sums = s->synced ? cx_arena_alloc((size_t)(C > 0 ? 2 * C : 1) * sizeof(double)) : NULL;
    for (int pass = 0; pass < (sums ? 2 : 1); pass++) {
        if (pass == 1) sync_grad_sums(sums, C);
        CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
        for (int c = 0; c < C; c++) {
            const double mean = s->mean[c], invstd = s->invstd[c];
            const float fm = (float)mean;
            const float xa = xmask ? s->alpha[c] : 0.0f, xb = xmask ? s->beta[c] : 0.0f;
            double sg = 0, sgx = 0;
            if (pass == 1) {
                sg = sums[2 * c];
                sgx = sums[2 * c + 1];
            } else {
                for (int64_t o = 0; o < outer; o++) {
                    const int64_t off = (o * C + c) * inner;
                    if (o + 1 < outer) prefetch_rows(xd, go, yd, off + C * inner, inner);
                    if (!s->relu) {
                        gsums_row(go + off, xd + off, inner, fm, &sg, &sgx);
                        continue;
                    }
                    /* the masked gradient g (y > 0), a block at a time (stored as
                     * the residual's gradient when there is one), then summed */
                    const float *g = go + off, *yr = yd ? yd + off : NULL, *xr = xd + off;
                    float *rr = gr ? gr + off : NULL;
                    float blk[RB];
                    for (int64_t j0 = 0; j0 < inner; j0 += RB) {
                        const int64_t m = j0 + RB < inner ? RB : inner - j0;
                        float *d = rr && rfresh ? rr + j0 : blk;
                        if (xmask)
                            for (int64_t j = 0; j < m; j++)
                                d[j] = g[j0 + j] * (bn_affine(xr[j0 + j], fm, xa, xb) > 0 ? 1.0f : 0.0f);
                        else
                            for (int64_t j = 0; j < m; j++) d[j] = g[j0 + j] * (yr[j0 + j] > 0 ? 1.0f : 0.0f);
                        if (rr && !rfresh)
                            for (int64_t j = 0; j < m; j++) rr[j0 + j] += d[j];
                        float a, b;
                        gsums_block(d, xd + off + j0, m, fm, &a, &b);
                        sg += a;
                        sgx += b;
                    }
                }
                sgx *= invstd;
                if (gw) gw[c] += (float)sgx;
                if (gb) gb[c] += (float)sg;
                if (sums) {
                    sums[2 * c] = sg;
                    sums[2 * c + 1] = sgx;
                    continue;
                }
            }
            if (!gx) continue;
            /* gx += scale (g - mg - xhat mgx) = a g + b (x - mean) + k in float */
            const double scale = (wd ? wd[c] : 1.0) * invstd;
            const double mg = s->training ? sg / n : 0.0, mgx = s->training ? sgx / n : 0.0;
            const float fa = (float)scale, fb = (float)(-scale * mgx * invstd), fk = (float)(-scale * mg);
            for (int64_t o = 0; o < outer; o++) {
                const int64_t off = (o * C + c) * inner;
                const float *xr = xd + off, *gr_ = go + off;
                float *gxr = gx + off;
                if (o + 1 < outer) prefetch_out(gx, mgr, off + C * inner, inner);
                if (xmask) {
                    if (fresh)
                        for (int64_t j = 0; j < inner; j++)
                            gxr[j] = fa * (gr_[j] * (bn_affine(xr[j], fm, xa, xb) > 0 ? 1.0f : 0.0f)) +
                                     fb * (xr[j] - fm) + fk;
                    else
                        for (int64_t j = 0; j < inner; j++)
                            gxr[j] += fa * (gr_[j] * (bn_affine(xr[j], fm, xa, xb) > 0 ? 1.0f : 0.0f)) +
                                      fb * (xr[j] - fm) + fk;
                } else if (mgr) {
                    /* the masked gradient, as the first pass stored it into the
                     * residual's fresh gradient: one read instead of g and y
                     * (when the residual is x itself, gxr is that buffer, each
                     * element read before it is written) */
                    const float *mr = mgr + off;
                    if (fresh)
                        for (int64_t j = 0; j < inner; j++) gxr[j] = fa * mr[j] + fb * (xr[j] - fm) + fk;
                    else
                        for (int64_t j = 0; j < inner; j++) gxr[j] += fa * mr[j] + fb * (xr[j] - fm) + fk;
                } else if (yd) {
                    const float *yr = yd + off;
                    if (fresh)
                        for (int64_t j = 0; j < inner; j++)
                            gxr[j] = fa * (gr_[j] * (yr[j] > 0 ? 1.0f : 0.0f)) + fb * (xr[j] - fm) + fk;
                    else
                        for (int64_t j = 0; j < inner; j++)
                            gxr[j] += fa * (gr_[j] * (yr[j] > 0 ? 1.0f : 0.0f)) + fb * (xr[j] - fm) + fk;
                } else if (fresh)
                    for (int64_t j = 0; j < inner; j++) gxr[j] = fa * gr_[j] + fb * (xr[j] - fm) + fk;
                else
                    for (int64_t j = 0; j < inner; j++) gxr[j] += fa * gr_[j] + fb * (xr[j] - fm) + fk;
            }
        }
    }
}

CX_OP_DEF(batch_norm, .backward = batch_norm_backward);
CX_OP_DEF(batch_norm_relu, .backward = batch_norm_backward);

cx_bn_sync_hooks cx_bn_sync;

/* Channel c's sum over x viewed as [outer, C, inner], and its squared
 * deviations from m: the forward's statistics, in one order wherever they
 * are taken. */
static double channel_sum(const float *xd, int C, int64_t outer, int64_t inner, int c) {
    double sum = 0;
    for (int64_t o = 0; o < outer; o++) {
        if (o + 1 < outer) prefetch_rows(xd, NULL, NULL, ((o + 1) * C + c) * inner, inner);
        sum += sum_row(xd + (o * C + c) * inner, inner);
    }
    return sum;
}
static double channel_sqdev(const float *xd, int C, int64_t outer, int64_t inner, int c, float m) {
    double sq = 0;
    for (int64_t o = 0; o < outer; o++) sq += sqdev_row(xd + (o * C + c) * inner, inner, m);
    return sq;
}

/* Synchronised batch norm's statistics: per channel the sum of every
 * process's values and their count, then the squared deviations of every
 * process's values from the mean those give (rounded to float, as the
 * unsynchronised path's). Returns [sums C, n, -, squares C] (arena). Every
 * process needs values of its own: one without would not reach this
 * collective in a trainer that skips its forward pass. */
static double *sync_stats(const char *op, const cx_tensor *x, int C, int64_t outer, int64_t inner) {
    const float *xd = CX_F(x);
    double *ss = cx_arena_alloc((size_t)(2 * C + 2) * sizeof(double));
    CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
    for (int c = 0; c < C; c++) ss[c] = channel_sum(xd, C, outer, inner, c);
    ss[C] = (double)outer * (double)inner;
    ss[C + 1] = outer * inner == 0 ? 1.0 : 0.0; /* processes without values */
    cx_bn_sync.allreduce(ss, C + 2);
    if (ss[C + 1] > 0)
        cx_fatal("%s: synchronised batch norm needs values on every process; %.0f of them have none in this batch "
                 "(a batch of fewer rows than processes)", op, ss[C + 1]);
    const double n = ss[C];
    CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
    for (int c = 0; c < C; c++) ss[C + 2 + c] = channel_sqdev(xd, C, outer, inner, c, (float)(ss[c] / n));
    cx_bn_sync.allreduce(ss + C + 2, C);
    return ss;
}

static cx_tensor *batch_norm_impl(const char *op, cx_tensor *x, cx_tensor *residual, bool relu,
                                  cx_tensor *running_mean, cx_tensor *running_var, cx_tensor *weight,
                                  cx_tensor *bias, bool training, float momentum, float eps, bool cl) {
    char sb[96], sr[96];
    cx_need_f32(op, x);
    if (x->ndim < 2)
        cx_fatal("%s: expected an input [N, C, *] with at least 2 dims, got %s", op, cx_shape_str(x, sb, sizeof sb));
    const int C = cl ? x->shape[x->ndim - 1] : x->shape[1];
    need_vec(op, "weight", weight, &C, 1, x);
    need_vec(op, "bias", bias, &C, 1, x);
    need_vec(op, "running_mean", running_mean, &C, 1, x);
    need_vec(op, "running_var", running_var, &C, 1, x);
    if (residual) {
        cx_need_f32_arg(op, "residual", residual);
        if (!cx_same_shape(residual, x))
            cx_fatal("%s: residual has shape %s, expected the input's shape %s", op,
                     cx_shape_str(residual, sr, sizeof sr), cx_shape_str(x, sb, sizeof sb));
    }
    if (!training && (!running_mean || !running_var))
        cx_fatal("%s: eval mode needs running_mean and running_var (input %s)", op, cx_shape_str(x, sb, sizeof sb));
    if (!(eps > 0)) cx_fatal("%s: eps must be positive, got %g", op, (double)eps);
    if (training && !(momentum >= 0 && momentum <= 1))
        cx_fatal("%s: momentum must be in [0, 1], got %g", op, (double)momentum);
    int64_t outer = x->shape[0], inner = 1;
    for (int i = 2; i < x->ndim; i++) inner *= x->shape[i];
    if (cl) {
        /* channels last: rows [N * spatial, C] */
        outer = C > 0 ? x->numel / C : 0;
        inner = 1;
    }
    const bool rows = inner == 1 && C <= BN_ROWS_MAXC;
    const int64_t n_local = outer * inner;
    const bool synced = training && cx_bn_sync.allreduce;
    double *ss = synced ? sync_stats(op, x, C, outer, inner) : NULL; /* [sums C, n, -, squares C] */
    const double n = ss ? ss[C] : (double)n_local;
    if (training && n <= 1)
        cx_fatal("%s: expected more than 1 value per channel when training, got input %s%s", op,
                 cx_shape_str(x, sb, sizeof sb), ss ? " (all the processes' values)" : "");
    cx_tensor *out = cx_new_like_shape(x->shape, x->ndim);
    float *mean_s = cx_arena_alloc((size_t)(C > 0 ? C : 1) * sizeof(float));
    float *invstd_s = cx_arena_alloc((size_t)(C > 0 ? C : 1) * sizeof(float));
    float *alpha_s = relu && !residual ? cx_arena_alloc((size_t)(C > 0 ? C : 1) * sizeof(float)) : NULL;
    float *beta_s = alpha_s ? cx_arena_alloc((size_t)(C > 0 ? C : 1) * sizeof(float)) : NULL;
    const float *xd = CX_F(x), *wd = weight ? CX_F(weight) : NULL, *bd = bias ? CX_F(bias) : NULL;
    const float *rd = residual ? CX_F(residual) : NULL;
    float *yd = CX_F(out);
    float *rm = running_mean ? CX_F(running_mean) : NULL, *rv = running_var ? CX_F(running_var) : NULL;
    if (rows) {
        /* channels last: the statistics over the rows, then one pass over them */
        const int Cn = C > 0 ? C : 1;
        double *sum = cx_arena_alloc((size_t)Cn * sizeof(double)), *sq = cx_arena_alloc((size_t)Cn * sizeof(double));
        float *fb_s = cx_arena_alloc((size_t)Cn * sizeof(float)), *fa_s = cx_arena_alloc((size_t)Cn * sizeof(float));
        if (training && !ss) rows_stat(xd, outer, C, sum, sq);
        for (int c = 0; c < C; c++) {
            double mean, invstd;
            if (training) {
                double q;
                if (ss) {
                    /* the synchronised sums: squared deviations from the rounded mean */
                    mean = ss[c] / (double)n;
                    const double dm = mean - (double)(float)mean;
                    q = ss[C + 2 + c] - (double)n * dm * dm;
                } else {
                    /* shifted by the first row k: sum (x - k) = s1, sum (x - k)^2 = s2 */
                    mean = (double)xd[c] + sum[c] / (double)n;
                    q = sq[c] - sum[c] * sum[c] / (double)n;
                }
                q = q > 0 ? q : 0;
                invstd = 1.0 / sqrt(q / (double)n + (double)eps);
                if (rm) rm[c] = (float)((1.0 - (double)momentum) * rm[c] + (double)momentum * mean);
                if (rv) rv[c] = (float)((1.0 - (double)momentum) * rv[c] + (double)momentum * (q / (double)(n - 1)));
            } else {
                mean = rm[c];
                invstd = 1.0 / sqrt((double)rv[c] + (double)eps);
            }
            mean_s[c] = (float)mean;
            invstd_s[c] = (float)invstd;
            fa_s[c] = (float)(invstd * (wd ? wd[c] : 1.0));
            fb_s[c] = bd ? bd[c] : 0.0f;
            if (alpha_s) {
                alpha_s[c] = fa_s[c];
                beta_s[c] = fb_s[c];
            }
        }
        const int nb = (int)((outer + 255) / 256);
        CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
        for (int b = 0; b < nb; b++) {
            const int64_t q0 = (int64_t)b * 256, q1 = q0 + 256 < outer ? q0 + 256 : outer;
            cx_bn_rows_apply(xd, rd, relu, yd, q0, q1, C, mean_s, fa_s, fb_s);
        }
    }
    CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
    for (int c = 0; c < (rows ? 0 : C); c++) {
        double mean, invstd;
        if (training) {
            /* two passes (the channel's data stays in cache): the mean, then
             * the squared deviations from it */
            const double sum = ss ? ss[c] : channel_sum(xd, C, outer, inner, c);
            mean = sum / (double)n;
            const float fmean = (float)mean;
            double sq = ss ? ss[C + 2 + c] : channel_sqdev(xd, C, outer, inner, c, fmean);
            /* deviations were taken from the rounded mean: sum (x - m')^2 =
             * sum (x - m)^2 + n (m - m')^2 */
            const double dm = mean - (double)fmean;
            sq -= (double)n * dm * dm;
            sq = sq > 0 ? sq : 0;
            double var = sq / (double)n;
            invstd = 1.0 / sqrt(var + (double)eps);
            if (rm) rm[c] = (float)((1.0 - (double)momentum) * rm[c] + (double)momentum * mean);
            if (rv)
                rv[c] = (float)((1.0 - (double)momentum) * rv[c] +
                                (double)momentum * (sq / (double)(n - 1)));
        } else {
            mean = rm[c];
            invstd = 1.0 / sqrt((double)rv[c] + (double)eps);
        }
        mean_s[c] = (float)mean;
        invstd_s[c] = (float)invstd;
        /* y = (x - mean) * alpha + beta (subtracting first: no cancellation
         * for a near-constant channel); then + residual and relu as cx_add
         * and cx_relu compute them */
        float fm = (float)mean, fa = (float)(invstd * (wd ? wd[c] : 1.0)), fb = bd ? bd[c] : 0.0f;
        if (alpha_s) {
            alpha_s[c] = fa;
            beta_s[c] = fb;
        }
        for (int64_t o = 0; o < outer; o++) {
            const int64_t off = (o * C + c) * inner;
            const float *xr = xd + off;
            float *yr = yd + off;
            if (o + 1 < outer) prefetch_out(yd, rd, off + C * inner, inner);
            if (!relu) {
                for (int64_t j = 0; j < inner; j++) yr[j] = (xr[j] - fm) * fa + fb;
            } else if (rd) {
                const float *rr = rd + off;
                for (int64_t j = 0; j < inner; j++) {
                    const float t = (xr[j] - fm) * fa + fb + rr[j];
                    yr[j] = t > 0 ? t : 0.0f;
                }
            } else {
                for (int64_t j = 0; j < inner; j++) {
                    const float t = bn_affine(xr[j], fm, fa, fb);
                    yr[j] = t > 0 ? t : 0.0f;
                }
            }
        }
    }
    cx_tensor *in[4] = {x, weight, bias, residual};
    bn_saved sv = {C, outer, inner, training, relu, mean_s, invstd_s, alpha_s, beta_s, n, synced, rows};
    cx_record_saved(relu ? &cx_opd_batch_norm_relu : &cx_opd_batch_norm, out, in, relu ? 4 : 3, &sv, sizeof sv);
    return out;
}

cx_tensor *cx_batch_norm(cx_tensor *x, cx_tensor *running_mean, cx_tensor *running_var, cx_tensor *weight,
                         cx_tensor *bias, bool training, float momentum, float eps) {
    return batch_norm_impl("batch_norm", x, NULL, false, running_mean, running_var, weight, bias, training,
                           momentum, eps, false);
}

cx_tensor *cx_batch_norm_relu(cx_tensor *x, cx_tensor *residual, cx_tensor *running_mean,
                              cx_tensor *running_var, cx_tensor *weight, cx_tensor *bias, bool training,
                              float momentum, float eps) {
    return batch_norm_impl("batch_norm_relu", x, residual, true, running_mean, running_var, weight, bias,
                           training, momentum, eps, false);
}

cx_tensor *cx_batch_norm_nhwc(cx_tensor *x, cx_tensor *residual, bool relu, cx_tensor *running_mean,
                              cx_tensor *running_var, cx_tensor *weight, cx_tensor *bias, bool training,
                              float momentum, float eps) {
    if (!relu && residual) cx_fatal("batch_norm_nhwc: a residual needs relu (the block end bn + add + relu)");
    return batch_norm_impl(relu ? "batch_norm_relu_nhwc" : "batch_norm_nhwc", x, residual, relu, running_mean,
                           running_var, weight, bias, training, momentum, eps, true);
}

/* ---------------------------------------------------------------- layer norm */
typedef struct {
    int64_t rows, D;
    float *mean, *invstd;  /* per row */
} ln_saved;

static void layer_norm_backward(cx_node *nd) {
    cx_tensor *out = nd->out[0];
    const ln_saved *s = nd->saved;
    cx_tensor *x = nd->in[0], *w = nd->in[1];
    bool fresh; /* gx just created: every element is stored below */
    float *gx = cx_in_grad_w(nd, 0, &fresh);
    float *gw = w ? cx_in_grad(nd, 1) : NULL;
    float *gb = nd->in[2] ? cx_in_grad(nd, 2) : NULL;
    const float *xd = CX_F(x), *go = out->grad, *wd = w ? CX_F(w) : NULL;
    const int64_t rows = s->rows, D = s->D;
    if (gx) {
        CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = xd + r * D, *gr = go + r * D;
            float *gxr = gx + r * D;
            const double mean = s->mean[r], invstd = s->invstd[r];
            double sg = 0, sgx = 0;
            for (int64_t j = 0; j < D; j++) {
                double g = (double)gr[j] * (wd ? wd[j] : 1.0);
                sg += g;
                sgx += g * ((xr[j] - mean) * invstd);
            }
            sg /= (double)D;
            sgx /= (double)D;
            for (int64_t j = 0; j < D; j++) {
                double g = (double)gr[j] * (wd ? wd[j] : 1.0);
                double xhat = (xr[j] - mean) * invstd;
                const float v = (float)(invstd * (g - sg - xhat * sgx));
                gxr[j] = fresh ? v : gxr[j] + v;
            }
        }
    }
    if (gw || gb) {
        /* column blocks of LN_BLK: each row visit reads one contiguous run */
        enum { LN_BLK = 16 };
        const int64_t nblk = (D + LN_BLK - 1) / LN_BLK;
        CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
        for (int64_t bk = 0; bk < nblk; bk++) {
            const int64_t j0 = bk * LN_BLK, j1 = j0 + LN_BLK < D ? j0 + LN_BLK : D;
            double sw[LN_BLK] = {0}, sb[LN_BLK] = {0};
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = xd + r * D, *gr = go + r * D;
                const double mean = s->mean[r], invstd = s->invstd[r];
                for (int64_t j = j0; j < j1; j++) {
                    double g = gr[j];
                    sb[j - j0] += g;
                    sw[j - j0] += g * ((xr[j] - mean) * invstd);
                }
            }
            for (int64_t j = j0; j < j1; j++) {
                if (gw) gw[j] += (float)sw[j - j0];
                if (gb) gb[j] += (float)sb[j - j0];
            }
        }
    }
}

CX_OP_DEF(layer_norm, .backward = layer_norm_backward);

cx_tensor *cx_layer_norm(cx_tensor *x, int k, cx_tensor *weight, cx_tensor *bias, float eps) {
    const char *op = "layer_norm";
    char sb[96];
    cx_need_f32(op, x);
    if (k < 1 || k > x->ndim)
        cx_fatal("%s: normalized ndims %d out of range for input %s (1..%d)", op, k, cx_shape_str(x, sb, sizeof sb),
                 x->ndim);
    if (!(eps > 0)) cx_fatal("%s: eps must be positive, got %g", op, (double)eps);
    const int *nshape = x->shape + (x->ndim - k);
    need_vec(op, "weight", weight, nshape, k, x);
    need_vec(op, "bias", bias, nshape, k, x);
    int64_t D = 1;
    for (int i = 0; i < k; i++) D *= nshape[i];
    if (D < 1) cx_fatal("%s: empty normalized shape in input %s", op, cx_shape_str(x, sb, sizeof sb));
    const int64_t rows = x->numel / D;
    cx_tensor *out = cx_new_like_shape(x->shape, x->ndim);
    float *mean_s = cx_arena_alloc((size_t)(rows > 0 ? rows : 1) * sizeof(float));
    float *invstd_s = cx_arena_alloc((size_t)(rows > 0 ? rows : 1) * sizeof(float));
    const float *xd = CX_F(x), *wd = weight ? CX_F(weight) : NULL, *bd = bias ? CX_F(bias) : NULL;
    float *yd = CX_F(out);
    CX_OMP(parallel for if(x->numel > CX_PAR_MIN))
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = xd + r * D;
        float *yr = yd + r * D;
        double sum = 0, sq = 0;
        for (int64_t j = 0; j < D; j++) sum += xr[j];
        double mean = sum / (double)D;
        for (int64_t j = 0; j < D; j++) {
            double d = xr[j] - mean;
            sq += d * d;
        }
        double invstd = 1.0 / sqrt(sq / (double)D + (double)eps);
        mean_s[r] = (float)mean;
        invstd_s[r] = (float)invstd;
        for (int64_t j = 0; j < D; j++) {
            double v = (xr[j] - mean) * invstd;
            if (wd) v *= wd[j];
            if (bd) v += bd[j];
            yr[j] = (float)v;
        }
    }
    cx_tensor *in[3] = {x, weight, bias};
    ln_saved sv = {rows, D, mean_s, invstd_s};
    cx_record_saved(&cx_opd_layer_norm, out, in, 3, &sv, sizeof sv);
    return out;
}

/* ---------------------------------------------------------------- modules */
typedef struct {
    cx_module base;
    int dims, C;
    float eps, momentum;
    cx_tensor *w, *b, *rm, *rv, *nbt;
} bn_m;

static cx_tensor *bn_run(cx_module *m, cx_tensor *x, cx_tensor *residual, bool relu) {
    bn_m *b = (bn_m *)m;
    char sb[96];
    const char *kind = b->dims == 1 ? "BatchNorm1d" : "BatchNorm2d";
    cx_need_f32(kind, x);
    if (b->dims == 1 && x->ndim != 2 && x->ndim != 3)
        cx_fatal("%s: expected a 2-D input [N, C] or a 3-D input [N, C, L], got %s", kind,
                 cx_shape_str(x, sb, sizeof sb));
    if (b->dims == 2 && x->ndim != 4)
        cx_fatal("%s: expected a 4-D input [N, C, H, W], got %s", kind, cx_shape_str(x, sb, sizeof sb));
    if (x->shape[1] != b->C)
        cx_fatal("%s: input %s has %d channels, the layer expects %d", kind, cx_shape_str(x, sb, sizeof sb),
                 x->shape[1], b->C);
    bool training = cx_is_training();
    if (training) CX_I64P(b->nbt)[0] += 1;
    if (!relu) return cx_batch_norm(x, b->rm, b->rv, b->w, b->b, training, b->momentum, b->eps);
    return cx_batch_norm_relu(x, residual, b->rm, b->rv, b->w, b->b, training, b->momentum, b->eps);
}
static cx_tensor *bn_fwd(cx_module *m, cx_tensor *x) { return bn_run(m, x, NULL, false); }
static void bn_describe(const cx_module *m, char *buf, size_t n) {
    const bn_m *b = (const bn_m *)m;
    snprintf(buf, n, "BatchNorm%dd(%d, eps=%g, momentum=%g%s)", b->dims, b->C, (double)b->eps,
             (double)b->momentum, b->w ? "" : ", affine=False");
}
static const cx_module_ops bn1_ops = {.kind = "BatchNorm1d", .forward = bn_fwd, .describe = bn_describe};
static const cx_module_ops bn2_ops = {.kind = "BatchNorm2d", .forward = bn_fwd, .describe = bn_describe};

cx_module *cx_batchnorm_new_ex(int spatial_dims, int C, float eps, float momentum, bool affine) {
    if (spatial_dims != 1 && spatial_dims != 2)
        cx_fatal("BatchNorm: spatial_dims must be 1 (BatchNorm1d) or 2 (BatchNorm2d), got %d", spatial_dims);
    if (C < 1) cx_fatal("BatchNorm%dd: num_features must be positive, got %d", spatial_dims, C);
    if (!(eps > 0)) cx_fatal("BatchNorm%dd: eps must be positive, got %g", spatial_dims, (double)eps);
    if (!(momentum >= 0 && momentum <= 1))
        cx_fatal("BatchNorm%dd: momentum must be in [0, 1], got %g", spatial_dims, (double)momentum);
    bn_m *b = cx_xcalloc(1, sizeof *b);
    cx_module_init(&b->base, spatial_dims == 1 ? &bn1_ops : &bn2_ops);
    b->dims = spatial_dims;
    b->C = C;
    b->eps = eps;
    b->momentum = momentum;
    if (affine) {
        b->w = cx_param_new("weight", &C, 1);
        cx_fill(b->w, 1.0f);
        b->b = cx_param_new("bias", &C, 1);
        cx_module_add_param(&b->base, "weight", &b->w);
        cx_module_add_param(&b->base, "bias", &b->b);
    }
    b->rm = cx_tensor_new(CX_F32, &C, 1);
    b->rv = cx_tensor_new(CX_F32, &C, 1);
    cx_fill(b->rv, 1.0f);
    b->nbt = cx_tensor_new(CX_I64, NULL, 0);
    cx_module_add_buffer(&b->base, "running_mean", &b->rm);
    cx_module_add_buffer(&b->base, "running_var", &b->rv);
    cx_module_add_buffer(&b->base, "num_batches_tracked", &b->nbt);
    return &b->base;
}
cx_module *cx_batchnorm1d_new(int C) { return cx_batchnorm_new_ex(1, C, 1e-5f, 0.1f, true); }
cx_module *cx_batchnorm2d_new(int C) { return cx_batchnorm_new_ex(2, C, 1e-5f, 0.1f, true); }

static bn_m *as_bn(cx_module *m) {
    if (!m || (m->ops != &bn1_ops && m->ops != &bn2_ops))
        cx_fatal("expected a BatchNorm module, got %s", m ? m->ops->kind : "NULL");
    return (bn_m *)m;
}
cx_tensor *cx_batchnorm_forward_relu(cx_module *m, cx_tensor *x, cx_tensor *residual) {
    return bn_run(&as_bn(m)->base, x, residual, true);
}
bool cx_batchnorm_parts(cx_module *m, cx_bn_parts *p) {
    bn_m *b = as_bn(m);
    *p = (cx_bn_parts){b->w, b->b, b->rm, b->rv, b->nbt, b->eps, b->momentum, b->C};
    return true;
}
cx_tensor *cx_batchnorm_forward_nhwc(cx_module *m, cx_tensor *x, cx_tensor *residual, bool relu) {
    bn_m *b = as_bn(m);
    char sb[96];
    const char *kind = b->dims == 1 ? "BatchNorm1d" : "BatchNorm2d";
    cx_need_f32(kind, x);
    if (x->ndim < 2 || x->shape[x->ndim - 1] != b->C)
        cx_fatal("%s: channels-last input %s should have %d channels in its last dim", kind,
                 cx_shape_str(x, sb, sizeof sb), b->C);
    bool training = cx_is_training();
    if (training) CX_I64P(b->nbt)[0] += 1;
    return cx_batch_norm_nhwc(x, residual, relu, b->rm, b->rv, b->w, b->b, training, b->momentum, b->eps);
}
cx_tensor *cx_batchnorm_weight(cx_module *m) { return as_bn(m)->w; }
cx_tensor *cx_batchnorm_bias(cx_module *m) { return as_bn(m)->b; }
cx_tensor *cx_batchnorm_running_mean(cx_module *m) { return as_bn(m)->rm; }
cx_tensor *cx_batchnorm_running_var(cx_module *m) { return as_bn(m)->rv; }
cx_tensor *cx_batchnorm_num_batches_tracked(cx_module *m) { return as_bn(m)->nbt; }

typedef struct {
    cx_module base;
    int ndim, shape[CX_MAX_DIMS];
    float eps;
    cx_tensor *w, *b;
} ln_m;

static cx_tensor *ln_fwd(cx_module *m, cx_tensor *x) {
    ln_m *l = (ln_m *)m;
    cx_need_f32("LayerNorm", x);
    bool ok = x->ndim >= l->ndim;
    for (int i = 0; ok && i < l->ndim; i++) ok = x->shape[x->ndim - l->ndim + i] == l->shape[i];
    if (!ok) {
        char a[96], b[96];
        shape_text(l->shape, l->ndim, b, sizeof b);
        cx_fatal("LayerNorm: input %s does not end with the normalized shape %s", cx_shape_str(x, a, sizeof a), b);
    }
    return cx_layer_norm(x, l->ndim, l->w, l->b, l->eps);
}
static void ln_describe(const cx_module *m, char *buf, size_t n) {
    const ln_m *l = (const ln_m *)m;
    char s[96];
    shape_text(l->shape, l->ndim, s, sizeof s);
    snprintf(buf, n, "LayerNorm(%s, eps=%g%s)", s, (double)l->eps, l->w ? "" : ", no affine");
}
static const cx_module_ops ln_ops = {.kind = "LayerNorm", .forward = ln_fwd,
                                     .describe = ln_describe, .split_safe = true};

cx_module *cx_layernorm_new_ex(const int *shape, int ndim, float eps, bool affine) {
    if (!shape || ndim < 1 || ndim > CX_MAX_DIMS)
        cx_fatal("LayerNorm: normalized shape needs 1..%d dims, got %d", CX_MAX_DIMS, ndim);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 1) cx_fatal("LayerNorm: normalized shape dims must be positive, got %d", shape[i]);
    if (!(eps > 0)) cx_fatal("LayerNorm: eps must be positive, got %g", (double)eps);
    ln_m *l = cx_xcalloc(1, sizeof *l);
    cx_module_init(&l->base, &ln_ops);
    l->ndim = ndim;
    memcpy(l->shape, shape, (size_t)ndim * sizeof(int));
    l->eps = eps;
    if (affine) {
        l->w = cx_param_new("weight", shape, ndim);
        cx_fill(l->w, 1.0f);
        l->b = cx_param_new("bias", shape, ndim);
        cx_module_add_param(&l->base, "weight", &l->w);
        cx_module_add_param(&l->base, "bias", &l->b);
    }
    return &l->base;
}
cx_module *cx_layernorm_new(const int *shape, int ndim) { return cx_layernorm_new_ex(shape, ndim, 1e-5f, true); }

static ln_m *as_ln(cx_module *m) {
    if (!m || m->ops != &ln_ops) cx_fatal("expected a LayerNorm module, got %s", m ? m->ops->kind : "NULL");
    return (ln_m *)m;
}
cx_tensor *cx_layernorm_weight(cx_module *m) { return as_ln(m)->w; }
cx_tensor *cx_layernorm_bias(cx_module *m) { return as_ln(m)->b; }
