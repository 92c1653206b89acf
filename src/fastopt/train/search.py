"""Training practice: the habits that make gradient training work.

* :class:`EarlyStopping` -- stop when the validation metric stops improving,
  keep (and restore) the best parameters;
* :func:`random_search` / :func:`grid_search` -- hyperparameter search over
  :class:`LogUniform`, :class:`Uniform`, :class:`IntUniform` and
  :class:`Choice` dimensions, serially or on any ``concurrent.futures``
  executor;
* :func:`lr_finder` -- the learning-rate range test;
* :func:`check_grad`, :func:`numerical_gradient`,
  :func:`numerical_gradient_array`, :func:`relative_error` -- gradient checks
  by central differences;
* :func:`clip_grad_norm` (with :func:`total_norm` and
  :func:`clip_grads_with_norm`) -- global-norm gradient clipping with
  ``torch.nn.utils.clip_grad_norm_`` semantics;
* :class:`EMA` -- exponential moving average (Polyak averaging) of weights;
* :func:`ensemble_average` -- averaging the probability outputs of models.

Parameters are always a list of numpy arrays, updated in place where a
function says so. Bad arguments raise :class:`TypeError` or :class:`ValueError`
naming the argument, and nothing is modified when a call raises.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import pickle
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence, Union

import numpy as np
import numpy.typing as npt

from fastopt import _kernels
from fastopt.init import _as_generator

__all__ = [
    "EarlyStopping",
    "EMA",
    "ensemble_average",
    "Uniform",
    "LogUniform",
    "IntUniform",
    "Choice",
    "Trial",
    "random_search",
    "grid_search",
    "LRFinderResult",
    "lr_finder",
    "numerical_gradient",
    "numerical_gradient_array",
    "relative_error",
    "check_grad",
    "total_norm",
    "clip_grads_with_norm",
    "clip_grad_norm",
]

ArrayOrArrays = Union[np.ndarray, Sequence[np.ndarray]]
SeedLike = Union[None, int, np.integer, np.random.Generator]


# =============================================================================
# argument checking (shared by everything below)
# =============================================================================
def _is_real(value: object) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(
        value, (bool, np.bool_)
    )


def _as_real(value: object, name: str) -> float:
    """Return ``value`` as a float; TypeError naming ``name`` if it is not a real scalar."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond the double range: +-inf, then range-checked
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _as_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_array_list(
    arrays: ArrayOrArrays, name: str, *, writeable: bool = False, floating: bool = True
) -> list[np.ndarray]:
    """Return ``arrays`` (one ndarray or a sequence of them) as a list, checked.

    Raises TypeError for non-arrays or (if ``floating``) non-floating dtypes and
    ValueError for read-only arrays when ``writeable``.
    """
    if isinstance(arrays, np.ndarray):
        out = [arrays]
    elif isinstance(arrays, (list, tuple)):
        out = list(arrays)
    else:
        raise TypeError(
            f"{name} must be a numpy array or a list of numpy arrays, got {type(arrays).__name__}"
        )
    for i, a in enumerate(out):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a numpy array, got {type(a).__name__}")
        if floating and a.dtype.kind != "f":
            raise TypeError(f"{name}[{i}] must have a floating dtype, got {a.dtype}")
        if writeable and not a.flags.writeable:
            raise ValueError(f"{name}[{i}] is read-only; it is updated in place")
    return out


def _check_same_structure(
    arrays: list[np.ndarray], reference: list[np.ndarray], name: str, *, dtype: bool = False
) -> None:
    """ValueError naming ``name`` unless ``arrays`` match ``reference`` in count and shapes."""
    if len(arrays) != len(reference):
        raise ValueError(f"{name} has {len(arrays)} arrays, expected {len(reference)}")
    for i, (a, r) in enumerate(zip(arrays, reference)):
        if a.shape != r.shape:
            raise ValueError(f"{name}[{i}] has shape {a.shape}, expected {r.shape}")
        if dtype and a.dtype != r.dtype:
            raise ValueError(f"{name}[{i}] has dtype {a.dtype}, expected {r.dtype}")


