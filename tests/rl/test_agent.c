/* The agents: short fixed-seed runs on CartPole whose greedy return a broken
 * algorithm does not reach (a random policy scores about 22), exact resume
 * from checkpoints (the continued run equals the uninterrupted one bit for
 * bit), determinism, configuration parsing and errors. */
#include <stdlib.h>
#include <unistd.h>
#include "test.h"

static cx_agent *make(cx_rl_algo algo, const char *env, const char *sets) {
    cx_rl_config c = cx_rl_defaults(algo, env);
    c.seed = 1;
    if (sets) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", sets);
        for (char *save = NULL, *it = strtok_r(buf, " ", &save); it; it = strtok_r(NULL, " ", &save)) {
            char *eq = strchr(it, '=');
            *eq = 0;
            if (cx_rl_config_set(&c, it, eq + 1)) fprintf(stderr, "config: %s\n", cx_last_error());
        }
    }
    cx_agent *a = cx_agent_new(&c);
    if (!a) fprintf(stderr, "agent: %s\n", cx_last_error());
    return a;
}

/* Train until the greedy return over 10 episodes reaches `want` or the
 * budget runs out; returns the last evaluation. */
static double train_until(cx_agent *a, int64_t budget, int64_t every, double want) {
    double r = 0;
    while (cx_agent_progress(a).steps < budget) {
        CHECK(cx_agent_train(a, every) == CX_OK);
        r = cx_agent_evaluate(a, 10, 999, true, NULL);
        if (r >= want) break;
    }
    return r;
}

static void ppo_learns_cartpole(void) {
    cx_agent *a = make(CX_ALGO_PPO, "cartpole", NULL);
    double r = train_until(a, 40000, 5000, 450);
    CHECK_MSG(r >= 450, "PPO greedy return %.1f after %lld steps", r, (long long)cx_agent_progress(a).steps);
    cx_agent_free(a);
}

static void a2c_learns_cartpole(void) {
    cx_agent *a = make(CX_ALGO_A2C, "cartpole", NULL);
    double r = train_until(a, 100000, 10000, 450);
    CHECK_MSG(r >= 450, "A2C greedy return %.1f after %lld steps", r, (long long)cx_agent_progress(a).steps);
    CHECK(cx_agent_progress(a).mean_return > 100);
    cx_agent_free(a);
}

static void reinforce_learns_cartpole(void) {
    cx_agent *a = make(CX_ALGO_REINFORCE, "cartpole", NULL);
    double r = train_until(a, 120000, 10000, 400);
    CHECK_MSG(r >= 400, "REINFORCE greedy return %.1f after %lld steps", r, (long long)cx_agent_progress(a).steps);
    cx_agent_free(a);
}

static void dqn_learns_cartpole(void) {
    cx_agent *a = make(CX_ALGO_DQN, "cartpole", NULL);
    /* DQN's greedy return swings between 100 and 500 over its first 40k
     * steps, and where it first passes 200 moves with the builds' rounding
     * (the -O1 sanitizer build: at 27.5k; -O3: at 5k): checked every 2.5k */
    double r = train_until(a, 40000, 2500, 200);
    CHECK_MSG(r >= 200, "DQN greedy return %.1f after %lld steps", r, (long long)cx_agent_progress(a).steps);
    cx_agent_free(a);
}

/* Gaussian policy (learned log std) on a continuous action space: a
 * random policy scores about -1200 on Pendulum, a swing-up better than -400. */
static void ppo_gaussian_swings_pendulum_up(void) {
    cx_agent *a = make(CX_ALGO_PPO, "pendulum", NULL);
    const cx_rl_config *c = cx_agent_config(a);
    CHECK(c->gamma == 0.9 && c->n_steps == 1024);
    CHECK(cx_agent_network(a, "policy") != NULL);
    double r = -2000;
    while (cx_agent_progress(a).steps < 90000 && r < -300) {
        CHECK(cx_agent_train(a, 12288) == CX_OK);
        r = cx_agent_evaluate(a, 10, 999, true, NULL);
    }
    CHECK_MSG(r > -400, "PPO on Pendulum: greedy return %.1f after %lld steps", r, (long long)cx_agent_progress(a).steps);
    /* actions come out of the Gaussian, clipped by the environment to [-2, 2] */
    float obs[3] = {1, 0, 0}, box[1];
    cx_agent_act(a, obs, 1, false, NULL, box);
    CHECK(isfinite(box[0]));
    cx_agent_free(a);
}

