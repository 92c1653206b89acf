"""Run a script under mpirun from a test: skipped when mpi4py or mpirun is missing, bounded
by a timeout, the child ranks seeing this checkout's fastopt and tests/ on their path."""

import os
import shutil
import subprocess
import sys
import time

import pytest

import fastopt
from fastopt_testing import paths


def mpirun_or_skip():
    """The mpirun command (skips the test when mpi4py or an mpirun is missing)."""
    pytest.importorskip("mpi4py")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.skip("no mpirun on PATH")
    return mpirun


def run_mpi(script, n, *args, timeout=120, python_args=()):
    """Run ``python *python_args script *args`` on ``n`` ranks (``python_args=("-m",
    "mpi4py.futures")`` for a pool); fail the test on a non-zero exit or a timeout. Returns
    (stdout, seconds)."""
    mpirun = mpirun_or_skip()
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True,
                             check=False).stdout
    # Open MPI counts slots by cores and refuses more ranks than cores unless told
    extra = ["--oversubscribe"] if "Open MPI" in version else []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fastopt.__file__)), str(paths.SUPPORT)]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # root in containers and CI; one OpenMP thread per rank (the ranks share the cores), and
    # ranks waiting in a collective yield the core instead of spinning (more ranks than cores)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMPI_MCA_mpi_yield_when_idle="1")
    cmd = [mpirun, "-n", str(n), *extra, sys.executable, *python_args, script,
           *map(str, args)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} did not finish in {timeout} s:\n{exc.stdout}\n"
                    f"{exc.stderr}")
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout, seconds
