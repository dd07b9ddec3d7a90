/* bAbI generator, the tasks about actors moving with coreference and
 * conjunction: 11 (basic coreference), 12 (conjunction) and 13 (compound
 * coreference). See babi_gen.c. Actors Mary, Sandra (she), John, Daniel
 * (he); the six places; the five ways to move of task 1 ("moved", "went",
 * "journeyed", "travelled", "went back"). Each story is five times: two
 * statements, then a question about an actor of those two statements. */
#include <stdio.h>

#include "babi_gen.h"

static const char *const ACTORS[4] = {"Mary", "John", "Sandra", "Daniel"};
static const char *const PRONOUN[4] = {"she", "he", "she", "he"};
/* world_basic's unstated places: Mary bedroom, John kitchen, Sandra garden, Daniel hallway */
static const int START[4] = {5, 3, 4, 1};
/* The adverbs of the original's CoreferenceTeleport and
 * CompoundCoreferenceTeleport templates, with "Afterwards" of the released
 * files. */
static const char *const ADVERBS[4] = {"After that", "Afterwards", "Following that", "Then"};

static const char *move_verb(cx_babigen *g) { return cx_babigen_moves[cx_babigen_pick(g, 5)]; }

/* Two different actors, in random order. */
static void two_actors(cx_babigen *g, int *a, int *b) {
    *a = cx_babigen_pick(g, 4);
    *b = (*a + 1 + cx_babigen_pick(g, 3)) % 4;
}

/* ---------------------------------------------------------------- task 11
 * Basic coreference (BasicCoreference.lua): a move of an actor X drawn
 * with a place as in task 1 (uniform among the valid pairs: never X's
 * current place, before X's first move the world_basic one), then X moves
 * again, to another place, told with a pronoun:
 *   1 Daniel went back to the kitchen.
 *   2 Following that he travelled to the office.
 *   3 Where is Daniel? \toffice\t1 2
 * The answer is the second place; the supporting ids are both lines (the
 * original's Question holds the pronoun's clause, and the coreference links
 * it to the first; the second alone does not say who moved). */
void cx_babigen_task11(cx_babigen *g) {
    while (g->asked < g->n) {
        int place[4];
        g->next_id = 1;
        for (int a = 0; a < 4; a++) place[a] = START[a];
        for (int q = 0; q < 5 && g->asked < g->n; q++) {
            int a, p;
            do {
                a = cx_babigen_pick(g, 4);
                p = cx_babigen_pick(g, 6);
            } while (p == place[a]);
            int sup[2];
            sup[0] = cx_babigen_statement(g, "%s %s to the %s", ACTORS[a], move_verb(g), cx_babigen_places[p]);
            int p2 = (p + 1 + cx_babigen_pick(g, 5)) % 6;
            const char *adv = ADVERBS[cx_babigen_pick(g, 4)];
            sup[1] = cx_babigen_statement(g, "%s %s %s to the %s", adv, PRONOUN[a], move_verb(g),
                                          cx_babigen_places[p2]);
            place[a] = p2;
            char qs[64];
            snprintf(qs, sizeof qs, "Where is %s", ACTORS[a]);
            cx_babigen_question(g, qs, cx_babigen_places[p2], sup, 2);
        }
    }
}

/* ---------------------------------------------------------------- task 12
 * Conjunction (Conjunction.lua): two statements "X and Y moved to the P."
 * (two different actors each, the two statements to two different places,
 * names in random order), then "Where is Z?" for Z one of the four named
 * actors (uniformly; an actor named in both counts twice, as in the
 * original). The answer is Z's place after the two statements; the
 * supporting id the later of them naming Z. As the original, these moves
 * are not checked against the actors' places: "X and Y went to the P" may
 * name a place where X already is. */
void cx_babigen_task12(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        for (int q = 0; q < 5 && g->asked < g->n; q++) {
            int who[4], fact[4] = {0}, place[4] = {0}, line[2];
            int p[2];
            p[0] = cx_babigen_pick(g, 6);
            p[1] = (p[0] + 1 + cx_babigen_pick(g, 5)) % 6;
            for (int s = 0; s < 2; s++) {
                two_actors(g, &who[2 * s], &who[2 * s + 1]);
                line[s] = cx_babigen_statement(g, "%s and %s %s to the %s", ACTORS[who[2 * s]],
                                               ACTORS[who[2 * s + 1]], move_verb(g), cx_babigen_places[p[s]]);
                place[who[2 * s]] = place[who[2 * s + 1]] = p[s];
                fact[who[2 * s]] = fact[who[2 * s + 1]] = line[s];
            }
            int z = who[cx_babigen_pick(g, 4)];
            char qs[64];
            snprintf(qs, sizeof qs, "Where is %s", ACTORS[z]);
            cx_babigen_question(g, qs, cx_babigen_places[place[z]], &fact[z], 1);
        }
    }
}

/* ---------------------------------------------------------------- task 13
 * Compound coreference (CompoundCoreference.lua): two different actors
 * move together to a place, then on to another place, told with "they":
 *   1 Mary and Daniel went to the bathroom.
 *   2 Then they journeyed to the hallway.
 *   3 Where is Daniel? \thallway\t1 2
 * (names in random order), then "Where is Z?" for Z one of the two. The
 * answer is the second place; the supporting ids both lines (the second
 * alone does not say who "they" are). As the original, the first move is
 * not checked against the actors' places. */
void cx_babigen_task13(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        for (int q = 0; q < 5 && g->asked < g->n; q++) {
            int a, b, sup[2];
            two_actors(g, &a, &b);
            int p = cx_babigen_pick(g, 6), p2 = (p + 1 + cx_babigen_pick(g, 5)) % 6;
            sup[0] = cx_babigen_statement(g, "%s and %s %s to the %s", ACTORS[a], ACTORS[b], move_verb(g),
                                          cx_babigen_places[p]);
            const char *adv = ADVERBS[cx_babigen_pick(g, 4)];
            sup[1] = cx_babigen_statement(g, "%s they %s to the %s", adv, move_verb(g), cx_babigen_places[p2]);
            int z = cx_babigen_pick(g, 2) ? b : a;
            char qs[64];
            snprintf(qs, sizeof qs, "Where is %s", ACTORS[z]);
            cx_babigen_question(g, qs, cx_babigen_places[p2], sup, 2);
        }
    }
}
