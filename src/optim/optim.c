/* Optimisers with PyTorch 1.13's update rules (see cortex/optim.h). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cortex/optim.h"
#include "flat_internal.h"
#include "../cpu/vmath.h"

#ifdef _OPENMP
#include <omp.h>
#define CX_OMP_SIMD _Pragma("omp simd")
#else
#define CX_OMP_SIMD
#endif
/* Loops calling sqrtf vectorise only with -fno-math-errno (sqrtf may set
 * errno otherwise); clang warns about an `omp simd` it cannot honour. */
#if defined(_OPENMP) && (defined(__NO_MATH_ERRNO__) || !defined(__clang__))
#define CX_OMP_SIMD_SQRT _Pragma("omp simd")
#else
#define CX_OMP_SIMD_SQRT
#endif

/* PyTorch's CPU kernels (AVX2 build) fuse `self + alpha * other` (add_ with
 * alpha, addcmul_) into one FMA; so do we when the target has FMA, which
 * makes results bit-identical to PyTorch's. Without hardware FMA (e.g.
 * PORTABLE=1 builds) the unfused form differs by at most an ulp per op. */
#ifdef __FMA__
#define FMA(a, b, c) fmaf((a), (b), (c))
#else
#define FMA(a, b, c) ((a) * (b) + (c))
#endif

/* Decaying state (momentum, Adam's moments, RMSprop's averages) of parameters
 * whose gradient stays zero (e.g. always-black pixels feeding fc1) shrinks
 * geometrically into the subnormal range, where every arithmetic op on it is
 * ~100x slower on x86. Flushing values below FLT_MIN to zero keeps the update
 * loops at full speed; it changes nothing above 1.2e-38. */
#if defined(__SSE__) || defined(__x86_64__)
/* x86: the kernels run with FTZ+DAZ set in MXCSR (see call_kernel), which does
 * exactly this in hardware at no cost per element. */
#include <xmmintrin.h>
#define CX_HW_FLUSH 1
#define CX_FLUSH(x) (x)
#else
static inline float cx_flush(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }
#define CX_FLUSH(x) cx_flush(x)
#endif

#if defined(__GNUC__)
#define CX_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CX_ALWAYS_INLINE inline
#endif

/* x / b for the per-step constant b > 0, rounded exactly as the division
 * (PyTorch divides by it), given rb = 1 / b rounded to float: with hardware
 * FMA two residual corrections of x * rb (Markstein: the residual x - b q of
 * a faithful q is exact, and q + r rb then rounds to the correctly rounded
 * quotient when rb is within half an ulp of 1 / b). Five FMA-unit operations
 * instead of a division: Adam's loop was bound by its two divisions and one
 * square root, which share one slow unit (x86 vdivps/vsqrtps). x and the
 * quotient are normal or zero here (FTZ/DAZ on x86, see CX_FLUSH).
 * tests/optim/test_optim.c checks it against the division. */
#ifdef __FMA__
static inline float div_const(float x, float b, float rb) {
    float q = x * rb;
    float r = FMA(-q, b, x);
    q = FMA(r, rb, q);
    r = FMA(-q, b, x);
    return FMA(r, rb, q);
}
#else
static inline float div_const(float x, float b, float rb) {
    (void)rb;
    return x / b;
}
#endif

/* ------------------------------------------------------------ kernels
 * Every kernel updates elements [lo, hi) of one parameter. The scalar
 * coefficients are computed in double by the caller and rounded to float
 * once, like PyTorch's Python-float scalars applied to float32 tensors.
 * The order of operations follows the ATen ops PyTorch chains. */
typedef struct {
    float *p;
    const float *g;
    float *b0, *b1, *b2; /* state buffers (meaning depends on the kind) */
    float wd;            /* coupled weight decay (0: none) */
    float c[9];          /* kind-specific coefficients */
    int flag0, flag1;    /* kind-specific switches */
} kargs;

typedef void (*kernel_fn)(const kargs *a, int64_t lo, int64_t hi);

/* SGD. c: 0 = -lr, 1 = momentum, 2 = 1 - dampening.
 * flag0: 0 no momentum, 1 momentum (first step), 2 momentum (later steps).
 * flag1: nesterov. */
