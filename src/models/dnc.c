/* The Differentiable Neural Computer model: an LSTM cell controller, the
 * interface vector and the memory access step of src/nn/dnc.c. Parameters,
 * formulas and the state: include/cortex/dnc.h. */
#include "cortex/dnc.h"
#include "../tensor/internal.h"
#include "cortex/io.h"
#include "cortex/rnn.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    cx_module base;
    cx_dnc_config cfg;
    cx_module *ctrl, *iface, *out, *rout; /* children (owned through the base) */
} dnc_m;

static cx_tensor *dnc_fwd(cx_module *m, cx_tensor *x) { return cx_dnc_forward(m, x, NULL); }

static void dnc_describe(const cx_module *m, char *buf, size_t n) {
    const cx_dnc_config *c = &((const dnc_m *)m)->cfg;
    snprintf(buf, n, "DNC(%d -> %d, LSTM %d, memory %d x %d, %d read head%s)", c->input_size, c->output_size,
             c->hidden_size, c->slots, c->width, c->read_heads, c->read_heads == 1 ? "" : "s");
}

static const cx_module_ops dnc_ops = {.kind = "DNC", .forward = dnc_fwd, .describe = dnc_describe};

static const dnc_m *as_dnc(const cx_module *m, const char *op) {
    if (!m) cx_fatal("%s: the model must not be NULL", op);
    if (m->ops != &dnc_ops) cx_fatal("%s: the module is a %s, not a DNC (cx_dnc_new)", op, cx_module_kind(m));
    return (const dnc_m *)m;
}

cx_module *cx_dnc_new(const cx_dnc_config *cfg) {
    if (!cfg) cx_fatal("dnc_new: cfg must not be NULL");
    const struct {
        const char *name;
        int v;
    } sz[] = {{"input_size", cfg->input_size}, {"output_size", cfg->output_size}, {"hidden_size", cfg->hidden_size},
              {"slots", cfg->slots},           {"width", cfg->width},             {"read_heads", cfg->read_heads}};
    for (size_t k = 0; k < sizeof sz / sizeof *sz; k++)
        if (sz[k].v < 1 || sz[k].v > (1 << 20))
            cx_fatal("dnc_new: %s = %d must be between 1 and %d", sz[k].name, sz[k].v, 1 << 20);
    const int RW = cfg->read_heads * cfg->width;
    dnc_m *d = calloc(1, sizeof *d);
    if (!d) cx_fatal("dnc_new: out of memory");
    cx_module_init(&d->base, &dnc_ops);
    d->cfg = *cfg;
    d->ctrl = cx_module_add(&d->base, "controller", cx_lstm_cell_new(cfg->input_size + RW, cfg->hidden_size, NULL));
    d->iface = cx_module_add(&d->base, "interface",
                             cx_linear_new(cfg->hidden_size, cx_dnc_interface_size(cfg->read_heads, cfg->width), true));
    d->out = cx_module_add(&d->base, "output", cx_linear_new(cfg->hidden_size, cfg->output_size, true));
    d->rout = cx_module_add(&d->base, "read_output", cx_linear_new(RW, cfg->output_size, false));
    return &d->base;
}

cx_dnc_config cx_dnc_get_config(const cx_module *m) { return as_dnc(m, "dnc_get_config")->cfg; }

cx_dnc_carry cx_dnc_initial(cx_module *m, int batch) {
    const dnc_m *d = as_dnc(m, "dnc_initial");
    if (batch < 1) cx_fatal("dnc_initial: batch = %d must be >= 1", batch);
    cx_dnc_carry s;
    s.h = cx_zeros(CX_SHAPE(batch, d->cfg.hidden_size));
    s.c = cx_zeros(CX_SHAPE(batch, d->cfg.hidden_size));
    s.mem = cx_dnc_state_zeros(batch, d->cfg.slots, d->cfg.width, d->cfg.read_heads);
    return s;
}

