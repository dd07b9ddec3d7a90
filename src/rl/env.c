/* The environment API (include/cortex/env.h): the registry, specs and
 * settings, time limits, frame stacking, statistics, snapshots, vectorised
 * copies, and the drawing helpers the environments render with. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "env_internal.h"

static const cx_env_class *const registry[] = {
    &cx_env_cartpole,
    &cx_env_acrobot,
    &cx_env_mountaincar,
    &cx_env_pendulum,
    &cx_env_frozenlake,
    &cx_env_catch,
};
#define NREG ((int)(sizeof registry / sizeof *registry))

void cx_env_list(FILE *out) {
    for (int i = 0; i < NREG; i++)
        fprintf(out, "  %-16s %-12s %s\n", registry[i]->id, registry[i]->alias, registry[i]->about);
}

/* Floats per observation of a space: n for a box, 1 for a discrete space
 * (the index, as a float). */
static int obs_floats(const cx_space *s) { return s->kind == CX_SPACE_DISCRETE ? 1 : s->n; }

static int same_name(const char *a, const char *b, size_t nb) {
    if (strlen(a) != nb) return 0;
    for (size_t i = 0; i < nb; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
    return 1;
}

/* ---- settings -------------------------------------------------------- */

cx_status envi_parse_int(const char *key, const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return cx_set_error(CX_ERR_INVALID, "setting %s=%s: expected an integer in [%d, %d]", key, v, lo, hi);
    *out = (int)x;
    return CX_OK;
}

cx_status envi_parse_double(const char *key, const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !(x >= lo && x <= hi))
        return cx_set_error(CX_ERR_INVALID, "setting %s=%s: expected a number in [%g, %g]", key, v, lo, hi);
    *out = x;
    return CX_OK;
}

cx_status envi_parse_bool(const char *key, const char *v, int *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *out = 0;
    else return cx_set_error(CX_ERR_INVALID, "setting %s=%s: expected 0/1 (or true/false)", key, v);
    return CX_OK;
}

void envi_discrete(cx_space *s, int n) {
    memset(s, 0, sizeof *s);
    s->kind = CX_SPACE_DISCRETE;
    s->n = n;
}

static float *own_floats(cx_env *e, int n) {
    for (int i = 0; i < 6; i++)
        if (!e->bounds[i]) {
            e->bounds[i] = calloc((size_t)n, sizeof(float));
            if (!e->bounds[i]) cx_fatal("env: out of memory");
            return e->bounds[i];
        }
    cx_fatal("env: more than 6 bound arrays");
}

void envi_box(cx_env *e, cx_space *s, int ndim, const int *shape, const float *low, const float *high, float lo,
              float hi) {
    memset(s, 0, sizeof *s);
    s->kind = CX_SPACE_BOX;
    s->ndim = ndim;
    int n = 1;
    for (int i = 0; i < ndim; i++) {
        s->shape[i] = shape[i];
        n *= shape[i];
    }
    s->n = n;
    float *l = own_floats(e, n), *h = own_floats(e, n);
    for (int i = 0; i < n; i++) {
        l[i] = low ? low[i] : lo;
        h[i] = high ? high[i] : hi;
    }
    s->low = l;
    s->high = h;
}

static cx_status apply_setting(cx_env *e, const char *key, const char *val) {
    if (!strcmp(key, "max_steps")) {
        e->max_steps_given = 1;
        return envi_parse_int(key, val, 0, 1 << 30, &e->max_steps);
    }
    if (!strcmp(key, "stack")) return envi_parse_int(key, val, 1, 64, &e->stack);
    if (!e->cls->configure)
        return cx_set_error(CX_ERR_INVALID, "%s has no setting '%s' (settings of every environment: max_steps, stack)",
                            e->cls->id, key);
    return e->cls->configure(e, key, val);
}

