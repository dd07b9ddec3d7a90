/* cortex/train.h -- the training loop in the library: a trainer driven by a
 * task, evaluation with named metrics, a progress line, a metrics CSV, one
 * checkpoint format with exact resume, and classifier evaluation. See cortex.h.
 *
 * The trainer owns the loop; a task (callbacks + a user pointer) supplies the
 * batches and the loss of a batch, so the same loop trains a classifier over a
 * cx_dataset, a truncated-BPTT language model that carries its state from
 * batch to batch, a seq2seq model or a segmentation net:
 *
 *   cx_loader *ld = cx_loader_new(&train, 64, true, false);
 *   cx_classifier c = {.forward = cx_forward_module, .forward_user = net,
 *                      .train = ld, .val = &val};             // a ready-made task
 *   cx_train_opts o = cx_train_defaults();
 *   o.epochs = 5;  o.metrics_path = "metrics.csv";  o.checkpoint_path = "run.ckpt";
 *   cx_train_task task = cx_classifier_task(&c);
 *   cx_trainer *tr = cx_trainer_new(&task, net, opt, &o);
 *   if (resuming && cx_trainer_resume(tr, "run.ckpt")) ...cx_last_error()...
 *   cx_status st = cx_trainer_run(tr);       // CX_ERR_NUMERIC on a NaN/Inf loss
 *   cx_trainer_free(tr);
 *
 * The loop (cx_trainer_run)
 * -------------------------
 *   for each epoch e = 1, 2, ... (the position continues across runs):
 *       snapshot every random stream (the epoch-start states, for resume)
 *       lr = cx_sched_lr(&opts.sched, base_lr, e - 1); cx_optim_set_lr(opt, lr)
 *       nb = task.begin_epoch(pos)              // reshuffle, new offsets, ...
 *       while task.next_batch(pos):
 *           cx_optim_zero_grad(opt)
 *           loss = task.loss(pos, &count)        // forward pass, 1-element F32
 *           non-finite loss: stop, CX_ERR_NUMERIC (message below)
 *           cx_backward(loss)
 *           opts.clip > 0: cx_clip_grad_norm(optimiser's parameters, clip)
 *           cx_optim_step(opt)
 *           task.after_step(pos)                 // e.g. carry a recurrent state
 *           cx_step_reset()
 *           progress line; opts.on_step hook
 *           every opts.eval_every steps (not at the epoch's last batch), or when
 *           a step / time limit stops the run mid-epoch: evaluate (below)
 *       at the end of the epoch: evaluate
 *   evaluate = task.evaluate (no grad, eval mode) fills named metrics; the
 *   progress line is erased; a row is appended to the metrics CSV; the
 *   opts.on_eval hook runs (print a line, save the model, ...); the CSV
 *   (opts.metrics_path) and the checkpoint (opts.checkpoint_path) are written,
 *   atomically, in that order.
 * base_lr is the optimiser's learning rate when cx_trainer_new is called.
 * The running training loss of an epoch is sum(loss_i * count_i) / sum(count_i)
 * over its batches, count_i being the examples (or tokens) task.loss reports.
 * Limits: opts.epochs (epochs in all, resumed ones included), opts.max_steps
 * (optimiser steps in all), opts.minutes (wall clock of this run); the step
 * and time limits are checked after every batch. A run that stops at a limit
 * returns CX_OK; one that stops on a non-finite loss returns CX_ERR_NUMERIC
 * with the message
 *   "loss is nan at epoch 2 batch 17; rerun with --check-numerics to find the
 *    op, or lower --lr"
 * (cx_set_check_numerics is what --check-numerics turns on); the parameters
 * are those of the last good step. A hook or task callback that returns an
 * error stops the run with that status; the trainer never exits.
 *
 * The progress line
 * -----------------
 * On stderr when it is a terminal (or on opts.progress_stream), redrawn at
 * most every 0.1 s and at the end of an epoch, erased before every
 * evaluation and every error:
 *   epoch 2/5 [=========>          ] 37/149 loss 0.5123  1234 ex/s  ETA 1m05s
 * ("epoch 2" without an epoch limit, "(1.781 bits)" after the loss when
 * opts.bits is set, the unit is opts.unit; the rate is this run's count per
 * training second, the ETA the remaining batches at this run's speed, bounded
 * by the step and time limits). A hook that prints calls
 * cx_trainer_clear_line first.
 *
 * The metrics CSV
 * ---------------
 * A header, then one row per evaluation:
 *   epoch,lr,train_loss,<the task's metrics in the order first set>,seconds
 * epoch is an integer ("%d") at the end of an epoch and the fraction of
 * epochs done ("%.4f", e.g. 1.2685) for a mid-epoch evaluation; lr "%.6g";
 * every metric "%.6f" (NaN prints as nan); seconds ("%.3f") is the training
 * time of that epoch so far (evaluation excluded). The whole file is rewritten
 * atomically (cx_write_file_atomic) after every evaluation; the text is also
 * stored in every checkpoint and restored by cx_trainer_resume, so a resumed
 * run continues the same file.
 *
 * The checkpoint format
 * ---------------------
 * One safetensors file (written atomically by cx_st_save) holds everything a
 * run needs to continue bit-identically, also from the middle of an epoch:
 *   <module state>             the model's parameters and buffers under their
 *                              PyTorch state_dict names (cx_module_state; with
 *                              no model, the optimiser's parameters)
 *   optim.step, state.<p>.<b>  the optimiser state (cx_optim_state_export)
 *   cortex.rng.<name>          I64 [2] {state, inc} of every random stream of
 *                              the run: "current" is the thread's current
 *                              stream (cx_rng_current()), the others are
 *                              registered with cx_trainer_add_rng
 *   cortex.rng_epoch.<name>    I64 [2]: the same streams at the start of the
 *                              epoch in progress
 *   task tensors               whatever task.save_state adds (e.g. a carried
 *                              LSTM state)
 * and metadata
 *   cortex.checkpoint          "1" (the format version)
 *   cortex.train.optim         the optimiser's name ("adam", ...)
 *   cortex.train.epoch         epoch to continue (1-based)
 *   cortex.train.batch         batches of it already done (0: start it)
 *   cortex.train.num_batches   batches of that epoch (0 when batch is 0)
 *   cortex.train.step          optimiser steps done in all
 *   cortex.train.seconds       wall-clock seconds of the training runs so far
 *   cortex.train.epoch_loss_sum, cortex.train.epoch_count,
 *   cortex.train.epoch_seconds the epoch's running loss sum ("%.17g", exact),
 *                              count and training seconds
 *   cortex.train.metrics       the metrics CSV text so far
 *   cortex.train.split         batch splitting's choice once a split step
 *                              ran: "<parts> split" or "<parts> whole"
 *   opts.meta_keys/values      e.g. the model description (cortex.arch ...),
 *                              so that a checkpoint also loads as a model file
 *   task metadata              whatever task.save_state adds
 * Resuming from the middle of an epoch restores every stream to its
 * epoch-start state, calls task.begin_epoch and task.next_batch for the
 * batches already done (replaying the shuffle or offset draws; no forward
 * pass), then restores the saved stream states. So a task's begin_epoch and
 * next_batch must depend only on the random streams and on its own state.
 * Checkpoints written before the trainer existed (cortex train's cortex.rng /
 * cortex.epoch files, cortex charlm's cortex.rng_epoch files) are not read:
 * cx_trainer_resume names them as old-format checkpoints.
 *
 * Data-parallel training (opts.data_parallel, cortex/dist.h)
 * ----------------------------------------------------------
 * With data_parallel set and cx_dist_size() > 1 (under mpirun), every process
 * runs the same trainer on its shard of each global batch: the task's loader
 * must be sharded (cx_dist_shard_loader) and draw its permutations from the
 * same seed on every rank, and task.loss must report in *count the examples
 * of this rank's shard (0 for an empty one, whose loss is then ignored).
 * cx_trainer_new copies rank 0's parameters to every rank. Each step sums the
 * ranks' counts, loss sums and finiteness in one small all-reduce (so the
 * running loss, the rate and a non-finite stop are those of the global
 * batch, decided alike everywhere), weighs each rank's gradient by its share
 * of the global batch and averages them with a cx_dist_reducer during
 * backward, before clipping and the optimiser step. The time limit, a step
 * hook's stop and an evaluation's failure are agreed on by every rank, so
 * they all stop together. Only rank 0 draws the progress line, writes the log
 * lines, the metrics CSV and checkpoints; every rank evaluates (the metrics
 * are rank 0's; a task's metric computed from the training shard is rank 0's
 * shard's unless the task sums it over the ranks, as the classifier task does
 * for train_acc when its loader is sharded) and runs the hooks (test
 * cx_dist_is_root() there before printing or writing). Buffers (batch-norm
 * statistics) are not averaged: each rank keeps its own, rank 0's are saved.
 * A resumed run reads the checkpoint on every rank. With one process the
 * option changes nothing.
 *
 * Batch splitting across threads (opts.split_batch)
 * -------------------------------------------------
 * A small network's step is many short operations, each too small to share
 * well between threads. So when more than one thread is asked for
 * (cx_get_threads() = T > 1) and
 *   - the task has loss_part (the classifier task has),
 *   - the model is given and cx_module_split_safe(model) holds (no batch
 *     norm, no recurrent state: see cx_module_ops.split_safe),
 *   - opts.split_batch is CX_SPLIT_AUTO and the environment does not say
 *     CX_SPLIT_BATCH=0, and the run is neither data-parallel over processes
 *     nor in check-numerics mode,
 * a step runs its batch as T parts, one per thread: every part takes
 * loss_part(part t of T) and its backward, with its thread's own arena, its
 * own gradient buffers for the parameters and its own random stream (split
 * from the calling thread's current stream at every step, so dropout and
 * augmentation stay seeded). Each part's gradient is weighed by its share of
 * the batch, the parts' gradients are summed in a fixed order (each thread
 * sums a slice of the parameters), then clipping and the optimiser step run
 * once, as without splitting. The step computes the same thing up to float
 * rounding; the same seed and thread count give the same bits, also when
 * busy cores leave fewer threads than parts (the adaptive count of
 * cx_set_threads_adaptive): the parts then share the threads. A non-finite
 * loss in any part stops the run before any backward, as above; a check
 * that fails inside a part (a shape error, ...) is raised after the step on
 * the calling thread, as it would be without splitting.
 * Splitting pays when each part's activations outweigh the weights every
 * thread must read (a CNN); an MLP at batch 64 runs faster with each op
 * split between the threads instead. So the first split step measures each
 * part's forward pass (the arena bytes it took, which depend only on the
 * shapes) and the run keeps splitting only if every part took at least as
 * many bytes as the parameters hold; the choice is kept per part count and
 * in checkpoints (cortex.train.split, below), so a resumed run makes the same
 * one. cx_trainer_split_parts tells how many parts the last step had.
 *
 * Ownership: the trainer copies the task, the options and the path strings;
 * it does not own the model, the optimiser, the task's user data, the random
 * streams registered with it, opts.meta_keys / meta_values or
 * opts.progress_stream, which must outlive it. Invalid arguments (a missing
 * callback, no limit at all, a bad stream name) are programming errors and go
 * to cx_fatal. Everything runs on the calling thread with its current arena
 * and its current random stream, except the parts of a split batch (above).
 */
