"""python -m fastopt demo: the main job, its figures and its command line."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastopt as fo
from fastopt import demo


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return demo.split(*demo.spiral(rng=rng), 0.2, rng)


def test_spiral_is_balanced_classes_inside_the_unit_disc():
    x, y = demo.spiral(n_per_class=50, rng=np.random.default_rng(1))
    assert x.shape == (150, 2) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [50, 50, 50]
    assert np.hypot(*x.T).max() <= 1.0 + 1e-6


def test_network_gradients_match_finite_differences():
    """The demo's hand-written backward pass, checked numerically."""
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
    numeric = fo.train.numerical_gradient(loss_at, w0.copy(), eps=1e-2)
    w[...] = w0
    assert fo.train.relative_error(analytic, numeric) < 2e-2  # float32 net: loose but real


def test_ravine_paths_show_what_the_lecture_says():
    paths = demo.ravine_paths(steps=50)
    f = {name: float(demo.ravine(p[-1])) for name, p in paths.items()}
    # SGD zig-zags across the ravine: y changes sign at every one of the first 10 steps
    y = paths["sgd"][:11, 1]
    assert np.all(np.sign(y[1:]) == -np.sign(y[:-1]))
    # momentum overshoots the minimum along the ravine; Nesterov less
    assert paths["momentum"][:, 0].max() > 1.0
    assert paths["nesterov"][:, 0].max() < 0.85 * paths["momentum"][:, 0].max()
    # ... and Nesterov damps the oscillation across it: after 10 steps it stays near the floor
    assert np.abs(paths["nesterov"][10:, 1]).max() < 0.3 * np.abs(paths["momentum"][10:, 1]).max()
    # AdaGrad stalls: far from the minimum (gradient 3 along x and more), its last 10 steps
    # are under a quarter as long as its first 10 (its rate decays as 1 / sqrt(steps))
    step = np.linalg.norm(np.diff(paths["adagrad"], axis=0), axis=1)
    assert step[-10:].mean() < 0.25 * step[:10].mean() and paths["adagrad"][-1, 0] < -3
    # RMSProp and Adam rescale each coordinate: they end nearer the minimum than SGD and AdaGrad
    assert max(f["rmsprop"], f["adam"]) < min(f["sgd"], f["adagrad"])


def test_adam_trains_at_the_rate_the_range_test_chose(capsys):
    result = demo.run_demo(["adam"], epochs=3, seed=0, out=None, quiet=True)
    (run,) = result.runs
    assert result.chosen_lr == pytest.approx(result.lr_finder.lrs[
        np.argmin(result.lr_finder.smoothed_losses[:-1])] / 10)
    assert run.peak_lr == result.chosen_lr
    assert max(run.lrs) == pytest.approx(result.chosen_lr, rel=1e-12)  # the warmup reaches it
    assert f"Adam's peak rate: {result.chosen_lr:.3g}" in capsys.readouterr().out


def test_the_comparison_shows_the_optimizers_differences():
    """The settings the demo ships with make the lecture's differences visible (they did not
    when every optimizer reached 98% in 10 epochs)."""
    runs = {r.name: r for r in demo.run_demo(list(demo.OPTIMIZERS), out=None, quiet=True).runs}
    loss = {name: r.train_loss[-1] for name, r in runs.items()}
    acc = {name: r.final_val_acc for name, r in runs.items()}
    assert loss["SGD"] > 2 * loss["SGD+momentum"]          # momentum speeds SGD up
    assert loss["AdaGrad"] > 2 * loss["RMSProp"]           # AdaGrad's rate decays away
    assert acc["Adam"] >= 0.9 and acc["SGD+momentum"] >= 0.9
    assert max(acc.values()) - min(acc.values()) > 0.15


def _png_size(path):
    import matplotlib.image

    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


