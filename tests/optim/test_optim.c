/* Optimisers, LR schedules and gradient clipping against PyTorch 1.13
 * fixtures (tools/gen_optim_fixtures.py), plus the API behaviour. */
#include <setjmp.h>
#include <stdlib.h>
#include <stdint.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define CXT_X86 1
#endif

#include "test.h"

#define FIX_DIR "tests/fixtures/optim/"
#define NSTEPS 5

/* ------------------------------------------------------------ fixtures
 * Lines "<name> <n> <v1> ... <vn>", read into a flat list. */
typedef struct {
    char name[64];
    int n;
    double *v;
} fx_entry;
typedef struct {
    int n, cap;
    fx_entry *e;
} fx_file;

static int fx_load(fx_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "  cannot open %s (run the tests from the repository root)\n", path);
        return 0;
    }
    char name[64];
    int n;
    while (fscanf(fp, "%63s %d", name, &n) == 2) {
        if (n < 0 || n > 100000) break;
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 64;
            f->e = realloc(f->e, (size_t)f->cap * sizeof *f->e);
        }
        fx_entry *e = &f->e[f->n++];
        snprintf(e->name, sizeof e->name, "%s", name);
        e->n = n;
        e->v = malloc((size_t)(n ? n : 1) * sizeof(double));
        for (int i = 0; i < n; i++)
            if (fscanf(fp, "%lf", &e->v[i]) != 1) { e->n = i; break; }
    }
    fclose(fp);
    return f->n > 0;
}

static void fx_free(fx_file *f) {
    for (int i = 0; i < f->n; i++) free(f->e[i].v);
    free(f->e);
    memset(f, 0, sizeof *f);
}

static const fx_entry *fx_get(const fx_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->e[i].name, name) == 0) return &f->e[i];
    return NULL;
}

/* Copy entry `name` (must have n values) into float dst; 0 if missing. */
static int fx_floats(const fx_file *f, const char *name, float *dst, int n) {
    const fx_entry *e = fx_get(f, name);
    if (!e || e->n != n) return 0;
    for (int i = 0; i < n; i++) dst[i] = (float)e->v[i];
    return 1;
}

static fx_file g_opt, g_sched;
static int g_opt_ok, g_sched_ok;

/* ------------------------------------------------------------ configs
 * Must mirror CONFIGS in tools/gen_optim_fixtures.py. */
typedef struct {
    const char *name;
    cx_optim_kind kind;
    cx_sgd_opts sgd;
    cx_adam_opts adam;
    cx_rmsprop_opts rms;
    cx_adagrad_opts ada;
} cfg_t;

static cx_optim *make_opt(const cfg_t *c, const cx_params *ps) {
    switch (c->kind) {
    case CX_OPTIM_SGD: return cx_sgd_new(ps, &c->sgd);
    case CX_OPTIM_ADAM: return cx_adam_new(ps, &c->adam);
    case CX_OPTIM_ADAMW: return cx_adamw_new(ps, &c->adam);
    case CX_OPTIM_RMSPROP: return cx_rmsprop_new(ps, &c->rms);
    case CX_OPTIM_ADAGRAD: return cx_adagrad_new(ps, &c->ada);
    }
    return NULL;
}

static cfg_t *build_configs(int *count) {
    static cfg_t c[12];
    int n = 0;
    cx_sgd_opts s0 = cx_sgd_defaults();
    cx_adam_opts a0 = cx_adam_defaults(), aw0 = cx_adamw_defaults();
    cx_rmsprop_opts r0 = cx_rmsprop_defaults();
    cx_adagrad_opts g0 = cx_adagrad_defaults();
    memset(c, 0, sizeof c);

    c[n] = (cfg_t){.name = "sgd", .kind = CX_OPTIM_SGD, .sgd = s0};
    c[n++].sgd.lr = 0.1;
    c[n] = (cfg_t){.name = "sgd_mom", .kind = CX_OPTIM_SGD, .sgd = s0};
    c[n].sgd.lr = 0.1, c[n++].sgd.momentum = 0.9;
    c[n] = (cfg_t){.name = "sgd_nest_wd", .kind = CX_OPTIM_SGD, .sgd = s0};
    c[n].sgd.lr = 0.05, c[n].sgd.momentum = 0.9, c[n].sgd.nesterov = true;
    c[n++].sgd.weight_decay = 0.01;
    c[n] = (cfg_t){.name = "sgd_damp", .kind = CX_OPTIM_SGD, .sgd = s0};
    c[n].sgd.lr = 0.1, c[n].sgd.momentum = 0.8, c[n].sgd.dampening = 0.3;
    c[n++].sgd.weight_decay = 0.05;

    c[n] = (cfg_t){.name = "adam", .kind = CX_OPTIM_ADAM, .adam = a0};
    c[n++].adam.lr = 0.01;
    c[n] = (cfg_t){.name = "adam_ams_wd", .kind = CX_OPTIM_ADAM, .adam = a0};
    c[n].adam.lr = 0.02, c[n].adam.beta1 = 0.8, c[n].adam.beta2 = 0.95, c[n].adam.eps = 1e-6;
    c[n].adam.weight_decay = 0.1, c[n++].adam.amsgrad = true;
    c[n] = (cfg_t){.name = "adamw", .kind = CX_OPTIM_ADAMW, .adam = aw0};
    c[n++].adam.lr = 0.01;
    c[n] = (cfg_t){.name = "adamw_ams", .kind = CX_OPTIM_ADAMW, .adam = aw0};
    c[n].adam.lr = 0.03, c[n].adam.weight_decay = 0.2, c[n++].adam.amsgrad = true;

    c[n] = (cfg_t){.name = "rmsprop", .kind = CX_OPTIM_RMSPROP, .rms = r0};
    c[n++].rms.lr = 0.01;
    c[n] = (cfg_t){.name = "rmsprop_cmw", .kind = CX_OPTIM_RMSPROP, .rms = r0};
    c[n].rms.lr = 0.01, c[n].rms.alpha = 0.9, c[n].rms.eps = 1e-6;
    c[n].rms.weight_decay = 0.05, c[n].rms.momentum = 0.5, c[n++].rms.centered = true;

    c[n] = (cfg_t){.name = "adagrad", .kind = CX_OPTIM_ADAGRAD, .ada = g0};
    c[n++].ada.lr = 0.1;
    c[n] = (cfg_t){.name = "adagrad_full", .kind = CX_OPTIM_ADAGRAD, .ada = g0};
    c[n].ada.lr = 0.1, c[n].ada.lr_decay = 0.05, c[n].ada.weight_decay = 0.02;
    c[n].ada.initial_accumulator_value = 0.1, c[n++].ada.eps = 1e-8;
    *count = n;
    return c;
}

