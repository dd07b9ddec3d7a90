/* cortex/nn.h -- modules (the base module, Linear, activations, Dropout,
 * Sequential) and parameter initialisers. See cortex.h.
 *
 * Modules
 * -------
 * A module is a struct whose first member is a cx_module (the base). The base
 * holds the module's named parameters, buffers (non-trainable state saved
 * with the model, PyTorch's "buffers": batch norm's running statistics) and
 * children, so listing, naming, freeing, saving and loading are generic:
 *
 *   cx_module *net = cx_sequential_new();
 *   cx_sequential_add(net, "fc1", cx_linear_new(784, 256, true));
 *   cx_sequential_add(net, "act", cx_activation_new(CX_ACT_RELU, 0));
 *   cx_sequential_add(net, "fc2", cx_linear_new(256, 10, true));
 *   cx_params ps; cx_params_init(&ps); cx_module_params(net, &ps);
 *   // ps holds fc1.weight [256,784], fc1.bias, fc2.weight, fc2.bias
 *
 * Names are PyTorch's state_dict names: a tensor registered as "weight" in a
 * child added as "fc1" is "fc1.weight" (its t->name, kept up to date when the
 * module is added to a parent, at any depth).
 *
 * Ownership and sharing. A module owns the tensors it registers with
 * cx_module_add_param / cx_module_add_buffer and frees them. It can also
 * refer to a tensor owned elsewhere (tied weights: a language model whose
 * decoder is its embedding, MemN2N's adjacent weight tying) with
 * cx_module_share_param or cx_module_tie: listed under its name there too,
 * never freed there. Children are reference-counted: cx_module_add takes the
 * caller's reference; to put one child in two parents (an actor and a critic
 * sharing a trunk) pass cx_module_ref(child) the second time (its tensors keep
 * the names of the first parent, also after that parent is freed). Every listing
 * (cx_module_params, _buffers, _state) gives each tensor once, at its first
 * place in registration order (PyTorch's named_parameters), so an optimiser
 * steps a shared tensor once with the sum of its gradients; the state dict
 * (cx_module_state_dict) gives every name, aliases included.
 *
 * Forward. cx_module_forward(m, x) is one tensor in, one out; modules with
 * several inputs or outputs (a recurrent layer: x, h0, c0 -> output, h_n,
 * c_n) implement `call`, reached through cx_module_call. The intermediates
 * live in the current arena.
 *
 * Writing a module:
 *
 *   typedef struct { cx_module base; cx_tensor *w; } scale_m;
 *   static cx_tensor *scale_fwd(cx_module *m, cx_tensor *x) { return cx_mul(x, ((scale_m *)m)->w); }
 *   static const cx_module_ops scale_ops = {.kind = "Scale", .forward = scale_fwd};
 *   cx_module *scale_new(int n) {
 *       scale_m *s = calloc(1, sizeof *s);      // freed by cx_module_free
 *       cx_module_init(&s->base, &scale_ops);
 *       s->w = cx_param_new(NULL, (int[]){n}, 1);
 *       cx_module_add_param(&s->base, "weight", &s->w);
 *       return &s->base;
 *   }
 */
#ifndef CORTEX_NN_H
#define CORTEX_NN_H
#include "core.h"
#include "io.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_module cx_module;
typedef struct cx_module_ops {
    const char *kind;                                    /* "Linear", "Sequential", ... */
    /* one input, one output; NULL when the module only has `call` */
    cx_tensor *(*forward)(cx_module *m, cx_tensor *x);
    /* n_in inputs (entries may be NULL: optional), up to max_out outputs
     * written to out; returns how many it wrote. NULL: forward only. */
    int (*call)(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out);
    void (*describe)(const cx_module *m, char *buf, size_t n); /* "Linear(784 -> 256)"; NULL: the kind */
    /* free what the module allocated besides its registered tensors and
     * children and the struct itself (the base frees those; the tensors and
     * children are gone when this runs); may be NULL */
    void (*destroy)(cx_module *m);
    /* true when forward may run on several threads at once, each on its own
     * part of a batch: training-mode forward writes no state of the module
     * and treats every example on its own (no batch statistics, no carried
     * state). The trainer splits a batch across threads only when every
     * module of the model says so (cortex/train.h, "Batch splitting").
     * Linear, activations, Dropout, Sequential, Conv*, pooling, Flatten,
     * Embedding, LayerNorm and Net set it (a Net or Sequential counts as
     * split-safe when all its children are). false: never split. */
    bool split_safe;
} cx_module_ops;

