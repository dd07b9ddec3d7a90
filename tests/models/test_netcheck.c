/* cx_net_check (parse-only shape inference) against cx_net_parse: for every
 * network of models/, a list of shape errors of every layer kind and a few
 * thousand random mutations, both give the same status and message, and on
 * success the same rows (name, output shape, parameter count, receptive
 * field). */
#include <stdlib.h>
#include <string.h>

#include "test.h"

static int n_ok, n_err;

/* Compare the two paths on one text; returns true when they agree. */
static bool same_result(const char *text, const char *what) {
    cx_module *m = NULL;
    cx_status st_full = cx_net_parse(text, "t.net", &m);
    char msg_full[700];
    snprintf(msg_full, sizeof msg_full, "%s", st_full ? cx_last_error() : "");
    cx_net_shapes *s = (cx_net_shapes *)&s; /* must be set */
    cx_status st = cx_net_check(text, "t.net", &s);
    bool ok = true;
    CHECK_MSG(st == st_full, "%s: cx_net_check %d, cx_net_parse %d ('%s' / '%s') for:\n%s", what, (int)st,
              (int)st_full, st ? cx_last_error() : "", msg_full, text);
    if (st != st_full) ok = false;
    if (st && st_full) {
        n_err++;
        CHECK(s == NULL);
        CHECK_MSG(!strcmp(cx_last_error(), msg_full), "%s: messages differ:\n  check: %s\n  parse: %s\nfor:\n%s",
                  what, cx_last_error(), msg_full, text);
        ok = ok && !strcmp(cx_last_error(), msg_full);
    } else if (!st && !st_full) {
        n_ok++;
        CHECK(s->n == cx_net_num_layers(m));
        int shape[CX_MAX_DIMS];
        int nd = cx_net_input_shape(m, shape);
        CHECK(nd == s->in_ndim && !memcmp(shape, s->in_shape, (size_t)nd * sizeof(int)));
        int64_t total = 0;
        for (int i = 0; i < s->n && i < cx_net_num_layers(m); i++) {
            const cx_layer_info *a = &s->layers[i], *b = cx_net_layer(m, i);
            bool same = !strcmp(a->name, b->name) && a->out_ndim == b->out_ndim &&
                        !memcmp(a->out_shape, b->out_shape, (size_t)b->out_ndim * sizeof(int)) &&
                        a->params == b->params && a->spatial == b->spatial && a->rf_all == b->rf_all;
            for (int k = 0; k < 3; k++) same = same && a->rf[k] == b->rf[k] && a->jump[k] == b->jump[k];
            CHECK_MSG(same, "%s: layer %d ('%s' / '%s') differs: params %lld / %lld, ndim %d / %d", what, i,
                      a->name, b->name, (long long)a->params, (long long)b->params, a->out_ndim, b->out_ndim);
            ok = ok && same;
            total += b->params;
        }
        CHECK(s->params == total);
    }
    cx_net_shapes_free(st ? NULL : s);
    cx_module_free(m);
    return ok;
}

static const char *model_files[] = {"models/lenet5.net", "models/notes_example.net", "models/small_resnet.net",
                                    "models/small_vgg.net"};

static void same_as_full_parse_on_models(void) {
    for (size_t i = 0; i < sizeof model_files / sizeof *model_files; i++) {
        void *buf;
        size_t n;
        CHECK(cx_read_file(model_files[i], &buf, &n, 1 << 20) == CX_OK);
        same_result(buf, model_files[i]);
        free(buf);
    }
}

/* Networks that use every layer kind, and shape errors of each one. */
static const char *cases[] = {
    "input 3 16 16\nconv2d out=8 k=3 s=2 p=1 d=1 g=1\nbatchnorm\nrelu\nmaxpool2d k=2\nflatten\nlinear out=5\n",
    "input 4 10\nconv1d out=6 k=3 d=2 g=2 bias=0\nbatchnorm\nlayernorm dims=2 eps=1e-3\ngelu\n",
    "input 2 6 6 6\nconv3d out=4 k=3 p=1\nmaxpool3d k=2\navgpool3d k=1\nelu alpha=0.5\nflatten\n",
    "input 4 5 5\nconvt2d out=2 k=3 s=2 p=1 op=1\nupsample scale=1.5 mode=bilinear align=1\ntanh\n",
    "input 3 9 7\nadaptiveavgpool2d h=2 w=3\nglobalavgpool\nsigmoid\nflatten\ndropout p=0.3\n",
    ("input 3 8 8\nconv2d name=a out=4 k=3 p=1\nconv2d name=b out=5 k=1 from=input\nconcat from=a,b,input\n"
     "add name=z from=concat1,concat1\nleaky_relu slope=0.2\nsoftplus\nidentity\n"),
    "input 6\nlinear out=3\nbatchnorm momentum=0.5\nlayernorm\nlinear out=2 bias=0\n",
    "input 2 7 7\navgpool2d k=3 s=2 p=1\nupsample scale=0.5\n",
    /* errors */
    "input 1 4 4\nconv2d out=3 k=7\n",
    "input 1 4 4\nconv2d out=3 k=3 d=2\n",
    "input 2 4 4\nconv2d out=3 k=1 g=2\n",
    "input 3 4\nconv1d out=3 k=1 g=2\n",
    "input 1 2 2 2\nconv3d out=3 k=3\n",
    "input 2 4 4\nconvt2d out=2 k=1 p=5\n",
    "input 2 4 4\nconvt2d out=2 k=3 s=2 op=2\n",
    "input 2 4 4\nconvt2d out=3 k=3 g=2\n",
    "input 1 4 4\nmaxpool2d k=5\n",
    "input 1 4 4\nmaxpool2d k=2 p=2\n",
    "input 1 2 4 4\navgpool3d k=3\n",
    "input 1 3 3\nupsample scale=0.2\n",
    "input 1 28 28\nbatchnorm eps=0\n",
    "input 1 28 28\nflatten\nbatchnorm eps=0\n",
    "input 1 28 28\nlayernorm eps=0\n",
    "input 1048576 1 1\nconv2d out=1048576 k=1024\n",
    "input 1048576 1048576 1048576 1048576\nrelu\n",
    "input 1 28 28\nconv2d name=a out=4 k=3\nconv2d name=b out=4 k=5 from=input\nadd from=a,b\n",
    "input 1 28 28\nconv2d name=a out=4 k=3\nflatten name=b from=a\nconcat from=a,b\n",
    "input 1 8 8\nconv2d out=3 k=3\nadd from=conv1,input\n",
    "input 1 28 28\nconvt2d out=2 k=3 s=2 op=5\n",
    "input 1 4 4\nmaxpool2d k=2\nmaxpool2d k=2\nmaxpool2d k=2\n",
};

