/* cortex/caption.h -- image-captioning data and its metric: canvases holding
 * 1-3 real 28x28 images (Fashion-MNIST items or MNIST digits) at random
 * non-overlapping positions, with every true caption of a small grammar as
 * word-id sequences; save/load as safetensors; pictures; corpus BLEU and the
 * exact-match rate. See cortex.h.
 *
 *   cx_dataset train;                                // 28x28 images, labels 0..9
 *   cx_dataset_load_idx(".../train-images-idx3-ubyte.gz", ".../train-labels-idx1-ubyte.gz", 0, &train);
 *   cx_caption_opts o = cx_caption_defaults();       // 64x64, 1-3 items of 28 px, gap 2
 *   o.split = "train";
 *   cx_caption_set *s;
 *   cx_caption_generate(&train, 20000, 1, &o, &s);   // same seed, same set
 *   cx_caption_save(s, "captions-train.safetensors");
 *   char text[128];
 *   int r0 = CX_I32P(s->ref_start)[7];               // first reference of canvas 7
 *   cx_caption_decode(s, CX_I32P(s->captions) + (size_t)r0 * s->max_len, s->max_len, text, sizeof text);
 *   // text: "a sneaker left of a bag"
 *   ...
 *   cx_bleu_result b;                                // one decoded caption per canvas
 *   cx_caption_bleu(s, cands, &b);                   // b.bleu[0..3] = BLEU-1..4, b.exact_match
 *   cx_caption_set_free(s);
 *
 * ---------------------------------------------------------------- the grammar (version 1)
 * The items of a canvas are grouped by class: a group is one item ("a bag",
 * "an eight") or two or three items of the same class ("two bags", "three
 * trousers"). Relations between groups, from the items' boxes (x, y, w, h;
 * y grows downwards):
 *   P "left of" Q   every item of P ends at or before every item of Q starts
 *                   in x: max(x + w over P) <= min(x over Q);
 *   P "above" Q     the same in y.
 * There is no "right of" / "below": the subject is always the left or upper
 * side, so every true statement has one wording.
 *   caption := group                                  one group
 *            | group REL group [REL group]            a chain: each REL links
 *                                                     the two groups beside it
 *            | group "and" group ["and" group]        only when no chain of
 *                                                     all groups is true
 *   group   := ("a" | "an") NAME | ("two" | "three") PLURAL
 *   REL     := "left" "of" | "above"
 * The references of a canvas are ALL true chains through all its groups
 * (each group once); when there is none, the one "and" caption. Canonical
 * order: the groups are numbered by their leftmost x (then topmost y, then
 * class); chains are listed by their group order (lexicographic), and for
 * each group order with "left of" before "above" at each link, the first link
 * varying slowest. The first reference is the canonical caption; the "and"
 * caption lists the groups in that numbering. Any two non-overlapping items
 * are related one way or the other, so canvases of distinct classes always
 * have a chain; "and" is needed only when a repeated class straddles another
 * group ("two trousers and a shirt" with the shirt between the trousers). At
 * most CX_CAPTION_MAX_REFS = 6 references exist: two groups give at most
 * two true statements; for three, "left of" and "above" are each acyclic and
 * every pair is related, so the chains number at most 6 (one per order when
 * the two relations run against each other, 4 for a diagonal staircase).
 * Longest: "a top left of a coat left of a bag", 10 words.
 *
 * Names (CX_CAPTION_FASHION): top (T-shirt/top), trouser, pullover, dress,
 * coat, sandal, shirt, sneaker, bag, boot (ankle boot); plurals add "s"
 * ("dresses"). CX_CAPTION_DIGITS: zero ... nine, plurals "zeros", "sixes",
 * ...; "an eight". A digit name may equal a count word ("two twos"): the
 * vocabulary holds each word once.
 *
 * Vocabulary: 0 <pad>, 1 <start>, 2 <end>, 3 <unk>, then "a", "an", "two",
 * "three", "and", "left", "of", "above", then the names and the plurals
 * that are not already in it, in class order. It depends only on the class
 * set (train and test sets share it); generated captions never hold <unk>. */
#ifndef CORTEX_CAPTION_H
#define CORTEX_CAPTION_H
#include "core.h"
#include "data.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ BLEU */
/* A token id sequence ids[0 .. len-1] (not owned). */
typedef struct cx_token_seq {
    const int32_t *ids;
    int len;
} cx_token_seq;

