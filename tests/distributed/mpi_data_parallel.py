"""DataParallel checks, run under mpirun by test_data_parallel.py (not a test module):

    mpirun -n 4 --oversubscribe python tests/distributed/mpi_data_parallel.py OUT.json

Every rank compares its parameters with a plain optimizer that it steps itself on the
averaged gradient; rank 0 also compares the gathered state_dict. Any failed assertion
aborts the job (non-zero exit).
"""
import copy

import numpy as np

import fastopt
from fastopt import optim, schedules
from fastopt.distributed import DataParallel, pack_params, state_nbytes
from fastopt_testing.mpi_harness import raises, run, same_bits, same_state_dicts

# (shape, dtype): several float32 and float64 tensors, tiny ones (which one rank owns whole
# while the others own empty pieces) and an empty one; the first four form group 0
SHAPES = [((37, 5), np.float32), ((4, 4), np.float64), ((3,), np.float32), ((1,), np.float32),
          ((200,), np.float32), ((2,), np.float64), ((0,), np.float32), ((64,), np.float32)]
GROUP0 = 4

CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=schedules.cosine(0.05, T_max=5), momentum=0.9, dampening=0.1, l1=1e-3)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=1e-3)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=schedules.step_decay(0.01, 2, 0.5), momentum=0.9, centered=True,
                     weight_decay=1e-3)),
    ("Adam", dict(lr=schedules.cosine(0.01, T_max=5))),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=1e-3, maximize=True)),
    ("AdamW", dict(lr=lambda step: 0.01 * 0.9 ** step, amsgrad=True)),   # a schedule that won't pickle
    ("Adadelta", dict(lr=1.0, rho=0.9, weight_decay=1e-3)),
]
# optimizers that land later (NAdam, Lion, ...) run with their defaults
CONFIGS += [(name, {}) for name in optim.__all__
            if name != "Optimizer" and name not in {c for c, _ in CONFIGS}]


def make_params(seed, packed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape, dtype in SHAPES]
    return pack_params(arrays) if packed else arrays


def groups(params):
    return [{"params": params[:GROUP0]}, {"params": params[GROUP0:], "lr": 0.02}]


def gradients(step):
    rng = np.random.default_rng(1000 + step)
    return [rng.standard_normal(shape).astype(dtype) for shape, dtype in SHAPES]


def one_hot(grads, comm):
    """Rank 0 passes the gradients, the others zeros: their sum is exact in any order."""
    return grads if comm.Get_rank() == 0 else [np.zeros_like(g) for g in grads]


def check_bitwise(comm, k, name, kwargs):
    """The plain optimizer on g / size and DataParallel on (g, 0, ..., 0) agree bitwise,
    parameters and gathered state; the checkpoint resumes bitwise in a plain optimizer
    and in a DataParallel on another number of ranks."""
    from mpi4py import MPI
    rank, size = comm.Get_rank(), comm.Get_size()
    cls = getattr(optim, name)
    packed = k % 2 == 0
    ref_params = make_params(k, packed=False)
    ref = cls(groups(ref_params), **kwargs)
    wrapped = cls(groups(make_params(k, packed)), **kwargs)
    step = 0
    if k % 3 == 0:   # a wrapped optimizer that already has state: DataParallel shards it
        for _ in range(2):
            grads = gradients(step)
            ref.step(grads)
            wrapped.step(grads)
            step += 1
    dp = DataParallel(wrapped, comm, bucket_bytes=256 if k % 2 else 1 << 24)
    assert dp.zero_copy == packed
    params = [p for g in wrapped.param_groups for p in g["params"]]
    for _ in range(4):
        grads = gradients(step)
        ref.step([np.divide(g, size) for g in grads])
        assert dp.step(one_hot(grads, comm)) is True
        for i, (p, q) in enumerate(zip(params, ref_params)):
            same_bits(p, q, f"{name} {kwargs} step {step} param {i}")
        step += 1
    checkpoint = dp.state_dict()
    assert (checkpoint is None) == (rank != 0)
    plain = None
    if rank == 0:
        same_state_dicts(checkpoint, ref.state_dict(), f"{name} {kwargs} state_dict")
        plain = cls(groups(copy.deepcopy(ref_params)), **kwargs)
        plain.load_state_dict(checkpoint)
    # the checkpoint on another world size: ranks 0 .. size-2 (rank 0 alone when size = 2)
    color = 0 if rank < max(size - 1, 1) else MPI.UNDEFINED
    sub = comm.Split(color, rank)
    other = None
    if sub != MPI.COMM_NULL:
        other = DataParallel(cls(groups(copy.deepcopy(ref_params)), **kwargs), sub,
                             average=False)
        other.load_state_dict(checkpoint)
    for _ in range(2):
        grads = gradients(step)
        h = [np.divide(g, size) for g in grads]
        ref.step(h)
        dp.step(one_hot(grads, comm))
        if plain is not None:
            plain.step(h)
        if other is not None:
            other.step(h if sub.Get_rank() == 0 else [np.zeros_like(g) for g in h])
        step += 1
    checks = [("DataParallel", [p for g in wrapped.param_groups for p in g["params"]])]
    if plain is not None:
        checks.append(("plain optimizer loaded from the checkpoint",
                       [p for g in plain.param_groups for p in g["params"]]))
    if other is not None:
        checks.append((f"DataParallel on {sub.Get_size()} ranks loaded from the checkpoint",
                       other._params))
    for what, ps in checks:
        for i, (p, q) in enumerate(zip(ps, ref_params)):
            same_bits(p, q, f"{name} {kwargs}: {what}, param {i} after resuming")
    if other is not None:
        sub.Free()
    return {"optimizer": name, "options": repr(kwargs), "packed": packed}


