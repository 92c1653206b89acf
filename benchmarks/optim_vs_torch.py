"""fastopt's optimizers against torch.optim, a plain C loop and in-place numpy: the ratios of
issue 3's performance targets, reproducibly.

    python benchmarks/optim_vs_torch.py            # all rows, float32, fastopt's threads
    python benchmarks/optim_vs_torch.py --threads 1 --repeats 9

Every row times its contenders interleaved in one process (round r runs A, B, C, ... one
after another, then round r+1), and reports the median over rounds of each contender's
per-step time, so that a noisy neighbour slows every contender of a round alike. Ratios
are median(other) / median(fastopt): above 1 means fastopt is faster. torch and fastopt
run with the same thread count; numpy is single-threaded by nature. BLAS pools are pinned
to one thread. The plain C Adam loop (benchmarks/plain_adam.c) is compiled here with
fastopt's own flags and SIMD clones; it moves the same 7 arrays x itemsize bytes per
parameter, so "fastopt / plain" is the fraction of that loop's bandwidth fastopt reaches.

Requires torch (CPU) for the torch rows and gcc for the plain-C row; rows whose contender
is missing are skipped.

``--passive`` sets OMP_WAIT_POLICY=PASSIVE (for both libraries: they share one libgomp)
before either is loaded. On a machine shared with other busy processes the default policy
(idle threads spin, then sleep) made EVERY 2-thread region wait for a descheduled thread:
a 1e5-element Adam step took >= 16 ms instead of 0.06 ms, for torch and fastopt alike;
with passive waiting idle threads sleep at once and are woken promptly.
"""

from __future__ import annotations

import os
import sys

if "--passive" in sys.argv[1:]:  # before libgomp is loaded: it reads the variable once
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import ctypes
import math
import statistics
import subprocess
import tempfile
import time

import numpy as np

try:
    from threadpoolctl import threadpool_limits

    _BLAS = threadpool_limits(limits=1, user_api="blas")
except ImportError:  # pragma: no cover
    _BLAS = None

try:
    import fastopt
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))
    import fastopt
from fastopt import kernels
from fastopt.bench_loop import rotated

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

HERE = os.path.dirname(os.path.abspath(__file__))
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


# -- timing ------------------------------------------------------------------------------------

def per_call(fn, calls):
    t0 = CLOCK()
    for _ in range(calls):
        fn()
    return (CLOCK() - t0) / calls


STAT = statistics.median
#: wall time; benchmarks that run every contender on the calling thread alone may set
#: time.thread_time (CPU time: a busy machine's preemptions do not count)
CLOCK = time.perf_counter


def interleaved(contenders, repeats, budget=0.04):
    """{name: median (or --stat min) seconds per call} over `repeats` interleaved rounds,
    round r in the order rotated by r (no contender always runs after the same one)."""
    calls = {}
    for name, fn in contenders.items():
        fn()  # warm up (and allocate lazy state)
        t = per_call(fn, 1)
        calls[name] = max(1, min(20000, int(budget / max(t, 1e-7))))
    names = list(contenders)
    samples = {name: [] for name in names}
    for r in range(repeats):
        for name in rotated(names, r):
            samples[name].append(per_call(contenders[name], calls[name]))
    return {name: STAT(s) for name, s in samples.items()}


# -- contenders --------------------------------------------------------------------------------

def _arrays(shapes, dtype, count, seed=0):
    rng = np.random.default_rng(seed)
    return [[(rng.random(s, dtype=dtype) - dtype(0.5)) for s in shapes] for _ in range(count)]


def _torch_opt(name, params_np, grads_np, **options):
    tps = [torch.from_numpy(p.copy()).requires_grad_() for p in params_np]
    for tp, g in zip(tps, grads_np):
        tp.grad = torch.from_numpy(g)
    return getattr(torch.optim, name)(tps, **options)


