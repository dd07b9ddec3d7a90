/* .net network files: parsing, building, shapes, parameter names, receptive
 * fields, forward pass equal to the same layers called by hand, and errors
 * that name the line. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static cx_module *parse_ok(const char *text) {
    cx_module *m = NULL;
    cx_status st = cx_net_parse(text, "t.net", &m);
    CHECK_MSG(st == CX_OK, "parse failed: %s", cx_last_error());
    return m;
}

static void expect_error(const char *text, const char *substr) {
    cx_module *m = (cx_module *)1;
    cx_status st = cx_net_parse(text, "bad.net", &m);
    CHECK_MSG(st == CX_ERR_FORMAT, "expected a format error for:\n%s", text);
    CHECK(m == NULL);
    CHECK_MSG(strstr(cx_last_error(), substr) != NULL, "message '%s' lacks '%s'", cx_last_error(), substr);
    CHECK_MSG(strncmp(cx_last_error(), "bad.net", 7) == 0, "message '%s' does not name the file", cx_last_error());
}

/* The notes' example: 32x32x3 through ten 5x5 filters, stride 1, pad 2. */
static void test_notes_example(void) {
    cx_module *m;
    CHECK(cx_net_load("models/notes_example.net", &m) == CX_OK);
    if (!m) return;
    CHECK(cx_net_num_layers(m) == 2);
    const cx_layer_info *li = cx_net_layer(m, 1);
    CHECK(li->out_ndim == 3 && li->out_shape[0] == 10 && li->out_shape[1] == 32 && li->out_shape[2] == 32);
    CHECK(li->params == 760);
    CHECK(li->rf[0] == 5 && li->rf[1] == 5);
    cx_module_free(m);
}

static void test_lenet(void) {
    cx_module *m;
    CHECK(cx_net_load("models/lenet5.net", &m) == CX_OK);
    if (!m) return;
    int shape[CX_MAX_DIMS];
    CHECK(cx_net_input_shape(m, shape) == 3 && shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(cx_params_count(&ps) == 61706); /* same as PyTorch's LeNet-5 with padding 2 */
    CHECK(ps.n == 10);
    CHECK(cx_params_find(&ps, "conv1.weight") && cx_params_find(&ps, "conv1.weight")->shape[0] == 6);
    CHECK(cx_params_find(&ps, "fc1.weight") && cx_params_find(&ps, "fc1.weight")->shape[1] == 400);
    CHECK(cx_params_find(&ps, "fc3.bias") && cx_params_find(&ps, "fc3.bias")->numel == 10);
    /* receptive fields: conv5 -> 5, pool2 -> 6, conv5 -> 14, pool2 -> 16 */
    int want[] = {1, 5, 5, 6, 14, 14, 16};
    for (int i = 0; i < 7; i++) CHECK_NEAR(cx_net_layer(m, i)->rf[0], want[i], 0);
    CHECK(cx_net_layer(m, 7)->rf_all); /* flatten */
    /* forward equals the layers called by hand */
    cx_seed(3);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 28, 28), 0, 1);
    cx_tensor *y = cx_module_forward(m, x);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 10);
    cx_tensor *h = cx_relu(cx_conv2d(x, cx_params_find(&ps, "conv1.weight"), cx_params_find(&ps, "conv1.bias"),
                                     1, 1, 2, 2, 1, 1, 1));
    h = cx_max_pool2d(h, 2, 2, 2, 2, 0, 0);
    h = cx_relu(cx_conv2d(h, cx_params_find(&ps, "conv2.weight"), cx_params_find(&ps, "conv2.bias"), 1, 1, 0, 0,
                          1, 1, 1));
    h = cx_flatten(cx_max_pool2d(h, 2, 2, 2, 2, 0, 0));
    h = cx_relu(cx_linear(h, cx_params_find(&ps, "fc1.weight"), cx_params_find(&ps, "fc1.bias")));
    h = cx_relu(cx_linear(h, cx_params_find(&ps, "fc2.weight"), cx_params_find(&ps, "fc2.bias")));
    h = cx_linear(h, cx_params_find(&ps, "fc3.weight"), cx_params_find(&ps, "fc3.bias"));
    cxt_allclose(CX_F(y), CX_F(h), y->numel, 1e-5, 1e-6, "net forward vs manual");
    /* gradients reach every parameter */
    cx_backward(cx_sum(y));
    for (int i = 0; i < ps.n; i++) CHECK_MSG(ps.t[i]->grad != NULL, "no grad for %s", ps.t[i]->name);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void test_resnet_graph(void) {
    cx_module *m;
    CHECK(cx_net_load("models/small_resnet.net", &m) == CX_OK);
    if (!m) return;
    cx_params st;
    cx_params_init(&st);
    cx_module_state(m, &st);
    CHECK(cx_params_find(&st, "b3proj.weight") && cx_params_find(&st, "b3proj.weight")->shape[2] == 1);
    CHECK(cx_params_find(&st, "b1n1.running_mean") != NULL);
    CHECK(cx_params_find(&st, "b1n1.num_batches_tracked") != NULL);
    int n = cx_net_num_layers(m);
    const cx_layer_info *last = cx_net_layer(m, n - 1);
    CHECK(last->out_ndim == 1 && last->out_shape[0] == 10);
    cx_seed(5);
    cx_tensor *x = cx_randn(CX_SHAPE(3, 1, 28, 28), 0, 1);
    cx_tensor *y = cx_module_forward(m, x);
    CHECK(y->shape[0] == 3 && y->shape[1] == 10);
    cx_params_free(&st);
    cx_module_free(m);
}

