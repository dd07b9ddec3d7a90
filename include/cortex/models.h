/* cortex/models.h -- see cortex.h.
 *
 * Classic models of course section 1: the Rosenblatt perceptron (primal form)
 * and the kernel perceptron (dual form); and the Hopfield network
 * (associative memory of binary patterns, at the end of this file).
 *
 * Both train on plain float arrays (row-major X [N, D], labels t [N]) or on
 * tensors (X F32 [N, D], t F32 or I32 [N]). Labels must be exactly -1 or +1.
 * Bad arguments (N = 0, D = 0, NULL pointers, a label not in {-1, +1}, a
 * non-finite input, eta <= 0, max_epochs < 1, wrong tensor dtype or shape)
 * are *returned* as a cx_status with a message in cx_last_error(); they never
 * exit. On error the result struct is left zeroed (safe to free).
 *
 * All randomness (the visiting order when shuffle is on) comes from the
 * library PRNG (cx_seed / cx_rand_below), so the same seed gives the same
 * run, update for update.
 */
#ifndef CORTEX_MODELS_H
#define CORTEX_MODELS_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ perceptron
 *
 * Rosenblatt's rule, as in the notes, with f(x) = <w, phi(x)>:
 *
 *     if t_i f(x_i) <= 0:   w <- w + eta * t_i * phi(x_i)      (one "update")
 *
 * phi(x) = x, or the augmented phi(x) = [x, 1] when use_bias is set (the last
 * weight is then the bias b, and f(x) = <w, x> + b).
 *
 * Why "<= 0" and not "< 0": training starts at w = 0, where f(x) = 0 for every
 * x. With a strict "< 0" nothing would ever be updated. Counting t_i f(x_i) = 0
 * as a mistake is exactly the convention of the convergence proof, which
 * starts at w = 0 and needs y <w, x> <= 0 for every update. A point lying on
 * the decision boundary is therefore always "wrong" during training.
 *
 * One epoch visits every training point once, in a fresh random order drawn
 * from the library PRNG when shuffle is set, else in the order 0..N-1.
 * Training stops after the first epoch without a mistake (converged = true)
 * or after max_epochs epochs (converged = false: on data that is not linearly
 * separable the rule keeps cycling forever, so the cap is what stops it).
 *
 * Since w starts at 0, every weight vector met is eta times the one met with
 * eta = 1: the sequence of mistakes and the number of updates do not depend
 * on eta (> 0); only the scale of w does.
 */
typedef struct {
    float eta;          /* learning rate, > 0 (default 1) */
    int max_epochs;     /* epoch cap, >= 1 (default 100) */
    bool shuffle;       /* random order per epoch from the library PRNG (default true) */
    bool use_bias;      /* augmented phi(x) = [x, 1] (default true) */
} cx_perceptron_opts;

/* The defaults above. */
cx_perceptron_opts cx_perceptron_defaults(void);

/* A trained perceptron and the record of its training. */
typedef struct {
    int dim;                  /* D, the input dimension */
    float *w;                 /* [dim] weights (heap, freed by cx_perceptron_free) */
    float bias;               /* b (0 when use_bias is off) */
    bool use_bias;
    float eta;
    int64_t updates;          /* total number of weight updates (mistakes) */
    int epochs;               /* epochs run (== max_epochs when not converged) */
    bool converged;           /* the last epoch made no mistake */
    int max_epochs;           /* the cap that was used */
    int64_t n_train;          /* N */
    int64_t train_errors;     /* points with t_i f(x_i) <= 0 under the final w */
    int *epoch_mistakes;      /* [epochs] mistakes made in each epoch (heap) */
} cx_perceptron;

/* Train on X [N, D] (row-major) and t [N] in {-1, +1}. `opts` NULL: defaults.
 * `p` is overwritten (free a previous result first). */
cx_status cx_perceptron_train(cx_perceptron *p, const float *X, const float *t, int N, int D,
                              const cx_perceptron_opts *opts);
/* Same on tensors: X F32 [N, D], t F32 or I32 [N] (persistent or step). */
cx_status cx_perceptron_train_t(cx_perceptron *p, const cx_tensor *X, const cx_tensor *t,
                                const cx_perceptron_opts *opts);
