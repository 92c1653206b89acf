"""The learning-rate range test (LR finder)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fastopt._validation import check_callable, check_int, check_real

__all__ = ["LRFinderResult", "lr_finder"]


@dataclass(frozen=True, eq=False)
class LRFinderResult:
    """Outcome of :func:`lr_finder`.

    Attributes
    ----------
    lrs : ndarray of shape (k,)
        Learning rates tried, in order (``k`` <= the number requested).
    losses : ndarray of shape (k,)
        Loss returned by ``step_fn`` at each of them.
    smoothed_losses : ndarray of shape (k,)
        Bias-corrected exponential moving average of ``losses``.
    suggested_lr : float or None
        Learning rate at which the smoothed loss falls fastest against
        ``log(lr)``; None if it never falls by more than rounding error (or
        too few points remain).
    diverged : bool
        Whether the run stopped early because the loss diverged (then the last
        entry is the diverging step, which the suggestion ignores).

    Examples
    --------
    >>> import math
    >>> res = lr_finder(lambda lr: 1.0 - math.tanh(math.log(lr / 0.01)),
    ...                 lrs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0], smooth=0.0, skip_start=0)
    >>> res.lrs.tolist(), res.diverged, res.suggested_lr   # the loss falls fastest at 0.01
    ([0.0001, 0.001, 0.01, 0.1, 1.0], False, 0.01)
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggested_lr: float | None
    diverged: bool

    def plot(self, ax: Any = None, *, skip_start: int = 0, skip_end: int = 0) -> Any:
        """Plot the smoothed loss against the learning rate (log axis); return the Axes.

        Imports matplotlib lazily. ``skip_start``/``skip_end`` drop points at
        either end (the start is often flat, the end explodes).
        """
        import matplotlib.pyplot as plt  # optional dependency

        if ax is None:
            _, ax = plt.subplots()
        end = len(self.lrs) - check_int(skip_end, "skip_end", 0)
        sl = slice(check_int(skip_start, "skip_start", 0), max(end, 0))
        ax.plot(self.lrs[sl], self.smoothed_losses[sl])
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed loss")
        if self.suggested_lr is not None:
            ax.axvline(self.suggested_lr, color="red", linestyle="--", label="suggested lr")
            ax.legend()
        return ax


