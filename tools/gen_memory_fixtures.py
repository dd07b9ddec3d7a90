#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_memory.c: the NTM
memory operations of include/cortex/memory.h written in PyTorch 1.13.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_memory_fixtures.py

Writes one file per case, tests/fixtures/memory/<case>.safetensors, holding

    in.mem, in.key, in.beta, in.g, in.wprev, in.s, in.gamma, in.erase, in.add
                            the inputs (beta, g, gamma are [B] or [B, 1] by case)
    out.wc, out.wg, out.ws, out.w
                            content weighting, after interpolation, after the
                            shift, after sharpening (= the full addressing)
    out.r, out.mem2         the read of mem with w, the write of mem with w
    c.wc, ..., c.mem2       fixed random coefficients of the loss
    grad.<input>            gradients of L = sum over outputs of sum(out * c)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "memory")
OUTS = ["wc", "wg", "ws", "w", "r", "mem2"]
INS = ["mem", "key", "beta", "g", "wprev", "s", "gamma", "erase", "add"]


def col(t):
    return t.reshape(-1, 1)


def content(mem, key, beta):
    sim = F.cosine_similarity(key.unsqueeze(1), mem, dim=-1, eps=1e-8)
    return torch.softmax(col(beta) * sim, dim=-1)


def interpolate(wc, wprev, g):
    return col(g) * wc + (1 - col(g)) * wprev


def shift(w, s):
    K = s.shape[1]
    out = torch.zeros_like(w)
    for j in range(K):
        out = out + torch.roll(w, shifts=j - (K - 1) // 2, dims=-1) * s[:, j:j + 1]
    return out


def sharpen(w, gamma):
    p = w ** col(gamma)
    return p / p.sum(-1, keepdim=True)


def case(name, B, N, W, K, scalar_col, zero_row=False):
    mem = torch.randn(B, N, W)
    if zero_row:
        mem[0, N // 2] = 0  # a zero memory row: its cosine is 0 (clamped norm)
    x = {
        "mem": mem,
        "key": torch.randn(B, W),
        "beta": F.softplus(torch.randn(B)) * 3,
        "g": torch.sigmoid(torch.randn(B)),
        "wprev": torch.softmax(torch.randn(B, N), -1),
        "s": torch.softmax(torch.randn(B, K), -1),
        "gamma": 1 + F.softplus(torch.randn(B)),
        "erase": torch.sigmoid(torch.randn(B, W)),
        "add": torch.randn(B, W),
    }
    if scalar_col:
        for k in ("beta", "g", "gamma"):
            x[k] = col(x[k])
    for t in x.values():
        t.requires_grad_(True)
    o = {}
    o["wc"] = content(x["mem"], x["key"], x["beta"])
    o["wg"] = interpolate(o["wc"], x["wprev"], x["g"])
    o["ws"] = shift(o["wg"], x["s"])
    o["w"] = sharpen(o["ws"], x["gamma"])
    o["r"] = torch.einsum("bn,bnw->bw", o["w"], x["mem"])
    w = o["w"]
    o["mem2"] = x["mem"] * (1 - torch.einsum("bn,bw->bnw", w, x["erase"])) + \
        torch.einsum("bn,bw->bnw", w, x["add"])
    c = {k: torch.randn(v.shape) for k, v in o.items()}
    loss = sum((o[k] * c[k]).sum() for k in OUTS)
    loss.backward()
    tensors = [("in." + k, x[k].detach()) for k in INS]
    tensors += [("out." + k, o[k].detach()) for k in OUTS]
    tensors += [("c." + k, c[k]) for k in OUTS]
    tensors += [("grad." + k, x[k].grad) for k in INS]
    os.makedirs(OUTDIR, exist_ok=True)
    safetensors_py.write(os.path.join(OUTDIR, name + ".safetensors"), tensors,
                         {"B": str(B), "N": str(N), "W": str(W), "K": str(K), "torch": torch.__version__})
    print(name, B, N, W, K)


case("b1_k3", 1, 5, 3, 3, False)
case("b3_k5", 3, 7, 5, 5, True)
case("b3_k3_zero_row", 3, 6, 4, 3, False, zero_row=True)
case("n1_k1", 2, 1, 3, 1, True)
