/* cortex/babi.h -- the bAbI question-answering tasks (Weston et al. 2015): a
 * reader for the released text files (tasks_1-20_v1-2, e.g.
 * en/qa1_single-supporting-fact_train.txt), a word vocabulary shared by the
 * train and test files, and fixed-size tensors for a memory network
 * (MemN2N, Sukhbaatar et al. 2015). See cortex.h.
 *
 *   cx_babi_vocab *v = cx_babi_vocab_new();           // id 0 = "<nil>" (padding)
 *   cx_babi_set *train, *test;
 *   cx_babi_load(".../qa1_single-supporting-fact_train.txt", v, CX_BABI_UNK_ADD, &train);
 *   cx_babi_load(".../qa1_single-supporting-fact_test.txt", v, CX_BABI_UNK_ADD, &test);
 *   cx_babi_tensor_opts o = cx_babi_tensor_defaults(); // M, L from the data
 *   o.memory = 50;
 *   cx_tensor *mem, *query, *answer;                    // [N, M, L], [N, L], [N] I32
 *   cx_babi_tensors(train, 0, train->n_questions, &o, &mem, &query, &answer);
 *   ...
 *   cx_tensor_free(mem); cx_tensor_free(query); cx_tensor_free(answer);
 *   cx_babi_set_free(train); cx_babi_set_free(test); cx_babi_vocab_free(v);
 *
 * ---------------------------------------------------------------- the format
 * Every line is "ID text", ID a decimal number (1 .. 10^9) followed by one
 * space. ID 1 starts a new story; within a story the IDs must increase (the
 * released files number them 1, 2, 3, ...; gaps are accepted). Two kinds of
 * line:
 *   statement  "ID sentence."                       e.g. "1 Mary moved to the bathroom."
 *   question   "ID question?<TAB>answer<TAB>ids"    e.g. "3 Where is Mary? \tbathroom\t1"
 * The answer is one word or a comma-separated list ("apple,football" in task
 * 8, "n,e" in task 19). The supporting-fact ids are the IDs of earlier
 * statements of the same story, separated by spaces; the field may be empty
 * or absent (zero supporting facts). Line ends may be "\n" or "\r\n"; the last
 * line need not end with one. Blank (all-whitespace) lines and a UTF-8
 * byte-order mark at the start are skipped.
 *
 * Tokens (as MemN2N's and Keras' loaders): the text is lower-cased (ASCII);
 * words are the maximal runs of characters other than whitespace and
 * . ? ! , ; : -- those characters are dropped (MemN2N drops the final "." of
 * a statement and "?" of a question; bAbI sentences hold no other
 * punctuation). Answers are lower-cased and split at commas, each part
 * trimmed of whitespace, into the answer words.
 *
 * A question sees the statements before it in its story (its "facts": the
 * first n_facts statements of the story); questions are not facts. Supporting
 * ids become 0-based statement indices into the story (and so into the facts
 * of the question).
 *
 * Errors (CX_ERR_FORMAT, nothing allocated, the vocabulary unchanged) name
 * the file and line: "qa1_train.txt:7: ...". They cover: a line without an ID,
 * an ID of 0 or not increasing within a story, a first story not starting at
 * 1, an empty sentence or question, a line whose text ends with "?" but has
 * no tab-separated answer, an empty answer (or answer word), more than three
 * tab-separated fields, a supporting id that is not a number, points to a
 * question, to itself or a later line, or to no line of the story, a NUL
 * byte, a file without questions. A missing or unreadable file gives
 * CX_ERR_IO naming it. */
#ifndef CORTEX_BABI_H
#define CORTEX_BABI_H
#include "core.h"
#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ vocabulary */
#define CX_BABI_NIL 0   /* the padding word, "<nil>" */

/* Words <-> ids. Id 0 is "<nil>"; the others are numbered in order of first
 * appearance (statements, questions and answer words of each line in file
 * order; then, for a comma-separated answer, the whole answer as one word,
 * e.g. "apple,football": the answer class, see cx_babi_question.answer_id).
 * The same files in the same order give the same ids. */
