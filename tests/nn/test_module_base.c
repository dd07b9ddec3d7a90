/* The base module: shared (tied) parameters trained and saved once, shared
 * children freed once, names at any depth, several inputs and outputs,
 * generic state save / load / copy. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

/* ---- a tied language model head: logits = Linear(Embedding(ids)) with the
 * decoder's weight tied to the embedding (Press & Wolf 2017), written the
 * way a user writes a module */
typedef struct {
    cx_module base;
    cx_module *embed, *decoder;
} tied_m;

static cx_tensor *tied_fwd(cx_module *m, cx_tensor *ids) {
    tied_m *t = (tied_m *)m;
    return cx_module_forward(t->decoder, cx_module_forward(t->embed, ids));
}
static const cx_module_ops tied_ops = {.kind = "TiedLM", .forward = tied_fwd};

static cx_module *tied_new(int V, int E, bool tie) {
    tied_m *t = calloc(1, sizeof *t);
    cx_module_init(&t->base, &tied_ops);
    t->embed = cx_module_add(&t->base, "embed", cx_embedding_new(V, E, -1));
    t->decoder = cx_module_add(&t->base, "decoder", cx_linear_new(E, V, true));
    if (tie) cx_module_tie(&t->base, "decoder.weight", cx_embedding_weight(t->embed));
    return &t->base;
}

static cx_tensor *ids_tensor(int n, int V) {
    cx_tensor *ids = cx_empty(CX_I32, (int[]){n}, 1);
    for (int i = 0; i < n; i++) CX_I32P(ids)[i] = (i * 7 + 3) % V;
    return ids;
}
static cx_tensor *next_ids(int n, int V) {
    cx_tensor *y = cx_empty(CX_I32, (int[]){n}, 1);
    for (int i = 0; i < n; i++) CX_I32P(y)[i] = (i * 7 + 4) % V;
    return y;
}

