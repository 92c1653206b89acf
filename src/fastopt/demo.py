"""``python -m fastopt demo``: the lecture's optimizers on the three-class spiral.

A small fully-connected network (numpy for affine, ReLU and softmax; fastopt for
BatchNorm, dropout, the optimizer and the learning-rate schedule) is trained on the
classic spiral data set, generated in code, with a train/validation split. The same data,
initialisation and seed are used for SGD, SGD+momentum, Nesterov, AdaGrad, RMSProp and
Adam (cosine schedule with linear warmup); a learning-rate range test (LR finder) runs
first, and early stopping keeps each run's best parameters. The summary table shows the
final validation accuracy and time of each; with matplotlib installed, the loss curves,
validation accuracy, the learning-rate schedule and the LR-finder curve are written to
``fastopt-demo.png``.

``--bad-init`` shows the lecture's initialisation failure modes instead: activation
statistics through a deep ReLU stack for tiny, He and huge initial weights, and what a
tiny initialisation does to training without BatchNorm.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
import numpy as np

import fastopt as fo

DTYPE = np.float32
HIDDEN = 128
BATCH = 64

__all__ = ["spiral", "SpiralNet", "main", "run_demo"]


# -- data -----------------------------------------------------------------------------------
def spiral(n_per_class: int = 300, classes: int = 3, noise: float = 0.2,
           rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The cs231n spiral: `classes` interleaved arms of `n_per_class` noisy points each."""
    rng = np.random.default_rng(0) if rng is None else rng
    xs, ys = [], []
    for k in range(classes):
        radius = np.linspace(0.0, 1.0, n_per_class)
        angle = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class)
        angle = angle + rng.standard_normal(n_per_class) * noise
        xs.append(np.c_[radius * np.sin(angle), radius * np.cos(angle)])
        ys.append(np.full(n_per_class, k))
    return np.concatenate(xs).astype(DTYPE), np.concatenate(ys)


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator):
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


# -- model ----------------------------------------------------------------------------------
def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(scores) and its gradient with respect to the scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(y)
    loss = -float(log_probs[np.arange(n), y].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    return loss, (dscores / n).astype(scores.dtype)


class SpiralNet:
    """affine -> [BatchNorm] -> ReLU -> dropout -> affine -> [BatchNorm] -> ReLU -> affine.

    Parameters and gradients are two lists of arrays in the same order, ready for a
    fastopt optimizer.
    """

    def __init__(self, rng: np.random.Generator, hidden: int = HIDDEN, batch_norm: bool = True,
                 dropout: float = 0.1, init_scale: float | None = None) -> None:
        def weight(shape):
            if init_scale is None:
                return fo.init.he(shape, rng, dtype=DTYPE)
            return (rng.standard_normal(shape) * init_scale).astype(DTYPE)

        self.batch_norm = batch_norm
        self.dropout = dropout
        self.layers = [weight((2, hidden)), weight((hidden, hidden)), weight((hidden, 3))]
        self.biases = [np.zeros(hidden, DTYPE), np.zeros(hidden, DTYPE), np.zeros(3, DTYPE)]
        self.bn = [fo.nn.BatchNorm(hidden, dtype=DTYPE) for _ in range(2)] if batch_norm else []
        self.drop = fo.nn.Dropout(dropout, seed=int(rng.integers(2**31))) if dropout else None
        self.params = self.layers + self.biases + [a for bn in self.bn for a in bn.params]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._cache = []
        h = x
        for k in range(2):
            a = h @ self.layers[k] + self.biases[k]
            if self.batch_norm:
                a = self.bn[k].forward(a, training=training)
            r = np.maximum(a, 0)
            if self.drop is not None and k == 0:
                r = self.drop.forward(r, training=training)
            self._cache.append((h, a))
            h = r
        self._last_hidden = h
        return h @ self.layers[2] + self.biases[2]

    def backward(self, dscores: np.ndarray) -> None:
        """Fill self.grads (same order as self.params) from d loss / d scores."""
        g = dict(zip(map(id, self.params), self.grads))
        g[id(self.layers[2])][...] = self._last_hidden.T @ dscores
        g[id(self.biases[2])][...] = dscores.sum(axis=0)
        dh = dscores @ self.layers[2].T
        for k in (1, 0):
            if self.drop is not None and k == 0:
                dh = self.drop.backward(dh)
            h, a = self._cache[k]
            da = dh * (a > 0)
            if self.batch_norm:
                da = self.bn[k].backward(da)
                for p, dp in zip(self.bn[k].params, self.bn[k].grads):
                    g[id(p)][...] = dp
            g[id(self.layers[k])][...] = h.T @ da
            g[id(self.biases[k])][...] = da.sum(axis=0)
            dh = da @ self.layers[k].T

    def state(self) -> list[np.ndarray]:
        """Everything early stopping must keep: parameters and BatchNorm running stats."""
        return self.params + [a for bn in self.bn for a in (bn.running_mean, bn.running_var)]

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> float:
        loss, dscores = softmax_cross_entropy(self.forward(x, training=True), y)
        self.backward(dscores)
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Cross-entropy in evaluation mode (running BatchNorm stats, no dropout)."""
        return softmax_cross_entropy(self.forward(x, training=False), y)[0]

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float((self.forward(x, training=False).argmax(axis=1) == y).mean())


# -- optimizers -----------------------------------------------------------------------------
def make_optimizer(name: str, params: list[np.ndarray], total_steps: int) -> fo.Optimizer:
    """The demo's optimizers: common starting hyperparameters, the same for every seed."""
    wd = 1e-4
    if name == "sgd":
        return fo.SGD(params, lr=0.05, weight_decay=wd)
    if name == "momentum":
        return fo.SGD(params, lr=0.05, momentum=0.9, weight_decay=wd)
    if name == "nesterov":
        return fo.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=wd)
    if name == "adagrad":
        return fo.Adagrad(params, lr=0.05, weight_decay=wd)
    if name == "rmsprop":
        return fo.RMSprop(params, lr=1e-3, weight_decay=wd)
    if name == "adam":
        return fo.Adam(params, lr=adam_schedule(total_steps), weight_decay=wd)
    raise ValueError(f"optimizer: unknown name {name!r}; choose from {', '.join(OPTIMIZERS)}")