/* f(x) = <w, x> + b for one input x [dim] (accumulated in double). */
float cx_perceptron_decision(const cx_perceptron *p, const float *x);
/* sign(f(x)) in {-1, +1}; f(x) = 0 maps to +1 (like cx_threshold_unit). */
float cx_perceptron_predict(const cx_perceptron *p, const float *x);
/* Predictions for X [N, dim] into out [N] ({-1, +1}). */
void cx_perceptron_predict_batch(const cx_perceptron *p, const float *X, int N, float *out);
/* Fraction of points of X [N, dim] whose prediction equals t (in [0, 1]). */
double cx_perceptron_accuracy(const cx_perceptron *p, const float *X, const float *t, int N);
/* One line describing the result into buf, e.g.
 *   "converged after 7 epochs (31 updates, 0 training errors)"
 *   "did not converge: stopped at the cap of 50 epochs (148 updates, 2 training errors)"
 * Returns buf. */
const char *cx_perceptron_describe(const cx_perceptron *p, char *buf, size_t n);
/* Free the weights and history; zeroes *p. NULL-safe, idempotent. */
void cx_perceptron_free(cx_perceptron *p);

/* ---------------------------------------------------------------- the bound
 * Perceptron convergence theorem (Novikoff form). Let phi be the feature map
 * used in training (x, or [x, 1] with use_bias), u a unit-norm separator in
 * that space, and
 *
 *     R     = max_i ||phi(x_i)||           (radius of the data)
 *     gamma = min_i t_i <u, phi(x_i)>      (margin of u; > 0 iff u separates)
 *
 * Then, starting at w = 0, the number of updates is at most (R / gamma)^2.
 * The notes write this as t <= M / delta^2 with M a bound on the *squared*
 * norm <x, x> (M = R^2) and delta = gamma: the same number. This library uses
 * and reports the (R / gamma)^2 form with R the (unsquared) max norm.
 */
typedef struct {
    double margin;   /* gamma = delta, min_i t_i <u, phi(x_i)> (may be <= 0) */
    double radius;   /* R = max_i ||phi(x_i)||;  M of the notes is radius^2 */
    double bound;    /* (R / gamma)^2, or INFINITY when gamma <= 0 */
} cx_margin_info;

/* Margin and radius of the separator (w_star [D], b_star) on X [N, D], t [N].
 * The separator is normalised to unit norm in feature space first: u =
 * (w_star, b_star) / ||(w_star, b_star)|| with use_bias, else w_star /
 * ||w_star|| (b_star is then ignored). A zero separator is an error. */
cx_status cx_perceptron_margin(const float *X, const float *t, int N, int D,
                               const float *w_star, float b_star, bool use_bias,
                               cx_margin_info *out);

/* ================================================================ kernels */
typedef enum {
    CX_KERNEL_LINEAR = 0,   /* k(x, y) = <x, y> */
    CX_KERNEL_POLY = 1,     /* k(x, y) = (gamma <x, y> + coef0)^degree */
    CX_KERNEL_RBF = 2       /* k(x, y) = exp(-gamma ||x - y||^2) */
} cx_kernel_type;

typedef struct {
    cx_kernel_type type;
    float gamma;     /* POLY, RBF: > 0 */
    float coef0;     /* POLY */
    int degree;      /* POLY: >= 1 */
} cx_kernel;

cx_kernel cx_kernel_linear(void);
cx_kernel cx_kernel_poly(int degree, float gamma, float coef0);
cx_kernel cx_kernel_rbf(float gamma);
/* k(x, y) for two vectors of length D, computed in double. */
double cx_kernel_eval(const cx_kernel *k, const float *x, const float *y, int D);
/* "linear", "poly(degree=2, gamma=1, coef0=1)", "rbf(gamma=2)" into buf. */
const char *cx_kernel_describe(const cx_kernel *k, char *buf, size_t n);

