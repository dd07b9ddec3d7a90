/* Case study: deep reinforcement learning -- policy gradient, actor-critic
 * and deep Q-learning on CartPole, a Gaussian policy on Pendulum, and a DQN
 * that learns Catch from pixels.
 *
 *   build/<variant>/examples/rl [--seeds 5] [--out out/rl] [--only cartpole|pendulum|catch]
 *
 * For every seed and algorithm it trains with periodic greedy evaluations
 * (every --every steps, 20 episodes) and stops when the evaluation reaches
 * the task's bar (CartPole 475, Pendulum -200, Catch 0.95 of the balls) or the
 * budget runs out; then it scores the agent on 100 greedy episodes (fresh
 * seeds) -- the number the table reports. It writes, per task, the learning
 * curves of the first seed (greedy return against environment steps) and a
 * film strip of one greedy episode of the trained agent.
 *
 * Budgets (environment steps): CartPole REINFORCE 300k, A2C 300k, PPO 200k,
 * DQN 150k; Pendulum PPO 300k; Catch DQN 20k. Hyper-parameters are
 * cx_rl_defaults' (include/cortex/agent.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

typedef struct {
    const char *task, *env;
    cx_rl_algo algo;
    int64_t budget;
    double bar;       /* the evaluation that stops training */
    double solved_at; /* the 100-episode score that counts as solved */
} job;

static const job jobs[] = {
    {"cartpole", "CartPole-v1", CX_ALGO_REINFORCE, 300000, 475, 475},
    {"cartpole", "CartPole-v1", CX_ALGO_A2C, 300000, 475, 475},
    {"cartpole", "CartPole-v1", CX_ALGO_PPO, 200000, 475, 475},
    {"cartpole", "CartPole-v1", CX_ALGO_DQN, 150000, 475, 475},
    {"pendulum", "Pendulum-v1", CX_ALGO_PPO, 300000, -200, -300},
    {"catch", "Catch-v0", CX_ALGO_DQN, 20000, 0.95, 0.9},
};
#define NJOBS ((int)(sizeof jobs / sizeof *jobs))

#define MAXPTS 512

typedef struct {
    double x[MAXPTS], y[MAXPTS];
    int n;
    int64_t steps;
    double seconds, score;
} run_out;

static void run_one(const job *j, int seed, int every, run_out *o, const char *agent_path) {
    cx_rl_config c = cx_rl_defaults(j->algo, j->env);
    c.seed = (uint64_t)seed;
    cx_agent *a = cx_agent_new(&c);
    if (!a) {
        fprintf(stderr, "rl: %s\n", cx_last_error());
        exit(1);
    }
    o->n = 1; /* the untrained agent at step 0 */
    o->x[0] = 0;
    o->y[0] = cx_agent_evaluate(a, 20, 1000000, true, NULL);
    while (cx_agent_progress(a).steps < j->budget) {
        if (cx_agent_train(a, every)) {
            fprintf(stderr, "rl: %s\n", cx_last_error());
            break;
        }
        double r = cx_agent_evaluate(a, 20, 1000000 + (uint64_t)cx_agent_progress(a).steps, true, NULL);
        if (o->n < MAXPTS) {
            o->x[o->n] = (double)cx_agent_progress(a).steps;
            o->y[o->n++] = r;
        }
        if (r >= j->bar) break;
    }
    o->steps = cx_agent_progress(a).steps;
    o->seconds = cx_agent_progress(a).seconds;
    o->score = cx_agent_evaluate(a, 100, 7000000, true, NULL);
    if (agent_path && cx_agent_save(a, agent_path)) fprintf(stderr, "rl: %s\n", cx_last_error());
    cx_agent_free(a);
}

/* A film strip of one greedy episode (at most 12 frames, evenly spaced). */
static void episode_strip(const char *agent_path, const char *png) {
    cx_agent *a;
    if (cx_agent_load(agent_path, &a)) {
        fprintf(stderr, "rl: %s\n", cx_last_error());
        return;
    }
    cx_env *e = cx_env_make(cx_agent_config(a)->env);
    float obs[64], box[4];
    int w, h, n = 0, cap = 0;
    uint8_t **frames = NULL;
    cx_env_seed(e, 42);
    cx_env_reset(e, obs);
    for (;;) {
        const uint8_t *rgb = cx_env_render(e, &w, &h);
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            frames = realloc(frames, sizeof *frames * (size_t)cap);
        }
        frames[n] = malloc((size_t)w * h * 3);
        memcpy(frames[n++], rgb, (size_t)w * h * 3);
        int act = 0;
        cx_agent_act(a, obs, 1, true, &act, box);
        cx_step_result r = cx_env_action_space(e)->kind == CX_SPACE_DISCRETE ? cx_env_step(e, act, obs)
                                                                             : cx_env_step_box(e, box, obs);
        if (r.terminated || r.truncated) break;
    }
    const int K = n < 12 ? n : 12;
    const uint8_t *pick[12];
    for (int k = 0; k < K; k++) pick[k] = frames[K > 1 ? (int)((long)k * (n - 1) / (K - 1)) : 0];
    if (cx_png_write_strip(png, pick, K, w, h, K > 6 ? 6 : K)) fprintf(stderr, "rl: %s\n", cx_last_error());
    else printf("  wrote %s (%d of %d frames of a greedy episode)\n", png, K, n);
    for (int i = 0; i < n; i++) free(frames[i]);
    free(frames);
    cx_env_free(e);
    cx_agent_free(a);
}

