"""The optimizer base class: param groups, lazy state, lr schedules and state_dict.

What differs between optimizers -- their state arrays, per-parameter scalars, option
ranges and kernel -- is their family's entry in :mod:`fastopt.optim.families`; a class adds
torch's constructor signature, its docstring and ``_options`` (its group's options as the
kernel's)."""

from __future__ import annotations

import copy
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from fastopt import _kernels, _placement, _validation, torch_state
from fastopt.optim import rebinding, storage
from fastopt.optim.families import Family
from fastopt.optim.lowprec import COMPENSATION, LowPrecision, math_dtype

LearningRate = float | Callable[[int], float]
ParamsArg = Iterable[np.ndarray] | Iterable[dict[str, Any]]

#: One unit of work for the kernel: (options, positions of its params in the flattened
#: param list, params, state columns (list of arrays or None), scalars (dict name -> list of
#: 0-d arrays, one per param; empty for a family without any)).
Unit = tuple

#: State columns of one unit: one list of arrays per state name, None for a name the
#: group's options leave unused.
Columns = list[list[np.ndarray] | None]

#: Supplies the state entry `name` (a state array, or a scalar such as "step") of the
#: k-th parameter of a unit when the state lacks it, or returns None to give up.
MakeState = Callable[[int, str, np.ndarray], np.ndarray | None]


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


def _full_state(p: np.ndarray, fill: float, nonnegative: bool,
                avoid: Sequence[int] = ()) -> np.ndarray:
    """A state array in the parameter's dtype, `fill` everywhere, placed away from the
    addresses `avoid` of the other streams of the step (:mod:`fastopt._placement`)."""
    return _placement.placed_full(p, fill, avoid)


