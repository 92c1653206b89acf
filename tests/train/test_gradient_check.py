"""fastopt.train.gradient_check: numerical gradients, check_grad, relative_error."""

import math

import numpy as np
import pytest

from fastopt.train import (
    check_grad,
    numerical_gradient,
    numerical_gradient_array,
    relative_error,
)


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
    with pytest.raises(ValueError, match="^eps: expected a step above the resolution"):
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
    with pytest.raises(ValueError, match=r"^f\(x\): expected shape \(3, 2\) \(that of df\), got \(3, 5\)"):
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
        (lambda: check_grad(_f, _df, [1.0, 2.0]), TypeError, "^x: expected a numpy array"),
        (lambda: check_grad(_f, _df, np.arange(3)), TypeError, "^x: expected a floating"),
        (lambda: check_grad(_f, lambda v: np.zeros(2), np.ones(3)), ValueError,
         r"^grad\(x\): expected the shape of x"),
        (lambda: check_grad(_f, None, np.ones(3)), TypeError, "^grad: expected a callable"),
        (lambda: check_grad(_f, _df, np.ones(3), eps=0.0), ValueError, r"^eps: expected a value in \(0, inf\)"),
        (lambda: check_grad(_f, _df, np.ones(3), eps=np.inf), ValueError, "^eps: expected a finite"),
        (lambda: numerical_gradient(lambda v: v, np.ones(3)), TypeError, r"^f\(x\): expected a real"),
        (
            lambda: numerical_gradient_array(lambda v: v, np.ones(3), np.ones(3), eps=-1),
            ValueError,
            "^eps: ",
        ),
        (lambda: numerical_gradient_array(lambda v: v, np.ones(3), ["a"] * 3), TypeError,
         "^df: expected real values"),
        (lambda: relative_error(np.ones(2), np.ones(3)), ValueError, "^b: expected the shape of a"),
        (lambda: relative_error(np.ones(2), np.ones(2), floor=0), ValueError, "^floor: expected"),
    ],
)
def test_gradient_check_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_gradient_check_readonly_x():
    x = np.ones(3)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="^x: expected a writeable array"):
        numerical_gradient(_f, x)


def test_relative_error_values():
    assert relative_error([1.0, 0.0], [1.001, 0.0]) == pytest.approx(0.001 / 1.001)
    assert relative_error([2.0], [-2.0]) == 2.0
    assert relative_error([1e-12], [0.0]) == pytest.approx(1e-4)  # floor 1e-8
    assert relative_error(np.zeros(0), np.zeros(0)) == 0.0
    assert math.isnan(relative_error([np.nan], [1.0]))
