#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of the op case table
(tests/autograd/op_cases.h, run by tests/autograd/test_ops.c).

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_op_fixtures.py

Writes tests/fixtures/ops/ops.safetensors (written by hand: the safetensors
python package is not needed). For every case C it stores

    C.in0, C.in1, ...   inputs: F32, or I64 for class targets / indices
    C.out               forward output (0-d results are stored as shape [1],
                        which is what Cortex returns for full reductions)
    C.gout              fixed random upstream gradient, same shape as C.out
    C.grad<k>           d sum(out * gout) / d in<k>, for every float input k
                        that requires grad (no C.grad<k> -> the C side does
                        not set requires_grad on that input)

Scalar parameters are fixed per case, here AND in the case table
tests/autograd/op_cases.h (keep them in sync; the variants drawn by
gen_variants() are listed in its docstring):

    case                    op                                    parameters
    ----------------------  ------------------------------------  -------------------------------
    add_scalar              x + s                                 s = 0.75
    mul_scalar              x * s                                 s = -1.5
    pow_2_5 / pow_3         x ** p                                p = 2.5 (x > 0) / p = 3 (any sign)
    clamp                   clamp(x, lo, hi)                      lo = -0.5, hi = 0.7
    leaky_relu              leaky_relu(x, slope)                  slope = 0.1
    elu_1 / elu_0_5         elu(x, alpha)                         alpha = 1.0 / 0.5
    softplus_b1_t20         softplus(x, beta, threshold)          beta = 1, threshold = 20
    softplus_b2_t5          softplus(x, beta, threshold)          beta = 2, threshold = 5
    sum_ax1_keep / sum_ax1  x.sum(1, keepdim)                     axis 1, keepdim true / false
    mean_ax0 / mean_axm1    x.mean(axis)                          axis 0 / -1
    max_ax1 / max_axm1_keep x.max(axis, keepdim).values           axis 1 / -1 keepdim true
    softmax_axm1/_ax0       softmax(x, axis)  (also log_softmax)  axis -1 / 0
    reshape                 x.reshape(4, -1)                      [2,3,4] -> [4,6]
    transpose01             x.transpose(0, 1)
    permute201              x.permute(2, 0, 1)
    slice                   x[:, 1:5:2]                           axis 1, start 1, stop 5, step 2
    concat                  cat([a, b, c], 1)                     axis 1
    stack_ax0 / stack_ax2   stack([a, b, c], axis)                axis 0 / 2
    index_select_ax0/_ax1   index_select(x, axis, idx)            axis 0 / 1 (repeated indices)
    gather                  gather(x, 1, idx)                     axis 1
    ce_*, ce_ign_*          cross_entropy(x, t)                   ignore_index = -100 (default)
    nll_*                   nll_loss(log_softmax(x, 1), t)
    mmargin_m1_* / _m0_5_*  multi_margin_loss(x, t, margin)       p = 1, margin = 1.0 / 0.5
    sl1_b1_* / sl1_b0_5_*   smooth_l1_loss(x, y, beta)            beta = 1.0 / 0.5
    hinge_m1_* / hinge_m0_5 clamp(margin - t*f, min=0)            margin = 1.0 / 0.5
    perceptron_*            clamp(-t*f, min=0)
    logistic_*              softplus(-t*f)  (= log1p(exp(-t*f)))
    (losses: suffix _mean, _sum, _none = the reduction)
    mul_self / reuse        x * x ; y = exp(x), y*y + y           one tensor used twice
    chain_mlp               ce(linear(tanh(linear(x,W1,b1)),W2,b2), t)   mean reduction
    slice_neg / slice_clip  x[..., -4:-1] / x[:, 0:100:3]         axis -1 / axis 1 (stop clipped)
    stack_axm1              stack([a, b], -1)
    transpose_neg           x.transpose(-1, 0)
    sum_ax_size1            x.sum(1) of [3,1,4]
    pow_m1 / pow_0_5        x ** p (x > 0)                        p = -1 / 0.5
    *_big                   saturating inputs (|x| up to 90, logits ~ N(0, 50^2))
                            softplus_big/elu_big: defaults beta 1 thr 20 / alpha 1
    log_softmax_100         log_softmax(x, -1), x ~ 100 + N(0, 4)  reference in float64, rounded
    log_softmax_m100_ax0    log_softmax(x, 0), x ~ -100 + N(0, 4)  (tight forward tolerance)
    gelu_tanh               gelu(x, approximate='tanh')
    mm_t_* / mm_bc*         matmul(a^T if ta, b^T if tb)          flags in the name (ta / tb); 4-D
                            and broadcast batch dimensions (bc)
    bmm                     torch.bmm
    masked_fill_*           a.masked_fill(mask, value)            value per case (0.5, -2, 3, 0, 1.25,
                            -inf); masks I64 (I32 / F32 where named)
    where_*                 torch.where(cond, a, b)               cond I64 (F32 where named)
    pow_t_*                 torch.pow(a, b), both tensors         a > 0, except _neg_base_int_exp
                            (a < 0, integer b, grad of a only) and _zero_base
    cumsum_* / cumprod_*    torch.cumsum / torch.cumprod(x, axis)  axis in the name; cumprod inputs
                            |x| in [0.5, 1.5], _zeros with exact zeros
    sort_* / argsort_*      torch.sort / argsort(stable=True)     axis in the name (ascending unless
                            _desc); _idx rows are the I64 indices; inputs are a
                            shuffled grid (no ties) except *_ties (stable order)
    topk_*                  torch.topk(x, k, axis, largest).values / .indices
    cos_sim_*               cosine_similarity(a, b, dim, eps)     eps 1e-8 unless named; _below_eps:
                            eps 0.1 with norms below it and a zero row
    circ_conv_*             sum_j roll(w, j - (K-1)/2, axis) * s[j]  K and axis in the name
                            (no PyTorch op: the reference is this sum)
    outer_*                 torch.outer / einsum('bm,bn->bmn')
    mmargin_p2_m1_*         multi_margin_loss(x, t, p=2, margin=1)
    mmargin_p2_w_m0_5_*     multi_margin_loss(x, t, p=2, margin=0.5, weight=w)   w in [0.5, 2], no grad
    mmargin_p1_w_mean       multi_margin_loss(x, t, p=1, margin=1, weight=w)
    attn_*                  cx_attention / general / additive     see gen_attention(): masks, scales,
                            attention against ref_attention()     fully masked rows (zero, not NaN)
    affine_grid_*           affine_grid(theta, size, align_corners)   size (N, C, H, W) as in the C row;
                            _ac0 / _ac1: align_corners false / true; _h1 / _w1: a size-1 dim
    grid_sample_*           grid_sample(x, grid, 'bilinear', 'zeros', align_corners)   grid points at
                            random pixel positions 0.2-0.8 px off the integers, inside, half outside
                            and outside; _outside: all a pixel or more out; _input_only / _grid_only:
                            one input requires grad; _kinks: exactly on pixel centres and borders
    stn_*                   grid_sample(x, affine_grid(theta, size))  size as in the C row; identity,
                            rotations, zoom in / out, translations reading outside; the translations
                            are nudged (off_kinks) until no grid point is within the finite-difference
                            step (eps 2e-3) of an integer pixel coordinate

Kinks: where PyTorch's sub-gradient choice at a non-differentiable point is a
convention (relu/abs at 0, clamp at its bounds, maximum at ties, max-reduce at
ties, softplus at x*beta == threshold, smooth_l1 at |d| == beta, the hinge /
perceptron / multi-margin at a zero margin), the inputs are drawn away from the
kink (at least 0.02-0.05 from it), so the comparison only tests the
well-defined derivative. Dropout is random and is checked in pure C.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)
import torch.nn.functional as F
import warnings

# affine_grid warns about unit-size grids with align_corners (a row tests one)
warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid behavior")

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "ops", "ops.safetensors")

TENSORS = []  # (name, tensor) in insertion order
CASE_NAMES = []


def randn(*s):
    return torch.randn(*s)


def uniform(lo, hi, *s):
    return torch.rand(*s) * (hi - lo) + lo


def avoid(x, points, eps):
    """Redraw (from the same distribution scale) the elements of x closer than
    eps to any of `points` until none is."""
    x = x.clone()
    scale = float(x.abs().max()) if x.numel() else 1.0
    for _ in range(1000):
        bad = torch.zeros_like(x, dtype=torch.bool)
        for p in points:
            bad |= (x - p).abs() < eps
        if not bad.any():
            return x
        x[bad] = (torch.rand(int(bad.sum())) * 2 - 1) * scale
    raise RuntimeError("avoid: could not move values away from the kinks")


def case(name, fn, inputs, grads=None):
    """inputs: list of tensors (float or int64). grads: which float inputs
    require grad (default: all float inputs)."""
    assert name not in CASE_NAMES, name
    CASE_NAMES.append(name)
    xs = []
    for k, t in enumerate(inputs):
        t = t.detach().clone()
        if t.is_floating_point():
            t = t.float()
            rg = grads is None or k in grads
            t.requires_grad_(rg)
        xs.append(t)
    out = fn(*xs)
    gout = torch.randn(out.shape)
    wrt = [t for t in xs if t.requires_grad]
    gs = torch.autograd.grad(out, wrt, grad_outputs=gout) if wrt else []
    for k, t in enumerate(xs):
        TENSORS.append(("%s.in%d" % (name, k), t.detach()))
    o = out.detach()
    if o.dim() == 0:
        o, gout = o.reshape(1), gout.reshape(1)
    TENSORS.append(("%s.out" % name, o))
    TENSORS.append(("%s.gout" % name, gout))
    gi = iter(gs)
    for k, t in enumerate(xs):
        if t.requires_grad:
            TENSORS.append(("%s.grad%d" % (name, k), next(gi).detach()))


def reduce(l, r):
    return l.mean() if r == "mean" else l.sum() if r == "sum" else l


REDS = ("mean", "sum", "none")


def push_away(x, point, margin):
    """Move the elements of x closer than `margin` to `point` onto point +- margin
    (what the finite-difference-only test did: a kink stays >= margin away)."""
    x = x.clone()
    d = x - point
    x = torch.where((d.abs() < margin) & (d >= 0), torch.full_like(x, point + margin), x)
    x = torch.where((d.abs() < margin) & (d < 0), torch.full_like(x, point - margin), x)
    return x


