#!/usr/bin/python3
"""PyTorch side of the MLP benchmark: the same model, data, batch, optimiser and
thread count as bench/bench_mlp.c. Data is loaded into memory first; the epoch
time covers only the training loop. Run with OPENBLAS_NUM_THREADS=<threads>.

  tools/bench_torch_mlp.py --hidden 256 --epochs 1 --threads 1 [--steps 200]
Prints: TORCH_MLP_EPOCH hidden=256 threads=1 epoch=1 seconds=... test_acc=...
        TORCH_MLP_STEP hidden=256,256 threads=1 batch=64 ms=...
"""
import argparse, gzip, time
import numpy as np
import torch

def idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

ap = argparse.ArgumentParser()
ap.add_argument('--hidden', default='256')
ap.add_argument('--epochs', type=int, default=1)
ap.add_argument('--batch', type=int, default=64)
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--steps', type=int, default=0)
ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)
d = a.data
xtr = torch.tensor(idx(f'{d}/train-images-idx3-ubyte.gz').reshape(-1, 784), dtype=torch.float32) / 255
ytr = torch.tensor(idx(f'{d}/train-labels-idx1-ubyte.gz'), dtype=torch.int64)
xte = torch.tensor(idx(f'{d}/t10k-images-idx3-ubyte.gz').reshape(-1, 784), dtype=torch.float32) / 255
yte = torch.tensor(idx(f'{d}/t10k-labels-idx1-ubyte.gz'), dtype=torch.int64)
sizes = [784] + [int(h) for h in a.hidden.split(',')] + [10]
layers = []
for i in range(len(sizes) - 1):
    layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
    if i + 2 < len(sizes):
        layers.append(torch.nn.ReLU())
net = torch.nn.Sequential(*layers)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
lossf = torch.nn.CrossEntropyLoss()
n = xtr.shape[0]

def step(xb, yb):
    opt.zero_grad()
    loss = lossf(net(xb), yb)
    loss.backward()
    opt.step()
    return loss

if a.steps:
    best = 1e9
    for rep in range(5):
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for k in range(a.steps):
            idxs = perm[k * a.batch:(k + 1) * a.batch]
            step(xtr[idxs], ytr[idxs])
        best = min(best, (time.perf_counter() - t0) * 1e3 / a.steps)
    print(f'TORCH_MLP_STEP hidden={a.hidden} threads={a.threads} batch={a.batch} ms={best:.4f}', flush=True)
for e in range(1, a.epochs + 1):
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    for k in range(0, n, a.batch):
        idxs = perm[k:k + a.batch]
        step(xtr[idxs], ytr[idxs])
    secs = time.perf_counter() - t0
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f'TORCH_MLP_EPOCH hidden={a.hidden} threads={a.threads} epoch={e} seconds={secs:.3f} test_acc={acc:.4f}', flush=True)
