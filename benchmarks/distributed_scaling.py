"""Scaling of fastopt.distributed on one machine: L-BFGS at n = 1e7 and DataParallel Adam.

    mpirun -n 1 python benchmarks/distributed_scaling.py
    mpirun -n 2 python benchmarks/distributed_scaling.py            # as root: --allow-run-as-root
    mpirun -n 2 python benchmarks/distributed_scaling.py --what lbfgs --n 1e7 --iterations 10

L-BFGS (``fastopt.distributed.minimize``) runs a fixed number of iterations (gtol = 0) on the
coupled problem of tests/support/fastopt_testing/sharded_problem.py, split evenly between the ranks, and the same
problem whole on rank 0 alone (MPI.COMM_SELF, the other ranks waiting), the two
interleaved, ``--repeats`` times each; printed: the median seconds per iteration, split into
the objective (``fun``, with its own Allreduce), the solver's reductions (including the wait
for the slowest rank) and the solver's local work, and the speed-up over one rank. The two
runs must take the same steps (checked).

DataParallel: one Adam step over ``--params`` float32 parameters (four tensors), plain on
rank 0 alone against DataParallel on all ranks, interleaved; split into the gradient
Allreduce, the sharded update and the Allgatherv; and the optimizer state bytes per rank.

Each rank runs one OpenMP thread (OMP_NUM_THREADS=1 is set before fastopt is imported unless
given) so that the ranks do not oversubscribe the cores; compare numbers of the same run
only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__":
    # one OpenMP thread per rank, set before fastopt starts its pool; fastopt from src/ and
    # the objective from tests/ (asv imports this module too: then nothing of this runs)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    sys.path[:0] = [os.path.join(ROOT, "src"), os.path.join(ROOT, "tests", "support")]

import numpy as np  # noqa: E402

import fastopt  # noqa: E402
from fastopt.distributed import DataParallel, lbfgs, minimize, pack_params  # noqa: E402


class Clock:
    """Seconds spent in wrapped callables."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return timed


def timed_space(clock: Clock) -> None:
    """Time the solver's reductions (a benchmark-only patch of MPIVectorSpace)."""
    cls = lbfgs.MPIVectorSpace
    for name in ("sums", "norm_inf"):
        original = getattr(cls, "_untimed_" + name, None) or getattr(cls, name)
        setattr(cls, "_untimed_" + name, original)
        setattr(cls, name, clock.wrap(original))


def wait_sleeping(comm) -> None:
    """A barrier that sleeps instead of spinning: ranks with nothing to do leave the cores
    to the rank that is measured alone."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def lbfgs_once(comm, a, t, x0, n, iterations, m):
    """One run: per iteration once the memory is full (the first m + 1 iterations write
    fresh pages of the memory, which this VM makes slow), the median seconds in total, in
    fun and in the solver's reductions; and nit, f, nfev."""
    from fastopt_testing.sharded_problem import split
    fun_clock, red_clock = Clock(), Clock()
    timed_space(red_clock)
    fun = fun_clock.wrap(split(comm, a, t, n))
    marks = []

    def callback(intermediate_result):
        marks.append((time.perf_counter(), fun_clock.seconds, red_clock.seconds))
    wait_sleeping(comm)
    res = minimize(fun, x0, comm, callback=callback,
                   options={"maxiter": iterations, "gtol": 0.0, "m": m})
    steady = [tuple(b - a for a, b in zip(p, q)) for p, q in zip(marks, marks[1:])][m + 1:]
    per_iteration = [statistics.median(column) for column in zip(*steady)]
    return (*per_iteration, res.nit, res.fun, res.nfev, len(steady))


