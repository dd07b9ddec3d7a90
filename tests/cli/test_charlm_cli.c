/* `cortex charlm` driven as a subprocess: help, training on a slice of the
 * shipped text, sampling, beam search, eval, one-line errors for bad usage /
 * missing or corrupt files, and exact resume (2 epochs straight == 1 + resume 1,
 * also from a checkpoint taken mid-epoch); the same for --arch transformer.
 * The subprocess is $CORTEX_BIN (set by `make test`). */
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_harness.h"

#define TEXT "data/text/kjv_genesis_ruth_jonah.txt"
/* a small, fast configuration */
#define SMALL "--limit 20000 --layers 1 --hidden 32 --embed 8 --seq 16 --batch 8 --quiet"
#define TSMALL "--arch transformer --limit 20000 --layers 2 --heads 2 --embed 16 --seq 16 --batch 8 --quiet"


static bool same_file(const char *a, const char *b) {
    void *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    bool ok = !cx_read_file(a, &da, &na, 0) && !cx_read_file(b, &db, &nb, 0) && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return ok;
}

static void test_help(void) {
    static run_result r;
    run(&r, "--help");
    CHECK_MSG(r.code == 0 && strstr(r.out, "usage: cortex charlm") && strstr(r.out, "sample"), "exit %d: %s", r.code,
              r.out);
    CHECK(r.err[0] == 0);
    run(&r, "%s", "");
    CHECK(r.code == 2 && strstr(r.err, "usage: cortex charlm"));
    const char *subs[3] = {"train", "sample", "eval"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: cortex charlm %s", subs[i]);
        run(&r, "%s --help", subs[i]);
        CHECK_MSG(r.code == 0 && strstr(r.out, want), "%s --help: exit %d, '%s'", subs[i], r.code, r.out);
    }
    run(&r, "train --help");
    CHECK(strstr(r.out, "--text") && strstr(r.out, "--resume") && strstr(r.out, "--teacher-forcing"));
    run(&r, "sample --help");
    CHECK(strstr(r.out, "--beam") && strstr(r.out, "--top-k") && strstr(r.out, "--stop"));
    run(&r, "train --help");
    CHECK(strstr(r.out, "--arch") && strstr(r.out, "--heads") && strstr(r.out, "--context") && strstr(r.out, "--tie") &&
          strstr(r.out, "--attn-dropout") && strstr(r.out, "--ffn"));
    run(&r, "--help");
    CHECK(strstr(r.out, "Transformer"));
}

