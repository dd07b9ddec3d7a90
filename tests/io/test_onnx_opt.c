/* The inference plan of cx_onnx_run (src/io/onnx_opt.c, cx_onnx_set_optimize):
 *   - a graph with Conv + BatchNormalization + Relu, a Conv + BN into a
 *     residual Add + Relu, GlobalAveragePool, Gemm + Relu, Gemm (exported
 *     from a Cortex net with random BN statistics): 2 BNs folded and 3 Relus
 *     fused (5 nodes skipped); the optimised no-grad run equals the plain run
 *     within 1e-5 + 1e-4 relative, at batch 3 and 1, and Cortex's forward;
 *   - no folding when the Conv's output has another user (a residual Add
 *     reads it), no fusion when the Relu's input has another user: nothing
 *     skipped, results equal;
 *   - parameters changed through cx_onnx_params, or after a grad-mode run,
 *     are seen by the next optimised run (the folded weights are derived
 *     again, the packed convolution weights of src/nn/conv_pack.h dropped); a grad-mode run runs every node (the BN's scale gets a
 *     gradient);
 *   - parameters written in place between two optimised runs with no call
 *     in between (a conv weight, a BN scale), direct and automatic
 *     convolution: seen through the parameters' fingerprint. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "io/onnx_internal.h" /* cx_onnx_opt_num_inplace */

static void fill(cx_tensor *t, float lo, float hi) {
    for (int64_t i = 0; i < t->numel; i++) CX_F(t)[i] = lo + (hi - lo) * cx_rand_uniform();
}

/* the net of `text` with random BN statistics and biases, exported and loaded */
static cx_onnx_model *load_net(const char *text, cx_module **netp) {
    cx_module *net;
    cx_status st = cx_net_parse(text, "opt.net", &net);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return NULL;
    cx_state_dict sd;
    cx_module_state_dict(net, &sd);
    for (int i = 0; i < sd.n; i++) {
        if (strstr(sd.names[i], "running_mean") || strstr(sd.names[i], ".bias")) fill(sd.t[i], -0.5f, 0.5f);
        else if (strstr(sd.names[i], "running_var")) fill(sd.t[i], 0.3f, 2.0f);
        else if (strstr(sd.names[i], "bn") && strstr(sd.names[i], ".weight")) fill(sd.t[i], -1.5f, 1.5f);
    }
    cx_state_dict_free(&sd);
    void *buf;
    size_t n;
    cx_onnx_model *m = NULL;
    CHECK(cx_onnx_export_buffer(net, NULL, &buf, &n) == CX_OK);
    st = cx_onnx_load_buffer(buf, n, "opt.onnx", &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    free(buf);
    if (netp) *netp = net;
    else cx_module_free(net);
    return m;
}

/* the no-grad output of m on x, optimised or not (a persistent copy) */
static cx_tensor *run(cx_onnx_model *m, cx_tensor *x, bool optimise) {
    if (!optimise) cx_onnx_set_optimize(m, false);
    cx_tensor *out[1] = {NULL};
    cx_no_grad_begin();
    cx_status st = cx_onnx_run(m, &x, out);
    cx_no_grad_end();
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return NULL;
    cx_tensor *y = cx_tensor_new(CX_F32, out[0]->shape, out[0]->ndim);
    memcpy(y->data, out[0]->data, (size_t)y->numel * sizeof(float));
    if (!optimise) cx_onnx_set_optimize(m, true);
    return y;
}

static void compare(cx_tensor *a, cx_tensor *b, const char *what) {
    CHECK(a && b);
    if (!a || !b) return;
    CHECK(cx_same_shape(a, b));
    cxt_allclose(CX_F(a), CX_F(b), (long)a->numel, 1e-4, 1e-5, what);
}

static double max_diff(const cx_tensor *a, const cx_tensor *b) {
    double w = 0;
    for (int64_t i = 0; i < a->numel; i++) w = fmax(w, fabs((double)CX_F(a)[i] - (double)CX_F(b)[i]));
    return w;
}

static const char *RESNETISH = "input 3 10 10\n"
                               "conv2d name=c1 out=8 k=3 p=1 bias=0\n"
                               "batchnorm name=bn1\n"
                               "relu name=r1\n"
                               "conv2d name=c2 out=8 k=3 p=1\n"
                               "batchnorm name=bn2\n"
                               "add name=sum from=bn2,r1\n"
                               "relu name=r2\n"
                               "globalavgpool\n"
                               "flatten\n"
                               "linear name=fc out=6\n"
                               "relu\n"
                               "linear name=fc2 out=3\n";

static void test_fold_and_fuse(void) {
    cx_module *net = NULL;
    cx_onnx_model *m = load_net(RESNETISH, &net);
    if (!m) return;
    CHECK(cx_onnx_num_unsupported(m) == 0);
    CHECK_MSG(cx_onnx_num_optimized(m) == 5, "%d nodes skipped (bn1, bn2 folded; r1, r2, the fc Relu fused)",
              cx_onnx_num_optimized(m));
    CHECK_MSG(cx_onnx_opt_num_inplace(m) == 1, "%d Adds into an operand (the sum into c2's output, not into r1, "
              "which c2 reads too)", cx_onnx_opt_num_inplace(m));
    cx_set_training(false);
    for (int b = 3; b >= 1; b -= 2) {
        cx_tensor *x = cx_randn(CX_SHAPE(b, 3, 10, 10), 0, 1);
        cx_tensor *plain = run(m, x, false), *opt = run(m, x, true);
        compare(opt, plain, b == 3 ? "optimised vs plain, batch 3" : "optimised vs plain, batch 1");
        cx_no_grad_begin();
        cx_tensor *ref = cx_module_forward(net, x);
        cx_no_grad_end();
        compare(opt, ref, "optimised vs Cortex's forward");
        cx_tensor_free(plain);
        cx_tensor_free(opt);
        cx_step_reset();
    }
    cx_set_training(true);
    cx_onnx_free(m);
    cx_module_free(net);
}

/* net's plan skips `skipped` nodes and runs `inplace` Adds into an operand
 * (-1: not checked); its optimised run equals the plain one */
static void check_plan(const char *net, int skipped, int inplace, const char *what) {
    cx_onnx_model *m = load_net(net, NULL);
    if (!m) return;
    if (skipped >= 0)
        CHECK_MSG(cx_onnx_num_optimized(m) == skipped, "%s: %d nodes skipped, expected %d", what,
                  cx_onnx_num_optimized(m), skipped);
    CHECK_MSG(cx_onnx_opt_num_inplace(m) == inplace, "%s: %d Adds into an operand, expected %d", what,
              cx_onnx_opt_num_inplace(m), inplace);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 2, 6, 6), 0, 1);
    cx_tensor *plain = run(m, x, false), *opt = run(m, x, true);
    compare(opt, plain, what);
    cx_tensor_free(plain);
    cx_tensor_free(opt);
    cx_onnx_free(m);
    cx_step_reset();
}