def distinct(spacing, *s):
    """spacing * (k - n/2) for k = 0..n-1 in random order: no ties, gaps >= spacing."""
    n = 1
    for d in s:
        n *= d
    return ((torch.randperm(n) - n // 2).float() * spacing).reshape(*s)


def pm1_pattern(*s):
    """t = -1 at every third element (flat index % 3 == 0), +1 elsewhere."""
    n = 1
    for d in s:
        n *= d
    return torch.tensor([1.0 if i % 3 else -1.0 for i in range(n)]).reshape(*s)


def i32(*v):
    return torch.tensor(v, dtype=torch.int32)


def gen_variants():
    """The shape / axis / parameter / requires-grad variants that used to be
    checked with finite differences only (the old tests/autograd/test_gradcheck.c),
    now compared with PyTorch too. Drawn from their own seed, after gen(), so the
    cases of gen() keep their draws and these keep theirs whatever gen() gains.
    Inputs as the old checks drew them (uniform ranges, kink margins, grids).

    case                        op / inputs                           parameters
    --------------------------  ------------------------------------  ---------------------------
    {add,sub,mul,div,maximum}_  a op b; same [2,3],[2,3]  bc [4,1,3],  _ga: grads=[0] (only a)
      {same,bc,bc2,bcs}[_ga|_gb]  [5,1]  bc2 [3],[2,3] (sub: bc2l)      _gb: grads=[1] (only b)
                                  bcs [2,3],[1]; div |b| >= 0.5;
                                  maximum: grid 0.3, |a - b| >= 0.15
    mul_max_self                x*x + maximum(x, x)                   tie: half to each side
    mul_scalar_0 / pow_0        x * 0 / x ** 0
    leaky_relu_0_01             leaky_relu(x, 0.01)                   |x| >= 0.1
    softplus_b1_t20_above       softplus(x, 1, 20), x in [21, 24]     linear branch only
    softplus_b2_t1              softplus(x, 2, 1)                     |x - 0.5| >= 0.1
    maxout_k2/_k3_3d/_k1        x.reshape(..., m, k).max(-1)          [3,6] / [2,2,6] / [2,3]
    mm_row_col                  [1,7] @ [7,1]
    linear_3d_nobias/linear_1d  linear([2,3,4], W) / linear([4], W, b)
    {sum,mean,max}_ax{0,1,2,m1,m3}[_keep]  on [3,4,2]                  max: distinct values
                                (max_axm1_keep_3d: gen()'s max_axm1_keep is 2-d)
    {,log_}softmax_ax{1,2,m2}   on [3,4,5];  *_2d_ax1 on [4,6]
    reshape_m1_2 / flatten      reshape(-1, 2) / flatten(x, 1)        [2,3,4]
    transpose02/_m1m2/11        transpose(0,2) / (-1,-2) / (1,1)
    permute120 / permute_m101   permute(1,2,0) / (-1,0,1)
    slice_negstart/_ax0/_axm1/  x[:, -5:8:3] / x[0:2] / x[..., 1:2] /  [3,8,2]
      slice_clip_all            x[:, 0:100]
    concat_ax0/_axm1/_mid_const cat axis 0 (3) / -1 (2) / 1 (3)        mid_const: grads=[0, 2]
    stack_ax1                   stack of three [2,3], axis 1
    index_select_ax0_i32/_axm1  I32 [2,0,2,2,3] axis 0 / I64 [1,1,0] axis -1
    gather_i32/_ax0_i32/_3d_axm1_i32  I32 indices, axis 1 / 0 / -1 (3-d)
    ce_i32[_ign]_*              cross_entropy, I32 targets (_ign: two -100)
    nll_i32[_ign]_*, nll_ign_*  nll_loss(log-probabilities, t)        nll_ign: I64 with -100
    mmargin_i32_{m1,m0_45}_*    multi_margin_loss, distinct 0.3 grid  margin 1.0 / 0.45
    hinge_m0_5_{sum,none}       clamp(0.5 - t*f, min=0)               |0.5 - t f| >= 0.2
    {mse,bce_logits,hinge_m1,hinge_m0_5,perceptron,logistic,sl1_b1,sl1_b0_5}_pred_*
                                w.r.t. the prediction only            grads=[0]
    chain_mlp_i32               chain_mlp with I32 targets, 8 hidden  gradcheck atol 1e-3
    attention                   softmax(q k^T * 0.5, -1) v
    chain_mix                   chain_fn of op_cases.h (gelu, mean, reshape, permute, exp,
                                sum, slice, logistic loss)
    (losses: suffix _mean, _sum, _none = the reduction)"""
    torch.manual_seed(20240601)

    def u(lo, hi, *s):
        return uniform(lo, hi, *s)

    # ---- elementwise binary: shapes same [2,3]+[2,3], bc [4,1,3]+[5,1],
    # bc2 [3]+[2,3] (sub: bc2l; sub_bc2 of gen() is [2,3]-[3]), bcs [2,3]+[1];
    # *_ga: only the first input requires grad, *_gb: only the second
    shapes = (("same", (2, 3), (2, 3)), ("bc", (4, 1, 3), (5, 1)), ("bc2", (3,), (2, 3)),
              ("bcs", (2, 3), (1,)))
    have = {"add_same", "add_bc", "add_bc2", "sub_same", "sub_bc", "mul_same", "mul_bc", "mul_bc2",
            "div_same", "div_bc", "div_bc2", "maximum_same", "maximum_bc"}
    for op, fn in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul), ("div", torch.div),
                   ("maximum", torch.maximum)):
        for tag, sa, sb in shapes:
            if op == "maximum":  # a on a 0.3 grid, b on the grid + 0.15: |a - b| >= 0.15
                a = 0.3 * (torch.randint(0, 13, sa) - 6).float()
                b = 0.3 * (torch.randint(0, 13, sb) - 6).float() + 0.15
            else:
                a = u(-2.0, 2.0, *sa)
                b = u(-2.0, 2.0, *sb)
                if op == "div":  # |b| >= 0.5
                    b = push_away(b, 0.0, 0.5)
            base = "%s_%s" % (op, "bc2l" if (op, tag) == ("sub", "bc2") else tag)
            if base not in have:
                case(base, fn, [a, b])
            case(base + "_ga", fn, [a, b], grads=[0])
            case(base + "_gb", fn, [a, b], grads=[1])
    # one tensor on both sides of mul and maximum (maximum's tie: half to each side)
    case("mul_max_self", lambda x: x * x + torch.maximum(x, x), [u(-2.0, 2.0, 3, 4)])
    case("mul_scalar_0", lambda x: x * 0.0, [u(-2.0, 2.0, 5)])

    # ---- elementwise unary
    case("pow_0", lambda x: x ** 0.0, [u(0.5, 2.0, 4)])
    case("leaky_relu_0_01", lambda x: F.leaky_relu(x, 0.01), [push_away(u(-2.0, 2.0, 3, 4), 0.0, 0.1)])
    case("softplus_b1_t20_above", lambda x: F.softplus(x, beta=1.0, threshold=20.0),
         [u(21.0, 24.0, 2, 3)])
    # beta 2, threshold 1: the switch to the linear branch is at x = 0.5
    case("softplus_b2_t1", lambda x: F.softplus(x, beta=2.0, threshold=1.0),
         [push_away(u(-2.0, 2.0, 3, 4), 0.5, 0.1)])
    # maxout: last axis m*k -> m groups of k, max of each (distinct values: no ties)
    for name, k, x in (("maxout_k2", 2, distinct(0.1, 3, 6)), ("maxout_k3_3d", 3, distinct(0.1, 2, 2, 6)),
                       ("maxout_k1", 1, u(-1.0, 1.0, 2, 3))):
        case(name, lambda x, k=k: x.reshape(*x.shape[:-1], x.shape[-1] // k, k).max(-1).values, [x])

    # ---- matrix
    case("mm_row_col", torch.matmul, [u(-1.0, 1.0, 1, 7), u(-1.0, 1.0, 7, 1)])
    case("linear_3d_nobias", F.linear, [u(-1.0, 1.0, 2, 3, 4), u(-1.0, 1.0, 5, 4)])
    case("linear_1d", F.linear, [u(-1.0, 1.0, 4), u(-1.0, 1.0, 5, 4), u(-1.0, 1.0, 5)])

    # ---- reductions over every axis of [3,4,2], keepdim or not (max: distinct values)
    have = {"sum_ax1", "sum_ax1_keep", "mean_ax0", "mean_axm1", "max_ax1"}
    for op in ("sum", "mean", "max"):
        for ax, atag in ((0, "0"), (1, "1"), (2, "2"), (-1, "m1"), (-3, "m3")):
            for kd in (False, True):
                name = "%s_ax%s%s" % (op, atag, "_keep" if kd else "")
                if name in have:
                    continue
                if name == "max_axm1_keep":  # gen()'s max_axm1_keep is 2-d
                    name += "_3d"
                if op == "max":
                    case(name, lambda x, ax=ax, kd=kd: x.max(ax, keepdim=kd).values, [distinct(0.1, 3, 4, 2)])
                else:
                    case(name, lambda x, ax=ax, kd=kd, op=op: getattr(x, op)(ax, keepdim=kd),
                         [u(-2.0, 2.0, 3, 4, 2)])
    for op, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        for ax, atag in ((1, "1"), (2, "2"), (-2, "m2")):
            case("%s_ax%s" % (op, atag), lambda x, fn=fn, ax=ax: fn(x, ax), [u(-3.0, 3.0, 3, 4, 5)])
        case(op + "_2d_ax1", lambda x, fn=fn: fn(x, 1), [u(-3.0, 3.0, 4, 6)])

    # ---- shape
    case("reshape_m1_2", lambda x: x.reshape(-1, 2), [u(-2.0, 2.0, 2, 3, 4)])
    case("flatten", lambda x: torch.flatten(x, 1), [u(-2.0, 2.0, 2, 3, 4)])
    case("transpose02", lambda x: x.transpose(0, 2), [u(-2.0, 2.0, 2, 3, 4)])
    case("transpose_m1m2", lambda x: x.transpose(-1, -2), [u(-2.0, 2.0, 2, 3, 4)])
    case("transpose11", lambda x: x.transpose(1, 1), [u(-2.0, 2.0, 2, 3, 4)])
    case("permute120", lambda x: x.permute(1, 2, 0), [u(-2.0, 2.0, 2, 3, 4)])
    case("permute_m101", lambda x: x.permute(-1, 0, 1), [u(-2.0, 2.0, 2, 3, 4)])
    case("slice_negstart", lambda x: x[:, -5:8:3], [u(-2.0, 2.0, 3, 8, 2)])
    case("slice_ax0", lambda x: x[0:2], [u(-2.0, 2.0, 3, 8, 2)])
    case("slice_axm1", lambda x: x[..., 1:2], [u(-2.0, 2.0, 3, 8, 2)])
    case("slice_clip_all", lambda x: x[:, 0:100], [u(-2.0, 2.0, 3, 8, 2)])
    case("concat_ax0", lambda a, b, c: torch.cat([a, b, c], 0),
         [u(-2.0, 2.0, 1, 3), u(-2.0, 2.0, 3, 3), u(-2.0, 2.0, 2, 3)])
    case("concat_axm1", lambda a, b: torch.cat([a, b], -1), [u(-2.0, 2.0, 2, 2), u(-2.0, 2.0, 2, 3)])
    case("concat_mid_const", lambda a, b, c: torch.cat([a, b, c], 1),
         [u(-2.0, 2.0, 2, 3, 2), u(-2.0, 2.0, 2, 1, 2), u(-2.0, 2.0, 2, 4, 2)], grads=[0, 2])
    case("stack_ax1", lambda a, b, c: torch.stack([a, b, c], 1),
         [u(-2.0, 2.0, 2, 3), u(-2.0, 2.0, 2, 3), u(-2.0, 2.0, 2, 3)])
    # integer inputs are stored with their own dtype (I32 here); PyTorch wants int64
    case("index_select_ax0_i32", lambda x, i: torch.index_select(x, 0, i.long()),
         [u(-2.0, 2.0, 4, 3, 2), i32(2, 0, 2, 2, 3)])
    case("index_select_axm1", lambda x, i: torch.index_select(x, -1, i),
         [u(-2.0, 2.0, 4, 3, 2), torch.tensor([1, 1, 0])])
    case("gather_i32", lambda x, i: torch.gather(x, 1, i.long()),
         [u(-2.0, 2.0, 3, 4), i32(0, 3, 3, 1, 1, 1).reshape(3, 2)])
    case("gather_ax0_i32", lambda x, i: torch.gather(x, 0, i.long()),
         [u(-2.0, 2.0, 3, 4), i32(2, 0, 1, 2, 2, 2, 0, 0).reshape(2, 4)])
    case("gather_3d_axm1_i32", lambda x, i: torch.gather(x, -1, i.long()),
         [u(-2.0, 2.0, 2, 3, 4), i32(0, 3, 1, 1, 2, 0, 3, 3, 0, 1, 2, 3).reshape(2, 3, 2)])

    # ---- class losses: I32 targets, ignore_index -100 (I32 and I64), every reduction;
    # nll_i32_* / nll_i32_ign_* / nll_ign_*: nll_loss of log-probabilities directly
    targets = (("i32", i32(0, 2, 1, 3, 2)), ("i32_ign", i32(1, -100, 3, -100, 0)),
               ("ign", torch.tensor([3, 3, 0, 1, -100])))
    for ttag, t in targets:
        for r in REDS:
            if ttag != "ign":  # ce_ign_* of gen() has I64 targets with -100
                case("ce_%s_%s" % (ttag, r), lambda x, t, r=r: F.cross_entropy(x, t.long(), reduction=r),
                     [u(-3.0, 3.0, 5, 4), t])
            lp = torch.log_softmax(u(-2.0, 2.0, 5, 4), 1)
            case("nll_%s_%s" % (ttag, r), lambda x, t, r=r: F.nll_loss(x, t.long(), reduction=r), [lp, t])
    # multi-margin, I32 targets: distinct values on a 0.3 grid, so every margin
    # m - x[y] + x[i] is >= 0.1 (m = 1) / >= 0.15 (m = 0.45) away from 0
    t = i32(0, 2, 1, 3, 2, 1)
    for m, mtag in ((1.0, "m1"), (0.45, "m0_45")):
        for r in REDS:
            case("mmargin_i32_%s_%s" % (mtag, r),
                 lambda x, t, m=m, r=r: F.multi_margin_loss(x, t.long(), p=1, margin=m, reduction=r),
                 [distinct(0.3, 6, 4), t])

    # ---- pointwise losses; *_pred_*: with respect to the prediction only (grads=[0])
    def hinge_inputs(m):  # t = +-1, |m - t f| >= 0.2
        f, t = u(-2.5, 2.5, 3, 4), pm1_pattern(3, 4)
        z = m - t * f
        f = torch.where(z.abs() < 0.2, t * (m + torch.where(z >= 0, -0.2, 0.2)), f)
        return f, t

    def sl1_inputs(beta):  # |pred - target| on both sides of beta, >= 0.15 beta from it
        t = u(-2.0, 2.0, 3, 4)
        dv = torch.tensor([0.3, -0.4, 1.6, -2.0, 0.05, 0.7, -0.7, 2.5, -1.3, 0.0, 1.2, -0.2]).reshape(3, 4)
        return t + dv * beta, t

    for m, mtag in ((1.0, "m1"), (0.5, "m0_5")):
        for r in REDS:
            if (m, r) in ((0.5, "sum"), (0.5, "none")):  # gen() has hinge_m0_5_mean only
                case("hinge_%s_%s" % (mtag, r),
                     lambda f, t, m=m, r=r: reduce(torch.clamp(m - t * f, min=0), r), list(hinge_inputs(m)))
            case("hinge_%s_pred_%s" % (mtag, r),
                 lambda f, t, m=m, r=r: reduce(torch.clamp(m - t * f, min=0), r), list(hinge_inputs(m)),
                 grads=[0])
    for r in REDS:
        case("mse_pred_" + r, lambda a, b, r=r: F.mse_loss(a, b, reduction=r),
             [u(-2.0, 2.0, 3, 4), u(-2.0, 2.0, 3, 4)], grads=[0])
        case("bce_logits_pred_" + r, lambda a, b, r=r: F.binary_cross_entropy_with_logits(a, b, reduction=r),
             [u(-3.0, 3.0, 3, 4), u(0.05, 0.95, 3, 4)], grads=[0])
        case("perceptron_pred_" + r, lambda f, t, r=r: reduce(torch.clamp(-t * f, min=0), r),
             [push_away(u(-2.5, 2.5, 3, 4), 0.0, 0.2), pm1_pattern(3, 4)], grads=[0])
        case("logistic_pred_" + r, lambda f, t, r=r: reduce(F.softplus(-t * f), r),
             [u(-3.0, 3.0, 3, 4), pm1_pattern(3, 4)], grads=[0])
        for beta, btag in ((1.0, "b1"), (0.5, "b0_5")):
            case("sl1_%s_pred_%s" % (btag, r),
                 lambda a, b, beta=beta, r=r: F.smooth_l1_loss(a, b, beta=beta, reduction=r),
                 list(sl1_inputs(beta)), grads=[0])

    # ---- composites
    case("chain_mlp_i32", lambda x, w1, b1, w2, b2, t: F.cross_entropy(
        F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2), t.long()),
        [u(-1.5, 1.5, 6, 4), u(-0.8, 0.8, 8, 4), u(-0.3, 0.3, 8), u(-0.8, 0.8, 3, 8), u(-0.3, 0.3, 3),
         i32(0, 1, 2, 2, 1, 0)])
    case("attention",
         lambda q, k, v: torch.matmul(torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * 0.5, -1), v),
         [u(-1.0, 1.0, 2, 3, 4), u(-1.0, 1.0, 2, 5, 4), u(-1.0, 1.0, 2, 5, 3)])

    def chain_mix(x, b):  # broadcasting, reductions, shape ops, a loss (chain_fn of op_cases.h)
        h = F.gelu(x + b)                                   # [4,6] + [6]
        z = h - h.mean(0, keepdim=True)                     # [4,6]
        p = z.reshape(4, 2, 3).permute(1, 0, 2)             # [2,4,3]
        s = torch.exp(p * 0.3).sum(0)                       # [4,3]
        t = torch.tanh(z[:, 0:6:2])                         # [4,3]
        return F.softplus(-t * torch.log(s)).mean()         # logistic loss, mean
    case("chain_mix", chain_mix, [u(-1.0, 1.0, 4, 6), u(-1.0, 1.0, 6)])


