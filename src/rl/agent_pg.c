/* Policy-gradient agents (include/cortex/agent.h): REINFORCE with a learned
 * baseline, A2C and PPO, with softmax policies for discrete actions and
 * Gaussian ones (learned log std) for box actions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/internal.h"
#include "agent_internal.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) cx_fatal("rl: out of memory");
    return p;
}

/* log pi(a|s) [N] and the entropy per row [N] (or a [1] tensor for a
 * Gaussian, whose entropy does not depend on the state) for stored actions. */
static cx_tensor *policy_logp(cx_agent *a, cx_tensor *x, const int32_t *acts, const float *box, int n,
                              cx_tensor **entropy) {
    cx_tensor *out = cx_module_forward(a->policy, x);
    if (a->discrete) {
        cx_tensor *at = cx_from_i32(acts, (const int[]){n}, 1);
        if (entropy) *entropy = cx_categorical_entropy(out);
        return cx_categorical_log_prob(out, at);
    }
    cx_tensor *bt = cx_from_data(box, (const int[]){n, a->act_n}, 2);
    /* entropy of a diagonal Gaussian: sum_d log std_d + D/2 log(2 pi e) */
    if (entropy) *entropy = cx_add_scalar(cx_sum(a->log_std), (float)(0.5 * a->act_n * log(2 * 3.14159265358979 * exp(1.0))));
    return cx_normal_log_prob(out, a->log_std, bt);
}

static cx_tensor *values_of(cx_agent *a, cx_tensor *x, int n) {
    return cx_reshape(cx_module_forward(a->value, x), (const int[]){n}, 1);
}

/* V(s) for n observations, without a graph. */
static void value_nograd(cx_agent *a, const float *obs, int n, float *v) {
    cx_no_grad_begin();
    cx_tensor *t = values_of(a, agent_obs_tensor(a, obs, n), n);
    memcpy(v, CX_F(t), sizeof(float) * n);
    cx_no_grad_end();
}

static void normalize(float *x, int n) {
    double m = 0, s = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    s = sqrt(s / (n > 1 ? n - 1 : 1));
    for (int i = 0; i < n; i++) x[i] = (float)((x[i] - m) / (s + 1e-8));
}

static double finish_update(cx_agent *a, cx_tensor *loss) {
    double l = cx_item(loss);
    cx_optim_zero_grad(a->opt);
    if (!isfinite(l)) return l;
    cx_backward(loss);
    if (a->c.max_grad_norm > 0) cx_clip_grad_norm(&a->params, (float)a->c.max_grad_norm);
    cx_optim_step(a->opt);
    return l;
}

/* ---- REINFORCE --------------------------------------------------------
 * n_envs episodes run side by side; when all have ended, one update. */
