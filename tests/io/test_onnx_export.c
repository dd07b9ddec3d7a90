/* ONNX export (cx_onnx_export, cortex/onnx.h):
 *   - a small MLP (linear, tanh, dropout, batch norm 1-D, relu, leaky_relu,
 *     elu, sigmoid, softplus, identity) and a small CNN (conv with groups
 *     and padding, batch norm 2-D with non-trivial running statistics, relu,
 *     a residual add, concat, max and average pooling with padding, flatten,
 *     dropout, linear) are exported, read back with cx_onnx_load and run by
 *     cx_onnx_run at two batch sizes (the batch dimension is symbolic): the
 *     outputs equal Cortex's forward in evaluation mode within 1e-5;
 *   - the file is what the reader expects: opset 13, named input / output,
 *     the parameters as initialisers under their state names, the same bytes
 *     from cx_onnx_export_buffer and from the file;
 *   - LayerNorm raises the opset to 17; GELU, an LSTM CharLM export (ops the
 *     reader lists as unsupported) load with their inputs and outputs;
 *   - bad input: a module of another kind, an adaptive pooling that has no
 *     ONNX form, a layer named like the graph output, opset 12, an
 *     unwritable path: each a named error, and no file (nor temp file) left,
 *     an existing file left as it was;
 *   - cx_onnx_write_tensor round-trips through cx_onnx_read_tensor;
 *   - PyTorch -> ONNX -> Cortex: a LeNet-5 exported by torch.onnx.export
 *     (tools/gen_onnx_models.py) gives PyTorch's outputs through
 *     cx_onnx_load / cx_onnx_run, and models/lenet5.net with the file's
 *     weights gives them through Cortex's own forward and through its export. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cortex/charlm.h>
#include "onnx.pb-c.h"
#include "test.h"

static char dir[64];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

/* the number of entries of dir (., .. excluded) */
static int dir_entries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void fill(cx_tensor *t, float lo, float hi) {
    for (int64_t i = 0; i < t->numel; i++) CX_F(t)[i] = lo + (hi - lo) * cx_rand_uniform();
}

/* Build `text`, give its batch norms random running statistics, export it,
 * read it back and compare cx_onnx_run with cx_module_forward at batch
 * sizes 3 and 1. Returns the largest difference. */
