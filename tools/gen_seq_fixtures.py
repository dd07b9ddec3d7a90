#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_seq.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_seq_fixtures.py

Writes tests/fixtures/seq/seq.safetensors (written by hand: the safetensors
python package is not needed). Every case C stores its own parameters, so the
C side needs no table of constants:

  embedding cases (emb_*):   out = F.embedding(idx, W, padding_idx=pad)
    C.w      F32 [V, E]      weight
    C.idx    I64 [...]       indices (repeated ones on purpose)
    C.pad    I64 [1]         padding_idx, -1 for none
  sequence cross-entropy cases (sce_*):
    C.logits F32 [T, B, V] or [B, T, V]
    C.tgt    I64 [T, B] or [B, T]   targets; padded positions hold arbitrary
                                    valid classes (they must be ignored)
    C.lengths I64 [B]        (length cases) or C.mask F32 like C.tgt (mask cases)
    C.bf     I64 [1]         1 for batch-first
    C.red    I64 [1]         0 mean, 1 sum, 2 none (cx_reduction)
    reference: F.cross_entropy(logits.reshape(-1, V), t.reshape(-1),
               ignore_index=-100, reduction=...) with t = tgt where -100 is
               written at the padded positions; 'none' reshaped to tgt's shape
  and for every case
    C.out    forward result (0-d results stored as [1])
    C.gout   fixed random upstream gradient of C.out's shape
    C.grad   d sum(out * gout) / d (W or logits)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "seq", "seq.safetensors")

TENSORS = []
CASES = []


def add(name, t):
    TENSORS.append((name, t.detach().clone()))


def i64(values):
    return torch.tensor(values, dtype=torch.int64)


def finish(c, x, out):
    out1 = out.reshape(1) if out.dim() == 0 else out
    gout = torch.randn(out1.shape)
    (g,) = torch.autograd.grad((out1 * gout).sum(), x)
    add(c + ".out", out1)
    add(c + ".gout", gout)
    add(c + ".grad", g)
    CASES.append(c)


def emb_case(c, V, E, idx, pad):
    w = torch.randn(V, E, requires_grad=True)
    idx = i64(idx)
    out = F.embedding(idx, w, padding_idx=None if pad < 0 else pad)
    add(c + ".w", w)
    add(c + ".idx", idx)
    add(c + ".pad", i64([pad]))
    finish(c, w, out)


RED = {"mean": 0, "sum": 1, "none": 2}


def sce_case(c, T, B, V, red, lengths=None, mask=None, batch_first=False, ignore_at=()):
    shape = (B, T) if batch_first else (T, B)
    logits = (torch.randn(*shape, V) * 2).requires_grad_(True)
    tgt = torch.randint(0, V, shape)
    real = torch.ones(shape, dtype=torch.bool)
    if lengths is not None:
        for b, n in enumerate(lengths):
            for t in range(n, T):
                if batch_first:
                    real[b, t] = False
                else:
                    real[t, b] = False
    if mask is not None:
        real = mask != 0
    for pos in ignore_at:  # a real position whose target is -100 itself
        tgt[pos] = -100
    t = tgt.clone()
    t[~real] = -100
    out = F.cross_entropy(logits.reshape(-1, V), t.reshape(-1), ignore_index=-100, reduction=red)
    if red == "none":
        out = out.reshape(shape)
    add(c + ".logits", logits)
    add(c + ".tgt", tgt)
    if lengths is not None:
        add(c + ".lengths", i64(lengths))
    if mask is not None:
        add(c + ".mask", mask.float())
    add(c + ".bf", i64([1 if batch_first else 0]))
    add(c + ".red", i64([RED[red]]))
    finish(c, logits, out)


def gen():
    emb_case("emb_rep", 7, 5, [[1, 3, 3, 6], [0, 1, 1, 1], [6, 2, 3, 0]], -1)
    emb_case("emb_pad", 6, 3, [[2, 5, 2, 0, 1], [4, 2, 5, 5, 3]], 2)
    emb_case("emb_1d_pad0", 4, 2, [3, 3, 3, 0, 1, 3], 0)
    emb_case("emb_3d", 5, 4, [[[0, 4], [4, 4]], [[1, 2], [3, 0]]], -1)
    for red in ("mean", "sum", "none"):
        sce_case("sce_tm_len_" + red, 5, 3, 7, red, lengths=[5, 2, 3])
    sce_case("sce_bm_len_mean", 5, 3, 7, "mean", lengths=[4, 5, 1], batch_first=True)
    sce_case("sce_bm_len_none", 4, 2, 6, "none", lengths=[1, 4], batch_first=True)
    sce_case("sce_tm_len0_sum", 4, 3, 5, "sum", lengths=[0, 4, 2])
    mask = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1], [1, 0, 1, 0]], dtype=torch.float32)
    sce_case("sce_tm_mask_mean", 4, 4, 6, "mean", mask=mask, ignore_at=[(0, 1)])
    sce_case("sce_bm_mask_sum", 4, 4, 6, "sum", mask=mask.t().contiguous(), batch_first=True)


def write(path):
    safetensors_py.write(path, TENSORS, {"generator": "tools/gen_seq_fixtures.py",
                                         "torch": torch.__version__, "cases": ",".join(CASES)})


if __name__ == "__main__":
    gen()
    write(OUT)
    print("%d cases, %d tensors, %d bytes -> %s" % (len(CASES), len(TENSORS), os.path.getsize(OUT),
                                                     os.path.normpath(OUT)))