def gen():
    # ---- elementwise binary (broadcasting)
    case("add_same", torch.add, [randn(3, 5), randn(3, 5)])
    case("add_bc", torch.add, [randn(4, 1, 3), randn(5, 1)])
    case("add_bc2", torch.add, [randn(3), randn(2, 3)])
    case("sub_same", torch.sub, [randn(2, 3, 4), randn(2, 3, 4)])
    case("sub_bc", torch.sub, [randn(4, 1, 3), randn(5, 1)])
    case("sub_bc2", torch.sub, [randn(2, 3), randn(3)])
    case("mul_same", torch.mul, [randn(3, 5), randn(3, 5)])
    case("mul_bc", torch.mul, [randn(4, 1, 3), randn(5, 1)])
    case("mul_bc2", torch.mul, [randn(3), randn(2, 3)])

    def denom(*s):  # |d| in [0.5, 2], either sign
        return uniform(0.5, 2.0, *s) * (torch.randint(0, 2, s) * 2 - 1).float()

    case("div_same", torch.div, [randn(3, 5), denom(3, 5)])
    case("div_bc", torch.div, [randn(4, 1, 3), denom(5, 1)])
    case("div_bc2", torch.div, [randn(3), denom(2, 3)])
    # maximum: values on a grid with distinct entries -> no ties (gap >= 0.03)
    a, b = randn(3, 5), randn(3, 5)
    b = torch.where((a - b).abs() < 0.05, b + 0.1, b)
    case("maximum_same", torch.maximum, [a, b])
    a, b = randn(4, 1, 3), randn(5, 1)
    for _ in range(100):
        if ((a - b).abs() >= 0.05).all():
            break
        a = randn(4, 1, 3)
    assert ((a - b).abs() >= 0.05).all()
    case("maximum_bc", torch.maximum, [a, b])
    case("add_scalar", lambda x: x + 0.75, [randn(2, 3, 4)])
    case("mul_scalar", lambda x: x * -1.5, [randn(2, 3, 4)])

    # ---- elementwise unary
    case("neg", torch.neg, [randn(3, 5)])
    case("exp", torch.exp, [randn(3, 5)])
    case("log", torch.log, [uniform(0.1, 3.0, 3, 5)])
    case("sqrt", torch.sqrt, [uniform(0.1, 3.0, 2, 3, 4)])
    case("pow_2_5", lambda x: x ** 2.5, [uniform(0.1, 2.0, 3, 5)])
    case("pow_3", lambda x: x ** 3, [randn(3, 5)])
    case("abs", torch.abs, [avoid(randn(3, 5), [0.0], 0.05)])
    case("clamp", lambda x: torch.clamp(x, -0.5, 0.7), [avoid(randn(3, 7), [-0.5, 0.7], 0.03)])
    case("sigmoid", torch.sigmoid, [randn(3, 5) * 3])
    case("tanh", torch.tanh, [randn(3, 5) * 2])
    case("relu", F.relu, [avoid(randn(3, 5), [0.0], 0.05)])
    case("leaky_relu", lambda x: F.leaky_relu(x, 0.1), [avoid(randn(3, 5), [0.0], 0.05)])
    case("elu_1", lambda x: F.elu(x, 1.0), [avoid(randn(3, 5) * 2, [0.0], 0.05)])
    case("elu_0_5", lambda x: F.elu(x, 0.5), [avoid(randn(3, 5) * 2, [0.0], 0.05)])
    case("gelu", lambda x: F.gelu(x, approximate="none"), [randn(3, 5) * 2])
    # softplus: inputs on both sides of the threshold (x*beta == threshold avoided)
    x = torch.cat([randn(10) * 3, torch.tensor([19.0, 19.9, 20.1, 21.0, 30.0])]).reshape(3, 5)
    case("softplus_b1_t20", lambda x: F.softplus(x, beta=1.0, threshold=20.0), [x])
    x = avoid(uniform(-4.0, 6.0, 3, 5), [2.5], 0.05)
    x[0, 0], x[0, 1] = 2.4, 2.6  # just below / above the threshold 5 / beta
    case("softplus_b2_t5", lambda x: F.softplus(x, beta=2.0, threshold=5.0), [x])

    # ---- matrix
    case("mm_2d", torch.matmul, [randn(3, 4), randn(4, 5)])
    case("mm_batched", torch.matmul, [randn(2, 3, 4), randn(2, 4, 5)])
    case("mm_bshared", torch.matmul, [randn(2, 3, 4), randn(4, 5)])
    case("linear", F.linear, [randn(6, 4), randn(3, 4), randn(3)])
    case("linear_3d", F.linear, [randn(2, 3, 4), randn(3, 4), randn(3)])
    case("linear_nobias", F.linear, [randn(6, 4), randn(3, 4)])

    # ---- reductions
    case("sum", torch.sum, [randn(3, 5)])
    case("mean", torch.mean, [randn(2, 3, 4)])
    case("sum_ax1_keep", lambda x: x.sum(1, keepdim=True), [randn(2, 3, 4)])
    case("sum_ax1", lambda x: x.sum(1), [randn(2, 3, 4)])
    case("mean_ax0", lambda x: x.mean(0), [randn(2, 3, 4)])
    case("mean_axm1", lambda x: x.mean(-1), [randn(2, 3, 4)])
    # max: a random permutation of a grid -> no ties (values 0.1 apart)
    case("max_ax1", lambda x: x.max(1).values,
         [(torch.randperm(30).float() * 0.1 - 1.5).reshape(2, 5, 3)])
    case("max_axm1_keep", lambda x: x.max(-1, keepdim=True).values,
         [(torch.randperm(35).float() * 0.1 - 1.7).reshape(5, 7)])
    case("softmax_axm1", lambda x: torch.softmax(x, -1), [randn(2, 3, 5) * 2])
    case("softmax_ax0", lambda x: torch.softmax(x, 0), [randn(3, 2, 5) * 2])
    case("log_softmax_axm1", lambda x: torch.log_softmax(x, -1), [randn(2, 3, 5) * 2])
    case("log_softmax_ax0", lambda x: torch.log_softmax(x, 0), [randn(3, 2, 5) * 2])

    # ---- shape
    case("reshape", lambda x: x.reshape(4, -1), [randn(2, 3, 4)])
    case("transpose01", lambda x: x.transpose(0, 1), [randn(2, 3, 4)])
    case("permute201", lambda x: x.permute(2, 0, 1), [randn(2, 3, 4)])
    case("slice", lambda x: x[:, 1:5:2], [randn(3, 6, 2)])
    case("concat", lambda a, b, c: torch.cat([a, b, c], 1),
         [randn(2, 1, 3), randn(2, 4, 3), randn(2, 2, 3)])
    case("stack_ax0", lambda a, b, c: torch.stack([a, b, c], 0), [randn(3, 4), randn(3, 4), randn(3, 4)])
    case("stack_ax2", lambda a, b, c: torch.stack([a, b, c], 2), [randn(2, 3), randn(2, 3), randn(2, 3)])
    case("index_select_ax0", lambda x, i: torch.index_select(x, 0, i),
         [randn(5, 3), torch.tensor([4, 0, 4, 2, 4, 1])])
    case("index_select_ax1", lambda x, i: torch.index_select(x, 1, i),
         [randn(2, 5, 3), torch.tensor([1, 1, 3])])
    case("gather", lambda x, i: torch.gather(x, 1, i),
         [randn(3, 5), torch.randint(0, 5, (3, 4))])

    # ---- losses
    x, t = randn(7, 5) * 2, torch.randint(0, 5, (7,))
    for r in REDS:
        case("ce_" + r, lambda x, t: F.cross_entropy(x, t, reduction=r), [x, t])
    t2 = t.clone()
    t2[1], t2[4] = -100, -100
    for r in REDS:
        case("ce_ign_" + r, lambda x, t: F.cross_entropy(x, t, reduction=r), [x, t2])
    x, t = randn(7, 5) * 2, torch.randint(0, 5, (7,))
    for r in REDS:
        case("nll_" + r, lambda x, t: F.nll_loss(torch.log_softmax(x, 1), t, reduction=r), [x, t])
    a, b = randn(3, 5), randn(3, 5)
    for r in REDS:
        case("mse_" + r, lambda a, b: F.mse_loss(a, b, reduction=r), [a, b])
    a, b = randn(3, 5) * 3, torch.rand(3, 5)
    for r in REDS:
        case("bce_logits_" + r,
             lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=r), [a, b])
    for m, tag in ((1.0, "m1"), (0.5, "m0_5")):
        # no zero margins: |margin - x[y] + x[i]| >= 0.02 for every i != y
        for _ in range(1000):
            x, t = randn(7, 5), torch.randint(0, 5, (7,))
            z = m - x.gather(1, t[:, None]) + x
            z[torch.arange(7), t] = 1.0
            if (z.abs() >= 0.02).all():
                break
        else:
            raise RuntimeError("multi_margin: no kink-free draw")
        for r in REDS:
            case("mmargin_%s_%s" % (tag, r),
                 lambda x, t: F.multi_margin_loss(x, t, p=1, margin=m, reduction=r), [x, t])
    for beta, tag in ((1.0, "b1"), (0.5, "b0_5")):
        a = randn(3, 5) * 1.5
        d = avoid(randn(3, 5) * 1.5, [-beta, 0.0, beta], 0.03)
        b = a - d
        for r in REDS:
            case("sl1_%s_%s" % (tag, r),
                 lambda a, b: F.smooth_l1_loss(a, b, beta=beta, reduction=r), [a, b])

    def pm1(*s):
        return (torch.randint(0, 2, s) * 2 - 1).float()

    # hinge / perceptron / logistic: PyTorch has no op; t in {-1, +1}, both f and
    # t get gradients. f is drawn so that t*f avoids the kinks at margin and 0.
    t = pm1(3, 5)
    f = avoid(randn(3, 5) * 1.5, [-1.0, -0.5, 0.0, 0.5, 1.0], 0.03)
    for r in REDS:
        case("hinge_m1_" + r, lambda f, t: reduce(torch.clamp(1.0 - t * f, min=0), r), [f, t])
    case("hinge_m0_5_mean", lambda f, t: reduce(torch.clamp(0.5 - t * f, min=0), "mean"), [f, t])
    for r in REDS:
        case("perceptron_" + r, lambda f, t: reduce(torch.clamp(-t * f, min=0), r), [f, t])
    f = randn(3, 5) * 3
    f[0, 0], f[0, 1] = 25.0, -25.0  # exp overflow guard region
    for r in REDS:
        case("logistic_" + r, lambda f, t: reduce(F.softplus(-t * f), r), [f, t])

    # ---- extras: graph reuse, chains, negative axes, clipping, large values
    case("mul_self", lambda x: x * x, [randn(3, 5)])
    case("reuse", lambda x: (lambda y: y * y + y)(torch.exp(x)), [randn(2, 3, 4) * 0.5])
    case("chain_mlp", lambda x, w1, b1, w2, b2, t: F.cross_entropy(
        F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2), t),
        [randn(5, 4), randn(6, 4) * 0.5, randn(6), randn(3, 6) * 0.5, randn(3),
         torch.randint(0, 3, (5,))])
    case("slice_neg", lambda x: x[..., -4:-1], [randn(2, 3, 6)])
    case("slice_clip", lambda x: x[:, 0:100:3], [randn(3, 7)])
    case("stack_axm1", lambda a, b: torch.stack([a, b], -1), [randn(2, 3), randn(2, 3)])
    case("transpose_neg", lambda x: x.transpose(-1, 0), [randn(2, 3, 4)])
    case("sum_ax_size1", lambda x: x.sum(1), [randn(3, 1, 4)])
    case("pow_m1", lambda x: x ** -1.0, [uniform(0.5, 2.0, 3, 5)])
    case("pow_0_5", lambda x: x ** 0.5, [uniform(0.1, 2.0, 3, 5)])
    big = torch.tensor([[-90.0, -30.0, -10.0, 0.5, 10.0], [30.0, 90.0, -0.3, 2.0, -2.0],
                        [15.0, -15.0, 45.0, -45.0, 1.0]])
    case("sigmoid_big", torch.sigmoid, [big])
    case("tanh_big", torch.tanh, [big])
    case("softplus_big", F.softplus, [big])
    case("elu_big", F.elu, [big])
    case("gelu_big", lambda x: F.gelu(x, approximate="none"), [big / 10])
    case("softmax_big", lambda x: torch.softmax(x, -1), [randn(3, 5) * 50])
    case("log_softmax_big", lambda x: torch.log_softmax(x, 0), [randn(3, 5) * 50])
    case("ce_big_mean", lambda x, t: F.cross_entropy(x, t), [randn(7, 5) * 50,
                                                            torch.randint(0, 5, (7,))])
    case("bce_logits_big_mean", lambda a, b: F.binary_cross_entropy_with_logits(a, b),
         [big, torch.rand(3, 5)])

    # ---- ops for attention, memory and RL (appended: the draws above stay as they were)
    # log-softmax accuracy at |x| ~ 100: reference computed in float64, rounded to float32
    case("log_softmax_100", lambda x: torch.log_softmax(x.double(), -1).float(), [100 + randn(5, 7) * 2])
    case("log_softmax_m100_ax0", lambda x: torch.log_softmax(x.double(), 0).float(),
         [-100 + randn(7, 5) * 2])
    case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [randn(3, 7) * 2])

    def mmt(ta, tb):
        return lambda a, b: torch.matmul(a.transpose(-2, -1) if ta else a, b.transpose(-2, -1) if tb else b)

    case("mm_t_ta", mmt(True, False), [randn(4, 3), randn(4, 5)])
    case("mm_t_tb", mmt(False, True), [randn(3, 4), randn(5, 4)])
    case("mm_t_tatb", mmt(True, True), [randn(4, 3), randn(5, 4)])
    case("mm_t_batched_tb", mmt(False, True), [randn(2, 3, 4), randn(2, 5, 4)])
    case("mm_t_batched_tatb", mmt(True, True), [randn(2, 4, 3), randn(2, 5, 4)])
    case("mm_t_bshared_ta", mmt(True, False), [randn(2, 4, 3), randn(4, 5)])
    case("mm_t_bshared_tb", mmt(False, True), [randn(2, 3, 4), randn(5, 4)])
    case("mm_bc4d", torch.matmul, [randn(2, 1, 3, 4), randn(1, 3, 4, 5)])
    case("mm_bc4d_tatb", mmt(True, True), [randn(2, 1, 4, 3), randn(3, 5, 4)])
    case("mm_bc4d_heads_tb", mmt(False, True), [randn(2, 3, 5, 4), randn(2, 1, 5, 4)])
    case("mm_bc_ashared", torch.matmul, [randn(3, 4), randn(2, 4, 5)])
    case("mm_bc_ashared_ta", mmt(True, False), [randn(1, 4, 3), randn(2, 4, 5)])
    case("mm_bc_size1", torch.matmul, [randn(1, 3, 4), randn(3, 2, 4, 5)])
    case("mm_bc4d_bshared", torch.matmul, [randn(2, 3, 3, 4), randn(1, 4, 5)])
    case("mm_vec_shapes", torch.matmul, [randn(3, 1, 7), randn(7, 1)])
    case("mm_self_tb", lambda a: torch.matmul(a, a.transpose(-2, -1)), [randn(2, 3, 4)])
    case("bmm", torch.bmm, [randn(3, 2, 4), randn(3, 4, 5)])

    def mask(*s):  # I64 0/1, about half set
        return torch.randint(0, 2, s)

    case("masked_fill_same", lambda a, m: a.masked_fill(m.bool(), 0.5), [randn(3, 5), mask(3, 5)])
    case("masked_fill_bc", lambda a, m: a.masked_fill(m.bool(), -2.0), [randn(2, 3, 4), mask(3, 1)])
    case("masked_fill_a_bc", lambda a, m: a.masked_fill(m.bool(), 3.0), [randn(4), mask(3, 4)])
    case("masked_fill_i32", lambda a, m: a.masked_fill(m.bool(), 0.0),
         [randn(2, 5), mask(1, 5).to(torch.int32)])
    m = mask(3, 4).float() * torch.tensor([1.0, -2.5, 0.5, 7.0])
    case("masked_fill_f32mask", lambda a, m: a.masked_fill(m != 0, 1.25), [randn(3, 4), m], grads=[0])
    case("masked_fill_ninf", lambda a, m: a.masked_fill(m.bool(), float("-inf")), [randn(3, 5), mask(3, 5)])
    causal = torch.triu(torch.ones(4, 4, dtype=torch.int64), diagonal=1)  # mask the future
    case("masked_fill_ninf_softmax", lambda a, m: torch.softmax(a.masked_fill(m.bool(), float("-inf")), -1),
         [randn(2, 4, 4), causal])
    case("where_same", lambda c, a, b: torch.where(c.bool(), a, b), [mask(3, 4), randn(3, 4), randn(3, 4)])
    case("where_bc", lambda c, a, b: torch.where(c.bool(), a, b), [mask(3, 1), randn(1, 4), randn(2, 3, 4)])
    case("where_cond_bc", lambda c, a, b: torch.where(c.bool(), a, b), [mask(2, 3, 4), randn(4), randn(3, 1)])
    c = mask(2, 3).float() * torch.tensor([1.0, -0.5, 3.0])
    case("where_f32cond", lambda c, a, b: torch.where(c != 0, a, b), [c, randn(2, 3), randn(1)], grads=[1, 2])
    case("where_same_input", lambda c, a: torch.where(c.bool(), a, a * 1), [mask(3, 4), randn(3, 4)])
    case("pow_t_same", torch.pow, [uniform(0.3, 2.0, 3, 5), randn(3, 5)])
    case("pow_t_bc", torch.pow, [uniform(0.3, 2.0, 2, 1, 4), randn(3, 1)])
    case("pow_t_bc_exp", torch.pow, [uniform(0.3, 2.0, 3, 4), randn(4)])
    # a < 0 with integer exponents: finite values, d/da only (d/db is NaN there)
    case("pow_t_neg_base_int_exp", torch.pow,
         [-uniform(0.3, 2.0, 3, 4), torch.randint(-2, 4, (3, 4)).float()], grads=[0])
    # a == 0 with b >= 0: both gradients 0 by PyTorch's convention, except
    # d/da = 1 at b == 1 (no finite differences: a^b is undefined for a < 0)
    case("pow_t_zero_base", torch.pow, [torch.tensor([0.0, 0.0, 0.0, 0.0, 1.5, 0.7]),
                                        torch.tensor([0.0, 1.0, 2.0, 2.5, 0.0, 3.0])])
    case("pow_t_self", lambda a: torch.pow(a, a), [uniform(0.3, 2.0, 2, 3)])

    def signed(lo, hi, *s):  # |x| in [lo, hi], either sign
        return uniform(lo, hi, *s) * (torch.randint(0, 2, s) * 2 - 1).float()

    case("cumsum_ax1", lambda x: torch.cumsum(x, 1), [randn(3, 5, 2)])
    case("cumsum_axm1", lambda x: torch.cumsum(x, -1), [randn(4, 7)])
    case("cumsum_size1", lambda x: torch.cumsum(x, 0), [randn(1, 4)])
    case("cumprod_ax1", lambda x: torch.cumprod(x, 1), [signed(0.5, 1.5, 3, 6, 2)])
    case("cumprod_axm1", lambda x: torch.cumprod(x, -1), [signed(0.5, 1.5, 4, 5)])
    # zeros: one in the middle, two, one first, one last, none
    x = signed(0.5, 1.5, 5, 6)
    x[0, 2] = 0
    x[1, 1], x[1, 4] = 0, 0
    x[2, 0] = 0
    x[3, 5] = 0
    case("cumprod_zeros", lambda x: torch.cumprod(x, -1), [x])
    x = signed(0.5, 1.5, 4, 3, 2)
    x[1, 0, 0], x[3, 0, 0], x[2, 1, 1], x[0, 2, 0] = 0, 0, 0, 0
    case("cumprod_zeros_ax0", lambda x: torch.cumprod(x, 0), [x])

    def grid(*s):  # a permutation of a grid 0.1 apart: no ties, no near-ties
        n = 1
        for d in s:
            n *= d
        return (torch.randperm(n).float() * 0.1 - 0.05 * n).reshape(*s)

    def sortv(axis, desc):
        return lambda x: torch.sort(x, dim=axis, descending=desc, stable=True).values

    def sorti(axis, desc):
        return lambda x: torch.sort(x, dim=axis, descending=desc, stable=True).indices

    case("sort_ax1", sortv(1, False), [grid(3, 5, 2)])
    case("sort_desc_axm1", sortv(-1, True), [grid(4, 6)])
    case("sort_size1", sortv(1, True), [grid(3, 1, 2)])
    case("sort_idx_ax1", sorti(1, False), [grid(3, 5, 2)], grads=[])
    ties = torch.randint(0, 4, (4, 7)).float() * 0.5  # many equal values
    case("sort_ties", sortv(-1, False), [ties])  # gradient through the stable indices
    case("sort_ties_idx", sorti(-1, False), [ties], grads=[])
    case("sort_ties_desc_idx", sorti(0, True), [torch.randint(0, 3, (6, 3)).float()], grads=[])
    case("argsort_ties", lambda x: torch.argsort(x, dim=-1, stable=True), [ties], grads=[])
    case("argsort_desc_ax0", lambda x: torch.argsort(x, dim=0, descending=True, stable=True),
         [torch.randint(0, 3, (6, 3)).float()], grads=[])
    x = grid(3, 7)
    case("topk_largest", lambda x: torch.topk(x, 3, -1, largest=True).values, [x])
    case("topk_largest_idx", lambda x: torch.topk(x, 3, -1, largest=True).indices, [x], grads=[])
    x = grid(6, 4)
    case("topk_smallest_ax0", lambda x: torch.topk(x, 2, 0, largest=False).values, [x])
    case("topk_smallest_idx", lambda x: torch.topk(x, 2, 0, largest=False).indices, [x], grads=[])
    case("topk_k_all", lambda x: torch.topk(x, 5, 1).values, [grid(2, 5, 3)])
    case("topk_k1", lambda x: torch.topk(x, 1, -1).values, [grid(4, 5)])

    def cos(axis, eps):
        return lambda a, b: F.cosine_similarity(a, b, dim=axis, eps=eps)

    case("cos_sim_ax1", cos(1, 1e-8), [randn(4, 5), randn(4, 5)])
    case("cos_sim_ntm_bc", cos(-1, 1e-8), [randn(2, 1, 6), randn(2, 4, 6)])  # key vs memory rows
    case("cos_sim_ax0", cos(0, 1e-8), [randn(5, 3), randn(5, 3)])
    case("cos_sim_bc_ax0", cos(0, 1e-8), [randn(5, 1), randn(5, 3)])
    case("cos_sim_1d", cos(0, 1e-8), [randn(6), randn(6)])
    def norms_in(lo, hi, *s):  # rows along the last axis with norms in [lo, hi]
        x = randn(*s)
        return x / x.norm(dim=-1, keepdim=True) * uniform(lo, hi, *s[:-1], 1)

    case("cos_sim_eps_0_5", cos(-1, 0.5), [norms_in(0.6, 2.0, 3, 4), norms_in(0.6, 2.0, 3, 4)])
    # norms below eps = 0.1 (and a zero row): PyTorch 1.13's gradient convention
    a, b = randn(4, 5), randn(4, 5)
    a[0] *= 0.01
    b[1] *= 0.02
    a[2] = 0
    case("cos_sim_below_eps", cos(1, 0.1), [a, b])

    def circ(axis):  # out[i] = sum_j w[(i - o_j) mod N] s[j], o_j = j - (K-1)/2
        def f(w, s):
            K = s.shape[axis]
            return sum(torch.roll(w, shifts=j - (K - 1) // 2, dims=axis) * s.narrow(axis, j, 1)
                       for j in range(K))
        return f

    case("circ_conv_k3", circ(-1), [randn(2, 7), randn(2, 3)])
    case("circ_conv_k1", circ(1), [randn(3, 4), randn(3, 1)])
    case("circ_conv_k5_n5", circ(-1), [randn(2, 5), randn(2, 5)])
    case("circ_conv_ax0", circ(0), [randn(6, 2), randn(3, 2)])
    case("circ_conv_3d", circ(1), [randn(2, 5, 3), randn(2, 3, 3)])
    case("circ_conv_ntm", lambda w, s: circ(-1)(torch.softmax(w, -1), torch.softmax(s, -1)),
         [randn(2, 8), randn(2, 3)])
    case("outer_1d", torch.outer, [randn(4), randn(3)])
    case("outer_batched", lambda a, b: torch.einsum("bm,bn->bmn", a, b), [randn(2, 4), randn(2, 3)])
    case("outer_size1", torch.outer, [randn(1), randn(5)])
    case("outer_self", lambda a: torch.outer(a, a), [randn(3)])

    def mm_draw(m):  # no zero margins: |margin - x[y] + x[i]| >= 0.02 for every i != y
        for _ in range(1000):
            x, t = randn(7, 5), torch.randint(0, 5, (7,))
            z = m - x.gather(1, t[:, None]) + x
            z[torch.arange(7), t] = 1.0
            if (z.abs() >= 0.02).all():
                return x, t
        raise RuntimeError("multi_margin: no kink-free draw")

    x, t = mm_draw(1.0)
    for r in REDS:
        case("mmargin_p2_m1_" + r, lambda x, t: F.multi_margin_loss(x, t, p=2, margin=1.0, reduction=r), [x, t])
    x, t = mm_draw(0.5)
    w = uniform(0.5, 2.0, 5)
    for r in REDS:
        case("mmargin_p2_w_m0_5_" + r,
             lambda x, t, w: F.multi_margin_loss(x, t, p=2, margin=0.5, weight=w, reduction=r), [x, t, w],
             grads=[0])
    x, t = mm_draw(1.0)
    case("mmargin_p1_w_mean", lambda x, t, w: F.multi_margin_loss(x, t, p=1, margin=1.0, weight=w),
         [x, t, w], grads=[0])

    # ---- attention (include/cortex/attention.h; appended: the draws above stay as they were)
    gen_attention()

    # ---- spatial transformer: affine_grid, grid_sample (bilinear, zeros), both align_corners
    # Own seed: these rows do not depend on the draws above. Grid points sit at
    # least 0.2 pixel from integer pixel coordinates (the kinks of bilinear
    # interpolation and of the zero padding), except in the *_kinks rows and
    # stn_identity_same_ac1 (NOGC: PyTorch's one-sided gradients at the kinks).
    torch.manual_seed(20150605)

    def norm_of_px(px, size, ac):  # pixel coordinate -> normalised grid coordinate
        if ac:
            return 2.0 * px / (size - 1) - 1.0 if size > 1 else px * 0.0
        return (2.0 * px + 1.0) / size - 1.0

    def rand_px(size, *s):  # integer part in [-2, size], fraction in [0.2, 0.8]
        return torch.randint(-2, size + 1, s).double() + uniform(0.2, 0.8, *s).double()

    def rand_grid(N, Ho, Wo, H, W, ac):
        gx = norm_of_px(rand_px(W, N, Ho, Wo), W, ac)
        gy = norm_of_px(rand_px(H, N, Ho, Wo), H, ac)
        return torch.stack([gx, gy], -1).float()

    def gs(ac):
        return lambda x, g: F.grid_sample(x, g, mode="bilinear", padding_mode="zeros", align_corners=ac)

    def ag(size, ac):
        return lambda t: F.affine_grid(t, size, align_corners=ac)

    def stn(size, ac):  # grid_sample(x, affine_grid(theta)): gradients to x and theta
        return lambda x, t: gs(ac)(x, F.affine_grid(t, size, align_corners=ac))

    def affine(deg, scale, tx, ty):  # rotation by deg, isotropic scale, translation
        a = torch.tensor(deg, dtype=torch.float64) * torch.pi / 180
        return torch.tensor([[scale * torch.cos(a), -scale * torch.sin(a), tx],
                             [scale * torch.sin(a), scale * torch.cos(a), ty]], dtype=torch.float64)

    def off_kinks(theta, size, in_hw, ac, eps, jitter=0.05):
        """Move the translations of theta (by up to `jitter` at a time) until
        every grid point stays farther from an integer pixel coordinate of the
        input (in_hw = its H, W) than the finite-difference step of any theta
        entry moves it. size: the output size given to affine_grid."""
        N = size[0]
        H, W = in_hw
        for _ in range(2000):
            g = F.affine_grid(theta.double(), size, align_corners=ac)
            base = F.affine_grid(torch.eye(2, 3, dtype=torch.float64).expand(N, 2, 3), size, align_corners=ac)
            reach = eps * (base.abs().sum(-1) + 1)  # |d grid| for a step eps of one theta entry
            sc = torch.tensor([(W - 1) / 2 if ac else W / 2, (H - 1) / 2 if ac else H / 2], dtype=torch.float64)
            px = (g + 1) * sc - (0 if ac else 0.5)
            frac = px - px.floor()
            dist = torch.minimum(frac, 1 - frac)
            ok = (dist > reach[..., None] * sc + 0.01).reshape(N, -1).all(1)  # per image
            if ok.all():
                return theta.float()
            if jitter == 0:
                raise RuntimeError("off_kinks: a grid point of this theta sits on a kink")
            theta = theta.clone()
            theta[:, :, 2] += uniform(-jitter, jitter, N, 2).double() * (~ok).double()[:, None]
        raise RuntimeError("off_kinks: no kink-free translation")

    case("affine_grid_ac0", ag((2, 3, 5, 4), False), [randn(2, 2, 3)])
    case("affine_grid_ac1", ag((2, 1, 4, 6), True), [randn(2, 2, 3)])
    case("affine_grid_h1_ac0", ag((1, 1, 1, 5), False), [randn(1, 2, 3)])
    case("affine_grid_w1_ac1", ag((3, 2, 3, 1), True), [randn(3, 2, 3)])
    case("grid_sample_ac0", gs(False), [randn(2, 3, 5, 7), rand_grid(2, 4, 6, 5, 7, False)])
    case("grid_sample_ac1", gs(True), [randn(2, 3, 6, 5), rand_grid(2, 3, 7, 6, 5, True)])
    case("grid_sample_c1_ac0", gs(False), [randn(3, 1, 4, 4), rand_grid(3, 5, 3, 4, 4, False)])
    case("grid_sample_h1_ac1", gs(True), [randn(1, 2, 1, 5), rand_grid(1, 2, 3, 1, 5, True)])
    case("grid_sample_h1_ac0", gs(False), [randn(2, 1, 1, 3), rand_grid(2, 3, 2, 1, 3, False)])
    # every point a pixel or more outside: zeros out, zero gradients
    px = torch.tensor([-3.3, -1.6, 5.2, 6.7, -2.4, 7.3]).double()
    g = torch.stack([norm_of_px(px.reshape(1, 2, 3), 5, False),
                     norm_of_px(px.flip(0).reshape(1, 2, 3) - 0.3, 4, False)], -1).float()
    case("grid_sample_outside_ac0", gs(False), [randn(1, 2, 4, 5), g])
    x, g = randn(2, 2, 5, 4), rand_grid(2, 3, 3, 5, 4, True)
    case("grid_sample_input_only_ac1", gs(True), [x, g], grads=[0])
    case("grid_sample_grid_only_ac1", gs(True), [x, g], grads=[1])
    # points exactly on pixel centres, borders and the edges of the padding
    # (exact in float: W = 5 / H = 3 with align_corners, W = 4 / H = 2 without)
    pxs = torch.tensor([-1.5, -1.0, -0.5, 0.0, 1.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 2.0]).double()
    pys = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 0.0, 1.0, -1.5]).double()
    g1 = torch.stack([norm_of_px(pxs, 5, True), norm_of_px(pys, 3, True)], -1).reshape(1, 3, 4, 2).float()
    case("grid_sample_kinks_ac1", gs(True), [randn(1, 2, 3, 5), g1])
    g0 = torch.stack([norm_of_px(pxs - 1, 4, False), norm_of_px(pys - 1, 2, False)], -1).reshape(1, 4, 3, 2)
    case("grid_sample_kinks_ac0", gs(False), [randn(1, 2, 2, 4), g0.float()])
    # the STN path: grid_sample(x, affine_grid(theta)), finite differences in theta
    # with eps 2e-3 (the rows' GCT), so off_kinks uses the same step
    # identity: with align_corners the corner pixels are read exactly at their
    # centres (kinks), so _ac1 differentiates x only and _same_ac1 is NOGC
    eye = torch.eye(2, 3).expand(2, 2, 3).contiguous()
    case("stn_identity_ac0", stn((2, 1, 4, 5), False),
         [randn(2, 1, 5, 6), off_kinks(eye.double(), (2, 1, 4, 5), (5, 6), False, 2e-3, jitter=0)])
    case("stn_identity_ac1", stn((2, 2, 4, 7), True), [randn(2, 2, 5, 5), eye], grads=[0])
    case("stn_identity_same_ac1", stn((1, 2, 3, 5), True), [randn(1, 2, 3, 5), torch.eye(2, 3)[None]])
    th = torch.stack([affine(30, 0.8, 0.1, -0.2), affine(-40, 1.1, -0.3, 0.15)])
    case("stn_rot_ac0", stn((2, 2, 5, 4), False), [randn(2, 2, 6, 5), off_kinks(th, (2, 2, 5, 4), (6, 5), False, 2e-3)])
    th = torch.stack([affine(45, 1.0, 0.0, 0.05), affine(-15, 0.9, 0.2, 0.1)])
    case("stn_rot_ac1", stn((2, 1, 7, 6), True), [randn(2, 1, 5, 5), off_kinks(th, (2, 1, 7, 6), (5, 5), True, 2e-3)])
    th = torch.stack([affine(0, 0.6, 0.2, -0.1), affine(10, 1.6, -0.1, 0.05)])  # zoom in / zoom out
    case("stn_scale_ac0", stn((2, 1, 6, 6), False), [randn(2, 1, 7, 7), off_kinks(th, (2, 1, 6, 6), (7, 7), False, 2e-3)])
    th = torch.stack([affine(0, 1.0, 0.8, -0.6), affine(-20, 1.0, -0.9, 0.7)])  # half outside
    case("stn_translate_out_ac1", stn((2, 3, 5, 6), True),
         [randn(2, 3, 5, 6), off_kinks(th, (2, 3, 5, 6), (5, 6), True, 2e-3)])


