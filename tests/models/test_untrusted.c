/* Recoverable errors for untrusted input: cx_try turns a failed check into a
 * cx_status with the message, releases the step's memory and restores the
 * thread's state; the .net parser is built on it. Run under ASan (CI's SAN=1
 * job, with leak detection) this also proves that no failure leaks. */
#include "test.h"
#include <stdlib.h>

/* ---- cx_try itself */
typedef struct { int which; cx_tensor *keep; } try_ctx;

static cx_status failing(void *user) {
    try_ctx *c = user;
    cx_tensor *a = cx_randn(CX_SHAPE(3, 4), 0, 1), *b = cx_randn(CX_SHAPE(5, 6), 0, 1);
    a->requires_grad = true;
    c->keep = a;
    switch (c->which) {
    case 0: (void)cx_matmul(a, b); break;                       /* shape mismatch: cx_fatal */
    case 1: cx_raise(CX_ERR_FORMAT, "bad record %d", 42);       /* explicit status */
    case 2: return cx_set_error(CX_ERR_IO, "plain failure");    /* ordinary returned status */
    case 3: {                                                   /* state changed, then a failure */
        cx_no_grad_begin();
        cx_no_grad_begin();
        cx_set_training(false);
        cx_set_check_numerics(true);
        static cx_rng r;
        r = cx_rng_new(3);
        cx_rng_use(&r);
        static cx_arena *other;
        if (!other) other = cx_arena_new(0);
        cx_arena_use(other);
        (void)cx_zeros(CX_SHAPE(100));
        (void)cx_log(cx_full(CX_SHAPE(2), -1.0f));             /* check mode: NaN */
        break;
    }
    case 4: {                                                   /* failure inside backward */
        cx_tensor *y = cx_sqrt(a);                              /* NaN for a < 0: backward NaN too */
        cx_set_check_numerics(true);
        cx_backward(cx_sum(cx_mul(y, y)));
        break;
    }
    case 5: return CX_OK;
    }
    return CX_OK;
}

static void try_returns_status_and_releases(void) {
    cx_seed(1);
    cx_step_reset();
    (void)cx_zeros(CX_SHAPE(10));
    size_t used = cx_arena_used(cx_arena_current());
    try_ctx c = {0, NULL};
    cx_status st = cx_try(failing, &c);
    CHECK(st == CX_ERR_INVALID);
    CHECK_MSG(strstr(cx_last_error(), "matmul") != NULL, "message: %s", cx_last_error());
    CHECK_MSG(cx_arena_used(cx_arena_current()) == used, "arena: %zu bytes, %zu before", cx_arena_used(cx_arena_current()),
              used);
    c.which = 1;
    CHECK(cx_try(failing, &c) == CX_ERR_FORMAT);
    CHECK(!strcmp(cx_last_error(), "bad record 42"));
    c.which = 2;
    CHECK(cx_try(failing, &c) == CX_ERR_IO && !strcmp(cx_last_error(), "plain failure"));
    c.which = 5;
    CHECK(cx_try(failing, &c) == CX_OK);
    CHECK(cx_arena_used(cx_arena_current()) > used); /* success keeps what fn made */
    CHECK(!cx_in_try());
}

static void try_restores_thread_state(void) {
    cx_arena *ar = cx_arena_current();
    cx_rng *rng = cx_rng_current();
    try_ctx c = {3, NULL};
    CHECK(cx_try(failing, &c) == CX_ERR_INVALID);
    CHECK_MSG(strstr(cx_last_error(), "check_numerics") && strstr(cx_last_error(), "'log'"), "%s", cx_last_error());
    CHECK(cx_grad_enabled() && cx_is_training() && !cx_check_numerics());
    CHECK(cx_arena_current() == ar && cx_rng_current() == rng);
    /* the library works normally afterwards */
    cx_tensor *x = cx_randn(CX_SHAPE(2, 3), 0, 1);
    x->requires_grad = true;
    cx_backward(cx_sum(cx_tanh(x)));
    CHECK(x->grad != NULL);
}

static void try_failure_in_backward(void) {
    cx_step_reset();
    size_t used = cx_arena_used(cx_arena_current());
    try_ctx c = {4, NULL};
    CHECK(cx_try(failing, &c) == CX_ERR_INVALID);
    CHECK_MSG(strstr(cx_last_error(), "check_numerics") != NULL, "%s", cx_last_error());
    CHECK(cx_arena_used(cx_arena_current()) == used);
    CHECK(!cx_check_numerics());
}

typedef struct { int depth; cx_status inner; } nest_ctx;
static cx_status nested(void *user) {
    nest_ctx *n = user;
    if (n->depth == 0) (void)cx_reshape(cx_zeros(CX_SHAPE(6)), CX_SHAPE(4, 2)); /* fails */
    n->depth--;
    n->inner = cx_try(nested, n);
    CHECK(cx_in_try());
    /* the inner failure was caught by the inner try: this level goes on */
    return n->inner == CX_ERR_INVALID ? CX_ERR_ARG : CX_OK;
}

