#!/usr/bin/python3
"""PyTorch side of the Transformer char-LM training-speed benchmark: the model of
include/cortex/transformer.h (the reference class of tools/gen_transformer_fixtures.py:
token + learned position embeddings, N pre-norm blocks of causal nn.MultiheadAttention
and an exact-GELU feed-forward, final LayerNorm, linear head), batch B streams x seq T
characters (each chunk its own context), mean cross-entropy, gradient clipping at
norm 5, Adam lr 2e-3 -- the same work per step as `cortex charlm train --arch
transformer` (cli/charlm.c) and bench/bench_tlm.c, its Cortex side. Each step is timed
after 3 warm-up steps.

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch_transformer_lm.py [--threads 1]
      [--steps 15] [--vocab 91] [--layers 4] [--heads 4] [--embed 256] [--ffn 0]
      [--batch 32] [--seq 128] [--dropout 0] [--tie]

The stream is random ids over 1..V-1 (speed does not depend on the data). Prints
  TORCH_TLM threads=1 chars_per_s=... ms=... chars_per_cpu_s=... min_ms=... params=... V=91 L=4 H=4 E=256 F=1024 B=32 T=128
chars_per_s = B T / the median step time; chars_per_cpu_s = B T steps / the process
CPU time of the timed steps (all threads; steadier than wall time on a loaded machine).

Cortex side, back to back (tools/bench.sh, section transformer):
  build/<variant>/bench/bench_tlm 1 --steps 15 --layers 4 --heads 4 --embed 256 --batch 32 --seq 128
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_transformer_fixtures import TransformerLM  # noqa: E402  (the reference module)

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--steps', type=int, default=15)
ap.add_argument('--vocab', type=int, default=91)
ap.add_argument('--layers', type=int, default=4)
ap.add_argument('--heads', type=int, default=4)
ap.add_argument('--embed', type=int, default=256)
ap.add_argument('--ffn', type=int, default=0)
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--seq', type=int, default=128)
ap.add_argument('--dropout', type=float, default=0.0)
ap.add_argument('--tie', action='store_true')
ap.add_argument('--lr', type=float, default=2e-3)
ap.add_argument('--clip', type=float, default=5.0)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)

V, B, T = a.vocab, a.batch, a.seq
data = torch.randint(1, V, (B * T * (a.steps + 8) + 1,))
L = (data.numel() - 1) // B
streams_x = data[:B * L].view(B, L).t().contiguous()        # [L, B]
streams_y = data[1:B * L + 1].view(B, L).t().contiguous()

m = TransformerLM(V, T, a.embed, a.layers, a.heads, a.ffn, a.dropout, a.dropout, a.tie)
m.train()
opt = torch.optim.Adam(m.parameters(), lr=a.lr)
nb = L // T
warm = 3
times = []
c0 = None
for step in range(a.steps + warm):
    k = step % nb
    x = streams_x[k * T:(k + 1) * T]
    y = streams_y[k * T:(k + 1) * T]
    if step == warm:
        c0 = time.process_time()
    t0 = time.perf_counter()
    opt.zero_grad()
    logits = m(x)
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
    opt.step()
    t1 = time.perf_counter()
    if step >= warm:
        times.append(t1 - t0)
dc = time.process_time() - c0
times.sort()
n = len(times)
med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
chars = B * T
nparams = sum(p.numel() for p in m.parameters())
print('TORCH_TLM threads=%d chars_per_s=%.0f ms=%.2f chars_per_cpu_s=%.0f min_ms=%.2f params=%d V=%d L=%d H=%d E=%d '
      'F=%d B=%d T=%d steps=%d loss=%.3f'
      % (a.threads, chars / med, med * 1e3, chars * n / dc, times[0] * 1e3, nparams, V, a.layers, a.heads, a.embed,
         a.ffn or 4 * a.embed, B, T, a.steps, loss.item()), flush=True)
