/* Flat parameter / gradient buffers (cx_flat): layout and ownership, the
 * one-pass optimiser step and clipping bit-identical to the per-tensor path,
 * cx_flat_copy, freeing in either order, state export/import, errors. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* ------------------------------------------------------------ a model
 * Hand-made parameters (no module internals): sizes that are not multiples
 * of 16 (padding between tensors), an empty one (never steps on either
 * path) and one above CX_OPTIM_PAR_THRESHOLD (the OpenMP split). */
#define NP 6
typedef struct {
    cx_tensor *p[NP];
    cx_params ps;
} model_t;

static void model_init(model_t *m) {
    static const char *const names[NP] = {"fc1.weight", "fc1.bias", "empty", "fc2.weight",
                                          "fc2.bias", "big"};
    m->p[0] = cx_param_new(names[0], CX_SHAPE(7, 5));
    m->p[1] = cx_param_new(names[1], CX_SHAPE(7));
    m->p[2] = cx_param_new(names[2], CX_SHAPE(0));
    m->p[3] = cx_param_new(names[3], CX_SHAPE(3, 7));
    m->p[4] = cx_param_new(names[4], CX_SHAPE(3));
    m->p[5] = cx_param_new(names[5], CX_SHAPE(40001));
    cx_params_init(&m->ps);
    for (int j = 0; j < NP; j++) {
        float *d = CX_F(m->p[j]);
        for (int64_t i = 0; i < m->p[j]->numel; i++)
            d[i] = sinf((float)(i * 7 + j * 13) * 0.11f) * 0.5f;
        cx_params_add(&m->ps, m->p[j]);
    }
}

static void model_free(model_t *m) {
    cx_params_free(&m->ps);
    for (int j = 0; j < NP; j++) cx_tensor_free(m->p[j]);
}

/* The gradients of step k, written into every tensor's grad (which exists:
 * created here for the per-tensor model, in the block for the flat one).
 * Some are exactly zero, some large, some tiny. */
static void set_grads(model_t *m, int k) {
    for (int j = 0; j < NP; j++) {
        float *g = cx_grad_ensure(m->p[j]);
        for (int64_t i = 0; i < m->p[j]->numel; i++) {
            float v = cosf((float)(i * 3 + j * 17 + k * 29) * 0.37f) * (1.0f + (float)k);
            if ((i + k) % 11 == 0) v = 0.0f;
            if ((i + j) % 23 == 0) v *= 1e-20f;
            g[i] = v;
        }
    }
}

