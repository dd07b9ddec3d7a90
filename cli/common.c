/* Shared helpers of the cortex CLI: flags, data lookup, model files. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static cli_flag *find(cli_flag *flags, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(flags[i].name, name)) return &flags[i];
    return NULL;
}

int cli_parse(const char *cmd, int argc, char **argv, cli_flag *flags, int nflags, const char **pos,
              int max_pos, int *npos, bool *help) {
    *npos = 0;
    *help = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = true;
            continue;
        }
        if (!strncmp(a, "--", 2)) {
            const char *name = a + 2, *eq = strchr(name, '=');
            char buf[64];
            if (eq) {
                snprintf(buf, sizeof buf, "%.*s", (int)(eq - name), name);
                name = buf;
            }
            cli_flag *f = find(flags, nflags, name);
            if (!f) {
                fprintf(stderr, "cortex %s: unknown flag '%s' (see 'cortex %s --help')\n", cmd, a, cmd);
                return 2;
            }
            if (f->boolean) {
                f->value = "1";
            } else if (eq) {
                f->value = eq + 1;
            } else {
                if (i + 1 >= argc) {
                    fprintf(stderr, "cortex %s: flag '--%s' needs a value\n", cmd, f->name);
                    return 2;
                }
                f->value = argv[++i];
            }
        } else {
            if (*npos >= max_pos) {
                fprintf(stderr, "cortex %s: unexpected argument '%s' (see 'cortex %s --help')\n", cmd, a, cmd);
                return 2;
            }
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

void cli_usage(const char *cmd, const char *synopsis, const char *about, const cli_flag *flags, int nflags) {
    printf("usage: cortex %s %s\n\n%s\n\noptions:\n", cmd, synopsis, about);
    for (int i = 0; i < nflags; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", flags[i].name, flags[i].boolean ? "" : " V");
        printf("  %-22s %s", left, flags[i].help);
        if (flags[i].value && !flags[i].boolean) printf(" (default %s)", flags[i].value);
        printf("\n");
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

const char *cli_get(const cli_flag *flags, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(flags[i].name, name)) return flags[i].value;
    return NULL;
}

bool cli_int(const char *cmd, const cli_flag *flags, int n, const char *name, int lo, int hi, int *out) {
    const char *v = cli_get(flags, n, name);
    if (!v) return true;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "cortex %s: --%s must be an integer in [%d, %d], got '%s'\n", cmd, name, lo, hi, v);
        return false;
    }
    *out = (int)x;
    return true;
}

bool cli_double(const char *cmd, const cli_flag *flags, int n, const char *name, double lo, double hi,
                double *out) {
    const char *v = cli_get(flags, n, name);
    if (!v) return true;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "cortex %s: --%s must be a number in [%g, %g], got '%s'\n", cmd, name, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

bool cli_find_idx(const char *dir, const char *prefix, char *images, char *labels, size_t n) {
    const char *ext[2] = {".gz", ""};
    for (int e = 0; e < 2; e++) {
        snprintf(images, n, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext[e]);
        snprintf(labels, n, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext[e]);
        if (exists(images) && exists(labels)) return true;
    }
    snprintf(images, n, "%s/%s-images-idx3-ubyte[.gz]", dir, prefix);
    return false;
}

cx_status cli_model_save(const char *path, cx_module *net, const int *sizes, int n, cx_act act) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(net, &ps);
    const char **names = malloc((size_t)ps.n * sizeof *names);
    if (!names) return cx_set_error(CX_ERR_NOMEM, "out of memory");
    for (int i = 0; i < ps.n; i++) names[i] = ps.t[i]->name;
    char sz[256] = "";
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof sz; i++) k += (size_t)snprintf(sz + k, sizeof sz - k, i ? ",%d" : "%d", sizes[i]);
    const char *mk[4] = {"format", "cortex.arch", "cortex.sizes", "cortex.act"};
    const char *mv[4] = {"pt", "mlp", sz, cx_act_name(act)};
    cx_status st = cx_st_save(path, ps.t, names, ps.n, mk, mv, 4);
    free(names);
    cx_params_free(&ps);
    return st;
}

cx_status cli_model_load(const char *path, cx_module **net, int *sizes, int *n, cx_act *act) {
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *arch = cx_st_meta(f, "cortex.arch"), *sz = cx_st_meta(f, "cortex.sizes"),
               *an = cx_st_meta(f, "cortex.act");
    if (!arch || strcmp(arch, "mlp") || !sz || !an) {
        cx_st_free(f);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a Cortex MLP model (metadata cortex.arch/sizes/act missing)", path);
    }
    if (!cx_act_parse(an, act)) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: unknown activation '%s'", path, an); /* before an is freed */
        cx_st_free(f);
        return st;
    }
    *n = 0;
    const char *p = sz;
    while (*p && *n < 16) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000) {
            st = cx_set_error(CX_ERR_FORMAT, "%s: bad layer sizes '%s'", path, sz); /* before sz is freed */
            cx_st_free(f);
            return st;
        }
        sizes[(*n)++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') break;
    }
    if (*n < 2 || *p) {
        st = cx_set_error(CX_ERR_FORMAT, "%s: bad layer sizes '%s'", path, sz);
        cx_st_free(f);
        return st;
    }
    /* check the sizes against the stored weights before allocating the model,
     * so hostile metadata ("784,1000000,10") cannot make us allocate gigabytes */
    for (int i = 0; i + 1 < *n; i++) {
        char wn[32];
        snprintf(wn, sizeof wn, "fc%d.weight", i + 1);
        const cx_tensor *w = cx_st_get(f, wn);
        if (!w || w->ndim != 2 || w->shape[0] != sizes[i + 1] || w->shape[1] != sizes[i]) {
            st = cx_set_error(w ? CX_ERR_SHAPE : CX_ERR_NOTFOUND,
                              "%s: tensor '%s' %s, but cortex.sizes '%s' needs [%d, %d]", path, wn,
                              w ? "has another shape" : "is missing", sz, sizes[i + 1], sizes[i]);
            cx_st_free(f);
            return st;
        }
    }
    cx_st_free(f);
    *net = cx_mlp_new(sizes, *n, *act, 0);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(*net, &ps);
    st = cx_params_load(path, &ps, true);
    cx_params_free(&ps);
    if (st) {
        cx_module_free(*net);
        *net = NULL;
    }
    return st;
}
