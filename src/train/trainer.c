/* The trainer of cortex/train.h: the loop, evaluations, progress line,
 * metrics CSV, checkpoints and exact resume. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cortex/core.h"
#include "cortex/io.h"
#include "cortex/nn.h"
#include "cortex/optim.h"
#include "cortex/train.h"
#include "cortex/dist.h"
#include "../tensor/internal.h"

/* ---------------------------------------------------------------- helpers */
static char *dup_or_null(const char *s) { return s ? cx_xstrdup(s) : NULL; }

/* ---------------------------------------------------------------- checkpoint writer */
struct cx_ckpt {
    int n, cap;
    cx_tensor **t;
    char **names;
    int nm, capm;
    char **keys, **vals;
};

void cx_ckpt_add_tensor(cx_ckpt *ck, const char *name, cx_tensor *t) {
    if (!ck || !name || !t) cx_fatal("cx_ckpt_add_tensor: NULL argument");
    if (ck->n == ck->cap) {
        ck->cap = ck->cap ? 2 * ck->cap : 64;
        ck->t = cx_xrealloc(ck->t, (size_t)ck->cap * sizeof *ck->t);
        ck->names = cx_xrealloc(ck->names, (size_t)ck->cap * sizeof *ck->names);
    }
    ck->t[ck->n] = t;
    ck->names[ck->n++] = dup_or_null(name);
}

void cx_ckpt_add_meta(cx_ckpt *ck, const char *key, const char *value) {
    if (!ck || !key || !value) cx_fatal("cx_ckpt_add_meta: NULL argument");
    if (ck->nm == ck->capm) {
        ck->capm = ck->capm ? 2 * ck->capm : 32;
        ck->keys = cx_xrealloc(ck->keys, (size_t)ck->capm * sizeof *ck->keys);
        ck->vals = cx_xrealloc(ck->vals, (size_t)ck->capm * sizeof *ck->vals);
    }
    ck->keys[ck->nm] = dup_or_null(key);
    ck->vals[ck->nm++] = dup_or_null(value);
}

