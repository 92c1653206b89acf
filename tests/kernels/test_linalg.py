"""dot / axpy / scal / L-BFGS two-loop kernels (csrc/linalg.c) against numpy."""
import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt.optimize.lbfgs import LbfgsMemory, two_loop_numpy
from fastopt_testing.arrays import snapshot

N = 100_003          # above the serial threshold, not a multiple of the block size
RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def _two_threads_possible():
    return _kernels.build_info()["openmp"] and fastopt._kernels._max_threads() >= 2


def _ring(dtype, rng, n=N, m=6):
    """A ring buffer of m + 1 rows holding pairs with s'y > 0 (y = A s, A > 0 diagonal)."""
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((m + 1, n)).astype(dtype)
    Y = (S * A).astype(dtype)
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(np.float64), Y.astype(np.float64))
    return S, Y, rho


# ------------------------------------------------------------------ dot / axpy / scal
def test_dot_matches_float64_reference(dtype, rng):
    x = rng.standard_normal(N).astype(dtype)
    y = rng.standard_normal(N).astype(dtype)
    ref = float(np.dot(x.astype(np.float64), y.astype(np.float64)))
    assert _kernels.dot(x, y) == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert _kernels.dot(x[:0], y[:0]) == 0.0
    assert _kernels.dot(x[:5], y[:5]) == pytest.approx(
        float(np.dot(x[:5].astype(np.float64), y[:5].astype(np.float64))), rel=1e-14)


def test_dot_float32_accumulates_in_float64():
    x = np.full(3_000_000, 1.0 + 2.0 ** -11, dtype=np.float32)
    exact = 3_000_000 * float(x[0]) ** 2
    assert _kernels.dot(x, x) == pytest.approx(exact, rel=1e-13)
    assert abs(float(np.dot(x, x)) - exact) > abs(_kernels.dot(x, x) - exact)


def test_dot_strided_and_readonly_inputs_are_copied(rng):
    x = rng.standard_normal(2 * N)[::2]
    y = rng.standard_normal(N)
    y.flags.writeable = False
    assert _kernels.dot(x, y) == pytest.approx(float(np.dot(x, y)), rel=1e-12)


def test_axpy_and_scal_match_numpy(dtype, rng):
    x = rng.standard_normal(N).astype(dtype)
    y = rng.standard_normal(N).astype(dtype)
    a = 0.37
    expected = y + dtype(a) * x
    out = np.empty_like(y)
    keep = snapshot([x, y])
    assert _kernels.axpy(a, x, y, out=out) is out
    assert snapshot([x, y]) == keep
    np.testing.assert_array_equal(out, expected)      # element-wise: exact
    y2 = y.copy()
    _kernels.axpy(a, x, y2)                           # in place
    np.testing.assert_array_equal(y2, expected)
    _kernels.scal(2.5, y2)
    np.testing.assert_array_equal(y2, expected * dtype(2.5))


def test_validation_errors(rng):
    x = rng.standard_normal(10)
    with pytest.raises(TypeError, match="y: expected dtype float64"):
        _kernels.dot(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="y: expected 10 elements"):
        _kernels.dot(x, x[:5])
    with pytest.raises(TypeError, match="x: expected a float32 or float64"):
        _kernels.dot(np.arange(3), np.arange(3))
    ro = x.copy()
    ro.flags.writeable = False
    keep = ro.copy()
    with pytest.raises(ValueError, match="y: expected a writeable array"):
        _kernels.axpy(1.0, x, ro)
    np.testing.assert_array_equal(ro, keep)
    with pytest.raises(ValueError, match="out: overlaps"):
        big = np.zeros(20)
        _kernels.axpy(1.0, big[:10], x, out=big[5:15])
    with pytest.raises(TypeError, match="a: expected a real number"):
        _kernels.scal("2", x)
    S, Y, rho = _ring(np.float64, rng, n=10, m=2)
    with pytest.raises(ValueError, match="count: expected 0 <= count <= 3"):
        _kernels.lbfgs_two_loop(x, S, Y, rho, 1.0, 4, 0)
    with pytest.raises(ValueError, match="newest"):
        _kernels.lbfgs_two_loop(x, S, Y, rho, 1.0, 2, 3)
    with pytest.raises(ValueError, match="gamma"):
        _kernels.lbfgs_two_loop(x, S, Y, rho, 0.0, 2, 1)
    with pytest.raises(TypeError, match="S: expected dtype float64"):
        _kernels.lbfgs_two_loop(x, S.astype(np.float32), Y, rho, 1.0, 2, 1)
    with pytest.raises(ValueError, match="out: shares memory"):
        _kernels.lbfgs_two_loop(x, S, Y, rho, 1.0, 2, 1, out=S[0])
    with pytest.raises(ValueError, match="rows: expected indices in"):
        _kernels.lbfgs_gram(S, Y, [0, 3], None, x)


