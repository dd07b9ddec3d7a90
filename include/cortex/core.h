/*
 * cortex/core.h -- tensors, arenas, random streams, errors and define-by-run autograd.
 *
 * Part of the Cortex public API; include <cortex.h> rather than this file.
 *
 * Memory model (read this first)
 * ------------------------------
 *  - Every tensor made by an op (cx_add, cx_matmul, ...) or by the step
 *    constructors (cx_zeros, cx_from_data, ...) lives in the *current arena*.
 *    Call cx_arena_reset() once per training step: every intermediate, every
 *    graph node and every intermediate gradient of that step is released at
 *    once. Nobody frees graph nodes by hand.
 *  - Persistent tensors (parameters, datasets, optimiser state) are made with
 *    cx_tensor_new() / cx_param_new() and owned by whoever made them, freed
 *    with cx_tensor_free(). Modules own their parameters.
 *  - Tensors are always contiguous, row-major. Views do not exist: reshape
 *    shares the buffer of its input, every other op writes a new buffer.
 *
 * Errors
 * ------
 *  Programming errors (shape mismatch, wrong dtype, bad axis) and a non-finite
 *  value caught in check mode go to the error handler: by default it prints
 *  "cortex: <message>" to stderr and exits with status 1. Install your own with
 *  cx_set_error_handler (it must not return: longjmp or exit). Code that runs
 *  on untrusted input wraps itself in cx_try instead: the failed check comes
 *  back as a cx_status with the message, and the step's memory is released.
 *  Runtime errors in I/O (missing file, corrupt data) are *returned* as
 *  cx_status with a message from cx_last_error(); they never exit.
 */
#ifndef CORTEX_CORE_H
#define CORTEX_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CX_MAX_DIMS 8

/* ---------------------------------------------------------------- status */
typedef enum {
    CX_OK = 0,
    CX_ERR_IO,        /* file could not be opened, read or written */
    CX_ERR_FORMAT,    /* the file is malformed, truncated or hostile */
    CX_ERR_SHAPE,     /* shapes do not agree */
    CX_ERR_ARG,       /* an argument is out of range */
    CX_ERR_NOMEM,     /* allocation failed */
    CX_ERR_NOTFOUND,  /* a named tensor / key is missing */
    CX_ERR_NUMERIC,   /* a NaN or Inf was met */
    CX_ERR_INVALID    /* a check of the library failed (cx_fatal caught by cx_try) */
} cx_status;

/* Message of the last error reported by a function returning cx_status
 * (thread-local; valid until the next error on this thread). */
