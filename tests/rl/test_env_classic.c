/* The classic-control environments (CartPole-v1, Acrobot-v1, MountainCar-v0,
 * Pendulum-v1) step by step against reference trajectories of gymnasium's
 * equations: tests/fixtures/rl/classic.safetensors, written by
 * tools/gen_rl_env_fixtures.py (a numpy transcription of gymnasium's
 * sources, independent of the C code). Every step's state (double, to 1e-9
 * relative), observation, reward and terminated flag, and truncation exactly
 * at the time limit. Then spaces, resets, settings, rendering, snapshots and
 * the errors that name the problem. */
#include <stdlib.h>
#include <cortex/env.h>
#include <cortex/io.h>
#include "test.h"

static cx_st_file *FX;

static cx_tensor *fx(const char *ep, const char *what) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", ep, what);
    cx_tensor *t = cx_st_get(FX, key);
    CHECK_MSG(t != NULL, "fixture lacks %s", key);
    return t;
}

/* Doubles are stored as I64 tensors of their bit patterns. */
static double f64(const cx_tensor *t, int64_t i) {
    double v;
    memcpy(&v, &CX_I64P(t)[i], sizeof v);
    return v;
}

static int near_rel(double got, double want, double rel) { return fabs(got - want) <= rel * fabs(want) + 1e-12; }

/* Replays every episode of one environment; returns the steps checked. */
static long replay(const char *env) {
    char key[64];
    snprintf(key, sizeof key, "%s.episodes", env);
    const char *ne = cx_st_meta(FX, key);
    CHECK_MSG(ne != NULL, "fixture lacks metadata %s", key);
    if (!ne) return 0;
    long checked = 0;
    for (int k = 0; k < atoi(ne); k++) {
        char ep[48];
        snprintf(ep, sizeof ep, "%s.%d", env, k);
        snprintf(key, sizeof key, "%s.spec", ep);
        const char *spec = cx_st_meta(FX, key);
        cx_tensor *start = fx(ep, "start"), *acts = fx(ep, "actions"), *states = fx(ep, "states"),
                  *obs = fx(ep, "obs"), *rew = fx(ep, "rewards"), *term = fx(ep, "terminated");
        if (!spec || !start || !acts || !states || !obs || !rew || !term) return checked;
        cx_env *e = cx_env_make(spec);
        CHECK_MSG(e != NULL, "%s: %s", spec, cx_last_error());
        if (!e) continue;
        int D = (int)start->numel, O = cx_env_obs_size(e), T = (int)acts->numel, limit = cx_env_max_steps(e);
        CHECK(states->ndim == 2 && states->shape[0] == T && states->shape[1] == D);
        CHECK(obs->ndim == 2 && obs->shape[0] == T && obs->shape[1] == O);
        double s0[8], got[8];
        for (int i = 0; i < D; i++) s0[i] = f64(start, i);
        float o[8];
        cx_env_seed(e, 1);
        cx_env_reset(e, o);
        cx_env_set_state(e, s0, D);
        CHECK(cx_env_get_state(e, got, 8) == D && !memcmp(got, s0, sizeof(double) * D));
        int bad = 0;
        for (int t = 0; t < T && !bad; t++) {
            cx_step_result r;
            if (acts->dtype == CX_F32) r = cx_env_step_box(e, &CX_F(acts)[t], o);
            else r = cx_env_step(e, (int)CX_I64P(acts)[t], o);
            cx_env_get_state(e, got, 8);
            for (int i = 0; i < D; i++)
                if (!near_rel(got[i], f64(states, (int64_t)t * D + i), 1e-9)) bad = 1;
            for (int i = 0; i < O; i++)
                if (!near_rel(o[i], CX_F(obs)[(int64_t)t * O + i], 1e-6)) bad = 1;
            if (!near_rel(r.reward, f64(rew, t), 1e-6)) bad = 1;
            if (r.terminated != (CX_I64P(term)[t] != 0)) bad = 1;
            /* the episode ends exactly at the last recorded step: terminated
             * there, or truncated when that step is the time limit */
            bool last = t == T - 1, want_trunc = last && !r.terminated && T == limit;
            if (r.truncated != want_trunc || (last && !r.terminated && !r.truncated)) bad = 1;
            if (bad) {
                CHECK_MSG(0, "%s (%s) step %d of %d: state %.17g, %.17g; reward %g (want %g); term %d trunc %d", ep,
                          spec, t, T, got[0], got[1], r.reward, f64(rew, t), r.terminated, r.truncated);
                for (int i = 0; i < D; i++)
                    fprintf(stderr, "    state[%d] %.17g want %.17g\n", i, got[i], f64(states, (int64_t)t * D + i));
            }
            checked++;
        }
        cx_env_free(e);
    }
    return checked;
}