struct cx_module_reg; /* the registry (private) */
struct cx_module {
    const cx_module_ops *ops;
    struct cx_module_reg *reg;
    int refs;
};

/* ---- the base: registering what a module holds */
/* Set up the base of a module allocated with malloc/calloc (the struct is
 * freed with free() by cx_module_free). */
void cx_module_init(cx_module *m, const cx_module_ops *ops);
/* Register the parameter *field (a persistent F32 tensor that requires grad)
 * under `name` (no dots; unique in the module); the module owns it. field
 * points into the module's struct, so the module keeps using its own field
 * and cx_module_tie can re-point it. Returns *field. */
cx_tensor *cx_module_add_param(cx_module *m, const char *name, cx_tensor **field);
/* Same for a buffer (any dtype, no gradient: running statistics, counters). */
cx_tensor *cx_module_add_buffer(cx_module *m, const char *name, cx_tensor **field);
/* Register the tensor in *field, owned by another module, as a parameter of m
 * too (listed here under `name`, never freed here). field must be a member of
 * m's own struct (as for cx_module_add_param: cx_module_tie may re-point it).
 * The owner must outlive m. */
cx_tensor *cx_module_share_param(cx_module *m, const char *name, cx_tensor **field);
/* Replace the parameter at `path` below m (e.g. "fc.weight") by t, a
 * persistent parameter owned elsewhere (same dtype and shape required): every
 * slot under m that held the old tensor (other names it was shared or tied
 * under) now holds t, and the old tensor is freed if a slot under m owned it.
 * t's owner must outlive m. Ties a decoder to an embedding:
 * cx_module_tie(lm, "fc.weight", cx_embedding_weight(emb)). */
void cx_module_tie(cx_module *m, const char *path, cx_tensor *t);
/* Add `child` under `name` (no dots; unique in the module), taking over the
 * caller's reference (when the name is refused, a fatal error, the caller
 * keeps it). The child's tensors are renamed "<path>.<name>.*" the first
 * time it is added anywhere. Fatal: a cycle (child is parent or above it), or
 * a child that already has a parent holding its only reference (pass
 * cx_module_ref(child) to a second parent). Returns child. */
cx_module *cx_module_add(cx_module *parent, const char *name, cx_module *child);
/* One more reference to m (for a second parent, or to keep it). Returns m. */
cx_module *cx_module_ref(cx_module *m);
/* Drop a reference; at zero free the module: its owned tensors, its
 * children's references, its destroy hook, then the struct. NULL is fine. */
void cx_module_free(cx_module *m);

/* ---- using a module */
cx_tensor *cx_module_forward(cx_module *m, cx_tensor *x);
/* Several inputs / outputs (see cx_module_ops.call); a forward-only module
 * takes exactly one input and gives one output. Returns the number of
 * outputs written (at most max_out). */
int cx_module_call(cx_module *m, cx_tensor *const *in, int n_in, cx_tensor **out, int max_out);
/* Append the module's parameters (depth-first, registration order, each
 * tensor once) to `out`. */
void cx_module_params(cx_module *m, cx_params *out);
/* Append the module's buffers (non-trainable state) to `out`. */
void cx_module_buffers(cx_module *m, cx_params *out);
/* Parameters then buffers: everything a PyTorch state_dict holds, each
 * tensor once under its own name (save/load this). */
