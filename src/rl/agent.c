/* Reinforcement-learning agents (include/cortex/agent.h): configuration,
 * networks, acting, evaluation, statistics and checkpoints. The training
 * loops are in agent_pg.c (REINFORCE, A2C, PPO) and agent_dqn.c (DQN). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/internal.h"
#include "agent_internal.h"

static const char *algo_names[] = {"reinforce", "a2c", "ppo", "dqn"};

const char *cx_rl_algo_name(cx_rl_algo a) { return a >= 0 && a <= CX_ALGO_DQN ? algo_names[a] : "?"; }

bool cx_rl_algo_parse(const char *name, cx_rl_algo *out) {
    for (int i = 0; i <= CX_ALGO_DQN; i++)
        if (!strcmp(name, algo_names[i])) {
            *out = (cx_rl_algo)i;
            return true;
        }
    return false;
}

static bool env_is(const char *spec, const char *alias, const char *id) {
    size_t n = strcspn(spec, ":");
    return (strlen(alias) == n && !strncmp(spec, alias, n)) || (strlen(id) == n && !strncmp(spec, id, n));
}

cx_rl_config cx_rl_defaults(cx_rl_algo algo, const char *env) {
    cx_rl_config c;
    memset(&c, 0, sizeof c);
    c.algo = algo;
    snprintf(c.env, sizeof c.env, "%s", env ? env : "CartPole-v1");
    c.seed = 1;
    c.n_hidden = 2;
    c.hidden[0] = c.hidden[1] = 64;
    c.act = CX_ACT_TANH;
    c.gamma = 0.99;
    c.max_grad_norm = 0.5;
    c.n_envs = 8;
    c.n_steps = 5;
    c.gae_lambda = 1.0;
    c.vf_coef = 0.5;
    c.n_epochs = 10;
    c.minibatch = 64;
    c.clip = 0.2;
    c.log_std_init = 0.0;
    c.buffer_size = 50000;
    c.batch_size = 64;
    c.learning_starts = 1000;
    c.train_freq = 1;
    c.target_update = 500;
    c.tau = 1.0;
    c.eps_start = 1.0;
    c.eps_end = 0.05;
    c.eps_decay = 10000;
    c.double_dqn = true;
    c.per_alpha = 0.6;
    c.per_beta0 = 0.4;
    c.per_beta_steps = 100000;
    switch (algo) {
    case CX_ALGO_REINFORCE:
        c.lr = 3e-3;
        c.norm_adv = true;
        c.max_grad_norm = 1.0;
        break;
    case CX_ALGO_A2C:
        c.lr = 7e-4; /* RMSprop, as in the A3C paper and its common implementations */
        break;
    case CX_ALGO_PPO:
        c.lr = 1e-3;
        c.n_steps = 32;
        c.minibatch = 256;
        c.n_epochs = 20;
        c.gae_lambda = 0.8;
        c.gamma = 0.98;
        c.norm_adv = true;
        break;
    case CX_ALGO_DQN:
        c.lr = 1e-3;
        c.n_envs = 1;
        c.hidden[0] = c.hidden[1] = 128;
        c.act = CX_ACT_RELU;
        c.max_grad_norm = 10;
        break;
    }
    if (env_is(c.env, "pendulum", "Pendulum-v1")) {
        c.gamma = 0.9;
        c.n_envs = 4;
        c.n_steps = algo == CX_ALGO_PPO ? 1024 : 16;
        c.gae_lambda = 0.95;
        c.lr = algo == CX_ALGO_PPO ? 1e-3 : 7e-4;
        c.n_epochs = 10;
        c.minibatch = 64;
        c.log_std_init = 0.0;
    }
    if (env_is(c.env, "catch", "Catch-v0")) {
        c.act = CX_ACT_RELU;
        c.hidden[0] = 128;
        c.n_hidden = 1;
        c.eps_decay = 5000;
        c.learning_starts = 500;
        c.buffer_size = 20000;
        c.target_update = 250;
    }
    return c;
}

/* ---- configuration as key=value ------------------------------------- */

