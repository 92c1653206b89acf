"""A plain numpy statement of the update of bfloat16 parameters (csrc/optim_bf16param.inc):
decode the bits to float32, run the family's reference rule in float32 (with the state
stored as LowPrecisionReference stores it), round back to bfloat16 -- to nearest even,
stochastically with 16 Philox bits per element from the params' own stream, or (Kahan) to
nearest from param + compensation, the rounding error kept as the new compensation.
Written from the definitions (bit arithmetic on the float32 pattern), not from the C
code."""

import numpy as np

from fastopt_testing.lowprec_reference import LowPrecisionReference, bf16_to_float, rounding_bits

#: The params' rounding draws from stream (position << 40 | update) with this bit set.
PARAM_STREAM = 1 << 63


def bf16_round_stochastic16(x, r16):
    """bfloat16 bits of float32 x, rounded up with probability (dropped bits) / 2^16 from
    16 random bits r16 (Inf stays Inf, NaN becomes a quiet NaN)."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + (r16.astype(np.uint64) & 0xffff)) >> 16).astype(np.uint16)
    special = (b & 0x7fffffff) >= 0x7f800000
    quiet = ((b >> 16) | np.where(b & 0x7fffff, 0x40, 0).astype(np.uint64)).astype(np.uint16)
    return np.where(special, quiet, rounded)


def bf16_round_nearest(x):
    """bfloat16 bits of float32 x rounded to nearest, ties to even (NaN stays a NaN)."""
    b = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((b + 0x7fff + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (b & 0x7fffffff) > 0x7f800000
    return np.where(nan, ((b >> 16) | 0x40).astype(np.uint16), rounded)


class Bf16ParamReference(LowPrecisionReference):
    """The reference optimizer `name` over bfloat16 params given as their uint16 `bits`
    (updated in place), state stored as `state_dtype` (None: float32); `compensation`:
    the Kahan buffers (uint16 bits, zeros at first)."""

    def __init__(self, name, bits, state_dtype=None, rounding="stochastic", min_size=4096,
                 seed=0, **options):
        self.bits = bits
        floats = [bf16_to_float(b) for b in bits]
        super().__init__(name, floats, state_dtype,
                         min_size=min_size if state_dtype is not None else np.inf,
                         seed=seed, **options)
        self.rounding = rounding
        self.compensation = [np.zeros_like(b) for b in bits]

    def step(self, grads):
        for p, b, c in zip(self.params, self.bits, self.compensation):
            p[...] = bf16_to_float(b)
            if self.rounding == "kahan":
                p += bf16_to_float(c)
        super().step([None if g is None else np.asarray(g).astype(np.float32) for g in grads])
        for k, (p, b) in enumerate(zip(self.params, self.bits)):
            if grads[k] is None:
                continue
            if self.rounding == "stochastic":
                stream = PARAM_STREAM | (k << 40) | self.group_step
                r = rounding_bits(p.size, self.seed, stream).reshape(p.shape)
                b[...] = bf16_round_stochastic16(p, r)
            else:
                b[...] = bf16_round_nearest(p)
            if self.rounding == "kahan":
                back = bf16_to_float(b)
                with np.errstate(invalid="ignore"):
                    error = np.where(np.isfinite(back), p - back, np.float32(0))
                self.compensation[k][...] = bf16_round_nearest(error)
