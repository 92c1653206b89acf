"""The batch-norm kernels (csrc/batchnorm.c): against a numpy transcription in both memory
layouts (rows for (N, D), planes for (N, C, H, W)), deterministic reductions, both
running-statistics conventions, and the boundary's checks (nothing modified on error)."""

import numpy as np
import pytest

import fastopt
from fastopt.nn import batch_norm, batch_norm_backward
from fastopt_testing.arrays import snapshot

# rows layout: fused plan (one cache-sized block: (64, 10), (100, 2048)), wide, narrow with
# several row blocks, small spatial (s < 32) folded into rows; planes layout: small and large
# planes, planes split into segments (s > 65536).
SHAPES = [(64, 10), (100, 2048), (300, 1500), (20000, 8), (600, 300), (8, 3, 2, 2),
          (8, 3, 5, 7), (4, 6, 40), (200, 2, 1000), (2, 3, 70000), (5, 4, 3, 3, 4)]


def axes_of(x):
    return (0,) + tuple(range(2, x.ndim))


def bcast(v, x):
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def ref_forward(x, gamma, beta, rm, rv, training, momentum, eps, convention="torch"):
    """numpy transcription in float64; returns y, mean, invstd, new running stats."""
    xd = x.astype(np.float64)
    c = x.shape[1]
    g = np.ones(c) if gamma is None else gamma.astype(np.float64)
    b = np.zeros(c) if beta is None else beta.astype(np.float64)
    if training:
        mean, var = xd.mean(axis=axes_of(x)), xd.var(axis=axes_of(x))
        m = x.size // c
        if convention == "torch":
            rm = (1 - momentum) * rm + momentum * mean
            rv = (1 - momentum) * rv + momentum * var * m / (m - 1)
        else:
            rm = momentum * rm + (1 - momentum) * mean
            rv = momentum * rv + (1 - momentum) * var
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    invstd = 1 / np.sqrt(var + eps)
    y = (xd - bcast(mean, x)) * bcast(invstd * g, x) + bcast(b, x)
    return y, mean, invstd, rm, rv


def ref_backward(dy, x, gamma, mean, invstd, training):
    xd, dyd = x.astype(np.float64), dy.astype(np.float64)
    c = x.shape[1]
    m = x.size // c
    g = np.ones(c) if gamma is None else gamma.astype(np.float64)
    xhat = (xd - bcast(mean, x)) * bcast(invstd, x)
    dbeta = dyd.sum(axis=axes_of(x))
    dgamma = (dyd * xhat).sum(axis=axes_of(x))
    if training:
        dx = bcast(g * invstd / m, x) * (m * dyd - bcast(dbeta, x) - xhat * bcast(dgamma, x))
    else:
        dx = dyd * bcast(g * invstd, x)
    return dx, dgamma, dbeta


TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}


