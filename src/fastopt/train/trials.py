"""The record of one evaluated configuration, and the export of a search's records."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Union

import numpy as np

from fastopt._validation import check_choice, describe_value

__all__ = ["Trial", "trials_to_csv", "trials_to_json", "trials_from_json"]

PathOrFile = Union[str, "os.PathLike[str]", IO[str]]
STATUSES = ("completed", "stopped", "failed")


@dataclass(frozen=True)
class Trial:
    """One evaluated configuration of a search.

    Attributes
    ----------
    index : int
        Position of the configuration in sampling (or grid) order.
    params : dict
        The configuration passed to the objective.
    score : float
        The objective's value (for :func:`~fastopt.train.asha_search`: the last
        score the trial reported, or what it returned); NaN if it failed.
    error : str or None
        ``"ExceptionType: message"`` when the objective raised (or its worker
        died), or did not return a real number.
    status : {"completed", "stopped", "failed"}
        ``"stopped"``: successive halving ended the trial at a rung. Default:
        ``"failed"`` if ``error`` is set, else ``"completed"``.
    resource : float or None
        :func:`~fastopt.train.asha_search`: the largest resource the trial
        reported (epochs, steps, ...); None for random and grid search.
    resource_used : float or None
        The resource the trial consumed in all: ``resource`` when every
        continuation resumed from its checkpoint, more when some restarted.
    history : tuple of (resource, score) pairs
        Every score the trial reported, in order.

    Examples
    --------
    >>> t = Trial(index=0, params={"lr": 0.1}, score=0.25)
    >>> t.status, t.error
    ('completed', None)
    >>> Trial(1, {"lr": 10.0}, float("nan"), "FloatingPointError: diverged").status
    'failed'
    """

    index: int
    params: dict[str, Any]
    score: float
    error: str | None = None
    status: str = ""
    resource: float | None = None
    resource_used: float | None = None
    history: tuple[tuple[float, float], ...] = field(default=())

    def __post_init__(self) -> None:
        status = self.status or ("failed" if self.error is not None else "completed")
        object.__setattr__(self, "status", check_choice(status, "status", STATUSES))
        object.__setattr__(self, "history", tuple((float(r), float(s)) for r, s in self.history))

    def __setstate__(self, state: dict[str, Any]) -> None:
        # pickles made before status/resource/resource_used/history existed lack them
        full = {"status": "", "resource": None, "resource_used": None, "history": ()}
        full.update(state)
        if not full["status"]:
            full["status"] = "failed" if full.get("error") is not None else "completed"
        self.__dict__.update(full)

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict of JSON types (NaN score: None, infinite: "inf"/"-inf").

        Examples
        --------
        >>> Trial(2, {"units": 64}, float("nan"), "ValueError: bad").to_dict()["score"] is None
        True
        """
        out = asdict(self)
        out["params"] = {k: _json_value(v, f"trials[{self.index}].params[{k!r}]")
                         for k, v in self.params.items()}
        out["score"] = _json_float(self.score)
        out["history"] = [[r, _json_float(s)] for r, s in self.history]
        return out

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Trial:
        """The inverse of :meth:`to_dict`.

        Examples
        --------
        >>> t = Trial(0, {"act": "relu"}, 0.5, resource=9.0, history=((1.0, 0.9), (9.0, 0.5)))
        >>> Trial.from_dict(t.to_dict()) == t
        True
        """
        fields = dict(record)
        fields["score"] = _float_from_json(fields["score"])
        fields["history"] = tuple((float(r), _float_from_json(s))
                                  for r, s in fields.get("history", ()))
        return cls(**fields)


def _json_float(x: float) -> float | str | None:
    if math.isnan(x):
        return None
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _float_from_json(x: float | str | None) -> float:
    return math.nan if x is None else float(x)


