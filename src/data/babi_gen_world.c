/* bAbI generator, the tasks whose world has actors moving and handling
 * objects: 2 (two supporting facts), 3 (three supporting facts), 5 (three
 * argument relations) and 6 (yes/no questions). See babi_gen.c.
 *
 * The world (the original generator's world_basic.txt and actions.lua):
 * four actors, the six places, the objects apple, football and milk. Every
 * statement is one action, valid in the world:
 *   move  "X moved/went/journeyed/travelled/went back to the P."
 *         (P is not X's current place)
 *   get   "X got/grabbed/picked up/took the O there."
 *         (O lies, not held, where X is)
 *   drop  "X dropped/discarded/put down/left the O."   (X holds O)
 *   give  "X gave/handed/passed the O to Y."  (task 5: X holds O, Y is
 *         another actor in the same place)
 * A held object goes where its holder goes. As the original Task loop, an
 * action kind is drawn uniformly from the task's kinds, then uniformly one
 * of its valid instances (the original samples up to 100 random instances
 * and keeps the first valid one; when the kind has none it draws a kind
 * again).
 *
 * Choice: before the first line the actors and objects are at places drawn
 * uniformly and independently for each story, and unstated. world_basic
 * puts them at fixed places (Mary in the bedroom, the milk in the kitchen,
 * ...), but the released files contradict that (qa6 starts "Mary got the
 * milk there.", qa2 has Mary move to the bathroom and get the football
 * there), so their generator drew them.
 *
 * What the story tells (the original Knowledge.lua): an actor's place is
 * known from their last move (not before their first one); a got object is
 * known to be with its getter; a dropped object is known to be where the
 * dropper was known to be (unknown if the dropper had not moved yet). So a
 * question's answer follows from the lines before it, and its supporting ids
 * are the lines that give it. */
#include <stdio.h>
#include <string.h>

#include "babi_gen.h"

#define NA 4
#define NO 3
static const char *const ACTORS[NA] = {"Mary", "John", "Sandra", "Daniel"};
static const char *const ACTORS5[NA] = {"Bill", "Fred", "Jeff", "Mary"};
static const char *const OBJECTS[NO] = {"apple", "football", "milk"};
static const char *const GETS[4] = {"got", "grabbed", "picked up", "took"};
static const char *const DROPS[4] = {"dropped", "discarded", "put down", "left"};
static const char *const GIVES[3] = {"gave", "handed", "passed"};

enum { MOVE, GET, DROP, GIVE };
enum { K_NONE, K_HELD, K_AT };

typedef struct {
    const char *const *actors;
    /* the world */
    int loc[NA];        /* each actor's place */
    int holder[NO];     /* the actor holding an object, -1: none */
    int obj_place[NO];  /* an object's place when nobody holds it */
    /* what the story has told */
    int move[NA];       /* line of the actor's last move, 0: none yet (place unknown) */
    int k_kind[NO];     /* K_NONE: place unknown; K_HELD by k_actor (k_fact: the get/give line);
                           K_AT k_place (k_fact: the drop line, k_move: the dropper's move) */
    int k_actor[NO], k_place[NO], k_fact[NO], k_move[NO];
} world;

typedef struct {
    int kind, actor, obj, other, line;
} action;

static void world_init(world *w, cx_babigen *g, const char *const *actors) {
    memset(w, 0, sizeof *w);
    w->actors = actors;
    for (int a = 0; a < NA; a++) w->loc[a] = cx_babigen_pick(g, 6);
    for (int o = 0; o < NO; o++) w->holder[o] = -1, w->obj_place[o] = cx_babigen_pick(g, 6);
    g->next_id = 1;
}

/* The object's place as the story tells it (false: not told); sup[0..1]
 * the lines that tell it: the get (or drop) and the holder's (or
 * dropper's) move. */
