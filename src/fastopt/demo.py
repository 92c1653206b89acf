"""python -m fastopt demo: the lecture's optimizers, side by side, in one figure.

A small network (two hidden layers of 128 units with BatchNorm, ReLU and dropout; numpy
for the matrix products, fastopt for everything else) learns a three-class spiral with
one and a half turns per arm, 30 epochs per optimizer: SGD, SGD with momentum, Nesterov,
AdaGrad, RMSProp and Adam. Every optimizer follows the same schedule shape (linear warmup
over the first 5% of the steps, then cosine decay to 1% of the peak) from the same data,
initialisation and batch order. The peak rates: 0.1 for the SGD family (the ResNet rate),
torch's default 0.01 for AdaGrad and RMSProp, and for Adam the rate an LR range test
picks first (the learning rate at the lowest smoothed loss, divided by 10).

The figure (fastopt-demo.png, or --out PATH) has six panels: the spiral with the decision
regions of the most accurate model; training loss per optimizer; validation accuracy,
zoomed to where the curves differ; the learning-rate schedules, in epochs like the other
panels; the LR range test with the chosen rate; and each optimizer's path on a 2-D ravine
(a quadratic whose curvature is 40 times larger across than along it): SGD zig-zags,
momentum overshoots, Nesterov damps the swing across the ravine, AdaGrad stalls, RMSProp
and Adam rescale each coordinate.

--bad-init shows the initialisation failure modes instead, in its own figure
(fastopt-demo-bad-init.png, or --out PATH): the standard deviation of the activations
and of the back-propagated gradients through a 10-layer ReLU stack for tiny, Xavier, He
and huge initial weights, and what a tiny initialisation does to training with and
without BatchNorm.

The figures need matplotlib (pip install "fastopt[demo]"); without it the demo prints its
tables only.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import fastopt as fo

DTYPE = np.float32
HIDDEN = 128
BATCH = 64
FINDER_BATCH = 256
EPOCHS = 30
FIGURE = "fastopt-demo.png"
BAD_INIT_FIGURE = "fastopt-demo-bad-init.png"

__all__ = [
    "spiral",
    "split",
    "SpiralNet",
    "OPTIMIZERS",
    "RunResult",
    "DemoResult",
    "train",
    "find_lr",
    "ravine",
    "ravine_paths",
    "RAVINE_OPTIMIZERS",
    "INITS",
    "activation_stds",
    "run_demo",
    "main",
]


# -- data -----------------------------------------------------------------------------------
def spiral(n_per_class: int = 300, classes: int = 3, noise: float = 0.1, turns: float = 1.5,
           rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class (cs231n's toy data set, with more turns).

    Arm ``k`` starts at angle ``2 pi k / classes`` and winds ``turns`` times around the
    origin while its radius grows from 0.05 to 1; each point's angle gets Gaussian noise of
    standard deviation ``noise`` (radians).

    Parameters
    ----------
    n_per_class : int, default 300
        Points per class.
    classes : int, default 3
        Number of classes (arms).
    noise : float, default 0.1
        Standard deviation of the angular noise, in radians.
    turns : float, default 1.5
        Turns of each arm; cs231n's spiral has about 0.64 (4 radians).
    rng : numpy.random.Generator, optional
        Source of the noise; ``numpy.random.default_rng(0)`` when None.

    Returns
    -------
    x : ndarray of shape (n_per_class * classes, 2), float32
        The points, class by class.
    y : ndarray of shape (n_per_class * classes,), int
        The class of each point.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.demo import spiral
    >>> x, y = spiral(n_per_class=100, rng=np.random.default_rng(1))
    >>> x.shape, x.dtype, np.bincount(y).tolist()
    ((300, 2), dtype('float32'), [100, 100, 100])
    >>> bool(np.abs(x).max() <= 1.0)
    True
    """
    rng = np.random.default_rng(0) if rng is None else rng
    xs, ys = [], []
    radius = np.linspace(0.05, 1.0, n_per_class)
    for k in range(classes):
        start = 2 * np.pi * k / classes
        angle = np.linspace(start, start + 2 * np.pi * turns, n_per_class)
        angle = angle + rng.standard_normal(n_per_class) * noise
        xs.append(np.c_[radius * np.sin(angle), radius * np.cos(angle)])
        ys.append(np.full(n_per_class, k))
    return np.concatenate(xs).astype(DTYPE), np.concatenate(ys)


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, rng: np.random.Generator):
    """A random train/validation split.

    Parameters
    ----------
    x, y : ndarray
        Points and labels, the same length.
    val_fraction : float
        Fraction of the points that go to the validation set.
    rng : numpy.random.Generator
        Draws the permutation.

    Returns
    -------
    tuple
        ``((x_train, y_train), (x_val, y_val))``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.demo import spiral, split
    >>> rng = np.random.default_rng(0)
    >>> (x_tr, y_tr), (x_val, y_val) = split(*spiral(rng=rng), 0.2, rng)
    >>> len(x_tr), len(x_val)
    (720, 180)
    """
    order = rng.permutation(len(x))
    n_val = int(round(len(x) * val_fraction))
    val, train_ = order[:n_val], order[n_val:]
    return (x[train_], y[train_]), (x[val], y[val])


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
    """affine - [BatchNorm] - ReLU - dropout - affine - [BatchNorm] - ReLU - affine.

    numpy computes the matrix products, ReLU and softmax; fastopt's :class:`~fastopt.nn.BatchNorm`
    and :class:`~fastopt.nn.Dropout` the rest. ``params`` and ``grads`` are two lists of
    arrays in the same order, ready for a fastopt optimizer.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the initial weights and the dropout seed.
    hidden : int, default 128
        Width of both hidden layers.
    batch_norm : bool, default True
        BatchNorm after both hidden affine layers.
    dropout : float, default 0.1
        Drop probability after the first hidden layer (0: no dropout).
    init_scale : float, optional
        Standard deviation of the initial weights; He initialisation when None.
    classes : int, default 3
        Number of outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt as fo
    >>> from fastopt.demo import SpiralNet, spiral
    >>> x, y = spiral(n_per_class=50)
    >>> net = SpiralNet(np.random.default_rng(0), hidden=16)
    >>> opt = fo.Adam(net.params, lr=1e-2)
    >>> first = net.loss(x, y)
    >>> for _ in range(50):
    ...     _ = net.loss_and_grads(x, y)
    ...     _ = opt.step(net.grads)
    >>> bool(net.loss(x, y) < first)
    True
    """

    def __init__(self, rng: np.random.Generator, hidden: int = HIDDEN, batch_norm: bool = True,
                 dropout: float = 0.1, init_scale: float | None = None,
                 classes: int = 3) -> None:
        def weight(shape):
            if init_scale is None:
                return fo.init.he(shape, rng, dtype=DTYPE)
            return (rng.standard_normal(shape) * init_scale).astype(DTYPE)

        self.batch_norm = batch_norm
        self.dropout = dropout
        self.layers = [weight((2, hidden)), weight((hidden, hidden)), weight((hidden, classes))]
        self.biases = [np.zeros(hidden, DTYPE), np.zeros(hidden, DTYPE), np.zeros(classes, DTYPE)]
        self.bn = [fo.nn.BatchNorm(hidden, dtype=DTYPE) for _ in range(2)] if batch_norm else []
        self.drop = fo.nn.Dropout(dropout, seed=int(rng.integers(2**31))) if dropout else None
        self.params = self.layers + self.biases + [a for bn in self.bn for a in bn.params]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Class scores (before softmax) of the rows of `x`."""
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
        """Fill ``grads`` (same order as ``params``) from d loss / d scores."""
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
        """Training-mode cross-entropy of a batch; fills ``grads``."""
        loss, dscores = softmax_cross_entropy(self.forward(x, training=True), y)
        self.backward(dscores)
        return loss

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Cross-entropy in evaluation mode (running BatchNorm stats, no dropout)."""
        return softmax_cross_entropy(self.forward(x, training=False), y)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely class of each row of `x` (evaluation mode)."""
        return self.forward(x, training=False).argmax(axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """Fraction of the rows of `x` classified as `y` (evaluation mode)."""
        return float((self.predict(x) == y).mean())


# -- optimizers -----------------------------------------------------------------------------
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class OptimizerSpec:
    """How the demo builds one optimizer: its label, class and options, and its peak lr.

    ``peak_lr`` None means the rate comes from the LR range test.
    """

    label: str
    cls: type
    options: dict[str, Any]
    peak_lr: float | None

    def build(self, params: list[np.ndarray], lr: fo.schedules.ScheduleLike,
              state_dtype: str | None = None,
              param_rounding: str = "stochastic") -> fo.Optimizer:
        opt: fo.Optimizer = self.cls(params, lr=lr, weight_decay=WEIGHT_DECAY,
                                     state_dtype=state_dtype, param_rounding=param_rounding,
                                     **self.options)
        return opt


#: The demo's optimizers: short name -> how it is built. The SGD family runs at 0.1 (the
#: ResNet rate), AdaGrad and RMSProp at torch's default 0.01, Adam at the LR finder's rate.
OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("SGD", fo.SGD, {}, 0.1),
    "momentum": OptimizerSpec("SGD+momentum", fo.SGD, {"momentum": 0.9}, 0.1),
    "nesterov": OptimizerSpec("Nesterov", fo.SGD, {"momentum": 0.9, "nesterov": True}, 0.1),
    "adagrad": OptimizerSpec("AdaGrad", fo.Adagrad, {}, 0.01),
    "rmsprop": OptimizerSpec("RMSProp", fo.RMSprop, {}, 0.01),
    "adam": OptimizerSpec("Adam", fo.Adam, {}, None),
}


def warmup_cosine(peak: float, total_steps: int) -> fo.schedules.Schedule:
    """Linear warmup over the first 5% of steps, then cosine decay to 1% of the peak."""
    warm = max(1, total_steps // 20)
    return fo.schedules.warmup(
        fo.schedules.cosine(peak, T_max=max(1, total_steps - warm), eta_min=peak / 100,
                            clamp=True),
        warm, start_factor=0.1, shift=True)


# -- training -------------------------------------------------------------------------------
@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """One thread for numpy's BLAS and for fastopt while the demo trains.

    The demo's matrices are tiny (64 x 128): a second thread cannot pay for itself, and
    OpenBLAS's and OpenMP's spin-waiting pools, interleaved on a 2-core machine, made an
    epoch about 10x slower than single-threaded (measured: 10.4 s vs 0.24 s for 20 Adam
    epochs).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"), fo.threads(1):
        yield