/* Parameters of an agent's checkpoint file as one vector of floats. */
static void save_tmp(cx_agent *a, char *path) {
    snprintf(path, 64, "/tmp/cx_agent_test_%d_XXXXXX", (int)getpid());
    int fd = mkstemp(path);
    close(fd);
    CHECK(cx_agent_save(a, path) == CX_OK);
}

static int same_files(const char *p, const char *q) {
    void *a, *b;
    size_t na, nb;
    if (cx_read_file(p, &a, &na, 1 << 28) || cx_read_file(q, &b, &nb, 1 << 28)) return 0;
    int same = na == nb && !memcmp(a, b, na);
    free(a);
    free(b);
    return same;
}

static void resume_is_exact(cx_rl_algo algo, const char *sets, int64_t first, int64_t second) {
    cx_agent *a = make(algo, "cartpole", sets);
    CHECK(cx_agent_train(a, first) == CX_OK);
    char ck[64], full[64], resumed[64];
    save_tmp(a, ck);
    CHECK(cx_agent_train(a, second) == CX_OK);
    save_tmp(a, full);
    cx_agent *b = NULL;
    CHECK(cx_agent_load(ck, &b) == CX_OK);
    if (b) {
        CHECK(cx_agent_progress(b).steps == first || cx_agent_progress(b).steps > first);
        CHECK(cx_agent_train(b, second) == CX_OK);
        save_tmp(b, resumed);
        /* seconds of wall time differ: compare everything through the
         * evaluation and the counters, and the files minus the clock */
        CHECK(cx_agent_progress(a).steps == cx_agent_progress(b).steps);
        CHECK(cx_agent_progress(a).updates == cx_agent_progress(b).updates);
        CHECK(cx_agent_progress(a).last_loss == cx_agent_progress(b).last_loss);
        double ra[5], rb[5];
        cx_agent_evaluate(a, 5, 3, false, ra);
        cx_agent_evaluate(b, 5, 3, false, rb);
        CHECK(!memcmp(ra, rb, sizeof ra));
        /* the parameters, bit for bit */
        cx_st_file *fa, *fb;
        CHECK(cx_st_load(full, &fa) == CX_OK && cx_st_load(resumed, &fb) == CX_OK);
        int compared = 0;
        for (int i = 0; i < fa->n; i++) {
            cx_tensor *ta = fa->entries[i].tensor, *tb = cx_st_get(fb, fa->entries[i].name);
            CHECK(tb != NULL);
            if (!tb || !strcmp(fa->entries[i].name, "agent.state")) continue;
            CHECK_MSG(ta->numel == tb->numel && !memcmp(ta->data, tb->data, ta->numel * cx_dtype_size(ta->dtype)),
                      "%s differs after resume", fa->entries[i].name);
            compared++;
        }
        CHECK(compared >= 4);
        cx_st_free(fa);
        cx_st_free(fb);
        unlink(resumed);
        cx_agent_free(b);
    }
    (void)same_files;
    unlink(ck);
    unlink(full);
    cx_agent_free(a);
}

static void resume_a2c(void) { resume_is_exact(CX_ALGO_A2C, NULL, 3000, 3000); }
static void resume_ppo(void) { resume_is_exact(CX_ALGO_PPO, NULL, 2048, 2048); }
static void resume_reinforce(void) { resume_is_exact(CX_ALGO_REINFORCE, NULL, 2000, 2000); }
static void resume_dqn(void) { resume_is_exact(CX_ALGO_DQN, "learning_starts=300 buffer_size=2000", 1500, 1500); }
static void resume_dqn_prioritized(void) {
    resume_is_exact(CX_ALGO_DQN, "learning_starts=300 buffer_size=2000 prioritized=1 tau=0.01", 1500, 1500);
}

static void same_seed_same_run(void) {
    cx_agent *a = make(CX_ALGO_A2C, "cartpole", NULL), *b = make(CX_ALGO_A2C, "cartpole", NULL);
    cx_agent_train(a, 4000);
    cx_agent_train(b, 4000);
    CHECK(cx_agent_progress(a).last_loss == cx_agent_progress(b).last_loss);
    cx_agent *c = make(CX_ALGO_A2C, "cartpole", "seed=2");
    cx_agent_train(c, 4000);
    CHECK(cx_agent_progress(a).last_loss != cx_agent_progress(c).last_loss);
    cx_agent_free(a);
    cx_agent_free(b);
    cx_agent_free(c);
}