static void ckpt_meta_fmt(cx_ckpt *ck, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void ckpt_meta_fmt(cx_ckpt *ck, const char *key, const char *fmt, ...) {
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    cx_ckpt_add_meta(ck, key, buf);
}

static void ckpt_free(cx_ckpt *ck) {
    for (int i = 0; i < ck->n; i++) free(ck->names[i]);
    for (int i = 0; i < ck->nm; i++) {
        free(ck->keys[i]);
        free(ck->vals[i]);
    }
    free(ck->t);
    free(ck->names);
    free(ck->keys);
    free(ck->vals);
    memset(ck, 0, sizeof *ck);
}

/* ---------------------------------------------------------------- the trainer */
typedef struct {
    char name[48];
    cx_rng *rng;      /* NULL: the thread's current stream */
    cx_rng epoch;     /* its state when the epoch in progress began */
} rng_entry;

struct cx_trainer {
    cx_train_task task;
    cx_train_opts o;
    char *metrics_path, *checkpoint_path, *unit;
    cx_module *model;
    cx_optim *opt;
    cx_params params; /* the optimiser's parameters (clipping) */
    double base_lr, lr;
    rng_entry *rngs;
    int n_rng;
    cx_train_pos pos;
    bool in_epoch;
    bool pending_end;          /* the end-of-epoch evaluation failed before the epoch was closed */
    /* the epoch in progress */
    double ep_sum, ep_secs, ep_cpu, ep_seg_t0, ep_cpu_t0;
    int64_t ep_count;
    /* this run */
    double run_t0, sec0, deadline, run_secs, last_loss;
    int64_t run_count, run_batches, last_count;
    /* metrics CSV */
    char *csv;
    size_t csv_len, csv_cap;
    char cols[CX_METRICS_MAX][32];
    int n_cols;
    bool have_header;
    /* progress line */
    FILE *prog;
    int prog_len;
    double last_draw;
    /* data-parallel (opts.data_parallel on several processes) */
    cx_dist_reducer *red;
    bool dp, root;
    /* batch splitting across threads */
    bool split_ok;             /* task, model and options allow it */
    int split_last;            /* parts of the last step */
    int split_mode;            /* -1: not decided; 0: parts too small, 1: split (split_decide) ... */
    int split_mode_parts;      /* ... for this many parts */
    cx_tensor **sp_params;     /* the model's and the optimiser's parameters */
    int sp_n;
    cx_grad_sink *sinks;       /* [sp_cap]: part t >= 1 writes its gradients to sinks[t] */
    int sp_cap;
};

static bool rng_name_ok(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 40) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static cx_rng rng_value(const rng_entry *e) { return e->rng ? *e->rng : cx_rng_get(); }
static void rng_assign(rng_entry *e, cx_rng v) {
    if (e->rng) *e->rng = v;
    else cx_rng_set(v);
}

cx_train_opts cx_train_defaults(void) { return (cx_train_opts){.epochs = 1, .sched = {.kind = CX_SCHED_CONSTANT}}; }

cx_trainer *cx_trainer_new(const cx_train_task *task, cx_module *model, cx_optim *opt, const cx_train_opts *opts) {
    if (!task || !task->begin_epoch || !task->next_batch || !task->loss)
        cx_fatal("cx_trainer_new: the task needs begin_epoch, next_batch and loss callbacks");
    if (!opt) cx_fatal("cx_trainer_new: NULL optimiser");
    cx_train_opts d = cx_train_defaults();
    const cx_train_opts *o = opts ? opts : &d;
    if (o->epochs < 0 || o->max_steps < 0 || !(o->minutes >= 0) || !isfinite(o->minutes) || o->eval_every < 0 ||
        !(o->clip >= 0) || o->n_meta < 0 || (o->n_meta > 0 && (!o->meta_keys || !o->meta_values)))
        cx_fatal("cx_trainer_new: invalid options (negative limit, clip or eval_every, or a bad metadata list)");
    if (o->epochs == 0 && o->max_steps == 0 && o->minutes == 0)
        cx_fatal("cx_trainer_new: no limit: set epochs, max_steps or minutes");
    /* invalid schedules are fatal now, not mid-run (also the one behind a warm-up) */
    (void)cx_sched_lr(&o->sched, 1.0, 0);
    if (o->sched.warmup_iters > 0) (void)cx_sched_lr(&o->sched, 1.0, o->sched.warmup_iters);
    cx_trainer *tr = cx_xmalloc(sizeof *tr);
    memset(tr, 0, sizeof *tr);
    tr->task = *task;
    tr->o = *o;
    tr->metrics_path = dup_or_null(o->metrics_path);
    tr->checkpoint_path = dup_or_null(o->checkpoint_path);
    tr->unit = dup_or_null(o->unit ? o->unit : "ex");
    tr->o.metrics_path = tr->metrics_path;
    tr->o.checkpoint_path = tr->checkpoint_path;
    tr->o.unit = tr->unit;
    tr->model = model;
    tr->opt = opt;
    cx_params_init(&tr->params);
    for (int i = 0; i < cx_optim_param_count(opt); i++) cx_params_add(&tr->params, cx_optim_param(opt, i));
    tr->base_lr = tr->lr = cx_optim_get_lr(opt);
    tr->rngs = cx_xmalloc(sizeof *tr->rngs);
    memset(tr->rngs, 0, sizeof *tr->rngs);
    strcpy(tr->rngs[0].name, "current");
    tr->n_rng = 1;
    tr->pos = (cx_train_pos){1, 0, 0, 0, 0.0};
    tr->csv_cap = 256;
    tr->csv = cx_xmalloc(tr->csv_cap);
    tr->csv[0] = 0;
    tr->dp = o->data_parallel && cx_dist_size() > 1;
    tr->root = cx_dist_rank() == 0;
    if (!o->quiet && tr->root) {
        if (o->progress_stream) tr->prog = o->progress_stream;
        else if (isatty(2)) tr->prog = stderr;
    }
    if (!tr->root) tr->o.log = NULL;
    tr->last_draw = -INFINITY;
    const char *env = getenv("CX_SPLIT_BATCH");
    tr->split_ok = o->split_batch == CX_SPLIT_AUTO && !(env && !strcmp(env, "0")) && task->loss_part &&
                   model && cx_module_split_safe(model) && !tr->dp;
    tr->split_last = 1;
    tr->split_mode = -1;
    if (tr->dp) {
        /* every rank starts from rank 0's weights */
        cx_dist_broadcast_params(&tr->params);
        tr->red = cx_dist_reducer_new(&tr->params, 0);
    }
    return tr;
}

void cx_trainer_free(cx_trainer *tr) {
    if (!tr) return;
    for (int i = 0; i < tr->sp_cap; i++) cx_grad_sink_free(&tr->sinks[i]);
    free(tr->sinks);
    free(tr->sp_params);
    cx_dist_reducer_free(tr->red);
    cx_params_free(&tr->params);
    free(tr->metrics_path);
    free(tr->checkpoint_path);
    free(tr->unit);
    free(tr->rngs);
    free(tr->csv);
    free(tr);
}

void cx_trainer_add_rng(cx_trainer *tr, const char *name, cx_rng *rng) {
    if (!tr || !rng) cx_fatal("cx_trainer_add_rng: NULL argument");
    if (!rng_name_ok(name) || !strcmp(name, "current"))
        cx_fatal("cx_trainer_add_rng: bad stream name '%s' (1..40 characters from A-Z a-z 0-9 _ -, not 'current')",
                 name ? name : "(null)");
    for (int i = 0; i < tr->n_rng; i++)
        if (!strcmp(tr->rngs[i].name, name)) cx_fatal("cx_trainer_add_rng: stream '%s' registered twice", name);
    tr->rngs = cx_xrealloc(tr->rngs, (size_t)(tr->n_rng + 1) * sizeof *tr->rngs);
    rng_entry *e = &tr->rngs[tr->n_rng++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    e->rng = rng;
    e->epoch = *rng;
}

/* ---------------------------------------------------------------- info */
cx_train_info cx_trainer_info(const cx_trainer *tr) {
    cx_train_info in;
    memset(&in, 0, sizeof in);
    in.trainer = (cx_trainer *)tr;
    in.pos = tr->pos;
    in.lr = tr->lr;
    in.loss = tr->last_loss;
    in.count = tr->last_count;
    in.train_loss = tr->ep_count ? tr->ep_sum / (double)tr->ep_count : NAN;
    in.epoch_count = tr->ep_count;
    in.epoch_seconds = tr->ep_secs;
    in.epoch_cpu_seconds = tr->ep_cpu;
    in.run_count = tr->run_count;
    in.run_seconds = tr->run_secs;
    in.metrics = NULL;
    return in;
}

const char *cx_trainer_metrics_csv(const cx_trainer *tr) { return tr->csv; }
int cx_trainer_split_parts(const cx_trainer *tr) { return tr ? tr->split_last : 1; }

/* ---------------------------------------------------------------- progress line */
void cx_trainer_clear_line(cx_trainer *tr) {
    if (!tr || !tr->prog || tr->prog_len <= 0) return;
    fprintf(tr->prog, "\r%*s\r", tr->prog_len, "");
    fflush(tr->prog);
    tr->prog_len = 0;
}

static void fmt_secs(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%.0fs", s);
}

static void draw_progress(cx_trainer *tr, double t, bool force) {
    if (!tr->prog || !(force || t - tr->last_draw >= 0.1)) return;
    const cx_train_pos *p = &tr->pos;
    char line[256], ep[32], bar[40] = "", bits[40] = "", rate[32], eta_s[32];
    size_t k = 0;
    if (tr->o.epochs > 0) snprintf(ep, sizeof ep, "%d/%d", p->epoch, tr->o.epochs);
    else snprintf(ep, sizeof ep, "%d", p->epoch);
    if (p->num_batches > 0) {
        const int width = 24;
        int fill = (int)((int64_t)p->batch * width / p->num_batches);
        bar[0] = '[';
        for (int i = 0; i < width; i++) bar[1 + i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width + 1] = ']';
        bar[width + 2] = 0;
    }
    double loss = tr->ep_count ? tr->ep_sum / (double)tr->ep_count : NAN;
    if (tr->o.bits) snprintf(bits, sizeof bits, " (%.3f bits)", loss / log(2.0));
    double r = tr->run_secs > 0 ? (double)tr->run_count / tr->run_secs : 0;
    if (r >= 1e4) snprintf(rate, sizeof rate, "%.1fk", r / 1000);
    else snprintf(rate, sizeof rate, "%.0f", r);
    double spb = tr->run_batches ? tr->run_secs / (double)tr->run_batches : 0, eta = INFINITY;
    if (spb > 0) {
        if (tr->o.epochs > 0 && p->num_batches > 0)
            eta = ((double)(p->num_batches - p->batch) + (double)(tr->o.epochs - p->epoch) * p->num_batches) * spb;
        if (tr->o.max_steps > 0) eta = fmin(eta, (double)(tr->o.max_steps - p->step) * spb);
    }
    if (isfinite(tr->deadline)) eta = fmin(eta, tr->deadline - t);
    fmt_secs(eta, eta_s, sizeof eta_s);
    if (p->num_batches > 0)
        k = (size_t)snprintf(line, sizeof line, "epoch %s %s %d/%d loss %.4f%s  %s %s/s  ETA %s", ep, bar, p->batch,
                             p->num_batches, loss, bits, rate, tr->unit, eta_s);
    else
        k = (size_t)snprintf(line, sizeof line, "epoch %s batch %d loss %.4f%s  %s %s/s  ETA %s", ep, p->batch, loss,
                             bits, rate, tr->unit, eta_s);
    if (k >= sizeof line) k = sizeof line - 1;
    int pad = tr->prog_len > (int)k ? tr->prog_len - (int)k : 0;
    fprintf(tr->prog, "\r%s%*s", line, pad, "");
    if (pad) fprintf(tr->prog, "\r%s", line);
    fflush(tr->prog);
    tr->prog_len = (int)k;
    tr->last_draw = t;
}

/* ---------------------------------------------------------------- metrics CSV */
static void csv_appendf(cx_trainer *tr, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void csv_appendf(cx_trainer *tr, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = tr->csv_cap - tr->csv_len;
        int k = vsnprintf(tr->csv + tr->csv_len, room, fmt, ap);
        va_end(ap);
        if (k < 0) cx_fatal("trainer: metrics formatting failed");
        if ((size_t)k < room) {
            tr->csv_len += (size_t)k;
            return;
        }
        tr->csv_cap = 2 * tr->csv_cap + (size_t)k;
        tr->csv = cx_xrealloc(tr->csv, tr->csv_cap);
    }
}

static void csv_row(cx_trainer *tr, const cx_metrics *m, bool end) {
    if (!tr->have_header) {
        tr->n_cols = m->n;
        for (int i = 0; i < m->n; i++) strcpy(tr->cols[i], m->name[i]);
        csv_appendf(tr, "epoch,lr,train_loss");
        for (int i = 0; i < tr->n_cols; i++) csv_appendf(tr, ",%s", tr->cols[i]);
        csv_appendf(tr, ",seconds\n");
        tr->have_header = true;
    }
    const cx_train_pos *p = &tr->pos;
    if (end) csv_appendf(tr, "%d", p->epoch);
    else
        csv_appendf(tr, "%.4f",
                    (double)(p->epoch - 1) + (p->num_batches > 0 ? (double)p->batch / (double)p->num_batches : 0.0));
    csv_appendf(tr, ",%.6g,%.6f", tr->lr, tr->ep_count ? tr->ep_sum / (double)tr->ep_count : NAN);
    for (int i = 0; i < tr->n_cols; i++) csv_appendf(tr, ",%.6f", cx_metrics_get(m, tr->cols[i]));
    csv_appendf(tr, ",%.3f\n", tr->ep_secs);
}

/* Column names of a metrics CSV header "epoch,lr,train_loss,...,seconds". */
static bool csv_parse_header(const char *text, char cols[CX_METRICS_MAX][32], int *n_cols) {
    const char *nl = strchr(text, '\n');
    if (!nl) return false;
    const char *pre = "epoch,lr,train_loss";
    size_t lp = strlen(pre), len = (size_t)(nl - text);
    if (len < lp + 8 || strncmp(text, pre, lp) || strncmp(nl - 8, ",seconds", 8)) return false;
    const char *p = text + lp, *end = nl - 8;
    int n = 0;
    while (p < end) {
        if (*p != ',') return false;
        p++;
        const char *q = p;
        while (q < end && *q != ',') q++;
        size_t w = (size_t)(q - p);
        if (w < 1 || w > 31 || n >= CX_METRICS_MAX) return false;
        memcpy(cols[n], p, w);
        cols[n][w] = 0;
        for (size_t i = 0; i < w; i++) {
            char c = cols[n][i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-'))
                return false;
        }
        n++;
        p = q;
    }
    *n_cols = n;
    return true;
}

/* ---------------------------------------------------------------- checkpoints */
/* What a checkpoint holds of the model: its state (parameters and buffers,
 * each tensor once) under its state-dict names relative to the model, as
 * cx_module_save writes them (so a checkpoint also loads as a model file),
 * then every optimiser parameter that is not part of it (parameters outside
 * the model, or all of them without a model) under its own name. */
typedef struct {
    int n;
    cx_tensor **t;
    const char **name;
    cx_params ps;
    cx_state_dict sd;
} model_state;

/* The model's parameters (with its buffers when `state`), then the
 * optimiser's parameters that are not among them, into *out (initialised
 * here). Returns how many come from the model. */
static int params_of(cx_trainer *tr, bool state, cx_params *out) {
    cx_params_init(out);
    if (tr->model) (state ? cx_module_state : cx_module_params)(tr->model, out);
    const int in_model = out->n;
    for (int i = 0; i < tr->params.n; i++) {
        bool seen = false;
        for (int j = 0; j < out->n && !seen; j++) seen = out->t[j] == tr->params.t[i];
        if (!seen) cx_params_add(out, tr->params.t[i]);
    }
    return in_model;
}

static cx_status model_state_of(cx_trainer *tr, const char *path, model_state *ms) {
    memset(ms, 0, sizeof *ms);
    if (tr->model) cx_module_state_dict(tr->model, &ms->sd);
    const int in_model = params_of(tr, true, &ms->ps);
    ms->n = ms->ps.n;
    ms->t = ms->ps.t;
    ms->name = cx_xcalloc((size_t)(ms->n ? ms->n : 1), sizeof *ms->name);
    for (int i = 0; i < ms->n; i++) {
        for (int j = 0; i < in_model && j < ms->sd.n && !ms->name[i]; j++)
            if (ms->sd.t[j] == ms->t[i]) ms->name[i] = ms->sd.names[j];
        if (!ms->name[i]) ms->name[i] = ms->t[i]->name;
        if (!ms->name[i])
            return cx_set_error(CX_ERR_ARG, "%s: %s tensor %d has no name", path,
                                i < in_model ? "model" : "optimiser parameter", i);
    }
    return CX_OK;
}

static void model_state_free(model_state *ms) {
    free(ms->name);
    cx_params_free(&ms->ps);
    cx_state_dict_free(&ms->sd);
}

cx_status cx_trainer_save(cx_trainer *tr, const char *path) {
    if (!tr || !path) return cx_set_error(CX_ERR_ARG, "cx_trainer_save: NULL argument");
    cx_ckpt ck;
    memset(&ck, 0, sizeof ck);
    model_state ms;
    cx_params os;
    cx_params_init(&os);
    cx_tensor **rt = cx_xmalloc(2 * (size_t)tr->n_rng * sizeof *rt);
    int nrt = 0;
    cx_status st = model_state_of(tr, path, &ms);
    for (int i = 0; i < ms.n && !st; i++) cx_ckpt_add_tensor(&ck, ms.name[i], ms.t[i]);
    if (!st) st = cx_optim_state_export(tr->opt, &os);
    for (int i = 0; i < os.n && !st; i++) cx_ckpt_add_tensor(&ck, os.t[i]->name, os.t[i]);
    for (int i = 0; i < tr->n_rng && !st; i++) {
        cx_rng now = rng_value(&tr->rngs[i]), ep = tr->pos.batch > 0 ? tr->rngs[i].epoch : now;
        cx_rng v[2] = {now, ep};
        for (int j = 0; j < 2; j++) {
            cx_tensor *t = cx_tensor_new(CX_I64, (const int[]){2}, 1);
            CX_I64P(t)[0] = (int64_t)v[j].state;
            CX_I64P(t)[1] = (int64_t)v[j].inc;
            rt[nrt++] = t;
            char name[96];
            snprintf(name, sizeof name, "%s.%s", j ? "cortex.rng_epoch" : "cortex.rng", tr->rngs[i].name);
            cx_ckpt_add_tensor(&ck, name, t);
        }
    }
    if (!st) {
        const cx_train_pos *p = &tr->pos;
        cx_ckpt_add_meta(&ck, "cortex.checkpoint", "1");
        cx_ckpt_add_meta(&ck, "cortex.train.optim", cx_optim_name(tr->opt));
        ckpt_meta_fmt(&ck, "cortex.train.epoch", "%d", p->epoch);
        ckpt_meta_fmt(&ck, "cortex.train.batch", "%d", p->batch);
        ckpt_meta_fmt(&ck, "cortex.train.num_batches", "%d", p->batch > 0 && p->num_batches > 0 ? p->num_batches : 0);
        ckpt_meta_fmt(&ck, "cortex.train.step", "%lld", (long long)p->step);
        ckpt_meta_fmt(&ck, "cortex.train.seconds", "%.3f", p->seconds);
        ckpt_meta_fmt(&ck, "cortex.train.epoch_loss_sum", "%.17g", tr->ep_sum);
        ckpt_meta_fmt(&ck, "cortex.train.epoch_count", "%lld", (long long)tr->ep_count);
        ckpt_meta_fmt(&ck, "cortex.train.epoch_seconds", "%.17g", tr->ep_secs);
        /* batch splitting's choice for a part count, so that a resumed run
         * makes the same one (see split_decide) */
        if (tr->split_mode >= 0)
            ckpt_meta_fmt(&ck, "cortex.train.split", "%d %s", tr->split_mode_parts, tr->split_mode ? "split" : "whole");
        cx_ckpt_add_meta(&ck, "cortex.train.metrics", tr->csv);
        for (int i = 0; i < tr->o.n_meta; i++) cx_ckpt_add_meta(&ck, tr->o.meta_keys[i], tr->o.meta_values[i]);
        if (tr->task.save_state) st = tr->task.save_state(tr->task.user, &tr->pos, &ck);
    }
    if (!st) st = cx_st_save(path, ck.t, (const char *const *)ck.names, ck.n, (const char *const *)ck.keys,
                             (const char *const *)ck.vals, ck.nm);
    for (int i = 0; i < nrt; i++) cx_tensor_free(rt[i]);
    free(rt);
    ckpt_free(&ck);
    model_state_free(&ms);
    cx_params_free(&os);
    return st;
}

static cx_status meta_i64(const cx_st_file *f, const char *path, const char *key, int64_t lo, int64_t hi,
                          int64_t *out) {
    const char *s = cx_st_meta(f, key);
    char *end;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || errno || *end || v < lo || v > hi)
        return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata %s is %s (expected an integer in [%lld, %lld])",
                            path, key, s ? "malformed" : "missing", (long long)lo, (long long)hi);
    *out = v;
    return CX_OK;
}

static cx_status meta_f64(const cx_st_file *f, const char *path, const char *key, bool signed_ok, double *out) {
    const char *s = cx_st_meta(f, key);
    char *end;
    double v = s && *s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || !isfinite(v) || (v < 0 && !signed_ok))
        return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata %s is %s (expected a finite number%s)", path,
                            key, s ? "malformed" : "missing", signed_ok ? "" : " >= 0");
    *out = v;
    return CX_OK;
}