def lr_finder(
    step_fn: Callable[[float], float],
    lrs: npt.ArrayLike | None = None,
    *,
    start_lr: float | None = None,
    end_lr: float | None = None,
    num: int | None = None,
    smooth: float = 0.98,
    diverge_factor: float | None = 4.0,
    skip_start: int = 10,
) -> LRFinderResult:
    r"""Learning-rate range test: train briefly with an exponentially growing lr.

    Calls ``step_fn(lr)`` once per learning rate, in increasing order; each
    call performs one training step at that lr and returns its loss
    :math:`L_i`. The losses are smoothed with a bias-corrected exponential
    moving average (:math:`\beta` = ``smooth``):

    .. math::

        a_i = \beta a_{i-1} + (1-\beta) L_i,\quad a_{-1} = 0, \qquad
        \hat L_i = \frac{a_i}{1 - \beta^{i+1}}

    The run stops early (*diverged*) at the first :math:`i > 0` with
    :math:`\hat L_i > \text{diverge\_factor} \cdot \min_{j<i} \hat L_j`, or when
    a loss is not finite. The suggested learning rate is the lr where the
    smoothed loss falls fastest,

    .. math::

        \text{suggested\_lr} = \eta_{i^*}, \qquad
        i^* = \arg\min_i \frac{d\hat L}{d\log\eta}\Big|_{\eta_i}

    with the derivative taken by ``numpy.gradient`` (central differences)
    over the points before any divergence, ignoring the first ``skip_start``
    points (the bias-corrected average rests on only a few noisy losses
    there). A common choice for training is this lr, or a bit below it.

    ``step_fn`` trains the model for real: save the parameters before and
    restore them afterwards.

    Parameters
    ----------
    step_fn : callable ``lr -> loss``
    lrs : array_like, optional
        Explicit, strictly increasing, positive learning rates. Do not combine
        with ``start_lr``, ``end_lr`` or ``num``.
    start_lr, end_lr : float, optional
        Range of the geometric sequence ``numpy.geomspace(start_lr, end_lr,
        num)`` (defaults 1e-7 and 10).
    num : int, optional
        Number of steps (>= 2, default 100).
    smooth : float, default 0.98
        :math:`\beta \in [0, 1)`; 0 disables smoothing.
    diverge_factor : float or None, default 4.0
        Stop when the smoothed loss exceeds this multiple (> 1) of its
        minimum; None stops only on non-finite losses. Assumes positive losses.
    skip_start : int, default 10
        Number of initial points the suggestion ignores (>= 0; torch-lr-finder's
        default). They stay in the result.

    Returns
    -------
    LRFinderResult

    Examples
    --------
    Gradient descent on ``0.5 * (w - t)**2`` with a target ``t`` that alternates
    between +1 and -1 (a noisy problem: the loss cannot reach 0); a step with
    ``lr > 2`` overshoots, so the loss explodes past ``lr = 2``:

    >>> state = {"w": 5.0, "t": 1.0}
    >>> def step(lr):
    ...     w, t = state["w"], state["t"]
    ...     state["w"], state["t"] = w - lr * (w - t), -t
    ...     return 0.5 * (w - t) ** 2
    >>> res = lr_finder(step, start_lr=1e-4, end_lr=10, num=100)
    >>> res.diverged, bool(res.lrs[-1] > 2), bool(1e-2 < res.suggested_lr < 2)
    (True, True, True)
    """
    check_callable(step_fn, "step_fn")
    if lrs is not None:
        named = (("start_lr", start_lr), ("end_lr", end_lr), ("num", num))
        given = [n for n, v in named if v is not None]
        if given:
            raise ValueError(
                f"lrs: expected either lrs or start_lr/end_lr/num, got lrs and {', '.join(given)}"
            )
        schedule = np.asarray(lrs)
        if schedule.dtype.kind not in "iuf":
            raise TypeError(f"lrs: expected real numbers, got dtype {schedule.dtype}")
        schedule = schedule.astype(np.float64)
        if schedule.ndim != 1 or schedule.size < 2:
            raise ValueError(
                f"lrs: expected a 1-d sequence of at least 2 values, got shape {schedule.shape}"
            )
        if not (np.all(np.isfinite(schedule)) and np.all(schedule > 0)):
            raise ValueError(f"lrs: expected finite values > 0, got {schedule.tolist()}")
        if not np.all(np.diff(schedule) > 0):
            raise ValueError(f"lrs: expected strictly increasing values, got {schedule.tolist()}")
    else:
        lo = 1e-7 if start_lr is None else check_real(start_lr, "start_lr", 0.0, closed="neither")
        hi = 10.0 if end_lr is None else check_real(end_lr, "end_lr", lo, closed="neither")
        count = 100 if num is None else check_int(num, "num", 2)
        schedule = np.geomspace(lo, hi, count)
    beta = check_real(smooth, "smooth", 0.0, 1.0, closed="left")
    skip = check_int(skip_start, "skip_start", 0)
    if diverge_factor is not None:
        diverge_factor = check_real(diverge_factor, "diverge_factor", 1.0, closed="neither")

    tried: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg = 0.0
    best = math.inf
    diverged = False
    for i, lr in enumerate(schedule):
        loss = check_real(step_fn(float(lr)), "step_fn(lr)", allow_inf=True, allow_nan=True)
        avg = beta * avg + (1.0 - beta) * loss
        s = avg / (1.0 - beta ** (i + 1))
        tried.append(float(lr))
        losses.append(loss)
        smoothed.append(s)
        exploded = diverge_factor is not None and i > 0 and s > diverge_factor * best
        if not math.isfinite(s) or exploded:
            diverged = True
            break
        best = min(best, s)

    n_ok = len(smoothed) - 1 if diverged else len(smoothed)
    suggested: float | None = None
    if n_ok - skip >= 2:
        window = np.asarray(smoothed[skip:n_ok])
        log_lrs = np.log(np.asarray(tried[skip:n_ok]))
        slopes = np.gradient(window, log_lrs)
        k = int(np.argmin(slopes))
        # a fall smaller than ~1000 ulps of the loss is rounding, not a fall
        noise = 1e3 * np.finfo(np.float64).eps * np.max(np.abs(window)) / np.min(np.diff(log_lrs))
        if slopes[k] < -noise:
            suggested = tried[skip + k]
    return LRFinderResult(
        lrs=np.asarray(tried),
        losses=np.asarray(losses),
        smoothed_losses=np.asarray(smoothed),
        suggested_lr=suggested,
        diverged=diverged,
    )
