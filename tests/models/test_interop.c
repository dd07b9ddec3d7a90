/* CNN weights move both ways between PyTorch and Cortex through safetensors.
 * Fixtures: tools/gen_interop_fixtures.py (tests/fixtures/interop/).
 *   PyTorch -> Cortex: state_dicts of a PyTorch-trained LeNet-5 and ResNet
 *     (small widths, batch-norm running stats) load strictly into the networks
 *     of tests/fixtures/interop/{lenet,resnet}_small.net and give PyTorch's
 *     eval-mode logits and the same accuracy on 200 test images.
 *   Cortex -> PyTorch: files written by `cortex train` loaded into PyTorch
 *     (load_state_dict(strict=True)) gave the stored logits; Cortex recomputes
 *     them from the same files.
 *   The full-size models/<name>.net have the state names, shapes and dtypes of the
 *   PyTorch twins used by the CNN benchmark (tools/bench_torch_cnn.py). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

#define DIR "tests/fixtures/interop/"
#define SUBSET "data/fashion-mnist-subset/"

static cx_st_file *fx;       /* interop.safetensors */
static cx_tensor *x200, *y200; /* test images 0..199 [200,1,28,28] (F32) and labels (I32) */

static cx_tensor *fx_get(const char *name) {
    cx_tensor *t = fx ? cx_st_get(fx, name) : NULL;
    CHECK_MSG(t != NULL, "fixture tensor '%s' missing", name);
    return t;
}

/* Net from a .net file with its whole state (parameters + buffers) loaded
 * strictly from a safetensors file. */
static cx_module *load_net(const char *netfile, const char *weights) {
    cx_module *m = NULL;
    cx_status st = cx_net_load(netfile, &m);
    CHECK_MSG(st == CX_OK, "%s: %s", netfile, cx_last_error());
    if (st) return NULL;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    st = cx_params_load(weights, &ps, true);
    CHECK_MSG(st == CX_OK, "%s: %s", weights, cx_last_error());
    cx_params_free(&ps);
    if (st) {
        cx_module_free(m);
        return NULL;
    }
    return m;
}

static cx_tensor *eval_forward(cx_module *m, cx_tensor *x) {
    cx_no_grad_begin();
    cx_set_training(false);
    cx_tensor *y = cx_module_forward(m, x);
    cx_set_training(true);
    cx_no_grad_end();
    return y;
}

/* Logits on the 32-image batch and on 200 test images, and the accuracy,
 * against the fixture's <prefix>.logits32 / .logits200 / .correct. */
static void check_outputs(cx_module *m, const char *prefix) {
    char name[96];
    cx_tensor *u8 = fx_get("images32");
    if (!u8 || !m) return;
    /* the model input is (float)u8 * (1/255.f), as cx_idx_load scales images */
    cx_tensor *x32 = cx_empty(CX_F32, u8->shape, u8->ndim);
    for (int64_t i = 0; i < u8->numel; i++) CX_F(x32)[i] = (float)CX_I64P(u8)[i] * (1 / 255.f);
    cx_tensor *y = eval_forward(m, x32);
    snprintf(name, sizeof name, "%s.logits32", prefix);
    cx_tensor *ref = fx_get(name);
    if (ref) {
        CHECK(cx_same_shape(y, ref));
        if (cx_same_shape(y, ref)) cxt_allclose(CX_F(y), CX_F(ref), y->numel, 1e-4, 1e-4, name);
    }
    y = eval_forward(m, x200);
    snprintf(name, sizeof name, "%s.logits200", prefix);
    ref = fx_get(name);
    if (ref) {
        CHECK(cx_same_shape(y, ref));
        if (cx_same_shape(y, ref)) cxt_allclose(CX_F(y), CX_F(ref), y->numel, 1e-4, 1e-4, name);
    }
    cx_tensor *pred = cx_argmax(y, 1);
    long correct = 0;
    for (int i = 0; i < 200; i++) correct += CX_I32P(pred)[i] == CX_I32P(y200)[i];
    snprintf(name, sizeof name, "%s.correct", prefix);
    ref = fx_get(name);
    if (ref) CHECK_MSG(correct == CX_I64P(ref)[0], "%s: Cortex %ld/200 correct, PyTorch %lld/200", prefix, correct,
                       (long long)CX_I64P(ref)[0]);
    CHECK(correct > 40); /* trained: better than chance (20/200) */
}

