/*
 * dnc -- the Differentiable Neural Computer (Graves et al. 2016; cortex/dnc.h)
 * on the algorithmic tasks of cortex/seqtasks.h (copy by default).
 *
 *   dnc --steps S --seed K [--task copy|repeat|recall] [--batch B]
 *       [--optim rmsprop|adam] [--lr X] [--clip-grad G] [--hidden H]
 *       [--slots N] [--width W] [--reads R] [--min-len a --max-len b]
 *       [--threads T] [--log-every K] [--eval-lengths 10,20] [--eval-seqs S]
 *       [--out model.safetensors] [--load model.safetensors]
 *       [--png-dir DIR] [--png-len L] [--metrics m.csv]
 *
 * Training as examples/ntm.c does it, so the two compare on the same
 * settings: --steps minibatches of --batch sequences from the task's
 * distribution (copy: 8-bit vectors, lengths --min-len..--max-len, default
 * the paper's 1..20), the masked BCE of the outputs (cx_seqtask_loss), the
 * gradient norm clipped to --clip-grad (10), RMSprop (lr 1e-4, momentum 0.9,
 * alpha 0.95) or Adam (--optim adam, lr 1e-3 unless --lr). Data and
 * evaluation streams are seeded from --seed exactly as examples/ntm.c
 * seeds them, so both see the same batches.
 * Every --log-every steps: sequences seen, bits wrong per sequence, loss
 * (also a CSV row with --metrics). After training, for each --eval-lengths
 * length, --eval-seqs fresh sequences:
 *   EVAL task=copy model=dnc len=10 seqs=100 bits_per_seq=0.12 wrong_frac=0.0004
 * --png-dir: for one sequence of each --png-len length (default: the
 * evaluation lengths) the inputs / targets / outputs; the write weighting,
 * the read weighting of head 0, the usage and the allocation gate x write
 * gate over time; the temporal link matrix after the input phase; as
 * labelled heatmaps with colour scales.
 */
#define EX_PROG "dnc"
#include "seqtask_common.h"

#include <cortex.h>
#include <cortex/seqtasks.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    cx_seqtask_kind task;
    int steps, batch, hidden, slots, width, reads, min_len, max_len, threads, log_every, eval_seqs;
    unsigned long seed;
    const char *optim, *out, *load, *png_dir, *metrics;
    double lr, clip_grad;
    int eval_len[32], n_eval, png_len[32], n_png;
} args;

static void usage(void) {
    fprintf(stderr, "usage: dnc --steps S --seed K [--task copy|repeat|recall] [--batch B] [--optim rmsprop|adam]\n"
                    "           [--lr X] [--clip-grad G] [--hidden H] [--slots N] [--width W] [--reads R]\n"
                    "           [--min-len a] [--max-len b] [--threads T] [--log-every K]\n"
                    "           [--eval-lengths 10,20,..] [--eval-seqs S] [--out F] [--load F]\n"
                    "           [--png-dir DIR] [--png-len 10,..] [--metrics F.csv]\n");
    exit(2);
}

static double real(const char *flag, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v || !(x >= 0) || !isfinite(x)) {
        fprintf(stderr, "dnc: %s '%s' is not a non-negative number\n", flag, v);
        exit(2);
    }
    return x;
}

