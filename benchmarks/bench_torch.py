"""asv benchmarks of fastopt.torch (issue 15): ``step()`` of the torch.optim drop-ins on CPU
tensors, next to torch.optim's fused CPU Adam on the same layout. Skipped without torch.

``time_*`` are the regression gate (lower is better). The gradients stay the same tensors
between steps (their numpy views are reused); ``time_step_new_grads`` assigns a new grad
tensor per parameter first, as after ``zero_grad()`` (set_to_none=True) and a backward pass.
Ratios for the issue's targets: ``python benchmarks/torch_dropin.py``.
"""

from __future__ import annotations

from .common import layout, set_threads

SIZES = ["1e5", "1e6", "1e7", "500x2000", "10x1000"]
THREADS = [1, 2]
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "NAdam", "Lion"]
OPTIONS = {"SGD": dict(lr=1e-3, momentum=0.9), "Adam": dict(lr=1e-3),
           "AdamW": dict(lr=1e-3, weight_decay=1e-2), "Adagrad": dict(lr=1e-2),
           "RMSprop": dict(lr=1e-3), "Adadelta": dict(lr=1.0), "NAdam": dict(lr=2e-3),
           "Lion": dict(lr=1e-4, weight_decay=1e-2)}


def _torch():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    return torch


def _model(torch, size, seed=0):
    count, shape = layout(size)
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.rand(shape, generator=g) - 0.5) for _ in range(count)]
    for p in params:
        p.grad = torch.rand(shape, generator=g) - 0.5
    return params


class TorchDropinStep:
    """``fastopt.torch.<Optimizer>(params, **options).step()`` after a first step."""

    params = (OPTIMIZERS, SIZES, THREADS)
    param_names = ["optimizer", "size", "threads"]
    timeout = 180

    def setup(self, optimizer, size, threads):
        torch = _torch()
        set_threads(threads)
        torch.set_num_threads(threads)
        import fastopt.torch as ft

        self.model = _model(torch, size)
        self.opt = getattr(ft, optimizer)(self.model, **OPTIONS[optimizer])
        self.opt.step()
        self.grads = [[torch.rand(p.shape) - 0.5 for p in self.model] for _ in range(2)]
        self.k = 0

    def time_step(self, optimizer, size, threads):
        self.opt.step()

    def time_step_new_grads(self, optimizer, size, threads):
        self.k ^= 1
        for p, g in zip(self.model, self.grads[self.k]):
            p.grad = g
        self.opt.step()


class TorchFusedAdamReference:
    """torch.optim.Adam(fused=True) on the same layouts, for reading next to
    TorchDropinStep's Adam rows."""

    params = (SIZES, THREADS)
    param_names = ["size", "threads"]
    timeout = 180

    def setup(self, size, threads):
        torch = _torch()
        set_threads(threads)
        torch.set_num_threads(threads)
        self.opt = torch.optim.Adam(_model(torch, size), lr=1e-3, fused=True)
        self.opt.step()

    def time_step(self, size, threads):
        self.opt.step()