/* The block ends batchnorm -> relu and batchnorm -> add -> relu run as one
 * op (cx_batchnorm_forward_relu) in cx_module_forward, and only when the
 * batchnorm's (and the add's) output feeds nothing else; cx_net_forward_all,
 * which returns every layer's output, runs the layers one by one. Both give
 * the same output, gradients and running statistics bit for bit. */
static void test_fused_block_ends(void) {
    const char *text = "input 2 6 6\n"
                       "conv2d name=c1 out=4 k=3 p=1 bias=0\n"
                       "batchnorm name=n1\n"
                       "relu name=r1\n"                    /* fused */
                       "conv2d name=c2 out=4 k=3 p=1 bias=0\n"
                       "batchnorm name=n2\n"
                       "add name=s2 from=r1,n2\n"           /* the batchnorm second */
                       "relu name=r2\n"                    /* fused, residual r1 */
                       "conv2d name=c3 out=4 k=3 p=1 bias=0\n"
                       "batchnorm name=n3\n"
                       "relu name=r3a\n"                   /* n3 feeds two layers: not fused */
                       "add name=s3 from=n3,r3a\n"
                       "relu name=r3\n"                    /* the add's inputs: no lone batchnorm */
                       "conv2d name=c4 out=4 k=3 p=1 bias=0\n"
                       "batchnorm name=n4\n"
                       "add name=s4 from=n4,r3\n"           /* the batchnorm first */
                       "relu name=r4\n"
                       "globalavgpool\nflatten\nlinear name=fc out=3\n";
    cx_module *m = parse_ok(text);
    if (!m) return;
    /* the channels-first fusion (channels-last trunks: test_channels_last_trunk) */
    const bool cl = cx_net_channels_last();
    cx_net_set_channels_last(false);
    cx_params st, ps;
    cx_params_init(&st);
    cx_params_init(&ps);
    cx_module_state(m, &st);
    cx_module_params(m, &ps);
    /* non-trivial batch-norm parameters and running statistics */
    cx_seed(77);
    for (int i = 0; i < st.n; i++)
        if (st.t[i]->dtype == CX_F32 && strstr(st.t[i]->name, "n") == st.t[i]->name) {
            float *d = CX_F(st.t[i]);
            for (int64_t k = 0; k < st.t[i]->numel; k++) d[k] = 0.5f + cx_rand_uniform();
        }
    /* the state as it is, to run both ways from */
    float *saved[64];
    CHECK(st.n <= 64);
    for (int i = 0; i < st.n && i < 64; i++) {
        size_t bytes = (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4);
        saved[i] = malloc(bytes);
        memcpy(saved[i], st.t[i]->data, bytes);
    }
    cx_tensor *x = cx_tensor_new(CX_F32, CX_SHAPE(5, 2, 6, 6)), *R = cx_tensor_new(CX_F32, CX_SHAPE(5, 3));
    cx_fill_normal(x, 0, 1);
    cx_fill_normal(R, 0, 1);
    for (int training = 0; training < 2; training++) {
        cx_set_training(training == 1);
        float *res[2][64] = {{0}};
        for (int way = 0; way < 2; way++) {
            for (int i = 0; i < st.n && i < 64; i++)
                memcpy(st.t[i]->data, saved[i], (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4));
            for (int i = 0; i < ps.n; i++) cx_zero_grad(ps.t[i]);
            cx_tensor *y = way ? cx_net_forward_all(m, x)[cx_net_num_layers(m) - 1] : cx_module_forward(m, x);
            cx_backward(cx_sum(cx_mul(y, R)));
            /* output, every gradient and every state tensor after the step */
            res[way][0] = malloc(15 * 4);
            memcpy(res[way][0], CX_F(y), 15 * 4);
            for (int i = 0; i < st.n && i + 1 < 64; i++) {
                size_t bytes = (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4);
                const cx_tensor *p = cx_params_find(&ps, st.t[i]->name);
                res[way][i + 1] = malloc(2 * bytes);
                memcpy(res[way][i + 1], st.t[i]->data, bytes);
                if (p && p->grad) memcpy((char *)res[way][i + 1] + bytes, p->grad, bytes);
                else memset((char *)res[way][i + 1] + bytes, 0, bytes);
            }
            cx_step_reset();
        }
        CHECK_MSG(!memcmp(res[0][0], res[1][0], 15 * 4), "training %d: outputs differ", training);
        for (int i = 0; i < st.n && i + 1 < 64; i++) {
            size_t bytes = (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4);
            CHECK_MSG(!memcmp(res[0][i + 1], res[1][i + 1], 2 * bytes), "training %d: %s or its gradient differs",
                      training, st.t[i]->name);
        }
        for (int w = 0; w < 2; w++)
            for (int i = 0; i < 64; i++) free(res[w][i]);
    }
    cx_set_training(true);
    cx_tensor_free(x);
    cx_tensor_free(R);
    for (int i = 0; i < st.n && i < 64; i++) free(saved[i]);
    cx_params_free(&st);
    cx_params_free(&ps);
    cx_module_free(m);

    /* which layers fuse: the op that made the output says */
    cx_module *a = parse_ok("input 3 4 4\nbatchnorm name=n\nrelu\n");
    cx_module *b = parse_ok("input 3 4 4\nbatchnorm name=n\nrelu name=r\nadd from=n,r\nrelu\n");
    cx_module *c = parse_ok("input 3 4 4\nconv2d name=c out=3 k=1\nbatchnorm name=n\nadd from=input,n\nrelu\n");
    cx_module *d = parse_ok("input 3 4 4\nbatchnorm name=n\nadd from=n,n\nrelu\n");
    if (a && b && c && d) {
        cx_tensor *xi = cx_randn(CX_SHAPE(2, 3, 4, 4), 0, 1);
        xi->requires_grad = true;
        CHECK(!strcmp(cx_op_name(cx_module_forward(a, xi)), "batch_norm_relu"));
        CHECK(!strcmp(cx_op_name(cx_module_forward(b, xi)), "relu"));
        CHECK(!strcmp(cx_op_name(cx_module_forward(c, xi)), "batch_norm_relu"));
        CHECK(!strcmp(cx_op_name(cx_module_forward(d, xi)), "relu")); /* n + n: n feeds the add twice */
        CHECK(!strcmp(cx_op_name(cx_net_forward_all(a, xi)[2]), "relu"));
        cx_step_reset();
    }
    cx_module_free(a);
    cx_module_free(b);
    cx_module_free(c);
    cx_module_free(d);
    cx_net_set_channels_last(cl);
}

