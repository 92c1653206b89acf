"""random_search and asha_search on mpi4py.futures.MPIPoolExecutor, under mpirun (skipped
when mpi4py or mpirun is missing; bounded by a timeout)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import fastopt
from fastopt.train import Choice, Uniform, random_search, trials_from_json
from fastopt_testing import paths

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 120


def _mpirun():
    pytest.importorskip("mpi4py.futures")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no mpirun on PATH")
    return mpirun


def test_search_on_an_mpi_pool(tmp_path):
    mpirun = _mpirun()
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    # Open MPI counts slots by cores and refuses 3 processes on 2 cores unless told
    extra = ["--oversubscribe"] if "Open MPI" in version else []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastopt.__file__)), str(paths.SUPPORT)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    cmd = [mpirun, "-n", "3", *extra, sys.executable, "-m", "mpi4py.futures",
           os.path.join(HERE, "mpi_search.py"), str(tmp_path)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} did not finish in {TIMEOUT_S} s: {exc.stderr}")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    with open(tmp_path / "info.json") as f:
        info = json.load(f)
    assert info["workers"] == 2
    space = {"x": Uniform(0.0, 1.0), "parent": Choice([info["parent"]])}
    for name, n, seed in [("random", 12, 3), ("asha", 20, 4)]:
        trials = trials_from_json(tmp_path / f"{name}.json")
        assert all(t.error is None for t in trials)  # every trial ran on a worker rank
        expected = random_search(lambda p: 0.0, space, n, seed=seed)  # the same configurations
        by_index = sorted(trials, key=lambda t: t.index)
        assert [t.params for t in by_index] == [t.params for t in
                                                sorted(expected, key=lambda t: t.index)]
    asha = trials_from_json(tmp_path / "asha.json")
    best = min(asha, key=lambda t: abs(t.params["x"] - 0.3))
    assert asha[0] == best and best.status == "completed"
    assert any(t.status == "stopped" for t in asha)
