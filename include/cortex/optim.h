/*
 * cortex/optim.h -- optimisers, learning-rate schedules, gradient clipping.
 *
 * Part of the Cortex public API; include <cortex.h> rather than this file.
 *
 * Optimisers
 * ----------
 * Every optimiser follows the update rule of PyTorch 1.13 (torch.optim, the
 * single-tensor / foreach=False path) operation for operation, in float32,
 * with scalar coefficients (bias corrections, 1 - beta, ...) computed in
 * double as Python does. On a target with FMA (e.g. -march=native on x86-64)
 * the results are bit-identical to PyTorch's CPU kernels, which fuse
 * `x + alpha * y` the same way; without FMA they differ by a few ulps.
 *
 *   cx_params params;  ... the model's parameters ...
 *   cx_adam_opts o = cx_adam_defaults();
 *   o.lr = 3e-4;
 *   cx_optim *opt = cx_adam_new(&params, &o);
 *   for (...) {
 *       cx_optim_zero_grad(opt);
 *       cx_backward(loss);
 *       cx_optim_step(opt);
 *       cx_step_reset();
 *   }
 *   cx_optim_free(opt);
 *
 *  - The optimiser copies the list of parameter pointers; it does not own the
 *    parameters, which must outlive it (and must be F32).
 *  - A parameter whose grad is NULL at a step is skipped entirely (its state
 *    and step count do not change), like a None grad in PyTorch. (A parameter
 *    in a flat buffer always has a gradient: see cx_flat below.)
 *  - Per-parameter state (momentum buffers, moments, ...) is allocated at
 *    construction as persistent tensors owned by the optimiser, and freed by
 *    cx_optim_free. Each parameter also has its own step count. When the
 *    list is a flat buffer's list (cx_flat below), the state tensors are views
 *    into one block per buffer and each step is one pass over the blocks.
 *  - Invalid options (negative lr / eps / weight decay / momentum, betas or
 *    alpha outside [0, 1), nesterov without momentum or with dampening, a
 *    non-F32 parameter) are programming errors: they go to the fatal error
 *    handler (cx_fatal), before anything is allocated.
 *  - Hyper-parameters are doubles (Python floats in PyTorch).
 *  - The element loops are vectorised (the loops taking square roots only
 *    when compiled with -fno-math-errno); a parameter tensor larger than
 *    CX_OPTIM_PAR_THRESHOLD elements is also split over the OpenMP threads.
 *    Each element's result does not depend on the thread count.
 */
#ifndef CORTEX_OPTIM_H
#define CORTEX_OPTIM_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Tensors with more elements than this are updated by several OpenMP
 * threads (when built with OpenMP). */
#define CX_OPTIM_PAR_THRESHOLD 32768

typedef struct cx_optim cx_optim;

typedef enum {
    CX_OPTIM_SGD = 0,
    CX_OPTIM_ADAM,
    CX_OPTIM_ADAMW,
    CX_OPTIM_RMSPROP,
    CX_OPTIM_ADAGRAD
} cx_optim_kind;

/* torch.optim.SGD:
 *   g = grad + weight_decay * p
 *   if momentum != 0:
 *       buf = g                                       (first step)
 *       buf = momentum * buf + (1 - dampening) * g    (later steps)
 *       g = nesterov ? g + momentum * buf : buf
 *   p -= lr * g
 * nesterov requires momentum > 0 and dampening == 0. (PyTorch has no default
 * lr for SGD; ours is 0.01.) */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    bool nesterov;
} cx_sgd_opts;
cx_sgd_opts cx_sgd_defaults(void);

/* torch.optim.Adam and torch.optim.AdamW (t = this parameter's step count):
 *   Adam:  g = grad + weight_decay * p
 *   AdamW: p = p * (1 - lr * weight_decay);  g = grad
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g * g
 *   vmax = max(vmax, v)                            (amsgrad; v below := vmax)
 *   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0 (Adam)
 * or 0.01 (AdamW), amsgrad off. Both kinds use cx_adam_opts. */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    bool amsgrad;
} cx_adam_opts;
cx_adam_opts cx_adam_defaults(void);
cx_adam_opts cx_adamw_defaults(void);   /* weight_decay 0.01 */

