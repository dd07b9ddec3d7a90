/* cortex viz -- pictures of a network and its training:
 *   filters  the weights of a convolution layer as a grid of tiles
 *   maps     one test image and the feature maps after every 2-D convolution
 *   curves   loss and accuracy per epoch from the metrics CSV of cortex train
 * Everything is drawn on an RGB canvas in memory (nearest-neighbour tiles,
 * Bresenham lines, the library's 5x7 bitmap font) and saved with cx_png_write_rgb. */
#include "cli.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cmd_viz(int argc, char **argv);

/* ---------------------------------------------------------------- canvas */
typedef struct {
    uint8_t r, g, b;
} rgb;

static const rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GRID = {228, 228, 228}, AXIS = {40, 40, 40};
static const rgb GAP = {72, 84, 120};                                 /* between tiles */
static const rgb TRAIN = {31, 119, 180}, VAL = {255, 127, 14};       /* curve colours */
static const rgb BAD = {255, 0, 255};                                 /* non-finite values */

/* The library's canvas (cortex/plot.h); thin adaptors taking colours by value. */
typedef cx_canvas canvas;
#define MAX_SIDE 8192 /* pictures larger than this are refused with a message */
#define RGB3(col) ((const uint8_t[3]){(col).r, (col).g, (col).b})

/* Returns false (and prints nothing) when the size is out of range or memory is short. */
static bool canvas_init(canvas *c, int w, int h, rgb bg) { return cx_canvas_init(c, w, h, RGB3(bg)) == CX_OK; }

static void fill_rect(canvas *c, int x, int y, int w, int h, rgb col) { cx_canvas_fill(c, x, y, w, h, RGB3(col)); }

/* Line from (x0,y0) to (x1,y1), each point a thick x thick square. */
static void draw_line(canvas *c, int x0, int y0, int x1, int y1, rgb col, int thick) {
    cx_canvas_line(c, x0, y0, x1, y1, RGB3(col), thick);
}

static int text_width(const char *s, int scale) { return cx_text_width(s, scale); }

/* Draw `s` with its top-left corner at (x, y); every font pixel a scale x scale square. */
static void draw_text(canvas *c, int x, int y, const char *s, int scale, rgb col) {
    cx_canvas_text(c, x, y, s, scale, RGB3(col));
}

/* ---------------------------------------------------------------- tiles */
static uint8_t to_byte(float v, float lo, float hi) {
    if (!(hi > lo)) return 128; /* constant tile: mid grey */
    float t = (v - lo) / (hi - lo) * 255.0f + 0.5f;
    return (uint8_t)(t < 0 ? 0 : t > 255 ? 255 : t);
}

/* An h x w plane v[y * w + x] at (x0, y0), each value an s x s square, grey
 * from the plane's own min (black) to max (white); non-finite values magenta. */
static void tile_gray(canvas *c, int x0, int y0, const float *v, int h, int w, int s) {
    cx_canvas_image(c, x0, y0, v, h, w, s, s, 0, 0, CX_CMAP_GRAY);
}

/* Three planes (red, green, blue; `plane` values apart) normalised together
 * to lo..hi, or (lo >= hi) to their joint min..max, so the balance between
 * the colours is kept. */
static void tile_rgb(canvas *c, int x0, int y0, const float *v, long plane, int h, int w, int s, float lo, float hi) {
    if (!(hi > lo)) {
        bool any = false;
        for (int ch = 0; ch < 3; ch++) {
            float l = 0, u = 0;
            if (!cx_finite_range(v + ch * plane, (long)h * w, &l, &u)) continue;
            if (!any || l < lo) lo = l;
            if (!any || u > hi) hi = u;
            any = true;
        }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            long i = (long)y * w + x;
            float r = v[i], g = v[plane + i], b = v[2 * plane + i];
            rgb col = BAD;
            if (isfinite(r) && isfinite(g) && isfinite(b)) col = (rgb){to_byte(r, lo, hi), to_byte(g, lo, hi), to_byte(b, lo, hi)};
            fill_rect(c, x0 + x * s, y0 + y * s, s, s, col);
        }
}

/* ---------------------------------------------------------------- helpers */
static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* A .net file (random initial weights) or a model saved by cortex train. */
static bool load_model(const char *cmd, const char *path, const char *netfile, cli_model *m) {
    cx_status st = ends_with(path, ".net") ? cli_model_from_netfile(path, m) : cli_model_load_net(path, netfile, m);
    if (st) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return false;
    }
    /* a picture of NaN weights is still a picture: warn */
    if (cli_model_check_finite(m, path)) fprintf(stderr, "cortex %s: warning: %s\n", cmd, cx_last_error());
    return true;
}

static bool is_conv(const cx_layer_info *li) { return !strncmp(li->desc, "Conv", 4); }

/* "conv1, conv2" (the convolution layers, for messages), or "none". */
static void conv_names(const cx_module *net, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < cx_net_num_layers(net) && k < n; i++) {
        const cx_layer_info *li = cx_net_layer(net, i);
        if (is_conv(li)) k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? ", " : "", li->name);
    }
    if (!buf[0]) snprintf(buf, n, "none");
}

static bool save_png(const char *cmd, const char *path, const canvas *c) {
    if (cx_png_write_rgb(path, c->pixels, c->width, c->height)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return false;
    }
    return true;
}

static bool need_out(const char *cmd, const char *out) {
    if (out && *out) return true;
    fprintf(stderr, "cortex %s: --out FILE.png is required\n", cmd);
    return false;
}

