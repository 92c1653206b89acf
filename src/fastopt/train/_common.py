"""Shared pieces of :mod:`fastopt.train` (argument checks come from ``fastopt._validation``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayOrArrays = np.ndarray | Sequence[np.ndarray]
SeedLike = None | int | np.integer | np.random.Generator


def same_layout(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether two array lists match in count, shapes and dtypes."""
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype for x, y in zip(a, b))


def readonly_views(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Views of ``arrays`` that cannot be written through (what accessors hand out)."""
    views = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    return views