def make(shape, dtype, rng, offset=0.0):
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset + rng.standard_normal(c).reshape(
        (1, c) + (1,) * (len(shape) - 2))).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_training_forward_backward_match_numpy(shape, dtype, rng):
    x, gamma, beta, rm, rv = make(shape, dtype, rng)
    y_ref, mean_ref, invstd_ref, rm_ref, rv_ref = ref_forward(
        x, gamma, beta, rm.astype(np.float64), rv.astype(np.float64), True, 0.1, 1e-5)
    y, cache = batch_norm(x, gamma, beta, rm, rv, True, 0.1, 1e-5)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    np.testing.assert_allclose(cache.mean, mean_ref, rtol=1e-12, atol=1e-12 if dtype == np.float64 else 1e-9)
    np.testing.assert_allclose(cache.invstd, invstd_ref, rtol=1e-10 if dtype == np.float64 else 1e-7)
    np.testing.assert_allclose(rm, rm_ref, **TOL[dtype])
    np.testing.assert_allclose(rv, rv_ref, **TOL[dtype])
    dy = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    dx_ref, dg_ref, db_ref = ref_backward(dy, x, gamma, cache.mean, cache.invstd, True)
    scale = np.sqrt(x.size // shape[1])  # sums of M terms: absolute error grows like sqrt(M)
    np.testing.assert_allclose(dx, dx_ref, **TOL[dtype])
    np.testing.assert_allclose(dgamma, dg_ref, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)
    np.testing.assert_allclose(dbeta, db_ref, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


@pytest.mark.parametrize("shape", [(64, 10), (8, 3, 5, 7)], ids=str)
def test_eval_uses_running_stats_and_leaves_them(shape, dtype, rng):
    x, gamma, beta, rm, rv = make(shape, dtype, rng)
    before = snapshot([rm, rv])
    y_ref, mean_ref, invstd_ref, _, _ = ref_forward(x, gamma, beta, rm, rv, False, 0.1, 1e-3)
    y, cache = batch_norm(x, gamma, beta, rm, rv, False, 0.1, 1e-3)
    assert snapshot([rm, rv]) == before
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    dy = rng.standard_normal(shape).astype(dtype)
    dx, dgamma, dbeta = batch_norm_backward(dy, cache)
    dx_ref, dg_ref, db_ref = ref_backward(dy, x, gamma, mean_ref, invstd_ref, False)
    for got, want in ((dx, dx_ref), (dgamma, dg_ref), (dbeta, db_ref)):
        np.testing.assert_allclose(got, want, rtol=TOL[dtype]["rtol"], atol=10 * TOL[dtype]["atol"])


@pytest.mark.parametrize("shape", [s for s in SHAPES if np.prod(s) > 40000] + [(64, 4, 16, 16)],
                         ids=str)
def test_one_and_two_threads_bitwise_identical(shape, dtype, rng):
    x, gamma, beta, rm0, rv0 = make(shape, dtype, rng, offset=3.0)
    dy = rng.standard_normal(shape).astype(dtype)
    results = []
    for threads in (1, 2):
        rm, rv = rm0.copy(), rv0.copy()
        with fastopt.threads(threads):
            y, cache = batch_norm(x, gamma, beta, rm, rv, True)
            grads = batch_norm_backward(dy, cache)
        results.append(b"".join(a.tobytes() for a in (y, rm, rv, cache.mean, cache.invstd) + grads))
    assert results[0] == results[1]


def test_float32_statistics_accumulate_in_double(rng):
    # a large offset and many values: float32 accumulation would lose the variance
    x = (1e4 + rng.standard_normal((100_000, 3))).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.zeros(3, np.float32)
    _, cache = batch_norm(x, None, None, rm, rv, True, 1.0, 1e-5)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(cache.mean, xd.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(1 / cache.invstd**2 - 1e-5, xd.var(axis=0), rtol=1e-9)
    np.testing.assert_allclose(rv, xd.var(axis=0, ddof=1), rtol=1e-6)


@pytest.mark.parametrize("convention, momentum", [("torch", 0.1), ("torch", 0.7),
                                                  ("cs231n", 0.9), ("cs231n", 0.2)])
def test_running_statistics_conventions(convention, momentum, rng):
    x, _, _, rm, rv = make((50, 6), np.float64, rng)
    _, _, _, rm_ref, rv_ref = ref_forward(x, None, None, rm.copy(), rv.copy(), True, momentum,
                                          1e-5, convention)
    batch_norm(x, None, None, rm, rv, True, momentum, convention=convention)
    np.testing.assert_allclose(rm, rm_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rv, rv_ref, rtol=1e-13, atol=1e-15)


def test_default_momentum_follows_the_convention(rng):
    x, _, _, rm, rv = make((50, 6), np.float64, rng)
    rm2, rv2 = rm.copy(), rv.copy()
    batch_norm(x, None, None, rm, rv, True, convention="cs231n")
    batch_norm(x, None, None, rm2, rv2, True, 0.9, convention="cs231n")
    assert rm.tobytes() == rm2.tobytes() and rv.tobytes() == rv2.tobytes()


def test_cumulative_average_with_momentum_none(rng):
    rm, rv = np.zeros(4), np.ones(4)
    means, variances = [], []
    for k in range(5):
        x = rng.standard_normal((30, 4)) + k
        batch_norm(x, None, None, rm, rv, True, None, num_batches_tracked=k)
        means.append(x.mean(axis=0))
        variances.append(x.var(axis=0, ddof=1))
    np.testing.assert_allclose(rm, np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(rv, np.mean(variances, axis=0), rtol=1e-12)


def test_no_affine_and_no_running_stats(rng):
    x = rng.standard_normal((40, 5))
    y, cache = batch_norm(x, None, None, None, None)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1 / (1 + 1e-5 * cache.invstd**2), rtol=1e-9)
    dx, dgamma, dbeta = batch_norm_backward(np.ones_like(x), cache)
    assert dgamma is None and dbeta is None
    np.testing.assert_allclose(dx, 0, atol=1e-12)


def test_out_arguments_and_noncontiguous_input(dtype, rng):
    x, gamma, beta, rm, rv = make((20, 6, 4, 4), dtype, rng)
    xt = np.asfortranarray(x)
    out = np.empty_like(x)
    y, cache = batch_norm(xt, gamma, beta, rm.copy(), rv.copy(), out=out)
    y_ref, _ = batch_norm(x, gamma, beta, rm.copy(), rv.copy())
    assert y is out and out.tobytes() == y_ref.tobytes()
    assert cache.x.flags.c_contiguous  # the cache references the copy the kernel read
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx_o, dg_o, db_o = np.empty_like(x), np.empty(6, dtype), np.empty(6, dtype)
    got = batch_norm_backward(dy, cache, out=(dx_o, dg_o, db_o))
    assert got[0] is dx_o and got[1] is dg_o and got[2] is db_o
    want = batch_norm_backward(dy, cache)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(got, want))


def test_zero_variance_channel():
    x = np.ones((10, 3))
    y, cache = batch_norm(x, None, None, None, None)
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_allclose(cache.invstd, 1 / np.sqrt(1e-5))


def _bad_forward(dtype):
    c = 4
    x = np.ones((6, c), dtype)
    x[0] = 2
    g, b = np.ones(c, dtype), np.zeros(c, dtype)
    rm, rv = np.full(c, 0.5, dtype), np.full(c, 2.0, dtype)
    ro = rv.copy()
    ro.flags.writeable = False
    other = np.float32 if dtype == np.float64 else np.float64
    buf = np.zeros(2 * c, dtype)
    return x, g, b, rm, rv, [
        ("x 1-D", dict(x=np.ones(8, dtype)), ValueError, "x: expected shape"),
        ("x float16", dict(x=x.astype(np.float16)), TypeError, "x: expected a float32"),
        ("x int", dict(x=np.ones((6, c), np.int32)), TypeError, "x"),
        ("one value per channel", dict(x=np.ones((1, c), dtype)), ValueError, "more than 1 value"),
        ("gamma shape", dict(gamma=np.ones(c + 1, dtype)), ValueError, "gamma"),
        ("gamma list", dict(gamma=[1.0] * c), TypeError, "gamma"),
        ("beta dtype", dict(beta=np.zeros(c, other)), TypeError, "beta"),
        ("running_mean shape", dict(running_mean=np.zeros((1, c), dtype)), ValueError,
         "running_mean"),
        ("running_var dtype", dict(running_var=np.ones(c, other)), TypeError, "running_var"),
        ("running_var read-only", dict(running_var=ro), ValueError, "writeable"),
        ("running_mean strided", dict(running_mean=np.zeros(2 * c, dtype)[::2]), ValueError,
         "contiguous"),
        ("only running_mean", dict(running_var=None), ValueError, "both or neither"),
        ("eval without running", dict(running_mean=None, running_var=None, training=False),
         ValueError, "required"),
        ("running stats alias", dict(running_mean=buf[:c], running_var=buf[c // 2:c // 2 + c]),
         ValueError, "shares memory"),
        ("out is x", dict(out="x"), ValueError, "shares memory"),
        ("out read-only", dict(out="ro"), ValueError, "writeable"),
        ("eps 0", dict(eps=0.0), ValueError, "eps"),
        ("eps nan", dict(eps=float("nan")), ValueError, "eps"),
        ("momentum > 1", dict(momentum=1.5), ValueError, "momentum"),
        ("momentum str", dict(momentum="0.1"), TypeError, "momentum"),
        ("momentum None cs231n", dict(momentum=None, convention="cs231n"), ValueError,
         "momentum"),
        ("momentum None no count", dict(momentum=None), TypeError, "num_batches_tracked"),
        ("convention", dict(convention="keras"), ValueError, "convention"),
        ("training int", dict(training=1), TypeError, "training"),
    ]


@pytest.mark.parametrize("case", range(24))
def test_bad_forward_arguments_raise_and_modify_nothing(case, dtype):
    x, g, b, rm, rv, cases = _bad_forward(dtype)
    name, changes, exc, words = cases[case]
    args = dict(x=x, gamma=g, beta=b, running_mean=rm, running_var=rv, training=True,
                momentum=0.1, eps=1e-5)
    args.update(changes)
    if args.get("out") == "x":
        args["out"] = x
    elif args.get("out") == "ro":
        args["out"] = np.empty_like(x)
        args["out"].flags.writeable = False
    arrays = [a for a in args.values() if isinstance(a, np.ndarray)]
    before = snapshot(arrays)
    with pytest.raises(exc, match=words):
        batch_norm(**args)
    assert snapshot(arrays) == before, name


def test_bad_backward_arguments(dtype, rng):
    x, g, b, rm, rv = make((6, 4), dtype, rng)
    _, cache = batch_norm(x, g, b, rm, rv)
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(ValueError, match="dy"):
        batch_norm_backward(np.ones((6, 5), dtype), cache)
    with pytest.raises(TypeError, match="dy"):
        batch_norm_backward(np.ones((6, 4), other), cache)
    with pytest.raises(TypeError, match="cache"):
        batch_norm_backward(np.ones((6, 4), dtype), (x, g))
    with pytest.raises(TypeError, match="out"):
        batch_norm_backward(np.ones((6, 4), dtype), cache, out=[None, None, None])
    dg = np.zeros(4, dtype)
    dg.flags.writeable = False
    with pytest.raises(ValueError, match="dgamma_out"):
        batch_norm_backward(np.ones((6, 4), dtype), cache, out=(None, dg, None))
    with pytest.raises(ValueError, match="dbeta_out"):
        batch_norm_backward(np.ones((6, 4), dtype), cache, out=(None, None, np.zeros(5, dtype)))
    dy = np.ones((6, 4), dtype)
    with pytest.raises(ValueError, match="shares memory"):
        batch_norm_backward(dy, cache, out=dy)


def test_nogil_entry_points_are_exported_for_cimport():
    capi = fastopt._kernels.__pyx_capi__
    for name in ("batch_norm_forward_f32", "batch_norm_forward_f64", "batch_norm_backward_f32",
                 "batch_norm_backward_f64"):
        assert name in capi


@pytest.mark.parametrize("shape", [(4, 0), (0, 3), (0, 3, 40), (3, 2, 0), (2, 0, 5, 5)], ids=str)
def test_empty_inputs(shape, dtype):
    c = shape[1]
    x = np.ones(shape, dtype)
    rm, rv = np.full(c, 0.5, dtype), np.full(c, 4.0, dtype)
    y, cache = batch_norm(x, np.ones(c, dtype), np.zeros(c, dtype), rm, rv, training=False)
    assert y.shape == shape
    np.testing.assert_array_equal(cache.mean, 0.5)
    np.testing.assert_allclose(cache.invstd, 1 / np.sqrt(4.0 + 1e-5))
    dx, dgamma, dbeta = batch_norm_backward(np.ones(shape, dtype), cache)
    assert dx.shape == shape and np.all(dgamma == 0) and np.all(dbeta == 0)
    if c == 0:  # no channel: training has nothing to check either
        assert batch_norm(x, None, None, None, None)[0].shape == shape