def _check_state_dict(state_dict: Any, keys: Iterable[str]) -> None:
    """TypeError unless ``state_dict`` is a mapping, ValueError if it lacks any of ``keys``."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    missing = set(keys) - set(state_dict)
    if missing:
        raise ValueError(f"state_dict is missing keys {sorted(missing)}")


def _same_layout(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(a, b))


def _check_choice(value: object, name: str, options: tuple) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


# =============================================================================
# early stopping
# =============================================================================
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
            patience = _as_int(patience, "patience", 1)
        min_delta = _as_real(min_delta, "min_delta")
        if not (min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"min_delta must be finite and >= 0, got {min_delta}")
        _check_choice(mode, "mode", ("min", "max"))
        if not isinstance(restore_best, (bool, np.bool_)):
            raise TypeError(f"restore_best must be a bool, got {type(restore_best).__name__}")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.restore_best = bool(restore_best)
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
        if self._best_params is None:
            return None
        views = []
        for b in self._best_params:
            v = b.view()
            v.flags.writeable = False
            views.append(v)
        return views

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
        value = _as_real(metric, "metric")
        plist = None if params is None else _as_array_list(params, "params", floating=False)
        stopping_now = False
        if self._improves(value):
            if plist is None:
                self._best_params = None
            elif self._best_params is not None and _same_layout(self._best_params, plist):
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
        plist = _as_array_list(params, "params", writeable=True, floating=False)
        _check_same_structure(plist, self._best_params, "params", dtype=True)
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
        _check_state_dict(state_dict, self._STATE_KEYS)
        fresh = EarlyStopping(
            state_dict["patience"],
            state_dict["min_delta"],
            state_dict["mode"],
            state_dict["restore_best"],
        )
        best_score = _as_real(state_dict["best_score"], "state_dict['best_score']")
        best_step = state_dict["best_step"]
        if best_step is not None:
            best_step = _as_int(best_step, "state_dict['best_step']", 0)
        num_steps = _as_int(state_dict["num_steps"], "state_dict['num_steps']", 0)
        num_bad = _as_int(state_dict["num_bad_steps"], "state_dict['num_bad_steps']", 0)
        best = state_dict["best_params"]
        if best is not None:
            best = [
                np.array(b, copy=True)
                for b in _as_array_list(best, "state_dict['best_params']", floating=False)
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


# =============================================================================
# weight averaging
# =============================================================================
class EMA:
    r"""Exponential moving average of parameters (Polyak averaging).

    Keeps a shadow copy :math:`s` of each parameter :math:`p` and, on each
    :meth:`update`, computes

    .. math::

        s \leftarrow d_n\, s + (1 - d_n)\, p
        \qquad (\text{as } s + (1 - d_n)(p - s)),

        d_n = \begin{cases}
              \min\!\big(d, \frac{1 + n}{10 + n}\big) & \text{warmup=True} \\
              d & \text{otherwise}
              \end{cases}

    where :math:`d` is ``decay`` and :math:`n` the number of updates done
    before this one (0 for the first). The warmup (TensorFlow's
    ``ExponentialMovingAverage(num_updates=...)`` rule) lets the average
    forget the initial weights quickly early in training, when they are far
    from good ones. Evaluate with the averaged weights via :meth:`copy_to` or
    :meth:`average_parameters`.

    Parameters
    ----------
    params : list of ndarray
        Floating-point parameters; the shadow starts as a copy of them.
    decay : float, default 0.999
        :math:`d \in [0, 1]`.
    warmup : bool, default False
        Use :math:`d_n = \min(d, (1+n)/(10+n))`.
    dtype : floating dtype, optional
        Dtype of the shadow arrays (default: each parameter's dtype). Use
        float64 to average float32 weights with a decay close to 1 without
        rounding drift.

    Examples
    --------
    >>> import numpy as np
    >>> w = [np.array([0.0])]
    >>> ema = EMA(w, decay=0.5)
    >>> w[0][:] = 4.0
    >>> ema.update(w); ema.update(w)
    >>> ema.shadow[0]
    array([3.])
    """

    def __init__(
        self,
        params: ArrayOrArrays,
        decay: float = 0.999,
        *,
        warmup: bool = False,
        dtype: npt.DTypeLike | None = None,
    ) -> None:
        plist = _as_array_list(params, "params")
        d = _as_real(decay, "decay")
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {d}")
        if not isinstance(warmup, (bool, np.bool_)):
            raise TypeError(f"warmup must be a bool, got {type(warmup).__name__}")
        if dtype is not None:
            dt = np.dtype(dtype)
            if dt.kind != "f":
                raise TypeError(f"dtype must be a floating dtype, got {dt}")
        self.decay = d
        self.warmup = bool(warmup)
        self.num_updates = 0
        self._shadow = [
            np.array(p, dtype=p.dtype if dtype is None else dtype, copy=True) for p in plist
        ]

    @property
    def shadow(self) -> list[np.ndarray]:
        """Read-only views of the averaged parameters."""
        views = []
        for s in self._shadow:
            v = s.view()
            v.flags.writeable = False
            views.append(v)
        return views

    def current_decay(self) -> float:
        """Decay :math:`d_n` that the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def update(self, params: ArrayOrArrays) -> None:
        """Fold the current ``params`` into the average (see the class docstring)."""
        plist = _as_array_list(params, "params")
        _check_same_structure(plist, self._shadow, "params")
        one_minus_d = 1.0 - self.current_decay()
        if one_minus_d != 0.0:  # decay 1 keeps the shadow as it is
            for s, p in zip(self._shadow, plist):
                s += one_minus_d * (p - s)
        self.num_updates += 1

    def copy_to(self, params: ArrayOrArrays) -> None:
        """Copy the averaged values into ``params`` in place (cast to their dtype)."""
        plist = _as_array_list(params, "params", writeable=True)
        _check_same_structure(plist, self._shadow, "params")
        for p, s in zip(plist, self._shadow):
            np.copyto(p, s, casting="same_kind")

    @contextlib.contextmanager
    def average_parameters(self, params: ArrayOrArrays) -> Iterator[None]:
        """Context manager: ``params`` hold the averages inside, their own values after.

        >>> import numpy as np
        >>> w = [np.array([1.0])]
        >>> ema = EMA(w, decay=0.0)
        >>> w[0][:] = 2.0
        >>> with ema.average_parameters(w):
        ...     inside = w[0].copy()       # evaluate here
        >>> inside, w[0]
        (array([1.]), array([2.]))
        """
        plist = _as_array_list(params, "params", writeable=True)
        _check_same_structure(plist, self._shadow, "params")
        backup = [p.copy() for p in plist]
        self.copy_to(plist)
        try:
            yield
        finally:
            for p, b in zip(plist, backup):
                np.copyto(p, b)

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"decay", "warmup", "num_updates", "shadow"}`` (shadow arrays copied)."""
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": [s.copy() for s in self._shadow],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a dict made by :meth:`state_dict`; shadow shapes must match."""
        _check_state_dict(state_dict, ("decay", "warmup", "num_updates", "shadow"))
        shadow = _as_array_list(state_dict["shadow"], "state_dict['shadow']")
        _check_same_structure(shadow, self._shadow, "state_dict['shadow']")
        d = _as_real(state_dict["decay"], "state_dict['decay']")
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"state_dict['decay'] must be in [0, 1], got {d}")
        n = _as_int(state_dict["num_updates"], "state_dict['num_updates']", 0)
        self.decay, self.warmup, self.num_updates = d, bool(state_dict["warmup"]), n
        for s, src in zip(self._shadow, shadow):
            np.copyto(s, src, casting="same_kind")


