/* A character-level LSTM language model with the library API and its trainer
 * (the `cortex charlm` command does the same with checkpoints, validation and
 * samples while training): learn the shipped King James text for a few
 * seconds with the library's trainer, then sample from it.
 *
 *   build/<variant>/examples/charlm [seconds (default 20)] [text file]
 */
#include <cortex.h>
#include <cortex/charlm.h>
#include <stdio.h>
#include <stdlib.h>

/* The task the trainer runs: truncated BPTT over 32 parallel streams of the
 * text, 64 characters at a time, the LSTM state carried from batch to batch. */
typedef struct {
    cx_module *lm;
    cx_bptt_loader *ld;
    cx_tensor *h, *c, *x, *y; /* carried states (persistent), the current batch */
    cx_charlm_out o;
} lm_task;

static int begin_epoch(void *user, const cx_train_pos *pos) {
    lm_task *t = user;
    if (pos->epoch > 1) cx_bptt_reset(t->ld); /* new offset (the first one was drawn by cx_bptt_new) */
    cx_tensor_free(t->h);                      /* a fresh state */
    cx_tensor_free(t->c);
    t->h = t->c = NULL;
    return cx_bptt_num_batches(t->ld);
}

static bool next_batch(void *user, const cx_train_pos *pos) {
    (void)pos;
    lm_task *t = user;
    return cx_bptt_next(t->ld, &t->x, &t->y); /* x, y I32 [64, 32] */
}

static cx_tensor *loss(void *user, const cx_train_pos *pos, int64_t *count) {
    (void)pos;
    lm_task *t = user;
    t->o = cx_charlm_forward(t->lm, t->x, t->h, t->c);
    *count = t->y->numel;
    return cx_seq_cross_entropy(t->o.logits, t->y, NULL, false, CX_REDUCE_MEAN);
}

static void after_step(void *user, const cx_train_pos *pos) {
    (void)pos;
    lm_task *t = user;
    cx_charlm_carry(&t->h, &t->c, t->o); /* truncated BPTT: copy out, no graph */
}

/* Every 50 steps: the mean bits/char of those steps. */
typedef struct {
    double t0, loss_sum;
    int window;
} report;

static cx_status on_step(void *user, const cx_train_info *in) {
    report *r = user;
    r->loss_sum += in->loss;
    r->window++;
    if (in->pos.step % 50 == 0) {
        cx_trainer_clear_line(in->trainer);
        printf("step %lld  %.3f bits/char  %.0fs\n", (long long)in->pos.step, cx_bits_per_char(r->loss_sum / r->window),
               cx_now() - r->t0);
        fflush(stdout);
        r->loss_sum = 0;
        r->window = 0;
    }
    return CX_OK;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 20;
    const char *path = argc > 2 ? argv[2] : "data/text/kjv_genesis_ruth_jonah.txt";
    if (!(seconds > 0)) return fprintf(stderr, "usage: charlm [seconds > 0] [text file]\n"), 2;
    cx_seed(1);
    cx_vocab *voc = NULL;
    cx_tensor *ids;
    if (cx_text_load(path, 1, &voc, &ids)) {
        fprintf(stderr, "charlm: %s\n", cx_last_error());
        return 1;
    }
    cx_charlm_config cfg = cx_charlm_defaults(voc->size);
    cfg.layers = 1;
    cfg.hidden = 256;
    lm_task t = {.lm = cx_charlm_new(&cfg)};
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(t.lm, &ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 2e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    t.ld = cx_bptt_new(ids, 32, 64, true); /* 32 streams, 64 steps */
    cx_train_task task = {&t, begin_epoch, next_batch, loss, after_step, NULL, NULL, NULL, NULL};
    report rep = {cx_now(), 0, 0};
    cx_train_opts o = cx_train_defaults();
    o.epochs = 0;               /* no epoch limit: ... */
    o.minutes = seconds / 60;   /* ... stop after `seconds` */
    o.clip = 5.0f;
    o.on_step = on_step;
    o.hook_user = &rep;
    o.unit = "chars";
    o.bits = true;
    cx_trainer *tr = cx_trainer_new(&task, t.lm, opt, &o);
    int rc = 0;
    if (cx_trainer_run(tr)) {
        fprintf(stderr, "charlm: %s\n", cx_last_error());
        rc = 1;
    }
    cx_trainer_free(tr);
    /* sample 300 characters at temperature 0.8 after the prime "And God" */
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, t.lm);
    d.ban_unk = true; /* never emit <unk> */
    const char *prime = "And God";
    int32_t *pid;
    int64_t np;
    float *state = malloc(d.dec.state_bytes);
    int out[300], n = 0;
    if (!rc && state && !cx_vocab_encode(voc, prime, 7, &pid, &np)) {
        cx_charlm_prime(&d, pid, (int)np - 1, state, NULL);
        cx_decode_sample(&d.dec, state, pid[np - 1], -1, 300, 0.8f, 0, out, &n, NULL);
        int32_t o32[300];
        for (int i = 0; i < n; i++) o32[i] = out[i];
        char text[2048];
        cx_vocab_decode(voc, o32, n, text, sizeof text);
        printf("\n%s%s\n", prime, text);
        free(pid);
    }
    free(state);
    cx_charlm_decoder_free(&d);
    cx_tensor_free(t.h);
    cx_tensor_free(t.c);
    cx_bptt_free(t.ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(t.lm);
    cx_tensor_free(ids);
    cx_vocab_free(voc);
    return rc;
}
