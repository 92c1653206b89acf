"""The Philox entry points beyond the spec table (fuzz_specs.PHILOX_KERNELS).

The table fuzzes philox4x32_10 and philox_stream against a vectorized numpy Philox4x32-10
(fuzz_specs.philox4x32_10_numpy); here that reference is held to Random123's known-answer
vectors and to test_philox's scalar reference, and the stream's invariants are checked
directly: a stream is a function of (seed, stream) whose first n words do not depend on n
(a longer call extends a shorter one) or on the thread count; then regressions of boundary
bugs the fuzzing found.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastopt
from fastopt import _kernels
from fastopt_testing.fuzz_harness import assert_names, fuzz_settings
from fastopt_testing.fuzz_specs import philox4x32_10_numpy, philox_stream_numpy
from fastopt_testing.philox_reference import KAT, reference_stream

SEEDS = st.integers(0, 2**64 - 1) | st.sampled_from([0, 2**32 - 1, 2**32, 2**64 - 1])


@pytest.mark.parametrize("ctr, key, expected", KAT, ids=["zeros", "ones", "pi"])
def test_numpy_reference_matches_known_answers(ctr, key, expected):
    got = philox4x32_10_numpy([[w] for w in ctr], key)[:, 0]
    assert [int(w) for w in got] == expected


@pytest.mark.parametrize("seed, stream", [(0, 0), (2**64 - 1, 7), (0x0123456789ABCDEF, 2**33)])
def test_numpy_stream_matches_scalar_reference(seed, stream):
    np.testing.assert_array_equal(philox_stream_numpy(200, seed, stream),
                                  reference_stream(200, seed, stream))


@fuzz_settings(0.5)
@given(seed=SEEDS, stream=SEEDS, n=st.integers(0, 3000), m=st.integers(0, 3000))
def test_stream_prefixes_agree(seed, stream, n, m):
    """philox_stream(n) is the first n words of philox_stream(m) for n <= m, and again the
    same words on a second call."""
    n, m = min(n, m), max(n, m)
    long = _kernels.philox_stream(m, seed, stream)
    assert long.dtype == np.uint32 and long.shape == (m,)
    np.testing.assert_array_equal(_kernels.philox_stream(n, seed, stream), long[:n])
    np.testing.assert_array_equal(_kernels.philox_stream(m, seed, stream), long)


@pytest.mark.skipif(not _kernels.build_info()["openmp"] or _kernels._max_threads() < 2,
                    reason="needs OpenMP and 2 threads")
@fuzz_settings(0.1)
@given(seed=SEEDS, stream=SEEDS, n=st.integers(40_000, 80_000))
def test_stream_same_bits_for_one_and_two_threads_at_any_length(seed, stream, n):
    """Above the serial threshold, lengths that split the tiles unevenly between threads."""
    words = []
    for threads in (1, 2):
        with fastopt.threads(threads):
            words.append(_kernels.philox_stream(n, seed, stream).tobytes())
    assert words[0] == words[1]
    assert words[0] == philox_stream_numpy(n, seed, stream).tobytes()


# -- regressions: boundary bugs found by fuzzing (fixed) ------------------------------------


@pytest.mark.parametrize("n", [2**63, 2**64 - 1, np.uint64(2**63)])
def test_stream_length_beyond_ssize_t_is_an_error_naming_n(n):
    with pytest.raises((ValueError, MemoryError)) as info:
        _kernels.philox_stream(n, 1, 0)
    assert_names(str(info.value), {"n"}, f"philox_stream(n={n})")


@pytest.mark.parametrize("name", ["ctr", "key"])
@pytest.mark.parametrize("bad", [None, 5, 1.5], ids=["None", "int", "float"])
def test_philox_non_iterable_words_name_the_argument(name, bad):
    args = {"ctr": [0, 0, 0, 0], "key": [0, 0], name: bad}
    with pytest.raises(TypeError) as info:
        _kernels.philox4x32_10(**args)
    assert_names(str(info.value), {name}, f"philox4x32_10({name}={bad!r})")
