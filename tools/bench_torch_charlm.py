#!/usr/bin/python3
"""PyTorch side of the char-LM training-speed benchmark (the issue's setting):
embedding 64 -> 1-layer LSTM, hidden 256 -> linear to V, batch 32 streams x
seq 64 characters, truncated BPTT with the states carried and detached, mean
cross-entropy, gradient clipping at norm 5, Adam lr 2e-3 -- the same work per
step as `cortex charlm train` (cli/charlm.c). Characters/s over the timed steps
(after 3 warm-up steps).

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch_charlm.py [--threads 1]
      [--text FILE] [--steps 60] [--vocab 91] [--layers 1] [--hidden 256]
      [--embed 64] [--batch 32] [--seq 64]

Without --text the stream is random ids over --vocab symbols (speed does not
depend on the data). Prints (chars_per_cpu_s: per second of process CPU time, a steadier figure on a
loaded machine):
  TORCH_CHARLM threads=1 chars_per_s=... chars_per_cpu_s=... steps=... V=... L=1 H=256 B=32 T=64

Cortex side, back to back (random printable text of 90 symbols -> V = 91 with <unk>):
  /usr/bin/python3 -c "import random; random.seed(1); print(''.join(chr(33 + random.randrange(90)) for _ in range(400000)), end='')" > /tmp/rand90.txt
  build/cortex charlm train --text /tmp/rand90.txt --layers 1 --hidden 256 --embed 64 \
      --batch 32 --seq 64 --val-frac 0 --steps 60 --threads 1 --quiet --out /tmp/bench_lm.safetensors
  (its last line reports "chars/s training")
"""
import argparse
import os
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=int(os.environ.get('CX_THREADS', '1')))
ap.add_argument('--text', default=None)
ap.add_argument('--steps', type=int, default=60)
ap.add_argument('--vocab', type=int, default=91)
ap.add_argument('--layers', type=int, default=1)
ap.add_argument('--hidden', type=int, default=256)
ap.add_argument('--embed', type=int, default=64)
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--seq', type=int, default=64)
ap.add_argument('--lr', type=float, default=2e-3)
ap.add_argument('--clip', type=float, default=5.0)
a = ap.parse_args()
torch.set_num_threads(max(1, a.threads))
torch.manual_seed(1)

if a.text:
    s = open(a.text, encoding='utf-8').read()
    chars = sorted(set(s))
    idx = {c: i + 1 for i, c in enumerate(chars)}  # id 0 = <unk>, as Cortex
    V = len(chars) + 1
    data = torch.tensor([idx[c] for c in s], dtype=torch.long)
else:
    V = a.vocab
    data = torch.randint(1, V, (a.batch * a.seq * (a.steps + 8) + 1,))

B, T = a.batch, a.seq
L = (data.numel() - 1) // B
streams_x = data[:B * L].view(B, L).t().contiguous()        # [L, B]
streams_y = data[1:B * L + 1].view(B, L).t().contiguous()


class CharLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, a.embed)
        self.lstm = torch.nn.LSTM(a.embed, a.hidden, a.layers)
        self.fc = torch.nn.Linear(a.hidden, V)

    def forward(self, x, state):
        o, state = self.lstm(self.embed(x), state)
        return self.fc(o), state


m = CharLM()
opt = torch.optim.Adam(m.parameters(), lr=a.lr)
state = None
nb = L // T
warm = 3
t0 = None
chars = 0
for step in range(a.steps + warm):
    k = step % nb
    if k == 0:
        state = None
    x = streams_x[k * T:(k + 1) * T]
    y = streams_y[k * T:(k + 1) * T]
    if step == warm:
        t0 = time.perf_counter()
        c0 = time.process_time()
    opt.zero_grad()
    logits, state = m(x, state)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), a.clip)
    opt.step()
    state = tuple(s.detach() for s in state)
    if step >= warm:
        chars += x.numel()
dt = time.perf_counter() - t0
dc = time.process_time() - c0
print('TORCH_CHARLM threads=%d chars_per_s=%.0f chars_per_cpu_s=%.0f steps=%d V=%d L=%d H=%d B=%d T=%d loss=%.3f'
      % (a.threads, chars / dt, chars / dc, a.steps, V, a.layers, a.hidden, B, T, loss.item()), flush=True)