const char *cx_last_error(void);
/* Record an error message (printf-style) and return `st`. For library code. */
cx_status cx_set_error(cx_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Fatal (programming) error handler. Must not return. */
typedef void (*cx_error_handler)(const char *message, void *user);
void cx_set_error_handler(cx_error_handler h, void *user);
/* The handler in force (NULL: the default) and its user pointer. */
cx_error_handler cx_get_error_handler(void **user);
/* Report a fatal error (printf-style). Does not return: inside cx_try it
 * makes cx_try return CX_ERR_INVALID, else it goes to the handler. */
void cx_fatal(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

/* ---- recoverable errors (untrusted input: parsers, importers, servers)
 * cx_try(fn, user) runs fn(user) and returns its status; if a check fails
 * inside it (any cx_fatal of the library: a shape mismatch, a bad argument,
 * check mode's NaN, an index out of range ...) or fn calls cx_raise, cx_try
 * returns that failure as a status instead of ending the program:
 *   - the status is CX_ERR_INVALID for cx_fatal, or the one given to cx_raise,
 *     and cx_last_error() holds the message (the error handler is not called);
 *   - every allocation made from the caller's current arena since the call
 *     is released (the arena is rewound), so tensors, graph nodes and
 *     backward's scratch of the failed work cost nothing (no leak);
 *   - the calling thread's current arena, current random stream, no-grad
 *     depth, training and check-numerics flags are restored.
 *   - a tensor made before the call whose gradient buffer was made inside it
 *     (a backward that failed) gets its gradient dropped (grad NULL); the
 *     gradients of persistent tensors (parameters) may hold a partial
 *     accumulation: zero them before the next step.
 * Heap objects that fn made itself (modules, files) are fn's to free: keep
 * them where the caller can reach them (in *user) and free them when cx_try
 * fails; the library's constructors check their arguments before they
 * allocate, so a failed constructor leaks nothing. Functions that hold heap
 * memory across user callbacks (cx_gradcheck, the decoders of decode.h) are
 * not made failure-safe by cx_try. Calls nest; each thread has its own. A
 * check that fails at another OpenMP nesting level than the cx_try (inside a
 * parallel region opened in fn, or by the library) goes to the handler: a
 * team must not be left by a jump. */
typedef cx_status (*cx_try_fn)(void *user);
cx_status cx_try(cx_try_fn fn, void *user);
/* Fail with status st (printf-style message): inside cx_try it makes cx_try
 * return st; outside, it is cx_fatal. Does not return. */
void cx_raise(cx_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;
/* True inside cx_try on this thread. */
bool cx_in_try(void);

/* ---------------------------------------------------------------- runtime */
/* Number of threads used by OpenMP loops and by the BLAS. n <= 0: all cores.
 * The OpenMP count is a setting of the calling thread (a thread that starts
 * has the OpenMP default); OpenBLAS has one process-wide count. The GEMM and
 * convolution algorithm choices (cx_set_gemm_backend, cx_conv_set_algo) are
 * process-wide too: set them before starting threads. */
void cx_set_threads(int n);
/* The count cx_set_threads asked for on this thread (OpenMP default if never
 * called), also while the adaptive count below runs the loops on fewer. */
int cx_get_threads(void);
/* Adaptive thread count, on by default (CX_THREADS_ADAPTIVE=0 in the
 * environment, or cx_set_threads_adaptive(false), turns it off). When more
 * than one thread is asked for and the cores are busy with other work, a
 * parallel loop waits for whichever of its threads the scheduler took off its
 * core, and many small loops (a recurrent layer's time steps) then run far
 * slower on 2 threads than on 1. Once per 0.1 s, at cx_step_reset, Cortex
 * reads how long this process's threads waited for a CPU (Linux schedstat);
 * above 15% of the time it runs the loops on 1 thread, and retries the asked
 * count after 1 s (doubling to 16 s while the cores stay busy). With the
 * built-in GEMM (and its convolutions) results do not depend on the count;
 * with OpenBLAS they agree to rounding, so turn it off for bitwise
 * reproducible OpenBLAS runs at several threads on a shared machine.
 * CX_THREADS_DEBUG=1 prints each window's measurement to stderr. */
void cx_set_threads_adaptive(bool on);
/* Threads a parallel loop started on this thread uses now. */
int cx_threads_in_use(void);
/* How many times the adaptive count fell back to 1 thread on this thread. */
long cx_threads_adaptive_drops(void);
/* "openblas" or "builtin": which GEMM this build uses. */
const char *cx_blas_name(void);

/* ---------------------------------------------------------------- random streams
 * A cx_rng is one seeded stream of the PCG32 generator: a plain value (two
 * 64-bit words, no heap memory), so saving and restoring a stream is a copy.
 * Every thread has its own *default stream* (seeded by cx_seed; a new thread's
 * default stream starts from a fixed state) and a *current stream*, the
 * default unless cx_rng_use switched it. Every random draw of the library
 * (initialisers, dropout, loaders and augmentation, sampling and decoding,
 * cx_rand_*) comes from the calling thread's current stream, or from the
 * stream an object was given (cx_loader_set_rng, ...). Same seed, same
 * streams and same thread count give the same run; two threads never share
 * a stream unless a caller passes them the same cx_rng.
 *
 *   cx_rng base = cx_rng_new(42);
 *   cx_rng env_rng[8];
 *   for (int i = 0; i < 8; i++) env_rng[i] = cx_rng_split(&base);  // independent
 *   cx_rng *prev = cx_rng_use(&env_rng[0]);  // this thread now draws from it
 *   ... cx_dropout(x, 0.5f) ...
 *   cx_rng_use(prev);
 */
typedef struct cx_rng { uint64_t state, inc; } cx_rng;
typedef cx_rng cx_rng_state;            /* older name of the same type */

/* A stream seeded with `seed` (the stream cx_seed(seed) makes). */
cx_rng cx_rng_new(uint64_t seed);
void cx_rng_seed(cx_rng *r, uint64_t seed);
/* A new stream derived from `parent` (which advances by four draws):
 * deterministic given the parent's state, statistically independent of it
 * and of its other children (a different PCG increment). */
cx_rng cx_rng_split(cx_rng *parent);
uint32_t cx_rng_u32(cx_rng *r);
float cx_rng_uniform(cx_rng *r);                 /* [0, 1), 24 random bits */
float cx_rng_normal(cx_rng *r);                  /* N(0, 1), Box-Muller */
uint32_t cx_rng_below(cx_rng *r, uint32_t n);    /* uniform integer in [0, n) */

/* The calling thread's current stream (never NULL). */
cx_rng *cx_rng_current(void);
/* The calling thread's default stream. */
cx_rng *cx_rng_default(void);
/* Make `r` the current stream of this thread (NULL: the default stream);
 * returns the previous current stream. `r` must outlive its use. */
cx_rng *cx_rng_use(cx_rng *r);

/* Seed this thread's default stream. */
void cx_seed(uint64_t seed);
/* Draws from this thread's current stream. */
uint32_t cx_rand_u32(void);
float cx_rand_uniform(void);            /* [0, 1) */
float cx_rand_normal(void);             /* N(0, 1), Box-Muller */
uint32_t cx_rand_below(uint32_t n);     /* uniform integer in [0, n) */
/* Copy out / overwrite the state of this thread's current stream (exact
 * checkpoint resume). */
cx_rng cx_rng_get(void);
void cx_rng_set(cx_rng s);

/* ---------------------------------------------------------------- arena */
/* An arena grows by chunks and, after its first reset, holds one chunk the
 * size of the whole step. On Linux, chunks of 4 MiB and more are aligned to
 * 2 MiB and offered to transparent huge pages (madvise MADV_HUGEPAGE), which
 * a training step that streams its activations through the arena runs
 * faster on; the environment variable CX_ARENA_THP=0 turns this off. */
typedef struct cx_arena cx_arena;
cx_arena *cx_arena_new(size_t initial_bytes);
void cx_arena_free(cx_arena *a);
/* Release everything allocated from `a` since creation / last reset. */
void cx_arena_reset(cx_arena *a);
/* Make `a` the current arena of this thread; returns the previous one.
 * NULL selects this thread's default arena (each thread has its own, made on
 * first use and freed when the thread exits). An arena must not be used by
 * two threads at once. */
cx_arena *cx_arena_use(cx_arena *a);
cx_arena *cx_arena_current(void);
/* Bytes handed out since the last reset, and high-water mark. */
size_t cx_arena_used(const cx_arena *a);
size_t cx_arena_peak(const cx_arena *a);
/* Reset the current arena (the usual once-per-step call). */
void cx_step_reset(void);
/* Raw aligned (64-byte) allocation from the current arena. Never fails
 * (out of memory is fatal). Its contents are undefined; with the
 * environment variable CX_ARENA_POISON=1 (set by `make test`) every
 * allocation starts filled with 0xFF bytes, a NaN as a float, so that a
 * read of memory never written shows up as NaN rather than as the zeros of
 * fresh pages. */
void *cx_arena_alloc(size_t bytes);

/* ---------------------------------------------------------------- tensors */
typedef enum { CX_F32 = 0, CX_I32 = 1, CX_I64 = 2 } cx_dtype;
size_t cx_dtype_size(cx_dtype t);
const char *cx_dtype_name(cx_dtype t);

typedef struct cx_node cx_node;

typedef struct cx_tensor {
    cx_dtype dtype;
    int ndim;
    int shape[CX_MAX_DIMS];
    int64_t numel;
    void *data;          /* float* for CX_F32, int32_t* / int64_t* otherwise */
    float *grad;         /* gradient (F32 only); NULL until backward reaches it */
    bool requires_grad;  /* leaf parameter or result of a recorded op */
    bool persistent;     /* heap-owned (cx_tensor_new) rather than arena-owned */
    bool owns_data;      /* persistent tensors: free(data) on cx_tensor_free */
    cx_node *node;       /* op that produced it (NULL for leaves) */
    char *name;          /* optional, e.g. "fc1.weight" (persistent tensors) */
    /* Persistent tensors only: the flat buffer (cx_flat_new, cortex/optim.h)
     * whose blocks hold this tensor's data and grad, or NULL. While set, the
     * flat buffer owns both (owns_data is false, cx_tensor_free frees
     * neither); code must not re-point data or grad. */
    struct cx_flat *flat;
} cx_tensor;

/* Data pointer shorthands. */
#define CX_F(t) ((float *)(t)->data)
#define CX_I32P(t) ((int32_t *)(t)->data)
#define CX_I64P(t) ((int64_t *)(t)->data)

/* Shape literal helper: CX_SHAPE(2, 3) -> (int[]){2, 3}, 2 */
#define CX_SHAPE(...) ((const int[]){__VA_ARGS__}), \
    ((int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)))

/* Step tensors (current arena). */
cx_tensor *cx_empty(cx_dtype dt, const int *shape, int ndim);
cx_tensor *cx_zeros(const int *shape, int ndim);
cx_tensor *cx_ones(const int *shape, int ndim);
cx_tensor *cx_full(const int *shape, int ndim, float value);
cx_tensor *cx_scalar(float value);
/* Copies `data` (numel floats / ints). */
cx_tensor *cx_from_data(const float *data, const int *shape, int ndim);
cx_tensor *cx_from_i32(const int32_t *data, const int *shape, int ndim);
/* Wraps `data` without copying (caller keeps it alive for the step). */
cx_tensor *cx_wrap(float *data, const int *shape, int ndim);
cx_tensor *cx_rand_uniform_t(const int *shape, int ndim, float lo, float hi);
cx_tensor *cx_randn(const int *shape, int ndim, float mean, float std);
cx_tensor *cx_arange(int n);  /* F32 0..n-1 */

/* Persistent tensors (heap, owned by the caller). */
cx_tensor *cx_tensor_new(cx_dtype dt, const int *shape, int ndim);   /* zeroed */
cx_tensor *cx_param_new(const char *name, const int *shape, int ndim); /* F32, requires_grad */
void cx_tensor_free(cx_tensor *t);
/* Persistent deep copy (data only, no graph). */
cx_tensor *cx_tensor_clone(const cx_tensor *t);
void cx_tensor_set_name(cx_tensor *t, const char *name);
/* Fill helpers (work on any F32 tensor, no graph). */
void cx_fill(cx_tensor *t, float v);
void cx_fill_uniform(cx_tensor *t, float lo, float hi);
void cx_fill_normal(cx_tensor *t, float mean, float std);
/* Ensure t->grad exists (zeroed) and return it. */
float *cx_grad_ensure(cx_tensor *t);
void cx_zero_grad(cx_tensor *t);

bool cx_same_shape(const cx_tensor *a, const cx_tensor *b);
/* "[2, 3]" into buf; returns buf. */
const char *cx_shape_str(const cx_tensor *t, char *buf, size_t n);
float cx_item(const cx_tensor *t);          /* value of a 1-element F32 tensor */
float cx_get(const cx_tensor *t, int64_t flat_index);
void cx_print(const cx_tensor *t, const char *label);

/* A list of (named) parameters, e.g. every parameter of a model. It does not
 * own the tensors; names are the tensors' own (t->name, "fc1.weight"). */
typedef struct cx_params {
    int n, cap;
    cx_tensor **t;
} cx_params;
void cx_params_init(cx_params *p);
void cx_params_add(cx_params *p, cx_tensor *t);
void cx_params_free(cx_params *p);          /* frees the list, not the tensors */
cx_tensor *cx_params_find(const cx_params *p, const char *name);
int64_t cx_params_count(const cx_params *p); /* total number of scalars */
void cx_params_zero_grad(const cx_params *p);
/* One contiguous parameter block and one gradient block for a whole list
 * (optimisers, clipping and copies in one pass): cx_flat_new, cortex/optim.h. */

/* ---------------------------------------------------------------- autograd
 * The no-grad depth, the check-numerics flag and the training flag belong to
 * the calling thread: two threads can train two models at once (each with its
 * own arena and random stream), and a thread that starts has grad mode on,
 * check mode off and training mode on. A graph must be built, backpropagated
 * and released by one thread. OpenMP worker threads are threads too: library
 * calls made inside your own parallel region run on each worker's own state
 * (its own default arena, which nobody resets but that worker, its own flags
 * and default stream), not on the state of the thread that opened it. */
/* Gradients are recorded unless inside a no-grad region (nestable). */
void cx_no_grad_begin(void);
void cx_no_grad_end(void);
bool cx_grad_enabled(void);
/* Check mode: after every op (forward and backward) scan the result and stop
 * at the first non-finite value, naming the op: a NaN anywhere, an infinity
 * an op makes from finite inputs (infinities an op passes on from an input
 * that holds them by design, as a -inf attention mask, are not stopped).
 * Off by default. */
void cx_set_check_numerics(bool on);
bool cx_check_numerics(void);
/* Training mode flag read by dropout (and later batch norm). Default: true. */
void cx_set_training(bool on);
bool cx_is_training(void);

/* Gradients of op results (per thread). By default (on) backward leaves a
 * gradient on every tensor it reaches, op results included, for inspection.
 * Off, an op result's gradient buffer is handed on to the next gradient of
 * the same size as soon as the op's backward has read it, and the result's
 * grad is NULL after backward, as PyTorch does for non-leaf tensors; leaves
 * (parameters, inputs with requires_grad) keep theirs. The step then writes
 * its gradients into memory it has just read, still in cache, rather than
 * into fresh memory: the small ResNet's training step (batch 64, 1 thread)
 * went from 84.7 to 81.0 ms. The results are bit for bit the same. The
 * library's trainer (cortex/train.h) runs its steps with it off. */
void cx_set_keep_op_grads(bool keep);
bool cx_keep_op_grads(void);

/* Backpropagate from a 1-element tensor (d loss / d loss = 1). Gradients
 * accumulate into every tensor with requires_grad that the loss depends on
 * (parameters keep them across steps until cx_zero_grad / optimiser zero;
 * op results only with cx_keep_op_grads, the default). */
void cx_backward(cx_tensor *loss);
/* Backpropagate with an explicit upstream gradient (same numel as t). */
void cx_backward_with(cx_tensor *t, const float *grad_out);
/* A step tensor sharing t's data with no graph history. */
cx_tensor *cx_detach(cx_tensor *t);
/* Name of the op that produced t ("leaf" for leaves, or the name of a named
 * persistent tensor). */
const char *cx_op_name(const cx_tensor *t);
/* Print the graph behind t (every node reachable through tensors that
 * require grad, in the order backward undoes them: one line per node with its
 * op, its inputs by node number or name, and output shapes). */
void cx_graph_dump(const cx_tensor *t, FILE *f);

/* ---------------------------------------------------------------- the op table
 * Every op of the library, core and nn alike, has one descriptor: its name
 * (what check mode, cx_op_name and graph dumps print), its backward and its
 * number of outputs (recurrent layers return output and states from one
 * node). The table lists every op, sorted by name; `cortex ops` prints it. */
struct cx_node;
typedef struct cx_op_desc {
    const char *name;
    void (*backward)(struct cx_node *nd);  /* NULL: records no node (no gradient) */
    int n_out;                             /* outputs of one node; 0 means 1 */
    int code;                              /* private to the op's implementation */
    bool inf_ok;                           /* outputs may hold +-inf by design (masks):
                                              check mode stops at NaN only */
} cx_op_desc;
int cx_op_count(void);
const cx_op_desc *cx_op_at(int i);             /* 0 <= i < cx_op_count() */
const cx_op_desc *cx_op_find(const char *name); /* NULL when there is none */
const cx_op_desc *cx_op_of(const cx_tensor *t); /* the op that made t (NULL: leaf) */
int cx_op_outputs(const cx_op_desc *op);        /* n_out, at least 1 */

/* ---------------------------------------------------------------- ops
 * All ops allocate their result in the current arena and record a graph node
 * when grad mode is on and an input requires grad. Binary elementwise ops
 * broadcast like NumPy/PyTorch. Axis arguments may be negative. */

/* elementwise binary (broadcasting) */
cx_tensor *cx_add(cx_tensor *a, cx_tensor *b);
cx_tensor *cx_sub(cx_tensor *a, cx_tensor *b);
cx_tensor *cx_mul(cx_tensor *a, cx_tensor *b);
cx_tensor *cx_div(cx_tensor *a, cx_tensor *b);
cx_tensor *cx_maximum(cx_tensor *a, cx_tensor *b);  /* grad to the larger; ties split */
/* a^b elementwise with a tensor exponent, broadcasting. PyTorch:
 * torch.pow(a, b). Gradients (PyTorch's conventions, also for a <= 0):
 *   d/da = b a^(b-1), and 0 wherever b == 0;
 *   d/db = a^b ln a for a > 0; 0 where a == 0 and b >= 0; for a == 0 and
 *          b < 0 it is inf * ln 0 = -inf; for a < 0 it is NaN (ln a), even
 *          where a^b itself is finite (integer b).
 * The forward is powf: NaN for a < 0 with a non-integer b. */
cx_tensor *cx_pow_t(cx_tensor *a, cx_tensor *b);
cx_tensor *cx_add_scalar(cx_tensor *a, float s);
cx_tensor *cx_mul_scalar(cx_tensor *a, float s);
/* elementwise unary */
cx_tensor *cx_neg(cx_tensor *a);
cx_tensor *cx_exp(cx_tensor *a);
cx_tensor *cx_log(cx_tensor *a);
cx_tensor *cx_sqrt(cx_tensor *a);
cx_tensor *cx_pow(cx_tensor *a, float p);
cx_tensor *cx_abs(cx_tensor *a);                 /* grad sign(x), 0 at 0 */
cx_tensor *cx_clamp(cx_tensor *a, float lo, float hi); /* grad 1 inside [lo,hi] */
cx_tensor *cx_sign(cx_tensor *a);                /* no gradient */
cx_tensor *cx_sigmoid(cx_tensor *a);
cx_tensor *cx_tanh(cx_tensor *a);
cx_tensor *cx_relu(cx_tensor *a);                /* sub-gradient 0 at 0 */
cx_tensor *cx_leaky_relu(cx_tensor *a, float slope);
cx_tensor *cx_elu(cx_tensor *a, float alpha);
cx_tensor *cx_gelu(cx_tensor *a);                /* exact (erf) form */
/* tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), gradient
 * 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2) with t the
 * tanh. PyTorch: F.gelu(x, approximate='tanh'). */
cx_tensor *cx_gelu_tanh(cx_tensor *a);
cx_tensor *cx_softplus(cx_tensor *a, float beta, float threshold); /* PyTorch: 1, 20 */
/* McCulloch-Pitts unit: sign(x) mapped to {-1,+1} (0 -> +1); no gradient. */
cx_tensor *cx_threshold_unit(cx_tensor *a);
/* Maxout: the last axis (size k*m) is split into m groups of k; max of each. */
cx_tensor *cx_maxout(cx_tensor *a, int k);
/* Inverted dropout with drop probability p; identity when not training. */
cx_tensor *cx_dropout(cx_tensor *a, float p);

/* matrix */
/* Matrix product over the last two dimensions, torch.matmul for inputs of
 * at least 2 dimensions: a [..., M, K] x b [..., K, N] -> [..., M, N]. The
 * batch dimensions (all but the last two) broadcast like elementwise ops,
 * aligned from the right: [M,K]x[K,N] -> [M,N]; [B,M,K]x[B,K,N] and
 * [B,M,K]x[K,N] -> [B,M,N]; [B,1,M,K]x[1,H,K,N] -> [B,H,M,N] (attention
 * heads). A broadcast operand is not copied: one GEMM per output batch
 * reads it in place, and its gradient is the sum over the broadcast batch.
 * 1-D inputs are not accepted (reshape them, or use cx_outer).
 * Errors: fewer than 2 dimensions, inner dimensions that differ, batch
 * dimensions that do not broadcast, non-F32 inputs. */
cx_tensor *cx_matmul(cx_tensor *a, cx_tensor *b);
/* cx_matmul of op(a) and op(b), op = transpose of the last two dimensions
 * when the flag is set: a is [..., K, M] when trans_a, b is [..., N, K] when
 * trans_b. cx_sgemm reads the transposed operand in place (no copy).
 * PyTorch: torch.matmul(a.transpose(-2, -1) if trans_a else a,
 *                       b.transpose(-2, -1) if trans_b else b),
 * e.g. attention scores Q K^T = cx_matmul_t(q, k, false, true). Recorded as
 * "matmul". */
cx_tensor *cx_matmul_t(cx_tensor *a, cx_tensor *b, bool trans_a, bool trans_b);
/* torch.bmm: [B,M,K] x [B,K,N] -> [B,M,N], both exactly 3-D with the same
 * B (no broadcasting: use cx_matmul for that); same kernel as cx_matmul. */
cx_tensor *cx_bmm(cx_tensor *a, cx_tensor *b);
/* y = x W^T + b with PyTorch's layout W [out,in], b [out] (may be NULL). */
cx_tensor *cx_linear(cx_tensor *x, cx_tensor *w, cx_tensor *b);
/* cx_relu(cx_linear(x, w, b)) and cx_tanh(cx_linear(x, w, b)) as one op
 * ("linear_relu", "linear_tanh"): the same values and gradients bit for bit,
 * without the intermediate tensor (the ReLU is applied where the GEMM stores
 * y). A Sequential runs a Linear followed by a ReLU or Tanh activation module
 * this way. */
cx_tensor *cx_linear_relu(cx_tensor *x, cx_tensor *w, cx_tensor *b);
cx_tensor *cx_linear_tanh(cx_tensor *x, cx_tensor *w, cx_tensor *b);

/* reductions */
cx_tensor *cx_sum(cx_tensor *a);                                /* all -> [1] */
cx_tensor *cx_mean(cx_tensor *a);                               /* all -> [1] */
cx_tensor *cx_sum_axis(cx_tensor *a, int axis, bool keepdim);
cx_tensor *cx_mean_axis(cx_tensor *a, int axis, bool keepdim);
cx_tensor *cx_max_axis(cx_tensor *a, int axis, bool keepdim);   /* grad to first argmax */
cx_tensor *cx_argmax(cx_tensor *a, int axis);                   /* I32, no grad */
cx_tensor *cx_softmax(cx_tensor *a, int axis);
cx_tensor *cx_log_softmax(cx_tensor *a, int axis);
/* Cumulative sum / product along axis (same shape as a), accumulated in
 * double like PyTorch's CPU kernels: out_j = sum (prod) of a_0..a_j.
 * PyTorch: torch.cumsum(a, axis) / torch.cumprod(a, axis). Gradients: the
 * reversed cumulative sum of g; for cumprod sum_{j >= k} g_j out_j / a_k
 * before the first zero of a line, the product of the other factors at the
 * first zero, 0 after it (exact with zeros, as PyTorch). Errors: bad axis. */
cx_tensor *cx_cumsum(cx_tensor *a, int axis);
cx_tensor *cx_cumprod(cx_tensor *a, int axis);
/* Sort every line of a along axis, stable (equal values keep their order;
 * NaN sorts above every number: last ascending, first descending). Returns
 * the sorted values (same shape as a, differentiable: the gradient goes back
 * to the position each value came from) and, when indices is not NULL, sets
 * *indices to the I64 positions along axis (a second output of the same
 * node; it carries no gradient). PyTorch: torch.sort(a, axis, descending,
 * stable=True). Errors: bad axis, a not F32. */
cx_tensor *cx_sort(cx_tensor *a, int axis, bool descending, cx_tensor **indices);
/* The indices of cx_sort alone (I64, no gradient). PyTorch:
 * torch.argsort(a, axis, descending, stable=True). */
cx_tensor *cx_argsort(cx_tensor *a, int axis, bool descending);
/* The k largest (largest = true) or smallest values of every line along
 * axis, in sorted order (descending for largest), with their I64 positions
 * in *indices (when not NULL; a second output of the node, no gradient).
 * Shape: a's with k along axis. Equal values come in index order (a stable
 * sort, then the first k); PyTorch leaves their order unspecified. PyTorch:
 * torch.topk(a, k, axis, largest, sorted=True). Errors: k < 0 or k > the
 * size of axis, bad axis, a not F32. */
cx_tensor *cx_topk(cx_tensor *a, int k, int axis, bool largest, cx_tensor **indices);

/* shape */
cx_tensor *cx_reshape(cx_tensor *a, const int *shape, int ndim); /* one dim may be -1 */
cx_tensor *cx_flatten(cx_tensor *a);         /* [N, ...] -> [N, prod(...)] */
cx_tensor *cx_transpose(cx_tensor *a, int d0, int d1);
cx_tensor *cx_permute(cx_tensor *a, const int *perm);
/* a[..., start:stop:step, ...] along `axis` (step >= 1). */
cx_tensor *cx_slice(cx_tensor *a, int axis, int start, int stop, int step);
cx_tensor *cx_concat(cx_tensor **ts, int n, int axis);
cx_tensor *cx_stack(cx_tensor **ts, int n, int axis);
/* Rows of `a` along `axis` picked by an integer index tensor (1-D). */
cx_tensor *cx_index_select(cx_tensor *a, int axis, const cx_tensor *index);
/* torch.gather: out[i][j] = a[i][index[i][j]] along axis (index same ndim). */
cx_tensor *cx_gather(cx_tensor *a, int axis, const cx_tensor *index);

/* selection. A mask or condition may be I32, I64 or F32: non-zero (NaN
 * included) is true. Operands broadcast together like elementwise ops. */
/* out = mask ? value : a, with the shape of a and mask broadcast together
 * (usually a's shape; a is broadcast too when mask is larger, as PyTorch's
 * out-of-place masked_fill does). value may be -INFINITY (attention masks:
 * a softmax then gives the filled positions weight 0; a row filled entirely
 * gives NaN, as in PyTorch). Gradient: g where the mask is 0, 0 where it
 * filled (summed over a's broadcast dimensions). Check mode accepts the
 * infinite fill value (the op's descriptor says its outputs may hold +-inf
 * by design) and the ops that pass it on (a scale, a transpose), and still
 * stops at a NaN: the softmax of a fully masked row stops it. PyTorch:
 * a.masked_fill(mask.bool(), value). Errors: shapes that do not broadcast, a
 * not F32, mask of another dtype. */
cx_tensor *cx_masked_fill(cx_tensor *a, const cx_tensor *mask, float value);
/* out = cond ? a : b elementwise, cond, a and b broadcast together (out has
 * the broadcast shape). a and b are F32; cond is not differentiated.
 * Gradients: a gets g where cond is true, b where it is false (summed over
 * each one's broadcast dimensions). PyTorch: torch.where(cond.bool(), a, b).
 * Errors: shapes that do not broadcast, a or b not F32. */
cx_tensor *cx_where(const cx_tensor *cond, cx_tensor *a, cx_tensor *b);

/* memory addressing (NTM / DNC) */
/* Cosine similarity along axis of a and b broadcast together (axis counts in
 * the broadcast shape; the result drops it, [1] for 1-D inputs):
 *   out = sum_k a_k b_k / (max(||a||, eps) * max(||b||, eps)),
 * each norm clamped separately, as PyTorch 1.13's
 * F.cosine_similarity(a, b, dim=axis, eps) (default eps 1e-8; it is NOT
 * a.b / max(||a|| ||b||, eps), the older definition). Gradient: PyTorch
 * 1.13's, which clamps the norms in place outside autograd, so a norm's
 * derivative reads the clamped value: d/da_k = b_k / (ea eb) - out a_k / ea^2
 * with ea = max(||a||, eps), eb likewise (the exact derivative where both
 * norms are >= eps; below eps the second term stays, as in PyTorch).
 * NTM content addressing: cx_cosine_similarity(key [B,1,W], memory [B,N,W],
 * -1, eps) -> [B,N]. Errors: shapes that do not broadcast, bad axis,
 * eps < 0, non-F32 inputs. */
cx_tensor *cx_cosine_similarity(cx_tensor *a, cx_tensor *b, int axis, float eps);
/* Circular convolution along axis, the NTM location shift: w has N slots
 * along axis, s a distribution over the K offsets o_j = j - (K-1)/2
 * (-(K-1)/2 .. (K-1)/2) along the same axis, every other dimension equal:
 *   out[.., i, ..] = sum_j w[.., (i - o_j) mod N, ..] * s[.., j, ..]
 * so weight moves to HIGHER indices for a positive offset, wrapping around:
 * w one-hot at slot 2 and s all on offset +1 give one-hot at slot 3; slot
 * N-1 shifted by +1 lands on slot 0. Shape: w's. K must be odd and K <= N
 * (a shift window wider than the memory would wrap onto itself). Gradients
 * to w and s. PyTorch has no such op: it equals
 *   sum_j torch.roll(w, shifts=o_j, dims=axis) * s.narrow(axis, j, 1).
 * NTM: w [B,N], s [B,K], axis -1. Errors: bad axis, other dimensions that
 * differ, K even or K > N, non-F32 inputs. */
cx_tensor *cx_circular_conv(cx_tensor *w, cx_tensor *s, int axis);
/* Outer product: a [M], b [N] -> [M, N] (torch.outer(a, b)); batched
 * a [B, M], b [B, N] -> [B, M, N] (torch.einsum('bm,bn->bmn', a, b)), the NTM
 * write (w e^T) and the DNC link matrix. Errors: other shapes (ranks not both
 * 1 or both 2, different B), non-F32 inputs. */
cx_tensor *cx_outer(cx_tensor *a, cx_tensor *b);

/* losses. reduction: mean or sum as PyTorch defines them (none: per item). */
typedef enum { CX_REDUCE_MEAN = 0, CX_REDUCE_SUM = 1, CX_REDUCE_NONE = 2 } cx_reduction;
/* logits [N,C], target I32/I64 [N]: stable log-softmax + NLL. */
cx_tensor *cx_cross_entropy(cx_tensor *logits, const cx_tensor *target, cx_reduction r);
cx_tensor *cx_nll_loss(cx_tensor *logp, const cx_tensor *target, cx_reduction r);
cx_tensor *cx_mse_loss(cx_tensor *pred, cx_tensor *target, cx_reduction r);
cx_tensor *cx_bce_with_logits(cx_tensor *logits, cx_tensor *target, cx_reduction r);
/* PyTorch MultiMarginLoss (p=1): sum_{i!=y} max(0, margin - x_y + x_i) / C.
 * Shorthand for cx_multi_margin_loss_p(x, target, 1, margin, NULL, r). */
cx_tensor *cx_multi_margin_loss(cx_tensor *x, const cx_tensor *target, float margin,
                                cx_reduction r);
/* PyTorch MultiMarginLoss(p, margin, weight) on x [N,C], target I32/I64 [N]:
 *   l_n = sum_{i != y} w[y] max(0, margin - x_y + x_i)^p / C,  y = target[n]
 * p = 1 or 2; weight: NULL (all 1) or F32 [C], a constant (no gradient; as
 * in PyTorch it multiplies the powered hinge, whatever its docs' formula
 * shows). Mean divides by N. Gradient (p = 2): 2 w[y] z / C to x_i and minus
 * that to x_y for every z = margin - x_y + x_i > 0. PyTorch:
 * F.multi_margin_loss(x, t, p, margin, weight, reduction). Errors: p not 1
 * or 2, weight not [C], bad targets. */
cx_tensor *cx_multi_margin_loss_p(cx_tensor *x, const cx_tensor *target, int p, float margin,
                                  const cx_tensor *weight, cx_reduction r);
/* Binary hinge max(0, margin - t*f), t in {-1,+1} (F32, same shape as f). */
cx_tensor *cx_hinge_loss(cx_tensor *f, cx_tensor *t, float margin, cx_reduction r);
/* Perceptron loss max(0, -t*f) of the notes. */
cx_tensor *cx_perceptron_loss(cx_tensor *f, cx_tensor *t, cx_reduction r);
/* Logistic loss log(1 + exp(-t*f)). */
cx_tensor *cx_logistic_loss(cx_tensor *f, cx_tensor *t, cx_reduction r);
/* PyTorch SmoothL1Loss with `beta`. */
cx_tensor *cx_smooth_l1_loss(cx_tensor *pred, cx_tensor *target, float beta, cx_reduction r);

/* ---------------------------------------------------------------- GEMM */
/* Row-major C = alpha * op(A) op(B) + beta * C, op = transpose when trans*
 * is true. op(A) is MxK, op(B) is KxN. Uses CBLAS (OpenBLAS) when built with
 * it, otherwise the built-in blocked kernel. */
void cx_sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc);
/* Which kernel cx_sgemm uses. AUTO (the default, or env CX_GEMM=auto|blas|
 * builtin at the first call): the built-in kernel when Cortex was compiled
 * for AVX-512 (it measured faster than OpenBLAS's AVX2 and AVX-512 kernels
 * alike, BENCHMARKS.md), otherwise CBLAS when the build has it. BLAS in a
 * build without CBLAS falls back to the built-in kernel. Whatever the
 * backend, products with a side of at most 4 take the built-in skinny path. */
typedef enum { CX_GEMM_AUTO = 0, CX_GEMM_BLAS = 1, CX_GEMM_BUILTIN = 2 } cx_gemm_backend;
void cx_set_gemm_backend(cx_gemm_backend b);
/* The kernel cx_sgemm actually runs now: CX_GEMM_BLAS or CX_GEMM_BUILTIN. */
cx_gemm_backend cx_gemm_backend_in_use(void);
/* Human-readable description, e.g. "builtin (AVX-512, 14x32)" or "openblas (Haswell)". */
const char *cx_gemm_describe(void);
/* The built-in kernel, always available (for benchmarks and tests). Small
 * operands (A of at most 64K floats as stored; an untransposed B as well)
 * are read in place rather than packed, with the same results bit for bit;
 * env CX_GEMM_IN_PLACE=0 packs every operand. A short sum (K <= 16) with an
 * untransposed B and N of at least two vectors takes a path without packing
 * or tiles (rows of 4 x whole vectors of C). */
void cx_sgemm_builtin(bool transA, bool transB, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc);

/* ---------------------------------------------------------------- gradcheck */
/* A function building a scalar (1-element) loss from n inputs. */
typedef cx_tensor *(*cx_scalar_fn)(cx_tensor **inputs, int n, void *user);
/* Compare analytic gradients of every F32 input with requires_grad against
 * central differences (step eps, computed in double from float evaluations).
 * Passes when |a - n| <= atol + rtol * |n| for every element. Returns the
 * largest violation ratio (<= 1 means pass) and prints the worst element
 * when it fails and `verbose` is set. Uses the current arena (it resets
 * nothing the caller made). */
double cx_gradcheck(cx_scalar_fn fn, cx_tensor **inputs, int n, void *user,
                    float eps, float atol, float rtol, bool verbose);

#ifdef __cplusplus
}
#endif
#endif
