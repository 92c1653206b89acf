"""Convergence with optimizer state in bfloat16 and int8 against full-precision state:
the final training loss at most 2% above, the accuracy within 0.5 points (a lower loss is
no fault: bitsandbytes' Adam8bit ends below fp32 on the digits MLP). README and
benchmarks/lowprec_convergence.py report the numbers."""

import numpy as np
import pytest

from fastopt import demo
from fastopt_testing.lowprec_problems import OPTIMIZERS, train_digits

LOSS_RATIO = 1.02
ACCURACY_POINTS = 0.5


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_digits_mlp(name, state_dtype):
    """A 64-128-10 MLP on scikit-learn's digits, 15 epochs, every state array stored low
    (min_lowprec_size=0), three seeds: mean final training loss and test accuracy."""
    pytest.importorskip("sklearn")
    full = np.array([train_digits(name, None, epochs=15, seed=s) for s in range(3)])
    low = np.array([train_digits(name, state_dtype, epochs=15, seed=s) for s in range(3)])
    assert low[:, 0].mean() <= LOSS_RATIO * full[:, 0].mean()
    assert abs(low[:, 1].mean() - full[:, 1].mean()) * 100 <= ACCURACY_POINTS
    assert full[:, 1].mean() > 0.95      # the problem is learned at all


@pytest.mark.parametrize("name,peak_lr", [("momentum", None), ("adam", 3e-3)])
@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_demo_spiral(name, peak_lr, state_dtype):
    """The demo's spiral network (its 128 x 128 layer holds the low-precision state) on
    3,000 points (600 validation points: 0.17 points of accuracy each), 20 epochs: final
    training loss and validation accuracy."""
    rng = np.random.default_rng(0)
    data = demo.split(*demo.spiral(n_per_class=1000, rng=rng), 0.2, rng)
    full = demo.train(name, data, epochs=20, seed=0, peak_lr=peak_lr)
    low = demo.train(name, data, epochs=20, seed=0, peak_lr=peak_lr, state_dtype=state_dtype)
    assert low.train_loss[-1] <= LOSS_RATIO * full.train_loss[-1]
    assert abs(low.final_val_acc - full.final_val_acc) * 100 <= ACCURACY_POINTS
    assert full.final_val_acc > 0.95