typedef enum { K_INT, K_I64, K_DBL, K_BOOL, K_U64 } ktype;
static const struct {
    const char *key;
    ktype t;
    size_t off;
    double lo, hi;
} keys[] = {
#define F(k, t, lo, hi) {#k, t, offsetof(cx_rl_config, k), lo, hi}
    F(seed, K_U64, 0, 1.8e19),         F(lr, K_DBL, 0, 10),           F(gamma, K_DBL, 0, 1),
    F(max_grad_norm, K_DBL, 0, 1e9),   F(norm_adv, K_BOOL, 0, 1),     F(n_envs, K_INT, 1, 1024),
    F(n_steps, K_INT, 1, 1 << 20),     F(gae_lambda, K_DBL, 0, 1),    F(ent_coef, K_DBL, 0, 10),
    F(vf_coef, K_DBL, 0, 100),         F(n_epochs, K_INT, 1, 1000),   F(minibatch, K_INT, 1, 1 << 24),
    F(clip, K_DBL, 0, 10),             F(log_std_init, K_DBL, -20, 5), F(buffer_size, K_INT, 1, 1 << 26),
    F(batch_size, K_INT, 1, 1 << 20),  F(learning_starts, K_INT, 0, 1 << 30), F(train_freq, K_INT, 1, 1 << 20),
    F(target_update, K_INT, 1, 1 << 30), F(tau, K_DBL, 0, 1),     F(eps_start, K_DBL, 0, 1),
    F(eps_end, K_DBL, 0, 1),           F(eps_decay, K_INT, 1, 1 << 30), F(double_dqn, K_BOOL, 0, 1),
    F(prioritized, K_BOOL, 0, 1),      F(per_alpha, K_DBL, 0, 10),    F(per_beta0, K_DBL, 0, 1),
    F(per_beta_steps, K_I64, 1, 9e18),
#undef F
};
#define NKEYS ((int)(sizeof keys / sizeof *keys))

cx_status cx_rl_config_set(cx_rl_config *c, const char *key, const char *v) {
    if (!strcmp(key, "algo")) {
        if (!cx_rl_algo_parse(v, &c->algo))
            return cx_set_error(CX_ERR_INVALID, "algo=%s: expected reinforce, a2c, ppo or dqn", v);
        return CX_OK;
    }
    if (!strcmp(key, "env")) {
        if (strlen(v) >= sizeof c->env) return cx_set_error(CX_ERR_INVALID, "env=%s: longer than 127 characters", v);
        snprintf(c->env, sizeof c->env, "%s", v);
        return CX_OK;
    }
    if (!strcmp(key, "act")) {
        if (!cx_act_parse(v, &c->act)) return cx_set_error(CX_ERR_INVALID, "act=%s: not an activation (tanh, relu, ...)", v);
        return CX_OK;
    }
    if (!strcmp(key, "hidden")) {
        int h[4], n = 0;
        const char *p = v;
        while (*p) {
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || errno || x < 1 || x > 65536 || n == 4 || (*end && *end != ','))
                return cx_set_error(CX_ERR_INVALID, "hidden=%s: expected 1 to 4 layer sizes like 64,64", v);
            h[n++] = (int)x;
            p = *end ? end + 1 : end;
        }
        if (!n) return cx_set_error(CX_ERR_INVALID, "hidden=%s: expected 1 to 4 layer sizes like 64,64", v);
        c->n_hidden = n;
        memcpy(c->hidden, h, sizeof(int) * n);
        return CX_OK;
    }
    for (int i = 0; i < NKEYS; i++) {
        if (strcmp(key, keys[i].key)) continue;
        char *p = (char *)c + keys[i].off, *end;
        errno = 0;
        if (keys[i].t == K_BOOL) {
            int b;
            if (!strcmp(v, "1") || !strcmp(v, "true")) b = 1;
            else if (!strcmp(v, "0") || !strcmp(v, "false")) b = 0;
            else return cx_set_error(CX_ERR_INVALID, "%s=%s: expected 0 or 1", key, v);
            *(bool *)p = b;
            return CX_OK;
        }
        double x = strtod(v, &end);
        if (!*v || *end || errno || !(x >= keys[i].lo && x <= keys[i].hi))
            return cx_set_error(CX_ERR_INVALID, "%s=%s: expected a number in [%g, %g]", key, v, keys[i].lo, keys[i].hi);
        if ((keys[i].t == K_INT || keys[i].t == K_I64 || keys[i].t == K_U64) && x != floor(x))
            return cx_set_error(CX_ERR_INVALID, "%s=%s: expected an integer", key, v);
        switch (keys[i].t) {
        case K_INT: *(int *)p = (int)x; break;
        case K_I64: *(int64_t *)p = (int64_t)x; break;
        case K_U64: *(uint64_t *)p = strtoull(v, NULL, 10); break;
        case K_DBL: *(double *)p = x; break;
        case K_BOOL: break;
        }
        return CX_OK;
    }
    return cx_set_error(CX_ERR_INVALID, "unknown setting '%s'", key);
}