static void k_sgd(const kargs *a, int64_t lo, int64_t hi) {
    float *restrict p = a->p;
    const float *restrict g = a->g;
    float *restrict buf = a->b0;
    const float wd = a->wd, nlr = a->c[0], mom = a->c[1], damp1 = a->c[2];
    const int mode = a->flag0, nesterov = a->flag1;
    if (mode == 0) {
        CX_OMP_SIMD
        for (int64_t i = lo; i < hi; i++) {
            float d = g[i];
            if (wd != 0.0f) d = FMA(wd, p[i], d);
            p[i] = FMA(nlr, d, p[i]);
        }
    } else if (mode == 1) {
        CX_OMP_SIMD
        for (int64_t i = lo; i < hi; i++) {
            float d = g[i];
            if (wd != 0.0f) d = FMA(wd, p[i], d);
            buf[i] = d;
            if (nesterov) d = FMA(mom, d, d);
            p[i] = FMA(nlr, d, p[i]);
        }
    } else {
        CX_OMP_SIMD
        for (int64_t i = lo; i < hi; i++) {
            float d = g[i];
            if (wd != 0.0f) d = FMA(wd, p[i], d);
            float b = CX_FLUSH(FMA(damp1, d, buf[i] * mom));
            buf[i] = b;
            d = nesterov ? FMA(mom, b, d) : b;
            p[i] = FMA(nlr, d, p[i]);
        }
    }
}

#if defined(__AVX512F__) && defined(__FMA__) && defined(CX_HW_FLUSH)
#include <immintrin.h>
/* adam_loop's operations, sixteen elements at a time (amsgrad off); returns
 * where the scalar loop takes over. The same results bit for bit: one
 * rounding per operation in the same order, FMAs where FMA() is fmaf. */
static inline __attribute__((always_inline)) int64_t adam16(const kargs *a, int64_t lo, int64_t hi, const int wdm) {
    float *restrict p = a->p;
    const float *restrict g = a->g;
    float *restrict m = a->b0, *restrict v = a->b1;
    const __m512 wd = _mm512_set1_ps(a->wd), b1 = _mm512_set1_ps(a->c[0]), omb1 = _mm512_set1_ps(a->c[1]);
    const __m512 b2 = _mm512_set1_ps(a->c[2]), omb2 = _mm512_set1_ps(a->c[3]), bc2s = _mm512_set1_ps(a->c[4]);
    const __m512 eps = _mm512_set1_ps(a->c[5]), nss = _mm512_set1_ps(a->c[6]), decay = _mm512_set1_ps(a->c[7]);
    const __m512 rbc2s = _mm512_set1_ps(a->c[8]);
    int64_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i), pi = _mm512_loadu_ps(p + i);
        if (wdm == 2) pi = _mm512_mul_ps(pi, decay);
        if (wdm == 1) gi = _mm512_fmadd_ps(wd, pi, gi);
        const __m512 mi = _mm512_fmadd_ps(omb1, gi, _mm512_mul_ps(_mm512_loadu_ps(m + i), b1));
        const __m512 vi = _mm512_fmadd_ps(_mm512_mul_ps(omb2, gi), gi, _mm512_mul_ps(_mm512_loadu_ps(v + i), b2));
        const __m512 sq = cx_vsqrt16_exact(vi);
        __m512 q = _mm512_mul_ps(sq, rbc2s); /* div_const */
        q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, bc2s, sq), rbc2s, q);
        q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, bc2s, sq), rbc2s, q);
        const __m512 den = _mm512_add_ps(q, eps);
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        _mm512_storeu_ps(p + i, _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(nss, mi), den)));
    }
    return i;
}
#define CX_ADAM16 1
#endif

/* Adam / AdamW. c: 0 = beta1, 1 = 1 - beta1, 2 = beta2, 3 = 1 - beta2,
 * 4 = sqrt(bias correction 2), 5 = eps, 6 = -step size, 7 = 1 - lr * wd
 * (AdamW), 8 = 1 / c[4] (div_const). flag0: amsgrad, flag1: decoupled (AdamW).
 * One instance per (amsgrad, weight-decay mode): the switches are
 * compile-time constants in each, so the loop has no branch to if-convert
 * (gcc left the loop scalar when it had to). wdm: 0 none, 1 coupled (L2 in
 * the gradient), 2 decoupled (AdamW). */
static CX_ALWAYS_INLINE void adam_loop(const kargs *a, int64_t lo, int64_t hi, const int ams, const int wdm) {
    float *restrict p = a->p;
    const float *restrict g = a->g;
    float *restrict m = a->b0, *restrict v = a->b1, *restrict vmax = a->b2;
    const float wd = a->wd, b1 = a->c[0], omb1 = a->c[1], b2 = a->c[2], omb2 = a->c[3];
    const float bc2s = a->c[4], eps = a->c[5], nss = a->c[6], decay = a->c[7], rbc2s = a->c[8];
#ifdef CX_ADAM16
    if (!ams) lo = adam16(a, lo, hi, wdm);
#endif
    CX_OMP_SIMD_SQRT
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i], pi = p[i];
        if (wdm == 2) pi = pi * decay;
        if (wdm == 1) gi = FMA(wd, pi, gi);
        float mi = CX_FLUSH(FMA(omb1, gi, m[i] * b1));
        float vi = CX_FLUSH(FMA(omb2 * gi, gi, v[i] * b2));
        float vd = vi; /* amsgrad: the running maximum of v */
        if (ams) {
            float vm = vmax[i];
            vd = vm >= vi ? vm : vi;
            vmax[i] = vd;
        }
        float den = div_const(sqrtf(vd), bc2s, rbc2s) + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + nss * mi / den;
    }
}

