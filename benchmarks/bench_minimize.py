"""Benchmarks of fastopt.minimize: solver overhead per iteration outside the objective.

asv suites (``setup`` + ``time_*``/``track_*``, ``params``/``param_names``):

* :class:`LbfgsIteration` -- 20 iterations of fastopt L-BFGS (1 and 2 threads) and scipy
  L-BFGS-B on extended Rosenbrock, n = 1e4 .. 1e6;
* :class:`BfgsIteration` -- the same for fastopt BFGS and scipy BFGS, n = 100 .. 1000.

``track_overhead_ms`` reports the time per iteration spent outside the objective (the
run's wall time minus the time inside ``fun``, divided by the iterations; runs without a
callback), the number the design targets are about; ``track_steady_overhead_ms`` the same
over the iterations after the first ``m + 1`` (L-BFGS; measured as the difference with a
run stopped there) -- without the one-time cost of first touching the
curvature memory (both solvers allocate theirs, ~0.2 GB at n = 1e6, and first-touch page
faults are expensive on this VM); ``time_run`` is the whole run (asv's regression gate).

Run directly for the report (one process, the solvers interleaved, median of repeats, so
that the load other processes put on the machine affects both sides alike)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_minimize.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # BLAS pinned: no pool fights

import scipy.optimize as so  # noqa: E402

try:
    import fastopt  # noqa: E402  (the installed package)
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import fastopt  # noqa: E402
from fastopt.optimize import minimize as fo_minimize  # noqa: E402
from fastopt.optimize.problems import get_problem  # noqa: E402

ITERATIONS = 40          # extended Rosenbrock at n = 1e6 converges in about 40
STEADY_FROM = 12         # iterations after the L-BFGS memory (m = 10) is full


class _Timed:
    """Extended Rosenbrock (f, g) that adds up the time spent inside it."""

    def __init__(self, n):
        self.p = get_problem("ext_rosenbrock")
        self.x0 = self.p.x0(n)
        self.inside = 0.0

    def __call__(self, x):
        t = time.perf_counter()
        out = self.p.fg(x)
        self.inside += time.perf_counter() - t
        return out


def _outside(solver: str, n: int, threads: int, iterations: int):
    """One run without a callback (a callback's intermediate results cost copies that are
    not the solver's): (seconds outside the objective, iterations done)."""
    obj = _Timed(n)
    method = solver.split()[1]
    t = time.perf_counter()
    if solver.startswith("fastopt"):
        with fastopt.threads(threads):
            res = fo_minimize(obj, obj.x0, jac=True, method=method,
                              options={"maxiter": iterations, "gtol": 0.0})
    else:
        opts = {"maxiter": iterations, "gtol": 0.0}
        if method == "L-BFGS-B":
            opts["ftol"] = 0.0
        res = so.minimize(obj, obj.x0, jac=True, method=method, options=opts)
    return time.perf_counter() - t - obj.inside, res.nit


def run(solver: str, n: int, threads: int = 1, iterations: int = ITERATIONS):
    """Overhead per iteration outside the objective.

    Returns (over the whole run of `iterations` iterations, over the iterations after the
    first STEADY_FROM -- the difference with a run that stops there: the iterates are the
    same -- and the iterations done)."""
    whole_s, nit = _outside(solver, n, threads, iterations)
    steady = float("nan")
    if nit > STEADY_FROM + 1:
        first_s, first_nit = _outside(solver, n, threads, STEADY_FROM)
        steady = (whole_s - first_s) / (nit - first_nit)
    return whole_s / nit, steady, nit


class LbfgsIteration:
    params = ([10_000, 100_000, 1_000_000],
              ["fastopt L-BFGS", "scipy L-BFGS-B"], [1, 2])
    param_names = ["n", "solver", "threads"]
    timeout = 300

    def setup(self, n, solver, threads):
        if solver.startswith("scipy") and threads != 1:
            raise NotImplementedError   # asv skips: scipy's L-BFGS-B is single-threaded
        self.n, self.solver, self.threads = n, solver, threads

    def time_run(self, n, solver, threads):
        run(solver, n, threads)

    def track_overhead_ms(self, n, solver, threads):
        return 1e3 * run(solver, n, threads)[0]

    track_overhead_ms.unit = "ms/iteration"

    def track_steady_overhead_ms(self, n, solver, threads):
        return 1e3 * run(solver, n, threads)[1]

    track_steady_overhead_ms.unit = "ms/iteration"


class BfgsIteration:
    params = ([100, 300, 1000], ["fastopt BFGS", "scipy BFGS"])
    param_names = ["n", "solver"]
    timeout = 300

    def setup(self, n, solver):
        self.n, self.solver = n, solver

    def time_run(self, n, solver):
        run(solver, n)

    def track_overhead_ms(self, n, solver):
        return 1e3 * run(solver, n)[0]

    track_overhead_ms.unit = "ms/iteration"


def _compare(label, ours, theirs, n, repeats, threads=1, iterations=ITERATIONS):
    rows = {"whole": ([], [], []), "steady": ([], [], [])}
    for _ in range(repeats):      # interleaved: both see the same machine load
        a_whole, a_steady, nit_a = run(ours, n, threads, iterations)
        b_whole, b_steady, nit_b = run(theirs, n, 1, iterations)
        for key, a, b in (("whole", a_whole, b_whole), ("steady", a_steady, b_steady)):
            rows[key][0].append(a)
            rows[key][1].append(b)
            rows[key][2].append(a / b)
    for key, (ra, rb, ratios) in rows.items():
        if any(v != v for v in ra + rb):
            continue
        print(f"{label:30s} {key:6s} n={n:>9,d}  {ours:>14s} {1e3 * statistics.median(ra):8.2f} ms"
              f"  {theirs:>14s} {1e3 * statistics.median(rb):8.2f} ms  ratio "
              f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
              f"  [{nit_a}/{nit_b} it]")


def main(argv=None):
    ap = argparse.ArgumentParser(description="solver overhead per iteration, fastopt vs scipy")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    info = fastopt._kernels.build_info()
    print(f"fastopt {fastopt.__version__}: openmp={info['openmp']}, simd={info['simd_target']}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}; extended Rosenbrock, "
          f"{ITERATIONS} iterations, time outside the objective per iteration, median of "
          f"{args.repeats}")
    for t in args.threads:
        _compare(f"L-BFGS vs L-BFGS-B ({t} thread{'s' if t > 1 else ''})", "fastopt L-BFGS",
                 "scipy L-BFGS-B", 1_000_000, args.repeats, t)
    _compare("BFGS vs BFGS", "fastopt BFGS", "scipy BFGS", 1000, max(3, args.repeats // 2),
             iterations=20)


if __name__ == "__main__":
    main()
