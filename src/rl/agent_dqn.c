/* DQN (Mnih et al. 2015) with Double DQN (van Hasselt et al. 2016) and
 * prioritised replay (Schaul et al. 2016) as options; see
 * include/cortex/agent.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/internal.h"
#include "agent_internal.h"

/* ---- replay buffer ----------------------------------------------------- */

replay *replay_new(int cap, int obs_n, bool prioritized) {
    replay *r = calloc(1, sizeof *r);
    if (!r) cx_fatal("rl: out of memory");
    r->cap = cap;
    r->obs_n = obs_n;
    r->obs = calloc((size_t)cap * obs_n, sizeof(float));
    r->next_obs = calloc((size_t)cap * obs_n, sizeof(float));
    r->rew = calloc((size_t)cap, sizeof(float));
    r->act = calloc((size_t)cap, sizeof(int32_t));
    r->done = calloc((size_t)cap, 1);
    if (!r->obs || !r->next_obs || !r->rew || !r->act || !r->done)
        cx_fatal("rl: out of memory for a replay buffer of %d transitions of %d floats", cap, obs_n);
    if (prioritized) {
        r->cap2 = 1;
        while (r->cap2 < cap) r->cap2 *= 2;
        r->tree = calloc((size_t)2 * r->cap2, sizeof(double));
        if (!r->tree) cx_fatal("rl: out of memory");
        r->max_prio = 1.0;
    }
    return r;
}

void replay_free(replay *r) {
    if (!r) return;
    free(r->obs), free(r->next_obs), free(r->rew), free(r->act), free(r->done), free(r->tree);
    free(r);
}

static void tree_set(replay *r, int i, double p) {
    int k = r->cap2 + i;
    double d = p - r->tree[k];
    for (; k >= 1; k /= 2) r->tree[k] += d;
}

/* The leaf whose prefix-sum interval holds u (0 <= u < total). */
static int tree_find(const replay *r, double u) {
    int k = 1;
    while (k < r->cap2) {
        if (u < r->tree[2 * k] || r->tree[2 * k + 1] <= 0) k = 2 * k;
        else {
            u -= r->tree[2 * k];
            k = 2 * k + 1;
        }
    }
    int i = k - r->cap2;
    return i < r->size ? i : r->size - 1;
}

static void replay_add(replay *r, const float *o, int act, float rew, const float *o2, int done) {
    int i = r->pos;
    memcpy(r->obs + (size_t)i * r->obs_n, o, sizeof(float) * r->obs_n);
    memcpy(r->next_obs + (size_t)i * r->obs_n, o2, sizeof(float) * r->obs_n);
    r->act[i] = act;
    r->rew[i] = rew;
    r->done[i] = (uint8_t)done;
    if (r->tree) tree_set(r, i, r->max_prio); /* new transitions: the highest priority seen */
    r->pos = (r->pos + 1) % r->cap;
    if (r->size < r->cap) r->size++;
}

int replay_export(const replay *r, cx_tensor **t, const char **names, int max) {
    if (max < 7) cx_fatal("rl: replay_export needs 7 slots");
    int n = 0, D = r->obs_n, S = r->size > 0 ? r->size : 1;
    t[n] = cx_tensor_new(CX_F32, (const int[]){S, D}, 2);
    memcpy(t[n]->data, r->obs, sizeof(float) * (size_t)r->size * D);
    names[n++] = "replay.obs";
    t[n] = cx_tensor_new(CX_F32, (const int[]){S, D}, 2);
    memcpy(t[n]->data, r->next_obs, sizeof(float) * (size_t)r->size * D);
    names[n++] = "replay.next_obs";
    t[n] = cx_tensor_new(CX_F32, (const int[]){S}, 1);
    memcpy(t[n]->data, r->rew, sizeof(float) * (size_t)r->size);
    names[n++] = "replay.reward";
    t[n] = cx_tensor_new(CX_I32, (const int[]){S}, 1);
    memcpy(t[n]->data, r->act, sizeof(int32_t) * (size_t)r->size);
    names[n++] = "replay.action";
    t[n] = cx_tensor_new(CX_I32, (const int[]){S}, 1);
    for (int i = 0; i < r->size; i++) CX_I32P(t[n])[i] = r->done[i];
    names[n++] = "replay.terminated";
    t[n] = cx_tensor_new(CX_I64, (const int[]){3}, 1);
    CX_I64P(t[n])[0] = r->size;
    CX_I64P(t[n])[1] = r->pos;
    memcpy(&CX_I64P(t[n])[2], &r->max_prio, sizeof(double));
    names[n++] = "replay.meta";
    if (r->tree) {
        /* priorities as their exact bits (each double stored in an I64) */
        t[n] = cx_tensor_new(CX_I64, (const int[]){S}, 1);
        for (int i = 0; i < r->size; i++) memcpy(&CX_I64P(t[n])[i], &r->tree[r->cap2 + i], sizeof(double));
        names[n++] = "replay.priority";
    }
    return n;
}

