"""What a kernel call pays when fastopt's OpenMP worker has fallen asleep.

    python benchmarks/wake_latency.py [--threads 2] [--n 200000]

fastopt's default wait policy (``GOMP_SPINCOUNT=4000``) lets an idle worker spin for about
0.1 ms, then sleep; waking it costs 50-200 us on the VMs measured. This times
``sgd_step`` (momentum, float32, n elements) after a busy wait of each gap on the calling
thread (median and 90th percentile of 200 calls), so the cost of a wake-up, and how much
of it the chunked schedule of the optimizer steps hides, can be read off. Run it on two
builds (or with ``GOMP_SPINCOUNT=300000``, libgomp's own spin) to compare.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

GAPS = (0.0, 50e-6, 100e-6, 200e-6, 1e-3, 5e-3)


def busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def main(argv: list[str] | None = None) -> int:
    import fastopt
    from fastopt import kernels
    from fastopt._config import thread_policy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args(argv)
    x = np.ones(args.n, np.float32)
    g = np.ones_like(x)
    buf = np.zeros_like(x)
    print(f"sgd_step, n = {args.n:,}, threads = {args.threads}, "
          f"wait policy: {thread_policy()['wait_policy']}")
    with fastopt.threads(args.threads):
        for gap in GAPS:
            times = []
            for _ in range(args.calls):
                busy_wait(gap)
                t0 = time.perf_counter()
                kernels.sgd_step(x, g, buf, lr=1e-3, momentum=0.9)
                times.append(time.perf_counter() - t0)
            print(f"gap {gap * 1e6:6.0f} us: call {np.median(times) * 1e6:7.1f} us "
                  f"p90 {np.percentile(times, 90) * 1e6:7.1f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