/* ---------------------------------------------------------------- filters */
static int viz_filters(int argc, char **argv) {
    const char *cmd = "viz filters";
    cli_flag f[] = {
        {"layer", "convolution layer to draw (default: the first one)", false, NULL},
        {"net", "network (.net file) of a MODEL without Cortex metadata, e.g. a PyTorch state_dict", false, NULL},
        {"out", "PNG file to write", false, "filters.png"},
        {"scale", "pixels per weight (reduced if the grid would exceed 4096 pixels)", false, "8"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos, scale = 8;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL [--layer NAME] [--out filters.png]",
                  "Draw the filters of a convolution layer of MODEL (a model saved by 'cortex train\n"
                  "--model X.net', or a .net file: random initial weights) as a grid of tiles, under\n"
                  "a title (the layer and its sizes) and beside a colour scale. Each tile is one\n"
                  "kernel [kh, kw], upscaled by --scale with nearest neighbour; every weight of the\n"
                  "layer has the same colour scale, blue (negative) - white (0) - red (positive),\n"
                  "symmetric around 0 (the largest |weight| at either end).\n"
                  "Filters with 1 input channel: one tile per filter, its index above it, in a grid\n"
                  "of ceil(sqrt(filters)) columns. 3 input channels: the same with RGB tiles (the\n"
                  "channels as red, green, blue; the scale gives each channel's intensity). Otherwise\n"
                  "one row per filter (output channel, numbered on the left) holding its input\n"
                  "channels side by side (numbered on top). 1-D kernels are strips one weight high,\n"
                  "3-D kernels their depth slices stacked vertically. Tiles are 6 pixels apart.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one MODEL (a saved model or a .net file)\n", cmd);
        return 2;
    }
    if (!cli_int(cmd, f, nf, "scale", 1, 64, &scale)) return 2;
    const char *out = cli_get(f, nf, "out"), *want = cli_get(f, nf, "layer");
    if (!need_out(cmd, out)) return 2;
    cli_model m;
    if (!load_model(cmd, pos[0], cli_get(f, nf, "net"), &m)) return 1;
    int rc = 1;
    cx_params ps;
    cx_params_init(&ps);
    canvas c = {0, 0, NULL};
    char names[512];
    if (!m.is_netdef) {
        fprintf(stderr, "cortex %s: %s is an MLP: it has no convolution layer\n", cmd, pos[0]);
        goto done;
    }
    conv_names(m.net, names, sizeof names);
    const cx_layer_info *li = NULL;
    for (int i = 0; i < cx_net_num_layers(m.net) && !li; i++) {
        const cx_layer_info *l = cx_net_layer(m.net, i);
        if (want ? !strcmp(l->name, want) : is_conv(l)) li = l;
    }
    if (!li) {
        if (want) fprintf(stderr, "cortex %s: %s has no layer named '%s' (convolution layers: %s)\n", cmd, pos[0], want, names);
        else fprintf(stderr, "cortex %s: %s has no convolution layer\n", cmd, pos[0]);
        goto done;
    }
    if (!is_conv(li)) {
        fprintf(stderr, "cortex %s: layer '%s' is %s, not a convolution (convolution layers: %s)\n", cmd, li->name,
                li->desc, names);
        goto done;
    }
    char wname[64];
    snprintf(wname, sizeof wname, "%s.weight", li->name);
    cx_module_params(m.net, &ps);
    const cx_tensor *w = cx_params_find(&ps, wname);
    if (!w || w->ndim < 3) {
        fprintf(stderr, "cortex %s: layer '%s' has no convolution weight '%s'\n", cmd, li->name, wname);
        goto done;
    }
    int nout = w->shape[0], nin = w->shape[1], kw = w->shape[w->ndim - 1], kh = 1;
    for (int d = 2; d < w->ndim - 1; d++) kh *= w->shape[d];
    long plane = (long)kh * kw;
    bool rgbmode = nin == 3, grid = nin == 1 || nin == 3;
    int cols, rows;
    if (grid) {
        cols = (int)ceil(sqrt((double)nout));
        if ((long)cols * cols < nout) cols++;
        rows = (nout + cols - 1) / cols;
    } else {
        cols = nin;
        rows = nout;
    }
    int s = scale;
    while (s > 1 && ((long)cols * (kw * s + 6) > 4096 || (long)rows * (kh * s + 6) > 4096)) s--;
    const float *wd = CX_F(w);
    /* one colour scale for the whole layer: symmetric around 0 */
    float lo = 0, hi = 0, wm = 0;
    if (cx_finite_range(wd, (long)w->numel, &lo, &hi)) wm = fmaxf(fabsf(lo), fabsf(hi));
    if (!(wm > 0)) wm = 1;
    /* layout (see --help) */
    const int P = 12, G = 6, ts = 2;
    int tw = kw * s, th = kh * s, ls = tw >= 24 ? 2 : 1;
    char title[160], sub[200], sb[96], num[16];
    snprintf(title, sizeof title, "%s: %s", li->name, li->desc);
    size_t k = (size_t)snprintf(sb, sizeof sb, "%d", w->shape[0]);
    for (int d = 1; d < w->ndim && k < sizeof sb; d++) k += (size_t)snprintf(sb + k, sizeof sb - k, "x%d", w->shape[d]);
    snprintf(sub, sizeof sub, "weights %s, %s", sb,
             rgbmode ? "one tile per filter, input channels 0 1 2 as red green blue"
             : grid  ? "one tile per filter (output channel)"
                     : "rows: filters (output channels), columns: input channels");
    snprintf(num, sizeof num, "%d", nout - 1);
    int lh = 7 * ls + 3;                                  /* index label above a tile */
    int rl = grid ? 0 : 7 * ts + 6 + text_width(num, ls) + 4;  /* matrix: "filter" turned up, row numbers */
    int hdr = P + 7 * ts + 6 + 7; /* below the title and the subtitle */
    snprintf(num, sizeof num, "%d", grid ? nout - 1 : nin - 1);
    int cw = (tw > text_width(num, ls) ? tw : text_width(num, ls)) + G, ch = lh + th + G;
    if (!grid) ch = th + G;
    long GW = (long)cols * cw - G, GH = (long)rows * ch - G;
    /* the grid starts below a line for "weight" (over the colour scale) or
     * "input channel", and the column numbers of a matrix */
    int gx = P + rl, gy = hdr + 8 + 7 * ts + 4 + (grid ? 0 : lh), bar_h = GH > 180 ? (int)GH : 180;
    long W = gx + GW + 24 + 14 + 200 + text_width("input channel", ts), H = gy + (GH > bar_h ? GH : bar_h) + P;
    if (W < P + text_width(title, ts) + P) W = P + text_width(title, ts) + P;
    if (W < P + text_width(sub, 1) + P) W = P + text_width(sub, 1) + P;
    if (W > MAX_SIDE || H > MAX_SIDE || !canvas_init(&c, (int)W, (int)H, WHITE)) {
        fprintf(stderr, "cortex %s: layer '%s' has too many filters to draw (%d x %d tiles of %dx%d)\n", cmd, li->name,
                rows, cols, kh, kw);
        goto done;
    }
    draw_text(&c, P, P, title, ts, BLACK);
    draw_text(&c, P, P + 7 * ts + 6, sub, 1, AXIS);
    if (!grid) {
        draw_text(&c, gx, hdr + 8, "input channel", ts, AXIS);
        cx_canvas_text_up(&c, P, gy, "filter", ts, RGB3(AXIS));
    }
    int ntiles = grid ? nout : nout * nin;
    for (int t = 0; t < ntiles; t++) {
        int r = t / cols, q = t % cols;
        int x0 = gx + q * cw, y0 = gy + r * ch + (grid ? lh : 0);
        cx_canvas_rect(&c, x0 - 1, y0 - 1, tw + 2, th + 2, RGB3(GAP), 1);
        if (rgbmode) tile_rgb(&c, x0, y0, wd + (long)t * 3 * plane, plane, kh, kw, s, -wm, wm);
        else cx_canvas_image(&c, x0, y0, wd + (long)t * plane, kh, kw, s, s, -wm, wm, CX_CMAP_DIVERGING);
        if (grid) { /* filter index above its tile */
            snprintf(num, sizeof num, "%d", t);
            draw_text(&c, x0, y0 - lh, num, ls, BLACK);
        } else if (r == 0) { /* input channel above its column */
            snprintf(num, sizeof num, "%d", q);
            draw_text(&c, x0, gy - lh, num, ls, BLACK);
        }
        if (!grid && q == 0) { /* filter index left of its row */
            snprintf(num, sizeof num, "%d", r);
            draw_text(&c, gx - 4 - text_width(num, ls), y0 + (th - 7 * ls) / 2, num, ls, BLACK);
        }
    }
    /* colour scale: weight value (RGB tiles: the intensity of each channel) */
    int bx = gx + (int)GW + 24;
    if (!grid && bx < gx + text_width("input channel", ts) + 16) bx = gx + text_width("input channel", ts) + 16;
    draw_text(&c, bx, gy - 7 * ts - 4, "weight", ts, AXIS);
    int used = cx_canvas_colorbar(&c, bx, gy, 14, bar_h, -wm, wm, rgbmode ? CX_CMAP_GRAY : CX_CMAP_DIVERGING, ts);
    long need_w = bx + (used > text_width("weight", ts) ? used : text_width("weight", ts)) + P;
    if (need_w < P + text_width(title, ts) + P) need_w = P + text_width(title, ts) + P;
    if (need_w < P + text_width(sub, 1) + P) need_w = P + text_width(sub, 1) + P;
    {   /* crop (or widen) to the width used */
        canvas fit = {0, 0, NULL};
        if (!canvas_init(&fit, (int)need_w, c.height, WHITE)) {
            fprintf(stderr, "cortex %s: out of memory\n", cmd);
            goto done;
        }
        cx_canvas_paste(&fit, 0, 0, &c);
        cx_canvas_free(&c);
        c = fit;
    }
    if (!save_png(cmd, out, &c)) goto done;
    printf("%s: %s weight %s -> %s (%dx%d, %d pixels per weight)\n", li->name, li->desc, cx_shape_str(w, sb, sizeof sb),
           out, c.width, c.height, s);
    rc = 0;
done:
    cx_canvas_free(&c);
    cx_params_free(&ps);
    cli_model_free(&m);
    return rc;
}

