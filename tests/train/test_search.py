"""Tests for fastopt.train (training practice)."""

import doctest
import itertools
import math
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt.train as ftrain
from fastopt.train import (
    EMA,
    Choice,
    EarlyStopping,
    IntUniform,
    LogUniform,
    Trial,
    Uniform,
    check_grad,
    clip_grad_norm,
    clip_grads_with_norm,
    ensemble_average,
    grid_search,
    lr_finder,
    numerical_gradient,
    numerical_gradient_array,
    random_search,
    relative_error,
    total_norm,
)


def _snapshot(arrays):
    return [a.copy() for a in arrays]


def _assert_unchanged(arrays, snapshot):
    for a, s in zip(arrays, snapshot):
        np.testing.assert_array_equal(a, s)


# =============================================================================
# EarlyStopping
# =============================================================================
def _run_es(es, metrics, params=None):
    """Feed metrics; before each update set params to the epoch number. Return stop index."""
    for i, m in enumerate(metrics):
        if params is not None:
            for p in params:
                p[...] = i
        if es.update(m, params):
            return i
    return None


def test_es_stops_after_patience_bad_updates_min():
    es = EarlyStopping(patience=2)
    # 0: best 3; 1: best 2; 2, 3: no improvement -> stop at 3
    assert _run_es(es, [3.0, 2.0, 2.5, 2.1, 1.0]) == 3
    assert es.best_score == 2.0 and es.best_step == 1
    assert es.num_steps == 4 and es.num_bad_steps == 2 and es.should_stop


def test_es_max_mode():
    es = EarlyStopping(patience=1, mode="max")
    assert _run_es(es, [0.5, 0.7, 0.9, 0.8, 0.95]) == 3
    assert es.best_score == 0.9 and es.best_step == 2


def test_es_improvement_resets_counter():
    es = EarlyStopping(patience=2)
    assert _run_es(es, [1.0, 1.1, 0.9, 1.2, 0.8, 1.3, 1.4]) == 6
    assert es.best_step == 4


def test_es_min_delta():
    # 0.95 and 0.9 are not better than 1.0 by more than 0.1
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert _run_es(es, [1.0, 0.95, 0.9, 0.5]) == 2
    assert es.best_score == 1.0
    es = EarlyStopping(patience=2, min_delta=0.1, mode="max")
    assert _run_es(es, [0.5, 0.65, 0.7, 0.75]) == 3  # 0.65 improves, 0.7 and 0.75 do not
    assert es.best_score == 0.65


def test_es_nan_never_improves():
    es = EarlyStopping(patience=2)
    assert _run_es(es, [float("nan"), 1.0, float("nan"), float("nan")]) == 3
    assert es.best_step == 1


def test_es_restores_best_params_in_place_on_stop():
    params = [np.zeros((2, 3)), np.zeros(4, dtype=np.float32)]
    ids = [id(p) for p in params]
    es = EarlyStopping(patience=2, mode="max")
    stop = _run_es(es, [0.1, 0.5, 0.4, 0.3, 0.9], params)
    assert stop == 3
    assert [id(p) for p in params] == ids
    for p in params:
        np.testing.assert_array_equal(p, np.full(p.shape, 1, p.dtype))  # epoch of best


def test_es_restore_best_false_keeps_last_params_then_restore():
    params = [np.zeros(3)]
    es = EarlyStopping(patience=2, restore_best=False)
    assert _run_es(es, [3.0, 1.0, 2.0, 2.0], params) == 3
    np.testing.assert_array_equal(params[0], 3.0)
    es.restore(params)
    np.testing.assert_array_equal(params[0], 1.0)


def test_es_train_to_end_keep_best():
    params = [np.zeros(3)]
    es = EarlyStopping(patience=None, mode="max")
    metrics = [0.1, 0.6, 0.2, 0.3, 0.2, 0.5, 0.1, 0.0]
    assert _run_es(es, metrics, params) is None  # never stops
    np.testing.assert_array_equal(params[0], len(metrics) - 1)
    es.restore(params)
    np.testing.assert_array_equal(params[0], int(np.argmax(metrics)))


def test_es_snapshot_is_a_copy():
    p = np.ones(3)
    es = EarlyStopping(patience=3)
    es.update(1.0, [p])
    p[:] = 7.0
    np.testing.assert_array_equal(es.best_params[0], 1.0)
    with pytest.raises(ValueError):
        es.best_params[0][0] = 3.0  # read-only view
    es.restore([p])
    np.testing.assert_array_equal(p, 1.0)


def test_es_improvement_without_params_discards_stale_snapshot():
    es = EarlyStopping(patience=3)
    es.update(2.0, [np.zeros(2)])
    es.update(1.0)  # better, but no params given
    assert es.best_params is None
    with pytest.raises(RuntimeError, match="no best parameters"):
        es.restore([np.zeros(2)])


