/* Validation before training and faults found by hostile input (issue 14,
 * items 10-17), driven through the cortex binary: labels and the network's
 * output checked before the first batch, --resume refusing other flags or
 * data, output paths checked before training, non-finite weights refused.
 * $CORTEX_BIN is set by `make test`. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>
#include <zlib.h>

#include "cli_harness.h"

#define DATA_DIR "data/fashion-mnist-subset"
#define TEXT "data/text/kjv_genesis_ruth_jonah.txt"

/* An IDX file: magic 0 0 type ndim, big-endian u32 dims, then `bytes`. */
static void write_idx(const char *path, int type, int ndim, const int *dims, const void *data, size_t bytes) {
    size_t n = 4 + 4 * (size_t)ndim + bytes;
    unsigned char *b = malloc(n);
    b[0] = b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int d = 0; d < ndim; d++)
        for (int k = 0; k < 4; k++) b[4 + 4 * d + k] = (unsigned char)((uint32_t)dims[d] >> (24 - 8 * k));
    memcpy(b + 4 + 4 * ndim, data, bytes);
    CHECK(cx_write_file_atomic(path, b, n) == CX_OK);
    free(b);
}

/* DIR/train-{images,labels}: n images of 4x4 whose pixels follow the label,
 * labels label[i] (u8 unless `wide`: big-endian i32). */
static void write_set(const char *dir, const int *label, int n, bool wide) {
    char p[600];
    unsigned char *px = malloc((size_t)n * 16), *lb = malloc((size_t)n * 4);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 16; j++) px[i * 16 + j] = (unsigned char)((label[i] * 37 + j * 11 + i % 3) & 255);
        if (wide)
            for (int k = 0; k < 4; k++) lb[i * 4 + k] = (unsigned char)((uint32_t)label[i] >> (24 - 8 * k));
        else
            lb[i] = (unsigned char)label[i];
    }
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", dir);
    write_idx(p, 0x08, 3, (const int[]){n, 4, 4}, px, (size_t)n * 16);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", dir);
    write_idx(p, wide ? 0x0C : 0x08, 1, (const int[]){n}, lb, (size_t)n * (wide ? 4 : 1));
    free(px);
    free(lb);
}

static void make_dir(char *buf, size_t n, const char *name) {
    tmp_path(buf, n, name);
    CHECK(mkdir(buf, 0700) == 0);
}

