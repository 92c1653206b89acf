"""fastopt's default thread policy against the alternatives, each in a fresh process.

libgomp reads its wait policy once, when it loads, so every policy runs in its own
process; the policies of one round run one after the other and the rounds rotate their
order, so that the load other processes put on the machine falls on all of them alike.

``loop``: the numpy MLP training loop of ``python -m fastopt bench --scenario loop``
(numpy's in-place Adam against fastopt.Adam, and fastopt under ``threads(1)``) per
policy, quiet and with one other CPU-bound process that this script starts and stops::

    python benchmarks/thread_policy.py loop --rounds 5

``kernels``: back-to-back kernel calls (the ``python -m fastopt bench`` cases, fastopt's
functional kernel only) of this build against another build's ``src`` directory (e.g.
the previous commit built in place elsewhere), with the default threads (no explicit
count, so the load cap applies) and at an explicit 2 threads::

    python benchmarks/thread_policy.py kernels --old /tmp/old/src --rounds 3

Both print medians over the rounds and the ratios taken within each round.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")

#: name -> (environment additions, src directory or None for this checkout)
LOOP_POLICIES = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "libgomp default spin": {"GOMP_SPINCOUNT": "300000", "FASTOPT_LOAD_ADAPTIVE": "0"},
    # fastopt's short spin, asked for explicitly: its default where no installed torch
    # shares the runtime (fastopt._wait_policy)
    "short spin, no load cap": {"GOMP_SPINCOUNT": "4000", "FASTOPT_LOAD_ADAPTIVE": "0"},
    "short spin + load cap": {"GOMP_SPINCOUNT": "4000"},
    "libgomp default spin + load cap": {"GOMP_SPINCOUNT": "300000"},
    "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
}

LOOP_CHILD = r'''
import json, sys
import fastopt
from fastopt.bench_loop import loop_contenders, measure_loop
times = measure_loop(loop_contenders(True), int(sys.argv[1]), int(sys.argv[2]))
print(json.dumps({k: [v["median"], v["optimizer"]] for k, v in times.items()}))
'''

KERNEL_CHILD = r'''
import json, sys
import numpy as np
import fastopt
from fastopt import bench
threads = None if sys.argv[1] == "default" else int(sys.argv[1])
cases = json.loads(sys.argv[2])
ctx = bench.Context(np.dtype("float32"), None)
out = {}
with (fastopt.threads(threads) if threads else bench.ExitStack()):
    for name, label in cases:
        try:
            case = bench.KERNELS[name].build(label, ctx)
        except bench.Unavailable:
            continue
        f = {"fastopt": case.contenders["fastopt"]}
        median, fastest, _, _ = bench.measure(f, int(sys.argv[3]), 0.02, 0.002)
        out[f"{name} {label}"] = median["fastopt"]
        del case, f
print(json.dumps(out))
'''


def _env(extra: dict[str, str], src: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "FASTOPT_"))}
    env.update(extra)
    env["PYTHONPATH"] = src
    return env


def _child(code: str, args: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                         text=True, timeout=1800, check=False)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def loop(args: argparse.Namespace) -> None:
    sys.path.insert(0, SRC)
    from fastopt.bench_loop import background_load, rotated

    names = [n for n in LOOP_POLICIES if not args.policies or n in args.policies.split(",")]
    for condition in args.conditions.split(","):
        got: dict[str, list[dict]] = {n: [] for n in names}
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for name in rotated(names, r):
                env = _env(LOOP_POLICIES[name], SRC)
                run = [str(args.repeats), str(args.steps)]
                if condition == "busy":
                    with background_load(1, 600):
                        got[name].append(_child(LOOP_CHILD, run, env))
                else:
                    got[name].append(_child(LOOP_CHILD, run, env))
        print(f"\n{condition}{' (+1 busy process)' if condition == 'busy' else ''}: load "
              f"average {min(loads):.2f}..{max(loads):.2f} at the rounds' starts; ms per "
              f"training step (optimizer step within it), median of {args.rounds} rounds; "
              "x = numpy loop / this loop in the same process")
        for name in names:
            rows = got[name]

            def med(key, i, rows=rows):
                return 1e3 * statistics.median(r[key][i] for r in rows)
            vs_numpy = statistics.median(r["numpy"][0] / r["fastopt"][0] for r in rows)
            vs_t1 = statistics.median(r["fastopt"][0] / r["fastopt_threads1"][0] for r in rows)
            print(f"  {name:26s} numpy {med('numpy', 0):7.2f} ({med('numpy', 1):5.2f})  "
                  f"fastopt {med('fastopt', 0):7.2f} ({med('fastopt', 1):5.2f})  "
                  f"threads(1) {med('fastopt_threads1', 0):7.2f} "
                  f"({med('fastopt_threads1', 1):5.2f})  x numpy {vs_numpy:.2f}  "
                  f"fastopt / threads(1) {vs_t1:.2f}", flush=True)


def kernels(args: argparse.Namespace) -> None:
    sys.path.insert(0, SRC)
    from fastopt import bench

    cases = [(name, label) for name in bench.KERNELS
             if not args.only or name in args.only.split(",")
             for label in bench.KERNELS[name].sizes]
    builds = {"new": SRC, "old": args.old}
    for threads in args.threads.split(","):
        got: dict[str, list[dict]] = {b: [] for b in builds}
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for b in (("new", "old") if r % 2 == 0 else ("old", "new")):
                got[b].append(_child(KERNEL_CHILD, [threads, json.dumps(cases),
                                                    str(args.repeats)],
                                     _env({}, builds[b])))
        print(f"\nthreads: {threads}; load average {min(loads):.2f}..{max(loads):.2f} at the "
              f"rounds' starts; median per-call time over {args.rounds} rounds "
              "(each the median of interleaved repeats); new/old = ratio of the medians")
        for key in got["new"][0]:
            new = statistics.median(r[key] for r in got["new"] if key in r)
            old = statistics.median(r[key] for r in got["old"] if key in r)
            print(f"  {key:22s} old {1e6 * old:10.1f} us  new {1e6 * new:10.1f} us  "
                  f"new/old {new / old:.2f}", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lp = sub.add_parser("loop")
    lp.add_argument("--rounds", type=int, default=5)
    lp.add_argument("--repeats", type=int, default=5)
    lp.add_argument("--steps", type=int, default=20)
    lp.add_argument("--conditions", default="quiet,busy")
    lp.add_argument("--policies", help="comma-separated names of LOOP_POLICIES")
    kp = sub.add_parser("kernels")
    kp.add_argument("--old", required=True, help="src directory of the build to compare")
    kp.add_argument("--rounds", type=int, default=3)
    kp.add_argument("--repeats", type=int, default=5)
    kp.add_argument("--threads", default="default,2")
    kp.add_argument("--only", help="comma-separated kernel names")
    args = ap.parse_args(argv)
    {"loop": loop, "kernels": kernels}[args.what](args)


if __name__ == "__main__":
    main()
