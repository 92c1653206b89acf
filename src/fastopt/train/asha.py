"""Asynchronous successive halving (ASHA): stop the trials that fall behind at each rung."""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from dataclasses import dataclass, field
from typing import Any, Literal

from fastopt._validation import check_int, check_real
from fastopt.train._common import SeedLike
from fastopt.train.search import check_picklable, check_search_args, error_text, sort_trials
from fastopt.train.search_space import Dimension, check_space, sample_configs
from fastopt.train.trials import Trial

__all__ = ["Reporter", "asha_search"]


class _RungReached(BaseException):
    """Ends a segment at its rung. A BaseException, so that an objective's own
    ``except Exception:`` around its training loop does not swallow it."""


class Reporter:
    """What an :func:`asha_search` objective reports its scores to.

    The objective receives one as its second argument and calls
    :meth:`report` after each unit of training (an epoch, say). When a report
    reaches the resource of the segment's rung, :meth:`report` does not return:
    it ends the call (with an exception the search catches), and the search
    decides whether the trial goes on. If it does, the objective is called
    again -- perhaps in another process -- with :attr:`checkpoint` set to what
    the last report passed, and should resume from it.

    Attributes
    ----------
    checkpoint : object or None
        What the trial passed to its last :meth:`report` before this call
        (None on the first call, or if it never passes one: then it restarts).
    start : float
        The resource :attr:`checkpoint` was saved at (0.0 without one): report
        resources above it.
    target : float
        The resource at which this call ends (the next rung, or
        :attr:`max_resource`).
    min_resource, max_resource : float
        The search's settings.

    Examples
    --------
    >>> r = Reporter(checkpoint=None, start=0.0, target=3.0, min_resource=1.0,
    ...              max_resource=9.0)
    >>> r.report(1, 0.5, checkpoint={"epoch": 1})
    >>> r.report(2, 0.4)
    >>> r.history
    [(1.0, 0.5), (2.0, 0.4)]
    """

    def __init__(self, checkpoint: Any, start: float, target: float, min_resource: float,
                 max_resource: float) -> None:
        self.checkpoint = checkpoint
        self.start = float(start)
        self.target = float(target)
        self.min_resource = float(min_resource)
        self.max_resource = float(max_resource)
        self.history: list[tuple[float, float]] = []
        self.reached = False
        self._saved: tuple[Any, float] = (checkpoint, self.start)

    def report(self, resource: float, score: float, checkpoint: Any = None) -> None:
        """Record ``score`` after training up to ``resource``; end the call at the rung.

        Parameters
        ----------
        resource : float
            The resource trained so far (epochs, steps, samples...), counted
            from the trial's start: above :attr:`start` and above the last
            report, finite.
        score : float
            The validation score there (NaN: the trial diverged; it is stopped).
        checkpoint : object, optional
            State to resume from, such as copies of the parameters and the
            optimizer's ``state_dict()``: handed back as :attr:`checkpoint` if
            the trial continues. It must be picklable when the search runs on
            other processes, and a snapshot (copies), not live arrays that
            training goes on changing.

        Raises
        ------
        BaseException (private)
            When ``resource`` reaches :attr:`target`: the call ends here. Do not
            catch ``BaseException`` around :meth:`report`.
        """
        last = self.history[-1][0] if self.history else self.start
        r = check_real(resource, "resource", last, closed="neither")
        s = check_real(score, "score", allow_inf=True, allow_nan=True)
        if self.reached:  # the objective caught the end of the call and went on: ignore it
            raise _RungReached
        self.history.append((r, s))
        if checkpoint is not None:
            self._saved = (checkpoint, r)
        if r >= self.target:
            self.reached = True
            raise _RungReached


@dataclass
class _Segment:
    """What one call of the objective gives the scheduler (pickled back from a worker)."""

    history: list[tuple[float, float]]
    checkpoint: Any
    checkpoint_resource: float
    start: float
    paused: bool = False  # ended at its rung (else: the objective returned or raised)
    returned: Any = None
    error: str | None = None
    exception: BaseException | None = None