void cx_module_state(cx_module *m, cx_params *out);
/* PyTorch's state_dict: every (name, tensor) pair, parameters then buffers
 * per module, depth-first, tied tensors under each of their names. */
typedef struct cx_state_dict {
    int n;
    char **names;      /* owned by the dict */
    cx_tensor **t;     /* not owned */
} cx_state_dict;
void cx_module_state_dict(cx_module *m, cx_state_dict *sd);
void cx_state_dict_free(cx_state_dict *sd);
/* The tensor at a dotted path below m ("fc1.weight", "bn1.running_mean"),
 * or NULL. */
cx_tensor *cx_module_tensor(cx_module *m, const char *path);
/* Children: how many, the i-th (0-based) and its name (may be NULL). */
int cx_module_num_children(const cx_module *m);
/* True when m and every module below it are split_safe (cx_module_ops). */
bool cx_module_split_safe(const cx_module *m);
cx_module *cx_module_child(const cx_module *m, int i, const char **name);
/* The module at a dotted path below m ("encoder.layer1"; "" is m), or NULL. */
cx_module *cx_module_find(cx_module *m, const char *path);
const char *cx_module_kind(const cx_module *m);
void cx_module_describe(const cx_module *m, char *buf, size_t n);
/* Print one line per child (or the module itself) and the parameter total to stdout. */
void cx_module_print(cx_module *m);

/* ---- state I/O (safetensors, PyTorch names; see io.h)
 * Save the state (each tensor once, under its first name in m's state dict,
 * relative to m: a tied tensor under the name of its first slot in
 * registration order) atomically, with metadata format "pt" plus n_meta
 * extra (key, value) pairs. Errors from cx_st_save. */
cx_status cx_module_save(cx_module *m, const char *path, const char *const *meta_keys,
                         const char *const *meta_values, int n_meta);
/* Copy every state tensor of m from f (looked up by its name, or by another
 * of its names when it is tied: PyTorch files of tied models hold both).
 * Extra tensors in f are ignored. Every tensor is checked (present, same
 * dtype and shape) before anything is copied: on error m is unchanged.
 * Errors: CX_ERR_NOTFOUND (missing), CX_ERR_SHAPE (shape / dtype), naming
 * `path` (used only in messages) and the tensor. */
cx_status cx_module_load_state(cx_module *m, const cx_st_file *f, const char *path);
/* cx_st_load + cx_module_load_state. */
cx_status cx_module_load(cx_module *m, const char *path);
/* Copy the state of src into dst, two modules built from the same definition
 * (a DQN target network): same names, dtypes and shapes, else CX_ERR_SHAPE
 * and dst unchanged. */
cx_status cx_module_copy_state(cx_module *dst, cx_module *src);

/* Linear: y = x W^T + b, W [out, in], b [out]; PyTorch's default init
 * (kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)) for W and b). */
cx_module *cx_linear_new(int in_features, int out_features, bool bias);
cx_tensor *cx_linear_weight(cx_module *m);
cx_tensor *cx_linear_bias(cx_module *m);   /* NULL without bias */

typedef enum {
    CX_ACT_IDENTITY, CX_ACT_RELU, CX_ACT_LEAKY_RELU, CX_ACT_SIGMOID, CX_ACT_TANH,
    CX_ACT_ELU, CX_ACT_GELU, CX_ACT_SOFTPLUS, CX_ACT_MAXOUT, CX_ACT_SIGN,
    CX_ACT_SOFTMAX, CX_ACT_LOG_SOFTMAX
} cx_act;
/* Parameter-free activation module. `param`: leaky_relu slope (0 -> 0.01),
 * elu alpha (0 -> 1), maxout group size k; ignored otherwise.
 * SIGN is the McCulloch-Pitts threshold unit (+1 / -1, no gradient). */
cx_module *cx_activation_new(cx_act act, float param);
/* Parse "relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "softplus",
 * "identity", "sign", "maxout"; returns false if unknown. */
bool cx_act_parse(const char *name, cx_act *out);
const char *cx_act_name(cx_act a);
/* Apply an activation function directly. */
cx_tensor *cx_activate(cx_act act, float param, cx_tensor *x);

