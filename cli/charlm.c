/* cortex charlm -- a character-level LSTM language model (the course's case
 * study): train on a text file, sample from it, evaluate bits per character.
 *
 *   cortex charlm train --text FILE [options]
 *   cortex charlm sample MODEL [--prime TEXT] [--length N] [--temperature T] [--top-k K]
 *                              [--beam K [--stop CHAR] [--alpha A]]
 *   cortex charlm eval MODEL --text FILE
 */
#include "cli.h"
#include <cortex/charlm.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cmd_charlm(int argc, char **argv);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_secs(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%.0fs", s);
}

static void clear_line(bool quiet) {
    if (!quiet) {
        fprintf(stderr, "\r%*s\r", 110, "");
        fflush(stderr);
    }
}

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

static void progress(int epoch, int epochs, int b, int nb, double loss, double cps, double eta) {
    int width = 20, fill = nb ? (int)((int64_t)b * width / nb) : width;
    char bar[32], es[32], ep[24];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    fmt_secs(eta, es, sizeof es);
    if (epochs == INT_MAX) snprintf(ep, sizeof ep, "%d", epoch);
    else snprintf(ep, sizeof ep, "%d/%d", epoch, epochs);
    fprintf(stderr, "\repoch %s [%s] %d/%d loss %.4f (%.3f bpc) %.1fk chars/s ETA %s   ", ep, bar, b, nb, loss,
            cx_bits_per_char(loss), cps / 1000, es);
    fflush(stderr);
}

static cx_tensor *rng_tensor(const char *name, cx_rng_state r) {
    cx_tensor *t = cx_tensor_new(CX_I64, (const int[]){2}, 1);
    CX_I64P(t)[0] = (int64_t)r.state;
    CX_I64P(t)[1] = (int64_t)r.inc;
    cx_tensor_set_name(t, name);
    return t;
}

static bool rng_from(const cx_st_file *f, const char *name, cx_rng_state *r) {
    const cx_tensor *t = cx_st_get(f, name);
    if (!t || t->dtype != CX_I64 || t->numel != 2) return false;
    r->state = (uint64_t)CX_I64P(t)[0];
    r->inc = (uint64_t)CX_I64P(t)[1];
    return true;
}

/* Training position saved in a checkpoint. */
typedef struct {
    int epoch;          /* epoch in progress (1-based) */
    int batch;          /* batches of it done */
    int64_t step;       /* optimiser steps in all */
    double seconds;     /* training time so far */
    cx_rng_state rng, rng_epoch;
} train_pos;

static cx_status save_checkpoint(const char *path, cx_module *lm, const cx_vocab *v, cx_optim *opt,
                                 const train_pos *p, cx_tensor *h, cx_tensor *c, int batch, int seq,
                                 const char *text) {
    cx_params ex;
    cx_params_init(&ex);
    cx_status st = cx_optim_state_export(opt, &ex);
    if (st) {
        cx_params_free(&ex);
        return st;
    }
    cx_tensor *r1 = rng_tensor("cortex.rng", p->rng), *r2 = rng_tensor("cortex.rng_epoch", p->rng_epoch);
    cx_params_add(&ex, r1);
    cx_params_add(&ex, r2);
    cx_tensor *hc[2] = {NULL, NULL};
    if (h && c) {
        hc[0] = cx_tensor_clone(h);
        hc[1] = cx_tensor_clone(c);
        cx_tensor_set_name(hc[0], "charlm.state.h");
        cx_tensor_set_name(hc[1], "charlm.state.c");
        cx_params_add(&ex, hc[0]);
        cx_params_add(&ex, hc[1]);
    }
    char se[24], sb[24], ss[32], st_[48], sg[64];
    snprintf(se, sizeof se, "%d", p->epoch);
    snprintf(sb, sizeof sb, "%d", p->batch);
    snprintf(ss, sizeof ss, "%lld", (long long)p->step);
    snprintf(st_, sizeof st_, "%.3f", p->seconds);
    snprintf(sg, sizeof sg, "batch=%d,seq=%d", batch, seq);
    const char *mk[] = {"cortex.epoch", "cortex.batch", "cortex.step", "cortex.seconds", "cortex.charlm.train",
                        "cortex.charlm.text"};
    const char *mv[] = {se, sb, ss, st_, sg, text};
    st = cx_charlm_save(path, lm, v, &ex, mk, mv, 6);
    cx_tensor_free(r1);
    cx_tensor_free(r2);
    cx_tensor_free(hc[0]);
    cx_tensor_free(hc[1]);
    cx_params_free(&ex);
    return st;
}

