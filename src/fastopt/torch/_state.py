"""``opt.state`` of fastopt.torch's optimizers: torch's ``{param: {name: tensor}}``, tracked.

torch.optim keeps its state in a ``defaultdict(dict)`` and reads it again on every step.
fastopt.torch instead caches pointer tables (StepPlans) over numpy views of the state
tensors, so it must learn when an entry is replaced rather than updated in place: the state
and each parameter's entry are dicts that bump a shared version counter on every change.
"""

from __future__ import annotations

from typing import Any

from fastopt.optim.optimizer import _TrackedDict, _Version

__all__ = ["TrackedState", "Version"]

Version = _Version


class TrackedState(_TrackedDict):
    """``{param: {name: tensor}}`` like torch's ``defaultdict(dict)``, whose changes (and its
    entries' changes) bump a version counter. Pickles and deep-copies as a plain dict."""

    __slots__ = ()

    def __init__(self, version: _Version, state: Any = ()) -> None:
        super().__init__(version, {k: _TrackedDict(version, v) for k, v in dict(state).items()})

    def __missing__(self, key: Any) -> _TrackedDict:
        entry = _TrackedDict(self._version)
        self[key] = entry
        return entry

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, dict) and not isinstance(value, _TrackedDict):
            value = _TrackedDict(self._version, value)  # opt.state[p] = {...} stays tracked
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]
