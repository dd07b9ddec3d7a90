/* Corpus BLEU and exact match (cx_bleu): hand-computed examples (Papineni et
 * al. 2002), perfect and empty matches, the brevity penalty, special tokens,
 * NLTK's count for short candidates, errors, and agreement with NLTK 3.8's
 * corpus_bleu and an independent Python reference on 400 random corpora
 * (tests/fixtures/bleu/bleu_cases.txt, from tools/gen_bleu_fixtures.py). */
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define FIXTURE "tests/fixtures/bleu/bleu_cases.txt"

/* ---- words to ids: a small table shared by every example */
static char words[256][24];
static int n_words;

static int word_id(const char *w, size_t n) {
    for (int i = 0; i < n_words; i++)
        if (strlen(words[i]) == n && !strncmp(words[i], w, n)) return i + 10; /* ids from 10 up */
    if (n_words == 256 || n >= sizeof words[0]) abort();
    memcpy(words[n_words], w, n);
    words[n_words][n] = 0;
    return (n_words++) + 10;
}

/* Encode space-separated words into ids (at most 64); returns the sequence. */
static cx_token_seq enc(const char *text, int32_t *ids) {
    int k = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        size_t n = strcspn(p, " ");
        ids[k++] = word_id(p, n);
        p += n;
    }
    return (cx_token_seq){ids, k};
}

static const char *H1 = "it is a guide to action which ensures that the military always obeys the commands of the party";
static const char *H2 = "it is to insure the troops forever hearing the activity guidebook that party direct";
static const char *R1 = "it is a guide to action that ensures that the military will forever heed party commands";
static const char *R2 = "it is the guiding principle which guarantees the military forces always being under the command of the party";
static const char *R3 = "it is the practical guide for the army always to heed the directions of the party";

/* Papineni et al. 2002, section 2.1 (lower-cased): candidate 1 has modified
 * n-gram precisions 17/18, 10/17, 7/16, 4/15 against the three references,
 * length 18 = the closest reference length (16, 18, 16), so BP = 1 and
 * BLEU = (17/18 * 10/17 * 7/16 * 4/15)^(1/4) = 0.50456668... (NLTK's
 * sentence_bleu gives 0.5045666840058485). Candidate 2: 8/14 and 1/13 for
 * unigrams and bigrams (the paper's numbers), no 3-gram match. */