static double roundtrip(const char *text, const char *file, int n_params_expected) {
    cx_module *net;
    cx_status st = cx_net_parse(text, file, &net);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return 1;
    cx_state_dict sd;
    cx_module_state_dict(net, &sd);
    for (int i = 0; i < sd.n; i++) {
        if (strstr(sd.names[i], "running_mean") || strstr(sd.names[i], ".bias")) fill(sd.t[i], -0.5f, 0.5f);
        else if (strstr(sd.names[i], "running_var")) fill(sd.t[i], 0.5f, 2.0f);
        else if (strstr(sd.names[i], "bn") && strstr(sd.names[i], ".weight")) fill(sd.t[i], 0.5f, 1.5f);
    }
    cx_state_dict_free(&sd);
    char path[128];
    path_in(path, sizeof path, file);
    st = cx_onnx_export(net, path, NULL);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    /* the same bytes from memory */
    void *buf;
    size_t n;
    CHECK(cx_onnx_export_buffer(net, NULL, &buf, &n) == CX_OK);
    void *fb;
    size_t fn;
    CHECK(cx_read_file(path, &fb, &fn, 0) == CX_OK);
    CHECK(fn == n && !memcmp(fb, buf, n));
    free(fb);
    free(buf);
    cx_onnx_model *m;
    st = cx_onnx_load(path, &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) {
        cx_module_free(net);
        return 1;
    }
    CHECK(cx_onnx_opset(m) == 13);
    CHECK(cx_onnx_num_unsupported(m) == 0);
    CHECK(cx_onnx_num_inputs(m) == 1 && cx_onnx_num_outputs(m) == 1);
    CHECK(!strcmp(cx_onnx_input(m, 0)->name, "input") && !strcmp(cx_onnx_output(m, 0)->name, "output"));
    CHECK(cx_onnx_input(m, 0)->shape[0] == -1 && cx_onnx_output(m, 0)->shape[0] == -1);
    CHECK_MSG(cx_onnx_params(m)->n == n_params_expected, "%d initialisers", cx_onnx_params(m)->n);
    /* every parameter and buffer of the model under its name, same values */
    cx_state_dict sd2;
    cx_module_state_dict(net, &sd2);
    int found = 0;
    for (int i = 0; i < sd2.n; i++) {
        if (strstr(sd2.names[i], "num_batches_tracked")) continue;
        for (int j = 0; j < cx_onnx_params(m)->n; j++) {
            cx_tensor *p = cx_onnx_params(m)->t[j];
            if (p->name && !strcmp(p->name, sd2.names[i])) {
                found++;
                CHECK(cx_same_shape(p, sd2.t[i]) && !memcmp(p->data, sd2.t[i]->data, (size_t)p->numel * 4));
            }
        }
    }
    CHECK_MSG(found == n_params_expected, "%d of %d state tensors found", found, n_params_expected);
    cx_state_dict_free(&sd2);

    double worst = 0;
    int in_shape[CX_MAX_DIMS + 1];
    int ind = cx_net_input_shape(net, in_shape + 1);
    cx_set_training(false);
    cx_no_grad_begin();
    for (int b = 3; b >= 1; b -= 2) {
        in_shape[0] = b;
        cx_tensor *x = cx_randn(in_shape, ind + 1, 0, 1), *out[1];
        cx_tensor *ref = cx_module_forward(net, x);
        st = cx_onnx_run(m, &x, out);
        CHECK_MSG(st == CX_OK, "%s", cx_last_error());
        if (st) break;
        CHECK(cx_same_shape(out[0], ref));
        for (int64_t i = 0; i < ref->numel; i++) {
            double d = fabs((double)CX_F(out[0])[i] - (double)CX_F(ref)[i]);
            if (!(d <= worst)) worst = d;
        }
    }
    cx_no_grad_end();
    cx_set_training(true);
    cx_onnx_free(m);
    cx_module_free(net);
    return worst;
}

static void test_mlp_roundtrip(void) {
    const char *text = "input 20\n"
                       "linear out=32\n"
                       "tanh\n"
                       "dropout p=0.3\n"
                       "batchnorm name=bn1\n"
                       "linear out=24\n"
                       "relu\n"
                       "leaky_relu slope=0.2\n"
                       "linear out=16\n"
                       "elu alpha=0.7\n"
                       "sigmoid\n"
                       "linear out=12\n"
                       "softplus\n"
                       "identity\n"
                       "linear out=5\n";
    /* fc1..fc5 weight + bias, bn1 weight, bias, running mean, var */
    double d = roundtrip(text, "mlp.onnx", 14);
    CHECK_MSG(d <= 1e-5, "max abs difference %g", d);
}

static void test_cnn_roundtrip(void) {
    const char *text = "input 3 12 12\n"
                       "conv2d name=c1 out=4 k=3 p=1\n"
                       "batchnorm name=bn1\n"
                       "relu name=r1\n"
                       "conv2d name=c2 out=4 k=3 p=1 g=2\n"
                       "add name=res from=r1,c2\n"
                       "concat name=cat from=res,r1\n"
                       "maxpool2d k=2\n"
                       "conv2d name=c3 out=6 k=3 s=2 d=1 bias=0\n"
                       "avgpool2d k=2 s=1 p=1\n"
                       "tanh\n"
                       "flatten\n"
                       "dropout p=0.2\n"
                       "linear name=fc out=7\n";
    /* c1 w b, bn1 w b rm rv, c2 w b, c3 w, fc w b */
    double d = roundtrip(text, "cnn.onnx", 11);
    CHECK_MSG(d <= 1e-5, "max abs difference %g", d);
}