def ref_attention(q, k, v, kpm=None, am=None, causal=False, scale=None):
    """Cortex's scaled dot-product attention: PyTorch's formula
    softmax(q k^T * scale + mask) v, with a FULLY MASKED ROW defined as zero
    weights and a zero output (PyTorch 1.13 gives NaN there) and no gradient
    from it. Boolean masks (int64, non-zero = masked) as nn.MultiheadAttention's
    (True = masked); float masks are added. kpm [B, Tk] indexes the first batch
    dimension (or [Tk]); am [Tq, Tk], [N, Tq, Tk] (N = batch matrices) or
    [batch..., Tq, Tk]. Returns (out, weights)."""
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = torch.matmul(q, k.transpose(-2, -1)) * sc
    bshape, (Tq, Tk) = s.shape[:-2], s.shape[-2:]
    nbd = len(bshape)
    masked = torch.zeros(s.shape, dtype=torch.bool)
    if am is not None:
        a = am if am.dim() == 2 else am.reshape(*bshape, Tq, Tk)
        if am.is_floating_point():
            s = s + a
        else:
            masked = masked | a.bool()
    if kpm is not None:
        kk = kpm.reshape(Tk) if kpm.dim() == 1 else kpm.reshape(kpm.shape[0], *([1] * (nbd - 1)), 1, Tk)
        if kpm.is_floating_point():
            s = s + kk
        else:
            masked = masked | kk.bool()
    if causal:
        masked = masked | torch.triu(torch.ones(Tq, Tk, dtype=torch.bool), 1)
    s = s.masked_fill(masked, float("-inf"))
    full = (s == float("-inf")).all(-1, keepdim=True)
    p = torch.softmax(s.masked_fill(full, 0.0), -1).masked_fill(full, 0.0)
    return torch.matmul(p, v), p


