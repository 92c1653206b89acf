"""``python -m fastopt bench``: fastopt's kernels against numpy, torch and memory bandwidth.

For every kernel and size it times, in one process and interleaved:

- **fastopt**: the functional kernel (``fastopt.kernels.<name>_step``; ``fastopt.nn.*``
  with preallocated ``out=`` arrays when the function takes them, like the numpy
  reference). Column ``class``: for optimizers the class (``fastopt.Adam(...).step(grads)``),
  for layers the plain call that allocates its outputs;
- **numpy**: the best a numpy user can write: in-place ufuncs with ``out=`` arguments and
  scratch buffers allocated once, a loop over the tensors of a many-tensor layout;
- **torch** (when importable): the optimizer's default implementation (``torch.optim.X``
  with no ``foreach``/``fused`` argument) and ``fused=True`` where torch has it on the
  CPU. For the layers, "torch" is what a torch user writes (``F.dropout`` /
  ``F.batch_norm`` forward plus ``backward()`` through autograd) and "fused" the aten
  kernels called directly (``native_dropout`` / ``native_batch_norm`` and their
  backward), without autograd;
- **deepspeed** (adam and adamw, when importable): DeepSpeed's ``DeepSpeedCPUAdam``, the
  hand-written AVX-512/AVX2 CPU Adam of ZeRO-Offload training, on the same arrays as torch
  tensors (``--deepspeed``: ``auto`` uses it when its C++ op is already compiled, ``build``
  compiles it first, with ninja, once (minutes), ``off``); never a dependency;
- **the bandwidth limit**: ``fastopt._kernels.stream_copy`` and ``stream_triad`` (one-pass
  C kernels built like the others) over arrays with the same total footprint as the
  kernel's arrays, so the limit is DRAM bandwidth for large cases and cache bandwidth
  for small ones. Their bytes count the write-allocate read of every destination line on
  x86 (an ordinary store reads the line first: copy moves 3, triad 4 array-sizes), which
  makes the figure the real traffic rate; the better of the two is the limit.

Each contender runs in batches of calls sized to about ``--target`` seconds; the batches
of all contenders of a case are interleaved (rotating order, a short sleep between
batches so one library's spinning OpenMP threads do not steal the cores from the next),
repeated ``--repeats`` times, and the median per-call time is reported (``--stat min``:
the fastest repeat, a steadier estimate of the intrinsic cost on a busy machine; the JSON
always holds both). BLAS pools are
pinned to one thread with threadpoolctl (when installed) because an OpenBLAS pool and an
OpenMP pool oversubscribe a small machine; fastopt and torch use ``--threads`` threads.

Ratios: ``vs_numpy`` = numpy time / fastopt time (a speedup; likewise ``vs_torch``,
``vs_torch_fused``), ``fraction_of_bandwidth`` = (minimal bytes / fastopt time) /
measured bandwidth, where the minimal bytes are what the operation must move: each
input read once and each output written once (``MINIMAL_BYTES``; the dropout mask counts
zero because a counter-based generator can regenerate it).

JSON (``--json FILE``), schema ``"fastopt-bench/1"``::

    {
      "schema": "fastopt-bench/1",
      "created": "2025-01-01T12:00:00",            # local time, ISO 8601
      "machine": {"cpu": str, "physical_cores": int, "logical_cpus": int,
                  "platform": str, "loadavg": [float, float, float] | null,
                  "loadavg_end": [float, float, float] | null},
      "versions": {"fastopt": str, "numpy": str, "torch": str | null, "python": str,
                   "deepspeed": str | null,
                   "simd_target": str, "openmp": bool},
      "settings": {"threads": int, "blas_threads": 1 | null, "dtype": str,
                   "repeats": int, "target_s": float, "gap_s": float, "quick": bool,
                   "stat": "median" | "min",
                   "thread_policy": str,  # fastopt.show_config()'s policy, one line
                   "env": {str: str},   # OMP_*, GOMP_*, KMP_*, OPENBLAS_*, MKL_* set
                   "torch": bool, "only": [str] | null},
      "results": [{
          "kernel": str,                 # registry name, e.g. "adam"
          "case": str,                   # "1e6", "500x2000" (tensors x elements), "1024x4096"
          "tensors": int, "shape": [int], "elements": int, "dtype": str,
          "minimal_bytes": int,
          "times_s": {"fastopt": float, "fastopt_class": float | null,  # per --stat
                      "numpy": float | null, "torch": float | null,
                      "torch_fused": float | null, "deepspeed": float | null,
                      "copy": float, "triad": float,
                      "limit": float},   # limit = minimal_bytes / bandwidth_gbs
          "bandwidth_gbs": float,        # size-matched copy/triad rate (the limit)
          "effective_gbs": float,        # minimal_bytes / fastopt time
          "elements_per_s": float,       # elements / fastopt time
          "ratios": {"vs_numpy": float | null, "vs_torch": float | null,
                     "vs_torch_fused": float | null, "fraction_of_bandwidth": float,
                     "class_vs_torch_fused": float | null,
                     "vs_deepspeed": float | null},
          "median_s": {contender: float},   # median repeat's seconds per call
          "fastest_s": {contender: float},  # best repeat's seconds per call
          "spread": {contender: float},  # (slowest - fastest repeat) / median
          "noise": float,                # the largest spread of the case
          "notes": [str]}],
      "skipped": [{"kernel": str, "case": str | null, "reason": str}],
      "targets": [{"kernel": str, "case": str, "ratio": str, "threshold": float,
                   "value": float | null, "met": bool | null, "target": str}]
    }

Times are seconds per call, ratios plain floats; ``null`` means the contender does not
exist (no torch, no fused variant) and the reason is in ``notes``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MINIMAL_BYTES", "KERNELS", "TARGETS", "run", "check_targets", "format_table",
           "main"]

SCHEMA = "fastopt-bench/1"

#: Bytes per element each operation must move, in units of the dtype's itemsize: every
#: input read once and every output written once (state arrays are both).
MINIMAL_BYTES: dict[str, int] = {
    "copy": 2,        # read src, write dst
    "triad": 3,       # read b, c, write a
    "sgd": 5,         # momentum: read p, g, buf; write p, buf
    "adam": 7,        # read p, g, m, v; write p, m, v
    "adamw": 7,
    "adagrad": 5,     # read p, g, sum; write p, sum
    "rmsprop": 5,     # read p, g, square_avg; write p, square_avg
    "adadelta": 7,    # read p, g, square_avg, acc_delta; write p, square_avg, acc_delta
    "nadam": 7,       # read p, g, m, v; write p, m, v
    "lion": 5,        # read p, g, m; write p, m
    "dropout": 4,     # forward read x, write y; backward read dy, write dx (mask regenerable)
    "batchnorm": 5,   # forward read x, write y; backward read dy, x, write dx
    "lbfgs": 0,       # depends on the memory size m: see _lbfgs_case (2m + 2 vectors)
    # Adam with state_dtype (float32 params; units of 4 bytes): p, g, p out = 3, m and v
    # read and written as bfloat16 = 2, as int8 codes = 1 (the block absmax: +1/64)
    "adam_bf16": 5,
    "adam_int8": 4,
    "bfgs": 0,        # an (n, n) matrix, not vectors: see _bfgs_case (3 n^2 elements)
    # Adam over bfloat16 params with bfloat16 grads and float32 state: 2 + 2 + 2 bytes
    # of p, g, p out and 16 of m and v, 22 bytes, not a whole number of 4-byte units: see
    # _bf16params_case
    "adam_bf16params": 0,
}

#: Bytes per element of the adam_bf16params case (see MINIMAL_BYTES).
BF16PARAMS_BYTES = 22

#: The low-precision Adam cases: kernel name -> state_dtype.
LOWPREC_CASES = {"adam_bf16": "bfloat16", "adam_int8": "int8"}

#: Sizes: "1e4" is one tensor of 10,000 elements; "500x2000" is 500 tensors of 2,000
#: elements (optimizers) and "1024x4096" one (1024, 4096) array (layers).
FULL_SIZES = ["1e4", "1e6", "1e7"]
MANY_TENSORS = ["500x2000", "2000x64x64"]


class Unavailable(Exception):
    """A case cannot run in this installation (kernel or contender missing)."""


@dataclass
class Layout:
    """`tensors` tensors of shape `shape` (a flat size is one tensor)."""

    label: str
    tensors: int
    shape: tuple[int, ...]

    @property
    def elements(self) -> int:
        return self.tensors * math.prod(self.shape)


def parse_optimizer_size(label: str) -> Layout:
    """ "1e6" -> one (1000000,) tensor; "500x2000" -> 500 x (2000,); "2000x64x64" ->
    2000 x (64, 64)."""
    parts = label.lower().split("x")
    if len(parts) == 1:
        return Layout(label, 1, (int(float(parts[0])),))
    return Layout(label, int(parts[0]), tuple(int(p) for p in parts[1:]))


def parse_array_size(label: str, ndim_min: int = 1) -> Layout:
    """ "1e6" -> a (1000, 1000) array; "1024x4096" -> (1024, 4096); one tensor."""
    parts = label.lower().split("x")
    if len(parts) > 1:
        return Layout(label, 1, tuple(int(p) for p in parts))
    n = int(float(parts[0]))
    if ndim_min <= 1:
        return Layout(label, 1, (n,))
    cols = max(1, min(1000, int(round(math.sqrt(n)))))
    return Layout(label, 1, (max(1, n // cols), cols))


# ---------------------------------------------------------------------------------------
# Cases: each builds its contenders (zero-argument callables doing one full operation)
# ---------------------------------------------------------------------------------------


@dataclass
class Case:
    kernel: str
    layout: Layout
    dtype: np.dtype
    minimal_bytes: int
    footprint_bytes: int  # distinct bytes of the arrays the kernel touches
    contenders: dict[str, Callable[[], Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    dtype: np.dtype
    torch: Any  # the torch module, or None
    seed: int = 0
    deepspeed_adam: Any = None  # DeepSpeedCPUAdam, or None


def _rand(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator, low: float,
          high: float) -> np.ndarray:
    return (rng.random(shape, dtype=dtype) * dtype.type(high - low) + dtype.type(low))


def _fastopt_attr(path: str) -> Any:
    """fastopt.<path> or Unavailable (e.g. 'kernels.adam_step', 'nn.dropout')."""
    import importlib

    module_name, _, attr = ("fastopt." + path).rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise Unavailable(f"{module_name} is not in this installation ({exc})") from None
    if not hasattr(module, attr):
        raise Unavailable(f"{module_name}.{attr} is not in this installation")
    return getattr(module, attr)


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` takes a keyword argument `name` (False when it cannot be inspected)."""
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class _Tensors:
    """The arrays of a case, and per-contender copies of the ones a contender writes.

    `roles` maps a role to the (low, high) of its uniform random values, or None for
    zeros. Roles in `shared` are read-only inputs (gradients, x, dy): every contender reads
    the same arrays. The others are copied per contender, so each keeps its own state.
    """

    def __init__(self, layout: Layout, dtype: np.dtype,
                 roles: dict[str, tuple[float, float] | None], seed: int,
                 shared: tuple[str, ...] = ()):
        rng = np.random.default_rng(seed)
        self.layout, self.dtype, self.shared = layout, dtype, shared
        self.zeros = [role for role, span in roles.items() if span is None]
        self.base = {role: [_rand(layout.shape, dtype, rng, *span)
                            for _ in range(layout.tensors)]
                     for role, span in roles.items() if span is not None}

    def copy(self) -> dict[str, list[np.ndarray]]:
        out = {role: arrays if role in self.shared else [a.copy() for a in arrays]
               for role, arrays in self.base.items()}
        for role in self.zeros:
            out[role] = [np.zeros(self.layout.shape, self.dtype)
                         for _ in range(self.layout.tensors)]
        return out