def _run_segment(objective: Callable[[dict[str, Any], Reporter], Any], params: dict[str, Any],
                 checkpoint: Any, start: float, target: float, min_resource: float,
                 max_resource: float) -> _Segment:
    """One job: run the objective from ``checkpoint`` until its report reaches ``target``."""
    reporter = Reporter(checkpoint, start, target, min_resource, max_resource)
    returned, error, exception = None, None, None
    try:
        returned = objective(dict(params), reporter)
    except _RungReached:
        pass
    except Exception as exc:  # the objective's failure is the trial's result
        error, exception = error_text(exc), exc
    saved, saved_at = reporter._saved
    return _Segment(reporter.history, saved, saved_at, start, reporter.reached, returned, error,
                    exception)


class _InlineExecutor:
    """``submit`` runs the call at once in this thread (asha_search with executor=None)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


@dataclass
class _TrialState:
    index: int
    params: dict[str, Any]
    history: list[tuple[float, float]] = field(default_factory=list)
    checkpoint: Any = None
    checkpoint_resource: float = 0.0
    used: float = 0.0
    done: Trial | None = None

    @property
    def reached(self) -> float:
        return self.history[-1][0] if self.history else 0.0

    def record(self, seg: _Segment) -> None:
        """Add a segment's reports (re-runs below what was reached before are costs only)."""
        end = seg.history[-1][0] if seg.history else seg.start
        self.used += max(end - seg.start, 0.0)
        before = self.reached
        self.history += [(r, s) for r, s in seg.history if r > before]
        self.checkpoint, self.checkpoint_resource = seg.checkpoint, seg.checkpoint_resource

    def finish(self, status: str, score: float, error: str | None = None) -> None:
        self.done = Trial(self.index, self.params, score, error, status,
                          self.reached if self.history else None, self.used,
                          tuple(self.history))


def rung_resources(min_resource: float, max_resource: float, eta: float) -> list[float]:
    """``min_resource * eta**k`` below ``max_resource`` (where the trials are compared)."""
    rungs = []
    r = min_resource
    while r < max_resource * (1 - 1e-12):
        rungs.append(r)
        r *= eta
    return rungs


class _Rungs:
    """The scores recorded at each rung, and the stopping rule."""

    def __init__(self, resources: list[float], eta: float, mode: str) -> None:
        self.resources = resources
        self.scores: list[list[float]] = [[] for _ in resources]
        self.eta, self.sign = eta, (1.0 if mode == "min" else -1.0)

    def passes(self, k: int, score: float) -> bool:
        """Record ``score`` at rung ``k``; whether it is in the top ``1/eta`` of the scores
        recorded there so far (at least the best one; earlier equal scores rank first)."""
        earlier = self.scores[k]
        earlier.append(score)
        if math.isnan(score):
            return False
        key = self.sign * score
        rank = sum(1 for s in earlier[:-1] if not math.isnan(s) and self.sign * s <= key)
        return rank < max(1, math.floor(len(earlier) / self.eta))


