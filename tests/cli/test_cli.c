/* The cortex command-line tool, driven as a subprocess (path in $CORTEX_BIN):
 * help texts, one-line errors for bad usage / missing or corrupt files,
 * a short real training run, eval and info on its model, atomic saving. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"


static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---------------------------------------------------------------- help */
static void test_help(void) {
    static run_result r;
    run(&r, "help");
    CHECK_MSG(r.code == 0, "help: exit %d", r.code);
    CHECK(strstr(r.out, "usage: cortex") != NULL);
    CHECK(strstr(r.out, "train") && strstr(r.out, "eval") && strstr(r.out, "info"));
    CHECK_MSG(r.err[0] == 0, "help wrote to stderr: %s", r.err);

    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "usage: cortex"));

    const char *cmds[3] = {"train", "eval", "info"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: cortex %s", cmds[i]);
        run(&r, "%s --help", cmds[i]);
        CHECK_MSG(r.code == 0, "%s --help: exit %d", cmds[i], r.code);
        CHECK_MSG(strstr(r.out, want) != NULL, "%s --help: stdout '%s'", cmds[i], r.out);
        CHECK_MSG(r.err[0] == 0, "%s --help wrote to stderr: %s", cmds[i], r.err);
        run(&r, "help %s", cmds[i]);
        CHECK_MSG(r.code == 0 && strstr(r.out, want), "help %s: exit %d", cmds[i], r.code);
    }
    run(&r, "train --help");
    CHECK(strstr(r.out, "--epochs") && strstr(r.out, "--lr") && strstr(r.out, "--data"));
    run(&r, "eval --help");
    CHECK(strstr(r.out, "MODEL DATA") != NULL);
    run(&r, "--version");
    CHECK(r.code == 0 && strstr(r.out, "cortex 0.") != NULL);

    /* no command at all: usage on stderr, non-zero */
    run(&r, "%s", "");
    CHECK(r.code == 2);
    CHECK(strstr(r.err, "usage: cortex") != NULL);
}

/* ---------------------------------------------------------------- bad usage */
static void test_bad_usage(void) {
    static run_result r;
    run(&r, "frobnicate");
    EXPECT_ERR(&r, "unknown command", "frobnicate");

    run(&r, "train --bogus 3");
    EXPECT_ERR(&r, "unknown flag", "--bogus");
    run(&r, "eval --nope m.safetensors data");
    EXPECT_ERR(&r, "eval unknown flag", "--nope");
    run(&r, "info --x f");
    EXPECT_ERR(&r, "info unknown flag", "--x");

    run(&r, "train --epochs");
    EXPECT_ERR(&r, "missing value", "--epochs", "value");
    run(&r, "train --quiet --out");
    EXPECT_ERR(&r, "missing value (out)", "--out");

    run(&r, "train --epochs abc");
    EXPECT_ERR(&r, "--epochs abc", "--epochs", "abc");
    run(&r, "train --lr -1");
    EXPECT_ERR(&r, "--lr -1", "--lr", "-1");
    run(&r, "train --epochs 10x");
    EXPECT_ERR(&r, "--epochs 10x", "--epochs", "10x");
    run(&r, "train --epochs 0");
    EXPECT_ERR(&r, "--epochs 0", "--epochs");
    run(&r, "train --batch 99999999999999999999");
    EXPECT_ERR(&r, "--batch overflow", "--batch");
    run(&r, "train --lr nan");
    EXPECT_ERR(&r, "--lr nan", "--lr", "nan");
    run(&r, "train --lr=abc");
    EXPECT_ERR(&r, "--lr=abc", "--lr", "abc");
    run(&r, "train --dropout 1.5");
    EXPECT_ERR(&r, "--dropout 1.5", "--dropout");
    run(&r, "train --act swish");
    EXPECT_ERR(&r, "--act swish", "swish");
    run(&r, "train --optim lbfgs");
    EXPECT_ERR(&r, "--optim lbfgs", "lbfgs");
    run(&r, "train --sched zigzag");
    EXPECT_ERR(&r, "--sched zigzag", "zigzag");
    run(&r, "train --hidden 16,,8");
    EXPECT_ERR(&r, "--hidden 16,,8", "--hidden");
    run(&r, "train --hidden abc");
    EXPECT_ERR(&r, "--hidden abc", "--hidden");
    run(&r, "train extra");
    EXPECT_ERR(&r, "train positional", "extra");

    run(&r, "eval only-one");
    EXPECT_ERR(&r, "eval one positional", "MODEL");
    run(&r, "eval a b c");
    EXPECT_ERR(&r, "eval three positionals", "'c'");
    run(&r, "eval m d --threads many");
    EXPECT_ERR(&r, "eval --threads many", "--threads", "many");
}

