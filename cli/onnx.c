/* cortex onnx -- ONNX models (cortex/onnx.h):
 *   info    opset, inputs and outputs with shapes, nodes per op, unsupported nodes
 *   run     run the model on TensorProto (.pb) inputs and print the outputs
 *   export  write a model saved by Cortex (a .net network, an MLP, an LSTM charlm) as ONNX */
#include "cli.h"
#include <cortex/charlm.h>
#include <stdlib.h>
#include <string.h>

int cmd_onnx(int argc, char **argv);

static const char *USAGE = "usage: cortex onnx info MODEL.onnx\n"
                           "       cortex onnx run MODEL.onnx --input X.pb [--input Y.pb ...] [--limit N] [--threads T] [--batch B]\n"
                           "       cortex onnx export MODEL.safetensors OUT.onnx [--net NET.net] [--opset N]\n";

static int onnx_info(int argc, char **argv) {
    if (argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: cortex onnx info MODEL.onnx\n\n"
               "Read and check an ONNX model (opsets 1-17) and print its opset, its inputs and\n"
               "outputs with their shapes ('?' for a symbolic dimension), the number of nodes of\n"
               "each op and the nodes Cortex cannot run, each with the reason.\n");
        return 0;
    }
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "cortex onnx info: expected one ONNX model file (see 'cortex onnx info --help')\n");
        return 2;
    }
    cx_onnx_model *m;
    if (cx_onnx_load(argv[0], &m)) {
        fprintf(stderr, "cortex onnx info: %s\n", cx_last_error());
        return 1;
    }
    cx_onnx_print_info(m, stdout);
    cx_onnx_free(m);
    return 0;
}

static void print_tensor(const char *name, const cx_tensor *t, long limit) {
    char sh[128];
    printf("%s: %s %s\n", name, cx_dtype_name(t->dtype), cx_shape_str(t, sh, sizeof sh));
    int64_t n = t->numel < limit ? t->numel : limit;
    int row = t->ndim ? t->shape[t->ndim - 1] : 1;
    if (row < 1 || row > 10) row = 10;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == CX_F32) printf("%s%.6g", i % row ? " " : "  ", (double)CX_F(t)[i]);
        else if (t->dtype == CX_I32) printf("%s%d", i % row ? " " : "  ", (int)CX_I32P(t)[i]);
        else printf("%s%lld", i % row ? " " : "  ", (long long)CX_I64P(t)[i]);
        if ((i + 1) % row == 0 || i + 1 == n) printf("\n");
    }
    if (n < t->numel) printf("  ... (%lld more values; --limit N prints more)\n", (long long)(t->numel - n));
}

/* --batch: the inputs' rows [r0, r0 + b) at a time (every input has the
 * same first dimension), each output's slice copied into out[i] (allocated
 * at the first slice; the arena is reset after each). False (message
 * printed) on a failed run or when an output does not follow the batch. */
