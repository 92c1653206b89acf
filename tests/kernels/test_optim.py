"""fastopt.kernels.{adam,adagrad,rmsprop,adadelta,nadam,lion}_step and all_finite: the C
kernels through the functional boundary, against the numpy statements in optim_reference.py
(Lion's is the paper's Algorithm 2 as written)."""

import itertools

import numpy as np
import pytest

import fastopt
from fastopt.kernels import (
    adadelta_step,
    adagrad_step,
    adam_step,
    all_finite,
    lion_step,
    nadam_step,
    rmsprop_step,
)
from fastopt_testing import optim_reference as ref
from fastopt_testing.arrays import snapshot
from fastopt_testing.gil import python_ticks_during
from fastopt_testing.paths import CSRC

RTOL = {np.float32: 1e-5, np.float64: 1e-12}
SHAPE = (7, 13)


def _ids(opts):
    return "-".join(f"{k}={v}" for k, v in opts.items() if v) or "plain"


def _run(kernel_call, rule, opts, dtype, rng, state_names, fills=None, steps=50):
    """50 steps of a kernel against its reference with a changing lr; returns nothing,
    asserts closeness of p and every state array."""
    fills = fills or {}
    p = rng.standard_normal(SHAPE).astype(dtype)
    states = {n: np.full(SHAPE, fills.get(n, 0.0), dtype) for n in state_names}
    p_ref = p.copy()
    states_ref = {n: a.copy() for n, a in states.items()}
    for step in range(1, steps + 1):
        g = rng.standard_normal(SHAPE).astype(dtype)
        lr = 0.05 / (1 + 0.1 * step)  # a changing lr exercises the per-call coefficients
        kernel_call(p, g, states, step, lr)
        rule(p_ref, g, states_ref, step, lr=lr, **opts)
    np.testing.assert_allclose(p, p_ref, rtol=RTOL[dtype], atol=0)
    for n in state_names:
        np.testing.assert_allclose(states[n], states_ref[n], rtol=RTOL[dtype], atol=0,
                                   err_msg=n)
        assert states[n].dtype == dtype


ADAM_OPTIONS = [
    dict(amsgrad=a, decoupled=dec, maximize=mx, weight_decay=wd, l1=l1)
    for a, dec, mx, wd, l1 in itertools.product(
        [False, True], [False, True], [False, True], [0.0, 1e-2], [0.0, 1e-3])
]


@pytest.mark.parametrize("opts", ADAM_OPTIONS, ids=_ids)
def test_adam_matches_reference(opts, dtype, rng):
    names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if opts["amsgrad"] else [])

    def call(p, g, s, step, lr):
        adam_step(p, g, s["exp_avg"], s["exp_avg_sq"], step=step, lr=lr, beta1=0.8,
                  beta2=0.95, eps=1e-6, weight_decay=opts["weight_decay"],
                  decoupled=opts["decoupled"], vmax=s.get("max_exp_avg_sq"),
                  maximize=opts["maximize"], l1=opts["l1"])

    kw = dict(opts)
    _run(call, ref.adam, dict(beta1=0.8, beta2=0.95, eps=1e-6, **kw), dtype, rng, names)


ADAGRAD_OPTIONS = [
    dict(lr_decay=ld, weight_decay=wd, l1=l1, maximize=mx)
    for ld, wd, l1, mx in itertools.product([0.0, 0.1], [0.0, 1e-2], [0.0, 1e-3],
                                            [False, True])
]


@pytest.mark.parametrize("opts", ADAGRAD_OPTIONS, ids=_ids)
def test_adagrad_matches_reference(opts, dtype, rng):
    def call(p, g, s, step, lr):
        adagrad_step(p, g, s["sum"], step=step, lr=lr, eps=1e-8, **opts)

    _run(call, ref.adagrad, dict(eps=1e-8, fill=0.1, **opts), dtype, rng, ["sum"],
         fills={"sum": 0.1})


