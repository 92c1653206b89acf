"""scipy 1.17.1's L-BFGS-B tests, ported to fastopt's L-BFGS-B.

Sources (read, then rewritten here): ``scipy/optimize/tests/test_lbfgsb_hessinv.py``,
``test_lbfgsb_setulb.py`` and the L-BFGS-B tests of ``test_optimize.py``
(``CheckOptimizeParameterized.test_l_bfgs_b*``, ``test_minimize_l_bfgs_b*``,
``TestLBFGSBBounds``, ``test_minimize_with_scalar``, the scale-invariance test
``TestOptimizeSimple.test_initial_step_scaling``-part, ``test_gh_issue18730``,
``test_equal_bounds``).

They call :func:`_minimize`: ``fastopt.minimize(..., method="L-BFGS-B")`` with scipy's
arguments, as a scipy user who switches the import does.

Differences from scipy, each written at its test with a check of the intent:

* ``test_setulb_floatround`` drives scipy's Fortran-style reverse-communication routine
  with a function known at four points only; the port checks the same property (no
  evaluated point leaves the box, even 1 ulp) on a problem that starts 1e-14 inside the
  bounds;
* ``hess_inv``: scipy hands its ring buffer to ``LbfgsInvHessProduct`` in storage order,
  fastopt oldest pair first (the order the two-loop recursion needs).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_almost_equal, assert_array_less

import fastopt
from fastopt_testing.scipy_messages import lbfgsb_message

optimize = pytest.importorskip("scipy.optimize")
scipy_linalg = pytest.importorskip("scipy.linalg")

def _minimize(fun, x0, args=(), jac=None, bounds=None, callback=None, options=None):
    """``scipy.optimize.minimize(fun, x0, args, method="L-BFGS-B", ...)`` with the import
    switched: ``fastopt.minimize``, exactly as a scipy user calls it."""
    return fastopt.minimize(fun, x0, args=args, method="L-BFGS-B", jac=jac, bounds=bounds,
                            callback=callback, options=options)


# ---------------------------------------------------------------- test_optimize.py:
# CheckOptimize's entropy-maximisation problem

class Entropy:
    def __init__(self):
        self.F = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 1], [1, 0, 0], [1, 0, 0]])
        self.K = np.array([1., 0.3, 0.5])
        self.startparams = np.zeros(3, np.float64)
        self.solution = np.array([0., -0.524869316, 0.487525860])
        self.maxiter = 1000
        self.funccalls = 0
        self.gradcalls = 0

    def func(self, x):
        self.funccalls += 1
        if self.funccalls > 6000:
            raise RuntimeError("too many iterations in optimization routine")
        log_pdot = np.dot(self.F, x)
        logZ = np.log(sum(np.exp(log_pdot)))
        return logZ - np.dot(self.K, x)

    def grad(self, x):
        self.gradcalls += 1
        log_pdot = np.dot(self.F, x)
        logZ = np.log(sum(np.exp(log_pdot)))
        p = np.exp(log_pdot - logZ)
        return np.dot(self.F.transpose(), p) - self.K


@pytest.fixture
def entropy():
    return Entropy()


def test_l_bfgs_b(entropy):
    res = _minimize(entropy.func, entropy.startparams, jac=entropy.grad,
                    options={"maxiter": entropy.maxiter})
    assert_allclose(entropy.func(res.x), entropy.func(entropy.solution), atol=1e-6)
    # scipy pins its counts (from SciPy 0.7.0: 7 function calls incl. the check above,
    # 5 gradients); the same path here
    assert entropy.funccalls == 7, entropy.funccalls
    assert entropy.gradcalls == 5, entropy.gradcalls


def test_l_bfgs_b_numjac(entropy):
    res = _minimize(entropy.func, entropy.startparams, options={"maxiter": entropy.maxiter})
    assert_allclose(entropy.func(res.x), entropy.func(entropy.solution), atol=1e-6)


def test_l_bfgs_b_funjac(entropy):
    def fun(x):
        return entropy.func(x), entropy.grad(x)
    res = _minimize(fun, entropy.startparams, jac=True, options={"maxiter": entropy.maxiter})
    assert_allclose(entropy.func(res.x), entropy.func(entropy.solution), atol=1e-6)


def test_l_bfgs_b_maxiter():
    # gh7854: never more than maxiter iterations
    class Callback:
        def __init__(self):
            self.nit = 0
            self.fun = None
            self.x = None

        def __call__(self, x):
            self.x = x
            self.fun = optimize.rosen(x)
            self.nit += 1

    c = Callback()
    res = _minimize(optimize.rosen, [0., 0.], callback=c, options={"maxiter": 5})
    assert res.nit == 5 and c.nit == 5
    assert_almost_equal(res.x, c.x)
    assert_almost_equal(res.fun, c.fun)
    assert res.status == 1
    assert res.success is False
    assert res.message == lbfgsb_message("maxiter")


def test_minimize_l_bfgs_b(entropy):
    opts = {"maxiter": entropy.maxiter}
    r = _minimize(entropy.func, entropy.startparams, jac=entropy.grad, options=opts)
    assert_allclose(entropy.func(r.x), entropy.func(entropy.solution), atol=1e-6)
    assert entropy.gradcalls == r.njev
    for jac in (None, "3-point"):
        entropy.funccalls = entropy.gradcalls = 0
        ra = _minimize(entropy.func, entropy.startparams, jac=jac, options=opts)
        assert entropy.funccalls == ra.nfev        # finite-difference calls are counted
        assert_allclose(entropy.func(ra.x), entropy.func(entropy.solution), atol=1e-6)


def test_minimize_l_bfgs_b_ftol(entropy):
    v0 = None
    for tol in [1e-1, 1e-4, 1e-7, 1e-10]:
        sol = _minimize(entropy.func, entropy.startparams, jac=entropy.grad,
                        options={"maxiter": entropy.maxiter, "ftol": tol})
        v = entropy.func(sol.x)
        if v0 is None:
            v0 = v
        else:
            assert v < v0
        assert_allclose(v, entropy.func(entropy.solution), rtol=tol)


def test_minimize_l_bfgs_maxls():
    sol = _minimize(optimize.rosen, np.array([-1.2, 1.0]), jac=optimize.rosen_der,
                    options={"maxls": 1})
    assert not sol.success


def test_minimize_l_bfgs_b_maxfun_interruption():
    # gh-6162: stopping on maxfun returns the best point, not the last one evaluated
    f, g = optimize.rosen, optimize.rosen_der
    values = []
    x0 = np.full(7, 1000)

    def objfun(x):
        value = f(x)
        values.append(value)
        return value

    low, medium, high = 30, 100, 300
    _minimize(objfun, x0, jac=g, options={"maxfun": high})
    v, k = max((y, i) for i, y in enumerate(values[medium:]))
    maxfun = medium + k
    target = min(values[:low])
    res = _minimize(f, x0, jac=g, options={"maxfun": maxfun})
    assert_array_less(res.fun, target)


# ---------------------------------------------------------------- TestLBFGSBBounds

BOUNDS = ((1, None), (None, None))
SOLUTION = (1, 0)


def _bfun(x, p=2.0):
    return 1.0 / p * (x[0] ** p + x[1] ** p)


def _bjac(x, p=2.0):
    return x ** (p - 1)


def _bfj(x, p=2.0):
    return _bfun(x, p), _bjac(x, p)


def test_l_bfgs_b_bounds():
    res = _minimize(_bfun, [0, -1], jac=_bjac, bounds=BOUNDS)
    assert res.status == 0, res.message
    assert_allclose(res.x, SOLUTION, atol=1e-6)


def test_l_bfgs_b_bounds_funjac_args():
    res = _minimize(_bfj, [0, -1], args=(2.0,), jac=True, bounds=BOUNDS)
    assert res.status == 0, res.message
    assert_allclose(res.x, SOLUTION, atol=1e-6)


@pytest.mark.parametrize("bounds", [[(10, 1), (1, 10)], [(1, 10), (10, 1)],
                                    [(10, 1), (10, 1)]])
def test_minimize_l_bfgs_b_incorrect_bounds(bounds):
    with pytest.raises(ValueError, match=".*bound.*"):
        _minimize(_bfun, [0, -1], jac=_bjac, bounds=bounds)


def test_minimize_l_bfgs_b_bounds_fd():
    # x0 = (0, -1) starts outside x[0] >= 1: clipped, no error
    for jac, args in itertools.product(["2-point", "3-point", None], [(2.,), ()]):
        res = _minimize(_bfun, [0, -1], args=args, jac=jac, bounds=BOUNDS,
                        options={"finite_diff_rel_step": None})
        assert res.success, res.message
        assert_allclose(res.x, SOLUTION, atol=1e-6)


@pytest.mark.parametrize("x0", [17, 17.0, np.array(17.0)])
def test_minimize_with_scalar(x0):
    res = _minimize(lambda x: np.sum(x ** 2), x0, bounds=[(-100, 100)])
    assert res.success
    assert_allclose(res.x, [0.0], atol=1e-5)
    assert res.x.shape == (1,)


def test_result_x_shape_when_len_x_is_one():
    res = _minimize(lambda x: x * x, np.array([0.1]))
    assert res.x.shape == (1,)


@pytest.mark.parametrize("scale", [1.0, 1e50])
def test_initial_step_scaling(scale):
    # scipy skips L-BFGS-B at 1e-50 (the gradient is below gtol at x0, so it returns x0)
    x0 = [-1.0]
    first_step_size = [None]

    def f(x):
        if first_step_size[0] is None and x[0] != x0[0]:
            first_step_size[0] = abs(x[0] - x0[0])
        assert abs(x).max() <= 1e4, "Optimization stepped far away!"
        return scale * (x[0] - 1) ** 2

    res = _minimize(f, x0, jac=lambda x: np.array([scale * (x[0] - 1)]))
    assert res.success
    assert_allclose(res.x, [1.0])
    assert res.nit <= 3
    assert 0.5 < first_step_size[0] < 3


def test_gh_issue18730():
    # float32 gradients from a float64 problem
    def fun_single_precision(x):
        x = x.astype(np.float32)
        return np.sum(x ** 2), (2 * x)

    res = _minimize(fun_single_precision, np.array([1., 1.]), jac=True)
    assert_allclose(res.fun, 0., atol=1e-15)


# ---------------------------------------------------------------- test_equal_bounds

_EB_RNG = np.random.default_rng(12223)
_EB_X0 = _EB_RNG.random(4)
_EB_LB = np.array([0, 2, -1, -1.0])
_EB_UB = np.array([3, 2, 2, -1.0])
_EB_FIXED = _EB_LB == _EB_UB


@pytest.mark.parametrize("jac", ["grad", "combined", "fd"])
@pytest.mark.parametrize("bound_type", ["pairs", "Bounds"])
@pytest.mark.parametrize("callback", [None, "legacy", "intermediate"])
def test_equal_bounds(jac, bound_type, callback):
    """gh12502: fixed variables (lb == ub) must stay fixed and not break the solver:
    the function never sees them off their value, finite differences included."""

    def check_x(x):
        assert x.size == 4
        assert_allclose(x[_EB_FIXED], _EB_LB[_EB_FIXED])

    def func(x):
        check_x(x)
        return optimize.rosen(x)

    def grad(x):
        check_x(x)
        return optimize.rosen_der(x)

    def cb_legacy(x, *args):
        assert_allclose(x[_EB_FIXED], _EB_LB[_EB_FIXED])

    def cb_intermediate(intermediate_result):
        assert_allclose(intermediate_result.x[_EB_FIXED], _EB_LB[_EB_FIXED])

    kw = {"grad": {"fun": func, "jac": grad},
          "combined": {"fun": lambda x: (func(x), grad(x)), "jac": True},
          "fd": {"fun": func, "jac": None}}[jac]
    bounds = (list(zip(_EB_LB, _EB_UB)) if bound_type == "pairs"
              else optimize.Bounds(_EB_LB, _EB_UB))
    cb = {None: None, "legacy": cb_legacy, "intermediate": cb_intermediate}[callback]
    res = _minimize(x0=_EB_X0, bounds=bounds, callback=cb, **kw)
    expected = optimize.minimize(optimize.rosen, _EB_X0, method="L-BFGS-B",
                                 jac=optimize.rosen_der, bounds=bounds)
    assert res.success
    assert_allclose(res.fun, expected.fun, rtol=5.0e-6)
    assert_allclose(res.x, expected.x, rtol=5e-4)
    assert_allclose(res.x[_EB_FIXED], _EB_LB[_EB_FIXED])
    if jac == "fd":     # scipy takes fixed variables out: their derivative is unknown
        expected.jac[_EB_FIXED] = np.nan
        assert res.hess_inv is None
    assert res.jac.shape[0] == 4
    assert_allclose(res.jac[_EB_FIXED], expected.jac[_EB_FIXED], rtol=1e-6)
    if jac == "fd" and bound_type == "pairs":
        # the same minimisation written without the fixed variables
        def reduced(x):
            full = np.array([np.nan, 2, np.nan, -1])
            full[[0, 2]] = x
            return optimize.rosen(full)
        fd_res = _minimize(reduced, _EB_X0[[0, 2]], bounds=bounds[::2])
        assert_allclose(res.fun, fd_res.fun)
        assert_allclose(res.x[[0, 2]], fd_res.x, rtol=2e-6)
        assert res.nfev == fd_res.nfev


def test_all_bounds_equal():
    """Every variable fixed: scipy's early result (x = lb, one evaluation)."""
    for jac in (None, optimize.rosen_der):
        res = _minimize(optimize.rosen, _EB_X0, jac=jac, bounds=list(zip(_EB_LB, _EB_LB)))
        assert res.success and res.nfev == 1 and res.njev == 0
        assert res.message == "All independent variables were fixed by bounds."
        assert_allclose(res.x, _EB_LB)
        assert res.fun == optimize.rosen(_EB_LB)


