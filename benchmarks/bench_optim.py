"""asv benchmarks of the first-order optimizers (issue 3).

Grid: optimizer x size x dtype x threads. ``size`` is a flat element count ("1e3", "1e5",
"1e7") or a many-tensor layout ("500x2000": 500 tensors of 2,000 elements; "2000x64x64":
2,000 tensors of shape (64, 64)), updated by ONE multi-tensor C call per step.

- ``time_*`` methods are the regression gate (lower is better).
- ``track_*`` methods return throughput for reading only (elements/s, and GB/s computed
  from the minimal bytes an update must move: each input read once, each output and state
  written once). asv treats every number as lower-is-better, so never gate on them.

BLAS pools are pinned to one thread for the process (threadpoolctl); fastopt's thread count
is set per benchmark; a count the machine lacks skips the combination. torch rows are
skipped when torch is not installed. The arrays are this file's own (values in [-0.5, 0.5),
unlike common.make_arrays, so its results stay comparable); the throughput timer is
common.py's. Ratios against torch, a plain C loop and numpy for the issue's targets:
``python benchmarks/optim_vs_torch.py``.
"""

from __future__ import annotations

import math

import numpy as np

from .common import per_call_seconds

try:
    from threadpoolctl import threadpool_limits

    _BLAS = threadpool_limits(limits=1, user_api="blas")
except ImportError:  # pragma: no cover
    _BLAS = None

SIZES = ["1e3", "1e5", "1e7", "500x2000", "2000x64x64"]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "NAdam", "Lion"]

#: Options of each benchmarked optimizer, and the arrays its update must move per element
#: (param, grad, state: reads + writes).
OPTIONS = {
    "SGD": (dict(lr=1e-3, momentum=0.9), 5),
    "Adam": (dict(lr=1e-3), 7),
    "AdamW": (dict(lr=1e-3, weight_decay=1e-2), 7),
    "Adagrad": (dict(lr=1e-2), 5),
    "RMSprop": (dict(lr=1e-3), 5),
    "Adadelta": (dict(lr=1.0), 7),
    "NAdam": (dict(lr=2e-3), 7),
    "Lion": (dict(lr=1e-4), 5),
}


def layout(size):
    parts = size.lower().split("x")
    if len(parts) == 1:
        return 1, (int(float(parts[0])),)
    return int(parts[0]), tuple(int(p) for p in parts[1:])


def elements(size):
    count, shape = layout(size)
    return count * math.prod(shape)


def make_arrays(size, dtype, roles, seed=0):
    rng = np.random.default_rng(seed)
    count, shape = layout(size)
    dt = np.dtype(dtype)
    return [[rng.random(shape, dtype=dt) - dt.type(0.5) for _ in range(count)]
            for _ in range(roles)]


def set_threads(n):
    import fastopt

    if n > max(1, fastopt._kernels._max_threads()):
        raise NotImplementedError(f"{n} threads requested, fewer available")
    fastopt.set_num_threads(n)


class OptimizerStep:
    """``fastopt.<Optimizer>(params, **options).step(grads)`` after a first step (state
    allocated): the Python path plus one C call per dtype."""

    params = (OPTIMIZERS, SIZES, DTYPES, THREADS)
    param_names = ["optimizer", "size", "dtype", "threads"]
    timeout = 180

    def setup(self, optimizer, size, dtype, threads):
        set_threads(threads)
        import fastopt

        options, self.arrays = OPTIONS[optimizer]
        if not hasattr(fastopt, optimizer):
            raise NotImplementedError(f"fastopt.{optimizer} is not in this commit")
        self.params, self.grads = make_arrays(size, dtype, 2)
        self.opt = getattr(fastopt, optimizer)(self.params, **options)
        self.opt.step(self.grads)

    def time_step(self, optimizer, size, dtype, threads):
        self.opt.step(self.grads)

    def track_elements_per_s(self, optimizer, size, dtype, threads):
        return elements(size) / per_call_seconds(lambda: self.opt.step(self.grads))

    track_elements_per_s.unit = "elements/s"

    def track_gbs(self, optimizer, size, dtype, threads):
        nbytes = self.arrays * elements(size) * np.dtype(dtype).itemsize
        return nbytes / per_call_seconds(lambda: self.opt.step(self.grads)) / 1e9

    track_gbs.unit = "GB/s (minimal bytes)"


class AdamKernel:
    """``fastopt.kernels.adam_step(p, g, m, v, step=..., lr=...)``: the functional boundary
    (validation + pointer tables + C) without the optimizer object."""

    params = (SIZES, DTYPES, THREADS)
    param_names = ["size", "dtype", "threads"]
    timeout = 120

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt.kernels import adam_step

        self.adam_step = adam_step
        p, g, m, v = make_arrays(size, dtype, 4)
        v = [np.abs(a) for a in v]
        one = len(p) == 1
        self.args = tuple(a[0] if one else a for a in (p, g, m, v))

    def step(self):
        self.adam_step(*self.args, step=10, lr=1e-3)

    def time_step(self, size, dtype, threads):
        self.step()

    def track_gbs(self, size, dtype, threads):
        return 7 * elements(size) * np.dtype(dtype).itemsize / per_call_seconds(self.step) / 1e9

    track_gbs.unit = "GB/s (minimal bytes)"


