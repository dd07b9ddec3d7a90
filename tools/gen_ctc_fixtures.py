#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_ctc.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_ctc_fixtures.py

Writes tests/fixtures/seq/ctc.safetensors. Every case C stores
    C.x      F32 [T, N, K]  logits; the loss is computed on log_softmax(x, 2)
    C.tgt    I64 [N, S] padded targets, or 1-D concatenated ones
    C.il     I64 [N]        input lengths
    C.tl     I64 [N]        target lengths
    C.blank  I64 [1]
    C.red    I64 [1]        0 mean, 1 sum, 2 none (cx_reduction)
    C.zinf   I64 [1]        zero_infinity
    C.out    F.ctc_loss(log_softmax(x, 2), tgt, il, tl, blank, reduction, zero_infinity)
             (0-d results stored as [1])
    C.gout   fixed random upstream gradient of C.out's shape
    C.grad   d sum(out * gout) / d x  (through the log_softmax, where PyTorch's
             ctc_loss gradient and the true one agree)
The metadata "cases" lists the case names.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(4321)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "seq", "ctc.safetensors")
REDS = {"mean": 0, "sum": 1, "none": 2}
TENSORS, CASES = [], []


def case(name, T, N, K, targets, il, tl, blank=0, red="mean", zinf=False, padded=True):
    x = (torch.randn(T, N, K) * 1.5).requires_grad_(True)
    tl_t = torch.tensor(tl, dtype=torch.long)
    il_t = torch.tensor(il, dtype=torch.long)
    if padded:
        S = max(max(tl), 1)
        tgt = torch.zeros(N, S, dtype=torch.long)
        for n, seq in enumerate(targets):
            tgt[n, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            # padding holds valid labels that must be ignored
            for k in range(len(seq), S):
                tgt[n, k] = 1 if blank != 1 else 2
    else:
        tgt = torch.tensor([v for seq in targets for v in seq], dtype=torch.long)
    out = F.ctc_loss(torch.log_softmax(x, 2), tgt, il_t, tl_t, blank=blank, reduction=red,
                     zero_infinity=zinf)
    gout = torch.randn(out.shape) if out.dim() else torch.tensor(1.7)
    (out * gout).sum().backward()
    for k, v in (("x", x.detach()), ("tgt", tgt), ("il", il_t), ("tl", tl_t),
                 ("blank", torch.tensor([blank])), ("red", torch.tensor([REDS[red]])),
                 ("zinf", torch.tensor([int(zinf)])), ("out", out.detach().reshape(-1)),
                 ("gout", gout.reshape(-1)), ("grad", x.grad)):
        TENSORS.append(("%s.%s" % (name, k), v.contiguous()))
    CASES.append(name)


def gen():
    # repeats (1, 1) need a blank between them; padding ignored; shorter inputs
    case("ctc_pad_mean", 12, 3, 5, [[1, 1, 2, 3], [4, 2], [3, 3, 3]], [12, 9, 10], [4, 2, 3])
    case("ctc_pad_sum", 10, 2, 4, [[1, 2, 1], [3]], [10, 6], [3, 1], red="sum")
    case("ctc_pad_none", 9, 3, 6, [[5, 4], [1, 1], [2, 3, 2, 3]], [9, 5, 9], [2, 2, 4], red="none")
    case("ctc_cat_mean", 11, 3, 5, [[2, 4, 4], [1], [3, 1, 2]], [11, 11, 7], [3, 1, 3], padded=False)
    case("ctc_blank_last", 8, 2, 4, [[0, 1, 1], [2, 0]], [8, 8], [3, 2], blank=3, red="none")
    case("ctc_empty_target", 6, 2, 3, [[], [1, 2]], [6, 6], [0, 2], red="none")
    # sequence 1 cannot be aligned: 4 labels with a repeat need 5 steps, it has 4
    case("ctc_zero_inf", 7, 2, 4, [[1, 2], [1, 1, 2, 3]], [7, 4], [2, 4], red="mean", zinf=True)
    case("ctc_long", 40, 2, 8, [[1, 2, 3, 4, 5, 6, 7, 7, 1, 2], [3, 3, 3, 5, 5]], [40, 31], [10, 5], red="sum")


if __name__ == "__main__":
    gen()
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_ctc_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES)})
    print("%d cases, %d tensors -> %s" % (len(CASES), len(TENSORS), os.path.normpath(OUT)))
