/* Tabular reinforcement learning (include/cortex/tabular.h): value
 * iteration, policy iteration with exact evaluation, Q-learning, SARSA.
 * Equations cite Sutton & Barto, Reinforcement Learning (2nd ed., 2018). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>
#include <cortex/tabular.h>

#define TIE 1e-12

/* The model of an environment, gathered once: the transitions of (s, a)
 * are t[off[s*nA+a] .. off[s*nA+a+1]). */
typedef struct {
    int nS, nA;
    int *off;
    cx_transition *t;
} tab_model;

static cx_status check_discrete(const cx_env *env, const char *what) {
    if (!env) return cx_set_error(CX_ERR_INVALID, "%s: NULL environment", what);
    if (cx_env_observation_space(env)->kind != CX_SPACE_DISCRETE || cx_env_action_space(env)->kind != CX_SPACE_DISCRETE)
        return cx_set_error(CX_ERR_INVALID, "%s: %s does not have discrete observations and actions", what,
                            cx_env_name(env));
    return CX_OK;
}

static cx_status model_load(const cx_env *env, double gamma, const char *what, tab_model *m) {
    memset(m, 0, sizeof *m);
    cx_status st = check_discrete(env, what);
    if (st) return st;
    if (!(gamma >= 0 && gamma < 1)) return cx_set_error(CX_ERR_INVALID, "%s: gamma = %g is not in [0, 1)", what, gamma);
    m->nS = cx_env_observation_space(env)->n;
    m->nA = cx_env_action_space(env)->n;
    if (cx_env_model(env, 0, 0, NULL, 0) < 0)
        return cx_set_error(CX_ERR_INVALID, "%s: %s has no model (cx_env_model)", what, cx_env_name(env));
    int nsa = m->nS * m->nA;
    m->off = malloc(sizeof(int) * (size_t)(nsa + 1));
    if (!m->off) cx_fatal("%s: out of memory", what);
    m->off[0] = 0;
    for (int i = 0; i < nsa; i++) m->off[i + 1] = m->off[i] + cx_env_model(env, i / m->nA, i % m->nA, NULL, 0);
    m->t = malloc(sizeof(cx_transition) * (size_t)(m->off[nsa] > 0 ? m->off[nsa] : 1));
    if (!m->t) cx_fatal("%s: out of memory", what);
    for (int i = 0; i < nsa; i++) cx_env_model(env, i / m->nA, i % m->nA, m->t + m->off[i], m->off[i + 1] - m->off[i]);
    return CX_OK;
}

static void model_free(tab_model *m) {
    free(m->off);
    free(m->t);
}

/* One-step look-ahead: Q(s,a) = sum p [ r + gamma (1 - term) V(s') ]. */
static double backup(const tab_model *m, int s, int a, double gamma, const double *V) {
    double q = 0;
    for (int k = m->off[s * m->nA + a]; k < m->off[s * m->nA + a + 1]; k++) {
        const cx_transition *t = &m->t[k];
        q += t->prob * (t->reward + (t->terminated ? 0.0 : gamma * V[t->next_state]));
    }
    return q;
}

void cx_q_greedy(const double *Q, int nS, int nA, int *policy) {
    for (int s = 0; s < nS; s++) {
        const double *q = Q + (size_t)s * nA;
        double mx = q[0];
        for (int a = 1; a < nA; a++)
            if (q[a] > mx) mx = q[a];
        int best = 0;
        while (q[best] < mx - TIE) best++;
        policy[s] = best;
    }
}

/* Q from V, then V, Q and the greedy policy to the caller's arrays. */
static void finish(const tab_model *m, double gamma, const double *v, double *V, double *Q, int *policy) {
    double *q = malloc(sizeof(double) * (size_t)m->nS * m->nA);
    if (!q) cx_fatal("tabular: out of memory");
    for (int s = 0; s < m->nS; s++)
        for (int a = 0; a < m->nA; a++) q[s * m->nA + a] = backup(m, s, a, gamma, v);
    if (V) memcpy(V, v, sizeof(double) * m->nS);
    if (Q) memcpy(Q, q, sizeof(double) * (size_t)m->nS * m->nA);
    if (policy) cx_q_greedy(q, m->nS, m->nA, policy);
    free(q);
}