/* `src` (from the file) must match `dst` in dtype and shape. */
static cx_status same_layout(const char *path, const char *what, const cx_tensor *src, const cx_tensor *dst,
                             const char *name) {
    char b1[96], b2[96];
    if (!src) return cx_set_error(CX_ERR_NOTFOUND, "%s: %s tensor '%s' is missing", path, what, name);
    if (src->dtype != dst->dtype || !cx_same_shape(src, dst))
        return cx_set_error(CX_ERR_SHAPE, "%s: %s tensor '%s' is %s %s, this run has %s %s", path, what, name,
                            cx_dtype_name(src->dtype), cx_shape_str(src, b1, sizeof b1), cx_dtype_name(dst->dtype),
                            cx_shape_str(dst, b2, sizeof b2));
    return CX_OK;
}

static bool is_optim_name(const char *s) { return !strncmp(s, "optim.", 6) || !strncmp(s, "state.", 6); }

static cx_status rng_from_file(const cx_st_file *f, const char *path, const char *prefix, const char *name,
                               cx_rng *out) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    const cx_tensor *t = cx_st_get(f, key);
    if (!t)
        return cx_set_error(CX_ERR_NOTFOUND, "%s: random stream tensor '%s' is missing (this run uses stream '%s')",
                            path, key, name);
    if (t->dtype != CX_I64 || t->ndim != 1 || t->shape[0] != 2)
        return cx_set_error(CX_ERR_FORMAT, "%s: random stream tensor '%s' is not I64 [2]", path, key);
    out->state = (uint64_t)CX_I64P(t)[0];
    out->inc = (uint64_t)CX_I64P(t)[1];
    return CX_OK;
}

