"""fastopt's Adam/AdamW step against DeepSpeedCPUAdam, float32, one tensor: issue 12 item 4.

    python benchmarks/adam_vs_deepspeed.py                       # 1e4 .. 1.6e7, 1 and 2 threads
    python benchmarks/adam_vs_deepspeed.py --sizes 1e5,1e6 --threads 1 --repeats 15

DeepSpeedCPUAdam (package ``deepspeed``, the CPU optimizer of ZeRO-Offload) is the fastest
hand-written CPU Adam we know of: AVX-512/AVX2 intrinsics, built with -march=native at its
first use (it needs ``ninja``; the first run compiles it, minutes). It is optional: without
it (or with ``--no-deepspeed``) only fastopt's rows are printed.

What is timed: ``fastopt.kernels.adam_step`` (Adam, and AdamW with weight decay 0.01) on
numpy arrays, and ``DeepSpeedCPUAdam.step()`` (``adamw_mode`` False and True) over torch
views of copies of the same arrays. Both include their Python call overhead, which is what
a user pays. Every row times its contenders in interleaved rounds (round r runs each once,
in an order rotated by r), each a batch of about ``--budget`` seconds, and reports the
median per-call time over rounds; a noisy neighbour slows every contender of a round
alike. ``DS/fo`` is DeepSpeed's time over fastopt's: above 1, fastopt is faster. The load
average is printed beside every row: on a busy machine read the ratios, not the times.

DeepSpeed computes with fused multiply-adds, so its results differ from torch's in the
last bits; fastopt's are torch's bit for bit. The ``agree`` line is the largest difference
between the two after one step from the same state, over the largest update (a sanity
check that both do the same update, not a correctness test).

Threads: fastopt via ``fastopt.threads(n)``; DeepSpeed's OpenMP loop via
``torch.set_num_threads(n)`` (it runs in torch's OpenMP runtime). BLAS is pinned to one
thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

LR, BETAS, EPS, WEIGHT_DECAY = 1e-3, (0.9, 0.999), 1e-8, 1e-2
DEFAULT_SIZES = "1e4,3e4,1e5,3e5,1e6,4e6,1.6e7"


def _import_fastopt():
    try:
        import fastopt
    except ImportError:  # a source checkout with an in-place build
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        sys.path.insert(0, os.path.join(here, "src"))
        import fastopt
    return fastopt


def _deepspeed(enabled: bool):
    """(torch, DeepSpeedCPUAdam) or (torch or None, None) with a printed reason."""
    try:
        import torch
    except ImportError:
        print("# torch not installed: no DeepSpeed column")
        return None, None
    if not enabled:
        return torch, None
    _import_fastopt()
    from fastopt.bench import deepspeed_cpu_adam

    cls, note = deepspeed_cpu_adam("build", torch)
    if cls is None:
        print(f"# no DeepSpeed column: {note}")
    return torch, cls


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _label(n: int) -> str:
    """1.6e7 for 16_000_000."""
    mantissa, exponent = f"{n:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _arrays(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"p": rng.random(n, dtype=np.float32) - np.float32(0.5),
            "g": rng.random(n, dtype=np.float32) - np.float32(0.5),
            "m": np.zeros(n, np.float32), "v": np.zeros(n, np.float32)}


class _FastoptStep:
    """fastopt.kernels.adam_step on its own copy of the arrays, one step number higher each
    call (as an optimizer's step counter)."""

    def __init__(self, kernels, a: dict[str, np.ndarray], decoupled: bool):
        self.kernels, self.decoupled = kernels, decoupled
        self.p, self.g = a["p"].copy(), a["g"]
        self.m, self.v = a["m"].copy(), a["v"].copy()
        self.step = 0

    def __call__(self) -> None:
        self.step += 1
        self.kernels.adam_step(self.p, self.g, self.m, self.v, step=self.step, lr=LR,
                               beta1=BETAS[0], beta2=BETAS[1], eps=EPS,
                               weight_decay=WEIGHT_DECAY if self.decoupled else 0.0,
                               decoupled=self.decoupled)


def _deepspeed_step(torch, cls, a: dict[str, np.ndarray], adamw: bool):
    tp = torch.from_numpy(a["p"].copy())
    tp.grad = torch.from_numpy(a["g"])
    opt = cls([tp], lr=LR, betas=BETAS, eps=EPS,
              weight_decay=WEIGHT_DECAY if adamw else 0.0, adamw_mode=adamw)
    return opt, tp


def _agreement(torch, cls, kernels, n: int) -> float:
    """Largest difference of p after one Adam step from the same state, relative to the
    largest update."""
    a = _arrays(n, seed=1)
    ours = _FastoptStep(kernels, a, decoupled=False)
    ours()
    opt, tp = _deepspeed_step(torch, cls, a, adamw=False)
    opt.step()
    update = np.max(np.abs(ours.p.astype(np.float64) - a["p"]))
    return float(np.max(np.abs(tp.numpy().astype(np.float64) - ours.p)) / update)


def interleaved(contenders: dict, repeats: int, budget: float,
                stat=statistics.median) -> dict[str, float]:
    """{name: `stat` (median) of seconds per call} over `repeats` rounds in rotated order."""
    _import_fastopt()
    from fastopt.bench_loop import rotated

    calls = {}
    for name, fn in contenders.items():
        fn()  # warm-up: first touch, lazy state
        t0 = time.perf_counter()
        fn()
        t = max(time.perf_counter() - t0, 1e-7)
        calls[name] = max(1, min(100_000, int(budget / t)))
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in rotated(names, r):
            fn, number = contenders[name], calls[name]
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - t0) / number)
    return {name: stat(s) for name, s in samples.items()}


