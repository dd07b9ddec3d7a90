#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_dnc.c and
tests/models/test_dnc_model.c: the Differentiable Neural Computer memory
operations and model of include/cortex/dnc.h written in PyTorch 1.13
(the Methods section of Graves et al. 2016, with the conventions of
DeepMind's dnc/addressing.py: usage floor 1e-6 before the allocation's
products, the sort a constant of the backward pass, ties by slot index).

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_dnc_fixtures.py

Writes tests/fixtures/dnc/<case>.safetensors:

ops_<...>   one memory access step through the individual ops (no detach):
    in.<name>     mem, rkeys, rbeta, wkey, wbeta, erase, wvec, free, ga, gw,
                  modes, u_prev, ww_prev, wr_prev, link_prev, p_prev
    out.<name>    cw (write content weighting), psi, usage, alloc, ww, mem2,
                  prec, link, fwd, bwd, cr (read content weightings), wr, reads
    c.<name>      fixed random coefficients of the loss L = sum_k sum(out_k * c_k)
    grad.<name>   dL / d input
alloc_ties  the allocation alone on a usage with ties (in.usage, out.alloc,
            c.alloc, grad.usage): equal usages are ordered by slot index
model_<...> a tiny DNC run over T steps on x [T, B, I] with targets [T, B, Y]:
    the parameters under their state_dict names, in.x, in.target, out.y,
    out.loss (mean BCE with logits), out.usage / out.link / out.wr / out.mem
    (the state after the last step), grad.<parameter name>
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

torch.manual_seed(0)
HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "dnc")
EPS = 1e-6

INS = ["mem", "rkeys", "rbeta", "wkey", "wbeta", "erase", "wvec", "free", "ga", "gw", "modes",
       "u_prev", "ww_prev", "wr_prev", "link_prev", "p_prev"]
OUTS = ["cw", "psi", "usage", "alloc", "ww", "mem2", "prec", "link", "fwd", "bwd", "cr", "wr", "reads"]


def col(t):
    return t.reshape(-1, 1)


def content(mem, keys, beta):
    """mem [B, N, W], keys [B, H, W], beta [B, H] -> [B, H, N]"""
    sim = F.cosine_similarity(keys.unsqueeze(2), mem.unsqueeze(1), dim=-1, eps=1e-8)
    return torch.softmax(beta.unsqueeze(-1) * sim, dim=-1)


def retention(free, wr_prev):
    keep = 1 - free.unsqueeze(-1) * wr_prev
    psi = keep[:, 0]
    for r in range(1, keep.shape[1]):
        psi = psi * keep[:, r]
    return psi


def usage_update(u_prev, ww_prev, psi):
    return (u_prev + ww_prev - u_prev * ww_prev) * psi


def allocation(u):
    s = EPS + (1 - EPS) * u
    _, idx = torch.sort(u.detach(), dim=-1, stable=True)  # the order: a constant
    ss = torch.gather(s, -1, idx)
    prod = torch.cumprod(torch.cat([torch.ones_like(ss[:, :1]), ss[:, :-1]], dim=1), dim=1)
    a_sorted = (1 - ss) * prod
    return torch.zeros_like(u).scatter(-1, idx, a_sorted)


def write_weighting(cw, alloc, ga, gw):
    return col(gw) * (cw + col(ga) * (alloc - cw))


def write(mem, w, erase, add):
    return mem * (1 - torch.einsum("bn,bw->bnw", w, erase)) + torch.einsum("bn,bw->bnw", w, add)


def precedence(p_prev, ww):
    return (1 - ww.sum(-1, keepdim=True)) * p_prev + ww


def link_update(link_prev, p_prev, ww):
    wi = ww.unsqueeze(2)
    wj = ww.unsqueeze(1)
    link = (1 - wi - wj) * link_prev + wi * p_prev.unsqueeze(1)
    N = ww.shape[1]
    return link * (1 - torch.eye(N)).unsqueeze(0)


def directional(link, wr_prev, forward):
    return torch.matmul(wr_prev, link.transpose(1, 2) if forward else link)


def read_weighting(bwd, cr, fwd, modes):
    return modes[..., 0:1] * bwd + modes[..., 1:2] * cr + modes[..., 2:3] * fwd


def min_gap(u):
    """smallest gap between distinct sorted usages of any item (inf if none)"""
    s, _ = torch.sort(u.detach(), dim=-1)
    d = s[:, 1:] - s[:, :-1]
    d = d[d > 0]
    return float(d.min()) if d.numel() else float("inf")


