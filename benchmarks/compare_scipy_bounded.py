"""The bound-constrained collection: fastopt's L-BFGS-B against scipy's.

``python benchmarks/compare_scipy.py --bounded [options]`` runs this (or run it
directly). Problems (:mod:`fastopt.optimize.bounded_problems`):

* every problem of the test collection at each ``--n`` with a mixed box that cuts off
  its unconstrained minimiser (found first by fastopt's L-BFGS-B without bounds, gtol
  1e-8);
* nonnegative least squares, also solved by :func:`scipy.optimize.nnls` (the reference
  solution: max |x - x_nnls| is reported);
* L2-regularised logistic regression with coefficients in [-0.5, 0.5].

Solvers: scipy's and fastopt's L-BFGS-B with scipy's defaults, and both with ``ftol=0``
(gtol and maxiter only). Solved = the max-norm of the projected gradient at the returned
point, computed here, is at most 1e-5 (relative to max(1, |f|) for the logistic and NNLS
problems, whose f is large); nfev = calls of ``fun -> (f, g)``, counted here. BLAS is
pinned to one thread.

    python benchmarks/compare_scipy.py --bounded --n 10 100 -v
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

try:
    import fastopt  # noqa: F401,E402
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import scipy.optimize as so  # noqa: E402

from fastopt.optimize.bounded_problems import boxed_problem, logistic_problem, nnls_problem  # noqa: E402
from fastopt.optimize.bounds_reference import bounds_projgrad_norm  # noqa: E402
from fastopt.optimize.lbfgsb import minimize_lbfgsb  # noqa: E402
from fastopt.optimize.problems import PROBLEMS  # noqa: E402

GTOL = 1e-5
SOLVERS = {
    "scipy L-BFGS-B": ("scipy", {}),
    "fastopt L-BFGS-B": ("fastopt", {}),
    "scipy ftol=0": ("scipy", {"ftol": 0.0}),
    "fastopt ftol=0": ("fastopt", {"ftol": 0.0}),
}


def run(bp, solver, maxiter, relative):
    lib, extra = SOLVERS[solver]
    calls = [0]

    def fg(x):
        calls[0] += 1
        return bp.fg(x)

    opts = {"maxiter": maxiter, **extra}
    t = time.perf_counter()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if lib == "scipy":
                res = so.minimize(fg, bp.x0, jac=True, method="L-BFGS-B",
                                  bounds=bp.bounds(), options=opts)
            else:
                res = minimize_lbfgsb(fg, bp.x0, bp.lower, bp.upper, **opts)
            x = np.asarray(res.x, dtype=np.float64)
            status = int(res.status)
        except Exception:          # a crash counts as unsolved
            x, status = bp.x0, -1
        elapsed = time.perf_counter() - t
        f, g = bp.fg(x)
    pg = bounds_projgrad_norm(x, g, bp.lower, bp.upper)
    tol = GTOL * (max(1.0, abs(f)) if relative else 1.0)
    return {"nfev": calls[0], "pg": pg, "f": float(f), "solved": bool(pg <= tol),
            "status": status, "time": elapsed, "x": x}


def collection(ns, names):
    out = []
    for n in ns:
        for name in names:
            p = PROBLEMS[name]
            with np.errstate(all="ignore"):
                xs = minimize_lbfgsb(p.fg, p.x0(p.admissible_n(n)), gtol=1e-8,
                                     maxiter=5000).x
            out.append((boxed_problem(name, n, xs), False))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--maxiter", type=int, default=15000)
    ap.add_argument("--problems", nargs="+", default=None)
    ap.add_argument("--no-extra", action="store_true",
                    help="leave out the NNLS and logistic problems")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    names = args.problems or list(PROBLEMS)
    probs = collection(args.n, names)
    if not args.no_extra:
        probs += [(nnls_problem(200, 100, seed=0), True), (nnls_problem(2000, 500, seed=1), True),
                  (logistic_problem(1000, 50, seed=0), True),
                  (logistic_problem(5000, 200, seed=1), True)]
    results = {}
    for bp, rel in probs:
        for s in SOLVERS:
            results[(bp.name, s)] = run(bp, s, args.maxiter, rel)
        if bp.name.startswith("nnls"):
            x_ref, _ = so.nnls(bp.fg.A, bp.fg.b)
            for s in SOLVERS:
                results[(bp.name, s)]["dx_nnls"] = float(np.abs(results[(bp.name, s)]["x"]
                                                               - x_ref).max())
    if args.verbose:
        print(f"{'problem':30s}" + "".join(f"{s:>24s}" for s in SOLVERS))
        for bp, _ in probs:
            row = f"{bp.name:30s}"
            for s in SOLVERS:
                r = results[(bp.name, s)]
                row += f"{'ok' if r['solved'] else '--':>3s} {r['nfev']:6d} {r['pg']:8.1e} " \
                       f"{r['status']:3d} "
            print(row)
        for bp, _ in probs:
            if bp.name.startswith("nnls"):
                print(f"{bp.name}: max|x - x_nnls| " + ", ".join(
                    f"{s}: {results[(bp.name, s)]['dx_nnls']:.1e}" for s in SOLVERS))
    print(f"\nsolved = projected-gradient max-norm <= {GTOL:g} at the returned point; "
          f"{len(probs)} problems (collection at n = {args.n}, boxed; NNLS; logistic); "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    print(f"{'solver':22s} {'solved':>9s} {'total nfev':>11s} {'time [s]':>9s}")
    for s in SOLVERS:
        rs = [results[(bp.name, s)] for bp, _ in probs]
        print(f"{s:22s} {sum(r['solved'] for r in rs):4d}/{len(rs):<4d} "
              f"{sum(r['nfev'] for r in rs):11d} {sum(r['time'] for r in rs):9.1f}")
    for ours, theirs in (("fastopt L-BFGS-B", "scipy L-BFGS-B"),
                         ("fastopt ftol=0", "scipy ftol=0")):
        both = [bp.name for bp, _ in probs if results[(bp.name, ours)]["solved"]
                and results[(bp.name, theirs)]["solved"]]
        fo = sum(results[(nm, ours)]["nfev"] for nm in both)
        sc = sum(results[(nm, theirs)]["nfev"] for nm in both)
        print(f"solved by both {ours} and {theirs}: {len(both)}, nfev {fo} vs {sc} "
              f"(ratio {fo / max(sc, 1):.3f})")


if __name__ == "__main__":
    main()