static void papineni_example(void) {
    int32_t h1[64], h2[64], r[3][64];
    cx_token_seq c[2] = {enc(H1, h1), enc(H2, h2)};
    cx_token_seq refs[6] = {enc(R1, r[0]), enc(R2, r[1]), enc(R3, r[2])};
    refs[3] = refs[0], refs[4] = refs[1], refs[5] = refs[2];
    int one[2] = {0, 3};
    cx_bleu_result b;
    CHECK(cx_bleu(c, 1, refs, one, NULL, &b) == CX_OK);
    CHECK(b.n_max == 4 && b.n == 1 && b.cand_len == 18 && b.ref_len == 18 && b.bp == 1.0);
    CHECK(b.match[0] == 17 && b.total[0] == 18 && b.match[1] == 10 && b.total[1] == 17);
    CHECK(b.match[2] == 7 && b.total[2] == 16 && b.match[3] == 4 && b.total[3] == 15);
    CHECK_NEAR(b.bleu[3], pow(17.0 / 18 * 10.0 / 17 * 7.0 / 16 * 4.0 / 15, 0.25), 1e-15);
    CHECK_NEAR(b.bleu[3], 0.5045666840058485, 1e-15);
    CHECK_NEAR(b.bleu[0], 17.0 / 18, 1e-15);
    CHECK_NEAR(b.bleu[1], sqrt(17.0 / 18 * 10.0 / 17), 1e-15);
    CHECK_NEAR(b.precision[2], 7.0 / 16, 1e-15);
    CHECK(b.n_exact == 0 && b.exact_match == 0);
    /* candidate 2 alone: 8/14, 1/13, then nothing: BLEU-3 and BLEU-4 are 0 */
    CHECK(cx_bleu(c + 1, 1, refs, one, NULL, &b) == CX_OK);
    CHECK(b.match[0] == 8 && b.total[0] == 14 && b.match[1] == 1 && b.total[1] == 13);
    CHECK(b.match[2] == 0 && b.total[2] == 12 && b.bleu[2] == 0 && b.bleu[3] == 0);
    /* closest reference 16 > 14: BP = exp(1 - 16/14) */
    CHECK(b.ref_len == 16 && b.cand_len == 14);
    CHECK_NEAR(b.bp, exp(1 - 16.0 / 14), 1e-15);
    CHECK_NEAR(b.bleu[1], exp(1 - 16.0 / 14) * sqrt(8.0 / 14 * 1.0 / 13), 1e-15);
    /* the corpus of both: counts add up before dividing (not an average of
     * sentence scores): p = 25/32, 11/30, 7/28, 4/26, c = 32, r = 18 + 16,
     * BP = exp(1 - 34/32); NLTK's corpus_bleu: 0.3043537261305561 */
    int two[3] = {0, 3, 6};
    CHECK(cx_bleu(c, 2, refs, two, NULL, &b) == CX_OK);
    CHECK(b.match[0] == 25 && b.total[0] == 32 && b.match[3] == 4 && b.total[3] == 26);
    CHECK(b.cand_len == 32 && b.ref_len == 34);
    double want = exp(1 - 34.0 / 32) * pow(25.0 / 32 * 11.0 / 30 * 7.0 / 28 * 4.0 / 26, 0.25);
    CHECK_NEAR(b.bleu[3], want, 1e-15);
    CHECK_NEAR(b.bleu[3], 0.3043537261305561, 1e-15);
    /* the paper's clipping example: "the" x 7 against two references: 2/7 */
    int32_t t[64], q1[64], q2[64];
    cx_token_seq tc = enc("the the the the the the the", t);
    cx_token_seq tr[2] = {enc("the cat is on the mat", q1), enc("there is a cat on the mat", q2)};
    int tw[2] = {0, 2};
    cx_bleu_opts o = cx_bleu_defaults();
    o.n_max = 1;
    CHECK(cx_bleu(&tc, 1, tr, tw, &o, &b) == CX_OK);
    CHECK(b.match[0] == 2 && b.total[0] == 7 && b.n_max == 1);
    /* references of 6 and 7 tokens: 7 is the closest to c = 7, BP = 1 */
    CHECK(b.ref_len == 7 && b.bp == 1.0);
    CHECK_NEAR(b.bleu[0], 2.0 / 7, 1e-15);
}

static void perfect_and_zero(void) {
    int32_t a[64], r2[64];
    cx_token_seq c = enc("a sneaker left of a bag", a);
    cx_token_seq refs[2] = {enc("a bag above a sneaker", r2), c};
    int rs[2] = {0, 2};
    cx_bleu_result b;
    CHECK(cx_bleu(&c, 1, refs, rs, NULL, &b) == CX_OK);
    for (int k = 0; k < 4; k++) CHECK(b.bleu[k] == 1.0 && b.precision[k] == 1.0);
    CHECK(b.bp == 1.0 && b.n_exact == 1 && b.exact_match == 1.0);
    /* no 4-gram in common, every other order matches: BLEU-4 = 0 without smoothing */
    int32_t x[64], y[64];
    cx_token_seq cx_ = enc("a b c x a b c", x), ry = enc("a b c y a b c", y);
    int one[2] = {0, 1};
    CHECK(cx_bleu(&cx_, 1, &ry, one, NULL, &b) == CX_OK);
    CHECK(b.match[3] == 0 && b.total[3] == 4 && b.match[2] == 2 && b.total[2] == 5);
    CHECK(b.bleu[0] > 0 && b.bleu[1] > 0 && b.bleu[2] > 0 && b.bleu[3] == 0);
    CHECK_NEAR(b.bleu[0], 6.0 / 7, 1e-15);
    CHECK(b.n_exact == 0);
    /* nothing in common at all */
    int32_t p[64], q[64];
    cx_token_seq cp = enc("p p q", p), rq = enc("r s t", q);
    CHECK(cx_bleu(&cp, 1, &rq, one, NULL, &b) == CX_OK);
    for (int k = 0; k < 4; k++) CHECK(b.bleu[k] == 0);
    CHECK(b.precision[0] == 0 && b.bp == 1.0);
    /* empty corpus */
    CHECK(cx_bleu(NULL, 0, NULL, NULL, NULL, &b) == CX_OK);
    CHECK(b.n == 0 && b.bleu[0] == 0 && b.exact_match == 0 && b.n_max == 4);
}

