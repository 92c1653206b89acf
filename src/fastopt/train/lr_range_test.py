"""The learning-rate range test (LR finder)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from fastopt.train._common import _as_int, _as_real

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
        end = len(self.lrs) - _as_int(skip_end, "skip_end", 0)
        sl = slice(_as_int(skip_start, "skip_start", 0), max(end, 0))
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
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable, got {type(step_fn).__name__}")
    if lrs is not None:
        named = (("start_lr", start_lr), ("end_lr", end_lr), ("num", num))
        given = [n for n, v in named if v is not None]
        if given:
            raise ValueError(
                f"pass either lrs or start_lr/end_lr/num, not both (got lrs and {given})"
            )
        schedule = np.asarray(lrs)
        if schedule.dtype.kind not in "iuf":
            raise TypeError(f"lrs must be real numbers, got dtype {schedule.dtype}")
        schedule = schedule.astype(np.float64)
        if schedule.ndim != 1 or schedule.size < 2:
            raise ValueError(f"lrs must be 1-D with at least 2 values, got shape {schedule.shape}")
        if not (np.all(np.isfinite(schedule)) and np.all(schedule > 0)):
            raise ValueError("lrs must be finite and > 0")
        if not np.all(np.diff(schedule) > 0):
            raise ValueError("lrs must be strictly increasing")
    else:
        lo = 1e-7 if start_lr is None else _as_real(start_lr, "start_lr")
        hi = 10.0 if end_lr is None else _as_real(end_lr, "end_lr")
        count = 100 if num is None else _as_int(num, "num", 2)
        if not (math.isfinite(lo) and lo > 0):
            raise ValueError(f"start_lr must be finite and > 0, got {lo}")
        if not (math.isfinite(hi) and hi > lo):
            raise ValueError(f"end_lr must be finite and > start_lr ({lo}), got {hi}")
        schedule = np.geomspace(lo, hi, count)
    beta = _as_real(smooth, "smooth")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {beta}")
    skip = _as_int(skip_start, "skip_start", 0)
    if diverge_factor is not None:
        diverge_factor = _as_real(diverge_factor, "diverge_factor")
        if not diverge_factor > 1.0:
            raise ValueError(f"diverge_factor must be > 1 or None, got {diverge_factor}")

    tried: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg = 0.0
    best = math.inf
    diverged = False
    for i, lr in enumerate(schedule):
        loss = _as_real(step_fn(float(lr)), "step_fn's return value")
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
