/* cortex/sampler.h -- the spatial transformer (Jaderberg, Simonyan, Zisserman
 * and Kavukcuoglu, NIPS 2015): affine sampling grids, bilinear grid sampling
 * and the spatial-transformer module, with PyTorch's semantics. See cortex.h.
 *
 * A spatial transformer warps its input with a transformation predicted from
 * the input itself: a localisation network maps x [N, C, H, W] to the six
 * numbers of an affine matrix theta [N, 2, 3] per image; cx_affine_grid turns
 * theta into a sampling grid (where to read, per output pixel); cx_grid_sample
 * reads the input there with bilinear interpolation. All three steps are
 * differentiable, so the localisation network learns from the classifier's
 * loss alone, without any supervision of the transformation:
 *
 *   cx_tensor *theta = ...;                                 // [N, 2, 3]
 *   cx_tensor *grid = cx_affine_grid(theta, N, C, 28, 28, false);  // [N, 28, 28, 2]
 *   cx_tensor *y = cx_grid_sample(x, grid, false);          // [N, C, 28, 28]
 *
 * Coordinates. A grid holds normalised (x, y) pairs, x along the width and y
 * along the height, (-1, -1) the top-left and (1, 1) the bottom-right of the
 * input. With align_corners = true, -1 and 1 are the centres of the corner
 * pixels: pixel column i = (x + 1) / 2 * (W - 1). With align_corners = false
 * (PyTorch's default), -1 and 1 are the outer edges of the corner pixels:
 * i = ((x + 1) * W - 1) / 2, so the image is resolution-independent. The same
 * convention must be used for both calls. theta maps output coordinates to
 * input coordinates: the identity [[1, 0, 0], [0, 1, 0]] reads every output
 * pixel at its own place; [[s, 0, tx], [0, s, ty]] with s < 1 zooms in on the
 * point (tx, ty).
 *
 * Both ops allocate their result in the current arena, check their arguments
 * (a wrong shape is a fatal error naming the op, the argument and the shapes)
 * and run in parallel with OpenMP above a size threshold; every result and
 * gradient is the same for any number of threads (each output element and
 * each gradient element is summed by one thread in a fixed order). */
#ifndef CORTEX_SAMPLER_H
#define CORTEX_SAMPLER_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ops */
/* torch.nn.functional.affine_grid(theta, size=(N, C, H, W), align_corners):
 * grid [N, H, W, 2] with
 *     grid[n, i, j] = theta[n] @ (x_j, y_i, 1)
 * where x_j, j = 0 .. W-1, runs from -1 to 1 in W equal steps (y_i likewise
 * over H), each multiplied by (W - 1) / W when align_corners is false (the
 * pixel centres of a [-1, 1] image); a size of 1 gives the single coordinate
 * 0. theta: F32 [N, 2, 3]; N, C, H, W >= 1 (C is only checked, as PyTorch's
 * size). Differentiable in theta. */
cx_tensor *cx_affine_grid(cx_tensor *theta, int N, int C, int H, int W, bool align_corners);

/* torch.nn.functional.grid_sample(input, grid, mode='bilinear',
 * padding_mode='zeros', align_corners): out [N, C, Ho, Wo] from input
 * F32 [N, C, H, W] and grid F32 [N, Ho, Wo, 2] (same N). Output pixel
 * (i, j) of image n reads every channel at the input position
 * grid[n, i, j] = (x, y) (normalised, see the top of this file) with bilinear
 * interpolation between the four pixels around it; pixels outside the input
 * count as zero (a point half a pixel outside a border reads half the border
 * pixel; one a pixel or more outside reads 0; infinite coordinates read 0,
 * NaN coordinates give NaN). Differentiable in the input (each output's
 * gradient goes to its four pixels with the interpolation weights) and in
 * the grid (the slope of the bilinear surface, times the pixels per unit of
 * normalised coordinate: (W - 1) / 2 with align_corners, W / 2 without);
 * at integer pixel positions the surface has a kink and the grid gradient is
 * PyTorch's one-sided slope. */
cx_tensor *cx_grid_sample(cx_tensor *input, cx_tensor *grid, bool align_corners);

/* ---------------------------------------------------------------- module */
/* A spatial-transformer module: x [N, C, H, W] -> grid_sample(x,
 * affine_grid(theta, N, C, out_h, out_w)) with theta = fc_loc(loc(x))
 * reshaped to [N, 2, 3].
 *   loc        the localisation network (children "loc"): any module mapping
 *              x to features [N, loc_features] (an output of higher rank is
 *              flattened to [N, -1] first), e.g. conv / pool / ReLU layers and
 *              a Linear; the STN takes over the caller's reference
 *   fc_loc     a Linear(loc_features, 6) created here (child "fc_loc"), its
 *              weight set to 0 and its bias to the identity (1, 0, 0, 0, 1, 0),
 *              so a fresh STN passes its input through unchanged (up to
 *              interpolation, and exactly when out_h, out_w equal H, W) and
 *              starts learning from there, as in the paper
 *   out_h/w    output size; 0 keeps the input's
 * Parameter names follow a PyTorch module with attributes `loc` and
 * `fc_loc`: "loc.<...>", "fc_loc.weight" [6, loc_features], "fc_loc.bias".
 * cx_module_forward gives the transformed images; cx_module_call with
 * max_out >= 2 also gives theta [N, 2, 3] (out[1]). describe():
 * "SpatialTransformer(out=28x28, align_corners=0)". Fatal: loc NULL,
 * loc_features < 1, out_h or out_w < 0; at forward time, features that are
 * not [N, loc_features] (naming the STN, the shapes and loc_features). */
cx_module *cx_stn_new(cx_module *loc, int loc_features, int out_h, int out_w, bool align_corners);
/* theta [N, 2, 3] of a batch (the localisation network and fc_loc only). */
cx_tensor *cx_stn_theta(cx_module *stn, cx_tensor *x);
/* The localisation network and the final Linear of an STN (owned by it). */
cx_module *cx_stn_loc(cx_module *stn);
cx_module *cx_stn_fc_loc(cx_module *stn);

#ifdef __cplusplus
}
#endif
#endif
