#!/usr/bin/python3
"""Generate the reference fixtures of tests/optim/test_optim.c with PyTorch.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_optim_fixtures.py

Writes two small text files in tests/fixtures/optim/. Each line is
    <name> <n> <v1> ... <vn>
with floats printed with 9 significant digits (exact for float32).

optim.txt
    init.<p>                 initial value of parameter p (p0 [5,3], p1 [4])
    grad.<k>.<p>             gradient of p at step k (k = 0..4); a missing line
                             means p.grad is None at that step (p1 at step 2)
    <cfg>.<k>.<p>            value of p after step k of optimiser config <cfg>
sched.txt
    <cfg>                    the 31 learning rates of epochs 0..30 (lr after
                             construction, then after each scheduler.step())
clip.txt (torch.nn.utils.clip_grad_norm_, configurations in CLIP_CONFIGS)
    <cfg>.in.<p>             gradient of p before clipping (c0 [5,3], c1 [4],
                             c2 [2,2,3]; c3 has no grad, not listed)
    <cfg>.total              the returned total norm
    <cfg>.out.<p>            gradient of p after clipping
The configurations mirror the tables in tests/optim/test_optim.c.
"""
import os
import torch

torch.manual_seed(1234)
STEPS = 5
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "optim")

SHAPES = {"p0": (5, 3), "p1": (4,)}
INIT = {k: torch.randn(*s) for k, s in SHAPES.items()}
GRADS = []
for k in range(STEPS):
    g = {n: torch.randn(*s) * (1.0 + 0.5 * k) for n, s in SHAPES.items()}
    if k == 2:
        g["p1"] = None  # skipped parameter (None grad)
    GRADS.append(g)

O = torch.optim
CONFIGS = [
    ("sgd", O.SGD, dict(lr=0.1)),
    ("sgd_mom", O.SGD, dict(lr=0.1, momentum=0.9)),
    ("sgd_nest_wd", O.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("sgd_damp", O.SGD, dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    ("adam", O.Adam, dict(lr=0.01)),
    ("adam_ams_wd", O.Adam, dict(lr=0.02, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1,
                                 amsgrad=True)),
    ("adamw", O.AdamW, dict(lr=0.01)),
    ("adamw_ams", O.AdamW, dict(lr=0.03, weight_decay=0.2, amsgrad=True)),
    ("rmsprop", O.RMSprop, dict(lr=0.01)),
    ("rmsprop_cmw", O.RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05,
                                    momentum=0.5, centered=True)),
    ("adagrad", O.Adagrad, dict(lr=0.1)),
    ("adagrad_full", O.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.02,
                                     initial_accumulator_value=0.1, eps=1e-8)),
]


def line(name, t):
    v = t.detach().reshape(-1).tolist()
    return "%s %d %s\n" % (name, len(v), " ".join("%.9g" % x for x in v))


def gen_optim():
    lines = []
    for n in SHAPES:
        lines.append(line("init." + n, INIT[n]))
    for k, g in enumerate(GRADS):
        for n in SHAPES:
            if g[n] is not None:
                lines.append(line("grad.%d.%s" % (k, n), g[n]))
    for cfg, cls, kw in CONFIGS:
        params = {n: INIT[n].clone().requires_grad_(True) for n in SHAPES}
        opt = cls(list(params.values()), foreach=False, **kw)
        for k, g in enumerate(GRADS):
            for n, p in params.items():
                p.grad = None if g[n] is None else g[n].clone()
            opt.step()
            for n, p in params.items():
                lines.append(line("%s.%d.%s" % (cfg, k, n), p))
    with open(os.path.join(OUT, "optim.txt"), "w") as f:
        f.writelines(lines)


def gen_sched():
    S = O.lr_scheduler
    mk = [
        ("step", lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
        ("exp", lambda o: S.ExponentialLR(o, gamma=0.9)),
        ("cos", lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
        ("linear", lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8)),
        ("linear_decay", lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                              total_iters=12)),
        ("warm_cos", lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
                S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4)], milestones=[5])),
        ("warm_step", lambda o: S.SequentialLR(
            o, [S.LinearLR(o, start_factor=0.5, end_factor=1.0, total_iters=3),
                S.StepLR(o, step_size=4, gamma=0.7)], milestones=[3])),
    ]
    lines = []
    for name, f in mk:
        p = torch.zeros(1, requires_grad=True)
        opt = O.SGD([p], lr=0.1)
        sch = f(opt)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(30):
            opt.step()
            sch.step()
            lrs.append(opt.param_groups[0]["lr"])
        lines.append("%s %d %s\n" % (name, len(lrs), " ".join("%.17g" % x for x in lrs)))
    with open(os.path.join(OUT, "sched.txt"), "w") as f:
        f.writelines(lines)


CLIP_SHAPES = {"c0": (5, 3), "c1": (4,), "c2": (2, 2, 3), "c3": (3,)}
# (config, norm_type, max_norm): clipped and not, with the largest |g| both
# positive and negative for the inf norm
CLIP_CONFIGS = [
    ("l2_clip", 2.0, 1.0),
    ("l2_noclip", 2.0, 100.0),
    ("inf_clip", float("inf"), 0.5),
    ("inf_noclip", float("inf"), 10.0),
    ("inf_neg_clip", float("inf"), 0.25),
]


def gen_clip():
    gen = torch.Generator().manual_seed(4321)  # its own stream: optim.txt stays as it was
    grads = {n: torch.randn(*s, generator=gen) for n, s in CLIP_SHAPES.items() if n != "c3"}
    lines = []
    for cfg, norm_type, max_norm in CLIP_CONFIGS:
        g = {n: v.clone() for n, v in grads.items()}
        if cfg == "inf_neg_clip":
            g["c2"][1, 0, 2] = -5.0  # the largest magnitude is negative
        for n in g:
            lines.append(line("%s.in.%s" % (cfg, n), g[n]))
        params = {}
        for n, s in CLIP_SHAPES.items():
            p = torch.zeros(*s, requires_grad=True)
            p.grad = g[n] if n in g else None
            params[n] = p
        total = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm, norm_type=norm_type)
        lines.append(line("%s.total" % cfg, total.reshape(1)))
        for n in g:
            lines.append(line("%s.out.%s" % (cfg, n), params[n].grad))
    with open(os.path.join(OUT, "clip.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_optim()
    gen_sched()
    gen_clip()
