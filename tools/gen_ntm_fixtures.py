#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/models/test_ntm.c: the
Neural Turing Machine of include/cortex/ntm.h (same parameter names and
layout, same step) written in PyTorch 1.13.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_ntm_fixtures.py

Writes tests/fixtures/ntm/<case>.safetensors, a file cx_ntm_load reads as a
model (metadata format / cortex.arch "ntm" / cortex.ntm.*, the parameters
under their state_dict names) that also holds

    in.x [T, B, I], in.target [T, B, O], in.mask [T, B]   the data
    out.logits [T, B, O], out.mem [B, N, W]              outputs, final memory
    out.loss [1]                                          masked BCE per scored bit
    grad.<parameter name>                                 d loss / d parameter
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "ntm")


def col(t):
    return t.reshape(-1, 1)


def address(mem, k, beta, g, wprev, s, gamma):
    # include/cortex/memory.h, cx_ntm_address
    sim = F.cosine_similarity(k.unsqueeze(1), mem, dim=-1, eps=1e-8)
    wc = torch.softmax(beta * sim, dim=-1)
    wg = g * wc + (1 - g) * wprev
    K = s.shape[1]
    ws = torch.zeros_like(wg)
    for j in range(K):
        ws = ws + torch.roll(wg, shifts=j - (K - 1) // 2, dims=-1) * s[:, j:j + 1]
    p = ws ** gamma
    return p / p.sum(-1, keepdim=True)


class NTM(nn.Module):
    def __init__(s, I, O, H, N, W, R, Wr, ff=False, key_tanh=False, learned_memory=False,
                 mem_const=1e-6, clip=20.0):
        super().__init__()
        s.I, s.O, s.H, s.N, s.W, s.R, s.Wr = I, O, H, N, W, R, Wr
        s.ff, s.key_tanh, s.learned_memory, s.mem_const, s.clip = ff, key_tanh, learned_memory, mem_const, clip
        s.read_init = nn.Parameter(torch.randn(R, W) * 0.01)
        if learned_memory:
            b = 1 / (N + W) ** 0.5
            s.memory_bias = nn.Parameter(torch.empty(N, W).uniform_(-b, b))
        s.controller = nn.Linear(I + R * W, H) if ff else nn.LSTMCell(I + R * W, H)
        s.read_heads = nn.ModuleList([nn.Linear(H, W + 6) for _ in range(R)])
        s.write_heads = nn.ModuleList([nn.Linear(H, 3 * W + 6) for _ in range(Wr)])
        s.fc = nn.Linear(H + R * W, O)

    def split(s, p, write):
        W = s.W
        k = p[:, :W]
        if s.key_tanh:
            k = torch.tanh(k)
        beta = F.softplus(p[:, W:W + 1])
        g = torch.sigmoid(p[:, W + 1:W + 2])
        sh = torch.softmax(p[:, W + 2:W + 5], dim=-1)
        gamma = 1 + F.softplus(p[:, W + 5:W + 6])
        if not write:
            return k, beta, g, sh, gamma, None, None
        return k, beta, g, sh, gamma, torch.sigmoid(p[:, W + 6:2 * W + 6]), torch.tanh(p[:, 2 * W + 6:3 * W + 6])

    def forward(s, x):
        T, B, _ = x.shape
        N, W, R = s.N, s.W, s.R
        if s.learned_memory:
            mem = s.memory_bias.unsqueeze(0).expand(B, N, W)
        else:
            mem = torch.full((B, N, W), s.mem_const)
        w0 = torch.zeros(B, N)
        w0[:, 0] = 1
        rw = [w0] * R
        ww = [w0] * s.Wr
        reads = [s.read_init[i].unsqueeze(0).expand(B, W) for i in range(R)]
        h = torch.zeros(B, s.H)
        c = torch.zeros(B, s.H)
        ys = []
        for t in range(T):
            u = torch.cat([x[t]] + reads, dim=1)
            if s.ff:
                h = torch.relu(s.controller(u))
            else:
                h, c = s.controller(u, (h, c))
            hc = torch.clamp(h, -s.clip, s.clip) if s.clip > 0 else h
            for i, head in enumerate(s.read_heads):
                k, beta, g, sh, gamma, _, _ = s.split(head(hc), False)
                rw[i] = address(mem, k, beta, g, rw[i], sh, gamma)
                reads[i] = torch.einsum("bn,bnw->bw", rw[i], mem)
            for j, head in enumerate(s.write_heads):
                k, beta, g, sh, gamma, e, a = s.split(head(hc), True)
                ww[j] = address(mem, k, beta, g, ww[j], sh, gamma)
                mem = mem * (1 - torch.einsum("bn,bw->bnw", ww[j], e)) + torch.einsum("bn,bw->bnw", ww[j], a)
            ys.append(s.fc(torch.cat([hc] + reads, dim=1)))
        return torch.stack(ys, 0), mem


def seq_loss(logits, target, mask):
    # cx_seqtask_loss: masked BCE, mean per scored bit
    l = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    n = (mask != 0).sum()
    return (l * mask.unsqueeze(-1)).sum() / (n * logits.shape[-1])


def case(name, seed, T, B, I, O, H, N, W, R, Wr, **kw):
    torch.manual_seed(seed)
    m = NTM(I, O, H, N, W, R, Wr, **kw)
    # larger weights than the default initialisation so that every part of
    # the addressing (sharp keys, shifts, sharpening, clipping) matters
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)
    x = (torch.rand(T, B, I) < 0.5).float()
    target = (torch.rand(T, B, O) < 0.5).float()
    mask = (torch.rand(T, B) < 0.6).float()
    mask[-1] = 1
    logits, mem = m(x)
    loss = seq_loss(logits, target, mask)
    loss.backward()
    tensors = [(k, v.detach().clone()) for k, v in m.state_dict().items()]
    tensors += [("in.x", x), ("in.target", target), ("in.mask", mask)]
    tensors += [("out.logits", logits.detach()), ("out.mem", mem.detach()), ("out.loss", loss.detach().reshape(1))]
    tensors += [("grad." + k, p.grad) for k, p in m.named_parameters()]
    meta = {
        "format": "pt", "cortex.arch": "ntm", "torch": torch.__version__,
        "cortex.ntm.input": str(I), "cortex.ntm.output": str(O),
        "cortex.ntm.controller": "ff" if m.ff else "lstm", "cortex.ntm.hidden": str(H),
        "cortex.ntm.mem_n": str(N), "cortex.ntm.mem_w": str(W),
        "cortex.ntm.read_heads": str(R), "cortex.ntm.write_heads": str(Wr),
        "cortex.ntm.key_tanh": "1" if m.key_tanh else "0",
        "cortex.ntm.learned_memory": "1" if m.learned_memory else "0",
        "cortex.ntm.mem_const": repr(m.mem_const), "cortex.ntm.clip": repr(m.clip),
    }
    os.makedirs(OUTDIR, exist_ok=True)
    safetensors_py.write(os.path.join(OUTDIR, name + ".safetensors"), tensors, meta)
    print(name, "loss", float(loss))


if __name__ == "__main__":
    # LSTM controller, constant memory, 2 read heads, 1 write head, linear keys
    case("lstm_r2w1", 1, T=7, B=2, I=4, O=3, H=6, N=5, W=4, R=2, Wr=1)
    # feed-forward controller, learned memory, tanh keys, 1 read and 2 write
    # heads, a clip (0.5) that the relu outputs exceed
    case("ff_r1w2_clip", 2, T=6, B=3, I=3, O=2, H=5, N=6, W=3, R=1, Wr=2, ff=True, key_tanh=True,
         learned_memory=True, clip=0.5)
