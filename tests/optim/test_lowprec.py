"""Optimizer state in bfloat16 and int8 (fastopt.optim.storage, csrc/lowprec.h,
csrc/optim_lowprec.inc): the conversions against their definitions, every family's
low-precision update against a numpy statement of the same formats, thread invariance,
checkpoints and resume."""

import numpy as np
import pytest

import fastopt
from fastopt.optim.storage import (
    BFloat16State,
    Int8State,
    dequantize_blockwise,
    quantize_blockwise,
)
from fastopt_testing.arrays import assert_same_state
from fastopt_testing.lowprec_reference import (
    LowPrecisionReference,
    assert_stored_state_equal,
    bf16_stochastic,
    nearest_codes,
    qmap,
    quantize,
    rounding_bits,
)

RNG = np.random.default_rng(1234)
BUILD = fastopt._kernels.build_info()


# -- the quantization round trip ---------------------------------------------------------

def test_maps_are_the_dynamic_maps():
    signed, unsigned = qmap(False), qmap(True)
    for m in (signed, unsigned):
        assert m.size == 256 and np.all(np.diff(m) > 0) and 0.0 in m and m[-1] == 1.0
    assert signed[0] == -signed[254] and signed[127] == 0.0  # symmetric but for +1
    assert unsigned[0] == 0.0 and unsigned.min() >= 0
    # 7 decades from 1e-7 on: the smallest non-zero magnitudes
    assert 1e-7 < signed[128] < 1e-6 and 1e-7 < unsigned[1] < 1e-6


