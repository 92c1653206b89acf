"""Random and grid search, serially or on any ``concurrent.futures`` executor."""

from __future__ import annotations

import itertools
import math
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor
from typing import Any, Literal

import numpy as np

from fastopt._validation import check_callable, check_choice, check_real, describe_value
from fastopt.train._common import SeedLike
from fastopt.train.search_space import Dimension, check_space, sample_configs
from fastopt.train.trials import Trial

__all__ = ["random_search", "grid_search"]


def error_text(exc: BaseException) -> str:
    """How a trial records a failure: ``"ExceptionType: message"``."""
    return f"{type(exc).__name__}: {exc}"


def sort_trials(trials: Iterable[Trial], mode: str) -> list[Trial]:
    """Best first: failed trials (and NaN scores) last; then the largest resource reached
    first (successive halving), then by score; ties keep the trials' order (index)."""
    sign = 1.0 if mode == "min" else -1.0

    def order(t: Trial) -> tuple[int, float, float, int]:
        if math.isnan(t.score):
            return (1, 0.0, 0.0, t.index)
        return (0, -(t.resource or 0.0), sign * t.score, t.index)

    return sorted(trials, key=order)


def check_search_args(objective: Any, executor: Any, mode: Any, on_error: Any) -> None:
    check_callable(objective, "objective")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(
            "executor: expected a concurrent.futures.Executor or None, "
            f"got {describe_value(executor)}"
        )
    check_choice(mode, "mode", ("min", "max"))
    check_choice(on_error, "on_error", ("record", "raise"))


def check_picklable(objective: Any, configs: list[dict[str, Any]], executor: Any) -> None:
    """A process pool pickles the objective and configs: fail early and clearly if it can't.

    (Dask and mpi4py executors pickle too, but Dask falls back to cloudpickle, which
    handles lambdas and closures; their errors surface as failed trials.)
    """
    if executor is None:
        return
    # imported here: concurrent.futures.process loads multiprocessing (~40 ms at import)
    from concurrent.futures import ProcessPoolExecutor

    if not isinstance(executor, ProcessPoolExecutor):
        return
    try:
        pickle.dumps(objective)
    except Exception as exc:
        raise TypeError(
            "objective: expected a picklable callable to run on a ProcessPoolExecutor (define "
            f"it at module level, not as a lambda or closure), got {describe_value(objective)}"
            f" ({error_text(exc)})"
        ) from exc
    try:
        pickle.dumps(configs)
    except Exception as exc:
        raise TypeError(
            "space: expected picklable parameter values to run on a ProcessPoolExecutor, "
            f"got one that is not ({error_text(exc)})"
        ) from exc


def _trial_from_outcome(index: int, params: dict[str, Any], value: Any) -> Trial:
    score = check_real(value, "objective(params)", allow_inf=True, allow_nan=True)
    return Trial(index, params, score)


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
        trials.append(Trial(i, configs[i], math.nan, error_text(exc)))

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
                except Exception as exc:  # raised by the objective, or its worker died
                    record_failure(i, exc)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return sort_trials(trials, mode)


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
        The search space (:mod:`~fastopt.train.search_space`).
    n_trials : int
        Number of configurations (>= 0).
    seed : None, int or numpy.random.Generator
        Seeds the sampler. All configurations are drawn in the calling
        process before any runs, trial by trial and, within a trial, in the
        order of ``space``'s keys; so the same seed gives the same
        configurations whatever the executor, and the first ``k`` of
        ``n_trials > k`` trials are those of ``n_trials = k``.
    executor : concurrent.futures.Executor, optional
        Runs the trials (``executor.submit``): a ``ProcessPoolExecutor``, a
        Dask cluster's ``Client.get_executor()``, an
        ``mpi4py.futures.MPIPoolExecutor``, ... None runs them one after the
        other in the calling thread. The executor is not shut down.
    mode : {"min", "max"}, default "min"
        Lower scores are better ("min") or higher ones ("max").
    on_error : {"record", "raise"}, default "record"
        See Notes.

    Returns
    -------
    list of Trial
        Best first; ties keep sampling order. Export with
        :func:`~fastopt.train.trials_to_csv` / :func:`~fastopt.train.trials_to_json`.

    Notes
    -----
    Failure policy: an exception raised by the objective (any ``Exception``;
    ``KeyboardInterrupt`` still stops the search), or a return value that is
    not a real number, does not stop the search: the trial is recorded with
    ``score = nan`` and ``error = "ExceptionType: message"``. Trials with a
    NaN score (failed, or the objective returned NaN) sort last, by index.
    ``on_error="raise"`` re-raises the first failure (in trial order) instead,
    cancelling trials that have not started.

    A trial that crashes its worker process is a failed trial where the
    executor survives the crash: Dask's scheduler reruns the task of a dead
    worker elsewhere and, after ``distributed.scheduler.allowed-failures``
    retries, fails it with ``KilledWorker``, which is recorded like any other
    error. A standard-library ``ProcessPoolExecutor`` cannot survive a crash
    (every pending future fails with ``BrokenProcessPool``, whichever trial
    caused it), so a broken executor (``concurrent.futures.BrokenExecutor``)
    always raises.

    Examples
    --------
    >>> from fastopt.train import IntUniform, LogUniform
    >>> space = {"lr": LogUniform(1e-4, 1e-1), "layers": IntUniform(1, 3)}
    >>> trials = random_search(lambda p: abs(p["lr"] - 1e-2), space, n_trials=20, seed=0)
    >>> best = trials[0]
    >>> sorted(best.params), best.score <= trials[-1].score
    (['layers', 'lr'], True)
    """
    check_search_args(objective, executor, mode, on_error)
    configs = sample_configs(check_space(space), n_trials, seed)
    check_picklable(objective, configs, executor)
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
    check_search_args(objective, executor, mode, on_error)
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid: expected a mapping of names to value lists, got {describe_value(grid)}"
        )
    values = []
    for name, vals in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid: expected str keys, got {describe_value(name)}")
        if isinstance(vals, (str, bytes)) or not isinstance(vals, (list, tuple, range, np.ndarray)):
            raise TypeError(f"grid[{name!r}]: expected a list of values, got {describe_value(vals)}")
        if len(vals) == 0:
            raise ValueError(f"grid[{name!r}]: expected at least one value, got none")
        values.append([v.item() if isinstance(v, np.generic) else v for v in vals])
    configs = [dict(zip(grid.keys(), combo)) for combo in itertools.product(*values)]
    check_picklable(objective, configs, executor)
    return _run_trials(objective, configs, executor, mode, on_error)
