/* Reinforcement-learning benchmark on CartPole-v1 (issue 11, "Speed"), the
 * Cortex side of tools/bench_torch_rl.py:
 *   bench_rl [threads] [--what env,train,solve] [--env-steps 10000000]
 *            [--steps reinforce=N,a2c=N,ppo=N,dqn=N,dqn_catch=N (0: skip)] [--solve-algos reinforce,a2c,ppo]
 *            [--solve-max 500000] [--seed 1] [--seeds 5]
 *  env:   raw environment steps per second with uniformly random actions
 *         (drawn per step), one cx_env (reset when an episode ends) and a
 *         cx_vec_env of 8 copies (same-step reset); every copy's step counts.
 *  train: for each algorithm with its cx_rl_defaults on CartPole-v1 (seed 1):
 *         cx_agent_train for a warm-up (past DQN's learning_starts), then
 *         the timed window of N env steps (dqn_catch: DQN on Catch-v0 from
 *         pixels with cx_rl_defaults(DQN, "Catch-v0")); env steps / second of the window
 *         (acting + environment + updates: the whole training loop), by
 *         the wall clock and per CPU-second of the process.
 *  solve: train in chunks to every multiple of 10000 steps, then a greedy
 *         evaluation of 20 episodes (seeds 1000000 + steps, as `cortex rl
 *         train --eval-every 10000 --eval-episodes 20`); solved when its mean
 *         return is >= 475. seconds = training time only (cx_agent_progress's
 *         seconds: the evaluations are excluded), steps = env steps then;
 *         one run per seed: seed, seed+1, ..., seed+seeds-1 (agents only;
 *         the env and train measurements use seed). Gives up at solve-max
 *         steps (solved=0).
 * Prints
 *   RL_ENV kind=single threads=1 steps_per_s=...
 *   RL_ENV kind=vec8 threads=1 steps_per_s=...
 *   RL_TRAIN algo=a2c threads=1 steps_per_s=... steps_per_cpu_s=... steps=... seconds=... updates=... mean_return=...
 *   RL_SOLVE algo=ppo threads=1 seed=1 solved=1 seconds=... steps=... eval_seconds=... eval_return=...
 */
#include <cortex.h>
#include <cortex/agent.h>
#include <cortex/env.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* dqn_catch: DQN from pixels on Catch-v0 (the CNN of src/rl/agent.c), the
 * pixel-DQN row of the issue; the others on CartPole-v1. */
#define NALGO 5
static const char *ALGOS[NALGO] = {"reinforce", "a2c", "ppo", "dqn", "dqn_catch"};

static int has_word(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, w, n)) return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

static void bench_env(int threads, int64_t steps, uint64_t seed) {
    /* one environment */
    cx_env *e = cx_env_make("CartPole-v1");
    if (!e) cx_fatal("bench_rl: %s", cx_last_error());
    cx_rng rng = cx_rng_new(seed);
    float obs[4];
    cx_env_seed(e, seed);
    cx_env_reset(e, obs);
    int64_t episodes = 0;
    double t0 = cx_now();
    for (int64_t s = 0; s < steps; s++) {
        cx_step_result r = cx_env_step(e, (int)cx_rng_below(&rng, 2), obs);
        if (r.terminated || r.truncated) {
            cx_env_reset(e, obs);
            episodes++;
        }
    }
    double el = cx_now() - t0;
    printf("RL_ENV kind=single threads=%d steps_per_s=%.0f steps=%lld episodes=%lld seconds=%.3f\n", threads,
           (double)steps / el, (long long)steps, (long long)episodes, el);
    cx_env_free(e);
    /* eight copies, stepped together */
    enum { N = 8 };
    cx_vec_env *v = cx_vec_env_make("CartPole-v1", N, seed);
    if (!v) cx_fatal("bench_rl: %s", cx_last_error());
    float vobs[N * 4], fin[N * 4], rew[N];
    uint8_t term[N], trunc[N];
    int acts[N];
    cx_vec_env_reset(v, vobs);
    episodes = 0;
    int64_t vsteps = steps / N;
    t0 = cx_now();
    for (int64_t s = 0; s < vsteps; s++) {
        for (int i = 0; i < N; i++) acts[i] = (int)cx_rng_below(&rng, 2);
        cx_vec_env_step(v, acts, NULL, vobs, rew, term, trunc, fin);
        for (int i = 0; i < N; i++) episodes += term[i] | trunc[i];
    }
    el = cx_now() - t0;
    printf("RL_ENV kind=vec8 threads=%d steps_per_s=%.0f steps=%lld episodes=%lld seconds=%.3f\n", threads,
           (double)(vsteps * N) / el, (long long)(vsteps * N), (long long)episodes, el);
    cx_vec_env_free(v);
}