def gen_attention():
    """Rows of the fused attention op (cx_attention), Luong's general and
    Bahdanau's additive attention. ATT(kpm, mask, causal, scale, what) of
    op_cases.h: what = out, weights, or both (torch.cat of both flattened: the
    gradient flows through both outputs). Scale None = 1/sqrt(d). Masks:
    int64 boolean (non-zero = masked), float additive. Where PyTorch 1.13's
    F._scaled_dot_product_attention applies (default scale, no fully masked
    row) the reference is checked against it here (its boolean mask means
    "take part": the mask is inverted for it).

    case                         q / k / v                        masks, options
    ---------------------------  -------------------------------  ---------------------------------
    attn_3d / _4d_heads          [2,3,4]/[2,5,4]/[2,5,3]; [2,3,5,4]/[2,3,7,4]/[2,3,7,6]
    attn_t1 / _tq1 / _2d         Tq = Tk = 1; Tq = 1 (a decoder step); no batch dimension
    attn_scale1 / _0_3 / _nan    scale 1 (dot product) / 0.3 / NAN (= default)
    attn_weights / attn_both     the weights output (no gradient to v); out and weights (key padding)
    attn_kpm / _4d / _1d / _f32  key_padding_mask [B,Tk] I64; on 4-D; [Tk]; float (-inf and finite)
    attn_causal / _tq_lt_tk / _tq_gt_tk   causal, Tq = Tk, Tq < Tk, Tq > Tk (top-left aligned)
    attn_mask_{bool,f32}_{2d,3d} attn_mask [Tq,Tk] / [B*H,Tq,Tk]; attn_mask_4d: [B,H,Tq,Tk] I64
    attn_all_masks               key padding + boolean attn_mask + causal, both outputs
    attn_full_row_{kpm,mask,causal}  fully masked rows: zero weights, zero output, zero gradient
    attn_bc_kv / attn_bc_2d_kv   keys and values shared by the heads [2,1,6,4] / by the batch [5,4]
    attn_self                    cx_attention(x, x, x)
    attn_q_only / attn_kv_only   gradient of q only / of k and v only
    attn_par / attn_par_bc       enough work for the threaded loop (6 batch matrices, 19x21x16)
    attn_general[_kpm]           Luong general: (q @ W) k^T, scale 1 / default with kpm, both outputs
    attn_additive[_t1, _empty]   Bahdanau: e = tanh(h W1^T + s W2^T) v, masked softmax, ctx = a h;
    attn_additive_pre[_t1]       the same with hp = h W1^T given (cx_additive_attention_pre);
                                 ctx and weights; T = 1; one sequence fully padded"""

    def both(o, w):
        return torch.cat([o.reshape(-1), w.reshape(-1)])

    def att(what="out", kpm=None, am=None, causal=False, scale=None, sdpa=True):
        def f(q, k, v, *masks):
            it = iter(masks)
            km = next(it) if kpm else None
            mm = next(it) if am else None
            o, w = ref_attention(q, k, v, km, mm, causal, scale)
            if sdpa and scale is None:  # PyTorch's own op agrees where it is defined
                bm = None
                if mm is not None and not mm.is_floating_point():
                    bm = ~mm.bool()
                    if mm.dim() == 3:
                        bm = bm.reshape(*o.shape[:-2], *bm.shape[-2:])
                elif mm is not None:
                    bm = mm if mm.dim() == 2 else mm.reshape(*o.shape[:-2], *mm.shape[-2:])
                full_row = bool((w.sum(-1) == 0).any())
                if km is None and not (causal and bm is not None) and not full_row:
                    o2, w2 = F._scaled_dot_product_attention(q, k, v, bm, 0.0, True, causal)
                    assert torch.allclose(o, o2, atol=1e-6) and torch.allclose(w, w2, atol=1e-6)
            return o if what == "out" else w if what == "weights" else both(o, w)
        return f

    def lengths_mask(B, T, lens):  # I64 [B, T]: 1 at padding (t >= length)
        return (torch.arange(T)[None, :] >= torch.tensor(lens)[:, None]).long()

    def bmask(*s):  # I64 0/1, about a third set
        return (torch.rand(*s) < 0.33).long()

    r = randn
    case("attn_3d", att(), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)])
    case("attn_4d_heads", att(), [r(2, 3, 5, 4), r(2, 3, 7, 4), r(2, 3, 7, 6)])
    case("attn_t1", att(), [r(3, 1, 4), r(3, 1, 4), r(3, 1, 2)])
    case("attn_tq1", att(), [r(2, 1, 5), r(2, 6, 5), r(2, 6, 3)])
    case("attn_2d", att(), [r(3, 4), r(5, 4), r(5, 2)])
    case("attn_scale1", att(scale=1.0), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)])
    case("attn_scale_0_3", att(scale=0.3), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)])
    case("attn_scale_nan", att(), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)])
    case("attn_weights", att("weights"), [r(2, 3, 5, 4), r(2, 3, 6, 4), r(2, 3, 6, 3)], grads=[0, 1])
    case("attn_both", att("both", kpm=True), [r(2, 3, 5, 4), r(2, 3, 6, 4), r(2, 3, 6, 3),
                                               lengths_mask(2, 6, [6, 4])])
    case("attn_kpm", att(kpm=True), [r(3, 4, 5), r(3, 6, 5), r(3, 6, 3), lengths_mask(3, 6, [6, 4, 2])])
    case("attn_kpm_4d", att(kpm=True), [r(2, 3, 4, 5), r(2, 3, 5, 5), r(2, 3, 5, 2), lengths_mask(2, 5, [3, 5])])
    case("attn_kpm_1d", att(kpm=True), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3), torch.tensor([0, 1, 0, 0, 1])])
    kf = r(2, 5) * 0.5
    kf[0, 4], kf[1, 0] = float("-inf"), float("-inf")
    case("attn_kpm_f32", att(kpm=True), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3), kf], grads=[0, 1, 2])
    case("attn_causal", att(causal=True), [r(2, 5, 4), r(2, 5, 4), r(2, 5, 3)])
    case("attn_causal_tq_lt_tk", att(causal=True), [r(2, 3, 4), r(2, 6, 4), r(2, 6, 3)])
    case("attn_causal_tq_gt_tk", att(causal=True), [r(2, 6, 4), r(2, 4, 4), r(2, 4, 3)])
    m = bmask(4, 3)
    m[:, 0] = 0  # no fully masked row here
    case("attn_mask_bool_2d", att(am=True), [r(2, 2, 4, 3), r(2, 2, 3, 3), r(2, 2, 3, 5), m])
    mf = r(4, 5) * 0.7
    mf[0, 1], mf[2, 3], mf[3, 0] = float("-inf"), float("-inf"), float("-inf")
    case("attn_mask_f32_2d", att(am=True), [r(2, 4, 3), r(2, 5, 3), r(2, 5, 2), mf], grads=[0, 1, 2])
    m = bmask(6, 4, 5)
    m[..., 2] = 0
    case("attn_mask_bool_3d", att(am=True), [r(2, 3, 4, 3), r(2, 3, 5, 3), r(2, 3, 5, 4), m])
    case("attn_mask_f32_3d", att(am=True), [r(2, 3, 4, 3), r(2, 3, 5, 3), r(2, 3, 5, 4), r(6, 4, 5)],
         grads=[0, 1, 2])
    m = bmask(2, 3, 4, 5)
    m[..., 1] = 0
    case("attn_mask_4d", att(am=True), [r(2, 3, 4, 3), r(2, 3, 5, 3), r(2, 3, 5, 4), m])
    m = bmask(5, 5)
    m[:, 0] = 0
    case("attn_all_masks", att("both", kpm=True, am=True, causal=True),
         [r(2, 2, 5, 3), r(2, 2, 5, 3), r(2, 2, 5, 4), lengths_mask(2, 5, [5, 3]), m])
    # fully masked rows: a zero-length source, a row of the mask all set, a
    # causal query before every unpadded key
    case("attn_full_row_kpm", att("both", kpm=True), [r(3, 2, 4), r(3, 4, 4), r(3, 4, 3),
                                                       lengths_mask(3, 4, [4, 0, 2])])
    m = bmask(3, 4)
    m[1, :] = 1
    m[0, :], m[2, 0] = 0, 0
    case("attn_full_row_mask", att("both", am=True), [r(2, 2, 3, 4), r(2, 2, 4, 4), r(2, 2, 4, 3), m])
    kp = torch.zeros(2, 4, dtype=torch.int64)
    kp[1, 0] = 1  # batch 1: query 0 may only see key 0, which is padding
    case("attn_full_row_causal", att("both", kpm=True, causal=True), [r(2, 4, 3), r(2, 4, 3), r(2, 4, 2), kp])
    case("attn_bc_kv", att(), [r(2, 3, 5, 4), r(2, 1, 6, 4), r(2, 1, 6, 3)])
    case("attn_bc_2d_kv", att(), [r(2, 3, 4), r(5, 4), r(5, 3)])
    case("attn_self", lambda x: both(*ref_attention(x, x, x)), [r(2, 4, 3)])
    case("attn_q_only", att(), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)], grads=[0])
    case("attn_kv_only", att(), [r(2, 3, 4), r(2, 5, 4), r(2, 5, 3)], grads=[1, 2])
    case("attn_par", att("both", kpm=True, causal=True),
         [r(2, 3, 19, 16) * 0.5, r(2, 3, 21, 16) * 0.5, r(2, 3, 21, 16), lengths_mask(2, 21, [21, 15])])
    case("attn_par_bc", att(), [r(2, 3, 19, 16) * 0.5, r(1, 3, 21, 16) * 0.5, r(1, 3, 21, 16)])

    def general(what, kpm, scale):
        def f(q, w, k, v, *mk):
            o, a = ref_attention(q @ w, k, v, mk[0] if kpm else None, None, False, scale)
            return o if what == "out" else both(o, a)
        return f

    case("attn_general", general("out", False, 1.0), [r(2, 3, 4), r(4, 5) * 0.5, r(2, 6, 5), r(2, 6, 3)])
    case("attn_general_kpm", general("both", True, None),
         [r(2, 3, 4), r(4, 5) * 0.5, r(2, 6, 5), r(2, 6, 3), lengths_mask(2, 6, [6, 3])])

    def additive(h, s, w1, w2, v, *mk):  # Bahdanau: ctx and weights
        e = torch.tanh(h @ w1.T + (s @ w2.T)[:, None, :]) @ v                      # [B, T]
        mask = mk[0].bool() if mk else torch.zeros(e.shape, dtype=torch.bool)
        e = e.masked_fill(mask, float("-inf"))
        full = mask.all(-1, keepdim=True)
        a = torch.softmax(e.masked_fill(full, 0.0), -1).masked_fill(full, 0.0)  # [B, T]
        ctx = (a[:, :, None] * h).sum(1)                                          # [B, Dh]
        return both(ctx, a)

    def add_in(B, T, Dh, Ds, A):
        return [r(B, T, Dh), r(B, Ds), r(A, Dh) * 0.5, r(A, Ds) * 0.5, r(A)]

    case("attn_additive", additive, add_in(3, 5, 4, 3, 6) + [lengths_mask(3, 5, [5, 2, 4])])
    case("attn_additive_t1", additive, add_in(2, 1, 3, 2, 4))
    case("attn_additive_empty", additive, add_in(2, 4, 3, 3, 5) + [lengths_mask(2, 4, [3, 0])])

    def additive_pre(hp, h, s, w2, v, *mk):  # the same with hp = h W1^T given
        e = torch.tanh(hp + (s @ w2.T)[:, None, :]) @ v
        mask = mk[0].bool() if mk else torch.zeros(e.shape, dtype=torch.bool)
        e = e.masked_fill(mask, float("-inf"))
        full = mask.all(-1, keepdim=True)
        a = torch.softmax(e.masked_fill(full, 0.0), -1).masked_fill(full, 0.0)
        return both((a[:, :, None] * h).sum(1), a)

    case("attn_additive_pre", additive_pre, [r(3, 5, 6), r(3, 5, 4), r(3, 3), r(6, 3) * 0.5, r(6)]
         + [lengths_mask(3, 5, [5, 2, 4])])
    case("attn_additive_pre_t1", additive_pre, [r(2, 1, 4), r(2, 1, 3), r(2, 2), r(4, 2) * 0.5, r(4)])


