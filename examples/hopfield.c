/* Hopfield network capacity: how many random patterns N binary units can
 * store and still recall from a corrupted probe.
 *
 * For P = 1 .. --pmax: store P random +-1 patterns of N units (--n) by Hebb's
 * rule (cx_hopfield_store: W = (1/N) sum_p x_p x_p^T, zero diagonal), then
 * probe every stored pattern with a copy in which exactly 20% of the units
 * (--noise) are flipped, and run asynchronous recall (cx_hopfield_recall:
 * units updated one at a time in a random order, s_i <- sign(h_i), until a
 * sweep changes nothing). A probe is "recalled" when the final state equals
 * the stored pattern exactly. Everything is repeated for --seeds seeds (new
 * patterns, probes and update orders each time) and averaged.
 *
 * Output, one row per P:
 *   P  P/N  recall  [min max]  overlap  sweeps
 * recall   fraction of the P x seeds probes recalled exactly;
 * [min max] the lowest and highest of that fraction over the seeds;
 * overlap  mean final overlap m = (1/N) sum_i s_i x_i with the pattern (a
 *          probe starts at m = 1 - 2 * noise = 0.6; 1 means recalled);
 * sweeps   mean number of sweeps recall took.
 * Then the largest P/N with recall >= 0.5 and >= 0.9, and a PNG (--out,
 * default out/hopfield.png): recall and overlap against P/N with the
 * theoretical capacity 0.138 marked, and a 10 x 20 picture (N = 200) of a
 * stored pattern, its probe and the recalled state below (P = 0.05 N) and
 * above (P = 0.2 N) capacity, units that differ from the pattern in red.
 *
 * Measured with the defaults (N = 200, 5 seeds): every probe recalled up to
 * P/N = 0.065, recall >= 0.9 up to 0.095, 0.49-0.52 at 0.125-0.13, 0.40 at
 * 0.14, 0.11 at 0.16 and at most 0.03 from 0.19 on, while the mean final
 * overlap falls from 1 to about 0.87 at 0.14 and 0.4 at 0.25: the collapse
 * near 0.14 N of the Amit-Gutfreund-Sompolinsky analysis (0.138 is where the
 * patterns stop being near-fixed points for N -> infinity; demanding an
 * exact recall at N = 200 makes the curve fall a little earlier).
 *
 * Run (from the repository root):
 *   build/<variant>/examples/hopfield [--n 200] [--pmax 60] [--seeds 5]
 *       [--seed 1] [--noise 0.2] [--max-sweeps 100] [--out out/hopfield.png]
 * Takes a few seconds with the defaults (one thread).
 * Exit status: 0 on success, 1 if the library reports an error or the PNG
 * cannot be written, 2 on a bad flag.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

#define CAPACITY 0.138 /* Amit, Gutfreund & Sompolinsky (1985) */

typedef struct {
    int n, pmax, seeds, max_sweeps;
    unsigned long seed;
    double noise;
} config;

typedef struct {
    double recall, rmin, rmax, overlap, sweeps;
} row;

static void random_patterns(int8_t *X, long count, cx_rng *rng) {
    for (long k = 0; k < count; k++) X[k] = (cx_rng_u32(rng) & 1u) ? 1 : -1;
}

/* out = x with exactly `flips` distinct random units flipped (idx: scratch [n]). */
static void corrupt(int8_t *out, const int8_t *x, int n, int flips, int *idx, cx_rng *rng) {
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int k = 0; k < flips; k++) {
        int j = k + (int)cx_rng_below(rng, (uint32_t)(n - k));
        int t = idx[k];
        idx[k] = idx[j];
        idx[j] = t;
    }
    memcpy(out, x, (size_t)n);
    for (int k = 0; k < flips; k++) out[idx[k]] = (int8_t)-out[idx[k]];
}

/* One network: store P patterns from rng, probe each; sums into *ok, *m, *sw.
 * When demo is set, the first pattern, its probe and its recall go there. */
