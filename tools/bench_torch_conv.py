#!/usr/bin/python3
"""PyTorch side of bench/bench_conv.c: forward + backward (input, weight and
bias gradients) of three convolution layers, median over repetitions.

  OPENBLAS_NUM_THREADS=T /usr/bin/python3 tools/bench_torch_conv.py [threads] [reps] [channels_last]
Prints: TORCH_CONV layer=lenet threads=1 layout=nchw ms=... cpu_ms=...   (also vgg, deep)
With the third argument channels_last the layer, its input and the upstream
gradient are in torch.channels_last memory format (layout=channels_last);
tools/bench.sh runs both layouts and compares Cortex with the faster.
(ms: median wall time of one step; cpu_ms: median process CPU time, all threads.)

Layers (NCHW, float32):
  lenet  N=64, 1 -> 6,    28x28, k5, stride 1, padding 0
  vgg    N=64, 64 -> 64,  32x32, k3, stride 1, padding 1
  deep   N=32, 128 -> 128, 16x16, k3, stride 1, padding 1
The upstream gradient is a fixed random tensor (as in the C benchmark).
"""
import sys, time
import torch

LAYERS = [("lenet", 64, 1, 6, 28, 5, 0), ("vgg", 64, 64, 64, 32, 3, 1),
          ("deep", 32, 128, 128, 16, 3, 1)]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    cl = len(sys.argv) > 3 and sys.argv[3] == "channels_last"
    layout = "channels_last" if cl else "nchw"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    for name, n, c, o, hw, k, p in LAYERS:
        conv = torch.nn.Conv2d(c, o, k, padding=p)
        x = torch.randn(n, c, hw, hw, requires_grad=True)
        gy = torch.randn_like(conv(x))
        if cl:
            conv = conv.to(memory_format=torch.channels_last)
            x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_(True)
            gy = gy.contiguous(memory_format=torch.channels_last)
        flops = 2.0 * n * o * c * k * k * gy.shape[2] * gy.shape[3]
        r = reps if reps > 0 else max(15, min(30, int(2e9 / (3 * flops))))

        def step():
            x.grad = None
            conv.zero_grad()
            conv(x).backward(gy)

        for _ in range(2):
            step()
        ts, cs = [], []
        for _ in range(r):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            ts.append((time.perf_counter() - t0) * 1e3)
            cs.append((time.process_time() - c0) * 1e3)
        ts.sort()
        cs.sort()
        print(f"TORCH_CONV layer={name} threads={threads} layout={layout} ms={ts[len(ts) // 2]:.3f} "
              f"cpu_ms={cs[len(cs) // 2]:.3f}", flush=True)


main()
