/* Internal helpers shared by the library's sources (not public API). */
#ifndef CX_INTERNAL_H
#define CX_INTERNAL_H
#include <cortex.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Arena position, for rewinding scratch work (gradcheck). */
typedef struct { void *chunk; size_t off; size_t used; unsigned gen; } cx_arena_mark;
cx_arena_mark cx_arena_get_mark(cx_arena *a);
void cx_arena_rewind(cx_arena *a, cx_arena_mark m);
/* True when p points into memory of `a` handed out after mark m (memory that
 * cx_arena_rewind(a, m) releases; after a reset since m: everything). */
bool cx_arena_after_mark(const cx_arena *a, cx_arena_mark m, const void *p);
/* Inside cx_try: t (a step tensor) was just given an arena gradient buffer. */
void cx_try_note_grad(cx_tensor *t);

/* The calling thread's autograd flags (saved and restored by cx_try). */
typedef struct { int no_grad_depth; bool training, check_numerics, drop_op_grads; } cx_autograd_state;
cx_autograd_state cx_autograd_state_get(void);
void cx_autograd_state_set(cx_autograd_state s);

/* Backward's leaf hook (data-parallel training, src/dist/dist.c): while set
 * on the calling thread, every backward calls fn(leaf, user) once for each
 * leaf tensor (no node, requires grad) that its graph uses, right after the
 * last node using that leaf has run its backward -- from then on this
 * backward adds nothing to leaf->grad (which may still be NULL when no
 * gradient flowed to it). A root that is itself a leaf is reported after its
 * gradient is seeded. fn NULL: off. */
typedef void (*cx_leaf_done_fn)(cx_tensor *leaf, void *user);
void cx_autograd_set_leaf_hook(cx_leaf_done_fn fn, void *user);
/* The fatal path's last step (src/tensor/error.c): when set, a fatal error
 * not caught by cx_try calls fn(message) after the error handler instead of
 * printing "cortex: message" and exiting with status 1; if fn returns, the
 * default follows. */
void cx_set_fatal_exit(void (*fn)(const char *msg));

/* Normalise a possibly negative axis; fatal error naming `op` if out of range. */
int cx_norm_axis(const char *op, int axis, int ndim);
/* numel of a shape with overflow/negativity checks (fatal). */
int64_t cx_shape_numel(const char *op, const int *shape, int ndim);
/* Heap helpers that never return NULL (out of memory is fatal). */
void *cx_xmalloc(size_t n);
void *cx_xcalloc(size_t n, size_t sz);
void *cx_xrealloc(void *p, size_t n);
char *cx_xstrdup(const char *s);
/* A layer's parameters "weight" (wshape) and, when bias_n > 0, "bias"
 * [bias_n], allocated before the layer itself: when one allocation fails (out
 * of memory, fatal) the other is freed first, so a constructor that calls this
 * before allocating its struct leaks nothing when cx_try catches the failure. */
void cx_layer_params_new(const int *wshape, int wnd, int bias_n, cx_tensor **w, cx_tensor **b);

/* OpenMP threshold: loops shorter than this run on one thread. */
#define CX_PAR_MIN 32768

/* OpenMP pragmas that vanish (without warnings) when OpenMP is off:
 *   CX_OMP(parallel for simd if(parallel: n > CX_PAR_MIN))
 * (the "parallel:" modifier matters: a plain if() on a combined "for simd"
 * also switches the simd part off below the threshold). */
#define CX_OMP_(x) _Pragma(#x)
#ifdef _OPENMP
#define CX_OMP(...) CX_OMP_(omp __VA_ARGS__)
#else
#define CX_OMP(...)
#endif
/* CX_PFOR(cond, for-statement): the same without simd. */
#define CX_PFOR(cond, ...)                                                                                             \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            CX_OMP(parallel for)                                                                                       \
            __VA_ARGS__                                                                                                \
        } else {                                                                                                       \
            __VA_ARGS__                                                                                                \
        }                                                                                                              \
    } while (0)
/* CX_PFOR_BACK(cond, type, i, n, body): body for i = n-1 down to 0, in
 * parallel when cond holds, each thread running the block of [0, n) that a
 * static schedule gives it (thread t the t-th of the contiguous blocks, as
 * the "parallel for" loops split rows and images), last to first within the
 * block. A pass that reads what another wrote last (still in cache) reads it
 * from its end this way without handing each thread the other threads'
 * rows: in a network every pass then keeps each image on one thread, and
 * an image's rows never move between the cores' caches (with the two cores
 * on different L3 caches that move cost a 2-thread ResNet step 40%). */
static inline void cx_static_block(int64_t n, int t, int nt, int64_t *lo, int64_t *hi) {
    const int64_t q = n / nt, r = n % nt;
    *lo = (int64_t)t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}
