"""L-BFGS-B kernels (csrc/bounds.c) against their numpy statements
(fastopt/optimize/bounds_reference.py), thread invariance and argument errors."""
import numpy as np
import pytest

import fastopt
from fastopt import _kernels
from fastopt.optimize import bounds_reference as ref
from fastopt_testing.arrays import snapshot

N = 100_003          # above the serial threshold, not a multiple of the block size
RTOL = {np.float32: 1e-5, np.float64: 1e-11}


def _two_threads_possible():
    return _kernels.build_info()["openmp"] and fastopt._kernels._max_threads() >= 2


def _box(rng, dtype, n=N):
    """x inside a mixed box: both bounds, lower only, upper only, none, l == u; a quarter
    of the bounded variables sit exactly on a bound."""
    x = rng.standard_normal(n)
    lo = x - rng.uniform(0.0, 2.0, n)
    hi = x + rng.uniform(0.0, 2.0, n)
    kind = np.arange(n) % 5
    lo[kind == 2] = -np.inf
    hi[kind == 1] = np.inf
    lo[kind == 3] = -np.inf
    hi[kind == 3] = np.inf
    hi[kind == 4] = lo[kind == 4]
    on = rng.random(n) < 0.25
    x[on & np.isfinite(lo)] = lo[on & np.isfinite(lo)]
    x[kind == 4] = lo[kind == 4]
    g = rng.standard_normal(n)
    g[rng.random(n) < 0.01] = 0.0
    return tuple(a.astype(dtype) for a in (x, g, lo, hi))


def _pairs(rng, dtype, n=N, k=5, slots=7):
    A = rng.uniform(0.5, 3.0, n)
    S = rng.standard_normal((slots, n)).astype(dtype)
    Y = (S * A + 0.1 * rng.standard_normal((slots, n))).astype(dtype)
    rows = np.array([(3 + j) % slots for j in range(k)])
    return S, Y, rows


def _middle(S, Y, rows, theta):
    """M of the compact form for the pairs (float64), as CompactMemory builds it."""
    Sd, Yd = S[rows].astype(np.float64), Y[rows].astype(np.float64)
    SY = Sd @ Yd.T
    k = rows.size
    Minv = np.zeros((2 * k, 2 * k))
    Minv[:k, :k] = -np.diag(np.diag(SY))
    Minv[k:, :k] = np.tril(SY, -1)
    Minv[:k, k:] = np.tril(SY, -1).T
    Minv[k:, k:] = theta * Sd @ Sd.T
    return np.linalg.inv(Minv)


def test_bounds_step_matches_numpy(dtype, rng):
    x, d, lo, hi = _box(rng, dtype)
    keep = snapshot([x, d, lo, hi])
    for alpha in (0.0, 0.7, 3.0):
        got = _kernels.bounds_step(x, alpha, d, lo, hi)
        np.testing.assert_array_equal(got, ref.bounds_step(x, alpha, d, lo, hi))
    np.testing.assert_array_equal(_kernels.bounds_step(x, 1.0, None, lo, hi),
                                  np.clip(x, lo, hi))
    assert snapshot([x, d, lo, hi]) == keep
    y = x.copy()
    assert _kernels.bounds_step(y, 2.0, d, lo, hi, out=y) is y
    np.testing.assert_array_equal(y, ref.bounds_step(x, 2.0, d, lo, hi))
    x[3] = np.nan
    assert np.isnan(_kernels.bounds_step(x, 0.0, None, lo, hi)[3])


def test_projgrad_norm_matches_scipy_rule(dtype, rng):
    x, g, lo, hi = _box(rng, dtype)
    got = _kernels.bounds_projgrad_norm(x, g, lo, hi)
    assert got == ref.bounds_projgrad_norm(x, g, lo, hi)
    # unbounded: the gradient's max-norm
    inf = np.full_like(x, np.inf)
    assert _kernels.bounds_projgrad_norm(x, g, -inf, inf) == float(np.max(np.abs(g)))
    g[17] = np.nan
    assert np.isnan(_kernels.bounds_projgrad_norm(x, g, lo, hi))
    assert _kernels.bounds_projgrad_norm(x[:0], g[:0], lo[:0], hi[:0]) == 0.0


