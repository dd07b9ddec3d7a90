/* Shared helpers of the cortex CLI: flags, data lookup, model files. */
#include "cli.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char *cx_xstrdup_cli(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (!d) {
        fprintf(stderr, "cortex: out of memory\n");
        exit(1);
    }
    memcpy(d, s, n);
    return d;
}

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
    bool hi = false, hl = false; /* each file compressed or not, independently */
    for (int e = 0; e < 2 && !hi; e++) {
        snprintf(images, n, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext[e]);
        hi = exists(images);
    }
    for (int e = 0; e < 2 && !hl; e++) {
        snprintf(labels, n, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext[e]);
        hl = exists(labels);
    }
    if (hi && hl) return true;
    /* the message: the file that is missing */
    if (hi) snprintf(images, n, "%s/%s-labels-idx1-ubyte[.gz]", dir, prefix);
    else snprintf(images, n, "%s/%s-images-idx3-ubyte[.gz]", dir, prefix);
    return false;
}

void cli_model_mlp(cli_model *m, const int *sizes, int n, cx_act act, float dropout) {
    memset(m, 0, sizeof *m);
    memcpy(m->sizes, sizes, (size_t)n * sizeof(int));
    m->ns = n;
    m->act = act;
    m->in_shape[0] = sizes[0];
    m->in_ndim = 1;
    m->net = cx_mlp_new(sizes, n, act, dropout);
}

static cx_status model_from_text(const char *text, const char *source, const cx_st_file *weights, cli_model *m) {
    memset(m, 0, sizeof *m);
    cx_status st = cx_net_parse_for(text, source, weights, &m->net);
    if (st) return st;
    m->is_netdef = true;
    m->net_text = cx_xstrdup_cli(text);
    m->in_ndim = cx_net_input_shape(m->net, m->in_shape);
    return CX_OK;
}

cx_status cli_model_from_netfile(const char *path, cli_model *m) {
    void *buf;
    size_t n;
    memset(m, 0, sizeof *m);
    cx_status st = cx_read_file(path, &buf, &n, 1 << 20);
    if (st) return st;
    if (memchr(buf, 0, n)) {
        free(buf);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a text file", path);
    }
    st = model_from_text(buf, path, NULL, m);
    free(buf);
    return st;
}

int cli_model_features(const cli_model *m) {
    int f = 1;
    for (int i = 0; i < m->in_ndim; i++) f *= m->in_shape[i];
    return f;
}

cx_tensor *cli_model_forward(cli_model *m, cx_tensor *x) {
    if (m->in_ndim > 1) {
        int shape[CX_MAX_DIMS + 1] = {x->shape[0]};
        memcpy(shape + 1, m->in_shape, (size_t)m->in_ndim * sizeof(int));
        x = cx_reshape(x, shape, m->in_ndim + 1);
    }
    return cx_module_forward(m->net, x);
}

void cli_model_free(cli_model *m) {
    cx_module_free(m->net);
    free(m->net_text);
    memset(m, 0, sizeof *m);
}

int cli_model_meta(const cli_model *m, const char **keys, const char **values, char *sizes, size_t n) {
    size_t k = 0;
    sizes[0] = 0;
    for (int i = 0; i < m->ns && k < n; i++) k += (size_t)snprintf(sizes + k, n - k, i ? ",%d" : "%d", m->sizes[i]);
    int nm = 0;
    keys[nm] = "format"; values[nm++] = "pt";
    if (m->is_netdef) {
        keys[nm] = "cortex.arch"; values[nm++] = "net";
        keys[nm] = "cortex.net"; values[nm++] = m->net_text;
    } else {
        keys[nm] = "cortex.arch"; values[nm++] = "mlp";
        keys[nm] = "cortex.sizes"; values[nm++] = sizes;
        keys[nm] = "cortex.act"; values[nm++] = cx_act_name(m->act);
    }
    return nm;
}

cx_status cli_model_save(const char *path, cli_model *m) {
    char sz[256];
    const char *mk[CLI_MODEL_META], *mv[CLI_MODEL_META];
    int nm = cli_model_meta(m, mk, mv, sz, sizeof sz);
    /* cx_module_save writes format = pt itself (the first pair) */
    return cx_module_save(m->net, path, mk + 1, mv + 1, nm - 1);
}