static bool run_sliced(cx_onnx_model *m, cx_tensor **in, int ni, cx_tensor **out, int no, int b) {
    const int n = in[0]->shape[0];
    for (int i = 1; i < ni; i++)
        if (in[i]->ndim < 1 || in[i]->shape[0] != n) {
            fprintf(stderr, "cortex onnx run: --batch needs every input to have the same first dimension "
                            "('%s' has %d rows, '%s' %d)\n",
                    cx_onnx_input(m, 0)->name, n, cx_onnx_input(m, i)->name, in[i]->ndim ? in[i]->shape[0] : 0);
            return false;
        }
    cx_tensor **sl = calloc((size_t)ni, sizeof *sl), **o = calloc((size_t)no + 1, sizeof *o);
    bool ok = sl && o;
    for (int r0 = 0; ok && r0 < n; r0 += b) {
        const int rows = n - r0 < b ? n - r0 : b;
        for (int i = 0; i < ni; i++) {
            int shape[CX_MAX_DIMS];
            memcpy(shape, in[i]->shape, (size_t)in[i]->ndim * sizeof *shape);
            shape[0] = rows;
            sl[i] = cx_tensor_new(in[i]->dtype, shape, in[i]->ndim);
            const size_t row = (size_t)(in[i]->numel / n) * cx_dtype_size(in[i]->dtype);
            memcpy(sl[i]->data, (const char *)in[i]->data + (size_t)r0 * row, (size_t)rows * row);
        }
        if (cx_onnx_run(m, sl, o)) {
            fprintf(stderr, "cortex onnx run: rows %d-%d: %s\n", r0, r0 + rows - 1, cx_last_error());
            ok = false;
        }
        for (int i = 0; ok && i < no; i++) {
            if (o[i]->ndim < 1 || o[i]->shape[0] != rows) {
                fprintf(stderr, "cortex onnx run: output '%s' of a %d-row slice has %s %d rows: the model does "
                                "not run example by example; run it without --batch\n",
                        cx_onnx_output(m, i)->name, rows, o[i]->ndim ? "" : "no batch dimension, not",
                        o[i]->ndim ? o[i]->shape[0] : rows);
                ok = false;
                break;
            }
            if (!out[i]) {
                int shape[CX_MAX_DIMS];
                memcpy(shape, o[i]->shape, (size_t)o[i]->ndim * sizeof *shape);
                shape[0] = n;
                out[i] = cx_tensor_new(o[i]->dtype, shape, o[i]->ndim);
            } else if (out[i]->dtype != o[i]->dtype || out[i]->ndim != o[i]->ndim ||
                       out[i]->numel / n != o[i]->numel / rows) {
                fprintf(stderr, "cortex onnx run: output '%s' changes shape between slices; run it without --batch\n",
                        cx_onnx_output(m, i)->name);
                ok = false;
                break;
            }
            const size_t row = (size_t)(o[i]->numel / rows) * cx_dtype_size(o[i]->dtype);
            memcpy((char *)out[i]->data + (size_t)r0 * row, o[i]->data, (size_t)rows * row);
        }
        for (int i = 0; i < ni; i++) cx_tensor_free(sl[i]), sl[i] = NULL;
        cx_step_reset();
    }
    free(sl);
    free(o);
    return ok;
}

