"""Shared helpers for fastopt's asv suites: BLAS pinning, threads, sizes, layouts, bytes.

Conventions every ``bench_*.py`` follows:

- Parameters are ``size`` (one of ``SIZES``: a flat element count such as ``"1e6"``, or a
  many-tensor layout ``"500x2000"`` = 500 tensors of 2,000 elements, ``"2000x64x64"`` =
  2,000 tensors of shape (64, 64)), ``dtype`` (``DTYPES``) and ``threads`` (``THREADS``).
- ``time_*`` benchmarks are the regression gate (lower is better). ``track_*`` benchmarks
  return a throughput (elements/s, effective GB/s from ``MINIMAL_BYTES``) for reading
  only: asv treats every number as lower-is-better, so a throughput drop would be
  reported as an improvement. Never gate on ``track_*``.
- BLAS pools are pinned to one thread for the whole benchmark process (below), because
  an OpenBLAS pool and fastopt's OpenMP pool oversubscribe a small machine. fastopt's
  thread count is set per benchmark with ``set_threads``; a thread count the machine
  cannot provide skips that combination (``NotImplementedError`` in setup).
- Data is fixed-seed and must not change: append new helpers, do not edit the old ones
  (results are compared across commits).
"""

from __future__ import annotations

import math
import time

import numpy as np

try:  # pin BLAS for the whole process; keep the limiter alive
    from threadpoolctl import threadpool_limits

    BLAS_LIMITS = threadpool_limits(limits=1, user_api="blas")
    BLAS_PINNED = True
except ImportError:  # pragma: no cover - threadpoolctl is a benchmark dependency
    BLAS_LIMITS = None
    BLAS_PINNED = False

SIZES = ["1e3", "1e4", "1e5", "1e6", "1e7", "500x2000", "2000x64x64"]
FLAT_SIZES = ["1e3", "1e4", "1e5", "1e6", "1e7"]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]

#: Bytes per element an operation must move, in itemsizes: each input read once, each
#: output written once (state arrays both). Same table as fastopt.bench.MINIMAL_BYTES
#: (a test keeps them equal); kept here so the suite also runs against old commits.
MINIMAL_BYTES = {
    "copy": 2,
    "triad": 3,
    "sgd": 5,
    "adam": 7,
    "adamw": 7,
    "adagrad": 5,
    "rmsprop": 5,
    "adadelta": 7,
    "nadam": 7,
    "lion": 5,
    "dropout": 4,
    "batchnorm": 5,
    "lbfgs": 0,
    "adam_bf16": 5,
    "adam_int8": 4,
    "bfgs": 0,
    "adam_bf16params": 0,
}


def layout(size: str) -> tuple[int, tuple[int, ...]]:
    """(number of tensors, shape of each) for a size label."""
    parts = size.lower().split("x")
    if len(parts) == 1:
        return 1, (int(float(parts[0])),)
    return int(parts[0]), tuple(int(p) for p in parts[1:])


def elements(size: str) -> int:
    count, shape = layout(size)
    return count * math.prod(shape)


def make_arrays(size: str, dtype: str, roles: int, seed: int = 0,
                low: float = -1.0, high: float = 1.0) -> list[list[np.ndarray]]:
    """`roles` lists of arrays for the layout (uniform in [low, high), fixed seed)."""
    rng = np.random.default_rng(seed)
    count, shape = layout(size)
    dt = np.dtype(dtype)
    span = dt.type(high - low)
    return [[rng.random(shape, dtype=dt) * span + dt.type(low) for _ in range(count)]
            for _ in range(roles)]


def single_or_list(arrays: list[np.ndarray]):
    """The array itself for a one-tensor layout, else the list (one multi-tensor call)."""
    return arrays[0] if len(arrays) == 1 else arrays


def minimal_bytes(kernel: str, size: str, dtype: str) -> int:
    return MINIMAL_BYTES[kernel] * elements(size) * np.dtype(dtype).itemsize


def set_threads(n: int) -> None:
    """Make fastopt use `n` threads; NotImplementedError (asv: skip) if it cannot."""
    import fastopt

    available = fastopt._kernels._max_threads() if hasattr(fastopt, "_kernels") else 1
    if n > max(1, available):
        raise NotImplementedError(f"{n} threads requested, {available} available")
    fastopt.set_num_threads(n)


def per_call_seconds(call, budget: float = 0.05, min_calls: int = 3) -> float:
    """Best per-call time of `call` over batches filling about `budget` seconds (for
    track_* throughput numbers; time_* benchmarks use asv's own timer)."""
    call()
    best = math.inf
    spent, calls = 0.0, 0
    batch = 1
    while spent < budget or calls < min_calls:
        t0 = time.perf_counter()
        for _ in range(batch):
            call()
        dt = time.perf_counter() - t0
        best = min(best, dt / batch)
        spent += dt
        calls += batch
        if dt < 1e-3:
            batch *= 4
    return best


class Benchmark:
    """Base class: the size x dtype x threads grid and a 120 s timeout."""

    params = (SIZES, DTYPES, THREADS)
    param_names = ["size", "dtype", "threads"]
    timeout = 120
