"""Parameters stored as bfloat16 (ml_dtypes.bfloat16 arrays) updated with float32 math
(csrc/optim_bf16param.inc): every family against a numpy statement of the same update
(the Philox bits of the stochastic rounding emulated), thread invariance, checkpoints and
exact resume, refused input, and what rounding to nearest loses."""

import subprocess
import sys

import numpy as np
import pytest

import fastopt
from fastopt_testing.arrays import assert_same_state
from fastopt_testing.bf16param_reference import Bf16ParamReference, bf16_round_nearest
from fastopt_testing.lowprec_reference import assert_stored_state_equal

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = ml_dtypes.bfloat16

CASES = [
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("SGD", dict(lr=1e-2)),
    ("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, dampening=0.0)),
    ("Adagrad", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, momentum=0.5, centered=True)),
    ("Adadelta", dict(lr=1.0)),
    ("NAdam", dict(lr=1e-2)),
    ("Lion", dict(lr=1e-3)),
]
CASE_IDS = [f"{c[0]}-{i}" for i, c in enumerate(CASES)]


def _problem(shapes=((70, 80), (300,), (5000,)), seed=0, grad_dtype=np.float32, steps=6):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(BF16) for s in shapes]
    grads = [[rng.standard_normal(s).astype(grad_dtype) for s in shapes] for _ in range(steps)]
    return params, grads


def _bits(params):
    return [p.view(np.uint16) for p in params]


def _float32_state(value):
    assert value.dtype == np.float32


def _assert_same_state(opt, ref, k):
    assert_stored_state_equal(opt.state.get(k, {}), ref, k,
                              skip=("step", "mu_product", "param_compensation"),
                              check_full=_float32_state)


def _run_against_reference(name, options, rounding, state_dtype, grad_dtype):
    params, grads = _problem(grad_dtype=grad_dtype)
    ref_bits = [b.copy() for b in _bits(params)]
    opt = getattr(fastopt, name)(params, state_dtype=state_dtype, min_lowprec_size=1000,
                                 state_seed=11, param_rounding=rounding, **options)
    ref = Bf16ParamReference(name, ref_bits, state_dtype, rounding, min_size=1000, seed=11,
                             **options)
    for g in grads:
        assert opt.step([x.copy() for x in g]) is True
        ref.step([x.copy() for x in g])
    for k, (b, want) in enumerate(zip(_bits(params), ref_bits)):
        np.testing.assert_array_equal(b, want, err_msg=f"param {k}")
        _assert_same_state(opt, ref, k)
        if rounding == "kahan":
            c = opt.state[k]["param_compensation"]
            np.testing.assert_array_equal(c, ref.compensation[k], err_msg=f"param {k}")
            assert np.count_nonzero(c) > c.size // 2
    # the update did move the params (the comparison is not between two untouched copies)
    assert not np.array_equal(ref_bits[2], _bits(_problem(grad_dtype=grad_dtype)[0])[2])


@pytest.mark.parametrize("rounding", ["stochastic", "nearest", "kahan"])
@pytest.mark.parametrize("name,options", CASES, ids=CASE_IDS)
def test_update_matches_numpy_statement(name, options, rounding):
    """Six steps of every family on bfloat16 params with float32 grads and float32 state:
    the same bits as the numpy rule in float32 followed by the rounding (and the same
    Kahan compensation)."""
    _run_against_reference(name, options, rounding, None, np.float32)


@pytest.mark.parametrize("state_dtype", ["bfloat16", "int8"])
@pytest.mark.parametrize("grad_dtype", [np.float32, BF16], ids=["f32grad", "bf16grad"])
@pytest.mark.parametrize("name,options", [CASES[1], CASES[4], CASES[6]],
                         ids=[CASE_IDS[1], CASE_IDS[4], CASE_IDS[6]])
def test_with_low_precision_state(name, options, grad_dtype, state_dtype):
    """bfloat16 params combine with state_dtype and bfloat16 gradients: the state encoded
    as the state_dtype reference does, the params as above (the (300,) tensor keeps float32
    state under min_lowprec_size)."""
    _run_against_reference(name, options, "stochastic", state_dtype, grad_dtype)


