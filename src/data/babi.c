/* bAbI tasks: the reader for the released text format, the word vocabulary
 * and MemN2N tensors. The format and the policies are documented in
 * cortex/babi.h. */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "../tensor/internal.h"

/* ---------------------------------------------------------------- vocabulary */
struct cx_babi_vocab {
    int size, cap;
    char **words;
    int *table;       /* open addressing: word id + 1, 0 = empty */
    int table_cap;    /* power of two, > 2 * size */
};

static uint64_t hash_word(const char *w, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)w[i]) * 1099511628211ULL;
    return h;
}

static int vocab_lookup(const cx_babi_vocab *v, const char *w, size_t n) {
    size_t mask = (size_t)v->table_cap - 1, i = (size_t)hash_word(w, n) & mask;
    for (;; i = (i + 1) & mask) {
        int e = v->table[i];
        if (!e) return -1;
        const char *s = v->words[e - 1];
        if (strlen(s) == n && !memcmp(s, w, n)) return e - 1;
    }
}

static void vocab_rehash(cx_babi_vocab *v, int table_cap) {
    free(v->table);
    v->table_cap = table_cap;
    v->table = cx_xcalloc((size_t)table_cap, sizeof(int));
    size_t mask = (size_t)table_cap - 1;
    for (int id = 0; id < v->size; id++) {
        size_t i = (size_t)hash_word(v->words[id], strlen(v->words[id])) & mask;
        while (v->table[i]) i = (i + 1) & mask;
        v->table[i] = id + 1;
    }
}

static int vocab_add(cx_babi_vocab *v, const char *w, size_t n) {
    if (v->size == v->cap) {
        v->cap *= 2;
        v->words = cx_xrealloc(v->words, (size_t)v->cap * sizeof(char *));
    }
    char *s = cx_xmalloc(n + 1);
    memcpy(s, w, n);
    s[n] = 0;
    v->words[v->size++] = s;
    if (2 * v->size >= v->table_cap) vocab_rehash(v, v->table_cap * 2);
    else {
        size_t mask = (size_t)v->table_cap - 1, i = (size_t)hash_word(w, n) & mask;
        while (v->table[i]) i = (i + 1) & mask;
        v->table[i] = v->size;
    }
    return v->size - 1;
}

/* Back to the first `size` words (undoes a failed parse). */
static void vocab_truncate(cx_babi_vocab *v, int size) {
    if (size >= v->size) return;
    for (int i = size; i < v->size; i++) free(v->words[i]);
    v->size = size;
    vocab_rehash(v, v->table_cap);
}

cx_babi_vocab *cx_babi_vocab_new(void) {
    cx_babi_vocab *v = cx_xcalloc(1, sizeof *v);
    v->cap = 64;
    v->words = cx_xmalloc((size_t)v->cap * sizeof(char *));
    v->table_cap = 128;
    v->table = cx_xcalloc((size_t)v->table_cap, sizeof(int));
    vocab_add(v, "<nil>", 5);
    return v;
}

void cx_babi_vocab_free(cx_babi_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->size; i++) free(v->words[i]);
    free(v->words);
    free(v->table);
    free(v);
}

int cx_babi_vocab_size(const cx_babi_vocab *v) { return v ? v->size : 0; }

const char *cx_babi_vocab_word(const cx_babi_vocab *v, int id) {
    return v && id >= 0 && id < v->size ? v->words[id] : NULL;
}

int cx_babi_vocab_find(const cx_babi_vocab *v, const char *word) {
    if (!v || !word) return -1;
    return vocab_lookup(v, word, strlen(word));
}

/* ---------------------------------------------------------------- parser state */
typedef struct { int64_t off; int len, line; } tmp_sentence;
typedef struct {
    int story, n_facts, line;
    int64_t qoff, aoff, soff;
    int qlen, alen, ns;
    int32_t answer_id;
} tmp_question;
typedef struct { int id, stmt, line; } line_entry; /* stmt: statement index in the story, -1: a question */

#define GROW(arr, n, cap)                                                  \
    do {                                                                   \
        if ((n) == (cap)) {                                                \
            (cap) = (cap) ? 2 * (cap) : 64;                                \
            (arr) = cx_xrealloc((arr), (size_t)(cap) * sizeof *(arr));     \
        }                                                                  \
    } while (0)

