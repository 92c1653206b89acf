"""fastopt.kernels.sgd_step against a numpy transcription of torch.optim.SGD's algorithm."""

import itertools

import numpy as np
import pytest

import fastopt
from fastopt.kernels import sgd_step
from fastopt_testing.arrays import snapshot
from fastopt_testing.optim_reference import direction

RTOL = {np.float32: 1e-6, np.float64: 1e-12}


def reference_sgd(p, g, buf, *, lr, momentum, dampening, nesterov, weight_decay, l1,
                  maximize, first_step):
    """torch.optim.SGD's documented algorithm, step by step, in the array's dtype."""
    t = p.dtype.type
    d = direction(p, g, weight_decay, l1, maximize)
    if momentum:
        buf[...] = d if first_step else t(momentum) * buf + t(1 - dampening) * d
        d = d + t(momentum) * buf if nesterov else buf
    p -= t(lr) * d


OPTIONS = [
    dict(momentum=m, dampening=damp, nesterov=nest, weight_decay=wd, l1=l1, maximize=mx)
    for m, damp, nest, wd, l1, mx in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 1e-2], [0.0, 1e-3], [False, True])
    if not (nest and (m == 0 or damp != 0))
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(
    f"{k}={v}" for k, v in o.items() if v))
def test_matches_reference_over_50_steps(opts, dtype, rng):
    shape = (7, 13)
    p = rng.standard_normal(shape).astype(dtype)
    buf = np.zeros(shape, dtype)
    p_ref, buf_ref = p.copy(), buf.copy()
    for step in range(50):
        g = rng.standard_normal(shape).astype(dtype)
        lr = 0.05 / (1 + step)  # a changing lr exercises the per-call coefficients
        sgd_step(p, g, buf if opts["momentum"] else None, lr=lr, first_step=step == 0, **opts)
        reference_sgd(p_ref, g, buf_ref, lr=lr, first_step=step == 0, **opts)
    np.testing.assert_allclose(p, p_ref, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(buf, buf_ref, rtol=RTOL[dtype], atol=0)
    assert p.dtype == dtype


def test_list_of_arrays_equals_one_call_per_array(dtype, rng):
    shapes = [(3,), (0,), (40, 50), (1,), (100_000,), (2, 3, 4)]
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    bs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ps2, bs2 = [p.copy() for p in ps], [b.copy() for b in bs]
    sgd_step(ps, gs, bs, lr=0.1, momentum=0.9, dampening=0.1)
    for p, g, b in zip(ps2, gs, bs2):
        sgd_step(p, g, b, lr=0.1, momentum=0.9, dampening=0.1)
    for a, b in zip(ps + bs, ps2 + bs2):
        assert a.tobytes() == b.tobytes()


def test_mixed_dtypes_in_one_list(rng):
    ps = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(6)]
    gs = [np.ones(5, np.float32), np.ones(6)]
    expect = [p - np.asarray(0.5, p.dtype) for p in ps]
    sgd_step(ps, gs, lr=0.5)
    for p, e in zip(ps, expect):
        np.testing.assert_array_equal(p, e)


def test_one_and_two_threads_bitwise_identical_3e6(dtype, rng):
    n = 3_000_000
    p0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    results = []
    for threads in (1, 2):
        p, buf = p0.copy(), np.full(n, 0.25, dtype)
        with fastopt.threads(threads):
            for _ in range(3):
                sgd_step(p, g, buf, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4,
                         l1=1e-5)
        results.append((p.tobytes(), buf.tobytes()))
    assert results[0] == results[1]


def test_many_small_tensors_use_both_cores():
    if fastopt.get_num_threads() < 2:
        pytest.skip("needs an OpenMP build with at least 2 threads")
    ps = [np.zeros(4096, np.float32) for _ in range(2000)]
    gs = [np.ones(4096, np.float32) for _ in range(2000)]
    with fastopt.threads(2):
        sgd_step(ps, gs, lr=0.1)
        assert fastopt.kernels.last_threads_used() == 2
    with fastopt.threads(1):
        sgd_step(ps, gs, lr=0.1)
        assert fastopt.kernels.last_threads_used() == 1
    assert all(float(p[0]) == pytest.approx(-0.2) for p in (ps[0], ps[-1]))


def test_small_arrays_run_serially():
    with fastopt.threads(2):
        sgd_step(np.zeros(100), np.ones(100), lr=0.1)
        assert fastopt.kernels.last_threads_used() == 1


def test_noncontiguous_grad_is_copied(dtype, rng):
    p = rng.standard_normal((4, 5)).astype(dtype)
    g_full = rng.standard_normal((4, 10)).astype(dtype)
    g = g_full[:, ::2]
    expect = p - dtype(0.1) * np.ascontiguousarray(g)
    sgd_step(p, g, lr=0.1)
    np.testing.assert_array_equal(p, expect)


def test_byteswapped_grad_is_converted(rng):
    p = rng.standard_normal(6)
    g = rng.standard_normal(6)
    expect = p - 0.5 * g
    sgd_step(p, g.astype(">f8"), lr=0.5)
    np.testing.assert_array_equal(p, expect)