def test_es_restore_validation_leaves_params_untouched():
    es = EarlyStopping(patience=3)
    es.update(1.0, [np.ones(3), np.ones(2)])
    bad_shape = [np.zeros(3), np.zeros(5)]
    bad_dtype = [np.zeros(3), np.zeros(2, dtype=np.float32)]
    ro = np.zeros(2)
    ro.flags.writeable = False
    for params, exc in [
        (bad_shape, ValueError),
        (bad_dtype, ValueError),
        ([np.zeros(3)], ValueError),
        ([np.zeros(3), ro], ValueError),
        ([np.zeros(3), [0.0, 0.0]], TypeError),
    ]:
        with pytest.raises(exc, match="params"):
            es.restore(params)
        np.testing.assert_array_equal(params[0], 0.0)  # first array not written


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"patience": 0}, ValueError, "patience"),
        ({"patience": 1.5}, TypeError, "patience"),
        ({"patience": 2, "mode": "avg"}, ValueError, "mode"),
        ({"patience": 2, "min_delta": -0.1}, ValueError, "min_delta"),
        ({"patience": 2, "min_delta": "0"}, TypeError, "min_delta"),
        ({"patience": 2, "restore_best": 1}, TypeError, "restore_best"),
    ],
)
def test_es_bad_constructor_args(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        EarlyStopping(**kwargs)


def test_es_bad_update_args_change_nothing():
    es = EarlyStopping(patience=2)
    es.update(1.0)
    before = es.state_dict()
    with pytest.raises(TypeError, match="metric"):
        es.update("0.5")
    with pytest.raises(TypeError, match="metric"):
        es.update(np.array([0.5]))
    with pytest.raises(TypeError, match="params"):
        es.update(0.5, [[1.0, 2.0]])
    assert es.state_dict() == before


def test_es_state_dict_resume_equals_uninterrupted_run():
    rng = np.random.default_rng(0)
    metrics = list(rng.random(12))
    full = EarlyStopping(patience=4)
    p_full = [np.zeros(2)]
    signals_full = []
    for i, m in enumerate(metrics):
        p_full[0][:] = i
        signals_full.append(full.update(m, p_full))

    first = EarlyStopping(patience=4)
    p = [np.zeros(2)]
    signals = []
    for i, m in enumerate(metrics[:5]):
        p[0][:] = i
        signals.append(first.update(m, p))
    sd = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = EarlyStopping(patience=1)  # config comes from the state dict
    resumed.load_state_dict(sd)
    for i, m in enumerate(metrics[5:], start=5):
        p[0][:] = i
        signals.append(resumed.update(m, p))
    assert signals == signals_full
    assert (resumed.best_score, resumed.best_step) == (full.best_score, full.best_step)
    np.testing.assert_array_equal(resumed.best_params[0], full.best_params[0])
    # the state dict holds copies
    sd2 = resumed.state_dict()
    sd2["best_params"][0][:] = -1
    assert resumed.best_params[0][0] != -1


def test_es_load_state_dict_validation():
    es = EarlyStopping(patience=2)
    sd = es.state_dict()
    del sd["num_steps"]
    with pytest.raises(ValueError, match="num_steps"):
        es.load_state_dict(sd)
    sd = es.state_dict()
    sd["mode"] = "avg"
    with pytest.raises(ValueError, match="mode"):
        es.load_state_dict(sd)
    assert es.mode == "min"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(0, 10, allow_nan=False), st.just(float("nan"))),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 5),
)
def test_es_matches_prefix_minimum_reference(metrics, patience):
    """With min_delta=0: update t improves iff metric_t < min of all earlier metrics."""
    es = EarlyStopping(patience=patience)
    last_improvement = None
    for t, m in enumerate(metrics):
        earlier = [x for x in metrics[:t] if not math.isnan(x)]
        improves = not math.isnan(m) and (not earlier or m < min(earlier))
        if improves:
            last_improvement = t
        since = t + 1 if last_improvement is None else t - last_improvement
        assert es.update(m) == (since >= patience)
    assert es.best_step == last_improvement


# =============================================================================
# EMA
# =============================================================================
def test_ema_closed_form():
    rng = np.random.default_rng(1)
    d = 0.9
    p0 = rng.standard_normal((3, 2))
    seq = [rng.standard_normal((3, 2)) for _ in range(7)]
    param = p0.copy()
    ema = EMA([param], decay=d)
    for s in seq:
        param[...] = s
        ema.update([param])
    k = len(seq)
    expected = d**k * p0 + sum((1 - d) * d ** (k - 1 - j) * seq[j] for j in range(k))
    np.testing.assert_allclose(ema.shadow[0], expected, rtol=1e-12, atol=1e-14)
    assert ema.num_updates == k


def test_ema_warmup_decays():
    d = 0.99
    p0 = np.array([10.0])
    seq = [np.array([float(v)]) for v in [1, 2, 3, 4, 5]]
    ema = EMA([p0.copy()], decay=d, warmup=True)
    decays = []
    for s in seq:
        decays.append(ema.current_decay())
        ema.update([s])
    assert decays == pytest.approx([min(d, (1 + n) / (10 + n)) for n in range(5)])
    assert decays[0] == pytest.approx(0.1)
    # closed form with per-step decays d_n
    k = len(seq)
    expected = np.prod(decays) * p0
    for j in range(k):
        expected = expected + (1 - decays[j]) * np.prod(decays[j + 1 :]) * seq[j]
    np.testing.assert_allclose(ema.shadow[0], expected, rtol=1e-12)


