/* DNC memory operations (include/cortex/dnc.h): PyTorch 1.13 references of
 * one access step through every op (tools/gen_dnc_fixtures.py ->
 * tests/fixtures/dnc/ops_*.safetensors, alloc_ties; override the folder with
 * CX_DNC_FIXTURES), finite-difference gradient checks of every op and of the
 * chain, hand-worked values, errors naming the argument. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define FX_RTOL 1e-4
#define FX_ATOL 1e-5

static const char *fixture_dir(void) {
    const char *d = getenv("CX_DNC_FIXTURES");
    return d && *d ? d : "tests/fixtures/dnc";
}

static const char *const CASES[] = {"ops_b1_r1", "ops_b3_r2", "ops_b2_r3"};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))
static const char *const INS[] = {"mem",  "rkeys", "rbeta", "wkey",  "wbeta",   "erase",   "wvec",      "free",
                                  "ga",   "gw",    "modes", "u_prev", "ww_prev", "wr_prev", "link_prev", "p_prev"};
enum { I_MEM, I_RKEYS, I_RBETA, I_WKEY, I_WBETA, I_ERASE, I_WVEC, I_FREE, I_GA, I_GW, I_MODES, I_U, I_WW, I_WR, I_L,
       I_P, N_INS };
static const char *const OUTS[] = {"cw",   "psi", "usage", "alloc", "ww", "mem2", "prec",
                                   "link", "fwd", "bwd",   "cr",    "wr", "reads"};
enum { O_CW, O_PSI, O_USAGE, O_ALLOC, O_WW, O_MEM2, O_PREC, O_LINK, O_FWD, O_BWD, O_CR, O_WR, O_READS, N_OUTS };

static cx_tensor *step_copy(const cx_tensor *src, bool grad) {
    cx_tensor *t = cx_empty(src->dtype, src->shape, src->ndim);
    memcpy(t->data, src->data, (size_t)src->numel * cx_dtype_size(src->dtype));
    t->requires_grad = grad;
    return t;
}

static void compare(const char *c, const char *what, const cx_tensor *got, const float *data, const cx_tensor *want) {
    char msg[128];
    CHECK_MSG(want != NULL, "case %s: fixture lacks %s", c, what);
    CHECK_MSG(data != NULL, "case %s: no %s", c, what);
    if (!want || !data) return;
    CHECK_MSG(cx_same_shape(got, want), "case %s: %s has another shape than PyTorch's", c, what);
    if (got->numel != want->numel) return;
    snprintf(msg, sizeof msg, "%s %s", c, what);
    cxt_allclose(data, CX_F(want), (long)want->numel, FX_RTOL, FX_ATOL, msg);
}

/* The access step through the individual ops (no detach), as the script. */
static void ops_chain(cx_tensor **x, cx_tensor **o) {
    const int B = x[I_MEM]->shape[0], N = x[I_MEM]->shape[1], W = x[I_MEM]->shape[2];
    cx_tensor *wbeta = cx_reshape(x[I_WBETA], CX_SHAPE(B, 1));
    o[O_CW] = cx_reshape(cx_dnc_content_address(x[I_MEM], cx_reshape(x[I_WKEY], CX_SHAPE(B, 1, W)), wbeta),
                         CX_SHAPE(B, N));
    o[O_PSI] = cx_dnc_retention(x[I_FREE], x[I_WR]);
    o[O_USAGE] = cx_dnc_usage(x[I_U], x[I_WW], o[O_PSI]);
    o[O_ALLOC] = cx_dnc_allocation(o[O_USAGE]);
    o[O_WW] = cx_dnc_write_weighting(o[O_CW], o[O_ALLOC], x[I_GA], x[I_GW]);
    o[O_MEM2] = cx_ntm_write(x[I_MEM], o[O_WW], x[I_ERASE], x[I_WVEC]);
    o[O_PREC] = cx_dnc_precedence(x[I_P], o[O_WW]);
    o[O_LINK] = cx_dnc_link(x[I_L], x[I_P], o[O_WW]);
    o[O_FWD] = cx_dnc_directional(o[O_LINK], x[I_WR], true);
    o[O_BWD] = cx_dnc_directional(o[O_LINK], x[I_WR], false);
    o[O_CR] = cx_dnc_content_address(o[O_MEM2], x[I_RKEYS], x[I_RBETA]);
    o[O_WR] = cx_dnc_read_weighting(o[O_BWD], o[O_CR], o[O_FWD], x[I_MODES]);
    o[O_READS] = cx_dnc_read(o[O_MEM2], o[O_WR]);
}

