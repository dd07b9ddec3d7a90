/* Tabular reinforcement learning on FrozenLake-v1 (cortex/tabular.h).
 *
 * For the 4x4 and the 8x8 map, slippery (gymnasium's default: the move goes
 * the intended way or either perpendicular way, 1/3 each) and not:
 *   - value iteration (Bellman optimality update, swept until the largest
 *     change is below 1e-12) and policy iteration (exact evaluation by a
 *     linear solve, greedy improvement), which must agree;
 *   - the optimal policy's success rate: the fraction of --eval episodes
 *     (within the time limit: 100 steps on 4x4, 200 on 8x8) that reach G;
 *   - Q-learning and SARSA (epsilon 1 -> 0.01 and alpha 0.1 -> 0.01 over
 *     the first half of the episodes), whose greedy policies are evaluated
 *     the same way.
 * Prints V* and the optimal policy as text grids (L D R U; H hole, G goal).
 * Writes a PNG (--out, default out/gridworld.png): V* of both slippery maps
 * as heatmaps on one colour scale, the optimal action of each cell drawn as
 * an arrow; and a GIF (--gif, default out/frozenlake.gif) of one episode of
 * the optimal policy on the slippery 4x4 map, plus its frames as a PNG
 * strip next to it (the same name, .png).
 *
 * Run (from the repository root):
 *   build/<variant>/examples/gridworld [--gamma 0.99] [--episodes 20000]
 *       [--episodes8 200000] [--eval 10000] [--seed 1] [--out PNG] [--gif GIF]
 * Exit status: 0 on success, 1 on a library error (message printed), 2 on a
 * bad flag.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

typedef struct {
    double gamma;
    long episodes4, episodes8, eval, seed;
    const char *out, *gif;
} config;

typedef struct {
    int n, nS; /* side, states */
    double V[64], Q[256];
    int pi[64];
    char map[64]; /* S F H G */
} solution;

static const char ACT[4] = {'L', 'D', 'R', 'U'};

static int fail(void) {
    fprintf(stderr, "gridworld: %s\n", cx_last_error());
    return 1;
}

/* The map's letters, read from the model: holes and the goal are the cells
 * whose transitions all stay put and are terminal; the goal is the one a
 * neighbour reaches with reward 1. */
static void read_map(cx_env *e, solution *s) {
    cx_transition t[4];
    for (int c = 0; c < s->nS; c++) s->map[c] = 'F';
    s->map[0] = 'S';
    for (int c = 0; c < s->nS; c++)
        for (int a = 0; a < 4; a++) {
            int k = cx_env_model(e, c, a, t, 4);
            for (int i = 0; i < k; i++)
                if (t[i].terminated && t[i].next_state != c) s->map[t[i].next_state] = t[i].reward > 0 ? 'G' : 'H';
        }
}

static void print_grids(const solution *s) {
    printf("  V*%*s  policy\n", s->n * 6 - 2, "");
    for (int r = 0; r < s->n; r++) {
        printf("  ");
        for (int c = 0; c < s->n; c++) printf("%5.3f ", s->V[r * s->n + c]);
        printf("  ");
        for (int c = 0; c < s->n; c++) {
            char m = s->map[r * s->n + c];
            printf("%c ", m == 'H' || m == 'G' ? m : ACT[s->pi[r * s->n + c]]);
        }
        printf("\n");
    }
}

/* One map: planning, then learning; prints and returns the solution. */
static int run_map(const config *cf, const char *spec, const char *title, long episodes, solution *s) {
    cx_env *e = cx_env_make(spec);
    if (!e) return fail();
    s->nS = cx_env_observation_space(e)->n;
    s->n = s->nS == 64 ? 8 : 4;
    read_map(e, s);
    double Vpi[64], Qpi[256];
    int pipi[64], it_vi, it_pi;
    double t0 = cx_now();
    if (cx_value_iteration(e, cf->gamma, 1e-12, 0, s->V, s->Q, s->pi, &it_vi)) return fail();
    double t1 = cx_now();
    if (cx_policy_iteration(e, cf->gamma, 0, Vpi, Qpi, pipi, &it_pi)) return fail();
    double t2 = cx_now(), diff = 0;
    for (int i = 0; i < s->nS; i++) diff = fmax(diff, fabs(s->V[i] - Vpi[i]));
    printf("== %s (%s), gamma %g\n", title, spec, cf->gamma);
    printf("value iteration:  %d sweeps, %.1f ms; V*(start) = %.6f\n", it_vi, 1e3 * (t1 - t0), s->V[0]);
    printf("policy iteration: %d improvements, %.1f ms; max |V_VI - V_PI| = %.1e\n", it_pi, 1e3 * (t2 - t1), diff);
    print_grids(s);
    double opt = cx_policy_mean_return(e, s->pi, (int)cf->eval, (uint64_t)cf->seed + 1000);
    cx_td_opts o = cx_td_defaults();
    o.episodes = (int)episodes;
    o.gamma = cf->gamma;
    o.alpha = 0.1;
    o.alpha_end = 0.01;
    o.seed = (uint64_t)cf->seed;
    double Q[256], rate[2], secs[2];
    int pi[64];
    for (int k = 0; k < 2; k++) {
        double a = cx_now();
        if ((k ? cx_sarsa(e, &o, Q) : cx_q_learning(e, &o, Q))) return fail();
        secs[k] = cx_now() - a;
        cx_q_greedy(Q, s->nS, 4, pi);
        rate[k] = cx_policy_mean_return(e, pi, (int)cf->eval, (uint64_t)cf->seed + 1000);
        int differ = 0;
        for (int c = 0; c < s->nS; c++) differ += s->map[c] != 'H' && s->map[c] != 'G' && s->Q[c * 4 + pi[c]] < s->V[c] - 1e-9;
        printf("%-10s %ld episodes (%.2f s): greedy policy succeeds %.3f; %d cells where it is not optimal\n",
               k ? "SARSA" : "Q-learning", episodes, secs[k], rate[k], differ);
    }
    printf("optimal policy succeeds %.3f (%ld episodes, <= %d steps)\n\n", opt, cf->eval, cx_env_max_steps(e));
    cx_env_free(e);
    return 0;
}

