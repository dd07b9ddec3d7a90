/* The trainer of cortex/train.h: a synthetic classifier reaches a known
 * accuracy; the progress line, log line and metrics CSV are well-formed; a
 * non-finite loss stops the run with CX_ERR_NUMERIC; epoch / step / time
 * limits; checkpoints taken mid-epoch resume bit-identically (a classifier
 * with shuffling, dropout and augmentation on its own loader stream, and a
 * stateful TBPTT language model that carries its LSTM state across batches);
 * corrupt or mismatched checkpoints give clear errors and leave the model,
 * the optimiser state and the random streams untouched; the checkpoint holds
 * the documented names. Regressions from review: a failed end-of-epoch
 * evaluation is retried, not the epoch; the epoch limit stops a run resumed
 * past it; a child module's checkpoint loads as its model file; optimiser
 * parameters outside the model resume; a schedule behind a warm-up is checked
 * at creation. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "cls_fixture.h"

static char tmpdir[64];
static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static char *read_all(const char *path) {
    void *d = NULL;
    size_t n = 0;
    if (cx_read_file(path, &d, &n, 0)) return NULL;
    return d;
}

static char *read_stream(FILE *f) {
    long n = ftell(f);
    char *s = malloc((size_t)(n > 0 ? n : 0) + 1);
    rewind(f);
    size_t got = fread(s, 1, (size_t)(n > 0 ? n : 0), f);
    s[got] = 0;
    return s;
}

/* ---------------------------------------------------------------- synthetic data */

static cx_dataset g_train, g_val; /* 600 / 200 examples */

/* A classifier run: MLP 16 -> hidden -> 3, Adam (or SGD), a shuffling loader
 * with its own random stream registered as "loader" (cls_fixture.h). */
static void cls_setup_ex(cls_run *r, const cx_train_opts *o, int hidden, float dropout, bool augment, bool sgd,
                         int batch, bool add_loader_rng) {
    memset(r, 0, sizeof *r);
    cx_seed(5);
    r->net = cx_mlp_new((const int[]){16, hidden, 3}, 3, CX_ACT_RELU, dropout);
    cx_params_init(&r->ps);
    cx_module_params(r->net, &r->ps);
    if (sgd) {
        cx_sgd_opts so = cx_sgd_defaults();
        so.lr = 0.05;
        so.momentum = 0.9;
        r->opt = cx_sgd_new(&r->ps, &so);
    } else {
        cx_adam_opts ao = cx_adam_defaults();
        ao.lr = 0.01;
        r->opt = cx_adam_new(&r->ps, &ao);
    }
    cls_wire(r, o, &g_train, &g_val, cx_forward_module, augment, batch, add_loader_rng);
}

static void cls_setup(cls_run *r, const cx_train_opts *o) { cls_setup_ex(r, o, 24, 0.2f, true, false, 32, true); }

static bool same_optim(cx_optim *a, cx_optim *b) {
    cx_params sa, sb;
    cx_params_init(&sa);
    cx_params_init(&sb);
    bool ok = !cx_optim_state_export(a, &sa) && !cx_optim_state_export(b, &sb) && sa.n > 0 && same_tensors(&sa, &sb);
    for (int i = 0; ok && i < sa.n; i++) ok = !strcmp(sa.t[i]->name, sb.t[i]->name);
    cx_params_free(&sa);
    cx_params_free(&sb);
    return ok;
}

/* A deep copy of an optimiser's state (its export holds the live tensors). */
static void optim_snapshot(cx_optim *opt, cx_params *out) {
    cx_params st;
    cx_params_init(&st);
    cx_params_init(out);
    CHECK(cx_optim_state_export(opt, &st) == CX_OK);
    for (int i = 0; i < st.n; i++) cx_params_add(out, cx_tensor_clone(st.t[i]));
    cx_params_free(&st);
}

/* The optimiser's state is the snapshot, bit for bit and name for name. */
static bool optim_is(cx_optim *opt, const cx_params *snap) {
    cx_params st;
    cx_params_init(&st);
    bool ok = !cx_optim_state_export(opt, &st) && same_tensors(&st, snap);
    for (int i = 0; ok && i < st.n; i++) ok = !strcmp(st.t[i]->name, snap->t[i]->name);
    cx_params_free(&st);
    return ok;
}

/* Deep copies of a list's tensors; freed with free_clones. */
static void clone_list(const cx_params *src, cx_params *out) {
    cx_params_init(out);
    for (int i = 0; i < src->n; i++) cx_params_add(out, cx_tensor_clone(src->t[i]));
}

static void free_clones(cx_params *p) {
    for (int i = 0; i < p->n; i++) cx_tensor_free(p->t[i]);
    cx_params_free(p);
}

static bool same_rng(cx_rng a, cx_rng b) { return a.state == b.state && a.inc == b.inc; }

/* Two metrics CSV texts agree in every column but the last (wall time). */
static bool same_csv_but_time(const char *a, const char *b) {
    for (;;) {
        const char *la = strchr(a, '\n'), *lb = strchr(b, '\n');
        if (!la || !lb) return !la && !lb && !*a && !*b;
        const char *ca = la, *cb = lb;
        while (ca > a && *ca != ',') ca--;
        while (cb > b && *cb != ',') cb--;
        if (ca - a != cb - b || strncmp(a, b, (size_t)(ca - a))) return false;
        a = la + 1;
        b = lb + 1;
    }
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* ---------------------------------------------------------------- clocks, metrics */
static void test_clocks_and_metrics(void) {
    double a = cx_now(), c0 = cx_cpu_now();
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++) x += i * 1e-9;
    double b = cx_now(), c1 = cx_cpu_now();
    CHECK(x > 0); /* the busy loop ran */
    CHECK(b >= a && b - a < 10);
    CHECK(c1 > c0);

    cx_metrics m;
    memset(&m, 0, sizeof m);
    cx_metrics_set(&m, "val_loss", 0.5);
    cx_metrics_set(&m, "val_acc", 0.75);
    cx_metrics_set(&m, "val_loss", 0.25); /* overwrite keeps the order */
    CHECK(m.n == 2 && !strcmp(m.name[0], "val_loss") && !strcmp(m.name[1], "val_acc"));
    CHECK(cx_metrics_get(&m, "val_loss") == 0.25 && cx_metrics_get(&m, "val_acc") == 0.75);
    CHECK(isnan(cx_metrics_get(&m, "nope")));
    EXPECT_FATAL(cx_metrics_set(&m, "bad,name", 1), "bad metric name");
    EXPECT_FATAL(cx_metrics_set(&m, "", 1), "bad metric name");
    for (int i = m.n; i < CX_METRICS_MAX; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "m%d", i);
        cx_metrics_set(&m, nm, i);
    }
    EXPECT_FATAL(cx_metrics_set(&m, "one_more", 1), "more than");
}