/* The two fixture parameters p0 [5,3] and p1 [4]. */
typedef struct {
    cx_tensor *p[2];
    cx_params ps;
} model_t;
static const char *const PNAMES[2] = {"p0", "p1"};

static void model_init(model_t *m) {
    m->p[0] = cx_param_new("p0", CX_SHAPE(5, 3));
    m->p[1] = cx_param_new("p1", CX_SHAPE(4));
    cx_params_init(&m->ps);
    for (int j = 0; j < 2; j++) {
        char key[32];
        snprintf(key, sizeof key, "init.%s", PNAMES[j]);
        CHECK(fx_floats(&g_opt, key, CX_F(m->p[j]), (int)m->p[j]->numel));
        cx_params_add(&m->ps, m->p[j]);
    }
}

static void model_free(model_t *m) {
    cx_params_free(&m->ps);
    cx_tensor_free(m->p[0]);
    cx_tensor_free(m->p[1]);
}

/* Put the gradients of step k in place and run the step. A parameter with no
 * gradient line gets grad NULL for the step (its buffer is put back after). */
static void fixture_step(model_t *m, cx_optim *opt, int k) {
    float *saved[2] = {NULL, NULL};
    for (int j = 0; j < 2; j++) {
        char key[32];
        snprintf(key, sizeof key, "grad.%d.%s", k, PNAMES[j]);
        float *g = cx_grad_ensure(m->p[j]);
        if (!fx_floats(&g_opt, key, g, (int)m->p[j]->numel)) {
            saved[j] = m->p[j]->grad;
            m->p[j]->grad = NULL;
        }
    }
    cx_optim_step(opt);
    for (int j = 0; j < 2; j++)
        if (saved[j]) m->p[j]->grad = saved[j];
}

static void test_fixture_present(void) {
    CHECK(g_opt_ok);
    CHECK(g_sched_ok);
    /* The p1 gradient is missing at step 2 (None grad in PyTorch). */
    CHECK(fx_get(&g_opt, "grad.2.p0") != NULL);
    CHECK(fx_get(&g_opt, "grad.2.p1") == NULL);
}

static void test_optimisers_match_pytorch(void) {
    int ncfg;
    const cfg_t *cfgs = build_configs(&ncfg);
    if (!g_opt_ok) { CHECK(g_opt_ok); return; }
    for (int c = 0; c < ncfg; c++) {
        model_t m;
        model_init(&m);
        cx_optim *opt = make_opt(&cfgs[c], &m.ps);
        CHECK(opt != NULL);
        for (int k = 0; k < NSTEPS; k++) {
            fixture_step(&m, opt, k);
            for (int j = 0; j < 2; j++) {
                char key[64], what[96];
                float ref[16];
                snprintf(key, sizeof key, "%s.%d.%s", cfgs[c].name, k, PNAMES[j]);
                snprintf(what, sizeof what, "%s after step %d", key, k);
                int n = (int)m.p[j]->numel;
                CHECK_MSG(fx_floats(&g_opt, key, ref, n), "missing fixture %s", key);
                cxt_allclose(CX_F(m.p[j]), ref, n, 1e-5, 1e-6, what);
#ifdef __FMA__
                /* With FMA the kernels fuse exactly where PyTorch's do. */
                cxt_allclose(CX_F(m.p[j]), ref, n, 0, 0, what);
#endif
            }
        }
        CHECK(cx_optim_steps(opt) == NSTEPS);
        cx_optim_free(opt);
        model_free(&m);
    }
}

/* ------------------------------------------------------------ schedules */
static void check_sched(const char *name, const cx_sched *s) {
    const fx_entry *e = fx_get(&g_sched, name);
    CHECK_MSG(e != NULL && e->n == 31, "missing schedule fixture %s", name);
    if (!e) return;
    for (int ep = 0; ep < e->n; ep++) {
        double got = cx_sched_lr(s, 0.1, ep), want = e->v[ep];
        CHECK_MSG(fabs(got - want) <= 1e-6 * fabs(want) + 1e-12, "%s epoch %d: %.12g vs %.12g",
                  name, ep, got, want);
    }
}

static void test_schedules_match_pytorch(void) {
    if (!g_sched_ok) { CHECK(g_sched_ok); return; }
    cx_sched s;
    s = cx_sched_step(7, 0.5);
    check_sched("step", &s);
    s = cx_sched_exponential(0.9);
    check_sched("exp", &s);
    s = cx_sched_cosine(10, 0.001);
    check_sched("cos", &s);
    s = cx_sched_linear(0.25, 1.0, 8);
    check_sched("linear", &s);
    s = cx_sched_linear(1.0, 0.1, 12);
    check_sched("linear_decay", &s);
    s = cx_sched_with_warmup(cx_sched_cosine(20, 1e-4), 0.1, 5);
    check_sched("warm_cos", &s);
    s = cx_sched_with_warmup(cx_sched_step(4, 0.7), 0.5, 3);
    check_sched("warm_step", &s);
}