# =============================================================================
# model ensembles
# =============================================================================
def ensemble_average(
    prob_list: Sequence[npt.ArrayLike], weights: npt.ArrayLike | None = None
) -> np.ndarray:
    r"""Average the probability outputs of several models.

    .. math::

        \bar P = \frac{\sum_k w_k P_k}{\sum_k w_k}

    (plain mean when ``weights`` is None). Accumulates in float64 and returns
    the common floating dtype of the inputs (float64 for integer inputs).

    Parameters
    ----------
    prob_list : sequence of array_like, all of the same shape
        E.g. ``(n_samples, n_classes)`` softmax outputs of each model.
    weights : array_like of shape (len(prob_list),), optional
        Non-negative, finite, with a positive sum.

    Returns
    -------
    ndarray of the common shape

    Examples
    --------
    >>> ensemble_average([[0.2, 0.8], [0.6, 0.4]])
    array([0.4, 0.6])
    >>> ensemble_average([[0.2, 0.8], [0.6, 0.4]], weights=[3, 1])
    array([0.3, 0.7])
    """
    if isinstance(prob_list, np.ndarray) or not isinstance(prob_list, (list, tuple)):
        raise TypeError(
            f"prob_list must be a list or tuple of arrays, got {type(prob_list).__name__}"
        )
    if len(prob_list) == 0:
        raise ValueError("prob_list must contain at least one array")
    arrays = [np.asarray(p) for p in prob_list]
    for i, a in enumerate(arrays):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"prob_list[{i}] must be real-valued, got dtype {a.dtype}")
        if a.shape != arrays[0].shape:
            raise ValueError(
                f"prob_list[{i}] has shape {a.shape}, expected {arrays[0].shape} (prob_list[0])"
            )
    out_dtype = np.result_type(*arrays)
    if out_dtype.kind != "f":
        out_dtype = np.dtype(np.float64)
    if weights is None:
        w = np.ones(len(arrays))
    else:
        w = np.asarray(weights)
        if w.dtype.kind not in "biuf":
            raise TypeError(f"weights must be real-valued, got dtype {w.dtype}")
        w = w.astype(np.float64)
        if w.shape != (len(arrays),):
            raise ValueError(f"weights must have shape ({len(arrays)},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be finite and >= 0 with a positive sum")
    acc = np.zeros(arrays[0].shape, dtype=np.float64)
    for wk, a in zip(w, arrays):
        acc += wk * a
    acc /= w.sum()
    return acc.astype(out_dtype, copy=False)


# =============================================================================
# hyperparameter search
# =============================================================================
def _check_bounds(low: Any, high: Any, cls: str, *, positive: bool = False) -> tuple[float, float]:
    lo = _as_real(low, f"{cls}.low")
    hi = _as_real(high, f"{cls}.high")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{cls} bounds must be finite, got low={lo}, high={hi}")
    if positive and lo <= 0:
        raise ValueError(f"{cls}.low must be > 0, got {lo}")
    if not lo < hi:
        raise ValueError(f"{cls} needs low < high, got low={lo}, high={hi}")
    return lo, hi


@dataclass(frozen=True)
class Uniform:
    """Real dimension sampled uniformly on ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        lo, hi = _check_bounds(self.low, self.high, "Uniform")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class LogUniform:
    r"""Positive real dimension whose logarithm is uniform: :math:`\exp U(\log low, \log high)`.

    The right prior for scale parameters such as learning rates and weight
    decay: each decade gets the same number of samples.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        lo, hi = _check_bounds(self.low, self.high, "LogUniform", positive=True)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)

    def sample(self, rng: np.random.Generator) -> float:
        v = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return min(max(v, self.low), self.high)  # guard the rounding of exp(log(.))


