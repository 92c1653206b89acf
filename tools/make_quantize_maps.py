"""Write csrc/quantize_maps.h: the two 256-entry dynamic quantization maps of Dettmers et
al. ("8-bit Optimizers via Block-wise Quantization", ICLR 2022) and the tables of the fast
nearest-code encode (csrc/lowprec.h).

    python tools/make_quantize_maps.py          # rewrites csrc/quantize_maps.h

The dynamic map: for exponent i = 0 .. 6, the midpoints of n_i equal steps of [0.1, 1],
scaled by 10^(i - 6), with n_i = 2^i for the signed map (both signs) and 2^(i + 1) for the
unsigned one; plus 0 and 1. Sorted, 256 values each (the signed map has 1 but not -1).

The encode of a magnitude a in [0, 1]: the nearest code, ties to the smaller magnitude.
The thresholds between neighbouring codes are the exact midpoints rounded DOWN to float32,
so ``a > threshold`` (in float32) is ``a > exact midpoint``. A bucket table indexed by the
float's exponent and its 7 leading mantissa bits gives the code below the bucket; each
bucket holds at most one threshold (checked here), so one compare finishes the encode.
Each bucket's entry packs the code below it and the low 16 bits of its threshold (all
magnitudes of a bucket share their upper 16 bits), so the encode is ONE lookup in a
12 KB uint32 table (a gather in the SIMD clones) and an integer compare.

The AVX-512 codec (csrc/lowprec_x86.h) uses two more tables per map:
- byte planes: byte k of the 256 floats of the map, plane by plane, so that a decode is
  byte permutes (VBMI) of 64 codes at a time, and the planes interleaved back into floats;
- regions: the magnitudes [0, 1] cut at the thresholds between decades (0, the 7 decades,
  1). Inside decade i (n codes from `base`, map values D * (0.1 + 0.9 (k + 0.5) / n)), the
  threshold between codes base + k and base + k + 1 is near f = k + 1 of the linear
  f(a) = a * n / (0.9 D) - n / 9, so the code is base + min(floor(f), n - 1). The region of
  a magnitude is that of its binade (float exponent, a 32-entry table) plus one if it is
  above the one region boundary the binade may hold (checked here). floor(f) is taken from
  f - DELTA and f + DELTA: where the two differ, a is too near a threshold for float
  arithmetic and the exact encode decides (the C tool tools/check_qencode.c compares the
  result with the exact encode on every float32 magnitude).
"""

from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "csrc", "quantize_maps.h")

#: The buckets: magnitudes from 2^-(EXP_SPAN) to 1, MANT_BITS leading mantissa bits each.
MANT_BITS = 7
EXP_SPAN = 24
FIRST_BUCKET = (127 - EXP_SPAN) << MANT_BITS           # bits >> (23 - MANT_BITS) of 2^-24
NBUCKETS = (EXP_SPAN << MANT_BITS) + 1                 # the last one: a >= 1 (and NaN)


def dynamic_map(signed: bool) -> np.ndarray:
    values = [0.0, 1.0]
    for i in range(7):
        n = 2 ** i if signed else 2 ** (i + 1)
        means = 0.1 + 0.9 * (np.arange(n) + 0.5) / n
        values += list(10.0 ** (i - 6) * means)
        if signed:
            values += list(-(10.0 ** (i - 6)) * means)
    out = np.sort(np.array(values, dtype=np.float32))
    assert out.size == 256 and np.unique(out).size == 256
    return out


def round_down_f32(x: np.ndarray) -> np.ndarray:
    """float64 values rounded toward -inf to float32."""
    f = x.astype(np.float32)
    too_big = f.astype(np.float64) > x
    f[too_big] = np.nextafter(f[too_big], np.float32(-np.inf))
    return f


def thresholds(m: np.ndarray) -> np.ndarray:
    """thr[c]: between code c and c + 1 (exact midpoint rounded down); thr[255] = +inf."""
    mid = (m[:-1].astype(np.float64) + m[1:].astype(np.float64)) / 2.0
    return np.append(round_down_f32(mid), np.float32(np.inf))


def bucket_entries(thr: np.ndarray, zero: int) -> np.ndarray:
    """Per bucket: (code of its lowest magnitude) << 16 | the low 16 bits of the threshold
    inside it (0xffff when none), after checking that no bucket holds two thresholds. All
    magnitudes of a bucket share their upper 16 bits, so ``a > threshold`` is a compare of
    the low 16 bits, and the code of a is ``entry >> 16`` plus that compare."""
    starts = (np.arange(NBUCKETS, dtype=np.uint32) + FIRST_BUCKET) << (23 - MANT_BITS)
    lo = starts.view(np.float32)
    pos = thr[zero:-1]                                  # the thresholds of magnitudes
    below = np.searchsorted(pos, lo, side="left")       # thresholds < lo  (a > t for a = lo)
    hi = np.append(lo[1:], np.float32(np.inf))
    inside = np.searchsorted(pos, hi, side="left") - below
    if inside.max() > 1:
        sys.exit("a bucket holds two thresholds: use more mantissa bits")
    assert lo[0] < pos[0] and inside[-1] == 0  # the clamped end buckets hold none
    low = np.full(NBUCKETS, 0xFFFF, dtype=np.uint32)
    has = inside == 1
    t_bits = pos[np.minimum(below, pos.size - 1)].view(np.uint32)
    assert np.all((t_bits[has] >> 16) == (starts[has] >> 16))
    # (a threshold whose low bits are 0xffff is above every magnitude of its bucket: the
    # entry of "no threshold" says the same, and the next bucket counts it)
    low[has] = t_bits[has] & 0xFFFF
    return ((zero + below).astype(np.uint32) << 16) | low