static void test_sched_apply_and_constant(void) {
    cx_tensor *w = cx_param_new("w", CX_SHAPE(2));
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, w);
    cx_optim *opt = cx_sgd_new(&ps, NULL);
    CHECK_NEAR(cx_optim_get_lr(opt), 0.01, 1e-15);
    cx_sched s = cx_sched_exponential(0.5);
    cx_sched_apply(&s, opt, 0.2, 3);
    CHECK_NEAR(cx_optim_get_lr(opt), 0.025, 1e-15);
    cx_sched c = cx_sched_constant();
    CHECK_NEAR(cx_sched_lr(&c, 0.3, 17), 0.3, 0);
    CHECK_NEAR(cx_sched_lr(&s, 0.2, -4), 0.2, 0); /* negative epochs count as 0 */
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_tensor_free(w);
}

/* ------------------------------------------------------------ clipping */
static void test_clip_grad_norm(void) {
    cx_tensor *a = cx_param_new("a", CX_SHAPE(2));
    cx_tensor *b = cx_param_new("b", CX_SHAPE(1));
    cx_tensor *c = cx_param_new("c", CX_SHAPE(3)); /* no grad: skipped */
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    cx_params_add(&ps, b);
    cx_params_add(&ps, c);
    float *ga = cx_grad_ensure(a), *gb = cx_grad_ensure(b);
    ga[0] = 3, ga[1] = -4, gb[0] = 12; /* norm sqrt(9 + 16 + 144) = 13 */

    /* Not clipped when the norm is below max_norm. */
    float n1 = cx_clip_grad_norm(&ps, 20.0f);
    CHECK_NEAR(n1, 13.0, 1e-6);
    CHECK(ga[0] == 3 && ga[1] == -4 && gb[0] == 12);

    /* Clipped: scaled by 6.5 / (13 + 1e-6). */
    float n2 = cx_clip_grad_norm(&ps, 6.5f);
    CHECK_NEAR(n2, 13.0, 1e-6);
    double coef = 6.5 / (13.0 + 1e-6);
    CHECK_NEAR(ga[0], 3 * coef, 1e-6);
    CHECK_NEAR(ga[1], -4 * coef, 1e-6);
    CHECK_NEAR(gb[0], 12 * coef, 1e-6);
    CHECK(c->grad == NULL);
    /* The new norm is just below max_norm. */
    double nn = sqrt((double)ga[0] * ga[0] + (double)ga[1] * ga[1] + (double)gb[0] * gb[0]);
    CHECK(nn < 6.5 && nn > 6.5 - 1e-5);
    CHECK_NEAR(cx_clip_grad_norm(&ps, 100.0f), nn, 1e-5);

    /* clip_grad_value clamps to [-v, v]. */
    ga[0] = 0.5f, ga[1] = -7.0f, gb[0] = 2.0f;
    cx_clip_grad_value(&ps, 1.0f);
    CHECK(ga[0] == 0.5f && ga[1] == -1.0f && gb[0] == 1.0f);

    cx_params_free(&ps);
    cx_tensor_free(a);
    cx_tensor_free(b);
    cx_tensor_free(c);
}

static void test_clip_grad_norm_large(void) {
    /* Many elements: the double accumulation matches a naive double sum. */
    cx_tensor *a = cx_param_new("a", CX_SHAPE(100003));
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    float *g = cx_grad_ensure(a);
    double ss = 0;
    for (int i = 0; i < 100003; i++) {
        g[i] = (float)((i % 17) - 8) * 0.25f;
        ss += (double)g[i] * g[i];
    }
    float n = cx_clip_grad_norm(&ps, 1.0f);
    CHECK_NEAR(n, sqrt(ss), 1e-6 * sqrt(ss));
    double after = 0;
    for (int i = 0; i < 100003; i++) after += (double)g[i] * g[i];
    CHECK_NEAR(sqrt(after), 1.0, 1e-5);
    cx_params_free(&ps);
    cx_tensor_free(a);
}

/* clip_grad_norm_ with norm_type 2 and inf against PyTorch (clip.txt):
 * must mirror CLIP_CONFIGS in tools/gen_optim_fixtures.py */
static fx_file g_clip;
static int g_clip_ok;

