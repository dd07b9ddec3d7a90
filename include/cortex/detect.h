/* cortex/detect.h -- object detection: RoI pooling and RoIAlign (the
 * differentiable ops of SPP-net / Fast R-CNN / Mask R-CNN, with
 * torchvision.ops' conventions), box IoU, non-maximum suppression, R-CNN box
 * regression targets (torchvision's BoxCoder) and average precision (the
 * PASCAL VOC and COCO rules). See cortex.h.
 *
 * Fast R-CNN computes the convolutional features of an image once and pools
 * each region of interest ("RoI", a candidate box) into a fixed-size map:
 *
 *   cx_tensor *feat = ...;                    // [N, C, H, W], stride 4
 *   cx_tensor *rois = ...;                    // [K, 5]: (n, x1, y1, x2, y2)
 *   cx_tensor *r = cx_roi_align(feat, rois, 0.25f, 7, 7, 2, true);  // [K, C, 7, 7]
 *
 * Boxes. A box is (x1, y1, x2, y2) in continuous input-image coordinates, x
 * along the width, (x1, y1) its top-left and (x2, y2) its bottom-right
 * corner; an RoI row is (batch_index, x1, y1, x2, y2) with batch_index an
 * integer in [0, N) stored as a float. spatial_scale maps image coordinates
 * to feature-map cells (1 / the trunk's stride). Areas and IoU have no "+1"
 * (torchvision's box_area / box_iou, not the VOC devkit's pixel counts).
 *
 * The ops allocate their results in the current arena and check their
 * arguments (a wrong shape or an RoI naming a missing image is a fatal error
 * naming the function, the argument and the shapes). Only the feature map is
 * differentiable (the RoIs are constants, as in torchvision). */
#ifndef CORTEX_DETECT_H
#define CORTEX_DETECT_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- RoI ops */
/* torchvision.ops.roi_pool(input, rois, (ph, pw), spatial_scale): RoI max
 * pooling (Fast R-CNN). input F32 [N, C, H, W], rois F32 [K, 5]; result
 * [K, C, ph, pw]. Each RoI is rounded to feature cells,
 *   x1' = round(x1 * scale), x2' = round(x2 * scale) (half away from zero),
 *   width = max(x2' - x1' + 1, 1) cells (height likewise),
 * divided into ph x pw bins of width / pw cells each (bin j covers cells
 * floor(j w / pw) .. ceil((j + 1) w / pw) - 1 from x1', clipped to the map);
 * an output is the maximum of its bin (the first maximum in row-major order),
 * 0 for a bin entirely outside the map. Gradient: each output's to the
 * input cell that was its maximum (summed where bins share a cell). */
cx_tensor *cx_roi_pool(cx_tensor *input, const cx_tensor *rois, float spatial_scale, int ph, int pw);

/* torchvision.ops.roi_align(input, rois, (ph, pw), spatial_scale,
 * sampling_ratio, aligned): RoIAlign (Mask R-CNN), no rounding. The RoI in
 * feature coordinates is x1 * scale - o .. x2 * scale - o with o = 0.5 when
 * aligned (pixel centres at half-integers, the correct alignment), 0 when
 * not (then a RoI smaller than one cell is widened to one cell). Each of the
 * ph x pw bins averages gh x gw bilinear samples on a regular grid inside
 * the bin, gh = sampling_ratio (> 0) or ceil(roi_height / ph) (sampling_ratio
 * <= 0, torchvision's -1 "adaptive"; gw likewise). A sample more than one
 * cell outside the map reads 0; one in the border strip is clamped to the
 * edge. Gradient: each sample's share (weight / (gh gw)) to its four
 * neighbouring cells. */
cx_tensor *cx_roi_align(cx_tensor *input, const cx_tensor *rois, float spatial_scale, int ph, int pw,
                        int sampling_ratio, bool aligned);

/* ---------------------------------------------------------------- boxes */
/* torchvision.ops.box_iou: a F32 [N, 4], b F32 [M, 4] -> F32 [N, M] with
 * iou[i, j] = |a_i & b_j| / |a_i | b_j| (0 when the union is empty).
 * Not recorded (no gradient). */