def _json_value(value: Any, name: str) -> Any:
    """A parameter value as JSON types (numpy scalars and tuples too)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return _json_float(value) if isinstance(value, float) else value
    raise TypeError(f"{name}: expected a JSON value (number, str, bool, None or a list of "
                    f"them), got {describe_value(value)}")


def _open(file: PathOrFile, mode: str) -> tuple[IO[str], bool]:
    """(stream, whether we opened it and must close it)."""
    if isinstance(file, (str, os.PathLike)):
        return open(file, mode, newline="" if "w" in mode else None, encoding="utf-8"), True
    if not callable(getattr(file, "write" if "w" in mode else "read", None)):
        raise TypeError(f"file: expected a path or a text file object, got {describe_value(file)}")
    return file, False


def _check_trials(trials: Iterable[Trial]) -> list[Trial]:
    out = list(trials)
    for i, t in enumerate(out):
        if not isinstance(t, Trial):
            raise TypeError(f"trials[{i}]: expected a Trial, got {describe_value(t)}")
    return out


def trials_to_csv(trials: Iterable[Trial], file: PathOrFile) -> None:
    """Write trials as CSV: one row per trial, one column per parameter.

    Columns: ``index, status, score, error, resource, resource_used``, then
    ``param:<name>`` for every parameter name (in order of first appearance),
    then ``history`` (the reported ``[resource, score]`` pairs as JSON). A NaN
    score (failed trial) is an empty cell. Read it back with any CSV reader
    (``pandas.read_csv``); :func:`trials_to_json` is the lossless format.

    Parameters
    ----------
    trials : iterable of Trial
        What :func:`~fastopt.train.random_search`, :func:`~fastopt.train.grid_search`
        or :func:`~fastopt.train.asha_search` returned.
    file : path or text file object

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> trials_to_csv([Trial(0, {"lr": 0.1}, 0.25), Trial(1, {"lr": 9.0}, float("nan"),
    ...                                                    "ValueError: diverged")], out)
    >>> print(out.getvalue().replace("\\r", ""), end="")
    index,status,score,error,resource,resource_used,param:lr,history
    0,completed,0.25,,,,0.1,[]
    1,failed,,ValueError: diverged,,,9.0,[]
    """
    records = [t.to_dict() for t in _check_trials(trials)]
    names: dict[str, None] = {}
    for r in records:
        names.update(dict.fromkeys(r["params"]))
    head = ["index", "status", "score", "error", "resource", "resource_used"]
    stream, close = _open(file, "w")
    try:
        writer = csv.writer(stream)
        writer.writerow(head + [f"param:{n}" for n in names] + ["history"])
        for r in records:
            row = ["" if r[k] is None else r[k] for k in head]
            row += [json.dumps(r["params"][n]) if isinstance(r["params"].get(n), list)
                    else r["params"].get(n, "") for n in names]
            writer.writerow(row + [json.dumps(r["history"])])
    finally:
        if close:
            stream.close()


def trials_to_json(trials: Iterable[Trial], file: PathOrFile) -> None:
    """Write trials as a JSON list of :meth:`Trial.to_dict` records (standard JSON:
    a NaN score is ``null``, an infinite one ``"inf"``/``"-inf"``).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> trials_to_json([Trial(0, {"lr": 0.1}, 0.25)], out)
    >>> trials_from_json(io.StringIO(out.getvalue())) == [Trial(0, {"lr": 0.1}, 0.25)]
    True
    """
    records = [t.to_dict() for t in _check_trials(trials)]
    stream, close = _open(file, "w")
    try:
        json.dump(records, stream, indent=1, allow_nan=False)
        stream.write("\n")
    finally:
        if close:
            stream.close()


def trials_from_json(file: PathOrFile) -> list[Trial]:
    """Read what :func:`trials_to_json` wrote (a list of :class:`Trial`, in file order).

    Examples
    --------
    >>> import io
    >>> trials_from_json(io.StringIO('[{"index": 3, "params": {"x": 1}, "score": null, '
    ...                              '"error": "KilledWorker: lost"}]'))[0].status
    'failed'
    """
    stream, close = _open(file, "r")
    try:
        records = json.load(stream)
    finally:
        if close:
            stream.close()
    if not isinstance(records, list):
        raise ValueError(f"file: expected a JSON list of trials, got {describe_value(records)}")
    return [Trial.from_dict(r) for r in records]