cx_env *cx_env_make(const char *spec) {
    if (!spec || !*spec) {
        cx_set_error(CX_ERR_INVALID, "env: empty environment name (known: see cx_env_list / 'cortex rl envs')");
        return NULL;
    }
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    const cx_env_class *cls = NULL;
    for (int i = 0; i < NREG && !cls; i++)
        if (same_name(registry[i]->id, spec, nlen) || same_name(registry[i]->alias, spec, nlen)) cls = registry[i];
    if (!cls) {
        char known[512] = "";
        for (int i = 0; i < NREG; i++) {
            strncat(known, registry[i]->id, sizeof known - strlen(known) - 1);
            if (i + 1 < NREG) strncat(known, ", ", sizeof known - strlen(known) - 1);
        }
        cx_set_error(CX_ERR_INVALID, "env: unknown environment '%.*s' (known: %s)", (int)nlen, spec, known);
        return NULL;
    }
    cx_env *e = calloc(1, sizeof *e);
    if (!e) cx_fatal("env: out of memory");
    e->cls = cls;
    e->spec = strdup(spec);
    e->max_steps = cls->max_episode_steps;
    e->stack = 1;
    e->cfg = calloc(1, cls->cfg_size ? cls->cfg_size : 1);
    e->state = calloc(1, cls->state_size ? cls->state_size : 1);
    if (!e->spec || !e->cfg || !e->state) cx_fatal("env: out of memory");
    if (cls->set_defaults) cls->set_defaults(e);
    cx_status st = CX_OK;
    if (colon) {
        char *list = strdup(colon + 1);
        if (!list) cx_fatal("env: out of memory");
        char *save = NULL;
        for (char *item = strtok_r(list, ",", &save); item && st == CX_OK; item = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(item, '=');
            if (!eq) {
                st = cx_set_error(CX_ERR_INVALID, "env '%s': setting '%s' is not key=value", spec, item);
                break;
            }
            *eq = 0;
            st = apply_setting(e, item, eq + 1);
        }
        free(list);
    }
    if (st == CX_OK) st = cls->setup(e);
    if (st != CX_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_env_free(e);
        cx_set_error(st, "%s", msg);
        return NULL;
    }
    e->obs_space = e->base_obs;
    if (e->stack > 1) {
        if (e->base_obs.kind != CX_SPACE_BOX) {
            cx_env_free(e);
            cx_set_error(CX_ERR_INVALID, "env '%s': stack needs a box observation space", spec);
            return NULL;
        }
        int shape[3], nd = e->base_obs.ndim, n = e->base_obs.n;
        for (int i = 0; i < nd; i++) shape[i] = e->base_obs.shape[i];
        shape[0] *= e->stack;
        float *lo = malloc(sizeof(float) * (size_t)n * e->stack), *hi = malloc(sizeof(float) * (size_t)n * e->stack);
        if (!lo || !hi) cx_fatal("env: out of memory");
        for (int k = 0; k < e->stack; k++) {
            memcpy(lo + (size_t)k * n, e->base_obs.low, sizeof(float) * n);
            memcpy(hi + (size_t)k * n, e->base_obs.high, sizeof(float) * n);
        }
        envi_box(e, &e->obs_space, nd, shape, lo, hi, 0, 0);
        free(lo);
        free(hi);
    }
    e->stackbuf = calloc((size_t)obs_floats(&e->obs_space), sizeof(float));
    e->tmp_obs = calloc((size_t)obs_floats(&e->base_obs), sizeof(float));
    if (!e->stackbuf || !e->tmp_obs) cx_fatal("env: out of memory");
    e->c.rng = cx_rng_new(0);
    return e;
}

void cx_env_free(cx_env *e) {
    if (!e) return;
    for (int i = 0; i < 6; i++) free(e->bounds[i]);
    free(e->spec);
    free(e->cfg);
    free(e->state);
    free(e->stackbuf);
    free(e->tmp_obs);
    free(e->frame);
    free(e);
}

