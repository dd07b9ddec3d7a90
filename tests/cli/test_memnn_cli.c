/* cortex memnn, driven as a subprocess (path in $CORTEX_BIN): train on
 * generated task-1 questions and on released-format files (--data-dir), the
 * metrics CSV, eval of the saved model, explain's attention table and PNG,
 * and one-line errors for bad flags, data and files. */
#include "cli_harness.h"

static void test_train_eval_explain(void) {
    char model[512], csv[512], png[512], text[65536];
    tmp_path(model, sizeof model, "m.safetensors");
    tmp_path(csv, sizeof csv, "m.csv");
    tmp_path(png, sizeof png, "att.png");
    run_result r;
    run(&r, "train --task 1 --n 300 --test-n 200 --seed 5 --epochs 20 --hops 2 --pe --ls --ls-epochs 5 --rn --runs 2 "
            "--every 10 --out %s --metrics %s",
        model, csv);
    CHECK_MSG(r.code == 0, "train: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "300 training questions") && strstr(r.out, "2 hops, PE (code), TE, LS, RN"));
    CHECK(strstr(r.out, "run 1/2 epoch  10") && strstr(r.out, "run 2/2 epoch  20"));
    CHECK(strstr(r.out, "run 2/2 (seed 2): training error"));
    CHECK(strstr(r.out, "kept run ") && strstr(r.out, " of 2 (lowest training error"));
    CHECK(strstr(r.out, "task  1: test error ") && strstr(r.out, "(200 questions)"));
    read_text(csv, text, sizeof text);
    CHECK(!strncmp(text, "run,epoch,lr,linear,train_loss,train_error,val_loss,val_error,seconds\n", 70));
    CHECK(count_lines(text) == 1 + 2 * 25);   /* the code's recipe: 5 linear-start epochs first, lr 0.005 */
    CHECK(strstr(text, "\n2,25,") && strstr(text, "\n1,5,0.005,1,") && strstr(text, "\n1,6,0.005,0,"));
    run(&r, "eval %s", model);
    CHECK_MSG(r.code == 0, "eval: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "2 hops, d 20, PE (code), TE; training questions: error ") && strstr(r.out, "(200 questions)"));
    run(&r, "explain %s --story 4 --png %s", model, png);
    CHECK_MSG(r.code == 0, "explain: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "task 1, test question 4") && strstr(r.out, "hop 1  hop 2"));
    CHECK(strstr(r.out, "? Answer: ") && strstr(r.out, "Prediction: ") && strstr(r.out, "Where is "));
    CHECK(strstr(r.out, "* ") != NULL);   /* the supporting fact is marked */
    read_text(png, text, 16);
    CHECK(!memcmp(text, "\x89PNG", 4));
    run(&r, "explain %s --story 200", model);
    EXPECT_ERR(&r, "story out of range", "--story 200", "200 questions");
    run(&r, "explain %s --task 2", model);
    EXPECT_ERR(&r, "task not trained", "not trained on task 2");
}

static void test_data_dir(void) {
    char dir[512], model[512], train[600], test[600];
    tmp_path(dir, sizeof dir, "en");
    tmp_path(model, sizeof model, "d.safetensors");
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(train, sizeof train, "%s/qa1_single-supporting-fact_train.txt", dir);
    snprintf(test, sizeof test, "%s/qa1_single-supporting-fact_test.txt", dir);
    const char *saved = cli_prefix;
    cli_prefix = "babi ";
    run_result r;
    run(&r, "gen --task 1 --n 200 --seed 3 --out %s", train);
    CHECK(r.code == 0);
    run(&r, "gen --task 1 --n 100 --seed 4 --out %s", test);
    CHECK(r.code == 0);
    cli_prefix = saved;
    run(&r, "train --task 1 --data-dir %s --epochs 5 --hops 1 --every 0 --out %s", dir, model);
    CHECK_MSG(r.code == 0, "train --data-dir: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "200 training questions") && strstr(r.out, "(100 questions)") && strstr(r.out, "BoW"));
    run(&r, "eval %s", model);
    CHECK_MSG(r.code == 0 && strstr(r.out, "(100 questions)"), "eval: %d %s", r.code, r.err);
    run(&r, "train --task 2 --data-dir %s --epochs 1 --out %s", dir, model);
    EXPECT_ERR(&r, "no task-2 file", "no file qa2_*_train.txt in");
}

/* Joint training: one vocabulary over the tasks, a test error per task. */
static void test_joint(void) {
    char model[512];
    tmp_path(model, sizeof model, "j.safetensors");
    run_result r;
    run(&r, "train --task 1,11 --n 100 --test-n 50 --epochs 2 --dim 8 --pe --pe-form paper --every 0 --out %s", model);
    CHECK_MSG(r.code == 0, "joint train: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "PE (paper)") != NULL);
    CHECK(strstr(r.out, "2 task(s), 200 training questions") && strstr(r.out, "task  1: test error ") &&
          strstr(r.out, "task 11: test error ") && strstr(r.out, "mean test error over 2 tasks"));
    run(&r, "explain %s --task 11 --story 1", model);
    CHECK_MSG(r.code == 0 && strstr(r.out, "task 11, test question 1"), "explain --task 11: %d %s", r.code, r.err);
    run(&r, "eval %s", model);
    CHECK(r.code == 0 && strstr(r.out, "task 11: test error"));
    /* the paper's recipe: linear start ends on the validation loss, then lr 0.01 */
    char paper[600], csv[4096];
    snprintf(paper, sizeof paper, "%s.paper", model);
    run(&r, "train --task 1 --n 100 --test-n 50 --epochs 3 --ls --recipe paper --every 0 --out %s --metrics %s.csv",
        paper, paper);
    CHECK_MSG(r.code == 0, "paper recipe: exit %d: %s", r.code, r.err);
    char csv_path[640];
    snprintf(csv_path, sizeof csv_path, "%s.csv", paper);
    read_text(csv_path, csv, sizeof csv);
    CHECK(count_lines(csv) == 1 + 3 && strstr(csv, "\n1,1,0.005,1,") && strstr(csv, "\n1,3,"));
    unlink(csv_path);
    unlink(paper);
}

static void test_errors(void) {
    char model[512], junk[512];
    tmp_path(model, sizeof model, "e.safetensors");
    tmp_path(junk, sizeof junk, "junk.safetensors");
    FILE *f = fopen(junk, "wb");
    if (f) {
        fputs("not a model", f);
        fclose(f);
    }
    run_result r;
    run(&r, "train --n 10");
    EXPECT_ERR(&r, "no task", "--task is required");
    run(&r, "train --task 0");
    EXPECT_ERR(&r, "task 0", "--task must be");
    run(&r, "train --task 1,1");
    EXPECT_ERR(&r, "task twice", "listed twice");
    run(&r, "train --task 1 --hops 9");
    EXPECT_ERR(&r, "hops", "--hops");
    run(&r, "train --task 1 --seed -3");
    EXPECT_ERR(&r, "seed", "--seed");
    run(&r, "train --task 1 --recipe fancy");
    EXPECT_ERR(&r, "recipe", "--recipe must be 'code' or 'paper', got 'fancy'");
    run(&r, "train --task 1 --pe --pe-form fancy");
    EXPECT_ERR(&r, "pe-form", "--pe-form must be 'code' or 'paper', got 'fancy'");
    run(&r, "eval %s", junk);
    EXPECT_ERR(&r, "junk model", "junk.safetensors");
    run(&r, "eval");
    EXPECT_ERR(&r, "no model", "expected one model file");
    run(&r, "explain %s/none.safetensors", model);
    EXPECT_ERR(&r, "missing model", "none.safetensors");
    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "cortex memnn explain"));
    run(&r, "train --help");
    CHECK(r.code == 0 && strstr(r.out, "--runs") && strstr(r.out, "best of 10"));
}

int main(void) {
    cli_prefix = "memnn ";
    cli_err_prefix = "cortex memnn";
    if (!cli_setup("memnn_cli")) return 1;
    RUN(test_train_eval_explain);
    RUN(test_data_dir);
    RUN(test_joint);
    RUN(test_errors);
    cli_teardown();
    TEST_END();
}
