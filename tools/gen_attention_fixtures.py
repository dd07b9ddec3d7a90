#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_attention.c: the
multi-head attention module against torch.nn.MultiheadAttention (1.13).

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_attention_fixtures.py

Writes one file per case, tests/fixtures/attention/<case>.safetensors, holding

    in_proj_weight, in_proj_bias,    the module's state_dict under PyTorch's names
    q_proj_weight, ..., out_proj.*   (the C side loads them with cx_module_load_state,
                                     so names, shapes and layouts are checked)
    data.query, data.key, data.value inputs (key / value only when they are other tensors)
    data.kpm, data.attn_mask         masks: bool stored as I64 (1 = masked), float as F32
    data.out, data.weights           the module's outputs (weights when need_weights)
    data.gout, data.gw               fixed random upstream gradients of out and weights
    grad.query, grad.key, grad.value, grad.<parameter name>
                                     gradients of sum(out * gout) (+ sum(weights * gw)
                                     when the case says weights_grad)

and in its metadata the configuration: embed_dim, num_heads, kdim, vdim,
batch_first, bias, causal (the C module is built with causal = true, PyTorch is
given attn_mask = torch.triu(ones(L, S), 1).bool()), inputs ("self": query is
key is value; "kv": key is value; "sep": three tensors), need_weights, average,
weights_grad, unbatched. Biases are drawn at random (PyTorch initialises them
to zero) so that they are tested too. Dropout is 0.

Fully masked rows: PyTorch 1.13 gives NaN there; Cortex defines zero weights
(the output row is then out_proj.bias). The reference of every case is computed
by mha_ref(), a functional multi-head attention with Cortex's definition, which
is first checked against torch.nn.MultiheadAttention on every case without a
fully masked row (same outputs and gradients within 1e-5).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "attention")
CASES = []


def mha_ref(m, query, key, value, kpm, am, need_weights, average):
    """torch.nn.MultiheadAttention's forward with Cortex's definition of a
    fully masked row (zero weights, zero attention output, no NaN)."""
    E, H = m.embed_dim, m.num_heads
    hd = E // H
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        kpm = kpm.unsqueeze(0) if kpm is not None else None
    elif m.batch_first:
        query, key, value = (x.transpose(0, 1) for x in (query, key, value))
    Tq, B, _ = query.shape
    Tk = key.shape[0]
    b = m.in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else b.chunk(3)
    if m._qkv_same_embed_dim:
        wq, wk, wv = m.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
    q, k, v = F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)
    q = q.reshape(Tq, B * H, hd).transpose(0, 1)
    k = k.reshape(Tk, B * H, hd).transpose(0, 1)
    v = v.reshape(Tk, B * H, hd).transpose(0, 1)
    s = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(hd)          # [B*H, Tq, Tk]
    masked = torch.zeros(s.shape, dtype=torch.bool)
    if am is not None:
        a = am if am.dim() == 3 else am.unsqueeze(0)
        if a.is_floating_point():
            s = s + a
        else:
            masked = masked | a.bool()
    if kpm is not None:
        kk = kpm.reshape(B, 1, 1, Tk).expand(B, H, 1, Tk).reshape(B * H, 1, Tk)
        if kk.is_floating_point():
            s = s + kk
        else:
            masked = masked | kk.bool()
    s = s.masked_fill(masked, float("-inf"))
    full = (s == float("-inf")).all(-1, keepdim=True)
    p = torch.softmax(s.masked_fill(full, 0.0), -1).masked_fill(full, 0.0)
    o = torch.bmm(p, v).transpose(0, 1).reshape(Tq, B, E)
    o = F.linear(o, m.out_proj.weight, m.out_proj.bias)
    if unbatched:
        o = o.squeeze(1)
    elif m.batch_first:
        o = o.transpose(0, 1)
    w = None
    if need_weights:
        w = p.reshape(B, H, Tq, Tk)
        if average:
            w = w.sum(1) / H
        if unbatched:
            w = w.squeeze(0)
    return o, w


