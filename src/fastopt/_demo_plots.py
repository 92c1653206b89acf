"""The demo's figures (matplotlib, imported lazily; no pyplot, so no GUI backend is touched)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from fastopt import demo

# One colour per optimizer in every panel (the figure's legend maps them).
COLORS = {"sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c",
          "adagrad": "#d62728", "rmsprop": "#9467bd", "adam": "#111111"}
LABEL_COLORS = {demo.OPTIMIZERS[k].label: c for k, c in COLORS.items()}
CLASS_COLORS = ("#1b9e77", "#d95f02", "#7570b3")
REGION_COLORS = ("#bfe5da", "#f7cfb0", "#d6d4ec")
STYLE: dict[str, Any] = {"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 13,
                         "legend.fontsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
                         "axes.grid": True, "grid.alpha": 0.3}


def write(draw: Callable[..., Any], path: str, **data: Any) -> str | None:
    """Draw a figure with `draw(**data)` and save it as `path`; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]  # (rc names, not Literals)
        fig = draw(**data)
        fig.savefig(path, dpi=120)
    return os.path.abspath(path)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# -- the main figure ------------------------------------------------------------------------
def main_figure(runs, data, finder, chosen_lr, paths, epochs, fig=None):
    """The demo's six panels, drawn into `fig` (a new 16 x 9.6 inch figure when None)."""
    if fig is None:
        fig = _figure(16, 9.6)
    axes = fig.subplots(2, 3)
    best = max(runs, key=lambda r: r.final_val_acc)
    decision_regions(axes[0, 0], best, data)
    loss_curves(axes[0, 1], runs)
    accuracy_curves(axes[0, 2], runs)
    schedules(axes[1, 0], runs)
    range_test(axes[1, 1], finder, chosen_lr)
    ravine_panel(axes[1, 2], paths)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle(f"fastopt demo: six optimizers, one network, {epochs} epochs on a "
                 "three-class spiral", fontsize=17)
    return fig


def decision_regions(ax, run, data) -> None:
    (x_tr, y_tr), (x_val, y_val) = data
    from matplotlib.colors import ListedColormap

    grid = np.linspace(-1.1, 1.1, 160)   # 2.5 px per cell; a finer grid costs seconds
    gx, gy = np.meshgrid(grid, grid)
    points = np.c_[gx.ravel(), gy.ravel()].astype(demo.DTYPE)
    classes = run.model.predict(points).reshape(gx.shape)
    ax.pcolormesh(gx, gy, classes, cmap=ListedColormap(REGION_COLORS), vmin=-0.5, vmax=2.5,
                  shading="auto", rasterized=True)
    for k, colour in enumerate(CLASS_COLORS):
        ax.scatter(*x_tr[y_tr == k].T, s=9, color=colour, linewidths=0)
    wrong = run.model.predict(x_val) != y_val
    ax.scatter(*x_val[wrong].T, s=40, marker="x", color="black", linewidths=1.5,
               label=f"misclassified ({int(wrong.sum())} of {len(y_val)} validation points)")
    ax.legend(loc="lower left", fontsize=10, framealpha=0.9)
    ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), xticks=[], yticks=[], aspect="equal")
    ax.grid(False)
    ax.set_title(f"best model ({run.name}): {run.final_val_acc:.1%} validation accuracy")


def _epochs(values) -> np.ndarray:
    return np.arange(1, len(values) + 1)


def loss_curves(ax, runs) -> None:
    for r in runs:
        ax.plot(_epochs(r.train_loss), r.train_loss, color=LABEL_COLORS[r.name], lw=2,
                label=r.name)
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy)",
           title="training loss")
    _plain_log_labels(ax)