@pytest.mark.parametrize("scheme", ["2-point", "3-point"])
def test_finite_differences_stay_in_the_box_as_scipys(scheme):
    """The points a finite-difference gradient evaluates near and on the bounds are
    scipy's (approx_derivative's rules: reverse a step that leaves the box, shorten it
    to the room there is, one-sided second-order differences near a bound)."""
    lower = np.array([0.0, -1.0, 0.0, -5.0, 0.0, -np.inf])
    upper = np.array([1.0, 1e-9, 1e-9, 5.0, 2e-9, np.inf])
    x0 = np.array([1.0, 0.0, 0.0, -5.0, 1e-9, 3.0])   # on, near and between bounds

    def recorder(seen):
        def f(x):
            seen.append(x.copy())
            return float(np.sum((x - 0.3) ** 2) + np.sum(x ** 4))
        return f
    ours, theirs = [], []
    bounds = list(zip(lower, upper))
    _minimize(recorder(ours), x0, jac=scheme, bounds=bounds, options={"maxiter": 1})
    optimize.minimize(recorder(theirs), x0, jac=scheme, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 1})
    n_grad = 1 + (1 if scheme == "2-point" else 2) * x0.size  # the first gradient
    np.testing.assert_array_equal(np.array(ours[:n_grad]), np.array(theirs[:n_grad]))
    for x in ours:
        assert np.all(x >= lower) and np.all(x <= upper)