def test_ema_warmup_is_capped_by_decay():
    ema = EMA([np.zeros(1)], decay=0.5, warmup=True)
    for _ in range(20):
        assert ema.current_decay() <= 0.5
        ema.update([np.ones(1)])
    assert ema.current_decay() == 0.5


def test_ema_shadow_is_independent_readonly_copy():
    p = np.ones(3)
    ema = EMA([p], decay=0.5)
    p[:] = 5.0
    np.testing.assert_array_equal(ema.shadow[0], 1.0)
    with pytest.raises(ValueError):
        ema.shadow[0][0] = 2.0


def test_ema_decay_one_and_zero():
    ema1 = EMA([np.ones(2)], decay=1.0)
    ema0 = EMA([np.ones(2)], decay=0.0)
    for ema in (ema1, ema0):
        ema.update([np.full(2, 3.0)])
    np.testing.assert_array_equal(ema1.shadow[0], 1.0)
    np.testing.assert_array_equal(ema0.shadow[0], 3.0)


def test_ema_copy_to_and_average_parameters():
    params = [np.zeros(2), np.zeros((2, 2), dtype=np.float32)]
    ema = EMA(params, decay=0.5)
    for p in params:
        p[...] = 4.0
    ema.update(params)  # shadow = 2
    with ema.average_parameters(params):
        for p in params:
            np.testing.assert_array_equal(p, 2.0)
    for p in params:
        np.testing.assert_array_equal(p, 4.0)
    with pytest.raises(KeyError):
        with ema.average_parameters(params):
            raise KeyError("evaluation failed")
    for p in params:
        np.testing.assert_array_equal(p, 4.0)  # restored on error too
    target = [np.zeros(2), np.zeros((2, 2), dtype=np.float32)]
    ema.copy_to(target)
    assert target[1].dtype == np.float32
    for t in target:
        np.testing.assert_array_equal(t, 2.0)


def test_ema_float64_shadow_for_float32_params():
    p = np.zeros(1, dtype=np.float32)
    ema32 = EMA([p], decay=0.9999)
    ema64 = EMA([p], decay=0.9999, dtype=np.float64)
    one = np.ones(1, dtype=np.float32)
    for _ in range(2000):
        ema32.update([one])
        ema64.update([one])
    exact = 1 - 0.9999**2000
    assert ema64.shadow[0].dtype == np.float64
    assert abs(ema64.shadow[0][0] - exact) < 1e-12
    assert ema32.shadow[0].dtype == np.float32
    assert abs(ema32.shadow[0][0] - exact) < 1e-3


def test_ema_state_dict_roundtrip():
    rng = np.random.default_rng(2)
    seq = [rng.standard_normal(4) for _ in range(6)]
    full = EMA([np.zeros(4)], decay=0.8, warmup=True)
    for s in seq:
        full.update([s])
    part = EMA([np.zeros(4)], decay=0.8, warmup=True)
    for s in seq[:3]:
        part.update([s])
    sd = pickle.loads(pickle.dumps(part.state_dict()))
    resumed = EMA([np.full(4, 9.0)], decay=0.1)
    resumed.load_state_dict(sd)
    for s in seq[3:]:
        resumed.update([s])
    np.testing.assert_array_equal(resumed.shadow[0], full.shadow[0])
    assert resumed.num_updates == 6 and resumed.decay == 0.8 and resumed.warmup


def test_ema_validation_changes_nothing():
    ema = EMA([np.zeros(3), np.zeros(2)], decay=0.5)
    before = ema.state_dict()
    with pytest.raises(ValueError, match=r"params\[1\]"):
        ema.update([np.ones(3), np.ones(4)])
    with pytest.raises(ValueError, match="params"):
        ema.update([np.ones(3)])
    with pytest.raises(TypeError, match=r"params\[0\]"):
        ema.update([np.ones(3, dtype=int), np.ones(2)])
    sd = ema.state_dict()
    sd["shadow"] = [np.ones(3), np.ones(5)]
    with pytest.raises(ValueError, match="shadow"):
        ema.load_state_dict(sd)
    after = ema.state_dict()
    assert after["num_updates"] == before["num_updates"]
    _assert_unchanged(after["shadow"], before["shadow"])
    with pytest.raises(ValueError, match="decay"):
        EMA([np.zeros(1)], decay=1.5)
    with pytest.raises(TypeError, match="decay"):
        EMA([np.zeros(1)], decay=None)
    with pytest.raises(TypeError, match="dtype"):
        EMA([np.zeros(1)], dtype=np.int64)
    with pytest.raises(TypeError, match="params"):
        EMA(np.zeros(1).tolist())
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ema.copy_to([ro, np.zeros(2)])