cx_status cx_value_iteration(const cx_env *env, double gamma, double tol, int max_iter, double *V, double *Q,
                             int *policy, int *iters) {
    tab_model m;
    cx_status st = model_load(env, gamma, "value iteration", &m);
    if (st) return st;
    if (!(tol > 0)) {
        model_free(&m);
        return cx_set_error(CX_ERR_INVALID, "value iteration: tol = %g must be positive", tol);
    }
    if (max_iter <= 0) max_iter = 100000;
    double *v = calloc((size_t)m.nS, sizeof(double)), *vn = malloc(sizeof(double) * m.nS);
    if (!v || !vn) cx_fatal("value iteration: out of memory");
    int it = 0;
    double delta = INFINITY;
    while (delta >= tol && it < max_iter) {
        /* V_{k+1}(s) = max_a sum p [ r + gamma (1 - term) V_k(s') ]   (S&B 4.10) */
        delta = 0;
        for (int s = 0; s < m.nS; s++) {
            double best = -INFINITY;
            for (int a = 0; a < m.nA; a++) {
                double q = backup(&m, s, a, gamma, v);
                if (q > best) best = q;
            }
            vn[s] = best;
            if (fabs(best - v[s]) > delta) delta = fabs(best - v[s]);
        }
        memcpy(v, vn, sizeof(double) * m.nS);
        it++;
    }
    if (delta >= tol) st = cx_set_error(CX_ERR_INVALID, "value iteration did not converge in %d sweeps (change %g)", it, delta);
    else finish(&m, gamma, v, V, Q, policy);
    if (iters) *iters = it;
    free(v);
    free(vn);
    model_free(&m);
    return st;
}

/* Solve A x = b (n x n, row-major, overwritten) by Gaussian elimination with
 * partial pivoting; false when A is singular. */
static bool solve_dense(double *A, double *b, int n) {
    for (int c = 0; c < n; c++) {
        int p = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[(size_t)r * n + c]) > fabs(A[(size_t)p * n + c])) p = r;
        if (fabs(A[(size_t)p * n + c]) < 1e-14) return false;
        if (p != c) {
            for (int k = 0; k < n; k++) {
                double t = A[(size_t)c * n + k];
                A[(size_t)c * n + k] = A[(size_t)p * n + k];
                A[(size_t)p * n + k] = t;
            }
            double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[(size_t)r * n + c] / A[(size_t)c * n + c];
            if (f == 0) continue;
            for (int k = c; k < n; k++) A[(size_t)r * n + k] -= f * A[(size_t)c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int k = r + 1; k < n; k++) s -= A[(size_t)r * n + k] * b[k];
        b[r] = s / A[(size_t)r * n + r];
    }
    return true;
}

/* (I - gamma P_pi) V = R_pi   (S&B 4.4 as a linear system). */
static cx_status evaluate(const tab_model *m, const int *pi, double gamma, double *V) {
    int n = m->nS;
    if (n > 4096) return cx_set_error(CX_ERR_INVALID, "policy evaluation: %d states (the dense solver takes <= 4096)", n);
    for (int s = 0; s < n; s++)
        if (pi[s] < 0 || pi[s] >= m->nA)
            return cx_set_error(CX_ERR_INVALID, "policy evaluation: policy[%d] = %d is not an action in [0, %d)", s,
                                pi[s], m->nA);
    double *A = calloc((size_t)n * n, sizeof(double));
    if (!A) cx_fatal("policy evaluation: out of memory");
    for (int s = 0; s < n; s++) {
        A[(size_t)s * n + s] = 1.0;
        V[s] = 0;
        int i = s * m->nA + pi[s];
        for (int k = m->off[i]; k < m->off[i + 1]; k++) {
            const cx_transition *t = &m->t[k];
            V[s] += t->prob * t->reward;
            if (!t->terminated) A[(size_t)s * n + t->next_state] -= gamma * t->prob;
        }
    }
    bool ok = solve_dense(A, V, n);
    free(A);
    return ok ? CX_OK : cx_set_error(CX_ERR_INVALID, "policy evaluation: I - gamma P_pi is singular");
}

