"""Hyperparameter search: search spaces, random and grid search, the Trial record."""

from __future__ import annotations

import itertools
import math
import pickle
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import numpy as np

from fastopt.init import _as_generator
from fastopt.train._common import SeedLike, _as_int, _as_real, _check_choice

__all__ = [
    "Uniform",
    "LogUniform",
    "IntUniform",
    "Choice",
    "Trial",
    "random_search",
    "grid_search",
]


def _check_bounds(low: Any, high: Any, cls: str, *, positive: bool = False) -> tuple[float, float]:
    lo = _as_real(low, f"{cls}.low")
    hi = _as_real(high, f"{cls}.high")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{cls} bounds must be finite, got low={lo}, high={hi}")
    if positive and lo <= 0:
        raise ValueError(f"{cls}.low must be > 0, got {lo}")
    if not lo < hi:
        raise ValueError(f"{cls} needs low < high, got low={lo}, high={hi}")
    return lo, hi


@dataclass(frozen=True)
class Uniform:
    """Real dimension sampled uniformly on ``[low, high)``."""

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
    """

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        lo = _as_int(self.low, "IntUniform.low", -(2**63))
        hi = _as_int(self.high, "IntUniform.high", -(2**63))
        if lo > hi:
            raise ValueError(f"IntUniform needs low <= high, got low={lo}, high={hi}")
        if not isinstance(self.log, (bool, np.bool_)):
            raise TypeError(f"IntUniform.log must be True or False, got {self.log!r}")
        if self.log and lo < 1:
            raise ValueError(f"IntUniform(log=True) needs low >= 1, got low={lo}")
        object.__setattr__(self, "low", lo)
        object.__setattr__(self, "high", hi)
        object.__setattr__(self, "log", bool(self.log))

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high, endpoint=True))
        v = math.exp(rng.uniform(math.log(self.low - 0.5), math.log(self.high + 0.5)))
        return min(max(int(round(v)), self.low), self.high)  # round(.) may hit a bound + 1


@dataclass(frozen=True)
class Choice:
    """Categorical dimension: one of ``options``, each with equal probability."""

    options: Sequence[Any]

    def __post_init__(self) -> None:
        if isinstance(self.options, (str, bytes)) or not isinstance(
            self.options, (list, tuple, range)
        ):
            raise TypeError(
                f"Choice.options must be a list or tuple, got {type(self.options).__name__}"
            )
        if len(self.options) == 0:
            raise ValueError("Choice.options must not be empty")
        object.__setattr__(self, "options", tuple(self.options))

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


Dimension = Union[Uniform, LogUniform, IntUniform, Choice]


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration.

    Attributes
    ----------
    index : int
        Position of the configuration in sampling (or grid) order.
    params : dict
        The configuration passed to the objective.
    score : float
        The objective's value; NaN if it raised (then ``error`` is set).
    error : str or None
        ``"ExceptionType: message"`` when the objective raised or did not
        return a real number.
    """

    index: int
    params: dict[str, Any]
    score: float
    error: str | None = None


def _trial_from_outcome(index: int, params: dict[str, Any], value: Any) -> Trial:
    return Trial(index, params, _as_real(value, "the objective's return value"))


def _run_trials(
    objective: Callable[[dict[str, Any]], float],
    configs: list[dict[str, Any]],
    executor: Executor | None,
    mode: str,
    on_error: str,
) -> list[Trial]:
    """Evaluate ``objective`` on each config, in order or on ``executor``; sort the trials."""
    trials: list[Trial] = []

    def record_failure(i: int, exc: Exception) -> None:
        if on_error == "raise":
            raise exc
        trials.append(Trial(i, configs[i], math.nan, f"{type(exc).__name__}: {exc}"))

    if executor is None:
        for i, cfg in enumerate(configs):
            try:
                trials.append(_trial_from_outcome(i, cfg, objective(dict(cfg))))
            except Exception as exc:  # the objective's failure is the trial's result
                record_failure(i, exc)
    else:
        futures = [executor.submit(objective, dict(cfg)) for cfg in configs]
        try:
            for i, fut in enumerate(futures):
                try:
                    trials.append(_trial_from_outcome(i, configs[i], fut.result()))
                except BrokenExecutor:
                    raise  # the pool died: not the trial's fault
                except Exception as exc:
                    record_failure(i, exc)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    sign = 1.0 if mode == "min" else -1.0

    def order(t: Trial) -> tuple[int, float, int]:
        return (1, 0.0, t.index) if math.isnan(t.score) else (0, sign * t.score, t.index)

    trials.sort(key=order)
    return trials


def _check_search_args(
    objective: Any, executor: Any, mode: Any, on_error: Any
) -> None:
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            f"executor must be a concurrent.futures.Executor or None, got {type(executor).__name__}"
        )
    _check_choice(mode, "mode", ("min", "max"))
    _check_choice(on_error, "on_error", ("record", "raise"))


def _check_picklable(objective: Any, configs: list[dict[str, Any]], executor: Any) -> None:
    """A process pool pickles the objective and configs: fail early and clearly if it can't."""
    if not isinstance(executor, ProcessPoolExecutor):
        return
    try:
        pickle.dumps(objective)
    except Exception as exc:
        raise TypeError(
            "objective must be picklable to run on a ProcessPoolExecutor (define it at "
            f"module level, not as a lambda or closure): {type(exc).__name__}: {exc}"
        ) from exc
    try:
        pickle.dumps(configs)
    except Exception as exc:
        raise TypeError(
            f"the sampled parameter values must be picklable for a ProcessPoolExecutor: {exc}"
        ) from exc


