r"""Unconstrained test problems for the quasi-Newton solvers.

The problems follow N. Andrei, "An unconstrained optimization test functions
collection", *Advanced Modeling and Optimization* 10(1), 2008 (and the CUTE
problems it reproduces).  Every problem is scalable, vectorised with numpy, has
an analytic gradient and the standard starting point of the collection.

Indices in the formulas are 1-based, as in the paper; ``n`` is the dimension.
Problems built from independent blocks of ``b`` variables (``b`` = 2 or 4) need
``n`` to be a multiple of ``b``; :meth:`Problem.admissible_n` rounds a requested
size down to the nearest admissible one (``n = 10`` becomes 8 for the blocks of
four in Extended Powell and Extended Wood).  The DIXMAAN family uses
``m = n // 3`` so that it is defined for every ``n >= 3`` (the paper takes
``n = 3m``).

Each objective works in the dtype of its argument (float32 in, float32
arithmetic), returns ``f`` as a Python float and the gradient as an array of
the argument's dtype.

Examples
--------
>>> from fastopt.optimize.problems import get_problem
>>> p = get_problem("ext_rosenbrock")
>>> x0 = p.x0(10)
>>> f, g = p.fg(x0)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["Problem", "PROBLEMS", "get_problem", "problem_names"]

FG = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass(frozen=True)
class Problem:
    """One scalable test problem.

    Attributes
    ----------
    name : str
        Short identifier (``"ext_rosenbrock"``, ``"dixmaana"``, ...).
    title : str
        The name used in Andrei (2008).
    formula : str
        The objective in plain text.
    fg : callable
        ``fg(x) -> (f, g)``: value and gradient.
    start : callable
        ``start(n) -> x0``, the standard starting point (float64).
    block : int
        ``n`` must be a multiple of ``block``.
    min_n : int
        Smallest admissible ``n``.
    xstar : callable or None
        ``xstar(n)`` returns a known minimiser, when one is known in closed form.
    """

    name: str
    title: str
    formula: str
    fg: FG
    start: Callable[[int], np.ndarray]
    block: int = 1
    min_n: int = 2
    xstar: Callable[[int], np.ndarray] | None = None
    tags: tuple[str, ...] = field(default=())

    def admissible_n(self, n: int) -> int:
        """Largest admissible dimension not above ``n``."""
        m = max(self.min_n, n - n % self.block)
        return m

    def x0(self, n: int, dtype: np.typing.DTypeLike = np.float64) -> NDArray:
        """Standard starting point for dimension ``n`` (must be admissible)."""
        if n < self.min_n or n % self.block:
            raise ValueError(
                f"problem {self.name!r} needs n >= {self.min_n} and a multiple of "
                f"{self.block}; got n={n} (use admissible_n)")
        return np.asarray(self.start(n), dtype=dtype)

    def fun(self, x: NDArray) -> float:
        """Objective value only."""
        return self.fg(x)[0]

    def grad(self, x: NDArray) -> NDArray:
        """Gradient only."""
        return self.fg(x)[1]

    def __call__(self, x: NDArray) -> tuple[float, NDArray]:
        return self.fg(x)


PROBLEMS: dict[str, Problem] = {}


def _register(name: str, title: str, formula: str, start, block: int = 1,
              min_n: int = 2, xstar=None, tags=()):
    def deco(fg):
        PROBLEMS[name] = Problem(name, title, formula, fg, start, block, min_n,
                                 xstar, tuple(tags))
        return fg
    return deco


def get_problem(name: str) -> Problem:
    """Return the problem called ``name``."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; known: {sorted(PROBLEMS)}") from None


def problem_names() -> list[str]:
    """Names of all problems, in registration order."""
    return list(PROBLEMS)


# ---------------------------------------------------------------- helpers

def _idx(x):
    """1-based index vector i = 1..n in x's dtype."""
    return np.arange(1, x.size + 1, dtype=x.dtype)


def _alt(n, a, b):
    x = np.empty(n)
    x[0::2] = a
    x[1::2] = b
    return x


def _const(c):
    return lambda n: np.full(n, float(c))


def _pairs(x):
    return x[0::2], x[1::2]


def _interleave(ga, gb):
    g = np.empty(ga.size + gb.size, dtype=ga.dtype)
    g[0::2] = ga
    g[1::2] = gb
    return g


def _f(v):
    return float(v)


# ---------------------------------------------------------------- problems

@_register("ext_freudenstein_roth", "Extended Freudenstein & Roth",
           "sum_{i=1}^{n/2} (-13 + x_{2i-1} + ((5 - x_{2i}) x_{2i} - 2) x_{2i})^2"
           " + (-29 + x_{2i-1} + ((x_{2i} + 1) x_{2i} - 14) x_{2i})^2",
           lambda n: _alt(n, 0.5, -2.0), block=2, tags=("local minima",))
def _ext_freudenstein_roth(x):
    a, b = _pairs(x)
    r1 = -13 + a + ((5 - b) * b - 2) * b
    r2 = -29 + a + ((b + 1) * b - 14) * b
    f = np.sum(r1 * r1) + np.sum(r2 * r2)
    ga = 2 * r1 + 2 * r2
    gb = 2 * r1 * (10 * b - 3 * b * b - 2) + 2 * r2 * (3 * b * b + 2 * b - 14)
    return _f(f), _interleave(ga, gb)


