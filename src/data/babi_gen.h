/* Internals of the bAbI generator (cx_babi_generate in cortex/babi.h): the
 * output buffer, story line numbering and the per-task generators, split
 * over babi_gen.c (tasks 1, API), babi_gen_world.c (tasks 2, 3, 5, 6: actors
 * moving and handling objects), babi_gen_coref.c (tasks 11, 12, 13) and
 * babi_gen_logic.c (tasks 4, 15, 16). Not public API. */
#ifndef CX_BABI_GEN_H
#define CX_BABI_GEN_H
#include <stdbool.h>
#include <stddef.h>

#include <cortex.h>

/* A growing text buffer; out of memory sets oom and stops writing. */
typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} cx_babigen_buf;
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void cx_babigen_printf(cx_babigen_buf *b, const char *fmt, ...);

/* One story being written: `next_id` is the ID of its next line (1 at the
 * start); `asked`/`n` count the questions written so far / wanted in all. */
typedef struct {
    cx_babigen_buf *b;
    cx_rng *r;
    int next_id;
    int asked, n;
} cx_babigen;

/* Writes "ID text.\n" and returns ID. */
int cx_babigen_statement(cx_babigen *g, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Writes "ID question? \tanswer\tids\n" (ids: the supporting line IDs in the
 * given order) and counts the question. */
void cx_babigen_question(cx_babigen *g, const char *question, const char *answer, const int *ids, int n_ids);
/* A uniform integer in [0, n). */
int cx_babigen_pick(cx_babigen *g, int n);
/* Shuffles v[0 .. n-1] (Fisher-Yates). */
void cx_babigen_shuffle(cx_babigen *g, int *v, int n);

/* The shared vocabulary of the "world" tasks (world_basic of the original
 * generator): four actors, six places, the five ways to move. */
extern const char *const cx_babigen_places[6];
extern const char *const cx_babigen_moves[5];

/* The task generators: each writes stories until g->asked == g->n. */
void cx_babigen_task2(cx_babigen *g);
void cx_babigen_task3(cx_babigen *g);
void cx_babigen_task4(cx_babigen *g);
void cx_babigen_task5(cx_babigen *g);
void cx_babigen_task6(cx_babigen *g);
void cx_babigen_task11(cx_babigen *g);
void cx_babigen_task12(cx_babigen *g);
void cx_babigen_task13(cx_babigen *g);
void cx_babigen_task15(cx_babigen *g);
void cx_babigen_task16(cx_babigen *g);
#endif