def _bad_calls(dtype):
    """(description, callable producing (args, kwargs), expected exception, words in message)."""
    p = np.ones(8, dtype)
    g = np.ones(8, dtype)
    b = np.zeros(8, dtype)
    ro = np.ones(8, dtype)
    ro.flags.writeable = False
    big = np.ones(16, dtype)
    return [
        ("int param", (np.ones(8, np.int64), g, None), {}, TypeError, "p"),
        ("float16 param", (np.ones(8, np.float16), g, None), {}, TypeError, "float32 or float64"),
        ("mixed dtypes", (p, g.astype(np.float64 if dtype == np.float32 else np.float32), None),
         {}, TypeError, "g"),
        ("shape mismatch", (p, np.ones(9, dtype), None), {}, ValueError, "shape"),
        ("read-only param", (ro, g, None), {}, ValueError, "writeable"),
        ("non-contiguous param", (big[::2], g, None), {}, ValueError, "contiguous"),
        ("param is grad", (p, p, None), {}, ValueError, "shares memory"),
        ("param overlaps buf", (p, g, p), {"momentum": 0.9}, ValueError, "shares memory"),
        ("negative lr", (p, g, None), {"lr": -1.0}, ValueError, "lr"),
        ("nan lr", (p, g, None), {"lr": float("nan")}, ValueError, "lr"),
        ("negative momentum", (p, g, b), {"momentum": -0.1}, ValueError, "momentum"),
        ("nesterov without momentum", (p, g, None), {"nesterov": True}, ValueError, "nesterov"),
        ("momentum without buffer", (p, g, None), {"momentum": 0.9}, ValueError, "buf"),
        ("read-only buffer", (p, g, ro), {"momentum": 0.9}, ValueError, "buf"),
        ("list length mismatch", ([p, b], [g], None), {}, ValueError, "g"),
        ("not an array", ([1.0], [g], None), {}, TypeError, r"p\[0\]: expected a numpy array"),
        ("string lr", (p, g, None), {"lr": "0.1"}, TypeError, "lr"),
        ("dampening > 1", (p, g, b), {"momentum": 0.9, "dampening": 2.0}, ValueError, "dampening"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_calls(np.float32))))
def test_bad_input_raises_and_modifies_nothing(case, dtype):
    name, args, kwargs, exc, words = _bad_calls(dtype)[case]
    kwargs = {"lr": 0.1, **kwargs}
    arrays = [a for arg in args if arg is not None
              for a in (arg if isinstance(arg, list) else [arg]) if isinstance(a, np.ndarray)]
    before = snapshot(arrays)
    with pytest.raises(exc, match=words):
        sgd_step(*args, **kwargs)
    assert snapshot(arrays) == before, name


def test_failure_in_second_tensor_leaves_first_untouched():
    ps = [np.ones(4), np.ones(4)]
    gs = [np.ones(4), np.ones(5)]
    with pytest.raises(ValueError, match=r"g\[1\]"):
        sgd_step(ps, gs, lr=0.1)
    assert all((p == 1).all() for p in ps)


def test_same_grad_for_two_params_is_allowed():
    g = np.ones(3)
    ps = [np.zeros(3), np.zeros(3)]
    sgd_step(ps, [g, g], lr=1.0)
    assert all((p == -1).all() for p in ps)


def test_nan_and_inf_propagate():
    p = np.array([1.0, 2.0, 3.0])
    sgd_step(p, np.array([np.nan, np.inf, 0.0]), lr=0.1)
    assert np.isnan(p[0]) and p[1] == -np.inf and p[2] == 3.0


def test_matches_torch_when_installed(dtype, rng):
    torch = pytest.importorskip("torch")
    shape = (31, 17)
    p = rng.standard_normal(shape).astype(dtype)
    tp = torch.tensor(p.copy(), requires_grad=True)
    opts = dict(lr=0.03, momentum=0.8, dampening=0.0, nesterov=True, weight_decay=1e-3)
    topt = torch.optim.SGD([tp], **opts, maximize=True, foreach=False)
    buf = np.zeros(shape, dtype)
    for step in range(50):
        g = rng.standard_normal(shape).astype(dtype)
        tp.grad = torch.tensor(g)
        topt.step()
        sgd_step(p, g, buf, first_step=step == 0, maximize=True, **opts)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL[dtype] * 10, atol=1e-7)


def misaligned(values, dtype):
    """A C-contiguous but misaligned array (np.ascontiguousarray keeps such arrays as is)."""
    raw = np.zeros(len(values) * np.dtype(dtype).itemsize + 1, np.uint8)
    arr = raw[1:].view(dtype)
    arr[...] = values
    assert arr.flags.c_contiguous and not arr.flags.aligned
    return arr


def test_misaligned_inputs_are_copied_not_read_in_place():
    """Found by the UBSan job: a contiguous misaligned grad reached C as is."""
    values = np.arange(8.0)
    g = misaligned(values, np.float64)
    p = np.zeros(8)
    sgd_step(p, g, lr=1.0)
    np.testing.assert_array_equal(p, -values)
    assert fastopt.kernels.all_finite([misaligned(values, np.float32)])
    assert _kernels_norm(misaligned(values, np.float32)) == float((values ** 2).sum())
    with pytest.raises(ValueError, match="aligned"):
        sgd_step(misaligned(values, np.float64), np.ones(8), lr=1.0)


def _kernels_norm(x):
    return fastopt._kernels.norm_reduce(x, 2.0)
