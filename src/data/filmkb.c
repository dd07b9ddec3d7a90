/* The generated film knowledge base, its questions and the key-value
 * memories of cortex/kvmem.h. */
#include <stdio.h>

#include "../tensor/internal.h"
#include "cortex/kvmem.h"


static cx_tensor *zeros_dt(cx_dtype dt, const int *shape, int ndim) {
    cx_tensor *t = cx_empty(dt, shape, ndim);
    memset(t->data, 0, (size_t)t->numel * 4);
    return t;
}
/* ------------------------------------------------------------ name lists */
static const char *const FIRST[] = {
    "anna",   "ben",    "carla",  "david", "elena",  "frank",  "grace",  "henry", "iris",   "jack",
    "karen",  "leo",    "maria",  "nick",  "olga",   "paul",   "rosa",   "sam",   "tina",   "victor",
    "wendy",  "adam",   "bella",  "colin", "diana",  "edgar",  "fiona",  "glen",  "hanna",  "ivan",
    "julia",  "kurt",   "lena",   "marco", "nora",   "oscar",  "petra",  "quinn", "ruth",   "simon",
    "tess",   "uma",    "vera",   "walt",  "yara",   "zack",   "alma",   "boris"};
static const char *const LAST[] = {
    "abbott",  "barnes",  "carver",   "dalton",  "ellis",   "fisher",  "garner",  "hale",    "irwin",
    "jordan",  "keller",  "lambert",  "monroe",  "nolan",   "osborne", "palmer",  "quincy",  "reyes",
    "sutton",  "thorne",  "underwood", "vance",  "walsh",   "young",   "zeller",  "archer",  "bishop",
    "crane",   "doyle",   "emerson",  "ford",    "gibson",  "harper",  "ingram",  "jensen",  "knox",
    "lowell",  "mercer",  "nash",     "oakley",  "price",   "rhodes",  "shaw",    "tate",    "upton",
    "vaughn",  "warren",  "york"};
static const char *const ADJ[] = {
    "silent", "red",    "broken",  "golden", "last",    "hidden", "cold",   "burning", "lonely", "dark",
    "wild",   "bitter", "endless", "lost",   "frozen",  "secret", "quiet",  "distant", "iron",   "velvet",
    "crimson", "pale",  "hollow",  "savage", "electric", "sweet", "empty",  "final",   "shadow", "northern",
    "brave",  "glass",  "rising",  "fallen", "restless", "sacred", "wicked", "gentle", "stolen", "bright"};
static const char *const NOUN[] = {
    "river",   "harbor",  "kingdom", "summer",  "road",    "garden",  "empire", "winter", "city",    "heart",
    "island",  "mirror",  "storm",   "frontier", "station", "valley", "tower",  "night",  "promise", "voyage",
    "desert",  "lighthouse", "horizon", "machine", "orchard", "canyon", "circus", "ghost", "hunter",  "letter",
    "melody",  "ocean",   "planet",  "prison",  "shore",   "signal",  "stranger", "temple", "thunder", "witness"};
static const char *const GENRES[] = {"drama",   "comedy", "thriller", "horror",  "western",
                                     "science_fiction", "war", "romance", "animation", "crime"};
#define N_FIRST 48
#define N_LAST 48
#define N_ADJ 40
#define N_NOUN 40
#define N_GENRES 10