static void test_bad_usage(void) {
    static run_result r;
    char m[512];
    tmp_path(m, sizeof m, "never.safetensors");
    run(&r, "frobnicate");
    EXPECT_ERR(&r, "unknown subcommand", "unknown subcommand", "frobnicate");
    run(&r, "train --text %s --bogus 3", TEXT);
    EXPECT_ERR(&r, "unknown flag", "unknown flag", "--bogus");
    run(&r, "train --layers 2");
    EXPECT_ERR(&r, "missing --text", "--text");
    run(&r, "train --text %s --hidden zero", TEXT);
    EXPECT_ERR(&r, "bad integer", "--hidden", "zero");
    run(&r, "train --text %s --lr -1", TEXT);
    EXPECT_ERR(&r, "negative lr", "--lr");
    run(&r, "train --text %s --teacher-forcing sometimes", TEXT);
    EXPECT_ERR(&r, "bad teacher forcing", "--teacher-forcing", "sometimes");
    run(&r, "train --text %s --teacher-forcing ss-exp --ss-k 2", TEXT);
    EXPECT_ERR(&r, "bad ss-k", "--ss-k");
    run(&r, "train --text %s --epochs", TEXT);
    EXPECT_ERR(&r, "flag without value", "--epochs", "needs a value");
    run(&r, "train --text %s --limit 100 --batch 32 --seq 64 --out '%s'", TEXT, m);
    EXPECT_ERR(&r, "text too short", "training characters");
    CHECK(access(m, F_OK) != 0);
    run(&r, "sample");
    EXPECT_ERR(&r, "sample without model", "MODEL");
    run(&r, "sample a b");
    EXPECT_ERR(&r, "two models", "unexpected argument");
    run(&r, "sample x.safetensors --temperature warm");
    EXPECT_ERR(&r, "bad temperature", "--temperature", "warm");
    run(&r, "sample x.safetensors --stop x");
    EXPECT_ERR(&r, "stop without beam", "--stop needs --beam");
    run(&r, "sample x.safetensors --beam 2 --stop xy");
    EXPECT_ERR(&r, "two-character stop", "--stop");
    run(&r, "sample x.safetensors --beam 2 --norm weird");
    EXPECT_ERR(&r, "bad norm", "--norm", "weird");
    run(&r, "eval x.safetensors");
    EXPECT_ERR(&r, "eval without text", "--text");
    /* Transformer options */
    run(&r, "train --text %s --arch gpt", TEXT);
    EXPECT_ERR(&r, "unknown arch", "--arch", "gpt");
    run(&r, "train --text %s --heads 4", TEXT);
    EXPECT_ERR(&r, "heads without transformer", "--heads", "--arch transformer");
    run(&r, "train --text %s --tie", TEXT);
    EXPECT_ERR(&r, "tie without transformer", "--tie", "Transformer option");
    run(&r, "train --text %s --arch transformer --hidden 64", TEXT);
    EXPECT_ERR(&r, "hidden with transformer", "--hidden", "LSTM option");
    run(&r, "train --text %s --arch transformer --embed 30 --heads 4", TEXT);
    EXPECT_ERR(&r, "embed not divisible", "--embed 30", "--heads 4");
    run(&r, "train --text %s --arch transformer --seq 64 --context 32", TEXT);
    EXPECT_ERR(&r, "seq beyond context", "--seq 64", "--context 32");
    run(&r, "train --text %s --arch transformer --heads 0", TEXT);
    EXPECT_ERR(&r, "zero heads", "--heads");
    run(&r, "train --text %s --arch transformer --attn-dropout 1.5", TEXT);
    EXPECT_ERR(&r, "attn dropout", "--attn-dropout");
}

static void test_missing_and_corrupt(void) {
    static run_result r;
    char m[512], bad[512], other[512];
    tmp_path(m, sizeof m, "m.safetensors");
    tmp_path(bad, sizeof bad, "corrupt.safetensors");
    tmp_path(other, sizeof other, "other.safetensors");
    run(&r, "train --text /nonexistent/book.txt --out '%s'", m);
    EXPECT_ERR(&r, "missing text", "/nonexistent/book.txt");
    CHECK(cx_write_file_atomic(bad, "\x10\0\0\0\0\0\0\0{\"a\":", 13) == CX_OK);
    run(&r, "sample '%s'", bad);
    EXPECT_ERR(&r, "corrupt model", "corrupt.safetensors");
    run(&r, "eval '%s' --text %s", bad, TEXT);
    EXPECT_ERR(&r, "corrupt model (eval)", "corrupt.safetensors");
    run(&r, "sample /nonexistent/m.safetensors");
    EXPECT_ERR(&r, "missing model", "/nonexistent/m.safetensors");
    /* a valid safetensors file that is not a char LM */
    cx_tensor *t = cx_tensor_new(CX_F32, (const int[]){2}, 1);
    const char *nm[] = {"w"};
    CHECK(cx_st_save(other, &t, nm, 1, NULL, NULL, 0) == CX_OK);
    cx_tensor_free(t);
    run(&r, "sample '%s'", other);
    EXPECT_ERR(&r, "not a charlm", "not a character language model");
    run(&r, "train --text %s --resume '%s'", TEXT, other);
    EXPECT_ERR(&r, "resume from a non-checkpoint", "other.safetensors");
    run(&r, "train --text %s --resume /nonexistent/ck.safetensors", TEXT);
    EXPECT_ERR(&r, "resume from a missing file", "/nonexistent/ck.safetensors");
}