def test_max_step_and_direction_match_numpy(dtype, rng):
    x, d, lo, hi = _box(rng, dtype)
    inside = np.isfinite(lo) & np.isfinite(hi) & (hi > lo)
    assert _kernels.bounds_max_step(x, d, lo, hi) == ref.bounds_max_step(x, d, lo, hi)
    free_x = x.copy()
    free_x[~inside] = 0
    step = _kernels.bounds_max_step(x[inside], d[inside], lo[inside], hi[inside])
    assert step == ref.bounds_max_step(x[inside], d[inside], lo[inside], hi[inside])
    inf = np.full_like(x, np.inf)
    assert _kernels.bounds_max_step(x, d, -inf, inf) == np.inf
    z = (x + d).astype(dtype)
    g = d[::-1].copy()
    dk, s, gd, dd = _kernels.lbfgsb_direction(x, z, g, lo, hi)
    dr, sr, gdr, ddr = ref.lbfgsb_direction(x, z, g, lo, hi)
    np.testing.assert_array_equal(dk, dr)
    assert s == sr
    assert gd == pytest.approx(gdr, rel=1e-12) and dd == pytest.approx(ddr, rel=1e-12)
    zz = z.copy()
    assert _kernels.lbfgsb_direction(x, zz, g, lo, hi, out=zz)[0] is zz
    np.testing.assert_array_equal(zz, dr)


@pytest.mark.parametrize("k", [0, 1, 5])
@pytest.mark.parametrize("scale", [0.05, 1.0, 30.0])
def test_cauchy_matches_numpy(dtype, rng, k, scale):
    """Scales of the gradient that pass no breakpoint, some, and (30) most of them."""
    n = 20_011
    x, g, lo, hi = _box(rng, dtype, n)
    g = (g * dtype(scale)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, n, k=k)
    theta = 1.7
    M = _middle(S, Y, rows, theta) if k else np.zeros((0, 0))
    keep = snapshot([x, g, lo, hi, S, Y])
    got = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, theta, M)
    exp = ref.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, theta, M)
    assert snapshot([x, g, lo, hi, S, Y]) == keep
    xcp, c, free, nfree, tsum, p = got
    assert xcp.dtype == dtype and free.dtype == np.uint8
    np.testing.assert_array_equal(free, exp[2])
    assert nfree == exp[3] == int(free.sum())
    assert tsum == pytest.approx(exp[4], rel=1e-9)
    np.testing.assert_allclose(xcp, exp[0], rtol=RTOL[dtype], atol=1e-12)
    np.testing.assert_allclose(c, exp[1], rtol=1e-7, atol=1e-9 * max(1, np.abs(exp[1]).max(initial=0)))
    np.testing.assert_allclose(p, exp[5], rtol=1e-7, atol=1e-9 * max(1, np.abs(exp[5]).max(initial=0)))
    assert np.all((xcp >= lo) & (xcp <= hi))
    # p is -W_F^T g over the free variables
    fm = free.astype(bool)
    if k:
        W = np.concatenate([Y[rows].astype(np.float64), theta * S[rows].astype(np.float64)])
        np.testing.assert_allclose(p, -W[:, fm] @ g[fm].astype(np.float64), rtol=1e-6,
                                   atol=1e-8 * np.abs(p).max())


@pytest.mark.parametrize("scale", [0.01, 0.1, 1.0, 40.0])
@pytest.mark.parametrize("ties", [False, True])
def test_cauchy_breakpoint_order_across_blocks(dtype, rng, scale, ties):
    """The scan takes breakpoints from each block's list of its smallest, merged, then from
    the variables still free: passing a few, more than the lists hold, and with breakpoints
    tied in t across blocks and within one (taken in index order), it matches numpy."""
    n = 5 * 4096 + 77
    x = rng.uniform(0.0, 4.0, n)
    if ties:                   # t in 400 values, each shared by ~30 variables
        x = np.round(x, 2) + 0.01
    lo, hi = np.zeros(n), np.full(n, np.inf)
    g = np.ones(n)
    g[::3] = -1.0              # moving up, away from its only bound: no breakpoint
    x, g, lo, hi = (a.astype(dtype) for a in (x, g, lo, hi))
    S, Y, rows = _pairs(rng, dtype, n, k=2)
    theta = dtype(1.0) / dtype(scale)
    M = _middle(S, Y, rows, float(theta))
    got = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, float(theta), M)
    exp = ref.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, float(theta), M)
    np.testing.assert_array_equal(got[2], exp[2])
    assert got[3] == exp[3]
    np.testing.assert_allclose(got[0], exp[0], rtol=RTOL[dtype], atol=1e-12)
    passed = int(np.count_nonzero(g > 0)) - (got[3] - int(np.count_nonzero(g < 0)))
    assert 0 < passed <= np.count_nonzero(g > 0)


