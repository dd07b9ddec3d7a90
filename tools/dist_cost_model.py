"""Cost model of data-parallel training over MPI (issue 12, item 6).

Projects the time of one training step on N nodes (one process each) from
the compute time of a step measured on one process of this machine, the
model's gradient size and a stated network, with the ring all-reduce

    T_ar(N) = 2 (N - 1) / N * bytes / bandwidth + 2 (N - 1) * latency

(reduce-scatter then all-gather, each N - 1 rounds of one message between
neighbours). A step is compute + the part of the all-reduce not hidden
behind the backward pass:

    strong scaling (global batch B fixed):  T(N) = T_c(B) / N + (1 - h) T_ar(N)
    weak scaling (B per node):              T(N) = T_c(B)     + (1 - h) T_ar(N)

h is the hidden share (measured for LeNet-5 on 2 processes: 0.03 of 0.15
ms, h ~ 0.2; 0 here, the conservative case). T_c(B) / N assumes the compute
divides perfectly; at a few examples per node the GEMMs get less efficient,
so the strong-scaling figures are upper bounds. "stops scaling" is the node
count past which a step gets no faster (strong) or the efficiency falls
below 50% (weak).

    python3 tools/dist_cost_model.py         (prints the tables of BENCHMARKS.md)
"""

# name, parameters (gradient floats), compute ms per step on 1 process x 1
# thread at the batch given, where the figure comes from (BENCHMARKS.md)
MODELS = [
    ("MLP 784-256-10", 203_530, 0.60, 64, "MLP epoch 0.53-0.59 s / 938 steps (issue 12's text)"),
    ("LeNet-5", 61_706, 2.74, 64, "bench_dist 1 process, quiet machine, 2026-12-04"),
    ("small ResNet", 174_970, 85.1, 64, "training step, issue 8 table, 1 thread"),
    ("char-LSTM 1x256", 358_939, 26.8, 32, "76k chars/s, batch 32 x seq 64 (2048 chars per step)"),
]

NETWORKS = [
    ("10 GbE", 1.25e9, 25e-6),
    ("100 Gb InfiniBand", 12.5e9, 2e-6),
]

NODES = [1, 2, 8, 64]


def t_ar(n, nbytes, bw, lat):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * lat


def main(h=0.0):
    for net, bw, lat in NETWORKS:
        print(f"### {net}: {bw / 1e9:.2f} GB/s, {lat * 1e6:.0f} us per message; hidden share h = {h}")
        print()
        print("| model | gradient | T_c (ms) | all-reduce ms at 2 / 8 / 64 | strong: speed-up at 2 / 8 / 64 "
              "| strong: best N (speed-up) | weak: efficiency at 2 / 8 / 64 | weak: 50% below |")
        print("|---|---|---|---|---|---|---|---|")
        for name, params, tc_ms, batch, _src in MODELS:
            nbytes = 4 * params
            tc = tc_ms / 1e3
            ar = {n: t_ar(n, nbytes, bw, lat) for n in NODES}
            strong = {n: tc / (tc / n + (1 - h) * ar[n]) for n in NODES}
            weak = {n: tc / (tc + (1 - h) * ar[n]) for n in NODES}
            best_n, best_s = 1, 1.0
            for n in range(1, 4097):
                s = tc / (tc / n + (1 - h) * t_ar(n, nbytes, bw, lat))
                if s > best_s:
                    best_n, best_s = n, s
            half = next((n for n in range(2, 1 << 20) if tc / (tc + (1 - h) * t_ar(n, nbytes, bw, lat)) < 0.5), None)
            print(f"| {name} (batch {batch}) | {nbytes / 1e6:.2f} MB | {tc_ms:g} | "
                  + " / ".join(f"{ar[n] * 1e3:.2f}" for n in NODES[1:]) + " | "
                  + " / ".join(f"{strong[n]:.1f}x" for n in NODES[1:]) + f" | {best_n} ({best_s:.1f}x) | "
                  + " / ".join(f"{weak[n] * 100:.0f}%" for n in NODES[1:]) + " | "
                  + (f"never (bandwidth term bounded by {2 * nbytes / bw * 1e3:.2f} ms)" if half is None else f"{half} nodes")
                  + " |")
        print()
    print("Sources of T_c:")
    for name, _p, _t, _b, src in MODELS:
        print(f"- {name}: {src}")


if __name__ == "__main__":
    main()
