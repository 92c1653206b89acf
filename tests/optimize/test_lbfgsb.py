"""fastopt's L-BFGS-B (fastopt.optimize.lbfgsb) against scipy's, and its parts.

The solver follows scipy's algorithm step for step (Cauchy point, subspace step, line
search constants, stopping tests), so on the small problems here it must reach scipy's
solution with no more evaluations than scipy (plus a small slack where rounding takes
another path); both dtypes; bounds parsing and errors; ``hess_inv``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastopt.optimize.bounded_problems import (
    box_around,
    boxed_problem,
    logistic_problem,
    nnls_problem,
)
from fastopt.optimize.bounds import clip_x0, parse_bounds
from fastopt.optimize.lbfgsb import minimize_lbfgsb
from fastopt.optimize.problems import PROBLEMS
from fastopt_testing.scipy_messages import lbfgsb_message

so = pytest.importorskip("scipy.optimize")


def _unconstrained_minimiser(name, n):
    p = PROBLEMS[name]
    with np.errstate(all="ignore"):
        return minimize_lbfgsb(p.fg, p.x0(p.admissible_n(n))).x


# ---------------------------------------------------------------- bounds parsing

class _DuckBounds:
    def __init__(self, lb, ub):
        self.lb, self.ub = lb, ub


def test_parse_pairs_and_none():
    lo, hi = parse_bounds([(0, None), (None, 2.5), (None, None), (-np.inf, np.inf)], 4)
    np.testing.assert_array_equal(lo, [0, -np.inf, -np.inf, -np.inf])
    np.testing.assert_array_equal(hi, [np.inf, 2.5, np.inf, np.inf])
    assert parse_bounds(None, 3) is None
    assert parse_bounds([(None, None)] * 3, 3) is None


def test_parse_bounds_object_broadcasts():
    lo, hi = parse_bounds(_DuckBounds(0.0, [1, 2, 3]), 3, np.float32)
    assert lo.dtype == np.float32 and hi.dtype == np.float32
    np.testing.assert_array_equal(lo, [0, 0, 0])
    np.testing.assert_array_equal(hi, [1, 2, 3])
    lo, hi = parse_bounds(so.Bounds([-1, -2], np.inf), 2)
    np.testing.assert_array_equal(lo, [-1, -2])


@pytest.mark.parametrize("bounds, n, exc, text", [
    ([(0, 1)], 2, ValueError, "expected 2 (lo, hi) pairs"),
    ([(2, 1), (0, 1)], 2, ValueError, "lower <= upper"),
    ([(np.nan, 1), (0, 1)], 2, ValueError, "NaN"),
    ([(0, 1, 2), (0, 1)], 2, ValueError, "bounds[0]: expected a (lo, hi) pair"),
    (_DuckBounds([0, 1, 2], 5), 2, ValueError, "expected a scalar or 2 values"),
    (_DuckBounds("a", 5), 2, TypeError, "bounds.lb: expected real numbers"),
    (3.0, 2, TypeError, "bounds: expected a scipy.optimize.Bounds"),
    ([(np.inf, np.inf), (0, 1)], 2, ValueError, "finite point inside"),
])
def test_parse_bounds_errors(bounds, n, exc, text):
    with pytest.raises(exc) as info:
        parse_bounds(bounds, n)
    assert text in str(info.value)


def test_x0_outside_is_clipped_like_scipy():
    x0 = np.array([-5.0, 0.5, 9.0])
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(clip_x0(x0.copy(), lo, hi), [0.0, 0.5, 1.0])
    seen = []

    def fg(x):
        seen.append(x.copy())
        return float(((x - 0.3) ** 2).sum()), 2 * (x - 0.3)

    res = minimize_lbfgsb(fg, x0, lo, hi)
    np.testing.assert_array_equal(seen[0], [0.0, 0.5, 1.0])
    assert all(np.all((s >= lo) & (s <= hi)) for s in seen)
    np.testing.assert_allclose(res.x, 0.3, atol=1e-8)


# ---------------------------------------------------------------- against scipy

def _both(bp, **opts):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = so.minimize(bp.fg, bp.x0, jac=True, method="L-BFGS-B", bounds=bp.bounds(),
                         options=opts)
        r2 = minimize_lbfgsb(bp.fg, bp.x0, bp.lower, bp.upper, **opts)
    return r1, r2


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_boxed_collection_matches_scipy(name):
    """Every problem of the collection at n = 10 with a box cutting off its minimiser:
    scipy's status, value within 1e-6 relative, evaluations within 10% (+2)."""
    bp = boxed_problem(name, 10, _unconstrained_minimiser(name, 10))
    r1, r2 = _both(bp)
    assert r2.status == r1.status == 0
    assert abs(r2.fun - r1.fun) <= 1e-6 * max(1.0, abs(r1.fun))
    assert r2.nfev <= 1.1 * r1.nfev + 2
    assert np.all(r2.x >= bp.lower) and np.all(r2.x <= bp.upper)