#define CX_BLEU_MAX_N 8
typedef struct cx_bleu_opts {
    int n_max;       /* highest n-gram order N, 1..CX_BLEU_MAX_N (default 4) */
    int start_id;    /* tokens equal to it are dropped (< 0: none; default -1) */
    int pad_id;      /* tokens equal to it are dropped (< 0: none; default -1) */
    int end_id;      /* a sequence ends before its first end_id (< 0: none; default -1) */
    /* NLTK 3.8's corpus_bleu counts a candidate shorter than n as having one
     * n-gram of order n (max(1, len - n + 1) in its modified_precision), which
     * lowers p_n for short candidates; true reproduces that exactly. Default
     * false: the standard count len - n + 1 (Papineni et al., sacreBLEU,
     * the COCO caption scorer). The two agree when every candidate has at
     * least N tokens. */
    bool nltk_short;
} cx_bleu_opts;
/* N = 4, no special tokens, standard counts. */
cx_bleu_opts cx_bleu_defaults(void);

typedef struct cx_bleu_result {
    int n_max;                          /* N */
    double bleu[CX_BLEU_MAX_N];         /* bleu[k-1] = BLEU-k, k = 1..N */
    double precision[CX_BLEU_MAX_N];    /* p_n = match / total (0 when total is 0) */
    int64_t match[CX_BLEU_MAX_N];       /* clipped n-gram matches, summed over the corpus */
    int64_t total[CX_BLEU_MAX_N];       /* candidate n-grams, summed over the corpus */
    double bp;                          /* brevity penalty */
    int64_t cand_len;                   /* c: candidate tokens */
    int64_t ref_len;                    /* r: closest reference lengths, summed */
    int n;                              /* candidates */
    int n_exact;                        /* candidates equal to one of their references */
    double exact_match;                 /* n_exact / n (0 for n = 0) */
} cx_bleu_result;

/* Corpus-level BLEU of Papineni et al. 2002, as NLTK's corpus_bleu computes it
 * with uniform weights and no smoothing:
 *   each sequence is cut before its first end_id and stripped of start_id and
 *   pad_id tokens;
 *   p_n = sum over candidates of the clipped n-gram matches (each candidate
 *         n-gram counted at most as often as it occurs in the reference where
 *         it occurs most) / sum of the candidates' n-gram counts;
 *   c   = total candidate length; r = sum over candidates of the length of
 *         the reference closest in length to the candidate (the shorter one
 *         on ties: NLTK's closest_ref_length, Papineni's "best match length");
 *   BP  = 1 if c > r, exp(1 - r / c) if 0 < c <= r, 0 if c = 0;
 *   BLEU-k = BP exp((1/k) sum_{n<=k} log p_n) (cumulative, uniform weights),
 *            0 when some p_n, n <= k, is 0 (NLTK returns 0, or a value below
 *            1e-75 for an empty higher-order match, there).
 * Candidate i's references are refs[ref_start[i] .. ref_start[i+1] - 1]
 * (ref_start has n + 1 entries, ref_start[0] = 0, each candidate at least one
 * reference). Exact match: the stripped candidate equals one of its stripped
 * references token for token. opts NULL: cx_bleu_defaults(). n = 0 gives an
 * all-zero result. Errors (CX_ERR_ARG, *out zeroed): NULL pointers, n < 0,
 * n_max out of range, a candidate without references, a negative length,
 * NULL ids with a positive length. */
cx_status cx_bleu(const cx_token_seq *cands, int n, const cx_token_seq *refs, const int *ref_start,
                  const cx_bleu_opts *opts, cx_bleu_result *out);

/* ================================================================ captioned canvases */
#define CX_CAPTION_GRAMMAR 1        /* grammar version written to saved sets */
#define CX_CAP_PAD 0
#define CX_CAP_START 1
#define CX_CAP_END 2
#define CX_CAP_UNK 3
#define CX_CAPTION_MAX_ITEMS 3
#define CX_CAPTION_MAX_REFS 6
#define CX_CAPTION_MAX_LEN 12       /* <start>, at most 10 words, <end> */

typedef enum { CX_CAPTION_FASHION = 0, CX_CAPTION_DIGITS = 1 } cx_caption_classes;

typedef struct cx_caption_opts {
    int height, width;          /* canvas size (default 64 x 64) */
    int min_items, max_items;   /* items per canvas, 1 <= min <= max <= 3 (default 1, 3) */
    int min_size, max_size;     /* item side in pixels: each item is scaled (bilinear) to a
                                   side drawn uniformly in [min, max]; 28 = unscaled
                                   (default 28, 28) */
    int gap;                    /* at least this many empty pixels between two items'
                                   boxes along x or y (default 2) */
    float repeat_prob;          /* probability that item k > 0 repeats the class of an
                                   earlier item (a uniform one of them; a different image
                                   of that class when the pool has one), so counts
                                   ("two bags") are common (default 0.25); otherwise the
                                   image is drawn uniformly from the pool */
    cx_caption_classes classes; /* names of the labels 0..9 (default CX_CAPTION_FASHION) */
    const int *pool;            /* the image indices the canvases may use (NULL: all
                                   images of the dataset); not copied */
    int n_pool;
    const char *split;          /* a label saved with the set ("train", "test"; NULL: "") */
} cx_caption_opts;
cx_caption_opts cx_caption_defaults(void);

