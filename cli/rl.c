/* cortex rl -- reinforcement learning: train an agent on an environment,
 * play a trained one, list the environments. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Apply "key=value key=value ..." to a configuration. */
static bool apply_sets(const char *cmd, cx_rl_config *c, const char *sets) {
    if (!sets) return true;
    char *s = strdup(sets), *save = NULL;
    if (!s) return false;
    bool ok = true;
    for (char *it = strtok_r(s, " \t\n", &save); it && ok; it = strtok_r(NULL, " \t\n", &save)) {
        char *eq = strchr(it, '=');
        if (!eq) {
            fprintf(stderr, "cortex %s: --set '%s' is not key=value\n", cmd, it);
            ok = false;
            break;
        }
        *eq = 0;
        if (cx_rl_config_set(c, it, eq + 1)) {
            fprintf(stderr, "cortex %s: --set: %s\n", cmd, cx_last_error());
            ok = false;
        }
    }
    free(s);
    return ok;
}

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static void text_add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(text *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
        char *nb = realloc(t->buf, nc);
        if (!nb) return;
        t->buf = nb;
        t->cap = nc;
    }
}

static int rl_train(int argc, char **argv) {
    const char *cmd = "rl train";
    cli_flag f[] = {
        {"env", "environment (cortex rl envs lists them; settings after a colon)", false, "CartPole-v1"},
        {"algo", "reinforce, a2c, ppo or dqn", false, "a2c"},
        {"steps", "environment steps to train for (the budget)", false, "200000"},
        {"seed", "random seed (weights, environments, actions)", false, "1"},
        {"set", "hyper-parameters as 'key=value key=value' (see --help)", false, NULL},
        {"eval-every", "greedy evaluation every N steps (0: never)", false, "10000"},
        {"eval-episodes", "episodes per periodic evaluation", false, "20"},
        {"solve", "stop when the periodic greedy evaluation reaches this mean return", false, NULL},
        {"final-episodes", "greedy episodes of the final evaluation", false, "100"},
        {"log-every", "progress line every N steps", false, "10000"},
        {"out", "save the trained agent here (safetensors)", false, NULL},
        {"checkpoint", "checkpoint file, written every --checkpoint-every steps", false, NULL},
        {"checkpoint-every", "steps between checkpoints", false, "50000"},
        {"resume", "continue training from this checkpoint (its configuration is used)", false, NULL},
        {"metrics", "write the learning curve to this CSV", false, NULL},
        {"threads", "OpenMP and BLAS threads (0: all cores)", false, "1"},
        {"quiet", "no progress lines", true, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f);
    bool help;
    int npos;
    if (cli_parse(cmd, argc, argv, f, nf, NULL, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "[--env cartpole] [--algo a2c] [--steps N] [--set 'key=value ...'] [--out agent.safetensors]",
                  "Train a reinforcement-learning agent. Progress lines give the steps, episodes, mean\n"
                  "return of the last 100 training episodes, the last greedy evaluation and steps/s;\n"
                  "the end prints the mean greedy return over --final-episodes episodes.\n"
                  "--set keys: lr gamma hidden (e.g. 64,64) act (tanh, relu) max_grad_norm norm_adv\n"
                  "  n_envs n_steps gae_lambda ent_coef vf_coef n_epochs minibatch clip log_std_init\n"
                  "  buffer_size batch_size learning_starts train_freq target_update tau eps_start\n"
                  "  eps_end eps_decay double_dqn prioritized per_alpha per_beta0 per_beta_steps seed",
                  f, nf);
        return 0;
    }
    int64_t budget;
    int seed, eval_every, eval_eps, final_eps, log_every, ck_every, threads;
    {
        double b;
        if (!cli_double(cmd, f, nf, "steps", 1, 1e12, &b)) return 2;
        budget = (int64_t)b;
    }
    if (!cli_int(cmd, f, nf, "seed", 0, 2147483647, &seed) || !cli_int(cmd, f, nf, "eval-every", 0, 1 << 30, &eval_every) ||
        !cli_int(cmd, f, nf, "eval-episodes", 1, 100000, &eval_eps) ||
        !cli_int(cmd, f, nf, "final-episodes", 0, 100000, &final_eps) ||
        !cli_int(cmd, f, nf, "log-every", 1, 1 << 30, &log_every) ||
        !cli_int(cmd, f, nf, "checkpoint-every", 1, 1 << 30, &ck_every) || !cli_int(cmd, f, nf, "threads", 0, 1024, &threads))
        return 2;
    double solve = NAN;
    if (cli_get(f, nf, "solve") && !cli_double(cmd, f, nf, "solve", -1e12, 1e12, &solve)) return 2;
    const char *out = cli_get(f, nf, "out"), *ck = cli_get(f, nf, "checkpoint"), *resume = cli_get(f, nf, "resume");
    const char *metrics = cli_get(f, nf, "metrics");
    if (out && !cli_check_writable(cmd, "--out", out)) return 2;
    if (ck && !cli_check_writable(cmd, "--checkpoint", ck)) return 2;
    if (metrics && !cli_check_writable(cmd, "--metrics", metrics)) return 2;
    cx_set_threads(threads);

    cx_agent *ag = NULL;
    if (resume) {
        if (cx_agent_load(resume, &ag)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            return 1;
        }
        printf("resumed %s at step %lld\n", resume, (long long)cx_agent_progress(ag).steps);
    } else {
        cx_rl_algo algo;
        if (!cx_rl_algo_parse(cli_get(f, nf, "algo"), &algo)) {
            fprintf(stderr, "cortex %s: --algo %s: expected reinforce, a2c, ppo or dqn\n", cmd, cli_get(f, nf, "algo"));
            return 2;
        }
        cx_rl_config c = cx_rl_defaults(algo, cli_get(f, nf, "env"));
        c.seed = (uint64_t)seed;
        if (!apply_sets(cmd, &c, cli_get(f, nf, "set"))) return 2;
        ag = cx_agent_new(&c);
        if (!ag) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            return 2;
        }
    }
    const cx_rl_config *c = cx_agent_config(ag);
    char cfg[4096];
    cx_rl_config_write(c, cfg, sizeof cfg);
    if (!cli_get(f, nf, "quiet")) {
        printf("%s on %s, seed %llu, budget %lld steps\n", cx_rl_algo_name(c->algo), c->env,
               (unsigned long long)c->seed, (long long)budget);
        fflush(stdout);
    }
    text csv = {0};
    text_add(&csv, "steps,episodes,updates,mean_return,eval_return,loss,seconds\n");
    int rc = 0;
    double last_eval = NAN;
    int64_t start = cx_agent_progress(ag).steps, next_ck = start + ck_every;
    int64_t chunk = log_every;
    if (eval_every > 0 && eval_every < chunk) chunk = eval_every;
    int64_t next_eval = eval_every > 0 ? (start / eval_every + 1) * (int64_t)eval_every : INT64_MAX;
    int64_t next_log = (start / log_every + 1) * (int64_t)log_every;
    double t_last = cx_agent_progress(ag).seconds;
    int64_t s_last = start;
    bool solved = false;
    while (cx_agent_progress(ag).steps < budget) {
        int64_t s = cx_agent_progress(ag).steps;
        int64_t want = chunk;
        if (budget - s < want) want = budget - s;
        if (cx_agent_train(ag, want)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
            break;
        }
        cx_rl_progress p = cx_agent_progress(ag);
        bool evald = false;
        if (p.steps >= next_eval) {
            last_eval = cx_agent_evaluate(ag, eval_eps, 1000000 + (uint64_t)p.steps, true, NULL);
            next_eval = (p.steps / eval_every + 1) * (int64_t)eval_every;
            evald = true;
        }
        if (p.steps >= next_log || evald) {
            text_add(&csv, "%lld,%lld,%lld,%.4f,%.4f,%.6g,%.3f\n", (long long)p.steps, (long long)p.episodes,
                     (long long)p.updates, p.mean_return, evald ? last_eval : NAN, p.last_loss, p.seconds);
            if (metrics && cx_write_file_atomic(metrics, csv.buf, csv.len))
                fprintf(stderr, "cortex %s: warning: %s\n", cmd, cx_last_error());
        }
        if (p.steps >= next_log && !cli_get(f, nf, "quiet")) {
            double sps = (p.steps - s_last) / fmax(p.seconds - t_last, 1e-9);
            printf("steps %8lld  episodes %6lld  mean100 %8.2f  greedy %8.2f  %7.0f steps/s  loss %.4g\n",
                   (long long)p.steps, (long long)p.episodes, p.mean_return, last_eval, sps, p.last_loss);
            fflush(stdout);
            next_log = (p.steps / log_every + 1) * (int64_t)log_every;
            t_last = p.seconds;
            s_last = p.steps;
        }
        if (ck && p.steps >= next_ck) {
            if (cx_agent_save(ag, ck)) fprintf(stderr, "cortex %s: checkpoint: %s\n", cmd, cx_last_error());
            next_ck = p.steps + ck_every;
        }
        if (evald && !isnan(solve) && last_eval >= solve) {
            printf("solved: greedy mean return %.2f >= %g over %d episodes at step %lld (%.1f s)\n", last_eval, solve,
                   eval_eps, (long long)p.steps, p.seconds);
            solved = true;
            break;
        }
    }
    cx_rl_progress p = cx_agent_progress(ag);
    if (rc == 0 && final_eps > 0) {
        double *r = malloc(sizeof(double) * (size_t)final_eps);
        double m = cx_agent_evaluate(ag, final_eps, 7000000, true, r), lo = INFINITY;
        for (int i = 0; i < final_eps; i++) lo = fmin(lo, r[i]);
        printf("final: %lld steps, %lld episodes, %.1f s of training; greedy return over %d episodes: mean %.2f, "
               "min %.2f%s\n",
               (long long)p.steps, (long long)p.episodes, p.seconds, final_eps, m, lo, solved ? " (stopped: solved)" : "");
        free(r);
    }
    if (out && cx_agent_save(ag, out)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        rc = 1;
    } else if (out) {
        printf("saved %s\n", out);
    }
    if (ck && rc == 0 && cx_agent_save(ag, ck)) fprintf(stderr, "cortex %s: checkpoint: %s\n", cmd, cx_last_error());
    free(csv.buf);
    cx_agent_free(ag);
    return rc;
}

