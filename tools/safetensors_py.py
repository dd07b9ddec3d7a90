"""Minimal safetensors writer/reader for the fixture scripts (the Python
`safetensors` package is not available here). Tensors are written in the order
given, little-endian, header padded with spaces to 8 bytes, atomically
(temp file + rename). Dtypes: float32 -> F32, int64 -> I64, int32 -> I32, uint8 -> U8
(anything else is converted to F32)."""
import json
import os
import struct

import numpy as np
import torch

_DT = {torch.int64: ("I64", "<i8"), torch.int32: ("I32", "<i4"), torch.uint8: ("U8", "u1")}
_NP = {"F32": "<f4", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def write(path, tensors, metadata=None):
    """tensors: iterable of (name, torch.Tensor); metadata: dict of str -> str."""
    header, blobs, off = {}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        dt, np_dt = _DT.get(t.dtype, ("F32", "<f4"))
        arr = t.numpy() if dt != "F32" else t.float().numpy()
        raw = arr.astype(np_dt).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fp:
        fp.write(struct.pack("<Q", len(h)))
        fp.write(h)
        for b in blobs:
            fp.write(b)
    os.replace(tmp, path)


def read(path):
    """A safetensors file -> ({name: tensor}, metadata dict)."""
    with open(path, "rb") as fp:
        data = fp.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out, meta = {}, header.pop("__metadata__", {})
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[base + b:base + end], dtype=_NP[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta
