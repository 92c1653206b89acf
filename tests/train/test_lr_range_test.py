"""fastopt.train.lr_range_test: lr_finder and LRFinderResult."""

import math

import numpy as np
import pytest

from fastopt.train import lr_finder


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
        ({"lrs": [1e-3, 1e-2], "start_lr": 1e-4}, ValueError, "^lrs: expected either lrs"),
        ({"lrs": [1e-2, 1e-3]}, ValueError, "^lrs: expected strictly increasing"),
        ({"lrs": [0.0, 1e-3]}, ValueError, "^lrs: expected finite values > 0"),
        ({"lrs": [1e-3]}, ValueError, "^lrs: expected a 1-d sequence of at least 2"),
        ({"lrs": ["a", "b"]}, TypeError, "^lrs: expected real numbers"),
        ({"start_lr": 1.0, "end_lr": 0.1}, ValueError, r"^end_lr: expected a value in \(1, inf\)"),
        ({"start_lr": -1.0}, ValueError, r"^start_lr: expected a value in \(0, inf\)"),
        ({"start_lr": np.inf}, ValueError, "^start_lr: expected a finite number"),
        ({"num": 1}, ValueError, r"^num: expected an int in \[2, inf\)"),
        ({"num": 2.5}, TypeError, "^num: expected an int"),
        ({"smooth": 1.0}, ValueError, r"^smooth: expected a value in \[0, 1\)"),
        ({"diverge_factor": 1.0}, ValueError, r"^diverge_factor: expected a value in \(1, inf\)"),
        ({"skip_start": -1}, ValueError, "^skip_start: expected an int"),
    ],
)
def test_lr_finder_validation(kwargs, exc, match):
    calls = []
    with pytest.raises(exc, match=match):
        lr_finder(lambda lr: calls.append(lr) or 1.0, **kwargs)
    assert calls == []  # nothing trained


def test_lr_finder_step_fn_errors():
    with pytest.raises(TypeError, match="^step_fn: expected a callable"):
        lr_finder(None)
    with pytest.raises(TypeError, match=r"^step_fn\(lr\): expected a real number, got '1.0'"):
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