static void test_add_concat(void) {
    cx_module *m = parse_ok("input 2 5 5\n"
                            "conv2d name=a out=3 k=3 p=1\n"
                            "conv2d name=b out=3 k=1 from=input\n"
                            "add name=s from=a,b\n"
                            "concat name=c from=s,input\n"
                            "globalavgpool\nflatten\n");
    if (!m) return;
    const cx_layer_info *c = cx_net_layer(m, 4);
    CHECK(c->out_shape[0] == 5 && c->out_shape[1] == 5);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_seed(9);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 2, 5, 5), 0, 1);
    cx_tensor *y = cx_module_forward(m, x);
    cx_tensor *a = cx_conv2d(x, cx_params_find(&ps, "a.weight"), cx_params_find(&ps, "a.bias"), 1, 1, 1, 1, 1, 1, 1);
    cx_tensor *b = cx_conv2d(x, cx_params_find(&ps, "b.weight"), cx_params_find(&ps, "b.bias"), 1, 1, 0, 0, 1, 1, 1);
    cx_tensor *parts[2] = {cx_add(a, b), x};
    cx_tensor *ref = cx_flatten(cx_global_avg_pool2d(cx_concat(parts, 2, 1)));
    CHECK(cx_same_shape(y, ref));
    cxt_allclose(CX_F(y), CX_F(ref), y->numel, 1e-5, 1e-6, "add/concat graph");
    /* receptive field at the add is the larger of its inputs */
    CHECK_NEAR(cx_net_layer(m, 3)->rf[0], 3, 0);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void test_vectors_and_defaults(void) {
    cx_module *m = parse_ok("# an MLP\ninput 4\nlinear out=8\ntanh\ndropout p=0.1\nlinear out=3 bias=0\n");
    if (!m) return;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    CHECK(ps.n == 3);
    CHECK(cx_params_find(&ps, "fc1.weight") && cx_params_find(&ps, "fc2.weight"));
    CHECK(cx_params_find(&ps, "fc2.bias") == NULL);
    CHECK(cx_net_layer(m, 1)->spatial == 0);
    cx_params_free(&ps);
    cx_module_free(m);
}