static cx_status run_one(const config *c, int P, cx_rng *rng, int *ok, double *m, double *sw, int8_t *demo) {
    int n = c->n, flips = (int)lround(c->noise * n);
    int8_t *X = malloc((size_t)P * n), *s = malloc((size_t)n);
    int *idx = malloc((size_t)n * sizeof *idx);
    cx_hopfield *h = cx_hopfield_new(n);
    cx_status st = (X && s && idx) ? CX_OK : cx_set_error(CX_ERR_NOMEM, "hopfield: out of memory");
    if (st == CX_OK && !h) st = CX_ERR_ARG;
    if (st == CX_OK) {
        random_patterns(X, (long)P * n, rng);
        st = cx_hopfield_store(h, X, P, n);
    }
    cx_hopfield_opts o = cx_hopfield_defaults();
    o.rng = rng;
    o.max_sweeps = c->max_sweeps;
    for (int p = 0; p < P && st == CX_OK; p++) {
        const int8_t *x = X + (size_t)p * n;
        corrupt(s, x, n, flips, idx, rng);
        if (demo && p == 0) {
            memcpy(demo, x, (size_t)n);
            memcpy(demo + n, s, (size_t)n);
        }
        cx_hopfield_result r;
        st = cx_hopfield_recall(h, s, n, &o, &r);
        if (st != CX_OK) break;
        double q = cx_hopfield_overlap(s, x, n);
        *m += q;
        *sw += r.sweeps;
        if (q == 1.0) (*ok)++;
        if (demo && p == 0) memcpy(demo + 2 * n, s, (size_t)n);
    }
    cx_hopfield_free(h);
    free(X);
    free(s);
    free(idx);
    return st;
}

/* ------------------------------------------------------------ picture */
static const uint8_t WHITE[3] = {255, 255, 255}, BLACK[3] = {0, 0, 0}, AXIS[3] = {40, 40, 40},
                     GRID[3] = {225, 225, 225}, BLUE[3] = {31, 100, 200}, ORANGE[3] = {230, 120, 20},
                     RED[3] = {215, 30, 30}, GREY[3] = {110, 110, 110};

