"""norm_reduce / scale_ (csrc/norm.c): the two passes of gradient clipping."""

import math

import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt_testing.arrays import snapshot


def reference(arrays, p):
    flat = np.concatenate([np.abs(a.astype(np.float64)).ravel() for a in arrays])
    if math.isinf(p):
        return float(flat.max()) if flat.size else 0.0
    return float((flat ** p).sum())


@pytest.mark.parametrize("p", [1.0, 2.0, 3.5, math.inf])
def test_matches_numpy(p, dtype, rng):
    arrays = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (0,), (70_001,), (5,)]]
    got = _kernels.norm_reduce(arrays, p)
    assert got == pytest.approx(reference(arrays, p), rel=1e-12)


def test_mixed_dtypes_and_strided_readonly_inputs(rng):
    a = rng.standard_normal((40, 30))[:, ::3]
    b = rng.standard_normal(1000).astype(np.float32)
    b.flags.writeable = False
    assert _kernels.norm_reduce([a, b], 2.0) == pytest.approx(reference([a, b], 2.0), rel=1e-12)
    assert _kernels.norm_reduce([a, b], math.inf) == reference([a, b], math.inf)


@pytest.mark.parametrize("p", [2.0, math.inf, 1.0])
def test_nan_propagates(p, dtype):
    x = np.ones(100_000, dtype)
    x[77_777] = np.nan
    assert math.isnan(_kernels.norm_reduce([np.ones(3, dtype), x], p))


@pytest.mark.parametrize("n", [1, 7, 8, 9, 4095, 4096, 4103, 70_001])
def test_max_abs_is_exact_at_every_position(n, dtype, rng):
    # the max-abs path keeps eight integer maxima of the bits of |x| and falls back to
    # the scalar loop when the maximum is not finite: the largest |x| wins wherever it
    # sits (in the vectorized part, in the tail, negative), and inf and the NaN of the
    # piece come out as before
    x = rng.standard_normal(n).astype(dtype)
    for where in {0, n // 2, n - 1}:
        y = x.copy()
        y[where] = -7.5
        assert _kernels.norm_reduce([y], math.inf) == 7.5
        y[where] = -np.inf
        assert _kernels.norm_reduce([y], math.inf) == math.inf
        y[where] = np.nan
        assert math.isnan(_kernels.norm_reduce([y], math.inf))
    tiny = np.full(n, -np.finfo(dtype).smallest_subnormal, dtype)
    assert _kernels.norm_reduce([tiny], math.inf) == float(np.finfo(dtype).smallest_subnormal)
    assert _kernels.norm_reduce([np.full(n, -0.0, dtype)], math.inf) == 0.0


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_one_and_two_threads_bitwise_identical(p, dtype, rng):
    arrays = [rng.standard_normal(1_500_000).astype(dtype) for _ in range(2)]
    with fastopt.threads(1):
        one = _kernels.norm_reduce(arrays, p)
    with fastopt.threads(2):
        two = _kernels.norm_reduce(arrays, p)
    assert one.hex() == two.hex()


def test_scale_matches_numpy_and_is_thread_invariant(dtype, rng):
    base = [rng.standard_normal(n).astype(dtype) for n in (3, 2_000_000)]
    results = []
    for threads in (1, 2):
        xs = [b.copy() for b in base]
        with fastopt.threads(threads):
            _kernels.scale_(xs, 0.3)
        results.append(snapshot(xs))
        for x, b in zip(xs, base):
            np.testing.assert_array_equal(x, b * dtype(0.3))
    assert results[0] == results[1]


def test_scale_rejects_readonly_and_changes_nothing():
    a, b = np.ones(4), np.ones(4)
    b.flags.writeable = False
    with pytest.raises(ValueError, match=r"x\[1\]: expected a writeable"):
        _kernels.scale_([a, b], 2.0)
    assert (a == 1).all()
    with pytest.raises(TypeError, match="factor"):
        _kernels.scale_([a], "2")
    with pytest.raises(ValueError, match="norm_type"):
        _kernels.norm_reduce([a], -1.0)
    with pytest.raises(TypeError, match=r"x\[0\]"):
        _kernels.norm_reduce([np.ones(3, np.int32)], 2.0)