/* Item 12: labels and the network's output are checked before training. */
static void test_labels_checked(void) {
    static run_result r;
    char d[512], m[512], csv[512], net[512];
    int lab[300];
    for (int i = 0; i < 300; i++) lab[i] = i % 10;
    tmp_path(m, sizeof m, "lab.safetensors");
    tmp_path(csv, sizeof csv, "lab.csv");
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    const char *common = "--val 50 --epochs 1 --hidden 8 --quiet";
    /* one corrupt label of 300 would make a 201-class model */
    make_dir(d, sizeof d, "gap");
    lab[38] = 200;
    write_set(d, lab, 300, false);
    run(&r, "train --data '%s' %s --out '%s' --metrics '%s'", d, common, m, csv);
    EXPECT_ERR(&r, "corrupt label", "labels go up to 200", "only 11 of those 201 classes", "example 38",
               "--classes 201");
    CHECK(access(m, F_OK) != 0);
    /* --classes says it is meant */
    run(&r, "train --data '%s' %s --classes 201 --out '%s' --metrics '%s'", d, common, m, csv);
    CHECK_MSG(r.code == 0 && strstr(r.out, "201 classes"), "--classes 201: %s %s", r.out, r.err);
    run(&r, "train --data '%s' %s --classes 100 --out '%s' --metrics '%s'", d, common, m, csv);
    EXPECT_ERR(&r, "--classes too small", "--classes 100", "labels go up to 200");
    /* a few classes missing from a small sample is not a gap */
    lab[38] = 8;
    for (int i = 0; i < 300; i++)
        if (lab[i] == 3) lab[i] = 4;
    write_set(d, lab, 300, false);
    run(&r, "train --data '%s' %s --out '%s' --metrics '%s'", d, common, m, csv);
    CHECK_MSG(r.code == 0 && strstr(r.out, "10 classes"), "class 3 absent: %s %s", r.out, r.err);
    /* a negative label (an i32 label file) */
    make_dir(d, sizeof d, "neg");
    for (int i = 0; i < 300; i++) lab[i] = i % 10;
    lab[38] = -1;
    write_set(d, lab, 300, true);
    run(&r, "train --data '%s' %s --out '%s' --metrics '%s'", d, common, m, csv);
    EXPECT_ERR(&r, "negative label", "label -1 of example 38", "train-labels-idx1-ubyte");
    /* a network with fewer outputs than there are classes */
    make_dir(d, sizeof d, "ok");
    lab[38] = 8;
    write_set(d, lab, 300, false);
    tmp_path(net, sizeof net, "five.net");
    const char *five = "input 16\nlinear name=fc out=5\n";
    CHECK(cx_write_file_atomic(net, five, strlen(five)) == CX_OK);
    run(&r, "train --data '%s' %s --model '%s' --out '%s' --metrics '%s'", d, common, net, m, csv);
    EXPECT_ERR(&r, "5 outputs", "the network outputs 5 classes, the labels go up to 9");
    /* a network that does not end in one row of class scores */
    const char *conv = "input 1 4 4\nconv2d name=c out=10 k=3 p=1\n";
    CHECK(cx_write_file_atomic(net, conv, strlen(conv)) == CX_OK);
    run(&r, "train --data '%s' %s --model '%s' --out '%s' --metrics '%s'", d, common, net, m, csv);
    EXPECT_ERR(&r, "conv output", "the network outputs [10, 4, 4] per example", "add flatten");
    const char *ok = "input 1 4 4\nconv2d name=c out=2 k=3 p=1\nflatten\nlinear name=fc out=10\n";
    CHECK(cx_write_file_atomic(net, ok, strlen(ok)) == CX_OK);
    run(&r, "train --data '%s' %s --model '%s' --out '%s' --metrics '%s'", d, common, net, m, csv);
    CHECK_MSG(r.code == 0, "good net: %s", r.err);
}

