#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_pool.c and
tests/nn/test_norm.c (pooling, up-sampling, batch norm, layer norm).

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_pool_norm_fixtures.py

Writes (by hand: the safetensors python package is not needed)
    tests/fixtures/pool_norm/pool.safetensors   pooling and up-sampling cases
    tests/fixtures/pool_norm/norm.safetensors   batch norm and layer norm cases

For every case C a file holds
    C.in0, C.in1, ...   F32 inputs
    C.out               forward output
    C.gout              fixed random upstream gradient (shape of C.out)
    C.grad<k>           d sum(out * gout) / d in<k> for every input that
                        requires grad (no C.grad<k>: the C side leaves
                        requires_grad off for that input)
    C.after<k>          value of input k after the call, for inputs the op
                        updates in place (batch norm running_mean / running_var)
The parameters of each case are fixed here AND in the case tables of the C
tests (keep them in sync); the name of a case spells them out:
    k = kernel, s = stride (absent: = kernel), p = padding, "AxB" = per dim,
    ceil = ceil_mode, excl = count_include_pad=False.

Batch norm cases: inputs x, running_mean, running_var[, weight, bias],
momentum 0.1, eps 1e-5 (training) -- the running stats get C.after1/C.after2.
Layer norm cases: inputs x[, weight, bias], eps 1e-5, normalized over the
last k dims (k in the case name).

Also, in norm.safetensors, "bnmod.*": a BatchNorm2d(3) (momentum 0.1) whose
weight / bias are set to bnmod.weight / bnmod.bias, run in training mode on
bnmod.x1 then bnmod.x2 (outputs bnmod.out1 / out2, running stats after each
step bnmod.rm1 / rv1 / rm2 / rv2, and num_batches_tracked 2), then in eval
mode on bnmod.x3 (bnmod.out3) with the gradients of sum(out3 * gout3) in
bnmod.gx3 / gw3 / gb3.

Max pooling with ties ("ties" cases: small integer values) checks that the
gradient goes to the first maximum of each window, as PyTorch does.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUTDIR = os.path.join(HERE, "..", "tests", "fixtures", "pool_norm")


class Fixture:
    def __init__(self):
        self.tensors = []
        self.cases = []

    def add(self, name, t):
        self.tensors.append((name, t.detach().clone().contiguous()))  # snapshot

    def case(self, name, fn, inputs, grads=None, after=()):
        """inputs: float tensors; grads: indices of inputs that require grad
        (default all); after: indices of inputs updated in place."""
        assert name not in self.cases, name
        self.cases.append(name)
        xs = []
        for k, t in enumerate(inputs):
            t = t.detach().clone().float()
            t.requires_grad_(grads is None or k in grads)
            xs.append(t)
        for k, t in enumerate(xs):
            self.add("%s.in%d" % (name, k), t)
        out = fn(*xs)
        gout = torch.randn(out.shape)
        wrt = [t for t in xs if t.requires_grad]
        gs = torch.autograd.grad(out, wrt, grad_outputs=gout) if wrt else []
        self.add("%s.out" % name, out)
        self.add("%s.gout" % name, gout)
        gi = iter(gs)
        for k, t in enumerate(xs):
            if t.requires_grad:
                self.add("%s.grad%d" % (name, k), next(gi))
        for k in after:
            self.add("%s.after%d" % (name, k), xs[k])

    def write(self, path, generator):
        safetensors_py.write(path, self.tensors, {"generator": generator, "torch": torch.__version__,
                                                  "cases": str(len(self.cases))})
        print("%d cases, %d tensors, %d bytes -> %s" % (len(self.cases), len(self.tensors),
                                                         os.path.getsize(path), os.path.normpath(path)))


def randn(*s):
    return torch.randn(*s)


