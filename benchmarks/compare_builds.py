"""Two builds of fastopt, one ``python -m fastopt bench`` table: is any size slower?

Issue 12 asks that the new defaults keep the speed of back-to-back kernel calls on a
quiet machine: no size of the ``bench`` table more than 10% slower than before. Each
build lives in its own checkout (built in place); this script runs their ``bench`` in
alternating subprocesses, one kernel at a time, so both see the same machine state, and
prints new/old for every (kernel, case) over rounds: the median of the rounds, and
with ``--across min`` the best round of each build.

Why the best round: on this VM one build's time for the same call differs by up to 2x
between processes (adam 1e6: 180 or 390 us per call, in two modes, whichever build),
while it is steady inside a process. A median over a few rounds then flips with the mode
a round happened to get; the best of 5+ rounds is each build's fast mode. Report both.

    git worktree add --detach /tmp/old <commit>
    (cd /tmp/old && python setup.py build_ext --inplace -j 2)
    python benchmarks/compare_builds.py --old /tmp/old --new . --rounds 4

Both processes run with the caller's environment (no thread variables set: the
defaults are what is compared) and torch off. Report the load average with the result
(it is printed); the comparison means something only on a quiet machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_KERNELS = "sgd,adam,adamw,adagrad,rmsprop,adadelta,dropout,batchnorm,lbfgs"


def run_bench(checkout: Path, kernel: str, args: argparse.Namespace, out: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(checkout / "src"))
    cmd = [sys.executable, "-m", "fastopt", "bench", "--no-torch", "--no-progress",
           "--only", kernel, "--json", str(out), "--repeats", str(args.repeats),
           "--dtype", args.dtype]
    if args.quick:
        cmd.append("--quick")
    subprocess.run(cmd, env=env, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["results"]


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout of the old build")
    parser.add_argument("--new", type=Path, default=Path("."), help="checkout of the new build")
    parser.add_argument("--kernels", default=DEFAULT_KERNELS)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--quick", action="store_true", default=True)
    parser.add_argument("--across", choices=("median", "min"), default="median",
                        help="how the rounds of one build combine (default median)")
    parser.add_argument("--slower", type=float, default=1.10,
                        help="flag a case whose new/old time exceeds this (default 1.10)")
    args = parser.parse_args()

    times: dict[tuple[str, str, str, str], list[float]] = {}
    loads = [loadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        for r in range(args.rounds):
            for kernel in args.kernels.split(","):
                order = [("old", args.old), ("new", args.new)]
                if r % 2:
                    order.reverse()  # neither build always runs first
                for label, checkout in order:
                    for row in run_bench(checkout.resolve(), kernel, args, out):
                        for who in ("fastopt", "fastopt_class"):
                            t = row["median_s"].get(who)
                            if t is not None:
                                times.setdefault((kernel, row["case"], who, label), []).append(t)
            loads.append(loadavg())
            print(f"round {r + 1}/{args.rounds} done, load {loads[-1]}", file=sys.stderr)

    print(f"load average (1 min) at the start and after each round: {' '.join(loads)}")
    print(f"rounds combined by: {args.across}")
    print(f"{'kernel':10} {'case':14} {'call':13} {'old':>10} {'new':>10} {'new/old':>8}"
          f" {'other':>8}   (other: new/old with the rounds combined the other way)")
    flagged = []
    combine = min if args.across == "min" else statistics.median
    other = statistics.median if args.across == "min" else min
    for (kernel, case, who, label) in sorted(times):
        if label != "old" or (kernel, case, who, "new") not in times:
            continue
        olds, news = times[(kernel, case, who, "old")], times[(kernel, case, who, "new")]
        old, new = combine(olds), combine(news)
        ratio = new / old
        mark = "  <- slower" if ratio > args.slower else ""
        if mark:
            flagged.append((kernel, case, who, ratio))
        print(f"{kernel:10} {case:14} {who:13} {old * 1e6:9.1f}u {new * 1e6:9.1f}u {ratio:8.3f}"
              f" {other(news) / other(olds):8.3f}{mark}")
    print(f"{len(flagged)} case(s) more than {args.slower - 1:.0%} slower")


if __name__ == "__main__":
    main()