@pytest.mark.parametrize("held", [False, True])
def test_cauchy_with_precomputed_w_d(dtype, rng, held):
    """Given W^T d for the path's direction d (as lbfgsb_pair_update forms it), the kernel
    skips its pass over the pairs and must give what the pass gives."""
    n = 20_011
    x, g, lo, hi = _box(rng, dtype, n)
    if not held:                       # x strictly inside: nothing is held
        lo, hi = (x - 1).astype(dtype), (x + 1).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, n, k=4)
    M = _middle(S, Y, rows, 1.3)
    _, _, d = ref._path_direction(x, g, lo, hi)
    wd = np.concatenate([Y[rows].astype(np.float64) @ d, S[rows].astype(np.float64) @ d])
    a = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.3, M)
    b = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.3, M, wd)
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_allclose(b[5], a[5], rtol=1e-9, atol=1e-9 * np.abs(a[5]).max())
    np.testing.assert_allclose(b[0], a[0], rtol=RTOL[dtype])
    # the given products are what it uses: others give another p
    bad = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.3, M, wd + 1e3)
    assert not np.array_equal(bad[5], a[5])


def test_pair_dots_match_numpy(dtype, rng):
    S, Y, rows = _pairs(rng, dtype, N, k=5)
    r = int(rows[-1])
    mask = (rng.random(N) < 0.4).astype(np.uint8)
    g = rng.standard_normal(N).astype(dtype)
    got = _kernels.lbfgsb_pair_dots(S, Y, rows, r, mask, g)
    np.testing.assert_allclose(got, ref.lbfgsb_pair_dots(S, Y, rows, r, mask, g),
                               rtol=1e-10, atol=1e-8)
    bare = _kernels.lbfgsb_pair_dots(S, Y, rows, r)
    np.testing.assert_array_equal(bare[:, :4], got[:, :4])
    assert not bare[:, 4:].any()


def test_masked_pair_dots_are_the_dots_with_the_masked_pair(dtype, rng):
    """The free-set products (columns 4-7) are, to the bit, the plain products with the
    new pair's elements off the mask set to zero, signed zeros in the pair included."""
    S, Y, rows = _pairs(rng, dtype)
    r = int(rows[-1])
    S[r, ::5] = -0.0
    Y[r, 1::7] = -0.0
    mask = (rng.random(N) < 0.6).astype(np.uint8)
    got = _kernels.lbfgsb_pair_dots(S, Y, rows, r, mask)
    S2, Y2 = S.copy(), Y.copy()
    S2[r] *= mask.astype(dtype)
    Y2[r] *= mask.astype(dtype)
    bare = _kernels.lbfgsb_pair_dots(S2, Y2, rows, r)
    others = rows != r                 # rows whose own vectors are unmasked in both calls
    np.testing.assert_array_equal(got[others, 4:8], bare[others, 0:4])


def test_cauchy_unconstrained_is_the_model_minimiser_along_minus_g():
    n = 50
    x = np.zeros(n)
    g = np.linspace(-1, 1, n)
    inf = np.full(n, np.inf)
    S, Y, rows = _pairs(np.random.default_rng(0), np.float64, n, k=0)
    xcp, c, free, nfree, tsum, p = _kernels.lbfgsb_cauchy(x, g, -inf, inf, S, Y, rows, 2.0,
                                                           np.zeros((0, 0)))
    # model theta/2 |d|^2 + g.d along d = -t g: minimum at t = 1/theta
    assert tsum == 0.5 and nfree == n
    np.testing.assert_allclose(xcp, -0.5 * g)


def test_cauchy_all_variables_on_bounds():
    x = np.array([0.5, 0.5])
    g = np.array([10.0, -10.0])
    lo, hi = np.zeros(2), np.ones(2)
    S, Y, rows = _pairs(np.random.default_rng(1), np.float64, 2, k=0)
    xcp, c, free, nfree, tsum, p = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.0,
                                                           np.zeros((0, 0)))
    np.testing.assert_array_equal(xcp, [0.0, 1.0])
    assert nfree == 0 and list(free) == [0, 0]


@pytest.mark.parametrize("frac", [0.0, 0.3, 1.0])
def test_gram_update_matches_numpy(dtype, rng, frac):
    S, Y, rows = _pairs(rng, dtype, N, k=4)
    w = np.where(rng.random(N) < frac, 1, 0).astype(np.int8)
    w[rng.random(N) < 0.1 * frac] = -1
    G = _kernels.lbfgsb_gram_update(S, Y, rows, w)
    U = np.concatenate([Y[rows], S[rows]]).astype(np.float64)
    np.testing.assert_allclose(G, (U * w) @ U.T, rtol=1e-10, atol=1e-8)
    free = (rng.random(N) < 0.5).astype(np.uint8)
    for sel in (0, 1):
        got = _kernels.lbfgsb_free_gram(S, Y, rows, free, sel)
        exp = ref.lbfgsb_free_gram(S, Y, rows, free, sel)
        for a, b in zip(got, exp):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)