/* ---------------------------------------------------------------- maps */
typedef struct {
    char label[64];
    const float *v;   /* [C, H, W] */
    int C, H, W;
    bool rgb;         /* one RGB tile instead of C grey tiles */
    int s;            /* pixels per value */
    int per_line, lines;
} map_row;

static int viz_maps(int argc, char **argv) {
    const char *cmd = "viz maps";
    cli_flag f[] = {
        {"data", "directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]", false, NULL},
        {"net", "network (.net file) of a MODEL without Cortex metadata, e.g. a PyTorch state_dict", false, NULL},
        {"index", "which test image", false, "0"},
        {"out", "PNG file to write", false, "maps.png"},
        {"size", "tile size in pixels a map is scaled up to (integer factor, at least 1)", false, "56"},
        {"cols", "tiles per line; a layer with more channels wraps onto further lines", false, "16"},
        {"classes", "class names: auto (Fashion-MNIST's for a fashion data directory), fashion, none or a file "
                    "(one name per line)", false, "auto"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos, index = 0, size = 56, maxcols = 16;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL --data DIR [--index I] [--out maps.png]",
                  "Run test image I of DIR through MODEL (a saved model or a .net file) and draw\n"
                  "the input and the output of every 2-D convolution layer (before its activation):\n"
                  "one block of tiles per layer, labelled with the layer name, one tile per channel,\n"
                  "each normalised to its own min (black) .. max (white). A 3-channel input is drawn\n"
                  "as one RGB tile. Maps are scaled up by the integer factor ceil(size / side).\n"
                  "A title line names the image, its label and the network's prediction (the\n"
                  "largest output), with class names when they are known (--classes).",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one MODEL (a saved model or a .net file)\n", cmd);
        return 2;
    }
    const char *dir = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out");
    if (!dir) {
        fprintf(stderr, "cortex %s: --data DIR is required\n", cmd);
        return 2;
    }
    if (!cli_int(cmd, f, nf, "index", 0, 1 << 30, &index) || !cli_int(cmd, f, nf, "size", 1, 1024, &size) ||
        !cli_int(cmd, f, nf, "cols", 1, 1024, &maxcols) || !need_out(cmd, out))
        return 2;
    char images[1024], labels[1024];
    if (!cli_find_idx(dir, "t10k", images, labels, sizeof images)) {
        fprintf(stderr, "cortex %s: no test images in %s (looked for %s)\n", cmd, dir, images);
        return 1;
    }
    cli_model m;
    if (!load_model(cmd, pos[0], cli_get(f, nf, "net"), &m)) return 1;
    int rc = 1;
    cx_dataset ds = {0};
    canvas c = {0, 0, NULL};
    map_row *rows = NULL;
    bool grad_off = false;
    if (!m.is_netdef) {
        fprintf(stderr, "cortex %s: %s is an MLP: it has no convolution layer\n", cmd, pos[0]);
        goto done;
    }
    if (m.in_ndim != 3) {
        fprintf(stderr, "cortex %s: %s takes inputs of %d dimension(s); maps need images (input C H W)\n", cmd, pos[0],
                m.in_ndim);
        goto done;
    }
    int nconv = 0, nl = cx_net_num_layers(m.net);
    for (int i = 0; i < nl; i++) nconv += is_conv(cx_net_layer(m.net, i)) && cx_net_layer(m.net, i)->out_ndim == 3;
    if (!nconv) {
        fprintf(stderr, "cortex %s: %s has no 2-D convolution layer\n", cmd, pos[0]);
        goto done;
    }
    if (cx_dataset_load_idx(images, labels, index + 1, &ds)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        goto done;
    }
    if (cx_dataset_len(&ds) <= index) {
        fprintf(stderr, "cortex %s: --index %d is out of range: %s has %d test images\n", cmd, index, dir,
                cx_dataset_len(&ds));
        goto done;
    }
    int feat = cli_model_features(&m), have = (int)(ds.x->numel / ds.x->shape[0]);
    if (feat != have) {
        fprintf(stderr, "cortex %s: %s expects %d input values (%dx%dx%d), the images of %s have %d\n", cmd, pos[0],
                feat, m.in_shape[0], m.in_shape[1], m.in_shape[2], dir, have);
        goto done;
    }
    cx_no_grad_begin();
    grad_off = true;
    cx_set_training(false);
    cx_tensor *x = cx_from_data(CX_F(ds.x) + (long)index * feat, (int[]){1, m.in_shape[0], m.in_shape[1], m.in_shape[2]}, 4);
    cx_tensor **outs = cx_net_forward_all(m.net, x);
    int nr = 0;
    rows = calloc((size_t)nconv + 1, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "cortex %s: out of memory\n", cmd);
        goto done;
    }
    for (int i = 0; i < nl; i++) {
        const cx_layer_info *li = cx_net_layer(m.net, i);
        if (i > 0 && !(is_conv(li) && li->out_ndim == 3)) continue;
        map_row *r = &rows[nr++];
        const cx_tensor *t = outs[i];
        r->C = t->shape[1];
        r->H = t->shape[2];
        r->W = t->shape[3];
        r->v = CX_F(t);
        r->rgb = i == 0 && r->C == 3;
        snprintf(r->label, sizeof r->label, "%s", li->name);
        int side = r->H > r->W ? r->H : r->W;
        r->s = (size + side - 1) / side;
        if (r->s < 1) r->s = 1;
        int ntiles = r->rgb ? 1 : r->C;
        r->per_line = ntiles < maxcols ? ntiles : maxcols;
        r->lines = (ntiles + r->per_line - 1) / r->per_line;
    }
    /* title: the image, its label and the prediction, with names when known */
    static cli_classes names;
    const cx_tensor *yo = outs[nl - 1];
    int C = yo->ndim == 2 ? yo->shape[1] : 0, label = CX_I32P(ds.y)[index], pred = -1;
    for (int k = 0; k < C; k++)
        if (pred < 0 || CX_F(yo)[k] > CX_F(yo)[pred]) pred = k;
    if (!cli_classes_load(cmd, cli_get(f, nf, "classes"), dir, C > label ? C : label + 1, &names)) goto done;
    char title[256], lname[64] = "", pname[64] = "";
    if (cli_class_name(&names, label)) snprintf(lname, sizeof lname, " (%s)", cli_class_name(&names, label));
    if (pred >= 0 && cli_class_name(&names, pred)) snprintf(pname, sizeof pname, " (%s)", cli_class_name(&names, pred));
    size_t tk = (size_t)snprintf(title, sizeof title, "test image %d: label %d%s", index, label, lname);
    if (pred >= 0 && tk < sizeof title) snprintf(title + tk, sizeof title - tk, ", predicted %d%s", pred, pname);
    /* layout: title, label column (text at scale 2), blocks of tiles, 10-pixel gaps between layers */
    const int pad = 10, ts = 2;
    int labw = 0;
    long W = 0, H = pad + 7 * ts + pad;
    for (int i = 0; i < nr; i++) {
        int lw = text_width(rows[i].label, ts);
        if (lw > labw) labw = lw;
    }
    for (int i = 0; i < nr; i++) {
        map_row *r = &rows[i];
        long bw = (long)r->per_line * ((long)r->W * r->s + 1) + 1, bh = (long)r->lines * ((long)r->H * r->s + 1) + 1;
        if (bh < 7 * ts) bh = 7 * ts;
        if (bw > W) W = bw;
        H += bh + pad;
    }
    W += pad + labw + pad + pad;
    if (W < pad + text_width(title, ts) + pad) W = pad + text_width(title, ts) + pad;
    if (W > MAX_SIDE || H > MAX_SIDE || !canvas_init(&c, (int)W, (int)H, WHITE)) {
        fprintf(stderr, "cortex %s: the picture would be %ldx%ld pixels, too large (try a smaller --size or --cols)\n",
                cmd, W, H);
        goto done;
    }
    draw_text(&c, pad, pad, title, ts, BLACK);
    int y = pad + 7 * ts + pad, x0 = pad + labw + pad;
    for (int i = 0; i < nr; i++) {
        map_row *r = &rows[i];
        int tw = r->W * r->s + 1, th = r->H * r->s + 1, ntiles = r->rgb ? 1 : r->C;
        int bw = r->per_line * tw + 1, bh = r->lines * th + 1;
        draw_text(&c, pad, y + 2, r->label, ts, BLACK);
        fill_rect(&c, x0, y, bw, bh, GAP);
        long plane = (long)r->H * r->W;
        for (int t = 0; t < ntiles; t++) {
            int tx = x0 + 1 + (t % r->per_line) * tw, ty = y + 1 + (t / r->per_line) * th;
            if (r->rgb) tile_rgb(&c, tx, ty, r->v, plane, r->H, r->W, r->s, 0, 0);
            else tile_gray(&c, tx, ty, r->v + (long)t * plane, r->H, r->W, r->s);
        }
        y += (bh < 7 * ts ? 7 * ts : bh) + pad;
    }
    if (!save_png(cmd, out, &c)) goto done;
    printf("image %d of %s (label %d%s", index, dir, label, lname);
    if (pred >= 0) printf(", predicted %d%s", pred, pname);
    printf("):");
    for (int i = 0; i < nr; i++) printf("%s %s %dx%dx%d", i ? "," : "", rows[i].label, rows[i].C, rows[i].H, rows[i].W);
    printf(" -> %s (%dx%d)\n", out, c.width, c.height);
    rc = 0;
done:
    if (grad_off) {
        cx_set_training(true);
        cx_no_grad_end();
    }
    cx_step_reset();
    free(rows);
    cx_canvas_free(&c);
    cx_dataset_free(&ds);
    cli_model_free(&m);
    return rc;
}