@dataclass(frozen=True)
class IntUniform:
    r"""Integer dimension on ``low, ..., high`` (both included).

    ``log=False``: each integer equally likely. ``log=True`` (``low >= 1``): the
    logarithm is uniform, :math:`\mathrm{round}(\exp U(\log(low - \tfrac12),
    \log(high + \tfrac12)))` -- the prior for sizes such as hidden units or batch
    sizes, where 8 to 16 matters as much as 512 to 1024 (each integer ``k`` gets the
    mass of :math:`[k - \tfrac12, k + \tfrac12)` on the log scale, optuna's
    ``IntDistribution(log=True)`` convention).
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        lo = _as_int(self.low, "IntUniform.low", -(2**63))
        hi = _as_int(self.high, "IntUniform.high", -(2**63))
        if lo > hi:
            raise ValueError(f"IntUniform needs low <= high, got low={lo}, high={hi}")
        if not isinstance(self.log, (bool, np.bool_)):
            raise TypeError(f"IntUniform.log must be True or False, got {self.log!r}")
        if self.log and lo < 1:
            raise ValueError(f"IntUniform(log=True) needs low >= 1, got low={lo}")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", bool(self.log))

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high, endpoint=True))
        v = math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5)))
        return min(max(int(round(v)), self.low), self.high)  # round(.) may hit a bound + 1


@dataclass(frozen=True)
class Choice:
    """Categorical dimension: one of ``options``, each with equal probability."""

    options: Sequence[Any]

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or not isinstance(
            self.options, (list, tuple, range)
        ):
            raise TypeError(
                f"Choice.options must be a list or tuple, got {type(self.options).__name__}"
            )
        if len(self.options) == 0:
            raise ValueError("Choice.options must not be empty")
        object.__setattr__(self, "options", tuple(self.options))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


Dimension = Union[Uniform, LogUniform, IntUniform, Choice]


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration.

    Attributes
    ----------
    index : int
        Position of the configuration in sampling (or grid) order.
    params : dict
        The configuration passed to the objective.
    score : float
        The objective's value; NaN if it raised (then ``error`` is set).
    error : str or None
        ``"ExceptionType: message"`` when the objective raised or did not
        return a real number.
    """

    index: int
    params: dict[str, Any]
    score: float
    error: str | None = None


def _trial_from_outcome(index: int, params: dict[str, Any], value: Any) -> Trial:
    return Trial(index, params, _as_real(value, "the objective's return value"))


def _run_trials(
    objective: Callable[[dict[str, Any]], float],
    configs: list[dict[str, Any]],
    executor: Executor | None,
    mode: str,
    on_error: str,
) -> list[Trial]:
    """Evaluate ``objective`` on each config, in order or on ``executor``; sort the trials."""
    trials: list[Trial] = []

    def record_failure(i: int, exc: Exception) -> None:
        if on_error == "raise":
            raise exc
        trials.append(Trial(i, configs[i], math.nan, f"{type(exc).__name__}: {exc}"))

    if executor is None:
        for i, cfg in enumerate(configs):
            try:
                trials.append(_trial_from_outcome(i, cfg, objective(dict(cfg))))
            except Exception as exc:  # the objective's failure is the trial's result
                record_failure(i, exc)
    else:
        futures = [executor.submit(objective, dict(cfg)) for cfg in configs]
        try:
            for i, fut in enumerate(futures):
                try:
                    trials.append(_trial_from_outcome(i, configs[i], fut.result()))
                except BrokenExecutor:
                    raise  # the pool died: not the trial's fault
                except Exception as exc:
                    record_failure(i, exc)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    sign = 1.0 if mode == "min" else -1.0

    def order(t: Trial) -> tuple[int, float, int]:
        return (1, 0.0, t.index) if math.isnan(t.score) else (0, sign * t.score, t.index)

    trials.sort(key=order)
    return trials


def _check_search_args(
    objective: Any, executor: Any, mode: Any, on_error: Any
) -> None:
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}"
        )
    _check_choice(mode, "mode", ("min", "max"))
    _check_choice(on_error, "on_error", ("record", "raise"))


def _check_picklable(objective: Any, configs: list[dict[str, Any]], executor: Any) -> None:
    """A process pool pickles the objective and configs: fail early and clearly if it can't."""
    if not isinstance(executor, ProcessPoolExecutor):
        return
    try:
        pickle.dumps(objective)
    except Exception as exc:
        raise TypeError(
            "objective must be picklable to run on a ProcessPoolExecutor (define it at "
            f"module level, not as a lambda or closure): {type(exc).__name__}: {exc}"
        ) from exc
    try:
        pickle.dumps(configs)
    except Exception as exc:
        raise TypeError(
            f"the sampled parameter values must be picklable for a ProcessPoolExecutor: {exc}"
        ) from exc