static cx_status resume_from(cx_trainer *tr, const cx_st_file *f, const char *path) {
    const char *ver = cx_st_meta(f, "cortex.checkpoint");
    if (!ver) {
        if (cx_st_meta(f, "cortex.epoch") || cx_st_get(f, "cortex.rng") || cx_st_get(f, "cortex.rng_epoch"))
            return cx_set_error(CX_ERR_FORMAT,
                                "%s: not a checkpoint of this version: an old-format checkpoint (cortex.epoch / "
                                "cortex.rng, written before the trainer) cannot be resumed",
                                path);
        return cx_set_error(CX_ERR_FORMAT, "%s: not a checkpoint (metadata cortex.checkpoint is missing)", path);
    }
    if (strcmp(ver, "1"))
        return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint format '%s' is not supported (this version reads 1)", path,
                            ver);
    /* position */
    cx_train_pos p;
    int64_t ep, b, nb, cnt;
    double ep_sum = 0, ep_secs = 0;
    cx_status st = meta_i64(f, path, "cortex.train.epoch", 1, 2147483647, &ep);
    if (!st) st = meta_i64(f, path, "cortex.train.batch", 0, 2147483647, &b);
    if (!st) st = meta_i64(f, path, "cortex.train.num_batches", 0, 2147483647, &nb);
    if (!st) st = meta_i64(f, path, "cortex.train.step", 0, INT64_MAX, &p.step);
    if (!st) st = meta_f64(f, path, "cortex.train.seconds", false, &p.seconds);
    if (!st) st = meta_i64(f, path, "cortex.train.epoch_count", 0, INT64_MAX, &cnt);
    if (!st) st = meta_f64(f, path, "cortex.train.epoch_loss_sum", true, &ep_sum);
    if (!st) st = meta_f64(f, path, "cortex.train.epoch_seconds", false, &ep_secs);
    if (st) return st;
    p.epoch = (int)ep;
    p.batch = (int)b;
    p.num_batches = (int)nb;
    if (nb > 0 && b > nb)
        return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint position batch %d of %d is impossible", path, p.batch,
                            p.num_batches);
    const char *oname = cx_st_meta(f, "cortex.train.optim");
    if (!oname) return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata cortex.train.optim is missing", path);
    if (strcmp(oname, cx_optim_name(tr->opt)))
        return cx_set_error(CX_ERR_ARG, "%s: the checkpoint was written with the %s optimiser, this run uses %s", path,
                            oname, cx_optim_name(tr->opt));
    const char *csv = cx_st_meta(f, "cortex.train.metrics");
    char cols[CX_METRICS_MAX][32];
    int n_cols = 0;
    if (!csv) return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata cortex.train.metrics is missing", path);
    if (*csv && !csv_parse_header(csv, cols, &n_cols))
        return cx_set_error(CX_ERR_FORMAT,
                            "%s: checkpoint metadata cortex.train.metrics does not start with a metrics header "
                            "(epoch,lr,train_loss,...,seconds)",
                            path);
    /* batch splitting's choice (optional: only once a split step ran) */
    int split_parts_saved = 0, split_mode_saved = -1;
    const char *sp = cx_st_meta(f, "cortex.train.split");
    if (sp) {
        char word[8] = "";
        int used = 0;
        if (sscanf(sp, "%d %7s%n", &split_parts_saved, word, &used) != 2 || sp[used] || split_parts_saved < 2 ||
            (strcmp(word, "split") && strcmp(word, "whole")))
            return cx_set_error(CX_ERR_FORMAT, "%s: checkpoint metadata cortex.train.split is malformed ('%s')", path,
                                sp);
        split_mode_saved = !strcmp(word, "split");
    }
    /* random streams */
    cx_rng *now = cx_xmalloc(2 * (size_t)tr->n_rng * sizeof *now), *epo = now + tr->n_rng;
    for (int i = 0; i < tr->n_rng && !st; i++) {
        st = rng_from_file(f, path, "cortex.rng", tr->rngs[i].name, &now[i]);
        if (!st) st = rng_from_file(f, path, "cortex.rng_epoch", tr->rngs[i].name, &epo[i]);
    }
    for (int i = 0; i < f->n && !st; i++) {
        const char *name = f->entries[i].name, *rest = NULL;
        if (!strncmp(name, "cortex.rng.", 11)) rest = name + 11;
        else if (!strncmp(name, "cortex.rng_epoch.", 17)) rest = name + 17;
        if (!rest) continue;
        bool known = false;
        for (int j = 0; j < tr->n_rng && !known; j++) known = !strcmp(tr->rngs[j].name, rest);
        if (!known)
            st = cx_set_error(CX_ERR_ARG,
                              "%s: the checkpoint has random stream '%s', which this run does not register "
                              "(cx_trainer_add_rng)",
                              path, rest);
    }
    /* model and optimiser state: same tensors, same layouts */
    model_state ms;
    cx_params os, fo;
    cx_status st2 = model_state_of(tr, path, &ms);
    if (!st) st = st2;
    cx_params_init(&os);
    cx_params_init(&fo);
    for (int i = 0; i < ms.n && !st; i++)
        st = same_layout(path, "model", cx_st_get(f, ms.name[i]), ms.t[i], ms.name[i]);
    if (!st) st = cx_optim_state_export(tr->opt, &os);
    for (int i = 0; i < os.n && !st; i++)
        st = same_layout(path, "optimiser state", cx_st_get(f, os.t[i]->name), os.t[i], os.t[i]->name);
    for (int i = 0; i < f->n && !st; i++) {
        if (!is_optim_name(f->entries[i].name)) continue;
        if (!cx_params_find(&os, f->entries[i].name))
            st = cx_set_error(CX_ERR_FORMAT,
                              "%s: tensor '%s' is not part of this run's optimiser state (another optimiser or "
                              "model?)",
                              path, f->entries[i].name);
        else cx_params_add(&fo, f->entries[i].tensor);
    }
    /* the task's own state */
    if (!st && tr->task.load_state) st = tr->task.load_state(tr->task.user, f, path, &p);
    /* mid-epoch: replay the epoch's draws up to the saved batch */
    cx_rng *keep = cx_xmalloc((size_t)tr->n_rng * sizeof *keep);
    for (int i = 0; i < tr->n_rng; i++) keep[i] = rng_value(&tr->rngs[i]);
    if (!st && p.batch > 0) {
        for (int i = 0; i < tr->n_rng; i++) rng_assign(&tr->rngs[i], epo[i]);
        int got = tr->task.begin_epoch(tr->task.user, &p);
        if (got > 0 && p.num_batches > 0 && got != p.num_batches)
            st = cx_set_error(CX_ERR_ARG,
                              "%s: epoch %d had %d batches when the checkpoint was written, %d now (other data or "
                              "batch size?)",
                              path, p.epoch, p.num_batches, got);
        if (got > 0) p.num_batches = got;
        for (int i = 0; i < p.batch && !st; i++) {
            cx_train_pos q = p;
            q.batch = i;
            if (!tr->task.next_batch(tr->task.user, &q))
                st = cx_set_error(CX_ERR_ARG,
                                  "%s: the checkpoint is at batch %d of epoch %d, but this run's epoch ends after %d "
                                  "batches (other data or batch size?)",
                                  path, p.batch, p.epoch, i);
            cx_step_reset();
        }
    }
    /* the optimiser state (checked in full before anything is copied), then
     * the model (checked above, cannot fail) */
    if (!st && (st = cx_optim_state_import(tr->opt, &fo)) != CX_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", cx_last_error());
        cx_set_error(st, "%s: %s", path, msg); /* name the file */
    }
    if (!st)
        for (int i = 0; i < ms.n; i++) {
            const cx_tensor *src = cx_st_get(f, ms.name[i]);
            memcpy(ms.t[i]->data, src->data, (size_t)src->numel * cx_dtype_size(src->dtype));
        }
    if (st) /* the replay moved the streams: put them back */
        for (int i = 0; i < tr->n_rng; i++) rng_assign(&tr->rngs[i], keep[i]);
    free(keep);
    if (!st) {
        for (int i = 0; i < tr->n_rng; i++) {
            rng_assign(&tr->rngs[i], now[i]);
            tr->rngs[i].epoch = epo[i];
        }
        tr->pos = p;
        tr->split_mode = split_mode_saved;
        tr->split_mode_parts = split_parts_saved;
        tr->in_epoch = p.batch > 0;
        tr->ep_sum = ep_sum;
        tr->ep_count = cnt;
        tr->ep_secs = ep_secs;
        tr->ep_cpu = 0;
        size_t n = strlen(csv);
        if (n + 1 > tr->csv_cap) {
            tr->csv_cap = n + 256;
            tr->csv = cx_xrealloc(tr->csv, tr->csv_cap);
        }
        memcpy(tr->csv, csv, n + 1);
        tr->csv_len = n;
        tr->have_header = n > 0;
        tr->n_cols = n_cols;
        memcpy(tr->cols, cols, sizeof cols);
        if (tr->in_epoch) {
            tr->lr = cx_sched_lr(&tr->o.sched, tr->base_lr, p.epoch - 1);
            cx_optim_set_lr(tr->opt, tr->lr);
        }
    }
    free(now);
    model_state_free(&ms);
    cx_params_free(&os);
    cx_params_free(&fo);
    return st;
}

