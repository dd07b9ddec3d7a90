#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_pixelrnn.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_pixelrnn_fixtures.py

Writes tests/fixtures/pixelrnn/pixelrnn.safetensors.

Masked convolution cases C (mask A / B, van den Oord et al. 2016):
    C.type        I64 [1]   0 = mask A (centre excluded), 1 = mask B (centre included)
    C.x           F32 [N, C, H, W], C.w F32 [O, C, kh, kw], C.b F32 [O]
    C.mask        F32 [kh, kw]
    C.out         conv2d(x, w * mask, b, padding=(kh//2, kw//2))
    C.gout        random upstream gradient of C.out's shape
    C.gx, C.gw, C.gb   d sum(out * gout) / d x, w, b
Row LSTM cases R:
    R.x [N, C, H, W], R.w_is [4h, C, 1, k], R.b_is [4h], R.w_ss [4h, h, k], R.b_ss [4h]
    R.out [N, h, H, W]: rows top to bottom, gates (i, f, g, o) of row r =
        conv2d(x, w_is * maskB, b_is, padding=(0, k//2))[:, :, r, :]
        + conv1d(h_{r-1}, w_ss, b_ss, padding=k//2)
    R.gout, R.gx, R.gw_is, R.gb_is, R.gw_ss, R.gb_ss
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(2016)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "pixelrnn", "pixelrnn.safetensors")
TENSORS, CASES = [], []


def mask(kh, kw, typ):
    m = torch.zeros(kh, kw)
    ch, cw = kh // 2, kw // 2
    m[:ch, :] = 1
    m[ch, :cw] = 1
    if typ == 1:
        m[ch, cw] = 1
    return m


def put(name, pairs):
    for k, v in pairs:
        TENSORS.append(("%s.%s" % (name, k), v.detach().contiguous()))
    CASES.append(name)


def conv_case(name, N, C, O, H, W, kh, kw, typ):
    x = torch.randn(N, C, H, W, requires_grad=True)
    w = (torch.randn(O, C, kh, kw) * 0.3).requires_grad_(True)
    b = torch.randn(O, requires_grad=True)
    m = mask(kh, kw, typ)
    out = F.conv2d(x, w * m, b, padding=(kh // 2, kw // 2))
    gout = torch.randn(out.shape)
    (out * gout).sum().backward()
    put(name, [("type", torch.tensor([typ])), ("x", x), ("w", w), ("b", b), ("mask", m), ("out", out),
               ("gout", gout), ("gx", x.grad), ("gw", w.grad), ("gb", b.grad)])


def row_lstm(x, w_is, b_is, w_ss, b_ss):
    N, C, H, W = x.shape
    G = w_is.shape[0]
    h = G // 4
    k = w_is.shape[3]
    S = F.conv2d(x, w_is * mask(1, k, 1), b_is, padding=(0, k // 2))
    hp = torch.zeros(N, h, W)
    c = torch.zeros(N, h, W)
    hs = []
    for r in range(H):
        a = S[:, :, r, :] + F.conv1d(hp, w_ss, b_ss, padding=w_ss.shape[2] // 2)
        i, f, g, o = a[:, :h], a[:, h:2 * h], a[:, 2 * h:3 * h], a[:, 3 * h:]
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        hp = torch.sigmoid(o) * torch.tanh(c)
        hs.append(hp)
    return torch.stack(hs, 2)


def row_case(name, N, C, h, H, W, k):
    x = torch.randn(N, C, H, W, requires_grad=True)
    w_is = (torch.randn(4 * h, C, 1, k) * 0.4).requires_grad_(True)
    b_is = (torch.randn(4 * h) * 0.3).requires_grad_(True)
    w_ss = (torch.randn(4 * h, h, k) * 0.4).requires_grad_(True)
    b_ss = (torch.randn(4 * h) * 0.3).requires_grad_(True)
    out = row_lstm(x, w_is, b_is, w_ss, b_ss)
    gout = torch.randn(out.shape)
    (out * gout).sum().backward()
    put(name, [("x", x), ("w_is", w_is), ("b_is", b_is), ("w_ss", w_ss), ("b_ss", b_ss), ("out", out),
               ("gout", gout), ("gx", x.grad), ("gw_is", w_is.grad), ("gb_is", b_is.grad),
               ("gw_ss", w_ss.grad), ("gb_ss", b_ss.grad)])


if __name__ == "__main__":
    conv_case("mconv_a7", 2, 1, 4, 8, 9, 7, 7, 0)
    conv_case("mconv_b3", 2, 3, 5, 6, 7, 3, 3, 1)
    conv_case("mconv_b13", 1, 2, 3, 4, 5, 1, 3, 1)
    conv_case("mconv_a35", 2, 2, 2, 5, 6, 3, 5, 0)
    row_case("row_k3", 2, 3, 4, 5, 6, 3)
    row_case("row_k5", 1, 2, 3, 4, 7, 5)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_pixelrnn_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES)})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