RMSPROP_OPTIONS = [
    dict(centered=c, momentum=mu, eps_in_sqrt=e, maximize=mx, weight_decay=wd, l1=l1)
    for c, mu, e, mx, wd, l1 in itertools.product(
        [False, True], [0.0, 0.9], [False, True], [False, True], [0.0, 1e-2], [0.0, 1e-3])
]


@pytest.mark.parametrize("opts", RMSPROP_OPTIONS, ids=_ids)
def test_rmsprop_matches_reference(opts, dtype, rng):
    names = ["square_avg"] + (["grad_avg"] if opts["centered"] else []) \
        + (["momentum_buffer"] if opts["momentum"] else [])

    def call(p, g, s, step, lr):
        rmsprop_step(p, g, s["square_avg"], lr=lr, alpha=0.9, eps=1e-3,
                     grad_avg=s.get("grad_avg"), momentum_buffer=s.get("momentum_buffer"),
                     **opts)

    # eps=1e-3 keeps centered sq - ga^2 (which may round below 0) inside the root's domain
    _run(call, ref.rmsprop, dict(alpha=0.9, eps=1e-3, **opts), dtype, rng, names)


ADADELTA_OPTIONS = [
    dict(weight_decay=wd, l1=l1, maximize=mx)
    for wd, l1, mx in itertools.product([0.0, 1e-2], [0.0, 1e-3], [False, True])
]


@pytest.mark.parametrize("opts", ADADELTA_OPTIONS, ids=_ids)
def test_adadelta_matches_reference(opts, dtype, rng):
    def call(p, g, s, step, lr):
        adadelta_step(p, g, s["square_avg"], s["acc_delta"], lr=lr * 20, rho=0.8, eps=1e-5,
                      **opts)

    def rule(p, g, s, step, lr, **kw):
        ref.adadelta(p, g, s, step, lr=lr * 20, **kw)

    _run(call, rule, dict(rho=0.8, eps=1e-5, **opts), dtype, rng,
         ["square_avg", "acc_delta"])


NADAM_OPTIONS = [
    dict(decoupled=dec, maximize=mx, weight_decay=wd, l1=l1)
    for dec, mx, wd, l1 in itertools.product([False, True], [False, True], [0.0, 1e-2],
                                             [0.0, 1e-3])
]


@pytest.mark.parametrize("opts", NADAM_OPTIONS, ids=_ids)
def test_nadam_matches_reference(opts, dtype, rng):
    hypers = dict(beta1=0.8, beta2=0.95, eps=1e-6, momentum_decay=0.01, **opts)
    products = [1.0]

    def call(p, g, s, step, lr):
        products.append(nadam_step(p, g, s["exp_avg"], s["exp_avg_sq"], step=step,
                                   mu_product=products[-1], lr=lr, **hypers))

    _run(call, ref.nadam, hypers, dtype, rng, ["exp_avg", "exp_avg_sq"])
    # the returned product is torch's, computed in double: mu_1 * ... * mu_t, bit for bit
    expected = 1.0
    for t in range(1, len(products)):
        expected *= 0.8 * (1.0 - 0.5 * 0.96 ** (t * 0.01))
        assert products[t] == expected


def test_nadam_one_call_over_a_list_returns_one_product(rng):
    ps = [rng.standard_normal(5), rng.standard_normal((2, 3))]
    states = [[np.zeros_like(p) for p in ps] for _ in range(2)]
    out = nadam_step(ps, [np.ones_like(p) for p in ps], *states, step=3, mu_product=0.25,
                     lr=0.1)
    assert out == 0.25 * 0.9 * (1.0 - 0.5 * 0.96 ** (3 * 4e-3))
    with pytest.raises(ValueError, match="^mu_product: "):
        nadam_step(ps, ps, *states, step=1, mu_product=1.5, lr=0.1)


