#!/usr/bin/env python3
"""PyTorch reference for bench/bench_gemm.c: torch.mm GFLOPS on square float32
matrices of sizes 64..1024.

    OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N /usr/bin/python3 tools/bench_torch_gemm.py [threads [n ...]]

threads defaults to env CX_THREADS or 1. Prints a table and one line per size:
    TORCH_GEMM n=512 threads=1 gflops=123.45
(median of several timed repetitions after a warm-up, like bench_gemm).
"""
import os
import sys
import time

import torch

REPS = 7


def bench(n):
    g = torch.Generator().manual_seed(42)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    c = torch.empty(n, n)
    flops = 2.0 * n * n * n
    calls = max(1, int(2e8 / flops))  # ~10 ms per repetition at 20 GFLOPS
    for _ in range(max(calls, 2)):  # warm-up
        torch.mm(a, b, out=c)
    rates = []
    for _ in range(REPS):
        t0 = time.perf_counter()  # monotonic clock
        for _ in range(calls):
            torch.mm(a, b, out=c)
        dt = time.perf_counter() - t0
        rates.append(flops * calls / dt * 1e-9)
    rates.sort()
    return rates[REPS // 2]


def main(argv):
    threads = int(os.environ.get("CX_THREADS", "1") or 1)
    if len(argv) > 1:
        threads = int(argv[1])
    if threads <= 0:
        threads = os.cpu_count() or 1
    sizes = [int(s) for s in argv[2:]] or [64, 128, 256, 512, 1024]
    torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    blas = "unknown"
    try:
        cfg = torch.__config__.show()
        for key in ("BLAS_INFO=", "BLAS="):
            if key in cfg:
                blas = cfg.split(key, 1)[1].split(",")[0].split()[0]
                break
    except Exception:  # pragma: no cover - informational only
        pass
    print("torch %s torch.mm float32, threads=%d, blas=%s, OPENBLAS_NUM_THREADS=%s"
          % (torch.__version__, threads, blas, os.environ.get("OPENBLAS_NUM_THREADS", "unset")))
    print("%6s %12s" % ("n", "GFLOPS"))
    lines = []
    with torch.no_grad():
        for n in sizes:
            gf = bench(n)
            print("%6d %12.1f" % (n, gf), flush=True)
            lines.append("TORCH_GEMM n=%d threads=%d gflops=%.2f" % (n, threads, gf))
    for line in lines:
        print(line)


if __name__ == "__main__":
    main(sys.argv)
