/* cortex charlm -- a character-level language model (the course's case
 * study), an LSTM or a Transformer: train on a text file, sample from it,
 * evaluate bits per character.
 *
 *   cortex charlm train --text FILE [--arch lstm|transformer] [options]
 *   cortex charlm sample MODEL [--prime TEXT] [--length N] [--temperature T] [--top-k K]
 *                              [--beam K [--stop CHAR] [--alpha A]]
 *   cortex charlm eval MODEL --text FILE
 */
#include "cli.h"
#include <cortex/dist.h>
#include <cortex/charlm.h>
#include <cortex/transformer.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cmd_charlm(int argc, char **argv);

/* Id of the character a sample starts from when there is no prime: a
 * newline, else a space, else id 1. */
static int default_start(const cx_vocab *v) {
    int id = cx_vocab_id(v, '\n');
    if (id == CX_VOCAB_UNK) id = cx_vocab_id(v, ' ');
    return id == CX_VOCAB_UNK ? 1 : id;
}

/* Print n ids as UTF-8. */
static void print_ids(FILE *o, const cx_vocab *v, const int32_t *ids, int64_t n) {
    size_t need = cx_vocab_decode(v, ids, n, NULL, 0);
    char *s = malloc(need + 1);
    if (!s) return;
    cx_vocab_decode(v, ids, n, s, need + 1);
    fwrite(s, 1, need, o);
    free(s);
}

/* ---- a plain PyTorch char-LSTM with a vocabulary file (--vocab)
 *
 * The model file is the state_dict of the CharLM class of cortex/charlm.h
 * (embed.weight [V, E], lstm.weight_ih_l0 ... [4H, *], fc.weight [V, H],
 * fc.bias [V]) saved with safetensors, without Cortex metadata; the sizes come
 * from the tensors. The vocabulary file is UTF-8 text whose k-th character is
 * the character of id k (every character once, V of them, nothing else: no
 * final newline unless it is the last character of the vocabulary), e.g.
 *   open("vocab.txt", "w", encoding="utf-8", newline="").write("".join(itos))
 * Such a model has no <unk> id. Cortex's vocabularies keep id 0 for <unk>, so
 * the model is loaded with one more output: the PyTorch ids are mapped to
 * Cortex ids (rows of embed.weight, fc.weight and fc.bias moved, the LSTM
 * unchanged) and the extra <unk> row gets a zero embedding, zero weights and
 * a bias of -1e30, so its probability is exactly 0 and the other characters'
 * probabilities are PyTorch's. Text with a character outside the vocabulary
 * is refused (the PyTorch model cannot score it). */
static cx_status load_pytorch_lm(const char *path, const char *vocab_path, cx_module **out, cx_vocab **vout) {
    *out = NULL;
    *vout = NULL;
    void *buf = NULL;
    size_t nb = 0;
    int32_t *cps = NULL;
    int64_t V = 0;
    cx_st_file *f = NULL;
    cx_vocab *voc = NULL;
    cx_module *lm = NULL;
    cx_status st = cx_read_file(vocab_path, &buf, &nb, 1 << 22);
    if (!st && (st = cx_utf8_decode(buf, nb, &cps, &V)))
        st = cx_set_error(CX_ERR_FORMAT, "%s: %s", vocab_path, cx_last_error());
    if (!st && V < 2) st = cx_set_error(CX_ERR_FORMAT, "%s: a vocabulary file needs at least 2 characters, it has %lld",
                                        vocab_path, (long long)V);
    for (int64_t i = 0; !st && i < V; i++)
        for (int64_t j = 0; j < i; j++)
            if (cps[i] == cps[j]) {
                st = cx_set_error(CX_ERR_FORMAT,
                                  "%s: character U+%04X is there twice (ids %lld and %lld); the file holds each "
                                  "character once, in id order, with no final newline",
                                  vocab_path, (unsigned)cps[i], (long long)j, (long long)i);
                break;
            }
    if (!st) st = cx_st_load(path, &f);
    const cx_tensor *emb = f ? cx_st_get(f, "embed.weight") : NULL, *whh = f ? cx_st_get(f, "lstm.weight_hh_l0") : NULL;
    if (!st && (!emb || emb->ndim != 2 || !whh || whh->ndim != 2))
        st = cx_set_error(CX_ERR_FORMAT,
                          "%s: not a char-LSTM state_dict (embed.weight [V, E], lstm.weight_hh_l0 [4H, H], ... "
                          "as the CharLM of cortex/charlm.h)",
                          path);
    if (!st && emb->shape[0] != V)
        st = cx_set_error(CX_ERR_SHAPE, "%s has %lld characters but embed.weight of %s has %d rows", vocab_path,
                          (long long)V, path, emb->shape[0]);
    int L = 0;
    while (!st && L < 64) {
        char nm[64];
        snprintf(nm, sizeof nm, "lstm.weight_ih_l%d", L);
        if (!cx_st_get(f, nm)) break;
        snprintf(nm, sizeof nm, "lstm.weight_ih_l%d_reverse", L);
        if (cx_st_get(f, nm)) st = cx_set_error(CX_ERR_FORMAT, "%s: a bidirectional LSTM is not a language model", path);
        L++;
    }
    if (!st) {
        cx_charlm_config cfg = {(int)V + 1, emb->shape[1], whh->shape[1], L, 0.0f};
        if (L < 1 || cfg.embed < 1 || cfg.hidden < 1 || whh->shape[0] != 4 * cfg.hidden || cfg.embed > 1 << 16 ||
            cfg.hidden > 1 << 16)
            st = cx_set_error(CX_ERR_FORMAT, "%s: unexpected LSTM sizes (%d layers, lstm.weight_hh_l0 [%d, %d])", path,
                              L, whh->shape[0], whh->shape[1]);
        else
            lm = cx_charlm_new(&cfg);
    }
    if (!st) voc = cx_vocab_build(cps, V, 1);
    /* check every tensor, then copy */
    cx_state_dict sd = {0};
    if (lm) cx_module_state_dict(lm, &sd);
    for (int pass = 0; !st && pass < 2; pass++)
        for (int i = 0; !st && i < sd.n; i++) {
            cx_tensor *dst = sd.t[i];
            const cx_tensor *src = cx_st_get(f, sd.names[i]);
            bool remap = !strcmp(sd.names[i], "embed.weight") || !strncmp(sd.names[i], "fc.", 3);
            if (pass == 0) {
                bool ok = src && src->dtype == dst->dtype && src->ndim == dst->ndim;
                for (int k = 0; ok && k < dst->ndim; k++)
                    ok = src->shape[k] == dst->shape[k] - (remap && k == 0 ? 1 : 0);
                if (!ok) {
                    char want[96];
                    int sh[CX_MAX_DIMS];
                    memcpy(sh, dst->shape, sizeof sh);
                    if (remap) sh[0]--;
                    size_t k = (size_t)snprintf(want, sizeof want, "[");
                    for (int d = 0; d < dst->ndim; d++) k += (size_t)snprintf(want + k, sizeof want - k, "%s%d", d ? ", " : "", sh[d]);
                    snprintf(want + k, sizeof want - k, "]");
                    st = cx_set_error(src ? CX_ERR_SHAPE : CX_ERR_NOTFOUND, "%s: tensor '%s' %s (expected %s)", path,
                                      sd.names[i], src ? "has another shape or type" : "is missing", want);
                }
                continue;
            }
            if (!remap) {
                memcpy(dst->data, src->data, (size_t)dst->numel * sizeof(float));
                continue;
            }
            int64_t row = dst->numel / dst->shape[0];
            float *d = dst->data;
            const float *s0 = src->data;
            for (int64_t k = 0; k < row; k++) d[k] = !strcmp(sd.names[i], "fc.bias") ? -1e30f : 0.0f;
            for (int64_t p = 0; p < V; p++) {
                int id = cx_vocab_id(voc, cps[p]);
                memcpy(d + (int64_t)id * row, s0 + p * row, (size_t)row * sizeof(float));
            }
        }
    if (lm) cx_state_dict_free(&sd);
    if (st) {
        cx_module_free(lm);
        cx_vocab_free(voc);
    } else {
        *out = lm;
        *vout = voc;
    }
    cx_st_free(f);
    free(cps);
    free(buf);
    return st;
}