static void fixture_case(const char *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixture_dir(), c);
    cx_st_file *f = NULL;
    CHECK_MSG(cx_st_load(path, &f) == CX_OK, "cannot load %s: %s (regenerate with /usr/bin/python3 "
              "tools/gen_dnc_fixtures.py)", path, cx_last_error());
    if (!f) return;
    cx_tensor *x[N_INS];
    for (int k = 0; k < N_INS; k++) {
        char name[64];
        snprintf(name, sizeof name, "in.%s", INS[k]);
        const cx_tensor *t = cx_st_get(f, name);
        CHECK_MSG(t != NULL, "case %s: fixture lacks %s", c, name);
        if (!t) goto done;
        x[k] = step_copy(t, true);
    }
    cx_tensor *o[N_OUTS];
    ops_chain(x, o);
    cx_tensor *loss = NULL;
    for (int k = 0; k < N_OUTS; k++) {
        char name[64];
        snprintf(name, sizeof name, "out.%s", OUTS[k]);
        compare(c, name, o[k], CX_F(o[k]), cx_st_get(f, name));
        snprintf(name, sizeof name, "c.%s", OUTS[k]);
        const cx_tensor *cf = cx_st_get(f, name);
        CHECK_MSG(cf != NULL, "case %s: fixture lacks %s", c, name);
        if (!cf) goto done;
        cx_tensor *term = cx_sum(cx_mul(o[k], step_copy(cf, false)));
        loss = loss ? cx_add(loss, term) : term;
    }
    cx_backward(loss);
    for (int k = 0; k < N_INS; k++) {
        char name[64];
        snprintf(name, sizeof name, "grad.%s", INS[k]);
        compare(c, name, x[k], x[k]->grad, cx_st_get(f, name));
    }
    /* the one-call access step gives the same forward values (its usage
     * detaches w^w_{t-1}, which changes gradients only) */
    {
        const int B = x[I_MEM]->shape[0], R = x[I_RKEYS]->shape[1], W = x[I_MEM]->shape[2];
        cx_dnc_state prev = {x[I_MEM], x[I_U], x[I_L], x[I_P], x[I_WW], x[I_WR], cx_zeros(CX_SHAPE(B, R, W))};
        cx_dnc_interface it = {x[I_RKEYS], x[I_RBETA], x[I_WKEY], x[I_WBETA], x[I_ERASE],
                               x[I_WVEC],  x[I_FREE],  x[I_GA],   x[I_GW],    x[I_MODES]};
        cx_dnc_state s = cx_dnc_access(&prev, &it);
        compare(c, "access usage", s.usage, CX_F(s.usage), cx_st_get(f, "out.usage"));
        compare(c, "access ww", s.ww, CX_F(s.ww), cx_st_get(f, "out.ww"));
        compare(c, "access mem", s.mem, CX_F(s.mem), cx_st_get(f, "out.mem2"));
        compare(c, "access link", s.link, CX_F(s.link), cx_st_get(f, "out.link"));
        compare(c, "access prec", s.prec, CX_F(s.prec), cx_st_get(f, "out.prec"));
        compare(c, "access wr", s.wr, CX_F(s.wr), cx_st_get(f, "out.wr"));
        compare(c, "access reads", s.reads, CX_F(s.reads), cx_st_get(f, "out.reads"));
    }
done:
    cx_st_free(f);
}

static void pytorch_fixtures(void) {
    for (int i = 0; i < N_CASES; i++) fixture_case(CASES[i]);
}

/* allocation with ties: equal usages are ordered by slot index, as
 * torch.sort(stable=True) */
