/* A character-level LSTM language model in ~80 lines with the library API
 * (the `cortex charlm` command does the same with checkpoints, validation and
 * progress): learn the shipped King James text for a few seconds, then
 * sample from it.
 *
 *   build/<variant>/examples/charlm [seconds (default 20)] [text file]
 */
#include <cortex.h>
#include <cortex/charlm.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 20;
    const char *path = argc > 2 ? argv[2] : "data/text/kjv_genesis_ruth_jonah.txt";
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
    cx_module *lm = cx_charlm_new(&cfg);
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(lm, &ps);
    cx_adam_opts ao = CX_ADAM_DEFAULTS;
    ao.lr = 2e-3;
    cx_optim *opt = cx_adam_new(&ps, &ao);
    cx_bptt_loader *ld = cx_bptt_new(ids, 32, 64, true);  /* 32 streams, 64 steps */
    cx_tensor *h = NULL, *c = NULL, *x, *y;
    double t0 = now(), loss_sum = 0;
    int steps = 0, window = 0;
    while (now() - t0 < seconds) {
        if (!cx_bptt_next(ld, &x, &y)) {  /* end of an epoch: new offset, fresh state */
            cx_bptt_reset(ld);
            cx_tensor_free(h);
            cx_tensor_free(c);
            h = c = NULL;
            continue;
        }
        cx_optim_zero_grad(opt);
        cx_charlm_out o = cx_charlm_forward(lm, x, h, c);
        cx_tensor *loss = cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN);
        loss_sum += cx_item(loss);
        window++;
        cx_backward(loss);
        cx_clip_grad_norm(&ps, 5.0f);
        cx_optim_step(opt);
        cx_charlm_carry(&h, &c, o);  /* truncated BPTT: copy out, no graph */
        cx_step_reset();
        if (++steps % 50 == 0) {
            printf("step %d  %.3f bits/char  %.0fs\n", steps, cx_bits_per_char(loss_sum / window), now() - t0);
            fflush(stdout);
            loss_sum = 0;
            window = 0;
        }
    }
    /* sample 300 characters at temperature 0.8 after the prime "And God" */
    cx_charlm_decoder d;
    cx_charlm_decoder_init(&d, lm);
    d.ban_unk = true; /* never emit <unk> */
    const char *prime = "And God";
    int32_t *pid;
    int64_t np;
    float *state = malloc(d.dec.state_bytes);
    int out[300], n = 0;
    if (state && !cx_vocab_encode(voc, prime, 7, &pid, &np)) {
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
    cx_tensor_free(h);
    cx_tensor_free(c);
    cx_bptt_free(ld);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(lm);
    cx_tensor_free(ids);
    cx_vocab_free(voc);
    return 0;
}