static bool known_place(const world *w, int o, int *place, int sup[2]) {
    if (w->k_kind[o] == K_HELD && w->move[w->k_actor[o]]) {
        *place = w->loc[w->k_actor[o]];
        sup[0] = w->k_fact[o];
        sup[1] = w->move[w->k_actor[o]];
        return true;
    }
    if (w->k_kind[o] == K_AT) {
        *place = w->k_place[o];
        sup[0] = w->k_fact[o];
        sup[1] = w->k_move[o];
        return true;
    }
    return false;
}

/* Draws a valid action of one of `kinds` (n_kinds of them), performs it and
 * writes its line. */
static action world_step(world *w, cx_babigen *g, const int *kinds, int n_kinds) {
    int cand[NA * NO * NA][3];
    for (;;) {
        int kind = kinds[cx_babigen_pick(g, n_kinds)], nc = 0;
        for (int a = 0; a < NA; a++) {
            if (kind == MOVE) {
                for (int p = 0; p < 6; p++)
                    if (p != w->loc[a]) cand[nc][0] = a, cand[nc][1] = p, cand[nc++][2] = 0;
                continue;
            }
            for (int o = 0; o < NO; o++) {
                if (kind == GET && w->holder[o] < 0 && w->obj_place[o] == w->loc[a])
                    cand[nc][0] = a, cand[nc][1] = o, cand[nc++][2] = 0;
                if (kind == DROP && w->holder[o] == a) cand[nc][0] = a, cand[nc][1] = o, cand[nc++][2] = 0;
                if (kind == GIVE && w->holder[o] == a)
                    for (int c = 0; c < NA; c++)
                        if (c != a && w->loc[c] == w->loc[a]) cand[nc][0] = a, cand[nc][1] = o, cand[nc++][2] = c;
            }
        }
        if (!nc) continue;
        int k = cx_babigen_pick(g, nc), a = cand[k][0];
        action act = {kind, a, cand[k][1], cand[k][2], 0};
        const char *name = w->actors[a];
        if (kind == MOVE) {
            int p = act.obj;
            act.obj = -1;
            act.other = p;
            act.line = cx_babigen_statement(g, "%s %s to the %s", name, cx_babigen_moves[cx_babigen_pick(g, 5)],
                                            cx_babigen_places[p]);
            w->loc[a] = p;
            w->move[a] = act.line;
        } else if (kind == GET) {
            int o = act.obj;
            act.line = cx_babigen_statement(g, "%s %s the %s there", name, GETS[cx_babigen_pick(g, 4)], OBJECTS[o]);
            w->holder[o] = a;
            w->k_kind[o] = K_HELD, w->k_actor[o] = a, w->k_fact[o] = act.line;
        } else if (kind == DROP) {
            int o = act.obj;
            act.line = cx_babigen_statement(g, "%s %s the %s", name, DROPS[cx_babigen_pick(g, 4)], OBJECTS[o]);
            w->holder[o] = -1;
            w->obj_place[o] = w->loc[a];
            if (w->move[a])
                w->k_kind[o] = K_AT, w->k_place[o] = w->loc[a], w->k_fact[o] = act.line, w->k_move[o] = w->move[a];
            else
                w->k_kind[o] = K_NONE;
        } else {
            int o = act.obj, c = act.other;
            act.line = cx_babigen_statement(g, "%s %s the %s to %s", name, GIVES[cx_babigen_pick(g, 3)], OBJECTS[o],
                                            w->actors[c]);
            w->holder[o] = c;
            w->k_kind[o] = K_HELD, w->k_actor[o] = c, w->k_fact[o] = act.line;
        }
        return act;
    }
}

static const int GET_DROP_MOVE[3] = {GET, DROP, MOVE};

/* ---------------------------------------------------------------- task 2
 * Two supporting facts (WhereIsObject.lua): get, drop and move actions;
 * after each statement, once at least two statements have passed since the
 * story began or since the last question, with probability 1/2 a question
 * "Where is the O?" about one object (uniformly) whose place the story has
 * told; five questions a story. The answer is that place; the supporting
 * ids are the get (or drop) line, then the holder's (dropper's) move, the
 * order of the released files ("Where is the milk? \thallway\t1 4" after
 * "1 Mary got the milk there." ... "4 Mary travelled to the hallway.").
 * Choice: the Lua asks only after three statements and only about held
 * objects; the released files ask after two ("6 .. 7 .. 8 Where is the
 * football?") and about dropped ones ("\thallway\t9 7", 9 the drop). */
