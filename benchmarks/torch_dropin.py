"""fastopt.torch against torch.optim on CPU tensors: the ratios of issue 15's speed targets.

    python benchmarks/torch_dropin.py                       # float32, each library's default threads
    python benchmarks/torch_dropin.py --threads 2           # both held at 2 threads
    python benchmarks/torch_dropin.py --threads 1 --repeats 9 --only sizes
    python benchmarks/torch_dropin.py --threads 1 --cpu-time     # on a busy machine

Rows (each times its contenders interleaved, median over rounds, as optim_vs_torch.py):

Threads: without ``--threads`` each library keeps its default, as a user's process would:
torch one thread per physical core, fastopt the same with its load cap (a smaller team
while another process keeps the cores busy; ``fastopt.show_config()``). ``--threads N``
fixes both at N, which turns the load cap off: on a machine where another process keeps
one of 2 cores busy, a team of 2 then waits at every kernel's end for its preempted
thread, and 500 x 2,000 ran at 2-3x its quiet time. Each row prints the fastopt teams its
fastopt.torch steps ran with (``team``) and the load average beside the row.

* ``sizes``: ``fastopt.torch.Adam.step()`` against torch's fused CPU Adam and its default
  (foreach) Adam, one tensor of 1e5 .. 1.6e7 elements and 500 tensors x 2,000; ratios are
  torch's time / fastopt.torch's (above 1: fastopt.torch faster). The gradients stay the
  same tensors between steps, as with ``zero_grad(set_to_none=False)``, the way torch's
  own benchmarks step. DeepSpeedCPUAdam is a column when ``deepspeed`` is installed, and
  fastopt's numpy optimizer on the same arrays is one for reference.
* ``fresh``: the same with a NEW gradient tensor per parameter every step (what
  ``zero_grad()``'s default ``set_to_none=True`` and a backward pass give): every contender
  first assigns ``p.grad`` from one of 4 pre-made gradient sets; the assignment alone is
  timed too, and subtracted in the ratio column ``net``.
* ``overhead``: a 10-tensor model (10 x 1,000 float32): ``step()`` against the kernel alone,
  that is the cached StepPlan's bind + one C call + counter advance on the same arrays, and
  against ``fastopt.kernels.adam_step`` over the same lists. The difference is the Python
  cost of ``step()``, with the same grad tensors and with new ones every step (read through
  torch's DLPack C exchange API, or DLPack capsules on older torch; also timed through
  ``Tensor.numpy()``, the road before).
"""

from __future__ import annotations

import os
import sys

if "--passive" in sys.argv[1:]:  # before libgomp is loaded (see optim_vs_torch.py)
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import statistics
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optim_vs_torch as common  # noqa: E402  (the interleaved timer, fastopt import path)

import fastopt  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

LR = 1e-3
SIZES = [("1 x 1e5", 1, 100_000), ("1 x 3e5", 1, 300_000), ("1 x 1e6", 1, 1_000_000),
         ("1 x 4e6", 1, 4_000_000), ("1 x 1.6e7", 1, 16_000_000), ("500 x 2,000", 500, 2_000)]


def _deepspeed_adam():
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam
    except Exception:  # not installed, or its op does not build here
        return None
    return DeepSpeedCPUAdam


def _model(count, n, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.rand(n, generator=g, dtype=dtype) - 0.5)
              for _ in range(count)]
    for p in params:
        p.grad = torch.rand(n, generator=g, dtype=dtype) - 0.5
    return params


def _clone(params):
    out = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for q, p in zip(out, params):
        q.grad = p.grad.clone()
    return out


class _NumpyStep:
    """fastopt's numpy optimizer on copies of the arrays, stepped like the others."""

    def __init__(self, opt, grads):
        self.opt, self.grads = opt, grads
        self.param_groups = [{"params": []}]

    def step(self):
        self.opt.step(self.grads)