static cx_status reinforce_batch(cx_agent *a) {
    const int N = a->n_envs, D = a->obs_n;
    int cap = 1024, T = 0;
    float *obs = xmalloc(sizeof(float) * cap * D), *ret = xmalloc(sizeof(float) * cap);
    int32_t *act = xmalloc(sizeof(int32_t) * cap);
    int *env_of = xmalloc(sizeof(int) * cap);
    float *cur = xmalloc(sizeof(float) * N * D), *rew = xmalloc(sizeof(float) * cap), *boot = xmalloc(sizeof(float) * N);
    int *active = xmalloc(sizeof(int) * N), *idx = xmalloc(sizeof(int) * N), *acts = xmalloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) {
        cx_env_reset(cx_vec_env_get(a->venv, i), cur + (size_t)i * D);
        active[i] = 1;
        boot[i] = 0;
    }
    int n_active = N;
    float *batch = xmalloc(sizeof(float) * N * D);
    while (n_active > 0) {
        int m = 0;
        for (int i = 0; i < N; i++)
            if (active[i]) {
                memcpy(batch + (size_t)m * D, cur + (size_t)i * D, sizeof(float) * D);
                idx[m++] = i;
            }
        cx_agent_act(a, batch, m, false, acts, NULL);
        for (int j = 0; j < m; j++) {
            int i = idx[j];
            if (T == cap) {
                cap *= 2;
                obs = realloc(obs, sizeof(float) * cap * D);
                ret = realloc(ret, sizeof(float) * cap);
                rew = realloc(rew, sizeof(float) * cap);
                act = realloc(act, sizeof(int32_t) * cap);
                env_of = realloc(env_of, sizeof(int) * cap);
                if (!obs || !ret || !rew || !act || !env_of) cx_fatal("rl: out of memory");
            }
            memcpy(obs + (size_t)T * D, cur + (size_t)i * D, sizeof(float) * D);
            act[T] = acts[j];
            env_of[T] = i;
            cx_step_result r = cx_env_step(cx_vec_env_get(a->venv, i), acts[j], cur + (size_t)i * D);
            rew[T] = r.reward;
            T++;
            a->steps++;
            if (r.terminated || r.truncated) {
                active[i] = 0;
                n_active--;
                agent_record_return(a, cx_env_get_stats(cx_vec_env_get(a->venv, i)).last_return);
                if (r.truncated) value_nograd(a, cur + (size_t)i * D, 1, &boot[i]); /* the cut episode goes on */
                cx_arena_reset(a->arena);
            }
        }
    }
    /* reward-to-go per episode, from its end backwards */
    float *G = xmalloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) G[i] = boot[i];
    for (int t = T - 1; t >= 0; t--) {
        int i = env_of[t];
        G[i] = rew[t] + (float)a->c.gamma * G[i];
        ret[t] = G[i];
    }
    /* the update: baseline-subtracted score function + baseline regression */
    cx_tensor *x = agent_obs_tensor(a, obs, T);
    cx_tensor *v = values_of(a, x, T);
    float *adv = xmalloc(sizeof(float) * T);
    for (int t = 0; t < T; t++) adv[t] = ret[t] - CX_F(v)[t];
    if (a->c.norm_adv) normalize(adv, T);
    cx_tensor *logp = policy_logp(a, x, act, NULL, T, NULL);
    cx_tensor *R = cx_from_data(ret, (const int[]){T}, 1), *A = cx_from_data(adv, (const int[]){T}, 1);
    cx_tensor *loss = cx_add(cx_reinforce_loss(logp, A, NULL, NULL, CX_REDUCE_MEAN),
                             cx_mul_scalar(cx_mse_loss(v, R, CX_REDUCE_MEAN), (float)a->c.vf_coef));
    double l = finish_update(a, loss);
    cx_arena_reset(a->arena);
    free(obs), free(ret), free(rew), free(act), free(env_of), free(cur), free(boot), free(active), free(idx);
    free(acts), free(batch), free(G), free(adv);
    /* the vec env's own reset state is stale now: start the next batch fresh */
    return agent_update_done(a, l);
}

/* ---- rollouts (A2C, PPO) ---------------------------------------------- */

typedef struct rollout {
    int T, N, D, A;
    float *obs;     /* [T*N, D] */
    int32_t *act;   /* [T*N] */
    float *box;     /* [T*N, A] */
    float *rew, *val, *logp, *adv, *ret; /* [T*N] */
    uint8_t *done;  /* [T*N] */
} rollout;

static void rollout_alloc(rollout *r, int T, int N, int D, int A) {
    r->T = T, r->N = N, r->D = D, r->A = A;
    size_t M = (size_t)T * N;
    r->obs = xmalloc(sizeof(float) * M * D);
    r->act = xmalloc(sizeof(int32_t) * M);
    r->box = xmalloc(sizeof(float) * M * (A > 0 ? A : 1));
    r->rew = xmalloc(sizeof(float) * M);
    r->val = xmalloc(sizeof(float) * M);
    r->logp = xmalloc(sizeof(float) * M);
    r->adv = xmalloc(sizeof(float) * M);
    r->ret = xmalloc(sizeof(float) * M);
    r->done = xmalloc(M);
}

