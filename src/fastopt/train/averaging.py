"""Averaging: an exponential moving average of weights (EMA) and ensembles of models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fastopt._validation import (
    check_array_list,
    check_bool,
    check_float_dtype,
    check_int,
    check_real,
    check_same_structure,
    check_state_dict,
    describe_value,
)
from fastopt.train._common import ArrayOrArrays, readonly_views

__all__ = ["EMA", "ensemble_average"]


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
        plist = check_array_list(params, "params")
        self.decay = check_real(decay, "decay", 0.0, 1.0)
        self.warmup = check_bool(warmup, "warmup")
        dt = None if dtype is None else check_float_dtype(dtype, "dtype")
        self.num_updates = 0
        self._shadow = [np.array(p, dtype=p.dtype if dt is None else dt, copy=True) for p in plist]

    @property
    def shadow(self) -> list[np.ndarray]:
        """Read-only views of the averaged parameters."""
        return readonly_views(self._shadow)

    def current_decay(self) -> float:
        """Decay :math:`d_n` that the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    def update(self, params: ArrayOrArrays) -> None:
        """Fold the current ``params`` into the average (see the class docstring)."""
        plist = check_array_list(params, "params")
        check_same_structure(plist, self._shadow, "params")
        one_minus_d = 1.0 - self.current_decay()
        if one_minus_d != 0.0:  # decay 1 keeps the shadow as it is
            for s, p in zip(self._shadow, plist):
                s += one_minus_d * (p - s)
        self.num_updates += 1

    def copy_to(self, params: ArrayOrArrays) -> None:
        """Copy the averaged values into ``params`` in place (cast to their dtype)."""
        plist = check_array_list(params, "params", writeable=True)
        check_same_structure(plist, self._shadow, "params")
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
        plist = check_array_list(params, "params", writeable=True)
        check_same_structure(plist, self._shadow, "params")
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
        check_state_dict(state_dict, ("decay", "warmup", "num_updates", "shadow"))
        shadow = check_array_list(state_dict["shadow"], "state_dict['shadow']")
        check_same_structure(shadow, self._shadow, "state_dict['shadow']")
        d = check_real(state_dict["decay"], "state_dict['decay']", 0.0, 1.0)
        warmup = check_bool(state_dict["warmup"], "state_dict['warmup']")
        n = check_int(state_dict["num_updates"], "state_dict['num_updates']", 0)
        self.decay, self.warmup, self.num_updates = d, warmup, n
        for s, src in zip(self._shadow, shadow):
            np.copyto(s, src, casting="same_kind")


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
            f"prob_list: expected a list or tuple of arrays, got {describe_value(prob_list)}"
        )
    if len(prob_list) == 0:
        raise ValueError("prob_list: expected at least one array, got an empty sequence")
    arrays = [np.asarray(p) for p in prob_list]
    for i, a in enumerate(arrays):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"prob_list[{i}]: expected real values, got dtype {a.dtype}")
        if a.shape != arrays[0].shape:
            raise ValueError(
                f"prob_list[{i}]: expected shape {arrays[0].shape} (that of prob_list[0]), "
                f"got {a.shape}"
            )
    out_dtype = np.result_type(*arrays)
    if out_dtype.kind != "f":
        out_dtype = np.dtype(np.float64)
    if weights is None:
        w = np.ones(len(arrays))
    else:
        w = np.asarray(weights)
        if w.dtype.kind not in "biuf":
            raise TypeError(f"weights: expected real values, got dtype {w.dtype}")
        w = w.astype(np.float64)
        if w.shape != (len(arrays),):
            raise ValueError(f"weights: expected shape ({len(arrays)},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weights: expected finite values >= 0 with a positive sum, got {w.tolist()}"
            )
    acc = np.zeros(arrays[0].shape, dtype=np.float64)
    for wk, a in zip(w, arrays):
        acc += wk * a
    acc /= w.sum()
    return acc.astype(out_dtype, copy=False)
