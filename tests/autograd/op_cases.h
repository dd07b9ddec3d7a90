/* The case table of the op tests: one row per case drives both the
 * comparison with PyTorch and the finite-difference gradient check
 * (tests/autograd/test_ops.c), on the inputs tools/gen_op_fixtures.py draws
 * for that case (the generator has one row per case too, with the same name).
 *
 *   X(name, gradcheck, expression of x[k] (float inputs) and ix[k] (index inputs))
 *
 * gradcheck: GC (central differences, eps 1e-2, |a - n| <= 2e-3 + 1e-2 |n|),
 * GCT(eps, atol, rtol) for other tolerances, or NOGC for the few cases whose
 * inputs are too large for float32 finite differences (the *_big stability
 * cases, compared with PyTorch only). FWD_TOL(gc, rtol, atol) replaces the
 * forward tolerance of the PyTorch comparison (default rtol 1e-4, atol 1e-5)
 * for accuracy cases whose reference is computed in float64. Integer outputs
 * (indices) are compared exactly. Rows are grouped by op family; the shape /
 * axis / parameter / requires-grad variants of a family follow its first rows
 * (their inputs come from gen_variants() of the generator). Adding an op: its
 * kernel and backward, its declaration, one row here and one row in the
 * generator. */
#ifndef CX_OP_CASES_H
#define CX_OP_CASES_H

/* ------------------------------------------------------------ case table
 * X(name, GC, expression of x[k] (float inputs) and ix[k] (index inputs)) */