/* ---------------------------------------------------------------- missing files */
static void test_missing_files(void) {
    static run_result r;
    char out[512], p[512];
    tmp_path(out, sizeof out, "never.safetensors");
    run(&r, "train --data '%s/no-such-dir' --quiet --out '%s'", tmpdir, out);
    EXPECT_ERR(&r, "missing data dir", "no-such-dir");
    CHECK(!file_exists(out));

    tmp_path(p, sizeof p, "missing.safetensors");
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "eval missing model", "missing.safetensors");
    run(&r, "info '%s'", p);
    EXPECT_ERR(&r, "info missing file", "missing.safetensors");
}

/* ---------------------------------------------------------------- real run */
static bool have_model;
static char model_path[512];

static void test_train_eval_info(void) {
    static run_result r;
    char csv[512], text[4096];
    tmp_path(model_path, sizeof model_path, "m.safetensors");
    tmp_path(csv, sizeof csv, "m.csv");
    run(&r,
        "train --data " DATA_DIR " --limit 1000 --val 200 --epochs 1 --hidden 16 --quiet --out '%s' --metrics '%s'",
        model_path, csv);
    CHECK_MSG(r.code == 0, "train exit %d, stderr: %s", r.code, r.err);
    CHECK_MSG(r.err[0] == 0, "train wrote to stderr: %s", r.err);
    CHECK_MSG(strstr(r.out, "1000 train, 200 validation") != NULL, "stdout: %s", r.out);
    CHECK(strstr(r.out, "epoch 1/1") != NULL);
    CHECK(strstr(r.out, "MLP 784-16-10") != NULL);
    CHECK(strstr(r.out, "test: loss") != NULL);
    CHECK(file_exists(model_path));
    CHECK(file_exists(csv));

    /* metrics: header + one row with 7 fields */
    read_text(csv, text, sizeof text);
    CHECK_MSG(count_lines(text) == 2, "metrics CSV:\n%s", text);
    CHECK(strncmp(text, "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n", 55) == 0);
    const char *row = strchr(text, '\n');
    if (row) {
        int ep = 0;
        double lr = 0, tl = 0, ta = 0, vl = 0, va = 0, secs = -1;
        int got = sscanf(row + 1, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &ep, &lr, &tl, &ta, &vl, &va, &secs);
        CHECK_MSG(got == 7, "row: %s", row + 1);
        CHECK(ep == 1);
        CHECK_NEAR(lr, 0.001, 1e-9);
        /* one short epoch (16 Adam steps): clearly better than chance (10%, loss ln 10) */
        CHECK_MSG(tl > 0 && tl < 2.3 && vl > 0 && vl < 2.25, "losses %g %g", tl, vl);
        CHECK_MSG(ta > 0.12 && ta <= 1 && va > 0.15 && va <= 1, "accuracies %g %g", ta, va);
        CHECK(secs >= 0);
    }
    /* the model file is a Cortex MLP safetensors */
    cx_st_file *f = NULL;
    CHECK(cx_st_load(model_path, &f) == CX_OK);
    if (f) {
        CHECK(f->n == 4);
        cx_tensor *w = cx_st_get(f, "fc1.weight");
        CHECK(w && w->shape[0] == 16 && w->shape[1] == 784);
        CHECK(cx_st_meta(f, "cortex.arch") && !strcmp(cx_st_meta(f, "cortex.arch"), "mlp"));
        CHECK(cx_st_meta(f, "cortex.sizes") && !strcmp(cx_st_meta(f, "cortex.sizes"), "784,16,10"));
        cx_st_free(f);
    }
    /* no temp files left behind */
    char tmpname[600];
    snprintf(tmpname, sizeof tmpname, "ls '%s' | grep -c '\\.tmp' > '%s/tmpcount.txt'", tmpdir, tmpdir);
    if (system(tmpname) != -1) {
        tmp_path(tmpname, sizeof tmpname, "tmpcount.txt");
        read_text(tmpname, text, sizeof text);
        CHECK_MSG(atoi(text) == 0, "temp files left: %s", text);
        unlink(tmpname);
    }
    double train_test_acc = -1;
    const char *tt = strstr(r.out, "test: loss ");
    if (tt && (tt = strstr(tt, "accuracy "))) train_test_acc = atof(tt + 9);
    CHECK_MSG(train_test_acc > 0.2, "test accuracy after training: %g", train_test_acc);
    have_model = r.code == 0 && file_exists(model_path);
    if (!have_model) return;

    run(&r, "eval '%s' " DATA_DIR, model_path);
    CHECK_MSG(r.code == 0, "eval exit %d: %s", r.code, r.err);
    const char *acc = strstr(r.out, "accuracy ");
    CHECK_MSG(acc != NULL, "eval stdout: %s", r.out);
    if (acc) {
        double a = atof(acc + 9);
        CHECK_MSG(a > 0.2 && a <= 1.0, "accuracy %g", a);
        /* the saved model reproduces the test accuracy train reported */
        CHECK_NEAR(a, train_test_acc, 1e-9);
    }
    CHECK(strstr(r.out, "1000 examples") != NULL);
    run(&r, "eval '%s' " DATA_DIR " --split train --confusion", model_path);
    CHECK(r.code == 0 && strstr(r.out, "6000 examples") && strstr(r.out, "confusion"));

    run(&r, "info '%s'", model_path);
    CHECK_MSG(r.code == 0, "info exit %d: %s", r.code, r.err);
    CHECK_MSG(strstr(r.out, "fc1.weight") != NULL, "info stdout: %s", r.out);
    CHECK(strstr(r.out, "[16, 784]") != NULL);
    CHECK(strstr(r.out, "fc2.bias") != NULL);
    CHECK(strstr(r.out, "cortex.arch = mlp") != NULL);
    CHECK(strstr(r.out, "4 tensors") != NULL);

    /* eval with a data dir that does not exist */
    run(&r, "eval '%s' '%s/nodata'", model_path, tmpdir);
    EXPECT_ERR(&r, "eval missing data", "nodata");
}