#ifndef CORTEX_TRAIN_H
#define CORTEX_TRAIN_H
#include <stdio.h>
#include "core.h"
#include "nn.h"
#include "optim.h"
#include "io.h"
#include "data.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- clocks */
/* Monotonic wall-clock time in seconds (CLOCK_MONOTONIC): differences of two
 * calls time a piece of work. */
double cx_now(void);
/* CPU time of the process in seconds, all threads (CLOCK_PROCESS_CPUTIME_ID). */
double cx_cpu_now(void);

/* ---------------------------------------------------------------- metrics */
/* A small set of named values, e.g. {val_loss 0.41, val_acc 0.87}. Names are
 * 1..31 characters from [A-Za-z0-9_.-] (they become CSV column names); at
 * most CX_METRICS_MAX. Plain value: no heap memory. */
#define CX_METRICS_MAX 16
typedef struct cx_metrics {
    int n;
    char name[CX_METRICS_MAX][32];
    double value[CX_METRICS_MAX];
} cx_metrics;
/* Set `name` to `value` (appended the first time, overwritten after). A bad
 * name or a full set is fatal. */
void cx_metrics_set(cx_metrics *m, const char *name, double value);
/* The value of `name`, NAN when absent. */
double cx_metrics_get(const cx_metrics *m, const char *name);

