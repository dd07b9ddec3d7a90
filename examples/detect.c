/* Object detection with a Fast R-CNN-style detector (course notes: R-CNN,
 * SPP-net, Fast R-CNN; Girshick, ICCV 2015) on canvases of Fashion-MNIST
 * items, with the ops of cortex/detect.h.
 *
 * The task. An 80x80 canvas holds 1-5 Fashion-MNIST items, each scaled to
 * 18-34 pixels (bilinear) and placed at random so that no two objects'
 * boxes overlap by more than IoU 0.1 (overlapping pixels: the brighter
 * wins). An object's box is the tight box of its pixels brighter than 0.15;
 * its class is one of the 10 Fashion-MNIST classes. Training canvases are
 * drawn afresh every step from the training images; the held-out canvases
 * are made once from the t10k images.
 *
 * The detector. As SPP-net / Fast R-CNN, the convolutional part runs once per
 * canvas and every candidate window is pooled from its feature map:
 *   trunk  conv3x3 1->32, ReLU, max-pool 2; conv3x3 32->64, ReLU, max-pool 2;
 *          conv3x3 64->64, ReLU: a [64, 20, 20] map, stride 4
 *   proposals  a fixed sliding-window grid: 9 box shapes (16x16, 22x22,
 *          30x30, 10x20, 14x28, 20x10, 30x15, 18x26, 26x18) centred on every
 *          feature cell: 3600 windows per canvas (in place of selective search)
 *   RoI    cx_roi_align to 4x4 (sampling 2, aligned; --pool roi_pool: RoI max
 *          pooling as in Fast R-CNN), flattened: 1024 numbers per window
 *   head   Linear 1024->256, ReLU, Linear 256->256, ReLU, then two siblings:
 *          class scores (10 classes + background) and per-class box
 *          regression (4 x 10 numbers: R-CNN's (dx, dy, dw, dh) with weights
 *          (10, 10, 5, 5), cx_box_encode / cx_box_decode)
 * Training (per canvas 64 windows: up to 16 positives, IoU >= 0.5 with an
 * object, the objects' own boxes included as in torchvision; the rest
 * background, IoU < 0.4, half of them from 0.1-0.4 when there are such):
 * cross-entropy + smooth-L1 (beta 1/9) of the true class's box deltas on the
 * positives, divided by the number of windows (torchvision's fastrcnn_loss);
 * Adam 1e-3 with a cosine decay, batches of 8 canvases.
 * Detection: softmax scores of all 3600 windows, each class's box decoded
 * from its deltas and clipped to the canvas; scores below 0.05 dropped;
 * per-class NMS at IoU 0.5 (cx_batched_nms); at most 100 per canvas.
 * Evaluation on the held-out canvases (cx_detection_map): mAP@0.5 (PASCAL
 * VOC rule, all-point interpolation), COCO's mAP@[0.5:0.95] (101-point,
 * thresholds 0.50..0.95), per-class AP@0.5; and the recall of the window
 * grid itself (objects with a window of IoU >= 0.5) as a reference.
 *
 * Run (from the repository root):
 *   build/<variant>/examples/detect [--steps 3000] [--batch 8] [--test 500]
 *       [--seed 1] [--threads 1] [--pool align|pool] [--data DIR]
 *       [--out out/detect.png]
 * Output: the training loss every 250 steps; the metrics; a machine-readable
 * line "DETECT seed=.. pool=.. steps=.. map50=.. map5095=.. ap50=c0,..,c9
 * grid_recall=.. train_s=.. eval_s=.."; the PNG: 8 held-out canvases
 * (4x) with the detections scoring >= 0.5 (class colour, name and score)
 * over the objects' true boxes (grey), a title with the metrics and a legend.
 * Exit status: 0 on success, 1 if the data is missing, training diverges or
 * the PNG cannot be written, 2 on a bad flag.
 *
 * Measured (defaults, seed 1, 1 thread, a loaded shared 2-vCPU machine): on
 * 500 held-out canvases (1503 objects) mAP@0.5 0.696, mAP@[.5:.95] 0.494;
 * AP@0.5 from 0.30 (shirt) and 0.41 (pullover) to 0.92 (trouser, bag);
 * training 201 s CPU, detection + evaluation 66 s wall
 * (docs/img/detect.png). One seed only. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cortex.h>

enum { SIDE = 80, ITEM = 28, MAX_ITEMS = 5, MIN_S = 18, MAX_S = 34, NCLS = 10 };
enum { STRIDE = 4, FM = SIDE / STRIDE, NSHAPE = 9, NANCH = FM * FM * NSHAPE, POOL = 4, CH = 64 };
enum { RPI = 64, POS_MAX = 16, MAX_DET = 100, PRE_NMS = 1000 };
static const float INK = 0.15f;
static const float BOX_W[4] = {10, 10, 5, 5};
static const float SHAPES[NSHAPE][2] = {{16, 16}, {22, 22}, {30, 30}, {10, 20}, {14, 28},
                                        {20, 10}, {30, 15}, {18, 26}, {26, 18}};
static const char *const SHORT[NCLS] = {"tshirt", "trouser", "pullover", "dress", "coat",
                                        "sandal", "shirt",   "sneaker",  "bag",   "boot"};

/* ------------------------------------------------------------ data */