cx_status cx_trainer_resume(cx_trainer *tr, const char *path) {
    if (!tr || !path) return cx_set_error(CX_ERR_ARG, "cx_trainer_resume: NULL argument");
    cx_st_file *f;
    cx_status st = cx_st_load(path, &f);
    if (st) return st;
    st = resume_from(tr, f, path);
    cx_st_free(f);
    return st;
}

/* ---------------------------------------------------------------- the loop */
static void log_line(cx_trainer *tr, const cx_train_info *in) {
    FILE *o = tr->o.log;
    if (tr->o.epochs > 0) fprintf(o, "epoch %d/%d", in->pos.epoch, tr->o.epochs);
    else fprintf(o, "epoch %d", in->pos.epoch);
    if (!in->end_of_epoch) {
        if (in->pos.num_batches > 0) fprintf(o, " batch %d/%d", in->pos.batch, in->pos.num_batches);
        else fprintf(o, " batch %d", in->pos.batch);
    }
    fprintf(o, "  step %lld  lr %.3g  train_loss %.4f", (long long)in->pos.step, in->lr, in->train_loss);
    for (int i = 0; i < in->metrics->n; i++) fprintf(o, "  %s %.4f", in->metrics->name[i], in->metrics->value[i]);
    fprintf(o, "  %.2fs\n", in->epoch_seconds);
    fflush(o);
}

/* Data-parallel: every rank learns whether some rank failed, so all stop
 * together (a rank that went on would wait forever in the next all-reduce).
 * A rank that did not fail itself returns CX_ERR_IO naming the cause. */