static cx_status mlp_from_meta(const char *path, const cx_st_file *f, cli_model *m) {
    const char *sz = cx_st_meta(f, "cortex.sizes"), *an = cx_st_meta(f, "cortex.act");
    if (!sz || !an) return cx_set_error(CX_ERR_FORMAT, "%s: MLP model without cortex.sizes/cortex.act metadata", path);
    cx_act act;
    if (!cx_act_parse(an, &act)) return cx_set_error(CX_ERR_FORMAT, "%s: unknown activation '%s'", path, an);
    int sizes[16], n = 0;
    const char *p = sz;
    while (*p && n < 16) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1000000 || (*end && *end != ','))
            return cx_set_error(CX_ERR_FORMAT, "%s: bad layer sizes '%s'", path, sz);
        sizes[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (n < 2 || *p) return cx_set_error(CX_ERR_FORMAT, "%s: bad layer sizes '%s'", path, sz);
    /* check the sizes against the stored weights before allocating the model,
     * so hostile metadata ("784,1000000,10") cannot make us allocate gigabytes */
    for (int i = 0; i + 1 < n; i++) {
        char wn[32];
        snprintf(wn, sizeof wn, "fc%d.weight", i + 1);
        const cx_tensor *w = cx_st_get(f, wn);
        if (!w || w->ndim != 2 || w->shape[0] != sizes[i + 1] || w->shape[1] != sizes[i])
            return cx_set_error(w ? CX_ERR_SHAPE : CX_ERR_NOTFOUND,
                                "%s: tensor '%s' %s, but cortex.sizes '%s' needs [%d, %d]", path, wn,
                                w ? "has another shape" : "is missing", sz, sizes[i + 1], sizes[i]);
    }
    cli_model_mlp(m, sizes, n, act, 0);
    return CX_OK;
}

cx_status cli_model_load(const char *path, cli_model *m) { return cli_model_load_net(path, NULL, m); }

cx_status cli_model_load_net(const char *path, const char *netfile, cli_model *m) {
    memset(m, 0, sizeof *m);
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *arch = cx_st_meta(f, "cortex.arch");
    if (netfile) st = cli_model_from_netfile(netfile, m); /* the named network, whatever the metadata says */
    else if (!arch)
        st = cx_set_error(CX_ERR_FORMAT,
                          "%s: no network in the file (metadata cortex.arch missing); for a PyTorch state_dict, "
                          "name its network with --net FILE.net",
                          path);
    else if (!strcmp(arch, "mlp")) st = mlp_from_meta(path, f, m);
    else if (!strcmp(arch, "net")) {
        const char *text = cx_st_meta(f, "cortex.net");
        if (!text) st = cx_set_error(CX_ERR_FORMAT, "%s: network model without cortex.net metadata", path);
        else {
            char src[600];
            snprintf(src, sizeof src, "%s (cortex.net)", path);
            st = model_from_text(text, src, f, m);
        }
    } else {
        st = cx_set_error(CX_ERR_FORMAT, "%s: unknown cortex.arch '%s' (mlp or net)", path, arch);
    }
    if (!st) {
        st = cx_module_load_state(m->net, f, path);
        if (st) cli_model_free(m);
    }
    cx_st_free(f);
    return st;
}

/* ---- run configuration recorded in checkpoints (cortex.run.*) ---- */

static bool in_list(const char *const *list, const char *s) {
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(list[i], s)) return true;
    return false;
}

