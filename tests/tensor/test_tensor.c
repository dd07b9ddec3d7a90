/* Tensors: constructors, the PRNG, persistent tensors, parameter lists,
 * shape strings, dtypes, and the errors they report. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"


static void mean_std(const float *d, int64_t n, double *mean, double *std) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += d[i];
        s2 += (double)d[i] * d[i];
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

/* ---------------------------------------------------------------- constructors */
static void test_zeros_ones_full(void) {
    cx_tensor *z = cx_zeros(CX_SHAPE(2, 3, 4));
    CHECK(z->dtype == CX_F32 && z->ndim == 3 && z->numel == 24);
    CHECK(z->shape[0] == 2 && z->shape[1] == 3 && z->shape[2] == 4);
    CHECK(!z->requires_grad && !z->persistent && z->node == NULL && z->grad == NULL);
    for (int i = 0; i < 24; i++) CHECK(CX_F(z)[i] == 0.0f);
    cx_tensor *o = cx_ones(CX_SHAPE(5));
    for (int i = 0; i < 5; i++) CHECK(CX_F(o)[i] == 1.0f);
    cx_tensor *f = cx_full(CX_SHAPE(2, 2), -3.5f);
    for (int i = 0; i < 4; i++) CHECK(CX_F(f)[i] == -3.5f);
    cx_tensor *s = cx_scalar(7.25f);
    CHECK(s->ndim == 1 && s->numel == 1 && cx_item(s) == 7.25f);
    /* empty tensors */
    cx_tensor *e = cx_zeros(CX_SHAPE(0, 3));
    CHECK(e->numel == 0 && e->ndim == 2 && e->shape[1] == 3);
    cx_tensor *e2 = cx_from_data(NULL, CX_SHAPE(0));
    CHECK(e2->numel == 0);
    /* cx_empty of every dtype */
    cx_tensor *ei = cx_empty(CX_I64, CX_SHAPE(3));
    CHECK(ei->dtype == CX_I64 && ei->numel == 3);
    CX_I64P(ei)[2] = (int64_t)1 << 40;
    CHECK(cx_get(ei, 2) == (float)((int64_t)1 << 40));
    /* data is 64-byte aligned */
    CHECK(((uintptr_t)z->data & 63) == 0);
    CHECK(((uintptr_t)o->data & 63) == 0);
}

static void test_from_data_wrap_arange(void) {
    float v[6] = {1, 2, 3, 4, 5, 6};
    cx_tensor *t = cx_from_data(v, CX_SHAPE(2, 3));
    CHECK(t->data != (void *)v); /* a copy */
    v[0] = 100;
    CHECK(CX_F(t)[0] == 1.0f && CX_F(t)[5] == 6.0f);
    CHECK(cx_get(t, 4) == 5.0f);
    cx_tensor *w = cx_wrap(v, CX_SHAPE(3, 2));
    CHECK(w->data == (void *)v); /* no copy */
    CHECK(CX_F(w)[0] == 100.0f && w->shape[0] == 3 && w->shape[1] == 2 && w->dtype == CX_F32);
    cx_tensor *i = cx_from_i32((const int32_t[]){-1, 0, 7}, CX_SHAPE(3));
    CHECK(i->dtype == CX_I32 && CX_I32P(i)[2] == 7);
    CHECK(cx_get(i, 0) == -1.0f);
    cx_tensor *a = cx_arange(10);
    CHECK(a->ndim == 1 && a->numel == 10 && a->dtype == CX_F32);
    for (int k = 0; k < 10; k++) CHECK(CX_F(a)[k] == (float)k);
    CHECK(cx_arange(0)->numel == 0);
}

