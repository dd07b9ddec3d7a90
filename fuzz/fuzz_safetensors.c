/* libFuzzer target: safetensors. The same bytes go through cx_st_parse (from
 * memory) and cx_st_load (from a file, each tensor read into its own
 * buffer); both must agree: same status, and the same tensors and metadata. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    cx_st_file *a = NULL, *b = NULL;
    cx_status sa = cx_st_parse(data, size, &a);
    cxf_check_error(sa);
    cx_status sb = cx_st_load(cxf_file("safetensors", data, size), &b);
    cxf_check_error(sb);
    if ((sa == CX_OK) != (sb == CX_OK)) {
        fprintf(stderr, "cx_st_parse %d, cx_st_load %d: %s\n", (int)sa, (int)sb, cx_last_error());
        abort();
    }
    if (sa == CX_OK) {
        if (a->n != b->n || a->n_meta != b->n_meta) abort();
        for (int i = 0; i < a->n; i++) {
            const cx_tensor *x = a->entries[i].tensor, *y = cx_st_get(b, a->entries[i].name);
            if (!y || x->dtype != y->dtype || x->numel != y->numel || x->ndim != y->ndim) abort();
            size_t el = x->dtype == CX_I64 ? 8 : 4;
            if (x->numel && memcmp(x->data, y->data, (size_t)x->numel * el)) abort();
        }
        for (int i = 0; i < a->n_meta; i++) {
            const char *v = cx_st_meta(b, a->meta_keys[i]);
            if (!v || strcmp(v, a->meta_values[i])) abort();
        }
    }
    cx_st_free(a);
    cx_st_free(b);
    return 0;
}