/* A set of N captioned canvases. Every tensor is persistent and owned by the
 * set. Items k >= n_items[i] of canvas i hold class -1, box 0 and source -1. */
typedef struct cx_caption_set {
    int n;                      /* canvases */
    int height, width;
    cx_caption_classes classes;
    int n_captions;             /* M: the references of all canvases */
    int max_len;                /* L = CX_CAPTION_MAX_LEN */
    cx_tensor *images;          /* F32 [N, 1, H, W], background 0, values in [0, 1] */
    cx_tensor *n_items;         /* I32 [N], 1..3 */
    cx_tensor *item_class;      /* I32 [N, 3] labels, in the order the items were placed */
    cx_tensor *item_box;        /* I32 [N, 3, 4] x, y, w, h of the pasted image (w = h = its size) */
    cx_tensor *item_src;        /* I32 [N, 3] index of the source image in the dataset */
    cx_tensor *captions;        /* I32 [M, L]: <start> words <end>, then <pad> */
    cx_tensor *caption_len;     /* I32 [M]: tokens including <start> and <end> */
    cx_tensor *ref_start;       /* I32 [N + 1]: canvas i's references are captions
                                   ref_start[i] .. ref_start[i+1] - 1, canonical first */
    int vocab_size;
    char **words;               /* [vocab_size]: words[id] */
    char *split;                /* the opts' label ("" when none) */
    uint64_t seed;
    char *recipe;               /* the generator's options as text, e.g. "height=64 width=64
                                   items=1-3 size=28-28 gap=2 repeat=0.25 pool=60000" */
} cx_caption_set;

/* Make n canvases from the images of `images`: x F32 with 28 * 28 values per
 * example ([N, 784] as cx_dataset_load_idx gives, [N, 28, 28] or
 * [N, 1, 28, 28]), y I32 or I64 [N] labels 0..9. Every draw comes from a
 * private stream cx_rng_new(seed) (the thread's streams are not touched), so
 * the same data, seed and options give the same set, byte for byte. Per
 * canvas: the number of items, then each item's image (see repeat_prob) and
 * size, then the positions: uniform among the positions that keep the gap to
 * the items already placed (placement starts over, with the same items, when
 * an item does not fit). Only pool images are used: make training canvases
 * from training images only and test canvases from test images only (the
 * train and t10k files, or disjoint pools of one file), and item_src records
 * which image went where. Pasted pixels are clamped to [0, 1] (NaN to 0).
 * Memory: 4 H W bytes per canvas (16 KiB at 64x64). Errors (*out NULL):
 * CX_ERR_ARG for n <= 0, NULL arguments, an empty dataset or pool, a pool
 * index out of range, options out of range or a canvas too small (2 *
 * max_size + gap must fit in both sides when max_items > 1; a canvas whose
 * items still find no layout in 1000 tries, which that bound makes
 * unlikely, is reported the same way), CX_ERR_SHAPE for images that are not
 * 28x28 or labels that do not match, CX_ERR_FORMAT for a pool image whose
 * label is outside 0..9. */
cx_status cx_caption_generate(const cx_dataset *images, int n, uint64_t seed, const cx_caption_opts *opts,
                              cx_caption_set **out);
void cx_caption_set_free(cx_caption_set *s); /* NULL is fine */

/* The references of one canvas under the grammar: n_items (1..3) items with
 * labels cls[k] (0..9) and boxes box[4k .. 4k+3] = x, y, w, h (w, h >= 1).
 * Writes up to CX_CAPTION_MAX_REFS captions of CX_CAPTION_MAX_LEN ids each
 * (<start> words <end> <pad>...) into ids (row r at ids + r * CX_CAPTION_MAX_LEN)
 * and their lengths into lens; returns their number (>= 1), canonical first.
 * Errors (cx_fatal): arguments out of range. Overlapping boxes are allowed
 * here (a pair related in neither direction then just has no statement). */
int cx_caption_describe(cx_caption_classes classes, int n_items, const int32_t *cls, const int32_t *box,
                        int32_t *ids, int32_t *lens);
/* The vocabulary of a class set: its size, and its words in *words (static
 * strings, may be NULL). */
int cx_caption_vocab(cx_caption_classes classes, const char *const **words);
/* Id of a word in the set's vocabulary (CX_CAP_UNK when absent). */
int cx_caption_word_id(const cx_caption_set *s, const char *word);
/* Ids to text, snprintf-style (at most cap bytes with the NUL; returns the
 * full length): the words separated by single spaces, <start> and <pad>
 * skipped, stopping at <end>; ids out of range print as "<unk>". */