static void test_other_users(void) {
    /* c1's output feeds bn1 and the add: bn1 stays; c2's output feeds r2 and
     * the second add: r2 stays. The first add writes into bn1's output; not
     * the second: r2 is a Relu that stayed, and c2 is read twice. */
    check_plan("input 2 6 6\n"
               "conv2d name=c1 out=4 k=3 p=1\n"
               "batchnorm name=bn1\n"
               "add name=s from=bn1,c1\n"
               "conv2d name=c2 out=4 k=3 p=1\n"
               "relu name=r2\n"
               "add name=s2 from=r2,c2\n"
               "flatten\n"
               "linear name=fc out=3\n",
               0, 1, "other users: optimised vs plain");
    /* a Relu after a Conv whose output is also read elsewhere, and a BN after
     * a Relu (not a Conv): neither is touched; the add's Relu is fused (r1
     * into c1, r2 into the add). The add writes into bn1's output, not into
     * r1 = c1's, which bn1 reads too. */
    check_plan("input 2 6 6\n"
               "conv2d name=c1 out=4 k=3 p=1\n"
               "relu name=r1\n"
               "batchnorm name=bn1\n"
               "add name=s from=bn1,r1\n"
               "relu name=r2\n"
               "flatten\n"
               "linear name=fc out=3\n",
               2, 1, "relu + bn: optimised vs plain");
    /* c2's output is read by both adds: the first may not write into it (the
     * second would read the sum), nor into r1 (c2 reads it); the second
     * writes into the first's sum */
    check_plan("input 2 6 6\n"
               "conv2d name=c1 out=4 k=3 p=1\n"
               "relu name=r1\n"
               "conv2d name=c2 out=4 k=3 p=1\n"
               "add name=s1 from=c2,r1\n"
               "add name=s2 from=s1,c2\n"
               "relu name=r2\n"
               "flatten\n"
               "linear name=fc out=3\n",
               -1, 1, "an operand read twice: optimised vs plain");
}

static cx_tensor *param(const cx_onnx_model *m, const char *name) {
    const cx_params *p = cx_onnx_params(m);
    for (int i = 0; i < p->n; i++)
        if (p->t[i]->name && !strcmp(p->t[i]->name, name)) return p->t[i];
    return NULL;
}