class FamilyKernel:
    """``fastopt.kernels.<family>_step`` for every optimizer family, each with the state
    arrays its default options use (from fastopt.optim.families): the functional boundary
    and C, without an optimizer object."""

    params = (["sgd", "adam", "adagrad", "rmsprop", "adadelta", "nadam", "lion"],
              ["1e5", "1e7", "500x2000"], ["float32"], THREADS)
    param_names = ["family", "size", "dtype", "threads"]
    timeout = 120

    def setup(self, family, size, dtype, threads):
        set_threads(threads)
        try:
            from fastopt.optim.families import FAMILIES
        except ImportError:
            raise NotImplementedError("no table of families in this commit") from None
        if family not in FAMILIES:
            raise NotImplementedError(f"no {family} family in this commit")
        import fastopt

        f = FAMILIES[family]
        hypers = {"lr": 1e-3, "momentum": 0.9} if family == "sgd" else {"lr": 1e-3}
        states = f.used_states(hypers)
        arrays = make_arrays(size, dtype, 2 + len(states))
        one = len(arrays[0]) == 1
        args = [a[0] if one else a for a in arrays]
        for k, s in enumerate(states):
            if s.values == "nonnegative":   # element-wise, keeping a list of tensors a list
                a = args[2 + k]
                args[2 + k] = [np.abs(x) for x in a] if isinstance(a, list) else np.abs(a)
        kwargs = dict(hypers)
        if f.takes_step:
            kwargs["step"] = 10
        kwargs.update({s.name: s.initial * 0.5 for s in f.real_scalars})
        positional = [a for a, s in zip(args[2:], states) if not s.keyword]
        kwargs.update({s.arg: a for a, s in zip(args[2:], states) if s.keyword})
        kernel = getattr(fastopt.kernels, f.kernel)
        self.step = lambda: kernel(args[0], args[1], *positional, **kwargs)
        self.step()

    def time_step(self, family, size, dtype, threads):
        self.step()


class SkipIfNonfinite:
    """``Adam.step(grads, skip_if_nonfinite=True)``: the all-finite pre-scan's cost, next
    to ``time_scan`` (``kernels.all_finite`` alone)."""

    params = (SIZES, ["float32"], THREADS)
    param_names = ["size", "dtype", "threads"]
    timeout = 120

    def setup(self, size, dtype, threads):
        set_threads(threads)
        import fastopt

        self.all_finite = fastopt.kernels.all_finite
        self.params, self.grads = make_arrays(size, dtype, 2)
        self.opt = fastopt.Adam(self.params, lr=1e-3)
        self.opt.step(self.grads)

    def time_step_checked(self, size, dtype, threads):
        self.opt.step(self.grads, skip_if_nonfinite=True)

    def time_scan(self, size, dtype, threads):
        self.all_finite(self.grads)


class SmallTensor:
    """One tensor of 10 elements: the fixed cost of a step (targets: adam_step <= 3 us,
    Adam.step <= 8 us on the 2-core reference machine)."""

    params = (["float32", "float64"],)
    param_names = ["dtype"]

    def setup(self, dtype):
        import fastopt

        self.fastopt = fastopt
        self.p = np.zeros(10, dtype)
        self.g = np.ones(10, dtype)
        self.m, self.v = np.zeros(10, dtype), np.zeros(10, dtype)
        self.opt = fastopt.Adam([self.p.copy()], lr=1e-3)
        self.opt.step([self.g])

    def time_adam_step_kernel(self, dtype):
        self.fastopt.kernels.adam_step(self.p, self.g, self.m, self.v, step=5, lr=1e-3)

    def time_adam_class_step(self, dtype):
        self.opt.step([self.g])


class TorchReference:
    """torch.optim with the same options (fused=True where torch has a fused CPU kernel,
    else its default), for reading next to OptimizerStep. Skipped without torch."""

    params = (OPTIMIZERS, SIZES, ["float32"], THREADS)
    param_names = ["optimizer", "size", "dtype", "threads"]
    timeout = 180

    def setup(self, optimizer, size, dtype, threads):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        set_threads(threads)
        torch.set_num_threads(threads)
        options, _ = OPTIONS[optimizer]
        if not hasattr(torch.optim, optimizer):
            raise NotImplementedError(f"torch.optim has no {optimizer}")
        params, grads = make_arrays(size, dtype, 2)
        tensors = [torch.from_numpy(p).requires_grad_() for p in params]
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g)
        extra = dict(fused=True) if optimizer in ("SGD", "Adam", "AdamW", "Adagrad") else {}
        self.opt = getattr(torch.optim, optimizer)(tensors, **options, **extra)
        self.opt.step()

    def time_step(self, optimizer, size, dtype, threads):
        self.opt.step()


class DeepSpeedReference:
    """DeepSpeed's ``DeepSpeedCPUAdam`` (hand-written AVX-512/AVX2 CPU Adam) with the same
    options, for reading next to AdamKernel/OptimizerStep. Optional, never a dependency:
    skipped unless deepspeed is installed and its C++ op already compiled (its first use
    compiles it with ninja, which takes minutes: ``python -m fastopt bench --only adam
    --deepspeed build`` does that once)."""

    params = (["Adam", "AdamW"], SIZES, ["float32"], THREADS)
    param_names = ["optimizer", "size", "dtype", "threads"]
    timeout = 180

    def setup(self, optimizer, size, dtype, threads):
        try:
            import torch

            from fastopt.bench import deepspeed_cpu_adam
        except ImportError as exc:
            raise NotImplementedError(f"needs torch and a fastopt with the column ({exc})") from exc
        cls, note = deepspeed_cpu_adam("auto", torch)
        if cls is None:
            raise NotImplementedError(note)
        set_threads(threads)
        torch.set_num_threads(threads)  # DeepSpeed's OpenMP loop follows torch's count
        options, _ = OPTIONS[optimizer]
        params, grads = make_arrays(size, dtype, 2)
        tensors = [torch.from_numpy(p) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g)
        self.opt = cls(tensors, lr=options["lr"], weight_decay=options.get("weight_decay", 0.0),
                       adamw_mode=optimizer == "AdamW")
        self.opt.step()

    def time_step(self, optimizer, size, dtype, threads):
        self.opt.step()
