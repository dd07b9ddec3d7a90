/* The base module: a registry of named parameters, buffers and children
 * (ownership, sharing, naming), generic listing, freeing, printing, state
 * save / load / copy, and the forward entry points. See include/cortex/nn.h. */
#include "../tensor/internal.h"
#include <stdio.h>

typedef enum { SLOT_PARAM, SLOT_BUFFER } slot_kind;

typedef struct {
    char *name;        /* local name */
    cx_tensor **ref;   /* the module's own field holding the tensor */
    slot_kind kind;
    bool owned;
} tslot;

typedef struct {
    char *name;
    cx_module *m;
    bool home;         /* the child's canonical path goes through this parent */
} cslot;

struct cx_module_reg {
    tslot *t;
    int nt, ct;
    cslot *c;
    int nc, cc;
    char *path;        /* canonical path of the module (NULL: a root) */
    bool attached;     /* has a home parent */
};

static struct cx_module_reg *reg_of(cx_module *m) {
    if (!m->reg) m->reg = cx_xcalloc(1, sizeof *m->reg);
    return m->reg;
}

void cx_module_init(cx_module *m, const cx_module_ops *ops) {
    if (!m || !ops || !ops->kind) cx_fatal("cx_module_init: NULL module or ops (ops->kind is required)");
    m->ops = ops;
    m->reg = NULL;
    m->refs = 1;
}

static char *join(const char *path, const char *name) {
    size_t a = path ? strlen(path) : 0, b = strlen(name);
    char *s = cx_xmalloc(a + b + 2);
    if (a) {
        memcpy(s, path, a);
        s[a] = '.';
        memcpy(s + a + 1, name, b + 1);
    } else {
        memcpy(s, name, b + 1);
    }
    return s;
}

/* Set the canonical path of m and rename everything whose name derives from it. */
static void set_path(cx_module *m, const char *path) {
    struct cx_module_reg *r = reg_of(m);
    char *p = path ? cx_xstrdup(path) : NULL;
    free(r->path);
    r->path = p;
    for (int i = 0; i < r->nt; i++)
        if (r->t[i].owned && *r->t[i].ref) {
            char *n = join(r->path, r->t[i].name);
            cx_tensor_set_name(*r->t[i].ref, n);
            free(n);
        }
    for (int i = 0; i < r->nc; i++)
        if (r->c[i].home) {
            char *n = join(r->path, r->c[i].name);
            set_path(r->c[i].m, n);
            free(n);
        }
}

static void check_name(cx_module *m, const char *what, const char *name) {
    if (!name || !*name || strchr(name, '.'))
        cx_fatal("%s: %s name '%s' must be non-empty without dots", m->ops->kind, what, name ? name : "(null)");
    struct cx_module_reg *r = reg_of(m);
    for (int i = 0; i < r->nt; i++)
        if (!strcmp(r->t[i].name, name)) cx_fatal("%s: duplicate %s name '%s'", m->ops->kind, what, name);
    for (int i = 0; i < r->nc; i++)
        if (!strcmp(r->c[i].name, name)) cx_fatal("%s: duplicate %s name '%s'", m->ops->kind, what, name);
}

static cx_tensor *add_tensor(cx_module *m, const char *name, cx_tensor **field, slot_kind kind, bool owned,
                             const char *fn) {
    if (!m || !field || !*field) cx_fatal("%s: NULL module or tensor for '%s'", fn, name ? name : "(null)");
    cx_tensor *t = *field;
    if (!t->persistent) cx_fatal("%s: '%s' must be a persistent tensor (cx_tensor_new / cx_param_new)", fn, name);
    if (kind == SLOT_PARAM && (t->dtype != CX_F32 || !t->requires_grad))
        cx_fatal("%s: parameter '%s' must be F32 and require grad", fn, name);
    check_name(m, "tensor", name);
    struct cx_module_reg *r = reg_of(m);
    if (r->nt == r->ct) {
        r->ct = r->ct ? 2 * r->ct : 4;
        r->t = cx_xrealloc(r->t, (size_t)r->ct * sizeof *r->t);
    }
    r->t[r->nt++] = (tslot){cx_xstrdup(name), field, kind, owned};
    if (owned) {
        char *n = join(r->path, name);
        cx_tensor_set_name(t, n);
        free(n);
    }
    return t;
}

cx_tensor *cx_module_add_param(cx_module *m, const char *name, cx_tensor **field) {
    return add_tensor(m, name, field, SLOT_PARAM, true, "cx_module_add_param");
}
cx_tensor *cx_module_add_buffer(cx_module *m, const char *name, cx_tensor **field) {
    return add_tensor(m, name, field, SLOT_BUFFER, true, "cx_module_add_buffer");
}
cx_tensor *cx_module_share_param(cx_module *m, const char *name, cx_tensor **field) {
    return add_tensor(m, name, field, SLOT_PARAM, false, "cx_module_share_param");
}

