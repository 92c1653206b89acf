"""The dropout kernels (csrc/dropout.c) through fastopt._kernels: exact formula, packed
bits, backward from bits or regenerated, thread invariance and the boundary's checks."""

import numpy as np
import pytest

import fastopt
from fastopt._kernels import dropout_backward, dropout_forward, philox_stream
from fastopt_testing.arrays import snapshot


def threshold(p):
    return min(int(p * 2.0**32), 2**32 - 1)


def reference(x, p, seed, stream):
    """numpy transcription: keep_i = u_i >= floor(p * 2^32); y = x * (keep ? 1/(1-p) : 0)."""
    keep = (philox_stream(x.size, seed, stream) >= threshold(p)).reshape(x.shape)
    t = x.dtype.type
    return x * np.where(keep, t(1.0 / (1.0 - p)), t(0)), keep


def packed(keep):
    flat = np.packbits(keep.ravel(), bitorder="little")
    flat = np.concatenate([flat, np.zeros(-flat.size % 8, np.uint8)])
    return flat.view("<u8").astype(np.uint64)


@pytest.mark.parametrize("shape", [(1,), (63,), (64,), (65,), (7, 300), (3, 5, 257)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_forward_matches_reference_exactly(shape, p, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    y, bits = dropout_forward(x, p, 42, 3)
    expect, keep = reference(x, p, 42, 3)
    assert y.dtype == dtype and y.shape == shape
    assert y.tobytes() == expect.tobytes()
    np.testing.assert_array_equal(bits, packed(keep))


@pytest.mark.parametrize("p", [0.25, 0.75])
def test_backward_from_bits_equals_regenerated(p, dtype, rng):
    dy = rng.standard_normal((33, 71)).astype(dtype)
    _, bits = dropout_forward(np.zeros_like(dy), p, 7, 11)
    from_bits = dropout_backward(dy, dy.shape, p, 7, 11, bits)
    regenerated = dropout_backward(dy, dy.shape, p, 7, 11, None)
    expect, _ = reference(dy, p, 7, 11)
    assert from_bits.tobytes() == expect.tobytes() == regenerated.tobytes()


def test_one_and_two_threads_bitwise_identical(dtype, rng):
    n = 1_000_037  # above FO_SERIAL_BELOW, not a multiple of the tile
    x = rng.standard_normal(n).astype(dtype)
    results = []
    for threads in (1, 2):
        with fastopt.threads(threads):
            y, bits = dropout_forward(x, 0.3, 5, 1)
            dx = dropout_backward(x, x.shape, 0.3, 5, 1, bits)
            dx2 = dropout_backward(x, x.shape, 0.3, 5, 1, None)
        results.append(y.tobytes() + bits.tobytes() + dx.tobytes() + dx2.tobytes())
    assert results[0] == results[1]


def test_mask_depends_on_index_not_dtype(rng):
    x = rng.standard_normal(5000)
    _, b64 = dropout_forward(x, 0.5, 9, 0)
    _, b32 = dropout_forward(x.astype(np.float32), 0.5, 9, 0)
    np.testing.assert_array_equal(b64, b32)


def test_in_place_and_out(dtype, rng):
    x = rng.standard_normal((40, 50)).astype(dtype)
    expect, _ = reference(x, 0.5, 1, 0)
    out = np.empty_like(x)
    y, _ = dropout_forward(x, 0.5, 1, 0, out=out)
    assert y is out and out.tobytes() == expect.tobytes()
    y, _ = dropout_forward(x, 0.5, 1, 0, out=x)
    assert y is x and x.tobytes() == expect.tobytes()


def test_noncontiguous_input_is_copied(rng):
    big = rng.standard_normal((30, 40))
    x = big[:, ::2]
    y, _ = dropout_forward(x, 0.5, 1, 0)
    expect, _ = reference(np.ascontiguousarray(x), 0.5, 1, 0)
    assert y.flags.c_contiguous and y.tobytes() == expect.tobytes()


def test_nan_and_inf_propagate_like_a_multiply():
    x = np.array([np.nan, np.inf, -np.inf] * 40)
    y, bits = dropout_forward(x, 0.5, 3, 0)
    keep = np.unpackbits(bits.view(np.uint8), count=x.size, bitorder="little").astype(bool)
    assert 0 < keep.sum() < keep.size
    assert np.isnan(y[~keep]).all()  # 0 * inf and 0 * nan are nan, as in torch
    np.testing.assert_array_equal(y[keep], x[keep] * 2)


def test_eval_and_p_zero_are_the_identity(rng):
    x = rng.standard_normal(100)
    assert dropout_forward(x, 0.5, 1, 0, training=False)[0] is x
    y, bits = dropout_forward(x, 0.0, 1, 0)
    assert y is x and bits is None
    out = np.empty_like(x)
    assert dropout_forward(x, 0.5, 1, 0, out=out, training=False)[0] is out
    np.testing.assert_array_equal(out, x)
    assert dropout_backward(x, x.shape, 0.0, 0, 0) is x


def test_empty_array():
    y, bits = dropout_forward(np.zeros((0, 3), np.float32), 0.5, 1, 0)
    assert y.shape == (0, 3) and bits.shape == (0,)


def _bad_forward_calls(dtype):
    x = np.ones(100, dtype)
    ro = np.empty(100, dtype)
    ro.flags.writeable = False
    buf = np.zeros(150, dtype)
    return [
        ("p = 1", (x, 1.0, 1, 0), {}, ValueError, "p"),
        ("p < 0", (x, -0.1, 1, 0), {}, ValueError, "p"),
        ("p nan", (x, float("nan"), 1, 0), {}, ValueError, "p"),
        ("p str", (x, "0.5", 1, 0), {}, TypeError, "p"),
        ("float16 x", (x.astype(np.float16), 0.5, 1, 0), {}, TypeError, "float32 or float64"),
        ("int x", (np.ones(100, np.int64), 0.5, 1, 0), {}, TypeError, "x"),
        ("list x", ([1.0, 2.0], 0.5, 1, 0), {}, TypeError, "x"),
        ("negative seed", (x, 0.5, -1, 0), {}, ValueError, "seed"),
        ("huge stream", (x, 0.5, 1, 2**64), {}, ValueError, "stream"),
        ("float seed", (x, 0.5, 1.5, 0), {}, TypeError, "^seed: expected an int, got 1.5"),
        ("read-only out", (x, 0.5, 1, 0), {"out": ro}, ValueError, "writeable"),
        ("out shape", (x, 0.5, 1, 0), {"out": np.empty(99, dtype)}, ValueError, "shape"),
        ("out dtype", (x, 0.5, 1, 0), {"out": np.empty(100, np.float16)}, TypeError, "dtype"),
        ("out strided", (x, 0.5, 1, 0), {"out": np.empty(200, dtype)[::2]}, ValueError,
         "contiguous"),
        ("out overlaps x", (buf[:100], 0.5, 1, 0), {"out": buf[50:]}, ValueError,
         "shares memory"),
        ("pack not bool", (x, 0.5, 1, 0), {"pack": 1}, TypeError, "pack"),
    ]


@pytest.mark.parametrize("case", range(16))
def test_bad_forward_arguments_raise_and_modify_nothing(case, dtype):
    name, args, kwargs, exc, words = _bad_forward_calls(dtype)[case]
    arrays = [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
    before = snapshot(arrays)
    with pytest.raises(exc, match=words):
        dropout_forward(*args, **kwargs)
    assert snapshot(arrays) == before, name


def test_bad_backward_arguments(dtype):
    dy = np.ones(100, dtype)
    _, bits = dropout_forward(dy, 0.5, 1, 0)
    with pytest.raises(ValueError, match="dy: expected shape"):
        dropout_backward(np.ones(99, dtype), (100,), 0.5, 1, 0, bits)
    with pytest.raises(ValueError, match="mask"):
        dropout_backward(dy, (100,), 0.5, 1, 0, bits[:1])
    with pytest.raises(ValueError, match="mask"):
        dropout_backward(dy, (100,), 0.5, 1, 0, bits.astype(np.int64))
    buf = np.ones(150, dtype)
    with pytest.raises(ValueError, match="shares memory"):
        dropout_backward(buf[:100], (100,), 0.5, 1, 0, bits, out=buf[50:])
    ro = np.zeros(100, dtype)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        dropout_backward(dy, (100,), 0.5, 1, 0, bits, out=ro)


def test_nogil_entry_points_are_exported_for_cimport():
    capi = fastopt._kernels.__pyx_capi__
    for name in ("dropout_forward_f32", "dropout_forward_f64", "dropout_backward_f32",
                 "dropout_backward_f64"):
        assert name in capi