/* The stored inputs are the committed data set's test images. */
static void test_fixture_inputs(void) {
    cx_tensor *u8 = fx_get("images32"), *lab = fx_get("labels200");
    if (!u8 || !lab) return;
    CHECK(u8->dtype == CX_I64 && u8->ndim == 4 && u8->shape[0] == 32 && u8->shape[1] == 1);
    CHECK(lab->numel == 200);
    long bad = 0;
    for (int64_t i = 0; i < u8->numel; i++) bad += CX_F(x200)[i] != (float)CX_I64P(u8)[i] * (1 / 255.f);
    for (int i = 0; i < 200; i++) bad += CX_I32P(y200)[i] != CX_I64P(lab)[i];
    CHECK_MSG(bad == 0, "%ld mismatches between the fixture and %s", bad, SUBSET);
}

static void test_torch_to_cortex_lenet(void) {
    cx_module *m = load_net(DIR "lenet_small.net", DIR "torch_lenet.safetensors");
    check_outputs(m, "torch_lenet");
    cx_module_free(m);
}

static void test_torch_to_cortex_resnet(void) {
    cx_module *m = load_net(DIR "resnet_small.net", DIR "torch_resnet.safetensors");
    if (!m) return;
    /* the batch-norm buffers came from PyTorch: trained running stats and the
     * step count (3 epochs of 16 batches) */
    cx_params st;
    cx_params_init(&st);
    cx_module_state(m, &st);
    cx_tensor *nbt = cx_params_find(&st, "b3projn.num_batches_tracked");
    cx_tensor *rv = cx_params_find(&st, "stem_bn.running_var");
    CHECK(nbt && nbt->dtype == CX_I64 && nbt->ndim == 0 && CX_I64P(nbt)[0] == 48);
    CHECK(rv && CX_F(rv)[0] != 1.0f);
    cx_params_free(&st);
    check_outputs(m, "torch_resnet");
    cx_module_free(m);
}

/* A Cortex-written file holds exactly the state plus the .net text. */
static void check_cortex_file(const char *netfile, const char *weights) {
    cx_st_file *f = NULL;
    CHECK(cx_st_load(weights, &f) == CX_OK);
    if (!f) return;
    void *text = NULL;
    size_t n = 0;
    CHECK(cx_read_file(netfile, &text, &n, 0) == CX_OK);
    const char *meta = cx_st_meta(f, "cortex.net");
    CHECK(meta && text && strcmp(meta, text) == 0);
    free(text);
    cx_st_free(f);
}

static void test_cortex_to_torch_lenet(void) {
    check_cortex_file(DIR "lenet_small.net", DIR "cortex_lenet.safetensors");
    cx_module *m = load_net(DIR "lenet_small.net", DIR "cortex_lenet.safetensors");
    check_outputs(m, "cortex_lenet");
    cx_module_free(m);
}

static void test_cortex_to_torch_resnet(void) {
    check_cortex_file(DIR "resnet_small.net", DIR "cortex_resnet.safetensors");
    cx_module *m = load_net(DIR "resnet_small.net", DIR "cortex_resnet.safetensors");
    check_outputs(m, "cortex_resnet");
    cx_module_free(m);
}

/* A state saved by Cortex after loading PyTorch's reloads to the same logits. */
static void test_resave_roundtrip(void) {
    cx_module *m = load_net(DIR "resnet_small.net", DIR "torch_resnet.safetensors");
    if (!m) return;
    cx_params st;
    cx_params_init(&st);
    cx_module_state(m, &st);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cx_interop_%d.safetensors", (int)getpid());
    CHECK(cx_params_save(path, &st) == CX_OK);
    cx_params_free(&st);
    cx_module *m2 = load_net(DIR "resnet_small.net", path);
    remove(path);
    if (m2) check_outputs(m2, "torch_resnet");
    cx_module_free(m2);
    cx_module_free(m);
}

