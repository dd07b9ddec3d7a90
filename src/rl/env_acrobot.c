/* Acrobot-v1: gymnasium's two-link acrobot (Sutton 1996; Sutton & Barto's
 * book), with its "book" dynamics (the default book_or_nips = "book"),
 * one RK4 step over [0, dt] with dt = 0.2 as gymnasium's rk4 computes it,
 * angles wrapped to [-pi, pi], velocities bounded to 4 pi and 9 pi, torques
 * -1, 0, +1, reward -1 per step (0 on the terminating step), termination
 * when the tip is above the bar: -cos(t1) - cos(t1 + t2) > 1, and a
 * 500-step limit. Expressions keep gymnasium's order of operations, so the
 * double-precision trajectory is the published one to the last bits. */
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
#define DT 0.2
#define MAX_VEL_1 (4 * PI)
#define MAX_VEL_2 (9 * PI)

typedef struct {
    double s[4]; /* theta1, theta2 (relative to link 1), dtheta1, dtheta2 */
} ac_state;

/* The derivative of y = [theta1, theta2, dtheta1, dtheta2] under torque a
 * (gymnasium's _dsdt, book variant): masses 1, lengths 1, centres of mass
 * at 0.5, moments of inertia 1, g = 9.8. */
static void dsdt(const double y[4], double a, double dy[4]) {
    const double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0, g = 9.8;
    double theta1 = y[0], theta2 = y[1], dtheta1 = y[2], dtheta2 = y[3];
    double d1 = m1 * (lc1 * lc1) + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * cos(theta2)) + I1 + I2;
    double d2 = m2 * (lc2 * lc2 + l1 * lc2 * cos(theta2)) + I2;
    double phi2 = m2 * lc2 * g * cos(theta1 + theta2 - PI / 2.0);
    double phi1 = -m2 * l1 * lc2 * (dtheta2 * dtheta2) * sin(theta2) - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2) +
                  (m1 * lc1 + m2 * l1) * g * cos(theta1 - PI / 2) + phi2;
    double ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * (dtheta1 * dtheta1) * sin(theta2) - phi2) /
                      (m2 * (lc2 * lc2) + I2 - (d2 * d2) / d1);
    double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    dy[0] = dtheta1;
    dy[1] = dtheta2;
    dy[2] = ddtheta1;
    dy[3] = ddtheta2;
}

/* gymnasium's rk4 for t = [0, dt]: y + dt/6 (k1 + 2 k2 + 2 k3 + k4). */
static void rk4(double y[4], double a) {
    const double dt = DT, dt2 = dt / 2.0;
    double k1[4], k2[4], k3[4], k4[4], t[4];
    dsdt(y, a, k1);
    for (int i = 0; i < 4; i++) t[i] = y[i] + dt2 * k1[i];
    dsdt(t, a, k2);
    for (int i = 0; i < 4; i++) t[i] = y[i] + dt2 * k2[i];
    dsdt(t, a, k3);
    for (int i = 0; i < 4; i++) t[i] = y[i] + dt * k3[i];
    dsdt(t, a, k4);
    for (int i = 0; i < 4; i++) y[i] = y[i] + dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
}

static double wrap(double x, double m, double M) {
    double diff = M - m;
    while (x > M) x = x - diff;
    while (x < m) x = x + diff;
    return x;
}

static double bound(double x, double m, double M) { return fmin(fmax(x, m), M); }

static cx_status ac_setup(cx_env *e) {
    const float high[6] = {1, 1, 1, 1, (float)MAX_VEL_1, (float)MAX_VEL_2};
    const float low[6] = {-1, -1, -1, -1, -high[4], -high[5]};
    envi_box(e, &e->base_obs, 1, (const int[]){6}, low, high, 0, 0);
    envi_discrete(&e->act_space, 3);
    return CX_OK;
}

static void ac_observe(const cx_env *e, float *obs) {
    const double *s = ((const ac_state *)e->state)->s;
    obs[0] = (float)cos(s[0]);
    obs[1] = (float)sin(s[0]);
    obs[2] = (float)cos(s[1]);
    obs[3] = (float)sin(s[1]);
    obs[4] = (float)s[2];
    obs[5] = (float)s[3];
}

/* uniform(-0.1, 0.1) for all four, rounded to float32 as gymnasium's reset. */
static void ac_reset(cx_env *e, float *obs) {
    ac_state *st = e->state;
    for (int i = 0; i < 4; i++) st->s[i] = (double)(float)(-0.1 + 0.2 * (double)cx_rng_uniform(envi_rng(e)));
    ac_observe(e, obs);
}

static float ac_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)box;
    static const double torque[3] = {-1.0, 0.0, 1.0};
    double *s = ((ac_state *)e->state)->s;
    rk4(s, torque[a]);
    s[0] = wrap(s[0], -PI, PI);
    s[1] = wrap(s[1], -PI, PI);
    s[2] = bound(s[2], -MAX_VEL_1, MAX_VEL_1);
    s[3] = bound(s[3], -MAX_VEL_2, MAX_VEL_2);
    *terminated = -cos(s[0]) - cos(s[1] + s[0]) > 1.0;
    ac_observe(e, obs);
    return *terminated ? 0.0f : -1.0f;
}

static void ac_get_state(const cx_env *e, double *s) { memcpy(s, ((const ac_state *)e->state)->s, sizeof(double) * 4); }
static void ac_set_state(cx_env *e, const double *s) { memcpy(((ac_state *)e->state)->s, s, sizeof(double) * 4); }

/* gymnasium's picture at half its 500x500: the links from the fixed joint
 * (centre), theta = 0 hanging down, the bar at height 1 above the joint. */
static void ac_render_size(const cx_env *e, int *w, int *h) {
    (void)e;
    *w = 250;
    *h = 250;
}

static void ac_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const double *s = ((const ac_state *)e->state)->s;
    double scale = w / (2 * 2.2), ox = w / 2.0, oy = h / 2.0;
    const uint8_t black[3] = {0, 0, 0}, link[3] = {0, 204, 204}, joint[3] = {204, 204, 0};
    envi_fill(rgb, w, h, 255, 255, 255);
    envi_rect(rgb, w, h, (int)(ox - 2.2 * scale), (int)(oy - scale), (int)(ox + 2.2 * scale), (int)(oy - scale) + 1,
              black);
    double x1 = ox + sin(s[0]) * scale, y1 = oy + cos(s[0]) * scale;
    double x2 = x1 + sin(s[0] + s[1]) * scale, y2 = y1 + cos(s[0] + s[1]) * scale;
    envi_line(rgb, w, h, ox, oy, x1, y1, 0.1 * scale, link);
    envi_disc(rgb, w, h, ox, oy, 0.1 * scale, joint);
    envi_line(rgb, w, h, x1, y1, x2, y2, 0.1 * scale, link);
    envi_disc(rgb, w, h, x1, y1, 0.1 * scale, joint);
}

const cx_env_class cx_env_acrobot = {
    .id = "Acrobot-v1",
    .alias = "acrobot",
    .about = "swing a two-link arm's tip above a bar: 6 floats, 3 torques (-1/0/+1), -1 per step, 500 steps",
    .state_size = sizeof(ac_state),
    .max_episode_steps = 500,
    .state_dim = 4,
    .setup = ac_setup,
    .reset = ac_reset,
    .step = ac_step,
    .observe = ac_observe,
    .get_state = ac_get_state,
    .set_state = ac_set_state,
    .render_size = ac_render_size,
    .render = ac_render,
};