def random_search(
    objective: Callable[[dict[str, Any]], float],
    space: Mapping[str, Dimension],
    n_trials: int,
    seed: SeedLike = None,
    executor: Executor | None = None,
    *,
    mode: Literal["min", "max"] = "min",
    on_error: Literal["record", "raise"] = "record",
) -> list[Trial]:
    """Random hyperparameter search.

    Samples ``n_trials`` configurations independently from ``space`` and
    evaluates ``objective(params) -> score`` on each. When only a few of the
    hyperparameters matter, random search tries ``n_trials`` distinct values of
    each of them where a grid of the same size tries only ``n_trials ** (1/k)``
    (Bergstra & Bengio, 2012).

    Parameters
    ----------
    objective : callable ``dict -> float``
        Receives a fresh dict ``{name: value}`` per trial. With a
        ``ProcessPoolExecutor`` it must be picklable (a module-level function).
    space : mapping of str to Uniform, LogUniform, IntUniform or Choice
    n_trials : int
        Number of configurations (>= 0).
    seed : None, int or numpy.random.Generator
        Seeds the sampler. All configurations are drawn in the calling
        process before any runs, trial by trial and, within a trial, in the
        order of ``space``'s keys; so the same seed gives the same
        configurations whatever the executor, and the first ``k`` of
        ``n_trials > k`` trials are those of ``n_trials = k``.
    executor : concurrent.futures.Executor, optional
        Runs the trials (``executor.submit``); None runs them one after the
        other in the calling thread. The executor is not shut down.
    mode : {"min", "max"}, default "min"
        Lower scores are better ("min") or higher ones ("max").
    on_error : {"record", "raise"}, default "record"
        See Notes.

    Returns
    -------
    list of Trial
        Best first; ties keep sampling order.

    Notes
    -----
    Failure policy: an exception raised by the objective (any ``Exception``;
    ``KeyboardInterrupt`` still stops the search), or a return value that is
    not a real number, does not stop the search: the trial is recorded with
    ``score = nan`` and ``error = "ExceptionType: message"``. Trials with a
    NaN score (failed, or the objective returned NaN) sort last, by index.
    ``on_error="raise"`` re-raises the first failure (in trial order) instead,
    cancelling trials that have not started. A broken executor
    (``concurrent.futures.BrokenExecutor``) always raises.

    Examples
    --------
    >>> space = {"lr": LogUniform(1e-4, 1e-1), "layers": IntUniform(1, 3)}
    >>> trials = random_search(lambda p: abs(p["lr"] - 1e-2), space, n_trials=20, seed=0)
    >>> best = trials[0]
    >>> sorted(best.params), best.score <= trials[-1].score
    (['layers', 'lr'], True)
    """
    _check_search_args(objective, executor, mode, on_error)
    if not isinstance(space, Mapping):
        raise TypeError(
            f"space must be a mapping of names to dimensions, got {type(space).__name__}"
        )
    for name, dim in space.items():
        if not isinstance(name, str):
            raise TypeError(f"space keys must be str, got {name!r}")
        if not isinstance(dim, (Uniform, LogUniform, IntUniform, Choice)):
            raise TypeError(
                f"space[{name!r}] must be Uniform, LogUniform, IntUniform or Choice, "
                f"got {type(dim).__name__}"
            )
    n = _as_int(n_trials, "n_trials", 0)
    rng = _as_generator(seed, "seed")
    configs = [{name: dim.sample(rng) for name, dim in space.items()} for _ in range(n)]
    _check_picklable(objective, configs, executor)
    return _run_trials(objective, configs, executor, mode, on_error)


def grid_search(
    objective: Callable[[dict[str, Any]], float],
    grid: Mapping[str, Sequence[Any]],
    executor: Executor | None = None,
    *,
    mode: Literal["min", "max"] = "min",
    on_error: Literal["record", "raise"] = "record",
) -> list[Trial]:
    """Exhaustive search over the Cartesian product of ``grid``'s value lists.

    Configurations are enumerated as ``itertools.product`` over the keys in
    ``grid``'s order (the last key varies fastest); ``Trial.index`` is the
    position in that order. numpy scalars in the lists become Python scalars.

    Parameters
    ----------
    objective : callable ``dict -> float``
    grid : mapping of str to a non-empty sequence of values
    executor, mode, on_error
        As in :func:`random_search`.

    Returns
    -------
    list of Trial
        Best first; ties keep grid order.

    Notes
    -----
    Failures are handled as in :func:`random_search` (see its Notes): a trial
    whose objective raises or returns a non-number is recorded with a NaN
    score and its ``error``, and sorts last; ``on_error="raise"`` re-raises.

    Examples
    --------
    >>> trials = grid_search(lambda p: (p["x"] - 1) ** 2 + p["y"], {"x": [0, 1, 2], "y": [0, 1]})
    >>> trials[0].params, trials[0].score, len(trials)
    ({'x': 1, 'y': 0}, 0.0, 6)
    """
    _check_search_args(objective, executor, mode, on_error)
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping of names to value lists, got {type(grid).__name__}"
        )
    values = []
    for name, vals in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid keys must be str, got {name!r}")
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple, range, np.ndarray)):
            raise TypeError(f"grid[{name!r}] must be a list of values, got {type(vals).__name__}")
        if len(vals) == 0:
            raise ValueError(f"grid[{name!r}] must not be empty")
        values.append([v.item() if isinstance(v, np.generic) else v for v in vals])
    configs = [dict(zip(grid.keys(), combo)) for combo in itertools.product(*values)]
    _check_picklable(objective, configs, executor)
    return _run_trials(objective, configs, executor, mode, on_error)