static void pytorch_alloc_ties(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/alloc_ties.safetensors", fixture_dir());
    cx_st_file *f = NULL;
    CHECK_MSG(cx_st_load(path, &f) == CX_OK, "cannot load %s: %s", path, cx_last_error());
    if (!f) return;
    const cx_tensor *u0 = cx_st_get(f, "in.usage"), *cf = cx_st_get(f, "c.alloc");
    CHECK(u0 != NULL && cf != NULL);
    if (u0 && cf) {
        cx_tensor *u = step_copy(u0, true);
        cx_tensor *a = cx_dnc_allocation(u);
        compare("alloc_ties", "out.alloc", a, CX_F(a), cx_st_get(f, "out.alloc"));
        cx_backward(cx_sum(cx_mul(a, step_copy(cf, false))));
        compare("alloc_ties", "grad.usage", u, u->grad, cx_st_get(f, "grad.usage"));
    }
    cx_st_free(f);
}

/* ---- gradient checks: loss = sum(out * R) for a fixed random R */
typedef struct {
    int which;
    cx_tensor *R;
    cx_tensor *ww; /* G_ACCESS: the previous write weighting (not checked: detached) */
} gc_ctx;

enum { G_CONTENT, G_RET, G_USAGE, G_ALLOC, G_WW, G_PREC, G_LINK, G_FWD, G_BWD, G_RW, G_READ, G_ACCESS, G_CHAIN };

static cx_tensor *gc_fn(cx_tensor **x, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    cx_tensor *y = NULL;
    switch (c->which) {
    case G_CONTENT: y = cx_dnc_content_address(x[0], x[1], x[2]); break;
    case G_RET: y = cx_dnc_retention(x[0], x[1]); break;
    case G_USAGE: y = cx_dnc_usage(x[0], x[1], x[2]); break;
    case G_ALLOC: y = cx_dnc_allocation(x[0]); break;
    case G_WW: y = cx_dnc_write_weighting(x[0], x[1], x[2], x[3]); break;
    case G_PREC: y = cx_dnc_precedence(x[0], x[1]); break;
    case G_LINK: y = cx_dnc_link(x[0], x[1], x[2]); break;
    case G_FWD: y = cx_dnc_directional(x[0], x[1], true); break;
    case G_BWD: y = cx_dnc_directional(x[0], x[1], false); break;
    case G_RW: y = cx_dnc_read_weighting(x[0], x[1], x[2], x[3]); break;
    case G_READ: y = cx_dnc_read(x[0], x[1]); break;
    case G_ACCESS: {
        /* the one-call step from raw interface and state tensors */
        const int B = x[0]->shape[0], R = x[4]->shape[1], W = x[0]->shape[2];
        cx_dnc_interface it = cx_dnc_interface_split(x[5], R, W);
        cx_dnc_state prev = {x[0], x[1], x[2], x[3], c->ww, x[4], cx_zeros(CX_SHAPE(B, R, W))};
        cx_dnc_state s = cx_dnc_access(&prev, &it);
        cx_tensor *l = cx_sum(cx_mul(s.reads, c->R));
        l = cx_add(l, cx_sum(cx_mul(s.wr, cx_slice(c->R, 2, 0, 1, 1))));
        l = cx_add(l, cx_mul_scalar(cx_sum(cx_mul(s.link, s.link)), 0.5f));
        return cx_add(l, cx_sum(cx_mul(s.usage, s.prec)));
    }
    default: {
        cx_tensor *o[N_OUTS];
        ops_chain(x, o);
        cx_tensor *l = cx_sum(cx_mul(o[O_READS], c->R));
        l = cx_add(l, cx_sum(cx_mul(o[O_LINK], o[O_LINK])));
        l = cx_add(l, cx_sum(cx_mul(o[O_USAGE], o[O_ALLOC])));
        return cx_add(l, cx_sum(cx_mul(o[O_PREC], o[O_WW])));
    }
    }
    return cx_sum(cx_mul(y, c->R));
}

static cx_tensor *pos(cx_tensor *t) { return cx_add_scalar(cx_mul_scalar(t, 0.8f), 0.1f); } /* [0,1) -> [.1, .9) */

static void gc_ww(const char *what, int which, cx_tensor **in, int n, const int *rshape, int rnd, cx_tensor *ww) {
    for (int k = 0; k < n; k++) in[k]->requires_grad = true;
    gc_ctx c = {which, cx_randn(rshape, rnd, 0.0f, 1.0f), ww};
    double worst = cx_gradcheck(gc_fn, in, n, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "%s gradcheck: worst violation ratio %g", what, worst);
}