static void test_errors(void) {
    expect_error("", "empty network");
    expect_error("conv2d out=3 k=3\n", ":1: the first line must be 'input");
    expect_error("input 1 8 8\nconv2x out=3 k=3\n", ":2: unknown layer 'conv2x'");
    expect_error("input 1 8 8\nconv2d k=3\n", ":2: conv2d needs out=");
    expect_error("input 1 8 8\nconv2d out=3 k=3 zz=1\n", ":2: conv2d: unknown key 'zz'");
    expect_error("input 1 8 8\nconv2d out=three k=3\n", "out=three is not an integer");
    expect_error("input 1 8 8\nconv2d out=3 k=3 from=nope\n", "no earlier layer is named 'nope'");
    expect_error("input 1 8 8\nrelu name=a\nrelu name=a\n", ":3: duplicate name 'a'");
    expect_error("input 1 8 8\nconv2d out=3 k=3\nadd from=conv1,input\n", ":3: add: inputs do not match");
    expect_error("input 1 8 8\nadd from=input\n", "add needs from=a,b");
    expect_error("input 1 4 4\nconv2d out=3 k=7\n", ":2:"); /* kernel larger than input: trapped fatal */
    expect_error("input 8\nconv2d out=3 k=3\n", "conv2d needs a [C, spatial...] input");
    expect_error("input 1 8 8\n", "no layers");
    expect_error("input 1 x 8\nrelu\n", "'x' is not a positive size");
    expect_error("input 1 8 8\nlinear out=4 out=5\n", "out given twice");
    expect_error("input 1 8 8\nupsample mode=cubic scale=2\n", "mode=cubic");
    /* the library is usable after trapped errors (handler restored, grad mode on) */
    CHECK(cx_grad_enabled());
    CHECK(cx_get_error_handler(NULL) == NULL);
    cx_module *m;
    CHECK(cx_net_load("/nonexistent/x.net", &m) == CX_ERR_IO);
    CHECK(m == NULL);
}

/* ASan: a huge request returns NULL (as malloc does) instead of stopping the
 * test, so that the trapped out-of-memory path can be checked for leaks. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* Issue 14, item 16: a layer whose allocation fails leaks nothing (the
 * LeakSanitizer run checks it), and with the weights at hand the shapes are
 * compared before a layer is built. */
