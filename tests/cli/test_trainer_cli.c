/* The trainer behind `cortex train` and `cortex charlm train`, driven as a
 * subprocess: the one checkpoint format (its documented names, loadable as a
 * model by eval / sample), clear errors for old-format and mismatched
 * checkpoints, the charlm metrics CSV (mid-epoch rows, identical after a
 * resume) and `viz curves` on it. $CORTEX_BIN is set by `make test`. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"
#define TEXT "data/text/kjv_genesis_ruth_jonah.txt"
#define SMALL_LM "--limit 20000 --layers 1 --hidden 32 --embed 8 --seq 16 --batch 8 --quiet --seed 3 --dropout 0"

static const char *meta(const cx_st_file *f, const char *k) {
    const char *v = cx_st_meta(f, k);
    return v ? v : "(missing)";
}

/* The metrics rows of two CSV files agree in every column but the last. */
static bool same_csv_but_time(const char *pa, const char *pb) {
    char a[8192], b[8192];
    read_text(pa, a, sizeof a);
    read_text(pb, b, sizeof b);
    const char *x = a, *y = b;
    for (;;) {
        const char *lx = strchr(x, '\n'), *ly = strchr(y, '\n');
        if (!lx || !ly) return !lx && !ly && a[0];
        const char *cx = lx, *cy = ly;
        while (cx > x && *cx != ',') cx--;
        while (cy > y && *cy != ',') cy--;
        if (cx - x != cy - y || strncmp(x, y, (size_t)(cx - x))) return false;
        x = lx + 1;
        y = ly + 1;
    }
}

static void test_train_checkpoint(void) {
    static run_result r, r2;
    char m[512], csv[512], ck[512], old[512];
    tmp_path(m, sizeof m, "m.safetensors");
    tmp_path(csv, sizeof csv, "m.csv");
    tmp_path(ck, sizeof ck, "m.ckpt");
    const char *common = "--data " DATA_DIR " --limit 1000 --val 200 --hidden 16 --quiet";
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    run(&r, "train %s --epochs 1 --out '%s' --metrics '%s' --checkpoint '%s'", common, m, csv, ck);
    CHECK_MSG(r.code == 0, "train: %s", r.err);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        const char *names[] = {"fc1.weight", "fc2.bias", "optim.step", "state.fc1.weight.exp_avg",
                               "state.fc2.bias.exp_avg_sq", "cortex.rng.current", "cortex.rng_epoch.current"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            CHECK_MSG(cx_st_get(f, names[i]) != NULL, "checkpoint lacks %s", names[i]);
        CHECK(!strcmp(meta(f, "cortex.checkpoint"), "1") && !strcmp(meta(f, "cortex.train.optim"), "adam"));
        CHECK(!strcmp(meta(f, "cortex.train.epoch"), "2") && !strcmp(meta(f, "cortex.train.batch"), "0"));
        CHECK(!strcmp(meta(f, "cortex.train.step"), "16") && !strcmp(meta(f, "cortex.arch"), "mlp"));
        CHECK(!strcmp(meta(f, "cortex.sizes"), "784,16,10"));
        CHECK(!strncmp(meta(f, "cortex.train.metrics"), "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n1,",
                       57));
        CHECK(!strcmp(meta(f, "cortex.classifier.seen"), "1000"));
        cx_st_free(f);
    }
    /* the checkpoint is also a model: eval gives the model file's result */
    cli_err_prefix = "cortex eval";
    run(&r, "eval '%s' " DATA_DIR, m);
    run(&r2, "eval '%s' " DATA_DIR, ck);
    CHECK_MSG(r.code == 0 && r2.code == 0, "eval: %s %s", r.err, r2.err);
    const char *a = strstr(r.out, "examples, loss"), *b = strstr(r2.out, "examples, loss");
    CHECK(a && b && !strcmp(a, b));
    /* a checkpoint needs the same model and optimiser: the flags are compared
     * first; even --resume-override cannot load them into another model or
     * optimiser */
    cli_err_prefix = "cortex train";
    run(&r, "train %s --epochs 2 --optim sgd --out '%s' --metrics '%s' --resume '%s'", common, m, csv, ck);
    EXPECT_ERR(&r, "other optimiser", "m.ckpt", "--optim: checkpoint adam, this run sgd");
    run(&r, "train %s --epochs 2 --optim sgd --out '%s' --metrics '%s' --resume '%s' --resume-override", common, m,
        csv, ck);
    EXPECT_ERR(&r, "other optimiser, override", "m.ckpt", "adam optimiser, this run uses sgd");
    run(&r, "train --data " DATA_DIR " --limit 1000 --val 200 --hidden 32 --quiet --epochs 2 --out '%s' "
            "--metrics '%s' --resume '%s'", m, csv, ck);
    EXPECT_ERR(&r, "other model", "m.ckpt", "--hidden: checkpoint 16, this run 32");
    run(&r, "train --data " DATA_DIR " --limit 1000 --val 200 --hidden 32 --quiet --epochs 2 --out '%s' "
            "--metrics '%s' --resume '%s' --resume-override", m, csv, ck);
    EXPECT_ERR(&r, "other model, override", "m.ckpt", "'fc1.weight'");
    /* a checkpoint of the format before the trainer */
    tmp_path(old, sizeof old, "old.ckpt");
    cx_tensor *w1 = cx_tensor_new(CX_F32, CX_SHAPE(16, 784)), *rng = cx_tensor_new(CX_I64, CX_SHAPE(2));
    cx_tensor *ts[2] = {w1, rng};
    const char *tn[2] = {"fc1.weight", "cortex.rng"}, *mk[2] = {"cortex.epoch", "cortex.arch"}, *mv[2] = {"1", "mlp"};
    CHECK(cx_st_save(old, ts, tn, 2, mk, mv, 2) == CX_OK);
    run(&r, "train %s --epochs 2 --out '%s' --metrics '%s' --resume '%s'", common, m, csv, old);
    EXPECT_ERR(&r, "old format", "old.ckpt", "old-format");
    cx_tensor_free(w1);
    cx_tensor_free(rng);
}

