/* The environment API: specs and settings, spaces, CartPole's dynamics step
 * by step against the published equations (computed here independently in
 * closed form for one step), time limits, stepping after the end, frame
 * stacking, snapshots (exact resume), vectorised copies with same-step reset,
 * rendering, and errors that name the problem. */
#include <stdlib.h>
#include <cortex/env.h>
#include "test.h"

static void unknown_names_and_settings_are_reported(void) {
    CHECK(cx_env_make("NoSuchEnv-v0") == NULL);
    CHECK(strstr(cx_last_error(), "unknown environment 'NoSuchEnv-v0'") && strstr(cx_last_error(), "CartPole-v1"));
    CHECK(cx_env_make("cartpole:bogus=3") == NULL);
    CHECK(strstr(cx_last_error(), "no setting 'bogus'"));
    CHECK(cx_env_make("cartpole:max_steps=abc") == NULL);
    CHECK(strstr(cx_last_error(), "max_steps=abc"));
    CHECK(cx_env_make("cartpole:max_steps") == NULL);
    CHECK(strstr(cx_last_error(), "not key=value"));
    cx_env *e = cx_env_make("CARTPOLE-V1");
    CHECK(e && !strcmp(cx_env_name(e), "CartPole-v1") && !strcmp(cx_env_spec(e), "CARTPOLE-V1"));
    cx_env_free(e);
}

static void cartpole_spaces(void) {
    cx_env *e = cx_env_make("cartpole");
    const cx_space *o = cx_env_observation_space(e), *a = cx_env_action_space(e);
    CHECK(o->kind == CX_SPACE_BOX && o->n == 4 && o->ndim == 1 && o->shape[0] == 4);
    CHECK_NEAR(o->high[0], 4.8, 1e-6);
    CHECK_NEAR(o->high[2], 2 * 12 * 2 * 3.14159265358979 / 360, 1e-6);
    CHECK(a->kind == CX_SPACE_DISCRETE && a->n == 2);
    CHECK(cx_env_max_steps(e) == 500);
    cx_env_free(e);
}

/* One Euler step of the cart-pole equations (Florian 2007 as in gymnasium). */
static void ref_step(double *s, int a) {
    double g = 9.8, mc = 1.0, mp = 0.1, l = 0.5, F = a ? 10.0 : -10.0, dt = 0.02;
    double th = s[2], w = s[3], M = mc + mp;
    double tmp = (F + mp * l * w * w * sin(th)) / M;
    double alpha = (g * sin(th) - cos(th) * tmp) / (l * (4.0 / 3 - mp * cos(th) * cos(th) / M));
    double acc = tmp - mp * l * alpha * cos(th) / M;
    s[0] += dt * s[1];
    s[1] += dt * acc;
    s[2] += dt * w;
    s[3] += dt * alpha;
}

static void cartpole_follows_the_equations_until_it_falls(void) {
    cx_env *e = cx_env_make("cartpole");
    double s[4] = {0.01, -0.02, 0.03, 0.04}, got[4];
    cx_env_set_state(e, s, 4);
    float obs[4];
    int steps = 0;
    cx_step_result r;
    do {
        int a = (steps / 3) % 2; /* pushes in bursts: it falls eventually */
        r = cx_env_step(e, a, obs);
        ref_step(s, a);
        steps++;
        CHECK(cx_env_get_state(e, got, 4) == 4);
        for (int i = 0; i < 4; i++) {
            CHECK_NEAR(got[i], s[i], 1e-12);
            CHECK_NEAR(obs[i], (float)s[i], 0);
        }
        CHECK(r.reward == 1.0f);
    } while (!r.terminated && steps < 500);
    CHECK(r.terminated && !r.truncated);
    CHECK(fabs(s[0]) > 2.4 || fabs(s[2]) > 12 * 2 * 3.14159265358979 / 360);
    EXPECT_FATAL(cx_env_step(e, 0, obs), "reset first");
    EXPECT_FATAL(cx_env_step(e, 2, obs), "action 2 out of range");
    cx_env_stats st = cx_env_get_stats(e);
    CHECK(st.episodes == 1 && st.last_length == steps && st.last_return == steps);
    cx_env_free(e);
}

static void time_limit_truncates(void) {
    cx_env *e = cx_env_make("cartpole:max_steps=7");
    float obs[4];
    cx_env_seed(e, 3);
    cx_env_reset(e, obs);
    for (int i = 0; i < 4; i++) CHECK(fabsf(obs[i]) <= 0.05f);
    cx_step_result r = {0};
    int t = 0;
    /* alternate pushes: balanced for 7 steps */
    while (!r.terminated && !r.truncated) r = cx_env_step(e, t++ % 2, obs);
    CHECK(t == 7 && r.truncated && !r.terminated);
    cx_env_free(e);
}