int main(int argc, char **argv) {
    int seeds = 5, every = 10000;
    const char *out = "out/rl", *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--every") && i + 1 < argc) every = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: rl [--seeds 5] [--every 10000] [--out out/rl] [--only cartpole|pendulum|catch]\n");
            return 2;
        }
    }
    if (seeds < 1 || seeds > 100 || every < 100) {
        fprintf(stderr, "rl: --seeds must be in 1..100 and --every >= 100\n");
        return 2;
    }
    cx_set_threads(1);
    mkdir("out", 0755);
    mkdir(out, 0755);
    const char *tasks[3] = {"cartpole", "pendulum", "catch"};
    for (int t = 0; t < 3; t++) {
        if (only && strcmp(only, tasks[t])) continue;
        cx_line_series series[4];
        run_out *firsts = calloc(4, sizeof *firsts);
        int ns = 0;
        printf("== %s: greedy return over 100 episodes after training (seeds 1..%d)\n", tasks[t], seeds);
        for (int j = 0; j < NJOBS; j++) {
            if (strcmp(jobs[j].task, tasks[t])) continue;
            int solved = 0;
            double secs = 0;
            printf("  %-10s", cx_rl_algo_name(jobs[j].algo));
            fflush(stdout);
            for (int s = 1; s <= seeds; s++) {
                run_out *o = s == 1 ? &firsts[ns] : malloc(sizeof *o);
                char agent[512];
                snprintf(agent, sizeof agent, "%s/%s_%s.safetensors", out, tasks[t], cx_rl_algo_name(jobs[j].algo));
                run_one(&jobs[j], s, every, o, s == 1 ? agent : NULL);
                solved += o->score >= jobs[j].solved_at;
                secs += o->seconds;
                printf(" %8.2f (%lldk)", o->score, (long long)(o->steps / 1000));
                fflush(stdout);
                if (s != 1) free(o);
            }
            printf("  | %d of %d seeds >= %g, %.1f s of training per seed\n", solved, seeds, jobs[j].solved_at,
                   secs / seeds);
            series[ns].name = cx_rl_algo_name(jobs[j].algo);
            series[ns].x = firsts[ns].x;
            series[ns].y = firsts[ns].y;
            series[ns].n = firsts[ns].n;
            ns++;
        }
        char png[512], title[128];
        cx_lines_opts o = cx_lines_defaults();
        snprintf(title, sizeof title, "%s: greedy return while training (seed 1)",
                 !strcmp(tasks[t], "cartpole") ? "CartPole-v1" : !strcmp(tasks[t], "pendulum") ? "Pendulum-v1" : "Catch-v0");
        o.title = title;
        o.ymin = !strcmp(tasks[t], "cartpole") ? 0 : !strcmp(tasks[t], "pendulum") ? -1600 : -1;
        o.ymax = !strcmp(tasks[t], "cartpole") ? 500 : !strcmp(tasks[t], "pendulum") ? 0 : 1;
        o.xlabel = "environment steps";
        o.ylabel = "return";
        snprintf(png, sizeof png, "%s/%s_curves.png", out, tasks[t]);
        if (cx_plot_lines(png, series, ns, &o)) fprintf(stderr, "rl: %s\n", cx_last_error());
        else printf("  wrote %s\n", png);
        /* an episode of the last algorithm's seed-1 agent (PPO on CartPole and Pendulum, DQN on Catch) */
        for (int j = NJOBS - 1; j >= 0; j--)
            if (!strcmp(jobs[j].task, tasks[t]) && (jobs[j].algo == CX_ALGO_PPO || !strcmp(tasks[t], "catch"))) {
                char agent[512];
                snprintf(agent, sizeof agent, "%s/%s_%s.safetensors", out, tasks[t], cx_rl_algo_name(jobs[j].algo));
                snprintf(png, sizeof png, "%s/%s_episode.png", out, tasks[t]);
                episode_strip(agent, png);
                break;
            }
        free(firsts);
    }
    return 0;
}