void cx_rl_config_write(const cx_rl_config *c, char *buf, size_t n) {
    size_t o = 0;
#define OUT(...)                                                                                                       \
    do {                                                                                                               \
        if (o < n) o += (size_t)snprintf(buf + o, n - o, __VA_ARGS__);                                                 \
    } while (0)
    if (n) buf[0] = 0;
    OUT("algo=%s\nenv=%s\nact=%s\nhidden=", cx_rl_algo_name(c->algo), c->env, cx_act_name(c->act));
    for (int i = 0; i < c->n_hidden; i++) OUT("%s%d", i ? "," : "", c->hidden[i]);
    OUT("\n");
    for (int i = 0; i < NKEYS; i++) {
        const char *p = (const char *)c + keys[i].off;
        switch (keys[i].t) {
        case K_INT: OUT("%s=%d\n", keys[i].key, *(const int *)p); break;
        case K_I64: OUT("%s=%lld\n", keys[i].key, (long long)*(const int64_t *)p); break;
        case K_U64: OUT("%s=%llu\n", keys[i].key, (unsigned long long)*(const uint64_t *)p); break;
        case K_DBL: OUT("%s=%.17g\n", keys[i].key, *(const double *)p); break;
        case K_BOOL: OUT("%s=%d\n", keys[i].key, *(const bool *)p ? 1 : 0); break;
        }
    }
#undef OUT
}

static cx_status config_parse_lines(cx_rl_config *c, const char *text) {
    char line[512];
    const char *p = text;
    while (*p) {
        size_t k = strcspn(p, "\n");
        if (k >= sizeof line) return cx_set_error(CX_ERR_FORMAT, "configuration line too long");
        memcpy(line, p, k);
        line[k] = 0;
        p += k + (p[k] == '\n');
        if (!*line) continue;
        char *eq = strchr(line, '=');
        if (!eq) return cx_set_error(CX_ERR_FORMAT, "configuration line '%s' is not key=value", line);
        *eq = 0;
        cx_status st = cx_rl_config_set(c, line, eq + 1);
        if (st) return st;
    }
    return CX_OK;
}

/* ---- networks -------------------------------------------------------- */

/* obs -> hidden layers -> out: an MLP, or for images two 3x3 convolutions
 * (16 and 32 channels, padding 1, ReLU) and a flatten in front of it. */
