"""fastopt.train.search: search spaces, random_search, grid_search, Trial."""

import itertools
import math
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from fastopt.train import (
    Choice,
    IntUniform,
    LogUniform,
    Trial,
    Uniform,
    grid_search,
    random_search,
)


def test_uniform_and_loguniform_samples():
    rng = np.random.default_rng(5)
    u = np.array([Uniform(-2.0, 3.0).sample(rng) for _ in range(4000)])
    assert u.min() >= -2.0 and u.max() < 3.0
    assert u.mean() == pytest.approx(0.5, abs=0.1)
    lu = np.array([LogUniform(1e-5, 1e-1).sample(rng) for _ in range(4000)])
    assert lu.min() >= 1e-5 and lu.max() <= 1e-1
    # each of the 4 decades gets ~1/4 of the samples
    counts = np.histogram(np.log10(lu), bins=[-5, -4, -3, -2, -1])[0]
    np.testing.assert_allclose(counts / len(lu), 0.25, atol=0.03)
    assert isinstance(lu[0].item(), float)


def test_intuniform_inclusive_and_choice():
    rng = np.random.default_rng(6)
    ints = [IntUniform(2, 5).sample(rng) for _ in range(400)]
    assert set(ints) == {2, 3, 4, 5}
    assert all(type(i) is int for i in ints)
    assert IntUniform(3, 3).sample(rng) == 3


def test_int_uniform_log_scale_puts_each_decade_alike():
    rng = np.random.default_rng(3)
    dim = IntUniform(1, 1000, log=True)
    draws = np.array([dim.sample(rng) for _ in range(4000)])
    assert draws.min() >= 1 and draws.max() <= 1000
    assert all(isinstance(v, int) for v in draws[:10].tolist())
    # mass of [0.5, 10.5) on the log scale of [0.5, 1000.5): log(21) / log(2001) = 0.40
    assert abs(np.mean(draws <= 10) - np.log(21) / np.log(2001)) < 0.03
    uniform = np.array([IntUniform(1, 1000).sample(rng) for _ in range(4000)])
    assert np.mean(uniform <= 10) < 0.03
    assert {IntUniform(1, 2, log=True).sample(rng) for _ in range(200)} == {1, 2}
    assert IntUniform(7, 7, log=True).sample(rng) == 7
    opts = ["relu", "tanh", None]
    picks = [Choice(opts).sample(rng) for _ in range(300)]
    assert set(picks) == set(opts)
    assert Choice(opts).options == tuple(opts)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: Uniform(1.0, 1.0), ValueError, r"^Uniform.high: expected a value in \(1, inf\)"),
        (lambda: Uniform(0.0, math.inf), ValueError, "^Uniform.high: expected a finite number"),
        (lambda: Uniform("a", 1.0), TypeError, "^Uniform.low: expected a real number"),
        (lambda: LogUniform(0.0, 1.0), ValueError, r"^LogUniform.low: expected a value in \(0, inf\)"),
        (lambda: LogUniform(1.0, 0.5), ValueError, r"^LogUniform.high: expected a value in \(1, inf\)"),
        (lambda: IntUniform(3, 2), ValueError, r"^IntUniform.high: expected an int in \[3, inf\)"),
        (lambda: IntUniform(1.5, 2), TypeError, "^IntUniform.low: expected an int"),
        (lambda: IntUniform(-(2**70), 2), ValueError, "^IntUniform.low: expected an int in"),
        (lambda: IntUniform(0, 5, log=True), ValueError,
         r"^IntUniform.low \(log=True\): expected an int in \[1, inf\)"),
        (lambda: IntUniform(1, 5, log="yes"), TypeError, "^IntUniform.log: expected True or False"),
        (lambda: Choice([]), ValueError, "^Choice.options: expected at least one option"),
        (lambda: Choice("abc"), TypeError, "^Choice.options: expected a list or tuple"),
    ],
)
def test_dimension_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# =============================================================================
# random_search / grid_search
# =============================================================================
SPACE = {"lr": LogUniform(1e-4, 1.0), "units": IntUniform(8, 64), "act": Choice(["relu", "tanh"])}


def _score(p):
    return (math.log10(p["lr"]) + 2) ** 2 + (p["units"] - 32) ** 2 / 1000 + (p["act"] == "tanh")