/* torch.optim.RMSprop:
 *   g = grad + weight_decay * p
 *   s = alpha * s + (1 - alpha) * g * g
 *   centered: a = alpha * a + (1 - alpha) * g;  d = sqrt(s - a * a) + eps
 *   else:                                       d = sqrt(s) + eps
 *   momentum > 0: buf = momentum * buf + g / d;  p -= lr * buf
 *   else:                                        p -= lr * g / d
 * Defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0,
 * centered off. */
typedef struct {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered;
} cx_rmsprop_opts;
cx_rmsprop_opts cx_rmsprop_defaults(void);

/* torch.optim.Adagrad (t = this parameter's step count):
 *   g = grad + weight_decay * p
 *   sum += g * g                      (sum starts at initial_accumulator_value)
 *   p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum) + eps)
 * Defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0,
 * eps 1e-10. */
typedef struct {
    double lr, lr_decay, weight_decay, initial_accumulator_value, eps;
} cx_adagrad_opts;
cx_adagrad_opts cx_adagrad_defaults(void);

/* Options follow one convention throughout Cortex: a struct cx_<x>_opts,
 * its defaults from the function cx_<x>_defaults() (PyTorch's), and NULL
 * accepted wherever the defaults will do:
 *   cx_sgd_opts o = cx_sgd_defaults();  o.momentum = 0.9;
 * Constructors. `params` is copied (the list, not the tensors); `opts` may be
 * NULL for the defaults. Invalid options are fatal (see above). */
cx_optim *cx_sgd_new(const cx_params *params, const cx_sgd_opts *opts);
cx_optim *cx_adam_new(const cx_params *params, const cx_adam_opts *opts);
cx_optim *cx_adamw_new(const cx_params *params, const cx_adam_opts *opts);
cx_optim *cx_rmsprop_new(const cx_params *params, const cx_rmsprop_opts *opts);
cx_optim *cx_adagrad_new(const cx_params *params, const cx_adagrad_opts *opts);
/* Frees the optimiser and its state tensors (not the parameters). NULL ok. */
void cx_optim_free(cx_optim *opt);

/* One update of every parameter whose grad is not NULL. */
void cx_optim_step(cx_optim *opt);
/* Fill every existing gradient with zeros (PyTorch's zero_grad with
 * set_to_none=False); NULL grads stay NULL. */
void cx_optim_zero_grad(cx_optim *opt);
/* Current learning rate (what the next cx_optim_step uses). */
void cx_optim_set_lr(cx_optim *opt, double lr);
double cx_optim_get_lr(const cx_optim *opt);
cx_optim_kind cx_optim_get_kind(const cx_optim *opt);
/* "sgd", "adam", "adamw", "rmsprop" or "adagrad". */
const char *cx_optim_name(const cx_optim *opt);
/* Number of cx_optim_step calls made (or restored by state import). */
int64_t cx_optim_steps(const cx_optim *opt);
/* Number of parameters, and parameter i. */
int cx_optim_param_count(const cx_optim *opt);
cx_tensor *cx_optim_param(const cx_optim *opt, int i);

