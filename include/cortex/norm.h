/* cortex/norm.h -- batch normalisation and layer normalisation, with
 * PyTorch's semantics. See cortex.h.
 *
 * Both ops are differentiable with respect to the input, the weight (gamma)
 * and the bias (beta), allocate their result in the current arena and
 * compute their statistics in double precision.
 *
 *   cx_module *bn = cx_batchnorm2d_new(16);    // weight, bias, running stats
 *   cx_tensor *y = cx_module_forward(bn, x);   // x [N, 16, H, W]; mode from cx_is_training()
 */
#ifndef CORTEX_NORM_H
#define CORTEX_NORM_H
#include "core.h"
#include "nn.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- batch norm */
/* F.batch_norm over the channel dim 1 of x [N, C], [N, C, L], [N, C, H, W]
 * (any [N, C, *]): statistics per channel over N and every trailing dim.
 *   training = true: normalise with the batch mean and the biased batch
 *     variance, y = (x - mean) / sqrt(var + eps) * weight + bias; then, if
 *     running_mean / running_var are given, update them in place:
 *         running_mean = (1 - momentum) * running_mean + momentum * mean
 *         running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)
 *     (n = N * prod(trailing dims): the unbiased variance, as PyTorch). The
 *     update happens even under no-grad (as in PyTorch). n must be > 1
 *     ("expected more than 1 value per channel when training").
 *     The backward pass is the full batch-statistics gradient.
 *   training = false: normalise with running_mean / running_var (both
 *     required); the backward pass treats them as constants.
 * running_mean / running_var: F32 [C] (NULL allowed in training mode only;
 * they never receive gradients). weight / bias: F32 [C] or NULL (affine
 * off: weight 1, bias 0). PyTorch defaults: momentum 0.1, eps 1e-5.
 * momentum must be in [0, 1] (PyTorch's momentum=None cumulative average is
 * not offered). */
cx_tensor *cx_batch_norm(cx_tensor *x, cx_tensor *running_mean, cx_tensor *running_var,
                         cx_tensor *weight, cx_tensor *bias, bool training, float momentum,
                         float eps);

/* cx_relu(cx_add(cx_batch_norm(x, ...), residual)) as one op, or
 * cx_relu(cx_batch_norm(x, ...)) when residual is NULL: the same values and
 * gradients bit for bit (the sum and the relu are computed as cx_add and
 * cx_relu compute them), in two passes over the data instead of six forward
 * and backward. The intermediate tensors (the normalised x, the sum) are not
 * kept. residual: F32 with x's shape, or NULL; it receives the gradient
 * cx_add would give it. Arguments otherwise as cx_batch_norm. The block
 * ends of a ResNet (conv - BN - ReLU, conv - BN - add - ReLU) are this op;
 * .net networks use it by themselves (see netdef.h). */
cx_tensor *cx_batch_norm_relu(cx_tensor *x, cx_tensor *residual, cx_tensor *running_mean,
                              cx_tensor *running_var, cx_tensor *weight, cx_tensor *bias, bool training,
                              float momentum, float eps);

/* Batch norm of a channels-last input x [N, *, C] (the channel is the last
 * dim: cx_conv2d_nhwc's [N, H, W, C]), statistics over every other dim:
 * cx_batch_norm (relu false, residual NULL) or cx_batch_norm_relu (relu
 * true, residual NULL or x's shape) of the channels-first input, to float
 * rounding. Arguments otherwise as cx_batch_norm. The passes run along the
 * rows of C values with vectors over the channels (a [N, C] input of
 * cx_batch_norm does too). */
cx_tensor *cx_batch_norm_nhwc(cx_tensor *x, cx_tensor *residual, bool relu, cx_tensor *running_mean,
                              cx_tensor *running_var, cx_tensor *weight, cx_tensor *bias, bool training,
                              float momentum, float eps);

