/* NTM memory operations (include/cortex/memory.h): finite-difference
 * gradient checks of every function and of an address -> read -> write
 * chain; PyTorch 1.13 references (tools/gen_memory_fixtures.py ->
 * tests/fixtures/memory/<case>.safetensors, override the folder with
 * CX_MEMORY_FIXTURES); hand-worked values; errors naming the argument. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define FX_RTOL 1e-4
#define FX_ATOL 1e-5

static const char *fixture_dir(void) {
    const char *d = getenv("CX_MEMORY_FIXTURES");
    return d && *d ? d : "tests/fixtures/memory";
}

static const char *const CASES[] = {"b1_k3", "b3_k5", "b3_k3_zero_row", "n1_k1"};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))
static const char *const INS[] = {"mem", "key", "beta", "g", "wprev", "s", "gamma", "erase", "add"};
enum { I_MEM, I_KEY, I_BETA, I_G, I_WPREV, I_S, I_GAMMA, I_ERASE, I_ADD, N_INS };
static const char *const OUTS[] = {"wc", "wg", "ws", "w", "r", "mem2"};
#define N_OUTS 6

static cx_tensor *step_copy(const cx_tensor *src, bool grad) {
    cx_tensor *t = cx_empty(src->dtype, src->shape, src->ndim);
    memcpy(t->data, src->data, (size_t)src->numel * cx_dtype_size(src->dtype));
    t->requires_grad = grad;
    return t;
}

static bool same_shape(const cx_tensor *a, const cx_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

static void compare(const char *c, const char *what, const cx_tensor *got, const float *data, const cx_tensor *want) {
    char msg[128];
    CHECK_MSG(want != NULL, "case %s: fixture lacks %s", c, what);
    CHECK_MSG(data != NULL, "case %s: no %s", c, what);
    if (!want || !data) return;
    CHECK_MSG(same_shape(got, want), "case %s: %s has another shape than PyTorch's", c, what);
    if (got->numel != want->numel) return;
    snprintf(msg, sizeof msg, "%s %s", c, what);
    cxt_allclose(data, CX_F(want), (long)want->numel, FX_RTOL, FX_ATOL, msg);
}

static void fixture_case(const char *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", fixture_dir(), c);
    cx_st_file *f = NULL;
    CHECK_MSG(cx_st_load(path, &f) == CX_OK, "cannot load %s: %s (regenerate with /usr/bin/python3 "
              "tools/gen_memory_fixtures.py)", path, cx_last_error());
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
    o[0] = cx_ntm_content_address(x[I_MEM], x[I_KEY], x[I_BETA]);
    o[1] = cx_ntm_interpolate(o[0], x[I_WPREV], x[I_G]);
    o[2] = cx_ntm_shift(o[1], x[I_S]);
    o[3] = cx_ntm_sharpen(o[2], x[I_GAMMA]);
    o[4] = cx_ntm_read(x[I_MEM], o[3]);
    o[5] = cx_ntm_write(x[I_MEM], o[3], x[I_ERASE], x[I_ADD]);
    /* the one-call addressing gives the same weighting */
    cx_tensor *wa = cx_ntm_address(x[I_MEM], x[I_KEY], x[I_BETA], x[I_G], x[I_WPREV], x[I_S], x[I_GAMMA]);
    compare(c, "cx_ntm_address", wa, CX_F(wa), cx_st_get(f, "out.w"));
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
done:
    cx_st_free(f);
}

static void pytorch_fixtures(void) {
    for (int i = 0; i < N_CASES; i++) fixture_case(CASES[i]);
}

/* ---- gradient checks: loss = sum(out * R) for a fixed random R */
typedef struct {
    int which;
    cx_tensor *R;
} gc_ctx;