def _pool_objective(params):
    """Module level, so a process pool can pickle it; refuses to run in the parent."""
    if os.getpid() == params["parent"]:
        raise RuntimeError("ran in the parent process")
    return params["x"] ** 2


def test_random_search_sorted_and_scores_match():
    trials = random_search(_score, SPACE, n_trials=25, seed=0)
    assert len(trials) == 25
    assert sorted(t.index for t in trials) == list(range(25))
    scores = [t.score for t in trials]
    assert scores == sorted(scores)
    for t in trials:
        assert t.error is None
        assert t.score == _score(t.params)
        assert set(t.params) == set(SPACE)
        assert 1e-4 <= t.params["lr"] <= 1.0 and 8 <= t.params["units"] <= 64
    best_max = random_search(_score, SPACE, n_trials=25, seed=0, mode="max")
    assert [t.score for t in best_max] == sorted(scores, reverse=True)


def test_random_search_reproducible_and_prefix_stable():
    def configs(trials):
        return [t.params for t in sorted(trials, key=lambda t: t.index)]

    a = configs(random_search(_score, SPACE, 10, seed=42))
    b = configs(random_search(_score, SPACE, 10, seed=42))
    c = configs(random_search(_score, SPACE, 10, seed=43))
    short = configs(random_search(_score, SPACE, 4, seed=42))
    assert a == b and a != c
    assert short == a[:4]
    g = np.random.default_rng(42)
    assert configs(random_search(_score, SPACE, 10, seed=g)) == a


def test_random_search_thread_pool_same_as_serial():
    serial = random_search(_score, SPACE, 12, seed=7)
    with ThreadPoolExecutor(max_workers=3) as ex:
        threaded = random_search(_score, SPACE, 12, seed=7, executor=ex)
    assert threaded == serial


def test_random_search_process_pool():
    space = {"x": Uniform(-1.0, 1.0), "parent": Choice([os.getpid()])}
    serial_configs = [
        t.params
        for t in sorted(random_search(lambda p: 0.0, space, 6, seed=3), key=lambda t: t.index)
    ]
    ctx = multiprocessing.get_context("spawn")  # fork after OpenMP use can hang (USERS.md 10)
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
        trials = random_search(_pool_objective, space, 6, seed=3, executor=ex)
        # a lambda cannot travel to another process: clear error before anything runs
        with pytest.raises(TypeError, match="picklable"):
            random_search(lambda p: 0.0, space, 2, seed=3, executor=ex)
    assert all(t.error is None for t in trials)  # every trial ran in a worker
    assert [t.params for t in sorted(trials, key=lambda t: t.index)] == serial_configs
    assert [t.score for t in trials] == sorted(p["x"] ** 2 for p in serial_configs)


def _flaky(p):
    if p["x"] > 0.5:
        raise ValueError(f"diverged at x={p['x']}")
    if 0.4 < p["x"] <= 0.5:
        return "not a number"
    if 0.3 < p["x"] <= 0.4:
        return float("nan")
    return p["x"]


@pytest.mark.parametrize("use_pool", [False, True])
def test_search_failure_policy(use_pool):
    space = {"x": Uniform(0.0, 1.0)}
    if use_pool:
        with ThreadPoolExecutor(2) as ex:
            trials = random_search(_flaky, space, 40, seed=1, executor=ex)
    else:
        trials = random_search(_flaky, space, 40, seed=1)
    ok = [t for t in trials if not math.isnan(t.score)]
    failed = [t for t in trials if math.isnan(t.score)]
    assert trials == ok + failed  # NaN scores last
    assert [t.index for t in failed] == sorted(t.index for t in failed)
    assert all(t.params["x"] <= 0.3 and t.error is None for t in ok)
    raised = [t for t in failed if t.params["x"] > 0.5]
    assert raised and all(t.error.startswith("ValueError: diverged at x=") for t in raised)
    bad_type = [t for t in failed if 0.4 < t.params["x"] <= 0.5]
    assert bad_type and all(t.error.startswith("TypeError") for t in bad_type)
    nan_ret = [t for t in failed if 0.3 < t.params["x"] <= 0.4]
    assert nan_ret and all(t.error is None for t in nan_ret)