/* ---------------------------------------------------------------- classifier evaluation */
static void test_classifier_eval(void) {
    /* logits = x (identity linear layer): predictions are the argmax of x */
    cx_module *lin = cx_linear_new(3, 3, true);
    cx_fill(cx_linear_bias(lin), 0);
    cx_fill(cx_linear_weight(lin), 0);
    for (int i = 0; i < 3; i++) CX_F(cx_linear_weight(lin))[i * 3 + i] = 1;
    const float xs[5][3] = {{2, 0, 0}, {0, 1, 0}, {0, 0, 3}, {1, 2, 0}, {0.5f, 0, 0}};
    const int ys[5] = {0, 1, 2, 0, 1}; /* the last two are wrong (predicted 1 and 0) */
    cx_dataset d = {cx_tensor_new(CX_F32, CX_SHAPE(5, 3)), cx_tensor_new(CX_I32, CX_SHAPE(5)), true};
    memcpy(d.x->data, xs, sizeof xs);
    memcpy(d.y->data, ys, sizeof ys);
    double want = 0;
    for (int i = 0; i < 5; i++) {
        double se = 0;
        for (int j = 0; j < 3; j++) se += exp((double)xs[i][j]);
        want += log(se) - xs[i][ys[i]];
    }
    want /= 5;
    cx_classifier_result r;
    int64_t conf[9];
    bool training = cx_is_training();
    CHECK(cx_classifier_eval(cx_forward_module, lin, &d, 2, conf, 3, &r) == CX_OK); /* batches 2, 2, 1 */
    CHECK(cx_is_training() == training);
    CHECK(r.n == 5 && r.correct == 3);
    CHECK_NEAR(r.accuracy, 0.6, 1e-12);
    CHECK_NEAR(r.loss, want, 1e-6);
    const int64_t want_conf[9] = {1, 1, 0, 1, 1, 0, 0, 0, 1};
    CHECK(memcmp(conf, want_conf, sizeof conf) == 0);
    /* a batch of all examples gives the same counts */
    cx_classifier_result r2;
    CHECK(cx_classifier_eval(cx_forward_module, lin, &d, 100, NULL, 0, &r2) == CX_OK);
    CHECK(r2.correct == 3 && fabs(r2.loss - r.loss) < 1e-6);
    /* errors */
    CHECK(cx_classifier_eval(cx_forward_module, lin, &d, 0, NULL, 0, &r2) == CX_ERR_ARG);
    CX_I32P(d.y)[4] = 7;
    CHECK(cx_classifier_eval(cx_forward_module, lin, &d, 2, conf, 3, &r2) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "label 7") != NULL);
    cx_dataset bad = {d.x, cx_tensor_new(CX_F32, CX_SHAPE(5)), false};
    CHECK(cx_classifier_eval(cx_forward_module, lin, &bad, 2, NULL, 0, &r2) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "I32") != NULL);
    cx_tensor_free(bad.y);
    cx_dataset_free(&d);
    cx_module_free(lin);
}

/* ---------------------------------------------------------------- a full run */
static void test_classifier_accuracy(void) {
    char csv[256];
    tmp_path(csv, sizeof csv, "acc.csv");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 4;
    o.quiet = true;
    o.metrics_path = csv;
    double acc[2];
    for (int rep = 0; rep < 2; rep++) {
        cls_run r;
        cls_setup_ex(&r, &o, 24, 0.0f, false, false, 32, true);
        CHECK(cx_trainer_run(r.tr) == CX_OK);
        cx_train_info in = cx_trainer_info(r.tr);
        CHECK(in.pos.epoch == 5 && in.pos.batch == 0 && in.pos.step == 4 * 19);
        cx_classifier_result res;
        CHECK(cx_classifier_eval(cx_forward_module, r.net, &g_val, 100, NULL, 0, &res) == CX_OK);
        acc[rep] = res.accuracy;
        /* the CSV's last val_acc is this accuracy */
        const char *t = cx_trainer_metrics_csv(r.tr), *last = t + strlen(t) - 1;
        while (last > t && last[-1] != '\n') last--;
        double v[7];
        CHECK(sscanf(last, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) == 7);
        CHECK_NEAR(v[5], res.accuracy, 1e-6);
        CHECK(v[3] > 0.85); /* train_acc of the last epoch */
        cls_free(&r);
    }
    /* a known accuracy, and the same seed gives the same run */
    CHECK_MSG(acc[0] >= 0.9, "validation accuracy %g", acc[0]);
    CHECK(acc[0] == acc[1]);
}

/* ---------------------------------------------------------------- CSV, progress, log */
static cx_status clearing_hook(void *user, const cx_train_info *in) {
    int *n = user;
    if (in->pos.step == 3) cx_trainer_clear_line(in->trainer);
    (*n)++;
    return CX_OK;
}

