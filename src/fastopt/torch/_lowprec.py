"""fastopt.torch's optimizers with state kept in fewer bits (``state_dtype="bfloat16"`` or
``"int8"``, as :class:`fastopt.optim.Optimizer`'s; see :mod:`fastopt.optim.storage`).

How the state is kept, in ``opt.state[p]`` and in ``state_dict()`` alike (torch has no
such state, so this is fastopt.torch's own form):

* tensors with fewer than ``min_lowprec_size`` elements keep full-precision state tensors;
* ``"bfloat16"``: each state tensor is a ``torch.bfloat16`` tensor of the param's shape,
  written with stochastic rounding (Philox streams seeded by ``state_seed``: element e of
  the i-th param, in the order of the groups, at its update t always draws the same bits);
* ``"int8"``: each state is a dict ``{"format": "int8", "codes": uint8 tensor (the param's
  shape), "absmax": float32 tensor (one per block of 256 elements), "nonnegative": bool}``
  (blockwise dynamic quantization; :class:`fastopt.optim.storage.Int8State`'s fields);
* the families without a step (SGD, Lion) keep a per-parameter ``step`` too: the update
  number of the rounding streams.

Round trip: ``load_state_dict`` of an optimizer with the same options restores every
code, block maximum, bfloat16 value and step exactly, and training goes on with the same
bits. A state saved in another format is converted (full-precision tensors quantized,
low-precision state decoded). Loading into ``torch.optim``: bfloat16 state loads as its
exact float values (torch casts state to the param's dtype) and torch trains on in full
precision; int8 state does not load usefully (torch casts the codes to floats and fails at
its first step, finding a dict where it expects a tensor): convert with
:func:`full_precision_state_dict` first.

A low-precision step is not cached as the full-precision one is: it reads every param,
gradient and state anew (about a microsecond per tensor more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fastopt import _kernels
from fastopt.optim import storage
from fastopt.optim.lowprec import _STREAM_SHIFT, LowPrecision

if TYPE_CHECKING:
    from fastopt.torch._base import Optimizer

__all__ = ["TorchLowPrecision", "full_precision_state_dict"]



def _format_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return "int8"
    if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
        return "bfloat16"
    return None


def to_storage(value: Any, where: str) -> Any:
    """A state value in fastopt.torch's form as :mod:`fastopt.optim.storage` takes it (numpy:
    an array, a BFloat16State or an Int8State dict), sharing memory where it can."""
    if isinstance(value, dict):
        codes, absmax = value.get("codes"), value.get("absmax")
        if not isinstance(codes, torch.Tensor) or not isinstance(absmax, torch.Tensor):
            raise TypeError(f"{where}: an int8 state needs 'codes' and 'absmax' tensors")
        return {"format": "int8", "codes": _plain_numpy(codes, torch.uint8),
                "absmax": _plain_numpy(absmax, torch.float32),
                "nonnegative": bool(value.get("nonnegative", False))}
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: expected a tensor or an int8 state dict, got "
                        f"{type(value).__name__}")
    if value.dtype == torch.bfloat16:
        bits = value.detach().contiguous().view(torch.int16).numpy().view(np.uint16)
        return storage.BFloat16State(bits)
    return value.detach().resolve_neg().resolve_conj().numpy()


def _plain_numpy(t: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """`t` as a numpy array of `dtype`; a value cast to floats (torch's load_state_dict
    casts state to the param's dtype) comes back exactly, or raises."""
    t = t.detach()
    if t.dtype != dtype:
        back = t.to(dtype)
        if not torch.equal(back.to(t.dtype), t):
            raise ValueError(f"state: expected {dtype} values, got {t.dtype} ones that are "
                             "not")
        t = back
    return t.contiguous().numpy()


def from_storage(value: Any) -> Any:
    """A :mod:`fastopt.optim.storage` value in fastopt.torch's form (memory shared)."""
    if isinstance(value, storage.Int8State):
        return {"format": "int8", "codes": torch.from_numpy(value.codes),
                "absmax": torch.from_numpy(value.absmax), "nonnegative": value.nonnegative}
    if isinstance(value, storage.BFloat16State):
        return torch.from_numpy(value.bits.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(value))


def _kernel_arrays(value: Any) -> tuple[int, np.ndarray, np.ndarray | None]:
    """(format code, the array the kernel writes, the int8 block maxima or None)."""
    if isinstance(value, dict):
        return _kernels.STATE_INT8, value["codes"].numpy(), value["absmax"].numpy()
    if value.dtype == torch.bfloat16:
        return _kernels.STATE_BFLOAT16, value.view(torch.int16).numpy().view(np.uint16), None
    return _kernels.STATE_FULL, value.numpy(), None


def convert_state(value: Any, p: torch.Tensor, target: str | None, nonnegative: bool,
                  where: str) -> Any:
    """A copy of a state value (any of the forms) in format `target` (None: a tensor of
    p's dtype): exact when it already is in that format, else decoded and re-encoded.
    Checked against p's shape."""
    shape = _shape_of(value) if isinstance(value, (dict, torch.Tensor)) else None
    if shape is not None and tuple(shape) != tuple(p.shape):
        raise ValueError(f"{where}: has shape {tuple(shape)}, the parameter has shape "
                         f"{tuple(p.shape)}")
    dtype = torch.empty((), dtype=p.dtype).numpy().dtype
    return from_storage(storage.convert(to_storage(value, where), target, dtype, nonnegative,
                                        tuple(p.shape), where))


class TorchLowPrecision:
    """The low-precision options of a fastopt.torch optimizer (checked as
    :class:`fastopt.optim.lowprec.LowPrecision` checks them), and its steps."""

    def __init__(self, dtype: str, min_size: int, seed: int) -> None:
        options = LowPrecision(dtype, min_size, seed)
        self.dtype, self.min_size, self.seed = options.dtype, options.min_size, options.seed

    def __repr__(self) -> str:
        return (f"TorchLowPrecision(dtype={self.dtype!r}, min_size={self.min_size}, "
                f"seed={self.seed})")

    def target(self, p: torch.Tensor) -> str | None:
        """The state format of param `p`: None (its dtype) below min_size."""
        return self.dtype if p.numel() >= self.min_size else None

    def convert(self, value: Any, p: torch.Tensor, nonnegative: bool, where: str) -> Any:
        """A state value (any of the forms) in the format this optimizer keeps for `p`;
        kept exactly when it already is in that format (copied)."""
        return convert_state(value, p, self.target(p), nonnegative, where)

    def new_state(self, p: torch.Tensor, fill: float, nonnegative: bool) -> Any:
        dtype = torch.empty((), dtype=p.dtype).numpy().dtype
        full = np.full(tuple(p.shape), fill, dtype=dtype)
        target = self.target(p)
        if target is None:
            return torch.from_numpy(full)
        return from_storage(storage.convert(full, target, dtype, nonnegative,
                                            tuple(p.shape), "state"))

    def step(self, opt: Optimizer) -> None:
        """One update of every param with a gradient: allocate missing state, prepare every
        call (all checks), run them, then commit the new state."""
        family = opt._family
        nonneg = sum(1 << j for j, s in enumerate(family.states) if s.values == "nonnegative")
        new: dict[torch.Tensor, dict[str, Any]] = {}
        calls = []
        counters: list[torch.Tensor] = []  # stream counters of SGD, Lion
        position = 0
        for k, group in enumerate(opt.param_groups):
            options = opt._options(group)
            first = None
            members = []
            for j, p in enumerate(group["params"]):
                i = position + j
                if p.grad is None:
                    continue
                entry = opt.state.get(p) or {}
                created = {}
                for name, used in zip(options.state_names, options.used):
                    if used and entry.get(name) is None:
                        created[name] = self.new_state(
                            p, opt._fill(name), family.state(name).values == "nonnegative")
                if entry.get("step") is None:
                    created["step"] = torch.zeros((), dtype=torch.int64)
                for name, initial in opt._reals:
                    if entry.get(name) is None:
                        created[name] = torch.tensor(initial, dtype=torch.float64)
                if created:
                    new[p] = created
                members.append((i, p, {**entry, **created},
                                any(n in options.state_names for n in created)))
            position += len(group["params"])
            if not members:
                continue
            if any(m[3] for m in members):
                first = opt._first_step_options(group)
            split = [(options, members)] if first is None else \
                [(first, [m for m in members if m[3]]), (options, [m for m in members if not m[3]])]
            for o, subset in split:
                for dtype in (torch.float32, torch.float64):
                    pick = [m for m in subset if m[1].dtype == dtype]
                    if pick:
                        calls.append(self._prepare(opt, o, k, pick, nonneg))
                        if not opt._has_step:
                            counters.extend(m[2]["step"] for m in pick)
        for call in calls:
            call.run()
        for c in counters:
            c.add_(1)
        for p, entries in new.items():
            opt.state[p].update(entries)

    def _prepare(self, opt: Optimizer, o: Any, k: int, members: list, nonneg: int) -> Any:
        """The validated kernel call of `members` (params of one dtype, one option set)."""
        params = [p.detach().numpy() for _, p, _, _ in members]
        grads = [opt._lowprec_grad_view(i, p.grad) for i, p, _, _ in members]
        formats: list[int] = []
        states: list[list[np.ndarray] | None] = []
        absmax: list[list[np.ndarray | None] | None] = []
        for name, used in zip(o.state_names, o.used):
            if not used:
                states.append(None)
                absmax.append(None)
                continue
            arrays = [_kernel_arrays(entry[name]) for _, _, entry, _ in members]
            states.append([a[1] for a in arrays])
            absmax.append([a[2] for a in arrays])
            if not formats:
                formats = [a[0] for a in arrays]
        if not formats:
            formats = [_kernels.STATE_FULL] * len(members)
        steps = [entry["step"].numpy() for _, _, entry, _ in members] if opt._has_step else None
        reals = [[entry[name].numpy() for _, _, entry, _ in members] for name, _ in opt._reals]
        streams = np.array([(i << _STREAM_SHIFT) | ((int(entry["step"]) + 1) & ((1 << _STREAM_SHIFT) - 1))
                            for i, _, entry, _ in members], dtype=np.uint64)
        return _kernels.lowprec_prepare(o, params, grads, formats, states, absmax, steps,
                                        reals, streams, self.seed, nonneg)


def full_precision_state_dict(state_dict: dict[str, Any],
                              dtype: torch.dtype = torch.float64) -> dict[str, Any]:
    """A copy of a fastopt.torch state dict with every low-precision state decoded into a
    `dtype` tensor (float64: the decoded values exactly), which the matching
    ``torch.optim`` class loads (it casts state to each param's dtype). Full-precision
    entries are copied as they are.

    Examples
    --------
    >>> import torch, fastopt.torch
    >>> w = torch.nn.Parameter(torch.ones(300))
    >>> opt = fastopt.torch.Adam([w], lr=0.1, state_dtype="int8", min_lowprec_size=256)
    >>> w.grad = torch.ones(300)
    >>> opt.step()
    >>> sorted(opt.state_dict()["state"][0]["exp_avg"])
    ['absmax', 'codes', 'format', 'nonnegative']
    >>> full = fastopt.torch.full_precision_state_dict(opt.state_dict())
    >>> ref = torch.optim.Adam([torch.nn.Parameter(torch.ones(300))], lr=0.1)
    >>> ref.load_state_dict(full)
    >>> ref.state[ref.param_groups[0]["params"][0]]["exp_avg"][:3]
    tensor([0.1000, 0.1000, 0.1000])
    """
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    state = {}
    for key, entry in state_dict["state"].items():
        out = {}
        for name, value in entry.items():
            fmt = _format_of(value)
            if fmt is None:
                out[name] = value.clone() if isinstance(value, torch.Tensor) else value
                continue
            where = f"state_dict: state[{key!r}][{name!r}]"
            decoded = storage.convert(to_storage(value, where), None, np_dtype, False,
                                      tuple(_shape_of(value)), where)
            out[name] = torch.from_numpy(decoded)
        state[key] = out
    return {"state": state, "param_groups": [dict(g) for g in state_dict["param_groups"]]}


def _shape_of(value: Any) -> Any:
    if isinstance(value, dict):
        codes = value.get("codes")
        return codes.shape if isinstance(codes, torch.Tensor) else None
    return value.shape
