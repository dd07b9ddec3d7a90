#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_roi.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_roi_fixtures.py

torchvision is not installed with Debian's torch, so torchvision.ops.roi_pool
and roi_align are written here in plain torch, step by step as torchvision's
CPU kernels (torchvision/csrc/ops/cpu/roi_pool_kernel.cpp and
roi_align_kernel.cpp) compute them: coordinates in float32 (numpy.float32
scalars), roi_pool's std::round (half away from zero) and its floor/ceil bin
edges, roi_align's -0.5 offset when aligned, the minimum size of 1 when not,
the adaptive sample grid ceil(roi / bins) for sampling_ratio <= 0, the
clamping of samples near the border and the zero of samples more than one
cell outside. The outputs are built from the input with differentiable torch
ops (max over a bin, weighted sums of gathered cells), so torch's autograd
gives the reference gradients.

Writes tests/fixtures/detect/roi.safetensors. Per case C:
    C.x      F32 [N, C, H, W] input
    C.rois   F32 [K, 5] (batch_index, x1, y1, x2, y2)
    C.param  F32 [5]: spatial_scale, ph, pw, sampling_ratio, aligned (roi_pool: 0, 0)
    C.kind   I64 [1]: 0 roi_pool, 1 roi_align
    C.out    F32 [K, C, ph, pw]
    C.gout   random upstream gradient of out's shape
    C.gx     d sum(out * gout) / d x
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(7)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "detect", "roi.safetensors")
TENSORS, CASES = [], []
f32 = np.float32


def cpp_round(v):
    """std::round: half away from zero."""
    return int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))


def roi_pool_ref(x, rois, scale, ph, pw):
    N, C, H, W = x.shape
    outs = []
    for r in rois.tolist():
        n = int(r[0])
        x1, y1 = cpp_round(f32(r[1]) * f32(scale)), cpp_round(f32(r[2]) * f32(scale))
        x2, y2 = cpp_round(f32(r[3]) * f32(scale)), cpp_round(f32(r[4]) * f32(scale))
        rw, rh = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bh, bw = f32(rh) / f32(ph), f32(rw) / f32(pw)
        rows = []
        for i in range(ph):
            hs = min(max(int(np.floor(f32(i) * bh)) + y1, 0), H)
            he = min(max(int(np.ceil(f32(i + 1) * bh)) + y1, 0), H)
            cols = []
            for j in range(pw):
                ws = min(max(int(np.floor(f32(j) * bw)) + x1, 0), W)
                we = min(max(int(np.ceil(f32(j + 1) * bw)) + x1, 0), W)
                if he <= hs or we <= ws:
                    cols.append(torch.zeros(C))
                else:
                    cols.append(x[n, :, hs:he, ws:we].reshape(C, -1).max(dim=1).values)
            rows.append(torch.stack(cols, dim=1))  # [C, pw]
        outs.append(torch.stack(rows, dim=1))  # [C, ph, pw]
    return torch.stack(outs)


def bilinear(H, W, y, x):
    """(cells, weights) of one sample, as torchvision's bilinear_interpolate."""
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return None
    y = max(y, f32(0))
    x = max(x, f32(0))
    yl, xl = int(y), int(x)
    if yl >= H - 1:
        yh = yl = H - 1
        y = f32(yl)
    else:
        yh = yl + 1
    if xl >= W - 1:
        xh = xl = W - 1
        x = f32(xl)
    else:
        xh = xl + 1
    ly, lx = f32(y - f32(yl)), f32(x - f32(xl))
    hy, hx = f32(1) - ly, f32(1) - lx
    return [(yl, xl, hy * hx), (yl, xh, hy * lx), (yh, xl, ly * hx), (yh, xh, ly * lx)]