LION_OPTIONS = [
    dict(maximize=mx, weight_decay=wd, l1=l1)
    for mx, wd, l1 in itertools.product([False, True], [0.0, 0.1], [0.0, 1e-3])
]


@pytest.mark.parametrize("opts", LION_OPTIONS, ids=_ids)
def test_lion_matches_the_papers_rule(opts, dtype, rng):
    def call(p, g, s, step, lr):
        lion_step(p, g, s["exp_avg"], lr=lr, beta1=0.8, beta2=0.95, **opts)

    _run(call, ref.lion, dict(beta1=0.8, beta2=0.95, **opts), dtype, rng, ["exp_avg"])


def test_lion_moves_each_coordinate_by_lr_times_a_sign(dtype):
    p = np.array([1.0, -2.0, 0.5, 3.0], dtype)
    m = np.zeros(4, dtype)
    g = np.array([0.3, -1e-6, 0.0, -5.0], dtype)
    lion_step(p, g, m, lr=0.25)   # c = 0.1 g: its sign, 0 where g is 0
    np.testing.assert_array_equal(p, np.array([0.75, -1.75, 0.5, 3.25], dtype))
    np.testing.assert_array_equal(m, (dtype(1 - 0.99) * g).astype(dtype))
    p2, m2 = np.array([2.0], dtype), np.zeros(1, dtype)
    lion_step(p2, np.zeros(1, dtype), m2, lr=0.5, weight_decay=0.1)  # only the decay
    assert p2[0] == dtype(2.0) - dtype(0.5) * (dtype(0.0) + dtype(0.1) * dtype(2.0))


def test_lion_lets_nan_reach_the_parameter():
    p, m = np.ones(3), np.zeros(3)
    lion_step(p, np.array([np.nan, np.inf, -np.inf]), m, lr=0.1)
    assert np.isnan(p[0]) and p[1] == 0.9 and p[2] == 1.1
    assert np.isnan(m[0]) and m[1] == np.inf and m[2] == -np.inf


# -- multi-tensor, threads, dtypes ---------------------------------------------------------

def _adam_lists(rng, shapes, dtype):
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    gs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ms = [rng.standard_normal(s).astype(dtype) for s in shapes]
    vs = [rng.random(s).astype(dtype) for s in shapes]
    return ps, gs, ms, vs


def test_list_equals_one_call_per_array(dtype, rng):
    shapes = [(3,), (0,), (40, 50), (1,), (70_000,), (2, 3, 4)]
    ps, gs, ms, vs = _adam_lists(rng, shapes, dtype)
    copies = [[a.copy() for a in arrs] for arrs in (ps, ms, vs)]
    adam_step(ps, gs, ms, vs, step=3, lr=0.1, weight_decay=0.1, l1=0.01)
    for p, g, m, v in zip(copies[0], gs, copies[1], copies[2]):
        adam_step(p, g, m, v, step=3, lr=0.1, weight_decay=0.1, l1=0.01)
    for a, b in zip(ps + ms + vs, copies[0] + copies[1] + copies[2]):
        assert a.tobytes() == b.tobytes()


def test_mixed_dtypes_in_one_list(rng):
    ps = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(6)]
    gs = [np.ones(5, np.float32), np.ones(6)]
    ss = [np.zeros(5, np.float32), np.zeros(6)]
    expect = [p.copy() for p in ps]
    for p, g, s in zip(expect, gs, [s.copy() for s in ss]):
        adagrad_step(p, g, s, step=1, lr=0.5)
    adagrad_step(ps, gs, ss, step=1, lr=0.5)
    for p, e in zip(ps, expect):
        assert p.dtype == e.dtype and p.tobytes() == e.tobytes()