def _run_python(code, cwd):
    """Run `code` in a fresh interpreter with warnings as errors; the finished process."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fo.__file__)))
    env.pop("MPLBACKEND", None)
    return subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                          text=True, timeout=180, cwd=cwd, env=env)


def test_both_figures_render_headless_without_warnings(tmp_path):
    """Any warning is an error; no GUI backend is chosen or needed (pyplot is never
    imported); --bad-init writes its own file and leaves the main figure alone."""
    pytest.importorskip("matplotlib")
    code = f"""if True:
        import sys
        from fastopt import demo
        assert demo.main(["--epochs", "2", "--quiet"]) == 0
        from pathlib import Path
        main_figure = Path({demo.FIGURE!r}).read_bytes()
        assert demo.main(["--bad-init", "--epochs", "2", "--quiet"]) == 0
        assert Path({demo.FIGURE!r}).read_bytes() == main_figure
        assert "matplotlib.pyplot" not in sys.modules
        """
    out = _run_python(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    main_png, bad_png = tmp_path / demo.FIGURE, tmp_path / demo.BAD_INIT_FIGURE
    assert f"wrote {main_png}" in out.stdout and f"wrote {bad_png}" in out.stdout
    assert _png_size(main_png) == (1920, 1152)   # 2 x 3 panels, 16 x 9.6 inches at 120 dpi
    assert _png_size(bad_png) == (1920, 672)


def test_out_names_the_figure_in_both_modes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert demo.main(["--optimizer", "sgd", "--epochs", "1", "--quiet", "--out", "a.png"]) == 0
        assert demo.main(["--bad-init", "--epochs", "1", "--quiet", "--out", "b.png"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_no_plot_and_missing_matplotlib_write_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--optimizer", "sgd", "--epochs", "1", "--quiet", "--no-plot"]) == 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises
    result = demo.run_demo(["sgd"], epochs=1, quiet=True)
    assert result.figure is None and os.listdir(tmp_path) == []
    assert 'pip install "fastopt[demo]"' in capsys.readouterr().out


def test_bad_init_statistics_collapse_and_explode():
    stds = {name: demo.activation_stds(name, np.random.default_rng(0)) for name in demo.INITS}
    tiny, tiny_grads = stds["tiny (std 0.01)"]
    huge, huge_grads = stds["huge (std 1)"]
    he, he_grads = stds["He"]
    # each tiny layer scales the std by about 0.01 * sqrt(256 / 2) = 0.11, each huge one by 11
    assert tiny[-1] < 1e-8 and all(b < a for a, b in zip(tiny, tiny[1:]))
    assert huge[-1] > 1e8 and all(b > a for a, b in zip(huge, huge[1:]))
    assert tiny_grads[0] < 1e-8 and huge_grads[0] > 1e8   # the gradients follow, backwards
    assert all(0.3 < s < 3 for s in he + he_grads)
    xavier, _ = stds["Xavier"]
    assert xavier[-1] < 0.1 * xavier[0]                   # Xavier halves the variance per ReLU


def test_bad_init_runs_show_what_batchnorm_repairs():
    runs = {r.name: r for r in demo.bad_init_runs(_data(), epochs=10, seed=0, quiet=True)}
    stuck = runs["tiny init, no BatchNorm"].train_loss
    assert max(stuck) - min(stuck) < 0.01                 # a tiny init does not learn
    assert runs["tiny init + BatchNorm"].train_loss[-1] < stuck[-1] - 0.2


def test_help_is_plain_text(capsys):
    from fastopt.__main__ import main as cli

    for argv, run in ((["--help"], demo.main), (["demo", "--help"], cli)):
        with pytest.raises(SystemExit) as stop:
            run(argv)
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert "--out PATH" in text and "--bad-init" in text
        for markup in ("``", ":func:", ":class:", ":data:", "**", ".. "):
            assert markup not in text, markup


def test_usage_errors(capsys):
    assert demo.main(["--optimizer", "lbfgs", "--no-plot"]) == 2
    assert "unknown optimizer" in capsys.readouterr().err
    assert demo.main(["--epochs", "0", "--no-plot"]) == 2
    assert "--epochs" in capsys.readouterr().err
    with pytest.raises(ValueError, match="peak_lr"):
        demo.train("adam", _data(), epochs=1, seed=0)


def test_cli_entry_point_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(fo.__file__)))
    out = subprocess.run([sys.executable, "-W", "error", "-m", "fastopt", "demo", "--optimizer",
                          "sgd", "--epochs", "2", "--no-plot", "--quiet"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "SGD" in out.stdout and out.stderr == ""
