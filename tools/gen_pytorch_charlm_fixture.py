#!/usr/bin/python3
"""Fixture of tests/cli/test_newcomer_cli.c: a plain PyTorch char-LSTM, as a
PyTorch user has it -- a state_dict saved with safetensors (no Cortex
metadata) and a vocabulary file -- so the test can check that
`cortex charlm eval/sample MODEL --vocab FILE` reproduce PyTorch's numbers.

Run with Debian's PyTorch:  /usr/bin/python3 tools/gen_pytorch_charlm_fixture.py

The model is the CharLM class of include/cortex/charlm.h (nn.Embedding ->
nn.LSTM -> nn.Linear; state_dict names embed.*, lstm.*, fc.*), V = the
characters of the training text, E 16, H 48, 2 layers, trained 150 Adam
steps (lr 1e-2, batch 16 x seq 64) on the first 60,000 characters of
data/text/kjv_genesis_ruth_jonah.txt. Its vocabulary has NO <unk> id: ids
0 .. V-1 are the characters in a shuffled order (seeded), to check the
mapping, and vocab.txt is the file format `cortex charlm --vocab` reads:
the UTF-8 text whose k-th character is the character of id k.

Writes tests/fixtures/pytorch_charlm/
  lstm.safetensors  the state_dict (safetensors, metadata {"format": "pt"})
  vocab.txt         the vocabulary file
  eval.txt          1,921 characters from later in the text (1,920 predictions,
                    a multiple of every chunk length the test uses)
  expected.txt      "bpc <bits per character of eval.txt, one stream from zero states>"
  prime.txt         the prime of the greedy continuation
  greedy.txt        prime + the 80 characters greedy decoding (argmax) gives
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_py  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "pytorch_charlm")
TEXT = os.path.join(ROOT, "data", "text", "kjv_genesis_ruth_jonah.txt")
E, H, L = 16, 48, 2


class CharLM(torch.nn.Module):
    def __init__(self, V):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.lstm = torch.nn.LSTM(E, H, L)
        self.fc = torch.nn.Linear(H, V)

    def forward(self, x, state=None):
        o, state = self.lstm(self.embed(x), state)
        return self.fc(o), state


def main():
    torch.manual_seed(3)
    torch.set_num_threads(1)
    text = open(TEXT, encoding="utf-8").read()
    train, evaltext = text[:60000], text[150000:150000 + 1921]
    chars = sorted(set(text[:150000 + 1921]))
    perm = torch.randperm(len(chars)).tolist()
    itos = [chars[i] for i in perm]
    stoi = {c: i for i, c in enumerate(itos)}
    V = len(itos)
    m = CharLM(V)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    data = torch.tensor([stoi[c] for c in train])
    g = torch.Generator().manual_seed(5)
    for step in range(150):
        starts = torch.randint(0, len(data) - 65, (16,), generator=g)
        x = torch.stack([data[s:s + 64] for s in starts], 1)
        y = torch.stack([data[s + 1:s + 65] for s in starts], 1)
        logits, _ = m(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        ids = torch.tensor([stoi[c] for c in evaltext]).unsqueeze(1)
        logits, _ = m(ids[:-1])
        nats = torch.nn.functional.cross_entropy(logits.reshape(-1, V).double(), ids[1:].reshape(-1)).item()
        bpc = nats / torch.log(torch.tensor(2.0, dtype=torch.float64)).item()
        prime = "And God said"
        p = torch.tensor([stoi[c] for c in prime]).unsqueeze(1)
        logits, state = m(p)
        out = []
        nxt = int(logits[-1, 0].argmax())
        for _ in range(80):
            out.append(itos[nxt])
            logits, state = m(torch.tensor([[nxt]]), state)
            nxt = int(logits[-1, 0].argmax())
    os.makedirs(OUT, exist_ok=True)
    safetensors_py.write(os.path.join(OUT, "lstm.safetensors"), list(m.state_dict().items()), {"format": "pt"})
    with open(os.path.join(OUT, "vocab.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("".join(itos))
    with open(os.path.join(OUT, "eval.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(evaltext)
    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write(f"bpc {bpc:.7f}\n")
    with open(os.path.join(OUT, "prime.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(prime)
    with open(os.path.join(OUT, "greedy.txt"), "w", encoding="utf-8", newline="") as f:
        f.write(prime + "".join(out))
    print(f"V {V}, final training loss {loss.item():.3f}, eval {bpc:.4f} bits/char, greedy: {prime + ''.join(out)!r}")


if __name__ == "__main__":
    main()
