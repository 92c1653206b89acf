"""Vector helpers of the solvers, on fastopt's C kernels (``fastopt._kernels``).

Reductions accumulate in float64 whatever the storage dtype, so that ``s'y``,
``y'y`` and ``g'd`` keep their sign and size in float32 runs; they sum fixed
blocks in a fixed order, so results do not depend on the thread count.
"""
from __future__ import annotations

import numpy as np

from fastopt import _kernels

__all__ = ["dot", "norm_inf", "axpy"]


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum_i a_i b_i`` accumulated in float64 (deterministic blocked sum)."""
    if a.dtype != b.dtype:
        return _kernels.dot(a.astype(np.float64), b.astype(np.float64))
    return _kernels.dot(a, b)


def norm_inf(a: np.ndarray) -> float:
    """``max_i |a_i|`` (NaN if any element is NaN)."""
    if a.size == 0:
        return 0.0
    return _kernels.norm_reduce(a, np.inf)


def axpy(alpha: float, x: np.ndarray, y: np.ndarray, out=None) -> np.ndarray:
    """``out = y + alpha * x`` (one pass over memory; a new array if ``out`` is None)."""
    if out is None:
        out = np.empty_like(y)
    _kernels.axpy(alpha, x, y, out=out)
    return out