def case(name, E=12, H=3, B=2, Tq=5, Tk=None, kdim=None, vdim=None, batch_first=False, bias=True,
         inputs="self", kpm=None, am=None, causal=False, need_weights=True, average=True, weights_grad=False,
         unbatched=False):
    """kpm: None, "bool" (lengths), "float", "bool_full" (one sequence fully masked);
    am: None, "bool2d", "float2d", "bool3d", "float3d"."""
    assert name not in CASES
    CASES.append(name)
    Tk = Tq if inputs == "self" else (Tk or Tq)
    m = torch.nn.MultiheadAttention(E, H, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first)
    with torch.no_grad():
        if bias:
            m.in_proj_bias.normal_(0.0, 0.2)
            m.out_proj.bias.normal_(0.0, 0.2)
    kd, vd = kdim or E, vdim or E

    def seq(T, D):
        if unbatched:
            return torch.randn(T, D)
        return torch.randn(B, T, D) if batch_first else torch.randn(T, B, D)

    query = seq(Tq, E).requires_grad_()
    if inputs == "self":
        key = value = query
    elif inputs == "kv":
        key = value = seq(Tk, kd).requires_grad_()
    else:
        key, value = seq(Tk, kd).requires_grad_(), seq(Tk, vd).requires_grad_()
    nb = 1 if unbatched else B
    kpm_t = None
    if kpm in ("bool", "bool_full"):
        lens = [Tk - (i * 2) % Tk for i in range(nb)]
        if kpm == "bool_full":
            lens[-1] = 0
        kpm_t = torch.arange(Tk)[None, :] >= torch.tensor(lens)[:, None]
    elif kpm == "float":
        kpm_t = torch.randn(nb, Tk) * 0.5
        kpm_t[0, -1] = float("-inf")
    if unbatched and kpm_t is not None:
        kpm_t = kpm_t[0]
    am_t = None
    if am is not None:
        shape = (Tq, Tk) if am.endswith("2d") else (nb * H, Tq, Tk)
        if am.startswith("bool"):
            am_t = torch.rand(*shape) < 0.3
            am_t[..., 0] = False  # no fully masked row
        else:
            am_t = torch.randn(*shape) * 0.5
            am_t[..., 1] = float("-inf")
    am_torch = am_t
    if causal:
        assert am_t is None
        am_torch = torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), 1)
    o, w = mha_ref(m, query, key, value, kpm_t, am_torch, need_weights, average)
    full_row = w is not None and bool((w.reshape(-1, Tk).sum(-1) == 0).any()) or kpm == "bool_full"
    gout = torch.randn(o.shape)
    gw = torch.randn(w.shape) if (weights_grad and w is not None) else None
    loss = (o * gout).sum() + ((w * gw).sum() if gw is not None else 0)
    leaves = [query] + ([key] if inputs != "self" else []) + ([value] if inputs == "sep" else [])
    params = list(m.named_parameters())
    grads = torch.autograd.grad(loss, leaves + [p for _, p in params])
    if not full_row:  # the reference equals PyTorch's module wherever PyTorch is defined
        o2, w2 = m(query, key, value, key_padding_mask=kpm_t, need_weights=need_weights, attn_mask=am_torch,
                   average_attn_weights=average)
        assert torch.allclose(o, o2, atol=1e-5, rtol=1e-5), name
        if need_weights:
            assert torch.allclose(w, w2, atol=1e-6), name
        loss2 = (o2 * gout).sum() + ((w2 * gw).sum() if gw is not None else 0)
        grads2 = torch.autograd.grad(loss2, leaves + [p for _, p in params])
        for g1, g2 in zip(grads, grads2):
            assert torch.allclose(g1, g2, atol=1e-5, rtol=1e-4), name
    tensors = [(n, p.detach()) for n, p in m.state_dict().items()]
    tensors.append(("data.query", query))
    if inputs != "self":
        tensors.append(("data.key", key))
    if inputs == "sep":
        tensors.append(("data.value", value))
    if kpm_t is not None:
        tensors.append(("data.kpm", kpm_t.long() if kpm_t.dtype == torch.bool else kpm_t))
    if am_t is not None:
        tensors.append(("data.attn_mask", am_t.long() if am_t.dtype == torch.bool else am_t))
    tensors.append(("data.out", o))
    tensors.append(("data.gout", gout))
    if w is not None:
        tensors.append(("data.weights", w))
    if gw is not None:
        tensors.append(("data.gw", gw))
    names = ["query", "key", "value"][:len(leaves)] + [n for n, _ in params]
    for n, g in zip(names, grads):
        tensors.append(("grad." + n, g))
    meta = {"generator": "tools/gen_attention_fixtures.py", "torch": torch.__version__,
            "embed_dim": str(E), "num_heads": str(H), "kdim": str(kd), "vdim": str(vd),
            "batch_first": str(int(batch_first)), "bias": str(int(bias)), "causal": str(int(causal)),
            "inputs": inputs, "need_weights": str(int(need_weights)), "average": str(int(average)),
            "weights_grad": str(int(gw is not None)), "unbatched": str(int(unbatched))}
    safetensors_py.write(os.path.join(OUTDIR, name + ".safetensors"),
                         [(n, t.detach()) for n, t in tensors], meta)


