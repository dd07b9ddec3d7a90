#!/usr/bin/python3
"""Generate the PyTorch reference fixture of tests/models/test_kvmemnn.c: the
key-value memory network of include/cortex/kvmem.h written in PyTorch 1.13.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_kvmemnn_fixtures.py

Writes tests/fixtures/kvmemnn/tiny.safetensors (separate answer embedding B)
and tiny_tied.safetensors (B is A: no "B.weight" in the file), each holding

    A.weight [V, d] (row 0 zero), R.0.weight, R.1.weight [d, d], B.weight [V, d]
                    the parameters, with PyTorch's state_dict names
    in.query [B, Lq], in.keys, in.values [B, M, L] (I32 word ids, 0 = padding),
    in.mask [B, M] (row 1 has a padded memory, row 2 none at all), in.target [B, V]
    out.logits [B, V], out.attn [H, B, M], out.loss [1]
    grad.A.weight, grad.R.0.weight, grad.R.1.weight, grad.B.weight
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
DIR = os.path.join(HERE, "..", "tests", "fixtures", "kvmemnn")

V, d, H, B, M, L, Lq = 13, 5, 2, 3, 4, 3, 4


class KVMemNN(nn.Module):
    def __init__(self, tied):
        super().__init__()
        self.A = nn.Embedding(V, d, padding_idx=0)
        self.R = nn.Sequential(*[nn.Linear(d, d, bias=False) for _ in range(H)])
        if not tied:
            self.B = nn.Embedding(V, d)
        self.tied = tied

    def forward(self, query, keys, values, mask):
        q = self.A(query).sum(-2)
        k = self.A(keys).sum(-2)
        v = self.A(values).sum(-2)
        attn = []
        for j in range(H):
            s = torch.bmm(k, q.unsqueeze(-1)).squeeze(-1)
            s = s.masked_fill(mask == 0, -1e30)
            p = torch.softmax(s, 1) * mask
            attn.append(p.detach())
            o = torch.bmm(p.unsqueeze(1), v).squeeze(1)
            q = self.R[j](q + o)
        Bw = self.A.weight if self.tied else self.B.weight
        nil = torch.zeros(1, V, dtype=torch.bool)
        nil[0, 0] = True
        return (q @ Bw.t()).masked_fill(nil, -1e30), torch.stack(attn)



def write(tied, name):
    m = KVMemNN(tied)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        m.A.weight[0].zero_()
    query = torch.randint(1, V, (B, Lq), dtype=torch.int32)
    query[0, 3] = 0
    keys = torch.randint(0, V, (B, M, L), dtype=torch.int32)
    values = torch.randint(0, V, (B, M, L), dtype=torch.int32)
    mask = torch.ones(B, M)
    mask[1, 3] = 0
    mask[2, :] = 0
    target = torch.zeros(B, V)
    target[0, 3] = 1
    target[1, 5] = target[1, 7] = 0.5
    target[2, 11] = 1
    logits, attn = m(query.long(), keys.long(), values.long(), mask)
    loss = -(F.log_softmax(logits, 1) * target).sum() / B
    loss.backward()
    t = {k: v.detach().clone() for k, v in m.state_dict().items()}
    t.update({"in.query": query, "in.keys": keys, "in.values": values, "in.mask": mask, "in.target": target,
              "out.logits": logits.detach(), "out.attn": attn, "out.loss": loss.detach().reshape(1)})
    for k, p in m.named_parameters():
        t["grad." + k] = p.grad.clone()
    os.makedirs(os.path.dirname(os.path.join(DIR, name)), exist_ok=True)
    safetensors_py.write(os.path.join(DIR, name), list(t.items()))
    print("wrote", os.path.join(DIR, name), "loss", float(loss))


torch.manual_seed(0)
write(False, "tiny.safetensors")
write(True, "tiny_tied.safetensors")