/* ---------------------------------------------------------------- checkpoint writer */
/* What a task's save_state adds to a checkpoint. Tensors are not copied (a
 * persistent tensor of the task, or a step tensor of the current arena: the
 * file is written right after the callback returns, before any arena reset);
 * names and metadata strings are copied. A name or key used twice in one
 * checkpoint (including the trainer's own) makes the save fail with
 * CX_ERR_ARG naming it. */
typedef struct cx_ckpt cx_ckpt;
void cx_ckpt_add_tensor(cx_ckpt *ck, const char *name, cx_tensor *t);
void cx_ckpt_add_meta(cx_ckpt *ck, const char *key, const char *value);

/* ---------------------------------------------------------------- tasks */
typedef struct cx_trainer cx_trainer;

/* Where a run is. */
typedef struct cx_train_pos {
    int epoch;         /* epoch in progress, or next to start (1-based) */
    int batch;         /* batches of it done */
    int num_batches;   /* batches of it (what begin_epoch returned; <= 0: unknown) */
    int64_t step;      /* optimiser steps done in all (cx_optim_steps of a fresh optimiser) */
    double seconds;    /* wall-clock seconds of training runs so far (all runs) */
} cx_train_pos;

/* What hooks and task.evaluate see. */
typedef struct cx_train_info {
    cx_trainer *trainer;
    cx_train_pos pos;        /* on_eval at the end of an epoch: batch == num_batches */
    bool end_of_epoch;       /* on_eval: evaluation at the end of the epoch */
    double lr;               /* learning rate of this epoch */
    double loss;             /* on_step: the loss of the batch just trained */
    int64_t count;           /* on_step: its count */
    double train_loss;       /* running training loss of the epoch (NaN before its first batch) */
    int64_t epoch_count;     /* examples (tokens) of the epoch so far */
    double epoch_seconds;    /* training time of the epoch so far (evaluations excluded) */
    double epoch_cpu_seconds;/* the same in process CPU time (this run only) */
    int64_t run_count;       /* examples (tokens) trained in this run */
    double run_seconds;      /* training time of this run: the batches only */
    const cx_metrics *metrics; /* on_eval: the task's metrics; NULL elsewhere */
} cx_train_info;