/* ---------------------------------------------------------------- saliency, gradcam, patches, itti */
/* Test image `index` of DIR as the model's input: *x (arena) and its label. */
static bool load_test_image(const char *cmd, const char *dir, int index, const cli_model *m, cx_dataset *ds,
                            cx_tensor **x, int *label) {
    char images[1024], labels[1024];
    if (!cli_find_idx(dir, "t10k", images, labels, sizeof images)) {
        fprintf(stderr, "cortex %s: no test images in %s (looked for %s)\n", cmd, dir, images);
        return false;
    }
    if (cx_dataset_load_idx(images, labels, index + 1, ds)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return false;
    }
    if (cx_dataset_len(ds) <= index) {
        fprintf(stderr, "cortex %s: --index %d is out of range: %s has %d test images\n", cmd, index, dir,
                cx_dataset_len(ds));
        return false;
    }
    int feat = (int)(ds->x->numel / ds->x->shape[0]);
    if (m && (m->in_ndim != 3 || cli_model_features((cli_model *)m) != feat)) {
        fprintf(stderr, "cortex %s: the model's input does not match the %d values of an image of %s\n", cmd, feat, dir);
        return false;
    }
    int C = m ? m->in_shape[0] : 1, H = m ? m->in_shape[1] : 28, W = m ? m->in_shape[2] : feat / 28;
    if (!m && feat != 28 * 28) { /* square grey images */
        H = W = (int)lround(sqrt((double)feat));
        if (H * W != feat) {
            fprintf(stderr, "cortex %s: images of %d values are not square\n", cmd, feat);
            return false;
        }
    }
    *x = cx_from_data(CX_F(ds->x) + (long)index * feat, (int[]){1, C, H, W}, 4);
    *label = CX_I32P(ds->y)[index];
    return true;
}

/* A labelled panel: text above an h x w plane drawn s x s per value. */
static void panel_img(canvas *c, int x, int y, const char *label, const float *v, int h, int w, int s, float lo,
                      float hi, cx_colormap cm) {
    draw_text(c, x, y, label, 2, BLACK);
    cx_canvas_image(c, x, y + 20, v, h, w, s, s, lo, hi, cm);
}

static bool model_for_grad(const char *cmd, const char *path, const char *netf, cli_model *m) {
    if (!load_model(cmd, path, netf, m)) return false;
    if (!m->is_netdef || m->in_ndim != 3) {
        fprintf(stderr, "cortex %s: %s is not an image network (a .net model with input C H W)\n", cmd, path);
        cli_model_free(m);
        return false;
    }
    return true;
}

static bool conv_layer_ok(const char *cmd, const cx_module *net, const char *want, const char *path) {
    char names[512];
    conv_names(net, names, sizeof names);
    for (int i = 0; i < cx_net_num_layers(net); i++) {
        const cx_layer_info *l = cx_net_layer(net, i);
        if (strcmp(l->name, want)) continue;
        if (is_conv(l) && l->out_ndim == 3) return true;
        fprintf(stderr, "cortex %s: layer '%s' is %s, not a 2-D convolution (convolution layers: %s)\n", cmd, want,
                l->desc, names);
        return false;
    }
    fprintf(stderr, "cortex %s: %s has no layer named '%s' (convolution layers: %s)\n", cmd, path, want, names);
    return false;
}

