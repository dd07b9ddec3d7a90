/* cortex/dist.h -- data-parallel training over MPI: N processes each hold a
 * copy of the model, train on disjoint shards of every global batch and
 * average their gradients before each optimiser step, so N processes take
 * the same steps as one process on the whole batch (up to float rounding).
 * See cortex.h.
 *
 *   int main(int argc, char **argv) {
 *       cx_dist_init(&argc, &argv);                // before anything else
 *       ... build the model (any seed), the optimiser ...
 *       cx_dist_broadcast_params(&ps);             // rank 0's initial weights everywhere
 *       cx_loader *ld = cx_loader_new(&train, 64, true, false);  // global batch 64
 *       cx_loader_set_rng(ld, &data_rng);           // the same seed on every rank
 *       cx_dist_shard_loader(ld);                  // this rank's rows of each batch
 *       cx_dist_reducer *red = cx_dist_reducer_new(&ps, 0);
 *       while (cx_loader_next(ld, &x, &y)) {
 *           cx_optim_zero_grad(opt);
 *           cx_dist_reducer_begin(red, cx_loader_shard_weight(ld));
 *           cx_backward(loss_of(x, y));            // buckets are sent as they fill
 *           cx_dist_reducer_finish(red);           // wait: grads are the global mean
 *           cx_optim_step(opt);
 *           cx_step_reset();
 *       }
 *       if (cx_dist_rank() == 0) ... log, save checkpoints ...
 *       cx_dist_reducer_free(red);
 *       cx_dist_finalize();
 *   }
 *   $ mpirun -np 2 ./train            (as root: mpirun --allow-run-as-root)
 *
 * Builds. With MPI (make MPI=1, the default when mpicc is found: the
 * CX_HAVE_MPI build) the functions below talk to MPI_COMM_WORLD. Without it
 * (MPI=0) they exist too and act as one process (rank 0 of 1; broadcasts and
 * reductions leave the data as it is), so the same program builds and runs
 * either way. cx_dist_have_mpi() tells which. A CX_HAVE_MPI program started
 * without an MPI launcher (no mpirun: none of the launcher's environment
 * variables OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMI_RANK, PMIX_RANK is set) does
 * not initialise MPI at all and is one process as well.
 *
 * Gradient averaging (cx_dist_reducer). The parameters are split into buckets
 * of about bucket_bytes each, in reverse list order (the order in which
 * backward usually finishes them). cx_dist_reducer_begin arms a hook in the
 * autograd: during the next backward, when the last node that uses a
 * parameter has run, that parameter's gradient is final; it is scaled by this
 * rank's weight and copied into its bucket, and a full bucket is sent with a
 * non-blocking MPI_Iallreduce (sum) while backward goes on with the earlier
 * layers. Buckets are started in a fixed order (bucket i only after buckets
 * 0..i-1), so every rank issues the same sequence of collectives.
 * cx_dist_reducer_finish starts any bucket not yet sent (a parameter that
 * backward did not reach contributes zeros), waits for all of them and writes
 * the sums into the parameters' gradients (creating a gradient that was
 * NULL). With weight w_r = n_r / n (rank r's rows of an n-row global batch)
 * and a per-rank loss that is the mean over its n_r rows, the sum is the
 * gradient of the mean loss over the global batch; for equal shards w_r =
 * 1/size and the result is the mean of the ranks' gradients.
 *  - One backward between begin and finish: a parameter whose gradient is
 *    finished twice (a second backward) is a fatal error. A parameter whose
 *    gradient is written by something other than a backward node (a fused
 *    kernel that writes param->grad itself) is picked up at finish, not
 *    during backward.
 *  - A rank with no rows in a batch (a final short batch of fewer rows than
 *    processes) calls begin with weight 0, skips forward and backward, and
 *    calls finish: it contributes zeros.
 *  - With one process begin and finish only scale the gradients by the weight
 *    (1 for cx_loader_shard_weight of an unsharded loader).
 *
 * Errors. An MPI call that fails is a fatal error naming the call and MPI's
 * message. A fatal error (cx_fatal, not caught by cx_try) on any rank of a
 * run of several processes prints "cortex: rank R of N: <message>" and calls
 * MPI_Abort, which makes the launcher stop every rank (mpirun exits
 * non-zero); no rank is left waiting in a collective.
 *
 * Only the thread that called cx_dist_init makes MPI calls (MPI_THREAD_FUNNELED;
 * OpenMP inside each process is fine). Logging, metrics files and checkpoints
 * are for rank 0 only: test cx_dist_rank() == 0 (cx_dist_is_root()).
 */