static int onnx_run(int argc, char **argv) {
    const char *model = NULL, *save = NULL;
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    int n_in = 0, threads = 1, rc = 2;
    long limit = 100, batch = 0;
    if (!inputs) return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("%s\n"
                   "Run an ONNX model on inputs stored as ONNX TensorProto files (.pb, as in ONNX's\n"
                   "test data: one --input per graph input, in the model's order; float, int32 or\n"
                   "int64) and print each output: name, type, shape and values.\n\n"
                   "options:\n"
                   "  --input X.pb           a graph input (repeat for each)\n"
                   "  --limit N              values printed per output (default 100)\n"
                   "  --threads T            OpenMP and BLAS threads (default 1; 0 = all cores)\n"
                   "  --save PREFIX          also write each output to PREFIX<name>.pb (TensorProto)\n"
                   "  --batch B              run the inputs B rows at a time (slices of their first\n"
                   "                         dimension, the batch) and join the outputs: memory for\n"
                   "                         B examples instead of all (default 0: all at once)\n"
                   "  --help                 show this help\n",
                   "usage: cortex onnx run MODEL.onnx --input X.pb [--input Y.pb ...] [--limit N] [--threads T] [--batch B]");
            free(inputs);
            return 0;
        }
        if (!strcmp(a, "--input") || !strcmp(a, "--limit") || !strcmp(a, "--threads") || !strcmp(a, "--save") ||
            !strcmp(a, "--batch")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "cortex onnx run: %s needs a value\n", a);
                goto out;
            }
            const char *v = argv[++i];
            char *end;
            if (!strcmp(a, "--input")) inputs[n_in++] = v;
            else if (!strcmp(a, "--save")) save = v;
            else {
                long x = strtol(v, &end, 10);
                if (*end || end == v || x < 0 || x > 1L << 30) {
                    fprintf(stderr, "cortex onnx run: %s must be a whole number >= 0, got '%s'\n", a, v);
                    goto out;
                }
                if (!strcmp(a, "--limit")) limit = x;
                else if (!strcmp(a, "--batch")) batch = x;
                else threads = (int)x;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "cortex onnx run: unknown option '%s' (see 'cortex onnx run --help')\n", a);
            goto out;
        } else if (!model) {
            model = a;
        } else {
            fprintf(stderr, "cortex onnx run: unexpected argument '%s' (inputs are given with --input)\n", a);
            goto out;
        }
    }
    if (!model) {
        fprintf(stderr, "cortex onnx run: expected an ONNX model file (see 'cortex onnx run --help')\n");
        goto out;
    }
    cx_set_threads(threads);
    cx_onnx_model *m;
    if (cx_onnx_load(model, &m)) {
        fprintf(stderr, "cortex onnx run: %s\n", cx_last_error());
        rc = 1;
        goto out;
    }
    int ni = cx_onnx_num_inputs(m), no = cx_onnx_num_outputs(m);
    if (n_in != ni) {
        fprintf(stderr, "cortex onnx run: %s has %d input%s (", model, ni, ni == 1 ? "" : "s");
        for (int i = 0; i < ni; i++) fprintf(stderr, "%s'%s'", i ? ", " : "", cx_onnx_input(m, i)->name);
        fprintf(stderr, "), %d --input given\n", n_in);
        cx_onnx_free(m);
        goto out;
    }
    cx_tensor **in = calloc((size_t)ni + 1, sizeof *in), **outs = calloc((size_t)no + 1, sizeof *outs);
    rc = 1;
    bool ok = in && outs;
    for (int i = 0; ok && i < ni; i++)
        if (cx_onnx_read_tensor(inputs[i], &in[i])) {
            fprintf(stderr, "cortex onnx run: %s\n", cx_last_error());
            ok = false;
        }
    cx_no_grad_begin(); /* inference: no graph recorded; the optimised plan (cx_onnx_set_optimize) */
    cx_tensor **joined = NULL;
    if (ok && batch > 0 && ni > 0 && in[0]->ndim > 0 && in[0]->shape[0] > batch) {
        joined = calloc((size_t)no + 1, sizeof *joined);
        ok = joined && run_sliced(m, in, ni, joined, no, (int)batch);
        for (int i = 0; ok && i < no; i++) outs[i] = joined[i];
    } else if (ok && cx_onnx_run(m, in, outs)) {
        fprintf(stderr, "cortex onnx run: %s\n", cx_last_error());
        ok = false;
    }
    cx_no_grad_end();
    for (int i = 0; ok && i < no; i++) print_tensor(cx_onnx_output(m, i)->name, outs[i], limit);
    for (int i = 0; ok && save && i < no; i++) {
        char fn[4096];
        snprintf(fn, sizeof fn, "%s%s.pb", save, cx_onnx_output(m, i)->name);
        if (cx_onnx_write_tensor(fn, outs[i])) {
            fprintf(stderr, "cortex onnx run: %s\n", cx_last_error());
            ok = false;
        }
    }
    if (ok) rc = 0;
    for (int i = 0; in && i < ni; i++) cx_tensor_free(in[i]);
    for (int i = 0; joined && i < no; i++) cx_tensor_free(joined[i]);
    free(joined);
    free(in);
    free(outs);
    cx_step_reset();
    cx_onnx_free(m);
out:
    free(inputs);
    return rc;
}

/* An MLP model (cortex.arch "mlp") as the equivalent Net (same names fc1,
 * fc2, ... and values), so that one exporter serves both. */