def ops_chain(x):
    B, N, W = x["mem"].shape
    o = {}
    o["cw"] = content(x["mem"], x["wkey"].unsqueeze(1), col(x["wbeta"])).reshape(B, N)
    o["psi"] = retention(x["free"], x["wr_prev"])
    o["usage"] = usage_update(x["u_prev"], x["ww_prev"], o["psi"])
    o["alloc"] = allocation(o["usage"])
    o["ww"] = write_weighting(o["cw"], o["alloc"], x["ga"], x["gw"])
    o["mem2"] = write(x["mem"], o["ww"], x["erase"], x["wvec"])
    o["prec"] = precedence(x["p_prev"], o["ww"])
    o["link"] = link_update(x["link_prev"], x["p_prev"], o["ww"])
    o["fwd"] = directional(o["link"], x["wr_prev"], True)
    o["bwd"] = directional(o["link"], x["wr_prev"], False)
    o["cr"] = content(o["mem2"], x["rkeys"], x["rbeta"])
    o["wr"] = read_weighting(o["bwd"], o["cr"], o["fwd"], x["modes"])
    o["reads"] = torch.bmm(o["wr"], o["mem2"])
    return o


def ops_case(name, B, N, W, R, scalar_col):
    for _attempt in range(100):
        link = torch.rand(B, N, N) * 0.3
        link = link * (1 - torch.eye(N)).unsqueeze(0)
        x = {
            "mem": torch.randn(B, N, W),
            "rkeys": torch.randn(B, R, W),
            "rbeta": 1 + F.softplus(torch.randn(B, R)) * 2,
            "wkey": torch.randn(B, W),
            "wbeta": 1 + F.softplus(torch.randn(B)) * 2,
            "erase": torch.sigmoid(torch.randn(B, W)),
            "wvec": torch.randn(B, W),
            "free": torch.sigmoid(torch.randn(B, R)),
            "ga": torch.sigmoid(torch.randn(B)),
            "gw": torch.sigmoid(torch.randn(B)),
            "modes": torch.softmax(torch.randn(B, R, 3), -1),
            "u_prev": torch.rand(B, N),
            "ww_prev": torch.softmax(torch.randn(B, N), -1) * 0.9,
            "wr_prev": torch.softmax(torch.randn(B, R, N), -1),
            "link_prev": link,
            "p_prev": torch.softmax(torch.randn(B, N), -1) * 0.8,
        }
        if scalar_col:
            for k in ("wbeta", "ga", "gw"):
                x[k] = col(x[k])
        with torch.no_grad():
            u = usage_update(x["u_prev"], x["ww_prev"], retention(x["free"], x["wr_prev"]))
        if min_gap(u) > 1e-3 and bool((u[:, 1:] != u[:, :-1]).all()):
            break  # no ties, no near-ties: the order is the same in float
    else:
        raise RuntimeError("could not draw a usage without near-ties")
    for t in x.values():
        t.requires_grad_(True)
    o = ops_chain(x)
    c = {k: torch.randn(v.shape) for k, v in o.items()}
    loss = sum((o[k] * c[k]).sum() for k in OUTS)
    loss.backward()
    tensors = [("in." + k, x[k].detach()) for k in INS]
    tensors += [("out." + k, o[k].detach()) for k in OUTS]
    tensors += [("c." + k, c[k]) for k in OUTS]
    tensors += [("grad." + k, x[k].grad) for k in INS]
    save(name, tensors, {"B": B, "N": N, "W": W, "R": R})


def alloc_ties():
    u = torch.tensor([[0.5, 0.0, 0.5, 0.25, 0.0, 1.0], [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]], requires_grad=True)
    a = allocation(u)
    c = torch.randn(a.shape)
    (a * c).sum().backward()
    save("alloc_ties", [("in.usage", u.detach()), ("out.alloc", a.detach()), ("c.alloc", c),
                        ("grad.usage", u.grad)], {"B": 2, "N": 6})


# ---------------------------------------------------------------- the model
def iface_size(R, W):
    return R * W + 3 * W + 5 * R + 3


def oneplus(t):
    return 1 + F.softplus(t)


