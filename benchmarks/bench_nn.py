"""asv benchmarks for fastopt.nn: dropout and batch norm, forward and backward.

Parameters: dtype, shape, threads. ``time_*`` are the gated timings (asv treats every number
as lower-is-better); ``track_*_gbps`` report the minimal memory traffic of the pass (each
input read once, each output written once, plus dropout's n/8 bytes of mask bits) per
second, for reading, not gating. BLAS pools are pinned to one thread when threadpoolctl is
installed, so they do not fight fastopt's OpenMP threads.
"""

import time

import numpy as np

import fastopt
from fastopt import nn

try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
except ImportError:  # pragma: no cover
    pass


def _best_seconds(func, repeat=15):
    func()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


class Dropout:
    params = (["float32", "float64"], [(1024, 4096), (64, 1024)], [1, 2])
    param_names = ["dtype", "shape", "threads"]

    def setup(self, dtype, shape, threads):
        fastopt.set_num_threads(threads)
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal(shape).astype(dtype)
        self.dy = rng.standard_normal(shape).astype(dtype)
        self.y = np.empty_like(self.x)
        self.dx = np.empty_like(self.x)
        _, self.mask = nn.dropout(self.x, 0.5, seed=1, out=self.y)
        _, self.seed_mask = nn.dropout(self.x, 0.5, seed=1, out=self.y, pack=False)

    def teardown(self, dtype, shape, threads):
        fastopt.set_num_threads(None)

    def time_forward(self, dtype, shape, threads):
        nn.dropout(self.x, 0.5, seed=1, out=self.y)

    def time_backward_packed_bits(self, dtype, shape, threads):
        nn.dropout_backward(self.dy, self.mask, out=self.dx)

    def time_backward_regenerated(self, dtype, shape, threads):
        nn.dropout_backward(self.dy, self.seed_mask, out=self.dx)

    def time_forward_backward(self, dtype, shape, threads):
        _, mask = nn.dropout(self.x, 0.5, seed=1, out=self.y)
        nn.dropout_backward(self.dy, mask, out=self.dx)

    def track_forward_backward_gbps(self, dtype, shape, threads):
        seconds = _best_seconds(lambda: self.time_forward_backward(dtype, shape, threads))
        return (4 * self.x.nbytes + 2 * (self.x.size // 8)) / seconds / 1e9

    track_forward_backward_gbps.unit = "GB/s"


class BatchNorm:
    params = (["float32", "float64"], [(256, 4096), (32, 64, 32, 32), (4096, 64)], [1, 2])
    param_names = ["dtype", "shape", "threads"]

    def setup(self, dtype, shape, threads):
        fastopt.set_num_threads(threads)
        rng = np.random.default_rng(0)
        c = shape[1]
        self.x = rng.standard_normal(shape).astype(dtype)
        self.dy = rng.standard_normal(shape).astype(dtype)
        self.y, self.dx = np.empty_like(self.x), np.empty_like(self.x)
        self.gamma, self.beta = np.ones(c, dtype), np.zeros(c, dtype)
        self.rm, self.rv = np.zeros(c, dtype), np.ones(c, dtype)
        self.dg, self.db = np.empty(c, dtype), np.empty(c, dtype)
        _, self.cache = self._forward(True)

    def teardown(self, dtype, shape, threads):
        fastopt.set_num_threads(None)

    def _forward(self, training):
        return nn.batch_norm(self.x, self.gamma, self.beta, self.rm, self.rv, training,
                             out=self.y)

    def time_forward_train(self, dtype, shape, threads):
        self._forward(True)

    def time_forward_eval(self, dtype, shape, threads):
        self._forward(False)

    def time_backward_train(self, dtype, shape, threads):
        nn.batch_norm_backward(self.dy, self.cache, out=(self.dx, self.dg, self.db))

    def time_forward_backward_train(self, dtype, shape, threads):
        _, cache = self._forward(True)
        nn.batch_norm_backward(self.dy, cache, out=(self.dx, self.dg, self.db))

    def track_forward_backward_train_gbps(self, dtype, shape, threads):
        seconds = _best_seconds(lambda: self.time_forward_backward_train(dtype, shape, threads))
        return 5 * self.x.nbytes / seconds / 1e9

    track_forward_backward_train_gbps.unit = "GB/s"
