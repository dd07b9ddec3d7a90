#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_treelstm.c.

Run with Debian's python3-torch:  /usr/bin/python3 tools/gen_treelstm_fixtures.py

A straightforward recursive child-sum Tree-LSTM (Tai et al. 2015, 3.1) with
LSTMCell's parameter layout: weight_ih [4H, I], weight_hh [4H, H], bias_ih,
bias_hh [4H], row blocks i, f, u, o. Writes
tests/fixtures/treelstm/treelstm.safetensors; per case C:
    C.ptr, C.idx   I64    child lists (children of j: idx[ptr[j]:ptr[j+1]])
    C.x            F32 [n, I]
    C.w_ih, C.w_hh, C.b_ih, C.b_hh
    C.out          F32 [n, H]  h of every node
    C.root_c       F32 [R, H]  c of the roots (increasing node order)
    C.gout, C.gc   upstream gradients of out and root_c
    C.gx, C.gw_ih, C.gw_hh, C.gb_ih, C.gb_hh   d sum(out*gout + root_c*gc) / d .
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(7)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "treelstm", "treelstm.safetensors")
TENSORS, CASES = [], []


def node(j, children, x, w_ih, w_hh, b_ih, b_hh, H, memo):
    if j in memo:
        return memo[j]
    hs, cs = [], []
    for k in children[j]:
        h, c = node(k, children, x, w_ih, w_hh, b_ih, b_hh, H, memo)
        hs.append(h)
        cs.append(c)
    wx = w_ih @ x[j] + b_ih + b_hh
    hsum = torch.stack(hs).sum(0) if hs else torch.zeros(H)
    z = wx + w_hh @ hsum
    i = torch.sigmoid(z[0:H])
    u = torch.tanh(z[2 * H:3 * H])
    o = torch.sigmoid(z[3 * H:4 * H])
    c = i * u
    for hk, ck in zip(hs, cs):
        f = torch.sigmoid(wx[H:2 * H] + w_hh[H:2 * H] @ hk)
        c = c + f * ck
    h = o * torch.tanh(c)
    memo[j] = (h, c)
    return h, c


def case(name, children, I, H):
    n = len(children)
    ptr = [0]
    idx = []
    for ch in children:
        idx += ch
        ptr.append(len(idx))
    parent = {k for ch in children for k in ch}
    roots = [j for j in range(n) if j not in parent]
    x = torch.randn(n, I, requires_grad=True)
    ps = [(torch.rand(*s) * 2 - 1).mul(0.6).requires_grad_(True) for s in ((4 * H, I), (4 * H, H), (4 * H,), (4 * H,))]
    memo = {}
    for j in range(n):
        node(j, children, x, *ps, H, memo)
    out = torch.stack([memo[j][0] for j in range(n)])
    root_c = torch.stack([memo[j][1] for j in roots])
    gout, gc = torch.randn(out.shape), torch.randn(root_c.shape)
    ((out * gout).sum() + (root_c * gc).sum()).backward()
    pairs = [("ptr", torch.tensor(ptr)), ("idx", torch.tensor(idx if idx else [0])[:len(idx)]), ("x", x.detach()),
             ("w_ih", ps[0].detach()), ("w_hh", ps[1].detach()), ("b_ih", ps[2].detach()), ("b_hh", ps[3].detach()),
             ("out", out.detach()), ("root_c", root_c.detach()), ("gout", gout), ("gc", gc), ("gx", x.grad),
             ("gw_ih", ps[0].grad), ("gw_hh", ps[1].grad), ("gb_ih", ps[2].grad), ("gb_hh", ps[3].grad)]
    for k, v in pairs:
        if v.numel() == 0:
            continue
        TENSORS.append(("%s.%s" % (name, k), v.contiguous()))
    CASES.append(name)


if __name__ == "__main__":
    case("leaves", [[], [], []], 3, 4)                          # three single-node trees
    case("chain", [[], [0], [1], [2]], 3, 4)                     # 0 <- 1 <- 2 <- 3
    case("wide", [[1, 2, 3, 4], [], [], [], []], 2, 3)            # a root with 4 leaf children
    # a forest in no particular node order: children at different heights under one parent
    case("mixed", [[], [4, 0, 6], [], [2], [3], [], [5], [8, 9], [], [], [7]], 3, 5)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_treelstm_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES)})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