# =============================================================================
# learning-rate range test
# =============================================================================
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


# =============================================================================
# gradient checking
# =============================================================================
def _check_perturbable(x: Any) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"x must have a floating dtype (float64 recommended), got {x.dtype}")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: entries are perturbed in place and restored")
    return x


def _check_eps(eps: Any) -> float:
    h = _as_real(eps, "eps")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"eps must be finite and > 0, got {h}")
    return h


def _central_differences(
    x: np.ndarray, eps: float, evaluate: Callable[[], float]
) -> np.ndarray:
    """For each entry of ``x``: ``(evaluate() at x+eps - at x-eps) / (x+eps - (x-eps))``.

    The denominator uses the perturbed values actually stored (rounded to x's
    dtype). Each entry is restored to its exact original value, also when
    ``evaluate`` raises.
    """
    grad = np.empty(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix].copy()
        try:
            x[ix] = old + eps
            x_plus = float(x[ix])
            f_plus = evaluate()
            x[ix] = old - eps
            x_minus = float(x[ix])
            f_minus = evaluate()
        finally:
            x[ix] = old
        if x_plus == x_minus:
            raise ValueError(
                f"eps={eps} is below the resolution of x ({x.dtype}) at index {ix}; "
                "use float64 or a larger eps"
            )
        grad[ix] = (f_plus - f_minus) / (x_plus - x_minus)
    return grad


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    r"""Gradient of a scalar function by central differences.

    .. math::

        \frac{\partial f}{\partial x_i} \approx
        \frac{f(x + h e_i) - f(x - h e_i)}{2h}

    Each entry of ``x`` is perturbed **in place** and restored exactly (also
    if ``f`` raises), so ``f`` may read ``x`` through a closure, e.g. a
    network's parameter array; on return ``x`` is unchanged. The denominator
    uses the perturbed values as stored in ``x``'s dtype. Costs ``2 * x.size``
    calls of ``f``.

    Parameters
    ----------
    f : callable ``ndarray -> float``
        Called with ``x`` itself; must return a real scalar.
    x : ndarray
        Floating point, writeable; float64 recommended (float32 needs eps
        around 1e-3 and gives only a few correct digits).
    eps : float, default 1e-6
        Step :math:`h`.

    Returns
    -------
    ndarray of float64, shape ``x.shape``

    Examples
    --------
    >>> import numpy as np
    >>> g = numerical_gradient(lambda v: float(np.sum(v ** 3)), np.array([1.0, 2.0]))
    >>> np.allclose(g, [3.0, 12.0])
    True
    """
    x = _check_perturbable(x)
    h = _check_eps(eps)
    return _central_differences(x, h, lambda: _as_real(f(x), "f(x)"))


def numerical_gradient_array(
    f: Callable[[np.ndarray], npt.ArrayLike], x: np.ndarray, df: npt.ArrayLike, eps: float = 1e-6
) -> np.ndarray:
    r"""Gradient of :math:`\langle f(x), df\rangle` for an array-valued ``f`` (backprop check).

    For a layer :math:`y = f(x)` and an upstream gradient :math:`df =
    \partial L/\partial y`, returns :math:`\partial L/\partial x`:

    .. math::

        \frac{\partial L}{\partial x_i} \approx
        \sum_j \frac{f(x + h e_i)_j - f(x - h e_i)_j}{2h}\, df_j

    (cs231n's ``eval_numerical_gradient_array``). ``x`` is perturbed in place
    and restored exactly, as in :func:`numerical_gradient`; ``f``'s outputs
    are copied, so it may return a buffer it reuses.

    Parameters
    ----------
    f : callable ``ndarray -> ndarray``
        Its output must have ``df``'s shape.
    x : ndarray
        Floating point, writeable; float64 recommended.
    df : array_like
        Upstream gradient.
    eps : float, default 1e-6

    Returns
    -------
    ndarray of float64, shape ``x.shape``

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, -2.0]); W = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> dout = np.array([1.0, 1.0])
    >>> np.allclose(numerical_gradient_array(lambda v: v @ W, x, dout), W @ dout)
    True
    """
    x = _check_perturbable(x)
    h = _check_eps(eps)
    upstream = np.asarray(df)
    if upstream.dtype.kind not in "biuf":
        raise TypeError(f"df must be real-valued, got dtype {upstream.dtype}")
    upstream = upstream.astype(np.float64)

    def evaluate() -> float:
        out = np.array(f(x), dtype=np.float64, copy=True)
        if out.shape != upstream.shape:
            raise ValueError(f"f(x) has shape {out.shape} but df has shape {upstream.shape}")
        return float(np.sum(out * upstream))

    return _central_differences(x, h, evaluate)


