"""Search spaces: the dimensions a hyperparameter is drawn from, and drawing configurations."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastopt._validation import (
    check_bool,
    check_int,
    check_real,
    check_seed,
    describe_value,
)
from fastopt.train._common import SeedLike

__all__ = ["Uniform", "LogUniform", "IntUniform", "Choice"]


def _check_bounds(low: Any, high: Any, cls: str, *, positive: bool = False) -> tuple[float, float]:
    """Finite ``low < high`` (and ``low > 0`` if ``positive``) as floats."""
    lo = check_real(low, f"{cls}.low", 0.0 if positive else None,
                    closed="neither" if positive else "both")
    return lo, check_real(high, f"{cls}.high", lo, closed="neither")


@dataclass(frozen=True)
class Uniform:
    """Real dimension sampled uniformly on ``[low, high)``.

    Parameters
    ----------
    low, high : float
        Finite, ``low < high``.

    Examples
    --------
    >>> import numpy as np
    >>> dim = Uniform(0.0, 0.5)
    >>> x = dim.sample(np.random.default_rng(0))
    >>> 0.0 <= x < 0.5, type(x).__name__
    (True, 'float')
    """

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

    Parameters
    ----------
    low, high : float
        Finite, ``0 < low < high``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> lrs = np.array([LogUniform(1e-4, 1e-1).sample(rng) for _ in range(3000)])
    >>> counts = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0]
    >>> bool(np.all(abs(counts - 1000) < 100))   # each decade gets a third
    True
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

    Parameters
    ----------
    low, high : int
        ``low <= high`` (``low >= 1`` with ``log=True``).
    log : bool, default False

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sorted({IntUniform(1, 3).sample(rng) for _ in range(50)})
    [1, 2, 3]
    >>> units = np.array([IntUniform(8, 1024, log=True).sample(rng) for _ in range(1000)])
    >>> bool(abs(np.mean(units < 88) - 0.5) < 0.05)   # the log scale's midpoint is ~88
    True
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        log = check_bool(self.log, "IntUniform.log")
        lo = check_int(self.low, "IntUniform.low (log=True)" if log else "IntUniform.low",
                       1 if log else -(2**63))  # numpy's Generator.integers draws int64
        hi = check_int(self.high, "IntUniform.high", lo)
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", log)

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high, endpoint=True))
        v = math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5)))
        return min(max(int(round(v)), self.low), self.high)  # round(.) may hit a bound + 1


@dataclass(frozen=True)
class Choice:
    """Categorical dimension: one of ``options``, each with equal probability.

    Parameters
    ----------
    options : list or tuple
        At least one value (any objects; stored as a tuple).

    Examples
    --------
    >>> import numpy as np
    >>> Choice(["relu", "tanh"]).sample(np.random.default_rng(1)) in ("relu", "tanh")
    True
    """

    options: Sequence[Any]

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or not isinstance(
            self.options, (list, tuple, range)
        ):
            raise TypeError(
                f"Choice.options: expected a list or tuple, got {describe_value(self.options)}"
            )
        if len(self.options) == 0:
            raise ValueError("Choice.options: expected at least one option, got none")
        object.__setattr__(self, "options", tuple(self.options))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


Dimension = Uniform | LogUniform | IntUniform | Choice


def check_space(space: Any) -> Mapping[str, Dimension]:
    """``space`` itself if it maps str names to dimensions; TypeError naming what is wrong."""
    if not isinstance(space, Mapping):
        raise TypeError(
            f"space: expected a mapping of names to dimensions, got {describe_value(space)}"
        )
    for name, dim in space.items():
        if not isinstance(name, str):
            raise TypeError(f"space: expected str keys, got {describe_value(name)}")
        if not isinstance(dim, (Uniform, LogUniform, IntUniform, Choice)):
            raise TypeError(
                f"space[{name!r}]: expected Uniform, LogUniform, IntUniform or Choice, "
                f"got {describe_value(dim)}"
            )
    return space


def sample_configs(space: Mapping[str, Dimension], n_trials: Any,
                   seed: SeedLike) -> list[dict[str, Any]]:
    """``n_trials`` configurations drawn from a checked ``space``, in the calling process.

    Trial by trial and, within a trial, in the order of ``space``'s keys: the same seed
    gives the same configurations whatever runs them, and the first ``k`` of ``n > k``
    are those of ``n = k``.
    """
    n = check_int(n_trials, "n_trials", 0)
    rng = np.random.default_rng(check_seed(seed, "seed"))
    return [{name: dim.sample(rng) for name, dim in space.items()} for _ in range(n)]