static void parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->task = CX_SEQTASK_COPY;
    a->steps = 1000, a->batch = 1, a->hidden = 64, a->slots = 16, a->width = 16, a->reads = 1;
    a->min_len = -1, a->max_len = -1, a->threads = 1, a->log_every = 100, a->eval_seqs = 100;
    a->seed = 1, a->optim = "rmsprop", a->lr = -1, a->clip_grad = 10;
    a->n_eval = parse_list("10,20", a->eval_len, 32);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(f, "--task")) {
            if (!cx_seqtask_parse(v, &a->task)) usage();
        } else if (!strcmp(f, "--steps")) a->steps = (int)num(f, v, 0, 100000000);
        else if (!strcmp(f, "--seed")) a->seed = (unsigned long)num(f, v, 0, 2147483647);
        else if (!strcmp(f, "--batch")) a->batch = (int)num(f, v, 1, 4096);
        else if (!strcmp(f, "--hidden")) a->hidden = (int)num(f, v, 1, 65536);
        else if (!strcmp(f, "--slots")) a->slots = (int)num(f, v, 1, 65536);
        else if (!strcmp(f, "--width")) a->width = (int)num(f, v, 1, 65536);
        else if (!strcmp(f, "--reads")) a->reads = (int)num(f, v, 1, 64);
        else if (!strcmp(f, "--min-len")) a->min_len = (int)num(f, v, 1, 100000);
        else if (!strcmp(f, "--max-len")) a->max_len = (int)num(f, v, 1, 100000);
        else if (!strcmp(f, "--threads")) a->threads = (int)num(f, v, 0, 256);
        else if (!strcmp(f, "--log-every")) a->log_every = (int)num(f, v, 1, 100000000);
        else if (!strcmp(f, "--eval-seqs")) a->eval_seqs = (int)num(f, v, 0, 1000000);
        else if (!strcmp(f, "--eval-lengths")) a->n_eval = parse_list(v, a->eval_len, 32);
        else if (!strcmp(f, "--png-len")) a->n_png = parse_list(v, a->png_len, 32);
        else if (!strcmp(f, "--optim")) {
            if (strcmp(v, "rmsprop") && strcmp(v, "adam")) usage();
            a->optim = v;
        } else if (!strcmp(f, "--lr")) a->lr = real(f, v);
        else if (!strcmp(f, "--clip-grad")) a->clip_grad = real(f, v);
        else if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--load")) a->load = v;
        else if (!strcmp(f, "--png-dir")) a->png_dir = v;
        else if (!strcmp(f, "--metrics")) a->metrics = v;
        else usage();
    }
    if (a->lr < 0) a->lr = !strcmp(a->optim, "adam") ? 1e-3 : 1e-4;
    if (!a->n_png) {
        memcpy(a->png_len, a->eval_len, sizeof a->png_len);
        a->n_png = a->n_eval;
    }
}

/* ---------------------------------------------------------------- pictures */
static void pictures(cx_module *m, const args *a, const cx_seqtask_opts *task, int len) {
    cx_rng rng = cx_rng_new(a->seed * 7919u + 17u + (unsigned)len);
    int reps = a->task == CX_SEQTASK_REPEAT ? (task->min_rep + task->max_rep) / 2 : 0;
    cx_seqtask_batch b = cx_seqtask_sample_fixed(&rng, 1, task, len, reps);
    const int T = b.T, I = b.input->shape[2], O = b.target->shape[2];
    const cx_dnc_config c = cx_dnc_get_config(m);
    const int N = c.slots;
    cx_dnc_carry *st = calloc((size_t)T, sizeof *st);
    float *gates = malloc(sizeof(float) * 2 * (size_t)T);
    cx_no_grad_begin();
    /* step by step to keep each step's interface (the gates) */
    cx_dnc_carry s = cx_dnc_initial(m, 1);
    cx_tensor **ys = malloc(sizeof(cx_tensor *) * (size_t)T);
    for (int t = 0; t < T; t++) {
        cx_dnc_interface it;
        ys[t] = cx_dnc_step(m, cx_reshape(cx_slice(b.input, 0, t, t + 1, 1), CX_SHAPE(1, I)), &s, &s, &it);
        st[t] = s;
        gates[t] = CX_F(it.alloc_gate)[0] * CX_F(it.write_gate)[0]; /* allocation share of the write */
        gates[T + t] = CX_F(it.write_gate)[0];
    }
    cx_tensor *lg = cx_stack(ys, T, 0);
    cx_no_grad_end();
    long wrong = cx_seqtask_bits_wrong(lg, b.target, b.mask);
    float *in = malloc((size_t)I * T * sizeof(float)), *tg = malloc((size_t)O * T * sizeof(float)),
          *pr = malloc((size_t)O * T * sizeof(float));
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < I; k++) in[(size_t)k * T + t] = CX_F(b.input)[(size_t)t * I + k];
        for (int k = 0; k < O; k++) {
            tg[(size_t)k * T + t] = CX_F(b.target)[(size_t)t * O + k];
            pr[(size_t)k * T + t] = CX_F(b.mask)[t] != 0 ? 1.0f / (1.0f + expf(-CX_F(lg)[(size_t)t * O + k])) : 0.0f;
        }
    }
    const int cell = T > 120 ? 4 : T > 60 ? 6 : 10;
    const char *tn = cx_seqtask_name(a->task);
    char title[200], path[512];
    cx_canvas p[4];
    memset(p, 0, sizeof p);
    bool ok = panel(&p[0], in, I, T, "inputs", "time step", "channel", 0, 1, cell) &&
              panel(&p[1], tg, O, T, "targets", "time step", "bit", 0, 1, cell) &&
              panel(&p[2], pr, O, T, "outputs (sigmoid, scored steps)", "time step", "bit", 0, 1, cell);
    snprintf(title, sizeof title, "DNC %s, length %d: %ld bits wrong", tn, len, wrong);
    snprintf(path, sizeof path, "%s/%s_len%d_io.png", a->png_dir, tn, len);
    if (ok) save_stack(path, title, p, 3);
    for (int i = 0; i < 4; i++) cx_canvas_free(&p[i]);
    memset(p, 0, sizeof p);
    /* slot x time: write weighting, read weighting of head 0, usage */
    float *ww = malloc((size_t)N * T * sizeof(float)), *rw = malloc((size_t)N * T * sizeof(float)),
          *us = malloc((size_t)N * T * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int k = 0; k < N; k++) {
            ww[(size_t)k * T + t] = CX_F(st[t].mem.ww)[k];
            rw[(size_t)k * T + t] = CX_F(st[t].mem.wr)[k]; /* head 0 of item 0 */
            us[(size_t)k * T + t] = CX_F(st[t].mem.usage)[k];
        }
    ok = panel(&p[0], ww, N, T, "write weighting", "time step", "memory slot", 0, 1, cell) &&
         panel(&p[1], rw, N, T, "read weighting (head 0)", "time step", "memory slot", 0, 1, cell) &&
         panel(&p[2], us, N, T, "usage", "time step", "memory slot", 0, 1, cell) &&
         panel(&p[3], gates, 2, T, "row 0: allocation gate x write gate, row 1: write gate", "time step", "gate", 0,
               1, cell);
    snprintf(title, sizeof title, "DNC %s, length %d: weightings and usage over time", tn, len);
    snprintf(path, sizeof path, "%s/%s_len%d_weights.png", a->png_dir, tn, len);
    if (ok) save_stack(path, title, p, 4);
    for (int i = 0; i < 4; i++) cx_canvas_free(&p[i]);
    memset(p, 0, sizeof p);
    /* the link matrix after the input phase: L[i, j], i written after j */
    const int tin = a->task == CX_SEQTASK_RECALL ? T - 1 - task->item_len : (len < T ? len : T - 1);
    char pt[160];
    snprintf(pt, sizeof pt, "link matrix after step %d (row i, column j: slot i written after slot j)", tin);
    if (panel(&p[0], CX_F(st[tin].mem.link), N, N, pt, "slot j (written before)", "slot i (written after)", 0, 1,
              N > 32 ? 8 : 16)) {
        snprintf(title, sizeof title, "DNC %s, length %d: temporal links", tn, len);
        snprintf(path, sizeof path, "%s/%s_len%d_link.png", a->png_dir, tn, len);
        save_stack(path, title, p, 1);
    }
    cx_canvas_free(&p[0]);
    free(in), free(tg), free(pr), free(ww), free(rw), free(us), free(gates), free(st), free(ys);
    cx_step_reset();
}

