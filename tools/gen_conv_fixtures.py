#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_conv.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_conv_fixtures.py

Writes tests/fixtures/conv/conv.safetensors (safetensors written by hand).
For every case C it stores

    C.x, C.w, C.b       input, weight and (unless the case has no bias) bias
    C.out               forward output
    C.gout              fixed random upstream gradient, same shape as C.out
    C.gx, C.gw, C.gb    d sum(out * gout) / d x, w, b

and the case's options as the metadata entry "C" =
"kind stride... padding... dilation... output_padding... groups" with three
values per option (unused dims 1 / 0), kind one of conv1d, conv2d, conv3d,
conv_transpose2d. The C test reads the options from the metadata, so the
table below is the only place they are written down.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "conv", "conv.safetensors")

TENSORS = []
META = {}

# name, kind, x shape, w shape, bias, stride, padding, dilation, output_padding, groups
CASES = [
    ("c2d_basic", "conv2d", (2, 3, 7, 6), (4, 3, 3, 3), True, (1, 1), (0, 0), (1, 1), (0, 0), 1),
    ("c2d_s2_p1", "conv2d", (2, 3, 9, 8), (5, 3, 3, 3), True, (2, 2), (1, 1), (1, 1), (0, 0), 1),
    ("c2d_dil2", "conv2d", (1, 2, 9, 9), (3, 2, 3, 3), True, (1, 1), (2, 2), (2, 2), (0, 0), 1),
    ("c2d_groups2", "conv2d", (2, 4, 7, 7), (6, 2, 3, 3), True, (1, 1), (1, 1), (1, 1), (0, 0), 2),
    ("c2d_depthwise", "conv2d", (2, 3, 7, 7), (6, 1, 3, 3), True, (2, 2), (1, 1), (1, 1), (0, 0), 3),
    ("c2d_1x1", "conv2d", (2, 5, 5, 7), (3, 5, 1, 1), True, (1, 1), (0, 0), (1, 1), (0, 0), 1),
    ("c2d_1x1_s2", "conv2d", (2, 5, 5, 7), (3, 5, 1, 1), True, (2, 2), (0, 0), (1, 1), (0, 0), 1),
    ("c2d_nobias", "conv2d", (2, 3, 6, 5), (4, 3, 2, 3), False, (2, 1), (1, 0), (1, 1), (0, 0), 1),
    ("c2d_asym", "conv2d", (2, 2, 8, 9), (3, 2, 3, 2), True, (1, 2), (0, 1), (2, 1), (0, 0), 1),
    ("c2d_lenet", "conv2d", (3, 1, 12, 11), (6, 1, 5, 5), True, (1, 1), (0, 0), (1, 1), (0, 0), 1),
    ("c1d_s2_p1", "conv1d", (2, 3, 11), (4, 3, 3), True, (2,), (1,), (1,), (0,), 1),
    ("c1d_g3_dil2", "conv1d", (2, 3, 13), (6, 1, 3), False, (1,), (2,), (2,), (0,), 3),
    ("c3d_basic", "conv3d", (1, 2, 5, 6, 5), (3, 2, 3, 2, 3), True, (1, 2, 1), (1, 0, 1), (1, 1, 1), (0, 0, 0), 1),
    ("c3d_g2_dil", "conv3d", (2, 4, 5, 5, 6), (2, 2, 2, 3, 2), True, (2, 1, 1), (0, 1, 1), (1, 2, 1), (0, 0, 0), 2),
    ("ct2d_s2_op1", "conv_transpose2d", (2, 3, 4, 5), (3, 4, 3, 3), True, (2, 2), (1, 1), (1, 1), (1, 1), 1),
    ("ct2d_g3_dil2", "conv_transpose2d", (1, 6, 3, 4), (6, 2, 3, 3), True, (2, 3), (1, 0), (2, 2), (1, 2), 3),
    ("ct2d_nobias", "conv_transpose2d", (2, 2, 5, 3), (2, 3, 2, 3), False, (1, 1), (0, 1), (1, 1), (0, 0), 1),
    ("ct2d_1x1", "conv_transpose2d", (2, 4, 3, 5), (4, 3, 1, 1), True, (1, 1), (0, 0), (1, 1), (0, 0), 1),
]


def pad3(t, fill):
    return list(t) + [fill] * (3 - len(t))


def gen():
    for name, kind, xs, ws, bias, s, p, d, op, g in CASES:
        x = torch.randn(*xs, requires_grad=True)
        w = (torch.randn(*ws) * 0.5).requires_grad_(True)
        out_ch = ws[1] * g if kind == "conv_transpose2d" else ws[0]
        b = torch.randn(out_ch, requires_grad=True) if bias else None
        if kind == "conv1d":
            y = F.conv1d(x, w, b, s, p, d, g)
        elif kind == "conv2d":
            y = F.conv2d(x, w, b, s, p, d, g)
        elif kind == "conv3d":
            y = F.conv3d(x, w, b, s, p, d, g)
        else:
            y = F.conv_transpose2d(x, w, b, s, p, op, g, d)
        gout = torch.randn(y.shape)
        wrt = [x, w] + ([b] if bias else [])
        grads = torch.autograd.grad(y, wrt, grad_outputs=gout)
        TENSORS.append((name + ".x", x.detach()))
        TENSORS.append((name + ".w", w.detach()))
        if bias:
            TENSORS.append((name + ".b", b.detach()))
        TENSORS.append((name + ".out", y.detach()))
        TENSORS.append((name + ".gout", gout))
        TENSORS.append((name + ".gx", grads[0]))
        TENSORS.append((name + ".gw", grads[1]))
        if bias:
            TENSORS.append((name + ".gb", grads[2]))
        vals = pad3(s, 1) + pad3(p, 0) + pad3(d, 1) + pad3(op, 0) + [g]
        META[name] = " ".join([kind] + [str(v) for v in vals])


def write(path):
    meta = {"generator": "tools/gen_conv_fixtures.py", "torch": torch.__version__,
            "cases": str(len(CASES))}
    meta.update(META)
    safetensors_py.write(path, TENSORS, meta)


if __name__ == "__main__":
    gen()
    write(OUT)
    print("%d cases, %d tensors, %d bytes -> %s" % (len(CASES), len(TENSORS),
                                                     os.path.getsize(OUT), os.path.normpath(OUT)))