static void test_train_sample_eval(void) {
    static run_result r, r2;
    char m[512];
    tmp_path(m, sizeof m, "lm.safetensors");
    run(&r, "train --text %s " SMALL " --epochs 1 --sample-every 50 --sample-len 30 --val-every 40 --out '%s'", TEXT, m);
    CHECK_MSG(r.code == 0, "train: exit %d, %s", r.code, r.err);
    CHECK_MSG(strstr(r.out, "vocabulary") && strstr(r.out, "val ") && strstr(r.out, "bpc") &&
                  strstr(r.out, "--- sample at epoch 1") && strstr(r.out, "epoch 1 batch 40/"),
              "train output: %s", r.out);
    CHECK(access(m, F_OK) == 0);
    cx_module *lm;
    cx_vocab *v;
    CHECK(cx_charlm_load(m, &lm, &v) == CX_OK);
    if (lm) {
        cx_charlm_config c = cx_charlm_get_config(lm);
        CHECK(c.layers == 1 && c.hidden == 32 && c.embed == 8 && v && c.vocab == v->size);
        cx_module_free(lm);
        cx_vocab_free(v);
    }
    run(&r, "sample '%s' --prime 'And God' --length 40 --seed 3 --temperature 0.8 --top-k 5", m);
    CHECK_MSG(r.code == 0 && !strncmp(r.out, "And God", 7) && strlen(r.out) >= 47, "sample: exit %d '%s' %s", r.code,
              r.out, r.err);
    run(&r2, "sample '%s' --prime 'And God' --length 40 --seed 3 --temperature 0.8 --top-k 5", m);
    CHECK_MSG(!strcmp(r.out, r2.out), "same seed, different samples: '%s' vs '%s'", r.out, r2.out);
    run(&r, "sample '%s' --length 20 --temperature 0", m);
    CHECK(r.code == 0 && strlen(r.out) >= 20);
    run(&r, "sample '%s' --prime 'And he said' --beam 3 --stop '\\n' --alpha 0.7 --length 60", m);
    CHECK_MSG(r.code == 0 && !strncmp(r.out, "And he said", 11) && strstr(r.err, "beam 3:"), "beam: exit %d '%s' %s",
              r.code, r.out, r.err);
    run(&r, "sample '%s' --prime 'A' --beam 2 --norm gnmt --length 10", m);
    CHECK(r.code == 0 && strlen(r.out) >= 11);
    run(&r, "eval '%s' --text %s --limit 5000", m, TEXT);
    CHECK_MSG(r.code == 0 && strstr(r.out, "bits/char") && strstr(r.out, "perplexity"), "eval: %s %s", r.out, r.err);
    double bpc = 0;
    const char *p = strstr(r.out, "): ");
    CHECK(p && sscanf(p + 3, "%lf", &bpc) == 1 && bpc > 1 && bpc < 5);
    /* a time budget stops the run and still saves */
    char m2[512];
    tmp_path(m2, sizeof m2, "timed.safetensors");
    run(&r, "train --text %s " SMALL " --minutes 0.003 --out '%s'", TEXT, m2);
    CHECK_MSG(r.code == 0 && access(m2, F_OK) == 0, "--minutes: exit %d %s", r.code, r.err);
    /* scheduled sampling runs */
    run(&r, "train --text %s " SMALL " --steps 30 --teacher-forcing ss-invsigmoid --ss-k 10 --out '%s'", TEXT, m2);
    CHECK_MSG(r.code == 0 && strstr(r.out, "scheduled sampling"), "ss: exit %d %s", r.code, r.err);
}

/* --metrics writes one CSV row per validation that `cortex viz curves` plots
 * (loss and bits per character); `cortex summary` prints a char-LM's parts
 * (both architectures). */