int main(int argc, char **argv) {
    args a;
    parse(argc, argv, &a);
    cx_set_threads(a.threads);
    cx_seed(a.seed);
    cx_seqtask_opts task = cx_seqtask_defaults(a.task);
    if (a.min_len > 0) a.task == CX_SEQTASK_RECALL ? (task.min_items = a.min_len) : (task.min_len = a.min_len);
    if (a.max_len > 0) a.task == CX_SEQTASK_RECALL ? (task.max_items = a.max_len) : (task.max_len = a.max_len);
    const int in = cx_seqtask_input_size(&task), out = cx_seqtask_output_size(&task);
    cx_module *m = NULL;
    if (a.load) {
        if (cx_dnc_load(a.load, &m)) {
            fprintf(stderr, "dnc: %s\n", cx_last_error());
            return 1;
        }
        cx_dnc_config c = cx_dnc_get_config(m);
        if (c.input_size != in || c.output_size != out) {
            fprintf(stderr, "dnc: %s has %d inputs and %d outputs, the %s task needs %d and %d\n", a.load,
                    c.input_size, c.output_size, cx_seqtask_name(a.task), in, out);
            cx_module_free(m);
            return 1;
        }
    } else {
        cx_dnc_config c = {in, out, a.hidden, a.slots, a.width, a.reads};
        m = cx_dnc_new(&c);
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m, &ps);
    cx_flat *flat = cx_flat_new(&ps);
    cx_optim *opt;
    if (!strcmp(a.optim, "adam")) {
        cx_adam_opts o = cx_adam_defaults();
        o.lr = a.lr;
        opt = cx_adam_new(cx_flat_params(flat), &o);
    } else {
        cx_rmsprop_opts o = cx_rmsprop_defaults();
        o.lr = a.lr;
        o.momentum = 0.9;
        o.alpha = 0.95;
        opt = cx_rmsprop_new(cx_flat_params(flat), &o);
    }
    printf("task %s, model dnc: %ld parameters, %s lr %g, batch %d, clip-grad %g, seed %lu\n",
           cx_seqtask_name(a.task), (long)cx_params_count(&ps), a.optim, a.lr, a.batch, a.clip_grad, a.seed);
    cx_module_print(m);
    FILE *csv = NULL;
    if (a.metrics) {
        csv = fopen(a.metrics, "w");
        if (!csv) {
            fprintf(stderr, "dnc: cannot write %s\n", a.metrics);
            return 1;
        }
        fprintf(csv, "sequences,bits_wrong_per_seq,loss,seconds\n");
    }
    cx_rng data_rng = cx_rng_new(a.seed * 1000003u + 1u);
    double t0 = now(), win_loss = 0;
    long win_wrong = 0, win_seqs = 0;
    for (int s = 1; s <= a.steps; s++) {
        cx_seqtask_batch b = cx_seqtask_sample(&data_rng, a.batch, &task);
        cx_tensor *lg = cx_dnc_forward(m, b.input, NULL);
        cx_tensor *loss = cx_seqtask_loss(lg, b.target, b.mask);
        cx_optim_zero_grad(opt);
        cx_backward(loss);
        if (a.clip_grad > 0) cx_clip_grad_norm(cx_flat_params(flat), (float)a.clip_grad);
        cx_optim_step(opt);
        win_loss += cx_item(loss);
        win_wrong += cx_seqtask_bits_wrong(lg, b.target, b.mask);
        win_seqs += a.batch;
        cx_step_reset();
        if (s % a.log_every == 0 || s == a.steps) {
            const double el = now() - t0, bps = (double)win_wrong / win_seqs;
            const int nsteps = s % a.log_every ? s % a.log_every : a.log_every;
            printf("step %d  sequences %ld  bits wrong/seq %.3f  loss %.5f  (%.1f s, %.1f seq/s)\n", s,
                   (long)s * a.batch, bps, win_loss / nsteps, el, (double)s * a.batch / el);
            fflush(stdout);
            if (csv) {
                fprintf(csv, "%ld,%.5f,%.6f,%.2f\n", (long)s * a.batch, bps, win_loss / nsteps, el);
                fflush(csv);
            }
            win_loss = 0, win_wrong = 0, win_seqs = 0;
        }
    }
    if (a.steps) printf("trained %d steps (%ld sequences) in %.1f s\n", a.steps, (long)a.steps * a.batch, now() - t0);
    if (csv) fclose(csv);
    if (a.out) {
        if (cx_dnc_save(m, a.out)) fprintf(stderr, "dnc: %s\n", cx_last_error());
        else printf("saved %s\n", a.out);
    }
    cx_rng eval_rng = cx_rng_new(a.seed * 31337u + 99u);
    cx_no_grad_begin();
    for (int e = 0; e < a.n_eval && a.eval_seqs > 0; e++) {
        const int L = a.eval_len[e];
        int reps = a.task == CX_SEQTASK_REPEAT ? (task.min_rep + task.max_rep) / 2 : 0;
        long wrong = 0, bits = 0;
        for (int done = 0; done < a.eval_seqs;) {
            const int nb = a.eval_seqs - done < 10 ? a.eval_seqs - done : 10;
            cx_seqtask_batch b = cx_seqtask_sample_fixed(&eval_rng, nb, &task, L, reps);
            cx_tensor *lg = cx_dnc_forward(m, b.input, NULL);
            wrong += cx_seqtask_bits_wrong(lg, b.target, b.mask);
            for (long i = 0; i < (long)b.mask->numel; i++) bits += CX_F(b.mask)[i] != 0 ? out : 0;
            done += nb;
            cx_step_reset();
        }
        printf("EVAL task=%s model=dnc len=%d seqs=%d bits_per_seq=%.4f wrong_frac=%.6f\n", cx_seqtask_name(a.task), L,
               a.eval_seqs, (double)wrong / a.eval_seqs, (double)wrong / bits);
    }
    cx_no_grad_end();
    if (a.png_dir) {
        mkdir(a.png_dir, 0777);
        for (int i = 0; i < a.n_png; i++) pictures(m, &a, &task, a.png_len[i]);
    }
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m);
    cx_flat_free(flat);
    return 0;
}