/* The ten Kubrick films: title, year, genre, writers, actors ("" = none). */
static const struct {
    const char *title, *year, *genre, *writers[3], *actors[3];
} KUBRICK[10] = {
    {"paths_of_glory", "1957", "war", {"stanley_kubrick", "calder_willingham", "jim_thompson"},
     {"kirk_douglas", "ralph_meeker", "adolphe_menjou"}},
    {"spartacus", "1960", "drama", {"dalton_trumbo", "", ""}, {"kirk_douglas", "laurence_olivier", "jean_simmons"}},
    {"lolita", "1962", "drama", {"vladimir_nabokov", "", ""}, {"james_mason", "shelley_winters", "sue_lyon"}},
    {"dr_strangelove", "1964", "comedy", {"stanley_kubrick", "terry_southern", ""},
     {"peter_sellers", "george_c_scott", "sterling_hayden"}},
    {"2001:a_space_odyssey", "1968", "science_fiction", {"stanley_kubrick", "arthur_c_clarke", ""},
     {"keir_dullea", "gary_lockwood", "william_sylvester"}},
    {"a_clockwork_orange", "1971", "crime", {"stanley_kubrick", "", ""},
     {"malcolm_mcdowell", "patrick_magee", "michael_bates"}},
    {"barry_lyndon", "1975", "drama", {"stanley_kubrick", "", ""}, {"ryan_o_neal", "marisa_berenson", "patrick_magee"}},
    {"the_shining", "1980", "horror", {"stanley_kubrick", "diane_johnson", ""},
     {"jack_nicholson", "shelley_duvall", "danny_lloyd"}},
    {"full_metal_jacket", "1987", "war", {"stanley_kubrick", "michael_herr", "gustav_hasford"},
     {"matthew_modine", "vincent_d_onofrio", "r_lee_ermey"}},
    {"eyes_wide_shut", "1999", "drama", {"stanley_kubrick", "frederic_raphael", ""},
     {"tom_cruise", "nicole_kidman", "sydney_pollack"}},
};

/* relations: forward, then reverse at +N_REL */
enum { R_DIRECTED, R_WRITTEN, R_STARRED, R_YEAR, R_GENRE, N_REL };
static const char *const REL[2 * N_REL] = {"directed_by",     "written_by",     "starred_actors",     "release_year",
                                           "has_genre",       "directed_by_rev", "written_by_rev",
                                           "starred_actors_rev", "release_year_rev", "has_genre_rev"};

/* question templates: tokens, "E" marks the entity */
static const char *const TEMPLATES[CX_KVQ_NTYPES][3] = {
    {"who directed E ?", "who was the director of E ?", "E was directed by who ?"},
    {"who wrote E ?", "who was the writer of E ?", "who wrote the screenplay for E ?"},
    {"who acted in E ?", "who starred in E ?", "who are the actors in E ?"},
    {"when was E released ?", "what year was E released ?", "in which year was E released ?"},
    {"what genre is E ?", "what kind of film is E ?", "what type of movie is E ?"},
    {"which films did E direct ?", "what movies did E direct ?", "what films were directed by E ?"},
    {"which films did E write ?", "what films were written by E ?", "what movies did E write the screenplay for ?"},
    {"which films did E act in ?", "what movies did E star in ?", "what films was E in ?"},
};

/* ------------------------------------------------------------ the vocabulary */
typedef struct {
    cx_filmkb *kb;
    int cap, tcap;
    int *table;   /* id + 1, 0 empty */
} vocab;

static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int lookup(const cx_filmkb *kb, const int *table, int tcap, const char *w) {
    size_t mask = (size_t)tcap - 1;
    for (size_t i = (size_t)fnv(w) & mask;; i = (i + 1) & mask) {
        if (!table[i]) return -1;
        if (!strcmp(kb->words[table[i] - 1], w)) return table[i] - 1;
    }
}

static int intern(vocab *v, const char *w, bool entity) {
    cx_filmkb *kb = v->kb;
    int id = lookup(kb, v->table, v->tcap, w);
    if (id >= 0) {
        if (entity) kb->is_entity[id] = 1;
        return id;
    }
    if (kb->n_words == v->cap) {
        v->cap *= 2;
        kb->words = cx_xrealloc(kb->words, (size_t)v->cap * sizeof(char *));
        kb->is_entity = cx_xrealloc(kb->is_entity, (size_t)v->cap);
    }
    if (2 * (kb->n_words + 1) > v->tcap) {
        free(v->table);
        v->tcap *= 2;
        v->table = cx_xcalloc((size_t)v->tcap, sizeof(int));
        for (int k = 0; k < kb->n_words; k++) {
            size_t mask = (size_t)v->tcap - 1, i = (size_t)fnv(kb->words[k]) & mask;
            while (v->table[i]) i = (i + 1) & mask;
            v->table[i] = k + 1;
        }
    }
    id = kb->n_words++;
    kb->words[id] = cx_xstrdup(w);
    kb->is_entity[id] = entity;
    size_t mask = (size_t)v->tcap - 1, i = (size_t)fnv(w) & mask;
    while (v->table[i]) i = (i + 1) & mask;
    v->table[i] = id + 1;
    return id;
}

