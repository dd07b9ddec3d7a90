#!/usr/bin/python3
"""The story shapes of bAbI tasks 4 and 16 that src/data/babi_gen_logic.c
follows, measured on a file in the released format: a released
qa4_two-arg-relations_*.txt / qa16_basic-induction_*.txt or one written by
`cortex babi gen --task 4|16`. Every answer is also recomputed by a rule
solver (the count of questions it gets wrong is printed; 0 expected).

    /usr/bin/python3 tools/babi_shape_stats.py 4 FILE
    /usr/bin/python3 tools/babi_shape_stats.py 16 FILE

Task 4 prints: the share of statements with an end place (not the middle
one of the row) as the subject; the share of questions that name the
supporting statement's object and ask for its subject ("as written");
the share of questions naming the middle place.
Task 16 prints: the share of stories where every actor's colour line comes
after their animal line; how many other actors share the asked actor's
animal; whether the answer is the colour of the one introduced last; the
asked actor's animal line position; the share of colour lines right after
their actor's animal line; the share of same-animal pairs with different
colours."""
import collections
import re
import sys

OPP = {"north": "south", "south": "north", "east": "west", "west": "east"}


def stories(path):
    facts = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            num, rest = line.split(" ", 1)
            if num == "1":
                facts = []
            if "\t" in rest:
                q, a, s = rest.split("\t")[:3]
                yield list(facts), q.strip(), a.strip(), [int(x) for x in s.split()]
            else:
                facts.append(rest.strip())


def share(c, k, n):
    return "%-58s %5d / %-5d %.3f" % (k, c, n, c / n if n else 0.0)


def task4(path):
    n = end_subj = stmts = written = middle = wrong = 0
    for facts, q, a, sup in stories(path):
        rel = [re.match(r"The (\w+) is (\w+) of the (\w+)\.", s).groups() for s in facts]
        places = [r[0] for r in rel] + [r[2] for r in rel]
        mid = [p for p in set(places) if places.count(p) == 2][0]
        for r in rel:
            end_subj += r[0] != mid
            stmts += 1
        m1 = re.match(r"What is (\w+) of the (\w+)\?", q)
        m2 = re.match(r"What is the (\w+) (\w+) of\?", q)
        known = set()
        for x, d, y in rel:
            known |= {(x, d, y), (y, OPP[d], x)}
        if m1:
            d, x = m1.groups()
            got = [s for (s, dd, o) in known if dd == d and o == x]
        else:
            x, d = m2.groups()
            got = [o for (s, dd, o) in known if s == x and dd == d]
        wrong += got != [a]
        s_, d_, o_ = rel[sup[0] - 1]
        written += x == o_ and a == s_
        middle += x == mid
        n += 1
    print(share(end_subj, "statements with an end place as the subject", stmts))
    print(share(written, "questions naming the supporting statement's object", n))
    print(share(middle, "questions naming the middle place", n))
    print(share(wrong, "answers the rule solver disagrees with", n))


def task16(path):
    n = ordered = last_ok = adjacent = colored = pairs = differ = wrong = 0
    others = collections.Counter()
    zline = collections.Counter()
    for facts, q, a, sup in stories(path):
        animal, color = {}, {}
        for i, s in enumerate(facts, 1):
            m = re.match(r"(\w+) is an? (\w+)\.", s)
            if m:
                animal[m.group(1)] = (i, m.group(2))
            else:
                m = re.match(r"(\w+) is (\w+)\.", s)
                color[m.group(1)] = (i, m.group(2))
        z = re.match(r"What color is (\w+)\?", q).group(1)
        ordered += all(x in animal and animal[x][0] < color[x][0] for x in color)
        same = [x for x in animal if x != z and animal[x][1] == animal[z][1]]
        others[len(same)] += 1
        latest = max(same, key=lambda x: animal[x][0]) if same else None
        guess = color[latest][1] if latest in color else None
        last_ok += guess == a
        wrong += guess != a
        zline[animal[z][0]] += 1
        for x in color:
            colored += 1
            adjacent += color[x][0] == animal[x][0] + 1
        cs = sorted(color)
        for i, x in enumerate(cs):
            for y in cs[i + 1:]:
                if animal[x][1] == animal[y][1]:
                    pairs += 1
                    differ += color[x][1] != color[y][1]
        n += 1
    print(share(ordered, "stories with every colour after its animal line", n))
    for k in sorted(others):
        print(share(others[k], "stories with %d other actor(s) of the asked one's animal" % k, n))
    print(share(last_ok, "answers: colour of that animal's actor introduced last", n))
    for k in sorted(zline):
        print(share(zline[k], "asked actor's animal line is line %d" % k, n))
    print(share(adjacent, "colour lines right after their animal line", colored))
    print(share(differ, "same-animal pairs with different colours", pairs))
    print(share(wrong, "answers the rule solver disagrees with", n))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("4", "16"):
        sys.exit("usage: babi_shape_stats.py 4|16 FILE")
    (task4 if sys.argv[1] == "4" else task16)(sys.argv[2])