typedef struct {
    const char *name;
    int line;
    cx_babi_vocab *v;
    cx_babi_unknown unk;
    int32_t *tok; int64_t ntok, ctok;
    tmp_sentence *sen; int nsen, csen;
    tmp_question *qs; int nq, cq;
    cx_babi_story *st; int nst, cst;
    int *sup; int64_t nsup, csup;
    line_entry *le; int nle, cle;  /* lines of the current story */
    char *scratch; size_t cscratch;
} parser;

static cx_status perr(const parser *p, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cx_set_error(CX_ERR_FORMAT, "%s:%d: %s", p->name, p->line, msg);
}

/* The id of w[0 .. n-1] lower-cased: added, or an error under CX_BABI_UNK_ERROR. */
static cx_status word_id(parser *p, const char *w, size_t n, int32_t *id) {
    if (n + 1 > p->cscratch) {
        p->cscratch = 2 * (n + 1);
        p->scratch = cx_xrealloc(p->scratch, p->cscratch);
    }
    for (size_t i = 0; i < n; i++) p->scratch[i] = (char)tolower((unsigned char)w[i]);
    p->scratch[n] = 0;
    int k = vocab_lookup(p->v, p->scratch, n);
    if (k < 0) {
        if (p->unk == CX_BABI_UNK_ERROR) return perr(p, "word '%s' is not in the vocabulary", p->scratch);
        if (p->v->size == INT32_MAX) return perr(p, "vocabulary full");
        k = vocab_add(p->v, p->scratch, n);
    }
    *id = k;
    return CX_OK;
}

static bool is_sep(char c) {
    return isspace((unsigned char)c) || c == '.' || c == '?' || c == '!' || c == ',' || c == ';' || c == ':';
}

/* Tokenises s[0 .. n-1] into the pool; *len = number of words. */
static cx_status tokenize(parser *p, const char *s, size_t n, int *len) {
    *len = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && is_sep(s[i])) i++;
        size_t j = i;
        while (j < n && !is_sep(s[j])) j++;
        if (j > i) {
            int32_t id;
            cx_status st = word_id(p, s + i, j - i, &id);
            if (st) return st;
            GROW(p->tok, p->ntok, p->ctok);
            p->tok[p->ntok++] = id;
            if (*len == INT_MAX) return perr(p, "line too long");
            (*len)++;
        }
        i = j;
    }
    return CX_OK;
}

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* Parses a decimal number of 1..10^9 digits-only from s[0 .. n-1]; -1 if not one. */
static long parse_num(const char *s, size_t n) {
    if (n == 0 || n > 10) return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        x = 10 * x + (s[i] - '0');
    }
    return x <= 1000000000L ? x : -1;
}

