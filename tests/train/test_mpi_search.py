"""random_search and asha_search on mpi4py.futures.MPIPoolExecutor, under mpirun (skipped
when mpi4py or mpirun is missing; bounded by a timeout)."""

import json
import os

from fastopt.train import Choice, Uniform, random_search, trials_from_json
from fastopt_testing.mpi_launch import run_mpi

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 120


def test_search_on_an_mpi_pool(tmp_path):
    # rank 0 runs the script, the other two are the pool's workers
    run_mpi(os.path.join(HERE, "mpi_search.py"), 3, tmp_path, timeout=TIMEOUT_S,
            python_args=("-m", "mpi4py.futures"))

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
