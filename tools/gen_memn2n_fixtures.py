#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/models/test_memn2n.c: the
MemN2N of include/cortex/memn2n.h (tools/memn2n_torch.py) on a tiny
configuration.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_memn2n_fixtures.py

Writes tests/fixtures/memn2n/<case>.safetensors holding
    in.memory [N, S, L], in.slots [N], in.query [N, Lq], in.answer [N]  (I32)
    A.k.weight, T.k.weight          the weights (state_dict names)
    out.logits [N, V], out.attention [N, K, S], out.loss [1] (cross entropy, summed)
    grad.A.k.weight, grad.T.k.weight
and the config as metadata (vocab, dim, hops, memory, pe, temporal, linear,
pe_form: "code" for the form of Facebook's code, absent for the paper's).
Memories hold empty rows among the used ones (random noise) and padding rows
after them; sentences have different lengths (PE's J)."""
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_py  # noqa: E402
from memn2n_torch import MemN2N  # noqa: E402

OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "memn2n")
V, D, M, N, S, L, LQ = 13, 7, 8, 5, 6, 5, 4


def inputs(g):
    mem = torch.zeros(N, S, L, dtype=torch.int64)
    slots = torch.randint(1, S + 1, (N,), generator=g)
    slots[0] = S
    for n in range(N):
        for i in range(int(slots[n])):
            if i > 0 and torch.rand(1, generator=g).item() < 0.2:
                continue  # an empty memory (RN)
            ln = int(torch.randint(1, L + 1, (1,), generator=g))
            mem[n, i, :ln] = torch.randint(1, V, (ln,), generator=g)
    q = torch.zeros(N, LQ, dtype=torch.int64)
    for n in range(N):
        ln = int(torch.randint(1, LQ + 1, (1,), generator=g))
        q[n, :ln] = torch.randint(1, V, (ln,), generator=g)
    ans = torch.randint(1, V, (N,), generator=g)
    return mem, slots, q, ans


def case(name, hops, pe, temporal, linear, seed, pe_form="paper"):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mem, slots, q, ans = inputs(g)
    net = MemN2N(V, D, hops, M, pe=pe, temporal=temporal, std=0.3, pe_form=pe_form)
    net.linear = linear
    logits, att = net(mem, slots, q, return_attention=True)
    loss = F.cross_entropy(logits, ans, reduction="sum")
    loss.backward()
    t = [("in.memory", mem.int()), ("in.slots", slots.int()), ("in.query", q.int()), ("in.answer", ans.int())]
    t += [(k, p.detach()) for k, p in net.state_dict().items()]
    t += [("out.logits", logits.detach()), ("out.attention", att.detach()), ("out.loss", loss.detach().reshape(1))]
    t += [("grad." + k, p.grad) for k, p in net.named_parameters()]
    meta = {"vocab": str(V), "dim": str(D), "hops": str(hops), "memory": str(M), "pe": str(int(pe)),
            "temporal": str(int(temporal)), "linear": str(int(linear)), "torch": torch.__version__}
    if pe_form != "paper":  # the first six cases predate the form (no key: the paper's)
        meta["pe_form"] = pe_form
    os.makedirs(OUTDIR, exist_ok=True)
    safetensors_py.write(os.path.join(OUTDIR, name + ".safetensors"), t, meta)
    print(name, "loss", float(loss))


case("pe_h1", 1, True, True, False, 1)
case("pe_h3", 3, True, True, False, 2)
case("bow_h1", 1, False, True, False, 3)
case("bow_h3", 3, False, True, False, 4)
case("pe_h3_linear", 3, True, True, True, 5)
case("pe_h2_notemporal", 2, True, False, False, 6)
case("pe_code_h3", 3, True, True, False, 7, pe_form="code")
case("pe_code_h2_linear", 2, True, True, True, 8, pe_form="code")