uint64_t cli_fingerprint(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    if (!h) h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

int cli_run_meta(const cli_flag *f, int nf, const char *const *skip, const char *data_id, const char **keys,
                 const char **values, int cap, char *buf, size_t n) {
    int nm = 0;
    size_t used = 0;
    for (int i = 0; i <= nf && nm < cap; i++) {
        const char *name = i < nf ? f[i].name : "data-id", *val = i < nf ? f[i].value : data_id;
        if (!val || (i < nf && in_list(skip, name))) continue;
        int k = snprintf(buf + used, n - used, "cortex.run.%s", name);
        if (k < 0 || (size_t)k >= n - used) break;
        keys[nm] = buf + used;
        values[nm++] = val;
        used += (size_t)k + 1;
    }
    return nm;
}

/* Two flag values are the same setting: equal strings, or equal numbers. */
static bool same_value(const char *a, const char *b) {
    if (!strcmp(a, b)) return true;
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    return ea != a && eb != b && !*ea && !*eb && x == y;
}

int cli_run_check(const char *cmd, const char *path, const cx_st_file *ck, const cli_flag *f, int nf,
                  const char *const *skip, const char *const *inherit, const char *data_id, bool override) {
    if (!cx_st_meta(ck, "cortex.run.data-id")) {
        printf("note: %s records no run configuration (written before Cortex checked resumed flags): the flags "
               "are not compared\n", path);
        return 0;
    }
    char msg[2048];
    size_t used = 0;
    int bad = 0;
    for (int i = 0; i <= nf; i++) {
        const char *name = i < nf ? f[i].name : "data-id", *now = i < nf ? f[i].value : data_id;
        if (i < nf && in_list(skip, name)) continue;
        char key[96];
        snprintf(key, sizeof key, "cortex.run.%s", name);
        const char *then = cx_st_meta(ck, key);
        if (!now && (!then || in_list(inherit, name))) continue; /* unset here: the checkpoint's */
        if (now && then && same_value(now, then)) continue;
        int k;
        if (i == nf)
            k = snprintf(msg + used, sizeof msg - used, "%sthe data: the checkpoint was trained on %s, this run has %s",
                         bad ? "; " : "", then ? then : "(unrecorded)", now);
        else
            k = snprintf(msg + used, sizeof msg - used, "%s--%s: checkpoint %s, this run %s", bad ? "; " : "", name,
                         then ? then : "(unset)", now ? now : "(unset)");
        if (k > 0) used += (size_t)k < sizeof msg - used ? (size_t)k : sizeof msg - used - 1;
        bad++;
    }
    if (!bad) return 0;
    if (override) {
        printf("note: --resume-override: %s differs from this run (%s); continuing with this run's settings, so the "
               "run is not identical to an uninterrupted one\n", path, msg);
        return 0;
    }
    fprintf(stderr, "cortex %s: %s was written with other settings (%s): resume with the same flags, or add "
                    "--resume-override to continue anyway\n", cmd, path, msg);
    return 2;
}

bool cli_check_writable(const char *cmd, const char *flag, const char *path) {
    if (!path) return true;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cortex %s: --%s %s is a directory (give a file name)\n", cmd, flag, path);
        return false;
    }
    /* a device or a FIFO (/dev/null) is written in place */
    if (stat(path, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        if (access(path, W_OK) == 0) return true;
        fprintf(stderr, "cortex %s: --%s %s cannot be written (%s)\n", cmd, flag, path, strerror(errno));
        return false;
    }
    char dir[1024];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "cortex %s: --%s %s: the directory %s does not exist\n", cmd, flag, path, dir);
        return false;
    }
    /* the file is written atomically (a temporary file beside it, renamed):
     * what matters is that the directory takes a new file */
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.cortex-probe.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        fprintf(stderr, "cortex %s: --%s %s: cannot create a file in %s (%s)\n", cmd, flag, path, dir,
                strerror(errno));
        return false;
    }
    close(fd);
    unlink(probe);
    return true;
}

cx_status cli_model_check_finite(cli_model *m, const char *path) {
    cx_state_dict sd;
    cx_module_state_dict(m->net, &sd);
    int64_t bad = 0, total = 0;
    int first = -1, tensors = 0;
    for (int i = 0; i < sd.n; i++) {
        const cx_tensor *t = sd.t[i];
        if (t->dtype != CX_F32) continue;
        int64_t b = 0;
        for (int64_t k = 0; k < t->numel; k++) b += !isfinite(CX_F(t)[k]);
        if (b && first < 0) first = i;
        tensors += b > 0;
        bad += b;
        total += t->numel;
    }
    cx_status st = CX_OK;
    if (bad)
        st = cx_set_error(CX_ERR_FORMAT,
                          "%s: %lld of its %lld weights are NaN or infinite (in %d tensor(s), the first '%s'): the "
                          "training that wrote it diverged",
                          path, (long long)bad, (long long)total, tensors, sd.names[first]);
    cx_state_dict_free(&sd);
    return st;
}

bool cli_model_finite_or_allowed(const char *cmd, cli_model *m, const char *path, bool allow) {
    if (!cli_model_check_finite(m, path)) return true;
    if (allow) {
        fprintf(stderr, "cortex %s: warning: %s (loaded anyway: --allow-nonfinite)\n", cmd, cx_last_error());
        return true;
    }
    fprintf(stderr, "cortex %s: %s; --allow-nonfinite loads it anyway\n", cmd, cx_last_error());
    return false;
}