static void tied_embedding_trained_and_saved_once(void) {
    const int V = 11, E = 11, N = 24;
    cx_seed(4);
    cx_module *lm = tied_new(V, E, true);
    cx_tensor *W = cx_module_tensor(lm, "embed.weight");
    CHECK(W && cx_module_tensor(lm, "decoder.weight") == W);
    /* listed once: embed.weight and decoder.bias */
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(lm, &ps);
    CHECK_MSG(ps.n == 2 && ps.t[0] == W && !strcmp(ps.t[0]->name, "embed.weight") &&
                  !strcmp(ps.t[1]->name, "decoder.bias"),
              "params: %d", ps.n);
    /* the state dict has both names, PyTorch style */
    cx_state_dict sd;
    cx_module_state_dict(lm, &sd);
    CHECK(sd.n == 3 && !strcmp(sd.names[0], "embed.weight") && !strcmp(sd.names[1], "decoder.weight") &&
          sd.t[1] == W && !strcmp(sd.names[2], "decoder.bias"));
    cx_state_dict_free(&sd);

    /* the gradient of the tied weight is the sum of both uses: compare with
     * an untied copy holding the same values */
    cx_module *un = tied_new(V, E, false);
    memcpy(CX_F(cx_module_tensor(un, "embed.weight")), CX_F(W), (size_t)W->numel * 4);
    memcpy(CX_F(cx_module_tensor(un, "decoder.weight")), CX_F(W), (size_t)W->numel * 4);
    memcpy(CX_F(cx_module_tensor(un, "decoder.bias")), CX_F(cx_module_tensor(lm, "decoder.bias")), V * 4);
    cx_tensor *ids = ids_tensor(N, V), *y = next_ids(N, V);
    cx_backward(cx_cross_entropy(cx_module_forward(lm, ids), y, CX_REDUCE_MEAN));
    cx_backward(cx_cross_entropy(cx_module_forward(un, ids), y, CX_REDUCE_MEAN));
    const float *ge = cx_module_tensor(un, "embed.weight")->grad, *gd = cx_module_tensor(un, "decoder.weight")->grad;
    CHECK(W->grad && ge && gd);
    float sum[121];
    for (int i = 0; i < V * E; i++) sum[i] = ge[i] + gd[i];
    cxt_allclose(W->grad, sum, V * E, 1e-6, 1e-7, "tied gradient = embedding + decoder gradients");
    cx_step_reset();

    /* a few optimiser steps: the loss goes down, the one tensor stays one */
    cx_adam_opts o = cx_adam_defaults();
    o.lr = 0.05;
    cx_optim *opt = cx_adam_new(&ps, &o);
    float first = 0, last = 0;
    for (int s = 0; s < 30; s++) {
        cx_optim_zero_grad(opt);
        cx_tensor *loss = cx_cross_entropy(cx_module_forward(lm, ids_tensor(N, V)), next_ids(N, V), CX_REDUCE_MEAN);
        if (s == 0) first = cx_item(loss);
        last = cx_item(loss);
        cx_backward(loss);
        cx_optim_step(opt);
        cx_step_reset();
    }
    CHECK_MSG(last < 0.5f * first, "loss %g -> %g", first, last);
    CHECK(cx_module_tensor(lm, "decoder.weight") == cx_module_tensor(lm, "embed.weight"));

    /* saved once: the file holds embed.weight and decoder.bias only */
    char path[64];
    snprintf(path, sizeof path, "/tmp/cx_tied_%d.safetensors", (int)getpid());
    CHECK(cx_module_save(lm, path, NULL, NULL, 0) == CX_OK);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(path, &f) == CX_OK);
    if (f) {
        CHECK_MSG(f->n == 2 && cx_st_get(f, "embed.weight") && cx_st_get(f, "decoder.bias") &&
                      !cx_st_get(f, "decoder.weight"),
                  "%d tensors in the file", f->n);
        CHECK(!strcmp(cx_st_meta(f, "format"), "pt"));
        cx_st_free(f);
    }
    /* loaded into a fresh tied model: the same outputs */
    cx_seed(99);
    cx_module *lm2 = tied_new(V, E, true);
    CHECK(cx_module_load(lm2, path) == CX_OK);
    /* the same from an opened file */
    cx_seed(98);
    cx_module *lm2b = tied_new(V, E, true);
    CHECK(cx_st_load(path, &f) == CX_OK);
    if (f) {
        CHECK(cx_module_load_state(lm2b, f, path) == CX_OK);
        cx_st_free(f);
    }
    cxt_allclose(CX_F(cx_module_tensor(lm2b, "embed.weight")), CX_F(W), (long)W->numel, 0, 0, "loaded from cx_st_file");
    cx_module_free(lm2b);
    cx_tensor *a = cx_module_forward(lm, ids_tensor(N, V)), *b = cx_module_forward(lm2, ids_tensor(N, V));
    cxt_allclose(CX_F(b), CX_F(a), (long)a->numel, 0, 0, "reloaded tied model");
    /* a file holding only the alias name (decoder.weight) loads too */
    cx_tensor *only[2] = {W, cx_module_tensor(lm, "decoder.bias")};
    const char *names[2] = {"decoder.weight", "decoder.bias"};
    CHECK(cx_st_save(path, only, names, 2, NULL, NULL, 0) == CX_OK);
    cx_seed(100);
    cx_module *lm3 = tied_new(V, E, true);
    CHECK(cx_module_load(lm3, path) == CX_OK);
    cxt_allclose(CX_F(cx_module_tensor(lm3, "embed.weight")), CX_F(W), (long)W->numel, 0, 0, "loaded by alias");
    /* a missing tensor: error naming it, the model unchanged */
    const char *bad[1] = {"decoder.bias"};
    CHECK(cx_st_save(path, only + 1, bad, 1, NULL, NULL, 0) == CX_OK);
    float before = CX_F(cx_module_tensor(lm3, "decoder.bias"))[0];
    CX_F(only[1])[0] += 1.0f;
    CHECK(cx_module_load(lm3, path) == CX_ERR_NOTFOUND);
    CHECK_MSG(strstr(cx_last_error(), "embed.weight") != NULL, "%s", cx_last_error());
    CHECK(CX_F(cx_module_tensor(lm3, "decoder.bias"))[0] == before);
    unlink(path);
    cx_step_reset();
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(lm);
    cx_module_free(lm2);
    cx_module_free(lm3);
    cx_module_free(un);
}

/* ---- a module that shares a tensor owned by another (cx_module_share_param) */
typedef struct { cx_module base; cx_tensor *w; } user_m;
static cx_tensor *user_fwd(cx_module *m, cx_tensor *x) { return cx_matmul(x, ((user_m *)m)->w); }
static const cx_module_ops user_ops = {.kind = "User", .forward = user_fwd};