static void rollout_free(rollout *r) {
    free(r->obs), free(r->act), free(r->box), free(r->rew), free(r->val), free(r->logp), free(r->adv), free(r->ret);
    free(r->done);
}

static void collect(cx_agent *a, rollout *r) {
    const int N = a->n_envs, D = a->obs_n, A = a->act_n, T = r->T;
    float *final_obs = xmalloc(sizeof(float) * N * D), *rew = xmalloc(sizeof(float) * N);
    uint8_t *term = xmalloc(N), *trunc = xmalloc(N);
    int *acts = xmalloc(sizeof(int) * N);
    for (int t = 0; t < T; t++) {
        size_t o = (size_t)t * N;
        memcpy(r->obs + o * D, a->obs, sizeof(float) * N * D);
        /* act: sample from the policy, remember log pi and V */
        cx_no_grad_begin();
        cx_tensor *x = agent_obs_tensor(a, a->obs, N);
        cx_tensor *out = cx_module_forward(a->policy, x);
        cx_tensor *v = values_of(a, x, N);
        cx_tensor *logp;
        if (a->discrete) {
            cx_tensor *s = cx_categorical_sample(out, &a->rng, &logp);
            for (int i = 0; i < N; i++) r->act[o + i] = acts[i] = CX_I32P(s)[i];
        } else {
            cx_tensor *s = cx_normal_sample(out, a->log_std, &a->rng, &logp);
            memcpy(r->box + o * A, CX_F(s), sizeof(float) * N * A);
        }
        memcpy(r->logp + o, CX_F(logp), sizeof(float) * N);
        memcpy(r->val + o, CX_F(v), sizeof(float) * N);
        cx_no_grad_end();
        cx_arena_reset(a->arena);
        cx_vec_env_step(a->venv, a->discrete ? acts : NULL, a->discrete ? NULL : r->box + o * A, a->obs, rew, term,
                        trunc, final_obs);
        a->steps += N;
        for (int i = 0; i < N; i++) {
            r->rew[o + i] = rew[i];
            r->done[o + i] = term[i] || trunc[i];
            if (trunc[i] && !term[i]) { /* a cut episode: bootstrap from its last state */
                float vb;
                value_nograd(a, final_obs + (size_t)i * D, 1, &vb);
                r->rew[o + i] += (float)a->c.gamma * vb;
                cx_arena_reset(a->arena);
            }
        }
        agent_record_episodes(a);
    }
    /* GAE(lambda) backwards from V of the state after the rollout */
    float *last = xmalloc(sizeof(float) * N);
    value_nograd(a, a->obs, N, last);
    cx_arena_reset(a->arena);
    const double g = a->c.gamma, lam = a->c.gae_lambda;
    for (int i = 0; i < N; i++) {
        double next_adv = 0, next_val = last[i];
        for (int t = T - 1; t >= 0; t--) {
            size_t k = (size_t)t * N + i;
            double nonterm = r->done[k] ? 0.0 : 1.0;
            double delta = r->rew[k] + g * next_val * nonterm - r->val[k];
            double ad = delta + g * lam * nonterm * next_adv;
            r->adv[k] = (float)ad;
            r->ret[k] = (float)(ad + r->val[k]);
            next_adv = ad;
            next_val = r->val[k];
        }
    }
    free(final_obs), free(rew), free(term), free(trunc), free(acts), free(last);
}

