/* bAbI task generator (cortex/babi.h, cx_babi_generate): stories in the
 * released format of tasks_1-20_v1-2 (Weston et al. 2015), drawn from one
 * cx_rng stream seeded by the caller. This file: the shared output helpers,
 * task 1 and the dispatch; the other tasks are in babi_gen_world.c (2, 3, 5,
 * 6), babi_gen_coref.c (11, 12, 13) and babi_gen_logic.c (4, 15, 16).
 *
 * The rules follow Facebook's original generator (the Lua project
 * facebookarchive/bAbI-tasks: lua/babi/tasks/, actions.lua,
 * stringify.lua, worlds/world_basic.txt) and, where the released v1.2 files
 * differ from that code (they were made by an earlier version: more verbs,
 * "there" after a get, more question forms), the released files. Each
 * task's comment says which rule came from where and what had to be chosen. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "babi_gen.h"
#include "../tensor/internal.h"

const char *const cx_babigen_places[6] = {"bathroom", "hallway", "office", "kitchen", "garden", "bedroom"};
const char *const cx_babigen_moves[5] = {"moved", "went", "journeyed", "travelled", "went back"};

void cx_babigen_printf(cx_babigen_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if (b->buf && b->len + (size_t)k < b->cap) { b->len += (size_t)k; return; }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)k + 1) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) { b->oom = true; return; }
        b->buf = nb;
        b->cap = cap;
    }
}

int cx_babigen_statement(cx_babigen *g, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int id = g->next_id++;
    cx_babigen_printf(g->b, "%d %s.\n", id, line);
    return id;
}

void cx_babigen_question(cx_babigen *g, const char *question, const char *answer, const int *ids, int n_ids) {
    cx_babigen_printf(g->b, "%d %s? \t%s\t", g->next_id++, question, answer);
    for (int i = 0; i < n_ids; i++) cx_babigen_printf(g->b, i ? " %d" : "%d", ids[i]);
    cx_babigen_printf(g->b, "\n");
    g->asked++;
}

int cx_babigen_pick(cx_babigen *g, int n) { return (int)cx_rng_below(g->r, (uint32_t)n); }

void cx_babigen_shuffle(cx_babigen *g, int *v, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = cx_babigen_pick(g, i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ---------------------------------------------------------------- task 1
 * Single supporting fact (WhereIsActor.lua): stories of two movement
 * statements then "Where is X?", five questions a story (the last story
 * holds the remainder); X is one of the actors who have moved so far, the
 * answer the place of their last move, the supporting id that move's line.
 * A move never names the actor's current place, stated or not (as the
 * original generator's teleport action, which samples an actor and a place
 * and rejects that pair); before their first move the actors are where
 * world_basic puts them: Mary bedroom, John kitchen, Sandra garden, Daniel
 * hallway. */
static const char *const ACTORS1[] = {"Mary", "John", "Sandra", "Daniel"};
static const int START1[] = {5, 3, 4, 1};

static void gen_task1(cx_babigen *g) {
    while (g->asked < g->n) {
        int place[4], fact[4];
        g->next_id = 1;
        for (int a = 0; a < 4; a++) place[a] = START1[a], fact[a] = 0;
        for (int q = 0; q < 5 && g->asked < g->n; q++) {
            for (int s = 0; s < 2; s++) {
                int a, p;
                do {    /* a uniform (actor, place) pair among the valid moves */
                    a = cx_babigen_pick(g, 4);
                    p = cx_babigen_pick(g, 6);
                } while (p == place[a]);
                int v = cx_babigen_pick(g, 5);
                place[a] = p;
                fact[a] = cx_babigen_statement(g, "%s %s to the %s", ACTORS1[a], cx_babigen_moves[v],
                                               cx_babigen_places[p]);
            }
            int known[4], nk = 0;
            for (int a = 0; a < 4; a++)
                if (fact[a]) known[nk++] = a;
            int a = known[cx_babigen_pick(g, nk)];
            char qs[64];
            snprintf(qs, sizeof qs, "Where is %s", ACTORS1[a]);
            cx_babigen_question(g, qs, cx_babigen_places[place[a]], &fact[a], 1);
        }
    }
}

typedef void (*gen_fn)(cx_babigen *g);
static const struct { int task; gen_fn fn; } TASKS[] = {
    {1, gen_task1},          {2, cx_babigen_task2},   {3, cx_babigen_task3},   {4, cx_babigen_task4},
    {5, cx_babigen_task5},   {6, cx_babigen_task6},   {11, cx_babigen_task11}, {12, cx_babigen_task12},
    {13, cx_babigen_task13}, {15, cx_babigen_task15}, {16, cx_babigen_task16},
};
#define N_TASKS ((int)(sizeof TASKS / sizeof *TASKS))

cx_status cx_babi_generate_split(int task, cx_babi_split split, int n_questions, uint64_t seed, char **text,
                                 size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!text) return cx_set_error(CX_ERR_ARG, "cx_babi_generate: NULL output");
    gen_fn fn = NULL;
    for (int i = 0; i < N_TASKS; i++)
        if (TASKS[i].task == task) fn = TASKS[i].fn;
    if (!fn)
        return cx_set_error(CX_ERR_ARG,
                            "cx_babi_generate: task %d is not supported (supported: 1, 2, 3, 4, 5, 6, 11, 12, "
                            "13, 15, 16)",
                            task);
    if (n_questions < 1 || n_questions > CX_BABI_GEN_MAX)
        return cx_set_error(CX_ERR_ARG, "cx_babi_generate: question count %d outside [1, %d]", n_questions,
                            CX_BABI_GEN_MAX);
    if (split != CX_BABI_TRAIN && split != CX_BABI_TEST)
        return cx_set_error(CX_ERR_ARG, "cx_babi_generate: split %d is neither CX_BABI_TRAIN nor CX_BABI_TEST",
                            (int)split);
    cx_rng r = cx_rng_new(seed);
    if (split == CX_BABI_TEST) r = cx_rng_split(&r);   /* another PCG stream (another increment) */
    cx_babigen_buf b = {0};
    cx_babigen g = {&b, &r, 1, 0, n_questions};
    fn(&g);
    if (b.oom) {
        free(b.buf);
        return cx_set_error(CX_ERR_NOMEM, "cx_babi_generate: out of memory");
    }
    *text = b.buf;
    if (len) *len = b.len;
    return CX_OK;
}

cx_status cx_babi_generate(int task, int n_questions, uint64_t seed, char **text, size_t *len) {
    return cx_babi_generate_split(task, CX_BABI_TRAIN, n_questions, seed, text, len);
}
