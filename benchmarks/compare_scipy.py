"""Compare fastopt's BFGS / L-BFGS with scipy's BFGS / L-BFGS-B on the test collection.

Runs every problem of :mod:`fastopt.optimize.problems` at n = 10, 100, 1000 (each
problem at its nearest admissible size) from its standard starting point with
the same gtol and maxiter for all four solvers, and prints, per solver and n,
how many problems were solved -- ``max|g_i| <= 1e-5`` at the returned point,
computed here, whatever the solver's own status -- and the total number of
function evaluations (calls of the combined ``fun -> (f, g)``, counted here).

    python benchmarks/compare_scipy.py                 # whole table (slow: scipy BFGS
                                                        # at n=1000 is O(n^3) per iteration)
    python benchmarks/compare_scipy.py --n 10 100 -v   # per-problem lines
    python benchmarks/compare_scipy.py --cache /tmp/scipy.json   # reuse scipy's runs
    python benchmarks/compare_scipy.py --bounded --n 10 100   # the bound-constrained
                                        # collection (benchmarks/compare_scipy_bounded.py)

Each solver runs with its own defaults except gtol and maxiter (scipy's
L-BFGS-B keeps its ftol = 2.2e-9 and maxfun = 15000; fastopt's L-BFGS its
maxfun = 15000).  scipy's ftol stops L-BFGS-B on about half the runs before
gtol is reached, so two more solvers (``--solvers``) compare the stopping rules
like with like: "scipy L-BFGS-B ftol=0" (gtol/maxiter only, as fastopt) and
"fastopt L-BFGS ftol=2.2e-9" (scipy's default ftol).  maxiter is 2000, except for the two BFGS solvers at n >= 1000,
which both get ``--bfgs-maxiter-large`` (500): scipy's BFGS costs O(n^3) per
iteration (0.2-0.4 s at n = 1000 here; the n = 1000 BFGS column alone took 1.5 h
of CPU at maxiter 500).  BLAS is pinned to one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import fastopt  # noqa: F401,E402  (the installed package)
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import scipy.optimize as so  # noqa: E402

from fastopt.optimize import minimize as fo_minimize  # noqa: E402
from fastopt.optimize.problems import PROBLEMS  # noqa: E402

SOLVERS = {
    "fastopt BFGS": ("fastopt", "BFGS", {}),
    "fastopt L-BFGS": ("fastopt", "L-BFGS", {}),
    # with scipy L-BFGS-B's default relative-decrease stop (factr 1e7 * eps = 2.2e-9)
    "fastopt L-BFGS ftol=2.2e-9": ("fastopt", "L-BFGS", {"ftol": 1e7 * 2.220446049250313e-16}),
    "scipy BFGS": ("scipy", "BFGS", {}),
    "scipy L-BFGS-B": ("scipy", "L-BFGS-B", {}),
    # scipy's L-BFGS-B without its relative-decrease stop: the same stopping rule as
    # fastopt's L-BFGS (gtol, maxiter, maxfun), so totals compare like with like
    "scipy L-BFGS-B ftol=0": ("scipy", "L-BFGS-B", {"ftol": 0.0}),
}
DEFAULT_SOLVERS = ["fastopt BFGS", "fastopt L-BFGS", "scipy BFGS", "scipy L-BFGS-B"]
GTOL = 1e-5


def run_one(task):
    solver, name, n, maxiter = task
    lib, method, extra = SOLVERS[solver]
    p = PROBLEMS[name]
    m = p.admissible_n(n)
    x0 = p.x0(m)
    calls = [0]

    def fg(x):
        calls[0] += 1
        return p.fg(x)

    opts = {"gtol": GTOL, "maxiter": maxiter, **extra}
    t = time.perf_counter()
    with np.errstate(all="ignore"):
        try:
            if lib == "fastopt":
                res = fo_minimize(fg, x0, jac=True, method=method, options=opts)
            else:
                res = so.minimize(fg, x0, jac=True, method=method, options=opts)
            x = np.asarray(res.x, dtype=np.float64)
            err = ""
        except Exception as exc:  # a crash counts as unsolved
            x, res, err = x0, None, repr(exc)
        elapsed = time.perf_counter() - t
        f, g = p.fg(x)
    gmax = float(np.max(np.abs(g))) if np.all(np.isfinite(g)) else float("inf")
    return {"solver": solver, "problem": name, "n": n, "m": m, "maxiter": maxiter,
            "nfev": calls[0], "gmax": gmax, "f": float(f), "solved": bool(gmax <= GTOL),
            "nit": int(res.nit) if res is not None else 0, "time": elapsed,
            "status": int(res.status) if res is not None else -1, "error": err}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--bounded" in argv:       # L-BFGS-B with bounds: its own collection and report
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from compare_scipy_bounded import main as bounded_main
        return bounded_main([a for a in argv if a != "--bounded"])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--maxiter", type=int, default=2000)
    ap.add_argument("--bfgs-maxiter-large", type=int, default=500,
                    help="maxiter of both BFGS solvers at n >= 1000")
    ap.add_argument("--problems", nargs="+", default=None)
    ap.add_argument("--solvers", nargs="+", default=DEFAULT_SOLVERS,
                    help="any of: " + ", ".join(repr(s) for s in SOLVERS))
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cache", default=None,
                    help="JSON file holding scipy's runs (read if present, then updated)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    names = args.problems or list(PROBLEMS)
    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as fh:
            cache = {tuple(k.split("|")): v for k, v in json.load(fh).items()}

    def key(t):
        return (t[0], t[1], str(t[2]), str(t[3]))

    def maxiter(s, n):
        return args.bfgs_maxiter_large if ("BFGS" in s and "L-" not in s and n >= 1000) \
            else args.maxiter

    tasks = [(s, name, n, maxiter(s, n)) for n in args.n for name in names for s in args.solvers]
    todo = [t for t in tasks if not (SOLVERS[t[0]][0] == "scipy" and key(t) in cache)]
    results = {key(t): cache[key(t)] for t in tasks if key(t) in cache
               and SOLVERS[t[0]][0] == "scipy"}
    def save():
        if args.cache:
            for k, v in results.items():
                if SOLVERS[k[0]][0] == "scipy":
                    cache[k] = v
            with open(args.cache + ".tmp", "w") as fh:
                json.dump({"|".join(k): v for k, v in cache.items()}, fh)
            os.replace(args.cache + ".tmp", args.cache)

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            for t, r in zip(todo, ex.map(run_one, todo, chunksize=1)):
                results[key(t)] = r
                if SOLVERS[t[0]][0] == "scipy":
                    save()          # scipy's runs are slow: keep each as it finishes
    else:
        for t in todo:
            results[key(t)] = run_one(t)
            if SOLVERS[t[0]][0] == "scipy":
                save()
    save()
    missing = [t for t in tasks if key(t) not in results]
    if missing:
        sys.exit(f"{len(missing)} runs missing")

    if args.verbose:
        for n in args.n:
            print(f"\n== n = {n}")
            print(f"{'problem':28s}" + "".join(f"{s:>26s}" for s in args.solvers))
            for name in names:
                row = f"{name:28s}"
                for s in args.solvers:
                    r = results[key((s, name, n, maxiter(s, n)))]
                    mark = "ok" if r["solved"] else "--"
                    row += f"{mark:>4s} {r['nfev']:6d} {r['gmax']:9.1e} {r['status']:3d}"
                print(row)
    print(f"\nsolved = max|g_i| <= {GTOL:g} at the returned point; nfev = calls of fun "
          f"(f and g together); maxiter = {args.maxiter} ({args.bfgs_maxiter_large} for "
          f"BFGS at n >= 1000); {len(names)} problems")
    print(f"{'n':>6s} {'solver':26s} {'solved':>8s} {'total nfev':>11s} {'time [s]':>9s}")
    for n in args.n:
        for s in args.solvers:
            rs = [results[key((s, name, n, maxiter(s, n)))] for name in names]
            print(f"{n:6d} {s:26s} {sum(r['solved'] for r in rs):4d}/{len(rs):<3d} "
                  f"{sum(r['nfev'] for r in rs):11d} {sum(r['time'] for r in rs):9.1f}")
    for s in args.solvers:
        rs = [results[key((s, name, n, maxiter(s, n)))] for n in args.n for name in names]
        print(f"{'all':>6s} {s:26s} {sum(r['solved'] for r in rs):4d}/{len(rs):<3d} "
              f"{sum(r['nfev'] for r in rs):11d} {sum(r['time'] for r in rs):9.1f}")
    # like against like, on the problems both solve (per-problem efficiency)
    for ours, theirs in (("fastopt L-BFGS", "scipy L-BFGS-B"),
                         ("fastopt L-BFGS", "scipy L-BFGS-B ftol=0"),
                         ("fastopt L-BFGS ftol=2.2e-9", "scipy L-BFGS-B"),
                         ("fastopt BFGS", "scipy BFGS")):
        if ours not in args.solvers or theirs not in args.solvers:
            continue
        both = [(n, name) for n in args.n for name in names
                if results[key((ours, name, n, maxiter(ours, n)))]["solved"]
                and results[key((theirs, name, n, maxiter(theirs, n)))]["solved"]]
        fo = sum(results[key((ours, name, n, maxiter(ours, n)))]["nfev"] for n, name in both)
        sc = sum(results[key((theirs, name, n, maxiter(theirs, n)))]["nfev"] for n, name in both)
        print(f"solved by both {ours} and {theirs}: {len(both)} runs, nfev {fo} vs {sc}")


if __name__ == "__main__":
    main()