static void k_adam(const kargs *a, int64_t lo, int64_t hi) {
    const int wdm = a->flag1 ? 2 : a->wd != 0.0f ? 1 : 0;
    if (a->flag0) {
        if (wdm == 0) adam_loop(a, lo, hi, 1, 0);
        else if (wdm == 1) adam_loop(a, lo, hi, 1, 1);
        else adam_loop(a, lo, hi, 1, 2);
    } else {
        if (wdm == 0) adam_loop(a, lo, hi, 0, 0);
        else if (wdm == 1) adam_loop(a, lo, hi, 0, 1);
        else adam_loop(a, lo, hi, 0, 2);
    }
}

/* RMSprop. b0 = square_avg, b1 = momentum_buffer, b2 = grad_avg.
 * c: 0 = alpha, 1 = 1 - alpha, 2 = eps, 3 = momentum, 4 = -lr.
 * flag0: momentum > 0, flag1: centered. The two switches are compile-time
 * constants in each instance (a vectorised loop must not touch the unused,
 * NULL buffers even under a mask). */
static CX_ALWAYS_INLINE void rmsprop_loop(const kargs *a, int64_t lo, int64_t hi,
                                          const int use_mom, const int centered) {
    float *restrict p = a->p;
    const float *restrict g = a->g;
    float *restrict sq = a->b0, *restrict buf = a->b1, *restrict ga = a->b2;
    const float wd = a->wd, alpha = a->c[0], oma = a->c[1], eps = a->c[2];
    const float mom = a->c[3], nlr = a->c[4];
    CX_OMP_SIMD_SQRT
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (wd != 0.0f) gi = FMA(wd, p[i], gi);
        float s = CX_FLUSH(FMA(oma * gi, gi, sq[i] * alpha));
        sq[i] = s;
        float avg;
        if (centered) {
            float av = CX_FLUSH(FMA(oma, gi, ga[i] * alpha));
            ga[i] = av;
            avg = sqrtf(FMA(-1.0f * av, av, s));
        } else {
            avg = sqrtf(s);
        }
        avg = avg + eps;
        if (use_mom) {
            float b = buf[i] * mom; /* two statements: no contraction */
            b = CX_FLUSH(b + gi / avg);
            buf[i] = b;
            p[i] = FMA(nlr, b, p[i]);
        } else {
            p[i] = p[i] + nlr * gi / avg;
        }
    }
}

static void k_rmsprop(const kargs *a, int64_t lo, int64_t hi) {
    if (a->flag0) {
        if (a->flag1) rmsprop_loop(a, lo, hi, 1, 1);
        else rmsprop_loop(a, lo, hi, 1, 0);
    } else {
        if (a->flag1) rmsprop_loop(a, lo, hi, 0, 1);
        else rmsprop_loop(a, lo, hi, 0, 0);
    }
}

/* Adagrad. b0 = sum. c: 0 = eps, 1 = -clr. */
static void k_adagrad(const kargs *a, int64_t lo, int64_t hi) {
    float *restrict p = a->p;
    const float *restrict g = a->g;
    float *restrict sum = a->b0;
    const float wd = a->wd, eps = a->c[0], nclr = a->c[1];
    CX_OMP_SIMD_SQRT
    for (int64_t i = lo; i < hi; i++) {
        float gi = g[i];
        if (wd != 0.0f) gi = FMA(wd, p[i], gi);
        float s = FMA(gi, gi, sum[i]);
        sum[i] = s;
        float sd = sqrtf(s) + eps;
        p[i] = p[i] + nclr * gi / sd;
    }
}

/* Run a kernel over n elements, split over the OpenMP threads when large. */
/* Run one kernel chunk with subnormals flushed to zero (x86: FTZ | DAZ). */
static void call_kernel(kernel_fn f, const kargs *a, int64_t lo, int64_t hi) {
#ifdef CX_HW_FLUSH
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u);
    f(a, lo, hi);
    _mm_setcsr(csr);
#else
    f(a, lo, hi);
#endif
}

#ifdef _OPENMP
/* Whether a pass over n elements runs on the threads, and thread t's part
 * [*lo, *hi) of it (whole cache lines per thread). The optimiser step and
 * zeroing split the same way, so a gradient's lines stay with one thread. */