/* Strict loading rejects the wrong network's state and leaves it unchanged. */
static void test_mismatches(void) {
    cx_module *m = NULL;
    CHECK(cx_net_load(DIR "lenet_small.net", &m) == CX_OK);
    if (!m) return;
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    CHECK(cx_params_load(DIR "torch_resnet.safetensors", &ps, true) == CX_ERR_NOTFOUND);
    cx_params_free(&ps);
    cx_module_free(m);
    CHECK(cx_net_load("models/lenet5.net", &m) == CX_OK);
    if (!m) return;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    cx_tensor *w = cx_params_find(&ps, "fc3.bias");
    float before[10];
    memcpy(before, w->data, sizeof before);
    CHECK(cx_params_load(DIR "torch_lenet.safetensors", &ps, true) == CX_ERR_SHAPE);
    CHECK_MSG(strstr(cx_last_error(), "conv1.weight") != NULL, "message: %s", cx_last_error());
    CHECK(memcmp(before, w->data, sizeof before) == 0);
    cx_params_free(&ps);
    cx_module_free(m);
}

/* models/<net>.net: the same state keys, shapes and dtypes as the PyTorch
 * twin (fixture keys.<net>.<key> = [dtype code, shape...]). */
static void check_full_size(const char *net) {
    char path[96], prefix[64];
    snprintf(path, sizeof path, "models/%s.net", net);
    snprintf(prefix, sizeof prefix, "keys.%s.", net);
    cx_module *m = NULL;
    CHECK(cx_net_load(path, &m) == CX_OK);
    if (!m || !fx) return;
    cx_params st;
    cx_params_init(&st);
    cx_module_state(m, &st);
    size_t pl = strlen(prefix);
    int n_keys = 0;
    for (int i = 0; i < fx->n; i++) {
        const char *name = fx->entries[i].name;
        if (strncmp(name, prefix, pl)) continue;
        n_keys++;
        const cx_tensor *spec = fx->entries[i].tensor;
        const cx_tensor *t = cx_params_find(&st, name + pl);
        CHECK_MSG(t != NULL, "%s lacks PyTorch's '%s'", path, name + pl);
        if (!t) continue;
        const int64_t *s = CX_I64P(spec);
        bool same = t->dtype == (s[0] ? CX_I64 : CX_F32) && t->ndim == spec->numel - 1;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == s[d + 1];
        CHECK_MSG(same, "%s: '%s' differs from PyTorch's in dtype or shape", path, name + pl);
    }
    CHECK_MSG(n_keys == st.n, "%s: %d state tensors, PyTorch's state_dict has %d", path, st.n, n_keys);
    cx_params_free(&st);
    cx_module_free(m);
}

static void test_full_size_names(void) {
    check_full_size("lenet5");
    check_full_size("small_resnet");
    check_full_size("small_vgg");
}

int main(void) {
    if (cx_st_load(DIR "interop.safetensors", &fx)) fprintf(stderr, "fixture: %s\n", cx_last_error());
    cx_tensor *x = NULL;
    if (cx_idx_load(SUBSET "t10k-images-idx3-ubyte.gz", 1 / 255.f, 200, &x) == CX_OK) {
        x200 = cx_tensor_new(CX_F32, CX_SHAPE(200, 1, 28, 28));
        memcpy(x200->data, x->data, sizeof(float) * 200 * 784);
        cx_tensor_free(x);
    }
    if (cx_idx_load(SUBSET "t10k-labels-idx1-ubyte.gz", 1, 200, &y200)) y200 = NULL;
    if (!fx || !x200 || !y200) {
        fprintf(stderr, "cannot load the fixtures or %s: %s\n", SUBSET, cx_last_error());
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_fixture_inputs);
    RUN(test_torch_to_cortex_lenet);
    RUN(test_torch_to_cortex_resnet);
    RUN(test_cortex_to_torch_lenet);
    RUN(test_cortex_to_torch_resnet);
    RUN(test_resave_roundtrip);
    RUN(test_mismatches);
    RUN(test_full_size_names);
    cx_tensor_free(x200);
    cx_tensor_free(y200);
    cx_st_free(fx);
    TEST_END();
}