@_register("ext_trigonometric", "Extended Trigonometric",
           "sum_i ((n - sum_j cos x_j) + i (1 - cos x_i) - sin x_i)^2", _const(0.2))
def _ext_trigonometric(x):
    i = _idx(x)
    c, s = np.cos(x), np.sin(x)
    r = (x.size - np.sum(c)) + i * (1 - c) - s
    f = np.sum(r * r)
    g = 2 * s * np.sum(r) + 2 * r * (i * s - c)
    return _f(f), g


@_register("ext_rosenbrock", "Extended Rosenbrock",
           "sum_{i=1}^{n/2} 100 (x_{2i} - x_{2i-1}^2)^2 + (1 - x_{2i-1})^2",
           lambda n: _alt(n, -1.2, 1.0), block=2, xstar=lambda n: np.ones(n))
def _ext_rosenbrock(x):
    a, b = _pairs(x)
    t = b - a * a
    u = 1 - a
    f = 100 * np.sum(t * t) + np.sum(u * u)
    return _f(f), _interleave(-400 * a * t - 2 * u, 200 * t)


@_register("gen_rosenbrock", "Generalized Rosenbrock",
           "sum_{i=1}^{n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2",
           lambda n: _alt(n, -1.2, 1.0), xstar=lambda n: np.ones(n))
def _gen_rosenbrock(x):
    a, b = x[:-1], x[1:]
    t = b - a * a
    u = 1 - a
    f = 100 * np.sum(t * t) + np.sum(u * u)
    g = np.zeros_like(x)
    g[:-1] = -400 * a * t - 2 * u
    g[1:] += 200 * t
    return _f(f), g


@_register("ext_white_holst", "Extended White & Holst",
           "sum_{i=1}^{n/2} 100 (x_{2i} - x_{2i-1}^3)^2 + (1 - x_{2i-1})^2",
           lambda n: _alt(n, -1.2, 1.0), block=2, xstar=lambda n: np.ones(n))
def _ext_white_holst(x):
    a, b = _pairs(x)
    t = b - a ** 3
    u = 1 - a
    f = 100 * np.sum(t * t) + np.sum(u * u)
    return _f(f), _interleave(-600 * a * a * t - 2 * u, 200 * t)


@_register("ext_beale", "Extended Beale",
           "sum_{i=1}^{n/2} (1.5 - x_{2i-1}(1 - x_{2i}))^2 + (2.25 - x_{2i-1}(1 - x_{2i}^2))^2"
           " + (2.625 - x_{2i-1}(1 - x_{2i}^3))^2",
           lambda n: _alt(n, 1.0, 0.8), block=2, xstar=lambda n: _alt(n, 3.0, 0.5))
def _ext_beale(x):
    a, b = _pairs(x)
    b2 = b * b
    b3 = b2 * b
    t1 = 1.5 - a * (1 - b)
    t2 = 2.25 - a * (1 - b2)
    t3 = 2.625 - a * (1 - b3)
    f = np.sum(t1 * t1) + np.sum(t2 * t2) + np.sum(t3 * t3)
    ga = -2 * (t1 * (1 - b) + t2 * (1 - b2) + t3 * (1 - b3))
    gb = 2 * a * (t1 + 2 * t2 * b + 3 * t3 * b2)
    return _f(f), _interleave(ga, gb)


@_register("ext_penalty", "Extended Penalty",
           "sum_{i=1}^{n-1} (x_i - 1)^2 + (sum_j x_j^2 - 0.25)^2",
           lambda n: np.arange(1.0, n + 1))
def _ext_penalty(x):
    u = x[:-1] - 1
    q = np.sum(x * x) - 0.25
    f = np.sum(u * u) + q * q
    g = 4 * q * x
    g[:-1] += 2 * u
    return _f(f), g


@_register("perturbed_quadratic", "Perturbed Quadratic",
           "sum_i i x_i^2 + (1/100) (sum_i x_i)^2", _const(0.5),
           xstar=lambda n: np.zeros(n))
def _perturbed_quadratic(x):
    i = _idx(x)
    s = np.sum(x)
    return _f(np.sum(i * x * x) + 0.01 * s * s), 2 * i * x + 0.02 * s


@_register("raydan1", "Raydan 1", "sum_i (i/10) (exp(x_i) - x_i)", _const(1.0),
           xstar=lambda n: np.zeros(n))
def _raydan1(x):
    i = _idx(x)
    e = np.exp(x)
    return _f(np.sum(i / 10 * (e - x))), i / 10 * (e - 1)


@_register("raydan2", "Raydan 2", "sum_i exp(x_i) - x_i", _const(1.0),
           xstar=lambda n: np.zeros(n))
def _raydan2(x):
    e = np.exp(x)
    return _f(np.sum(e - x)), e - 1


@_register("diagonal1", "Diagonal 1", "sum_i exp(x_i) - i x_i", lambda n: np.full(n, 1.0 / n),
           xstar=lambda n: np.log(np.arange(1.0, n + 1)))
def _diagonal1(x):
    i = _idx(x)
    e = np.exp(x)
    return _f(np.sum(e - i * x)), e - i


@_register("diagonal2", "Diagonal 2", "sum_i exp(x_i) - x_i / i",
           lambda n: 1.0 / np.arange(1.0, n + 1),
           xstar=lambda n: -np.log(np.arange(1.0, n + 1)))