static void cartpole_matches_gymnasium(void) { CHECK(replay("cartpole") > 500); }
static void acrobot_matches_gymnasium(void) { CHECK(replay("acrobot") > 600); }
static void mountaincar_matches_gymnasium(void) { CHECK(replay("mountaincar") > 600); }
static void pendulum_matches_gymnasium(void) { CHECK(replay("pendulum") == 600); }

static void spaces_and_limits(void) {
    cx_env *a = cx_env_make("Acrobot-v1"), *m = cx_env_make("mountaincar"), *p = cx_env_make("PENDULUM");
    CHECK(a && m && p);
    const cx_space *o = cx_env_observation_space(a);
    CHECK(o->kind == CX_SPACE_BOX && o->n == 6 && o->shape[0] == 6);
    CHECK_NEAR(o->high[4], 4 * 3.14159265358979, 1e-5);
    CHECK_NEAR(o->low[5], -9 * 3.14159265358979, 1e-5);
    CHECK(cx_env_action_space(a)->kind == CX_SPACE_DISCRETE && cx_env_action_space(a)->n == 3);
    CHECK(cx_env_max_steps(a) == 500 && !strcmp(cx_env_name(a), "Acrobot-v1"));
    o = cx_env_observation_space(m);
    CHECK(o->n == 2 && o->low[0] == -1.2f && o->high[0] == 0.6f && o->low[1] == -0.07f && o->high[1] == 0.07f);
    CHECK(cx_env_action_space(m)->n == 3 && cx_env_max_steps(m) == 200);
    o = cx_env_observation_space(p);
    const cx_space *act = cx_env_action_space(p);
    CHECK(o->n == 3 && o->high[2] == 8.0f && o->low[0] == -1.0f);
    CHECK(act->kind == CX_SPACE_BOX && act->n == 1 && act->low[0] == -2.0f && act->high[0] == 2.0f);
    CHECK(cx_env_max_steps(p) == 200 && !strcmp(cx_env_name(p), "Pendulum-v1"));
    cx_env_free(a);
    cx_env_free(m);
    cx_env_free(p);
}

/* Initial states in gymnasium's ranges; the same seed, the same start. */
static void resets_sample_gymnasiums_ranges(void) {
    const char *names[3] = {"acrobot", "mountaincar", "pendulum"};
    for (int n = 0; n < 3; n++) {
        cx_env *e = cx_env_make(names[n]), *f = cx_env_make(names[n]);
        double lo[4] = {1e9, 1e9, 1e9, 1e9}, hi[4] = {-1e9, -1e9, -1e9, -1e9}, s[4], s2[4];
        float o[6], o2[6];
        cx_env_seed(e, 5);
        cx_env_seed(f, 5);
        for (int i = 0; i < 300; i++) {
            cx_env_reset(e, o);
            cx_env_reset(f, o2);
            CHECK(!memcmp(o, o2, sizeof(float) * cx_env_obs_size(e)));
            int d = cx_env_get_state(e, s, 4);
            cx_env_get_state(f, s2, 4);
            CHECK(!memcmp(s, s2, sizeof(double) * d));
            for (int k = 0; k < d; k++) {
                lo[k] = fmin(lo[k], s[k]);
                hi[k] = fmax(hi[k], s[k]);
            }
        }
        if (n == 0) /* all four uniform(-0.1, 0.1), float32 as gymnasium's */
            for (int k = 0; k < 4; k++) {
                CHECK(lo[k] >= -0.1 && lo[k] < -0.09 && hi[k] < 0.1 && hi[k] > 0.09);
                CHECK(s[k] == (double)(float)s[k]);
            }
        if (n == 1) CHECK(lo[0] >= -0.6 && lo[0] < -0.59 && hi[0] < -0.4 && hi[0] > -0.41 && lo[1] == 0 && hi[1] == 0);
        if (n == 2) CHECK(lo[0] >= -3.1416 && lo[0] < -3.0 && hi[0] < 3.1416 && hi[0] > 3.0 && lo[1] >= -1 &&
                          lo[1] < -0.95 && hi[1] < 1 && hi[1] > 0.95);
        cx_env_free(e);
        cx_env_free(f);
    }
}

