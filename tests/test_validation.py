"""fastopt._validation: the one set of argument rules, and the boundary that follows them."""
import math

import numpy as np
import pytest

import fastopt as fo
from fastopt import _validation as V

# -- the rules -------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (0.5, 0.5), (1, 1.0), (np.float32(0.25), 0.25), (np.int64(3), 3.0),
    (np.array(0.9), 0.9), (np.array(2, dtype=np.int8), 2.0),
])
def test_real_accepts_numbers_and_0d_arrays(value, expected):
    out = V.check_real(value, "x")
    assert type(out) is float and out == expected


@pytest.mark.parametrize("value", [True, np.bool_(False), "0.5", None, [0.5], np.array([0.5]),
                                   complex(1, 0), np.array(True)])
def test_real_refuses_other_kinds_with_typeerror(value):
    with pytest.raises(TypeError, match=r"^x: expected a real number, got "):
        V.check_real(value, "x")


def test_real_nan_inf_and_huge_ints():
    with pytest.raises(ValueError, match=r"^x: expected a real number, got nan"):
        V.check_real(math.nan, "x")
    with pytest.raises(ValueError, match=r"^x: expected a finite number, got inf"):
        V.check_real(math.inf, "x")
    with pytest.raises(ValueError, match=r"^x: expected a finite number"):
        V.check_real(10**400, "x")
    assert V.check_real(10**400, "x", allow_inf=True) == math.inf
    assert V.check_real(-(10**400), "x", allow_inf=True) == -math.inf
    assert math.isnan(V.check_real(math.nan, "x", allow_nan=True))


@pytest.mark.parametrize("closed, accepts_low, accepts_high", [
    ("both", True, True), ("left", True, False), ("right", False, True),
    ("neither", False, False)])
def test_real_interval_ends(closed, accepts_low, accepts_high):
    for value, ok in ((0.0, accepts_low), (1.0, accepts_high), (0.5, True)):
        if ok:
            assert V.check_real(value, "p", 0, 1, closed=closed) == value
        else:
            with pytest.raises(ValueError, match=r"^p: expected a value in [\[(]0, 1[\])], "):
                V.check_real(value, "p", 0, 1, closed=closed)


def test_real_message_shows_interval_and_value():
    with pytest.raises(ValueError) as info:
        V.check_real(-0.5, "lr", 0.0)
    assert str(info.value) == "lr: expected a value in [0, inf), got -0.5"


@pytest.mark.parametrize("value, expected", [
    (3, 3), (np.int32(3), 3), (3.0, 3), (1e4, 10_000), (np.float64(7.0), 7), (np.array(5), 5),
    (2**70, 2**70)])
def test_int_accepts_integral_values(value, expected):
    out = V.check_int(value, "n")
    assert type(out) is int and out == expected


@pytest.mark.parametrize("value", [2.5, True, "3", None, math.inf, math.nan, np.array([3])])
def test_int_refuses_non_integral_values(value):
    with pytest.raises(TypeError, match=r"^n: expected an int, got "):
        V.check_int(value, "n")


def test_int_range():
    assert V.check_int(0, "n", 0) == 0
    with pytest.raises(ValueError, match=r"^n: expected an int in \[1, inf\), got 0"):
        V.check_int(0, "n", 1)
    with pytest.raises(ValueError, match=r"^seed: expected an int in \[0, 18446744073709551616\)"):
        V.check_uint64(2**64, "seed")
    assert V.check_uint64(2**64 - 1, "seed") == 2**64 - 1


def test_bool():
    assert V.check_bool(np.bool_(True), "flag") is True
    assert V.check_bool(np.array(False), "flag") is False
    for bad in (0, 1, "True", None):
        with pytest.raises(TypeError, match=r"^flag: expected True or False, got "):
            V.check_bool(bad, "flag")


def test_choice():
    assert V.check_choice("min", "mode", ("min", "max")) == "min"
    assert V.check_choice(np.str_("max"), "mode", ("min", "max")) == "max"
    with pytest.raises(ValueError, match=r"^mode: expected one of 'min', 'max', got 'mean'"):
        V.check_choice("mean", "mode", ("min", "max"))
    with pytest.raises(TypeError, match=r"^mode: expected one of 'min', 'max', got 0"):
        V.check_choice(0, "mode", ("min", "max"))


