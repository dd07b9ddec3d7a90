/* libFuzzer target: ONNX models (cx_onnx_load_buffer, and cx_onnx_load on the
 * same bytes: both must agree), then, when the model loads and every node is
 * supported and the model is small (64 nodes, 4096 parameter values), one
 * run on zero inputs of the declared shapes (symbolic dimensions 1, at most
 * 4096 values each); and the same bytes as a
 * TensorProto (cx_onnx_tensor_from_buffer). Aborts on any inconsistency: a
 * status without a message, a model whose counts disagree, a run that
 * succeeds without outputs. */
#include "fuzz_common.h"

static cx_tensor *zeros_for(const cx_onnx_value_info *v) {
    if (v->ndim < 0 || !v->dtype_ok) return NULL;
    int shape[CX_MAX_DIMS];
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) {
        shape[i] = v->shape[i] < 0 ? 1 : (int)v->shape[i];
        n *= shape[i];
        if (n > 4096) return NULL;
    }
    cx_tensor *t = cx_empty(v->dtype, shape, v->ndim);
    memset(t->data, 0, (size_t)t->numel * cx_dtype_size(v->dtype));
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    cx_onnx_model *m = NULL, *m2 = NULL;
    cx_status st = cx_onnx_load_buffer(data, size, "fuzz", &m);
    cxf_check_error(st);
    if ((st == CX_OK) != (m != NULL)) abort();
    cx_status st2 = cx_onnx_load(cxf_file("onnx", data, size), &m2);
    cxf_check_error(st2);
    if (st2 != st) abort();
    cx_onnx_free(m2);
    if (m) {
        int bad = 0, n = cx_onnx_num_nodes(m);
        for (int i = 0; i < n; i++) {
            if (!cx_onnx_node_op(m, i) || !cx_onnx_node_name(m, i)) abort();
            bad += cx_onnx_node_unsupported(m, i) != NULL;
        }
        if (bad != cx_onnx_num_unsupported(m) || cx_onnx_num_outputs(m) < 1) abort();
        int ni = cx_onnx_num_inputs(m), no = cx_onnx_num_outputs(m);
        /* run small models only: a file can describe outputs of any size */
        if (!bad && ni <= 16 && no <= 16 && n <= 64 && cx_params_count(cx_onnx_params(m)) <= 4096) {
            cx_tensor *in[16], *out[16];
            bool ok = true;
            for (int i = 0; i < ni && ok; i++) ok = (in[i] = zeros_for(cx_onnx_input(m, i))) != NULL;
            if (ok) {
                st = cx_onnx_run(m, in, out);
                cxf_check_error(st);
                for (int i = 0; i < no; i++)
                    if ((st == CX_OK) != (out[i] != NULL)) abort();
            }
        }
        cx_onnx_free(m);
    }
    cx_tensor *t = NULL;
    st = cx_onnx_tensor_from_buffer(data, size, "fuzz", &t);
    cxf_check_error(st);
    if ((st == CX_OK) != (t != NULL)) abort();
    cx_tensor_free(t);
    cx_step_reset();
    return 0;
}
