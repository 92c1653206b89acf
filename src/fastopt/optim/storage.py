"""State arrays stored in fewer bits: :class:`Int8State` (blockwise 8-bit dynamic
quantization) and :class:`BFloat16State`.

An optimizer created with ``state_dtype="int8"`` or ``"bfloat16"`` keeps each large state
array (``exp_avg``, ``exp_avg_sq``, a momentum buffer ...) as one of these objects in
``opt.state[i]``; its C kernel decodes, updates and re-encodes them in one pass
(``csrc/optim_lowprec.inc``). ``state_dict()`` stores them as plain dicts of their arrays
(:meth:`Int8State.to_dict`), exactly as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastopt import _kernels

__all__ = [
    "QBLOCK",
    "BFloat16State",
    "Int8State",
    "LowPrecisionState",
    "dequantize_blockwise",
    "quantize_blockwise",
]

#: Elements per quantization block: one float32 absmax each.
QBLOCK: int = _kernels.QBLOCK


def quantize_blockwise(x: np.ndarray, nonnegative: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Blockwise 8-bit dynamic quantization of `x` (Dettmers et al., ICLR 2022).

    Parameters
    ----------
    x : ndarray
        float32 or float64, any shape; blocks of 256 elements of the flattened array.
    nonnegative : bool, default False
        Use the unsigned map (256 codes in [0, 1]; ``|x|`` is encoded) instead of the
        signed one (127 negative codes, 0, 127 positive ones and 1).

    Returns
    -------
    codes : ndarray of uint8
        x's shape: the nearest map entry to ``x / absmax`` (ties to the smaller magnitude).
    absmax : ndarray of float32
        One per block: its largest magnitude (NaN when the block holds a NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optim.storage import quantize_blockwise, dequantize_blockwise
    >>> codes, absmax = quantize_blockwise(np.array([0.5, -1.0, 0.0], dtype=np.float32))
    >>> absmax
    array([1.], dtype=float32)
    >>> dequantize_blockwise(codes, absmax)
    array([ 0.50078124, -0.99296874,  0.        ], dtype=float32)
    """
    return _kernels.quantize_blockwise(x, nonnegative)


def dequantize_blockwise(codes: np.ndarray, absmax: np.ndarray, nonnegative: bool = False,
                         dtype: Any = np.float32) -> np.ndarray:
    """The values ``map[codes] * absmax[block]`` of a :func:`quantize_blockwise` result.

    Parameters
    ----------
    codes : ndarray of uint8
    absmax : ndarray of float32
        One per block of 256 codes.
    nonnegative : bool, default False
        The map the codes index (as given to :func:`quantize_blockwise`).
    dtype : float32 or float64

    Returns
    -------
    ndarray
        codes' shape, `dtype`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optim.storage import quantize_blockwise, dequantize_blockwise
    >>> x = np.array([0.25, 2.0, 1e-3])
    >>> codes, absmax = quantize_blockwise(x, nonnegative=True)
    >>> dequantize_blockwise(codes, absmax, nonnegative=True, dtype=np.float64)
    array([2.49218747e-01, 2.00000000e+00, 1.04374997e-03])
    """
    return _kernels.dequantize_blockwise(codes, absmax, nonnegative, dtype)


class Int8State:
    """A state array in blockwise 8-bit dynamic quantization: ``codes`` (uint8, the
    parameter's shape) and ``absmax`` (float32, one per block of 256 elements), on the
    unsigned map when ``nonnegative`` (second moments, sums of squares) else the signed one.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optim.storage import Int8State
    >>> s = Int8State.from_array(np.linspace(-1, 1, 5, dtype=np.float32))
    >>> s.to_array()
    array([-0.99296874, -0.50078124,  0.        ,  0.50078124,  1.        ],
          dtype=float32)
    >>> s.nbytes                  # 5 codes + one float32 absmax
    9
    """

    __slots__ = ("absmax", "codes", "nonnegative")
    format = "int8"

    def __init__(self, codes: np.ndarray, absmax: np.ndarray, nonnegative: bool) -> None:
        self.codes = codes
        self.absmax = absmax
        self.nonnegative = bool(nonnegative)

    @classmethod
    def from_array(cls, x: np.ndarray, nonnegative: bool = False) -> Int8State:
        codes, absmax = quantize_blockwise(np.asarray(x), nonnegative)
        return cls(codes, absmax, nonnegative)

    def to_array(self, dtype: Any = np.float32) -> np.ndarray:
        return dequantize_blockwise(self.codes, self.absmax, self.nonnegative, dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.codes.shape)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.absmax.nbytes)

    def copy(self) -> Int8State:
        return Int8State(self.codes.copy(), self.absmax.copy(), self.nonnegative)

    def to_dict(self) -> dict[str, Any]:
        """``{"format": "int8", "codes", "absmax", "nonnegative"}`` (copies)."""
        return {"format": "int8", "codes": self.codes.copy(), "absmax": self.absmax.copy(),
                "nonnegative": self.nonnegative}

    def __repr__(self) -> str:
        return (f"Int8State(shape={self.shape}, blocks={self.absmax.size}, "
                f"nonnegative={self.nonnegative})")