typedef struct cx_babi_vocab cx_babi_vocab;
cx_babi_vocab *cx_babi_vocab_new(void);
void cx_babi_vocab_free(cx_babi_vocab *v);   /* NULL is fine */
int cx_babi_vocab_size(const cx_babi_vocab *v);
/* The word of an id (NULL if out of range); the string lives as long as v. */
const char *cx_babi_vocab_word(const cx_babi_vocab *v, int id);
/* The id of a word (exact, lower-case), -1 if absent. */
int cx_babi_vocab_find(const cx_babi_vocab *v, const char *word);

/* Words not yet in the vocabulary. Build it from the training file with
 * CX_BABI_UNK_ADD; for the test file, ADD extends it (what MemN2N's loaders
 * do: their vocabulary spans train and test; task 8's test file holds answer
 * lists not in the training file), ERROR rejects the file naming the line and
 * the word. */
typedef enum { CX_BABI_UNK_ADD = 0, CX_BABI_UNK_ERROR = 1 } cx_babi_unknown;

/* ================================================================ parsed files */
typedef struct cx_babi_sentence {
    const int32_t *ids;     /* word ids (into the set's token pool) */
    int len;                /* >= 1 */
    int line;               /* 1-based line number in the file */
} cx_babi_sentence;

typedef struct cx_babi_question {
    int story;              /* index into stories */
    int n_facts;            /* statements of the story before the question */
    const int32_t *query;   /* question word ids */
    int query_len;          /* >= 1 */
    const int32_t *answer;  /* the answer words' ids ("apple,football": 2 ids) */
    int answer_len;         /* >= 1 */
    int32_t answer_id;      /* the whole answer as one word (= answer[0] when answer_len is 1) */
    const int *support;     /* supporting statements: indices into the story's statements */
    int n_support;
    int line;               /* 1-based line number in the file */
} cx_babi_question;

typedef struct cx_babi_story {
    int first_sentence;     /* its statements: sentences[first_sentence .. + n_sentences - 1] */
    int n_sentences;
    int first_question;     /* its questions: questions[first_question .. + n_questions - 1] */
    int n_questions;
    int line;               /* line of its first line */
} cx_babi_story;

typedef struct cx_babi_set {
    char *name;             /* the file name (or the name given to cx_babi_parse) */
    int n_stories, n_sentences, n_questions;
    cx_babi_story *stories;
    cx_babi_sentence *sentences;    /* the statements of all stories, in file order */
    cx_babi_question *questions;    /* in file order */
    int max_sentence_len;   /* longest statement (words) */
    int max_query_len;      /* longest question */
    int max_facts;          /* most facts before a question */
    int max_answer_len;     /* most answer words */
    /* owned storage behind the pointers above */
    int32_t *tokens;
    int *support_pool;
} cx_babi_set;

/* Parses a bAbI file. vocab (required) is extended or checked per `unk`.
 * On error *out is NULL, vocab is as before, and the message names
 * path:line and the problem. */
cx_status cx_babi_load(const char *path, cx_babi_vocab *vocab, cx_babi_unknown unk, cx_babi_set **out);
/* The same from text[0 .. n-1]; `name` (NULL: "<memory>") stands for the
 * file name in messages and set->name. */
cx_status cx_babi_parse(const char *text, size_t n, const char *name, cx_babi_vocab *vocab,
                        cx_babi_unknown unk, cx_babi_set **out);
void cx_babi_set_free(cx_babi_set *s);      /* NULL is fine */

/* Writes question q (facts, question, answer, supporting ids) as text, one
 * item a line, into out (at most cap bytes, always NUL-terminated when cap > 0).
 * Returns the length it needed (like snprintf). */
int cx_babi_format_question(const cx_babi_set *s, const cx_babi_vocab *v, int q, char *out, size_t cap);