#define CX_RED(X, base, EXPR_R) \
    X(base##_mean, GC, EXPR_R(CX_REDUCE_MEAN)) X(base##_sum, GC, EXPR_R(CX_REDUCE_SUM)) \
    X(base##_none, GC, EXPR_R(CX_REDUCE_NONE))

/* binary op rows with one input requiring grad (the fixture says which):
 * base_ga only x[0], base_gb only x[1]; CX_BIN3 adds base itself (both) */
#define CX_GAB(X, base, fn) X(base##_ga, GC, fn(x[0], x[1])) X(base##_gb, GC, fn(x[0], x[1]))
#define CX_BIN3(X, base, fn) X(base, GC, fn(x[0], x[1])) CX_GAB(X, base, fn)

#define CE(r) cx_cross_entropy(x[0], ix[1], r)
#define NLL(r) cx_nll_loss(cx_log_softmax(x[0], 1), ix[1], r)
#define NLLP(r) cx_nll_loss(x[0], ix[1], r) /* x[0]: log-probabilities */
#define MSE(r) cx_mse_loss(x[0], x[1], r)
#define BCE(r) cx_bce_with_logits(x[0], x[1], r)
#define MM1(r) cx_multi_margin_loss(x[0], ix[1], 1.0f, r)
#define MM05(r) cx_multi_margin_loss(x[0], ix[1], 0.5f, r)
#define MM045(r) cx_multi_margin_loss(x[0], ix[1], 0.45f, r)
#define MM2(r) cx_multi_margin_loss_p(x[0], ix[1], 2, 1.0f, NULL, r)
#define MM2W(r) cx_multi_margin_loss_p(x[0], ix[1], 2, 0.5f, x[2], r)
#define SL1_1(r) cx_smooth_l1_loss(x[0], x[1], 1.0f, r)
#define SL1_05(r) cx_smooth_l1_loss(x[0], x[1], 0.5f, r)
#define HINGE1(r) cx_hinge_loss(x[0], x[1], 1.0f, r)
#define HINGE05(r) cx_hinge_loss(x[0], x[1], 0.5f, r)
#define PERC(r) cx_perceptron_loss(x[0], x[1], r)
#define LOGI(r) cx_logistic_loss(x[0], x[1], r)

#define CASES(X) \
    /* elementwise binary */ \
    X(add_same, GC, cx_add(x[0], x[1])) X(add_bc, GC, cx_add(x[0], x[1])) X(add_bc2, GC, cx_add(x[0], x[1])) \
    X(sub_same, GC, cx_sub(x[0], x[1])) X(sub_bc, GC, cx_sub(x[0], x[1])) X(sub_bc2, GC, cx_sub(x[0], x[1])) \
    X(mul_same, GC, cx_mul(x[0], x[1])) X(mul_bc, GC, cx_mul(x[0], x[1])) X(mul_bc2, GC, cx_mul(x[0], x[1])) \
    X(div_same, GC, cx_div(x[0], x[1])) X(div_bc, GC, cx_div(x[0], x[1])) X(div_bc2, GC, cx_div(x[0], x[1])) \
    X(maximum_same, GC, cx_maximum(x[0], x[1])) X(maximum_bc, GC, cx_maximum(x[0], x[1])) \
    /* shapes: same [2,3] op [2,3], bc [4,1,3] op [5,1], bc2 [3] op [2,3] (for sub: \
     * sub_bc2l; sub_bc2 is [2,3] - [3]), bcs [2,3] op [1]; _ga/_gb: one input requires grad */ \
    CX_GAB(X, add_same, cx_add) CX_GAB(X, add_bc, cx_add) CX_GAB(X, add_bc2, cx_add) \
    CX_BIN3(X, add_bcs, cx_add) \
    CX_GAB(X, sub_same, cx_sub) CX_GAB(X, sub_bc, cx_sub) CX_BIN3(X, sub_bc2l, cx_sub) \
    CX_BIN3(X, sub_bcs, cx_sub) \
    CX_GAB(X, mul_same, cx_mul) CX_GAB(X, mul_bc, cx_mul) CX_GAB(X, mul_bc2, cx_mul) \
    CX_BIN3(X, mul_bcs, cx_mul) \
    CX_GAB(X, div_same, cx_div) CX_GAB(X, div_bc, cx_div) CX_GAB(X, div_bc2, cx_div) \
    CX_BIN3(X, div_bcs, cx_div) \
    CX_GAB(X, maximum_same, cx_maximum) CX_GAB(X, maximum_bc, cx_maximum) \
    CX_BIN3(X, maximum_bc2, cx_maximum) CX_BIN3(X, maximum_bcs, cx_maximum) \
    X(mul_max_self, GC, cx_add(cx_mul(x[0], x[0]), cx_maximum(x[0], x[0]))) \
    X(add_scalar, GC, cx_add_scalar(x[0], 0.75f)) X(mul_scalar, GC, cx_mul_scalar(x[0], -1.5f)) \
    X(mul_scalar_0, GC, cx_mul_scalar(x[0], 0.0f)) \
    /* elementwise unary */ \
    X(neg, GC, cx_neg(x[0])) X(exp, GC, cx_exp(x[0])) X(log, GC, cx_log(x[0])) X(sqrt, GC, cx_sqrt(x[0])) \
    X(pow_2_5, GC, cx_pow(x[0], 2.5f)) X(pow_3, GC, cx_pow(x[0], 3.0f)) X(abs, GC, cx_abs(x[0])) \
    X(clamp, GC, cx_clamp(x[0], -0.5f, 0.7f)) X(sigmoid, GC, cx_sigmoid(x[0])) X(tanh, GC, cx_tanh(x[0])) \
    X(relu, GC, cx_relu(x[0])) X(leaky_relu, GC, cx_leaky_relu(x[0], 0.1f)) \
    X(elu_1, GC, cx_elu(x[0], 1.0f)) X(elu_0_5, GC, cx_elu(x[0], 0.5f)) X(gelu, GC, cx_gelu(x[0])) \
    X(softplus_b1_t20, GC, cx_softplus(x[0], 1.0f, 20.0f)) \
    X(softplus_b2_t5, GC, cx_softplus(x[0], 2.0f, 5.0f)) \
    X(pow_0, GC, cx_pow(x[0], 0.0f)) X(leaky_relu_0_01, GC, cx_leaky_relu(x[0], 0.01f)) \
    X(softplus_b1_t20_above, GC, cx_softplus(x[0], 1.0f, 20.0f)) \
    X(softplus_b2_t1, GC, cx_softplus(x[0], 2.0f, 1.0f)) \
    X(maxout_k2, GC, cx_maxout(x[0], 2)) X(maxout_k3_3d, GC, cx_maxout(x[0], 3)) \
    X(maxout_k1, GC, cx_maxout(x[0], 1)) \
    /* matrix */ \
    X(mm_2d, GC, cx_matmul(x[0], x[1])) X(mm_batched, GC, cx_matmul(x[0], x[1])) \
    X(mm_bshared, GC, cx_matmul(x[0], x[1])) X(linear, GC, cx_linear(x[0], x[1], x[2])) \
    X(linear_3d, GC, cx_linear(x[0], x[1], x[2])) X(linear_nobias, GC, cx_linear(x[0], x[1], NULL)) \
    X(mm_row_col, GC, cx_matmul(x[0], x[1])) X(linear_3d_nobias, GC, cx_linear(x[0], x[1], NULL)) \
    X(linear_1d, GC, cx_linear(x[0], x[1], x[2])) \
    X(linear_relu, GC, cx_linear_relu(x[0], x[1], x[2])) X(linear_relu_nobias, GC, cx_linear_relu(x[0], x[1], NULL)) \
    X(linear_relu_3d, GC, cx_linear_relu(x[0], x[1], x[2])) X(linear_relu_wide, GC, cx_linear_relu(x[0], x[1], x[2])) \
    X(linear_tanh, GC, cx_linear_tanh(x[0], x[1], x[2])) X(linear_tanh_nobias, GC, cx_linear_tanh(x[0], x[1], NULL)) \
    X(linear_tanh_wide, GC, cx_linear_tanh(x[0], x[1], x[2])) \
    /* reductions */ \
    X(sum, GC, cx_sum(x[0])) X(mean, GC, cx_mean(x[0])) \
    X(sum_ax1_keep, GC, cx_sum_axis(x[0], 1, true)) X(sum_ax1, GC, cx_sum_axis(x[0], 1, false)) \
    X(mean_ax0, GC, cx_mean_axis(x[0], 0, false)) X(mean_axm1, GC, cx_mean_axis(x[0], -1, false)) \
    X(max_ax1, GC, cx_max_axis(x[0], 1, false)) X(max_axm1_keep, GC, cx_max_axis(x[0], -1, true)) \
    X(softmax_axm1, GC, cx_softmax(x[0], -1)) X(softmax_ax0, GC, cx_softmax(x[0], 0)) \
    X(log_softmax_axm1, GC, cx_log_softmax(x[0], -1)) X(log_softmax_ax0, GC, cx_log_softmax(x[0], 0)) \
    /* every axis of [3,4,2], keepdim or not (max_axm1_keep above is 2-d) */ \
    X(sum_ax0, GC, cx_sum_axis(x[0], 0, false)) X(sum_ax0_keep, GC, cx_sum_axis(x[0], 0, true)) \
    X(sum_ax2, GC, cx_sum_axis(x[0], 2, false)) X(sum_ax2_keep, GC, cx_sum_axis(x[0], 2, true)) \
    X(sum_axm1, GC, cx_sum_axis(x[0], -1, false)) X(sum_axm1_keep, GC, cx_sum_axis(x[0], -1, true)) \
    X(sum_axm3, GC, cx_sum_axis(x[0], -3, false)) X(sum_axm3_keep, GC, cx_sum_axis(x[0], -3, true)) \
    X(mean_ax0_keep, GC, cx_mean_axis(x[0], 0, true)) \
    X(mean_ax1, GC, cx_mean_axis(x[0], 1, false)) X(mean_ax1_keep, GC, cx_mean_axis(x[0], 1, true)) \
    X(mean_ax2, GC, cx_mean_axis(x[0], 2, false)) X(mean_ax2_keep, GC, cx_mean_axis(x[0], 2, true)) \
    X(mean_axm1_keep, GC, cx_mean_axis(x[0], -1, true)) \
    X(mean_axm3, GC, cx_mean_axis(x[0], -3, false)) X(mean_axm3_keep, GC, cx_mean_axis(x[0], -3, true)) \
    X(max_ax0, GC, cx_max_axis(x[0], 0, false)) X(max_ax0_keep, GC, cx_max_axis(x[0], 0, true)) \
    X(max_ax1_keep, GC, cx_max_axis(x[0], 1, true)) \
    X(max_ax2, GC, cx_max_axis(x[0], 2, false)) X(max_ax2_keep, GC, cx_max_axis(x[0], 2, true)) \
    X(max_axm1, GC, cx_max_axis(x[0], -1, false)) X(max_axm1_keep_3d, GC, cx_max_axis(x[0], -1, true)) \
    X(max_axm3, GC, cx_max_axis(x[0], -3, false)) X(max_axm3_keep, GC, cx_max_axis(x[0], -3, true)) \
    /* softmax on every axis of [3,4,5] (0 and -1 above) and of [4,6] */ \
    X(softmax_ax1, GC, cx_softmax(x[0], 1)) X(softmax_ax2, GC, cx_softmax(x[0], 2)) \
    X(softmax_axm2, GC, cx_softmax(x[0], -2)) X(softmax_2d_ax1, GC, cx_softmax(x[0], 1)) \
    X(log_softmax_ax1, GC, cx_log_softmax(x[0], 1)) X(log_softmax_ax2, GC, cx_log_softmax(x[0], 2)) \
    X(log_softmax_axm2, GC, cx_log_softmax(x[0], -2)) X(log_softmax_2d_ax1, GC, cx_log_softmax(x[0], 1)) \
    /* shape */ \
    X(reshape, GC, cx_reshape(x[0], CX_SHAPE(4, -1))) X(transpose01, GC, cx_transpose(x[0], 0, 1)) \
    X(permute201, GC, cx_permute(x[0], (const int[]){2, 0, 1})) X(slice, GC, cx_slice(x[0], 1, 1, 5, 2)) \
    X(concat, GC, cx_concat((cx_tensor *[]){x[0], x[1], x[2]}, 3, 1)) \
    X(stack_ax0, GC, cx_stack((cx_tensor *[]){x[0], x[1], x[2]}, 3, 0)) \
    X(stack_ax2, GC, cx_stack((cx_tensor *[]){x[0], x[1], x[2]}, 3, 2)) \
    X(index_select_ax0, GC, cx_index_select(x[0], 0, ix[1])) \
    X(index_select_ax1, GC, cx_index_select(x[0], 1, ix[1])) X(gather, GC, cx_gather(x[0], 1, ix[1])) \
    X(reshape_m1_2, GC, cx_reshape(x[0], CX_SHAPE(-1, 2))) X(flatten, GC, cx_flatten(x[0])) \
    X(transpose02, GC, cx_transpose(x[0], 0, 2)) X(transpose_m1m2, GC, cx_transpose(x[0], -1, -2)) \
    X(transpose11, GC, cx_transpose(x[0], 1, 1)) X(permute120, GC, cx_permute(x[0], (const int[]){1, 2, 0})) \
    X(permute_m101, GC, cx_permute(x[0], (const int[]){-1, 0, 1})) \
    X(slice_negstart, GC, cx_slice(x[0], 1, -5, 8, 3)) X(slice_ax0, GC, cx_slice(x[0], 0, 0, 2, 1)) \
    X(slice_axm1, GC, cx_slice(x[0], -1, 1, 2, 1)) X(slice_clip_all, GC, cx_slice(x[0], 1, 0, 100, 1)) \
    X(concat_ax0, GC, cx_concat((cx_tensor *[]){x[0], x[1], x[2]}, 3, 0)) \
    X(concat_axm1, GC, cx_concat((cx_tensor *[]){x[0], x[1]}, 2, -1)) \
    X(concat_mid_const, GC, cx_concat((cx_tensor *[]){x[0], x[1], x[2]}, 3, 1)) \
    X(stack_ax1, GC, cx_stack((cx_tensor *[]){x[0], x[1], x[2]}, 3, 1)) \
    X(index_select_ax0_i32, GC, cx_index_select(x[0], 0, ix[1])) \
    X(index_select_axm1, GC, cx_index_select(x[0], -1, ix[1])) \
    X(gather_i32, GC, cx_gather(x[0], 1, ix[1])) X(gather_ax0_i32, GC, cx_gather(x[0], 0, ix[1])) \
    X(gather_3d_axm1_i32, GC, cx_gather(x[0], -1, ix[1])) \
    /* losses */ \
    CX_RED(X, ce, CE) CX_RED(X, ce_ign, CE) CX_RED(X, nll, NLL) CX_RED(X, mse, MSE) \
    CX_RED(X, bce_logits, BCE) CX_RED(X, mmargin_m1, MM1) CX_RED(X, mmargin_m0_5, MM05) \
    CX_RED(X, sl1_b1, SL1_1) CX_RED(X, sl1_b0_5, SL1_05) CX_RED(X, hinge_m1, HINGE1) \
    X(hinge_m0_5_mean, GC, cx_hinge_loss(x[0], x[1], 0.5f, CX_REDUCE_MEAN)) \
    CX_RED(X, perceptron, PERC) CX_RED(X, logistic, LOGI) \
    /* I32 targets, ignore_index -100 (nll_*_ign, nll_i32*: nll_loss of log-probabilities) */ \
    CX_RED(X, ce_i32, CE) CX_RED(X, ce_i32_ign, CE) CX_RED(X, nll_i32, NLLP) \
    CX_RED(X, nll_i32_ign, NLLP) CX_RED(X, nll_ign, NLLP) \
    CX_RED(X, mmargin_i32_m1, MM1) CX_RED(X, mmargin_i32_m0_45, MM045) \
    X(hinge_m0_5_sum, GC, HINGE05(CX_REDUCE_SUM)) X(hinge_m0_5_none, GC, HINGE05(CX_REDUCE_NONE)) \
    /* _pred: with respect to the prediction x[0] only */ \
    CX_RED(X, mse_pred, MSE) CX_RED(X, bce_logits_pred, BCE) CX_RED(X, hinge_m1_pred, HINGE1) \
    CX_RED(X, hinge_m0_5_pred, HINGE05) CX_RED(X, perceptron_pred, PERC) \
    CX_RED(X, logistic_pred, LOGI) CX_RED(X, sl1_b1_pred, SL1_1) CX_RED(X, sl1_b0_5_pred, SL1_05) \
    /* extras */ \
    X(mul_self, GC, cx_mul(x[0], x[0])) X(reuse, GC, reuse_fn(x[0])) \
    X(chain_mlp, GC, cx_cross_entropy(cx_linear(cx_tanh(cx_linear(x[0], x[1], x[2])), x[3], x[4]), \
                                  ix[5], CX_REDUCE_MEAN)) \
    X(chain_mlp_i32, GCT(1e-2f, 1e-3f, 1e-2f), \
      cx_cross_entropy(cx_linear(cx_tanh(cx_linear(x[0], x[1], x[2])), x[3], x[4]), ix[5], CX_REDUCE_MEAN)) \
    X(attention, GC, cx_matmul(cx_softmax(cx_mul_scalar(cx_matmul(x[0], cx_transpose(x[1], -1, -2)), 0.5f), \
                                          -1), x[2])) \
    X(chain_mix, GC, chain_fn(x[0], x[1])) \
    X(slice_neg, GC, cx_slice(x[0], -1, -4, -1, 1)) X(slice_clip, GC, cx_slice(x[0], 1, 0, 100, 3)) \
    X(stack_axm1, GC, cx_stack((cx_tensor *[]){x[0], x[1]}, 2, -1)) \
    X(transpose_neg, GC, cx_transpose(x[0], -1, 0)) X(sum_ax_size1, GC, cx_sum_axis(x[0], 1, false)) \
    X(pow_m1, GC, cx_pow(x[0], -1.0f)) X(pow_0_5, GC, cx_pow(x[0], 0.5f)) \
    X(sigmoid_big, GC, cx_sigmoid(x[0])) X(tanh_big, NOGC, cx_tanh(x[0])) \
    X(softplus_big, GC, cx_softplus(x[0], 1.0f, 20.0f)) X(elu_big, NOGC, cx_elu(x[0], 1.0f)) \
    X(gelu_big, GC, cx_gelu(x[0])) X(softmax_big, NOGC, cx_softmax(x[0], -1)) \
    X(log_softmax_big, GC, cx_log_softmax(x[0], 0)) \
    X(ce_big_mean, GC, cx_cross_entropy(x[0], ix[1], CX_REDUCE_MEAN)) \
    X(bce_logits_big_mean, GC, cx_bce_with_logits(x[0], x[1], CX_REDUCE_MEAN)) \
    /* ops for attention, memory and RL */ \
    X(log_softmax_100, FWD_TOL(GC, 2e-7, 1e-6), cx_log_softmax(x[0], -1)) \
    X(log_softmax_m100_ax0, FWD_TOL(GC, 2e-7, 1e-6), cx_log_softmax(x[0], 0)) \
    X(gelu_tanh, GC, cx_gelu_tanh(x[0])) \
    X(mm_t_ta, GC, cx_matmul_t(x[0], x[1], true, false)) X(mm_t_tb, GC, cx_matmul_t(x[0], x[1], false, true)) \
    X(mm_t_tatb, GC, cx_matmul_t(x[0], x[1], true, true)) \
    X(mm_t_batched_tb, GC, cx_matmul_t(x[0], x[1], false, true)) \
    X(mm_t_batched_tatb, GC, cx_matmul_t(x[0], x[1], true, true)) \
    X(mm_t_bshared_ta, GC, cx_matmul_t(x[0], x[1], true, false)) \
    X(mm_t_bshared_tb, GC, cx_matmul_t(x[0], x[1], false, true)) \
    X(mm_bc4d, GC, cx_matmul(x[0], x[1])) X(mm_bc4d_tatb, GC, cx_matmul_t(x[0], x[1], true, true)) \
    X(mm_bc4d_heads_tb, GC, cx_matmul_t(x[0], x[1], false, true)) \
    X(mm_bc_ashared, GC, cx_matmul(x[0], x[1])) X(mm_bc_ashared_ta, GC, cx_matmul_t(x[0], x[1], true, false)) \
    X(mm_bc_size1, GC, cx_matmul(x[0], x[1])) X(mm_bc4d_bshared, GC, cx_matmul(x[0], x[1])) \
    X(mm_vec_shapes, GC, cx_matmul(x[0], x[1])) X(mm_self_tb, GC, cx_matmul_t(x[0], x[0], false, true)) \
    X(bmm, GC, cx_bmm(x[0], x[1])) \
    X(masked_fill_same, GC, cx_masked_fill(x[0], ix[1], 0.5f)) \
    X(masked_fill_bc, GC, cx_masked_fill(x[0], ix[1], -2.0f)) \
    X(masked_fill_a_bc, GC, cx_masked_fill(x[0], ix[1], 3.0f)) \
    X(masked_fill_i32, GC, cx_masked_fill(x[0], ix[1], 0.0f)) \
    X(masked_fill_f32mask, GC, cx_masked_fill(x[0], x[1], 1.25f)) \
    X(masked_fill_ninf, NOGC, cx_masked_fill(x[0], ix[1], -INFINITY)) \
    X(masked_fill_ninf_softmax, GC, cx_softmax(cx_masked_fill(x[0], ix[1], -INFINITY), -1)) \
    X(where_same, GC, cx_where(ix[0], x[1], x[2])) X(where_bc, GC, cx_where(ix[0], x[1], x[2])) \
    X(where_cond_bc, GC, cx_where(ix[0], x[1], x[2])) X(where_f32cond, GC, cx_where(x[0], x[1], x[2])) \
    X(where_same_input, GC, cx_where(ix[0], x[1], x[1])) \
    X(pow_t_same, GC, cx_pow_t(x[0], x[1])) X(pow_t_bc, GC, cx_pow_t(x[0], x[1])) \
    X(pow_t_bc_exp, GC, cx_pow_t(x[0], x[1])) X(pow_t_neg_base_int_exp, GC, cx_pow_t(x[0], x[1])) \
    X(pow_t_zero_base, NOGC, cx_pow_t(x[0], x[1])) X(pow_t_self, GC, cx_pow_t(x[0], x[0])) \
    X(cumsum_ax1, GC, cx_cumsum(x[0], 1)) X(cumsum_axm1, GC, cx_cumsum(x[0], -1)) \
    X(cumsum_size1, GC, cx_cumsum(x[0], 0)) X(cumprod_ax1, GC, cx_cumprod(x[0], 1)) \
    X(cumprod_axm1, GC, cx_cumprod(x[0], -1)) X(cumprod_zeros, GC, cx_cumprod(x[0], -1)) \
    X(cumprod_zeros_ax0, GC, cx_cumprod(x[0], 0)) \
    X(sort_ax1, GC, cx_sort(x[0], 1, false, NULL)) X(sort_desc_axm1, GC, cx_sort(x[0], -1, true, NULL)) \
    X(sort_size1, GC, cx_sort(x[0], 1, true, NULL)) X(sort_idx_ax1, NOGC, sort_idx(x[0], 1, false)) \
    X(sort_ties, NOGC, cx_sort(x[0], -1, false, NULL)) X(sort_ties_idx, NOGC, sort_idx(x[0], -1, false)) \
    X(sort_ties_desc_idx, NOGC, sort_idx(x[0], 0, true)) X(argsort_ties, NOGC, cx_argsort(x[0], -1, false)) \
    X(argsort_desc_ax0, NOGC, cx_argsort(x[0], 0, true)) \
    X(topk_largest, GC, cx_topk(x[0], 3, -1, true, NULL)) X(topk_largest_idx, NOGC, topk_idx(x[0], 3, -1, true)) \
    X(topk_smallest_ax0, GC, cx_topk(x[0], 2, 0, false, NULL)) \
    X(topk_smallest_idx, NOGC, topk_idx(x[0], 2, 0, false)) X(topk_k_all, GC, cx_topk(x[0], 5, 1, true, NULL)) \
    X(topk_k1, GC, cx_topk(x[0], 1, -1, true, NULL)) \
    X(cos_sim_ax1, GC, cx_cosine_similarity(x[0], x[1], 1, 1e-8f)) \
    X(cos_sim_ntm_bc, GC, cx_cosine_similarity(x[0], x[1], -1, 1e-8f)) \
    X(cos_sim_ax0, GC, cx_cosine_similarity(x[0], x[1], 0, 1e-8f)) \
    X(cos_sim_bc_ax0, GC, cx_cosine_similarity(x[0], x[1], 0, 1e-8f)) \
    X(cos_sim_1d, GC, cx_cosine_similarity(x[0], x[1], 0, 1e-8f)) \
    X(cos_sim_eps_0_5, GC, cx_cosine_similarity(x[0], x[1], -1, 0.5f)) \
    X(cos_sim_below_eps, NOGC, cx_cosine_similarity(x[0], x[1], 1, 0.1f)) \
    X(circ_conv_k3, GC, cx_circular_conv(x[0], x[1], -1)) X(circ_conv_k1, GC, cx_circular_conv(x[0], x[1], 1)) \
    X(circ_conv_k5_n5, GC, cx_circular_conv(x[0], x[1], -1)) X(circ_conv_ax0, GC, cx_circular_conv(x[0], x[1], 0)) \
    X(circ_conv_3d, GC, cx_circular_conv(x[0], x[1], 1)) \
    X(circ_conv_ntm, GC, cx_circular_conv(cx_softmax(x[0], -1), cx_softmax(x[1], -1), -1)) \
    X(outer_1d, GC, cx_outer(x[0], x[1])) X(outer_batched, GC, cx_outer(x[0], x[1])) \
    X(outer_size1, GC, cx_outer(x[0], x[1])) X(outer_self, GC, cx_outer(x[0], x[0])) \
    CX_RED(X, mmargin_p2_m1, MM2) CX_RED(X, mmargin_p2_w_m0_5, MM2W) \
    X(mmargin_p1_w_mean, GC, cx_multi_margin_loss_p(x[0], ix[1], 1, 1.0f, x[2], CX_REDUCE_MEAN)) \
    /* attention: ATT(key_padding_mask, attn_mask, causal, scale, what) is cx_attention of \
     * x[0], x[1], x[2] (q, k, v); what: 0 the output, 1 the weights, 2 both flattened into \
     * one vector (the gradient flows through both outputs); scale 0 = 1/sqrt(d) */ \
    X(attn_3d, GC, ATT(NULL, NULL, false, 0.0f, 0)) X(attn_4d_heads, GC, ATT(NULL, NULL, false, 0.0f, 0)) \
    X(attn_t1, GC, ATT(NULL, NULL, false, 0.0f, 0)) X(attn_tq1, GC, ATT(NULL, NULL, false, 0.0f, 0)) \
    X(attn_2d, GC, ATT(NULL, NULL, false, 0.0f, 0)) X(attn_scale1, GC, ATT(NULL, NULL, false, 1.0f, 0)) \
    X(attn_scale_0_3, GC, ATT(NULL, NULL, false, 0.3f, 0)) X(attn_scale_nan, GC, ATT(NULL, NULL, false, NAN, 0)) \
    X(attn_weights, GC, ATT(NULL, NULL, false, 0.0f, 1)) X(attn_both, GC, ATT(ix[3], NULL, false, 0.0f, 2)) \
    X(attn_kpm, GC, ATT(ix[3], NULL, false, 0.0f, 0)) X(attn_kpm_4d, GC, ATT(ix[3], NULL, false, 0.0f, 0)) \
    X(attn_kpm_1d, GC, ATT(ix[3], NULL, false, 0.0f, 0)) X(attn_kpm_f32, GC, ATT(x[3], NULL, false, 0.0f, 0)) \
    X(attn_causal, GC, ATT(NULL, NULL, true, 0.0f, 0)) X(attn_causal_tq_lt_tk, GC, ATT(NULL, NULL, true, 0.0f, 0)) \
    X(attn_causal_tq_gt_tk, GC, ATT(NULL, NULL, true, 0.0f, 0)) \
    X(attn_mask_bool_2d, GC, ATT(NULL, ix[3], false, 0.0f, 0)) X(attn_mask_f32_2d, GC, ATT(NULL, x[3], false, 0.0f, 0)) \
    X(attn_mask_bool_3d, GC, ATT(NULL, ix[3], false, 0.0f, 0)) X(attn_mask_f32_3d, GC, ATT(NULL, x[3], false, 0.0f, 0)) \
    X(attn_mask_4d, GC, ATT(NULL, ix[3], false, 0.0f, 0)) X(attn_all_masks, GC, ATT(ix[3], ix[4], true, 0.0f, 2)) \
    X(attn_full_row_kpm, GC, ATT(ix[3], NULL, false, 0.0f, 2)) \
    X(attn_full_row_mask, GC, ATT(NULL, ix[3], false, 0.0f, 2)) \
    X(attn_full_row_causal, GC, ATT(ix[3], NULL, true, 0.0f, 2)) \
    X(attn_bc_kv, GC, ATT(NULL, NULL, false, 0.0f, 0)) X(attn_bc_2d_kv, GC, ATT(NULL, NULL, false, 0.0f, 0)) \
    X(attn_self, GC, att_case(x[0], x[0], x[0], NULL, NULL, false, 0.0f, 2)) \
    X(attn_q_only, GC, ATT(NULL, NULL, false, 0.0f, 0)) X(attn_kv_only, GC, ATT(NULL, NULL, false, 0.0f, 0)) \
    X(attn_par, GC, ATT(ix[3], NULL, true, 0.0f, 2)) X(attn_par_bc, GC, ATT(NULL, NULL, false, 0.0f, 0)) \
    X(attn_general, GC, general_case(x, NULL, 1.0f, 0)) X(attn_general_kpm, GC, general_case(x, ix[4], 0.0f, 2)) \
    X(attn_additive, GC, additive_case(x, ix[5])) X(attn_additive_t1, GC, additive_case(x, NULL)) \
    X(attn_additive_empty, GC, additive_case(x, ix[5])) X(attn_additive_pre, GC, additive_pre_case(x, ix[5])) \
    X(attn_additive_pre_t1, GC, additive_pre_case(x, NULL)) \
    /* spatial transformer: affine_grid (size N, C, H, W in the row), grid_sample (bilinear, zeros) \
     * and the STN path grid_sample(x, affine_grid(theta)); _ac0 / _ac1: align_corners. Grid points \
     * stay >= 0.2 px (STN rows: more than the step of eps 2e-3) from integer pixel coordinates, \
     * except in the NOGC rows, which sit on them (PyTorch's one-sided gradients at the kinks) */ \
    X(affine_grid_ac0, GC, cx_affine_grid(x[0], 2, 3, 5, 4, false)) \
    X(affine_grid_ac1, GC, cx_affine_grid(x[0], 2, 1, 4, 6, true)) \
    X(affine_grid_h1_ac0, GC, cx_affine_grid(x[0], 1, 1, 1, 5, false)) \
    X(affine_grid_w1_ac1, GC, cx_affine_grid(x[0], 3, 2, 3, 1, true)) \
    X(grid_sample_ac0, GC, cx_grid_sample(x[0], x[1], false)) \
    X(grid_sample_ac1, GC, cx_grid_sample(x[0], x[1], true)) \
    X(grid_sample_c1_ac0, GC, cx_grid_sample(x[0], x[1], false)) \
    X(grid_sample_h1_ac1, GC, cx_grid_sample(x[0], x[1], true)) \
    X(grid_sample_h1_ac0, GC, cx_grid_sample(x[0], x[1], false)) \
    X(grid_sample_outside_ac0, GC, cx_grid_sample(x[0], x[1], false)) \
    X(grid_sample_input_only_ac1, GC, cx_grid_sample(x[0], x[1], true)) \
    X(grid_sample_grid_only_ac1, GC, cx_grid_sample(x[0], x[1], true)) \
    X(grid_sample_kinks_ac1, NOGC, cx_grid_sample(x[0], x[1], true)) \
    X(grid_sample_kinks_ac0, NOGC, cx_grid_sample(x[0], x[1], false)) \
    X(stn_identity_ac0, GCT(2e-3f, 2e-3f, 1e-2f), cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 1, 4, 5, false), false)) \
    X(stn_identity_ac1, GC, cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 2, 4, 7, true), true)) \
    X(stn_identity_same_ac1, NOGC, cx_grid_sample(x[0], cx_affine_grid(x[1], 1, 2, 3, 5, true), true)) \
    X(stn_rot_ac0, GCT(2e-3f, 2e-3f, 1e-2f), cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 2, 5, 4, false), false)) \
    X(stn_rot_ac1, GCT(2e-3f, 2e-3f, 1e-2f), cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 1, 7, 6, true), true)) \
    X(stn_scale_ac0, GCT(2e-3f, 2e-3f, 1e-2f), cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 1, 6, 6, false), false)) \
    X(stn_translate_out_ac1, GCT(2e-3f, 2e-3f, 1e-2f), \
      cx_grid_sample(x[0], cx_affine_grid(x[1], 2, 3, 5, 6, true), true))