/* Item 10: --resume refuses flags or data other than the checkpoint's. */
static void test_resume_checks_flags(void) {
    static run_result r;
    char m[512], csv[512], ck[512], d[512];
    tmp_path(m, sizeof m, "rs.safetensors");
    tmp_path(csv, sizeof csv, "rs.csv");
    tmp_path(ck, sizeof ck, "rs.ckpt");
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    const char *common = "--data " DATA_DIR " --limit 500 --val 100 --hidden 8 --quiet";  /* 600 examples */
    run(&r, "train %s --epochs 1 --out '%s' --metrics '%s' --checkpoint '%s'", common, m, csv, ck);
    CHECK_MSG(r.code == 0, "train: %s", r.err);
    cx_st_file *f = NULL;
    CHECK(cx_st_load(ck, &f) == CX_OK);
    if (f) {
        const char *lr = cx_st_meta(f, "cortex.run.lr"), *id = cx_st_meta(f, "cortex.run.data-id");
        CHECK(lr && !strcmp(lr, "0.001") && id && strstr(id, "600 examples of 784 values, fingerprint "));
        CHECK(cx_st_meta(f, "cortex.run.out") == NULL && cx_st_meta(f, "cortex.run.epochs") == NULL);
        cx_st_free(f);
    }
    run(&r, "train %s --epochs 2 --lr 0.01 --out '%s' --metrics '%s' --resume '%s'", common, m, csv, ck);
    EXPECT_ERR(&r, "other lr", "rs.ckpt", "--lr: checkpoint 0.001, this run 0.01", "--resume-override");
    run(&r, "train %s --epochs 2 --batch 32 --seed 5 --out '%s' --metrics '%s' --resume '%s'", common, m, csv, ck);
    EXPECT_ERR(&r, "other batch and seed", "--batch: checkpoint 64, this run 32", "--seed: checkpoint 1, this run 5");
    run(&r, "train --data " DATA_DIR " --limit 600 --val 100 --hidden 8 --quiet --epochs 2 --out '%s' --metrics '%s' "
            "--resume '%s'", m, csv, ck);
    EXPECT_ERR(&r, "other limit", "--limit: checkpoint 500, this run 600", "the data: the checkpoint was trained on 600");
    /* the same numbers written otherwise are the same setting */
    run(&r, "train %s --epochs 2 --lr 1e-3 --out '%s' --metrics '%s' --resume '%s'", common, m, csv, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "resumed from"), "same flags: %s %s", r.out, r.err);
    /* other data at the same path (the first 600 images, relabelled) */
    make_dir(d, sizeof d, "other");
    cx_dataset ds;
    CHECK(cx_dataset_load_idx(DATA_DIR "/train-images-idx3-ubyte.gz", DATA_DIR "/train-labels-idx1-ubyte.gz", 600,
                              &ds) == CX_OK);
    if (ds.x) {
        unsigned char *px = malloc((size_t)ds.x->numel);
        for (int64_t i = 0; i < ds.x->numel; i++) px[i] = (unsigned char)lrintf(CX_F(ds.x)[i] * 255.0f);
        int *lab = malloc(600 * sizeof *lab);
        for (int i = 0; i < 600; i++) lab[i] = (CX_I32P(ds.y)[i] + (i == 7)) % 10;
        char p[600];
        snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d);
        write_idx(p, 0x08, 3, (const int[]){600, 28, 28}, px, (size_t)ds.x->numel);
        unsigned char lb[600];
        for (int i = 0; i < 600; i++) lb[i] = (unsigned char)lab[i];
        snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", d);
        write_idx(p, 0x08, 1, (const int[]){600}, lb, 600);
        free(px);
        free(lab);
        cx_dataset_free(&ds);
    }
    run(&r, "train --data '%s' --limit 500 --val 100 --hidden 8 --quiet --epochs 3 --out '%s' --metrics '%s' "
            "--resume '%s'", d, m, csv, ck);
    EXPECT_ERR(&r, "other data", "the data: the checkpoint was trained on 600 examples of 784 values, fingerprint");
    /* --resume-override continues and says what differs */
    run(&r, "train %s --epochs 3 --lr 0.01 --out '%s' --metrics '%s' --resume '%s' --resume-override", common, m, csv,
        ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "note: --resume-override") && strstr(r.out, "--lr: checkpoint 0.001"),
              "override: %s %s", r.out, r.err);
}

#define SMALL_LM "--limit 20000 --layers 1 --hidden 32 --embed 8 --seq 16 --batch 8 --quiet --seed 3 --dropout 0"

/* Item 10 for `charlm train`: the model flags may be left out (the checkpoint
 * holds the model), the others must match. */
static void test_charlm_resume_checks_flags(void) {
    static run_result r;
    char m[512], ck[512];
    tmp_path(m, sizeof m, "lm.safetensors");
    tmp_path(ck, sizeof ck, "lm.ckpt");
    cli_prefix = "charlm ";
    cli_err_prefix = "cortex charlm train";
    run(&r, "train --text " TEXT " " SMALL_LM " --steps 20 --out '%s' --checkpoint '%s'", m, ck);
    CHECK_MSG(r.code == 0, "train: %s", r.err);
    run(&r, "train --text " TEXT " " SMALL_LM " --steps 30 --lr 0.01 --out '%s' --resume '%s'", m, ck);
    EXPECT_ERR(&r, "other lr", "lm.ckpt", "--lr: checkpoint 2e-3, this run 0.01");
    run(&r, "train --text " TEXT " --limit 30000 --seq 16 --batch 8 --quiet --seed 3 --steps 30 --out '%s' "
            "--resume '%s'", m, ck);
    EXPECT_ERR(&r, "other limit", "--limit: checkpoint 20000, this run 30000", "the data: the checkpoint was trained on "
               "20000 characters");
    run(&r, "train --text " TEXT " --limit 20000 --seq 16 --batch 8 --quiet --seed 3 --steps 30 --out '%s' "
            "--resume '%s'", m, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "resumed from"), "model flags from the checkpoint: %s %s", r.out, r.err);
    run(&r, "train --text " TEXT " " SMALL_LM " --hidden 64 --steps 30 --out '%s' --resume '%s'", m, ck);
    EXPECT_ERR(&r, "other hidden", "--hidden: checkpoint 32, this run 64");
    cli_prefix = "";
}