@pytest.mark.parametrize("nonnegative", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 255, 256, 257, 5000])
def test_quantize_matches_nearest_code(nonnegative, dtype, n):
    x = (RNG.standard_normal(n) * np.exp(RNG.uniform(-12, 4, n))).astype(dtype)
    if nonnegative:
        x = np.abs(x)
    codes, absmax = quantize_blockwise(x, nonnegative)
    want_codes, want_absmax = quantize(x, nonnegative)
    np.testing.assert_array_equal(absmax, want_absmax)
    np.testing.assert_array_equal(codes, want_codes)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_encode_at_thresholds(nonnegative):
    """Every midpoint between neighbouring codes and the floats next to it: the exact
    nearest code (ties to the smaller magnitude)."""
    m = qmap(nonnegative).astype(np.float64)
    mid = ((m[:-1] + m[1:]) / 2).astype(np.float32)
    x = np.concatenate([mid, np.nextafter(mid, np.float32(-2)), np.nextafter(mid, np.float32(2)),
                        m.astype(np.float32)])
    x = x[(x >= 0) if nonnegative else slice(None)]
    x = x[np.abs(x) <= 1]
    blocks = np.array_split(x, max(1, x.size // 200))
    # each block gets a 1 so its absmax is exactly 1 and x / absmax = x
    xs = np.concatenate([np.append(b, np.float32(1.0)) for b in blocks])
    pad = np.zeros(-xs.size % 256 or 0, np.float32)
    blocks_of_256 = []
    for b in blocks:
        blk = np.append(b, np.float32(1.0))
        blocks_of_256.append(np.concatenate([blk, np.zeros(256 - blk.size, np.float32)]))
    xs = np.concatenate(blocks_of_256)
    codes, absmax = quantize_blockwise(xs, nonnegative)
    assert np.all(absmax == 1)
    np.testing.assert_array_equal(codes, nearest_codes(xs, nonnegative))
    del pad


@pytest.mark.parametrize("nonnegative", [False, True])
def test_round_trip_error_bound_per_block(nonnegative):
    """|x - dequantize(quantize(x))| is at most half the gap between the codes around
    x / absmax, times absmax: within one block, the bound of the map's widest gap."""
    x = (RNG.standard_normal(256 * 40) * np.repeat(10.0 ** RNG.uniform(-6, 6, 40), 256))
    x = x.astype(np.float32)
    if nonnegative:
        x = np.abs(x)
    codes, absmax = quantize_blockwise(x, nonnegative)
    back = dequantize_blockwise(codes, absmax, nonnegative)
    m = qmap(nonnegative).astype(np.float64)
    # the widest half gap; -1 (the signed map has no -1) is 1 - |m[0]| from its code
    half_gap = max(np.diff(m).max() / 2, 1 + m[0] if not nonnegative else 0.0)
    err = np.abs(back.astype(np.float64) - x).reshape(40, 256)
    # plus the float32 rounding of the product map[code] * absmax
    bound = absmax.astype(np.float64)[:, None] * (half_gap + 2.0**-23) + 1e-45
    assert np.all(err <= bound)
    # and the element bound: half the gap to the neighbour on its side
    xn = x.astype(np.float64) / np.repeat(absmax, 256)
    c = codes.astype(int)
    gap = np.maximum(np.diff(m, prepend=-1.0)[c], np.diff(m, append=m[-1])[c])
    assert np.all(err.ravel() <= np.repeat(absmax, 256) * (gap / 2 + 2.0**-23) + 1e-45)
    assert np.abs(xn).max() <= 1


def test_nonfinite_and_zero_blocks():
    x = RNG.standard_normal(256 * 4).astype(np.float32)
    x[3] = np.nan                  # block 0: NaN
    x[256 + 7] = -np.inf           # block 1: Inf
    x[512:768] = 0.0               # block 2: all zero
    codes, absmax = quantize_blockwise(x)
    assert np.isnan(absmax[0]) and absmax[1] == np.inf and absmax[2] == 0
    back = dequantize_blockwise(codes, absmax)
    # a non-finite value poisons its block: NaN everywhere, the Inf stays an Inf
    assert np.all(np.isnan(back[:256])) and not np.isfinite(back[256:512]).any()
    assert back[256 + 7] == -np.inf and np.isnan(np.delete(back[256:512], 7)).all()
    np.testing.assert_array_equal(back[512:768], 0.0)
    assert np.all(codes[512:768] == 127)
    np.testing.assert_allclose(back[768:], x[768:], atol=float(absmax[3]) * 0.01)
    np.testing.assert_array_equal(codes, quantize(x, False)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_blocks(dtype):
    tiny = np.finfo(np.float32).smallest_subnormal
    x = (np.arange(1, 257) * tiny * 3).astype(dtype)   # a block of float32 subnormals
    x[::2] *= -1
    codes, absmax = quantize_blockwise(x)
    assert absmax[0] == np.float32(256 * 3 * tiny) and absmax[0] < np.finfo(np.float32).tiny
    np.testing.assert_array_equal(codes, quantize(x, False)[0])
    back = dequantize_blockwise(codes, absmax, dtype=dtype)
    assert np.all(np.abs(back - x) <= absmax[0] * 0.08)
    assert np.all(np.sign(back[np.abs(x) > absmax[0] * 0.01]) == np.sign(x[np.abs(x) > absmax[0] * 0.01]))


def test_quantize_threads_bitwise():
    x = RNG.standard_normal(300_000).astype(np.float32)
    with fastopt.threads(1):
        one = quantize_blockwise(x)
    with fastopt.threads(2):
        two = quantize_blockwise(x)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_quantize_bad_arguments():
    with pytest.raises(TypeError, match="x: expected a float32 or float64 array"):
        quantize_blockwise(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="absmax: expected 1 values"):
        dequantize_blockwise(np.zeros(3, np.uint8), np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="codes: expected a uint8 array"):
        dequantize_blockwise(np.zeros(3, np.int8), np.zeros(1, np.float32))


def test_bfloat16_conversions():
    x = np.concatenate([RNG.standard_normal(1000), [0.0, -0.0, np.inf, -np.inf, np.nan,
                                                    1e-40, 3.4e38]]).astype(np.float32)
    s = BFloat16State.from_array(x)
    back = s.to_array()
    finite = np.isfinite(x) & (np.abs(x) < 3e38) & (np.abs(x) >= np.finfo(np.float32).tiny)
    assert np.all(np.abs(back[finite] - x[finite]) <= np.abs(x[finite]) * 2.0**-8 + 1e-45)
    assert np.isnan(back[np.isnan(x)]).all() and np.array_equal(back[np.isinf(x)], x[np.isinf(x)])
    ml_dtypes = pytest.importorskip("ml_dtypes")
    want = x.astype(ml_dtypes.bfloat16).view(np.uint16)
    ok = ~np.isnan(x)
    np.testing.assert_array_equal(s.bits[ok], want[ok])


def test_stochastic_rounding_is_unbiased():
    """The mean of many stochastically rounded copies of x is x to within the rounding's
    resolution (1/256 ulp), where round-to-nearest would be off by up to half an ulp."""
    x = np.float32(1.0) + np.float32(2.0**-10)    # 1/8 of a bfloat16 ulp above 1
    r = rounding_bits(1 << 16, 7, 3) & 0xff
    vals = (bf16_stochastic(np.full(r.size, x), r).astype(np.uint32) << 16).view(np.float32)
    assert abs(vals.astype(np.float64).mean() - float(x)) < 2.0**-7 * 2**-6


# -- the optimizers ------------------------------------------------------------------------

def _problem(dtype, shapes=((70, 80), (300,), (5000,)), seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(6)]
    return params, grads


CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("SGD", dict(lr=1e-2, momentum=0.9)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, dampening=0.0)),
    ("Adagrad", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.5, centered=True)),
    ("Adadelta", dict(lr=1.0)),
    ("NAdam", dict(lr=1e-2)),
    ("Lion", dict(lr=1e-3)),
]


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
@pytest.mark.parametrize("name,options", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_matches_numpy_statement(state_dtype, name, options, dtype):
    """Several steps of every family with low-precision state equal the family's numpy
    rule run on the decoded state, then encoded (int8: nearest code; bfloat16: the
    Philox bits): the same bits, params and stored state. The (300,) tensor is under the
    size threshold and keeps full-precision state."""
    params, grads = _problem(dtype)
    ref_params = [p.copy() for p in params]
    opt = getattr(fastopt, name)(params, state_dtype=state_dtype, min_lowprec_size=1000,
                                 state_seed=11, **options)
    ref = LowPrecisionReference(name, ref_params, state_dtype, min_size=1000, seed=11,
                                **options)
    for g in grads:
        opt.step([x.copy() for x in g])
        ref.step([x.copy() for x in g])
    for k, (p, q) in enumerate(zip(params, ref_params)):
        np.testing.assert_array_equal(p, q, err_msg=f"param {k}")
        def under_threshold(value, size=params[k].size):
            assert size < 1000      # only a tensor under min_lowprec_size keeps full state

        assert_stored_state_equal(opt.state[k], ref, k, check_full=under_threshold)


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
@pytest.mark.parametrize("name,options", [CASES[1], CASES[3], CASES[7]])
def test_threads_bitwise(state_dtype, name, options):
    shapes = ((300_000,), (1000,), (77_777,))
    results = []
    for n in (1, 2):
        params, grads = _problem(np.float32, shapes, seed=5)
        opt = getattr(fastopt, name)(params, state_dtype=state_dtype, **options)
        with fastopt.threads(n):
            for g in grads:
                opt.step(g)
            used = fastopt.kernels.last_threads_used()
            planned = fastopt.kernels.planned_threads(sum(p.size for p in params))
        results.append((params, opt.state_dict()))
        assert used == planned and (n == 1 or not BUILD["openmp"] or used == 2)
    (p1, s1), (p2, s2) = results
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)
    assert_same_state(s1["state"], s2["state"])


