/* MountainCar-v0: gymnasium's mountain car (Moore 1990; Sutton & Barto):
 *   velocity += (action - 1) * 0.001 - cos(3 position) * 0.0025, clipped to [-0.07, 0.07]
 *   position += velocity, clipped to [-1.2, 0.6]; at the left wall a leftward velocity becomes 0
 * terminated when position >= 0.5 and velocity >= goal_velocity (0), reward
 * -1 per step, start position uniform(-0.6, -0.4) at rest, 200-step limit.
 * Setting: goal_velocity=V (gymnasium's constructor argument, default 0). */
#include <math.h>
#include <string.h>

#include "env_internal.h"

/* gymnasium's doubles to the last bit: no fused multiply-adds (clang
 * contracts a*b+c by default where the target has FMA). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define MIN_POSITION (-1.2)
#define MAX_POSITION 0.6
#define MAX_SPEED 0.07
#define GOAL_POSITION 0.5
#define FORCE 0.001
#define GRAVITY 0.0025

typedef struct {
    double goal_velocity;
} mc_cfg;

typedef struct {
    double s[2]; /* position, velocity */
} mc_state;

static cx_status mc_configure(cx_env *e, const char *key, const char *value) {
    mc_cfg *c = e->cfg;
    if (!strcmp(key, "goal_velocity")) return envi_parse_double(key, value, 0, MAX_SPEED, &c->goal_velocity);
    return cx_set_error(CX_ERR_INVALID,
                        "MountainCar-v0 has no setting '%s' (its settings: goal_velocity; of every environment: "
                        "max_steps, stack)",
                        key);
}

static cx_status mc_setup(cx_env *e) {
    const float low[2] = {(float)MIN_POSITION, (float)-MAX_SPEED}, high[2] = {(float)MAX_POSITION, (float)MAX_SPEED};
    envi_box(e, &e->base_obs, 1, (const int[]){2}, low, high, 0, 0);
    envi_discrete(&e->act_space, 3);
    return CX_OK;
}

static void mc_observe(const cx_env *e, float *obs) {
    const mc_state *st = e->state;
    obs[0] = (float)st->s[0];
    obs[1] = (float)st->s[1];
}

static void mc_reset(cx_env *e, float *obs) {
    mc_state *st = e->state;
    st->s[0] = -0.6 + 0.2 * (double)cx_rng_uniform(envi_rng(e));
    st->s[1] = 0;
    mc_observe(e, obs);
}

static double clip(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static float mc_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)box;
    mc_state *st = e->state;
    double position = st->s[0], velocity = st->s[1];
    velocity += (a - 1) * FORCE + cos(3 * position) * (-GRAVITY);
    velocity = clip(velocity, -MAX_SPEED, MAX_SPEED);
    position += velocity;
    position = clip(position, MIN_POSITION, MAX_POSITION);
    if (position == MIN_POSITION && velocity < 0) velocity = 0;
    *terminated = position >= GOAL_POSITION && velocity >= ((const mc_cfg *)e->cfg)->goal_velocity;
    st->s[0] = position;
    st->s[1] = velocity;
    mc_observe(e, obs);
    return -1.0f;
}

static void mc_get_state(const cx_env *e, double *s) { memcpy(s, ((const mc_state *)e->state)->s, sizeof(double) * 2); }
static void mc_set_state(cx_env *e, const double *s) { memcpy(((mc_state *)e->state)->s, s, sizeof(double) * 2); }

/* gymnasium's picture at half its 600x400: the hill sin(3x) * 0.45 + 0.55,
 * the car tilted along the slope, the flag at the goal. */
static void mc_render_size(const cx_env *e, int *w, int *h) {
    (void)e;
    *w = 300;
    *h = 200;
}

static double height(double x) { return sin(3 * x) * 0.45 + 0.55; }

static void mc_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const mc_state *st = e->state;
    double scale = w / (MAX_POSITION - MIN_POSITION);
    const uint8_t black[3] = {0, 0, 0}, wheel[3] = {128, 128, 128}, flag[3] = {204, 204, 0};
    envi_fill(rgb, w, h, 255, 255, 255);
#define SX(x) (((x) - MIN_POSITION) * scale)
#define SY(y) (h - (y) * scale) /* world height up, screen rows down */
    for (int i = 0; i + 1 < 100; i++) {
        double xa = MIN_POSITION + (MAX_POSITION - MIN_POSITION) * i / 99.0;
        double xb = MIN_POSITION + (MAX_POSITION - MIN_POSITION) * (i + 1) / 99.0;
        envi_line(rgb, w, h, SX(xa), SY(height(xa)), SX(xb), SY(height(xb)), 0.8, black);
    }
    /* the flag: a pole of 25 pixels and a triangle pointing right */
    double fx = SX(GOAL_POSITION), fy = SY(height(GOAL_POSITION));
    envi_rect(rgb, w, h, (int)fx, (int)(fy - 25), (int)fx + 1, (int)fy, black);
    for (int i = 0; i < 12; i++) {
        int half = (int)(2.5 * (12 - i) / 12.0 + 0.5);
        envi_rect(rgb, w, h, (int)fx + 1 + i, (int)(fy - 22.5) - half, (int)fx + 2 + i, (int)(fy - 22.5) + half, flag);
    }
    /* the car (20x10) and its wheels, rotated by cos(3 pos) as gymnasium's */
    double pos = st->s[0], ang = cos(3 * pos), ca = cos(ang), sa = sin(ang);
    double bx = SX(pos), by = SY(height(pos)), clearance = 5;
    /* car frame (u along the slope, v up from the ground) to screen */
#define PX(u, v) (bx + (u) * ca - ((v) + clearance) * sa)
#define PY(u, v) (by - ((u) * sa + ((v) + clearance) * ca))
    envi_line(rgb, w, h, PX(-5, 5), PY(-5, 5), PX(5, 5), PY(5, 5), 5, black);
    envi_disc(rgb, w, h, PX(5, 0), PY(5, 0), 4, wheel);
    envi_disc(rgb, w, h, PX(-5, 0), PY(-5, 0), 4, wheel);
#undef PX
#undef PY
#undef SX
#undef SY
}

const cx_env_class cx_env_mountaincar = {
    .id = "MountainCar-v0",
    .alias = "mountaincar",
    .about = "drive an underpowered car up a hill: 2 floats, 3 actions (left/none/right), -1 per step, 200 steps",
    .cfg_size = sizeof(mc_cfg),
    .state_size = sizeof(mc_state),
    .max_episode_steps = 200,
    .state_dim = 2,
    .configure = mc_configure,
    .setup = mc_setup,
    .reset = mc_reset,
    .step = mc_step,
    .observe = mc_observe,
    .get_state = mc_get_state,
    .set_state = mc_set_state,
    .render_size = mc_render_size,
    .render = mc_render,
};
