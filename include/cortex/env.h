/* cortex/env.h -- environments for reinforcement learning. See cortex.h.
 *
 * An environment is a Markov decision process an agent acts in: reset it,
 * then step it with one action at a time until the episode ends.
 *
 *   cx_env *env = cx_env_make("CartPole-v1");          // NULL + cx_last_error() if unknown
 *   const cx_space *os = cx_env_observation_space(env); // BOX, n = 4
 *   float obs[4];
 *   cx_env_seed(env, 42);
 *   cx_env_reset(env, obs);
 *   for (;;) {
 *       int a = choose(obs);
 *       cx_step_result r = cx_env_step(env, a, obs);
 *       if (r.terminated || r.truncated) break;        // obs is the last observation
 *   }
 *   cx_env_free(env);
 *
 * The classic-control environments (CartPole-v1, Acrobot-v1, MountainCar-v0,
 * Pendulum-v1) have gymnasium's dynamics, constants, limits, rewards,
 * termination and time limits; the state is kept in double precision and
 * observations are F32, as gymnasium's float32 observations. Their random
 * initial states come from Cortex's own seeded stream (PCG32), not numpy's:
 * the same seed gives the same episode in Cortex, not the same as in
 * gymnasium. cx_env_set_state puts an environment in a given state, which is
 * how the tests compare trajectories with the published equations.
 *
 * "terminated" means the MDP reached a terminal state (the value of the next
 * state is 0); "truncated" means the episode was cut by its time limit (the
 * next state still has a value: bootstrap from it).
 *
 * Environment specs are a name with optional settings after a colon:
 *   "CartPole-v1"  (or "cartpole")          "Acrobot-v1"      ("acrobot")
 *   "MountainCar-v0" ("mountaincar")         "Pendulum-v1"     ("pendulum")
 *   "FrozenLake-v1" ("frozenlake")           "Catch-v0"        ("catch")
 *   "cartpole:max_steps=200"    any environment: a different time limit (0: none)
 *   "catch:stack=4"             any environment: observations are the last 4
 *                               observations stacked on the first axis
 *   "pendulum:g=9.81"           Pendulum-v1: gravity (gymnasium's g, default 10)
 *   "mountaincar:goal_velocity=0.01"  MountainCar-v0: the least velocity at
 *                               the goal that ends the episode (default 0)
 * plus the settings of FrozenLake and Catch:
 *   "frozenlake:map=8x8,slippery=0"   gymnasium's 4x4 (default) or 8x8 map;
 *        slippery=1 (default): the move goes the intended way or either
 *        perpendicular way, 1/3 each. Observation DISCRETE (the cell
 *        row * ncol + col), 4 actions (0 left, 1 down, 2 right, 3 up),
 *        reward 1 on reaching the goal, terminated in a hole or at the goal,
 *        time limit 100 (4x4) / 200 (8x8). Has a model (cx_env_model).
 *   "catch:rows=10,cols=5"   bsuite's Catch (these are the defaults):
 *        observation BOX [1, rows, cols] of 0/1 (the ball and the paddle),
 *        3 actions (0 left, 1 stay, 2 right), the episode ends after
 *        rows - 1 steps with +1 (caught) or -1 (missed), 0 before.
 * An unknown name or setting, or a bad value, makes cx_env_make return NULL
 * with the reason in cx_last_error(). */
#ifndef CORTEX_ENV_H
#define CORTEX_ENV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CX_SPACE_DISCRETE = 0, CX_SPACE_BOX = 1 } cx_space_kind;

/* An observation or action space.
 *   DISCRETE: the integers 0 .. n-1 (ndim 0; low/high NULL). A discrete
 *        observation (FrozenLake's cell) is written as ONE float holding
 *        the index (obs[0] = 2.0f for state 2): cx_env_obs_size is 1 and n
 *        is the number of states.
 *   BOX: n floats with shape[0..ndim-1] (a vector: ndim 1; an image:
 *        ndim 3, [C, H, W]) and per-element bounds low[i] <= x[i] <= high[i]
 *        (+-INFINITY where unbounded). */
typedef struct cx_space {
    cx_space_kind kind;
    int n;
    int ndim;
    int shape[3];
    const float *low, *high;
} cx_space;

/* What one step returned. */
typedef struct cx_step_result {
    float reward;
    bool terminated; /* a terminal state of the MDP */
    bool truncated;  /* the time limit (or another cut) ended the episode */
} cx_step_result;

/* One of the transitions of a tabular environment's model:
 * P(next_state, reward | state, action) = prob. */
typedef struct cx_transition {
    double prob;
    int next_state;
    double reward;
    bool terminated;
} cx_transition;

typedef struct cx_env cx_env;

/* A new environment from a spec (above); NULL with cx_last_error() set when
 * the name, a setting or a value is not known. Seeded with 0 until
 * cx_env_seed; reset it before the first step. */
cx_env *cx_env_make(const char *spec);
void cx_env_free(cx_env *env);
/* The canonical name ("CartPole-v1") and the spec it was made from. */
const char *cx_env_name(const cx_env *env);
const char *cx_env_spec(const cx_env *env);
/* Print the known environments, one per line, with a short description. */
void cx_env_list(FILE *out);

