"""Gradient clipping by global norm (``torch.nn.utils.clip_grad_norm_`` semantics)."""

from __future__ import annotations

import math

import numpy as np

from fastopt import _kernels
from fastopt._validation import check_array_list, check_bool, check_real
from fastopt.train._common import ArrayOrArrays

__all__ = ["total_norm", "clip_grads_with_norm", "clip_grad_norm"]


# The two passes (a reduction, then an in-place scale) run in C for float32/float64 arrays
# (fastopt._kernels.norm_reduce / scale_: OpenMP, float64 accumulation over fixed blocks
# combined in block order, so bitwise reproducible for any thread count). Other floating
# dtypes (float16, longdouble) and, for the scale, non-contiguous views take a numpy path.
_NORM_CHUNK = 1 << 16  # elements per reduction block of the numpy path


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

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> g = [np.array([3.0, -4.0]), np.array([12.0])]
    >>> total_norm(g), total_norm(g, 1.0), total_norm(g, math.inf)
    (13.0, 19.0, 12.0)
    """
    arrays = check_array_list(grads, "grads")
    p = check_real(norm_type, "norm_type", 0.0, closed="neither", allow_inf=True)
    check_bool(error_if_nonfinite, "error_if_nonfinite")
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

    Parameters
    ----------
    grads : ndarray or list of ndarray
        Floating point, writeable; modified in place.
    max_norm : float
        >= 0.
    total_norm : float
        >= 0 (or NaN): their norm, from :func:`total_norm`.

    Examples
    --------
    >>> import numpy as np
    >>> g = [np.array([3.0, 4.0])]
    >>> clip_grads_with_norm(g, max_norm=1.0, total_norm=total_norm(g))
    >>> np.round(g[0], 6)
    array([0.6, 0.8])
    """
    arrays = check_array_list(grads, "grads", writeable=True)
    m = check_real(max_norm, "max_norm", 0.0, allow_inf=True)
    t = check_real(total_norm, "total_norm", 0.0, allow_inf=True, allow_nan=True)
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
    arrays = check_array_list(grads, "grads", writeable=True)
    m = check_real(max_norm, "max_norm", 0.0, allow_inf=True)
    norm = total_norm(arrays, norm_type, error_if_nonfinite)
    clip_grads_with_norm(arrays, m, norm)
    return norm