# ------------------------------------------------------------------ two-loop recursion
@pytest.mark.parametrize("count,newest", [(0, 0), (1, 4), (4, 1), (7, 6), (7, 2)])
@pytest.mark.parametrize("negate", [False, True])
def test_two_loop_matches_numpy(dtype, rng, count, newest, negate):
    S, Y, rho = _ring(dtype, rng)
    g = rng.standard_normal(N).astype(dtype)
    gamma = 0.7
    slots = S.shape[0]
    order = [(newest - count + 1 + k) % slots for k in range(count)]   # oldest first
    ref = two_loop_numpy(g, S, Y, rho, order, gamma) if count else gamma * g
    got = _kernels.lbfgs_two_loop(g, S, Y, rho, gamma, count, newest, negate=negate)
    assert got.dtype == dtype
    np.testing.assert_allclose(-got if negate else got, ref, rtol=RTOL[dtype] * 50,
                               atol=RTOL[dtype] * 50 * np.abs(ref).max())


def test_two_loop_equals_dense_bfgs_product(rng):
    """H from the textbook recursion H+ = V'HV + rho s s', applied densely."""
    n, m = 9, 4
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((m, n))
    Y = S * A
    rho = 1 / np.einsum("ij,ij->i", S, Y)
    gamma = 0.4
    H = gamma * np.eye(n)
    for s, y in zip(S, Y):
        r = 1 / (s @ y)
        V = np.eye(n) - r * np.outer(y, s)
        H = V.T @ H @ V + r * np.outer(s, s)
    g = rng.standard_normal(n)
    np.testing.assert_allclose(_kernels.lbfgs_two_loop(g, S, Y, rho, gamma, m, m - 1),
                               H @ g, rtol=1e-12)


@pytest.mark.skipif(not _two_threads_possible(), reason="needs OpenMP and 2 threads")
def test_one_and_two_threads_bitwise_identical(dtype, rng):
    S, Y, rho = _ring(dtype, rng, n=3 * N)
    g = rng.standard_normal(3 * N).astype(dtype)
    x = rng.standard_normal(3 * N).astype(dtype)
    order = np.array([3, 4, 5, 6, 0, 1])
    k = order.size
    out = {}
    for t in (1, 2):
        with fastopt.threads(t):
            r = [_kernels.dot(g, x).hex()]
            assert _kernels.last_threads_used() == t
            r.append(_kernels.lbfgs_two_loop(g, S, Y, rho, 0.3, 6, 1).tobytes())
            assert _kernels.last_threads_used() == t
            gram = _kernels.lbfgs_gram(S, Y, order, x, g)
            r.append(gram.tobytes())
            SY = np.triu(np.outer(rho[order], rho[order]))    # any numbers will do here
            YY = np.outer(rho[order], rho[order])
            r.append(_kernels.lbfgs_vf_direction(g, S, Y, order, rho[order], SY, YY,
                                                 gram[2:4 * k:4], gram[3:4 * k:4],
                                                 0.3).tobytes())
            y = x.copy()
            _kernels.axpy(0.3, g, y)
            r.append(y.tobytes())
            s_row, y_row = np.empty_like(x), np.empty_like(x)
            sy, yy = _kernels.lbfgs_pair(x, g, S[0], S[1], s_row, y_row)
            assert _kernels.last_threads_used() == t
            r += [sy.hex(), yy.hex(), s_row.tobytes(), y_row.tobytes()]
        out[t] = r
    assert out[1] == out[2]