/* the LeNet-5 of models/ (the network the CLI trains) */
static void test_lenet_roundtrip(void) {
    void *text;
    size_t n;
    CHECK(cx_read_file("models/lenet5.net", &text, &n, 0) == CX_OK);
    double d = roundtrip(text, "lenet.onnx", 10);
    CHECK_MSG(d <= 1e-5, "max abs difference %g", d);
    free(text);
}

/* Ops the reader does not run still make a valid file: GELU's Erf, the
 * LayerNorm (opset 17), the LSTM language model. */
static void test_other_models_load(void) {
    cx_module *net;
    CHECK(cx_net_parse("input 4 6 6\nconv2d out=3 k=3\ngelu\nlayernorm dims=2\nglobalavgpool\nflatten\n"
                       "linear out=2\n", "x.net", &net) == CX_OK);
    char path[128];
    path_in(path, sizeof path, "ln.onnx");
    cx_status st = cx_onnx_export(net, path, NULL);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    cx_onnx_model *m;
    st = cx_onnx_load(path, &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) {
        CHECK(cx_onnx_opset(m) == 17);
        int erf = 0, ln = 0;
        for (int i = 0; i < cx_onnx_num_nodes(m); i++) {
            erf += !strcmp(cx_onnx_node_op(m, i), "Erf");
            ln += !strcmp(cx_onnx_node_op(m, i), "LayerNormalization");
        }
        CHECK(erf == 1 && ln == 1);
        cx_onnx_free(m);
    }
    /* asking for opset 13 with a LayerNorm: a named error, nothing written */
    cx_onnx_export_opts o = cx_onnx_export_defaults();
    o.opset = 13;
    path_in(path, sizeof path, "ln13.onnx");
    st = cx_onnx_export(net, path, &o);
    CHECK(st == CX_ERR_ARG && strstr(cx_last_error(), "opset 17") && !exists(path));
    cx_module_free(net);

    cx_charlm_config c = {.vocab = 9, .embed = 5, .hidden = 6, .layers = 2, .dropout = 0};
    cx_module *lm = cx_charlm_new(&c);
    path_in(path, sizeof path, "lm.onnx");
    o = cx_onnx_export_defaults();
    o.input_name = "ids";
    o.output_name = "logits";
    st = cx_onnx_export(lm, path, &o);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    st = cx_onnx_load(path, &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) {
        CHECK(cx_onnx_num_inputs(m) == 3 && cx_onnx_num_outputs(m) == 3);
        const cx_onnx_value_info *in = cx_onnx_input(m, 0), *out = cx_onnx_output(m, 0);
        CHECK(!strcmp(in->name, "ids") && in->dtype == CX_I64 && in->shape[0] == -1 && in->shape[1] == -1);
        CHECK(!strcmp(out->name, "logits") && out->ndim == 3 && out->shape[2] == 9);
        CHECK(!strcmp(cx_onnx_input(m, 1)->name, "h0") && cx_onnx_input(m, 1)->shape[0] == 2 &&
              cx_onnx_input(m, 1)->shape[2] == 6);
        int lstm = 0;
        for (int i = 0; i < cx_onnx_num_nodes(m); i++) lstm += !strcmp(cx_onnx_node_op(m, i), "LSTM");
        CHECK(lstm == 2);
        cx_onnx_free(m);
    }
    cx_module_free(lm);
}

/* The LSTM weights are PyTorch's i, f, g, o row blocks rearranged to ONNX's
 * i, o, f, c: read the file back and check W of layer 0 block by block. */
