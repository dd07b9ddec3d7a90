/* bAbI reader (cortex/babi.h): a hand-written two-story snippet in the
 * released format parsed exactly, vocabulary ids, MemN2N tensors (padding,
 * truncation, order), story sequences for a recurrent reader, and bad
 * input: one clear error naming file:line. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

/* Two stories (IDs restart at 1), a question between statements, a
 * multi-word answer, two supporting ids, a question with a space before its
 * tab (as in the released files). */
static const char SNIPPET[] =
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Mary picked up the apple.\n"
    "5 Mary got the football there.\n"
    "6 What is Mary carrying?\tapple,football\t4 5\n"
    "1 Sandra journeyed to the office.\n"
    "2 Where is Sandra?\toffice\t1\n";

static void words_are(const cx_babi_vocab *v, const int32_t *ids, int n, const char *expect) {
    char buf[256];
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        const char *w = cx_babi_vocab_word(v, ids[i]);
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? " " : "", w ? w : "(null)");
    }
    CHECK_MSG(!strcmp(buf, expect), "got '%s', expected '%s'", buf, expect);
}

static void test_parse_snippet(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(SNIPPET, strlen(SNIPPET), "qa_snip.txt", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    if (!s) { cx_babi_vocab_free(v); return; }
    CHECK(!strcmp(s->name, "qa_snip.txt"));
    CHECK(s->n_stories == 2 && s->n_sentences == 5 && s->n_questions == 3);
    CHECK(s->stories[0].first_sentence == 0 && s->stories[0].n_sentences == 4);
    CHECK(s->stories[0].first_question == 0 && s->stories[0].n_questions == 2 && s->stories[0].line == 1);
    CHECK(s->stories[1].first_sentence == 4 && s->stories[1].n_sentences == 1);
    CHECK(s->stories[1].first_question == 2 && s->stories[1].n_questions == 1 && s->stories[1].line == 7);
    words_are(v, s->sentences[0].ids, s->sentences[0].len, "mary moved to the bathroom");
    words_are(v, s->sentences[3].ids, s->sentences[3].len, "mary got the football there");
    words_are(v, s->sentences[4].ids, s->sentences[4].len, "sandra journeyed to the office");
    CHECK(s->sentences[2].line == 4 && s->sentences[4].line == 7);
    const cx_babi_question *q = s->questions;
    /* question 0: sees statements 0, 1 */
    CHECK(q[0].story == 0 && q[0].n_facts == 2 && q[0].line == 3);
    words_are(v, q[0].query, q[0].query_len, "where is mary");
    words_are(v, q[0].answer, q[0].answer_len, "bathroom");
    CHECK(q[0].answer_id == q[0].answer[0]);
    CHECK(q[0].n_support == 1 && q[0].support[0] == 0);
    /* question 1: line IDs 4, 5 are statements 2, 3 (the question at ID 3 is not one) */
    CHECK(q[1].story == 0 && q[1].n_facts == 4 && q[1].line == 6);
    words_are(v, q[1].query, q[1].query_len, "what is mary carrying");
    CHECK(q[1].answer_len == 2);
    words_are(v, q[1].answer, q[1].answer_len, "apple football");
    CHECK(!strcmp(cx_babi_vocab_word(v, q[1].answer_id), "apple,football"));
    CHECK(q[1].n_support == 2 && q[1].support[0] == 2 && q[1].support[1] == 3);
    CHECK(q[2].story == 1 && q[2].n_facts == 1 && q[2].n_support == 1 && q[2].support[0] == 0);
    words_are(v, q[2].answer, q[2].answer_len, "office");
    CHECK(s->max_sentence_len == 5 && s->max_query_len == 4 && s->max_facts == 4 && s->max_answer_len == 2);
    char text[512];
    int need = cx_babi_format_question(s, v, 1, text, sizeof text);
    CHECK(need == (int)strlen(text));
    CHECK(strstr(text, "* 2  mary picked up the apple") != NULL);
    CHECK(strstr(text, "A    apple,football") != NULL);
    CHECK(cx_babi_format_question(s, v, 1, text, 8) == need && strlen(text) == 7);
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
}

static void test_vocab_ids(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    CHECK(cx_babi_vocab_size(v) == 1 && !strcmp(cx_babi_vocab_word(v, 0), "<nil>"));
    CHECK(cx_babi_vocab_find(v, "<nil>") == CX_BABI_NIL);
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(SNIPPET, strlen(SNIPPET), "a.txt", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    /* first appearance order */
    static const char *const first[] = {"<nil>", "mary", "moved", "to", "the", "bathroom", "john", "went",
                                        "hallway", "where", "is", "picked", "up", "apple", "got", "football",
                                        "there", "what", "carrying", "apple,football", "sandra", "journeyed",
                                        "office"};
    int nw = (int)(sizeof first / sizeof *first);
    CHECK(cx_babi_vocab_size(v) == nw);
    for (int i = 0; i < nw; i++) {
        CHECK_MSG(cx_babi_vocab_find(v, first[i]) == i, "%s", first[i]);
        CHECK(cx_babi_vocab_word(v, i) && !strcmp(cx_babi_vocab_word(v, i), first[i]));
    }
    CHECK(cx_babi_vocab_find(v, "Mary") == -1 && cx_babi_vocab_word(v, nw) == NULL && cx_babi_vocab_word(v, -1) == NULL);
    /* the same file into a second vocabulary: the same ids */
    cx_babi_vocab *v2 = cx_babi_vocab_new();
    cx_babi_set *s2 = NULL;
    CHECK(cx_babi_parse(SNIPPET, strlen(SNIPPET), "a.txt", v2, CX_BABI_UNK_ADD, &s2) == CX_OK);
    CHECK(s2 && s2->n_questions == 3 && cx_babi_vocab_size(v2) == nw);
    for (int i = 0; s2 && i < 3; i++) CHECK(s2->questions[i].answer_id == s->questions[i].answer_id);
    /* a test file reusing the training vocabulary: known words keep their ids */
    const char *test = "1 Sandra went to the bathroom.\n2 Where is Sandra?\tbathroom\t1\n";
    cx_babi_set *t = NULL;
    CHECK(cx_babi_parse(test, strlen(test), "t.txt", v, CX_BABI_UNK_ERROR, &t) == CX_OK);
    CHECK(t && t->questions[0].answer_id == cx_babi_vocab_find(v, "bathroom") && cx_babi_vocab_size(v) == nw);
    cx_babi_set_free(t);
    /* unknown words: ERROR names the line and the word, and leaves the vocabulary as it was */
    const char *test2 = "1 Sandra went to the bathroom.\n2 Daniel went to the garden.\n3 Where is Daniel?\tgarden\t2\n";
    t = NULL;
    CHECK(cx_babi_parse(test2, strlen(test2), "t2.txt", v, CX_BABI_UNK_ERROR, &t) == CX_ERR_FORMAT && !t);
    CHECK_MSG(strstr(cx_last_error(), "t2.txt:2: word 'daniel' is not in the vocabulary") != NULL, "%s", cx_last_error());
    CHECK(cx_babi_vocab_size(v) == nw);
    /* ADD extends it after the training words */
    CHECK(cx_babi_parse(test2, strlen(test2), "t2.txt", v, CX_BABI_UNK_ADD, &t) == CX_OK);
    CHECK(cx_babi_vocab_find(v, "daniel") == nw && cx_babi_vocab_find(v, "garden") == nw + 1);
    CHECK(cx_babi_vocab_size(v) == nw + 2);
    cx_babi_set_free(t);
    /* a failed ADD parse rolls back its new words */
    const char *bad = "1 Zed saw a yak.\n2 Where is Zed?\n";
    CHECK(cx_babi_parse(bad, strlen(bad), "b.txt", v, CX_BABI_UNK_ADD, &t) == CX_ERR_FORMAT);
    CHECK(cx_babi_vocab_size(v) == nw + 2 && cx_babi_vocab_find(v, "zed") == -1 && cx_babi_vocab_find(v, "daniel") == nw);
    cx_babi_set_free(s);
    cx_babi_set_free(s2);
    cx_babi_vocab_free(v);
    cx_babi_vocab_free(v2);
}

static void test_many_words(void) { /* the hash table grows */
    char *text = malloc(200000);
    size_t k = 0;
    for (int i = 0; i < 3000; i++) k += (size_t)sprintf(text + k, "%d w%d x%d.\n", i + 1, i, i);
    k += (size_t)sprintf(text + k, "3001 Where is w7?\tx2999\t3000\n");
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(text, k, "big", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    CHECK(s && s->n_sentences == 3000 && s->questions[0].n_facts == 3000 && s->questions[0].support[0] == 2999);
    CHECK(cx_babi_vocab_size(v) == 1 + 6000 + 2);
    char w[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(w, sizeof w, "w%d", i);
        CHECK(cx_babi_vocab_find(v, w) == 1 + 2 * i);
    }
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
    free(text);
}

static void test_tensors(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(SNIPPET, strlen(SNIPPET), "a.txt", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    if (!s) { cx_babi_vocab_free(v); return; }
    int mary = cx_babi_vocab_find(v, "mary"), where = cx_babi_vocab_find(v, "where");
    int john = cx_babi_vocab_find(v, "john"), sandra = cx_babi_vocab_find(v, "sandra");
    cx_tensor *m, *q, *a;
    /* defaults: M = 4 (most facts), L = 5 (longest statement) */
    CHECK(cx_babi_tensors(s, 0, 3, NULL, &m, &q, &a) == CX_OK);
    CHECK(m->dtype == CX_I32 && m->ndim == 3 && m->shape[0] == 3 && m->shape[1] == 4 && m->shape[2] == 5);
    CHECK(q->ndim == 2 && q->shape[0] == 3 && q->shape[1] == 5 && a->ndim == 1 && a->shape[0] == 3);
    const int32_t *pm = CX_I32P(m), *pq = CX_I32P(q), *pa = CX_I32P(a);
    /* question 0: 2 facts in rows 0, 1; rows 2, 3 zero */
    CHECK(pm[0] == mary && pm[4] == cx_babi_vocab_find(v, "bathroom"));
    CHECK(pm[5] == john && pm[9] == cx_babi_vocab_find(v, "hallway"));
    for (int j = 10; j < 20; j++) CHECK(pm[j] == 0);
    CHECK(pq[0] == where && pq[2] == mary && pq[3] == 0 && pq[4] == 0);
    CHECK(pa[0] == cx_babi_vocab_find(v, "bathroom") && pa[1] == cx_babi_vocab_find(v, "apple,football"));
    CHECK(pa[2] == cx_babi_vocab_find(v, "office"));
    /* question 1: 4 facts, the last "mary got the football there" */
    CHECK(pm[20 + 15] == mary && pm[20 + 19] == cx_babi_vocab_find(v, "there"));
    /* question 2: 1 fact of story 1 only */
    CHECK(pm[40] == sandra);
    for (int j = 45; j < 60; j++) CHECK(pm[j] == 0);
    cx_tensor_free(m), cx_tensor_free(q), cx_tensor_free(a);
    /* M = 2, L = 3: question 1 keeps its last 2 facts, each cut to 3 words; the query too */
    cx_babi_tensor_opts o = cx_babi_tensor_defaults();
    o.memory = 2;
    o.sentence_len = 3;
    CHECK(cx_babi_tensors(s, 1, 1, &o, &m, &q, &a) == CX_OK);
    CHECK(m->shape[0] == 1 && m->shape[1] == 2 && m->shape[2] == 3 && q->shape[1] == 3);
    words_are(v, CX_I32P(m), 3, "mary picked up");
    words_are(v, CX_I32P(m) + 3, 3, "mary got the");
    words_are(v, CX_I32P(q), 3, "what is mary");
    cx_tensor_free(m), cx_tensor_free(q), cx_tensor_free(a);
    /* recent_first: the newest fact in row 0, padding after the facts */
    o.recent_first = true;
    o.memory = 3;
    CHECK(cx_babi_tensors(s, 0, 2, &o, &m, &q, &a) == CX_OK);
    words_are(v, CX_I32P(m), 3, "john went to");
    words_are(v, CX_I32P(m) + 3, 3, "mary moved to");
    words_are(v, CX_I32P(m) + 6, 3, "<nil> <nil> <nil>");
    words_are(v, CX_I32P(m) + 9, 3, "mary got the");
    words_are(v, CX_I32P(m) + 12, 3, "mary picked up");
    words_are(v, CX_I32P(m) + 15, 3, "john went to"); /* "mary moved ..." dropped: older than the last 3 */
    cx_tensor_free(m), cx_tensor_free(q), cx_tensor_free(a);
    /* bad ranges */
    CHECK(cx_babi_tensors(s, 2, 2, NULL, &m, &q, &a) == CX_ERR_ARG && !m && !q && !a);
    CHECK(cx_babi_tensors(s, 0, 0, NULL, &m, &q, &a) == CX_ERR_ARG);
    CHECK(cx_babi_tensors(s, -1, 1, NULL, &m, &q, &a) == CX_ERR_ARG);
    CHECK(cx_babi_tensors(NULL, 0, 1, NULL, &m, &q, &a) == CX_ERR_ARG);
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
}

/* text must fail with CX_ERR_FORMAT and a message containing want. */
static void expect_bad(const char *text, const char *want) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = (cx_babi_set *)1;
    cx_status st = cx_babi_parse(text, strlen(text), "qa_bad.txt", v, CX_BABI_UNK_ADD, &s);
    CHECK_MSG(st == CX_ERR_FORMAT && s == NULL, "status %d for '%s'", (int)st, text);
    CHECK_MSG(strstr(cx_last_error(), want) != NULL, "message '%s' lacks '%s'", cx_last_error(), want);
    CHECK(cx_babi_vocab_size(v) == 1);
    if (st == CX_OK) cx_babi_set_free(s);
    cx_babi_vocab_free(v);
}

static void test_bad_lines(void) {
    expect_bad("1 Mary went home.\nJohn went home.\n2 Where is Mary?\thome\t1\n",
               "qa_bad.txt:2: the line does not start with a story ID");
    expect_bad("1 Mary went home.\n2 John left.\n2 Where is Mary?\thome\t1\n",
               "qa_bad.txt:3: story ID 2 does not increase (previous line has ID 2");
    expect_bad("1 Mary went home.\n3 John left.\n2 Where is Mary?\thome\t1\n",
               "qa_bad.txt:3: story ID 2 does not increase");
    expect_bad("2 Mary went home.\n3 Where is Mary?\thome\t2\n", "qa_bad.txt:1: the first story starts at ID 2, not 1");
    expect_bad("0 Mary went home.\n", "qa_bad.txt:1: story ID 0");
    expect_bad("1Mary went home.\n", "qa_bad.txt:1: story ID 1 is not followed by a space");
    expect_bad("1 .\n", "qa_bad.txt:1: empty sentence");
    /* missing answer field: no tab at all, an empty field, a field of blanks */
    expect_bad("1 Mary went home.\n2 Where is Mary?\n", "qa_bad.txt:2: question without an answer");
    expect_bad("1 Mary went home.\n2 Where is Mary?\t\t1\n", "qa_bad.txt:2: question with an empty answer field");
    expect_bad("1 Mary went home.\n2 Where is Mary?\t \n", "qa_bad.txt:2: question with an empty answer field");
    expect_bad("1 Mary went home.\n2 What has Mary?\tapple,\t1\n", "qa_bad.txt:2: empty word in the answer");
    expect_bad("1 Mary went home.\n2 ?\thome\t1\n", "qa_bad.txt:2: empty question");
    expect_bad("1 Mary went home.\n2 Where is Mary?\thome\t1\textra\n", "qa_bad.txt:2: more than 3 tab-separated fields");
    /* supporting ids */
    expect_bad("1 Mary went home.\n2 Where is Mary?\thome\t1\n3 Where is Mary?\thome\t2\n",
               "qa_bad.txt:3: supporting fact 2 is a question (line 2), not a statement");
    expect_bad("1 Mary went home.\n2 Where is Mary?\thome\t3\n",
               "qa_bad.txt:2: supporting fact 3 is not an earlier line of this story (the question has ID 2)");
    expect_bad("1 Mary went home.\n2 Where is Mary?\thome\t2\n", "qa_bad.txt:2: supporting fact 2 is not an earlier line");
    expect_bad("1 Mary went home.\n3 Where is Mary?\thome\t2\n", "qa_bad.txt:2: supporting fact 2: no line with that ID");
    expect_bad("1 Mary went home.\n2 Where is Mary?\thome\tx1\n", "qa_bad.txt:2: supporting fact id \"x1\" is not a number");
    /* a supporting id from an earlier story is not in this one */
    expect_bad("1 Mary went home.\n2 John left.\n1 Sandra ran.\n2 Where is Mary?\thome\t2\n",
               "qa_bad.txt:4: supporting fact 2 is not an earlier line");
    /* files without content */
    expect_bad("", "qa_bad.txt: empty file (no stories)");
    expect_bad("\n  \n", "qa_bad.txt: empty file (no stories)");
    expect_bad("1 Mary went home.\n", "qa_bad.txt: no question lines");
    /* a buffer that is not NUL-terminated: the message quotes only the line (ASan checks) */
    const char tail[] = "1 Mary went home.\n2 Where is Mary?\thome\t1\nMary went home and then on to the garden again";
    char *exact = malloc(sizeof tail - 1);
    memcpy(exact, tail, sizeof tail - 1);
    cx_babi_vocab *vt = cx_babi_vocab_new();
    cx_babi_set *st = NULL;
    CHECK(cx_babi_parse(exact, sizeof tail - 1, "t.txt", vt, CX_BABI_UNK_ADD, &st) == CX_ERR_FORMAT && !st);
    CHECK_MSG(strstr(cx_last_error(), "t.txt:3: the line does not start with a story ID (a number, then a space): "
                                      "\"Mary went home and then on to the garden\"") != NULL, "%s", cx_last_error());
    free(exact);
    cx_babi_vocab_free(vt);
    const char nul[] = "1 Mary went\0 home.\n";
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(nul, sizeof nul - 1, "n.txt", v, CX_BABI_UNK_ADD, &s) == CX_ERR_FORMAT);
    CHECK(strstr(cx_last_error(), "n.txt:1: NUL byte") != NULL);
    CHECK(cx_babi_parse(NULL, 0, "e", v, CX_BABI_UNK_ADD, &s) == CX_ERR_FORMAT && !s);
    CHECK(cx_babi_parse("1 a.\n", 5, "e", NULL, CX_BABI_UNK_ADD, &s) == CX_ERR_ARG);
    CHECK(cx_babi_parse("1 a.\n", 5, "e", v, (cx_babi_unknown)7, &s) == CX_ERR_ARG);
    cx_babi_vocab_free(v);
}

/* Line ends: no final newline, CRLF, blank lines; case and punctuation. */
static void test_line_ends(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    const char *nofinal = "1 Mary went home.\n2 Where is Mary?\thome\t1";
    CHECK(cx_babi_parse(nofinal, strlen(nofinal), "x", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    CHECK(s && s->n_questions == 1 && s->questions[0].n_support == 1 && s->questions[0].line == 2);
    if (s) words_are(v, s->questions[0].answer, 1, "home");
    cx_babi_set_free(s);
    const char *crlf = "1 Mary went HOME.\r\n2 Where is Mary?\thome\t1\r\n\r\n1 John left.\r\n2 Where is John?\tNothing\t\r\n";
    CHECK(cx_babi_parse(crlf, strlen(crlf), "x", v, CX_BABI_UNK_ERROR, &s) == CX_ERR_FORMAT); /* "nothing", "john", "left" new */
    CHECK(strstr(cx_last_error(), "x:4: word 'john'") != NULL);
    CHECK(cx_babi_parse(crlf, strlen(crlf), "x", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    CHECK(s && s->n_stories == 2 && s->n_questions == 2);
    if (s) {
        words_are(v, s->sentences[0].ids, s->sentences[0].len, "mary went home");
        words_are(v, s->questions[0].answer, 1, "home");
        CHECK(s->questions[0].n_support == 1);
        words_are(v, s->questions[1].answer, 1, "nothing");   /* lower-cased, no '\r' */
        CHECK(s->questions[1].n_support == 0 && s->questions[1].line == 5);
    }
    cx_babi_set_free(s);
    /* a UTF-8 byte-order mark (a file saved by some Windows editors) */
    const char *bom = "\xEF\xBB\xBF" "1 Mary went home.\n2 Where is Mary?\thome\t1\n";
    CHECK(cx_babi_parse(bom, strlen(bom), "x", v, CX_BABI_UNK_ERROR, &s) == CX_OK);
    if (s) words_are(v, s->sentences[0].ids, s->sentences[0].len, "mary went home");
    cx_babi_set_free(s);
    /* two-field questions (no supporting ids) and path answers */
    const char *path = "1 The kitchen is north of the hallway.\n2 How do you go from the hallway to the kitchen?\tn,e\n";
    CHECK(cx_babi_parse(path, strlen(path), "x", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    if (s) {
        words_are(v, s->questions[0].answer, s->questions[0].answer_len, "n e");
        CHECK(!strcmp(cx_babi_vocab_word(v, s->questions[0].answer_id), "n,e") && s->questions[0].n_support == 0);
    }
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
}

static void test_files(void) {
    char dir[] = "/tmp/cx_babi_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/qa8_lists-sets_train.txt", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(SNIPPET, f);
    fclose(f);
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_load(path, v, CX_BABI_UNK_ADD, &s) == CX_OK);
    CHECK(s && s->n_questions == 3 && !strcmp(s->name, path));
    cx_babi_set_free(s);
    /* a bad line names the file */
    f = fopen(path, "wb");
    fputs("1 Mary went home.\n2 Where is Mary?\thome\t7\n", f);
    fclose(f);
    CHECK(cx_babi_load(path, v, CX_BABI_UNK_ADD, &s) == CX_ERR_FORMAT && !s);
    char want[300];
    snprintf(want, sizeof want, "%s:2: supporting fact 7", path);
    CHECK_MSG(strstr(cx_last_error(), want) != NULL, "%s", cx_last_error());
    remove(path);
    /* a missing file */
    CHECK(cx_babi_load(path, v, CX_BABI_UNK_ADD, &s) == CX_ERR_IO && !s);
    CHECK_MSG(strstr(cx_last_error(), "qa8_lists-sets_train.txt") != NULL, "%s", cx_last_error());
    rmdir(dir);
    cx_babi_vocab_free(v);
}


/* a sequence column as text: words, ".", "?", "-", "_" for padding */
static void seq_is(const cx_babi_vocab *v, const cx_tensor *tok, int b, int len, const char *expect) {
    const int T = tok->shape[0], n = tok->shape[1], V = cx_babi_vocab_size(v);
    char buf[512];
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < T && k < sizeof buf; t++) {
        int id = CX_I32P(tok)[t * n + b];
        const char *w = id == V + CX_BABI_SEQ_STOP     ? "."
                        : id == V + CX_BABI_SEQ_QUERY  ? "?"
                        : id == V + CX_BABI_SEQ_ANSWER ? "-"
                        : t >= len                      ? (id == CX_BABI_NIL ? "_" : "BAD")
                                                        : cx_babi_vocab_word(v, id);
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", t ? " " : "", w ? w : "(null)");
    }
    CHECK_MSG(!strcmp(buf, expect), "story %d: got '%s', expected '%s'", b, buf, expect);
}

static void test_sequences(void) {
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    CHECK(cx_babi_parse(SNIPPET, strlen(SNIPPET), "qa_snip.txt", v, CX_BABI_UNK_ADD, &s) == CX_OK);
    if (!s) { cx_babi_vocab_free(v); return; }
    const int V = cx_babi_vocab_size(v);
    cx_tensor *tok = NULL, *tgt = NULL;
    int len[2] = {-1, -1};
    CHECK(cx_babi_sequences(s, 0, 2, V, &tok, &tgt, len) == CX_OK);
    CHECK(tok && tgt && tok->dtype == CX_I32 && tgt->dtype == CX_I32 && tok->persistent && tgt->persistent);
    if (tok && tgt) {
        CHECK(tok->ndim == 2 && tok->shape[0] == 35 && tok->shape[1] == 2 && cx_same_shape(tok, tgt));
        CHECK(len[0] == 35 && len[1] == 11);
        seq_is(v, tok, 0, len[0], "mary moved to the bathroom . john went to the hallway . where is mary ? - "
                                  "mary picked up the apple . mary got the football there . what is mary carrying ? -");
        seq_is(v, tok, 1, len[1], "sandra journeyed to the office . where is sandra ? - _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ "
                                  "_ _ _ _ _ _ _ _ _");
        /* targets: the answer at the "-" steps, -100 elsewhere */
        int answers = 0;
        for (int i = 0; i < 70; i++) {
            int32_t g = CX_I32P(tgt)[i];
            if (g == -100) continue;
            answers++;
            CHECK_MSG(CX_I32P(tok)[i] == V + CX_BABI_SEQ_ANSWER, "target at a non-answer step %d", i);
        }
        CHECK(answers == 3);
        CHECK(CX_I32P(tgt)[16 * 2 + 0] == cx_babi_vocab_find(v, "bathroom"));
        CHECK(CX_I32P(tgt)[34 * 2 + 0] == s->questions[1].answer_id);
        CHECK(CX_I32P(tgt)[10 * 2 + 1] == cx_babi_vocab_find(v, "office"));
    }
    cx_tensor_free(tok), cx_tensor_free(tgt);
    /* one story, lengths NULL: T is its own length */
    CHECK(cx_babi_sequences(s, 1, 1, V, &tok, &tgt, NULL) == CX_OK);
    CHECK(tok && tok->shape[0] == 11 && tok->shape[1] == 1);
    if (tok) seq_is(v, tok, 0, 11, "sandra journeyed to the office . where is sandra ? -");
    cx_tensor_free(tok), cx_tensor_free(tgt);
    /* errors: outputs NULL, the message names the problem */
    CHECK(cx_babi_sequences(s, 1, 2, V, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt);
    CHECK_MSG(strstr(cx_last_error(), "outside the set's 0..1") != NULL, "%s", cx_last_error());
    CHECK(cx_babi_sequences(s, 0, 0, V, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt);
    CHECK(cx_babi_sequences(s, -1, 1, V, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt);
    CHECK(cx_babi_sequences(s, 1, 1, V - 1, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt); /* "office" */
    CHECK_MSG(strstr(cx_last_error(), "qa_snip.txt:") != NULL && strstr(cx_last_error(), "vocab_size") != NULL, "%s",
              cx_last_error());
    CHECK(cx_babi_sequences(s, 0, 1, 0, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt);
    CHECK(cx_babi_sequences(NULL, 0, 1, V, &tok, &tgt, NULL) == CX_ERR_ARG && !tok && !tgt);
    CHECK(cx_babi_sequences(s, 0, 1, V, NULL, &tgt, NULL) == CX_ERR_ARG && !tgt);
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
}

int main(void) {
    RUN(test_parse_snippet);
    RUN(test_vocab_ids);
    RUN(test_many_words);
    RUN(test_tensors);
    RUN(test_sequences);
    RUN(test_bad_lines);
    RUN(test_line_ends);
    RUN(test_files);
    TEST_END();
}
