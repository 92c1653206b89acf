"""Weight initialisation: He (Kaiming) and Xavier (Glorot) for numpy arrays.

A good initialisation keeps the scale of activations (and of back-propagated
gradients) roughly constant from layer to layer. For a layer ``y = x @ W``
whose weights have variance :math:`\\sigma^2`, the pre-activation variance is
:math:`\\mathrm{fan\\_in}\\,\\sigma^2\\,E[x^2]`:

* ReLU networks (He et al., 2015) take :math:`\\sigma^2 = 2/\\mathrm{fan\\_in}`,
  because a ReLU halves the second moment;
* tanh / linear networks (Glorot & Bengio, 2010) take the compromise
  :math:`\\sigma^2 = 2/(\\mathrm{fan\\_in} + \\mathrm{fan\\_out})` between the
  forward and the backward pass.

Shape conventions (see :func:`fan_in_fan_out`):

* dense weights are ``(in, out)`` by default, the layout numpy code uses for
  ``x @ W`` (``dense="out_in"`` selects torch's ``nn.Linear`` layout);
* convolution weights of three or more dimensions use torch's
  ``(out_channels, in_channels, *kernel)`` layout.

Randomness: every function takes ``rng``, which is ``None`` (fresh OS entropy),
an ``int`` seed, or a :class:`numpy.random.Generator` (used and advanced).
Samples are drawn in float64 and then cast to ``dtype``, so the same seed gives
the same values, rounded, in every dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from fastopt._validation import (
    check_choice,
    check_float_dtype,
    check_int,
    check_real,
    check_seed,
    describe_value,
)

__all__ = ["fan_in_fan_out", "he", "xavier"]

RNGLike = None | int | np.integer | np.random.Generator
ShapeLike = int | Sequence[int]


def _as_shape(shape: ShapeLike) -> tuple[int, ...]:
    """Validate ``shape`` (an int or a sequence of non-negative ints) and return a tuple."""
    if not isinstance(shape, (tuple, list)):
        if isinstance(shape, (str, bytes)) or not np.ndim(shape) == 0:
            raise TypeError(f"shape: expected an int or a tuple of ints, got {describe_value(shape)}")
        return (check_int(shape, "shape", 0),)
    return tuple(check_int(d, f"shape[{i}]", 0) for i, d in enumerate(shape))


def fan_in_fan_out(
    shape: ShapeLike, *, dense: Literal["in_out", "out_in"] = "in_out"
) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight array of the given shape.

    Parameters
    ----------
    shape : tuple of int
        Shape of the weight array, with at least two dimensions.

        * 2-D, ``dense="in_out"`` (default): ``(in_features, out_features)``,
          the layout of a numpy dense layer ``y = x @ W`` with ``x`` of shape
          ``(batch, in_features)``. ``fan_in = shape[0]``, ``fan_out = shape[1]``.
        * 2-D, ``dense="out_in"``: ``(out_features, in_features)``, the layout of
          torch's ``nn.Linear.weight`` (``y = x @ W.T``). ``fan_in = shape[1]``,
          ``fan_out = shape[0]``, identical to torch.
        * 3-D and more: torch's convolution layout
          ``(out_channels, in_channels, *kernel_size)``, whatever ``dense`` says:
          ``fan_in = in_channels * prod(kernel_size)`` and
          ``fan_out = out_channels * prod(kernel_size)``, identical to
          ``torch.nn.init._calculate_fan_in_and_fan_out``.
    dense : {"in_out", "out_in"}, default "in_out"
        Layout of 2-D shapes, see above.

    Returns
    -------
    fan_in, fan_out : int

    Raises
    ------
    ValueError
        If ``shape`` has fewer than two dimensions (a bias vector has no fan),
        or ``dense`` is not one of the two layouts.

    Examples
    --------
    >>> fan_in_fan_out((784, 100))            # numpy dense layer: x @ W
    (784, 100)
    >>> fan_in_fan_out((100, 784), dense="out_in")  # torch nn.Linear weight
    (784, 100)
    >>> fan_in_fan_out((16, 3, 5, 5))         # conv: (out, in, kh, kw)
    (75, 400)
    """
    dims = _as_shape(shape)
    check_choice(dense, "dense", ("in_out", "out_in"))
    if len(dims) < 2:
        raise ValueError(
            f"shape: expected at least 2 dimensions (to define fan_in and fan_out), got {dims}"
        )
    if len(dims) == 2:
        if dense == "in_out":
            return dims[0], dims[1]
        return dims[1], dims[0]
    receptive = math.prod(dims[2:])
    return dims[1] * receptive, dims[0] * receptive


def _draw(
    shape: tuple[int, ...],
    scale: float,
    distribution: str,
    rng: RNGLike,
    dtype: npt.DTypeLike,
) -> np.ndarray:
    """Draw N(0, scale**2) (``normal``) or U(-scale*sqrt(3), scale*sqrt(3)) (``uniform``).

    Both have standard deviation ``scale``.
    """
    dt = check_float_dtype(dtype, "dtype")
    check_choice(distribution, "distribution", ("normal", "uniform"))
    gen = np.random.default_rng(check_seed(rng, "rng"))  # a Generator is used as is
    if distribution == "normal":
        out = gen.normal(0.0, scale, size=shape)
    else:
        limit = math.sqrt(3.0) * scale
        out = gen.uniform(-limit, limit, size=shape)
    return out.astype(dt, copy=False)


