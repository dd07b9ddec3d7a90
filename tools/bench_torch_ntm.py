#!/usr/bin/python3
"""PyTorch side of bench/bench_ntm.c: the same NTM (the module of
tools/gen_ntm_fixtures.py: LSTM controller 100, 1 read + 1 write head,
memory 128 x 20, 8-bit copy task), the same training step (masked BCE,
clip_grad_norm_ 10, RMSprop lr 1e-4 momentum 0.9 alpha 0.95), the same
length schedule (step s: length 1 + (7 s mod 20)), sequences per second
over the timed steps. Run with OPENBLAS_NUM_THREADS=<threads>:

  /usr/bin/python3 tools/bench_torch_ntm.py [threads] [--batch 1] [--steps 100] [--warmup 20]
Prints: TORCH_NTM threads=1 batch=1 seq_per_s=... seq_per_cpu_s=... ms_per_step=...
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_ntm_fixtures import NTM, seq_loss  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('threads', nargs='?', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--batch', type=int, default=1)
ap.add_argument('--steps', type=int, default=100)
ap.add_argument('--warmup', type=int, default=20)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)
W = 8
m = NTM(W + 1, W, 100, 128, 20, 1, 1)
opt = torch.optim.RMSprop(m.parameters(), lr=1e-4, momentum=0.9, alpha=0.95)


def batch(L, B):
    T = 2 * L + 1
    x = torch.zeros(T, B, W + 1)
    y = torch.zeros(T, B, W)
    mask = torch.zeros(T, B)
    bits = (torch.rand(L, B, W) < 0.5).float()
    x[:L, :, :W] = bits
    x[L, :, W] = 1
    y[L + 1:] = bits
    mask[L + 1:] = 1
    return x, y, mask


t0 = c0 = 0
loss_sum = 0.0
for s in range(a.warmup + a.steps):
    if s == a.warmup:
        t0, c0 = time.perf_counter(), time.process_time()
    x, y, mask = batch(1 + (7 * s) % 20, a.batch)
    logits, _ = m(x)
    loss = seq_loss(logits, y, mask)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 10.0)
    opt.step()
    loss_sum += float(loss)
el, cpu = time.perf_counter() - t0, time.process_time() - c0
print('TORCH_NTM threads=%d batch=%d seq_per_s=%.1f seq_per_cpu_s=%.1f ms_per_step=%.3f steps=%d mean_loss=%.4f'
      % (a.threads, a.batch, a.steps * a.batch / el, a.steps * a.batch / cpu, 1e3 * el / a.steps, a.steps,
         loss_sum / (a.warmup + a.steps)), flush=True)