static bool par_pass(int64_t n) { return n > CX_OPTIM_PAR_THRESHOLD && !omp_in_parallel() && omp_get_max_threads() > 1; }
static void par_part(int64_t n, int64_t *lo, int64_t *hi) {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t chunk = (n + nt - 1) / nt;
    chunk = (chunk + 15) & ~(int64_t)15;
    *lo = t * chunk;
    *hi = *lo + chunk < n ? *lo + chunk : n;
}
#endif

static void run_kernel(kernel_fn f, const kargs *a, int64_t n) {
#ifdef _OPENMP
    if (par_pass(n)) {
#pragma omp parallel
        {
            int64_t lo, hi;
            par_part(n, &lo, &hi);
            if (lo < hi) call_kernel(f, a, lo, hi);
        }
        return;
    }
#endif
    call_kernel(f, a, 0, n);
}

/* ------------------------------------------------------------ the object */
typedef struct {
    cx_tensor *step;   /* I64 [1] */
    cx_tensor *buf[3]; /* F32, the parameter's shape; NULL when unused */
} pstate;

struct cx_optim {
    cx_optim_kind kind;
    int n;
    cx_tensor **p;
    pstate *st;
    cx_tensor *nstep; /* "optim.step", I64 [1] */
    double lr;
    /* Flat layout: when p[] is exactly a flat buffer's list, state buffer b of
     * every parameter lives in one block sblock[b], laid out like the flat
     * buffer's blocks (the layout depends only on p[], so it fits every flat
     * buffer made of exactly p[]); st[i].buf[b] are views into it. */
    bool flat_state;
    float *sblock[3];
    float sfill; /* initial value of the state buffers (and of the padding) */
    union {
        cx_sgd_opts sgd;
        cx_adam_opts adam;
        cx_rmsprop_opts rms;
        cx_adagrad_opts ada;
    } o;
};

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};

static void check_params(const cx_params *params, const char *who) {
    if (!params) cx_fatal("%s: params is NULL", who);
    if (params->n <= 0) cx_fatal("%s: empty parameter list", who);
    for (int i = 0; i < params->n; i++) {
        const cx_tensor *t = params->t[i];
        if (!t) cx_fatal("%s: parameter %d is NULL", who, i);
        if (t->dtype != CX_F32)
            cx_fatal("%s: parameter %d (%s) is %s, not f32", who, i, t->name ? t->name : "?",
                     cx_dtype_name(t->dtype));
    }
}

static void check_nonneg(double v, const char *what, const char *who) {
    if (!(v >= 0.0)) cx_fatal("%s: invalid %s %g (must be >= 0)", who, what, v);
}
static void check_unit(double v, const char *what, const char *who) {
    if (!(v >= 0.0 && v < 1.0)) cx_fatal("%s: invalid %s %g (must be in [0, 1))", who, what, v);
}

static char *state_name(const cx_tensor *p, int i, const char *buf) {
    char idx[24];
    const char *key = p->name && p->name[0] ? p->name : idx;
    snprintf(idx, sizeof idx, "%d", i);
    int len = snprintf(NULL, 0, "state.%s.%s", key, buf);
    char *s = malloc((size_t)len + 1);
    if (!s) cx_fatal("optim: out of memory");
    snprintf(s, (size_t)len + 1, "state.%s.%s", key, buf);
    return s;
}

static cx_tensor *new_state(const cx_tensor *p, int i, const char *buf, cx_dtype dt,
                            const int *shape, int ndim) {
    cx_tensor *t = cx_tensor_new(dt, shape, ndim);
    char *s = state_name(p, i, buf);
    cx_tensor_set_name(t, s);
    free(s);
    return t;
}

static void fill_floats(float *d, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) d[i] = v;
}

/* Move every state buffer into one block per buffer, laid out like `f` (whose
 * list is exactly o->p): copy each parameter's state in, make the state
 * tensors views into the block, free their old storage (own buffers, or the
 * previous blocks). Padding starts at sfill. */
static void adopt_flat(cx_optim *o, const cx_flat *f) {
    for (int b = 0; b < 3; b++) {
        if (!o->st[0].buf[b]) continue; /* a buffer exists for every parameter or none */
        float *blk = cx_flat_alloc_floats(f->total, "optim");
        fill_floats(blk, f->total, o->sfill);
        for (int i = 0; i < o->n; i++) {
            cx_tensor *t = o->st[i].buf[b];
            float *dst = blk + f->off[i];
            if (t->numel) memcpy(dst, t->data, (size_t)t->numel * sizeof(float));
            if (t->owns_data) free(t->data);
            t->data = dst;
            t->owns_data = false;
        }
        free(o->sblock[b]);
        o->sblock[b] = blk;
    }
    o->flat_state = true;
}