/* ================================================================ tensors */
typedef struct cx_babi_tensor_opts {
    int memory;         /* M: memory slots; <= 0: the most facts of the chosen questions */
    int sentence_len;   /* L: words per slot and per query; <= 0: the longest statement
                           or question among the chosen questions */
    bool recent_first;  /* row 0 = the most recent fact (default false: oldest first) */
} cx_babi_tensor_opts;
cx_babi_tensor_opts cx_babi_tensor_defaults(void);  /* 0, 0, false */

/* Questions first .. first + n - 1 as persistent I32 tensors (owned by the
 * caller, cx_tensor_free):
 *   memory [n, M, L]  each question's last min(n_facts, M) facts (older ones
 *                     are dropped), in story order (oldest in row 0) or, with
 *                     recent_first, newest in row 0; the rows after them are
 *                     all 0; each fact's first min(len, L) words, then 0s;
 *   query  [n, L]     the question's first min(len, L) words, then 0s;
 *   answer [n]        answer_id.
 * M and L are at least 1. Errors (CX_ERR_ARG, outputs NULL): NULL pointers,
 * a range outside the set, n < 1. */
cx_status cx_babi_tensors(const cx_babi_set *s, int first, int n, const cx_babi_tensor_opts *opts,
                          cx_tensor **memory, cx_tensor **query, cx_tensor **answer);

/* ================================================================ sequences */
/* Stories as word sequences for a recurrent reader (the DNC paper's bAbI
 * setting, Graves et al. 2016): each story is one sequence of word ids, its
 * statements and questions in file order, every statement followed by the
 * token ".", every question by "?" and then one answer step "-", where the
 * model is to output the answer (the answer is not fed back). Words keep
 * their vocabulary ids; the three extra tokens come after a vocabulary of
 * vocab_size words:
 *   vocab_size + CX_BABI_SEQ_STOP    "."
 *   vocab_size + CX_BABI_SEQ_QUERY   "?"
 *   vocab_size + CX_BABI_SEQ_ANSWER  "-"
 * so an embedding needs vocab_size + CX_BABI_SEQ_EXTRA rows. A story's
 * sequence ends at its last answer step (statements after its last question
 * are left out). Stories first .. first + n - 1 give persistent I32 tensors
 * (owned by the caller, cx_tensor_free), time-major:
 *   tokens  [T, n]  token ids, CX_BABI_NIL after a sequence's end;
 *   targets [T, n]  at each answer step the question's answer_id (a
 *                   comma-separated answer is one class), -100 elsewhere
 *                   (cx_seq_cross_entropy's ignored value);
 * T the longest sequence among them; lengths (NULL or n ints) receives each
 * sequence's length. Errors (CX_ERR_ARG, outputs NULL): NULL s / tokens /
 * targets, a range outside the stories, n < 1, vocab_size smaller than an id
 * of the set or too large. */
#define CX_BABI_SEQ_STOP 0
#define CX_BABI_SEQ_QUERY 1
#define CX_BABI_SEQ_ANSWER 2
#define CX_BABI_SEQ_EXTRA 3
cx_status cx_babi_sequences(const cx_babi_set *s, int first, int n, int vocab_size, cx_tensor **tokens,
                            cx_tensor **targets, int *lengths);

