/* bAbI task generator (cortex/babi.h, cx_babi_generate): stories in the
 * released format of tasks_1-20_v1-2 (Weston et al. 2015), drawn from one
 * cx_rng stream seeded by the caller. Supported: task 1 (single supporting
 * fact). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tensor/internal.h"

static const char *const ACTORS[] = {"Mary", "John", "Sandra", "Daniel"};
static const char *const PLACES[] = {"bathroom", "hallway", "office", "kitchen", "garden", "bedroom"};
static const char *const MOVES[] = {"moved", "went", "journeyed", "travelled", "went back"};
/* Where each story's world puts the actors before the first line (unstated:
 * the original generator's world_basic: Mary bedroom, John kitchen, Sandra
 * garden, Daniel hallway); a first move never goes there. */
static const int START[] = {5, 3, 4, 1};
#define N_ACTORS 4
#define N_PLACES 6
#define N_MOVES 5

typedef struct {
    char *buf;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
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

/* Task 1: stories of two movement statements then "Where is X?", five
 * questions a story (the last story holds the remainder); X is one of the
 * actors who have moved so far, the answer the place of their last move,
 * the supporting id that move's line. A move never names the actor's current
 * place, stated or not (as the original generator's teleport action, which
 * samples an actor and a place and rejects that pair). */
static void gen_task1(sbuf *b, int n_questions, cx_rng *r) {
    int asked = 0;
    while (asked < n_questions) {
        int place[N_ACTORS], fact[N_ACTORS], id = 1;
        for (int a = 0; a < N_ACTORS; a++) place[a] = START[a], fact[a] = 0;
        for (int q = 0; q < 5 && asked < n_questions; q++, asked++) {
            for (int s = 0; s < 2; s++) {
                int a, p;
                do {    /* a uniform (actor, place) pair among the valid moves */
                    a = (int)cx_rng_below(r, N_ACTORS);
                    p = (int)cx_rng_below(r, N_PLACES);
                } while (p == place[a]);
                int v = (int)cx_rng_below(r, N_MOVES);
                place[a] = p;
                fact[a] = id;
                sb_printf(b, "%d %s %s to the %s.\n", id++, ACTORS[a], MOVES[v], PLACES[p]);
            }
            int known[N_ACTORS], nk = 0;
            for (int a = 0; a < N_ACTORS; a++)
                if (fact[a]) known[nk++] = a;
            int a = known[cx_rng_below(r, (uint32_t)nk)];
            sb_printf(b, "%d Where is %s? \t%s\t%d\n", id++, ACTORS[a], PLACES[place[a]], fact[a]);
        }
    }
}

cx_status cx_babi_generate(int task, int n_questions, uint64_t seed, char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!text) return cx_set_error(CX_ERR_ARG, "cx_babi_generate: NULL output");
    if (task != 1)
        return cx_set_error(CX_ERR_ARG, "cx_babi_generate: task %d is not supported (supported: 1)", task);
    if (n_questions < 1 || n_questions > CX_BABI_GEN_MAX)
        return cx_set_error(CX_ERR_ARG, "cx_babi_generate: question count %d outside [1, %d]", n_questions,
                            CX_BABI_GEN_MAX);
    cx_rng r = cx_rng_new(seed);
    sbuf b = {0};
    gen_task1(&b, n_questions, &r);
    if (b.oom) {
        free(b.buf);
        return cx_set_error(CX_ERR_NOMEM, "cx_babi_generate: out of memory");
    }
    *text = b.buf;
    if (len) *len = b.len;
    return CX_OK;
}
