"""asv benchmarks of optimizer state in fewer bits (issue 14): ``fastopt.Adam``/``SGD`` with
``state_dtype`` None (float32), "bfloat16" and "int8", float32 params, the standalone
blockwise quantization, and bfloat16 params (``Bf16ParamStep``). ``time_*`` gate
regressions; ``python -m fastopt bench --only adam_int8,adam_bf16,adam_bf16params`` gives
the ratios against float32 state (and params), bitsandbytes and torchao.
"""

from __future__ import annotations

import numpy as np

from .bench_optim import elements, make_arrays, set_threads

STATE_DTYPES = ["float32", "bfloat16", "int8"]
SIZES = ["1e5", "1e6", "1.6e7", "500x2000"]
THREADS = [1, 2]


class LowPrecisionStep:
    """``opt.step(grads)`` with the state stored as `state_dtype` (after a first step)."""

    params = (["Adam", "SGD"], STATE_DTYPES, SIZES, THREADS)
    param_names = ["optimizer", "state_dtype", "size", "threads"]
    timeout = 300

    def setup(self, optimizer, state_dtype, size, threads):
        set_threads(threads)
        import fastopt

        if not hasattr(fastopt.optim, "storage"):
            raise NotImplementedError("state_dtype is not in this commit")
        self.params, self.grads = make_arrays(size, "float32", 2)
        options = {"lr": 1e-3} if optimizer == "Adam" else {"lr": 1e-2, "momentum": 0.9}
        sd = None if state_dtype == "float32" else state_dtype
        self.opt = getattr(fastopt, optimizer)(self.params, state_dtype=sd, **options)
        self.opt.step(self.grads)

    def time_step(self, optimizer, state_dtype, size, threads):
        self.opt.step(self.grads)

    def track_state_bytes_per_element(self, optimizer, state_dtype, size, threads):
        return self.opt.state_nbytes / elements(size)

    track_state_bytes_per_element.unit = "bytes"


class Quantize:
    """fastopt.optim.storage.quantize_blockwise / dequantize_blockwise of 1e6 elements."""

    params = (THREADS,)
    param_names = ["threads"]

    def setup(self, threads):
        set_threads(threads)
        from fastopt.optim import storage

        self.storage = storage
        self.x = np.random.default_rng(0).standard_normal(10**6).astype(np.float32)
        self.codes, self.absmax = storage.quantize_blockwise(self.x)

    def time_quantize(self, threads):
        self.storage.quantize_blockwise(self.x)

    def time_dequantize(self, threads):
        self.storage.dequantize_blockwise(self.codes, self.absmax)


class Bf16ParamStep:
    """``opt.step(grads)`` over bfloat16 params (ml_dtypes) with `grads` of the given dtype
    and float32 state, rounded back stochastically, to nearest, or to nearest with Kahan
    compensation (after a first step)."""

    params = (["Adam", "SGD"], ["bfloat16", "float32"], ["stochastic", "nearest", "kahan"],
              ["1e6", "1.6e7"], THREADS)
    param_names = ["optimizer", "grad_dtype", "param_rounding", "size", "threads"]
    timeout = 300

    def setup(self, optimizer, grad_dtype, param_rounding, size, threads):
        set_threads(threads)
        try:
            import ml_dtypes
        except ImportError as exc:
            raise NotImplementedError("bfloat16 params need ml_dtypes") from exc
        import fastopt

        if not hasattr(fastopt.optim.lowprec, "PARAM_ROUNDINGS"):
            raise NotImplementedError("bfloat16 params are not in this commit")
        params, grads = make_arrays(size, "float32", 2)
        self.params = [p.astype(ml_dtypes.bfloat16) for p in params]
        gdt = ml_dtypes.bfloat16 if grad_dtype == "bfloat16" else np.float32
        self.grads = [g.astype(gdt) for g in grads]
        options = {"lr": 1e-3} if optimizer == "Adam" else {"lr": 1e-2, "momentum": 0.9}
        self.opt = getattr(fastopt, optimizer)(self.params, param_rounding=param_rounding,
                                               **options)
        self.opt.step(self.grads)

    def time_step(self, optimizer, grad_dtype, param_rounding, size, threads):
        self.opt.step(self.grads)