/* ================================================================ kernel perceptron
 *
 * Dual form of the perceptron: w = sum_i alpha_i t_i phi(x_i), so
 *
 *     f(x) = sum_i alpha_i t_i k(x, x_i) + b
 *
 * where alpha_i counts the mistakes made on example i. Training is the same
 * loop as the primal one (start at alpha = 0, a mistake when t_i f(x_i) <= 0,
 * then alpha_i += 1; epochs, shuffle and the epoch cap as above). The step
 * size is fixed to 1: from alpha = 0 it would only scale f.
 *
 * With use_bias the feature map is augmented with a constant 1, i.e. the
 * kernel becomes k(x, y) + 1 and b = sum_i alpha_i t_i.
 *
 * The Gram matrix K[i][j] = k(x_i, x_j) is precomputed (N^2 floats) when
 * N <= gram_max_n (default 4096), else kernel values are computed on the fly.
 * Either way the decision values of all training points are kept up to date
 * after each update, so a check costs O(1) and an update O(N) (Gram) or
 * O(N D) (on the fly).
 *
 * The trained model keeps only the support vectors (alpha_i > 0): their
 * inputs and coefficients alpha_i t_i.
 */
typedef struct {
    int max_epochs;       /* epoch cap, >= 1 (default 100) */
    bool shuffle;         /* random order per epoch from the library PRNG (default true) */
    bool use_bias;        /* kernel k + 1, b = sum alpha_i t_i (default true) */
    int gram_max_n;       /* precompute the Gram matrix when N <= this (default 4096) */
} cx_kperceptron_opts;

cx_kperceptron_opts cx_kperceptron_defaults(void);

typedef struct {
    cx_kernel kernel;
    int dim;                  /* D */
    int n_train;              /* N */
    int32_t *alpha;           /* [n_train] mistake count per training example (heap) */
    int n_sv;                 /* number of support vectors (alpha_i > 0) */
    float *sv_x;              /* [n_sv, dim] their inputs (heap) */
    float *sv_coef;           /* [n_sv] alpha_i * t_i (heap) */
    float bias;               /* b (0 when use_bias is off) */
    bool use_bias;
    bool used_gram;           /* the Gram matrix was precomputed */
    int64_t updates;          /* total mistakes = sum_i alpha_i */
    int epochs;
    bool converged;
    int max_epochs;
    int64_t train_errors;     /* training points with t_i f(x_i) <= 0 under the final model */
    int *epoch_mistakes;      /* [epochs] (heap) */
} cx_kperceptron;

/* Train on X [N, D], t [N] in {-1, +1}. `opts` NULL: defaults. `kernel` must
 * be valid (gamma > 0 for POLY and RBF, degree >= 1 for POLY). `p` is
 * overwritten (free a previous result first). */
cx_status cx_kperceptron_train(cx_kperceptron *p, const cx_kernel *kernel, const float *X,
                               const float *t, int N, int D, const cx_kperceptron_opts *opts);
/* Same on tensors: X F32 [N, D], t F32 or I32 [N]. */
cx_status cx_kperceptron_train_t(cx_kperceptron *p, const cx_kernel *kernel, const cx_tensor *X,
                                 const cx_tensor *t, const cx_kperceptron_opts *opts);
/* f(x) = sum_sv coef k(x, sv) + b for one input x [dim]. */
double cx_kperceptron_decision(const cx_kperceptron *p, const float *x);
/* sign(f(x)) in {-1, +1}; 0 maps to +1. */
float cx_kperceptron_predict(const cx_kperceptron *p, const float *x);
/* Predictions for X [N, dim] into out [N] ({-1, +1}). */
void cx_kperceptron_predict_batch(const cx_kperceptron *p, const float *X, int N, float *out);
/* Fraction of points of X [N, dim] whose prediction equals t (in [0, 1]). */
double cx_kperceptron_accuracy(const cx_kperceptron *p, const float *X, const float *t, int N);
/* One line describing the result (as cx_perceptron_describe, with the kernel
 * and the number of support vectors). Returns buf. */
const char *cx_kperceptron_describe(const cx_kperceptron *p, char *buf, size_t n);
/* Free everything; zeroes *p. NULL-safe, idempotent. */
void cx_kperceptron_free(cx_kperceptron *p);