# =============================================================================
# ensemble_average
# =============================================================================
def test_ensemble_mean_and_weighted_mean():
    rng = np.random.default_rng(3)
    probs = [rng.dirichlet(np.ones(4), size=5) for _ in range(3)]
    np.testing.assert_allclose(ensemble_average(probs), np.mean(probs, axis=0), rtol=1e-14)
    w = [1.0, 2.0, 0.5]
    np.testing.assert_allclose(
        ensemble_average(probs, weights=w), np.average(probs, axis=0, weights=w), rtol=1e-14
    )
    # averaged probabilities still sum to one
    np.testing.assert_allclose(ensemble_average(probs, w).sum(axis=1), 1.0)


def test_ensemble_dtypes():
    a = np.array([0.25, 0.75], dtype=np.float32)
    out = ensemble_average([a, a])
    assert out.dtype == np.float32
    assert ensemble_average([a, a.astype(np.float64)]).dtype == np.float64
    votes = ensemble_average([np.array([1, 0]), np.array([0, 1]), np.array([1, 0])])
    assert votes.dtype == np.float64
    np.testing.assert_allclose(votes, [2 / 3, 1 / 3])


def test_ensemble_beats_its_members():
    """The lecture's point: averaging independent models reduces variance."""
    rng = np.random.default_rng(4)
    n, k, models = 4000, 5, 7
    y = rng.integers(k, size=n)
    probs = []
    for _ in range(models):
        logits = 1.0 * np.eye(k)[y] + rng.standard_normal((n, k))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs.append(e / e.sum(axis=1, keepdims=True))
    member_acc = [np.mean(p.argmax(axis=1) == y) for p in probs]
    ens_acc = np.mean(ensemble_average(probs).argmax(axis=1) == y)
    assert ens_acc > max(member_acc) + 0.05


@pytest.mark.parametrize(
    "args, exc, match",
    [
        (([],), ValueError, "at least one"),
        ((np.ones((2, 3)),), TypeError, "prob_list"),
        (([np.ones(3), np.ones(4)],), ValueError, r"prob_list\[1\]"),
        (([np.array(["a"])],), TypeError, r"prob_list\[0\]"),
        (([np.ones(3), np.ones(3)], [1.0]), ValueError, "weights"),
        (([np.ones(3), np.ones(3)], [1.0, -1.0]), ValueError, "weights"),
        (([np.ones(3), np.ones(3)], [0.0, 0.0]), ValueError, "weights"),
        (([np.ones(3), np.ones(3)], [1.0, np.nan]), ValueError, "weights"),
    ],
)
def test_ensemble_validation(args, exc, match):
    with pytest.raises(exc, match=match):
        ensemble_average(*args)


# =============================================================================
# search spaces
# =============================================================================
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
        (lambda: Uniform(1.0, 1.0), ValueError, "low < high"),
        (lambda: Uniform(0.0, math.inf), ValueError, "finite"),
        (lambda: Uniform("a", 1.0), TypeError, "Uniform.low"),
        (lambda: LogUniform(0.0, 1.0), ValueError, "LogUniform.low"),
        (lambda: LogUniform(1.0, 0.5), ValueError, "low < high"),
        (lambda: IntUniform(3, 2), ValueError, "low <= high"),
        (lambda: IntUniform(1.5, 2), TypeError, "IntUniform.low"),
        (lambda: IntUniform(0, 5, log=True), ValueError, "low >= 1"),
        (lambda: IntUniform(1, 5, log="yes"), TypeError, "IntUniform.log"),
        (lambda: Choice([]), ValueError, "empty"),
        (lambda: Choice("abc"), TypeError, "Choice.options"),
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
        (lambda: random_search(1, SPACE, 3), TypeError, "objective"),
        (lambda: random_search(_score, {"lr": [1, 2]}, 3), TypeError, r"space\['lr'\]"),
        (lambda: random_search(_score, [("lr", Uniform(0, 1))], 3), TypeError, "space"),
        (lambda: random_search(_score, SPACE, -1), ValueError, "n_trials"),
        (lambda: random_search(_score, SPACE, 2.0), TypeError, "n_trials"),
        (lambda: random_search(_score, SPACE, 2, seed="a"), TypeError, "seed"),
        (lambda: random_search(_score, SPACE, 2, executor=object()), TypeError, "executor"),
        (lambda: random_search(_score, SPACE, 2, mode="best"), ValueError, "mode"),
        (lambda: random_search(_score, SPACE, 2, on_error="skip"), ValueError, "on_error"),
        (lambda: grid_search(_score, {"a": []}), ValueError, r"grid\['a'\]"),
        (lambda: grid_search(_score, {"a": "xyz"}), TypeError, r"grid\['a'\]"),
        (lambda: grid_search(_score, {1: [1]}), TypeError, "grid keys"),
    ],
)
def test_search_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_random_search_zero_trials():
    assert random_search(_score, SPACE, 0, seed=0) == []


