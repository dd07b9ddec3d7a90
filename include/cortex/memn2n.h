/* cortex/memn2n.h -- the end-to-end memory network (MemN2N, Sukhbaatar,
 * Szlam, Weston, Fergus 2015, "End-To-End Memory Networks") for the bAbI
 * tasks (cortex/babi.h). See cortex.h.
 *
 *   cx_memn2n_config c = cx_memn2n_defaults();    // d 20, 3 hops, PE, TE, M 50
 *   c.vocab = cx_babi_vocab_size(v);
 *   cx_memn2n *m;
 *   cx_memn2n_new(&c, 42, &m);                      // N(0, 0.1) weights
 *   cx_babi_tensor_opts o = cx_babi_tensor_defaults();
 *   o.memory = 50; o.recent_first = true;           // row 0 = the latest fact
 *   cx_babi_tensors(train, 0, train->n_questions, &o, &mem, &query, &answer);
 *   cx_memn2n_train_opts t = cx_memn2n_train_defaults();
 *   t.linear_start = true; t.random_noise = 0.1f;   // LS, RN
 *   cx_memn2n_train(m, mem, NULL, query, answer, &t, NULL);
 *   cx_memn2n_evaluate(m, test_mem, NULL, test_query, test_answer, &loss, &err);
 *   cx_memn2n_save("model.safetensors", m, NULL, NULL, 0);
 *   cx_memn2n_free(m);
 *
 * ---------------------------------------------------------------- the model
 * Parameters (PyTorch state_dict names; K = hops):
 *   A.k.weight  [V, d], k = 0 .. K   word embeddings, adjacent tying:
 *               B = A^1 = A.0, C^k = A^{k+1} = A.k, W^T = C^K = A.K
 *   T.k.weight  [M, d], k = 0 .. K   temporal encoding, tied the same way
 *               (T_A^k = T.(k-1), T_C^k = T.k); absent without temporal
 * The PyTorch module: ModuleList A of K+1 nn.Embedding(V, d, padding_idx=0)
 * and ModuleList T of K+1 nn.Embedding(M, d) (tools/gen_memn2n_fixtures.py).
 * Word id 0 (<nil>) is padding: it adds nothing, its row stays 0 and gets no
 * gradient.
 *
 * A sentence x (a row of L word ids) is encoded with the matrix E as
 *   enc(E, x) = sum_j l_j * E[x_j]        (elementwise l_j * row, nil skipped)
 * bag of words: l_j = 1; position encoding (PE), j = 1..J word, k = 1..d
 * dimension, J = the sentence's length (the position of its last non-nil
 * word), in one of two forms (cx_memn2n_config.pe_form):
 *   CX_MEMN2N_PE_CODE (default), the form of Facebook's MemN2N code
 *     (MemN2N-babi-matlab, build_model.m), which made the paper's numbers:
 *       l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J)
 *   CX_MEMN2N_PE_PAPER, the paper's equation (section 4.1):
 *       l_kj = (1 - j/J) - (k/d)(1 - 2j/J)
 * The two weigh positions alike, but the code's weights are about twice the
 * paper's (mean 1 against about 1/2), so attention scores start about four
 * times larger: with the paper's form, 3-hop training gets stuck on the
 * bAbI tasks that need every hop (task 16: 24-40% training error in every
 * run, against 0% with the code's form; examples/README.md). Facebook's code
 * takes J as the longest sentence of the data (+1 for its time word) for
 * every sentence; here J is each sentence's own length in both forms. Memory
 * slot i (row i of a question's memory, row 0 the most recent fact) is
 *   R_e[i] = enc(A.e, x_i) + T.e[i]        e = 0 .. K
 * and with u_0 = enc(A.0, query):
 *   hop k = 1..K:  p = softmax_i(u_{k-1} . R_{k-1}[i])  over the used slots
 *                  o = sum_i p_i R_k[i];   u_k = u_{k-1} + o
 *   logits = A.K u_K  ([V]: a score per vocabulary word)
 * Linear start (m->linear): p_i = u_{k-1} . R_{k-1}[i] (no softmax).
 * The loss is the cross entropy of the logits and the answer id, SUMMED over
 * the questions of a batch (as the reference code's lr 0.01 / clip 40 assume).
 *
 * ---------------------------------------------------------------- inputs
 *   memory  I32 [N, S, L]  S <= M slots; row 0 the most recent fact
 *                           (cx_babi_tensors with recent_first = true)
 *   slots   I32 [N] or NULL the slots in use by each question (rows
 *                           0..slots-1; rows may be empty: random noise);
 *                           NULL: through the last row holding a word
 *   query   I32 [N, Lq]
 *   answer  I32 [N]         ids in [0, V)
 * Errors (CX_ERR_SHAPE / CX_ERR_ARG, nothing changed, message in
 * cx_last_error naming the problem): a memory with more slots than the
 * model's (a story longer than memory: keep the most recent M facts), a word
 * id outside [0, V) (naming the question, slot and position), a query or
 * answer whose shape does not match the memory's N, a dtype other than I32,
 * slots outside [0, S]. */