cx_status cx_policy_evaluate(const cx_env *env, const int *policy, double gamma, double *V) {
    tab_model m;
    cx_status st = model_load(env, gamma, "policy evaluation", &m);
    if (!st) st = evaluate(&m, policy, gamma, V);
    model_free(&m);
    return st;
}

cx_status cx_policy_iteration(const cx_env *env, double gamma, int max_iter, double *V, double *Q, int *policy,
                              int *iters) {
    tab_model m;
    cx_status st = model_load(env, gamma, "policy iteration", &m);
    if (st) return st;
    if (max_iter <= 0) max_iter = 1000;
    int *pi = calloc((size_t)m.nS, sizeof(int));
    double *v = malloc(sizeof(double) * m.nS);
    if (!pi || !v) cx_fatal("policy iteration: out of memory");
    int it = 0;
    bool stable = false;
    while (!st && !stable && it < max_iter) {
        st = evaluate(&m, pi, gamma, v);
        if (st) break;
        /* improvement: pi(s) <- argmax_a Q_pi(s,a)   (S&B 4.9) */
        stable = true;
        for (int s = 0; s < m.nS; s++) {
            double cur = backup(&m, s, pi[s], gamma, v);
            for (int a = 0; a < m.nA; a++) {
                double q = backup(&m, s, a, gamma, v);
                if (q > cur + TIE) {
                    cur = q;
                    pi[s] = a;
                    stable = false;
                }
            }
        }
        if (!stable) it++;
    }
    if (!st && !stable) st = cx_set_error(CX_ERR_INVALID, "policy iteration did not converge in %d improvements", it);
    if (!st) {
        finish(&m, gamma, v, V, Q, NULL);
        if (policy) memcpy(policy, pi, sizeof(int) * m.nS);
    }
    if (iters) *iters = it;
    free(pi);
    free(v);
    model_free(&m);
    return st;
}

/* ---- temporal-difference control --------------------------------------- */

cx_td_opts cx_td_defaults(void) {
    cx_td_opts o = {10000, 0.99, 0.1, -1.0, 1.0, 0.01, 0.5, 0};
    return o;
}

static cx_status check_td(const cx_env *env, const cx_td_opts *o, const char *what) {
    cx_status st = check_discrete(env, what);
    if (st) return st;
    if (!o) return cx_set_error(CX_ERR_INVALID, "%s: NULL options (use cx_td_defaults())", what);
    if (o->episodes < 1) return cx_set_error(CX_ERR_INVALID, "%s: episodes = %d must be >= 1", what, o->episodes);
    if (!(o->gamma >= 0 && o->gamma <= 1)) return cx_set_error(CX_ERR_INVALID, "%s: gamma = %g is not in [0, 1]", what, o->gamma);
    if (!(o->alpha > 0 && o->alpha <= 1)) return cx_set_error(CX_ERR_INVALID, "%s: alpha = %g is not in (0, 1]", what, o->alpha);
    if (!(o->alpha_end <= 1)) return cx_set_error(CX_ERR_INVALID, "%s: alpha_end = %g is above 1", what, o->alpha_end);
    if (!(o->eps_start >= 0 && o->eps_start <= 1 && o->eps_end >= 0 && o->eps_end <= 1))
        return cx_set_error(CX_ERR_INVALID, "%s: epsilon %g -> %g is not in [0, 1]", what, o->eps_start, o->eps_end);
    if (!(o->decay >= 0 && o->decay <= 1)) return cx_set_error(CX_ERR_INVALID, "%s: decay = %g is not in [0, 1]", what, o->decay);
    return CX_OK;
}