static const line_entry *find_line(const parser *p, long id) {
    int lo = 0, hi = p->nle - 1; /* ids increase */
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (p->le[mid].id == id) return &p->le[mid];
        if (p->le[mid].id < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static cx_status parse_line(parser *p, const char *s, size_t n) {
    const char *all = s;
    size_t alln = n;
    trim(&all, &alln);
    if (!alln) return CX_OK; /* blank line */
    if (memchr(s, 0, n)) return perr(p, "NUL byte in the line (not a text file?)");
    size_t d = 0;
    while (d < n && isdigit((unsigned char)s[d])) d++;
    if (d == 0) return perr(p, "the line does not start with a story ID (a number, then a space): \"%.*s\"",
                            (int)(alln < 40 ? alln : 40), all);
    long id = parse_num(s, d);
    if (id < 0) return perr(p, "story ID \"%.*s\" out of range (1..1000000000)", (int)(d < 20 ? d : 20), s);
    if (d == n || s[d] != ' ') return perr(p, "story ID %ld is not followed by a space", id);
    if (id == 0) return perr(p, "story ID 0 (IDs start at 1)");
    if (id == 1) {
        GROW(p->st, p->nst, p->cst);
        p->st[p->nst++] = (cx_babi_story){.first_sentence = p->nsen, .first_question = p->nq, .line = p->line};
        p->nle = 0;
    } else if (p->nst == 0) {
        return perr(p, "the first story starts at ID %ld, not 1", id);
    } else if (id <= p->le[p->nle - 1].id) {
        return perr(p, "story ID %ld does not increase (previous line has ID %d; only ID 1 starts a new story)",
                    id, p->le[p->nle - 1].id);
    }
    cx_babi_story *story = &p->st[p->nst - 1];
    s += d + 1;
    n -= d + 1;
    /* the tab-separated fields */
    const char *f[3];
    size_t fl[3];
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '\t') {
            if (nf == 3) return perr(p, "more than 3 tab-separated fields (question, answer, supporting ids)");
            f[nf] = s + start;
            fl[nf] = i - start;
            nf++;
            start = i + 1;
        }
    }
    GROW(p->le, p->nle, p->cle);
    if (nf == 1) { /* a statement */
        const char *t = f[0];
        size_t tn = fl[0];
        trim(&t, &tn);
        if (tn && t[tn - 1] == '?')
            return perr(p, "question without an answer: no tab-separated answer field after the '?'");
        tmp_sentence ts = {.off = p->ntok, .line = p->line};
        cx_status st = tokenize(p, f[0], fl[0], &ts.len);
        if (st) return st;
        if (ts.len == 0) return perr(p, "empty sentence after story ID %ld", id);
        GROW(p->sen, p->nsen, p->csen);
        p->sen[p->nsen++] = ts;
        p->le[p->nle++] = (line_entry){.id = (int)id, .stmt = story->n_sentences, .line = p->line};
        story->n_sentences++;
        return CX_OK;
    }
    /* a question */
    tmp_question q = {.story = p->nst - 1, .n_facts = story->n_sentences, .line = p->line, .qoff = p->ntok};
    cx_status st = tokenize(p, f[0], fl[0], &q.qlen);
    if (st) return st;
    if (q.qlen == 0) return perr(p, "empty question after story ID %ld", id);
    const char *a = f[1];
    size_t an = fl[1];
    trim(&a, &an);
    if (!an) return perr(p, "question with an empty answer field (expected \"question?<TAB>answer<TAB>supporting ids\")");
    q.aoff = p->ntok;
    for (size_t i = 0, b = 0; i <= an; i++) {
        if (i == an || a[i] == ',') {
            const char *w = a + b;
            size_t wn = i - b;
            trim(&w, &wn);
            if (!wn) return perr(p, "empty word in the answer \"%.*s\"", (int)(an < 60 ? an : 60), a);
            int32_t wid;
            if ((st = word_id(p, w, wn, &wid))) return st;
            GROW(p->tok, p->ntok, p->ctok);
            p->tok[p->ntok++] = wid;
            q.alen++;
            b = i + 1;
        }
    }
    if (q.alen == 1) q.answer_id = p->tok[q.aoff];
    else if ((st = word_id(p, a, an, &q.answer_id))) return st;
    q.soff = p->nsup;
    if (nf == 3) {
        const char *u = f[2];
        size_t un = fl[2];
        for (size_t i = 0; i < un;) {
            while (i < un && isspace((unsigned char)u[i])) i++;
            size_t j = i;
            while (j < un && !isspace((unsigned char)u[j])) j++;
            if (j == i) break;
            long sid = parse_num(u + i, j - i);
            if (sid < 0) return perr(p, "supporting fact id \"%.*s\" is not a number", (int)(j - i < 20 ? j - i : 20), u + i);
            if (sid >= id)
                return perr(p, "supporting fact %ld is not an earlier line of this story (the question has ID %ld)", sid, id);
            const line_entry *e = find_line(p, sid);
            if (!e) return perr(p, "supporting fact %ld: no line with that ID in this story", sid);
            if (e->stmt < 0) return perr(p, "supporting fact %ld is a question (line %d), not a statement", sid, e->line);
            GROW(p->sup, p->nsup, p->csup);
            p->sup[p->nsup++] = e->stmt;
            q.ns++;
            i = j;
        }
    }
    GROW(p->qs, p->nq, p->cq);
    p->qs[p->nq++] = q;
    p->le[p->nle++] = (line_entry){.id = (int)id, .stmt = -1, .line = p->line};
    story->n_questions++;
    return CX_OK;
}

static void parser_free(parser *p) {
    free(p->tok);
    free(p->sen);
    free(p->qs);
    free(p->st);
    free(p->sup);
    free(p->le);
    free(p->scratch);
}

