/*
 * ntm -- the Neural Turing Machine (Graves et al. 2014) on its algorithmic
 * tasks (cortex/ntm.h, cortex/seqtasks.h), with an LSTM baseline.
 *
 *   ntm --task copy|repeat|recall --model ntm|lstm --steps S --seed K
 *       [--batch B] [--optim rmsprop|adam] [--lr X] [--clip-grad G]
 *       [--hidden H] [--layers L (lstm)] [--controller lstm|ff]
 *       [--mem-n N] [--mem-w W] [--min-len a --max-len b] [--threads T]
 *       [--log-every K] [--eval-lengths 20,40,80,120] [--eval-seqs S]
 *       [--out model.safetensors] [--load model.safetensors]
 *       [--png-dir DIR] [--png-len L] [--metrics m.csv]
 *
 * Training: --steps minibatches of --batch sequences from the task's paper
 * distribution (copy: 8-bit vectors, lengths 1..20), the masked BCE of the
 * outputs (cx_seqtask_loss), gradient norm clipped to --clip-grad (10),
 * RMSprop (lr 1e-4, momentum 0.9, alpha 0.95, the paper's / pytorch-ntm's
 * setting) or Adam (--optim adam, lr 1e-3 unless --lr).
 * Every --log-every steps a line and a CSV row (--metrics): sequences seen,
 * mean bits wrong per sequence and loss over those steps.
 * After training: bits wrong per sequence at each --eval-lengths length
 * (--eval-seqs fresh sequences each, from a separate seeded stream), lines
 *   EVAL task=copy model=ntm len=40 seqs=100 bits_per_seq=0.12 wrong_frac=0.0004
 * (len is L for copy and repeat copy, the item count for recall; repeat
 * copy is evaluated at the middle repeat count, (min_rep + max_rep) / 2).
 * --png-dir (NTM only): inputs / targets / outputs, the write and read
 * weightings over time and the memory after the last step, for one sequence
 * of each --png-len length (default: the --eval-lengths), as labelled
 * heatmaps with colour scales.
 * The LSTM baseline (--model lstm): a stacked LSTM (--layers 3, --hidden
 * 256) and a linear output layer, trained on the same batches.
 */
#define EX_PROG "ntm"
#include "seqtask_common.h"

#include <cortex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct {
    cx_seqtask_kind task;
    bool lstm;
    int steps, batch, hidden, layers, mem_n, mem_w, min_len, max_len, threads, log_every, eval_seqs;
    unsigned long seed;
    const char *optim, *out, *load, *png_dir, *metrics;
    double lr, clip_grad;
    cx_ntm_controller controller;
    int eval_len[32], n_eval, png_len[32], n_png;
} args;

static void usage(void) {
    fprintf(stderr, "usage: ntm --task copy|repeat|recall --model ntm|lstm --steps S --seed K [--batch B]\n"
                    "           [--optim rmsprop|adam] [--lr X] [--clip-grad G] [--hidden H] [--layers L]\n"
                    "           [--controller lstm|ff] [--mem-n N] [--mem-w W] [--min-len a] [--max-len b]\n"
                    "           [--threads T] [--log-every K] [--eval-lengths 20,40,..] [--eval-seqs S]\n"
                    "           [--out F] [--load F] [--png-dir DIR] [--png-len 20,..] [--metrics F.csv]\n");
    exit(2);
}

