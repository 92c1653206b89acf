"""Optimizer.rebind (step other arrays, state kept) and the warning when a container given
to an optimizer has entries replaced without it (issue 15)."""

import copy
import pickle
import warnings

import numpy as np
import pytest

import fastopt
from fastopt import StaleParamsWarning

CLASSES = [fastopt.SGD, fastopt.Adam, fastopt.AdamW, fastopt.Adagrad, fastopt.RMSprop,
           fastopt.Adadelta, fastopt.NAdam, fastopt.Lion]


def _grads(k, shapes, dtype=np.float64):
    rng = np.random.default_rng(100 + k)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _snapshot(opt):
    return {i: {k: np.array(v, copy=True) for k, v in e.items()} for i, e in opt.state.items()}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_rebind_keeps_state_and_steps_the_new_arrays(cls):
    """Rebinding to copies mid-run gives the run that never rebound."""
    shapes = [(3, 4), (5,)]
    options = dict(lr=0.05, momentum=0.9) if cls is fastopt.SGD else dict(lr=0.05)
    ref = [np.linspace(-1, 1, np.prod(s)).reshape(s) for s in shapes]
    mine = [p.copy() for p in ref]
    ref_opt, opt = cls(ref, **options), cls(mine, **options)
    for k in range(3):
        ref_opt.step(_grads(k, shapes))
        opt.step(_grads(k, shapes))
    fresh = [p.copy() for p in mine]
    old = [p.copy() for p in mine]
    opt.rebind(fresh)
    for k in range(3, 6):
        ref_opt.step(_grads(k, shapes))
        opt.step(_grads(k, shapes))
    for p, q in zip(fresh, ref):
        np.testing.assert_array_equal(p, q)
    for p, q in zip(mine, old):  # the old arrays are no longer touched
        np.testing.assert_array_equal(p, q)
    assert opt.param_groups[0]["params"][0] is fresh[0]
    for i in ref_opt.state:
        for name, value in ref_opt.state[i].items():
            np.testing.assert_array_equal(opt.state[i][name], value)


def test_rebind_spans_param_groups_in_flattened_order():
    a, b, c = np.ones(2), np.ones(3), np.ones(4)
    opt = fastopt.Adam([{"params": [a]}, {"params": [b, c], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(2), np.ones(3), np.ones(4)])
    new = [a.copy(), b.copy(), c.copy()]
    opt.rebind(new)
    assert opt.param_groups[0]["params"] == [new[0]]
    assert [p is q for p, q in zip(opt.param_groups[1]["params"], new[1:])] == [True, True]
    assert opt.param_groups[1]["lr"] == 0.5
    opt.step([np.ones(2), np.ones(3), np.ones(4)])
    assert new[1][0] < b[0]


def test_rebind_accepts_dict_values_and_unchanged_entries():
    params = {"W": np.ones((2, 2)), "b": np.zeros(2)}
    opt = fastopt.SGD(params.values(), lr=0.1)
    params["W"] = params["W"] + 1.0
    opt.rebind(params.values())
    opt.step([np.ones((2, 2)), np.ones(2)])
    np.testing.assert_allclose(params["W"], 1.9)
    np.testing.assert_allclose(params["b"], -0.1)


@pytest.mark.parametrize("bad, error, match", [
    (lambda ps: ps[:1], ValueError, r"params: expected 2 arrays"),
    (lambda ps: [np.ones(3), ps[1]], ValueError, r"params\[0\]: expected an array of shape \(2, 2\)"),
    (lambda ps: [ps[0].astype(np.float32), ps[1]], ValueError, r"dtype float64"),
    (lambda ps: [np.ones((2, 2), dtype=np.float16), ps[1]], TypeError, r"params\[0\]"),
    (lambda ps: [np.ones((2, 4))[:, :2], ps[1]], ValueError, r"params\[0\]: expected a C-contig"),
    (lambda ps: [ps[0], ps[0].ravel()[:2]], ValueError, r"params\[1\]: shares memory with params\[0\]"),
    (lambda ps: ps[0], TypeError, r"a single array"),
    (lambda ps: {"W": ps[0], "b": ps[1]}, TypeError, r"got a dict"),
    (lambda ps: 3, TypeError, r"params: expected a list of arrays"),
    (lambda ps: [ps[0], None], TypeError, r"params\[1\]"),
])
def test_bad_rebind_raises_and_changes_nothing(bad, error, match):
    ps = [np.ones((2, 2)), np.zeros(2)]
    opt = fastopt.Adam(ps, lr=0.1)
    opt.step([np.ones((2, 2)), np.ones(2)])
    before, groups = _snapshot(opt), [list(g["params"]) for g in opt.param_groups]
    with pytest.raises(error, match=match):
        opt.rebind(bad(ps))
    assert [list(g["params"]) for g in opt.param_groups] == groups
    after = _snapshot(opt)
    for i in before:
        for k in before[i]:
            np.testing.assert_array_equal(after[i][k], before[i][k])


def test_rebind_to_a_state_array_is_refused():
    ps = [np.ones(4)]
    opt = fastopt.Adam(ps, lr=0.1)
    opt.step([np.ones(4)])
    with pytest.raises(ValueError, match=r"params\[0\]: shares memory with state\[0\]\['exp_avg'\]"):
        opt.rebind([opt.state[0]["exp_avg"]])
    assert opt.param_groups[0]["params"][0] is ps[0]


# -- the stale-array mistake ------------------------------------------------------------------

def _stale_warnings(opt, grads):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt.step(grads)
    return [w for w in caught if issubclass(w.category, StaleParamsWarning)]


@pytest.mark.parametrize("container", ["list", "dict.values", "group list"])
def test_replacing_an_entry_warns_once_pointing_to_rebind(container):
    params = {"W": np.ones(3), "b": np.ones(2)}
    if container == "list":
        given = list(params.values())
        opt = fastopt.Adam(given, lr=0.1)
        given[1] = np.zeros(2)
    elif container == "dict.values":
        opt = fastopt.Adam(params.values(), lr=0.1)
        params["b"] = np.zeros(2)
    else:
        given = list(params.values())
        opt = fastopt.Adam([{"params": given}], lr=0.1)
        given[1] = np.zeros(2)
    grads = [np.ones(3), np.ones(2)]
    caught = _stale_warnings(opt, grads)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "positions [1]" in message and "opt.rebind(params)" in message
    assert caught[0].filename == __file__  # points at the caller of step()
    assert _stale_warnings(opt, grads) == []  # once per container


def test_warning_can_be_made_an_error_and_nothing_is_stepped():
    given = [np.ones(3)]
    opt = fastopt.SGD(given, lr=0.1)
    old = given[0]
    given[0] = np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleParamsWarning)
        with pytest.raises(StaleParamsWarning):
            opt.step([np.ones(3)])
    np.testing.assert_array_equal(old, 1.0)


