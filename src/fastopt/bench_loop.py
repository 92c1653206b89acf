"""``python -m fastopt bench --scenario loop``: a numpy training loop, end to end.

A 2-layer MLP (784 -> 1024 -> 10, ReLU, softmax cross-entropy; 814,090 float32
parameters) trained on random data with numpy's matrix products at numpy's default BLAS
threads. The same loop runs with two optimizers, each an Adam step over all parameters:

- **numpy**: the best in-place numpy Adam (``out=`` ufuncs, scratch allocated once);
- **fastopt**: ``fastopt.Adam`` at fastopt's default settings (no thread setting, no
  environment variable), as a user who read only the README's Use section writes it.

Both are timed in one process, interleaved (rotating order), per training step (forward,
backward and the optimizer step), on a quiet machine and while one other CPU-bound
process runs. The bench starts that process itself and stops it when the condition ends
(it also stops by itself after a bounded time, and when this process exits). The
``fastopt threads(1)`` contender (``--loop-explicit``) is an explicit setting for
comparison.

Ratios: ``numpy / fastopt`` per condition (> 1: fastopt's loop is faster).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["MLP", "NumpyAdam", "background_load", "format_loop", "median_interval",
           "paired_ratio", "quartiles", "rotated", "run_loop", "verdict"]

LAYERS = (784, 1024, 10)
BATCH = 64
#: Issue 12's bound: with one busy process, fastopt's default loop within this factor of
#: its explicit threads(1) loop.
DEFAULT_WITHIN = 1.2


class MLP:
    """A 784-1024-10 ReLU network whose forward+backward writes into preallocated arrays.

    `params` and `grads` are lists [W1, b1, W2, b2] in that order; ``step(opt)`` computes
    the gradients of the mean cross-entropy on the next random batch and calls
    ``opt.step(grads)``.

    Examples
    --------
    >>> import fastopt
    >>> from fastopt.bench_loop import MLP
    >>> model = MLP(batch=8)
    >>> [p.shape for p in model.params]
    [(784, 1024), (1024,), (1024, 10), (10,)]
    >>> seconds = model.step(fastopt.Adam(model.params, lr=1e-3))  # the optimizer step's time
    """

    def __init__(self, batch: int = BATCH, seed: int = 0, dtype: Any = np.float32):
        rng = np.random.default_rng(seed)
        dt = np.dtype(dtype)
        n_in, n_hidden, n_out = LAYERS
        self.params = [
            (rng.standard_normal((n_in, n_hidden)) * math.sqrt(2.0 / n_in)).astype(dt),
            np.zeros(n_hidden, dt),
            (rng.standard_normal((n_hidden, n_out)) * math.sqrt(1.0 / n_hidden)).astype(dt),
            np.zeros(n_out, dt),
        ]
        self.grads = [np.zeros_like(p) for p in self.params]
        # Eight random batches, cycled: the data never leaves the cache hierarchy's reach
        # more than a real loader would make it.
        self.x = rng.standard_normal((8, batch, n_in)).astype(dt)
        self.y = rng.integers(0, n_out, (8, batch))
        self.hidden = np.empty((batch, n_hidden), dt)
        self.logits = np.empty((batch, n_out), dt)
        self.dhidden = np.empty((batch, n_hidden), dt)
        self.count = 0

    @property
    def size(self) -> int:
        return sum(p.size for p in self.params)

    def loss_and_grads(self) -> float:
        W1, b1, W2, b2 = self.params
        dW1, db1, dW2, db2 = self.grads
        k = self.count % len(self.x)
        self.count += 1
        x, y = self.x[k], self.y[k]
        batch = x.shape[0]
        h, z, dh = self.hidden, self.logits, self.dhidden
        np.matmul(x, W1, out=h)
        h += b1
        np.maximum(h, 0, out=h)
        np.matmul(h, W2, out=z)
        z += b2
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)           # softmax probabilities
        rows = np.arange(batch)
        loss = -float(np.log(z[rows, y] + 1e-30).mean())
        z[rows, y] -= 1
        z /= batch                                   # d loss / d logits
        np.matmul(h.T, z, out=dW2)
        np.sum(z, axis=0, out=db2)
        np.matmul(z, W2.T, out=dh)
        dh *= h > 0
        np.matmul(x.T, dh, out=dW1)
        np.sum(dh, axis=0, out=db1)
        return loss

    def step(self, opt: Any) -> float:
        """One training step; returns the seconds the optimizer step took."""
        self.loss_and_grads()
        t0 = time.perf_counter()
        opt.step(self.grads)
        return time.perf_counter() - t0


class NumpyAdam:
    """torch.optim.Adam's update in place with numpy ufuncs (one scratch array per param).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.bench_loop import NumpyAdam
    >>> w = np.zeros(2, np.float32)
    >>> NumpyAdam([w], lr=0.1).step([np.array([1.0, -1.0], np.float32)])
    >>> w   # Adam's first step moves each weight by about lr against its gradient's sign
    array([-0.09999999,  0.09999999], dtype=float32)
    """

    def __init__(self, params: list[np.ndarray], lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.tmp = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.tmp):
            m *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp /= math.sqrt(bc2)
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= self.lr / bc1
            p -= tmp


# ---------------------------------------------------------------------------------------
# Background load
# ---------------------------------------------------------------------------------------

#: The busy process: spins until its deadline or until its parent is gone.
_SPIN = ("import os, sys, time\n"
         "deadline = time.monotonic() + float(sys.argv[1]); parent = os.getppid()\n"
         "x = 0\n"
         "while time.monotonic() < deadline and os.getppid() == parent:\n"
         "    for _ in range(100000):\n"
         "        x += 1\n")


@contextmanager
def background_load(processes: int = 1, max_seconds: float = 120.0) -> Iterator[list[int]]:
    """Run `processes` CPU-bound Python processes (one core each) for the body's duration.

    Each stops by itself after `max_seconds` or when this process is gone; on leaving the
    body (normally, by an exception or Ctrl-C) they are killed and reaped. Yields their pids.

    Examples
    --------
    >>> from fastopt.bench_loop import background_load
    >>> with background_load(1, max_seconds=5) as pids:
    ...     len(pids)
    1
    """
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(processes):
            procs.append(subprocess.Popen(
                [sys.executable, "-c", _SPIN, str(max_seconds)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, env=_clean_child_env()))
        time.sleep(0.2)  # let them reach their loop
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()


def _clean_child_env() -> dict[str, str]:
    """The environment minus the OpenMP/BLAS variables (the spinner uses neither)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OMP_", "GOMP_", "OPENBLAS_"))}