static cx_module *make_net(const cx_agent *a, int out) {
    const cx_rl_config *c = &a->c;
    int sizes[6], n = 0;
    cx_module *seq = NULL;
    if (a->obs_ndim == 3) {
        seq = cx_sequential_new();
        cx_conv_opts o = cx_conv_defaults();
        o.padding[0] = o.padding[1] = 1;
        cx_sequential_add(seq, "conv1", cx_conv2d_new(a->obs_shape[0], 16, 3, 3, &o, true));
        cx_sequential_add(seq, "relu1", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(seq, "conv2", cx_conv2d_new(16, 32, 3, 3, &o, true));
        cx_sequential_add(seq, "relu2", cx_activation_new(CX_ACT_RELU, 0));
        cx_sequential_add(seq, "flatten", cx_flatten_new());
        sizes[n++] = 32 * a->obs_shape[1] * a->obs_shape[2];
    } else {
        sizes[n++] = a->obs_n;
    }
    for (int i = 0; i < c->n_hidden; i++) sizes[n++] = c->hidden[i];
    sizes[n++] = out;
    cx_module *mlp = cx_mlp_new(sizes, n, c->act, 0);
    if (!seq) return mlp;
    cx_sequential_add(seq, "mlp", mlp);
    return seq;
}

/* Rename a module's parameters "<prefix>.<name>" (unique names for the
 * optimiser's state and the checkpoint) and add them to the agent's list. */
static void adopt(cx_agent *a, cx_module *m, const char *prefix, bool trainable) {
    cx_state_dict sd;
    cx_module_state_dict(m, &sd);
    for (int i = 0; i < sd.n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s.%s", prefix, sd.names[i]);
        cx_tensor_set_name(sd.t[i], name);
        if (trainable && sd.t[i]->requires_grad) cx_params_add(&a->params, sd.t[i]);
    }
    cx_state_dict_free(&sd);
}

static cx_status check_config(const cx_rl_config *c) {
    if (c->algo < 0 || c->algo > CX_ALGO_DQN) return cx_set_error(CX_ERR_INVALID, "rl: unknown algorithm %d", c->algo);
    if (c->n_hidden < 1 || c->n_hidden > 4) return cx_set_error(CX_ERR_INVALID, "rl: 1 to 4 hidden layers, got %d", c->n_hidden);
    if (!(c->lr > 0)) return cx_set_error(CX_ERR_INVALID, "rl: the learning rate must be > 0, got %g", c->lr);
    if (!(c->gamma >= 0 && c->gamma <= 1)) return cx_set_error(CX_ERR_INVALID, "rl: gamma must be in [0, 1], got %g", c->gamma);
    if (c->n_envs < 1) return cx_set_error(CX_ERR_INVALID, "rl: n_envs must be >= 1, got %d", c->n_envs);
    if (c->algo == CX_ALGO_DQN) {
        if (c->batch_size > c->buffer_size)
            return cx_set_error(CX_ERR_INVALID, "dqn: batch_size %d is larger than buffer_size %d", c->batch_size,
                                c->buffer_size);
        if (c->eps_end > c->eps_start)
            return cx_set_error(CX_ERR_INVALID, "dqn: eps_end %g is above eps_start %g", c->eps_end, c->eps_start);
    }
    return CX_OK;
}

cx_agent *cx_agent_new(const cx_rl_config *cfg) {
    if (check_config(cfg)) return NULL;
    cx_vec_env *v = cx_vec_env_make(cfg->env, cfg->n_envs, cfg->seed * 1000u);
    if (!v) return NULL;
    cx_env *e0 = cx_vec_env_get(v, 0);
    const cx_space *os = cx_env_observation_space(e0), *as = cx_env_action_space(e0);
    if (os->kind != CX_SPACE_BOX) {
        cx_set_error(CX_ERR_INVALID, "rl: %s has discrete observations (a tabular environment): use the tabular methods "
                                     "(value iteration, Q-learning)", cx_env_name(e0));
        cx_vec_env_free(v);
        return NULL;
    }
    if (cfg->algo == CX_ALGO_DQN && as->kind != CX_SPACE_DISCRETE) {
        cx_set_error(CX_ERR_INVALID, "dqn: %s has continuous actions; DQN needs discrete ones (use a2c or ppo)",
                     cx_env_name(e0));
        cx_vec_env_free(v);
        return NULL;
    }
    if (cfg->algo == CX_ALGO_REINFORCE && as->kind != CX_SPACE_DISCRETE) {
        cx_set_error(CX_ERR_INVALID, "reinforce: %s has continuous actions; use a2c or ppo (Gaussian policy)",
                     cx_env_name(e0));
        cx_vec_env_free(v);
        return NULL;
    }
    cx_agent *a = calloc(1, sizeof *a);
    if (!a) cx_fatal("rl: out of memory");
    a->c = *cfg;
    a->venv = v;
    a->n_envs = cfg->n_envs;
    a->obs_n = os->n;
    a->obs_ndim = os->ndim;
    memcpy(a->obs_shape, os->shape, sizeof a->obs_shape);
    a->discrete = as->kind == CX_SPACE_DISCRETE;
    a->act_n = as->n;
    a->act_low = as->low;
    a->act_high = as->high;
    a->arena = cx_arena_new(1 << 20);
    a->rng = cx_rng_new(cfg->seed ^ 0x9E3779B97F4A7C15ull);
    a->obs = calloc((size_t)a->n_envs * a->obs_n, sizeof(float));
    if (!a->obs) cx_fatal("rl: out of memory");
    cx_params_init(&a->params);

    /* the initial weights come from their own stream of the seed */
    cx_rng init = cx_rng_new(cfg->seed * 2654435761u + 7);
    cx_rng *prev = cx_rng_use(&init);
    if (cfg->algo == CX_ALGO_DQN) {
        a->q = make_net(a, a->act_n);
        a->q_target = make_net(a, a->act_n);
        adopt(a, a->q, "q", true);
        adopt(a, a->q_target, "q_target", false);
        cx_module_copy_state(a->q_target, a->q);
        cx_params tp;
        cx_params_init(&tp);
        cx_module_params(a->q_target, &tp);
        for (int i = 0; i < tp.n; i++) tp.t[i]->requires_grad = false;
        cx_params_free(&tp);
    } else {
        a->policy = make_net(a, a->act_n);
        a->value = make_net(a, 1);
        adopt(a, a->policy, "policy", true);
        if (!a->discrete) {
            a->log_std = cx_param_new("policy.log_std", (const int[]){a->act_n}, 1);
            cx_fill(a->log_std, (float)cfg->log_std_init);
            cx_params_add(&a->params, a->log_std);
        }
        adopt(a, a->value, "value", true);
    }
    cx_rng_use(prev);

    if (cfg->algo == CX_ALGO_A2C) {
        cx_rmsprop_opts o = cx_rmsprop_defaults();
        o.lr = cfg->lr;
        o.alpha = 0.99;
        o.eps = 1e-5;
        a->opt = cx_rmsprop_new(&a->params, &o);
    } else {
        cx_adam_opts o = cx_adam_defaults();
        o.lr = cfg->lr;
        if (cfg->algo == CX_ALGO_PPO) o.eps = 1e-5;
        a->opt = cx_adam_new(&a->params, &o);
    }
    if (cfg->algo == CX_ALGO_DQN) a->rb = replay_new(cfg->buffer_size, a->obs_n, cfg->prioritized);
    cx_vec_env_reset(a->venv, a->obs);
    return a;
}

void cx_agent_free(cx_agent *a) {
    if (!a) return;
    cx_optim_free(a->opt);
    cx_module_free(a->policy);
    cx_module_free(a->value);
    cx_module_free(a->q);
    cx_module_free(a->q_target);
    cx_tensor_free(a->log_std);
    cx_params_free(&a->params);
    cx_vec_env_free(a->venv);
    cx_arena_free(a->arena);
    replay_free(a->rb);
    free(a->obs);
    free(a);
}

const cx_rl_config *cx_agent_config(const cx_agent *a) { return &a->c; }

cx_module *cx_agent_network(cx_agent *a, const char *which) {
    if (!which) return NULL;
    if (!strcmp(which, "policy")) return a->policy;
    if (!strcmp(which, "value")) return a->value;
    if (!strcmp(which, "q")) return a->q;
    if (!strcmp(which, "q_target")) return a->q_target;
    return NULL;
}

/* ---- statistics ------------------------------------------------------ */

void agent_record_return(cx_agent *a, double ret) {
    a->recent[a->recent_head] = ret;
    a->recent_head = (a->recent_head + 1) % 100;
    if (a->recent_n < 100) a->recent_n++;
    a->episodes++;
}

void agent_record_episodes(cx_agent *a) {
    double r[64];
    int k;
    while ((k = cx_vec_env_finished(a->venv, r, NULL, 64)) > 0)
        for (int i = 0; i < k; i++) agent_record_return(a, r[i]);
}

cx_rl_progress cx_agent_progress(const cx_agent *a) {
    cx_rl_progress p = {a->steps, a->episodes, a->updates, NAN, a->last_loss, a->seconds};
    if (a->recent_n) {
        double s = 0;
        for (int i = 0; i < a->recent_n; i++) s += a->recent[i];
        p.mean_return = s / a->recent_n;
    }
    return p;
}

cx_status agent_update_done(cx_agent *a, double loss) {
    a->updates++;
    a->last_loss = loss;
    if (!isfinite(loss))
        return cx_set_error(CX_ERR_INVALID,
                            "%s: the loss became %s at update %lld (step %lld): lower the learning rate (lr=%g) or "
                            "clip the gradients (max_grad_norm)",
                            cx_rl_algo_name(a->c.algo), isnan(loss) ? "NaN" : "infinite", (long long)a->updates,
                            (long long)a->steps, a->c.lr);
    return CX_OK;
}

double agent_epsilon(const cx_agent *a) {
    double f = (double)a->steps / a->c.eps_decay;
    if (f > 1) f = 1;
    return a->c.eps_start + f * (a->c.eps_end - a->c.eps_start);
}

cx_tensor *agent_obs_tensor(const cx_agent *a, const float *obs, int n) {
    if (a->obs_ndim == 3) return cx_from_data(obs, (const int[]){n, a->obs_shape[0], a->obs_shape[1], a->obs_shape[2]}, 4);
    return cx_from_data(obs, (const int[]){n, a->obs_n}, 2);
}

/* ---- acting ---------------------------------------------------------- */

cx_status cx_agent_train(cx_agent *a, int64_t steps) {
    if (steps < 0) return cx_set_error(CX_ERR_INVALID, "rl: negative step count %lld", (long long)steps);
    cx_arena *prev = cx_arena_use(a->arena);
    cx_rng *prev_rng = cx_rng_use(&a->rng);
    double t0 = cx_now();
    cx_status st = a->c.algo == CX_ALGO_DQN ? agent_dqn_train(a, steps) : agent_pg_train(a, steps);
    a->seconds += cx_now() - t0;
    cx_arena_reset(a->arena);
    cx_rng_use(prev_rng);
    cx_arena_use(prev);
    return st;
}

void cx_agent_act(cx_agent *a, const float *obs, int n, bool greedy, int *actions, float *box_actions) {
    cx_arena *prev = cx_arena_use(a->arena);
    cx_no_grad_begin();
    cx_tensor *x = agent_obs_tensor(a, obs, n);
    if (a->q) {
        /* the random rows first (the same draws in the same order), then Q
         * only when some row acts greedily */
        double eps = greedy ? 0 : agent_epsilon(a);
        int n_greedy = 0;
        for (int i = 0; i < n; i++) {
            if (eps > 0 && cx_rng_uniform(&a->rng) < eps) actions[i] = (int)cx_rng_below(&a->rng, (uint32_t)a->act_n);
            else actions[i] = -1, n_greedy++;
        }
        const float *q = n_greedy ? CX_F(cx_module_forward(a->q, x)) : NULL;
        for (int i = 0; i < n; i++) {
            if (actions[i] >= 0) continue;
            int best = 0;
            for (int k = 1; k < a->act_n; k++)
                if (q[(size_t)i * a->act_n + k] > q[(size_t)i * a->act_n + best]) best = k;
            actions[i] = best;
        }
    } else if (a->discrete) {
        cx_tensor *logits = cx_module_forward(a->policy, x);
        if (greedy) {
            const float *l = CX_F(logits);
            for (int i = 0; i < n; i++) {
                int best = 0;
                for (int k = 1; k < a->act_n; k++)
                    if (l[(size_t)i * a->act_n + k] > l[(size_t)i * a->act_n + best]) best = k;
                actions[i] = best;
            }
        } else {
            cx_tensor *s = cx_categorical_sample(logits, &a->rng, NULL);
            for (int i = 0; i < n; i++) actions[i] = CX_I32P(s)[i];
        }
    } else {
        cx_tensor *mean = cx_module_forward(a->policy, x);
        const float *m = CX_F(mean), *ls = CX_F(a->log_std);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < a->act_n; d++) {
                float v = m[(size_t)i * a->act_n + d];
                if (!greedy) v += expf(ls[d]) * cx_rng_normal(&a->rng);
                box_actions[(size_t)i * a->act_n + d] = v;
            }
    }
    cx_no_grad_end();
    cx_arena_reset(a->arena);
    cx_arena_use(prev);
}