# ---------------------------------------------------------------- test_lbfgsb_setulb.py

def test_setulb_floatround():
    """No evaluated point leaves [0, 1]^5, from a start 1e-14 inside the bounds and a
    minimiser outside them (scipy's test drives its reverse-communication routine with
    a function known at four points; here: the same start, a quadratic)."""
    x0 = np.array([0.8750000000000278, 0.7500000000000153, 0.9499999999999722,
                   0.8214285714285992, 0.6363636363636085])
    target = np.array([1.3, -0.4, 0.97, -0.2, 0.03])
    seen = []

    def fg(x):
        seen.append(x.copy())
        r = x - target
        return float(r @ (np.arange(1, 6) * r)), 2 * np.arange(1, 6) * r

    res = _minimize(fg, x0, jac=True, bounds=[(0, 1)] * 5)
    assert res.success
    for x in seen:
        assert (x <= 1).all() and (x >= 0).all()
    assert_allclose(res.x, np.clip(target, 0, 1), atol=1e-6)


# ---------------------------------------------------------------- test_lbfgsb_hessinv.py

def test_hessinv_1():
    def f(x):
        return x ** 4, 4 * x ** 3

    for gtol in [1e-8, 1e-12, 1e-20]:
        for maxcor in range(20, 35):
            result = _minimize(f, 20, jac=True, options={"gtol": gtol, "maxcor": maxcor})
            H1 = result.hess_inv(np.array([1])).reshape(1, 1)
            H2 = result.hess_inv.todense()
            assert_allclose(H1, H2)


