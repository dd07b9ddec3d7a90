#!/usr/bin/python3
"""PyTorch side of bench/bench_rnn.c: one torch.nn.LSTM / GRU layer, forward +
backward, same shapes (x [seq, batch, input], x without grad, fixed random
upstream gradient on the output), median over the repetitions.
Run with OPENBLAS_NUM_THREADS=<threads> (Debian's python3-torch 1.13):

  /usr/bin/python3 tools/bench_torch_rnn.py [threads] [--cell lstm|gru|all] [--reps 15]
Prints: TORCH_RNN cell=lstm threads=1 ms=...
"""
import argparse
import os
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument('threads', nargs='?', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--cell', default='all')
ap.add_argument('--reps', type=int, default=15)
ap.add_argument('--input', type=int, default=128)
ap.add_argument('--hidden', type=int, default=256)
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--seq', type=int, default=64)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))


def run(cell):
    torch.manual_seed(1)
    cls = torch.nn.LSTM if cell == 'lstm' else torch.nn.GRU
    m = cls(a.input, a.hidden)
    x = torch.rand(a.seq, a.batch, a.input) * 2 - 1
    gout = torch.rand(a.seq, a.batch, a.hidden) * 2 - 1
    ms = []
    for r in range(a.reps + 2):
        m.zero_grad()
        t0 = time.perf_counter()
        out, _ = m(x)
        out.backward(gout)
        t1 = time.perf_counter()
        if r >= 2:
            ms.append((t1 - t0) * 1e3)
    ms.sort()
    n = len(ms)
    med = ms[n // 2] if n % 2 else 0.5 * (ms[n // 2 - 1] + ms[n // 2])
    print('TORCH_RNN cell=%s threads=%d ms=%.2f input=%d hidden=%d batch=%d seq=%d min_ms=%.2f'
          % (cell, a.threads, med, a.input, a.hidden, a.batch, a.seq, ms[0]), flush=True)


if a.cell in ('lstm', 'all'):
    run('lstm')
if a.cell in ('gru', 'all'):
    run('gru')