def test_state_nbytes_and_formats():
    p = [np.zeros(1 << 20, np.float32), np.zeros(100, np.float32)]
    for state_dtype, per_element in ((None, 8.0), ("bfloat16", 4.0), ("int8", 2.0 + 8 / 256)):
        opt = fastopt.Adam(p, state_dtype=state_dtype)
        opt.step([np.ones_like(x) for x in p])
        big = opt.state_nbytes - 800          # the small tensor keeps float32 m and v
        assert big == per_element * (1 << 20)
        assert opt.state_dtype == state_dtype
    assert big / (1 << 20) <= 2.1
    assert isinstance(opt.state[0]["exp_avg"], Int8State)
    assert isinstance(opt.state[1]["exp_avg"], np.ndarray)
    assert opt.state[0]["exp_avg"].nonnegative is False
    assert opt.state[0]["exp_avg_sq"].nonnegative is True


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_exact_resume(state_dtype):
    params, grads = _problem(np.float32)
    straight = [p.copy() for p in params]
    opt = fastopt.AdamW(straight, state_dtype=state_dtype, min_lowprec_size=1000)
    for g in grads:
        opt.step(g)
    first = [p.copy() for p in params]
    opt = fastopt.AdamW(first, state_dtype=state_dtype, min_lowprec_size=1000)
    for g in grads[:3]:
        opt.step(g)
    saved = opt.state_dict()
    resumed = [p.copy() for p in first]
    again = fastopt.AdamW(resumed, state_dtype=state_dtype, min_lowprec_size=1000)
    again.load_state_dict(saved)
    for g in grads[3:]:
        again.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_stores_codes_as_they_are():
    params, grads = _problem(np.float32)
    opt = fastopt.Adam(params, state_dtype="int8", min_lowprec_size=1000)
    opt.step(grads[0])
    sd = opt.state_dict()
    entry = sd["state"][0]["exp_avg_sq"]
    assert entry["format"] == "int8" and entry["nonnegative"] is True
    np.testing.assert_array_equal(entry["codes"], opt.state[0]["exp_avg_sq"].codes)
    np.testing.assert_array_equal(entry["absmax"], opt.state[0]["exp_avg_sq"].absmax)
    assert entry["codes"] is not opt.state[0]["exp_avg_sq"].codes   # a copy
    assert isinstance(sd["state"][1]["exp_avg"], np.ndarray)         # small: float32


