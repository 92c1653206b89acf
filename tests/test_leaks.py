"""No leaks: many tiny steps, kernel calls (valid and raising) and minimize calls keep the
resident set size flat (< 20 MB growth) and leave no Python objects behind (tracemalloc).

Marked slow (they run in CI). RSS comes from /proc/self/statm (Linux); elsewhere from
getrusage's peak, which can only grow, so the bound is then looser but still meaningful.
"""

from __future__ import annotations

import gc
import os
import resource
import tracemalloc

import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt_testing.fuzz_specs import OPTIMIZERS

pytestmark = pytest.mark.slow
OPTIMIZER = {s.name: s for s in OPTIMIZERS}
MB = 1024 * 1024
STEPS = 200_000  # tiny steps per optimizer class
# The issue asks for < 20 MB; a leaked 32-byte pointer table per call (checked by hand:
# Batch.__dealloc__ not freeing ptrs) grows RSS by 20.7 MB over 200,000 SGD steps and by
# 82 MB in a loop of list-kernel calls, so the bound is tighter. Clean runs measure 0.0 MB.
RSS_LIMIT = 8 * MB
PY_LIMIT = 256 * 1024  # bytes of Python objects still alive after the loop


def rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measure(loop, n, warmup, traced=5_000):
    """(RSS growth over n iterations after `warmup` ones, Python bytes left behind by
    `traced` more iterations under tracemalloc)."""
    loop(warmup)
    gc.collect()
    before = rss()
    loop(n)
    gc.collect()
    grown = rss() - before
    tracemalloc.start()
    try:
        loop(max(1, traced // 5))  # warm up tracemalloc's own bookkeeping
        gc.collect()
        snap = tracemalloc.take_snapshot()
        loop(traced)
        gc.collect()
        left = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(snap, "filename")
                   if s.size_diff > 0)
    finally:
        tracemalloc.stop()
    return grown, left


@pytest.mark.parametrize("name", list(OPTIMIZER))
def test_tiny_steps_do_not_leak(name):
    spec = OPTIMIZER[name]
    params = [np.zeros(10, np.float32), np.zeros(10)]
    grads = [np.full(10, 1e-3, np.float32), np.full(10, 1e-3)]
    opt = spec.cls(params, **spec.example)

    def loop(n):
        for k in range(n):
            opt.step(grads)
            if k % 1000 == 0:
                opt.step([grads[0], None])
                opt.state_dict()

    steps = STEPS
    grown, left = _measure(loop, steps, 2_000)
    print(f"{name}: {steps} steps, RSS +{grown / MB:.2f} MB, Python +{left} B")
    assert grown < RSS_LIMIT, f"{name}: RSS grew {grown / MB:.1f} MB over {steps} steps"
    assert left < PY_LIMIT, f"{name}: {left} bytes of Python objects left behind"


def test_raising_calls_do_not_leak():
    """The error paths free what the boundary allocated (pointer tables, copies)."""
    p = np.zeros(10)
    g_strided = np.ones(20)[::2]
    bad = [dict(g=np.ones(11)), dict(g=np.ones(10, np.float32)), dict(lr=-1.0),
           dict(g=p), dict(lr=10**400), dict(buf=np.ones(10)[::2], momentum=0.9)]
    opt = fastopt.SGD([p, np.zeros(3)], lr=0.1, momentum=0.9)

    def loop(n):
        for k in range(n):
            kw = dict(bad[k % len(bad)])
            g = kw.pop("g", g_strided)
            try:
                fastopt.kernels.sgd_step([p, np.zeros(3)], [g, np.ones(3)],
                                         kw.pop("buf", None), **{"lr": 0.1, **kw})
            except (TypeError, ValueError):
                pass
            try:
                opt.step([np.ones(10), np.ones(4)])
            except ValueError:
                pass

    grown, left = _measure(loop, 50_000, 1_000)
    print(f"raising calls: RSS +{grown / MB:.2f} MB, Python +{left} B")
    assert grown < RSS_LIMIT and left < PY_LIMIT


def test_other_kernels_do_not_leak():
    """List kernels, nn forward/backward (masks, caches) and the linalg kernels."""
    ps = [np.zeros(n, np.float32) for n in (3, 0, 10, 1)] + [np.zeros(5)]
    gs = [np.ones_like(p)[::-1] for p in ps]  # reversed views: the boundary copies them
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    x = np.linspace(-1, 1, 24).reshape(4, 3, 2)
    gamma, beta = np.ones(3), np.zeros(3)
    rmean, rvar = np.zeros(3), np.ones(3)
    S, Y = np.eye(3, 10), np.eye(3, 10) * 2
    rho = np.full(3, 0.5)
    nn = getattr(fastopt, "nn", None)

    def loop(n):
        for k in range(n):
            fastopt.kernels.sgd_step(ps, gs, lr=1e-6)
            if hasattr(fastopt.kernels, "adam_step"):
                fastopt.kernels.adam_step(ps, gs, ms, vs, step=k + 1, lr=1e-6)
            _kernels.norm_reduce(gs, 2.0)
            _kernels.scale_(ps, 1.0)
            if nn is not None and hasattr(nn, "batch_norm"):
                y, mask = nn.dropout(x, 0.5, seed=k)
                nn.dropout_backward(y, mask)
                y, cache = nn.batch_norm(x, gamma, beta, rmean, rvar)
                nn.batch_norm_backward(y, cache)
            if hasattr(_kernels, "lbfgs_two_loop"):
                _kernels.dot(S[0], Y[1])
                _kernels.lbfgs_two_loop(S[1], S, Y, rho, 1.0, 3, 2)

    grown, left = _measure(loop, 50_000, 1_000)
    print(f"other kernels: RSS +{grown / MB:.2f} MB, Python +{left} B")
    assert grown < RSS_LIMIT and left < PY_LIMIT


def test_minimize_calls_do_not_leak():
    minimize = getattr(fastopt, "minimize", None)
    if minimize is None:
        pytest.skip("fastopt.minimize has not landed")

    def fun(x):
        return float(x @ x), 2 * x

    x0 = np.linspace(-1, 1, 10)

    def loop(n):
        for k in range(n):
            res = minimize(fun, x0, jac=True, method=("L-BFGS" if k % 2 else "BFGS"))
            assert res.success

    grown, left = _measure(loop, 10_000, 200, traced=1_000)
    print(f"minimize: RSS +{grown / MB:.2f} MB, Python +{left} B")
    assert grown < RSS_LIMIT and left < PY_LIMIT