const char *cx_env_name(const cx_env *e) { return e->cls->id; }
const char *cx_env_spec(const cx_env *e) { return e->spec; }
const cx_space *cx_env_observation_space(const cx_env *e) { return &e->obs_space; }
const cx_space *cx_env_action_space(const cx_env *e) { return &e->act_space; }
int cx_env_obs_size(const cx_env *e) { return obs_floats(&e->obs_space); }
int cx_env_max_steps(const cx_env *e) { return e->max_steps; }
void cx_env_seed(cx_env *e, uint64_t seed) { e->c.rng = cx_rng_new(seed); }

/* The agent's observation from the environment's latest one (tmp_obs). */
static void emit(cx_env *e, float *obs, int fresh) {
    int n = obs_floats(&e->base_obs), k = e->stack;
    if (k > 1) {
        if (fresh) {
            for (int i = 0; i < k; i++) memcpy(e->stackbuf + (size_t)i * n, e->tmp_obs, sizeof(float) * n);
        } else {
            memmove(e->stackbuf, e->stackbuf + n, sizeof(float) * (size_t)n * (k - 1));
            memcpy(e->stackbuf + (size_t)n * (k - 1), e->tmp_obs, sizeof(float) * n);
        }
    } else {
        memcpy(e->stackbuf, e->tmp_obs, sizeof(float) * n);
    }
    if (obs) memcpy(obs, e->stackbuf, sizeof(float) * (size_t)obs_floats(&e->obs_space));
}

void cx_env_reset(cx_env *e, float *obs) {
    e->cls->reset(e, e->tmp_obs);
    e->c.steps = 0;
    e->c.started = 1;
    e->c.done = 0;
    e->c.ep_return = 0;
    emit(e, obs, 1);
}

static cx_step_result do_step(cx_env *e, int a, const float *box, float *obs) {
    if (!e->c.started) cx_fatal("%s: step before the first reset", e->cls->id);
    if (e->c.done) cx_fatal("%s: step after the episode ended (terminated or truncated): reset first", e->cls->id);
    bool term = false;
    float r = e->cls->step(e, a, box, e->tmp_obs, &term);
    e->c.steps++;
    e->c.total_steps++;
    e->c.ep_return += r;
    cx_step_result res = {r, term, false};
    if (!term && e->max_steps > 0 && e->c.steps >= e->max_steps) res.truncated = true;
    if (res.terminated || res.truncated) {
        e->c.done = 1;
        e->c.episodes++;
        e->c.last_return = e->c.ep_return;
        e->c.last_length = e->c.steps;
    }
    emit(e, obs, 0);
    return res;
}

cx_step_result cx_env_step(cx_env *e, int action, float *obs) {
    if (e->act_space.kind != CX_SPACE_DISCRETE)
        cx_fatal("%s: the action space is continuous (box of %d): use cx_env_step_box", e->cls->id, e->act_space.n);
    if (action < 0 || action >= e->act_space.n)
        cx_fatal("%s: action %d out of range [0, %d)", e->cls->id, action, e->act_space.n);
    return do_step(e, action, NULL, obs);
}

cx_step_result cx_env_step_box(cx_env *e, const float *action, float *obs) {
    if (e->act_space.kind != CX_SPACE_BOX)
        cx_fatal("%s: the action space is discrete (%d actions): use cx_env_step", e->cls->id, e->act_space.n);
    float a[16];
    int n = e->act_space.n;
    if (n > 16) cx_fatal("%s: more than 16 action dimensions", e->cls->id);
    for (int i = 0; i < n; i++) {
        if (isnan(action[i])) cx_fatal("%s: action[%d] is NaN", e->cls->id, i);
        float lo = e->act_space.low[i], hi = e->act_space.high[i];
        a[i] = action[i] < lo ? lo : action[i] > hi ? hi : action[i];
    }
    return do_step(e, 0, a, obs);
}

int cx_env_get_state(const cx_env *e, double *s, int max) {
    double tmp[64];
    int n = e->cls->state_dim;
    e->cls->get_state(e, tmp);
    for (int i = 0; i < n && i < max; i++) s[i] = tmp[i];
    return n;
}

