/*
 * cortex/memory.h -- differentiable memory operations of the Neural Turing
 * Machine (Graves et al. 2014), batched, with gradients to every tensor
 * argument. Interpolation, shift, sharpening and read are compositions of
 * autograd ops; the content addressing (graph op "ntm_content"), the write
 * ("ntm_write") and, inside cx_ntm_address, interpolation + shift +
 * sharpening ("ntm_locate") are fused kernels, one graph node each with its
 * own backward, computing the same formulas (checked against PyTorch 1.13
 * by tests/nn/test_memory.c and tests/models/test_ntm.c).
 *
 * Shapes: memory M [B, N, W] (N slots of width W), weightings w [B, N],
 * key / erase / add vectors [B, W], per-item scalars (beta, g, gamma) [B] or
 * [B, 1], shift distributions s [B, K]. All F32.
 *
 * Addressing (one head, one step):
 *   cx_ntm_content_address  w_c = softmax_i(beta * cos(key, M_i))
 *   cx_ntm_interpolate      w_g = g w_c + (1 - g) w_prev
 *   cx_ntm_shift            w~_i = sum_j w_g[(i - o_j) mod N] s_j
 *   cx_ntm_sharpen          w_i = w~_i^gamma / sum_k w~_k^gamma
 *   cx_ntm_address          the four in that order
 * Memory access:
 *   cx_ntm_read             r = sum_i w_i M_i                        [B, W]
 *   cx_ntm_write            M' = M * (1 - w e^T) + w a^T             [B, N, W]
 *
 * Numerics:
 *   - the cosine is PyTorch 1.13's F.cosine_similarity(key.unsqueeze(1), M,
 *     dim=-1, eps=CX_NTM_COS_EPS): sum k_j M_ij / (max(||k||, eps)
 *     max(||M_i||, eps)), each norm clamped separately, so a zero key or a
 *     zero memory row gives similarity 0 (not NaN); see cx_cosine_similarity.
 *   - beta, g, gamma are used as given (no softplus / sigmoid / 1 + softplus:
 *     the controller applies those); beta >= 0, g in [0, 1] and gamma >= 1
 *     are the NTM's ranges but are not checked (they are data).
 *   - the shift offsets are o_j = j - (K-1)/2, j = 0..K-1: with K = 3,
 *     s = (s_-1, s_0, s_+1); weight moves to HIGHER indices for a positive
 *     offset and wraps around (one-hot at slot N-1 shifted by +1 lands on
 *     slot 0), as cx_circular_conv. K must be odd and K <= N.
 *   - sharpening computes w^gamma with cx_pow_t: an exact zero stays 0 and
 *     gets gradient 0 for gamma > 1 (1 before the normalisation for
 *     gamma = 1), and d/dgamma of 0^gamma is 0 (PyTorch's torch.pow
 *     conventions). No epsilon is added to the normaliser: a row of w that
 *     is entirely zero gives NaN, as the plain PyTorch formula does. After
 *     a softmax and a shift by a distribution this cannot happen unless
 *     every weight underflows.
 *   - gamma = 1 is the identity up to rounding (w / sum w, sum w = 1).
 *
 * Errors (cx_fatal, the message names the function and the argument):
 * a NULL or non-F32 argument, a memory that is not [B, N, W], a key / erase
 * / add of another width or batch, a weighting that is not [B, N], a scalar
 * argument that is not [B] or [B, 1], a shift distribution that is not
 * [B, K] with K odd and K <= N.
 */
#ifndef CORTEX_MEMORY_H
#define CORTEX_MEMORY_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* eps of the cosine similarity of the content addressing (PyTorch's default) */
#define CX_NTM_COS_EPS 1e-8f

/* mem [B, N, W], key [B, W], beta [B] or [B, 1] -> w_c [B, N]. */
cx_tensor *cx_ntm_content_address(cx_tensor *mem, cx_tensor *key, cx_tensor *beta);
/* wc, wprev [B, N], g [B] or [B, 1] -> g wc + (1 - g) wprev [B, N]. */
cx_tensor *cx_ntm_interpolate(cx_tensor *wc, cx_tensor *wprev, cx_tensor *g);
/* w [B, N], s [B, K] (K odd, K <= N) -> the circular shift [B, N]. */
cx_tensor *cx_ntm_shift(cx_tensor *w, cx_tensor *s);
/* w [B, N], gamma [B] or [B, 1] -> w^gamma / sum w^gamma [B, N]. */
cx_tensor *cx_ntm_sharpen(cx_tensor *w, cx_tensor *gamma);
/* The full addressing: sharpen(shift(interpolate(content_address(mem, key,
 * beta), wprev, g), s), gamma) -> [B, N]. */
cx_tensor *cx_ntm_address(cx_tensor *mem, cx_tensor *key, cx_tensor *beta, cx_tensor *g, cx_tensor *wprev,
                          cx_tensor *s, cx_tensor *gamma);
/* mem [B, N, W], w [B, N] -> r [B, W], r_b = sum_i w_bi M_bi. */
cx_tensor *cx_ntm_read(cx_tensor *mem, cx_tensor *w);
/* mem [B, N, W], w [B, N], erase, add [B, W] -> M * (1 - w e^T) + w a^T
 * [B, N, W] (a new tensor; mem is not modified). */
cx_tensor *cx_ntm_write(cx_tensor *mem, cx_tensor *w, cx_tensor *erase, cx_tensor *add);

#ifdef __cplusplus
}
#endif
#endif