class BFloat16State:
    """A state array in bfloat16: ``bits`` (uint16, the parameter's shape), the upper half
    of each float32. Optimizers write it with stochastic rounding; :meth:`from_array`
    rounds to nearest even.

    Examples
    --------
    >>> import numpy as np
    >>> from fastopt.optim.storage import BFloat16State
    >>> s = BFloat16State.from_array(np.array([1.0, 1.0 + 2**-10, 3.140625], dtype=np.float32))
    >>> s.to_array()
    array([1.      , 1.      , 3.140625], dtype=float32)
    """

    __slots__ = ("bits",)
    format = "bfloat16"

    def __init__(self, bits: np.ndarray) -> None:
        self.bits = bits

    @classmethod
    def from_array(cls, x: np.ndarray, nonnegative: bool = False) -> BFloat16State:
        return cls(_kernels.bfloat16_from_float(np.asarray(x)))

    def to_array(self, dtype: Any = np.float32) -> np.ndarray:
        return _kernels.bfloat16_to_float(self.bits).astype(dtype, copy=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.bits.shape)

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def copy(self) -> BFloat16State:
        return BFloat16State(self.bits.copy())

    def to_dict(self) -> dict[str, Any]:
        """``{"format": "bfloat16", "bits"}`` (a copy)."""
        return {"format": "bfloat16", "bits": self.bits.copy()}

    def __repr__(self) -> str:
        return f"BFloat16State(shape={self.shape})"


LowPrecisionState = Int8State | BFloat16State



def from_dict(d: dict[str, Any], shape: tuple[int, ...], where: str) -> LowPrecisionState:
    """A state object from :meth:`Int8State.to_dict` / :meth:`BFloat16State.to_dict`
    (arrays copied), checked against the parameter's `shape`."""
    kind = d.get("format")
    if kind == "int8":
        codes = np.array(d.get("codes"), copy=True)
        absmax = np.array(d.get("absmax"), copy=True)
        blocks = (int(np.prod(shape)) + QBLOCK - 1) // QBLOCK
        if codes.dtype != np.uint8 or codes.shape != tuple(shape):
            raise ValueError(f"{where}: expected uint8 codes of shape {tuple(shape)}, got "
                             f"{codes.dtype} {codes.shape}")
        if absmax.dtype != np.float32 or absmax.shape != (blocks,):
            raise ValueError(f"{where}: expected {blocks} float32 absmax values, got "
                             f"{absmax.dtype} {absmax.shape}")
        return Int8State(np.ascontiguousarray(codes), np.ascontiguousarray(absmax),
                         bool(d.get("nonnegative", False)))
    if kind == "bfloat16":
        bits = np.array(d.get("bits"), copy=True)
        if bits.dtype != np.uint16 or bits.shape != tuple(shape):
            raise ValueError(f"{where}: expected uint16 bits of shape {tuple(shape)}, got "
                             f"{bits.dtype} {bits.shape}")
        return BFloat16State(np.ascontiguousarray(bits))
    raise ValueError(f"{where}: expected an array or a dict with format 'int8' or "
                     f"'bfloat16', got format {kind!r}")


def convert(value: Any, target: str | None, dtype: Any, nonnegative: bool,
            shape: tuple[int, ...], where: str) -> Any:
    """`value` (an array, a state object or its dict) in the format `target` ("int8",
    "bfloat16", or None: a `dtype` array): kept as it is (copied) when it already is,
    else dequantized and re-encoded."""
    if isinstance(value, dict):
        value = from_dict(value, shape, where)
    elif isinstance(value, (Int8State, BFloat16State)):
        value = value.copy()
    if isinstance(value, (Int8State, BFloat16State)):
        if isinstance(value, BFloat16State) and target == "bfloat16":
            return value
        if isinstance(value, Int8State) and target == "int8" \
                and value.nonnegative == nonnegative:
            return value
        full = value.to_array(dtype)
    else:
        full = np.array(value, dtype=dtype, order="C", copy=True)
    if target is None:
        return full
    if target == "int8":
        return Int8State.from_array(full, nonnegative)
    return BFloat16State.from_array(full)
