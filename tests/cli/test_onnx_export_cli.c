/* cortex onnx export, driven as a subprocess (path in $CORTEX_BIN): a .net
 * model and an MLP saved as the CLI saves them (safetensors with
 * cortex.arch metadata) are exported; `cortex onnx run --save` on the file
 * gives Cortex's forward within 1e-5; an LSTM charlm exports with its LSTM
 * nodes; bad arguments, an unknown architecture and an unwritable path give
 * one error line and leave no file. */
#include <stdint.h>

#include <cortex/charlm.h>
#include "cli_harness.h"

/* Export `file` (a model saved here), run it on x with `cortex onnx run
 * --save` and compare with ref. */
static void export_and_run(const char *file, cx_tensor *x, const cx_tensor *ref) {
    char model[512], onnx[600], xin[512], pre[512], outp[600];
    tmp_path(model, sizeof model, file);
    snprintf(onnx, sizeof onnx, "%s.onnx", model);
    tmp_path(xin, sizeof xin, "x.pb");
    tmp_path(pre, sizeof pre, "cx_");
    CHECK(cx_onnx_write_tensor(xin, x) == CX_OK);
    run_result r;
    run(&r, "export %s %s", model, onnx);
    CHECK_MSG(r.code == 0, "export: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "wrote "));
    run(&r, "run %s --input %s --save %s --limit 0", onnx, xin, pre);
    CHECK_MSG(r.code == 0, "run: exit %d: %s", r.code, r.err);
    snprintf(outp, sizeof outp, "%soutput.pb", pre);
    cx_tensor *y = NULL;
    CHECK(cx_onnx_read_tensor(outp, &y) == CX_OK);
    if (!y) return;
    CHECK(cx_same_shape(y, ref));
    cxt_allclose(CX_F(y), CX_F(ref), (long)ref->numel, 0, 1e-5, file);
    cx_tensor_free(y);
}

static void test_net_model(void) {
    const char *text = "input 1 8 8\nconv2d out=3 k=3 p=1\nbatchnorm\nrelu\nmaxpool2d k=2\nflatten\nlinear out=4\n";
    cx_module *net;
    CHECK(cx_net_parse(text, "t.net", &net) == CX_OK);
    char path[512];
    tmp_path(path, sizeof path, "net.safetensors");
    const char *k[2] = {"cortex.arch", "cortex.net"}, *v[2] = {"net", text};
    CHECK(cx_module_save(net, path, k, v, 2) == CX_OK);
    cx_tensor *x = cx_randn(CX_SHAPE(2, 1, 8, 8), 0, 1);
    cx_set_training(false);
    cx_tensor *ref = cx_module_forward(net, x);
    cx_set_training(true);
    export_and_run("net.safetensors", x, ref);
    cx_module_free(net);
}

static void test_mlp_model(void) {
    cx_module *mlp = cx_mlp_new((const int[]){6, 5, 3}, 3, CX_ACT_TANH, 0);
    char path[512];
    tmp_path(path, sizeof path, "mlp.safetensors");
    const char *k[3] = {"cortex.arch", "cortex.sizes", "cortex.act"}, *v[3] = {"mlp", "6,5,3", "tanh"};
    CHECK(cx_module_save(mlp, path, k, v, 3) == CX_OK);
    cx_tensor *x = cx_randn(CX_SHAPE(4, 6), 0, 1);
    cx_tensor *ref = cx_module_forward(mlp, x);
    export_and_run("mlp.safetensors", x, ref);
    cx_module_free(mlp);
}

static void test_charlm_model(void) {
    cx_charlm_config c = {.vocab = 6, .embed = 4, .hidden = 5, .layers = 2, .dropout = 0};
    cx_module *lm = cx_charlm_new(&c);
    char path[512], onnx[512];
    tmp_path(path, sizeof path, "lm.safetensors");
    tmp_path(onnx, sizeof onnx, "lm.onnx");
    CHECK(cx_charlm_save(path, lm, NULL, NULL, NULL, NULL, 0) == CX_OK);
    run_result r;
    run(&r, "export %s %s --opset 17", path, onnx);
    CHECK_MSG(r.code == 0, "export: exit %d: %s", r.code, r.err);
    run(&r, "info %s", onnx);
    CHECK(r.code == 0 && strstr(r.out, "opset 17") && strstr(r.out, "  LSTM                    2"));
    CHECK(strstr(r.out, "input: int64 [?, ?]") && strstr(r.out, "output: float [?, ?, 6]"));
    cx_module_free(lm);
}

static void test_errors(void) {
    run_result r;
    run(&r, "export --help");
    CHECK(r.code == 0 && strstr(r.out, "MODEL.safetensors OUT.onnx"));
    run(&r, "export onlyone.safetensors");
    EXPECT_ERR(&r, "one argument", "expected MODEL.safetensors and OUT.onnx");
    char path[512], out[512];
    tmp_path(path, sizeof path, "net.safetensors");
    run(&r, "export %s /nonexistent_dir/x.onnx", path);
    EXPECT_ERR(&r, "unwritable", "/nonexistent_dir/x.onnx");
    run(&r, "export %s %s --opset 12", path, "x.onnx");
    EXPECT_ERR(&r, "opset", "--opset");
    /* a safetensors file of no known architecture */
    tmp_path(path, sizeof path, "other.safetensors");
    cx_tensor *t = cx_tensor_new(CX_F32, CX_SHAPE(2));
    const char *k[1] = {"cortex.arch"}, *v[1] = {"frobnet"};
    const char *nm[1] = {"w"};
    CHECK(cx_st_save(path, &t, nm, 1, k, v, 1) == CX_OK);
    cx_tensor_free(t);
    tmp_path(out, sizeof out, "other.onnx");
    run(&r, "export %s %s", path, out);
    EXPECT_ERR(&r, "unknown arch", "frobnet");
    CHECK(access(out, F_OK) != 0);
    run(&r, "export /nonexistent/m.safetensors %s", out);
    EXPECT_ERR(&r, "missing model", "/nonexistent/m.safetensors");
    CHECK(access(out, F_OK) != 0);
}

int main(void) {
    if (!cli_setup("onnx_export_cli")) return 1;
    cli_prefix = "onnx ";
    cli_err_prefix = "cortex onnx";
    cx_seed(3);
    RUN(test_net_model);
    RUN(test_mlp_model);
    RUN(test_charlm_model);
    RUN(test_errors);
    cli_teardown();
    TEST_END();
}