/* A Cortex char-LM file, or (with vocab_path) a plain PyTorch one. */
static cx_status load_lm(const char *path, const char *vocab_path, cx_module **lm, cx_vocab **voc) {
    if (vocab_path) return load_pytorch_lm(path, vocab_path, lm, voc);
    cx_status st = cx_charlm_load(path, lm, voc);
    if (st && strstr(cx_last_error(), "cortex.arch is missing")) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        st = cx_set_error(st, "%s; a plain PyTorch char-LSTM state_dict loads with --vocab FILE (its vocabulary)", msg);
    }
    return st;
}

#define VOCAB_FLAG                                                                                                    \
    {"vocab", "vocabulary file of a plain PyTorch char-LSTM (no Cortex metadata): UTF-8 text, the k-th character is " \
              "id k's; no <unk> id",                                                                                  \
     false, NULL}

/* Mean cross-entropy (nats per character) of a model over an id stream, with
 * the state carried through B parallel streams of T-step chunks (no grad,
 * eval mode, the current arena reset after each chunk). NAN when the stream
 * has fewer than 2 ids. */
static double eval_nats(cx_module *lm, const cx_tensor *ids, int B, int T, int64_t *n_chars) {
    *n_chars = 0;
    if (ids->numel < 2) return NAN;
    if ((int64_t)B + 1 > ids->numel) B = (int)(ids->numel - 1);
    bool training = cx_is_training();
    cx_set_training(false);
    cx_no_grad_begin();
    cx_bptt_loader *ld = cx_bptt_new(ids, B, T, false);
    cx_tensor *h = NULL, *c = NULL, *x, *y;
    double sum = 0;
    int64_t n = 0;
    while (cx_bptt_next(ld, &x, &y)) {
        cx_charlm_out o = cx_charlm_forward(lm, x, h, c);
        sum += cx_item(cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_SUM));
        n += y->numel;
        cx_charlm_carry(&h, &c, o);
        cx_step_reset();
    }
    cx_bptt_free(ld);
    cx_tensor_free(h);
    cx_tensor_free(c);
    cx_no_grad_end();
    cx_set_training(training);
    *n_chars = n;
    return n ? sum / (double)n : NAN;
}

/* A sample of `len` characters from the newline, printed to stdout. The
 * caller's PRNG stream is left untouched (saved and restored) so that
 * sampling during training does not change the training run. */
static void print_sample(cx_module *lm, const cx_vocab *v, int len, float temperature, uint64_t seed) {
    cx_rng_state saved = cx_rng_get();
    cx_seed(seed);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, lm);
    d.ban_unk = true;
    void *st = calloc(1, d.dec.state_bytes);
    int *out = malloc((size_t)len * sizeof *out);
    int32_t *o32 = malloc((size_t)len * sizeof *o32);
    int n = 0;
    if (st && out && o32 &&
        cx_decode_sample(&d.dec, st, default_start(v), -1, len, temperature, 0, out, &n, NULL) == CX_OK) {
        for (int i = 0; i < n; i++) o32[i] = out[i];
        print_ids(stdout, v, o32, n);
        if (n == 0 || out[n - 1] != cx_vocab_id(v, '\n')) putchar('\n');
    }
    free(st);
    free(out);
    free(o32);
    cx_charlm_decoder_free(&d);
    cx_rng_set(saved);
}

static cx_status save_model(const char *path, cx_module *lm, const cx_vocab *v, double val_bpc) {
    char vb[32];
    snprintf(vb, sizeof vb, "%.4f", val_bpc);
    const char *mk[] = {"cortex.charlm.val_bpc"}, *mv[] = {vb};
    return cx_charlm_save(path, lm, v, NULL, mk, mv, isfinite(val_bpc) ? 1 : 0);
}

/* ------------------------------------------------------------------ the training task
 * Truncated BPTT over a cx_bptt_loader for the library's trainer: the LSTM
 * state is carried from batch to batch (and kept in mid-epoch checkpoints as
 * charlm.state.h / charlm.state.c), optionally with scheduled sampling. A
 * Transformer carries nothing: each [seq, batch] chunk is its own causal
 * context (cx_charlm_forward gives it no states, so the same code runs). */
typedef struct {
    const char *cmd, *out;
    cx_module *lm;
    const cx_vocab *voc;
    cx_bptt_loader *ld;
    const cx_tensor *val;
    int batch, seq;
    cx_tensor *h, *c, *x, *y; /* carried states (persistent); the current batch */
    cx_charlm_out o;          /* forward pass of the current batch */
    bool use_ss;
    cx_ss_schedule ss;
    int32_t *mix, *pred;
    double last_val;          /* bits/char of the last validation */
    int64_t last_nv;          /* characters it scored */
    int sample_every, sample_len, seed;
    double sample_temp;
    /* data-parallel (under mpirun): this rank's columns [b0, b0 + bl) of
     * each [seq, batch] chunk, each column its own stream of text; the whole
     * batch's carried states gathered at each evaluation for the checkpoint */
    int nproc, b0, bl;
    cx_tensor *gh, *gc;
    int64_t g_step;
} lm_task;

/* columns [b0, b0 + n) of an I32 [T, B] tensor, as a step tensor */
static cx_tensor *cols_i32(const cx_tensor *x, int b0, int n) {
    const int T = x->shape[0], B = x->shape[1];
    cx_tensor *y = cx_empty(CX_I32, CX_SHAPE(T, n));
    for (int i = 0; i < T; i++) memcpy(CX_I32P(y) + (size_t)i * n, CX_I32P(x) + (size_t)i * B + b0, (size_t)n * sizeof(int32_t));
    return y;
}

static int lm_begin(void *user, const cx_train_pos *pos) {
    lm_task *t = user;
    cx_bptt_reset(t->ld);
    if (pos->batch == 0) { /* a new epoch starts from zero states (resuming mid-epoch keeps the saved ones) */
        cx_tensor_free(t->h);
        cx_tensor_free(t->c);
        t->h = t->c = NULL;
    }
    return cx_bptt_num_batches(t->ld);
}

static bool lm_next(void *user, const cx_train_pos *pos) {
    (void)pos;
    lm_task *t = user;
    if (!cx_bptt_next(t->ld, &t->x, &t->y)) return false;
    if (t->nproc > 1) {
        t->x = cols_i32(t->x, t->b0, t->bl);
        t->y = cols_i32(t->y, t->b0, t->bl);
    }
    return true;
}

static cx_tensor *lm_loss(void *user, const cx_train_pos *pos, int64_t *count) {
    lm_task *t = user;
    cx_tensor *x = t->x;
    const int T = x->shape[0], B = x->shape[1];
    if (t->use_ss) {
        /* one no-grad pass predicts each next character; inputs 1.. of the
         * chunk then take the previous prediction with prob 1 - eps */
        cx_no_grad_begin();
        bool tr = cx_is_training();
        cx_set_training(false);
        cx_tensor *am = cx_argmax(cx_charlm_forward(t->lm, x, t->h, t->c).logits, 2);
        cx_set_training(tr);
        cx_no_grad_end();
        memcpy(t->pred, am->data, (size_t)T * B * sizeof(int32_t));
        memcpy(t->mix, x->data, (size_t)T * B * sizeof(int32_t));
        if (T > 1) cx_ss_mix(&t->ss, pos->step, CX_I32P(x) + B, t->pred, t->mix + B, (T - 1) * B);
        x = cx_from_i32(t->mix, x->shape, 2);
    }
    t->o = cx_charlm_forward(t->lm, x, t->h, t->c);
    *count = (int64_t)T * B;
    return cx_seq_cross_entropy(t->o.logits, t->y, NULL, false, CX_REDUCE_MEAN);
}