class Optimizer:
    """Base class of fastopt's optimizers (torch.optim.Optimizer's shape, on numpy arrays).

    Parameters are numpy arrays (float32/float64, C-contiguous, writeable) updated in place.
    ``params`` is a list of arrays or a list of dicts ``{"params": [...], <options>}`` (param
    groups); options missing from a group take the constructor's values. ``lr`` may be a
    float or a schedule: any callable ``lr(step)`` of the group's step count (the number of
    steps already taken), e.g. from :mod:`fastopt.schedules`; so may every other float
    option, alone (``momentum=sched``) or inside a pair (``betas=(sched, 0.999)``).

    Each step is one C call per param group and dtype over all its tensors (work split by
    total elements between threads), with the GIL released. The pointer tables of params
    and state are validated once and cached; a step only checks the gradients.

    State (``opt.state[i]``, keyed by the parameter's position in the flattened param list)
    is allocated lazily on a parameter's first update, with the parameter's dtype, and holds
    the family's scalars as 0-d arrays: ``"step"`` (int64: the updates this parameter has
    had, as torch's per-param step) for every optimizer but SGD, and NAdam's
    ``"mu_product"`` (float64).

    Every optimizer also takes ``state_dtype`` ("bfloat16" or "int8": state arrays of
    tensors with at least ``min_lowprec_size`` elements stored in fewer bits, see
    :mod:`fastopt.optim.storage`; ``state_seed`` seeds bfloat16's stochastic rounding).

    Parameters may also be bfloat16 arrays (``ml_dtypes.bfloat16``, an optional
    dependency), with float32 or bfloat16 gradients: each step decodes them, updates them
    in float32 with float32 state (or ``state_dtype``'s), and rounds them back in the same
    pass, stochastically (``param_rounding="stochastic"``, the default: 16 Philox bits per
    element, seeded by ``state_seed``, drawn anew each step, the same for any thread
    count), to nearest even (``"nearest"``, which loses every update below half a
    bfloat16 ulp, 2^-9 of the value), or to nearest with the rounding error kept in a
    bfloat16 buffer, the state entry ``param_compensation`` (``"kahan"``: Kahan-compensated
    updates, 2 more bytes per element).

    Subclasses set ``family`` (their entry of :mod:`fastopt.optim.families`), implement
    ``_options(group, lr)`` (the validated kernel options of a group) and may override
    ``_units`` (how a group splits into kernel calls on the first step). A ``{formula}`` in
    a subclass's docstring becomes its family's documented formula.

    Examples
    --------
    Every optimizer is one of these; two param groups with their own learning rates:

    >>> import numpy as np
    >>> import fastopt
    >>> w, b = np.ones(3, np.float32), np.zeros(1, np.float32)
    >>> opt = fastopt.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    >>> isinstance(opt, fastopt.Optimizer)
    True
    >>> opt.step([np.ones(3, np.float32), np.ones(1, np.float32)])
    True
    >>> w, b
    (array([0.9, 0.9, 0.9], dtype=float32), array([-0.5], dtype=float32))
    """

    #: the optimizer family: state arrays, scalars, option ranges, kernel
    family: Family
    #: every state array the family may allocate (which ones a group uses depends on its
    #: options, e.g. ``max_exp_avg_sq`` only with amsgrad)
    state_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        family = getattr(cls, "family", None)
        if family is None:
            return
        cls.state_names = family.state_names
        if cls.__doc__ and "{formula}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.replace(
                "{formula}", textwrap.indent(family.formula, " " * 8).lstrip())

    def __init__(self, params: ParamsArg, defaults: dict[str, Any], *,
                 state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0, param_rounding: str = "stochastic") -> None:
        # the low-precision step runs when state is stored low or a param is bfloat16
        self._lowprec_config = LowPrecision(state_dtype, min_lowprec_size, state_seed,
                                            param_rounding)
        self._lowprec = None if state_dtype is None else self._lowprec_config
        self._version = _Version()
        self._lock = threading.Lock()
        self._plan: _kernels.StepPlan | None = None
        self._plan_version = -1
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._state = _TrackedDict(self._version)
        self._sources = rebinding.Sources()  # the user's containers, watched for replacements
        self._scheduled: set[int] = set()  # ids of groups with scheduled options
        if isinstance(params, np.ndarray):
            raise TypeError("params: expected a list of arrays or of param-group dicts, got "
                            "a single array; wrap it in a list")
        if isinstance(params, dict):
            raise TypeError("params: expected a list of arrays or of param-group dicts, got "
                            "a dict; pass params.values() (the arrays in the dict's order, "
                            "which is then the order of step()'s grads)")
        groups = list(params)
        if not groups:
            raise ValueError("params: expected a non-empty list of arrays or param groups, "
                             "got an empty one")
        dicts = [g for g in groups if isinstance(g, dict)]
        if len(dicts) == len(groups):
            for group in dicts:
                self.add_param_group(group)
        elif dicts:
            raise TypeError("params: expected a list of arrays or a list of param-group "
                            "dicts, got a mix of both")
        else:
            self.add_param_group({"params": params if rebinding.trackable(params) else groups})

    # -- state ------------------------------------------------------------------------
    @property
    def state_dtype(self) -> str | None:
        """How large state arrays are stored: None (the parameter's dtype), "bfloat16" or
        "int8" (:mod:`fastopt.optim.storage`)."""
        return None if self._lowprec is None else self._lowprec.dtype

    @property
    def state_nbytes(self) -> int:
        """Bytes held by the state arrays of every parameter (int8: codes and block absmax;
        bfloat16: 2 per element), not counting per-parameter scalars such as ``step``."""
        return sum(int(v.nbytes) for slots in self._state.values() for v in slots.values()
                   if isinstance(v, (storage.Int8State, storage.BFloat16State))
                   or (isinstance(v, np.ndarray) and v.ndim > 0))

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
            raise TypeError("param_group: expected a dict with a 'params' entry, got "
                            f"{_validation.describe_value(param_group)}")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        params = list(_kernels.check_mixed_params(list(params), "params"))
        if not params:
            raise ValueError("params: expected at least one array in a param group, got none")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("params: some parameters appear in more than one group")
        _kernels.check_mixed_params([p for g in self.param_groups for p in g["params"]]
                                    + params, "params")  # no two parameters may share memory
        if any(map(_kernels.is_bfloat16, params)):
            self._lowprec = self._lowprec_config
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group.setdefault("step", 0)
        self._check_group(group)
        self.param_groups.append(group)
        self._sources.track(param_group["params"], len(self.param_groups) - 1)
        self._version.n += 1

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's options: the kernel's through the boundary's own checks, the
        class's own (initial values) through their constraints in the family table."""
        group["step"] = _validation.check_int(group.get("step"), "step", 0)
        for option in self.family.class_options:
            option.constraint.check(group[option.name], option.name)
        self._options_at(group, self._lr(group), remember=False)

    @staticmethod
    def _lr(group: dict[str, Any]) -> float:
        lr = group["lr"]
        return lr(group["step"]) if callable(lr) else lr

    def _options_at(self, group: dict[str, Any], lr: float,
                    remember: bool = True) -> _kernels.KernelOptions:
        """The kernel options of `group` at its step. Options given as schedules (a
        callable of the step, alone or in a tuple such as ``betas``) are evaluated first;
        a group found to hold one is remembered, so plain groups never pay the search."""
        values = self._group_values(group)
        try:
            return self._options(values, lr)
        except TypeError:  # a kernel option that is not a number: a schedule?
            if values is not group:
                raise
            evaluated = scheduled_values(group)
            if evaluated is None:
                raise
            if remember:
                self._scheduled.add(id(group))
            return self._options(evaluated, lr)

    def _group_values(self, group: dict[str, Any]) -> dict[str, Any]:
        """`group` with its scheduled options evaluated at its step (`group` itself when it
        holds none)."""
        if self._scheduled and id(group) in self._scheduled:
            values = scheduled_values(group)
            if values is not None:
                return values
            self._scheduled.discard(id(group))
        return group

    # -- what subclasses provide ---------------------------------------------------------
    def _options(self, group: dict[str, Any], lr: float) -> _kernels.KernelOptions:
        """The validated kernel options of `group` at learning rate `lr`."""
        raise NotImplementedError

    def _units(self, options: _kernels.KernelOptions, group: dict[str, Any], lr: float,
               indices: list[int], params: list[np.ndarray], columns: list,
               scalars: dict[str, list[np.ndarray]], created: list[bool]) -> list[Unit]:
        """Split one group's update into kernel calls (default: one). `lr` is this step's
        learning rate, `created[k]` whether params[k]'s state is allocated by this step."""
        return [(options, indices, params, columns, scalars)]

    @staticmethod
    def _pair(value: Any, name: str, parts: str) -> tuple[Any, Any]:
        """A two-element option such as ``betas``."""
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(f"{name}: expected a pair {parts}, got "
                            f"{_validation.describe_value(value)}")
        return value[0], value[1]

    def _gather_state(self, options: _kernels.KernelOptions, indices: Sequence[int],
                      params: Sequence[np.ndarray], make: MakeState
                      ) -> tuple[Columns, dict[str, list[np.ndarray]]] | None:
        """The state columns of `params` (at positions `indices` of the flattened list)
        for `options`, and their scalars ({name: one 0-d array per param}, in the family's
        order). An entry the state lacks comes from ``make(k, name, params[k])``; None if
        `make` gives up."""
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
        scalars = {}
        for scalar in self.family.scalars:
            arrays = column(scalar.name)
            if arrays is None:
                return None
            scalars[scalar.name] = arrays
        return columns, scalars

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
        inside ``step()`` of this same optimizer. Warns (:class:`StaleParamsWarning`, once)
        when a list or ``dict.values()`` given as params now holds other arrays (see
        :meth:`rebind`).
        """
        if self._sources:
            self._sources.check(self)
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
        if self._lowprec is not None:
            return self._lowprec.step(self, grads, skip)
        if type(grads) is not list:
            grads = [grads] if isinstance(grads, np.ndarray) else list(grads)
        if skip is not False and skip is not True:
            skip = _validation.check_bool(skip, "skip_if_nonfinite")
        groups = self.param_groups
        lrs = [self._lr(group) for group in groups]
        options = [self._options_at(group, lr) for group, lr in zip(groups, lrs)]
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
            columns, scalars = gathered
            units.append(_plan_unit(params, columns, scalars))
            names.append(o.state_names)
        self._plan = _kernels.StepPlan(units, names)
        self._plan_version = self._version.n
        return self._plan

    def _state_allocator(self, values: dict[str, Any], indices: list[int], created: list[bool],
                         new: dict[int, dict[str, Any]],
                         make_array: Callable[..., Any], grads: Sequence[Any] = ()
                         ) -> Callable[[int, str, np.ndarray], Any]:
        """``allocate(k, name, p)`` for ``_gather_state``: a missing state entry of the k-th
        parameter of a group (options `values`), a family scalar at its initial value or
        ``make_array(p, fill, nonnegative, avoid)``, `avoid` the addresses of the streams
        the new array meets in a step: p, its gradient (from `grads`, in the flattened
        order, when given) and its other state arrays. The new entries wait in `new` (by
        parameter index) until the step succeeds; ``created[k]`` marks a new state array."""
        scalar_specs = {s.name: s for s in self.family.scalars}

        def streams(k: int, p: np.ndarray) -> list[int]:
            i = indices[k]
            found = [p, grads[i] if i < len(grads) else None,
                     *self._state.get(i, {}).values(), *new.get(i, {}).values()]
            return _placement.addresses(found)

        def allocate(k: int, name: str, p: np.ndarray) -> Any:
            if name in scalar_specs:
                spec = scalar_specs[name]
                entry = np.array(spec.initial, dtype=spec.dtype)
            else:
                state = self.family.state(name)
                entry = make_array(p, self.family.fill(state, values),
                                   state.values == "nonnegative", streams(k, p))
                created[k] = True
            new.setdefault(indices[k], {})[name] = entry
            return entry
        return allocate

    def _step_general(self, grads: list, options: list, lrs: list, skip: bool) -> bool:
        """A step that allocates missing state or skips None gradients: builds a one-off
        plan over the parameters that have a gradient, commits new state on success."""
        total = sum(len(group["params"]) for group in self.param_groups)
        if len(grads) != total:
            raise ValueError(f"grads: expected {total} gradients (one per parameter), "
                             f"got {len(grads)}")
        new: dict[int, dict[str, Any]] = {}
        units: list[Unit] = []
        for _group, o, lr, values, indices, sub in self._groups_with_grads(grads, options, lrs):
            created = [False] * len(indices)
            allocate = self._state_allocator(values, indices, created, new, _full_state, grads)
            gathered = self._gather_state(o, indices, sub, allocate)
            assert gathered is not None  # allocate never gives up
            columns, scalars = gathered
            units.extend(self._units(o, values, lr, indices, sub, columns, scalars, created))
        if units:
            plan = _kernels.StepPlan([_plan_unit(u[2], u[3], u[4]) for u in units],
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
        self._commit_step(new)
        return True

    def _commit_step(self, new: dict[int, dict[str, Any]]) -> None:
        """After a successful update: store the state entries it allocated (`new`, by
        parameter position) and count the step in every group."""
        state = self._state
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

    def _groups_with_grads(self, grads: list, options: list, lrs: list) -> Iterator[tuple]:
        """(group, options, lr, values, indices, params) for each group where some parameter
        has a gradient: `values` its options at this step, `indices` the positions of those
        parameters in the flattened list, `params` the parameters."""
        start = 0
        for group, o, lr in zip(self.param_groups, options, lrs):
            params = group["params"]
            indices = [start + k for k in range(len(params)) if grads[start + k] is not None]
            if indices:
                yield (group, o, lr, self._group_values(group), indices,
                       [params[i - start] for i in indices])
            start += len(params)

    def rebind(self, params: Iterable[np.ndarray]) -> None:
        """Step other arrays from now on, keeping the state (moments, step counts).

        fastopt updates the arrays it was given in place and cannot follow an assignment
        such as ``params[k] = new_array`` (a cs231n-style ``w = w - lr * dw``, restoring a
        copy of the best weights, loading a checkpoint into new arrays): the optimizer
        would go on stepping the old arrays. After such an assignment, call
        ``opt.rebind(params)``.

        Parameters
        ----------
        params : sequence of ndarray
            One array per parameter, in the flattened order of the param groups (the order
            of :meth:`step`'s grads); a list or ``dict.values()``. Each must have the
            shape and dtype of the parameter it replaces (its state is kept) and be
            writeable and C-contiguous; no two may share memory, nor with a state array.
            An entry may be the current array (left as it is).

        Raises TypeError/ValueError naming the first bad entry; nothing changes then.

        Notes
        -----
        The optimizer watches the list (or ``dict.values()`` view, or a param group's
        ``"params"`` list) it was given -- after ``rebind``, the one given here -- and
        :meth:`step` warns once (:class:`~fastopt.StaleParamsWarning`) when an entry
        of it was replaced by another array without ``rebind``. A replacement in a container
        the optimizer was not given (a new list, a rebound name) cannot be seen.

        Examples
        --------
        >>> import numpy as np
        >>> import fastopt
        >>> params = {"W": np.ones(2), "b": np.zeros(1)}
        >>> opt = fastopt.Adam(params.values(), lr=0.1)
        >>> opt.step([np.ones(2), np.ones(1)])
        True
        >>> params["W"] = params["W"] * 0.5           # a new array: the optimizer must know
        >>> opt.rebind(params.values())
        >>> opt.step([np.ones(2), np.ones(1)])
        True
        >>> params["W"], int(opt.state[0]["step"])   # stepped, with the state kept
        (array([0.35, 0.35]), 2)
        """
        rebinding.rebind(self, params)

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint of plain dicts, numbers and numpy arrays (copies, safe to keep).

        ``{"state": {index: {name: array, "step": int}}, "param_groups": [{options,
        "step": k, "params": [indices]}]}`` — torch's layout, keyed by parameter position.
        Scalars are plain numbers (``step`` an int, NAdam's ``mu_product`` a float).
        State kept in fewer bits (``state_dtype``) is saved as it is, a dict of its arrays
        (:meth:`fastopt.optim.storage.Int8State.to_dict`).
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
        kinds = {s.name: (int if s.dtype == "int64" else float) for s in self.family.scalars}
        state = {}
        for i, slots in self._state.items():
            state[i] = {k: (kinds[k](v) if k in kinds else _saved_state(v))
                        for k, v in slots.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a checkpoint from :meth:`state_dict` (arrays are copied).

        Checks everything before changing anything: the number of groups and of parameters
        per group, every state array's shape and dtype against its parameter, the state
        names each group's options need, and the options themselves. Raises ValueError or
        TypeError naming the first mismatch. A state saved in another format than this
        optimizer keeps (``state_dtype``) is converted: float arrays are quantized or
        rounded to bfloat16, int8 and bfloat16 states are decoded.
        """
        torch_state.reject_torch_state_dict(state_dict, self.defaults)  # see from_torch_state_dict
        renumber = checkpoint_positions(state_dict, self.param_groups)
        saved_groups = list(state_dict["param_groups"])
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
            options = self._options_at(group, self._lr(group), remember=False)
            needed = {n for n, used in zip(options.state_names, options.used) if used}
            scalar_names = {s.name for s in self.family.scalars}
            allowed = set(self.state_names) | scalar_names
            if _kernels.is_bfloat16(p):
                allowed.add(COMPENSATION)   # param_rounding="kahan"'s buffer
            slots = dict(slots)
            if not slots:
                continue
            for name in slots:
                if name not in allowed:
                    raise ValueError(f"state_dict: state[{key!r}] has an unknown entry "
                                     f"{name!r}; {type(self).__name__} keeps "
                                     f"{sorted(allowed)}")
            missing = (needed | scalar_names) - set(slots)
            if missing:
                raise ValueError(f"state_dict: state[{key!r}] lacks {sorted(missing)}, which "
                                 "this parameter group's options need")
            entry: dict[str, Any] = {}
            for name, value in slots.items():
                if name in scalar_names:
                    entry[name] = _load_scalar(self.family, name, value, key)
                    continue
                if name == COMPENSATION:
                    entry[name] = np.array(checked_state_array(value, p, key, name, np.uint16),
                                           order="C", copy=True)
                    continue
                entry[name] = self._loaded_state(
                    value, p, key, name, _placement.addresses((p, *entry.values())))
            new_state[i] = entry
        for group, merged in zip(self.param_groups, new_groups):
            group.clear()
            group.update(merged)
        self.state = new_state

    def _loaded_state(self, value: Any, p: np.ndarray, key: Any, name: str,
                      avoid: Sequence[int] = ()) -> Any:
        """A checkpoint's state array in the format this optimizer keeps for `p` (a full
        one placed away from the addresses `avoid`, as fastopt._placement explains)."""
        where = f"state_dict: state[{key!r}][{name!r}]"
        target = None if self._lowprec is None else self._lowprec.format_of(p)
        nonnegative = self.family.state(name).values == "nonnegative"
        dtype = math_dtype(p)
        if isinstance(value, dict):
            return storage.convert(value, target, dtype, nonnegative, p.shape, where)
        arr = checked_state_array(value, p, key, name, dtype)
        if target is None:
            placed = _placement.placed_full(p, 0.0, avoid, dtype)
            np.copyto(placed, arr)
            return placed
        return storage.convert(arr, target, dtype, nonnegative, p.shape, where)

    # -- pickling, repr ---------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for key in ("_lock", "_plan", "_version", "_sources", "_scheduled"):
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
        self._sources = rebinding.Sources()
        self._scheduled = set()
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


def scheduled_values(group: dict[str, Any]) -> dict[str, Any] | None:
    """A copy of `group` with every option that is a callable of the step (other than
    ``lr``, evaluated apart), or a tuple/list holding one (``betas``), evaluated at
    ``group["step"]``; None when it holds none."""
    out = None
    step = group["step"]
    for key, value in group.items():
        if key == "params" or key == "lr":
            continue
        if callable(value):
            new: Any = value(step)
        elif type(value) in (tuple, list) and any(map(callable, value)):
            new = type(value)(v(step) if callable(v) else v for v in value)
        else:
            continue
        if out is None:
            out = dict(group)
        out[key] = new
    return out


def _plan_unit(params: list, columns: Columns, scalars: dict[str, list[np.ndarray]]) -> tuple:
    """A unit for StepPlan: (params, columns, step counters or None, real scalars)."""
    steps = scalars.get("step")
    reals = [arrays for name, arrays in scalars.items() if name != "step"]
    return params, columns, steps, reals


def _saved_state(value: Any) -> Any:
    """A state array as state_dict() saves it: a copy, or a low-precision state's dict."""
    if isinstance(value, (storage.Int8State, storage.BFloat16State)):
        return value.to_dict()
    return np.array(value, copy=True)


def checkpoint_positions(state_dict: Any, param_groups: Sequence[dict[str, Any]]
                         ) -> dict[Any, int]:
    """The position in the flattened param list of each parameter id that a checkpoint's
    groups name (ids normalized by ``_as_key``), after checking its structure against
    ``param_groups``: a dict with 'state' and 'param_groups', as many groups, as many
    parameters in each, no id twice. (Also ``fastopt.distributed``'s check.)"""
    if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
            or "state" not in state_dict:
        raise TypeError("state_dict: expected a dict with 'state' and 'param_groups'")
    saved_groups = list(state_dict["param_groups"])
    if len(saved_groups) != len(param_groups):
        raise ValueError(f"state_dict: has {len(saved_groups)} param groups, this "
                         f"optimizer has {len(param_groups)}")
    renumber: dict[Any, int] = {}
    start = 0
    for k, (saved, group) in enumerate(zip(saved_groups, param_groups)):
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
    return renumber


def checked_state_array(value: Any, p: np.ndarray, key: Any, name: str,
                        dtype: Any = None) -> np.ndarray:
    """A checkpoint's state array ``state[key][name]`` (not copied), checked against the
    shape of its parameter ``p`` and `dtype` (by default p's; float32 for a bfloat16 p)."""
    arr = np.asarray(value)
    if arr.shape != p.shape:
        raise ValueError(f"state_dict: state[{key!r}][{name!r}] has shape "
                         f"{arr.shape}, the parameter has shape {p.shape}")
    want = p.dtype if dtype is None else np.dtype(dtype)
    if arr.dtype != want:
        what = "the parameter has" if want == p.dtype else "expected"
        raise ValueError(f"state_dict: state[{key!r}][{name!r}] has dtype "
                         f"{arr.dtype}, {what} dtype {want}")
    return arr


def _as_key(key: Any) -> Any:
    """State keys saved by np.savez/json come back as numpy ints or strings of ints."""
    if isinstance(key, (np.integer,)):
        return int(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return key


def _load_scalar(family: Family, name: str, value: Any, key: Any) -> np.ndarray:
    """A scalar of a checkpoint (a number or a 0-d array; torch saves steps as floats) as
    the 0-d array the state holds, checked against the family's constraint."""
    spec = next(s for s in family.scalars if s.name == name)
    checked = spec.constraint.check(value, f"state_dict: state[{key!r}][{name!r}]")
    return np.array(checked, dtype=spec.dtype)
