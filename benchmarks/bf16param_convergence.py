"""Convergence with bfloat16 parameters (not an asv suite: a script whose numbers the README
reports).

    PYTHONPATH=src:tests/support python benchmarks/bf16param_convergence.py [--epochs 15]

Trains, for each optimizer, with float32 params, with bfloat16 params rounded
stochastically (fastopt's default), rounded to nearest even, and rounded to nearest with
Kahan compensation in a bfloat16 buffer (float32 state and math in every case; the
networks compute in float32 from the params' values):

* the 64-128-10 MLP on scikit-learn's digits (tests/support/fastopt_testing/
  lowprec_problems.py), seeds 0-2: mean final training loss and test accuracy;
* the demo's spiral network (fastopt.demo.train, 3,000 points, 20 epochs): final training
  loss and validation accuracy.

Needs ml_dtypes and scikit-learn.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fastopt import demo

VARIANTS = [("float32", None), ("bf16 stochastic", "stochastic"), ("bf16 nearest", "nearest"),
            ("bf16 kahan", "kahan")]


def digits_rows(epochs: int, seeds: int) -> None:
    # here, not at import: asv imports every module of benchmarks/, where the test
    # helpers (and scikit-learn) need not be importable
    from fastopt_testing.lowprec_problems import OPTIMIZERS, train_digits

    print(f"\ndigits MLP, {epochs} epochs, mean of seeds 0-{seeds - 1}")
    print(f"{'optimizer':>13} | {'params':>16} | {'train loss':>10} | {'vs fp32':>7} | "
          f"{'test acc':>8} | {'time (s)':>8}")
    for name in OPTIMIZERS:
        base = None
        for label, rounding in VARIANTS:
            start = time.perf_counter()
            runs = np.array([train_digits(name, None, epochs=epochs, seed=s,
                                          param_rounding=rounding) for s in range(seeds)])
            loss, acc = runs.mean(axis=0)
            base = loss if base is None else base
            print(f"{name:>13} | {label:>16} | {loss:10.5f} | {loss / base:7.4f} | "
                  f"{acc * 100:7.2f}% | {time.perf_counter() - start:8.1f}", flush=True)


def spiral_rows(epochs: int) -> None:
    print(f"\ndemo spiral network, 3,000 points, {epochs} epochs")
    print(f"{'optimizer':>13} | {'params':>16} | {'train loss':>10} | {'vs fp32':>7} | "
          f"{'val acc':>8} | {'time (s)':>8}")
    rng = np.random.default_rng(0)
    data = demo.split(*demo.spiral(n_per_class=1000, rng=rng), 0.2, rng)
    for name, peak in (("momentum", None), ("adam", 3e-3)):
        base = None
        for label, rounding in VARIANTS:
            run = demo.train(name, data, epochs=epochs, seed=0, peak_lr=peak,
                             param_dtype=None if rounding is None else "bfloat16",
                             param_rounding=rounding or "stochastic")
            loss = run.train_loss[-1]
            base = loss if base is None else base
            print(f"{name:>13} | {label:>16} | {loss:10.5f} | {loss / base:7.4f} | "
                  f"{run.final_val_acc * 100:7.2f}% | {run.seconds:8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="digits epochs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spiral-epochs", type=int, default=20)
    args = parser.parse_args()
    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    digits_rows(args.epochs, args.seeds)
    spiral_rows(args.spiral_epochs)
    print(f"load {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