static void brevity_penalty(void) {
    int32_t a[64], b6[64], b3[64], b7[64], b5[64];
    cx_bleu_result b;
    int one[2] = {0, 1}, two[2] = {0, 2};
    /* c = 4 < r = 6: BP = exp(1 - 6/4); the candidate is a prefix, so p_n = 1 */
    cx_token_seq c4 = enc("u v w x", a), r6 = enc("u v w x y z", b6);
    CHECK(cx_bleu(&c4, 1, &r6, one, NULL, &b) == CX_OK);
    CHECK(b.cand_len == 4 && b.ref_len == 6);
    CHECK_NEAR(b.bp, exp(1 - 6.0 / 4), 1e-15);
    for (int k = 0; k < 4; k++) CHECK_NEAR(b.bleu[k], exp(-0.5), 1e-15);
    /* c > r: BP = 1; c == r: BP = 1 */
    CHECK(cx_bleu(&r6, 1, &c4, one, NULL, &b) == CX_OK);
    CHECK(b.bp == 1.0 && b.cand_len == 6 && b.ref_len == 4);
    CHECK(cx_bleu(&r6, 1, &r6, one, NULL, &b) == CX_OK && b.bp == 1.0);
    /* closest reference: 3 and 7 are both 2 away from 5: the shorter wins (NLTK), r = 3, BP = 1 */
    int32_t c5i[64];
    cx_token_seq c5 = enc("u v w x y", c5i);
    cx_token_seq r37[2] = {enc("u v w x y z u", b7), enc("u v w", b3)};
    CHECK(cx_bleu(&c5, 1, r37, two, NULL, &b) == CX_OK);
    CHECK(b.ref_len == 3 && b.bp == 1.0);
    /* 6 and 4 are both 1 away from 5: 4 wins; a reference of exactly 5 beats both */
    int32_t b4[64];
    cx_token_seq r46[3] = {enc("u v w x y z", b6), enc("u v w x", b4), enc("a b c d e", b5)};
    CHECK(cx_bleu(&c5, 1, r46, two, NULL, &b) == CX_OK && b.ref_len == 4);
    int three[2] = {0, 3};
    CHECK(cx_bleu(&c5, 1, r46, three, NULL, &b) == CX_OK && b.ref_len == 5);
    /* an empty candidate: c = 0, BP = 0, BLEU 0; it still counts in r */
    cx_token_seq empty = {NULL, 0};
    CHECK(cx_bleu(&empty, 1, &r6, one, NULL, &b) == CX_OK);
    CHECK(b.cand_len == 0 && b.ref_len == 6 && b.bp == 0 && b.bleu[0] == 0 && b.total[0] == 0);
    /* the brevity penalty is corpus-level: a long and a short candidate balance */
    cx_token_seq cs[2] = {r6, c4}, rr[2] = {c4, r6};
    int rs2[3] = {0, 1, 2};
    CHECK(cx_bleu(cs, 2, rr, rs2, NULL, &b) == CX_OK);
    CHECK(b.cand_len == 10 && b.ref_len == 10 && b.bp == 1.0);
}

