"""The step of an optimizer whose state is kept in fewer bits (``state_dtype=``) or whose
parameters are bfloat16 arrays.

:class:`LowPrecision` holds the choice (``"bfloat16"`` or ``"int8"``, the size below which
a tensor keeps full-precision state, the seed of the stochastic rounding, how bfloat16
params are rounded) and runs the steps of an :class:`~fastopt.optim.Optimizer` created
with it: state is allocated lazily as :mod:`fastopt.optim.storage` objects, and every
update is one C call per unit and dtype (``fo_<family>_step_lowprec``, and
``fo_<family>_step_bf16param`` for bfloat16 params: decode, the family's own rule in
float32, encode, in one pass).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fastopt import _kernels, _placement, _validation
from fastopt.optim import storage

if TYPE_CHECKING:
    from fastopt.optim.optimizer import Optimizer

__all__ = ["COMPENSATION", "PARAM_ROUNDINGS", "STATE_DTYPES", "LowPrecision", "math_dtype"]

#: The values ``state_dtype`` takes besides None.
STATE_DTYPES = ("bfloat16", "int8")

#: How bfloat16 parameters are rounded after their float32 update (``param_rounding``).
PARAM_ROUNDINGS = ("stochastic", "nearest", "kahan")

#: The state entry of a bfloat16 parameter's Kahan compensation (uint16 bfloat16 bits).
COMPENSATION = "param_compensation"

_ROUNDING = {"stochastic": _kernels.ROUND_STOCHASTIC, "nearest": _kernels.ROUND_NEAREST,
             "kahan": _kernels.ROUND_KAHAN}

_FORMAT = {None: _kernels.STATE_FULL, "bfloat16": _kernels.STATE_BFLOAT16,
           "int8": _kernels.STATE_INT8}

#: Philox streams of the stochastic rounding: parameter position << 40 | update number,
#: with the top bit set for the rounding of bfloat16 params (a stream apart from the
#: states').
_STREAM_SHIFT = 40
_PARAM_STREAM = 1 << 63
_UPDATE_MASK = (1 << _STREAM_SHIFT) - 1


class _Plan:
    """The kernel calls of the last update, kept for the next one while nothing they hold
    has changed: the optimizer's state (its version), the params of every group (the same
    objects) and the state arrays each group's options use. Each call then only rebinds
    its options and gradients (LowprecCall.rebind), as fp32 state's StepPlan does."""

    __slots__ = ("version", "version_n", "params", "masks", "calls")

    def __init__(self, opt: Optimizer, options: list, calls: list) -> None:
        self.version = opt._version
        self.version_n = opt._version.n
        self.params = [list(group["params"]) for group in opt.param_groups]
        self.masks = [o.used for o in options]
        self.calls = calls  # (group index, positions of its grads, LowprecCall)

    def matches(self, opt: Optimizer, options: list) -> bool:
        groups = opt.param_groups
        if (self.version is not opt._version or self.version_n != opt._version.n
                or len(groups) != len(self.params)):
            return False
        for group, params, o, used in zip(groups, self.params, options, self.masks):
            current = group["params"]
            if type(current) is not list or not _kernels.same_items(current, params) \
                    or o.used != used:
                return False
        return True


def math_dtype(p: np.ndarray) -> np.dtype:
    """The dtype of `p`'s update and full-precision state: float32 for a bfloat16 array."""
    return np.dtype(np.float32) if _kernels.is_bfloat16(p) else p.dtype