cx_status cx_babi_parse(const char *text, size_t n, const char *name, cx_babi_vocab *vocab,
                        cx_babi_unknown unk, cx_babi_set **out) {
    if (!out) return cx_set_error(CX_ERR_ARG, "cx_babi_parse: NULL output");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!vocab || (!text && n)) return cx_set_error(CX_ERR_ARG, "cx_babi_parse: %s: NULL text or vocabulary", name);
    if (unk != CX_BABI_UNK_ADD && unk != CX_BABI_UNK_ERROR)
        return cx_set_error(CX_ERR_ARG, "cx_babi_parse: %s: unknown-word policy %d", name, (int)unk);
    parser p = {.name = name, .v = vocab, .unk = unk};
    int vocab_size0 = vocab->size;
    cx_status st = CX_OK;
    size_t i = n >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0; /* a UTF-8 byte-order mark */
    while (i < n && !st) {
        const char *nl = memchr(text + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - text) : n, len = e - i;
        if (p.line == INT_MAX) {
            st = perr(&p, "too many lines");
            break;
        }
        p.line++;
        if (len && text[i + len - 1] == '\r') len--;
        st = parse_line(&p, text + i, len);
        i = e + 1;
    }
    if (!st && p.nst == 0) st = cx_set_error(CX_ERR_FORMAT, "%s: empty file (no stories)", name);
    else if (!st && p.nq == 0) st = cx_set_error(CX_ERR_FORMAT, "%s: no question lines (\"ID question?<TAB>answer<TAB>ids\")", name);
    if (st) {
        vocab_truncate(vocab, vocab_size0);
        parser_free(&p);
        return st;
    }
    cx_babi_set *s = cx_xcalloc(1, sizeof *s);
    s->name = cx_xstrdup(name);
    s->n_stories = p.nst;
    s->n_sentences = p.nsen;
    s->n_questions = p.nq;
    s->tokens = p.tok ? p.tok : cx_xmalloc(sizeof(int32_t));
    s->support_pool = p.sup ? p.sup : cx_xmalloc(sizeof(int));
    p.tok = NULL;
    p.sup = NULL;
    s->stories = p.st;
    p.st = NULL;
    s->sentences = cx_xcalloc((size_t)(p.nsen ? p.nsen : 1), sizeof *s->sentences);
    for (int k = 0; k < p.nsen; k++) {
        s->sentences[k] = (cx_babi_sentence){.ids = s->tokens + p.sen[k].off, .len = p.sen[k].len, .line = p.sen[k].line};
        if (p.sen[k].len > s->max_sentence_len) s->max_sentence_len = p.sen[k].len;
    }
    s->questions = cx_xcalloc((size_t)p.nq, sizeof *s->questions);
    for (int k = 0; k < p.nq; k++) {
        const tmp_question *t = &p.qs[k];
        s->questions[k] = (cx_babi_question){
            .story = t->story, .n_facts = t->n_facts, .query = s->tokens + t->qoff, .query_len = t->qlen,
            .answer = s->tokens + t->aoff, .answer_len = t->alen, .answer_id = t->answer_id,
            .support = s->support_pool + t->soff, .n_support = t->ns, .line = t->line};
        if (t->qlen > s->max_query_len) s->max_query_len = t->qlen;
        if (t->n_facts > s->max_facts) s->max_facts = t->n_facts;
        if (t->alen > s->max_answer_len) s->max_answer_len = t->alen;
    }
    parser_free(&p);
    *out = s;
    return CX_OK;
}

cx_status cx_babi_load(const char *path, cx_babi_vocab *vocab, cx_babi_unknown unk, cx_babi_set **out) {
    if (out) *out = NULL;
    if (!path || !vocab || !out) return cx_set_error(CX_ERR_ARG, "cx_babi_load: NULL argument");
    void *buf = NULL;
    size_t n = 0;
    cx_status st = cx_read_file(path, &buf, &n, 0);
    if (st) return st;
    st = cx_babi_parse(buf, n, path, vocab, unk, out);
    free(buf);
    return st;
}

void cx_babi_set_free(cx_babi_set *s) {
    if (!s) return;
    free(s->name);
    free(s->stories);
    free(s->sentences);
    free(s->questions);
    free(s->tokens);
    free(s->support_pool);
    free(s);
}

/* ---------------------------------------------------------------- text */
typedef struct { char *out; size_t cap, len; } sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    int k = vsnprintf(room ? b->out + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0) b->len += (size_t)k;
}

static void sb_words(sbuf *b, const cx_babi_vocab *v, const int32_t *ids, int n, const char *sep) {
    for (int i = 0; i < n; i++) {
        const char *w = cx_babi_vocab_word(v, ids[i]);
        sb_printf(b, "%s%s", i ? sep : "", w ? w : "?");
    }
}