size_t cx_caption_decode(const cx_caption_set *s, const int32_t *ids, int n, char *buf, size_t cap);
/* Text to ids: [<start>, words..., <end>] (words split at spaces; an unknown
 * word is <unk>) into ids[0 .. cap-1], *len the count. CX_ERR_ARG when it
 * does not fit. */
cx_status cx_caption_encode(const cx_caption_set *s, const char *text, int32_t *ids, int cap, int *len);

/* Save atomically as safetensors: the tensors under the field names above
 * ("images", "n_items", "item_class", "item_box", "item_src", "captions",
 * "caption_len", "ref_start") and metadata format = "cortex-caption-set",
 * grammar = "1", classes = "fashion-mnist" | "mnist-digits", vocab = the
 * words joined by spaces, split, seed, and the generator's options (opts,
 * informative). */
cx_status cx_caption_save(const cx_caption_set *s, const char *path);
/* Load a saved set and check it entirely (CX_ERR_FORMAT "<path>: <problem>",
 * *out NULL): format tag, grammar version, class set, vocabulary, every
 * tensor's dtype and shape, item counts, labels, boxes inside the canvas,
 * pixel values finite in [0, 1], caption ids, lengths and padding, and that
 * each canvas's captions are exactly the grammar's references for its items. */
cx_status cx_caption_load(const char *path, cx_caption_set **out);

/* ---------------------------------------------------------------- training batches
 * What a captioning model trains on with teacher forcing: the canvases of a
 * minibatch and one reference caption each, split into the decoder's input
 * (the caption without its last token) and its target (the caption without
 * <start>), padded to the longest caption of the batch, time-major as the
 * recurrent layers and cx_seq_cross_entropy take them:
 *
 *   caption  <start> a bag left of a coat <end>         (caption_len 8)
 *   input    <start> a bag left of a coat               t = 0 .. 6, then <pad>
 *   target   a bag left of a coat <end>                 t = 0 .. 6, then <pad>
 *   lengths  7 = caption_len - 1: the real steps
 *
 *   cx_caption_batch b;
 *   cx_caption_make_batch(set, idx, 64, 0, &b);          // canonical references
 *   ... logits [b.steps, 64, V] from b.images and b.input ...
 *   loss = cx_seq_cross_entropy(logits, b.target, b.lengths, false, CX_REDUCE_MEAN);
 */
#define CX_CAPTION_REF_RANDOM (-1)
typedef struct cx_caption_batch {
    int n;             /* canvases in the batch */
    int steps;         /* T: the longest lengths[b] */
    cx_tensor *images; /* F32 [n, 1, H, W]: the canvases (copies) */
    cx_tensor *input;  /* I32 [T, n]: input[t, b] = caption token t (from <start>), <pad> for t >= lengths[b] */
    cx_tensor *target; /* I32 [T, n]: target[t, b] = caption token t + 1 (up to <end>), <pad> for t >= lengths[b] */
    int *lengths;      /* [n]: caption_len - 1 of each caption used */
    int *caption;      /* [n]: the caption row used for each canvas (an index into s->captions) */
} cx_caption_batch;

/* Fill *out with the batch of canvases idx[0 .. n-1] (repeats allowed).
 * ref >= 0: each canvas's reference number ref (0 = the canonical caption),
 * or its canonical caption when it has no more than ref references;
 * CX_CAPTION_REF_RANDOM: a reference drawn uniformly for each canvas with
 * cx_rand_below (the thread's current stream, one draw per canvas in order).
 * Every tensor and array is a step allocation of the current arena (released
 * by cx_step_reset). Errors (CX_ERR_ARG, *out zeroed): NULL arguments, n < 1,
 * an index out of range, ref < -1. */
cx_status cx_caption_make_batch(const cx_caption_set *s, const int *idx, int n, int ref, cx_caption_batch *out);

/* BLEU-1..4 and exact match of one caption per canvas (cands[i] for canvas i,
 * n = s->n) against the canvas's references; <start> and <pad> are dropped,
 * each sequence ends at its first <end> (cx_bleu with N = 4, standard counts). */
cx_status cx_caption_bleu(const cx_caption_set *s, const cx_token_seq *cands, cx_bleu_result *out);

/* A PNG of canvases idx[0 .. n-1] in a grid of `cols` columns (<= 0: 4), each
 * enlarged 3x with its references written under it (canonical first, in
 * black, the others in grey) and, when preds is not NULL, preds[j] for
 * canvas idx[j] in green (equal to a reference) or red. Errors: CX_ERR_ARG
 * (n < 1, an index out of range, NULL arguments), PNG write errors. */
cx_status cx_caption_png(const cx_caption_set *s, const int *idx, int n, const cx_token_seq *preds, int cols,
                         const char *path);

#ifdef __cplusplus
}
#endif
#endif
