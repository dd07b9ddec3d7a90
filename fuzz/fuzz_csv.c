/* libFuzzer target: CSV files of numbers (cx_csv_load with its header). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    cx_tensor *t = NULL;
    char **header = NULL;
    int n_header = -1;
    cx_status st = cx_csv_load(cxf_file("csv", data, size), &t, &header, &n_header);
    cxf_check_error(st);
    if (st == CX_OK) {
        if (!t || t->ndim != 2 || (header && n_header != t->shape[1])) abort();
        for (int i = 0; header && i < n_header; i++)
            if (!header[i]) abort();
        cx_tensor_free(t);
        cx_csv_free_header(header, n_header);
    }
    return 0;
}