void cx_env_set_state(cx_env *e, const double *s, int n) {
    if (n != e->cls->state_dim)
        cx_fatal("%s: set_state takes %d values, got %d", e->cls->id, e->cls->state_dim, n);
    for (int i = 0; i < n; i++)
        if (!isfinite(s[i])) cx_fatal("%s: set_state value %d is not finite", e->cls->id, i);
    e->cls->set_state(e, s);
    e->c.started = 1;
    e->c.done = 0;
    e->cls->observe(e, e->tmp_obs);
    emit(e, NULL, 1);
}

int cx_env_model(const cx_env *e, int s, int a, cx_transition *out, int max) {
    if (!e->cls->model) return -1;
    if (e->base_obs.kind != CX_SPACE_DISCRETE || s < 0 || s >= e->base_obs.n)
        cx_fatal("%s: model: state %d out of range [0, %d)", e->cls->id, s, e->base_obs.n);
    if (a < 0 || a >= e->act_space.n) cx_fatal("%s: model: action %d out of range [0, %d)", e->cls->id, a, e->act_space.n);
    return e->cls->model(e, s, a, out, max);
}

cx_env_stats cx_env_get_stats(const cx_env *e) {
    cx_env_stats s = {e->c.episodes, e->c.total_steps, e->c.steps, e->c.ep_return, e->c.last_return, e->c.last_length};
    return s;
}

/* ---- snapshots ------------------------------------------------------- */

#define SNAP_MAGIC 0x43584556u /* "CXEV" */

typedef struct snap_head {
    uint32_t magic;
    uint32_t state_size;
    uint32_t stack_floats;
    uint32_t spec_hash;
} snap_head;

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

size_t cx_env_snapshot(const cx_env *e, void *buf, size_t cap) {
    size_t nstack = (size_t)obs_floats(&e->obs_space);
    size_t total = sizeof(snap_head) + sizeof(envi_common) + e->cls->state_size + nstack * sizeof(float);
    if (!buf) return total;
    uint8_t tmp[sizeof(snap_head) + sizeof(envi_common)];
    snap_head h = {SNAP_MAGIC, (uint32_t)e->cls->state_size, (uint32_t)nstack, hash_str(e->spec)};
    memcpy(tmp, &h, sizeof h);
    memcpy(tmp + sizeof h, &e->c, sizeof e->c);
    uint8_t *out = buf;
    size_t off = 0;
#define PUT(src, n)                                                                                                    \
    do {                                                                                                               \
        size_t k_ = (n);                                                                                               \
        if (off < cap) memcpy(out + off, (src), off + k_ <= cap ? k_ : cap - off);                                     \
        off += k_;                                                                                                     \
    } while (0)
    PUT(tmp, sizeof tmp);
    PUT(e->state, e->cls->state_size);
    PUT(e->stackbuf, nstack * sizeof(float));
#undef PUT
    return total;
}

cx_status cx_env_restore(cx_env *e, const void *buf, size_t n) {
    size_t want = cx_env_snapshot(e, NULL, 0);
    snap_head h;
    if (n < sizeof h) return cx_set_error(CX_ERR_FORMAT, "%s: environment snapshot too short (%zu bytes)", e->cls->id, n);
    memcpy(&h, buf, sizeof h);
    if (h.magic != SNAP_MAGIC) return cx_set_error(CX_ERR_FORMAT, "%s: not an environment snapshot", e->cls->id);
    if (h.spec_hash != hash_str(e->spec) || h.state_size != e->cls->state_size ||
        h.stack_floats != (uint32_t)obs_floats(&e->obs_space))
        return cx_set_error(CX_ERR_FORMAT, "environment snapshot is of another environment than '%s'", e->spec);
    if (n != want)
        return cx_set_error(CX_ERR_FORMAT, "%s: environment snapshot of %zu bytes, expected %zu", e->cls->id, n, want);
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    memcpy(&e->c, p, sizeof e->c);
    p += sizeof e->c;
    memcpy(e->state, p, e->cls->state_size);
    p += e->cls->state_size;
    memcpy(e->stackbuf, p, sizeof(float) * (size_t)obs_floats(&e->obs_space));
    return CX_OK;
}