def _contenders(params):
    import fastopt.torch as ft

    # every contender steps its own copy, made the same way: the first tensor of a size
    # lands in its own mapping and the copies on the heap, and the same kernel ran up to
    # 10% apart on the two at 4e6 elements (adam_placement.py fresh's "twin" column)
    opts = {"fastopt.torch": ft.Adam(_clone(params), lr=LR)}
    fused = _clone(params)
    opts["torch fused"] = torch.optim.Adam(fused, lr=LR, fused=True)
    default = _clone(params)
    opts["torch default"] = torch.optim.Adam(default, lr=LR)
    arrays = [p.detach().numpy().copy() for p in params]
    grads = [p.grad.numpy() for p in params]
    numpy_opt = fastopt.Adam(arrays, lr=LR)
    opts["fastopt (numpy)"] = _NumpyStep(numpy_opt, grads)
    ds = _deepspeed_adam()
    if ds is not None:
        try:
            opts["DeepSpeedCPUAdam"] = ds(_clone(params), lr=LR, adamw_mode=False)
        except Exception as err:  # pragma: no cover - its op failed to build
            print(f"  (DeepSpeedCPUAdam unavailable: {type(err).__name__})")
    return opts


def _row(label, times, base="fastopt.torch", teams=()):
    ours = times[base]
    parts = [f"{label:<34s} {base} {ours * 1e6:10.1f} us"]
    parts += [f"{name} {t / ours:5.2f}x" for name, t in times.items() if name != base]
    parts.append(f"team {','.join(map(str, sorted(teams)))}  load {os.getloadavg()[0]:.2f}")
    print("  ".join(parts), flush=True)


def _recording_team(step, teams):
    """`step`, adding the team fastopt's last kernel call ran with to the set `teams`."""
    from fastopt.kernels import last_threads_used

    def call():
        step()
        teams.add(last_threads_used())
    return call


def sizes_rows(args):
    for label, count, n in SIZES:
        opts = _contenders(_model(count, n, torch.float32))
        teams: set[int] = set()
        calls = {k: o.step for k, o in opts.items()}
        calls["fastopt.torch"] = _recording_team(calls["fastopt.torch"], teams)
        times = common.interleaved(calls, args.repeats)
        _row(f"Adam {label}", times, teams=teams)
        del opts


def fresh_rows(args):
    for label, count, n in (("500 x 2,000", 500, 2_000), ("1 x 1e6", 1, 1_000_000),
                            ("10 x 1,000", 10, 1_000)):
        params = _model(count, n, torch.float32)
        opts = _contenders(params)
        del opts["fastopt (numpy)"]  # it takes numpy grads: nothing to convert
        sets = [[torch.rand(n) - 0.5 for _ in range(count)] for _ in range(4)]
        models = {k: [p for g in o.param_groups for p in g["params"]] for k, o in opts.items()}

        def fresh(name, opt=None):
            ps, k = models[name], [0]

            def call():
                k[0] = (k[0] + 1) % 4
                for p, g in zip(ps, sets[k[0]]):
                    p.grad = g
                if opt is not None:
                    opt.step()
            return call

        calls = {k: fresh(k, o) for k, o in opts.items()}
        calls["assign only"] = fresh("fastopt.torch")
        times = common.interleaved(calls, args.repeats)
        base = times["assign only"]
        ours = times["fastopt.torch"] - base
        parts = [f"{'Adam ' + label + ', new grads':<34s} fastopt.torch {ours * 1e6:9.1f} us net"]
        for name in opts:
            if name != "fastopt.torch":
                parts.append(f"{name} {(times[name] - base) / ours:5.2f}x net")
        print("  ".join(parts) + f"   [assigning the grads: {base * 1e6:.1f} us]", flush=True)