static cx_status agree(cx_status st) {
    double bad[2] = {st ? 1.0 : 0.0, st ? (double)cx_dist_rank() : 0.0};
    cx_dist_allreduce_sum_f64(bad, 2);
    if (st || bad[0] == 0) return st;
    return cx_set_error(CX_ERR_IO, "stopped: %s on another rank (its message says why)",
                        bad[0] == 1 ? "an error" : "errors");
}

/* An evaluation: metrics, CSV row, hook, files. At the end of an epoch the
 * position moves to the start of the next one before the checkpoint. */
static cx_status evaluate(cx_trainer *tr, bool end) {
    /* an end-of-epoch evaluation that fails before the epoch is closed is
     * retried by the next cx_trainer_run (the epoch is not trained again) */
    if (end) tr->pending_end = true;
    double t = cx_now(), c = cx_cpu_now();
    tr->ep_secs += t - tr->ep_seg_t0;
    tr->ep_cpu += c - tr->ep_cpu_t0;
    cx_metrics m;
    memset(&m, 0, sizeof m);
    cx_train_info in = cx_trainer_info(tr);
    in.end_of_epoch = end;
    cx_status st = CX_OK;
    cx_trainer_clear_line(tr); /* before the task prints or evaluates */
    if (tr->task.evaluate) {
        bool training = cx_is_training();
        cx_no_grad_begin();
        cx_set_training(false);
        st = tr->task.evaluate(tr->task.user, &in, &m);
        cx_set_training(training);
        cx_no_grad_end();
        cx_step_reset();
    }
    tr->pos.seconds = tr->sec0 + cx_now() - tr->run_t0;
    if (st) return st;
    /* the row is taken back if a hook or the CSV write fails (a retry adds it again) */
    const size_t csv_len = tr->csv_len;
    const bool had_header = tr->have_header;
    csv_row(tr, &m, end);
    in.pos = tr->pos;
    in.metrics = &m;
    if (tr->o.on_eval) st = tr->o.on_eval(tr->o.hook_user, &in);
    if (!st && tr->o.log) log_line(tr, &in);
    if (!st && tr->metrics_path && tr->root) st = cx_write_file_atomic(tr->metrics_path, tr->csv, tr->csv_len);
    if (tr->dp) st = agree(st);
    if (st) {
        tr->csv_len = csv_len;
        tr->csv[csv_len] = 0;
        tr->have_header = had_header;
        return st;
    }
    if (end) {
        tr->pending_end = false;
        tr->pos.epoch++;
        tr->pos.batch = 0;
        tr->pos.num_batches = 0;
        tr->ep_sum = 0;
        tr->ep_count = 0;
        tr->ep_secs = 0;
        tr->ep_cpu = 0;
    }
    if (tr->checkpoint_path && tr->root) st = cx_trainer_save(tr, tr->checkpoint_path);
    if (tr->dp) st = agree(st);
    cx_step_reset();
    tr->ep_seg_t0 = cx_now();
    tr->ep_cpu_t0 = cx_cpu_now();
    return st;
}

static void begin_epoch(cx_trainer *tr) {
    for (int i = 0; i < tr->n_rng; i++) tr->rngs[i].epoch = rng_value(&tr->rngs[i]);
    tr->lr = cx_sched_lr(&tr->o.sched, tr->base_lr, tr->pos.epoch - 1);
    cx_optim_set_lr(tr->opt, tr->lr);
    tr->pos.batch = 0;
    tr->ep_sum = 0;
    tr->ep_count = 0;
    tr->ep_secs = 0;
    tr->ep_cpu = 0;
    int nb = tr->task.begin_epoch(tr->task.user, &tr->pos);
    tr->pos.num_batches = nb > 0 ? nb : 0;
    tr->in_epoch = true;
    tr->ep_seg_t0 = cx_now();
    tr->ep_cpu_t0 = cx_cpu_now();
}

/* The end of every training step once the gradients are in: clipping, the
 * optimiser step, the task's after_step, the step's memory released, then
 * the counters of the run (count = examples). */
static void finish_step(cx_trainer *tr, double loss_sum, int64_t count, float last) {
    if (tr->o.clip > 0) cx_clip_grad_norm(&tr->params, tr->o.clip);
    cx_optim_step(tr->opt);
    if (tr->task.after_step) tr->task.after_step(tr->task.user, &tr->pos);
    cx_step_reset();
    tr->pos.batch++;
    tr->pos.step++;
    tr->ep_sum += loss_sum;
    tr->ep_count += count;
    tr->run_count += count;
    tr->run_batches++;
    tr->last_loss = last;
    tr->last_count = count;
}

/* A batch that ends without a step (a non-finite loss, no example): its
 * memory released, the progress line erased. The batch was taken from the
 * task, so it counts as done, and a later run or a checkpoint continues
 * after it. The caller sets the error. */
static void skip_batch(cx_trainer *tr) {
    cx_step_reset();
    cx_trainer_clear_line(tr);
    tr->pos.batch++;
}

/* The error of a non-finite loss lv (on one process). */
static cx_status nonfinite_loss(const cx_trainer *tr, float lv) {
    return cx_set_error(CX_ERR_NUMERIC,
                        "loss is %g at epoch %d batch %d; rerun with --check-numerics to find the op, or lower --lr",
                        (double)lv, tr->pos.epoch, tr->pos.batch);
}

/* The data-parallel step: every rank's count, loss sum and finiteness are
 * summed first (so every rank takes the same decision, and weighs its
 * gradient by its share of the global batch); the reducer averages the
 * gradients during backward; the counters hold the global batch. A rank
 * whose shard is empty (count 0) contributes nothing and skips backward. */
static cx_status train_batch_dp(cx_trainer *tr, cx_tensor *loss, float lv, int64_t count) {
    if (count < 0) count = 0;
    bool finite = count == 0 || isfinite(lv);
    double v[3] = {(double)count, count ? (double)lv * (double)count : 0.0, finite ? 0.0 : 1.0};
    cx_dist_allreduce_sum_f64(v, 3);
    if (v[2] > 0 || !(v[0] > 0)) {
        skip_batch(tr);
        if (!(v[0] > 0))
            return cx_set_error(CX_ERR_ARG, "epoch %d batch %d: no rank has an example (the task reports count 0)",
                                tr->pos.epoch, tr->pos.batch);
        if (!finite)
            return cx_set_error(CX_ERR_NUMERIC,
                                "loss is %g at epoch %d batch %d on rank %d; rerun with --check-numerics to find the op, "
                                "or lower --lr",
                                (double)lv, tr->pos.epoch, tr->pos.batch, cx_dist_rank());
        return cx_set_error(CX_ERR_NUMERIC, "the loss is not finite on another rank at epoch %d batch %d (see its message)",
                            tr->pos.epoch, tr->pos.batch);
    }
    cx_dist_reducer_begin(tr->red, (float)((double)count / v[0]));
    if (count) cx_backward(loss);
    cx_dist_reducer_finish(tr->red);
    finish_step(tr, v[1], (int64_t)v[0], (float)(v[1] / v[0]));
    return CX_OK;
}