static void test_randn_uniform(void) {
    cx_seed(99);
    cx_tensor *n = cx_randn(CX_SHAPE(200, 500), 2.0f, 3.0f);
    double m, s;
    mean_std(CX_F(n), n->numel, &m, &s);
    CHECK_NEAR(m, 2.0, 0.03);
    CHECK_NEAR(s, 3.0, 0.03);
    /* roughly Gaussian: ~68.3% within one std */
    int64_t in1 = 0;
    for (int64_t i = 0; i < n->numel; i++) in1 += fabsf(CX_F(n)[i] - 2.0f) < 3.0f;
    CHECK_NEAR((double)in1 / (double)n->numel, 0.6827, 0.01);
    cx_tensor *u = cx_rand_uniform_t(CX_SHAPE(100000), -2.0f, 5.0f);
    float lo = 1e9f, hi = -1e9f;
    for (int64_t i = 0; i < u->numel; i++) {
        lo = fminf(lo, CX_F(u)[i]);
        hi = fmaxf(hi, CX_F(u)[i]);
    }
    CHECK(lo >= -2.0f && hi < 5.0f);
    CHECK(lo < -1.99f && hi > 4.99f); /* covers the range */
    mean_std(CX_F(u), u->numel, &m, &s);
    CHECK_NEAR(m, 1.5, 0.03);
    CHECK_NEAR(s, 7.0 / sqrt(12.0), 0.02);
    /* scalar generators */
    for (int i = 0; i < 100000; i++) {
        float r = cx_rand_uniform();
        if (!(r >= 0.0f && r < 1.0f)) {
            CHECK_MSG(0, "cx_rand_uniform gave %g", (double)r);
            break;
        }
    }
    double sn = 0, sn2 = 0;
    for (int i = 0; i < 100000; i++) {
        double r = cx_rand_normal();
        CHECK(isfinite(r));
        sn += r;
        sn2 += r * r;
    }
    CHECK_NEAR(sn / 100000, 0, 0.02);
    CHECK_NEAR(sn2 / 100000, 1, 0.03);
}

static void test_fill(void) {
    cx_tensor *t = cx_zeros(CX_SHAPE(1000));
    cx_fill(t, 2.5f);
    for (int i = 0; i < 1000; i++) CHECK(CX_F(t)[i] == 2.5f);
    cx_fill_uniform(t, 1.0f, 1.5f);
    for (int i = 0; i < 1000; i++) CHECK(CX_F(t)[i] >= 1.0f && CX_F(t)[i] < 1.5f);
    cx_fill_normal(t, -1.0f, 0.0f);
    for (int i = 0; i < 1000; i++) CHECK(CX_F(t)[i] == -1.0f);
    cx_tensor *p = cx_tensor_new(CX_F32, CX_SHAPE(4));
    cx_fill(p, 3.0f);
    CHECK(CX_F(p)[3] == 3.0f);
    cx_tensor_free(p);
    EXPECT_FATAL(cx_fill(cx_from_i32((const int32_t[]){1}, CX_SHAPE(1)), 1.0f), "F32");
}

/* ---------------------------------------------------------------- PRNG */
static void test_prng_determinism(void) {
    uint32_t a[100], b[100];
    cx_seed(42);
    for (int i = 0; i < 100; i++) a[i] = cx_rand_u32();
    cx_seed(42);
    for (int i = 0; i < 100; i++) b[i] = cx_rand_u32();
    CHECK(memcmp(a, b, sizeof a) == 0);
    cx_seed(43);
    int same = 0;
    for (int i = 0; i < 100; i++) same += cx_rand_u32() == a[i];
    CHECK(same < 3);
    /* not a constant stream */
    int distinct = 0;
    for (int i = 1; i < 100; i++) distinct += a[i] != a[i - 1];
    CHECK(distinct > 95);
    /* seeded tensors are reproducible */
    cx_seed(5);
    cx_tensor *t1 = cx_randn(CX_SHAPE(64), 0, 1);
    cx_seed(5);
    cx_tensor *t2 = cx_randn(CX_SHAPE(64), 0, 1);
    CHECK(memcmp(t1->data, t2->data, 64 * sizeof(float)) == 0);
    /* seeds 0 and 1 work and differ */
    cx_seed(0);
    uint32_t z0 = cx_rand_u32();
    cx_seed(1);
    uint32_t z1 = cx_rand_u32();
    CHECK(z0 != z1);
}

