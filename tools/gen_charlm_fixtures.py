#!/usr/bin/python3
"""Fixtures for tests/models/test_charlm.c: the character LM of include/cortex/charlm.h
built in PyTorch (nn.Embedding -> nn.LSTM -> nn.Linear, the same state_dict names),
written as a Cortex charlm model file (metadata cortex.arch = charlm, sizes, vocabulary)
plus inputs and expected results, so the test checks that Cortex loads a model made
by another implementation and reproduces its logits, final states, loss and gradients.

Run with Debian's PyTorch:  /usr/bin/python3 tools/gen_charlm_fixtures.py
Output: tests/fixtures/charlm/charlm.safetensors

Case (odd sizes): V 7, E 5, H 6, L 2, T 4, B 3, initial states h0, c0 given.
Tensors: the model's parameters under their state_dict names, then
  x I64 [T, B], y I64 [T, B], h0, c0 F32 [L, B, H],
  out.logits [T, B, V], out.h, out.c [L, B, H], out.loss [1] (mean cross-entropy),
  grad.<param name> for every parameter (d loss / d param).
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "charlm",
                   "charlm.safetensors")
V, E, H, L, T, B = 7, 5, 6, 2, 4, 3
# the vocabulary of the model file: ids 1..6 = these code points (id 0 = <unk>)
CODEPOINTS = [10, 32, 97, 98, 99, 0x3bb]  # '\n', ' ', 'a', 'b', 'c', GREEK SMALL LETTER LAMDA


class CharLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, L)
        self.fc = torch.nn.Linear(H, V)

    def forward(self, x, h0, c0):
        o, (h, c) = self.lstm(self.embed(x), (h0, c0))
        return self.fc(o), h, c


def gen():
    torch.manual_seed(7)
    m = CharLM()
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    h0 = torch.rand(L, B, H) * 2 - 1
    c0 = torch.rand(L, B, H) * 2 - 1
    logits, h, c = m(x, h0, c0)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    ts = [(k, v.detach()) for k, v in m.state_dict().items()]
    ts += [("x", x), ("y", y), ("h0", h0), ("c0", c0), ("out.logits", logits.detach()),
           ("out.h", h.detach()), ("out.c", c.detach()), ("out.loss", loss.detach().reshape(1))]
    ts += [("grad." + k, p.grad) for k, p in m.named_parameters()]
    return ts


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.contiguous()
        if t.dtype == torch.int64:
            dt, raw = "I64", struct.pack("<%dq" % t.numel(), *t.reshape(-1).tolist())
        else:
            dt, raw = "F32", struct.pack("<%df" % t.numel(), *t.float().reshape(-1).tolist())
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {
        "format": "pt", "generator": "tools/gen_charlm_fixtures.py", "torch": torch.__version__,
        "cortex.arch": "charlm", "cortex.charlm.vocab": str(V), "cortex.charlm.embed": str(E),
        "cortex.charlm.hidden": str(H), "cortex.charlm.layers": str(L), "cortex.charlm.dropout": "0",
        "cortex.vocab": ",".join(str(c) for c in CODEPOINTS)}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)))
        fp.write(h)
        for b in blobs:
            fp.write(b)
    os.replace(tmp, path)


if __name__ == "__main__":
    ts = gen()
    write(OUT, ts)
    print("%d tensors, %d bytes -> %s" % (len(ts), os.path.getsize(OUT), os.path.normpath(OUT)))
