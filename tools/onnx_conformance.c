/* ONNX conformance runner: every test directory under DIR (Debian's
 * libonnx-testdata node tests: DIR/test_NAME/model.onnx with
 * test_data_set_K/input_I.pb and output_I.pb) is loaded with cx_onnx_load,
 * run on each data set with cx_onnx_run and compared with the stored
 * outputs: |got - want| <= atol + rtol |want| elementwise (rtol 1e-3,
 * atol 1e-5) for floats, equal for integers and bools, same shape and
 * dtype, NaN where NaN is expected.
 *
 * A test is
 *   passed       every data set matches;
 *   unsupported  the model has a node Cortex does not run, an opset outside
 *                1..17, or inputs / outputs of a data type Cortex does not
 *                hold (double, float16, uint64, strings ...);
 *   failed       anything else: a wrong value or shape, an error of a
 *                supported op, a valid model the reader rejects.
 * Prints a table per op (the op of a one-node model; "(multi-node)" for the
 * others), the failures with their reason, and "N passed of M". Exits 1 when
 * any test failed, else 0.
 *
 *   make onnx-test                 (DIR = /usr/share/libonnx-testdata/data/node)
 *   onnx_conformance DIR [-v] [-k SUBSTRING] [--markdown FILE]
 *     -v: every unsupported reason too; --markdown: also write the per-op
 *     table as Markdown (4 ops per row, "passed / tests" each) to FILE,
 *     which tools/update_readme_onnx.sh puts into README.md (make readme-onnx) */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

#define RTOL 1e-3
#define ATOL 1e-5
#define MAX_IO 64

typedef struct {
    char op[64];
    int passed, failed, unsupported, skipped;
} op_row;

static op_row rows[2048];
static int n_rows;

static op_row *row_of(const char *op) {
    for (int i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].op, op)) return &rows[i];
    if (n_rows == (int)(sizeof rows / sizeof *rows)) return &rows[n_rows - 1];
    op_row *r = &rows[n_rows++];
    snprintf(r->op, sizeof r->op, "%s", op);
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmp_row(const void *a, const void *b) { return strcmp(((const op_row *)a)->op, ((const op_row *)b)->op); }