static void lm_after_step(void *user, const cx_train_pos *pos) {
    (void)pos;
    lm_task *t = user;
    cx_charlm_carry(&t->h, &t->c, t->o); /* copy out + detach (TBPTT) */
}

/* Data-parallel: every rank's carried states [L, bl, H] into the whole
 * batch's [L, B, H] (a sum of zero-padded copies; every rank takes part). */
static void gather_states(lm_task *t, int64_t step) {
    cx_tensor_free(t->gh);
    cx_tensor_free(t->gc);
    t->gh = t->gc = NULL;
    t->g_step = -1;
    if (cx_tlm_is(t->lm)) return;
    cx_charlm_config cfg = cx_charlm_get_config(t->lm);
    cx_tensor *g[2];
    const cx_tensor *mine[2] = {t->h, t->c};
    for (int k = 0; k < 2; k++) {
        g[k] = cx_tensor_new(CX_F32, CX_SHAPE(cfg.layers, t->batch, cfg.hidden));
        if (mine[k] && mine[k]->shape[1] == t->bl)
            for (int l = 0; l < cfg.layers; l++)
                memcpy(CX_F(g[k]) + ((size_t)l * t->batch + t->b0) * cfg.hidden,
                       CX_F(mine[k]) + (size_t)l * t->bl * cfg.hidden, (size_t)t->bl * cfg.hidden * sizeof(float));
        cx_dist_allreduce_sum_f32(CX_F(g[k]), g[k]->numel);
    }
    t->gh = g[0];
    t->gc = g[1];
    t->g_step = step;
}

static cx_status lm_evaluate(void *user, const cx_train_info *info, cx_metrics *out) {
    lm_task *t = user;
    if (t->nproc > 1 && info->pos.batch > 0) gather_states(t, info->pos.step);
    double nats = eval_nats(t->lm, t->val, t->batch, t->seq, &t->last_nv);
    t->last_val = cx_bits_per_char(nats);
    cx_metrics_set(out, "train_bpc", cx_bits_per_char(info->train_loss));
    cx_metrics_set(out, "val_loss", nats);
    cx_metrics_set(out, "val_bpc", t->last_val);
    return CX_OK;
}

static cx_status lm_save_state(void *user, const cx_train_pos *pos, cx_ckpt *ck) {
    lm_task *t = user;
    if (t->nproc > 1) { /* the whole batch's states, gathered at this step's evaluation */
        if (pos->batch > 0 && t->gh && t->g_step == pos->step) {
            cx_ckpt_add_tensor(ck, "charlm.state.h", t->gh);
            cx_ckpt_add_tensor(ck, "charlm.state.c", t->gc);
        }
        return CX_OK;
    }
    if (pos->batch > 0 && t->h && t->c) {
        cx_ckpt_add_tensor(ck, "charlm.state.h", t->h);
        cx_ckpt_add_tensor(ck, "charlm.state.c", t->c);
    }
    return CX_OK;
}

static cx_status lm_load_state(void *user, const cx_st_file *f, const char *path, const cx_train_pos *pos) {
    lm_task *t = user;
    char want[64];
    snprintf(want, sizeof want, "batch=%d,seq=%d", t->batch, t->seq);
    const char *tr = cx_st_meta(f, "cortex.charlm.train");
    if (!tr) return cx_set_error(CX_ERR_FORMAT, "%s: not a charlm checkpoint (save one with --checkpoint)", path);
    if (strcmp(tr, want))
        return cx_set_error(CX_ERR_ARG, "%s: was written with other --batch / --seq values: %s", path, tr);
    if (pos->batch == 0 || cx_tlm_is(t->lm)) return CX_OK; /* a Transformer carries no state */
    /* a checkpoint taken mid-epoch: the states carried into the next batch */
    const cx_tensor *sh = cx_st_get(f, "charlm.state.h"), *sc = cx_st_get(f, "charlm.state.c");
    cx_charlm_config cfg = cx_charlm_get_config(t->lm);
    int shape[3] = {cfg.layers, t->batch, cfg.hidden};
    cx_tensor *h = cx_tensor_new(CX_F32, shape, 3), *c = cx_tensor_new(CX_F32, shape, 3);
    if (!sh || !sc || !cx_same_shape(sh, h) || !cx_same_shape(sc, c) || sh->dtype != CX_F32 || sc->dtype != CX_F32) {
        cx_tensor_free(h);
        cx_tensor_free(c);
        return cx_set_error(CX_ERR_FORMAT, "%s: carried states do not fit the model", path);
    }
    memcpy(h->data, sh->data, (size_t)h->numel * sizeof(float));
    memcpy(c->data, sc->data, (size_t)c->numel * sizeof(float));
    if (t->nproc > 1) { /* this rank's columns of the whole batch's states */
        cx_tensor *part[2];
        cx_tensor *whole[2] = {h, c};
        for (int k = 0; k < 2; k++) {
            part[k] = cx_tensor_new(CX_F32, CX_SHAPE(cfg.layers, t->bl, cfg.hidden));
            for (int l = 0; l < cfg.layers; l++)
                memcpy(CX_F(part[k]) + (size_t)l * t->bl * cfg.hidden,
                       CX_F(whole[k]) + ((size_t)l * t->batch + t->b0) * cfg.hidden,
                       (size_t)t->bl * cfg.hidden * sizeof(float));
            cx_tensor_free(whole[k]);
        }
        h = part[0];
        c = part[1];
    }
    cx_tensor_free(t->h);
    cx_tensor_free(t->c);
    t->h = h;
    t->c = c;
    return CX_OK;
}

/* A sample every --sample-every steps. */
static cx_status lm_on_step(void *user, const cx_train_info *in) {
    lm_task *t = user;
    if (!t->sample_every || in->pos.step % t->sample_every) return CX_OK;
    cx_trainer_clear_line(in->trainer);
    printf("--- sample at epoch %d, batch %d (step %lld, train %.3f bpc):\n", in->pos.epoch, in->pos.batch,
           (long long)in->pos.step, cx_bits_per_char(in->train_loss));
    print_sample(t->lm, t->voc, t->sample_len, (float)t->sample_temp,
                 (uint64_t)t->seed * 1000003u + (uint64_t)in->pos.step);
    printf("---\n");
    fflush(stdout);
    return CX_OK;
}

/* After every validation: its line, then the model file. */
static cx_status lm_on_eval(void *user, const cx_train_info *in) {
    lm_task *t = user;
    if (in->end_of_epoch)
        printf("epoch %d  train %.4f bpc  val %.4f bpc (%lld chars)  step %lld  %.0fs\n", in->pos.epoch,
               cx_bits_per_char(in->train_loss), t->last_val, (long long)t->last_nv, (long long)in->pos.step,
               in->pos.seconds);
    else
        printf("epoch %d batch %d/%d  step %lld  train %.4f bpc  val %.4f bpc  %.0fs\n", in->pos.epoch, in->pos.batch,
               in->pos.num_batches, (long long)in->pos.step, cx_bits_per_char(in->train_loss), t->last_val,
               in->pos.seconds);
    fflush(stdout);
    return cx_dist_is_root() ? save_model(t->out, t->lm, t->voc, t->last_val) : CX_OK;
}


