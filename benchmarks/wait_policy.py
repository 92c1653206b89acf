"""Per-call time of a 2-thread kernel under this process's OpenMP wait policy.

libgomp reads OMP_WAIT_POLICY / GOMP_SPINCOUNT once, when it loads, so compare policies
with one process each, on the same machine, one after the other::

    python benchmarks/wait_policy.py
    OMP_WAIT_POLICY=PASSIVE python benchmarks/wait_policy.py
    GOMP_SPINCOUNT=30000 python benchmarks/wait_policy.py

Each call of ``kernels.adam_step`` (float32) is followed by an idle gap (``--gap``, 200 µs
by default), as between the steps of a real training loop, because the wait policy decides
what the worker threads do in that gap: spin (fast wake-up, but a core taken from other
processes) or sleep (slow wake-up). Median per-call times for 1 and 2 threads.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

try:
    import fastopt
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "src"))
    import fastopt
from fastopt import kernels


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32_768, 100_000, 1_000_000])
    ap.add_argument("--gap", type=float, default=200e-6, help="idle seconds between calls")
    ap.add_argument("--calls", type=int, default=400)
    args = ap.parse_args(argv)
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    spin = os.environ.get("GOMP_SPINCOUNT")
    label = policy + (f", GOMP_SPINCOUNT={spin}" if spin else "")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        p, g, m = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
        v = np.abs(rng.standard_normal(n)).astype(np.float32)
        row = []
        for threads in (1, 2):
            with fastopt.threads(threads):
                for _ in range(20):
                    kernels.adam_step(p, g, m, v, step=1, lr=1e-3)
                times = []
                for _ in range(args.calls if n < 1_000_000 else args.calls // 6):
                    t = time.perf_counter()
                    kernels.adam_step(p, g, m, v, step=1, lr=1e-3)
                    times.append(time.perf_counter() - t)
                    time.sleep(args.gap)
            row.append(f"{threads} thread{'s' if threads > 1 else ''} "
                       f"{1e6 * statistics.median(times):8.1f} us")
        print(f"[{label}] adam_step n={n:>9,d}: " + "  ".join(row))


if __name__ == "__main__":
    main()