static void test_clip_grad_norm_p_matches_pytorch(void) {
    CHECK(g_clip_ok);
    if (!g_clip_ok) return;
    static const struct { const char *name; float norm_type, max_norm; } cfgs[] = {
        {"l2_clip", 2.0f, 1.0f}, {"l2_noclip", 2.0f, 100.0f}, {"inf_clip", INFINITY, 0.5f},
        {"inf_noclip", INFINITY, 10.0f}, {"inf_neg_clip", INFINITY, 0.25f},
    };
    const char *names[4] = {"c0", "c1", "c2", "c3"};
    cx_tensor *ps[4] = {cx_param_new("c0", CX_SHAPE(5, 3)), cx_param_new("c1", CX_SHAPE(4)),
                        cx_param_new("c2", CX_SHAPE(2, 2, 3)), cx_param_new("c3", CX_SHAPE(3))};
    cx_params pl;
    cx_params_init(&pl);
    for (int k = 0; k < 4; k++) cx_params_add(&pl, ps[k]);
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        char key[96];
        for (int k = 0; k < 3; k++) { /* c3 keeps no grad */
            snprintf(key, sizeof key, "%s.in.%s", cfgs[c].name, names[k]);
            CHECK_MSG(fx_floats(&g_clip, key, cx_grad_ensure(ps[k]), (int)ps[k]->numel), "missing %s", key);
        }
        float total = cfgs[c].norm_type == 2.0f ? cx_clip_grad_norm(&pl, cfgs[c].max_norm)
                                                : cx_clip_grad_norm_p(&pl, cfgs[c].max_norm, cfgs[c].norm_type);
        float want_total = 0;
        snprintf(key, sizeof key, "%s.total", cfgs[c].name);
        CHECK_MSG(fx_floats(&g_clip, key, &want_total, 1), "missing %s", key);
        CHECK_MSG(fabsf(total - want_total) <= 1e-6f * want_total, "%s: total %.9g, PyTorch %.9g", cfgs[c].name,
                  (double)total, (double)want_total);
        for (int k = 0; k < 3; k++) {
            float want[15];
            snprintf(key, sizeof key, "%s.out.%s", cfgs[c].name, names[k]);
            CHECK_MSG(fx_floats(&g_clip, key, want, (int)ps[k]->numel), "missing %s", key);
            cxt_allclose(ps[k]->grad, want, (long)ps[k]->numel, 1e-6, 1e-8, key);
        }
        CHECK(ps[3]->grad == NULL);
    }
    /* the inf norm: NaN anywhere makes the total and every grad NaN, as PyTorch */
    cx_grad_ensure(ps[1])[2] = NAN;
    CHECK(isnan(cx_clip_grad_norm_p(&pl, 1.0f, INFINITY)));
    CHECK(isnan(ps[0]->grad[0]) && isnan(ps[2]->grad[11]));
    /* only 2 and inf */
    EXPECT_FATAL(cx_clip_grad_norm_p(&pl, 1.0f, 1.0f), "cx_clip_grad_norm_p", "norm_type", "2 or INFINITY");
    EXPECT_FATAL(cx_clip_grad_norm_p(&pl, 1.0f, -INFINITY), "cx_clip_grad_norm_p", "norm_type");
    cx_params_free(&pl);
    for (int k = 0; k < 4; k++) cx_tensor_free(ps[k]);
}

/* ------------------------------------------------------------ API */
static void test_zero_grad_and_skip(void) {
    cx_tensor *a = cx_param_new("a", CX_SHAPE(3)), *b = cx_param_new("b", CX_SHAPE(2));
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    cx_params_add(&ps, b);
    cx_adam_opts o = cx_adam_defaults();
    cx_optim *opt = cx_adam_new(&ps, &o);
    float *g = cx_grad_ensure(a);
    g[0] = 1, g[1] = -2, g[2] = 3;
    cx_optim_step(opt); /* b has no grad: untouched */
    CHECK(b->grad == NULL);
    CHECK(CX_F(b)[0] == 0 && CX_F(b)[1] == 0);
    /* Adam's first step moves every element by ~lr against the gradient sign. */
    CHECK_NEAR(CX_F(a)[0], -1e-3, 1e-7);
    CHECK_NEAR(CX_F(a)[1], 1e-3, 1e-7);
    CHECK_NEAR(CX_F(a)[2], -1e-3, 1e-7);
    cx_optim_zero_grad(opt);
    CHECK(a->grad == g);
    CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0);
    CHECK(b->grad == NULL);
    CHECK(cx_optim_param_count(opt) == 2 && cx_optim_param(opt, 1) == b);
    CHECK(strcmp(cx_optim_name(opt), "adam") == 0 && cx_optim_get_kind(opt) == CX_OPTIM_ADAM);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_tensor_free(a);
    cx_tensor_free(b);
}

/* Zeroing a large gradient on 1, 2 and 3 threads (split over the threads
 * like the step): every element, the odd tail included, per tensor and in
 * a flat buffer. */
static void test_zero_grad_threads(void) {
    for (int flat = 0; flat < 2; flat++)
        for (int nt = 1; nt <= 3; nt++) {
            cx_set_threads(nt);
            cx_tensor *a = cx_param_new("a", CX_SHAPE(333, 301)), *b = cx_param_new("b", CX_SHAPE(7));
            cx_params ps;
            cx_params_init(&ps);
            cx_params_add(&ps, a);
            cx_params_add(&ps, b);
            cx_flat *f = flat ? cx_flat_new(&ps) : NULL;
            cx_optim *opt = cx_sgd_new(&ps, NULL);
            float *ga = cx_grad_ensure(a), *gb = cx_grad_ensure(b);
            for (int64_t i = 0; i < a->numel; i++) ga[i] = 1.0f + (float)i;
            for (int i = 0; i < 7; i++) gb[i] = -1.0f;
            cx_optim_zero_grad(opt);
            int64_t nonzero = 0;
            for (int64_t i = 0; i < a->numel; i++) nonzero += a->grad[i] != 0.0f;
            for (int i = 0; i < 7; i++) nonzero += b->grad[i] != 0.0f;
            CHECK_MSG(nonzero == 0, "flat %d, %d threads: %lld gradient values left", flat, nt, (long long)nonzero);
            cx_optim_free(opt);
            cx_flat_free(f);
            cx_params_free(&ps);
            cx_tensor_free(a);
            cx_tensor_free(b);
        }
    cx_set_threads(1);
}

static void test_set_lr(void) {
    cx_tensor *a = cx_param_new("a", CX_SHAPE(2));
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    cx_sgd_opts o = cx_sgd_defaults();
    o.lr = 0.1;
    cx_optim *opt = cx_sgd_new(&ps, &o);
    CHECK_NEAR(cx_optim_get_lr(opt), 0.1, 0);
    float *g = cx_grad_ensure(a);
    g[0] = 1, g[1] = -2;
    cx_optim_step(opt);
    CHECK_NEAR(CX_F(a)[0], -0.1, 1e-7);
    CHECK_NEAR(CX_F(a)[1], 0.2, 1e-7);
    cx_optim_set_lr(opt, 0.5);
    CHECK_NEAR(cx_optim_get_lr(opt), 0.5, 0);
    cx_optim_step(opt);
    CHECK_NEAR(CX_F(a)[0], -0.6, 1e-6);
    CHECK_NEAR(CX_F(a)[1], 1.2, 1e-6);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_tensor_free(a);
}

