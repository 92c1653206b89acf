"""Adam on one tensor, per fresh process: where the arrays land decides the speed.

    python benchmarks/adam_placement.py scan                 # the cause, in one process
    python benchmarks/adam_placement.py fresh --processes 4  # the spread over processes
    python benchmarks/adam_placement.py fresh --build /work/main/src --build src
    python benchmarks/adam_placement.py fresh --threads 1 --cpu-time   # on a busy machine

``scan`` steps ``fastopt.kernels.adam_step`` (float32, 1e6 elements by default) on p, g, m, v
placed at chosen byte offsets from a 2 MiB boundary (mmap, with or without transparent huge
pages): a state 64-128 bytes ahead of or behind the param modulo 4096 costs 10-60% (4K
aliasing of the loads against pending stores; fastopt._placement explains it).

``fresh`` starts fresh Python processes (each build of ``--build`` in turn, interleaved), each
timing fastopt.Adam (numpy), fastopt.torch.Adam, torch's fused Adam and DeepSpeedCPUAdam
(when installed) interleaved on one tensor per size, and prints each process's ratios
(other's time / fastopt's) and the worst over processes: issue 12/15's "in every run".
It also steps a second fastopt.torch.Adam on a copy of the same tensor ("twin"): the same
kernel on the same values, only at other addresses. The twin's ratio to the first is the
spread that placement alone gives a process, the yardstick for the others' ratios (at the
sizes where every Adam moves the same bytes at the memory's speed, a ratio inside that
spread says nothing about which kernel is faster).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000, 4_000_000, 16_000_000]
HUGE = 1 << 21


# -- scan: forced offsets in one process --------------------------------------------------------

def _placed(n: int, offset: int, thp: bool, keep: list) -> np.ndarray:
    mm = mmap.mmap(-1, n * 4 + offset + 2 * HUGE)
    mm.madvise(mmap.MADV_HUGEPAGE if thp else mmap.MADV_NOHUGEPAGE)
    keep.append(mm)
    raw = np.frombuffer(mm, np.uint8)
    start = (-raw.ctypes.data) % HUGE + offset
    return raw[start:start + n * 4].view(np.float32)


def scan(args) -> None:
    import fastopt
    from fastopt import kernels

    cases = [tuple(int(x) for x in c.split(",")) for c in args.offsets]
    rng = np.random.default_rng(0)
    print(f"adam_step float32 n={args.n:.0e} threads {args.threads} thp {args.thp}  min us of "
          f"100 calls, {args.rounds} interleaved rounds  load {os.getloadavg()[0]:.2f}")
    results: dict[tuple, list[float]] = {c: [] for c in cases}
    with fastopt.threads(args.threads):
        for _ in range(args.rounds):
            for case in cases:
                keep: list = []
                p, g, m, v = (_placed(args.n, off, args.thp, keep) for off in case)
                p[:] = rng.standard_normal(args.n)
                g[:] = rng.standard_normal(args.n) * 1e-3
                m[:] = 0
                v[:] = 0
                times = []
                for step in range(1, 111):
                    t = time.perf_counter()
                    kernels.adam_step(p, g, m, v, step=step, lr=1e-3)
                    times.append(time.perf_counter() - t)
                results[case].append(min(times[10:]) * 1e6)
                del p, g, m, v
                for mm in keep:
                    mm.close()
    for case, ts in results.items():
        print(f"  p,g,m,v at {str(case):<24s}" + " ".join(f"{t:7.1f}" for t in ts))
    print(f"load at the end {os.getloadavg()[0]:.2f}")


# -- fresh: one process per run -------------------------------------------------------------------

def child(args) -> None:
    """Time the contenders on each size; print one JSON line."""
    sys.path.insert(0, HERE)
    import optim_vs_torch as common
    import torch
    import torch_dropin as dropin

    import fastopt
    import fastopt.torch as ft

    fastopt.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    common.STAT = min if args.stat == "min" else statistics.median
    if args.cpu_time:  # 1 thread: every contender runs on this thread, preemption uncounted
        common.CLOCK = time.thread_time
    ds = dropin._deepspeed_adam()
    out: dict[str, dict[str, float]] = {}
    for n in args.sizes:
        params = dropin._model(1, n, torch.float32)
        # each contender on its own copy (as torch_dropin._contenders), the twin on another
        opts = {"fastopt.torch": ft.Adam(dropin._clone(params), lr=1e-3),
                "twin": ft.Adam(dropin._clone(params), lr=1e-3)}
        arrays = [p.detach().numpy().copy() for p in params]
        opts["fastopt"] = dropin._NumpyStep(fastopt.Adam(arrays, lr=1e-3),
                                            [p.grad.numpy() for p in params])
        opts["torch fused"] = torch.optim.Adam(dropin._clone(params), lr=1e-3, fused=True)
        if ds is not None:
            opts["DeepSpeed"] = ds(dropin._clone(params), lr=1e-3, adamw_mode=False)
        times = common.interleaved({k: o.step for k, o in opts.items()}, args.repeats)
        out[str(n)] = {k: t * 1e6 for k, t in times.items()}
        del opts, params, arrays
    print(json.dumps(out), flush=True)


def fresh(args) -> None:
    builds = args.build or [os.path.join(os.path.dirname(HERE), "src")]
    print(f"fresh processes: {args.processes} per build, threads {args.threads}, {args.stat} of "
          f"{args.repeats} interleaved rounds in each, {'CPU' if args.cpu_time else 'wall'} "
          f"time; ratio = other's time / fastopt's "
          f"(fastopt.torch's for torch fused and DeepSpeed)  load {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {b: [] for b in builds}
    for k in range(args.processes):
        for build in builds:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(build))
            cmd = [sys.executable, os.path.abspath(__file__), "child", "--threads",
                   str(args.threads), "--repeats", str(args.repeats), "--stat", args.stat,
                   *(["--cpu-time"] if args.cpu_time else []), "--sizes",
                   *[str(n) for n in args.sizes]]
            load = os.getloadavg()[0]
            res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
            runs[build].append(res)
            for n, t in res.items():
                ft_us, np_us = t["fastopt.torch"], t["fastopt"]
                others = " ".join(f"{name} {t[name] / ft_us:5.2f}x" for name in
                                  ("twin", "torch fused", "DeepSpeed") if name in t)
                print(f"  {build:<22s} run {k} load {load:4.2f} n={int(n):>9,d}  fastopt "
                      f"{np_us:8.1f} us  fastopt.torch {ft_us:8.1f} us  {others}  "
                      f"DeepSpeed/fastopt {t.get('DeepSpeed', float('nan')) / np_us:5.2f}x",
                      flush=True)
    print("worst over processes (ratio above 1: fastopt faster in every run); twin: the range "
          "of twin/fastopt.torch, the same kernel at other addresses:")
    for build, res in runs.items():
        for n in res[0]:
            worst = {}
            for name, base in (("torch fused", "fastopt.torch"), ("DeepSpeed", "fastopt.torch"),
                               ("torch fused", "fastopt"), ("DeepSpeed", "fastopt")):
                if name in res[0][n]:
                    worst[f"{name}/{base}"] = min(r[n][name] / r[n][base] for r in res)
            twin = [r[n]["twin"] / r[n]["fastopt.torch"] for r in res if "twin" in r[n]]
            spread = f"  twin {min(twin):4.2f}-{max(twin):4.2f}x" if twin else ""
            print(f"  {build:<22s} n={int(n):>9,d}  " + "  ".join(
                f"{k} {v:5.2f}x" for k, v in worst.items()) + spread)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scan")
    s.add_argument("--n", type=lambda x: int(float(x)), default=1_000_000)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--thp", action="store_true")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--offsets", nargs="*", default=[
        "0,0,0,0", "0,0,2048,1024", "0,0,64,64", "0,0,128,128", "0,0,256,256",
        "0,0,4032,4032", "64,0,0,0", "0,64,128,192", "16,1920,0,0"])
    for name in ("fresh", "child"):
        f = sub.add_parser(name)
        f.add_argument("--threads", type=int, default=2)
        f.add_argument("--repeats", type=int, default=7)
        f.add_argument("--sizes", type=int, nargs="*", default=SIZES)
        f.add_argument("--stat", choices=["median", "min"], default="median")
        f.add_argument("--cpu-time", action="store_true",
                       help="CPU time of the calling thread (time.thread_time): with "
                            "--threads 1 on a busy machine, preemption no longer counts")
        if name == "fresh":
            f.add_argument("--processes", type=int, default=4)
            f.add_argument("--build", action="append",
                           help="a src/ folder holding a built fastopt (repeatable)")
    args = ap.parse_args(argv)
    if args.cmd != "scan" and args.cpu_time and args.threads != 1:
        ap.error("--cpu-time needs --threads 1 (other threads' work is not counted)")
    {"scan": scan, "fresh": fresh, "child": child}[args.cmd](args)


if __name__ == "__main__":
    main()