static void test_metrics_curves_summary(void) {
    static run_result r;
    char m[512], csv[512], png[512], tm[512];
    tmp_path(m, sizeof m, "mlm.safetensors");
    tmp_path(csv, sizeof csv, "lm_metrics.csv");
    tmp_path(png, sizeof png, "lm_curves.png");
    tmp_path(tm, sizeof tm, "mtlm.safetensors");
    run(&r, "train --text %s " SMALL " --epochs 3 --out '%s' --metrics '%s'", TEXT, m, csv);
    CHECK_MSG(r.code == 0, "train: exit %d, %s", r.code, r.err);
    void *buf = NULL;
    size_t n = 0;
    CHECK(cx_read_file(csv, &buf, &n, 0) == CX_OK);
    if (buf) {
        const char *t = buf;
        int lines = 0;
        for (size_t i = 0; i < n; i++) lines += t[i] == '\n';
        CHECK_MSG(!strncmp(t, "epoch,", 6) && strstr(t, "train_loss") && strstr(t, "val_bpc") && lines == 4,
                  "metrics CSV:\n%s", t);
        free(buf);
    }
    const char *saved = cli_prefix;
    cli_prefix = "";
    run(&r, "viz curves '%s' --out '%s'", csv, png);
    CHECK_MSG(r.code == 0 && strstr(r.out, "3 epochs") && strstr(r.out, "train and val") && access(png, F_OK) == 0,
              "viz curves: exit %d %s %s", r.code, r.out, r.err);
    run(&r, "summary '%s'", m);
    CHECK_MSG(r.code == 0 && strstr(r.out, "(LSTM)") && strstr(r.out, "1 LSTM layer(s) of 32") &&
                  strstr(r.out, "Embedding(") && strstr(r.out, "LSTM(8, 32") && strstr(r.out, "Linear(32 -> ") &&
                  strstr(r.out, "total"),
              "summary: exit %d %s %s", r.code, r.out, r.err);
    cli_prefix = saved;
    run(&r, "train --text %s " TSMALL " --steps 5 --out '%s'", TEXT, tm);
    CHECK_MSG(r.code == 0, "train: exit %d, %s", r.code, r.err);
    cli_prefix = "";
    run(&r, "summary '%s'", tm);
    CHECK_MSG(r.code == 0 && strstr(r.out, "(Transformer)") && strstr(r.out, "2 block(s) of 2 heads") &&
                  strstr(r.out, "total"),
              "summary: exit %d %s %s", r.code, r.out, r.err);
    cli_prefix = saved;
}

/* The Transformer through the same commands: train, sample (temperature,
 * top-k, beam), eval, loading from the file's metadata. */
