#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_gcn.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_gcn_fixtures.py

Writes tests/fixtures/graph/gcn.safetensors. Per case C (a random undirected
graph with a repeated edge, a self-edge and an isolated node):
    C.src, C.dst  I64 [m]    edge list
    C.n           I64 [1]    nodes
    C.loops       I64 [1]    1: A + I (Kipf & Welling), 0: A alone
    C.ahat        F32 [n, n] D^-1/2 (A (+ I)) D^-1/2 as a dense matrix
    C.x           F32 [n, in]
    C.w           F32 [out, in], C.b F32 [out]
    C.out         ahat @ (x @ w.T) + b
    C.gout        random upstream gradient of C.out's shape
    C.gx, C.gw, C.gb   d sum(out * gout) / d x, w, b
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(99)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "graph", "gcn.safetensors")
TENSORS, CASES = [], []


def case(name, n, edges, fin, fout, loops):
    src = torch.tensor([e[0] for e in edges], dtype=torch.long)
    dst = torch.tensor([e[1] for e in edges], dtype=torch.long)
    A = torch.zeros(n, n, dtype=torch.float64)
    for s, d in edges:
        if s != d:
            A[s, d] = A[d, s] = 1.0
    if loops:
        A = A + torch.eye(n, dtype=torch.float64)
    deg = A.sum(1)
    dinv = torch.where(deg > 0, deg.pow(-0.5), torch.zeros_like(deg))
    ahat = (dinv[:, None] * A * dinv[None, :]).float()
    x = torch.randn(n, fin, requires_grad=True)
    w = (torch.randn(fout, fin) * 0.5).requires_grad_(True)
    b = torch.randn(fout, requires_grad=True)
    out = ahat @ (x @ w.T) + b
    gout = torch.randn(out.shape)
    (out * gout).sum().backward()
    for k, v in (("src", src), ("dst", dst), ("n", torch.tensor([n])), ("loops", torch.tensor([int(loops)])),
                 ("ahat", ahat), ("x", x.detach()), ("w", w.detach()), ("b", b.detach()), ("out", out.detach()),
                 ("gout", gout), ("gx", x.grad), ("gw", w.grad), ("gb", b.grad)):
        TENSORS.append(("%s.%s" % (name, k), v.contiguous()))
    CASES.append(name)


if __name__ == "__main__":
    # node 7 is isolated; (1, 2) is listed twice (once reversed); (4, 4) is a self-edge
    edges = [(0, 1), (1, 2), (2, 1), (2, 3), (3, 0), (4, 4), (4, 5), (5, 6), (6, 2), (0, 5)]
    case("gcn_loops", 8, edges, 5, 3, True)
    case("gcn_noloops", 8, edges, 4, 6, False)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_gcn_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES)})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
