#!/usr/bin/python3
"""PyTorch side of bench/bench_memn2n.c: the same MemN2N (tools/memn2n_torch.py:
3 hops, PE, temporal encoding, d 20), batch 32, SGD lr 0.01, gradient norm
clipped at 40, summed cross entropy, on the questions bench_memn2n wrote
(--data FILE: memory [N, S, L], query, answer). Every question trains; an
epoch is a fresh permutation. Run with OPENBLAS_NUM_THREADS=<threads>:

  /usr/bin/python3 tools/bench_torch_memn2n.py [threads] --data FILE [--epochs 20]
Prints: TORCH_MEMN2N threads=1 epoch_ms=... train_err=...
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_py  # noqa: E402
from memn2n_torch import MemN2N  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('threads', nargs='?', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--data', required=True)
ap.add_argument('--epochs', type=int, default=20)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)

t, meta = safetensors_py.read(a.data)
mem, query, answer = t['memory'].long(), t['query'].long(), t['answer'].long()
N, S, _ = mem.shape
slots = ((mem > 0).any(-1).long() * torch.arange(1, S + 1)).amax(-1)  # through the last non-empty row
net = MemN2N(int(meta['vocab']), 20, 3, 50, pe=True, temporal=True, std=0.1)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
times = []
for epoch in range(a.epochs):
    perm = torch.randperm(N)
    t0 = time.perf_counter()
    for at in range(0, N, 32):
        idx = perm[at:at + 32]
        opt.zero_grad()
        loss = F.cross_entropy(net(mem[idx], slots[idx], query[idx]), answer[idx], reduction='sum')
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 40.0)
        opt.step()
    times.append((time.perf_counter() - t0) * 1e3)
with torch.no_grad():
    err = (net(mem, slots, query).argmax(-1) != answer).float().mean().item()
times.sort()
n = len(times)
med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
print("TORCH_MEMN2N threads=%d epoch_ms=%.3f min_ms=%.3f train_err=%.4f questions=%d epochs=%d"
      % (a.threads, med, times[0], err, N, a.epochs))