ALL_KERNELS = {
    "adam": lambda a, **kw: adam_step(a[0], a[1], a[2], a[3], vmax=a[4], step=7, lr=1e-2,
                                      weight_decay=1e-2, l1=1e-4, decoupled=True, **kw),
    "adagrad": lambda a, **kw: adagrad_step(a[0], a[1], a[2], step=7, lr=1e-2, lr_decay=0.1,
                                            weight_decay=1e-3, **kw),
    "rmsprop": lambda a, **kw: rmsprop_step(a[0], a[1], a[2], grad_avg=a[3],
                                            momentum_buffer=a[4], centered=True, momentum=0.9,
                                            lr=1e-2, l1=1e-4, **kw),
    "adadelta": lambda a, **kw: adadelta_step(a[0], a[1], a[2], a[3], weight_decay=1e-3,
                                              **kw),
    "nadam": lambda a, **kw: nadam_step(a[0], a[1], a[2], a[3], step=7, mu_product=0.01,
                                        lr=1e-2, weight_decay=1e-2, l1=1e-4, **kw),
    "lion": lambda a, **kw: lion_step(a[0], a[1], a[2], lr=1e-3, weight_decay=0.1, l1=1e-4,
                                      **kw),
}


@pytest.mark.parametrize("name", sorted(ALL_KERNELS))
def test_one_and_two_threads_bitwise_identical_3e6(name, rng):
    n = 3_000_000
    dtype = np.float32
    base = [rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)] + \
        [rng.random(n).astype(dtype) for _ in range(3)]
    results = []
    for threads in (1, 2):
        arrays = [a.copy() for a in base]
        with fastopt.threads(threads):
            for _ in range(2):
                ALL_KERNELS[name](arrays)
        results.append([a.tobytes() for a in arrays])
    assert results[0] == results[1]


@pytest.mark.parametrize("name", ["adam", "rmsprop", "lion"])
def test_chunks_across_uneven_tensors_bitwise_identical(name, rng):
    # a 2-thread call hands out chunks of the flat index space as threads ask for them
    # (parallel.h, fo_parallel_ranges): chunk edges fall inside tensors of every size here,
    # and the bits must not depend on which thread took which chunk
    sizes = [int(k) for k in rng.integers(1, 90_000, size=23)] + [0, 1, 17, 16_384]
    base = [[rng.standard_normal(k).astype(np.float32) for k in sizes] for _ in range(2)] + \
        [[rng.random(k).astype(np.float32) for k in sizes] for _ in range(3)]
    results = []
    for threads in (1, 2, 2):
        arrays = [[a.copy() for a in column] for column in base]
        with fastopt.threads(threads):
            for _ in range(3):
                ALL_KERNELS[name](arrays)
            used = fastopt.kernels.last_threads_used()
        results.append([a.tobytes() for column in arrays for a in column])
        if threads == 2 and fastopt.get_num_threads() >= 2:
            assert used == 2
    assert results[0] == results[1] == results[2]


def test_many_small_tensors_use_both_cores():
    if fastopt.get_num_threads() < 2:
        pytest.skip("needs an OpenMP build with at least 2 threads")
    ps = [np.zeros(4096, np.float32) for _ in range(200)]
    gs = [np.ones(4096, np.float32) for _ in range(200)]
    ms = [np.zeros(4096, np.float32) for _ in range(200)]
    vs = [np.zeros(4096, np.float32) for _ in range(200)]
    with fastopt.threads(2):
        adam_step(ps, gs, ms, vs, step=1, lr=0.1)
        assert fastopt.kernels.last_threads_used() == 2
    with fastopt.threads(1):
        adam_step(ps, gs, ms, vs, step=2, lr=0.1)
        assert fastopt.kernels.last_threads_used() == 1


def test_noncontiguous_grad_is_copied(dtype, rng):
    p = rng.standard_normal((4, 5)).astype(dtype)
    g_full = rng.standard_normal((4, 10)).astype(dtype)
    s1, s2 = np.zeros((4, 5), dtype), np.zeros((4, 5), dtype)
    p2, t1, t2 = p.copy(), s1.copy(), s2.copy()
    adadelta_step(p, g_full[:, ::2], s1, s2)
    adadelta_step(p2, np.ascontiguousarray(g_full[:, ::2]), t1, t2)
    assert p.tobytes() == p2.tobytes()