# ---------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------


def _time_steps(model: MLP, opt: Any, steps: int) -> tuple[float, float]:
    """Seconds per training step and per optimizer step (within it), over `steps` steps."""
    in_optimizer = 0.0
    t0 = time.perf_counter()
    for _ in range(steps):
        in_optimizer += model.step(opt)
    return (time.perf_counter() - t0) / steps, in_optimizer / steps


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of `values` (linear interpolation).

    Examples
    --------
    >>> from fastopt.bench_loop import quartiles
    >>> quartiles([4.0, 1.0, 3.0, 2.0, 5.0])
    (2.0, 3.0, 4.0)
    """
    v = sorted(values)
    if len(v) == 1:
        return v[0], v[0], v[0]
    q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
    return q1, statistics.median(v), q3


def paired_ratio(num: list[float], den: list[float]) -> dict[str, float]:
    """The ratio of two contenders from their repeats taken side by side: per repeat
    ``num[r] / den[r]``, then the median and quartiles of those ratios and the 95% interval
    of their median (``low``, ``high``; :func:`median_interval`).

    On a shared machine the whole loop's time jumps between modes that last for a second
    or more (numpy's two-thread matrix products beside a busy process: 4.5 or 85 ms per
    step on the 2-core VM, for every contender alike); two runs taken one after the other
    almost always share the mode, so their ratio is steady where a ratio of two medians
    taken over different mode mixes is not.

    Examples
    --------
    >>> from fastopt.bench_loop import paired_ratio
    >>> paired_ratio([2.0, 40.0, 2.2], [1.0, 20.0, 1.0])["median"]
    2.0
    """
    ratios = [a / b for a, b in zip(num, den)]
    q1, median, q3 = quartiles(ratios)
    low, high = median_interval(ratios)
    return {"median": median, "q1": q1, "q3": q3, "low": low, "high": high}


def rotated(items, r: int) -> list:
    """`items` in round `r`'s order of an interleaved benchmark: rotated left by r, so that
    no contender always runs first or after the same one.

    >>> rotated(["a", "b", "c"], 4)
    ['b', 'c', 'a']
    """
    items = list(items)
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free `confidence` interval for the median of the population
    `values` were drawn from: the order statistics ``x(k)`` and ``x(n+1-k)`` with the
    largest ``k`` whose binomial(n, 1/2) tail ``P(B < k)`` is at most (1 - confidence) / 2.

    Unlike the quartiles (the spread of single repeats, which more repeats do not
    narrow), this interval narrows as repeats are added, so it is what decides whether
    a median is on one side of a bound. With fewer than 6 values no such ``k`` exists at
    95% and the interval is the whole range.

    Examples
    --------
    >>> from fastopt.bench_loop import median_interval
    >>> median_interval([float(v) for v in range(1, 32)])  # 31 repeats: x(10), x(22)
    (10.0, 22.0)
    >>> median_interval([3.0, 1.0, 2.0])
    (1.0, 3.0)
    """
    v = sorted(values)
    n = len(v)
    tail, k = 0.0, 0  # tail = P(B <= k - 1), B ~ binomial(n, 1/2)
    while k < n // 2:
        next_tail = tail + math.comb(n, k) / 2.0 ** n
        if next_tail > (1.0 - confidence) / 2.0:
            break
        tail, k = next_tail, k + 1
    k = max(k, 1)
    return v[k - 1], v[n - k]


