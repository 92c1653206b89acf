"""Gradient checking by central differences."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from fastopt._validation import check_array, check_callable, check_real

__all__ = ["numerical_gradient", "numerical_gradient_array", "relative_error", "check_grad"]


def _check_x_and_eps(x: Any, eps: Any) -> tuple[np.ndarray, float]:
    """x: a writeable floating array (entries are perturbed in place and restored); eps > 0."""
    return check_array(x, "x", writeable=True), check_real(eps, "eps", 0.0, closed="neither")


def _real_value(f: Callable[[np.ndarray], float], x: np.ndarray) -> Callable[[], float]:
    """``f(x)`` as a float (NaN and inf included), for :func:`_central_differences`."""
    return lambda: check_real(f(x), "f(x)", allow_inf=True, allow_nan=True)


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
                f"eps: expected a step above the resolution of x ({x.dtype}) at index {ix}, "
                f"got {eps}; use float64 or a larger eps"
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
    x, h = _check_x_and_eps(x, eps)
    return _central_differences(x, h, _real_value(f, x))


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
    x, h = _check_x_and_eps(x, eps)
    upstream = np.asarray(df)
    if upstream.dtype.kind not in "biuf":
        raise TypeError(f"df: expected real values, got dtype {upstream.dtype}")
    upstream = upstream.astype(np.float64)

    def evaluate() -> float:
        out = np.array(f(x), dtype=np.float64, copy=True)
        if out.shape != upstream.shape:
            raise ValueError(
                f"f(x): expected shape {upstream.shape} (that of df), got {out.shape}"
            )
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
        raise ValueError(f"b: expected the shape of a, {fa.shape}, got {fb.shape}")
    fl = check_real(floor, "floor", 0.0, closed="neither", allow_inf=True)
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
    x, h = _check_x_and_eps(x, eps)
    check_callable(grad, "grad")
    analytic = np.array(grad(x), dtype=np.float64, copy=True)
    if analytic.shape != x.shape:
        raise ValueError(f"grad(x): expected the shape of x, {x.shape}, got {analytic.shape}")
    numeric = _central_differences(x, h, _real_value(f, x))
    return relative_error(analytic, numeric, floor)