@dataclass
class RunResult:
    """One optimizer's training run.

    Parameters
    ----------
    name : str
        The run's label.
    train_loss, train_acc, val_acc : list of float
        Training loss, training and validation accuracy after each epoch.
    lrs : list of float
        The learning rate of each step.
    steps_per_epoch : int
        Steps per epoch (to plot `lrs` against epochs).
    peak_lr : float
        The schedule's peak rate.
    best_epoch : int
        The epoch (from 1) with the best validation accuracy, whose parameters were kept.
    final_val_acc : float
        Validation accuracy of the kept parameters.
    seconds : float
        Training time.
    model : SpiralNet or None
        The trained model, restored to `best_epoch`.

    Examples
    --------
    >>> from fastopt.demo import RunResult
    >>> RunResult("SGD").train_loss
    []
    """

    name: str
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    steps_per_epoch: int = 1
    peak_lr: float = 0.0
    best_epoch: int = 0
    final_val_acc: float = 0.0
    seconds: float = 0.0
    model: SpiralNet | None = None


class Progress:
    """A tqdm bar when tqdm is installed, else a line every 10 epochs (nothing if quiet)."""

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


def train(name: str, data, epochs: int, seed: int, peak_lr: float | None = None,
          quiet: bool = True, batch_norm: bool = True, init_scale: float | None = None,
          label: str | None = None, state_dtype: str | None = None,
          param_dtype: str | None = None, param_rounding: str = "stochastic") -> RunResult:
    """Train a :class:`SpiralNet` with one of :data:`OPTIMIZERS`; keep the best epoch.

    Mini-batches of 64 (full batches only), the warmup + cosine schedule up to
    `peak_lr` (the optimizer's own rate when None), weight decay 1e-4, and early
    stopping in its "train to the end, keep the best" form on validation accuracy.

    Parameters
    ----------
    name : str
        A key of :data:`OPTIMIZERS`.
    data : tuple
        ``((x_train, y_train), (x_val, y_val))``.
    epochs : int
        Passes over the training set.
    seed : int
        Seeds the initial weights, dropout and the batch order.
    peak_lr : float, optional
        Peak learning rate; required for an optimizer whose spec has none (Adam).
    quiet : bool, default True
        No progress output.
    batch_norm, init_scale
        Passed to :class:`SpiralNet`.
    label : str, optional
        Name of the run; the optimizer's label when None.
    state_dtype : {None, "bfloat16", "int8"}, optional
        How the optimizer stores its state (its ``state_dtype``).
    param_dtype : {None, "bfloat16"}, optional
        "bfloat16": the optimizer keeps the weights as bfloat16 arrays (needs ml_dtypes);
        the network computes in float32 from their values.
    param_rounding : {"stochastic", "nearest", "kahan"}, default "stochastic"
        How the optimizer rounds bfloat16 weights after each update (its
        ``param_rounding``).

    Returns
    -------
    RunResult

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.demo import spiral, split, train
    >>> rng = np.random.default_rng(0)
    >>> data = split(*spiral(n_per_class=100, turns=0.5, rng=rng), 0.2, rng)
    >>> run = train("momentum", data, epochs=5, seed=0)
    >>> len(run.val_acc), len(run.lrs) == 5 * run.steps_per_epoch
    (5, True)
    >>> bool(run.final_val_acc > 0.5)
    True
    """
    spec = OPTIMIZERS[name]
    peak = spec.peak_lr if peak_lr is None else peak_lr
    if peak is None:
        raise ValueError(f"peak_lr: {name} has no default rate; give one (the LR finder's)")
    (x_tr, y_tr), (x_val, y_val) = data
    rng = np.random.default_rng(seed)
    model = SpiralNet(rng, batch_norm=batch_norm, init_scale=init_scale)
    steps_per_epoch = len(x_tr) // BATCH  # full batches only: BatchNorm on a 16-row tail is noise
    stored = model.params        # what the optimizer updates: the weights or bf16 copies
    if param_dtype is not None:
        stored = _bfloat16_params(model.params, param_dtype)
    opt = spec.build(stored, warmup_cosine(peak, epochs * steps_per_epoch), state_dtype,
                     param_rounding)
    keeper = fo.train.EarlyStopping(patience=None, mode="max")
    if label is None:
        label = spec.label if state_dtype is None else f"{spec.label} ({state_dtype} state)"
        if param_dtype is not None:
            label += f" ({param_dtype} params, {param_rounding})"
    result = RunResult(label, steps_per_epoch=steps_per_epoch, peak_lr=peak)
    progress = Progress(epochs, result.name, quiet)
    order_rng = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    with _single_threaded():  # tiny matrices: a second thread only costs (see there)
        for epoch in range(1, epochs + 1):
            order = order_rng.permutation(len(x_tr))
            for b in range(steps_per_epoch):
                idx = order[b * BATCH:(b + 1) * BATCH]
                model.loss_and_grads(x_tr[idx], y_tr[idx])
                result.lrs.append(current_lr(opt))
                opt.step(model.grads)
                if stored is not model.params:
                    for w, b in zip(model.params, stored):
                        np.copyto(w, b, casting="unsafe")
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
    result.model = model
    return result