int cx_babi_format_question(const cx_babi_set *s, const cx_babi_vocab *v, int q, char *out, size_t cap) {
    if (cap && out) out[0] = 0;
    if (!s || !v || q < 0 || q >= s->n_questions) return 0;
    sbuf b = {out, out ? cap : 0, 0};
    const cx_babi_question *Q = &s->questions[q];
    const cx_babi_story *st = &s->stories[Q->story];
    sb_printf(&b, "question %d (story %d, line %d)\n", q, Q->story, Q->line);
    for (int k = 0; k < Q->n_facts; k++) {
        const cx_babi_sentence *f = &s->sentences[st->first_sentence + k];
        bool sup = false;
        for (int j = 0; j < Q->n_support; j++) sup |= Q->support[j] == k;
        sb_printf(&b, "  %c%2d  ", sup ? '*' : ' ', k);
        sb_words(&b, v, f->ids, f->len, " ");
        sb_printf(&b, "\n");
    }
    sb_printf(&b, "  Q    ");
    sb_words(&b, v, Q->query, Q->query_len, " ");
    sb_printf(&b, "\n  A    ");
    sb_words(&b, v, Q->answer, Q->answer_len, ",");
    sb_printf(&b, "\n");
    return b.len > INT_MAX ? INT_MAX : (int)b.len;
}

/* ---------------------------------------------------------------- tensors */
cx_babi_tensor_opts cx_babi_tensor_defaults(void) { return (cx_babi_tensor_opts){0, 0, false}; }

cx_status cx_babi_tensors(const cx_babi_set *s, int first, int n, const cx_babi_tensor_opts *opts,
                          cx_tensor **memory, cx_tensor **query, cx_tensor **answer) {
    if (memory) *memory = NULL;
    if (query) *query = NULL;
    if (answer) *answer = NULL;
    if (!s || !memory || !query || !answer) return cx_set_error(CX_ERR_ARG, "cx_babi_tensors: NULL argument");
    if (n < 1 || first < 0 || first > s->n_questions - n)
        return cx_set_error(CX_ERR_ARG, "cx_babi_tensors: questions %d..%d outside the set's 0..%d", first,
                            first + n - 1, s->n_questions - 1);
    cx_babi_tensor_opts o = opts ? *opts : cx_babi_tensor_defaults();
    int M = o.memory, L = o.sentence_len;
    if (M <= 0 || L <= 0) {
        int mf = 1, ml = 1;
        for (int i = first; i < first + n; i++) {
            const cx_babi_question *q = &s->questions[i];
            const cx_babi_story *st = &s->stories[q->story];
            if (q->n_facts > mf) mf = q->n_facts;
            if (q->query_len > ml) ml = q->query_len;
            for (int k = 0; k < q->n_facts; k++)
                if (s->sentences[st->first_sentence + k].len > ml) ml = s->sentences[st->first_sentence + k].len;
        }
        if (M <= 0) M = mf;
        if (L <= 0) L = ml;
    }
    if ((int64_t)n * M * L > INT32_MAX)
        return cx_set_error(CX_ERR_ARG, "cx_babi_tensors: memory [%d, %d, %d] too large", n, M, L);
    cx_tensor *mem = cx_tensor_new(CX_I32, (int[]){n, M, L}, 3);
    cx_tensor *qt = cx_tensor_new(CX_I32, (int[]){n, L}, 2);
    cx_tensor *at = cx_tensor_new(CX_I32, (int[]){n}, 1);
    int32_t *pm = CX_I32P(mem), *pq = CX_I32P(qt), *pa = CX_I32P(at);
    for (int i = 0; i < n; i++) {
        const cx_babi_question *q = &s->questions[first + i];
        const cx_babi_story *st = &s->stories[q->story];
        int k = q->n_facts < M ? q->n_facts : M, base = st->first_sentence + q->n_facts - k;
        for (int r = 0; r < k; r++) {
            const cx_babi_sentence *f = &s->sentences[base + r];
            int row = o.recent_first ? k - 1 - r : r, len = f->len < L ? f->len : L;
            memcpy(pm + ((size_t)i * M + (size_t)row) * L, f->ids, (size_t)len * sizeof(int32_t));
        }
        int len = q->query_len < L ? q->query_len : L;
        memcpy(pq + (size_t)i * L, q->query, (size_t)len * sizeof(int32_t));
        pa[i] = q->answer_id;
    }
    *memory = mem;
    *query = qt;
    *answer = at;
    return CX_OK;
}