/* ------------------------------------------------------------------ train */
static int charlm_train(int argc, char **argv) {
    cli_flag f[] = {
        {"text", "UTF-8 text file to learn", false, NULL},
        {"arch", "model: lstm or transformer", false, "lstm"},
        {"layers", "LSTM layers / Transformer blocks (default 2 / 4)", false, NULL},
        {"hidden", "LSTM hidden size", false, NULL},
        {"embed", "character embedding size (default 64 / 256)", false, NULL},
        {"dropout", "dropout between LSTM layers / on the Transformer's embeddings and residual branches", false,
         "0"},
        {"heads", "Transformer: attention heads (default 4)", false, NULL},
        {"context", "Transformer: positions, the longest sequence it reads (default: --seq)", false, NULL},
        {"ffn", "Transformer: feed-forward hidden size (default 4 x embed)", false, NULL},
        {"attn-dropout", "Transformer: dropout on the attention weights", false, NULL},
        {"tie", "Transformer: the output layer's weight is the embedding's", true, NULL},
        {"seq", "characters per chunk: the truncated-BPTT length / the Transformer's training window", false,
         "64"},
        {"batch", "parallel streams per batch", false, "32"},
        {"lr", "Adam learning rate", false, "2e-3"},
        {"clip", "clip gradients to this global norm (0: off)", false, "5"},
        {"epochs", "passes over the training text (default 10 without --minutes)", false, NULL},
        {"minutes", "stop after this many minutes of training (this run)", false, NULL},
        {"steps", "stop after this many optimiser steps in all (0: no limit)", false, "0"},
        {"limit", "use only the first N characters of the text (0: all)", false, "0"},
        {"min-count", "characters seen fewer times map to <unk>", false, "1"},
        {"val-frac", "fraction of the text (its end) held out for validation", false, "0.05"},
        {"val-every", "also validate (and checkpoint) every N batches (0: per epoch only)", false, "0"},
        {"sample-every", "print a sample every N batches (0: off)", false, "0"},
        {"sample-len", "characters per sample", false, "200"},
        {"sample-temp", "temperature of those samples", false, "0.8"},
        {"teacher-forcing", "full, or scheduled sampling: ss-linear, ss-exp, ss-invsigmoid", false, "full"},
        {"ss-k", "scheduled sampling k (default 1 / 0.9999 / 1000 for linear / exp / invsigmoid)", false, NULL},
        {"ss-c", "linear decay per step", false, "1e-4"},
        {"ss-min", "lowest teacher-forcing probability", false, "0.5"},
        {"out", "model file (safetensors), saved atomically after every epoch", false, "charlm.safetensors"},
        {"metrics", "metrics CSV, one row per validation (default: none)", false, NULL},
        {"checkpoint", "also save a checkpoint (model + Adam + PRNG + position) here", false, NULL},
        {"resume", "continue exactly from a checkpoint written by --checkpoint (the same flags and text: checked)",
         false, NULL},
        {"resume-override", "resume even if flags or text differ from the checkpoint's (says which)", true, NULL},
        {"seed", "PRNG seed", false, "1"},
        {"threads", "threads for OpenMP and the BLAS (0: all cores)", false, "1"},
        {"check-numerics", "stop at the first op producing NaN/Inf and name it", true, NULL},
        {"quiet", "no progress bar", true, NULL},
    };
    const char *cmd = "charlm train";
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "--text FILE [options]",
                  "Train a character-level language model on a UTF-8 text: --arch lstm (the default:\n"
                  "embedding -> LSTM layers -> linear) or --arch transformer (embedding + learned\n"
                  "positions -> pre-norm blocks of causal multi-head self-attention and a GELU\n"
                  "feed-forward -> LayerNorm -> linear; GPT-2 init, optional weight tying). The text\n"
                  "is cut into --batch parallel streams, read --seq characters at a time: the LSTM\n"
                  "state is carried from chunk to chunk (and detached, truncated BPTT); a Transformer\n"
                  "carries nothing, each chunk is its own causal context. Adam, gradient clipping,\n"
                  "validation bits per character, samples while training; the model and checkpoints\n"
                  "are saved atomically.\n"
                  "Scheduled sampling (--teacher-forcing ss-*) is the one-pass parallel variant: a\n"
                  "no-grad pass predicts every position, then each input after the first of a chunk\n"
                  "is replaced by the previous position's prediction with probability 1 - eps_i.",
                  f, nf);
        return 0;
    }
    const char *arch = cli_get(f, nf, "arch");
    const bool tf_arch = !strcmp(arch, "transformer");
    if (!tf_arch && strcmp(arch, "lstm")) {
        fprintf(stderr, "cortex %s: unknown --arch '%s' (lstm, transformer)\n", cmd, arch);
        return 2;
    }
    static const char *const tf_only[] = {"heads", "context", "ffn", "attn-dropout", "tie"};
    for (int i = 0; i < 5; i++)
        if (!tf_arch && cli_get(f, nf, tf_only[i])) {
            fprintf(stderr, "cortex %s: --%s is a Transformer option (add --arch transformer)\n", cmd, tf_only[i]);
            return 2;
        }
    if (tf_arch && cli_get(f, nf, "hidden")) {
        fprintf(stderr, "cortex %s: --hidden is an LSTM option (the Transformer has --embed and --ffn)\n", cmd);
        return 2;
    }
    int layers = tf_arch ? 4 : 2, hidden = 256, embed = tf_arch ? 256 : 64, seq = 64, batch = 32, epochs = 10;
    int limit = 0, min_count = 1, heads = 4, context = 0, ffn = 0;
    int max_steps = 0, val_every = 0, sample_every = 0, sample_len = 200, seed = 1, threads = 1;
    double dropout = 0, attn_dropout = 0, lr = 2e-3, clip = 5, minutes = 0, val_frac = 0.05, sample_temp = 0.8;
    double ss_k = NAN, ss_c = 1e-4, ss_min = 0.5;
    if (!cli_int(cmd, f, nf, "layers", 1, 64, &layers) || !cli_int(cmd, f, nf, "hidden", 1, 1 << 16, &hidden) ||
        !cli_int(cmd, f, nf, "embed", 1, 1 << 16, &embed) || !cli_int(cmd, f, nf, "seq", 1, 1 << 20, &seq) ||
        !cli_int(cmd, f, nf, "batch", 1, 1 << 16, &batch) || !cli_int(cmd, f, nf, "epochs", 1, 1000000, &epochs) ||
        !cli_int(cmd, f, nf, "limit", 0, INT_MAX, &limit) || !cli_int(cmd, f, nf, "min-count", 1, INT_MAX, &min_count) ||
        !cli_int(cmd, f, nf, "val-every", 0, INT_MAX, &val_every) ||
        !cli_int(cmd, f, nf, "steps", 0, INT_MAX, &max_steps) ||
        !cli_int(cmd, f, nf, "sample-every", 0, INT_MAX, &sample_every) ||
        !cli_int(cmd, f, nf, "sample-len", 1, 1 << 20, &sample_len) ||
        !cli_int(cmd, f, nf, "seed", 0, INT_MAX, &seed) || !cli_int(cmd, f, nf, "threads", 0, 1024, &threads) ||
        !cli_int(cmd, f, nf, "heads", 1, 1 << 16, &heads) || !cli_int(cmd, f, nf, "context", 1, 1 << 20, &context) ||
        !cli_int(cmd, f, nf, "ffn", 1, 1 << 20, &ffn) ||
        !cli_double(cmd, f, nf, "attn-dropout", 0, 0.99, &attn_dropout) ||
        !cli_double(cmd, f, nf, "dropout", 0, 0.99, &dropout) || !cli_double(cmd, f, nf, "lr", 0, 100, &lr) ||
        !cli_double(cmd, f, nf, "clip", 0, 1e9, &clip) || !cli_double(cmd, f, nf, "minutes", 0, 1e6, &minutes) ||
        !cli_double(cmd, f, nf, "val-frac", 0, 0.9, &val_frac) ||
        !cli_double(cmd, f, nf, "sample-temp", 0, 100, &sample_temp) ||
        !cli_double(cmd, f, nf, "ss-k", 0, 1e12, &ss_k) || !cli_double(cmd, f, nf, "ss-c", 0, 1, &ss_c) ||
        !cli_double(cmd, f, nf, "ss-min", 0, 1, &ss_min))
        return 2;
    const char *text = cli_get(f, nf, "text"), *out = cli_get(f, nf, "out"), *ckpt = cli_get(f, nf, "checkpoint"),
               *resume = cli_get(f, nf, "resume"), *tf = cli_get(f, nf, "teacher-forcing"),
               *metrics = cli_get(f, nf, "metrics");
    if (!text) {
        fprintf(stderr, "cortex %s: --text FILE is required (see 'cortex %s --help')\n", cmd, cmd);
        return 2;
    }
    /* the files are written while training: find out now if they cannot be */
    if (!cli_check_writable(cmd, "out", out) || !cli_check_writable(cmd, "metrics", metrics) ||
        !cli_check_writable(cmd, "checkpoint", ckpt))
        return 2;
    if (tf_arch && !resume) {
        if (!context) context = seq;
        if (embed % heads) {
            fprintf(stderr, "cortex %s: --embed %d is not divisible by --heads %d\n", cmd, embed, heads);
            return 2;
        }
        if (seq > context) {
            fprintf(stderr, "cortex %s: --seq %d is longer than --context %d (the Transformer's positions)\n", cmd,
                    seq, context);
            return 2;
        }
    }
    if (cli_get(f, nf, "minutes") && !cli_get(f, nf, "epochs")) epochs = INT_MAX;
    if (cli_get(f, nf, "minutes") && minutes <= 0) {
        fprintf(stderr, "cortex %s: --minutes must be positive\n", cmd);
        return 2;
    }
    bool use_ss = strcmp(tf, "full") != 0;
    cx_ss_schedule ss = {CX_SS_LINEAR, 1.0, ss_c, ss_min};
    if (!strcmp(tf, "ss-linear")) ss.kind = CX_SS_LINEAR, ss.k = isnan(ss_k) ? 1.0 : ss_k;
    else if (!strcmp(tf, "ss-exp")) ss.kind = CX_SS_EXPONENTIAL, ss.k = isnan(ss_k) ? 0.9999 : ss_k;
    else if (!strcmp(tf, "ss-invsigmoid")) ss.kind = CX_SS_INVERSE_SIGMOID, ss.k = isnan(ss_k) ? 1000 : ss_k;
    else if (use_ss) {
        fprintf(stderr, "cortex %s: unknown --teacher-forcing '%s' (full, ss-linear, ss-exp, ss-invsigmoid)\n", cmd, tf);
        return 2;
    }
    if (use_ss && ((ss.kind == CX_SS_EXPONENTIAL && !(ss.k > 0 && ss.k < 1)) ||
                   (ss.kind == CX_SS_INVERSE_SIGMOID && !(ss.k >= 1)))) {
        fprintf(stderr, "cortex %s: --ss-k %g is invalid for %s (exp: 0 < k < 1, invsigmoid: k >= 1)\n", cmd, ss.k, tf);
        return 2;
    }
    cx_set_threads(threads);
    cx_seed((uint64_t)seed);
    cx_set_check_numerics(cli_get(f, nf, "check-numerics") != NULL);

    /* resume: the model and its vocabulary come from the checkpoint (the
     * trainer restores the rest: Adam, random streams, position, states) */
    cx_module *lm = NULL;
    cx_vocab *voc = NULL;
    if (resume) {
        cx_st_file *ck = NULL;
        if (cx_st_load(resume, &ck) || cx_charlm_from_st(ck, resume, &lm, &voc)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            cx_st_free(ck);
            return 1;
        }
        bool is_ckpt = voc && (cx_st_meta(ck, "cortex.checkpoint") || cx_st_get(ck, "cortex.rng_epoch"));
        cx_st_free(ck);
        if (!is_ckpt) {
            fprintf(stderr, "cortex %s: %s: not a charlm checkpoint (save one with --checkpoint)\n", cmd, resume);
            cx_module_free(lm);
            cx_vocab_free(voc);
            return 1;
        }
    }
    cx_tensor *ids = NULL, *train = NULL, *val = NULL;
    if (cx_text_load(text, min_count, &voc, &ids)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 1;
    }
    if (voc->size < 2) {
        fprintf(stderr, "cortex %s: --min-count %d leaves no character of %s (%lld characters) in the vocabulary, "
                        "only <unk>: lower --min-count\n", cmd, min_count, text, (long long)ids->numel);
        cx_module_free(lm);
        cx_vocab_free(voc);
        cx_tensor_free(ids);
        return 2;
    }
    if (limit > 0 && ids->numel > limit) {
        cx_tensor *cut = cx_tensor_new(CX_I32, (const int[]){limit}, 1);
        memcpy(cut->data, ids->data, (size_t)limit * sizeof(int32_t));
        cx_tensor_free(ids);
        ids = cut;
    }
    cx_text_split(ids, val_frac, &train, &val);
    if (train->numel < (int64_t)batch + seq) {
        fprintf(stderr, "cortex %s: %s: %lld training characters, --batch %d and --seq %d need at least %d\n", cmd,
                text, (long long)train->numel, batch, seq, batch + seq);
        cx_module_free(lm);
        cx_vocab_free(voc);
        cx_tensor_free(ids);
        cx_tensor_free(train);
        cx_tensor_free(val);
        return 2;
    }
    if (lm && cx_tlm_is(lm) && seq > cx_tlm_get_config(lm).context) {
        fprintf(stderr, "cortex %s: --seq %d is longer than the context %d of the model in %s\n", cmd, seq,
                cx_tlm_get_config(lm).context, resume);
        cx_module_free(lm);
        cx_vocab_free(voc);
        cx_tensor_free(ids);
        cx_tensor_free(train);
        cx_tensor_free(val);
        return 2;
    }
    /* what the text is, for --resume: its length and a fingerprint of its ids */
    char data_id[160];
    snprintf(data_id, sizeof data_id, "%lld characters, fingerprint %016llx", (long long)ids->numel,
             (unsigned long long)cli_fingerprint(0, ids->data, (size_t)ids->numel * sizeof(int32_t)));
    /* flags that do not change the trajectory, and those a resumed run takes
     * from the checkpoint when it leaves them unset (the model, the vocabulary) */
    static const char *const free_flags[] = {"text", "out", "metrics", "checkpoint", "resume", "resume-override",
                                             "threads", "quiet", "epochs", "minutes", "steps", "check-numerics",
                                             "val-every", "sample-every", "sample-len", "sample-temp", NULL};
    static const char *const inherit[] = {"arch", "layers", "hidden", "embed", "dropout", "heads", "context",
                                          "ffn", "attn-dropout", "tie", "min-count", NULL};
    bool resume_offsets = false; /* the checkpoint has the offsets' own stream (see below) */
    if (resume) {
        cx_st_file *ck = NULL;
        int crc = 0;
        if (cx_st_load(resume, &ck)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            crc = 1;
        } else {
            crc = cli_run_check(cmd, resume, ck, f, nf, free_flags, inherit, data_id,
                                cli_get(f, nf, "resume-override") != NULL);
            resume_offsets = cx_st_get(ck, "cortex.rng.charlm_offsets") != NULL;
        }
        cx_st_free(ck);
        if (crc) {
            cx_module_free(lm);
            cx_vocab_free(voc);
            cx_tensor_free(ids);
            cx_tensor_free(train);
            cx_tensor_free(val);
            return crc;
        }
    }
    if (!lm && tf_arch) {
        cx_tlm_config tc = cx_tlm_defaults(voc->size);
        tc.context = context;
        tc.embed = embed;
        tc.layers = layers;
        tc.heads = heads;
        tc.ffn = ffn;
        tc.dropout = (float)dropout;
        tc.attn_dropout = (float)attn_dropout;
        tc.tie = cli_get(f, nf, "tie") != NULL;
        lm = cx_tlm_new(&tc);
    } else if (!lm) {
        cx_charlm_config cfg = {voc->size, embed, hidden, layers, (float)dropout};
        lm = cx_charlm_new(&cfg);
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(lm, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = lr;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_bptt_loader *ld = cx_bptt_new(train, batch, seq, true);
    printf("text %s: %lld characters, vocabulary %d (<unk> included); %lld train, %lld validation\n", text,
           (long long)ids->numel, voc->size, (long long)train->numel, (long long)val->numel);
    if (cx_tlm_is(lm)) {
        cx_tlm_config tc = cx_tlm_get_config(lm);
        printf("model: Transformer, embedding %d + %d positions -> %d pre-norm blocks (%d heads, ffn %d)%s -> "
               "linear %d%s, %lld parameters\n",
               tc.embed, tc.context, tc.layers, tc.heads, tc.ffn, tc.dropout > 0 || tc.attn_dropout > 0 ? " (dropout)" : "",
               tc.vocab, tc.tie ? " (tied to the embedding)" : "", (long long)cx_params_count(&ps));
    } else {
        cx_charlm_config cfg = cx_charlm_get_config(lm);
        printf("model: embedding %d -> LSTM %d x %d%s -> linear %d, %lld parameters\n", cfg.embed, cfg.layers,
               cfg.hidden, cfg.dropout > 0 ? " (dropout)" : "", cfg.vocab, (long long)cx_params_count(&ps));
    }
    printf("training: Adam lr %g, clip %g, batch %d x seq %d, %d thread(s), GEMM %s, seed %d%s%s\n", lr, clip,
           batch, seq, cx_get_threads(), cx_gemm_describe(), seed, use_ss ? ", scheduled sampling " : "", use_ss ? tf : "");

    /* the loop, validation, checkpoints and resume: the library's trainer */
    int rc = 0;
    lm_task t = {.cmd = cmd, .out = out, .lm = lm, .voc = voc, .ld = ld, .val = val, .batch = batch, .seq = seq,
                 .use_ss = use_ss, .ss = ss, .last_val = NAN, .sample_every = sample_every,
                 .sample_len = sample_len, .seed = seed, .sample_temp = sample_temp};
    /* under mpirun: each rank trains on its columns of every chunk. The
     * chunk offsets must be the same on every rank: without dropout nothing
     * else draws from the current stream, which gives them as in one
     * process; with dropout (or when resuming a checkpoint that has it) they
     * come from a stream of their own, a copy of the current one, and each
     * rank's dropout from its own stream. */
    t.nproc = cx_dist_size();
    const int rank = cx_dist_rank();
    const bool rank_dropout = t.nproc > 1 && (dropout > 0 || attn_dropout > 0);
    const bool own_offsets = rank_dropout || resume_offsets;
    cx_rng ld_rng = *cx_rng_current();
    if (own_offsets) cx_bptt_set_rng(ld, &ld_rng);
    if (rank_dropout) cx_rng_seed(cx_rng_current(), (uint64_t)seed * 1000003u + 7919u * (uint64_t)(rank + 1));
    if (t.nproc > 1) {
        if (batch < t.nproc) {
            fprintf(stderr, "cortex %s: --batch %d is smaller than the %d processes: every process needs at least one "
                            "column of the batch\n", cmd, batch, t.nproc);
            rc = 1;
        }
        t.b0 = (int)((int64_t)batch * rank / t.nproc);
        t.bl = (int)((int64_t)batch * (rank + 1) / t.nproc) - t.b0;
        if (rank_dropout && resume && !resume_offsets) {
            fprintf(stderr, "cortex %s: %s was written by one process; with dropout it resumes in one process only "
                            "(the processes' dropout needs streams of their own)\n", cmd, resume);
            rc = 1;
        }
        if (batch % t.nproc)
            printf("data-parallel: %d processes, %d or %d of the batch's %d columns each\n", t.nproc, batch / t.nproc,
                   batch / t.nproc + 1, batch);
        else
            printf("data-parallel: %d processes, %d of the batch's %d columns each\n", t.nproc, batch / t.nproc, batch);
    }
    if (use_ss) {
        t.mix = malloc((size_t)seq * batch * sizeof *t.mix);
        t.pred = malloc((size_t)seq * batch * sizeof *t.pred);
        if (!t.mix || !t.pred) {
            fprintf(stderr, "cortex %s: out of memory\n", cmd);
            rc = 1;
        }
    }
    const char *mk[96], *mv[96];
    char geom[64], runbuf[2048];
    cx_charlm_meta md;
    cx_charlm_meta_init(&md, lm, voc);
    int nm = md.n;
    for (int i = 0; i < md.n; i++) mk[i] = md.keys[i], mv[i] = md.values[i];
    snprintf(geom, sizeof geom, "batch=%d,seq=%d", batch, seq);
    mk[nm] = "cortex.charlm.train", mv[nm++] = geom;
    mk[nm] = "cortex.charlm.text", mv[nm++] = text;
    nm += cli_run_meta(f, nf, free_flags, data_id, mk + nm, mv + nm, 96 - nm, runbuf, sizeof runbuf);
    cx_train_opts o = cx_train_defaults();
    o.epochs = cli_get(f, nf, "minutes") && !cli_get(f, nf, "epochs") ? 0 : epochs;
    o.max_steps = max_steps;
    o.minutes = minutes;
    o.clip = (float)clip;
    o.eval_every = val_every;
    o.metrics_path = metrics;
    o.checkpoint_path = ckpt;
    o.meta_keys = mk;
    o.meta_values = mv;
    o.n_meta = nm;
    o.quiet = cli_get(f, nf, "quiet") != NULL;
    o.unit = "chars";
    o.bits = true;
    o.on_step = lm_on_step;
    o.on_eval = lm_on_eval;
    o.hook_user = &t;
    o.data_parallel = t.nproc > 1;
    cx_train_task task = {&t, lm_begin, lm_next, lm_loss, lm_after_step, lm_evaluate, lm_save_state, lm_load_state, NULL};
    cx_trainer *tr = cx_trainer_new(&task, lm, opt, &o);
    if (own_offsets) cx_trainer_add_rng(tr, "charlm_offsets", &ld_rng);
    if (!rc && resume) {
        if (cx_trainer_resume(tr, resume)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
        } else {
            cx_train_pos p = cx_trainer_info(tr).pos;
            printf("resumed from %s at epoch %d, batch %d (step %lld)\n", resume, p.epoch, p.batch, (long long)p.step);
            if (rank_dropout) /* the resumed current stream is rank 0's: a stream per rank again */
                cx_rng_seed(cx_rng_current(), (uint64_t)seed * 1000003u + 7919u * (uint64_t)(rank + 1) +
                                                  0x9E3779B97F4A7C15ull * (uint64_t)p.step);
        }
    }
    fflush(stdout);
    double t0 = cx_now();
    if (!rc && cx_trainer_run(tr)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        rc = 1;
    }
    if (!rc) {
        cx_train_info in = cx_trainer_info(tr);
        printf("done: step %lld, %.1fs this run (%.0f chars/s training), validation %.4f bits/char; model saved to %s%s%s\n",
               (long long)in.pos.step, cx_now() - t0, (double)in.run_count / (in.run_seconds + 1e-9), t.last_val, out,
               ckpt ? ", checkpoint to " : "", ckpt ? ckpt : "");
    }
    cx_trainer_free(tr);
    cx_tensor_free(t.gh);
    cx_tensor_free(t.gc);
    cx_charlm_meta_free(&md);
    free(t.mix);
    free(t.pred);
    cx_tensor_free(t.h);
    cx_tensor_free(t.c);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(lm);
    cx_vocab_free(voc);
    cx_tensor_free(ids);
    cx_tensor_free(train);
    cx_tensor_free(val);
    return rc;
}

/* ------------------------------------------------------------------ sample */
/* --stop value: one character, or the escapes \n \t \\ . Returns the code
 * point or -1. */
static int32_t parse_char(const char *s) {
    if (!strcmp(s, "\\n")) return '\n';
    if (!strcmp(s, "\\t")) return '\t';
    if (!strcmp(s, "\\\\")) return '\\';
    int32_t *cps = NULL;
    int64_t n = 0;
    if (cx_utf8_decode(s, strlen(s), &cps, &n) || n != 1) {
        free(cps);
        return -1;
    }
    int32_t cp = cps[0];
    free(cps);
    return cp;
}

static int charlm_sample(int argc, char **argv) {
    cli_flag f[] = {
        {"prime", "text to start from (default: a newline)", false, NULL},
        {"length", "characters to generate at most", false, "500"},
        {"temperature", "softmax temperature (0: greedy)", false, "1"},
        {"top-k", "sample among the K likeliest characters only (0: all)", false, "0"},
        {"seed", "PRNG seed", false, "1"},
        {"beam", "beam search with K hypotheses instead of sampling", false, NULL},
        {"stop", "beam search: stop symbol (a character, or \\n)", false, NULL},
        {"alpha", "beam search: length normalisation exponent (score = logp / n^alpha)", false, "1"},
        {"norm", "beam search: length normalisation: power, gnmt or none", false, "power"},
        {"threads", "threads for OpenMP and the BLAS (0: all cores)", false, "1"},
        VOCAB_FLAG,
    };
    const char *cmd = "charlm sample";
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL [options]",
                  "Generate text with a model trained by 'cortex charlm train' (LSTM or Transformer):\n"
                  "the prime text is run through the model (a Transformer keeps the last --context\n"
                  "characters, with a key/value cache), then characters are drawn one at a time from the softmax at\n"
                  "--temperature (restricted to the --top-k likeliest), or, with --beam K, the most\n"
                  "likely continuation found by beam search, ending at --stop and ranked by\n"
                  "log-probability / length^alpha. The prime and the continuation go to stdout.",
                  f, nf);
        return 0;
    }
    if (npos != 1) {
        fprintf(stderr, "cortex %s: expected one MODEL file (see 'cortex %s --help')\n", cmd, cmd);
        return 2;
    }
    int length = 500, top_k = 0, seed = 1, beam = 0, threads = 1;
    double temperature = 1, alpha = 1;
    if (!cli_int(cmd, f, nf, "length", 1, 1 << 24, &length) || !cli_int(cmd, f, nf, "top-k", 0, 1 << 24, &top_k) ||
        !cli_int(cmd, f, nf, "seed", 0, INT_MAX, &seed) || !cli_int(cmd, f, nf, "beam", 1, 4096, &beam) ||
        !cli_int(cmd, f, nf, "threads", 0, 1024, &threads) ||
        !cli_double(cmd, f, nf, "temperature", 0, 1e6, &temperature) ||
        !cli_double(cmd, f, nf, "alpha", 0, 10, &alpha))
        return 2;
    const char *normname = cli_get(f, nf, "norm"), *stops = cli_get(f, nf, "stop"), *prime = cli_get(f, nf, "prime");
    cx_lennorm norm;
    if (!strcmp(normname, "power")) norm = CX_LENNORM_POWER;
    else if (!strcmp(normname, "gnmt")) norm = CX_LENNORM_GNMT;
    else if (!strcmp(normname, "none")) norm = CX_LENNORM_NONE;
    else {
        fprintf(stderr, "cortex %s: unknown --norm '%s' (power, gnmt, none)\n", cmd, normname);
        return 2;
    }
    if (stops && !beam) {
        fprintf(stderr, "cortex %s: --stop needs --beam\n", cmd);
        return 2;
    }
    int32_t stop_cp = stops ? parse_char(stops) : -1;
    if (stops && stop_cp < 0) {
        fprintf(stderr, "cortex %s: --stop must be one character (or \\n, \\t), got '%s'\n", cmd, stops);
        return 2;
    }
    cx_set_threads(threads);
    cx_seed((uint64_t)seed);
    cx_module *lm;
    cx_vocab *voc;
    const char *vocab_path = cli_get(f, nf, "vocab");
    if (load_lm(pos[0], vocab_path, &lm, &voc)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return 1;
    }
    int rc = 0;
    int stop_id = -1;
    if (!voc) {
        fprintf(stderr, "cortex %s: %s has no vocabulary (metadata cortex.vocab)\n", cmd, pos[0]);
        rc = 1;
    } else if (stops && (stop_id = cx_vocab_id(voc, stop_cp)) == CX_VOCAB_UNK) {
        fprintf(stderr, "cortex %s: the stop character '%s' is not in the model's vocabulary\n", cmd, stops);
        rc = 2;
    }
    int32_t *pids = NULL;
    int64_t np = 0;
    if (!rc && prime && *prime && cx_vocab_encode(voc, prime, strlen(prime), &pids, &np)) {
        fprintf(stderr, "cortex %s: --prime: %s\n", cmd, cx_last_error());
        rc = 2;
    }
    if (!rc && np > (1 << 24)) {
        fprintf(stderr, "cortex %s: --prime is too long\n", cmd);
        rc = 2;
    }
    if (rc) {
        free(pids);
        cx_module_free(lm);
        cx_vocab_free(voc);
        return rc;
    }
    int unknown = 0;
    for (int64_t i = 0; i < np; i++) unknown += pids[i] == CX_VOCAB_UNK;
    if (unknown && vocab_path) {
        fprintf(stderr, "cortex %s: %d character(s) of --prime are not in %s (the model has no <unk>)\n", cmd, unknown,
                vocab_path);
        free(pids);
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 2;
    }
    if (unknown) fprintf(stderr, "cortex %s: note: %d character(s) of --prime are not in the vocabulary\n", cmd, unknown);
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, lm);
    d.ban_unk = true;
    void *state = malloc(d.dec.state_bytes);
    int *outi = malloc((size_t)length * sizeof *outi);
    int32_t *out32 = malloc((size_t)length * sizeof *out32);
    if (!state || !outi || !out32) {
        fprintf(stderr, "cortex %s: out of memory\n", cmd);
        rc = 1;
    }
    int start = np ? pids[np - 1] : default_start(voc), n = 0;
    cx_status st = CX_OK;
    double logp = 0, score = 0;
    if (!rc) {
        cx_charlm_prime(&d, pids, np ? (int)np - 1 : 0, state, NULL);
        if (beam) {
            cx_beam_opts bo = {beam, length, stop_id, norm, alpha};
            st = cx_beam_search(&d.dec, state, start, &bo, outi, &n, &score, &logp);
        } else {
            st = cx_decode_sample(&d.dec, state, start, -1, length, (float)temperature, top_k, outi, &n, &logp);
        }
        if (st) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
        }
    }
    if (!rc) {
        if (np) print_ids(stdout, voc, pids, np);
        for (int i = 0; i < n; i++) out32[i] = outi[i];
        print_ids(stdout, voc, out32, n);
        int nl = cx_vocab_id(voc, '\n');
        if (n == 0 || outi[n - 1] != nl || nl == CX_VOCAB_UNK) putchar('\n');
        fflush(stdout);
        if (beam)
            fprintf(stderr, "beam %d: %d characters, log-probability %.3f, normalised score %.4f\n", beam, n, logp,
                    score);
    }
    free(state);
    free(outi);
    free(out32);
    free(pids);
    cx_charlm_decoder_free(&d);
    cx_module_free(lm);
    cx_vocab_free(voc);
    return rc;
}

