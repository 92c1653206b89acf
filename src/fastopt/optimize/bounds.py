"""Box bounds ``lower <= x <= upper`` as ``scipy.optimize.minimize`` takes them.

:func:`parse_bounds` accepts what scipy accepts for L-BFGS-B:

* an object with ``lb`` and ``ub`` attributes (:class:`scipy.optimize.Bounds`, duck-typed:
  scipy is not imported), each a scalar or an array broadcast to ``x0``'s size;
* a sequence of ``(lo, hi)`` pairs, one per variable, where ``None`` means no bound;
* ``None``: no bounds.

and returns two flat arrays of the working dtype, with ``-inf``/``+inf`` where a side is
unbounded. :func:`clip_x0` moves a starting point into the box as scipy does
(``np.clip``), so the first evaluation is feasible.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fastopt._validation import describe_value

__all__ = ["parse_bounds", "clip_x0", "has_finite_bound"]


def _side(values: Any, n: int, name: str, fill: float) -> np.ndarray:
    """One side (``lb`` or ``ub``) as a float64 vector of length n; None entries -> fill."""
    if values is None:
        return np.full(n, fill)
    if isinstance(values, (list, tuple)):
        values = [fill if v is None else v for v in values]
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected real numbers or None, got "
                        f"{describe_value(values)}") from None
    if arr.size == 1:   # a scalar, or scipy's Bounds(0, 1), which stores lb as array([0])
        return np.full(n, float(arr.reshape(-1)[0]))
    arr = arr.reshape(-1)
    if arr.size != n:
        raise ValueError(f"{name}: expected a scalar or {n} values (the size of x0), got "
                         f"{arr.size}")
    return arr.copy()


def parse_bounds(bounds: Any, n: int, dtype: Any = np.float64
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lower, upper)`` flat arrays of ``dtype`` with ±inf for missing bounds, or None.

    Parameters
    ----------
    bounds : scipy.optimize.Bounds, sequence of (lo, hi) pairs, or None
        ``Bounds``-like objects are recognised by their ``lb``/``ub`` attributes; in a
        pair, ``None`` (or ±inf) means unbounded on that side.
    n : int
        Number of variables (size of ``x0``).
    dtype : numpy dtype
        Working dtype of the solver (float32 or float64).

    Returns
    -------
    (lower, upper) or None
        None when ``bounds`` is None or bounds nothing (every side infinite).

    Raises
    ------
    ValueError
        Wrong number of pairs or values, a NaN bound, ``lower > upper``, ``lower = +inf``
        or ``upper = -inf``.
    TypeError
        Something that is neither ``Bounds``-like nor a sequence of pairs.

    Examples
    --------
    >>> from fastopt.optimize.bounds import parse_bounds
    >>> lo, hi = parse_bounds([(0, None), (None, 2.5)], 2)
    >>> lo, hi
    (array([  0., -inf]), array([inf, 2.5]))
    """
    if bounds is None:
        return None
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        lower = _side(bounds.lb, n, "bounds.lb", -np.inf)
        upper = _side(bounds.ub, n, "bounds.ub", np.inf)
    else:
        try:
            pairs = list(bounds)
        except TypeError:
            raise TypeError(f"bounds: expected a scipy.optimize.Bounds or a sequence of "
                            f"(lo, hi) pairs, got {describe_value(bounds)}") from None
        if len(pairs) != n:
            raise ValueError(f"bounds: expected {n} (lo, hi) pairs (one per variable of "
                             f"x0), got {len(pairs)}")
        lows, highs = [], []
        for i, pair in enumerate(pairs):
            try:
                lo, hi = pair
            except (TypeError, ValueError):
                raise ValueError(f"bounds[{i}]: expected a (lo, hi) pair, got "
                                 f"{describe_value(pair)}") from None
            lows.append(lo)
            highs.append(hi)
        lower = _side(lows, n, "bounds (lower)", -np.inf)
        upper = _side(highs, n, "bounds (upper)", np.inf)
    for arr, what in ((lower, "lower"), (upper, "upper")):
        if np.isnan(arr).any():
            i = int(np.flatnonzero(np.isnan(arr))[0])
            raise ValueError(f"bounds: expected {what} bounds that are not NaN, got NaN at "
                             f"index {i}")
    bad = lower > upper
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"bounds: expected lower <= upper, got lower {lower[i]!r} > upper "
                         f"{upper[i]!r} at index {i}")
    if (lower == np.inf).any() or (upper == -np.inf).any():
        i = int(np.flatnonzero((lower == np.inf) | (upper == -np.inf))[0])
        raise ValueError(f"bounds: expected a finite point inside every interval, got "
                         f"[{lower[i]!r}, {upper[i]!r}] at index {i}")
    if not (np.isfinite(lower).any() or np.isfinite(upper).any()):
        return None
    dt = np.dtype(dtype)
    return lower.astype(dt), upper.astype(dt)


def has_finite_bound(lower: np.ndarray, upper: np.ndarray) -> bool:
    """Whether any side of the box is finite."""
    return bool(np.isfinite(lower).any() or np.isfinite(upper).any())


def clip_x0(x0: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``x0`` moved into the box (``np.clip``, as scipy's L-BFGS-B does), in place."""
    np.clip(x0, lower, upper, out=x0)
    return x0
