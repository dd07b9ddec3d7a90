#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_conv_nhwc.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_conv_nhwc_fixtures.py

Writes tests/fixtures/conv/conv_nhwc.safetensors. PyTorch runs each
convolution on channels_last tensors (torch.channels_last memory format,
oneDNN's NHWC path); the fixture stores them in that memory order, as
cx_conv2d_nhwc takes them. For every case C:

    C.x [N, H, W, C], C.w [O, C, kh, kw] (PyTorch's weight layout), C.b [O]
    C.y [N, OH, OW, O]         the forward output
    C.R [N, OH, OW, O]         a fixed random upstream gradient
    C.gx, C.gw, C.gb           d sum(y * R) / d x, w, b
    C.stride, C.padding        I64 scalars (the same along H and W)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)
import torch.nn.functional as F

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "conv", "conv_nhwc.safetensors")

# name, N, H, W, C, O, k, stride, padding
CASES = [
    ("s1", 2, 9, 8, 16, 16, 3, 1, 1),      # a ResNet block's 3x3
    ("s2", 2, 10, 9, 16, 32, 3, 2, 1),     # the strided 3x3 of a stage change
    ("proj", 2, 10, 10, 16, 32, 1, 2, 0),  # the 1x1 strided projection
    ("odd", 1, 7, 6, 5, 7, 3, 2, 2),       # channels that fill no vector, pad 2
]


def main():
    tensors = []
    for name, n, h, w_, c, o, k, s, p in CASES:
        x = torch.randn(n, c, h, w_).to(memory_format=torch.channels_last).requires_grad_(True)
        w = (torch.randn(o, c, k, k) * 0.3).to(memory_format=torch.channels_last).requires_grad_(True)
        b = torch.randn(o, requires_grad=True)
        y = F.conv2d(x, w, b, s, p)
        assert y.is_contiguous(memory_format=torch.channels_last)
        r = torch.randn(y.shape).to(memory_format=torch.channels_last)
        gx, gw, gb = torch.autograd.grad((y * r).sum(), [x, w, b])
        nhwc = lambda t: t.detach().permute(0, 2, 3, 1).contiguous()  # noqa: E731
        tensors += [(name + ".x", nhwc(x)), (name + ".w", w.detach().contiguous()), (name + ".b", b.detach()),
                    (name + ".y", nhwc(y)), (name + ".R", nhwc(r)), (name + ".gx", nhwc(gx)),
                    (name + ".gw", gw.contiguous()), (name + ".gb", gb),
                    (name + ".stride", torch.tensor([s], dtype=torch.int64)),
                    (name + ".padding", torch.tensor([p], dtype=torch.int64))]
    safetensors_py.write(OUT, tensors, {"generator": "tools/gen_conv_nhwc_fixtures.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
