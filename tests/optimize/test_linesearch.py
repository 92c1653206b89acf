"""Line searches: the conditions they claim, and Moré–Thuente's published behaviour."""
import math

import numpy as np
import pytest

from fastopt.optimize._vector import LOCAL
from fastopt.optimize.linesearch import Line, backtracking, more_thuente
from fastopt.optimize.objective import Objective
from fastopt.optimize.problems import get_problem


# ---------------------------------------------------------------- 1-D harness
class FakeLine:
    """phi(alpha) given directly (the interface the searches use)."""

    def __init__(self, phi):
        self.phi = phi
        self.f0, self.dphi0 = phi(0.0)
        self.x = np.zeros(1)
        self.g0 = np.array([self.dphi0])
        self.d = np.ones(1)
        self.calls = 0
        self.obj = self
        self.space = LOCAL      # where backtracking reduces the slope at its accepted step

    def value_slope(self, a):
        self.calls += 1
        f, d = self.phi(a)
        return f, d, np.array([a]), np.array([d])

    def value(self, a):
        self.calls += 1
        return self.phi(a)[0], np.array([a])

    def grad(self, x):
        return np.array([self.phi(float(x[0]))[1]])


# The six test functions of Moré & Thuente (1994), Section 5.
def mt1(a, b=2.0):
    return -a / (a * a + b), (a * a - b) / (a * a + b) ** 2


def mt2(a, b=0.004):
    return (a + b) ** 5 - 2 * (a + b) ** 4, (a + b) ** 3 * (5 * (a + b) - 8)


def mt3(a, b=0.01, ell=39):
    if a <= 1 - b:
        p, dp = 1 - a, -1.0
    elif a >= 1 + b:
        p, dp = a - 1, 1.0
    else:
        p, dp = (a - 1) ** 2 / (2 * b) + b / 2, (a - 1) / b
    return (p + 2 * (1 - b) / (ell * math.pi) * math.sin(ell * math.pi * a / 2),
            dp + (1 - b) * math.cos(ell * math.pi * a / 2))


def _yanai(b1, b2):
    g1 = math.sqrt(1 + b1 * b1) - b1
    g2 = math.sqrt(1 + b2 * b2) - b2

    def phi(a):
        r1 = math.sqrt((1 - a) ** 2 + b2 * b2)
        r2 = math.sqrt(a * a + b1 * b1)
        return g1 * r1 + g2 * r2, -g1 * (1 - a) / r1 + g2 * a / r2
    return phi


mt4, mt5, mt6 = _yanai(1e-3, 1e-3), _yanai(1e-2, 1e-3), _yanai(1e-3, 1e-2)

# (function, c1, c2, {alpha0: evaluations in the paper's Tables 1-6})
PAPER = [
    (mt1, 1e-3, 0.1, {1e-3: 6, 1e-1: 3, 1e1: 1, 1e3: 4}),
    (mt2, 0.1, 0.1, {1e-3: 12, 1e-1: 8, 1e1: 8, 1e3: 11}),
    (mt3, 0.1, 0.1, {1e-3: 12, 1e-1: 12, 1e1: 10, 1e3: 13}),
    (mt4, 1e-3, 1e-3, {1e-3: 4, 1e-1: 1, 1e1: 3, 1e3: 4}),
    (mt5, 1e-3, 1e-3, {1e-3: 6, 1e-1: 3, 1e1: 7, 1e3: 8}),
    (mt6, 1e-3, 1e-3, {1e-3: 13, 1e-1: 11, 1e1: 8, 1e3: 11}),
]


@pytest.mark.parametrize("k", range(6))
def test_more_thuente_reproduces_paper_tables(k):
    phi, c1, c2, table = PAPER[k]
    for alpha0, evals in table.items():
        line = FakeLine(phi)
        r = more_thuente(line, alpha0, c1=c1, c2=c2, maxls=100)
        assert r.success and r.armijo and r.curvature
        # the strong Wolfe conditions, checked here independently
        f, d = phi(r.alpha)
        assert f <= line.f0 + c1 * r.alpha * line.dphi0
        assert abs(d) <= c2 * abs(line.dphi0)
        assert r.nfev == evals == line.calls


def descent_line(name):
    """Problem `name` from its x0 (n = 12 or the nearest size it admits), f0 and the Line
    along the normalized steepest-descent direction there (line.x, line.d, line.obj)."""
    p = get_problem(name)
    x = p.x0(p.admissible_n(12))
    obj = Objective(p.fg, x.shape, x.dtype, jac=True)
    f0, g0 = obj.fg(x)
    d = -g0 / np.linalg.norm(g0)
    return p, f0, Line(obj, x, d, f0, g0)