/* ---------------------------------------------------------------- layer norm */
/* F.layer_norm(x, normalized_shape = last `k` dims of x, weight, bias, eps):
 * each group of the last k dims (D = their product elements) is normalised
 * with its own mean and biased variance, then y = xhat * weight + bias
 * elementwise. weight / bias: F32 with the shape of the last k dims of x,
 * or NULL (elementwise_affine off). 1 <= k <= x->ndim. PyTorch default eps
 * 1e-5. */
cx_tensor *cx_layer_norm(cx_tensor *x, int k, cx_tensor *weight, cx_tensor *bias, float eps);

/* ---------------------------------------------------------------- modules */
/* nn.BatchNorm1d(C) (input [N, C] or [N, C, L]) and nn.BatchNorm2d(C)
 * (input [N, C, H, W]) with eps 1e-5, momentum 0.1, affine and running stats:
 *   parameters "weight" [C] (ones), "bias" [C] (zeros);
 *   buffers    "running_mean" [C] (zeros), "running_var" [C] (ones),
 *              "num_batches_tracked" (I64, 0-d like PyTorch's state_dict:
 *              ndim 0, one element).
 * cx_module_state lists weight, bias, running_mean, running_var,
 * num_batches_tracked (PyTorch's state_dict order); inside a Sequential
 * child "bn1" they are "bn1.weight", ..., "bn1.running_mean", ...
 * The forward pass reads cx_is_training(): in training mode it uses batch
 * statistics, updates the running stats and increments num_batches_tracked;
 * otherwise it uses the running stats. A wrong input rank is a fatal error
 * ("BatchNorm2d: expected a 4-D input [N, C, H, W], got [2, 3]"). */
cx_module *cx_batchnorm1d_new(int num_features);
cx_module *cx_batchnorm2d_new(int num_features);
/* Full form: spatial_dims 1 (BatchNorm1d) or 2 (BatchNorm2d); affine false
 * drops weight and bias (then the state holds only the three buffers). */
cx_module *cx_batchnorm_new_ex(int spatial_dims, int num_features, float eps, float momentum,
                               bool affine);
/* Accessors (fatal if m is not a batch-norm module; weight/bias NULL without affine). */
/* The module's forward followed by + residual (NULL: none) and a relu, as
 * one op (cx_batch_norm_relu with the module's parameters, running stats
 * and mode; num_batches_tracked counts as in cx_module_forward). Fatal if
 * m is not a batch-norm module. */
cx_tensor *cx_batchnorm_forward_relu(cx_module *m, cx_tensor *x, cx_tensor *residual);
/* The same module on a channels-last input x [N, *, C] (cx_batch_norm_nhwc):
 * plain (relu false, residual NULL) or with the relu (and residual). */
cx_tensor *cx_batchnorm_forward_nhwc(cx_module *m, cx_tensor *x, cx_tensor *residual, bool relu);
cx_tensor *cx_batchnorm_weight(cx_module *m);
cx_tensor *cx_batchnorm_bias(cx_module *m);
cx_tensor *cx_batchnorm_running_mean(cx_module *m);
cx_tensor *cx_batchnorm_running_var(cx_module *m);
cx_tensor *cx_batchnorm_num_batches_tracked(cx_module *m); /* I64, 0-d */

/* nn.LayerNorm(normalized_shape) with eps 1e-5 and elementwise affine:
 * parameters "weight" (ones) and "bias" (zeros) of shape `shape` (ndim dims,
 * 1..CX_MAX_DIMS). The input's last ndim dims must equal `shape`. */
cx_module *cx_layernorm_new(const int *shape, int ndim);
/* Full form: eps and elementwise_affine (false: no parameters). */
cx_module *cx_layernorm_new_ex(const int *shape, int ndim, float eps, bool affine);
cx_tensor *cx_layernorm_weight(cx_module *m); /* NULL without affine */
cx_tensor *cx_layernorm_bias(cx_module *m);

#ifdef __cplusplus
}
#endif
#endif
