r"""OWL-QN: L-BFGS for :math:`f(x) + \sum_i c_i |x_i|` (Andrew & Gao, ICML 2007).

The objective :math:`F(x) = f(x) + \sum_i c_i |x_i|` is not differentiable where
some :math:`x_i = 0`.  OWL-QN works with the *pseudo-gradient* (the minimum-norm
element of the subdifferential)

.. math::
    \diamond_i F(x) = \begin{cases}
        g_i + c_i\,\mathrm{sign}(x_i) & x_i \ne 0\\
        g_i + c_i & x_i = 0,\ g_i + c_i < 0\\
        g_i - c_i & x_i = 0,\ g_i - c_i > 0\\
        0 & \text{otherwise,}
    \end{cases}

takes the L-BFGS direction :math:`d = -H\,\diamond F` built from the pairs of the
*smooth* part (:math:`y = \nabla f_{k+1} - \nabla f_k`), zeroes the components of
:math:`d` whose sign disagrees with :math:`-\diamond F`, and searches along the
projected path :math:`x(\alpha) = \pi(x + \alpha d; \xi)` which stays in the
orthant :math:`\xi_i = \mathrm{sign}(x_i)` (or :math:`\mathrm{sign}(-\diamond_i F)`
when :math:`x_i = 0`): components that would cross zero are set to exactly zero.
The step is accepted when

.. math::  F(x(\alpha)) \le F(x) + c_1\, \diamond F(x)^T (x(\alpha) - x)

(backtracking with safeguarded quadratic interpolation), or, where differences
of :math:`F` are at rounding level, by the approximate Wolfe test of the
Moré–Thuente search applied to :math:`F = f + c^T\!\operatorname{diag}(\xi) x`,
smooth inside the orthant.  The solution has exact
zeros; the run stops when :math:`\|\diamond F\|_\infty \le` ``gtol``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._quasi_newton import (
    CallbackStop,
    QNOptions,
    _call_callback,
    _failure_detail,
    final_result,
    first_step,
    intermediate_result,
    stop_reason,
)
from ._vector import dot, norm_inf
from .lbfgs import LbfgsMemory
from .objective import MaxFunReached, Objective

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["pseudo_gradient", "run_owlqn"]


def pseudo_gradient(x: np.ndarray, g: np.ndarray, c) -> np.ndarray:
    r"""Minimum-norm subgradient :math:`\diamond F` of :math:`f + \sum c_i|x_i|`."""
    pg = g + c * np.sign(x)
    zero = x == 0
    if np.any(zero):
        gz = g[zero]
        cz = c[zero] if np.ndim(c) else c
        pz = np.where(gz + cz < 0, gz + cz, np.where(gz - cz > 0, gz - cz, 0.0))
        pg[zero] = pz
    return pg.astype(g.dtype, copy=False)


def _l1(x, c) -> float:
    if np.ndim(c):
        return dot(np.abs(x), c.astype(x.dtype, copy=False))
    return float(c) * float(np.sum(np.abs(x), dtype=np.float64))


def run_owlqn(obj: Objective, x: np.ndarray, memory: LbfgsMemory, l1, opts: QNOptions,
              callback: Callable[[OptimizeResult], Any] | None,
              finalize: Callable[[OptimizeResult], OptimizeResult]) -> OptimizeResult:
    """Minimise ``f(x) + sum(l1 * |x|)`` with OWL-QN from ``x`` (flat, working dtype)."""
    c = l1
    nit = 0
    step = 0.0

    def result(reason, x, F, pg, detail=""):
        return final_result(obj, finalize, reason, nit, x, F, pg, detail)

    def intermediate():
        return intermediate_result(obj, nit, x, F, pg, step)

    x = x.copy()
    try:
        f, g = obj.fg(x)
    except MaxFunReached:
        return result("maxfun", x, math.nan, None)
    F = f + _l1(x, c)
    if not (math.isfinite(F) and np.all(np.isfinite(g))):
        return result("nonfinite", x, F, None, "The objective or its gradient is not finite at x0.")
    pg = pseudo_gradient(x, g, c)
    if norm_inf(pg) <= opts.gtol:
        return result("gtol", x, F, pg)
    if opts.maxiter <= 0:
        return result("maxiter", x, F, pg)
    retried_after = None
    f_avg, f_q = abs(F), 1.0      # running average of |F| (Hager-Zhang), scales fnoise
    while True:
        if memory.is_empty():
            d = -pg
            alpha0 = first_step(x, F, pg)
        else:
            d = memory.direction(pg)
            d[d * pg >= 0] = 0.0          # keep only components that descend
            alpha0 = 1.0
        slope = dot(pg, d)
        if not slope < 0.0:
            memory.reset()
            d = -pg
            alpha0 = first_step(x, F, pg)
            slope = dot(pg, d)
        orthant = np.where(x != 0, np.sign(x), np.sign(-pg))
        # ---- projected backtracking
        alpha = alpha0
        accepted = None
        nls = 0
        # lowest F seen: (F, x, f); gbest its gradient, asked for only when needed
        best: tuple[float, np.ndarray | None, float] = (F, None, f)
        gbest: np.ndarray | None = None
        prev = None
        try:
            while nls < opts.maxls:
                xt = x + d * alpha
                xt[np.sign(xt) != orthant] = 0.0
                ft = obj.f(xt)
                nls += 1
                Ft = ft + _l1(xt, c)
                if not math.isfinite(Ft):
                    alpha *= 0.1
                    continue
                if Ft < best[0]:
                    best = (Ft, xt, ft)
                dphi0 = dot(pg, xt - x)      # alpha * phi'(0) along the projected step
                if Ft <= F + opts.c1 * dphi0 and Ft < F:
                    accepted = (xt, ft, Ft)
                    break
                if Ft <= F + opts.fnoise * f_avg and dphi0 < 0.0:
                    # f differences at rounding level: approximate Wolfe test on the
                    # derivative of F = f + c * orthant' x (smooth inside the orthant)
                    dphi = dot(obj.grad(xt) + c * orthant, xt - x)
                    if dphi <= (2 * opts.c1 - 1) * dphi0 and abs(dphi) <= opts.c2 * -dphi0:
                        accepted = (xt, ft, Ft)
                        break
                # safeguarded quadratic step along the (piecewise) line
                denom = 2.0 * (Ft - F - slope * alpha)
                new = -slope * alpha * alpha / denom if denom > 0 else 0.5 * alpha
                prev = alpha
                alpha = min(max(new, 0.1 * prev), 0.5 * prev)
            if accepted is None and best[1] is not None:
                gbest = obj.grad(best[1])
        except MaxFunReached:
            if best[1] is not None and best[0] < F:
                x, F = best[1], best[0]
                return result("maxfun", x, F, None)
            return result("maxfun", x, F, pg)
        if accepted is not None:
            xt, ft, Ft = accepted
            try:
                gt = obj.grad(xt)
            except MaxFunReached:
                return result("maxfun", xt, Ft, None)
            retried_after = None
            memory.update_from(xt, x, gt, g)
            F_old, x_old = F, x
            step = alpha
            x, f, g, F = xt, ft, gt, Ft
        else:
            msg = (f"OWL-QN backtracking: sufficient decrease was not reached after {nls} "
                   f"evaluations.")
            best_x = best[1]
            moved = best_x is not None and best[0] < F
            if moved:
                assert best_x is not None and gbest is not None   # set together above
                F_old, x_old = F, x
                x, f, F, g = best_x, best[2], best[0], gbest
                step = alpha
            if retried_after is None and (moved or not memory.is_empty()):
                retried_after = msg
                memory.reset()
                if not moved:
                    continue
            else:
                pg = pseudo_gradient(x, g, c)
                return result("linesearch", x, F, pg, _failure_detail(msg, retried_after))
        pg = pseudo_gradient(x, g, c)
        nit += 1
        f_q = 0.7 * f_q + 1.0
        f_avg += (abs(F) - f_avg) / f_q
        try:
            _call_callback(callback, intermediate)
        except CallbackStop:
            return result("callback", x, F, pg)
        reason = stop_reason(opts, obj, nit, math.isfinite(F) and bool(np.all(np.isfinite(g))),
                             norm_inf(pg), F_old, F, x_old, x)
        if reason is not None:
            return result(reason, x, F, pg)