cx_tensor *cx_box_iou(const cx_tensor *a, const cx_tensor *b);
/* IoU of two single boxes (x1, y1, x2, y2), as cx_box_iou. */
float cx_box_iou1(const float *a, const float *b);

/* torchvision.ops.nms: non-maximum suppression of boxes F32 [N, 4] with
 * scores F32 [N]. Visits boxes by decreasing score (equal scores: lower
 * index first); keeps a box unless its IoU with an already kept box is
 * greater than iou_threshold. Returns the kept indices, I64 [k] (k may be
 * 0: a tensor of shape [0]), in decreasing order of score. */
cx_tensor *cx_nms(const cx_tensor *boxes, const cx_tensor *scores, float iou_threshold);
/* torchvision.ops.batched_nms: NMS within each category: boxes with
 * different idxs (I32 or I64 [N]) never suppress each other. Kept indices
 * I64 [k] in decreasing order of score. */
cx_tensor *cx_batched_nms(const cx_tensor *boxes, const cx_tensor *scores, const cx_tensor *idxs,
                          float iou_threshold);

/* R-CNN box regression targets (torchvision's det_utils.BoxCoder). For a
 * proposal P (centre px, py, size pw, ph) and a box G:
 *   d = (wx (gx - px) / pw, wy (gy - py) / ph, ww log(gw / pw), wh log(gh / ph))
 * weights: (wx, wy, ww, wh), NULL for (1, 1, 1, 1) (Fast R-CNN's heads use
 * (10, 10, 5, 5)). encode: boxes, proposals F32 [N, 4] -> deltas [N, 4].
 * decode: deltas, proposals [N, 4] -> boxes [N, 4], the inverse, with
 * dw / ww and dh / wh clamped at log(1000 / 16) as torchvision. Proposals
 * (and, for encode, boxes) must have positive width and height. Not
 * recorded. */
cx_tensor *cx_box_encode(const cx_tensor *boxes, const cx_tensor *proposals, const float *weights);
cx_tensor *cx_box_decode(const cx_tensor *deltas, const cx_tensor *proposals, const float *weights);

/* ---------------------------------------------------------------- average precision */
/* One detection: image, class, confidence, box. */
typedef struct {
    int image, cls;
    float score;
    float box[4];
} cx_det;
/* One ground-truth object. */
typedef struct {
    int image, cls;
    float box[4];
} cx_gt;

/* Matching and interpolation rules of cx_average_precision. */
typedef enum {
    /* PASCAL VOC (2010+ devkit): detections by decreasing score; each is
     * compared with the ground truth of its image and class with the
     * largest IoU: a true positive if that IoU > the threshold (the
     * devkit's strict test) and the object is not yet taken, else a false positive (a duplicate);
     * AP = the area under the precision-recall curve with precision made
     * monotone (all-point interpolation). */
    CX_AP_VOC = 0,
    /* COCO (pycocotools, without area ranges, crowd regions or the 100
     * detections per image cap): a detection takes the best still
     * unmatched object with IoU >= the threshold; AP = the mean of the
     * monotone precision at the 101 recalls 0, 0.01, .., 1 (0 beyond the
     * largest recall reached). */
    CX_AP_COCO = 1
} cx_ap_rule;

/* AP of class cls over n_dets detections and n_gts objects (all images; the
 * entries of other classes are ignored). Ties in score keep their order in
 * dets. Returns -1 when the class has no ground truth (undefined AP), 0 when
 * it has some but no detection matches. */
double cx_average_precision(const cx_det *dets, int n_dets, const cx_gt *gts, int n_gts, int cls,
                            float iou_threshold, cx_ap_rule rule);

/* The usual summary over classes 0 .. n_classes-1 (classes without ground
 * truth are left out of the means):
 *   map50      mean VOC AP at IoU 0.5
 *   map5095    mean over IoU thresholds 0.50, 0.55, .., 0.95 of the mean
 *              COCO AP (COCO's "AP")
 *   ap50       NULL or n_classes per-class VOC APs at 0.5 (-1: no ground truth)
 * Returns the number of classes with ground truth. */
int cx_detection_map(const cx_det *dets, int n_dets, const cx_gt *gts, int n_gts, int n_classes, double *map50,
                     double *map5095, double *ap50);

#ifdef __cplusplus
}
#endif
#endif