@pytest.mark.parametrize("rounding", ["stochastic", "kahan"])
def test_bfloat16_grads(rounding):
    _run_against_reference("AdamW", dict(lr=1e-2, weight_decay=0.1), rounding, None, BF16)


def test_kahan_resumes_exactly_and_checkpoints_its_buffer():
    params, grads = _problem()
    straight = [p.copy() for p in params]
    opt = fastopt.SGD(straight, lr=1e-3, param_rounding="kahan")
    for g in grads:
        opt.step(g)
    first = [p.copy() for p in params]
    opt = fastopt.SGD(first, lr=1e-3, param_rounding="kahan")
    for g in grads[:3]:
        opt.step(g)
    saved = opt.state_dict()
    assert saved["state"][0]["param_compensation"].dtype == np.uint16
    resumed = [p.copy() for p in first]
    again = fastopt.SGD(resumed, lr=1e-3, param_rounding="kahan")
    again.load_state_dict(saved)
    for g in grads[3:]:
        again.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))
    saved["state"][1]["param_compensation"] = saved["state"][1]["param_compensation"][:-1]
    with pytest.raises(ValueError, match=r"state\[1\]\['param_compensation'\] has shape"):
        again.load_state_dict(saved)


@pytest.mark.parametrize("state_dtype", [None, "bfloat16"])
@pytest.mark.parametrize("name,options", [CASES[1], CASES[4], CASES[6]],
                         ids=[CASE_IDS[1], CASE_IDS[4], CASE_IDS[6]])
def test_threads_bitwise(name, options, state_dtype):
    shapes = ((300_000,), (1000,), (77_777,))
    results = []
    for n in (1, 2):
        params, grads = _problem(shapes, seed=5, steps=3)
        opt = getattr(fastopt, name)(params, state_dtype=state_dtype, **options)
        with fastopt.threads(n):
            for g in grads:
                opt.step(g)
            used = fastopt.kernels.last_threads_used()
        results.append((params, opt.state_dict()))
        assert used == n
    (p1, s1), (p2, s2) = results
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))
    assert_same_state(s1["state"], s2["state"])


def test_state_is_float32_and_checkpoints_resume_exactly():
    params, grads = _problem()
    straight = [p.copy() for p in params]
    opt = fastopt.AdamW(straight)
    for g in grads:
        opt.step(g)
    assert opt.state[0]["exp_avg"].dtype == np.float32
    assert opt.state_nbytes == 8 * sum(p.size for p in params)
    first = [p.copy() for p in params]
    opt = fastopt.AdamW(first)
    for g in grads[:3]:
        opt.step(g)
    saved = opt.state_dict()
    assert saved["state"][2]["exp_avg_sq"].dtype == np.float32
    resumed = [p.copy() for p in first]
    again = fastopt.AdamW(resumed)
    again.load_state_dict(saved)
    for g in grads[3:]:
        again.step(g)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))
    # a float64 state cannot be a bfloat16 param's
    bad = opt.state_dict()
    bad["state"][0]["exp_avg"] = bad["state"][0]["exp_avg"].astype(np.float64)
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] has dtype float64, "
                                         r"expected dtype float32"):
        again.load_state_dict(bad)


def test_mixed_dtypes_in_one_optimizer():
    """float32 params next to bfloat16 ones are updated exactly as without them."""
    params, grads = _problem()
    f32 = np.random.default_rng(3).standard_normal(500).astype(np.float32)
    alone = f32.copy()
    mixed = fastopt.Adam(params + [f32], lr=1e-2)
    plain = fastopt.Adam([alone], lr=1e-2)
    rng = np.random.default_rng(4)
    for g in grads:
        extra = rng.standard_normal(500).astype(np.float32)
        mixed.step(g + [extra])
        plain.step([extra.copy()])
    np.testing.assert_array_equal(f32, alone)