cx_module *cx_dropout_new(float p);

/* Sequential: children run in order. name NULL -> "0", "1", ... as PyTorch. */
cx_module *cx_sequential_new(void);
/* Takes ownership of `child`. Renames its parameters "<name>.<param>". */
void cx_sequential_add(cx_module *seq, const char *name, cx_module *child);
int cx_sequential_len(const cx_module *seq);
cx_module *cx_sequential_get(cx_module *seq, int i);

/* Build an MLP: sizes[0] inputs, sizes[n-1] outputs, `act` between layers,
 * optional dropout p after each hidden activation; layers named fc1, fc2, ...
 * (activations "act1", dropout "drop1", which hold no parameters). */
cx_module *cx_mlp_new(const int *sizes, int n, cx_act act, float dropout);

/* ---- initialisers (in place, drawing from the current random stream). Fans follow
 * PyTorch: fan_in = size(1) * receptive field, fan_out = size(0) * receptive. */
typedef enum { CX_FAN_IN, CX_FAN_OUT } cx_fan_mode;
/* Recommended gain as torch.nn.init.calculate_gain ("linear", "sigmoid",
 * "tanh" 5/3, "relu" sqrt(2), "leaky_relu" with `param` slope, "selu" 3/4). */
float cx_init_gain(const char *nonlinearity, float param);
void cx_init_fans(const cx_tensor *t, int *fan_in, int *fan_out);
void cx_init_uniform(cx_tensor *t, float lo, float hi);
void cx_init_normal(cx_tensor *t, float mean, float std);
void cx_init_constant(cx_tensor *t, float v);
void cx_init_xavier_uniform(cx_tensor *t, float gain);
void cx_init_xavier_normal(cx_tensor *t, float gain);
/* a: negative slope of the rectifier after this layer (0 for relu). */
void cx_init_kaiming_uniform(cx_tensor *t, float a, cx_fan_mode mode, const char *nonlinearity);
void cx_init_kaiming_normal(cx_tensor *t, float a, cx_fan_mode mode, const char *nonlinearity);
/* (Semi-)orthogonal matrix scaled by gain; t viewed as [size(0), rest]. */
void cx_init_orthogonal(cx_tensor *t, float gain);

/* Sequence tensors are time-major, [T, B, ...], like PyTorch's recurrent
 * layers without batch_first; the sequence losses also take batch-major
 * [B, T, ...] with a flag. */
/* ================================================================ embedding */
/* out[..., :] = weight[indices[...], :]: weight F32 [V, E], indices I32 or I64
 * of any shape (a 0-d index tensor counts as shape [1]); result [..., E].
 * Every index must lie in [0, V) (fatal otherwise). The gradient of weight
 * accumulates over repeated indices. padding_idx in [0, V) names a row that
 * receives no gradient (PyTorch semantics: its output is still the row
 * itself); any negative padding_idx means "no padding row" (PyTorch's
 * negative padding_idx p corresponds to V + p here). The indices are copied,
 * so the index tensor need not outlive the call. Recorded as "embedding". */
cx_tensor *cx_embedding(cx_tensor *weight, const cx_tensor *indices, int padding_idx);

/* Embedding module (torch.nn.Embedding): parameter "weight" [V, E] drawn
 * from N(0, 1), the padding row (if padding_idx in [0, V)) set to zero.
 * cx_module_forward(m, indices) takes an I32 / I64 index tensor. */
cx_module *cx_embedding_new(int num_embeddings, int embedding_dim, int padding_idx);
cx_tensor *cx_embedding_weight(cx_module *m);
int cx_embedding_padding_idx(const cx_module *m); /* -1 when there is none */

/* ================================================================ graph convolution */
/* A sparse matrix in compressed-row form (rows x cols, float values),
 * owned by the caller: cx_sparse_free. An op that multiplies by it keeps a
 * pointer until backward, so free it after the step. */
