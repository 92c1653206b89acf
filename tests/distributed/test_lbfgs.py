"""fastopt.distributed.minimize: L-BFGS over a vector split by rank. The MPI runs (n = 1e5,
``mpirun -n 2`` and ``mpirun -n 4 --oversubscribe``, each bounded by a timeout; skipped
without mpi4py or mpirun) are in mpi_lbfgs.py; here their iterates are compared with the
single-process solvers on the concatenated vector."""

import functools
import json
import os

import numpy as np
import pytest

import fastopt
from fastopt.optimize._minimize import _qn_options
from fastopt.optimize._quasi_newton import run_quasi_newton
from fastopt.optimize.lbfgs import LbfgsMemory
from fastopt.optimize.objective import Objective
from fastopt_testing.mpi_launch import run_mpi
from fastopt_testing.sharded_problem import data, start, whole

HERE = os.path.dirname(os.path.abspath(__file__))
N = 100_000
OPTIONS = {"gtol": 1e-8}


def _recorder():
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.fun, intermediate_result.step_size))
    return seen, callback


@functools.cache
def single_process():
    """The concatenated problem solved in this process: the same iteration with the
    vector-free memory (what the distributed run computes, reductions aside), and
    fastopt.minimize (the classic two-loop recursion)."""
    a, t = data(N)
    fun = whole(a, t)
    obj = Objective(fun, (N,), np.dtype(np.float64), (), jac=True, maxfun=15000)
    qn, _ = _qn_options(OPTIONS, np.dtype(np.float64), 15000, 15000)
    trajectory, callback = _recorder()
    vector_free = run_quasi_newton(obj, start(N), LbfgsMemory(N, 10, np.float64,
                                                              vector_free=True),
                                   qn, callback, lambda r: r)
    classic = fastopt.minimize(fun, start(N), jac=True, method="L-BFGS", options=OPTIONS)
    return vector_free, trajectory, classic, fun(start(N))[0]


@pytest.mark.parametrize("ranks", [2, 4])
def test_same_iterates_as_the_single_process_solver(tmp_path, ranks):
    out = tmp_path / "results.json"
    run_mpi(os.path.join(HERE, "mpi_lbfgs.py"), ranks, out, timeout=180)
    results = json.loads(out.read_text())
    x = np.load(str(out) + ".npy")
    assert results["size"] == ranks and results["n"] == N and results["options"] == OPTIONS
    vector_free, trajectory, classic, f0 = single_process()
    assert vector_free.success and classic.success
    # the same iterations, evaluations and steps; f and x equal up to the rounding of the
    # dot products (summed per rank, then over the ranks)
    assert (results["nit"], results["nfev"]) == (vector_free.nit, vector_free.nfev)
    assert len(results["trajectory"]) == len(trajectory) == vector_free.nit
    for (f, step), (f1, step1) in zip(results["trajectory"], trajectory):
        assert abs(f - f1) <= 1e-14 * f0 and abs(step - step1) <= 1e-6 * step1
    assert np.max(np.abs(x - vector_free.x)) < 1e-12
    # fastopt.minimize (the classic recursion) reaches the same point within gtol
    assert np.max(np.abs(x - classic.x)) < 1e-7
    # a handful of reductions per iteration (2m + 1 = 21 for the classic recursion)
    assert results["reductions"] / results["nit"] < 6
    for m in ("m3", "m20"):
        r = results[m]
        assert r["reductions"] <= 3 * r["nit"] + r["nfev"] + 2