def test_hessinv_2():
    H0 = [[3, 0], [1, 2]]

    def f(x):
        return np.dot(x, np.dot(scipy_linalg.inv(H0), x))

    result1 = _minimize(f, [10, 20])
    result2 = optimize.minimize(fun=f, method="BFGS", x0=[10, 20])
    H1 = result1.hess_inv.todense()
    H2 = np.vstack((result1.hess_inv(np.array([1, 0])), result1.hess_inv(np.array([0, 1]))))
    assert_allclose(result1.hess_inv(np.array([1, 0]).reshape(2, 1)).reshape(-1),
                    result1.hess_inv(np.array([1, 0])))
    assert_allclose(H1, H2)
    assert_allclose(H1, result2.hess_inv, rtol=1e-2, atol=0.03)


def test_hessinv_3():
    def todense_old_impl(self):
        s, y, n_corrs, rho = self.sk, self.yk, self.n_corrs, self.rho
        I_arr = np.eye(*self.shape, dtype=self.dtype)
        Hk = I_arr
        for i in range(n_corrs):
            A1 = I_arr - s[i][:, np.newaxis] * y[i][np.newaxis, :] * rho[i]
            A2 = I_arr - y[i][:, np.newaxis] * s[i][np.newaxis, :] * rho[i]
            Hk = np.dot(A1, np.dot(Hk, A2)) + (rho[i] * s[i][:, np.newaxis]
                                              * s[i][np.newaxis, :])
        return Hk

    H0 = [[3, 0], [1, 2]]

    def f(x):
        return np.dot(x, np.dot(scipy_linalg.inv(H0), x))

    result1 = _minimize(f, [10, 20])
    assert_allclose(result1.hess_inv.todense(), todense_old_impl(result1.hess_inv))


def test_hessinv_matches_scipy_on_the_same_pairs():
    """Beyond scipy's tests: fastopt's operator and scipy's, built from one set of
    pairs, agree on matvec, matmat and todense."""
    from fastopt.optimize.inv_hess_product import LbfgsInvHessProduct
    rng = np.random.default_rng(3)
    s = rng.standard_normal((6, 9))
    y = s * rng.uniform(0.5, 2.0, 9) + 0.01 * rng.standard_normal((6, 9))
    ours, theirs = LbfgsInvHessProduct(s, y), optimize.LbfgsInvHessProduct(s, y)
    v = rng.standard_normal(9)
    V = rng.standard_normal((9, 3))
    assert_allclose(ours.matvec(v), theirs.matvec(v), rtol=1e-13)
    assert_allclose(ours.matmat(V), theirs.matmat(V), rtol=1e-13)
    # to rounding at the matrix's scale: scipy < 1.15 sums todense() in another order
    dense = theirs.todense()
    assert_allclose(ours.todense(), dense, rtol=1e-13, atol=1e-14 * np.abs(dense).max())
    assert_allclose(ours.rho, theirs.rho)
    assert ours.n_corrs == theirs.n_corrs == 6