typedef struct cx_sparse cx_sparse;
/* From coordinates: nnz entries (row[k], col[k]) with values val[k] (NULL:
 * all 1); duplicates are summed. Fatal for an entry outside the matrix. */
cx_sparse *cx_sparse_from_coo(int rows, int cols, const int32_t *row, const int32_t *col, const float *val,
                              int64_t nnz);
/* Kipf & Welling's propagation matrix of an undirected graph of n nodes
 * with m edges (src[k], dst[k]) (each taken in both directions; repeats and
 * self-edges count once): A_hat = D^-1/2 (A + I) D^-1/2, D the degrees of
 * A + I (self_loops false: of A alone, isolated nodes get a zero row). */
cx_sparse *cx_gcn_adjacency(int n, const int32_t *src, const int32_t *dst, int64_t m, bool self_loops);
void cx_sparse_free(cx_sparse *s);
int cx_sparse_rows(const cx_sparse *s);
int cx_sparse_cols(const cx_sparse *s);
int64_t cx_sparse_nnz(const cx_sparse *s);
/* a [R, C] sparse times x [C, F] dense -> [R, F]; differentiable in x
 * (gradient a^T g). Recorded as "spmm". */
cx_tensor *cx_spmm(const cx_sparse *a, cx_tensor *x);
/* Graph convolution layer (PyTorch Geometric's GCNConv): parameters
 * "weight" [out, in] (Glorot uniform) and "bias" [out] (zeros);
 * cx_gcn_forward(m, adj, x) = adj (x weight^T) + bias for node features
 * x [n, in] and adj = cx_gcn_adjacency(...) [n, n]. cx_module_forward
 * cannot supply the graph and is fatal. */
cx_module *cx_gcn_new(int in_features, int out_features, bool bias);
cx_tensor *cx_gcn_forward(cx_module *m, const cx_sparse *adj, cx_tensor *x);

/* ================================================================ sequence losses */
/* Cross-entropy of a batch of padded sequences.
 *   logits  F32 [T, B, V] (batch_first false) or [B, T, V] (batch_first true)
 *   targets I32 / I64 [T, B] or [B, T]: class indices in [0, V)
 *   lengths NULL, or B ints: sequence b has lengths[b] real tokens (time steps
 *           0 .. lengths[b]-1); 0 <= lengths[b] <= T
 * Padded positions (t >= lengths[b]) and positions whose target is -100
 * (PyTorch's ignore_index) contribute nothing, whatever their logits and
 * target values. Reductions:
 *   CX_REDUCE_MEAN  sum over real tokens / number of real tokens (a per-token
 *                   mean: each real token weighs the same whatever the length
 *                   of its sequence; NaN when there is no real token, as in
 *                   PyTorch)
 *   CX_REDUCE_SUM   sum over real tokens
 *   CX_REDUCE_NONE  per-position loss with the shape of targets, 0 at padding
 * Equal to torch.nn.functional.cross_entropy(logits.reshape(-1, V),
 * t.reshape(-1), ignore_index=-100, reduction=r) where t is the targets with
 * -100 written at padded positions. Differentiable in logits. */
cx_tensor *cx_seq_cross_entropy(cx_tensor *logits, const cx_tensor *targets, const int *lengths,
                                bool batch_first, cx_reduction r);
/* Same with a mask tensor of the shape of targets (F32, I32 or I64): a
 * position is a real token when its mask value is non-zero. NULL mask: every
 * position is real. */
cx_tensor *cx_seq_cross_entropy_masked(cx_tensor *logits, const cx_tensor *targets,
                                       const cx_tensor *mask, bool batch_first, cx_reduction r);
