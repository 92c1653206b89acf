"""fastopt.distributed.minimize checks, run under mpirun by test_lbfgs.py (not a test module):

    mpirun -n 4 --oversubscribe python tests/distributed/mpi_lbfgs.py OUT.json

The problem (tests/support/fastopt_testing/sharded_problem.py, n = 1e5) is split unevenly between the ranks (with 4
ranks, one holds none of it). Rank 0 writes the run's trajectory and gathered solution to
OUT.json and OUT.npy; test_lbfgs.py compares them with the single-process solvers. The
checks of options, float32, callbacks and errors run here. Any failed assertion aborts the
job.
"""
import sys

import numpy as np

from fastopt.distributed import minimize
from fastopt.optimize._minimize import _qn_options
from fastopt.optimize._quasi_newton import run_quasi_newton
from fastopt.optimize.lbfgs import LbfgsMemory
from fastopt.optimize.objective import Objective
from fastopt_testing.mpi_harness import raises, run, same_bits
from fastopt_testing.sharded_problem import bounds, data, split, start, whole

N = 100_000
OPTIONS = {"gtol": 1e-8}
# where the ranks' parts start, as fractions of n (uneven; with 4 ranks rank 1 holds none)
SPLITS = {1: [0.0, 1.0], 2: [0.0, 0.3, 1.0], 3: [0.0, 0.2, 0.6, 1.0],
          4: [0.0, 0.35, 0.35, 0.6, 1.0]}


def part(comm, n):
    rank, size = comm.Get_rank(), comm.Get_size()
    b = bounds(n, SPLITS[size])
    return b[rank], b[rank + 1]


def recorder():
    """A callback recording (f, step size) of every iteration."""
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.fun, intermediate_result.step_size))
    return seen, callback


def gather_x(comm, x_local):
    from mpi4py import MPI
    counts = comm.allgather(x_local.size)
    full = np.empty(sum(counts), dtype=x_local.dtype) if comm.Get_rank() == 0 else None
    displs = [int(d) for d in np.cumsum([0] + counts[:-1])]
    kind = MPI.DOUBLE if x_local.dtype == np.float64 else MPI.FLOAT
    comm.Gatherv([x_local, kind], [full, counts, displs, kind] if full is not None else None,
                 root=0)
    return full


def run_at_n(comm):
    """The run at n = 1e5 that test_lbfgs.py compares with the single-process solvers."""
    lo, hi = part(comm, N)
    a, t = data(N)
    trajectory, callback = recorder()
    res = minimize(split(comm, a[lo:hi], t[lo:hi], N), start(N)[lo:hi], comm, options=OPTIONS,
                   callback=callback)
    assert res.success, res.message
    assert res.x.shape == (hi - lo,) and res.jac.shape == (hi - lo,)
    # every rank saw the same scalars (f, counters, status, the trajectory)
    every = comm.allgather((res.fun, res.nit, res.nfev, res.status, res.reductions,
                            trajectory))
    assert all(e == every[0] for e in every), "the ranks disagree on a scalar"
    # O(1) reductions per iteration: the slope at the start and at each trial step, the
    # memory's one array, the gradient norm (plus the first steepest-descent step's norm)
    assert res.reductions <= 3 * res.nit + res.nfev + 2, res.reductions
    x = gather_x(comm, res.x)
    if comm.Get_rank() == 0:
        np.save(sys.argv[1] + ".npy", x)
    return {"n": N, "options": OPTIONS, "nit": res.nit, "nfev": res.nfev,
            "reductions": res.reductions, "trajectory": trajectory}


def check_options_and_errors(comm, n=10_000):
    """Options, float32, the callback, errors (at n = 1e4: the checks cost less)."""
    from mpi4py import MPI
    rank, size = comm.Get_rank(), comm.Get_size()
    lo, hi = part(comm, n)
    a, t = data(n)
    fun = split(comm, a[lo:hi], t[lo:hi], n)
    x0 = start(n)[lo:hi]
    out = {}
    # the reductions per iteration do not grow with the memory size m
    for m in (3, 20):
        res = minimize(fun, x0, comm, options={"m": m})
        assert res.success and res.reductions <= 3 * res.nit + res.nfev + 2, res
        out[f"m{m}"] = {"nit": res.nit, "nfev": res.nfev, "reductions": res.reductions}
    # MPI's own Allreduce: the same run up to the last bits of the sums
    ordered = minimize(fun, x0, comm)
    allreduce = minimize(fun, x0, comm, options={"reduction": "allreduce"})
    assert allreduce.success and abs(allreduce.nit - ordered.nit) <= 2
    assert np.allclose(allreduce.x, ordered.x, rtol=0, atol=1e-6)
    # on one rank, the solver is the single-process one with its default (local) reductions
    if rank == 0:
        one = whole(a, t)
        self_res = minimize(one, start(n), MPI.COMM_SELF)
        obj = Objective(one, (n,), np.dtype(np.float64), (), jac=True, maxfun=15000)
        qn, _ = _qn_options({}, np.dtype(np.float64), 15000, 15000)
        plain = run_quasi_newton(obj, start(n), LbfgsMemory(n, 10, np.float64,
                                                            vector_free=True),
                                 qn, None, lambda r: r)
        same_bits(self_res.x, plain.x, "COMM_SELF run vs the single-process solver")
        assert (self_res.nit, self_res.nfev) == (plain.nit, plain.nfev)
    # float32 on every rank
    a32, t32 = data(n, np.float32)
    res32 = minimize(split(comm, a32[lo:hi], t32[lo:hi], n), start(n, np.float32)[lo:hi],
                     comm)
    assert res32.success and res32.x.dtype == np.float32, res32.message
    out["float32_nit"] = res32.nit

    # a callback raising StopIteration on every rank stops the run
    def stop_now(intermediate_result):
        raise StopIteration
    stop = minimize(fun, x0, comm, callback=stop_now)
    assert stop.status == 99 and stop.nit == 1
    # bad arguments raise on every rank, before any call of fun
    nan_on_last = np.full(hi - lo, np.nan) if rank == size - 1 and hi > lo else x0
    for args, kwargs, error, words in [
            ((fun, nan_on_last, comm), {}, ValueError, f"rank {size - 1}"),
            ((fun, x0.astype(np.float32) if rank == 0 else x0, comm), {}, TypeError,
             "dtypes"),
            ((fun, x0, comm), {"options": {"q": 1}}, ValueError, "unknown"),
            ((fun, x0, comm), {"method": "BFGS"}, ValueError, "L-BFGS"),
            ((fun, x0, "comm"), {}, TypeError, "comm"),
            ((fun, x0, comm), {"options": {"reduction": "sum"}}, ValueError, "reduction")]:
        if size == 1 and words == "dtypes":
            continue
        raises(error, words, minimize, *args, **kwargs)
    return out


def main(comm):
    out = {"size": comm.Get_size()}
    out.update(run_at_n(comm))
    out.update(check_options_and_errors(comm))
    return out


if __name__ == "__main__":
    run(main)
