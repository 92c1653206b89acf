"""The dense BFGS kernels symv / syr2 (csrc/linalg.inc) against numpy and scipy's BLAS:
float32 and float64, exact symmetry, the same bits for 1 and 2 threads, the GIL released,
bad arguments refused with nothing modified."""

import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt.optimize.bfgs import BfgsMemory
from fastopt_testing.gil import python_ticks_during

RTOL = {np.float32: 3e-6, np.float64: 1e-13}


def _two_threads_possible():
    return _kernels.build_info()["openmp"] and fastopt._kernels._max_threads() >= 2


def _spd(n, dtype, rng):
    A = rng.standard_normal((n, n))
    H = A @ A.T / n + np.eye(n)
    return H.astype(dtype)


@pytest.mark.parametrize("n", [1, 7, 300, 4099])
def test_symv_matches_numpy_in_float64(dtype, rng, n):
    H = _spd(n, dtype, rng)
    v = rng.standard_normal(n).astype(dtype)
    out = _kernels.symv(H, v)
    assert out.dtype == dtype and out.shape == (n,)
    ref = H.astype(np.float64) @ v.astype(np.float64)       # the float64 statement
    scale = np.abs(H).astype(np.float64) @ np.abs(v).astype(np.float64)
    # float64 accumulation: float32 results are the reference rounded once
    assert np.all(np.abs(out - ref) <= RTOL[dtype] * scale)


def test_symv_equals_scipy_blas_dsymv_to_rounding(rng):
    from scipy.linalg.blas import dsymv
    H = _spd(500, np.float64, rng)
    v = rng.standard_normal(500)
    np.testing.assert_allclose(_kernels.symv(H, v), dsymv(1.0, H, v), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 5, 300])