static cx_tensor *gc_fn(cx_tensor **x, int n, void *user) {
    (void)n;
    gc_ctx *c = user;
    cx_tensor *y = NULL;
    switch (c->which) {
    case 0: y = cx_ntm_content_address(x[0], x[1], x[2]); break;
    case 1: y = cx_ntm_interpolate(x[0], x[1], x[2]); break;
    case 2: y = cx_ntm_shift(x[0], x[1]); break;
    case 3: y = cx_ntm_sharpen(x[0], x[1]); break;
    case 4: y = cx_ntm_address(x[0], x[1], x[2], x[3], x[4], x[5], x[6]); break;
    case 5: y = cx_ntm_read(x[0], x[1]); break;
    case 6: y = cx_ntm_write(x[0], x[1], x[2], x[3]); break;
    default: {
        /* chain: address, read with the new weighting, write, read again */
        cx_tensor *w = cx_ntm_address(x[0], x[1], x[2], x[3], x[4], x[5], x[6]);
        cx_tensor *r = cx_ntm_read(x[0], w);
        cx_tensor *m2 = cx_ntm_write(x[0], w, x[7], x[8]);
        cx_tensor *r2 = cx_ntm_read(m2, w);
        return cx_add(cx_sum(cx_mul(r, c->R)), cx_sum(cx_mul(r2, cx_mul_scalar(c->R, -0.7f))));
    }
    }
    return cx_sum(cx_mul(y, c->R));
}

static cx_tensor *pos(cx_tensor *t) { return cx_add_scalar(cx_mul_scalar(t, 0.8f), 0.1f); } /* uniform -> [.1, .9] */

static void gc(const char *what, int which, cx_tensor **in, int n, const int *rshape, int rnd) {
    for (int k = 0; k < n; k++) in[k]->requires_grad = true;
    gc_ctx c = {which, cx_randn(rshape, rnd, 0.0f, 1.0f)};
    double worst = cx_gradcheck(gc_fn, in, n, &c, 1e-3f, 2e-3f, 1e-2f, true);
    CHECK_MSG(worst <= 1.0, "%s gradcheck: worst violation ratio %g", what, worst);
}

static void gradchecks(void) {
    cx_seed(7);
    const int B = 3, N = 5, W = 4, K = 3;
    cx_tensor *mem = cx_randn(CX_SHAPE(B, N, W), 0.0f, 1.0f);
    cx_tensor *key = cx_randn(CX_SHAPE(B, W), 0.0f, 1.0f);
    cx_tensor *beta = pos(cx_rand_uniform_t(CX_SHAPE(B), 0.0f, 3.0f));
    cx_tensor *g = pos(cx_rand_uniform_t(CX_SHAPE(B, 1), 0.0f, 1.0f));
    cx_tensor *wprev = cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1);
    cx_tensor *wc = cx_softmax(cx_randn(CX_SHAPE(B, N), 0.0f, 1.0f), -1);
    cx_tensor *s = cx_softmax(cx_randn(CX_SHAPE(B, K), 0.0f, 1.0f), -1);
    cx_tensor *s5 = cx_softmax(cx_randn(CX_SHAPE(B, 5), 0.0f, 1.0f), -1);
    cx_tensor *gamma = cx_add_scalar(cx_rand_uniform_t(CX_SHAPE(B), 0.0f, 2.0f), 1.0f);
    cx_tensor *erase = pos(cx_rand_uniform_t(CX_SHAPE(B, W), 0.0f, 1.0f));
    cx_tensor *add = cx_randn(CX_SHAPE(B, W), 0.0f, 1.0f);
    gc("content_address", 0, (cx_tensor *[]){mem, key, beta}, 3, CX_SHAPE(B, N));
    gc("interpolate", 1, (cx_tensor *[]){wc, wprev, g}, 3, CX_SHAPE(B, N));
    gc("shift k3", 2, (cx_tensor *[]){wc, s}, 2, CX_SHAPE(B, N));
    gc("shift k5", 2, (cx_tensor *[]){wc, s5}, 2, CX_SHAPE(B, N));
    gc("sharpen", 3, (cx_tensor *[]){wc, gamma}, 2, CX_SHAPE(B, N));
    gc("address", 4, (cx_tensor *[]){mem, key, beta, g, wprev, s, gamma}, 7, CX_SHAPE(B, N));
    gc("read", 5, (cx_tensor *[]){mem, wc}, 2, CX_SHAPE(B, W));
    gc("write", 6, (cx_tensor *[]){mem, wc, erase, add}, 4, CX_SHAPE(B, N, W));
    gc("address-read-write chain", 7, (cx_tensor *[]){mem, key, beta, g, wprev, s, gamma, erase, add}, 9,
       CX_SHAPE(B, W));
}