# ------------------------------------------------------------------ new L-BFGS pair
@pytest.mark.parametrize("n", [0, 1, 7, 4096, N])
def test_pair_matches_numpy(dtype, rng, n):
    x1, x0, g1, g0 = (rng.standard_normal(n).astype(dtype) for _ in range(4))
    S = np.full((3, n), 7.0, dtype=dtype)       # writes row 1 only
    Y = np.full((3, n), 7.0, dtype=dtype)
    sy, yy = _kernels.lbfgs_pair(x1, x0, g1, g0, S[1], Y[1])
    s_ref, y_ref = x1 - x0, g1 - g0               # in the arrays' dtype, as the kernel
    np.testing.assert_array_equal(S[1], s_ref)
    np.testing.assert_array_equal(Y[1], y_ref)
    assert np.all(S[[0, 2]] == 7.0) and np.all(Y[[0, 2]] == 7.0)
    s64, y64 = s_ref.astype(np.float64), y_ref.astype(np.float64)
    assert sy == pytest.approx(float(s64 @ y64), rel=1e-12, abs=1e-300)
    assert yy == pytest.approx(float(y64 @ y64), rel=1e-12, abs=1e-300)
    assert isinstance(sy, float) and isinstance(yy, float)


def test_pair_strided_inputs_are_copied(rng):
    x1, x0, g1, g0 = (rng.standard_normal(2 * 1000) for _ in range(4))
    s, y = np.empty(1000), np.empty(1000)
    sy, yy = _kernels.lbfgs_pair(x1[::2], x0[::2], g1[::2], g0[::2], s, y)
    np.testing.assert_array_equal(s, x1[::2] - x0[::2])
    assert yy == pytest.approx(float((g1[::2] - g0[::2]) @ (g1[::2] - g0[::2])), rel=1e-12)


def test_pair_validation_leaves_arrays_untouched(rng):
    n = 50
    x1, x0, g1, g0 = (rng.standard_normal(n) for _ in range(4))
    s, y = np.zeros(n), np.zeros(n)
    ro = np.zeros(n)
    ro.flags.writeable = False
    arrays = [x1, x0, g1, g0, s, y]
    before = snapshot(arrays)
    bad = [
        ((x1, x0.astype(np.float32), g1, g0, s, y), TypeError, "x0: expected dtype"),
        ((x1, x0[:-1], g1, g0, s, y), ValueError, "x0: expected 50 elements"),
        ((x1.astype(np.int64), x0, g1, g0, s, y), TypeError, "x1: expected a float32"),
        ((x1, x0, g1, g0, ro, y), ValueError, "s: expected a writeable"),
        ((x1, x0, g1, g0, s, np.zeros(2 * n)[::2]), ValueError, "y: expected a C-contiguous"),
        ((x1, x0, g1, g0, s, s), ValueError, "s: shares memory with y"),
        ((x1, x0, g1, g0, x1, y), ValueError, "s: shares memory with x1"),
        ((x1, x0, g1, g0, s, g0), ValueError, "y: shares memory with x1"),
        ((x1, x0, g1, [0.0] * n, s, y), TypeError, "g0: expected a numpy array"),
    ]
    for args, exc, match in bad:
        with pytest.raises(exc, match=match):
            _kernels.lbfgs_pair(*args)
    assert snapshot(arrays) == before


