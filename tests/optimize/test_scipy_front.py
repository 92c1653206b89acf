"""fastopt.minimize as a drop-in for scipy.optimize.minimize: signature, choice of method,
warnings, statuses and scipy's option names."""
import inspect
import warnings

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import OptimizeWarning, rosen, rosen_der

import fastopt
from fastopt.optimize import STATUS, minimize
from fastopt.optimize._options import LBFGSB_FTOL


def quadratic(x):
    d = np.arange(1.0, x.size + 1)
    return 0.5 * float(d @ (x - 1) ** 2), d * (x - 1)


def test_signature_is_scipys():
    ours = inspect.signature(minimize).parameters
    theirs = inspect.signature(scipy.optimize.minimize).parameters
    assert list(ours) == list(theirs)
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
        assert ours[name].kind == p.kind, name
    assert fastopt.minimize is minimize


def test_positional_call_as_scipy():
    # minimize(fun, x0, args, method, jac, hess, hessp, bounds, constraints, tol, callback)
    seen = []
    res = minimize(rosen, np.zeros(3), (), "BFGS", rosen_der, None, None, None, (), 1e-6,
                   seen.append)
    assert res.success and res.hess_inv.shape == (3, 3) and len(seen) == res.nit


def test_method_none_chooses_bfgs_without_bounds():
    res = minimize(rosen, np.zeros(4), jac=rosen_der)
    assert isinstance(res.hess_inv, np.ndarray) and res.hess_inv.shape == (4, 4)
    ref = minimize(rosen, np.zeros(4), jac=rosen_der, method="BFGS")
    assert res.nfev == ref.nfev and np.array_equal(res.x, ref.x)


def test_bounds_go_to_lbfgsb_and_nowhere_else():
    # until fastopt.optimize.lbfgsb is wired into _minimize_bounded, bounds raise there
    # (before any evaluation); once it is, method None and "L-BFGS-B" solve in the box
    calls = []

    def f(x):
        calls.append(1)
        return float(np.sum((x - 3.0) ** 2))

    def g(x):
        return 2.0 * (x - 3.0)
    for method in (None, "L-BFGS-B", "l-bfgs-b"):
        try:
            res = minimize(f, np.zeros(2), jac=g, method=method, bounds=[(0, 1), (0, 1)])
        except NotImplementedError as exc:
            assert "bounds: L-BFGS-B with bounds" in str(exc) and not calls
        else:
            assert res.status == 0 and np.array_equal(res.x, [1.0, 1.0]), res


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS", "adam"])
def test_other_methods_warn_and_ignore_bounds_as_scipy(method):
    with pytest.warns(RuntimeWarning, match=f"^Method {method} cannot handle bounds.$"):
        res = minimize(rosen, np.zeros(2), jac=rosen_der, method=method,
                       bounds=[(0, 0.5), (0, 0.5)], options={"maxiter": 3})
    assert res.nit >= 1


def _warning_texts(call):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B"])
def test_hess_and_hessp_warn_with_scipys_text(method):
    kw = {"jac": rosen_der, "method": method, "hess": scipy.optimize.rosen_hess,
              "hessp": scipy.optimize.rosen_hess_prod}
    ours = _warning_texts(lambda: minimize(rosen, np.zeros(3), **kw))
    theirs = _warning_texts(lambda: scipy.optimize.minimize(rosen, np.zeros(3), **kw))
    assert ours == theirs and len(ours) == 2


def test_constraints_other_than_empty_raise():
    for empty in ((), [], None):
        assert minimize(rosen, np.zeros(2), jac=rosen_der, constraints=empty).success
    con = {"type": "ineq", "fun": lambda x: x[0]}
    for bad in (con, [con], scipy.optimize.LinearConstraint(np.eye(2), 0, 1)):
        with pytest.raises(ValueError, match="constraints: expected \\(\\).*bounds.*SLSQP"):
            minimize(rosen, np.zeros(2), jac=rosen_der, constraints=bad)


def test_lbfgsb_name_without_bounds_has_lbfgsb_defaults():
    # scipy's L-BFGS-B stops on ftol = factr * eps = 2.2e-9; fastopt's L-BFGS has ftol 0
    assert LBFGSB_FTOL == pytest.approx(2.220446049250313e-09)
    b = minimize(rosen, np.zeros(6), jac=rosen_der, method="L-BFGS-B", options={"gtol": 0})
    plain = minimize(rosen, np.zeros(6), jac=rosen_der, method="L-BFGS",
                     options={"gtol": 0, "maxiter": 200})
    assert b.status == 0 and b.success and b.reason == "ftol"
    assert plain.nit > b.nit
    assert b.hess_inv.n_corrs == 10                       # maxcor 10, scipy's hess_inv
    sp = scipy.optimize.minimize(rosen, np.zeros(6), jac=rosen_der, method="L-BFGS-B",
                                 options={"gtol": 0})
    # without bounds too, "L-BFGS-B" is scipy's algorithm: its iterations and evaluations
    assert sp.status == 0 and abs(b.fun - sp.fun) < 1e-7
    assert (b.nit, b.nfev, b.message) == (sp.nit, sp.nfev, sp.message)


def test_every_convergence_is_status_0_limits_1_failures_2():
    assert {r: STATUS[r].status for r in STATUS} == {
        "gtol": 0, "ftol": 0, "xtol": 0, "maxiter": 1, "maxfun": 1, "linesearch": 2,
        "unbounded": 2, "nonfinite": 3, "callback": 99}
    ftol = minimize(rosen, np.zeros(4), jac=rosen_der, method="L-BFGS",
                    options={"ftol": 1e-3, "gtol": 0})
    xtol = minimize(rosen, np.zeros(4), jac=rosen_der, method="BFGS",
                    options={"xrtol": 1e-3, "gtol": 0})
    assert (ftol.status, ftol.reason, ftol.success) == (0, "ftol", True)
    assert (xtol.status, xtol.reason, xtol.success) == (0, "xtol", True)
    assert "relative reduction of f" in ftol.message