@pytest.mark.parametrize("name", ["ext_rosenbrock", "ext_beale", "raydan2", "edensch",
                                  "ext_powell", "bdqrtic", "dixmaanc", "ext_cliff"])
@pytest.mark.parametrize("alpha0", [1e-4, 1.0, 100.0])
def test_more_thuente_strong_wolfe_on_collection(name, alpha0):
    p, f0, line = descent_line(name)
    r = more_thuente(line, alpha0, c1=1e-4, c2=0.9, maxls=40)
    assert r.success
    f, g = p.fg(line.x + r.alpha * line.d)
    assert f == pytest.approx(r.f, rel=1e-12, abs=1e-300)
    assert f <= f0 + 1e-4 * r.alpha * line.dphi0
    if r.curvature:
        assert abs(g @ line.d) <= 0.9 * abs(line.dphi0)
    assert r.nfev == line.obj.nfev - 1


@pytest.mark.parametrize("name", ["ext_rosenbrock", "ext_beale", "edensch", "ext_cliff"])
@pytest.mark.parametrize("alpha0", [1e-3, 1.0, 1e3])
def test_backtracking_armijo_on_collection(name, alpha0):
    p, f0, line = descent_line(name)
    r = backtracking(line, alpha0, c1=1e-4)
    assert r.success and r.armijo
    f, g = p.fg(line.x + r.alpha * line.d)
    assert f <= f0 + 1e-4 * r.alpha * line.dphi0
    np.testing.assert_allclose(r.g, g)
    assert r.alpha <= alpha0


def test_backtracking_accepts_first_trial_when_armijo_holds():
    line = FakeLine(lambda a: ((a - 1.0) ** 2, 2 * (a - 1.0)))
    r = backtracking(line, 0.5)
    assert r.success and r.alpha == 0.5 and r.nfev == 1


def test_backtracking_interpolates_quadratic_exactly():
    # phi = (a - 0.01)^2: the first trial alpha = 1 fails; the quadratic through
    # phi(0), phi'(0), phi(1) is phi itself, but the safeguard keeps alpha >= 0.1.
    line = FakeLine(lambda a: ((a - 0.01) ** 2, 2 * (a - 0.01)))
    r = backtracking(line, 1.0)
    assert r.success and r.nfev >= 2
    assert r.f <= line.f0 + 1e-4 * r.alpha * line.dphi0


def test_more_thuente_rejects_ascent_direction():
    line = FakeLine(lambda a: (a * a + a, 2 * a + 1))
    r = more_thuente(line, 1.0)
    assert not r.success and r.nfev == 0
    assert "not a descent direction" in r.message
    r = backtracking(line, 1.0)
    assert not r.success and "not a descent direction" in r.message


def test_more_thuente_retreats_from_non_finite_values():
    # phi is NaN beyond alpha = 2; the minimiser 1.5 is inside the finite part
    def phi(a):
        if a > 2.0:
            return math.nan, math.nan
        return (a - 1.5) ** 2, 2 * (a - 1.5)
    line = FakeLine(phi)
    r = more_thuente(line, 10.0, c2=0.1)
    assert r.success and r.alpha <= 2.0
    assert abs(r.dphi) <= 0.1 * abs(line.dphi0)


def test_more_thuente_failure_reports_what_failed():
    # the derivative claims descent but phi increases: a wrong gradient
    line = FakeLine(lambda a: (a, -1.0))
    r = more_thuente(line, 1.0, maxls=10)
    assert not r.success
    assert "sufficient decrease was not reached after" in r.message
    assert r.alpha == 0.0 and r.f == line.f0    # nothing better than the start


def test_more_thuente_approximate_wolfe_when_f_is_flat():
    # phi is constant to machine precision (the decrease is below the resolution of
    # f0 = 1e8), but the derivative is reliable: with fnoise the step is accepted.
    f0 = 1e8

    def phi(a):
        return f0 + 1e-12 * ((a - 1.0) ** 2 - 1.0), 2e-12 * (a - 1.0)
    r = more_thuente(FakeLine(phi), 1.0, fnoise=0.0, maxls=20)
    assert not r.success
    r = more_thuente(FakeLine(phi), 0.9, fnoise=1e-8 * f0)
    assert r.success and r.curvature and not r.armijo
    assert "approximate Wolfe" in r.message


def test_more_thuente_flags_unbounded():
    line = FakeLine(lambda a: (-a, -1.0))
    r = more_thuente(line, 1.0, alpha_max=1e6, maxls=50)
    assert r.success and r.unbounded and r.alpha == 1e6
