"""Vector helpers used by the solvers (numpy; the C kernels replace them).

Reductions accumulate in float64 whatever the storage dtype, so that ``s'y``,
``y'y`` and ``g'd`` keep their sign and size in float32 runs.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dot", "norm_inf"]


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum_i a_i b_i`` accumulated in float64."""
    if a.dtype == np.float64 and b.dtype == np.float64:
        return float(np.dot(a, b))
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)))


def norm_inf(a: np.ndarray) -> float:
    """``max_i |a_i|`` (NaN if any element is NaN)."""
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a)))