/* ---- hand-worked values */
static void hand_values(void) {
    const int N = 4;
    /* one-hot at slot 1 and slot 3 (B = 2), all shift mass on +1 */
    cx_tensor *w = cx_zeros(CX_SHAPE(2, N));
    CX_F(w)[1] = 1;
    CX_F(w)[N + 3] = 1;
    cx_tensor *s = cx_zeros(CX_SHAPE(2, 3));
    CX_F(s)[2] = 1;
    CX_F(s)[3 + 2] = 1;
    cx_tensor *y = cx_ntm_shift(w, s);
    for (int i = 0; i < N; i++) {
        CHECK(CX_F(y)[i] == (i == 2 ? 1.0f : 0.0f));
        CHECK(CX_F(y)[N + i] == (i == 0 ? 1.0f : 0.0f)); /* wraps from the last slot to 0 */
    }
    /* offset -1 moves the other way */
    CX_F(s)[2] = 0;
    CX_F(s)[0] = 1;
    y = cx_ntm_shift(w, s);
    CHECK(CX_F(y)[0] == 1.0f && CX_F(y)[1] == 0.0f);
    /* gamma = 1 is the identity on a distribution; exact zeros stay zero */
    cx_tensor *d = cx_from_data((const float[]){0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 0.5f, 0.5f, 0.0f}, CX_SHAPE(2, N));
    y = cx_ntm_sharpen(d, cx_ones(CX_SHAPE(2)));
    for (int i = 0; i < 2 * N; i++) CHECK_NEAR(CX_F(y)[i], CX_F(d)[i], 1e-6);
    y = cx_ntm_sharpen(d, cx_full(CX_SHAPE(2, 1), 2.0f));
    CHECK_NEAR(CX_F(y)[3], 0.16 / 0.30, 1e-6);
    CHECK(CX_F(y)[4] == 0.0f && CX_F(y)[7] == 0.0f);
    CHECK_NEAR(CX_F(y)[5], 0.5, 1e-6);
    /* interpolation: g = 1 takes wc, g = 0 takes wprev */
    cx_tensor *wc = cx_from_data((const float[]){1, 0, 0, 0, 0, 0, 0, 1}, CX_SHAPE(2, N));
    y = cx_ntm_interpolate(wc, d, cx_from_data((const float[]){1, 0}, CX_SHAPE(2)));
    for (int i = 0; i < N; i++) CHECK(CX_F(y)[i] == CX_F(wc)[i] && CX_F(y)[N + i] == CX_F(d)[N + i]);
    /* content addressing: the row equal to the key wins with a large beta;
     * beta = 0 gives uniform weights */
    cx_tensor *mem = cx_from_data((const float[]){1, 0, 0, 1, 1, 1, -1, 0}, CX_SHAPE(1, N, 2));
    cx_tensor *key = cx_from_data((const float[]){0, 2}, CX_SHAPE(1, 2));
    y = cx_ntm_content_address(mem, key, cx_full(CX_SHAPE(1), 100.0f));
    CHECK(CX_F(y)[1] > 0.999f);
    y = cx_ntm_content_address(mem, key, cx_zeros(CX_SHAPE(1)));
    for (int i = 0; i < N; i++) CHECK_NEAR(CX_F(y)[i], 0.25, 1e-7);
    /* read with a one-hot weighting returns that row */
    cx_tensor *oh = cx_from_data((const float[]){0, 0, 1, 0}, CX_SHAPE(1, N));
    y = cx_ntm_read(mem, oh);
    CHECK(CX_F(y)[0] == 1.0f && CX_F(y)[1] == 1.0f);
    /* write with erase = 1 and a one-hot weighting replaces that row by add */
    cx_tensor *add = cx_from_data((const float[]){7, -3}, CX_SHAPE(1, 2));
    y = cx_ntm_write(mem, oh, cx_ones(CX_SHAPE(1, 2)), add);
    const float want[8] = {1, 0, 0, 1, 7, -3, -1, 0};
    for (int i = 0; i < 8; i++) CHECK(CX_F(y)[i] == want[i]);
    /* erase = 0 only adds */
    y = cx_ntm_write(mem, oh, cx_zeros(CX_SHAPE(1, 2)), add);
    CHECK(CX_F(y)[4] == 8.0f && CX_F(y)[5] == -2.0f && CX_F(y)[0] == 1.0f);
}

