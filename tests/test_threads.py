"""Thread policy: get/set_num_threads, threads(), OMP_NUM_THREADS and threadpoolctl."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt import _kernels

OPENMP = _kernels.build_info()["openmp"]
needs_openmp = pytest.mark.skipif(not OPENMP, reason="build without OpenMP")


def test_default_is_positive_and_capped_by_max():
    n = fastopt.get_num_threads()
    assert 1 <= n <= max(1, _kernels._max_threads())


@needs_openmp
def test_set_get_and_negative_counts():
    mx = _kernels._max_threads()
    fastopt.set_num_threads(1)
    assert fastopt.get_num_threads() == 1
    fastopt.set_num_threads(-1)
    assert fastopt.get_num_threads() == mx
    if mx >= 2:
        fastopt.set_num_threads(-2)
        assert fastopt.get_num_threads() == mx - 1
    fastopt.set_num_threads(None)
    assert fastopt.get_num_threads() >= 1


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (1.5, TypeError), ("2", TypeError),
                                      (True, TypeError), (-10_000, ValueError)])
def test_bad_thread_counts(bad, exc):
    before = fastopt.get_num_threads()
    with pytest.raises(exc, match="n"):
        fastopt.set_num_threads(bad)
    assert fastopt.get_num_threads() == before


def test_context_manager_restores():
    fastopt.set_num_threads(None)
    before = fastopt.get_num_threads()
    with fastopt.threads(1):
        assert fastopt.get_num_threads() == 1
    assert fastopt.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with fastopt.threads(1):
            raise RuntimeError("boom")
    assert fastopt.get_num_threads() == before


@needs_openmp
def test_threadpoolctl_sees_and_limits_fastopt():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    info = threadpoolctl.threadpool_info()
    assert any(i["internal_api"] == "openmp" for i in info)
    fastopt.set_num_threads(None)
    before = fastopt.get_num_threads()
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastopt.get_num_threads() == 1
        ps = [np.zeros(100_000, np.float32) for _ in range(4)]
        fastopt.kernels.sgd_step(ps, [np.ones(100_000, np.float32)] * 4, lr=1.0)
        assert fastopt.kernels.last_threads_used() == 1
    assert fastopt.get_num_threads() == before


@needs_openmp
def test_omp_num_threads_is_respected():
    code = "import fastopt; print(fastopt.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"


def test_planned_threads_follows_serial_threshold():
    below = _kernels.build_info()["serial_below"]
    assert fastopt.kernels.planned_threads(below - 1) == 1
    with fastopt.threads(1):
        assert fastopt.kernels.planned_threads(10 * below) == 1
