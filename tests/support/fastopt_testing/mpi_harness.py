"""What the scripts run under mpirun share (not a test module): a failing rank aborts the
whole job (so that the others do not wait forever), rank 0 writes the results as JSON, and
bitwise comparison of arrays."""

import json
import sys
import traceback

import numpy as np


def run(main):
    """``main(comm) -> dict`` on MPI.COMM_WORLD; rank 0 writes the dict to sys.argv[1]."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    try:
        results = main(comm)
    except BaseException:
        sys.stderr.write(f"rank {comm.Get_rank()} of {comm.Get_size()} failed:\n")
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
    comm.Barrier()
    if comm.Get_rank() == 0:
        with open(sys.argv[1], "w") as f:
            json.dump(results, f, indent=1)


def raises(error, words, fn, *args, **kwargs):
    """Assert that ``fn(*args, **kwargs)`` raises ``error`` with ``words`` in its message."""
    try:
        fn(*args, **kwargs)
    except error as exc:
        assert words in str(exc), exc
        return
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args} {kwargs} raised nothing")


def same_bits(a, b, what):
    """Assert that two arrays (or 0-d values) hold the same bits."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (what, a.shape, b.shape, a.dtype, b.dtype)
    assert a.tobytes() == b.tobytes(), (
        f"{what}: differ in {int(np.sum(a != b))} elements, max |diff| "
        f"{float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))}")


def same_state_dicts(a, b, what):
    """Two optimizer checkpoints hold the same state arrays (bitwise), steps and options."""
    assert sorted(a["state"]) == sorted(b["state"]), (what, sorted(a["state"]), sorted(b["state"]))
    for i in a["state"]:
        sa, sb = a["state"][i], b["state"][i]
        assert sorted(sa) == sorted(sb), (what, i, sorted(sa), sorted(sb))
        for name in sa:
            if name == "step":
                assert int(sa[name]) == int(sb[name]), (what, i, sa[name], sb[name])
            else:
                same_bits(sa[name], sb[name], f"{what}: state[{i}][{name!r}]")
    assert len(a["param_groups"]) == len(b["param_groups"])
    for ga, gb in zip(a["param_groups"], b["param_groups"]):
        assert ga["params"] == gb["params"] and ga["step"] == gb["step"], (what, ga, gb)