def asha_search(
    objective: Callable[[dict[str, Any], Reporter], Any],
    space: Mapping[str, Dimension],
    n_trials: int,
    seed: SeedLike = None,
    executor: Executor | None = None,
    *,
    max_resource: float,
    min_resource: float = 1.0,
    reduction_factor: float = 3.0,
    mode: Literal["min", "max"] = "min",
    max_concurrent: int | None = None,
    on_error: Literal["record", "raise"] = "record",
) -> list[Trial]:
    r"""Random search with asynchronous successive halving (ASHA).

    Draws ``n_trials`` configurations from ``space`` as :func:`random_search`
    does (the same seed gives the same configurations, whatever runs them)
    and trains each with ``objective(params, reporter)``, which reports a
    validation score after each unit of resource (epochs, steps...) through
    :meth:`Reporter.report`. The resources

    .. math::

        r_k = \text{min\_resource} \cdot \eta^k < \text{max\_resource},
        \qquad \eta = \text{reduction\_factor},

    are *rungs*. A trial that reaches rung :math:`k` goes on only if its score
    there is among the best :math:`\max(1, \lfloor m/\eta \rfloor)` of the
    :math:`m` scores recorded at rung :math:`k` so far (its own included, earlier
    equal scores first; NaN never); otherwise it is *stopped*. Survivors train
    to ``max_resource``. With :math:`\eta = 3`, about a third of the trials pass
    each rung: most of the budget goes to the promising configurations, which
    is the lecture's coarse-to-fine search made systematic (Li et al., "A
    System for Massively Parallel Hyperparameter Tuning", MLSys 2020; the
    stopping form is Ray Tune's ``AsyncHyperBandScheduler``).

    How a reporter talks to the scheduler across processes: it does not. A
    ``concurrent.futures`` executor offers no channel from a running task back
    to the caller (a process pool has none; Dask and MPI have their own), so
    the work is cut at the rungs: each job runs the objective from the trial's
    last checkpoint until a report reaches the next rung, where
    :meth:`Reporter.report` ends the call, and returns the reports and the
    checkpoint. The caller, the only place that decides, records the score at
    the rung and either submits the next segment (resuming from the
    checkpoint, maybe on another worker) or stops the trial. So the decisions
    need no locks or shared state, any executor works, a worker that dies
    loses one segment, and a trial costs nothing while it waits to be
    resubmitted. A trial that never passes a checkpoint still works, but
    restarts from scratch at each rung (:attr:`Trial.resource_used` counts the
    re-runs). The stopping form was chosen over promotion-based ASHA (where a
    finished rung-:math:`k` job waits until enough others finish to promote
    it) because a decision is made the moment a trial reaches its rung, so no
    trial ever waits, and the search needs no end-of-run bookkeeping for
    trials left waiting; the price is that the first trials to arrive at a
    rung pass it (nothing to compare with yet).

    Parameters
    ----------
    objective : callable ``(dict, Reporter) -> float or None``
        Trains the configuration ``params``, reporting after each unit of
        resource; resumes from ``reporter.checkpoint`` when it is not None.
        Its return value (if a real number) is the trial's final score, else
        the last reported score is. Picklable for a process executor.
    space : mapping of str to Uniform, LogUniform, IntUniform or Choice
    n_trials : int
        Number of configurations (>= 0).
    seed : None, int or numpy.random.Generator
        Seeds the sampler (as in :func:`random_search`).
    executor : concurrent.futures.Executor, optional
        Runs the segments; None runs them in the calling thread.
    max_resource : float
        The resource of a full run (> 0).
    min_resource : float, default 1.0
        The first rung, in ``(0, max_resource]``.
    reduction_factor : float, default 3.0
        :math:`\eta > 1`.
    mode : {"min", "max"}, default "min"
    max_concurrent : int, optional
        Segments in flight at once (>= 1), continuations first: the executor's
        worker count. Default: ``executor._max_workers`` (process and thread
        pools) or ``executor.num_workers`` (mpi4py), else the number of CPUs
        here -- pass it for a Dask cluster (its total worker threads). Without
        an executor segments run one at a time (1).
    on_error : {"record", "raise"}, default "record"
        As in :func:`random_search`: a trial whose objective raises, returns
        something other than None or a real number, or whose worker dies, is
        recorded with status ``"failed"``, its error and the reports it made;
        the others go on.

    Returns
    -------
    list of Trial
        Status ``"completed"`` (reached ``max_resource`` or returned), ``"stopped"``
        (at a rung) or ``"failed"``. Sorted: the largest resource reached first, then
        by score (best first), failed trials last; so ``trials[0]`` is the best
        configuration trained to the end. ``history`` holds each trial's reports.

    Notes
    -----
    Run serially (``executor=None``, ``max_concurrent=1``) the search is
    deterministic. On an executor with several workers, which trials are
    stopped depends on the order in which segments finish (that is what
    asynchronous means); the configurations do not.

    Examples
    --------
    A "training curve" that approaches ``(x - 0.3)**2`` as the resource grows;
    the checkpoint is the last resource trained:

    >>> from fastopt.train import Uniform, asha_search
    >>> def objective(params, reporter):
    ...     epoch = reporter.checkpoint or 0
    ...     while epoch < reporter.max_resource:
    ...         epoch += 1
    ...         loss = (params["x"] - 0.3) ** 2 + 1.0 / epoch
    ...         reporter.report(epoch, loss, checkpoint=epoch)
    >>> trials = asha_search(objective, {"x": Uniform(0, 1)}, n_trials=27, seed=0,
    ...                      max_resource=27, min_resource=1, reduction_factor=3)
    >>> best = trials[0]
    >>> best.status, best.resource, round(best.params["x"], 2)
    ('completed', 27.0, 0.3)
    >>> sum(t.resource_used for t in trials) < 27 * 27 / 3   # full runs would cost 729
    True
    """
    check_search_args(objective, executor, mode, on_error)
    r_max = check_real(max_resource, "max_resource", 0.0, closed="neither")
    r_min = check_real(min_resource, "min_resource", 0.0, r_max, closed="right")
    eta = check_real(reduction_factor, "reduction_factor", 1.0, closed="neither")
    if max_concurrent is None:
        workers = (1 if executor is None else getattr(executor, "_max_workers", None)
                   or getattr(executor, "num_workers", None) or os.cpu_count() or 1)
    else:
        workers = check_int(max_concurrent, "max_concurrent", 1)
        if executor is None and workers != 1:
            raise ValueError(f"max_concurrent: expected 1 or None without an executor, "
                             f"got {workers}")
    configs = sample_configs(check_space(space), n_trials, seed)
    check_picklable(objective, configs, executor)
    rungs = _Rungs(rung_resources(r_min, r_max, eta), eta, mode)
    states = [_TrialState(i, cfg) for i, cfg in enumerate(configs)]
    _schedule(objective, states, rungs, r_min, r_max, executor or _InlineExecutor(),
              int(workers), on_error)
    return sort_trials([s.done for s in states if s.done is not None], mode)


