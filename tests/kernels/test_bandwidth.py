"""fastopt._kernels.stream_copy / stream_triad: the bandwidth yardstick of the benchmarks."""

import numpy as np
import pytest

import fastopt
from fastopt._kernels import stream_copy, stream_triad
from fastopt_testing.arrays import snapshot

OPENMP = fastopt._kernels.build_info()["openmp"]


@pytest.mark.parametrize("n", [0, 1, 17, 1000, 100_003])
def test_copy_equals_source(n, dtype, rng):
    src = rng.standard_normal(n).astype(dtype)
    dst = np.full(n, np.nan, dtype)
    stream_copy(dst, src)
    assert dst.tobytes() == src.tobytes()


@pytest.mark.parametrize("n", [0, 1, 17, 1000, 100_003])
def test_triad_equals_numpy_bitwise(n, dtype, rng):
    b = rng.standard_normal(n).astype(dtype)
    c = rng.standard_normal(n).astype(dtype)
    a = np.empty(n, dtype)
    stream_triad(a, b, c, 0.3)
    expect = b + dtype(0.3) * c  # one rounding per operation, like the kernel (no FMA)
    assert a.tobytes() == expect.tobytes()


def test_multidimensional_arrays(dtype, rng):
    src = rng.standard_normal((3, 4, 5)).astype(dtype)
    dst = np.zeros_like(src)
    stream_copy(dst, src)
    np.testing.assert_array_equal(dst, src)
    stream_triad(dst, src, src, -1.0)
    np.testing.assert_array_equal(dst, np.zeros_like(src))


def test_same_input_twice_is_allowed(dtype):
    b = np.arange(6, dtype=dtype)
    a = np.zeros(6, dtype)
    stream_triad(a, b, b, 2.0)
    np.testing.assert_array_equal(a, 3 * b)


def test_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 3_000_001
    b = rng.standard_normal(n).astype(dtype)
    c = rng.standard_normal(n).astype(dtype)
    out = {}
    for threads in (1, 2):
        a, d = np.empty(n, dtype), np.empty(n, dtype)
        with fastopt.threads(threads):
            stream_triad(a, b, c, 1.0 / 3.0)
            stream_copy(d, c)
            planned = fastopt.kernels.planned_threads(n)
            assert fastopt.kernels.last_threads_used() == planned
        out[threads] = (a.tobytes(), d.tobytes())
    assert out[1] == out[2]


@pytest.mark.skipif(not OPENMP, reason="build without OpenMP")
def test_uses_two_threads_on_large_arrays():
    if fastopt._kernels._max_threads() < 2:
        pytest.skip("needs at least 2 OpenMP threads")
    a, b = np.zeros(1_000_000), np.ones(1_000_000)
    with fastopt.threads(2):
        stream_copy(a, b)
        assert fastopt.kernels.last_threads_used() == 2
        stream_copy(a[:100], b[:100])
        assert fastopt.kernels.last_threads_used() == 1


def test_nan_and_inf_propagate():
    b = np.array([np.nan, np.inf, 1.0, -np.inf])
    c = np.array([1.0, 1.0, np.inf, np.inf])
    a = np.zeros(4)
    stream_triad(a, b, c, 1.0)
    assert np.isnan(a[0]) and a[1] == np.inf and a[2] == np.inf and np.isnan(a[3])


def _bad_copy_calls(dtype):
    x = np.zeros(8, dtype)
    other = np.float32 if dtype == np.float64 else np.float64
    ro = np.zeros(8, dtype)
    ro.flags.writeable = False
    strided = np.zeros(16, dtype)[::2]
    return [
        ("list instead of array", ([x], np.ones(8, dtype)), TypeError, "dst"),
        ("int dtype", (np.zeros(8, np.int64), np.ones(8, np.int64)), TypeError, "dst"),
        ("dtype mismatch", (x, np.ones(8, other)), TypeError, "src: expected dtype"),
        ("shape mismatch", (x, np.ones(9, dtype)), ValueError, "src: expected shape"),
        ("read-only dst", (ro, np.ones(8, dtype)), ValueError, "dst: expected a writeable"),
        ("strided dst", (strided, np.ones(8, dtype)), ValueError, "dst: expected a C-contiguous"),
        ("strided src", (x, np.ones(16, dtype)[::2]), ValueError,
         "src: expected a C-contiguous.*must not copy"),
        ("overlap", (x, x), ValueError, "shares memory"),
        ("partial overlap", (strided.base[:8], strided.base[4:12]), ValueError, "shares memory"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_copy_calls(np.float32))))
def test_bad_copy_raises_and_modifies_nothing(case, dtype):
    name, args, exc, words = _bad_copy_calls(dtype)[case]
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    before = snapshot(arrays)
    with pytest.raises(exc, match=words):
        stream_copy(*args)
    assert snapshot(arrays) == before, name


@pytest.mark.parametrize("scalar, exc, words", [
    ("2", TypeError, "scalar"), (True, TypeError, "scalar"), (np.nan, ValueError, "scalar"),
    (np.inf, ValueError, "scalar"), (None, TypeError, "scalar")])
def test_bad_triad_scalar(scalar, exc, words, dtype):
    a, b = np.zeros(4, dtype), np.ones(4, dtype)
    with pytest.raises(exc, match=words):
        stream_triad(a, b, b, scalar)
    assert (a == 0).all()


def test_bad_triad_arrays(dtype):
    a, b = np.zeros(4, dtype), np.ones(4, dtype)
    with pytest.raises(ValueError, match="c: shares memory"):
        stream_triad(a, b, a, 1.0)
    with pytest.raises(ValueError, match="c: expected shape"):
        stream_triad(a, b, np.ones(5, dtype), 1.0)
    with pytest.raises(ValueError, match="b: expected a C-contiguous"):
        stream_triad(a, np.ones(8, dtype)[::2], b, 1.0)
    assert (a == 0).all()