static int viz_grad(int argc, char **argv, bool cam) {
    const char *cmd = cam ? "viz gradcam" : "viz saliency";
    cli_flag f[] = {
        {"data", "directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]", false, NULL},
        {"net", "network (.net file) of a MODEL without Cortex metadata", false, NULL},
        {"index", "which test image", false, "0"},
        {"class", "class to explain (default: the predicted one)", false, "-1"},
        {"layer", "Grad-CAM: convolution layer (default: the last one)", false, NULL},
        {"out", "PNG file to write", false, cam ? "gradcam.png" : "saliency.png"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos, index = 0, cls = -1;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, cam ? "MODEL --data DIR [--index I] [--layer NAME] [--class C] [--out gradcam.png]"
                           : "MODEL --data DIR [--index I] [--class C] [--out saliency.png]",
                  cam ? "Grad-CAM (Selvaraju et al. 2017) of test image I: alpha_k = spatial mean of\n"
                        "d y_c / d A_k over the activations A of a convolution layer (its relu when one\n"
                        "follows), map = ReLU(sum_k alpha_k A_k), resized bilinearly to the input and\n"
                        "laid over it (cx_gradcam). Panels: the input, the overlay, the map at the\n"
                        "layer's resolution; a colour scale."
                      : "Vanilla gradient saliency (Simonyan et al. 2013) of test image I: |d y_c / d x|,\n"
                        "the maximum over channels (cx_saliency), beside the input, with a colour scale.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one MODEL (a saved model or a .net file)\n", cmd);
        return 2;
    }
    const char *dir = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out"), *layer = cli_get(f, nf, "layer");
    if (!dir) {
        fprintf(stderr, "cortex %s: --data DIR is required\n", cmd);
        return 2;
    }
    if (!cli_int(cmd, f, nf, "index", 0, 1 << 30, &index) || !cli_int(cmd, f, nf, "class", -1, 1 << 20, &cls) ||
        !need_out(cmd, out))
        return 2;
    cli_model m;
    if (!model_for_grad(cmd, pos[0], cli_get(f, nf, "net"), &m)) return 1;
    int rc = 1, label = 0;
    cx_dataset ds = {0};
    canvas c = {0, 0, NULL};
    cx_saliency_result sr = {0};
    cx_gradcam_result gr = {0};
    cx_tensor *x = NULL;
    if (cam && layer && !conv_layer_ok(cmd, m.net, layer, pos[0])) goto done;
    if (!load_test_image(cmd, dir, index, &m, &ds, &x, &label)) goto done;
    cx_status st = cam ? cx_gradcam(m.net, x, layer, cls, &gr) : cx_saliency(m.net, x, cls, &sr);
    if (st) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        goto done;
    }
    int H = x->shape[2], W = x->shape[3], C = x->shape[1], s = 224 / (H > W ? H : W);
    if (s < 1) s = 1;
    static cli_classes names;
    int used = cam ? gr.cls : sr.cls;
    if (!cli_classes_load(cmd, "auto", dir, 10 > label + 1 ? (used + 1 > 10 ? used + 1 : 10) : label + 1, &names))
        goto done;
    char title[256], l1[64] = "", l2[64] = "", sub[256];
    if (cli_class_name(&names, label)) snprintf(l1, sizeof l1, " (%s)", cli_class_name(&names, label));
    if (cli_class_name(&names, used)) snprintf(l2, sizeof l2, " (%s)", cli_class_name(&names, used));
    snprintf(title, sizeof title, "%s: test image %d, label %d%s, explaining class %d%s", cam ? "Grad-CAM" : "saliency",
             index, label, l1, used, l2);
    if (cam)
        snprintf(sub, sizeof sub, "A = output of %s (%d maps %dx%d), score y_c = %.3f", cx_net_layer(m.net, gr.layer)->name,
                 gr.k, gr.h, gr.w, (double)gr.score);
    else snprintf(sub, sizeof sub, "abs(d y_c / d input), max over %d channel(s), score y_c = %.3f", C, (double)sr.score);
    int pw = W * s, ph = H * s, P = 12, np = cam ? 3 : 2;
    int tw = text_width(title, 2) + 2 * P, gw = P + np * (pw + P) + 100;
    int Wc = tw > gw ? tw : gw, Hc = P + 14 + 6 + 7 + 12 + 20 + ph + P;
    if (!canvas_init(&c, Wc, Hc, WHITE)) {
        fprintf(stderr, "cortex %s: out of memory\n", cmd);
        goto done;
    }
    draw_text(&c, P, P, title, 2, BLACK);
    draw_text(&c, P, P + 20, sub, 1, AXIS);
    int y0 = P + 14 + 6 + 7 + 12;
    float *img = CX_F(x) + (C == 3 ? 0 : 0); /* first channel (grey images) */
    float lo = 0, hi = 0;
    const float *hm = cam ? gr.up : sr.map;
    cx_finite_range(hm, (long)H * W, &lo, &hi);
    if (!(hi > 0)) hi = 1;
    panel_img(&c, P, y0, "input", img, H, W, s, 0, 0, CX_CMAP_GRAY);
    if (cam) {
        panel_img(&c, P + pw + P, y0, "overlay", img, H, W, s, 0, 0, CX_CMAP_GRAY);
        cx_canvas_overlay(&c, P + pw + P, y0 + 20, pw, ph, gr.up, H, W, 0, hi, 0.7f, CX_CMAP_HOT);
        char lab[64];
        snprintf(lab, sizeof lab, "map %dx%d", gr.h, gr.w);
        int cs = pw / (gr.w > gr.h ? gr.w : gr.h);
        panel_img(&c, P + 2 * (pw + P), y0, lab, gr.cam, gr.h, gr.w, cs > 0 ? cs : 1, 0, hi, CX_CMAP_HOT);
    } else {
        panel_img(&c, P + pw + P, y0, "saliency", sr.map, H, W, s, 0, hi, CX_CMAP_HOT);
    }
    cx_canvas_colorbar(&c, P + np * (pw + P), y0 + 20, 14, ph, 0, hi, CX_CMAP_HOT, 1);
    if (!save_png(cmd, out, &c)) goto done;
    printf("%s: image %d (label %d%s), class %d%s, score %.4f -> %s (%dx%d)\n", cmd + 4, index, label, l1, used, l2,
           (double)(cam ? gr.score : sr.score), out, c.width, c.height);
    rc = 0;
done:
    cx_saliency_free(&sr);
    cx_gradcam_free(&gr);
    cx_step_reset();
    cx_canvas_free(&c);
    cx_dataset_free(&ds);
    cli_model_free(&m);
    return rc;
}

static int viz_patches(int argc, char **argv) {
    const char *cmd = "viz patches";
    cli_flag f[] = {
        {"data", "directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]", false, NULL},
        {"net", "network (.net file) of a MODEL without Cortex metadata", false, NULL},
        {"layer", "convolution layer (default: the last one)", false, NULL},
        {"units", "how many units (channels 0 .. N-1)", false, "8"},
        {"top", "patches per unit", false, "8"},
        {"limit", "test images searched (0: all)", false, "2000"},
        {"out", "PNG file to write", false, "patches.png"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos, units = 8, top = 8, limit = 2000;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL --data DIR [--layer NAME] [--units N] [--top K] [--out patches.png]",
                  "For units 0 .. N-1 of a convolution layer, the K test images whose strongest\n"
                  "response of the unit is highest (one patch per image), each cut to the unit's\n"
                  "receptive field (cx_net_receptive_box: the layer stack's kernels, strides and\n"
                  "padding; outside the image is drawn blue). One row per unit, best first.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one MODEL (a saved model or a .net file)\n", cmd);
        return 2;
    }
    const char *dir = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out"), *layer = cli_get(f, nf, "layer");
    if (!dir) {
        fprintf(stderr, "cortex %s: --data DIR is required\n", cmd);
        return 2;
    }
    if (!cli_int(cmd, f, nf, "units", 1, 256, &units) || !cli_int(cmd, f, nf, "top", 1, 64, &top) ||
        !cli_int(cmd, f, nf, "limit", 0, 1 << 30, &limit) || !need_out(cmd, out))
        return 2;
    cli_model m;
    if (!model_for_grad(cmd, pos[0], cli_get(f, nf, "net"), &m)) return 1;
    int rc = 1;
    cx_dataset ds = {0};
    canvas c = {0, 0, NULL};
    cx_patch_hit *hits = NULL;
    char lname[64] = "";
    if (layer) {
        if (!conv_layer_ok(cmd, m.net, layer, pos[0])) goto done;
        snprintf(lname, sizeof lname, "%s", layer);
    } else {
        for (int i = 0; i < cx_net_num_layers(m.net); i++)
            if (is_conv(cx_net_layer(m.net, i)) && cx_net_layer(m.net, i)->out_ndim == 3)
                snprintf(lname, sizeof lname, "%s", cx_net_layer(m.net, i)->name);
        if (!lname[0]) {
            fprintf(stderr, "cortex %s: %s has no 2-D convolution layer\n", cmd, pos[0]);
            goto done;
        }
    }
    char images[1024], labels[1024];
    if (!cli_find_idx(dir, "t10k", images, labels, sizeof images)) {
        fprintf(stderr, "cortex %s: no test images in %s (looked for %s)\n", cmd, dir, images);
        goto done;
    }
    if (cx_dataset_load_idx(images, labels, limit, &ds)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        goto done;
    }
    int N = cx_dataset_len(&ds), C = m.in_shape[0], H = m.in_shape[1], W = m.in_shape[2];
    if (ds.x->numel / N != (long)C * H * W) {
        fprintf(stderr, "cortex %s: the model's input does not match the images of %s\n", cmd, dir);
        goto done;
    }
    int nch = 0;
    for (int i = 0; i < cx_net_num_layers(m.net); i++)
        if (!strcmp(cx_net_layer(m.net, i)->name, lname)) nch = cx_net_layer(m.net, i)->out_shape[0];
    if (units > nch) {
        fprintf(stderr, "cortex %s: --units %d is out of range: layer '%s' has %d channels\n", cmd, units, lname, nch);
        goto done;
    }
    hits = calloc((size_t)units * top, sizeof *hits);
    cx_tensor *xs = cx_wrap(CX_F(ds.x), (int[]){N, C, H, W}, 4);
    if (!hits || cx_top_activations(m.net, xs, lname, units, top, hits)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, hits ? cx_last_error() : "out of memory");
        goto done;
    }
    int ph = hits[0].box[2] - hits[0].box[0] + 1, pw = hits[0].box[3] - hits[0].box[1] + 1;
    int s = 64 / (ph > pw ? ph : pw);
    if (s < 2) s = 2;
    int P = 12, lw = text_width("unit 000", 2) + 8, tw = pw * s + 4, th = ph * s + 4;
    char title[200];
    snprintf(title, sizeof title, "%s: top %d of %d test images per unit, receptive field %dx%d", lname, top, N, ph, pw);
    int Wc = P + lw + top * tw + P, Hc = P + 14 + 12 + units * th + P;
    if (Wc < text_width(title, 2) + 2 * P) Wc = text_width(title, 2) + 2 * P;
    if (!canvas_init(&c, Wc, Hc, WHITE)) {
        fprintf(stderr, "cortex %s: the picture is too large\n", cmd);
        goto done;
    }
    draw_text(&c, P, P, title, 2, BLACK);
    for (int u = 0; u < units; u++) {
        int y0 = P + 14 + 12 + u * th;
        char lab[32];
        snprintf(lab, sizeof lab, "unit %d", u);
        draw_text(&c, P, y0 + th / 2 - 7, lab, 2, BLACK);
        for (int k = 0; k < top; k++) {
            const cx_patch_hit *h = &hits[u * top + k];
            if (h->image < 0) continue;
            int x0 = P + lw + k * tw;
            const float *img = CX_F(ds.x) + (long)h->image * C * H * W;
            float lo = 0, hi = 1;
            cx_finite_range(img, (long)H * W, &lo, &hi);
            for (int yy = 0; yy < ph; yy++)
                for (int xx = 0; xx < pw; xx++) {
                    int iy = h->box[0] + yy, ix = h->box[1] + xx;
                    rgb col = GAP;
                    if (iy >= 0 && ix >= 0 && iy < H && ix < W) {
                        uint8_t g = to_byte(img[iy * W + ix], lo, hi);
                        col = (rgb){g, g, g};
                    }
                    fill_rect(&c, x0 + xx * s, y0 + yy * s, s, s, col);
                }
        }
    }
    if (!save_png(cmd, out, &c)) goto done;
    printf("%s: %d units x top %d of %d images, receptive field %dx%d -> %s (%dx%d)\n", lname, units, top, N, ph, pw, out,
           c.width, c.height);
    rc = 0;
