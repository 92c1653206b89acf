"""A plain numpy statement of low-precision optimizer state (fastopt.optim.storage,
csrc/lowprec.h): blockwise 8-bit dynamic quantization with the nearest code, bfloat16 with
stochastic rounding from the Philox stream, and ReferenceOptimizer's rules run on the
decoded state. Written from the formats' definitions, not from the C code: the map comes
from dequantizing every code, the nearest code from float64 distances."""

import numpy as np

from fastopt._kernels import dequantize_blockwise, philox_stream
from fastopt_testing.optim_reference import ReferenceOptimizer

QBLOCK = 256


def qmap(nonnegative):
    """The 256 values of a map (float32), read back through dequantize_blockwise."""
    return dequantize_blockwise(np.arange(256, dtype=np.uint8), np.ones(1, np.float32),
                                nonnegative)


def nearest_codes(xn, nonnegative):
    """The nearest code of each float32 xn (ties to the smaller magnitude; the unsigned
    map encodes |xn| and gives a non-zero one at least code 1), by float64 distances."""
    m = qmap(nonnegative).astype(np.float64)
    x = np.abs(xn).astype(np.float64) if nonnegative else xn.astype(np.float64)
    finite = np.isfinite(x)
    d = np.abs(np.where(finite, x, 0)[:, None] - m[None, :])
    best = d.min(axis=1, keepdims=True)
    ties = d == best
    # among the equally near codes, the one of smallest magnitude
    mags = np.where(ties, np.abs(m)[None, :], np.inf)
    codes = mags.argmin(axis=1)
    # NaN and Inf (a block with a non-finite absmax): the largest magnitude of their sign
    negative = np.signbit(xn) & (not nonnegative)
    codes = np.where(finite, codes, np.where(negative, 0, 255))
    if nonnegative:  # a non-zero magnitude never takes the zero code
        codes = np.where((codes == 0) & (x != 0), 1, codes)
    return codes.astype(np.uint8)


def block_absmax(x):
    """float32 max |x| of each block of 256 (NaN if it holds a NaN and no Inf)."""
    n = x.size
    out = np.empty((n + QBLOCK - 1) // QBLOCK, np.float32)
    for b in range(out.size):
        blk = x.ravel()[b * QBLOCK:(b + 1) * QBLOCK]
        a = np.abs(blk)
        if np.isinf(a).any():
            out[b] = np.inf
        elif np.isnan(a).any():
            out[b] = np.nan
        else:
            out[b] = np.float32(a.max())
    return out


def quantize(x, nonnegative):
    """(codes, absmax) of x as csrc/lowprec.h defines them, in x's dtype."""
    T = x.dtype.type
    flat = x.ravel()
    absmax = block_absmax(flat)
    codes = np.empty(flat.size, np.uint8)
    for b in range(absmax.size):
        blk = flat[b * QBLOCK:(b + 1) * QBLOCK]
        a = absmax[b]
        with np.errstate(invalid="ignore"):
            if a >= np.finfo(np.float32).tiny:
                xn = (blk * (T(1) / T(a))).astype(np.float32)
            else:  # 0, subnormal or NaN: divide (0 by 1)
                xn = (blk / (T(a) if a != 0 else T(1))).astype(np.float32)
            codes[b * QBLOCK:(b + 1) * QBLOCK] = nearest_codes(xn, nonnegative)
    return codes.reshape(x.shape), absmax


def dequantize(codes, absmax, nonnegative, dtype):
    T = np.dtype(dtype).type
    scale = np.repeat(absmax, QBLOCK)[:codes.size].astype(T)
    return (qmap(nonnegative)[codes.ravel()].astype(T) * scale).reshape(codes.shape)


def rounding_bits(n, seed, stream):
    """The 16 random bits of each element of a tensor of n elements (optim_lowprec.inc)."""
    groups = (n + 511) // 512
    words = philox_stream(groups * 256, seed, stream).astype(np.uint32)
    e = np.arange(n)
    return (words[256 * (e // 512) + e % 256] >> (16 * ((e // 256) & 1)).astype(np.uint32)) \
        & np.uint32(0xffff)


def bf16_stochastic(x, r8):
    """bfloat16 bits of float32 x rounded up with probability (dropped bits) / 2^16 from
    the 8 random bits r8."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + (r8.astype(np.uint64) << 8) + 0x80) >> 16).astype(np.uint16)
    special = (b & 0x7fffffff) >= 0x7f800000
    quiet = ((b >> 16) | np.where(b & 0x7fffff, 0x40, 0).astype(np.uint64)).astype(np.uint16)
    return np.where(special, quiet, rounded)


def bf16_to_float(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


class LowPrecisionReference(ReferenceOptimizer):
    """ReferenceOptimizer with each state of at least `min_size` elements stored as
    `state_dtype` between steps: decoded before the rule, encoded after it."""

    def __init__(self, name, params, state_dtype, min_size=4096, seed=0, **options):
        super().__init__(name, params, **options)
        import fastopt

        self.family = getattr(fastopt, name).family
        self.state_dtype = state_dtype
        self.min_size = min_size
        self.seed = seed
        self.stored = [dict() for _ in params]
        self.group_step = 0

    def step(self, grads):
        live = []
        for k, p in enumerate(self.params):
            if p.size < self.min_size or grads[k] is None:
                live.append(False)
                continue
            live.append(True)
            for name, saved in self.stored[k].items():
                self.state[k][name] = self.decode(saved, name, p.dtype)
        super().step(grads)
        self.group_step += 1
        for k, p in enumerate(self.params):
            if not live[k]:
                continue
            r = None
            if self.state_dtype == "bfloat16":
                stream = (k << 40) | self.group_step
                r = rounding_bits(p.size, self.seed, stream).reshape(p.shape)
            names = [s.name for s in self.family.states]
            for name, value in self.state[k].items():
                if name not in names:       # a scalar (NAdam's mu_product)
                    continue
                j = names.index(name)
                self.stored[k][name] = self.encode(value, name, j, r)

    def nonnegative(self, name):
        return self.family.state(name).values == "nonnegative"

    def encode(self, value, name, j, r):
        if self.state_dtype == "int8":
            return quantize(value, self.nonnegative(name))
        r8 = (r if j == 0 else r >> 8 if j == 1 else r ^ (r >> 8)) & 0xff
        return bf16_stochastic(value.astype(np.float32), r8)

    def decode(self, saved, name, dtype):
        if self.state_dtype == "int8":
            return dequantize(*saved, self.nonnegative(name), dtype)
        return bf16_to_float(saved).astype(dtype)


def assert_stored_state_equal(state, ref, k, skip=("step", "mu_product"), check_full=None):
    """Optimizer state entry ``state`` (param `k`) equal to the reference's: int8 codes and
    absmax and bfloat16 bits as stored (``ref.stored``), full-precision arrays as
    ``ref.state`` (after ``check_full(value)``, the caller's check of why they are full)."""
    from fastopt.optim.storage import BFloat16State, Int8State

    for name, value in state.items():
        if name in skip:
            continue
        if isinstance(value, Int8State):
            codes, absmax = ref.stored[k][name]
            np.testing.assert_array_equal(value.codes, codes, err_msg=name)
            np.testing.assert_array_equal(value.absmax, absmax, err_msg=name)
        elif isinstance(value, BFloat16State):
            np.testing.assert_array_equal(value.bits, ref.stored[k][name], err_msg=name)
        else:
            if check_full is not None:
                check_full(value)
            np.testing.assert_array_equal(value, ref.state[k][name], err_msg=name)
