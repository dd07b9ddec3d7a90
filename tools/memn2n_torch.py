"""MemN2N (Sukhbaatar et al. 2015) in PyTorch, the network of
include/cortex/memn2n.h: adjacent weight tying (A^{k+1} = C^k, B = A^1,
W^T = C^K), position encoding or bag of words, temporal encoding, linear
start; the position encoding in the form of Facebook's code or of the
paper. Used by tools/gen_memn2n_fixtures.py (the reference of
tests/models/test_memn2n.c) and tools/bench_torch_memn2n.py.

Parameters (state_dict): A.k.weight [V, d] and T.k.weight [M, d], k = 0..K.
Inputs: memory [N, S, L] long (row 0 = the most recent fact), slots [N]
(rows 0..slots-1 in use), query [N, Lq] long."""
import torch
import torch.nn as nn


def pe_weights(x, d, form="code"):
    """Position encoding weights for every word of x [..., L] (J = the
    position of the sentence's last non-nil word, j = 1..L, k = 1..d);
    [..., L, d].
      form "code" (Facebook's MemN2N code): l_kj = 1 + 4 (k - (d+1)/2) (j - (J+1)/2) / (d J)
      form "paper" (the paper's equation):  l_kj = (1 - j/J) - (k/d)(1 - 2j/J)"""
    L = x.shape[-1]
    pos = torch.arange(1, L + 1, dtype=torch.float32)
    J = ((x > 0).float() * pos).amax(-1, keepdim=True).clamp(min=1.0)  # [..., 1]
    kk = torch.arange(1, d + 1, dtype=torch.float32)                    # [d]
    if form == "code":
        jc = (pos - (J + 1) / 2) / J                                    # [..., L]
        return 1 + 4 * jc.unsqueeze(-1) * (kk - (d + 1) / 2) / d
    j = pos / J                                                         # [..., L]
    k = kk / d
    return (1 - j).unsqueeze(-1) - k * (1 - 2 * j).unsqueeze(-1)


class MemN2N(nn.Module):
    def __init__(self, vocab, dim, hops, memory, pe=True, temporal=True, std=0.1, pe_form="code"):
        super().__init__()
        self.dim, self.hops, self.pe, self.temporal, self.pe_form = dim, hops, pe, temporal, pe_form
        self.A = nn.ModuleList([nn.Embedding(vocab, dim, padding_idx=0) for _ in range(hops + 1)])
        self.T = nn.ModuleList([nn.Embedding(memory, dim) for _ in range(hops + 1)]) if temporal else None
        for p in self.parameters():
            nn.init.normal_(p, 0.0, std)
        with torch.no_grad():
            for a in self.A:
                a.weight[0].zero_()
        self.linear = False

    def enc(self, E, x):
        e = E(x) * (x > 0).unsqueeze(-1).float()
        if self.pe:
            e = e * pe_weights(x, self.dim, self.pe_form)
        return e.sum(-2)

    def forward(self, memory, slots, query, return_attention=False):
        N, S, _ = memory.shape
        mask = torch.arange(S).unsqueeze(0) < slots.unsqueeze(1)  # [N, S]
        u = self.enc(self.A[0], query)
        R = []
        for e in range(self.hops + 1):
            r = self.enc(self.A[e], memory)
            if self.temporal:
                r = r + self.T[e].weight[:S]
            R.append(r)
        att = []
        for k in range(1, self.hops + 1):
            s = (R[k - 1] * u.unsqueeze(1)).sum(-1)
            if self.linear:
                p = s * mask.float()
            else:
                p = torch.softmax(s.masked_fill(~mask, float("-inf")), -1)
            att.append(p)
            u = u + (p.unsqueeze(-1) * R[k]).sum(1)
        logits = u @ self.A[self.hops].weight.t()
        return (logits, torch.stack(att, 1)) if return_attention else logits