/* True when `x` is m or below it. */
static bool contains(const cx_module *m, const cx_module *x) {
    if (m == x) return true;
    for (int i = 0; m->reg && i < m->reg->nc; i++)
        if (contains(m->reg->c[i].m, x)) return true;
    return false;
}

cx_module *cx_module_add(cx_module *parent, const char *name, cx_module *child) {
    if (!parent || !child) cx_fatal("cx_module_add: NULL parent or child");
    if (child == parent || contains(child, parent))
        cx_fatal("%s: adding '%s' would make a module its own descendant (a cycle)", parent->ops->kind,
                 name ? name : "(null)");
    if (child->reg && child->reg->attached && child->refs < 2)
        cx_fatal("%s: '%s' already has a parent that holds its only reference: pass cx_module_ref(child) to add "
                 "it to a second parent",
                 parent->ops->kind, name ? name : "(null)");
    check_name(parent, "child", name); /* refused: the caller keeps its reference */
    struct cx_module_reg *r = reg_of(parent), *cr = reg_of(child);
    if (r->nc == r->cc) {
        r->cc = r->cc ? 2 * r->cc : 4;
        r->c = cx_xrealloc(r->c, (size_t)r->cc * sizeof *r->c);
    }
    bool home = !cr->attached;
    r->c[r->nc++] = (cslot){cx_xstrdup(name), child, home};
    if (home) {
        cr->attached = true;
        char *p = join(r->path, name);
        set_path(child, p);
        free(p);
    }
    return child;
}

cx_module *cx_module_ref(cx_module *m) {
    if (!m) cx_fatal("cx_module_ref: NULL module");
    m->refs++;
    return m;
}

void cx_module_free(cx_module *m) {
    if (!m) return;
    if (--m->refs > 0) return;
    /* the registered tensors and children first (their fields may live in
     * memory the destroy hook frees), then the module's own extras */
    struct cx_module_reg *r = m->reg;
    if (r) {
        for (int i = 0; i < r->nt; i++) {
            if (r->t[i].owned) {
                cx_tensor_free(*r->t[i].ref);
                *r->t[i].ref = NULL;
            }
            free(r->t[i].name);
        }
        for (int i = 0; i < r->nc; i++) {
            cx_module_free(r->c[i].m);
            free(r->c[i].name);
        }
    }
    if (m->ops->destroy) m->ops->destroy(m);
    if (r) {
        free(r->t);
        free(r->c);
        free(r->path);
        free(r);
    }
    free(m);
}

/* ---- lookup */
/* The slot of local name `name` in m, or -1. */
static int tslot_of(cx_module *m, const char *name) {
    struct cx_module_reg *r = m->reg;
    for (int i = 0; r && i < r->nt; i++)
        if (!strcmp(r->t[i].name, name)) return i;
    return -1;
}

/* Walk all but the last segment of a dotted path; *last gets the last one. */
static cx_module *walk(cx_module *m, const char *path, const char **last) {
    const char *p = path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot) {
            *last = p;
            return m;
        }
        size_t len = (size_t)(dot - p);
        cx_module *next = NULL;
        struct cx_module_reg *r = m->reg;
        for (int i = 0; r && i < r->nc; i++)
            if (strlen(r->c[i].name) == len && !strncmp(r->c[i].name, p, len)) next = r->c[i].m;
        if (!next) return NULL;
        m = next;
        p = dot + 1;
    }
}

cx_tensor *cx_module_tensor(cx_module *m, const char *path) {
    if (!m || !path) return NULL;
    const char *last;
    cx_module *o = walk(m, path, &last);
    if (!o) return NULL;
    int i = tslot_of(o, last);
    return i < 0 ? NULL : *o->reg->t[i].ref;
}

cx_module *cx_module_find(cx_module *m, const char *path) {
    if (!m || !path) return NULL;
    if (!*path) return m;
    const char *last;
    cx_module *o = walk(m, path, &last);
    if (!o) return NULL;
    for (int i = 0; o->reg && i < o->reg->nc; i++)
        if (!strcmp(o->reg->c[i].name, last)) return o->reg->c[i].m;
    return NULL;
}

/* True when a slot under m owns t. */
static bool owns(const cx_module *m, const cx_tensor *t) {
    const struct cx_module_reg *r = m->reg;
    for (int i = 0; r && i < r->nt; i++)
        if (r->t[i].owned && *r->t[i].ref == t) return true;
    for (int i = 0; r && i < r->nc; i++)
        if (owns(r->c[i].m, t)) return true;
    return false;
}