int cx_filmkb_find(const cx_filmkb *kb, const char *word) {
    if (!kb || !word) return -1;
    for (int i = 0; i < kb->n_words; i++)
        if (!strcmp(kb->words[i], word)) return i;
    return -1;
}

/* ------------------------------------------------------------ growable int arrays */
typedef struct {
    int *v;
    int n, cap;
} ivec;

static void ipush(ivec *a, int x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->v = cx_xrealloc(a->v, (size_t)a->cap * sizeof(int));
    }
    a->v[a->n++] = x;
}

/* ------------------------------------------------------------ generation */
typedef struct {
    int title, year, genre, director, n_writers, writers[3], actors[3];
} film;

static void shuffle(int *a, int n, cx_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)cx_rng_below(r, (uint32_t)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* distinct person names drawn from the first x last grid */
static int person(vocab *v, int code) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%s", FIRST[code / N_LAST], LAST[code % N_LAST]);
    return intern(v, buf, true);
}

static void add_tokens(vocab *v, ivec *toks, const char *text, int entity, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        ipush(toks, strcmp(w, "E") ? intern(v, w, false) : entity);
        (*n)++;
    }
}

/* one sentence: words with "E" -> e0, "F" -> e1 ... given as ids already */
static void add_sentence(cx_filmkb *kb, ivec *st, ivec *sf, ivec *sl, ivec *sfirst, int film_id, const int *ids,
                         int n) {
    (void)kb;
    ipush(sf, film_id);
    ipush(sl, n);
    ipush(sfirst, st->n);
    for (int i = 0; i < n; i++) ipush(st, ids[i]);
}