# -- optimizers ------------------------------------------------------------------------


@dataclass
class OptimizerSpec:
    name: str
    states: tuple[str, ...]                      # state array roles, in kernel order
    hyper: dict[str, Any]                        # fastopt kernel keywords
    numpy_step: Callable[..., None]              # (p, g, states, scratch, step, hyper)
    torch_class: str | None                      # None: torch.optim has no such class
    torch_kwargs: dict[str, Any]
    fo_class: str
    fo_class_kwargs: dict[str, Any]
    kernel: str = ""                             # fastopt.kernels.<kernel>
    kernel_extra: dict[str, Any] = field(default_factory=dict)
    takes_step: bool = True
    scratch: int = 1                             # scratch arrays numpy_step needs


def _np_sgd(p, g, st, scratch, step, h):
    tmp = scratch[0]
    (buf,) = st
    mu, lr = h["momentum"], h["lr"]
    if step == 1:
        np.copyto(buf, g)
    else:
        np.multiply(buf, mu, out=buf)
        np.add(buf, g, out=buf)
    np.multiply(buf, lr, out=tmp)
    np.subtract(p, tmp, out=p)


def _np_moments(m, v, g, tmp, b1, b2):
    """Adam's moments in place: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g g."""
    np.multiply(m, b1, out=m)
    np.multiply(g, 1.0 - b1, out=tmp)
    np.add(m, tmp, out=m)
    np.multiply(v, b2, out=v)
    np.multiply(g, g, out=tmp)
    np.multiply(tmp, 1.0 - b2, out=tmp)
    np.add(v, tmp, out=v)


def _np_adam(p, g, st, scratch, step, h, decoupled=False):
    tmp = scratch[0]
    m, v = st
    b1, b2, lr, eps, wd = h["beta1"], h["beta2"], h["lr"], h["eps"], h["weight_decay"]
    if decoupled and wd:
        np.multiply(p, 1.0 - lr * wd, out=p)
    bc1, bc2 = 1.0 - b1 ** step, 1.0 - b2 ** step
    _np_moments(m, v, g, tmp, b1, b2)
    np.sqrt(v, out=tmp)
    np.divide(tmp, math.sqrt(bc2), out=tmp)
    np.add(tmp, eps, out=tmp)
    np.divide(m, tmp, out=tmp)
    np.multiply(tmp, lr / bc1, out=tmp)
    np.subtract(p, tmp, out=p)


def _np_adamw(p, g, st, scratch, step, h):
    _np_adam(p, g, st, scratch, step, h, decoupled=True)


def _np_adagrad(p, g, st, scratch, step, h):
    tmp = scratch[0]
    (acc,) = st
    clr = h["lr"] / (1.0 + (step - 1) * h["lr_decay"])
    np.multiply(g, g, out=tmp)
    np.add(acc, tmp, out=acc)
    np.sqrt(acc, out=tmp)
    np.add(tmp, h["eps"], out=tmp)
    np.divide(g, tmp, out=tmp)
    np.multiply(tmp, clr, out=tmp)
    np.subtract(p, tmp, out=p)


def _np_rmsprop(p, g, st, scratch, step, h):
    tmp = scratch[0]
    (sq,) = st
    a = h["alpha"]
    np.multiply(sq, a, out=sq)
    np.multiply(g, g, out=tmp)
    np.multiply(tmp, 1.0 - a, out=tmp)
    np.add(sq, tmp, out=sq)
    np.sqrt(sq, out=tmp)
    np.add(tmp, h["eps"], out=tmp)
    np.divide(g, tmp, out=tmp)
    np.multiply(tmp, h["lr"], out=tmp)
    np.subtract(p, tmp, out=p)


def _np_adadelta(p, g, st, scratch, step, h):
    sq, acc = st
    rho, eps, lr = h["rho"], h["eps"], h["lr"]
    tmp, tmp2 = scratch
    np.multiply(sq, rho, out=sq)
    np.multiply(g, g, out=tmp)
    np.multiply(tmp, 1.0 - rho, out=tmp)
    np.add(sq, tmp, out=sq)
    np.add(sq, eps, out=tmp)
    np.sqrt(tmp, out=tmp)                 # std
    np.add(acc, eps, out=tmp2)
    np.sqrt(tmp2, out=tmp2)
    np.divide(tmp2, tmp, out=tmp2)
    np.multiply(tmp2, g, out=tmp2)        # delta
    np.multiply(tmp2, tmp2, out=tmp)
    np.multiply(tmp, 1.0 - rho, out=tmp)
    np.multiply(acc, rho, out=acc)
    np.add(acc, tmp, out=acc)
    np.multiply(tmp2, lr, out=tmp2)
    np.subtract(p, tmp2, out=p)


def _np_nadam(p, g, st, scratch, step, h):
    """NAdam with torch's scalars; scratch[-1] keeps the running mu_product (a float
    appended to this tensor's persistent scratch list on the first step)."""
    tmp, den = scratch[0], scratch[1]
    m, v = st
    b1, b2, lr, eps, psi = h["beta1"], h["beta2"], h["lr"], h["eps"], h["momentum_decay"]
    if len(scratch) == 2:
        scratch.append(1.0)
    mu = b1 * (1.0 - 0.5 * 0.96 ** (step * psi))
    mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
    scratch[-1] = product = scratch[-1] * mu
    _np_moments(m, v, g, tmp, b1, b2)
    np.divide(v, 1.0 - b2 ** step, out=den)
    np.sqrt(den, out=den)
    np.add(den, eps, out=den)
    np.multiply(g, lr * (1.0 - mu) / (1.0 - product), out=tmp)
    np.divide(tmp, den, out=tmp)
    np.subtract(p, tmp, out=p)
    np.multiply(m, lr * mu_next / (1.0 - product * mu_next), out=tmp)
    np.divide(tmp, den, out=tmp)
    np.subtract(p, tmp, out=p)


