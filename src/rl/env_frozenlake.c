/* FrozenLake-v1: gymnasium's frozen lake (toy_text/frozen_lake.py). A grid
 * of start (S), frozen (F), hole (H) and goal (G) cells; the agent starts on
 * S and moves left (0), down (1), right (2) or up (3), staying put at the
 * edges. On slippery ice (the default) it moves in the intended direction
 * or in either perpendicular one, each with probability 1/3 -- the
 * directions (a-1) mod 4, a, (a+1) mod 4, in that order, as gymnasium's
 * P[s][a]. Reaching G gives reward 1 and ends the episode, falling in H
 * ends it with 0; H and G are absorbing in the model (P = 1 back to
 * themselves, reward 0, terminated). Time limit 100 steps (4x4), 200 (8x8).
 * Settings: map=4x4|8x8 (gymnasium's two maps), slippery=0|1.
 * The observation is the cell index row * ncol + col (one float). */
#include <string.h>

#include "env_internal.h"

static const char *const MAP4[] = {"SFFF", "FHFH", "FFFH", "HFFG"};
static const char *const MAP8[] = {"SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF",
                                   "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"};

typedef struct {
    int size;     /* 4 or 8: the map is MAP4 or MAP8 */
    int slippery;
} fl_cfg;

typedef struct {
    int cell;
    int last_action; /* -1 before the first step (drawn facing down, as gymnasium) */
} fl_state;

#define CELL_PX 32 /* gymnasium draws 64-pixel cells */

static char fl_letter(const fl_cfg *c, int s) {
    const char *const *m = c->size == 8 ? MAP8 : MAP4;
    return m[s / c->size][s % c->size];
}

static void fl_defaults(cx_env *e) {
    fl_cfg *c = e->cfg;
    c->size = 4;
    c->slippery = 1;
}

static cx_status fl_configure(cx_env *e, const char *key, const char *v) {
    fl_cfg *c = e->cfg;
    if (!strcmp(key, "map")) {
        if (!strcmp(v, "4x4")) c->size = 4;
        else if (!strcmp(v, "8x8")) c->size = 8;
        else return cx_set_error(CX_ERR_INVALID, "setting map=%s: FrozenLake-v1 has the maps 4x4 and 8x8", v);
        return CX_OK;
    }
    if (!strcmp(key, "slippery")) return envi_parse_bool(key, v, &c->slippery);
    return cx_set_error(CX_ERR_INVALID, "FrozenLake-v1 has no setting '%s' (settings: map, slippery, max_steps, stack)",
                        key);
}

static cx_status fl_setup(cx_env *e) {
    const fl_cfg *c = e->cfg;
    envi_discrete(&e->base_obs, c->size * c->size);
    envi_discrete(&e->act_space, 4);
    if (!e->max_steps_given) e->max_steps = c->size == 8 ? 200 : 100;
    return CX_OK;
}

/* The cell reached from s by moving in direction d (walls: stay). */
static int fl_move(int n, int s, int d) {
    int r = s / n, col = s % n;
    if (d == 0 && col > 0) col--;
    else if (d == 1 && r < n - 1) r++;
    else if (d == 2 && col < n - 1) col++;
    else if (d == 3 && r > 0) r--;
    return r * n + col;
}

/* gymnasium's P[s][a]: 1 entry (H/G absorbing, or not slippery) or 3. */
static int fl_model(const cx_env *e, int s, int a, cx_transition *out, int max) {
    const fl_cfg *c = e->cfg;
    cx_transition t[3];
    int k = 0;
    char here = fl_letter(c, s);
    if (here == 'H' || here == 'G') {
        t[k++] = (cx_transition){1.0, s, 0.0, true};
    } else {
        int nd = c->slippery ? 3 : 1;
        for (int i = 0; i < nd; i++) {
            int d = c->slippery ? (a + 3 + i) % 4 : a; /* (a-1)%4, a, (a+1)%4 */
            int ns = fl_move(c->size, s, d);
            char l = fl_letter(c, ns);
            t[k++] = (cx_transition){c->slippery ? 1.0 / 3.0 : 1.0, ns, l == 'G' ? 1.0 : 0.0, l == 'G' || l == 'H'};
        }
    }
    for (int i = 0; i < k && i < max; i++) out[i] = t[i];
    return k;
}

static void fl_observe(const cx_env *e, float *obs) { obs[0] = (float)((const fl_state *)e->state)->cell; }

