"""Rebinding an optimizer to other arrays, and catching the stale-array mistake.

fastopt's optimizers update the arrays they were built with, in place. Code that replaces
an array instead (``params["W1"] = W1 - lr * dW1``, restoring a copy of the best weights,
loading a checkpoint into new arrays) leaves the optimizer stepping the old one, silently.
Two remedies, used by :class:`fastopt.optim.Optimizer`:

* :func:`rebind` -- the supported way: from now on step these arrays, with the state
  (moments, step counts) kept;
* :class:`Sources` -- the check: the optimizer remembers the mutable containers it was
  given (a list of arrays, a ``dict.values()`` view, a param group's ``"params"`` list)
  and, at each step, whether they still hold the arrays it steps. When an entry was
  replaced by another array, it warns once (:class:`StaleParamsWarning`) naming
  :meth:`~fastopt.optim.Optimizer.rebind`. The check costs one identity comparison per
  parameter. It cannot see a replacement in a container it was not given (a new list
  assigned to an attribute, a rebound local name): call ``rebind`` there.
"""

from __future__ import annotations

import bisect
import operator
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastopt import _kernels, _validation

__all__ = ["StaleParamsWarning", "Sources", "rebind"]

_DICT_VIEWS: tuple[type, ...] = (type({}.values()),)


class StaleParamsWarning(UserWarning):
    """A container given to an optimizer now holds other arrays than the ones it steps.

    The optimizer keeps updating the arrays it was given; call ``opt.rebind(params)`` to
    step the new ones (state kept). Make it an error with
    ``warnings.simplefilter("error", fastopt.StaleParamsWarning)``.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import fastopt
    >>> params = [np.ones(2)]
    >>> opt = fastopt.SGD(params, lr=0.1)
    >>> params[0] = np.zeros(2)                 # replaced, not updated in place
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = opt.step([np.ones(2)])
    >>> caught[0].category.__name__
    'StaleParamsWarning'
    """


def trackable(container: Any) -> bool:
    """Whether an optimizer can watch `container` for replaced entries: a list or a dict's
    values view (a tuple cannot change; a generator is consumed)."""
    return type(container) is list or isinstance(container, _DICT_VIEWS)


class Sources:
    """The containers an optimizer was given, each with what it held then (a snapshot) and
    the slice of the optimizer's parameters it stands for: a group index, or None for the
    whole flattened list (from :func:`rebind`)."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[Any, int | None, list[Any]]] = []

    def __bool__(self) -> bool:
        return bool(self.entries)

    def track(self, container: Any, group: int | None) -> None:
        if trackable(container):
            self.entries.append((container, group, list(container)))

    def reset(self) -> None:
        self.entries = []

    def check(self, owner: Any) -> None:
        """Warn (once per container, which is then no longer watched) when an entry of a
        watched container was replaced by an array that is not the parameter the optimizer
        steps at its position. Only the common prefix counts (a container that grew or
        shrank replaced nothing), and only the container's changes: editing
        ``opt.param_groups`` directly is the optimizer's own business."""
        stale = None
        for entry in self.entries:
            container, k, snapshot = entry
            if _kernels.same_prefix(container, snapshot):
                continue  # the common case: one pointer comparison per parameter, in C
            groups = owner.param_groups
            mine = _flat(groups) if k is None else groups[k]["params"] if k < len(groups) \
                else []
            replaced = [i for i, (a, before) in enumerate(zip(container, snapshot))
                        if a is not before and isinstance(a, np.ndarray)
                        and (i >= len(mine) or a is not mine[i])]
            if replaced:
                stale = stale or []
                stale.append((container, k, replaced, len(groups)))
            else:  # replaced by the optimizer's own arrays (or by non-arrays): accepted
                snapshot[:] = list(container)[:len(snapshot)]
        if stale is None:
            return
        for container, k, replaced, ngroups in stale:
            self.entries = [e for e in self.entries if e[0] is not container]
            where = "the params" if k is None or ngroups == 1 else f"param group {k}'s params"
            shown = ", ".join(map(str, replaced[:5])) + (", ..." if len(replaced) > 5 else "")
            warnings.warn(
                f"{type(owner).__name__}.step: {where} given to the optimizer now hold other "
                f"arrays at positions [{shown}] than the ones it updates: the optimizer still "
                "steps the old arrays (fastopt updates arrays in place, it does not follow "
                "assignments). Update the arrays in place (p[...] = new), or call "
                "opt.rebind(params) to step the new ones from now on, keeping the optimizer "
                "state", StaleParamsWarning, stacklevel=3)  # the caller of step()


