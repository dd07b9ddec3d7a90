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

int main(void) {
    RUN(test_notes_example);
    RUN(test_lenet);
    RUN(test_resnet_graph);
    RUN(test_add_concat);
    RUN(test_vectors_and_defaults);
    RUN(test_errors);
    RUN(test_summary_output);
    RUN(test_huge_layers);
    TEST_END();
}
