/* cortex/rl.h -- learning from reward: stochastic policies and the
 * score-function (REINFORCE) estimator. See cortex.h.
 *
 * The score-function estimator (Williams 1992) turns "choose an action, get
 * a reward" into a gradient:
 *
 *   grad E[R] = E[ (R - b) grad log p(a) ]
 *
 * where a is drawn from the policy p, R is the return that followed it and b
 * is any baseline that does not depend on a (a learned value reduces the
 * variance without changing the expectation). The pieces below build that
 * surrogate loss from ordinary ops, so the same code trains a policy network
 * (reinforcement learning), the location network of hard attention (a
 * recurrent attention model) or any other discrete or continuous choice:
 *
 *   cx_tensor *logits = cx_module_forward(policy, obs);          // [N, K]
 *   cx_tensor *logp;
 *   cx_tensor *a = cx_categorical_sample(logits, NULL, &logp);   // I32 [N], logp [N]
 *   ... act, observe rewards, compute returns R [N] ...
 *   cx_tensor *b = cx_module_forward(value, obs);                 // [N] baseline
 *   cx_tensor *loss = cx_add(cx_reinforce_loss(logp, R, b, NULL, CX_REDUCE_MEAN),
 *                            cx_mse_loss(b, R, CX_REDUCE_MEAN));  // baseline regression
 *   cx_backward(loss);
 *
 * Random draws come from the stream given (NULL: the calling thread's current
 * stream), so a run is reproducible from its seeds. */
#ifndef CORTEX_RL_H
#define CORTEX_RL_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Draw one action per row of logits [N, K] from softmax(logits): I32 [N]
 * (no gradient). *logp (if not NULL) receives log p(a) = log_softmax(logits)
 * at the drawn actions, [N], differentiable in the logits. One uniform draw
 * per row from rng (NULL: the current stream). Fatal on a non-F32 or
 * non-2-D input, K < 1, or a row whose logits are all -inf or NaN. */
cx_tensor *cx_categorical_sample(cx_tensor *logits, cx_rng *rng, cx_tensor **logp);
/* log p(a) of given actions a (I32/I64 [N], each in [0, K)) under
 * softmax(logits [N, K]): [N], differentiable in the logits (for PPO-style
 * ratios and for re-scoring stored actions). */
cx_tensor *cx_categorical_log_prob(cx_tensor *logits, const cx_tensor *actions);
/* Entropy of softmax(logits) per row, [N], differentiable (an exploration
 * bonus). */
cx_tensor *cx_categorical_entropy(cx_tensor *logits);

/* Draw a = mean + exp(log_std) * eps, eps ~ N(0, 1), for mean [N, D] and
 * log_std [D] or [N, D] (broadcast): a [N, D] with no gradient (the
 * score-function estimator differentiates log p, not the sample). *logp (if
 * not NULL) receives the log-density of a under the diagonal Gaussian,
 *   log p(a) = sum_d -0.5 ((a_d - mean_d) / std_d)^2 - log std_d - 0.5 log(2 pi),
 * [N], differentiable in mean and log_std. D draws per row from rng (NULL:
 * the current stream). */
cx_tensor *cx_normal_sample(cx_tensor *mean, cx_tensor *log_std, cx_rng *rng, cx_tensor **logp);
/* The log-density above for given samples a [N, D] (no gradient to a). */
cx_tensor *cx_normal_log_prob(cx_tensor *mean, cx_tensor *log_std, const cx_tensor *a);

/* Discounted returns along the last axis of rewards [..., T] (F32):
 *   R_t = r_t + gamma R_{t+1},  R_T = 0,
 * reset after a step where done is non-zero (done [..., T], any dtype, may
 * be NULL): R_t = r_t there. A new tensor without gradient (returns are
 * targets). Also the reward-to-go of REINFORCE. 0 <= gamma <= 1. */
cx_tensor *cx_discounted_returns(const cx_tensor *rewards, const cx_tensor *done, float gamma);

/* The score-function surrogate loss
 *   L = - (R - b) * logp   elementwise, then reduced,
 * whose gradient with respect to the policy's parameters is the REINFORCE
 * estimate - (R - b) grad log p. logp [shape] is differentiable; returns
 * [shape] and baseline [shape] (may be NULL: b = 0) are used as constants
 * (the baseline is detached here: train it with its own loss, e.g.
 * cx_mse_loss(baseline, returns)). mask (any dtype, may be NULL): positions
 * where it is 0 contribute nothing (padded steps of episodes of different
 * lengths); CX_REDUCE_MEAN divides by the number of unmasked positions. */
cx_tensor *cx_reinforce_loss(cx_tensor *logp, const cx_tensor *returns, cx_tensor *baseline, const cx_tensor *mask,
                             cx_reduction r);

#ifdef __cplusplus
}
#endif
#endif