/* ------------------------------------------------------------ state I/O
 * For exact checkpoint resume. cx_optim_state_export appends the optimiser's
 * state tensors to `out` (initialised by the caller with cx_params_init; free
 * the list with cx_params_free, never the tensors: they are persistent
 * tensors owned by the optimiser and stay valid until cx_optim_free). Their
 * names follow PyTorch's state_dict, with the parameter's name as key (or its
 * index in the list when it has no name):
 *   "optim.step"                  I64 [1], number of cx_optim_step calls
 *   "state.<param>.step"          I64 [1], that parameter's step count
 *   "state.<param>.<buffer>"      F32, same shape as the parameter, with
 *       <buffer> = momentum_buffer                          (SGD, momentum != 0)
 *                  exp_avg, exp_avg_sq, max_exp_avg_sq      (Adam/AdamW; the
 *                                                            last with amsgrad)
 *                  square_avg, momentum_buffer, grad_avg    (RMSprop; the last
 *                                     two with momentum > 0 / centered)
 *                  sum                                      (Adagrad)
 * Export them (e.g. to safetensors) right after a step; they alias the live
 * state. The learning rate and hyper-parameters are not part of the state:
 * recreate the optimiser with the same options and set the lr (LR schedules
 * are closed-form in the epoch).
 *
 * cx_optim_state_import copies every state tensor of `opt` from the tensor of
 * the same name in `in` (e.g. loaded from a checkpoint). Step tensors may be
 * I64, I32 or F32. Returns CX_ERR_NOTFOUND when one is missing, CX_ERR_SHAPE /
 * CX_ERR_FORMAT on a shape / dtype mismatch or a negative step count (message
 * in cx_last_error). Everything is checked before anything is copied: on
 * error the optimiser is unchanged. */
cx_status cx_optim_state_export(cx_optim *opt, cx_params *out);
cx_status cx_optim_state_import(cx_optim *opt, const cx_params *in);

/* ------------------------------------------------------------ clipping */
/* torch.nn.utils.clip_grad_norm_ (L2): total = sqrt(sum of every grad^2),
 * accumulated in double over all parameters with a non-NULL grad. When
 * max_norm / (total + 1e-6) < 1, every grad is multiplied by that factor
 * (a NaN total makes every grad NaN, an infinite one zeroes them, as in
 * PyTorch). Returns the total norm before clipping. Both functions take one
 * pass over the gradient block when `p` is a flat buffer's list (cx_flat
 * below), with bit-identical results. */
float cx_clip_grad_norm(const cx_params *p, float max_norm);
/* torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type) for norm_type
 * 2 (cx_clip_grad_norm) or INFINITY: total = the largest |g| over every
 * grad (NaN if any element is NaN), then the same scaling by
 * max_norm / (total + 1e-6) when that is < 1. Returns the total norm
 * before clipping. Any other norm_type is a fatal error. */
float cx_clip_grad_norm_p(const cx_params *p, float max_norm, float norm_type);
/* torch.nn.utils.clip_grad_value_: clamp every grad element to
 * [-clip_value, clip_value] (NaN stays NaN). */
void cx_clip_grad_value(const cx_params *p, float clip_value);