def _bfloat16_params(params: list[np.ndarray], param_dtype: str) -> list[np.ndarray]:
    """bfloat16 copies of `params` (rounded to nearest), which the float32 `params` then
    take as their values: the weights start where the optimizer's copies do."""
    if param_dtype != "bfloat16":
        raise ValueError(f"param_dtype: expected None or 'bfloat16', got {param_dtype!r}")
    import ml_dtypes

    stored = [p.astype(ml_dtypes.bfloat16) for p in params]
    for w, b in zip(params, stored):
        np.copyto(w, b, casting="unsafe")
    return stored


def current_lr(opt: fo.Optimizer) -> float:
    """The learning rate the next step of the first param group will use."""
    group = opt.param_groups[0]
    lr = group["lr"]
    return float(lr(group["step"]) if callable(lr) else lr)


def find_lr(data, seed: int) -> tuple[Any, float]:
    """The lecture's step 3: an LR range test with Adam on a fresh model.

    100 steps on random batches of 256 at rates growing geometrically from 1e-4 to 10
    (stopping when the loss diverges), on a copy of the model :func:`train` builds. The
    batches are 4 times the training batch: with 64 rows the loss curve was so noisy that
    the rate this picks moved between 1e-3 and 0.1 with the seed (0.014 to 0.077 with 256,
    seeds 0-9).

    Parameters
    ----------
    data : tuple
        ``((x_train, y_train), (x_val, y_val))``.
    seed : int
        Seeds the model and the batches.

    Returns
    -------
    result : fastopt.train.LRFinderResult
        The rates tried and the losses.
    chosen_lr : float
        The rate at the lowest smoothed loss divided by 10, Adam's peak rate in the demo.
        (The range test's own ``suggested_lr``, the steepest fall, lands within the first
        steps on this data, where a fresh network's loss falls at any rate.)

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.demo import find_lr, spiral, split
    >>> rng = np.random.default_rng(0)
    >>> data = split(*spiral(rng=rng), 0.2, rng)
    >>> result, chosen = find_lr(data, seed=0)
    >>> bool(1e-3 < chosen < 1.0), result.diverged
    (True, True)
    """
    (x_tr, y_tr), _ = data
    model = SpiralNet(np.random.default_rng(seed))
    opt = OPTIMIZERS["adam"].build(model.params, 1e-3)
    batch_rng = np.random.default_rng(seed + 2)

    def step(lr: float) -> float:
        idx = batch_rng.integers(0, len(x_tr), FINDER_BATCH)
        loss = model.loss_and_grads(x_tr[idx], y_tr[idx])
        opt.param_groups[0]["lr"] = lr
        opt.step(model.grads)
        return loss

    with _single_threaded():
        result = fo.train.lr_finder(step, start_lr=1e-4, end_lr=10.0, num=100)
    usable = len(result.lrs) - 1 if result.diverged else len(result.lrs)
    lowest = int(np.argmin(result.smoothed_losses[:usable]))
    return result, float(result.lrs[lowest]) / 10


