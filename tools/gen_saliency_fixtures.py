#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_saliency.c.

Run with Debian's python3-torch:  /usr/bin/python3 tools/gen_saliency_fixtures.py

Writes tests/fixtures/saliency/saliency.safetensors. The network (metadata
"net", the .net text the test builds) is

    input 2 10 10
    conv2d name=c1 out=4 k=3 p=1
    relu
    maxpool2d k=2
    conv2d name=c2 out=5 k=3 p=1
    relu
    flatten
    linear name=fc out=3

with random weights net.<param> (c1.weight, c1.bias, c2.weight, ...). Per case C:
    C.x        F32 [1, 2, 10, 10]   the image
    C.cls      I64 [1]   class asked for (-1: the predicted one)
    C.layer    I64 [1]   1: Grad-CAM on c1 (A = relu(c1), 10x10), 2: on c2 (A = relu(c2), 5x5)
    C.used     I64 [1]   the class explained
    C.score    F32 [1]   its logit
    C.grad     F32 [2, 10, 10]   d y_c / d x
    C.map      F32 [10, 10]      max over channels of |grad|
    C.alpha    F32 [k]           spatial mean of d y_c / d A
    C.cam      F32 [h, w]        relu(sum_k alpha_k A_k)
    C.up       F32 [10, 10]      interpolate(cam, (10, 10), bilinear, align_corners=False)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402

torch.manual_seed(7)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "saliency", "saliency.safetensors")
NET = ("input 2 10 10\nconv2d name=c1 out=4 k=3 p=1\nrelu\nmaxpool2d k=2\nconv2d name=c2 out=5 k=3 p=1\nrelu\n"
       "flatten\nlinear name=fc out=3\n")

P = {
    "c1.weight": torch.randn(4, 2, 3, 3) * 0.5, "c1.bias": torch.randn(4) * 0.1,
    "c2.weight": torch.randn(5, 4, 3, 3) * 0.4, "c2.bias": torch.randn(5) * 0.1,
    "fc.weight": torch.randn(3, 125) * 0.2, "fc.bias": torch.randn(3) * 0.1,
}


def forward(x):
    a1 = F.relu(F.conv2d(x, P["c1.weight"], P["c1.bias"], padding=1))
    a2 = F.relu(F.conv2d(F.max_pool2d(a1, 2), P["c2.weight"], P["c2.bias"], padding=1))
    y = F.linear(a2.flatten(1), P["fc.weight"], P["fc.bias"])
    return a1, a2, y


TENSORS, CASES = [], []


def case(name, cls, layer):
    x = torch.randn(1, 2, 10, 10)
    xg = x.clone().requires_grad_(True)
    a1, a2, y = forward(xg)
    used = int(y[0].argmax()) if cls < 0 else cls
    A = a1 if layer == 1 else a2
    A.retain_grad()
    y[0, used].backward()
    alpha = A.grad[0].mean(dim=(1, 2))
    cam = F.relu((alpha[:, None, None] * A[0]).sum(0)).detach()
    up = F.interpolate(cam[None, None], size=(10, 10), mode="bilinear", align_corners=False)[0, 0]
    grad = xg.grad[0]
    for k, v in (("x", x), ("cls", torch.tensor([cls])), ("layer", torch.tensor([layer])),
                 ("used", torch.tensor([used])), ("score", y[0, used].detach().reshape(1)), ("grad", grad),
                 ("map", grad.abs().amax(0)), ("alpha", alpha), ("cam", cam), ("up", up)):
        TENSORS.append(("%s.%s" % (name, k), v.detach().contiguous()))
    CASES.append(name)


if __name__ == "__main__":
    for k, v in P.items():
        TENSORS.append(("net." + k, v.contiguous()))
    case("pred_c2", -1, 2)
    case("cls2_c2", 2, 2)
    case("cls0_c1", 0, 1)
    safetensors_py.write(OUT, TENSORS, {"generator": "tools/gen_saliency_fixtures.py", "torch": torch.__version__,
                                        "cases": ",".join(CASES), "net": NET})
    print("%d cases -> %s" % (len(CASES), os.path.normpath(OUT)))