static jmp_buf g_jmp;
static char g_msg[256];
static void catch_fatal(const char *msg, void *user) {
    (void)user;
    snprintf(g_msg, sizeof g_msg, "%s", msg);
    longjmp(g_jmp, 1);
}

/* Returns 1 when making an SGD optimiser with `o` is a fatal error. */
static int sgd_is_fatal(const cx_params *ps, cx_sgd_opts o) {
    volatile int fatal = 0;
    g_msg[0] = 0;
    cx_set_error_handler(catch_fatal, NULL);
    if (setjmp(g_jmp) == 0) {
        cx_optim *opt = cx_sgd_new(ps, &o);
        cx_optim_free(opt);
    } else {
        fatal = 1;
    }
    cx_set_error_handler(NULL, NULL);
    return fatal;
}

static void test_invalid_options(void) {
    cx_tensor *a = cx_param_new("a", CX_SHAPE(2));
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    cx_sgd_opts o = cx_sgd_defaults();
    o.nesterov = true; /* without momentum */
    CHECK(sgd_is_fatal(&ps, o));
    CHECK(strstr(g_msg, "nesterov") != NULL);
    o.momentum = 0.9, o.dampening = 0.1; /* with dampening */
    CHECK(sgd_is_fatal(&ps, o));
    CHECK(strstr(g_msg, "nesterov") != NULL);
    o.dampening = 0.0; /* valid */
    CHECK(!sgd_is_fatal(&ps, o));
    o = cx_sgd_defaults();
    o.lr = -1;
    CHECK(sgd_is_fatal(&ps, o));
    CHECK(strstr(g_msg, "lr") != NULL);
    cx_params_free(&ps);
    cx_tensor_free(a);
}

/* ------------------------------------------------------------ state I/O */
static void set_grads(model_t *m, int k) {
    for (int j = 0; j < 2; j++) {
        float *g = cx_grad_ensure(m->p[j]);
        for (int64_t i = 0; i < m->p[j]->numel; i++)
            g[i] = sinf((float)(k * 31 + j * 7 + i) * 0.37f) * (1.0f + (float)k);
    }
}

static void test_state_round_trip(void) {
    int ncfg;
    const cfg_t *cfgs = build_configs(&ncfg);
    if (!g_opt_ok) { CHECK(g_opt_ok); return; }
    for (int c = 0; c < ncfg; c++) {
        model_t m1, m2;
        model_init(&m1);
        model_init(&m2);
        cx_optim *o1 = make_opt(&cfgs[c], &m1.ps);
        for (int k = 0; k < 3; k++) {
            set_grads(&m1, k);
            cx_optim_step(o1);
        }
        /* Checkpoint: export, deep-copy (as a safetensors save/load would). */
        cx_params st;
        cx_params_init(&st);
        CHECK(cx_optim_state_export(o1, &st) == CX_OK);
        CHECK(cx_params_find(&st, "optim.step") != NULL);
        CHECK(cx_params_find(&st, "state.p0.step") != NULL);
        CHECK(cx_params_find(&st, "state.p1.step") != NULL);
        cx_params saved;
        cx_params_init(&saved);
        for (int i = 0; i < st.n; i++) cx_params_add(&saved, cx_tensor_clone(st.t[i]));
        /* Resume: same parameter values, fresh optimiser, import. */
        for (int j = 0; j < 2; j++)
            memcpy(CX_F(m2.p[j]), CX_F(m1.p[j]), (size_t)m1.p[j]->numel * sizeof(float));
        cx_optim *o2 = make_opt(&cfgs[c], &m2.ps);
        CHECK_MSG(cx_optim_state_import(o2, &saved) == CX_OK, "%s: %s", cfgs[c].name,
                  cx_last_error());
        CHECK(cx_optim_steps(o2) == 3);
        /* Two more identical steps must give bit-identical parameters. */
        for (int k = 3; k < 5; k++) {
            set_grads(&m1, k);
            set_grads(&m2, k);
            cx_optim_step(o1);
            cx_optim_step(o2);
        }
        for (int j = 0; j < 2; j++)
            CHECK_MSG(memcmp(CX_F(m1.p[j]), CX_F(m2.p[j]),
                             (size_t)m1.p[j]->numel * sizeof(float)) == 0,
                      "%s: resumed run differs", cfgs[c].name);
        /* A fresh optimiser without the state takes a different step
         * (except plain SGD, which has no state). */
        if (!(cfgs[c].kind == CX_OPTIM_SGD && cfgs[c].sgd.momentum == 0.0)) {
            model_t m3;
            model_init(&m3);
            for (int j = 0; j < 2; j++)
                memcpy(CX_F(m3.p[j]), CX_F(m2.p[j]), (size_t)m2.p[j]->numel * sizeof(float));
            cx_optim *o3 = make_opt(&cfgs[c], &m3.ps);
            set_grads(&m2, 5);
            set_grads(&m3, 5);
            cx_optim_step(o2);
            cx_optim_step(o3);
            CHECK_MSG(memcmp(CX_F(m2.p[0]), CX_F(m3.p[0]), 15 * sizeof(float)) != 0,
                      "%s: state had no effect", cfgs[c].name);
            cx_optim_free(o3);
            model_free(&m3);
        }
        for (int i = 0; i < saved.n; i++) cx_tensor_free(saved.t[i]);
        cx_params_free(&saved);
        cx_params_free(&st);
        cx_optim_free(o1);
        cx_optim_free(o2);
        model_free(&m1);
        model_free(&m2);
    }
}