cx_status cx_filmkb_generate(int n_films, uint64_t seed, cx_filmkb **out) {
    if (out) *out = NULL;
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_filmkb_generate: NULL output");
    if (n_films < 10 || n_films > 1500)
        return cx_set_error(CX_ERR_ARG, "cx_filmkb_generate: %d films outside [10, 1500]", n_films);
    cx_rng r = cx_rng_new(seed);
    cx_filmkb *kb = cx_xcalloc(1, sizeof *kb);
    vocab v = {kb, 1024, 2048, NULL};
    kb->words = cx_xmalloc((size_t)v.cap * sizeof(char *));
    kb->is_entity = cx_xmalloc((size_t)v.cap);
    v.table = cx_xcalloc((size_t)v.tcap, sizeof(int));
    intern(&v, "<nil>", false);
    int rel[2 * N_REL];
    for (int i = 0; i < 2 * N_REL; i++) rel[i] = intern(&v, REL[i], false);
    int genre[N_GENRES];
    for (int i = 0; i < N_GENRES; i++) genre[i] = intern(&v, GENRES[i], true);

    film *f = cx_xcalloc((size_t)n_films, sizeof *f);
    int kubrick = intern(&v, "stanley_kubrick", true);
    for (int i = 0; i < 10; i++) {
        f[i].title = intern(&v, KUBRICK[i].title, true);
        f[i].year = intern(&v, KUBRICK[i].year, true);
        f[i].genre = intern(&v, KUBRICK[i].genre, true);
        f[i].director = kubrick;
        for (int k = 0; k < 3; k++)
            if (*KUBRICK[i].writers[k]) f[i].writers[f[i].n_writers++] = intern(&v, KUBRICK[i].writers[k], true);
        for (int k = 0; k < 3; k++) f[i].actors[k] = intern(&v, KUBRICK[i].actors[k], true);
    }
    /* generated films: titles from the adjective x noun grid, people from
     * disjoint pools of directors, writers and actors (a director also
     * writes a third of their films) */
    int n_gen = n_films - 10;
    int titles[N_ADJ * N_NOUN], people[N_FIRST * N_LAST];
    for (int i = 0; i < N_ADJ * N_NOUN; i++) titles[i] = i;
    for (int i = 0; i < N_FIRST * N_LAST; i++) people[i] = i;
    shuffle(titles, N_ADJ * N_NOUN, &r);
    shuffle(people, N_FIRST * N_LAST, &r);
    int n_dir = n_gen / 4 + 1, n_wri = n_gen / 3 + 1, n_act = n_gen * 3 / 5 + 3;
    for (int i = 0; i < n_gen; i++) {
        film *g = &f[10 + i];
        char buf[64];
        int t = titles[i];
        snprintf(buf, sizeof buf, "%s%s_%s", cx_rng_below(&r, 2) ? "the_" : "", ADJ[t / N_NOUN], NOUN[t % N_NOUN]);
        g->title = intern(&v, buf, true);
        snprintf(buf, sizeof buf, "%d", 1950 + (int)cx_rng_below(&r, 66));
        g->year = intern(&v, buf, true);
        g->genre = genre[cx_rng_below(&r, N_GENRES)];
        g->director = person(&v, people[cx_rng_below(&r, (uint32_t)n_dir)]);
        if (cx_rng_below(&r, 3) == 0) g->writers[g->n_writers++] = g->director;
        int want = g->n_writers + 1 + (int)cx_rng_below(&r, 2);   /* one or two screenwriters */
        while (g->n_writers < want) {
            int w = person(&v, people[n_dir + (int)cx_rng_below(&r, (uint32_t)n_wri)]);
            bool dup = false;
            for (int k = 0; k < g->n_writers; k++) dup |= g->writers[k] == w;
            if (!dup) g->writers[g->n_writers++] = w;
        }
        for (int k = 0; k < 3; k++) {
            int a;
            bool dup;
            do {
                a = person(&v, people[n_dir + n_wri + (int)cx_rng_below(&r, (uint32_t)n_act)]);
                dup = false;
                for (int j = 0; j < k; j++) dup |= g->actors[j] == a;
            } while (dup);
            g->actors[k] = a;
        }
    }
    kb->n_films = n_films;

    /* triples and sentences */
    ivec tr = {0}, st = {0}, sf = {0}, sl = {0}, sfirst = {0};
    int w_was = intern(&v, "was", false), w_directed = intern(&v, "directed", false), w_by = intern(&v, "by", false),
        w_written = intern(&v, "written", false), w_and = intern(&v, "and", false),
        w_stars = intern(&v, "stars", false), w_comma = intern(&v, ",", false),
        w_released = intern(&v, "released", false), w_in = intern(&v, "in", false), w_is = intern(&v, "is", false),
        w_a = intern(&v, "a", false), w_film = intern(&v, "film", false), w_dot = intern(&v, ".", false);
    for (int i = 0; i < n_films; i++) {
        film *g = &f[i];
        int T = g->title;
#define TRIPLE(s, rr, o) (ipush(&tr, (s)), ipush(&tr, rel[rr]), ipush(&tr, (o)))
        TRIPLE(T, R_DIRECTED, g->director);
        for (int k = 0; k < g->n_writers; k++) TRIPLE(T, R_WRITTEN, g->writers[k]);
        for (int k = 0; k < 3; k++) TRIPLE(T, R_STARRED, g->actors[k]);
        TRIPLE(T, R_YEAR, g->year);
        TRIPLE(T, R_GENRE, g->genre);
#undef TRIPLE
        int s1[] = {T, w_was, w_directed, w_by, g->director, w_dot};
        add_sentence(kb, &st, &sf, &sl, &sfirst, i, s1, 6);
        int s2[10] = {T, w_was, w_written, w_by}, n2 = 4;
        for (int k = 0; k < g->n_writers; k++) {
            if (k) s2[n2++] = k == g->n_writers - 1 ? w_and : w_comma;
            s2[n2++] = g->writers[k];
        }
        s2[n2++] = w_dot;
        add_sentence(kb, &st, &sf, &sl, &sfirst, i, s2, n2);
        int s3[] = {T, w_stars, g->actors[0], w_comma, g->actors[1], w_and, g->actors[2], w_dot};
        add_sentence(kb, &st, &sf, &sl, &sfirst, i, s3, 8);
        int s4[] = {T, w_was, w_released, w_in, g->year, w_dot};
        add_sentence(kb, &st, &sf, &sl, &sfirst, i, s4, 6);
        int s5[] = {T, w_is, w_a, g->genre, w_film, w_dot};
        add_sentence(kb, &st, &sf, &sl, &sfirst, i, s5, 6);
    }
    kb->n_triples = tr.n / 3;
    kb->triples = tr.v;
    kb->n_sentences = sf.n;
    kb->sent_film = sf.v;
    kb->sent_len = sl.v;
    kb->sent_first = sfirst.v;
    kb->sent_tok = st.v;

    /* questions: one per (entity, type) with answers, template drawn at random */
    ivec ans = {0};
    int qcap = 5 * n_films + 4 * kb->n_words, nq = 0;
    cx_kvq *qs = cx_xcalloc((size_t)qcap, sizeof *qs);
    /* film questions */
    for (int i = 0; i < n_films; i++) {
        for (int t = CX_KVQ_DIRECTOR; t <= CX_KVQ_GENRE; t++) {
            cx_kvq *q = &qs[nq++];
            q->type = (cx_kvq_type)t;
            q->entity = f[i].title;
            q->first_answer = ans.n;
            switch (t) {
            case CX_KVQ_DIRECTOR: ipush(&ans, f[i].director); break;
            case CX_KVQ_WRITER:
                for (int k = 0; k < f[i].n_writers; k++) ipush(&ans, f[i].writers[k]);
                break;
            case CX_KVQ_ACTOR:
                for (int k = 0; k < 3; k++) ipush(&ans, f[i].actors[k]);
                break;
            case CX_KVQ_YEAR: ipush(&ans, f[i].year); break;
            default: ipush(&ans, f[i].genre); break;
            }
            q->n_answers = ans.n - q->first_answer;
        }
    }
    /* person questions: every person in their roles, in order of first appearance */
    unsigned char *seen = cx_xcalloc((size_t)kb->n_words * 3, 1);
    for (int i = 0; i < n_films; i++) {
        int cand[7], role[7], nc = 0;
        cand[nc] = f[i].director, role[nc++] = 0;
        for (int k = 0; k < f[i].n_writers; k++) cand[nc] = f[i].writers[k], role[nc++] = 1;
        for (int k = 0; k < 3; k++) cand[nc] = f[i].actors[k], role[nc++] = 2;
        for (int c = 0; c < nc; c++) {
            int p = cand[c], ro = role[c];
            if (seen[(size_t)p * 3 + ro]) continue;
            seen[(size_t)p * 3 + ro] = 1;
            cx_kvq *q = &qs[nq++];
            q->type = (cx_kvq_type)(CX_KVQ_DIRECTED + ro);
            q->entity = p;
            q->first_answer = ans.n;
            for (int j = 0; j < n_films; j++) {
                bool in = false;
                if (ro == 0) in = f[j].director == p;
                for (int k = 0; ro == 1 && k < f[j].n_writers; k++) in |= f[j].writers[k] == p;
                for (int k = 0; ro == 2 && k < 3; k++) in |= f[j].actors[k] == p;
                if (in) ipush(&ans, f[j].title);
            }
            q->n_answers = ans.n - q->first_answer;
        }
    }
    free(seen);
    for (int i = 0; i < nq; i++) {
        cx_kvq *q = &qs[i];
        ivec toks = {0};
        int n = 0;
        add_tokens(&v, &toks, TEMPLATES[q->type][cx_rng_below(&r, 3)], q->entity, &n);
        q->n_tokens = n < CX_KVQ_MAX_TOKENS ? n : CX_KVQ_MAX_TOKENS;
        memcpy(q->tokens, toks.v, (size_t)q->n_tokens * sizeof(int));
        free(toks.v);
        uint32_t u = cx_rng_below(&r, 10);
        q->split = u < 8 ? 0 : u < 9 ? 1 : 2;
        kb->n_split[q->split]++;
    }
    kb->n_questions = nq;
    kb->questions = qs;
    kb->answers = ans.v;
    free(f);
    free(v.table);
    *out = kb;
    return CX_OK;
}