static void gc(const char *what, int which, cx_tensor **in, int n, const int *rshape, int rnd) {
    gc_ww(what, which, in, n, rshape, rnd, NULL);
}

/* usage with well separated values (a shuffled ramp plus jitter): a finite
 * difference step never changes the sort order */
static cx_tensor *separated_usage(int B, int N) {
    cx_tensor *u = cx_zeros(CX_SHAPE(B, N));
    for (int b = 0; b < B; b++) {
        int *perm = malloc(sizeof(int) * (size_t)N);
        for (int i = 0; i < N; i++) perm[i] = i;
        for (int i = N - 1; i > 0; i--) {
            int j = (int)cx_rand_below((uint32_t)i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (int i = 0; i < N; i++)
            CX_F(u)[b * N + i] = (0.05f + 0.9f * (float)perm[i] / (float)(N - 1)) + 0.01f * cx_rand_uniform();
        free(perm);
    }
    return u;
}

/* smallest gap between two usages of an item */
static double usage_gap(const cx_tensor *u) {
    const int B = u->shape[0], N = u->shape[1];
    double g = INFINITY;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++)
            for (int j = i + 1; j < N; j++) g = fmin(g, fabs((double)CX_F(u)[b * N + i] - CX_F(u)[b * N + j]));
    return g;
}

static void gradchecks(void) {
    cx_seed(11);
    const int B = 2, N = 5, W = 3, R = 2;
    cx_tensor *mem = cx_randn(CX_SHAPE(B, N, W), 0.0f, 1.0f);
    cx_tensor *keys = cx_randn(CX_SHAPE(B, R, W), 0.0f, 1.0f);
    cx_tensor *beta = cx_add_scalar(cx_rand_uniform_t(CX_SHAPE(B, R), 0.0f, 3.0f), 1.0f);
    cx_tensor *free_g = pos(cx_rand_uniform_t(CX_SHAPE(B, R), 0.0f, 1.0f));
    cx_tensor *wr = cx_softmax(cx_randn(CX_SHAPE(B, R, N), 0.0f, 1.0f), -1);
    cx_tensor *wr2 = cx_softmax(cx_randn(CX_SHAPE(B, R, N), 0.0f, 1.0f), -1);
    cx_tensor *wr3 = cx_softmax(cx_randn(CX_SHAPE(B, R, N), 0.0f, 1.0f), -1);
    cx_tensor *u = pos(cx_rand_uniform_t(CX_SHAPE(B, N), 0.0f, 1.0f));
    cx_tensor *ww = cx_mul_scalar(cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1), 0.9f);
    cx_tensor *psi = pos(cx_rand_uniform_t(CX_SHAPE(B, N), 0.0f, 1.0f));
    cx_tensor *cw = cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1);
    cx_tensor *al = cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1);
    cx_tensor *ga = pos(cx_rand_uniform_t(CX_SHAPE(B), 0.0f, 1.0f));
    cx_tensor *gw = pos(cx_rand_uniform_t(CX_SHAPE(B, 1), 0.0f, 1.0f));
    cx_tensor *p = cx_mul_scalar(cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1), 0.8f);
    cx_tensor *L = cx_rand_uniform_t(CX_SHAPE(B, N, N), 0.0f, 0.3f); /* diagonal non-zero on purpose: its grad is 0 */
    cx_tensor *modes = cx_softmax(cx_randn(CX_SHAPE(B, R, 3), 0.0f, 1.0f), -1);
    cx_tensor *us = separated_usage(B, N);
    gc("content_address", G_CONTENT, (cx_tensor *[]){mem, keys, beta}, 3, CX_SHAPE(B, R, N));
    gc("retention", G_RET, (cx_tensor *[]){free_g, wr}, 2, CX_SHAPE(B, N));
    gc("retention R=1", G_RET, (cx_tensor *[]){cx_slice(free_g, 1, 0, 1, 1), cx_slice(wr, 1, 1, 2, 1)}, 2,
       CX_SHAPE(B, N));
    gc("usage", G_USAGE, (cx_tensor *[]){u, ww, psi}, 3, CX_SHAPE(B, N));
    gc("allocation", G_ALLOC, (cx_tensor *[]){us}, 1, CX_SHAPE(B, N));
    /* small usages (products far from 0) and one near 1 */
    cx_tensor *us2 = cx_mul_scalar(separated_usage(B, N), 0.3f);
    CX_F(us2)[0] = 0.97f;
    gc("allocation (low usage)", G_ALLOC, (cx_tensor *[]){us2}, 1, CX_SHAPE(B, N));
    gc("write_weighting", G_WW, (cx_tensor *[]){cw, al, ga, gw}, 4, CX_SHAPE(B, N));
    gc("precedence", G_PREC, (cx_tensor *[]){p, ww}, 2, CX_SHAPE(B, N));
    gc("link", G_LINK, (cx_tensor *[]){L, p, ww}, 3, CX_SHAPE(B, N, N));
    gc("directional forward", G_FWD, (cx_tensor *[]){L, wr}, 2, CX_SHAPE(B, R, N));
    gc("directional backward", G_BWD, (cx_tensor *[]){L, wr}, 2, CX_SHAPE(B, R, N));
    gc("read_weighting", G_RW, (cx_tensor *[]){wr, wr2, wr3, modes}, 4, CX_SHAPE(B, R, N));
    gc("read", G_READ, (cx_tensor *[]){mem, wr}, 2, CX_SHAPE(B, R, W));

    /* the whole chain, on inputs whose usage is well separated */
    cx_tensor *rbeta = beta, *wkey = cx_randn(CX_SHAPE(B, W), 0.0f, 1.0f);
    cx_tensor *wbeta = cx_add_scalar(cx_rand_uniform_t(CX_SHAPE(B), 0.0f, 2.0f), 1.0f);
    cx_tensor *erase = pos(cx_rand_uniform_t(CX_SHAPE(B, W), 0.0f, 1.0f));
    cx_tensor *wvec = cx_randn(CX_SHAPE(B, W), 0.0f, 1.0f);
    cx_tensor *x[N_INS] = {mem, keys, rbeta, wkey, wbeta, erase, wvec, free_g, ga, gw, modes, us, ww, wr, L, p};
    cx_tensor *u_chain;
    cx_no_grad_begin();
    u_chain = cx_dnc_usage(us, ww, cx_dnc_retention(free_g, wr));
    cx_no_grad_end();
    double gap = usage_gap(u_chain);
    CHECK_MSG(gap > 2e-2, "chain usage gap %g too small for finite differences", gap);
    gc("memory access chain", G_CHAIN, x, N_INS, CX_SHAPE(B, R, W));
    /* the one-call step through the interface split */
    cx_tensor *xi = cx_randn(CX_SHAPE(B, cx_dnc_interface_size(R, W)), 0.0f, 1.0f);
    cx_tensor *acc_in[6] = {mem, us, L, p, wr, xi};
    cx_tensor *ww_c = cx_tensor_clone(ww); /* persistent: survives gradcheck's evaluations */
    gc_ww("access + interface_split", G_ACCESS, acc_in, 6, CX_SHAPE(B, R, W), ww_c);
    /* detached: the usage sees w^w_{t-1} without gradient */
    ww_c->requires_grad = true;
    cx_zero_grad(ww_c);
    gc_ctx c = {G_ACCESS, cx_randn(CX_SHAPE(B, R, W), 0.0f, 1.0f), ww_c};
    cx_backward(gc_fn(acc_in, 6, &c));
    bool zero = true;
    for (int i = 0; i < B * N; i++) zero = zero && (!ww_c->grad || ww_c->grad[i] == 0.0f);
    CHECK_MSG(zero, "dnc_access: the previous write weighting got a gradient through the usage");
    cx_tensor_free(ww_c);
}