def _subspace_case(rng, dtype, case, n=30_011):
    """A subspace step whose point stays inside the box ("inside"), is projected onto it
    ("projected") or must back off along its direction ("backtrack"): ``(x, g, lo, hi, S,
    Y, rows, free, cg, a, b)``."""
    x, g, lo, hi = _box(rng, dtype, n)
    S, Y, rows = _pairs(rng, dtype, n, k=3)
    free = (rng.random(n) < 0.7).astype(np.uint8)
    a = np.array([0.01, -0.02, 0.005])
    b = np.array([0.003, 0.01, -0.002])
    cg = {"inside": -1e-6, "projected": -1.0, "backtrack": 1.0}[case]
    if case == "inside":
        a, b = a * 1e-6, b * 1e-6
        lo, hi = (lo - 10).astype(dtype), (hi + 10).astype(dtype)
        x = np.clip(x, lo, hi)
    return x, g, lo, hi, S, Y, rows, free, cg, a, b


@pytest.mark.parametrize("case", ["inside", "projected", "backtrack"])
def test_subspace_point_matches_numpy(dtype, rng, case):
    x, g, lo, hi, S, Y, rows, free, cg, a, b = _subspace_case(rng, dtype, case)
    free[np.arange(x.size) % 5 == 4] = 0
    xcp = x
    got = _kernels.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    exp = ref.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    np.testing.assert_array_equal(got, exp)
    assert np.all((got >= lo) & (got <= hi))
    np.testing.assert_array_equal(got[free == 0], xcp[free == 0])
    all_free = _kernels.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, None)
    np.testing.assert_array_equal(
        all_free, ref.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, None))


@pytest.mark.parametrize("case", ["inside", "projected", "backtrack"])
@pytest.mark.parametrize("all_free", [False, True])
def test_subspace_direction_is_the_point_then_the_direction(dtype, rng, case, all_free):
    """One pass gives the bits of lbfgsb_subspace_point followed by lbfgsb_direction (the
    fused kernel must not change L-BFGS-B's iterates), and matches the numpy statement."""
    x, g, lo, hi, S, Y, rows, free, cg, a, b = _subspace_case(rng, dtype, case)
    if all_free:
        free = None
    xcp = np.clip(x - dtype(0.01) * g, lo, hi).astype(dtype)
    keep = snapshot([x, g, xcp, lo, hi, S, Y])
    z = _kernels.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    two = _kernels.lbfgsb_direction(x, z, g, lo, hi)
    out = np.full_like(x, np.nan)
    one = _kernels.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free,
                                             out=out)
    assert snapshot([x, g, xcp, lo, hi, S, Y]) == keep
    assert one[0] is out
    np.testing.assert_array_equal(one[0], two[0])
    assert one[1:] == two[1:]
    exp = ref.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    np.testing.assert_array_equal(one[0], exp[0])
    assert one[1] == exp[1]
    assert one[2] == pytest.approx(exp[2], rel=1e-10)
    assert one[3] == pytest.approx(exp[3], rel=1e-10)


@pytest.mark.parametrize("case", ["inside", "projected", "backtrack"])
def test_subspace_direction_writes_the_unit_step(dtype, rng, case):
    """`trial` is bounds_step(x, 1, d): the line search's first point, to the bit, for 1
    and 2 threads, and the direction's results do not change with it."""
    x, g, lo, hi, S, Y, rows, free, cg, a, b = _subspace_case(rng, dtype, case)
    xcp = np.clip(x - dtype(0.01) * g, lo, hi).astype(dtype)
    plain = _kernels.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    exp = _kernels.bounds_step(x, 1.0, plain[0], lo, hi)
    np.testing.assert_array_equal(
        exp, ref.bounds_step(x, 1.0, ref.lbfgsb_subspace_direction(
            x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)[0], lo, hi))
    for t in (1, 2):
        trial = np.full_like(x, np.nan)
        with fastopt.threads(t):
            got = _kernels.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b,
                                                     free, trial=trial)
        assert trial.tobytes() == exp.tobytes()
        assert got[0].tobytes() == plain[0].tobytes() and got[1:] == plain[1:]
    with pytest.raises(ValueError, match="trial: overlaps x"):
        _kernels.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free,
                                           trial=x)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("k", [1, 5])