def relative_error(a: npt.ArrayLike, b: npt.ArrayLike, floor: float = 1e-8) -> float:
    r"""Maximum elementwise relative error of two arrays.

    .. math::

        \max_i \frac{|a_i - b_i|}{\max(|a_i|, |b_i|, \text{floor})}

    The measure :func:`check_grad` reports.

    Parameters
    ----------
    a, b : array_like of the same shape
    floor : float, default 1e-8
        Lower bound (> 0) of the denominator, so that entries where both
        values are (numerically) zero do not count as large errors.

    Returns
    -------
    float
        0.0 for empty arrays; NaN if any entry is NaN.

    Examples
    --------
    >>> relative_error([1.0, 0.0], [1.001, 1e-12])
    0.000999000999000...
    """
    fa = np.asarray(a, dtype=np.float64)
    fb = np.asarray(b, dtype=np.float64)
    if fa.shape != fb.shape:
        raise ValueError(f"a and b must have the same shape, got {fa.shape} and {fb.shape}")
    fl = _as_real(floor, "floor")
    if not fl > 0:
        raise ValueError(f"floor must be > 0, got {fl}")
    if fa.size == 0:
        return 0.0
    denom = np.maximum(np.maximum(np.abs(fa), np.abs(fb)), fl)
    return float(np.max(np.abs(fa - fb) / denom))


def check_grad(
    f: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], npt.ArrayLike],
    x: np.ndarray,
    eps: float = 1e-6,
    *,
    floor: float = 1e-8,
) -> float:
    r"""Check an analytic gradient against central differences (the cs231n gradient check).

    Returns

    .. math::

        \max_i \frac{|a_i - n_i|}{\max(|a_i|, |n_i|, \text{floor})}

    with :math:`a` = ``grad(x)`` and :math:`n` = :func:`numerical_gradient`
    ``(f, x, eps)``. Rules of thumb in float64: below 1e-7 the gradient is
    right; around 1e-4 suspicious (unless ``f`` has kinks, like ReLU or
    hinge losses, near ``x``); above 1e-2 wrong.

    Unlike :func:`scipy.optimize.check_grad`, which returns the 2-norm of the
    difference, this returns a relative error. ``x`` is unchanged on return.

    Parameters
    ----------
    f : callable ``ndarray -> float``
    grad : callable ``ndarray -> array_like``
        Analytic gradient; must return ``x``'s shape.
    x : ndarray
        Floating point, writeable; float64 recommended.
    eps : float, default 1e-6
    floor : float, default 1e-8
        Lower bound of the denominator (see :func:`relative_error`).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.5, -1.5, 2.0])
    >>> check_grad(lambda v: float(v @ v), lambda v: 2 * v, x) < 1e-8
    True
    >>> check_grad(lambda v: float(v @ v), lambda v: v, x) > 0.1   # wrong gradient
    True
    """
    x = _check_perturbable(x)
    h = _check_eps(eps)
    if not callable(grad):
        raise TypeError(f"grad must be callable, got {type(grad).__name__}")
    analytic = np.array(grad(x), dtype=np.float64, copy=True)
    if analytic.shape != x.shape:
        raise ValueError(f"grad(x) has shape {analytic.shape}, expected x's shape {x.shape}")
    numeric = _central_differences(x, h, lambda: _as_real(f(x), "f(x)"))
    return relative_error(analytic, numeric, floor)


# =============================================================================
# gradient clipping
# =============================================================================
# The two passes (a reduction, then an in-place scale) run in C for float32/float64 arrays
# (fastopt._kernels.norm_reduce / scale_: OpenMP, float64 accumulation over fixed blocks
# combined in block order, so bitwise reproducible for any thread count). Other floating
# dtypes (float16, longdouble) and, for the scale, non-contiguous views take a numpy path.
_NORM_CHUNK = 1 << 16  # elements per reduction block of the numpy path


def _check_norm_type(norm_type: Any) -> float:
    p = _as_real(norm_type, "norm_type")
    if not (p > 0):
        raise ValueError(f"norm_type must be > 0 or inf, got {p}")
    return p


def _kernel_ready(a: np.ndarray, writeable: bool) -> bool:
    """Whether the C kernels take `a` directly (else the numpy path handles it)."""
    if a.dtype not in (np.float32, np.float64):
        return False
    return not writeable or (a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative)


def _combine(acc: float, part: float, p: float) -> float:
    if math.isnan(acc) or math.isnan(part):
        return math.nan
    return max(acc, part) if math.isinf(p) else acc + part


def _norm_pass(arrays: list[np.ndarray], p: float) -> float:
    """Pass 1: ``max |g|`` (p = inf) or ``sum |g|**p`` over all arrays, in float64."""
    fast = [g for g in arrays if _kernel_ready(g, writeable=False)]
    acc = _kernels.norm_reduce(fast, p) if fast else 0.0
    for g in arrays:
        if _kernel_ready(g, writeable=False):
            continue
        flat = g.reshape(-1)  # a copy only if g is not contiguous
        for start in range(0, flat.size, _NORM_CHUNK):
            block = flat[start : start + _NORM_CHUNK].astype(np.float64)
            np.abs(block, out=block)
            if math.isinf(p):
                part = float(block.max()) if block.size else 0.0
            else:
                if p == 2.0:
                    np.multiply(block, block, out=block)
                elif p != 1.0:
                    np.power(block, p, out=block)
                part = float(block.sum())
            acc = _combine(acc, part, p)
    return acc