static void test_huge_layers(void) {
    const char *huge = "input 1000000\nlinear name=fc out=16777216\n";
    expect_error(huge, ":2:");
    CHECK_MSG(strstr(cx_last_error(), "out of memory") != NULL, "%s", cx_last_error());
    expect_error("input 1000000 1 1\nconv2d name=c out=1048576 k=1\n", "out of memory");
    /* the file's tensors are compared first: no allocation of 64 TB */
    char path[] = "/tmp/cx_netdef_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(1, 1)), *cw = cx_tensor_new(CX_F32, CX_SHAPE(4, 1, 3, 3));
    cx_tensor *b = cx_tensor_new(CX_F32, CX_SHAPE(1));
    cx_tensor *ts[3] = {w, b, cw};
    const char *names[3] = {"fc.weight", "fc.bias", "c.weight"};
    CHECK(cx_st_save(path, ts, names, 3, NULL, NULL, 0) == CX_OK);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(path, &f) == CX_OK);
    cx_module *m = (cx_module *)1;
    double t0 = cx_now();
    CHECK(cx_net_parse_for(huge, "m.safetensors", f, &m) == CX_ERR_FORMAT && m == NULL);
    CHECK_MSG(strstr(cx_last_error(), "m.safetensors:2: tensor 'fc.weight' is [1, 1] in the file, but this layer "
                                      "needs [16777216, 1000000]") != NULL, "%s", cx_last_error());
    CHECK(cx_now() - t0 < 5);
    CHECK(cx_net_parse_for("input 2 8 8\nconv2d name=c out=4 k=3\n", "m.safetensors", f, &m) == CX_ERR_FORMAT);
    CHECK_MSG(strstr(cx_last_error(), ":2: tensor 'c.weight' is [4, 1, 3, 3] in the file, but this layer needs "
                                      "[4, 2, 3, 3]") != NULL, "%s", cx_last_error());
    CHECK(cx_net_parse_for("input 8\nlinear name=other out=2\n", "m.safetensors", f, &m) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "tensor 'other.weight' is missing from the file") != NULL);
    /* matching shapes build, and load */
    CHECK(cx_net_parse_for("input 1 6 6\nconv2d name=c out=4 k=3\nflatten\nlinear name=fc out=1 bias=1\n",
                           "m.safetensors", f, &m) == CX_ERR_FORMAT); /* fc needs [1, 64] */
    CHECK(cx_net_parse_for("input 1 1 1\nconv2d name=c out=4 k=3 p=1\nglobalavgpool\n", "m.safetensors", f, &m) ==
          CX_OK);
    if (m != (cx_module *)1 && m) cx_module_free(m);
    cx_st_free(f);
    unlink(path);
    cx_tensor_free(w);
    cx_tensor_free(b);
    cx_tensor_free(cw);
}

static void test_summary_output(void) {
    cx_module *m;
    CHECK(cx_net_load("models/notes_example.net", &m) == CX_OK);
    if (!m) return;
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    cx_net_summary(m, f);
    fclose(f);
    CHECK(strstr(buf, "[10, 32, 32]") != NULL);
    CHECK(strstr(buf, "760") != NULL);
    CHECK(strstr(buf, "5x5") != NULL);
    CHECK(strstr(buf, "total: 760 parameters") != NULL);
    cx_module_free(m);
}


/* Channels-last trunks (cx_net_set_channels_last): the same outputs,
 * gradients and batch-norm state as the channels-first run, to rounding,
 * in training and eval mode, for a 1-channel input (reshaped) and a
 * 3-channel one (permuted); a network with a max pool before its
 * globalavgpool keeps running channels first (bit for bit). */