/* attention rows: cx_attention with the given options; what = 0 the output, 1
 * the weights, 2 both flattened and concatenated */
static cx_tensor *both_outputs(cx_tensor *out, cx_tensor *w) {
    cx_tensor *parts[2] = {cx_reshape(out, CX_SHAPE(-1)), cx_reshape(w, CX_SHAPE(-1))};
    return cx_concat(parts, 2, 0);
}
static cx_tensor *att_case(cx_tensor *q, cx_tensor *k, cx_tensor *v, const cx_tensor *kpm, const cx_tensor *am,
                           bool causal, float scale, int what) {
    cx_attn_opts o = cx_attn_defaults();
    o.key_padding_mask = kpm;
    o.attn_mask = am;
    o.causal = causal;
    o.scale = scale;
    cx_tensor *w = NULL;
    cx_tensor *out = cx_attention(q, k, v, &o, &w);
    return what == 0 ? out : what == 1 ? w : both_outputs(out, w);
}
#define ATT(kpm, am, causal, scale, what) att_case(x[0], x[1], x[2], kpm, am, causal, scale, what)
/* Luong general: x = q, W, k, v */
static cx_tensor *general_case(cx_tensor **x, const cx_tensor *kpm, float scale, int what) {
    cx_attn_opts o = cx_attn_defaults();
    o.key_padding_mask = kpm;
    o.scale = scale;
    cx_tensor *w = NULL;
    cx_tensor *out = cx_general_attention(x[0], x[1], x[2], x[3], &o, &w);
    return what == 0 ? out : both_outputs(out, w);
}
/* Bahdanau: x = h, s, W1, W2, v; context and weights */
static cx_tensor *additive_case(cx_tensor **x, const cx_tensor *kpm) {
    cx_tensor *w = NULL;
    cx_tensor *ctx = cx_additive_attention(x[0], x[1], x[2], x[3], x[4], kpm, &w);
    return both_outputs(ctx, w);
}