# -- the lecture's picture: paths on a ravine -------------------------------------------------
RAVINE_CURVATURE = (1.0, 40.0)   # along, across: condition number 40
RAVINE_START = (-9.0, 2.0)

#: Each optimizer's rate on the ravine: SGD just below its stability limit (2 / 40), the
#: momentum methods at a rate whose long-run step (lr / (1 - 0.9)) is about SGD's,
#: the adaptive ones at rates that reach the minimum's neighbourhood in 50 steps.
RAVINE_OPTIMIZERS: dict[str, Callable[[list[np.ndarray]], fo.Optimizer]] = {
    "sgd": lambda p: fo.SGD(p, lr=0.045),
    "momentum": lambda p: fo.SGD(p, lr=0.01, momentum=0.9),
    "nesterov": lambda p: fo.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    "adagrad": lambda p: fo.Adagrad(p, lr=0.5),
    "rmsprop": lambda p: fo.RMSprop(p, lr=0.2, alpha=0.9),
    "adam": lambda p: fo.Adam(p, lr=0.3),
}


def ravine(xy: np.ndarray) -> np.ndarray:
    """The ravine ``f(x, y) = (a x**2 + b y**2) / 2``, ``(a, b) = RAVINE_CURVATURE = (1, 40)``.

    Parameters
    ----------
    xy : ndarray of shape (..., 2)
        Points.

    Returns
    -------
    ndarray of shape (...)
        f at each point.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.demo import ravine
    >>> ravine(np.array([[2.0, 0.0], [0.0, 1.0]]))
    array([ 2., 20.])
    """
    a, b = RAVINE_CURVATURE
    result: np.ndarray = 0.5 * (a * xy[..., 0] ** 2 + b * xy[..., 1] ** 2)
    return result


