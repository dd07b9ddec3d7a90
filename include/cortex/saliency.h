/* cortex/saliency.h -- seeing what a network learned, and where an image
 * draws the eye. See cortex.h.
 *
 *   cx_gradcam_result g;
 *   if (cx_gradcam(net, x, NULL, -1, &g)) puts(cx_last_error());  // x [1, C, H, W]
 *   ... g.up[y * W + x] is the class-discriminative heat at input pixel (y, x)
 *   cx_gradcam_free(&g);
 *
 * Network explanations (a network of cortex/netdef.h for Grad-CAM and
 * receptive fields, any image classifier for gradient saliency):
 *   cx_saliency        vanilla gradient saliency, |d y_c / d x| (Simonyan,
 *                      Vedaldi & Zisserman 2013)
 *   cx_gradcam         Grad-CAM (Selvaraju et al. 2017)
 *   cx_net_receptive_box  the input pixels one unit of a layer sees
 *   cx_top_activations the images (and positions) that excite a conv unit most
 * Bottom-up saliency of an image, no network:
 *   cx_itti_saliency   Itti, Koch & Niebur (1998) centre-surround saliency
 *
 * The network functions run the model in evaluation mode (cx_set_training(false)
 * for the call; the flag is restored) and leave the parameters' gradients
 * untouched (the parameters stop requiring grad during the call). Their
 * scratch tensors are released from the current arena before they return;
 * results are heap memory owned by the caller (the *_free functions).
 * Errors are statuses with a message (cx_last_error): CX_ERR_ARG for a
 * wrong shape, class, layer or position; fatal only for NULL pointers. */
#ifndef CORTEX_SALIENCY_H
#define CORTEX_SALIENCY_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Resize a h x w plane to oh x ow by bilinear interpolation with pixel
 * centres aligned as PyTorch's interpolate(mode="bilinear",
 * align_corners=False): source coordinate (o + 0.5) * h / oh - 0.5, clamped
 * at 0 and at the last row / column. dst must not overlap src. */
void cx_resize_bilinear(const float *src, int h, int w, float *dst, int oh, int ow);

/* ---- gradient saliency */
typedef struct cx_saliency_result {
    int cls;      /* the class explained */
    float score;  /* its output y_c (the logit, before any softmax) */
    int c, h, w;  /* the input's channels and size */
    float *grad;  /* [c * h * w] d y_c / d x */
    float *map;   /* [h * w] max over channels of |grad| */
} cx_saliency_result;

/* Saliency of image x ([1, C, H, W], F32) for class `cls` of `model` (any
 * module mapping [1, C, H, W] to [1, K] scores); cls < 0: the predicted
 * class (largest score). Must be called with grad mode on (not inside
 * cx_no_grad_begin). Errors: CX_ERR_ARG (x not [1, C, H, W], an output that
 * is not [1, K], cls >= K, grad mode off). On error *out is zeroed. */
cx_status cx_saliency(cx_module *model, const cx_tensor *x, int cls, cx_saliency_result *out);
void cx_saliency_free(cx_saliency_result *r); /* frees grad and map; r may be NULL */

/* ---- Grad-CAM */
typedef struct cx_gradcam_result {
    int cls;           /* the class explained */
    float score;       /* its output y_c */
    int layer;         /* the layer whose output is A (cx_net_layer index) */
    int conv;          /* the convolution layer asked for (or chosen), or the same as `layer` */
    int k, h, w;       /* A's channels and size */
    float *alpha;      /* [k] alpha_k = mean over (i, j) of d y_c / d A_k[i, j] */
    float *cam;        /* [h * w] ReLU(sum_k alpha_k A_k) */
    int in_h, in_w;    /* the input's size */
    float *up;         /* [in_h * in_w] cam resized by cx_resize_bilinear */
} cx_gradcam_result;

/* Grad-CAM of image x ([1, C, H, W]) for class cls (< 0: the predicted one)
 * of `net`, a network of cortex/netdef.h whose output is [1, K].
 * `layer` names a layer with an output of [1, k, h, w]; NULL: the last
 * conv2d layer. When the named (or chosen) layer is a convolution whose
 * output goes straight into an activation layer (relu, gelu, ..., reading
 * that layer only, the usual "conv2d then relu" lines), A is that
 * activation's output: the rectified feature maps of the paper; otherwise A
 * is the layer's own output. Must be called with grad mode on. Errors:
 * CX_ERR_ARG (net not a Net, x's shape, no layer of that name, a layer
 * without a [k, h, w] output, no conv2d layer, cls out of range).
 * On error *out is zeroed. */
cx_status cx_gradcam(cx_module *net, const cx_tensor *x, const char *layer, int cls, cx_gradcam_result *out);
void cx_gradcam_free(cx_gradcam_result *r);