/* Connectionist temporal classification loss (Graves et al. 2006), as
 * torch.nn.functional.ctc_loss:
 *   log_probs      F32 [T, N, C] log-probabilities over C classes (a log_softmax
 *                  over the last axis), time-major
 *   targets        I32 / I64, [N, S] padded (S >= every target length) or 1-D
 *                  with the N targets concatenated; labels in [0, C), never the blank
 *   input_lengths  N ints in [0, T]: sequence n uses time steps 0 .. input_lengths[n]-1
 *   target_lengths N ints >= 0
 *   blank          the blank's class index
 * -log p(target | input) per sequence, summed over every alignment by the
 * forward-backward algorithm in log space (double precision). Reductions:
 * CX_REDUCE_MEAN: the mean over the batch of loss / max(target length, 1)
 * (PyTorch's 'mean'); CX_REDUCE_SUM; CX_REDUCE_NONE: [N]. A target that no
 * alignment can produce (too few steps for its labels and repeats) has loss
 * +inf (0 with zero_infinity) and no gradient. Differentiable in log_probs:
 * the gradient is the true one, -(posterior occupation of class c at t);
 * PyTorch's adds exp(log_probs), the gradient before a log_softmax, so the
 * two agree through cx_log_softmax. Recorded as "ctc_loss". */
cx_tensor *cx_ctc_loss(cx_tensor *log_probs, const cx_tensor *targets, const int *input_lengths,
                       const int *target_lengths, int blank, cx_reduction r, bool zero_infinity);
/* Best-path CTC decoding of log_probs [T, N, C]: the most likely class at
 * every step, repeats merged, blanks removed. input_lengths: N ints (NULL:
 * all T). Sequence n's labels go to out[n * T ...], their count to
 * out_lengths[n] (out holds N * T ints). */
void cx_ctc_greedy_decode(const cx_tensor *log_probs, const int *input_lengths, int blank, int32_t *out,
                          int *out_lengths);
/* Prefix beam-search CTC decoding (no language model): keeps the
 * beam_width label prefixes of highest probability, each summed over its
 * alignments (ending in a blank or not), and returns the best one as
 * cx_ctc_greedy_decode does; scores (NULL or N floats) gets its log
 * probability. With a beam at least as large as the number of prefixes it
 * is the exact most likely labelling. */
void cx_ctc_beam_decode(const cx_tensor *log_probs, const int *input_lengths, int blank, int beam_width,
                        int32_t *out, int *out_lengths, float *scores);
/* Bits per character (or per token) from a mean cross-entropy in nats:
 * nats / ln 2. */
double cx_bits_per_char(double mean_nats);
/* Perplexity exp(mean_nats). */
double cx_perplexity(double mean_nats);

/* ================================================================ image-sentence ranking */
/* Visual-semantic embedding (Kiros et al. 2014, "VSE"; Faghri et al. 2018,
 * "VSE++"): images and sentences are mapped to one space where a matched
 * pair scores higher than a mismatched one by a margin.
 *
 *   cx_ranking_opts o = cx_ranking_defaults();       // margin 0.2, sum form
 *   o.max_violation = true;                          // VSE++: hardest negative
 *   cx_tensor *loss = cx_triplet_ranking_loss(img_emb, txt_emb, &o); // [B, D] each, pair b = row b
 *   ...
 *   cx_recall_result r;                              // evaluation: a similarity
 *   cx_recall_at_k(sim, txt_img, NULL, NULL, 0, &r); // matrix [images, texts]
 *   // r.i2t[0..2] = annotation R@1/5/10, r.t2i[0..2] = retrieval R@1/5/10 */