static void shared_param_listed_not_freed(void) {
    cx_module *owner = cx_linear_new(3, 3, false);
    user_m *u = calloc(1, sizeof *u);
    cx_module_init(&u->base, &user_ops);
    u->w = cx_linear_weight(owner);
    cx_module_share_param(&u->base, "w", &u->w);
    cx_module *both = cx_sequential_new();
    cx_sequential_add(both, "owner", owner);
    cx_sequential_add(both, "user", &u->base);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(both, &ps);
    CHECK(ps.n == 1 && ps.t[0] == u->w && !strcmp(u->w->name, "owner.weight")); /* owner's name kept */
    cx_params_free(&ps);
    cx_state_dict sd;
    cx_module_state_dict(both, &sd);
    CHECK(sd.n == 2 && !strcmp(sd.names[1], "user.w") && sd.t[1] == sd.t[0]);
    cx_state_dict_free(&sd);
    CHECK(cx_module_forward(both, cx_ones(CX_SHAPE(1, 3)))->numel == 3);
    cx_step_reset();
    cx_module_free(both); /* the shared weight is freed once, by its owner (ASan) */
}

/* ---- an actor and a critic sharing a trunk (refcounted child) */
static void shared_child_freed_once(void) {
    cx_seed(5);
    cx_module *trunk = cx_linear_new(4, 8, true);
    cx_module *actor = cx_sequential_new(), *critic = cx_sequential_new();
    cx_sequential_add(actor, "trunk", trunk);
    cx_sequential_add(actor, "pi", cx_linear_new(8, 3, true));
    cx_sequential_add(critic, "trunk", cx_module_ref(trunk));
    cx_sequential_add(critic, "v", cx_linear_new(8, 1, true));
    CHECK(trunk->refs == 2);
    CHECK(cx_module_tensor(actor, "trunk.weight") == cx_module_tensor(critic, "trunk.weight"));
    /* one model holding both: the trunk's parameters listed once */
    cx_module *ac = cx_sequential_new();
    cx_sequential_add(ac, "actor", actor);
    cx_sequential_add(ac, "critic", critic);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(ac, &ps);
    CHECK_MSG(ps.n == 6, "%d params (trunk w, b; pi w, b; v w, b)", ps.n);
    CHECK_MSG(!strcmp(cx_module_tensor(ac, "critic.trunk.weight")->name, "actor.trunk.weight"),
              "canonical name %s", cx_module_tensor(ac, "critic.trunk.weight")->name);
    cx_params_free(&ps);
    /* both heads see the same features; gradients from both reach the trunk */
    cx_tensor *x = cx_randn(CX_SHAPE(5, 4), 0, 1);
    cx_tensor *loss = cx_add(cx_sum(cx_module_forward(actor, x)), cx_sum(cx_module_forward(critic, x)));
    cx_backward(loss);
    CHECK(cx_module_tensor(ac, "actor.trunk.weight")->grad != NULL);
    cx_step_reset();
    cx_module_free(ac); /* frees actor, critic and the trunk exactly once (ASan) */
}

/* ---- names at any depth, late registration, lookups, errors */
typedef struct { cx_module base; cx_tensor *w, *count; } scale_m;
static cx_tensor *scale_fwd(cx_module *m, cx_tensor *x) { return cx_mul(x, ((scale_m *)m)->w); }
static const cx_module_ops scale_ops = {.kind = "Scale", .forward = scale_fwd};
static cx_module *scale_new(int n) {
    scale_m *s = calloc(1, sizeof *s);
    cx_module_init(&s->base, &scale_ops);
    s->w = cx_param_new(NULL, (int[]){n}, 1);
    cx_fill(s->w, 2.0f);
    cx_module_add_param(&s->base, "weight", &s->w);
    return &s->base;
}

