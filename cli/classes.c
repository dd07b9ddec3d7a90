/* Class names for the pictures and tables of the CLI (eval --confusion,
 * viz maps): known for Fashion-MNIST, or read from a file. */
#include "cli.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool contains_ci(const char *s, const char *word) {
    size_t n = strlen(word);
    for (; *s; s++) {
        size_t i = 0;
        while (i < n && s[i] && tolower((unsigned char)s[i]) == word[i]) i++;
        if (i == n) return true;
    }
    return false;
}

bool cli_classes_load(const char *cmd, const char *spec, const char *data_dir, int n_classes, cli_classes *out) {
    memset(out, 0, sizeof *out);
    if (!spec) spec = "auto";
    if (!strcmp(spec, "none")) return true;
    bool fashion = !strcmp(spec, "fashion") || (!strcmp(spec, "auto") && data_dir && contains_ci(data_dir, "fashion"));
    if (fashion || !strcmp(spec, "auto")) {
        if (!fashion) return true;
        if (n_classes > 10) {
            if (!strcmp(spec, "auto")) return true;
            fprintf(stderr, "cortex %s: --classes fashion names 10 classes, the model has %d\n", cmd, n_classes);
            return false;
        }
        out->n = n_classes;
        for (int i = 0; i < n_classes && i < CLI_MAX_CLASSES; i++)
            snprintf(out->name[i], sizeof out->name[i], "%s", cx_fashion_mnist_class(i));
        return true;
    }
    /* a file: one name per line */
    void *buf;
    size_t n;
    if (cx_read_file(spec, &buf, &n, 1 << 20)) {
        fprintf(stderr, "cortex %s: --classes: %s\n", cmd, cx_last_error());
        return false;
    }
    char *t = buf, *save = NULL;
    int k = 0;
    for (char *line = strtok_r(t, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        if (k == CLI_MAX_CLASSES) break;
        snprintf(out->name[k++], sizeof out->name[0], "%s", line);
    }
    free(buf);
    if (k < n_classes) {
        fprintf(stderr, "cortex %s: --classes %s names %d classes, the model has %d\n", cmd, spec, k, n_classes);
        return false;
    }
    out->n = n_classes;
    return true;
}

const char *cli_class_name(const cli_classes *c, int label) {
    return c && label >= 0 && label < c->n ? c->name[label] : NULL;
}

void cli_print_confusion(const int64_t *conf, int C, const cli_classes *names) {
    printf("confusion (rows: true class, columns: predicted)\n");
    int lw = 0;
    for (int i = 0; i < C; i++) {
        const char *nm = cli_class_name(names, i);
        int w = nm ? (int)strlen(nm) + 1 : 0;
        if (w > lw) lw = w;
    }
    printf("%*s", lw + 4, "");
    for (int j = 0; j < C; j++) printf("%6d", j);
    printf("\n");
    for (int i = 0; i < C; i++) {
        const char *nm = cli_class_name(names, i);
        printf("%3d %-*s", i, lw, nm ? nm : "");
        for (int j = 0; j < C; j++) printf("%6lld", (long long)conf[i * C + j]);
        printf("\n");
    }
}