/* ------------------------------------------------------------------ eval */
static int charlm_eval(int argc, char **argv) {
    cli_flag f[] = {
        {"text", "UTF-8 text file to score", false, NULL},
        {"limit", "score only the first N characters (0: all)", false, "0"},
        {"seq", "characters per chunk (default 64 for an LSTM, whose state is carried between chunks; a "
                "Transformer's context: each chunk is read on its own)", false, NULL},
        {"batch", "parallel streams", false, "32"},
        {"threads", "threads for OpenMP and the BLAS (0: all cores)", false, "1"},
        VOCAB_FLAG,
    };
    const char *cmd = "charlm eval";
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL --text FILE [options]",
                  "Bits per character (and perplexity) of a text under a model trained by\n"
                  "'cortex charlm train'; characters outside the model's vocabulary count as <unk>.\n"
                  "A plain PyTorch char-LSTM (the CharLM of cortex/charlm.h saved with safetensors)\n"
                  "loads with --vocab FILE; it has no <unk>, so such text is refused.",
                  f, nf);
        return 0;
    }
    int seq = 0, batch = 32, threads = 1, limit = 0;
    if (!cli_int(cmd, f, nf, "seq", 1, 1 << 20, &seq) || !cli_int(cmd, f, nf, "batch", 1, 1 << 16, &batch) ||
        !cli_int(cmd, f, nf, "threads", 0, 1024, &threads) || !cli_int(cmd, f, nf, "limit", 0, INT_MAX, &limit))
        return 2;
    const char *text = cli_get(f, nf, "text");
    if (npos != 1 || !text) {
        fprintf(stderr, "cortex %s: expected MODEL and --text FILE (see 'cortex %s --help')\n", cmd, cmd);
        return 2;
    }
    cx_set_threads(threads);
    cx_module *lm;
    cx_vocab *voc;
    const char *vocab_path = cli_get(f, nf, "vocab");
    if (load_lm(pos[0], vocab_path, &lm, &voc)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return 1;
    }
    if (!voc) {
        fprintf(stderr, "cortex %s: %s has no vocabulary (metadata cortex.vocab)\n", cmd, pos[0]);
        cx_module_free(lm);
        return 1;
    }
    const int ctx = cx_tlm_is(lm) ? cx_tlm_get_config(lm).context : 0;
    if (!seq) seq = ctx ? ctx : 64;
    if (ctx && seq > ctx) {
        fprintf(stderr, "cortex %s: --seq %d is longer than the context %d of the Transformer in %s\n", cmd, seq, ctx,
                pos[0]);
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 2;
    }
    cx_tensor *ids;
    if (cx_text_load(text, 1, &voc, &ids)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 1;
    }
    if (limit > 0 && ids->numel > limit) ids->shape[0] = limit, ids->numel = limit;
    int64_t unk = 0, n;
    for (int64_t i = 0; i < ids->numel; i++) unk += CX_I32P(ids)[i] == CX_VOCAB_UNK;
    if (unk && vocab_path) {
        fprintf(stderr, "cortex %s: %s has %lld character(s) that are not in %s (the model has no <unk>)\n", cmd, text,
                (long long)unk, vocab_path);
        cx_tensor_free(ids);
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 1;
    }
    double t0 = cx_now(), nats = eval_nats(lm, ids, batch, seq, &n);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "cortex %s: %s: too short to score (needs 2 characters)\n", cmd, text);
        rc = 1;
    } else {
        printf("%s: %lld characters scored (%lld not in the vocabulary): %.4f bits/char, perplexity %.3f (%.1fs)\n",
               text, (long long)n, (long long)unk, cx_bits_per_char(nats), cx_perplexity(nats), cx_now() - t0);
    }
    cx_tensor_free(ids);
    cx_module_free(lm);
    cx_vocab_free(voc);
    return rc;
}