static void names_at_any_depth(void) {
    cx_module *inner = cx_sequential_new();
    cx_sequential_add(inner, "scale", scale_new(3));
    cx_module *mid = cx_sequential_new();
    cx_sequential_add(mid, "inner", inner);
    /* registered after the module was attached: named from its path */
    scale_m *s = (scale_m *)cx_module_find(mid, "inner.scale");
    CHECK(s != NULL);
    s->count = cx_tensor_new(CX_I64, (int[]){1}, 1);
    cx_module_add_buffer(&s->base, "count", &s->count);
    cx_module *top = cx_sequential_new();
    cx_sequential_add(top, "mid", mid);
    CHECK(!strcmp(s->w->name, "mid.inner.scale.weight"));
    CHECK(!strcmp(s->count->name, "mid.inner.scale.count"));
    CHECK(cx_module_tensor(top, "mid.inner.scale.weight") == s->w);
    CHECK(cx_module_tensor(top, "mid.inner.nothing") == NULL && cx_module_find(top, "mid.x") == NULL);
    CHECK(cx_module_find(top, "") == top);
    cx_params b;
    cx_params_init(&b);
    cx_module_buffers(top, &b);
    CHECK(b.n == 1 && b.t[0] == s->count);
    cx_params_free(&b);
    const char *nm;
    CHECK(cx_module_num_children(top) == 1 && cx_module_child(top, 0, &nm) == mid && !strcmp(nm, "mid"));
    cx_tensor *y = cx_module_forward(top, cx_ones(CX_SHAPE(2, 3)));
    CHECK(CX_F(y)[0] == 2.0f);
    /* errors */
    cx_module *extra = cx_sequential_new();
    EXPECT_FATAL(cx_module_add(top, "mid", extra), "duplicate child name 'mid'");
    EXPECT_FATAL(cx_module_add(top, "a.b", extra), "without dots");
    cx_module_free(extra); /* refused: still the caller's */
    EXPECT_FATAL(cx_module_tie(top, "mid.inner.scale.weight", cx_zeros(CX_SHAPE(4))), "cannot tie");
    EXPECT_FATAL(cx_module_tie(top, "mid.inner.scale.bias", s->w), "no tensor");
    cx_tensor *notparam = cx_tensor_new(CX_F32, (int[]){2}, 1);
    EXPECT_FATAL(cx_module_add_param(top, "p", &notparam), "require grad");
    cx_tensor_free(notparam);
    cx_step_reset();
    cx_module_free(top);
}

/* ---- several inputs and outputs through the generic call */
static void call_with_several_inputs_and_outputs(void) {
    cx_seed(6);
    cx_module *lstm = cx_lstm_new(3, 4, NULL);
    cx_tensor *x = cx_randn(CX_SHAPE(5, 2, 3), 0, 1), *h0 = cx_randn(CX_SHAPE(1, 2, 4), 0, 1),
              *c0 = cx_randn(CX_SHAPE(1, 2, 4), 0, 1);
    cx_tensor *out[3] = {0};
    cx_tensor *in[3] = {x, h0, c0};
    CHECK(cx_module_call(lstm, in, 3, out, 3) == 3);
    cx_rnn_out r = cx_rnn_forward(lstm, x, h0, c0);
    CHECK(out[0] && out[1] && out[2]);
    if (out[2]) {
        cxt_allclose(CX_F(out[0]), CX_F(r.output), (long)r.output->numel, 0, 0, "call output");
        cxt_allclose(CX_F(out[1]), CX_F(r.h), (long)r.h->numel, 0, 0, "call h_n");
        cxt_allclose(CX_F(out[2]), CX_F(r.c), (long)r.c->numel, 0, 0, "call c_n");
    }
    /* fewer outputs asked: only those */
    cx_tensor *one[1];
    CHECK(cx_module_call(lstm, in, 1, one, 1) == 1 && one[0]->ndim == 3);
    CHECK(cx_module_forward(lstm, x)->ndim == 3);
    /* a forward-only module takes one input */
    cx_module *lin = cx_linear_new(3, 2, true);
    EXPECT_FATAL(cx_module_call(lin, in, 2, out, 1), "takes one input");
    CHECK(cx_module_call(lin, in, 1, out, 3) == 1);
    /* a .net network: the final output, then every layer's */
    cx_module *net;
    CHECK(cx_net_parse("input 4\nlinear out=3\nrelu\nlinear out=2\n", "t.net", &net) == CX_OK);
    cx_tensor *xn = cx_randn(CX_SHAPE(2, 4), 0, 1), *all[5];
    CHECK(cx_module_call(net, &xn, 1, all, 5) == 5);
    CHECK(all[0]->shape[1] == 2 && all[1] == xn && all[4] == all[0] && all[2]->shape[1] == 3);
    cx_step_reset();
    cx_module_free(net);
    cx_module_free(lin);
    cx_module_free(lstm);
}