static void same_as_full_parse_on_cases(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[32];
        snprintf(what, sizeof what, "case %zu", i);
        same_result(cases[i], what);
    }
    CHECK_MSG(n_ok >= 8 && n_err >= 20, "%d parsed, %d rejected", n_ok, n_err);
}

/* Random byte and token mutations of valid networks (small numbers, so that
 * the full parse stays cheap). */
static void same_as_full_parse_on_mutations(void) {
    static const char alphabet[] = "0123456789 =\n#-,.abcdefgiklmnoprstuxz_";
    cx_rng r = cx_rng_new(77);
    char buf[1024];
    int before_ok = n_ok, before_err = n_err, bad = 0;
    for (int it = 0; it < 3000 && bad < 5; it++) {
        const char *good = cases[it % 8];
        size_t n = strlen(good);
        memcpy(buf, good, n + 1);
        int edits = 1 + (int)cx_rng_below(&r, 3);
        for (int e = 0; e < edits; e++) {
            size_t pos = cx_rng_below(&r, (uint32_t)n);
            uint32_t kind = cx_rng_below(&r, 6);
            if (kind >= 3) { /* a digit of a number */
                size_t q = pos;
                while (q < n && (buf[q] < '0' || buf[q] > '9')) q++;
                if (q < n) buf[q] = (char)('0' + cx_rng_below(&r, 10));
            } else if (kind == 0) buf[pos] = alphabet[cx_rng_below(&r, sizeof alphabet - 1)];
            else if (kind == 1 && n > 2) { memmove(buf + pos, buf + pos + 1, n - pos); n--; }
            else if (n + 2 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, n - pos + 1);
                buf[pos] = alphabet[cx_rng_below(&r, sizeof alphabet - 1)];
                n++;
            }
        }
        char what[32];
        snprintf(what, sizeof what, "mutant %d", it);
        bad += !same_result(buf, what);
    }
    CHECK_MSG(n_ok - before_ok > 300 && n_err - before_err > 1000, "%d parsed, %d rejected", n_ok - before_ok,
              n_err - before_err);
}

/* It is fast: a network whose weights would take terabytes is checked without
 * allocating them. */
static void huge_network_checked_without_allocating(void) {
    cx_net_shapes *s = NULL;
    CHECK(cx_net_check("input 1024 64 64\nconv2d out=1048576 k=33 p=16\nflatten\nlinear out=16777216\n", "big.net",
                       &s) == CX_ERR_FORMAT);
    CHECK(s == NULL);
    CHECK_MSG(strstr(cx_last_error(), "big.net:3: flatten: input [1, 1048576, 64, 64] has 4294967296 values") != NULL,
              "%s", cx_last_error());
    CHECK(cx_net_check("input 1024 64 64\nconv2d out=65536 k=33 p=16\nglobalavgpool\nflatten\nlinear out=4096\n",
                       "big.net", &s) == CX_OK);
    if (!s) return;
    CHECK(s->n == 5 && s->in_ndim == 3 && s->in_shape[0] == 1024);
    CHECK(s->layers[1].out_shape[0] == 65536 && s->layers[1].out_shape[1] == 64);
    CHECK(s->layers[1].params == 65536LL * 1024 * 33 * 33 + 65536);
    CHECK(s->params == 65536LL * 1024 * 33 * 33 + 65536 + 65536LL * 4096 + 4096);
    CHECK(!strcmp(s->layers[1].desc, "conv2d") && !strcmp(s->layers[1].name, "conv1"));
    cx_net_shapes_free(s);
    cx_net_shapes_free(NULL);
}

int main(void) {
    cx_set_threads(1);
    RUN(same_as_full_parse_on_models);
    RUN(same_as_full_parse_on_cases);
    RUN(same_as_full_parse_on_mutations);
    RUN(huge_network_checked_without_allocating);
    TEST_END();
}
