"""fastopt.nn against torch (CPU) and the best plain-numpy dropout, with ratios.

    python benchmarks/nn_vs_torch.py [--threads 2] [--repeats 30] [--quick]
    python benchmarks/nn_vs_torch.py --threads 1 --cpu-time     # robust on a busy machine

Each case times every implementation in interleaved rounds (A B C A B C ...) and reports
medians (and the best time: on a shared machine the median also measures the scheduler),
so background load hits all of them alike. Workloads (float32):

- dropout forward + backward on (1024, 4096), p = 0.5: fastopt (dropout + dropout_backward
  into preallocated outputs), torch (F.dropout + autograd backward), numpy (one
  rng.random(out=) into a preallocated float32 buffer, mask and multiplies in place);
- BatchNorm training forward + backward on (256, 4096) and (32, 64, 32, 32): fastopt
  (batch_norm + batch_norm_backward into preallocated outputs, running stats updated) and
  torch (F.batch_norm with running stats + autograd backward).

"bandwidth" is the minimal traffic of the pass (each input read once, each output written
once; dropout adds its n/8 bytes of mask bits) over time, as a fraction of a one-pass copy
(np.copyto of the same array, read + write) measured in the same process.
BLAS pools are pinned to one thread (threadpoolctl) when available; torch gets the same
thread count as fastopt (torch.set_num_threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

try:
    import fastopt
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
    import fastopt
from fastopt import nn

CLOCK = time.perf_counter


def interleaved(funcs: dict, repeats: int, warmup: int = 3) -> dict:
    """(median, min) seconds per call of each function, timed in interleaved rounds."""
    for f in funcs.values():
        for _ in range(warmup):
            f()
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            t0 = CLOCK()
            f()
            times[name].append(CLOCK() - t0)
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def copy_bandwidth(nbytes: int, repeats: int) -> float:
    a = np.ones(nbytes // 4, np.float32)
    b = np.empty_like(a)
    t = interleaved({"copy": lambda: np.copyto(b, a)}, repeats)["copy"]
    return 2 * a.nbytes / t[0], 2 * a.nbytes / t[1]


def dropout_case(shape, p, repeats, torch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)

    def fastopt_run():
        _, mask = nn.dropout(x, p, seed=1, out=y)
        nn.dropout_backward(dy, mask, out=dx)

    funcs = {"fastopt": fastopt_run}

    u = np.empty_like(x)
    gen = np.random.default_rng(1)
    scale = np.float32(1 / (1 - p))

    def numpy_run():  # the best plain numpy: one random pass, everything else in place
        gen.random(out=u, dtype=np.float32)
        np.greater_equal(u, np.float32(p), out=u, casting="unsafe")  # 1.0 keep / 0.0 drop
        np.multiply(u, scale, out=u)
        np.multiply(x, u, out=y)
        np.multiply(dy, u, out=dx)  # backward

    funcs["numpy"] = numpy_run
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def torch_run():
            tx.grad = None
            torch.nn.functional.dropout(tx, p, True).backward(tdy)

        funcs["torch"] = torch_run
    med = interleaved(funcs, repeats)
    traffic = 4 * x.nbytes + 2 * (x.size // 8)
    return med, traffic


def batchnorm_case(shape, repeats, torch):
    rng = np.random.default_rng(0)
    c = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    gamma, beta = np.ones(c, np.float32), np.zeros(c, np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    dg, db = np.empty(c, np.float32), np.empty(c, np.float32)

    def fastopt_run():
        _, cache = nn.batch_norm(x, gamma, beta, rm, rv, True, out=y)
        nn.batch_norm_backward(dy, cache, out=(dx, dg, db))

    funcs = {"fastopt": fastopt_run}
    if torch is not None:
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        tg = torch.ones(c, requires_grad=True)
        tb = torch.zeros(c, requires_grad=True)
        trm, trv = torch.zeros(c), torch.ones(c)
        tdy = torch.from_numpy(dy)

        def torch_run():
            tx.grad = tg.grad = tb.grad = None
            torch.nn.functional.batch_norm(tx, trm, trv, tg, tb, True, 0.1, 1e-5).backward(tdy)

        funcs["torch"] = torch_run
    med = interleaved(funcs, repeats)
    traffic = 5 * x.nbytes  # forward: read x, write y; backward: read dy and x, write dx
    return med, traffic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="few repeats (a smoke test)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the calling thread's CPU time (needs --threads 1): on a "
                         "shared machine it leaves out the time other processes held the core")
    args = ap.parse_args()
    if args.cpu_time:
        if args.threads != 1:
            ap.error("--cpu-time measures one thread: use it with --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    repeats = 3 if args.quick else args.repeats
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    fastopt.set_num_threads(args.threads)
    print(f"fastopt {fastopt.__version__}, {fastopt.get_num_threads()} threads, float32, "
          f"median of {repeats} interleaved repeats"
          + (", thread CPU time" if args.cpu_time else ", wall time")
          + (f"; torch {torch.__version__}, {torch.get_num_threads()} threads" if torch else
             "; torch not installed"))
    copy_bw = copy_bandwidth(1024 * 4096 * 4, repeats)
    print(f"one-pass copy (np.copyto, 16 MiB): {copy_bw[0] / 1e9:.1f} GB/s median, "
          f"{copy_bw[1] / 1e9:.1f} GB/s best")
    cases = [("dropout fwd+bwd (1024, 4096) p=0.5", dropout_case((1024, 4096), 0.5, repeats, torch)),
             ("batchnorm train fwd+bwd (256, 4096)", batchnorm_case((256, 4096), repeats, torch)),
             ("batchnorm train fwd+bwd (32, 64, 32, 32)",
              batchnorm_case((32, 64, 32, 32), repeats, torch))]
    print("\n(times: median / best of the repeats; ratios: other / fastopt, median and best)")
    for title, (med, traffic) in cases:
        ours = med["fastopt"]
        print(f"\n{title}")
        bw = [traffic / t for t in ours]
        print(f"  fastopt {ours[0] * 1e3:8.3f} / {ours[1] * 1e3:7.3f} ms   minimal traffic "
              f"{bw[0] / 1e9:5.1f} / {bw[1] / 1e9:5.1f} GB/s = {bw[0] / copy_bw[0]:4.0%} / "
              f"{bw[1] / copy_bw[1]:4.0%} of copy")
        for name, t in med.items():
            if name != "fastopt":
                print(f"  {name:7s} {t[0] * 1e3:8.3f} / {t[1] * 1e3:7.3f} ms   fastopt is "
                      f"{t[0] / ours[0]:5.1f}x / {t[1] / ours[1]:5.1f}x faster")

if __name__ == "__main__":
    main()