def measure_loop(contenders: dict[str, Callable[[], tuple[MLP, Any]]], repeats: int,
                 steps: int, max_seconds: float | None = None) -> dict[str, dict[str, Any]]:
    """Seconds per training step of each contender, interleaved: median, fastest, spread,
    ``optimizer`` (the median seconds of its optimizer step within the training step),
    ``samples`` (seconds per step of each repeat, for :func:`paired_ratio`) and, for the
    contenders named ``fastopt*``, ``threads_used`` (the team of the last optimizer call of
    each repeat).

    Each contender is a factory returning (model, optimizer); it is built once and warmed
    up, then timed `repeats` times over `steps` steps in rotating order. With
    `max_seconds`, repeats stop once that much time has passed (after at least three), so
    a machine where every step is slow still finishes in bounded time.
    """
    from fastopt.kernels import last_threads_used

    built = {name: make() for name, make in contenders.items()}
    for model, opt in built.values():
        _time_steps(model, opt, max(2, steps // 5))  # warm-up: threads, page faults
    names = list(built)
    samples: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    fastopt_names = [n for n in names if n.startswith("fastopt")]
    teams: dict[str, list[int]] = {n: [] for n in fastopt_names}
    start = time.perf_counter()
    for r in range(repeats):
        if max_seconds is not None and r >= 3 and time.perf_counter() - start > max_seconds:
            break
        for name in rotated(names, r):
            samples[name].append(_time_steps(*built[name], steps))
            if name in teams:
                teams[name].append(last_threads_used())
    out = {}
    for n, pairs in samples.items():
        v = [total for total, _ in pairs]
        out[n] = {"median": statistics.median(v), "fastest": min(v),
                  "spread": (max(v) - min(v)) / statistics.median(v),
                  "optimizer": statistics.median(opt for _, opt in pairs),
                  "samples": v, **({"threads_used": teams[n]} if n in fastopt_names else {})}
    return out


def loop_contenders(explicit: bool = True) -> dict[str, Callable[[], tuple[MLP, Any]]]:
    import fastopt

    contenders: dict[str, Callable[[], tuple[MLP, Any]]] = {
        "numpy": lambda: _with(MLP(), NumpyAdam),
        "fastopt": lambda: _with(MLP(), fastopt.Adam),
    }
    if explicit:
        contenders["fastopt_threads1"] = lambda: _with(MLP(), _ThreadsOne)
    return contenders


def _with(model: MLP, cls: Any) -> tuple[MLP, Any]:
    return model, cls(model.params, lr=1e-3)


class _ThreadsOne:
    """fastopt.Adam stepped inside ``fastopt.threads(1)`` (an explicit setting)."""

    def __init__(self, params: list[np.ndarray], lr: float):
        import fastopt

        self.opt = fastopt.Adam(params, lr=lr)
        self.threads = fastopt.threads

    def step(self, grads: list[np.ndarray]) -> None:
        with self.threads(1):
            self.opt.step(grads)


def run_loop(repeats: int = 7, steps: int = 20, busy: bool = True, explicit: bool = True,
             max_load_seconds: float = 120.0,
             max_seconds: float | None = None) -> dict[str, Any]:
    """Time the training loop quiet and (`busy`) with one background CPU-bound process.

    Ratios are paired (:func:`paired_ratio`): per repeat, then the median and quartiles.
    ``default_vs_best`` is fastopt's default loop time over its explicit ``threads(1)``
    loop time (> 1: the default is slower). `max_seconds` bounds each condition's repeats
    (:func:`measure_loop`).

    Examples
    --------
    >>> from fastopt.bench_loop import format_loop, run_loop
    >>> report = run_loop(repeats=1, steps=1, busy=False)
    >>> list(report["conditions"])
    ['quiet']
    >>> print(format_loop(report))
    scenario loop: MLP 784-1024-10, ...
    """
    import fastopt
    from fastopt._config import thread_policy

    model = MLP()
    report: dict[str, Any] = {
        "scenario": "loop",
        "model": f"MLP {'-'.join(map(str, LAYERS))}, batch {BATCH}, {model.size:,} float32 "
                 "parameters, Adam",
        "repeats": repeats, "steps": steps, "max_seconds": max_seconds,
        "fastopt_threads": fastopt.get_num_threads(),
        "policy": thread_policy(),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_", "FASTOPT_"))},
        "conditions": {},
    }
    del model
    conditions = ["quiet"] + (["busy"] if busy else [])
    for condition in conditions:
        load = _loadavg()
        with (background_load(1, max_load_seconds) if condition == "busy"
              else contextlib.nullcontext()):
            times = measure_loop(loop_contenders(explicit), repeats, steps, max_seconds)
        samples = {name: t["samples"] for name, t in times.items()}
        paired = {name: paired_ratio(samples["numpy"], v)
                  for name, v in samples.items() if name != "numpy"}
        report["conditions"][condition] = {
            "loadavg": load,
            "loadavg_after": _loadavg(),
            "background_processes": 1 if condition == "busy" else 0,
            "policy_after": thread_policy()["summary"],
            "repeats_done": len(samples["numpy"]),
            "times_s": times,
            "ratios": {name: r["median"] for name, r in paired.items()},
            "ratio_quartiles": {name: (r["q1"], r["q3"]) for name, r in paired.items()},
            "default_vs_best": (paired_ratio(samples["fastopt"], samples["fastopt_threads1"])
                                if "fastopt_threads1" in samples else None),
        }
    return report


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def format_loop(report: dict[str, Any]) -> str:
    """The scenario's table: ms per training step and paired numpy/fastopt ratios.

    Examples
    --------
    >>> from fastopt.bench_loop import format_loop, run_loop
    >>> print(format_loop(run_loop(repeats=1, steps=1, busy=False)))
    scenario loop: MLP 784-1024-10, ...
    """
    after = "; ".join(f"{k}: {c['policy_after']}" for k, c in report["conditions"].items())
    lines = [f"scenario loop: {report['model']}",
             f"fastopt default: {report['policy']['summary']}; after each condition: {after}",
             (f"up to {report['repeats']} interleaved repeats of {report['steps']} training "
              "steps; ms = median per training step; x = numpy loop time / fastopt loop "
              "time, per repeat, median [quartiles] (> 1: fastopt's loop is faster); "
              "default/threads(1) = fastopt's default loop time / threads(1)'s, per repeat "
              "(> 1: the default is slower); opt ms = the optimizer step within the step; "
              "team = threads the default's optimizer used, per repeat")]
    if report["env"]:
        lines.append("environment: " + " ".join(f"{k}={v}" for k, v in report["env"].items()))
    busy = [load[0] for c in report["conditions"].values()
            for load in (c["loadavg"], c.get("loadavg_after")) if load]
    cores = os.cpu_count() or 1
    if busy and max(busy) > 0.75 * cores:
        lines.append(f"WARNING: other processes were using the CPUs (load average up to "
                     f"{max(busy):.2f}, {cores} CPUs): the quiet row is not quiet")
    lines.append("")
    names = list(next(iter(report["conditions"].values()))["times_s"])
    short = {"numpy": "numpy", "fastopt": "fastopt", "fastopt_threads1": "threads(1)"}
    compared = [n for n in names if n != "numpy"]
    header = (["condition", "load", "repeats"] + [f"{short.get(n, n)} ms" for n in names]
              + [f"x {short.get(n, n)}" for n in compared]
              + (["default/threads(1)"] if "fastopt_threads1" in names else [])
              + [f"{short.get(n, n)} opt ms" for n in names] + ["team"])
    rows = [header]
    for cond, c in report["conditions"].items():
        load = c["loadavg"]
        label = cond + (" (+1 busy process)" if c["background_processes"] else "")
        row = [label, f"{load[0]:.2f}" if load else "-", str(c["repeats_done"])]
        row += [f"{1e3 * c['times_s'][n]['median']:.2f}" for n in names]
        row += [_fmt_paired(c["ratios"][n], c["ratio_quartiles"][n]) for n in compared]
        best = c.get("default_vs_best")
        if "fastopt_threads1" in names:
            row.append(_fmt_paired(best["median"], (best["q1"], best["q3"])) if best else "-")
        row += [f"{1e3 * c['times_s'][n]['optimizer']:.2f}" for n in names]
        team = c["times_s"].get("fastopt", {}).get("threads_used", [])
        row.append(" ".join(f"{k}:{team.count(k)}" for k in sorted(set(team))) or "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    for cond, c in report["conditions"].items():
        if c.get("default_vs_best"):
            lines.append(f"{cond}: default within {DEFAULT_WITHIN}x of threads(1): "
                         + verdict(c["default_vs_best"], DEFAULT_WITHIN))
    return "\n".join(lines)


def verdict(ratio: dict[str, float], bound: float) -> str:
    """Whether a paired ratio (:func:`paired_ratio`) is within `bound`: ``"yes"`` when the
    95% interval of its median (:func:`median_interval`) lies at or below the bound,
    ``"no"`` when it lies above, else ``"undecided"`` with the reason (more repeats
    narrow the interval).

    Examples
    --------
    >>> from fastopt.bench_loop import verdict
    >>> verdict({"median": 1.02, "low": 0.98, "high": 1.07}, 1.2)
    'yes'
    >>> verdict({"median": 1.1, "low": 0.9, "high": 1.5}, 1.2)
    'undecided (median 1.10x, its 95% interval 0.90x-1.50x straddles 1.2x: more repeats)'
    """
    if ratio["high"] <= bound:
        return "yes"
    if ratio["low"] > bound:
        return "no"
    return (f"undecided (median {ratio['median']:.2f}x, its 95% interval {ratio['low']:.2f}x-"
            f"{ratio['high']:.2f}x straddles {bound}x: more repeats)")


def _fmt_paired(median: float, quartiles: tuple[float, float]) -> str:
    return f"{median:.2f}x [{quartiles[0]:.2f}-{quartiles[1]:.2f}]"