/* Allocate the object and its state: buffer b of every parameter exists when
 * names[b] is not NULL, and is filled with `fill`. */
static cx_optim *optim_alloc(cx_optim_kind kind, const cx_params *params, double lr,
                             const char *const names[3], float fill) {
    cx_optim *o = calloc(1, sizeof *o);
    if (!o) cx_fatal("optim: out of memory");
    o->kind = kind;
    o->lr = lr;
    o->n = params->n;
    o->p = malloc((size_t)params->n * sizeof *o->p);
    o->st = calloc((size_t)params->n, sizeof *o->st);
    if (!o->p || !o->st) cx_fatal("optim: out of memory");
    memcpy(o->p, params->t, (size_t)params->n * sizeof *o->p);
    o->nstep = cx_tensor_new(CX_I64, CX_SHAPE(1));
    cx_tensor_set_name(o->nstep, "optim.step");
    o->sfill = fill;
    /* A flat buffer's list: state blocks in its layout, state tensors as views. */
    const cx_flat *f = cx_flat_match(o->p, o->n);
    if (f) {
        for (int b = 0; b < 3; b++) {
            if (!names[b]) continue;
            o->sblock[b] = cx_flat_alloc_floats(f->total, "optim");
            fill_floats(o->sblock[b], f->total, fill);
        }
        o->flat_state = true;
    }
    for (int i = 0; i < o->n; i++) {
        cx_tensor *p = o->p[i];
        o->st[i].step = new_state(p, i, "step", CX_I64, CX_SHAPE(1));
        for (int b = 0; b < 3; b++) {
            if (!names[b]) continue;
            cx_tensor *t = new_state(p, i, names[b], CX_F32, p->shape, p->ndim);
            if (f) {
                free(t->data);
                t->data = o->sblock[b] + f->off[i];
                t->owns_data = false;
            } else if (fill != 0.0f) {
                cx_fill(t, fill);
            }
            o->st[i].buf[b] = t;
        }
    }
    return o;
}

/* ---- defaults (PyTorch's; SGD has no default lr there, ours is 0.01) */
cx_sgd_opts cx_sgd_defaults(void) {
    return (cx_sgd_opts){.lr = 0.01, .momentum = 0.0, .dampening = 0.0, .weight_decay = 0.0, .nesterov = false};
}
cx_adam_opts cx_adam_defaults(void) {
    return (cx_adam_opts){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0, .amsgrad = false};
}
cx_adam_opts cx_adamw_defaults(void) {
    cx_adam_opts o = cx_adam_defaults();
    o.weight_decay = 1e-2;
    return o;
}
cx_rmsprop_opts cx_rmsprop_defaults(void) {
    return (cx_rmsprop_opts){.lr = 1e-2, .alpha = 0.99, .eps = 1e-8, .weight_decay = 0.0, .momentum = 0.0,
                             .centered = false};
}
cx_adagrad_opts cx_adagrad_defaults(void) {
    return (cx_adagrad_opts){.lr = 1e-2, .lr_decay = 0.0, .weight_decay = 0.0, .initial_accumulator_value = 0.0,
                             .eps = 1e-10};
}

cx_optim *cx_sgd_new(const cx_params *params, const cx_sgd_opts *opts) {
    const char *who = "cx_sgd_new";
    cx_sgd_opts o = cx_sgd_defaults();
    if (opts) o = *opts;
    check_params(params, who);
    check_nonneg(o.lr, "lr", who);
    check_nonneg(o.momentum, "momentum", who);
    check_nonneg(o.weight_decay, "weight_decay", who);
    if (o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0))
        cx_fatal("%s: nesterov momentum requires a momentum and zero dampening", who);
    const char *names[3] = {o.momentum != 0.0 ? "momentum_buffer" : NULL, NULL, NULL};
    cx_optim *opt = optim_alloc(CX_OPTIM_SGD, params, o.lr, names, 0.0f);
    opt->o.sgd = o;
    return opt;
}

static cx_optim *adam_new(cx_optim_kind kind, const cx_params *params, const cx_adam_opts *o,
                          const char *who) {
    check_params(params, who);
    check_nonneg(o->lr, "lr", who);
    check_nonneg(o->eps, "eps", who);
    check_unit(o->beta1, "beta1", who);
    check_unit(o->beta2, "beta2", who);
    check_nonneg(o->weight_decay, "weight_decay", who);
    const char *names[3] = {"exp_avg", "exp_avg_sq", o->amsgrad ? "max_exp_avg_sq" : NULL};
    cx_optim *opt = optim_alloc(kind, params, o->lr, names, 0.0f);
    opt->o.adam = *o;
    return opt;
}