def split(xi, R, W):
    B = xi.shape[0]
    at = [0]

    def take(n):
        at[0] += n
        return xi[:, at[0] - n:at[0]]

    it = {}
    it["rkeys"] = take(R * W).reshape(B, R, W)
    it["rbeta"] = oneplus(take(R))
    it["wkey"] = take(W)
    it["wbeta"] = oneplus(take(1))
    it["erase"] = torch.sigmoid(take(W))
    it["wvec"] = take(W)
    it["free"] = torch.sigmoid(take(R))
    it["ga"] = torch.sigmoid(take(1))
    it["gw"] = torch.sigmoid(take(1))
    it["modes"] = torch.softmax(take(3 * R).reshape(B, R, 3), -1)
    return it


def access(st, it, gaps):
    B, N, W = st["mem"].shape
    cw = content(st["mem"], it["wkey"].unsqueeze(1), it["wbeta"]).reshape(B, N)
    psi = retention(it["free"], st["wr"])
    usage = usage_update(st["usage"], st["ww"].detach(), psi)
    gaps.append(min_gap(usage))
    alloc = allocation(usage)
    ww = write_weighting(cw, alloc, it["ga"], it["gw"])
    mem = write(st["mem"], ww, it["erase"], it["wvec"])
    link = link_update(st["link"], st["prec"], ww)
    prec = precedence(st["prec"], ww)
    cr = content(mem, it["rkeys"], it["rbeta"])
    wr = read_weighting(directional(link, st["wr"], False), cr, directional(link, st["wr"], True), it["modes"])
    return {"mem": mem, "usage": usage, "link": link, "prec": prec, "ww": ww, "wr": wr,
            "reads": torch.bmm(wr, mem)}


class DNC(nn.Module):
    def __init__(self, I, Y, H, N, W, R):
        super().__init__()
        self.N, self.W, self.R, self.H = N, W, R, H
        self.controller = nn.LSTMCell(I + R * W, H)
        self.interface = nn.Linear(H, iface_size(R, W))
        self.output = nn.Linear(H, Y)
        self.read_output = nn.Linear(R * W, Y, bias=False)

    def forward(self, x, gaps):
        T, B, _ = x.shape
        N, W, R, H = self.N, self.W, self.R, self.H
        st = {"mem": torch.zeros(B, N, W), "usage": torch.zeros(B, N), "link": torch.zeros(B, N, N),
              "prec": torch.zeros(B, N), "ww": torch.zeros(B, N), "wr": torch.zeros(B, R, N),
              "reads": torch.zeros(B, R, W)}
        h = torch.zeros(B, H)
        c = torch.zeros(B, H)
        ys = []
        for t in range(T):
            inp = torch.cat([x[t], st["reads"].reshape(B, R * W)], dim=1)
            h, c = self.controller(inp, (h, c))
            st = access(st, split(self.interface(h), R, W), gaps)
            ys.append(self.output(h) + self.read_output(st["reads"].reshape(B, R * W)))
        return torch.stack(ys), st


def model_case(name, T, B, I, Y, H, N, W, R, scale):
    model = DNC(I, Y, H, N, W, R)
    with torch.no_grad():  # larger weights than the default: gates away from 0.5
        for p in model.parameters():
            p.mul_(scale)
    x = torch.randn(T, B, I)
    target = (torch.rand(T, B, Y) > 0.5).float()
    gaps = []
    y, st = model(x, gaps)
    loss = F.binary_cross_entropy_with_logits(y, target)
    loss.backward()
    tensors = [(k, v.detach()) for k, v in model.state_dict().items()]
    tensors += [("in.x", x), ("in.target", target), ("out.y", y.detach()), ("out.loss", loss.detach().reshape(1))]
    tensors += [("out." + k, st[k].detach()) for k in ("usage", "link", "wr", "mem")]
    tensors += [("grad." + k, p.grad) for k, p in model.named_parameters()]
    save(name, tensors, {"T": T, "B": B, "I": I, "Y": Y, "H": H, "N": N, "W": W, "R": R,
                         "min_usage_gap": "%.3g" % min(gaps)})


def save(name, tensors, meta):
    os.makedirs(OUTDIR, exist_ok=True)
    meta = {k: str(v) for k, v in meta.items()}
    meta["torch"] = torch.__version__
    safetensors_py.write(os.path.join(OUTDIR, name + ".safetensors"), tensors, meta)
    print(name, meta)


ops_case("ops_b1_r1", 1, 4, 3, 1, False)
ops_case("ops_b3_r2", 3, 6, 4, 2, True)
ops_case("ops_b2_r3", 2, 5, 2, 3, False)
alloc_ties()
model_case("model_small", 4, 2, 3, 2, 5, 4, 3, 2, 1.0)
model_case("model_b3", 5, 3, 4, 3, 6, 5, 4, 1, 1.5)
