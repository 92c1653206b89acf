"""The flat multi-tensor layout of a parameter list and its split between ranks.

Pure numpy (no MPI), so that the arithmetic of the split is tested in one process.

The parameters of one dtype, flattened and concatenated in their order, form one flat
vector (a *block*); rank ``r`` of ``size`` owns the contiguous slice
``[bounds[r], bounds[r + 1])`` of each block. A parameter therefore meets a rank's slice in
one contiguous *piece* of its flattened elements (possibly empty).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["Block", "blocks_of", "contiguous_view", "split_bounds"]

#: slice boundaries fall on multiples of this many bytes (SIMD-aligned pieces where the
#: block itself is aligned; the imbalance is at most one such run of elements)
ALIGN_BYTES = 64


def split_bounds(total: int, size: int, itemsize: int) -> list[int]:
    """``size + 1`` nondecreasing boundaries splitting ``total`` elements into ``size``
    contiguous slices as equal as the alignment to ``ALIGN_BYTES`` allows."""
    align = max(1, ALIGN_BYTES // itemsize)
    bounds = [(total * r // size) // align * align for r in range(size)]
    bounds.append(total)
    return bounds


class Block:
    """The parameters of one dtype as one flat vector, split between ``size`` ranks.

    Attributes
    ----------
    dtype : numpy.dtype
    indices : list of int
        Positions (in the flattened param list) of the parameters of this dtype, in order.
    offsets, sizes : list of int
        Where each of them starts in the flat vector, and its number of elements.
    total : int
        Elements of the flat vector.
    bounds : list of int
        Rank ``r`` owns ``[bounds[r], bounds[r + 1])``.
    """

    def __init__(self, dtype: np.dtype, indices: list[int], sizes: list[int], size: int):
        self.dtype = np.dtype(dtype)
        self.indices = indices
        self.sizes = sizes
        self.offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]
        self.total = int(sum(sizes))
        self.bounds = split_bounds(self.total, size, self.dtype.itemsize)

    def owned(self, rank: int) -> tuple[int, int]:
        """Rank ``rank``'s slice ``(lo, hi)`` of the flat vector."""
        return self.bounds[rank], self.bounds[rank + 1]

    def counts(self) -> list[int]:
        """Elements owned by each rank."""
        return [self.bounds[r + 1] - self.bounds[r] for r in range(len(self.bounds) - 1)]

    def pieces(self, rank: int) -> Iterator[tuple[int, int, int, int]]:
        """``(index, offset, start, stop)`` for every parameter of the block: the piece
        ``[start, stop)`` of its flattened elements that ``rank`` owns (``start == stop``
        when it owns none) and where the parameter starts in the flat vector."""
        lo, hi = self.owned(rank)
        for i, offset, n in zip(self.indices, self.offsets, self.sizes):
            start = min(max(lo - offset, 0), n)
            stop = max(min(hi - offset, n), start)
            yield i, offset, start, stop


def blocks_of(params: Sequence[np.ndarray], size: int) -> list[Block]:
    """One :class:`Block` per dtype of ``params``, in the order the dtypes first appear."""
    by_dtype: dict[np.dtype, tuple[list[int], list[int]]] = {}
    for i, p in enumerate(params):
        indices, sizes = by_dtype.setdefault(p.dtype, ([], []))
        indices.append(i)
        sizes.append(int(p.size))
    return [Block(dtype, indices, sizes, size) for dtype, (indices, sizes) in by_dtype.items()]


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def contiguous_view(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """A flat view of the memory that ``arrays`` occupy when they lie back to back, in
    order, in one C-contiguous writeable array of their dtype; else None.

    Parameters made with :func:`fastopt.distributed.pack_params` (or as views of one flat
    buffer in order) qualify: then the updated values are gathered straight into them.
    """
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return None
    dtype = arrays[0].dtype
    root = _root(arrays[0])
    if not (root.flags.c_contiguous and root.flags.writeable):
        return None
    start = arrays[0].__array_interface__["data"][0]
    base = root.__array_interface__["data"][0]
    end = start
    for a in arrays:
        if (a.dtype != dtype or not a.flags.c_contiguous or _root(a) is not root
                or a.__array_interface__["data"][0] != end):
            return None
        end += a.nbytes
    offset = start - base
    if offset < 0 or end - base > root.nbytes:
        return None
    return np.ndarray(((end - start) // dtype.itemsize,), dtype=dtype, buffer=root,
                      offset=offset)