def he(
    shape: ShapeLike,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float64,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    distribution: Literal["normal", "uniform"] = "normal",
    *,
    dense: Literal["in_out", "out_in"] = "in_out",
) -> np.ndarray:
    r"""He (Kaiming) initialisation for layers followed by a ReLU.

    .. math::

        \sigma = \sqrt{\frac{2}{\mathrm{fan}}}, \qquad
        W \sim \mathcal{N}(0, \sigma^2) \quad\text{or}\quad
        W \sim \mathcal{U}(-\sqrt{3}\,\sigma, \sqrt{3}\,\sigma)
        = \mathcal{U}\Big(-\sqrt{\tfrac{6}{\mathrm{fan}}}, \sqrt{\tfrac{6}{\mathrm{fan}}}\Big)

    with :math:`\mathrm{fan} = \mathrm{fan\_in}` (default, preserves the
    forward activation scale) or ``fan_out`` (preserves the backward gradient
    scale). Equals torch's ``kaiming_normal_`` / ``kaiming_uniform_`` with
    ``a=0, nonlinearity="relu"`` (for the same fan).

    Parameters
    ----------
    shape : tuple of int
        Weight shape, at least 2-D; see :func:`fan_in_fan_out` for the layouts.
    rng : None, int or numpy.random.Generator, optional
        Source of randomness: ``None`` for fresh entropy, an int seed, or a
        Generator (whose state is advanced).
    dtype : floating dtype, default float64
        Output dtype. Samples are drawn in float64 and rounded to ``dtype``.
    mode : {"fan_in", "fan_out"}, default "fan_in"
    distribution : {"normal", "uniform"}, default "normal"
    dense : {"in_out", "out_in"}, default "in_out"
        Layout of 2-D shapes, passed to :func:`fan_in_fan_out`.

    Returns
    -------
    ndarray of shape ``shape`` and dtype ``dtype``

    Raises
    ------
    TypeError
        For a non-floating ``dtype`` or a bad ``rng``/``shape`` type.
    ValueError
        For a shape of fewer than two dimensions, a zero fan, or unknown
        ``mode``/``distribution``.

    Examples
    --------
    >>> W = he((256, 128), rng=0)
    >>> W.shape, W.dtype
    ((256, 128), dtype('float64'))
    >>> bool(abs(W.std() - (2 / 256) ** 0.5) < 0.005)
    True
    """
    dims = _as_shape(shape)
    fan_in, fan_out = fan_in_fan_out(dims, dense=dense)
    fan = fan_in if check_choice(mode, "mode", ("fan_in", "fan_out")) == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"shape: expected a layer with {mode} > 0, got {dims} ({mode} = 0)")
    return _draw(dims, math.sqrt(2.0 / fan), distribution, rng, dtype)


def xavier(
    shape: ShapeLike,
    rng: RNGLike = None,
    dtype: npt.DTypeLike = np.float64,
    distribution: Literal["uniform", "normal"] = "uniform",
    *,
    gain: float = 1.0,
    dense: Literal["in_out", "out_in"] = "in_out",
) -> np.ndarray:
    r"""Xavier (Glorot) initialisation for tanh / linear layers.

    .. math::

        \text{uniform: } W \sim \mathcal{U}(-a, a),\;
        a = \mathrm{gain}\sqrt{\frac{6}{\mathrm{fan\_in} + \mathrm{fan\_out}}};
        \qquad
        \text{normal: } W \sim \mathcal{N}(0, \sigma^2),\;
        \sigma = \mathrm{gain}\sqrt{\frac{2}{\mathrm{fan\_in} + \mathrm{fan\_out}}}

    Both distributions have the same standard deviation :math:`\sigma`
    (:math:`a = \sqrt{3}\,\sigma`). Equals torch's ``xavier_uniform_`` /
    ``xavier_normal_`` (for the same fans).

    Parameters
    ----------
    shape, rng, dtype
        As in :func:`he` (``dtype`` defaults to float64).
    distribution : {"uniform", "normal"}, default "uniform"
    gain : float, default 1.0
        Multiplies the scale (torch's ``gain``; e.g. 5/3 for tanh).
    dense : {"in_out", "out_in"}, default "in_out"
        Layout of 2-D shapes, passed to :func:`fan_in_fan_out`.

    Returns
    -------
    ndarray of shape ``shape`` and dtype ``dtype``

    Raises
    ------
    TypeError
        For a non-floating ``dtype``, a bad ``rng``/``shape`` type or a
        non-real ``gain``.
    ValueError
        For a shape of fewer than two dimensions, ``fan_in + fan_out == 0``, a
        negative or non-finite ``gain``, or an unknown ``distribution``.

    Examples
    --------
    >>> W = xavier((300, 100), rng=0)
    >>> bool(abs(W).max() <= (6 / 400) ** 0.5)
    True
    """
    dims = _as_shape(shape)
    g = check_real(gain, "gain", 0.0)
    fan_in, fan_out = fan_in_fan_out(dims, dense=dense)
    if fan_in + fan_out == 0:
        raise ValueError(f"shape: expected fan_in + fan_out > 0, got {dims} (fan_in + fan_out = 0)")
    return _draw(dims, g * math.sqrt(2.0 / (fan_in + fan_out)), distribution, rng, dtype)