/* start/pad dropped, the sequence cut at end: a padded caption scores as its words */
static void special_tokens(void) {
    enum { PAD = 0, START = 1, END = 2 };
    int32_t cand[] = {START, 10, 11, 12, 13, END, 14, 15, PAD, PAD};
    int32_t ref[] = {START, 10, 11, 12, 13, 16, END, PAD, PAD, PAD, PAD, PAD};
    int32_t cand_plain[] = {10, 11, 12, 13}, ref_plain[] = {10, 11, 12, 13, 16};
    cx_token_seq c = {cand, 10}, r = {ref, 12}, cp = {cand_plain, 4}, rp = {ref_plain, 5};
    int one[2] = {0, 1};
    cx_bleu_opts o = cx_bleu_defaults();
    o.start_id = START;
    o.pad_id = PAD;
    o.end_id = END;
    cx_bleu_result a, b;
    CHECK(cx_bleu(&c, 1, &r, one, &o, &a) == CX_OK);
    CHECK(cx_bleu(&cp, 1, &rp, one, NULL, &b) == CX_OK);
    CHECK(a.cand_len == 4 && a.ref_len == 5);
    for (int k = 0; k < 4; k++) CHECK(a.bleu[k] == b.bleu[k] && a.match[k] == b.match[k] && a.total[k] == b.total[k]);
    /* exact match after stripping */
    int32_t ref2[] = {START, 10, 11, 12, 13, END, PAD};
    cx_token_seq r2 = {ref2, 7};
    CHECK(cx_bleu(&c, 1, &r2, one, &o, &a) == CX_OK && a.n_exact == 1 && a.bleu[3] == 1.0);
    /* without the options the specials are ordinary tokens */
    CHECK(cx_bleu(&c, 1, &r2, one, NULL, &a) == CX_OK && a.n_exact == 0 && a.cand_len == 10);
    /* a pad inside the words is dropped too (documented: pad tokens are skipped anywhere) */
    int32_t cand3[] = {START, 10, PAD, 11, 12, 13, END};
    cx_token_seq c3 = {cand3, 7};
    CHECK(cx_bleu(&c3, 1, &r2, one, &o, &a) == CX_OK && a.n_exact == 1);
}

/* NLTK counts a candidate shorter than n as one n-gram of order n */
static void nltk_short_count(void) {
    int32_t a[64], r[64];
    cx_token_seq c = enc("a bag", a), ref = enc("a bag left of a shirt", r);
    int one[2] = {0, 1};
    cx_bleu_result s, n;
    cx_bleu_opts o = cx_bleu_defaults();
    CHECK(cx_bleu(&c, 1, &ref, one, &o, &s) == CX_OK);
    o.nltk_short = true;
    CHECK(cx_bleu(&c, 1, &ref, one, &o, &n) == CX_OK);
    CHECK(s.total[0] == 2 && s.total[1] == 1 && s.total[2] == 0 && s.total[3] == 0);
    CHECK(n.total[0] == 2 && n.total[1] == 1 && n.total[2] == 1 && n.total[3] == 1);
    CHECK(s.bleu[1] == n.bleu[1] && s.bleu[1] > 0);
    CHECK(s.bleu[2] == 0 && n.bleu[2] == 0); /* no trigram: 0 either way */
}