def test_syr2_matches_numpy_and_stays_symmetric(dtype, rng, n):
    H = _spd(n, dtype, rng)
    x = rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    ref = (H.astype(np.float64) + 0.37 * (np.outer(x, y) + np.outer(y, x))
           .astype(np.float64)).astype(dtype)
    out = _kernels.syr2(0.37, x, y, H)
    assert out is H
    np.testing.assert_allclose(H, ref, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert np.array_equal(H, H.T)           # exactly symmetric, not just to rounding


def test_syr2_equals_scipy_blas_dsyr2_to_rounding(rng):
    from scipy.linalg.blas import dsyr2
    H = _spd(200, np.float64, rng)
    x, y = rng.standard_normal(200), rng.standard_normal(200)
    ref = np.triu(dsyr2(0.5, x, y, a=np.asfortranarray(H)))
    ref = ref + np.triu(ref, 1).T
    np.testing.assert_allclose(_kernels.syr2(0.5, x, y, H.copy()), ref, rtol=1e-13,
                               atol=1e-13)


@pytest.mark.skipif(not _two_threads_possible(), reason="needs OpenMP and 2 threads")
def test_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 700                      # n^2 above the serial threshold
    H0 = _spd(n, dtype, rng)
    v = rng.standard_normal(n).astype(dtype)
    out = {}
    for t in (1, 2):
        with fastopt.threads(t):
            p = _kernels.symv(H0, v)
            assert _kernels.last_threads_used() == t
            H = H0.copy()
            _kernels.syr2(-0.25, v, p, H)
            assert _kernels.last_threads_used() == t
        out[t] = (p.tobytes(), H.tobytes())
    assert out[1] == out[2]


@pytest.mark.parametrize("n", [1, 5, 300])
def test_syr2_symv_is_syr2_then_symv_bit_for_bit(dtype, rng, n):
    H = _spd(n, dtype, rng)
    x, y, v = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    H2 = H.copy()
    out = _kernels.syr2_symv(0.3, x, y, H, v)
    _kernels.syr2(0.3, x, y, H2)
    assert H.tobytes() == H2.tobytes()
    assert out.tobytes() == _kernels.symv(H2, v).tobytes()


@pytest.mark.skipif(not _two_threads_possible(), reason="needs OpenMP and 2 threads")
def test_syr2_symv_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 700
    H0 = _spd(n, dtype, rng)
    x, y, v = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    got = {}
    for t in (1, 2):
        H = H0.copy()
        with fastopt.threads(t):
            out = _kernels.syr2_symv(-0.25, x, y, H, v)
            assert _kernels.last_threads_used() == t
        got[t] = (out.tobytes(), H.tobytes())
    assert got[1] == got[2]


def test_syr2_symv_validation_leaves_arrays_untouched(rng):
    H = _spd(4, np.float64, rng)
    before = H.copy()
    v = np.ones(4)
    out = np.empty(4)
    for call, match in [
            (lambda: _kernels.syr2_symv(1.0, v, v, H, H[1]), "H: shares memory"),
            (lambda: _kernels.syr2_symv(1.0, v, v, H, v, out=v), "out: shares memory"),
            (lambda: _kernels.syr2_symv(1.0, v, v, H, np.ones(3)), "v: expected 4"),
            (lambda: _kernels.syr2_symv(1.0, v, v, H, v, out=np.empty(3)), "out: expected")]:
        with pytest.raises(ValueError, match=match):
            call()
    assert np.array_equal(H, before) and out is not None


def test_bfgs_memory_forms_the_next_product_in_the_update_pass(rng, monkeypatch):
    # direction(g_new) after update_from(..., g_new, ...) reuses the fused pass's H g:
    # no separate symv, and the same bits as computing it afresh
    n = 8
    mem = BfgsMemory(n, np.float64)
    x0, x1 = rng.standard_normal(n), rng.standard_normal(n)
    g0 = 2.0 * x0
    g1 = 2.0 * x1
    assert mem.update_from(x1, x0, g1, g0)
    fresh = _kernels.symv(mem.H, g1)
    calls = []
    real = _kernels.symv
    monkeypatch.setattr(_kernels, "symv", lambda *a, **k: calls.append(1) or real(*a, **k))
    d = mem.direction(g1)
    assert not calls and d.tobytes() == (-fresh).tobytes()
    mem.direction(g1)                       # the product is used once, then recomputed
    assert len(calls) == 1


def test_out_argument_and_strided_vector(rng):
    H = _spd(64, np.float64, rng)
    v = rng.standard_normal(128)[::2]          # strided: copied
    out = np.empty(64)
    assert _kernels.symv(H, v, out=out) is out
    assert np.all(np.abs(out - H @ v) <= 1e-13 * (np.abs(H) @ np.abs(v)))


def test_validation_leaves_arrays_untouched(rng):
    H = _spd(4, np.float64, rng)
    before = H.copy()
    v = np.ones(4)
    cases = [
        (lambda: _kernels.symv(H.astype(np.float32), v), TypeError,
         "v: expected dtype float32 \\(the dtype of H\\)"),
        (lambda: _kernels.symv(H[:3], v), ValueError, "H: expected a square"),
        (lambda: _kernels.symv(H.astype(np.int64), v), TypeError, "H: expected a float32"),
        (lambda: _kernels.symv(np.asfortranarray(H + 0 * H.T[::-1]), v), ValueError,
         "C-contiguous"),
        (lambda: _kernels.symv(H, v, out=H[0]), ValueError, "out: shares memory"),
        (lambda: _kernels.symv(H, np.ones(5)), ValueError, "v: expected 4 elements"),
        (lambda: _kernels.syr2(np.nan, v, v, H), ValueError, "a: expected a real number"),
        (lambda: _kernels.syr2(1.0, H[0], v, H), ValueError, "H: shares memory"),
        (lambda: _kernels.syr2(1.0, v, np.ones(3), H), ValueError, "y: expected 4 elements"),
        (lambda: _kernels.syr2(1.0, v, v, H.astype(np.float32)), TypeError,
         "x: expected dtype float32"),
    ]
    ro = H.copy()
    ro.setflags(write=False)
    cases.append((lambda: _kernels.syr2(1.0, v, v, ro), ValueError, "writeable"))
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
    assert np.array_equal(H, before)


def test_kernels_release_the_gil(rng):
    """While one thread is inside a long symv/syr2, another thread keeps running Python."""
    n = 3000
    H = _spd(n, np.float64, rng)
    v = rng.standard_normal(n)

    def call():
        _kernels.symv(H, v)
        _kernels.syr2(1e-9, v, v, H)

    ticks, seconds = python_ticks_during(call)
    assert ticks > 10, (ticks, seconds)


def test_bfgs_memory_matches_the_numpy_update_and_restarts_when_not_definite(rng):
    n = 6
    mem = BfgsMemory(n, np.float64)
    H = np.eye(n)
    for k in range(4):
        s = rng.standard_normal(n)
        y = s * rng.uniform(0.5, 2.0, n)
        assert mem.update(s, y)
        if k == 0:
            H = H * (s @ y) / (y @ y)
        rho = 1.0 / (s @ y)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)     # Nocedal & Wright (6.17)
    np.testing.assert_allclose(mem.dense(), H, rtol=1e-12, atol=1e-12)
    assert mem.restarts == 0
    mem.H[...] = -np.eye(n)            # as if rounding had destroyed definiteness
    s = rng.standard_normal(n)
    assert mem.update(s, 2.0 * s)
    assert mem.restarts == 1
    assert np.all(np.linalg.eigvalsh(mem.dense()) > 0)
    np.testing.assert_allclose(mem.apply(2.0 * s), s, rtol=1e-12)   # secant: H y = s