def gen_pool(fx):
    x4 = lambda: randn(2, 3, 7, 9)
    x4s = lambda: randn(1, 2, 8, 7)
    x5 = lambda: randn(2, 2, 5, 6, 7)
    # ---- max pool 2-D
    fx.case("max2d_k2", lambda x: F.max_pool2d(x, 2), [x4()])
    fx.case("max2d_k3_s2_p1", lambda x: F.max_pool2d(x, 3, 2, 1), [x4()])
    fx.case("max2d_k3x2_s1x2_p1x0", lambda x: F.max_pool2d(x, (3, 2), (1, 2), (1, 0)), [x4s()])
    fx.case("max2d_k3_s2_p1_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), [x4s()])
    fx.case("max2d_k2_s3_ceil", lambda x: F.max_pool2d(x, 2, 3, 0, ceil_mode=True), [x4s()])
    fx.case("max2d_ties_k3_s2_p1", lambda x: F.max_pool2d(x, 3, 2, 1),
            [torch.randint(0, 3, (1, 2, 7, 6)).float()])
    fx.case("max2d_ties_k2_s1", lambda x: F.max_pool2d(x, 2, 1),
            [torch.randint(0, 2, (1, 2, 5, 6)).float()])
    fx.case("max2d_unbatched_k2", lambda x: F.max_pool2d(x, 2), [randn(3, 6, 5)])
    # ---- average pool 2-D
    fx.case("avg2d_k2", lambda x: F.avg_pool2d(x, 2), [x4()])
    fx.case("avg2d_k3_s2_p1", lambda x: F.avg_pool2d(x, 3, 2, 1), [x4()])
    fx.case("avg2d_k3_s2_p1_excl", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), [x4()])
    fx.case("avg2d_k3_s2_p1_ceil", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), [x4s()])
    fx.case("avg2d_k3_s2_p1_ceil_excl",
            lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x4s()])
    fx.case("avg2d_k3x2_s2x1_p1x1", lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1)), [x4s()])
    fx.case("avg2d_k2_s3_ceil", lambda x: F.avg_pool2d(x, 2, 3, 0, ceil_mode=True), [x4s()])
    # ---- 3-D
    fx.case("max3d_k2", lambda x: F.max_pool3d(x, 2), [x5()])
    fx.case("max3d_k3_s2_p1", lambda x: F.max_pool3d(x, 3, 2, 1), [x5()])
    fx.case("max3d_k2x3x1_s1x2x1_p1x1x0", lambda x: F.max_pool3d(x, (2, 3, 1), (1, 2, 1), (1, 1, 0)),
            [x5()])
    fx.case("max3d_k3_s2_p1_ceil", lambda x: F.max_pool3d(x, 3, 2, 1, ceil_mode=True), [x5()])
    fx.case("avg3d_k2", lambda x: F.avg_pool3d(x, 2), [x5()])
    fx.case("avg3d_k3_s2_p1", lambda x: F.avg_pool3d(x, 3, 2, 1), [x5()])
    fx.case("avg3d_k3_s2_p1_excl", lambda x: F.avg_pool3d(x, 3, 2, 1, count_include_pad=False), [x5()])
    fx.case("avg3d_k3_s2_p1_ceil", lambda x: F.avg_pool3d(x, 3, 2, 1, ceil_mode=True), [x5()])
    # ---- adaptive / global
    fx.case("adaptive_3x4", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), [x4()])
    fx.case("adaptive_5x2", lambda x: F.adaptive_avg_pool2d(x, (5, 2)), [x4()])
    fx.case("adaptive_1x1", lambda x: F.adaptive_avg_pool2d(x, 1), [x4()])
    fx.case("adaptive_9x11", lambda x: F.adaptive_avg_pool2d(x, (9, 11)), [randn(1, 2, 7, 9)])
    fx.case("adaptive_unbatched_4x3", lambda x: F.adaptive_avg_pool2d(x, (4, 3)), [randn(3, 7, 5)])
    fx.case("global_avg", lambda x: x.mean(dim=(2, 3), keepdim=True), [randn(2, 3, 5, 7)])
    # ---- up-sampling (x [1, 2, 5, 4] unless noted)
    xu = lambda: randn(1, 2, 5, 4)
    fx.case("nearest_size_13x10", lambda x: F.interpolate(x, size=(13, 10), mode="nearest"), [xu()])
    fx.case("nearest_size_7x9", lambda x: F.interpolate(x, size=(7, 9), mode="nearest"), [xu()])
    fx.case("nearest_size_3x3", lambda x: F.interpolate(x, size=(3, 3), mode="nearest"), [xu()])
    fx.case("nearest_size_10x4", lambda x: F.interpolate(x, size=(10, 4), mode="nearest"), [xu()])
    fx.case("nearest_scale_1.7x2.5",
            lambda x: F.interpolate(x, scale_factor=(1.7, 2.5), mode="nearest"), [xu()])
    fx.case("nearest_scale_2x2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), [xu()])
    fx.case("nearest_scale_1.3x1.3", lambda x: F.interpolate(x, scale_factor=1.3, mode="nearest"),
            [randn(1, 2, 3, 3)])
    fx.case("nearest_scale_0.6x0.5", lambda x: F.interpolate(x, scale_factor=(0.6, 0.5), mode="nearest"),
            [xu()])
    for ac in (False, True):
        sfx = "ac" if ac else "noac"
        fx.case("bilinear_size_9x11_" + sfx,
                lambda x, ac=ac: F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=ac), [xu()])
        fx.case("bilinear_size_3x2_" + sfx,
                lambda x, ac=ac: F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=ac), [xu()])
        fx.case("bilinear_size_1x1_" + sfx,
                lambda x, ac=ac: F.interpolate(x, size=(1, 1), mode="bilinear", align_corners=ac), [xu()])
        fx.case("bilinear_size_5x7_" + sfx,
                lambda x, ac=ac: F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=ac), [xu()])
        fx.case("bilinear_scale_1.7x2.5_" + sfx,
                lambda x, ac=ac: F.interpolate(x, scale_factor=(1.7, 2.5), mode="bilinear",
                                               align_corners=ac), [xu()])
        fx.case("bilinear_scale_2x2_" + sfx,
                lambda x, ac=ac: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=ac),
                [randn(2, 1, 3, 4)])
    # out == in with scale != 1: bilinear copies straight through (PyTorch's
    # compute_source_index_and_lambda special case), forward and backward
    fx.case("bilinear_scale_1.3x1.3_noac",
            lambda x: F.interpolate(x, scale_factor=1.3, mode="bilinear", align_corners=False),
            [randn(1, 2, 3, 3)])