double cx_agent_evaluate(cx_agent *a, int episodes, uint64_t seed, bool greedy, double *returns) {
    cx_env *e = cx_env_make(a->c.env);
    if (!e) cx_fatal("rl: evaluate: %s", cx_last_error());
    float *obs = malloc(sizeof(float) * (size_t)a->obs_n);
    float box[16];
    if (!obs) cx_fatal("rl: out of memory");
    /* sampled evaluation draws from its own stream: it does not disturb training */
    cx_rng saved = a->rng;
    a->rng = cx_rng_new(seed ^ 0x5DEECE66Dull);
    double total = 0;
    for (int ep = 0; ep < episodes; ep++) {
        cx_env_seed(e, seed + (uint64_t)ep);
        cx_env_reset(e, obs);
        double ret = 0;
        for (;;) {
            int act = 0;
            cx_agent_act(a, obs, 1, greedy, &act, box);
            cx_step_result r = a->discrete ? cx_env_step(e, act, obs) : cx_env_step_box(e, box, obs);
            ret += r.reward;
            if (r.terminated || r.truncated) break;
        }
        if (returns) returns[ep] = ret;
        total += ret;
    }
    a->rng = saved;
    free(obs);
    cx_env_free(e);
    return episodes > 0 ? total / episodes : NAN;
}

