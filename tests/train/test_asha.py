"""fastopt.train.asha: asynchronous successive halving, serially and on executors."""

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from fastopt.train import Choice, Reporter, Uniform, asha_search, random_search
from fastopt.train.asha import rung_resources
from fastopt_testing.search_objectives import (
    curve,
    curve_score,
    curve_with_state,
    curve_without_checkpoint,
)

SPACE = {"x": Uniform(0.0, 1.0)}


def reference_asha(xs, score, r_min, r_max, eta, mode):
    """A plain statement of the stopping rule, for trials run one after another: trial i
    reaches each rung in turn and goes on while its score is among the best
    max(1, floor(m / eta)) of the m scores recorded there (earlier equal scores first)."""
    rungs = []
    r = r_min
    while r < r_max:
        rungs.append(r)
        r *= eta
    sign = 1 if mode == "min" else -1
    records = [[] for _ in rungs]
    out = []
    for x in xs:
        outcome = ("completed", float(r_max))
        for k, r in enumerate(rungs):
            r = math.ceil(r)  # the first report at or past the rung (reports are per epoch)
            s = score(x, r)
            rank = sum(1 for t in records[k] if sign * t <= sign * s)
            records[k].append(s)
            if rank >= max(1, math.floor(len(records[k]) / eta)):
                outcome = ("stopped", float(r))
                break
        out.append(outcome)
    return out


def _by_index(trials):
    return sorted(trials, key=lambda t: t.index)


@pytest.mark.parametrize("eta, r_max, mode", [(3, 27, "min"), (2, 16, "min"), (3, 30, "max"),
                                               (2.5, 20, "min")])
def test_serial_asha_is_the_plain_rule(eta, r_max, mode):
    sign = 1 if mode == "min" else -1
    trials = asha_search(curve if mode == "min" else _negated_curve, SPACE, 40, seed=4,
                         max_resource=r_max, reduction_factor=eta, mode=mode)
    xs = [t.params["x"] for t in _by_index(trials)]
    expected = reference_asha(xs, lambda x, r: sign * curve_score(x, r), 1.0, r_max, eta, mode)
    assert [(t.status, t.resource) for t in _by_index(trials)] == expected
    assert sum(s == "completed" for s, _ in expected) >= 1
    for t in trials:
        resources = [r for r, _ in t.history]
        assert resources == [float(r) for r in range(1, int(t.resource) + 1)]
        assert [s for _, s in t.history] == [sign * curve_score(t.params["x"], r)
                                             for r in resources]
        assert t.score == t.history[-1][1] and t.resource_used == t.resource
        assert t.error is None
    # the configurations are random_search's for the same seed
    assert xs == [t.params["x"] for t in _by_index(random_search(lambda p: 0.0, SPACE, 40,
                                                                  seed=4))]
    # sorted: the full runs first, best first; then by resource reached
    assert [(-t.resource, sign * t.score) for t in trials] == sorted(
        (-t.resource, sign * t.score) for t in trials)


def _negated_curve(params, reporter):
    for epoch in range((reporter.checkpoint or 0) + 1, int(reporter.max_resource) + 1):
        reporter.report(epoch, -curve_score(params["x"], epoch), checkpoint=epoch)


def test_rung_resources():
    assert rung_resources(1.0, 27.0, 3.0) == [1.0, 3.0, 9.0]
    assert rung_resources(1.0, 30.0, 3.0) == [1.0, 3.0, 9.0, 27.0]
    assert rung_resources(2.0, 2.0, 3.0) == []  # min == max: a random search
    trials = asha_search(curve, SPACE, 5, seed=0, max_resource=2, min_resource=2)
    assert all(t.status == "completed" and t.resource == 2.0 for t in trials)


def test_asha_spends_a_fraction_and_keeps_the_best():
    n, r_max = 81, 27
    trials = asha_search(curve, SPACE, n, seed=1, max_resource=r_max)
    full = random_search(lambda p: curve_score(p["x"], r_max), SPACE, n, seed=1)
    assert trials[0].index == full[0].index and trials[0].status == "completed"
    assert trials[0].score == full[0].score
    used = sum(t.resource_used for t in trials)
    assert used < n * r_max / 5  # 81 full runs would cost 2187