static void test_changed_parameters(void) {
    cx_onnx_model *m = load_net(RESNETISH, NULL);
    if (!m) return;
    cx_tensor *x = cx_tensor_new(CX_F32, CX_SHAPE(2, 3, 10, 10)); /* outlives the step resets */
    fill(x, -2.0f, 2.0f);
    cx_tensor *before = run(m, x, true);
    /* through cx_onnx_params */
    cx_tensor *s = param(m, "bn1.weight"), *mu = param(m, "bn2.running_mean");
    CHECK(s && mu);
    if (!s || !mu) goto done;
    for (int i = 0; i < s->numel; i++) CX_F(s)[i] *= -2.0f;
    cx_tensor *opt = run(m, x, true);
    cx_tensor *plain = run(m, x, false);
    compare(opt, plain, "after cx_onnx_params: optimised vs plain");
    CHECK(before && opt && max_diff(before, opt) > 1e-3);
    cx_tensor_free(opt);
    cx_tensor_free(plain);
    /* a grad-mode run runs every node (the BN's scale gets a gradient) */
    cx_params_zero_grad(cx_onnx_params(m));
    cx_tensor_free(run(m, x, true)); /* folded again: up to date */
    cx_tensor *out[1];
    CHECK(cx_onnx_run(m, &x, out) == CX_OK);
    cx_backward(cx_sum(out[0]));
    CHECK(s->grad != NULL && mu->grad == NULL);
    bool nz = false;
    for (int i = 0; s->grad && i < s->numel; i++) nz |= s->grad[i] != 0.0f;
    CHECK(nz);
    cx_step_reset();
    /* a change after the grad-mode run (as an optimiser step makes) */
    for (int i = 0; i < mu->numel; i++) CX_F(mu)[i] += 0.25f;
    opt = run(m, x, true);
    plain = run(m, x, false);
    compare(opt, plain, "after a grad-mode run: optimised vs plain");
    cx_tensor_free(opt);
    cx_tensor_free(plain);
done:
    cx_tensor_free(before);
    cx_tensor_free(x);
    cx_onnx_free(m);
    cx_step_reset();
}

/* written in place, with no call in between, between two optimised runs (a
 * finite-difference check does this): the fingerprint of the parameters
 * sees it; both the folded weights (a BN's scale) and the packed weights of
 * a direct convolution (c2 has no BN: its own weight is packed; c1's is
 * packed after folding) */
static void test_written_in_place(void) {
    static const char *NET = "input 8 16 16\n"
                             "conv2d name=c1 out=16 k=3 p=1 bias=0\n"
                             "batchnorm name=bn1\n"
                             "relu name=r1\n"
                             "conv2d name=c2 out=16 k=3 p=1\n"
                             "relu\n"
                             "globalavgpool\n"
                             "flatten\n"
                             "linear name=fc out=3\n";
    const cx_conv_algo keep = cx_conv_get_algo();
    for (int a = 0; a < 2; a++) {
        cx_conv_set_algo(a ? CX_CONV_AUTO : CX_CONV_DIRECT);
        cx_onnx_model *m = load_net(NET, NULL);
        if (!m) break;
        cx_tensor *w = param(m, "c2.weight"), *s = param(m, "bn1.weight");
        CHECK(w && s);
        if (!w || !s) {
            cx_onnx_free(m);
            break;
        }
        cx_tensor *x = cx_tensor_new(CX_F32, CX_SHAPE(1, 8, 16, 16));
        fill(x, -2.0f, 2.0f);
        cx_tensor *y0 = run(m, x, true), *y1 = run(m, x, true);
        CHECK(y0 && y1 && max_diff(y0, y1) == 0.0);
        for (int64_t i = 0; i < w->numel; i++) CX_F(w)[i] *= -1.5f;
        cx_tensor *y2 = run(m, x, true);
        CHECK_MSG(y0 && y2 && max_diff(y0, y2) > 1e-3, "a conv weight written in place is seen (%s)",
                  a ? "auto" : "direct");
        for (int64_t i = 0; i < s->numel; i++) CX_F(s)[i] *= 0.5f;
        cx_tensor *y3 = run(m, x, true), *plain = run(m, x, false);
        CHECK_MSG(y2 && y3 && max_diff(y2, y3) > 1e-4, "a BN scale written in place is seen (%s)",
                  a ? "auto" : "direct");
        compare(y3, plain, "written in place: optimised vs plain");
        cx_tensor *tl[] = {x, y0, y1, y2, y3, plain};
        for (int i = 0; i < 6; i++) cx_tensor_free(tl[i]);
        cx_onnx_free(m);
        cx_step_reset();
    }
    cx_conv_set_algo(keep);
}

int main(void) {
    cx_seed(11);
    RUN(test_fold_and_fuse);
    RUN(test_other_users);
    RUN(test_changed_parameters);
    RUN(test_written_in_place);
    TEST_END();
}