def _plain_c():
    """The plain one-pass C Adam loop, built with fastopt's flags and clones, or None."""
    src = os.path.join(HERE, "plain_adam.c")
    out = os.path.join(tempfile.mkdtemp(prefix="fastopt-plain-"), "plain_adam.so")
    flags = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-math-errno", "-fopenmp", "-fPIC",
             "-shared"]
    try:
        subprocess.run(["gcc", *flags, src, "-o", out], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    lib = ctypes.CDLL(out)
    for fn, ct in ((lib.plain_adam_f32, ctypes.c_float), (lib.plain_adam_f64, ctypes.c_double)):
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] + [ct] * 5 + [ctypes.c_int]
    return lib


def _numpy_adam(p, g, m, v, tmp, step):
    """Adam in place with numpy ufuncs and out= arguments (one scratch array)."""
    t = p.dtype.type
    step_size = LR / (1 - B1 ** step)
    bc2 = math.sqrt(1 - B2 ** step)
    np.multiply(m, t(B1), out=m)
    np.multiply(g, t(1 - B1), out=tmp)
    np.add(m, tmp, out=m)
    np.multiply(v, t(B2), out=v)
    np.multiply(g, g, out=tmp)
    np.multiply(tmp, t(1 - B2), out=tmp)
    np.add(v, tmp, out=v)
    np.sqrt(v, out=tmp)
    np.divide(tmp, t(bc2), out=tmp)
    np.add(tmp, t(EPS), out=tmp)
    np.divide(m, tmp, out=tmp)
    np.multiply(tmp, t(step_size), out=tmp)
    np.subtract(p, tmp, out=p)


# -- rows --------------------------------------------------------------------------------------

def row(label, times, base="fastopt", extra=""):
    ours = times[base]
    parts = [f"{label:<34s} fastopt {ours * 1e6:10.1f} us"]
    for name, t in times.items():
        if name != base:
            parts.append(f"{name} {t / ours:5.2f}x")
    print("  ".join(parts) + extra, flush=True)


def adam_rows(args, dtype, plain):
    sizes = [("Adam 1e7", [(10_000_000,)]), ("Adam 1e6", [(1_000_000,)]),
             ("Adam 1e5", [(100_000,)]), ("Adam 500 x 2,000", [(2000,)] * 500),
             ("Adam 2,000 x 64x64", [(64, 64)] * 2000)]
    for label, shapes in sizes:
        p, g, m, v = _arrays(shapes, dtype, 4)
        opt = fastopt.Adam(p, lr=LR)
        contenders = {"fastopt": lambda: opt.step(g)}
        if torch is not None:
            tf = _torch_opt("Adam", p, g, lr=LR, fused=True)
            contenders["torch fused"] = tf.step
            if len(shapes) > 1:
                tfe = _torch_opt("Adam", p, g, lr=LR, foreach=True)
                contenders["torch foreach"] = tfe.step
        n = sum(math.prod(s) for s in shapes)
        if len(shapes) == 1 and plain is not None:
            fn = plain.plain_adam_f32 if dtype == np.float32 else plain.plain_adam_f64
            pp, gg, mm, vv = (a[0] for a in _arrays(shapes, dtype, 4, seed=1))
            np.abs(vv, out=vv)  # a second moment is >= 0
            ptrs = [a.ctypes.data for a in (pp, gg, mm, vv)]
            contenders["plain C"] = lambda: fn(*ptrs, n, LR / (1 - B1 ** 5),
                                               math.sqrt(1 - B2 ** 5), B1, B2, EPS,
                                               args.threads)
        if label == "Adam 1e7":
            pn, gn, mn, vn = (a[0] for a in _arrays(shapes, dtype, 4, seed=2))
            np.abs(vn, out=vn)
            tmp = np.empty_like(pn)
            contenders["numpy out="] = lambda: _numpy_adam(pn, gn, mn, vn, tmp, 5)
            contenders["fastopt skip_if_nonfinite"] = lambda: opt.step(g, skip_if_nonfinite=True)
        times = interleaved(contenders, args.repeats)
        gbs = 7 * n * np.dtype(dtype).itemsize / times["fastopt"] / 1e9
        extra = f"   [{gbs:.1f} GB/s minimal bytes]"
        if "plain C" in times:
            extra += f"  [fastopt reaches {times['plain C'] / times['fastopt']:.2f} of the " \
                     f"plain C loop's bandwidth]"
        row(label, times, extra=extra)