def test_trial_record():
    t = Trial(index=2, params={"x": 1}, score=0.5)
    assert t.error is None and pickle.loads(pickle.dumps(t)) == t


# =============================================================================
# lr_finder
# =============================================================================
def test_lr_finder_suggests_steepest_point():
    """Stateless loss 1 - tanh(log(lr/lr0)) falls fastest exactly at lr0."""
    lr0 = 3e-3
    calls = []

    def step(lr):
        calls.append(lr)
        return 1.0 - math.tanh(math.log(lr / lr0))

    res = lr_finder(step, start_lr=1e-6, end_lr=1.0, num=61, smooth=0.0, diverge_factor=None)
    grid = np.geomspace(1e-6, 1.0, 61)
    np.testing.assert_allclose(res.lrs, grid)
    assert calls == pytest.approx(list(grid))
    assert not res.diverged and len(res.losses) == 61
    log_step = math.log(grid[1] / grid[0])
    assert abs(math.log(res.suggested_lr / lr0)) <= log_step / 2 + 1e-12


def test_lr_finder_smoothing_closed_form():
    rng = np.random.default_rng(8)
    losses = iter(rng.uniform(1.0, 2.0, size=50))
    res = lr_finder(lambda lr: next(losses), start_lr=1e-4, end_lr=1e-1, num=50, smooth=0.9,
                    diverge_factor=None)
    L = res.losses
    b = 0.9
    for i in range(len(L)):
        j = np.arange(i + 1)
        expected = np.sum((1 - b) * b ** (i - j) * L[: i + 1]) / (1 - b ** (i + 1))
        assert res.smoothed_losses[i] == pytest.approx(expected, rel=1e-12)
    # bias correction: a constant loss is smoothed to itself from the first step
    const = lr_finder(lambda lr: 3.0, num=20, diverge_factor=None)
    np.testing.assert_allclose(const.smoothed_losses, 3.0, rtol=1e-12)
    assert const.suggested_lr is None  # a flat curve never falls


def test_lr_finder_defaults_and_explicit_lrs():
    calls = []
    res = lr_finder(lambda lr: calls.append(lr) or 1.0, diverge_factor=None)
    assert len(calls) == 100
    assert calls[0] == pytest.approx(1e-7) and calls[-1] == pytest.approx(10.0)
    lrs = [0.001, 0.01, 0.1, 1.0]
    calls.clear()
    res = lr_finder(lambda lr: calls.append(lr) or 1.0, lrs, skip_start=0)
    assert calls == lrs
    np.testing.assert_array_equal(res.lrs, lrs)


def _scripted(losses):
    """A step_fn returning the given losses in order, recording the lrs it gets."""
    seen = []

    def step(lr):
        seen.append(lr)
        return losses[len(seen) - 1]

    return step, seen


def test_lr_finder_diverge_factor_stops_exactly():
    losses = [1.0, 0.9, 0.8, 0.5, 1.9, 2.1, 0.1, 0.1]  # 2.1 > 4 * 0.5: stop at index 5
    lrs = np.geomspace(1e-3, 1.0, 8)
    step, seen = _scripted(losses)
    res = lr_finder(step, lrs, smooth=0.0, skip_start=0)
    assert res.diverged and len(res.lrs) == 6 and len(seen) == 6
    np.testing.assert_array_equal(res.losses, losses[:6])
    # the suggestion ignores the diverging point
    slopes = np.gradient(losses[:5], np.log(lrs[:5]))
    assert res.suggested_lr == lrs[int(np.argmin(slopes))]
    step, seen = _scripted(losses)
    res = lr_finder(step, lrs, smooth=0.0, diverge_factor=None)
    assert not res.diverged and len(res.lrs) == 8 and len(seen) == 8


def test_lr_finder_stops_on_nan():
    res = lr_finder(lambda lr: float("nan") if lr > 1e-2 else 1.0, start_lr=1e-4, end_lr=1.0,
                    num=20, diverge_factor=None)
    assert res.diverged and res.lrs[-1] > 1e-2 and res.lrs[-2] <= 1e-2
    assert math.isnan(res.losses[-1])


def test_lr_finder_quadratic_gradient_descent():
    """GD on 0.5*h*w^2 contracts by |1 - lr*h| per step: it diverges for lr > 2/h."""
    h = 4.0
    w = [1.0]

    def step(lr):
        w[0] -= lr * h * w[0]
        return 0.5 * h * w[0] ** 2

    res = lr_finder(step, start_lr=1e-5, end_lr=1e2, num=100)
    assert res.diverged and len(res.lrs) < 100
    assert res.lrs[-1] > 2 / h
    assert 1e-3 / h < res.suggested_lr < 2 / h