/* ---- copying the state of one module into another of the same definition */
static void copy_state_between_twins(void) {
    cx_seed(7);
    cx_module *q = cx_mlp_new((int[]){4, 6, 2}, 3, CX_ACT_RELU, 0);
    cx_seed(8);
    cx_module *target = cx_mlp_new((int[]){4, 6, 2}, 3, CX_ACT_RELU, 0);
    cx_tensor *x = cx_randn(CX_SHAPE(3, 4), 0, 1);
    CHECK(CX_F(cx_module_forward(q, x))[0] != CX_F(cx_module_forward(target, x))[0]);
    CHECK(cx_module_copy_state(target, q) == CX_OK);
    cx_tensor *a = cx_module_forward(q, x), *b = cx_module_forward(target, x);
    cxt_allclose(CX_F(b), CX_F(a), (long)a->numel, 0, 0, "target network after the copy");
    CHECK(cx_module_tensor(q, "fc1.weight") != cx_module_tensor(target, "fc1.weight"));
    cx_module *other = cx_mlp_new((int[]){4, 5, 2}, 3, CX_ACT_RELU, 0);
    float keep = CX_F(cx_module_tensor(other, "fc2.bias"))[0];
    CHECK(cx_module_copy_state(other, q) == CX_ERR_SHAPE);
    CHECK_MSG(strstr(cx_last_error(), "fc1.weight") != NULL, "%s", cx_last_error());
    CHECK(CX_F(cx_module_tensor(other, "fc2.bias"))[0] == keep);
    cx_step_reset();
    cx_module_free(q);
    cx_module_free(target);
    cx_module_free(other);
}

/* ---- review regressions: tying over aliases, cycles, a second parent
 * without a reference */
static void tie_over_aliases_and_errors(void) {
    cx_module *r = cx_sequential_new();
    cx_module *a = cx_linear_new(3, 3, false), *b = cx_linear_new(3, 3, false), *c = cx_linear_new(3, 3, false);
    cx_sequential_add(r, "a", a);
    cx_sequential_add(r, "b", b);
    cx_sequential_add(r, "c", c);
    cx_module_tie(r, "b.weight", cx_linear_weight(a)); /* b's own weight freed */
    cx_module_tie(r, "a.weight", cx_linear_weight(c)); /* a's weight, also b's now: both re-pointed */
    CHECK(cx_module_tensor(r, "a.weight") == cx_module_tensor(r, "c.weight"));
    CHECK(cx_module_tensor(r, "b.weight") == cx_module_tensor(r, "c.weight"));
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(r, &ps);
    CHECK_MSG(ps.n == 1, "%d params after tying all three", ps.n);
    cx_params_free(&ps);
    CHECK(cx_module_forward(r, cx_ones(CX_SHAPE(2, 3)))->numel == 6);
    /* only persistent parameters, never into a buffer slot */
    cx_module *bn = cx_batchnorm1d_new(3);
    cx_sequential_add(r, "bn", bn);
    EXPECT_FATAL(cx_module_tie(r, "bn.running_mean", cx_linear_weight(c)), "buffer");
    EXPECT_FATAL(cx_module_tie(r, "bn.weight", cx_zeros(CX_SHAPE(3))), "persistent parameter");
    /* cycles and a second parent without a reference */
    cx_module *inner = cx_sequential_new();
    cx_sequential_add(r, "inner", inner);
    EXPECT_FATAL(cx_module_add(inner, "r", cx_module_ref(r)), "cycle");
    cx_module_free(r); /* the ref taken for the refused add */
    cx_module *other = cx_sequential_new();
    EXPECT_FATAL(cx_module_add(other, "a", a), "cx_module_ref");
    cx_module_add(other, "a", cx_module_ref(a));
    cx_module_free(other);
    /* a module with neither forward nor call */
    static const cx_module_ops empty_ops = {.kind = "Empty"};
    cx_module *e = calloc(1, sizeof *e);
    cx_module_init(e, &empty_ops);
    cx_tensor *x = cx_ones(CX_SHAPE(1)), *y[1];
    EXPECT_FATAL(cx_module_call(e, &x, 1, y, 1), "neither forward nor call");
    cx_module_free(e);
    cx_step_reset();
    cx_module_free(r); /* the shared weight freed once, by c (ASan) */
}

int main(void) {
    cx_set_threads(1);
    RUN(tied_embedding_trained_and_saved_once);
    RUN(shared_param_listed_not_freed);
    RUN(shared_child_freed_once);
    RUN(names_at_any_depth);
    RUN(call_with_several_inputs_and_outputs);
    RUN(copy_state_between_twins);
    RUN(tie_over_aliases_and_errors);
    TEST_END();
}