static void try_nests(void) {
    nest_ctx n = {2, CX_OK};
    cx_status st = cx_try(nested, &n);
    /* depth 0 fails, its caller's cx_try returns CX_ERR_INVALID, that level
     * returns CX_ERR_ARG to the outermost level, which goes on and succeeds */
    CHECK(st == CX_OK && n.inner == CX_ERR_ARG && n.depth == 0);
    CHECK(strstr(cx_last_error(), "reshape") != NULL);
}

/* cx_raise outside cx_try is cx_fatal */
static void raise_outside_try_is_fatal(void) {
    EXPECT_FATAL(cx_raise(CX_ERR_FORMAT, "outside %s", "try"), "outside try");
}

/* ---- the .net parser on hostile text */
static const char *const bad_nets[] = {
    "",
    "# only a comment\n",
    "linear out=10\n",
    "input 1 28 28\n",
    "input 1 28 28\ninput 1 28 28\nflatten\n",
    "input 0 28 28\nflatten\n",
    "input 99999999 99999999 99999999\nflatten\n",
    "input 1 28 28 3 3\nflatten\n",
    "input -1\nlinear out=3\n",
    "input 1 28 28\nconv2d k=3\n",
    "input 1 28 28\nconv2d out=4 k=99\n",
    "input 1 28 28\nconv2d out=4 k=3 s=0\n",
    "input 1 28 28\nconv2d out=2147483647 k=3\n",
    "input 1 28 28\nconv2d out=4 k=3 g=3\n",
    "input 1 28 28\nconv1d out=4 k=3\n",
    "input 1 28 28\nconv3d out=4 k=3\n",
    "input 1 28 28\nmaxpool2d k=64\n",
    "input 1 28 28\nmaxpool2d k=2 p=2\n",
    "input 1 28 28\nlinear out=0\n",
    "input 1 28 28\nflatten\nlinear out=10 bias=7\n",
    "input 1 28 28\nflatten\nlinear\n",
    "input 1 28 28\nflatten\nlinear out=10 out=11\n",
    "input 1 28 28\nflatten\nlinear out=ten\n",
    "input 1 28 28\nflatten\nlinear out=10 colour=red\n",
    "input 1 28 28\nflatten\nlinear =10\n",
    "input 1 28 28\nflatten\nlinear out=\n",
    "input 1 28 28\nfrobnicate\n",
    "input 1 28 28\nflatten name=a\nlinear name=a out=3\n",
    "input 1 28 28\nflatten name=a-b\n",
    "input 1 28 28\nflatten\nadd from=x,y\n",
    "input 1 28 28\nconv2d name=a out=4 k=3\nconv2d name=b out=4 k=5\nadd from=a,b\n",
    "input 1 28 28\nconv2d name=a out=4 k=3 p=1\nconv2d name=b out=5 k=3 p=1\nconcat from=a\n",
    "input 1 28 28\nconv2d name=a out=4 k=3\nflatten name=b from=a\nconcat from=a,b\n",
    "input 1 28 28\nflatten\nbatchnorm eps=-1\n",
    "input 1 28 28\nlayernorm dims=9\n",
    "input 1 28 28\nupsample scale=0\n",
    "input 1 28 28\nupsample scale=2 mode=cubic\n",
    "input 1 28 28\nadaptiveavgpool2d h=0 w=1\n",
    "input 10\nglobalavgpool\n",
    "input 10\nconv2d out=3 k=1\n",
    "input 1 28 28\ndropout p=1.5\n",
    "input 1 28 28\nleaky_relu slope=2\n",
    "input 1 28 28\nflatten\nlinear out=3\nlinear out=4 from=input,input\n",
    "input 1 28 28\nconvt2d out=2 k=3 s=2 op=5\n",
    "input 1 4 4\nmaxpool2d k=2\nmaxpool2d k=2\nmaxpool2d k=2\n",
    "input 1 28 28 a b c d e f g h i j k l m n o p q r s t u v\n",
};

static void net_parser_rejects_hostile_text(void) {
    cx_step_reset();
    size_t used = cx_arena_used(cx_arena_current());
    for (size_t i = 0; i < sizeof bad_nets / sizeof *bad_nets; i++) {
        cx_module *m = (cx_module *)&m; /* must be set to NULL */
        cx_status st = cx_net_parse(bad_nets[i], "hostile.net", &m);
        CHECK_MSG(st == CX_ERR_FORMAT, "case %zu: status %d for:\n%s", i, (int)st, bad_nets[i]);
        CHECK_MSG(m == NULL, "case %zu: *out not NULL", i);
        CHECK_MSG(!strncmp(cx_last_error(), "hostile.net", 11), "case %zu: message '%s'", i, cx_last_error());
        if (st == CX_OK) cx_module_free(m);
    }
    CHECK(cx_arena_used(cx_arena_current()) == used);
    CHECK(cx_grad_enabled() && cx_is_training());
}

/* Random byte and token mutations of a valid network: every result is a
 * network or a clean error (ASan checks the rest). */