/* ---- hand-worked values */
static void hand_values(void) {
    const double e = CX_DNC_EPS;
    /* allocation: usage (0.5, 0, 1, 0.25): free list 1, 3, 0, 2 */
    cx_tensor *u = cx_from_data((const float[]){0.5f, 0.0f, 1.0f, 0.25f}, CX_SHAPE(1, 4));
    cx_tensor *a = cx_dnc_allocation(u);
    const double s1 = e, s3 = e + (1 - e) * 0.25, s0 = e + (1 - e) * 0.5;
    CHECK_NEAR(CX_F(a)[1], 1 - s1, 1e-7);
    CHECK_NEAR(CX_F(a)[3], (1 - s3) * s1, 1e-9);
    CHECK_NEAR(CX_F(a)[0], (1 - s0) * s1 * s3, 1e-12);
    CHECK(CX_F(a)[2] >= 0.0f && CX_F(a)[2] < 1e-12f);
    /* ties: all usages equal -> slot order 0, 1, 2 */
    u = cx_from_data((const float[]){0.5f, 0.5f, 0.5f}, CX_SHAPE(1, 3));
    a = cx_dnc_allocation(u);
    const double s = e + (1 - e) * 0.5;
    CHECK_NEAR(CX_F(a)[0], 1 - s, 1e-7);
    CHECK_NEAR(CX_F(a)[1], (1 - s) * s, 1e-7);
    CHECK_NEAR(CX_F(a)[2], (1 - s) * s * s, 1e-7);
    /* temporal links: write slot 2 (from an empty history), then slot 0:
     * L[0, 2] = 1 ("0 written after 2"), forward from 2 goes to 0 */
    const int N = 3;
    cx_tensor *L = cx_zeros(CX_SHAPE(1, N, N)), *p = cx_zeros(CX_SHAPE(1, N));
    cx_tensor *w1 = cx_from_data((const float[]){0, 0, 1}, CX_SHAPE(1, N));
    cx_tensor *w2 = cx_from_data((const float[]){1, 0, 0}, CX_SHAPE(1, N));
    L = cx_dnc_link(L, p, w1);
    for (int i = 0; i < N * N; i++) CHECK(CX_F(L)[i] == 0.0f);
    p = cx_dnc_precedence(p, w1);
    CHECK(CX_F(p)[2] == 1.0f && CX_F(p)[0] == 0.0f);
    L = cx_dnc_link(L, p, w2);
    for (int i = 0; i < N * N; i++) CHECK(CX_F(L)[i] == (i == 0 * N + 2 ? 1.0f : 0.0f));
    p = cx_dnc_precedence(p, w2);
    CHECK(CX_F(p)[0] == 1.0f && CX_F(p)[2] == 0.0f);
    cx_tensor *at2 = cx_from_data((const float[]){0, 0, 1}, CX_SHAPE(1, 1, N));
    cx_tensor *f = cx_dnc_directional(L, at2, true);
    CHECK(CX_F(f)[0] == 1.0f && CX_F(f)[1] == 0.0f && CX_F(f)[2] == 0.0f);
    cx_tensor *at0 = cx_from_data((const float[]){1, 0, 0}, CX_SHAPE(1, 1, N));
    cx_tensor *bk = cx_dnc_directional(L, at0, false);
    CHECK(CX_F(bk)[2] == 1.0f && CX_F(bk)[0] == 0.0f);
    /* the link diagonal stays zero even when the previous one was not */
    cx_tensor *L1 = cx_dnc_link(cx_ones(CX_SHAPE(1, N, N)), cx_full(CX_SHAPE(1, N), 0.2f),
                                cx_full(CX_SHAPE(1, N), 0.1f));
    CHECK(CX_F(L1)[0] == 0.0f && CX_F(L1)[4] == 0.0f && CX_F(L1)[8] == 0.0f);
    CHECK_NEAR(CX_F(L1)[1], 0.8 + 0.02, 1e-6);
    /* retention and usage: a fully freed read leaves usage 0 there */
    cx_tensor *wr = cx_from_data((const float[]){0, 1, 0}, CX_SHAPE(1, 1, N));
    cx_tensor *psi = cx_dnc_retention(cx_ones(CX_SHAPE(1, 1)), wr);
    CHECK(CX_F(psi)[0] == 1.0f && CX_F(psi)[1] == 0.0f);
    cx_tensor *us = cx_dnc_usage(cx_full(CX_SHAPE(1, N), 0.5f), cx_from_data((const float[]){0.5f, 0, 0}, CX_SHAPE(1, N)),
                                 psi);
    CHECK_NEAR(CX_F(us)[0], 0.75, 1e-7);
    CHECK(CX_F(us)[1] == 0.0f);
    CHECK_NEAR(CX_F(us)[2], 0.5, 1e-7);
    /* write weighting: g^a = 1 takes the allocation, g^w = 0 writes nothing */
    cx_tensor *cw = cx_from_data((const float[]){0.2f, 0.3f, 0.5f}, CX_SHAPE(1, N));
    cx_tensor *ww = cx_dnc_write_weighting(cw, w1, cx_ones(CX_SHAPE(1)), cx_ones(CX_SHAPE(1)));
    CHECK(CX_F(ww)[2] == 1.0f && CX_F(ww)[0] == 0.0f);
    ww = cx_dnc_write_weighting(cw, w1, cx_ones(CX_SHAPE(1)), cx_zeros(CX_SHAPE(1, 1)));
    CHECK(CX_F(ww)[0] == 0.0f && CX_F(ww)[2] == 0.0f);
    /* read weighting: pure content mode */
    cx_tensor *modes = cx_from_data((const float[]){0, 1, 0}, CX_SHAPE(1, 1, 3));
    cx_tensor *rw = cx_dnc_read_weighting(at0, cx_reshape(cw, CX_SHAPE(1, 1, N)), at2, modes);
    for (int i = 0; i < N; i++) CHECK(CX_F(rw)[i] == CX_F(cw)[i]);
    /* interface size and split ranges */
    CHECK(cx_dnc_interface_size(1, 4) == 4 + 12 + 5 + 3);
    cx_tensor *xi = cx_randn(CX_SHAPE(2, cx_dnc_interface_size(2, 3)), 0.0f, 3.0f);
    cx_dnc_interface it = cx_dnc_interface_split(xi, 2, 3);
    CHECK(it.read_keys->shape[1] == 2 && it.read_keys->shape[2] == 3 && it.read_modes->shape[2] == 3);
    for (int i = 0; i < 4; i++) CHECK(CX_F(it.read_strengths)[i] >= 1.0f);
    CHECK(CX_F(it.read_keys)[0] == CX_F(xi)[0]); /* keys come first, unsquashed */
    CHECK_NEAR(CX_F(it.read_modes)[0] + CX_F(it.read_modes)[1] + CX_F(it.read_modes)[2], 1.0, 1e-6);
}