def test_restarts_without_checkpoint_cost_more_and_decide_the_same():
    with_ckpt = asha_search(curve, SPACE, 30, seed=2, max_resource=9)
    restart = asha_search(curve_without_checkpoint, SPACE, 30, seed=2, max_resource=9)
    assert [(t.index, t.status, t.resource, t.history) for t in restart] == [
        (t.index, t.status, t.resource, t.history) for t in with_ckpt]
    for t in _by_index(restart):
        # a continued trial reruns 1..r_k before going on from r_k: 1 + 3 + 9 for a full run
        expected = {1.0: 1.0, 3.0: 1.0 + 3.0, 9.0: 1.0 + 3.0 + 9.0}[t.resource]
        assert t.resource_used == expected


def test_checkpoints_carry_real_state():
    a = asha_search(curve_with_state, SPACE, 20, seed=3, max_resource=9)
    # the same trials trained in one go give the same scores at every resource
    for t in a:
        w, x = np.zeros(3), t.params["x"]
        for r, s in t.history:
            w -= 0.5 * (w - x)
            assert s == float(np.sum((w - x) ** 2)) + curve_score(x, r)


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_asha_on_executors_keeps_the_best_and_the_configurations(kind):
    """Whatever order segments finish in, a configuration that is best at every rung is never
    stopped (it is the best of the scores recorded at each rung)."""
    if kind == "thread":
        space, executor = SPACE, ThreadPoolExecutor(3)
    else:  # the objective refuses to run in this process
        space = {"x": Uniform(0.0, 1.0), "parent": Choice([os.getpid()])}
        executor = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with executor:
        trials = asha_search(curve, space, 30, seed=5, executor=executor, max_resource=9)
    sampled = random_search(lambda p: 0.0, space, 30, seed=5)
    assert [t.params for t in _by_index(trials)] == [t.params for t in _by_index(sampled)]
    assert all(t.error is None for t in trials)  # in a worker: "parent" never matched
    best = min(trials, key=lambda t: (t.params["x"] - 0.3) ** 2)
    assert best.status == "completed" and trials[0] is best
    assert all(t.status in ("completed", "stopped") for t in trials)
    assert sum(t.resource_used for t in trials) < 30 * 9 / 2


def test_max_concurrent_without_executor():
    """Without an executor segments run one at a time: max_concurrent can only be 1."""
    assert asha_search(curve, SPACE, 5, seed=6, max_resource=9, max_concurrent=1) == \
        asha_search(curve, SPACE, 5, seed=6, max_resource=9)
    with pytest.raises(ValueError, match="^max_concurrent: expected 1 or None without an "
                                         "executor, got 4"):
        asha_search(curve, SPACE, 5, seed=6, max_resource=9, max_concurrent=4)


def _raising(params, reporter):
    for epoch in range((reporter.checkpoint or 0) + 1, 19):
        if params["x"] > 0.8 and epoch == 2:
            raise FloatingPointError(f"diverged at epoch {epoch}")
        reporter.report(epoch, curve_score(params["x"], epoch), checkpoint=epoch)


def _returns(params, reporter):
    reporter.report(1, curve_score(params["x"], 1))
    if params["x"] < 0.2:
        return "done"       # not a number: failed
    if params["x"] < 0.4:
        return 0.123        # its own early stopping: completed with this score
    return None


def test_failures_are_recorded_and_the_search_goes_on():
    # the first rung is at 2: a failing trial reports epoch 1, then raises
    trials = asha_search(_raising, SPACE, 30, seed=7, max_resource=18, min_resource=2)
    failed = [t for t in trials if t.status == "failed"]
    assert failed and all(t.params["x"] > 0.8 for t in failed)
    assert all(t.error == "FloatingPointError: diverged at epoch 2" for t in failed)
    assert all(t.history == ((1.0, curve_score(t.params["x"], 1)),) for t in failed)
    assert all(math.isnan(t.score) for t in failed) and trials[-len(failed):] == failed
    assert any(t.status == "completed" for t in trials)
    with pytest.raises(FloatingPointError, match="diverged"):
        asha_search(_raising, SPACE, 30, seed=7, max_resource=18, min_resource=2,
                    on_error="raise")

    returned = {t.index: t for t in asha_search(_returns, SPACE, 12, seed=8, max_resource=9,
                                                min_resource=2)}
    for t in returned.values():
        if t.params["x"] < 0.2:
            assert t.status == "failed" and t.error.startswith("TypeError: ")
        elif t.params["x"] < 0.4:
            assert (t.status, t.score, t.resource) == ("completed", 0.123, 1.0)
        else:  # returned None before the first rung: the trial ended itself
            assert t.status == "completed" and t.score == curve_score(t.params["x"], 1)