def test_pair_update_is_pair_then_dots_then_projgrad(dtype, rng, masked, k):
    """Forms s, y in row rows[-1] and gives lbfgsb_pair_dots's bits (g = g1) and
    bounds_projgrad_norm's, in one pass; against the numpy statement too."""
    x0, g0, lo, hi = _box(rng, dtype)
    x1 = np.clip(x0 + dtype(0.1) * rng.standard_normal(N).astype(dtype), lo, hi)
    g1 = (g0 + rng.standard_normal(N)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, N, k=k)
    mask = (rng.random(N) < 0.4).astype(np.uint8) if masked else None
    r = int(rows[-1])
    keep = snapshot([x0, x1, g0, g1, lo, hi])
    S2, Y2 = S.copy(), Y.copy()
    dcp = np.full_like(x1, np.nan)
    out, pg, d = _kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S, Y, rows, mask, dcp)
    assert d is dcp
    assert snapshot([x0, x1, g0, g1, lo, hi]) == keep
    np.testing.assert_array_equal(S[r], x1 - x0)
    np.testing.assert_array_equal(Y[r], g1 - g0)
    others = np.arange(S.shape[0]) != r
    np.testing.assert_array_equal(S[others], S2[others])
    np.testing.assert_array_equal(Y[others], Y2[others])
    # d is the Cauchy path's direction at (x1, g1): -g1 off the held variables
    _, held, d_ref = ref._path_direction(x1, g1, lo, hi)
    np.testing.assert_array_equal(dcp, d_ref.astype(dtype))
    assert held.any() and not np.all(held)
    np.testing.assert_array_equal(out, _kernels.lbfgsb_pair_dots(S, Y, rows, r, mask, dcp))
    assert pg == _kernels.bounds_projgrad_norm(x1, g1, lo, hi)
    exp_out, exp_pg, exp_d = ref.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S2, Y2, rows, mask)
    np.testing.assert_array_equal(S2, S)
    np.testing.assert_array_equal(exp_d, dcp)
    np.testing.assert_allclose(out, exp_out, rtol=1e-10, atol=1e-8)
    assert pg == exp_pg
    # columns 8-9 are the Cauchy point's W^T d: it gives what its own pass gives
    if k > 1:
        M = _middle(S, Y, rows, 1.2)
        wd = np.concatenate([out[:, 9], out[:, 8]])
        a = _kernels.lbfgsb_cauchy(x1, g1, lo, hi, S, Y, rows, 1.2, M)
        b = _kernels.lbfgsb_cauchy(x1, g1, lo, hi, S, Y, rows, 1.2, M, wd)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    g1[5] = np.nan
    assert np.isnan(_kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S, Y, rows)[1])


def test_cauchy_writes_into_out(dtype, rng):
    n = 20_011
    x, g, lo, hi = _box(rng, dtype, n)
    g = (g * dtype(30.0)).astype(dtype)         # many breakpoints passed: the heap path
    S, Y, rows = _pairs(rng, dtype, n, k=3)
    M = _middle(S, Y, rows, 1.1)
    out = np.full_like(x, np.nan)
    got = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.1, M, out=out)
    assert got[0] is out
    exp = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.1, M)
    np.testing.assert_array_equal(out, exp[0])
    for a, b in zip(got[1:], exp[1:]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="out: overlaps x"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.1, M, out=x)


@pytest.mark.skipif(not _two_threads_possible(), reason="needs OpenMP and 2 threads")
def test_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 3 * N
    x, g, lo, hi = _box(rng, dtype, n)
    g = (g * dtype(5.0)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, n, k=4)
    M = _middle(S, Y, rows, 1.3)
    free = (rng.random(n) < 0.5).astype(np.uint8)
    out = {}
    for t in (1, 2):
        with fastopt.threads(t):
            r = [_kernels.bounds_step(x, 0.3, g, lo, hi).tobytes(),
                 _kernels.bounds_projgrad_norm(x, g, lo, hi).hex(),
                 _kernels.bounds_max_step(x, g, lo, hi).hex()]
            assert _kernels.last_threads_used() == t
            d, s, gd, dd = _kernels.lbfgsb_direction(x, lo + 0.5 * g, g, lo, hi)
            r += [d.tobytes(), s.hex(), gd.hex(), dd.hex()]
            xcp, c, fr, nf, ts, p = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.3, M)
            r += [xcp.tobytes(), c.tobytes(), fr.tobytes(), nf, ts.hex(), p.tobytes()]
            assert _kernels.last_threads_used() == t
            r.append(_kernels.lbfgsb_gram_update(S, Y, rows, free.view(np.int8)).tobytes())
            r.append(_kernels.lbfgsb_pair_dots(S, Y, rows, int(rows[-1]), free, g).tobytes())
            for cg in (-0.5, 1.0):
                r.append(_kernels.lbfgsb_subspace_point(x, g, xcp, lo, hi, S, Y, rows, cg,
                                                        [0.1, 0.2, 0.3, 0.4],
                                                        [0.0, -0.1, 0.1, 0.05],
                                                        fr).tobytes())
                for f in (fr, None):
                    d, s, gd, dd = _kernels.lbfgsb_subspace_direction(
                        x, g, xcp, lo, hi, S, Y, rows, cg, [0.1, 0.2, 0.3, 0.4],
                        [0.0, -0.1, 0.1, 0.05], f)
                    r += [d.tobytes(), s.hex(), gd.hex(), dd.hex()]
            S1, Y1 = S.copy(), Y.copy()
            pu, pg, dc = _kernels.lbfgsb_pair_update(x, x[::-1].copy(), g, g[::-1].copy(), lo,
                                                     hi, S1, Y1, rows, free)
            assert _kernels.last_threads_used() == t
            r += [pu.tobytes(), pg.hex(), S1.tobytes(), Y1.tobytes(), dc.tobytes()]
        out[t] = r
    assert out[1] == out[2]


