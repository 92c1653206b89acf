"""Philox4x32-10 references: Random123's known answers and dropout's element order."""

import numpy as np

from fastopt._kernels import philox4x32_10

# Random123 kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4].
KAT = [
    ([0x00000000] * 4, [0x00000000] * 2, [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def reference_stream(n, seed, stream):
    """Dropout's element order, from the scalar reference: element i reads word
    (i % 64) // 16 of block 16 * (i // 64) + i % 16, counter (block, stream), key seed."""
    key = [seed & 0xFFFFFFFF, seed >> 32]
    out = []
    for i in range(n):
        block = 16 * (i // 64) + i % 16
        ctr = [block & 0xFFFFFFFF, block >> 32, stream & 0xFFFFFFFF, stream >> 32]
        out.append(philox4x32_10(ctr, key)[(i % 64) // 16])
    return np.array(out, np.uint32)