static cx_tensor *need(const cx_st_file *f, const char *name, cx_dtype dt, int d0, int d1, const char *path,
                       cx_status *st) {
    cx_tensor *t = cx_st_get(f, name);
    if (*st) return NULL;
    if (!t || t->dtype != dt || t->shape[0] != d0 || (d1 > 0 && (t->ndim != 2 || t->shape[1] != d1))) {
        *st = cx_set_error(CX_ERR_FORMAT, "%s: replay buffer tensor '%s' is missing or of the wrong shape", path, name);
        return NULL;
    }
    return t;
}

cx_status replay_import(replay *r, const cx_st_file *f, const char *path) {
    cx_status st = CX_OK;
    cx_tensor *meta = need(f, "replay.meta", CX_I64, 3, 0, path, &st);
    if (st) return st;
    int64_t size = CX_I64P(meta)[0], pos = CX_I64P(meta)[1];
    if (size < 0 || size > r->cap || pos < 0 || pos >= r->cap)
        return cx_set_error(CX_ERR_FORMAT, "%s: replay buffer size %lld / position %lld out of range (capacity %d)", path,
                            (long long)size, (long long)pos, r->cap);
    int S = size > 0 ? (int)size : 1, D = r->obs_n;
    cx_tensor *o = need(f, "replay.obs", CX_F32, S, D, path, &st), *o2 = need(f, "replay.next_obs", CX_F32, S, D, path, &st);
    cx_tensor *rw = need(f, "replay.reward", CX_F32, S, 0, path, &st), *ac = need(f, "replay.action", CX_I32, S, 0, path, &st);
    cx_tensor *dn = need(f, "replay.terminated", CX_I32, S, 0, path, &st);
    cx_tensor *pr = r->tree ? need(f, "replay.priority", CX_I64, S, 0, path, &st) : NULL;
    if (st) return st;
    r->size = (int)size;
    r->pos = (int)pos;
    memcpy(&r->max_prio, &CX_I64P(meta)[2], sizeof(double));
    memcpy(r->obs, o->data, sizeof(float) * (size_t)size * D);
    memcpy(r->next_obs, o2->data, sizeof(float) * (size_t)size * D);
    memcpy(r->rew, rw->data, sizeof(float) * (size_t)size);
    memcpy(r->act, ac->data, sizeof(int32_t) * (size_t)size);
    for (int i = 0; i < size; i++) r->done[i] = CX_I32P(dn)[i] != 0;
    if (r->tree) {
        memset(r->tree, 0, sizeof(double) * 2 * (size_t)r->cap2);
        for (int i = 0; i < size; i++) {
            double p;
            memcpy(&p, &CX_I64P(pr)[i], sizeof p);
            tree_set(r, i, p);
        }
    }
    return CX_OK;
}

/* ---- the update -------------------------------------------------------- */