def test_argument_errors_modify_nothing(rng):
    x, g, lo, hi = _box(rng, np.float64, 100)
    S, Y, rows = _pairs(rng, np.float64, 100, k=2)
    keep = snapshot([x, g, lo, hi, S, Y])
    with pytest.raises(TypeError, match="lower: expected dtype float64"):
        _kernels.bounds_projgrad_norm(x, g, lo.astype(np.float32), hi)
    with pytest.raises(ValueError, match="upper: expected 100 elements"):
        _kernels.bounds_max_step(x, g, lo, hi[:50])
    with pytest.raises(ValueError, match="out: overlaps d"):
        _kernels.bounds_step(x, 1.0, g, lo, hi, out=g)
    with pytest.raises(ValueError, match="theta: expected a positive"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 0.0, np.eye(4))
    with pytest.raises(ValueError, match="M: expected a float64 array of shape"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.0, np.eye(3))
    with pytest.raises(ValueError, match="rows: expected indices"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, [0, 9], 1.0, np.eye(4))
    with pytest.raises(TypeError, match="free: expected a uint8 array"):
        _kernels.lbfgsb_subspace_point(x, g, x, lo, hi, S, Y, rows, 1.0, [0, 0], [0, 0],
                                       np.ones(100, dtype=bool))
    with pytest.raises(TypeError, match="weight: expected a int8 array"):
        _kernels.lbfgsb_gram_update(S, Y, rows, np.ones(100))
    with pytest.raises(ValueError, match="a: expected a float64 array of shape"):
        _kernels.lbfgsb_subspace_point(x, g, x, lo, hi, S, Y, rows, 1.0, [0, 0, 0], [0, 0],
                                       None)
    with pytest.raises(ValueError, match="out: overlaps xcp"):
        _kernels.lbfgsb_subspace_direction(x, g, lo, lo, hi, S, Y, rows, 1.0, [0, 0],
                                           [0, 0], None, out=lo)
    with pytest.raises(ValueError, match="S: overlaps x1"):
        _kernels.lbfgsb_pair_update(S[0], x, g, g, lo, hi, S, Y, rows)
    with pytest.raises(ValueError, match="rows: expected at least"):
        _kernels.lbfgsb_pair_update(x, x, g, g, lo, hi, S, Y, [])
    ro = S.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="S: expected a writeable array"):
        _kernels.lbfgsb_pair_update(x, x, g, g, lo, hi, ro, Y, rows)
    assert snapshot([x, g, lo, hi, S, Y]) == keep


@pytest.mark.parametrize("nchanges", [0, 1, 37, 5000])
def test_gram_change_matches_numpy(dtype, rng, nchanges):
    """The free-set gram's change: the numpy statement, the same bits as gram_update on the
    -1/0/+1 weights for 1 and 2 threads, `before` set to `now` (left alone past the limit)."""
    S, Y, rows = _pairs(rng, dtype, N, k=4)
    now = (rng.random(N) < 0.6).astype(np.uint8)
    before0 = now.copy()
    before0[rng.choice(N, nchanges, replace=False)] ^= 1
    w = now.view(np.int8) - before0.view(np.int8)
    exp_bits = _kernels.lbfgsb_gram_update(S, Y, rows, w).tobytes()
    exp, c = ref.lbfgsb_gram_change(S, Y, rows, now, before0.copy(), N)
    assert c == nchanges
    for t in (1, 2):
        with fastopt.threads(t):
            before = before0.copy()
            G, changes = _kernels.lbfgsb_gram_change(S, Y, rows, now, before, N)
        assert changes == nchanges
        assert G.tobytes() == exp_bits
        np.testing.assert_allclose(G, exp, rtol=1e-10, atol=1e-8)
        np.testing.assert_array_equal(before, now)
    if nchanges:
        before = before0.copy()
        G, changes = _kernels.lbfgsb_gram_change(S, Y, rows, now, before, nchanges - 1)
        assert G is None and changes == nchanges
        np.testing.assert_array_equal(before, before0)