def _np_lion(p, g, st, scratch, step, h):
    tmp, c = scratch
    (m,) = st
    b1, b2, lr, wd = h["beta1"], h["beta2"], h["lr"], h["weight_decay"]
    np.multiply(m, b1, out=c)
    np.multiply(g, 1.0 - b1, out=tmp)
    np.add(c, tmp, out=c)
    np.sign(c, out=c)
    if wd:
        np.multiply(p, wd, out=tmp)
        np.add(c, tmp, out=c)
    np.multiply(c, lr, out=c)
    np.subtract(p, c, out=p)
    np.multiply(m, b2, out=m)
    np.multiply(g, 1.0 - b2, out=tmp)
    np.add(m, tmp, out=m)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        "sgd", ("buf",), dict(lr=1e-2, momentum=0.9), _np_sgd,
        "SGD", dict(lr=1e-2, momentum=0.9), "SGD", dict(lr=1e-2, momentum=0.9),
        kernel="sgd_step", takes_step=False),
    "adam": OptimizerSpec(
        "adam", ("m", "v"),
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0), _np_adam,
        "Adam", dict(lr=1e-3), "Adam", dict(lr=1e-3), kernel="adam_step"),
    "adamw": OptimizerSpec(
        "adamw", ("m", "v"),
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=1e-2), _np_adamw,
        "AdamW", dict(lr=1e-3, weight_decay=1e-2), "AdamW", dict(lr=1e-3, weight_decay=1e-2),
        kernel="adamw_step"),
    "adagrad": OptimizerSpec(
        "adagrad", ("sum",), dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10),
        _np_adagrad, "Adagrad", dict(lr=1e-2), "Adagrad", dict(lr=1e-2),
        kernel="adagrad_step"),
    "rmsprop": OptimizerSpec(
        "rmsprop", ("square_avg",), dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0),
        _np_rmsprop, "RMSprop", dict(lr=1e-2), "RMSprop", dict(lr=1e-2),
        kernel="rmsprop_step", takes_step=False),
    "adadelta": OptimizerSpec(
        "adadelta", ("square_avg", "acc_delta"), dict(lr=1.0, rho=0.9, eps=1e-6,
                                                      weight_decay=0.0),
        _np_adadelta, "Adadelta", dict(lr=1.0), "Adadelta", dict(lr=1.0),
        kernel="adadelta_step", takes_step=False, scratch=2),
    "nadam": OptimizerSpec(
        "nadam", ("m", "v"), dict(lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                                  momentum_decay=4e-3),
        _np_nadam, "NAdam", dict(lr=2e-3), "NAdam", dict(lr=2e-3), kernel="nadam_step",
        scratch=2),
    "lion": OptimizerSpec(
        "lion", ("m",), dict(lr=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0), _np_lion,
        None, {}, "Lion", dict(lr=1e-4), kernel="lion_step", takes_step=False, scratch=2),
}


def _fastopt_optimizer_call(spec: OptimizerSpec) -> Callable[..., None]:
    """A function (ps, gs, states, step) -> None calling fastopt's functional kernel."""
    if spec.name == "sgd":
        fn = _fastopt_attr("kernels.sgd_step")

        def call_sgd(ps, gs, st, step):
            fn(ps, gs, st[0], first_step=step == 1, **spec.hyper)
        return call_sgd
    if spec.name == "adamw":
        try:
            fn = _fastopt_attr("kernels.adamw_step")
        except Unavailable:
            fn = _fastopt_attr("kernels.adam_step")
            extra = {"decoupled": True}
        else:
            extra = {}

        def call_adamw(ps, gs, st, step):
            fn(ps, gs, *st, step=step, **spec.hyper, **extra)
        return call_adamw
    fn = _fastopt_attr("kernels." + spec.kernel)
    if _accepts(fn, "mu_product"):  # NAdam: the running product is the caller's to keep
        product = {"value": 1.0, "step": 0}

        def call_with_product(ps, gs, st, step):
            if step <= product["step"]:  # a new run from step 1
                product["value"] = 1.0
            product["step"] = step
            product["value"] = fn(ps, gs, *st, step=step, mu_product=product["value"],
                                  **spec.hyper)
        return call_with_product
    if not spec.takes_step:
        def call_stepless(ps, gs, st, step):
            fn(ps, gs, *st, **spec.hyper)
        return call_stepless

    def call_with_step(ps, gs, st, step):
        fn(ps, gs, *st, step=step, **spec.hyper)
    return call_with_step