static cx_status mlp_as_net(cli_model *m, cx_module **out) {
    char text[1024];
    size_t k = (size_t)snprintf(text, sizeof text, "input %d\n", m->sizes[0]);
    for (int i = 1; i < m->ns && k < sizeof text; i++) {
        k += (size_t)snprintf(text + k, sizeof text - k, "linear out=%d\n", m->sizes[i]);
        if (i + 1 < m->ns && k < sizeof text) k += (size_t)snprintf(text + k, sizeof text - k, "%s\n", cx_act_name(m->act));
    }
    cx_status st = cx_net_parse(text, "MLP", out);
    if (st) return st;
    st = cx_module_copy_state(*out, m->net);
    if (st) {
        cx_module_free(*out);
        *out = NULL;
    }
    return st;
}

static int onnx_export(int argc, char **argv) {
    cli_flag f[] = {
        {"net", "network (.net file) of a MODEL without Cortex metadata (a PyTorch state_dict)", false, NULL},
        {"opset", "ONNX opset to write, 13..17 (default 13; 17 when a layernorm needs it)", false, NULL},
        {"input-name", "name of the graph input (default input)", false, NULL},
        {"output-name", "name of the graph output (default output)", false, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos = 0;
    const char *pos[2];
    bool help = false;
    if (cli_parse("onnx export", argc, argv, f, nf, pos, 2, &npos, &help)) return 2;
    if (help || npos != 2) {
        if (!help) fprintf(stderr, "cortex onnx export: expected MODEL.safetensors and OUT.onnx\n");
        else
            cli_usage("onnx export", "MODEL.safetensors OUT.onnx [--net NET.net] [--opset N]",
                      "Write a model saved by Cortex as an ONNX file (atomically): a network of a .net file\n"
                      "or an MLP ('cortex train'; input 'input' [N, <input shape>], output 'output', N the\n"
                      "batch size) or an LSTM character model ('cortex charlm train'; inputs 'input' int64\n"
                      "ids [T, B], h0 and c0 [L, B, H]; outputs 'output' logits [T, B, V], h_n and c_n).\n"
                      "Conv, pooling, batch norm, activations, flatten, linear, dropout, add, concat and\n"
                      "LSTM become the ONNX ops; parameters are float initialisers under their names.",
                      f, nf);
        return help ? 0 : 2;
    }
    int opset = 0;
    if (cli_get(f, nf, "opset") && !cli_int("onnx export", f, nf, "opset", 13, 17, &opset)) return 2;
    cx_onnx_export_opts o = cx_onnx_export_defaults();
    o.opset = opset;
    if (cli_get(f, nf, "input-name")) o.input_name = cli_get(f, nf, "input-name");
    if (cli_get(f, nf, "output-name")) o.output_name = cli_get(f, nf, "output-name");
    const char *netfile = cli_get(f, nf, "net");
    cx_st_file *sf;
    if (cx_st_load(pos[0], &sf)) {
        fprintf(stderr, "cortex onnx export: %s\n", cx_last_error());
        return 1;
    }
    const char *arch = cx_st_meta(sf, "cortex.arch");
    cx_module *mod = NULL;
    cx_status st;
    if (!netfile && arch && !strcmp(arch, "charlm")) {
        st = cx_charlm_from_st(sf, pos[0], &mod, NULL);
        cx_st_free(sf);
    } else {
        cx_st_free(sf);
        cli_model m;
        st = cli_model_load_net(pos[0], netfile, &m);
        if (!st) {
            if (m.is_netdef) {
                mod = m.net;
                m.net = NULL;
            } else {
                st = mlp_as_net(&m, &mod);
            }
            cli_model_free(&m);
        }
    }
    if (!st) st = cx_onnx_export(mod, pos[1], &o);
    cx_module_free(mod);
    if (st) {
        fprintf(stderr, "cortex onnx export: %s\n", cx_last_error());
        return 1;
    }
    printf("wrote %s\n", pos[1]);
    return 0;
}

int cmd_onnx(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "info")) return onnx_info(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "run")) return onnx_run(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "export")) return onnx_export(argc - 1, argv + 1);
    FILE *o = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) ? stdout : stderr;
    fprintf(o, "%s'cortex onnx info --help', 'cortex onnx run --help' and 'cortex onnx export --help' describe them.\n", USAGE);
    return o == stdout ? 0 : 2;
}