/* Recall and overlap against P/N: axes, ticks, grid, capacity marker. */
static void chart(cx_canvas *c, int px, int py, int pw, int ph, const config *cf, const row *rows) {
    const int ml = 70, mr = 20, mt = 50, mb = 60;
    int ax = px + ml, ay = py + mt, aw = pw - ml - mr, ah = ph - mt - mb;
    double xhi = (double)cf->pmax / cf->n, xstep = cx_plot_tick_step(xhi, 6);
    xhi = ceil(xhi / xstep - 1e-9) * xstep;
#define MAPX(v) (ax + (int)lround((v) / xhi * (aw - 1)))
#define MAPY(v) (ay + ah - 1 - (int)lround((v) * (ah - 1)))
    char buf[64];
    double ystep = 0.2;
    int ydec = cx_plot_tick_decimals(ystep), xdec = cx_plot_tick_decimals(xstep);
    for (int k = 0; k <= 5; k++) {
        double v = k * ystep;
        int y = MAPY(v);
        cx_canvas_fill(c, ax, y, aw, 1, GRID);
        cx_canvas_fill(c, ax - 5, y, 5, 1, AXIS);
        snprintf(buf, sizeof buf, "%.*f", ydec, v);
        cx_canvas_text(c, ax - 9 - cx_text_width(buf, 2), y - 7, buf, 2, AXIS);
    }
    for (int k = 0; k * xstep <= xhi + 1e-9; k++) {
        double v = k * xstep;
        int x = MAPX(v);
        cx_canvas_fill(c, x, ay, 1, ah, GRID);
        cx_canvas_fill(c, x, ay + ah, 1, 5, AXIS);
        snprintf(buf, sizeof buf, "%.*f", xdec, v);
        cx_canvas_text(c, x - cx_text_width(buf, 2) / 2, ay + ah + 10, buf, 2, AXIS);
    }
    cx_canvas_fill(c, ax - 1, ay, 1, ah + 1, AXIS);
    cx_canvas_fill(c, ax - 1, ay + ah, aw + 1, 1, AXIS);
    const char *xl = "stored patterns per unit, P / N";
    cx_canvas_text(c, ax + aw / 2 - cx_text_width(xl, 2) / 2, ay + ah + 34, xl, 2, BLACK);
    const char *yl = "fraction";
    cx_canvas_text_up(c, px + 8, ay + ah / 2 - cx_text_width(yl, 2) / 2, yl, 2, BLACK);
    snprintf(buf, sizeof buf, "Hopfield recall, N = %d, %d%% flipped, %d seed%s", cf->n,
             (int)lround(cf->noise * 100), cf->seeds, cf->seeds == 1 ? "" : "s");
    cx_canvas_text(c, ax, py + 10, buf, 2, BLACK);
    /* capacity marker: dashed vertical line */
    if (CAPACITY <= xhi) {
        int x = MAPX(CAPACITY);
        for (int y = ay; y < ay + ah; y += 10) cx_canvas_fill(c, x - 1, y, 2, 6, RED);
        cx_canvas_text(c, x + 6, ay + 6, "0.138", 2, RED);
        cx_canvas_text(c, x + 6, ay + 24, "capacity", 2, RED);
    }
    /* series */
    for (int k = 0; k < 2; k++) {
        const uint8_t *col = k ? ORANGE : BLUE;
        int prevx = 0, prevy = 0;
        for (int P = 1; P <= cf->pmax; P++) {
            double v = k ? rows[P].overlap : rows[P].recall;
            int X = MAPX((double)P / cf->n), Y = MAPY(v);
            if (P > 1) cx_canvas_line(c, prevx, prevy, X, Y, col, 2);
            if (cf->pmax <= 80) cx_canvas_fill(c, X - 2, Y - 2, 5, 5, col);
            prevx = X;
            prevy = Y;
        }
    }
    /* legend, bottom left of the plot area */
    const char *names[2] = {"recalled exactly", "mean final overlap"};
    for (int k = 0; k < 2; k++) {
        int ly = ay + ah - 44 + 20 * k;
        cx_canvas_fill(c, ax + 12, ly + 5, 22, 3, k ? ORANGE : BLUE);
        cx_canvas_text(c, ax + 42, ly, names[k], 2, BLACK);
    }
#undef MAPX
#undef MAPY
}

/* pattern | probe | recalled as rows x cols images, units differing from the
 * pattern in red. */
static void demo_row(cx_canvas *c, int x, int y, const int8_t *d, int n, int rows, int cols, int cell,
                     const char *label) {
    static const char *heads[3] = {"stored", "probe", "recalled"};
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return;
    cx_canvas_text(c, x, y, label, 2, BLACK);
    int iw = cols * cell, gap = 16;
    for (int k = 0; k < 3; k++) {
        int ix = x + k * (iw + gap), iy = y + 44;
        const int8_t *s = d + (size_t)k * n;
        int wrong = 0;
        for (int i = 0; i < n; i++) v[i] = s[i];
        cx_canvas_image(c, ix, iy, v, rows, cols, cell, cell, -1.0f, 1.0f, CX_CMAP_GRAY);
        for (int i = 0; i < n; i++)
            if (s[i] != d[i]) {
                cx_canvas_fill(c, ix + (i % cols) * cell, iy + (i / cols) * cell, cell, cell, RED);
                wrong++;
            }
        cx_canvas_rect(c, ix - 1, iy - 1, iw + 2, rows * cell + 2, GREY, 1);
        char buf[48];
        cx_canvas_text(c, ix, y + 24, heads[k], 2, AXIS);
        snprintf(buf, sizeof buf, "%d wrong", wrong);
        if (k) cx_canvas_text(c, ix, iy + rows * cell + 8, buf, 2, k == 2 && wrong ? RED : AXIS);
    }
    free(v);
}