/* ------------------------------------------------------------------ summary */
int cli_charlm_summary(const char *path) {
    cx_st_file *sf = NULL;
    if (cx_st_load(path, &sf) != CX_OK) return -1; /* cortex summary reports the error */
    const char *arch = cx_st_meta(sf, "cortex.arch");
    bool lm = arch && !strcmp(arch, "charlm");
    cx_module *m = NULL;
    cx_vocab *v = NULL;
    cx_status st = lm ? cx_charlm_from_st(sf, path, &m, &v) : CX_OK;
    cx_st_free(sf);
    if (!lm) return -1;
    if (st) {
        fprintf(stderr, "cortex summary: %s\n", cx_last_error());
        return 1;
    }
    if (!strcmp(cx_charlm_arch(m), "lstm")) {
        cx_charlm_config c = cx_charlm_get_config(m);
        printf("character-level language model (LSTM): vocabulary %d ids (<unk> included), embedding %d, "
               "%d LSTM layer(s) of %d, dropout %g\n", c.vocab, c.embed, c.layers, c.hidden, (double)c.dropout);
    } else {
        cx_tlm_config c = cx_tlm_get_config(m);
        printf("character-level language model (Transformer): vocabulary %d ids (<unk> included), context %d, "
               "embedding %d, %d block(s) of %d heads, feed-forward %d%s\n", c.vocab, c.context, c.embed, c.layers,
               c.heads, c.ffn ? c.ffn : 4 * c.embed, c.tie ? ", output tied to the embedding" : "");
    }
    printf("input: character ids [T, B]; output: logits [T, B, %d]\n",
           v ? v->size : (!strcmp(cx_charlm_arch(m), "lstm") ? cx_charlm_get_config(m).vocab
                                                                : cx_tlm_get_config(m).vocab));
    printf("layers:\n");
    fflush(stdout);
    cx_module_print(m);
    if (!v) printf("(no vocabulary stored: the model cannot read text)\n");
    cx_vocab_free(v);
    cx_module_free(m);
    return 0;
}

/* ------------------------------------------------------------------ dispatch */
int cmd_charlm(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : NULL;
    if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        FILE *o = sub ? stdout : stderr;
        fprintf(o, "usage: cortex charlm SUBCOMMAND [options]\n\n"
                   "A character-level language model: an LSTM (embedding -> LSTM layers -> linear) or\n"
                   "a Transformer (--arch transformer: pre-norm causal self-attention blocks).\n\n"
                   "subcommands:\n"
                   "  train    train on a UTF-8 text file (truncated BPTT, Adam, checkpoints)\n"
                   "  sample   generate text: sampling with temperature / top-k, or beam search\n"
                   "  eval     bits per character of a text under a model\n\n"
                   "'cortex charlm SUBCOMMAND --help' describes each one's options.\n");
        return sub ? 0 : 2;
    }
    if (!strcmp(sub, "train")) return charlm_train(argc - 1, argv + 1);
    if (!strcmp(sub, "sample")) return charlm_sample(argc - 1, argv + 1);
    if (!strcmp(sub, "eval")) return charlm_eval(argc - 1, argv + 1);
    fprintf(stderr, "cortex charlm: unknown subcommand '%s' (train, sample, eval)\n", sub);
    return 2;
}