def bn_fn(training, affine):
    def f(x, rm, rv, *wb):
        w, b = (wb[0], wb[1]) if affine else (None, None)
        return F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5)
    return f


def gen_norm(fx):
    def bn_case(name, shape, training, affine):
        C = shape[1]
        x = randn(*shape) * 1.5 + 0.3
        rm = randn(C) * 0.5
        rv = torch.rand(C) + 0.5
        ins = [x, rm, rv] + ([randn(C), randn(C)] if affine else [])
        grads = [0, 3, 4] if affine else [0]
        fx.case(name, bn_fn(training, affine), ins, grads=grads, after=(1, 2) if training else ())

    bn_case("bn_train_nc", (7, 5), True, True)
    bn_case("bn_train_ncl", (4, 3, 7), True, True)
    bn_case("bn_train_nchw", (3, 4, 5, 3), True, True)
    bn_case("bn_train_nc_noaffine", (7, 5), True, False)
    bn_case("bn_train_ncl_noaffine", (4, 3, 7), True, False)
    bn_case("bn_train_nchw_noaffine", (3, 4, 5, 3), True, False)
    bn_case("bn_train_n2_nc", (2, 3), True, True)
    bn_case("bn_eval_nc", (7, 5), False, True)
    bn_case("bn_eval_nchw", (3, 4, 5, 3), False, True)
    bn_case("bn_eval_ncl_noaffine", (4, 3, 7), False, False)

    def ln_case(name, shape, k, affine):
        x = randn(*shape) * 2 - 0.5
        ns = shape[len(shape) - k:]
        ins = [x] + ([randn(*ns), randn(*ns)] if affine else [])
        if affine:
            fn = lambda x, w, b: F.layer_norm(x, ns, w, b, eps=1e-5)
        else:
            fn = lambda x: F.layer_norm(x, ns, eps=1e-5)
        fx.case(name, fn, ins)

    ln_case("ln_k1", (4, 3, 7), 1, True)
    ln_case("ln_k2", (3, 5, 4), 2, True)
    ln_case("ln_k3", (2, 3, 4, 5), 3, True)
    ln_case("ln_k1_noaffine", (4, 3, 7), 1, False)
    ln_case("ln_k2_noaffine", (3, 5, 4), 2, False)
    ln_case("ln_k1_2d", (6, 9), 1, True)

    # ---- the BatchNorm2d module: two training steps, then eval
    bn = torch.nn.BatchNorm2d(3, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(randn(3))
        bn.bias.copy_(randn(3))
    fx.add("bnmod.weight", bn.weight)
    fx.add("bnmod.bias", bn.bias)
    bn.train()
    for step in (1, 2):
        x = randn(4, 3, 5, 3) * (1.0 + step) + 0.5 * step
        out = bn(x)
        fx.add("bnmod.x%d" % step, x)
        fx.add("bnmod.out%d" % step, out)
        fx.add("bnmod.rm%d" % step, bn.running_mean)
        fx.add("bnmod.rv%d" % step, bn.running_var)
    assert int(bn.num_batches_tracked) == 2
    bn.eval()
    x3 = (randn(2, 3, 5, 3) * 2.0).requires_grad_(True)
    out3 = bn(x3)
    gout3 = randn(*out3.shape)
    gx, gw, gb = torch.autograd.grad(out3, [x3, bn.weight, bn.bias], grad_outputs=gout3)
    fx.add("bnmod.x3", x3)
    fx.add("bnmod.out3", out3)
    fx.add("bnmod.gout3", gout3)
    fx.add("bnmod.gx3", gx)
    fx.add("bnmod.gw3", gw)
    fx.add("bnmod.gb3", gb)

    # ---- cx_batch_norm_relu: relu(batch_norm(x) [+ residual]), inputs
    # x, running_mean, running_var, weight, bias[, residual] (added last, so
    # the random draws of the cases above are unchanged)
    def bnrelu_case(name, shape, training, residual):
        C = shape[1]
        x = randn(*shape) * 1.5 + 0.3
        rm = randn(C) * 0.5
        rv = torch.rand(C) + 0.5
        ins = [x, rm, rv, randn(C), randn(C)] + ([randn(*shape)] if residual else [])
        grads = [0, 3, 4, 5] if residual else [0, 3, 4]

        def f(x, rm, rv, w, b, *r):
            y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5)
            return F.relu(y + r[0] if r else y)
        fx.case(name, f, ins, grads=grads, after=(1, 2) if training else ())

    bnrelu_case("bnrelu_train_nchw", (3, 4, 5, 3), True, False)
    bnrelu_case("bnrelu_train_res_nchw", (3, 4, 5, 3), True, True)
    bnrelu_case("bnrelu_train_res_nc", (7, 5), True, True)
    bnrelu_case("bnrelu_eval_res_nchw", (3, 4, 5, 3), False, True)


if __name__ == "__main__":
    pool, norm = Fixture(), Fixture()
    gen_pool(pool)
    gen_norm(norm)
    pool.write(os.path.join(OUTDIR, "pool.safetensors"), "tools/gen_pool_norm_fixtures.py")
    norm.write(os.path.join(OUTDIR, "norm.safetensors"), "tools/gen_pool_norm_fixtures.py")
