"""Where fastopt puts the state arrays it allocates: away from the other streams of a step.

An optimizer step streams its param, gradient and state arrays side by side, element i of
each at once, and writes back the param and the states. On x86 cores (AMD Zen measured
here, Intel documents the same) a load whose address matches a pending store's in the low
12 bits (the offset in a 4 KiB page) waits for that store as if they overlapped ("4K
aliasing"). When one written stream sits just ahead of another stream modulo 4096 bytes,
every load of that stream meets such a store: a float32 Adam step on 1e6 elements was
25-60% slower with a state 64-128 bytes ahead of or behind the param than with the streams
spread over the page (benchmarks/adam_placement.py). The allocator decides those offsets
(numpy's and torch's differ per process), so the same step ran at two speeds in fresh
processes. fastopt places each state array it allocates at the offset farthest from the
streams it will meet, and at the param's alignment modulo 64 bytes (the kernels align
their vector loop on the param's cache lines, so a state aligned as the param never
splits a load across two lines).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: The aliasing period: the low address bits a load is checked against pending stores.
PAGE = 4096
#: Arrays below this many bytes are allocated plainly: the padding (up to a page) would be a
#: large share of them. (A 1e4-element float32 step, 40 KB, still lost 25% to a state 64
#: bytes behind the param.)
MIN_PLACED_BYTES = 1 << 15
_LINE = 64


def best_offset(like: int, avoid: Iterable[int]) -> int:
    """The offset in a page (0..PAGE-1) for a new stream of a step whose param is at
    address `like`: congruent to `like` modulo 64 bytes, and as far as possible (around the
    page) from the page offsets of the addresses in `avoid` (the param, its gradient and the
    states already placed). Ties go to the lowest offset, so the choice is deterministic."""
    taken = sorted({a % PAGE for a in avoid} | {like % PAGE})
    base = like % _LINE
    best, best_gap = base, -1
    for c in range(base, PAGE, _LINE):
        gap = min(min((c - t) % PAGE, (t - c) % PAGE) for t in taken)
        if gap > best_gap:
            best, best_gap = c, gap
    return best


def addresses(arrays: Iterable[object]) -> list[int]:
    """The data addresses of the numpy arrays among `arrays` that have at least one
    dimension (the streams a step's new state meets; scalars and other entries are none)."""
    return [a.ctypes.data for a in arrays if isinstance(a, np.ndarray) and a.ndim]


def placed_full(p: np.ndarray, fill: float, avoid: Iterable[int] = (),
                dtype: np.dtype | None = None) -> np.ndarray:
    """An array shaped like `p` (of `p`'s dtype or `dtype`) holding `fill`, whose first
    element sits at :func:`best_offset` from `p` and the addresses in `avoid`; arrays under
    MIN_PLACED_BYTES are plain ``np.full``. The result is a view into a buffer at most a
    page and a line larger (numpy still gives that buffer huge pages from 4 MiB)."""
    dtype = np.dtype(p.dtype if dtype is None else dtype)
    nbytes = p.size * dtype.itemsize
    if nbytes < MIN_PLACED_BYTES:
        return np.full(p.shape, fill, dtype=dtype)
    raw = np.empty(nbytes + PAGE + _LINE, np.uint8)
    here = raw.ctypes.data
    start = (best_offset(p.ctypes.data, avoid) - here) % PAGE
    out = raw[start:start + nbytes].view(dtype).reshape(p.shape)
    out.fill(fill)
    return out


def slot_offsets(sizes: list[int], itemsize: int, slot: int, places: list[int | None]
                 ) -> tuple[list[int], int]:
    """Element offsets of tensors of `sizes` packed in one arena whose start is on a page
    boundary: each on a `slot`-element boundary, and tensor k at byte offset ``places[k]``
    modulo PAGE where that is not None (padding up to a page before it). Returns the offsets
    and the arena's length in elements."""
    offsets, total = [], 0
    for n, place in zip(sizes, places):
        if place is not None:
            total += ((place - total * itemsize) % PAGE) // itemsize
        offsets.append(total)
        total += -(-n // slot) * slot
    return offsets, total