static void net_parser_mutations(void) {
    static const char *good =
        "input 1 28 28\nconv2d name=conv1 out=6 k=5 p=2\nrelu\nmaxpool2d k=2\nconv2d name=conv2 out=16 k=5\n"
        "relu\nmaxpool2d k=2 name=p2\nconv2d name=c3 out=16 k=3 p=1\nadd from=p2,c3\nflatten\n"
        "linear name=fc1 out=120\nrelu\ndropout p=0.5\nlinear name=fc3 out=10\n";
    static const char alphabet[] = "0123456789 =\n#-,abcdefgiklmnoprstuxz_.";
    cx_rng r = cx_rng_new(2024);
    char buf[1024];
    int ok = 0, bad = 0;
    size_t used = cx_arena_used(cx_arena_current());
    for (int it = 0; it < 1500; it++) {
        size_t n = strlen(good);
        memcpy(buf, good, n + 1);
        int edits = 1 + (int)cx_rng_below(&r, 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = cx_rng_below(&r, (uint32_t)n);
            uint32_t kind = cx_rng_below(&r, 3);
            if (kind == 0) buf[pos] = alphabet[cx_rng_below(&r, sizeof alphabet - 1)];
            else if (kind == 1 && n > 2) { memmove(buf + pos, buf + pos + 1, n - pos); n--; }
            else if (n + 2 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, n - pos + 1);
                buf[pos] = alphabet[cx_rng_below(&r, sizeof alphabet - 1)];
                n++;
            }
        }
        cx_module *m = NULL;
        cx_status st = cx_net_parse(buf, "mutant.net", &m);
        if (st == CX_OK) {
            ok++;
            CHECK(m != NULL);
            cx_module_free(m);
        } else {
            bad++;
            CHECK_MSG(st == CX_ERR_FORMAT && m == NULL, "mutant %d: status %d", it, (int)st);
        }
    }
    CHECK_MSG(ok > 20 && bad > 500, "%d parsed, %d rejected", ok, bad);
    CHECK(cx_arena_used(cx_arena_current()) == used);
}

/* ---- review regressions */
/* the graph built before cx_try, a backward inside it that fails: the
 * gradients the failed backward made in the released arena memory are
 * dropped, so later data is not overwritten by a second backward */
static cx_tensor *g_loss;
static cx_status failing_backward(void *u) {
    (void)u;
    cx_set_check_numerics(true);
    cx_backward(g_loss);
    return CX_OK;
}

static void try_drops_gradients_of_released_memory(void) {
    cx_step_reset();
    cx_tensor *w = cx_param_new("w", CX_SHAPE(4)); /* zeros: sqrt'(0) = inf in check mode */
    cx_tensor *sq = cx_sqrt(w), *m = cx_mul_scalar(sq, 2.0f);
    g_loss = cx_sum(m);
    CHECK(cx_try(failing_backward, NULL) == CX_ERR_INVALID);
    CHECK_MSG(m->grad == NULL && sq->grad == NULL, "gradients in released memory kept: %p %p", (void *)m->grad,
              (void *)sq->grad);
    cx_tensor *z = cx_full(CX_SHAPE(4096), 7.0f);
    cx_backward(g_loss);
    int bad = 0;
    for (int i = 0; i < 4096; i++) bad += CX_F(z)[i] != 7.0f;
    CHECK_MSG(bad == 0, "%d elements of later data overwritten", bad);
    cx_step_reset();
    cx_tensor_free(w);
}

/* constructors check before they allocate: failures caught by cx_try leak
 * nothing (LeakSanitizer in the SAN build) */
static cx_status bad_mlp(void *u) {
    (void)u;
    cx_module *m = cx_mlp_new((const int[]){4, 8, 0}, 3, CX_ACT_RELU, 0);
    cx_module_free(m);
    return CX_OK;
}

static void failed_constructors_leak_nothing(void) {
    CHECK(cx_try(bad_mlp, NULL) == CX_ERR_INVALID);
    CHECK(strstr(cx_last_error(), "mlp") != NULL);
    cx_module *m = NULL;
    CHECK(cx_net_parse("input 1048576 1 1\nconv2d out=1048576 k=1024\n", "big.net", &m) == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), "too large") != NULL, "%s", cx_last_error());
    CHECK(m == NULL);
}

/* cx_try works on each thread of an OpenMP team (its own level) */
static void try_inside_a_parallel_region(void) {
#ifdef _OPENMP
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        cx_module *m = NULL;
        cx_status st = cx_net_parse("input 1 28 28\nlinear\n", "t.net", &m);
        bad += st == CX_ERR_FORMAT && m == NULL;
    }
    CHECK_MSG(bad == 2, "%d of 2 threads got the error back", bad);
#endif
}

int main(void) {
    cx_set_threads(1);
    RUN(try_returns_status_and_releases);
    RUN(try_restores_thread_state);
    RUN(try_failure_in_backward);
    RUN(try_nests);
    RUN(raise_outside_try_is_fatal);
    RUN(net_parser_rejects_hostile_text);
    RUN(net_parser_mutations);
    RUN(try_drops_gradients_of_released_memory);
    RUN(failed_constructors_leak_nothing);
    RUN(try_inside_a_parallel_region);
    TEST_END();
}