#ifndef CORTEX_DIST_H
#define CORTEX_DIST_H
#include "core.h"
#include "nn.h"
#include "data.h"
#ifdef __cplusplus
extern "C" {
#endif

/* True when Cortex was built with MPI (CX_HAVE_MPI). */
bool cx_dist_have_mpi(void);
/* Start MPI (when built with it and started by an MPI launcher) and install
 * the fatal-error path above. Call once, first thing in main, with main's
 * argc and argv (MPI may remove its own arguments). Returns the number of
 * processes. Calling it again does nothing. */
int cx_dist_init(int *argc, char ***argv);
/* Finish MPI (after a barrier); a no-op without MPI or when init was not called. */
void cx_dist_finalize(void);
/* This process's rank, 0..size-1 (0 without MPI or before init). */
int cx_dist_rank(void);
/* Number of processes (1 without MPI or before init). */
int cx_dist_size(void);
/* True on rank 0: the process that logs and writes files. */
bool cx_dist_is_root(void);
/* Every rank waits for all the others. */
void cx_dist_barrier(void);
/* Stop every process now: with several, MPI_Abort(code) (the launcher ends
 * them all and exits non-zero); with one, exit(code). For a rank that must
 * give up while the others may be waiting in a collective. */
void cx_dist_abort(int code);

/* Copy rank 0's values of every tensor of `params` (F32, the same shapes in
 * the same order on every rank: fatal otherwise) to all ranks. Call after
 * building the model and before training so every rank starts from the same
 * weights. */
void cx_dist_broadcast_params(const cx_params *params);
/* Broadcast n floats from rank `root` to every rank (blocking). */
void cx_dist_broadcast_f32(float *buf, int64_t n, int root);
/* In place, on every rank: buf[i] = the sum over ranks of buf[i] (blocking). */
void cx_dist_allreduce_sum_f32(float *buf, int64_t n);
/* In place, on every rank: the sum over ranks of buf[i], in double (blocking;
 * for losses and counts: each rank's sum of losses and its example count). */
void cx_dist_allreduce_sum_f64(double *buf, int n);
/* The largest v over ranks (blocking): e.g. a difference between ranks. */
double cx_dist_allreduce_max(double v);

/* Synchronised batch norm (like PyTorch's SyncBatchNorm), for every batch
 * norm of the process (cx_batch_norm, cx_batch_norm_relu, the BatchNorm
 * modules and .net layers) in training mode: on (every rank must call this,
 * it is collective), each batch norm normalises with the mean and variance
 * of all the processes' rows of the global batch, updates its running
 * statistics with them (the same on every rank), and its backward sums its
 * per-channel gradient sums over the processes. N processes then take the
 * same steps as one process on the whole batch, batch norm included (up to
 * float rounding); off (the default), each process normalises over its own
 * rows, as PyTorch's DDP with plain BatchNorm does. Costs three blocking
 * all-reduces of C to 2C doubles per layer and step, on a communicator of
 * their own.
 *  - Every rank must run the forward and backward passes of every step, and
 *    each must have rows of the batch: a batch of fewer rows than processes
 *    is a fatal error on every rank (named), not a hang.
 *  - The backward weighs each process's sums by its share of the loss, the
 *    weight given to cx_dist_reducer_begin (1 / size when no reducer is
 *    armed), so unequal shards give the one-process result too.
 *  - Batch norm must run on the thread that turned it on, which must be
 *    the one that called cx_dist_init (fatal otherwise).
 * With one process or without MPI it does nothing. cx_dist_finalize turns it
 * off. */
void cx_dist_sync_batchnorm(bool on);
/* True while batch norm is synchronised (on, with more than one process). */
bool cx_dist_batchnorm_synced(void);

/* Shard `l` over the processes: cx_dist_size() parts, this rank's part
 * (cx_loader_set_shard(l, cx_dist_rank(), cx_dist_size())). Give every rank's
 * loader the same random stream seed so the ranks draw the same permutation. */
void cx_dist_shard_loader(cx_loader *l);

/* ---- gradient averaging during backward (see above) */
typedef struct cx_dist_reducer cx_dist_reducer;
/* A reducer for the gradients of `params` (F32 tensors, the same list on
 * every rank; the list is copied, the tensors are not owned and must outlive
 * the reducer). bucket_bytes: the size a bucket is filled to before it is sent
 * (0: CX_DIST_BUCKET_BYTES; at most 1 GiB; a parameter is never split, so a
 * large one is a bucket by itself). Fatal: a tensor listed twice, a tensor of
 * 2^31 - 2 elements or more, lists that differ between ranks. */
#define CX_DIST_BUCKET_BYTES (1 << 20)
cx_dist_reducer *cx_dist_reducer_new(const cx_params *params, size_t bucket_bytes);
/* Waits for buckets still in flight, then frees. NULL is fine. */
void cx_dist_reducer_free(cx_dist_reducer *r);
/* Before backward: this rank's weight in the sum (n_local / n_global rows;
 * negative: 1 / cx_dist_size()). Arms the backward hook of the calling
 * thread; fatal if a previous begin was not finished. */
void cx_dist_reducer_begin(cx_dist_reducer *r, float weight);
/* After backward, before the optimiser step: send what is left, wait, write
 * the summed gradients (see above). Fatal without a begin. */
void cx_dist_reducer_finish(cx_dist_reducer *r);
/* Number of buckets. */
int cx_dist_reducer_buckets(const cx_dist_reducer *r);
/* Timings and counts since the reducer was made (or the last reset). */
typedef struct cx_dist_stats {
    int64_t steps;            /* begin/finish pairs */
    int64_t buckets_early;    /* buckets started during backward by the hook */
    int64_t buckets_late;     /* buckets started by finish */
    double wait_seconds;      /* time finish spent waiting for the all-reduces */
    double reduce_seconds;    /* time from the first bucket's start to the end of finish's wait */
} cx_dist_stats;
cx_dist_stats cx_dist_reducer_stats(const cx_dist_reducer *r);
void cx_dist_reducer_reset_stats(cx_dist_reducer *r);

#ifdef __cplusplus
}
#endif
#endif
