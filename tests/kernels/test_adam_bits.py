"""fastopt.kernels.adam_step bit for bit against its numpy statement (optim_reference.adam,
one IEEE operation per step of the formula, as the kernel computes it).

The kernel has a plain loop for Adam/AdamW without amsgrad, L1, L2 or maximize, which
divides by sqrt(1 - beta2^t) with a multiply and two fmas (FO_DIV_FUSED, csrc/rules.h) and
starts its vector loop on a cache line; these tests pin that every path gives the bits of
the formula: for values that reach the edges of the fused division (zeros of both signs,
tiny and huge magnitudes, infinities, NaN), divisors from beta2 = 0 to 1 - 1e-12, arrays
at every alignment, and 1 and 2 threads.
"""

import numpy as np
import pytest

import fastopt
from fastopt.kernels import adam_step
from fastopt_testing import optim_reference as ref

N = 40_003  # above the serial threshold: 2 threads split it; not a multiple of 16
STEPS = (1, 2, 3, 1000, 10**6)  # bias corrections from far below 1 to exactly 1

OPTIONS = [
    {},
    {"decoupled": True, "weight_decay": 1e-2},
    {"weight_decay": 1e-2},
    {"l1": 1e-3},
    {"maximize": True},
    {"amsgrad": True},
    {"beta2": 0.0},
    {"beta2": 0.5},
    {"beta2": 1.0 - 1e-12},
    {"eps": 1e-30, "decoupled": True, "weight_decay": 0.5},
]


def _ids(opts):
    return "-".join(f"{k}={v}" for k, v in opts.items()) or "plain"


def assert_same_bits(actual, expected, what):
    """Equal bit patterns, zeros' signs included; any NaN matches any NaN (its payload is
    the hardware's business)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    uint = np.uint32 if actual.dtype == np.float32 else np.uint64
    both_nan = np.isnan(actual) & np.isnan(expected)
    differ = (actual.view(uint) != expected.view(uint)) & ~both_nan
    if differ.any():
        at = np.flatnonzero(differ)[:5]
        raise AssertionError(f"{what}: {differ.sum()} elements differ, e.g. at {at}: "
                             f"{actual[at]} != {expected[at]}")


def _specials(dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    return np.array([0.0, -0.0, tiny, -tiny, 1e-30, -1e-30, 1e30, -1e30, np.inf, -np.inf,
                     np.nan], dtype)


def _inputs(rng, dtype):
    """p, g, exp_avg, exp_avg_sq, max_exp_avg_sq with special values at random places."""
    p = rng.standard_normal(N).astype(dtype)
    g = rng.standard_normal(N).astype(dtype)
    m = (0.1 * rng.standard_normal(N)).astype(dtype)
    v = (0.1 * rng.random(N)).astype(dtype)
    vmax = v + dtype(0.01)
    specials = _specials(dtype)
    for a, nonneg in ((p, False), (g, False), (m, False), (v, True), (vmax, True)):
        where = rng.choice(N, 400, replace=False)
        values = rng.choice(specials, 400)
        a[where] = np.abs(values) if nonneg else values
    return p, g, m, v, vmax


def _placed(a, offset):
    """A copy of `a` that starts `offset` elements past a 64-byte boundary."""
    buf = np.empty(a.size + 64, a.dtype)
    start = (-buf.ctypes.data % 64) // a.itemsize + offset
    out = buf[start:start + a.size]
    out[...] = a
    assert out.ctypes.data % 64 == (offset * a.itemsize) % 64
    return out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the reference's inf - inf, 0 * inf
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("opts", OPTIONS, ids=_ids)
def test_adam_step_has_the_bits_of_the_formula(opts, threads, dtype, rng):
    hyper = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, **opts}
    amsgrad = hyper.pop("amsgrad", False)
    p0, g, m0, v0, vmax0 = _inputs(rng, dtype)
    # the same misalignment for every array (numpy's large arrays), then a mixed one
    for offsets in ((3, 3, 3, 3, 3), (0, 5, 1, 7, 2)):
        p, m, v, vmax = (_placed(a, o) for a, o in zip((p0, m0, v0, vmax0), offsets))
        grad = _placed(g, offsets[4])
        p_ref, state = p0.copy(), {"exp_avg": m0.copy(), "exp_avg_sq": v0.copy()}
        if amsgrad:
            state["max_exp_avg_sq"] = vmax0.copy()
        for t in STEPS:
            with fastopt.threads(threads):
                adam_step(p, grad, m, v, step=t, vmax=vmax if amsgrad else None, **hyper)
            ref.adam(p_ref, g, state, t, amsgrad=amsgrad, **hyper)
            what = f"step {t}, offsets {offsets}"
            assert_same_bits(p, p_ref, f"p, {what}")
            assert_same_bits(m, state["exp_avg"], f"exp_avg, {what}")
            assert_same_bits(v, state["exp_avg_sq"], f"exp_avg_sq, {what}")
            if amsgrad:
                assert_same_bits(vmax, state["max_exp_avg_sq"], f"max_exp_avg_sq, {what}")


def test_many_tensors_with_odd_sizes_have_the_bits_of_the_formula(rng):
    """A list call: pieces of tensors that start anywhere, thread ranges across them."""
    sizes = [1, 15, 17, 33, 1000, 4099, 30_000, 5]
    ps = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    gs = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    ms = [np.zeros(n, np.float32) for n in sizes]
    vs = [np.zeros(n, np.float32) for n in sizes]
    refs = [(p.copy(), {"exp_avg": m.copy(), "exp_avg_sq": v.copy()}) for p, m, v in
            zip(ps, ms, vs)]
    for t in (1, 2, 50):
        with fastopt.threads(2):
            adam_step(ps, gs, ms, vs, step=t, lr=1e-2, weight_decay=0.1, decoupled=True)
        for (p_ref, state), g in zip(refs, gs):
            ref.adam(p_ref, g, state, t, lr=1e-2, weight_decay=0.1, decoupled=True)
        for k, (p, (p_ref, state)) in enumerate(zip(ps, refs)):
            assert_same_bits(p, p_ref, f"tensor {k}, step {t}")
            assert_same_bits(vs[k], state["exp_avg_sq"], f"v of tensor {k}, step {t}")