/* ---------------------------------------------------------------- corrupt models */
static void write_bytes(const char *path, const void *data, size_t n) {
    CHECK_MSG(cx_write_file_atomic(path, data, n) == CX_OK, "write %s: %s", path, cx_last_error());
}

static void expect_eval_info_fail(const char *path, const char *what, bool info_fails) {
    static run_result r;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    run(&r, "eval '%s' " DATA_DIR, path);
    EXPECT_ERR(&r, what, base);
    run(&r, "info '%s'", path);
    if (info_fails) EXPECT_ERR(&r, what, base);
    else CHECK_MSG(r.code == 0, "%s: info exit %d: %s", what, r.code, r.err);
}

static void test_corrupt_models(void) {
    char p[512];
    /* random bytes (deterministic), including a first word that is a huge header size */
    unsigned char junk[4096];
    cx_seed(99);
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)cx_rand_u32();
    tmp_path(p, sizeof p, "random.safetensors");
    write_bytes(p, junk, sizeof junk);
    expect_eval_info_fail(p, "random bytes", true);

    /* a plausible header size followed by garbage JSON */
    junk[0] = 100; memset(junk + 1, 0, 7);
    junk[8] = '{';
    tmp_path(p, sizeof p, "garbage-json.safetensors");
    write_bytes(p, junk, 300);
    expect_eval_info_fail(p, "garbage JSON", true);

    tmp_path(p, sizeof p, "empty.safetensors");
    write_bytes(p, "", 0);
    expect_eval_info_fail(p, "empty file", true);

    /* a directory instead of a file */
    tmp_path(p, sizeof p, "adir.safetensors");
    mkdir(p, 0700);
    expect_eval_info_fail(p, "directory", true);
    rmdir(p);

    /* truncated copies of the real model */
    if (have_model) {
        void *buf = NULL;
        size_t n = 0;
        CHECK(cx_read_file(model_path, &buf, &n, 0) == CX_OK);
        if (buf) {
            const size_t cutv[4] = {5, 100, n / 2, n - 1};
            for (int i = 0; i < 4; i++) {
                char name[64], what[64];
                snprintf(name, sizeof name, "trunc%d.safetensors", i);
                snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cutv[i], n);
                tmp_path(p, sizeof p, name);
                write_bytes(p, buf, cutv[i]);
                expect_eval_info_fail(p, what, true);
                unlink(p);
            }
            /* one extra trailing byte is also rejected (regions must tile the buffer) */
            unsigned char *more = malloc(n + 1);
            memcpy(more, buf, n);
            more[n] = 0;
            tmp_path(p, sizeof p, "long.safetensors");
            write_bytes(p, more, n + 1);
            expect_eval_info_fail(p, "trailing byte", true);
            unlink(p);
            free(more);
            free(buf);
        }
    }

    /* valid safetensors without the cortex metadata: info works, eval refuses */
    cx_tensor *w1 = cx_tensor_new(CX_F32, CX_SHAPE(16, 784)), *b1 = cx_tensor_new(CX_F32, CX_SHAPE(16));
    cx_tensor *w2 = cx_tensor_new(CX_F32, CX_SHAPE(10, 16)), *b2 = cx_tensor_new(CX_F32, CX_SHAPE(10));
    cx_tensor *ts[4] = {w1, b1, w2, b2};
    const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    tmp_path(p, sizeof p, "nometa.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, NULL, NULL, 0) == CX_OK);
    expect_eval_info_fail(p, "no cortex metadata", false);
    static run_result r;
    run(&r, "eval '%s' " DATA_DIR, p);
    CHECK_MSG(strstr(r.err, "metadata") != NULL, "stderr: %s", r.err);

    /* metadata present but inconsistent with the tensors */
    const char *mk[3] = {"cortex.arch", "cortex.sizes", "cortex.act"};
    const char *mv_bad_sizes[3] = {"mlp", "784,abc,10", "relu"};
    tmp_path(p, sizeof p, "badsizes.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_bad_sizes, 3) == CX_OK);
    expect_eval_info_fail(p, "bad cortex.sizes", false);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "bad cortex.sizes message", "'784,abc,10'");

    const char *mv_bad_act[3] = {"mlp", "784,16,10", "swish"};
    tmp_path(p, sizeof p, "badact.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_bad_act, 3) == CX_OK);
    expect_eval_info_fail(p, "bad cortex.act", false);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "bad cortex.act message", "'swish'");

    const char *mv_wrong_shape[3] = {"mlp", "784,32,10", "relu"};
    tmp_path(p, sizeof p, "wrongshape.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_wrong_shape, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "sizes disagree with tensors", "fc1.weight");

    /* hostile sizes: must be rejected from the file's shapes before any
     * allocation (a 10^6 x 10^6 layer would need 4 TB) */
    const char *mv_huge[3] = {"mlp", "1000000,1000000,10", "relu"};
    tmp_path(p, sizeof p, "huge.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_huge, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "hostile sizes", "huge.safetensors", "fc1.weight");

    const char *mv_deeper[3] = {"mlp", "784,16,10,10", "relu"};
    tmp_path(p, sizeof p, "deeper.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_deeper, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "sizes name a missing layer", "fc3.weight");

    const char *mv_other_arch[3] = {"cnn", "784,16,10", "relu"};
    tmp_path(p, sizeof p, "cnn.safetensors");
    CHECK(cx_st_save(p, ts, names, 4, mk, mv_other_arch, 3) == CX_OK);
    expect_eval_info_fail(p, "other arch", false);

    /* the right metadata but a missing tensor */
    const char *mv_ok[3] = {"mlp", "784,16,10", "relu"};
    tmp_path(p, sizeof p, "missing-tensor.safetensors");
    CHECK(cx_st_save(p, ts, names, 3, mk, mv_ok, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "missing tensor", "fc2.bias");

    /* a model for 100 features on 784-feature data */
    cx_tensor *w1s = cx_tensor_new(CX_F32, CX_SHAPE(16, 100));
    cx_tensor *ts2[4] = {w1s, b1, w2, b2};
    const char *mv_100[3] = {"mlp", "100,16,10", "relu"};
    tmp_path(p, sizeof p, "feat100.safetensors");
    CHECK(cx_st_save(p, ts2, names, 4, mk, mv_100, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "feature mismatch", "784");
    cx_tensor_free(w1s);

    /* a 5-class model on 10-class data */
    cx_tensor *w2c = cx_tensor_new(CX_F32, CX_SHAPE(5, 16)), *b2c = cx_tensor_new(CX_F32, CX_SHAPE(5));
    cx_tensor *ts3[4] = {w1, b1, w2c, b2c};
    const char *mv_5[3] = {"mlp", "784,16,5", "relu"};
    tmp_path(p, sizeof p, "five.safetensors");
    CHECK(cx_st_save(p, ts3, names, 4, mk, mv_5, 3) == CX_OK);
    run(&r, "eval '%s' " DATA_DIR, p);
    EXPECT_ERR(&r, "too few classes", "5 classes");
    cx_tensor_free(w2c);
    cx_tensor_free(b2c);

    for (int i = 0; i < 4; i++) cx_tensor_free(ts[i]);
}

/* ---------------------------------------------------------------- atomic save */
static void test_failed_train_keeps_old_model(void) {
    static run_result r;
    char out[512], csv[512], bad[512], p[1024];
    tmp_path(out, sizeof out, "keep.safetensors");
    tmp_path(csv, sizeof csv, "keep.csv");
    const char *old = "previous model contents -- must survive";
    const char *oldcsv = "epoch,lr\n1,0.1\n";
    write_bytes(out, old, strlen(old));
    write_bytes(csv, oldcsv, strlen(oldcsv));

    /* bad --data: a directory that does not exist */
    run(&r, "train --data '%s/absent' --epochs 1 --quiet --out '%s' --metrics '%s'", tmpdir, out, csv);
    EXPECT_ERR(&r, "train with absent data", "absent");

    /* bad --data: files present but the images are truncated */
    tmp_path(bad, sizeof bad, "baddata");
    mkdir(bad, 0700);
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(DATA_DIR "/train-images-idx3-ubyte.gz", &buf, &n, 0) == CX_OK);
    if (buf) {
        snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", bad);
        write_bytes(p, buf, n / 3);
        free(buf);
        buf = NULL;
    }
    CHECK(cx_read_file(DATA_DIR "/train-labels-idx1-ubyte.gz", &buf, &n, 0) == CX_OK);
    if (buf) {
        snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", bad);
        write_bytes(p, buf, n);
        free(buf);
    }
    run(&r, "train --data '%s' --epochs 1 --hidden 8 --quiet --out '%s' --metrics '%s'", bad, out, csv);
    EXPECT_ERR(&r, "train with truncated images", "train-images-idx3-ubyte.gz");

    /* --val larger than the data */
    run(&r, "train --data " DATA_DIR " --val 6000 --epochs 1 --quiet --out '%s' --metrics '%s'", out, csv);
    EXPECT_ERR(&r, "train with --val >= data", "--val");

    char text[256];
    read_text(out, text, sizeof text);
    CHECK_MSG(strcmp(text, old) == 0, "old model changed: '%s'", text);
    read_text(csv, text, sizeof text);
    CHECK_MSG(strcmp(text, oldcsv) == 0, "old metrics changed: '%s'", text);

    /* output directory that does not exist: training runs, the save fails with one line */
    run(&r, "train --data " DATA_DIR " --limit 300 --val 100 --epochs 1 --hidden 4 --quiet --out '%s/nodir/m.safetensors' "
            "--metrics '%s/nodir/m.csv'", tmpdir, tmpdir);
    EXPECT_ERR(&r, "unwritable --out", "nodir");

    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", bad);
    unlink(p);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", bad);
    unlink(p);
    rmdir(bad);
}

/* cortex summary: the notes' example and a malformed .net file. */
static void test_summary(void) {
    run_result r;
    run(&r, "summary models/notes_example.net");
    CHECK_MSG(r.code == 0, "summary exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "[10, 32, 32]") && strstr(r.out, "760") && strstr(r.out, "5x5"));
    run(&r, "summary models/lenet5.net");
    CHECK(r.code == 0 && strstr(r.out, "total: 61706 parameters"));
    char p[512];
    tmp_path(p, sizeof p, "bad.net");
    const char *text = "input 1 28 28\nconv2d out=6 k=5\nmaxpool2d\n";
    CHECK(cx_write_file_atomic(p, text, strlen(text)) == CX_OK);
    run(&r, "summary '%s'", p);
    EXPECT_ERR(&r, "summary of a bad .net", "bad.net:3", "maxpool2d needs k=");
    run(&r, "summary");
    CHECK(r.code == 2);
}

/* A convolutional .net model trains, evaluates and summarises from its saved
 * file; training resumed from a checkpoint ends bit-identical to a straight run. */
static void test_net_model_and_resume(void) {
    char net[512], a[512], am[512], b[512], bm[512], ck[512];
    tmp_path(net, sizeof net, "tiny.net");
    const char *text = "# tiny CNN\ninput 1 28 28\nconv2d name=c1 out=4 k=3 s=2\nbatchnorm\nrelu\n"
                       "maxpool2d k=2\nflatten\ndropout p=0.1\nlinear name=fc out=10\n";
    CHECK(cx_write_file_atomic(net, text, strlen(text)) == CX_OK);
    tmp_path(a, sizeof a, "a.safetensors");
    tmp_path(am, sizeof am, "a.csv");
    tmp_path(b, sizeof b, "b.safetensors");
    tmp_path(bm, sizeof bm, "b.csv");
    tmp_path(ck, sizeof ck, "b.ckpt");
    const char *common = "--data " DATA_DIR " --limit 700 --val 100 --batch 32 --quiet --augment shift=2,flip";
    run_result r;
    run(&r, "train %s --model '%s' --epochs 2 --out '%s' --metrics '%s'", common, net, a, am);
    CHECK_MSG(r.code == 0, "net train exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "61706") == NULL && strstr(r.out, "tiny.net") != NULL);
    run(&r, "train %s --model '%s' --epochs 1 --out '%s' --metrics '%s' --checkpoint '%s'", common, net, b, bm, ck);
    CHECK_MSG(r.code == 0, "first half exit %d: %s", r.code, r.err);
    run(&r, "train %s --model '%s' --epochs 2 --out '%s' --metrics '%s' --checkpoint '%s' --resume '%s'", common, net,
        b, bm, ck, ck);
    CHECK_MSG(r.code == 0, "resume exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "resumed from") && strstr(r.out, "after epoch 1"));
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    CHECK(cx_read_file(a, &da, &na, 0) == CX_OK);
    CHECK(cx_read_file(b, &db, &nb, 0) == CX_OK);
    CHECK_MSG(da && db && na == nb && memcmp(da, db, na) == 0, "resumed model differs from the straight run");
    free(da);
    free(db);
    /* the metrics of both runs agree in every column but the wall time */
    char ta[4096], tb[4096];
    read_text(am, ta, sizeof ta);
    read_text(bm, tb, sizeof tb);
    CHECK(count_lines(ta) == 3 && count_lines(tb) == 3);
    for (char *pa = ta, *pb = tb; *pa && *pb;) {
        char *ea = strrchr(pa, ','), *eb = strrchr(pb, ',');
        char *la = strchr(pa, '\n'), *lb = strchr(pb, '\n');
        if (!la || !lb) break;
        *la = *lb = 0;
        ea = strrchr(pa, ',');
        eb = strrchr(pb, ',');
        CHECK(ea && eb && ea - pa == eb - pb && strncmp(pa, pb, (size_t)(ea - pa)) == 0);
        pa = la + 1;
        pb = lb + 1;
    }
    /* eval and summary read the network back from the model file */
    run(&r, "eval '%s' " DATA_DIR, a);
    CHECK_MSG(r.code == 0 && strstr(r.out, "accuracy "), "eval exit %d: %s", r.code, r.err);
    run(&r, "summary '%s'", a);
    CHECK_MSG(r.code == 0 && strstr(r.out, "c1") && strstr(r.out, "[4, 13, 13]"), "summary: %s %s", r.out, r.err);
    /* a plain model is not a checkpoint */
    run(&r, "train %s --model '%s' --epochs 2 --out '%s' --metrics '%s' --resume '%s'", common, net, b, bm, a);
    EXPECT_ERR(&r, "resume from a model file", "not a checkpoint");
    /* augmentation needs an image model */
    run(&r, "train --data " DATA_DIR " --limit 300 --val 100 --epochs 1 --quiet --augment flip --out '%s'", b);
    EXPECT_ERR(&r, "augment with an MLP", "--augment needs an image model");
    run(&r, "train --data " DATA_DIR " --augment spin --out '%s'", b);
    EXPECT_ERR(&r, "unknown augmentation", "unknown item 'spin'");
}

int main(void) {
    if (!cli_setup("test_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_help);
    RUN(test_bad_usage);
    RUN(test_missing_files);
    RUN(test_train_eval_info);
    RUN(test_corrupt_models);
    RUN(test_failed_train_keeps_old_model);
    RUN(test_summary);
    RUN(test_net_model_and_resume);
    cli_teardown();
    TEST_END();
}