/* ---- checkpoints ----------------------------------------------------- */

/* Everything that is not a tensor, as bytes (packed into an I32 tensor). */
typedef struct blob_head {
    cx_rng rng;
    int64_t steps, episodes, updates;
    double last_loss, seconds;
    double recent[100];
    int32_t recent_n, recent_head;
    int32_t n_envs, obs_n;
    uint64_t env_bytes;
} blob_head;

static cx_tensor *make_blob(cx_agent *a) {
    size_t eb = cx_env_snapshot(cx_vec_env_get(a->venv, 0), NULL, 0);
    size_t total = sizeof(blob_head) + (size_t)a->n_envs * eb + sizeof(float) * (size_t)a->n_envs * a->obs_n;
    int n32 = (int)((total + 3) / 4);
    cx_tensor *t = cx_tensor_new(CX_I32, (const int[]){n32}, 1);
    uint8_t *p = t->data;
    blob_head h;
    memset(&h, 0, sizeof h);
    h.rng = a->rng;
    h.steps = a->steps;
    h.episodes = a->episodes;
    h.updates = a->updates;
    h.last_loss = a->last_loss;
    h.seconds = a->seconds;
    memcpy(h.recent, a->recent, sizeof h.recent);
    h.recent_n = a->recent_n;
    h.recent_head = a->recent_head;
    h.n_envs = a->n_envs;
    h.obs_n = a->obs_n;
    h.env_bytes = eb;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (int i = 0; i < a->n_envs; i++, p += eb) cx_env_snapshot(cx_vec_env_get(a->venv, i), p, eb);
    memcpy(p, a->obs, sizeof(float) * (size_t)a->n_envs * a->obs_n);
    return t;
}

