"""The base of fastopt.torch's optimizers: a ``torch.optim.Optimizer`` whose ``step()`` runs
fastopt's fused C kernels on numpy views of CPU tensors, in place.

How a step runs (the short path, taken while nothing but hyperparameter values changed):

1. each group's kernel options are rebuilt only when its values changed (torch's LR
   schedulers write ``group["lr"]`` and OneCycleLR ``betas``/``momentum`` every step);
   groups with equal options share one unit (one C call per dtype for all of them);
2. one C loop (``_kernels.gather_torch_grads``) reads every ``p.grad`` and checks that
   each param still has the buffer the cached tables point at; each new grad goes to
   StepPlan.bind as the tensor itself, which bind reads through torch's DLPack C exchange
   API (older torch: a DLPack capsule from ``to_dlpack``) and checks, a numpy view where
   it does not fit (strided, negative views: the Python road); a grad that stays the same
   tensor (``zero_grad(set_to_none=False)``) is retained as a numpy view;
3. a cached ``StepPlan`` (pointer tables over the param, state and step-counter views,
   validated once) binds the gradients and runs one C call per unit and dtype, GIL
   released; the per-parameter step counters are int64 tensors the plan increments. When
   no slot changed since a step that bound the retained views of every grad, the plan
   runs on that bind's pointers (``StepPlan.step_again``: no bind).

The cache is rebuilt when the structure changes: param groups added or edited, state
replaced (``opt.state`` and its entries are tracked dicts), a param's storage swapped
(``p.data = ...``), new state allocated, or a different set of params has gradients.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from fastopt import _kernels, _placement
from fastopt import torch_state as _torch_layout
from fastopt.torch._lowprec import TorchLowPrecision, convert_state
from fastopt.torch._state import TrackedState, Version

# A grad slot's cached source when it holds no retained gradient tensor.
_NO_GRAD = object()
_NO_STATE: dict[str, Any] = {}
_data_ptr = torch.Tensor.data_ptr
_numpy = torch.Tensor.numpy
_is_neg = torch.Tensor.is_neg
# How a new grad reaches StepPlan.bind: the tensor itself, read in C through torch's DLPack
# exchange API (torch >= 2.10; ~50 ns), else a capsule from to_dlpack (~140 ns, and its
# destruction; still ~4x cheaper than .numpy()).
_to_dlpack: Any = torch.utils.dlpack.to_dlpack
# (torch.Tensor is not a type under the docs build's mock of torch: capsules there.)
if isinstance(torch.Tensor, type) and _kernels.use_torch_exchange_api(
        getattr(torch.Tensor, "__dlpack_c_exchange_api__", None), torch.Tensor, _is_neg):
    _to_dlpack = None
# p.grad through torch's C getter where type(p) looks "grad" up there (gather_torch_grads)
if isinstance(torch.Tensor, type):
    _kernels.use_grad_getter(vars(torch.Tensor.__mro__[-2]).get("grad"))
_DLPackUnfit = _kernels.DLPackUnfit
_gather = _kernels.gather_torch_grads
# Plans kept per structure (one per combination of units, used state and params with a grad).
_MAX_PLANS = 8
# Large state arenas (new_state_tensors) start on a huge-page boundary.
_HUGE_PAGE = 1 << 21

try:  # the global step hooks torch's own step wrapper runs (empty stand-ins if they move)
    from torch.optim.optimizer import (
        _global_optimizer_post_hooks,
        _global_optimizer_pre_hooks,
    )
except ImportError:  # pragma: no cover - torch moved them
    _global_optimizer_pre_hooks = _global_optimizer_post_hooks = {}  # type: ignore[assignment]
_profiler_enabled: Callable[[], bool] = getattr(torch._C._autograd, "_profiler_enabled",
                                                lambda: False)


def real(value: Any, name: str) -> Any:
    """A hyperparameter as the kernel boundary takes it: tensors (torch allows a 1-element
    tensor lr, betas or weight_decay) become Python floats; everything else is left for the
    boundary to check."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: a tensor {name} must have one element, got shape "
                             f"{tuple(value.shape)}")
        return float(value.item())
    return value


def _plain(key: tuple) -> bool:
    """Whether a group's option values can be cached by equality (no tensors, whose values
    can change in place)."""
    for v in key:
        if type(v) is tuple:
            if not all(type(x) in (float, int) for x in v):
                return False
        elif type(v) not in (float, int, bool, str, type(None)):
            return False
    return True


def _partition(keys: list, plain: list) -> tuple[tuple[int, ...], ...]:
    """Groups with equal option values, merged into units (first-appearance order)."""
    units: list[list[int]] = []
    where: dict[Any, int] = {}
    for k, (key, ok) in enumerate(zip(keys, plain)):
        u = where.get(key) if ok else None
        if u is None:
            if ok:
                where[key] = len(units)
            units.append([k])
        else:
            units[u].append(k)
    return tuple(tuple(u) for u in units)


