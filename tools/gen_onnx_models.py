"""PyTorch -> ONNX -> Cortex: a LeNet-5 (the network of models/lenet5.net,
same layer names) made in PyTorch, exported with torch.onnx.export (opset 13,
symbolic batch dimension), with an input batch and PyTorch's outputs.

    /usr/bin/python3 tools/gen_onnx_models.py [--only lenet5|small_resnet]

writes tests/fixtures/onnx/lenet5.onnx and lenet5_io.safetensors (x [3, 1,
28, 28], y [3, 10]); tests/io/test_onnx_export.c loads the file with
cx_onnx_load and compares cx_onnx_run with y, builds models/lenet5.net with
the file's weights and compares Cortex's own forward with y, and exports that
network again. It also writes small_resnet.onnx / small_resnet_io.safetensors:
the small ResNet of models/small_resnet.net (same names; batch norm with
non-default statistics, folded into the convolutions by the eval-mode
export), checked the same way through cx_onnx_load / cx_onnx_run. The
LeNet weights are PyTorch's default initialisation (seed 13)
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


class SmallResNet(nn.Module):
    """models/small_resnet.net: stem, three stages of two basic blocks
    (16, 32, 64 channels; 1x1 strided projections into stages 2 and 3),
    global average pooling, fc."""

    def __init__(self):
        super().__init__()

        def conv(name, cin, cout, k, s):
            setattr(self, name, nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False))

        def bn(name, c):
            setattr(self, name, nn.BatchNorm2d(c))

        conv("stem", 1, 16, 3, 1)
        bn("stem_bn", 16)
        chans = {1: 16, 2: 16, 3: 32, 4: 32, 5: 64, 6: 64}
        for b in range(1, 7):
            cout = chans[b]
            cin = chans[b - 1] if b > 1 else 16
            stride = 2 if b in (3, 5) else 1
            conv(f"b{b}c1", cin, cout, 3, stride)
            bn(f"b{b}n1", cout)
            conv(f"b{b}c2", cout, cout, 3, 1)
            bn(f"b{b}n2", cout)
            if b in (3, 5):
                conv(f"b{b}proj", cin, cout, 1, 2)
                bn(f"b{b}projn", cout)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        s = F.relu(self.stem_bn(self.stem(x)))
        for b in range(1, 7):
            h = F.relu(getattr(self, f"b{b}n1")(getattr(self, f"b{b}c1")(s)))
            h = getattr(self, f"b{b}n2")(getattr(self, f"b{b}c2")(h))
            if b in (3, 5):
                sc = getattr(self, f"b{b}projn")(getattr(self, f"b{b}proj")(s))
            else:
                sc = s
            s = F.relu(h + sc)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(s, 1), 1))


def export(m, x, stem):
    with torch.no_grad():
        y = m(x)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, stem + ".onnx")
    torch.onnx.export(m, x, path, opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    safetensors_py.write(os.path.join(OUT, stem + "_io.safetensors"),
                         [("x", x.contiguous()), ("y", y.contiguous())])
    print(f"wrote {path} ({os.path.getsize(path)} bytes), {stem}_io.safetensors; "
          f"|y| max {y.abs().max().item():.3f}")


def main():
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if only in (None, "lenet5"):
        torch.manual_seed(13)
        m = LeNet5().eval()
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(2.0)
        export(m, torch.rand(3, 1, 28, 28), "lenet5")
    if only in (None, "small_resnet"):
        # BN statistics and affine parameters away from their defaults, so
        # that folding them into the convolutions (what torch.onnx.export
        # does in eval mode) is exercised
        torch.manual_seed(17)
        m = SmallResNet()
        with torch.no_grad():
            for name, mod in m.named_modules():
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.3, 0.3)
                    mod.running_var.uniform_(0.5, 2.0)
                    mod.weight.uniform_(0.6, 1.4)
                    mod.bias.uniform_(-0.2, 0.2)
        m.eval()
        export(m, torch.rand(3, 1, 28, 28), "small_resnet")


if __name__ == "__main__":
    main()
