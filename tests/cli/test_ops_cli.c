/* cortex ops: the op table as a command, and the README's list of ops kept
 * equal to it. */
#include "cli_harness.h"

static void ops_lists_the_table(void) {
    static run_result r;
    run(&r, "ops");
    CHECK_MSG(r.code == 0, "ops: exit %d: %s", r.code, r.err);
    char last[64];
    snprintf(last, sizeof last, "%d ops", cx_op_count());
    CHECK_MSG(strstr(r.out, last) != NULL, "ops: no '%s' line in\n%s", last, r.out);
    CHECK(strstr(r.out, "lstm_seq                           3  yes") != NULL);
    CHECK(strstr(r.out, "sign                               1  no") != NULL);
    run(&r, "ops --names");
    CHECK(r.code == 0);
    int lines = 0;
    for (const char *p = r.out; *p; p++) lines += *p == '\n';
    CHECK_MSG(lines == cx_op_count(), "%d names for %d ops", lines, cx_op_count());
    run(&r, "help ops");
    CHECK(r.code == 0 && strstr(r.out, "usage: cortex ops"));
    run(&r, "help");
    CHECK(strstr(r.out, "  ops ") != NULL);
    run(&r, "ops --bogus");
    EXPECT_ERR(&r, "ops --bogus", "unknown flag");
}

/* README.md lists every op between <!-- ops --> and <!-- /ops -->, and
 * nothing else: the README reads the table. */
static void readme_lists_every_op(void) {
    static char readme[1 << 17];
    CHECK(read_text("README.md", readme, sizeof readme) > 0);
    const char *a = strstr(readme, "<!-- ops -->"), *b = a ? strstr(a, "<!-- /ops -->") : NULL;
    CHECK_MSG(a && b, "README.md has no <!-- ops --> ... <!-- /ops --> list");
    if (!a || !b) return;
    int listed = 0;
    for (const char *p = a; p < b; p++) listed += *p == '`';
    listed /= 2;
    CHECK_MSG(listed == cx_op_count(), "README lists %d ops, the table has %d (run make readme-ops)",
              listed, cx_op_count());
    for (int i = 0; i < cx_op_count(); i++) {
        char want[80];
        snprintf(want, sizeof want, "`%s`", cx_op_at(i)->name);
        const char *f = strstr(a, want);
        CHECK_MSG(f && f < b, "README's op list lacks %s (run make readme-ops)", want);
    }
}

int main(void) {
    if (!cli_setup("test_ops_cli")) {
        printf("RESULT 0 1\n");
        return 1;
    }
    RUN(ops_lists_the_table);
    RUN(readme_lists_every_op);
    cli_teardown();
    TEST_END();
}