/* ---- rendering ------------------------------------------------------- */

const uint8_t *cx_env_render(cx_env *e, int *w, int *h) {
    if (!e->cls->render) cx_fatal("%s: this environment cannot render", e->cls->id);
    int W, H;
    e->cls->render_size(e, &W, &H);
    if (!e->frame || W != e->frame_w || H != e->frame_h) {
        free(e->frame);
        e->frame = malloc((size_t)W * H * 3);
        if (!e->frame) cx_fatal("env: out of memory");
        e->frame_w = W;
        e->frame_h = H;
    }
    e->cls->render(e, e->frame, W, H);
    if (w) *w = W;
    if (h) *h = H;
    return e->frame;
}

void cx_env_render_ansi(cx_env *e, FILE *out, int cols) {
    int W, H;
    const uint8_t *rgb = cx_env_render(e, &W, &H);
    if (cols < 8) cols = 8;
    int ow = W < cols ? W : cols;
    double sc = (double)W / ow;
    int oh = (int)(H / sc);
    if (oh < 2) oh = 2;
    for (int y = 0; y + 1 < oh; y += 2) {
        for (int x = 0; x < ow; x++) {
            int sx = (int)(x * sc), sy0 = (int)(y * sc), sy1 = (int)((y + 1) * sc);
            if (sy1 >= H) sy1 = H - 1;
            const uint8_t *a = rgb + ((size_t)sy0 * W + sx) * 3, *b = rgb + ((size_t)sy1 * W + sx) * 3;
            fprintf(out, "\x1b[38;2;%d;%d;%dm\x1b[48;2;%d;%d;%dm\xe2\x96\x80", a[0], a[1], a[2], b[0], b[1], b[2]);
        }
        fputs("\x1b[0m\n", out);
    }
}

void envi_fill(uint8_t *rgb, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
    for (size_t i = 0; i < (size_t)w * h; i++) {
        rgb[3 * i] = r;
        rgb[3 * i + 1] = g;
        rgb[3 * i + 2] = b;
    }
}

void envi_rect(uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1, const uint8_t col[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > w) x1 = w;
    if (y1 > h) y1 = h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memcpy(rgb + ((size_t)y * w + x) * 3, col, 3);
}

void envi_disc(uint8_t *rgb, int w, int h, double cx, double cy, double rad, const uint8_t col[3]) {
    envi_line(rgb, w, h, cx, cy, cx, cy, rad, col);
}

void envi_line(uint8_t *rgb, int w, int h, double x0, double y0, double x1, double y1, double r,
               const uint8_t col[3]) {
    int xa = (int)floor(fmin(x0, x1) - r), xb = (int)ceil(fmax(x0, x1) + r);
    int ya = (int)floor(fmin(y0, y1) - r), yb = (int)ceil(fmax(y0, y1) + r);
    if (xa < 0) xa = 0;
    if (ya < 0) ya = 0;
    if (xb > w - 1) xb = w - 1;
    if (yb > h - 1) yb = h - 1;
    double dx = x1 - x0, dy = y1 - y0, L2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; y++)
        for (int x = xa; x <= xb; x++) {
            double px = x + 0.5 - x0, py = y + 0.5 - y0;
            double t = L2 > 0 ? (px * dx + py * dy) / L2 : 0;
            if (t < 0) t = 0;
            if (t > 1) t = 1;
            double ex = px - t * dx, ey = py - t * dy;
            if (ex * ex + ey * ey <= r * r) memcpy(rgb + ((size_t)y * w + x) * 3, col, 3);
        }
}

/* ---- vectorised environments ---------------------------------------- */

#define FIN_CAP 4096