static int write_png(const char *path, const config *cf, const row *rows, const int8_t *lo_demo, int p_lo,
                     const int8_t *hi_demo, int p_hi) {
    /* demo grid: rows x cols = n with rows the largest divisor <= sqrt(n) */
    int gr = 1;
    for (int r = 1; r * r <= cf->n; r++)
        if (cf->n % r == 0) gr = r;
    int gc = cf->n / gr, cell = 7;
    while (cell > 1 && (3 * gc * cell + 32 > 450 || 2 * gr * cell > 300)) cell--;
    bool demo = gr >= 2 && 3 * gc * cell + 32 <= 450 && 2 * gr * cell <= 300;
    int W = demo ? 1240 : 760, H = 600;
    cx_canvas c;
    if (cx_canvas_init(&c, W, H, WHITE) != CX_OK) {
        fprintf(stderr, "hopfield: %s\n", cx_last_error());
        return 1;
    }
    chart(&c, 0, 0, 760, H, cf, rows);
    if (demo) {
        char buf[80];
        int x = 775, y = 60, blk = 44 + gr * cell + 80;
        cx_canvas_text(&c, x, 10, "one probe, recalled", 2, BLACK);
        snprintf(buf, sizeof buf, "P = %d (%.3f N): below", p_lo, (double)p_lo / cf->n);
        demo_row(&c, x, y, lo_demo, cf->n, gr, gc, cell, buf);
        snprintf(buf, sizeof buf, "P = %d (%.3f N): above", p_hi, (double)p_hi / cf->n);
        demo_row(&c, x, y + blk, hi_demo, cf->n, gr, gc, cell, buf);
        cx_canvas_text(&c, x, y + 2 * blk, "red: differs from the", 2, RED);
        cx_canvas_text(&c, x, y + 2 * blk + 20, "stored pattern", 2, RED);
    }
    int rc = 0;
    if (cx_canvas_save(&c, path) != CX_OK) {
        fprintf(stderr, "hopfield: cannot write %s: %s\n", path, cx_last_error());
        rc = 1;
    }
    cx_canvas_free(&c);
    return rc;
}

/* ------------------------------------------------------------ main */
static int usage(void) {
    fprintf(stderr, "usage: hopfield [--n N] [--pmax P] [--seeds S] [--seed S] [--noise F] [--max-sweeps M]\n"
                    "                [--out PNG]\n");
    return 2;
}

/* Whole-string integer in [lo, hi]; false (with a one-line message) otherwise. */
static bool parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "hopfield: %s must be an integer in %ld..%ld (got '%s')\n", flag, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

