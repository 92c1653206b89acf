r"""torch.optim's state dicts: their layout, and conversion to and from fastopt's.

fastopt's optimizers keep torch.optim's update rules, state names and ``state_dict``
shape, but the two checkpoints differ in details that matter when one is loaded into the
other:

========================  ====================================  ==============================
                          torch.optim (and fastopt.torch)        fastopt (numpy)
========================  ====================================  ==============================
state arrays              tensors                                numpy arrays
per-parameter ``step``    0-d float tensor (float32; float64     whole number (0-d int64)
                          under a float64 default dtype)
group ``step``            none (the LR scheduler counts)         steps taken: drives a schedule
                                                                 given as ``lr``
``lr``                    a float the LR scheduler rewrites      a float or a schedule
switches                  ``foreach``, ``fused``,                none (always one fused pass)
                          ``capturable``, ``differentiable``
scheduler bookkeeping     ``initial_lr``, ``max_lr``, ...        none
fastopt-only options      none                                   ``l1``, ``eps_in_sqrt``
========================  ====================================  ==============================

:func:`from_torch_state_dict` converts a torch.optim (or fastopt.torch) state dict into one
a fastopt optimizer loads, faithfully: the switches and the scheduler's keys are dropped, a
schedule the fastopt optimizer holds (as ``lr``, or any option) is kept instead of torch's
current float, and each group's step becomes the largest per-parameter step of the group
(or ``step=``), so the schedule resumes where torch's scheduler was.
:func:`to_torch_state_dict` converts a fastopt optimizer's state into one the matching
torch.optim class loads (schedules become their current value). fastopt's
``load_state_dict`` refuses an unconverted torch state dict with a ValueError that names
this module. Neither function needs torch at import; :func:`to_torch_state_dict` imports it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["from_torch_state_dict", "to_torch_state_dict", "reject_torch_state_dict",
           "TORCH_ONLY_KEYS"]

#: switches of torch's implementations, which do not change the numbers on the CPU
TORCH_SWITCHES = ("foreach", "fused", "capturable", "differentiable")
#: keys torch's LR schedulers (OneCycleLR, CyclicLR, SWALR, ...) write into param groups
SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum",
                  "swa_lr")
#: param-group keys that only a torch.optim state dict has
TORCH_ONLY_KEYS = TORCH_SWITCHES + ("decoupled_weight_decay", "param_names") + SCHEDULER_KEYS
#: fastopt-only options and the value that means "as torch.optim"
FASTOPT_ONLY = {"l1": 0.0, "eps_in_sqrt": False}
#: the switches torch 2.13 puts in each family's param groups, with their defaults
TORCH_GROUP_SWITCHES: dict[str, dict[str, Any]] = {
    "SGD": {"foreach": None, "differentiable": False, "fused": None},
    "Adagrad": {"foreach": None, "differentiable": False, "fused": None},
    "RMSprop": {"capturable": False, "foreach": None, "differentiable": False},
    "Adam": {"foreach": None, "capturable": False, "differentiable": False, "fused": None,
             "decoupled_weight_decay": False},
    "AdamW": {"foreach": None, "capturable": False, "differentiable": False, "fused": None,
              "decoupled_weight_decay": True},
    "Adadelta": {"capturable": False, "foreach": None, "differentiable": False},
    "NAdam": {"foreach": None, "capturable": False, "differentiable": False},
}


def step_count(value: Any, where: str) -> int:
    """A per-parameter step count (torch stores a float) as a non-negative int."""
    if hasattr(value, "item") and not isinstance(value, np.ndarray):
        value = value.item()  # a tensor
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"{where}: expected a scalar step, got shape {value.shape}")
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: expected a whole number of steps, got "
                        f"{type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        step = int(value)
    else:
        x = float(value)
        if not math.isfinite(x) or x != math.floor(x):
            raise ValueError(f"{where}: expected a whole number of steps, got {value!r}")
        step = int(x)
    if step < 0:
        raise ValueError(f"{where}: expected a non-negative number of steps, got {value!r}")
    return step


def torch_step_dtype(fused_or_capturable: bool) -> Any:
    """The dtype torch.optim stores a per-parameter step in (torch's _get_scalar_dtype)."""
    torch = _import_torch()
    if fused_or_capturable:
        return torch.float32
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def reject_torch_state_dict(state_dict: Any, options: Any = ()) -> None:
    """Raise ValueError if `state_dict` is in torch.optim's layout (a param group holds a key
    only torch writes, and that is not one of the loading optimizer's `options`, as NAdam's
    ``decoupled_weight_decay``); fastopt's ``load_state_dict`` calls this first.

    Examples
    --------
    >>> from fastopt.torch_state import reject_torch_state_dict
    >>> torch_like = {"state": {}, "param_groups": [{"lr": 0.1, "foreach": None}]}
    >>> reject_torch_state_dict(torch_like)
    Traceback (most recent call last):
    ...
    ValueError: state_dict: param group 0 has 'foreach', a key only torch.optim state dicts ...
    >>> reject_torch_state_dict({"state": {}, "param_groups": [{"lr": 0.1}]})  # fastopt's own
    """
    groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
    for k, group in enumerate(groups if isinstance(groups, (list, tuple)) else ()):
        if not isinstance(group, dict):
            continue
        torch_keys = [key for key in group if key in TORCH_ONLY_KEYS and key not in options]
        if torch_keys:
            raise ValueError(
                f"state_dict: param group {k} has {torch_keys[0]!r}, a key only torch.optim "
                "state dicts have. Loading one as is would keep torch's keys, replace a "
                "schedule by torch's float lr and restart the schedule at step 0: convert "
                "it first with fastopt.torch_state.from_torch_state_dict(state_dict, "
                "optimizer)")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised without torch
        raise ImportError("this needs PyTorch: pip install torch==2.13.0") from err
    return torch


def _family(optimizer: Any) -> str:
    """The torch.optim class name matching a fastopt optimizer."""
    from fastopt.optim import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, Optimizer, RMSprop

    if not isinstance(optimizer, Optimizer):
        raise TypeError("optimizer: expected a fastopt optimizer (fastopt.Adam, ...), got "
                        f"{type(optimizer).__name__}; fastopt.torch's optimizers load "
                        "torch.optim state dicts directly")
    for cls in (AdamW, Adam, SGD, Adagrad, RMSprop, Adadelta, NAdam):  # AdamW before Adam
        if isinstance(optimizer, cls):
            return cls.__name__
    raise TypeError(f"optimizer: {type(optimizer).__name__} has no torch.optim counterpart")


def _to_numpy(value: Any, where: str) -> np.ndarray:
    """A copy of a tensor or array as a numpy array."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu()
        if value.dtype.is_complex or value.is_floating_point() and value.element_size() < 4:
            raise TypeError(f"{where}: dtype {value.dtype} has no fastopt counterpart")
        return np.array(value.resolve_conj().resolve_neg().numpy(), copy=True)
    arr = np.array(value, copy=True)
    if arr.dtype == object:
        raise TypeError(f"{where}: expected an array or tensor, got {type(value).__name__}")
    return arr


def _plain(value: Any) -> Any:
    """A group option as a plain Python value (1-element tensors become floats)."""
    if hasattr(value, "item") and hasattr(value, "numel"):
        return value.item()
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


def _holds_schedule(value: Any) -> bool:
    return callable(value) or (isinstance(value, (tuple, list))
                               and any(callable(v) for v in value))


def from_torch_state_dict(state_dict: dict[str, Any], optimizer: Any, *,
                          step: int | None = None) -> dict[str, Any]:
    """Convert a torch.optim state dict into one `optimizer` (a fastopt optimizer) loads.

    * state tensors become numpy arrays (copies; arrays already converted are copied too),
      each ``step`` a whole number, ``None`` entries (torch's SGD keeps
      ``momentum_buffer: None`` before the first step) are dropped;
    * torch's switches (``foreach``, ``fused``, ``capturable``, ``differentiable``), its LR
      schedulers' keys (``initial_lr``, ``max_lr``, ``min_lr``, ``base_momentum``,
      ``max_momentum``, ``swa_lr``) and ``param_names`` are dropped; ``decoupled_weight_decay``
      is checked against the class (True for :class:`fastopt.AdamW`, False for
      :class:`fastopt.Adam`);
    * an option `optimizer`'s group holds as a schedule (a callable, e.g. ``lr``) keeps that
      schedule; every other option takes torch's value (its current lr, betas, ...);
    * each group's ``step`` becomes `step` when given, else the largest per-parameter step
      of the group, so that a schedule resumes where torch's LR scheduler was (torch's
      scheduler counts ``scheduler.step()`` calls: pass ``step=scheduler.last_epoch`` if you
      stepped it other than once per optimizer step). torch's SGD keeps no step count: for
      a group with a schedule, `step` is then required (ValueError otherwise).

    Parameters
    ----------
    state_dict : dict
        ``torch_optimizer.state_dict()`` (tensors), or the same with its tensors already
        converted to numpy arrays.
    optimizer : fastopt.optim.Optimizer
        The optimizer that will load the result (its class and groups decide what is kept).
    step : int, optional
        The group step to resume at (default: the largest per-parameter step per group).

    Returns
    -------
    dict
        A state dict for ``optimizer.load_state_dict``.

    Raises
    ------
    TypeError, ValueError
        For a state dict of another family or shape, or an option `optimizer` does not take.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from fastopt.torch_state import from_torch_state_dict
    >>> torch_sd = {"state": {0: {"step": np.float32(500.0), "exp_avg": np.zeros(3),
    ...                           "exp_avg_sq": np.zeros(3)}},
    ...             "param_groups": [{"lr": 0.004, "betas": (0.9, 0.999), "eps": 1e-8,
    ...                               "weight_decay": 0.01, "amsgrad": False,
    ...                               "maximize": False, "foreach": None, "capturable": False,
    ...                               "differentiable": False, "fused": None,
    ...                               "decoupled_weight_decay": True, "initial_lr": 0.004,
    ...                               "params": [0]}]}
    >>> opt = fastopt.AdamW([np.zeros(3)], lr=fastopt.schedules.cosine(0.004, 1000))
    >>> opt.load_state_dict(from_torch_state_dict(torch_sd, opt))
    >>> opt.param_groups[0]["step"], opt.param_groups[0]["lr"]
    (500, cosine(base_lr=0.004, T_max=1000, eta_min=0.0, clamp=False))
    """
    family = _family(optimizer)
    if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
            or "state" not in state_dict:
        raise TypeError("state_dict: expected a dict with 'state' and 'param_groups'")
    if step is not None:
        step = step_count(step, "step")
    saved_groups = list(state_dict["param_groups"])
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(f"state_dict: has {len(saved_groups)} param groups, the optimizer "
                         f"has {len(optimizer.param_groups)}")
    decoupled = TORCH_GROUP_SWITCHES[family].get("decoupled_weight_decay")
    scalars = {s.name for s in optimizer.family.scalars} - {"step"}
    state = {}
    for key, entry in dict(state_dict["state"]).items():
        if not isinstance(entry, dict):
            raise TypeError(f"state_dict: state[{key!r}] is not a dict")
        converted: dict[str, Any] = {}
        for name, value in entry.items():
            where = f"state_dict['state'][{key!r}][{name!r}]"
            if value is None:
                continue
            if name == "step":
                converted[name] = step_count(value, where)
            elif name in scalars:  # NAdam's mu_product: a float in fastopt's state dict
                converted[name] = float(_to_numpy(value, where))
            else:
                converted[name] = _to_numpy(value, where)
        state[key] = converted
    groups = []
    for k, (saved, current) in enumerate(zip(saved_groups, optimizer.param_groups)):
        if not isinstance(saved, dict) or "params" not in saved:
            raise TypeError(f"state_dict: param group {k} is not a dict with 'params'")
        group: dict[str, Any] = {}
        for name, value in saved.items():
            if name == "params":
                group["params"] = list(value)
            elif name == "decoupled_weight_decay" and name not in optimizer.defaults:
                if decoupled is None or bool(value) != decoupled:
                    raise ValueError(
                        f"state_dict: param group {k} has decoupled_weight_decay={value!r}: "
                        f"it is a torch.optim.{'AdamW' if value else 'Adam'} state dict, "
                        f"the optimizer is fastopt.{family}")
            elif name in TORCH_ONLY_KEYS and name not in optimizer.defaults:
                continue
            elif name not in optimizer.defaults or name == "step":
                raise ValueError(f"state_dict: param group {k} has {name!r}, which "
                                 f"fastopt.{family} does not take (a state dict of another "
                                 "optimizer?)")
            elif _holds_schedule(current.get(name)):
                group[name] = current[name]
            else:
                group[name] = _plain(value)
        steps = [state[i]["step"] for i in group["params"] if "step" in state.get(i, {})]
        if step is None and not steps and any(state.get(i) for i in group["params"]) \
                and any(_holds_schedule(v) for v in current.values()):
            raise ValueError(f"state_dict: torch.optim.{family} keeps no step count, and param "
                             f"group {k} has a schedule: pass step= (the optimizer steps "
                             "taken, e.g. your LR scheduler's last_epoch)")
        group["step"] = step if step is not None else max(steps, default=0)
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _evaluate(value: Any, step: int) -> Any:
    """An option's value at `step` (a schedule's current value)."""
    if callable(value):
        return float(value(step))
    if isinstance(value, (tuple, list)):
        return type(value)(_evaluate(v, step) for v in value)
    return value


def to_torch_state_dict(optimizer: Any) -> dict[str, Any]:
    """Convert a fastopt optimizer's state into a state dict torch.optim loads.

    The result loads into the torch.optim class of the same name (``torch.optim.Adam`` for
    :class:`fastopt.Adam`, ...) over the same parameters in the same groups: state arrays
    become tensors (copies), each step a float tensor as torch stores it, a schedule its
    current value (``lr(step)``, what the next step would use) and the groups get torch's
    switches at their defaults. fastopt-only options must be off (``l1=0``,
    ``eps_in_sqrt=False``), else ValueError. Needs torch.

    Examples
    --------
    >>> import numpy as np, fastopt
    >>> from fastopt.torch_state import to_torch_state_dict
    >>> opt = fastopt.AdamW([np.ones(3)], lr=fastopt.schedules.cosine(1e-3, 100))
    >>> opt.step([np.ones(3)])
    True
    >>> sd = to_torch_state_dict(opt)                  # doctest: +SKIP
    >>> torch_opt.load_state_dict(sd)                  # a torch.optim.AdamW  # doctest: +SKIP
    """
    family = _family(optimizer)
    torch = _import_torch()
    saved = optimizer.state_dict()
    groups = []
    for k, group in enumerate(saved["param_groups"]):
        converted: dict[str, Any] = {}
        for name, value in group.items():
            if name == "step":
                continue
            if name in FASTOPT_ONLY:
                if value != FASTOPT_ONLY[name]:
                    raise ValueError(f"optimizer: param group {k} has {name}={value!r}, which "
                                     f"torch.optim cannot express (it needs {name}="
                                     f"{FASTOPT_ONLY[name]!r})")
                continue
            converted[name] = _evaluate(value, group["step"])
        for name, default in TORCH_GROUP_SWITCHES[family].items():
            converted.setdefault(name, default)
        groups.append(converted)
    step_dtype = torch_step_dtype(False)
    state = {}
    for key, entry in saved["state"].items():
        # a step (int) and NAdam's mu_product (float) become scalar tensors as torch keeps
        # them; arrays are state_dict()'s own copies
        state[key] = {name: (torch.from_numpy(value) if isinstance(value, np.ndarray)
                             else torch.tensor(float(value), dtype=step_dtype))
                      for name, value in entry.items()}
    return {"state": state, "param_groups": groups}