/* Epsilon-greedy: random with probability eps, else argmax with random ties. */
static int eps_greedy(const double *q, int nA, double eps, cx_rng *rng) {
    if ((double)cx_rng_uniform(rng) < eps) return (int)cx_rng_below(rng, (uint32_t)nA);
    double mx = q[0];
    for (int a = 1; a < nA; a++)
        if (q[a] > mx) mx = q[a];
    int ties = 0, pick = 0;
    for (int a = 0; a < nA; a++)
        if (q[a] >= mx - TIE && cx_rng_below(rng, (uint32_t)++ties) == 0) pick = a; /* reservoir sampling */
    return pick;
}

/* The linear schedule: start -> end over the first `decay` of the episodes. */
static double schedule(double start, double end, double decay, int ep, int episodes) {
    double frac = decay > 0 ? ep / (decay * episodes) : 1.0;
    return frac >= 1 ? end : start + (end - start) * frac;
}

static cx_status td_control(cx_env *env, const cx_td_opts *o, double *Q, bool sarsa) {
    const char *what = sarsa ? "SARSA" : "Q-learning";
    cx_status st = check_td(env, o, what);
    if (st) return st;
    int nS = cx_env_observation_space(env)->n, nA = cx_env_action_space(env)->n;
    memset(Q, 0, sizeof(double) * (size_t)nS * nA);
    cx_rng rng = cx_rng_new(o->seed ^ 0x9E3779B97F4A7C15ull);
    cx_env_seed(env, o->seed);
    double alpha_end = o->alpha_end < 0 ? o->alpha : o->alpha_end;
    for (int ep = 0; ep < o->episodes; ep++) {
        double eps = schedule(o->eps_start, o->eps_end, o->decay, ep, o->episodes);
        double alpha = schedule(o->alpha, alpha_end, o->decay, ep, o->episodes);
        float obs;
        cx_env_reset(env, &obs);
        int s = (int)obs, a = eps_greedy(Q + (size_t)s * nA, nA, eps, &rng);
        for (;;) {
            cx_step_result r = cx_env_step(env, a, &obs);
            int s2 = (int)obs;
            const double *q2 = Q + (size_t)s2 * nA;
            int a2 = sarsa ? eps_greedy(q2, nA, eps, &rng) : 0;
            double next;
            if (sarsa) {
                next = q2[a2]; /* S&B 6.7: the action taken next, chosen first */
            } else {
                next = q2[0]; /* S&B 6.8: the greedy action's value */
                for (int b = 1; b < nA; b++)
                    if (q2[b] > next) next = q2[b];
            }
            double target = r.reward + (r.terminated ? 0.0 : o->gamma * next);
            double *qsa = Q + (size_t)s * nA + a;
            *qsa += alpha * (target - *qsa);
            if (r.terminated || r.truncated) break;
            if (!sarsa) a2 = eps_greedy(q2, nA, eps, &rng); /* behaviour after the update */
            s = s2;
            a = a2;
        }
    }
    return CX_OK;
}

cx_status cx_q_learning(cx_env *env, const cx_td_opts *opts, double *Q) { return td_control(env, opts, Q, false); }
cx_status cx_sarsa(cx_env *env, const cx_td_opts *opts, double *Q) { return td_control(env, opts, Q, true); }

double cx_policy_mean_return(cx_env *env, const int *policy, int episodes, uint64_t seed) {
    if (check_discrete(env, "policy mean return")) return NAN;
    if (episodes < 1) {
        cx_set_error(CX_ERR_INVALID, "policy mean return: episodes = %d must be >= 1", episodes);
        return NAN;
    }
    int nA = cx_env_action_space(env)->n, nS = cx_env_observation_space(env)->n;
    for (int s = 0; s < nS; s++)
        if (policy[s] < 0 || policy[s] >= nA) {
            cx_set_error(CX_ERR_INVALID, "policy mean return: policy[%d] = %d is not an action in [0, %d)", s,
                         policy[s], nA);
            return NAN;
        }
    cx_env_seed(env, seed);
    double total = 0;
    for (int ep = 0; ep < episodes; ep++) {
        float obs;
        cx_env_reset(env, &obs);
        for (;;) {
            cx_step_result r = cx_env_step(env, policy[(int)obs], &obs);
            total += r.reward;
            if (r.terminated || r.truncated) break;
        }
    }
    return total / episodes;
}