def _diagonal2(x):
    i = _idx(x)
    e = np.exp(x)
    return _f(np.sum(e - x / i)), e - 1 / i


@_register("diagonal3", "Diagonal 3", "sum_i exp(x_i) - i sin(x_i)", _const(1.0))
def _diagonal3(x):
    i = _idx(x)
    e = np.exp(x)
    return _f(np.sum(e - i * np.sin(x))), e - i * np.cos(x)


@_register("hager", "Hager", "sum_i exp(x_i) - sqrt(i) x_i", _const(1.0),
           xstar=lambda n: 0.5 * np.log(np.arange(1.0, n + 1)))
def _hager(x):
    r = np.sqrt(_idx(x))
    e = np.exp(x)
    return _f(np.sum(e - r * x)), e - r


@_register("gen_tridiagonal1", "Generalized Tridiagonal 1",
           "sum_{i=1}^{n-1} (x_i + x_{i+1} - 3)^2 + (x_i - x_{i+1} + 1)^4", _const(2.0))
def _gen_tridiagonal1(x):
    a, b = x[:-1], x[1:]
    u = a + b - 3
    v = a - b + 1
    v3 = v ** 3
    f = np.sum(u * u) + np.sum(v3 * v)
    g = np.zeros_like(x)
    g[:-1] = 2 * u + 4 * v3
    g[1:] += 2 * u - 4 * v3
    return _f(f), g


@_register("ext_tridiagonal1", "Extended Tridiagonal 1",
           "sum_{i=1}^{n/2} (x_{2i-1} + x_{2i} - 3)^2 + (x_{2i-1} - x_{2i} + 1)^4",
           _const(2.0), block=2, xstar=lambda n: _alt(n, 1.0, 2.0))
def _ext_tridiagonal1(x):
    a, b = _pairs(x)
    u = a + b - 3
    v = a - b + 1
    v3 = v ** 3
    f = np.sum(u * u) + np.sum(v3 * v)
    return _f(f), _interleave(2 * u + 4 * v3, 2 * u - 4 * v3)


@_register("ext_three_exp", "Extended Three Exponential Terms",
           "sum_{i=1}^{n/2} exp(x_{2i-1} + 3 x_{2i} - 0.1) + exp(x_{2i-1} - 3 x_{2i} - 0.1)"
           " + exp(-x_{2i-1} - 0.1)", _const(0.1), block=2)
def _ext_three_exp(x):
    a, b = _pairs(x)
    e1 = np.exp(a + 3 * b - 0.1)
    e2 = np.exp(a - 3 * b - 0.1)
    e3 = np.exp(-a - 0.1)
    f = np.sum(e1 + e2 + e3)
    return _f(f), _interleave(e1 + e2 - e3, 3 * (e1 - e2))


@_register("diagonal4", "Diagonal 4", "sum_{i=1}^{n/2} (x_{2i-1}^2 + 100 x_{2i}^2) / 2",
           _const(1.0), block=2, xstar=lambda n: np.zeros(n))
def _diagonal4(x):
    a, b = _pairs(x)
    f = 0.5 * (np.sum(a * a) + 100 * np.sum(b * b))
    return _f(f), _interleave(a.copy(), 100 * b)


@_register("diagonal5", "Diagonal 5 (Matrix Rom)", "sum_i log(exp(x_i) + exp(-x_i))",
           _const(1.1), xstar=lambda n: np.zeros(n))
def _diagonal5(x):
    return _f(np.sum(np.logaddexp(x, -x))), np.tanh(x)


@_register("ext_himmelblau", "Extended Himmelblau",
           "sum_{i=1}^{n/2} (x_{2i-1}^2 + x_{2i} - 11)^2 + (x_{2i-1} + x_{2i}^2 - 7)^2",
           _const(1.0), block=2, xstar=lambda n: _alt(n, 3.0, 2.0))
def _ext_himmelblau(x):
    a, b = _pairs(x)
    u = a * a + b - 11
    v = a + b * b - 7
    f = np.sum(u * u) + np.sum(v * v)
    return _f(f), _interleave(4 * a * u + 2 * v, 2 * u + 4 * b * v)


@_register("gen_psc1", "Generalized PSC1",
           "sum_{i=1}^{n-1} (x_i^2 + x_{i+1}^2 + x_i x_{i+1})^2 + sin^2(x_i) + cos^2(x_{i+1})",
           lambda n: _alt(n, 3.0, 0.1))
def _gen_psc1(x):
    a, b = x[:-1], x[1:]
    q = a * a + b * b + a * b
    sa, cb = np.sin(a), np.cos(b)
    f = np.sum(q * q) + np.sum(sa * sa) + np.sum(cb * cb)
    g = np.zeros_like(x)
    g[:-1] = 2 * q * (2 * a + b) + 2 * sa * np.cos(a)
    g[1:] += 2 * q * (2 * b + a) - 2 * cb * np.sin(b)
    return _f(f), g


@_register("ext_psc1", "Extended PSC1",
           "sum_{i=1}^{n/2} (x_{2i-1}^2 + x_{2i}^2 + x_{2i-1} x_{2i})^2 + sin^2(x_{2i-1})"
           " + cos^2(x_{2i})", lambda n: _alt(n, 3.0, 0.1), block=2)
