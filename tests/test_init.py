"""Tests for fastopt.init (He / Xavier initialisation and fan computation)."""

import doctest
import math

import numpy as np
import pytest

import fastopt.init as finit
from fastopt.init import fan_in_fan_out, he, xavier


# --------------------------------------------------------------------------- fans
@pytest.mark.parametrize(
    "shape, expected",
    [
        ((784, 100), (784, 100)),  # numpy dense (in, out)
        ((3, 7), (3, 7)),
        ((16, 3, 5, 5), (3 * 25, 16 * 25)),  # conv2d (out, in, kh, kw)
        ((8, 4, 3), (4 * 3, 8 * 3)),  # conv1d
        ((2, 5, 3, 3, 3), (5 * 27, 2 * 27)),  # conv3d
    ],
)
def test_fan_in_fan_out_default(shape, expected):
    assert fan_in_fan_out(shape) == expected


def test_fan_dense_out_in_is_transpose_of_in_out():
    assert fan_in_fan_out((100, 784), dense="out_in") == (784, 100)
    # conv shapes ignore the dense layout
    assert fan_in_fan_out((16, 3, 5, 5), dense="out_in") == fan_in_fan_out((16, 3, 5, 5))


def test_fan_matches_torch():
    torch = pytest.importorskip("torch")
    for shape in [(100, 784), (16, 3, 5, 5), (8, 4, 3), (2, 5, 3, 3, 3), (1, 1)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        got = fan_in_fan_out(shape, dense="out_in") if len(shape) == 2 else fan_in_fan_out(shape)
        assert got == tuple(expected)


@pytest.mark.parametrize("shape", [(5,), (), 5])
def test_fan_requires_two_dims(shape):
    with pytest.raises(ValueError, match="^shape: expected at least 2 dimensions"):
        fan_in_fan_out(shape)


def test_fan_bad_arguments():
    with pytest.raises(ValueError, match="^dense: expected one of 'in_out', 'out_in', got 'rows'"):
        fan_in_fan_out((3, 4), dense="rows")
    with pytest.raises(TypeError, match="^shape: expected an int or a tuple of ints, got '34'"):
        fan_in_fan_out("34")
    with pytest.raises(TypeError, match=r"^shape\[0\]: expected an int, got 3.5"):
        fan_in_fan_out((3.5, 4))
    with pytest.raises(ValueError, match=r"^shape\[0\]: expected an int in \[0, inf\), got -3"):
        fan_in_fan_out((-3, 4))
    # fastopt._validation's rules: an integral float is an int, a 0-d array its scalar
    assert fan_in_fan_out((3.0, np.array(4))) == (3, 4)
    assert he((3.0, 4), rng=0).shape == (3, 4)


# --------------------------------------------------------------------------- statistics
SHAPE = (1000, 400)  # 4e5 samples: the std estimate is good to ~0.1 %


def _check_std(W, target, rel=0.02):
    assert abs(W.mean()) < 0.01 * target + 5 * target / math.sqrt(W.size)
    assert W.std() == pytest.approx(target, rel=rel)


def test_he_normal_fan_in_std():
    W = he(SHAPE, rng=1)
    _check_std(W, math.sqrt(2 / SHAPE[0]))
    # normal: about 31.7 % of samples beyond one std, not a uniform's 42.3 %
    frac = np.mean(np.abs(W) > math.sqrt(2 / SHAPE[0]))
    assert frac == pytest.approx(2 * (1 - 0.8413447), abs=0.01)


def test_he_fan_out_std():
    W = he(SHAPE, rng=2, mode="fan_out")
    _check_std(W, math.sqrt(2 / SHAPE[1]))


def test_he_uniform_bounds_and_std():
    W = he(SHAPE, rng=3, distribution="uniform")
    limit = math.sqrt(6 / SHAPE[0])
    assert np.all(np.abs(W) <= limit)
    assert np.abs(W).max() > 0.99 * limit  # fills the interval
    _check_std(W, math.sqrt(2 / SHAPE[0]))


def test_he_conv_uses_receptive_field():
    shape = (64, 32, 3, 3)  # fan_in = 288
    W = he(shape, rng=4)
    _check_std(W, math.sqrt(2 / (32 * 9)))


def test_xavier_uniform_bounds_and_std():
    W = xavier(SHAPE, rng=5)
    limit = math.sqrt(6 / (SHAPE[0] + SHAPE[1]))
    assert np.all(np.abs(W) <= limit)
    assert np.abs(W).max() > 0.99 * limit
    _check_std(W, limit / math.sqrt(3))


def test_xavier_normal_std_and_gain():
    W = xavier(SHAPE, rng=6, distribution="normal", gain=5 / 3)
    _check_std(W, 5 / 3 * math.sqrt(2 / (SHAPE[0] + SHAPE[1])))


def test_he_std_matches_torch_kaiming():
    torch = pytest.importorskip("torch")
    t = torch.empty(400, 1000, dtype=torch.float64)  # nn.Linear layout (out, in)
    torch.manual_seed(0)
    torch.nn.init.kaiming_normal_(t, nonlinearity="relu")
    W = he((400, 1000), rng=0, dense="out_in")
    assert W.std() == pytest.approx(float(t.std()), rel=0.02)
    torch.nn.init.xavier_uniform_(t)
    W = xavier((400, 1000), rng=0, dense="out_in")
    assert np.abs(W).max() <= float(t.abs().max()) * 1.001
    assert W.std() == pytest.approx(float(t.std()), rel=0.02)


# --------------------------------------------------------------------------- rng / dtype
@pytest.mark.parametrize("fn", [he, xavier])
def test_reproducible_by_seed(fn):
    a = fn((30, 20), rng=123)
    b = fn((30, 20), rng=123)
    c = fn((30, 20), rng=124)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("fn", [he, xavier])
def test_generator_is_used_and_advanced(fn):
    g = np.random.default_rng(7)
    a = fn((10, 10), rng=g)
    b = fn((10, 10), rng=g)
    assert not np.array_equal(a, b)  # state advanced
    g2 = np.random.default_rng(7)
    np.testing.assert_array_equal(fn((10, 10), rng=g2), a)
    # an int seed is the same as default_rng(seed)
    np.testing.assert_array_equal(fn((10, 10), rng=7), a)


def test_rng_none_gives_fresh_draws():
    assert not np.array_equal(he((50, 50)), he((50, 50)))


@pytest.mark.parametrize("fn", [he, xavier])
def test_dtype_float32_is_rounded_float64(fn):
    w32 = fn((20, 30), rng=9, dtype=np.float32)
    w64 = fn((20, 30), rng=9)
    assert w32.dtype == np.float32 and w64.dtype == np.float64
    np.testing.assert_array_equal(w32, w64.astype(np.float32))


@pytest.mark.parametrize("fn", [he, xavier])
def test_bad_arguments(fn):
    with pytest.raises(TypeError, match="^dtype: expected a floating dtype, got int32"):
        fn((3, 4), dtype=np.int32)
    with pytest.raises(TypeError, match="^rng: expected an int, got 1.5"):
        fn((3, 4), rng=1.5)
    with pytest.raises(TypeError, match="^rng: expected None, a numpy Generator or an int"):
        fn((3, 4), rng=True)
    with pytest.raises(TypeError, match="^rng: expected None, a numpy Generator or an int"):
        fn((3, 4), rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"^rng: expected an int in \[0, 18446744073709551616\)"):
        fn((3, 4), rng=-1)
    with pytest.raises(ValueError, match="^distribution: expected one of 'normal', 'uniform'"):
        fn((3, 4), rng=0, distribution="cauchy")
    with pytest.raises(ValueError, match="^shape: expected at least 2 dimensions"):
        fn((4,), rng=0)


def test_bad_arguments_specific():
    with pytest.raises(ValueError, match="^mode: expected one of 'fan_in', 'fan_out'"):
        he((3, 4), mode="fan_avg")
    with pytest.raises(ValueError, match=r"^shape: expected a layer with fan_in > 0, got \(0, 4\)"):
        he((0, 4))
    with pytest.raises(ValueError, match=r"^gain: expected a value in \[0, inf\), got -1.0"):
        xavier((3, 4), gain=-1.0)
    with pytest.raises(ValueError, match="^gain: expected a finite number"):
        xavier((3, 4), gain=np.inf)
    with pytest.raises(TypeError, match="^gain: expected a real number, got '1'"):
        xavier((3, 4), gain="1")
    # seeds are the 64-bit ints every fastopt module takes (the Philox seeds of dropout)
    with pytest.raises(ValueError, match="^rng: expected an int in"):
        he((3, 4), rng=2**64)


def test_invalid_distribution_does_not_advance_generator():
    g = np.random.default_rng(0)
    with pytest.raises(ValueError):
        he((3, 4), rng=g, distribution="cauchy")
    np.testing.assert_array_equal(he((3, 4), rng=g), he((3, 4), rng=0))


# --------------------------------------------------------------------------- the lecture's picture
def _relu_stack_stds(init, depth=20, width=256, n=500, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, width))
    stds = []
    for _ in range(depth):
        h = np.maximum(h @ init((width, width), rng), 0.0)
        stds.append(h.std())
    return np.array(stds)


def test_deep_relu_stack_he_keeps_activation_scale():
    stds = _relu_stack_stds(he)
    # He init keeps E[h^2] constant; allow a generous band over 20 layers
    assert 0.5 < stds[-1] / stds[0] < 2.0
    assert np.all(stds > 0.3 * stds[0]) and np.all(stds < 3 * stds[0])


def test_deep_relu_stack_tiny_init_collapses():
    stds = _relu_stack_stds(lambda shape, rng: 0.01 * rng.standard_normal(shape))
    # each layer multiplies the scale by about 0.01 * sqrt(256 / 2) ~ 0.11
    assert stds[-1] / stds[0] < 1e-6
    assert np.all(np.diff(stds) < 0)


def test_deep_relu_stack_xavier_shrinks_with_relu():
    # Xavier ignores the ReLU's halving: each layer loses a factor ~ sqrt(2)
    stds = _relu_stack_stds(lambda shape, rng: xavier(shape, rng, distribution="normal"))
    assert stds[-1] / stds[0] < 0.01


def test_docstring_examples():
    result = doctest.testmod(finit, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