static int same_floats(const float *a, const float *b, int64_t n) {
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

static int same_params(const model_t *a, const model_t *b) {
    for (int j = 0; j < NP; j++)
        if (!same_floats(CX_F(a->p[j]), CX_F(b->p[j]), a->p[j]->numel)) return 0;
    return 1;
}

/* Every state tensor of `a` has a bit-identical namesake in `b` (and the
 * counts match). */
static void check_same_state(cx_optim *oa, cx_optim *ob, const char *what) {
    cx_params sa, sb;
    cx_params_init(&sa);
    cx_params_init(&sb);
    CHECK(cx_optim_state_export(oa, &sa) == CX_OK);
    CHECK(cx_optim_state_export(ob, &sb) == CX_OK);
    CHECK_MSG(sa.n == sb.n, "%s: %d vs %d state tensors", what, sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        const cx_tensor *x = sa.t[i], *y = cx_params_find(&sb, x->name);
        CHECK_MSG(y != NULL, "%s: %s missing", what, x->name);
        if (!y) continue;
        CHECK(x->dtype == y->dtype && cx_same_shape(x, y));
        CHECK_MSG(memcmp(x->data, y->data, (size_t)x->numel * cx_dtype_size(x->dtype)) == 0,
                  "%s: state %s differs", what, x->name);
    }
    cx_params_free(&sa);
    cx_params_free(&sb);
}

/* ------------------------------------------------------------ configs */
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

static const cfg_t *configs(int *count) {
    static cfg_t c[16];
    int n = 0;
    const cx_sgd_opts s0 = cx_sgd_defaults();
    const cx_adam_opts a0 = cx_adam_defaults(), aw0 = cx_adamw_defaults();
    const cx_rmsprop_opts r0 = cx_rmsprop_defaults();
    const cx_adagrad_opts g0 = cx_adagrad_defaults();
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
    c[n] = (cfg_t){.name = "rmsprop_mom", .kind = CX_OPTIM_RMSPROP, .rms = r0};
    c[n].rms.lr = 0.01, c[n++].rms.momentum = 0.9;
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

/* ------------------------------------------------------------ layout */
static void test_layout_and_ownership(void) {
    model_t m;
    model_init(&m);
    /* Two tensors have gradients before flattening: they are kept. */
    float *g0 = cx_grad_ensure(m.p[0]);
    for (int i = 0; i < 35; i++) g0[i] = (float)i;
    cx_grad_ensure(m.p[4])[2] = -3.0f;
    float *copy[NP];
    for (int j = 0; j < NP; j++) {
        copy[j] = malloc((size_t)(m.p[j]->numel + 1) * sizeof(float));
        memcpy(copy[j], CX_F(m.p[j]), (size_t)m.p[j]->numel * sizeof(float));
    }
    cx_flat *f = cx_flat_new(&m.ps);
    CHECK(cx_flat_numel(f) % CX_FLAT_ALIGN == 0);
    CHECK(cx_flat_numel(f) >= cx_params_count(&m.ps));
    CHECK(((uintptr_t)cx_flat_data(f) & 63) == 0 && ((uintptr_t)cx_flat_grad(f) & 63) == 0);
    const cx_params *fl = cx_flat_params(f);
    CHECK(fl->n == NP);
    int64_t end = 0;
    for (int j = 0; j < NP; j++) {
        cx_tensor *t = m.p[j];
        int64_t off = cx_flat_offset(f, j);
        CHECK(fl->t[j] == t);
        CHECK(cx_flat_of(t) == f && t->flat == f && !t->owns_data);
        CHECK(off % CX_FLAT_ALIGN == 0 && off >= end);
        CHECK(cx_flat_size(f, j) == t->numel);
        CHECK(CX_F(t) == cx_flat_data(f) + off && t->grad == cx_flat_grad(f) + off);
        CHECK(same_floats(CX_F(t), copy[j], t->numel));
        end = off + t->numel;
        free(copy[j]);
    }
    CHECK(end <= cx_flat_numel(f));
    /* Gradients: the old ones kept, the rest zero; padding zero. */
    CHECK(m.p[0]->grad[34] == 34.0f && m.p[4]->grad[2] == -3.0f && m.p[4]->grad[0] == 0.0f);
    CHECK(m.p[5]->grad != NULL && m.p[5]->grad[40000] == 0.0f);
    const float *d = cx_flat_data(f);
    int pad_zero = 1;
    for (int j = 0; j < NP; j++) {
        int64_t lo = cx_flat_offset(f, j) + cx_flat_size(f, j);
        int64_t hi = j + 1 < NP ? cx_flat_offset(f, j + 1) : cx_flat_numel(f);
        for (int64_t i = lo; i < hi; i++) pad_zero &= d[i] == 0.0f && cx_flat_grad(f)[i] == 0.0f;
    }
    CHECK(pad_zero);
    cx_flat_zero_grad(f);
    CHECK(m.p[0]->grad[34] == 0.0f && m.p[4]->grad[2] == 0.0f);
    /* Tensors not in a flat buffer. */
    cx_tensor *lone = cx_param_new("lone", CX_SHAPE(2));
    CHECK(cx_flat_of(lone) == NULL);
    cx_tensor_free(lone);
    cx_flat_free(f);
    model_free(&m);
}

/* Autograd on flattened parameters: gradients accumulate into the block and
 * equal those of the same computation on ordinary parameters. */
static cx_tensor *small_loss(cx_tensor *w, cx_tensor *b) {
    float xs[4 * 5];
    for (int i = 0; i < 20; i++) xs[i] = cosf((float)i);
    cx_tensor *x = cx_from_data(xs, CX_SHAPE(4, 5));
    cx_tensor *y = cx_tanh(cx_linear(x, w, b));
    return cx_mean(cx_mul(y, y));
}

static cx_tensor *gc_loss(cx_tensor **in, int n, void *user) {
    (void)n, (void)user;
    return small_loss(in[0], in[1]);
}

static void test_backward_into_block(void) {
    model_t a, b;
    model_init(&a);
    model_init(&b);
    cx_flat *f = cx_flat_new(&b.ps);
    for (int rep = 0; rep < 2; rep++) { /* twice: gradients accumulate */
        cx_backward(small_loss(a.p[0], a.p[1]));
        cx_backward(small_loss(b.p[0], b.p[1]));
        cx_step_reset();
    }
    CHECK(b.p[0]->grad == cx_flat_grad(f) + cx_flat_offset(f, 0));
    CHECK(same_floats(a.p[0]->grad, b.p[0]->grad, 35));
    CHECK(same_floats(a.p[1]->grad, b.p[1]->grad, 7));
    CHECK(a.p[3]->grad == NULL && b.p[3]->grad != NULL && b.p[3]->grad[0] == 0.0f);
    /* cx_gradcheck swaps grad pointers and restores them. */
    cx_tensor *in[2] = {b.p[0], b.p[1]};
    double worst = cx_gradcheck(gc_loss, in, 2, NULL, 1e-3f, 1e-3f, 1e-2f, true);
    CHECK(worst <= 1.0);
    CHECK(b.p[0]->grad == cx_flat_grad(f) + cx_flat_offset(f, 0));
    cx_flat_free(f);
    model_free(&a);
    model_free(&b);
}

/* ------------------------------------------------------------ optimisers */
static void test_optimisers_flat_equal_per_tensor(void) {
    int ncfg;
    const cfg_t *cfgs = configs(&ncfg);
    for (int c = 0; c < ncfg; c++) {
        for (int threads = 1; threads <= 2; threads++) {
            cx_set_threads(threads);
            model_t a, b;
            model_init(&a);
            model_init(&b);
            cx_flat *f = cx_flat_new(&b.ps);
            cx_optim *oa = make_opt(&cfgs[c], &a.ps);
            /* Half the configurations use the flat buffer's own list, half
             * an equal list of the caller's. */
            cx_optim *ob = make_opt(&cfgs[c], c % 2 ? cx_flat_params(f) : &b.ps);
            for (int k = 0; k < 6; k++) {
                set_grads(&a, k);
                set_grads(&b, k);
                if (k == 3) { /* a learning-rate change mid-run */
                    cx_optim_set_lr(oa, cx_optim_get_lr(oa) * 0.5);
                    cx_optim_set_lr(ob, cx_optim_get_lr(ob) * 0.5);
                }
                cx_optim_step(oa);
                cx_optim_step(ob);
                CHECK_MSG(same_params(&a, &b), "%s (%d threads): parameters differ after step %d",
                          cfgs[c].name, threads, k);
            }
            check_same_state(oa, ob, cfgs[c].name);
            CHECK(cx_optim_steps(ob) == 6);
            /* The state of the flat optimiser is one block per buffer, laid
             * out like the parameters. */
            cx_params sb;
            cx_params_init(&sb);
            cx_optim_state_export(ob, &sb);
            for (int i = 0; i < sb.n; i++) {
                const cx_tensor *s = sb.t[i];
                if (s->dtype != CX_F32 || strncmp(s->name, "state.fc1.weight.", 17)) continue;
                char other[96];
                snprintf(other, sizeof other, "state.big.%s", s->name + 17);
                const cx_tensor *s5 = cx_params_find(&sb, other);
                CHECK_MSG(s5 && CX_F(s5) == CX_F(s) + cx_flat_offset(f, 5), "%s: %s not in a block",
                          cfgs[c].name, other);
                CHECK(!s->owns_data);
            }
            /* The empty tensor never steps, on either path. */
            const cx_tensor *es = cx_params_find(&sb, "state.empty.step");
            CHECK(es && CX_I64P(es)[0] == 0);
            cx_params_free(&sb);
            cx_optim_zero_grad(ob);
            CHECK(b.p[5]->grad[7] == 0.0f && b.p[0]->grad[1] == 0.0f);
            cx_optim_free(oa);
            cx_optim_free(ob);
            cx_flat_free(f);
            model_free(&a);
            model_free(&b);
        }
    }
    cx_set_threads(0);
}

/* An optimiser made before flattening moves its state into blocks at its
 * first step after cx_flat_new; results stay those of the per-tensor path. */
static void test_flatten_after_optimiser(void) {
    int ncfg;
    const cfg_t *cfgs = configs(&ncfg);
    for (int c = 0; c < ncfg; c++) {
        model_t a, b;
        model_init(&a);
        model_init(&b);
        cx_optim *oa = make_opt(&cfgs[c], &a.ps), *ob = make_opt(&cfgs[c], &b.ps);
        cx_flat *f = NULL;
        for (int k = 0; k < 5; k++) {
            if (k == 2) f = cx_flat_new(&b.ps);
            set_grads(&a, k);
            set_grads(&b, k);
            cx_optim_step(oa);
            cx_optim_step(ob);
        }
        CHECK_MSG(same_params(&a, &b), "%s: late flattening changed the result", cfgs[c].name);
        check_same_state(oa, ob, cfgs[c].name);
        /* Freed flat buffer: the optimiser goes on (per-tensor path). */
        cx_flat_free(f);
        set_grads(&a, 5);
        set_grads(&b, 5);
        cx_optim_step(oa);
        cx_optim_step(ob);
        CHECK_MSG(same_params(&a, &b), "%s: step after cx_flat_free differs", cfgs[c].name);
        /* ... and flattening again returns to one pass over the same state. */
        f = cx_flat_new(&b.ps);
        set_grads(&a, 6);
        set_grads(&b, 6);
        cx_optim_step(oa);
        cx_optim_step(ob);
        CHECK_MSG(same_params(&a, &b), "%s: step after re-flattening differs", cfgs[c].name);
        check_same_state(oa, ob, cfgs[c].name);
        cx_optim_free(oa);
        cx_optim_free(ob);
        model_free(&b); /* tensors first, flat buffer after */
        cx_flat_free(f);
        model_free(&a);
    }
}

/* The documented difference: a parameter with no gradient is skipped by the
 * per-tensor path, while in a flat buffer it has a zero gradient and steps. */
static void test_zero_grad_parameter_steps(void) {
    cx_tensor *w1 = cx_param_new("w", CX_SHAPE(3)), *w2 = cx_param_new("w", CX_SHAPE(3));
    cx_tensor *u1 = cx_param_new("u", CX_SHAPE(2)), *u2 = cx_param_new("u", CX_SHAPE(2));
    cx_fill(u1, 1.0f);
    cx_fill(u2, 1.0f);
    cx_params p1, p2;
    cx_params_init(&p1);
    cx_params_init(&p2);
    cx_params_add(&p1, w1), cx_params_add(&p1, u1);
    cx_params_add(&p2, w2), cx_params_add(&p2, u2);
    cx_flat *f = cx_flat_new(&p2);
    cx_adam_opts o = cx_adamw_defaults();
    cx_optim *o1 = cx_adamw_new(&p1, &o), *o2 = cx_adamw_new(&p2, &o);
    cx_grad_ensure(w1)[0] = 1.0f;
    w2->grad[0] = 1.0f;
    cx_optim_step(o1);
    cx_optim_step(o2);
    CHECK(same_floats(CX_F(w1), CX_F(w2), 3));
    CHECK(u1->grad == NULL && CX_F(u1)[0] == 1.0f); /* skipped */
    CHECK(CX_F(u2)[0] < 1.0f);                       /* decoupled weight decay applied */
    cx_params s1, s2;
    cx_params_init(&s1);
    cx_params_init(&s2);
    cx_optim_state_export(o1, &s1);
    cx_optim_state_export(o2, &s2);
    CHECK(CX_I64P(cx_params_find(&s1, "state.u.step"))[0] == 0);
    CHECK(CX_I64P(cx_params_find(&s2, "state.u.step"))[0] == 1);
    cx_params_free(&s1);
    cx_params_free(&s2);
    cx_optim_free(o1);
    cx_optim_free(o2);
    cx_flat_free(f);
    cx_params_free(&p1);
    cx_params_free(&p2);
    cx_tensor_free(w1), cx_tensor_free(w2), cx_tensor_free(u1), cx_tensor_free(u2);
}

/* ------------------------------------------------------------ state I/O */
static void test_state_round_trip_flat(void) {
    int ncfg;
    const cfg_t *cfgs = configs(&ncfg);
    for (int c = 0; c < ncfg; c++) {
        model_t m1, m2, m3;
        model_init(&m1);
        model_init(&m2);
        model_init(&m3);
        cx_flat *f1 = cx_flat_new(&m1.ps), *f2 = cx_flat_new(&m2.ps);
        cx_optim *o1 = make_opt(&cfgs[c], &m1.ps);
        for (int k = 0; k < 3; k++) {
            set_grads(&m1, k);
            cx_optim_step(o1);
        }
        /* Checkpoint (deep copies, as a safetensors save / load makes). */
        cx_params st, saved;
        cx_params_init(&st);
        cx_params_init(&saved);
        CHECK(cx_optim_state_export(o1, &st) == CX_OK);
        CHECK(cx_params_find(&st, "state.fc1.weight.step") != NULL);
        for (int i = 0; i < st.n; i++) cx_params_add(&saved, cx_tensor_clone(st.t[i]));
        /* Resume into a flat model (m2) and into an ordinary one (m3). */
        CHECK(cx_flat_copy(f2, f1) == CX_OK);
        for (int j = 0; j < NP; j++)
            memcpy(CX_F(m3.p[j]), CX_F(m1.p[j]), (size_t)m1.p[j]->numel * sizeof(float));
        cx_optim *o2 = make_opt(&cfgs[c], &m2.ps), *o3 = make_opt(&cfgs[c], &m3.ps);
        CHECK_MSG(cx_optim_state_import(o2, &saved) == CX_OK, "%s", cx_last_error());
        CHECK_MSG(cx_optim_state_import(o3, &saved) == CX_OK, "%s", cx_last_error());
        for (int k = 3; k < 5; k++) {
            set_grads(&m1, k);
            set_grads(&m2, k);
            set_grads(&m3, k);
            cx_optim_step(o1);
            cx_optim_step(o2);
            cx_optim_step(o3);
        }
        CHECK_MSG(same_params(&m1, &m2) && same_params(&m1, &m3), "%s: resumed runs differ",
                  cfgs[c].name);
        check_same_state(o1, o2, cfgs[c].name);
        check_same_state(o1, o3, cfgs[c].name);
        for (int i = 0; i < saved.n; i++) cx_tensor_free(saved.t[i]);
        cx_params_free(&saved);
        cx_params_free(&st);
        cx_optim_free(o1), cx_optim_free(o2), cx_optim_free(o3);
        cx_flat_free(f1), cx_flat_free(f2);
        model_free(&m1), model_free(&m2), model_free(&m3);
    }
}

/* Different step counts per parameter (a checkpoint in which a parameter was
 * skipped): the flat optimiser takes the per-tensor path, same results. */
static void test_unequal_step_counts(void) {
    model_t a, b;
    model_init(&a);
    model_init(&b);
    cx_flat *f = cx_flat_new(&b.ps);
    cx_adam_opts o = cx_adam_defaults();
    o.lr = 0.01;
    cx_optim *oa = cx_adam_new(&a.ps, &o), *ob = cx_adam_new(&b.ps, &o);
    cx_params sa, sb;
    cx_params_init(&sa);
    cx_params_init(&sb);
    cx_optim_state_export(oa, &sa);
    cx_optim_state_export(ob, &sb);
    CX_I64P(cx_params_find(&sa, "state.fc1.bias.step"))[0] = 4;
    CX_I64P(cx_params_find(&sb, "state.fc1.bias.step"))[0] = 4;
    for (int k = 0; k < 3; k++) {
        set_grads(&a, k);
        set_grads(&b, k);
        cx_optim_step(oa);
        cx_optim_step(ob);
    }
    CHECK(same_params(&a, &b));
    check_same_state(oa, ob, "unequal steps");
    CHECK(CX_I64P(cx_params_find(&sb, "state.fc1.bias.step"))[0] == 7);
    CHECK(CX_I64P(cx_params_find(&sb, "state.fc2.bias.step"))[0] == 3);
    cx_params_free(&sa);
    cx_params_free(&sb);
    cx_optim_free(oa);
    cx_optim_free(ob);
    cx_flat_free(f);
    model_free(&a);
    model_free(&b);
}

/* ------------------------------------------------------------ clipping */
static void test_clip_flat_equal_per_tensor(void) {
    const float limits[] = {1e9f, 50.0f, 0.5f};
    for (int L = 0; L < 3; L++) {
        model_t a, b;
        model_init(&a);
        model_init(&b);
        cx_flat *f = cx_flat_new(&b.ps);
        set_grads(&a, 2);
        set_grads(&b, 2);
        float na = cx_clip_grad_norm(&a.ps, limits[L]);
        float nb = cx_clip_grad_norm(L % 2 ? cx_flat_params(f) : &b.ps, limits[L]);
        CHECK_MSG(memcmp(&na, &nb, sizeof na) == 0, "norm %.9g vs %.9g", (double)na, (double)nb);
        for (int j = 0; j < NP; j++)
            CHECK_MSG(same_floats(a.p[j]->grad, b.p[j]->grad, a.p[j]->numel),
                      "clip %g: grads of tensor %d differ", (double)limits[L], j);
        cx_clip_grad_value(&a.ps, 0.75f);
        cx_clip_grad_value(cx_flat_params(f), 0.75f);
        for (int j = 0; j < NP; j++)
            CHECK(same_floats(a.p[j]->grad, b.p[j]->grad, a.p[j]->numel));
        cx_flat_free(f);
        model_free(&a);
        model_free(&b);
    }
    /* A sub-list of a flat buffer's tensors is not its list: per-tensor path. */
    model_t m;
    model_init(&m);
    cx_flat *f = cx_flat_new(&m.ps);
    set_grads(&m, 0);
    cx_params sub;
    cx_params_init(&sub);
    cx_params_add(&sub, m.p[1]);
    double ss = 0;
    for (int i = 0; i < 7; i++) ss += (double)m.p[1]->grad[i] * m.p[1]->grad[i];
    CHECK_NEAR(cx_clip_grad_norm(&sub, 1e9f), sqrt(ss), 1e-6 * sqrt(ss));
    cx_params_free(&sub);
    cx_flat_free(f);
    model_free(&m);
}

/* Clipping `ps` in a child process (both kinds) exits normally: the parent
 * is not taken down by a crash, and its gradients are not touched. */
static int clip_survives(const cx_params *ps) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        cx_clip_grad_value(ps, 0.75f);
        (void)cx_clip_grad_norm(ps, 0.5f);
        _exit(0);
    }
    CHECK(pid > 0);
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "  (the child clipping the list died of signal %d)\n", WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Regression: a flat buffer's own list after one of its tensors was freed has
 * a NULL entry (documented); cx_flat_match dereferenced it, so clipping
 * cx_flat_params(f) crashed. It now takes the per-tensor path, which skips the
 * NULL entry: the remaining gradients are clipped bit-identically to the same
 * list of ordinary tensors with the same NULL entry. Tensor 0 freed is the
 * easy case (the match gives up on the first entry); a middle and the last
 * one are what crashed. */
static void test_clip_flat_list_with_freed_tensor(void) {
    const int gone[] = {3, NP - 1, 0};
    for (int c = 0; c < 3; c++) {
        const int k = gone[c];
        model_t a, b;
        model_init(&a);
        model_init(&b);
        cx_flat *f = cx_flat_new(&b.ps);
        set_grads(&a, 4);
        set_grads(&b, 4);
        cx_tensor_free(a.p[k]);
        cx_tensor_free(b.p[k]);
        a.p[k] = b.p[k] = NULL;
        a.ps.t[k] = NULL; /* the per-tensor reference: the same list, the same hole */
        const cx_params *fl = cx_flat_params(f);
        CHECK(fl->n == NP && fl->t[k] == NULL);
        const int survived = clip_survives(fl);
        CHECK_MSG(survived, "clipping cx_flat_params(f) with tensor %d freed crashed", k);
        if (survived) {
            cx_clip_grad_value(&a.ps, 0.75f);
            cx_clip_grad_value(fl, 0.75f);
            for (int j = 0; j < NP; j++)
                if (j != k)
                    CHECK_MSG(same_floats(a.p[j]->grad, b.p[j]->grad, a.p[j]->numel),
                              "tensor %d freed: clip_grad_value: grads of tensor %d differ", k, j);
            const float na = cx_clip_grad_norm(&a.ps, 0.5f), nb = cx_clip_grad_norm(fl, 0.5f);
            CHECK_MSG(memcmp(&na, &nb, sizeof na) == 0, "tensor %d freed: norm %.9g vs %.9g", k, (double)na,
                      (double)nb);
            CHECK(na > 0.5f); /* it did clip */
            for (int j = 0; j < NP; j++)
                if (j != k)
                    CHECK_MSG(same_floats(a.p[j]->grad, b.p[j]->grad, a.p[j]->numel),
                              "tensor %d freed: clip_grad_norm: grads of tensor %d differ", k, j);
        }
        cx_flat_free(f);
        model_free(&a);
        model_free(&b);
    }
}

/* ------------------------------------------------------------ copy */
static void test_flat_copy(void) {
    model_t online, target;
    model_init(&online);
    model_init(&target);
    cx_flat *fo = cx_flat_new(&online.ps), *ft = cx_flat_new(&target.ps);
    for (int j = 0; j < NP; j++) cx_fill(target.p[j], 9.0f);
    set_grads(&target, 1);
    float g0 = target.p[0]->grad[3];
    CX_F(online.p[5])[40000] = 123.0f;
    CHECK(cx_flat_copy(ft, fo) == CX_OK);
    CHECK(same_params(&online, &target));
    CHECK(CX_F(target.p[5])[40000] == 123.0f);
    CHECK(target.p[0]->grad[3] == g0); /* gradients untouched */
    CHECK(cx_flat_copy(ft, ft) == CX_OK);

    /* Layout mismatches: nothing copied. */
    cx_tensor *x = cx_param_new("x", CX_SHAPE(7, 5)), *y = cx_param_new("y", CX_SHAPE(5, 7));
    cx_tensor *z = cx_param_new("z", CX_SHAPE(36));
    cx_params px, py, pz;
    cx_params_init(&px), cx_params_init(&py), cx_params_init(&pz);
    cx_params_add(&px, x), cx_params_add(&py, y), cx_params_add(&pz, z);
    cx_flat *fx = cx_flat_new(&px), *fy = cx_flat_new(&py), *fz = cx_flat_new(&pz);
    cx_fill(y, 2.0f);
    CHECK(cx_flat_copy(fx, fo) == CX_ERR_SHAPE);
    CHECK(strstr(cx_last_error(), "6 tensors") != NULL);
    CHECK(cx_flat_copy(fx, fy) == CX_ERR_SHAPE); /* same size, other shape */
    CHECK(strstr(cx_last_error(), "[5, 7]") != NULL && strstr(cx_last_error(), "[7, 5]") != NULL);
    CHECK(cx_flat_copy(fx, fz) == CX_ERR_SHAPE);
    CHECK(CX_F(x)[0] == 0.0f);
    CHECK(cx_flat_copy(NULL, fx) == CX_ERR_ARG);
    /* After the destination's tensor is freed, sizes still decide. */
    cx_tensor_free(x);
    CHECK(cx_flat_copy(fx, fy) == CX_OK);
    CHECK(cx_flat_data(fx)[34] == 2.0f);
    cx_flat_free(fx), cx_flat_free(fy), cx_flat_free(fz);
    cx_tensor_free(y), cx_tensor_free(z);
    cx_params_free(&px), cx_params_free(&py), cx_params_free(&pz);
    cx_flat_free(fo);
    cx_flat_free(ft);
    model_free(&online);
    model_free(&target);
}

/* ------------------------------------------------------------ freeing */
static void test_free_orders(void) {
    /* Flat buffer first: the tensors get their own buffers back, with their
     * values and gradients, and go on working (optimiser included). */
    model_t a, b;
    model_init(&a);
    model_init(&b);
    cx_flat *f = cx_flat_new(&b.ps);
    cx_adam_opts o = cx_adam_defaults();
    cx_optim *oa = cx_adam_new(&a.ps, &o), *ob = cx_adam_new(&b.ps, &o);
    set_grads(&a, 0);
    set_grads(&b, 0);
    cx_optim_step(oa);
    cx_optim_step(ob);
    cx_flat_free(f);
    for (int j = 0; j < NP; j++) {
        cx_tensor *t = b.p[j];
        CHECK(t->flat == NULL && t->owns_data && t->grad != NULL);
        CHECK(((uintptr_t)t->data & 63) == 0);
        CHECK(same_floats(t->grad, a.p[j]->grad, t->numel));
    }
    CHECK(same_params(&a, &b));
    set_grads(&a, 1);
    set_grads(&b, 1);
    cx_optim_step(oa);
    cx_optim_step(ob);
    CHECK(same_params(&a, &b));
    cx_optim_free(oa);
    model_free(&a);
    model_free(&b);  /* frees the unflattened buffers (ASan: no leak) */
    cx_optim_free(ob); /* optimiser last: its state blocks are its own */

    /* Tensors first, then the flat buffer (nothing left to unflatten). */
    model_t c;
    model_init(&c);
    f = cx_flat_new(&c.ps);
    cx_optim *oc = cx_sgd_new(&c.ps, NULL);
    cx_tensor_free(c.p[2]);
    c.p[2] = NULL;
    CHECK(cx_flat_params(f)->t[2] == NULL);
    cx_optim_free(oc);
    for (int j = 0; j < NP; j++) cx_tensor_free(c.p[j]);
    cx_params_free(&c.ps);
    for (int j = 0; j < NP; j++) CHECK(cx_flat_params(f)->t[j] == NULL);
    cx_flat_free(f);
    cx_flat_free(NULL);

    /* Half and half. */
    model_t d;
    model_init(&d);
    f = cx_flat_new(&d.ps);
    set_grads(&d, 3);
    float keep = d.p[4]->grad[1], val = CX_F(d.p[4])[1];
    cx_tensor_free(d.p[0]), cx_tensor_free(d.p[1]);
    d.p[0] = d.p[1] = NULL;
    cx_flat_free(f);
    CHECK(d.p[4]->grad[1] == keep && CX_F(d.p[4])[1] == val && d.p[4]->flat == NULL);
    /* A tensor can be flattened again after its flat buffer is gone. */
    cx_params rest;
    cx_params_init(&rest);
    for (int j = 2; j < NP; j++) cx_params_add(&rest, d.p[j]);
    f = cx_flat_new(&rest);
    CHECK(d.p[4]->grad[1] == keep && CX_F(d.p[4])[1] == val);
    cx_flat_free(f);
    cx_params_free(&rest);
    for (int j = 0; j < NP; j++) cx_tensor_free(d.p[j]);
    cx_params_free(&d.ps);
}

/* ------------------------------------------------------------ errors */
static void test_errors(void) {
    cx_tensor *a = cx_param_new("a", CX_SHAPE(3)), *b = cx_param_new("b", CX_SHAPE(2));
    cx_tensor *n = cx_tensor_new(CX_I32, CX_SHAPE(4));
    cx_tensor_set_name(n, "labels");
    cx_params ps;
    cx_params_init(&ps);
    EXPECT_FATAL(cx_flat_new(&ps), "cx_flat_new", "empty");
    EXPECT_FATAL(cx_flat_new(NULL), "cx_flat_new", "NULL");
    cx_params_add(&ps, a);
    cx_params_add(&ps, b);
    cx_params_add(&ps, a);
    EXPECT_FATAL(cx_flat_new(&ps), "cx_flat_new", "duplicate", "entries 0 and 2", "(a)");
    ps.t[2] = n;
    EXPECT_FATAL(cx_flat_new(&ps), "cx_flat_new", "labels", "I32", "F32");
    ps.t[2] = cx_zeros(CX_SHAPE(2)); /* a step tensor */
    EXPECT_FATAL(cx_flat_new(&ps), "cx_flat_new", "arena");
    ps.t[2] = NULL;
    EXPECT_FATAL(cx_flat_new(&ps), "cx_flat_new", "tensor 2 is NULL");
    ps.n = 2;
    /* Nothing was changed by the failed attempts. */
    CHECK(a->flat == NULL && b->flat == NULL && a->owns_data && a->grad == NULL);
    cx_flat *f = cx_flat_new(&ps);
    cx_params again;
    cx_params_init(&again);
    cx_params_add(&again, b);
    EXPECT_FATAL(cx_flat_new(&again), "already in a flat buffer", "(b)");
    EXPECT_FATAL(cx_flat_offset(f, 2), "cx_flat_offset", "out of range");
    EXPECT_FATAL(cx_flat_size(f, -1), "cx_flat_size", "out of range");
    cx_params_free(&again);
    cx_flat_free(f);
    cx_params_free(&ps);
    cx_tensor_free(a), cx_tensor_free(b), cx_tensor_free(n);
}

int main(void) {
    RUN(test_layout_and_ownership);
    RUN(test_backward_into_block);
    RUN(test_optimisers_flat_equal_per_tensor);
    RUN(test_flatten_after_optimiser);
    RUN(test_zero_grad_parameter_steps);
    RUN(test_state_round_trip_flat);
    RUN(test_unequal_step_counts);
    RUN(test_clip_flat_equal_per_tensor);
    RUN(test_clip_flat_list_with_freed_tensor);
    RUN(test_flat_copy);
    RUN(test_free_orders);
    RUN(test_errors);
    TEST_END();
}