def test_box_cuts_off_the_minimiser():
    name = "ext_rosenbrock"
    xs = _unconstrained_minimiser(name, 10)
    bp = boxed_problem(name, 10, xs)
    assert not np.all((xs >= bp.lower) & (xs <= bp.upper))
    kinds = {(np.isfinite(a), np.isfinite(b)) for a, b in zip(bp.lower, bp.upper)}
    assert kinds == {(True, True), (True, False), (False, True), (False, False)} or \
        len(kinds) >= 3


def test_nnls_matches_scipy_nnls():
    bp = nnls_problem(60, 30, seed=1)
    res = minimize_lbfgsb(bp.fg, bp.x0, bp.lower, bp.upper, gtol=1e-10, ftol=0.0)
    x_ref, _ = so.nnls(bp.fg.A, bp.fg.b)
    assert res.status == 0
    np.testing.assert_allclose(res.x, x_ref, atol=1e-6)
    assert 5 < np.count_nonzero(res.x == 0) < 25


def test_logistic_bounded_matches_scipy():
    bp = logistic_problem(300, 20, seed=2)
    r1, r2 = _both(bp)
    assert r1.status == r2.status == 0
    assert abs(r1.fun - r2.fun) <= 1e-7
    np.testing.assert_allclose(r2.x, r1.x, atol=1e-3)
    assert np.count_nonzero(np.abs(r2.x) == 0.5) >= 2
    assert r2.nfev <= r1.nfev + 2


def test_float32_solves_a_boxed_problem():
    name = "ext_rosenbrock"
    bp = boxed_problem(name, 10, _unconstrained_minimiser(name, 10))
    r64 = minimize_lbfgsb(bp.fg, bp.x0, bp.lower, bp.upper)
    r32 = minimize_lbfgsb(bp.fg, bp.x0.astype(np.float32), bp.lower, bp.upper, gtol=1e-3)
    assert r32.x.dtype == np.float32
    assert r32.status == 0
    np.testing.assert_allclose(r32.x, r64.x, atol=2e-3)
    assert np.all(r32.x >= bp.lower.astype(np.float32))
    assert np.all(r32.x <= bp.upper.astype(np.float32))


def test_unconstrained_is_scipy_lbfgsb_without_bounds():
    r1 = so.minimize(so.rosen, [-1.2, 1.0], jac=so.rosen_der, method="L-BFGS-B")
    r2 = minimize_lbfgsb(lambda x: (so.rosen(x), so.rosen_der(x)), np.array([-1.2, 1.0]))
    assert (r1.nit, r1.nfev, r1.status) == (r2.nit, r2.nfev, r2.status)
    np.testing.assert_allclose(r2.x, r1.x, rtol=1e-10)
    assert r2.message == r1.message


# ---------------------------------------------------------------- statuses

def _quad(x):
    return float(((x - 3.0) ** 2).sum()), 2.0 * (x - 3.0)


def test_status_gtol_at_start_is_zero_iterations():
    res = minimize_lbfgsb(_quad, np.full(3, 3.0))
    assert (res.status, res.nit, res.nfev, res.reason) == (0, 0, 1, "gtol")
    assert res.message == lbfgsb_message("gtol")