def ravine_paths(steps: int = 50) -> dict[str, np.ndarray]:
    """Each demo optimizer's path on an ill-conditioned 2-D quadratic, run by fastopt.

    The surface is ``f(x, y) = (x**2 + 40 y**2) / 2``, minimum at the origin, started
    from (-9, 2); rates are in :data:`RAVINE_OPTIMIZERS`.

    Parameters
    ----------
    steps : int, default 50
        Optimizer steps per path.

    Returns
    -------
    dict
        Short optimizer name -> array of shape (steps + 1, 2): the start and the point
        after each step.

    Examples
    --------
    >>> from fastopt.demo import ravine_paths
    >>> paths = ravine_paths(steps=50)
    >>> paths["sgd"].shape
    (51, 2)
    >>> sgd_y = paths["sgd"][:6, 1]          # SGD zig-zags across the ravine
    >>> [bool(v > 0) for v in sgd_y]
    [True, False, True, False, True, False]
    >>> bool(abs(paths["adagrad"][-1, 0]) > 3)   # AdaGrad stalls far from the minimum
    True
    """
    a, b = RAVINE_CURVATURE
    paths = {}
    for name, make in RAVINE_OPTIMIZERS.items():
        p = np.array(RAVINE_START, np.float64)
        opt = make([p])
        path = [p.copy()]
        for _ in range(steps):
            opt.step([np.array([a * p[0], b * p[1]])])
            path.append(p.copy())
        paths[name] = np.array(path)
    return paths