cx_tensor *cx_dnc_step(cx_module *m, cx_tensor *x, const cx_dnc_carry *prev, cx_dnc_carry *next,
                       cx_dnc_interface *iface) {
    const char *op = "dnc_step";
    const dnc_m *d = as_dnc(m, op);
    const cx_dnc_config *c = &d->cfg;
    char s1[96], s2[96];
    if (!x || !prev || !next) cx_fatal("%s: x, prev and next must not be NULL", op);
    if (x->dtype != CX_F32 || x->ndim != 2 || x->shape[1] != c->input_size)
        cx_fatal("%s: x has shape %s (%s), expected [B, input_size] = [B, %d] F32", op, cx_shape_str(x, s1, sizeof s1),
                 cx_dtype_name(x->dtype), c->input_size);
    const int B = x->shape[0], RW = c->read_heads * c->width;
    if (!prev->h || !prev->c || !prev->mem.reads || prev->h->ndim != 2 || prev->h->shape[0] != B ||
        prev->h->shape[1] != c->hidden_size || prev->mem.reads->ndim != 3 || prev->mem.reads->shape[0] != B ||
        prev->mem.reads->shape[1] != c->read_heads || prev->mem.reads->shape[2] != c->width)
        cx_fatal("%s: the carry (h %s, reads %s) does not match x of batch %d and the model (h [B, %d], reads "
                 "[B, %d, %d]); start from cx_dnc_initial(m, %d)",
                 op, prev->h ? cx_shape_str(prev->h, s1, sizeof s1) : "NULL",
                 prev->mem.reads ? cx_shape_str(prev->mem.reads, s2, sizeof s2) : "NULL", B, c->hidden_size,
                 c->read_heads, c->width, B);
    cx_tensor *inp = cx_concat((cx_tensor *[]){x, cx_reshape(prev->mem.reads, CX_SHAPE(B, RW))}, 2, 1);
    cx_rnn_out r = cx_rnn_forward(d->ctrl, inp, prev->h, prev->c);
    cx_dnc_interface it = cx_dnc_interface_split(cx_module_forward(d->iface, r.h), c->read_heads, c->width);
    cx_dnc_state mem = cx_dnc_access(&prev->mem, &it);
    cx_tensor *y = cx_add(cx_module_forward(d->out, r.h),
                          cx_module_forward(d->rout, cx_reshape(mem.reads, CX_SHAPE(B, RW))));
    next->h = r.h;
    next->c = r.c;
    next->mem = mem;
    if (iface) *iface = it;
    return y;
}

cx_tensor *cx_dnc_forward(cx_module *m, cx_tensor *x, cx_dnc_carry *states) {
    const char *op = "dnc_forward";
    const dnc_m *d = as_dnc(m, op);
    char s1[96];
    if (!x) cx_fatal("%s: x must not be NULL", op);
    if (x->dtype != CX_F32 || x->ndim != 3 || x->shape[2] != d->cfg.input_size)
        cx_fatal("%s: x has shape %s (%s), expected [T, B, input_size] = [T, B, %d] F32", op,
                 cx_shape_str(x, s1, sizeof s1), cx_dtype_name(x->dtype), d->cfg.input_size);
    const int T = x->shape[0], B = x->shape[1];
    cx_dnc_carry s = cx_dnc_initial(m, B);
    cx_tensor **ys = cx_arena_alloc(sizeof(cx_tensor *) * (size_t)T);
    for (int t = 0; t < T; t++) {
        cx_tensor *xt = cx_reshape(cx_slice(x, 0, t, t + 1, 1), CX_SHAPE(B, d->cfg.input_size));
        ys[t] = cx_dnc_step(m, xt, &s, &s, NULL);
        if (states) states[t] = s;
    }
    return cx_stack(ys, T, 0);
}

static const char *const META_KEYS[6] = {"dnc.input_size", "dnc.output_size", "dnc.hidden_size",
                                         "dnc.slots",      "dnc.width",       "dnc.read_heads"};

cx_status cx_dnc_save(cx_module *m, const char *path) {
    const cx_dnc_config c = as_dnc(m, "dnc_save")->cfg;
    const int v[6] = {c.input_size, c.output_size, c.hidden_size, c.slots, c.width, c.read_heads};
    char buf[6][16];
    const char *vals[6];
    for (int k = 0; k < 6; k++) {
        snprintf(buf[k], sizeof buf[k], "%d", v[k]);
        vals[k] = buf[k];
    }
    return cx_module_save(m, path, META_KEYS, vals, 6);
}

cx_status cx_dnc_load(const char *path, cx_module **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "dnc_load: out must not be NULL");
    *out = NULL;
    if (!path) return cx_set_error(CX_ERR_ARG, "dnc_load: path must not be NULL");
    cx_st_file *f = NULL;
    cx_status st = cx_st_load(path, &f);
    if (st != CX_OK) return st;
    int v[6];
    for (int k = 0; k < 6; k++) {
        const char *s = cx_st_meta(f, META_KEYS[k]);
        if (!cx_st_meta_int(f, META_KEYS[k], 1, 1 << 20, &v[k])) {
            cx_set_error(CX_ERR_FORMAT, "%s: %s metadata %s%s%s (a DNC file holds the configuration written by "
                         "cx_dnc_save: an integer between 1 and %d)", path, s ? "bad" : "missing", META_KEYS[k],
                         s ? " = " : "", s ? s : "", 1 << 20);
            cx_st_free(f); /* after the message: s points into f */
            return CX_ERR_FORMAT;
        }
    }
    cx_dnc_config c = {v[0], v[1], v[2], v[3], v[4], v[5]};
    cx_module *m = cx_dnc_new(&c);
    st = cx_module_load_state(m, f, path);
    cx_st_free(f);
    if (st != CX_OK) {
        cx_module_free(m);
        return st;
    }
    *out = m;
    return CX_OK;
}
