"""The reference logits of an LSTM charlm model file for checking its ONNX
export in onnxruntime: the PyTorch module of cortex/charlm.h
(nn.Embedding -> nn.LSTM -> nn.Linear) with the file's weights, run on
random ids from zero states.

    /usr/bin/python3 tools/charlm_onnx_ref.py MODEL.safetensors OUTDIR [T B]
writes OUTDIR/ids.npy (int64 [T, B]) and OUTDIR/logits.npy (float32 [T, B, V]);
then
    node tools/ort_run.js MODEL.onnx --input OUTDIR/ids.npy --zeros h0=L,B,H \\
        --zeros c0=L,B,H --compare OUTDIR/logits.npy
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    path, out = sys.argv[1], sys.argv[2]
    T, B = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) == 5 else (50, 4)
    t, meta = safetensors_py.read(path)
    V, E = t["embed.weight"].shape
    H = t["lstm.weight_hh_l0"].shape[1]
    L = sum(1 for k in t if k.startswith("lstm.weight_ih_l"))
    emb, lstm, fc = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, L), torch.nn.Linear(H, V)
    emb.weight.data.copy_(t["embed.weight"])
    for n, p in lstm.named_parameters():
        p.data.copy_(t["lstm." + n])
    fc.weight.data.copy_(t["fc.weight"])
    fc.bias.data.copy_(t["fc.bias"])
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (T, B), generator=g)
    with torch.no_grad():
        y, _ = lstm(emb(ids))
        logits = fc(y)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "ids.npy"), ids.numpy().astype(np.int64))
    np.save(os.path.join(out, "logits.npy"), logits.numpy().astype(np.float32))
    print(f"V {V} E {E} H {H} L {L}; ids [{T}, {B}] -> logits {list(logits.shape)}; "
          f"h0/c0 for ort_run.js: --zeros h0={L},{B},{H} --zeros c0={L},{B},{H}")


if __name__ == "__main__":
    main()
