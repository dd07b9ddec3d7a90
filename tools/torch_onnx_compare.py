"""PyTorch -> ONNX -> Cortex on trained models (issue 13, "real models").

Trains LeNet-5 and the small ResNet in PyTorch (the networks of
models/lenet5.net and models/small_resnet.net, same layer names) on
Fashion-MNIST, exports each with torch.onnx.export (opset 13, symbolic batch
dimension, eval mode), runs the exported file in Cortex (`cortex onnx run
--save`) on every test image and compares Cortex's logits with PyTorch's:
the number of images with the same predicted class, the max abs difference
and both accuracies.

    make build/cortex
    /usr/bin/python3 tools/torch_onnx_compare.py [--out DIR] [--epochs E]
        [--train N] [--data DIR] [--seed S]

Defaults: DIR /tmp/cortex_torch_onnx, 2 epochs on the first 20,000 training
images of /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist;
else data/fashion-mnist-subset), Adam lr 1e-3, batch 64, one thread. The
10,000 test images are scaled to [0, 1] as `cortex train` does. DIR receives
lenet.onnx, resnet.onnx and their inputs lenet_in.pb / resnet_in.pb (the
first 64 test images) in the layout tools/onnx_bench.sh reads, so the same
PyTorch-exported files can be timed against onnxruntime-node.
"""
import argparse
import gzip
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_onnx_models import LeNet5, SmallResNet  # noqa: E402


def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(d, stem):
    for suf in ("", ".gz"):
        p = os.path.join(d, stem + suf)
        if os.path.exists(p):
            return p
    sys.exit(f"torch_onnx_compare: no {stem}[.gz] in {d}")


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def write_tensor_pb(path, arr, name="x"):
    """An ONNX TensorProto: dims (1), data_type (2) = FLOAT, name (8), raw_data (9)."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    msg = b"".join(b"\x08" + varint(d) for d in arr.shape)
    msg += b"\x10\x01"
    nb = name.encode()
    msg += b"\x42" + varint(len(nb)) + nb
    raw = arr.tobytes()
    msg += b"\x4a" + varint(len(raw)) + raw
    with open(path + ".tmp", "wb") as f:
        f.write(msg)
    os.replace(path + ".tmp", path)


def read_tensor_pb(path):
    """The float TensorProto Cortex writes (dims, data_type 1, raw_data or float_data)."""
    buf = open(path, "rb").read()
    i, dims, raw, floats = 0, [], None, []

    def rv(i):
        v, s = 0, 0
        while True:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << s
            s += 7
            if b < 0x80:
                return v, i

    while i < len(buf):
        key, i = rv(i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = rv(i)
            if field == 1:
                dims.append(v)
        elif wt == 2:
            n, i = rv(i)
            chunk = buf[i:i + n]
            i += n
            if field == 9:
                raw = chunk
            elif field == 1:  # packed dims
                j = 0
                while j < len(chunk):
                    v, s = 0, 0
                    while True:
                        b = chunk[j]
                        j += 1
                        v |= (b & 0x7F) << s
                        s += 7
                        if b < 0x80:
                            break
                    dims.append(v)
            elif field == 4:  # packed float_data
                floats = np.frombuffer(chunk, dtype="<f4")
        elif wt == 5:
            if field == 4:
                floats.append(struct.unpack("<f", buf[i:i + 4])[0])
            i += 4
        elif wt == 1:
            i += 8
        else:
            sys.exit(f"torch_onnx_compare: cannot parse {path}")
    data = np.frombuffer(raw, dtype="<f4") if raw is not None else np.asarray(floats, dtype=np.float32)
    return data.reshape(dims)


def train(model, x, y, epochs, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    n = x.shape[0]
    for ep in range(epochs):
        perm = torch.randperm(n)
        t0, tot, cnt = time.time(), 0.0, 0
        for i in range(0, n - 63, 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
            cnt += 1
        print(f"  epoch {ep + 1}: train loss {tot / cnt:.4f} ({time.time() - t0:.1f} s)", flush=True)
    model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/cortex_torch_onnx")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--data", default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cortex", default=os.path.join(ROOT, "build", "cortex"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    data = a.data
    if data is None:
        data = "/usr/share/datasets/fashion-mnist"
        if not os.path.isdir(data):
            data = os.path.join(ROOT, "data", "fashion-mnist-subset")
    xtr = read_idx(find(data, "train-images-idx3-ubyte"))[:a.train]
    ytr = read_idx(find(data, "train-labels-idx1-ubyte"))[:a.train]
    xte = read_idx(find(data, "t10k-images-idx3-ubyte"))
    yte = read_idx(find(data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    xtr = torch.from_numpy(xtr.astype(np.float32) / 255.0).unsqueeze(1)
    ytr = torch.from_numpy(ytr.astype(np.int64))
    xte_np = (xte.astype(np.float32) / 255.0)[:, None, :, :]
    os.makedirs(a.out, exist_ok=True)
    write_tensor_pb(os.path.join(a.out, "test_in.pb"), xte_np)
    print(f"data {data}: {xtr.shape[0]} training images, {xte_np.shape[0]} test images")
    ok = True
    for name, cls in (("lenet", LeNet5), ("resnet", SmallResNet)):
        torch.manual_seed(a.seed)
        m = cls()
        print(f"== {name}: {sum(p.numel() for p in m.parameters())} parameters, "
              f"{a.epochs} epochs in PyTorch {torch.__version__}", flush=True)
        train(m, xtr, ytr, a.epochs, a.seed)
        with torch.no_grad():
            yt = torch.cat([m(torch.from_numpy(xte_np[i:i + 500])) for i in range(0, len(xte_np), 500)]).numpy()
        path = os.path.join(a.out, f"{name}.onnx")
        torch.onnx.export(m, torch.from_numpy(xte_np[:1]), path, opset_version=13, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        write_tensor_pb(os.path.join(a.out, f"{name}_in.pb"), xte_np[:64])
        prefix = os.path.join(a.out, f"{name}_cx_")
        t0 = time.time()
        r = subprocess.run([a.cortex, "onnx", "run", path, "--input", os.path.join(a.out, "test_in.pb"),
                            "--limit", "0", "--batch", "500", "--save", prefix], capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            sys.exit(f"torch_onnx_compare: cortex onnx run failed on {path}")
        yc = read_tensor_pb(prefix + "y.pb")
        pt, pc = yt.argmax(1), yc.argmax(1)
        same = int((pt == pc).sum())
        diff = float(np.abs(yt - yc).max())
        print(f"  exported {path} ({os.path.getsize(path)} bytes); cortex onnx run on {len(pt)} images "
              f"took {time.time() - t0:.1f} s")
        print(f"RESULT model={name} same_class={same}/{len(pt)} max_abs_diff={diff:.3g} "
              f"acc_pytorch={(pt == yte).mean():.4f} acc_cortex={(pc == yte).mean():.4f}", flush=True)
        ok = ok and same == len(pt) and diff < 1e-3
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