/* sorted names of the entries of dir starting with prefix */
static int list_dir(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    int n = 0, cap = 16;
    char **v = malloc((size_t)cap * sizeof *v);
    if (!d || !v) {
        if (d) closedir(d);
        *out = v;
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (n == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* compare got with want; returns 0 or writes the reason */
static int compare(const cx_tensor *got, const cx_tensor *want, char *why, size_t n) {
    char a[128], b[128];
    if (got->ndim != want->ndim || memcmp(got->shape, want->shape, (size_t)got->ndim * sizeof(int))) {
        snprintf(why, n, "shape %s, expected %s", cx_shape_str(got, a, sizeof a), cx_shape_str(want, b, sizeof b));
        return 1;
    }
    if (got->dtype != want->dtype) {
        snprintf(why, n, "dtype %s, expected %s", cx_dtype_name(got->dtype), cx_dtype_name(want->dtype));
        return 1;
    }
    for (int64_t i = 0; i < want->numel; i++) {
        double g, w;
        if (want->dtype == CX_F32) g = CX_F(got)[i], w = CX_F(want)[i];
        else if (want->dtype == CX_I32) g = CX_I32P(got)[i], w = CX_I32P(want)[i];
        else g = (double)CX_I64P(got)[i], w = (double)CX_I64P(want)[i];
        /* integers (and bools) exactly, floats within the tolerance */
        bool ok = want->dtype != CX_F32 ? g == w : isnan(w) ? isnan(g) : isinf(w) ? g == w : fabs(g - w) <= ATOL + RTOL * fabs(w);
        if (!ok) {
            snprintf(why, n, "element %lld is %.7g, expected %.7g", (long long)i, g, w);
            return 1;
        }
    }
    return 0;
}

enum { PASS, FAIL, UNSUP, SKIP };

/* Tests whose stored data disagrees with the op's definition or with its
 * own model: run, but counted apart (neither passed nor failed) with the
 * reason, and listed every time. */
static const struct {
    const char *test, *why;
} KNOWN[] = {
    {"test_cast_FLOAT_to_BFLOAT16", "the stored output truncates to bfloat16; Cortex rounds to nearest even, as "
                                    "onnxruntime, PyTorch and ONNX's own helper do (onnx/onnx issues 3876, 5004)"},
    {"test_castlike_FLOAT_to_BFLOAT16", "the stored output truncates (see test_cast_FLOAT_to_BFLOAT16), and input "
                                        "'like' is stored with shape [1] where the model declares [3, 4]"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded", "as test_castlike_FLOAT_to_BFLOAT16"},
    {"test_castlike_BFLOAT16_to_FLOAT", "input 'like' is stored with shape [1] where the model declares [3, 4]"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded", "as test_castlike_BFLOAT16_to_FLOAT"},
};

static const char *known_why(const char *test) {
    for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++)
        if (!strcmp(KNOWN[i].test, test)) return KNOWN[i].why;
    return NULL;
}

/* one test directory; the op it counts for in op[], the reason in why[] */
/* The test data of the bfloat16 Cast tests stores its bfloat16 values as
 * uint16 tensors (the bit patterns; read as I32): for a graph input or output
 * the model declares bfloat16, those bits as the floats they stand for. */
static cx_tensor *bf16_bits(cx_tensor *t, int onnx_type) {
    if (onnx_type != 16 /* BFLOAT16 */ || t->dtype != CX_I32) return t;
    cx_tensor *f = cx_tensor_new(CX_F32, t->shape, t->ndim);
    for (int64_t i = 0; i < t->numel; i++) {
        uint32_t u = (uint32_t)(CX_I32P(t)[i] & 0xFFFF) << 16;
        memcpy(CX_F(f) + i, &u, 4);
    }
    cx_tensor_free(t);
    return f;
}

static int run_test(const char *dir, char *op, size_t opn, char *why, size_t n) {
    char path[8192];
    snprintf(op, opn, "(not loaded)");
    snprintf(path, sizeof path, "%.4000s/model.onnx", dir);
    cx_onnx_model *m = NULL;
    cx_status st = cx_onnx_load(path, &m);
    if (st) {
        snprintf(why, n, "%s", cx_last_error());
        if (st == CX_ERR_ARG) snprintf(op, opn, "(opset or file unsupported)");
        return st == CX_ERR_ARG ? UNSUP : FAIL;
    }
    snprintf(op, opn, "%s", cx_onnx_num_nodes(m) == 1 ? cx_onnx_node_op(m, 0) : "(multi-node)");
    if (cx_onnx_num_unsupported(m)) {
        for (int k = 0; k < cx_onnx_num_nodes(m); k++)
            if (cx_onnx_node_unsupported(m, k)) {
                snprintf(why, n, "%s", cx_onnx_node_unsupported(m, k));
                break;
            }
        cx_onnx_free(m);
        return UNSUP;
    }
    int ni = cx_onnx_num_inputs(m), no = cx_onnx_num_outputs(m);
    for (int i = 0; i < ni; i++)
        if (!cx_onnx_input(m, i)->dtype_ok) {
            snprintf(why, n, "input '%s' is %s", cx_onnx_input(m, i)->name, cx_onnx_type_name(cx_onnx_input(m, i)->onnx_type));
            cx_onnx_free(m);
            return UNSUP;
        }
    for (int i = 0; i < no; i++)
        if (!cx_onnx_output(m, i)->dtype_ok) {
            snprintf(why, n, "output '%s' is %s", cx_onnx_output(m, i)->name,
                     cx_onnx_type_name(cx_onnx_output(m, i)->onnx_type));
            cx_onnx_free(m);
            return UNSUP;
        }
    if (ni > MAX_IO || no > MAX_IO) {
        snprintf(why, n, "%d inputs, %d outputs: too many for the runner", ni, no);
        cx_onnx_free(m);
        return FAIL;
    }
    char **sets;
    int nsets = list_dir(dir, "test_data_set_", &sets), result = PASS;
    if (!nsets) {
        snprintf(why, n, "no test_data_set_* directory");
        result = FAIL;
    }
    for (int s = 0; s < nsets && result == PASS; s++) {
        cx_tensor *in[MAX_IO] = {0}, *want[MAX_IO] = {0}, *got[MAX_IO] = {0};
        char **files;
        snprintf(path, sizeof path, "%.4000s/%.1000s", dir, sets[s]);
        int nf = list_dir(path, "input_", &files);
        free_list(files, nf);
        if (nf != ni) {
            snprintf(why, n, "%s: %d input files for %d graph inputs", sets[s], nf, ni);
            result = FAIL;
        }
        for (int i = 0; i < ni && result == PASS; i++) {
            snprintf(path, sizeof path, "%.4000s/%.1000s/input_%d.pb", dir, sets[s], i);
            if ((st = cx_onnx_read_tensor(path, &in[i]))) {
                snprintf(why, n, "%s", cx_last_error());
                result = st == CX_ERR_ARG ? UNSUP : FAIL;
            } else {
                in[i] = bf16_bits(in[i], cx_onnx_input(m, i)->onnx_type);
            }
        }
        for (int i = 0; i < no && result == PASS; i++) {
            snprintf(path, sizeof path, "%.4000s/%.1000s/output_%d.pb", dir, sets[s], i);
            if ((st = cx_onnx_read_tensor(path, &want[i]))) {
                snprintf(why, n, "%s", cx_last_error());
                result = st == CX_ERR_ARG ? UNSUP : FAIL;
            } else {
                want[i] = bf16_bits(want[i], cx_onnx_output(m, i)->onnx_type);
            }
        }
        if (result == PASS && cx_onnx_run(m, in, got)) {
            snprintf(why, n, "%s", cx_last_error());
            result = FAIL;
        }
        for (int i = 0; i < no && result == PASS; i++) {
            char w[512];
            if (compare(got[i], want[i], w, sizeof w)) {
                snprintf(why, n, "%s: output %d '%s': %s", sets[s], i, cx_onnx_output(m, i)->name, w);
                result = FAIL;
            }
        }
        for (int i = 0; i < MAX_IO; i++) cx_tensor_free(in[i]), cx_tensor_free(want[i]);
        cx_step_reset();
    }
    free_list(sets, nsets);
    cx_onnx_free(m);
    return result;
}

int main(int argc, char **argv) {
    const char *root = NULL, *filter = NULL, *markdown = NULL;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = true;
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "--markdown") && i + 1 < argc) markdown = argv[++i];
        else if (!root && argv[i][0] != '-') root = argv[i];
        else {
            fprintf(stderr, "usage: onnx_conformance DIR [-v] [-k SUBSTRING] [--markdown FILE]\n");
            return 2;
        }
    }
    if (!root) {
        fprintf(stderr, "usage: onnx_conformance DIR [-v] [-k SUBSTRING]   (DIR: e.g. /usr/share/libonnx-testdata/data/node)\n");
        return 2;
    }
    cx_set_threads(1);
    char **tests;
    int nt = list_dir(root, "test_", &tests), total = 0, passed = 0, failed = 0, unsup = 0, skipped = 0;
    if (!nt) {
        fprintf(stderr, "onnx_conformance: no test_* directories in %s\n", root);
        free_list(tests, nt);
        return 2;
    }
    static char fails[1 << 20];
    size_t fl = 0;
    for (int t = 0; t < nt; t++) {
        if (filter && !strstr(tests[t], filter)) continue;
        char dir[8192], op[64], why[1024] = "";
        snprintf(dir, sizeof dir, "%.4000s/%.1000s", root, tests[t]);
        struct stat sb;
        if (stat(dir, &sb) || !S_ISDIR(sb.st_mode)) continue;
        int r = run_test(dir, op, sizeof op, why, sizeof why);
        const char *kw = known_why(tests[t]);
        if (kw && r != PASS) {
            r = SKIP;
            snprintf(why, sizeof why, "%s", kw);
        }
        op_row *row = row_of(op);
        total++;
        if (r == PASS) passed++, row->passed++;
        else if (r == FAIL) failed++, row->failed++;
        else if (r == SKIP) skipped++, row->skipped++;
        else unsup++, row->unsupported++;
        if ((r == FAIL || r == SKIP || (verbose && r == UNSUP)) && fl < sizeof fails - 2048)
            fl += (size_t)snprintf(fails + fl, sizeof fails - fl, "  %-8s %s: %s\n",
                                   r == FAIL ? "FAILED" : r == SKIP ? "data" : "unsupp.", tests[t], why);
    }
    free_list(tests, nt);
    qsort(rows, (size_t)n_rows, sizeof *rows, cmp_row);
    printf("%-28s %7s %7s %12s\n", "op", "passed", "failed", "unsupported");
    for (int i = 0; i < n_rows; i++)
        if (rows[i].passed || rows[i].failed)
            printf("%-28s %7d %7d %12d\n", rows[i].op, rows[i].passed, rows[i].failed, rows[i].unsupported);
    int n_unsup_ops = 0;
    for (int i = 0; i < n_rows; i++) n_unsup_ops += !rows[i].passed && !rows[i].failed;
    printf("unsupported ops (%d):", n_unsup_ops);
    for (int i = 0, col = 0; i < n_rows; i++)
        if (!rows[i].passed && !rows[i].failed) {
            if (col++ % 8 == 0) printf("\n ");
            printf(" %s (%d)", rows[i].op, rows[i].unsupported);
        }
    printf("\n");
    if (fl) printf("%s:\n%s", verbose ? "failed, unsupported and disagreeing tests" : "failed tests and tests whose data disagrees", fails);
    printf("%d passed of %d (%d failed, %d unsupported, %d with test data that disagrees)\n", passed, total, failed,
           unsup, skipped);
    if (markdown) {
        /* the ops with at least one test Cortex runs, 4 per row; then the
         * ops whose every test is unsupported */
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%.4000s.tmp", markdown);
        FILE *f = fopen(tmp, "w");
        if (!f) {
            fprintf(stderr, "onnx_conformance: cannot write %s\n", tmp);
            return 2;
        }
        fprintf(f, "**%d passed of %d** node tests (%d failed, %d unsupported, %d whose stored data disagrees with the "
                   "op or its model); per op, passed / tests:\n\n", passed, total, failed, unsup, skipped);
        fprintf(f, "| op | | op | | op | | op | |\n|---|---|---|---|---|---|---|---|\n");
        int col = 0;
        for (int i = 0; i < n_rows; i++) {
            if (!rows[i].passed && !rows[i].failed) continue;
            int tot = rows[i].passed + rows[i].failed + rows[i].unsupported;
            fprintf(f, "| %s | %d / %d%s ", rows[i].op, rows[i].passed, tot, rows[i].failed ? " (failed!)" : "");
            if (++col % 4 == 0) fprintf(f, "|\n");
        }
        if (col % 4) {
            for (; col % 4; col++) fprintf(f, "| | ");
            fprintf(f, "|\n");
        }
        fprintf(f, "\nOps none of whose tests Cortex runs (number of tests):");
        for (int i = 0, k = 0; i < n_rows; i++)
            if (!rows[i].passed && !rows[i].failed) fprintf(f, "%s %s (%d)", k++ ? "," : "", rows[i].op, rows[i].unsupported);
        fprintf(f, ".\n");
        if (skipped) {
            fprintf(f, "\nTests whose stored data disagrees with the op or its model (run, counted apart):\n\n");
            for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++) fprintf(f, "- `%s`: %s\n", KNOWN[i].test, KNOWN[i].why);
        }
        if (fclose(f) || rename(tmp, markdown)) {
            fprintf(stderr, "onnx_conformance: cannot write %s\n", markdown);
            return 2;
        }
    }
    return failed ? 1 : 0;
}