cx_optim *cx_adam_new(const cx_params *params, const cx_adam_opts *opts) {
    cx_adam_opts o = cx_adam_defaults();
    if (opts) o = *opts;
    return adam_new(CX_OPTIM_ADAM, params, &o, "cx_adam_new");
}

cx_optim *cx_adamw_new(const cx_params *params, const cx_adam_opts *opts) {
    cx_adam_opts o = cx_adamw_defaults();
    if (opts) o = *opts;
    return adam_new(CX_OPTIM_ADAMW, params, &o, "cx_adamw_new");
}

cx_optim *cx_rmsprop_new(const cx_params *params, const cx_rmsprop_opts *opts) {
    const char *who = "cx_rmsprop_new";
    cx_rmsprop_opts o = cx_rmsprop_defaults();
    if (opts) o = *opts;
    check_params(params, who);
    check_nonneg(o.lr, "lr", who);
    check_nonneg(o.eps, "eps", who);
    check_nonneg(o.momentum, "momentum", who);
    check_nonneg(o.weight_decay, "weight_decay", who);
    check_nonneg(o.alpha, "alpha", who);
    const char *names[3] = {"square_avg", o.momentum > 0.0 ? "momentum_buffer" : NULL,
                            o.centered ? "grad_avg" : NULL};
    cx_optim *opt = optim_alloc(CX_OPTIM_RMSPROP, params, o.lr, names, 0.0f);
    opt->o.rms = o;
    return opt;
}

cx_optim *cx_adagrad_new(const cx_params *params, const cx_adagrad_opts *opts) {
    const char *who = "cx_adagrad_new";
    cx_adagrad_opts o = cx_adagrad_defaults();
    if (opts) o = *opts;
    check_params(params, who);
    check_nonneg(o.lr, "lr", who);
    check_nonneg(o.lr_decay, "lr_decay", who);
    check_nonneg(o.weight_decay, "weight_decay", who);
    check_nonneg(o.initial_accumulator_value, "initial_accumulator_value", who);
    check_nonneg(o.eps, "eps", who);
    const char *names[3] = {"sum", NULL, NULL};
    cx_optim *opt =
        optim_alloc(CX_OPTIM_ADAGRAD, params, o.lr, names, (float)o.initial_accumulator_value);
    opt->o.ada = o;
    return opt;
}

void cx_optim_free(cx_optim *opt) {
    if (!opt) return;
    for (int i = 0; i < opt->n; i++) {
        cx_tensor_free(opt->st[i].step);
        for (int b = 0; b < 3; b++)
            if (opt->st[i].buf[b]) cx_tensor_free(opt->st[i].buf[b]);
    }
    cx_tensor_free(opt->nstep);
    for (int b = 0; b < 3; b++) free(opt->sblock[b]);
    free(opt->st);
    free(opt->p);
    free(opt);
}

/* ------------------------------------------------------------ step */
/* The coefficients of one update with step count `step` (prev = step - 1);
 * returns the kernel. Pointers are left for the caller. */
static kernel_fn setup_args(const cx_optim *opt, int64_t prev, int64_t step, kargs *a) {
    const double lr = opt->lr;
    memset(a, 0, sizeof *a);
    switch (opt->kind) {
    case CX_OPTIM_SGD: {
        const cx_sgd_opts *o = &opt->o.sgd;
        a->wd = (float)o->weight_decay;
        a->c[0] = (float)-lr;
        a->c[1] = (float)o->momentum;
        a->c[2] = (float)(1.0 - o->dampening);
        a->flag0 = o->momentum == 0.0 ? 0 : (prev == 0 ? 1 : 2);
        a->flag1 = o->nesterov;
        return k_sgd;
    }
    case CX_OPTIM_ADAM:
    case CX_OPTIM_ADAMW: {
        const cx_adam_opts *o = &opt->o.adam;
        const double bc1 = 1.0 - pow(o->beta1, (double)step);
        const double bc2 = 1.0 - pow(o->beta2, (double)step);
        const bool decoupled = opt->kind == CX_OPTIM_ADAMW;
        a->wd = decoupled ? 0.0f : (float)o->weight_decay;
        a->c[0] = (float)o->beta1;
        a->c[1] = (float)(1.0 - o->beta1);
        a->c[2] = (float)o->beta2;
        a->c[3] = (float)(1.0 - o->beta2);
        a->c[4] = (float)sqrt(bc2);
        a->c[5] = (float)o->eps;
        a->c[6] = (float)-(lr / bc1);
        a->c[7] = (float)(1.0 - lr * o->weight_decay);
        a->c[8] = 1.0f / a->c[4]; /* rounded once, in float (div_const) */
        a->flag0 = o->amsgrad;
        a->flag1 = decoupled;
        return k_adam;
    }
    case CX_OPTIM_RMSPROP: {
        const cx_rmsprop_opts *o = &opt->o.rms;
        a->wd = (float)o->weight_decay;
        a->c[0] = (float)o->alpha;
        a->c[1] = (float)(1.0 - o->alpha);
        a->c[2] = (float)o->eps;
        a->c[3] = (float)o->momentum;
        a->c[4] = (float)-lr;
        a->flag0 = o->momentum > 0.0;
        a->flag1 = o->centered;
        return k_rmsprop;
    }
    case CX_OPTIM_ADAGRAD: {
        const cx_adagrad_opts *o = &opt->o.ada;
        const double clr = lr / (1.0 + (double)(step - 1) * o->lr_decay);
        a->wd = (float)o->weight_decay;
        a->c[0] = (float)o->eps;
        a->c[1] = (float)-clr;
        return k_adagrad;
    }
    }
    cx_fatal("cx_optim_step: bad optimiser kind %d", (int)opt->kind);
}