int main(int argc, char **argv) {
    config cf = {200, 60, 5, 100, 1, 0.2};
    const char *png = "out/hopfield.png";
    bool default_out = true;
    for (int i = 1; i < argc; i += 2) { /* --flag value pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "hopfield: %s needs a value\n", a);
            return usage();
        }
        if (!strcmp(a, "--n")) {
            if (!parse_int(a, v, 2, CX_HOPFIELD_MAX_N, &x)) return 2;
            cf.n = (int)x;
        } else if (!strcmp(a, "--pmax")) {
            if (!parse_int(a, v, 1, 100000, &x)) return 2;
            cf.pmax = (int)x;
        } else if (!strcmp(a, "--seeds")) {
            if (!parse_int(a, v, 1, 1000, &x)) return 2;
            cf.seeds = (int)x;
        } else if (!strcmp(a, "--seed")) {
            if (!parse_int(a, v, 0, 2147483647L, &x)) return 2;
            cf.seed = (unsigned long)x;
        } else if (!strcmp(a, "--max-sweeps")) {
            if (!parse_int(a, v, 1, 1000000, &x)) return 2;
            cf.max_sweeps = (int)x;
        } else if (!strcmp(a, "--noise")) {
            char *end;
            double f = strtod(v, &end);
            if (end == v || *end || !(f >= 0.0 && f <= 0.5)) {
                fprintf(stderr, "hopfield: --noise must be a number in 0..0.5 (got '%s')\n", v);
                return 2;
            }
            cf.noise = f;
        } else if (!strcmp(a, "--out")) {
            png = v;
            default_out = false;
        } else {
            fprintf(stderr, "hopfield: unknown option %s\n", a);
            return usage();
        }
    }

    row *rows = calloc((size_t)cf.pmax + 1, sizeof *rows);
    int8_t *lo_demo = malloc((size_t)3 * cf.n), *hi_demo = malloc((size_t)3 * cf.n);
    if (!rows || !lo_demo || !hi_demo) {
        fprintf(stderr, "hopfield: out of memory\n");
        return 1;
    }
    int p_lo = (int)lround(0.05 * cf.n), p_hi = (int)lround(0.2 * cf.n);
    if (p_lo < 1) p_lo = 1;
    if (p_hi <= p_lo) p_hi = p_lo + 1;
    printf("Hopfield capacity: N = %d, P = 1..%d, %.0f%% of the bits flipped, %d seeds from %lu\n", cf.n, cf.pmax,
           cf.noise * 100, cf.seeds, cf.seed);
    printf("%5s %7s %7s %15s %8s %7s\n", "P", "P/N", "recall", "[min max]", "overlap", "sweeps");
    double p50 = 0, p90 = 0;
    bool below50 = false, below90 = false;
    for (int P = 1; P <= cf.pmax; P++) {
        int total_ok = 0;
        double m = 0, sw = 0, rmin = 1, rmax = 0;
        for (int k = 0; k < cf.seeds; k++) {
            /* one stream per (seed, P): rows do not depend on --pmax */
            cx_rng rng = cx_rng_new((uint64_t)(cf.seed + (unsigned long)k) * 1000003ull + (uint64_t)P);
            int ok = 0;
            cx_status st = run_one(&cf, P, &rng, &ok, &m, &sw, k == 0 && P == p_lo ? lo_demo : NULL);
            if (st != CX_OK) {
                fprintf(stderr, "hopfield: %s\n", cx_last_error());
                return 1;
            }
            double r = (double)ok / P;
            if (r < rmin) rmin = r;
            if (r > rmax) rmax = r;
            total_ok += ok;
        }
        double probes = (double)P * cf.seeds;
        row *r = &rows[P];
        r->recall = total_ok / probes;
        r->rmin = rmin;
        r->rmax = rmax;
        r->overlap = m / probes;
        r->sweeps = sw / probes;
        if (!below50 && r->recall >= 0.5) p50 = (double)P / cf.n;
        if (!below90 && r->recall >= 0.9) p90 = (double)P / cf.n;
        if (r->recall < 0.5) below50 = true;
        if (r->recall < 0.9) below90 = true;
        char mm[32];
        snprintf(mm, sizeof mm, "[%.2f %.2f]", rmin, rmax);
        printf("%5d %7.3f %7.3f %15s %8.4f %7.2f\n", P, (double)P / cf.n, r->recall, mm, r->overlap, r->sweeps);
    }
    printf("recall >= 0.9 up to P/N = %.3f, >= 0.5 up to P/N = %.3f (theory: capacity 0.138)\n", p90, p50);

    /* the demo above capacity (p_hi may be beyond --pmax) */
    int rc = 0;
    if (p_lo > cf.pmax) {
        cx_rng rng = cx_rng_new((uint64_t)cf.seed * 1000003ull + (uint64_t)p_lo);
        int ok = 0;
        double m = 0, sw = 0;
        if (run_one(&cf, p_lo, &rng, &ok, &m, &sw, lo_demo) != CX_OK) rc = 1;
    }
    {
        cx_rng rng = cx_rng_new((uint64_t)cf.seed * 1000003ull + (uint64_t)p_hi);
        int ok = 0;
        double m = 0, sw = 0;
        if (run_one(&cf, p_hi, &rng, &ok, &m, &sw, hi_demo) != CX_OK) rc = 1;
    }
    if (rc) {
        fprintf(stderr, "hopfield: %s\n", cx_last_error());
    } else {
        if (default_out) mkdir("out", 0777);
        rc = write_png(png, &cf, rows, lo_demo, p_lo, hi_demo, p_hi);
        if (!rc) printf("wrote %s\n", png);
    }
    free(rows);
    free(lo_demo);
    free(hi_demo);
    return rc;
}