#: Half the width of the band around each threshold (in units of f) left to the exact encode.
DELTA = 2.0 ** -12
#: Binades of the region table: exponents 96 .. 127 (a < 2^-31 shares the first one).
FIRST_EXPONENT = 96


def region_tables(m: np.ndarray, thr: np.ndarray, zero: int, signed: bool) -> dict:
    """The region and binade tables of the AVX-512 encode of magnitudes (see the module
    docstring): per region r = 0 (the zero code) .. 8 (the code of 1): scale, offset
    (base - DELTA folded in; f + 2 DELTA is the other end of the band) and top code; per
    binade: its first region and the boundary above which the next one starts (+inf when
    none)."""
    scale, low, top, bounds = [], [], [], []
    scale.append(0.0)
    low.append(zero + 0.5)
    top.append(zero)
    base = zero + 1
    bounds.append(thr[zero])                     # zero code | decade 0
    for i in range(7):
        n = 2 ** i if signed else 2 ** (i + 1)
        d = 10.0 ** (i - 6)
        scale.append(n / (0.9 * d))
        low.append(base - n / 9.0 - DELTA)
        top.append(base + n - 1)
        base += n
        bounds.append(thr[base - 1])             # decade i | decade i + 1 (or the code of 1)
    assert base == 255
    scale.append(0.0)
    low.append(255.5)
    top.append(255)
    bounds = np.array(bounds, dtype=np.float32)
    assert np.all(np.diff(bounds) > 0)
    # per binade [2^(e-127), 2^(e-126)): the region of its lowest magnitude, and the
    # boundary inside it; the last binade (e = 127) holds only 1 (a is clamped to 1)
    first_region, split = [], []
    for e in range(FIRST_EXPONENT, 128):
        lo = np.float32(2.0 ** (e - 127)) if e > FIRST_EXPONENT else np.float32(0.0)
        hi = np.float32(2.0 ** (e - 126))
        r = int(np.searchsorted(bounds, lo, side="left"))   # boundaries < lo
        inside = bounds[(bounds >= lo) & (bounds < hi)]
        assert inside.size <= 1, "a binade holds two region boundaries"
        first_region.append(r)
        split.append(inside[0] if inside.size else np.float32(np.inf))
    return {"scale": np.array(scale, np.float32), "low": np.array(low, np.float32),
            "top": np.array(top, np.int32),
            "binade_region": np.array(first_region, np.int32),
            "binade_split": np.array(split, np.float32)}


def pad16(values: np.ndarray) -> np.ndarray:
    out = np.zeros(16, dtype=values.dtype)
    out[:values.size] = values
    return out


def c_array(ctype: str, name: str, values, fmt) -> str:
    items = [fmt(v) for v in values]
    lines = []
    for k in range(0, len(items), 8):
        lines.append("    " + ", ".join(items[k:k + 8]) + ",")
    return f"static const {ctype} {name}[{len(items)}] = {{\n" + "\n".join(lines) + "\n};\n"


def f32(v: float) -> str:
    if np.isinf(v):
        return "INFINITY"
    return np.format_float_scientific(np.float32(v), unique=True, precision=None) + "f"


def main() -> None:
    parts = [
        "/* quantize_maps.h -- GENERATED by tools/make_quantize_maps.py; do not edit.\n"
        " * The dynamic quantization maps of Dettmers et al. (signed: first moments; unsigned:\n"
        " * non-negative state), the thresholds between neighbouring codes (exact midpoints\n"
        " * rounded down to float32) and the bucket tables of the fast encode (lowprec.h). */\n"
        "#ifndef FASTOPT_QUANTIZE_MAPS_H\n#define FASTOPT_QUANTIZE_MAPS_H\n\n#include <math.h>\n"
        "#include <stdint.h>\n\n",
        f"#define FO_QMAP_MANT_BITS {MANT_BITS}\n#define FO_QMAP_FIRST_BUCKET {FIRST_BUCKET}\n"
        f"#define FO_QMAP_NBUCKETS {NBUCKETS}\n#define FO_QMAP_FIRST_EXPONENT {FIRST_EXPONENT}\n"
        f"#define FO_QENC_BAND {f32(2 * DELTA)}\n",
    ]
    for signed, tag in ((True, "signed"), (False, "unsigned")):
        m = dynamic_map(signed)
        zero = int(np.flatnonzero(m == 0)[0])
        thr = thresholds(m)
        entries = bucket_entries(thr, zero)
        parts.append(f"\n#define FO_QMAP_{tag.upper()}_ZERO {zero}\n")
        parts.append(c_array("float", f"fo_qmap_{tag}", m, f32))
        parts.append(c_array("uint32_t", f"fo_qenc_{tag}", entries, lambda v: f"0x{int(v):08x}u"))
        planes = m.view(np.uint8).reshape(256, 4).T.ravel()      # planes[k * 256 + code]
        parts.append(c_array("uint8_t", f"fo_qmap_{tag}_planes", planes, lambda v: f"{int(v)}"))
        reg = region_tables(m, thr, zero, signed)
        for key in ("scale", "low"):
            parts.append(c_array("float", f"fo_qenc_{tag}_{key}", pad16(reg[key]), f32))
        parts.append(c_array("int32_t", f"fo_qenc_{tag}_top", pad16(reg["top"]), str))
        parts.append(c_array("int32_t", f"fo_qenc_{tag}_binade_region", reg["binade_region"],
                             str))
        parts.append(c_array("float", f"fo_qenc_{tag}_binade_split", reg["binade_split"], f32))
    parts.append("\n#endif\n")
    text = "".join(parts)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