static void test_transformer_train_sample_eval(void) {
    static run_result r, r2;
    char m[512];
    tmp_path(m, sizeof m, "tlm.safetensors");
    run(&r, "train --text %s " TSMALL " --context 24 --ffn 40 --tie --dropout 0.1 --epochs 1 --sample-every 50 "
            "--sample-len 30 --val-every 40 --out '%s'", TEXT, m);
    CHECK_MSG(r.code == 0, "train: exit %d, %s", r.code, r.err);
    CHECK_MSG(strstr(r.out, "model: Transformer") && strstr(r.out, "2 pre-norm blocks (2 heads, ffn 40)") &&
                  strstr(r.out, "tied") && strstr(r.out, "val ") && strstr(r.out, "--- sample at epoch 1") &&
                  strstr(r.out, "epoch 1 batch 40/"),
              "train output: %s", r.out);
    /* a sample line printed while training is not empty */
    const char *sm = strstr(r.out, "--- sample at epoch 1");
    const char *nl = sm ? strchr(sm, '\n') : NULL;
    CHECK(nl && nl[1] && nl[1] != '-' && nl[1] != '\n');
    cx_module *lm;
    cx_vocab *v;
    CHECK(cx_charlm_load(m, &lm, &v) == CX_OK);
    if (lm) {
        CHECK(cx_tlm_is(lm) && !strcmp(cx_charlm_arch(lm), "transformer"));
        cx_tlm_config c = cx_tlm_get_config(lm);
        CHECK(c.layers == 2 && c.heads == 2 && c.embed == 16 && c.context == 24 && c.ffn == 40 && c.tie &&
              c.dropout > 0.09f && v && c.vocab == v->size);
        cx_module_free(lm);
        cx_vocab_free(v);
    }
    run(&r, "sample '%s' --prime 'And God' --length 40 --seed 3 --temperature 0.7 --top-k 5", m);
    CHECK_MSG(r.code == 0 && !strncmp(r.out, "And God", 7) && strlen(r.out) >= 47, "sample: exit %d '%s' %s", r.code,
              r.out, r.err);
    run(&r2, "sample '%s' --prime 'And God' --length 40 --seed 3 --temperature 0.7 --top-k 5", m);
    CHECK_MSG(!strcmp(r.out, r2.out), "same seed, different samples: '%s' vs '%s'", r.out, r2.out);
    /* a prime longer than the context, and a continuation that slides past it */
    run(&r, "sample '%s' --prime 'In the beginning God created the heaven and the earth.' --length 60 --temperature 0",
        m);
    CHECK_MSG(r.code == 0 && strlen(r.out) >= 60 + 54, "long prime: exit %d '%s' %s", r.code, r.out, r.err);
    run(&r, "sample '%s' --prime 'And he said' --beam 3 --stop '\\n' --alpha 0.7 --length 60", m);
    CHECK_MSG(r.code == 0 && !strncmp(r.out, "And he said", 11) && strstr(r.err, "beam 3:"), "beam: exit %d '%s' %s",
              r.code, r.out, r.err);
    run(&r, "eval '%s' --text %s --limit 5000", m, TEXT);
    CHECK_MSG(r.code == 0 && strstr(r.out, "bits/char"), "eval: %s %s", r.out, r.err);
    double bpc = 0;
    const char *p = strstr(r.out, "): ");
    CHECK(p && sscanf(p + 3, "%lf", &bpc) == 1 && bpc > 1 && bpc < 6);
    run(&r, "eval '%s' --text %s --limit 5000 --seq 16", m, TEXT);
    CHECK(r.code == 0);
    run(&r, "eval '%s' --text %s --seq 25", m, TEXT);
    EXPECT_ERR(&r, "eval beyond the context", "--seq 25", "context 24");
    /* scheduled sampling and a time budget run on it too */
    char m2[512];
    tmp_path(m2, sizeof m2, "tlm_ss.safetensors");
    run(&r, "train --text %s " TSMALL " --steps 20 --teacher-forcing ss-linear --out '%s'", TEXT, m2);
    CHECK_MSG(r.code == 0 && strstr(r.out, "scheduled sampling"), "ss: exit %d %s", r.code, r.err);
    run(&r, "train --text %s " TSMALL " --minutes 0.003 --out '%s'", TEXT, m2);
    CHECK_MSG(r.code == 0 && access(m2, F_OK) == 0, "--minutes: exit %d %s", r.code, r.err);
}

/* Exact resume of a Transformer run (dropout on: the random streams matter),
 * from an epoch end and from the middle of an epoch. */