def sgd_rows(args, dtype):
    if torch is None:
        return
    for label, shapes in (("SGD(momentum) 500 x 2,000", [(2000,)] * 500),
                          ("SGD(momentum) 2,000 x 64x64", [(64, 64)] * 2000),
                          ("SGD(momentum) 1e7", [(10_000_000,)])):
        p, g = _arrays(shapes, dtype, 2)
        opt = fastopt.SGD(p, lr=LR, momentum=0.9)
        tf = _torch_opt("SGD", p, g, lr=LR, momentum=0.9, fused=True)
        times = interleaved({"fastopt": lambda: opt.step(g), "torch fused": tf.step},
                            args.repeats)
        row(label, times)


def default_rows(args, dtype):
    """RMSprop and Adadelta (torch has no fused CPU kernel): against torch's default."""
    if torch is None:
        return
    for name in ("RMSprop", "Adadelta", "Adagrad"):
        shapes = [(10_000_000,)]
        p, g = _arrays(shapes, dtype, 2)
        opt = getattr(fastopt, name)(p, lr=1e-3)
        tf = _torch_opt(name, p, g, lr=1e-3)
        times = interleaved({"fastopt": lambda: opt.step(g), "torch default": tf.step},
                            args.repeats)
        row(f"{name} 1e7", times)


def small_rows(args, dtype):
    p = np.zeros(10, dtype)
    g = np.ones(10, dtype)
    m, v = np.zeros(10, dtype), np.zeros(10, dtype)
    opt = fastopt.Adam([p.copy()], lr=LR)
    contenders = {
        "fastopt": lambda: opt.step([g]),
        "kernels.adam_step": lambda: kernels.adam_step(p, g, m, v, step=5, lr=LR),
    }
    if torch is not None:
        tf = _torch_opt("Adam", [p], [g], lr=LR, fused=True)
        contenders["torch fused"] = tf.step
    times = interleaved(contenders, args.repeats)
    print(f"{'Adam, one tensor of 10':<34s} Adam.step {times['fastopt'] * 1e6:.2f} us   "
          f"kernels.adam_step {times['kernels.adam_step'] * 1e6:.2f} us"
          + (f"   torch fused {times['torch fused'] * 1e6:.1f} us" if torch else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=fastopt.get_num_threads())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--only", default="", help="comma list of: adam,sgd,default,small")
    ap.add_argument("--passive", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE (see the module docstring)")
    ap.add_argument("--stat", default="median", choices=["median", "min"],
                    help="per-contender statistic over rounds (min: the uncontended "
                         "capacity on a busy machine)")
    args = ap.parse_args(argv)
    global STAT
    STAT = statistics.median if args.stat == "median" else min
    dtype = np.dtype(args.dtype).type
    fastopt.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"fastopt {fastopt.__version__}  threads {args.threads}  dtype {args.dtype}  "
          f"{args.stat} of {args.repeats} interleaved rounds  "
          f"torch {torch.__version__ if torch else 'missing'}  "
          f"SIMD {fastopt._kernels.build_info()['simd_target']}  "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}")
    print("ratios: other's time / fastopt's time (above 1: fastopt faster)")
    only = set(filter(None, args.only.split(",")))
    plain = _plain_c()
    if not only or "small" in only:
        small_rows(args, dtype)
    if not only or "adam" in only:
        adam_rows(args, dtype, plain)
    if not only or "sgd" in only:
        sgd_rows(args, dtype)
    if not only or "default" in only:
        default_rows(args, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