static void test_lstm_gate_order(void) {
    cx_charlm_config c = {.vocab = 4, .embed = 3, .hidden = 2, .layers = 1, .dropout = 0};
    cx_module *lm = cx_charlm_new(&c);
    void *buf;
    size_t n;
    CHECK(cx_onnx_export_buffer(lm, NULL, &buf, &n) == CX_OK);
    /* the LSTM node's inputs: X, W, R, B, sequence_lens (left out), initial_h, initial_c */
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, buf);
    CHECK(mp && mp->graph);
    int lstm = 0;
    for (size_t i = 0; mp && mp->graph && i < mp->graph->n_node; i++) {
        const Onnx__NodeProto *nd = mp->graph->node[i];
        if (strcmp(nd->op_type, "LSTM")) continue;
        lstm++;
        CHECK(nd->n_input == 7 && !strcmp(nd->input[1], "lstm_l0.W") && !strcmp(nd->input[4], "") &&
              strstr(nd->input[5], "h0") && strstr(nd->input[6], "c0"));
        CHECK(nd->n_output == 3);
    }
    CHECK(lstm == 1);
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    cx_onnx_model *m;
    CHECK(cx_onnx_load_buffer(buf, n, "lm", &m) == CX_OK);
    free(buf);
    cx_tensor *W = NULL, *B = NULL;
    for (int j = 0; j < cx_onnx_params(m)->n; j++) {
        cx_tensor *p = cx_onnx_params(m)->t[j];
        if (!strcmp(p->name, "lstm_l0.W")) W = p;
        if (!strcmp(p->name, "lstm_l0.B")) B = p;
    }
    cx_tensor *wih = cx_module_tensor(lm, "lstm.weight_ih_l0"), *bih = cx_module_tensor(lm, "lstm.bias_ih_l0"),
              *bhh = cx_module_tensor(lm, "lstm.bias_hh_l0");
    CHECK(W && B && W->ndim == 3 && W->shape[0] == 1 && W->shape[1] == 8 && W->shape[2] == 3);
    if (W && B) {
        const int from[4] = {0, 3, 1, 2}; /* ONNX block -> PyTorch block */
        for (int b = 0; b < 4; b++) {
            CHECK(!memcmp(CX_F(W) + b * 6, CX_F(wih) + from[b] * 6, 6 * sizeof(float)));
            CHECK(!memcmp(CX_F(B) + b * 2, CX_F(bih) + from[b] * 2, 2 * sizeof(float)));
            CHECK(!memcmp(CX_F(B) + 8 + b * 2, CX_F(bhh) + from[b] * 2, 2 * sizeof(float)));
        }
    }
    cx_onnx_free(m);
    cx_module_free(lm);
}

static void test_bad_input(void) {
    char path[128];
    int before = dir_entries();
    /* a module of another kind */
    cx_module *lin = cx_linear_new(3, 2, true);
    path_in(path, sizeof path, "bad1.onnx");
    cx_status st = cx_onnx_export(lin, path, NULL);
    CHECK(st == CX_ERR_ARG);
    CHECK_MSG(strstr(cx_last_error(), "kind 'Linear'"), "%s", cx_last_error());
    CHECK(!exists(path));
    cx_module_free(lin);
    CHECK(cx_onnx_export(NULL, path, NULL) == CX_ERR_ARG && !exists(path));

    /* a layer without an ONNX form; the existing file stays as it was */
    cx_module *net;
    CHECK(cx_net_parse("input 2 7 7\nadaptiveavgpool2d h=3 w=3\nflatten\nlinear out=2\n", "a.net", &net) == CX_OK);
    path_in(path, sizeof path, "keep.onnx");
    CHECK(cx_write_file_atomic(path, "old", 3) == CX_OK);
    before++;
    st = cx_onnx_export(net, path, NULL);
    CHECK(st == CX_ERR_ARG);
    CHECK_MSG(strstr(cx_last_error(), "pool1") && strstr(cx_last_error(), "adaptiveavgpool2d"), "%s",
              cx_last_error());
    void *b;
    size_t n;
    CHECK(cx_read_file(path, &b, &n, 0) == CX_OK && n == 3 && !memcmp(b, "old", 3));
    free(b);
    cx_module_free(net);

    /* a layer named like the graph output */
    CHECK(cx_net_parse("input 4\nlinear name=output out=3\nrelu\n", "o.net", &net) == CX_OK);
    path_in(path, sizeof path, "bad2.onnx");
    st = cx_onnx_export(net, path, NULL);
    CHECK(st == CX_ERR_ARG && strstr(cx_last_error(), "'output'") && !exists(path));
    cx_module_free(net);
    /* opset out of range */
    CHECK(cx_net_parse("input 4\nlinear out=3\nrelu\n", "o.net", &net) == CX_OK);
    cx_onnx_export_opts o = cx_onnx_export_defaults();
    o.opset = 12;
    st = cx_onnx_export(net, path, &o);
    CHECK(st == CX_ERR_ARG && strstr(cx_last_error(), "opset 12") && !exists(path));
    cx_module_free(net);

    /* unwritable paths: a missing directory, a directory that is a file */
    CHECK(cx_net_parse("input 4\nlinear out=3\n", "ok.net", &net) == CX_OK);
    path_in(path, sizeof path, "no_such_dir/x.onnx");
    st = cx_onnx_export(net, path, NULL);
    CHECK(st == CX_ERR_IO && strstr(cx_last_error(), "no_such_dir"));
    char p2[160];
    path_in(path, sizeof path, "keep.onnx");
    snprintf(p2, sizeof p2, "%s/x.onnx", path);
    st = cx_onnx_export(net, p2, NULL);
    CHECK(st == CX_ERR_IO && strstr(cx_last_error(), "keep.onnx/x.onnx"));
    cx_module_free(net);
    /* nothing was left behind: no new file, no temp file */
    CHECK_MSG(dir_entries() == before, "%d entries, expected %d", dir_entries(), before);
}