#ifdef _OPENMP
#define CX_PFOR_BACK(cond, type, i, n, ...)                                                                            \
    do {                                                                                                               \
        const int64_t cx_n_ = (n);                                                                                     \
        if (cond) {                                                                                                    \
            CX_OMP(parallel)                                                                                           \
            {                                                                                                          \
                int64_t cx_lo_, cx_hi_;                                                                                \
                cx_static_block(cx_n_, omp_get_thread_num(), omp_get_num_threads(), &cx_lo_, &cx_hi_);                 \
                for (type i = (type)(cx_hi_ - 1); i >= (type)cx_lo_; i--) {                                           \
                    __VA_ARGS__                                                                                        \
                }                                                                                                      \
            }                                                                                                          \
        } else {                                                                                                       \
            for (type i = (type)(cx_n_ - 1); i >= 0; i--) {                                                            \
                __VA_ARGS__                                                                                            \
            }                                                                                                          \
        }                                                                                                              \
    } while (0)
#else
#define CX_PFOR_BACK(cond, type, i, n, ...)                                                                            \
    do {                                                                                                               \
        (void)(cond);                                                                                                  \
        for (type i = (type)((n) - 1); i >= 0; i--) {                                                                  \
            __VA_ARGS__                                                                                                \
        }                                                                                                              \
    } while (0)
#endif
/* CX_PFOR_SIMD(cond, for-statement): the loop in an OpenMP parallel region
 * when cond holds, else a plain vectorised loop. Prefer it to an if() clause
 * on hot paths with small tensors: libgomp enters a region even when its if()
 * is false, and that costs a futex system call per call (measured: one per
 * tanh of a 64-unit layer, a quarter of a CartPole agent's time). */
#define CX_PFOR_SIMD(cond, ...)                                                                                        \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            CX_OMP(parallel for simd)                                                                                  \
            __VA_ARGS__                                                                                                \
        } else {                                                                                                       \
            CX_OMP(simd)                                                                                               \
            __VA_ARGS__                                                                                                \
        }                                                                                                              \
    } while (0)
/* The gradient buffer of t, created uninitialised when t has none yet
 * (*fresh = true): for a backward that writes every element, which then
 * stores instead of accumulating and saves zeroing the buffer first. */
float *cx_grad_claim(cx_tensor *t, bool *fresh);

/* Gradient sink (batch splitting across threads, src/train/trainer.c):
 * while a sink is set on the calling thread, cx_grad_claim (and so every
 * backward) hands out, for a persistent tensor (a parameter), the sink's own
 * buffer for it instead of t->grad, so threads running backward at once over
 * the same parameters never write the same memory. A buffer is claimed
 * fresh (uninitialised) the first time a pass asks for it after
 * cx_grad_sink_clear; claimed[i] tells which buffers hold a gradient. A
 * persistent tensor that requires grad and is not in the sink is a fatal
 * error naming it. */
typedef struct cx_grad_sink {
    int n;
    cx_tensor **keys;
    float **bufs;   /* keys[i]->numel floats, 64-byte aligned */
    bool *claimed;
    int *slot;      /* open addressing over keys: index + 1, 0 = empty */
    size_t cap;     /* power of two */
} cx_grad_sink;
/* A sink for the n tensors (each once; F32). Owned by the caller:
 * cx_grad_sink_free. */
void cx_grad_sink_init(cx_grad_sink *s, cx_tensor *const *keys, int n);
void cx_grad_sink_free(cx_grad_sink *s);
void cx_grad_sink_clear(cx_grad_sink *s); /* no buffer claimed */
/* The calling thread's sink (NULL: off); returns the previous one. */
cx_grad_sink *cx_grad_sink_set(cx_grad_sink *s);
/* Tests (src/train/trainer.c): the most threads a split training step
 * uses (0: no cap), to run several parts per thread as on busy cores. */
extern _Atomic int cx_split_team_cap;

/* Gradient buffers of op results that backward has finished with
 * (cx_set_keep_op_grads(false)), per thread: cx_grad_claim takes one of the
 * same size before allocating. Valid for one backward pass only: emptied
 * at its start and end. */
void cx_grad_pool_clear(void);
void cx_grad_pool_put(float *buf, size_t bytes);

/* Synchronised batch norm (cortex/dist.h, cx_dist_sync_batchnorm): when
 * cx_bn_sync.allreduce is set, batch norm in training mode sums its
 * per-channel statistics, and its backward its per-channel gradient sums,
 * over the processes. allreduce: in place, blocking, every process calls it
 * in the same order; weight(): this process's share of the loss (the
 * gradient reducer's weight, 1 / size when none is armed). */
typedef struct {
    void (*allreduce)(double *buf, int n);
    double (*weight)(void);
} cx_bn_sync_hooks;
extern cx_bn_sync_hooks cx_bn_sync;

/* The integer in metadata `key` of a loaded safetensors file (the model
 * loaders' configuration): false when it is missing, not a whole decimal
 * integer, or outside [lo, hi]. */
bool cx_st_meta_int(const cx_st_file *f, const char *key, long lo, long hi, int *out);

#endif