/* ------------------------------------------------------------ picture */

static void arrow(cx_canvas *c, int cx, int cy, int a, int len, const uint8_t col[3]) {
    static const int DX[4] = {-1, 0, 1, 0}, DY[4] = {0, 1, 0, -1};
    int x1 = cx + DX[a] * len, y1 = cy + DY[a] * len, x0 = cx - DX[a] * len, y0 = cy - DY[a] * len;
    int hd = len / 2 + 1; /* arrowhead: two strokes back from the tip */
    cx_canvas_line(c, x0, y0, x1, y1, col, 2);
    cx_canvas_line(c, x1, y1, x1 - DX[a] * hd + DY[a] * hd, y1 - DY[a] * hd + DX[a] * hd, col, 2);
    cx_canvas_line(c, x1, y1, x1 - DX[a] * hd - DY[a] * hd, y1 - DY[a] * hd - DX[a] * hd, col, 2);
}

/* V* as cells of `cell` px at (x, y), with arrows, letters and axes. */
static void panel(cx_canvas *c, int x, int y, int cell, const solution *s, const char *title) {
    const uint8_t black[3] = {0, 0, 0}, white[3] = {255, 255, 255};
    float v[64];
    for (int i = 0; i < s->nS; i++) v[i] = (float)s->V[i];
    cx_canvas_text(c, x, y - 34, title, 2, black);
    cx_canvas_image(c, x, y, v, s->n, s->n, cell, cell, 0.0f, 1.0f, CX_CMAP_VIRIDIS);
    for (int i = 0; i < s->nS; i++) {
        int cx = x + (i % s->n) * cell + cell / 2, cy = y + (i / s->n) * cell + cell / 2;
        const uint8_t *ink = v[i] > 0.6f ? black : white; /* readable on viridis */
        char m = s->map[i];
        if (m == 'H' || m == 'G') {
            char txt[2] = {m, 0};
            cx_canvas_text(c, cx - cx_text_width(txt, 2) / 2, cy - 7, txt, 2, white);
        } else {
            arrow(c, cx, cy, s->pi[i], cell / 4, ink);
        }
    }
    cx_canvas_rect(c, x - 1, y - 1, s->n * cell + 2, s->n * cell + 2, black, 1);
    char num[16];
    for (int k = 0; k < s->n; k++) {
        snprintf(num, sizeof num, "%d", k);
        cx_canvas_text(c, x + k * cell + cell / 2 - 3, y + s->n * cell + 6, num, 1, black);
        cx_canvas_text(c, x - 12, y + k * cell + cell / 2 - 3, num, 1, black);
    }
    cx_canvas_text(c, x + s->n * cell / 2 - cx_text_width("column", 2) / 2, y + s->n * cell + 20, "column", 2, black);
    cx_canvas_text_up(c, x - 34, y + s->n * cell / 2 - cx_text_width("row", 2) / 2, "row", 2, black);
}

static cx_status picture(const char *path, const solution *s4, const solution *s8, double gamma) {
    cx_canvas c;
    cx_status st = cx_canvas_init(&c, 760, 420, NULL);
    if (st) return st;
    const uint8_t black[3] = {0, 0, 0};
    char title[96];
    snprintf(title, sizeof title, "FrozenLake-v1, slippery: optimal V and policy (gamma %g)", gamma);
    cx_canvas_text(&c, 20, 14, title, 2, black);
    panel(&c, 60, 90, 64, s4, "4x4");
    panel(&c, 400, 90, 32, s8, "8x8");
    cx_canvas_text(&c, 680, 66, "V", 2, black);
    cx_canvas_colorbar(&c, 676, 90, 18, 256, 0.0f, 1.0f, CX_CMAP_VIRIDIS, 1);
    cx_canvas_text(&c, 60, 392, "arrows: the greedy action of value iteration, H hole, G goal (value 0: the episode ends)", 1, black);
    st = cx_canvas_save(&c, path);
    cx_canvas_free(&c);
    return st;
}