/* The observation written by set_state; one step by hand for each. */
static void observations_and_one_step_by_hand(void) {
    cx_env *p = cx_env_make("pendulum");
    double s[2] = {0.3, -0.2};
    cx_env_set_state(p, s, 2);
    float o[3], u = 1.5f;
    cx_step_result r = cx_env_step_box(p, &u, o);
    /* reward from the state before the step */
    CHECK_NEAR(r.reward, -(0.09 + 0.1 * 0.04 + 0.001 * 2.25), 1e-6);
    double thdot = -0.2 + (15 * sin(0.3) + 3 * 1.5) * 0.05, th = 0.3 + thdot * 0.05;
    CHECK_NEAR(o[0], cos(th), 1e-7);
    CHECK_NEAR(o[1], sin(th), 1e-7);
    CHECK_NEAR(o[2], thdot, 1e-7);
    CHECK(!r.terminated && !r.truncated);
    /* angle_normalize of an angle beyond 2 pi: the cost of th = 2 pi + 0.5 is that of 0.5 */
    double s2[2] = {2 * 3.14159265358979323846 + 0.5, 0};
    cx_env_set_state(p, s2, 2);
    float z = 0;
    r = cx_env_step_box(p, &z, o);
    CHECK_NEAR(r.reward, -0.25, 1e-6);
    cx_env_free(p);

    cx_env *m = cx_env_make("mountaincar");
    double ms[2] = {-1.19, -0.02};
    cx_env_set_state(m, ms, 2);
    float mo[2];
    r = cx_env_step(m, 0, mo); /* into the left wall: stopped there */
    CHECK(mo[0] == -1.2f && mo[1] == 0.0f && r.reward == -1.0f && !r.terminated);
    cx_env_free(m);
    /* goal_velocity: reaching 0.5 at a speed of ~0.00995 ends the episode
     * under the default (0), not under goal_velocity=0.01 */
    const char *specs[2] = {"mountaincar", "mountaincar:goal_velocity=0.01"};
    for (int i = 0; i < 2; i++) {
        cx_env *g = cx_env_make(specs[i]);
        double gs[2] = {0.491, 0.0102};
        cx_env_set_state(g, gs, 2);
        r = cx_env_step(g, 1, mo);
        CHECK(mo[0] >= 0.5f && mo[1] < 0.01f && mo[1] > 0.0099f);
        CHECK(r.terminated == (i == 0));
        cx_env_free(g);
    }

    cx_env *a = cx_env_make("acrobot");
    double as[4] = {0.1, -0.2, 0.3, -0.4};
    cx_env_set_state(a, as, 4);
    float ao[6];
    cx_env_step(a, 1, ao);
    double got[4];
    cx_env_get_state(a, got, 4);
    CHECK_NEAR(ao[0], cos(got[0]), 1e-7);
    CHECK_NEAR(ao[3], sin(got[1]), 1e-7);
    CHECK(ao[4] == (float)got[2] && ao[5] == (float)got[3]);
    /* the tip above the bar: terminated with reward 0 */
    double up[4] = {3.0, 0.1, 0, 0};
    cx_env_set_state(a, up, 4);
    r = cx_env_step(a, 1, ao);
    CHECK(r.terminated && r.reward == 0.0f);
    cx_env_free(a);
}

static void snapshots_resume_exactly(void) {
    const char *specs[3] = {"acrobot", "mountaincar", "pendulum:g=9.81"};
    for (int n = 0; n < 3; n++) {
        cx_env *a = cx_env_make(specs[n]), *b = cx_env_make(specs[n]);
        bool box = n == 2;
        float oa[6], ob[6], u;
        cx_env_seed(a, 3);
        cx_env_reset(a, oa);
        cx_env_reset(b, ob);
        for (int t = 0; t < 10; t++) {
            u = (float)(t % 5) - 2;
            if (box) cx_env_step_box(a, &u, oa);
            else cx_env_step(a, t % 3, oa);
        }
        size_t sz = cx_env_snapshot(a, NULL, 0);
        unsigned char *buf = malloc(sz);
        cx_env_snapshot(a, buf, sz);
        CHECK(cx_env_restore(b, buf, sz) == CX_OK);
        for (int t = 0; t < 30; t++) {
            u = (float)(t % 7) - 3;
            cx_step_result ra = box ? cx_env_step_box(a, &u, oa) : cx_env_step(a, t % 3, oa);
            cx_step_result rb = box ? cx_env_step_box(b, &u, ob) : cx_env_step(b, t % 3, ob);
            CHECK(!memcmp(oa, ob, sizeof(float) * cx_env_obs_size(a)) && ra.reward == rb.reward);
        }
        free(buf);
        cx_env_free(a);
        cx_env_free(b);
    }
}