def roi_align_ref(x, rois, scale, ph, pw, sr, aligned):
    N, C, H, W = x.shape
    off = f32(0.5) if aligned else f32(0)
    outs = []
    for r in rois.tolist():
        n = int(r[0])
        x0, y0 = f32(r[1]) * f32(scale) - off, f32(r[2]) * f32(scale) - off
        x1, y1 = f32(r[3]) * f32(scale) - off, f32(r[4]) * f32(scale) - off
        rw, rh = f32(x1 - x0), f32(y1 - y0)
        if not aligned:
            rw, rh = max(rw, f32(1)), max(rh, f32(1))
        bh, bw = f32(rh / f32(ph)), f32(rw / f32(pw))
        gh = sr if sr > 0 else int(np.ceil(f32(rh / f32(ph))))
        gw = sr if sr > 0 else int(np.ceil(f32(rw / f32(pw))))
        count = max(gh * gw, 1)
        plane = torch.zeros(C, ph, pw)
        vals = []
        for i in range(ph):
            for j in range(pw):
                acc = torch.zeros(C)
                for iy in range(gh):
                    y = f32(y0 + f32(i) * bh + f32(f32(iy) + f32(0.5)) * bh / f32(gh))
                    for ix in range(gw):
                        xx = f32(x0 + f32(j) * bw + f32(f32(ix) + f32(0.5)) * bw / f32(gw))
                        pts = bilinear(H, W, y, xx)
                        if pts is None:
                            continue
                        for (a, b, w) in pts:
                            acc = acc + float(w) * x[n, :, a, b]
                vals.append(acc / count)
        plane = torch.stack(vals, dim=1).reshape(C, ph, pw)
        outs.append(plane)
    return torch.stack(outs)


def case(name, kind, x, rois, scale, ph, pw, sr=0, aligned=False):
    x = x.clone().requires_grad_(True)
    if kind == 0:
        out = roi_pool_ref(x, rois, scale, ph, pw)
    else:
        out = roi_align_ref(x, rois, scale, ph, pw, sr, aligned)
    gout = torch.randn(out.shape)
    (out * gout).sum().backward()
    param = torch.tensor([scale, ph, pw, sr, 1.0 if aligned else 0.0], dtype=torch.float32)
    for k, v in (("x", x.detach()), ("rois", rois), ("param", param), ("kind", torch.tensor([kind])),
                 ("out", out.detach()), ("gout", gout), ("gx", x.grad)):
        TENSORS.append(("%s.%s" % (name, k), v.contiguous()))
    CASES.append(name)


if __name__ == "__main__":
    x = torch.randn(2, 3, 10, 12)
    # image coordinates for scale 0.5 (a 20 x 24 image): inside, on image 1,
    # partly outside, degenerate (x2 < x1), covering everything, tiny, a .5
    # rounding case (5 * 0.5 = 2.5 rounds to 3, not to even 2)
    rois = torch.tensor([
        [0, 2.0, 3.0, 15.0, 12.0],
        [1, 0.0, 0.0, 23.0, 19.0],
        [1, 14.3, 9.1, 30.0, 25.0],
        [0, 10.0, 8.0, 6.0, 7.0],
        [0, -6.0, -4.0, 30.0, 26.0],
        [1, 7.2, 7.9, 8.1, 8.4],
        [0, 5.0, 5.0, 17.0, 11.0],
        [1, -9.0, -9.0, -3.0, -2.5],
    ], dtype=torch.float32)
    def scaled(f):
        r = rois.clone()
        r[:, 1:] *= f
        return r

    case("pool_s05_3x2", 0, x, rois, 0.5, 3, 2)
    case("pool_s1_2x4", 0, x, scaled(0.5), 1.0, 2, 4)
    case("align_s05_3x3_sr2", 1, x, rois, 0.5, 3, 3, 2, False)
    case("align_s05_2x3_adaptive_aligned", 1, x, rois, 0.5, 2, 3, -1, True)
    case("align_s025_2x2_adaptive", 1, x, scaled(2.0), 0.25, 2, 2, 0, False)
    case("align_s05_4x3_sr1_aligned", 1, x, rois, 0.5, 4, 3, 1, True)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_roi_fixtures.py", "torch": torch.__version__,
                                        "reference": "plain-torch port of torchvision's CPU kernels",
                                        "cases": ",".join(CASES)})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
