"""The memory-bandwidth yardstick: fastopt._kernels.stream_copy and stream_triad.

``track_*_gbs`` report the bytes each kernel must move (copy 2, triad 3 array sizes,
STREAM's convention) per second; on x86 the hardware also reads each destination line
before writing it (write-allocate), so the real traffic is 3 and 4 array sizes
(``python -m fastopt bench`` uses that figure as its limit). np.copyto is the numpy
baseline (libc memcpy, non-temporal stores for large arrays).
"""

import numpy as np

from .common import (
    DTYPES,
    FLAT_SIZES,
    THREADS,
    Benchmark,
    elements,
    minimal_bytes,
    per_call_seconds,
    set_threads,
)


class Stream(Benchmark):
    params = (FLAT_SIZES, DTYPES, THREADS)

    def setup(self, size, dtype, threads):
        set_threads(threads)
        from fastopt import _kernels

        if not hasattr(_kernels, "stream_copy"):
            raise NotImplementedError("this fastopt has no bandwidth kernels")
        self.copy, self.triad = _kernels.stream_copy, _kernels.stream_triad
        n = elements(size)
        self.a, self.b, self.c = (np.full(n, 0.5, dtype) for _ in range(3))

    def time_copy(self, size, dtype, threads):
        self.copy(self.a, self.b)

    def time_triad(self, size, dtype, threads):
        self.triad(self.a, self.b, self.c, 0.5)

    def time_numpy_copyto(self, size, dtype, threads):
        np.copyto(self.a, self.b)

    def track_copy_gbs(self, size, dtype, threads):
        t = per_call_seconds(lambda: self.copy(self.a, self.b))
        return minimal_bytes("copy", size, dtype) / t / 1e9

    track_copy_gbs.unit = "GB/s"

    def track_triad_gbs(self, size, dtype, threads):
        t = per_call_seconds(lambda: self.triad(self.a, self.b, self.c, 0.5))
        return minimal_bytes("triad", size, dtype) / t / 1e9

    track_triad_gbs.unit = "GB/s"