/* Bahdanau with the keys' projection given: x = hp, h, s, W2, v */
static cx_tensor *additive_pre_case(cx_tensor **x, const cx_tensor *kpm) {
    cx_tensor *w = NULL;
    cx_tensor *ctx = cx_additive_attention_pre(x[0], x[1], x[2], x[3], x[4], kpm, &w);
    return both_outputs(ctx, w);
}

/* the indices output of sort / topk */
static cx_tensor *sort_idx(cx_tensor *x, int axis, bool desc) {
    cx_tensor *idx = NULL;
    (void)cx_sort(x, axis, desc, &idx);
    return idx;
}
static cx_tensor *topk_idx(cx_tensor *x, int k, int axis, bool largest) {
    cx_tensor *idx = NULL;
    (void)cx_topk(x, k, axis, largest, &idx);
    return idx;
}

/* y = exp(x); y*y + y (one node feeding three uses) */
static cx_tensor *reuse_fn(cx_tensor *x) {
    cx_tensor *y = cx_exp(x);
    return cx_add(cx_mul(y, y), y);
}

/* broadcasting, reductions, shape ops and a loss in one chain: x [4,6], b [6] */
static cx_tensor *chain_fn(cx_tensor *x, cx_tensor *b) {
    cx_tensor *h = cx_gelu(cx_add(x, b));                                   /* [4,6] */
    cx_tensor *z = cx_sub(h, cx_mean_axis(h, 0, true));                     /* [4,6] */
    cx_tensor *p = cx_permute(cx_reshape(z, CX_SHAPE(4, 2, 3)), (const int[]){1, 0, 2}); /* [2,4,3] */
    cx_tensor *s = cx_sum_axis(cx_exp(cx_mul_scalar(p, 0.3f)), 0, false); /* [4,3] */
    return cx_logistic_loss(cx_log(s), cx_tanh(cx_slice(z, 1, 0, 6, 2)), CX_REDUCE_MEAN);
}
#endif