/* Every slot under m that holds `old` now holds t (owned by nobody here). */
static void retarget(cx_module *m, const cx_tensor *old, cx_tensor *t) {
    struct cx_module_reg *r = m->reg;
    if (!r) return;
    for (int i = 0; i < r->nt; i++)
        if (*r->t[i].ref == old) {
            *r->t[i].ref = t;
            r->t[i].owned = false;
        }
    for (int i = 0; i < r->nc; i++) retarget(r->c[i].m, old, t);
}

void cx_module_tie(cx_module *m, const char *path, cx_tensor *t) {
    if (!m || !path || !t) cx_fatal("cx_module_tie: NULL argument");
    const char *last;
    cx_module *o = walk(m, path, &last);
    int i = o ? tslot_of(o, last) : -1;
    if (i < 0) cx_fatal("%s: no tensor '%s' to tie", m->ops->kind, path);
    tslot *s = &o->reg->t[i];
    if (s->kind != SLOT_PARAM) cx_fatal("%s: '%s' is a buffer, not a parameter (only parameters are tied)", m->ops->kind, path);
    cx_tensor *old = *s->ref;
    char b1[96], b2[96];
    if (old->dtype != t->dtype || !cx_same_shape(old, t))
        cx_fatal("%s: cannot tie '%s' %s %s to a %s %s tensor", m->ops->kind, path, cx_dtype_name(old->dtype),
                 cx_shape_str(old, b1, sizeof b1), cx_dtype_name(t->dtype), cx_shape_str(t, b2, sizeof b2));
    if (!t->persistent || !t->requires_grad)
        cx_fatal("%s: '%s' can only be tied to a persistent parameter (cx_param_new)", m->ops->kind, path);
    if (old == t) return;
    /* the old tensor may be listed under other names too (shared or tied
     * before): every slot under m that holds it now holds t, then it is freed
     * if one of them owned it */
    const bool owned = owns(m, old);
    retarget(m, old, t);
    if (owned) cx_tensor_free(old);
}

int cx_module_num_children(const cx_module *m) { return m && m->reg ? m->reg->nc : 0; }
cx_module *cx_module_child(const cx_module *m, int i, const char **name) {
    int n = cx_module_num_children(m);
    if (i < 0 || i >= n) cx_fatal("%s: child %d out of range (%d children)", m ? m->ops->kind : "module", i, n);
    if (name) *name = m->reg->c[i].name;
    return m->reg->c[i].m;
}

bool cx_module_split_safe(const cx_module *m) {
    if (!m || !m->ops->split_safe) return false;
    for (int i = 0; i < cx_module_num_children(m); i++)
        if (!cx_module_split_safe(m->reg->c[i].m)) return false;
    return true;
}

/* ---- listing */
static bool listed(const cx_params *p, const cx_tensor *t) {
    for (int i = 0; i < p->n; i++)
        if (p->t[i] == t) return true;
    return false;
}

static void collect(cx_module *m, cx_params *out, slot_kind kind) {
    struct cx_module_reg *r = m->reg;
    if (!r) return;
    for (int i = 0; i < r->nt; i++)
        if (r->t[i].kind == kind && !listed(out, *r->t[i].ref)) cx_params_add(out, *r->t[i].ref);
    for (int i = 0; i < r->nc; i++) collect(r->c[i].m, out, kind);
}

void cx_module_params(cx_module *m, cx_params *out) { collect(m, out, SLOT_PARAM); }
void cx_module_buffers(cx_module *m, cx_params *out) { collect(m, out, SLOT_BUFFER); }
void cx_module_state(cx_module *m, cx_params *out) {
    cx_module_params(m, out);
    cx_module_buffers(m, out);
}

static void sd_add(cx_state_dict *sd, int *cap, char *name, cx_tensor *t) {
    if (sd->n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        sd->names = cx_xrealloc(sd->names, (size_t)*cap * sizeof *sd->names);
        sd->t = cx_xrealloc(sd->t, (size_t)*cap * sizeof *sd->t);
    }
    sd->names[sd->n] = name;
    sd->t[sd->n++] = t;
}

static void sd_walk(cx_module *m, const char *prefix, cx_state_dict *sd, int *cap) {
    struct cx_module_reg *r = m->reg;
    if (!r) return;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < r->nt; i++)
            if ((int)r->t[i].kind == k) sd_add(sd, cap, join(prefix, r->t[i].name), *r->t[i].ref);
    for (int i = 0; i < r->nc; i++) {
        char *p = join(prefix, r->c[i].name);
        sd_walk(r->c[i].m, p, sd, cap);
        free(p);
    }
}