/* ------------------------------------------------------------ flat buffer
 * One block for every parameter's data and one for every gradient (as llm.c
 * and KANN keep them), so that an optimiser step, gradient clipping, zeroing
 * the gradients, a target-network copy or an MPI all-reduce is one pass over
 * memory:
 *
 *   cx_params ps;  ... cx_module_params(net, &ps) ...
 *   cx_flat *f = cx_flat_new(&ps);          // before making the optimiser
 *   cx_optim *opt = cx_adam_new(cx_flat_params(f), &o);
 *   ... train as usual: cx_optim_step / cx_clip_grad_norm take one pass ...
 *   MPI_Allreduce(MPI_IN_PLACE, cx_flat_grad(f), cx_flat_numel(f), MPI_FLOAT, ...);
 *   cx_flat_copy(target_flat, f);           // DQN target network: one memcpy
 *   cx_optim_free(opt);  cx_flat_free(f);  cx_module_free(net);  // any order
 *
 * Layout. Tensor i occupies numel floats starting at offset cx_flat_offset(f, i)
 * of both blocks; offsets are multiples of CX_FLAT_ALIGN floats (64 bytes) and
 * the blocks are 64-byte aligned, so every tensor starts on a cache line. The
 * few floats between tensors (and at the end) are padding: zero at creation,
 * and the library's passes treat each as a parameter of value 0 with gradient
 * 0 (it stays 0 unless eps = 0 makes 0/0, or a NaN clipping factor); they never
 * affect a tensor's values, and the clipping norm does not read them.
 *
 * What flattening changes (the tensors keep working everywhere else: modules,
 * autograd, save/load, optimiser state export by name):
 *  - Each tensor's data and grad now point into the blocks. The current values
 *    are copied in (an existing gradient too) and the tensor's own buffers are
 *    freed. The flat buffer owns both blocks.
 *  - Every tensor has a gradient from then on (zero unless it had one). A
 *    parameter that a backward pass does not reach therefore keeps a zero
 *    gradient instead of NULL, as in PyTorch after a first backward with
 *    zero_grad(set_to_none=False): every optimiser steps *every* parameter at
 *    each cx_optim_step. For SGD without weight decay and momentum a zero
 *    gradient changes nothing; with Adam/AdamW, RMSprop, momentum or weight
 *    decay the parameter still moves (decaying moments, decoupled decay) and
 *    its step count advances, where a NULL gradient would have skipped it.
 *    Leave frozen parameters (requires_grad false) out of the list.
 *  - Code must not re-point t->data or t->grad of a flattened tensor (nothing
 *    in the library does, except cx_gradcheck, which restores them). If it
 *    happens, optimisers and clipping notice and take the per-tensor path.
 *
 * Freeing. cx_flat_free first "unflattens" every tensor still alive: it copies
 * its data and gradient back into buffers of its own (so the tensor stays
 * valid and keeps its gradient), then frees the blocks. cx_tensor_free of a
 * flattened tensor frees neither data nor grad and drops the tensor from the
 * flat buffer. So the module, the optimiser and the flat buffer can be freed
 * in any order (freeing the module first saves the copies). Not thread-safe:
 * one thread at a time may create, free or use a flat buffer and its tensors.
 *
 * Optimisers and clipping. When an optimiser's parameter list is exactly a
 * flat buffer's list (the same tensors in the same order, e.g.
 * cx_flat_params(f)), its state buffers are also one block each, laid out like
 * the flat blocks (state.<param>.<buffer> tensors are views into them, same
 * names and shapes), and cx_optim_step updates the whole block in one pass
 * (split over the OpenMP threads when large). Results are bit-identical to the
 * per-tensor path. An optimiser made before cx_flat_new moves its state into
 * blocks at its first step after it. The per-tensor path is used whenever the
 * list is not a flat buffer's list, the flat buffer was freed, or the
 * parameters' step counts differ (e.g. state imported from a checkpoint in
 * which some parameter was skipped). cx_optim_zero_grad is one memset, and
 * cx_clip_grad_norm / cx_clip_grad_value on such a list take one pass (the
 * norm summed in double in the same order as the per-tensor path). */
typedef struct cx_flat cx_flat;

/* Offsets into a flat buffer's blocks are multiples of this many floats. */
#define CX_FLAT_ALIGN 16

/* Flatten the tensors of `params` (copied list; at least one tensor). Every
 * tensor must be a persistent F32 tensor owning its data (cx_param_new /
 * cx_tensor_new), appear once, and not be in another flat buffer; otherwise
 * it is a fatal error (cx_fatal, naming the tensor), raised before anything
 * changes. */
cx_flat *cx_flat_new(const cx_params *params);
/* Unflatten the live tensors (see above), then free the blocks. NULL ok. */
void cx_flat_free(cx_flat *f);
/* Floats in each block, padding included (>= cx_params_count of the list). */
int64_t cx_flat_numel(const cx_flat *f);
/* The blocks: cx_flat_numel floats each, 64-byte aligned. */
float *cx_flat_data(const cx_flat *f);
float *cx_flat_grad(const cx_flat *f);
/* The tensors, in layout order (pass it to an optimiser or clipping). An
 * entry becomes NULL when its tensor is freed. Owned by the flat buffer. */
