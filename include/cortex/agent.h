/* cortex/agent.h -- reinforcement-learning agents on cx_env environments:
 * REINFORCE with a learned baseline, advantage actor-critic (A2C), PPO and
 * DQN. See cortex.h.
 *
 *   cx_rl_config c = cx_rl_defaults(CX_ALGO_A2C, "CartPole-v1");
 *   c.seed = 1;
 *   cx_agent *ag = cx_agent_new(&c);               // NULL + cx_last_error()
 *   while (cx_agent_progress(ag).steps < 200000) {
 *       cx_agent_train(ag, 10000);                 // >= 10000 more env steps
 *       double ret = cx_agent_evaluate(ag, 100, 12345, true, NULL);
 *       printf("%lld steps: greedy return %.1f\n", (long long)cx_agent_progress(ag).steps, ret);
 *   }
 *   cx_agent_save(ag, "cartpole_a2c.safetensors");  // checkpoint: exact resume
 *   cx_agent_free(ag);
 *
 * The algorithms, as the course states them:
 *  - REINFORCE (Williams 1992): a batch of complete episodes from n_envs
 *    copies run in lock-step; loss -sum_t (G_t - b(s_t)) log pi(a_t|s_t)
 *    with the reward-to-go G_t = sum_k gamma^k r_{t+k} and a learned
 *    baseline b (a value network regressed on G_t); advantages normalised
 *    per batch when norm_adv.
 *  - A2C (Mnih et al. 2016, synchronous): n_envs copies, n_steps steps each
 *    per update; advantages from GAE(lambda) (Schulman et al. 2016;
 *    lambda = 1 gives the n-step returns bootstrapped from V of the last
 *    state); loss = policy loss + vf_coef * value MSE - ent_coef * entropy.
 *  - PPO (Schulman et al. 2017): the same rollouts, then n_epochs passes of
 *    minibatches over the clipped objective
 *    min(rho A, clip(rho, 1-clip, 1+clip) A), rho = pi/pi_old.
 *  - DQN (Mnih et al. 2015): epsilon-greedy acting, a replay buffer
 *    (uniform, or prioritised by |TD error|^alpha with importance weights
 *    annealed by beta, Schaul et al. 2016), the target
 *    y = r + gamma (1 - terminated) max_a' Q(s', a'; theta_old) (Double DQN:
 *    Q(s', argmax_a' Q(s', a'; theta); theta_old)), the Huber loss, gradient
 *    clipping, the target network refreshed every target_update steps (hard)
 *    or by Polyak averaging with tau after every update.
 * Discrete actions use a softmax policy; box actions (Pendulum) a Gaussian
 * one with a learned, state-independent log standard deviation (A2C, PPO).
 * Observations with 3 axes (pixels, [C, H, W]) go through a small CNN
 * (conv 3x3 x16, conv 3x3 x32, then the hidden layers) instead of an MLP.
 * An episode cut by the time limit is bootstrapped from the value of its
 * last observation (the next state still has a value); a terminated one is
 * not. Everything random comes from streams seeded by seed: the same seed
 * and thread count give the same run, and a checkpoint resumes it exactly
 * (networks, optimiser moments, environments, random streams, replay
 * buffer, counters). */
#ifndef CORTEX_AGENT_H
#define CORTEX_AGENT_H
#include <stdbool.h>
#include <stdint.h>
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { CX_ALGO_REINFORCE = 0, CX_ALGO_A2C, CX_ALGO_PPO, CX_ALGO_DQN } cx_rl_algo;
const char *cx_rl_algo_name(cx_rl_algo a);
bool cx_rl_algo_parse(const char *name, cx_rl_algo *out); /* "reinforce", "a2c", "ppo", "dqn" */