def check_param(p: Any, where: str) -> None:
    """A parameter fastopt.torch can step in place: a dense, contiguous CPU tensor of
    float32/float64 (TypeError/ValueError naming it otherwise)."""
    if not isinstance(p, torch.Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor, got {type(p).__name__}")
    if p.layout != torch.strided:
        raise ValueError(f"{where}: a {p.layout} tensor; fastopt.torch steps dense tensors "
                         "(torch.optim.SparseAdam handles sparse ones)")
    if p.device.type != "cpu":
        raise ValueError(f"{where}: on device {p.device}; fastopt.torch steps CPU tensors "
                         "(use torch.optim's fused optimizers on accelerators)")
    if p.is_complex():
        raise TypeError(f"{where}: complex dtype {p.dtype}; fastopt.torch steps float32 and "
                        "float64 tensors (view complex ones with torch.view_as_real)")
    if p.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{where}: dtype {p.dtype}; fastopt.torch steps float32 and float64 "
                        "tensors")
    if not p.is_contiguous() or p.is_neg():
        raise ValueError(f"{where}: not contiguous (strides {p.stride()} for shape "
                         f"{tuple(p.shape)}); fastopt.torch updates params in place through "
                         "their memory, so they must be contiguous: pass p.contiguous() "
                         "(a copy) to the model and the optimizer")


def new_state_tensor(p: torch.Tensor, fill: float) -> torch.Tensor:
    """A contiguous state tensor like `p` holding `fill`, on transparent huge pages when it
    is large (``_kernels.advise_hugepages``, asked before the memory is first written, as
    numpy asks for its large arrays): each step streams it, and 4 KiB pages cost that
    stream a TLB miss every 4 KiB."""
    t = torch.empty_like(p, memory_format=torch.contiguous_format)
    if t.nbytes >= _kernels.HUGEPAGE_BYTES:
        _kernels.advise_hugepages(t.numpy())
    return t.fill_(fill)