def _scale_pass(arrays: list[np.ndarray], coef: float) -> None:
    """Pass 2: ``g *= coef`` in place, in each array's dtype."""
    fast = [g for g in arrays if _kernel_ready(g, writeable=True)]
    if fast:
        _kernels.scale_(fast, coef)
    with np.errstate(invalid="ignore"):  # inf * 0 -> nan, as documented
        for g in arrays:
            if not _kernel_ready(g, writeable=True):
                np.multiply(g, coef, out=g)


def total_norm(
    grads: ArrayOrArrays, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    r"""Global norm of a list of arrays, as if they were concatenated into one vector.

    .. math::

        \|g\|_p = \Big(\sum_k \sum_i |g_{k,i}|^p\Big)^{1/p}, \qquad
        \|g\|_\infty = \max_{k,i} |g_{k,i}|

    Accumulated in float64 (``torch.nn.utils.get_total_norm`` semantics).

    Parameters
    ----------
    grads : ndarray or list of ndarray
        Floating point. An empty list has norm 0.
    norm_type : float, default 2.0
        :math:`p > 0`, or ``math.inf``.
    error_if_nonfinite : bool, default False
        Raise :class:`FloatingPointError` if the norm is NaN or infinite.

    Returns
    -------
    float
    """
    arrays = _as_array_list(grads, "grads")
    p = _check_norm_type(norm_type)
    if not isinstance(error_if_nonfinite, (bool, np.bool_)):
        raise TypeError(
            f"error_if_nonfinite must be a bool, got {type(error_if_nonfinite).__name__}"
        )
    acc = _norm_pass(arrays, p)
    norm = acc if math.isinf(p) else (math.sqrt(acc) if p == 2.0 else acc ** (1.0 / p))
    if error_if_nonfinite and not math.isfinite(norm):
        raise FloatingPointError(
            f"the total norm of order {p} of the gradients is {norm}; "
            "pass error_if_nonfinite=False to scale them anyway"
        )
    return norm


def clip_grads_with_norm(grads: ArrayOrArrays, max_norm: float, total_norm: float) -> None:
    r"""Scale ``grads`` in place given their precomputed total norm.

    .. math::

        g \leftarrow g \cdot \min\Big(\frac{\text{max\_norm}}{\text{total\_norm} + 10^{-6}}, 1\Big)

    as ``torch.nn.utils.clip_grads_with_norm_``: a NaN ``total_norm`` makes
    every gradient NaN and an infinite one zeroes the finite entries (and
    makes infinite ones NaN). Nothing is written when the factor is 1.
    """
    arrays = _as_array_list(grads, "grads", writeable=True)
    m = _as_real(max_norm, "max_norm")
    if not m >= 0:
        raise ValueError(f"max_norm must be >= 0, got {m}")
    t = _as_real(total_norm, "total_norm")
    if t < 0:
        raise ValueError(f"total_norm must be >= 0 (or nan), got {t}")
    coef = m / (t + 1e-6)
    if not math.isnan(coef):
        coef = min(coef, 1.0)
    if coef != 1.0:
        _scale_pass(arrays, coef)


def clip_grad_norm(
    grads: ArrayOrArrays,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    r"""Clip gradients in place to a maximum global norm; return the norm before clipping.

    With :math:`T = \|g\|_p` the global norm over all arrays (:func:`total_norm`):

    .. math::

        g \leftarrow g \cdot \min\Big(\frac{\text{max\_norm}}{T + 10^{-6}}, 1\Big)

    Semantics of ``torch.nn.utils.clip_grad_norm_`` (the gradients are scaled
    when :math:`T + 10^{-6} > \text{max\_norm}`; a non-finite :math:`T`
    propagates into the gradients unless ``error_if_nonfinite``).

    Parameters
    ----------
    grads : ndarray or list of ndarray
        Floating point, writeable; modified in place. Norms accumulate in
        float64; the scaling runs in each array's dtype.
    max_norm : float
        >= 0.
    norm_type : float, default 2.0
        :math:`p > 0` or ``math.inf``.
    error_if_nonfinite : bool, default False
        Raise :class:`FloatingPointError` (without modifying ``grads``) if
        :math:`T` is NaN or infinite.

    Returns
    -------
    float
        :math:`T`, the total norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> g = [np.array([3.0]), np.array([4.0])]
    >>> clip_grad_norm(g, max_norm=1.0)
    5.0
    >>> np.round(np.concatenate(g), 6)
    array([0.6, 0.8])
    """
    arrays = _as_array_list(grads, "grads", writeable=True)
    m = _as_real(max_norm, "max_norm")
    if not m >= 0:
        raise ValueError(f"max_norm must be >= 0, got {m}")
    norm = total_norm(arrays, norm_type, error_if_nonfinite)
    clip_grads_with_norm(arrays, m, norm)
    return norm