static void test_rng_get_set(void) {
    cx_seed(2024);
    for (int i = 0; i < 17; i++) (void)cx_rand_u32();
    cx_rng_state st = cx_rng_get();
    uint32_t a[50];
    float n1[10];
    for (int i = 0; i < 50; i++) a[i] = cx_rand_u32();
    for (int i = 0; i < 10; i++) n1[i] = cx_rand_normal();
    cx_rng_set(st);
    cx_rng_state st2 = cx_rng_get();
    CHECK(st2.state == st.state && st2.inc == st.inc);
    for (int i = 0; i < 50; i++) CHECK(cx_rand_u32() == a[i]);
    for (int i = 0; i < 10; i++) CHECK(cx_rand_normal() == n1[i]);
    /* a seed fully determines the state */
    cx_seed(77);
    cx_rng_state s1 = cx_rng_get();
    (void)cx_rand_u32();
    cx_seed(77);
    cx_rng_state s2 = cx_rng_get();
    CHECK(s1.state == s2.state && s1.inc == s2.inc);
}

static void test_rand_below(void) {
    cx_seed(31337);
    enum { K = 10, DRAWS = 100000 };
    int count[K] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint32_t r = cx_rand_below(K);
        if (r >= K) {
            CHECK_MSG(0, "cx_rand_below(%d) gave %u", K, r);
            return;
        }
        count[r]++;
    }
    double chi2 = 0, e = (double)DRAWS / K;
    for (int k = 0; k < K; k++) chi2 += (count[k] - e) * (count[k] - e) / e;
    /* 9 degrees of freedom: P(chi2 > 27.9) = 0.001 */
    CHECK_MSG(chi2 < 27.9, "chi2 = %g", chi2);
    /* edge cases */
    for (int i = 0; i < 100; i++) CHECK(cx_rand_below(1) == 0);
    CHECK(cx_rand_below(0) == 0);
    /* a large, non-power-of-two bound: halves balanced */
    uint32_t big = 3000000000u;
    int upper = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t r = cx_rand_below(big);
        CHECK(r < big);
        upper += r >= big / 2;
    }
    CHECK_NEAR(upper / 20000.0, 0.5, 0.02);
}

/* ---------------------------------------------------------------- persistent tensors */
static void test_tensor_new_free(void) {
    cx_tensor *t = cx_tensor_new(CX_F32, CX_SHAPE(3, 5));
    CHECK(t->persistent && t->owns_data && !t->requires_grad && t->grad == NULL && t->name == NULL);
    CHECK(t->numel == 15 && t->ndim == 2);
    for (int i = 0; i < 15; i++) CHECK(CX_F(t)[i] == 0.0f); /* zeroed */
    CHECK(((uintptr_t)t->data & 63) == 0);
    cx_tensor_free(t);
    cx_tensor *i64 = cx_tensor_new(CX_I64, CX_SHAPE(4));
    CHECK(i64->dtype == CX_I64 && CX_I64P(i64)[3] == 0);
    cx_tensor_free(i64);
    cx_tensor *e = cx_tensor_new(CX_F32, CX_SHAPE(0));
    CHECK(e->numel == 0);
    cx_tensor_free(e);
    cx_tensor_free(NULL); /* no-op */
    /* arena tensors are not freed by hand */
    EXPECT_FATAL(cx_tensor_free(cx_zeros(CX_SHAPE(2))), "arena");
}