void cx_babigen_task2(cx_babigen *g) {
    world w;
    while (g->asked < g->n) {
        world_init(&w, g, ACTORS);
        int since = 0;
        for (int q = 0; q < 5 && g->asked < g->n;) {
            world_step(&w, g, GET_DROP_MOVE, 3);
            if (++since < 2 || cx_babigen_pick(g, 2)) continue;
            int known[NO], nk = 0, place, sup[2];
            for (int o = 0; o < NO; o++)
                if (known_place(&w, o, &place, sup)) known[nk++] = o;
            if (!nk) continue;
            int o = known[cx_babigen_pick(g, nk)];
            known_place(&w, o, &place, sup);
            char qs[64];
            snprintf(qs, sizeof qs, "Where is the %s", OBJECTS[o]);
            cx_babigen_question(g, qs, cx_babigen_places[place], sup, 2);
            since = 0;
            q++;
        }
    }
}

/* ---------------------------------------------------------------- task 3
 * Three supporting facts (WhereWasObject.lua): the world and question
 * rhythm of task 2; the question is "Where was the O before the P?" about an
 * object whose told place has changed at least once: P its last told place,
 * the answer the told place before it (Knowledge:get_value_history: after
 * each statement the object's told place, consecutive repeats merged). The
 * supporting ids are the lines telling both places (the get and the two
 * moves of its holder, typically), in increasing order.
 * Choice: the original asks even when P occurs earlier in the history too
 * (its comments leave the ambiguity open in WhereWasObject.lua); here only
 * objects whose last place P occurs once in their history are asked about,
 * so "before the P" names one moment and the answer is unique. */
#define HIST_MAX 2
typedef struct {
    int n;                     /* places in the history */
    int place[HIST_MAX];       /* the last two (place[1] the latest) */
    int sup[HIST_MAX][2];
    int count[6];              /* how often each place occurs in the history */
} history;

static void history_update(history *h, const world *w, int o) {
    int place, sup[2];
    if (!known_place(w, o, &place, sup)) return;
    if (h->n && h->place[1] == place) return;
    h->place[0] = h->place[1];
    memcpy(h->sup[0], h->sup[1], sizeof h->sup[0]);
    h->place[1] = place;
    memcpy(h->sup[1], sup, sizeof sup);
    h->count[place]++;
    h->n++;
}