static void test_csv_progress_log(void) {
    char csv[256];
    tmp_path(csv, sizeof csv, "m.csv");
    FILE *prog = tmpfile(), *log = tmpfile();
    int steps_seen = 0;
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.eval_every = 7;
    o.metrics_path = csv;
    o.progress_stream = prog;
    o.log = log;
    o.on_step = clearing_hook;
    o.hook_user = &steps_seen;
    o.sched = cx_sched_step(1, 0.5);
    cls_run r;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    CHECK(steps_seen == 38);
    /* the file is the trainer's text */
    char *file = read_all(csv);
    CHECK(file && !strcmp(file, cx_trainer_metrics_csv(r.tr)));
    /* header + evaluations at steps 7, 14, (19 = end of epoch 1), 21, 28, 35, (38) */
    const char *text = cx_trainer_metrics_csv(r.tr);
    CHECK(!strncmp(text, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n", 55));
    CHECK_MSG(count_char(text, '\n') == 8, "CSV:\n%s", text);
    const char *row = strchr(text, '\n') + 1;
    double want_epoch[7] = {7.0 / 19, 14.0 / 19, 1, 1 + 2.0 / 19, 1 + 9.0 / 19, 1 + 16.0 / 19, 2};
    double want_lr[7] = {0.01, 0.01, 0.01, 0.005, 0.005, 0.005, 0.005};
    for (int i = 0; i < 7 && *row; i++) {
        double v[7];
        int k = sscanf(row, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]);
        CHECK_MSG(k == 7, "row %d: %s", i, row);
        CHECK_NEAR(v[0], want_epoch[i], 1e-4);
        CHECK_NEAR(v[1], want_lr[i], 1e-12);
        CHECK_MSG(v[2] > 0 && v[2] < 2 && v[3] >= 0 && v[3] <= 1 && v[4] > 0 && v[5] > 0.1 && v[5] <= 1 && v[6] >= 0, "row: %s", row);
        CHECK(count_char(row, ',') >= 6);
        row = strchr(row, '\n') + 1;
    }
    CHECK(strstr(text, "\n1,0.01,") && strstr(text, "\n2,0.005,") && strstr(text, "\n0.3684,"));
    free(file);
    /* the progress line: "\repoch 1/2 [====>   ] 7/19 loss ...  N ex/s  ETA ..." */
    char *p = read_stream(prog);
    CHECK_MSG(strstr(p, "\repoch 1/2 [") && strstr(p, "] 19/19 loss ") && strstr(p, "\repoch 2/2 [") &&
                  strstr(p, " ex/s  ETA ") && strstr(p, "[========================] "),
              "progress: %s", p);
    CHECK(p[strlen(p) - 1] == '\r'); /* erased at the end */
    CHECK(!strchr(p, '\n'));
    free(p);
    /* the log: one line per evaluation */
    char *l = read_stream(log);
    CHECK_MSG(count_char(l, '\n') == 7 && strstr(l, "epoch 1/2 batch 7/19  step 7  lr 0.01  train_loss ") &&
                  strstr(l, "  val_acc ") && strstr(l, "epoch 2/2  step 38  lr 0.005  train_loss "),
              "log: %s", l);
    free(l);
    fclose(prog);
    fclose(log);
    cls_free(&r);
}

/* ---------------------------------------------------------------- non-finite loss */
typedef struct {
    cx_train_task inner;
} nan_task;

static int nan_begin(void *u, const cx_train_pos *p) { return ((nan_task *)u)->inner.begin_epoch(((nan_task *)u)->inner.user, p); }
static bool nan_next(void *u, const cx_train_pos *p) { return ((nan_task *)u)->inner.next_batch(((nan_task *)u)->inner.user, p); }
static cx_tensor *nan_loss(void *u, const cx_train_pos *p, int64_t *count) {
    nan_task *t = u;
    cx_tensor *l = t->inner.loss(t->inner.user, p, count);
    return p->epoch == 2 && p->batch == 2 ? cx_mul_scalar(l, NAN) : l;
}

static void test_nonfinite_loss(void) {
    cls_run r;
    cx_train_opts o = cx_train_defaults();
    o.epochs = 3;
    o.quiet = true;
    cls_setup(&r, &o);
    nan_task nt = {r.task};
    cx_train_task t = {&nt, nan_begin, nan_next, nan_loss, NULL, NULL, NULL, NULL, NULL};
    cx_trainer *tr = cx_trainer_new(&t, r.net, r.opt, &o);
    cx_status st = cx_trainer_run(tr);
    CHECK(st == CX_ERR_NUMERIC);
    CHECK_MSG(strstr(cx_last_error(), "loss is nan at epoch 2 batch 3") && strstr(cx_last_error(), "--check-numerics") &&
                  strstr(cx_last_error(), "lower --lr"),
              "message: %s", cx_last_error());
    cx_train_info in = cx_trainer_info(tr);
    /* the bad batch was taken from the task: it counts as done, without a step */
    CHECK(in.pos.epoch == 2 && in.pos.batch == 3 && in.pos.step == 19 + 2);
    CHECK(cx_optim_steps(r.opt) == 21);
    bool finite = true;
    for (int i = 0; i < r.ps.n; i++)
        for (int64_t j = 0; j < r.ps.t[i]->numel; j++) finite &= isfinite(CX_F(r.ps.t[i])[j]) != 0;
    CHECK(finite);
    cx_trainer_free(tr);
    cls_free(&r);
}

/* ---------------------------------------------------------------- limits, hooks */
static cx_status failing_hook(void *user, const cx_train_info *in) {
    (void)user;
    return in->end_of_epoch ? cx_set_error(CX_ERR_IO, "the hook refuses epoch %d", in->pos.epoch) : CX_OK;
}

static void test_limits(void) {
    cx_train_opts o = cx_train_defaults();
    o.quiet = true;
    cls_run r;
    /* epochs */
    o.epochs = 2;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    cx_train_info in = cx_trainer_info(r.tr);
    CHECK(in.pos.epoch == 3 && in.pos.batch == 0 && in.pos.step == 38 && cx_optim_steps(r.opt) == 38);
    CHECK(count_char(cx_trainer_metrics_csv(r.tr), '\n') == 3);
    CHECK(cx_trainer_run(r.tr) == CX_OK); /* nothing left to do */
    CHECK(cx_trainer_info(r.tr).pos.step == 38);
    cls_free(&r);
    /* steps: stops mid-epoch 2 after an evaluation */
    o.epochs = 0;
    o.max_steps = 25;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    in = cx_trainer_info(r.tr);
    CHECK(in.pos.epoch == 2 && in.pos.batch == 6 && in.pos.num_batches == 19 && in.pos.step == 25);
    CHECK_MSG(strstr(cx_trainer_metrics_csv(r.tr), "\n1.3158,") != NULL, "%s", cx_trainer_metrics_csv(r.tr));
    CHECK(cx_trainer_run(r.tr) == CX_OK && cx_trainer_info(r.tr).pos.step == 25);
    cls_free(&r);
    /* wall clock: a tiny budget stops after a few batches */
    o.max_steps = 0;
    o.minutes = 1e-6;
    cls_setup(&r, &o);
    double t0 = cx_now();
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    in = cx_trainer_info(r.tr);
    CHECK(in.pos.step >= 1 && in.pos.step < 19 * 5 && cx_now() - t0 < 5);
    CHECK(in.pos.seconds > 0 && in.run_count >= 32 && in.run_seconds > 0);
    cls_free(&r);
    /* a hook's error stops the run */
    o.minutes = 0;
    o.epochs = 3;
    o.on_eval = failing_hook;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_ERR_IO);
    CHECK(strstr(cx_last_error(), "refuses epoch 1") != NULL);
    CHECK(cx_trainer_info(r.tr).pos.step == 19);
    cls_free(&r);
    /* programming errors */
    o = cx_train_defaults();
    o.epochs = 0;
    EXPECT_FATAL(cls_setup(&r, &o), "no limit");
    cx_module_free(r.net); /* cls_setup stopped in cx_trainer_new */
    cx_params_free(&r.ps);
    cx_optim_free(r.opt);
    cx_loader_free(r.ld);
    o.epochs = 1;
    cls_setup(&r, &o);
    EXPECT_FATAL(cx_trainer_add_rng(r.tr, "current", &r.loader_rng), "bad stream name");
    EXPECT_FATAL(cx_trainer_add_rng(r.tr, "loader", &r.loader_rng), "registered twice");
    cls_free(&r);
}