static void parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->task = CX_SEQTASK_COPY;
    a->steps = 1000, a->batch = 1, a->hidden = -1, a->layers = 3, a->mem_n = 128, a->mem_w = 20;
    a->min_len = -1, a->max_len = -1, a->threads = 1, a->log_every = 100, a->eval_seqs = 100;
    a->seed = 1, a->optim = "rmsprop", a->lr = -1, a->clip_grad = 10;
    a->controller = CX_NTM_LSTM;
    a->n_eval = parse_list("20,40,80,120", a->eval_len, 32);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(f, "--task")) {
            if (!cx_seqtask_parse(v, &a->task)) usage();
        } else if (!strcmp(f, "--model")) {
            if (strcmp(v, "ntm") && strcmp(v, "lstm")) usage();
            a->lstm = !strcmp(v, "lstm");
        } else if (!strcmp(f, "--controller")) {
            if (strcmp(v, "lstm") && strcmp(v, "ff")) usage();
            a->controller = !strcmp(v, "ff") ? CX_NTM_FF : CX_NTM_LSTM;
        } else if (!strcmp(f, "--steps")) a->steps = (int)num(f, v, 0, 100000000);
        else if (!strcmp(f, "--seed")) a->seed = (unsigned long)num(f, v, 0, 2147483647);
        else if (!strcmp(f, "--batch")) a->batch = (int)num(f, v, 1, 4096);
        else if (!strcmp(f, "--hidden")) a->hidden = (int)num(f, v, 1, 65536);
        else if (!strcmp(f, "--layers")) a->layers = (int)num(f, v, 1, 16);
        else if (!strcmp(f, "--mem-n")) a->mem_n = (int)num(f, v, 3, 65536);
        else if (!strcmp(f, "--mem-w")) a->mem_w = (int)num(f, v, 1, 65536);
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
        } else if (!strcmp(f, "--lr")) a->lr = atof(v);
        else if (!strcmp(f, "--clip-grad")) a->clip_grad = atof(v);
        else if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--load")) a->load = v;
        else if (!strcmp(f, "--png-dir")) a->png_dir = v;
        else if (!strcmp(f, "--metrics")) a->metrics = v;
        else usage();
    }
    if (a->hidden < 0) a->hidden = a->lstm ? 256 : 100;
    if (a->lr < 0) a->lr = !strcmp(a->optim, "adam") ? 1e-3 : 1e-4;
    if (!a->n_png) {
        memcpy(a->png_len, a->eval_len, sizeof a->png_len);
        a->n_png = a->n_eval;
    }
}

/* The model: an NTM, or the LSTM baseline (module "lstm" + "fc"). */
typedef struct {
    cx_module *ntm, *lstm, *fc, *root;
} model;

static cx_tensor *run(model *m, cx_tensor *x, cx_ntm_trace *tr) {
    if (m->ntm) return cx_ntm_forward(m->ntm, x, tr).logits;
    cx_rnn_out o = cx_rnn_forward(m->lstm, x, NULL, NULL);
    return cx_module_forward(m->fc, o.output);
}

