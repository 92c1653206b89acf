"""Shared pieces of :mod:`fastopt.train`: array-list arguments and argument checks."""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

ArrayOrArrays = Union[np.ndarray, Sequence[np.ndarray]]
SeedLike = Union[None, int, np.integer, np.random.Generator]


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


def _readonly_views(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Views of ``arrays`` that cannot be written through (what accessors hand out)."""
    views = []
    for a in arrays:
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    return views