@pytest.mark.parametrize("change", ["in place", "append", "truncate", "not an array",
                                    "rebind", "tuple"])
def test_no_warning_without_a_replaced_array(change):
    given = [np.ones(3), np.ones(2)]
    opt = fastopt.SGD(tuple(given) if change == "tuple" else given, lr=0.1)
    if change == "in place":
        given[0][...] = 5.0
    elif change == "append":
        given.append(np.ones(4))
    elif change == "truncate":
        del given[1:]
    elif change == "not an array":
        given[1] = None
    elif change == "rebind":
        given[1] = np.zeros(2)
        opt.rebind(given)
    else:
        given[1] = np.zeros(2)  # a tuple was given: the list is not the optimizer's
    assert _stale_warnings(opt, [np.ones(3), np.ones(2)]) == []


def test_rebind_watches_the_new_container():
    opt = fastopt.SGD([np.ones(2)], lr=0.1)
    mine = [np.ones(2)]
    opt.rebind(mine)
    mine[0] = np.zeros(2)
    assert len(_stale_warnings(opt, [np.ones(2)])) == 1


def test_pickled_and_copied_optimizers_do_not_watch_the_original_container():
    given = [np.ones(2)]
    opt = fastopt.SGD(given, lr=0.1)
    clones = [pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)]
    given[0] = np.zeros(2)
    for clone in clones:
        assert _stale_warnings(clone, [np.ones(2)]) == []
    assert len(_stale_warnings(opt, [np.ones(2)])) == 1


def test_a_dict_of_arrays_as_params_is_a_clear_error():
    with pytest.raises(TypeError, match=r"got a dict; pass params.values\(\)"):
        fastopt.Adam({"W": np.ones(2)}, lr=0.1)


def test_editing_param_groups_directly_is_not_a_stale_container():
    p = np.zeros(3)
    given = [p]
    opt = fastopt.SGD(given, lr=1.0)
    q = np.zeros(3)
    opt.param_groups[0]["params"][0] = q  # the optimizer's own list: followed, no warning
    assert _stale_warnings(opt, [np.ones(3)]) == []
    given[0] = q  # the container catches up with the optimizer: still nothing stale
    assert _stale_warnings(opt, [np.ones(3)]) == []
    given[0] = np.zeros(3)
    assert len(_stale_warnings(opt, [np.ones(3)])) == 1