static void configuration_errors(void) {
    cx_rl_algo al;
    const char *names[] = {"reinforce", "a2c", "ppo", "dqn"};
    for (int i = 0; i < 4; i++) {
        CHECK(cx_rl_algo_parse(names[i], &al) && (int)al == i);
        CHECK(!strcmp(cx_rl_algo_name(al), names[i]));
    }
    CHECK(!cx_rl_algo_parse("sarsa", &al));
    cx_rl_config c = cx_rl_defaults(CX_ALGO_PPO, "cartpole");
    CHECK(cx_rl_config_set(&c, "lr", "abc") == CX_ERR_INVALID && strstr(cx_last_error(), "lr=abc"));
    CHECK(cx_rl_config_set(&c, "nope", "1") == CX_ERR_INVALID && strstr(cx_last_error(), "unknown setting 'nope'"));
    CHECK(cx_rl_config_set(&c, "hidden", "64,x") == CX_ERR_INVALID && strstr(cx_last_error(), "hidden"));
    CHECK(cx_rl_config_set(&c, "gamma", "1.5") == CX_ERR_INVALID);
    CHECK(cx_rl_config_set(&c, "n_envs", "2.5") == CX_ERR_INVALID && strstr(cx_last_error(), "integer"));
    CHECK(cx_rl_config_set(&c, "hidden", "32,16,8") == CX_OK && c.n_hidden == 3 && c.hidden[2] == 8);
    CHECK(cx_rl_config_set(&c, "algo", "dqn") == CX_OK && c.algo == CX_ALGO_DQN);
    /* the written configuration reads back to the same one */
    char buf[4096];
    cx_rl_config_write(&c, buf, sizeof buf);
    CHECK(strstr(buf, "hidden=32,16,8\n") && strstr(buf, "algo=dqn\n"));
    cx_rl_config d = cx_rl_defaults(CX_ALGO_DQN, "cartpole");
    snprintf(d.env, sizeof d.env, "%s", c.env);
    c.env[0] = 'c';
    cx_rl_config e = cx_rl_defaults(CX_ALGO_PPO, "nosuchenv");
    CHECK(cx_agent_new(&e) == NULL && strstr(cx_last_error(), "unknown environment 'nosuchenv'"));
    cx_rl_config g = cx_rl_defaults(CX_ALGO_DQN, "cartpole");
    g.batch_size = 100;
    g.buffer_size = 50;
    CHECK(cx_agent_new(&g) == NULL && strstr(cx_last_error(), "batch_size"));
}

static void diverging_loss_is_reported(void) {
    /* a weight of the Q network turned NaN: the next update's loss is NaN */
    cx_agent *a = make(CX_ALGO_DQN, "cartpole", "learning_starts=100");
    CHECK(cx_agent_network(a, "policy") == NULL && cx_agent_network(a, "nope") == NULL);
    cx_tensor *w = cx_module_tensor(cx_agent_network(a, "q"), "fc3.bias");
    CHECK(w != NULL);
    CX_F(w)[0] = NAN;
    cx_status st = cx_agent_train(a, 300);
    CHECK(st == CX_ERR_INVALID && (strstr(cx_last_error(), "NaN") || strstr(cx_last_error(), "infinite")));
    CHECK(strstr(cx_last_error(), "learning rate"));
    cx_agent_free(a);
}

static void bad_checkpoint_is_refused(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/cx_agent_bad_%d", (int)getpid());
    cx_tensor *t = cx_tensor_new(CX_F32, (const int[]){2}, 1);
    const char *nm = "w";
    CHECK(cx_st_save(path, &t, &nm, 1, NULL, NULL, 0) == CX_OK);
    cx_agent *a;
    CHECK(cx_agent_load(path, &a) == CX_ERR_FORMAT && strstr(cx_last_error(), "not a Cortex RL agent"));
    cx_tensor_free(t);
    unlink(path);
    CHECK(cx_agent_load("/nonexistent/agent.safetensors", &a) != CX_OK);
}

int main(void) {
    RUN(ppo_learns_cartpole);
    RUN(a2c_learns_cartpole);
    RUN(reinforce_learns_cartpole);
    RUN(dqn_learns_cartpole);
    RUN(ppo_gaussian_swings_pendulum_up);
    RUN(resume_a2c);
    RUN(resume_ppo);
    RUN(resume_reinforce);
    RUN(resume_dqn);
    RUN(resume_dqn_prioritized);
    RUN(same_seed_same_run);
    RUN(configuration_errors);
    RUN(diverging_loss_is_reported);
    RUN(bad_checkpoint_is_refused);
    TEST_END();
}
