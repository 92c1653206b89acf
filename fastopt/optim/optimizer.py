"""The optimizer base class: param groups, lazy state, lr schedules and state_dict."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Union

import numpy as np

from fastopt import _kernels

LearningRate = Union[float, Callable[[int], float]]
ParamsArg = Union[Iterable[np.ndarray], Iterable[dict[str, Any]]]


class Optimizer:
    """Base class of fastopt's optimizers (torch.optim.Optimizer's shape, on numpy arrays).

    Parameters are numpy arrays (float32/float64, C-contiguous, writeable) updated in place.
    ``params`` is a list of arrays or a list of dicts ``{"params": [...], <options>}`` (param
    groups); options missing from a group take the constructor's values. ``lr`` may be a
    float or a schedule: a callable ``lr(step)`` of the group's step count (the number of
    steps already taken), see :mod:`fastopt.schedules`.

    Subclasses set ``state_names`` (per-parameter state arrays, allocated lazily with the
    param's dtype on the first step) and implement ``_update_group``.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        #: Per-parameter state, keyed by the parameter's position in the flattened param
        #: list (torch keys by tensor; numpy arrays are not hashable).
        self.state: dict[int, dict[str, np.ndarray]] = {}
        if isinstance(params, np.ndarray):
            raise TypeError("params: expected a list of arrays or of param-group dicts, got "
                            "a single array; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError("params: got an empty list of parameters")
        if all(isinstance(g, dict) for g in groups):
            for group in groups:
                self.add_param_group(group)
        elif any(isinstance(g, dict) for g in groups):
            raise TypeError("params: mix of arrays and param-group dicts; use one or the other")
        else:
            self.add_param_group({"params": groups})

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

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's options through the kernel's own checks (dry run on no arrays)."""
        self._update_group(group, [], [], [], self._lr(group))

    @staticmethod
    def _lr(group: dict[str, Any]) -> float:
        lr = group["lr"]
        return lr(group["step"]) if callable(lr) else lr

    # -- stepping ----------------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray | None]) -> bool:
        """Apply one update with `grads`, given in the flattened order of the params.

        An entry may be None to leave that parameter (and its state) untouched this step.
        Returns True. Raises TypeError/ValueError (nothing modified) for bad gradients.
        """
        if isinstance(grads, np.ndarray):
            grads = [grads]
        grads = list(grads)
        n = sum(len(g["params"]) for g in self.param_groups)
        if len(grads) != n:
            raise ValueError(f"grads: expected {n} gradients (one per parameter), "
                             f"got {len(grads)}")
        start = 0
        plan = []
        for group in self.param_groups:
            count = len(group["params"])
            keep = [i for i in range(count) if grads[start + i] is not None]
            plan.append((group, [group["params"][i] for i in keep],
                         [grads[start + i] for i in keep], [start + i for i in keep]))
            start += count
        for group, params, group_grads, indices in plan:
            if params:
                self._update_group(group, params, group_grads, indices, self._lr(group))
            group["step"] += 1
        return True

    def _update_group(self, group: dict[str, Any], params: list[np.ndarray],
                      grads: list[np.ndarray], indices: list[int], lr: float) -> None:
        raise NotImplementedError

    def _states(self, params: list[np.ndarray], indices: list[int], name: str,
                fill: float = 0.0) -> tuple[list[np.ndarray], list[bool]]:
        """The `name` state arrays of these params, with new ones for those that lack one.

        Returns the arrays and, for each, whether it is new. New arrays are not stored
        until :meth:`_keep_states` is called after the kernel succeeded, so a step that
        raises leaves the optimizer's state as it was.
        """
        arrays, created = [], []
        for p, i in zip(params, indices):
            arr = self.state.get(i, {}).get(name)
            created.append(arr is None)
            arrays.append(np.full_like(p, fill, order="C") if arr is None else arr)
        return arrays, created

    def _keep_states(self, indices: list[int], name: str, arrays: list[np.ndarray]) -> None:
        for i, arr in zip(indices, arrays):
            self.state.setdefault(i, {})[name] = arr

    # -- checkpoints -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint of plain dicts, numbers and numpy arrays (copies, safe to keep).

        ``{"state": {index: {name: array}}, "param_groups": [{options, "step": k,
        "params": [indices]}]}`` — torch's layout, keyed by parameter position.
        """
        groups, start = [], 0
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params"}
            entry["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(entry)
        state = {i: {k: np.array(v, copy=True) for k, v in s.items()}
                 for i, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a checkpoint from :meth:`state_dict`; checks every shape before changing anything."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise TypeError("state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(saved_groups)} param groups, this "
                             f"optimizer has {len(self.param_groups)}")
        index_to_param: dict[int, np.ndarray] = {}
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = list(saved.get("params", []))
            if len(ids) != len(group["params"]):
                raise ValueError(f"state_dict: param group {k} has {len(ids)} parameters, "
                                 f"this optimizer's has {len(group['params'])}")
            index_to_param.update(zip(ids, group["params"]))
        start = 0
        renumber = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for j, old in enumerate(saved["params"]):
                renumber[old] = start + j
            start += len(group["params"])
        new_state: dict[int, dict[str, np.ndarray]] = {}
        for key, slots in dict(state_dict["state"]).items():
            if key not in index_to_param:
                raise ValueError(f"state_dict: state for parameter {key!r}, which no group holds")
            p = index_to_param[key]
            entry = {}
            for name, value in dict(slots).items():
                arr = np.asarray(value)
                if arr.shape != p.shape:
                    raise ValueError(f"state_dict: state[{key}][{name!r}] has shape "
                                     f"{arr.shape}, the parameter has shape {p.shape}")
                if arr.dtype != p.dtype:
                    raise ValueError(f"state_dict: state[{key}][{name!r}] has dtype "
                                     f"{arr.dtype}, the parameter has dtype {p.dtype}")
                entry[name] = np.array(arr, dtype=p.dtype, order="C", copy=True)
            new_state[renumber[key]] = entry
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            merged = dict(group)
            merged.update({k: v for k, v in saved.items() if k != "params"})
            self._check_group(merged)
            new_groups.append(merged)
        self.param_groups = new_groups
        self.state = new_state

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]!r}")
        lines.append(")")
        return "\n".join(lines)
