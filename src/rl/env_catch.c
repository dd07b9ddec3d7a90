/* Catch-v0: DeepMind bsuite's catch (bsuite/environments/catch.py). A ball
 * starts in row 0 at a uniformly random column and falls one row per step;
 * the paddle sits in the bottom row, starting at column cols / 2, and moves
 * left (0), stays (1) or right (2), clipped at the walls (the paddle moves
 * first, then the ball falls, as in bsuite). When the ball reaches the
 * bottom row the episode terminates with reward +1 if the paddle is under
 * it, else -1; every other step gives 0. An episode is rows - 1 steps.
 * Settings: rows= (default 10), cols= (default 5).
 *
 * Differences from bsuite: the observation has a leading channel axis,
 * [1, rows, cols] instead of (rows, cols), so it feeds a convolution as it
 * is; the ball's column comes from Cortex's seeded PCG32 stream, not numpy's
 * RandomState; bsuite resets itself when stepped after the end, Cortex
 * makes that fatal like every environment (reset first). */
#include <string.h>

#include "env_internal.h"

typedef struct {
    int rows, cols;
} ca_cfg;

typedef struct {
    int ball_row, ball_col, paddle_col;
} ca_state;

#define CELL_PX 20

static void ca_defaults(cx_env *e) {
    ca_cfg *c = e->cfg;
    c->rows = 10;
    c->cols = 5;
}

static cx_status ca_configure(cx_env *e, const char *key, const char *v) {
    ca_cfg *c = e->cfg;
    if (!strcmp(key, "rows")) return envi_parse_int(key, v, 2, 256, &c->rows);
    if (!strcmp(key, "cols")) return envi_parse_int(key, v, 1, 256, &c->cols);
    return cx_set_error(CX_ERR_INVALID, "Catch-v0 has no setting '%s' (settings: rows, cols, max_steps, stack)", key);
}

static cx_status ca_setup(cx_env *e) {
    const ca_cfg *c = e->cfg;
    envi_box(e, &e->base_obs, 3, (const int[]){1, c->rows, c->cols}, NULL, NULL, 0.0f, 1.0f);
    envi_discrete(&e->act_space, 3);
    return CX_OK;
}

/* 1 at the ball's and the paddle's pixels, 0 elsewhere. */
static void ca_observe(const cx_env *e, float *obs) {
    const ca_cfg *c = e->cfg;
    const ca_state *st = e->state;
    memset(obs, 0, sizeof(float) * (size_t)c->rows * c->cols);
    obs[st->ball_row * c->cols + st->ball_col] = 1.0f;
    obs[(c->rows - 1) * c->cols + st->paddle_col] = 1.0f;
}

static void ca_reset(cx_env *e, float *obs) {
    const ca_cfg *c = e->cfg;
    ca_state *st = e->state;
    st->ball_row = 0;
    st->ball_col = (int)cx_rng_below(envi_rng(e), (uint32_t)c->cols);
    st->paddle_col = c->cols / 2;
    ca_observe(e, obs);
}

static float ca_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)box;
    const ca_cfg *c = e->cfg;
    ca_state *st = e->state;
    int p = st->paddle_col + (a - 1);
    st->paddle_col = p < 0 ? 0 : p > c->cols - 1 ? c->cols - 1 : p;
    st->ball_row++;
    float r = 0.0f;
    *terminated = st->ball_row == c->rows - 1;
    if (*terminated) r = st->paddle_col == st->ball_col ? 1.0f : -1.0f;
    ca_observe(e, obs);
    return r;
}

static void ca_get_state(const cx_env *e, double *s) {
    const ca_state *st = e->state;
    s[0] = st->ball_row;
    s[1] = st->ball_col;
    s[2] = st->paddle_col;
}

static void ca_set_state(cx_env *e, const double *s) {
    const ca_cfg *c = e->cfg;
    const int hi[3] = {c->rows - 1, c->cols, c->cols};
    const char *name[3] = {"ball_row", "ball_col", "paddle_col"};
    for (int i = 0; i < 3; i++)
        if (!(s[i] >= 0 && s[i] < hi[i]) || s[i] != (int)s[i])
            cx_fatal("Catch-v0: set_state: %s = %g is not an integer in [0, %d)", name[i], s[i], hi[i]);
    ca_state *st = e->state;
    st->ball_row = (int)s[0];
    st->ball_col = (int)s[1];
    st->paddle_col = (int)s[2];
}

static void ca_render_size(const cx_env *e, int *w, int *h) {
    const ca_cfg *c = e->cfg;
    *w = c->cols * CELL_PX + 1;
    *h = c->rows * CELL_PX + 1;
}

/* Dark background, grey grid lines, a yellow ball and a wide blue paddle. */
static void ca_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const ca_cfg *c = e->cfg;
    const ca_state *st = e->state;
    const uint8_t grid[3] = {70, 70, 80}, ball[3] = {250, 210, 40}, paddle[3] = {60, 140, 240};
    const int P = CELL_PX;
    envi_fill(rgb, w, h, 20, 20, 28);
    for (int r = 0; r <= c->rows; r++) envi_rect(rgb, w, h, 0, r * P, w, r * P + 1, grid);
    for (int k = 0; k <= c->cols; k++) envi_rect(rgb, w, h, k * P, 0, k * P + 1, h, grid);
    int py = (c->rows - 1) * P, px = st->paddle_col * P;
    envi_rect(rgb, w, h, px + 2, py + P / 2, px + P - 1, py + P - 2, paddle);
    envi_disc(rgb, w, h, st->ball_col * P + 0.5 + P / 2.0, st->ball_row * P + 0.5 + P / 2.0, P * 0.35, ball);
}

const cx_env_class cx_env_catch = {
    .id = "Catch-v0",
    .alias = "catch",
    .about = "catch a falling ball with a paddle (bsuite): [1, 10, 5] pixels, 3 actions, +1 caught / -1 missed",
    .cfg_size = sizeof(ca_cfg),
    .state_size = sizeof(ca_state),
    .max_episode_steps = 0,
    .state_dim = 3,
    .set_defaults = ca_defaults,
    .configure = ca_configure,
    .setup = ca_setup,
    .reset = ca_reset,
    .step = ca_step,
    .observe = ca_observe,
    .get_state = ca_get_state,
    .set_state = ca_set_state,
    .render_size = ca_render_size,
    .render = ca_render,
};