def gen_fused():
    """Linear with its activation as one op (cx_linear_relu, cx_linear_tanh),
    against relu(linear) and tanh(linear). Own seed, after the others. ReLU
    inputs: redrawn until no pre-activation is within 0.1 of the kink.

    case                          inputs
    ----------------------------  ------------------------------------------
    linear_relu[_nobias]          x [6,4], W [5,4], b [5]
    linear_relu_3d                x [2,3,4], W [5,4], b [5]
    linear_relu_wide              x [20,40], W [70,40], b [70] (the blocked GEMM)
    linear_tanh[_nobias]          x [6,4], W [5,4], b [5]
    linear_tanh_wide              x [20,40], W [70,40] * 0.3, b [70]"""
    torch.manual_seed(20261206)

    def away_from_kink(xs, nobias=False):
        for _ in range(1000):
            pre = F.linear(xs[0], xs[1], None if nobias else xs[2])
            if float(pre.abs().min()) >= 0.1:
                return xs
            xs = [randn(*t.shape) for t in xs]
        raise RuntimeError("no draw away from the ReLU kink")

    def relu_lin(x, w, b=None):
        return F.relu(F.linear(x, w, b))

    def tanh_lin(x, w, b=None):
        return torch.tanh(F.linear(x, w, b))

    case("linear_relu", relu_lin, away_from_kink([randn(6, 4), randn(5, 4), randn(5)]))
    case("linear_relu_nobias", relu_lin, away_from_kink([randn(6, 4), randn(5, 4)], nobias=True))
    case("linear_relu_3d", relu_lin, away_from_kink([randn(2, 3, 4), randn(5, 4), randn(5)]))
    wide = [uniform(-1.0, 1.0, 20, 40), uniform(-0.3, 0.3, 70, 40), uniform(-0.5, 0.5, 70)]
    pre = F.linear(*wide)
    for j in range(70):  # shift each output's bias until its 20 pre-activations clear the kink by 0.03
        for shift in [0.0] + [sgn * 0.01 * k for k in range(1, 60) for sgn in (1, -1)]:
            if float((pre[:, j] + shift).abs().min()) >= 0.03:
                wide[2][j] += shift
                break
        else:
            raise RuntimeError("no bias shift clears the ReLU kink")
    case("linear_relu_wide", relu_lin, wide)
    case("linear_tanh", tanh_lin, [randn(6, 4), randn(5, 4), randn(5)])
    case("linear_tanh_nobias", tanh_lin, [randn(6, 4), randn(5, 4)])
    case("linear_tanh_wide", tanh_lin, [uniform(-1.0, 1.0, 20, 40), uniform(-0.3, 0.3, 70, 40), uniform(-0.5, 0.5, 70)])


def write(path):
    safetensors_py.write(path, TENSORS, {"generator": "tools/gen_op_fixtures.py",
                                         "torch": torch.__version__, "cases": str(len(CASE_NAMES))})


if __name__ == "__main__":
    gen()
    gen_variants()
    gen_fused()
    write(OUT)
    print("%d cases, %d tensors, %d bytes -> %s" % (len(CASE_NAMES), len(TENSORS),
                                                     os.path.getsize(OUT), os.path.normpath(OUT)))