@pytest.mark.parametrize("seed", range(4))
def test_lr_finder_linear_regression(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((512, 5)) * np.array([3.0, 1.0, 1.0, 0.5, 0.2])
    y = X @ rng.standard_normal(5) + 0.3 * rng.standard_normal(512)
    L = np.linalg.eigvalsh(X.T @ X / len(X)).max()  # GD diverges for lr > 2 / L
    w = np.zeros(5)

    def step(lr):
        r = X @ w - y
        w[:] -= lr * (X.T @ r) / len(X)
        return 0.5 * np.mean(r**2)

    res = lr_finder(step, start_lr=1e-5, end_lr=10.0)
    assert res.diverged and res.lrs[-1] > 2 / L
    assert 1e-2 / L < res.suggested_lr < 2 / L


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"lrs": [1e-3, 1e-2], "start_lr": 1e-4}, ValueError, "either lrs"),
        ({"lrs": [1e-2, 1e-3]}, ValueError, "increasing"),
        ({"lrs": [0.0, 1e-3]}, ValueError, "> 0"),
        ({"lrs": [1e-3]}, ValueError, "at least 2"),
        ({"lrs": ["a", "b"]}, TypeError, "lrs"),
        ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, "end_lr"),
        ({"start_lr": -1.0}, ValueError, "start_lr"),
        ({"num": 1}, ValueError, "num"),
        ({"smooth": 1.0}, ValueError, "smooth"),
        ({"diverge_factor": 1.0}, ValueError, "diverge_factor"),
        ({"skip_start": -1}, ValueError, "skip_start"),
    ],
)
def test_lr_finder_validation(kwargs, exc, match):
    calls = []
    with pytest.raises(exc, match=match):
        lr_finder(lambda lr: calls.append(lr) or 1.0, **kwargs)
    assert calls == []  # nothing trained


def test_lr_finder_step_fn_errors():
    with pytest.raises(TypeError, match="step_fn"):
        lr_finder(None)
    with pytest.raises(TypeError, match="step_fn's return value"):
        lr_finder(lambda lr: "1.0")


def test_lr_finder_plot():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = lr_finder(lambda lr: 1.0 - math.tanh(math.log(lr / 1e-3)), num=30, smooth=0.0)
    ax = res.plot(skip_start=2, skip_end=3)
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), res.lrs[2:-3])
    assert ax.lines[1].get_xdata()[0] == res.suggested_lr
    plt.close(ax.figure)


# =============================================================================
# gradient checking
# =============================================================================
def _f(v):
    return float(np.sum(np.sin(v) * v**2))


def _df(v):
    return np.cos(v) * v**2 + 2 * v * np.sin(v)


def test_numerical_gradient_matches_analytic():
    x = np.random.default_rng(9).standard_normal((3, 4))
    before = x.copy()
    g = numerical_gradient(_f, x)
    assert g.shape == x.shape and g.dtype == np.float64
    np.testing.assert_allclose(g, _df(before), rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(x, before)  # bitwise restored


def test_numerical_gradient_matches_scipy_approx_fprime():
    optimize = pytest.importorskip("scipy.optimize")
    x = np.linspace(-1, 2, 7)
    ref = optimize.approx_fprime(x, _f, 1e-7)  # forward differences
    np.testing.assert_allclose(numerical_gradient(_f, x), ref, rtol=1e-5, atol=1e-6)


def test_numerical_gradient_closure_over_x_and_views():
    """cs231n style: f ignores its argument and reads a parameter array."""
    W = np.random.default_rng(10).standard_normal((4, 6))
    view = W[:, ::2]  # non-contiguous parameter view
    before = W.copy()
    g = numerical_gradient(lambda _: float(np.sum(W**3)), view)
    np.testing.assert_allclose(g, 3 * before[:, ::2] ** 2, rtol=1e-6)
    np.testing.assert_array_equal(W, before)
    s = np.array(1.5)  # 0-d
    np.testing.assert_allclose(numerical_gradient(lambda v: float(v) ** 2, s), 3.0, rtol=1e-8)


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    calls = [0]

    def f(v):
        calls[0] += 1
        if calls[0] == 4:  # second entry, minus side
            raise ArithmeticError("boom")
        return float(v.sum())

    with pytest.raises(ArithmeticError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])