static void test_state_names_and_errors(void) {
    cx_tensor *a = cx_param_new("fc.weight", CX_SHAPE(2, 2));
    cx_tensor *b = cx_param_new(NULL, CX_SHAPE(3)); /* unnamed: keyed by index */
    cx_params ps;
    cx_params_init(&ps);
    cx_params_add(&ps, a);
    cx_params_add(&ps, b);
    cx_adam_opts o = cx_adam_defaults();
    o.amsgrad = true;
    cx_optim *opt = cx_adam_new(&ps, &o);
    cx_params st;
    cx_params_init(&st);
    CHECK(cx_optim_state_export(opt, &st) == CX_OK);
    CHECK(st.n == 1 + 2 * 4);
    const char *want[] = {"optim.step", "state.fc.weight.step", "state.fc.weight.exp_avg",
                          "state.fc.weight.exp_avg_sq", "state.fc.weight.max_exp_avg_sq",
                          "state.1.step", "state.1.exp_avg", "state.1.exp_avg_sq",
                          "state.1.max_exp_avg_sq"};
    for (int i = 0; i < 9; i++) CHECK_MSG(cx_params_find(&st, want[i]) != NULL, "%s", want[i]);
    cx_tensor *ea = cx_params_find(&st, "state.fc.weight.exp_avg");
    CHECK(ea && ea->persistent && ea->dtype == CX_F32 && cx_same_shape(ea, a));
    cx_tensor *sp = cx_params_find(&st, "state.1.step");
    CHECK(sp && sp->dtype == CX_I64 && sp->numel == 1);

    /* Missing tensor. */
    cx_params partial;
    cx_params_init(&partial);
    for (int i = 0; i < st.n - 1; i++) cx_params_add(&partial, st.t[i]);
    CHECK(cx_optim_state_import(opt, &partial) == CX_ERR_NOTFOUND);
    CHECK(strstr(cx_last_error(), "state.1.max_exp_avg_sq") != NULL);
    cx_params_free(&partial);

    /* Shape mismatch. */
    cx_tensor *bad = cx_tensor_new(CX_F32, CX_SHAPE(4));
    cx_tensor_set_name(bad, "state.fc.weight.exp_avg");
    cx_params wrong;
    cx_params_init(&wrong);
    cx_params_add(&wrong, bad);
    for (int i = 0; i < st.n; i++)
        if (st.t[i] != ea) cx_params_add(&wrong, st.t[i]);
    CHECK(cx_optim_state_import(opt, &wrong) == CX_ERR_SHAPE);
    cx_params_free(&wrong);
    cx_tensor_free(bad);

    /* F32 step counts are accepted (e.g. a checkpoint converted from PyTorch). */
    cx_tensor *fstep = cx_tensor_new(CX_F32, CX_SHAPE(1));
    cx_tensor_set_name(fstep, "state.1.step");
    CX_F(fstep)[0] = 7.0f;
    cx_params conv;
    cx_params_init(&conv);
    cx_params_add(&conv, fstep);
    for (int i = 0; i < st.n; i++)
        if (st.t[i] != sp) cx_params_add(&conv, st.t[i]);
    CHECK(cx_optim_state_import(opt, &conv) == CX_OK);
    CHECK(CX_I64P(sp)[0] == 7);
    cx_params_free(&conv);
    cx_tensor_free(fstep);

    cx_params_free(&st);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_tensor_free(a);
    cx_tensor_free(b);
}

/* A deep copy of the optimiser's exported state (the export's tensors are
 * the optimiser's own). */
static void state_snapshot(cx_optim *opt, cx_params *out) {
    cx_params st;
    cx_params_init(&st);
    cx_params_init(out);
    CHECK(cx_optim_state_export(opt, &st) == CX_OK);
    for (int i = 0; i < st.n; i++) cx_params_add(out, cx_tensor_clone(st.t[i]));
    cx_params_free(&st);
}

static void free_clones(cx_params *p) {
    for (int i = 0; i < p->n; i++) cx_tensor_free(p->t[i]);
    cx_params_free(p);
}

/* The optimiser's state is the snapshot, bit for bit (names, dtypes, shapes,
 * values). */
static int state_is(cx_optim *opt, const cx_params *snap) {
    cx_params st;
    cx_params_init(&st);
    int same = cx_optim_state_export(opt, &st) == CX_OK && st.n == snap->n;
    for (int i = 0; same && i < st.n; i++) {
        const cx_tensor *a = st.t[i], *b = snap->t[i];
        same = !strcmp(a->name, b->name) && a->dtype == b->dtype && cx_same_shape(a, b) &&
               !memcmp(a->data, b->data, (size_t)a->numel * cx_dtype_size(a->dtype));
    }
    cx_params_free(&st);
    return same;
}

/* `good` with the tensor named `name` replaced by `bad` (NULL: left out). */
static void with_one_bad(const cx_params *good, const char *name, cx_tensor *bad, cx_params *out) {
    cx_params_init(out);
    int found = 0;
    for (int i = 0; i < good->n; i++) {
        if (strcmp(good->t[i]->name, name)) {
            cx_params_add(out, good->t[i]);
        } else {
            found = 1;
            if (bad) cx_params_add(out, bad);
        }
    }
    CHECK_MSG(found, "no state tensor %s", name);
}

/* Regression: cx_optim_state_import copied tensor by tensor and returned at
 * the first bad one, leaving optim.step and the earlier parameters' state
 * overwritten. Every tensor is now checked before anything is copied: an
 * import with one bad tensor (a negative step count, a wrong shape or dtype,
 * a missing tensor), the bad one last or nearly last in the order of the
 * checks, leaves the optimiser exactly as it was. */