# -- initialisation failure modes -------------------------------------------------------------
#: The initialisations ``--bad-init`` compares: name -> ``make(shape, rng)``.
INITS: dict[str, Callable[[tuple[int, int], np.random.Generator], np.ndarray]] = {
    "tiny (std 0.01)": lambda s, r: (r.standard_normal(s) * 0.01).astype(DTYPE),
    "Xavier": lambda s, r: fo.init.xavier(s, r, dtype=DTYPE, distribution="normal"),
    "He": lambda s, r: fo.init.he(s, r, dtype=DTYPE),
    "huge (std 1)": lambda s, r: r.standard_normal(s).astype(DTYPE),
}


def activation_stds(init: str, rng: np.random.Generator, depth: int = 10, width: int = 256,
                    n: int = 512) -> tuple[list[float], list[float]]:
    """Std of the activations and of the gradients after each layer of a deep ReLU stack.

    A batch of ``n`` standard-normal rows goes forward through ``depth`` layers
    ``h = relu(h @ W)`` (no BatchNorm), then a standard-normal gradient goes back.

    Parameters
    ----------
    init : str
        A key of :data:`INITS`: "tiny (std 0.01)", "Xavier", "He" or "huge (std 1)".
    rng : numpy.random.Generator
        Draws the input, the weights and the output gradient.
    depth, width, n : int
        Layers, units per layer and rows of the batch.

    Returns
    -------
    forward : list of float
        Standard deviation of each layer's output, first layer first.
    backward : list of float
        Standard deviation of the gradient with respect to each layer's input, first
        layer first.

    Examples
    --------
    Each tiny layer shrinks the signal by about ``0.01 * sqrt(256 / 2) = 0.11``; He keeps it:

    >>> import numpy as np
    >>> from fastopt.demo import activation_stds
    >>> tiny, _ = activation_stds("tiny (std 0.01)", np.random.default_rng(0))
    >>> he, he_grads = activation_stds("He", np.random.default_rng(0))
    >>> bool(tiny[-1] < 1e-8), bool(0.1 < he[-1] < 10), bool(0.1 < he_grads[0] < 10)
    (True, True, True)
    """
    make = INITS[init]
    h = rng.standard_normal((n, width)).astype(DTYPE)
    weights, inputs, forward = [], [], []
    for _ in range(depth):
        w = make((width, width), rng)
        inputs.append(h)
        h = np.maximum(h @ w, 0)
        weights.append(w)
        forward.append(float(h.std()))
    grad = rng.standard_normal(h.shape).astype(DTYPE)
    backward = []
    for w, x in zip(reversed(weights), reversed(inputs)):
        grad = (grad * ((x @ w) > 0)) @ w.T
        backward.append(float(grad.std()))
    return forward, backward[::-1]


BAD_INIT_RUNS = (("tiny init, no BatchNorm", 0.01, False), ("He init, no BatchNorm", None, False),
                 ("tiny init + BatchNorm", 0.01, True))


def bad_init_runs(data, epochs: int, seed: int, quiet: bool) -> list[RunResult]:
    """SGD+momentum on the spiral from a tiny and a He initialisation, with and without BN."""
    return [train("momentum", data, epochs, seed, quiet=quiet, batch_norm=bn, init_scale=scale,
                  label=label) for label, scale, bn in BAD_INIT_RUNS]


