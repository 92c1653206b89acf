"""Tests for fastopt.schedules: closed forms, argument checking, pickling, torch parity."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastopt.schedules as S
from fastopt_testing import torch_reference as R

HSET = settings(max_examples=60, deadline=None)


def _module_level_scale(x: float) -> float:  # picklable custom scale_fn for cyclic
    return 1.0 / (1.0 + x)


# One representative of every schedule (composites included), for the generic tests.
ALL = [
    S.constant(0.1),
    S.constant(0.1, 0.5, 3),
    S.step_decay(0.1, 7, 0.5),
    S.multistep(0.1, [30, 60, 90]),
    S.exponential(0.1, 0.97),
    S.cosine(0.1, 17, 0.001),
    S.cosine(0.1, 17, clamp=True),
    S.cosine_restarts(0.1, 3, 2, 0.001, decay=0.5),
    S.linear(0.1, 0.1, 0.9, 13),
    S.polynomial(0.1, 20, 2.0, end_lr=0.01),
    S.inverse_sqrt(1.0, 10, d_model=64),
    S.inverse_sqrt(0.1, 10, normalize=True),
    S.one_cycle(0.5, 50, three_phase=True),
    S.one_cycle(0.5, 50, anneal_strategy="linear"),
    S.one_cycle_momentum(50),
    S.one_cycle_momentum(50, 0.25, "linear", 0.7, 0.99, three_phase=True),
    S.cyclic_momentum(0.8, 0.9, 5, 3, "triangular2"),
    S.cyclic_momentum(0.85, 0.95, 4, scale_fn=_module_level_scale, scale_mode="iterations"),
    S.cyclic(0.01, 0.1, 5, 3, "exp_range", 0.97),
    S.cyclic(0.01, 0.1, 5, scale_fn=_module_level_scale, scale_mode="iterations"),
    S.warmup(S.cosine(0.1, 20), 5, 0.1),
    S.warmup(0.1, 5, shift=True),
    S.sequential([S.linear(0.1, 0.1, 1.0, 5), S.cosine(0.1, 20), 0.001], [5, 25]),
    S.chain(0.1, S.step_decay(1.0, 4, 0.5), 0.5),
    S.scale_lr_for_batch(S.exponential(0.1, 0.9), 256, 1024),
]
IDS = [repr(s)[:40] for s in ALL]


# --------------------------------------------------------------------------- #
# The step argument
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_array_equals_scalar_calls(sched):
    steps = np.array([[0, 1, 2, 3], [5, 17, 40, 400]], dtype=np.int32)
    out = sched(steps)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2, 4)
    expected = [[sched(int(k)) for k in row] for row in steps]
    np.testing.assert_array_equal(out, expected)
    assert sched(np.uint8(5)) == sched(5) and type(sched(np.int64(5))) is float
    assert sched([0, 3]).tolist() == [sched(0), sched(3)]
    assert sched(np.array(3)).shape == ()


@pytest.mark.parametrize("sched", ALL, ids=IDS)
def test_pickle_and_repr(sched):
    clone = pickle.loads(pickle.dumps(sched))
    assert repr(clone) == repr(sched)
    steps = np.arange(60)
    np.testing.assert_array_equal(clone(steps), sched(steps))
    if "scale_fn" not in repr(sched):  # the repr is the call that builds the schedule
        rebuilt = eval(repr(sched), vars(S))
        assert repr(rebuilt) == repr(sched)
        np.testing.assert_array_equal(rebuilt(steps), sched(steps))


@pytest.mark.parametrize("bad", [-1, np.int64(-3), np.array([0, -1])])
def test_negative_step_raises(bad):
    with pytest.raises(ValueError, match="^step: expected (an int|values) >= 0"):
        S.cosine(0.1, 10)(bad)


@pytest.mark.parametrize("bad", [1.0, 2.5, True, "3", None, np.float64(2.0), np.array([0.0, 1.0])])
def test_non_integer_step_raises(bad):
    with pytest.raises(TypeError, match="^step: expected an int >= 0 or an array of them"):
        S.cosine(0.1, 10)(bad)
    with pytest.raises(TypeError, match="^step: expected an int >= 0 or an array of them"):
        S.ReduceLROnPlateau(0.1)(bad)


# --------------------------------------------------------------------------- #
# Argument validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "make, name, exc",
    [
        (lambda: S.constant(-0.1), "base_lr", ValueError),
        (lambda: S.constant(float("nan")), "base_lr", ValueError),
        (lambda: S.constant("0.1"), "base_lr", TypeError),
        (lambda: S.constant(0.1, -1.0, 3), "factor", ValueError),
        (lambda: S.constant(0.1, 0.5, -1), "total_iters", ValueError),
        (lambda: S.step_decay(0.1, 0), "step_size", ValueError),
        (lambda: S.step_decay(0.1, 2.5), "step_size", TypeError),
        (lambda: S.step_decay(0.1, True), "step_size", TypeError),
        (lambda: S.step_decay(0.1, 5, 0.0), "gamma", ValueError),
        (lambda: S.multistep(0.1, [3, -1]), r"milestones\[1\]", ValueError),
        (lambda: S.multistep(0.1, 30), "milestones", TypeError),
        (lambda: S.exponential(0.1, -0.5), "gamma", ValueError),
        (lambda: S.cosine(0.1, 0), "T_max", ValueError),
        (lambda: S.cosine(0.1, 10, -1.0), "eta_min", ValueError),
        (lambda: S.cosine(0.1, 10, clamp=1), "clamp", TypeError),
        (lambda: S.cosine_restarts(0.1, 0), "T_0", ValueError),
        (lambda: S.cosine_restarts(0.1, 5, 0), "T_mult", ValueError),
        (lambda: S.cosine_restarts(0.1, 5, 1.5), "T_mult", TypeError),
        (lambda: S.cosine_restarts(0.1, 5, decay=1.5), "decay", ValueError),
        (lambda: S.cosine_restarts(0.1, 5, decay=0.0), "decay", ValueError),
        (lambda: S.linear(0.1, -0.1), "start_factor", ValueError),
        (lambda: S.linear(0.1, 0.1, -1.0), "end_factor", ValueError),
        (lambda: S.linear(0.1, total_iters=0), "total_iters", ValueError),
        (lambda: S.polynomial(0.1, 0), "total_iters", ValueError),
        (lambda: S.polynomial(0.1, 5, 0.0), "power", ValueError),
        (lambda: S.polynomial(0.1, 5, end_lr=-1.0), "end_lr", ValueError),
        (lambda: S.inverse_sqrt(1.0, -1), "warmup_steps", ValueError),
        (lambda: S.inverse_sqrt(1.0, 0, normalize=True), "warmup_steps", ValueError),
        (lambda: S.inverse_sqrt(1.0, 10, d_model=0), "d_model", ValueError),
        (lambda: S.one_cycle(0.1), "total_steps", ValueError),
        (lambda: S.one_cycle(0.1, 0), "total_steps", ValueError),
        (lambda: S.one_cycle(0.1, epochs=0, steps_per_epoch=3), "epochs", ValueError),
        (lambda: S.one_cycle(0.1, 10, pct_start=1.5), "pct_start", ValueError),
        (lambda: S.one_cycle(0.1, 10, anneal_strategy="exp"), "anneal_strategy", ValueError),
        (lambda: S.one_cycle(0.1, 10, div_factor=0), "div_factor", ValueError),
        (lambda: S.one_cycle(0.1, 10, final_div_factor=-1), "final_div_factor", ValueError),
        (lambda: S.one_cycle_momentum(), "total_steps", ValueError),
        (lambda: S.one_cycle_momentum(10, base_momentum=-0.1), "base_momentum", ValueError),
        (lambda: S.one_cycle_momentum(10, max_momentum="0.9"), "max_momentum", TypeError),
        (lambda: S.one_cycle_momentum(10, pct_start=-0.5), "pct_start", ValueError),
        (lambda: S.one_cycle_momentum(10, three_phase=None), "three_phase", TypeError),
        (lambda: S.cyclic_momentum(-0.8), "base_momentum", ValueError),
        (lambda: S.cyclic_momentum(0.8, float("nan")), "max_momentum", ValueError),
        (lambda: S.cyclic_momentum(step_size_up=0), "step_size_up", ValueError),
        (lambda: S.cyclic_momentum(mode="up"), "mode", ValueError),
        (lambda: S.cyclic(0.01, 0.1, 0), "step_size_up", ValueError),
        (lambda: S.cyclic(0.01, 0.1, 5, -1), "step_size_down", ValueError),
        (lambda: S.cyclic(0.01, 0.1, mode="tri"), "mode", ValueError),
        (lambda: S.cyclic(0.01, 0.1, gamma=0.0), "gamma", ValueError),
        (lambda: S.cyclic(0.01, 0.1, gamma=1.5), "gamma", ValueError),
        (lambda: S.cyclic(0.01, 0.1, scale_fn=3), "scale_fn", TypeError),
        (lambda: S.cyclic(0.01, 0.1, scale_fn=abs, scale_mode="x"), "scale_mode", ValueError),
        (lambda: S.warmup("cos", 5), "schedule", TypeError),
        (lambda: S.warmup(0.1, -1), "steps", ValueError),
        (lambda: S.warmup(0.1, 5, 1.5), "start_factor", ValueError),
        (lambda: S.sequential([], []), "schedules", ValueError),
        (lambda: S.sequential([0.1, 0.2], []), "boundaries", ValueError),
        (lambda: S.sequential([0.1, 0.2, 0.3], [5, 5]), "boundaries", ValueError),
        (lambda: S.sequential([0.1, 0.2], [0]), r"boundaries\[0\]", ValueError),
        (lambda: S.sequential([0.1, None], [3]), r"schedules\[1\]", TypeError),
        (lambda: S.chain(0.1, "x"), r"factors\[0\]", TypeError),
        (lambda: S.scale_lr_for_batch(0.1, 0, 256), "base_batch", ValueError),
        (lambda: S.scale_lr_for_batch(0.1, 256, 512, rule="cubic"), "rule", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, mode="avg"), "mode", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, factor=1.0), "factor", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, patience=-1), "patience", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, threshold_mode="pct"), "threshold_mode", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, cooldown=-1), "cooldown", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, min_lr=-1), "min_lr", ValueError),
        (lambda: S.ReduceLROnPlateau(0.1, eps=-1), "eps", ValueError),
    ],
)
def test_invalid_arguments_name_the_argument(make, name, exc):
    with pytest.raises(exc, match=rf"^{name}: expected "):
        make()


def test_0d_arrays_and_integral_floats_count_as_their_value():
    """fastopt._validation's rules: np.array(0.1) is 0.1 and 2.0 is the int 2 (as for the
    optimizers and fastopt.train); only bool is never a number."""
    assert repr(S.step_decay(np.array(0.1), 2.0, np.float32(0.5))) == repr(
        S.step_decay(0.1, 2, 0.5))
    assert S.cosine(np.array(0.1), np.array(10))(5) == S.cosine(0.1, 10)(5)
    assert S.warmup(np.array(0.1), 3)(1) == S.warmup(0.1, 3)(1)
    with pytest.raises(TypeError, match="^T_max: expected an int, got True"):
        S.cosine(0.1, True)
    with pytest.raises(TypeError, match="^lr: expected a real number in .* or a callable"):
        S.scale_lr_for_batch("0.1", 256, 512)


# --------------------------------------------------------------------------- #
# Closed forms at boundary steps
# --------------------------------------------------------------------------- #

approx = lambda x: pytest.approx(x, rel=1e-14, abs=1e-300)  # noqa: E731


def test_constant():
    s = S.constant(0.1)
    assert s(0) == s(10**9) == 0.1
    s = S.constant(0.1, 0.5, 3)
    assert [s(k) for k in range(5)] == [0.05, 0.05, 0.05, 0.1, 0.1]


def test_step_decay_resnet_boundaries():
    s = S.step_decay(0.1, 30)
    assert s(0) == s(29) == 0.1
    assert s(30) == approx(0.01) and s(59) == approx(0.01)
    assert s(60) == approx(0.001) and s(90) == approx(1e-4)


def test_multistep_resnet_and_repeated_milestones():
    s = S.multistep(0.1, [90, 30, 60])  # sorted
    assert s.milestones == [30, 60, 90]
    assert s(0) == s(29) == 0.1
    assert s(30) == approx(0.01) and s(60) == approx(0.001)
    assert s(90) == approx(1e-4) and s(10_000) == approx(1e-4)
    s = S.multistep(1.0, [5, 5], 0.5)
    assert s(4) == 1.0 and s(5) == 0.25
    assert S.multistep(1.0, [0], 0.5)(0) == 0.5
    assert S.multistep(1.0, [])(100) == 1.0


def test_exponential():
    s = S.exponential(0.1, 0.9)
    assert s(0) == 0.1 and s(1) == approx(0.09) and s(10) == approx(0.1 * 0.9**10)
    assert S.exponential(1e-5, 1.1)(100) > 1e-1  # a range test ramps up
    assert S.exponential(1e-5, 1.1)(10**6) == math.inf  # not OverflowError
    assert S.step_decay(0.0, 1, 10.0)(10**6) == 0.0


def test_cosine_boundaries_and_past_T_max():
    base, eta, T = 0.1, 0.001, 20
    s = S.cosine(base, T, eta)
    assert s(0) == base
    assert s(T // 2) == approx((base + eta) / 2)
    assert s(T) == eta  # exactly: cos(pi) = -1
    # torch's closed form keeps oscillating with period 2 T_max
    assert s(T + 5) == approx(s(T - 5)) and s(2 * T) == approx(base) and s(3 * T) == approx(eta)
    c = S.cosine(base, T, eta, clamp=True)
    np.testing.assert_array_equal(c(np.arange(T + 1)), s(np.arange(T + 1)))
    assert c(T + 1) == c(2 * T) == c(10**6) == eta


def test_cosine_restarts_T_mult_1():
    base, eta = 0.1, 0.001
    s = S.cosine_restarts(base, 10, 1, eta)
    for restart in (0, 10, 20, 1000):
        assert s(restart) == base
        assert s(restart + 5) == approx((base + eta) / 2)
    assert s(9) == approx(eta + (base - eta) * (1 + math.cos(math.pi * 9 / 10)) / 2)


def test_cosine_restarts_T_mult_2_and_decay():
    base, eta = 0.1, 0.0
    s = S.cosine_restarts(base, 3, 2, eta)
    # cycles [0, 3), [3, 9), [9, 21), [21, 45)
    assert [s(k) for k in (0, 3, 9, 21, 45)] == [base] * 5
    assert s(2) == approx(base * (1 + math.cos(2 * math.pi / 3)) / 2)
    assert s(8) == approx(base * (1 + math.cos(5 * math.pi / 6)) / 2)
    assert s(15) == approx(base / 2)
    d = S.cosine_restarts(base, 3, 2, 0.001, decay=0.5)
    assert [d(k) for k in (0, 3, 9, 21)] == [base, base * 0.5, base * 0.25, base * 0.125]
    assert d(15) == approx(0.001 + (base * 0.25 - 0.001) / 2)


def test_linear():
    s = S.linear(0.1, 0.25, 1.0, 4)
    assert [s(k) for k in range(6)] == pytest.approx([0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1], rel=1e-14)
    assert S.linear(0.1, 1.0, 0.0, 10)(10) == 0.0  # decay to zero
    assert S.linear(1.0, 0.8391969646021726, 0.0, 199)(199) == 0.0  # torch's closed form: -1.1e-16
    assert S.linear(0.1, 0.0, 1.0, 10)(0) == 0.0  # warmup from zero (not allowed in torch)


def test_polynomial():
    s = S.polynomial(0.1, 10, 2.0)
    assert s(0) == 0.1 and s(5) == approx(0.025) and s(10) == 0.0 and s(11) == 0.0
    e = S.polynomial(0.1, 10, 1.0, end_lr=0.01)
    assert e(0) == 0.1 and e(5) == approx(0.055) and e(10) == e(100) == 0.01


def test_inverse_sqrt():
    w = 16
    s = S.inverse_sqrt(1.0, w)
    assert s(0) == approx(w**-1.5)  # step' = step + 1 = 1
    assert s(w - 1) == approx(w**-0.5)  # peak at the last warmup step
    assert s(w - 2) < s(w - 1) and s(w) < s(w - 1)
    assert s(4 * w - 1) == approx((4 * w) ** -0.5)
    vaswani = S.inverse_sqrt(1.0, 4000, d_model=512)
    assert vaswani(3999) == approx(512**-0.5 * 4000**-0.5)
    assert vaswani(0) == approx(512**-0.5 * 4000**-1.5)
    n = S.inverse_sqrt(0.1, w, normalize=True)
    assert n(w - 1) == approx(0.1) and n(4 * w - 1) == approx(0.05)
    assert S.inverse_sqrt(0.1, 0)(3) == approx(0.05)


def test_one_cycle_two_phase():
    s = S.one_cycle(1.0, 100, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    initial, low = 1.0 / 25.0, 1.0 / 25.0 / 1e4
    assert s(0) == approx(initial)  # end + (start - end) / 2 * 2 rounds, in torch too
    assert s(29) == 1.0  # end of warm phase: pct_start * total - 1
    assert s(99) == low  # last step
    assert s(100) == s(10**6) == low  # held after the cycle (torch raises there)
    mid = 29 + (99 - 29) / 2
    assert S.one_cycle(1.0, 100, anneal_strategy="linear")(int(mid)) == approx(1.0 + (low - 1.0) * 0.5)


def test_one_cycle_three_phase_and_degenerate_phases():
    s = S.one_cycle(1.0, 100, pct_start=0.25, three_phase=True)
    initial = 1.0 / 25.0
    assert s(0) == approx(initial) and s(24) == 1.0 and s(48) == approx(initial) and s(99) == initial / 1e4
    # p * T = 1: torch divides by zero at step 0; here the zero-length phase gives its end value
    z = S.one_cycle(1.0, 10, pct_start=0.1)
    assert z(0) == 1.0 and z(9) == approx(1.0 / 25e4)
    one = S.one_cycle(1.0, 1)
    assert one(0) == one(5) == approx(1.0 / 25e4)
    assert S.one_cycle(1.0, epochs=4, steps_per_epoch=25).total_steps == 100


def test_one_cycle_momentum_mirrors_the_lr_cycle():
    lr, m = S.one_cycle(1.0, 100), S.one_cycle_momentum(100)
    assert m(0) == 0.95 and m(29) == 0.85 and m(99) == 0.95 and m(100) == m(10**6) == 0.95
    t = np.arange(100)
    # the momentum falls exactly where the lr rises (same phases, same interpolation)
    assert np.array_equal(np.diff(lr(t)) > 0, np.diff(m(t)) < 0)
    three = S.one_cycle_momentum(100, 0.25, three_phase=True)
    assert three(24) == 0.85 and three(48) == 0.95 and three(70) == three(99) == 0.95
    assert S.one_cycle_momentum(epochs=4, steps_per_epoch=25).total_steps == 100


def test_cyclic_momentum_is_the_lr_cycle_upside_down():
    lr, m = S.cyclic(0.8, 0.9, 5, 3), S.cyclic_momentum(0.8, 0.9, 5, 3)
    t = np.arange(40)
    np.testing.assert_allclose(m(t), 0.9 + 0.8 - lr(t), rtol=0, atol=1e-15)
    assert m(0) == 0.9 and m(5) == 0.8


def test_cyclic_modes():
    lo, hi = 0.01, 0.1
    tri = S.cyclic(lo, hi, 5, 3)  # cycle of 8: up for 5, down for 3
    assert tri(0) == lo and tri(5) == approx(hi) and tri(8) == approx(lo) and tri(13) == approx(hi)
    assert tri(2) == approx(lo + (hi - lo) * 0.4) and tri(6) == approx(lo + (hi - lo) * 2 / 3)
    tri2 = S.cyclic(lo, hi, 5, 3, "triangular2")
    assert tri2(5) == approx(hi) and tri2(13) == approx(lo + (hi - lo) / 2) and tri2(21) == approx(lo + (hi - lo) / 4)
    exp = S.cyclic(lo, hi, 5, 3, "exp_range", gamma=0.9)
    assert exp(5) == approx(lo + (hi - lo) * 0.9**5) and exp(13) == approx(lo + (hi - lo) * 0.9**13)
    assert S.cyclic(lo, hi, 4)(4) == approx(hi) and S.cyclic(lo, hi, 4)(8) == approx(lo)  # down = up
    # torch's 1 / 2.0 ** (cycle - 1) overflows after 1024 cycles; fastopt's amplitude underflows to 0
    assert S.cyclic(lo, hi, 1, 1, "triangular2")(5000) == lo
    saw = S.cyclic(lo, hi, 4, 0)  # sawtooth
    assert saw(3) == approx(lo + (hi - lo) * 0.75) and saw(4) == lo


def test_warmup_multiplicative_and_shifted():
    inner = S.exponential(0.1, 0.9)
    w = S.warmup(inner, 4, 0.2)
    assert w(0) == approx(0.1 * 0.2)
    assert w(2) == approx(0.1 * 0.9**2 * 0.6)
    assert w(4) == inner(4) and w(10) == inner(10)
    sh = S.warmup(inner, 4, 0.2, shift=True)
    assert sh(0) == approx(0.02) and sh(3) == approx(0.1 * 0.8)
    assert sh(4) == inner(0) and sh(10) == inner(6)
    assert S.warmup(0.1, 4)(0) == 0.0 and S.warmup(0.1, 4)(2) == approx(0.05)
    assert S.warmup(inner, 0)(0) == inner(0)
    assert S.warmup(lambda t: 1.0 / (t + 1), 2, 0.5)(1) == approx(0.75 / 2)


def test_sequential():
    a, b = S.linear(0.1, 0.1, 1.0, 5), S.cosine(0.1, 20)
    s = S.sequential([a, b, 0.001], [5, 25])
    assert s(0) == a(0) and s(4) == a(4)
    assert s(5) == b(0) == 0.1 and s(15) == b(10) and s(24) == b(19)
    assert s(25) == s(1000) == 0.001
    assert S.sequential([0.3], [])(7) == 0.3


def test_chain_and_scale_lr_for_batch():
    c = S.chain(0.1, S.step_decay(1.0, 4, 0.5), 0.5)
    assert c(0) == 0.05 and c(4) == 0.025
    assert S.chain(S.cosine(0.1, 10))(3) == S.cosine(0.1, 10)(3)
    assert S.scale_lr_for_batch(0.1, 256, 1024) == approx(0.4)
    assert S.scale_lr_for_batch(0.1, 256, 1024, "sqrt") == approx(0.2)
    assert S.scale_lr_for_batch(0.1, 256, 64) == approx(0.025)
    sch = S.scale_lr_for_batch(S.exponential(0.1, 0.9), 256, 512)
    assert isinstance(sch, S.Schedule) and sch(3) == approx(0.2 * 0.9**3)


def test_schedules_are_pure():
    s = S.cosine_restarts(0.1, 3, 2)
    first = s(np.arange(50))
    for k in (40, 3, 0, 17, 3):
        s(k)
    np.testing.assert_array_equal(s(np.arange(50)), first)


def test_optimizer_protocol_per_group():
    """What an optimizer does: group_lr = schedule(step_count), each group its own schedule."""
    groups = [{"lr": S.cosine(0.1, 10)}, {"lr": 0.01}, {"lr": S.ReduceLROnPlateau(0.2, patience=0)}]
    seen = []
    for step_count in range(3):
        seen.append([g["lr"](step_count) if callable(g["lr"]) else g["lr"] for g in groups])
    assert seen[2] == [S.cosine(0.1, 10)(2), 0.01, 0.2]
    assert all(isinstance(g["lr"], S.Schedule) for g in (groups[0], groups[2]))


# --------------------------------------------------------------------------- #
# ReduceLROnPlateau
# --------------------------------------------------------------------------- #


def test_plateau_basic_patience_cooldown_min_lr():
    p = S.ReduceLROnPlateau(1.0, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    assert p(0) == p(123) == 1.0 and p(np.arange(3)).tolist() == [1.0] * 3
    lrs = [p.update(m) for m in [5, 4, 4, 4, 4, 4, 4, 4, 4, 4]]
    # best, better, bad 1, bad 2 > patience -> x0.5 (+ cooldown 1), cooldown, bad 1, bad 2 -> x0.5,
    # cooldown, bad 1, bad 2 -> max(0.125, min_lr)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]
    assert p(0) == 0.2 and p.num_updates == 10


def test_plateau_state_dict_and_pickle_roundtrip():
    p = S.ReduceLROnPlateau(1.0, mode="max", factor=0.5, patience=2, threshold=0.1, threshold_mode="abs")
    for m in [0.1, 0.5, 0.55, 0.5, 0.5]:
        p.update(m)
    sd = p.state_dict()
    assert sd["best"] == 0.5 and sd["num_bad_epochs"] == 3 - 3 and sd["lr"] == 0.5
    q = S.ReduceLROnPlateau(3.0)
    q.load_state_dict(sd)
    r = pickle.loads(pickle.dumps(p))
    for m in [0.6, 0.61, 0.62, 0.63, 0.7]:
        assert p.update(m) == q.update(m) == r.update(m)
    assert p.state_dict() == q.state_dict() == r.state_dict()
    with pytest.raises(ValueError, match=r"^state_dict: expected the keys \['lr'\], which are missing"):
        q.load_state_dict({k: v for k, v in sd.items() if k != "lr"})
    with pytest.raises(ValueError, match="patience"):
        q.load_state_dict({**sd, "patience": -2})
    assert q.state_dict()["patience"] == 2  # unchanged after the failed load
    with pytest.raises(TypeError, match="^metric: expected a real number, got 'low'"):
        q.update("low")
    with pytest.raises(TypeError, match="^metric: expected a real number, got True"):
        q.update(True)
    q.reset()
    assert q.lr == q.base_lr == 1.0 and q.num_updates == 0


# --------------------------------------------------------------------------- #
# Properties (hypothesis)
# --------------------------------------------------------------------------- #

steps = st.integers(0, 10_000)


def within(v, a, b):
    """min(a, b) <= v <= max(a, b) up to rounding, which is relative to the larger bound"""
    lo, hi = min(a, b), max(a, b)
    tol = 1e-15 * abs(hi)
    return lo - tol <= v <= hi + tol
lrs = st.floats(0.0, 10.0, allow_nan=False)


@HSET
@given(base=lrs, eta=lrs, T=st.integers(1, 500), t=steps, clamp=st.booleans())
def test_prop_cosine_within_bounds(base, eta, T, t, clamp):
    assert within(S.cosine(base, T, eta, clamp=clamp)(t), base, eta)


@HSET
@given(base=lrs, frac=st.floats(0, 1), T0=st.integers(1, 50), Tm=st.integers(1, 3),
       decay=st.floats(0.01, 1.0), t=steps)
def test_prop_cosine_restarts_within_bounds_and_restart_peaks(base, frac, T0, Tm, decay, t):
    eta = base * frac * 0.01
    s = S.cosine_restarts(base, T0, Tm, eta, decay=decay)
    i, t_cur, t_i = s._cycle(t)
    peak = base * decay**i  # a decayed peak may fall below eta_min: the cosine then runs upward
    assert within(s(t), eta, peak)
    assert 0 <= t_cur < t_i == T0 * Tm**i
    # the cycle's first step is its peak (eta + (peak - eta) * 2 / 2: rounding relative to max(eta, peak))
    assert abs(s(t - t_cur) - peak) <= 4e-16 * max(eta, peak)


@HSET
@given(max_lr=st.floats(1e-4, 10.0), T=st.integers(1, 400), p=st.floats(0.0, 1.0),
       strategy=st.sampled_from(["cos", "linear"]), three=st.booleans(), t=steps)
def test_prop_one_cycle_within_bounds(max_lr, T, p, strategy, three, t):
    if three:
        p = p / 2  # the paper's three phases are symmetric about p; p > 0.5 overlaps them
    s = S.one_cycle(max_lr, T, p, strategy, three_phase=three)
    low = max_lr / 25.0 / 1e4
    assert within(s(t), low, max_lr)


@HSET
@given(lo=lrs, hi=lrs, up=st.integers(1, 50), down=st.integers(0, 50),
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]), gamma=st.floats(0.5, 1.0), t=steps)
def test_prop_cyclic_within_bounds(lo, hi, up, down, mode, gamma, t):
    assert within(S.cyclic(lo, hi, up, down, mode, gamma)(t), lo, hi)


@HSET
@given(base=lrs, gamma=st.floats(0.01, 1.0), size=st.integers(1, 100),
       ms=st.lists(st.integers(0, 500), max_size=5), t=st.integers(0, 1000))
def test_prop_decays_are_monotone(base, gamma, size, ms, t):
    for s in (S.step_decay(base, size, gamma), S.multistep(base, ms, gamma), S.exponential(base, gamma)):
        assert s(t + 1) <= s(t) <= base


@HSET
@given(base=lrs, s0=st.floats(0, 1), s1=st.floats(0, 1), T=st.integers(1, 200), power=st.floats(0.01, 4), t=steps)
def test_prop_linear_polynomial_between_ends(base, s0, s1, T, power, t):
    assert within(S.linear(base, s0, s1, T)(t), base * s0, base * s1)
    end = base * s1
    p = S.polynomial(base, T, power, end_lr=end)
    assert within(p(t), base, end)
    assert p(T + t) == end


@HSET
@given(bounds=st.lists(st.integers(1, 300), min_size=1, max_size=4, unique=True), t=st.integers(0, 400))
def test_prop_sequential_picks_the_right_piece(bounds, t):
    bounds = sorted(bounds)
    pieces = [S.exponential(0.1 * (i + 1), 0.99) for i in range(len(bounds) + 1)]
    i = sum(b <= t for b in bounds)
    start = bounds[i - 1] if i else 0
    assert S.sequential(pieces, bounds)(t) == pieces[i](t - start)


# --------------------------------------------------------------------------- #
# Against torch: torch 2.13's values recorded in tests/data/torch_schedules.npz
# (tools/record_torch_reference.py) are checked in every run; with torch installed the
# same comparisons also run live. The cases are in torch_reference.py.
# --------------------------------------------------------------------------- #

EXACT, RECURSIVE, PLATEAU_CASES = R.EXACT, R.RECURSIVE, R.PLATEAU_CASES
PLATEAU_IDS = [R.plateau_id(k) for k in PLATEAU_CASES]


@pytest.fixture(scope="module")
def recorded():
    return R.load(R.SCHEDULES_FILE)


@pytest.fixture(scope="module")
def torch_mods():
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler

    return torch, lr_scheduler


def _check_exact(ours, n, expected):
    np.testing.assert_array_equal(ours(np.arange(n + 1)), expected)


def _check_recursive(name, ours, n, expected, closed):
    np.testing.assert_allclose(ours(np.arange(n + 1)), expected, rtol=1e-12, atol=0)
    if closed is not None:  # and bit-identical to torch's own closed form, where it has one
        k = np.arange(n + 1)
        if name.startswith("LinearLR"):  # from total_iters on fastopt gives base*end_factor exactly
            k = k[k < ours.total_iters]
        np.testing.assert_array_equal(ours(k), closed[k])


def _check_plateau(kw, expected):
    ours = S.ReduceLROnPlateau(0.1, **kw)
    for t, m in enumerate(R.plateau_metrics(kw)):
        assert ours.update(m) == expected["lr"][t] == ours(17)
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == pytest.approx(
            (expected["best"][t], expected["bad"][t], expected["cooldown"][t]), nan_ok=True)
    assert len(set(expected["lr"])) >= 3  # the sequence exercises several reductions


@pytest.mark.parametrize("name, make, ours, n", EXACT, ids=[e[0] for e in EXACT])
def test_recorded_torch_closed_form_schedulers_bit_exact(recorded, name, make, ours, n):
    _check_exact(ours, n, recorded[f"lr|{name}"])


@pytest.mark.parametrize("name, make, ours, n", EXACT, ids=[e[0] for e in EXACT])
def test_torch_closed_form_schedulers_bit_exact(torch_mods, recorded, name, make, ours, n):
    expected, _ = R.torch_lrs(make, n)
    _check_exact(ours, n, expected)
    np.testing.assert_array_equal(expected, recorded[f"lr|{name}"])  # the recording is current


@pytest.mark.parametrize("name, make, ours, n", RECURSIVE, ids=[r[0] for r in RECURSIVE])
def test_recorded_torch_recursive_schedulers(recorded, name, make, ours, n):
    closed = recorded[f"closed|{name}"] if f"closed|{name}" in recorded.files else None
    _check_recursive(name, ours, n, recorded[f"lr|{name}"], closed)


@pytest.mark.parametrize("name, make, ours, n", RECURSIVE, ids=[r[0] for r in RECURSIVE])
def test_torch_recursive_schedulers(torch_mods, recorded, name, make, ours, n):
    expected, sched = R.torch_lrs(make, n)
    closed = R.torch_closed_form(sched, n)
    _check_recursive(name, ours, n, expected, closed)
    np.testing.assert_array_equal(expected, recorded[f"lr|{name}"])
    assert (closed is None) == (f"closed|{name}" not in recorded.files)


@pytest.mark.parametrize("name, make, ours, n, optimizer", R.MOMENTUM,
                         ids=[m[0] for m in R.MOMENTUM])
def test_recorded_torch_momentum_cycling_bit_exact(recorded, name, make, ours, n, optimizer):
    _check_exact(ours, n, recorded[f"momentum|{name}"])


@pytest.mark.parametrize("name, make, ours, n, optimizer", R.MOMENTUM,
                         ids=[m[0] for m in R.MOMENTUM])
def test_torch_momentum_cycling_bit_exact(torch_mods, recorded, name, make, ours, n, optimizer):
    expected = R.torch_momenta(make, n, optimizer)
    _check_exact(ours, n, expected)
    np.testing.assert_array_equal(expected, recorded[f"momentum|{name}"])


def test_every_schedule_case_is_recorded(recorded):
    names = {f"lr|{c[0]}" for c in EXACT + RECURSIVE}
    names |= {f"momentum|{c[0]}" for c in R.MOMENTUM}
    names |= {f"plateau|{i}|{f}" for i in PLATEAU_IDS for f in ("lr", "best", "bad", "cooldown")}
    stored = {f for f in recorded.files if not f.startswith("closed|")} - {"torch_version"}
    assert names == stored  # regenerate with tools/record_torch_reference.py after editing


def test_torch_one_cycle_after_the_end(torch_mods):
    """Deviation: torch extrapolates the last phase at step == total_steps, then raises."""
    torch, L = torch_mods
    expected, sch = R.torch_lrs(lambda L, o: L.OneCycleLR(o, 0.5, total_steps=10, anneal_strategy="linear",
                                                         cycle_momentum=False), 10)
    ours = S.one_cycle(0.5, 10, anneal_strategy="linear")
    np.testing.assert_array_equal(ours(np.arange(10)), expected[:10])
    assert expected[10] < 0  # torch's extrapolated value; fastopt holds the final lr instead
    assert ours(10) == ours(11) == ours(9) == expected[9]
    with pytest.raises(ValueError):
        sch.step()


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=PLATEAU_IDS)
def test_recorded_torch_reduce_lr_on_plateau(recorded, kw):
    pid = R.plateau_id(kw)
    _check_plateau(kw, {f: recorded[f"plateau|{pid}|{f}"] for f in ("lr", "best", "bad", "cooldown")})


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=PLATEAU_IDS)
def test_torch_reduce_lr_on_plateau(torch_mods, recorded, kw):
    live = R.torch_plateau(kw)
    _check_plateau(kw, live)
    for field, values in live.items():
        np.testing.assert_array_equal(values, recorded[f"plateau|{R.plateau_id(kw)}|{field}"])


@settings(max_examples=40, deadline=None)
@given(metrics=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=40),
       mode=st.sampled_from(["min", "max"]), tmode=st.sampled_from(["rel", "abs"]),
       patience=st.integers(0, 3), cooldown=st.integers(0, 2), threshold=st.sampled_from([0.0, 1e-4, 0.1]))
def test_prop_plateau_matches_torch(torch_mods, metrics, mode, tmode, patience, cooldown, threshold):
    torch, L = torch_mods
    kw = dict(mode=mode, threshold_mode=tmode, patience=patience, cooldown=cooldown, threshold=threshold,
              factor=0.5, min_lr=1e-3)
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    ref = L.ReduceLROnPlateau(opt, **kw)
    ours = S.ReduceLROnPlateau(0.1, **kw)
    for m in metrics:
        ref.step(m)
        assert ours.update(m) == ref.get_last_lr()[0]