static void errors(void) {
    int32_t a[4] = {1, 2, 3, 4};
    cx_token_seq c = {a, 4}, bad = {a, -1}, null_ids = {NULL, 2};
    int one[2] = {0, 1}, none[2] = {0, 0}, off[2] = {1, 2};
    cx_bleu_result b;
    b.n = 7;
    CHECK(cx_bleu(&c, 1, &c, one, NULL, NULL) == CX_ERR_ARG);
    CHECK(cx_bleu(&c, -1, &c, one, NULL, &b) == CX_ERR_ARG && b.n == 0);
    CHECK(cx_bleu(NULL, 1, &c, one, NULL, &b) == CX_ERR_ARG);
    CHECK(cx_bleu(&c, 1, NULL, one, NULL, &b) == CX_ERR_ARG);
    CHECK(cx_bleu(&c, 1, &c, NULL, NULL, &b) == CX_ERR_ARG);
    CHECK(cx_bleu(&c, 1, &c, none, NULL, &b) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "candidate 0 has no reference") != NULL);
    CHECK(cx_bleu(&c, 1, &c, off, NULL, &b) == CX_ERR_ARG);
    CHECK(cx_bleu(&bad, 1, &c, one, NULL, &b) == CX_ERR_ARG);
    CHECK(strstr(cx_last_error(), "candidate 0 has length -1") != NULL);
    CHECK(cx_bleu(&c, 1, &bad, one, NULL, &b) == CX_ERR_ARG);
    CHECK(cx_bleu(&null_ids, 1, &c, one, NULL, &b) == CX_ERR_ARG);
    cx_bleu_opts o = cx_bleu_defaults();
    o.n_max = 0;
    CHECK(cx_bleu(&c, 1, &c, one, &o, &b) == CX_ERR_ARG);
    o.n_max = CX_BLEU_MAX_N + 1;
    CHECK(cx_bleu(&c, 1, &c, one, &o, &b) == CX_ERR_ARG && strstr(cx_last_error(), "n_max") != NULL);
    o.n_max = CX_BLEU_MAX_N; /* the highest order works */
    CHECK(cx_bleu(&c, 1, &c, one, &o, &b) == CX_OK && b.bleu[3] == 1.0 && b.bleu[4] == 0 && b.total[4] == 0);
}

/* ---- the fixture: NLTK and the independent Python reference */
static bool expect_word(FILE *f, const char *w) {
    char buf[16];
    return fscanf(f, "%15s", buf) == 1 && !strcmp(buf, w);
}

static void against_fixture(void) {
    FILE *f = fopen(FIXTURE, "r");
    CHECK_MSG(f != NULL, "cannot open %s", FIXTURE);
    if (!f) return;
    int n_cases = 0;
    CHECK(expect_word(f, "cases") && fscanf(f, "%d", &n_cases) == 1 && n_cases >= 300);
    double worst_nltk = 0, worst_std = 0;
    int checked = 0, counts_ok = 0;
    for (int cs = 0; cs < n_cases; cs++) {
        int k = 0;
        if (!expect_word(f, "case") || fscanf(f, "%d", &k) != 1 || k < 1 || k > 64) break;
        cx_token_seq cands[64], refs[64 * 8];
        int32_t *store = malloc(64 * 9 * 32 * sizeof(int32_t));
        int used = 0;
        int rs[65] = {0};
        bool ok = store != NULL;
        for (int i = 0; i < k && ok; i++) {
            int len = 0, nr = 0;
            ok = expect_word(f, "cand") && fscanf(f, "%d", &len) == 1 && len >= 0 && len < 32;
            for (int t = 0; t < len && ok; t++) ok = fscanf(f, "%d", &store[used + t]) == 1;
            cands[i] = (cx_token_seq){store + used, len};
            used += 32;
            ok = ok && expect_word(f, "refs") && fscanf(f, "%d", &nr) == 1 && nr >= 1 && nr <= 8;
            rs[i + 1] = rs[i] + (ok ? nr : 0);
            for (int j = 0; j < nr && ok; j++) {
                ok = expect_word(f, "ref") && fscanf(f, "%d", &len) == 1 && len >= 0 && len < 32;
                for (int t = 0; t < len && ok; t++) ok = fscanf(f, "%d", &store[used + t]) == 1;
                refs[rs[i] + j] = (cx_token_seq){store + used, len};
                used += 32;
            }
        }
        double nl[4], sd[4];
        long long cnt[10];
        ok = ok && expect_word(f, "nltk") && fscanf(f, "%lf %lf %lf %lf", nl, nl + 1, nl + 2, nl + 3) == 4;
        ok = ok && expect_word(f, "std") && fscanf(f, "%lf %lf %lf %lf", sd, sd + 1, sd + 2, sd + 3) == 4;
        ok = ok && expect_word(f, "counts");
        for (int j = 0; j < 10 && ok; j++) ok = fscanf(f, "%lld", &cnt[j]) == 1;
        CHECK_MSG(ok, "fixture case %d is malformed", cs);
        if (!ok) {
            free(store);
            break;
        }
        cx_bleu_opts o = cx_bleu_defaults();
        cx_bleu_result a, b;
        CHECK(cx_bleu(cands, k, refs, rs, &o, &a) == CX_OK);
        o.nltk_short = true;
        CHECK(cx_bleu(cands, k, refs, rs, &o, &b) == CX_OK);
        bool same = a.cand_len == cnt[8] && a.ref_len == cnt[9];
        for (int g = 0; g < 4; g++) {
            same = same && a.match[g] == cnt[2 * g] && a.total[g] == cnt[2 * g + 1];
            double dn = fabs(b.bleu[g] - nl[g]), ds = fabs(a.bleu[g] - sd[g]);
            if (dn > worst_nltk) worst_nltk = dn;
            if (ds > worst_std) worst_std = ds;
        }
        CHECK_MSG(same, "fixture case %d: counts differ", cs);
        counts_ok += same;
        checked++;
        free(store);
    }
    fclose(f);
    CHECK(checked == n_cases && counts_ok == n_cases);
    CHECK_MSG(worst_nltk <= 1e-12, "max |cx_bleu(nltk_short) - NLTK corpus_bleu| = %g", worst_nltk);
    CHECK_MSG(worst_std <= 1e-12, "max |cx_bleu - standard reference| = %g", worst_std);
    fprintf(stderr, "bleu fixture: %d corpora, max |diff| vs NLTK %.3g, vs the standard reference %.3g\n", checked,
            worst_nltk, worst_std);
}