static cx_status save_model(const char *path, cx_module *lm, const cx_vocab *v, double val_bpc) {
    char vb[32];
    snprintf(vb, sizeof vb, "%.4f", val_bpc);
    const char *mk[] = {"cortex.charlm.val_bpc"}, *mv[] = {vb};
    return cx_charlm_save(path, lm, v, NULL, mk, mv, isfinite(val_bpc) ? 1 : 0);
}

/* ------------------------------------------------------------------ train */
static int charlm_train(int argc, char **argv) {
    cli_flag f[] = {
        {"text", "UTF-8 text file to learn", false, NULL},
        {"layers", "LSTM layers", false, "2"},
        {"hidden", "LSTM hidden size", false, "256"},
        {"embed", "character embedding size", false, "64"},
        {"dropout", "dropout between LSTM layers", false, "0"},
        {"seq", "truncated-BPTT length (characters per chunk)", false, "64"},
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
        {"checkpoint", "also save a checkpoint (model + Adam + PRNG + position) here", false, NULL},
        {"resume", "continue exactly from a checkpoint written by --checkpoint", false, NULL},
        {"seed", "PRNG seed", false, "1"},
        {"threads", "threads (OpenMP and BLAS)", false, "1"},
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
                  "Train a character-level language model (embedding -> LSTM layers -> linear) on a\n"
                  "UTF-8 text with truncated backpropagation through time: the text is cut into\n"
                  "--batch parallel streams, read --seq characters at a time, the LSTM state carried\n"
                  "from chunk to chunk (and detached). Adam, gradient clipping, validation bits per\n"
                  "character, samples while training; the model and checkpoints are saved atomically.\n"
                  "Scheduled sampling (--teacher-forcing ss-*) is the one-pass parallel variant: a\n"
                  "no-grad pass predicts every position, then each input after the first of a chunk\n"
                  "is replaced by the previous position's prediction with probability 1 - eps_i.",
                  f, nf);
        return 0;
    }
    int layers = 2, hidden = 256, embed = 64, seq = 64, batch = 32, epochs = 10, limit = 0, min_count = 1;
    int max_steps = 0, val_every = 0, sample_every = 0, sample_len = 200, seed = 1, threads = 1;
    double dropout = 0, lr = 2e-3, clip = 5, minutes = 0, val_frac = 0.05, sample_temp = 0.8;
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
        !cli_double(cmd, f, nf, "dropout", 0, 0.99, &dropout) || !cli_double(cmd, f, nf, "lr", 0, 100, &lr) ||
        !cli_double(cmd, f, nf, "clip", 0, 1e9, &clip) || !cli_double(cmd, f, nf, "minutes", 0, 1e6, &minutes) ||
        !cli_double(cmd, f, nf, "val-frac", 0, 0.9, &val_frac) ||
        !cli_double(cmd, f, nf, "sample-temp", 0, 100, &sample_temp) ||
        !cli_double(cmd, f, nf, "ss-k", 0, 1e12, &ss_k) || !cli_double(cmd, f, nf, "ss-c", 0, 1, &ss_c) ||
        !cli_double(cmd, f, nf, "ss-min", 0, 1, &ss_min))
        return 2;
    const char *text = cli_get(f, nf, "text"), *out = cli_get(f, nf, "out"), *ckpt = cli_get(f, nf, "checkpoint"),
               *resume = cli_get(f, nf, "resume"), *tf = cli_get(f, nf, "teacher-forcing");
    if (!text) {
        fprintf(stderr, "cortex %s: --text FILE is required (see 'cortex %s --help')\n", cmd, cmd);
        return 2;
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
    bool quiet = cli_get(f, nf, "quiet") || !isatty(2);

    /* resume: the model, its vocabulary and the training position come from the checkpoint */
    cx_st_file *ck = NULL;
    cx_module *lm = NULL;
    cx_vocab *voc = NULL;
    train_pos tp = {1, 0, 0, 0, {0, 0}, {0, 0}};
    if (resume) {
        const char *eps, *bs, *ss_, *secs, *tr;
        if (cx_st_load(resume, &ck) || cx_charlm_from_st(ck, resume, &lm, &voc)) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            cx_st_free(ck);
            return 1;
        }
        eps = cx_st_meta(ck, "cortex.epoch");
        bs = cx_st_meta(ck, "cortex.batch");
        ss_ = cx_st_meta(ck, "cortex.step");
        secs = cx_st_meta(ck, "cortex.seconds");
        tr = cx_st_meta(ck, "cortex.charlm.train");
        char want[64];
        snprintf(want, sizeof want, "batch=%d,seq=%d", batch, seq);
        const char *why = NULL;
        if (!eps || !bs || !ss_ || !secs || !tr || !voc || !rng_from(ck, "cortex.rng", &tp.rng) ||
            !rng_from(ck, "cortex.rng_epoch", &tp.rng_epoch))
            why = "not a charlm checkpoint (save one with --checkpoint)";
        else if (strcmp(tr, want))
            why = "was written with other --batch / --seq values";
        if (why) {
            fprintf(stderr, "cortex %s: %s: %s%s%s\n", cmd, resume, why, tr && strcmp(tr, want) ? ": " : "",
                    tr && strcmp(tr, want) ? tr : "");
            cx_st_free(ck);
            cx_module_free(lm);
            cx_vocab_free(voc);
            return 1;
        }
        tp.epoch = atoi(eps);
        tp.batch = atoi(bs);
        tp.step = atoll(ss_);
        tp.seconds = atof(secs);
    }
    cx_tensor *ids = NULL, *train = NULL, *val = NULL;
    if (cx_text_load(text, min_count, &voc, &ids)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        cx_st_free(ck);
        cx_module_free(lm);
        cx_vocab_free(voc);
        return 1;
    }
    if (limit > 0 && ids->numel > limit) {
        cx_tensor *cut = cx_tensor_new(CX_I32, (const int[]){limit}, 1);
        memcpy(cut->data, ids->data, (size_t)limit * sizeof(int32_t));
        cx_tensor_free(ids);
        ids = cut;
    }
    cx_text_split(ids, val_frac, &train, &val);
    int rc = 0;
    if (train->numel < (int64_t)batch + seq) {
        fprintf(stderr, "cortex %s: %s: %lld training characters, --batch %d and --seq %d need at least %d\n", cmd,
                text, (long long)train->numel, batch, seq, batch + seq);
        rc = 2;
    }
    if (!rc && !lm) {
        cx_charlm_config cfg = {voc->size, embed, hidden, layers, (float)dropout};
        lm = cx_charlm_new(&cfg);
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_optim *opt = NULL;
    if (!rc) {
        cx_module_params(lm, &ps);
        cx_adam_opts ao = CX_ADAM_DEFAULTS;
        ao.lr = lr;
        opt = cx_adam_new(&ps, &ao);
    }
    cx_tensor *h = NULL, *c = NULL;
    if (!rc && ck) {
        /* optimiser state, then the carried states of a checkpoint taken mid-epoch */
        cx_params os;
        cx_params_init(&os);
        for (int i = 0; i < ck->n; i++)
            if (!strncmp(ck->entries[i].name, "optim.", 6) || !strncmp(ck->entries[i].name, "state.", 6))
                cx_params_add(&os, ck->entries[i].tensor);
        if (cx_optim_state_import(opt, &os)) {
            fprintf(stderr, "cortex %s: %s: %s\n", cmd, resume, cx_last_error());
            rc = 1;
        }
        cx_params_free(&os);
        const cx_tensor *sh = cx_st_get(ck, "charlm.state.h"), *sc = cx_st_get(ck, "charlm.state.c");
        cx_charlm_config cfg = cx_charlm_get_config(lm);
        if (!rc && sh && sc) {
            int shape[3] = {cfg.layers, batch, cfg.hidden};
            h = cx_tensor_new(CX_F32, shape, 3);
            c = cx_tensor_new(CX_F32, shape, 3);
            if (!cx_same_shape(sh, h) || !cx_same_shape(sc, c) || sh->dtype != CX_F32 || sc->dtype != CX_F32) {
                fprintf(stderr, "cortex %s: %s: carried states do not fit the model\n", cmd, resume);
                rc = 1;
            } else {
                memcpy(h->data, sh->data, (size_t)h->numel * sizeof(float));
                memcpy(c->data, sc->data, (size_t)c->numel * sizeof(float));
            }
        }
    }
    cx_st_free(ck);
    if (rc) {
        cx_optim_free(opt);
        cx_params_free(&ps);
        cx_module_free(lm);
        cx_vocab_free(voc);
        cx_tensor_free(ids);
        cx_tensor_free(train);
        cx_tensor_free(val);
        cx_tensor_free(h);
        cx_tensor_free(c);
        return rc;
    }
    cx_charlm_config cfg = cx_charlm_get_config(lm);
    cx_bptt_loader *ld = cx_bptt_new(train, batch, seq, true);
    printf("text %s: %lld characters, vocabulary %d (<unk> included); %lld train, %lld validation\n", text,
           (long long)ids->numel, voc->size, (long long)train->numel, (long long)val->numel);
    printf("model: embedding %d -> LSTM %d x %d%s -> linear %d, %lld parameters\n", cfg.embed, cfg.layers,
           cfg.hidden, cfg.dropout > 0 ? " (dropout)" : "", cfg.vocab, (long long)cx_params_count(&ps));
    printf("training: Adam lr %g, clip %g, batch %d x seq %d, %d thread(s), GEMM %s, seed %d%s%s\n", lr, clip,
           batch, seq, threads, cx_gemm_describe(), seed, use_ss ? ", scheduled sampling " : "", use_ss ? tf : "");
    int start_epoch = tp.epoch;
    bool mid_epoch = false;
    if (resume) {
        /* re-create the batcher's position: its offset was drawn from the PRNG
         * state saved at the start of that epoch; then skip the batches done */
        int nb0;
        cx_rng_set(tp.rng_epoch);
        cx_bptt_reset(ld);
        nb0 = cx_bptt_num_batches(ld);
        if (tp.batch >= nb0) {
            start_epoch = tp.epoch + 1;
            cx_tensor_free(h);
            cx_tensor_free(c);
            h = c = NULL;
        } else {
            cx_tensor *x, *y;
            for (int i = 0; i < tp.batch && cx_bptt_next(ld, &x, &y); i++) cx_step_reset();
            cx_step_reset();
            mid_epoch = true;
        }
        cx_rng_set(tp.rng);
        printf("resumed from %s at epoch %d, batch %d (step %lld)\n", resume, mid_epoch ? tp.epoch : start_epoch,
               mid_epoch ? tp.batch : 0, (long long)tp.step);
    }
    fflush(stdout);
    const double run_t0 = now(), seconds0 = tp.seconds;
    const double deadline = minutes > 0 ? run_t0 + minutes * 60 : INFINITY;
    double last_draw = 0, train_secs = 0, last_val = NAN;
    int64_t run_chars = 0;
    bool stop = false;
    int32_t *mix = NULL, *pred = NULL;
    if (use_ss) {
        mix = malloc((size_t)seq * batch * sizeof *mix);
        pred = malloc((size_t)seq * batch * sizeof *pred);
        if (!mix || !pred) {
            fprintf(stderr, "cortex %s: out of memory\n", cmd);
            rc = 1;
            stop = true;
        }
    }
    for (int e = start_epoch; e <= epochs && !stop; e++) {
        if (!(mid_epoch && e == start_epoch)) {
            tp.rng_epoch = cx_rng_get();
            cx_bptt_reset(ld);
            tp.batch = 0;
            cx_tensor_free(h);
            cx_tensor_free(c);
            h = c = NULL;
        }
        tp.epoch = e;
        const int nb = cx_bptt_num_batches(ld);
        double sum_loss = 0;
        int64_t ep_chars = 0;
        cx_tensor *x, *y;
        while (!stop) {
            double tb = now();
            if (!cx_bptt_next(ld, &x, &y)) break;
            const int T = x->shape[0], B = x->shape[1];
            if (use_ss) {
                /* one no-grad pass predicts each next character; inputs 1.. of the
                 * chunk then take the previous prediction with prob 1 - eps */
                cx_no_grad_begin();
                bool tr = cx_is_training();
                cx_set_training(false);
                cx_tensor *am = cx_argmax(cx_charlm_forward(lm, x, h, c).logits, 2);
                cx_set_training(tr);
                cx_no_grad_end();
                memcpy(pred, am->data, (size_t)T * B * sizeof(int32_t));
                memcpy(mix, x->data, (size_t)T * B * sizeof(int32_t));
                if (T > 1) cx_ss_mix(&ss, tp.step, CX_I32P(x) + B, pred, mix + B, (T - 1) * B);
                x = cx_from_i32(mix, x->shape, 2);
            }
            cx_optim_zero_grad(opt);
            cx_charlm_out o = cx_charlm_forward(lm, x, h, c);
            cx_tensor *loss = cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN);
            float lv = cx_item(loss);
            if (!isfinite(lv)) {
                clear_line(quiet);
                fprintf(stderr, "cortex %s: loss is %g at epoch %d batch %d; rerun with --check-numerics, or lower --lr\n",
                        cmd, (double)lv, e, tp.batch + 1);
                rc = 1;
                break;
            }
            cx_backward(loss);
            if (clip > 0) cx_clip_grad_norm(&ps, (float)clip);
            cx_optim_step(opt);
            cx_charlm_carry(&h, &c, o);
            cx_step_reset();
            tp.batch++;
            tp.step++;
            sum_loss += (double)lv * T * B;
            ep_chars += (int64_t)T * B;
            run_chars += (int64_t)T * B;
            double t = now();
            train_secs += t - tb;
            bool timeout = t >= deadline || (max_steps && tp.step >= max_steps), end_epoch = tp.batch == nb;
            if (!quiet && (t - last_draw > 0.2 || end_epoch)) {
                double rate = run_chars / (train_secs + 1e-9);
                double eta = isfinite(deadline) ? deadline - t : 0;
                if (epochs != INT_MAX) {
                    double left = (double)(nb - tp.batch) * batch * seq + (double)(epochs - e) * nb * batch * seq;
                    if (!isfinite(deadline) || left / rate < eta) eta = left / rate;
                }
                progress(e, epochs, tp.batch, nb, sum_loss / (double)ep_chars, rate, eta);
                last_draw = t;
            }
            if (sample_every && tp.step % sample_every == 0) {
                clear_line(quiet);
                printf("--- sample at epoch %d, batch %d (step %lld, train %.3f bpc):\n", e, tp.batch,
                       (long long)tp.step, cx_bits_per_char(sum_loss / (double)ep_chars));
                print_sample(lm, voc, sample_len, (float)sample_temp, (uint64_t)seed * 1000003u + (uint64_t)tp.step);
                printf("---\n");
                fflush(stdout);
            }
            if (!end_epoch && ((val_every && tp.step % val_every == 0) || timeout)) {
                int64_t nv;
                last_val = cx_bits_per_char(eval_nats(lm, val, batch, seq, &nv));
                tp.seconds = seconds0 + now() - run_t0;
                clear_line(quiet);
                printf("epoch %d batch %d/%d  step %lld  train %.4f bpc  val %.4f bpc  %.0fs\n", e, tp.batch, nb,
                       (long long)tp.step, cx_bits_per_char(sum_loss / (double)ep_chars), last_val, tp.seconds);
                fflush(stdout);
                cx_status st = save_model(out, lm, voc, last_val);
                tp.rng = cx_rng_get();
                if (!st && ckpt) st = save_checkpoint(ckpt, lm, voc, opt, &tp, h, c, batch, seq, text);
                if (st) {
                    fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
                    rc = 1;
                }
            }
            if (rc || timeout) stop = true;
        }
        if (rc || tp.batch < nb) break; /* error, or out of time mid-epoch (saved above) */
        int64_t nv;
        last_val = cx_bits_per_char(eval_nats(lm, val, batch, seq, &nv));
        tp.seconds = seconds0 + now() - run_t0;
        clear_line(quiet);
        printf("epoch %d  train %.4f bpc  val %.4f bpc (%lld chars)  step %lld  %.0fs\n", e,
               cx_bits_per_char(sum_loss / (double)(ep_chars ? ep_chars : 1)), last_val, (long long)nv,
               (long long)tp.step, tp.seconds);
        fflush(stdout);
        tp.rng = cx_rng_get();
        cx_status st = save_model(out, lm, voc, last_val);
        if (!st && ckpt) st = save_checkpoint(ckpt, lm, voc, opt, &tp, NULL, NULL, batch, seq, text);
        if (st) {
            fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
            rc = 1;
        }
        if (now() >= deadline || (max_steps && tp.step >= max_steps)) stop = true;
    }
    if (!rc) {
        clear_line(quiet);
        printf("done: step %lld, %.1fs this run (%.0f chars/s training), validation %.4f bits/char; model saved to %s%s%s\n",
               (long long)tp.step, now() - run_t0, run_chars / (train_secs + 1e-9), last_val, out,
               ckpt ? ", checkpoint to " : "", ckpt ? ckpt : "");
    }
    free(mix);
    free(pred);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(lm);
    cx_vocab_free(voc);
    cx_tensor_free(ids);
    cx_tensor_free(train);
    cx_tensor_free(val);
    cx_tensor_free(h);
    cx_tensor_free(c);
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
        {"threads", "threads", false, "1"},
    };
    const char *cmd = "charlm sample";
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL [options]",
                  "Generate text with a model trained by 'cortex charlm train': the prime text is run\n"
                  "through the LSTM, then characters are drawn one at a time from the softmax at\n"
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
    if (cx_charlm_load(pos[0], &lm, &voc)) {
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
        {"seq", "characters per chunk (the state is carried between chunks)", false, "64"},
        {"batch", "parallel streams", false, "32"},
        {"threads", "threads", false, "1"},
    };
    const char *cmd = "charlm eval";
    int nf = (int)(sizeof f / sizeof *f), npos;
    const char *pos[1];
    bool help;
    if (cli_parse(cmd, argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help) {
        cli_usage(cmd, "MODEL --text FILE [options]",
                  "Bits per character (and perplexity) of a text under a model trained by\n"
                  "'cortex charlm train'; characters outside the model's vocabulary count as <unk>.",
                  f, nf);
        return 0;
    }
    int seq = 64, batch = 32, threads = 1, limit = 0;
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
    if (cx_charlm_load(pos[0], &lm, &voc)) {
        fprintf(stderr, "cortex %s: %s\n", cmd, cx_last_error());
        return 1;
    }
    if (!voc) {
        fprintf(stderr, "cortex %s: %s has no vocabulary (metadata cortex.vocab)\n", cmd, pos[0]);
        cx_module_free(lm);
        return 1;
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
    double t0 = now(), nats = eval_nats(lm, ids, batch, seq, &n);
    int rc = 0;
    if (n == 0) {
        fprintf(stderr, "cortex %s: %s: too short to score (needs 2 characters)\n", cmd, text);
        rc = 1;
    } else {
        printf("%s: %lld characters scored (%lld not in the vocabulary): %.4f bits/char, perplexity %.3f (%.1fs)\n",
               text, (long long)n, (long long)unk, cx_bits_per_char(nats), cx_perplexity(nats), now() - t0);
    }
    cx_tensor_free(ids);
    cx_module_free(lm);
    cx_vocab_free(voc);
    return rc;
}

/* ------------------------------------------------------------------ dispatch */
int cmd_charlm(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : NULL;
    if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        FILE *o = sub ? stdout : stderr;
        fprintf(o, "usage: cortex charlm SUBCOMMAND [options]\n\n"
                   "A character-level LSTM language model (embedding -> LSTM layers -> linear).\n\n"
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
