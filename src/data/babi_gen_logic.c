/* bAbI generator, the tasks without a moving world: 4 (two argument
 * relations), 15 (basic deduction) and 16 (basic induction). See
 * babi_gen.c. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "babi_gen.h"

/* ---------------------------------------------------------------- task 4
 * Two argument relations (IsDir.lua): three different places A, B, C of
 * the six in a row along north (or east, drawn 1/2): "A is north of B", "B
 * is north of C", the two stated in random order, each in one of the two
 * forms of the Dir template drawn 1/2 ("The A is north of the B." or "The B
 * is south of the A."). One question a story, about one of the two
 * relations (1/2 each: the one of C, asked with the row's direction, or the
 * one of A, asked with the opposite one), in one of the four EvalDir forms
 * drawn uniformly; for "B is north of C":
 *   What is north of the C? -> B        What is south of the B? -> C
 *   What is the B north of? -> C        What is the C south of? -> B
 * The supporting id is the line of that relation. */
static const char *const DIR_NAME[4] = {"north", "south", "east", "west"};   /* opposite: d ^ 1 */

static int relation_line(cx_babigen *g, int x, int d, int y) {
    if (cx_babigen_pick(g, 2))
        return cx_babigen_statement(g, "The %s is %s of the %s", cx_babigen_places[x], DIR_NAME[d],
                                    cx_babigen_places[y]);
    return cx_babigen_statement(g, "The %s is %s of the %s", cx_babigen_places[y], DIR_NAME[d ^ 1],
                                cx_babigen_places[x]);
}

void cx_babigen_task4(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        int l[3];
        l[0] = cx_babigen_pick(g, 6);
        do l[1] = cx_babigen_pick(g, 6); while (l[1] == l[0]);
        do l[2] = cx_babigen_pick(g, 6); while (l[2] == l[0] || l[2] == l[1]);
        int dir = cx_babigen_pick(g, 2) ? 2 : 0;   /* north or east */
        int line[2];                               /* line[0]: "l0 dir l1", line[1]: "l1 dir l2" */
        if (cx_babigen_pick(g, 2)) {
            line[1] = relation_line(g, l[1], dir, l[2]);
            line[0] = relation_line(g, l[0], dir, l[1]);
        } else {
            line[0] = relation_line(g, l[0], dir, l[1]);
            line[1] = relation_line(g, l[1], dir, l[2]);
        }
        /* the asked relation: "x is d of y" */
        int x = l[1], d, y, sup;
        if (cx_babigen_pick(g, 2)) d = dir, y = l[2], sup = line[1];
        else d = dir ^ 1, y = l[0], sup = line[0];
        char qs[80];
        const char *ans;
        switch (cx_babigen_pick(g, 4)) {
        case 0: snprintf(qs, sizeof qs, "What is %s of the %s", DIR_NAME[d], cx_babigen_places[y]), ans = cx_babigen_places[x]; break;
        case 1: snprintf(qs, sizeof qs, "What is %s of the %s", DIR_NAME[d ^ 1], cx_babigen_places[x]), ans = cx_babigen_places[y]; break;
        case 2: snprintf(qs, sizeof qs, "What is the %s %s of", cx_babigen_places[x], DIR_NAME[d]), ans = cx_babigen_places[y]; break;
        default: snprintf(qs, sizeof qs, "What is the %s %s of", cx_babigen_places[y], DIR_NAME[d ^ 1]), ans = cx_babigen_places[x]; break;
        }
        cx_babigen_question(g, qs, ans, &sup, 1);
    }
}

/* ---------------------------------------------------------------- task 15
 * Basic deduction (Deduction.lua): the animals mouse (mice), sheep (sheep),
 * wolf (wolves), cat (cats) and the actors Gertrude, Winona, Jessica,
 * Emily. Each animal fears one other animal, drawn uniformly ("Mice are
 * afraid of wolves."); each actor is one animal ("Gertrude is a mouse.");
 * the eight statements in random order, then the four questions "What is
 * gertrude afraid of?" (the name lower-case, as in the released files) in
 * random order, answer the feared animal in the singular, supporting ids
 * the actor's line then the fear's line.
 * Choice, from the released files: the actors' animals are drawn uniformly
 * and independently (several actors may be the same animal: "Gertrude is a
 * cat. Winona is a cat." in qa15); the Lua draws a permutation. */