/* ---------------------------------------------------------------- resume: classifier */
static void test_resume_classifier(void) {
    char ck[256], ck2[256];
    tmp_path(ck, sizeof ck, "cls.ckpt");
    tmp_path(ck2, sizeof ck2, "cls-save.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 3;
    o.eval_every = 7;
    o.quiet = true;
    o.sched = cx_sched_cosine(3, 0.001);
    /* A: straight through */
    cls_run a;
    cls_setup(&a, &o);
    CHECK(cx_trainer_run(a.tr) == CX_OK);
    /* B: stopped at step 28 (epoch 2, batch 9), checkpointed there */
    cx_train_opts ob = o;
    ob.max_steps = 28;
    ob.checkpoint_path = ck;
    cls_run b;
    cls_setup(&b, &ob);
    CHECK(cx_trainer_run(b.tr) == CX_OK);
    cx_train_info ib = cx_trainer_info(b.tr);
    CHECK(ib.pos.epoch == 2 && ib.pos.batch == 9 && ib.pos.step == 28);
    CHECK(cx_trainer_save(b.tr, ck2) == CX_OK); /* the same position written explicitly */
    cls_free(&b);
    /* C: a fresh process-like start from the checkpoint */
    cls_run c;
    cls_setup(&c, &o);
    CHECK_MSG(cx_trainer_resume(c.tr, ck) == CX_OK, "%s", cx_last_error());
    cx_train_info ic = cx_trainer_info(c.tr);
    CHECK(ic.pos.epoch == 2 && ic.pos.batch == 9 && ic.pos.num_batches == 19 && ic.pos.step == 28);
    CHECK_NEAR(ic.lr, cx_sched_lr(&o.sched, 0.01, 1), 1e-15);
    CHECK(cx_trainer_run(c.tr) == CX_OK);
    CHECK(same_tensors(&a.ps, &c.ps));
    CHECK(same_optim(a.opt, c.opt));
    CHECK_MSG(same_csv_but_time(cx_trainer_metrics_csv(a.tr), cx_trainer_metrics_csv(c.tr)), "A:\n%s\nC:\n%s",
              cx_trainer_metrics_csv(a.tr), cx_trainer_metrics_csv(c.tr));
    CHECK(cx_trainer_info(c.tr).pos.step == cx_trainer_info(a.tr).pos.step);
    CHECK(a.loader_rng.state == c.loader_rng.state && cx_rng_get().state != 0);
    cls_free(&c);
    /* D: from the explicitly saved copy */
    cls_run d;
    cls_setup(&d, &o);
    CHECK(cx_trainer_resume(d.tr, ck2) == CX_OK);
    CHECK(cx_trainer_run(d.tr) == CX_OK);
    CHECK(same_tensors(&a.ps, &d.ps) && same_optim(a.opt, d.opt));
    cls_free(&d);
    cls_free(&a);
}

/* ---------------------------------------------------------------- resume: a stateful task */
/* A character-level LSTM language model on a synthetic id stream, trained
 * with truncated BPTT: the LSTM state is carried from batch to batch (and
 * saved in checkpoints), dropout draws from the current stream. */
typedef struct {
    cx_module *lm;
    cx_bptt_loader *ld;
    cx_tensor *val;
    cx_tensor *h, *c, *x, *y;
    cx_charlm_out o;
} lm_task;

static int lm_begin(void *u, const cx_train_pos *p) {
    lm_task *t = u;
    cx_bptt_reset(t->ld);
    if (p->batch == 0) {
        cx_tensor_free(t->h);
        cx_tensor_free(t->c);
        t->h = t->c = NULL;
    }
    return cx_bptt_num_batches(t->ld);
}
static bool lm_next(void *u, const cx_train_pos *p) {
    (void)p;
    lm_task *t = u;
    return cx_bptt_next(t->ld, &t->x, &t->y);
}
static cx_tensor *lm_loss(void *u, const cx_train_pos *p, int64_t *count) {
    (void)p;
    lm_task *t = u;
    t->o = cx_charlm_forward(t->lm, t->x, t->h, t->c);
    *count = t->y->numel;
    return cx_seq_cross_entropy(t->o.logits, t->y, NULL, false, CX_REDUCE_MEAN);
}
static void lm_after(void *u, const cx_train_pos *p) {
    (void)p;
    lm_task *t = u;
    cx_charlm_carry(&t->h, &t->c, t->o);
}
static cx_status lm_eval(void *u, const cx_train_info *in, cx_metrics *out) {
    (void)in;
    lm_task *t = u;
    cx_tensor *x = cx_from_i32(CX_I32P(t->val), CX_SHAPE(10, 4));
    cx_tensor *y = cx_from_i32(CX_I32P(t->val) + 1, CX_SHAPE(10, 4));
    cx_charlm_out o = cx_charlm_forward(t->lm, x, NULL, NULL);
    cx_metrics_set(out, "val_loss", cx_item(cx_seq_cross_entropy(o.logits, y, NULL, false, CX_REDUCE_MEAN)));
    return CX_OK;
}
static cx_status lm_save(void *u, const cx_train_pos *p, cx_ckpt *ck) {
    lm_task *t = u;
    cx_ckpt_add_meta(ck, "test.lm", "1");
    if (p->batch > 0 && t->h) {
        cx_ckpt_add_tensor(ck, "lm.h", t->h);
        cx_ckpt_add_tensor(ck, "lm.c", t->c);
    }
    return CX_OK;
}
static cx_status lm_load(void *u, const cx_st_file *f, const char *path, const cx_train_pos *p) {
    lm_task *t = u;
    if (!cx_st_meta(f, "test.lm")) return cx_set_error(CX_ERR_FORMAT, "%s: not a test LM checkpoint", path);
    if (p->batch == 0) return CX_OK;
    const cx_tensor *h = cx_st_get(f, "lm.h"), *c = cx_st_get(f, "lm.c");
    if (!h || !c) return cx_set_error(CX_ERR_NOTFOUND, "%s: carried state lm.h / lm.c missing", path);
    cx_tensor_free(t->h);
    cx_tensor_free(t->c);
    t->h = cx_tensor_clone(h);
    t->c = cx_tensor_clone(c);
    return CX_OK;
}

typedef struct {
    cx_tensor *ids;
    lm_task t;
    cx_params ps;
    cx_optim *opt;
    cx_trainer *tr;
} lm_run;

static void lm_setup(lm_run *r, const cx_train_opts *o) {
    memset(r, 0, sizeof *r);
    cx_seed(11);
    r->ids = cx_tensor_new(CX_I32, CX_SHAPE(1200));
    cx_rng g = cx_rng_new(3);
    for (int i = 0; i < 1200; i++) /* a noisy counter: predictable with a memory */
        CX_I32P(r->ids)[i] = cx_rng_below(&g, 10) ? i % 5 : (int)cx_rng_below(&g, 6);
    r->t.val = r->ids;
    cx_charlm_config cfg = {6, 4, 8, 2, 0.1f};
    r->t.lm = cx_charlm_new(&cfg);
    r->t.ld = cx_bptt_new(r->ids, 4, 7, true);
    cx_params_init(&r->ps);
    cx_module_params(r->t.lm, &r->ps);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    r->opt = cx_adam_new(&r->ps, &ao);
    cx_train_task task = {&r->t, lm_begin, lm_next, lm_loss, lm_after, lm_eval, lm_save, lm_load, NULL};
    r->tr = cx_trainer_new(&task, r->t.lm, r->opt, o);
}

static void lm_free(lm_run *r) {
    cx_trainer_free(r->tr);
    cx_optim_free(r->opt);
    cx_params_free(&r->ps);
    cx_bptt_free(r->t.ld);
    cx_module_free(r->t.lm);
    cx_tensor_free(r->t.h);
    cx_tensor_free(r->t.c);
    cx_tensor_free(r->ids);
}

static void test_resume_stateful(void) {
    char ck[256];
    tmp_path(ck, sizeof ck, "lm.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 3;
    o.eval_every = 10;
    o.clip = 1.0f;
    o.quiet = true;
    o.bits = true;
    o.unit = "tokens";
    lm_run a, b, c;
    lm_setup(&a, &o);
    CHECK(cx_trainer_run(a.tr) == CX_OK);
    CHECK(a.t.h && a.t.c);
    /* stopped mid-epoch 2 with a carried state */
    cx_train_opts ob = o;
    ob.max_steps = 60;
    ob.checkpoint_path = ck;
    lm_setup(&b, &ob);
    CHECK(cx_trainer_run(b.tr) == CX_OK);
    cx_train_pos pb = cx_trainer_info(b.tr).pos;
    CHECK_MSG(pb.epoch == 2 && pb.batch > 0 && pb.batch < pb.num_batches && pb.step == 60, "epoch %d batch %d/%d",
              pb.epoch, pb.batch, pb.num_batches);
    lm_free(&b);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    CHECK(f && cx_st_get(f, "lm.h") && cx_st_get(f, "lm.c") && cx_st_get(f, "lstm.weight_ih_l1") &&
          cx_st_get(f, "cortex.rng_epoch.current"));
    cx_st_free(f);
    lm_setup(&c, &o);
    CHECK_MSG(cx_trainer_resume(c.tr, ck) == CX_OK, "%s", cx_last_error());
    CHECK(cx_trainer_run(c.tr) == CX_OK);
    CHECK(same_tensors(&a.ps, &c.ps));
    CHECK(same_optim(a.opt, c.opt));
    CHECK(c.t.h && c.t.c && !memcmp(a.t.h->data, c.t.h->data, (size_t)a.t.h->numel * 4) &&
          !memcmp(a.t.c->data, c.t.c->data, (size_t)a.t.c->numel * 4));
    CHECK_MSG(same_csv_but_time(cx_trainer_metrics_csv(a.tr), cx_trainer_metrics_csv(c.tr)), "A:\n%s\nC:\n%s",
              cx_trainer_metrics_csv(a.tr), cx_trainer_metrics_csv(c.tr));
    lm_free(&a);
    lm_free(&c);
}

/* ---------------------------------------------------------------- the file */
static cx_status dup_save(void *u, const cx_train_pos *p, cx_ckpt *ck) {
    (void)u;
    (void)p;
    cx_ckpt_add_tensor(ck, "fc1.weight", cx_zeros(CX_SHAPE(1)));
    return CX_OK;
}

static void test_checkpoint_names(void) {
    char ck[256];
    tmp_path(ck, sizeof ck, "names.ckpt");
    const char *mk[1] = {"note"}, *mv[1] = {"hello"};
    cx_train_opts o = cx_train_defaults();
    o.epochs = 1;
    o.max_steps = 5;
    o.quiet = true;
    o.checkpoint_path = ck;
    o.meta_keys = mk;
    o.meta_values = mv;
    o.n_meta = 1;
    cls_run r;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        const char *tensors[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "optim.step",
                                 "state.fc1.weight.step", "state.fc1.weight.exp_avg", "state.fc2.bias.exp_avg_sq",
                                 "cortex.rng.current", "cortex.rng_epoch.current", "cortex.rng.loader",
                                 "cortex.rng_epoch.loader"};
        for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++)
            CHECK_MSG(cx_st_get(f, tensors[i]) != NULL, "missing tensor %s", tensors[i]);
        CHECK(f->n == 4 + 1 + 3 * 4 + 4); /* 4 parameters, optim.step and 3 per parameter, 2 x 2 streams */
        cx_tensor *rl = cx_st_get(f, "cortex.rng.loader");
        CHECK(rl && rl->dtype == CX_I64 && rl->numel == 2 && (uint64_t)CX_I64P(rl)[0] == r.loader_rng.state &&
              (uint64_t)CX_I64P(rl)[1] == r.loader_rng.inc);
        const char *meta[][2] = {{"cortex.checkpoint", "1"},  {"cortex.train.optim", "adam"},
                                 {"cortex.train.epoch", "1"}, {"cortex.train.batch", "5"},
                                 {"cortex.train.num_batches", "19"}, {"cortex.train.step", "5"},
                                 {"cortex.train.epoch_count", "160"}, {"note", "hello"},
                                 {"cortex.classifier.seen", "160"}};
        for (size_t i = 0; i < sizeof meta / sizeof *meta; i++)
            CHECK_MSG(cx_st_meta(f, meta[i][0]) && !strcmp(cx_st_meta(f, meta[i][0]), meta[i][1]), "meta %s = %s",
                      meta[i][0], cx_st_meta(f, meta[i][0]) ? cx_st_meta(f, meta[i][0]) : "(missing)");
        const char *other[] = {"cortex.train.seconds", "cortex.train.epoch_loss_sum", "cortex.train.epoch_seconds",
                               "cortex.train.metrics", "cortex.classifier.correct"};
        for (size_t i = 0; i < sizeof other / sizeof *other; i++) CHECK(cx_st_meta(f, other[i]) != NULL);
        CHECK(!strncmp(cx_st_meta(f, "cortex.train.metrics"), "epoch,lr,train_loss,", 20));
        cx_st_free(f);
    }
    /* a task adding a name the checkpoint already has */
    cx_train_task t = r.task;
    t.save_state = dup_save;
    cx_trainer *tr = cx_trainer_new(&t, r.net, r.opt, &o);
    char p2[256];
    tmp_path(p2, sizeof p2, "dup.ckpt");
    CHECK(cx_trainer_save(tr, p2) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "duplicate tensor name 'fc1.weight'") != NULL);
    CHECK(access(p2, F_OK) != 0);
    cx_step_reset();
    cx_trainer_free(tr);
    cls_free(&r);
}

