"""Bound-constrained test problems: the collection with boxes, NNLS, bounded logistic.

* :func:`boxed_problem`: a problem of :mod:`fastopt.optimize.problems` with a box that cuts
  off its unconstrained minimiser ``x*`` (found once without bounds): on even indices
  ``[x0 - h, x0 + h]`` with ``h = |x* - x0| / 2`` (at least 0.05), on indices ``4j+1`` only
  the side facing ``x*``, indices ``4j+3`` free -- all four kinds of variable of
  L-BFGS-B (both bounds, one lower, one upper, none).
* :func:`nnls_problem`: ``min ||A x - b||^2 / 2`` subject to ``x >= 0``, the problem of
  :func:`scipy.optimize.nnls`.
* :func:`logistic_problem`: L2-regularised logistic regression with coefficients in
  ``[-c, c]``.

Each returns a :class:`BoundedProblem`: ``fg``, ``x0``, ``lower``, ``upper``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .problems import PROBLEMS

__all__ = ["BoundedProblem", "boxed_problem", "nnls_problem", "logistic_problem",
           "box_around"]


@dataclass
class BoundedProblem:
    """A bound-constrained problem: value and gradient, start, box (``±inf`` open)."""

    name: str
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]]
    x0: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def bounds(self) -> list[tuple[float | None, float | None]]:
        """scipy's ``(lo, hi)`` pairs, None for an open side."""
        return [(None if not np.isfinite(a) else float(a),
                 None if not np.isfinite(b) else float(b))
                for a, b in zip(self.lower, self.upper)]


def box_around(x0: np.ndarray, xstar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mixed box of :func:`boxed_problem` for a start ``x0`` and a minimiser ``xstar``."""
    n = x0.size
    h = np.maximum(0.5 * np.abs(xstar - x0), 0.05)
    lower = np.full(n, -np.inf)
    upper = np.full(n, np.inf)
    i = np.arange(n)
    both = i % 2 == 0
    one = i % 4 == 1
    lower[both] = x0[both] - h[both]
    upper[both] = x0[both] + h[both]
    towards_up = xstar >= x0
    up_only = one & towards_up
    lo_only = one & ~towards_up
    upper[up_only] = x0[up_only] + h[up_only]
    lower[lo_only] = x0[lo_only] - h[lo_only]
    return lower, upper


def boxed_problem(name: str, n: int, xstar: np.ndarray) -> BoundedProblem:
    """Problem ``name`` of the collection at its admissible size near ``n``, boxed so that
    ``xstar`` (its unconstrained minimiser from the standard start) is cut off."""
    p = PROBLEMS[name]
    m = p.admissible_n(n)
    x0 = p.x0(m)
    lower, upper = box_around(x0, np.asarray(xstar, dtype=np.float64))
    return BoundedProblem(f"{name}[{m}]", p.fg, x0, lower, upper)


def nnls_problem(rows: int, cols: int, seed: int = 0) -> BoundedProblem:
    """``min ||A x - b||^2 / 2, x >= 0`` with Gaussian ``A`` and ``b = A x_true + noise``
    where half of ``x_true`` is negative (so half the bounds are active)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((rows, cols))
    x_true = rng.standard_normal(cols)
    b = A @ x_true + 0.1 * rng.standard_normal(rows)

    def fg(x):
        r = A @ x - b
        return 0.5 * float(r @ r), A.T @ r

    # the data, for scipy.optimize.nnls
    fg.A, fg.b = A, b        # type: ignore[attr-defined]
    return BoundedProblem(f"nnls[{rows}x{cols}]", fg, np.zeros(cols), np.zeros(cols),
                          np.full(cols, np.inf))


def logistic_problem(samples: int, features: int, c: float = 0.5, alpha: float = 1e-2,
                     seed: int = 0) -> BoundedProblem:
    """Mean logistic loss plus ``alpha/2 ||w||^2`` with ``-c <= w <= c``; the data come
    from large true coefficients, so many bounds are active at the solution."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, features))
    w_true = 3.0 * rng.standard_normal(features)
    y = np.where(X @ w_true + rng.standard_normal(samples) > 0, 1.0, -1.0)

    def fg(w):
        z = y * (X @ w)
        loss = np.logaddexp(0.0, -z)
        s = -y * np.exp(-np.logaddexp(0.0, z))      # d loss / d (X w) = -y sigmoid(-z)
        f = float(loss.mean()) + 0.5 * alpha * float(w @ w)
        return f, X.T @ s / samples + alpha * w

    return BoundedProblem(f"logistic[{samples}x{features}]", fg, np.zeros(features),
                          np.full(features, -c), np.full(features, c))