static void fl_reset(cx_env *e, float *obs) {
    fl_state *st = e->state;
    st->cell = 0; /* the one S cell of both maps */
    st->last_action = -1;
    fl_observe(e, obs);
}

static float fl_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)box;
    fl_state *st = e->state;
    cx_transition t[3];
    int k = fl_model(e, st->cell, a, t, 3);
    /* categorical sample as gymnasium's: the first i with cumsum(p)[i] > u */
    double u = (double)cx_rng_uniform(envi_rng(e)), acc = 0;
    int i = 0;
    for (; i < k - 1; i++) {
        acc += t[i].prob;
        if (acc > u) break;
    }
    st->cell = t[i].next_state;
    st->last_action = a;
    *terminated = t[i].terminated;
    fl_observe(e, obs);
    return (float)t[i].reward;
}

static void fl_get_state(const cx_env *e, double *s) { s[0] = ((const fl_state *)e->state)->cell; }

static void fl_set_state(cx_env *e, const double *s) {
    const fl_cfg *c = e->cfg;
    int n = c->size * c->size;
    if (!(s[0] >= 0 && s[0] < n) || s[0] != (int)s[0])
        cx_fatal("FrozenLake-v1: set_state: cell %g is not an integer in [0, %d)", s[0], n);
    fl_state *st = e->state;
    st->cell = (int)s[0];
    st->last_action = -1;
}

static void fl_render_size(const cx_env *e, int *w, int *h) {
    const fl_cfg *c = e->cfg;
    *w = *h = c->size * CELL_PX;
}

/* Ice light blue, holes dark blue, the start a grey stool, the goal a gold
 * square, grid lines (180, 200, 230) as gymnasium's; the agent a red disc
 * with a dot on the side it last moved to (down before its first step). */
static void fl_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const fl_cfg *c = e->cfg;
    const fl_state *st = e->state;
    const uint8_t ice[3] = {214, 234, 248}, hole[3] = {24, 52, 96}, stool[3] = {150, 150, 150},
                  goal[3] = {236, 186, 36}, grid[3] = {180, 200, 230}, agent[3] = {210, 40, 40},
                  eye[3] = {255, 255, 255};
    envi_fill(rgb, w, h, ice[0], ice[1], ice[2]);
    const int P = CELL_PX;
    for (int s = 0; s < c->size * c->size; s++) {
        int x = (s % c->size) * P, y = (s / c->size) * P;
        char l = fl_letter(c, s);
        if (l == 'H') envi_disc(rgb, w, h, x + P / 2.0, y + P / 2.0, P * 0.42, hole);
        else if (l == 'G') envi_rect(rgb, w, h, x + P / 5, y + P / 5, x + P - P / 5, y + P - P / 5, goal);
        else if (l == 'S') envi_rect(rgb, w, h, x + P / 3, y + P / 3, x + P - P / 3, y + P - P / 3, stool);
        envi_rect(rgb, w, h, x, y, x + P, y + 1, grid);
        envi_rect(rgb, w, h, x, y + P - 1, x + P, y + P, grid);
        envi_rect(rgb, w, h, x, y, x + 1, y + P, grid);
        envi_rect(rgb, w, h, x + P - 1, y, x + P, y + P, grid);
    }
    double cx = (st->cell % c->size) * P + P / 2.0, cy = (st->cell / c->size) * P + P / 2.0;
    envi_disc(rgb, w, h, cx, cy, P * 0.3, agent);
    static const int DX[4] = {-1, 0, 1, 0}, DY[4] = {0, 1, 0, -1};
    int d = st->last_action < 0 ? 1 : st->last_action;
    envi_disc(rgb, w, h, cx + DX[d] * P * 0.17, cy + DY[d] * P * 0.17, P * 0.07, eye);
}

const cx_env_class cx_env_frozenlake = {
    .id = "FrozenLake-v1",
    .alias = "frozenlake",
    .about = "cross a frozen lake to the goal without falling in a hole: 16 (64) cells, 4 actions, +1 at the goal",
    .cfg_size = sizeof(fl_cfg),
    .state_size = sizeof(fl_state),
    .max_episode_steps = 100,
    .state_dim = 1,
    .set_defaults = fl_defaults,
    .configure = fl_configure,
    .setup = fl_setup,
    .reset = fl_reset,
    .step = fl_step,
    .observe = fl_observe,
    .get_state = fl_get_state,
    .set_state = fl_set_state,
    .model = fl_model,
    .render_size = fl_render_size,
    .render = fl_render,
};