def _optimizer_case(name: str, layout: Layout, ctx: Context) -> Case:
    spec = OPTIMIZERS[name]
    dt = ctx.dtype
    n_arrays = 2 + len(spec.states)
    case = Case(name, layout, dt, MINIMAL_BYTES[name] * layout.elements * dt.itemsize,
                n_arrays * layout.elements * dt.itemsize)
    kernel = _fastopt_optimizer_call(spec)  # Unavailable before allocating anything
    roles: dict[str, tuple[float, float] | None] = {"p": (-1.0, 1.0), "g": (-1.0, 1.0)}
    roles.update({s: None for s in spec.states})
    data = _Tensors(layout, dt, roles, ctx.seed, shared=("g",))

    # fastopt, functional kernel (the state persists across calls, step counts up).
    a = data.copy()

    def tensors(arrays: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
        # one tensor: the array itself, as a single-tensor caller passes it
        return arrays[0] if layout.tensors == 1 else arrays
    ps, gs, st = tensors(a["p"]), tensors(a["g"]), [tensors(a[s]) for s in spec.states]
    counter = {"step": 0}

    def fastopt_kernel():
        counter["step"] += 1
        kernel(ps, gs, st, counter["step"])
    case.contenders["fastopt"] = fastopt_kernel

    # fastopt, optimizer class.
    try:
        cls = _fastopt_attr(spec.fo_class)
        b = data.copy()
        opt = cls(b["p"], **spec.fo_class_kwargs)
        case.contenders["fastopt_class"] = lambda: opt.step(b["g"])
    except Unavailable as exc:
        case.notes.append(f"class: {exc}")

    # numpy, in place with scratch buffers allocated once per tensor.
    c = data.copy()
    tmps = [[np.empty(layout.shape, dt) for _ in range(spec.scratch)]
            for _ in range(layout.tensors)]
    npcount = {"step": 0}
    cstates = [c[s] for s in spec.states]

    def numpy_ref():
        npcount["step"] += 1
        for i in range(layout.tensors):
            spec.numpy_step(c["p"][i], c["g"][i], [s[i] for s in cstates], tmps[i],
                            npcount["step"], spec.hyper)
    case.contenders["numpy"] = numpy_ref

    torch = ctx.torch
    if torch is not None and spec.torch_class is None:
        case.notes.append(f"torch: torch.optim has no {spec.fo_class}")
    elif torch is not None and spec.torch_class is not None:
        for key, extra in (("torch", {}), ("torch_fused", {"fused": True})):
            d = data.copy()
            tps = [torch.from_numpy(x) for x in d["p"]]
            for tp, x in zip(tps, d["g"]):
                tp.grad = torch.from_numpy(x)
            try:
                topt = getattr(torch.optim, spec.torch_class)(tps, **spec.torch_kwargs,
                                                             **extra)
                topt.step()
            except (TypeError, RuntimeError, ValueError) as exc:
                case.notes.append(f"{key}: torch.optim.{spec.torch_class}"
                                  f"({', '.join(f'{k}={v}' for k, v in extra.items())}) "
                                  f"unavailable ({str(exc).splitlines()[0][:80]})")
                continue
            case.contenders[key] = topt.step
    if ctx.deepspeed_adam is not None and name in ("adam", "adamw"):
        _add_deepspeed(case, ctx, data, spec)
    return case


def _lowprec_case(name: str, layout: Layout, ctx: Context) -> Case:
    """fastopt.Adam with state_dtype (the 'fastopt' and 'class' contenders) against the
    same Adam with float32 state ('x_fp32_state'), and, when importable, bitsandbytes'
    CPU Adam8bit ('x_bitsandbytes') and torchao's AdamW8bit ('x_torchao') on torch views
    of the same data. float32 only."""
    state_dtype = LOWPREC_CASES[name]
    dt = ctx.dtype
    if dt != np.float32:
        raise Unavailable("low-precision state is measured with float32 params")
    n = layout.elements
    case = Case(name, layout, dt, MINIMAL_BYTES[name] * n * dt.itemsize,
                (3 * dt.itemsize + (4 if state_dtype == "bfloat16" else 2)) * n)
    roles: dict[str, tuple[float, float] | None] = {"p": (-1.0, 1.0), "g": (-1.0, 1.0)}
    data = _Tensors(layout, dt, roles, ctx.seed, shared=("g",))
    for key, sd in (("fastopt", state_dtype), ("x_fp32_state", None)):
        d = data.copy()
        opt = _fastopt_attr("Adam")(d["p"], lr=1e-3, state_dtype=sd)
        opt.step(d["g"])
        case.contenders[key] = (lambda o, g: lambda: o.step(g))(opt, d["g"])
    case.contenders["fastopt_class"] = case.contenders["fastopt"]
    torch = ctx.torch
    if torch is None:
        case.notes.append("bitsandbytes / torchao: need torch")
        return case
    for key, module, cls_name in (("x_bitsandbytes", "bitsandbytes.optim", "Adam8bit"),
                                  ("x_torchao", "torchao.optim", "AdamW8bit")):
        try:
            import importlib

            cls = getattr(importlib.import_module(module), cls_name)
            d = data.copy()
            tps = [torch.from_numpy(x).requires_grad_() for x in d["p"]]
            for tp, x in zip(tps, d["g"]):
                tp.grad = torch.from_numpy(x)
            extra = {"weight_decay": 0.0} if key == "x_torchao" else {}
            topt = cls(tps, lr=1e-3, **extra)
            topt.step()
        except Exception as exc:  # noqa: BLE001 - optional contenders: reported, not fatal
            case.notes.append(f"{module}.{cls_name} unavailable ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:80] if str(exc) else ''})")
            continue
        case.contenders[key] = topt.step
    return case


def _bf16params_case(layout: Layout, ctx: Context) -> Case:
    """fastopt.Adam over bfloat16 params with bfloat16 grads and float32 state (the
    'fastopt' and 'class' contenders, stochastic rounding) against the same Adam over
    float32 params and grads ('x_fp32_params'), with the params rounded to nearest
    ('x_nearest') or with Kahan compensation ('x_kahan'), and with bfloat16 state too
    ('x_bf16_state'). Needs ml_dtypes; measured in the float32 run."""
    if ctx.dtype != np.float32:
        raise Unavailable("bfloat16 params are compared with float32 ones")
    try:
        import ml_dtypes
    except ImportError as exc:
        raise Unavailable("bfloat16 params need ml_dtypes") from exc
    n = layout.elements
    case = Case("adam_bf16params", layout, ctx.dtype, BF16PARAMS_BYTES * n, 12 * n)
    data = _Tensors(layout, ctx.dtype, {"p": (-1.0, 1.0), "g": (-1.0, 1.0)}, ctx.seed,
                    shared=("g",))
    adam = _fastopt_attr("Adam")
    for key, bf16, sd, rounding in (("fastopt", True, None, "stochastic"),
                                    ("x_nearest", True, None, "nearest"),
                                    ("x_kahan", True, None, "kahan"),
                                    ("x_bf16_state", True, "bfloat16", "stochastic"),
                                    ("x_fp32_params", False, None, "stochastic")):
        d = data.copy()
        ps, gs = d["p"], d["g"]
        if bf16:
            ps = [x.astype(ml_dtypes.bfloat16) for x in ps]
            gs = [x.astype(ml_dtypes.bfloat16) for x in gs]
        opt = adam(ps, lr=1e-3, state_dtype=sd, param_rounding=rounding)
        opt.step(gs)
        case.contenders[key] = (lambda o, g: lambda: o.step(g))(opt, gs)
    case.contenders["fastopt_class"] = case.contenders["fastopt"]
    return case


def _add_deepspeed(case: Case, ctx: Context, data: _Tensors, spec: OptimizerSpec) -> None:
    """DeepSpeedCPUAdam over torch views of a copy of the case's arrays (float32 only: its
    op keeps fp32 state)."""
    if ctx.dtype != np.float32:
        case.notes.append("deepspeed: DeepSpeedCPUAdam is float32 only")
        return
    torch = ctx.torch
    d = data.copy()
    tps = [torch.from_numpy(x) for x in d["p"]]
    for tp, x in zip(tps, d["g"]):
        tp.grad = torch.from_numpy(x)
    h = spec.hyper
    try:
        dopt = ctx.deepspeed_adam(tps, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                  eps=h["eps"], weight_decay=h["weight_decay"],
                                  adamw_mode=spec.name == "adamw")
        dopt.step()
    except Exception as exc:  # noqa: BLE001 - an optional contender: reported, not fatal
        case.notes.append(f"deepspeed: DeepSpeedCPUAdam failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:80]})")
        return
    case.contenders["deepspeed"] = dopt.step


# -- layers ----------------------------------------------------------------------------


def _add_fastopt_layer(case: Case, fns: tuple[Callable[..., Any], ...],
                       alloc: Callable[[], Any],
                       make_out: Callable[[], Callable[[], Any]]) -> None:
    """A layer case's fastopt contenders. When every one of `fns` takes ``out=``,
    'fastopt' is the call into preallocated outputs (``make_out()`` allocates them and
    returns it) and 'fastopt_class' the allocating call `alloc`; an older fastopt without
    ``out=`` has only 'fastopt', the allocating call."""
    if all(_accepts(fn, "out") for fn in fns):
        case.contenders["fastopt"] = make_out()
        case.contenders["fastopt_class"] = alloc
    else:
        case.contenders["fastopt"] = alloc


def _dropout_case(layout: Layout, ctx: Context) -> Case:
    dropout = _fastopt_attr("nn.dropout")
    dropout_backward = _fastopt_attr("nn.dropout_backward")
    dt, shape, n = ctx.dtype, layout.shape, layout.elements
    p = 0.5
    case = Case("dropout", layout, dt, MINIMAL_BYTES["dropout"] * n * dt.itemsize,
                4 * n * dt.itemsize)
    data = _Tensors(layout, dt, {"x": (-1.0, 1.0), "dy": (-1.0, 1.0)}, ctx.seed,
                    shared=("x", "dy"))
    a = data.copy()
    x, dy = a["x"][0], a["dy"][0]

    def fastopt_alloc():
        y, mask = dropout(x, p=p, training=True, seed=1234)
        return dropout_backward(dy, mask)

    def make_fastopt_out():
        fy, fdx = np.empty(shape, dt), np.empty(shape, dt)

        def fastopt_out():
            y, mask = dropout(x, p=p, training=True, seed=1234, out=fy)
            return dropout_backward(dy, mask, out=fdx)
        return fastopt_out
    _add_fastopt_layer(case, (dropout, dropout_backward), fastopt_alloc, make_fastopt_out)

    b = data.copy()
    xb, dyb = b["x"][0], b["dy"][0]
    rng = np.random.default_rng(ctx.seed)
    u, keep = np.empty(shape, dt), np.empty(shape, bool)
    y, dx = np.empty(shape, dt), np.empty(shape, dt)
    scale = dt.type(1.0 / (1.0 - p))

    def numpy_fb():
        rng.random(dtype=dt, out=u)
        np.greater_equal(u, p, out=keep)
        np.multiply(xb, keep, out=y)
        np.multiply(y, scale, out=y)
        np.multiply(dyb, keep, out=dx)
        np.multiply(dx, scale, out=dx)
    case.contenders["numpy"] = numpy_fb

    torch = ctx.torch
    if torch is not None:
        c = data.copy()
        tx = torch.from_numpy(c["x"][0]).requires_grad_()
        tdy = torch.from_numpy(c["dy"][0])
        F = torch.nn.functional

        def torch_autograd():
            tx.grad = None
            F.dropout(tx, p, training=True).backward(tdy)
        case.contenders["torch"] = torch_autograd
        d = data.copy()
        fx, fdy = torch.from_numpy(d["x"][0]), torch.from_numpy(d["dy"][0])
        aten = torch.ops.aten

        def torch_aten():
            out, mask = aten.native_dropout(fx, p, True)
            return aten.native_dropout_backward(fdy, mask, 1.0 / (1.0 - p))
        case.contenders["torch_fused"] = torch_aten
    return case


def _batchnorm_case(layout: Layout, ctx: Context) -> Case:
    batch_norm = _fastopt_attr("nn.batch_norm")
    batch_norm_backward = _fastopt_attr("nn.batch_norm_backward")
    dt, shape, n = ctx.dtype, layout.shape, layout.elements
    if len(shape) < 2:
        shape = (max(2, n // 16), min(16, n))
        layout = Layout(layout.label, 1, shape)
        n = layout.elements
    C = shape[1]
    eps, mom = 1e-5, 0.1
    case = Case("batchnorm", layout, dt, MINIMAL_BYTES["batchnorm"] * n * dt.itemsize,
                4 * n * dt.itemsize)
    data = _Tensors(layout, dt, {"x": (-1.0, 3.0), "dy": (-1.0, 1.0)}, ctx.seed,
                    shared=("x", "dy"))
    gamma0 = np.linspace(0.5, 1.5, C).astype(dt)
    beta0 = np.linspace(-0.1, 0.1, C).astype(dt)

    a = data.copy()
    x, dy = a["x"][0], a["dy"][0]
    gamma, beta = gamma0.copy(), beta0.copy()
    rm, rv = np.zeros(C, dt), np.ones(C, dt)

    def fastopt_alloc():
        y, cache = batch_norm(x, gamma, beta, rm, rv, training=True, momentum=mom, eps=eps)
        return batch_norm_backward(dy, cache)

    def make_fastopt_out():
        fy, fdx = np.empty(shape, dt), np.empty(shape, dt)
        fdg, fdb = np.empty(C, dt), np.empty(C, dt)

        def fastopt_out():
            y, cache = batch_norm(x, gamma, beta, rm, rv, training=True, momentum=mom,
                                  eps=eps, out=fy)
            return batch_norm_backward(dy, cache, out=(fdx, fdg, fdb))
        return fastopt_out
    _add_fastopt_layer(case, (batch_norm, batch_norm_backward), fastopt_alloc,
                       make_fastopt_out)

    b = data.copy()
    xb, dyb = b["x"][0], b["dy"][0]
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, C) + (1,) * (len(shape) - 2)
    m = n // C
    mean, var = np.empty(bshape, dt), np.empty(bshape, dt)
    xc, xhat, y, tmp, dx = (np.empty(shape, dt) for _ in range(5))
    g_b, b_b = gamma0.reshape(bshape).copy(), beta0.reshape(bshape).copy()
    rmb, rvb = np.zeros(C, dt), np.ones(C, dt)
    dgam, dbet = np.empty(bshape, dt), np.empty(bshape, dt)

    def numpy_fb():
        np.mean(xb, axis=axes, keepdims=True, out=mean)
        np.subtract(xb, mean, out=xc)
        np.multiply(xc, xc, out=tmp)
        np.mean(tmp, axis=axes, keepdims=True, out=var)
        invstd = 1.0 / np.sqrt(var + dt.type(eps))
        np.multiply(xc, invstd, out=xhat)
        np.multiply(xhat, g_b, out=y)
        np.add(y, b_b, out=y)
        rmb[...] = (1 - mom) * rmb + mom * mean.ravel()
        rvb[...] = (1 - mom) * rvb + mom * var.ravel() * (m / max(m - 1, 1))
        # backward
        np.sum(dyb, axis=axes, keepdims=True, out=dbet)
        np.multiply(dyb, xhat, out=tmp)
        np.sum(tmp, axis=axes, keepdims=True, out=dgam)
        np.multiply(xhat, dgam, out=tmp)
        np.multiply(dyb, dt.type(m), out=dx)
        np.subtract(dx, dbet, out=dx)
        np.subtract(dx, tmp, out=dx)
        np.multiply(dx, g_b * invstd / dt.type(m), out=dx)
    case.contenders["numpy"] = numpy_fb

    torch = ctx.torch
    if torch is not None:
        F = torch.nn.functional
        c = data.copy()
        tx = torch.from_numpy(c["x"][0]).requires_grad_()
        tdy = torch.from_numpy(c["dy"][0])
        tw = torch.from_numpy(gamma0.copy()).requires_grad_()
        tb = torch.from_numpy(beta0.copy()).requires_grad_()
        trm, trv = torch.zeros(C, dtype=tx.dtype), torch.ones(C, dtype=tx.dtype)

        def torch_autograd():
            tx.grad = tw.grad = tb.grad = None
            F.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=mom,
                         eps=eps).backward(tdy)
        case.contenders["torch"] = torch_autograd
        d = data.copy()
        fx, fdy = torch.from_numpy(d["x"][0]), torch.from_numpy(d["dy"][0])
        fw, fb = torch.from_numpy(gamma0.copy()), torch.from_numpy(beta0.copy())
        frm, frv = torch.zeros(C, dtype=fx.dtype), torch.ones(C, dtype=fx.dtype)
        aten = torch.ops.aten

        def torch_aten():
            out, smean, srstd = aten.native_batch_norm(fx, fw, fb, frm, frv, True, mom, eps)
            return aten.native_batch_norm_backward(fdy, fx, fw, frm, frv, smean, srstd, True,
                                                   eps, [True, True, True])
        case.contenders["torch_fused"] = torch_aten
    return case


# -- L-BFGS two-loop recursion (optional kernel) ---------------------------------------

LBFGS_MEMORY = 10


def _np_two_loop(g, S, Y, rho, gamma, q, tmp, alpha):
    """The two-loop recursion in place in numpy (pairs oldest first: row m-1 is newest);
    leaves H g in q. Dots in the arrays' dtype, axpys with out= and one scratch vector."""
    m = S.shape[0]
    t = q.dtype.type
    np.copyto(q, g)
    for i in range(m - 1, -1, -1):
        alpha[i] = rho[i] * float(np.dot(S[i], q))
        np.multiply(Y[i], t(alpha[i]), out=tmp)
        np.subtract(q, tmp, out=q)
    np.multiply(q, t(gamma), out=q)
    for i in range(m):
        beta = rho[i] * float(np.dot(Y[i], q))
        np.multiply(S[i], t(alpha[i] - beta), out=tmp)
        np.add(q, tmp, out=q)


def lbfgs_problem(n: int, dtype: np.dtype, m: int = LBFGS_MEMORY, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(g, S, Y, rho, gamma) of a well-conditioned L-BFGS memory of m pairs."""
    rng = np.random.default_rng(seed)
    S = _rand((m, n), dtype, rng, -1.0, 1.0)
    Y = S + _rand((m, n), dtype, rng, -0.1, 0.1)
    g = _rand((n,), dtype, rng, -1.0, 1.0)
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(np.float64), Y.astype(np.float64))
    gamma = float(S[-1].astype(np.float64) @ Y[-1]) / float(Y[-1].astype(np.float64) @ Y[-1])
    return g, S, Y, rho, gamma


def _lbfgs_case(layout: Layout, ctx: Context) -> Case:
    from fastopt import _kernels

    two_loop = getattr(_kernels, "lbfgs_two_loop", None)
    if two_loop is None:
        raise Unavailable("fastopt._kernels.lbfgs_two_loop is not exposed by this build")
    dt, n, m = ctx.dtype, layout.elements, LBFGS_MEMORY
    # Each loop reads every s and y once (4mn), g is read, the direction written.
    case = Case("lbfgs", layout, dt, (4 * m + 2) * n * dt.itemsize,
                (2 * m + 2) * n * dt.itemsize)
    g, S, Y, rho, gamma = lbfgs_problem(n, dt, m, ctx.seed)
    out = np.empty(n, dt)
    # Ring buffer full, newest pair in row m - 1 (the numpy reference's order).
    case.contenders["fastopt"] = lambda: two_loop(g, S, Y, rho, gamma, m, m - 1, out=out)
    q, tmp, alpha = np.empty(n, dt), np.empty(n, dt), np.empty(m)
    case.contenders["numpy"] = lambda: _np_two_loop(g, S, Y, rho, gamma, q, tmp, alpha)
    case.notes.append(f"m = {m} pairs; torch has no two-loop kernel")
    return case


# -- BFGS's dense matrix work: symv + syr2 (optional kernels) ------------------------------

def _bfgs_case(layout: Layout, ctx: Context) -> Case:
    """One BFGS iteration's matrix work on an (n, n) inverse Hessian: v = H y, then
    H += a (s v' + v s'). The size is n (one matrix); numpy's version is what a numpy
    user writes (matmul -- BLAS gemv -- an outer product and two in-place additions)."""
    from fastopt import _kernels

    symv, syr2 = getattr(_kernels, "symv", None), getattr(_kernels, "syr2", None)
    if symv is None or syr2 is None:
        raise Unavailable("fastopt._kernels.symv/syr2 are not exposed by this build")
    if layout.tensors != 1:
        raise Unavailable("bfgs: one matrix per case (the size is its order n)")
    dt, n = ctx.dtype, layout.elements
    item = dt.itemsize
    # symv reads H, syr2 reads and writes it: 3 n^2 elements, H is the footprint
    case = Case("bfgs", layout, dt, 3 * n * n * item, n * n * item)
    rng = np.random.default_rng(ctx.seed)
    H = _rand((n, n), dt, rng, -1.0, 1.0)
    H = (H + H.T) / dt.type(2)
    y, s = _rand((n,), dt, rng, -1.0, 1.0), _rand((n,), dt, rng, -1.0, 1.0)
    a = 1e-12                     # H stays (nearly) the same over the repeats
    v = np.empty(n, dt)
    case.contenders["fastopt"] = lambda: (symv(H, y, out=v), syr2(a, s, v, H))
    H2, v2, T = H.copy(), np.empty(n, dt), np.empty((n, n), dt)

    def numpy_update() -> None:
        np.matmul(H2, y, out=v2)
        np.outer(s, v2 * dt.type(a), out=T)
        np.add(H2, T, out=H2)
        np.add(H2, T.T, out=H2)
    case.contenders["numpy"] = numpy_update
    case.notes.append(f"n = {n}: v = H y and H += a (s v' + v s') (one BFGS update)")
    return case


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------


@dataclass
class KernelEntry:
    name: str
    group: str
    sizes: list[str]
    build: Callable[[str, Context], Case]
    describe: str
    quick_sizes: list[str] | None = None  # --quick's sizes, when fewer than `sizes`


def _opt_builder(name: str) -> Callable[[str, Context], Case]:
    return lambda label, ctx: _optimizer_case(name, parse_optimizer_size(label), ctx)


KERNELS: dict[str, KernelEntry] = {}
for _name in OPTIMIZERS:
    KERNELS[_name] = KernelEntry(
        _name, "optim",
        (["1e4", "1e5", "1e6", "1e7"] if _name == "adam" else FULL_SIZES)
        + (MANY_TENSORS if _name in ("sgd", "adam") else []),
        _opt_builder(_name),
        f"fastopt.kernels.{OPTIMIZERS[_name].kernel} vs numpy"
        + (f" / torch.optim.{OPTIMIZERS[_name].torch_class}"
           if OPTIMIZERS[_name].torch_class else ""))
for _name, _sd in LOWPREC_CASES.items():
    KERNELS[_name] = KernelEntry(
        _name, "optim", ["1e4", "1e6", "1.6e7"],
        (lambda name: lambda label, ctx: _lowprec_case(name, parse_optimizer_size(label),
                                                       ctx))(_name),
        f"fastopt.Adam(state_dtype={_sd!r}) vs float32 state / bitsandbytes Adam8bit / "
        "torchao AdamW8bit (optional)",
        quick_sizes=["1e6"])
KERNELS["adam_bf16params"] = KernelEntry(
    "adam_bf16params", "optim", ["1e4", "1e6", "1.6e7"],
    lambda label, ctx: _bf16params_case(parse_optimizer_size(label), ctx),
    "fastopt.Adam on bfloat16 params and grads (float32 state, stochastic rounding) vs "
    "float32 params / nearest / Kahan / bfloat16 state too (needs ml_dtypes)",
    quick_sizes=["1e6"])
KERNELS["dropout"] = KernelEntry(
    "dropout", "nn", ["1e4", "1e6", "1024x4096", "1e7"],
    lambda label, ctx: _dropout_case(parse_array_size(label, 2), ctx),
    "fastopt.nn.dropout + dropout_backward (p = 0.5)",
    quick_sizes=["1e4", "1e6", "1024x4096"])  # torch needs ~0.3 s per 1e7 call
KERNELS["batchnorm"] = KernelEntry(
    "batchnorm", "nn", ["100x100", "256x4096", "32x64x32x32"],   # the layer issue's shapes
    lambda label, ctx: _batchnorm_case(parse_array_size(label, 2), ctx),
    "fastopt.nn.batch_norm + batch_norm_backward (training)")
KERNELS["lbfgs"] = KernelEntry(
    "lbfgs", "minimize", ["1e4", "1e6"],
    lambda label, ctx: _lbfgs_case(parse_optimizer_size(label), ctx),
    f"L-BFGS two-loop recursion, m = {LBFGS_MEMORY} (optional kernel)")
KERNELS["bfgs"] = KernelEntry(
    "bfgs", "minimize", ["300", "1000", "3000"],
    lambda label, ctx: _bfgs_case(parse_optimizer_size(label), ctx),
    "BFGS update: symv + syr2 on an (n, n) matrix vs numpy (optional kernels)",
    quick_sizes=["300", "1000"])
del _name, _sd


#: The performance targets of fastopt's issues, checked on every run that covers them:
#: (kernel, case, ratio key, threshold, what it means). "fraction_of_bandwidth" stands in
#: for "fraction of a plain one-pass C Adam's bandwidth" (a stricter yardstick: copy and
#: triad do no arithmetic).
TARGETS: list[tuple[str, str, str, float, str]] = [
    ("adam", "1e7", "vs_torch_fused", 1.1, ">= 1.1x torch fused Adam at 1e7"),
    ("adam", "1e7", "fraction_of_bandwidth", 0.9, ">= 0.9 of the bandwidth limit at 1e7"),
    ("adam", "1e6", "vs_torch_fused", 1.3, ">= 1.3x torch fused Adam at 1e6"),
    ("adam", "1e5", "vs_torch_fused", 2.0, ">= 2x torch fused Adam at 1e5"),
    ("adam", "500x2000", "vs_torch_fused", 4.0, ">= 4x torch fused Adam at 500 x 2,000"),
    ("adam", "500x2000", "class_vs_torch_fused", 4.0,
     ">= 4x torch fused Adam at 500 x 2,000 (fastopt.Adam class)"),
    ("adam", "2000x64x64", "vs_torch_fused", 2.5, ">= 2.5x torch fused Adam at 2,000 x 64x64"),
    ("adam", "2000x64x64", "class_vs_torch_fused", 2.5,
     ">= 2.5x torch fused Adam at 2,000 x 64x64 (fastopt.Adam class)"),
    ("adam", "1e7", "vs_numpy", 6.0, ">= 6x in-place numpy Adam at 1e7"),
    ("rmsprop", "1e7", "vs_torch", 4.0, ">= 4x torch RMSprop (default) at 1e7"),
    ("adadelta", "1e7", "vs_torch", 4.0, ">= 4x torch Adadelta (default) at 1e7"),
    ("dropout", "1024x4096", "vs_torch", 10.0,
     ">= 10x torch dropout fwd+bwd (autograd) at (1024, 4096)"),
    ("dropout", "1024x4096", "vs_numpy", 4.0, ">= 4x best numpy dropout fwd+bwd at (1024, 4096)"),
    ("batchnorm", "256x4096", "vs_torch", 1.5,
     ">= 1.5x torch BatchNorm fwd+bwd (autograd) at (256, 4096)"),
    ("batchnorm", "32x64x32x32", "vs_torch", 1.5,
     ">= 1.5x torch BatchNorm fwd+bwd (autograd) at (32, 64, 32, 32)"),
]


def check_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target whose case is in the report: value, threshold, met (None: no value).

    Examples
    --------
    >>> from fastopt import bench
    >>> report = bench.run(["adam"], sizes=["16M"], repeats=1, target=0.001,
    ...                    use_torch=False, progress=False)  # doctest: +SKIP
    >>> [t["target"] for t in bench.check_targets(report)]  # doctest: +SKIP
    ['>= 5x numpy ...']
    >>> bench.check_targets({"results": []})   # no case of a target in the report
    []
    """
    out = []
    for kernel, case, key, threshold, text in TARGETS:
        for r in report["results"]:
            if r["kernel"] != kernel or (case != "*" and r["case"] != case):
                continue
            value = r["ratios"].get(key)
            out.append({"kernel": kernel, "case": r["case"], "ratio": key,
                        "threshold": threshold, "value": value, "target": text,
                        "met": None if value is None else value >= threshold})
    return out


# ---------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------

BANDWIDTH_WRITE_ALLOCATE = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
#: Bytes per element counted for the yardsticks, in itemsizes (see the module docstring).
COPY_TRAFFIC = 3 if BANDWIDTH_WRITE_ALLOCATE else 2
TRIAD_TRAFFIC = 4 if BANDWIDTH_WRITE_ALLOCATE else 3


def _bandwidth_contenders(footprint_bytes: int, dtype: np.dtype
                          ) -> tuple[dict[str, Callable[[], Any]], int]:
    """copy and triad over three arrays holding `footprint_bytes` together."""
    from fastopt._kernels import stream_copy, stream_triad

    n = max(4096, footprint_bytes // (3 * dtype.itemsize))
    a, b, c = _bandwidth_buffers(n, dtype)
    return {"copy": lambda: stream_copy(a, b),
            "triad": lambda: stream_triad(a, b, c, 0.5)}, n


_BUFFERS: dict[str, list[np.ndarray]] = {}


def _bandwidth_buffers(n: int, dtype: np.dtype) -> list[np.ndarray]:
    """Three arrays of n elements: views of buffers kept for the whole run (allocating and
    first-touching hundreds of MB per case would cost more than measuring)."""
    have = _BUFFERS.get(dtype.str)
    if have is None or have[0].size < n:
        have = _BUFFERS[dtype.str] = [np.full(n, 0.5, dtype) for _ in range(3)]
    return [buf[:n] for buf in have]


def _calibrate(f: Callable[[], Any], target: float) -> int:
    """Calls per batch so that a batch takes about `target` seconds (after a warm-up)."""
    t0 = time.perf_counter()
    f()  # warm-up (first-touch page faults, lazy state allocation)
    if time.perf_counter() - t0 >= 2 * target:
        return 1  # a slow contender: one call per batch, no second calibration call
    calls, t0 = 0, time.perf_counter()
    while True:
        f()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min(target / 4, 0.002) or elapsed * 8 >= target:
            break
    per_call = elapsed / calls
    return max(1, min(1_000_000, int(round(target / max(per_call, 1e-9)))))


def measure(contenders: dict[str, Callable[[], Any]], repeats: int, target: float,
            gap: float) -> tuple[dict[str, float], dict[str, float], dict[str, float],
                                 dict[str, str]]:
    """Median seconds per call of each contender over `repeats` interleaved batches.

    Returns (times, fastest, spread, failures): fastest is the best batch's per-call time,
    spread is (slowest - fastest batch) / median, a noise figure; a contender that raises
    is dropped and its error is in failures.
    """
    from fastopt.bench_loop import rotated

    failures: dict[str, str] = {}
    numbers: dict[str, int] = {}
    for name, f in contenders.items():
        try:
            numbers[name] = _calibrate(f, target)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    names = [n for n in contenders if n in numbers]
    samples: dict[str, list[float]] = {n: [] for n in names}
    perf = time.perf_counter
    for r in range(repeats):
        for name in rotated(names, r):
            f, number = contenders[name], numbers[name]
            if gap:
                time.sleep(gap)
            t0 = perf()
            for _ in range(number):
                f()
            samples[name].append((perf() - t0) / number)
    times = {n: statistics.median(v) for n, v in samples.items()}
    times_min = {n: min(v) for n, v in samples.items()}
    spread = {n: (max(v) - min(v)) / times[n] if times[n] > 0 else 0.0
              for n, v in samples.items()}
    return times, times_min, spread, failures


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0 or num <= 0:
        return None
    return num / den


# ---------------------------------------------------------------------------------------
# Environment: threads, BLAS pinning, machine facts
# ---------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _thread_policy_summary() -> str | None:
    try:
        from fastopt._config import thread_policy
    except ImportError:
        return None
    return str(thread_policy()["summary"])


def _deepspeed_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("deepspeed")
    except Exception:  # noqa: BLE001
        return None


def _import_torch(enabled: bool) -> tuple[Any, str | None]:
    if not enabled:
        return None, "torch disabled (--no-torch)"
    try:
        import torch  # noqa: PLC0415 - optional, never at module level
    except Exception as exc:  # noqa: BLE001 - any import failure means "no torch"
        return None, f"torch not importable ({type(exc).__name__})"
    return torch, None


def deepspeed_cpu_adam(mode: str = "auto", torch: Any = None) -> tuple[Any, str | None]:
    """(DeepSpeedCPUAdam, None) when it can run here, else (None, why not).

    `mode` "auto" loads it only when its C++ op is already compiled (installed with
    ``DS_BUILD_CPU_ADAM=1``, or built by an earlier first use): the first use compiles it
    with ninja, which takes minutes. "build" compiles it if needed; "off" skips it.
    """
    if mode == "off":
        return None, "deepspeed off (--deepspeed off)"
    if torch is None:
        return None, "DeepSpeedCPUAdam needs torch"
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        return None, "deepspeed not installed (pip install deepspeed ninja for that column)"
    if mode == "auto" and not _deepspeed_op_built():
        return None, ("deepspeed installed but its CPU Adam op is not compiled yet: "
                      "--deepspeed build compiles it once (ninja, minutes)")
    import logging

    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)  # its accelerator banner
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
        DeepSpeedCPUAdam([torch.zeros(1, requires_grad=True)])  # loads (or builds) the op
    except Exception as exc:  # noqa: BLE001 - any failure means "no such column"
        return None, (f"deepspeed's CPU Adam cannot run here ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:100] if str(exc) else ''})")
    return DeepSpeedCPUAdam, None


def _deepspeed_op_built() -> bool:
    """Whether DeepSpeed's cpu_adam op is installed precompiled or in torch's JIT cache."""
    import glob

    try:
        from deepspeed.git_version_info import installed_ops
        if installed_ops.get("cpu_adam"):
            return True
        from torch.utils.cpp_extension import get_default_build_root
    except Exception:  # noqa: BLE001
        return False
    return bool(glob.glob(os.path.join(get_default_build_root(), "*", "cpu_adam",
                                       "cpu_adam*.so")))


@contextmanager
def _environment(threads: int, torch: Any) -> Iterator[int | None]:
    """fastopt and torch on `threads` threads, BLAS on one; restore everything after."""
    import fastopt

    with ExitStack() as stack:
        blas = None
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            stack.enter_context(threadpool_limits(limits=1, user_api="blas"))
            blas = 1
        stack.enter_context(fastopt.threads(threads))
        if torch is not None:
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            stack.callback(torch.set_num_threads, before)
        yield blas


class _Progress:
    """tqdm on stderr when installed, else a plain counter line per step."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.count, self.bar = total, 0, None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, file=sys.stderr, unit="case", leave=False,
                                dynamic_ncols=True)

    def step(self, label: str) -> None:
        self.count += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(1)
        else:
            print(f"[{self.count}/{self.total}] {label}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------


def run(only: list[str] | None = None, *, threads: int | None = None, repeats: int = 7,
        target: float = 0.05, gap: float = 0.005, dtype: str = "float32",
        use_torch: bool = True, sizes: list[str] | None = None, quick: bool = False,
        progress: bool = True, stat: str = "median", deepspeed: str = "auto"
        ) -> dict[str, Any]:
    """Run the benchmark and return the report (the JSON document described above).

    Examples
    --------
    SGD at 10,000 float32 elements against numpy, one short repeat:

    >>> from fastopt import bench
    >>> report = bench.run(["sgd"], sizes=["1e4"], repeats=1, target=0.001,
    ...                    use_torch=False, progress=False)
    >>> [(r["kernel"], r["case"], r["elements"]) for r in report["results"]]
    [('sgd', '1e4', 10000)]
    >>> report["results"][0]["ratios"]["vs_numpy"] > 0
    True
    """
    import fastopt
    from fastopt._config import _physical_cores, config_dict

    names = list(KERNELS) if not only else list(only)
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        raise KeyError(unknown)
    dt = np.dtype(dtype)
    torch, torch_note = _import_torch(use_torch)
    ds_adam, ds_note = None, None
    if any(n in ("adam", "adamw") for n in names):
        ds_adam, ds_note = deepspeed_cpu_adam(deepspeed, torch)
    if threads is None:
        threads = fastopt.get_num_threads()
    cfg = config_dict()
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "physical_cores": _physical_cores(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg": _loadavg(),
        },
        "versions": {
            "fastopt": fastopt.__version__,
            "numpy": np.__version__,
            "torch": getattr(torch, "__version__", None),
            "python": platform.python_version(),
            "simd_target": cfg["simd_target"],
            "openmp": cfg["openmp"],
            "deepspeed": _deepspeed_version() if ds_adam is not None else None,
        },
        "settings": {"threads": threads, "blas_threads": None, "dtype": dt.name,
                     "repeats": repeats, "target_s": target, "gap_s": gap, "quick": quick,
                     "stat": stat, "thread_policy": _thread_policy_summary(),
                     "env": {k: v for k, v in sorted(os.environ.items())
                             if k.startswith(("OMP_", "GOMP_", "KMP_", "OPENBLAS_", "MKL_"))},
                     "torch": torch is not None, "only": only or None},
        "results": [],
        "skipped": [],
    }
    if torch_note:
        report["settings"]["torch_note"] = torch_note
    if ds_note:
        report["settings"]["deepspeed_note"] = ds_note
    plan = [(name, label) for name in names
            for label in (sizes or (KERNELS[name].quick_sizes if quick else None)
                          or KERNELS[name].sizes)]
    bar = _Progress(len(plan), progress)
    ctx = Context(dt, torch, deepspeed_adam=ds_adam)
    with _environment(threads, torch) as blas:
        report["settings"]["blas_threads"] = blas
        report["settings"]["threads"] = fastopt.get_num_threads()
        for name, label in plan:
            try:
                result = _run_case(KERNELS[name], label, ctx, repeats, target, gap, stat)
            except Unavailable as exc:
                report["skipped"].append({"kernel": name, "case": label, "reason": str(exc)})
            else:
                if "skip" in result:
                    report["skipped"].append({"kernel": name, "case": label,
                                              "reason": result["skip"]})
                else:
                    report["results"].append(result)
            bar.step(f"{name} {label}")
    bar.close()
    _BUFFERS.clear()
    report["machine"]["loadavg_end"] = _loadavg()
    report["targets"] = check_targets(report)
    if torch_note:
        for r in report["results"]:
            r["notes"].append(torch_note)
    return report


def _run_case(entry: KernelEntry, label: str, ctx: Context, repeats: int, target: float,
              gap: float, stat: str = "median") -> dict[str, Any]:
    case = entry.build(label, ctx)
    bw, n_bw = _bandwidth_contenders(case.footprint_bytes, case.dtype)
    contenders = dict(case.contenders)
    contenders.update(bw)
    median, fastest, spread, failures = measure(contenders, repeats, target, gap)
    times = fastest if stat == "min" else median
    del contenders, case.contenders, bw  # free the arrays before the next case
    if "fastopt" not in times:
        return {"skip": f"fastopt call failed: {failures.get('fastopt', 'unknown error')}"}
    notes = list(case.notes)
    notes += [f"{k}: failed ({v})" for k, v in failures.items()]
    # contenders outside the table's columns ("x_<name>"): their speedups as notes
    extra = {k[2:]: _ratio(v, times["fastopt"]) for k, v in times.items()
             if k.startswith("x_")}
    notes += [f"x {k} = {v:.2f} ({k} time / fastopt time)" for k, v in extra.items()
              if v is not None]
    item = ctx.dtype.itemsize
    copy_gbs = COPY_TRAFFIC * n_bw * item / times["copy"] / 1e9
    triad_gbs = TRIAD_TRAFFIC * n_bw * item / times["triad"] / 1e9
    bandwidth = max(copy_gbs, triad_gbs)
    t = times["fastopt"]
    t_limit = case.minimal_bytes / (bandwidth * 1e9)
    lay = case.layout
    return {
        "kernel": case.kernel,
        "case": lay.label,
        "tensors": lay.tensors,
        "shape": list(lay.shape),
        "elements": lay.elements,
        "dtype": case.dtype.name,
        "minimal_bytes": case.minimal_bytes,
        "times_s": {
            "fastopt": t,
            "fastopt_class": times.get("fastopt_class"),
            "numpy": times.get("numpy"),
            "torch": times.get("torch"),
            "torch_fused": times.get("torch_fused"),
            "deepspeed": times.get("deepspeed"),
            "copy": times["copy"],
            "triad": times["triad"],
            "limit": t_limit,
        },
        "bandwidth_gbs": bandwidth,
        "copy_gbs": copy_gbs,
        "triad_gbs": triad_gbs,
        "effective_gbs": case.minimal_bytes / t / 1e9,
        "elements_per_s": lay.elements / t,
        "ratios": {
            "vs_numpy": _ratio(times.get("numpy"), t),
            "vs_torch": _ratio(times.get("torch"), t),
            "vs_torch_fused": _ratio(times.get("torch_fused"), t),
            "fraction_of_bandwidth": t_limit / t,
            "class_vs_torch_fused": _ratio(times.get("torch_fused"),
                                           times.get("fastopt_class")),
            "vs_deepspeed": _ratio(times.get("deepspeed"), t),
            **{f"vs_{k}": v for k, v in extra.items()},
        },
        "median_s": median,
        "fastest_s": fastest,
        "spread": spread,
        "noise": max(spread.values()),
        "notes": notes,
    }


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


_STAT_WORDS = {"median": "median", "min": "fastest"}


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.1f}us"
    if t < 1.0:
        return f"{t * 1e3:.2f}ms"
    return f"{t:.2f}s"


def _fmt_ratio(r: float | None, suffix: str = "x") -> str:
    return "-" if r is None else f"{r:.2f}{suffix}"


def _case_label(r: dict[str, Any]) -> str:
    if r["tensors"] > 1:
        return f"{r['tensors']}x{tuple(r['shape'])}".replace(",)", ")")
    return r["case"] if "x" not in r["case"] else str(tuple(r["shape"]))


def format_table(report: dict[str, Any]) -> str:
    """The human-readable table of a report (header, one row per case, notes).

    Examples
    --------
    >>> from fastopt import bench
    >>> report = bench.run(["sgd"], sizes=["1e4"], repeats=1, target=0.001,
    ...                    use_torch=False, progress=False)
    >>> print(bench.format_table(report))
    fastopt bench  ...
    kernel  case  fastopt  class  numpy  ...
    sgd     1e4   ...
    """
    m, v, s = report["machine"], report["versions"], report["settings"]
    load = m.get("loadavg")
    torch_text = v["torch"] or ("not importable" if s.get("torch_note", "").startswith(
        "torch not") else "off (--no-torch)")
    lines = [
        f"fastopt bench  {report['created']}",
        f"machine: {m['cpu']}, {m['physical_cores']} physical cores, "
        f"{m['logical_cpus']} logical CPUs"
        + (f", load average {load[0]:.2f} at start" if load else ""),
        f"versions: fastopt {v['fastopt']} (OpenMP {'on' if v['openmp'] else 'off'}, "
        f"{v['simd_target']}), numpy {v['numpy']}, torch {torch_text}, "
        + (f"deepspeed {v['deepspeed']}, " if v.get("deepspeed") else "")
        + f"python {v['python']}",
        f"threads: {s['threads']} (fastopt and torch); BLAS "
        + ("pinned to 1 thread (threadpoolctl)" if s["blas_threads"] == 1
           else "NOT pinned (threadpoolctl not installed)")
        + (f"; {' '.join(f'{k}={v}' for k, v in s['env'].items())}" if s.get("env") else "")
        + f"; {s['dtype']}; {_STAT_WORDS[s.get('stat', 'median')]} of {s['repeats']} "
        "interleaved repeats of "
        f"~{s['target_s'] * 1e3:.0f} ms batches",
        "columns: times per call; x = speedup of fastopt's kernel (other time / fastopt "
        "time); limit = minimal bytes / measured copy-triad bandwidth at the same "
        "footprint; of BW = limit / fastopt",
        "class = fastopt optimizer class step() (layers: the call without out=); "
        "torch = torch.optim default (single-tensor loop on CPU), fused = fused=True; "
        "deepspeed = DeepSpeedCPUAdam (when shown); "
        "layers: torch = autograd forward+backward, fused = aten kernels directly; "
        "noise = largest (slowest - fastest repeat) / median among the row's contenders",
    ]
    busy = load and m.get("physical_cores") and load[0] > 0.75 * m["physical_cores"]
    end = m.get("loadavg_end")
    if busy or (end and m.get("physical_cores") and end[0] > 0.75 * m["physical_cores"]):
        lines.append(f"WARNING: other processes were using the CPUs (load average "
                     f"{load[0]:.2f} at start, {end[0] if end else float('nan'):.2f} at end, "
                     f"{m['physical_cores']} cores): times are noisy, compare ratios within "
                     "this run")
        if s["threads"] > 1:
            lines.append(f"  the bench runs fastopt at an explicit {s['threads']} threads, so "
                         "each parallel call may wait for a preempted thread (fastopt's "
                         "default team shrinks under load; explicit counts do not): compare "
                         "with --threads 1")
    lines.append("")
    # The DeepSpeedCPUAdam column only when some row has it (it is optional and rare).
    ds = any(r["times_s"].get("deepspeed") is not None for r in report["results"])
    header = ["kernel", "case", "fastopt", "class", "numpy", "torch", "fused"] + \
        (["deepspeed"] if ds else []) + ["limit", "x numpy", "x torch", "x fused"] + \
        (["x ds"] if ds else []) + ["GB/s", "BW GB/s", "of BW", "noise"]
    rows = [header]
    for r in report["results"]:
        t, q = r["times_s"], r["ratios"]
        rows.append([
            r["kernel"], _case_label(r), _fmt_time(t["fastopt"]), _fmt_time(t["fastopt_class"]),
            _fmt_time(t["numpy"]), _fmt_time(t["torch"]), _fmt_time(t["torch_fused"])]
            + ([_fmt_time(t.get("deepspeed"))] if ds else [])
            + [_fmt_time(t["limit"]), _fmt_ratio(q["vs_numpy"]), _fmt_ratio(q["vs_torch"]),
               _fmt_ratio(q["vs_torch_fused"])]
            + ([_fmt_ratio(q.get("vs_deepspeed"))] if ds else [])
            + [f"{r['effective_gbs']:.1f}", f"{r['bandwidth_gbs']:.1f}",
               _fmt_ratio(q["fraction_of_bandwidth"], ""), f"{100 * r['noise']:.0f}%"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = []
    for r in report["results"]:
        for note in r["notes"]:
            if s.get("torch_note") and note == s["torch_note"]:
                continue
            notes.append(f"  {r['kernel']} {r['case']}: {note}")
    if s.get("torch_note"):
        notes.insert(0, f"  {s['torch_note']}: torch columns are empty")
    if s.get("deepspeed_note"):
        notes.insert(0, f"  DeepSpeedCPUAdam column skipped: {s['deepspeed_note']}")
    for sk in report["skipped"]:
        notes.append(f"  skipped {sk['kernel']} {sk['case']}: {sk['reason']}")
    if report.get("targets"):
        lines += ["", "targets:"]
        for t in report["targets"]:
            mark = {True: "met   ", False: "MISSED", None: "n/a   "}[t["met"]]
            value = "-" if t["value"] is None else f"{t['value']:.2f}"
            where = f" [{t['case']}]" if "*" in t["target"] else ""
            lines.append(f"  {mark} {t['target']}{where}: {value}")
    if notes:
        lines += ["", "notes:"] + _dedupe(notes)
    return "\n".join(lines)


def _dedupe(notes: list[str]) -> list[str]:
    seen, out = set(), []
    for n in notes:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", choices=["kernels", "loop"], default="kernels",
                        help="kernels (default): the per-kernel table; loop: a numpy MLP "
                        "training loop with numpy's and fastopt's Adam at default settings, "
                        "quiet and with one busy background process (see fastopt.bench_loop)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and shorter batches (about 30 s in all)")
    parser.add_argument("--only", metavar="NAMES",
                        help="comma-separated kernels: " + ", ".join(KERNELS))
    parser.add_argument("--threads", type=int, metavar="N",
                        help="threads for fastopt and torch (default: fastopt's setting)")
    parser.add_argument("--repeats", type=int, metavar="R",
                        help="interleaved repeats per case (default 7, --quick 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--no-torch", action="store_true", help="do not import torch")
    parser.add_argument("--stat", choices=["median", "min"], default="median",
                        help="statistic of the repeats behind times and ratios: median "
                        "(default) or min (the fastest repeat; steadier on a busy machine)")
    parser.add_argument("--target", type=float, metavar="SECONDS",
                        help="seconds per timed batch (default 0.05, --quick 0.01)")
    parser.add_argument("--deepspeed", choices=["auto", "build", "off"], default="auto",
                        help="DeepSpeedCPUAdam column for adam/adamw when deepspeed is "
                        "installed: auto = when its op is already compiled, build = compile "
                        "it first (ninja, minutes, once), off")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress display on stderr")
    # Hidden: override every kernel's sizes (flat element counts or AxB layouts); tests.
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--gap", type=float, help=argparse.SUPPRESS)


def command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.scenario == "loop":
        return _loop_command(args, parser)
    only = None
    if args.only is not None:
        only = [n.strip().lower() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in KERNELS]
        if unknown or not only:
            parser.error(f"--only: unknown kernel name(s) {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(KERNELS)}" if unknown else
                         "--only: give at least one kernel name")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads: expected a positive thread count, got {args.threads}")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats: expected a positive count, got {args.repeats}")
    sizes = None
    if args.sizes:
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
        for s in sizes:
            try:
                parse_optimizer_size(s)
            except ValueError:
                parser.error(f"--sizes: cannot read size {s!r}")
    repeats = args.repeats or (3 if args.quick else 7)
    target = args.target or (0.01 if args.quick else 0.05)
    gap = args.gap if args.gap is not None else (0.002 if args.quick else 0.005)
    report = run(only, threads=args.threads, repeats=repeats, target=target, gap=gap,
                 dtype=args.dtype, use_torch=not args.no_torch, sizes=sizes,
                 quick=args.quick, progress=not args.no_progress, stat=args.stat,
                 deepspeed=args.deepspeed)
    print(format_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


def _loop_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from fastopt import bench_loop

    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats: expected a positive count, got {args.repeats}")
    for name in ("only", "threads", "sizes"):
        if getattr(args, name) is not None:
            parser.error(f"--{name}: not used by --scenario loop (it measures the defaults)")
    # Many short repeats: their paired ratios share the machine's mode (bench_loop); the
    # time bound keeps a machine where every step is slow within about a minute.
    repeats = args.repeats or (9 if args.quick else 31)
    steps = 4 if args.quick else 5
    report = bench_loop.run_loop(repeats=repeats, steps=steps,
                                 max_seconds=4.0 if args.quick else 20.0)
    print(bench_loop.format_loop(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fastopt bench``: parse `argv` (default ``sys.argv[1:]``), run, print the
    table; returns the exit status.

    Examples
    --------
    >>> from fastopt import bench
    >>> bench.main(["--only", "sgd", "--sizes", "1e4", "--repeats", "1", "--target", "0.001",
    ...             "--no-torch", "--no-progress"])
    fastopt bench  ...
    sgd     1e4   ...
    0
    """
    parser = argparse.ArgumentParser(prog="python -m fastopt bench",
                                     description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return command(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