static void test_param_new(void) {
    cx_tensor *p = cx_param_new("fc1.weight", CX_SHAPE(4, 3));
    CHECK(p->requires_grad && p->persistent && p->dtype == CX_F32);
    CHECK(p->name && strcmp(p->name, "fc1.weight") == 0);
    CHECK(p->grad == NULL);
    float *g = cx_grad_ensure(p);
    CHECK(g && p->grad == g);
    for (int i = 0; i < 12; i++) CHECK(g[i] == 0.0f);
    g[5] = 3.0f;
    CHECK(cx_grad_ensure(p) == g); /* idempotent, keeps values */
    CHECK(g[5] == 3.0f);
    cx_zero_grad(p);
    CHECK(g[5] == 0.0f);
    cx_tensor *q = cx_param_new(NULL, CX_SHAPE(2));
    CHECK(q->name == NULL);
    cx_zero_grad(q); /* no grad yet: no-op */
    CHECK(q->grad == NULL);
    cx_tensor_free(p);
    cx_tensor_free(q);
    /* grad of an arena tensor lives in the arena */
    cx_tensor *a = cx_ones(CX_SHAPE(3));
    float *ga = cx_grad_ensure(a);
    CHECK(ga && ga[2] == 0.0f);
    EXPECT_FATAL(cx_grad_ensure(cx_from_i32((const int32_t[]){1}, CX_SHAPE(1))), "F32");
}

static void test_clone_and_name(void) {
    cx_tensor *p = cx_param_new("w", CX_SHAPE(2, 2));
    cx_fill_uniform(p, -1, 1);
    cx_grad_ensure(p)[0] = 1.0f;
    cx_tensor *c = cx_tensor_clone(p);
    CHECK(c != p && c->data != p->data);
    CHECK(memcmp(c->data, p->data, 4 * sizeof(float)) == 0);
    CHECK(c->persistent && c->owns_data);
    CHECK(c->grad == NULL);          /* data only */
    CHECK(!c->requires_grad);         /* no graph */
    CHECK(c->name && strcmp(c->name, "w") == 0 && c->name != p->name);
    CX_F(c)[0] = 42.0f;
    CHECK(CX_F(p)[0] != 42.0f); /* deep */
    cx_tensor_set_name(c, "w.copy");
    CHECK(strcmp(c->name, "w.copy") == 0 && strcmp(p->name, "w") == 0);
    cx_tensor_set_name(c, NULL);
    CHECK(c->name == NULL);
    /* clone of an arena tensor (any dtype) is persistent */
    cx_tensor *i = cx_from_i32((const int32_t[]){4, 5, 6}, CX_SHAPE(3));
    cx_tensor *ic = cx_tensor_clone(i);
    CHECK(ic->persistent && ic->dtype == CX_I32 && CX_I32P(ic)[1] == 5 && ic->name == NULL);
    cx_tensor_free(ic);
    EXPECT_FATAL(cx_tensor_set_name(cx_zeros(CX_SHAPE(1)), "x"), "persistent");
    cx_tensor_free(c);
    cx_tensor_free(p);
}

/* ---------------------------------------------------------------- parameter lists */
static void test_params(void) {
    cx_params ps;
    cx_params_init(&ps);
    CHECK(ps.n == 0 && cx_params_count(&ps) == 0);
    CHECK(cx_params_find(&ps, "x") == NULL);
    cx_tensor *ts[20];
    char name[32];
    int64_t total = 0;
    for (int i = 0; i < 20; i++) { /* past the initial capacity */
        snprintf(name, sizeof name, "layer%d.weight", i);
        ts[i] = cx_param_new(name, (const int[]){i + 1, 2}, 2);
        total += 2 * (i + 1);
        cx_params_add(&ps, ts[i]);
    }
    CHECK(ps.n == 20);
    CHECK(cx_params_count(&ps) == total);
    CHECK(cx_params_find(&ps, "layer7.weight") == ts[7]);
    CHECK(cx_params_find(&ps, "layer19.weight") == ts[19]);
    CHECK(cx_params_find(&ps, "layer7") == NULL);
    CHECK(cx_params_find(&ps, "nope") == NULL);
    /* an unnamed tensor in the list is skipped by find */
    cx_tensor *anon = cx_param_new(NULL, CX_SHAPE(3));
    cx_params_add(&ps, anon);
    CHECK(cx_params_count(&ps) == total + 3);
    CHECK(cx_params_find(&ps, "layer0.weight") == ts[0]);
    for (int i = 0; i < 20; i += 3) {
        cx_fill(ts[i], 1.0f);
        cx_grad_ensure(ts[i])[0] = 5.0f;
    }
    cx_grad_ensure(anon)[2] = -1.0f;
    cx_params_zero_grad(&ps);
    for (int i = 0; i < 20; i += 3) {
        CHECK(ts[i]->grad[0] == 0.0f);
        CHECK(CX_F(ts[i])[0] == 1.0f); /* data untouched */
    }
    CHECK(anon->grad[2] == 0.0f);
    CHECK(ts[1]->grad == NULL); /* never had one: still none */
    cx_params_free(&ps);
    CHECK(ps.n == 0 && ps.t == NULL);
    for (int i = 0; i < 20; i++) cx_tensor_free(ts[i]); /* the list did not own them */
    cx_tensor_free(anon);
}

