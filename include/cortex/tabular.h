/* cortex/tabular.h -- tabular reinforcement learning: dynamic programming on
 * an environment's model (value iteration, policy iteration, exact policy
 * evaluation) and the temporal-difference methods Q-learning and SARSA run
 * on the environment itself. See cortex.h.
 *
 * Works on any environment with DISCRETE observations and actions; the
 * planning functions also need a model (cx_env_model, e.g. FrozenLake-v1).
 * Tables are double, row-major: V [nS], Q [nS * nA] (Q[s * nA + a]),
 * policy [nS] (an action per state). A transition marked terminated does
 * not bootstrap: its target is the reward alone (the next state has value
 * 0), so absorbing states (FrozenLake's holes and goal) have value 0.
 *
 *   cx_env *env = cx_env_make("frozenlake");
 *   int nS = cx_env_observation_space(env)->n, nA = cx_env_action_space(env)->n;
 *   double *V = malloc(nS * sizeof *V), *Q = malloc(nS * nA * sizeof *Q);
 *   int *pi = malloc(nS * sizeof *pi);
 *   cx_value_iteration(env, 0.99, 1e-10, 0, V, Q, pi, NULL);
 *   double success = cx_policy_mean_return(env, pi, 1000, 7);   // ~0.74
 */
#ifndef CORTEX_TABULAR_H
#define CORTEX_TABULAR_H
#include <stdint.h>
#include "core.h"
#include "env.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Value iteration: the Bellman optimality update (Sutton & Barto eq. 4.10)
 *   V(s) <- max_a sum_{s'} p(s'|s,a) [ r + gamma (1 - term) V(s') ]
 * swept over all states (synchronously) until max_s |V_new - V| < tol (or
 * max_iter sweeps; 0: 100000). The error of the result is then below
 * tol * gamma / (1 - gamma). Writes V, Q (the one-step look-ahead of the
 * final V) and the greedy policy (the lowest action whose Q is within 1e-12
 * of the maximum); each may be NULL. *iters (may be NULL): the sweeps made.
 * Errors: CX_ERR_INVALID (no model, non-discrete spaces, gamma not in
 * [0, 1), tol not positive), CX_ERR_INVALID "did not converge in N sweeps". */
cx_status cx_value_iteration(const cx_env *env, double gamma, double tol, int max_iter, double *V, double *Q,
                             int *policy, int *iters);

/* Policy iteration (Howard): from the policy "action 0 everywhere",
 * evaluate exactly (cx_policy_evaluate), improve greedily on
 *   Q(s,a) = sum_{s'} p(s'|s,a) [ r + gamma (1 - term) V_pi(s') ]
 * keeping the current action unless another is better by more than 1e-12
 * (so ties cannot make it cycle), until the policy is stable (or max_iter
 * improvements; 0: 1000). V is then the exact value of the optimal policy.
 * Same outputs and errors as cx_value_iteration; *iters: improvements made. */
cx_status cx_policy_iteration(const cx_env *env, double gamma, int max_iter, double *V, double *Q, int *policy,
                              int *iters);

/* The exact value of a deterministic policy: the solution of the linear
 * Bellman expectation equations (S&B eq. 4.4)
 *   (I - gamma P_pi) V = R_pi,   P_pi[s][s'] = sum of p over the
 *   non-terminated transitions s -> s' under pi(s), R_pi[s] = the expected
 *   reward under pi(s),
 * by Gaussian elimination with partial pivoting (dense: nS <= 4096).
 * Errors: as above, CX_ERR_INVALID for an action out of range. */
cx_status cx_policy_evaluate(const cx_env *env, const int *policy, double gamma, double *V);

/* The greedy policy of Q [nS * nA]: the lowest action within 1e-12 of the
 * row's maximum. */
void cx_q_greedy(const double *Q, int nS, int nA, int *policy);

/* Temporal-difference control on the environment itself (episodes of
 * cx_env_reset / cx_env_step, the time limit included), epsilon-greedy
 * behaviour (a random action with probability epsilon, else greedy with
 * ties broken at random). Q starts at 0. Updates, with
 * step size alpha:
 *   Q-learning (off-policy, S&B eq. 6.8):
 *     Q(s,a) += alpha [ r + gamma (1 - term) max_b Q(s',b) - Q(s,a) ]
 *   SARSA (on-policy, S&B eq. 6.7), a' the next action actually taken:
 *     Q(s,a) += alpha [ r + gamma (1 - term) Q(s',a') - Q(s,a) ]
 * An episode cut by the time limit (truncated) does bootstrap from s'.
 * Episodes run until terminated or truncated: an environment made with
 * max_steps=0 needs policies that end every episode. */
typedef struct cx_td_opts {
    int episodes;        /* default 10000 */
    double gamma;        /* default 0.99 */
    double alpha;        /* step size at the start, default 0.1 */
    double alpha_end;    /* step size at the end of the decay (< 0: alpha, constant; default -1) */
    double eps_start;    /* exploration at the start, default 1 */
    double eps_end;      /* after the decay, default 0.01 */
    double decay;        /* fraction of the episodes over which epsilon (and alpha) decay
                            linearly to their end values, default 0.5 */
    uint64_t seed;       /* the environment's and the exploration's seed, default 0 */
} cx_td_opts;

cx_td_opts cx_td_defaults(void);
/* Q [nS * nA] written (the learned table). Errors: CX_ERR_INVALID
 * (non-discrete spaces, an option out of range, named). The environment is
 * re-seeded with opts->seed and left after its last episode. */
cx_status cx_q_learning(cx_env *env, const cx_td_opts *opts, double *Q);
cx_status cx_sarsa(cx_env *env, const cx_td_opts *opts, double *Q);

/* Run `episodes` episodes of the deterministic policy (the environment
 * re-seeded with seed; each episode until terminated or truncated) and
 * return the mean undiscounted return (for FrozenLake: the success rate). NAN with cx_last_error() set on bad
 * arguments (non-discrete spaces, episodes < 1). */
double cx_policy_mean_return(cx_env *env, const int *policy, int episodes, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
