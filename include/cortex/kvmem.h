/*
 * cortex/kvmem.h -- key-value memory networks (Miller et al. 2016) and the
 * film knowledge base they are shown on.
 *
 * The film knowledge base (cx_filmkb) is generated, like the WikiMovies
 * benchmark's KB (which is in no package registry): films with a director,
 * writers, three actors, a release year and a genre, as triples such as
 * (2001:a_space_odyssey, directed_by, stanley_kubrick). Ten real Stanley
 * Kubrick films are always in it (the course notes' example); the rest are
 * drawn from name lists by a seeded stream. Every entity is one token
 * ("stanley_kubrick", "1968", "science_fiction"). Questions come from
 * WikiMovies-style templates, one per (entity, question type):
 *
 *   who directed the_shining ?                 -> stanley_kubrick
 *   which films did stanley_kubrick direct ?   -> dr_strangelove, ..., eyes_wide_shut
 *   when was 2001:a_space_odyssey released ?   -> 1968
 *
 * and are split into train / valid / test by (entity, question type), so a
 * test question never has its twin in training: the answer must be read from
 * memory. Three ways to fill a question's memory (key hashing: only memories
 * that mention an entity of the question):
 *
 *   CX_KVMEM_KB      the KB as key-value pairs, both directions: key
 *                    (subject, relation) -> value object, and key
 *                    (object, relation_rev) -> value subject.
 *   CX_KVMEM_DOC     generated sentences about each film ("the_shining was
 *                    directed by stanley_kubrick ."); a window of +-3 words
 *                    around every entity: key = the window's other words +
 *                    the film title, value = the centre entity; and key = the
 *                    whole window, value = the title (the paper's "window +
 *                    title"; the centre word is left out of its own key
 *                    instead of being given a second dictionary).
 *   CX_KVMEM_TRIPLE  MemN2N-style memories: each triple's bag of words
 *                    {subject, relation, object} is key and value at once
 *                    (the paper's MemN2N-on-KB baseline).
 *
 * The model (cx_kvmemnn), with the paper's notation: one embedding A
 * [V, d] for questions, keys and values (bag of words, row 0 = padding),
 *   q_1 = A Phi(x);  for hop j = 1..H:  p_h = softmax_h(q_j . A Phi(k_h)),
 *   o = sum_h p_h A Phi(v_h),  q_{j+1} = R_j (q_j + o);
 *   logits = q_{H+1} B^T over the whole vocabulary (B [V, d]; "<nil>"'s
 *   logit is -1e30, it is never an answer),
 * trained with cross-entropy against the uniform distribution over the
 * question's answers (-mean over answers of log softmax); predictions are
 * the best-scoring entity. Parameters (PyTorch state_dict names):
 * "A.weight" [V, d], "R.<j>.weight" [d, d], "B.weight" [V, d].
 *
 * Answer tying (tie_answer): B = A, the answer embedding is the value
 * embedding (like MemN2N's adjacent tying W^T = C^K). Miller et al. keep B
 * separate; with a separate B every entity's A -> B pairing is learned from
 * the questions it answers, so rare entities (an actor in one or two films)
 * are missed: on the 1000-film KB the untied model is markedly worse (see
 * examples/kvmemnn.c), and tying is the default of the example.
 */
#ifndef CORTEX_KVMEM_H
#define CORTEX_KVMEM_H

#include "core.h"
#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CX_KVQ_DIRECTOR = 0,   /* who directed F ?             -> person */
    CX_KVQ_WRITER,         /* who wrote F ?                -> persons */
    CX_KVQ_ACTOR,          /* who acted in F ?             -> persons */
    CX_KVQ_YEAR,           /* when was F released ?        -> year */
    CX_KVQ_GENRE,          /* what genre is F ?            -> genre */
    CX_KVQ_DIRECTED,       /* which films did P direct ?   -> films */
    CX_KVQ_WROTE,          /* which films did P write ?    -> films */
    CX_KVQ_ACTED,          /* which films did P act in ?   -> films */
    CX_KVQ_NTYPES
} cx_kvq_type;

typedef enum { CX_KVMEM_KB = 0, CX_KVMEM_DOC = 1, CX_KVMEM_TRIPLE = 2 } cx_kvmem_mode;

#define CX_KVQ_MAX_TOKENS 12
#define CX_KVMEM_MAX_TOKENS 9   /* a key or value: at most 9 words */

typedef struct cx_kvq {
    cx_kvq_type type;
    int entity;                 /* the question's entity (word id) */
    int n_tokens, tokens[CX_KVQ_MAX_TOKENS];
    int n_answers, first_answer;   /* answers are kb->answers[first .. first + n) */
    int split;                  /* 0 train, 1 valid, 2 test */
} cx_kvq;