static double dqn_update(cx_agent *a) {
    replay *rb = a->rb;
    const int B = a->c.batch_size, D = a->obs_n, K = a->act_n;
    int *idx = malloc(sizeof(int) * B);
    float *o = malloc(sizeof(float) * B * D), *o2 = malloc(sizeof(float) * B * D), *y = malloc(sizeof(float) * B);
    float *w = malloc(sizeof(float) * B);
    int32_t *act = malloc(sizeof(int32_t) * B);
    if (!idx || !o || !o2 || !y || !w || !act) cx_fatal("rl: out of memory");
    if (rb->tree) {
        /* proportional prioritisation: stratified draws over the sum tree,
         * importance weights (N P(i))^-beta normalised by their maximum */
        double total = rb->tree[1], seg = total / B;
        double beta = a->c.per_beta0 + (1 - a->c.per_beta0) * fmin(1.0, (double)a->steps / a->c.per_beta_steps);
        double wmax = 0;
        for (int j = 0; j < B; j++) {
            double u = (j + cx_rng_uniform(&a->rng)) * seg;
            idx[j] = tree_find(rb, u);
            double p = rb->tree[rb->cap2 + idx[j]] / total;
            w[j] = (float)pow(rb->size * p, -beta);
            if (w[j] > wmax) wmax = w[j];
        }
        for (int j = 0; j < B; j++) w[j] = (float)(w[j] / wmax);
    } else {
        for (int j = 0; j < B; j++) {
            idx[j] = (int)cx_rng_below(&a->rng, (uint32_t)rb->size);
            w[j] = 1;
        }
    }
    for (int j = 0; j < B; j++) {
        memcpy(o + (size_t)j * D, rb->obs + (size_t)idx[j] * D, sizeof(float) * D);
        memcpy(o2 + (size_t)j * D, rb->next_obs + (size_t)idx[j] * D, sizeof(float) * D);
        act[j] = rb->act[idx[j]];
    }
    /* targets y = r + gamma (1 - terminated) Q_target(s', a*), a* = argmax of
     * Q_target (DQN) or of the online Q (Double DQN) */
    cx_no_grad_begin();
    cx_tensor *x2 = agent_obs_tensor(a, o2, B);
    const float *qt = CX_F(cx_module_forward(a->q_target, x2));
    const float *qo = a->c.double_dqn ? CX_F(cx_module_forward(a->q, x2)) : qt;
    for (int j = 0; j < B; j++) {
        const float *sel = qo + (size_t)j * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (sel[k] > sel[best]) best = k;
        double next = rb->done[idx[j]] ? 0.0 : qt[(size_t)j * K + best];
        y[j] = (float)(rb->rew[idx[j]] + a->c.gamma * next);
    }
    cx_no_grad_end();
    cx_tensor *q = cx_module_forward(a->q, agent_obs_tensor(a, o, B));
    cx_tensor *qa = cx_reshape(cx_gather(q, 1, cx_from_i32(act, (const int[]){B, 1}, 2)), (const int[]){B}, 1);
    cx_tensor *Y = cx_from_data(y, (const int[]){B}, 1);
    cx_tensor *loss;
    if (rb->tree) {
        cx_tensor *l = cx_smooth_l1_loss(qa, Y, 1.0f, CX_REDUCE_NONE);
        loss = cx_mean(cx_mul(l, cx_from_data(w, (const int[]){B}, 1)));
        const float *qv = CX_F(qa);
        for (int j = 0; j < B; j++) {
            double p = pow(fabs((double)qv[j] - y[j]) + 1e-6, a->c.per_alpha);
            tree_set(rb, idx[j], p);
            if (p > rb->max_prio) rb->max_prio = p;
        }
    } else {
        loss = cx_smooth_l1_loss(qa, Y, 1.0f, CX_REDUCE_MEAN);
    }
    double lv = cx_item(loss);
    cx_optim_zero_grad(a->opt);
    if (isfinite(lv)) {
        cx_backward(loss);
        if (a->c.max_grad_norm > 0) cx_clip_grad_norm(&a->params, (float)a->c.max_grad_norm);
        cx_optim_step(a->opt);
    }
    cx_arena_reset(a->arena);
    free(idx), free(o), free(o2), free(y), free(w), free(act);
    return lv;
}

/* theta_target = tau theta + (1 - tau) theta_target (tau = 1: a copy). */
static void update_target(cx_agent *a, double tau) {
    cx_params p, pt;
    cx_params_init(&p);
    cx_params_init(&pt);
    cx_module_params(a->q, &p);
    cx_module_params(a->q_target, &pt);
    for (int i = 0; i < p.n; i++) {
        float *d = CX_F(pt.t[i]);
        const float *s = CX_F(p.t[i]);
        for (int64_t k = 0; k < p.t[i]->numel; k++) d[k] = (float)(tau * s[k] + (1 - tau) * d[k]);
    }
    cx_params_free(&p);
    cx_params_free(&pt);
}

cx_status agent_dqn_train(cx_agent *a, int64_t steps) {
    const int N = a->n_envs, D = a->obs_n;
    int64_t target = a->steps + steps;
    int *acts = malloc(sizeof(int) * N);
    float *next = malloc(sizeof(float) * N * D), *fin = malloc(sizeof(float) * N * D), *rew = malloc(sizeof(float) * N);
    uint8_t *term = malloc(N), *trunc = malloc(N);
    if (!acts || !next || !fin || !rew || !term || !trunc) cx_fatal("rl: out of memory");
    cx_status st = CX_OK;
    while (a->steps < target && !st) {
        if (a->steps < a->c.learning_starts) {
            for (int i = 0; i < N; i++) acts[i] = (int)cx_rng_below(&a->rng, (uint32_t)a->act_n);
        } else {
            cx_agent_act(a, a->obs, N, false, acts, NULL);
        }
        cx_vec_env_step(a->venv, acts, NULL, next, rew, term, trunc, fin);
        /* fin holds each copy's true next observation (the last one of an
         * episode that ended); a cut episode still bootstraps */
        for (int i = 0; i < N; i++)
            replay_add(a->rb, a->obs + (size_t)i * D, acts[i], rew[i], fin + (size_t)i * D, term[i]);
        memcpy(a->obs, next, sizeof(float) * N * D);
        int64_t before = a->steps;
        a->steps += N;
        agent_record_episodes(a);
        if (a->steps < a->c.learning_starts || a->rb->size < a->c.batch_size) continue;
        if (a->steps / (N * a->c.train_freq) == before / (N * a->c.train_freq)) continue;
        double l = dqn_update(a);
        st = agent_update_done(a, l);
        if (a->c.tau < 1) update_target(a, a->c.tau);
        else if (a->steps / a->c.target_update != before / a->c.target_update) update_target(a, 1.0);
    }
    free(acts), free(next), free(fin), free(rew), free(term), free(trunc);
    return st;
}