def _flat(groups: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    return [p for g in groups for p in g["params"]]


def rebind(owner: Any, params: Any) -> None:
    """Replace the arrays `owner` steps by `params` (its flattened order), keeping state;
    see :meth:`fastopt.optim.Optimizer.rebind`. Checks everything before changing
    anything."""
    if isinstance(params, np.ndarray):
        raise TypeError("params: expected a list of arrays (one per parameter), got a single "
                        "array; wrap it in a list")
    if isinstance(params, dict):
        raise TypeError("params: expected a list of arrays (one per parameter, in the "
                        "flattened order of the param groups), got a dict; pass "
                        "list(params.values()) or params.values()")
    container = params
    try:
        new = list(params)
    except TypeError:
        raise TypeError("params: expected a list of arrays (one per parameter), got "
                        f"{_validation.describe_value(params)}") from None
    old = _flat(owner.param_groups)
    if len(new) != len(old):
        raise ValueError(f"params: expected {len(old)} arrays (one per parameter, in the "
                         f"flattened order of the param groups), got {len(new)}")
    new = list(_kernels.check_mixed_params(new, "params"))  # dtype, flags, no shared memory
    for i, (a, p) in enumerate(zip(new, old)):
        if a.shape != p.shape or a.dtype != p.dtype:
            raise ValueError(f"params[{i}]: expected an array of shape {p.shape} and dtype "
                             f"{p.dtype} (the parameter it replaces, whose state is kept), "
                             f"got shape {a.shape} and dtype {a.dtype}")
    clash = _shares_state_memory(new, owner.state)
    if clash is not None:
        i, key, name = clash
        raise ValueError(f"params[{i}]: shares memory with state[{key!r}][{name!r}] of this "
                         "optimizer, which the step updates in place; pass a separate array")
    start = 0
    for group in owner.param_groups:
        n = len(group["params"])
        group["params"] = new[start:start + n]
        start += n
    owner._sources.reset()
    owner._sources.track(container, None)
    owner._version.n += 1  # the cached pointer tables describe the old arrays


def _shares_state_memory(arrays: list[np.ndarray], state: dict
                         ) -> tuple[int, Any, str] | None:
    """The first (position, state key, state name) where an array of `arrays` overlaps a
    state array, or None (spans sorted by start: O((n + m) log m))."""
    spans = []
    for key, entry in state.items():
        for name, a in entry.items():
            if isinstance(a, np.ndarray) and a.nbytes:
                start = a.__array_interface__["data"][0]
                spans.append((start, start + a.nbytes, key, name))
    if not spans:
        return None
    spans.sort(key=operator.itemgetter(0))
    starts = [s[0] for s in spans]
    reach = []  # the furthest end among spans[:j + 1]
    best = -1
    for s in spans:
        best = max(best, s[1])
        reach.append(best)
    for i, a in enumerate(arrays):
        if not a.nbytes:
            continue
        lo = a.__array_interface__["data"][0]
        hi = lo + a.nbytes
        j = bisect.bisect_left(starts, hi) - 1  # the last span starting before hi
        if j >= 0 and reach[j] > lo:
            for s in spans[:j + 1]:
                if s[1] > lo:
                    return i, s[2], s[3]
    return None
