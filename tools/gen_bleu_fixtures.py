#!/usr/bin/python3
"""Generate the BLEU reference fixture of tests/data/test_bleu.c.

Run with Debian's python3-nltk (3.8):  /usr/bin/python3 tools/gen_bleu_fixtures.py

Writes tests/fixtures/bleu/bleu_cases.txt: random corpora of token-id
sequences (small vocabularies so that n-grams of every order match; about
half the candidates are edited copies of a reference; empty and 1-3 token
candidates and empty references included) and, for each corpus,

  nltk  BLEU-1..4 from nltk.translate.bleu_score.corpus_bleu with weights
        (1,), (1/2, 1/2), (1/3, 1/3, 1/3), (1/4,)*4 and no smoothing;
  std   BLEU-1..4 from the standard definition, written here independently of
        NLTK and of the C code (Papineni et al. 2002: clipped counts over the
        corpus, a candidate of length c has max(0, c - n + 1) n-grams, closest
        reference length with ties to the shorter one, BP = 1 if c > r,
        exp(1 - r/c) if 0 < c <= r, 0 if c = 0), with its counts.

The two differ only in NLTK's max(1, .) n-gram count for a candidate shorter
than n (nltk.translate.bleu_score.modified_precision); the script checks that
they agree on every corpus whose candidates all have 4 tokens or more, and
that the standard reference with NLTK's count reproduces NLTK everywhere.
Values are printed with 17 significant digits. File format, one item per
line:
  cases N
  case K                      K candidates follow
  cand L t1 .. tL
  refs R                      R references of that candidate follow
  ref L t1 .. tL
  ...
  nltk b1 b2 b3 b4
  std b1 b2 b3 b4
  counts m1 t1 m2 t2 m3 t3 m4 t4 c r     (standard counts: matches and totals
                                          per order, candidate and reference length)
"""
import math
import os
import random
import sys
import warnings
from collections import Counter

from nltk.translate.bleu_score import corpus_bleu

N_CASES = 400
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "bleu", "bleu_cases.txt")

rng = random.Random(20240611)


def grams(seq, n):
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))


def reference_bleu(cands, refss, nmax=4, nltk_count=False):
    """Standard corpus BLEU, cumulative BLEU-1..nmax (independent of NLTK)."""
    match = [0] * nmax
    total = [0] * nmax
    c = r = 0
    for cand, refs in zip(cands, refss):
        c += len(cand)
        # closest reference length, the shorter one on ties
        best = None
        for ref in refs:
            d = abs(len(ref) - len(cand))
            if best is None or d < abs(best - len(cand)) or (d == abs(best - len(cand)) and len(ref) < best):
                best = len(ref)
        r += best
        for n in range(1, nmax + 1):
            cg = grams(cand, n)
            most = Counter()
            for ref in refs:
                for g, k in grams(ref, n).items():
                    most[g] = max(most[g], k)
            match[n - 1] += sum(min(k, most[g]) for g, k in cg.items())
            cnt = max(0, len(cand) - n + 1)
            total[n - 1] += max(1, cnt) if nltk_count else cnt
    bp = 0.0 if c == 0 else (1.0 if c > r else math.exp(1 - r / c))
    bleu = []
    for k in range(1, nmax + 1):
        if any(match[n] == 0 for n in range(k)):
            bleu.append(0.0)
        else:
            bleu.append(bp * math.exp(math.fsum(math.log(match[n] / total[n]) / k for n in range(k))))
    return bleu, match, total, c, r


def edit(seq, vocab):
    s = list(seq)
    for _ in range(rng.randint(0, 3)):
        op = rng.random()
        if op < 0.4 and s:
            s[rng.randrange(len(s))] = rng.randrange(vocab)
        elif op < 0.7 and s:
            del s[rng.randrange(len(s))]
        else:
            s.insert(rng.randint(0, len(s)), rng.randrange(vocab))
    return s


def rand_seq(vocab, lo, hi):
    return [rng.randrange(vocab) for _ in range(rng.randint(lo, hi))]


def make_case(i):
    vocab = rng.randint(2, 10)
    long_only = i % 4 == 0          # every candidate >= 4 tokens: NLTK == standard
    k = rng.randint(1, 8)
    cands, refss = [], []
    for _ in range(k):
        refs = []
        for _ in range(rng.randint(1, 4)):
            refs.append([] if rng.random() < 0.03 else rand_seq(vocab, 1, 14))
        u = rng.random()
        if u < 0.5:
            cand = edit(rng.choice(refs), vocab)
        elif u < 0.6:
            cand = list(rng.choice(refs))
        elif u < 0.75:
            cand = rand_seq(vocab, 0, 3)
        else:
            cand = rand_seq(vocab, 0, 14)
        if long_only:
            while len(cand) < 4:
                cand.append(rng.randrange(vocab))
        cands.append(cand)
        refss.append(refs)
    return cands, refss


def main():
    warnings.filterwarnings("ignore")  # NLTK warns about zero counts
    weights = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]
    lines = [f"cases {N_CASES}"]
    worst_nltk = worst_long = 0.0
    n_long = 0
    for i in range(N_CASES):
        cands, refss = make_case(i)
        nl = corpus_bleu(refss, cands, weights=weights)
        if not isinstance(nl, list):
            nl = [nl] * 4
        std, match, total, c, r = reference_bleu(cands, refss)
        compat = reference_bleu(cands, refss, nltk_count=True)[0]
        worst_nltk = max(worst_nltk, max(abs(a - b) for a, b in zip(nl, compat)))
        if all(len(x) >= 4 for x in cands):
            n_long += 1
            worst_long = max(worst_long, max(abs(a - b) for a, b in zip(nl, std)))
        lines.append(f"case {len(cands)}")
        for cand, refs in zip(cands, refss):
            lines.append(" ".join(["cand", str(len(cand))] + [str(t) for t in cand]))
            lines.append(f"refs {len(refs)}")
            for ref in refs:
                lines.append(" ".join(["ref", str(len(ref))] + [str(t) for t in ref]))
        lines.append("nltk " + " ".join(f"{v:.17g}" for v in nl))
        lines.append("std " + " ".join(f"{v:.17g}" for v in std))
        lines.append("counts " + " ".join(f"{m} {t}" for m, t in zip(match, total)) + f" {c} {r}")
    if worst_nltk > 1e-12 or worst_long > 1e-12:
        sys.exit(f"reference disagrees with NLTK: {worst_nltk:g} (NLTK counts), {worst_long:g} (long candidates)")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, OUT)
    print(f"wrote {os.path.normpath(OUT)}: {N_CASES} corpora; standard reference with NLTK's count vs NLTK: "
          f"max |diff| {worst_nltk:.3g}; standard vs NLTK on the {n_long} corpora without short candidates: "
          f"max |diff| {worst_long:.3g}")


if __name__ == "__main__":
    main()
