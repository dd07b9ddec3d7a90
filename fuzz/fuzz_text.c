/* libFuzzer target: the char-LM text corpus reader. cx_text_load builds a
 * vocabulary and encodes the file; the ids must decode back to the text
 * (min_count 1 keeps every character); the vocabulary survives a save and a
 * load. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    cx_vocab *v = NULL;
    cx_tensor *ids = NULL;
    cx_status st = cx_text_load(cxf_file("text", data, size), 1, &v, &ids);
    cxf_check_error(st);
    if (st != CX_OK) {
        if (v || ids) abort();
        return 0;
    }
    size_t need = cx_vocab_decode(v, (const int32_t *)ids->data, ids->numel, NULL, 0);
    char *back = malloc(need + 1);
    if (!back) abort();
    cx_vocab_decode(v, (const int32_t *)ids->data, ids->numel, back, need + 1);
    if (need != size || memcmp(back, data, size)) {
        fprintf(stderr, "text does not decode back to itself (%zu bytes, %zu decoded)\n", size, need);
        abort();
    }
    free(back);
    cx_tensor_free(ids);
    cx_vocab_free(v);
    return 0;
}