done:
    free(hits);
    cx_step_reset();
    cx_canvas_free(&c);
    cx_dataset_free(&ds);
    cli_model_free(&m);
    return rc;
}

/* an image's c planes [c, h, w] drawn as a grey or RGB picture at (x, y),
 * each drawn pixel the bilinear sample of a dh x dw display grid */
static void panel_rgb(canvas *c, int x, int y, const char *label, const float *v, int ch, int h, int w, int dh, int dw) {
    draw_text(c, x, y, label, 2, BLACK);
    float *plane = malloc((size_t)dh * dw * sizeof *plane);
    if (!plane) return;
    for (int k = 0; k < ch; k++) {
        cx_resize_bilinear(v + (size_t)k * h * w, h, w, plane, dh, dw);
        for (int i = 0; i < dh; i++)
            for (int j = 0; j < dw; j++) {
                const int py = y + 20 + i, px = x + j;
                if (py < 0 || py >= c->height || px < 0 || px >= c->width) continue;
                float t = plane[(size_t)i * dw + j];
                uint8_t b = (uint8_t)(t <= 0 ? 0 : t >= 1 ? 255 : t * 255 + 0.5f);
                uint8_t *q = c->pixels + ((size_t)py * c->width + px) * 3;
                if (ch == 1) q[0] = q[1] = q[2] = b;
                else q[k] = b;
            }
    }
    free(plane);
}

static int viz_itti(int argc, char **argv) {
    const char *cmd = "viz itti";
    cli_flag f[] = {
        {"data", "directory with t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]", false, NULL},
        {"index", "which test image", false, "0"},
        {"out", "PNG file to write", false, "itti.png"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos, index = 0;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "IMAGE.png | --data DIR [--index I]  [--out itti.png]",
                  "Itti-Koch-Niebur (1998) bottom-up saliency of a PNG image (grey or colour) or of\n"
                  "test image I of an MNIST-format directory (cx_itti_saliency): Gaussian pyramids,\n"
                  "intensity, colour-opponent (RGB images) and Gabor orientation channels,\n"
                  "centre-surround differences c in {2,3,4}, s = c+3, c+4 on the image resized to a\n"
                  "shorter side of 256, the N(.) operator, conspicuity maps and the saliency map.\n"
                  "Panels: input, conspicuity maps, saliency (each on its own scale).",
                  f, nf);
        return 0;
    }
    const char *dir = cli_get(f, nf, "data"), *out = cli_get(f, nf, "out");
    if ((npos == 1) == (dir != NULL)) {
        fprintf(stderr, "cortex %s: give either an IMAGE.png or --data DIR [--index I]\n", cmd);
        return 2;
    }
    if (!cli_int(cmd, f, nf, "index", 0, 1 << 30, &index) || !need_out(cmd, out)) return 2;
    int rc = 1, label = 0, C = 1, H = 0, W = 0;
    cx_dataset ds = {0};
    canvas c = {0, 0, NULL};
    cx_itti_result r = {0};
    cx_tensor *x = NULL;
    float *img = NULL; /* [C, H, W] in [0, 1] */
    char title[256];
    if (dir) {
        if (!load_test_image(cmd, dir, index, NULL, &ds, &x, &label)) goto done;
        H = x->shape[2], W = x->shape[3];
        img = CX_F(x);
        snprintf(title, sizeof title, "Itti-Koch saliency: test image %d of %.120s (label %d)", index, dir, label);
    } else {
        uint8_t *px = NULL;
        if (cx_png_read(pos[0], &px, &W, &H, &C)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            goto done;
        }
        x = cx_empty(CX_F32, CX_SHAPE(C, H, W));
        img = CX_F(x);
        for (int k = 0; k < C; k++)
            for (int i = 0; i < H * W; i++) img[(size_t)k * H * W + i] = px[(size_t)i * C + k] / 255.0f;
        free(px);
        const char *base = strrchr(pos[0], '/');
        snprintf(title, sizeof title, "Itti-Koch saliency: %.160s (%dx%d, %s)", base ? base + 1 : pos[0], W, H,
                 C == 3 ? "colour" : "grey");
    }
    if (cx_itti_saliency(img, C, H, W, NULL, &r)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        goto done;
    }
    /* panels: the image at 224 pixels on its longer side (never below 1 pixel) */
    const int L = 224, P = 12, np = r.has_color ? 5 : 4;
    int pw = W >= H ? L : (int)((int64_t)L * W / H), ph = H >= W ? L : (int)((int64_t)L * H / W);
    if (pw < 1) pw = 1;
    if (ph < 1) ph = 1;
    int Wc = P + np * (pw + P), Hc = P + 14 + 8 + 12 + 20 + ph + P;
    if (Wc < text_width(title, 2) + 2 * P) Wc = text_width(title, 2) + 2 * P;
    if (!canvas_init(&c, Wc, Hc, WHITE)) {
        fprintf(stderr, "cortex %s: out of memory\n", cmd);
        goto done;
    }
    draw_text(&c, P, P, title, 2, BLACK);
    char sub[200];
    snprintf(sub, sizeof sub, "maps %dx%d (level 4 of the image resized to a shorter side of 256), each on its own scale: black low, white high",
             r.h, r.w);
    draw_text(&c, P, P + 20, sub, 1, AXIS);
    int y0 = P + 14 + 8 + 12, k = 0;
    panel_rgb(&c, P + (pw + P) * k++, y0, "input", img, C, H, W, ph, pw);
    const float *maps[3] = {r.intensity, r.color, r.orientation};
    const char *names[3] = {"intensity", "colour", "orientation"};
    for (int j = 0; j < 3; j++) {
        if (!maps[j]) continue;
        int ms = pw / r.w < ph / r.h ? pw / r.w : ph / r.h;
        panel_img(&c, P + (pw + P) * k, y0, names[j], maps[j], r.h, r.w, ms > 0 ? ms : 1, 0, 0, CX_CMAP_HOT);
        k++;
    }
    panel_rgb(&c, P + (pw + P) * k, y0, "saliency", img, C, H, W, ph, pw);
    cx_canvas_overlay(&c, P + (pw + P) * k, y0 + 20, pw, ph, r.saliency, r.h, r.w, 0, 0, 0.75f, CX_CMAP_HOT);
    if (!save_png(cmd, out, &c)) goto done;
    int m = 0;
    for (int i = 1; i < H * W; i++)
        if (r.saliency_up[i] > r.saliency_up[m]) m = i;
    if (dir) printf("itti: image %d, ", index);
    else printf("itti: %s, ", pos[0]);
    printf("saliency maximum at row %d column %d -> %s (%dx%d)\n", m / W, m % W, out, c.width, c.height);
    rc = 0;
done:
    cx_itti_free(&r);
    cx_step_reset();
    cx_canvas_free(&c);
    cx_dataset_free(&ds);
    return rc;
}

