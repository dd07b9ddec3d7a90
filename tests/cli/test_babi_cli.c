/* cortex babi show, driven as a subprocess (path in $CORTEX_BIN): a small
 * file in the released bAbI format is summarised and its questions printed
 * with their facts; a bad line gives one error line naming file:line.
 * cortex babi gen writes a task file that babi show reads; the seed fixes it;
 * bad flags give one error line. */
#include "cli_harness.h"

static bool write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static void test_show(void) {
    char path[512];
    tmp_path(path, sizeof path, "qa8_train.txt");
    CHECK(write_text(path, "1 Mary moved to the bathroom.\n"
                           "2 Where is Mary? \tbathroom\t1\n"
                           "3 Mary picked up the apple.\n"
                           "4 Mary got the football there.\n"
                           "5 What is Mary carrying?\tapple,football\t3 4\n"
                           "1 Sandra journeyed to the office.\n"
                           "2 Where is Sandra?\toffice\t1\n"));
    run_result r;
    run(&r, "show %s --first 1 --count 1", path);
    CHECK_MSG(r.code == 0, "show: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "2 stories, 4 statements, 3 questions") != NULL);
    CHECK(strstr(r.out, "question 1 (story 0, line 5)") != NULL);
    CHECK(strstr(r.out, "   0  mary moved to the bathroom") != NULL);
    CHECK(strstr(r.out, "  * 2  mary got the football there") != NULL);
    CHECK(strstr(r.out, "Q    what is mary carrying") && strstr(r.out, "A    apple,football"));
    CHECK(strstr(r.out, "question 0") == NULL && strstr(r.out, "question 2") == NULL);
    run(&r, "show %s", path);
    CHECK(r.code == 0 && strstr(r.out, "question 2 (story 1, line 7)") && strstr(r.out, "A    office"));
    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "cortex babi show"));
    run(&r, "show --help");
    CHECK(r.code == 0 && strstr(r.out, "--count"));
}

static void test_errors(void) {
    char bad[512], missing[512];
    tmp_path(bad, sizeof bad, "qa1_bad.txt");
    tmp_path(missing, sizeof missing, "nowhere.txt");
    CHECK(write_text(bad, "1 Mary went home.\n2 John left.\n3 Where is Mary?\thome\t3\n"));
    run_result r;
    run(&r, "show %s", bad);
    EXPECT_ERR(&r, "bad supporting id", "qa1_bad.txt:3: supporting fact 3");
    run(&r, "show %s", missing);
    EXPECT_ERR(&r, "missing file", "nowhere.txt");
    run(&r, "show");
    EXPECT_ERR(&r, "no file", "expected one bAbI file");
    run(&r, "show %s --count x", bad);
    EXPECT_ERR(&r, "bad count", "--count");
}