/* ---- receptive fields and the strongest patches */
/* The input pixels that unit (y, x) of layer `layer` of a Net (2-D layers:
 * output [C, H, W]) depends on: rows box[0] .. box[2] and columns box[1] ..
 * box[3], inclusive, in input coordinates. Computed backwards through the
 * layers' kernels, strides, padding and dilation (a conv or pool line:
 * [y * s - p, y * s - p + (k - 1) * d]); elementwise layers pass the box
 * on, add and concat take the union of their inputs' boxes, upsample maps
 * back to the pixels it reads, and global / adaptive pooling, flatten,
 * linear and layer norm see their whole input. The box may extend past the
 * image (padding): clip it to draw it. Errors: CX_ERR_ARG (not a Net, the
 * layer index or (y, x) out of range, a layer on the way without a 2-D
 * layout, a transposed convolution). */
cx_status cx_net_receptive_box(const cx_module *net, int layer, int y, int x, int box[4]);

/* One strong response of a unit: image index, position in the layer's
 * output and the value there, with the receptive box (cx_net_receptive_box). */
typedef struct cx_patch_hit {
    int image, y, x;
    float value;
    int box[4];
} cx_patch_hit;

/* For each unit (channel) u < units of layer `layer` (a name; an output of
 * [C, H, W] with C >= units): the top_k images of `images` ([N, ...] as the
 * net's input, run in batches of 64 without gradients) whose largest
 * response of u (over positions) is highest, best first: hits[u * top_k + j].
 * One hit per image (its strongest position), so the k patches are k
 * different images. top_k > N leaves the tail of each unit's list with
 * image = -1. The layer's output is taken as it is (a conv2d layer: before
 * its activation). Errors: CX_ERR_ARG (as cx_net_receptive_box, an unknown
 * layer name, units < 1 or > C, top_k < 1, images of the wrong shape). */
cx_status cx_top_activations(cx_module *net, const cx_tensor *images, const char *layer, int units, int top_k,
                             cx_patch_hit *hits);

/* ---- Itti-Koch-Niebur bottom-up saliency
 * Feature pyramids of the image (dyadic Gaussian pyramids, 5-tap binomial
 * filter): intensity I = (r + g + b) / 3; with colour, the broadly tuned
 * R, G, B, Y channels (r, g, b divided by I where I > max(I) / 10);
 * orientation: the energy of Gabor filters at 0, 45, 90 and 135 degrees on
 * each level of the intensity pyramid. Centre-surround maps |F(c) - F(s)|
 * (the surround level bilinearly resized to the centre's size), RG and BY as
 * double opponents, for centres c in {c0, c0 + 1, c0 + 2} and surrounds
 * s = c + 3, c + 4; each map goes through N(.), the maps are resized to
 * level c0 + 2 and summed into the conspicuity maps I, C, O (O: N of each
 * orientation's sum, summed), and S = mean of N(I), N(C), N(O).
 * N(.): scale the map to [0, 1], find its local maxima (>= the 8
 * neighbours, above 0.05), m = mean of those other than the global maximum,
 * multiply by (1 - m)^2: a map with one strong peak keeps it, a map with many
 * comparable peaks is suppressed.
 * Small images: the paper's images (640 x 480) allow c0 = 2 with 9 levels.
 * An image whose shorter side is under `min_side` (default 256) is first
 * resized up (bilinear) to that shorter side, so the pyramid has the
 * paper's 9 levels and the scales keep their size relative to the image;
 * the maps are at level c0 + 2 = 4 of the (resized) image, 1/16 of it. */
typedef struct cx_itti_opts {
    int min_side;    /* default 256; 16 << c0 .. 4096 */
    int c0;          /* finest centre level, default 2 */
    bool color;      /* use the colour channels of a 3-channel image (default true) */
} cx_itti_opts;
cx_itti_opts cx_itti_defaults(void);

typedef struct cx_itti_result {
    int h, w;            /* the maps' size (level c0 + 2) */
    int in_h, in_w;      /* the input's size */
    bool has_color;
    float *intensity;    /* [h * w] conspicuity maps, each before its N(.) */
    float *color;        /* [h * w], NULL for a grey image (or color off) */
    float *orientation;  /* [h * w] */
    float *saliency;     /* [h * w] */
    float *saliency_up;  /* [in_h * in_w] saliency resized to the input */
} cx_itti_result;

/* Saliency map of an image: pixels [c, h, w] (c = 1 grey or 3 RGB, values
 * in [0, 1]). opts NULL: cx_itti_defaults(). Errors: CX_ERR_ARG (c not 1 or
 * 3, a side < 8, a non-finite pixel, options out of range), CX_ERR_NOMEM.
 * On error *out is zeroed. */
cx_status cx_itti_saliency(const float *pixels, int c, int h, int w, const cx_itti_opts *opts, cx_itti_result *out);
void cx_itti_free(cx_itti_result *r);

#ifdef __cplusplus
}
#endif
#endif