static cx_agent *make_agent(int algo, uint64_t seed) {
    cx_rl_config c = algo == 4 ? cx_rl_defaults(CX_ALGO_DQN, "Catch-v0")
                               : cx_rl_defaults((cx_rl_algo)algo, "CartPole-v1");
    c.seed = seed;
    cx_agent *ag = cx_agent_new(&c);
    if (!ag) cx_fatal("bench_rl: %s", cx_last_error());
    return ag;
}

static void bench_train(int threads, int algo, int64_t steps, int64_t warmup, uint64_t seed) {
    cx_agent *ag = make_agent(algo, seed);
    if (cx_agent_train(ag, warmup)) cx_fatal("bench_rl: %s", cx_last_error());
    cx_rl_progress p0 = cx_agent_progress(ag);
    double t0 = cx_now();
    clock_t c0 = clock();
    if (cx_agent_train(ag, steps)) cx_fatal("bench_rl: %s", cx_last_error());
    double el = cx_now() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    cx_rl_progress p = cx_agent_progress(ag);
    int64_t n = p.steps - p0.steps;
    printf("RL_TRAIN algo=%s threads=%d steps_per_s=%.0f steps_per_cpu_s=%.0f steps=%lld seconds=%.3f updates=%lld "
           "warmup=%lld mean_return=%.1f\n",
           ALGOS[algo], threads, (double)n / el, (double)n / cpu, (long long)n, el,
           (long long)(p.updates - p0.updates), (long long)p0.steps, p.mean_return);
    fflush(stdout);
    cx_agent_free(ag);
}

static void bench_solve(int threads, int algo, int64_t max_steps, uint64_t seed) {
    const int every = 10000, episodes = 20;
    const double goal = 475;
    cx_agent *ag = make_agent(algo, seed);
    double eval_s = 0, last = 0;
    int solved = 0;
    int64_t next = every;
    while (cx_agent_progress(ag).steps < max_steps) {
        int64_t s = cx_agent_progress(ag).steps;
        if (s < next && cx_agent_train(ag, next - s)) cx_fatal("bench_rl: %s", cx_last_error());
        s = cx_agent_progress(ag).steps;
        double t0 = cx_now();
        last = cx_agent_evaluate(ag, episodes, 1000000 + (uint64_t)s, true, NULL);
        eval_s += cx_now() - t0;
        next = (s / every + 1) * every;
        if (last >= goal) {
            solved = 1;
            break;
        }
    }
    cx_rl_progress p = cx_agent_progress(ag);
    printf("RL_SOLVE algo=%s threads=%d seed=%llu solved=%d seconds=%.3f steps=%lld eval_seconds=%.2f eval_return=%.1f\n",
           ALGOS[algo], threads, (unsigned long long)seed, solved, p.seconds, (long long)p.steps, eval_s, last);
    fflush(stdout);
    cx_agent_free(ag);
}

int main(int argc, char **argv) {
    int threads = getenv("CX_THREADS") ? atoi(getenv("CX_THREADS")) : 1;
    const char *what = "env,train,solve", *solve_algos = "reinforce,a2c,ppo";
    int64_t env_steps = 10000000, solve_max = 500000, train_steps[NALGO] = {200000, 200000, 50000, 10000, 3000};
    uint64_t seed = 1;
    int seeds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--what") && i + 1 < argc) what = argv[++i];
        else if (!strcmp(argv[i], "--env-steps") && i + 1 < argc) env_steps = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--solve-max") && i + 1 < argc) solve_max = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--solve-algos") && i + 1 < argc) solve_algos = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", argv[++i]);
            for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
                char *eq = strchr(tok, '=');
                int k = -1;
                if (eq) {
                    *eq = 0;
                    for (int a = 0; a < NALGO; a++)
                        if (!strcmp(tok, ALGOS[a])) k = a;
                }
                if (k < 0 || atoll(eq + 1) < 0) {
                    fprintf(stderr, "bench_rl: --steps expects algo=N,... (algos reinforce, a2c, ppo, dqn, dqn_catch; N = 0 skips one)\n");
                    return 2;
                }
                train_steps[k] = atoll(eq + 1);
            }
        } else if (argv[i][0] != '-') threads = atoi(argv[i]);
        else {
            fprintf(stderr, "bench_rl: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (threads < 1) threads = 1;
    if (env_steps < 8 || solve_max < 1 || seeds < 1) {
        fprintf(stderr, "bench_rl: bad --env-steps / --solve-max / --seeds\n");
        return 2;
    }
    cx_set_threads(threads);
    if (has_word(what, "env")) bench_env(threads, env_steps, seed);
    if (has_word(what, "train"))
        for (int a = 0; a < NALGO; a++)
            if (train_steps[a] > 0) bench_train(threads, a, train_steps[a], 2000, seed);
    if (has_word(what, "solve"))
        for (int a = 0; a < 3; a++)
            if (has_word(solve_algos, ALGOS[a]))
                for (int k = 0; k < seeds; k++) bench_solve(threads, a, solve_max, seed + (uint64_t)k);
    return 0;
}