/* ---------------------------------------------------------------- curves */
typedef struct {
    const float *data; /* the CSV, [rows, cols] */
    int rows, cols;
    int xcol;          /* epoch */
    int ycol[2];       /* train, val (-1: absent) */
    const char *xlabel;   /* NULL: "epoch" */
    const char *names[2]; /* NULL: "train", "val" */
} plot_src;

static float cell(const plot_src *p, int r, int col) { return p->data[(long)r * p->cols + col]; }

/* One panel: title, legend, grid, axes with ticks and labels, two series. */
static void panel(canvas *c, int px, int py, int pw, int ph, const char *title, const plot_src *p, bool unit_range) {
    const int ml = 64, mr = 16, mt = 40, mb = 46;
    int ax = px + ml, ay = py + mt, aw = pw - ml - mr, ah = ph - mt - mb;
    /* data ranges */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int r = 0; r < p->rows; r++) {
        double x = cell(p, r, p->xcol);
        if (x < xlo) xlo = x;
        if (x > xhi) xhi = x;
        for (int k = 0; k < 2; k++) {
            if (p->ycol[k] < 0) continue;
            double y = cell(p, r, p->ycol[k]);
            if (!isfinite(y)) continue;
            if (y < ylo) ylo = y;
            if (y > yhi) yhi = y;
        }
    }
    if (xhi - xlo < 1) {
        xlo -= 1;
        xhi += 1;
    }
    if (yhi - ylo < 1e-9 * fmax(1.0, fabs(yhi))) {
        double d = fmax(fabs(yhi) * 0.05, 1e-3);
        ylo -= d;
        yhi += d;
    }
    double ystep = cx_plot_tick_step(yhi - ylo, 5), dmax = yhi;
    ylo = floor(ylo / ystep + 1e-9) * ystep;
    yhi = ceil(yhi / ystep - 1e-9) * ystep;
    if (unit_range && ylo < 0) ylo = 0;
    if (unit_range && dmax <= 1 && yhi > 1) yhi = 1;
    double xstep = cx_plot_tick_step(xhi - xlo, 6);
    if (xstep < 1) xstep = 1;
#define MAPX(v) (ax + (int)lround(((v) - xlo) / (xhi - xlo) * (aw - 1)))
#define MAPY(v) (ay + ah - 1 - (int)lround(((v) - ylo) / (yhi - ylo) * (ah - 1)))
    /* grid, ticks and labels */
    char buf[48];
    int nyt = (int)lround((yhi - ylo) / ystep), dec = cx_plot_tick_decimals(ystep);
    for (int k = 0; k <= nyt; k++) {
        double v = ylo + k * ystep;
        int y = MAPY(v);
        fill_rect(c, ax, y, aw, 1, GRID);
        fill_rect(c, ax - 5, y, 5, 1, AXIS);
        snprintf(buf, sizeof buf, "%.*f", dec, fabs(v) < ystep * 1e-6 ? 0.0 : v);
        draw_text(c, ax - 8 - text_width(buf, 1) * 1, y - 3, buf, 1, AXIS);
    }
    for (double v = ceil(xlo / xstep - 1e-9) * xstep; v <= xhi + 1e-9; v += xstep) {
        int x = MAPX(v);
        fill_rect(c, x, ay, 1, ah, GRID);
        fill_rect(c, x, ay + ah, 1, 5, AXIS);
        snprintf(buf, sizeof buf, "%.0f", fabs(v) < 0.5 ? 0.0 : v);
        draw_text(c, x - text_width(buf, 1) / 2, ay + ah + 9, buf, 1, AXIS);
    }
    fill_rect(c, ax - 1, ay, 1, ah + 1, AXIS);  /* y axis */
    fill_rect(c, ax - 1, ay + ah, aw + 1, 1, AXIS); /* x axis */
    const char *xl = p->xlabel ? p->xlabel : "epoch";
    draw_text(c, ax + aw / 2 - text_width(xl, 2) / 2, ay + ah + 24, xl, 2, AXIS);
    draw_text(c, ax, py + 12, title, 2, BLACK);
    /* legend: a short line and the name of each series, right-aligned on the title line */
    const char *names[2] = {p->names[0] ? p->names[0] : "train", p->names[1] ? p->names[1] : "val"};
    const rgb cols[2] = {TRAIN, VAL};
    int lx = ax + aw;
    for (int k = 1; k >= 0; k--) {
        if (p->ycol[k] < 0) continue;
        lx -= text_width(names[k], 2);
        draw_text(c, lx, py + 12, names[k], 2, BLACK);
        lx -= 24;
        fill_rect(c, lx, py + 18, 18, 3, cols[k]);
        lx -= 14;
    }
    /* series: lines between consecutive finite points, square markers when few */
    for (int k = 0; k < 2; k++) {
        if (p->ycol[k] < 0) continue;
        int prevx = 0, prevy = 0;
        bool prev = false;
        for (int r = 0; r < p->rows; r++) {
            double y = cell(p, r, p->ycol[k]);
            if (!isfinite(y)) {
                prev = false;
                continue;
            }
            int X = MAPX(cell(p, r, p->xcol)), Y = MAPY(y);
            if (prev) draw_line(c, prevx, prevy, X, Y, cols[k], 2);
            if (p->rows <= 40) fill_rect(c, X - 2, Y - 2, 5, 5, cols[k]);
            prevx = X;
            prevy = Y;
            prev = true;
        }
    }
#undef MAPX
#undef MAPY
}

static int find_col(char **hdr, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(hdr[i], name)) return i;
    return -1;
}

static bool any_finite(const plot_src *p, int col) {
    for (int r = 0; col >= 0 && r < p->rows; r++)
        if (isfinite(cell(p, r, col))) return true;
    return false;
}