static cx_status read_blob(cx_agent *a, const cx_tensor *t, const char *path) {
    size_t eb = cx_env_snapshot(cx_vec_env_get(a->venv, 0), NULL, 0);
    size_t total = sizeof(blob_head) + (size_t)a->n_envs * eb + sizeof(float) * (size_t)a->n_envs * a->obs_n;
    if (!t || t->dtype != CX_I32 || t->ndim != 1 || (size_t)t->shape[0] != (total + 3) / 4)
        return cx_set_error(CX_ERR_FORMAT, "%s: 'agent.state' is missing or of the wrong size for this configuration",
                            path);
    const uint8_t *p = t->data;
    blob_head h;
    memcpy(&h, p, sizeof h);
    if (h.n_envs != a->n_envs || h.obs_n != a->obs_n || h.env_bytes != eb || h.recent_n < 0 || h.recent_n > 100 ||
        h.recent_head < 0 || h.recent_head >= 100)
        return cx_set_error(CX_ERR_FORMAT, "%s: 'agent.state' does not match the configuration", path);
    p += sizeof h;
    for (int i = 0; i < a->n_envs; i++, p += eb) {
        cx_status st = cx_env_restore(cx_vec_env_get(a->venv, i), p, eb);
        if (st) return st;
    }
    a->rng = h.rng;
    a->steps = h.steps;
    a->episodes = h.episodes;
    a->updates = h.updates;
    a->last_loss = h.last_loss;
    a->seconds = h.seconds;
    memcpy(a->recent, h.recent, sizeof h.recent);
    a->recent_n = h.recent_n;
    a->recent_head = h.recent_head;
    memcpy(a->obs, p, sizeof(float) * (size_t)a->n_envs * a->obs_n);
    return CX_OK;
}

/* Every tensor of the agent's networks (named "<net>.<layer>..."), in a
 * fixed order: what a checkpoint holds besides the optimiser and the blob. */
static void model_tensors(cx_agent *a, cx_params *all) {
    cx_params_init(all);
    cx_module *mods[4] = {a->policy, a->value, a->q, a->q_target};
    for (int m = 0; m < 4; m++) {
        if (!mods[m]) continue;
        cx_state_dict sd;
        cx_module_state_dict(mods[m], &sd);
        for (int i = 0; i < sd.n; i++) cx_params_add(all, sd.t[i]);
        cx_state_dict_free(&sd);
    }
    if (a->log_std) cx_params_add(all, a->log_std);
}