/* ---------------------------------------------------------------- bad checkpoints */
/* Rewrite a checkpoint with metadata key `key` set to `value` (NULL: removed). */
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value) {
    cx_st_file *f = NULL;
    CHECK(cx_st_load(src, &f) == CX_OK);
    if (!f) return;
    cx_tensor **ts = malloc((size_t)f->n * sizeof *ts);
    const char **names = malloc((size_t)f->n * sizeof *names);
    const char **mk = malloc((size_t)(f->n_meta + 1) * sizeof *mk), **mv = malloc((size_t)(f->n_meta + 1) * sizeof *mv);
    for (int i = 0; i < f->n; i++) ts[i] = f->entries[i].tensor, names[i] = f->entries[i].name;
    int nm = 0;
    bool done = false;
    for (int i = 0; i < f->n_meta; i++) {
        if (!strcmp(f->meta_keys[i], key)) {
            done = true;
            if (!value) continue;
            mk[nm] = key, mv[nm++] = value;
        } else {
            mk[nm] = f->meta_keys[i], mv[nm++] = f->meta_values[i];
        }
    }
    if (!done && value) mk[nm] = key, mv[nm++] = value;
    CHECK(cx_st_save(dst, ts, names, f->n, mk, mv, nm) == CX_OK);
    free(ts);
    free(names);
    free(mk);
    free(mv);
    cx_st_free(f);
}

/* Resuming `path` into `r` fails with `want` and a message holding `needle`,
 * and leaves the model, the optimiser state, the position, the CSV and every
 * registered random stream (the current one, the loader's) as they were. */