#ifndef CORTEX_MEMN2N_H
#define CORTEX_MEMN2N_H
#include "core.h"
#include "io.h"
#ifdef __cplusplus
extern "C" {
#endif

#define CX_MEMN2N_MAX_HOPS 8

/* The position encoding's form (see above). */
typedef enum { CX_MEMN2N_PE_CODE = 0, CX_MEMN2N_PE_PAPER = 1 } cx_memn2n_pe_form;

typedef struct cx_memn2n_config {
    int vocab;          /* V, with <nil> = 0 (required, >= 2) */
    int dim;            /* d (default 20; the paper's joint models use 50) */
    int hops;           /* K, 1 .. CX_MEMN2N_MAX_HOPS (default 3) */
    int memory;         /* M slots (default 50) */
    bool pe;            /* position encoding (default true); false: bag of words */
    bool temporal;      /* temporal encoding T (default true) */
    float init_std;     /* weights ~ N(0, init_std) (default 0.1) */
    cx_memn2n_pe_form pe_form;   /* PE's weights (default CX_MEMN2N_PE_CODE) */
} cx_memn2n_config;
cx_memn2n_config cx_memn2n_defaults(void);

typedef struct cx_memn2n {
    cx_memn2n_config cfg;
    cx_tensor *A[CX_MEMN2N_MAX_HOPS + 1];   /* "A.k.weight" [V, d] */
    cx_tensor *T[CX_MEMN2N_MAX_HOPS + 1];   /* "T.k.weight" [M, d]; NULL without temporal */
    cx_params params;                       /* A.0..A.K then T.0..T.K */
    bool linear;                            /* linear start: the softmaxes removed */
} cx_memn2n;

/* A new model, weights N(0, init_std) drawn from a stream seeded by `seed`
 * (the thread's streams are not touched), row 0 of every A.k zero.
 * Errors (CX_ERR_ARG, *out NULL): a config value out of range (named). */
cx_status cx_memn2n_new(const cx_memn2n_config *cfg, uint64_t seed, cx_memn2n **out);
void cx_memn2n_free(cx_memn2n *m);          /* NULL is fine */

/* Forward pass (no gradient). logits: NULL or N*V floats (row-major);
 * attention: NULL or N*K*M floats, [n][hop][slot], the weights p of each hop
 * (0 for unused slots). Errors: see "inputs" above. */
cx_status cx_memn2n_forward(const cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots,
                            const cx_tensor *query, float *logits, float *attention);

/* Loss (summed cross entropy) of a batch, and the number of questions whose
 * arg-max prediction is the answer (NULL allowed). With backward, the
 * gradients of the loss are ADDED to every parameter's grad (allocated on
 * first use; zero them between steps). Errors: see "inputs" above. */
cx_status cx_memn2n_loss(cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots, const cx_tensor *query,
                         const cx_tensor *answer, bool backward, double *loss, int *n_correct);

/* Loss per question (mean) and error rate (fraction wrong) over a data set,
 * in batches of 256. Either output may be NULL. */
cx_status cx_memn2n_evaluate(const cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots,
                             const cx_tensor *query, const cx_tensor *answer, double *loss, double *error);

/* ---------------------------------------------------------------- training
 * The paper's recipe (section 4.2): SGD, lr 0.01 halved every 25 epochs, 100
 * epochs, gradient L2 norm clipped at 40, batches of 32, 10% of the training
 * questions held out for validation (a random split of the seed).
 *   linear_start: start with the softmaxes removed (m->linear) at lr
 *                 ls_lr_factor * lr, and reinsert them after the first epoch
 *                 whose validation loss does not fall below the best so far
 *                 (the paper; the epochs count in `epochs`, the schedule runs
 *                 on). ls_epochs > 0 instead: as Facebook's MemN2N code, that
 *                 many epochs without softmax at ls_lr_factor * lr (no
 *                 annealing) BEFORE `epochs` epochs with it and the schedule
 *                 from the start (the code's 1k setting: ls_epochs 20,
 *                 lr 0.005, ls_lr_factor 1).
 *   random_noise: the fraction of empty memories inserted: before each fact
 *                 of a training question (drawn each epoch), an empty slot
 *                 with this probability, while the slots fit in M (they shift
 *                 the temporal indices of the older facts).
 * The batches are a fresh permutation each epoch (the seed's stream). */
typedef struct cx_memn2n_epoch {
    int epoch;              /* 1-based (fixed linear-start epochs first) */
    double lr;
    bool linear;            /* this epoch ran without the softmaxes */
    double train_loss;      /* mean per question over the epoch's batches */
    double train_error;     /* fraction wrong on the training part (after the epoch) */
    double val_loss, val_error;  /* the held-out part (0 when none) */
    double seconds;         /* wall time of the epoch's training */
} cx_memn2n_epoch;

typedef struct cx_memn2n_train_opts {
    int epochs;             /* 100 */
    int batch;              /* 32 */
    double lr;              /* 0.01 */
    int anneal_every;       /* 25: lr halves every this many epochs (0: never) */
    float max_grad_norm;    /* 40 (<= 0: no clipping) */
    bool linear_start;      /* false */
    double ls_lr_factor;    /* 0.5: lr during linear start (the paper's 0.005) */
    int ls_epochs;          /* 0: linear start ends on the validation loss; > 0: fixed, extra */
    float random_noise;     /* 0 (RN: 0.1) */
    float val_fraction;     /* 0.1 */
    uint64_t seed;          /* 1: split, shuffling, noise */
    /* called after every epoch (NULL: none); returning false stops training */
    bool (*on_epoch)(const cx_memn2n_epoch *e, void *user);
    void *user;
} cx_memn2n_train_opts;
cx_memn2n_train_opts cx_memn2n_train_defaults(void);

/* Trains m on the questions (inputs as above); *last (may be NULL) gets the
 * last epoch's numbers. The model ends with the softmaxes in (linear false).
 * Epochs: `epochs`, plus ls_epochs with a fixed linear start.
 * Errors: the inputs' (see above), an option out of range, fewer than 2
 * questions. */
cx_status cx_memn2n_train(cx_memn2n *m, const cx_tensor *memory, const cx_tensor *slots, const cx_tensor *query,
                          const cx_tensor *answer, const cx_memn2n_train_opts *opts, cx_memn2n_epoch *last);

/* ---------------------------------------------------------------- files
 * Save the parameters (safetensors, atomically) with the config as metadata
 * (cortex.arch "memn2n", memn2n.vocab, .dim, .hops, .memory, .pe, .temporal,
 * .pe_form: "code" or "paper") and n_extra more key/value pairs (e.g. the
 * vocabulary's words). */
cx_status cx_memn2n_save(const char *path, const cx_memn2n *m, const char *const *extra_keys,
                         const char *const *extra_values, int n_extra);
/* Load a model saved by cx_memn2n_save (every tensor checked against the
 * metadata's config: names, shapes, nothing missing or extra). file: NULL, or
 * receives the opened file (its metadata: cx_st_meta; the caller frees it
 * with cx_st_free). A file without memn2n.pe_form (written before the code's
 * form existed) has the paper's. Errors: CX_ERR_IO, CX_ERR_FORMAT naming the
 * problem. */
cx_status cx_memn2n_load(const char *path, cx_memn2n **out, cx_st_file **file);

#ifdef __cplusplus
}
#endif
#endif