def test_loading_converts_between_formats():
    params, grads = _problem(np.float32)
    full = fastopt.Adam([p.copy() for p in params])
    full.step(grads[0])
    sd = full.state_dict()
    # float32 state into an int8 optimizer: quantized
    q = fastopt.Adam([p.copy() for p in params], state_dtype="int8", min_lowprec_size=1000)
    q.load_state_dict(sd)
    m = sd["state"][0]["exp_avg"]
    s = q.state[0]["exp_avg"]
    codes, absmax = quantize_blockwise(m)
    np.testing.assert_array_equal(s.codes, codes)
    np.testing.assert_array_equal(s.absmax, absmax)
    assert q.state[0]["exp_avg_sq"].nonnegative
    np.testing.assert_array_equal(q.state[1]["exp_avg"], sd["state"][1]["exp_avg"])
    # and back: dequantized
    back = fastopt.Adam([p.copy() for p in params])
    back.load_state_dict(q.state_dict())
    np.testing.assert_array_equal(back.state[0]["exp_avg"], s.to_array())
    # int8 into bfloat16: decoded, then rounded to nearest
    b = fastopt.Adam([p.copy() for p in params], state_dtype="bfloat16", min_lowprec_size=1000)
    b.load_state_dict(q.state_dict())
    np.testing.assert_array_equal(b.state[0]["exp_avg"].bits,
                                  BFloat16State.from_array(s.to_array()).bits)


def test_bad_checkpoint_entry_is_refused():
    params, grads = _problem(np.float32)
    opt = fastopt.Adam(params, state_dtype="int8", min_lowprec_size=1000)
    opt.step(grads[0])
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"]["absmax"] = sd["state"][0]["exp_avg"]["absmax"][:-1]
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\]: expected 22 float32 absmax"):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"].absmax,
                                  before["state"][0]["exp_avg"]["absmax"])


