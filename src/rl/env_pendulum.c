/* Pendulum-v1: gymnasium's inverted pendulum swing-up. With u the torque
 * clipped to [-2, 2] and th, thdot the state before the step:
 *   reward  = -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2)
 *   thdot' = clip(thdot + (3 g / (2 l) sin(th) + 3 / (m l^2) u) dt, -8, 8)
 *   th'    = th + thdot' dt                 (semi-implicit Euler, dt = 0.05)
 * m = l = 1, g = 10 (setting g=...), theta = 0 upright; the observation is
 * [cos th, sin th, thdot]; start th ~ uniform(-pi, pi), thdot ~ uniform(-1, 1);
 * never terminates, 200-step limit. The action is a box of one float. */
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

#define PI 3.14159265358979323846
#define MAX_SPEED 8.0
#define MAX_TORQUE 2.0
#define DT 0.05
#define MASS 1.0
#define LENGTH 1.0

typedef struct {
    double g;
} pd_cfg;

typedef struct {
    double s[2];   /* theta, theta_dot */
    double last_u; /* the last torque, drawn by render */
    int has_u;
} pd_state;

static void pd_defaults(cx_env *e) { ((pd_cfg *)e->cfg)->g = 10.0; }

static cx_status pd_configure(cx_env *e, const char *key, const char *value) {
    pd_cfg *c = e->cfg;
    if (!strcmp(key, "g")) return envi_parse_double(key, value, 0, 1000, &c->g);
    return cx_set_error(CX_ERR_INVALID,
                        "Pendulum-v1 has no setting '%s' (its settings: g; of every environment: max_steps, stack)", key);
}

static cx_status pd_setup(cx_env *e) {
    const float high[3] = {1, 1, (float)MAX_SPEED}, low[3] = {-1, -1, (float)-MAX_SPEED};
    envi_box(e, &e->base_obs, 1, (const int[]){3}, low, high, 0, 0);
    envi_box(e, &e->act_space, 1, (const int[]){1}, NULL, NULL, (float)-MAX_TORQUE, (float)MAX_TORQUE);
    return CX_OK;
}

static void pd_observe(const cx_env *e, float *obs) {
    const pd_state *st = e->state;
    obs[0] = (float)cos(st->s[0]);
    obs[1] = (float)sin(st->s[0]);
    obs[2] = (float)st->s[1];
}

static void pd_reset(cx_env *e, float *obs) {
    pd_state *st = e->state;
    st->s[0] = -PI + 2 * PI * (double)cx_rng_uniform(envi_rng(e));
    st->s[1] = -1.0 + 2.0 * (double)cx_rng_uniform(envi_rng(e));
    st->has_u = 0;
    pd_observe(e, obs);
}

/* ((x + pi) mod 2 pi) - pi with the floored modulo of numpy / Python. */
static double angle_normalize(double x) {
    double r = fmod(x + PI, 2 * PI);
    if (r != 0 && r < 0) r += 2 * PI;
    return r - PI;
}

static float pd_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)a;
    pd_state *st = e->state;
    double g = ((const pd_cfg *)e->cfg)->g, m = MASS, l = LENGTH, dt = DT;
    double th = st->s[0], thdot = st->s[1];
    double u = box[0]; /* already clipped to [-2, 2] by cx_env_step_box */
    double an = angle_normalize(th);
    double costs = an * an + 0.1 * (thdot * thdot) + 0.001 * (u * u);
    double newthdot = thdot + (3 * g / (2 * l) * sin(th) + 3.0 / (m * (l * l)) * u) * dt;
    newthdot = fmin(fmax(newthdot, -MAX_SPEED), MAX_SPEED);
    st->s[0] = th + newthdot * dt;
    st->s[1] = newthdot;
    st->last_u = u;
    st->has_u = 1;
    *terminated = false;
    pd_observe(e, obs);
    return (float)-costs;
}

static void pd_get_state(const cx_env *e, double *s) { memcpy(s, ((const pd_state *)e->state)->s, sizeof(double) * 2); }
static void pd_set_state(cx_env *e, const double *s) {
    pd_state *st = e->state;
    memcpy(st->s, s, sizeof(double) * 2);
    st->has_u = 0;
}

/* gymnasium's picture at half its 500x500: the rod from the axle (centre),
 * theta = 0 pointing up, positive theta counter-clockwise; gymnasium's
 * torque arrow becomes an arc around the axle, its length |u|. */
static void pd_render_size(const cx_env *e, int *w, int *h) {
    (void)e;
    *w = 250;
    *h = 250;
}

static void pd_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const pd_state *st = e->state;
    double scale = w / (2 * 2.2), ox = w / 2.0, oy = h / 2.0, th = st->s[0];
    const uint8_t rod[3] = {204, 77, 77}, black[3] = {0, 0, 0}, arrow[3] = {90, 90, 90};
    envi_fill(rgb, w, h, 255, 255, 255);
    if (st->has_u && st->last_u != 0) {
        /* an arc of radius 0.4 from the top, counter-clockwise for u > 0 */
        double span = st->last_u / MAX_TORQUE * (PI * 0.75), r = 0.4 * scale;
        for (int i = 0; i < 24; i++) {
            double a0 = span * i / 24, a1 = span * (i + 1) / 24;
            envi_line(rgb, w, h, ox - sin(a0) * r, oy - cos(a0) * r, ox - sin(a1) * r, oy - cos(a1) * r, 1.5, arrow);
        }
        envi_disc(rgb, w, h, ox - sin(span) * r, oy - cos(span) * r, 4, arrow);
    }
    envi_line(rgb, w, h, ox, oy, ox - sin(th) * scale, oy - cos(th) * scale, 0.1 * scale, rod);
    envi_disc(rgb, w, h, ox, oy, 0.05 * scale, black);
}

const cx_env_class cx_env_pendulum = {
    .id = "Pendulum-v1",
    .alias = "pendulum",
    .about = "swing a pendulum up and hold it: 3 floats, a torque in [-2, 2] (box), reward <= 0, 200 steps",
    .cfg_size = sizeof(pd_cfg),
    .state_size = sizeof(pd_state),
    .max_episode_steps = 200,
    .state_dim = 2,
    .set_defaults = pd_defaults,
    .configure = pd_configure,
    .setup = pd_setup,
    .reset = pd_reset,
    .step = pd_step,
    .observe = pd_observe,
    .get_state = pd_get_state,
    .set_state = pd_set_state,
    .render_size = pd_render_size,
    .render = pd_render,
};