/* Item 15: --out, --metrics and --checkpoint are checked before training. */
static void test_outputs_checked(void) {
    static run_result r;
    char ok[512], ro[512], bad[600];
    tmp_path(ok, sizeof ok, "w.safetensors");
    make_dir(ro, sizeof ro, "readonly");
    CHECK(chmod(ro, 0500) == 0);
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    const char *common = "--data " DATA_DIR " --limit 300 --val 100 --hidden 8 --epochs 1 --quiet";
    run(&r, "train %s --out '%s/nodir/m.safetensors'", common, tmpdir);
    EXPECT_ERR(&r, "missing directory", "--out", "nodir/m.safetensors", "does not exist");
    run(&r, "train %s --out '%s' --metrics '%s'", common, ok, tmpdir);
    EXPECT_ERR(&r, "metrics is a directory", "--metrics", "is a directory");
    snprintf(bad, sizeof bad, "%s/ck", ro);
    /* (root writes anywhere: the read-only case only where permissions hold) */
    if (geteuid() != 0) {
        run(&r, "train %s --out '%s' --metrics '%s/m.csv' --checkpoint '%s'", common, ok, tmpdir, bad);
        EXPECT_ERR(&r, "read-only directory", "--checkpoint", "cannot create a file in");
    }
    run(&r, "train %s --out '%s' --metrics '%s/m.csv' --checkpoint '%s/no/ck'", common, ok, tmpdir, tmpdir);
    EXPECT_ERR(&r, "checkpoint directory", "--checkpoint", "does not exist");
    CHECK(!strstr(r.out, "epoch 1/1"));
    run(&r, "train %s --out '%s' --metrics /dev/null", common, ok);
    CHECK_MSG(r.code == 0, "metrics to /dev/null: %s", r.err);
    cli_prefix = "charlm ";
    cli_err_prefix = "cortex charlm train";
    run(&r, "train --text " TEXT " " SMALL_LM " --steps 5 --out '%s/no/lm.safetensors'", tmpdir);
    EXPECT_ERR(&r, "charlm out", "--out", "does not exist");
    run(&r, "train --text " TEXT " " SMALL_LM " --steps 5 --out '%s' --metrics '%s/no/lm.csv'", ok, tmpdir);
    EXPECT_ERR(&r, "charlm metrics", "--metrics", "does not exist");
    CHECK(chmod(ro, 0700) == 0);
    cli_prefix = "";
    /* no probe file is left behind */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q cortex-probe", tmpdir);
    CHECK(system(cmd) != 0);
}

/* A copy of safetensors file `src` with value `v` at index 3 of tensor `name`. */
static void poison(const char *src, const char *dst, const char *name, float v) {
    cx_st_file *f = NULL;
    CHECK(cx_st_load(src, &f) == CX_OK);
    if (!f) return;
    cx_tensor **ts = malloc((size_t)f->n * sizeof *ts);
    const char **names = malloc((size_t)f->n * sizeof *names);
    for (int i = 0; i < f->n; i++) {
        ts[i] = f->entries[i].tensor;
        names[i] = f->entries[i].name;
        if (!strcmp(names[i], name)) CX_F(ts[i])[3] = v;
    }
    CHECK(cx_st_save(dst, ts, names, f->n, (const char *const *)f->meta_keys, (const char *const *)f->meta_values,
                     f->n_meta) == CX_OK);
    free(ts);
    free(names);
    cx_st_free(f);
}

/* Item 17: non-finite weights are refused (or loaded with a warning), eval
 * never reports a NaN loss with exit 0, viz curves says what it left out. */
