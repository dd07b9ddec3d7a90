#!/usr/bin/python3
"""PyTorch side of bench/bench_attention.c: torch.nn.MultiheadAttention
self-attention, forward + backward, same shapes (x [seq, batch, embed], or
[batch, seq, embed] with --batch-first, requiring grad; query = key = value =
x; need_weights=False; training mode, dropout 0; fixed random upstream
gradient on the output), median over the repetitions.
Run with OPENBLAS_NUM_THREADS=<threads> (Debian's python3-torch 1.13):

  /usr/bin/python3 tools/bench_torch_attention.py [threads] [--reps 15] [--batch 32] [--seq 64]
                                                  [--embed 256] [--heads 8] [--batch-first]
Prints: TORCH_ATTN threads=1 ms=... batch=32 seq=64 embed=256 heads=8 batch_first=0 min_ms=...
"""
import argparse
import os
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument('threads', nargs='?', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--reps', type=int, default=15)
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--seq', type=int, default=64)
ap.add_argument('--embed', type=int, default=256)
ap.add_argument('--heads', type=int, default=8)
ap.add_argument('--batch-first', action='store_true')
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)
m = torch.nn.MultiheadAttention(a.embed, a.heads, batch_first=a.batch_first)
m.train()
shape = (a.batch, a.seq, a.embed) if a.batch_first else (a.seq, a.batch, a.embed)
x0 = torch.rand(*shape) * 2 - 1
gout = torch.rand(*shape) * 2 - 1
ms = []
for r in range(a.reps + 2):  # two warm-up runs
    m.zero_grad()
    t0 = time.perf_counter()
    x = x0.clone().requires_grad_()
    out, _ = m(x, x, x, need_weights=False)
    out.backward(gout)
    t1 = time.perf_counter()
    if r >= 2:
        ms.append((t1 - t0) * 1e3)
ms.sort()
n = len(ms)
med = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
print('TORCH_ATTN threads=%d ms=%.3f batch=%d seq=%d embed=%d heads=%d batch_first=%d min_ms=%.3f'
      % (a.threads, med, a.batch, a.seq, a.embed, a.heads, int(a.batch_first), ms[0]), flush=True)