void cx_module_state_dict(cx_module *m, cx_state_dict *sd) {
    memset(sd, 0, sizeof *sd);
    int cap = 0;
    sd_walk(m, NULL, sd, &cap);
}

void cx_state_dict_free(cx_state_dict *sd) {
    for (int i = 0; i < sd->n; i++) free(sd->names[i]);
    free(sd->names);
    free(sd->t);
    memset(sd, 0, sizeof *sd);
}

/* Each tensor of the state once (params then buffers, as cx_module_state)
 * with its first state-dict name relative to m. */
typedef struct { int n; cx_tensor **t; const char **name; } uniq;
static void unique_state(cx_module *m, const cx_state_dict *sd, uniq *u) {
    cx_params ps;
    cx_params_init(&ps);
    cx_module_state(m, &ps);
    u->n = ps.n;
    u->t = ps.t;
    u->name = cx_xcalloc((size_t)(ps.n ? ps.n : 1), sizeof *u->name);
    for (int i = 0; i < ps.n; i++)
        for (int j = 0; j < sd->n && !u->name[i]; j++)
            if (sd->t[j] == ps.t[i]) u->name[i] = sd->names[j];
}
static void uniq_free(uniq *u) {
    free(u->t);
    free(u->name);
}

cx_tensor *cx_module_forward(cx_module *m, cx_tensor *x) {
    if (!m) cx_fatal("cx_module_forward: NULL module");
    if (m->ops->forward) return m->ops->forward(m, x);
    if (!m->ops->call) cx_fatal("%s: the module has neither forward nor call", m->ops->kind);
    cx_tensor *out = NULL;
    if (m->ops->call(m, &x, 1, &out, 1) < 1 || !out) cx_fatal("%s: call returned no output", m->ops->kind);
    return out;
}

int cx_module_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out) {
    if (!m) cx_fatal("cx_module_call: NULL module");
    if (n_in < 0 || max_out < 1) cx_fatal("%s: call needs n_in >= 0 and max_out >= 1", m->ops->kind);
    if (m->ops->call) return m->ops->call(m, in, n_in, out, max_out);
    if (!m->ops->forward) cx_fatal("%s: the module has neither forward nor call", m->ops->kind);
    if (n_in != 1) cx_fatal("%s takes one input, got %d", m->ops->kind, n_in);
    out[0] = m->ops->forward(m, in[0]);
    return 1;
}

const char *cx_module_kind(const cx_module *m) { return m->ops->kind; }
void cx_module_describe(const cx_module *m, char *buf, size_t n) {
    if (m->ops->describe) m->ops->describe(m, buf, n);
    else snprintf(buf, n, "%s", m->ops->kind);
}

void cx_module_print(cx_module *m) {
    char buf[128];
    int64_t total = 0;
    int nc = cx_module_num_children(m);
    if (nc > 0) {
        for (int i = 0; i < nc; i++) {
            const char *name;
            cx_module *c = cx_module_child(m, i, &name);
            cx_params p;
            cx_params_init(&p);
            cx_module_params(c, &p);
            cx_module_describe(c, buf, sizeof buf);
            int64_t k = cx_params_count(&p);
            printf("  %-8s %-32s %10lld params\n", name, buf, (long long)k);
            cx_params_free(&p);
        }
        cx_params p;
        cx_params_init(&p);
        cx_module_params(m, &p); /* shared tensors counted once */
        total = cx_params_count(&p);
        cx_params_free(&p);
    } else {
        cx_params p;
        cx_params_init(&p);
        cx_module_params(m, &p);
        cx_module_describe(m, buf, sizeof buf);
        total = cx_params_count(&p);
        printf("  %-41s %10lld params\n", buf, (long long)total);
        cx_params_free(&p);
    }
    printf("  total %46lld params\n", (long long)total);
}

/* ---- state I/O */
cx_status cx_module_save(cx_module *m, const char *path, const char *const *meta_keys,
                         const char *const *meta_values, int n_meta) {
    if (n_meta < 0) return cx_set_error(CX_ERR_ARG, "cx_module_save: n_meta %d < 0", n_meta);
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    uniq u;
    unique_state(m, &sd, &u);
    const char **mk = cx_xmalloc((size_t)(n_meta + 1) * sizeof *mk), **mv = cx_xmalloc((size_t)(n_meta + 1) * sizeof *mv);
    mk[0] = "format";
    mv[0] = "pt";
    for (int i = 0; i < n_meta; i++) {
        mk[i + 1] = meta_keys[i];
        mv[i + 1] = meta_values[i];
    }
    cx_status st = cx_st_save(path, u.t, u.name, u.n, mk, mv, n_meta + 1);
    free(mk);
    free(mv);
    uniq_free(&u);
    cx_state_dict_free(&sd);
    return st;
}