def test_gram_change_argument_errors(rng):
    S, Y, rows = _pairs(rng, np.float64, 100, k=2)
    now = np.ones(100, dtype=np.uint8)
    before = np.zeros(100, dtype=np.uint8)
    with pytest.raises(ValueError, match="before: overlaps now"):
        _kernels.lbfgsb_gram_change(S, Y, rows, now, now, 100)
    ro = before.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="before: expected a writeable"):
        _kernels.lbfgsb_gram_change(S, Y, rows, now, ro, 100)
    with pytest.raises(TypeError, match="now: expected a uint8 array"):
        _kernels.lbfgsb_gram_change(S, Y, rows, now.astype(bool), before, 100)
    with pytest.raises(ValueError, match="limit"):
        _kernels.lbfgsb_gram_change(S, Y, rows, now, before, -1)
    np.testing.assert_array_equal(before, 0)


@pytest.mark.parametrize("k", [0, 5])
@pytest.mark.parametrize("scale", [0.05, 30.0])
def test_cauchy_from_the_pair_update_scan(dtype, rng, k, scale):
    """The classification written by lbfgsb_pair_update (scan, free) gives lbfgsb_cauchy
    the bits of its own first pass, for 1 and 2 threads; free is the numpy statement's
    mask of the variables not held at a bound, and dcp does not change with it."""
    x0, g0, lo, hi = _box(rng, dtype)
    x1 = np.clip(x0 + dtype(0.1) * rng.standard_normal(N).astype(dtype), lo, hi)
    g1 = ((g0 + rng.standard_normal(N)) * dtype(scale)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, N, k=max(k, 1))
    M = _middle(S, Y, rows, 1.3) if k else np.zeros((0, 0))
    crows = rows if k else rows[:0]
    S0, Y0 = S.copy(), Y.copy()
    plain = _kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S0, Y0, rows)
    exp = _kernels.lbfgsb_cauchy(x1, g1, lo, hi, S0, Y0, crows, 1.3, M)
    not_held = np.empty(N, dtype=np.uint8)
    ref.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S.copy(), Y.copy(), rows, free=not_held)
    for t in (1, 2):
        S1, Y1 = S.copy(), Y.copy()
        scan = np.empty(_kernels.lbfgsb_scan_bytes(N), dtype=np.uint8)
        free = np.full(N, 7, dtype=np.uint8)
        with fastopt.threads(t):
            got = _kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S1, Y1, rows,
                                              scan=scan, free=free)
            np.testing.assert_array_equal(free, not_held)
            cp = _kernels.lbfgsb_cauchy(x1, g1, lo, hi, S1, Y1, crows, 1.3, M, scan=scan,
                                        free=free)
        assert got[0].tobytes() == plain[0].tobytes() and got[2].tobytes() == plain[2].tobytes()
        assert cp[2] is free
        for a, b in zip(cp, exp):
            assert (a.tobytes() if isinstance(a, np.ndarray) else a) == (
                b.tobytes() if isinstance(b, np.ndarray) else b)


def test_cauchy_scan_errors(rng):
    x, g, lo, hi = _box(rng, np.float64, 10_000)
    S, Y, rows = _pairs(rng, np.float64, 10_000, k=2)
    M = _middle(S, Y, rows, 1.0)
    nb = _kernels.lbfgsb_scan_bytes(10_000)
    free = np.ones(10_000, dtype=np.uint8)
    with pytest.raises(ValueError, match="scan, free: expected both or neither"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.0, M, scan=np.zeros(nb, np.uint8))
    with pytest.raises(ValueError, match=f"scan: expected {nb} elements"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.0, M, scan=np.zeros(nb - 1, np.uint8),
                               free=free)
    junk = np.full(nb, 0xFF, dtype=np.uint8)        # counts of -1: not a scan
    out = np.zeros(10_000)
    with pytest.raises(ValueError, match="scan: expected the buffer"):
        _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.0, M, out=out, scan=junk, free=free)
    assert not out.any() and free.all()
    with pytest.raises(ValueError, match="free: overlaps x"):
        _kernels.lbfgsb_pair_update(x, x.copy(), g, g.copy(), lo, hi, S, Y, rows,
                                    scan=np.zeros(nb, np.uint8), free=x.view(np.uint8)[:10_000])