def _ext_psc1(x):
    a, b = _pairs(x)
    q = a * a + b * b + a * b
    sa, cb = np.sin(a), np.cos(b)
    f = np.sum(q * q) + np.sum(sa * sa) + np.sum(cb * cb)
    ga = 2 * q * (2 * a + b) + 2 * sa * np.cos(a)
    gb = 2 * q * (2 * b + a) - 2 * cb * np.sin(b)
    return _f(f), _interleave(ga, gb)


def _powell_start(n):
    return np.tile([3.0, -1.0, 0.0, 1.0], n // 4)


@_register("ext_powell", "Extended Powell",
           "sum_{i=1}^{n/4} (x_{4i-3} + 10 x_{4i-2})^2 + 5 (x_{4i-1} - x_{4i})^2"
           " + (x_{4i-2} - 2 x_{4i-1})^4 + 10 (x_{4i-3} - x_{4i})^4",
           _powell_start, block=4, min_n=4, xstar=lambda n: np.zeros(n),
           tags=("singular minimum",))
def _ext_powell(x):
    x1, x2, x3, x4 = x[0::4], x[1::4], x[2::4], x[3::4]
    t1 = x1 + 10 * x2
    t2 = x3 - x4
    t3 = x2 - 2 * x3
    t4 = x1 - x4
    t33, t43 = t3 ** 3, t4 ** 3
    f = np.sum(t1 * t1) + 5 * np.sum(t2 * t2) + np.sum(t33 * t3) + 10 * np.sum(t43 * t4)
    g = np.empty_like(x)
    g[0::4] = 2 * t1 + 40 * t43
    g[1::4] = 20 * t1 + 4 * t33
    g[2::4] = 10 * t2 - 8 * t33
    g[3::4] = -10 * t2 - 40 * t43
    return _f(f), g


@_register("ext_bd1", "Extended Block Diagonal BD1",
           "sum_{i=1}^{n/2} (x_{2i-1}^2 + x_{2i}^2 - 2)^2 + (exp(x_{2i-1} - 1) - x_{2i})^2",
           _const(0.1), block=2, xstar=lambda n: np.ones(n))
def _ext_bd1(x):
    a, b = _pairs(x)
    u = a * a + b * b - 2
    e = np.exp(a - 1)
    v = e - b
    f = np.sum(u * u) + np.sum(v * v)
    return _f(f), _interleave(4 * a * u + 2 * v * e, 4 * b * u - 2 * v)


@_register("ext_maratos", "Extended Maratos",
           "sum_{i=1}^{n/2} x_{2i-1} + 100 (x_{2i-1}^2 + x_{2i}^2 - 1)^2",
           lambda n: _alt(n, 1.1, 0.1), block=2)
def _ext_maratos(x):
    a, b = _pairs(x)
    u = a * a + b * b - 1
    f = np.sum(a) + 100 * np.sum(u * u)
    return _f(f), _interleave(1 + 400 * a * u, 400 * b * u)


@_register("ext_cliff", "Extended Cliff",
           "sum_{i=1}^{n/2} ((x_{2i-1} - 3)/100)^2 - (x_{2i-1} - x_{2i})"
           " + exp(20 (x_{2i-1} - x_{2i}))",
           lambda n: _alt(n, 0.0, -1.0), block=2)
def _ext_cliff(x):
    a, b = _pairs(x)
    e = np.exp(20 * (a - b))
    f = np.sum(((a - 3) / 100) ** 2) - np.sum(a - b) + np.sum(e)
    ga = 2 * (a - 3) / 10000 - 1 + 20 * e
    gb = 1 - 20 * e
    return _f(f), _interleave(ga, gb)


@_register("quad_diag_perturbed", "Quadratic Diagonal Perturbed",
           "(sum_i x_i)^2 + sum_i (i/100) x_i^2", _const(0.5),
           xstar=lambda n: np.zeros(n))
def _quad_diag_perturbed(x):
    i = _idx(x)
    s = np.sum(x)
    return _f(s * s + np.sum(i / 100 * x * x)), 2 * s + i / 50 * x


def _wood_start(n):
    return np.tile([-3.0, -1.0, -3.0, -1.0], n // 4)


@_register("ext_wood", "Extended Wood",
           "sum_{i=1}^{n/4} 100 (x_{4i-3}^2 - x_{4i-2})^2 + (x_{4i-3} - 1)^2"
           " + 90 (x_{4i-1}^2 - x_{4i})^2 + (1 - x_{4i-1})^2"
           " + 10.1 ((x_{4i-2} - 1)^2 + (x_{4i} - 1)^2) + 19.8 (x_{4i-2} - 1)(x_{4i} - 1)",
           _wood_start, block=4, min_n=4, xstar=lambda n: np.ones(n))
def _ext_wood(x):
    x1, x2, x3, x4 = x[0::4], x[1::4], x[2::4], x[3::4]
    t1 = x1 * x1 - x2
    t3 = x3 * x3 - x4
    f = (100 * np.sum(t1 * t1) + np.sum((x1 - 1) ** 2) + 90 * np.sum(t3 * t3)
         + np.sum((1 - x3) ** 2) + 10.1 * np.sum((x2 - 1) ** 2 + (x4 - 1) ** 2)
         + 19.8 * np.sum((x2 - 1) * (x4 - 1)))
    g = np.empty_like(x)
    g[0::4] = 400 * x1 * t1 + 2 * (x1 - 1)
    g[1::4] = -200 * t1 + 20.2 * (x2 - 1) + 19.8 * (x4 - 1)
    g[2::4] = 360 * x3 * t3 - 2 * (1 - x3)
    g[3::4] = -180 * t3 + 20.2 * (x4 - 1) + 19.8 * (x2 - 1)
    return _f(f), g


@_register("ext_hiebert", "Extended Hiebert",
           "sum_{i=1}^{n/2} (x_{2i-1} - 10)^2 + (x_{2i-1} x_{2i} - 50000)^2",
           _const(0.0), block=2, xstar=lambda n: _alt(n, 10.0, 5000.0),
           tags=("badly scaled",))
def _ext_hiebert(x):
    a, b = _pairs(x)
    u = a - 10
    v = a * b - 50000
    f = np.sum(u * u) + np.sum(v * v)
    return _f(f), _interleave(2 * u + 2 * b * v, 2 * a * v)


@_register("qf1", "Quadratic QF1", "sum_i (i/2) x_i^2 - x_n", _const(1.0))
def _qf1(x):
    i = _idx(x)
    g = i * x
    g[-1] -= 1
    return _f(0.5 * np.sum(i * x * x) - x[-1]), g


@_register("ext_qp1", "Extended Quadratic Penalty QP1",
           "sum_{i=1}^{n-1} (x_i^2 - 2)^2 + (sum_i x_i^2 - 0.5)^2", _const(1.0))
def _ext_qp1(x):
    a = x[:-1]
    u = a * a - 2
    q = np.sum(x * x) - 0.5
    f = np.sum(u * u) + q * q
    g = 4 * q * x
    g[:-1] += 4 * a * u
    return _f(f), g


@_register("ext_qp2", "Extended Quadratic Penalty QP2",
           "sum_{i=1}^{n-1} (x_i^2 - sin x_i)^2 + (sum_i x_i^2 - 100)^2", _const(1.0))
def _ext_qp2(x):
    a = x[:-1]
    u = a * a - np.sin(a)
    q = np.sum(x * x) - 100
    f = np.sum(u * u) + q * q
    g = 4 * q * x
    g[:-1] += 2 * u * (2 * a - np.cos(a))
    return _f(f), g


@_register("qf2", "Quadratic QF2", "sum_i (i/2) (x_i^2 - 1)^2 - x_n", _const(0.5))
def _qf2(x):
    i = _idx(x)
    u = x * x - 1
    g = 2 * i * x * u
    g[-1] -= 1
    return _f(0.5 * np.sum(i * u * u) - x[-1]), g


@_register("ext_ep1", "Extended EP1",
           "sum_{i=1}^{n/2} (exp(x_{2i-1} - x_{2i}) - 5)^2"
           " + (x_{2i-1} - x_{2i})^2 (x_{2i-1} - x_{2i} - 11)^2",
           _const(1.5), block=2)
def _ext_ep1(x):
    a, b = _pairs(x)
    d = a - b
    e = np.exp(d)
    w = d - 11
    f = np.sum((e - 5) ** 2) + np.sum((d * w) ** 2)
    dd = 2 * (e - 5) * e + 2 * d * w * w + 2 * d * d * w
    return _f(f), _interleave(dd, -dd)


@_register("ext_tridiagonal2", "Extended Tridiagonal 2",
           "sum_{i=1}^{n-1} (x_i x_{i+1} - 1)^2 + 0.1 (x_i + 1)(x_{i+1} + 1)", _const(1.0))
def _ext_tridiagonal2(x):
    a, b = x[:-1], x[1:]
    u = a * b - 1
    f = np.sum(u * u) + 0.1 * np.sum((a + 1) * (b + 1))
    g = np.zeros_like(x)
    g[:-1] = 2 * u * b + 0.1 * (b + 1)
    g[1:] += 2 * u * a + 0.1 * (a + 1)
    return _f(f), g


@_register("bdqrtic", "BDQRTIC (CUTE)",
           "sum_{i=1}^{n-4} (-4 x_i + 3)^2"
           " + (x_i^2 + 2 x_{i+1}^2 + 3 x_{i+2}^2 + 4 x_{i+3}^2 + 5 x_n^2)^2",
           _const(1.0), min_n=5)
def _bdqrtic(x):
    n = x.size
    k = n - 4
    x2 = x * x
    q = x2[:k] + 2 * x2[1:k + 1] + 3 * x2[2:k + 2] + 4 * x2[3:k + 3] + 5 * x2[-1]
    r = -4 * x[:k] + 3
    f = np.sum(r * r) + np.sum(q * q)
    g = np.zeros_like(x)
    g[:k] += -8 * r + 4 * q * x[:k]
    g[1:k + 1] += 8 * q * x[1:k + 1]
    g[2:k + 2] += 12 * q * x[2:k + 2]
    g[3:k + 3] += 16 * q * x[3:k + 3]
    g[-1] += 20 * x[-1] * np.sum(q)
    return _f(f), g


@_register("tridia", "TRIDIA (CUTE)",
           "(x_1 - 1)^2 + sum_{i=2}^n i (2 x_i - x_{i-1})^2", _const(1.0),
           xstar=lambda n: 0.5 ** np.arange(n), tags=("ill-conditioned",))
def _tridia(x):
    i = _idx(x)[1:]
    r = 2 * x[1:] - x[:-1]
    f = (x[0] - 1) ** 2 + np.sum(i * r * r)
    g = np.zeros_like(x)
    g[0] = 2 * (x[0] - 1)
    g[1:] += 4 * i * r
    g[:-1] -= 2 * i * r
    return _f(f), g


@_register("arwhead", "ARWHEAD (CUTE)",
           "sum_{i=1}^{n-1} (-4 x_i + 3) + (x_i^2 + x_n^2)^2", _const(1.0),
           xstar=lambda n: np.r_[np.ones(n - 1), 0.0])
def _arwhead(x):
    a = x[:-1]
    q = a * a + x[-1] ** 2
    f = np.sum(-4 * a + 3) + np.sum(q * q)
    g = np.empty_like(x)
    g[:-1] = -4 + 4 * a * q
    g[-1] = 4 * x[-1] * np.sum(q)
    return _f(f), g


@_register("nondia", "NONDIA (CUTE)",
           "(x_1 - 1)^2 + sum_{i=2}^n 100 (x_1 - x_{i-1}^2)^2", _const(-1.0),
           xstar=lambda n: np.ones(n))
def _nondia(x):
    r = x[0] - x[:-1] ** 2
    f = (x[0] - 1) ** 2 + 100 * np.sum(r * r)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * r
    g[0] += 2 * (x[0] - 1) + 200 * np.sum(r)
    return _f(f), g


@_register("dqdrtic", "DQDRTIC (CUTE)",
           "sum_{i=1}^{n-2} x_i^2 + 100 x_{i+1}^2 + 100 x_{i+2}^2", _const(3.0),
           min_n=3, xstar=lambda n: np.zeros(n))
def _dqdrtic(x):
    k = x.size - 2
    a, b, c = x[:k], x[1:k + 1], x[2:k + 2]
    f = np.sum(a * a) + 100 * np.sum(b * b) + 100 * np.sum(c * c)
    g = np.zeros_like(x)
    g[:k] += 2 * a
    g[1:k + 1] += 200 * b
    g[2:k + 2] += 200 * c
    return _f(f), g


@_register("eg2", "EG2 (CUTE)",
           "sum_{i=1}^{n-1} sin(x_1 + x_i^2 - 1) + sin(x_n^2) / 2", _const(1.0))
def _eg2(x):
    a = x[:-1]
    arg = x[0] + a * a - 1
    c = np.cos(arg)
    f = np.sum(np.sin(arg)) + 0.5 * np.sin(x[-1] ** 2)
    g = np.zeros_like(x)
    g[:-1] = 2 * a * c
    g[0] += np.sum(c)
    g[-1] += x[-1] * np.cos(x[-1] ** 2)
    return _f(f), g


def _make_dixmaan(letter, alpha, beta, gamma, delta, k1, k2, k3, k4):
    name = "dixmaan" + letter.lower()

    @_register(name, f"DIXMAAN{letter} (CUTE)",
               f"1 + sum_i {alpha} x_i^2 (i/n)^{k1}"
               f" + sum_{{i<n}} {beta} x_i^2 (x_{{i+1}} + x_{{i+1}}^2)^2 (i/n)^{k2}"
               f" + sum_{{i<=2m}} {gamma} x_i^2 x_{{i+m}}^4 (i/n)^{k3}"
               f" + sum_{{i<=m}} {delta} x_i x_{{i+2m}} (i/n)^{k4},  m = n // 3",
               _const(2.0), min_n=3)
    def _dixmaan(x):
        n = x.size
        m = n // 3
        w = _idx(x) / n
        x2 = x * x
        g = np.zeros_like(x)
        w1 = w ** k1
        f = 1 + alpha * np.sum(x2 * w1)
        g += 2 * alpha * x * w1
        if beta:
            a, b = x[:-1], x[1:]
            p = b + b * b
            w2 = w[:-1] ** k2
            f += beta * np.sum(x2[:-1] * p * p * w2)
            g[:-1] += 2 * beta * a * p * p * w2
            g[1:] += 2 * beta * x2[:-1] * p * (1 + 2 * b) * w2
        a, b = x[:2 * m], x[m:3 * m]
        w3 = w[:2 * m] ** k3
        b3 = b ** 3
        f += gamma * np.sum(a * a * b3 * b * w3)
        g[:2 * m] += 2 * gamma * a * b3 * b * w3
        g[m:3 * m] += 4 * gamma * a * a * b3 * w3
        a, c = x[:m], x[2 * m:3 * m]
        w4 = w[:m] ** k4
        f += delta * np.sum(a * c * w4)
        g[:m] += delta * c * w4
        g[2 * m:3 * m] += delta * a * w4
        return _f(f), g


for _args in [("A", 1.0, 0.0, 0.125, 0.125, 0, 0, 0, 0),
              ("B", 1.0, 0.0625, 0.0625, 0.0625, 0, 0, 0, 1),
              ("C", 1.0, 0.125, 0.125, 0.125, 0, 0, 0, 0),
              ("D", 1.0, 0.26, 0.26, 0.26, 0, 0, 0, 0),
              ("E", 1.0, 0.0, 0.125, 0.125, 1, 0, 0, 1),
              ("F", 1.0, 0.0625, 0.0625, 0.0625, 1, 0, 0, 1),
              ("G", 1.0, 0.125, 0.125, 0.125, 1, 0, 0, 1),
              ("H", 1.0, 0.26, 0.26, 0.26, 1, 0, 0, 1),
              ("I", 1.0, 0.0, 0.125, 0.125, 2, 0, 0, 2),
              ("J", 1.0, 0.0625, 0.0625, 0.0625, 2, 0, 0, 2),
              ("K", 1.0, 0.125, 0.125, 0.125, 2, 0, 0, 2),
              ("L", 1.0, 0.26, 0.26, 0.26, 2, 0, 0, 2)]:
    _make_dixmaan(*_args)


@_register("edensch", "EDENSCH (CUTE)",
           "16 + sum_{i=1}^{n-1} (x_i - 2)^4 + (x_i x_{i+1} - 2 x_{i+1})^2 + (x_{i+1} + 1)^2",
           _const(0.0))
def _edensch(x):
    a, b = x[:-1], x[1:]
    d = a - 2
    u = b * d
    v = b + 1
    d3 = d ** 3
    f = 16 + np.sum(d3 * d) + np.sum(u * u) + np.sum(v * v)
    g = np.zeros_like(x)
    g[:-1] = 4 * d3 + 2 * u * b
    g[1:] += 2 * u * d + 2 * v
    return _f(f), g


@_register("engval1", "ENGVAL1 (CUTE)",
           "sum_{i=1}^{n-1} (x_i^2 + x_{i+1}^2)^2 + (-4 x_i + 3)", _const(2.0))
def _engval1(x):
    a, b = x[:-1], x[1:]
    q = a * a + b * b
    f = np.sum(q * q) + np.sum(-4 * a + 3)
    g = np.zeros_like(x)
    g[:-1] = 4 * a * q - 4
    g[1:] += 4 * b * q
    return _f(f), g


@_register("liarwhd", "LIARWHD (CUTE)",
           "sum_i 4 (x_i^2 - x_1)^2 + (x_i - 1)^2", _const(4.0),
           xstar=lambda n: np.ones(n))
def _liarwhd(x):
    r = x * x - x[0]
    u = x - 1
    f = 4 * np.sum(r * r) + np.sum(u * u)
    g = 16 * x * r + 2 * u
    g[0] -= 8 * np.sum(r)
    return _f(f), g


@_register("nonscomp", "NONSCOMP (CUTE)",
           "(x_1 - 1)^2 + sum_{i=2}^n 4 (x_i - x_{i-1}^2)^2", _const(3.0),
           xstar=lambda n: np.ones(n))
def _nonscomp(x):
    r = x[1:] - x[:-1] ** 2
    f = (x[0] - 1) ** 2 + 4 * np.sum(r * r)
    g = np.zeros_like(x)
    g[0] = 2 * (x[0] - 1)
    g[1:] += 8 * r
    g[:-1] -= 16 * x[:-1] * r
    return _f(f), g


@_register("power", "POWER (CUTE)", "sum_i (i x_i)^2", _const(1.0),
           xstar=lambda n: np.zeros(n), tags=("ill-conditioned",))
def _power(x):
    i = _idx(x)
    ix = i * x
    return _f(np.sum(ix * ix)), 2 * i * ix


@_register("quartc", "QUARTC (CUTE)", "sum_i (x_i - 1)^4", _const(2.0),
           xstar=lambda n: np.ones(n), tags=("singular minimum",))
def _quartc(x):
    u = x - 1
    u3 = u ** 3
    return _f(np.sum(u3 * u)), 4 * u3


@_register("cube", "CUBE (CUTE)", "(x_1 - 1)^2 + sum_{i=2}^n 100 (x_i - x_{i-1}^3)^2",
           lambda n: _alt(n, -1.2, 1.0), xstar=lambda n: np.ones(n))
def _cube(x):
    r = x[1:] - x[:-1] ** 3
    f = (x[0] - 1) ** 2 + 100 * np.sum(r * r)
    g = np.zeros_like(x)
    g[0] = 2 * (x[0] - 1)
    g[1:] += 200 * r
    g[:-1] -= 600 * x[:-1] ** 2 * r
    return _f(f), g


@_register("fletchcr", "FLETCHCR (CUTE)",
           "sum_{i=1}^{n-1} 100 (x_{i+1} - x_i + 1 - x_i^2)^2", _const(0.0),
           xstar=lambda n: np.ones(n))
def _fletchcr(x):
    a, b = x[:-1], x[1:]
    r = b - a + 1 - a * a
    f = 100 * np.sum(r * r)
    g = np.zeros_like(x)
    g[:-1] = -200 * r * (1 + 2 * a)
    g[1:] += 200 * r
    return _f(f), g


@_register("ext_denschnb", "Extended DENSCHNB",
           "sum_{i=1}^{n/2} (x_{2i-1} - 2)^2 + (x_{2i-1} - 2)^2 x_{2i}^2 + (x_{2i} + 1)^2",
           _const(1.0), block=2)
def _ext_denschnb(x):
    a, b = _pairs(x)
    d = a - 2
    f = np.sum(d * d) + np.sum(d * d * b * b) + np.sum((b + 1) ** 2)
    return _f(f), _interleave(2 * d * (1 + b * b), 2 * d * d * b + 2 * (b + 1))


@_register("ext_denschnf", "Extended DENSCHNF",
           "sum_{i=1}^{n/2} (2 (x_{2i-1} + x_{2i})^2 + (x_{2i-1} - x_{2i})^2 - 8)^2"
           " + (5 x_{2i-1}^2 + (x_{2i} - 3)^2 - 9)^2",
           lambda n: _alt(n, 2.0, 0.0), block=2)
def _ext_denschnf(x):
    a, b = _pairs(x)
    p, m = a + b, a - b
    u = 2 * p * p + m * m - 8
    v = 5 * a * a + (b - 3) ** 2 - 9
    f = np.sum(u * u) + np.sum(v * v)
    ga = 2 * u * (4 * p + 2 * m) + 20 * v * a
    gb = 2 * u * (4 * p - 2 * m) + 4 * v * (b - 3)
    return _f(f), _interleave(ga, gb)


@_register("sinquad", "SINQUAD (CUTE)",
           "(x_1 - 1)^4 + sum_{i=2}^{n-1} (sin(x_i - x_n) - x_1^2 + x_i^2)^2 + (x_n^2 - x_1^2)^2",
           _const(0.1), min_n=3)
def _sinquad(x):
    x1, xn = x[0], x[-1]
    mid = x[1:-1]
    s = np.sin(mid - xn)
    c = np.cos(mid - xn)
    r = s - x1 * x1 + mid * mid
    e = xn * xn - x1 * x1
    f = (x1 - 1) ** 4 + np.sum(r * r) + e * e
    g = np.zeros_like(x)
    g[1:-1] = 2 * r * (c + 2 * mid)
    g[0] = 4 * (x1 - 1) ** 3 - 4 * x1 * np.sum(r) - 4 * x1 * e
    g[-1] = -2 * np.sum(r * c) + 4 * xn * e
    return _f(f), g


@_register("biggsb1", "BIGGSB1 (CUTE)",
           "(x_1 - 1)^2 + sum_{i=1}^{n-1} (x_{i+1} - x_i)^2 + (1 - x_n)^2", _const(0.0),
           xstar=lambda n: np.ones(n), tags=("ill-conditioned",))
def _biggsb1(x):
    d = x[1:] - x[:-1]
    f = (x[0] - 1) ** 2 + np.sum(d * d) + (1 - x[-1]) ** 2
    g = np.zeros_like(x)
    g[1:] += 2 * d
    g[:-1] -= 2 * d
    g[0] += 2 * (x[0] - 1)
    g[-1] -= 2 * (1 - x[-1])
    return _f(f), g


@_register("dixon3dq", "DIXON3DQ (CUTE)",
           "(x_1 - 1)^2 + sum_{j=2}^{n-1} (x_j - x_{j+1})^2 + (x_n - 1)^2", _const(-1.0),
           min_n=3, xstar=lambda n: np.ones(n), tags=("ill-conditioned",))
def _dixon3dq(x):
    d = x[1:-1] - x[2:]
    f = (x[0] - 1) ** 2 + np.sum(d * d) + (x[-1] - 1) ** 2
    g = np.zeros_like(x)
    g[0] = 2 * (x[0] - 1)
    g[1:-1] += 2 * d
    g[2:] -= 2 * d
    g[-1] += 2 * (x[-1] - 1)
    return _f(f), g


@_register("almost_perturbed_quadratic", "Almost Perturbed Quadratic",
           "sum_i i x_i^2 + (1/100) (x_1 + x_n)^2", _const(0.5),
           xstar=lambda n: np.zeros(n))
def _almost_perturbed_quadratic(x):
    i = _idx(x)
    s = x[0] + x[-1]
    g = 2 * i * x
    g[0] += 0.02 * s
    g[-1] += 0.02 * s
    return _f(np.sum(i * x * x) + 0.01 * s * s), g


@_register("gen_quartic", "Generalized Quartic",
           "sum_{i=1}^{n-1} x_i^2 + (x_{i+1} + x_i^2)^2", _const(1.0),
           xstar=lambda n: np.zeros(n))
def _gen_quartic(x):
    a, b = x[:-1], x[1:]
    u = b + a * a
    f = np.sum(a * a) + np.sum(u * u)
    g = np.zeros_like(x)
    g[:-1] = 2 * a + 4 * a * u
    g[1:] += 2 * u
    return _f(f), g


@_register("diagonal9", "Diagonal 9",
           "sum_{i=1}^{n-1} (exp(x_i) - i x_i) + 10000 x_n^2", _const(1.0))
def _diagonal9(x):
    i = _idx(x)[:-1]
    e = np.exp(x[:-1])
    f = np.sum(e - i * x[:-1]) + 10000 * x[-1] ** 2
    g = np.empty_like(x)
    g[:-1] = e - i
    g[-1] = 20000 * x[-1]
    return _f(f), g


@_register("staircase1", "Staircase 1 (STAIRCASE S1)",
           "sum_{i=1}^{n-1} (x_i + x_{i+1} - i)^2", _const(1.0))
def _staircase1(x):
    i = _idx(x)[:-1]
    r = x[:-1] + x[1:] - i
    g = np.zeros_like(x)
    g[:-1] = 2 * r
    g[1:] += 2 * r
    return _f(np.sum(r * r)), g
