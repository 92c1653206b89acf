"""Where L-BFGS-B's time per iteration goes, phase by phase, at n = 1e6.

Runs fastopt's L-BFGS-B on the problems of ``lbfgsb_overhead.py`` with timers around each
phase of the driver (the Cauchy point, the subspace step, the search direction, the line
search without the objective, the pair update, the projected-gradient norm, the middle
matrix) and prints milliseconds per steady-state iteration (after ``--skip``), the rest
of the iteration as ``other`` (the driver's Python), and the objective's own time. The
clock is the calling thread's CPU time (``time.thread_time``), so that time spent waiting
for a core on a busy machine is not counted (fastopt must run with one thread for that:
the default).

    python benchmarks/lbfgsb_phases.py --n 1000000 --iters 30
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


class Timers:
    def __init__(self, spent):
        self.spent = spent          # the objective's own time, [seconds]
        self.on = False
        self.ms: dict[str, float] = defaultdict(float)

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            t, f = time.thread_time(), self.spent[0]
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms[name] += 1e3 * ((time.thread_time() - t) - (self.spent[0] - f))
        return timed


def run(n, case, iters, skip, threads):
    fg_wall, x0, lower, upper, _ = problem(n, case)
    spent = [0.0]       # the objective's CPU time

    def fg(x):
        t = time.thread_time()
        try:
            return fg_wall(x)
        finally:
            spent[0] += time.thread_time() - t

    timers = Timers(spent)
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
    marks = []
    faults = []     # minor page faults: fresh memory touched (zeroed by the kernel)

    def callback(intermediate_result):
        marks.append((time.thread_time(), spent[0]))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
        timers.on = len(marks) >= skip

    try:
        with fastopt.threads(threads):
            lbfgsb.minimize_lbfgsb(fg, x0, lower, upper, maxiter=iters, ftol=0.0, gtol=0.0,
                                   callback=callback)
    finally:
        for (owner, attr), fn in saved.items():
            setattr(owner, attr, fn)
    (t0, f0), (t1, f1) = marks[skip - 1], marks[-1]
    nit = len(marks) - skip
    total = 1e3 * ((t1 - t0) - (f1 - f0)) / nit
    per = {name: v / nit for name, v in timers.ms.items()}
    per["other"] = total - sum(per.values())
    return total, per, 1e3 * (f1 - f0) / nit, (faults[-1] - faults[skip - 1]) / nit


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--skip", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", nargs="+", default=["inactive", "half"])
    args = ap.parse_args(argv)
    print(f"n = {args.n}, threads = {args.threads}, "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    for case in args.cases:
        total, per, fms, faults = run(args.n, case, args.iters, args.skip, args.threads)
        print(f"{case}: {total:.2f} ms/it outside the objective (objective {fms:.2f} ms/it, "
              f"{faults:.0f} page faults/it)")
        for name, v in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {name:20s} {v:8.2f} ms")
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