cx_status cx_module_load_state(cx_module *m, const cx_st_file *f, const char *path) {
    if (!path) path = "<state>";
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    uniq u;
    unique_state(m, &sd, &u);
    const cx_tensor **src = cx_xcalloc((size_t)(u.n ? u.n : 1), sizeof *src);
    cx_status st = CX_OK;
    for (int i = 0; i < u.n && st == CX_OK; i++) {
        /* the tensor under its own name, else under any other name it has */
        src[i] = cx_st_get(f, u.name[i]);
        for (int j = 0; j < sd.n && !src[i]; j++)
            if (sd.t[j] == u.t[i]) src[i] = cx_st_get(f, sd.names[j]);
        char b1[96], b2[96];
        if (!src[i]) st = cx_set_error(CX_ERR_NOTFOUND, "%s: tensor '%s' is missing", path, u.name[i]);
        else if (!cx_same_shape(src[i], u.t[i]) || src[i]->dtype != u.t[i]->dtype)
            st = cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' is %s %s, the model expects %s %s", path, u.name[i],
                              cx_dtype_name(src[i]->dtype), cx_shape_str(src[i], b1, sizeof b1),
                              cx_dtype_name(u.t[i]->dtype), cx_shape_str(u.t[i], b2, sizeof b2));
    }
    if (st == CX_OK)
        for (int i = 0; i < u.n; i++)
            memcpy(u.t[i]->data, src[i]->data, (size_t)src[i]->numel * cx_dtype_size(src[i]->dtype));
    free(src);
    uniq_free(&u);
    cx_state_dict_free(&sd);
    return st;
}

cx_status cx_module_load(cx_module *m, const char *path) {
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    st = cx_module_load_state(m, f, path);
    cx_st_free(f);
    return st;
}

cx_status cx_module_copy_state(cx_module *dst, cx_module *src) {
    cx_state_dict sd, ss;
    cx_module_state_dict(dst, &sd);
    cx_module_state_dict(src, &ss);
    uniq ud, us;
    unique_state(dst, &sd, &ud);
    unique_state(src, &ss, &us);
    cx_status st = CX_OK;
    if (ud.n != us.n)
        st = cx_set_error(CX_ERR_SHAPE, "cx_module_copy_state: %s has %d state tensors, %s has %d", dst->ops->kind,
                          ud.n, src->ops->kind, us.n);
    for (int i = 0; i < ud.n && st == CX_OK; i++) {
        char b1[96], b2[96];
        if (strcmp(ud.name[i], us.name[i]) || ud.t[i]->dtype != us.t[i]->dtype || !cx_same_shape(ud.t[i], us.t[i]))
            st = cx_set_error(CX_ERR_SHAPE, "cx_module_copy_state: '%s' %s %s does not match '%s' %s %s", ud.name[i],
                              cx_dtype_name(ud.t[i]->dtype), cx_shape_str(ud.t[i], b1, sizeof b1), us.name[i],
                              cx_dtype_name(us.t[i]->dtype), cx_shape_str(us.t[i], b2, sizeof b2));
    }
    if (st == CX_OK)
        for (int i = 0; i < ud.n; i++)
            if (ud.t[i] != us.t[i])
                memcpy(ud.t[i]->data, us.t[i]->data, (size_t)us.t[i]->numel * cx_dtype_size(us.t[i]->dtype));
    uniq_free(&ud);
    uniq_free(&us);
    cx_state_dict_free(&sd);
    cx_state_dict_free(&ss);
    return st;
}

typedef struct {
    const int *wshape;
    int wnd, bias_n;
    cx_tensor *w, *b;
} layer_params;

static cx_status layer_params_fn(void *user) {
    layer_params *p = user;
    p->w = cx_param_new("weight", p->wshape, p->wnd);
    if (p->bias_n > 0) p->b = cx_param_new("bias", (const int[]){p->bias_n}, 1);
    return CX_OK;
}

void cx_layer_params_new(const int *wshape, int wnd, int bias_n, cx_tensor **w, cx_tensor **b) {
    layer_params p = {wshape, wnd, bias_n, NULL, NULL};
    if (cx_try(layer_params_fn, &p)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        if (p.w) cx_tensor_free(p.w);
        cx_fatal("%s", msg);
    }
    *w = p.w;
    *b = p.b;
}