/* A task. user is passed to every callback; pos is the current position
 * (batch = batches of the epoch done before this call).
 *   begin_epoch  required. Start epoch pos->epoch: reshuffle, draw offsets,
 *                reset per-epoch statistics and state. Returns the number of
 *                batches of the epoch (<= 0: unknown). When a run resumes from
 *                the middle of an epoch it is called with pos->batch > 0 (after
 *                load_state): keep the state load_state restored.
 *   next_batch   required. Fetch the next batch of the epoch (step tensors of
 *                the current arena are fine); false at the end of the epoch.
 *   loss         required. Forward the current batch and return its scalar
 *                loss (1-element F32 step tensor with a graph); *count = the
 *                examples or tokens it averages over (weights the running
 *                loss and the rate; 0 is taken as 1).
 *   loss_part    optional. The same loss over part `part` (0-based) of
 *                `parts` equal parts of the current batch: the examples
 *                [B*part/parts, B*(part+1)/parts) (integer division), as a
 *                mean over them; *count = the part's examples, 0 (and NULL
 *                returned) for an empty part. Lets the trainer split a batch
 *                across threads ("Batch splitting" above): it is then called
 *                from several threads at once, one part each, and must write
 *                nothing another part reads (sum shared counters atomically).
 *   after_step   optional. After the optimiser step, before cx_step_reset
 *                (the batch's tensors are still alive): e.g. copy out a
 *                recurrent state.
 *   evaluate     optional. Fill `out` (empty on entry) with named metrics at an
 *                evaluation; runs with no grad and in eval mode. info->metrics
 *                is NULL here.
 *   save_state   optional. Add the task's tensors / metadata to a checkpoint.
 *   load_state   optional. Check and restore them from checkpoint `f` (path
 *                names it in messages; pos is the saved position). Called by
 *                cx_trainer_resume after the trainer's own checks and before
 *                anything is restored: on error it must change nothing. */
typedef struct cx_train_task {
    void *user;
    int (*begin_epoch)(void *user, const cx_train_pos *pos);
    bool (*next_batch)(void *user, const cx_train_pos *pos);
    cx_tensor *(*loss)(void *user, const cx_train_pos *pos, int64_t *count);
    void (*after_step)(void *user, const cx_train_pos *pos);
    cx_status (*evaluate)(void *user, const cx_train_info *info, cx_metrics *out);
    cx_status (*save_state)(void *user, const cx_train_pos *pos, cx_ckpt *ck);
    cx_status (*load_state)(void *user, const cx_st_file *f, const char *path, const cx_train_pos *pos);
    cx_tensor *(*loss_part)(void *user, const cx_train_pos *pos, int part, int parts, int64_t *count);
} cx_train_task;