def bench_lbfgs(comm, n, iterations, m, repeats):
    from mpi4py import MPI

    from fastopt_testing.sharded_problem import data, start
    rank, size = comm.Get_rank(), comm.Get_size()
    lo, hi = rank * n // size, (rank + 1) * n // size
    a_full, t_full = data(n)
    x0_full = start(n)
    a, t, x0 = a_full[lo:hi].copy(), t_full[lo:hi].copy(), x0_full[lo:hi].copy()
    if rank != 0:
        del a_full, t_full, x0_full
    rows: dict[str, list] = {"1 rank": [], f"{size} ranks": []}
    warm = slice(0, 64)             # first calls import scipy: not timed
    if rank == 0:
        lbfgs_once(MPI.COMM_SELF, a_full[warm], t_full[warm], x0_full[warm], 64, 2, m)
    lbfgs_once(comm, a[warm], t[warm], x0[warm], size * 64, 2, m)
    for _ in range(repeats):
        if rank == 0:
            rows["1 rank"].append(lbfgs_once(MPI.COMM_SELF, a_full, t_full, x0_full, n,
                                             iterations, m))
        if size > 1:
            rows[f"{size} ranks"].append(lbfgs_once(comm, a, t, x0, n, iterations, m))
    if rank != 0:
        return
    print(f"\nL-BFGS, n = {n:.0e}, m = {m}, {iterations} iterations, float64, seconds per "
          f"iteration: the median over the last {rows['1 rank'][0][-1]} iterations (memory "
          f"full), median of {repeats} interleaved runs")
    print(f"{'':>10} {'total':>8} {'fun':>8} {'reduce':>8} {'local':>8} {'nfev':>5} "
          f"{'speed-up':>9}")
    base = None
    for label, runs in rows.items():
        if not runs:
            continue
        total, fun_s, red_s = (statistics.median(r[k] for r in runs) for k in range(3))
        base = base or total
        print(f"{label:>10} {total:8.4f} {fun_s:8.4f} {red_s:8.4f} "
              f"{total - fun_s - red_s:8.4f} {runs[0][5]:5d} {base / total:8.2f}x")
    if size > 1:
        one, many = rows["1 rank"][0], rows[f"{size} ranks"][0]
        print(f"same steps: nit {one[3]} / {many[3]}, nfev {one[5]} / {many[5]}, "
              f"f {one[4]:.12g} / {many[4]:.12g}")
        assert (one[3], one[5]) == (many[3], many[5])


def adam_step_once(opt, grads):
    start = time.perf_counter()
    opt.step(grads)
    return time.perf_counter() - start


def bench_data_parallel(comm, n, repeats):
    rank, size = comm.Get_rank(), comm.Get_size()
    shapes = [(n // 4,), (n // 4,), (n // 4,), (n - 3 * (n // 4),)]
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    params = pack_params([np.zeros(s, np.float32) for s in shapes])
    dp = DataParallel(fastopt.Adam(params, lr=1e-3), comm)
    # the phases of a DataParallel step, timed by wrapping its collectives and its shard
    phases = {"allreduce": Clock(), "update": Clock(), "allgather": Clock()}
    dp.comm = _TimedComm(comm, phases)
    dp.shard.step = phases["update"].wrap(dp.shard.step)
    plain = None
    if rank == 0:
        plain = fastopt.Adam([np.zeros(s, np.float32) for s in shapes], lr=1e-3)
        plain.step(grads)
    dp.step(grads)
    one, many, split_rows = [], [], []
    for _ in range(repeats):
        if rank == 0:
            one.append(adam_step_once(plain, grads))
        wait_sleeping(comm)
        for c in phases.values():
            c.seconds = 0.0
        many.append(adam_step_once(dp, grads))
        split_rows.append({k: c.seconds for k, c in phases.items()})
    nbytes = comm.gather(dp.state_nbytes(), root=0)
    if rank != 0:
        return
    print(f"\nAdam step, {n:.0e} float32 parameters in 4 tensors, median of {repeats} "
          f"interleaved steps; milliseconds")
    t1, tn = statistics.median(one), statistics.median(many)
    parts = {k: statistics.median(r[k] for r in split_rows) for k in phases}
    print(f"  plain Adam on 1 rank:         {1e3 * t1:8.2f}")
    print(f"  DataParallel on {size} rank(s):     {1e3 * tn:8.2f}  (allreduce "
          f"{1e3 * parts['allreduce']:.2f}, sharded update {1e3 * parts['update']:.2f}, "
          f"allgatherv {1e3 * parts['allgather']:.2f})")
    print(f"  state bytes: plain {fastopt.distributed.state_nbytes(plain):,}, per rank "
          f"{', '.join(f'{b:,}' for b in nbytes)}")


class _TimedComm:
    """A communicator whose Allreduce and Allgatherv calls are timed (benchmark only)."""

    def __init__(self, comm, phases):
        self._comm = comm
        self.Allreduce = phases["allreduce"].wrap(comm.Allreduce)
        self.Allgatherv = phases["allgather"].wrap(comm.Allgatherv)

    def __getattr__(self, name):
        return getattr(self._comm, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--what", choices=["lbfgs", "dp", "both"], default="both")
    parser.add_argument("--n", type=float, default=1e7, help="L-BFGS dimension")
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--m", type=int, default=10)
    parser.add_argument("--params", type=float, default=1e7, help="DataParallel parameters")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    if comm.Get_rank() == 0:
        print(f"{comm.Get_size()} rank(s), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
              f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.what in ("lbfgs", "both"):
        bench_lbfgs(comm, int(args.n), args.iterations, args.m, args.repeats)
    if args.what in ("dp", "both"):
        bench_data_parallel(comm, int(args.params), args.repeats * 3)


if __name__ == "__main__":
    main()