/* ---- errors */
static void errors(void) {
    cx_tensor *mem = cx_zeros(CX_SHAPE(2, 5, 3)), *w = cx_zeros(CX_SHAPE(2, 5)), *wr = cx_zeros(CX_SHAPE(2, 2, 5));
    cx_tensor *L = cx_zeros(CX_SHAPE(2, 5, 5)), *g = cx_ones(CX_SHAPE(2));
    EXPECT_FATAL(cx_dnc_content_address(mem, cx_zeros(CX_SHAPE(2, 2, 4)), cx_ones(CX_SHAPE(2, 2))),
                 "dnc_content_address", "keys has shape [2, 2, 4]", "[B, H, W] = [2, *, 3]");
    EXPECT_FATAL(cx_dnc_content_address(mem, cx_zeros(CX_SHAPE(2, 2, 3)), cx_ones(CX_SHAPE(2, 3))),
                 "dnc_content_address", "beta has shape [2, 3]", "[2, 2]");
    EXPECT_FATAL(cx_dnc_content_address(cx_zeros(CX_SHAPE(5, 3)), cx_zeros(CX_SHAPE(2, 2, 3)), g),
                 "dnc_content_address", "mem has shape [5, 3]", "[B, N, W]");
    EXPECT_FATAL(cx_dnc_retention(cx_ones(CX_SHAPE(2, 3)), wr), "dnc_retention", "free_gates has shape [2, 3]",
                 "[B, R] = [2, 2]");
    EXPECT_FATAL(cx_dnc_retention(g, w), "dnc_retention", "wr_prev has shape [2, 5]", "[B, R, N]");
    EXPECT_FATAL(cx_dnc_usage(w, cx_zeros(CX_SHAPE(2, 4)), w), "dnc_usage", "ww_prev has shape [2, 4]", "[2, 5]");
    EXPECT_FATAL(cx_dnc_usage(w, w, NULL), "dnc_usage", "psi must not be NULL");
    EXPECT_FATAL(cx_dnc_allocation(cx_zeros(CX_SHAPE(5))), "dnc_allocation", "usage has shape [5]", "[B, N]");
    EXPECT_FATAL(cx_dnc_allocation(cx_empty(CX_I32, CX_SHAPE(2, 5))), "dnc_allocation", "usage must be F32");
    EXPECT_FATAL(cx_dnc_write_weighting(w, cx_zeros(CX_SHAPE(2, 6)), g, g), "dnc_write_weighting",
                 "alloc has shape [2, 6]");
    EXPECT_FATAL(cx_dnc_write_weighting(w, w, cx_ones(CX_SHAPE(3)), g), "dnc_write_weighting",
                 "alloc_gate has shape [3]", "[B] or [B, 1]");
    EXPECT_FATAL(cx_dnc_write_weighting(w, w, g, cx_ones(CX_SHAPE(2, 2))), "dnc_write_weighting",
                 "write_gate has shape [2, 2]");
    EXPECT_FATAL(cx_dnc_precedence(w, cx_zeros(CX_SHAPE(1, 5))), "dnc_precedence", "ww has shape [1, 5]");
    EXPECT_FATAL(cx_dnc_link(cx_zeros(CX_SHAPE(2, 5, 4)), w, w), "dnc_link", "link_prev has shape [2, 5, 4]",
                 "square");
    EXPECT_FATAL(cx_dnc_link(L, cx_zeros(CX_SHAPE(2, 4)), w), "dnc_link", "p_prev has shape [2, 4]", "[2, 5]");
    EXPECT_FATAL(cx_dnc_link(L, w, cx_zeros(CX_SHAPE(2, 5, 1))), "dnc_link", "ww has shape [2, 5, 1]");
    EXPECT_FATAL(cx_dnc_directional(L, cx_zeros(CX_SHAPE(2, 2, 4)), true), "dnc_directional",
                 "wr_prev has shape [2, 2, 4]", "[2, *, 5]");
    EXPECT_FATAL(cx_dnc_directional(cx_zeros(CX_SHAPE(2, 4, 5)), wr, false), "dnc_directional",
                 "link has shape [2, 4, 5]");
    EXPECT_FATAL(cx_dnc_read_weighting(wr, wr, wr, cx_zeros(CX_SHAPE(2, 2, 2))), "dnc_read_weighting",
                 "modes has shape [2, 2, 2]", "[B, R, 3]");
    EXPECT_FATAL(cx_dnc_read_weighting(wr, cx_zeros(CX_SHAPE(2, 1, 5)), wr, cx_zeros(CX_SHAPE(2, 2, 3))),
                 "dnc_read_weighting", "content has shape [2, 1, 5]");
    EXPECT_FATAL(cx_dnc_read(mem, cx_zeros(CX_SHAPE(2, 2, 4))), "dnc_read", "wr has shape [2, 2, 4]");
    EXPECT_FATAL(cx_dnc_interface_split(cx_zeros(CX_SHAPE(2, 10)), 2, 3), "dnc_interface_split",
                 "xi has shape [2, 10]", "[*, 28]");
    EXPECT_FATAL(cx_dnc_interface_split(cx_zeros(CX_SHAPE(2, 10)), 0, 3), "dnc_interface_split", "read_heads = 0");
    EXPECT_FATAL(cx_dnc_state_zeros(1, 0, 3, 1), "dnc_state_zeros", "slots = 0");
    cx_dnc_state s = cx_dnc_state_zeros(2, 5, 3, 2);
    cx_dnc_interface it = cx_dnc_interface_split(cx_zeros(CX_SHAPE(2, cx_dnc_interface_size(2, 3))), 2, 3);
    it.erase = cx_zeros(CX_SHAPE(2, 4));
    EXPECT_FATAL(cx_dnc_access(&s, &it), "dnc_access", "in.erase has shape [2, 4]");
    it = cx_dnc_interface_split(cx_zeros(CX_SHAPE(2, cx_dnc_interface_size(1, 3))), 1, 3);
    EXPECT_FATAL(cx_dnc_access(&s, &it), "dnc_access", "in.read_keys has shape [2, 1, 3]", "[2, 2, 3]");
}

int main(void) {
    RUN(pytorch_fixtures);
    RUN(pytorch_alloc_ties);
    RUN(gradchecks);
    RUN(hand_values);
    RUN(errors);
    TEST_END();
}