def _plain_log_labels(ax) -> None:
    """Label a log axis spanning about a decade 0.2, 0.3, ... 1 instead of 2x10^-1, ..."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def accuracy_curves(ax, runs) -> None:
    from matplotlib.ticker import PercentFormatter

    for r in runs:
        colour = LABEL_COLORS[r.name]
        ax.plot(_epochs(r.val_acc), r.val_acc, color=colour, lw=2)
        ax.plot(r.best_epoch, r.val_acc[r.best_epoch - 1], "o", color=colour, ms=7)
    # zoom to where the curves differ: from the lowest value after the first quarter of
    # training (the steep start of every curve says little) to 100%
    tail = [v for r in runs for v in r.val_acc[len(r.val_acc) // 4:]]
    low = max(0.0, min(tail) - 0.03)
    ax.set_ylim(low, 1.015)   # room for the dots of runs that reach 100%
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="epoch", ylabel="validation accuracy",
           title="validation accuracy (dot: best epoch)")


def schedules(ax, runs) -> None:
    groups: dict[tuple[float, ...], list] = {}
    for r in runs:
        groups.setdefault(tuple(r.lrs), []).append(r)
    peaks = []
    for lrs, members in groups.items():
        x = np.arange(len(lrs)) / members[0].steps_per_epoch
        n = len(members)
        for i, r in enumerate(members):
            # identical schedules: interleave their colours along one line
            style = "-" if n == 1 else (i * 6, (6, 6 * (n - 1)))
            ax.plot(x, lrs, color=LABEL_COLORS[r.name], lw=2.5, linestyle=style)
        peaks.append(f"{', '.join(r.name for r in members)}: {members[0].peak_lr:.2g}")
    ax.text(0.03, 0.04, "peak rates\n" + "\n".join(peaks), transform=ax.transAxes,
            fontsize=11, va="bottom", bbox={"facecolor": "white", "edgecolor": "0.8"})
    ax.set(yscale="log", xlabel="epoch", ylabel="learning rate",
           title="learning-rate schedules (warmup + cosine)")


def range_test(ax, finder, chosen_lr) -> None:
    usable = len(finder.lrs) - 1 if finder.diverged else len(finder.lrs)
    lowest = int(np.argmin(finder.smoothed_losses[:usable]))
    ax.plot(finder.lrs, finder.losses, color="0.75", lw=1, label="loss of each step")
    ax.plot(finder.lrs, finder.smoothed_losses, color=COLORS["adam"], lw=2.5,
            label="smoothed")
    ax.axvline(finder.lrs[lowest], color="0.45", ls=":", lw=2,
               label=f"lowest smoothed loss at lr {finder.lrs[lowest]:.2g}")
    ax.axvline(chosen_lr, color=COLORS["adam"], ls="--", lw=2,
               label=f"chosen = lowest / 10: {chosen_lr:.2g}")
    # the fall is a few percent of the loss: zoom on it (the divergence leaves the axis),
    # with room above the curve for the legend
    falling = finder.smoothed_losses[:lowest + 1]
    low, high = falling.min(), falling.max()
    ax.set_ylim(low - 0.15 * (high - low), high + 1.0 * (high - low))
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
           title=f"LR range test: Adam, {len(finder.lrs)} steps")
    ax.legend(loc="upper left", fontsize=11, framealpha=0.9)


def ravine_panel(ax, paths, legend: bool = False) -> None:
    x = np.linspace(-10, 2.5, 300)
    y = np.linspace(-2.6, 2.6, 200)
    gx, gy = np.meshgrid(x, y)
    values = demo.ravine(np.stack([gx, gy], axis=-1))
    ax.contour(gx, gy, values, levels=np.geomspace(0.05, values.max(), 14), colors="0.75",
               linewidths=0.8)
    # RMSProp, Nesterov and AdaGrad share the valley floor: drawn in that order, each
    # thinner than the one before, all three stay visible there
    widths = {"rmsprop": 6.0, "nesterov": 3.8, "adagrad": 1.8}
    for name in sorted(paths, key=lambda name: list(widths).index(name) if name in widths else -1):
        path, colour, lw = paths[name], COLORS[name], widths.get(name, 1.8)
        ax.plot(path[:, 0], path[:, 1], "-", color=colour, lw=lw, zorder=3,
                solid_capstyle="round")
        ax.plot(path[:, 0], path[:, 1], ".", color=colour, ms=4 + lw / 2, zorder=3)
        ax.plot(*path[-1], "o", color=colour, ms=11, mec="white", mew=1.5, zorder=6)
    ax.plot(*demo.RAVINE_START, "s", color="0.3", ms=8, zorder=5)
    ax.plot(0, 0, "*", color="gold", mec="black", ms=18, zorder=4)
    steps = len(next(iter(paths.values()))) - 1
    a, b = demo.RAVINE_CURVATURE
    ax.text(0.98, 0.96, f"f = (x\u00b2 + {b / a:g}y\u00b2) / 2\nbig dot: after {steps} steps",
            transform=ax.transAxes, ha="right", va="top", fontsize=11,
            bbox={"facecolor": "white", "edgecolor": "0.8"})
    ax.set(xlim=(x[0], x[-1]), ylim=(y[0], y[-1]), xlabel="x", ylabel="y",
           title="the same optimizers on a 2-D ravine")
    ax.grid(False)
    if legend:
        from matplotlib.lines import Line2D

        ax.legend([Line2D([], [], color=COLORS[name], lw=2.5) for name in paths],
                  [demo.OPTIMIZERS[name].label for name in paths], loc="lower right",
                  fontsize=10, ncols=2)


# -- the --bad-init figure -----------------------------------------------------------------
INIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
RUN_COLORS = ("#1f77b4", "#2ca02c", "#9467bd")


def bad_init_figure(stds, runs, fig=None):
    """Activation and gradient std per layer, and training loss, in `fig` (16 x 5.6 in)."""
    if fig is None:
        fig = _figure(16, 5.6)
    forward_ax, backward_ax, loss_ax = fig.subplots(1, 3)
    for (name, (forward, backward)), colour in zip(stds.items(), INIT_COLORS):
        layers = np.arange(1, len(forward) + 1)
        forward_ax.plot(layers, forward, "o-", color=colour, lw=2, label=name)
        backward_ax.plot(layers, backward, "o-", color=colour, lw=2, label=name)
    depth = len(next(iter(stds.values()))[0])
    for ax, what in ((forward_ax, "activations"), (backward_ax, "gradients")):
        ax.set(yscale="log", xlabel="layer", ylabel=f"std of the {what}",
               xticks=np.arange(1, depth + 1))
        ax.legend(fontsize=11)
    forward_ax.set_title(f"activations, forward through {depth} ReLU layers")
    backward_ax.set_title("gradients, backward through the same layers")
    for r, colour in zip(runs, RUN_COLORS):
        loss_ax.plot(_epochs(r.train_loss), r.train_loss, color=colour, lw=2, label=r.name)
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy)",
                title="training on the spiral (SGD+momentum)")
    _plain_log_labels(loss_ax)
    loss_ax.legend(fontsize=11)
    fig.suptitle("initialisation: tiny weights make the signal vanish, huge ones explode it; "
                 "He keeps it, BatchNorm repairs it", fontsize=15)
    return fig