def random_search(
    objective: Callable[[dict[str, Any]], float],
    space: Mapping[str, Dimension],
    n_trials: int,
    seed: SeedLike = None,
    executor: Executor | None = None,
    *,
    mode: Literal["min", "max"] = "min",
    on_error: Literal["record", "raise"] = "record",
) -> list[Trial]:
    """Random hyperparameter search.

    Samples ``n_trials`` configurations independently from ``space`` and
    evaluates ``objective(params) -> score`` on each. When only a few of the
    hyperparameters matter, random search tries ``n_trials`` distinct values of
    each of them where a grid of the same size tries only ``n_trials ** (1/k)``
    (Bergstra & Bengio, 2012).

    Parameters
    ----------
    objective : callable ``dict -> float``
        Receives a fresh dict ``{name: value}`` per trial. With a
        ``ProcessPoolExecutor`` it must be picklable (a module-level function).
    space : mapping of str to Uniform, LogUniform, IntUniform or Choice
    n_trials : int
        Number of configurations (>= 0).
    seed : None, int or numpy.random.Generator
        Seeds the sampler. All configurations are drawn in the calling
        process before any runs, trial by trial and, within a trial, in the
        order of ``space``'s keys; so the same seed gives the same
        configurations whatever the executor, and the first ``k`` of
        ``n_trials > k`` trials are those of ``n_trials = k``.
    executor : concurrent.futures.Executor, optional
        Runs the trials (``executor.submit``); None runs them one after the
        other in the calling thread. The executor is not shut down.
    mode : {"min", "max"}, default "min"
        Lower scores are better ("min") or higher ones ("max").
    on_error : {"record", "raise"}, default "record"
        See Notes.

    Returns
    -------
    list of Trial
        Best first; ties keep sampling order.

    Notes
    -----
    Failure policy: an exception raised by the objective (any ``Exception``;
    ``KeyboardInterrupt`` still stops the search), or a return value that is
    not a real number, does not stop the search: the trial is recorded with
    ``score = nan`` and ``error = "ExceptionType: message"``. Trials with a
    NaN score (failed, or the objective returned NaN) sort last, by index.
    ``on_error="raise"`` re-raises the first failure (in trial order) instead,
    cancelling trials that have not started. A broken executor
    (``concurrent.futures.BrokenExecutor``) always raises.

    Examples
    --------
    >>> space = {"lr": LogUniform(1e-4, 1e-1), "layers": IntUniform(1, 3)}
    >>> trials = random_search(lambda p: abs(p["lr"] - 1e-2), space, n_trials=20, seed=0)
    >>> best = trials[0]
    >>> sorted(best.params), best.score <= trials[-1].score
    (['layers', 'lr'], True)
    """
    _check_search_args(objective, executor, mode, on_error)
    if not isinstance(space, Mapping):
        raise TypeError(
            f"space must be a mapping of names to dimensions, got {type(space).__name__}"
        )
    for name, dim in space.items():
        if not isinstance(name, str):
            raise TypeError(f"space keys must be str, got {name!r}")
        if not isinstance(dim, (Uniform, LogUniform, IntUniform, Choice)):
            raise TypeError(
                f"space[{name!r}] must be Uniform, LogUniform, IntUniform or Choice, "
                f"got {type(dim).__name__}"
            )
    n = _as_int(n_trials, "n_trials", 0)
    rng = _as_generator(seed, "seed")
    configs = [{name: dim.sample(rng) for name, dim in space.items()} for _ in range(n)]
    _check_picklable(objective, configs, executor)
    return _run_trials(objective, configs, executor, mode, on_error)


def grid_search(
    objective: Callable[[dict[str, Any]], float],
    grid: Mapping[str, Sequence[Any]],
    executor: Executor | None = None,
    *,
    mode: Literal["min", "max"] = "min",
    on_error: Literal["record", "raise"] = "record",
) -> list[Trial]:
    """Exhaustive search over the Cartesian product of ``grid``'s value lists.

    Configurations are enumerated as ``itertools.product`` over the keys in
    ``grid``'s order (the last key varies fastest); ``Trial.index`` is the
    position in that order. numpy scalars in the lists become Python scalars.

    Parameters
    ----------
    objective : callable ``dict -> float``
    grid : mapping of str to a non-empty sequence of values
    executor, mode, on_error
        As in :func:`random_search`.

    Returns
    -------
    list of Trial
        Best first; ties keep grid order.

    Notes
    -----
    Failures are handled as in :func:`random_search` (see its Notes): a trial
    whose objective raises or returns a non-number is recorded with a NaN
    score and its ``error``, and sorts last; ``on_error="raise"`` re-raises.

    Examples
    --------
    >>> trials = grid_search(lambda p: (p["x"] - 1) ** 2 + p["y"], {"x": [0, 1, 2], "y": [0, 1]})
    >>> trials[0].params, trials[0].score, len(trials)
    ({'x': 1, 'y': 0}, 0.0, 6)
    """
    _check_search_args(objective, executor, mode, on_error)
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid must be a mapping of names to value lists, got {type(grid).__name__}"
        )
    values = []
    for name, vals in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid keys must be str, got {name!r}")
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple, range, np.ndarray)):
            raise TypeError(f"grid[{name!r}] must be a list of values, got {type(vals).__name__}")
        if len(vals) == 0:
            raise ValueError(f"grid[{name!r}] must not be empty")
        values.append([v.item() if isinstance(v, np.generic) else v for v in vals])
    configs = [dict(zip(grid.keys(), combo)) for combo in itertools.product(*values)]
    _check_picklable(objective, configs, executor)
    return _run_trials(objective, configs, executor, mode, on_error)