static void expect_bad(cls_run *r, const char *path, cx_status want, const char *needle) {
    cx_params before, obefore;
    clone_list(&r->ps, &before);
    optim_snapshot(r->opt, &obefore);
    const cx_rng cur = cx_rng_get(), ld = r->loader_rng;
    cx_status st = cx_trainer_resume(r->tr, path);
    CHECK_MSG(st == want, "%s: status %d, want %d (%s)", path, (int)st, (int)want, cx_last_error());
    CHECK_MSG(strstr(cx_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", path, cx_last_error(), needle);
    CHECK_MSG(same_tensors(&before, &r->ps), "%s: the model changed", path);
    CHECK_MSG(optim_is(r->opt, &obefore), "%s: the optimiser state changed (%lld steps)", path,
              (long long)cx_optim_steps(r->opt));
    CHECK(cx_optim_steps(r->opt) == 0);
    CHECK_MSG(same_rng(cx_rng_get(), cur), "%s: the current random stream moved", path);
    CHECK_MSG(same_rng(r->loader_rng, ld), "%s: the loader stream moved", path);
    cx_train_info in = cx_trainer_info(r->tr);
    CHECK(in.pos.epoch == 1 && in.pos.batch == 0 && in.pos.step == 0);
    CHECK(cx_trainer_metrics_csv(r->tr)[0] == 0);
    free_clones(&before);
    free_clones(&obefore);
}

static void test_bad_checkpoints(void) {
    char ck[256], p[256];
    tmp_path(ck, sizeof ck, "good.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.max_steps = 23; /* epoch 2, batch 4 */
    o.quiet = true;
    o.checkpoint_path = ck;
    cls_run w;
    cls_setup(&w, &o);
    CHECK(cx_trainer_run(w.tr) == CX_OK);
    cls_free(&w);
    o.checkpoint_path = NULL;
    o.max_steps = 0;
    cls_run r;
    cls_setup(&r, &o);
    /* corrupt: truncated, garbage */
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(ck, &buf, &n, 0) == CX_OK);
    tmp_path(p, sizeof p, "trunc.ckpt");
    CHECK(cx_write_file_atomic(p, buf, n / 2) == CX_OK);
    expect_bad(&r, p, CX_ERR_FORMAT, "trunc.ckpt");
    free(buf);
    tmp_path(p, sizeof p, "missing.ckpt");
    expect_bad(&r, p, CX_ERR_IO, "missing.ckpt");
    /* a model file is not a checkpoint */
    tmp_path(p, sizeof p, "model.safetensors");
    CHECK(cx_params_save(p, &r.ps) == CX_OK);
    expect_bad(&r, p, CX_ERR_FORMAT, "not a checkpoint");
    /* an old-format checkpoint */
    {
        cx_tensor *rng = cx_tensor_new(CX_I64, CX_SHAPE(2));
        cx_tensor *ts[5] = {r.ps.t[0], r.ps.t[1], r.ps.t[2], r.ps.t[3], rng};
        const char *names[5] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "cortex.rng"};
        const char *mk[1] = {"cortex.epoch"}, *mv[1] = {"1"};
        tmp_path(p, sizeof p, "old.ckpt");
        CHECK(cx_st_save(p, ts, names, 5, mk, mv, 1) == CX_OK);
        expect_bad(&r, p, CX_ERR_FORMAT, "old-format");
        cx_tensor_free(rng);
    }
    /* malformed position / metrics / task metadata */
    tmp_path(p, sizeof p, "bad-epoch.ckpt");
    rewrite_meta(ck, p, "cortex.train.epoch", "two");
    expect_bad(&r, p, CX_ERR_FORMAT, "cortex.train.epoch");
    rewrite_meta(ck, p, "cortex.train.step", NULL);
    expect_bad(&r, p, CX_ERR_FORMAT, "cortex.train.step is missing");
    rewrite_meta(ck, p, "cortex.train.metrics", "epoch;lr\n");
    expect_bad(&r, p, CX_ERR_FORMAT, "cortex.train.metrics");
    rewrite_meta(ck, p, "cortex.checkpoint", "7");
    expect_bad(&r, p, CX_ERR_FORMAT, "format '7'");
    rewrite_meta(ck, p, "cortex.classifier.seen", NULL);
    expect_bad(&r, p, CX_ERR_FORMAT, "cortex.classifier.seen");
    rewrite_meta(ck, p, "cortex.train.num_batches", "40");
    expect_bad(&r, p, CX_ERR_ARG, "had 40 batches");
    rewrite_meta(ck, p, "cortex.train.batch", "30");
    expect_bad(&r, p, CX_ERR_FORMAT, "batch 30 of 19");
    cls_free(&r);
    /* another model (hidden 12), another optimiser, other random streams, other batch size */
    cls_setup_ex(&r, &o, 12, 0.2f, true, false, 32, true);
    expect_bad(&r, ck, CX_ERR_SHAPE, "'fc1.weight'");
    cls_free(&r);
    cls_setup_ex(&r, &o, 24, 0.2f, true, true, 32, true);
    expect_bad(&r, ck, CX_ERR_ARG, "adam optimiser, this run uses sgd");
    cls_free(&r);
    cls_setup_ex(&r, &o, 24, 0.2f, true, false, 32, false);
    expect_bad(&r, ck, CX_ERR_ARG, "random stream 'loader'");
    cls_free(&r);
    cls_setup(&r, &o);
    cx_rng extra = cx_rng_new(1);
    cx_trainer_add_rng(r.tr, "extra", &extra);
    expect_bad(&r, ck, CX_ERR_NOTFOUND, "cortex.rng.extra");
    cls_free(&r);
    cls_setup_ex(&r, &o, 24, 0.2f, true, false, 50, true);
    cx_rng before = r.loader_rng, cur = cx_rng_get();
    expect_bad(&r, ck, CX_ERR_ARG, "batches"); /* found while replaying epoch 2 */
    CHECK(r.loader_rng.state == before.state && cx_rng_get().state == cur.state);
    /* the good file still resumes in the right run */
    cls_free(&r);
    cls_setup(&r, &o);
    CHECK(cx_trainer_resume(r.tr, ck) == CX_OK);
    CHECK(cx_trainer_info(r.tr).pos.step == 23);
    cls_free(&r);
}

/* ---------------------------------------------------------------- corrupt step counts */
/* Rewrite a checkpoint with the I64 tensor `name` set to `v`. */
static void rewrite_i64(const char *src, const char *dst, const char *name, int64_t v) {
    cx_st_file *f = NULL;
    CHECK(cx_st_load(src, &f) == CX_OK);
    if (!f) return;
    cx_tensor **ts = malloc((size_t)f->n * sizeof *ts);
    const char **names = malloc((size_t)f->n * sizeof *names);
    bool found = false;
    for (int i = 0; i < f->n; i++) {
        ts[i] = f->entries[i].tensor, names[i] = f->entries[i].name;
        if (!strcmp(names[i], name) && ts[i]->dtype == CX_I64 && ts[i]->numel == 1) {
            CX_I64P(ts[i])[0] = v;
            found = true;
        }
    }
    CHECK_MSG(found, "%s has no I64 tensor %s", src, name);
    CHECK(cx_st_save(dst, ts, names, f->n, (const char *const *)f->meta_keys, (const char *const *)f->meta_values,
                     f->n_meta) == CX_OK);
    free(ts);
    free(names);
    cx_st_free(f);
}

/* Regression: a negative step count (optim.step, or a parameter's
 * state.<name>.step) passes the layout checks and is refused only by
 * cx_optim_state_import, after the mid-epoch replay has moved the streams.
 * The model used to be overwritten by then, the optimiser state imported up
 * to the bad tensor and the streams left where the replay put them. Now the
 * resume fails with all of them as they were (expect_bad). The message names
 * the checkpoint file and the bad tensor. */
static void test_corrupt_step_checkpoint(void) {
    char ck[256], p[256], name[96];
    tmp_path(ck, sizeof ck, "steps.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.max_steps = 23; /* epoch 2, batch 4: a resume replays 4 batches of draws */
    o.quiet = true;
    o.checkpoint_path = ck;
    cls_run w;
    cls_setup(&w, &o);
    CHECK(cx_trainer_run(w.tr) == CX_OK);
    cls_free(&w);
    o.checkpoint_path = NULL;
    o.max_steps = 0;
    /* optim.step is checked first, then each parameter's step and buffers;
     * a fresh run for each file */
    const char *which[] = {"optim.step", "state.fc1.weight.step", "state.fc2.bias.step"};
    cls_run r;
    for (size_t i = 0; i < sizeof which / sizeof *which; i++) {
        snprintf(name, sizeof name, "neg-%s.ckpt", which[i]);
        tmp_path(p, sizeof p, name);
        rewrite_i64(ck, p, which[i], -1);
        cls_setup(&r, &o);
        expect_bad(&r, p, CX_ERR_FORMAT, which[i]);
        CHECK_MSG(strstr(cx_last_error(), "negative") && strstr(cx_last_error(), p), "message: %s", cx_last_error());
        cls_free(&r);
    }
    cls_setup(&r, &o);
    CHECK_MSG(cx_trainer_resume(r.tr, ck) == CX_OK, "%s", cx_last_error()); /* the good file */
    CHECK(cx_trainer_info(r.tr).pos.step == 23 && cx_optim_steps(r.opt) == 23);
    cls_free(&r);
}

/* ---------------------------------------------------------------- a failed end-of-epoch evaluation */
static cx_status fail_once_at_epoch_end(void *user, const cx_train_info *in) {
    int *left = user;
    if (!in->end_of_epoch || *left <= 0) return CX_OK;
    --*left;
    return cx_set_error(CX_ERR_IO, "disk full at the end of epoch %d", in->pos.epoch);
}

/* Regression: when the end-of-epoch evaluation failed (here the on_eval hook,
 * once, at the end of epoch 1), the next cx_trainer_run trained epoch 1 again
 * and the CSV got a second row for it. The evaluation is retried instead:
 * 2 epochs of 19 batches take 38 steps, the CSV (text and file) holds one
 * row per epoch, and the run ends as one without the failure does. */
static void test_failed_eval_retried(void) {
    char csv[256], csv2[256];
    tmp_path(csv, sizeof csv, "retry.csv");
    tmp_path(csv2, sizeof csv2, "straight.csv");
    int left = 1;
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.quiet = true;
    o.metrics_path = csv;
    o.on_eval = fail_once_at_epoch_end;
    o.hook_user = &left;
    cls_run r;
    cls_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_ERR_IO);
    CHECK_MSG(strstr(cx_last_error(), "disk full at the end of epoch 1") != NULL, "%s", cx_last_error());
    CHECK(cx_trainer_info(r.tr).pos.step == 19 && cx_optim_steps(r.opt) == 19);
    CHECK_MSG(cx_trainer_run(r.tr) == CX_OK, "%s", cx_last_error());
    cx_train_info in = cx_trainer_info(r.tr);
    CHECK_MSG(in.pos.epoch == 3 && in.pos.batch == 0 && in.pos.step == 2 * 19 && cx_optim_steps(r.opt) == 2 * 19,
              "after the second run: epoch %d batch %d step %lld (2 epochs of 19 batches: 38 steps)", in.pos.epoch,
              in.pos.batch, (long long)in.pos.step);
    const char *text = cx_trainer_metrics_csv(r.tr);
    CHECK_MSG(count_char(text, '\n') == 3 && strstr(text, "\n1,") && strstr(text, "\n2,"),
              "one row per epoch expected:\n%s", text);
    char *file = read_all(csv);
    CHECK(file && !strcmp(file, text));
    free(file);
    /* the same as a run in which nothing failed */
    cx_train_opts oa = o;
    oa.on_eval = NULL;
    oa.metrics_path = csv2;
    cls_run a;
    cls_setup(&a, &oa);
    CHECK(cx_trainer_run(a.tr) == CX_OK);
    CHECK(same_tensors(&a.ps, &r.ps) && same_optim(a.opt, r.opt));
    CHECK_MSG(same_csv_but_time(cx_trainer_metrics_csv(a.tr), text), "straight:\n%s\nretried:\n%s",
              cx_trainer_metrics_csv(a.tr), text);
    cls_free(&a);
    cls_free(&r);
}

/* ---------------------------------------------------------------- the epoch limit on resume */
/* Regression: the epoch limit was checked only before an epoch began, so a
 * checkpoint taken in epoch 2 and resumed with opts.epochs = 1 trained the
 * rest of epoch 2. The limit counts epochs in all: the run trains nothing
 * (step count, position, model, optimiser state and CSV unchanged). */
static void test_resume_past_epoch_limit(void) {
    char ck[256];
    tmp_path(ck, sizeof ck, "past.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.max_steps = 23; /* epoch 2, batch 4 */
    o.quiet = true;
    o.checkpoint_path = ck;
    cls_run w;
    cls_setup(&w, &o);
    CHECK(cx_trainer_run(w.tr) == CX_OK);
    cls_free(&w);
    o.epochs = 1;
    o.max_steps = 0;
    o.checkpoint_path = NULL;
    cls_run r;
    cls_setup(&r, &o);
    CHECK_MSG(cx_trainer_resume(r.tr, ck) == CX_OK, "%s", cx_last_error());
    cx_train_pos p0 = cx_trainer_info(r.tr).pos;
    CHECK(p0.epoch == 2 && p0.batch == 4 && p0.step == 23);
    cx_params model, ostate;
    clone_list(&r.ps, &model);
    optim_snapshot(r.opt, &ostate);
    char *csv = strdup(cx_trainer_metrics_csv(r.tr));
    CHECK(cx_trainer_run(r.tr) == CX_OK);
    cx_train_pos p = cx_trainer_info(r.tr).pos;
    CHECK_MSG(p.epoch == 2 && p.batch == 4 && p.step == 23 && cx_optim_steps(r.opt) == 23,
              "epochs = 1, resumed in epoch 2: now epoch %d batch %d step %lld", p.epoch, p.batch, (long long)p.step);
    CHECK_MSG(same_tensors(&model, &r.ps), "the model was trained");
    CHECK(optim_is(r.opt, &ostate));
    CHECK(!strcmp(csv, cx_trainer_metrics_csv(r.tr)));
    free(csv);
    free_clones(&model);
    free_clones(&ostate);
    cls_free(&r);
}

/* ---------------------------------------------------------------- a small fixed task */
/* 4 batches an epoch of 2 x 4 inputs made from the position; the loss is
 * mean((model(x) * scale)^2), scale a parameter outside the model (or none). */
typedef struct {
    cx_module *m;
    cx_tensor *scale;
} fixed_task;

static int fixed_begin(void *u, const cx_train_pos *p) {
    (void)u, (void)p;
    return 4;
}
static bool fixed_next(void *u, const cx_train_pos *p) {
    (void)u;
    return p->batch < 4;
}
static cx_tensor *fixed_loss(void *u, const cx_train_pos *p, int64_t *count) {
    fixed_task *t = u;
    float xs[8];
    for (int i = 0; i < 8; i++) xs[i] = cosf((float)(p->epoch * 31 + p->batch * 8 + i));
    cx_tensor *y = cx_module_forward(t->m, cx_from_data(xs, CX_SHAPE(2, 4)));
    if (t->scale) y = cx_mul(y, t->scale);
    *count = 2;
    return cx_mean(cx_mul(y, y));
}

/* ---------------------------------------------------------------- the model is a child module */
/* Regression: a trainer checkpoint named the model's tensors by their own
 * names, which for a child module (an MLP added to a Sequential as "enc")
 * carry the parent's path ("enc.fc1.weight"), so cx_module_load(enc,
 * checkpoint) found no "fc1.weight". They are saved under state-dict names
 * relative to the model now, as cx_module_save writes them. */
static void test_checkpoint_of_child_module(void) {
    char ck[256];
    tmp_path(ck, sizeof ck, "enc.ckpt");
    cx_seed(2);
    cx_module *parent = cx_sequential_new();
    fixed_task t = {cx_mlp_new((const int[]){4, 3, 2}, 3, CX_ACT_TANH, 0), NULL};
    cx_module_add(parent, "enc", t.m);
    cx_module_add(parent, "head", cx_linear_new(2, 1, true));
    cx_params ps;
    cx_params_init(&ps);
    cx_module_params(t.m, &ps);
    CHECK(ps.n == 4 && !strcmp(ps.t[0]->name, "enc.fc1.weight")); /* the names the tensors carry */
    cx_optim *opt = cx_adam_new(&ps, NULL);
    cx_train_opts o = cx_train_defaults();
    o.epochs = 1;
    o.quiet = true;
    o.checkpoint_path = ck;
    cx_train_task task = {&t, fixed_begin, fixed_next, fixed_loss, NULL, NULL, NULL, NULL, NULL};
    cx_trainer *tr = cx_trainer_new(&task, t.m, opt, &o); /* the encoder trained alone */
    CHECK(cx_trainer_run(tr) == CX_OK);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
        for (int i = 0; i < 4; i++) {
            const cx_tensor *x = cx_st_get(f, names[i]);
            CHECK_MSG(x && x->dtype == CX_F32 && x->numel == ps.t[i]->numel &&
                          !memcmp(x->data, ps.t[i]->data, (size_t)x->numel * sizeof(float)),
                      "checkpoint tensor %s missing or not the model's %s", names[i], ps.t[i]->name);
        }
        CHECK(!cx_st_get(f, "enc.fc1.weight"));
        cx_st_free(f);
    }
    /* the checkpoint loads as a model file */
    cx_params trained;
    clone_list(&ps, &trained);
    for (int i = 0; i < ps.n; i++) cx_fill(ps.t[i], 0.0f);
    cx_status st = cx_module_load(t.m, ck);
    CHECK_MSG(st == CX_OK, "cx_module_load(enc, checkpoint): %s", cx_last_error());
    CHECK(same_tensors(&trained, &ps));
    /* ... and resumes */
    cx_trainer *tr2 = cx_trainer_new(&task, t.m, opt, &o);
    CHECK_MSG(cx_trainer_resume(tr2, ck) == CX_OK, "%s", cx_last_error());
    CHECK(cx_trainer_info(tr2).pos.epoch == 2 && cx_trainer_info(tr2).pos.step == 4);
    cx_trainer_free(tr2);
    free_clones(&trained);
    cx_trainer_free(tr);
    cx_optim_free(opt);
    cx_params_free(&ps);
    cx_module_free(parent);
}

/* ---------------------------------------------------------------- optimiser parameters outside the model */
typedef struct {
    fixed_task t;
    cx_params ps;
    cx_optim *opt;
    cx_trainer *tr;
} fixed_run;

/* An MLP 4 -> 3 -> 2 and a scale, one Adam over both; the model given to the
 * trainer is the MLP. */
static void fixed_setup(fixed_run *r, const cx_train_opts *o) {
    memset(r, 0, sizeof *r);
    cx_seed(1);
    r->t.m = cx_mlp_new((const int[]){4, 3, 2}, 3, CX_ACT_TANH, 0);
    r->t.scale = cx_param_new("scale", CX_SHAPE(1));
    CX_F(r->t.scale)[0] = 1.0f;
    cx_params_init(&r->ps);
    cx_module_params(r->t.m, &r->ps);
    cx_params_add(&r->ps, r->t.scale);
    cx_adam_opts ao = cx_adam_defaults();
    ao.lr = 0.01;
    r->opt = cx_adam_new(&r->ps, &ao);
    cx_train_task task = {&r->t, fixed_begin, fixed_next, fixed_loss, NULL, NULL, NULL, NULL, NULL};
    r->tr = cx_trainer_new(&task, r->t.m, r->opt, o);
}

static void fixed_free(fixed_run *r) {
    cx_trainer_free(r->tr);
    cx_optim_free(r->opt);
    cx_params_free(&r->ps);
    cx_module_free(r->t.m);
    cx_tensor_free(r->t.scale);
}

/* Regression: a checkpoint held the model's tensors and the whole optimiser
 * state, but not the values of optimiser parameters outside the model (a
 * scale under the same Adam): a resumed run went on from the scale's initial
 * value with the trained scale's Adam state. They are saved too now (under
 * their own names): a run checkpointed mid-epoch 2 and resumed ends
 * bit-identical to the uninterrupted one. */
static void test_resume_param_outside_model(void) {
    char ck[256];
    tmp_path(ck, sizeof ck, "extra.ckpt");
    cx_train_opts o = cx_train_defaults();
    o.epochs = 2;
    o.quiet = true;
    fixed_run a, b, c;
    fixed_setup(&a, &o);
    CHECK(cx_trainer_run(a.tr) == CX_OK);
    CHECK(CX_F(a.t.scale)[0] != 1.0f); /* the scale trains */
    cx_train_opts ob = o;
    ob.max_steps = 6; /* epoch 2, batch 2 */
    ob.checkpoint_path = ck;
    fixed_setup(&b, &ob);
    CHECK(cx_trainer_run(b.tr) == CX_OK);
    cx_train_pos pb = cx_trainer_info(b.tr).pos;
    CHECK(pb.epoch == 2 && pb.batch == 2 && pb.step == 6);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        const cx_tensor *s = cx_st_get(f, "scale");
        CHECK_MSG(s && s->numel == 1 && CX_F(s)[0] == CX_F(b.t.scale)[0], "the checkpoint lacks the scale's value");
        cx_st_free(f);
    }
    fixed_free(&b);
    fixed_setup(&c, &o);
    CHECK_MSG(cx_trainer_resume(c.tr, ck) == CX_OK, "%s", cx_last_error());
    CHECK(cx_trainer_run(c.tr) == CX_OK);
    CHECK_MSG(same_tensors(&a.ps, &c.ps), "scale: uninterrupted %.9g, resumed %.9g", (double)CX_F(a.t.scale)[0],
              (double)CX_F(c.t.scale)[0]);
    CHECK(same_optim(a.opt, c.opt));
    CHECK(cx_trainer_info(c.tr).pos.step == 8 && cx_trainer_info(a.tr).pos.step == 8);
    fixed_free(&a);
    fixed_free(&c);
}