# -- reporting ------------------------------------------------------------------------------
def state_dtype_table(pairs: list[tuple[RunResult, RunResult]]) -> str:
    """Full-precision state against low-precision state, one line per optimizer: final
    training loss (and its ratio), validation accuracy (and the difference in points)."""
    lines = [f"{'optimizer':>34} | {'train loss':>10} | {'loss ratio':>10} | {'val acc':>7} | "
             f"{'diff (pts)':>10}", "-" * 84]
    for full, low in pairs:
        ratio = low.train_loss[-1] / full.train_loss[-1]
        diff = 100 * (low.final_val_acc - full.final_val_acc)
        lines.append(f"{full.name:>34} | {full.train_loss[-1]:10.4f} | {'':>10} | "
                     f"{full.final_val_acc:7.3f} | {'':>10}")
        lines.append(f"{low.name:>34} | {low.train_loss[-1]:10.4f} | {ratio:10.4f} | "
                     f"{low.final_val_acc:7.3f} | {diff:+10.1f}")
    return "\n".join(lines)


def summary_table(runs: list[RunResult]) -> str:
    """One line per run: peak lr, validation accuracy, best epoch, loss and time."""
    lines = [f"{'optimizer':>24} | {'peak lr':>7} | {'val acc':>7} | {'best epoch':>10} | "
             f"{'train loss':>10} | {'time (s)':>8}", "-" * 84]
    for r in runs:
        lines.append(f"{r.name:>24} | {r.peak_lr:7.3g} | {r.final_val_acc:7.3f} | "
                     f"{r.best_epoch:10d} | {r.train_loss[-1]:10.4f} | {r.seconds:8.2f}")
    return "\n".join(lines)


@dataclass
class DemoResult:
    """What :func:`run_demo` computed.

    Parameters
    ----------
    runs : list of RunResult
        One per optimizer (per initialisation with ``bad_init``).
    lr_finder : fastopt.train.LRFinderResult or None
        The LR range test.
    chosen_lr : float or None
        The rate it chose, Adam's peak rate.
    figure : str or None
        Absolute path of the figure written, if any.
    init_stds : dict
        With ``bad_init``: initialisation name -> (activation stds, gradient stds) per
        layer.
    state_dtype_runs : list of RunResult
        With ``state_dtype``: the runs with low-precision optimizer state.

    Examples
    --------
    >>> from fastopt.demo import DemoResult
    >>> DemoResult(runs=[]).figure is None
    True
    """

    runs: list[RunResult]
    lr_finder: Any = None
    chosen_lr: float | None = None
    figure: str | None = None
    init_stds: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    state_dtype_runs: list[RunResult] = field(default_factory=list)


def run_demo(optimizers: list[str], epochs: int = EPOCHS, seed: int = 0,
             out: str | None = "auto", bad_init: bool = False, quiet: bool = False,
             state_dtype: str | None = None) -> DemoResult:
    """Train, print the tables and write the figure: what ``python -m fastopt demo`` does.

    Parameters
    ----------
    optimizers : list of str
        Keys of :data:`OPTIMIZERS`, in the order to train them.
    epochs : int, default 30
        Epochs per optimizer.
    seed : int, default 0
        Seeds the data, the split, the initial weights and the batch order.
    out : str or None, default "auto"
        Where to write the figure; None: no figure; "auto": "fastopt-demo.png", or
        "fastopt-demo-bad-init.png" with ``bad_init``.
    bad_init : bool, default False
        Show the initialisation failure modes instead of the optimizers.
    quiet : bool, default False
        No progress bars.
    state_dtype : {None, "bfloat16", "int8"}, optional
        Also train every optimizer with its state stored this way and print the
        comparison with full-precision state (:func:`state_dtype_table`).

    Returns
    -------
    DemoResult
        ``figure`` is the figure's absolute path, or None when none was written
        (matplotlib missing or ``out=None``).

    Examples
    --------
    >>> from fastopt.demo import run_demo
    >>> result = run_demo(["sgd"], epochs=2, out=None, quiet=True)  # doctest: +ELLIPSIS
    fastopt ...: spiral data, 720 training and 180 validation points, 3 classes...
    >>> [run.name for run in result.runs], result.figure
    (['SGD'], None)
    """
    rng = np.random.default_rng(seed)
    x, y = spiral(rng=rng)
    data = split(x, y, 0.2, rng)
    print(f"fastopt {fo.__version__}: spiral data, {len(data[0][0])} training and "
          f"{len(data[1][0])} validation points, 3 classes; batch {BATCH}, {epochs} epochs\n")
    if bad_init:
        return _bad_init(data, epochs, seed, quiet, BAD_INIT_FIGURE if out == "auto" else out)
    finder, chosen = find_lr(data, seed)
    print(f"LR range test (Adam, {len(finder.lrs)} steps): lowest smoothed loss at "
          f"lr = {10 * chosen:.3g}; Adam's peak rate: {chosen:.3g}\n")
    runs = [train(name, data, epochs, seed, chosen if name == "adam" else None, quiet)
            for name in optimizers]
    print(summary_table(runs))
    best = max(runs, key=lambda r: r.final_val_acc)
    print(f"\nbest validation accuracy: {best.name}, {best.final_val_acc:.3f}")
    result = DemoResult(runs, finder, chosen)
    if state_dtype is not None:
        low = [train(name, data, epochs, seed, chosen if name == "adam" else None, quiet,
                     state_dtype=state_dtype) for name in optimizers]
        print(f"\noptimizer state in {state_dtype} against full precision (same seeds):")
        print(state_dtype_table(list(zip(runs, low))))
        result.state_dtype_runs = low
    if out:
        from fastopt import _demo_plots

        result.figure = _demo_plots.write(
            _demo_plots.main_figure, FIGURE if out == "auto" else out, runs=runs, data=data,
            finder=finder, chosen_lr=chosen, paths=ravine_paths(), epochs=epochs)
        _report_figure(result.figure)
    return result