def test_numerical_gradient_float32():
    x = np.array([0.3, -1.2, 2.0], dtype=np.float32)
    before = x.copy()
    g = numerical_gradient(lambda v: float(np.sum(v.astype(np.float64) ** 2)), x, eps=1e-3)
    # central differences are exact for a quadratic when divided by the step actually
    # taken in float32 (x + eps rounds); dividing by 2 * eps would be off by ~1e-5
    np.testing.assert_allclose(g, 2 * before.astype(np.float64), rtol=1e-6)
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="resolution"):
        numerical_gradient(lambda v: float(v.sum()), x, eps=1e-12)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array_affine_layer():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4))
    W = rng.standard_normal((4, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((3, 5))
    buf = np.empty((3, 5))

    def forward(v):  # returns the same buffer every call
        np.matmul(v, W, out=buf)
        np.add(buf, b, out=buf)
        return buf

    before = x.copy()
    dx = numerical_gradient_array(forward, x, dout)
    np.testing.assert_allclose(dx, dout @ W.T, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(x, before)
    dW = numerical_gradient_array(lambda w: x @ w + b, W, dout)
    np.testing.assert_allclose(dW, x.T @ dout, rtol=1e-7, atol=1e-9)
    db = numerical_gradient_array(lambda c: x @ W + c, b, dout)
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=1e-7, atol=1e-9)
    with pytest.raises(ValueError, match="df"):
        numerical_gradient_array(forward, x, dout[:, :2])
    np.testing.assert_array_equal(x, before)


def test_check_grad_values():
    x = np.linspace(0.3, 2.0, 6)  # gradient entries well away from 0
    assert check_grad(_f, _df, x) < 1e-7
    # scale one entry of the gradient by 1.01: its relative error is 0.01 / 1.01
    k = int(np.argmax(np.abs(_df(x))))

    def wrong(v):
        g = _df(v)
        g[k] *= 1.01
        return g

    assert check_grad(_f, wrong, x) == pytest.approx(0.01 / 1.01, rel=1e-4)
    assert check_grad(_f, lambda v: -_df(v), x) == pytest.approx(2.0, rel=1e-6)


def test_check_grad_zero_gradient_entries_use_floor():
    x = np.array([0.0, 1.0])
    f = lambda v: float(v[0] ** 2 + v[1] ** 3)  # noqa: E731
    grad = lambda v: np.array([2 * v[0], 3 * v[1] ** 2])  # noqa: E731
    # both gradients are exactly 0 in the first entry: 0 / floor, not 0 / 0
    assert check_grad(f, grad, x) < 1e-6


def test_check_grad_does_not_modify_x():
    x = np.random.default_rng(13).standard_normal((2, 3))
    before = x.copy()
    check_grad(_f, _df, x)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: check_grad(_f, _df, [1.0, 2.0]), TypeError, "x must be a numpy array"),
        (lambda: check_grad(_f, _df, np.arange(3)), TypeError, "floating"),
        (lambda: check_grad(_f, lambda v: np.zeros(2), np.ones(3)), ValueError, "grad"),
        (lambda: check_grad(_f, None, np.ones(3)), TypeError, "grad"),
        (lambda: check_grad(_f, _df, np.ones(3), eps=0.0), ValueError, "eps"),
        (lambda: numerical_gradient(lambda v: v, np.ones(3)), TypeError, r"f\(x\)"),
        (
            lambda: numerical_gradient_array(lambda v: v, np.ones(3), np.ones(3), eps=-1),
            ValueError,
            "eps",
        ),
        (lambda: numerical_gradient_array(lambda v: v, np.ones(3), ["a"] * 3), TypeError, "df"),
        (lambda: relative_error(np.ones(2), np.ones(3)), ValueError, "same shape"),
        (lambda: relative_error(np.ones(2), np.ones(2), floor=0), ValueError, "floor"),
    ],
)
def test_gradient_check_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_gradient_check_readonly_x():
    x = np.ones(3)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        numerical_gradient(_f, x)


def test_relative_error_values():
    assert relative_error([1.0, 0.0], [1.001, 0.0]) == pytest.approx(0.001 / 1.001)
    assert relative_error([2.0], [-2.0]) == 2.0
    assert relative_error([1e-12], [0.0]) == pytest.approx(1e-4)  # floor 1e-8
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert math.isnan(relative_error([np.nan], [1.0]))


# =============================================================================
# gradient clipping
# =============================================================================
def _ref_norm(arrays, p):
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    return float(np.linalg.norm(flat, ord=p)) if flat.size else 0.0


def test_clip_grad_norm_hand_example():
    g = [np.array([3.0]), np.array([4.0])]
    assert clip_grad_norm(g, max_norm=1.0) == 5.0
    np.testing.assert_allclose(np.concatenate(g), [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_against_numpy_reference(p, dtype):
    rng = np.random.default_rng(14)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,), (2, 2, 2)]]
    objs = [id(g) for g in grads]
    before = _snapshot(grads)
    ref = _ref_norm(before, p)
    max_norm = ref / 3
    norm = clip_grad_norm(grads, max_norm, norm_type=p)
    assert norm == pytest.approx(ref, rel=1e-12 if dtype == np.float64 else 1e-6)
    assert [id(g) for g in grads] == objs and all(g.dtype == dtype for g in grads)
    coef = max_norm / (ref + 1e-6)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * coef, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert _ref_norm(grads, p) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_no_clip_is_bitwise_noop():
    rng = np.random.default_rng(15)
    grads = [rng.standard_normal(10), rng.standard_normal((2, 3)).astype(np.float32)]
    before = _snapshot(grads)
    norm = clip_grad_norm(grads, max_norm=1e3)
    assert norm == pytest.approx(_ref_norm(before, 2))
    _assert_unchanged(grads, before)