def test_maxiter_none_means_the_default():
    a = minimize(rosen, np.zeros(3), jac=rosen_der, options={"maxiter": None})
    b = minimize(rosen, np.zeros(3), jac=rosen_der)
    assert a.nit == b.nit and a.success
    res = minimize(rosen, np.zeros(3), jac=rosen_der, method="L-BFGS-B",
                   options={"maxiter": None})
    assert res.success


def test_return_all_lists_every_iterate():
    seen = []
    res = minimize(rosen, np.zeros(3), jac=rosen_der, callback=seen.append,
                   options={"return_all": True})
    assert len(res.allvecs) == res.nit + 1
    assert np.array_equal(res.allvecs[0], np.zeros(3))
    assert np.array_equal(res.allvecs[-1], res.x)
    assert all(np.array_equal(a, b) for a, b in zip(res.allvecs[1:], seen))
    assert "allvecs" not in minimize(rosen, np.zeros(3), jac=rosen_der)


def test_eps_is_an_absolute_finite_difference_step():
    points = []

    def f(x):
        points.append(x.copy())
        return float(np.sum(x ** 2))
    x0 = np.array([1000.0, -3.0])
    minimize(f, x0, options={"eps": 1e-4, "maxiter": 0})
    steps = [p - x0 for p in points[1:3]]
    np.testing.assert_allclose(steps[0], [1e-4, 0], rtol=1e-9)  # absolute, not |x| * rel
    np.testing.assert_allclose(steps[1], [0, 1e-4], rtol=1e-6)
    points.clear()
    # as scipy, the relative step counts only without the absolute one (eps=None)
    minimize(f, x0, options={"finite_diff_rel_step": np.array([1e-6, 1e-3]), "eps": None,
                             "maxiter": 0})
    steps = [p - x0 for p in points[1:3]]
    np.testing.assert_allclose(steps[0], [1e-3, 0], rtol=1e-6)  # 1e-6 * |1000|
    np.testing.assert_allclose(steps[1], [0, -3e-3], rtol=1e-6)  # sign of x
    with pytest.raises(ValueError, match="finite_diff_rel_step.*one per variable"):
        minimize(f, x0, options={"finite_diff_rel_step": [1e-6, 1e-6, 1e-6]})
    with pytest.raises(ValueError, match="options\\['eps'\\]: expected a value in \\(0, inf\\)"):
        minimize(f, x0, options={"eps": 0.0})


@pytest.mark.parametrize("method, eps", [("BFGS", 2.0 ** -26), ("L-BFGS-B", 1e-8)])
def test_default_finite_difference_step_is_scipys_absolute_eps(method, eps):
    """scipy's BFGS and L-BFGS-B difference with the absolute step ``eps`` (sqrt of the
    float64 epsilon, and 1e-8) unless ``eps=None``: ``finite_diff_rel_step`` alone
    changes nothing there."""
    points = []

    def f(x):
        points.append(x.copy())
        return float(np.sum(x ** 2))
    x0 = np.array([1000.0, -3.0])
    for options in ({}, {"finite_diff_rel_step": np.array([1e-6, 1e-3])}):
        points.clear()
        minimize(f, x0, method=method, options={"maxiter": 0, **options})
        steps = [p - x0 for p in points[1:3]]
        # the step actually taken: x0 + eps rounded to x0's grid
        np.testing.assert_array_equal(steps[0], [(1000.0 + eps) - 1000.0, 0.0])
        np.testing.assert_array_equal(steps[1], [0.0, (-3.0 + eps) + 3.0])
        so = pytest.importorskip("scipy.optimize")
        ours = list(points)
        points.clear()
        so.minimize(f, x0, method=method, options={"maxiter": 0, **options})
        np.testing.assert_array_equal(np.array(points[:3]), np.array(ours[:3]))


def test_scipy_options_are_known():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minimize(rosen, np.zeros(2), jac=rosen_der, method="L-BFGS-B",
                 options={"maxcor": 5, "maxls": 30, "iprint": -1, "disp": 0, "eps": 1e-8,
                          "finite_diff_rel_step": None, "workers": None, "ftol": 1e-12,
                          "gtol": 1e-6, "maxfun": 100, "maxiter": 100})
        minimize(rosen, np.zeros(2), jac=rosen_der, method="BFGS",
                 options={"gtol": 1e-6, "norm": np.inf, "eps": 1e-8, "maxiter": None,
                          "disp": False, "return_all": False, "finite_diff_rel_step": None,
                          "xrtol": 0, "c1": 1e-4, "c2": 0.9, "hess_inv0": np.eye(2)})
    with pytest.raises(ValueError, match="options\\['norm'\\]: expected inf"):
        minimize(rosen, np.zeros(2), jac=rosen_der, options={"norm": 2})
    with pytest.warns(OptimizeWarning, match="^Unknown solver options: bogus"):
        minimize(rosen, np.zeros(2), jac=rosen_der, method="L-BFGS-B", options={"bogus": 1})


def test_disp_prints(capsys):
    minimize(rosen, np.zeros(2), jac=rosen_der, options={"disp": True})
    out = capsys.readouterr().out
    assert "Optimization terminated successfully" in out and "Iterations:" in out
    minimize(rosen, np.zeros(2), jac=rosen_der, options={"disp": 0})
    assert capsys.readouterr().out == ""
