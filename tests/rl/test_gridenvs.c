/* FrozenLake-v1 (gymnasium's maps, slip rule, model P[s][a], time limits)
 * and Catch-v0 (bsuite's rules): spaces, settings, dynamics step by step,
 * slip frequencies, rewards and termination, state get/set, rendering, and
 * a discrete observation written as one float (also through vec envs). */
#include <stdlib.h>
#include <cortex/env.h>
#include "test.h"

static void frozenlake_spaces_and_settings(void) {
    cx_env *e = cx_env_make("FrozenLake-v1");
    const cx_space *o = cx_env_observation_space(e), *a = cx_env_action_space(e);
    CHECK(o->kind == CX_SPACE_DISCRETE && o->n == 16 && a->kind == CX_SPACE_DISCRETE && a->n == 4);
    CHECK(cx_env_obs_size(e) == 1);
    CHECK(cx_env_max_steps(e) == 100);
    cx_env_free(e);
    e = cx_env_make("frozenlake:map=8x8");
    CHECK(cx_env_observation_space(e)->n == 64 && cx_env_max_steps(e) == 200);
    cx_env_free(e);
    e = cx_env_make("frozenlake:max_steps=50,map=8x8"); /* an explicit limit wins, in any order */
    CHECK(cx_env_max_steps(e) == 50);
    cx_env_free(e);
    CHECK(cx_env_make("frozenlake:map=5x5") == NULL && strstr(cx_last_error(), "map=5x5"));
    CHECK(cx_env_make("frozenlake:slippery=2") == NULL && strstr(cx_last_error(), "slippery=2"));
    CHECK(cx_env_make("frozenlake:rows=3") == NULL && strstr(cx_last_error(), "no setting 'rows'"));
    CHECK(cx_env_make("frozenlake:stack=2") == NULL && strstr(cx_last_error(), "box observation"));
}

/* gymnasium's P[s][a] for a few cells of the 4x4 map. */
static void frozenlake_model_is_gymnasiums(void) {
    cx_env *e = cx_env_make("frozenlake");
    cx_transition t[8];
    /* s 0, LEFT: the directions UP, LEFT, DOWN -> 0, 0, 4 */
    CHECK(cx_env_model(e, 0, 0, t, 8) == 3);
    CHECK(t[0].next_state == 0 && t[1].next_state == 0 && t[2].next_state == 4);
    CHECK_NEAR(t[0].prob, 1.0 / 3, 1e-15);
    CHECK(!t[0].terminated && t[0].reward == 0);
    /* s 14, RIGHT: DOWN -> 14, RIGHT -> 15 (G: reward 1, terminated), UP -> 10 */
    CHECK(cx_env_model(e, 14, 2, t, 8) == 3);
    CHECK(t[0].next_state == 14 && t[1].next_state == 15 && t[2].next_state == 10);
    CHECK(t[1].reward == 1 && t[1].terminated && !t[0].terminated && t[0].reward == 0);
    /* s 1, DOWN: LEFT -> 0, DOWN -> 5 (H: terminated, 0), RIGHT -> 2 */
    CHECK(cx_env_model(e, 1, 1, t, 8) == 3);
    CHECK(t[1].next_state == 5 && t[1].terminated && t[1].reward == 0);
    /* holes and the goal are absorbing */
    CHECK(cx_env_model(e, 5, 3, t, 8) == 1 && t[0].next_state == 5 && t[0].prob == 1 && t[0].terminated);
    CHECK(cx_env_model(e, 15, 0, t, 8) == 1 && t[0].next_state == 15 && t[0].reward == 0);
    /* probabilities sum to 1 everywhere; a short buffer gets the count */
    for (int s = 0; s < 16; s++)
        for (int a = 0; a < 4; a++) {
            int n = cx_env_model(e, s, a, t, 8);
            double p = 0;
            for (int i = 0; i < n; i++) p += t[i].prob;
            CHECK_NEAR(p, 1, 1e-12);
        }
    CHECK(cx_env_model(e, 0, 0, t, 1) == 3);
    EXPECT_FATAL(cx_env_model(e, 16, 0, t, 8), "state 16 out of range");
    EXPECT_FATAL(cx_env_model(e, 0, 4, t, 8), "action 4 out of range");
    cx_env_free(e);
    e = cx_env_make("frozenlake:slippery=0");
    CHECK(cx_env_model(e, 0, 2, t, 8) == 1 && t[0].next_state == 1 && t[0].prob == 1);
    cx_env_free(e);
    e = cx_env_make("cartpole");
    CHECK(cx_env_model(e, 0, 0, t, 8) == -1);
    cx_env_free(e);
}

static void frozenlake_deterministic_paths(void) {
    cx_env *e = cx_env_make("frozenlake:slippery=0");
    float obs = -1;
    cx_env_reset(e, &obs);
    CHECK(obs == 0.0f);
    const int path[6] = {1, 1, 2, 1, 2, 2}; /* 0 -> 4 -> 8 -> 9 -> 13 -> 14 -> 15 */
    const int cells[6] = {4, 8, 9, 13, 14, 15};
    cx_step_result r = {0};
    for (int i = 0; i < 6; i++) {
        r = cx_env_step(e, path[i], &obs);
        CHECK(obs == (float)cells[i]);
        CHECK(r.terminated == (i == 5) && r.reward == (i == 5 ? 1.0f : 0.0f));
    }
    cx_env_reset(e, &obs);
    cx_env_step(e, 2, &obs);
    r = cx_env_step(e, 1, &obs); /* 1 -> 5: a hole */
    CHECK(obs == 5.0f && r.terminated && r.reward == 0);
    cx_env_reset(e, &obs); /* pushing into the wall until the time limit */
    int n = 0;
    do {
        r = cx_env_step(e, 0, &obs);
        n++;
    } while (!r.terminated && !r.truncated);
    CHECK(n == 100 && r.truncated && !r.terminated && obs == 0.0f);
    cx_env_free(e);
}

/* From cell 9, DOWN slips LEFT -> 8, goes DOWN -> 13 or slips RIGHT -> 10,
 * each 1/3 (3000 draws: 3 standard errors are 0.026). */
static void frozenlake_slips_one_third_each_way(void) {
    cx_env *e = cx_env_make("frozenlake");
    cx_env_seed(e, 5);
    int count[16] = {0};
    const double cell9 = 9;
    for (int i = 0; i < 3000; i++) {
        cx_env_set_state(e, &cell9, 1);
        float obs;
        cx_env_step(e, 1, &obs);
        count[(int)obs]++;
    }
    CHECK(count[8] + count[13] + count[10] == 3000);
    CHECK_NEAR(count[8] / 3000.0, 1.0 / 3, 0.026);
    CHECK_NEAR(count[13] / 3000.0, 1.0 / 3, 0.026);
    CHECK_NEAR(count[10] / 3000.0, 1.0 / 3, 0.026);
    double s;
    CHECK(cx_env_get_state(e, &s, 1) == 1);
    EXPECT_FATAL(cx_env_set_state(e, (const double[]){16}, 1), "cell 16");
    EXPECT_FATAL(cx_env_set_state(e, (const double[]){2.5}, 1), "cell 2.5");
    cx_env_free(e);
}

static void frozenlake_renders_and_vectorises(void) {
    cx_env *e = cx_env_make("frozenlake:map=8x8");
    float obs;
    cx_env_reset(e, &obs);
    cx_env_set_state(e, (const double[]){10}, 1); /* row 1, column 2 */
    int w, h;
    const uint8_t *img = cx_env_render(e, &w, &h);
    CHECK(w == 256 && h == 256);
    const uint8_t *agent = img + ((size_t)(32 + 16) * w + 2 * 32 + 12) * 3; /* left of the agent's centre */
    CHECK(agent[0] > 180 && agent[1] < 80 && agent[2] < 80);
    const uint8_t *hole = img + ((size_t)(2 * 32 + 16) * w + 3 * 32 + 16) * 3; /* cell 19 is H */
    CHECK(hole[2] > hole[0] && hole[0] < 60);
    const uint8_t *ice = img + ((size_t)(4) * w + 4 * 32 + 4) * 3;
    CHECK(ice[0] > 200 && ice[2] > 200);
    cx_env_free(e);

    cx_vec_env *v = cx_vec_env_make("frozenlake", 3, 1);
    float o[3], fin[3];
    cx_vec_env_reset(v, o);
    CHECK(o[0] == 0 && o[1] == 0 && o[2] == 0);
    int acts[3] = {2, 1, 0};
    cx_vec_env_step(v, acts, NULL, o, NULL, NULL, NULL, fin);
    for (int i = 0; i < 3; i++) CHECK(o[i] >= 0 && o[i] < 16 && o[i] == (int)o[i]);
    cx_vec_env_free(v);
}

static void catch_spaces_and_reset(void) {
    cx_env *e = cx_env_make("Catch-v0");
    const cx_space *o = cx_env_observation_space(e);
    CHECK(o->kind == CX_SPACE_BOX && o->ndim == 3 && o->shape[0] == 1 && o->shape[1] == 10 && o->shape[2] == 5);
    CHECK(o->n == 50 && cx_env_obs_size(e) == 50 && o->low[7] == 0 && o->high[7] == 1);
    CHECK(cx_env_action_space(e)->n == 3 && cx_env_max_steps(e) == 0);
    float obs[50];
    int cols[5] = {0};
    cx_env_seed(e, 11);
    for (int i = 0; i < 1000; i++) {
        cx_env_reset(e, obs);
        double s[3];
        cx_env_get_state(e, s, 3);
        CHECK(s[0] == 0 && s[2] == 2);
        cols[(int)s[1]]++;
        float sum = 0;
        for (int k = 0; k < 50; k++) sum += obs[k];
        CHECK(sum == 2 && obs[(int)s[1]] == 1 && obs[9 * 5 + 2] == 1);
    }
    for (int k = 0; k < 5; k++) CHECK_NEAR(cols[k] / 1000.0, 0.2, 0.04); /* 3 standard errors: 0.038 */
    cx_env_free(e);
    CHECK(cx_env_make("catch:rows=1") == NULL && strstr(cx_last_error(), "rows=1"));
    CHECK(cx_env_make("catch:depth=3") == NULL && strstr(cx_last_error(), "no setting 'depth'"));
}