def _bad_reports(params, reporter):
    reporter.report(1, 0.5)
    reporter.report(1, 0.4)  # not above the last report


def _no_reports(params, reporter):
    return None


def _swallows(params, reporter):
    """Catches everything around its loop (a bare except): the rung still ends the call."""
    epoch = reporter.checkpoint or 0
    try:
        while epoch < 9:
            epoch += 1
            reporter.report(epoch, curve_score(params["x"], epoch), checkpoint=epoch)
    except BaseException:
        pass
    for _ in range(3):  # and goes on reporting: ignored
        try:
            reporter.report(epoch + 1, 0.0)
        except BaseException:
            pass


def test_reporter_misuse():
    t = asha_search(_bad_reports, SPACE, 1, seed=0, max_resource=9)[0]
    assert t.status == "failed"
    assert t.error == "ValueError: resource: expected a value in (1, inf), got 1"
    t = asha_search(_no_reports, SPACE, 1, seed=0, max_resource=9)[0]
    assert (t.status, t.error) == ("failed", "ValueError: the objective reported no score")
    assert asha_search(_swallows, SPACE, 15, seed=9, max_resource=9) == asha_search(
        curve, SPACE, 15, seed=9, max_resource=9)
    r = Reporter(checkpoint=5, start=3.0, target=9.0, min_resource=1.0, max_resource=9.0)
    with pytest.raises(ValueError, match=r"^resource: expected a value in \(3, inf\), got 2"):
        r.report(2, 0.1)
    with pytest.raises(TypeError, match="^score: expected a real number, got '0.1'"):
        r.report(4, "0.1")
    with pytest.raises(ValueError, match="^resource: expected a finite number"):
        r.report(math.inf, 0.1)


def test_nan_scores_stop_at_the_rung():
    def diverging(params, reporter):
        for epoch in range(1, 10):
            s = math.nan if params["x"] > 0.5 else curve_score(params["x"], epoch)
            reporter.report(epoch, s, checkpoint=epoch)

    trials = asha_search(diverging, SPACE, 20, seed=10, max_resource=9)
    for t in trials:
        if t.params["x"] > 0.5:
            assert t.status == "stopped" and t.resource == 1.0 and math.isnan(t.score)
    assert all(math.isnan(t.score) for t in trials[-sum(t.params["x"] > 0.5 for t in trials):])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"max_resource": 0}, ValueError, r"^max_resource: expected a value in \(0, inf\)"),
    ({"max_resource": 9, "min_resource": 10}, ValueError, r"^min_resource: expected a value in \(0, 9\]"),
    ({"max_resource": 9, "reduction_factor": 1}, ValueError, r"^reduction_factor: expected a value in \(1"),
    ({"max_resource": 9, "max_concurrent": 0}, ValueError, r"^max_concurrent: expected an int in \[1"),
    ({"max_resource": 9, "mode": "best"}, ValueError, "^mode: expected one of"),
    ({"max_resource": "9"}, TypeError, "^max_resource: expected a real number"),
])
def test_asha_argument_checks(kwargs, exc, match):
    calls = []
    with pytest.raises(exc, match=match):
        asha_search(lambda p, r: calls.append(p), SPACE, 3, seed=0, **kwargs)
    assert calls == []


def test_asha_objective_checks():
    with pytest.raises(TypeError, match="^objective: expected a callable"):
        asha_search(None, SPACE, 3, max_resource=9)
    with pytest.raises(TypeError, match="^objective: expected a picklable callable"):
        with ProcessPoolExecutor(1) as ex:
            asha_search(lambda p, r: None, SPACE, 3, executor=ex, max_resource=9)