class LowPrecision:
    """How an optimizer stores its state arrays: `dtype` "bfloat16" or "int8" for tensors
    of at least `min_size` elements (smaller ones, and every one when `dtype` is None, keep
    full precision: the parameter's dtype, float32 for a bfloat16 one), `seed` for the
    stochastic rounding of bfloat16 (Philox; element e of parameter i at update t always
    draws the same bits, whatever the thread count), `param_rounding` for bfloat16
    parameters ("stochastic", "nearest", or "kahan": to nearest, the rounding error kept
    in the state entry ``param_compensation``)."""

    def __init__(self, dtype: str | None, min_size: int, seed: int,
                 param_rounding: str = "stochastic") -> None:
        if dtype is not None and dtype not in STATE_DTYPES:
            raise ValueError(f"state_dtype: expected None, 'bfloat16' or 'int8', got "
                             f"{dtype!r}")
        if param_rounding not in PARAM_ROUNDINGS:
            raise ValueError(f"param_rounding: expected 'stochastic', 'nearest' or 'kahan', "
                             f"got {_validation.describe_value(param_rounding)}")
        self.dtype = dtype
        self.min_size = _validation.check_int(min_size, "min_lowprec_size", 0)
        self.seed = _validation.check_int(seed, "state_seed", 0, 2**64 - 1)
        self.param_rounding = param_rounding
        self._plan: _Plan | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_plan"}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._plan = None

    def format_of(self, p: np.ndarray) -> str | None:
        """The state format of parameter `p`: None (full precision) below min_size."""
        return self.dtype if self.dtype is not None and p.size >= self.min_size else None

    def new_state(self, p: np.ndarray, fill: float, nonnegative: bool,
                  avoid: Sequence[int] = ()) -> Any:
        """A state array of parameter `p` holding `fill` everywhere (a full-precision one
        placed away from the addresses `avoid`, as fastopt._placement explains)."""
        dtype = math_dtype(p)
        target = self.format_of(p)
        if target is None:
            return _placement.placed_full(p, fill, avoid, dtype)
        full = np.full(p.shape, fill, dtype=dtype)
        return storage.convert(full, target, dtype, nonnegative, p.shape, "state")

    # -- the step ------------------------------------------------------------------------
    def step(self, opt: Optimizer, grads: Any, skip: bool) -> bool:
        """One update of `opt` (Optimizer.step's contract): allocate missing state, check
        everything, then run every unit; new state is committed once all ran."""
        if type(grads) is not list:
            grads = [grads] if isinstance(grads, np.ndarray) else list(grads)
        if skip is not False and skip is not True:
            skip = _validation.check_bool(skip, "skip_if_nonfinite")
        groups = opt.param_groups
        total = sum(len(group["params"]) for group in groups)
        if len(grads) != total:
            raise ValueError(f"grads: expected {total} gradients (one per parameter), "
                             f"got {len(grads)}")
        lrs = [opt._lr(group) for group in groups]
        options = [opt._options_at(group, lr) for group, lr in zip(groups, lrs)]
        plan = self._plan
        if plan is not None and plan.matches(opt, options) \
                and all(g is not None for g in grads):
            return self._step_planned(opt, plan, options, grads, skip)
        self._plan = None
        family = opt.family
        nonneg = sum(1 << j for j, s in enumerate(family.states) if s.values == "nonnegative")
        new: dict[int, dict[str, Any]] = {}
        calls: list[tuple[int, list[int], _kernels.LowprecCall]] = []
        whole = True  # one unit per group, every param with a gradient: a plan for later
        for k, (group, o, lr, values, indices, sub) in enumerate(
                opt._groups_with_grads(grads, options, lrs)):
            created = [False] * len(indices)

            allocate = opt._state_allocator(values, indices, created, new, self.new_state, grads)
            gathered = opt._gather_state(o, indices, sub, allocate)
            assert gathered is not None  # allocate never gives up
            columns, scalars = gathered
            units = opt._units(o, values, lr, indices, sub, columns, scalars, created)
            whole = whole and len(units) == 1 and groups[k] is group
            for unit in units:
                calls.extend((k, picked, call) for picked, call in self._prepare(
                    unit, grads, group["step"] + 1, nonneg,
                    lambda i, p: self._compensation(opt, new, i, p)))
        if skip and not _all_finite([g for g in grads if g is not None]):
            return False
        for _, _, call in calls:
            call.run()
        opt._commit_step(new)
        # only lowprec_prepare's calls rebind (not those of bfloat16 params)
        if whole and calls and all(type(c) is _kernels.LowprecCall for _, _, c in calls) \
                and all(g is not None for g in grads):
            self._plan = _Plan(opt, options, calls)
        return True

    def _step_planned(self, opt: Optimizer, plan: _Plan, options: list, grads: list,
                      skip: bool) -> bool:
        """Optimizer.step with the calls of the last update, rebound to this one's options
        and gradients: everything is checked before anything runs."""
        groups = opt.param_groups
        for k, picked, call in plan.calls:
            call.rebind(options[k], [grads[i] for i in picked],
                        groups[k]["step"] + 1, _UPDATE_MASK)
        if skip and not _all_finite(grads):
            return False
        for _, _, call in plan.calls:
            call.run()
        opt._commit_step({})
        return True

    def _compensation(self, opt: Optimizer, new: dict[int, dict[str, Any]], i: int,
                      p: np.ndarray) -> np.ndarray:
        """The Kahan compensation of parameter i (`p`): its state entry, or new zeros that
        wait in `new` until the step succeeds."""
        held = opt.state.get(i, {}).get(COMPENSATION)
        if held is None:
            held = new.setdefault(i, {}).get(COMPENSATION)
        if held is None:
            held = new.setdefault(i, {})[COMPENSATION] = np.zeros(p.shape, np.uint16)
        return held

    def _prepare(self, unit: tuple, grads: list, update: int, nonneg: int,
                 compensation: Any) -> list:
        """The validated kernel calls of one unit, one per dtype of its params, each with
        the positions of its gradients in `grads` (`compensation(i, p)`: the Kahan buffer
        of bfloat16 parameter i)."""
        o, indices, params, columns, scalars = unit
        steps = scalars.get("step")
        reals = [arrays for name, arrays in scalars.items() if name != "step"]
        calls: list[tuple[list[int], _kernels.LowprecCall]] = []
        bf16 = [_kernels.is_bfloat16(p) for p in params]
        for dtype in (np.float32, np.float64, None):
            pick = [k for k, p in enumerate(params)
                    if (bf16[k] if dtype is None else not bf16[k] and p.dtype == dtype)]
            if not pick:
                continue
            formats: list[int] = []
            states: list[list[np.ndarray] | None] = []
            absmax: list[list[np.ndarray | None] | None] = []
            for k in pick:
                formats.append(_FORMAT[_format_of(columns, k)])
            for col in columns:
                if col is None:
                    states.append(None)
                    absmax.append(None)
                    continue
                states.append([_data(col[k]) for k in pick])
                absmax.append([col[k].absmax if isinstance(col[k], storage.Int8State)
                               else None for k in pick])
            streams = np.array([(indices[k] << _STREAM_SHIFT) | (update & _UPDATE_MASK)
                                for k in pick], dtype=np.uint64)
            args = (o, [params[k] for k in pick], [grads[indices[k]] for k in pick], formats,
                    states, absmax, None if steps is None else [steps[k] for k in pick],
                    [[col[k] for k in pick] for col in reals], streams)
            picked = [indices[k] for k in pick]
            if dtype is None:
                kahan = self.param_rounding == "kahan"
                calls.append((picked, _kernels.bf16param_prepare(
                    *args, streams | np.uint64(_PARAM_STREAM), self.seed, nonneg,
                    _ROUNDING[self.param_rounding],
                    [compensation(indices[k], params[k]) for k in pick] if kahan else None)))
            else:
                calls.append((picked, _kernels.lowprec_prepare(*args, self.seed, nonneg)))
        return calls

    def __repr__(self) -> str:
        return (f"LowPrecision(dtype={self.dtype!r}, min_size={self.min_size}, "
                f"seed={self.seed}, param_rounding={self.param_rounding!r})")


def _all_finite(grads: list) -> bool:
    """Whether every gradient (float32, float64 or bfloat16) holds only finite values."""
    bf16 = [g for g in grads if _kernels.is_bfloat16(g)]
    rest = [g for g in grads if not _kernels.is_bfloat16(g)] if bf16 else grads
    return (not rest or _kernels.all_finite(rest)) and _kernels.bfloat16_all_finite(bf16)


def _format_of(columns: list, k: int) -> str | None:
    for col in columns:
        if col is not None:
            value = col[k]
            return value.format if isinstance(value, (storage.Int8State,
                                                      storage.BFloat16State)) else None
    return None


def _data(value: Any) -> np.ndarray:
    """The array the kernel writes: codes, bfloat16 bits, or the full array itself."""
    if isinstance(value, storage.Int8State):
        return value.codes
    if isinstance(value, storage.BFloat16State):
        return value.bits
    return value