/* Long sequences: the sorted-n-gram counting equals a naive count. */
static void long_sequences(void) {
    enum { LEN = 600 };
    int32_t *c = malloc(LEN * sizeof(int32_t)), *r = malloc(2 * LEN * sizeof(int32_t));
    CHECK(c && r);
    if (!c || !r) {
        free(c);
        free(r);
        return;
    }
    cx_rng g = cx_rng_new(5);
    for (int i = 0; i < LEN; i++) c[i] = (int32_t)cx_rng_below(&g, 4);
    for (int i = 0; i < 2 * LEN; i++) r[i] = (int32_t)cx_rng_below(&g, 4);
    cx_token_seq cs = {c, LEN}, rs[2] = {{r, LEN}, {r + LEN, LEN - 50}};
    int st[2] = {0, 2};
    cx_bleu_result b;
    CHECK(cx_bleu(&cs, 1, rs, st, NULL, &b) == CX_OK);
    for (int n = 1; n <= 4; n++) { /* naive clipped count */
        long match = 0;
        for (int p = 0; p + n <= LEN; p++) {
            bool seen = false; /* count each distinct n-gram once, at its first position */
            for (int q = 0; q < p && !seen; q++) seen = !memcmp(c + q, c + p, (size_t)n * sizeof(int32_t));
            if (seen) continue;
            int in_c = 0, most = 0;
            for (int q = 0; q + n <= LEN; q++) in_c += !memcmp(c + q, c + p, (size_t)n * sizeof(int32_t));
            for (int j = 0; j < 2; j++) {
                int in_r = 0;
                for (int q = 0; q + n <= rs[j].len; q++) in_r += !memcmp(rs[j].ids + q, c + p, (size_t)n * sizeof(int32_t));
                if (in_r > most) most = in_r;
            }
            match += in_c < most ? in_c : most;
        }
        CHECK_MSG(b.match[n - 1] == match, "order %d: %lld vs naive %ld", n, (long long)b.match[n - 1], match);
        CHECK(b.total[n - 1] == LEN - n + 1);
    }
    free(c);
    free(r);
}

int main(void) {
    RUN(papineni_example);
    RUN(perfect_and_zero);
    RUN(brevity_penalty);
    RUN(special_tokens);
    RUN(nltk_short_count);
    RUN(errors);
    RUN(against_fixture);
    RUN(long_sequences);
    TEST_END();
}