static int count_colour(const uint8_t *rgb, int w, int h, int r, int g, int b) {
    int n = 0;
    for (int i = 0; i < w * h; i++) n += rgb[3 * i] == r && rgb[3 * i + 1] == g && rgb[3 * i + 2] == b;
    return n;
}

static const uint8_t *px(const uint8_t *rgb, int w, int x, int y) { return rgb + ((size_t)y * w + x) * 3; }

static void renders(void) {
    int w, h;
    /* Acrobot hanging straight down: link cyan below the centre, the bar above */
    cx_env *a = cx_env_make("acrobot");
    double down[4] = {0, 0, 0, 0};
    cx_env_set_state(a, down, 4);
    const uint8_t *rgb = cx_env_render(a, &w, &h);
    CHECK(w == 250 && h == 250);
    const uint8_t *p = px(rgb, w, 125, 125 + 40);
    CHECK(p[0] == 0 && p[1] == 204 && p[2] == 204);
    p = px(rgb, w, 125, 125 - 40);
    CHECK(p[0] == 255 && p[1] == 255 && p[2] == 255);
    CHECK(count_colour(rgb, w, h, 204, 204, 0) > 20);
    CHECK(count_colour(rgb, w, h, 0, 0, 0) > 150); /* the bar */
    /* pointing right (theta1 = pi/2): the first link is to the right */
    double right[4] = {3.14159265358979323846 / 2, 0, 0, 0};
    cx_env_set_state(a, right, 4);
    rgb = cx_env_render(a, &w, &h);
    p = px(rgb, w, 125 + 40, 125);
    CHECK(p[0] == 0 && p[1] == 204 && p[2] == 204);
    cx_env_free(a);

    /* Pendulum upright: the red rod above the axle; then to the left for th = pi/2 */
    cx_env *pe = cx_env_make("pendulum");
    double up[2] = {0, 0}, left[2] = {3.14159265358979323846 / 2, 0};
    cx_env_set_state(pe, up, 2);
    rgb = cx_env_render(pe, &w, &h);
    CHECK(w == 250 && h == 250);
    p = px(rgb, w, 125, 125 - 40);
    CHECK(p[0] == 204 && p[1] == 77 && p[2] == 77);
    p = px(rgb, w, 125, 125 + 40);
    CHECK(p[0] == 255);
    p = px(rgb, w, 125, 125);
    CHECK(p[0] == 0 && p[1] == 0 && p[2] == 0);
    cx_env_set_state(pe, left, 2);
    rgb = cx_env_render(pe, &w, &h);
    p = px(rgb, w, 125 - 40, 125);
    CHECK(p[0] == 204 && p[1] == 77 && p[2] == 77);
    int before = count_colour(rgb, w, h, 90, 90, 90);
    float u = 2;
    cx_env_step_box(pe, &u, NULL);
    rgb = cx_env_render(pe, &w, &h);
    CHECK(before == 0 && count_colour(rgb, w, h, 90, 90, 90) > 30); /* the torque arc */
    cx_env_free(pe);

    /* MountainCar: the car (black) and its wheels (grey) move with the position */
    cx_env *m = cx_env_make("mountaincar");
    double s[2] = {-0.5, 0};
    cx_env_set_state(m, s, 2);
    rgb = cx_env_render(m, &w, &h);
    CHECK(w == 300 && h == 200);
    CHECK(count_colour(rgb, w, h, 128, 128, 128) > 30);
    CHECK(count_colour(rgb, w, h, 204, 204, 0) > 15); /* the flag */
    int carx = (int)((-0.5 + 1.2) * 300 / 1.8), cary = (int)(200 - (sin(-1.5) * 0.45 + 0.55) * 300 / 1.8) - 10;
    p = px(rgb, w, carx, cary);
    CHECK(p[0] == 0 && p[1] == 0 && p[2] == 0);
    s[0] = 0.3;
    cx_env_set_state(m, s, 2);
    rgb = cx_env_render(m, &w, &h);
    p = px(rgb, w, carx, cary);
    CHECK(p[0] == 255);
    FILE *f = tmpfile();
    cx_env_render_ansi(m, f, 40);
    CHECK(ftell(f) > 1000);
    fclose(f);
    cx_env_free(m);
}