@pytest.mark.parametrize("count", [0, 1, 4])
def test_two_loop_step_forms_the_unit_point_and_slope(dtype, rng, count):
    # x_unit = x + d and g.d from the last pass: the bits of axpy and dot after the call
    S, Y, rho = _ring(dtype, rng)
    g, x = (rng.standard_normal(N).astype(dtype) for _ in range(2))
    d_ref = _kernels.lbfgs_two_loop(g, S, Y, rho, 0.7, count, 2, negate=True)
    unit = np.full(N, 5.0, dtype)
    d, gd = _kernels.lbfgs_two_loop(g, S, Y, rho, 0.7, count, 2, negate=True, x=x,
                                    x_unit=unit)
    np.testing.assert_array_equal(d, d_ref)
    np.testing.assert_array_equal(unit, _kernels.axpy(1.0, d_ref, x, out=np.empty_like(x)))
    assert gd.hex() == _kernels.dot(g, d_ref).hex()
    with pytest.raises(ValueError, match="x_unit: shares memory"):
        _kernels.lbfgs_two_loop(g, S, Y, rho, 0.7, count, 2, x=x, x_unit=x)
    out = np.empty_like(x)   # x would be overwritten by the direction before it is read
    with pytest.raises(ValueError, match="x: shares memory with out"):
        _kernels.lbfgs_two_loop(g, S, Y, rho, 0.7, count, 2, out=out, x=out, x_unit=unit)
    with pytest.raises(ValueError, match="x_unit: expected an array"):
        _kernels.lbfgs_two_loop(g, S, Y, rho, 0.7, count, 2, x=x)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_vf_direction_step_forms_the_unit_point_and_slope(dtype, rng, k):
    # as the two-loop's: x_unit = x + d and g.d from the pass that writes d, with the bits
    # of axpy and dot after the call, and d itself unchanged, at 1 and 2 threads
    S, Y, rho = _ring(dtype, rng)
    g, x = (rng.standard_normal(N).astype(dtype) for _ in range(2))
    rows = np.array([4, 0, 2][:k], dtype=np.int64)
    G = _kernels.lbfgs_gram(S, Y, rows, None, g)
    S64, Y64 = S[rows].astype(np.float64), Y[rows].astype(np.float64)
    args = (g, S, Y, rows, rho[rows], S64 @ Y64.T, Y64 @ Y64.T, G[2:4 * k:4], G[3:4 * k:4],
            0.7)
    d_ref = _kernels.lbfgs_vf_direction(*args, negate=True)
    for threads in (1, 2):
        unit = np.full(N, 5.0, dtype)
        with fastopt.threads(threads):
            d, gd = _kernels.lbfgs_vf_direction(*args, negate=True, x=x, x_unit=unit)
        np.testing.assert_array_equal(d, d_ref)
        np.testing.assert_array_equal(unit, _kernels.axpy(1.0, d_ref, x, out=np.empty_like(x)))
        assert gd.hex() == _kernels.dot(g, d_ref).hex()
    before = x.copy()
    with pytest.raises(ValueError, match="x_unit: shares memory with p, S, Y, out or x"):
        _kernels.lbfgs_vf_direction(*args, x=x, x_unit=x)
    with pytest.raises(ValueError, match="x_unit: expected an array"):
        _kernels.lbfgs_vf_direction(*args, x=x)
    with pytest.raises(ValueError, match="x: shares memory with out"):
        _kernels.lbfgs_vf_direction(*args, out=unit, x=unit, x_unit=np.empty_like(x))
    with pytest.raises(ValueError, match="x: expected the point"):
        _kernels.lbfgs_vf_direction(*args, x_unit=unit)
    with pytest.raises(TypeError, match="x: expected dtype"):
        _kernels.lbfgs_vf_direction(*args, x=x.astype(np.complex64), x_unit=unit)
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------------------ trial point
@pytest.mark.parametrize("n", [0, 1, 7, 4096, N])
def test_trial_is_pair_dot_and_max_norm_in_one_pass(dtype, rng, n):
    # the same bits as lbfgs_pair, dot and norm_reduce(inf) called one after the other
    x1, x0, g1, g0, d = (rng.standard_normal(n).astype(dtype) for _ in range(5))
    if n:
        g1[n // 2] = -9.0                          # the largest |g1|, negative
    S = np.full((3, n), 7.0, dtype=dtype)
    Y = np.full((3, n), 7.0, dtype=dtype)
    gd, sy, yy, gmax = _kernels.lbfgs_trial(x1, x0, g1, g0, d, S[1], Y[1])
    s_ref, y_ref = np.empty_like(x1), np.empty_like(x1)
    sy_ref, yy_ref = _kernels.lbfgs_pair(x1, x0, g1, g0, s_ref, y_ref)
    np.testing.assert_array_equal(S[1], x1 - x0)
    np.testing.assert_array_equal(Y[1], g1 - g0)
    assert np.all(S[[0, 2]] == 7.0) and np.all(Y[[0, 2]] == 7.0)
    assert (sy.hex(), yy.hex()) == (sy_ref.hex(), yy_ref.hex())
    assert gd.hex() == _kernels.dot(g1, d).hex()
    assert gd == pytest.approx(float(g1.astype(np.float64) @ d.astype(np.float64)),
                               rel=1e-12, abs=1e-300)
    assert gmax == (9.0 if n else 0.0)
    assert all(isinstance(v, float) for v in (gd, sy, yy, gmax))


def test_trial_norm_is_nan_or_inf_when_the_gradient_is(rng):
    n = 10_000
    x1, x0, g0, d = (rng.standard_normal(n) for _ in range(4))
    s, y = np.empty(n), np.empty(n)
    for bad, check in ((np.inf, lambda v: v == np.inf), (-np.inf, lambda v: v == np.inf),
                       (np.nan, np.isnan)):
        for where in (3, n - 1):
            g1 = rng.standard_normal(n)
            g1[where] = bad
            assert check(_kernels.lbfgs_trial(x1, x0, g1, g0, d, s, y)[3])


@pytest.mark.skipif(not _two_threads_possible(), reason="needs OpenMP and two threads")
def test_trial_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 1_000_003
    args = [rng.standard_normal(n).astype(dtype) for _ in range(5)]
    got = []
    for t in (1, 2):
        s, y = np.empty(n, dtype), np.empty(n, dtype)
        with fastopt.threads(t):
            r = _kernels.lbfgs_trial(*args, s, y)
            assert _kernels.last_threads_used() == t
        got.append([v.hex() for v in r] + [s.tobytes(), y.tobytes()])
    assert got[0] == got[1]


def test_trial_validation_leaves_arrays_untouched(rng):
    n = 50
    x1, x0, g1, g0, d = (rng.standard_normal(n) for _ in range(5))
    s, y = np.zeros(n), np.zeros(n)
    arrays = [x1, x0, g1, g0, d, s, y]
    before = snapshot(arrays)
    bad = [
        ((x1, x0, g1, g0, d.astype(np.float32), s, y), TypeError, "d: expected dtype"),
        ((x1, x0, g1, g0, d[:-1], s, y), ValueError, "d: expected 50 elements"),
        ((x1, x0, g1, g0, d, s, s), ValueError, "s: shares memory with y"),
        ((x1, x0, g1, g0, d, d, y), ValueError, "s: shares memory with x1, x0, g1, g0 or d"),
        ((x1, x0, g1, g0, d, s, np.zeros(2 * n)[::2]), ValueError,
         "y: expected a C-contiguous"),
    ]
    for args, exc, match in bad:
        with pytest.raises(exc, match=match):
            _kernels.lbfgs_trial(*args)
    assert snapshot(arrays) == before


def test_gram_matches_numpy(dtype, rng):
    S, Y, rho = _ring(dtype, rng)
    v = rng.standard_normal(N).astype(dtype)
    w = rng.standard_normal(N).astype(dtype)
    rows = np.array([5, 6, 0, 2])
    out = _kernels.lbfgs_gram(S, Y, rows, v, w)
    S64, Y64, v64, w64 = (a.astype(np.float64) for a in (S, Y, v, w))
    ref = np.empty(4 * rows.size + 1)
    ref[0::4][:4] = S64[rows] @ v64
    ref[1::4][:4] = Y64[rows] @ v64
    ref[2::4] = S64[rows] @ w64
    ref[3::4] = Y64[rows] @ w64
    ref[16] = w64 @ w64
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    none = _kernels.lbfgs_gram(S, Y, rows, None, w)
    assert np.all(none[0:16:4] == 0) and np.all(none[1:16:4] == 0)
    np.testing.assert_array_equal(none[2::4], out[2::4])
    np.testing.assert_array_equal(none[3::4], out[3::4])
    assert none[16] == out[16]


@pytest.mark.parametrize("n", [5, 4096, 4096 * 3 + 13])
def test_gram_products_have_the_bits_of_dot(dtype, rng, n):
    """Each product is summed as fastopt's dot sums it (the same blocks and lanes), so the
    vector-free form and the two-loop kernels see the same inner products."""
    S = rng.standard_normal((4, n)).astype(dtype)
    Y = rng.standard_normal((4, n)).astype(dtype)
    v, w = (rng.standard_normal(n).astype(dtype) for _ in range(2))
    # the kernel reads the pairs two at a time: an odd count leaves one on its own
    for rows in (np.array([1, 3, 0]), np.array([2, 0, 3, 1]), np.array([3])):
        for vv in (v, None):
            ref = [0.0 if vv is None and b is None else _kernels.dot(a, b)
                   for r in rows for a, b in ((S[r], vv), (Y[r], vv), (S[r], w), (Y[r], w))]
            ref.append(_kernels.dot(w, w))
            for threads in (1, 2):
                with fastopt.threads(threads):
                    out = _kernels.lbfgs_gram(S, Y, rows, vv, w)
                np.testing.assert_array_equal(out, np.array(ref))


def test_vector_free_commit_from_the_trial_pass_changes_no_bit(dtype, rng):
    # a pair formed by the trial pass is committed before the gram pass, which then skips
    # the pair a full memory drops (and, for a refused pair, the candidate): the same
    # directions, bit for bit, as the pass over every row, through refused pairs and a
    # memory that fills and wraps
    n, m = 9_000, 3
    A = rng.uniform(0.5, 3.0, n)
    fused, plain = (LbfgsMemory(n, m, dtype, vector_free=True) for _ in range(2))
    x = rng.standard_normal(n).astype(dtype)
    g = (A * x).astype(dtype)
    stored = []
    for step in range(10):
        d = fused.direction(g)
        np.testing.assert_array_equal(d, plain.direction(g))
        xn = (x + 0.3 * d).astype(dtype)
        # every third step a gradient that turns the pair's curvature negative (y = -s):
        # refused
        gn = (A * xn if step % 3 else g - (xn - x)).astype(dtype)
        trial = fused.trial_for(x, g, d)
        trial(xn, gn)
        stored.append(fused.update_from(xn, x, gn, g))
        assert plain.update_from(xn, x, gn, g) == stored[-1]
        assert fused.count == plain.count and fused.gamma == plain.gamma
        x, g = xn, gn
    assert True in stored and False in stored and fused.count == m


@pytest.mark.parametrize("vector_free", [True, False])
def test_memory_directions_match_numpy_two_loop(dtype, rng, vector_free):
    """Run the ring through more pairs than it holds; compare every direction."""
    n, m = 20_000, 4
    A = rng.uniform(0.5, 3.0, n)
    mem = LbfgsMemory(n, m, dtype, vector_free=vector_free)
    x = rng.standard_normal(n).astype(dtype)
    g = (A * x).astype(dtype)
    for _ in range(9):
        d = mem.direction(g)
        ref = -two_loop_numpy(g, mem.S, mem.Y, mem.rho, mem.order, mem.gamma)
        np.testing.assert_allclose(d, ref, rtol=RTOL[dtype] * 100,
                                   atol=RTOL[dtype] * 100 * np.abs(ref).max())
        xn = (x + 0.3 * d).astype(dtype)
        gn = (A * xn).astype(dtype)
        assert mem.update_from(xn, x, gn, g)
        x, g = xn, gn
    assert mem.count == m
    # a rejected pair (negative curvature) leaves the stored pairs and products intact
    before = mem.direction(g).copy()
    assert not mem.update(np.ones(n, dtype), -np.ones(n, dtype))
    np.testing.assert_array_equal(mem.direction(g), before)