def test_skip_if_nonfinite_and_bad_grads_modify_nothing():
    params, grads = _problem(np.float32)
    opt = fastopt.Adam(params, state_dtype="int8", min_lowprec_size=1000)
    opt.step(grads[0])
    before = [p.copy() for p in params], opt.state_dict()
    bad = [g.copy() for g in grads[1]]
    bad[2][17] = np.nan
    assert opt.step(bad, skip_if_nonfinite=True) is False
    wrong = [g.copy() for g in grads[1]]
    wrong[1] = wrong[1][:-1]
    with pytest.raises((TypeError, ValueError), match=r"grads\[0\]|grads"):
        opt.step(wrong)
    for a, b in zip(params, before[0]):
        np.testing.assert_array_equal(a, b)
    after = opt.state_dict()
    assert after["state"][0]["step"] == 1 and after["param_groups"][0]["step"] == 1
    np.testing.assert_array_equal(after["state"][0]["exp_avg"]["codes"],
                                  before[1]["state"][0]["exp_avg"]["codes"])


def test_nan_gradient_poisons_only_its_block():
    p = np.ones(1024, np.float32)
    opt = fastopt.Adam([p], state_dtype="int8", min_lowprec_size=0)
    g = np.ones(1024, np.float32)
    g[300] = np.nan
    opt.step([g])
    m = opt.state[0]["exp_avg"]
    assert np.isnan(m.absmax[1]) and np.isfinite(m.absmax[[0, 2, 3]]).all()
    assert np.isnan(m.to_array()[256:512]).all() and np.isfinite(m.to_array()[:256]).all()


def test_state_dtype_argument_checks():
    p = [np.zeros(10, np.float32)]
    with pytest.raises(ValueError, match="state_dtype: expected None, 'bfloat16' or 'int8'"):
        fastopt.Adam(p, state_dtype="fp8")
    with pytest.raises(ValueError, match="min_lowprec_size"):
        fastopt.SGD(p, momentum=0.9, state_dtype="int8", min_lowprec_size=-1)


@pytest.mark.parametrize("state_dtype", ["int8", "bfloat16"])
def test_cached_calls_follow_the_optimizer(state_dtype):
    """From the second update on, the step reuses the last update's kernel calls
    (lowprec._Plan): the same bits as an optimizer that rebuilds them (a pickled copy has
    none), and a replaced parameter, a loaded state or a step with a None gradient make
    it rebuild them."""
    import pickle

    params, grads = _problem(np.float32)
    mixed = params + [p.astype(np.float64) for p in params]
    grads = [g + [x.astype(np.float64) for x in g] for g in grads]
    opt = fastopt.Adam(mixed, lr=1e-2, state_dtype=state_dtype, min_lowprec_size=1000)
    twin_params = [p.copy() for p in mixed]
    twin = fastopt.Adam(twin_params, lr=1e-2, state_dtype=state_dtype, min_lowprec_size=1000)
    for step, g in enumerate(grads):
        opt.step(g)
        twin.step(g)
        if step % 2 == 1:  # drop the twin's cached calls
            twin = pickle.loads(pickle.dumps(twin))
            twin_params = twin.param_groups[0]["params"]
    for a, b in zip(mixed, twin_params):
        np.testing.assert_array_equal(a, b)
    # a replaced parameter is the one updated
    old = mixed[0]
    new = old.copy()
    opt.param_groups[0]["params"][0] = new
    opt.step(grads[0])
    assert not np.array_equal(new, old)
    np.testing.assert_array_equal(old, twin_params[0])
    # a None gradient leaves its parameter alone, then the next step plans again
    frozen, moving = new.copy(), mixed[1].copy()
    opt.step([None] + grads[1][1:])
    np.testing.assert_array_equal(new, frozen)
    assert not np.array_equal(mixed[1], moving)
    opt.step(grads[2])
    assert not np.array_equal(new, frozen)
    # a loaded state is the one used next
    sd = twin.state_dict()
    opt.load_state_dict(sd)
    twin.param_groups[0]["params"][0] = new.copy()
    for p, q in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"]):
        p[...] = q
    opt.step(grads[3])
    twin.step(grads[3])
    for p, q in zip(opt.param_groups[0]["params"], twin.param_groups[0]["params"]):
        np.testing.assert_array_equal(p, q)