void cx_filmkb_free(cx_filmkb *kb) {
    if (!kb) return;
    for (int i = 0; i < kb->n_words; i++) free(kb->words[i]);
    free(kb->words);
    free(kb->is_entity);
    free(kb->triples);
    free(kb->sent_film);
    free(kb->sent_len);
    free(kb->sent_first);
    free(kb->sent_tok);
    free(kb->questions);
    free(kb->answers);
    free(kb);
}

int cx_filmkb_question_text(const cx_filmkb *kb, int q, char *out, size_t cap) {
    if (!kb || q < 0 || q >= kb->n_questions) return snprintf(out, cap, "%s", "");
    const cx_kvq *x = &kb->questions[q];
    size_t len = 0;
    if (cap) out[0] = 0;
    for (int i = 0; i < x->n_tokens; i++) {
        int k = snprintf(len < cap ? out + len : NULL, len < cap ? cap - len : 0, "%s%s", i ? " " : "",
                         kb->words[x->tokens[i]]);
        len += (size_t)k;
    }
    return (int)len;
}

int cx_filmkb_split(const cx_filmkb *kb, int split, int *idx) {
    int n = 0;
    for (int i = 0; i < kb->n_questions; i++)
        if (kb->questions[i].split == split) idx[n++] = i;
    return n;
}