static const char *const ANIMAL15[4] = {"mouse", "sheep", "wolf", "cat"};
static const char *const PLURAL15[4] = {"Mice", "Sheep", "Wolves", "Cats"};
static const char *const PLURAL15L[4] = {"mice", "sheep", "wolves", "cats"};
static const char *const ACTORS15[4] = {"Gertrude", "Winona", "Jessica", "Emily"};

void cx_babigen_task15(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        int is[4], fear[4], order[8], is_line[4], fear_line[4];
        for (int x = 0; x < 4; x++) fear[x] = (x + 1 + cx_babigen_pick(g, 3)) % 4;
        for (int a = 0; a < 4; a++) is[a] = cx_babigen_pick(g, 4);
        for (int i = 0; i < 8; i++) order[i] = i;
        cx_babigen_shuffle(g, order, 8);
        for (int i = 0; i < 8; i++) {
            int k = order[i];
            if (k < 4) is_line[k] = cx_babigen_statement(g, "%s is a %s", ACTORS15[k], ANIMAL15[is[k]]);
            else fear_line[k - 4] = cx_babigen_statement(g, "%s are afraid of %s", PLURAL15[k - 4], PLURAL15L[fear[k - 4]]);
        }
        int ask[4] = {0, 1, 2, 3};
        cx_babigen_shuffle(g, ask, 4);
        for (int i = 0; i < 4 && g->asked < g->n; i++) {
            int a = ask[i], sup[2] = {is_line[a], fear_line[is[a]]};
            char name[16], qs[64];
            snprintf(name, sizeof name, "%s", ACTORS15[a]);
            for (char *c = name; *c; c++) *c = (char)tolower((unsigned char)*c);
            snprintf(qs, sizeof qs, "What is %s afraid of", name);
            cx_babigen_question(g, qs, ANIMAL15[fear[is[a]]], sup, 2);
        }
    }
}

/* ---------------------------------------------------------------- task 16
 * Basic induction (Induction.lua): the animals swan, lion, frog, rhino,
 * each a different colour of gray, white, yellow, green (a random
 * permutation); the actors Lily, Bernhard, Greg, Julius, Brian, each an
 * animal drawn uniformly; one actor Z is asked about, and Z's animal is
 * drawn again until another actor is the same animal. The statements: every
 * actor's animal ("Lily is a swan.") and every actor's colour but Z's
 * ("Lily is white."), nine in random order; then "What color is Z?" (one
 * question a story), answer the colour of Z's animal, supporting ids (in
 * increasing order) Z's animal line and the animal and colour lines of
 * every other actor of that animal. */
static const char *const ANIMAL16[4] = {"swan", "lion", "frog", "rhino"};
static const char *const COLOR16[4] = {"gray", "white", "yellow", "green"};
static const char *const ACTORS16[5] = {"Lily", "Bernhard", "Greg", "Julius", "Brian"};

void cx_babigen_task16(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        int color[4] = {0, 1, 2, 3}, animal[5], order[10], is_line[5], color_line[5];
        cx_babigen_shuffle(g, color, 4);
        for (int a = 0; a < 5; a++) animal[a] = cx_babigen_pick(g, 4);
        int z = cx_babigen_pick(g, 5);
        for (;;) {
            int same = 0;
            for (int a = 0; a < 5; a++) same += a != z && animal[a] == animal[z];
            if (same) break;
            animal[z] = cx_babigen_pick(g, 4);
        }
        int n = 0;
        for (int k = 0; k < 10; k++)
            if (k != z) order[n++] = k;   /* k < 5: actor k's colour; k >= 5: actor k-5's animal */
        cx_babigen_shuffle(g, order, 9);
        for (int i = 0; i < 9; i++) {
            int k = order[i];
            if (k < 5) color_line[k] = cx_babigen_statement(g, "%s is %s", ACTORS16[k], COLOR16[color[animal[k]]]);
            else is_line[k - 5] = cx_babigen_statement(g, "%s is a %s", ACTORS16[k - 5], ANIMAL16[animal[k - 5]]);
        }
        int sup[9], ns = 0;
        sup[ns++] = is_line[z];
        for (int a = 0; a < 5; a++)
            if (a != z && animal[a] == animal[z]) sup[ns++] = is_line[a], sup[ns++] = color_line[a];
        for (int i = 1; i < ns; i++)
            for (int j = i; j > 0 && sup[j - 1] > sup[j]; j--) {
                int t = sup[j];
                sup[j] = sup[j - 1];
                sup[j - 1] = t;
            }
        char qs[64];
        snprintf(qs, sizeof qs, "What color is %s", ACTORS16[z]);
        cx_babigen_question(g, qs, COLOR16[color[animal[z]]], sup, ns);
    }
}
