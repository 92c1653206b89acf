"""The non-finite policy, for every optimizer class.

By default NaN/Inf in a gradient propagate exactly as the update formula says, element by
element (other elements are untouched by them). With ``step(grads,
skip_if_nonfinite=True)`` a NaN/Inf anywhere in any gradient skips the whole step: it
returns False and changes nothing (no parameter, no state, no step count), and the next
step is as if the skipped one never happened.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fastopt_testing.fuzz_harness import Snapshot, _assert_close, native_copy, state_bytes
from fastopt_testing.fuzz_specs import OPTIMIZERS

OPTIMIZER = {s.name: s for s in OPTIMIZERS}
BAD = [np.nan, np.inf, -np.inf]


def _has_skip(spec):
    return "skip_if_nonfinite" in inspect.signature(spec.cls.step).parameters


@pytest.fixture(params=list(OPTIMIZER))
def spec_with_skip(request):
    """Each optimizer's spec, for the skip_if_nonfinite tests (skipped where step() lacks
    the option)."""
    spec = OPTIMIZER[request.param]
    if not _has_skip(spec):
        pytest.skip("this optimizer has no skip_if_nonfinite")
    return spec


def _setup(spec, seed=0):
    rng = np.random.default_rng(seed)
    groups = [[rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal(7)],
              [rng.standard_normal(6).astype(np.float32)]]
    opt = spec.cls([{"params": groups[0]}, {"params": groups[1], "lr": 0.01}],
                   **spec.example)
    ref = spec.reference([([p.copy() for p in groups[0]], spec.with_defaults(spec.example)),
                          ([p.copy() for p in groups[1]],
                           spec.with_defaults({**spec.example, "lr": 0.01}))])
    flat = [p for g in groups for p in g]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in flat] for _ in range(4)]
    return opt, ref, flat, grads


def _ref_flat(ref):
    return [p for ps, _ in ref.groups for p in ps]


@pytest.mark.parametrize("name", list(OPTIMIZER))
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_nonfinite_gradients_propagate_element_by_element(name, bad):
    spec = OPTIMIZER[name]
    opt, ref, flat, grads = _setup(spec)
    clean, _, clean_flat, _ = _setup(spec)
    opt.step(grads[0])
    ref.step(grads[0])
    clean.step(grads[0])
    poisoned = [g.copy() for g in grads[1]]
    poisoned[0][1, 2] = bad
    assert opt.step(poisoned) is True
    ref.step(poisoned)
    clean.step(grads[1])
    for i, (p, r) in enumerate(zip(flat, _ref_flat(ref))):
        _assert_close(p, r, spec, f"{name}: param {i}")
    # the poisoned element follows the formula (it is not finite for these optimizers
    # unless lr is 0); every other element is bitwise what a clean step gives
    mask = np.ones(flat[0].shape, bool)
    mask[1, 2] = False
    assert flat[0][mask].tobytes() == clean_flat[0][mask].tobytes()
    for p, c in zip(flat[1:], clean_flat[1:]):
        assert p.tobytes() == c.tobytes()


@pytest.mark.parametrize("where", ["first", "last group", "strided grad", "after None"])
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf", "-inf"])
def test_skip_if_nonfinite_skips_the_whole_step(spec_with_skip, where, bad):
    spec = spec_with_skip
    opt, ref, flat, grads = _setup(spec)
    assert opt.step(grads[0], skip_if_nonfinite=True) is True
    ref.step(grads[0])
    g = [x.copy() for x in grads[1]]
    if where == "first":
        g[0][0, 0] = bad
    elif where == "last group":
        g[-1][-1] = bad
    elif where == "strided grad":
        big = np.repeat(g[1], 2)
        big[4] = bad
        g[1] = big[::2]  # a non-contiguous view holding the bad value
    else:
        g[0] = None
        g[2][3] = bad
    before, state = Snapshot(flat), state_bytes(opt)
    inputs = Snapshot([x for x in g if x is not None])
    assert opt.step(g, skip_if_nonfinite=True) is False
    assert before.unchanged(), "a skipped step changed a parameter"
    assert state_bytes(opt) == state, "a skipped step changed the state or a step count"
    assert inputs.unchanged()
    # the next step is as if the skipped one never happened
    assert opt.step(grads[2], skip_if_nonfinite=True) is True
    ref.step(grads[2])
    for i, (p, r) in enumerate(zip(flat, _ref_flat(ref))):
        _assert_close(p, r, spec, f"{spec.name}: param {i} after a skipped step")


def test_skip_if_nonfinite_with_finite_grads_is_a_normal_step(spec_with_skip):
    a, _, fa, grads = _setup(spec_with_skip)
    b, _, fb, _ = _setup(spec_with_skip)
    for g in grads:
        assert a.step(g, skip_if_nonfinite=True) is True
        assert b.step([native_copy(x) for x in g]) is True
    for x, y in zip(fa + [np.asarray(v) for i in sorted(a.state)
                          for _, v in sorted(a.state[i].items())],
                    fb + [np.asarray(v) for i in sorted(b.state)
                          for _, v in sorted(b.state[i].items())]):
        assert x.tobytes() == y.tobytes()


def test_nonfinite_params_are_not_a_reason_to_skip(spec_with_skip):
    """The check is on the gradients; a NaN parameter just propagates."""
    opt, _, flat, grads = _setup(spec_with_skip)
    flat[1][0] = np.nan
    assert opt.step(grads[0], skip_if_nonfinite=True) is True
    assert np.isnan(flat[1][0]) and np.isfinite(flat[1][1:]).all()


@pytest.mark.parametrize("flag", [1, "yes", None, np.array([True])])
def test_skip_if_nonfinite_must_be_a_bool(spec_with_skip, flag):
    opt, _, flat, grads = _setup(spec_with_skip)
    before, state = Snapshot(flat), state_bytes(opt)
    with pytest.raises(TypeError, match="^skip_if_nonfinite"):
        opt.step(grads[0], skip_if_nonfinite=flag)
    assert before.unchanged() and state_bytes(opt) == state
