/* bAbI generator (cx_babi_generate): the text parses with the project's
 * reader, holds the asked number of questions in the released story layout,
 * every answer and supporting id agrees with a simulation of the story, only
 * published words are used, the seed fixes the text, bad arguments fail. */
#include <stdlib.h>
#include <string.h>

#include "test.h"

static const char *const ACTORS[] = {"Mary", "John", "Sandra", "Daniel"};
static const char *const PLACES[] = {"bathroom", "hallway", "office", "kitchen", "garden", "bedroom"};
static const char *const MOVES[] = {"moved", "went", "journeyed", "travelled", "went back"};
/* the unstated places before the first move: bedroom, kitchen, garden, hallway */
static const int START[] = {5, 3, 4, 1};

static int find(const char *const *list, int n, const char *w, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(list[i]) == len && !strncmp(list[i], w, len)) return i;
    return -1;
}

/* Replays task-1 text line by line (independently of the reader): checks
 * every line against the templates, the IDs (1..15, restarting), two moves
 * before each question, no move to the mover's current place (before the
 * first move: the world's unstated start), the answer (the asked actor's last
 * move) and the
 * supporting id (that move's line). Counts the questions and which actors,
 * places and verbs were used. Returns the number of failed lines. */
static int replay_task1(const char *text, int *n_questions, int used[3][6]) {
    int bad = 0, place[4], fact[4], expect_id = 1, moves_since_q = 0;
    *n_questions = 0;
    memset(used, 0, sizeof(int[3][6]));
    const char *p = text;
    char line[256];
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= sizeof line) { bad++; break; }
        memcpy(line, p, n);
        line[n] = 0;
        p += n + (nl != NULL);
        int id, k = 0;
        if (sscanf(line, "%d %n", &id, &k) != 1 || !k) { bad++; continue; }
        if (id == 1) {
            if (expect_id != 1 && expect_id != 16) bad++;   /* stories end after 5 questions */
            for (int a = 0; a < 4; a++) place[a] = START[a], fact[a] = 0;
            expect_id = 1;
            moves_since_q = 0;
        }
        if (id != expect_id) { CHECK_MSG(false, "id %d, expected %d: %s", id, expect_id, line); bad++; }
        expect_id = id + 1;
        const char *s = line + k;
        const char *sp = strchr(s, ' ');
        if (!strncmp(s, "Where is ", 9)) {
            char who[32], ans[32];
            int sup = -1, m = 0;
            if (sscanf(s, "Where is %31[A-Za-z]? \t%31[a-z]\t%d%n", who, ans, &sup, &m) != 3 || s[m]) {
                CHECK_MSG(false, "bad question line '%s'", line);
                bad++;
                continue;
            }
            int a = find(ACTORS, 4, who, strlen(who));
            bool ok = a >= 0 && fact[a] > 0 && !strcmp(ans, PLACES[place[a]]) && sup == fact[a] &&
                      moves_since_q == 2;
            CHECK_MSG(ok, "wrong question '%s'", line);
            bad += !ok;
            moves_since_q = 0;
            (*n_questions)++;
            continue;
        }
        /* "Actor verb to the place." with verb one or two words */
        int a = sp ? find(ACTORS, 4, s, (size_t)(sp - s)) : -1;
        const char *to = sp ? strstr(sp, " to the ") : NULL;
        int v = to ? find(MOVES, 5, sp + 1, (size_t)(to - sp - 1)) : -1;
        const char *pl = to ? to + 8 : NULL;
        size_t pn = pl ? strlen(pl) : 0;
        int q = pn > 1 && pl[pn - 1] == '.' ? find(PLACES, 6, pl, pn - 1) : -1;
        if (a < 0 || v < 0 || q < 0 || q == place[a]) {
            CHECK_MSG(false, "bad statement '%s'", line);
            bad++;
            continue;
        }
        place[a] = q;
        fact[a] = id;
        used[0][a] = used[1][q] = used[2][v] = 1;
        moves_since_q++;
    }
    return bad;
}