def new_state_tensors(like: list[torch.Tensor], fill: float | None, dtype: Any = None,
                      shapes: list[tuple[int, ...]] | None = None,
                      slot_bytes: int = 64, avoid: list[list[int]] | None = None
                      ) -> list[torch.Tensor]:
    """Contiguous state tensors holding `fill` (None: left unwritten, for a caller that
    writes every element), one like each tensor of `like` (all of one dtype; or of `dtype`
    and `shapes`), packed side by side in one numpy arena, each a tensor with its own
    storage (``torch.from_numpy`` of its slice: pickling one state tensor writes its own
    bytes, not the arena's). Each starts on a `slot_bytes` boundary.

    Why one arena: a step streams every param's state; state tensors allocated one by one
    land wherever the allocator finds room, and a 500-tensor step then pays a page walk and
    a restarted prefetch stream per 4 KiB (measured: the kernel about 20% slower than on
    packed state). An arena of at least ``HUGEPAGE_BYTES`` starts on a 2 MiB boundary with
    transparent huge pages asked for. The default 64-byte slots are torch's allocator's
    alignment (the kernels see the alignment they saw before); step counters take 8.
    With `avoid` (per tensor of `like`, the addresses of the streams its state meets in a
    step), each state of ``_placement.MIN_PLACED_BYTES`` or more starts at the page offset
    :mod:`fastopt._placement` picks (at its param's alignment modulo 64 bytes; the arena
    then starts on a page boundary)."""
    if dtype is None:
        dtype = like[0].dtype
        shapes = [tuple(t.shape) for t in like]
    assert shapes is not None
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    item = np_dtype.itemsize
    slot = max(1, slot_bytes // item)
    sizes = [int(np.prod(shape)) for shape in shapes]
    places: list[int | None] = [None] * len(sizes)
    if avoid is not None:
        places = [_placement.best_offset(t.data_ptr(), a)
                  if n * item >= _placement.MIN_PLACED_BYTES else None
                  for t, a, n in zip(like, avoid, sizes)]
    offsets, total = _placement.slot_offsets(sizes, item, slot, places)
    huge = total * item >= _kernels.HUGEPAGE_BYTES
    align = _HUGE_PAGE if huge else max(slot_bytes, item)
    if any(place is not None for place in places):
        align = max(align, _placement.PAGE)
    raw = np.empty(total + align // item, np_dtype)  # untouched pages cost no memory
    start = (-raw.ctypes.data % align) // item
    arena = raw[start:start + total]
    if huge:
        _kernels.advise_hugepages(arena)
    if fill is not None:
        arena.fill(fill)
    return [torch.from_numpy(arena[o:o + n].reshape(shape))
            for o, n, shape in zip(offsets, sizes, shapes)]


def packed_copies(tensors: list[torch.Tensor], slot_bytes: int = 64,
                  params: list[torch.Tensor] | None = None,
                  avoid: list[list[int]] | None = None) -> list[torch.Tensor]:
    """Copies of contiguous CPU tensors of one dtype, packed as :func:`new_state_tensors`
    packs the state a step creates; with `params` (each tensor's param, of its shape and
    dtype) and `avoid`, placed as that state is."""
    copies = new_state_tensors(tensors if params is None else params, None,
                               slot_bytes=slot_bytes, avoid=avoid)
    for new, old in zip(copies, tensors):
        new.copy_(old)
    return copies


def _streams(p: torch.Tensor, entry: dict[str, Any]) -> list[int]:
    """The addresses of the streams a new state of `p` meets in a step: the param, its
    grad and the state tensors of `entry` (new_state_tensors' `avoid`)."""
    return [t.data_ptr() for t in (p, p.grad, *entry.values())
            if isinstance(t, torch.Tensor) and t.dim() and t.layout == torch.strided]


def _check_state_tensor(t: Any, p: torch.Tensor, where: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{where}: expected a tensor, got {type(t).__name__}")
    if t.layout != torch.strided or t.device.type != "cpu" or t.dtype != p.dtype \
            or t.shape != p.shape:
        raise ValueError(f"{where}: a {t.layout} {t.dtype} tensor of shape {tuple(t.shape)} "
                         f"on {t.device}; the parameter is a {p.dtype} tensor of shape "
                         f"{tuple(p.shape)} on cpu")
    if t.requires_grad:
        raise ValueError(f"{where}: requires grad; fastopt.torch writes state in place "
                         "outside autograd (store t.detach())")
    if not t.is_contiguous() or t.is_neg():
        raise ValueError(f"{where}: not contiguous; fastopt.torch writes state through its "
                         "memory (store t.contiguous())")


def _counter(value: Any, where: str) -> torch.Tensor:
    """A per-parameter step as fastopt.torch keeps it: a 0-d int64 CPU tensor (torch keeps a
    float tensor; state_dict() converts back)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: expected a scalar step, got shape {tuple(value.shape)}")
        value = value.item()
    step = _torch_layout.step_count(value, where)
    return torch.tensor(step, dtype=torch.int64)


def _real_scalar(value: Any, where: str) -> torch.Tensor:
    """A per-parameter real scalar as fastopt.torch keeps it: a 0-d float64 CPU tensor
    (torch keeps NAdam's mu_product in its default dtype)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{where}: expected a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"{where}: expected a real number, got {value!r}")
    return torch.tensor(float(value), dtype=torch.float64)


class _Layout:
    """What the short path of step() checks and reuses (see the module docstring)."""

    __slots__ = ("version", "state", "group_lists", "group_lens", "params", "arrays", "ptrs",
                 "where", "group_of", "views", "srcs", "gptrs", "weak", "seen", "keys", "plain",
                 "options", "sig", "dirty", "plans", "full", "serial")

    def __init__(self, groups: list[dict[str, Any]], state: Any, version: int) -> None:
        self.version = version
        self.state = state
        self.group_lists = [g["params"] for g in groups]
        self.group_lens = [len(g["params"]) for g in groups]
        self.params: list[torch.Tensor] = []
        self.where: list[tuple[int, int]] = []
        for k, group in enumerate(groups):
            for j, p in enumerate(group["params"]):
                self.params.append(p)
                self.where.append((k, j))
        self.group_of = [k for k, _ in self.where]
        self.arrays = [p.detach().numpy() for p in self.params]
        self.ptrs = _kernels.tensor_addresses(self.params, _data_ptr)  # as _gather reads them
        n = len(self.params)
        self.views: list[Any] = [None] * n          # the retained views of grads
        self.srcs: list[Any] = [_NO_GRAD] * n       # the grad tensors they view
        self.gptrs = np.zeros(n, np.uintp)
        self.weak: list[Any] = [None] * n           # the grads of the previous step
        self.seen = np.zeros(2 * n, np.uintp)       # new grads in a row, the last's address
        self.keys: list[Any] = [None] * len(groups)
        self.plain = [False] * len(groups)
        self.options: list[Any] = [None] * len(groups)
        self.sig: Any = None
        self.dirty = True
        self.plans: dict[Any, tuple] = {}
        self.full: tuple | None = None  # the plan of the current signature, all params active
        # the serial of full's last bind when it bound the retained views of every slot
        # and no slot changed since (0: none): step_again then runs without binding
        self.serial = 0

    def same_groups(self, groups: list[dict[str, Any]]) -> bool:
        if len(groups) != len(self.group_lists):
            return False
        if len(groups) == 1:  # the common case, without the loop (a step's fixed cost)
            params = groups[0]["params"]
            return params is self.group_lists[0] and len(params) == self.group_lens[0]
        for group, lst, n in zip(groups, self.group_lists, self.group_lens):
            params = group["params"]
            if params is not lst or len(params) != n:
                return False
        return True

    def set_options(self, k: int, key: tuple, options: Any) -> None:
        old = self.options[k]
        self.keys[k] = key
        self.plain[k] = _plain(key)
        self.options[k] = options
        # with one group only the state columns used can change the plan (an lr schedule
        # changes the key every step); with several, which groups merge can change too
        if len(self.keys) > 1 or old is None or old.used != options.used:
            self.dirty = True

    def signature(self) -> Any:
        """(units, state columns used per group): what a plan depends on besides which
        params have a gradient."""
        if self.dirty:
            sig = (_partition(self.keys, self.plain), tuple(o.used for o in self.options))
            if sig != self.sig:
                self.sig = sig
                self.full = None
                if len(self.plans) > _MAX_PLANS:
                    self.plans.clear()
            self.dirty = False
        return self.sig

    def drop_grads(self) -> None:
        n = len(self.params)
        self.serial = 0
        self.views = [None] * n
        self.srcs = [_NO_GRAD] * n
        self.weak = [None] * n


class Optimizer(torch.optim.Optimizer):
    """Base class of fastopt.torch's optimizers (a ``torch.optim.Optimizer``).

    Subclasses give the family's ``_state_names`` (kernel argument order),
    ``_option_key`` (the group values the kernel options depend on) and ``_options(group)``
    (the validated kernel options), and may override ``_fill`` and ``_first_step_options``.

    Examples
    --------
    Every fastopt.torch optimizer is a torch optimizer:

    >>> import torch
    >>> import fastopt.torch
    >>> w = torch.zeros(3, requires_grad=True)
    >>> opt = fastopt.torch.SGD([w], lr=0.1)
    >>> isinstance(opt, fastopt.torch.Optimizer), isinstance(opt, torch.optim.Optimizer)
    (True, True)
    >>> w.grad = torch.ones(3)
    >>> opt.step()
    >>> w
    tensor([-0.1000, -0.1000, -0.1000], requires_grad=True)
    """

    # torch.optim.Optimizer's attributes, declared for type checkers without torch
    state: Any
    param_groups: list[dict[str, Any]]
    _state_names: tuple[str, ...] = ()
    #: whether the state holds a per-parameter step (all but SGD and Lion)
    _has_step = True
    #: per-parameter real scalars besides the step, (name, initial value): NAdam's
    #: ``mu_product``, kept as a 0-d float64 tensor the kernel advances (torch keeps its
    #: default dtype; state_dict() converts)
    _reals: tuple[tuple[str, float], ...] = ()
    _option_key: Callable[[dict[str, Any]], tuple]
    #: the family of fastopt.optim this class steps (its states' kinds and fills)
    _family: Any = None

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], *,
                 state_dtype: str | None = None, min_lowprec_size: int = 4096,
                 state_seed: int = 0) -> None:
        self._fo_lowprec = (None if state_dtype is None else
                            TorchLowPrecision(state_dtype, min_lowprec_size, state_seed))
        self._fo_version = Version()
        self._fo_layout: _Layout | None = None
        self._fo_lock = threading.Lock()
        super().__init__(params, defaults)
        self.state = TrackedState(self._fo_version, self.state)  # type: ignore[assignment]
        self._fo_register_hooks()

    # -- what subclasses provide ------------------------------------------------------------
    def _options(self, group: dict[str, Any]) -> Any:
        """The validated kernel options of `group` (a KernelOptions)."""
        raise NotImplementedError

    def _fill(self, name: str) -> float:
        """Initial value of a new state tensor `name`."""
        return 0.0

    def _first_step_options(self, group: dict[str, Any]) -> Any:
        """Options for params whose state this step creates, when they differ (SGD)."""
        return None

    @property
    def state_dtype(self) -> str | None:
        """How large state tensors are kept: None (the param's dtype), "bfloat16" or "int8"
        (see :func:`fastopt.torch.full_precision_state_dict` for the form)."""
        return None if self._fo_lowprec is None else self._fo_lowprec.dtype

    def _new_state(self, p: torch.Tensor, name: str, fill: float) -> Any:
        """A new state `name` of param `p` holding `fill`, in the format this optimizer
        keeps for it."""
        if self._fo_lowprec is None:
            return new_state_tensor(p, fill)
        return self._fo_lowprec.new_state(p, fill, self._nonnegative(name))

    def _nonnegative(self, name: str) -> bool:
        return bool(self._family.state(name).values == "nonnegative")

    # -- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, checking first that every param is a dense,
        contiguous CPU float32/float64 tensor and that the group's options are valid."""
        if isinstance(param_group, dict) and "params" in param_group:
            params = param_group["params"]
            if isinstance(params, torch.Tensor):
                params = [params]
            elif not isinstance(params, set):  # torch raises its own TypeError for a set
                params = list(params)
            param_group["params"] = params
            k = len(self.param_groups)
            for j, p in enumerate(params):
                check_param(p[1] if isinstance(p, tuple) else p,
                            f"param_groups[{k}]['params'][{j}]")
        super().add_param_group(param_group)
        try:
            self._check_group(self.param_groups[-1])
        except Exception:
            self.param_groups.pop()
            raise
        self._fo_version.n += 1

    def _check_group(self, group: dict[str, Any]) -> None:
        if group.get("differentiable"):
            raise ValueError("differentiable: fastopt.torch updates tensors in place outside "
                             "autograd; use torch.optim for differentiable=True")
        if group.get("capturable"):
            raise ValueError("capturable: True captures the step in a CUDA graph; "
                             "fastopt.torch steps CPU tensors on the host (use "
                             "capturable=False)")
        if group.get("fused") and group.get("foreach"):
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        self._options(group)

    # -- stepping ---------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient (torch.optim's ``step``).

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss (run with gradients enabled).

        Returns
        -------
        The closure's loss, or None.
        """
        if (_global_optimizer_pre_hooks or _global_optimizer_post_hooks
                or self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
                or _profiler_enabled()):
            return _hooked_step(self, closure)
        return self._plain_step(closure)

    # torch wraps step() in its profiling and hook wrapper unless the function is marked;
    # that wrapper costs microseconds, so it runs only while a hook or the profiler is on.
    step.hooked = True  # type: ignore[attr-defined]

    def _plain_step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self._fo_lock.acquire(False):
            raise RuntimeError(f"{type(self).__name__}.step: another thread is running step() "
                               "on this optimizer")
        try:
            self._fo_step()
        finally:
            self._fo_lock.release()
        return loss

    def _fo_step(self) -> None:
        if self._fo_lowprec is not None:
            self._fo_lowprec.step(self)
            return
        lay = self._fo_layout
        groups = self.param_groups
        if lay is None or lay.version != self._fo_version.n or lay.state is not self.state \
                or not lay.same_groups(groups):
            lay = self._fo_rebuild()
        getkey = self._option_key
        keys = lay.keys
        for k in range(len(groups)):
            key = getkey(groups[k])
            if key != keys[k] or not lay.plain[k]:
                lay.set_options(k, key, self._options(groups[k]))
        # gradients: a numpy view of each p.grad, reused while p.grad is the same tensor;
        # every p.grad (and p's data pointer) read in one C loop
        got = _gather(lay.params, lay.ptrs, lay.srcs, lay.gptrs, lay.views, lay.weak, lay.seen,
                      _NO_GRAD, _data_ptr, _is_neg, _to_dlpack, _numpy)
        if got is None:  # some p.data was replaced
            self._fo_layout = None
            return self._fo_step()
        changed, grads, missing, slow = got
        if not changed:
            entry = lay.full  # the short path: every view retained, the plan cached
            if entry is None or lay.dirty:
                self._fo_run(lay, None, grads)
                return
            plan, order = entry[0], entry[3]
            bound = grads if order is None else [grads[i] for i in order]
            # the same views as full's last bind, which bound them all (no slot changed
            # since: each is still its grad's view, at the grad's address): no bind
            if plan.step_again(bound, lay.serial, entry[1], lay.options):
                return
            try:  # bind, run every unit, advance: one call
                ran = plan.step(bound, entry[1], lay.options)
            except _DLPackUnfit:  # pragma: no cover - retained capsules were bound before
                self._fo_run(lay, None, grads)
                return
            if not ran:  # pragma: no cover - retained views are never None
                raise RuntimeError("fastopt.torch: a retained gradient view is missing")
            lay.serial = plan.serial
            return
        lay.serial = 0
        for i in slow:
            grads[i] = self._fo_grad_view(lay, i, lay.params[i].grad)
        if missing is None:
            self._fo_run(lay, None, grads)
        elif len(missing) < len(grads):
            skip = set(missing)
            active = tuple(i for i in range(len(grads)) if i not in skip)
            self._fo_run(lay, active, grads)

    def _fo_grad_view(self, lay: _Layout, i: int, g: Any) -> np.ndarray:
        """The view of a new grad that gather_torch_grads left to Python (a negative view,
        or a grad to_dlpack refused): the numpy road, which copies or explains. Retained
        (as gather_torch_grads retains) when it is the grad of the previous step and not a
        copy."""
        try:
            view = _numpy(g)
        except (TypeError, RuntimeError):
            view = self._grad_view(lay, i, g)
        w = lay.weak[i]
        if w is not None and w() is g:
            address = int(_kernels.tensor_addresses([g], _data_ptr)[0])
            if view.__array_interface__["data"][0] == address:  # a copy is read again at
                lay.srcs[i] = g                                # each step
                lay.gptrs[i] = address
                lay.views[i] = view
        else:
            lay.weak[i] = weakref.ref(g)
        return view

    def _fo_run(self, lay: _Layout, active: tuple[int, ...] | None, grads: list) -> None:
        """Step the params in `active` (all when None); `grads` holds every slot's."""
        if lay.dirty:
            lay.signature()
        entry = lay.full if active is None else None
        created: dict[int, list[str]] = {}
        if entry is None:
            entry = lay.plans.get((lay.signature(), active))
            if entry is None:
                entry, created = self._fo_plan(lay, active)
            if active is None and entry[2] is None:
                lay.full = entry
        plan, unit_groups, unit_options, order = entry
        slots = order if order is not None else active  # the slot of each plan entry
        bound = grads if slots is None else [grads[i] for i in slots]
        try:
            self._fo_bind(lay, plan, bound, slots)
        except Exception as err:  # e.g. the numpy road's RuntimeError for a sparse grad
            self._fo_rollback(lay, created)
            if isinstance(err, (TypeError, ValueError)):
                raise type(err)(_torch_words(str(err), lay)) from None
            raise
        if unit_options is None:
            plan.run_all(unit_groups, lay.options)
        else:
            plan.run_all(list(range(len(unit_options))), unit_options)

    def _fo_bind(self, lay: _Layout, plan: Any, grads: list,
                 slots: tuple[int, ...] | None) -> None:
        """Bind the grads, in the plan's order (``grads[k]`` is slot ``slots[k]``'s, or
        slot k's when None); a DLPack capsule the plan finds unfit (a strided, misaligned
        or foreign gradient) is replaced by the numpy road, which copies or explains."""
        while True:
            try:
                if slots is None:
                    plan.bind(grads)
                else:
                    plan.bind(grads, list(slots))
                return
            except _DLPackUnfit as unfit:
                k = unfit.position
                i = k if slots is None else slots[k]
                g: Any = lay.params[i].grad
                try:
                    view = _numpy(g)
                except (TypeError, RuntimeError):
                    view = self._grad_view(lay, i, g)
                grads[k] = view
                if lay.views[i] is not None:  # a retained capsule: retain the view, unless
                    if view.__array_interface__["data"][0] == lay.gptrs[i]:  # it is a copy
                        lay.views[i] = view
                    else:
                        lay.views[i], lay.srcs[i] = None, _NO_GRAD

    def _grad_view(self, lay: _Layout, i: int, g: Any) -> np.ndarray:
        """A view of a grad Tensor.numpy() refused: explain why, or take another road."""
        k, j = lay.where[i]
        return self._grad_view_at(f"param_groups[{k}]['params'][{j}].grad", lay.params[i], g)

    def _lowprec_grad_view(self, i: int, g: Any) -> np.ndarray:
        """A numpy view of the grad of the i-th param (low-precision step)."""
        try:
            return _numpy(g)
        except (TypeError, RuntimeError):
            pass
        for k, group in enumerate(self.param_groups):
            if i < len(group["params"]):
                return self._grad_view_at(f"param_groups[{k}]['params'][{i}].grad",
                                          group["params"][i], g)
            i -= len(group["params"])
        raise IndexError(i)  # pragma: no cover - i comes from the groups

    def _grad_view_at(self, where: str, p: torch.Tensor, g: Any) -> np.ndarray:
        if not isinstance(g, torch.Tensor):
            raise TypeError(f"{where}: expected a tensor, got {type(g).__name__}")
        if g.layout != torch.strided:
            raise RuntimeError(f"{where}: sparse gradients are not supported (torch.optim."
                               "SparseAdam handles them)")
        if g.device.type != "cpu":
            raise ValueError(f"{where}: on device {g.device}; fastopt.torch steps CPU tensors")
        if g.requires_grad or g.is_neg() or g.is_conj():  # create_graph=True, or a lazy view
            return g.detach().resolve_neg().resolve_conj().numpy()
        raise TypeError(f"{where}: dtype {g.dtype}, the parameter's is {p.dtype}")

    # -- the cached tables ------------------------------------------------------------------
    def _fo_rebuild(self) -> _Layout:
        """Check every param and state tensor and start a fresh cache."""
        self._fo_layout = None
        if not isinstance(self.state, TrackedState) or \
                self.state._version is not self._fo_version:
            self.state = TrackedState(self._fo_version, self.state)  # type: ignore[assignment]
        for k, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                check_param(p, f"param_groups[{k}]['params'][{j}]")
        self._fo_normalize_state()
        lay = _Layout(self.param_groups, self.state, self._fo_version.n)
        self._fo_layout = lay
        return lay

    def _fo_normalize_state(self) -> None:
        """Check the state tensors of every param; turn each step into an int64 counter."""
        counters: set[int] = set()
        for k, group in enumerate(self.param_groups):
            for j, p in enumerate(group["params"]):
                entry = self.state.get(p)
                if not entry:
                    continue
                where = f"state[param_groups[{k}]['params'][{j}]]"
                for name in self._state_names:
                    t = entry.get(name)
                    if t is not None and not isinstance(t, dict) \
                            and not (isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16
                                     and self._fo_lowprec is not None):
                        _check_state_tensor(t, p, f"{where}[{name!r}]")
                if (self._has_step or self._fo_lowprec is not None) and "step" in entry:
                    step = entry["step"]
                    if not (isinstance(step, torch.Tensor) and step.dtype == torch.int64
                            and step.dim() == 0 and step.device.type == "cpu"
                            and not step.requires_grad) or id(step) in counters:
                        entry["step"] = step = _counter(step, f"{where}['step']")
                    counters.add(id(step))
                for name, _ in self._reals:
                    if name not in entry:
                        continue
                    value = entry[name]
                    if not (isinstance(value, torch.Tensor) and value.dtype == torch.float64
                            and value.dim() == 0 and value.device.type == "cpu"
                            and not value.requires_grad) or id(value) in counters:
                        entry[name] = value = _real_scalar(value, f"{where}[{name!r}]")
                    counters.add(id(value))

    def _fo_plan(self, lay: _Layout, active: tuple[int, ...] | None
                 ) -> tuple[tuple, dict[int, list[str]]]:
        """The StepPlan for the params in `active` (all when None), allocating their missing
        state. Cached unless this step creates state that runs with other options."""
        indices = range(len(lay.params)) if active is None else active
        created = self._fo_allocate(lay, indices)
        partition, _ = lay.signature()
        units, names, unit_groups, unit_options = [], [], [], []
        order: list[int] = []  # the slot of each plan entry (units group params anew)
        one_off = False
        for unit in partition:
            members = [i for i in indices if lay.group_of[i] in unit]
            if not members:
                continue
            options = lay.options[unit[0]]
            first = self._first_step_options(self.param_groups[unit[0]]) if created else None
            new = [i for i in members if i in created] if first is not None else []
            if new:
                one_off = True
                old = [i for i in members if i not in created]
                split = [(new, first)] + ([(old, options)] if old else [])
            else:
                split = [(members, options)]
            sub_opts: Any
            for sub, sub_opts in split:
                order.extend(sub)
                units.append(self._fo_unit(lay, sub, sub_opts))
                names.append(sub_opts.state_names)
                unit_groups.append(unit[0])
                unit_options.append(sub_opts)
        try:
            plan = _kernels.StepPlan(units, names)
        except (TypeError, ValueError):
            self._fo_rollback(lay, created)
            raise
        # None where the plan's order is the slots' (no reordering of the grads)
        slots = None if order == list(indices) else tuple(order)
        if one_off:
            return (plan, unit_groups, unit_options, slots), created
        entry = (plan, unit_groups, None, slots)
        lay.plans[(lay.signature(), active)] = entry
        return entry, created

    def _fo_unit(self, lay: _Layout, members: list[int], options: Any) -> tuple:
        state = self.state  # .get: a param without state (SGD without momentum) gets no
        entries = [state.get(lay.params[i], _NO_STATE) for i in members]  # entry, as in torch
        columns = [[e[name].numpy() for e in entries] if used else None
                   for name, used in zip(options.state_names, options.used)]
        steps = [e["step"].numpy() for e in entries] if self._has_step else None
        reals = [[e[name].numpy() for e in entries] for name, _ in self._reals] or None
        return ([lay.arrays[i] for i in members], columns, steps, reals)

    def _fo_allocate(self, lay: _Layout, indices: Iterable[int]) -> dict[int, list[str]]:
        """Zero (or ``_fill``) state tensors the options need and a param lacks; those this
        step creates are packed per state name and dtype (:func:`new_state_tensors`)."""
        created: dict[int, list[str]] = {}
        state = self.state
        for i in indices:
            p = lay.params[i]
            entry = state.get(p)
            options = lay.options[lay.group_of[i]]
            needed = [n for n, used in zip(options.state_names, options.used)
                      if used and (entry is None or entry.get(n) is None)]
            if self._has_step and (entry is None or entry.get("step") is None):
                needed.append("step")
            needed += [n for n, _ in self._reals if entry is None or entry.get(n) is None]
            if needed:
                created[i] = needed
        if not created:
            return created
        initial = dict(self._reals)
        batches: dict[tuple[str, Any], list[int]] = {}  # in the order the names are needed
        for i, needed in created.items():
            for name in needed:
                batches.setdefault((name, lay.params[i].dtype), []).append(i)
        for (name, _), members in batches.items():
            ps = [lay.params[i] for i in members]
            if name == "step":
                tensors = new_state_tensors([], 0, torch.int64, [()] * len(ps), slot_bytes=8)
            elif name in initial:
                tensors = [torch.tensor(initial[name], dtype=torch.float64) for _ in ps]
            elif self._fo_lowprec is None:
                tensors = new_state_tensors(ps, self._fill(name), avoid=[
                    _streams(p, state.get(p, _NO_STATE)) for p in ps])
            else:
                tensors = [self._new_state(p, name, self._fill(name)) for p in ps]
            for p, t in zip(ps, tensors):
                state[p][name] = t
        lay.version = self._fo_version.n  # our own additions leave the tables valid
        return created

    def _fo_rollback(self, lay: _Layout, created: dict[int, list[str]]) -> None:
        """Undo _fo_allocate after a failed step (nothing is modified when a step raises)."""
        for i, names in created.items():
            entry = self.state[lay.params[i]]
            for name in names:
                entry.pop(name, None)
            if not entry:
                self.state.pop(lay.params[i], None)

    # -- zero_grad, state_dict, pickling ----------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's ``zero_grad``; with ``set_to_none=True`` it also drops the numpy views of
        the old gradients, so their memory is freed at once."""
        super().zero_grad(set_to_none)
        if set_to_none and self._fo_layout is not None:
            self._fo_layout.drop_grads()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (a torch.optim or fastopt.torch state dict of the
        same family), then checks: every state tensor matches its parameter (dtype, shape,
        CPU, no grad; non-contiguous ones are copied), each ``step`` is a non-negative whole
        number (kept as an int64 counter), and the groups' options are valid. On error
        nothing changes.

        State tensors under 4 MiB (``HUGEPAGE_BYTES``) and the step counters are then
        copied side by side, per state name and dtype, as the state a step creates is
        packed: a checkpoint's tensors lie wherever its loader put them, and a step over
        many small tensors is slower on scattered state. Larger state tensors are kept
        as loaded and may, as in torch, share memory with the state_dict's (deep-copy the
        dict first if you keep using it)."""
        before = self.__dict__.get("state"), self.param_groups
        # int8 states (dicts) go around torch's load, which would cast their codes to floats
        # and their "format" to the text of a generator
        aside: dict[Any, dict[str, Any]] = {}
        plain_state: dict[Any, Any] = {}
        for key, entry in state_dict["state"].items():
            if isinstance(entry, dict) and any(isinstance(v, dict) for v in entry.values()):
                aside[key] = {n: v for n, v in entry.items() if isinstance(v, dict)}
                entry = {n: v for n, v in entry.items() if not isinstance(v, dict)}
            plain_state[key] = entry
        super().load_state_dict({**state_dict, "state": plain_state})
        try:
            for group in self.param_groups:
                self._check_group(group)
            ids = [i for group in state_dict["param_groups"] for i in group["params"]]
            by_id = dict(zip(ids, (p for group in self.param_groups for p in group["params"])))
            for key, values in aside.items():
                if key in by_id:
                    self.state[by_id[key]].update(values)
            for k, group in enumerate(self.param_groups):
                for j, p in enumerate(group["params"]):
                    entry = self.state.get(p)
                    if not entry:
                        continue
                    target = None if self._fo_lowprec is None else self._fo_lowprec.target(p)
                    for name in self._state_names:
                        t = entry.get(name)
                        if t is None:
                            continue
                        if target is not None or isinstance(t, dict) \
                                or t.dtype == torch.bfloat16:
                            entry[name] = convert_state(
                                t, p, target, self._nonnegative(name),
                                f"state[param_groups[{k}]['params'][{j}]][{name!r}]")
                        elif isinstance(t, torch.Tensor) and (t.requires_grad
                                                              or not t.is_contiguous()):
                            entry[name] = t.detach().contiguous()
            self._fo_normalize_state()
            if self._fo_lowprec is None:
                self._fo_pack_state()
        except Exception:
            self.state, self.param_groups = before  # type: ignore[assignment]
            self._fo_version.n += 1
            raise
        self._fo_layout = None

    def _fo_pack_state(self) -> None:
        """Pack the (checked) state tensors under HUGEPAGE_BYTES and the step counters,
        per name and dtype in param order, as _fo_allocate packs new state."""
        batches: dict[tuple[str, Any], list[tuple[torch.Tensor, dict[str, Any]]]] = {}
        for group in self.param_groups:
            for p in group["params"]:
                entry = self.state.get(p)
                if not entry:
                    continue
                for name in self._state_names:
                    t = entry.get(name)
                    if isinstance(t, torch.Tensor) and t.nbytes < _kernels.HUGEPAGE_BYTES:
                        batches.setdefault((name, t.dtype), []).append((p, entry))
                if self._has_step and isinstance(entry.get("step"), torch.Tensor):
                    batches.setdefault(("step", torch.int64), []).append((p, entry))
        for (name, _), members in batches.items():
            tensors = [entry[name] for _, entry in members]
            if name == "step":
                copies = packed_copies(tensors, slot_bytes=8)
            else:  # placed away from the streams it meets, as _fo_allocate places
                copies = packed_copies(tensors, params=[p for p, _ in members], avoid=[
                    _streams(p, {n: t for n, t in entry.items() if n != name})
                    for p, entry in members])
            for (_, entry), t in zip(members, copies):
                entry[name] = t

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()  # type: ignore[misc]
        state["_fo_lowprec"] = self._fo_lowprec
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:  # a state dict of an older torch lacks newer options
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        self.__dict__.setdefault("_fo_lowprec", None)
        if "_fo_version" not in self.__dict__:  # unpickled or deep-copied
            self._fo_version = Version()
            self._fo_lock = threading.Lock()
            self._fo_register_hooks()
        self._fo_layout = None
        self.state = TrackedState(self._fo_version, self.state)  # type: ignore[assignment]
        self._fo_version.n += 1

    def _fo_register_hooks(self) -> None:
        # First among the post hooks: user hooks see torch's step format too.
        self.register_state_dict_post_hook(_torch_format, prepend=True)  # type: ignore[arg-type]


_hooked_step = torch.optim.Optimizer.profile_hook_step(Optimizer._plain_step)


def _torch_format(opt: Optimizer, state_dict: dict[str, Any]) -> dict[str, Any]:
    """state_dict() post hook: each step (and NAdam's mu_product) as torch stores it (a
    float tensor of torch's scalar dtype), and plain per-parameter dicts (the other tensors
    are the live ones, as in torch)."""
    special = set()
    for group in state_dict["param_groups"]:
        if group.get("fused") or group.get("capturable"):
            special.update(group["params"])
    state = {}
    for key, entry in state_dict["state"].items():
        if isinstance(entry, dict):
            entry = dict(entry)
            step = entry.get("step")
            if isinstance(step, torch.Tensor) and step.dtype == torch.int64:
                entry["step"] = torch.tensor(float(step.item()),
                                             dtype=_torch_layout.torch_step_dtype(
                                                 key in special))
            for name, _ in opt._reals:
                value = entry.get(name)
                if isinstance(value, torch.Tensor):  # a copy: ours stays float64
                    entry[name] = value.detach().to(
                        _torch_layout.torch_step_dtype(key in special), copy=True)
        state[key] = entry
    return {"state": state, "param_groups": state_dict["param_groups"]}


_GRAD = re.compile(r"\b(grads|params)\[(\d+)\]")


def _torch_words(message: str, lay: _Layout) -> str:
    """A boundary message about ``grads[i]`` / ``params[i]`` in torch's words."""
    def name(m: re.Match) -> str:
        i = int(m.group(2))
        if i >= len(lay.where):
            return m.group(0)
        k, j = lay.where[i]
        return f"param_groups[{k}]['params'][{j}]" + (".grad" if m.group(1) == "grads" else "")
    return _GRAD.sub(name, message)
