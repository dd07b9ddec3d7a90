/* Helpers shared by the char-LM tests (test_charlm.c, test_transformer.c):
 * broken model files made from a good one, and the check that loading one
 * fails with a message naming the problem and the file. Include after test.h. */
#ifndef CX_TEST_CHARLM_FILES_H
#define CX_TEST_CHARLM_FILES_H
#include <cortex/charlm.h>
#include <string.h>

/* Copy `fixture` to `path` without the reference gradients ("grad.*"), with
 * metadata `key` set to `value` (removed when value is NULL) and, when `drop`
 * is not NULL, without the tensor of that name. */
static cx_status save_variant_of(const char *fixture, const char *path, const char *key, const char *value,
                                 const char *drop) {
    cx_st_file *f;
    if (cx_st_load(fixture, &f)) return CX_ERR_IO;
    cx_tensor *ts[128];
    const char *names[128], *mk[32], *mv[32];
    int n = 0, nm = 0;
    for (int i = 0; i < f->n && n < 128; i++)
        if (strncmp(f->entries[i].name, "grad.", 5) && (!drop || strcmp(f->entries[i].name, drop))) {
            ts[n] = f->entries[i].tensor;
            names[n++] = f->entries[i].name;
        }
    for (int i = 0; i < f->n_meta && nm < 31; i++)
        if (strcmp(f->meta_keys[i], key)) {
            mk[nm] = f->meta_keys[i];
            mv[nm++] = f->meta_values[i];
        }
    if (value) mk[nm] = key, mv[nm++] = value;
    cx_status st = cx_st_save(path, ts, names, n, mk, mv, nm);
    cx_st_free(f);
    return st;
}

/* cx_charlm_load(path) fails with status `want`, leaves both outputs NULL,
 * and its message names `needle` and the file. */
static void expect_load_error(const char *path, cx_status want, const char *needle) {
    cx_module *m = (cx_module *)1;
    cx_vocab *v = (cx_vocab *)1;
    cx_status st = cx_charlm_load(path, &m, &v);
    CHECK_MSG(st == want, "status %d, want %d (%s)", (int)st, (int)want, cx_last_error());
    CHECK(m == NULL && v == NULL);
    CHECK_MSG(strstr(cx_last_error(), needle) && strstr(cx_last_error(), path), "'%s' lacks '%s'", cx_last_error(),
              needle);
}
#endif