def adam_schedule(total_steps: int, peak: float = 1e-2):
    """Linear warmup over the first 5% of steps, then cosine decay to 1% of the peak."""
    warm = max(1, total_steps // 20)
    return fo.schedules.warmup(
        fo.schedules.cosine(peak, T_max=total_steps - warm, eta_min=peak / 100, clamp=True),
        warm, start_factor=0.1, shift=True)


def current_lr(opt: fo.Optimizer) -> float:
    """The learning rate the next step of the first param group will use."""
    group = opt.param_groups[0]
    lr = group["lr"]
    return float(lr(group["step"]) if callable(lr) else lr)


OPTIMIZERS = {
    "sgd": "SGD",
    "momentum": "SGD+momentum",
    "nesterov": "Nesterov",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSProp",
    "adam": "Adam+cosine+warmup",
}


# -- training -------------------------------------------------------------------------------
@dataclass
class RunResult:
    name: str
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    best_epoch: int = 0
    final_val_acc: float = 0.0
    seconds: float = 0.0


class Progress:
    """A tqdm bar when tqdm is installed and stderr is a terminal-ish stream, else lines."""

    def __init__(self, total: int, label: str, quiet: bool) -> None:
        self.quiet, self.label, self.total, self.bar = quiet, label, total, None
        if quiet:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, desc=f"{label:>18}", unit="epoch", leave=True,
                        file=sys.stderr, dynamic_ncols=True)

    def update(self, epoch: int, **info: float) -> None:
        if self.quiet:
            return
        text = " ".join(f"{k}={v:.4g}" for k, v in info.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif epoch == 1 or epoch == self.total or epoch % 10 == 0:
            print(f"{self.label:>18} epoch {epoch:3d}/{self.total} {text}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(name: str, data, epochs: int, seed: int, quiet: bool = False,
          batch_norm: bool = True, init_scale: float | None = None,
          label: str | None = None) -> RunResult:
    """Train one optimizer; keep the best epoch's parameters (early stopping, train to end)."""
    (x_tr, y_tr), (x_val, y_val) = data
    rng = np.random.default_rng(seed)
    model = SpiralNet(rng, batch_norm=batch_norm, init_scale=init_scale)
    steps_per_epoch = len(x_tr) // BATCH  # full batches only: BatchNorm on a 16-row tail is noise
    opt = make_optimizer(name, model.params, epochs * steps_per_epoch)
    keeper = fo.train.EarlyStopping(patience=None, mode="max")
    result = RunResult(label or OPTIMIZERS.get(name, name))
    progress = Progress(epochs, result.name, quiet)
    order_rng = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = order_rng.permutation(len(x_tr))
        for b in range(steps_per_epoch):
            idx = order[b * BATCH:(b + 1) * BATCH]
            model.loss_and_grads(x_tr[idx], y_tr[idx])
            result.lrs.append(current_lr(opt))
            opt.step(model.grads)
        result.train_loss.append(model.loss(x_tr, y_tr))
        result.train_acc.append(model.accuracy(x_tr, y_tr))
        result.val_acc.append(model.accuracy(x_val, y_val))
        keeper.update(result.val_acc[-1], model.state())
        progress.update(epoch, loss=result.train_loss[-1], train=result.train_acc[-1],
                        val=result.val_acc[-1], lr=result.lrs[-1])
    progress.close()
    keeper.restore(model.state())  # raises unless some epoch improved, setting best_step
    assert keeper.best_step is not None
    result.best_epoch = int(keeper.best_step) + 1
    result.final_val_acc = model.accuracy(x_val, y_val)
    result.seconds = time.perf_counter() - start
    return result


def find_lr(data, seed: int) -> object:
    """The lecture's step 3: an LR range test with Adam on a fresh model (~100 steps)."""
    (x_tr, y_tr), _ = data
    rng = np.random.default_rng(seed)
    model = SpiralNet(rng)
    opt = fo.Adam(model.params, lr=1e-3)
    batch_rng = np.random.default_rng(seed + 2)

    def step(lr: float) -> float:
        idx = batch_rng.integers(0, len(x_tr), BATCH)
        loss = model.loss_and_grads(x_tr[idx], y_tr[idx])
        opt.param_groups[0]["lr"] = lr
        opt.step(model.grads)
        return loss

    return fo.train.lr_finder(step, start_lr=1e-5, end_lr=1.0, num=100)


# -- initialisation failure modes -------------------------------------------------------------
def activation_stds(scale: float | None, rng: np.random.Generator, depth: int = 10,
                    width: int = 256, n: int = 512) -> list[float]:
    """Std of the activations after each layer of a deep ReLU stack (no BatchNorm)."""
    h = rng.standard_normal((n, width)).astype(DTYPE)
    stds = []
    for _ in range(depth):
        w = (fo.init.he((width, width), rng, dtype=DTYPE) if scale is None
             else (rng.standard_normal((width, width)) * scale).astype(DTYPE))
        h = np.maximum(h @ w, 0)
        stds.append(float(h.std()))
    return stds


def bad_init_report(data, epochs: int, seed: int, quiet: bool) -> list[RunResult]:
    rng = np.random.default_rng(seed)
    print("Activation std after each layer of a 10-layer ReLU stack (width 256, no BatchNorm):")
    for label, scale in (("tiny (std 0.01)", 0.01), ("He", None), ("huge (std 1.0)", 1.0)):
        stds = activation_stds(scale, rng)
        print(f"  {label:>16}: " + " ".join(f"{s:9.3g}" for s in stds))
    print("Tiny weights shrink the signal to zero layer by layer (and the gradients with it);")
    print("huge ones blow it up; He initialisation keeps it spread through every layer.\n")
    runs = []
    for label, scale, bn in (("tiny init, no BN", 0.01, False), ("He init, no BN", None, False),
                             ("tiny init + BN", 0.01, True)):
        runs.append(train("momentum", data, epochs, seed, quiet, batch_norm=bn,
                          init_scale=scale, label=label))
    return runs


# -- reporting ------------------------------------------------------------------------------
def summary_table(runs: list[RunResult]) -> str:
    lines = [f"{'optimizer':>20} | {'val acc':>7} | {'best epoch':>10} | {'train loss':>10} | "
             f"{'time (s)':>8}", "-" * 70]
    for r in runs:
        lines.append(f"{r.name:>20} | {r.final_val_acc:7.3f} | {r.best_epoch:10d} | "
                     f"{r.train_loss[-1]:10.4f} | {r.seconds:8.2f}")
    return "\n".join(lines)


def plot(runs: list[RunResult], finder, path: str) -> str | None:
    """Loss curves side by side, validation accuracy, the lr schedule and the LR finder."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    for r in runs:
        axes[0].plot(range(1, len(r.train_loss) + 1), r.train_loss, label=r.name)
        axes[1].plot(range(1, len(r.val_acc) + 1), r.val_acc, label=r.name)
    axes[0].set(title="training loss", xlabel="epoch", yscale="log")
    axes[1].set(title="validation accuracy", xlabel="epoch", ylim=(0.3, 1.0))
    axes[0].legend(fontsize=8)
    for r in runs:
        if len(set(r.lrs)) > 1:
            axes[2].plot(r.lrs, label=r.name)
    axes[2].set(title="learning-rate schedule", xlabel="step", ylabel="lr")
    axes[2].legend(fontsize=8)
    if finder is not None:
        finder.plot(axes[3], skip_start=10)
        axes[3].set(title="LR finder (Adam)")
    else:
        axes[3].axis("off")
    fig.suptitle("fastopt demo: the three-class spiral")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.abspath(path)


@contextlib.contextmanager
def _single_threaded():
    """One thread for numpy's BLAS and for fastopt while the demo trains.

    The demo's matrices are tiny (64 x 128): a second thread cannot pay for itself, and
    OpenBLAS's and OpenMP's spin-waiting pools, interleaved on a 2-core machine, made an
    epoch about 10x slower than single-threaded (measured: 10.4 s vs 0.24 s for 20 Adam
    epochs).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"), fo.threads(1):
        yield


def _run_all(data, optimizers, epochs, seed, bad_init, quiet):
    if bad_init:
        return bad_init_report(data, epochs, seed, quiet), None
    finder = find_lr(data, seed)
    where = ("no clear fall" if finder.suggested_lr is None
             else f"the loss falls fastest at lr = {finder.suggested_lr:.3g}")
    print(f"LR finder (Adam, {len(finder.losses)} steps): {where}\n")
    return [train(name, data, epochs, seed, quiet) for name in optimizers], finder


def run_demo(optimizers: list[str], epochs: int, seed: int, plot_path: str | None,
             bad_init: bool = False, quiet: bool = False) -> list[RunResult]:
    rng = np.random.default_rng(seed)
    x, y = spiral(rng=rng)
    data = split(x, y, 0.2, rng)
    print(f"fastopt {fo.__version__}: spiral data, {len(data[0][0])} training and "
          f"{len(data[1][0])} validation points, 3 classes; {fo.get_num_threads()} thread(s)\n")
    with _single_threaded():
        runs, finder = _run_all(data, optimizers, epochs, seed, bad_init, quiet)
    print()
    print(summary_table(runs))
    if "adam" in optimizers and not bad_init:
        adam = next(r for r in runs if r.name == OPTIMIZERS["adam"])
        print(f"\nAdam reaches a validation accuracy of {adam.final_val_acc:.3f}")
    if plot_path:
        where = plot(runs, finder, plot_path)
        if where:
            print(f"\nwrote {where}")
        else:
            print("\n(matplotlib is not installed: no plot; pip install matplotlib)")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastopt demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--optimizer", default="all",
                        help="one of " + ", ".join(OPTIMIZERS) + ", or 'all' (default)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs per optimizer (60)")
    parser.add_argument("--seed", type=int, default=0, help="data, init and batch seed (0)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    parser.add_argument("--plot-path", default="fastopt-demo.png", help=argparse.SUPPRESS)
    parser.add_argument("--bad-init", action="store_true",
                        help="show the tiny/huge initialisation failure modes instead")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run_from_args(args: argparse.Namespace) -> int:
    if args.optimizer == "all":
        names = list(OPTIMIZERS)
    elif args.optimizer in OPTIMIZERS:
        names = [args.optimizer]
    else:
        print(f"demo: unknown optimizer {args.optimizer!r}; choose from "
              f"{', '.join(OPTIMIZERS)} or all", file=sys.stderr)
        return 2
    if args.epochs < 1:
        print("demo: --epochs must be at least 1", file=sys.stderr)
        return 2
    run_demo(names, args.epochs, args.seed, None if args.no_plot else args.plot_path,
             bad_init=args.bad_init, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