def test_bad_input_is_refused_and_modifies_nothing():
    params, grads = _problem()
    opt = fastopt.Adam(params, lr=1e-2)
    opt.step(grads[0])
    before = [p.copy() for p in params], opt.state_dict()
    for bad, err, message in [
        (grads[1][:2] + [grads[1][2].astype(np.float64)], TypeError,
         r"grads\[2\]: expected a bfloat16 or float32 array \(params\[2\] is bfloat16\), "
         r"got dtype float64"),
        (grads[1][:2] + [grads[1][2][:-1]], ValueError, r"grads\[2\]: expected shape \(5000,\)"),
        (grads[1][:2] + [params[2]], ValueError, r"grads\[2\]: shares memory with params\[2\]"),
        (grads[1][:2], ValueError, "grads: expected 3 gradients"),
    ]:
        with pytest.raises(err, match=message):
            opt.step(bad)
    nan = [g.copy() for g in grads[1]]
    nan[0][3, 4] = np.nan
    assert opt.step([g.astype(BF16) for g in nan], skip_if_nonfinite=True) is False
    assert opt.step(nan, skip_if_nonfinite=True) is False
    for a, b in zip(params, before[0]):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))
    after = opt.state_dict()
    assert after["param_groups"][0]["step"] == 1 and after["state"][0]["step"] == 1
    np.testing.assert_array_equal(after["state"][0]["exp_avg"], before[1]["state"][0]["exp_avg"])
    assert opt.step(grads[1]) is True


def test_bad_params_and_options():
    p = np.zeros(10, BF16)
    p.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\]: expected a writeable array"):
        fastopt.Adam([p])
    q = np.zeros(20, BF16)
    with pytest.raises(ValueError, match=r"params\[1\]: shares memory with params\[0\]"):
        fastopt.Adam([q[:12], q[10:]])
    with pytest.raises(ValueError, match=r"params\[0\]: expected a C-contiguous"):
        fastopt.SGD([q[::2]])
    with pytest.raises(ValueError, match="param_rounding: expected 'stochastic', 'nearest' or "
                                         "'kahan'"):
        fastopt.Adam([np.zeros(3, BF16)], param_rounding="up")


def test_stochastic_rounding_keeps_updates_below_half_an_ulp():
    """SGD steps of 1/16 ulp: rounding to nearest never moves a param off 1.0 (each result
    rounds back); stochastic rounding moves them by the right amount on average, Kahan
    compensation exactly."""
    n, steps, lr = 20_000, 64, 2.0**-12          # ulp of 1.0 is 2^-7: lr * g = ulp / 32 ...
    g = np.full(n, -2.0, np.float32)             # ... times 2: a step of 1/16 ulp upwards
    moved = {}
    for rounding in ("nearest", "stochastic", "kahan"):
        p = np.ones(n, BF16)
        opt = fastopt.SGD([p], lr=lr, param_rounding=rounding, state_seed=3)
        for _ in range(steps):
            opt.step([g])
        moved[rounding] = p.astype(np.float64).mean() - 1.0
    assert moved["nearest"] == 0.0
    want = steps * lr * 2.0                      # 4 ulp in all
    assert abs(moved["stochastic"] - want) < 0.02 * want
    assert moved["kahan"] == want                # the compensation holds 1/16 ulp exactly


def test_nearest_rounding_is_round_to_nearest_even():
    x = np.random.default_rng(2).standard_normal(4096).astype(np.float32)
    x[:4] = [np.inf, -np.inf, 0.0, -0.0]
    np.testing.assert_array_equal(bf16_round_nearest(x), x.astype(BF16).view(np.uint16))


def test_fastopt_never_imports_ml_dtypes_for_float_params():
    code = ("import sys, numpy as np, fastopt\n"
            "p = [np.ones(3, np.float32)]\n"
            "opt = fastopt.Adam(p)\n"
            "opt.step([np.ones(3, np.float32)])\n"
            "assert 'ml_dtypes' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("rounding", ["stochastic", "nearest", "kahan"])
def test_nonfinite_values_propagate(rounding):
    """A NaN gradient makes its param NaN (a quiet NaN in bfloat16), an infinite param
    stays infinite, and Kahan's compensation of either is zero (not NaN)."""
    p = np.ones(600, BF16)
    p[5] = np.inf
    g = np.zeros(600, np.float32)
    g[7] = np.nan
    opt = fastopt.SGD([p], lr=0.1, param_rounding=rounding)
    for _ in range(2):
        opt.step([g])
    x = p.astype(np.float32)
    assert x[5] == np.inf and np.isnan(x[7])
    assert np.all(x[8:] == 1.0) and np.all(x[:5] == 1.0)
    if rounding == "kahan":
        assert np.all(opt.state[0]["param_compensation"] == 0)