def test_status_gtol_at_an_active_bound():
    # the minimiser 3 lies outside: the projected gradient is 0 at the bound 1
    res = minimize_lbfgsb(_quad, np.zeros(3), np.zeros(3), np.ones(3))
    assert res.status == 0 and res.success
    np.testing.assert_array_equal(res.x, 1.0)


def test_status_maxiter_and_maxfun():
    fg = lambda x: (so.rosen(x), so.rosen_der(x))    # noqa: E731
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    r = minimize_lbfgsb(fg, x0, maxiter=3)
    s = so.minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxiter": 3})
    assert (r.status, r.nit, r.reason) == (1, 3, "maxiter")
    assert r.message == s.message and r.nfev == s.nfev
    r = minimize_lbfgsb(fg, x0, maxfun=5)
    s = so.minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxfun": 5})
    assert (r.status, r.reason) == (1, "maxfun")
    assert r.message == s.message and (r.nfev, r.nit) == (s.nfev, s.nit)


def test_status_line_search_failure_is_2():
    def wrong(x):          # one gradient component of the wrong sign: no step decreases f
        return float((x ** 2).sum()), np.array([2.0 * x[0], -2.0 * x[1]])
    res = minimize_lbfgsb(wrong, np.array([1.0, 2.0]))
    ref = so.minimize(wrong, [1.0, 2.0], jac=True, method="L-BFGS-B")
    assert res.status == ref.status == 2 and not res.success
    assert res.message.startswith("ABNORMAL")
    assert res.reason == "linesearch"
    assert res.nfev <= ref.nfev
    np.testing.assert_array_equal(res.x, [1.0, 2.0])


def test_callback_and_stop_iteration():
    seen = []

    def cb(intermediate_result):
        seen.append(intermediate_result.fun)
        if len(seen) == 2:
            raise StopIteration

    res = minimize_lbfgsb(lambda x: (so.rosen(x), so.rosen_der(x)), np.array([-1.2, 1.0]),
                          callback=cb)
    # status 99 and this message: what scipy.optimize.minimize reports for every method
    assert len(seen) == 2 and res.nit == 2 and res.status == 99
    assert res.reason == "callback"


# ---------------------------------------------------------------- hess_inv

def test_hess_inv_is_scipys_operator():
    bp = boxed_problem("ext_rosenbrock", 10, _unconstrained_minimiser("ext_rosenbrock", 10))
    res = minimize_lbfgsb(bp.fg, bp.x0, bp.lower, bp.upper)
    H = res.hess_inv
    assert H.sk.shape == H.yk.shape == (H.n_corrs, 10) and 0 < H.n_corrs <= 10
    ref = so.LbfgsInvHessProduct(H.sk, H.yk)
    v = np.linspace(-1, 1, 10)
    np.testing.assert_allclose(H.matvec(v), ref.matvec(v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H(v), ref(v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(H.dot(v), ref.dot(v), rtol=1e-12, atol=1e-14)
    # to rounding at the matrix's scale: scipy < 1.15 sums todense() in another order
    dense = ref.todense()
    np.testing.assert_allclose(H.todense(), dense, rtol=1e-12, atol=1e-13 * np.abs(dense).max())
    np.testing.assert_allclose(H.rho, ref.rho)


def test_hess_inv_pairs_are_the_newest_corrections():
    res = minimize_lbfgsb(lambda x: (so.rosen(x), so.rosen_der(x)), np.zeros(6), maxcor=4)
    H = res.hess_inv
    assert H.n_corrs == 4
    assert np.all(np.einsum("ij,ij->i", H.sk, H.yk) > 0)


def test_box_around_kinds():
    lo, hi = box_around(np.zeros(8), np.arange(8.0) - 4)
    assert np.isfinite(lo[0]) and np.isfinite(hi[0])
    assert np.isinf(lo[3]) and np.isinf(hi[3])
    assert np.isfinite(lo[1]) != np.isfinite(hi[1])
