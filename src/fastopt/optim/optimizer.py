"""The optimizer base class: param groups, lazy state, lr schedules and state_dict."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import numpy as np

from fastopt import _kernels, torch_state

LearningRate = Union[float, Callable[[int], float]]
ParamsArg = Union[Iterable[np.ndarray], Iterable[dict[str, Any]]]

#: One unit of work for the kernel: (options, positions of its params in the flattened
#: param list, params, state columns (list of arrays or None), step counters or None).
Unit = tuple

#: State columns of one unit: one list of arrays per state name, None for a name the
#: group's options leave unused.
Columns = list[Union[list[np.ndarray], None]]

#: Supplies the state entry `name` (a state array, or "step" for the step counter) of the
#: k-th parameter of a unit when the state lacks it, or returns None to give up.
MakeState = Callable[[int, str, np.ndarray], Union[np.ndarray, None]]


class _Version:
    """A counter shared by an optimizer and its tracked dicts: any change to the state
    invalidates the cached pointer tables (StepPlan) of the optimizer."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class _TrackedDict(dict):
    """A dict that bumps a version counter whenever it is changed.

    ``Optimizer.state`` and each ``state[i]`` are tracked dicts, so replacing or removing a
    state array through them makes the next ``step()`` rebuild its pointer tables instead
    of updating a stale array. (Changing an array's *contents* in place needs nothing.)
    Pickles as a plain dict.
    """

    __slots__ = ("_version",)

    def __init__(self, version: _Version, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._version = version

    def _touch(self) -> None:
        self._version.n += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._touch()

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._touch()

    def clear(self) -> None:
        super().clear()
        self._touch()

    def pop(self, *args: Any) -> Any:
        self._touch()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._touch()
        return super().popitem()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touch()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._touch()

    # mypy requires an in-place operator to match dict.__or__'s overloads item for item, a
    # check that typeshed's own dict.__ior__ signature fails too: a false positive here.
    def __ior__(self, other: Any) -> _TrackedDict:  # type: ignore[misc]
        super().update(other)
        self._touch()
        return self

    def __reduce__(self) -> Any:
        return (dict, (dict(self),))


class Optimizer:
    """Base class of fastopt's optimizers (torch.optim.Optimizer's shape, on numpy arrays).

    Parameters are numpy arrays (float32/float64, C-contiguous, writeable) updated in place.
    ``params`` is a list of arrays or a list of dicts ``{"params": [...], <options>}`` (param
    groups); options missing from a group take the constructor's values. ``lr`` may be a
    float or a schedule: any callable ``lr(step)`` of the group's step count (the number of
    steps already taken), e.g. from :mod:`fastopt.schedules`.

    Each step is one C call per param group and dtype over all its tensors (work split by
    total elements between threads), with the GIL released. The pointer tables of params
    and state are validated once and cached; a step only checks the gradients.

    State (``opt.state[i]``, keyed by the parameter's position in the flattened param list)
    is allocated lazily on a parameter's first update, with the parameter's dtype, and holds
    ``"step"`` (a 0-d int64 array: the updates this parameter has had, as torch's per-param
    step) for every optimizer but SGD.

    Subclasses implement ``_options(group, lr)`` (the validated kernel options of a group)
    and may override ``_fill`` (initial value of a new state array) and ``_units`` (how a
    group splits into kernel calls on the first step).
    """

    #: every state array the family may allocate (which ones a group uses depends on its
    #: options, e.g. ``max_exp_avg_sq`` only with amsgrad)
    state_names: tuple[str, ...] = ()
    #: whether the state holds a per-parameter step counter
    _has_step: bool = True

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self._version = _Version()
        self._lock = threading.Lock()
        self._plan: _kernels.StepPlan | None = None
        self._plan_version = -1
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._state = _TrackedDict(self._version)
        if isinstance(params, np.ndarray):
            raise TypeError("params: expected a list of arrays or of param-group dicts, got "
                            "a single array; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError("params: got an empty list of parameters")
        dicts = [g for g in groups if isinstance(g, dict)]
        if len(dicts) == len(groups):
            for group in dicts:
                self.add_param_group(group)
        elif dicts:
            raise TypeError("params: mix of arrays and param-group dicts; use one or the other")
        else:
            self.add_param_group({"params": groups})

    # -- state ------------------------------------------------------------------------
    @property
    def state(self) -> dict[int, dict[str, Any]]:
        """Per-parameter state ``{position: {name: array}}`` (a dict that tracks changes)."""
        return self._state

    @state.setter
    def state(self, value: dict[int, dict[str, Any]]) -> None:
        self._state = self._track_state(value)
        self._version.n += 1

    def _track_state(self, value: dict) -> _TrackedDict:
        return _TrackedDict(self._version, {k: _TrackedDict(self._version, v)
                                            for k, v in dict(value).items()})

    # -- groups ------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (validated now)."""
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError("param_group: expected a dict with a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(_kernels.check_params(list(params), "params"))
        if not params:
            raise ValueError("params: a param group must hold at least one array")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear in more than one group")
        _kernels.check_params([p for g in self.param_groups for p in g["params"]] + params,
                              "params")  # no two parameters may share memory
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group.setdefault("step", 0)
        self._check_group(group)
        self.param_groups.append(group)
        self._version.n += 1

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's options through the kernel boundary's own checks."""
        step = group.get("step")
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) \
                or step < 0:
            raise ValueError(f"step: expected a non-negative int, got {step!r}")
        self._options(group, self._lr(group))

    @staticmethod
    def _lr(group: dict[str, Any]) -> float:
        lr = group["lr"]
        return lr(group["step"]) if callable(lr) else lr

    # -- what subclasses provide ---------------------------------------------------------
    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        """The validated kernel options of `group` at learning rate `lr`."""
        raise NotImplementedError

    def _fill(self, name: str, group: dict[str, Any]) -> float:
        """Initial value of a new state array `name`."""
        return 0.0

    def _units(self, options: _kernels.KernelOptions, group: dict[str, Any], lr: float,
               indices: list[int], params: list[np.ndarray], columns: list, steps: list | None,
               created: list[bool]) -> list[Unit]:
        """Split one group's update into kernel calls (default: one). `lr` is this step's
        learning rate, `created[k]` whether params[k]'s state is allocated by this step."""
        return [(options, indices, params, columns, steps)]

    def _gather_state(self, options: _kernels.KernelOptions, indices: Sequence[int],
                      params: Sequence[np.ndarray], make: MakeState
                      ) -> tuple[Columns, list[np.ndarray] | None] | None:
        """The state columns of `params` (at positions `indices` of the flattened list)
        for `options`, and their step counters (None if the family keeps none). An entry
        the state lacks comes from ``make(k, name, params[k])``; None if `make` gives up."""
        state = self._state

        def column(name: str) -> list[np.ndarray] | None:
            arrays = []
            for k, (i, p) in enumerate(zip(indices, params)):
                arr = state.get(i, {}).get(name)
                if arr is None:
                    arr = make(k, name, p)
                    if arr is None:
                        return None
                arrays.append(arr)
            return arrays

        columns: Columns = []
        for name, used in zip(options.state_names, options.used):
            if not used:
                columns.append(None)
                continue
            arrays = column(name)
            if arrays is None:
                return None
            columns.append(arrays)
        steps = None
        if self._has_step:
            steps = column("step")
            if steps is None:
                return None
        return columns, steps

    # -- stepping ----------------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray | None], skip_if_nonfinite: bool = False) -> bool:
        """Apply one update with `grads`, given in the flattened order of the params.

        An entry may be None to leave that parameter (and its state and step count)
        untouched this step. With ``skip_if_nonfinite=True``, if any gradient holds NaN or
        Inf nothing is changed (no parameter, no state, no step count) and False is
        returned — what mixed-precision loss scaling needs; the check is one parallel
        pre-scan of the gradients. Otherwise NaN/Inf propagate as the formulas say.

        Returns True when the update was applied. Raises TypeError/ValueError (nothing
        modified) for bad gradients or options, and RuntimeError if another thread is
        inside ``step()`` of this same optimizer.
        """
        if not self._lock.acquire(False):
            raise RuntimeError(
                f"{type(self).__name__}.step: another thread is running step() on this "
                "optimizer; one optimizer may be stepped by one thread at a time (give each "
                "thread its own optimizer, or serialize the calls with a lock)")
        try:
            return self._step(grads, skip_if_nonfinite)
        finally:
            self._lock.release()

    def _step(self, grads: Any, skip: bool) -> bool:
        if type(grads) is not list:
            grads = [grads] if isinstance(grads, np.ndarray) else list(grads)
        if skip is not False and skip is not True:
            skip = _kernels_bool(skip, "skip_if_nonfinite")
        groups = self.param_groups
        lrs = [self._lr(group) for group in groups]
        options = [self._options(group, lr) for group, lr in zip(groups, lrs)]
        plan = self._plan
        if plan is None or self._plan_version != self._version.n \
                or not plan.matches(groups, options):
            plan = self._full_plan(options)
        if plan is None or not plan.bind(grads):
            return self._step_general(grads, options, lrs, skip)
        try:
            if skip and not plan.all_finite():
                return False
            for k in range(len(options)):
                plan.run(k, options[k])
            plan.advance()
        finally:
            plan.release()
        for group in groups:
            group["step"] += 1
        return True

    def _full_plan(self, options: list) -> _kernels.StepPlan | None:
        """Pointer tables of every param and its state (one unit per group), or None while
        some parameter lacks state (then the general path allocates it)."""
        self._plan = None
        units, names, start = [], [], 0
        for group, o in zip(self.param_groups, options):
            params = group["params"]
            indices = range(start, start + len(params))
            start += len(params)
            gathered = self._gather_state(o, indices, params, lambda k, name, p: None)
            if gathered is None:
                return None
            columns, steps = gathered
            units.append((params, columns, steps))
            names.append(o.state_names)
        self._plan = _kernels.StepPlan(units, names)
        self._plan_version = self._version.n
        return self._plan

    def _step_general(self, grads: list, options: list, lrs: list, skip: bool) -> bool:
        """A step that allocates missing state or skips None gradients: builds a one-off
        plan over the parameters that have a gradient, commits new state on success."""
        total = sum(len(group["params"]) for group in self.param_groups)
        if len(grads) != total:
            raise ValueError(f"grads: expected {total} gradients (one per parameter), "
                             f"got {len(grads)}")
        state = self._state
        new: dict[int, dict[str, Any]] = {}
        units: list[Unit] = []
        start = 0
        for group, o, lr in zip(self.param_groups, options, lrs):
            params = group["params"]
            indices = [start + k for k in range(len(params)) if grads[start + k] is not None]
            sub = [params[i - start] for i in indices]
            start += len(params)
            if not indices:
                continue
            created = [False] * len(indices)

            def allocate(k: int, name: str, p: np.ndarray) -> np.ndarray:
                # called within this iteration; the new entries wait in `new` until the
                # step succeeds, and `created` marks new state arrays, not step counters
                if name == "step":
                    entry = np.zeros((), np.int64)
                else:
                    entry = np.full(p.shape, self._fill(name, group), dtype=p.dtype)
                    created[k] = True
                new.setdefault(indices[k], {})[name] = entry
                return entry

            gathered = self._gather_state(o, indices, sub, allocate)
            assert gathered is not None  # allocate never gives up
            columns, steps = gathered
            units.extend(self._units(o, group, lr, indices, sub, columns, steps, created))
        if units:
            plan = _kernels.StepPlan([(u[2], u[3], u[4]) for u in units],
                                     [u[0].state_names for u in units])
            order = [i for u in units for i in u[1]]
            plan.bind([grads[i] for i in order], order)
            try:
                if skip and not plan.all_finite():
                    return False
                for k, unit in enumerate(units):
                    plan.run(k, unit[0])
                plan.advance()
            finally:
                plan.release()
            for i, entries in new.items():
                slot = state.get(i)
                if slot is None:
                    dict.__setitem__(state, i, _TrackedDict(self._version, entries))
                else:
                    dict.update(slot, entries)
            if new:
                self._version.n += 1
        for group in self.param_groups:
            group["step"] += 1
        return True

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint of plain dicts, numbers and numpy arrays (copies, safe to keep).

        ``{"state": {index: {name: array, "step": int}}, "param_groups": [{options,
        "step": k, "params": [indices]}]}`` — torch's layout, keyed by parameter position.
        A schedule stored as ``lr`` is deep-copied (so a stateful one, ReduceLROnPlateau, is
        a snapshot too; pickle the checkpoint only if the schedule pickles).
        """
        groups, start = [], 0
        for group in self.param_groups:
            # deep copies: a stateful schedule (ReduceLROnPlateau) as lr must be a snapshot
            entry = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            entry["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(entry)
        state = {}
        for i, slots in self._state.items():
            state[i] = {k: (int(v) if k == "step" else np.array(v, copy=True))
                        for k, v in slots.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a checkpoint from :meth:`state_dict` (arrays are copied).

        Checks everything before changing anything: the number of groups and of parameters
        per group, every state array's shape and dtype against its parameter, the state
        names each group's options need, and the options themselves. Raises ValueError or
        TypeError naming the first mismatch.
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise TypeError("state_dict: expected a dict with 'state' and 'param_groups'")
        torch_state.reject_torch_state_dict(state_dict)  # convert those with from_torch_state_dict
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} param groups, this "
                             f"optimizer has {len(self.param_groups)}")
        renumber: dict[Any, int] = {}
        start = 0
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, dict):
                raise TypeError(f"state_dict: param group {k} is not a dict")
            ids = list(saved.get("params", []))
            if len(ids) != len(group["params"]):
                raise ValueError(f"state_dict: param group {k} has {len(ids)} parameters, "
                                 f"this optimizer's has {len(group['params'])}")
            for j, old in enumerate(ids):
                key = _as_key(old)
                if key in renumber:
                    raise ValueError(f"state_dict: parameter {old!r} appears twice")
                renumber[key] = start + j
            start += len(group["params"])
        flat = [p for group in self.param_groups for p in group["params"]]
        group_of = [k for k, group in enumerate(self.param_groups) for _ in group["params"]]
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            merged = dict(group)
            merged.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            self._check_group(merged)
            new_groups.append(merged)
        new_state: dict[int, dict[str, Any]] = {}
        for key, slots in dict(state_dict["state"]).items():
            if _as_key(key) not in renumber:
                raise ValueError(f"state_dict: state for parameter {key!r}, which no group "
                                 "holds")
            i = renumber[_as_key(key)]
            p = flat[i]
            group = new_groups[group_of[i]]
            options = self._options(group, self._lr(group))
            needed = {n for n, used in zip(options.state_names, options.used) if used}
            allowed = set(self.state_names) | ({"step"} if self._has_step else set())
            slots = dict(slots)
            if not slots:
                continue
            for name in slots:
                if name not in allowed:
                    raise ValueError(f"state_dict: state[{key!r}] has an unknown entry "
                                     f"{name!r}; {type(self).__name__} keeps "
                                     f"{sorted(allowed)}")
            missing = (needed | ({"step"} if self._has_step else set())) - set(slots)
            if missing:
                raise ValueError(f"state_dict: state[{key!r}] lacks {sorted(missing)}, which "
                                 "this parameter group's options need")
            entry: dict[str, Any] = {}
            for name, value in slots.items():
                if name == "step":
                    entry[name] = _load_step(value, key)
                    continue
                arr = np.asarray(value)
                if arr.shape != p.shape:
                    raise ValueError(f"state_dict: state[{key!r}][{name!r}] has shape "
                                     f"{arr.shape}, the parameter has shape {p.shape}")
                if arr.dtype != p.dtype:
                    raise ValueError(f"state_dict: state[{key!r}][{name!r}] has dtype "
                                     f"{arr.dtype}, the parameter has dtype {p.dtype}")
                entry[name] = np.array(arr, dtype=p.dtype, order="C", copy=True)
            new_state[i] = entry
        for group, merged in zip(self.param_groups, new_groups):
            group.clear()
            group.update(merged)
        self.state = new_state

    # -- pickling, repr ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for key in ("_lock", "_plan", "_version"):
            d.pop(key, None)
        d["_state"] = {i: dict(s) for i, s in self._state.items()}
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        state = d.pop("_state")
        self.__dict__.update(d)
        self._version = _Version()
        self._lock = threading.Lock()
        self._plan = None
        self._plan_version = -1
        self._state = self._track_state(state)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]!r}")
        lines.append(")")
        return "\n".join(lines)


def _kernels_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)


def _as_key(key: Any) -> Any:
    """State keys saved by np.savez/json come back as numpy ints or strings of ints."""
    if isinstance(key, (np.integer,)):
        return int(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return key


def _load_step(value: Any, key: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != () or not (np.issubdtype(arr.dtype, np.integer)
                               or (np.issubdtype(arr.dtype, np.floating)
                                   and float(arr) == int(arr))):
        raise ValueError(f"state_dict: state[{key!r}]['step'] must be a non-negative integer, "
                         f"got {value!r}")
    if int(arr) < 0:
        raise ValueError(f"state_dict: state[{key!r}]['step'] must be non-negative, "
                         f"got {value!r}")
    return np.array(int(arr), dtype=np.int64)