static int viz_curves(int argc, char **argv) {
    const char *cmd = "viz curves";
    cli_flag f[] = {
        {"out", "PNG file to write", false, "curves.png"},
    };
    int nf = (int)(sizeof f / sizeof *f);
    const char *pos[1];
    int npos;
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "METRICS.csv [--out curves.png]",
                  "Plot the metrics CSV written by 'cortex train' (columns epoch, train_loss,\n"
                  "train_acc and optionally val_loss, val_acc, by name; other columns are ignored):\n"
                  "two panels, loss and accuracy per epoch, train in blue and val in orange, with\n"
                  "axes, ticks and a legend. NaN values (no validation set) are left out. The CSV of\n"
                  "'cortex charlm train --metrics' (train_bpc, val_bpc instead of accuracies) gives\n"
                  "loss and bits-per-character panels. The CSV of 'cortex rl train --metrics' (steps,\n"
                  "mean_return, eval_return) gives one panel: the return against environment steps.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one METRICS.csv file\n", cmd);
        return 2;
    }
    const char *out = cli_get(f, nf, "out"), *path = pos[0];
    if (!need_out(cmd, out)) return 2;
    cx_tensor *t = NULL;
    char **hdr = NULL;
    int nh = 0, rc = 1;
    canvas c = {0, 0, NULL};
    if (cx_csv_load(path, &t, &hdr, &nh)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return 1;
    }
    if (!hdr) {
        fprintf(stderr, "cortex %s: %s has no header line (expected epoch,lr,train_loss,train_acc,val_loss,val_acc,... "
                        "as written by cortex train)\n", cmd, path);
        goto done;
    }
    /* a reinforcement-learning run's CSV (cortex rl train --metrics): returns against steps */
    if (find_col(hdr, nh, "steps") >= 0 && find_col(hdr, nh, "mean_return") >= 0) {
        plot_src ret = {CX_F(t), t->shape[0], t->shape[1], find_col(hdr, nh, "steps"),
                        {find_col(hdr, nh, "mean_return"), find_col(hdr, nh, "eval_return")}, "environment steps",
                        {"mean of last 100 episodes", "greedy evaluation"}};
        if (!any_finite(&ret, ret.ycol[0]) && !any_finite(&ret, ret.ycol[1])) {
            fprintf(stderr, "cortex %s: %s: no finite return yet (no episode finished)\n", cmd, path);
            goto done;
        }
        if (!any_finite(&ret, ret.ycol[0])) ret.ycol[0] = -1;
        if (!any_finite(&ret, ret.ycol[1])) ret.ycol[1] = -1;
        if (!canvas_init(&c, 760, 400, WHITE)) {
            fprintf(stderr, "cortex %s: out of memory\n", cmd);
            goto done;
        }
        panel(&c, 0, 0, 760, 400, "episode return", &ret, false);
        if (!save_png(cmd, out, &c)) goto done;
        printf("%s: %d rows to step %.0f -> %s (%dx%d)\n", path, ret.rows, (double)cell(&ret, ret.rows - 1, ret.xcol), out,
               c.width, c.height);
        rc = 0;
        goto done;
    }
    /* a classifier's CSV (accuracies), or a language model's (bits per character) */
    bool bpc = find_col(hdr, nh, "train_acc") < 0 && find_col(hdr, nh, "train_bpc") >= 0;
    const char *need[3] = {"epoch", "train_loss", bpc ? "train_bpc" : "train_acc"};
    for (int i = 0; i < 3; i++)
        if (find_col(hdr, nh, need[i]) < 0) {
            fprintf(stderr, "cortex %s: %s has no '%s' column (expected the metrics CSV of cortex train)\n", cmd, path,
                    need[i]);
            goto done;
        }
    plot_src loss = {CX_F(t), t->shape[0], t->shape[1], find_col(hdr, nh, "epoch"),
                     {find_col(hdr, nh, "train_loss"), find_col(hdr, nh, "val_loss")}, NULL, {NULL, NULL}};
    plot_src acc = loss;
    acc.ycol[0] = find_col(hdr, nh, bpc ? "train_bpc" : "train_acc");
    acc.ycol[1] = find_col(hdr, nh, bpc ? "val_bpc" : "val_acc");
    for (int r = 0; r < loss.rows; r++)
        if (!isfinite(cell(&loss, r, loss.xcol))) {
            fprintf(stderr, "cortex %s: %s: data row %d has a non-finite epoch\n", cmd, path, r + 1);
            goto done;
        }
    const plot_src *ps[2] = {&loss, &acc};
    for (int k = 0; k < 2; k++) {
        if (!any_finite(ps[k], ps[k]->ycol[0])) {
            fprintf(stderr, "cortex %s: %s: column '%s' has no finite value\n", cmd, path, hdr[ps[k]->ycol[0]]);
            goto done;
        }
    }
    if (!any_finite(&loss, loss.ycol[1])) loss.ycol[1] = -1;
    if (!any_finite(&acc, acc.ycol[1])) acc.ycol[1] = -1;
    const int pw = 460, ph = 340;
    if (!canvas_init(&c, 2 * pw, ph, WHITE)) {
        fprintf(stderr, "cortex %s: out of memory\n", cmd);
        goto done;
    }
    panel(&c, 0, 0, pw, ph, "loss", &loss, false);
    panel(&c, pw, 0, pw, ph, bpc ? "bits per character" : "accuracy", &acc, !bpc);
    if (!save_png(cmd, out, &c)) goto done;
    /* mid-epoch evaluations (the trainer's --val-every rows) have fractional epochs */
    bool whole = true;
    for (int r = 0; r < loss.rows; r++) whole &= cell(&loss, r, loss.xcol) == floorf(cell(&loss, r, loss.xcol));
    char what[64];
    if (whole) snprintf(what, sizeof what, "%d epochs", loss.rows);
    else snprintf(what, sizeof what, "%d evaluations to epoch %g", loss.rows, (double)cell(&loss, loss.rows - 1, loss.xcol));
    printf("%s: %s%s -> %s (%dx%d)\n", path, what, loss.ycol[1] >= 0 || acc.ycol[1] >= 0 ? ", train and val" : ", train only",
           out, c.width, c.height);
    /* the points left out of a plotted series (a diverged run's NaN losses) */
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++) {
            int col = ps[k]->ycol[j], n = 0, first = -1;
            for (int r = 0; col >= 0 && r < loss.rows; r++)
                if (!isfinite(cell(ps[k], r, col))) n++, first = first < 0 ? r : first;
            if (n)
                printf("note: %d non-finite value(s) of %s left out of the plot (the first at epoch %g, data row %d)\n",
                       n, hdr[col], (double)cell(&loss, first, loss.xcol), first + 1);
        }
    rc = 0;
done:
    cx_canvas_free(&c);
    cx_csv_free_header(hdr, nh);
    cx_tensor_free(t);
    return rc;
}

/* ---------------------------------------------------------------- entry */
static void viz_usage(FILE *o) {
    fprintf(o, "usage: cortex viz PICTURE [options]\n\n"
               "Pictures (PNG) of a network and its training:\n"
               "  filters MODEL [--layer NAME] [--out filters.png]     weights of a convolution layer\n"
               "  maps MODEL --data DIR [--index I] [--out maps.png]   feature maps of one test image\n"
               "  curves METRICS.csv [--out curves.png]                loss and accuracy per epoch, or returns (cortex rl train)\n"
               "  saliency MODEL --data DIR [--index I] [--class C]    gradient saliency of one test image\n"
               "  gradcam MODEL --data DIR [--index I] [--layer NAME]  Grad-CAM of one test image\n"
               "  patches MODEL --data DIR [--layer NAME] [--units N] [--top K]  strongest patches per unit\n"
               "  itti IMAGE.png | --data DIR --index I               Itti-Koch bottom-up saliency\n\n"
               "'cortex viz PICTURE --help' describes each one.\n");
}

int cmd_viz(int argc, char **argv) {
    if (argc < 1) {
        viz_usage(stderr);
        return 2;
    }
    const char *p = argv[0];
    if (!strcmp(p, "--help") || !strcmp(p, "-h") || !strcmp(p, "help")) {
        viz_usage(stdout);
        return 0;
    }
    if (!strcmp(p, "filters")) return viz_filters(argc - 1, argv + 1);
    if (!strcmp(p, "maps")) return viz_maps(argc - 1, argv + 1);
    if (!strcmp(p, "curves")) return viz_curves(argc - 1, argv + 1);
    if (!strcmp(p, "saliency")) return viz_grad(argc - 1, argv + 1, false);
    if (!strcmp(p, "gradcam")) return viz_grad(argc - 1, argv + 1, true);
    if (!strcmp(p, "patches")) return viz_patches(argc - 1, argv + 1);
    if (!strcmp(p, "itti")) return viz_itti(argc - 1, argv + 1);
    fprintf(stderr, "cortex viz: unknown picture '%s' (filters, maps or curves; see 'cortex viz --help')\n", p);
    return 2;
}
