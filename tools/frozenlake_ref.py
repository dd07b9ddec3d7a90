#!/usr/bin/python3
"""Reference optimal values of FrozenLake-v1 (gymnasium's maps and slip
rule, rebuilt here from its documentation with numpy) for tests/rl/test_tabular.c:
prints V*(start) and the optimal greedy policy for gamma = 0.99.
Run: /usr/bin/python3 tools/frozenlake_ref.py"""
import numpy as np

MAPS = {"4x4": ["SFFF", "FHFH", "FFFH", "HFFG"],
        "8x8": ["SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF",
                "FFFHFFFF", "FHHFFFHF", "FHFFHFHF", "FFFHFFFG"]}
MOVES = {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)}  # left down right up


def tables(desc, slippery):
    n = len(desc)
    nS = n * n
    P = np.zeros((nS, 4, nS))  # non-terminal transition probabilities
    R = np.zeros((nS, 4))      # expected reward
    for s in range(nS):
        r, c = divmod(s, n)
        if desc[r][c] in "GH":
            continue  # absorbing, value 0
        for a in range(4):
            dirs = [(a - 1) % 4, a, (a + 1) % 4] if slippery else [a]
            for d in dirs:
                dr, dc = MOVES[d]
                r2, c2 = min(max(r + dr, 0), n - 1), min(max(c + dc, 0), n - 1)
                letter = desc[r2][c2]
                p = 1.0 / len(dirs)
                R[s, a] += p * (letter == "G")
                if letter not in "GH":
                    P[s, a, r2 * n + c2] += p
    return P, R


def optimum(desc, slippery, gamma=0.99):
    P, R = tables(desc, slippery)
    V = np.zeros(P.shape[0])
    for _ in range(100000):
        Vn = (R + gamma * P @ V).max(axis=1)
        if np.abs(Vn - V).max() < 1e-14:
            break
        V = Vn
    return V, (R + gamma * P @ V).argmax(axis=1)


for name in ("4x4", "8x8"):
    for slip in (True, False):
        V, pi = optimum(MAPS[name], slip)
        print(f"{name} slippery={int(slip)}: V*(0) = {V[0]:.12f}  V* = {np.round(V, 6).tolist()}")
