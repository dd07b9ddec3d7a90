"""ONNX fixtures for tests/io/test_onnx.c: a tiny MLP and a tiny CNN made in
PyTorch, exported with torch.onnx.export, with an input batch and PyTorch's
outputs for it.

    /usr/bin/python3 tools/gen_onnx_fixtures.py

writes tests/fixtures/onnx/{mlp,cnn}.onnx and {mlp,cnn}_io.safetensors (x, y),
and the seeds of the ONNX fuzz target: fuzz/corpus/onnx/{mlp,cnn,shapes}.onnx.
The MLP (opset 11: the old Softmax axis rule) has MatMul + Add, Gemm, Tanh,
Sigmoid, Relu and Softmax, with a symbolic batch dimension; the CNN (opset 13)
has Conv (padded, strided, 1x1), Relu,
BatchNormalization (eval mode, after a ReLU so the exporter cannot fold it into
the convolution), MaxPool, AveragePool, GlobalAveragePool, Concat, Transpose,
Reshape, Flatten, Gemm and LogSoftmax.
"""
import os
import shutil
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "onnx")
CORPUS = os.path.join(ROOT, "fuzz", "corpus", "onnx")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.w0 = nn.Parameter(torch.randn(6, 16) * 0.5)
        self.b0 = nn.Parameter(torch.randn(16) * 0.1)
        self.fc1 = nn.Linear(16, 12)
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x):
        h = torch.tanh(torch.matmul(x, self.w0) + self.b0)
        z = self.fc1(h)
        h = torch.relu(z) * torch.sigmoid(z)
        return torch.softmax(self.fc2(h), dim=1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(4, 6, 1)
        self.fc = nn.Linear(12 * 2 * 2 + 6, 3)

    def forward(self, x):
        h = self.bn(F.relu(self.c1(x)))                  # [B, 4, 8, 8]
        h = F.max_pool2d(h, 2)                           # [B, 4, 4, 4]
        a = F.relu(self.c2(h))                           # [B, 6, 2, 2]
        b = F.avg_pool2d(self.c3(h), 2, count_include_pad=False)  # [B, 6, 2, 2]
        g = F.adaptive_avg_pool2d(a, 1).flatten(1)       # [B, 6] GlobalAveragePool + Flatten
        t = torch.cat([a, b], dim=1).transpose(2, 3)     # [B, 12, 2, 2]
        t = t.reshape(2, 12, 4).reshape(2, 48)
        return F.log_softmax(self.fc(torch.cat([t, g], dim=1)), dim=1)


class Shapes(nn.Module):
    """1-D pooling, softmax on axis 0, concat, transpose, reshape (a fuzz seed)"""

    def forward(self, x):
        p = F.max_pool1d(x, 2, ceil_mode=True)           # [2, 3, 3]
        q = F.avg_pool1d(x, 3, stride=1, padding=1)      # [2, 3, 5]
        t = torch.cat([p, q], dim=2).transpose(0, 2)     # [8, 3, 2]
        return torch.softmax(t.reshape(8, 6), dim=0), torch.sigmoid(x) - x


def export(model, x, name, opset, dynamic):
    model.eval()
    with torch.no_grad():
        y = model(x)
    path = os.path.join(OUT, name + ".onnx")
    kw = dict(input_names=["x"], output_names=["y"], opset_version=opset)
    if dynamic:
        kw["dynamic_axes"] = {"x": {0: "batch"}, "y": {0: "batch"}}
    torch.onnx.export(model, x, path, **kw)
    safetensors_py.write(os.path.join(OUT, name + "_io.safetensors"), [("x", x), ("y", y)])
    print(path, tuple(x.shape), "->", tuple(y.shape))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(13)
    export(MLP(), torch.randn(4, 6), "mlp", 11, True)
    cnn = CNN()
    with torch.no_grad():  # non-trivial running statistics
        cnn.bn.running_mean.uniform_(-0.5, 0.5)
        cnn.bn.running_var.uniform_(0.5, 2.0)
        cnn.bn.weight.uniform_(0.5, 1.5)
        cnn.bn.bias.uniform_(-0.2, 0.2)
    export(cnn, torch.randn(2, 2, 8, 8), "cnn", 13, False)
    os.makedirs(CORPUS, exist_ok=True)
    for name in ("mlp", "cnn"):
        shutil.copyfile(os.path.join(OUT, name + ".onnx"), os.path.join(CORPUS, name + ".onnx"))
    torch.onnx.export(Shapes(), torch.randn(2, 3, 5), os.path.join(CORPUS, "shapes.onnx"), opset_version=17,
                      input_names=["x"], output_names=["y", "z"])


if __name__ == "__main__":
    main()