@pytest.mark.parametrize("k", [0, 5])
@pytest.mark.parametrize("scale", [0.05, 1.0, 30.0])
def test_cauchy_point_from_free_and_tsum(dtype, rng, k, scale):
    """lbfgsb_cauchy_point(free, tsum) is the Cauchy kernel's xcp to the bit (no breakpoint
    passed, some, most), the numpy statement's too, and the Cauchy kernel with point=False
    gives the rest unchanged; 1 and 2 threads."""
    n = 20_011
    x, g, lo, hi = _box(rng, dtype, n)
    g = (g * dtype(scale)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, n, k=k)
    M = _middle(S, Y, rows, 1.7) if k else np.zeros((0, 0))
    full = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.7, M)
    xcp, c, free, nfree, tsum, p = full
    np.testing.assert_array_equal(ref.lbfgsb_cauchy_point(x, g, lo, hi, free, tsum), xcp)
    for t in (1, 2):
        with fastopt.threads(t):
            bare = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.7, M, point=False)
            out = np.full_like(x, np.nan)
            got = _kernels.lbfgsb_cauchy_point(x, g, lo, hi, bare[2], bare[4], out=out)
        assert bare[0] is None and got is out
        assert got.tobytes() == xcp.tobytes()
        for a, b in zip(bare[1:], full[1:]):
            assert (a.tobytes() if isinstance(a, np.ndarray) else a) == (
                b.tobytes() if isinstance(b, np.ndarray) else b)
    if nfree == n:
        np.testing.assert_array_equal(_kernels.lbfgsb_cauchy_point(x, g, lo, hi, None, tsum),
                                      xcp)


@pytest.mark.parametrize("scale", [0.05, 30.0])
@pytest.mark.parametrize("case", ["inside", "projected", "backtrack"])
def test_subspace_direction_forms_the_cauchy_point(dtype, rng, case, scale):
    """With xcp None (and tsum), the subspace direction forms the Cauchy point in its pass:
    the bits of passing lbfgsb_cauchy's xcp, 1 and 2 threads, and the numpy statement's."""
    x, g, lo, hi, S, Y, rows, _, cg, a, b = _subspace_case(rng, dtype, case)
    g = (g * dtype(scale)).astype(dtype)
    M = _middle(S, Y, rows, 1.3)
    xcp, c, free, nfree, tsum, p = _kernels.lbfgsb_cauchy(x, g, lo, hi, S, Y, rows, 1.3, M)
    exp = _kernels.lbfgsb_subspace_direction(x, g, xcp, lo, hi, S, Y, rows, cg, a, b, free)
    exp_trial = _kernels.bounds_step(x, 1.0, exp[0], lo, hi)
    np.testing.assert_array_equal(
        ref.lbfgsb_subspace_direction(x, g, None, lo, hi, S, Y, rows, cg, a, b, free,
                                      tsum=tsum)[0], exp[0])
    for t in (1, 2):
        trial = np.empty_like(x)
        with fastopt.threads(t):
            got = _kernels.lbfgsb_subspace_direction(x, g, None, lo, hi, S, Y, rows, cg, a, b,
                                                     free, trial=trial, tsum=tsum)
        assert got[0].tobytes() == exp[0].tobytes() and got[1:] == exp[1:]
        assert trial.tobytes() == exp_trial.tobytes()
    with pytest.raises(ValueError, match="tsum: expected"):
        _kernels.lbfgsb_subspace_direction(x, g, None, lo, hi, S, Y, rows, cg, a, b, free)


@pytest.mark.parametrize("masked", [False, True])
def test_pair_update_without_storing_the_direction(dtype, rng, masked):
    """dcp=False (the direction formed in cache, range by range): the same products, norm,
    pair and scan as with dcp stored, for 1 and 2 threads; the numpy statement agrees."""
    x0, g0, lo, hi = _box(rng, dtype)
    x1 = np.clip(x0 + dtype(0.1) * rng.standard_normal(N).astype(dtype), lo, hi)
    g1 = (g0 + rng.standard_normal(N)).astype(dtype)
    S, Y, rows = _pairs(rng, dtype, N, k=5)
    mask = (rng.random(N) < 0.4).astype(np.uint8) if masked else None
    nb = _kernels.lbfgsb_scan_bytes(N)
    # zeros: list entries past a block's count are not written
    S0, Y0, scan0, free0 = S.copy(), Y.copy(), np.zeros(nb, np.uint8), np.empty(N, np.uint8)
    out0, pg0, d0 = _kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S0, Y0, rows, mask,
                                                scan=scan0, free=free0)
    exp = ref.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S.copy(), Y.copy(), rows, mask, False)
    assert exp[2] is None
    np.testing.assert_allclose(exp[0], out0, rtol=RTOL[dtype], atol=1e-6)
    for t in (1, 2):
        S1, Y1, scan1, free1 = S.copy(), Y.copy(), np.zeros(nb, np.uint8), np.empty(N, np.uint8)
        with fastopt.threads(t):
            out1, pg1, d1 = _kernels.lbfgsb_pair_update(x1, x0, g1, g0, lo, hi, S1, Y1, rows,
                                                        mask, False, scan=scan1, free=free1)
        assert d1 is None
        assert out1.tobytes() == out0.tobytes() and pg1 == pg0
        assert S1.tobytes() == S0.tobytes() and Y1.tobytes() == Y0.tobytes()
        assert scan1.tobytes() == scan0.tobytes() and free1.tobytes() == free0.tobytes()