static void test_state_import_bad_leaves_unchanged(void) {
    if (!g_opt_ok) { CHECK(g_opt_ok); return; }
    model_t m, twin, src;
    model_init(&m);
    model_init(&twin);
    model_init(&src);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    ao.amsgrad = true; /* three buffers per parameter */
    cx_optim *opt = cx_adam_new(&m.ps, &ao), *otwin = cx_adam_new(&twin.ps, &ao);
    cx_optim *osrc = cx_adam_new(&src.ps, &ao);
    for (int k = 0; k < 2; k++) { /* opt and its twin: 2 steps */
        set_grads(&m, k);
        set_grads(&twin, k);
        cx_optim_step(opt);
        cx_optim_step(otwin);
    }
    for (int k = 0; k < 5; k++) { /* the state to import: 5 other steps */
        set_grads(&src, k + 7);
        cx_optim_step(osrc);
    }
    cx_params before, good;
    state_snapshot(opt, &before);
    state_snapshot(osrc, &good);
    CHECK(good.n == 1 + 2 * 4);
    /* the bad tensors */
    cx_tensor *neg_opt = cx_tensor_new(CX_I64, CX_SHAPE(1)), *neg_p1 = cx_tensor_new(CX_I64, CX_SHAPE(1));
    CX_I64P(neg_opt)[0] = -1;
    CX_I64P(neg_p1)[0] = -1;
    cx_tensor *shape = cx_tensor_new(CX_F32, CX_SHAPE(5)); /* p1 is [4] */
    cx_tensor *dtype = cx_tensor_new(CX_I64, CX_SHAPE(4));
    cx_tensor_set_name(neg_opt, "optim.step");
    cx_tensor_set_name(neg_p1, "state.p1.step");
    cx_tensor_set_name(shape, "state.p1.max_exp_avg_sq");
    cx_tensor_set_name(dtype, "state.p1.exp_avg_sq");
    const struct {
        const char *name;
        cx_tensor *bad;
        cx_status want;
        const char *needle;
    } cases[] = {
        {"state.p1.step", neg_p1, CX_ERR_FORMAT, "negative"},
        {"optim.step", neg_opt, CX_ERR_FORMAT, "negative"},
        {"state.p1.max_exp_avg_sq", shape, CX_ERR_SHAPE, "[5]"},
        {"state.p1.exp_avg_sq", dtype, CX_ERR_FORMAT, "expected f32"},
        {"state.p1.max_exp_avg_sq", NULL, CX_ERR_NOTFOUND, "missing"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cx_params in;
        with_one_bad(&good, cases[c].name, cases[c].bad, &in);
        cx_status st = cx_optim_state_import(opt, &in);
        CHECK_MSG(st == cases[c].want, "%s (%s): status %d, want %d (%s)", cases[c].name,
                  cases[c].bad ? "bad" : "missing", (int)st, (int)cases[c].want, cx_last_error());
        CHECK_MSG(strstr(cx_last_error(), cases[c].name) && strstr(cx_last_error(), cases[c].needle),
                  "message: %s", cx_last_error());
        if (!state_is(opt, &before)) {
            CHECK_MSG(0, "a failed import (%s %s) changed the optimiser: %lld steps, was 2", cases[c].name,
                      cases[c].bad ? "bad" : "missing", (long long)cx_optim_steps(opt));
            CHECK(cx_optim_state_import(opt, &before) == CX_OK); /* the next case starts clean */
        }
        cx_params_free(&in);
    }
    /* ... and it steps on as its twin, which never saw them */
    set_grads(&m, 2);
    set_grads(&twin, 2);
    cx_optim_step(opt);
    cx_optim_step(otwin);
    for (int j = 0; j < 2; j++)
        CHECK(!memcmp(CX_F(m.p[j]), CX_F(twin.p[j]), (size_t)m.p[j]->numel * sizeof(float)));
    /* the good list itself imports */
    CHECK_MSG(cx_optim_state_import(opt, &good) == CX_OK, "%s", cx_last_error());
    CHECK(cx_optim_steps(opt) == 5 && state_is(opt, &good));
    cx_tensor_free(neg_opt), cx_tensor_free(neg_p1), cx_tensor_free(shape), cx_tensor_free(dtype);
    free_clones(&before);
    free_clones(&good);
    cx_optim_free(opt), cx_optim_free(otwin), cx_optim_free(osrc);
    model_free(&m), model_free(&twin), model_free(&src);
}

/* A large parameter goes through the OpenMP split; it must equal the same
 * update done in small pieces (thread-count independent results). */
static void test_large_param_matches_small(void) {
    const int n = 100000;
    cx_tensor *big = cx_param_new("big", CX_SHAPE(n));
    cx_params pb;
    cx_params_init(&pb);
    cx_params_add(&pb, big);
    enum { NS = 10 };
    cx_tensor *small[NS];
    cx_params psm;
    cx_params_init(&psm);
    for (int s = 0; s < NS; s++) {
        small[s] = cx_param_new(NULL, CX_SHAPE(n / NS));
        cx_params_add(&psm, small[s]);
    }
    cx_fill_uniform(big, -1, 1);
    for (int s = 0; s < NS; s++)
        memcpy(CX_F(small[s]), CX_F(big) + s * (n / NS), (size_t)(n / NS) * sizeof(float));
    cx_adam_opts o = cx_adam_defaults();
    o.weight_decay = 0.01;
    cx_optim *ob = cx_adam_new(&pb, &o), *os = cx_adam_new(&psm, &o);
    float *gb = cx_grad_ensure(big);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++) gb[i] = cosf((float)(i + 13 * k) * 0.01f);
        for (int s = 0; s < NS; s++)
            memcpy(cx_grad_ensure(small[s]), gb + s * (n / NS), (size_t)(n / NS) * sizeof(float));
        cx_optim_step(ob);
        cx_optim_step(os);
    }
    int same = 1;
    for (int s = 0; s < NS; s++)
        if (memcmp(CX_F(small[s]), CX_F(big) + s * (n / NS), (size_t)(n / NS) * sizeof(float)))
            same = 0;
    CHECK(same);
    cx_optim_free(ob);
    cx_optim_free(os);
    cx_params_free(&pb);
    cx_params_free(&psm);
    cx_tensor_free(big);
    for (int s = 0; s < NS; s++) cx_tensor_free(small[s]);
}

