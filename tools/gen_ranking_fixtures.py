#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_ranking.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_ranking_fixtures.py

Writes tests/fixtures/retrieval/ranking.safetensors. The reference is the
ContrastiveLoss of VSE++ (Faghri et al. 2018) written out here: with
S = im @ s.T,
    cost_s[i, j]  = clamp(margin + S[i, j] - S[i, i], min=0)   image i vs sentence j
    cost_im[i, j] = clamp(margin + S[i, j] - S[j, j], min=0)   sentence j vs image i
the diagonal (and the ignored pairs) set to 0, then either summed or the
max taken over the negatives (cost_s.max(1), cost_im.max(0)); the loss is
the sum. Per case C:
    C.im, C.s      F32 [B, D]  inputs (random; not normalised)
    C.margin       F32 [1]
    C.max          I64 [1]     1: hardest negative (VSE++), 0: sum (VSE)
    C.norm         I64 [1]     1: F.normalize both inputs first
    C.ignore       F32 [B, B]  non-zero: not a negative (all zero when unused)
    C.loss         F32 [1]     the summed loss
    C.per          F32 [B]     per pair: cost_s row b + cost_im column b
    C.gout         F32 [B]     random upstream gradient of C.per
    C.gim, C.gs    F32 [B, D]  d sum(per * gout) / d im, s
    C.gim_sum, C.gs_sum        d loss / d im, s
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(7)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "retrieval", "ranking.safetensors")
TENSORS, CASES = [], []


def per_pair(im, s, margin, max_violation, norm, ignore):
    if norm:
        im = F.normalize(im, dim=1)
        s = F.normalize(s, dim=1)
    S = im @ s.t()
    diag = S.diag().view(-1, 1)
    cost_s = (margin + S - diag.expand_as(S)).clamp(min=0)
    cost_im = (margin + S - diag.t().expand_as(S)).clamp(min=0)
    mask = torch.eye(S.size(0), dtype=torch.bool) | (ignore != 0)
    cost_s = cost_s.masked_fill(mask, 0)
    cost_im = cost_im.masked_fill(mask, 0)
    if max_violation:
        return cost_s.max(1)[0] + cost_im.max(0)[0]
    return cost_s.sum(1) + cost_im.sum(0)


def case(name, B, D, margin, max_violation, norm, ignore=None, scale=1.0):
    im = (torch.randn(B, D, dtype=torch.float64) * scale)
    s = (torch.randn(B, D, dtype=torch.float64) * scale)
    if ignore is None:
        ignore = torch.zeros(B, B, dtype=torch.float64)
    # float32 inputs, double reference (the test's tolerance covers float rounding)
    im = im.float().double().requires_grad_(True)
    s = s.float().double().requires_grad_(True)
    per = per_pair(im, s, margin, max_violation, norm, ignore)
    gout = torch.randn(B, dtype=torch.float64)
    gim, gs = torch.autograd.grad((per * gout).sum(), (im, s))
    per = per_pair(im, s, margin, max_violation, norm, ignore)
    gim_sum, gs_sum = torch.autograd.grad(per.sum(), (im, s))
    for k, v in (("im", im.detach()), ("s", s.detach()), ("margin", torch.tensor([margin])),
                 ("max", torch.tensor([int(max_violation)])), ("norm", torch.tensor([int(norm)])),
                 ("ignore", ignore), ("loss", per.detach().sum().view(1)), ("per", per.detach()),
                 ("gout", gout), ("gim", gim), ("gs", gs), ("gim_sum", gim_sum), ("gs_sum", gs_sum)):
        if v.dtype == torch.float64:
            v = v.float()
        TENSORS.append(("%s.%s" % (name, k), v.contiguous()))
    CASES.append(name)


if __name__ == "__main__":
    case("sum_norm", 6, 5, 0.2, False, True)
    case("max_norm", 6, 5, 0.2, True, True)
    case("sum_raw", 5, 4, 0.5, False, False, scale=0.5)
    case("max_raw", 5, 4, 0.5, True, False, scale=0.5)
    ign = torch.zeros(7, 7, dtype=torch.float64)
    ign[1, 4] = ign[4, 1] = 1   # pairs 1 and 4 share a caption
    ign[2, 5] = ign[5, 2] = 1
    case("max_ignore", 7, 6, 0.3, True, True, ignore=ign)
    case("sum_ignore", 7, 6, 0.3, False, True, ignore=ign)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_ranking_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES)})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
