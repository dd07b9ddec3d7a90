/* CartPole-v1: gymnasium's cart-pole (Barto, Sutton & Anderson 1983), with
 * its constants, Euler integration, thresholds, reward (1 per step, the
 * terminating step included) and 500-step limit. */
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

#define GRAVITY 9.8
#define MASSCART 1.0
#define MASSPOLE 0.1
#define TOTAL_MASS (MASSCART + MASSPOLE)
#define LENGTH 0.5 /* half the pole's length */
#define POLEMASS_LENGTH (MASSPOLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define THETA_THRESHOLD (12.0 * 2.0 * 3.14159265358979323846 / 360.0)
#define X_THRESHOLD 2.4

typedef struct {
    double s[4]; /* x, x_dot, theta, theta_dot */
} cp_state;

static cx_status cp_setup(cx_env *e) {
    const float big = 3.4028234663852886e38f; /* np.finfo(np.float32).max */
    const float high[4] = {(float)(X_THRESHOLD * 2), big, (float)(THETA_THRESHOLD * 2), big};
    const float low[4] = {-high[0], -big, -high[2], -big};
    envi_box(e, &e->base_obs, 1, (const int[]){4}, low, high, 0, 0);
    envi_discrete(&e->act_space, 2);
    return CX_OK;
}

static void cp_observe(const cx_env *e, float *obs) {
    const cp_state *st = e->state;
    for (int i = 0; i < 4; i++) obs[i] = (float)st->s[i];
}

static void cp_reset(cx_env *e, float *obs) {
    cp_state *st = e->state;
    for (int i = 0; i < 4; i++) st->s[i] = -0.05 + 0.1 * (double)cx_rng_uniform(envi_rng(e));
    cp_observe(e, obs);
}

static float cp_step(cx_env *e, int a, const float *box, float *obs, bool *terminated) {
    (void)box;
    cp_state *st = e->state;
    double x = st->s[0], x_dot = st->s[1], theta = st->s[2], theta_dot = st->s[3];
    double force = a == 1 ? FORCE_MAG : -FORCE_MAG;
    double c = cos(theta), s = sin(theta);
    /* gymnasium's order of operations (theta_dot**2, costheta**2): the same doubles */
    double temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * s) / TOTAL_MASS;
    double thetaacc = (GRAVITY * s - c * temp) / (LENGTH * (4.0 / 3.0 - MASSPOLE * (c * c) / TOTAL_MASS));
    double xacc = temp - POLEMASS_LENGTH * thetaacc * c / TOTAL_MASS;
    x = x + TAU * x_dot;
    x_dot = x_dot + TAU * xacc;
    theta = theta + TAU * theta_dot;
    theta_dot = theta_dot + TAU * thetaacc;
    st->s[0] = x;
    st->s[1] = x_dot;
    st->s[2] = theta;
    st->s[3] = theta_dot;
    *terminated = x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD || theta > THETA_THRESHOLD;
    cp_observe(e, obs);
    return 1.0f;
}

static void cp_get_state(const cx_env *e, double *s) { memcpy(s, ((const cp_state *)e->state)->s, sizeof(double) * 4); }
static void cp_set_state(cx_env *e, const double *s) { memcpy(((cp_state *)e->state)->s, s, sizeof(double) * 4); }

/* gymnasium draws on 600x400; Cortex at half that size, same proportions. */
static void cp_render_size(const cx_env *e, int *w, int *h) {
    (void)e;
    *w = 300;
    *h = 200;
}

static void cp_render(const cx_env *e, uint8_t *rgb, int w, int h) {
    const cp_state *st = e->state;
    double scale = w / (X_THRESHOLD * 2);
    double cartw = 25, carth = 15, polew = 5, polelen = scale * (2 * LENGTH);
    double carty = h * 0.75; /* screen y of the cart's centre line (top is 0) */
    envi_fill(rgb, w, h, 255, 255, 255);
    const uint8_t black[3] = {0, 0, 0}, cart[3] = {30, 30, 30}, pole[3] = {202, 152, 101}, axle[3] = {129, 132, 203};
    envi_rect(rgb, w, h, 0, (int)carty, w, (int)carty + 1, black);
    double cx = st->s[0] * scale + w / 2.0;
    envi_rect(rgb, w, h, (int)(cx - cartw / 2), (int)(carty - carth / 2), (int)(cx + cartw / 2),
              (int)(carty + carth / 2), cart);
    double th = st->s[2];
    double ax = cx, ay = carty - carth / 4;
    envi_line(rgb, w, h, ax, ay, ax + sin(th) * (polelen - polew / 2), ay - cos(th) * (polelen - polew / 2), polew / 2,
              pole);
    envi_disc(rgb, w, h, ax, ay, polew / 2, axle);
}

const cx_env_class cx_env_cartpole = {
    .id = "CartPole-v1",
    .alias = "cartpole",
    .about = "balance a pole on a cart: 4 floats, 2 actions (push left/right), +1 per step, 500 steps",
    .state_size = sizeof(cp_state),
    .max_episode_steps = 500,
    .state_dim = 4,
    .setup = cp_setup,
    .reset = cp_reset,
    .step = cp_step,
    .observe = cp_observe,
    .get_state = cp_get_state,
    .set_state = cp_set_state,
    .render_size = cp_render_size,
    .render = cp_render,
};