static void test_channels_last_trunk(void) {
    static const char *texts[3] = {
        "input 1 9 9\nconv2d name=stem out=16 k=3 p=1 bias=0\nbatchnorm name=sn\nrelu name=s0\n"
        "conv2d name=c1 out=16 k=3 p=1 bias=0\nbatchnorm name=n1\nadd name=a1 from=n1,s0\nrelu name=r1\n"
        "conv2d name=c2 out=32 k=3 s=2 p=1 bias=0\nbatchnorm name=n2\nrelu\n"
        "conv2d name=c3 out=32 k=3 p=1 bias=0\nbatchnorm name=n3\n"
        "conv2d name=pj out=32 k=1 s=2 bias=0 from=r1\nbatchnorm name=pn\nadd name=a3 from=n3,pn\nrelu name=r3\n"
        "globalavgpool\nflatten\nlinear name=fc out=3\n",
        "input 3 8 7\nconv2d name=c1 out=20 k=3 p=1\nbatchnorm name=n1\ntanh\nconv2d name=c2 out=8 k=2 s=2\n"
        "relu\nglobalavgpool\nflatten\nlinear name=fc out=3\n",
        "input 3 8 8\nconv2d name=c1 out=8 k=3 p=1\nmaxpool2d k=2\nbatchnorm name=n1\nrelu\nglobalavgpool\nflatten\n"
        "linear name=fc out=3\n",
    };
    const bool cl0 = cx_net_channels_last();
    for (int t = 0; t < 3; t++) {
        cx_module *m = parse_ok(texts[t]);
        if (!m) return;
        int ish[4];
        const int ind = cx_net_input_shape(m, ish);
        CHECK(ind == 3);
        cx_params st, ps;
        cx_params_init(&st);
        cx_params_init(&ps);
        cx_module_state(m, &st);
        cx_module_params(m, &ps);
        float *saved[64];
        CHECK(st.n <= 64);
        for (int i = 0; i < st.n && i < 64; i++) {
            size_t bytes = (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4);
            saved[i] = malloc(bytes);
            memcpy(saved[i], st.t[i]->data, bytes);
        }
        cx_tensor *x = cx_tensor_new(CX_F32, CX_SHAPE(4, ish[0], ish[1], ish[2])), *R = cx_tensor_new(CX_F32, CX_SHAPE(4, 3));
        cx_seed(31);
        cx_fill_normal(x, 0.5f, 1);
        cx_fill_normal(R, 0, 1);
        for (int training = 0; training < 2; training++) {
            cx_set_training(training == 1);
            float *res[2][65] = {{0}};
            for (int way = 0; way < 2; way++) {
                for (int i = 0; i < st.n && i < 64; i++)
                    memcpy(st.t[i]->data, saved[i], (size_t)st.t[i]->numel * (st.t[i]->dtype == CX_I64 ? 8 : 4));
                for (int i = 0; i < ps.n; i++) cx_zero_grad(ps.t[i]);
                cx_net_set_channels_last(way == 1);
                cx_tensor *y = cx_module_forward(m, x);
                cx_backward(cx_sum(cx_mul(y, R)));
                res[way][0] = malloc(12 * 4);
                memcpy(res[way][0], CX_F(y), 12 * 4);
                for (int i = 0; i < st.n && i + 1 < 65; i++) {
                    size_t n = (size_t)st.t[i]->numel;
                    const cx_tensor *p = cx_params_find(&ps, st.t[i]->name);
                    res[way][i + 1] = calloc(2 * n, 8);
                    if (st.t[i]->dtype == CX_I64) {
                        for (size_t k = 0; k < n; k++) res[way][i + 1][k] = (float)CX_I64P(st.t[i])[k];
                        continue;
                    }
                    memcpy(res[way][i + 1], st.t[i]->data, n * 4);
                    if (p && p->grad) memcpy(res[way][i + 1] + n, p->grad, n * 4);
                }
                cx_step_reset();
            }
            cx_net_set_channels_last(cl0);
            char what[96];
            snprintf(what, sizeof what, "net %d training %d: output", t, training);
            if (t == 2) CHECK_MSG(!memcmp(res[0][0], res[1][0], 12 * 4), "%s: not bit for bit", what);
            else cxt_allclose(res[1][0], res[0][0], 12, 1e-4, 1e-5, what);
            for (int i = 0; i < st.n && i + 1 < 65; i++) {
                snprintf(what, sizeof what, "net %d training %d: %s and its gradient", t, training, st.t[i]->name);
                cxt_allclose(res[1][i + 1], res[0][i + 1], (long)(2 * st.t[i]->numel), 1e-3, 1e-5, what);
            }
            for (int w = 0; w < 2; w++)
                for (int i = 0; i < 65; i++) free(res[w][i]);
        }
        cx_set_training(true);
        for (int i = 0; i < st.n && i < 64; i++) free(saved[i]);
        cx_params_free(&st);
        cx_params_free(&ps);
        cx_tensor_free(x);
        cx_tensor_free(R);
        cx_module_free(m);
    }
}

int main(void) {
    RUN(test_notes_example);
    RUN(test_lenet);
    RUN(test_resnet_graph);
    RUN(test_add_concat);
    RUN(test_fused_block_ends);
    RUN(test_channels_last_trunk);
    RUN(test_vectors_and_defaults);
    RUN(test_errors);
    RUN(test_summary_output);
    RUN(test_huge_layers);
    TEST_END();
}
