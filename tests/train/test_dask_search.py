"""random_search, grid_search and asha_search on a Dask cluster of worker processes, through
Client.get_executor() (skipped when dask.distributed is not installed). One cluster of two
single-threaded workers serves the module."""

import os

import pytest

# dask first: without dask.distributed installed, "distributed" would find tests/distributed
# (a namespace package on the tests' pythonpath), not Dask's package
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("dask.distributed")
from fastopt.train import Choice, Uniform, asha_search, grid_search, random_search  # noqa: E402
from fastopt_testing.search_objectives import crash_if_large, curve, distance  # noqa: E402


@pytest.fixture(scope="module")
def executor():
    # a task whose worker dies fails at once (KilledWorker) instead of being retried on the
    # other worker; one task per worker thread, so a crash takes only its own task with it
    config = {"distributed.scheduler.allowed-failures": 0,
              "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(config), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=40) as cluster, distributed.Client(cluster) as client:
        yield client.get_executor()


def _params(trials):
    return [t.params for t in sorted(trials, key=lambda t: t.index)]


def test_random_and_grid_search_run_on_the_workers(executor):
    # the objective refuses to run in this process: every trial must go to a worker
    space = {"x": Uniform(0.0, 1.0), "parent": Choice([os.getpid()])}
    trials = random_search(distance, space, 12, seed=3, executor=executor)
    assert all(t.error is None for t in trials)
    assert _params(trials) == _params(random_search(lambda p: 0.0, space, 12, seed=3))
    assert [t.score for t in trials] == sorted((p["x"] - 0.3) ** 2 for p in _params(trials))
    grid = grid_search(distance, {"x": [0.0, 0.5, 0.25], "parent": [os.getpid()]}, executor)
    assert [t.params["x"] for t in grid] == [0.25, 0.5, 0.0]


def test_asha_on_dask(executor):
    space = {"x": Uniform(0.0, 1.0), "parent": Choice([os.getpid()])}
    trials = asha_search(curve, space, 20, seed=4, executor=executor, max_resource=9,
                         max_concurrent=2)
    assert all(t.error is None for t in trials)
    assert _params(trials) == _params(random_search(lambda p: 0.0, space, 20, seed=4))
    best = min(trials, key=lambda t: abs(t.params["x"] - 0.3))
    assert trials[0] is best and best.status == "completed"
    assert sum(t.resource_used for t in trials) < 20 * 9 / 2


def test_a_crashed_worker_is_a_failed_trial(executor):
    trials = random_search(crash_if_large, {"x": Uniform(0.0, 1.0)}, 10, seed=6,
                           executor=executor)
    failed = [t for t in trials if t.status == "failed"]
    assert [t.params["x"] > 0.9 for t in sorted(trials, key=lambda t: t.index)].count(True) == 1
    assert len(failed) == 1 and failed[0].params["x"] > 0.9
    assert failed[0].error.startswith("KilledWorker")
    assert all(t.score == (t.params["x"] - 0.3) ** 2 for t in trials if t.status == "completed")