def overhead_rows(args):
    import fastopt.torch as ft

    params = _model(10, 1_000, torch.float32)
    opt = ft.Adam(params, lr=LR)
    opt.step()
    opt.step()  # the grads are the same tensors: their views are retained
    lay = opt._fo_layout
    plan, options = lay.full[0], lay.options[0]
    views = list(lay.views)  # what step() binds: the grads' retained numpy views
    grads_np = [p.grad.numpy() for p in params]  # the same memory, for the numpy contenders
    arrays = [p.detach().numpy() for p in params]
    m = [np.zeros(1_000, np.float32) for _ in params]
    v = [np.zeros(1_000, np.float32) for _ in params]

    def kernel():
        plan.bind(views)
        plan.run(0, options)
        plan.advance()
        plan.release()

    sets = [[torch.rand(1_000) - 0.5 for _ in params] for _ in range(4)]
    k = [0]

    def assign():
        k[0] = (k[0] + 1) % 4
        for p, g in zip(params, sets[k[0]]):
            p.grad = g

    def fresh_step():
        assign()
        opt.step()

    # the same with each new gradient read through Tensor.numpy() instead of torch's
    # exchange API (the road before; a second optimizer on its own params)
    from fastopt.torch import _base

    params2 = _clone(params)
    opt2 = ft.Adam(params2, lr=LR)
    opt2.step()
    k2 = [0]

    def fresh_step_numpy():
        k2[0] = (k2[0] + 1) % 4
        for p, g in zip(params2, sets[k2[0]]):
            p.grad = g
        _base._to_dlpack = torch.Tensor.numpy
        try:
            opt2.step()
        finally:
            _base._to_dlpack = to_dlpack
    to_dlpack = _base._to_dlpack

    numpy_params = [a.copy() for a in arrays]
    numpy_opt = fastopt.Adam(numpy_params, lr=LR)
    numpy_opt.step(grads_np)
    times = common.interleaved({"step": opt.step, "kernel": kernel,
                                "fastopt.Adam (numpy)": lambda: numpy_opt.step(grads_np),
                                "kernels.adam_step": lambda: fastopt.kernels.adam_step(
                                    arrays, grads_np, m, v, step=3, lr=LR),
                                "assign + step": fresh_step, "assign only": assign,
                                "assign + step (numpy views)": fresh_step_numpy},
                               args.repeats)
    us = {name: t * 1e6 for name, t in times.items()}
    print(f"{'10 tensors x 1,000, same grads':<34s} step {us['step']:.2f} us   kernel "
          f"(StepPlan bind+run+advance) {us['kernel']:.2f} us   overhead "
          f"{us['step'] - us['kernel']:.2f} us   kernels.adam_step {us['kernels.adam_step']:.2f} us"
          f"   numpy fastopt.Adam.step {us['fastopt.Adam (numpy)']:.2f} us")
    fresh = us["assign + step"] - us["assign only"]
    print(f"{'10 tensors x 1,000, new grads':<34s} step {fresh:.2f} us net   overhead "
          f"{fresh - us['kernel']:.2f} us  [assigning the grads: {us['assign only']:.2f} us]")
    old = us["assign + step (numpy views)"] - us["assign only"]
    print(f"{'  the same through Tensor.numpy()':<34s} step {old:.2f} us net   overhead "
          f"{old - us['kernel']:.2f} us  (DLPack saves {old - fresh:.2f} us per step)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None,
                    help="fix fastopt's and torch's threads (default: each library's own)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default="", help="comma list of: sizes,fresh,overhead")
    ap.add_argument("--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--stat", default="median", choices=["median", "min"])
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU time of the calling thread (time.thread_time), not wall "
                         "time: on a busy machine, preemption no longer counts; with "
                         "--threads 1 only (every contender then runs on that thread)")
    args = ap.parse_args(argv)
    if args.cpu_time:
        if args.threads != 1:
            ap.error("--cpu-time needs --threads 1 (other threads' work is not counted)")
        common.CLOCK = time.thread_time
    if torch is None:
        print("torch is not installed: nothing to compare (pip install torch==2.13.0)")
        return 1
    common.STAT = statistics.median if args.stat == "median" else min
    if args.threads is not None:
        fastopt.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    threads = (f"{args.threads}" if args.threads is not None else
               f"defaults (torch {torch.get_num_threads()}, fastopt {fastopt.get_num_threads()} "
               "with its load cap)")
    ds = "present" if _deepspeed_adam() is not None else "not installed"
    print(f"fastopt {fastopt.__version__}  torch {torch.__version__}  threads {threads}  "
          f"float32  {args.stat} of {args.repeats} interleaved rounds  DeepSpeedCPUAdam "
          f"{ds}  {'CPU' if args.cpu_time else 'wall'} time  load {os.getloadavg()[0]:.2f}")
    print("ratios: other's time / fastopt.torch's time (above 1: fastopt.torch faster)")
    only = set(filter(None, args.only.split(",")))
    if not only or "overhead" in only:
        overhead_rows(args)
    if not only or "sizes" in only:
        sizes_rows(args)
    if not only or "fresh" in only:
        fresh_rows(args)
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