/* ---------------------------------------------------------------- sequences */
/* the length of story k's sequence: words and "." of the statements before
 * its last question, words, "?" and "-" of each question */
static long story_seq_len(const cx_babi_set *s, int k) {
    const cx_babi_story *st = &s->stories[k];
    if (st->n_questions < 1) return 0;
    const cx_babi_question *last = &s->questions[st->first_question + st->n_questions - 1];
    long len = 0;
    for (int i = 0; i < last->n_facts; i++) len += s->sentences[st->first_sentence + i].len + 1;
    for (int j = 0; j < st->n_questions; j++) len += s->questions[st->first_question + j].query_len + 2;
    return len;
}

cx_status cx_babi_sequences(const cx_babi_set *s, int first, int n, int vocab_size, cx_tensor **tokens,
                            cx_tensor **targets, int *lengths) {
    if (tokens) *tokens = NULL;
    if (targets) *targets = NULL;
    if (!s || !tokens || !targets) return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: NULL argument");
    if (n < 1 || first < 0 || first > s->n_stories - n)
        return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: stories %d..%d outside the set's 0..%d", first,
                            first + n - 1, s->n_stories - 1);
    if (vocab_size < 1 || vocab_size > INT32_MAX - CX_BABI_SEQ_EXTRA)
        return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: vocab_size = %d out of range", vocab_size);
    long T = 1;
    for (int k = first; k < first + n; k++) {
        long len = story_seq_len(s, k);
        if (len > T) T = len;
    }
    if (T * n > INT32_MAX)
        return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: [%ld, %d] tokens too many", T, n);
    /* every id of the chosen stories must lie below vocab_size */
    for (int k = first; k < first + n; k++) {
        const cx_babi_story *st = &s->stories[k];
        for (int i = 0; i < st->n_sentences; i++) {
            const cx_babi_sentence *f = &s->sentences[st->first_sentence + i];
            for (int w = 0; w < f->len; w++)
                if (f->ids[w] < 0 || f->ids[w] >= vocab_size)
                    return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: %s:%d holds word id %d, not below "
                                        "vocab_size %d", s->name, f->line, (int)f->ids[w], vocab_size);
        }
        for (int j = 0; j < st->n_questions; j++) {
            const cx_babi_question *q = &s->questions[st->first_question + j];
            bool bad = q->answer_id < 0 || q->answer_id >= vocab_size;
            for (int w = 0; w < q->query_len; w++) bad |= q->query[w] < 0 || q->query[w] >= vocab_size;
            if (bad)
                return cx_set_error(CX_ERR_ARG, "cx_babi_sequences: %s:%d holds a word id not below vocab_size %d",
                                    s->name, q->line, vocab_size);
        }
    }
    cx_tensor *tk = cx_tensor_new(CX_I32, (int[]){(int)T, n}, 2);
    cx_tensor *tg = cx_tensor_new(CX_I32, (int[]){(int)T, n}, 2);
    int32_t *pt = CX_I32P(tk), *pg = CX_I32P(tg);
    for (long i = 0; i < T * n; i++) pt[i] = CX_BABI_NIL, pg[i] = -100;
    for (int b = 0; b < n; b++) {
        const cx_babi_story *st = &s->stories[first + b];
        long t = 0;
        int next_fact = 0;
#define PUT(tok) (pt[t * n + b] = (int32_t)(tok), t++)
        for (int j = 0; j < st->n_questions; j++) {
            const cx_babi_question *q = &s->questions[st->first_question + j];
            for (; next_fact < q->n_facts; next_fact++) {
                const cx_babi_sentence *f = &s->sentences[st->first_sentence + next_fact];
                for (int w = 0; w < f->len; w++) PUT(f->ids[w]);
                PUT(vocab_size + CX_BABI_SEQ_STOP);
            }
            for (int w = 0; w < q->query_len; w++) PUT(q->query[w]);
            PUT(vocab_size + CX_BABI_SEQ_QUERY);
            pg[t * n + b] = q->answer_id;
            PUT(vocab_size + CX_BABI_SEQ_ANSWER);
        }
#undef PUT
        if (lengths) lengths[b] = (int)t;
    }
    *tokens = tk;
    *targets = tg;
    return CX_OK;
}