# -- NaN / Inf -------------------------------------------------------------------------------

def test_nan_and_inf_propagate_as_the_formulas_say():
    p = np.array([1.0, 2.0, 3.0])
    m, v = np.zeros(3), np.zeros(3)
    adam_step(p, np.array([np.nan, np.inf, 0.0]), m, v, step=1, lr=0.1)
    assert np.isnan(p[0]) and np.isnan(p[1]) and p[2] == 3.0  # inf/inf = nan
    assert np.isnan(m[0]) and m[1] == np.inf and v[1] == np.inf
    s = np.zeros(3)
    p = np.array([1.0, 2.0, 3.0])
    adagrad_step(p, np.array([np.nan, 1.0, 0.0]), s, step=1, lr=0.1)
    assert np.isnan(p[0]) and np.isnan(s[0]) and np.isfinite(p[1:]).all()


def test_amsgrad_max_propagates_nan():
    p, m, v, vmax = np.ones(2), np.zeros(2), np.zeros(2), np.array([np.nan, 1.0])
    adam_step(p, np.ones(2), m, v, vmax=vmax, step=1, lr=0.1)
    assert np.isnan(vmax[0]) and np.isnan(p[0]) and vmax[1] == 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n", [1, 17, 100_003])
def test_all_finite(bad, n, dtype):
    x = np.ones(n, dtype)
    assert all_finite(x) and all_finite([x, x[:3]])
    for where in (0, n // 2, n - 1):
        y = x.copy()
        y[where] = bad
        assert not all_finite(y)
        assert not all_finite([x, y])
    assert all_finite([]) and all_finite(np.zeros(0, dtype))
    assert all_finite(np.full(4, np.finfo(dtype).max, dtype))
    assert all_finite(np.ones((6, 4), dtype)[:, ::2])  # non-contiguous: copied


def test_all_finite_rejects_non_float():
    with pytest.raises(TypeError, match="x"):
        all_finite(np.ones(3, np.int32))


# -- bad input --------------------------------------------------------------------------------

def _bad_calls(dtype):
    """(description, callable, expected exception, words in message, arrays to watch)."""
    p, g, m, v = (np.ones(8, dtype) for _ in range(4))
    ro = np.ones(8, dtype)
    ro.flags.writeable = False
    other = np.float64 if dtype == np.float32 else np.float32
    adam = dict(step=1, lr=0.1)
    return [
        ("negative lr", lambda: adam_step(p, g, m, v, step=1, lr=-1.0), ValueError, "lr"),
        ("inf lr", lambda: adam_step(p, g, m, v, step=1, lr=np.inf), ValueError, "lr"),
        ("beta1 = 1", lambda: adam_step(p, g, m, v, beta1=1.0, **adam), ValueError, "beta1"),
        ("beta2 < 0", lambda: adam_step(p, g, m, v, beta2=-0.1, **adam), ValueError, "beta2"),
        ("eps = 0", lambda: adam_step(p, g, m, v, eps=0.0, **adam), ValueError, "eps"),
        ("step = 0", lambda: adam_step(p, g, m, v, step=0, lr=0.1), ValueError, "step"),
        ("non-integral step", lambda: adam_step(p, g, m, v, step=1.5, lr=0.1), TypeError,
         "step"),
        ("negative wd", lambda: adam_step(p, g, m, v, weight_decay=-1, **adam), ValueError,
         "weight_decay"),
        ("negative l1", lambda: adam_step(p, g, m, v, l1=-1, **adam), ValueError, "l1"),
        ("string amsgrad", lambda: adam_step(p, g, m, v, decoupled="yes", **adam), TypeError,
         "decoupled"),
        ("m wrong dtype", lambda: adam_step(p, g, m.astype(other), v, **adam), TypeError, "m"),
        ("v wrong shape", lambda: adam_step(p, g, m, np.ones(9, dtype), **adam), ValueError,
         "v"),
        ("read-only vmax", lambda: adam_step(p, g, m, v, vmax=ro, **adam), ValueError,
         "vmax"),
        ("m is v", lambda: adam_step(p, g, m, m, **adam), ValueError, "shares memory"),
        ("g is m", lambda: adam_step(p, m, m, v, **adam), ValueError, "shares memory"),
        ("rho > 1", lambda: adadelta_step(p, g, m, v, rho=1.5), ValueError, "rho"),
        ("alpha > 1", lambda: rmsprop_step(p, g, m, lr=0.1, alpha=1.5), ValueError, "alpha"),
        ("centered without grad_avg", lambda: rmsprop_step(p, g, m, lr=0.1, centered=True),
         ValueError, "grad_avg"),
        ("momentum without buffer", lambda: rmsprop_step(p, g, m, lr=0.1, momentum=0.9),
         ValueError, "momentum_buffer"),
        ("negative lr_decay", lambda: adagrad_step(p, g, m, step=1, lr=0.1, lr_decay=-1),
         ValueError, "lr_decay"),
        ("adagrad eps = 0", lambda: adagrad_step(p, g, m, step=1, lr=0.1, eps=0.0),
         ValueError, "eps"),
        ("list length", lambda: adam_step([p, g], [m], [v, ro], [np.ones(8, dtype)] * 2,
                                          **adam), ValueError, "g"),
        ("second tensor bad", lambda: adam_step([p, g], [m, v], [ro, np.ones(8, dtype)],
                                                [np.ones(8, dtype), np.ones(3, dtype)],
                                                **adam), ValueError, "m\\[0\\]"),
    ], [p, g, m, v]


@pytest.mark.parametrize("case", range(len(_bad_calls(np.float32)[0])))
def test_bad_input_raises_naming_the_argument_and_modifies_nothing(case, dtype):
    cases, watched = _bad_calls(dtype)
    name, call, exc, words = cases[case]
    before = snapshot(watched)
    with pytest.raises(exc, match=words):
        call()
    assert snapshot(watched) == before, name


# -- GIL, embedding, cimport ---------------------------------------------------------------

def test_kernels_release_the_gil(rng):
    """While one thread is inside a long kernel call, another thread keeps running Python."""
    n = 8_000_000
    p, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    ticks, seconds = python_ticks_during(lambda: adam_step(p, g, m, v, step=1, lr=1e-3))
    assert ticks > 10, (ticks, seconds)


HAVE_CC = __import__("shutil").which("gcc") is not None


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_c_program_can_call_the_optimizer_kernels(tmp_path):
    import os
    import subprocess
    import textwrap

    csrc = str(CSRC)
    if not os.path.isdir(csrc):
        pytest.skip("needs the source tree (csrc/)")
    prog = tmp_path / "embed.c"
    prog.write_text(textwrap.dedent("""
        #include <stdio.h>
        #include "fastopt.h"
        int main(void) {
            float p[3] = {1, 2, 3}, g[3] = {1, -1, 0}, m[3] = {0}, v[3] = {0}, x[3] = {0};
            float *pp = p, *mp = m, *vp = v, *xp = x; const float *gp = g;
            int64_t off[2] = {0, 3};
            fo_layout layout = {1, off, 0};
            fo_adam_options o = {0};
            o.lr = 0.5; o.beta1 = 0.9; o.beta2 = 0.999; o.eps = 1e-8; o.step = 1;
            int status = fo_adam_step_f32(&layout, &pp, &gp, &mp, &vp, &xp, &o, 2);
            int finite = -1;
            status |= fo_all_finite_f32(&layout, &gp, &finite, 2);
            printf("%d %g %g %g %d\\n", status, p[0], p[1], p[2], finite);
            return status;
        }
    """))
    # only the two kernel files it calls: each csrc/*.c compiles on its own
    sources = [os.path.join(csrc, f) for f in ("adam.c", "finite.c")]
    exe = tmp_path / "embed"
    subprocess.run(["gcc", "-std=gnu11", "-O1", "-fopenmp", "-I", csrc, str(prog), *sources,
                    "-lm", "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["0", "0.5", "2.5", "3", "1"]


@pytest.mark.skipif(not HAVE_CC, reason="no C compiler on this machine")
def test_downstream_cython_can_cimport_the_optimizer_entry_points(tmp_path):
    import os
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("Cython")
    pkg_dir = os.path.dirname(fastopt.__file__)
    if not os.path.isfile(os.path.join(pkg_dir, "_kernels.pxd")):
        pytest.skip("fastopt's .pxd files are not installed with this copy")
    # Raw pointers from .ctypes.data (no memoryviews): a small module that compiles fast.
    (tmp_path / "consumer.pyx").write_text(textwrap.dedent("""
        # cython: language_level=3
        cimport fastopt._kernels as fk
        import numpy as np

        cdef double *ptr(a):
            return <double *><size_t>a.ctypes.data

        def run():
            arrays = [np.ones(4), np.full(4, 2.0), np.zeros(4), np.zeros(4), np.zeros(4)]
            x = np.ones(4, np.float32)
            cdef double *p = ptr(arrays[0])
            cdef double *g = ptr(arrays[1])
            cdef double *a = ptr(arrays[2])
            cdef double *b = ptr(arrays[3])
            cdef double *c = ptr(arrays[4])
            cdef float *xf = <float *><size_t>x.ctypes.data
            cdef int s = 0, finite
            cdef double mu_product = 1.0
            with nogil:
                s |= fk.adam_step_f64(p, g, a, b, NULL, 4, 1, 0.25, 0.9, 0.999, 1e-8, 0.0,
                                      0.0, False, False, 1)
                s |= fk.adagrad_step_f64(p, g, c, 4, 1, 0.1, 0.0, 0.0, 1e-10, 0.0, False, 1)
                s |= fk.rmsprop_step_f64(p, g, a, NULL, NULL, 4, 0.1, 0.99, 1e-8, 0.0, 0.0,
                                         0.0, False, False, 1)
                s |= fk.adadelta_step_f64(p, g, b, c, 4, 1.0, 0.9, 1e-6, 0.0, 0.0, False, 1)
                s |= fk.nadam_step_f64(p, g, a, b, 4, 1, &mu_product, 0.1, 0.9, 0.999, 1e-8,
                                       0.0, 4e-3, 0.0, False, False, 1)
                s |= fk.lion_step_f64(p, g, c, 4, 1e-3, 0.9, 0.99, 0.0, 0.0, False, 1)
                finite = fk.all_finite_f32(xf, 4, 1)
            return s, finite, arrays[0].tolist(), mu_product
    """))
    (tmp_path / "setup.py").write_text(textwrap.dedent("""
        from setuptools import setup, Extension
        from Cython.Build import cythonize
        ext = Extension("consumer", ["consumer.pyx"], extra_compile_args=["-O0"])
        setup(name="consumer", ext_modules=cythonize([ext]))
    """))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(pkg_dir) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", "import consumer; print(consumer.run())"],
                         cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    status, finite, p, mu_product = eval(out.stdout)
    assert status == 0 and finite == 1
    expect = np.ones(4)
    sa, sb, sc = (np.zeros(4) for _ in range(3))
    ga = np.full(4, 2.0)
    adam_step(expect, ga, sa, sb, step=1, lr=0.25)
    adagrad_step(expect, ga, sc, step=1, lr=0.1)
    rmsprop_step(expect, ga, sa, lr=0.1)
    adadelta_step(expect, ga, sb, sc)
    assert mu_product == nadam_step(expect, ga, sa, sb, step=1, mu_product=1.0, lr=0.1)
    lion_step(expect, ga, sc, lr=1e-3)
    assert p == expect.tolist()
