"""Dropout, DropConnect and batch normalization, forward and backward, on numpy arrays.

The hot loops are C with OpenMP (``csrc/dropout.c``, ``csrc/batchnorm.c``); results are
bitwise identical for any number of threads.

**p is the DROP probability** everywhere in this module, as in torch and keras
(``p=0.2`` drops 20% of the elements). Code written for the keep probability (cs231n's
``dropout_forward(x, {"p": keep})``) must pass ``1 - keep``.

Randomness is counter-based (Philox4x32-10): the keep decision of element ``i`` is a pure
function of ``(seed, stream, i)``, so masks are reproducible, independent of the thread
count, and can be regenerated instead of stored. See :class:`DropoutMask`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastopt import _kernels
from fastopt._validation import (
    check_bool,
    check_float_dtype,
    check_int,
    check_seed,
    check_state_dict,
    check_uint64,
)

__all__ = [
    "dropout",
    "dropout_backward",
    "dropconnect",
    "dropconnect_backward",
    "DropoutMask",
    "Dropout",
    "batch_norm",
    "batch_norm_backward",
    "BatchNormCache",
    "BatchNorm",
]

SeedLike = int | np.integer | np.random.Generator | None

_seed_source: np.random.Generator | None = None


def _check_dropout_args(training: Any, seed: SeedLike, stream: Any) -> None:
    """Check the arguments a dropout call may not look at (training=False, p=0), so that a
    bad one fails at once rather than when training starts."""
    check_bool(training, "training")
    check_seed(seed, "seed")
    check_uint64(stream, "stream")


def _resolve_seed(seed: SeedLike) -> int:
    """An int seed for Philox: `seed` itself, or 64 bits drawn from a Generator (None: from
    a process-wide ``np.random.default_rng()`` seeded from OS entropy)."""
    global _seed_source
    if seed is None:
        if _seed_source is None:
            _seed_source = np.random.default_rng()
        seed = _seed_source
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    # here too: Dropout(seed=-1) fails at once, not at forward
    return check_uint64(check_seed(seed, "seed"), "seed")


# -- dropout -------------------------------------------------------------------------------


class DropoutMask:
    """The keep decisions of one dropout (or DropConnect) call.

    Always holds ``(seed, stream, shape, p)``, enough to regenerate every decision; with
    ``pack=True`` (the default) it also holds them packed one bit per element
    (``bits``: uint64, bit ``i % 64`` of word ``i // 64``), which makes the backward pass a
    pure streaming pass. Measured on (1024, 4096) float32, 1 thread, best of 80 (AVX-512
    Zen 4): backward from bits 1.27 ms, at memory bandwidth (``np.copyto`` of the array:
    1.38 ms), against 2.04 ms regenerating; packing costs the forward 2.34 ms against 2.03 ms,
    so forward + backward is 3.6 ms packed against 4.1 ms regenerated, for n/8 bytes (3% of a
    float32 activation). ``pack=False`` stores nothing per element, for when memory matters
    more than speed.

    A mask with ``p == 0`` keeps everything (what ``training=False`` returns).

    Parameters
    ----------
    shape : tuple of int
        Shape of the array the mask applies to.
    p : float
        Drop probability.
    seed, stream : int
        Philox key and stream that generated (and regenerate) the decisions.
    bits : ndarray of uint64, optional
        The packed decisions; None to regenerate them when needed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> y, mask = nn.dropout(np.ones(1000), p=0.2, seed=3)
    >>> mask.shape, mask.p, mask.scale
    ((1000,), 0.2, 1.25)
    >>> keep = mask.keep()                  # a bool array of the mask's shape
    >>> keep.dtype, int(keep.sum()), mask.nbytes   # 1000 decisions in 16 uint64 words
    (dtype('bool'), 794, 128)
    """

    __slots__ = ("shape", "p", "seed", "stream", "bits")

    def __init__(
        self,
        shape: tuple[int, ...],
        p: float,
        seed: int = 0,
        stream: int = 0,
        bits: np.ndarray | None = None,
    ) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.p = float(p)
        self.seed = int(seed)
        self.stream = int(stream)
        self.bits = bits

    @property
    def size(self) -> int:
        """Number of elements the mask covers."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def scale(self) -> float:
        """What a kept element is multiplied by: ``1 / (1 - p)``."""
        return 1.0 / (1.0 - self.p)

    @property
    def nbytes(self) -> int:
        """Bytes held per element: the packed bits, or 0 when they are regenerated."""
        return 0 if self.bits is None else int(self.bits.nbytes)

    def keep(self) -> np.ndarray:
        """The keep decisions as a bool array of the mask's shape."""
        n = self.size
        if self.p == 0.0:
            return np.ones(self.shape, bool)
        if self.bits is not None:
            raw = self.bits.astype("<u8", copy=False).view(np.uint8)
            return np.unpackbits(raw, count=n, bitorder="little").astype(bool).reshape(self.shape)
        threshold = min(int(self.p * 2.0**32), 2**32 - 1)
        words: np.ndarray = _kernels.philox_stream(n, self.seed, self.stream)
        return (words >= threshold).reshape(self.shape)

    def __repr__(self) -> str:
        how = "packed bits" if self.bits is not None else "regenerated"
        return (
            f"DropoutMask(shape={self.shape}, p={self.p}, seed={self.seed}, "
            f"stream={self.stream}, {how})"
        )


def dropout(
    x: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    seed: SeedLike = None,
    out: np.ndarray | None = None,
    *,
    stream: int = 0,
    pack: bool = True,
) -> tuple[np.ndarray, DropoutMask]:
    """Inverted dropout: ``y = x * keep / (1 - p)``, each element dropped with probability p.

    **p is the DROP probability** (torch/keras convention), NOT the keep probability used by
    cs231n's lecture code: ``p=0.2`` zeroes about 20% of the elements.

    Parameters
    ----------
    x : ndarray
        float32 or float64, any shape (non-contiguous input is copied).
    p : float
        Drop probability, ``0 <= p < 1``.
    training : bool
        False returns ``x`` itself (no copy, unless `out` is given) and a keep-all mask.
    seed : int, numpy.random.Generator or None
        An int in ``[0, 2**64)`` gives the same mask every time; a Generator gives a seed
        drawn from it; None draws a fresh seed from numpy's default generator.
    out : ndarray, optional
        Where to write y (same dtype/shape as x, C-contiguous, writeable); may be x itself.
    stream : int
        Which of the 2**64 independent streams of the seed to use (:class:`Dropout` uses one
        per forward call).
    pack : bool
        Store the decisions as packed bits in the mask (default), or store nothing and
        regenerate them in the backward pass.

    Returns
    -------
    y : ndarray
        ``x * keep / (1 - p)``: a multiply, not a select, so a dropped NaN/Inf gives NaN,
        as in torch.
    mask : DropoutMask
        The keep decisions, for :func:`dropout_backward`.

    Notes
    -----
    The decision for element ``i`` (C order) depends only on ``(seed, stream, i)``: not on
    the thread count, dtype or chunking.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> x = np.ones((2, 8), np.float32)
    >>> y, mask = nn.dropout(x, p=0.5, seed=0)
    >>> sorted(set(y.ravel().tolist()))     # dropped: 0; kept: scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> np.array_equal(nn.dropout(x, p=0.5, seed=0)[0], y)   # same seed, same mask
    True
    >>> nn.dropout(x, p=0.5, training=False)[0] is x          # evaluation: x itself
    True
    """
    pp = _kernels.check_dropout_p(p)
    _check_dropout_args(training, seed, stream)
    if not training or pp == 0.0:
        y, _ = _kernels.dropout_forward(x, pp, 0, 0, out, pack, False)
        return y, DropoutMask(np.shape(x), 0.0)
    s = _resolve_seed(seed)
    y, bits = _kernels.dropout_forward(x, pp, s, stream, out, pack, True)
    return y, DropoutMask(y.shape, pp, s, stream, bits)


def dropout_backward(
    dy: np.ndarray, mask: DropoutMask, out: np.ndarray | None = None
) -> np.ndarray:
    """Gradient of :func:`dropout`: ``dx = dy * keep / (1 - p)`` with the forward's mask.

    One read of dy, one write of dx (plus the mask's n/8 bytes of bits, or the regenerated
    decisions). A keep-all mask (``p == 0``) returns dy itself unless `out` is given.

    Parameters
    ----------
    dy : ndarray
        Gradient with respect to the dropout's output, the mask's shape, float32 or
        float64.
    mask : DropoutMask
        The mask the forward pass returned.
    out : ndarray, optional
        Where to write dx (like dy, C-contiguous, writeable); may be dy itself.

    Returns
    -------
    dx : ndarray
        Gradient with respect to the dropout's input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> y, mask = nn.dropout(np.ones((2, 8)), p=0.5, seed=0)
    >>> dx = nn.dropout_backward(np.ones((2, 8)), mask)
    >>> np.array_equal(dx, y)                # the forward's mask and scale
    True
    """
    if not isinstance(mask, DropoutMask):
        raise TypeError(f"mask: expected a DropoutMask, got {type(mask).__name__}")
    dx: np.ndarray = _kernels.dropout_backward(
        dy, mask.shape, mask.p, mask.seed, mask.stream, mask.bits, out
    )
    return dx


def dropconnect(
    w: np.ndarray,
    p: float = 0.5,
    seed: SeedLike = None,
    out: np.ndarray | None = None,
    *,
    stream: int = 0,
    pack: bool = True,
) -> tuple[np.ndarray, DropoutMask]:
    """DropConnect: the weight matrix for one training forward pass, ``w * keep / (1 - p)``.

    Drops WEIGHTS (connections) instead of activations, each with probability p (the DROP
    probability). One mask serves the whole batch (the usual simplification of Wan et al.
    2013, who sample one per example), and kept weights are rescaled by ``1 / (1 - p)``
    (inverted, as dropout), so inference uses ``w`` unchanged instead of the paper's Gaussian
    moment matching. Use: ``wm, mask = dropconnect(w, p, seed); y = x @ wm``; backward:
    ``dw = dropconnect_backward(x.T @ dy, mask)`` (and ``dx = dy @ wm.T``).

    Parameters
    ----------
    w : ndarray
        The weights, float32 or float64.
    p : float
        Drop probability of each weight, ``0 <= p < 1``.
    seed, out, stream, pack
        As in :func:`dropout`.

    Returns
    -------
    w_masked : ndarray
        ``w * keep / (1 - p)``.
    mask : DropoutMask
        The keep decisions, for :func:`dropconnect_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> w = np.ones((4, 3))
    >>> wm, mask = nn.dropconnect(w, p=0.25, seed=1)
    >>> wm
    array([[1.33333333, 1.33333333, 0.        ],
           [1.33333333, 0.        , 0.        ],
           [1.33333333, 1.33333333, 1.33333333],
           [0.        , 1.33333333, 1.33333333]])
    >>> x, dy = np.ones((2, 4)), np.ones((2, 3))
    >>> dw = nn.dropconnect_backward(x.T @ dy, mask)
    >>> np.array_equal(dw == 0, wm == 0)     # dropped weights get no gradient
    True
    """
    return dropout(w, p, True, seed, out, stream=stream, pack=pack)


def dropconnect_backward(
    dw_masked: np.ndarray, mask: DropoutMask, out: np.ndarray | None = None
) -> np.ndarray:
    """Gradient with respect to ``w`` from the gradient with respect to the masked weights:
    ``dw = dw_masked * keep / (1 - p)``.

    Parameters
    ----------
    dw_masked : ndarray
        Gradient with respect to the masked weights (``x.T @ dy`` for ``y = x @ wm``).
    mask : DropoutMask
        The mask :func:`dropconnect` returned.
    out : ndarray, optional
        Where to write dw; may be `dw_masked` itself.

    Returns
    -------
    dw : ndarray
        Gradient with respect to the weights.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> wm, mask = nn.dropconnect(np.ones((4, 3)), p=0.25, seed=1)
    >>> dw = nn.dropconnect_backward(np.full((4, 3), 3.0), mask)
    >>> sorted(set(dw.ravel().tolist()))     # 3 * keep / (1 - p)
    [0.0, 4.0]
    """
    return dropout_backward(dw_masked, mask, out)


class Dropout:
    """A dropout layer: ``p`` (DROP probability) and a seed, a fresh mask every forward.

    Each training forward uses the next Philox stream of the seed, so successive batches get
    different masks, and a run is reproducible from ``(seed, stream)``: ``state_dict()``
    saves them, ``load_state_dict()`` resumes exactly. ``backward(dy)`` uses the mask of the
    last forward.

    Parameters
    ----------
    p : float, default 0.5
        Drop probability, ``0 <= p < 1``.
    seed : int, numpy.random.Generator or None
        An int in ``[0, 2**64)``; a Generator or None (fresh entropy) draws one, once.
    pack : bool, default True
        Keep each mask as packed bits (see :class:`DropoutMask`).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> drop = nn.Dropout(p=0.5, seed=0)
    >>> x = np.ones((4, 4), np.float32)
    >>> a, b = drop(x), drop(x)
    >>> bool((a != b).any())                 # a fresh mask every training forward
    True
    >>> np.array_equal(drop.backward(np.ones_like(x)), b)   # the last forward's mask
    True
    >>> drop.state_dict()
    {'p': 0.5, 'seed': 0, 'stream': 2}
    >>> drop(x, training=False) is x
    True
    """

    def __init__(self, p: float = 0.5, seed: SeedLike = None, *, pack: bool = True) -> None:
        self.p = _kernels.check_dropout_p(p)
        self.seed = _resolve_seed(seed)
        self.stream = 0
        self.pack = check_bool(pack, "pack")
        self.mask: DropoutMask | None = None

    def forward(
        self, x: np.ndarray, training: bool = True, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Dropout of `x` with the next stream's mask (training), or `x` itself (evaluation).

        Arguments as :func:`dropout`; the mask is kept for :meth:`backward`.
        """
        y, mask = dropout(
            x, self.p, training, self.seed, out, stream=self.stream, pack=self.pack
        )
        if training and self.p > 0.0:
            self.stream = (self.stream + 1) % 2**64
        self.mask = mask
        return y

    __call__ = forward

    def backward(self, dy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """dx from dy with the last forward's mask (see :func:`dropout_backward`)."""
        if self.mask is None:
            raise RuntimeError("Dropout.backward: call forward first")
        return dropout_backward(dy, self.mask, out)

    def state_dict(self) -> dict[str, Any]:
        """``{"p", "seed", "stream"}``: enough to continue with the same masks."""
        return {"p": self.p, "seed": self.seed, "stream": self.stream}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore p, seed and stream (checked first: nothing changes on error)."""
        check_state_dict(state, ("p", "seed", "stream"), "state")
        p = _kernels.check_dropout_p(state["p"])
        seed = check_uint64(state["seed"], "state['seed']")
        stream = check_uint64(state["stream"], "state['stream']")
        self.p, self.seed, self.stream = p, seed, stream
        self.mask = None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p}, seed={self.seed}, stream={self.stream})"


# -- batch normalization ---------------------------------------------------------------------


class _DefaultMomentum:
    """momentum's default: 0.1 under convention="torch", 0.9 under convention="cs231n"."""

    def __repr__(self) -> str:
        return "0.1 (torch) / 0.9 (cs231n)"


DEFAULT_MOMENTUM: Any = _DefaultMomentum()


def _momentum(momentum: Any, convention: str) -> Any:
    """The convention's default for DEFAULT_MOMENTUM; anything else as given (the kernel
    boundary checks it)."""
    if momentum is DEFAULT_MOMENTUM:
        return 0.9 if convention == "cs231n" else 0.1
    return momentum


class BatchNormCache:
    """What :func:`batch_norm_backward` needs, and nothing more.

    ``x`` (a reference to the forward's input, not a copy: do not modify it in place before
    the backward pass), ``gamma`` (a reference, or None), and per channel the float64
    ``mean`` and ``invstd`` the output was normalized with: ``16 * C`` bytes of its own.
    xhat is recomputed from x in the backward pass instead of stored: storing it would cost
    one more full-size write in the forward and N*C*S elements of memory, while the backward
    reads x in its place at the same cost.

    Parameters
    ----------
    x : ndarray
        The forward's input.
    gamma : ndarray or None
        The forward's scale.
    mean, invstd : ndarray of float64, shape (C,)
        Per-channel mean and ``1 / sqrt(var + eps)`` the forward used.
    training : bool
        Whether the forward used batch statistics.
    has_beta : bool
        Whether the forward had a shift (so the backward returns dbeta).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> x = np.ones((8, 3)) * np.arange(8)[:, None]
    >>> y, cache = nn.batch_norm(x, None, None, None, None)
    >>> cache.mean, cache.nbytes
    (array([3.5, 3.5, 3.5]), 48)
    """

    __slots__ = ("x", "gamma", "mean", "invstd", "training", "has_beta")

    def __init__(
        self,
        x: np.ndarray,
        gamma: np.ndarray | None,
        mean: np.ndarray,
        invstd: np.ndarray,
        training: bool,
        has_beta: bool,
    ) -> None:
        self.x, self.gamma, self.mean, self.invstd = x, gamma, mean, invstd
        self.training, self.has_beta = bool(training), bool(has_beta)

    @property
    def nbytes(self) -> int:
        """Bytes the cache holds itself (x and gamma are references)."""
        return int(self.mean.nbytes + self.invstd.nbytes)


def batch_norm(
    x: np.ndarray,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    training: bool = True,
    momentum: float | None = DEFAULT_MOMENTUM,
    eps: float = 1e-5,
    *,
    convention: str = "torch",
    num_batches_tracked: int | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalization of x of shape ``(N, D)`` or ``(N, C, *spatial)``, per channel.

    ``y = (x - mean) / sqrt(var + eps) * gamma + beta`` where, in training, mean and var are
    the batch mean and BIASED variance over N (and the spatial axes); in eval
    (``training=False``) the running statistics, which are then not touched.

    Running statistics (updated in place in training, when given):

    - ``convention="torch"`` (default), torch.nn.BatchNorm semantics: momentum (default 0.1)
      is the weight of the NEW value, and running_var receives the UNBIASED batch variance
      ``var * M / (M - 1)`` (M = values per channel)::

          running_mean = (1 - momentum) * running_mean + momentum * mean
          running_var  = (1 - momentum) * running_var  + momentum * var_unbiased

      ``momentum=None`` gives the cumulative average (factor ``1 / (num_batches_tracked + 1)``),
      which needs ``num_batches_tracked``, the number of batches ALREADY tracked (the
      :class:`BatchNorm` layer keeps this count).
    - ``convention="cs231n"``: momentum (default 0.9) is the weight of the OLD value and
      running_var receives the biased variance::

          running_mean = momentum * running_mean + (1 - momentum) * mean
          running_var  = momentum * running_var  + (1 - momentum) * var

    Parameters
    ----------
    x : ndarray
        float32 or float64 (non-contiguous input is copied; the cache references what was
        read). Training needs more than one value per channel.
    gamma, beta : ndarray of shape (C,) or None
        Scale and shift, x's dtype; None means no affine part (1 and 0).
    running_mean, running_var : ndarray of shape (C,) or None
        x's dtype, C-contiguous and writeable; required when ``training=False``.
    training : bool, default True
        Normalize with the batch statistics (and update the running ones), or with the
        running statistics.
    momentum : float or None, default 0.1 (torch) / 0.9 (cs231n)
        Weight of the running statistics' update, see above; None: cumulative average.
    eps : float, default 1e-5
        Added to the variance, > 0.
    convention : {"torch", "cs231n"}, default "torch"
        Meaning of `momentum` and which variance the running one tracks, see above.
    num_batches_tracked : int, optional
        Batches already tracked, for ``momentum=None``.
    out : ndarray, optional
        Where to write y (like x, C-contiguous, writeable, not overlapping x).

    Returns
    -------
    y : ndarray
        The normalized, scaled and shifted x.
    cache : BatchNormCache
        What :func:`batch_norm_backward` needs.

    Notes
    -----
    Sums are accumulated in double over fixed blocks combined in a fixed order: the same
    bits for any thread count. Nothing is modified when the call raises.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> x = np.random.default_rng(0).normal(3.0, 2.0, size=(256, 4))
    >>> running_mean, running_var = np.zeros(4), np.ones(4)
    >>> y, cache = nn.batch_norm(x, np.ones(4), np.zeros(4), running_mean, running_var)
    >>> np.allclose(y.mean(axis=0), 0), np.allclose(y.std(axis=0), 1, atol=1e-4)
    (True, True)
    >>> np.allclose(running_mean, 0.1 * x.mean(axis=0))      # torch: 10% of the new value
    True
    >>> y_eval, _ = nn.batch_norm(x, None, None, running_mean, running_var, training=False)
    """
    y, xr, mean, invstd = _kernels.batch_norm_forward(
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        training,
        _momentum(momentum, convention),
        eps,
        convention,
        num_batches_tracked,
        out,
    )
    return y, BatchNormCache(xr, gamma, mean, invstd, training, beta is not None)


OutTriple = None | np.ndarray | tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]


def batch_norm_backward(
    dy: np.ndarray, cache: BatchNormCache, out: OutTriple = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of :func:`batch_norm`: ``(dx, dgamma, dbeta)``.

    With ``xhat = (x - mean) * invstd`` recomputed from the cache and M values per channel::

        dbeta  = sum(dy)           dgamma = sum(dy * xhat)        (per channel)
        dx     = (gamma * invstd / M) * (M * dy - dbeta - xhat * dgamma)     (training)
        dx     = gamma * invstd * dy                                          (eval)

    Two passes over memory: one reduction (double, fixed order), one element-wise pass.
    dgamma is None when the forward had no gamma, dbeta None when it had no beta.

    Parameters
    ----------
    dy : ndarray
        Gradient with respect to the forward's output y.
    cache : BatchNormCache
        What :func:`batch_norm` returned with y.
    out : ndarray or tuple, optional
        An array for dx, or a tuple ``(dx_out, dgamma_out, dbeta_out)`` (entries may be
        None) to write into preallocated arrays.

    Returns
    -------
    dx : ndarray
        Gradient with respect to x.
    dgamma, dbeta : ndarray or None
        Gradients with respect to gamma and beta (None without them).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt import nn
    >>> rng = np.random.default_rng(0)
    >>> x, dy = rng.normal(3.0, 2.0, size=(256, 4)), rng.standard_normal((256, 4))
    >>> y, cache = nn.batch_norm(x, np.ones(4), np.zeros(4), None, None)
    >>> dx, dgamma, dbeta = nn.batch_norm_backward(dy, cache)
    >>> np.allclose(dbeta, dy.sum(axis=0)), np.allclose(dx.sum(axis=0), 0)
    (True, True)
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache: expected a BatchNormCache, got {type(cache).__name__}")
    if out is None or isinstance(out, np.ndarray):
        outs: tuple[Any, Any, Any] = (out, None, None)
    elif isinstance(out, tuple) and len(out) == 3:
        outs = out
    else:
        raise TypeError("out: expected an array or a tuple (dx_out, dgamma_out, dbeta_out)")
    grads: tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
    grads = _kernels.batch_norm_backward(
        dy,
        cache.x,
        cache.gamma,
        cache.mean,
        cache.invstd,
        cache.training,
        outs[0],
        outs[1],
        outs[2],
        True,
        cache.gamma is not None,
        cache.has_beta,
    )
    return grads


class BatchNorm:
    """A batch-normalization layer holding gamma/beta, running statistics and gradients.

    ``forward(x, training)`` normalizes ``(N, C)`` or ``(N, C, *spatial)`` input (see
    :func:`batch_norm` for both conventions); ``backward(dy)`` returns dx and writes
    ``dgamma``/``dbeta`` IN PLACE, so ``params`` and ``grads`` can be handed to an optimizer
    once: ``opt = fastopt.SGD(bn.params, lr=0.1); ...; bn.backward(dy); opt.step(bn.grads)``.
    ``num_batches_tracked`` counts training batches (used by ``momentum=None``).
    ``state_dict()`` / ``load_state_dict()`` save and restore everything a run needs to
    resume exactly (arrays are copied into the existing ones, keeping optimizer references).

    Parameters
    ----------
    num_features : int
        Channels C (features D of 2-D input).
    eps : float, default 1e-5
        Added to the variance.
    momentum : float or None, default 0.1 (torch) / 0.9 (cs231n)
        As in :func:`batch_norm`.
    affine : bool, default True
        Learn gamma and beta.
    convention : {"torch", "cs231n"}, default "torch"
        As in :func:`batch_norm`.
    dtype : float32 or float64, default float64
        Dtype of the parameters and statistics (the input's).

    Examples
    --------
    >>> import numpy as np
    >>> import fastopt as fo
    >>> bn = fo.nn.BatchNorm(3)
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, size=(64, 3))
    >>> y = bn.forward(x, training=True)
    >>> dx = bn.backward(np.ones_like(y))    # fills bn.dgamma and bn.dbeta in place
    >>> bn.num_batches_tracked, bn.dbeta
    (1, array([64., 64., 64.]))
    >>> opt = fo.SGD(bn.params, lr=0.1)
    >>> _ = opt.step(bn.grads)
    >>> bn.beta
    array([-6.4, -6.4, -6.4])
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = DEFAULT_MOMENTUM,
        affine: bool = True,
        convention: str = "torch",
        dtype: Any = np.float64,
    ) -> None:
        c = check_int(num_features, "num_features", 1)
        affine = check_bool(affine, "affine")
        dt = check_float_dtype(dtype, "dtype", (np.float32, np.float64))
        momentum = _momentum(momentum, convention)
        _, eps = _kernels.batch_norm_options(momentum, eps, convention)  # early errors
        self.num_features, self.eps, self.momentum = c, eps, momentum
        self.convention, self.affine, self.dtype = convention, affine, dt
        self.gamma = np.ones(c, dt) if affine else None
        self.beta = np.zeros(c, dt) if affine else None
        self.dgamma = np.zeros(c, dt) if affine else None
        self.dbeta = np.zeros(c, dt) if affine else None
        self.running_mean = np.zeros(c, dt)
        self.running_var = np.ones(c, dt)
        self.num_batches_tracked = 0
        self.cache: BatchNormCache | None = None

    @property
    def params(self) -> list[np.ndarray]:
        """``[gamma, beta]`` (empty without affine), for an optimizer."""
        return [self.gamma, self.beta] if self.affine else []  # type: ignore[list-item]

    @property
    def grads(self) -> list[np.ndarray]:
        """``[dgamma, dbeta]``, in the order of :attr:`params`, filled by :meth:`backward`."""
        return [self.dgamma, self.dbeta] if self.affine else []  # type: ignore[list-item]

    def forward(
        self, x: np.ndarray, training: bool = True, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Normalize `x`: batch statistics in training (updating the running ones and
        ``num_batches_tracked``), the running statistics otherwise (see :func:`batch_norm`)."""
        y, cache = batch_norm(
            x,
            self.gamma,
            self.beta,
            self.running_mean,
            self.running_var,
            training,
            self.momentum,
            self.eps,
            convention=self.convention,
            num_batches_tracked=self.num_batches_tracked,
            out=out,
        )
        if training:
            self.num_batches_tracked += 1
        self.cache = cache
        return y

    __call__ = forward

    def backward(self, dy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """dx; dgamma and dbeta are written into ``self.dgamma`` / ``self.dbeta``."""
        if self.cache is None:
            raise RuntimeError("BatchNorm.backward: call forward first")
        dx, _, _ = batch_norm_backward(dy, self.cache, (out, self.dgamma, self.dbeta))
        return dx

    _ARRAYS = ("gamma", "beta", "running_mean", "running_var")

    def state_dict(self) -> dict[str, Any]:
        """Copies of gamma, beta and the running statistics, and ``num_batches_tracked``."""
        state: dict[str, Any] = {
            name: getattr(self, name).copy()
            for name in self._ARRAYS
            if getattr(self, name) is not None
        }
        state["num_batches_tracked"] = self.num_batches_tracked
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy a state_dict's arrays into this layer's (checked first: nothing changes on
        error)."""
        names = [n for n in self._ARRAYS if getattr(self, n) is not None]
        check_state_dict(state, names + ["num_batches_tracked"], "state")
        for name in names:
            a = np.asarray(state[name])
            if a.shape != (self.num_features,):
                raise ValueError(
                    f"state[{name!r}]: expected shape ({self.num_features},), got {a.shape}"
                )
        count = check_int(state["num_batches_tracked"], "state['num_batches_tracked']", 0)
        for name in names:
            np.copyto(getattr(self, name), state[name], casting="same_kind")
        self.num_batches_tracked = count

    def __repr__(self) -> str:
        return (
            f"BatchNorm({self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, convention={self.convention!r}, dtype={self.dtype.name})"
        )