/* A hook: a non-CX_OK status stops the run and is returned by cx_trainer_run
 * (record the message with cx_set_error). */
typedef cx_status (*cx_train_hook)(void *user, const cx_train_info *info);

typedef struct cx_train_opts {
    int epochs;                 /* stop after this epoch (in all); 0: no epoch limit */
    int64_t max_steps;          /* stop after this many optimiser steps in all; 0: none */
    double minutes;             /* stop after this many minutes of this run; 0: none */
    cx_sched sched;             /* per-epoch learning-rate schedule (constant) */
    float clip;                 /* global gradient-norm clipping; 0: off */
    int eval_every;             /* also evaluate every N steps; 0: at epoch ends only */
    const char *metrics_path;   /* metrics CSV; NULL: none */
    const char *checkpoint_path;/* checkpoint at every evaluation; NULL: none */
    const char *const *meta_keys, *const *meta_values; /* extra checkpoint metadata */
    int n_meta;
    bool quiet;                 /* no progress line */
    FILE *progress_stream;      /* NULL: stderr, if it is a terminal */
    const char *unit;           /* what count counts, for the rate: NULL = "ex" */
    bool bits;                  /* loss in nats per token: also show bits (loss / ln 2) */
    FILE *log;                  /* if set, one line per evaluation:
                                   "epoch 2/5  step 158  lr 0.001  train_loss 0.5123
                                    val_acc 0.8120  1.23s" */
    cx_train_hook on_step;      /* after every step (after the progress line) */
    cx_train_hook on_eval;      /* after every evaluation, before the CSV and checkpoint */
    void *hook_user;
    bool data_parallel;         /* train over cx_dist_size() processes: see "Data-parallel" above */
    int split_batch;            /* CX_SPLIT_AUTO (0) or CX_SPLIT_OFF: see "Batch splitting" above */
} cx_train_opts;
enum { CX_SPLIT_AUTO = 0, CX_SPLIT_OFF = 1 };
/* One epoch, constant learning rate, no clipping, no files, progress on. */
cx_train_opts cx_train_defaults(void);

/* A trainer for `model` (may be NULL: then the checkpoint holds the
 * optimiser's parameters) and `opt`, at position epoch 1, batch 0, step 0.
 * The thread's current random stream is part of the run; register others
 * with cx_trainer_add_rng. Free with cx_trainer_free (NULL is fine). */
cx_trainer *cx_trainer_new(const cx_train_task *task, cx_module *model, cx_optim *opt,
                           const cx_train_opts *opts);
void cx_trainer_free(cx_trainer *tr);
/* Make `rng` (e.g. a loader's stream, cx_loader_set_rng) part of the run's
 * state as cortex.rng.<name>; name: 1..40 characters from [A-Za-z0-9_-],
 * unique, not "current". Not owned. */
void cx_trainer_add_rng(cx_trainer *tr, const char *name, cx_rng *rng);

/* Train from the current position until a limit (see the loop above). May be
 * called again: it continues from where the last run stopped. Its backward
 * passes recycle the gradients of op results (cx_set_keep_op_grads(false)
 * while it runs): only leaves keep a gradient. */
cx_status cx_trainer_run(cx_trainer *tr);

/* Write a checkpoint of the current position to `path` (what the trainer
 * writes at every evaluation when opts.checkpoint_path is set). Errors:
 * those of cx_st_save, a task's save_state, CX_ERR_ARG for a duplicate name. */
cx_status cx_trainer_save(cx_trainer *tr, const char *path);
/* Restore a checkpoint written for the same model, optimiser kind, random
 * streams and task settings, and continue from its position with the next
 * cx_trainer_run. Everything is checked before anything is restored: on
 * error the model, the optimiser, the random streams and the trainer are
 * unchanged (only the task may have moved: its load_state ran, or a failed
 * mid-epoch replay left its loader inside an epoch, which the next run
 * begins afresh). Errors, each
 * naming the file and the problem: those of cx_st_load; CX_ERR_FORMAT (not a
 * checkpoint, an old-format checkpoint, malformed position metadata or
 * metrics, a tensor this run has no use for under optim.* / state.* /
 * cortex.rng*); CX_ERR_NOTFOUND (a tensor of the model, the optimiser or a
 * random stream is missing); CX_ERR_SHAPE (a tensor has another shape or
 * dtype); CX_ERR_ARG (another optimiser, a stream this run does not
 * register, an epoch with another number of batches when resuming mid-epoch);
 * and task.load_state's errors. Resuming mid-epoch replays that epoch's
 * batch draws (task.begin_epoch, task.next_batch) and resets the current
 * arena. */