/* One optimiser step on the task's current batch, on the calling thread. */
static cx_status train_batch_whole(cx_trainer *tr) {
    tr->split_last = 1;
    cx_optim_zero_grad(tr->opt);
    int64_t count = 0;
    cx_tensor *loss = tr->task.loss(tr->task.user, &tr->pos, &count);
    if (!loss || loss->dtype != CX_F32 || loss->numel != 1)
        cx_fatal("cx_trainer_run: the task's loss must be a 1-element F32 tensor");
    float lv = cx_item(loss);
    if (tr->dp) return train_batch_dp(tr, loss, lv, count);
    if (!isfinite(lv)) {
        skip_batch(tr);
        return nonfinite_loss(tr, lv);
    }
    cx_backward(loss);
    if (count <= 0) count = 1;
    finish_step(tr, (double)lv * (double)count, count, lv);
    return CX_OK;
}

/* ---- batch splitting across threads (cortex/train.h) */

/* Parts this step's batch is split into: the thread count asked for
 * (cx_get_threads, not the adaptive count in use, so that busy cores change
 * only the speed), when splitting is allowed and the first split step did
 * not find the parts too small for it (split_decide); else 1. */
static int split_parts(const cx_trainer *tr) {
#ifdef _OPENMP
    if (!tr->split_ok || cx_check_numerics() || omp_in_parallel()) return 1;
    const int parts = cx_get_threads();
    if (parts <= 1 || (tr->split_mode == 0 && tr->split_mode_parts == parts)) return 1;
    return parts;
#else
    (void)tr;
    return 1;
#endif
}

/* The parameters (the model's and the optimiser's, each once: params_of)
 * and the sinks of parts 1 .. parts-1 (part 0 writes the parameters' own
 * gradients), made at the first split step. */
static void split_prepare(cx_trainer *tr, int parts) {
    if (!tr->sp_params) {
        cx_params ps;
        (void)params_of(tr, false, &ps);
        int n = 0;
        tr->sp_params = cx_xmalloc((size_t)(ps.n > 0 ? ps.n : 1) * sizeof *tr->sp_params);
        for (int i = 0; i < ps.n; i++)
            if (ps.t[i]->dtype == CX_F32 && ps.t[i]->requires_grad) tr->sp_params[n++] = ps.t[i];
        tr->sp_n = n;
        cx_params_free(&ps);
    }
    if (parts <= tr->sp_cap) return;
    tr->sinks = cx_xrealloc(tr->sinks, (size_t)parts * sizeof *tr->sinks);
    for (int i = tr->sp_cap; i < parts; i++) {
        if (i == 0) memset(&tr->sinks[0], 0, sizeof tr->sinks[0]);
        else cx_grad_sink_init(&tr->sinks[i], tr->sp_params, tr->sp_n);
        tr->sp_cap = i + 1;
    }
}

/* One part of a split step (on a cache line of its own: threads write
 * their parts at once). */
typedef struct {
    _Alignas(64) cx_rng rng; /* the part's random stream */
    cx_tensor *loss;
    float lv;                /* its value */
    int64_t count;           /* examples */
    size_t bytes;            /* arena bytes of the forward pass */
    cx_status st;            /* a failed check inside the part ... */
    char msg[256];           /* ... and its message */
} split_part;

typedef struct {
    cx_trainer *tr;
    int parts;
    cx_autograd_state ag;
    split_part *part;     /* [parts] */
    bool backward;        /* every part's forward succeeded, every loss finite, some example */
    double total;         /* examples of the batch */
} split_step;

typedef struct { split_step *ss; int p; } split_call;

static cx_status part_forward(void *user) {
    split_call *c = user;
    split_step *ss = c->ss;
    split_part *pt = &ss->part[c->p];
    int64_t count = 0;
    const size_t used0 = cx_arena_used(cx_arena_current());
    cx_tensor *loss = ss->tr->task.loss_part(ss->tr->task.user, &ss->tr->pos, c->p, ss->parts, &count);
    if (count < 0) count = 0;
    if (count > 0 && (!loss || loss->dtype != CX_F32 || loss->numel != 1))
        cx_fatal("cx_trainer_run: the task's part loss must be a 1-element F32 tensor");
    pt->loss = count > 0 ? loss : NULL;
    pt->count = count;
    pt->lv = count > 0 ? cx_item(loss) : 0.0f;
    pt->bytes = cx_arena_used(cx_arena_current()) - used0;
    return CX_OK;
}

static cx_status part_backward(void *user) {
    split_call *c = user;
    const split_part *pt = &c->ss->part[c->p];
    const float w = (float)((double)pt->count / c->ss->total);
    cx_backward_with(pt->loss, &w);
    return CX_OK;
}

/* Run fn for part p under cx_try, keeping a failure's status and message. */
static void part_try(split_step *ss, int p, cx_try_fn fn) {
    split_call call = {ss, p};
    split_part *pt = &ss->part[p];
    pt->st = cx_try(fn, &call);
    if (pt->st) snprintf(pt->msg, sizeof pt->msg, "%s", cx_last_error());
}

_Atomic int cx_split_team_cap;

/* Thread t of a team of nth: its parts (t, t + nth, ...) forward, then
 * (when every part's loss is fine) backward, each part into its own
 * gradient buffers, then the sum of the parts' gradients over this thread's
 * share of the parameters. */
static void split_worker(split_step *ss, int t, int nth) {
#ifdef _OPENMP
    cx_trainer *tr = ss->tr;
    const int parts = ss->parts;
    omp_set_num_threads(1); /* a part's loops run on its thread */
    const cx_autograd_state ag0 = cx_autograd_state_get();
    cx_autograd_state_set(ss->ag);
    const cx_rng rng0 = cx_rng_get();
    for (int p = t; p < parts; p += nth) {
        cx_rng_set(ss->part[p].rng);
        part_try(ss, p, part_forward);
    }
#pragma omp barrier
#pragma omp single
    {
        bool ok = true;
        double total = 0;
        for (int p = 0; p < parts; p++) {
            const split_part *pt = &ss->part[p];
            ok = ok && !pt->st && (pt->count == 0 || isfinite(pt->lv));
            total += (double)pt->count;
        }
        ss->total = total;
        ss->backward = ok && total > 0;
    }
    for (int p = t; p < parts && ss->backward; p += nth) {
        if (!ss->part[p].count) continue;
        cx_grad_sink *sink = p ? &tr->sinks[p] : NULL;
        if (sink) cx_grad_sink_clear(sink);
        cx_grad_sink *sink0 = cx_grad_sink_set(sink);
        part_try(ss, p, part_backward);
        cx_grad_sink_set(sink0);
    }
#pragma omp barrier
    bool sum = ss->backward;
    for (int p = 0; p < parts && sum; p++) sum = !ss->part[p].st;
    if (sum) {
#pragma omp single
        for (int i = 0; i < tr->sp_n; i++) {
            bool any = false;
            for (int p = 1; p < parts && !any; p++) any = ss->part[p].count && tr->sinks[p].claimed[i];
            if (any) (void)cx_grad_ensure(tr->sp_params[i]);
        }
        /* thread t sums elements [T*t/nth, T*(t+1)/nth) of the parameters
         * laid end to end, parts in order: the same sums for any team */
        int64_t T = 0;
        for (int i = 0; i < tr->sp_n; i++) T += tr->sp_params[i]->numel;
        const int64_t lo = T * t / nth, hi = T * (t + 1) / nth;
        int64_t base = 0;
        for (int i = 0; i < tr->sp_n && base < hi; i++) {
            const cx_tensor *w = tr->sp_params[i];
            const int64_t a = lo > base ? lo - base : 0, b = hi - base < w->numel ? hi - base : w->numel;
            base += w->numel;
            for (int p = 1; p < parts && a < b; p++) {
                if (!ss->part[p].count || !tr->sinks[p].claimed[i]) continue;
                float *restrict g = w->grad;
                const float *restrict s = tr->sinks[p].bufs[i];
                for (int64_t e = a; e < b; e++) g[e] += s[e];
            }
        }
    }
    cx_rng_set(rng0);
    cx_autograd_state_set(ag0);
    if (t) cx_step_reset(); /* this thread's parts' graphs; thread 0's go with the caller's step */
#else
    (void)ss;
    (void)t;
    (void)nth;
#endif
}

