"""scipy, imported on first use: ``import fastopt`` does not import it.

scipy.optimize costs about two thirds of a cold ``import fastopt`` (0.2 s of 0.35 s,
measured with ``python -X importtime``); the solvers need only its result class, its
warning class and, for ``res.hess_inv``, :class:`scipy.sparse.linalg.LinearOperator`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult

__all__ = ["optimize_result", "optimize_warning", "scipy_version"]


def optimize_result(**fields: Any) -> OptimizeResult:
    """A :class:`scipy.optimize.OptimizeResult` holding ``fields``."""
    from scipy.optimize import OptimizeResult
    return OptimizeResult(**fields)


def optimize_warning() -> type[Warning]:
    """The class :class:`scipy.optimize.OptimizeWarning`."""
    from scipy.optimize import OptimizeWarning
    return OptimizeWarning


def scipy_version() -> tuple[int, int]:
    """(major, minor) of the installed scipy: some of its messages depend on it."""
    import scipy
    major, minor = scipy.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)
