"""L-BFGS with few barriers: the two-loop recursion against the vector-free form.

The plain two-loop recursion makes 2m + 1 synchronised parallel passes per iteration
(m = 10: 21), the vector-free form (``LbfgsMemory(vector_free=True)``) 2-3. On a quiet
machine the passes cost bandwidth; on a busy one each synchronised pass may wait for a
preempted thread. This script measures the solver's overhead per iteration outside the
objective (extended Rosenbrock; the iterations after the memory is full, as
``bench_minimize.py``'s "steady" figure, by default timed within one solve: see
``steady_overhead``), for both forms at 1 and 2 threads and under
fastopt's default thread policy, against scipy's L-BFGS-B, quiet and with one other
CPU-bound process that the script starts and stops::

    python benchmarks/lbfgs_barriers.py                         # n = 1e5, 1e6; quiet, busy
    python benchmarks/lbfgs_barriers.py --sizes 1e7 --repeats 3 --iterations 20

All contenders of one size and condition run interleaved (rotating order), and the
median of the repeats is printed with its ratio to scipy's overhead in the same repeat.

The "memory floor" rows (``--floor``, on by default) bound what any L-BFGS with scipy's
semantics can reach here: the least bytes an iteration must move (see ``FLOOR_VECTORS``)
at the rate ``fastopt._kernels.dot`` reads the stored rows in the same repeat and thread
count (the fastest stream this machine gives: pure reads, no writes).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # scipy's BLAS pinned: no pool fights

import numpy as np
import scipy.optimize as so

try:
    import fastopt
except ImportError:  # a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import fastopt
from fastopt import _kernels
from fastopt.bench_loop import background_load, rotated


def _solver_module():
    """The module whose LbfgsMemory fastopt.minimize constructs (renamed across versions)."""
    for name in ("fastopt.optimize._minimize", "fastopt.minimize._minimize"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "LbfgsMemory"):
            return module
    raise ImportError("no fastopt module constructs LbfgsMemory")


def _problem():
    for name in ("fastopt.optimize.problems", "fastopt.minimize.problems"):
        try:
            return importlib.import_module(name).get_problem("ext_rosenbrock")
        except ImportError:
            continue
    raise ImportError("no fastopt problems module")


@contextlib.contextmanager
def memory_form(vector_free):
    """fastopt.minimize builds its L-BFGS memory with ``vector_free`` (None: its default)."""
    module = _solver_module()
    original = module.LbfgsMemory
    if vector_free is not None:
        module.LbfgsMemory = lambda *a, **k: original(*a, **{**k, "vector_free": vector_free})
    try:
        yield
    finally:
        module.LbfgsMemory = original


class _Timed:
    """The objective, adding up the seconds spent inside it; `marks[j]`: the seconds spent
    outside it (since `start`) when evaluation j began."""

    def __init__(self, problem, n):
        self.problem, self.x0, self.inside = problem, problem.x0(n), 0.0
        self.marks: list[float] = []
        self.start = time.perf_counter()

    def __call__(self, x):
        t = time.perf_counter()
        self.marks.append(t - self.start - self.inside)
        out = self.problem.fg(x)
        self.inside += time.perf_counter() - t
        return out


def _run(contender, problem, n, iterations, callback=None, obj=None):
    """One solve of `iterations` iterations: (the timed objective, seconds outside it,
    iterations done)."""
    form, threads = contender
    obj = obj or _Timed(problem, n)
    if form == "scipy":
        res = so.minimize(obj, obj.x0, jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": iterations, "gtol": 0.0, "ftol": 0.0})
    else:
        with memory_form({"two-loop": False, "vector-free": True, "default": None}[form]), \
                (fastopt.threads(threads) if threads else contextlib.nullcontext()):
            res = fastopt.minimize(obj, obj.x0, jac=True, method="L-BFGS", callback=callback,
                                   options={"maxiter": iterations, "gtol": 0.0})
    return obj, time.perf_counter() - obj.start - obj.inside, res.nit


def iteration_starts(contender, problem, n, iterations):
    """`starts[k]`: the index of the first evaluation of iteration k + 1 (k = 0..iterations),
    from one solve whose callback counts the evaluations so far (the iterates, and so the
    evaluations, are the same in every solve, whatever the threads)."""
    obj = _Timed(problem, n)
    starts = [0]

    def count(intermediate_result):
        starts.append(len(obj.marks))

    _run(contender, problem, n, iterations + 1, callback=count, obj=obj)
    return starts


def steady_overhead(contender, problem, n, iterations, steady_from, starts=None):
    """Seconds per iteration outside the objective over iterations steady_from + 1 ..
    iterations (after the memory filled).

    With `starts` (:func:`iteration_starts`): within one solve without a callback, the time
    outside the objective between the first evaluation of iteration steady_from + 1 and
    that of iteration iterations + 1 (the solve's start -- allocation, first touch of the
    memory -- is outside that window, and a callback's copies are not in the solve).
    Without: the difference between a solve of `iterations` and one of `steady_from`
    iterations (each with its start)."""
    if starts is not None:
        obj, _, nit = _run(contender, problem, n, iterations + 1)
        if nit <= iterations or len(obj.marks) <= starts[iterations]:
            raise RuntimeError(f"{label(contender)} stopped early ({nit} iterations)")
        return ((obj.marks[starts[iterations]] - obj.marks[starts[steady_from]])
                / (iterations - steady_from))
    _, whole, nit = _run(contender, problem, n, iterations)
    _, first, nit_first = _run(contender, problem, n, steady_from)
    return (whole - first) / max(1, nit - nit_first)


#: Vectors of n elements an iteration must move at the least, beyond the 2m stored rows
#: read twice by the direction (any form of the recursion needs every row in two passes:
#: the second pass's coefficients depend on reductions over the whole first pass): the
#: direction's last pass reads g and x and writes d and the first trial point x + d (4);
#: the objective gets its own copy of the point (scipy copies too: 2); forming the new
#: pair reads x_new, x, g_new, g and writes s and y (6). Extra line-search evaluations,
#: Python and the objective's own reads are not counted: a generous floor.
FLOOR_VECTORS = 12
#: The pairs kept: fastopt's and scipy's default (maxcor = 10), as the solves here use.
MEMORY = 10

_floor_rows: dict[int, object] = {}


def memory_floor(n, m, threads):
    """Seconds per iteration at least (see FLOOR_VECTORS): the (4m + 12) n elements at the
    rate fastopt's dot reads the 2m rows of an (m, n) pair of float64 arrays on `threads`
    threads, the fastest of three reads (cold: the 16 m n bytes do not fit a cache at the
    sizes this is for)."""
    if n not in _floor_rows:
        _floor_rows.clear()
        rng = np.random.default_rng(0)
        _floor_rows[n] = (rng.standard_normal((m, n)), rng.standard_normal((m, n)))
    S, Y = _floor_rows[n]
    seconds = []
    with fastopt.threads(threads):
        for _ in range(3):  # a floor: the fastest of three reads
            t = time.perf_counter()
            for i in range(m):
                _kernels.dot(S[i], Y[i])
            seconds.append(time.perf_counter() - t)
    return min(seconds) * (4 * m + FLOOR_VECTORS) / (2 * m)


def label(contender):
    form, threads = contender
    if form == "scipy":
        return "scipy L-BFGS-B"
    count = f"{threads} thread{'s' if threads > 1 else ''}" if threads else "default threads"
    return f"memory floor, {count}" if form == "floor" else f"{form}, {count}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e5,1e6", help="comma-separated n")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--steady-from", type=int, default=12)
    ap.add_argument("--conditions", default="quiet,busy")
    ap.add_argument("--threads", default="1,2,0", help="explicit counts; 0 = the default")
    ap.add_argument("--estimator", choices=["window", "difference"], default="window",
                    help="window (default): the steady iterations' time within one solve; "
                         "difference: a solve of --iterations minus one of --steady-from "
                         "(see steady_overhead)")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="leave out the memory floor rows (see memory_floor)")
    args = ap.parse_args(argv)
    problem = _problem()
    threads = [int(t) for t in args.threads.split(",")]
    contenders = [("scipy", 1)] + [(form, t) for form in ("two-loop", "vector-free")
                                   for t in threads]
    if args.floor:
        contenders += [("floor", t) for t in sorted({t for t in threads if t} or {1})]
    print(f"fastopt {fastopt.__version__}; policy: {fastopt._config.thread_policy()['summary']}"
          if hasattr(fastopt._config, "thread_policy") else f"fastopt {fastopt.__version__}")
    print(f"extended Rosenbrock, ms per iteration outside the objective (iterations "
          f"{args.steady_from + 1}..{args.iterations}, {args.estimator} estimate), median of "
          f"{args.repeats} interleaved repeats; ratio = fastopt / scipy in the same repeat")
    for condition in args.conditions.split(","):
        for n in [int(float(s)) for s in args.sizes.split(",")]:
            samples = {c: [] for c in contenders}
            ratios = {c: [] for c in contenders}
            load = os.getloadavg()[0]
            starts = {}
            if args.estimator == "window":  # per form: the iterates do not depend on threads
                for form in dict.fromkeys(c[0] for c in contenders if c[0] != "floor"):
                    starts[form] = iteration_starts((form, 1), problem, n, args.iterations)
            with (background_load(1, 3600) if condition == "busy"
                  else contextlib.nullcontext()):
                for r in range(args.repeats):
                    got = {c: memory_floor(n, MEMORY, c[1]) if c[0] == "floor" else
                           steady_overhead(c, problem, n, args.iterations, args.steady_from,
                                           starts.get(c[0])) for c in rotated(contenders, r)}
                    for c in contenders:
                        samples[c].append(got[c])
                        ratios[c].append(got[c] / got[("scipy", 1)])
            print(f"\n{condition}{' (+1 busy process)' if condition == 'busy' else ''}, "
                  f"n = {n:,}, load average {load:.2f} at start")
            for c in contenders:
                print(f"  {label(c):30s} {1e3 * statistics.median(samples[c]):8.2f} ms"
                      + ("" if c[0] == "scipy" else
                         f"   x scipy {statistics.median(ratios[c]):.3f}"
                         f" (min {min(ratios[c]):.3f}, max {max(ratios[c]):.3f})"),
                      flush=True)


if __name__ == "__main__":
    main()
