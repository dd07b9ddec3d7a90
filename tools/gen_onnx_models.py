"""PyTorch -> ONNX -> Cortex: a LeNet-5 (the network of models/lenet5.net,
same layer names) made in PyTorch, exported with torch.onnx.export (opset 13,
symbolic batch dimension), with an input batch and PyTorch's outputs.

    /usr/bin/python3 tools/gen_onnx_models.py

writes tests/fixtures/onnx/lenet5.onnx and lenet5_io.safetensors (x [3, 1,
28, 28], y [3, 10]); tests/io/test_onnx_export.c loads the file with
cx_onnx_load and compares cx_onnx_run with y, builds models/lenet5.net with
the file's weights and compares Cortex's own forward with y, and exports that
network again. The weights are PyTorch's default initialisation (seed 13)
scaled up so the logits are not all near zero.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = torch.flatten(h, 1)
        h = F.relu(self.fc1(h))
        h = F.relu(self.fc2(h))
        return self.fc3(h)


def main():
    torch.manual_seed(13)
    m = LeNet5().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(2.0)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        y = m(x)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "lenet5.onnx")
    torch.onnx.export(m, x, path, opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    safetensors_py.write(os.path.join(OUT, "lenet5_io.safetensors"),
                         [("x", x.contiguous()), ("y", y.contiguous())])
    print(f"wrote {path} ({os.path.getsize(path)} bytes), lenet5_io.safetensors; "
          f"|y| max {y.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