static void test_nonfinite(void) {
    static run_result r;
    char m[512], bad[512], csv[512], png[512];
    tmp_path(m, sizeof m, "nf.safetensors");
    tmp_path(bad, sizeof bad, "nan.safetensors");
    tmp_path(csv, sizeof csv, "nf.csv");
    tmp_path(png, sizeof png, "nf.png");
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    run(&r, "train --data " DATA_DIR " --limit 300 --val 100 --hidden 8 --epochs 1 --quiet --out '%s' --metrics '%s'",
        m, csv);
    CHECK_MSG(r.code == 0, "train: %s", r.err);
    poison(m, bad, "fc2.bias", NAN);
    cli_err_prefix = "cortex eval";
    run(&r, "eval '%s' " DATA_DIR, m);
    CHECK_MSG(r.code == 0 && strstr(r.out, "accuracy"), "eval: %s", r.err);
    run(&r, "eval '%s' " DATA_DIR, bad);
    EXPECT_ERR(&r, "nan weights", "nan.safetensors", "1 of its 6370 weights are NaN or infinite", "'fc2.bias'",
               "--allow-nonfinite");
    run(&r, "eval '%s' " DATA_DIR " --allow-nonfinite", bad);
    CHECK_MSG(r.code == 1 && strstr(r.err, "warning: ") && strstr(r.err, "the loss is NaN") &&
                  !strstr(r.out, "loss"), "eval --allow-nonfinite: exit %d, %s %s", r.code, r.out, r.err);
    poison(m, bad, "fc1.weight", INFINITY);
    cli_err_prefix = "cortex summary";
    run(&r, "summary '%s'", bad);
    EXPECT_ERR(&r, "inf weights", "NaN or infinite", "'fc1.weight'", "--allow-nonfinite");
    run(&r, "summary '%s' --allow-nonfinite", bad);
    CHECK_MSG(r.code == 0 && strstr(r.err, "warning: "), "summary --allow-nonfinite: %s", r.err);
    /* viz curves says which points it could not plot */
    const char *text = "epoch,lr,train_loss,train_acc,val_loss,val_acc,seconds\n1,0.1,2.0,0.3,1.9,0.4,1\n"
                       "2,0.1,nan,0.5,nan,0.5,1\n3,0.1,1.0,0.6,1.1,0.6,1\n";
    CHECK(cx_write_file_atomic(csv, text, strlen(text)) == CX_OK);
    cli_err_prefix = "cortex viz curves";
    run(&r, "viz curves '%s' --out '%s'", csv, png);
    CHECK_MSG(r.code == 0 && strstr(r.out, "note: 1 non-finite value(s) of train_loss left out of the plot (the first "
                                           "at epoch 2, data row 2)") &&
                  strstr(r.out, "of val_loss left out"),
              "viz curves: %s %s", r.out, r.err);
}