cx_status cx_agent_save(cx_agent *a, const char *path) {
    cx_params all;
    model_tensors(a, &all);
    int n_model = all.n;
    cx_params os;
    cx_params_init(&os);
    cx_optim_state_export(a->opt, &os);
    cx_tensor *extra[16];
    const char *extra_names[16];
    int ne = 0;
    extra[ne] = make_blob(a);
    extra_names[ne++] = "agent.state";
    if (a->rb) ne += replay_export(a->rb, extra + ne, extra_names + ne, 16 - ne);
    int n = n_model + os.n + ne;
    cx_tensor **t = malloc(sizeof *t * (size_t)n);
    const char **names = malloc(sizeof *names * (size_t)n);
    char **owned = calloc((size_t)os.n + 1, sizeof *owned);
    if (!t || !names || !owned) cx_fatal("rl: out of memory");
    int k = 0;
    for (int i = 0; i < n_model; i++, k++) {
        t[k] = all.t[i];
        names[k] = all.t[i]->name;
    }
    for (int i = 0; i < os.n; i++, k++) {
        size_t L = strlen(os.t[i]->name) + 7;
        owned[i] = malloc(L);
        if (!owned[i]) cx_fatal("rl: out of memory");
        snprintf(owned[i], L, "optim.%s", os.t[i]->name);
        t[k] = os.t[i];
        names[k] = owned[i];
    }
    for (int i = 0; i < ne; i++, k++) {
        t[k] = extra[i];
        names[k] = extra_names[i];
    }
    char cfg[4096];
    cx_rl_config_write(&a->c, cfg, sizeof cfg);
    const char *mk[] = {"format", "cortex_rl_config"}, *mv[] = {"cortex-rl-agent", cfg};
    cx_status st = cx_st_save(path, t, names, n, mk, mv, 2);
    for (int i = 0; i < ne; i++) cx_tensor_free(extra[i]);
    for (int i = 0; i < os.n; i++) free(owned[i]);
    free(owned);
    free(t);
    free(names);
    cx_params_free(&os);
    cx_params_free(&all);
    return st;
}

cx_status cx_agent_load(const char *path, cx_agent **out) {
    *out = NULL;
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    const char *fmt = cx_st_meta(f, "format"), *cfgtext = cx_st_meta(f, "cortex_rl_config");
    if (!fmt || strcmp(fmt, "cortex-rl-agent") || !cfgtext) {
        cx_st_free(f);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a Cortex RL agent (no cortex_rl_config metadata)", path);
    }
    cx_rl_config c = cx_rl_defaults(CX_ALGO_DQN, NULL);
    st = config_parse_lines(&c, cfgtext);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_st_free(f);
        return cx_set_error(CX_ERR_FORMAT, "%s: bad configuration: %s", path, msg);
    }
    cx_agent *a = cx_agent_new(&c);
    if (!a) {
        cx_st_free(f);
        return CX_ERR_FORMAT;
    }
    /* the model tensors, by name */
    cx_params all;
    model_tensors(a, &all);
    for (int i = 0; i < all.n && !st; i++) {
        cx_tensor *src = cx_st_get(f, all.t[i]->name);
        if (!src) st = cx_set_error(CX_ERR_NOTFOUND, "%s: tensor '%s' is missing", path, all.t[i]->name);
        else if (src->dtype != all.t[i]->dtype || !cx_same_shape(src, all.t[i]))
            st = cx_set_error(CX_ERR_SHAPE, "%s: tensor '%s' has the wrong shape or type", path, all.t[i]->name);
    }
    for (int i = 0; i < all.n && !st; i++) {
        cx_tensor *src = cx_st_get(f, all.t[i]->name);
        memcpy(all.t[i]->data, src->data, (size_t)src->numel * cx_dtype_size(src->dtype));
    }
    cx_params_free(&all);
    /* optimiser state: the file's "optim.<name>" under "<name>" */
    if (!st) {
        cx_params os;
        cx_params_init(&os);
        for (int i = 0; i < f->n; i++) {
            cx_tensor *t = f->entries[i].tensor;
            if (t->name && !strncmp(t->name, "optim.", 6)) {
                char nm[256];
                snprintf(nm, sizeof nm, "%s", t->name + 6);
                cx_tensor_set_name(t, nm);
                cx_params_add(&os, t);
            }
        }
        st = cx_optim_state_import(a->opt, &os);
        cx_params_free(&os);
    }
    if (!st) st = read_blob(a, cx_st_get(f, "agent.state"), path);
    if (!st && a->rb) st = replay_import(a->rb, f, path);
    cx_st_free(f);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_agent_free(a);
        return cx_set_error(st, "%s", msg);
    }
    *out = a;
    return CX_OK;
}