/* ================================================================ generator */
/* The data set is in no package registry, so the tasks are generated here in
 * the released format, with the published vocabulary and templates, from one
 * cx_rng stream seeded by `seed` (its own stream: the default one is not
 * touched). The same task, count and seed give the same text; fewer
 * questions give a prefix of it. The released 1k and 10k training files
 * hold 1000 and 10000 questions. Stories number their lines from 1; the last
 * story holds the remainder of n_questions. The rules follow Facebook's
 * original generator (facebookarchive/bAbI-tasks) and, where the released
 * v1.2 files differ from it, the released files (src/data/babi_gen*.c say
 * which and what had to be chosen). Supported tasks:
 *
 *  1 single supporting fact: actors Mary, John, Sandra, Daniel; places
 *    bathroom, hallway, office, kitchen, garden, bedroom; "X moved/went/
 *    journeyed/travelled/went back to the P." (never to X's current place;
 *    before their first move the actors are, unstated, where the original's
 *    world puts them: Mary bedroom, John kitchen, Sandra garden, Daniel
 *    hallway). Two moves then "Where is X?", five times a story:
 *      1 Mary moved to the bathroom.
 *      2 John went to the hallway.
 *      3 Where is Mary? \tbathroom\t1
 *  2 two supporting facts: also the objects apple, football, milk: "X got/
 *    grabbed/picked up/took the O there.", "X dropped/discarded/put down/left
 *    the O." (actors and objects start at unstated random places). "Where is
 *    the O?" once the story tells it; supporting ids: the get (or drop) line,
 *    then the holder's move. Five questions a story.
 *  3 three supporting facts: the world of 2; "Where was the O before the
 *    P?" (P the O's last told place, occurring once in its history), the
 *    answer its told place before; ids: the lines telling both places.
 *  4 two argument relations: "The office is north of the kitchen." (two
 *    relations of three places in a row, each stated with its end place as
 *    the subject 2/3 of the time), one question about one statement as
 *    written: its object named, its subject the answer ("What is north of
 *    the kitchen?" or "What is the kitchen south of?" -> office); id: that
 *    statement.
 *  5 three argument relations: actors Bill, Fred, Jeff, Mary; also "X gave/
 *    handed/passed the O to Y."; questions about the latest give: "What did X
 *    give to Y?", "Who gave the O?", "Who gave the O to Y?", "Who received
 *    the O?", "Who did X give the O to?"; id: the give.
 *  6 yes/no questions: the world of 2, two statements then "Is X in the
 *    P?" (yes or no, 1/2 each); id: X's last move.
 * 11 basic coreference: "Mary went to the kitchen." then "After that/
 *    Afterwards/Following that/Then she journeyed to the office.", then
 *    "Where is Mary?"; ids: both lines. Five times a story.
 * 12 conjunction: two "John and Mary went to the P." then "Where is X?"
 *    (X one of them); id: the later line naming X.
 * 13 compound coreference: "Mary and Daniel went to the P." then "Then
 *    they moved to the Q.", "Where is Daniel?"; ids: both lines.
 * 15 basic deduction: "Mice are afraid of wolves.", "Gertrude is a mouse."
 *    (eight statements, shuffled), then "What is gertrude afraid of?" for
 *    the four actors (answer in the singular: wolf); ids: the actor's line,
 *    the fear's line.
 * 16 basic induction: "Lily is a swan.", later "Lily is white." (five
 *    actors introduced one after another, colours per actor; nine
 *    statements), then "What color is Brian?" (one a story; the actor whose
 *    colour is not stated; exactly one other actor is of his animal, and
 *    the answer is that actor's colour); ids: Brian's animal line, the
 *    other actor's animal line and colour line.
 *
 * *text (malloc'd, NUL-terminated, the caller frees it) holds
 * n_questions questions; *len (may be NULL) its length. Errors (CX_ERR_ARG,
 * *text NULL): a task other than the supported ones (the message lists
 * them), n_questions outside [1, CX_BABI_GEN_MAX], NULL text. */
#define CX_BABI_GEN_MAX 10000000
cx_status cx_babi_generate(int task, int n_questions, uint64_t seed, char **text, size_t *len);

/* The same for a split: CX_BABI_TRAIN is cx_babi_generate; CX_BABI_TEST
 * draws from another stream derived from the seed (cx_rng_split of the
 * training one: another PCG increment), so a seed gives a training file and
 * a test file that are not slices of one sequence (the released test files
 * hold 1000 questions). Stories may still coincide by chance where a task
 * has few (task 4). Errors as cx_babi_generate, and CX_ERR_ARG for a split
 * other than the two. */
typedef enum { CX_BABI_TRAIN = 0, CX_BABI_TEST = 1 } cx_babi_split;
cx_status cx_babi_generate_split(int task, cx_babi_split split, int n_questions, uint64_t seed, char **text,
                                 size_t *len);

#ifdef __cplusplus
}
#endif
#endif