static void test_write_tensor(void) {
    char path[128];
    path_in(path, sizeof path, "t.pb");
    cx_tensor *x = cx_randn(CX_SHAPE(2, 3, 4), 0, 1), *y;
    CHECK(cx_onnx_write_tensor(path, x) == CX_OK);
    CHECK(cx_onnx_read_tensor(path, &y) == CX_OK);
    CHECK(y->dtype == CX_F32 && cx_same_shape(x, y) && !memcmp(x->data, y->data, 24 * sizeof(float)));
    cx_tensor_free(y);
    cx_tensor *ids = cx_tensor_new(CX_I64, CX_SHAPE(5));
    for (int i = 0; i < 5; i++) CX_I64P(ids)[i] = (int64_t)i * 1000000007LL - 3;
    CHECK(cx_onnx_write_tensor(path, ids) == CX_OK);
    CHECK(cx_onnx_read_tensor(path, &y) == CX_OK);
    CHECK(y->dtype == CX_I64 && y->numel == 5 && !memcmp(ids->data, y->data, 5 * sizeof(int64_t)));
    cx_tensor_free(y);
    cx_tensor_free(ids);
}

static void test_pytorch_lenet(void) {
    cx_onnx_model *m;
    cx_status st = cx_onnx_load("tests/fixtures/onnx/lenet5.onnx", &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return;
    cx_st_file *io;
    CHECK(cx_st_load("tests/fixtures/onnx/lenet5_io.safetensors", &io) == CX_OK);
    cx_tensor *x = cx_st_get(io, "x"), *y = cx_st_get(io, "y"), *out[1];
    cx_no_grad_begin();
    st = cx_onnx_run(m, &x, out);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) cxt_allclose(CX_F(out[0]), CX_F(y), (long)y->numel, 1e-4, 1e-5, "onnx run");
    /* the same weights in Cortex's LeNet-5 (models/lenet5.net: the same names) */
    void *text;
    size_t n;
    cx_module *net = NULL;
    CHECK(cx_read_file("models/lenet5.net", &text, &n, 0) == CX_OK);
    CHECK(cx_net_parse(text, "lenet5.net", &net) == CX_OK);
    free(text);
    int copied = 0;
    for (int j = 0; net && j < cx_onnx_params(m)->n; j++) {
        cx_tensor *p = cx_onnx_params(m)->t[j], *q = cx_module_tensor(net, p->name);
        CHECK_MSG(q && cx_same_shape(p, q), "tensor %s", p->name);
        if (q && cx_same_shape(p, q)) {
            memcpy(q->data, p->data, (size_t)p->numel * sizeof(float));
            copied++;
        }
    }
    CHECK(copied == 10);
    if (net) {
        cx_set_training(false);
        cx_tensor *z = cx_module_forward(net, x);
        cx_set_training(true);
        cxt_allclose(CX_F(z), CX_F(y), (long)y->numel, 1e-4, 1e-5, "cortex forward");
        /* and back out through the export */
        void *buf;
        size_t nb;
        cx_onnx_model *m2;
        CHECK(cx_onnx_export_buffer(net, NULL, &buf, &nb) == CX_OK);
        CHECK(cx_onnx_load_buffer(buf, nb, "re-export", &m2) == CX_OK);
        free(buf);
        CHECK(cx_onnx_run(m2, &x, out) == CX_OK);
        cxt_allclose(CX_F(out[0]), CX_F(y), (long)y->numel, 1e-4, 1e-5, "re-exported");
        cx_onnx_free(m2);
        cx_module_free(net);
    }
    cx_no_grad_end();
    cx_st_free(io);
    cx_onnx_free(m);
}