const cx_space *cx_env_observation_space(const cx_env *env);
const cx_space *cx_env_action_space(const cx_env *env);
/* Floats per observation: observation_space->n for a box, 1 for a discrete
 * observation (the index). */
int cx_env_obs_size(const cx_env *env);
/* The time limit in steps (0: none). */
int cx_env_max_steps(const cx_env *env);

/* Re-seed the environment's random stream (initial states, slips, ...):
 * the same seed gives the same sequence of episodes for the same actions. */
void cx_env_seed(cx_env *env, uint64_t seed);
/* Start an episode: writes the first observation to obs (obs_size floats). */
void cx_env_reset(cx_env *env, float *obs);
/* Act. Discrete action spaces: step with the action index (fatal when out
 * of range). Box action spaces: cx_env_step_box with n floats, clipped to
 * the bounds as gymnasium clips them. Writes the next observation to obs
 * (which may be NULL). Stepping a finished episode without a reset is
 * fatal. */
cx_step_result cx_env_step(cx_env *env, int action, float *obs);
cx_step_result cx_env_step_box(cx_env *env, const float *action, float *obs);

/* The underlying state (not the observation): CartPole [x, x_dot, theta,
 * theta_dot], Acrobot [theta1, theta2, dtheta1, dtheta2], MountainCar
 * [position, velocity], Pendulum [theta, theta_dot], FrozenLake [cell],
 * Catch [ball_row, ball_col, paddle_col]. cx_env_get_state writes up to max
 * values and returns the number of values; cx_env_set_state sets them (the
 * episode then continues from that state; the step count is unchanged).
 * A wrong count is fatal. */
int cx_env_get_state(const cx_env *env, double *state, int max);
void cx_env_set_state(cx_env *env, const double *state, int n);

/* The transition model of a tabular environment (DISCRETE observation and
 * action spaces, e.g. FrozenLake): writes the transitions of (state, action)
 * to out (up to max) and returns how many there are; -1 when the
 * environment has no model. Probabilities of the same next state may come
 * in several entries (as gymnasium's P[s][a]); they sum to 1. */
int cx_env_model(const cx_env *env, int state, int action, cx_transition *out, int max);

/* Episode statistics: the step count of the current episode, its return so
 * far, and the totals since the environment was made. */
typedef struct cx_env_stats {
    int64_t episodes;     /* finished episodes */
    int64_t total_steps;
    int steps;            /* in the current episode */
    double ep_return;     /* of the current episode so far */
    double last_return;   /* of the last finished episode */
    int last_length;
} cx_env_stats;
cx_env_stats cx_env_get_stats(const cx_env *env);

/* The whole state of the environment (dynamics, random stream, step count,
 * statistics) as bytes, for checkpoints with exact resume: cx_env_snapshot
 * returns the size and copies min(size, cap) bytes to buf (which may be
 * NULL to ask the size); cx_env_restore puts it back into an environment
 * made from the same spec (CX_ERR_FORMAT, with a message, for a snapshot of
 * another environment or of the wrong size). */
size_t cx_env_snapshot(const cx_env *env, void *buf, size_t cap);
cx_status cx_env_restore(cx_env *env, const void *buf, size_t n);

/* ---- rendering ---------------------------------------------------------
 * cx_env_render draws the current state as an RGB image (row-major, 3 bytes
 * per pixel) owned by the environment and valid until the next call; *w and
 * *h receive its size. cx_env_render_ansi prints it to a terminal with
 * 24-bit colour (two pixels per character cell, at most cols characters
 * wide). */
const uint8_t *cx_env_render(cx_env *env, int *w, int *h);
void cx_env_render_ansi(cx_env *env, FILE *out, int cols);

/* ---- vectorised environments -------------------------------------------
 * n copies of one environment stepped together, seeded seed, seed+1, ...,
 * seed+n-1. Observations are [n, obs_size]. An episode that ends is reset
 * in the same step: its row of obs is then the first observation of the
 * next episode, and (when final_obs is not NULL) the same row of final_obs
 * holds the last observation of the finished one (for bootstrapping a
 * truncated episode). */
typedef struct cx_vec_env cx_vec_env;
cx_vec_env *cx_vec_env_make(const char *spec, int n, uint64_t seed); /* NULL + cx_last_error() */
void cx_vec_env_free(cx_vec_env *v);
int cx_vec_env_num(const cx_vec_env *v);
cx_env *cx_vec_env_get(cx_vec_env *v, int i);
void cx_vec_env_reset(cx_vec_env *v, float *obs);
/* actions: int [n] for discrete action spaces, box_actions: float [n, act_n]
 * for box ones (the other NULL). rewards [n], terminated/truncated [n] (any
 * may be NULL). */
void cx_vec_env_step(cx_vec_env *v, const int *actions, const float *box_actions, float *obs, float *rewards,
                     uint8_t *terminated, uint8_t *truncated, float *final_obs);
/* Episodes finished since the last call: up to max (returns, lengths),
 * oldest first; returns how many were written (the rest are dropped). */
int cx_vec_env_finished(cx_vec_env *v, double *returns, int *lengths, int max);

#ifdef __cplusplus
}
#endif
#endif