static void test_charlm_metrics_and_checkpoint(void) {
    static run_result r;
    char m[512], csv[512], ck[512], m2[512], csv2[512], png[512];
    tmp_path(m, sizeof m, "lm.safetensors");
    tmp_path(csv, sizeof csv, "lm.csv");
    tmp_path(ck, sizeof ck, "lm.ckpt");
    tmp_path(m2, sizeof m2, "lm2.safetensors");
    tmp_path(csv2, sizeof csv2, "lm2.csv");
    tmp_path(png, sizeof png, "lm.png");
    cli_prefix = "charlm ";
    cli_err_prefix = "cortex charlm";
    /* straight: 2 epochs, validation every 40 steps */
    run(&r, "train --text " TEXT " " SMALL_LM " --epochs 2 --val-every 40 --out '%s' --metrics '%s'", m, csv);
    CHECK_MSG(r.code == 0, "train: %s", r.err);
    char text[8192];
    read_text(csv, text, sizeof text);
    CHECK_MSG(!strncmp(text, "epoch,lr,train_loss,train_bpc,val_loss,val_bpc,seconds\n0.2685,0.002,", 68), "CSV:\n%s",
              text);
    CHECK(count_lines(text) == 1 + 9 && strstr(text, "\n1,0.002,") && strstr(text, "\n2,0.002,"));
    /* stopped mid-epoch 2 at step 200 (an evaluation step), then resumed */
    run(&r, "train --text " TEXT " " SMALL_LM " --epochs 2 --val-every 40 --steps 200 --out '%s' --metrics '%s' "
            "--checkpoint '%s'", m2, csv2, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "epoch 2 batch 51/149  step 200"), "stop: %s %s", r.out, r.err);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        CHECK(cx_st_get(f, "charlm.state.h") && cx_st_get(f, "charlm.state.c") && cx_st_get(f, "embed.weight"));
        CHECK(cx_st_get(f, "cortex.rng_epoch.current") && cx_st_get(f, "state.fc.weight.exp_avg"));
        CHECK(!strcmp(meta(f, "cortex.train.epoch"), "2") && !strcmp(meta(f, "cortex.train.batch"), "51"));
        CHECK(!strcmp(meta(f, "cortex.train.num_batches"), "149") && !strcmp(meta(f, "cortex.arch"), "charlm"));
        CHECK(!strcmp(meta(f, "cortex.charlm.train"), "batch=8,seq=16") && strlen(meta(f, "cortex.vocab")) > 100);
        cx_st_free(f);
    }
    run(&r, "train --text " TEXT " " SMALL_LM " --epochs 2 --val-every 40 --out '%s' --metrics '%s' --resume '%s'", m2,
        csv2, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "at epoch 2, batch 51 (step 200)"), "resume: %s %s", r.out, r.err);
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    CHECK(!cx_read_file(m, &da, &na, 0) && !cx_read_file(m2, &db, &nb, 0) && na == nb && !memcmp(da, db, na));
    free(da);
    free(db);
    CHECK_MSG(same_csv_but_time(csv, csv2), "the resumed run's metrics differ");
    /* the checkpoint is a model too */
    run(&r, "sample '%s' --length 20 --seed 1", ck);
    CHECK_MSG(r.code == 0 && strlen(r.out) >= 20, "sample: %s", r.err);
    run(&r, "eval '%s' --text " TEXT " --limit 3000", ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "bits/char"), "eval: %s", r.err);
    /* an old-format charlm checkpoint (cortex.rng_epoch) is named as such */
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        cx_tensor **ts = malloc((size_t)f->n * sizeof *ts);
        const char **tn = malloc((size_t)f->n * sizeof *tn), **mk = malloc((size_t)f->n_meta * sizeof *mk),
                   **mv = malloc((size_t)f->n_meta * sizeof *mv);
        int n = 0, nm = 0;
        for (int i = 0; i < f->n; i++) {
            ts[n] = f->entries[i].tensor;
            tn[n] = !strcmp(f->entries[i].name, "cortex.rng_epoch.current") ? "cortex.rng_epoch" : f->entries[i].name;
            n++;
        }
        for (int i = 0; i < f->n_meta; i++)
            if (strcmp(f->meta_keys[i], "cortex.checkpoint")) mk[nm] = f->meta_keys[i], mv[nm++] = f->meta_values[i];
        char old[512];
        tmp_path(old, sizeof old, "old-lm.ckpt");
        CHECK(cx_st_save(old, ts, tn, n, mk, mv, nm) == CX_OK);
        run(&r, "train --text " TEXT " " SMALL_LM " --epochs 2 --resume '%s'", old);
        EXPECT_ERR(&r, "old-format charlm checkpoint", "old-lm.ckpt", "old-format");
        free(ts);
        free(tn);
        free(mk);
        free(mv);
        cx_st_free(f);
    }
    /* viz curves plots the language model's CSV */
    cli_prefix = "";
    run(&r, "viz curves '%s' --out '%s'", csv, png);
    CHECK_MSG(r.code == 0 && strstr(r.out, "9 evaluations to epoch 2") && access(png, F_OK) == 0, "viz: %s %s", r.out,
              r.err);
}

int main(void) {
    if (!cli_setup("test_trainer_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_train_checkpoint);
    RUN(test_charlm_metrics_and_checkpoint);
    cli_teardown();
    TEST_END();
}