def _schedule(objective: Callable[..., Any], states: list[_TrialState], rungs: _Rungs,
              r_min: float, r_max: float, executor: Any, workers: int, on_error: str) -> None:
    """Keep ``workers`` segments in flight, continuations first, until every trial is done."""
    fresh = deque(states)
    ready: deque[_TrialState] = deque()
    running: dict[Future, tuple[int, _TrialState]] = {}
    submitted = 0

    def submit(state: _TrialState) -> None:
        nonlocal submitted
        target = next((r for r in rungs.resources if r > state.reached), r_max)
        start = state.checkpoint_resource if state.checkpoint is not None else 0.0
        fut = executor.submit(_run_segment, objective, state.params, state.checkpoint, start,
                              target, r_min, r_max)
        running[fut] = (submitted, state)
        submitted += 1

    try:
        while fresh or ready or running:
            while len(running) < workers and (ready or fresh):
                submit(ready.popleft() if ready else fresh.popleft())
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f][0]):
                _, state = running.pop(fut)
                if _settle(state, fut, rungs, r_max, on_error):
                    ready.append(state)
    except BaseException:
        for fut in running:
            fut.cancel()
        raise


def _settle(state: _TrialState, fut: Future, rungs: _Rungs, r_max: float,
            on_error: str) -> bool:
    """Use a finished segment: record it, decide at its rung; True if the trial goes on."""
    try:
        seg: _Segment = fut.result()
    except BrokenExecutor:
        raise  # the pool died: not the trial's fault, and nothing more can run
    except Exception as exc:  # the worker died, or the segment could not travel
        if on_error == "raise":
            raise
        state.finish("failed", math.nan, error_text(exc))
        return False
    state.record(seg)
    final = math.nan
    if seg.error is None and not seg.paused and seg.returned is not None:
        try:
            final = check_real(seg.returned, "objective(params, reporter)", allow_inf=True,
                               allow_nan=True)
        except TypeError as exc:
            seg.error, seg.exception = error_text(exc), exc
    if seg.error is not None:
        if on_error == "raise":
            raise seg.exception if seg.exception is not None else RuntimeError(seg.error)
        state.finish("failed", math.nan, seg.error)
        return False
    last = state.history[-1][1] if state.history else math.nan
    if not seg.paused:  # the objective returned: the trial ended itself
        if seg.returned is None and not state.history:
            state.finish("failed", math.nan, "ValueError: the objective reported no score")
        else:
            state.finish("completed", final if seg.returned is not None else last)
        return False
    if state.reached >= r_max:
        state.finish("completed", last)
        return False
    # the highest rung the segment reached (a report may jump past several)
    k = max(i for i, r in enumerate(rungs.resources) if r <= state.reached)
    if rungs.passes(k, last):
        return True
    state.finish("stopped", last)
    return False
