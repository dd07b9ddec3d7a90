/* bAbI generator, the tasks without a moving world: 4 (two argument
 * relations), 15 (basic deduction) and 16 (basic induction). See
 * babi_gen.c. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "babi_gen.h"

/* ---------------------------------------------------------------- task 4
 * Two argument relations. The places and the row follow IsDir.lua: three
 * different places A, B, C of the six in a row along north (or east, drawn
 * 1/2), the two relations "A is north of B" and "B is north of C" stated in
 * random order. The rest follows the released v1.2 files, which were not
 * made by that code (measured on 270 stories of qa4_two-arg-relations_train):
 *  - a relation is stated with its end place (A or C) as the subject ("The
 *    A is north of the B.") in 63% of the statements, the middle place B as
 *    the subject ("The B is south of the A.") in the rest; here the end
 *    place is the subject with probability 2/3, independently for the two
 *    (as when a statement names a place drawn uniformly from the three and
 *    then one of its neighbours);
 *  - the question is always about one statement (either, 1/2 each) as it
 *    is written: it names the statement's object and asks for its subject,
 *    "What is north of the B?" or "What is the B south of?" (1/2 each) for
 *    "The A is north of the B." -> A (270 of 270 stories; IsDir.lua asks
 *    about the middle place in any form, so half of its questions name the
 *    subject of the supporting statement and ask for the object, which the
 *    released files never do).
 * The supporting id is the line of that statement. */
static const char *const DIR_NAME[4] = {"north", "south", "east", "west"};   /* opposite: d ^ 1 */

/* States "x is d of y" with x as the subject with probability 2/3, else as
 * "y is (opposite d) of x"; returns the line's id and the written subject,
 * direction and object in s[0..2]. */
static int relation_line(cx_babigen *g, int x, int d, int y, int *s) {
    if (cx_babigen_pick(g, 3)) s[0] = x, s[1] = d, s[2] = y;
    else s[0] = y, s[1] = d ^ 1, s[2] = x;
    return cx_babigen_statement(g, "The %s is %s of the %s", cx_babigen_places[s[0]], DIR_NAME[s[1]],
                                cx_babigen_places[s[2]]);
}

void cx_babigen_task4(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        int l[3];
        l[0] = cx_babigen_pick(g, 6);
        do l[1] = cx_babigen_pick(g, 6); while (l[1] == l[0]);
        do l[2] = cx_babigen_pick(g, 6); while (l[2] == l[0] || l[2] == l[1]);
        int dir = cx_babigen_pick(g, 2) ? 2 : 0;   /* north or east */
        int line[2], said[2][3];                   /* [0]: "l0 dir l1" (end l0), [1]: "l2 (opposite) l1" (end l2) */
        int first = cx_babigen_pick(g, 2);
        for (int k = 0; k < 2; k++) {
            int r = k ^ first;
            line[r] = r == 0 ? relation_line(g, l[0], dir, l[1], said[0])
                             : relation_line(g, l[2], dir ^ 1, l[1], said[1]);
        }
        int r = cx_babigen_pick(g, 2);             /* the statement asked about */
        const int *s = said[r];
        char qs[80];
        if (cx_babigen_pick(g, 2))
            snprintf(qs, sizeof qs, "What is %s of the %s", DIR_NAME[s[1]], cx_babigen_places[s[2]]);
        else
            snprintf(qs, sizeof qs, "What is the %s %s of", cx_babigen_places[s[2]], DIR_NAME[s[1] ^ 1]);
        cx_babigen_question(g, qs, cx_babigen_places[s[0]], &line[r], 1);
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
 * Basic induction. The animals swan, lion, frog, rhino, the colours gray,
 * white, yellow, green and the actors Lily, Bernhard, Greg, Julius, Brian
 * are Induction.lua's; the story follows the released v1.2 files, which
 * were not made by that code (measured on 76 stories of
 * qa16_basic-induction_train):
 *  - a story introduces the five actors one after another ("Lily is a
 *    swan.") and later states each one's colour ("Lily is white."): every
 *    actor's colour line comes after their animal line (76 of 76). Here, as
 *    long as actors remain, the next one is introduced when no colour is
 *    pending or on a coin flip, otherwise the colour of a pending actor
 *    (drawn uniformly) is stated; after nine statements one colour is still
 *    pending, and that actor Z is asked about: "What color is Z?" (one
 *    question a story). This reproduces the files' placement: Z's line is
 *    the ninth in 28% of their stories (27% here), an actor's colour line
 *    follows their animal line directly in 35% (44% here);
 *  - colours belong to actors, not animals: two actors of one animal may
 *    have different colours (Induction.lua gives each animal one colour).
 *    Here each actor's colour is drawn uniformly, so 3/4 of the pairs of
 *    actors of one animal differ; in the files half do (51 of 102 pairs),
 *    a leaning this generator does not copy;
 *  - exactly one other actor S is of Z's animal in 66 of the 76 stories
 *    (the rest have three or four; the answer is then the colour of the one
 *    introduced last, in 76 of 76). Here always exactly one: S is drawn
 *    uniformly among the other four, Z's and S's animal uniformly, and the
 *    other three actors' animals uniformly among the three others;
 *  - the answer is S's colour, the supporting ids Z's animal line, S's
 *    animal line, S's colour line, in that order (Induction.lua sorts
 *    them). */
static const char *const ANIMAL16[4] = {"swan", "lion", "frog", "rhino"};
static const char *const COLOR16[4] = {"gray", "white", "yellow", "green"};
static const char *const ACTORS16[5] = {"Lily", "Bernhard", "Greg", "Julius", "Brian"};

void cx_babigen_task16(cx_babigen *g) {
    while (g->asked < g->n) {
        g->next_id = 1;
        int actor[5] = {0, 1, 2, 3, 4}, kind[9], who[9];   /* kind: 0 animal line, 1 colour line */
        cx_babigen_shuffle(g, actor, 5);                  /* the order of introduction */
        int pending[5], np = 0, next = 0;
        for (int i = 0; i < 9; i++) {
            if (next < 5 && (np == 0 || cx_babigen_pick(g, 2))) {
                kind[i] = 0, who[i] = actor[next];
                pending[np++] = actor[next++];
            } else {
                int k = cx_babigen_pick(g, np);
                kind[i] = 1, who[i] = pending[k];
                pending[k] = pending[--np];
            }
        }
        int z = pending[0];   /* np == 1: five animal lines and four colour lines */
        int others[4], no = 0;
        for (int a = 0; a < 5; a++)
            if (a != z) others[no++] = a;
        int s = others[cx_babigen_pick(g, 4)], animal[5], color[5];
        animal[z] = animal[s] = cx_babigen_pick(g, 4);
        for (int a = 0; a < 5; a++) {
            if (a != z && a != s) animal[a] = (animal[z] + 1 + cx_babigen_pick(g, 3)) % 4;
            color[a] = cx_babigen_pick(g, 4);
        }
        int a_line[5], c_line[5];
        for (int i = 0; i < 9; i++) {
            int a = who[i];
            if (kind[i]) c_line[a] = cx_babigen_statement(g, "%s is %s", ACTORS16[a], COLOR16[color[a]]);
            else a_line[a] = cx_babigen_statement(g, "%s is a %s", ACTORS16[a], ANIMAL16[animal[a]]);
        }
        int sup[3] = {a_line[z], a_line[s], c_line[s]};
        char qs[64];
        snprintf(qs, sizeof qs, "What color is %s", ACTORS16[z]);
        cx_babigen_question(g, qs, COLOR16[color[s]], sup, 3);
    }
}
