"""L-BFGS-B's time per iteration outside the objective: fastopt against scipy, n = 1e6.

Two bound-constrained quadratics ``f = sum a_i (x_i - c_i)^2 / 2`` (``a`` log-spaced over
three decades, so both solvers need many iterations):

* ``inactive``: finite bounds ``[-1e3, 1e3]`` that never become active;
* ``half``: ``x >= 0`` with ``c_i < 0`` on half the variables: half of them end on the
  bound (and reach it progressively).

Each solver runs ``--iters`` iterations (maxiter; ftol = gtol = 0 so nothing else stops
it). The time per iteration is taken between the callbacks of iteration ``--skip`` and
the last one (the steady state: the first ``maxcor`` iterations of both solvers also
first-touch their pair memory, 160 MB at n = 1e6), minus the time spent inside the
objective in that window, measured by the objective itself. Runs alternate between the
solvers (``--repeats``), medians reported.
BLAS is pinned to one thread; fastopt runs with ``--threads`` threads.

    python benchmarks/lbfgsb_overhead.py --n 1000000 --iters 30 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import fastopt  # noqa: F401,E402
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import scipy.optimize as so  # noqa: E402

import fastopt  # noqa: E402
from fastopt.optimize.lbfgsb import minimize_lbfgsb  # noqa: E402


def problem(n: int, case: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = np.logspace(0, 3, n)
    rng.shuffle(a)
    c = rng.uniform(0.5, 2.0, n)
    if case == "half":
        c[::2] *= -1.0
        lower, upper = np.zeros(n), np.full(n, np.inf)
        x0 = np.full(n, 1.0)
    else:
        lower, upper = np.full(n, -1e3), np.full(n, 1e3)
        x0 = np.zeros(n)
    spent = [0.0]
    buf = np.empty(n)

    def fg(x):
        t = time.perf_counter()
        np.subtract(x, c, out=buf)
        g = a * buf
        f = 0.5 * float(np.dot(buf, g))
        spent[0] += time.perf_counter() - t
        return f, g

    return fg, x0, lower, upper, spent


def run(solver: str, n: int, case: str, iters: int, threads: int, skip: int):
    fg, x0, lower, upper, spent = problem(n, case)
    marks = []

    def callback(intermediate_result):
        marks.append((time.perf_counter(), spent[0]))

    if solver == "scipy":
        res = so.minimize(fg, x0, jac=True, method="L-BFGS-B",
                          bounds=so.Bounds(lower, upper), callback=callback,
                          options={"maxiter": iters, "ftol": 0.0, "gtol": 0.0})
    else:
        with fastopt.threads(threads):
            res = minimize_lbfgsb(fg, x0, lower, upper, maxiter=iters, ftol=0.0, gtol=0.0,
                                  callback=callback)
    (t0, f0), (t1, f1) = marks[skip - 1], marks[-1]
    per_it = ((t1 - t0) - (f1 - f0)) / (len(marks) - skip)
    at_bound = int(np.count_nonzero((res.x == lower) | (res.x == upper)))
    return per_it, res.nit, res.nfev, float(res.fun), at_bound


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--skip", type=int, default=12,
                    help="iterations left out of the timing (memory first touch)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", nargs="+", default=["inactive", "half"])
    args = ap.parse_args(argv)
    print(f"n = {args.n}, {args.iters} iterations, fastopt threads = {args.threads}, "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    for case in args.cases:
        times: dict[str, list[float]] = {"scipy": [], "fastopt": []}
        info = {}
        for _ in range(args.repeats):
            for solver in ("scipy", "fastopt"):
                per_it, nit, nfev, f, at_bound = run(solver, args.n, case, args.iters,
                                                     args.threads, args.skip)
                times[solver].append(per_it)
                info[solver] = (nit, nfev, f, at_bound)
        ms = {s: 1e3 * float(np.median(v)) for s, v in times.items()}
        print(f"{case:9s} scipy {ms['scipy']:8.2f} ms/it  fastopt {ms['fastopt']:8.2f} ms/it  "
              f"ratio {ms['fastopt'] / ms['scipy']:.3f}   "
              + "  ".join(f"{s}: nit={i[0]} nfev={i[1]} f={i[2]:.6g} at_bound={i[3]}"
                          for s, i in info.items()))
    print(f"load after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
