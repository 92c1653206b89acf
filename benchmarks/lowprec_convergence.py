"""Convergence of low-precision optimizer state on a large synthetic problem (not an asv
suite: a script whose numbers the README reports).

    PYTHONPATH=src python benchmarks/lowprec_convergence.py [--steps 5000] [--n 1048576]
        [--only Adam,SGD-momentum] [--bf16-params]

A noisy, ill-conditioned separable quadratic with n parameters (default 2^20):
loss(w) = mean(h * (w - w*)^2) / 2 with curvatures h log-uniform in [1e-3, 1], and
stochastic gradients h * (w - w*) + noise (uniform, standard deviation 0.1, fresh each
step: Philox words of stream t). Adam, AdamW
and SGD with momentum run `--steps` steps with state in float32, bfloat16 and int8 (the
same gradient noise for all); the table gives the final exact loss and its ratio to the
float32 state's. With ``--bf16-params`` the rows compare float32 params with bfloat16
params (ml_dtypes) rounded stochastically, to nearest and with Kahan compensation, all with
float32 state.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastopt
from fastopt._kernels import philox_stream

OPTIMIZERS = {
    "Adam": (fastopt.Adam, dict(lr=1e-3)),
    "AdamW": (fastopt.AdamW, dict(lr=1e-3, weight_decay=1e-2)),
    "SGD-momentum": (fastopt.SGD, dict(lr=0.05, momentum=0.9)),
}


def run(name: str, state_dtype: str | None, steps: int, n: int, seed: int = 0,
        param_rounding: str | None = None) -> float:
    """The final loss; with a `param_rounding` the params are bfloat16, rounded so."""
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(np.log(1e-3), 0.0, n)).astype(np.float32)
    target = rng.standard_normal(n).astype(np.float32)
    w = np.zeros(n, np.float32)
    cls, options = OPTIMIZERS[name]
    stored = w                   # what the optimizer updates: w, or its bfloat16 copy
    if param_rounding is not None:
        import ml_dtypes

        stored = w.astype(ml_dtypes.bfloat16)
        options = dict(options, param_rounding=param_rounding)
    opt = cls([stored], state_dtype=state_dtype, **options)
    g = np.empty(n, np.float32)
    scale = np.float32(0.1 * np.sqrt(12.0) / 2.0**32)   # uniform words -> std 0.1
    for t in range(steps):
        noise = philox_stream(n, seed + 1, t).astype(np.float32)
        noise -= np.float32(2.0**31)
        noise *= scale
        if stored is not w:
            np.copyto(w, stored, casting="unsafe")
        np.subtract(w, target, out=g)
        g *= h
        g += noise
        opt.step([g])
    if stored is not w:
        np.copyto(w, stored, casting="unsafe")
    r = w - target
    return float(np.mean(h * r * r) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--n", type=int, default=1 << 20)
    parser.add_argument("--only", default=",".join(OPTIMIZERS),
                        help="comma-separated optimizers")
    parser.add_argument("--bf16-params", action="store_true",
                        help="compare bfloat16 params (float32 state) instead of states")
    args = parser.parse_args()
    variants: list[tuple[str, str | None, str | None]] = (
        [("float32", None, None), ("bf16 stochastic", None, "stochastic"),
         ("bf16 nearest", None, "nearest"), ("bf16 kahan", None, "kahan")]
        if args.bf16_params else
        [("float32", None, None), ("bfloat16", "bfloat16", None), ("int8", "int8", None)])
    print(f"fastopt {fastopt.__version__}: {args.n:,} parameters, {args.steps} steps; "
          f"load {open('/proc/loadavg').read().split()[:3]}")
    what = "params" if args.bf16_params else "state"
    print(f"{'optimizer':>14} | {what:>15} | {'final loss':>12} | {'vs float32':>10} | "
          f"{'time (s)':>8}")
    for name in args.only.split(","):
        base = None
        for label, state_dtype, rounding in variants:
            start = time.perf_counter()
            loss = run(name, state_dtype, args.steps, args.n, param_rounding=rounding)
            base = loss if base is None else base
            print(f"{name:>14} | {label:>15} | {loss:12.6g} | "
                  f"{loss / base:10.4f} | {time.perf_counter() - start:8.1f}", flush=True)


if __name__ == "__main__":
    main()