typedef struct {
    int n;
    float box[MAX_ITEMS][4];
    int cls[MAX_ITEMS];
} objects;

static bool file_exists(const char *dir, const char *name) {
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* the 28x28 image scaled to s x s (bilinear, align_corners false) */
static void resize(const float *img, int s, float *out) {
    float r = (float)ITEM / (float)s;
    for (int y = 0; y < s; y++) {
        float sy = ((float)y + 0.5f) * r - 0.5f;
        sy = sy < 0 ? 0 : sy;
        int y0 = (int)sy, y1 = y0 + 1 < ITEM ? y0 + 1 : ITEM - 1;
        float wy = sy - (float)y0;
        for (int x = 0; x < s; x++) {
            float sx = ((float)x + 0.5f) * r - 0.5f;
            sx = sx < 0 ? 0 : sx;
            int x0 = (int)sx, x1 = x0 + 1 < ITEM ? x0 + 1 : ITEM - 1;
            float wx = sx - (float)x0;
            out[y * s + x] = (1 - wy) * ((1 - wx) * img[y0 * ITEM + x0] + wx * img[y0 * ITEM + x1]) +
                             wy * ((1 - wx) * img[y1 * ITEM + x0] + wx * img[y1 * ITEM + x1]);
        }
    }
}

static void make_canvas(const cx_dataset *src, float *x, objects *o) {
    memset(x, 0, sizeof(float) * SIDE * SIDE);
    o->n = 0;
    int want = 1 + (int)cx_rand_below(MAX_ITEMS), n_src = cx_dataset_len(src);
    float patch[MAX_S * MAX_S];
    for (int it = 0, tries = 0; it < want && tries < 200; tries++) {
        int idx = (int)cx_rand_below((uint32_t)n_src), s = MIN_S + (int)cx_rand_below(MAX_S - MIN_S + 1);
        resize(CX_F(src->x) + (size_t)idx * ITEM * ITEM, s, patch);
        int r0 = s, r1 = -1, c0 = s, c1 = -1;
        for (int r = 0; r < s; r++)
            for (int c = 0; c < s; c++)
                if (patch[r * s + c] > INK) {
                    r0 = r < r0 ? r : r0, r1 = r > r1 ? r : r1;
                    c0 = c < c0 ? c : c0, c1 = c > c1 ? c : c1;
                }
        if (r1 < 0) continue; /* a blank item */
        int oy = (int)cx_rand_below(SIDE - s + 1), ox = (int)cx_rand_below(SIDE - s + 1);
        float b[4] = {(float)(ox + c0), (float)(oy + r0), (float)(ox + c1 + 1), (float)(oy + r1 + 1)};
        bool ok = true;
        for (int k = 0; k < o->n && ok; k++) ok = cx_box_iou1(b, o->box[k]) <= 0.1f;
        if (!ok) continue;
        for (int r = 0; r < s; r++)
            for (int c = 0; c < s; c++) {
                float v = patch[r * s + c], *p = &x[(oy + r) * SIDE + ox + c];
                if (v > *p) *p = v;
            }
        memcpy(o->box[o->n], b, sizeof b);
        o->cls[o->n++] = CX_I32P(src->y)[idx];
        it++;
    }
}

static float ANCH[NANCH][4];
static void make_anchors(void) {
    for (int cy = 0; cy < FM; cy++)
        for (int cx = 0; cx < FM; cx++)
            for (int k = 0; k < NSHAPE; k++) {
                float *a = ANCH[(cy * FM + cx) * NSHAPE + k];
                float mx = ((float)cx + 0.5f) * STRIDE, my = ((float)cy + 0.5f) * STRIDE;
                a[0] = mx - SHAPES[k][0] / 2, a[1] = my - SHAPES[k][1] / 2;
                a[2] = mx + SHAPES[k][0] / 2, a[3] = my + SHAPES[k][1] / 2;
            }
}

/* ------------------------------------------------------------ the detector */
typedef struct {
    cx_module *all, *trunk, *fc, *cls, *box;
    bool align;
} detector;

static void build(detector *d, bool align) {
    d->align = align;
    d->all = cx_sequential_new();
    d->trunk = cx_sequential_new();
    cx_conv_opts o = cx_conv_defaults();
    o.padding[0] = o.padding[1] = 1;
    cx_sequential_add(d->trunk, NULL, cx_conv2d_new(1, 32, 3, 3, &o, true));
    cx_sequential_add(d->trunk, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(d->trunk, NULL, cx_maxpool2d_new(2, 2, 0));
    cx_sequential_add(d->trunk, NULL, cx_conv2d_new(32, CH, 3, 3, &o, true));
    cx_sequential_add(d->trunk, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(d->trunk, NULL, cx_maxpool2d_new(2, 2, 0));
    cx_sequential_add(d->trunk, NULL, cx_conv2d_new(CH, CH, 3, 3, &o, true));
    cx_sequential_add(d->trunk, NULL, cx_activation_new(CX_ACT_RELU, 0));
    d->fc = cx_sequential_new();
    cx_sequential_add(d->fc, NULL, cx_linear_new(CH * POOL * POOL, 256, true));
    cx_sequential_add(d->fc, NULL, cx_activation_new(CX_ACT_RELU, 0));
    cx_sequential_add(d->fc, NULL, cx_linear_new(256, 256, true));
    cx_sequential_add(d->fc, NULL, cx_activation_new(CX_ACT_RELU, 0));
    d->cls = cx_linear_new(256, NCLS + 1, true);
    d->box = cx_linear_new(256, 4 * NCLS, true);
    /* small output layers, as torchvision's FastRCNNPredictor is usually initialised */
    cx_fill_uniform(cx_linear_weight(d->cls), -0.02f, 0.02f);
    cx_fill(cx_linear_bias(d->cls), 0.0f);
    cx_fill_uniform(cx_linear_weight(d->box), -0.002f, 0.002f);
    cx_fill(cx_linear_bias(d->box), 0.0f);
    cx_sequential_add(d->all, "trunk", d->trunk);
    cx_sequential_add(d->all, "fc", d->fc);
    cx_sequential_add(d->all, "cls", d->cls);
    cx_sequential_add(d->all, "box", d->box);
}

/* images x [B, 1, SIDE, SIDE], rois [R, 5] -> class logits [R, 11], deltas [R, 40] */
static void forward(detector *d, cx_tensor *x, cx_tensor *rois, cx_tensor **logits, cx_tensor **deltas) {
    cx_tensor *f = cx_module_forward(d->trunk, x); /* computed once per canvas */
    cx_tensor *r = d->align ? cx_roi_align(f, rois, 1.0f / STRIDE, POOL, POOL, 2, true)
                            : cx_roi_pool(f, rois, 1.0f / STRIDE, POOL, POOL);
    cx_tensor *h = cx_module_forward(d->fc, cx_flatten(r));
    *logits = cx_module_forward(d->cls, h);
    *deltas = cx_module_forward(d->box, h);
}

/* ------------------------------------------------------------ training windows */
static void shuffle(int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cx_rand_below((uint32_t)i + 1), t = v[i];
        v[i] = v[j], v[j] = t;
    }
}

/* RPI windows of canvas n: rois rows, labels, box targets and masks [RPI, 40] */
static void sample_windows(const objects *o, int n, float *rois, int32_t *lab, float *tgt, float *mask) {
    static int pos[NANCH + MAX_ITEMS], hard[NANCH], easy[NANCH];
    static int pos_gt[NANCH + MAX_ITEMS];
    int np = 0, nh = 0, ne = 0;
    for (int a = 0; a < NANCH + o->n; a++) {
        const float *b = a < NANCH ? ANCH[a] : o->box[a - NANCH];
        float best = 0;
        int bg = -1;
        for (int k = 0; k < o->n; k++) {
            float v = cx_box_iou1(b, o->box[k]);
            if (v > best) best = v, bg = k;
        }
        if (best >= 0.5f) pos[np] = a, pos_gt[a] = bg, np++;
        else if (a < NANCH && best >= 0.1f && best < 0.4f) hard[nh++] = a;
        else if (a < NANCH && best < 0.1f) easy[ne++] = a;
    }
    shuffle(pos, np);
    shuffle(hard, nh);
    shuffle(easy, ne);
    int npos = np < POS_MAX ? np : POS_MAX, nneg = RPI - npos;
    int nhard = nh < nneg / 2 ? nh : nneg / 2, neasy = nneg - nhard;
    if (neasy > ne) neasy = ne; /* not on 80x80 canvases: the remaining rows repeat a window */
    memset(tgt, 0, sizeof(float) * RPI * 4 * NCLS);
    memset(mask, 0, sizeof(float) * RPI * 4 * NCLS);
    int r = 0;
    for (int i = 0; i < npos + nhard + neasy && r < RPI; i++, r++) {
        int a = i < npos ? pos[i] : i < npos + nhard ? hard[i - npos] : easy[i - npos - nhard];
        const float *b = a < NANCH ? ANCH[a] : o->box[a - NANCH];
        float *ro = rois + 5 * r;
        ro[0] = (float)n;
        memcpy(ro + 1, b, 4 * sizeof(float));
        lab[r] = 0;
        if (i < npos) {
            int g = pos_gt[a], c = o->cls[g];
            lab[r] = 1 + c;
            float gb[4], pb[4];
            memcpy(gb, o->box[g], sizeof gb);
            memcpy(pb, b, sizeof pb);
            cx_tensor *d = cx_box_encode(cx_from_data(gb, CX_SHAPE(1, 4)), cx_from_data(pb, CX_SHAPE(1, 4)), BOX_W);
            for (int k = 0; k < 4; k++) {
                tgt[r * 4 * NCLS + 4 * c + k] = CX_F(d)[k];
                mask[r * 4 * NCLS + 4 * c + k] = 1.0f;
            }
        }
    }
    for (; r < RPI; r++) { /* background padding */
        float *ro = rois + 5 * r;
        ro[0] = (float)n;
        memcpy(ro + 1, ANCH[0], 4 * sizeof(float));
        lab[r] = 0;
    }
}

/* ------------------------------------------------------------ detection */
static const float *SCORES;
static int by_score(const void *a, const void *b) { /* decreasing score, then index */
    int i = *(const int *)a, j = *(const int *)b;
    if (SCORES[i] != SCORES[j]) return SCORES[i] > SCORES[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Detections of canvases x [B, 1, SIDE, SIDE] (images first_image ..) appended
 * to dets (capacity cap); returns the new count. */
static int detect_batch(detector *d, cx_tensor *x, int first_image, cx_det *dets, int nd, int cap) {
    int B = x->shape[0];
    cx_no_grad_begin();
    cx_tensor *rois = cx_empty(CX_F32, CX_SHAPE(B * NANCH, 5));
    for (int n = 0; n < B; n++)
        for (int a = 0; a < NANCH; a++) {
            float *r = CX_F(rois) + 5 * ((size_t)n * NANCH + a);
            r[0] = (float)n;
            memcpy(r + 1, ANCH[a], 4 * sizeof(float));
        }
    cx_tensor *logits, *deltas;
    forward(d, x, rois, &logits, &deltas);
    cx_tensor *p = cx_softmax(logits, 1);
    for (int n = 0; n < B; n++) {
        /* candidates: (window, class) with score > 0.05 */
        int nc = 0;
        static float cb[NANCH * NCLS][4], cs[NANCH * NCLS];
        static int32_t cc[NANCH * NCLS], tc[PRE_NMS];
        static float tb[PRE_NMS][4], ts[PRE_NMS];
        for (int a = 0; a < NANCH; a++) {
            size_t row = (size_t)n * NANCH + a;
            const float *pr = CX_F(p) + row * (NCLS + 1), *dl = CX_F(deltas) + row * 4 * NCLS;
            const float *an = ANCH[a];
            float aw = an[2] - an[0], ah = an[3] - an[1], ax = an[0] + 0.5f * aw, ay = an[1] + 0.5f * ah;
            for (int c = 0; c < NCLS; c++) {
                if (pr[1 + c] <= 0.05f) continue;
                const float *dd = dl + 4 * c;
                /* cx_box_decode, inlined for the many candidates */
                float clip = logf(1000.0f / 16.0f);
                float dw = fminf(dd[2] / BOX_W[2], clip), dh = fminf(dd[3] / BOX_W[3], clip);
                float mx = dd[0] / BOX_W[0] * aw + ax, my = dd[1] / BOX_W[1] * ah + ay;
                float w = expf(dw) * aw, h = expf(dh) * ah;
                float b[4] = {mx - w / 2, my - h / 2, mx + w / 2, my + h / 2};
                for (int k = 0; k < 4; k++) b[k] = b[k] < 0 ? 0 : b[k] > SIDE ? SIDE : b[k];
                if (b[2] - b[0] < 2 || b[3] - b[1] < 2) continue;
                memcpy(cb[nc], b, sizeof b);
                cs[nc] = pr[1 + c];
                cc[nc++] = c;
            }
        }
        /* NMS over the PRE_NMS best (its cost grows with the square of the candidates) */
        if (nc > PRE_NMS) {
            static int ord[NANCH * NCLS];
            for (int i = 0; i < nc; i++) ord[i] = i;
            SCORES = cs;
            qsort(ord, (size_t)nc, sizeof(int), by_score);
            for (int i = 0; i < PRE_NMS; i++) {
                int j = ord[i];
                memcpy(tb[i], cb[j], sizeof tb[i]);
                ts[i] = cs[j];
                tc[i] = cc[j];
            }
            memcpy(cb, tb, sizeof(float) * 4 * PRE_NMS);
            memcpy(cs, ts, sizeof(float) * PRE_NMS);
            memcpy(cc, tc, sizeof(int32_t) * PRE_NMS);
            nc = PRE_NMS;
        }
        cx_tensor *keep = cx_batched_nms(cx_from_data(&cb[0][0], CX_SHAPE(nc, 4)), cx_from_data(cs, CX_SHAPE(nc)),
                                         cx_from_i32(cc, CX_SHAPE(nc)), 0.5f);
        int nk = keep->shape[0] < MAX_DET ? keep->shape[0] : MAX_DET;
        for (int i = 0; i < nk && nd < cap; i++) {
            int64_t j = CX_I64P(keep)[i];
            cx_det e = {first_image + n, cc[j], cs[j], {cb[j][0], cb[j][1], cb[j][2], cb[j][3]}};
            dets[nd++] = e;
        }
    }
    cx_no_grad_end();
    return nd;
}

/* ------------------------------------------------------------ picture */
static const uint8_t CLS_RGB[NCLS][3] = {{230, 25, 75},  {0, 130, 200}, {255, 135, 40}, {145, 30, 180},
                                         {240, 50, 230}, {60, 180, 75}, {170, 110, 40}, {70, 240, 240},
                                         {255, 225, 25}, {128, 128, 0}};
enum { Z = 4, PANEL = SIDE * Z, GAP = 10, COLS = 4, ROWS = 2, TS = 2 };

static int picture(const char *path, const float *xs, const objects *objs, const cx_det *dets, int nd,
                   const char *title, const char *subtitle) {
    static const uint8_t ink[3] = {0, 0, 0}, grey[3] = {150, 150, 150};
    int w = COLS * PANEL + (COLS + 1) * GAP;
    int top = GAP + 7 * TS + 6 + 7 + GAP;
    int legend_y = top + ROWS * (PANEL + GAP);
    int h = legend_y + 2 * (7 * TS + GAP) + GAP;
    cx_canvas c;
    if (cx_canvas_init(&c, w, h, NULL)) return 1;
    cx_canvas_text(&c, GAP, GAP, title, TS, ink);
    cx_canvas_text(&c, GAP, GAP + 7 * TS + 6, subtitle, 1, ink);
    for (int i = 0; i < ROWS * COLS; i++) {
        int x0 = GAP + (i % COLS) * (PANEL + GAP), y0 = top + (i / COLS) * (PANEL + GAP);
        const float *img = xs + (size_t)i * SIDE * SIDE;
        for (int py = 0; py < SIDE; py++)
            for (int px = 0; px < SIDE; px++) {
                float v = img[py * SIDE + px];
                uint8_t g = (uint8_t)lrintf(255.0f * (v < 0 ? 0 : v > 1 ? 1 : v));
                uint8_t col[3] = {g, g, g};
                cx_canvas_fill(&c, x0 + px * Z, y0 + py * Z, Z, Z, col);
            }
        for (int k = 0; k < objs[i].n; k++) {
            const float *b = objs[i].box[k];
            cx_canvas_rect(&c, x0 + (int)lrintf(b[0] * Z), y0 + (int)lrintf(b[1] * Z),
                           (int)lrintf((b[2] - b[0]) * Z), (int)lrintf((b[3] - b[1]) * Z), grey, 1);
        }
        for (int j = 0; j < nd; j++) {
            const cx_det *e = &dets[j];
            if (e->image != i || e->score < 0.5f) continue;
            int bx = x0 + (int)lrintf(e->box[0] * Z), by = y0 + (int)lrintf(e->box[1] * Z);
            cx_canvas_rect(&c, bx, by, (int)lrintf((e->box[2] - e->box[0]) * Z),
                           (int)lrintf((e->box[3] - e->box[1]) * Z), CLS_RGB[e->cls], 2);
            char lab[40];
            snprintf(lab, sizeof lab, "%s %.2f", SHORT[e->cls], (double)e->score);
            int tw = cx_text_width(lab, 1);
            int ty = by - 9 < y0 ? by + 2 : by - 9;
            cx_canvas_fill(&c, bx, ty, tw + 2, 9, CLS_RGB[e->cls]);
            static const uint8_t black[3] = {0, 0, 0};
            cx_canvas_text(&c, bx + 1, ty + 1, lab, 1, black);
        }
        cx_canvas_rect(&c, x0 - 1, y0 - 1, PANEL + 2, PANEL + 2, grey, 1);
    }
    /* legend: class colours, then the ground-truth marker */
    int lx = GAP, ly = legend_y;
    for (int k = 0; k <= NCLS; k++) {
        const char *name = k < NCLS ? cx_fashion_mnist_class(k) : "ground truth";
        int item = 14 + 6 + cx_text_width(name, TS) + 3 * GAP;
        if (lx + item > w && lx > GAP) lx = GAP, ly += 7 * TS + GAP;
        if (k < NCLS) cx_canvas_fill(&c, lx, ly, 14, 14, CLS_RGB[k]);
        else cx_canvas_rect(&c, lx, ly, 14, 14, grey, 1);
        cx_canvas_text(&c, lx + 20, ly, name, TS, ink);
        lx += item;
    }
    cx_status st = cx_canvas_save(&c, path);
    cx_canvas_free(&c);
    return st ? 1 : 0;
}

/* ------------------------------------------------------------ main */
static int usage(void) {
    fprintf(stderr, "usage: detect [--steps N] [--batch B] [--test N] [--seed S] [--threads T] "
                    "[--pool align|pool] [--data DIR] [--out PNG]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *png = "out/detect.png";
    int steps = 3000, batch = 8, n_test = 500, threads = 1;
    bool align = true, default_out = true;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--test")) n_test = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "--out")) png = v, default_out = false;
        else if (!strcmp(a, "--pool")) {
            if (strcmp(v, "align") && strcmp(v, "pool")) return usage();
            align = !strcmp(v, "align");
        } else return usage();
    }
    if (steps < 0 || batch < 1 || n_test < ROWS * COLS || threads < 1) return usage();
    if (!dir)
        dir = file_exists("/usr/share/datasets/fashion-mnist", "train-images-idx3-ubyte.gz")
                  ? "/usr/share/datasets/fashion-mnist"
                  : "data/fashion-mnist-subset";
    cx_set_threads(threads);
    cx_seed(seed);
    double t_start = cx_now();
    cx_dataset train, test;
    if (cx_dataset_load_idx_dir(dir, "train", 0, &train) != CX_OK) {
        fprintf(stderr, "detect: cannot load Fashion-MNIST from %s: %s\n  (install dataset-fashion-mnist, run "
                        "from the repository root so that data/fashion-mnist-subset is found, or pass --data)\n",
                dir, cx_last_error());
        return 1;
    }
    if (cx_dataset_load_idx_dir(dir, "t10k", 0, &test) != CX_OK) {
        fprintf(stderr, "detect: cannot load the Fashion-MNIST test split from %s: %s\n", dir, cx_last_error());
        cx_dataset_free(&train);
        return 1;
    }
    make_anchors();

    /* held-out canvases (t10k images only) */
    float *xt = malloc(sizeof(float) * (size_t)n_test * SIDE * SIDE);
    objects *ot = malloc(sizeof(objects) * (size_t)n_test);
    cx_gt *gts = malloc(sizeof(cx_gt) * (size_t)n_test * MAX_ITEMS);
    int cap = n_test * MAX_DET;
    cx_det *dets = malloc(sizeof(cx_det) * (size_t)cap);
    float *rois = malloc(sizeof(float) * (size_t)batch * RPI * 5), *tgt = malloc(sizeof(float) * (size_t)batch * RPI * 40);
    float *mask = malloc(sizeof(float) * (size_t)batch * RPI * 40);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)batch * RPI);
    float *xb = malloc(sizeof(float) * (size_t)batch * SIDE * SIDE);
    if (!xt || !ot || !gts || !dets || !rois || !tgt || !mask || !lab || !xb) cx_fatal("detect: out of memory");
    int ngt = 0, covered = 0, per_cls[NCLS] = {0};
    for (int i = 0; i < n_test; i++) {
        make_canvas(&test, xt + (size_t)i * SIDE * SIDE, &ot[i]);
        for (int k = 0; k < ot[i].n; k++) {
            cx_gt g = {i, ot[i].cls[k], {ot[i].box[k][0], ot[i].box[k][1], ot[i].box[k][2], ot[i].box[k][3]}};
            gts[ngt++] = g;
            per_cls[g.cls]++;
            float best = 0;
            for (int a = 0; a < NANCH; a++) best = fmaxf(best, cx_box_iou1(ANCH[a], g.box));
            covered += best >= 0.5f;
        }
    }
    double grid_recall = (double)covered / ngt;

    detector d;
    build(&d, align);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(d.all, &ps);
    printf("Fast R-CNN-style detection on %dx%d canvases with 1-%d Fashion-MNIST items of %d-%d px (%s)\n", SIDE,
           SIDE, MAX_ITEMS, MIN_S, MAX_S, dir);
    printf("trunk 3 conv -> [%d, %d, %d] (stride %d), %s %dx%d, head 2 x 256; %lld parameters; %d windows per "
           "canvas\n", CH, FM, FM, STRIDE, align ? "roi_align" : "roi_pool", POOL, POOL,
           (long long)cx_params_count(&ps), NANCH);
    printf("%d steps x %d canvases x %d windows, Adam 1e-3 cosine, %d thread(s), seed %llu\n", steps, batch, RPI,
           cx_get_threads(), (unsigned long long)seed);
    printf("held-out: %d canvases, %d objects; the window grid covers %.1f%% of them at IoU >= 0.5\n", n_test, ngt,
           100 * grid_recall);
    fflush(stdout);

    const double lr = 1e-3;
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_sched sched = cx_sched_cosine(steps > 0 ? steps : 1, lr * 0.02);
    double t0 = cx_now(), c0 = cx_cpu_now(), run_cls = 0, run_box = 0;
    int run_n = 0, rc = 0;
    for (int s = 0; s < steps; s++) {
        cx_sched_apply(&sched, opt, lr, s);
        for (int n = 0; n < batch; n++) {
            objects o;
            make_canvas(&train, xb + (size_t)n * SIDE * SIDE, &o);
            sample_windows(&o, n, rois + (size_t)n * RPI * 5, lab + (size_t)n * RPI, tgt + (size_t)n * RPI * 40,
                           mask + (size_t)n * RPI * 40);
        }
        int R = batch * RPI;
        cx_tensor *x = cx_from_data(xb, CX_SHAPE(batch, 1, SIDE, SIDE));
        cx_tensor *logits, *deltas;
        cx_optim_zero_grad(opt);
        forward(&d, x, cx_from_data(rois, CX_SHAPE(R, 5)), &logits, &deltas);
        cx_tensor *lc = cx_cross_entropy(logits, cx_from_i32(lab, CX_SHAPE(R)), CX_REDUCE_MEAN);
        cx_tensor *m = cx_from_data(mask, CX_SHAPE(R, 40));
        cx_tensor *lb = cx_mul_scalar(
            cx_smooth_l1_loss(cx_mul(deltas, m), cx_from_data(tgt, CX_SHAPE(R, 40)), 1.0f / 9.0f, CX_REDUCE_SUM),
            1.0f / (float)R);
        cx_tensor *loss = cx_add(lc, lb);
        cx_backward(loss);
        cx_optim_step(opt);
        run_cls += cx_item(lc);
        run_box += cx_item(lb);
        run_n++;
        if (!isfinite(cx_item(loss))) {
            fprintf(stderr, "detect: the loss is not finite at step %d\n", s + 1);
            rc = 1;
            break;
        }
        cx_step_reset();
        if ((s + 1) % 250 == 0 || s + 1 == steps) {
            printf("  step %5d  loss cls %.4f  box %.4f  (%.1f s)\n", s + 1, run_cls / run_n, run_box / run_n,
                   cx_now() - t0);
            fflush(stdout);
            run_cls = run_box = 0;
            run_n = 0;
        }
    }
    double t_train = cx_now() - t0, c_train = cx_cpu_now() - c0;

    double map50 = 0, map5095 = 0, ap[NCLS];
    int nd = 0;
    double t_eval = 0;
    if (!rc) {
        double te = cx_now();
        for (int i = 0; i < n_test; i += 4) {
            int B = n_test - i < 4 ? n_test - i : 4;
            cx_tensor *x = cx_from_data(xt + (size_t)i * SIDE * SIDE, CX_SHAPE(B, 1, SIDE, SIDE));
            nd = detect_batch(&d, x, i, dets, nd, cap);
            cx_step_reset();
        }
        cx_detection_map(dets, nd, gts, ngt, NCLS, &map50, &map5095, ap);
        t_eval = cx_now() - te;
        printf("\nheld-out: %d detections on %d canvases (%d objects)\n", nd, n_test, ngt);
        printf("mAP@0.5 (VOC) %.4f   mAP@[.5:.95] (COCO) %.4f\n", map50, map5095);
        for (int c = 0; c < NCLS; c++)
            printf("  AP@0.5 %-12s %.4f  (%d objects)\n", cx_fashion_mnist_class(c), ap[c], per_cls[c]);
        printf("training %.1f s wall, %.1f s CPU; detection + evaluation %.1f s\n", t_train, c_train, t_eval);
        printf("DETECT seed=%llu pool=%s steps=%d batch=%d test=%d map50=%.4f map5095=%.4f ap50=",
               (unsigned long long)seed, align ? "align" : "pool", steps, batch, n_test, map50, map5095);
        for (int c = 0; c < NCLS; c++) printf("%s%.4f", c ? "," : "", ap[c]);
        printf(" grid_recall=%.4f train_s=%.1f train_cpu_s=%.1f eval_s=%.1f\n", grid_recall, t_train, c_train,
               t_eval);
        if (default_out && mkdir("out", 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "detect: cannot create out/: %s\n", strerror(errno));
            rc = 1;
        }
        if (!rc) {
            char title[160], sub[200];
            snprintf(title, sizeof title, "Fast R-CNN (%s) on Fashion-MNIST canvases", align ? "RoIAlign" : "RoI pool");
            snprintf(sub, sizeof sub,
                     "held-out canvases - boxes: detections with score >= 0.5 (class, score), grey: true objects "
                     "- over %d test canvases mAP(0.5) %.3f, mAP(0.5:0.95) %.3f (seed %llu)",
                     n_test, map50, map5095, (unsigned long long)seed);
            if (picture(png, xt, ot, dets, nd, title, sub)) {
                fprintf(stderr, "detect: cannot write %s: %s\n", png, cx_last_error());
                rc = 1;
            } else printf("%s: %d held-out canvases with their detections\n", png, ROWS * COLS);
        }
    }
    printf("total %.1f s\n", cx_now() - t_start);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(d.all);
    free(xt);
    free(ot);
    free(gts);
    free(dets);
    free(rois);
    free(tgt);
    free(mask);
    free(lab);
    free(xb);
    cx_dataset_free(&train);
    cx_dataset_free(&test);
    return rc;
}
