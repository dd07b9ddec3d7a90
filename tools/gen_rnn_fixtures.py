#!/usr/bin/python3
"""Generate the PyTorch reference fixtures of tests/nn/test_rnn.c.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tools/gen_rnn_fixtures.py

Writes tests/fixtures/rnn/rnn.safetensors (written by hand: the safetensors
python package is not needed). Every case C is one torch.nn module (RNNCell,
LSTMCell, GRUCell, RNN, LSTM, GRU) with PyTorch's default random init, and
the file holds

    C.p.<name>          every state_dict tensor under its PyTorch name
                        (weight_ih_l0, bias_hh_l1_reverse, weight_ih, ...);
                        the C side loads them into its module BY NAME, so
                        the test also proves names, shapes and layouts match
    C.x                 input: [B, I] (cells), [T, B, I] or [B, T, I] (batch_first)
    C.h0, C.c0          initial states, when the case passes them
    C.out               output (cells: h'), C.h_n and C.c_n the final states
                        (LSTMCell: C.out = h', C.c_n = c')
    C.gout, C.gh, C.gc  fixed random upstream gradients on out, h_n, c_n
    C.grad.x, C.grad.h0, C.grad.c0, C.grad.p.<name>
                        gradients of  sum(out*gout) + sum(h_n*gh) + sum(c_n*gc)
                        w.r.t. the input, the initial states and every parameter

The module configuration of each case is in the metadata: key C =
"<kind> <num_layers> <bidirectional> <batch_first> <bias> <relu>" with kind one
of RNNCell LSTMCell GRUCell RNN LSTM GRU; key "cases" lists the case names
(comma-separated). Sizes: I=3, H=5, B=2 (cells: B=3), T=4.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_py  # noqa: E402  (tools/safetensors_py.py)

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "rnn", "rnn.safetensors")

TENSORS = []
META = {}
CASES = []
I, H, B, T = 3, 5, 2, 4


def add(name, t):
    TENSORS.append((name, t.detach().contiguous()))


def case(name, kind, layers=1, bidir=False, batch_first=False, bias=True, relu=False,
         with_h0=True, with_c0=True):
    assert name not in CASES
    CASES.append(name)
    META[name] = "%s %d %d %d %d %d" % (kind, layers, int(bidir), int(batch_first), int(bias), int(relu))
    cell = kind.endswith("Cell")
    if kind == "RNNCell":
        m = torch.nn.RNNCell(I, H, bias=bias, nonlinearity="relu" if relu else "tanh")
    elif kind == "LSTMCell":
        m = torch.nn.LSTMCell(I, H, bias=bias)
    elif kind == "GRUCell":
        m = torch.nn.GRUCell(I, H, bias=bias)
    elif kind == "RNN":
        m = torch.nn.RNN(I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias,
                         nonlinearity="relu" if relu else "tanh")
    elif kind == "LSTM":
        m = torch.nn.LSTM(I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias)
    else:
        m = torch.nn.GRU(I, H, num_layers=layers, bidirectional=bidir, batch_first=batch_first, bias=bias)
    lstm = kind.startswith("LSTM")
    D = 2 if bidir else 1
    if cell:
        nb = B + 1
        x = torch.randn(nb, I)
        sshape = (nb, H)
    else:
        x = torch.randn(B, T, I) if batch_first else torch.randn(T, B, I)
        sshape = (layers * D, B, H)
    x.requires_grad_(True)
    h0 = torch.randn(*sshape).requires_grad_(True) if with_h0 else None
    c0 = torch.randn(*sshape).requires_grad_(True) if (lstm and with_c0 and with_h0) else None
    if cell:
        if lstm:
            hc = None if h0 is None else (h0, c0 if c0 is not None else torch.zeros(*sshape))
            out, c_n = m(x, hc)
            h_n = None
        else:
            out, c_n, h_n = m(x, h0), None, None
    else:
        if lstm:
            hc = None if h0 is None else (h0, c0)
            out, (h_n, c_n) = m(x, hc)
        else:
            out, h_n = m(x, h0)
            c_n = None
    gout = torch.randn(out.shape)
    loss = (out * gout).sum()
    gh = gc = None
    if h_n is not None:
        gh = torch.randn(h_n.shape)
        loss = loss + (h_n * gh).sum()
    if c_n is not None:
        gc = torch.randn(c_n.shape)
        loss = loss + (c_n * gc).sum()
    params = list(m.state_dict().keys())
    wrt = [x] + ([h0] if h0 is not None else []) + ([c0] if c0 is not None else []) + \
          [getattr(m, p) for p in params]
    grads = torch.autograd.grad(loss, wrt)
    for p in params:
        add("%s.p.%s" % (name, p), getattr(m, p))
    add(name + ".x", x)
    if h0 is not None:
        add(name + ".h0", h0)
    if c0 is not None:
        add(name + ".c0", c0)
    add(name + ".out", out)
    add(name + ".gout", gout)
    if h_n is not None:
        add(name + ".h_n", h_n)
        add(name + ".gh", gh)
    if c_n is not None:
        add(name + ".c_n", c_n)
        add(name + ".gc", gc)
    gi = iter(grads)
    add(name + ".grad.x", next(gi))
    if h0 is not None:
        add(name + ".grad.h0", next(gi))
    if c0 is not None:
        add(name + ".grad.c0", next(gi))
    for p in params:
        add("%s.grad.p.%s" % (name, p), next(gi))


def gen():
    # cells
    case("rnncell_tanh", "RNNCell")
    case("rnncell_relu", "RNNCell", relu=True)
    case("rnncell_nostate", "RNNCell", with_h0=False)
    case("lstmcell", "LSTMCell")
    case("lstmcell_nobias", "LSTMCell", bias=False)
    case("grucell", "GRUCell")
    case("grucell_nostate", "GRUCell", with_h0=False)
    # sequence layers
    case("rnn_tanh_l2_bi", "RNN", layers=2, bidir=True)
    case("rnn_relu", "RNN", relu=True)
    case("lstm_l2_bi", "LSTM", layers=2, bidir=True)
    case("lstm_l2_bf", "LSTM", layers=2, batch_first=True)
    case("lstm_bi_bf_nostate", "LSTM", bidir=True, batch_first=True, with_h0=False)
    case("lstm_nobias_rev", "LSTM", bidir=True, bias=False)
    case("gru_l2_bi", "GRU", layers=2, bidir=True)
    case("gru_bf", "GRU", batch_first=True)
    case("gru_l2_bi_bf_nostate", "GRU", layers=2, bidir=True, batch_first=True, with_h0=False)


def write(path):
    meta = {"generator": "tools/gen_rnn_fixtures.py", "torch": torch.__version__,
            "cases": ",".join(CASES)}
    meta.update(META)
    safetensors_py.write(path, [(n, t.float()) for n, t in TENSORS], meta)


if __name__ == "__main__":
    gen()
    write(OUT)
    print("%d cases, %d tensors, %d bytes -> %s" % (len(CASES), len(TENSORS), os.path.getsize(OUT),
                                                    os.path.normpath(OUT)))