struct cx_vec_env {
    int n;
    cx_env **envs;
    double fin_ret[FIN_CAP];
    int fin_len[FIN_CAP];
    int fin_head, fin_count;
};

cx_vec_env *cx_vec_env_make(const char *spec, int n, uint64_t seed) {
    if (n < 1) {
        cx_set_error(CX_ERR_INVALID, "vec_env: need at least one environment, got %d", n);
        return NULL;
    }
    cx_vec_env *v = calloc(1, sizeof *v);
    if (!v) cx_fatal("vec_env: out of memory");
    v->n = n;
    v->envs = calloc((size_t)n, sizeof *v->envs);
    if (!v->envs) cx_fatal("vec_env: out of memory");
    for (int i = 0; i < n; i++) {
        v->envs[i] = cx_env_make(spec);
        if (!v->envs[i]) {
            cx_vec_env_free(v);
            return NULL;
        }
        cx_env_seed(v->envs[i], seed + (uint64_t)i);
    }
    return v;
}

void cx_vec_env_free(cx_vec_env *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) cx_env_free(v->envs[i]);
    free(v->envs);
    free(v);
}

int cx_vec_env_num(const cx_vec_env *v) { return v->n; }

cx_env *cx_vec_env_get(cx_vec_env *v, int i) {
    if (i < 0 || i >= v->n) cx_fatal("vec_env: index %d out of range [0, %d)", i, v->n);
    return v->envs[i];
}

void cx_vec_env_reset(cx_vec_env *v, float *obs) {
    int d = obs_floats(&v->envs[0]->obs_space);
    for (int i = 0; i < v->n; i++) cx_env_reset(v->envs[i], obs ? obs + (size_t)i * d : NULL);
}

void cx_vec_env_step(cx_vec_env *v, const int *actions, const float *box_actions, float *obs, float *rewards,
                     uint8_t *terminated, uint8_t *truncated, float *final_obs) {
    cx_env *e0 = v->envs[0];
    int d = obs_floats(&e0->obs_space), an = e0->act_space.n;
    bool discrete = e0->act_space.kind == CX_SPACE_DISCRETE;
    if (discrete && !actions) cx_fatal("vec_env: %s has discrete actions: pass actions (int [n])", e0->cls->id);
    if (!discrete && !box_actions) cx_fatal("vec_env: %s has box actions: pass box_actions (float [n, %d])", e0->cls->id, an);
    for (int i = 0; i < v->n; i++) {
        cx_env *e = v->envs[i];
        float *o = obs ? obs + (size_t)i * d : NULL;
        cx_step_result r = discrete ? cx_env_step(e, actions[i], o) : cx_env_step_box(e, box_actions + (size_t)i * an, o);
        if (rewards) rewards[i] = r.reward;
        if (terminated) terminated[i] = r.terminated;
        if (truncated) truncated[i] = r.truncated;
        if (r.terminated || r.truncated) {
            if (final_obs) memcpy(final_obs + (size_t)i * d, e->stackbuf, sizeof(float) * d);
            int slot = (v->fin_head + v->fin_count) % FIN_CAP;
            v->fin_ret[slot] = e->c.last_return;
            v->fin_len[slot] = e->c.last_length;
            if (v->fin_count < FIN_CAP) v->fin_count++;
            else v->fin_head = (v->fin_head + 1) % FIN_CAP;
            cx_env_reset(e, o);
        } else if (final_obs && o) {
            memcpy(final_obs + (size_t)i * d, o, sizeof(float) * d);
        }
    }
}

int cx_vec_env_finished(cx_vec_env *v, double *returns, int *lengths, int max) {
    int k = 0;
    while (v->fin_count > 0) {
        if (k < max) {
            if (returns) returns[k] = v->fin_ret[v->fin_head];
            if (lengths) lengths[k] = v->fin_len[v->fin_head];
            k++;
        }
        v->fin_head = (v->fin_head + 1) % FIN_CAP;
        v->fin_count--;
    }
    return k;
}