static void test_transformer_resume_exact(void) {
    static run_result r;
    char straight[512], part[512], ck[512];
    tmp_path(straight, sizeof straight, "tstraight.safetensors");
    tmp_path(part, sizeof part, "tpart.safetensors");
    tmp_path(ck, sizeof ck, "tck.safetensors");
    const char *a = TSMALL " --limit 8000 --dropout 0.1 --attn-dropout 0.1 --tie --seed 9";
    run(&r, "train --text %s %s --epochs 2 --out '%s'", TEXT, a, straight);
    CHECK_MSG(r.code == 0, "straight: %s", r.err);
    run(&r, "train --text %s %s --epochs 1 --out '%s' --checkpoint '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0, "first epoch: %s", r.err);
    CHECK(!same_file(part, straight));
    run(&r, "train --text %s %s --epochs 2 --out '%s' --resume '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "resumed from"), "resume: %s %s", r.out, r.err);
    CHECK_MSG(same_file(part, straight), "1 + resume 1 epochs differs from 2 epochs (Transformer)");
    run(&r, "train --text %s %s --epochs 2 --steps 23 --out '%s' --checkpoint '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "step 23"), "mid-epoch stop: %s %s", r.out, r.err);
    run(&r, "train --text %s %s --epochs 2 --out '%s' --resume '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "batch 23"), "mid-epoch resume: %s %s", r.out, r.err);
    CHECK_MSG(same_file(part, straight), "stop at step 23 + resume differs from 2 epochs straight (Transformer)");
    /* the checkpoint names its model: resuming it as a longer --seq is refused */
    run(&r, "train --text %s %s --seq 32 --epochs 2 --resume '%s'", TEXT, a, ck);
    EXPECT_ERR(&r, "seq beyond the checkpoint's context", "--seq 32", "context 16");
}

static void test_resume_exact(void) {
    static run_result r;
    char straight[512], part[512], ck[512], part2[512], ck2[512];
    tmp_path(straight, sizeof straight, "straight.safetensors");
    tmp_path(part, sizeof part, "part.safetensors");
    tmp_path(ck, sizeof ck, "ck.safetensors");
    tmp_path(part2, sizeof part2, "part2.safetensors");
    tmp_path(ck2, sizeof ck2, "ck2.safetensors");
    const char *a = SMALL " --layers 2 --dropout 0.1 --seed 7";
    run(&r, "train --text %s %s --epochs 2 --out '%s'", TEXT, a, straight);
    CHECK_MSG(r.code == 0, "straight: %s", r.err);
    /* 1 epoch, then resume for the second */
    run(&r, "train --text %s %s --epochs 1 --out '%s' --checkpoint '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0, "first epoch: %s", r.err);
    CHECK(!same_file(part, straight));
    run(&r, "train --text %s %s --epochs 2 --out '%s' --resume '%s'", TEXT, a, part, ck);
    CHECK_MSG(r.code == 0 && strstr(r.out, "resumed from"), "resume: %s %s", r.out, r.err);
    CHECK_MSG(same_file(part, straight), "1 + resume 1 epochs differs from 2 epochs");
    /* stopped mid-epoch (carried states, batcher position), then resumed */
    run(&r, "train --text %s %s --epochs 2 --steps 37 --out '%s' --checkpoint '%s'", TEXT, a, part2, ck2);
    CHECK_MSG(r.code == 0 && strstr(r.out, "step 37"), "mid-epoch stop: %s %s", r.out, r.err);
    run(&r, "train --text %s %s --epochs 2 --out '%s' --resume '%s'", TEXT, a, part2, ck2);
    CHECK_MSG(r.code == 0 && strstr(r.out, "batch 37"), "mid-epoch resume: %s %s", r.out, r.err);
    CHECK_MSG(same_file(part2, straight), "stop at step 37 + resume differs from 2 epochs straight");
    /* a checkpoint needs the same batch geometry */
    run(&r, "train --text %s %s --batch 4 --epochs 2 --resume '%s'", TEXT, a, ck);
    EXPECT_ERR(&r, "other batch", "--batch: checkpoint 8, this run 4");
    run(&r, "train --text %s %s --batch 4 --epochs 2 --resume '%s' --resume-override", TEXT, a, ck);
    EXPECT_ERR(&r, "other batch, override", "batch=8,seq=16");
    /* a model file is not a checkpoint */
    run(&r, "train --text %s %s --epochs 2 --resume '%s'", TEXT, a, straight);
    EXPECT_ERR(&r, "model as checkpoint", "not a charlm checkpoint");
}

int main(void) {
    cli_prefix = "charlm ";
    cli_err_prefix = "cortex charlm";
    if (!cli_setup("test_charlm_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_help);
    RUN(test_bad_usage);
    RUN(test_missing_and_corrupt);
    RUN(test_train_sample_eval);
    RUN(test_resume_exact);
    RUN(test_metrics_curves_summary);
    RUN(test_transformer_train_sample_eval);
    RUN(test_transformer_resume_exact);
    cli_teardown();
    TEST_END();
}