typedef struct cx_rl_config {
    cx_rl_algo algo;
    char env[128];       /* environment spec (cx_env_make) */
    uint64_t seed;
    int hidden[4];       /* hidden layer sizes of every network ... */
    int n_hidden;        /* ... how many (1-4) */
    cx_act act;          /* their activation */
    double lr;           /* learning rate (Adam; RMSprop for A2C) */
    double gamma;        /* discount */
    double max_grad_norm;/* clip the gradients' global L2 norm (0: off) */
    bool norm_adv;       /* normalise advantages per batch (REINFORCE, PPO) */
    int n_envs;          /* parallel environment copies */
    /* A2C / PPO */
    int n_steps;         /* steps per copy per rollout */
    double gae_lambda;   /* GAE lambda; 1: n-step returns */
    double ent_coef, vf_coef;
    int n_epochs;        /* PPO passes over each rollout */
    int minibatch;       /* PPO minibatch size */
    double clip;         /* PPO ratio clip */
    double log_std_init; /* Gaussian policies: initial log std */
    /* DQN */
    int buffer_size, batch_size;
    int learning_starts; /* steps of random acting before updates */
    int train_freq;      /* env steps per update */
    int target_update;   /* hard target refresh period in steps (tau == 1) */
    double tau;          /* Polyak factor per update (1: hard updates) */
    double eps_start, eps_end;
    int eps_decay;       /* steps of linear epsilon decay */
    bool double_dqn;
    bool prioritized;
    double per_alpha, per_beta0; /* beta anneals from beta0 to 1 over the run's step budget (per_beta_steps) */
    int64_t per_beta_steps;
} cx_rl_config;

/* Defaults for an algorithm on an environment (tuned for the classic-control
 * tasks and Catch; see the README's reinforcement-learning table). */
cx_rl_config cx_rl_defaults(cx_rl_algo algo, const char *env);

typedef struct cx_agent cx_agent;
/* A new agent and its environments; NULL with cx_last_error() for a bad
 * configuration (unknown environment, an algorithm that cannot act in the
 * action space, sizes out of range). */
cx_agent *cx_agent_new(const cx_rl_config *c);
void cx_agent_free(cx_agent *a);
const cx_rl_config *cx_agent_config(const cx_agent *a);

typedef struct cx_rl_progress {
    int64_t steps;         /* environment steps taken (all copies) */
    int64_t episodes;      /* finished training episodes */
    int64_t updates;       /* gradient updates */
    double mean_return;    /* over the last (up to) 100 training episodes; NaN before one */
    double last_loss;      /* loss of the last update */
    double seconds;        /* wall time spent in cx_agent_train */
} cx_rl_progress;
cx_rl_progress cx_agent_progress(const cx_agent *a);

/* Train for at least `steps` more environment steps (stopping at the end of
 * the update that crosses it). CX_ERR_INVALID when the loss became NaN or
 * infinite (the message says at which update; the agent keeps its last
 * finite parameters). */
cx_status cx_agent_train(cx_agent *a, int64_t steps);

/* Actions for n observations obs [n, obs_size]: greedy (argmax / the
 * Gaussian's mean) or sampled from the policy (DQN: epsilon-greedy with the
 * current epsilon). Discrete: actions [n]; box: box_actions [n, act_n]. */
void cx_agent_act(cx_agent *a, const float *obs, int n, bool greedy, int *actions, float *box_actions);

/* Mean return of `episodes` episodes on fresh copies of the environment
 * seeded seed, seed+1, ... (greedy or sampled actions). returns (may be
 * NULL) receives each episode's return. */
double cx_agent_evaluate(cx_agent *a, int episodes, uint64_t seed, bool greedy, double *returns);

/* The agent's networks, to inspect or visualise them: "policy", "value"
 * (REINFORCE, A2C, PPO), "q", "q_target" (DQN); NULL for a name the agent
 * does not have. Owned by the agent. Parameters are named "<net>.<layer>"
 * ("policy.fc1.weight"). */
cx_module *cx_agent_network(cx_agent *a, const char *which);

/* Checkpoints (safetensors): the networks under PyTorch-style names
 * ("policy.fc1.weight", "value.fc1.weight", "q.fc1.weight", ...), the
 * optimiser state, the environments, random streams, counters and (DQN) the
 * replay buffer, and the configuration as metadata. Written atomically.
 * cx_agent_load rebuilds the agent from the file alone; training continues
 * exactly as if it had not stopped. */
cx_status cx_agent_save(cx_agent *a, const char *path);
cx_status cx_agent_load(const char *path, cx_agent **out);

/* The configuration as "key=value" lines and back (the CLI's options use
 * the same keys: "lr=3e-4", "hidden=64,64", ...). cx_rl_config_set applies
 * one key=value; CX_ERR_INVALID with a message naming an unknown key or a
 * bad value. */
cx_status cx_rl_config_set(cx_rl_config *c, const char *key, const char *value);
void cx_rl_config_write(const cx_rl_config *c, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif
