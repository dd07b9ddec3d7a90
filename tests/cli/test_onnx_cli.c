/* cortex onnx info / run, driven as a subprocess (path in $CORTEX_BIN): info
 * prints the opset, inputs and outputs with shapes and the nodes per op of
 * the CNN fixture (tools/gen_onnx_fixtures.py); run on a TensorProto input
 * written here prints PyTorch's outputs; bad files and flags give one error
 * line naming the problem. */
#include <stdint.h>

#include "cli_harness.h"
#include "onnx.pb-c.h"

#define FIX "tests/fixtures/onnx/"

static bool write_pb(const char *path, const cx_tensor *t) {
    Onnx__TensorProto p;
    onnx__tensor_proto__init(&p);
    int64_t dims[CX_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = t->shape[i];
    p.n_dims = (size_t)t->ndim;
    p.dims = dims;
    p.has_data_type = 1;
    p.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    p.has_raw_data = 1;
    p.raw_data.data = t->data;
    p.raw_data.len = (size_t)t->numel * 4;
    size_t n = onnx__tensor_proto__get_packed_size(&p);
    uint8_t *buf = malloc(n);
    onnx__tensor_proto__pack(&p, buf);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(buf, 1, n, f) == n;
    if (f) ok &= fclose(f) == 0;
    free(buf);
    return ok;
}

static void test_info(void) {
    run_result r;
    run(&r, "info " FIX "cnn.onnx");
    CHECK_MSG(r.code == 0, "info: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "opset 13, made by pytorch"));
    CHECK(strstr(r.out, "  x: float [2, 2, 8, 8]") && strstr(r.out, "  y: float [2, 3]"));
    CHECK(strstr(r.out, "nodes: 19"));
    CHECK(strstr(r.out, "  Conv                    3") && strstr(r.out, "  BatchNormalization      1"));
    CHECK(strstr(r.out, "unsupported: none"));
    run(&r, "info " FIX "mlp.onnx");
    CHECK(r.code == 0 && strstr(r.out, "  x: float [?, 6]") && strstr(r.out, "opset 11"));
    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "cortex onnx info") && strstr(r.out, "cortex onnx run"));
    run(&r, "run --help");
    CHECK(r.code == 0 && strstr(r.out, "--input"));
}

static void test_run(void) {
    cx_st_file *io;
    CHECK(cx_st_load(FIX "mlp_io.safetensors", &io) == CX_OK);
    if (!io) return;
    char x[512];
    tmp_path(x, sizeof x, "x.pb");
    CHECK(write_pb(x, cx_st_get(io, "x")));
    run_result r;
    run(&r, "run " FIX "mlp.onnx --input %s", x);
    CHECK_MSG(r.code == 0, "run: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "y: F32 [4, 5]\n"));
    /* the first row, as printed (6 significant digits), equals PyTorch's */
    const float *y = CX_F(cx_st_get(io, "y"));
    const char *p = strchr(r.out, '\n');
    for (int i = 0; p && i < 5; i++) {
        char *end;
        double v = strtod(p, &end);
        CHECK_MSG(end != p && fabs(v - y[i]) <= 1e-5 + 1e-5 * fabs(y[i]), "value %d: %g vs %g", i, v, (double)y[i]);
        p = end;
    }
    run(&r, "run " FIX "mlp.onnx --input %s --limit 3", x);
    CHECK(r.code == 0 && strstr(r.out, "(17 more values"));
    /* errors: one line each */
    run(&r, "run " FIX "mlp.onnx");
    EXPECT_ERR(&r, "no input", "has 1 input ('x'), 0 --input given");
    run(&r, "run " FIX "cnn.onnx --input %s", x);
    EXPECT_ERR(&r, "wrong shape", "input 'x' has shape [4, 6]", "[2, 2, 8, 8]");
    run(&r, "run " FIX "mlp.onnx --input " FIX "mlp.onnx");
    EXPECT_ERR(&r, "a model as a tensor", "mlp.onnx");
    /* --batch 3: slices of 3 and 1 rows, the same printed and saved outputs */
    {
        char whole[sizeof r.out], a[512], b[512], ta[4096], tb[4096];
        tmp_path(a, sizeof a, "whole_");
        tmp_path(b, sizeof b, "sliced_");
        run(&r, "run " FIX "mlp.onnx --input %s --save %s", x, a);
        CHECK(r.code == 0);
        snprintf(whole, sizeof whole, "%s", r.out);
        run(&r, "run " FIX "mlp.onnx --input %s --batch 3 --save %s", x, b);
        CHECK_MSG(r.code == 0, "--batch 3: exit %d: %s", r.code, r.err);
        CHECK_MSG(!strcmp(whole, r.out), "--batch 3 printed\n%s\nwithout it\n%s", r.out, whole);
        tmp_path(a, sizeof a, "whole_y.pb");
        tmp_path(b, sizeof b, "sliced_y.pb");
        size_t na = read_text(a, ta, sizeof ta), nb = read_text(b, tb, sizeof tb);
        CHECK(na > 80 && na == nb && !memcmp(ta, tb, na));
        /* a model with a fixed batch dimension: the slice's shape is refused, naming the rows */
        char x2[512];
        tmp_path(x2, sizeof x2, "x2.pb");
        cx_tensor *t = cx_tensor_new(CX_F32, CX_SHAPE(2, 2, 8, 8));
        CHECK(write_pb(x2, t));
        cx_tensor_free(t);
        run(&r, "run " FIX "cnn.onnx --input %s --batch 1", x2);
        EXPECT_ERR(&r, "fixed batch", "rows 0-0", "input 'x'");
    }
    run(&r, "run " FIX "mlp.onnx --input %s --limit x", x);
    EXPECT_ERR(&r, "bad limit", "--limit");
    run(&r, "info " FIX "mlp_io.safetensors");
    EXPECT_ERR(&r, "not a model", "mlp_io.safetensors");
    run(&r, "info /nonexistent/model.onnx");
    EXPECT_ERR(&r, "missing file", "cannot open");
    run(&r, "frob");
    CHECK(r.code == 2 && strstr(r.err, "usage: cortex onnx info"));
    cx_st_free(io);
}

/* cortex summary MODEL.onnx prints what onnx info prints */
static void test_summary(void) {
    run_result r;
    const char *prefix = cli_prefix;
    cli_prefix = "";
    run(&r, "summary " FIX "cnn.onnx");
    CHECK_MSG(r.code == 0, "summary: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "opset 13") && strstr(r.out, "nodes: 19") && strstr(r.out, "unsupported: none"));
    run(&r, "summary " FIX "no-such-model.onnx");
    CHECK(r.code == 1 && strstr(r.err, "cortex summary:") && strstr(r.err, "no-such-model.onnx"));
    cli_prefix = prefix;
}

int main(void) {
    if (!cli_setup("onnx_cli")) return 1;
    cli_prefix = "onnx ";
    cli_err_prefix = "cortex onnx";
    RUN(test_info);
    RUN(test_run);
    RUN(test_summary);
    cli_teardown();
    TEST_END();
}
