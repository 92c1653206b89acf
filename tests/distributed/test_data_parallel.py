"""fastopt.distributed.DataParallel: the layout arithmetic and helpers in this process, the
MPI runs under ``mpirun -n 2`` and ``mpirun -n 4 --oversubscribe`` (skipped without mpi4py or
mpirun; each bounded by a timeout). The checks themselves are in mpi_data_parallel.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt.distributed import pack_params, state_nbytes
from fastopt.distributed._layout import blocks_of, contiguous_view, split_bounds
from fastopt_testing.mpi_launch import run_mpi

HERE = os.path.dirname(os.path.abspath(__file__))


def test_low_precision_state_is_refused_clearly():
    MPI = pytest.importorskip("mpi4py.MPI")   # one process: COMM_SELF needs no mpirun
    from fastopt.distributed import DataParallel
    p = np.ones(10_000, np.float32)
    opt = fastopt.Adam([p], lr=1e-3, state_dtype="int8")
    with pytest.raises(ValueError, match="state_dtype='int8'"):
        DataParallel(opt, MPI.COMM_SELF)


def test_split_bounds_cover_the_vector_in_aligned_nearly_equal_slices():
    for total in (0, 1, 15, 16, 17, 1000, 10**6 + 3):
        for size in (1, 2, 3, 4, 7):
            for itemsize in (4, 8):
                b = split_bounds(total, size, itemsize)
                assert b[0] == 0 and b[-1] == total and len(b) == size + 1
                assert all(x <= y for x, y in zip(b, b[1:]))
                align = 64 // itemsize
                assert all(x % align == 0 for x in b[:-1])
                counts = [y - x for x, y in zip(b, b[1:])]
                assert max(counts) - min(counts) <= 2 * align + 1, (total, size, counts)


def test_pieces_tile_every_parameter_once():
    params = [np.zeros(s, dt) for s, dt in [((37, 5), np.float32), ((4,), np.float64),
                                            ((0,), np.float32), ((300,), np.float32)]]
    for size in (1, 2, 3, 4):
        blocks = blocks_of(params, size)
        assert [b.dtype for b in blocks] == [np.float32, np.float64]
        covered = {i: np.zeros(p.size, int) for i, p in enumerate(params)}
        for rank in range(size):
            for b in blocks:
                lo, hi = b.owned(rank)
                for i, offset, start, stop in b.pieces(rank):
                    covered[i][start:stop] += 1
                    if stop > start:        # the piece lies inside the rank's slice
                        assert lo <= offset + start and offset + stop <= hi
        assert all(np.all(c == 1) for c in covered.values())


def test_contiguous_view_only_for_arrays_back_to_back():
    w, b = pack_params([np.ones((2, 3)), np.arange(3.0)])
    flat = contiguous_view([w, b])
    assert flat is not None and flat.shape == (9,)
    flat[-1] = 7.0                       # a view: writes reach the parameters
    assert b[-1] == 7.0
    assert contiguous_view([b, w]) is None          # out of order
    assert contiguous_view([np.ones(3), np.ones(3)]) is None
    buf = np.zeros(10)
    assert contiguous_view([buf[0:4], buf[5:10]]) is None   # a gap
    assert contiguous_view([buf[2:4], buf[4:10]]).shape == (8,)


def test_pack_params_groups_by_dtype_and_keeps_values():
    arrays = [np.arange(6.0).reshape(2, 3), np.ones(4, np.float32), np.full(2, 5.0)]
    packed = pack_params(arrays)
    for a, p in zip(arrays, packed):
        assert p.dtype == a.dtype and p.shape == a.shape and np.array_equal(a, p)
        assert p is not a and p.flags.c_contiguous and p.flags.writeable
    assert contiguous_view([packed[0], packed[2]]) is not None
    with pytest.raises(TypeError, match=r"arrays\[0\]"):
        pack_params([np.zeros(3, np.int64)])


def test_state_nbytes_counts_arrays_and_step_counters():
    opt = fastopt.SGD([np.zeros(10)], lr=0.1, momentum=0.9)
    assert state_nbytes(opt) == 0
    opt.step([np.ones(10)])
    assert state_nbytes(opt) == 80       # the momentum buffer; SGD keeps no step counter


def test_importing_fastopt_does_not_import_mpi4py():
    code = ("import sys, fastopt, fastopt.distributed\n"
            "assert 'mpi4py' not in sys.modules, sorted(m for m in sys.modules if 'mpi' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env())


def test_without_mpi4py_the_error_says_how_to_install_it():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import numpy as np, fastopt\n"
            "from fastopt.distributed import DataParallel\n"
            "try:\n"
            "    DataParallel(fastopt.SGD([np.zeros(3)]), None)\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, env=_child_env()).stdout
    assert "pip install \"fastopt[mpi]\"" in out and "openmpi-bin" in out


def _child_env():
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(fastopt.__file__))
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                 else []))
    return env


@pytest.mark.parametrize("ranks", [2, 4])
def test_data_parallel_under_mpirun(tmp_path, ranks):
    out = tmp_path / "results.json"
    run_mpi(os.path.join(HERE, "mpi_data_parallel.py"), ranks, out, timeout=180)
    results = json.loads(out.read_text())
    assert results["size"] == ranks
    names = {c["optimizer"] for c in results["configs"]}
    expected = set(fastopt.optim.__all__) - {"Optimizer"}
    assert names == expected          # every optimizer class was checked bitwise
    assert results["max_abs_diff_vs_full_batch"] < 1e-12 < results["max_abs_w"]
    per_rank, total = results["per_rank_state_bytes"], results["plain_state_bytes"]
    assert len(per_rank) == ranks
    assert max(per_rank) < 1.01 * total / ranks
    assert results["skip_and_errors"] == "ok"
