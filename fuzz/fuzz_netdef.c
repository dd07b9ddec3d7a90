/* libFuzzer target: .net network files through cx_net_check (the parse-only
 * path: no weight is allocated, nothing runs).
 *
 * With CX_FUZZ_NET_DIFF=1 in the environment it is also a differential test:
 * whenever the full cx_net_parse is cheap enough to run (every number in the
 * text is a single digit and the network checks out small), both must give
 * the same status and message, and the same rows on success.
 * With CX_FUZZ_NET_FULL=1 it runs cx_net_parse only (what this target did
 * before cx_net_check existed: to compare the speed). */
#include "fuzz_common.h"

static int cxf_net_diff = -1, cxf_net_full;

static int64_t cxf_net_cost(const cx_net_shapes *s) {
    int64_t c = s->params;
    for (int i = 0; i < s->n; i++) {
        int64_t n = 1;
        for (int k = 0; k < s->layers[i].out_ndim; k++) n *= s->layers[i].out_shape[k];
        c += n;
    }
    return c;
}

static int cxf_small_numbers(const char *t) {
    for (; *t; t++)
        if (t[0] >= '0' && t[0] <= '9' && t[1] >= '0' && t[1] <= '9') return 0;
    return 1;
}

static void cxf_net_compare(const char *text, cx_status st, const char *msg, const cx_net_shapes *s) {
    cx_module *m = NULL;
    cx_status sf = cx_net_parse(text, "fuzz.net", &m);
    if ((st == CX_OK) != (sf == CX_OK) || (st && strcmp(msg, cx_last_error()))) {
        fprintf(stderr, "cx_net_check: %d '%s'\ncx_net_parse: %d '%s'\n", (int)st, msg, (int)sf,
                sf ? cx_last_error() : "");
        abort();
    }
    if (st == CX_OK) {
        if (s->n != cx_net_num_layers(m)) abort();
        for (int i = 0; i < s->n; i++) {
            const cx_layer_info *a = &s->layers[i], *b = cx_net_layer(m, i);
            if (strcmp(a->name, b->name) || a->out_ndim != b->out_ndim || a->params != b->params ||
                memcmp(a->out_shape, b->out_shape, sizeof a->out_shape) || a->spatial != b->spatial ||
                a->rf_all != b->rf_all || memcmp(a->rf, b->rf, sizeof a->rf) || memcmp(a->jump, b->jump, sizeof a->jump)) {
                fprintf(stderr, "layer %d ('%s') differs\n", i, a->name);
                abort();
            }
        }
    }
    cx_module_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cxf_begin();
    if (cxf_net_diff < 0) {
        const char *e = getenv("CX_FUZZ_NET_DIFF");
        cxf_net_diff = e && *e == '1';
        e = getenv("CX_FUZZ_NET_FULL");
        cxf_net_full = e && *e == '1';
    }
    if (size > 1 << 16) return 0;
    char *text = cxf_text(data, size);
    if (cxf_net_full) {
        cx_module *m = NULL;
        cxf_check_error(cx_net_parse(text, "fuzz.net", &m));
        cx_module_free(m);
        free(text);
        return 0;
    }
    cx_net_shapes *s = NULL;
    cx_status st = cx_net_check(text, "fuzz.net", &s);
    cxf_check_error(st);
    if ((st == CX_OK) != (s != NULL)) abort();
    if (cxf_net_diff && cxf_small_numbers(text)) {
        char msg[800];
        snprintf(msg, sizeof msg, "%s", st ? cx_last_error() : "");
        /* the full parse builds every layer up to the failing one: only when
         * the text up to that line is small */
        int64_t cost = 0;
        if (st == CX_OK) {
            cost = cxf_net_cost(s);
        } else {
            int line = 0;
            const char *colon = strstr(msg, "fuzz.net:");
            if (colon) line = atoi(colon + 9);
            char *cut = text;
            for (int l = 1; l < line && cut; l++) {
                cut = strchr(cut, '\n');
                if (cut) cut++;
            }
            if (line > 2 && cut) {
                char keep = *cut;
                *cut = 0;
                cx_net_shapes *p = NULL;
                if (cx_net_check(text, "fuzz.net", &p) == CX_OK) cost = cxf_net_cost(p);
                else cost = -1;
                cx_net_shapes_free(p);
                *cut = keep;
            }
        }
        if (cost >= 0 && cost < 10000) cxf_net_compare(text, st, msg, s);
    }
    cx_net_shapes_free(s);
    free(text);
    return 0;
}