/* ================================================================ Hopfield network
 *
 * N binary units s_i in {-1, +1} with symmetric weights and no self-coupling.
 * Patterns and states are int8 arrays of N values, each exactly -1 or +1
 * (anything else is an error, never silently thresholded).
 *
 * Storage (Hebb's rule): storing P patterns x_1 .. x_P adds
 *
 *     W += (1/N) sum_p x_p x_p^T,   then W_ii = 0
 *
 * computed with one cx_sgemm per call. Calls accumulate: storing A then B
 * gives the same network as storing A and B at once. The network also keeps
 * the integer Hebbian counts C = sum_p x_p x_p^T (zero diagonal), W = C / N;
 * local fields and energies are computed from C in double, which is exact,
 * so a field of exactly 0 (a tie) is recognised as such.
 *
 * Asynchronous recall: one sweep visits every unit once, in a fresh random
 * order (a permutation drawn from opts.rng, or the calling thread's current
 * stream when NULL), and sets
 *
 *     s_i <- sign(h_i),  h_i = sum_j W_ij s_j;   h_i = 0 keeps s_i
 *
 * using the state as already updated in this sweep. Recall stops after the
 * first sweep that changes nothing (converged: s is a fixed point) or after
 * max_sweeps sweeps.
 *
 * Energy: E(s) = -1/2 s^T W s. With W symmetric and W_ii = 0 an asynchronous
 * update never increases E (a flip of unit i changes E by -|2 h_i| <= 0), so
 * recall always converges; max_sweeps only bounds the work.
 *
 * Capacity: with random patterns a 20%-corrupted probe is pulled back to its
 * pattern while P / N is small; around P / N = 0.138 (Amit, Gutfreund,
 * Sompolinsky) the stored patterns stop being (near-)fixed points and recall
 * collapses. examples/hopfield.c measures it.
 *
 * Errors (CX_ERR_ARG, message naming the argument, nothing changed): N < 1
 * or N > CX_HOPFIELD_MAX_N, NULL pointers, a length n != N, P < 1, more than
 * 2^24 patterns in total, a value that is not -1 or +1 (the message gives
 * its index), max_sweeps < 1. Out of memory: CX_ERR_NOMEM.
 */
#define CX_HOPFIELD_MAX_N 16384

typedef struct cx_hopfield {
    int n;            /* N, number of units */
    int64_t stored;   /* patterns stored so far */
    float *w;         /* [N, N] row-major W = C / N, symmetric, zero diagonal */
    float *c;         /* [N, N] Hebbian counts C (integer-valued floats) */
} cx_hopfield;

typedef struct {
    int max_sweeps;   /* sweep cap, >= 1 (default 100) */
    cx_rng *rng;      /* stream of the update order (NULL, the default: cx_rng_current()) */
    /* Called after every single-unit update (changed or not) with the state
     * as it is now; NULL (the default): none. For tracing or testing. */
    void (*on_update)(int unit, bool changed, const int8_t *s, void *user);
    void *user;       /* passed to on_update */
} cx_hopfield_opts;

/* The defaults above. */
cx_hopfield_opts cx_hopfield_defaults(void);

/* What one recall did. */
typedef struct {
    int sweeps;       /* sweeps run (the last one changed nothing when converged) */
    int64_t flips;    /* single-unit updates that changed the state */
    bool converged;   /* s ended at a fixed point */
} cx_hopfield_result;

/* A network of n units with W = 0. NULL on error (cx_last_error()). */
cx_hopfield *cx_hopfield_new(int n);
/* Free it. NULL-safe. */
void cx_hopfield_free(cx_hopfield *h);
/* Store P patterns X [P, n] (row-major, every value -1 or +1) by Hebb's
 * rule. n must equal h->n. On error W is unchanged. */
cx_status cx_hopfield_store(cx_hopfield *h, const int8_t *X, int P, int n);
/* Asynchronous recall from s [n] (in place; every value -1 or +1). opts
 * NULL: defaults. res may be NULL. On an argument error s is unchanged. */
cx_status cx_hopfield_recall(const cx_hopfield *h, int8_t *s, int n, const cx_hopfield_opts *opts,
                             cx_hopfield_result *res);
/* Local field h_i = sum_j W_ij s_j of unit i (exact up to the final
 * division by N). NAN on error. */
double cx_hopfield_field(const cx_hopfield *h, const int8_t *s, int n, int i);
/* E(s) = -1/2 s^T W s. NAN on error (cx_last_error()). */
double cx_hopfield_energy(const cx_hopfield *h, const int8_t *s, int n);
/* Overlap m = (1/n) sum_i a_i b_i in [-1, 1] (1: equal, -1: a = -b). NAN
 * when n < 1 or a pointer is NULL. */
double cx_hopfield_overlap(const int8_t *a, const int8_t *b, int n);

#ifdef __cplusplus
}
#endif
#endif