typedef struct cx_filmkb {
    int n_words;
    char **words;               /* id 0 is "<nil>" (padding) */
    unsigned char *is_entity;   /* [n_words] */
    int n_films;
    int n_triples;
    int *triples;               /* [n_triples * 3]: subject, relation, object (word ids) */
    int n_sentences;
    int *sent_film;             /* [n_sentences]: the film each sentence is about */
    int *sent_len, *sent_first; /* sentence s is sent_tok[sent_first[s] .. + sent_len[s]) */
    int *sent_tok;
    int n_questions;
    cx_kvq *questions;
    int *answers;               /* answer pool of the questions */
    int n_split[3];             /* questions per split */
} cx_filmkb;

/* Generate a KB of n_films films (>= 10: the ten Kubrick films, then
 * generated ones; at most 1500) and its questions, split 80 / 10 / 10 by
 * (entity, type) with the same seed. Owned by the caller (cx_filmkb_free).
 * Errors: CX_ERR_ARG (n_films out of range), CX_ERR_NOMEM. */
cx_status cx_filmkb_generate(int n_films, uint64_t seed, cx_filmkb **out);
void cx_filmkb_free(cx_filmkb *kb);         /* NULL is fine */
int cx_filmkb_find(const cx_filmkb *kb, const char *word);     /* id, or -1 */
/* The question as text ("who directed the_shining ?"); returns the length
 * snprintf would write. */
int cx_filmkb_question_text(const cx_filmkb *kb, int q, char *out, size_t cap);
/* Questions of one split (0 train, 1 valid, 2 test): writes their indices
 * into idx (room for kb->n_split[split]) and returns the count. */
int cx_filmkb_split(const cx_filmkb *kb, int split, int *idx);

/* The memories of question q in the given mode, at most max_mem (extra ones
 * are dropped in a fixed order: the first max_mem found). keys / values:
 * [max_mem * CX_KVMEM_MAX_TOKENS] word ids, 0-padded. Returns the number of
 * memories; *has_answer (may be NULL) is set when some kept value contains an
 * answer. */
int cx_filmkb_memories(const cx_filmkb *kb, int q, cx_kvmem_mode mode, int max_mem, int *keys, int *values,
                       bool *has_answer);

/* A batch for questions idx[0..n): query I32 [n, CX_KVQ_MAX_TOKENS],
 * keys / values I32 [n, M, CX_KVMEM_MAX_TOKENS], mask F32 [n, M] (1 for a
 * real memory), target F32 [n, V] (1 / |answers| at each answer). M is the
 * largest memory count of the batch (>= 1), capped at max_mem. Tensors are
 * in the current arena (released by cx_step_reset), like every
 * step tensor. */
cx_status cx_filmkb_batch(const cx_filmkb *kb, const int *idx, int n, cx_kvmem_mode mode, int max_mem,
                          cx_tensor **query, cx_tensor **keys, cx_tensor **values, cx_tensor **mask,
                          cx_tensor **target);

/* ------------------------------------------------------------ the model */
typedef struct cx_kvmemnn {
    cx_module *root;            /* parameters "A.weight", "R.<j>.weight", "B.weight" */
    int vocab, dim, hops;
    bool tied;                  /* B is A */
} cx_kvmemnn;

/* A new model, A and B drawn from N(0, 0.1^2) (row 0 of A zero), R_j =
 * identity plus N(0, 0.01^2) noise, from rng; tie_answer: B is A (one
 * tensor, saved once as "A.weight"). Errors (NULL + cx_last_error):
 * vocab < 2, dim < 1, hops outside [1, 8]. */
cx_kvmemnn *cx_kvmemnn_new(int vocab, int dim, int hops, bool tie_answer, cx_rng *rng);
void cx_kvmemnn_free(cx_kvmemnn *m);        /* NULL is fine */

/* Forward: query I32 [B, Lq], keys / values I32 [B, M, L] (0 = padding
 * word), mask F32 [B, M] or NULL (every memory real). Returns the logits
 * [B, V]; attn (may be NULL) receives the hops' attention weights p
 * [H, B, M] (a tensor with no gradient; a batch element with no real memory
 * attends to nothing: its weights are all 0 and o = 0). Errors (cx_fatal,
 * naming the argument): word ids outside [0, V), shapes that disagree. */
cx_tensor *cx_kvmemnn_forward(cx_kvmemnn *m, const cx_tensor *query, const cx_tensor *keys,
                              const cx_tensor *values, const cx_tensor *mask, cx_tensor **attn);
/* The loss -1/B sum_b sum_v target[b, v] log softmax(logits)[b, v]. */
cx_tensor *cx_kvmemnn_loss(cx_tensor *logits, const cx_tensor *target);

#ifdef __cplusplus
}
#endif
#endif
