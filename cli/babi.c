/* cortex babi -- bAbI question-answering files (cortex/babi.h):
 *   show  read a file in the released format (every check of cx_babi_load),
 *         print a summary and some questions with the facts they see
 *   gen   generate a task in that format (cx_babi_generate), written
 *         atomically (temp file, fsync, rename) */
#include "cli.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_babi(int argc, char **argv);

static int babi_show(int argc, char **argv) {
    cli_flag f[] = {
        {"first", "first question to print", false, "0"},
        {"count", "questions to print", false, "3"},
    };
    int nf = (int)(sizeof f / sizeof *f), npos, first, count;
    const char *pos[1];
    bool help;
    if (cli_parse("babi show", argc, argv, f, nf, pos, 1, &npos, &help)) return 2;
    if (help || npos != 1) {
        if (!help) fprintf(stderr, "cortex babi show: expected one bAbI file (see 'cortex babi show --help')\n");
        else
            cli_usage("babi show", "FILE [options]",
                      "Read a bAbI file in the released format (e.g. qa1_single-supporting-fact_train.txt),\n"
                      "print a summary and questions first..first+count-1, each with the facts it sees\n"
                      "(supporting facts marked '*'), the question and the answer.",
                      f, nf);
        return help ? 0 : 2;
    }
    if (!cli_int("babi show", f, nf, "first", 0, 1 << 30, &first) ||
        !cli_int("babi show", f, nf, "count", 0, 1 << 30, &count))
        return 2;
    cx_babi_vocab *v = cx_babi_vocab_new();
    cx_babi_set *s = NULL;
    if (cx_babi_load(pos[0], v, CX_BABI_UNK_ADD, &s)) {
        fprintf(stderr, "cortex babi show: %s\n", cx_last_error());
        cx_babi_vocab_free(v);
        return 1;
    }
    printf("%s: %d stories, %d statements, %d questions, vocabulary %d words (with <nil>)\n"
           "longest statement %d words, longest question %d, most facts before a question %d, "
           "most answer words %d\n",
           pos[0], s->n_stories, s->n_sentences, s->n_questions, cx_babi_vocab_size(v), s->max_sentence_len,
           s->max_query_len, s->max_facts, s->max_answer_len);
    for (int q = first; q < s->n_questions && q - first < count; q++) {
        int need = cx_babi_format_question(s, v, q, NULL, 0);
        char *text = malloc((size_t)need + 1);
        if (!text) break;
        cx_babi_format_question(s, v, q, text, (size_t)need + 1);
        fputs(text, stdout);
        free(text);
    }
    cx_babi_set_free(s);
    cx_babi_vocab_free(v);
    return 0;
}

static int babi_gen(int argc, char **argv) {
    cli_flag f[] = {
        {"task", "bAbI task number (supported: 1, 2, 3, 4, 5, 6, 11, 12, 13, 15, 16)", false, "1"},
        {"n", "questions to generate (1000 and 10000 in the released 1k and 10k training files)", false, "1000"},
        {"seed", "random seed, a whole number in [0, 2^64)", false, "1"},
        {"split", "train or test (the test split draws from another stream of the same seed)", false, "train"},
        {"out", "output file (required; written atomically)", false, NULL},
    };
    int nf = (int)(sizeof f / sizeof *f), npos, task, n;
    const char *pos[1];
    bool help;
    if (cli_parse("babi gen", argc, argv, f, nf, pos, 0, &npos, &help)) return 2;
    if (help) {
        cli_usage("babi gen", "--out FILE [options]",
                  "Generate bAbI questions in the released format (tasks_1-20_v1-2), with the published\n"
                  "templates and vocabulary, deterministic for a seed. Tasks: 1 single supporting fact,\n"
                  "2 two supporting facts, 3 three supporting facts, 4 two argument relations, 5 three\n"
                  "argument relations, 6 yes/no questions, 11 basic coreference, 12 conjunction,\n"
                  "13 compound coreference, 15 basic deduction, 16 basic induction.",
                  f, nf);
        return 0;
    }
    const char *out = cli_get(f, nf, "out");
    if (!out || !*out) {
        fprintf(stderr, "cortex babi gen: --out FILE is required (see 'cortex babi gen --help')\n");
        return 2;
    }
    if (!cli_int("babi gen", f, nf, "task", 1, 20, &task) ||
        !cli_int("babi gen", f, nf, "n", 1, CX_BABI_GEN_MAX, &n))
        return 2;
    const char *split_s = cli_get(f, nf, "split");
    cx_babi_split split;
    if (!strcmp(split_s, "train")) split = CX_BABI_TRAIN;
    else if (!strcmp(split_s, "test")) split = CX_BABI_TEST;
    else {
        fprintf(stderr, "cortex babi gen: --split must be train or test, got '%s'\n", split_s);
        return 2;
    }
    const char *seed_s = cli_get(f, nf, "seed");
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(seed_s, &end, 10);
    if (errno || end == seed_s || *end || seed_s[0] == '-') {
        fprintf(stderr, "cortex babi gen: --seed must be a whole number in [0, 2^64), got '%s'\n", seed_s);
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    if (cx_babi_generate_split(task, split, n, (uint64_t)seed, &text, &len) || cx_write_file_atomic(out, text, len)) {
        fprintf(stderr, "cortex babi gen: %s\n", cx_last_error());
        free(text);
        return text ? 1 : 2;
    }
    free(text);
    printf("%s: task %d, %d questions, seed %llu%s\n", out, task, n, seed, split == CX_BABI_TEST ? ", test split" : "");
    return 0;
}

int cmd_babi(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "show")) return babi_show(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "gen")) return babi_gen(argc - 1, argv + 1);
    FILE *o = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) ? stdout : stderr;
    fprintf(o, "usage: cortex babi show FILE [--first I] [--count K]\n"
               "       cortex babi gen --task N --n COUNT --seed S [--split train|test] --out FILE\n"
               "'cortex babi show --help' and 'cortex babi gen --help' list the options.\n");
    return o == stdout ? 0 : 2;
}