def _bad_init(data, epochs: int, seed: int, quiet: bool, out: str | None) -> DemoResult:
    rng = np.random.default_rng(seed)
    stds = {name: activation_stds(name, rng) for name in INITS}
    print("Std of the activations after each layer of a 10-layer ReLU stack (width 256, "
          "no BatchNorm):")
    for name, (forward, _) in stds.items():
        print(f"  {name:>16}: " + " ".join(f"{s:9.3g}" for s in forward))
    print("Tiny weights shrink the signal to zero layer by layer (and the gradients with it);")
    print("huge ones blow it up; He initialisation keeps it at the same scale in every layer.\n")
    runs = bad_init_runs(data, epochs, seed, quiet)
    print(summary_table(runs))
    result = DemoResult(runs, init_stds=stds)
    if out:
        from fastopt import _demo_plots

        result.figure = _demo_plots.write(_demo_plots.bad_init_figure, out, stds=stds, runs=runs)
        _report_figure(result.figure)
    return result


def _report_figure(path: str | None) -> None:
    if path:
        print(f"\nwrote {path}")
    else:
        print('\n(matplotlib is not installed: no figure; pip install "fastopt[demo]")')


# -- command line ---------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options, for ``python -m fastopt demo`` and :func:`main`."""
    parser.add_argument("--optimizer", default="all",
                        help="one of " + ", ".join(OPTIMIZERS) + ", or 'all' (default)")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help=f"epochs per optimizer ({EPOCHS})")
    parser.add_argument("--seed", type=int, default=0, help="data, init and batch seed (0)")
    parser.add_argument("--out", metavar="PATH", default=None,
                        help=f"where to write the figure ({FIGURE}; with --bad-init "
                             f"{BAD_INIT_FIGURE})")
    parser.add_argument("--no-plot", action="store_true", help="write no figure")
    parser.add_argument("--bad-init", action="store_true",
                        help="show the initialisation failure modes instead")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--state-dtype", choices=("bfloat16", "int8"), default=None,
                        help="also train with the optimizer state in bfloat16 or int8 and "
                             "compare with full precision")


def run_from_args(args: argparse.Namespace) -> int:
    """Run the demo for parsed arguments; the exit status (2 for a usage error)."""
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
    out = None if args.no_plot else (args.out or "auto")
    run_demo(names, args.epochs, args.seed, out, bad_init=args.bad_init, quiet=args.quiet,
             state_dtype=args.state_dtype)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m fastopt demo``: parse `argv` and run.

    Parameters
    ----------
    argv : list of str, optional
        The command line's arguments; ``sys.argv[1:]`` when None.

    Returns
    -------
    int
        The exit status: 0, or 2 for a usage error.

    Examples
    --------
    >>> from fastopt.demo import main
    >>> main(["--optimizer", "lbfgs"])
    2
    """
    parser = argparse.ArgumentParser(prog="python -m fastopt demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