typedef struct cx_ranking_opts {
    float margin;            /* alpha >= 0 (default 0.2) */
    bool max_violation;      /* false: sum over every negative (VSE, default); true: only
                                the hardest negative of each anchor (VSE++) */
    bool normalize;          /* L2-normalise the rows of both inputs first (x / max(||x||,
                                1e-12), F.normalize): S is then the cosine similarity
                                (default false: the caller normalises, or wants dot products) */
    cx_reduction reduction;  /* CX_REDUCE_SUM (default, as both papers' code), MEAN (the sum
                                / B) or NONE ([B]: pair b's two hinge terms) */
    const cx_tensor *ignore; /* NULL, or a [B, B] mask (F32, I32 or I64): a non-zero (i, j)
                                is not used as a negative in either direction (image i and
                                sentence j also match: duplicate captions in a batch); the
                                diagonal is never a negative */
} cx_ranking_opts;
/* margin 0.2, sum of violations, no normalisation, SUM, no ignore mask. */
cx_ranking_opts cx_ranking_defaults(void);
/* The bidirectional hinge (triplet) ranking loss of a batch of B matched
 * pairs: im F32 [B, D] image embeddings, s F32 [B, D] sentence embeddings,
 * pair b = (im[b], s[b]). With S = im s^T [B, B] (after the optional
 * normalisation) and N(b) the negatives of b (every index but b and the
 * ignored ones):
 *   annotation (image b against sentences j)  c_s(b, j)  = [alpha - S_bb + S_bj]_+
 *   retrieval  (sentence b against images i)  c_im(i, b) = [alpha - S_bb + S_ib]_+
 *   sum form   l_b = sum_{j in N(b)} c_s(b, j) + sum_{i in N(b)} c_im(i, b)
 *   VSE++      l_b = max_{j in N(b)} c_s(b, j) + max_{i in N(b)} c_im(i, b)
 *              (0 when N(b) is empty)
 * and the loss sum_b l_b (SUM), its mean over b (MEAN) or l (NONE). Equal
 * to VSE++'s ContrastiveLoss(margin, max_violation) (its forward returns
 * the SUM). Built from differentiable ops (matmul, sums, relu, masked_fill,
 * max): gradients to both inputs; the max gives its gradient to the first
 * hardest negative. Errors (fatal): inputs not F32 2-D of one shape, B < 1,
 * a negative margin, an ignore mask not [B, B]. */
cx_tensor *cx_triplet_ranking_loss(cx_tensor *im, cx_tensor *s, const cx_ranking_opts *opts);

#define CX_RECALL_MAX_K 8
typedef struct cx_recall_result {
    int n_img, n_txt;
    int n_k;
    int k[CX_RECALL_MAX_K];
    double i2t[CX_RECALL_MAX_K]; /* annotation R@k: the fraction of images with a relevant
                                    text among their k best-scoring texts */
    double t2i[CX_RECALL_MAX_K]; /* retrieval R@k: the fraction of texts with a relevant
                                    image among their k best-scoring images */
    double i2t_median_rank, t2i_median_rank; /* median over queries of the rank (1 = best)
                                                of the first relevant item */
    double i2t_mean_rank, t2i_mean_rank;
} cx_recall_result;
/* Recall at K in both directions from a similarity matrix sim F32
 * [n_img, n_txt] (sim[i, j]: image i against text j; higher is closer).
 * Relevance, the first that is given:
 *   relevant  n_img * n_txt bytes, relevant[i * n_txt + j] non-zero when text
 *             j is a correct description of image i (several captions per
 *             image, identical captions of different images);
 *   txt_img   n_txt ints: text j describes image txt_img[j] only (several
 *             captions per image, each its own);
 *   neither   n_img == n_txt and pair i = (image i, text i).
 * The rank of a query is 1 + the number of irrelevant items scoring above its
 * best relevant item or equal to it (ties are counted against the query, so
 * a constant scorer gets no credit); R@k is the fraction of queries of rank
 * <= k. ks: n_k values (1 <= n_k <= CX_RECALL_MAX_K, each >= 1), or NULL for
 * {1, 5, 10}. A random scorer's expected R@k is k/n for one relevant item
 * among n. Errors (CX_ERR_ARG, *out zeroed): NULL sim or out, sim not F32
 * 2-D, a NaN score, txt_img out of range, a query (image or text) without a
 * relevant item, neither relevance given for a non-square sim, bad ks. */
cx_status cx_recall_at_k(const cx_tensor *sim, const int *txt_img, const uint8_t *relevant, const int *ks, int n_k,
                         cx_recall_result *out);

#ifdef __cplusplus
}
#endif
#endif
