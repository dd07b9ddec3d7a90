#!/usr/bin/python3
"""Generate the small interop fixtures of tests/io (run with Debian's python3-torch):

    /usr/bin/python3 tools/gen_io_fixtures.py
    /usr/bin/python3 tools/gen_io_fixtures.py --dump FILE.safetensors   # print a file's tensors

tests/fixtures/io/torch_small.safetensors is written by hand the way the
Hugging Face writer does it (there is no safetensors package here): u64 LE
header size, compact JSON header padded with spaces to an 8-byte boundary,
tensors ordered by dtype alignment (largest first) then name, raw
little-endian tensor bytes. The values are checked in tests/io/test_safetensors.c.
"""
import json
import os
import struct
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")

DTYPES = {
    torch.float32: ("F32", 4), torch.float64: ("F64", 8), torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2), torch.int64: ("I64", 8), torch.int32: ("I32", 4),
    torch.int16: ("I16", 2), torch.int8: ("I8", 1), torch.uint8: ("U8", 1), torch.bool: ("BOOL", 1),
}


def raw_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    arr = t.numpy()
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


def save(path, tensors, metadata=None):
    order = sorted(tensors.items(), key=lambda kv: (-DTYPES[kv[1].dtype][1], kv[0]))
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in order:
        b = raw_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype][0], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    js = json.dumps(header, separators=(",", ":")).encode("utf-8")
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)


def dump(path):
    """Read a safetensors file (e.g. one written by Cortex) with torch and print it."""
    names = {v[0]: k for k, v in DTYPES.items()}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    print("metadata:", header.pop("__metadata__", {}))
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = names[info["dtype"]]
        t = torch.frombuffer(bytearray(buf[b:e]), dtype=dt) if e > b else torch.zeros(0, dtype=dt)
        print(name, info["dtype"], info["shape"], t.reshape(info["shape"]).tolist())


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        return dump(sys.argv[2])
    os.makedirs(OUT, exist_ok=True)
    tensors = {
        "weight": torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1.0,
        "bias": torch.tensor([0.5, -1.5, 3.0], dtype=torch.float32),
        "ids": torch.tensor([1, -2, 3, 2 ** 40, -(2 ** 40)], dtype=torch.int64),
        "count": torch.tensor(7, dtype=torch.int32),  # 0-d
        "half": torch.tensor([1.5, -0.25, 65504.0, 2.0 ** -24], dtype=torch.float16),
        "bf": torch.tensor([1.0, -3.5, 256.0], dtype=torch.bfloat16),
        "dbl": torch.tensor([0.1, -2.5], dtype=torch.float64),
        "bytes": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "small": torch.tensor([-128, 127], dtype=torch.int8),
        "short": torch.tensor([-32768, 1234], dtype=torch.int16),
        "flags": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "layer.0.w": torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float32),
    }
    meta = {"format": "pt", "note": "caf\u00e9 \"quoted\"\n\u2713"}
    path = os.path.join(OUT, "torch_small.safetensors")
    save(path, tensors, meta)
    print("wrote", os.path.relpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    sys.exit(main())