/* The ball falls a row per step; the paddle moves first, clipped at walls. */
static void catch_dynamics_and_rewards(void) {
    cx_env *e = cx_env_make("catch:rows=6,cols=3");
    CHECK(cx_env_obs_size(e) == 18);
    float obs[50]; /* also the 10x5 default below */
    cx_env_reset(e, obs);
    cx_env_set_state(e, (const double[]){0, 0, 1}, 3); /* ball top-left, paddle in the middle */
    cx_step_result r;
    int steps = 0;
    do {
        r = cx_env_step(e, 0, obs); /* left, left, ...: clipped at column 0 */
        steps++;
        double s[3];
        cx_env_get_state(e, s, 3);
        CHECK(s[0] == steps && s[1] == 0 && s[2] == 0);
        CHECK(obs[steps * 3 + 0] == 1 && obs[5 * 3 + 0] == 1);
        CHECK(r.reward == (steps == 5 ? 1.0f : 0.0f));
    } while (!r.terminated);
    CHECK(steps == 5 && !r.truncated);
    cx_env_set_state(e, (const double[]){3, 2, 0}, 3); /* too far: misses */
    r = cx_env_step(e, 2, obs);
    CHECK(!r.terminated && r.reward == 0);
    r = cx_env_step(e, 1, obs);
    CHECK(r.terminated && r.reward == -1);
    EXPECT_FATAL(cx_env_set_state(e, (const double[]){5, 0, 0}, 3), "ball_row = 5");
    EXPECT_FATAL(cx_env_set_state(e, (const double[]){0, 0, 3}, 3), "paddle_col = 3");
    cx_env_free(e);

    /* following the ball always catches it; staying misses unless it falls
     * on the middle column */
    e = cx_env_make("catch");
    cx_env_seed(e, 3);
    double caught = 0, stay = 0;
    for (int ep = 0; ep < 200; ep++) {
        cx_env_reset(e, obs);
        for (;;) {
            double s[3];
            cx_env_get_state(e, s, 3);
            int a = s[1] < s[2] ? 0 : s[1] > s[2] ? 2 : 1;
            r = cx_env_step(e, a, obs);
            if (r.terminated) break;
        }
        caught += r.reward;
        cx_env_reset(e, obs);
        while (!(r = cx_env_step(e, 1, obs)).terminated) {}
        stay += r.reward;
    }
    CHECK(caught == 200);
    CHECK(stay / 200 < -0.3 && stay / 200 > -0.9); /* expected 1/5 - 4/5 = -0.6 */
    CHECK(cx_env_get_stats(e).episodes == 400);
    cx_env_free(e);
}

static void catch_renders_and_stacks(void) {
    cx_env *e = cx_env_make("catch");
    float obs[50];
    cx_env_reset(e, obs);
    cx_env_set_state(e, (const double[]){3, 4, 1}, 3);
    int w, h;
    const uint8_t *img = cx_env_render(e, &w, &h);
    CHECK(w == 101 && h == 201);
    const uint8_t *ball = img + ((size_t)(3 * 20 + 10) * w + 4 * 20 + 10) * 3;
    CHECK(ball[0] > 200 && ball[1] > 150 && ball[2] < 100);
    const uint8_t *pad = img + ((size_t)(9 * 20 + 15) * w + 1 * 20 + 10) * 3;
    CHECK(pad[2] > 200 && pad[0] < 100);
    const uint8_t *line = img + ((size_t)(5 * 20) * w + 7) * 3, *bg = img + ((size_t)(5 * 20 + 5) * w + 7) * 3;
    CHECK(line[0] == 70 && bg[0] == 20);
    cx_env_free(e);
    e = cx_env_make("catch:stack=4");
    const cx_space *o = cx_env_observation_space(e);
    CHECK(o->shape[0] == 4 && o->n == 200);
    cx_env_free(e);
}

int main(void) {
    RUN(frozenlake_spaces_and_settings);
    RUN(frozenlake_model_is_gymnasiums);
    RUN(frozenlake_deterministic_paths);
    RUN(frozenlake_slips_one_third_each_way);
    RUN(frozenlake_renders_and_vectorises);
    RUN(catch_spaces_and_reset);
    RUN(catch_dynamics_and_rewards);
    RUN(catch_renders_and_stacks);
    TEST_END();
}
