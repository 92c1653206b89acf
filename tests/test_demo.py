"""python -m fastopt demo: the main job."""

import subprocess
import sys

import numpy as np
import pytest

from fastopt import demo


def test_spiral_is_three_balanced_classes():
    x, y = demo.spiral(n_per_class=50, rng=np.random.default_rng(1))
    assert x.shape == (150, 2) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [50, 50, 50]
    assert np.abs(x).max() <= 1.5


def test_network_gradients_match_finite_differences():
    """The demo's hand-written backward pass, checked numerically (float64 copy of the net)."""
    import fastopt as fo

    rng = np.random.default_rng(3)
    net = demo.SpiralNet(rng, hidden=8, dropout=0.0)
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    net.loss_and_grads(x, y)
    w = net.layers[1]
    analytic = net.grads[1].astype(np.float64).copy()  # params[1] is layers[1]

    def loss_at(values):
        w[...] = values
        return demo.softmax_cross_entropy(net.forward(x, training=True), y)[0]

    w0 = w.astype(np.float64).copy()
    numeric = fo.train.numerical_gradient(lambda v: loss_at(v), w0.copy(), eps=1e-2)
    w[...] = w0
    assert fo.train.relative_error(analytic, numeric) < 2e-2  # float32 net: loose but real


def test_adam_reaches_95_percent_validation_accuracy(capsys):
    runs = demo.run_demo(["adam"], epochs=60, seed=0, plot_path=None, quiet=True)
    assert runs[0].final_val_acc >= 0.95
    out = capsys.readouterr().out
    assert "Adam reaches a validation accuracy of" in out
    assert "LR finder" in out


def test_all_optimizers_run_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "demo.png"
    code = demo.main(["--epochs", "3", "--quiet", "--plot-path", str(png)])
    assert code == 0
    out = capsys.readouterr().out
    for label in demo.OPTIMIZERS.values():
        assert label in out
    assert png.exists() and png.stat().st_size > 10_000
    assert str(png) in out


def test_bad_init_shows_the_failure_modes(capsys):
    assert demo.main(["--bad-init", "--epochs", "3", "--no-plot", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "tiny (std 0.01)" in out and "He" in out and "huge (std 1.0)" in out


def test_activation_statistics_collapse_and_explode():
    rng = np.random.default_rng(0)
    tiny = demo.activation_stds(0.01, rng)
    he = demo.activation_stds(None, rng)
    huge = demo.activation_stds(1.0, rng)
    # each tiny layer scales the std by about 0.01 * sqrt(256 / 2) = 0.11, each huge one by 11
    assert tiny[-1] < 1e-8 and all(b < a for a, b in zip(tiny, tiny[1:]))
    assert huge[-1] > 1e8 and all(b > a for a, b in zip(huge, huge[1:]))
    assert 0.1 < he[-1] < 10


def test_unknown_optimizer_is_a_usage_error(capsys):
    assert demo.main(["--optimizer", "lbfgs", "--no-plot"]) == 2
    assert "unknown optimizer" in capsys.readouterr().err


def test_cli_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "fastopt", "demo", "--optimizer", "sgd",
                          "--epochs", "2", "--no-plot", "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SGD" in out.stdout
