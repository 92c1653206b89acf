"""fastopt.train.clipping: total_norm, clip_grads_with_norm, clip_grad_norm."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastopt.train import clip_grad_norm, clip_grads_with_norm, total_norm


def _snapshot(arrays):
    return [a.copy() for a in arrays]


def _assert_unchanged(arrays, snapshot):
    for a, s in zip(arrays, snapshot):
        np.testing.assert_array_equal(a, s)


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
    with pytest.raises(ValueError, match=r"^grads\[1\]: expected a writeable array.*read-only"):
        clip_grad_norm([first, ro], 1.0)
    np.testing.assert_array_equal(first, 10.0)
    for call, exc, match in [
        (lambda: clip_grad_norm([np.ones(2, dtype=int)], 1.0), TypeError,
         r"^grads\[0\]: expected a floating dtype"),
        (lambda: clip_grad_norm([first, [1.0]], 1.0), TypeError, r"^grads\[1\]: expected a numpy"),
        (lambda: clip_grad_norm(first.tolist(), 1.0), TypeError, r"^grads\[0\]: expected a numpy"),
        (lambda: clip_grad_norm("g", 1.0), TypeError, "^grads: expected a numpy array or a list"),
        (lambda: clip_grad_norm([first], -1.0), ValueError, r"^max_norm: expected a value in \[0"),
        (lambda: clip_grad_norm([first], np.nan), ValueError, "^max_norm: expected a real number"),
        (lambda: clip_grad_norm([first], 1.0, norm_type=0), ValueError,
         r"^norm_type: expected a value in \(0, inf\)"),
        (lambda: clip_grad_norm([first], 1.0, norm_type="2"), TypeError, "^norm_type: expected a real"),
        (lambda: clip_grad_norm([first], 1.0, error_if_nonfinite=0), TypeError,
         "^error_if_nonfinite: expected True or False"),
        (lambda: clip_grads_with_norm([first], 1.0, -2.0), ValueError, r"^total_norm: expected a value in \[0"),
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