static void test_task1(void) {
    static const int counts[] = {1, 4, 5, 7, 1000};
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        int n = counts[c];
        char *text = NULL;
        size_t len = 0;
        CHECK(cx_babi_generate(1, n, 42 + c, &text, &len) == CX_OK);
        if (!text) continue;
        CHECK(strlen(text) == len && len > 0 && text[len - 1] == '\n');
        int nq, used[3][6];
        CHECK(replay_task1(text, &nq, used) == 0);
        CHECK_MSG(nq == n, "%d questions, expected %d", nq, n);
        if (n == 1000) {
            for (int a = 0; a < 4; a++) CHECK_MSG(used[0][a], "actor %s unused", ACTORS[a]);
            for (int q = 0; q < 6; q++) CHECK_MSG(used[1][q], "place %s unused", PLACES[q]);
            for (int v = 0; v < 5; v++) CHECK_MSG(used[2][v], "verb %s unused", MOVES[v]);
        }
        /* the project's reader agrees: n questions, 2 new facts each, stories of 5,
         * supporting fact = a statement naming the answer */
        cx_babi_vocab *voc = cx_babi_vocab_new();
        cx_babi_set *s = NULL;
        CHECK_MSG(cx_babi_parse(text, len, "gen.txt", voc, CX_BABI_UNK_ADD, &s) == CX_OK, "%s", cx_last_error());
        if (s) {
            CHECK(s->n_questions == n && s->n_sentences == 2 * n && s->n_stories == (n + 4) / 5);
            CHECK(s->max_sentence_len <= 6 && s->max_query_len == 3 && s->max_answer_len == 1);
            for (int i = 0; i < s->n_questions; i++) {
                const cx_babi_question *qq = &s->questions[i];
                CHECK(qq->n_support == 1 && qq->answer_len == 1 && qq->n_facts == 2 * (i % 5 + 1));
                if (qq->n_support != 1) continue;
                const cx_babi_sentence *f =
                    &s->sentences[s->stories[qq->story].first_sentence + qq->support[0]];
                CHECK(f->ids[0] == qq->query[2] && f->ids[f->len - 1] == qq->answer_id);
            }
            /* vocabulary: only the published words */
            static const char *const WORDS[] = {"<nil>", "mary", "john", "sandra", "daniel", "bathroom",
                                                "hallway", "office", "kitchen", "garden", "bedroom", "moved",
                                                "went", "journeyed", "travelled", "back", "to", "the", "where",
                                                "is"};
            for (int w = 0; w < cx_babi_vocab_size(voc); w++) {
                const char *word = cx_babi_vocab_word(voc, w);
                CHECK_MSG(find(WORDS, 20, word, strlen(word)) >= 0, "unexpected word '%s'", word);
            }
            if (n == 1000) CHECK(cx_babi_vocab_size(voc) == 20);
        }
        cx_babi_set_free(s);
        cx_babi_vocab_free(voc);
        free(text);
    }
}

static void test_seeds(void) {
    char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    size_t la = 0, lb = 0, lc = 0;
    CHECK(cx_babi_generate(1, 200, 7, &a, &la) == CX_OK);
    CHECK(cx_babi_generate(1, 200, 7, &b, &lb) == CX_OK);
    CHECK(cx_babi_generate(1, 200, 8, &c, &lc) == CX_OK);
    CHECK(cx_babi_generate(1, 100, 7, &d, NULL) == CX_OK);   /* len may be NULL */
    if (a && b && c && d) {
        CHECK(la == lb && !memcmp(a, b, la));
        CHECK(la != lc || memcmp(a, c, la) != 0);
        CHECK(!strncmp(a, d, strlen(d)));   /* fewer questions: a prefix of the same stream */
    }
    /* the generator has its own stream: the default one is not consumed */
    cx_rng_seed(cx_rng_default(), 5);
    uint32_t x = cx_rng_u32(cx_rng_default());
    cx_rng_seed(cx_rng_default(), 5);
    free(d);
    d = NULL;
    CHECK(cx_babi_generate(1, 50, 7, &d, NULL) == CX_OK);
    CHECK(cx_rng_u32(cx_rng_default()) == x);
    free(a); free(b); free(c); free(d);
}

static void test_errors(void) {
    char *t = (char *)"x";
    size_t len = 99;
    CHECK(cx_babi_generate(2, 10, 1, &t, &len) == CX_ERR_ARG && t == NULL && len == 0);
    CHECK_MSG(strstr(cx_last_error(), "task 2") && strstr(cx_last_error(), "supported: 1"), "%s",
              cx_last_error());
    CHECK(cx_babi_generate(0, 10, 1, &t, NULL) == CX_ERR_ARG && t == NULL);
    CHECK(cx_babi_generate(21, 10, 1, &t, NULL) == CX_ERR_ARG);
    CHECK(cx_babi_generate(1, 0, 1, &t, NULL) == CX_ERR_ARG && t == NULL);
    CHECK(strstr(cx_last_error(), "question count 0") != NULL);
    CHECK(cx_babi_generate(1, -5, 1, &t, NULL) == CX_ERR_ARG);
    CHECK(cx_babi_generate(1, CX_BABI_GEN_MAX + 1, 1, &t, NULL) == CX_ERR_ARG);
    CHECK(cx_babi_generate(1, 10, 1, NULL, &len) == CX_ERR_ARG);
}

int main(void) {
    RUN(test_task1);
    RUN(test_seeds);
    RUN(test_errors);
    TEST_END();
}