def run(sizes: list[int], threads: list[int], repeats: int, budget: float,
        use_deepspeed: bool, stat: str = "median") -> list[dict]:
    fastopt = _import_fastopt()
    from fastopt import kernels

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        blas_limit = None
    else:
        blas_limit = threadpool_limits(limits=1, user_api="blas")
    torch, ds = _deepspeed(use_deepspeed)
    print(f"# fastopt {fastopt.__version__}; deepspeed "
          f"{'present' if ds is not None else 'absent'}; cpu count {os.cpu_count()}; "
          f"{stat} of {repeats} interleaved rounds; load at start {_load()}")
    if ds is not None:
        print(f"# agree (largest difference of p after one step over the largest update, "
              f"1e4 elements): "
              f"{_agreement(torch, ds, kernels, 10_000):.1e}")
    header = (f"{'size':>9s} {'thr':>3s} {'fastopt adam':>13s} {'fastopt adamw':>14s}"
              + (f" {'DS adam':>10s} {'DS adamw':>10s} {'DS/fo adam':>10s} {'DS/fo adamw':>11s}"
                 if ds is not None else "") + "   load (1/5/15 min)")
    print(header)
    rows = []
    for n in sizes:
        a = _arrays(n)
        for nt in threads:
            with fastopt.threads(nt):
                before = torch.get_num_threads() if torch is not None else None
                if torch is not None:
                    torch.set_num_threads(nt)
                contenders = {"fastopt adam": _FastoptStep(kernels, a, decoupled=False),
                              "fastopt adamw": _FastoptStep(kernels, a, decoupled=True)}
                if ds is not None:
                    for label, adamw in (("DS adam", False), ("DS adamw", True)):
                        opt, _ = _deepspeed_step(torch, ds, a, adamw)
                        contenders[label] = opt.step
                times = interleaved(contenders, repeats, budget,
                                    statistics.median if stat == "median" else min)
                if torch is not None:
                    torch.set_num_threads(before)
            load = _load()
            line = (f"{_label(n):>9s} {nt:3d} {times['fastopt adam'] * 1e3:10.4f} ms"
                    f" {times['fastopt adamw'] * 1e3:11.4f} ms")
            if ds is not None:
                line += (f" {times['DS adam'] * 1e3:7.4f} ms {times['DS adamw'] * 1e3:7.4f} ms"
                         f" {times['DS adam'] / times['fastopt adam']:10.2f}"
                         f" {times['DS adamw'] / times['fastopt adamw']:11.2f}")
            print(line + f"   {load}", flush=True)
            rows.append({"elements": n, "threads": nt, "seconds": times, "load": load})
    if blas_limit is not None:
        blas_limit.restore_original_limits()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"comma-separated element counts (default {DEFAULT_SIZES})")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--budget", type=float, default=0.03,
                        help="seconds per timed batch (default 0.03)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="statistic over rounds: median (default) or min (the fastest "
                             "round; steadier on a busy machine)")
    parser.add_argument("--no-deepspeed", action="store_true", help="fastopt's rows only")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    threads = [int(t) for t in args.threads.split(",") if t]
    rows = run(sizes, threads, args.repeats, args.budget, not args.no_deepspeed, args.stat)
    print(f"# load at end {_load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