static int sorted_union(const int *a, int na, const int *b, int nb, int *out) {
    int n = 0;
    for (int i = 0; i < na + nb; i++) {
        int v = i < na ? a[i] : b[i - na], dup = 0;
        for (int j = 0; j < n; j++) dup |= out[j] == v;
        if (!dup) out[n++] = v;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

void cx_babigen_task3(cx_babigen *g) {
    world w;
    history h[NO];
    while (g->asked < g->n) {
        world_init(&w, g, ACTORS);
        memset(h, 0, sizeof h);
        int since = 0;
        for (int q = 0; q < 5 && g->asked < g->n;) {
            world_step(&w, g, GET_DROP_MOVE, 3);
            for (int o = 0; o < NO; o++) history_update(&h[o], &w, o);
            if (++since < 2 || cx_babigen_pick(g, 2)) continue;
            int known[NO], nk = 0;
            for (int o = 0; o < NO; o++)
                if (h[o].n >= 2 && h[o].count[h[o].place[1]] == 1) known[nk++] = o;
            if (!nk) continue;
            const history *ho = &h[known[cx_babigen_pick(g, nk)]];
            int sup[4], ns = sorted_union(ho->sup[0], 2, ho->sup[1], 2, sup);
            char qs[80];
            snprintf(qs, sizeof qs, "Where was the %s before the %s", OBJECTS[ho - h],
                     cx_babigen_places[ho->place[1]]);
            cx_babigen_question(g, qs, cx_babigen_places[ho->place[0]], sup, ns);
            since = 0;
            q++;
        }
    }
}

/* ---------------------------------------------------------------- task 5
 * Three argument relations (WhoWhatGave.lua): the actors Bill, Fred, Jeff
 * and Mary; move, get, give and drop actions (the Lua has no drop, the
 * released qa5 files do: "14 Jeff put down the milk."). The question is
 * about the story's latest give "X gave the O to Y", in one of the five
 * released forms, drawn uniformly:
 *   What did X give to Y? -> O        Who gave the O? -> X
 *   Who gave the O to Y? -> X         Who received the O? -> Y
 *   Who did X give the O to? -> Y
 * with that give's line as the supporting id. Five questions a story.
 * Choice, from the released files (the Lua instead shuffles the lines before
 * each give): a question comes once at least two statements have passed
 * since the story began or since the last question and the latest give is
 * one of the last four statements; both opening stories of the released
 * training file follow this rule (questions after statements 2, 5, 8, 11, 14
 * of one, after 4, 7, 10, 21 of the other). */
void cx_babigen_task5(cx_babigen *g) {
    static const int KINDS[4] = {MOVE, GET, GIVE, DROP};
    world w;
    while (g->asked < g->n) {
        world_init(&w, g, ACTORS5);
        int since = 0, after_give = -1;
        action give = {0};
        for (int q = 0; q < 5 && g->asked < g->n;) {
            action act = world_step(&w, g, KINDS, 4);
            since++;
            if (act.kind == GIVE) give = act, after_give = 0;
            else if (after_give >= 0) after_give++;
            if (since < 2 || after_give < 0 || after_give > 3) continue;
            const char *x = ACTORS5[give.actor], *y = ACTORS5[give.other], *o = OBJECTS[give.obj], *ans;
            char qs[80];
            switch (cx_babigen_pick(g, 5)) {
            case 0: snprintf(qs, sizeof qs, "What did %s give to %s", x, y), ans = o; break;
            case 1: snprintf(qs, sizeof qs, "Who gave the %s", o), ans = x; break;
            case 2: snprintf(qs, sizeof qs, "Who gave the %s to %s", o, y), ans = x; break;
            case 3: snprintf(qs, sizeof qs, "Who received the %s", o), ans = y; break;
            default: snprintf(qs, sizeof qs, "Who did %s give the %s to", x, o), ans = y; break;
            }
            cx_babigen_question(g, qs, ans, &give.line, 1);
            since = 0;
            q++;
        }
    }
}

/* ---------------------------------------------------------------- task 6
 * Yes/no questions (IsActorThere.lua): two statements then "Is X in the
 * P?", five times a story. The statements are get, drop and move actions as
 * in task 2 (the Lua moves only; the released qa6 files have gets and drops:
 * "1 Mary got the milk there."). X is drawn uniformly among the actors who
 * have moved; with probability 1/2 P is X's place (answer "yes"), else one
 * of the five other places drawn uniformly ("no"); the supporting id is X's
 * last move. Choice: when no actor has moved yet at a question's turn (the
 * original would fail), statements go on until one has. */
void cx_babigen_task6(cx_babigen *g) {
    world w;
    while (g->asked < g->n) {
        world_init(&w, g, ACTORS);
        int since = 0;
        for (int q = 0; q < 5 && g->asked < g->n;) {
            world_step(&w, g, GET_DROP_MOVE, 3);
            if (++since < 2) continue;
            int known[NA], nk = 0;
            for (int a = 0; a < NA; a++)
                if (w.move[a]) known[nk++] = a;
            if (!nk) continue;
            int a = known[cx_babigen_pick(g, nk)];
            bool yes = cx_babigen_pick(g, 2) == 0;
            int p = w.loc[a];
            if (!yes) p = (p + 1 + cx_babigen_pick(g, 5)) % 6;
            char qs[64];
            snprintf(qs, sizeof qs, "Is %s in the %s", ACTORS[a], cx_babigen_places[p]);
            cx_babigen_question(g, qs, yes ? "yes" : "no", &w.move[a], 1);
            since = 0;
            q++;
        }
    }
}
