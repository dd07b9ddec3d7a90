#!/usr/bin/python3
"""PyTorch side of bench/bench_cnn.c: whole-CNN training on Fashion-MNIST with
the same model, data, batch, optimiser (Adam, lr 1e-3) and thread count. Data
is loaded into memory first; the epoch time covers only the training loop.
Run with Debian's python3-torch and OPENBLAS_NUM_THREADS=<threads>:

  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench_torch_cnn.py \
      --net lenet5 --epochs 1 --threads 1 [--batch 64] [--steps 50] [--data DIR]
      [--channels-last]
Prints: TORCH_CNN_STEP net=lenet5 threads=1 batch=64 layout=nchw ms=... cpu_ms=...
        TORCH_CNN_EPOCH net=lenet5 threads=1 layout=nchw epoch=1 seconds=... cpu_seconds=... test_acc=...
(ms / seconds: wall time; cpu_*: process CPU time, all threads -- at 1 thread a
load-insensitive stand-in for the wall time.)
--channels-last runs the model and its inputs in torch.channels_last memory
format (layout=channels_last), where oneDNN's convolutions are faster on an
Intel CPU: the small ResNet's step 102-111 against 122-128 ms at 1 thread
(2026-12-06, Intel Xeon VM). tools/bench.sh runs both layouts and compares
Cortex with the faster.

--net takes a name (lenet5, small_resnet, small_vgg) or a models/*.net path
whose file name is one of those. The modules below mirror models/lenet5.net,
models/small_resnet.net and models/small_vgg.net: the same layers, and module
attribute names equal to the .net layer names, so their state_dicts have the
same keys and shapes as the Cortex networks' states (tests/models/test_interop.c
checks this, and tools/gen_interop_fixtures.py imports these classes).
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    """models/lenet5.net: conv(5x5, pad 2) - relu - maxpool 2 - conv(5x5) - relu -
    maxpool 2 - flatten - fc - relu - fc - relu - fc. Widths are parameters so
    the interop test can use a smaller copy (tests/fixtures/interop/lenet_small.net)."""

    def __init__(self, c1=6, c2=16, f1=120, f2=84, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.fc1 = nn.Linear(c2 * 5 * 5, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class SmallResNet(nn.Module):
    """models/small_resnet.net: stem conv3x3 - BN - relu, three stages of two
    basic blocks (conv3x3 - BN - relu - conv3x3 - BN, plus the identity or a
    1x1 stride-2 projection + BN, add, relu), global average pooling, linear.
    Block k of the file is b<k>; its layers b<k>c1, b<k>n1, b<k>c2, b<k>n2,
    b<k>proj, b<k>projn."""

    def __init__(self, widths=(16, 32, 64), classes=10):
        super().__init__()
        w1, w2, w3 = widths
        self.stem = nn.Conv2d(1, w1, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(w1)
        # (block, in, out, stride)
        self.blocks = [(1, w1, w1, 1), (2, w1, w1, 1), (3, w1, w2, 2), (4, w2, w2, 1),
                       (5, w2, w3, 2), (6, w3, w3, 1)]
        for b, cin, cout, s in self.blocks:
            setattr(self, f"b{b}c1", nn.Conv2d(cin, cout, 3, stride=s, padding=1, bias=False))
            setattr(self, f"b{b}n1", nn.BatchNorm2d(cout))
            setattr(self, f"b{b}c2", nn.Conv2d(cout, cout, 3, padding=1, bias=False))
            setattr(self, f"b{b}n2", nn.BatchNorm2d(cout))
            if s != 1 or cin != cout:
                setattr(self, f"b{b}proj", nn.Conv2d(cin, cout, 1, stride=s, bias=False))
                setattr(self, f"b{b}projn", nn.BatchNorm2d(cout))
        self.fc = nn.Linear(w3, classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        for b, cin, cout, s in self.blocks:
            h = F.relu(getattr(self, f"b{b}n1")(getattr(self, f"b{b}c1")(x)))
            h = getattr(self, f"b{b}n2")(getattr(self, f"b{b}c2")(h))
            if s != 1 or cin != cout:
                x = getattr(self, f"b{b}projn")(getattr(self, f"b{b}proj")(x))
            x = F.relu(h + x)
        x = x.mean((2, 3))
        return self.fc(x)


class SmallVGG(nn.Module):
    """models/small_vgg.net: two stages of (conv3x3 - BN - relu) x 2 + maxpool 2,
    flatten, dropout 0.3, fc1 256 - relu - fc2."""

    def __init__(self, w1=32, w2=64, hidden=256, classes=10):
        super().__init__()
        self.conv1_1 = nn.Conv2d(1, w1, 3, padding=1)
        self.bn1_1 = nn.BatchNorm2d(w1)
        self.conv1_2 = nn.Conv2d(w1, w1, 3, padding=1)
        self.bn1_2 = nn.BatchNorm2d(w1)
        self.conv2_1 = nn.Conv2d(w1, w2, 3, padding=1)
        self.bn2_1 = nn.BatchNorm2d(w2)
        self.conv2_2 = nn.Conv2d(w2, w2, 3, padding=1)
        self.bn2_2 = nn.BatchNorm2d(w2)
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(w2 * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.bn1_1(self.conv1_1(x)))
        x = F.max_pool2d(F.relu(self.bn1_2(self.conv1_2(x))), 2)
        x = F.relu(self.bn2_1(self.conv2_1(x)))
        x = F.max_pool2d(F.relu(self.bn2_2(self.conv2_2(x))), 2)
        x = self.drop(torch.flatten(x, 1))
        return self.fc2(F.relu(self.fc1(x)))


MODELS = {"lenet5": LeNet5, "small_resnet": SmallResNet, "small_vgg": SmallVGG}


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def images(u8):
    """u8 [N, 28, 28] -> float32 [N, 1, 28, 28] scaled exactly as cx_idx_load
    does: (float)v * (1/255.f)."""
    return torch.from_numpy(u8.astype(np.float32) * np.float32(1.0 / 255.0)).reshape(-1, 1, 28, 28)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="lenet5")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    name = os.path.splitext(os.path.basename(a.net))[0]
    if name not in MODELS:
        raise SystemExit(f"bench_torch_cnn: unknown net '{a.net}' (one of {', '.join(MODELS)})")
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    d = a.data
    xtr = images(idx(f"{d}/train-images-idx3-ubyte.gz"))
    ytr = torch.tensor(idx(f"{d}/train-labels-idx1-ubyte.gz"), dtype=torch.int64)
    xte = images(idx(f"{d}/t10k-images-idx3-ubyte.gz"))
    yte = torch.tensor(idx(f"{d}/t10k-labels-idx1-ubyte.gz"), dtype=torch.int64)
    net = MODELS[name]()
    layout = "channels_last" if a.channels_last else "nchw"
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        xtr = xtr.contiguous(memory_format=torch.channels_last)
        xte = xte.contiguous(memory_format=torch.channels_last)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    n = xtr.shape[0]
    nparams = sum(p.numel() for p in net.parameters())
    print(f"PyTorch {torch.__version__} {name}, {nparams} params, batch {a.batch}, Adam 1e-3, "
          f"{a.threads} thread(s), {layout}", flush=True)

    def step(xb, yb):
        opt.zero_grad()
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
        return loss

    if a.steps:
        best, best_cpu = 1e9, 1e9
        for rep in range(3):
            perm = torch.randperm(n)
            t0, c0 = time.perf_counter(), time.process_time()
            for k in range(a.steps):
                idxs = perm[k * a.batch:(k + 1) * a.batch]
                step(xtr[idxs], ytr[idxs])
            best = min(best, (time.perf_counter() - t0) * 1e3 / a.steps)
            best_cpu = min(best_cpu, (time.process_time() - c0) * 1e3 / a.steps)
        print(f"TORCH_CNN_STEP net={name} threads={a.threads} batch={a.batch} layout={layout} ms={best:.3f} "
              f"cpu_ms={best_cpu:.3f}", flush=True)
    for e in range(1, a.epochs + 1):
        perm = torch.randperm(n)
        t0, c0 = time.perf_counter(), time.process_time()
        tot, nb = 0.0, 0
        for k in range(0, n, a.batch):
            idxs = perm[k:k + a.batch]
            tot += step(xtr[idxs], ytr[idxs]).item()
            nb += 1
        secs, csecs = time.perf_counter() - t0, time.process_time() - c0
        net.eval()
        with torch.no_grad():
            correct = sum((net(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                          for i in range(0, xte.shape[0], 1000))
        net.train()
        print(f"TORCH_CNN_EPOCH net={name} threads={a.threads} layout={layout} epoch={e} seconds={secs:.3f} "
              f"cpu_seconds={csecs:.3f} loss={tot / nb:.4f} test_acc={correct / xte.shape[0]:.4f}", flush=True)


if __name__ == "__main__":
    main()