/* Append a copy of an RGB frame to a growing list (for --strip). */
static void keep_frame(uint8_t ***frames, int *n, const uint8_t *rgb, int w, int h) {
    uint8_t **grown = realloc(*frames, sizeof **frames * (size_t)(*n + 1));
    uint8_t *copy = malloc((size_t)w * h * 3);
    if (!grown || !copy) cx_fatal("rl play: out of memory");
    *frames = grown;
    memcpy(copy, rgb, (size_t)w * h * 3);
    grown[(*n)++] = copy;
}

static int rl_play(int argc, char **argv) {
    const char *cmd = "rl play";
    cli_flag f[] = {
        {"episodes", "episodes to play", false, "10"},
        {"seed", "seed of the first episode (then seed+1, ...)", false, "0"},
        {"sample", "sample actions from the policy instead of the greedy ones", true, NULL},
        {"render", "draw the first episode in the terminal", true, NULL},
        {"gif", "record the first episode as an animated GIF", false, NULL},
        {"strip", "draw up to 12 evenly spaced frames of the first episode as one PNG", false, NULL},
        {"fps", "GIF frames per second", false, "25"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    bool help;
    int npos;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "AGENT.safetensors [--episodes 10] [--seed 0] [--render] [--gif E.gif] [--strip E.png]",
                  "Play a trained agent (the file of 'cortex rl train --out') and print each episode's\n"
                  "return and length, then the mean. --gif and --strip record the first episode.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one AGENT.safetensors file\n", cmd);
        return 2;
    }
    int episodes, seed, fps;
    if (!cli_int(cmd, f, nf, "episodes", 1, 1000000, &episodes) || !cli_int(cmd, f, nf, "seed", 0, 2147483647, &seed) ||
        !cli_int(cmd, f, nf, "fps", 1, 100, &fps))
        return 2;
    const char *gif_path = cli_get(f, nf, "gif"), *strip_path = cli_get(f, nf, "strip");
    if (gif_path && !cli_check_writable(cmd, "--gif", gif_path)) return 2;
    if (strip_path && !cli_check_writable(cmd, "--strip", strip_path)) return 2;
    cx_agent *ag;
    if (cx_agent_load(pos[0], &ag)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return 1;
    }
    const cx_rl_config *c = cx_agent_config(ag);
    bool greedy = !cli_get(f, nf, "sample"), render = cli_get(f, nf, "render") != NULL;
    cx_env *e = cx_env_make(c->env);
    const int D = cx_env_obs_size(e), A = cx_env_action_space(e)->n;
    bool discrete = cx_env_action_space(e)->kind == CX_SPACE_DISCRETE;
    float *obs = malloc(sizeof(float) * D), *box = malloc(sizeof(float) * A);
    double total = 0;
    int rc = 0;
    cx_gif *gif = NULL;
    uint8_t **frames = NULL; /* the first episode's frames, for --strip */
    int nframes = 0, fw = 0, fh = 0;
    printf("%s agent on %s, %s actions\n", cx_rl_algo_name(c->algo), c->env, greedy ? "greedy" : "sampled");
    for (int ep = 0; ep < episodes; ep++) {
        cx_env_seed(e, (uint64_t)seed + ep);
        cx_env_reset(e, obs);
        double ret = 0;
        int len = 0;
        for (;;) {
            if (render && ep == 0) {
                printf("\x1b[H\x1b[2J");
                cx_env_render_ansi(e, stdout, 60);
            }
            if (ep == 0 && (gif_path || strip_path)) {
                const uint8_t *rgb = cx_env_render(e, &fw, &fh);
                if (gif_path && !gif && cx_gif_open(&gif, gif_path, fw, fh, (100 + fps / 2) / fps)) {
                    fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
                    rc = 1;
                    gif_path = NULL;
                }
                if (gif) cx_gif_add(gif, rgb);
                if (strip_path) keep_frame(&frames, &nframes, rgb, fw, fh);
            }
            int act = 0;
            cx_agent_act(ag, obs, 1, greedy, &act, box);
            cx_step_result r = discrete ? cx_env_step(e, act, obs) : cx_env_step_box(e, box, obs);
            ret += r.reward;
            len++;
            if (r.terminated || r.truncated) break;
        }
        if (ep == 0 && (gif_path || strip_path)) { /* the final state too */
            const uint8_t *rgb = cx_env_render(e, &fw, &fh);
            if (gif) cx_gif_add(gif, rgb);
            if (strip_path) keep_frame(&frames, &nframes, rgb, fw, fh);
        }
        printf("episode %d: return %.2f, %d steps\n", ep + 1, ret, len);
        total += ret;
    }
    if (gif) {
        int n = cx_gif_frames(gif);
        if (cx_gif_close(gif)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
        } else {
            printf("wrote %s (%d frames, %dx%d)\n", gif_path, n, fw, fh);
        }
    }
    if (strip_path && nframes > 0) {
        const int K = nframes < 12 ? nframes : 12;
        const uint8_t *pick[12];
        for (int k = 0; k < K; k++) pick[k] = frames[K > 1 ? (int)((long)k * (nframes - 1) / (K - 1)) : 0];
        if (cx_png_write_strip(strip_path, pick, K, fw, fh, K > 6 ? 6 : K)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
        } else {
            printf("wrote %s (%d of the first episode's %d frames)\n", strip_path, K, nframes);
        }
    }
    for (int i = 0; i < nframes; i++) free(frames[i]);
    free(frames);
    printf("mean return over %d episodes: %.2f\n", episodes, total / episodes);
    free(obs);
    free(box);
    cx_env_free(e);
    cx_agent_free(ag);
    return rc;
}

int cmd_rl(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        printf("usage: cortex rl train|play|envs [options]\n\n"
               "  train   train an agent (REINFORCE, A2C, PPO, DQN) on an environment\n"
               "  play    play a trained agent\n"
               "  envs    list the environments\n\n"
               "'cortex rl train --help' and 'cortex rl play --help' describe the options.\n");
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "train")) return rl_train(argc - 1, argv + 1);
    if (!strcmp(argv[0], "play")) return rl_play(argc - 1, argv + 1);
    if (!strcmp(argv[0], "envs")) {
        cx_env_list(stdout);
        return 0;
    }
    fprintf(stderr, "cortex rl: unknown subcommand '%s' (train, play or envs)\n", argv[0]);
    return 2;
}