cx_status cx_trainer_resume(cx_trainer *tr, const char *path);

/* The current state: position (where the next run continues), lr, the
 * epoch's running loss, this run's counts (metrics NULL). */
cx_train_info cx_trainer_info(const cx_trainer *tr);
/* The metrics CSV text so far ("" before the first evaluation); owned by the
 * trainer, valid until its next evaluation or resume. */
const char *cx_trainer_metrics_csv(const cx_trainer *tr);
/* Erase the progress line if one is shown (for hooks that print). */
void cx_trainer_clear_line(cx_trainer *tr);
/* Parts the last training step's batch was split into across threads (1:
 * not split, also before the first step); see "Batch splitting" above. */
int cx_trainer_split_parts(const cx_trainer *tr);

/* ---------------------------------------------------------------- classifiers */
/* Logits [B, C] of a batch x [B, ...] (reshape inside if the model wants
 * images); a step tensor of the current arena. */
typedef cx_tensor *(*cx_forward_fn)(void *user, cx_tensor *x);
/* A cx_forward_fn for a module: cx_module_forward((cx_module *)module, x). */
cx_tensor *cx_forward_module(void *module, cx_tensor *x);

typedef struct cx_classifier_result {
    int64_t n, correct;   /* examples, correctly classified (argmax == label) */
    double loss;          /* mean cross-entropy: sum over batches of the summed
                             float loss, accumulated in double, / n */
    double accuracy;      /* correct / n (NaN when n == 0, like loss) */
} cx_classifier_result;

/* Evaluate a classifier over a dataset with labels y I32 [N]: batches of
 * `batch` examples in order, no grad, eval mode (the training flag is
 * restored after), the current arena reset after every batch. confusion (may
 * be NULL) is num_classes x num_classes int64 counts, confusion[true * C +
 * predicted], overwritten (examples whose label or prediction is not below
 * num_classes are not counted there). Errors (nothing evaluated):
 * CX_ERR_ARG (batch < 1, labels not I32 [N], a label outside the model's
 * classes), CX_ERR_SHAPE (logits not [B, C]). */
cx_status cx_classifier_eval(cx_forward_fn forward, void *user, const cx_dataset *d, int batch,
                             int64_t *confusion, int num_classes, cx_classifier_result *out);

/* A classifier training task: cross-entropy on the minibatches of a loader
 * (x, y I32 [B]), optional image augmentation, and at every evaluation the
 * metrics
 *   train_acc   accuracy on the training batches of the epoch so far (the
 *               model as it was at each batch, before its update; with a
 *               sharded loader, over every rank's part: an all-reduce, so
 *               every rank must evaluate at the same points)
 *   val_loss, val_acc   cx_classifier_eval on `val` (NaN without val)
 * Set the first fields, then take the callbacks with cx_classifier_task
 * (task.user = c). Checkpoints get metadata cortex.classifier.seen /
 * cortex.classifier.correct (the train_acc counts). */
typedef struct cx_classifier {
    cx_forward_fn forward;      /* required; when the trainer splits batches
                                   ("Batch splitting" above) it is called from
                                   several threads at once, each on its own
                                   rows of the batch, so it must write no
                                   shared state (a module's forward does not) */
    void *forward_user;
    cx_loader *train;           /* required: training batches; not owned */
    const cx_dataset *val;      /* NULL or empty: no validation */
    int eval_batch;             /* batch of the validation pass; <= 0: 500 */
    cx_augment_opts augment;    /* shift / hflip applied to every training
                                   batch, viewed as [B, C, H, W] ... */
    int image_shape[3];         /* ... with these C, H, W */
    /* kept by the task (read them, do not set them) */
    int64_t seen, correct;      /* the epoch's training examples and hits */
    cx_tensor *x, *y;           /* the current batch */
} cx_classifier;
cx_train_task cx_classifier_task(cx_classifier *c);

#ifdef __cplusplus
}
#endif
#endif