/* One gradient step on the rows idx[0..m-1] of a rollout. */
static double pg_step(cx_agent *a, const rollout *r, const int *idx, int m, bool ppo) {
    const int D = a->obs_n, A = a->act_n;
    float *obs = xmalloc(sizeof(float) * m * D), *box = xmalloc(sizeof(float) * m * (A > 0 ? A : 1));
    float *adv = xmalloc(sizeof(float) * m), *ret = xmalloc(sizeof(float) * m), *old = xmalloc(sizeof(float) * m);
    int32_t *act = xmalloc(sizeof(int32_t) * m);
    for (int j = 0; j < m; j++) {
        int k = idx[j];
        memcpy(obs + (size_t)j * D, r->obs + (size_t)k * D, sizeof(float) * D);
        if (a->discrete) act[j] = r->act[k];
        else memcpy(box + (size_t)j * A, r->box + (size_t)k * A, sizeof(float) * A);
        adv[j] = r->adv[k];
        ret[j] = r->ret[k];
        old[j] = r->logp[k];
    }
    if (a->c.norm_adv && m > 1) normalize(adv, m);
    cx_tensor *x = agent_obs_tensor(a, obs, m);
    cx_tensor *ent = NULL; /* only when it is in the loss */
    cx_tensor *logp = policy_logp(a, x, act, box, m, a->c.ent_coef > 0 ? &ent : NULL);
    cx_tensor *At = cx_from_data(adv, (const int[]){m}, 1);
    cx_tensor *pl;
    if (ppo) {
        /* clipped surrogate: -min(rho A, clip(rho) A) = max(-rho A, -clip(rho) A) */
        cx_tensor *rho = cx_exp(cx_sub(logp, cx_from_data(old, (const int[]){m}, 1)));
        cx_tensor *s1 = cx_mul(rho, At);
        cx_tensor *s2 = cx_mul(cx_clamp(rho, (float)(1 - a->c.clip), (float)(1 + a->c.clip)), At);
        pl = cx_mean(cx_maximum(cx_neg(s1), cx_neg(s2)));
    } else {
        pl = cx_reinforce_loss(logp, At, NULL, NULL, CX_REDUCE_MEAN);
    }
    cx_tensor *v = values_of(a, x, m);
    cx_tensor *vl = cx_mse_loss(v, cx_from_data(ret, (const int[]){m}, 1), CX_REDUCE_MEAN);
    cx_tensor *loss = cx_add(pl, cx_mul_scalar(vl, (float)a->c.vf_coef));
    if (a->c.ent_coef > 0) loss = cx_sub(loss, cx_mul_scalar(cx_mean(ent), (float)a->c.ent_coef));
    double l = finish_update(a, loss);
    cx_arena_reset(a->arena);
    free(obs), free(box), free(adv), free(ret), free(old), free(act);
    return l;
}

static cx_status rollout_update(cx_agent *a, rollout *r) {
    collect(a, r);
    const int M = r->T * r->N;
    int *idx = xmalloc(sizeof(int) * M);
    for (int i = 0; i < M; i++) idx[i] = i;
    double l = 0;
    cx_status st = CX_OK;
    if (a->c.algo == CX_ALGO_A2C) {
        l = pg_step(a, r, idx, M, false);
        st = agent_update_done(a, l);
    } else {
        int mb = a->c.minibatch < M ? a->c.minibatch : M;
        for (int ep = 0; ep < a->c.n_epochs && !st; ep++) {
            for (int i = M - 1; i > 0; i--) { /* Fisher-Yates */
                int j = (int)cx_rng_below(&a->rng, (uint32_t)(i + 1)), t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
            for (int s = 0; s + mb <= M && !st; s += mb) {
                l = pg_step(a, r, idx + s, mb, true);
                st = agent_update_done(a, l);
            }
        }
    }
    free(idx);
    return st;
}

cx_status agent_pg_train(cx_agent *a, int64_t steps) {
    int64_t target = a->steps + steps;
    cx_status st = CX_OK;
    if (a->c.algo == CX_ALGO_REINFORCE) {
        while (a->steps < target && !st) st = reinforce_batch(a);
        return st;
    }
    rollout r;
    rollout_alloc(&r, a->c.n_steps, a->n_envs, a->obs_n, a->discrete ? 0 : a->act_n);
    while (a->steps < target && !st) st = rollout_update(a, &r);
    rollout_free(&r);
    return st;
}