static void test_gen(void) {
    char path[512], again[512], other[512];
    tmp_path(path, sizeof path, "qa1_gen.txt");
    tmp_path(again, sizeof again, "qa1_again.txt");
    tmp_path(other, sizeof other, "qa1_other.txt");
    run_result r;
    run(&r, "gen --task 1 --n 12 --seed 3 --out %s", path);
    CHECK_MSG(r.code == 0, "gen: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "task 1, 12 questions, seed 3") != NULL);
    run(&r, "show %s --count 1", path);
    CHECK_MSG(r.code == 0, "show: exit %d: %s", r.code, r.err);
    CHECK(strstr(r.out, "3 stories, 24 statements, 12 questions") != NULL);
    CHECK(strstr(r.out, "question 0 (story 0, line 3)") && strstr(r.out, "Q    where is "));
    static char a[8192], b[8192], c[8192];
    size_t na = read_text(path, a, sizeof a);
    CHECK(na > 0 && !strncmp(a, "1 ", 2) && strstr(a, "? \t") != NULL);
    run(&r, "gen --n 12 --seed 3 --out %s", again);   /* task 1 is the default */
    CHECK(r.code == 0 && read_text(again, b, sizeof b) == na && !strcmp(a, b));
    run(&r, "gen --task 1 --n 12 --seed 4 --out %s", other);
    CHECK(r.code == 0 && read_text(other, c, sizeof c) > 0 && strcmp(a, c) != 0);
    /* the test split: another stream of the same seed, reproducible */
    run(&r, "gen --task 1 --n 12 --seed 3 --split test --out %s", other);
    CHECK(r.code == 0 && strstr(r.out, "seed 3, test split") && read_text(other, c, sizeof c) > 0 && strcmp(a, c));
    run(&r, "gen --task 1 --n 12 --seed 3 --split test --out %s", again);
    CHECK(r.code == 0 && read_text(again, b, sizeof b) > 0 && !strcmp(b, c));
    run(&r, "gen --task 1 --n 12 --seed 3 --split train --out %s", again);
    CHECK(r.code == 0 && read_text(again, b, sizeof b) == na && !strcmp(a, b));
    run(&r, "gen --help");
    CHECK(r.code == 0 && strstr(r.out, "--seed") && strstr(r.out, "--out") && strstr(r.out, "--split"));
    run(&r, "--help");
    CHECK(r.code == 0 && strstr(r.out, "babi gen"));
}

/* every supported task: written, read back by babi show, the seed fixes it */
static void test_gen_tasks(void) {
    static const struct { int task; const char *summary, *question; } t[] = {
        {2, "12 questions", "Q    where is the "},
        {3, "12 questions", "Q    where was the "},
        {4, "12 stories, 24 statements, 12 questions", "Q    what is "},
        {5, "12 questions", "Q    wh"},
        {6, "12 questions", "Q    is "},   /* two statements a question, more when nobody has moved yet */
        {11, "3 stories, 24 statements, 12 questions", "Q    where is "},
        {12, "3 stories, 24 statements, 12 questions", "Q    where is "},
        {13, "3 stories, 24 statements, 12 questions", "Q    where is "},
        {15, "3 stories, 24 statements, 12 questions", " afraid of"},
        {16, "12 stories, 108 statements, 12 questions", "Q    what color is "},
    };
    char path[512], again[512];
    static char a[65536], b[65536];
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        tmp_path(path, sizeof path, "qa_task.txt");
        tmp_path(again, sizeof again, "qa_task_again.txt");
        run_result r;
        run(&r, "gen --task %d --n 12 --seed 9 --out %s", t[i].task, path);
        CHECK_MSG(r.code == 0, "gen task %d: exit %d: %s", t[i].task, r.code, r.err);
        char want[64];
        snprintf(want, sizeof want, "task %d, 12 questions, seed 9", t[i].task);
        CHECK_MSG(strstr(r.out, want) != NULL, "%s", r.out);
        run(&r, "show %s --count 1", path);
        CHECK_MSG(r.code == 0 && strstr(r.out, t[i].summary) && strstr(r.out, t[i].question),
                  "show task %d: exit %d: %s%s", t[i].task, r.code, r.out, r.err);
        run(&r, "gen --task %d --n 12 --seed 9 --out %s", t[i].task, again);
        size_t na = read_text(path, a, sizeof a);
        CHECK(r.code == 0 && na > 0 && read_text(again, b, sizeof b) == na && !strcmp(a, b));
    }
}

static void test_gen_errors(void) {
    char path[512];
    tmp_path(path, sizeof path, "qa_none.txt");
    run_result r;
    run(&r, "gen --task 7 --n 10 --out %s", path);
    EXPECT_ERR(&r, "unsupported task", "task 7 is not supported", "supported: 1, 2, 3, 4, 5, 6, 11, 12, 13, 15, 16");
    run(&r, "gen --task 21 --n 10 --out %s", path);
    EXPECT_ERR(&r, "task out of range", "--task");
    run(&r, "gen --n 0 --out %s", path);
    EXPECT_ERR(&r, "zero questions", "--n");
    run(&r, "gen --n 10");
    EXPECT_ERR(&r, "no output", "--out");
    run(&r, "gen --split valid --out %s", path);
    EXPECT_ERR(&r, "bad split", "--split must be train or test");
    run(&r, "gen --seed x --out %s", path);
    EXPECT_ERR(&r, "bad seed", "--seed");
    run(&r, "gen --task 1 --bogus --out %s", path);
    EXPECT_ERR(&r, "unknown flag", "--bogus");
    char probe[8];
    CHECK(read_text(path, probe, sizeof probe) == 0);   /* nothing written */
}

int main(void) {
    cli_prefix = "babi ";
    cli_err_prefix = "cortex babi";
    if (!cli_setup("test_babi_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(test_show);
    RUN(test_errors);
    RUN(test_gen);
    RUN(test_gen_tasks);
    RUN(test_gen_errors);
    cli_teardown();
    TEST_END();
}