def test_clip_grad_norm_large_and_noncontiguous_arrays():
    rng = np.random.default_rng(16)
    big = rng.standard_normal(200_003).astype(np.float32)  # several reduction chunks
    base = rng.standard_normal((6, 8))
    view = base[:, ::2]  # non-contiguous: scaled in place through the view
    ref = _ref_norm([big, view], 2)
    untouched = base[:, 1::2].copy()
    norm = clip_grad_norm([big, view], max_norm=1.0)
    assert norm == pytest.approx(ref, rel=1e-9)
    np.testing.assert_array_equal(base[:, 1::2], untouched)
    assert _ref_norm([big, base[:, ::2]], 2) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_single_array_and_empty():
    g = np.array([6.0, 8.0])
    assert clip_grad_norm(g, 5.0) == 10.0
    np.testing.assert_allclose(g, [3.0, 4.0], rtol=1e-6)
    assert clip_grad_norm([], 1.0) == 0.0
    assert total_norm([np.zeros((0, 3))], math.inf) == 0.0


def test_total_norm_and_clip_grads_with_norm_compose():
    rng = np.random.default_rng(17)
    a = [rng.standard_normal(7) for _ in range(3)]
    b = _snapshot(a)
    t = total_norm(a, 3.0)
    clip_grads_with_norm(a, 0.5, t)
    clip_grad_norm(b, 0.5, 3.0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_clip_grad_norm_nonfinite():
    g = [np.array([1.0, np.nan]), np.array([2.0])]
    assert math.isnan(clip_grad_norm(g, 1.0))
    assert np.all(np.isnan(g[0])) and np.all(np.isnan(g[1]))  # torch semantics
    g = [np.array([1.0, np.inf]), np.array([2.0])]
    assert clip_grad_norm(g, 1.0) == math.inf
    np.testing.assert_array_equal(g[1], [0.0])
    g = [np.array([1.0, np.inf]), np.array([2.0])]
    before = _snapshot(g)
    with pytest.raises(FloatingPointError, match="inf"):
        clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    _assert_unchanged(g, before)
    with pytest.raises(FloatingPointError, match="nan"):
        total_norm([np.array([np.nan])], math.inf, error_if_nonfinite=True)


def test_clip_grad_norm_validation_changes_nothing():
    ro = np.ones(3)
    ro.flags.writeable = False
    first = np.full(2, 10.0)
    with pytest.raises(ValueError, match=r"grads\[1\].*read-only"):
        clip_grad_norm([first, ro], 1.0)
    np.testing.assert_array_equal(first, 10.0)
    for call, exc, match in [
        (lambda: clip_grad_norm([np.ones(2, dtype=int)], 1.0), TypeError, r"grads\[0\]"),
        (lambda: clip_grad_norm([first, [1.0]], 1.0), TypeError, r"grads\[1\]"),
        (lambda: clip_grad_norm(first.tolist(), 1.0), TypeError, r"grads\[0\]"),
        (lambda: clip_grad_norm("g", 1.0), TypeError, "grads"),
        (lambda: clip_grad_norm([first], -1.0), ValueError, "max_norm"),
        (lambda: clip_grad_norm([first], np.nan), ValueError, "max_norm"),
        (lambda: clip_grad_norm([first], 1.0, norm_type=0), ValueError, "norm_type"),
        (lambda: clip_grad_norm([first], 1.0, norm_type="2"), TypeError, "norm_type"),
        (lambda: clip_grads_with_norm([first], 1.0, -2.0), ValueError, "total_norm"),
    ]:
        with pytest.raises(exc, match=match):
            call()
        np.testing.assert_array_equal(first, 10.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=8), min_size=1, max_size=4),
    st.floats(0.0, 100.0),
)
def test_clip_grad_norm_property(values, max_norm):
    grads = [np.array(v, dtype=np.float64) for v in values]
    before = _snapshot(grads)
    norm = clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(_ref_norm(before, 2), rel=1e-12, abs=1e-300)
    if norm + 1e-6 <= max_norm:
        _assert_unchanged(grads, before)
    else:  # same direction, norm max_norm * norm / (norm + 1e-6)
        coef = max_norm / (norm + 1e-6)
        for g, b in zip(grads, before):
            np.testing.assert_allclose(g, b * coef, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, math.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["clip", "noclip", "nan", "inf"])
def test_clip_grad_norm_matches_torch(p, dtype, case):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(18)
    grads = [rng.standard_normal(s).astype(dtype) for s in [(4, 3), (7,), (2, 5)]]
    if case == "nan":
        grads[1][2] = np.nan
    if case == "inf":
        grads[2][1, 1] = -np.inf
    max_norm = 1e4 if case == "noclip" else 0.7
    params = []
    for g in grads:
        t = torch.zeros(g.shape, dtype=torch.float32 if dtype == np.float32 else torch.float64,
                        requires_grad=True)
        t.grad = torch.from_numpy(g.copy())
        params.append(t)
    expected = float(torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=p))
    got = clip_grad_norm(grads, max_norm, norm_type=p)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=tol)
    for g, t in zip(grads, params):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=tol, atol=0, equal_nan=True)


# =============================================================================
# docstring examples
# =============================================================================
def test_docstring_examples():
    result = doctest.testmod(ftrain.search, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0