/* ---------------------------------------------------------------- a schedule behind a warm-up */
/* Regression: cx_trainer_new checked the schedule at epoch 0 only, which a
 * warm-up answers itself: an invalid schedule behind one (a cosine with
 * t_max 0) was a fatal error when the warm-up ended, two epochs into the run.
 * It is one at creation now; a valid schedule behind a warm-up is accepted. */
static void test_warmup_schedule_checked_at_creation(void) {
    fixed_run r;
    cx_train_opts o = cx_train_defaults();
    o.epochs = 3;
    o.quiet = true;
    o.sched = cx_sched_with_warmup(cx_sched_cosine(3, 0), 0.1, 2);
    fixed_setup(&r, &o);
    CHECK(cx_trainer_run(r.tr) == CX_OK && cx_trainer_info(r.tr).pos.step == 12);
    cx_train_task task = {&r.t, fixed_begin, fixed_next, fixed_loss, NULL, NULL, NULL, NULL, NULL};
    o.sched = cx_sched_with_warmup(cx_sched_cosine(0, 0), 0.1, 2); /* t_max 0: invalid */
    cx_trainer *volatile bad = NULL;
    EXPECT_FATAL(bad = cx_trainer_new(&task, r.t.m, r.opt, &o), "t_max must be > 0");
    if (bad) cx_trainer_free(bad); /* accepted: not run (a fatal error two epochs in ends the binary) */
    fixed_free(&r);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cx_test_trainer_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        printf("RESULT 0 1\n");
        return 1;
    }
    cx_set_threads(1);
    make_blobs(&g_train, 600, 1);
    make_blobs(&g_val, 200, 2);
    RUN(test_clocks_and_metrics);
    RUN(test_classifier_eval);
    RUN(test_classifier_accuracy);
    RUN(test_csv_progress_log);
    RUN(test_nonfinite_loss);
    RUN(test_limits);
    RUN(test_resume_classifier);
    RUN(test_resume_stateful);
    RUN(test_checkpoint_names);
    RUN(test_bad_checkpoints);
    RUN(test_corrupt_step_checkpoint);
    RUN(test_failed_eval_retried);
    RUN(test_resume_past_epoch_limit);
    RUN(test_checkpoint_of_child_module);
    RUN(test_resume_param_outside_model);
    RUN(test_warmup_schedule_checked_at_creation);
    cx_dataset_free(&g_train);
    cx_dataset_free(&g_val);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_END();
}