/* ---------------------------------------------------------------- shapes, dtypes, items */
static void test_shape_str(void) {
    char buf[64];
    CHECK(strcmp(cx_shape_str(cx_zeros(CX_SHAPE(2, 3)), buf, sizeof buf), "[2, 3]") == 0);
    CHECK(strcmp(cx_shape_str(cx_zeros(CX_SHAPE(7)), buf, sizeof buf), "[7]") == 0);
    CHECK(strcmp(cx_shape_str(cx_zeros(CX_SHAPE(1, 0, 4, 5)), buf, sizeof buf), "[1, 0, 4, 5]") == 0);
    CHECK(strcmp(cx_shape_str(cx_zeros(NULL, 0), buf, sizeof buf), "[]") == 0);
    /* truncation is safe and NUL-terminated */
    char small[6];
    memset(small, 'x', sizeof small);
    const char *r = cx_shape_str(cx_zeros(CX_SHAPE(1000, 2000, 3)), small, sizeof small);
    CHECK(r == small);
    CHECK(strlen(small) == 5 && strncmp(small, "[1000", 5) == 0);
    char one[1] = {'x'};
    cx_shape_str(cx_zeros(CX_SHAPE(2, 3)), one, 1);
    CHECK(one[0] == 0);
}

static void test_same_shape(void) {
    CHECK(cx_same_shape(cx_zeros(CX_SHAPE(2, 3)), cx_ones(CX_SHAPE(2, 3))));
    CHECK(!cx_same_shape(cx_zeros(CX_SHAPE(2, 3)), cx_zeros(CX_SHAPE(3, 2))));
    CHECK(!cx_same_shape(cx_zeros(CX_SHAPE(6)), cx_zeros(CX_SHAPE(6, 1))));
}

static void test_item_get(void) {
    CHECK(cx_item(cx_full(CX_SHAPE(1, 1, 1), 4.5f)) == 4.5f);
    CHECK(cx_item(cx_from_i32((const int32_t[]){-9}, CX_SHAPE(1))) == -9.0f);
    EXPECT_FATAL(cx_item(cx_zeros(CX_SHAPE(2, 3))), "cx_item");
    CHECK_MSG(strstr(err_msg, "[2, 3]") && strstr(err_msg, "6"), "message '%s'", err_msg);
    EXPECT_FATAL(cx_item(cx_zeros(CX_SHAPE(0))), "cx_item");
    EXPECT_FATAL(cx_get(cx_zeros(CX_SHAPE(3)), 3), "out of range");
    EXPECT_FATAL(cx_get(cx_zeros(CX_SHAPE(3)), -1), "out of range");
}