const cx_params *cx_flat_params(const cx_flat *f);
/* Tensor i's offset (floats, a multiple of CX_FLAT_ALIGN) and size (numel). */
int64_t cx_flat_offset(const cx_flat *f, int i);
int64_t cx_flat_size(const cx_flat *f, int i);
/* The flat buffer holding t's data and grad, or NULL. */
cx_flat *cx_flat_of(const cx_tensor *t);
/* Zero the whole gradient block (one memset). */
void cx_flat_zero_grad(cx_flat *f);
/* Copy every parameter value of `src` into `dst` (one memcpy of the data
 * block; gradients untouched), e.g. a DQN target network from the online
 * network. Both must have the same layout: the same number of tensors with
 * the same sizes (and the same shapes, where both tensors are alive);
 * otherwise CX_ERR_SHAPE (message in cx_last_error) and nothing is copied. */
cx_status cx_flat_copy(cx_flat *dst, const cx_flat *src);

/* ------------------------------------------------------------ LR schedules
 * Closed-form versions of torch.optim.lr_scheduler. cx_sched_lr(s, base, e)
 * is the learning rate PyTorch has after constructing the scheduler and
 * calling scheduler.step() e times (epoch 0 = before the first step()):
 *   CONSTANT     base
 *   STEP         base * gamma^floor(e / step_size)                (StepLR)
 *   EXPONENTIAL  base * gamma^e                              (ExponentialLR)
 *   COSINE       eta_min + (base - eta_min) * (1 + cos(pi e / t_max)) / 2
 *                (CosineAnnealingLR; periodic past t_max, like PyTorch's)
 *   LINEAR       base * (start + (end - start) * min(e, total_iters) / total_iters)
 *                (LinearLR)
 * Warm-up chaining (SequentialLR([LinearLR(base, warmup_start, 1.0,
 * warmup_iters), <schedule>], milestones=[warmup_iters])): when warmup_iters
 * > 0, epochs e < warmup_iters give
 *   base * (warmup_start + (1 - warmup_start) * e / warmup_iters)
 * and epochs e >= warmup_iters give the schedule at epoch e - warmup_iters.
 * Build schedules with the cx_sched_* helpers, then add a warm-up with
 * cx_sched_with_warmup, e.g.
 *   cx_sched s = cx_sched_with_warmup(cx_sched_cosine(20, 1e-4), 0.1, 5); */
typedef enum {
    CX_SCHED_CONSTANT = 0,
    CX_SCHED_STEP,
    CX_SCHED_EXPONENTIAL,
    CX_SCHED_COSINE,
    CX_SCHED_LINEAR
} cx_sched_kind;

typedef struct {
    cx_sched_kind kind;
    int step_size;                   /* STEP */
    double gamma;                    /* STEP, EXPONENTIAL */
    int t_max;                       /* COSINE */
    double eta_min;                  /* COSINE */
    double start_factor, end_factor; /* LINEAR */
    int total_iters;                 /* LINEAR */
    int warmup_iters;                /* 0: no warm-up */
    double warmup_start;             /* warm-up start factor */
} cx_sched;

cx_sched cx_sched_constant(void);
cx_sched cx_sched_step(int step_size, double gamma);
cx_sched cx_sched_exponential(double gamma);
cx_sched cx_sched_cosine(int t_max, double eta_min);
cx_sched cx_sched_linear(double start_factor, double end_factor, int total_iters);
/* `s` preceded by a linear warm-up from start_factor * base to base over
 * warmup_iters epochs (see above). */
cx_sched cx_sched_with_warmup(cx_sched s, double start_factor, int warmup_iters);

/* Learning rate at `epoch` (>= 0; negative epochs count as 0). Invalid
 * parameters (step_size, t_max or total_iters <= 0 where used) are fatal. */
double cx_sched_lr(const cx_sched *s, double base_lr, int epoch);
/* cx_optim_set_lr(opt, cx_sched_lr(s, base_lr, epoch)). */
void cx_sched_apply(const cx_sched *s, cx_optim *opt, double base_lr, int epoch);

#ifdef __cplusplus
}
#endif
#endif
