#!/usr/bin/python3
"""PyTorch side of `examples/g2p --bench-steps`: the same encoder-decoder
(with or without attention), the same synthetic batch shapes, one training
step = forward, backward, gradient-norm clipping at 5, Adam; median over the
steps after 3 warm-up steps. Module names equal the example's state_dict
names (encoder_embedding, encoder, bridge, attention_key, ...).
Run with OPENBLAS_NUM_THREADS=<threads> (Debian's python3-torch 1.13):

  /usr/bin/python3 tools/bench_torch_g2p.py [--attention none|additive|general]
      [--threads T] [--steps N] [--batch B] [--letters L]
Prints: TORCH_G2P_STEP attention=additive batch=64 letters=7 threads=1 ms=...
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('--attention', default='additive', choices=['none', 'additive', 'general'])
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--steps', type=int, default=30)
ap.add_argument('--batch', type=int, default=64)
ap.add_argument('--letters', type=int, default=7)
ap.add_argument('--hidden', type=int, default=256)
ap.add_argument('--embed', type=int, default=64)
ap.add_argument('--attn-dim', type=int, default=128)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)

N_LETTERS, V, PAD, BOS, EOS, NSPECIAL = 30, 42, 0, 1, 2, 3
E, H, A = a.embed, a.hidden, a.attn_dim


class G2P(nn.Module):
    def __init__(self, att):
        super().__init__()
        self.att = att
        self.encoder_embedding = nn.Embedding(N_LETTERS, E, padding_idx=PAD)
        if att == 'none':
            self.encoder = nn.LSTM(E, H)
            self.decoder_embedding = nn.Embedding(V, E, padding_idx=PAD)
            self.decoder = nn.LSTM(E, H)
            self.out = nn.Linear(H, V)
            return
        self.encoder = nn.LSTM(E, H // 2, bidirectional=True)
        self.bridge = nn.Linear(H, H)
        self.decoder_embedding = nn.Embedding(V, E, padding_idx=PAD)
        if att == 'additive':
            self.attention_key = nn.Linear(H, A, bias=False)
            self.attention_query = nn.Linear(H, A, bias=False)
            self.attention_v = nn.Linear(A, 1, bias=False)
            self.out = nn.Linear(2 * H, V)
        else:
            self.attention_key = nn.Linear(H, H, bias=False)
            self.combine = nn.Linear(2 * H, H, bias=False)
            self.out = nn.Linear(H, V)
        self.decoder = nn.LSTMCell(E + H, H)

    def forward(self, src, din):
        B = src.shape[1]
        out, (h, c) = self.encoder(self.encoder_embedding(src))
        x = self.decoder_embedding(din)
        if self.att == 'none':
            o, _ = self.decoder(x, (h, c))
            return self.out(o)
        keys = out.transpose(0, 1)                       # [B, S, H]
        proj = self.attention_key(keys)
        s = torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))
        cs = torch.zeros(B, H)
        feed = torch.zeros(B, H)
        logits = []
        for t in range(din.shape[0]):
            if self.att == 'additive':
                q = self.attention_query(s).unsqueeze(1)
                e = self.attention_v(torch.tanh(proj + q))  # [B, S, 1]
                w = torch.softmax(e.transpose(1, 2), -1)    # [B, 1, S]
                ctx = torch.bmm(w, keys).squeeze(1)
                s, cs = self.decoder(torch.cat([x[t], ctx], -1), (s, cs))
                logits.append(self.out(torch.cat([s, ctx], -1)))
            else:
                s, cs = self.decoder(torch.cat([x[t], feed], -1), (s, cs))
                e = torch.bmm(proj, s.unsqueeze(2))         # [B, S, 1]: s^T W_a key
                w = torch.softmax(e.transpose(1, 2), -1)
                ctx = torch.bmm(w, keys).squeeze(1)
                feed = torch.tanh(self.combine(torch.cat([ctx, s], -1)))
                logits.append(self.out(feed))
        return torch.stack(logits)


m = G2P(a.attention)
opt = torch.optim.Adam(m.parameters(), lr=2e-3)
L, S, T, B = a.letters, a.letters + 1, a.letters + 1, a.batch
ms = []
for r in range(a.steps + 3):
    src = torch.randint(NSPECIAL + 1, NSPECIAL + 27, (S, B))
    src[L] = EOS
    tgt = torch.randint(NSPECIAL, V, (T, B))
    tgt[L] = EOS
    din = torch.cat([torch.full((1, B), BOS), tgt[:-1]])
    t0 = time.perf_counter()
    opt.zero_grad()
    logits = m(src, din)
    loss = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(m.parameters(), 5.0)
    opt.step()
    ms.append((time.perf_counter() - t0) * 1e3)
print(f"TORCH_G2P_STEP attention={a.attention} batch={B} letters={L} threads={a.threads} "
      f"ms={statistics.median(ms[3:]):.3f}")
