#!/usr/bin/python3
"""Fixtures of tests/models/test_interop.c: CNN weights moving both ways
between PyTorch and Cortex through safetensors.

Regenerate (from the repository root, Debian's python3-torch 1.13):

  1. Only if the test networks tests/fixtures/interop/{lenet,resnet}_small.net
     change: re-train the Cortex-written models with the cortex CLI
        B=$(make -s print-variant); make $B/cortex
        for m in lenet resnet; do
          $B/cortex train --model tests/fixtures/interop/${m}_small.net \\
            --data data/fashion-mnist-subset --limit 600 --val 100 --epochs 3 \\
            --batch 32 --lr 0.003 --seed 7 --quiet \\
            --out tests/fixtures/interop/cortex_${m}.safetensors --metrics /tmp/m.csv
        done
  2. /usr/bin/python3 tools/gen_interop_fixtures.py

Networks (small copies of models/lenet5.net and models/small_resnet.net, so the
fixtures stay ~230 KB in all; the PyTorch twins are the classes of
tools/bench_torch_cnn.py, the same ones the CNN benchmark uses):
  lenet   tests/fixtures/interop/lenet_small.net   = LeNet5(4, 8, 32, 24)
  resnet  tests/fixtures/interop/resnet_small.net  = SmallResNet((4, 8, 16))
          (batch norm: running stats and num_batches_tracked are in the state)

Writes (safetensors written by hand, tensors in insertion order):
  torch_lenet.safetensors, torch_resnet.safetensors
      PyTorch -> Cortex: the state_dict (parameters + buffers, nothing else) of
      each PyTorch model after a short training run (Adam 3e-3, batch 32, the
      first 512 images of data/fashion-mnist-subset, 3 epochs), so the weights
      and batch-norm statistics are far from their initial values.
  interop.safetensors
      images32                 U8 [32, 1, 28, 28]  test images 0..31 of
                               data/fashion-mnist-subset (t10k); the model
                               input is (float)u8 * (1/255.f), as cx_idx_load
      labels200                I64 [200]           labels of test images 0..199
      <m>.logits32             F32 [32, 10]        eval-mode logits on images32
      <m>.logits200            F32 [200, 10]       eval-mode logits on test images 0..199
      <m>.correct              I64 [1]             correct predictions among those 200
    for m in
      torch_lenet, torch_resnet    the PyTorch-trained models above
      cortex_lenet, cortex_resnet  the committed Cortex-written files
                                   cortex_{lenet,resnet}.safetensors, loaded
                                   into the PyTorch twin with
                                   load_state_dict(strict=True) (Cortex -> PyTorch)
      keys.<net>.<state key>   I64 [1 + ndim]      for the full-size networks
                               (net = lenet5, small_resnet, small_vgg of models/):
                               dtype code (0 F32, 1 I64) then the shape of every
                               state_dict entry of the PyTorch twin, so the test
                               can check that the .net files have the same state
                               names, shapes and dtypes as the benchmark models.
"""
import gzip
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "interop")
SUBSET = os.path.join(ROOT, "data", "fashion-mnist-subset")
sys.path.insert(0, HERE)
from bench_torch_cnn import LeNet5, SmallResNet, SmallVGG, idx, images  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)


def write_st(path, tensors):
    """tensors: list of (name, tensor); dtypes F32, I64, U8."""
    safetensors_py.write(path, tensors, {"generator": "tools/gen_interop_fixtures.py",
                                         "torch": torch.__version__})


def read_st(path):
    """A safetensors file -> {name: tensor} (metadata skipped)."""
    return safetensors_py.read(path)[0]


def train(net, x, y, epochs=3, batch=32, lr=3e-3):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=g)
        for k in range(0, x.shape[0], batch):
            i = perm[k:k + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i]), y[i]).backward()
            opt.step()
    net.eval()


def outputs(prefix, net, x200, y200):
    net.eval()
    with torch.no_grad():
        l200 = net(x200)
        l32 = net(x200[:32])
    correct = int((l200.argmax(1) == y200).sum())
    print(f"{prefix}: {correct}/200 correct", flush=True)
    return [(f"{prefix}.logits32", l32), (f"{prefix}.logits200", l200),
            (f"{prefix}.correct", torch.tensor([correct], dtype=torch.int64))]


def main():
    xtr = images(idx(f"{SUBSET}/train-images-idx3-ubyte.gz")[:512])
    ytr = torch.tensor(idx(f"{SUBSET}/train-labels-idx1-ubyte.gz")[:512], dtype=torch.int64)
    u8 = idx(f"{SUBSET}/t10k-images-idx3-ubyte.gz")[:200]
    x200 = images(u8)
    y200 = torch.tensor(idx(f"{SUBSET}/t10k-labels-idx1-ubyte.gz")[:200], dtype=torch.int64)
    fix = [("images32", torch.from_numpy(u8[:32].copy()).reshape(32, 1, 28, 28)), ("labels200", y200)]

    make = {"lenet": lambda: LeNet5(4, 8, 32, 24), "resnet": lambda: SmallResNet((4, 8, 16))}
    for name, ctor in make.items():
        # PyTorch -> Cortex
        torch.manual_seed(11)
        net = ctor()
        init = {k: v.clone() for k, v in net.state_dict().items()}
        train(net, xtr, ytr)
        moved = max(float((v.float() - init[k].float()).abs().max()) for k, v in net.state_dict().items())
        assert moved > 0.05, "weights did not move"
        write_st(os.path.join(OUT, f"torch_{name}.safetensors"), list(net.state_dict().items()))
        fix += outputs(f"torch_{name}", net, x200, y200)
        # Cortex -> PyTorch
        net = ctor()
        state = read_st(os.path.join(OUT, f"cortex_{name}.safetensors"))
        net.load_state_dict(state, strict=True)
        for k, v in net.state_dict().items():  # loaded bit for bit, same dtypes
            assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k
        fix += outputs(f"cortex_{name}", net, x200, y200)

    for name, net in (("lenet5", LeNet5()), ("small_resnet", SmallResNet()), ("small_vgg", SmallVGG())):
        for k, v in net.state_dict().items():
            code = {torch.float32: 0, torch.int64: 1}[v.dtype]
            fix.append((f"keys.{name}.{k}", torch.tensor([code] + list(v.shape), dtype=torch.int64)))
    write_st(os.path.join(OUT, "interop.safetensors"), fix)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total} bytes in all)")


if __name__ == "__main__":
    main()
