/* cortex rl, driven as a subprocess (path in $CORTEX_BIN): envs, train with
 * --solve, metrics CSV and its curve, checkpoint and resume, play with a
 * GIF and a film strip, and one-line errors for bad flags and files. */
#include "cli_harness.h"

static void test_envs(void) {
    run_result r;
    run(&r, "envs");
    CHECK_MSG(r.code == 0, "envs: exit %d: %s", r.code, r.err);
    const char *want[] = {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "FrozenLake-v1", "Catch-v0"};
    for (int i = 0; i < 6; i++) CHECK_MSG(strstr(r.out, want[i]) != NULL, "envs lacks %s", want[i]);
}

static void test_train_play_curves(void) {
    char agent[512], csv[512], ck[512], gif[512], strip[512], png[512], text[65536];
    tmp_path(agent, sizeof agent, "a.safetensors");
    tmp_path(csv, sizeof csv, "m.csv");
    tmp_path(ck, sizeof ck, "ck.safetensors");
    tmp_path(gif, sizeof gif, "ep.gif");
    tmp_path(strip, sizeof strip, "ep.png");
    tmp_path(png, sizeof png, "curve.png");
    run_result r;
    run(&r, "train --env cartpole --algo ppo --steps 60000 --seed 1 --eval-every 5000 --eval-episodes 10 "
            "--solve 475 --final-episodes 20 --log-every 5000 --metrics %s --checkpoint %s --out %s",
        csv, ck, agent);
    CHECK_MSG(r.code == 0, "train: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "ppo on cartpole, seed 1"));
    CHECK(strstr(r.out, "steps/s") && strstr(r.out, "mean100"));
    CHECK_MSG(strstr(r.out, "solved: greedy mean return") != NULL, "not solved: %s", r.out);
    CHECK(strstr(r.out, "greedy return over 20 episodes: mean"));
    read_text(csv, text, sizeof text);
    CHECK(!strncmp(text, "steps,episodes,updates,mean_return,eval_return,loss,seconds\n", 60));
    CHECK_MSG(count_lines(text) >= 2, "%s", text);
    run(&r, "play %s --episodes 3 --gif %s --strip %s", agent, gif, strip);
    CHECK_MSG(r.code == 0, "play: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "episode 3: return") && strstr(r.out, "mean return over 3 episodes"));
    CHECK(strstr(r.out, "wrote ") && strstr(r.out, "frames, 300x200)"));
    read_text(gif, text, 16);
    CHECK(!memcmp(text, "GIF89a", 6));
    read_text(strip, text, 16);
    CHECK(!memcmp(text, "\x89PNG", 4));
    /* resume from the checkpoint: it continues from its step count */
    run(&r, "train --resume %s --steps 70000 --eval-every 0 --final-episodes 5 --log-every 100000", ck);
    CHECK_MSG(r.code == 0, "resume: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "resumed ") && strstr(r.out, "at step "));
    CHECK(strstr(r.out, "final: 7") != NULL);
    /* the learning curve of the run */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "viz curves %s --out %s", csv, png);
    const char *prefix = cli_prefix;
    cli_prefix = "";
    run(&r, "%s", cmd);
    cli_prefix = prefix;
    CHECK_MSG(r.code == 0, "viz curves: exit %d: %s", r.code, r.err);
    read_text(png, text, 16);
    CHECK(!memcmp(text, "\x89PNG", 4));
}

static void test_errors(void) {
    run_result r;
    char bad[512];
    run(&r, "train --env nosuch --steps 10");
    EXPECT_ERR(&r, "unknown env", "unknown environment 'nosuch'", "CartPole-v1");
    run(&r, "train --algo sarsa --steps 10");
    EXPECT_ERR(&r, "unknown algo", "--algo sarsa", "reinforce, a2c, ppo or dqn");
    run(&r, "train --set 'lr=abc' --steps 10");
    EXPECT_ERR(&r, "bad lr", "lr=abc");
    run(&r, "train --set 'foo=1' --steps 10");
    EXPECT_ERR(&r, "unknown key", "unknown setting 'foo'");
    run(&r, "train --env pendulum --algo dqn --steps 10");
    EXPECT_ERR(&r, "dqn on box", "continuous actions", "a2c or ppo");
    run(&r, "train --env frozenlake --algo ppo --steps 10");
    EXPECT_ERR(&r, "tabular", "discrete observations");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    FILE *f = fopen(bad, "wb");
    fputs("not a safetensors file", f);
    fclose(f);
    run(&r, "play %s", bad);
    CHECK(r.code != 0 && strstr(r.err, bad) != NULL);
    run(&r, "play /nonexistent/agent.safetensors");
    CHECK(r.code != 0 && strstr(r.err, "/nonexistent/agent.safetensors") != NULL);
    run(&r, "nosuchcommand");
    CHECK(r.code == 2 && strstr(r.err, "unknown subcommand 'nosuchcommand'"));
}

int main(void) {
    cli_prefix = "rl ";
    cli_err_prefix = "cortex rl";
    if (!cli_setup("rl_cli")) return 1;
    RUN(test_envs);
    RUN(test_train_play_curves);
    RUN(test_errors);
    cli_teardown();
    TEST_END();
}
