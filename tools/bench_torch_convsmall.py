#!/usr/bin/python3
"""PyTorch reference for bench/bench_convsmall.c: one pixel-DQN update on
Catch-sized frames (batch 64 of [1, 10, 5]) at 1 thread.
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch_convsmall.py [reps] [steps]
Prints TORCH_CONVSMALL step_ms=... nograd_fwd_ms=... fwd_bwd_ms=... and the *_cpu_ms
equivalents (medians over reps of the mean over steps, as bench_convsmall)."""
import sys, time, copy
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1)
B, H, W, A = 64, 10, 5, 3
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200


def net():
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * H * W, 128), nn.ReLU(), nn.Linear(128, A))


q, qt = net(), net()
opt = torch.optim.Adam(q.parameters(), lr=1e-3)


def frames():
    o = torch.zeros(B, 1, H, W)
    for j in range(B):
        o[j, 0, torch.randint(0, H - 1, ()).item(), torch.randint(0, W, ()).item()] = 1
        p = torch.randint(0, W - 2, ()).item()
        o[j, 0, H - 1, p:p + 3] = 1
    return o


o, o2 = frames(), frames()
act = torch.arange(B) % A
y = 0.1 * (torch.arange(B) % 7).float() - 0.3
ts, tf, tb, us, uf, ub = [], [], [], [], [], []
for r in range(-1, reps):
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        with torch.no_grad():
            a1 = qt(o2)
            a2 = q(o2)
            best = a2.argmax(1)
            _ = a1.gather(1, best[:, None])
        qa = q(o).gather(1, act[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(qa, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(q.parameters(), 10.0)
        opt.step()
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        with torch.no_grad():
            _ = q(o2)
    t2, c2 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        qa = q(o).gather(1, act[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(qa, y)
        opt.zero_grad()
        loss.backward()
    t3, c3 = time.perf_counter(), time.process_time()
    if r >= 0:
        for lst, v in ((ts, t1 - t0), (tf, t2 - t1), (tb, t3 - t2), (us, c1 - c0), (uf, c2 - c1), (ub, c3 - c2)):
            lst.append(v * 1e3 / steps)
med = lambda l: sorted(l)[len(l) // 2]
print("TORCH_CONVSMALL torch=%s step_ms=%.3f nograd_fwd_ms=%.3f fwd_bwd_ms=%.3f step_cpu_ms=%.3f "
      "nograd_fwd_cpu_ms=%.3f fwd_bwd_cpu_ms=%.3f" % (torch.__version__, med(ts), med(tf), med(tb), med(us), med(uf), med(ub)))
