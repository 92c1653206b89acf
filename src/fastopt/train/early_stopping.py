"""Early stopping: stop when the validation metric stops improving, keep the best parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from fastopt._validation import (
    check_array_list,
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_same_structure,
    check_state_dict,
)
from fastopt.train._common import ArrayOrArrays, readonly_views, same_layout

__all__ = ["EarlyStopping"]


class EarlyStopping:
    r"""Stop training when a validation metric stops improving; keep the best parameters.

    Each :meth:`update` is one evaluation (usually one epoch). An update
    *improves* when

    .. math::

        \text{mode="min"}:\; m < m_{\text{best}} - \delta, \qquad
        \text{mode="max"}:\; m > m_{\text{best}} + \delta

    with :math:`\delta` = ``min_delta``. On an improvement the metric, the step
    index and a copy of the parameters are stored. :meth:`update` returns
    ``True`` once ``patience`` consecutive updates have brought no improvement.
    A NaN metric never improves.

    Two ways to use it (the lecture's two options):

    * *stop when the validation metric falls*: ``if es.update(acc, params): break``.
      With ``restore_best=True`` the update that returns ``True`` for the first
      time also copies the best parameters back into ``params``, in place.
    * *train to the end and keep the best*: ``EarlyStopping(patience=None)``
      never asks to stop; call ``es.restore(params)`` after the last epoch.

    Parameters
    ----------
    patience : int or None
        Number of consecutive updates without improvement after which
        :meth:`update` returns ``True`` (>= 1). ``None``: never.
    min_delta : float, default 0.0
        Minimum change (>= 0) that counts as an improvement.
    mode : {"min", "max"}, default "min"
        ``"min"`` for a loss, ``"max"`` for an accuracy.
    restore_best : bool, default True
        Copy the best parameters into ``params`` when :meth:`update` first
        signals a stop.

    Attributes
    ----------
    best_score : float
        Best metric so far (``inf`` for "min" / ``-inf`` for "max" before any
        improvement).
    best_step : int or None
        Index (0-based count of :meth:`update` calls) of the best metric.
    num_steps : int
        Number of :meth:`update` calls so far.
    num_bad_steps : int
        Consecutive updates without improvement.

    Examples
    --------
    >>> import numpy as np
    >>> w = [np.zeros(2)]
    >>> es = EarlyStopping(patience=2, mode="max")
    >>> for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65]):
    ...     w[0][:] = epoch                    # "training"
    ...     if es.update(acc, w):
    ...         break
    >>> es.best_score, es.best_step, w[0]
    (0.7, 1, array([1., 1.]))
    """

    _STATE_KEYS = (
        "patience",
        "min_delta",
        "mode",
        "restore_best",
        "best_score",
        "best_step",
        "num_steps",
        "num_bad_steps",
        "best_params",
    )

    def __init__(
        self,
        patience: int | None,
        min_delta: float = 0.0,
        mode: Literal["min", "max"] = "min",
        restore_best: bool = True,
    ) -> None:
        if patience is not None:
            patience = check_int(patience, "patience", 1)
        self.patience = patience
        self.min_delta = check_real(min_delta, "min_delta", 0.0)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.restore_best = check_bool(restore_best, "restore_best")
        self.best_score = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.num_steps = 0
        self.num_bad_steps = 0
        self._best_params: list[np.ndarray] | None = None

    def _improves(self, metric: float) -> bool:
        if self.mode == "min":
            return metric < self.best_score - self.min_delta
        return metric > self.best_score + self.min_delta

    @property
    def should_stop(self) -> bool:
        """Whether ``patience`` consecutive updates have brought no improvement."""
        return self.patience is not None and self.num_bad_steps >= self.patience

    @property
    def best_params(self) -> list[np.ndarray] | None:
        """Read-only views of the stored best parameters (``None`` if none stored)."""
        return None if self._best_params is None else readonly_views(self._best_params)

    def update(self, metric: float, params: ArrayOrArrays | None = None) -> bool:
        """Record one evaluation; return ``True`` when training should stop.

        Parameters
        ----------
        metric : float
            The validation metric of the current parameters.
        params : list of ndarray, optional
            The current parameters. On an improvement they are copied (the
            copy is what :meth:`restore` writes back). An improvement without
            ``params`` discards any stored copy, so a stale copy is never restored.

        Returns
        -------
        bool
            :attr:`should_stop`. When it becomes ``True`` (exactly ``patience``
            bad updates) and ``restore_best`` is set, the best parameters have
            been copied into ``params`` in place.
        """
        value = check_real(metric, "metric", allow_inf=True, allow_nan=True)
        plist = None if params is None else check_array_list(params, "params", floating=False)
        stopping_now = False
        if self._improves(value):
            if plist is None:
                self._best_params = None
            elif self._best_params is not None and same_layout(self._best_params, plist):
                for b, p in zip(self._best_params, plist):  # reuse the buffers
                    np.copyto(b, p)
            else:
                self._best_params = [np.array(p, copy=True) for p in plist]
            self.best_score = value
            self.best_step = self.num_steps
            self.num_bad_steps = 0
        else:
            stopping_now = self.patience is not None and self.num_bad_steps + 1 == self.patience
            if (
                stopping_now
                and self.restore_best
                and plist is not None
                and self._best_params is not None
            ):
                self.restore(plist)  # validates before writing
            self.num_bad_steps += 1
        self.num_steps += 1
        return self.should_stop

    def restore(self, params: ArrayOrArrays) -> None:
        """Copy the best parameters into ``params`` in place.

        Raises
        ------
        RuntimeError
            If no parameters were stored (no improvement with ``params`` yet).
        ValueError
            If ``params`` differ from the stored copy in count, shape or dtype,
            or are read-only.
        """
        if self._best_params is None:
            raise RuntimeError("no best parameters stored: pass params to update()")
        plist = check_array_list(params, "params", writeable=True, floating=False)
        check_same_structure(plist, self._best_params, "params", dtype=True)
        for p, b in zip(plist, self._best_params):
            np.copyto(p, b)

    def state_dict(self) -> dict[str, Any]:
        """Return the configuration and state as a plain dict (arrays are copies)."""
        return {
            "patience": self.patience,
            "min_delta": self.min_delta,
            "mode": self.mode,
            "restore_best": self.restore_best,
            "best_score": self.best_score,
            "best_step": self.best_step,
            "num_steps": self.num_steps,
            "num_bad_steps": self.num_bad_steps,
            "best_params": None
            if self._best_params is None
            else [b.copy() for b in self._best_params],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a dict made by :meth:`state_dict` (arrays are copied)."""
        check_state_dict(state_dict, self._STATE_KEYS)
        fresh = EarlyStopping(
            state_dict["patience"],
            state_dict["min_delta"],
            state_dict["mode"],
            state_dict["restore_best"],
        )
        best_score = check_real(state_dict["best_score"], "state_dict['best_score']",
                                allow_inf=True)
        best_step = state_dict["best_step"]
        if best_step is not None:
            best_step = check_int(best_step, "state_dict['best_step']", 0)
        num_steps = check_int(state_dict["num_steps"], "state_dict['num_steps']", 0)
        num_bad = check_int(state_dict["num_bad_steps"], "state_dict['num_bad_steps']", 0)
        best = state_dict["best_params"]
        if best is not None:
            best = [
                np.array(b, copy=True)
                for b in check_array_list(best, "state_dict['best_params']", floating=False)
            ]
        self.__dict__.update(fresh.__dict__)
        self.best_score, self.best_step = best_score, best_step
        self.num_steps, self.num_bad_steps = num_steps, num_bad
        self._best_params = best

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}, restore_best={self.restore_best}; best_score="
            f"{self.best_score}, best_step={self.best_step}, num_bad_steps={self.num_bad_steps})"
        )