/* The step count shared by every non-empty parameter (*prev), or false when
 * they differ (or every parameter is empty). The per-tensor path skips
 * empty parameters, so their counts stay 0 and do not count here. */
static bool common_step(const cx_optim *opt, int64_t *prev) {
    bool any = false;
    for (int i = 0; i < opt->n; i++) {
        if (opt->p[i]->numel == 0) continue;
        const int64_t s = CX_I64P(opt->st[i].step)[0];
        if (!any) *prev = s, any = true;
        else if (s != *prev) return false;
    }
    return any;
}

/* One pass over the flat blocks: every parameter steps (all have a grad). */
static void step_flat(cx_optim *opt, const cx_flat *f, int64_t prev) {
    const int64_t step = prev + 1;
    for (int i = 0; i < opt->n; i++)
        if (opt->p[i]->numel) CX_I64P(opt->st[i].step)[0] = step;
    kargs a;
    kernel_fn fn = setup_args(opt, prev, step, &a);
    a.p = f->data;
    a.g = f->grad;
    a.b0 = opt->sblock[0];
    a.b1 = opt->sblock[1];
    a.b2 = opt->sblock[2];
    run_kernel(fn, &a, f->total);
}

void cx_optim_step(cx_optim *opt) {
    const cx_flat *f = cx_flat_match(opt->p, opt->n);
    int64_t prev = 0;
    if (f && !opt->flat_state) adopt_flat(opt, f); /* flattened after construction */
    if (f && common_step(opt, &prev)) {
        step_flat(opt, f, prev);
    } else {
        for (int i = 0; i < opt->n; i++) {
            cx_tensor *p = opt->p[i];
            if (!p->grad || p->numel == 0) continue;
            pstate *st = &opt->st[i];
            int64_t *stepp = CX_I64P(st->step);
            const int64_t prv = *stepp, step = prv + 1;
            *stepp = step;
            kargs a;
            kernel_fn fn = setup_args(opt, prv, step, &a);
            a.p = CX_F(p);
            a.g = p->grad;
            a.b0 = st->buf[0] ? CX_F(st->buf[0]) : NULL;
            a.b1 = st->buf[1] ? CX_F(st->buf[1]) : NULL;
            a.b2 = st->buf[2] ? CX_F(st->buf[2]) : NULL;
            run_kernel(fn, &a, p->numel);
        }
    }
    CX_I64P(opt->nstep)[0]++;
}

/* Zero g[0, n) split over the threads as run_kernel splits a step: each
 * thread zeroes the elements it updated, still in its cache, rather than the
 * calling thread pulling every line of the gradient into its own (an MLP's
 * 2-thread step: 0.316 -> 0.298 ms, medians of 6 alternating runs). */
static void zero_like_step(float *g, int64_t n) {
#ifdef _OPENMP
    if (par_pass(n)) {
#pragma omp parallel
        {
            int64_t lo, hi;
            par_part(n, &lo, &hi);
            if (lo < hi) memset(g + lo, 0, (size_t)(hi - lo) * sizeof(float));
        }
        return;
    }
#endif
    memset(g, 0, (size_t)n * sizeof(float));
}

void cx_optim_zero_grad(cx_optim *opt) {
    const cx_flat *f = cx_flat_match(opt->p, opt->n);
    if (f) {
        zero_like_step(f->grad, f->total);
        return;
    }
    for (int i = 0; i < opt->n; i++) {
        cx_tensor *p = opt->p[i];
        if (p->grad) zero_like_step(p->grad, p->numel);
    }
}