def gen():
    case("self_seq")                                                   # [T, B, E], averaged weights
    case("self_bf_per_head", H=4, batch_first=True, average=False)     # [B, T, E], per-head weights
    case("cross_kv", Tq=4, Tk=6, inputs="kv")                          # key is value, Tq != Tk
    case("cross_sep_bf", Tq=3, Tk=7, inputs="sep", batch_first=True)   # three tensors
    case("kdim_vdim_bf", Tq=3, Tk=6, kdim=5, vdim=7, inputs="sep", batch_first=True)
    case("kdim_vdim_kpm", Tq=4, Tk=5, kdim=5, vdim=7, inputs="sep", kpm="bool", B=3)
    case("kdim_eq_vdim", Tq=4, Tk=5, kdim=6, vdim=6, inputs="kv")      # separate weights, key is value
    case("kpm_bool", B=3, Tq=6, kpm="bool")
    case("kpm_float", kpm="float", batch_first=True)
    case("mask_bool_2d", Tq=4, Tk=6, inputs="kv", am="bool2d")
    case("mask_float_2d", am="float2d", batch_first=True)
    case("mask_bool_3d", Tq=4, Tk=5, inputs="sep", am="bool3d")
    case("mask_float_3d", am="float3d", kpm="bool", B=3)
    case("mask_bool_kpm", Tq=5, am="bool2d", kpm="bool", batch_first=True)
    case("causal", causal=True, batch_first=True, Tq=6)
    case("causal_kpm", causal=True, kpm="bool", B=3, Tq=6)
    case("weights_grad", weights_grad=True, kpm="bool")
    case("weights_grad_per_head", weights_grad=True, average=False, Tq=4, Tk=6, inputs="kv", batch_first=True)
    case("no_bias", bias=False, inputs="sep", Tq=4, Tk=3)
    case("unbatched", unbatched=True, Tq=5)
    case("unbatched_kv_kpm", unbatched=True, Tq=3, Tk=5, inputs="kv", kpm="bool")
    case("one_head", H=1, E=7, Tq=4)
    case("no_weights", need_weights=False, inputs="kv", Tk=7)
    case("big_threaded", E=32, H=4, B=3, Tq=20, kpm="bool", batch_first=True, weights_grad=True)
    case("full_row_kpm", kpm="bool_full", B=3, weights_grad=True)      # PyTorch: NaN; Cortex: defined
    case("full_row_causal", causal=True, kpm="bool_full", Tq=4, batch_first=True)


if __name__ == "__main__":
    gen()
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUTDIR)))