/* One episode of the policy as a GIF and a PNG strip of its frames. */
static cx_status record(const char *gif, const int *pi, uint64_t seed, int *steps, double *ret) {
    cx_env *e = cx_env_make("frozenlake");
    if (!e) return CX_ERR_INVALID;
    cx_env_seed(e, seed);
    float obs;
    cx_env_reset(e, &obs);
    int w, h;
    cx_env_render(e, &w, &h);
    enum { MAXF = 101 };
    uint8_t *frames[MAXF];
    int n = 0;
    cx_gif *g;
    cx_status st = cx_gif_open(&g, gif, w, h, 40);
    cx_step_result r = {0};
    *ret = 0;
    while (!st) {
        const uint8_t *f = cx_env_render(e, NULL, NULL);
        st = cx_gif_add(g, f);
        if (!st && n < MAXF && (frames[n] = malloc((size_t)w * h * 3))) memcpy(frames[n++], f, (size_t)w * h * 3);
        if (st || r.terminated || r.truncated) break;
        r = cx_env_step(e, pi[(int)obs], &obs);
        *ret += r.reward;
    }
    *steps = n - 1;
    if (st) cx_gif_abort(g);
    else st = cx_gif_close(g);
    if (!st) {
        char png[1024];
        snprintf(png, sizeof png, "%.*s.png", (int)(strlen(gif) > 4 && !strcmp(gif + strlen(gif) - 4, ".gif") ? strlen(gif) - 4 : strlen(gif)), gif);
        st = cx_png_write_strip(png, (const uint8_t *const *)frames, n, w, h, 10);
    }
    for (int i = 0; i < n; i++) free(frames[i]);
    cx_env_free(e);
    return st;
}

/* ------------------------------------------------------------ main */

static int usage(void) {
    fprintf(stderr, "usage: gridworld [--gamma G] [--episodes N] [--episodes8 N] [--eval N] [--seed S]\n"
                    "                 [--out PNG] [--gif GIF]\n");
    return 2;
}

static bool parse_long(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "gridworld: %s must be an integer in %ld..%ld (got '%s')\n", flag, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

int main(int argc, char **argv) {
    config cf = {0.99, 20000, 200000, 10000, 1, "out/gridworld.png", "out/frozenlake.gif"};
    bool default_out = true;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "gridworld: %s needs a value\n", a);
            return usage();
        }
        bool ok = true;
        if (!strcmp(a, "--episodes")) ok = parse_long(a, v, 1, 100000000, &cf.episodes4);
        else if (!strcmp(a, "--episodes8")) ok = parse_long(a, v, 1, 100000000, &cf.episodes8);
        else if (!strcmp(a, "--eval")) ok = parse_long(a, v, 1, 10000000, &cf.eval);
        else if (!strcmp(a, "--seed")) ok = parse_long(a, v, 0, 2147483647L, &cf.seed);
        else if (!strcmp(a, "--gamma")) {
            char *end;
            cf.gamma = strtod(v, &end);
            ok = end != v && !*end && cf.gamma > 0 && cf.gamma < 1;
            if (!ok) fprintf(stderr, "gridworld: --gamma must be a number in (0, 1) (got '%s')\n", v);
        } else if (!strcmp(a, "--out")) {
            cf.out = v;
            default_out = false;
        } else if (!strcmp(a, "--gif")) {
            cf.gif = v;
            default_out = false;
        } else {
            fprintf(stderr, "gridworld: unknown option %s\n", a);
            return usage();
        }
        if (!ok) return 2;
    }
    if (default_out) mkdir("out", 0777);

    solution s4, s8, d;
    if (run_map(&cf, "frozenlake", "FrozenLake 4x4, slippery", cf.episodes4, &s4)) return 1;
    if (run_map(&cf, "frozenlake:map=8x8", "FrozenLake 8x8, slippery", cf.episodes8, &s8)) return 1;
    if (run_map(&cf, "frozenlake:slippery=0", "FrozenLake 4x4, not slippery", cf.episodes4, &d)) return 1;
    printf("   (V*(start) = gamma^5 = %.6f: the shortest path takes 6 steps)\n\n", pow(cf.gamma, 5));
    if (run_map(&cf, "frozenlake:map=8x8,slippery=0", "FrozenLake 8x8, not slippery", cf.episodes4, &d)) return 1;
    printf("   (V*(start) = gamma^13 = %.6f: the shortest path takes 14 steps)\n\n", pow(cf.gamma, 13));

    if (picture(cf.out, &s4, &s8, cf.gamma)) return fail();
    printf("wrote %s\n", cf.out);
    int steps;
    double ret;
    if (record(cf.gif, s4.pi, (uint64_t)cf.seed, &steps, &ret)) return fail();
    printf("wrote %s and its frames as a PNG strip: one episode of the optimal policy, %d steps, return %g\n", cf.gif,
           steps, ret);
    return 0;
}