/* Items 13 and 14: files that are not files, and messages that say what is wrong. */
static void test_messages(void) {
    static run_result r;
    char d[512], m[512], p[700], fifo[512];
    tmp_path(m, sizeof m, "msg.safetensors");
    int lab[300];
    for (int i = 0; i < 300; i++) lab[i] = i % 10;
    cli_prefix = "charlm ";
    cli_err_prefix = "cortex charlm train";
    run(&r, "train --text /dev/zero --out '%s'", m);
    EXPECT_ERR(&r, "device as text", "/dev/zero: not a regular file");
    tmp_path(fifo, sizeof fifo, "fifo");
    CHECK(mkfifo(fifo, 0600) == 0);
    /* (a reader that opened it would block until a writer comes: this one
     * comes, so that a regression fails instead of hanging) */
    fflush(NULL);
    pid_t wr = fork();
    if (wr == 0) {
        int fd = open(fifo, O_WRONLY);
        if (fd >= 0) close(fd);
        _exit(0);
    }
    run(&r, "train --text '%s' --out '%s'", fifo, m);
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK); /* releases the writer if nobody read */
    CHECK(wr > 0 && waitpid(wr, NULL, 0) == wr);
    if (rfd >= 0) close(rfd);
    EXPECT_ERR(&r, "fifo as text", "not a regular file (a pipe)");
    run(&r, "train --text " TEXT " --min-count 1000000 --out '%s'", m);
    EXPECT_ERR(&r, "min-count", "--min-count 1000000 leaves no character", "lower --min-count");
    cli_prefix = "";
    cli_err_prefix = "cortex train";
    const char *common = "--val 50 --epochs 1 --hidden 8 --quiet";
    run(&r, "train --data " DATA_DIR " --augment shift=100 --out '%s'", m);
    EXPECT_ERR(&r, "shift out of range", "--augment: shift=100: the shift must be a whole number of pixels from 0 to 64");
    /* images compressed, labels not */
    make_dir(d, sizeof d, "mixed");
    write_set(d, lab, 300, false);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d);
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(p, &buf, &n, 0) == CX_OK);
    unlink(p);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
    gzFile g = gzopen(p, "wb");
    CHECK(g && gzwrite(g, buf, (unsigned)n) == (int)n && gzclose(g) == Z_OK);
    free(buf);
    run(&r, "train --data '%s' %s --out '%s' --metrics '%s/msg.csv'", d, common, m, tmpdir);
    CHECK_MSG(r.code == 0 && strstr(r.out, "250 train"), "mixed .gz: %s %s", r.out, r.err);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", d);
    unlink(p);
    run(&r, "train --data '%s' %s --out '%s'", d, common, m);
    EXPECT_ERR(&r, "labels missing", "train-labels-idx1-ubyte[.gz] not found");
    /* labels of another type or rank */
    make_dir(d, sizeof d, "badlab");
    write_set(d, lab, 300, false);
    float fl[300];
    unsigned char be[1200];
    for (int i = 0; i < 300; i++) {
        fl[i] = (float)lab[i];
        uint32_t u;
        memcpy(&u, &fl[i], 4);
        for (int k = 0; k < 4; k++) be[i * 4 + k] = (unsigned char)(u >> (24 - 8 * k));
    }
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte", d);
    write_idx(p, 0x0D, 1, (const int[]){300}, be, sizeof be);
    run(&r, "train --data '%s' %s --out '%s'", d, common, m);
    EXPECT_ERR(&r, "float labels", "labels must be integers", "floating-point");
    write_idx(p, 0x08, 2, (const int[]){300, 2}, be, 600);
    run(&r, "train --data '%s' %s --out '%s'", d, common, m);
    EXPECT_ERR(&r, "2-D labels", "labels must be a 1-D IDX file", "[300, 2]");
}

/* Item 16: a model file whose metadata describes a huge network fails on the
 * shapes before the network is built. */
static void test_huge_net_model(void) {
    static run_result r;
    char m[512];
    tmp_path(m, sizeof m, "huge.safetensors");
    cx_tensor *w = cx_tensor_new(CX_F32, CX_SHAPE(1, 1));
    cx_tensor *ts[1] = {w};
    const char *names[1] = {"fc.weight"}, *mk[3] = {"format", "cortex.arch", "cortex.net"},
               *mv[3] = {"pt", "net", "input 1000000\nlinear name=fc out=16777216\n"};
    CHECK(cx_st_save(m, ts, names, 1, mk, mv, 3) == CX_OK);
    cx_tensor_free(w);
    cli_prefix = "";
    cli_err_prefix = "cortex summary";
    double t0 = cx_now();
    run(&r, "summary '%s'", m);
    EXPECT_ERR(&r, "huge net", "huge.safetensors (cortex.net):2: tensor 'fc.weight' is [1, 1] in the file, but this "
               "layer needs [16777216, 1000000]");
    CHECK(cx_now() - t0 < 10);
    cli_err_prefix = "cortex eval";
    run(&r, "eval '%s' " DATA_DIR, m);
    EXPECT_ERR(&r, "huge net, eval", "tensor 'fc.weight' is [1, 1]");
}

int main(void) {
    if (!cli_setup("validate")) return 1;
    RUN(test_labels_checked);
    RUN(test_resume_checks_flags);
    RUN(test_charlm_resume_checks_flags);
    RUN(test_outputs_checked);
    RUN(test_nonfinite);
    RUN(test_messages);
    RUN(test_huge_net_model);
    cli_teardown();
    TEST_END();
}
