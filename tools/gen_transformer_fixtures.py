#!/usr/bin/python3
"""Fixtures of tests/models/test_transformer.c: the Transformer language model of
include/cortex/transformer.h built in PyTorch (class TransformerLM below, the
reference: same state_dict names, same init), so the test checks that weights
move both ways through safetensors and that Cortex reproduces PyTorch's logits,
loss and parameter gradients.

Run with Debian's PyTorch 1.13 (from the repository root):

    /usr/bin/python3 tools/gen_transformer_fixtures.py

PyTorch -> Cortex: tests/fixtures/transformer/<case>.safetensors, one per case,
each a complete Cortex char-LM model file (metadata cortex.arch = charlm,
cortex.charlm.arch = transformer, the sizes, a vocabulary) holding
    the model's state_dict (a tied model: tok_emb.weight AND head.weight, as
    PyTorch writes it; Cortex loads either)
    x, y            I64 [T, B]  input ids and targets (time-major)
    out.logits      F32 [T, B, V]
    out.loss        F32 [1]     mean cross-entropy of the logits against y
    grad.<name>     F32         d loss / d parameter for every named parameter
                                (tied: tok_emb.weight holds the sum of both uses)
Every parameter is redrawn at random (biases, LayerNorm weights and positions
too, so that each is tested; the init's small weights would make nearly
uniform logits). Dropout 0 (Cortex's dropout masks come from its own stream).

Cortex -> PyTorch: tests/fixtures/transformer/cortex_tlm.safetensors is a model
written by `cortex charlm train --arch transformer` (committed; regenerate with
the command in CORTEX_CMD below, then rerun this script). This script loads it
into the reference module (load_state_dict, strict: only head.weight may be
missing, for a tied model whose head IS tok_emb) and writes
tests/fixtures/transformer/cortex_check.safetensors: x I64 [T, B] (the first
characters of data/text/kjv_genesis_ruth_jonah.txt in the model's vocabulary,
B streams), logits F32 [T, B, V] and loss F32 [1] computed by PyTorch.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "transformer")
CORTEX_MODEL = os.path.join(OUTDIR, "cortex_tlm.safetensors")
CORTEX_CMD = ("build/cortex charlm train --arch transformer --text data/text/kjv_genesis_ruth_jonah.txt "
              "--limit 30000 --layers 2 --heads 2 --embed 16 --context 16 --seq 16 --batch 8 --tie "
              "--steps 300 --lr 3e-3 --seed 5 --quiet --out tests/fixtures/transformer/cortex_tlm.safetensors")
TEXT = os.path.join(HERE, "..", "data", "text", "kjv_genesis_ruth_jonah.txt")


class Block(torch.nn.Module):
    """Pre-norm block: x + Drop(MHA_causal(LN1(x))), then x + Drop(fc2(GELU(fc1(LN2(x)))))."""

    def __init__(self, E, H, Fh, p, pa):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(E)
        self.attn = torch.nn.MultiheadAttention(E, H, dropout=pa)  # sequence-first [T, B, E]
        self.ln2 = torch.nn.LayerNorm(E)
        self.fc1 = torch.nn.Linear(E, Fh)
        self.fc2 = torch.nn.Linear(Fh, E)
        self.drop = torch.nn.Dropout(p)

    def forward(self, x):
        T = x.shape[0]
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)  # True = not allowed
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + self.drop(a)
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.ln2(x)))))


class TransformerLM(torch.nn.Module):
    """The reference of cortex/transformer.h. ids [T, B] -> logits [T, B, V]."""

    def __init__(self, V, context, E, L, H, Fh=0, p=0.0, pa=0.0, tie=False):
        super().__init__()
        Fh = Fh or 4 * E
        self.tok_emb = torch.nn.Embedding(V, E)
        self.pos_emb = torch.nn.Embedding(context, E)
        self.drop = torch.nn.Dropout(p)
        self.blocks = torch.nn.ModuleList([Block(E, H, Fh, p, pa) for _ in range(L)])
        self.ln_f = torch.nn.LayerNorm(E)
        self.head = torch.nn.Linear(E, V)
        self.apply(self._init_weights)
        for b in self.blocks:  # GPT-2: the projections that end a residual branch
            torch.nn.init.normal_(b.attn.out_proj.weight, 0.0, 0.02 / math.sqrt(2 * L))
            torch.nn.init.normal_(b.fc2.weight, 0.0, 0.02 / math.sqrt(2 * L))
        if tie:
            self.head.weight = self.tok_emb.weight

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                torch.nn.init.zeros_(m.bias)
        elif isinstance(m, torch.nn.MultiheadAttention):
            torch.nn.init.normal_(m.in_proj_weight, 0.0, 0.02)
            torch.nn.init.zeros_(m.in_proj_bias)
        elif isinstance(m, torch.nn.LayerNorm):
            torch.nn.init.ones_(m.weight)
            torch.nn.init.zeros_(m.bias)

    def forward(self, x):
        T = x.shape[0]
        h = self.drop(self.tok_emb(x) + self.pos_emb(torch.arange(T))[:, None, :])
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln_f(h))


# (name, V, context, E, layers, heads, ffn, T, B, tie)
CASES = [
    ("l1h1", 7, 6, 8, 1, 1, 0, 6, 2, False),
    ("l2h4_tied", 11, 9, 12, 2, 4, 0, 5, 3, True),
    ("t1", 5, 4, 6, 2, 2, 0, 1, 2, False),
    ("odd_tied", 13, 7, 15, 2, 3, 7, 7, 1, True),
    ("l2h2_full", 9, 10, 16, 2, 2, 20, 10, 2, False),
    ("l1h4", 6, 5, 8, 1, 4, 0, 4, 4, True),
]
# code points of ids 1 .. V-1 (id 0 = <unk>): printable ASCII from '\n', ' ', 'a'
CODEPOINTS = [10, 32] + list(range(97, 97 + 24))


def meta(V, context, E, L, H, Fh, tie):
    return {"format": "pt", "generator": "tools/gen_transformer_fixtures.py", "torch": torch.__version__,
            "cortex.arch": "charlm", "cortex.charlm.arch": "transformer", "cortex.charlm.vocab": str(V),
            "cortex.charlm.embed": str(E), "cortex.charlm.layers": str(L), "cortex.charlm.heads": str(H),
            "cortex.charlm.context": str(context), "cortex.charlm.ffn": str(Fh or 4 * E),
            "cortex.charlm.dropout": "0", "cortex.charlm.attn_dropout": "0",
            "cortex.charlm.tie": "1" if tie else "0",
            "cortex.vocab": ",".join(str(c) for c in CODEPOINTS[:V - 1])}


def gen_case(name, V, context, E, L, H, Fh, T, B, tie):
    m = TransformerLM(V, context, E, L, H, Fh, 0.0, 0.0, tie)
    with torch.no_grad():
        for pn, p in m.named_parameters():
            if pn.endswith("ln1.weight") or pn.endswith("ln2.weight") or pn == "ln_f.weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.5 * torch.randn_like(p))
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    logits = m(x)
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    sd = m.state_dict()
    if tie:
        assert "head.weight" in sd and sd["head.weight"].data_ptr() == sd["tok_emb.weight"].data_ptr()
    ts = list(sd.items())
    ts += [("x", x), ("y", y), ("out.logits", logits.detach()), ("out.loss", loss.detach().reshape(1))]
    ts += [("grad." + k, p.grad) for k, p in m.named_parameters()]
    path = os.path.join(OUTDIR, name + ".safetensors")
    safetensors_py.write(path, ts, meta(V, context, E, L, H, Fh, tie))
    return path


def check_causal():
    """The reference itself: changing token t leaves the logits before t alone."""
    m = TransformerLM(9, 8, 16, 2, 4).eval()
    x = torch.randint(0, 9, (8, 2))
    a = m(x)
    x2 = x.clone()
    x2[5, 0] = (x2[5, 0] + 1) % 9
    b = m(x2)
    assert torch.equal(a[:5], b[:5]) and not torch.equal(a[5:, 0], b[5:, 0])


def cortex_to_torch():
    """A model written by Cortex, run by PyTorch."""
    if not os.path.exists(CORTEX_MODEL):
        print("no %s: run  %s  first (skipped)" % (CORTEX_MODEL, CORTEX_CMD))
        return None
    sd, md = safetensors_py.read(CORTEX_MODEL)
    assert md["cortex.arch"] == "charlm" and md["cortex.charlm.arch"] == "transformer"
    V, E, L, H = (int(md["cortex.charlm." + k]) for k in ("vocab", "embed", "layers", "heads"))
    context, Fh, tie = int(md["cortex.charlm.context"]), int(md["cortex.charlm.ffn"]), md["cortex.charlm.tie"] == "1"
    m = TransformerLM(V, context, E, L, H, Fh, 0.0, 0.0, tie).eval()
    state = {k: v for k, v in sd.items() if not k.startswith(("optim.", "state.", "cortex."))}
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert missing == (["head.weight"] if tie else []), missing  # tied: head.weight IS tok_emb.weight
    if tie:
        assert m.head.weight.data_ptr() == m.tok_emb.weight.data_ptr()
    cps = [int(c) for c in md["cortex.vocab"].split(",")]
    idx = {c: i + 1 for i, c in enumerate(cps)}
    text = open(TEXT, encoding="utf-8").read()
    T, B = context, 3
    ids = torch.tensor([idx.get(ord(ch), 0) for ch in text[:T * B + 1]], dtype=torch.long)
    x = ids[:T * B].view(B, T).t().contiguous()  # B streams, time-major
    y = ids[1:T * B + 1].view(B, T).t().contiguous()
    with torch.no_grad():
        logits = m(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    path = os.path.join(OUTDIR, "cortex_check.safetensors")
    safetensors_py.write(path, [("x", x), ("y", y), ("logits", logits), ("loss", loss.reshape(1))],
                         {"generator": "tools/gen_transformer_fixtures.py", "torch": torch.__version__,
                          "model": "tests/fixtures/transformer/cortex_tlm.safetensors"})
    print("cortex -> torch: loss %.4f (%.3f bits/char) on %d characters" % (loss.item(), loss.item() / math.log(2),
                                                                           T * B))
    return path


if __name__ == "__main__":
    torch.manual_seed(11)
    check_causal()
    for c in CASES:
        p = gen_case(*c)
        print("%-10s -> %s (%d bytes)" % (c[0], os.path.normpath(p), os.path.getsize(p)))
    cortex_to_torch()