/* ------------------------------------------------------------ memories */
static bool is_answer(const cx_filmkb *kb, const cx_kvq *q, int w) {
    for (int i = 0; i < q->n_answers; i++)
        if (kb->answers[q->first_answer + i] == w) return true;
    return false;
}

typedef struct {
    int n, max;
    int *keys, *values;
    bool has_answer;
} memsink;

static void put(memsink *s, const cx_filmkb *kb, const cx_kvq *q, const int *k, int nk, const int *v, int nv) {
    if (s->n >= s->max) return;
    int *K = s->keys + (size_t)s->n * CX_KVMEM_MAX_TOKENS, *V = s->values + (size_t)s->n * CX_KVMEM_MAX_TOKENS;
    memset(K, 0, CX_KVMEM_MAX_TOKENS * sizeof(int));
    memset(V, 0, CX_KVMEM_MAX_TOKENS * sizeof(int));
    for (int i = 0; i < nk && i < CX_KVMEM_MAX_TOKENS; i++) K[i] = k[i];
    for (int i = 0; i < nv && i < CX_KVMEM_MAX_TOKENS; i++) {
        V[i] = v[i];
        if (is_answer(kb, q, v[i])) s->has_answer = true;
    }
    s->n++;
}

int cx_filmkb_memories(const cx_filmkb *kb, int qi, cx_kvmem_mode mode, int max_mem, int *keys, int *values,
                       bool *has_answer) {
    const cx_kvq *q = &kb->questions[qi];
    memsink s = {0, max_mem, keys, values, false};
    const int e = q->entity;
    if (mode == CX_KVMEM_KB || mode == CX_KVMEM_TRIPLE) {
        int rev_base = cx_filmkb_find(kb, "directed_by_rev");
        int fwd_base = cx_filmkb_find(kb, "directed_by");
        for (int t = 0; t < kb->n_triples; t++) {
            const int *x = kb->triples + 3 * t;
            if (x[0] != e && x[2] != e) continue;
            if (mode == CX_KVMEM_TRIPLE) {
                put(&s, kb, q, x, 3, x, 3);
            } else {
                if (x[0] == e) {
                    int k[2] = {x[0], x[1]};
                    put(&s, kb, q, k, 2, &x[2], 1);
                }
                if (x[2] == e) {
                    int k[2] = {x[2], rev_base + (x[1] - fwd_base)};
                    put(&s, kb, q, k, 2, &x[0], 1);
                }
            }
        }
    } else {
        for (int si = 0; si < kb->n_sentences; si++) {
            const int *w = kb->sent_tok + kb->sent_first[si], n = kb->sent_len[si];
            const int title = w[0];
            for (int c = 0; c < n; c++) {
                if (!kb->is_entity[w[c]]) continue;
                int lo = c - 3 < 0 ? 0 : c - 3, hi = c + 3 >= n ? n - 1 : c + 3;
                bool hit = title == e;
                for (int j = lo; j <= hi; j++) hit |= w[j] == e;
                if (!hit) continue;
                int key[CX_KVMEM_MAX_TOKENS], nk = 0;
                for (int j = lo; j <= hi; j++)
                    if (j != c) key[nk++] = w[j];
                if (c != 0) {
                    key[nk++] = title;   /* window + title -> centre */
                    put(&s, kb, q, key, nk, &w[c], 1);
                    nk = 0;          /* whole window -> title */
                    for (int j = lo; j <= hi; j++) key[nk++] = w[j];
                    put(&s, kb, q, key, nk, &title, 1);
                } else {
                    put(&s, kb, q, key, nk, &w[c], 1);   /* the title's own window */
                }
            }
        }
    }
    if (has_answer) *has_answer = s.has_answer;
    return s.n;
}