static void settings_and_errors_name_the_problem(void) {
    CHECK(cx_env_make("pendulum:g=abc") == NULL);
    CHECK(strstr(cx_last_error(), "g=abc") && strstr(cx_last_error(), "expected a number"));
    CHECK(cx_env_make("pendulum:g=-3") == NULL && strstr(cx_last_error(), "g=-3"));
    CHECK(cx_env_make("pendulum:gravity=9") == NULL && strstr(cx_last_error(), "no setting 'gravity'") &&
          strstr(cx_last_error(), "g"));
    CHECK(cx_env_make("acrobot:g=9") == NULL && strstr(cx_last_error(), "no setting 'g'"));
    CHECK(cx_env_make("mountaincar:goal_velocity=1") == NULL && strstr(cx_last_error(), "goal_velocity=1"));
    cx_env *p = cx_env_make("pendulum:g=9.81,max_steps=5");
    CHECK(p && cx_env_max_steps(p) == 5);
    float o[3], u = 0;
    cx_env_reset(p, o);
    EXPECT_FATAL(cx_env_step(p, 0, o), "Pendulum-v1", "continuous", "cx_env_step_box");
    float nan_u = NAN;
    EXPECT_FATAL(cx_env_step_box(p, &nan_u, o), "Pendulum-v1", "NaN");
    cx_step_result r = {0};
    int t = 0;
    while (!r.truncated && t < 10) {
        r = cx_env_step_box(p, &u, o);
        t++;
        CHECK(!r.terminated);
    }
    CHECK(t == 5 && r.truncated);
    cx_env_free(p);
    cx_env *a = cx_env_make("acrobot");
    cx_env_reset(a, NULL);
    EXPECT_FATAL(cx_env_step(a, 3, NULL), "Acrobot-v1", "action 3 out of range");
    EXPECT_FATAL(cx_env_step_box(a, &u, NULL), "Acrobot-v1", "discrete", "cx_env_step");
    double bad[4] = {0, 0, NAN, 0};
    EXPECT_FATAL(cx_env_set_state(a, bad, 4), "Acrobot-v1", "not finite");
    EXPECT_FATAL(cx_env_set_state(a, bad, 2), "Acrobot-v1", "takes 4 values, got 2");
    cx_env_free(a);
    FILE *f = tmpfile();
    cx_env_list(f);
    long n = ftell(f);
    rewind(f);
    char buf[2048] = {0};
    CHECK(fread(buf, 1, sizeof buf - 1, f) == (size_t)n);
    CHECK(strstr(buf, "Acrobot-v1") && strstr(buf, "MountainCar-v0") && strstr(buf, "Pendulum-v1"));
    fclose(f);
}

/* A vectorised Pendulum takes box actions; the episodes end by the limit. */
static void vectorised_pendulum(void) {
    cx_vec_env *v = cx_vec_env_make("pendulum:max_steps=20", 3, 7);
    CHECK(v != NULL);
    float obs[9], fin[9], rew[3], acts[3] = {-5, 0, 5};
    uint8_t term[3], trunc[3];
    cx_vec_env_reset(v, obs);
    int ends = 0;
    for (int t = 0; t < 40; t++) {
        cx_vec_env_step(v, NULL, acts, obs, rew, term, trunc, fin);
        for (int i = 0; i < 3; i++) {
            CHECK(rew[i] <= 0 && rew[i] >= -16.2736044f - 1e-4f && !term[i]);
            ends += trunc[i];
        }
    }
    CHECK(ends == 6);
    EXPECT_FATAL(cx_vec_env_step(v, NULL, NULL, obs, rew, term, trunc, fin), "box_actions");
    cx_vec_env_free(v);
}

int main(void) {
    const char *path = getenv("CX_RL_ENV_FIXTURE");
    if (!path) path = "tests/fixtures/rl/classic.safetensors";
    if (cx_st_load(path, &FX) != CX_OK)
        fprintf(stderr, "cannot load %s: %s (regenerate with /usr/bin/python3 tools/gen_rl_env_fixtures.py)\n", path,
                cx_last_error());
    if (FX) {
        RUN(cartpole_matches_gymnasium);
        RUN(acrobot_matches_gymnasium);
        RUN(mountaincar_matches_gymnasium);
        RUN(pendulum_matches_gymnasium);
    } else {
        cxt_failed++; /* a missing fixture file is a failure, not a skip */
    }
    RUN(spaces_and_limits);
    RUN(resets_sample_gymnasiums_ranges);
    RUN(observations_and_one_step_by_hand);
    RUN(snapshots_resume_exactly);
    RUN(renders);
    RUN(settings_and_errors_name_the_problem);
    RUN(vectorised_pendulum);
    cx_st_free(FX);
    TEST_END();
}
