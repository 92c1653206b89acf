"""A real client of scipy.optimize.minimize: scikit-learn's lbfgs solvers run through
fastopt.minimize (scikit-learn calls ``minimize(..., method="L-BFGS-B", jac=True,
options={...})`` without bounds; the patch swaps that one function).

fastopt's L-BFGS on scipy's L-BFGS-B defaults follows the same algorithm as scipy's
unbounded L-BFGS-B (first step 1/||g||, Moré–Thuente with the same constants, m = 10,
gamma scaling); the iterates differ only by rounding (two-loop recursion here, compact
form there). Measured: logistic regression's coefficients agree to 5e-16, MLP's to 1e-12
after 80 iterations; beyond that the MLP's non-convex loss amplifies rounding (1e-3 after
200 iterations), so converged MLPs are compared on what the stopping rule fixes: the loss.
"""
import warnings

import numpy as np
import pytest
import scipy.optimize

import fastopt

pytest.importorskip("sklearn")
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402


@pytest.fixture
def through_fastopt(monkeypatch):
    """Patch scipy.optimize.minimize (the name both estimators read at call time) to
    fastopt.minimize; records the calls."""
    calls = []

    def minimize(*args, **kwargs):
        calls.append(kwargs)
        return fastopt.minimize(*args, **kwargs)

    def fit(make):
        with monkeypatch.context() as m:
            m.setattr(scipy.optimize, "minimize", minimize)
            with warnings.catch_warnings(record=True) as rec:
                warnings.simplefilter("always")
                est = make()
        return est, [w for w in rec if issubclass(w.category, ConvergenceWarning)]
    fit.calls = calls
    return fit


def _fit_scipy(make):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = make()
    return est, [w for w in rec if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("C,tol", [(1.0, 1e-4), (0.5, 1e-8)])
def test_logistic_regression_same_coefficients(through_fastopt, n_classes, C, tol):
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5,
                               n_classes=n_classes, random_state=n_classes)

    def make():
        return LogisticRegression(C=C, tol=tol).fit(X, y)
    ours, warned = through_fastopt(make)
    ref, ref_warned = _fit_scipy(make)
    assert len(through_fastopt.calls) == 1
    call = through_fastopt.calls[0]
    assert call["method"] == "L-BFGS-B" and call.get("bounds") is None   # no bounds passed
    assert not warned and not ref_warned
    # convex and the same iterates up to rounding (measured <= 5e-16): 1e-10 is rounding's
    # room, far below any algorithmic difference
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=0, atol=1e-10)
    assert np.array_equal(ours.n_iter_, ref.n_iter_)


def test_mlp_follows_scipys_path(through_fastopt):
    # 60 iterations: the stop is the iteration limit for both, and both warn alike
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)

    def make():
        return MLPClassifier(solver="lbfgs", hidden_layer_sizes=(4,), alpha=1.0,
                             max_iter=60, random_state=0).fit(X, y)
    ours, warned = through_fastopt(make)
    ref, ref_warned = _fit_scipy(make)
    assert through_fastopt.calls[0]["method"] == "L-BFGS-B"
    assert len(warned) == len(ref_warned) == 1       # max_iter reached: a true warning
    assert ours.n_iter_ == ref.n_iter_ == 60
    # rounding only (measured 1e-13 at 60 iterations, growing ~10x per 40)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_converged_mlp_gives_no_convergence_warning(through_fastopt):
    # scipy's L-BFGS-B stops this run on ftol (status 0, no warning); fastopt used to
    # report ftol convergence as status 5, which scikit-learn warned about
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)

    def make():
        return MLPClassifier(solver="lbfgs", hidden_layer_sizes=(5,), alpha=1e-2,
                             tol=1e-10, max_iter=3000, random_state=0).fit(X, y)
    ours, warned = through_fastopt(make)
    ref, ref_warned = _fit_scipy(make)
    assert not warned and not ref_warned
    assert ours.n_iter_ < 3000
    # non-convex: the paths part after ~100 iterations (rounding), the ftol stop fixes
    # the loss to ~1e-9 relative per iteration; the two ends agree to 1e-3
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-3)
    assert np.mean(ours.predict(X) == ref.predict(X)) >= 0.98