void cx_optim_set_lr(cx_optim *opt, double lr) {
    if (!(lr >= 0.0)) cx_fatal("cx_optim_set_lr: invalid lr %g", lr);
    opt->lr = lr;
}
double cx_optim_get_lr(const cx_optim *opt) { return opt->lr; }
cx_optim_kind cx_optim_get_kind(const cx_optim *opt) { return opt->kind; }
const char *cx_optim_name(const cx_optim *opt) { return kind_names[opt->kind]; }
int64_t cx_optim_steps(const cx_optim *opt) { return CX_I64P(opt->nstep)[0]; }
int cx_optim_param_count(const cx_optim *opt) { return opt->n; }
cx_tensor *cx_optim_param(const cx_optim *opt, int i) {
    if (i < 0 || i >= opt->n) cx_fatal("cx_optim_param: index %d out of range [0, %d)", i, opt->n);
    return opt->p[i];
}

/* ------------------------------------------------------------ state I/O */
cx_status cx_optim_state_export(cx_optim *opt, cx_params *out) {
    if (!opt || !out) return cx_set_error(CX_ERR_ARG, "cx_optim_state_export: NULL argument");
    cx_params_add(out, opt->nstep);
    for (int i = 0; i < opt->n; i++) {
        cx_params_add(out, opt->st[i].step);
        for (int b = 0; b < 3; b++)
            if (opt->st[i].buf[b]) cx_params_add(out, opt->st[i].buf[b]);
    }
    return CX_OK;
}

/* The step count stored for `dst` in `in` (checked, not written). */
static cx_status read_step(const cx_tensor *dst, const cx_params *in, int64_t *out) {
    const cx_tensor *s = cx_params_find(in, dst->name);
    if (!s) return cx_set_error(CX_ERR_NOTFOUND, "optimiser state: missing tensor '%s'", dst->name);
    if (s->numel != 1)
        return cx_set_error(CX_ERR_SHAPE, "optimiser state: '%s' has %lld elements, expected 1",
                            dst->name, (long long)s->numel);
    int64_t v;
    switch (s->dtype) {
    case CX_I64: v = CX_I64P(s)[0]; break;
    case CX_I32: v = CX_I32P(s)[0]; break;
    case CX_F32: {
        float f = CX_F(s)[0];
        if (!(f >= 0.0f && f <= 9.0e15f) || f != floorf(f))
            return cx_set_error(CX_ERR_FORMAT, "optimiser state: '%s' is not a step count",
                                dst->name);
        v = (int64_t)f;
        break;
    }
    default: return cx_set_error(CX_ERR_FORMAT, "optimiser state: '%s' has a bad dtype", dst->name);
    }
    if (v < 0) return cx_set_error(CX_ERR_FORMAT, "optimiser state: '%s' is negative", dst->name);
    *out = v;
    return CX_OK;
}

/* The buffer stored for `d` in `in` (checked). */
static cx_status read_buffer(const cx_tensor *d, const cx_params *in, const cx_tensor **out) {
    const cx_tensor *s = cx_params_find(in, d->name);
    if (!s) return cx_set_error(CX_ERR_NOTFOUND, "optimiser state: missing tensor '%s'", d->name);
    if (s->dtype != CX_F32)
        return cx_set_error(CX_ERR_FORMAT, "optimiser state: '%s' is %s, expected f32", d->name,
                            cx_dtype_name(s->dtype));
    if (!cx_same_shape(s, d)) {
        char b1[64], b2[64];
        return cx_set_error(CX_ERR_SHAPE, "optimiser state: '%s' has shape %s, expected %s", d->name,
                            cx_shape_str(s, b1, sizeof b1), cx_shape_str(d, b2, sizeof b2));
    }
    *out = s;
    return CX_OK;
}

cx_status cx_optim_state_import(cx_optim *opt, const cx_params *in) {
    if (!opt || !in) return cx_set_error(CX_ERR_ARG, "cx_optim_state_import: NULL argument");
    /* check everything first, then copy: on error the optimiser is unchanged */
    for (int pass = 0; pass < 2; pass++) {
        int64_t v = 0;
        const cx_tensor *s = NULL;
        cx_status st = read_step(opt->nstep, in, &v);
        if (st != CX_OK) return st;
        if (pass) CX_I64P(opt->nstep)[0] = v;
        for (int i = 0; i < opt->n; i++) {
            if ((st = read_step(opt->st[i].step, in, &v)) != CX_OK) return st;
            if (pass) CX_I64P(opt->st[i].step)[0] = v;
            for (int b = 0; b < 3; b++) {
                cx_tensor *d = opt->st[i].buf[b];
                if (!d) continue;
                if ((st = read_buffer(d, in, &s)) != CX_OK) return st;
                if (pass && s != d) memcpy(d->data, s->data, (size_t)d->numel * sizeof(float));
            }
        }
    }
    return CX_OK;
}