def test_search_on_error_raise():
    with pytest.raises(ValueError, match="diverged"):
        random_search(_flaky, {"x": Uniform(0.0, 1.0)}, 40, seed=1, on_error="raise")
    with ThreadPoolExecutor(2) as ex:
        with pytest.raises(ValueError, match="diverged"):
            grid_search(_flaky, {"x": [0.1, 0.9, 0.2]}, ex, on_error="raise")


def test_objective_gets_a_copy_of_params():
    def mutating(p):
        p["x"] = 100.0
        return 0.0

    trials = random_search(mutating, {"x": Uniform(0.0, 1.0)}, 3, seed=0)
    assert all(t.params["x"] < 1.0 for t in trials)


def test_random_beats_grid_when_few_parameters_matter():
    """Only x matters: a 3x3 grid tries 3 values of x, 9 random trials try 9."""

    def objective(p):
        return (p["x"] - 0.37) ** 2  # y is irrelevant

    grid = grid_search(objective, {"x": np.linspace(0, 1, 3), "y": np.linspace(0, 1, 3)})
    assert len({t.params["x"] for t in grid}) == 3
    wins = 0
    for seed in range(30):
        rand = random_search(objective, {"x": Uniform(0, 1), "y": Uniform(0, 1)}, 9, seed=seed)
        assert len({t.params["x"] for t in rand}) == 9
        wins += rand[0].score < grid[0].score
    # P(random's best is worse) = P(no x in [0.24, 0.50]) = 0.74**9 ~ 0.07
    assert wins >= 22


def test_grid_search_enumerates_product():
    grid = {"a": [1, 2, 3], "b": ("x", "y"), "c": np.array([0.5, 1.5])}
    seen = []

    def objective(p):
        seen.append(p)
        return p["a"] * p["c"] + (p["b"] == "y")

    trials = grid_search(objective, grid)
    assert len(trials) == 12
    expected = [dict(zip("abc", combo)) for combo in itertools.product([1, 2, 3], "xy", [0.5, 1.5])]
    assert [t.params for t in sorted(trials, key=lambda t: t.index)] == expected
    assert seen == expected
    assert all(type(t.params["c"]) is float for t in trials)  # numpy scalars converted
    assert trials[0].params == {"a": 1, "b": "x", "c": 0.5}
    assert [t.score for t in trials] == sorted(t.score for t in trials)
    with ThreadPoolExecutor(2) as ex:
        assert grid_search(objective, grid, ex) == trials


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: random_search(1, SPACE, 3), TypeError, "^objective: expected a callable"),
        (lambda: random_search(_score, {"lr": [1, 2]}, 3), TypeError,
         r"^space\['lr'\]: expected Uniform, LogUniform"),
        (lambda: random_search(_score, [("lr", Uniform(0, 1))], 3), TypeError,
         "^space: expected a mapping"),
        (lambda: random_search(_score, SPACE, -1), ValueError, r"^n_trials: expected an int in \[0"),
        (lambda: random_search(_score, SPACE, 2.5), TypeError, "^n_trials: expected an int"),
        (lambda: random_search(_score, SPACE, 2, seed="a"), TypeError, "^seed: expected None"),
        (lambda: random_search(_score, SPACE, 2, executor=object()), TypeError,
         "^executor: expected a concurrent.futures.Executor"),
        (lambda: random_search(_score, SPACE, 2, mode="best"), ValueError,
         "^mode: expected one of 'min', 'max', got 'best'"),
        (lambda: random_search(_score, SPACE, 2, on_error="skip"), ValueError, "^on_error: "),
        (lambda: grid_search(_score, {"a": []}), ValueError, r"^grid\['a'\]: expected at least one"),
        (lambda: grid_search(_score, {"a": "xyz"}), TypeError, r"^grid\['a'\]: expected a list"),
        (lambda: grid_search(_score, {1: [1]}), TypeError, "^grid: expected str keys, got 1"),
    ],
)
def test_search_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_random_search_zero_trials_and_integral_float_counts():
    assert random_search(_score, SPACE, 0, seed=0) == []
    assert random_search(_score, SPACE, 3.0, seed=0) == random_search(_score, SPACE, 3, seed=0)


def test_trial_record():
    t = Trial(index=2, params={"x": 1}, score=0.5)
    assert t.error is None and pickle.loads(pickle.dumps(t)) == t