/* ---- errors */
static void errors(void) {
    cx_tensor *mem = cx_zeros(CX_SHAPE(2, 5, 3));
    cx_tensor *key = cx_zeros(CX_SHAPE(2, 3)), *b = cx_ones(CX_SHAPE(2)), *w = cx_zeros(CX_SHAPE(2, 5));
    cx_tensor *s = cx_zeros(CX_SHAPE(2, 3));
    EXPECT_FATAL(cx_ntm_content_address(mem, cx_zeros(CX_SHAPE(2, 4)), b), "ntm_content_address",
                 "key has shape [2, 4]", "[2, 3]");
    EXPECT_FATAL(cx_ntm_content_address(mem, cx_zeros(CX_SHAPE(3, 3)), b), "ntm_content_address",
                 "key has shape [3, 3]");
    EXPECT_FATAL(cx_ntm_content_address(cx_zeros(CX_SHAPE(5, 3)), key, b), "ntm_content_address",
                 "mem has shape [5, 3]", "[B, N, W]");
    EXPECT_FATAL(cx_ntm_content_address(mem, key, cx_ones(CX_SHAPE(3))), "ntm_content_address",
                 "beta has shape [3]");
    EXPECT_FATAL(cx_ntm_content_address(mem, key, cx_ones(CX_SHAPE(2, 2))), "ntm_content_address",
                 "beta has shape [2, 2]");
    EXPECT_FATAL(cx_ntm_content_address(mem, NULL, b), "ntm_content_address", "key must not be NULL");
    EXPECT_FATAL(cx_ntm_content_address(mem, cx_empty(CX_I32, CX_SHAPE(2, 3)), b), "ntm_content_address",
                 "key must be F32");
    EXPECT_FATAL(cx_ntm_interpolate(w, cx_zeros(CX_SHAPE(2, 4)), b), "ntm_interpolate", "wprev has shape [2, 4]");
    EXPECT_FATAL(cx_ntm_interpolate(w, w, cx_ones(CX_SHAPE(1))), "ntm_interpolate", "g has shape [1]");
    EXPECT_FATAL(cx_ntm_shift(w, cx_zeros(CX_SHAPE(2, 4))), "ntm_shift", "s has shape [2, 4]", "odd");
    EXPECT_FATAL(cx_ntm_shift(w, cx_zeros(CX_SHAPE(2, 7))), "ntm_shift", "s has shape [2, 7]", "at most N = 5");
    EXPECT_FATAL(cx_ntm_shift(w, cx_zeros(CX_SHAPE(3, 3))), "ntm_shift", "s has shape [3, 3]");
    EXPECT_FATAL(cx_ntm_shift(cx_zeros(CX_SHAPE(5)), s), "ntm_shift", "w has shape [5]");
    EXPECT_FATAL(cx_ntm_sharpen(w, cx_ones(CX_SHAPE(2, 5))), "ntm_sharpen", "gamma has shape [2, 5]");
    EXPECT_FATAL(cx_ntm_address(mem, key, b, b, w, cx_zeros(CX_SHAPE(2, 2)), b), "ntm_address", "s has shape [2, 2]");
    EXPECT_FATAL(cx_ntm_address(mem, key, b, b, w, s, cx_ones(CX_SHAPE(4))), "ntm_address", "gamma has shape [4]");
    EXPECT_FATAL(cx_ntm_address(mem, key, b, cx_ones(CX_SHAPE(3, 1)), w, s, b), "ntm_address", "g has shape [3, 1]");
    EXPECT_FATAL(cx_ntm_address(mem, key, b, b, cx_zeros(CX_SHAPE(2, 6)), s, b), "ntm_address",
                 "wprev has shape [2, 6]");
    EXPECT_FATAL(cx_ntm_read(mem, cx_zeros(CX_SHAPE(2, 4))), "ntm_read", "w has shape [2, 4]", "[2, 5]");
    EXPECT_FATAL(cx_ntm_read(mem, cx_zeros(CX_SHAPE(1, 5))), "ntm_read", "w has shape [1, 5]");
    EXPECT_FATAL(cx_ntm_write(mem, w, cx_zeros(CX_SHAPE(2, 4)), key), "ntm_write", "erase has shape [2, 4]");
    EXPECT_FATAL(cx_ntm_write(mem, w, key, cx_zeros(CX_SHAPE(1, 3))), "ntm_write", "add has shape [1, 3]");
    EXPECT_FATAL(cx_ntm_write(mem, cx_zeros(CX_SHAPE(2, 5, 1)), key, key), "ntm_write", "w has shape [2, 5, 1]");
}

int main(void) {
    RUN(pytorch_fixtures);
    RUN(gradchecks);
    RUN(hand_values);
    RUN(errors);
    TEST_END();
}
