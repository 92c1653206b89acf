"""Where L-BFGS-B's time per iteration goes, phase by phase, at n = 1e6.

Runs fastopt's L-BFGS-B on the problems of ``lbfgsb_overhead.py`` with timers around each
phase of the driver (the Cauchy point, the subspace step, the search direction, the line
search without the objective, the pair update, the projected-gradient norm, the middle
matrix) and prints milliseconds per steady-state iteration (after ``--skip``), the rest
of the iteration as ``other`` (the driver's Python), and the objective's own time. A
phase timed inside another (the free-set gram inside the subspace step) is taken out of
the outer one. ``--clock cpu`` (the default with one thread) is the calling thread's CPU
time (``time.thread_time``), so that time spent waiting for a core on a busy machine is
not counted; with more threads the main thread's CPU time misses the others' work and
their waits, so ``--clock wall`` (the default there) takes the wall clock.

Beside each phase: the bytes it moves to and from memory per iteration by the count of
``phase_bytes`` (every n-vector read or written once; writes counted once, though a
store to a line not in cache also reads it), and the rate that makes.

    python benchmarks/lbfgsb_phases.py --n 1000000 --iters 30 [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import defaultdict

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import fastopt  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from lbfgsb_overhead import problem  # noqa: E402

import fastopt  # noqa: E402
from fastopt.optimize import lbfgsb  # noqa: E402


def phase_bytes(n: int, itemsize: int, k: int, masked: bool, nfev: float,
                unit_missed: float) -> dict:
    """Bytes each phase moves per iteration in the steady state (k pairs stored): every
    n-vector read or written counted once (V bytes), a byte mask n bytes; `unit_missed`:
    the share of iterations whose line search did not start at alpha = 1. Keep in step
    with the kernels (bounds.inc) and the driver (lbfgsb.py)."""
    V = n * itemsize
    mask = n if masked else 0
    return {
        # x1 x0 g1 g0 lo hi read, s y written (the Cauchy path's direction stays in
        # cache); the k - 1 older pairs (the new one is read back from cache); the
        # previous free mask read; the next Cauchy point's classification (its mask) written
        "pair update": 6 * V + 2 * V + 2 * (k - 1) * V + mask + n,
        # nothing of size n: the classification came with the pair, the point is formed
        # in the subspace step's pass
        "cauchy point": 0,
        # the k pairs, x g lo hi, the free mask read, d and P(x + d) written
        "subspace step": 2 * k * V + 4 * V + mask + 2 * V,
        # per evaluation: the trial point (x d lo hi read, written; the first one, at
        # alpha = 1, is written by the subspace step's pass and counted there), the copy
        # handed to fun (read, written), g . d
        "line search (no f)": nfev * (5 * V + 2 * V + 2 * V) - (1 - unit_missed) * 5 * V,
        # the masks: delta (2 read, 1 written), its count, the copy, the cache key's
        # comparison and copy (the gathers at the changed variables not counted)
        "free gram": 11 * n if masked else 0,
    }


class Timers:
    def __init__(self, spent, clock):
        self.spent = spent          # the objective's own time, [seconds]
        self.clock = clock
        self.on = False
        self.ms: dict[str, float] = defaultdict(float)
        self.inner = [0.0]          # time of the phases nested in the running one

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            t, f = self.clock(), self.spent[0]
            self.inner.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                spent = (self.clock() - t) - (self.spent[0] - f)
                nested = self.inner.pop()
                self.ms[name] += 1e3 * (spent - nested)
                self.inner[-1] += spent
        return timed


def run(n, case, iters, skip, threads, clock):
    fg_wall, x0, lower, upper, _ = problem(n, case)
    spent = [0.0]       # the objective's time
    nfev = [0]

    def fg(x):
        t = clock()
        nfev[0] += 1
        try:
            return fg_wall(x)
        finally:
            spent[0] += clock() - t

    timers = Timers(spent, clock)
    saved = {}

    def patch(owner, attr, name):
        saved[(owner, attr)] = getattr(owner, attr)
        setattr(owner, attr, timers.wrap(name, getattr(owner, attr)))

    kernels = lbfgsb._K
    patch(kernels, "lbfgsb_cauchy", "cauchy point")
    # the subspace step (with the direction from it, where one kernel forms both)
    patch(lbfgsb, "_subspace_direction" if hasattr(lbfgsb, "_subspace_direction")
          else "_subspace_step", "subspace step")
    patch(kernels, "lbfgsb_direction", "direction")
    patch(lbfgsb, "more_thuente", "line search (no f)")
    patch(lbfgsb.CompactMemory, "add", "pair update")
    if hasattr(lbfgsb.CompactMemory, "form"):     # the pair formed with its products
        patch(lbfgsb.CompactMemory, "form", "pair update")
    patch(kernels, "bounds_projgrad_norm", "projgrad norm")
    patch(lbfgsb._Subspace, "middle", "middle matrix")
    patch(lbfgsb.FreeGram, "matrices", "free gram")
    first_alpha = []        # where each line search starts
    more_thuente = lbfgsb.more_thuente

    def record_start(line, alpha, *args, **kwargs):
        first_alpha.append(alpha)
        return more_thuente(line, alpha, *args, **kwargs)

    lbfgsb.more_thuente = record_start
    marks = []
    faults = []     # minor page faults: fresh memory touched (zeroed by the kernel)

    def callback(intermediate_result):
        marks.append((clock(), spent[0], nfev[0]))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        timers.on = len(marks) >= skip

    try:
        with fastopt.threads(threads):
            lbfgsb.minimize_lbfgsb(fg, x0, lower, upper, maxiter=iters, ftol=0.0, gtol=0.0,
                                   callback=callback)
    finally:
        lbfgsb.more_thuente = more_thuente
        for (owner, attr), fn in saved.items():
            setattr(owner, attr, fn)
    (t0, f0, e0), (t1, f1, e1) = marks[skip - 1], marks[-1]
    nit = len(marks) - skip
    total = 1e3 * ((t1 - t0) - (f1 - f0)) / nit
    per = {name: v / nit for name, v in timers.ms.items()}
    per["other"] = total - sum(per.values())
    starts = first_alpha[skip:]
    missed = sum(a != 1.0 for a in starts) / max(len(starts), 1)
    nbytes = phase_bytes(n, x0.dtype.itemsize, 10, case == "half", (e1 - e0) / nit, missed)
    return (total, per, 1e3 * (f1 - f0) / nit, (faults[-1] - faults[skip - 1]) / nit, nbytes,
            missed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--skip", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", nargs="+", default=["inactive", "half"])
    ap.add_argument("--clock", choices=["cpu", "wall"], default=None,
                    help="default: cpu with one thread, wall with more")
    args = ap.parse_args(argv)
    clock_name = args.clock or ("cpu" if args.threads == 1 else "wall")
    clock = time.thread_time if clock_name == "cpu" else time.perf_counter
    print(f"n = {args.n}, threads = {args.threads}, clock {clock_name}, "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    for case in args.cases:
        total, per, fms, faults, nbytes, missed = run(args.n, case, args.iters, args.skip,
                                                      args.threads, clock)
        print(f"{case}: {total:.2f} ms/it outside the objective (objective {fms:.2f} ms/it, "
              f"{faults:.0f} page faults/it, {100 * missed:.0f}% of line searches not "
              f"starting at 1)")
        for name, v in sorted(per.items(), key=lambda kv: -kv[1]):
            b = nbytes.get(name, 0)
            rate = f"{b / 1e6:7.0f} MB {b / (v * 1e6):6.1f} GB/s" if b and v > 0 else ""
            print(f"  {name:20s} {v:8.2f} ms  {rate}")
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
