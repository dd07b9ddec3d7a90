/* libFuzzer target: bAbI task files (cx_babi_parse), then the tensors, the
 * story sequences (cx_babi_sequences) and the text of every question. The
 * first byte picks the unknown-word mode (bit 0: CX_BABI_UNK_ERROR against a
 * vocabulary built from a first parse of the same text) and the tensor
 * options (bits 1-7). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    if (size < 1) return 0;
    int mode = data[0];
    data++;
    size--;
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    cx_status st = cx_babi_parse((const char *)data, size, "fuzz.txt", v, CX_BABI_UNK_ADD, &s);
    cxf_check_error(st);
    if (st == CX_OK && (mode & 1)) { /* again, against the vocabulary it built */
        cx_babi_set *s2 = NULL;
        int before = cx_babi_vocab_size(v);
        st = cx_babi_parse((const char *)data, size, "fuzz.txt", v, CX_BABI_UNK_ERROR, &s2);
        if (st != CX_OK || cx_babi_vocab_size(v) != before || s2->n_questions != s->n_questions) abort();
        cx_babi_set_free(s2);
    }
    if (st == CX_OK && s->n_questions > 0) {
        cx_babi_tensor_opts o = cx_babi_tensor_defaults();
        o.memory = (mode >> 1) & 7;
        o.sentence_len = (mode >> 4) & 7;
        o.recent_first = mode & 0x80;
        cx_tensor *mem = NULL, *q = NULL, *a = NULL;
        int n = s->n_questions < 64 ? s->n_questions : 64;
        if (cx_babi_tensors(s, 0, n, &o, &mem, &q, &a) != CX_OK) abort();
        cx_tensor_free(mem);
        cx_tensor_free(q);
        cx_tensor_free(a);
        /* story sequences: every target sits at an answer step */
        const int ns = s->n_stories < 64 ? s->n_stories : 64, V = cx_babi_vocab_size(v);
        cx_tensor *tok = NULL, *tgt = NULL;
        if (cx_babi_sequences(s, 0, ns, V, &tok, &tgt, NULL) != CX_OK) abort();
        for (int64_t i = 0; i < tgt->numel; i++) {
            int32_t g = CX_I32P(tgt)[i];
            if (g != -100 && (g < 0 || g >= V || CX_I32P(tok)[i] != V + CX_BABI_SEQ_ANSWER)) abort();
        }
        cx_tensor_free(tok);
        cx_tensor_free(tgt);
        char buf[512];
        for (int i = 0; i < n; i++) {
            int len = cx_babi_format_question(s, v, i, buf, sizeof buf);
            if (len < 0 || strlen(buf) >= sizeof buf) abort();
        }
    }
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
    return 0;
}
