r"""Run fastopt's first-order optimizers (``fastopt.optim``) through ``minimize``.

``fastopt.minimize(fun, x0, method="adam", jac=..., options={"lr": 1e-2,
"maxiter": 500})`` builds ``fastopt.optim.Adam([x], lr=1e-2)`` on a working copy
``x`` of ``x0`` and iterates

.. math::  g_k = \nabla f(x_k), \qquad x_{k+1} = \mathrm{step}(x_k, g_k)

(one evaluation per iteration, so ``nfev = nit + 1``) until
:math:`\|g_k\|_\infty \le` ``gtol`` or ``maxiter`` steps.  Any option other than
``maxiter``, ``maxfun``, ``gtol`` and ``disp`` is passed to the optimizer's
constructor (``lr``, ``betas``, ``momentum``, ``weight_decay``, ...).  The result
is the last iterate (first-order methods rarely reach a small gradient in few
steps; ``status = 1`` then says the iteration limit was hit).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._quasi_newton import CallbackStop, _call_callback
from ._scipy import optimize_result
from ._vector import norm_inf
from .objective import MaxFunReached, Objective
from .result import make_result

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["FIRST_ORDER_METHODS", "run_first_order"]

#: method name (lower case) -> class name in ``fastopt.optim``
FIRST_ORDER_METHODS: dict[str, str] = {
    "sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
    "adagrad": "Adagrad", "adadelta": "Adadelta",
}

DRIVER_OPTIONS = ("maxiter", "maxfun", "gtol", "disp")


def _optimizer_class(name: str):
    try:
        from fastopt import optim  # imported lazily: optional at this layer
    except ImportError as exc:  # pragma: no cover - depends on the build
        raise ImportError(f"method {name!r} needs fastopt.optim, which did not import: "
                          f"{exc}") from exc
    cls_name = FIRST_ORDER_METHODS[name]
    try:
        return getattr(optim, cls_name)
    except AttributeError:  # pragma: no cover
        raise ImportError(f"method {name!r}: fastopt.optim has no {cls_name}") from None


def run_first_order(obj: Objective, x: np.ndarray, name: str, options: dict[str, Any],
                    maxiter: int, maxfun: int | None, gtol: float,
                    callback: Callable[[OptimizeResult], Any] | None) -> OptimizeResult:
    """Iterate ``fastopt.optim.<name>`` on ``obj`` from ``x`` (flat, working dtype)."""
    cls = _optimizer_class(name)
    kwargs = {k: v for k, v in options.items() if k not in DRIVER_OPTIONS}
    p = np.array(x, copy=True, order="C")
    try:
        opt = cls([p], **kwargs)
    except TypeError as exc:
        raise TypeError(f"options for method {name!r}: {exc}") from exc
    shape = obj.shape
    nit = 0
    f, g = math.nan, None

    def result(reason, detail=""):
        return make_result(reason, x=p.reshape(shape).copy(), fun=f,
                           jac=None if g is None else g.reshape(shape),
                           nit=nit, nfev=obj.nfev, njev=obj.njev, detail=detail)

    while True:
        try:
            f, g = obj.fg(p)
        except MaxFunReached:
            return result("maxfun")
        if nit > 0:
            try:
                # built only if there is a callback; called at once (f, g, nit bound here)
                _call_callback(callback, lambda f=f, g=g, nit=nit: optimize_result(
                    x=p.reshape(shape).copy(), fun=f, jac=g.reshape(shape).copy(),
                    nit=nit, nfev=obj.nfev, njev=obj.njev))
            except CallbackStop:
                return result("callback")
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            return result("nonfinite", f"Non-finite objective after {nit} {name} steps; "
                          "a smaller lr may help.")
        if norm_inf(g) <= gtol:
            return result("gtol")
        if nit >= maxiter:
            return result("maxiter")
        if maxfun is not None and obj.nfev >= maxfun:
            return result("maxfun")
        opt.step([g])
        nit += 1