static void same_seed_same_episode_and_snapshot_resumes_exactly(void) {
    cx_env *a = cx_env_make("cartpole"), *b = cx_env_make("cartpole");
    float oa[4], ob[4];
    cx_env_seed(a, 11);
    cx_env_seed(b, 11);
    cx_env_reset(a, oa);
    cx_env_reset(b, ob);
    CHECK(!memcmp(oa, ob, sizeof oa));
    for (int i = 0; i < 5; i++) cx_env_step(a, i % 2, oa);
    size_t n = cx_env_snapshot(a, NULL, 0);
    unsigned char *buf = malloc(n);
    CHECK(cx_env_snapshot(a, buf, n) == n);
    /* continue a, then restore b from the snapshot: b replays a exactly,
     * including the next reset's random initial state */
    float traj_a[40][4];
    int ka = 0;
    for (int i = 0; i < 40; i++) {
        cx_step_result r = cx_env_step(a, (i * 7) % 2, traj_a[ka++]);
        if (r.terminated || r.truncated) cx_env_reset(a, traj_a[ka - 1]);
    }
    CHECK(cx_env_restore(b, buf, n) == CX_OK);
    for (int i = 0; i < 40; i++) {
        cx_step_result r = cx_env_step(b, (i * 7) % 2, ob);
        if (r.terminated || r.truncated) cx_env_reset(b, ob);
        CHECK(!memcmp(ob, traj_a[i], sizeof ob));
    }
    cx_env *c = cx_env_make("cartpole:max_steps=9");
    CHECK(cx_env_restore(c, buf, n) == CX_ERR_FORMAT && strstr(cx_last_error(), "another environment"));
    CHECK(cx_env_restore(b, buf, n - 1) == CX_ERR_FORMAT);
    free(buf);
    cx_env_free(a);
    cx_env_free(b);
    cx_env_free(c);
}

static void frame_stacking(void) {
    cx_env *e = cx_env_make("cartpole:stack=3");
    const cx_space *o = cx_env_observation_space(e);
    CHECK(o->n == 12 && o->shape[0] == 12);
    float obs[12];
    cx_env_seed(e, 1);
    cx_env_reset(e, obs);
    for (int k = 1; k < 3; k++) CHECK(!memcmp(obs, obs + 4 * k, 4 * sizeof(float)));
    float prev[12];
    memcpy(prev, obs, sizeof obs);
    cx_env_step(e, 1, obs);
    CHECK(!memcmp(obs, prev + 4, 8 * sizeof(float))); /* shifted: oldest dropped */
    double s[4];
    cx_env_get_state(e, s, 4);
    for (int i = 0; i < 4; i++) CHECK(obs[8 + i] == (float)s[i]);
    cx_env_free(e);
}

static void vectorised_copies_reset_in_the_same_step(void) {
    const int N = 4;
    cx_vec_env *v = cx_vec_env_make("cartpole", N, 100);
    CHECK(v && cx_vec_env_num(v) == N);
    /* each copy is the single environment seeded seed + i */
    float obs[16], fin[16], rew[4], single[4];
    uint8_t term[4], trunc[4];
    cx_vec_env_reset(v, obs);
    CHECK(cx_vec_env_get(v, 2) != NULL && cx_env_get_stats(cx_vec_env_get(v, 2)).episodes == 0);
    EXPECT_FATAL(cx_vec_env_get(v, N), "index 4 out of range");
    for (int i = 0; i < N; i++) {
        cx_env *e = cx_env_make("cartpole");
        cx_env_seed(e, 100 + i);
        cx_env_reset(e, single);
        CHECK(!memcmp(single, obs + 4 * i, sizeof single));
        cx_env_free(e);
    }
    int acts[4] = {1, 1, 1, 1}, ended = 0;
    for (int t = 0; t < 200; t++) {
        cx_vec_env_step(v, acts, NULL, obs, rew, term, trunc, fin);
        for (int i = 0; i < N; i++)
            if (term[i]) {
                ended++;
                /* always pushing right: it ends by falling; fin holds the
                 * terminal observation, obs the new episode's first */
                CHECK(fabsf(fin[4 * i + 2]) > 0.2f || fabsf(fin[4 * i]) > 2.4f);
                for (int k = 0; k < 4; k++) CHECK(fabsf(obs[4 * i + k]) <= 0.05f);
            }
    }
    CHECK(ended > 4);
    double ret[512];
    int len[512];
    int k = cx_vec_env_finished(v, ret, len, 512);
    CHECK(k == ended);
    for (int i = 0; i < k; i++) CHECK(ret[i] == len[i] && len[i] > 3 && len[i] < 100);
    CHECK(cx_vec_env_finished(v, ret, len, 512) == 0);
    EXPECT_FATAL(cx_vec_env_step(v, NULL, NULL, obs, rew, term, trunc, fin), "pass actions");
    cx_vec_env_free(v);
    CHECK(cx_vec_env_make("nope", 2, 0) == NULL && strstr(cx_last_error(), "unknown environment"));
}

static void cartpole_renders(void) {
    cx_env *e = cx_env_make("cartpole");
    double s[4] = {0.5, 0, 0.1, 0};
    cx_env_set_state(e, s, 4);
    int w, h;
    const uint8_t *rgb = cx_env_render(e, &w, &h);
    CHECK(w == 300 && h == 200);
    /* the cart (dark) is right of centre, the pole (brown) above it */
    int cartx = (int)(0.5 * 300 / 4.8 + 150), carty = 150;
    const uint8_t *p = rgb + ((size_t)carty * w + cartx) * 3;
    CHECK(p[0] < 60 && p[1] < 60 && p[2] < 60);
    int poley = 100, polex = cartx + (int)(sin(0.1) * 50);
    p = rgb + ((size_t)poley * w + polex) * 3;
    CHECK(p[0] == 202 && p[1] == 152 && p[2] == 101);
    FILE *f = tmpfile();
    cx_env_render_ansi(e, f, 40);
    CHECK(ftell(f) > 1000);
    fclose(f);
    cx_env_free(e);
}

int main(void) {
    RUN(unknown_names_and_settings_are_reported);
    RUN(cartpole_spaces);
    RUN(cartpole_follows_the_equations_until_it_falls);
    RUN(time_limit_truncates);
    RUN(same_seed_same_episode_and_snapshot_resumes_exactly);
    RUN(frame_stacking);
    RUN(vectorised_copies_reset_in_the_same_step);
    RUN(cartpole_renders);
    TEST_END();
}