/* After the first split step with this many parts: keep splitting when
 * every part's forward pass took at least as many bytes (its activations) as
 * the parameters hold. Below that, each thread would mostly be reading
 * weights the other threads also read and wrote (an MLP at batch 64), and
 * splitting each op between the threads does better. The bytes depend only
 * on the shapes, so the choice is the same in every run. */
static void split_decide(cx_trainer *tr, const split_step *ss) {
    if (tr->split_mode >= 0 && tr->split_mode_parts == ss->parts) return;
    size_t least = SIZE_MAX;
    for (int p = 0; p < ss->parts; p++)
        if (ss->part[p].count && ss->part[p].bytes < least) least = ss->part[p].bytes;
    int64_t params = 0;
    for (int i = 0; i < tr->sp_n; i++) params += tr->sp_params[i]->numel;
    tr->split_mode = least != SIZE_MAX && (double)least >= 4.0 * (double)params;
    tr->split_mode_parts = ss->parts;
}

/* The split step (see split_parts): the same decisions and counters as
 * train_batch_whole. */
static cx_status train_batch_split(cx_trainer *tr, int parts) {
    split_prepare(tr, parts);
    cx_optim_zero_grad(tr->opt);
    split_step ss = {.tr = tr, .parts = parts, .ag = cx_autograd_state_get()};
    ss.part = cx_arena_alloc((size_t)parts * sizeof *ss.part);
    memset(ss.part, 0, (size_t)parts * sizeof *ss.part);
    cx_rng cur = cx_rng_get();
    for (int p = 0; p < parts; p++) ss.part[p].rng = cx_rng_split(&cur);
    cx_rng_set(cur);
    int team = cx_threads_in_use(); /* fewer than asked on busy cores: the parts then share threads */
    if (team > parts) team = parts;
    if (cx_split_team_cap > 0 && team > cx_split_team_cap) team = cx_split_team_cap;
    if (team < 1) team = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(team)
    split_worker(&ss, omp_get_thread_num(), omp_get_num_threads());
#endif
    tr->split_last = parts;
    for (int p = 0; p < parts; p++)
        if (ss.part[p].st) {
            cx_status st = ss.part[p].st;
            char msg[256];
            snprintf(msg, sizeof msg, "%s", ss.part[p].msg);
            cx_step_reset();
            cx_trainer_clear_line(tr);
            cx_raise(st, "%s", msg);
        }
    double loss_sum = 0;
    for (int p = 0; p < parts; p++) {
        const split_part *pt = &ss.part[p];
        if (!pt->count) continue;
        if (!isfinite(pt->lv)) {
            skip_batch(tr);
            return nonfinite_loss(tr, pt->lv);
        }
        loss_sum += (double)pt->lv * (double)pt->count;
    }
    if (!(ss.total > 0)) {
        skip_batch(tr);
        return cx_set_error(CX_ERR_ARG, "epoch %d batch %d: the batch has no example (every part reports count 0)",
                            tr->pos.epoch, tr->pos.batch);
    }
    split_decide(tr, &ss);
    finish_step(tr, loss_sum, (int64_t)ss.total, (float)(loss_sum / ss.total));
    return CX_OK;
}

/* One optimiser step on the task's current batch, split across threads when
 * that is allowed. */
static cx_status train_batch(cx_trainer *tr) {
    const int parts = split_parts(tr);
    return parts > 1 ? train_batch_split(tr, parts) : train_batch_whole(tr);
}

static cx_status trainer_run(cx_trainer *tr);
static bool at_limit(const cx_trainer *tr, double t) {
    return t >= tr->deadline || (tr->o.max_steps > 0 && tr->pos.step >= tr->o.max_steps);
}

cx_status cx_trainer_run(cx_trainer *tr) {
    if (!tr) return cx_set_error(CX_ERR_ARG, "cx_trainer_run: NULL trainer");
    /* nothing reads the op results' gradients: backward recycles them */
    const bool keep = cx_keep_op_grads();
    cx_set_keep_op_grads(false);
    cx_status st = trainer_run(tr);
    cx_set_keep_op_grads(keep);
    return st;
}

static cx_status trainer_run(cx_trainer *tr) {
    tr->run_t0 = cx_now();
    tr->sec0 = tr->pos.seconds;
    tr->deadline = tr->o.minutes > 0 ? tr->run_t0 + tr->o.minutes * 60 : INFINITY;
    tr->run_secs = 0;
    tr->run_count = tr->run_batches = 0;
    tr->last_draw = -INFINITY;
    tr->ep_seg_t0 = tr->run_t0;
    tr->ep_cpu_t0 = cx_cpu_now();
    cx_status st = CX_OK;
    bool limit = tr->o.max_steps > 0 && tr->pos.step >= tr->o.max_steps;
    if (tr->pending_end) { /* the last run's end-of-epoch evaluation failed: retry it */
        st = evaluate(tr, true);
        if (!st && at_limit(tr, cx_now())) limit = true;
    }
    while (!limit && !st) {
        /* the epoch limit counts epochs in all: a run resumed past it (also in
         * the middle of an epoch) trains nothing */
        if (tr->o.epochs > 0 && tr->pos.epoch > tr->o.epochs) break;
        if (!tr->in_epoch) begin_epoch(tr);
        bool end = false;
        for (;;) {
            double tb = cx_now();
            if (!tr->task.next_batch(tr->task.user, &tr->pos)) {
                end = true;
                break;
            }
            if ((st = train_batch(tr))) break;
            double t = cx_now();
            tr->run_secs += t - tb;
            limit = at_limit(tr, t);
            bool last = tr->pos.num_batches > 0 && tr->pos.batch >= tr->pos.num_batches;
            draw_progress(tr, t, last);
            if (tr->o.on_step) {
                cx_train_info in = cx_trainer_info(tr);
                st = tr->o.on_step(tr->o.hook_user, &in);
            }
            if (tr->dp) {
                /* the time limit and a hook's stop, decided together */
                double v[2] = {limit ? 1.0 : 0.0, st ? 1.0 : 0.0};
                cx_dist_allreduce_sum_f64(v, 2);
                limit = v[0] > 0;
                if (!st && v[1] > 0) st = cx_set_error(CX_ERR_IO, "stopped by another rank's step hook");
            }
            if (st) break;
            if (!last && ((tr->o.eval_every > 0 && tr->pos.step % tr->o.eval_every == 0) || limit) &&
                (st = evaluate(tr, false)))
                break;
            if (limit) {
                end = last;
                break;
            }
        }
        if (st || !end) break; /* an error, or a limit mid-epoch (evaluated above) */
        tr->in_epoch = false;
        st = evaluate(tr, true);
        if (!st && at_limit(tr, cx_now())) limit = true;
    }
    tr->pos.seconds = tr->sec0 + cx_now() - tr->run_t0;
    cx_trainer_clear_line(tr);
    return st;
}
