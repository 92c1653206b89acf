"""fastopt.train.early_stopping: EarlyStopping."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.train import EarlyStopping


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
        with pytest.raises(exc, match=r"^params(\[1\])?: expected "):
            es.restore(params)
        np.testing.assert_array_equal(params[0], 0.0)  # first array not written


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"patience": 0}, ValueError, r"^patience: expected an int in \[1, inf\), got 0"),
        ({"patience": 1.5}, TypeError, "^patience: expected an int, got 1.5"),
        ({"patience": True}, TypeError, "^patience: expected an int, got True"),
        ({"patience": 2, "mode": "avg"}, ValueError, "^mode: expected one of 'min', 'max'"),
        ({"patience": 2, "min_delta": -0.1}, ValueError, r"^min_delta: expected a value in \[0"),
        ({"patience": 2, "min_delta": np.inf}, ValueError, "^min_delta: expected a finite"),
        ({"patience": 2, "min_delta": "0"}, TypeError, "^min_delta: expected a real number"),
        ({"patience": 2, "restore_best": 1}, TypeError, "^restore_best: expected True or False"),
    ],
)
def test_es_bad_constructor_args(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        EarlyStopping(**kwargs)


def test_es_integral_floats_and_0d_arrays_count_as_their_value():
    """The package-wide rules (fastopt._validation): 1.0 is the int 1, np.array(x) is x."""
    es = EarlyStopping(patience=2.0, min_delta=np.array(0.5), mode=np.str_("max"))
    assert es.patience == 2 and type(es.patience) is int
    assert es.min_delta == 0.5 and type(es.min_delta) is float
    assert _run_es(es, [1.0, 1.2, np.array(1.4)]) == 2  # neither beats 1.0 by more than 0.5


def test_es_bad_update_args_change_nothing():
    es = EarlyStopping(patience=2)
    es.update(1.0)
    before = es.state_dict()
    with pytest.raises(TypeError, match="^metric: expected a real number, got '0.5'"):
        es.update("0.5")
    with pytest.raises(TypeError, match="^metric: expected a real number, got an array"):
        es.update(np.array([0.5]))
    with pytest.raises(TypeError, match=r"^params\[0\]: expected a numpy array"):
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
    with pytest.raises(ValueError, match=r"^state_dict: expected the keys \['num_steps'\]"):
        es.load_state_dict(sd)
    for key, value, exc, match in [
        ("mode", "avg", ValueError, "^mode: expected one of"),
        ("best_score", np.nan, ValueError, r"^state_dict\['best_score'\]: expected a real"),
        ("num_steps", 1.5, TypeError, r"^state_dict\['num_steps'\]: expected an int"),
        ("best_step", -1, ValueError, r"^state_dict\['best_step'\]: expected an int in"),
    ]:
        sd = es.state_dict()
        sd[key] = value
        with pytest.raises(exc, match=match):
            es.load_state_dict(sd)
    with pytest.raises(TypeError, match="^state_dict: expected a mapping, got 3"):
        es.load_state_dict(3)
    assert es.mode == "min" and es.num_steps == 0


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