static void test_reshape(void) {
    cx_tensor *a = cx_arange(24);
    cx_tensor *r = cx_reshape(a, CX_SHAPE(2, -1, 4));
    CHECK(r->ndim == 3 && r->shape[0] == 2 && r->shape[1] == 3 && r->shape[2] == 4 && r->numel == 24);
    CHECK(r->data == a->data); /* shares the buffer */
    CHECK(CX_F(r)[23] == 23.0f);
    cx_tensor *r2 = cx_reshape(a, CX_SHAPE(-1));
    CHECK(r2->ndim == 1 && r2->shape[0] == 24);
    cx_tensor *r3 = cx_reshape(r, CX_SHAPE(4, 6));
    CHECK(r3->shape[0] == 4 && r3->shape[1] == 6);
    cx_tensor *f = cx_flatten(r);
    CHECK(f->ndim == 2 && f->shape[0] == 2 && f->shape[1] == 12);
    /* integer tensors reshape too (no graph) */
    cx_tensor *i = cx_from_i32((const int32_t[]){1, 2, 3, 4}, CX_SHAPE(4));
    cx_tensor *ir = cx_reshape(i, CX_SHAPE(2, -1));
    CHECK(ir->dtype == CX_I32 && ir->shape[1] == 2 && CX_I32P(ir)[3] == 4);
    /* empty with -1 */
    cx_tensor *e = cx_reshape(cx_zeros(CX_SHAPE(0, 3)), CX_SHAPE(-1, 3));
    CHECK(e->numel == 0 && e->shape[0] == 0);
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(5, -1)), "reshape");
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(-1, -1)), "reshape");
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(5, 5)), "reshape");
    EXPECT_FATAL(cx_reshape(a, CX_SHAPE(-2, -12)), "reshape");
}

static void test_dtypes(void) {
    CHECK(cx_dtype_size(CX_F32) == 4);
    CHECK(cx_dtype_size(CX_I32) == 4);
    CHECK(cx_dtype_size(CX_I64) == 8);
    CHECK(strcmp(cx_dtype_name(CX_F32), "F32") == 0);
    CHECK(strcmp(cx_dtype_name(CX_I32), "I32") == 0);
    CHECK(strcmp(cx_dtype_name(CX_I64), "I64") == 0);
}

static void test_shape_errors(void) {
    EXPECT_FATAL(cx_zeros(CX_SHAPE(2, -1)), "negative");
    EXPECT_FATAL(cx_zeros(CX_SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)), "dimensions");
    EXPECT_FATAL(cx_tensor_new(CX_F32, CX_SHAPE(-3)), "negative");
    /* the library is usable after errors */
    cx_tensor *ok = cx_zeros(CX_SHAPE(1, 1, 1, 1, 1, 1, 1, 2));
    CHECK(ok->ndim == CX_MAX_DIMS && ok->numel == 2);
}

static void test_last_error(void) {
    CHECK(cx_set_error(CX_ERR_IO, "cannot open %s (%d)", "x.bin", 2) == CX_ERR_IO);
    CHECK(strcmp(cx_last_error(), "cannot open x.bin (2)") == 0);
    CHECK(cx_set_error(CX_ERR_FORMAT, "%s", "bad") == CX_ERR_FORMAT);
    CHECK(strcmp(cx_last_error(), "bad") == 0);
    /* long messages are truncated, not overflowed */
    char big[3000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cx_set_error(CX_ERR_ARG, "%s", big);
    CHECK(strlen(cx_last_error()) > 100 && strlen(cx_last_error()) < sizeof big - 1);
}

int main(void) {
    RUN(test_zeros_ones_full);
    RUN(test_from_data_wrap_arange);
    RUN(test_randn_uniform);
    RUN(test_fill);
    RUN(test_prng_determinism);
    RUN(test_rng_get_set);
    RUN(test_rand_below);
    RUN(test_tensor_new_free);
    RUN(test_param_new);
    RUN(test_clone_and_name);
    RUN(test_params);
    RUN(test_shape_str);
    RUN(test_same_shape);
    RUN(test_item_get);
    RUN(test_reshape);
    RUN(test_dtypes);
    RUN(test_shape_errors);
    RUN(test_last_error);
    TEST_END();
}
