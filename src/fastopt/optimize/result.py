"""Status table and :class:`scipy.optimize.OptimizeResult` construction.

Every way a fastopt minimizer can stop has one entry in :data:`STATUS`: a *reason*
key, the integer ``status`` scipy reports for it, whether it counts as ``success``,
and a fixed message.  The statuses are scipy's (``scikit-learn`` and other clients
test ``status != 0``): 0 for every kind of convergence, 1 for an iteration or
evaluation limit, 2 for a line-search or precision failure, 3 for NaN, 99 for a
callback's ``StopIteration``.  fastopt's finer reason is the result's ``reason``
field and begins the message's second part; a few reasons (line-search failures,
non-finite values) append a sentence saying what exactly went wrong.

=======  ===========  =======  =====================================================
status   reason       success  meaning
=======  ===========  =======  =====================================================
0        gtol         yes      ``max|g_i| <= gtol``
0        ftol         yes      ``(f_k - f_{k+1}) <= ftol * max(|f_k|, |f_{k+1}|, 1)``
0        xtol         yes      ``max|x_{k+1} - x_k| <= xtol * (xtol + max|x_k|)``
1        maxiter      no       iteration limit reached
1        maxfun       no       function-evaluation limit reached
2        linesearch   no       line search failed twice (precision loss or bad gradient)
2        unbounded    no       ``f`` kept decreasing up to the largest step allowed
3        nonfinite    no       ``fun`` or the gradient returned NaN or Inf
99       callback     no       the callback raised ``StopIteration``
=======  ===========  =======  =====================================================
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._scipy import optimize_result

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["STATUS", "Stop", "make_result", "CHECK_GRAD_HINT"]


class Stop(NamedTuple):
    status: int
    success: bool
    message: str


CHECK_GRAD_HINT = ("If this happens far from a minimum, check the gradient with "
                   "fastopt.check_grad(fun, jac, x).")

STATUS: dict[str, Stop] = {
    "gtol": Stop(0, True, "Optimization terminated successfully: the gradient "
                 "max-norm is at most gtol."),
    "ftol": Stop(0, True, "Optimization terminated successfully: the relative "
                 "reduction of f is at most ftol."),
    "xtol": Stop(0, True, "Optimization terminated successfully: the step is at "
                 "most xtol relative to x."),
    "maxiter": Stop(1, False, "Maximum number of iterations has been exceeded."),
    "maxfun": Stop(1, False, "Maximum number of function evaluations has been exceeded."),
    "linesearch": Stop(2, False, "Desired error not necessarily achieved due to precision "
                       "loss or an inaccurate gradient: the line search failed."),
    "unbounded": Stop(2, False, "Desired error not necessarily achieved: the objective "
                      "seems unbounded below; it kept decreasing along the search "
                      "direction up to the largest step allowed."),
    "nonfinite": Stop(3, False, "NaN or Inf result encountered."),
    "callback": Stop(99, False, "`callback` raised `StopIteration`."),
}


def make_result(reason: str, *, x: np.ndarray, fun: float, jac: np.ndarray | None,
                nit: int, nfev: int, njev: int, detail: str = "",
                **extra: Any) -> OptimizeResult:
    """Build the :class:`~scipy.optimize.OptimizeResult` for a stop ``reason``.

    Parameters
    ----------
    reason : str
        A key of :data:`STATUS` (also the result's ``reason`` field).
    x, fun, jac, nit, nfev, njev
        The final point and the counters.
    detail : str
        Appended to the fixed message (what failed, where).
    **extra
        Further fields (``hess_inv``, ...).
    """
    stop = STATUS[reason]
    message = stop.message if not detail else f"{stop.message} {detail}"
    res = optimize_result(x=x, fun=float(fun), jac=jac, nit=int(nit), nfev=int(nfev),
                         njev=int(njev), status=stop.status, success=stop.success,
                         message=message, reason=reason)
    res.update(extra)
    return res