/* ---------------------------------------------------------------- pictures */
static void pictures(model *m, const args *a, const cx_seqtask_opts *task, int len) {
    cx_rng rng = cx_rng_new(a->seed * 7919u + 17u + (unsigned)len);
    int reps = a->task == CX_SEQTASK_REPEAT ? (task->min_rep + task->max_rep) / 2 : 0;
    cx_seqtask_batch b = cx_seqtask_sample_fixed(&rng, 1, task, len, reps);
    cx_ntm_trace tr = {0};
    cx_no_grad_begin();
    cx_tensor *lg = cx_ntm_forward(m->ntm, b.input, &tr).logits;
    cx_no_grad_end();
    const int T = b.T, I = b.input->shape[2], O = b.target->shape[2], N = tr.N, W = tr.W;
    long wrong = cx_seqtask_bits_wrong(lg, b.target, b.mask);
    /* channel x time matrices */
    float *in = malloc((size_t)I * T * sizeof(float)), *tg = malloc((size_t)O * T * sizeof(float)),
          *pr = malloc((size_t)O * T * sizeof(float));
    for (int t = 0; t < T; t++) {
        for (int c = 0; c < I; c++) in[(size_t)c * T + t] = CX_F(b.input)[(size_t)t * I + c];
        for (int c = 0; c < O; c++) {
            const float msk = CX_F(b.mask)[t];
            tg[(size_t)c * T + t] = CX_F(b.target)[(size_t)t * O + c];
            pr[(size_t)c * T + t] = msk != 0 ? 1.0f / (1.0f + expf(-CX_F(lg)[(size_t)t * O + c])) : 0.0f;
        }
    }
    const int cell = T > 120 ? 4 : T > 60 ? 6 : 10;
    char title[160], path[512];
    cx_canvas io[3];
    memset(io, 0, sizeof io);
    bool ok = panel(&io[0], in, I, T, "inputs", "time", "channel", 0, 1, cell) &&
              panel(&io[1], tg, O, T, "targets", "time", "bit", 0, 1, cell) &&
              panel(&io[2], pr, O, T, "outputs (sigmoid, scored steps)", "time", "bit", 0, 1, cell);
    snprintf(title, sizeof title, "NTM %s, length %d: %ld bits wrong", cx_seqtask_name(a->task), len, wrong);
    snprintf(path, sizeof path, "%s/%s_len%d_io.png", a->png_dir, cx_seqtask_name(a->task), len);
    if (ok) save_stack(path, title, io, 3);
    for (int i = 0; i < 3; i++) cx_canvas_free(&io[i]);
    /* weightings: slot x time, head 0 of each kind, batch item 0; only the
     * slots either head visits (weight > 0.05 at some step), as one circular
     * window (the memory wraps around): the complement of the longest run of
     * unvisited slots, widened by 2 on each side */
    char *vis = calloc((size_t)N, 1);
    for (int t = 0; t < T; t++)
        for (int s = 0; s < N; s++)
            if (tr.write_w[((size_t)t * tr.Wr) * N + s] > 0.05f || tr.read_w[((size_t)t * tr.R) * N + s] > 0.05f)
                vis[s] = 1;
    int gap = 0, gap_end = -1; /* longest circular run of unvisited slots, ending at gap_end */
    for (int st = 0, run = 0; st < 2 * N; st++) {
        run = vis[st % N] ? 0 : run + 1;
        if (run > gap && run <= N) gap = run, gap_end = st % N;
    }
    int lo = 0, ns = N;
    if (gap > 4 && gap < N) {
        ns = N - gap + 4;
        lo = ((gap_end + 1 - 2) % N + N) % N;
    }
    free(vis);
    float *ww = malloc((size_t)ns * T * sizeof(float)), *rw = malloc((size_t)ns * T * sizeof(float));
    for (int t = 0; t < T; t++)
        for (int s = 0; s < ns; s++) {
            const int slot = (lo + s) % N;
            ww[(size_t)s * T + t] = tr.write_w[((size_t)t * tr.Wr) * N + slot];
            rw[(size_t)s * T + t] = tr.read_w[((size_t)t * tr.R) * N + slot];
        }
    cx_canvas wp[2];
    memset(wp, 0, sizeof wp);
    ok = panel_rows(&wp[0], ww, ns, T, "write weighting (head 0)", "time", "memory slot", 0, 1, cell, lo, N) &&
         panel_rows(&wp[1], rw, ns, T, "read weighting (head 0)", "time", "memory slot", 0, 1, cell, lo, N);
    snprintf(title, sizeof title, "NTM %s, length %d: weightings, slots %d..%d of %d", cx_seqtask_name(a->task), len,
             lo, (lo + ns - 1) % N, N);
    snprintf(path, sizeof path, "%s/%s_len%d_weights.png", a->png_dir, cx_seqtask_name(a->task), len);
    if (ok) save_stack(path, title, wp, 2);
    for (int i = 0; i < 2; i++) cx_canvas_free(&wp[i]);
    /* memory after the input phase, the same slots (element x slot) */
    int tin = a->task == CX_SEQTASK_RECALL ? T - 1 - task->item_len : len;
    float *mm = malloc((size_t)W * ns * sizeof(float));
    for (int s = 0; s < ns; s++)
        for (int k = 0; k < W; k++) mm[(size_t)k * ns + s] = tr.mem[((size_t)tin * N + (lo + s) % N) * W + k];
    cx_canvas mp;
    memset(&mp, 0, sizeof mp);
    snprintf(title, sizeof title, "memory after step %d (end of input)", tin);
    if (panel(&mp, mm, W, ns, title, "memory slot (window of the weightings)", "element", 0, 0, cell)) {
        snprintf(path, sizeof path, "%s/%s_len%d_memory.png", a->png_dir, cx_seqtask_name(a->task), len);
        snprintf(title, sizeof title, "NTM %s, length %d: memory contents", cx_seqtask_name(a->task), len);
        save_stack(path, title, &mp, 1);
    }
    cx_canvas_free(&mp);
    free(in), free(tg), free(pr), free(ww), free(rw), free(mm);
    cx_ntm_trace_free(&tr);
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
    model m;
    memset(&m, 0, sizeof m);
    if (a.lstm) {
        cx_rnn_opts ro = cx_rnn_defaults();
        ro.num_layers = a.layers;
        m.root = cx_sequential_new();
        m.lstm = cx_lstm_new(in, a.hidden, &ro);
        m.fc = cx_linear_new(a.hidden, out, true);
        cx_sequential_add(m.root, "lstm", m.lstm);
        cx_sequential_add(m.root, "fc", m.fc);
    } else {
        cx_ntm_config cfg = cx_ntm_defaults(in, out);
        cfg.hidden = a.hidden;
        cfg.mem_n = a.mem_n;
        cfg.mem_w = a.mem_w;
        cfg.controller = a.controller;
        if (a.load) {
            if (cx_ntm_load(a.load, &m.ntm)) {
                fprintf(stderr, "ntm: %s\n", cx_last_error());
                return 1;
            }
        } else {
            m.ntm = cx_ntm_new(&cfg);
        }
        m.root = m.ntm;
    }
    if (a.lstm && a.load && cx_module_load(m.root, a.load)) {
        fprintf(stderr, "ntm: %s\n", cx_last_error());
        return 1;
    }
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(m.root, &ps);
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
    printf("task %s, model %s: %ld parameters, %s lr %g, batch %d, clip-grad %g, seed %lu\n",
           cx_seqtask_name(a.task), a.lstm ? "lstm" : "ntm", (long)cx_params_count(&ps), a.optim, a.lr, a.batch,
           a.clip_grad, a.seed);
    cx_module_print(m.root);
    FILE *csv = NULL;
    if (a.metrics) {
        csv = fopen(a.metrics, "w");
        if (!csv) {
            fprintf(stderr, "ntm: cannot write %s\n", a.metrics);
            return 1;
        }
        fprintf(csv, "sequences,bits_wrong_per_seq,loss,seconds\n");
    }
    cx_rng data_rng = cx_rng_new(a.seed * 1000003u + 1u);
    double t0 = now(), win_loss = 0;
    long win_wrong = 0, win_seqs = 0;
    for (int s = 1; s <= a.steps; s++) {
        cx_seqtask_batch b = cx_seqtask_sample(&data_rng, a.batch, &task);
        cx_tensor *lg = run(&m, b.input, NULL);
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
    const double train_s = now() - t0;
    if (a.steps) printf("trained %d steps (%ld sequences) in %.1f s\n", a.steps, (long)a.steps * a.batch, train_s);
    if (csv) fclose(csv);
    if (a.out) {
        cx_status st = a.lstm ? cx_module_save(m.root, a.out, NULL, NULL, 0) : cx_ntm_save(a.out, m.ntm, NULL, NULL, 0);
        if (st) fprintf(stderr, "ntm: %s\n", cx_last_error());
        else printf("saved %s\n", a.out);
    }
    /* evaluation at fixed lengths */
    cx_rng eval_rng = cx_rng_new(a.seed * 31337u + 99u);
    cx_no_grad_begin();
    for (int e = 0; e < a.n_eval && a.eval_seqs > 0; e++) {
        const int L = a.eval_len[e];
        int reps = a.task == CX_SEQTASK_REPEAT ? (task.min_rep + task.max_rep) / 2 : 0;
        long wrong = 0, bits = 0;
        for (int done = 0; done < a.eval_seqs;) {
            const int nb = a.eval_seqs - done < 10 ? a.eval_seqs - done : 10;
            cx_seqtask_batch b = cx_seqtask_sample_fixed(&eval_rng, nb, &task, L, reps);
            cx_tensor *lg = run(&m, b.input, NULL);
            wrong += cx_seqtask_bits_wrong(lg, b.target, b.mask);
            for (long i = 0; i < (long)b.mask->numel; i++) bits += CX_F(b.mask)[i] != 0 ? out : 0;
            done += nb;
            cx_step_reset();
        }
        printf("EVAL task=%s model=%s len=%d seqs=%d bits_per_seq=%.4f wrong_frac=%.6f\n", cx_seqtask_name(a.task),
               a.lstm ? "lstm" : "ntm", L, a.eval_seqs, (double)wrong / a.eval_seqs, (double)wrong / bits);
    }
    cx_no_grad_end();
    if (a.png_dir && m.ntm) {
        mkdir(a.png_dir, 0777);
        for (int i = 0; i < a.n_png; i++) pictures(&m, &a, &task, a.png_len[i]);
    }
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(m.root);
    cx_flat_free(flat);
    return 0;
}