def check_full_batch(comm):
    """Each rank's mean gradient over its rows; the average equals the full batch's mean
    gradient up to rounding (reduction order), so the runs agree to a tolerance."""
    rank, size = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(7)
    X, w_true = rng.standard_normal((96, 12)), rng.standard_normal(12)
    y = X @ w_true + 0.1 * rng.standard_normal(96)
    rows = slice(rank * 96 // size, (rank + 1) * 96 // size)

    def grad(w, Xb, yb):
        return Xb.T @ (Xb @ w - yb) / len(yb)

    w_dp, w_ref = np.zeros(12), np.zeros(12)
    dp = DataParallel(fastopt.Adam([w_dp], lr=schedules.cosine(0.1, T_max=30)), comm)
    ref = fastopt.Adam([w_ref], lr=schedules.cosine(0.1, T_max=30))
    for _ in range(30):
        dp.step([grad(w_dp, X[rows], y[rows])])
        ref.step([grad(w_ref, X, y)])
    err = float(np.max(np.abs(w_dp - w_ref)))
    assert np.allclose(w_dp, w_ref, rtol=1e-9, atol=1e-12), err
    return {"max_abs_diff_vs_full_batch": err, "max_abs_w": float(np.max(np.abs(w_ref)))}


def check_state_bytes(comm):
    """Adam over 1.0 M float32 parameters in four tensors: the state per rank is about
    1/size of the plain optimizer's."""
    size = comm.Get_size()
    shapes = [(1000, 500), (500,), (500, 1000), (1000,)]
    params = pack_params([np.zeros(s, np.float32) for s in shapes])
    plain = fastopt.Adam([np.zeros(s, np.float32) for s in shapes])
    plain.step([np.zeros(s, np.float32) for s in shapes])
    dp = DataParallel(fastopt.Adam(params), comm)
    dp.step([np.zeros(s, np.float32) for s in shapes])
    per_rank = comm.allgather(dp.state_nbytes())
    total = state_nbytes(plain)
    steps = 8 * len(shapes)        # each rank keeps a step counter per parameter
    arrays = total - steps
    # the 64-byte rounding of the slice boundaries moves at most 16 elements per boundary
    slack = 2 * 2 * 64
    assert all(b <= arrays / size + slack + steps for b in per_rank), (per_rank, total)
    assert sum(b - steps for b in per_rank) == arrays
    return {"plain_state_bytes": total, "per_rank_state_bytes": per_rank}


def check_skip_and_errors(comm):
    """skip_if_nonfinite decides on every rank together; argument errors change nothing;
    a bad checkpoint raises on every rank; rank 0's parameters are broadcast."""
    rank, size = comm.Get_rank(), comm.Get_size()
    params = [np.full((5, 3), float(rank)), np.full(40, float(rank), np.float32)]
    raises(TypeError, "optimizer", DataParallel, params, comm)
    raises(TypeError, "comm", DataParallel, fastopt.SGD(params), "comm")
    raises(TypeError, "average", DataParallel, fastopt.SGD(params), comm, average="yes")
    dp = DataParallel(fastopt.Adam(params, lr=0.1), comm)
    assert all(np.all(p == 0.0) for p in params), "rank 0's values were not broadcast"
    grads = [np.ones((5, 3)), np.ones(40, np.float32)]
    dp.step(grads)
    before = [p.copy() for p in params]
    state = dp.state_dict()
    bad = [g.copy() for g in grads]
    if rank == size - 1:
        bad[1][-1] = np.nan         # one rank, its last element: owned by the last rank
    assert dp.step(bad, skip_if_nonfinite=True) is False
    for p, q in zip(params, before):
        same_bits(p, q, "skipped step")
    raises(TypeError, "grads[1]", dp.step, [grads[0], grads[1].astype(np.float64)])
    raises(ValueError, "grads", dp.step, grads[:1])
    after = dp.state_dict()
    if rank == 0:
        same_state_dicts(after, state, "state after refused steps")

    def spoiled(change):
        """A copy of the checkpoint on rank 0, changed; None on the others."""
        if rank != 0:
            return None
        wrong = copy.deepcopy(after)
        change(wrong["state"])
        return wrong
    raises(ValueError, "shape", dp.load_state_dict,
           spoiled(lambda st: st[1].update(exp_avg=np.zeros(41, np.float32))))
    raises(ValueError, "dtype", dp.load_state_dict,
           spoiled(lambda st: st[0].update(exp_avg_sq=np.zeros((5, 3), np.float32))))
    # detected by each rank's own optimizer: every rank raises, none changes
    raises(ValueError, "exp_avg", dp.load_state_dict,
           spoiled(lambda st: st[0].pop("exp_avg")))
    final = dp.state_dict()
    if rank == 0:
        same_state_dicts(final, state, "state after refused checkpoints")
    assert dp.step(grads, skip_if_nonfinite=True) is True
    return {"skip_and_errors": "ok"}


def main(comm):
    results = {"size": comm.Get_size(), "configs": []}
    for k, (name, kwargs) in enumerate(CONFIGS):
        results["configs"].append(check_bitwise(comm, k, name, kwargs))
    results.update(check_full_batch(comm))
    results.update(check_state_bytes(comm))
    results.update(check_skip_and_errors(comm))
    return results


if __name__ == "__main__":
    run(main)