def test_seed():
    g = np.random.default_rng(0)
    assert V.check_seed(g) is g and V.check_seed(None) is None and V.check_seed(5) == 5
    with pytest.raises(TypeError, match=r"^seed: expected None, a numpy Generator"):
        V.check_seed("5")
    with pytest.raises(ValueError, match=r"^seed: expected an int in"):
        V.check_seed(-1)


def test_arrays():
    a = np.zeros(3)
    assert V.check_array_list(a, "params")[0] is a
    assert V.check_array_list((a, a), "params") == [a, a]
    with pytest.raises(TypeError, match=r"^params\[1\]: expected a numpy array, got \[1\]"):
        V.check_array_list([a, [1]], "params")
    with pytest.raises(TypeError, match=r"^x: expected a floating dtype"):
        V.check_array(np.zeros(3, int), "x")
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"^x: expected a writeable array"):
        V.check_array(ro, "x", writeable=True)
    with pytest.raises(ValueError, match=r"^grads\[0\]: expected shape \(3,\), got \(2,\)"):
        V.check_same_structure([np.zeros(2)], [a], "grads")


def test_float_dtype():
    assert V.check_float_dtype("float32", "dtype") == np.float32
    assert V.check_float_dtype(np.float64, "dtype", (np.float32, np.float64)) == np.float64
    with pytest.raises(TypeError, match="^dtype: expected a floating dtype, got int64"):
        V.check_float_dtype(np.int64, "dtype")
    with pytest.raises(TypeError, match="^dtype: expected a floating dtype, got 'nope'"):
        V.check_float_dtype("nope", "dtype")
    with pytest.raises(TypeError, match="^dtype: expected one of the dtypes float32, float64, "
                                        "got float16"):
        V.check_float_dtype(np.float16, "dtype", (np.float32, np.float64))


def test_long_reprs_are_summarised():
    with pytest.raises(TypeError) as info:
        V.check_real("x" * 200, "lr")
    assert str(info.value) == "lr: expected a real number, got a str"


# -- constraints as data ---------------------------------------------------------------

CONSTRAINTS = [
    V.Real(0.0), V.Real(0.0, 1.0, closed="left"), V.Real(0.0, closed="neither"),
    V.Real(allow_inf=True), V.Int(1), V.Int(0, 10), V.Bool(), V.Choice("a", "b"), V.Seed(),
    V.AnyOf(V.Real(0.0), V.CallableConstraint()), V.optional(V.Int(0)),
]


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=repr)
def test_constraint_refuses_its_bad_values_and_accepts_its_good_ones(constraint):
    assert constraint.bad_values(), "a constraint must name values it refuses"
    for value in constraint.bad_values():
        with pytest.raises((TypeError, ValueError), match=r"^arg: expected "):
            constraint.check(value, "arg")
    for value in constraint.good_values():
        constraint.check(value, "arg")


def test_anyof_reports_the_range_it_missed():
    lr = V.AnyOf(V.Real(0.0), V.CallableConstraint())
    with pytest.raises(ValueError, match=r"^lr: expected a value in \[0, inf\), got -1"):
        lr.check(-1, "lr")
    with pytest.raises(TypeError, match=r"^lr: expected a real number in .* or a callable"):
        lr.check("fast", "lr")
    assert lr.check(abs, "lr") is abs


# -- the Cython boundary follows the same rules ----------------------------------------

@pytest.mark.parametrize("value", [True, "0.1", None, np.nan, -0.1, np.inf, 10**400,
                                   np.array([0.1])])
def test_boundary_refuses_what_validation_refuses_with_the_same_message(value):
    with pytest.raises((TypeError, ValueError)) as expected:
        V.check_real(value, "lr", 0.0)
    p, g = np.zeros(4), np.ones(4)
    with pytest.raises(type(expected.value)) as got:
        fo.kernels.sgd_step(p, g, lr=value)
    assert str(got.value) == str(expected.value)
    assert not p.any()


@pytest.mark.parametrize("value", [np.array(0.5), np.float32(0.5), 1])
def test_boundary_accepts_what_validation_accepts(value):
    p, g = np.zeros(4), np.ones(4)
    fo.kernels.sgd_step(p, g, lr=value)
    np.testing.assert_array_equal(p, -float(value) * g)