/* Adam divides by the per-step sqrt(bias correction 2) without a division
 * instruction (optim.c, div_const) and, on AVX-512, takes square roots
 * without the square-root instruction (sqrt16_exact); the step must equal
 * the one written with sqrtf and the division, bit for bit with FMA (as
 * PyTorch computes it), on gradients spanning 21 decades and two beta2. */
static void test_adam_division_exact(void) {
    enum { N = 1 << 16, STEPS = 40 };
    /* eps 1e-30 too: with 1e-8 the square root of a tiny v disappears in
     * sqrt(v) + eps */
    const double betas2[3] = {0.999, 0.95, 0.999}, epss[3] = {1e-8, 1e-8, 1e-30};
    for (int bi = 0; bi < 3; bi++) {
        cx_tensor *w = cx_param_new("w", CX_SHAPE(N));
        cx_params ps;
        cx_params_init(&ps);
        cx_params_add(&ps, w);
        cx_adam_opts o = cx_adam_defaults();
        o.lr = 1e-3;
        o.beta2 = betas2[bi];
        o.eps = epss[bi];
        cx_optim *opt = cx_adam_new(&ps, &o);
        float *p = CX_F(w), *g = cx_grad_ensure(w);
        float *rp = malloc(sizeof(float) * N), *rm = calloc(N, sizeof(float)), *rv = calloc(N, sizeof(float));
        CHECK(rp && rm && rv);
        if (!rp || !rm || !rv) return;
        uint32_t h = 12345u;
        for (int i = 0; i < N; i++) {
            h = h * 1664525u + 1013904223u;
            p[i] = rp[i] = (float)(h >> 8) / 16777216.0f - 0.5f;
        }
        const float b1 = (float)o.beta1, omb1 = (float)(1.0 - o.beta1), b2 = (float)o.beta2;
        const float omb2 = (float)(1.0 - o.beta2), eps = (float)o.eps;
        long mismatched = 0;
        double worst = 0;
        for (int t = 1; t <= STEPS; t++) {
            for (int i = 0; i < N; i++) {
                h = h * 1664525u + 1013904223u;
                /* mantissa from the hash, each element's own exponent 2^-62 ..
                 * 2^9: v from below 2^-100 (the scaled square root) into the
                 * flushed range */
                float mag = ldexpf(1.0f + (float)(h >> 9) / 8388608.0f, i % 72 - 62);
                g[i] = (h & 256u) ? mag : -mag;
            }
            const float bc2s = (float)sqrt(1.0 - pow(o.beta2, (double)t));
            const float nss = (float)-(o.lr / (1.0 - pow(o.beta1, (double)t)));
#ifdef CXT_X86
            const unsigned csr = _mm_getcsr();
            _mm_setcsr(csr | 0x8040); /* flush to zero, denormals are zero: as the optimiser runs */
#endif
            for (int i = 0; i < N; i++) {
#ifdef __FMA__
                float mi = fmaf(omb1, g[i], rm[i] * b1), vi = fmaf(omb2 * g[i], g[i], rv[i] * b2);
#else
                float mi = omb1 * g[i] + rm[i] * b1, vi = omb2 * g[i] * g[i] + rv[i] * b2;
#endif
                float den = sqrtf(vi) / bc2s + eps;
                rm[i] = mi;
                rv[i] = vi;
                rp[i] = rp[i] + nss * mi / den;
            }
#ifdef CXT_X86
            _mm_setcsr(csr);
#endif
            cx_optim_step(opt);
            for (int i = 0; i < N; i++) {
                if (p[i] != rp[i]) mismatched++;
                double d = fabs((double)p[i] - rp[i]);
                if (d > worst) worst = d;
            }
        }
#ifdef __FMA__
        CHECK_MSG(mismatched == 0, "beta2 %g, eps %g: %ld of %d values differ from the reference (worst %g)",
                  betas2[bi], epss[bi], mismatched, N * STEPS, worst);
#else
        CHECK_MSG(worst < 1e-6, "beta2 %g, eps %g: worst difference %g", betas2[bi], epss[bi], worst);
#endif
        free(rp), free(rm), free(rv);
        cx_optim_free(opt);
        cx_params_free(&ps);
        cx_tensor_free(w);
    }
}

int main(void) {
    g_opt_ok = fx_load(&g_opt, FIX_DIR "optim.txt");
    g_sched_ok = fx_load(&g_sched, FIX_DIR "sched.txt");
    g_clip_ok = fx_load(&g_clip, FIX_DIR "clip.txt");
    RUN(test_fixture_present);
    RUN(test_optimisers_match_pytorch);
    RUN(test_schedules_match_pytorch);
    RUN(test_sched_apply_and_constant);
    RUN(test_clip_grad_norm);
    RUN(test_clip_grad_norm_large);
    RUN(test_clip_grad_norm_p_matches_pytorch);
    RUN(test_zero_grad_and_skip);
    RUN(test_zero_grad_threads);
    RUN(test_set_lr);
    RUN(test_invalid_options);
    RUN(test_state_round_trip);
    RUN(test_state_names_and_errors);
    RUN(test_state_import_bad_leaves_unchanged);
    RUN(test_large_param_matches_small);
    RUN(test_adam_division_exact);
    fx_free(&g_opt);
    fx_free(&g_sched);
    fx_free(&g_clip);
    TEST_END();
}
