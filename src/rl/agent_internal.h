/* Private: the agent's state shared by agent.c (configuration, networks,
 * acting, evaluation, checkpoints), agent_pg.c (REINFORCE, A2C, PPO) and
 * agent_dqn.c (DQN and its replay buffer). */
#ifndef CX_AGENT_INTERNAL_H
#define CX_AGENT_INTERNAL_H
#include <cortex.h>
#include <cortex/agent.h>
#include <cortex/env.h>

/* DQN's replay buffer (and the sum tree of prioritised replay). */
typedef struct replay {
    int cap, size, pos, obs_n;
    float *obs, *next_obs, *rew;
    int32_t *act;
    uint8_t *done;      /* terminated (not truncated): no bootstrap */
    double *tree;       /* prioritised: sum tree [2 * cap2], leaves at cap2 + i */
    int cap2;
    double max_prio;
} replay;

struct cx_agent {
    cx_rl_config c;
    cx_vec_env *venv;
    int n_envs, obs_n, act_n;
    bool discrete;
    int obs_ndim, obs_shape[3];
    const float *act_low, *act_high;
    cx_module *policy, *value, *q, *q_target;
    cx_tensor *log_std;     /* Gaussian policies: [act_n], owned */
    cx_params params;       /* everything the optimiser updates */
    cx_optim *opt;
    cx_arena *arena;        /* every step's intermediates; reset after each */
    cx_rng rng;             /* actions, shuffles, replay draws */
    float *obs;             /* [n_envs, obs_n]: the current observations */
    int64_t steps, episodes, updates;
    double last_loss, seconds;
    double recent[100];
    int recent_n, recent_head;
    replay *rb;
};

/* agent.c */
void agent_record_episodes(cx_agent *a);   /* pull finished episodes from the vec env */
void agent_record_return(cx_agent *a, double ret);
cx_tensor *agent_obs_tensor(const cx_agent *a, const float *obs, int n); /* [n, obs...] in the arena */
double agent_epsilon(const cx_agent *a);
cx_status agent_update_done(cx_agent *a, double loss); /* NaN check, count */

/* agent_pg.c */
cx_status agent_pg_train(cx_agent *a, int64_t steps);
/* agent_dqn.c */
cx_status agent_dqn_train(cx_agent *a, int64_t steps);
replay *replay_new(int cap, int obs_n, bool prioritized);
void replay_free(replay *r);
/* The buffer's contents as named tensors for checkpoints (persistent, owned
 * by the caller via cx_tensor_free), and back. */
int replay_export(const replay *r, cx_tensor **t, const char **names, int max);
cx_status replay_import(replay *r, const cx_st_file *f, const char *path);

#endif