cx_status cx_filmkb_batch(const cx_filmkb *kb, const int *idx, int n, cx_kvmem_mode mode, int max_mem,
                          cx_tensor **query, cx_tensor **keys, cx_tensor **values, cx_tensor **mask,
                          cx_tensor **target) {
    if (!kb || !idx || n < 1 || max_mem < 1 || !query || !keys || !values || !mask || !target)
        return cx_set_error(CX_ERR_ARG, "cx_filmkb_batch: bad arguments");
    const int L = CX_KVMEM_MAX_TOKENS;
    int *K = cx_xmalloc((size_t)n * max_mem * L * sizeof(int)), *V = cx_xmalloc((size_t)n * max_mem * L * sizeof(int));
    int *cnt = cx_xmalloc((size_t)n * sizeof(int)), M = 1;
    for (int b = 0; b < n; b++) {
        if (idx[b] < 0 || idx[b] >= kb->n_questions) {
            free(K), free(V), free(cnt);
            return cx_set_error(CX_ERR_ARG, "cx_filmkb_batch: question %d outside [0, %d)", idx[b], kb->n_questions);
        }
        cnt[b] = cx_filmkb_memories(kb, idx[b], mode, max_mem, K + (size_t)b * max_mem * L,
                                    V + (size_t)b * max_mem * L, NULL);
        if (cnt[b] > M) M = cnt[b];
    }
    *query = zeros_dt(CX_I32, CX_SHAPE(n, CX_KVQ_MAX_TOKENS));
    *keys = zeros_dt(CX_I32, CX_SHAPE(n, M, L));
    *values = zeros_dt(CX_I32, CX_SHAPE(n, M, L));
    *mask = zeros_dt(CX_F32, CX_SHAPE(n, M));
    *target = zeros_dt(CX_F32, CX_SHAPE(n, kb->n_words));
    for (int b = 0; b < n; b++) {
        const cx_kvq *q = &kb->questions[idx[b]];
        memcpy(CX_I32P(*query) + (size_t)b * CX_KVQ_MAX_TOKENS, q->tokens, (size_t)q->n_tokens * sizeof(int));
        memcpy(CX_I32P(*keys) + (size_t)b * M * L, K + (size_t)b * max_mem * L, (size_t)cnt[b] * L * sizeof(int));
        memcpy(CX_I32P(*values) + (size_t)b * M * L, V + (size_t)b * max_mem * L, (size_t)cnt[b] * L * sizeof(int));
        for (int m = 0; m < cnt[b]; m++) CX_F(*mask)[(size_t)b * M + m] = 1;
        for (int a = 0; a < q->n_answers; a++)
            CX_F(*target)[(size_t)b * kb->n_words + kb->answers[q->first_answer + a]] += 1.0f / (float)q->n_answers;
    }
    free(K), free(V), free(cnt);
    return CX_OK;
}