static void cleanup(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    char p[400];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        remove(p);
    }
    closedir(d);
    rmdir(dir);
}

/* PyTorch's small ResNet (models/small_resnet.net's architecture) exported by
 * torch.onnx.export in eval mode: batch norm folded into the convolutions,
 * identity and 1x1 strided projection shortcuts, global average pooling;
 * Cortex runs it and gets PyTorch's logits, at batch 3 and row by row. */
static void test_pytorch_small_resnet(void) {
    cx_onnx_model *m;
    cx_status st = cx_onnx_load("tests/fixtures/onnx/small_resnet.onnx", &m);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (st) return;
    cx_st_file *io;
    CHECK(cx_st_load("tests/fixtures/onnx/small_resnet_io.safetensors", &io) == CX_OK);
    cx_tensor *x = cx_st_get(io, "x"), *y = cx_st_get(io, "y"), *out[1];
    CHECK(x && y && x->ndim == 4 && y->ndim == 2 && y->shape[1] == 10);
    cx_no_grad_begin();
    st = cx_onnx_run(m, &x, out);
    CHECK_MSG(st == CX_OK, "%s", cx_last_error());
    if (!st) cxt_allclose(CX_F(out[0]), CX_F(y), (long)y->numel, 1e-4, 1e-5, "small resnet batch 3");
    /* batch 1 takes other convolution paths (direct, no im2col) */
    for (int i = 0; i < (int)x->shape[0]; i++) {
        cx_tensor *xi = cx_tensor_new(CX_F32, CX_SHAPE(1, x->shape[1], x->shape[2], x->shape[3]));
        memcpy(xi->data, CX_F(x) + (size_t)i * xi->numel, (size_t)xi->numel * sizeof(float));
        st = cx_onnx_run(m, &xi, out);
        CHECK_MSG(st == CX_OK, "%s", cx_last_error());
        if (!st) cxt_allclose(CX_F(out[0]), CX_F(y) + i * 10, 10, 1e-4, 1e-5, "small resnet batch 1");
        cx_tensor_free(xi);
    }
    cx_no_grad_end();
    cx_st_free(io);
    cx_onnx_free(m);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/cx_onnx_export_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    cx_seed(7);
    RUN(test_mlp_roundtrip);
    RUN(test_cnn_roundtrip);
    RUN(test_lenet_roundtrip);
    RUN(test_other_models_load);
    RUN(test_lstm_gate_order);
    RUN(test_bad_input);
    RUN(test_write_tensor);
    RUN(test_pytorch_lenet);
    RUN(test_pytorch_small_resnet);
    cleanup();
    TEST_END();
}
